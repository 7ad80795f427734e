/*
 * Elementwise update kernels of the solvers, instantiated for float and
 * double by solver.c (define T and SFX, then include). Each loop is over
 * n = batch*dim state elements; w(i) is the Brownian index of element i
 * (i itself, or i/dim for scalar noise). Each returns the number of
 * non-finite results so the caller can refuse the step.
 *
 * SPDX-License-Identifier: MIT
 */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
/* Loops over elements with the Brownian index w(i) = i (diagonal) or i/dim
 * (scalar noise), unswitched so the diagonal case vectorises. BODY uses W. */
#define NOISE_LOOP(BODY)                                                             \
  if (!scalar) {                                                                     \
    NSDE_PAR_FOR_SIMD(nt > 1 && n > NSDE_PAR_MIN,                                    \
                      "omp parallel for simd reduction(+ : bad) num_threads(nt)",    \
                      "omp simd reduction(+ : bad)",                                 \
    for (int64_t i = 0; i < n; i++) {                                                \
      const T W = dw ? dw[i] : (T)0;                                                 \
      BODY                                                                           \
    });                                                                              \
  } else {                                                                           \
    NSDE_PAR_FOR(nt > 1 && n > NSDE_PAR_MIN,                                         \
                 "omp parallel for reduction(+ : bad) num_threads(nt)",              \
    for (int64_t r = 0; r < n / dim; r++) {                                          \
      const T W = dw ? dw[r] : (T)0;                                                 \
      for (int64_t i = r * dim; i < (r + 1) * dim; i++) {                            \
        BODY                                                                         \
      }                                                                              \
    });                                                                              \
  }

/* Euler-Maruyama: x1 = x + f h + g dW */
static inline int64_t CAT(k_em, SFX)(int64_t n, int64_t dim, int scalar, T h, const T *x, const T *f,
                              const T *g, const T *dw, T *x1, int nt)
{
  int64_t bad = 0;
  (void)nt;
  if (g) {
    NOISE_LOOP(T v = x[i] + f[i] * h + g[i] * W; x1[i] = v; bad += !isfinite(v);)
  } else {
    NSDE_PAR_FOR_SIMD(nt > 1 && n > NSDE_PAR_MIN,
                      "omp parallel for simd reduction(+ : bad) num_threads(nt)",
                      "omp simd reduction(+ : bad)",
    for (int64_t i = 0; i < n; i++) {
      T v = x[i] + f[i] * h;
      x1[i] = v;
      bad += !isfinite(v);
    });
  }
  return bad;
}

/* Milstein (Ito, diagonal): x1 = x + f h + g dW + 1/2 g g' (dW^2 - h) */
static inline int64_t CAT(k_milstein, SFX)(int64_t n, T h, const T *x, const T *f, const T *g,
                                    const T *gp, const T *dw, T *x1, int nt)
{
  int64_t bad = 0;
  (void)nt;
  NSDE_PAR_FOR_SIMD(nt > 1 && n > NSDE_PAR_MIN,
                    "omp parallel for simd reduction(+ : bad) num_threads(nt)",
                    "omp simd reduction(+ : bad)",
  for (int64_t i = 0; i < n; i++) {
    T v = x[i] + f[i] * h + g[i] * dw[i] + (T)0.5 * g[i] * gp[i] * (dw[i] * dw[i] - h);
    x1[i] = v;
    bad += !isfinite(v);
  });
  return bad;
}

/* Heun corrector: x1 = x + (f0 + f1) h/2 + (g0 + g1) sw dW/2 (sw = -1 runs it backwards) */
static inline int64_t CAT(k_heun, SFX)(int64_t n, int64_t dim, int scalar, T h, T sw, const T *x,
                                const T *f0, const T *f1, const T *g0, const T *g1,
                                const T *dw, T *x1, int nt)
{
  int64_t bad = 0;
  (void)nt;
  if (g0) {
    NOISE_LOOP(T v = x[i] + (T)0.5 * (f0[i] + f1[i]) * h + (T)0.5 * (g0[i] + g1[i]) * sw * W;
               x1[i] = v; bad += !isfinite(v);)
  } else {
    NSDE_PAR_FOR_SIMD(nt > 1 && n > NSDE_PAR_MIN,
                      "omp parallel for simd reduction(+ : bad) num_threads(nt)",
                      "omp simd reduction(+ : bad)",
    for (int64_t i = 0; i < n; i++) {
      T v = x[i] + (T)0.5 * (f0[i] + f1[i]) * h;
      x1[i] = v;
      bad += !isfinite(v);
    });
  }
  return bad;
}

/* Reversible Heun, auxiliary state: z1 = 2y - z + fz h + gz sw dW (sw = -1: backwards) */
static inline int64_t CAT(k_revz, SFX)(int64_t n, int64_t dim, int scalar, T h, T sw, const T *y,
                                const T *z, const T *fz, const T *gz, const T *dw, T *z1,
                                int nt)
{
  int64_t bad = 0;
  (void)nt;
  if (gz) {
    NOISE_LOOP(T v = (T)2 * y[i] - z[i] + fz[i] * h + gz[i] * sw * W; z1[i] = v;
               bad += !isfinite(v);)
  } else {
    NSDE_PAR_FOR_SIMD(nt > 1 && n > NSDE_PAR_MIN,
                      "omp parallel for simd reduction(+ : bad) num_threads(nt)",
                      "omp simd reduction(+ : bad)",
    for (int64_t i = 0; i < n; i++) {
      T v = (T)2 * y[i] - z[i] + fz[i] * h;
      z1[i] = v;
      bad += !isfinite(v);
    });
  }
  return bad;
}

/* General noise (G row-major dim x m per batch element, dW m per batch
 * element): x1 = x + f h + G dW */
static inline int64_t CAT(k_em_gen, SFX)(int64_t n, int64_t dim, int64_t m, T h, const T *x, const T *f,
                                  const T *g, const T *dw, T *x1, int nt)
{
  int64_t bad = 0;
  (void)nt;
  NSDE_PAR_FOR(nt > 1 && n * m > NSDE_PAR_MIN,
               "omp parallel for reduction(+ : bad) num_threads(nt)",
  for (int64_t r = 0; r < n; r++) {
    const T *gr = g + r * m, *w = dw + (r / dim) * m;
    T v = x[r] + f[r] * h;
    for (int64_t j = 0; j < m; j++)
      v += gr[j] * w[j];
    x1[r] = v;
    bad += !isfinite(v);
  });
  return bad;
}

/* General noise, Heun corrector: x1 = x + (f0 + f1) h/2 + (G0 + G1) dW/2 */
static inline int64_t CAT(k_heun_gen, SFX)(int64_t n, int64_t dim, int64_t m, T h, const T *x,
                                    const T *f0, const T *f1, const T *g0, const T *g1,
                                    const T *dw, T *x1, int nt)
{
  int64_t bad = 0;
  (void)nt;
  NSDE_PAR_FOR(nt > 1 && n * m > NSDE_PAR_MIN,
               "omp parallel for reduction(+ : bad) num_threads(nt)",
  for (int64_t r = 0; r < n; r++) {
    const T *a = g0 + r * m, *b = g1 + r * m, *w = dw + (r / dim) * m;
    T gw = 0, v;
    for (int64_t j = 0; j < m; j++)
      gw += (a[j] + b[j]) * w[j];
    v = x[r] + (T)0.5 * (f0[r] + f1[r]) * h + (T)0.5 * gw;
    x1[r] = v;
    bad += !isfinite(v);
  });
  return bad;
}

/* SRA1 stage 2: H2 = x + 3/4 f1 h + 3/2 g(t+h) (I10/h), I10/h = Hl + dW/2 */
static inline void CAT(k_sra_stage, SFX)(int64_t n, T h, const T *x, const T *f1, const T *g_end,
                                  const T *dw, const T *hl, T *h2, int nt)
{
  (void)nt;
  NSDE_PAR_FOR_SIMD(nt > 1 && n > NSDE_PAR_MIN,
                    "omp parallel for simd num_threads(nt)",
                    "omp simd",
  for (int64_t i = 0; i < n; i++)
    h2[i] = x[i] + (T)0.75 * f1[i] * h + (g_end ? (T)1.5 * g_end[i] * (hl[i] + (T)0.5 * dw[i]) : (T)0););
}

/* SRA1 update: x1 = x + h (f1/3 + 2 f2/3) + g(t+h) (dW - I10/h) + g(t) I10/h */
static inline int64_t CAT(k_sra, SFX)(int64_t n, T h, const T *x, const T *f1, const T *f2,
                               const T *g_end, const T *g_start, const T *dw, const T *hl,
                               T *x1, int nt)
{
  int64_t bad = 0;
  (void)nt;
  NSDE_PAR_FOR_SIMD(nt > 1 && n > NSDE_PAR_MIN,
                    "omp parallel for simd reduction(+ : bad) num_threads(nt)",
                    "omp simd reduction(+ : bad)",
  for (int64_t i = 0; i < n; i++) {
    T v = x[i] + h * (f1[i] / (T)3 + (T)2 * f2[i] / (T)3);
    if (g_end) {
      T i10 = hl[i] + (T)0.5 * dw[i];
      v += g_end[i] * (dw[i] - i10) + g_start[i] * i10;
    }
    x1[i] = v;
    bad += !isfinite(v);
  });
  return bad;
}

#undef NOISE_LOOP
#undef CAT
#undef CAT_
