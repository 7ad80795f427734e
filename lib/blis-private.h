/*
 * The choice of BLIS kernels, as a pure function so it can be tested for
 * CPUs other than the one the tests run on. Not installed.
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_BLIS_PRIVATE_H
#define NSDE_BLIS_PRIVATE_H

#include <stdbool.h>

enum nsde__vendor { NSDE__VENDOR_OTHER = 0, NSDE__VENDOR_INTEL = 1, NSDE__VENDOR_AMD = 2 };

struct nsde__cpu {
  enum nsde__vendor vendor;
  int family; /* display family (base + extended) */
  bool avx2, fma, avx512f, avx512dq, avx512bw, avx512vl;
};

/* Kernel families we may ask BLIS for, independent of BLIS's enum order. */
enum nsde__kernels {
  NSDE__KEEP = 0, /* leave BLIS's own detection alone */
  NSDE__SKX,      /* AVX-512 */
  NSDE__ZEN3,     /* AVX2 + FMA, AMD tuning */
  NSDE__HASWELL   /* AVX2 + FMA, Intel tuning */
};

/*
 * Which kernels libnsde should force on @p cpu, given whether this BLIS
 * recognises the CPU family itself (@p blis_knows). Returns NSDE__KEEP where
 * BLIS's own choice is good. Exported to the tests through nsde__ only.
 */
enum nsde__kernels nsde__blis_pick(const struct nsde__cpu *cpu, bool blis_knows);

/* Whether BLIS 0.9-era CPU detection recognises the family (vendor+family). */
bool nsde__blis_knows(const struct nsde__cpu *cpu);

#endif
