/* The elementwise loops of the schemes' backward steps and of grad.c, with
 * their short element names R, WV and HV, which only the files that include
 * this header see. Not installed.
 * SPDX-License-Identifier: MIT */
#ifndef NSDE_SCHEME_ELEMENTWISE_H
#define NSDE_SCHEME_ELEMENTWISE_H

#include "scheme.h"

#if defined(R) || defined(WV) || defined(HV)
#error "R, WV or HV is already a macro here"
#endif

/* NSDE__EW(s, BODY): a loop over the n state elements of solver s; BODY
 * sees T (float or double), i, R(p) (element i of array p), WV (the
 * Brownian increment of element i, 0 without noise) and HV (its Levy area),
 * all of them of this s, which must be a variable named s. */
/* clang-format off */
#define NSDE__EW(s, BODY)                                                                          \
  do {                                                                                             \
    const int64_t n_ = (s)->n;                                                                     \
    const int nt_ = (s)->ctx->threads;                                                             \
    (void)nt_;                                                                                     \
    if ((s)->dtype == NSDE_DTYPE_FLOAT32) {                                                        \
      typedef float T;                                                                             \
      NSDE_PAR_FOR(nt_ > 1 && n_ > NSDE_PAR_MIN,                                                   \
                   "omp parallel for num_threads(nt_)",                                            \
      for (int64_t i = 0; i < n_; i++) { BODY });                                                  \
    } else {                                                                                       \
      typedef double T;                                                                            \
      NSDE_PAR_FOR(nt_ > 1 && n_ > NSDE_PAR_MIN,                                                   \
                   "omp parallel for num_threads(nt_)",                                            \
      for (int64_t i = 0; i < n_; i++) { BODY });                                                  \
    }                                                                                              \
  } while (0)
/* clang-format on */
#define R(p) (((T *)(p))[i])
#define WV (s->dw ? ((const T *)s->dw)[s->scalar ? i / s->dim : i] : (T)0)
#define HV (((const T *)s->hl)[i])

#endif
