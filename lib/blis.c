/*
 * BLIS set-up: fast kernels by default, per-call thread counts, GEMM.
 *
 * BLIS picks its kernels once per process, from the CPU id, the first time
 * it initialises, and lets the BLIS_ARCH_TYPE environment variable override
 * that. BLIS 0.9 does not know AMD Zen 5 (family 0x1A) and falls back to its
 * portable "generic" kernels there, 4-5x slower. So, unless the user has set
 * BLIS_ARCH_TYPE, libnsde picks the kernels for CPUs BLIS does not know,
 * sets BLIS_ARCH_TYPE, initialises BLIS and restores the environment.
 *
 * Touching the environment races with other threads reading it, so this is
 * done from the library's ELF constructor, which runs while the process is
 * still single-threaded (before main, or inside dlopen). If a constructor
 * finds more than one thread (dlopen from a threaded program), it leaves the
 * environment alone and BLIS's own choice stands; nsde_blis_arch() reports
 * the result either way and the first context logs a warning.
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blis.h>

#include "blis-private.h"
#include "nsde-private.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define NSDE_X86 1
#endif

bool nsde__blis_knows(const struct nsde__cpu *cpu)
{
  if (cpu->vendor == NSDE__VENDOR_INTEL)
    return true;
  if (cpu->vendor != NSDE__VENDOR_AMD)
    return false;
  switch (cpu->family) {
  case 0x15:
  case 0x17:
  case 0x19: return true;
#ifdef BLIS_CONFIG_ZEN5
  case 0x1A: return true;
#endif
  default: return false;
  }
}

enum nsde__kernels nsde__blis_pick(const struct nsde__cpu *cpu, bool blis_knows)
{
  if (blis_knows)
    return NSDE__KEEP;
  if (cpu->avx512f && cpu->avx512dq && cpu->avx512bw && cpu->avx512vl)
    return NSDE__SKX;
  if (cpu->avx2 && cpu->fma)
    return cpu->vendor == NSDE__VENDOR_AMD ? NSDE__ZEN3 : NSDE__HASWELL;
  return NSDE__KEEP;
}

static void read_cpu(struct nsde__cpu *cpu)
{
  memset(cpu, 0, sizeof(*cpu));
#ifdef NSDE_X86
  {
    unsigned a = 0, b = 0, c = 0, d = 0, max = 0;
    char vendor[13];
    bool os_avx = false, os_avx512 = false;

    if (!__get_cpuid(0, &max, &b, &c, &d))
      return;
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &c, 4);
    vendor[12] = '\0';
    if (!strcmp(vendor, "GenuineIntel"))
      cpu->vendor = NSDE__VENDOR_INTEL;
    else if (!strcmp(vendor, "AuthenticAMD"))
      cpu->vendor = NSDE__VENDOR_AMD;
    __get_cpuid(1, &a, &b, &c, &d);
    cpu->family = (int)((a >> 8) & 0xf);
    if (cpu->family == 0xf)
      cpu->family += (int)((a >> 20) & 0xff);
    cpu->fma = (c >> 12) & 1;
    if ((c >> 27) & 1) { /* OSXSAVE: ask the OS which register states it saves */
      unsigned lo, hi;
      __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
      os_avx = (lo & 0x6) == 0x6;
      os_avx512 = os_avx && (lo & 0xe0) == 0xe0;
    }
    if (!os_avx)
      cpu->fma = false;
    if (max >= 7) {
      __cpuid_count(7, 0, a, b, c, d);
      cpu->avx2 = os_avx && ((b >> 5) & 1);
      cpu->avx512f = os_avx512 && ((b >> 16) & 1);
      cpu->avx512dq = os_avx512 && ((b >> 17) & 1);
      cpu->avx512bw = os_avx512 && ((b >> 30) & 1);
      cpu->avx512vl = os_avx512 && ((b >> 31) & 1);
    }
  }
#endif
}

static int kernels_to_blis(enum nsde__kernels k)
{
  switch (k) {
  case NSDE__SKX:
#ifdef BLIS_CONFIG_SKX
    return BLIS_ARCH_SKX;
#else
    return kernels_to_blis(NSDE__HASWELL);
#endif
  case NSDE__ZEN3:
#ifdef BLIS_CONFIG_ZEN3
    return BLIS_ARCH_ZEN3;
#else
    return kernels_to_blis(NSDE__HASWELL);
#endif
  case NSDE__HASWELL:
#ifdef BLIS_CONFIG_HASWELL
    return BLIS_ARCH_HASWELL;
#else
    return -1;
#endif
  default: return -1;
  }
}

/* 1 if the process has exactly one thread, 0 if more, -1 if unknown. */
static int single_threaded(void)
{
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  int n = 0;

  if (!d)
    return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n == 1 ? 1 : 0;
}

static enum nsde_blis_choice blis_choice = NSDE_BLIS_CHOSEN_BY_BLIS;
static bool blis_could_not_force; /* a pick was wanted but threads were running */
static pthread_once_t blis_once = PTHREAD_ONCE_INIT;

static void blis_setup(void)
{
  struct nsde__cpu cpu;
  enum nsde__kernels pick;
  int id;

  if (getenv("BLIS_ARCH_TYPE") != NULL) {
    blis_choice = NSDE_BLIS_CHOSEN_BY_USER;
    bli_init();
    return;
  }
  read_cpu(&cpu);
  pick = nsde__blis_pick(&cpu, nsde__blis_knows(&cpu));
  id = kernels_to_blis(pick);
  if (id < 0) {
    bli_init();
    return;
  }
  if (single_threaded() != 1) {
    blis_could_not_force = true;
    bli_init();
    return;
  }
  {
    char buf[16];
    snprintf(buf, sizeof(buf), "%d", id);
    setenv("BLIS_ARCH_TYPE", buf, 1);
    bli_init(); /* BLIS reads the variable here, once, and caches its choice */
    (void)bli_arch_query_id();
    unsetenv("BLIS_ARCH_TYPE");
  }
  blis_choice = NSDE_BLIS_CHOSEN_BY_NSDE;
}

__attribute__((constructor)) static void nsde_blis_constructor(void)
{
  pthread_once(&blis_once, blis_setup);
}

void nsde__blis_ensure(void)
{
  pthread_once(&blis_once, blis_setup);
}

NSDE_API const char *nsde_blis_arch(void)
{
  nsde__blis_ensure();
  return bli_arch_string(bli_arch_query_id());
}

NSDE_API enum nsde_blis_choice nsde_blis_arch_choice(void)
{
  nsde__blis_ensure();
  return blis_choice;
}

bool nsde__blis_forcing_failed(void)
{
  return blis_could_not_force;
}

void nsde__gemm(const struct nsde_context *ctx, enum nsde_dtype dtype, bool ta, bool tb, int64_t m,
                int64_t n, int64_t k, double alpha, const void *a, int64_t rsa, int64_t csa,
                const void *b, int64_t rsb, int64_t csb, double beta, void *c, int64_t rsc,
                int64_t csc)
{
  rntm_t rntm = BLIS_RNTM_INITIALIZER;
  trans_t tra = ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE;
  trans_t trb = tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE;

  /* An explicit runtime object per call: the thread count is this
   * context's and nothing global (BLIS_NUM_THREADS, omp_set_num_threads)
   * is read or changed. */
  bli_rntm_set_num_threads(ctx ? ctx->threads : 1, &rntm);
  /* BLIS's small-matrix ("sup") kernels pick their reduction order from each
   * thread's share of the output (some reduce k inside SIMD lanes), so their
   * bits depend on the thread count. The packed path sums every element over
   * k in the same order whatever the partition: results stay bit-identical
   * for any thread count, which training determinism needs. */
  bli_rntm_disable_l3_sup(&rntm);
  if (dtype == NSDE_DTYPE_FLOAT32) {
    float al = (float)alpha, be = (float)beta;
    bli_sgemm_ex(tra, trb, m, n, k, &al, (float *)a, rsa, csa, (float *)b, rsb, csb, &be,
                 (float *)c, rsc, csc, NULL, &rntm);
  } else {
    bli_dgemm_ex(tra, trb, m, n, k, &alpha, (double *)a, rsa, csa, (double *)b, rsb, csb, &beta,
                 (double *)c, rsc, csc, NULL, &rntm);
  }
}
