/*
 * The elementwise update kernels that more than one scheme uses; a kernel
 * of one scheme sits in that scheme's file. Each is written once in T as
 * NSDE__K_<NAME>(T, SFX) and made for float (_f32) and double (_f64) by
 * NSDE__FOR_DTYPES (nsde-private.h). Each loop is over n = batch*dim state elements; w(i)
 * is the Brownian index of element i (i itself, or i/dim for scalar noise).
 * Each returns the number of non-finite results so the caller can refuse
 * the step. The loops expect n, nt and an int64_t bad in scope.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_SCHEME_KERNELS_H
#define NSDE_SCHEME_KERNELS_H

#include "scheme.h"

/* The kernels: one clone per vector ISA (their loops are element-wise, so
 * every clone gives the same bits; as SSE code the Euler-Maruyama update
 * was 1.4% of a 2-thread training step of the trained recipe). */
#define NSDE__KERN_FN NSDE_CLONES __attribute__((unused)) static

/* clang-format off */
/* For every i < n: BODY computes T v, which is stored in OUT[i]; the
 * non-finite ones are counted in bad. */
#define NSDE__FINITE_LOOP(OUT, BODY)                                                               \
  NSDE_PAR_FOR_SIMD(nt > 1 && n > NSDE_PAR_MIN,                                                    \
                    "omp parallel for simd reduction(+ : bad) num_threads(nt)",                    \
                    "omp simd reduction(+ : bad)",                                                 \
  for (int64_t i = 0; i < n; i++) {                                                                \
    BODY                                                                                           \
    (OUT)[i] = v;                                                                                  \
    bad += !isfinite(v);                                                                           \
  })

/* NSDE__FINITE_LOOP with W, of type T, the Brownian increment w(i) (0
 * without noise): unswitched so the diagonal case vectorises. */
#define NSDE__NOISE_LOOP(T, OUT, BODY)                                                             \
  if (!scalar) {                                                                                   \
    NSDE__FINITE_LOOP(OUT, const T W = dw ? dw[i] : (T)0; BODY);                                   \
  } else {                                                                                         \
    NSDE_PAR_FOR(nt > 1 && n > NSDE_PAR_MIN,                                                       \
                 "omp parallel for reduction(+ : bad) num_threads(nt)",                            \
    for (int64_t r = 0; r < n / dim; r++) {                                                        \
      const T W = dw ? dw[r] : (T)0;                                                               \
      for (int64_t i = r * dim; i < (r + 1) * dim; i++) {                                          \
        BODY                                                                                       \
        (OUT)[i] = v;                                                                              \
        bad += !isfinite(v);                                                                       \
      }                                                                                            \
    });                                                                                            \
  }

/* Euler-Maruyama: x1 = x + f h + g dW */
#define NSDE__K_EM(T, SFX)                                                                         \
NSDE__KERN_FN int64_t k_em##SFX(int64_t n, int64_t dim, int scalar, T h, const T *x, const T *f,   \
                                const T *g, const T *dw, T *x1, int nt)                            \
{                                                                                                  \
  int64_t bad = 0;                                                                                 \
  (void)nt;                                                                                        \
  if (g) {                                                                                         \
    NSDE__NOISE_LOOP(T, x1, T v = x[i] + f[i] * h + g[i] * W;);                                    \
  } else {                                                                                         \
    NSDE__FINITE_LOOP(x1, T v = x[i] + f[i] * h;);                                                 \
  }                                                                                                \
  return bad;                                                                                      \
}

/* Heun corrector: x1 = x + (f0 + f1) h/2 + (g0 + g1) sw dW/2 (sw = -1 runs it backwards) */
#define NSDE__K_HEUN(T, SFX)                                                                       \
NSDE__KERN_FN int64_t k_heun##SFX(int64_t n, int64_t dim, int scalar, T h, T sw, const T *x,       \
                                  const T *f0, const T *f1, const T *g0, const T *g1,              \
                                  const T *dw, T *x1, int nt)                                      \
{                                                                                                  \
  int64_t bad = 0;                                                                                 \
  (void)nt;                                                                                        \
  if (g0) {                                                                                        \
    NSDE__NOISE_LOOP(T, x1, T v = x[i] + (T)0.5 * (f0[i] + f1[i]) * h +                            \
                                  (T)0.5 * (g0[i] + g1[i]) * sw * W;);                             \
  } else {                                                                                         \
    NSDE__FINITE_LOOP(x1, T v = x[i] + (T)0.5 * (f0[i] + f1[i]) * h;);                             \
  }                                                                                                \
  return bad;                                                                                      \
}

/* General noise (G row-major dim x m per batch element, dW m per batch
 * element): x1 = x + f h + G dW */
#define NSDE__K_EM_GEN(T, SFX)                                                                     \
NSDE__KERN_FN int64_t k_em_gen##SFX(int64_t n, int64_t dim, int64_t m, T h, const T *x,            \
                                    const T *f, const T *g, const T *dw, T *x1, int nt)            \
{                                                                                                  \
  int64_t bad = 0;                                                                                 \
  (void)nt;                                                                                        \
  NSDE_PAR_FOR(nt > 1 && n * m > NSDE_PAR_MIN,                                                     \
               "omp parallel for reduction(+ : bad) num_threads(nt)",                              \
  for (int64_t r = 0; r < n; r++) {                                                                \
    const T *gr = g + r * m, *w = dw + (r / dim) * m;                                              \
    T v = x[r] + f[r] * h;                                                                         \
    for (int64_t j = 0; j < m; j++)                                                                \
      v += gr[j] * w[j];                                                                           \
    x1[r] = v;                                                                                     \
    bad += !isfinite(v);                                                                           \
  });                                                                                              \
  return bad;                                                                                      \
}

/* General noise, Heun corrector: x1 = x + (f0 + f1) h/2 + (G0 + G1) dW/2 */
#define NSDE__K_HEUN_GEN(T, SFX)                                                                   \
NSDE__KERN_FN int64_t k_heun_gen##SFX(int64_t n, int64_t dim, int64_t m, T h, const T *x,          \
                                      const T *f0, const T *f1, const T *g0, const T *g1,          \
                                      const T *dw, T *x1, int nt)                                  \
{                                                                                                  \
  int64_t bad = 0;                                                                                 \
  (void)nt;                                                                                        \
  NSDE_PAR_FOR(nt > 1 && n * m > NSDE_PAR_MIN,                                                     \
               "omp parallel for reduction(+ : bad) num_threads(nt)",                              \
  for (int64_t r = 0; r < n; r++) {                                                                \
    const T *a = g0 + r * m, *b = g1 + r * m, *w = dw + (r / dim) * m;                             \
    T gw = 0, v;                                                                                   \
    for (int64_t j = 0; j < m; j++)                                                                \
      gw += (a[j] + b[j]) * w[j];                                                                  \
    v = x[r] + (T)0.5 * (f0[r] + f1[r]) * h + (T)0.5 * gw;                                         \
    x1[r] = v;                                                                                     \
    bad += !isfinite(v);                                                                           \
  });                                                                                              \
  return bad;                                                                                      \
}

NSDE__FOR_DTYPES(NSDE__K_EM)
NSDE__FOR_DTYPES(NSDE__K_HEUN)
NSDE__FOR_DTYPES(NSDE__K_EM_GEN)
NSDE__FOR_DTYPES(NSDE__K_HEUN_GEN)
/* clang-format on */

/* The Euler-Maruyama update x + f h + G dW from B_CUR, B_F0, B_G0 and s->dw
 * into out: Euler-Maruyama's step, Heun's predictor, Milstein without noise.
 * Returns the number of non-finite results. */
static inline int64_t nsde__em_update(const struct nsde_solver *s, double h, void *out)
{
  void *const *B = s->buf;
  const int nt = s->ctx->threads;

  if (s->m)
    return NSDE__TYPED(
        s, k_em_gen_f32(s->n, s->dim, s->m, (float)h, B[B_CUR], B[B_F0], B[B_G0], s->dw, out, nt),
        k_em_gen_f64(s->n, s->dim, s->m, h, B[B_CUR], B[B_F0], B[B_G0], s->dw, out, nt));
  return NSDE__TYPED(
      s, k_em_f32(s->n, s->dim, s->scalar, (float)h, B[B_CUR], B[B_F0], B[B_G0], s->dw, out, nt),
      k_em_f64(s->n, s->dim, s->scalar, h, B[B_CUR], B[B_F0], B[B_G0], s->dw, out, nt));
}

#endif
