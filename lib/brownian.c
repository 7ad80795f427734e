/*
 * Brownian paths from a counter-based generator, stream version 1.
 *
 * Base grid: n equal steps of length h on [t0, t1]. For path (b, e) and step
 * k the root draw (Z1, Z2) = normal_pair(seed; e, b, k, 1) gives
 *     W_k = sqrt(h) Z1,    H_k = sqrt(h/12) Z2,
 * the increment and the space-time Levy area H = (1/h) int (W(r)-W(t_k)) dr - W_k/2
 * (independent Gaussians). Inside a step a binary Brownian tree refines
 * (W, H) jointly: node n (heap index; root 1, children 2n, 2n+1) of length l
 * is split with (X1, X2) = normal_pair(seed; e, b, k, n | 2^31):
 *     D = 3H + (sqrt(l)/2) X1,          E = sqrt(l/12) X2,
 *     W_left  = (W + D)/2,              W_right = (W - D)/2,
 *     H_left  = H - D/4 + E/2,          H_right = H - D/4 - E/2,
 * the exact conditional law of the halves given (W, H) (derivation in
 * doc/solvers.md). Below depth 30 the path is replaced by its conditional
 * mean given (W, H) (relative scale 2^-30 of a step).
 *
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "brownian-private.h"
#include "philox.h"

#define MAX_DEPTH 30
#define SNAP 1e-12

NSDE_API int nsde_brownian_stream_version(void)
{
  return NSDE_BROWNIAN_STREAM_VERSION;
}

NSDE_API void nsde_brownian_config_init(struct nsde_brownian_config *cfg)
{
  if (!cfg)
    return;
  memset(cfg, 0, sizeof(*cfg));
  cfg->size = sizeof(*cfg);
  cfg->t0 = 0.0;
  cfg->t1 = 1.0;
  cfg->n_steps = 1;
  cfg->batch = 1;
  cfg->dim = 1;
}

enum nsde_status nsde__brownian_init(struct nsde_context *ctx, struct nsde_brownian *bm,
                                     const struct nsde_brownian_config *user)
{
  const int64_t lim = (int64_t)1 << 32;
  struct nsde_brownian_config c;
  const struct nsde_brownian_config *cfg = &c;
  enum nsde_status st;

  st = nsde__struct_in(ctx, "brownian config", user,
                       NSDE__SIZE_TO(struct nsde_brownian_config, batch_offset), sizeof(c), &c);
  if (st != NSDE_OK)
    return st;
  if (!isfinite(cfg->t0) || !isfinite(cfg->t1) || !(cfg->t0 < cfg->t1))
    return nsde__error(ctx, NSDE_ERR_INVALID, "brownian: need finite t0 < t1 (got %g, %g)", cfg->t0,
                       cfg->t1);
  if (cfg->n_steps < 1 || cfg->n_steps >= lim)
    return nsde__error(ctx, NSDE_ERR_INVALID, "brownian: n_steps %lld outside 1..2^32-1",
                       (long long)cfg->n_steps);
  if (cfg->batch < 1 || cfg->dim < 1 || cfg->dim > lim || cfg->batch_offset < 0 ||
      cfg->batch > lim - cfg->batch_offset)
    return nsde__error(ctx, NSDE_ERR_INVALID,
                       "brownian: batch %lld (offset %lld) and dim %lld must be >= 1 and < 2^32",
                       (long long)cfg->batch, (long long)cfg->batch_offset, (long long)cfg->dim);
  bm->ctx = ctx;
  bm->seed = cfg->seed;
  bm->t0 = cfg->t0;
  bm->t1 = cfg->t1;
  bm->n_steps = cfg->n_steps;
  bm->h = (cfg->t1 - cfg->t0) / (double)cfg->n_steps;
  bm->batch = cfg->batch;
  bm->dim = cfg->dim;
  bm->batch_offset = cfg->batch_offset;
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_brownian_new(struct nsde_context *ctx,
                                            const struct nsde_brownian_config *cfg,
                                            struct nsde_brownian **out)
{
  struct nsde_brownian *bm;
  enum nsde_status st;

  if (!out || !ctx || !cfg)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_brownian_new: NULL argument");
  *out = NULL;
  bm = calloc(1, sizeof(*bm));
  if (!bm)
    return nsde__error(ctx, NSDE_ERR_NOMEM, "out of memory");
  st = nsde__brownian_init(ctx, bm, cfg);
  if (st != NSDE_OK) {
    free(bm);
    return st;
  }
  *out = bm;
  return NSDE_OK;
}

NSDE_API void nsde_brownian_free(struct nsde_brownian *bm)
{
  free(bm);
}

/* Position of time t on the base grid: step k and fraction lam in [0, 1]. */
static void locate(const struct nsde_brownian *bm, double t, int64_t *k, double *lam)
{
  double u = (t - bm->t0) / bm->h;
  double fk = floor(u);
  double f = u - fk;

  if (fk < 0.0) {
    fk = 0.0;
    f = 0.0;
  }
  if (f > 1.0 - SNAP) {
    fk += 1.0;
    f = 0.0;
  } else if (f < SNAP) {
    f = 0.0;
  }
  if (fk >= (double)bm->n_steps) {
    fk = (double)bm->n_steps - 1.0;
    f = 1.0;
  }
  *k = (int64_t)fk;
  *lam = f;
}

/*
 * Inside step k of path (b, e): w = W(t_k, t_k + lam h) and
 * a = int_{t_k}^{t_k + lam h} W(t_k, u) du.
 */
static void in_step(uint64_t seed, uint32_t e, uint32_t b, uint32_t k, double h, double lam,
                    double *w, double *a)
{
  double z1, z2, W, H, l = h, lo = 0.0, wa = 0.0, ia = 0.0;
  uint32_t node = 1;

  if (lam <= 0.0) {
    *w = 0.0;
    *a = 0.0;
    return;
  }
  nsde__normal_pair(seed, e, b, k, 1, &z1, &z2);
  W = sqrt(h) * z1;
  H = sqrt(h / 12.0) * z2;
  for (int depth = 0;; depth++) {
    /* Node covers [lo, lo + l] (in time units from t_k); (W, H) its values. */
    double r = lam * h - lo;
    if (r >= l * (1.0 - SNAP)) {
      *w = wa + W;
      *a = ia + l * wa + l * (H + 0.5 * W);
      return;
    }
    if (depth == MAX_DEPTH) {
      double x = r / l; /* conditional mean given (W, H) */
      *w = wa + x * W + 6.0 * x * (1.0 - x) * H;
      *a = ia + r * wa + l * (0.5 * x * x * W + (3.0 * x * x - 2.0 * x * x * x) * H);
      return;
    }
    {
      double x1, x2, D, E, WL, WR, HL, HR, half = 0.5 * l;
      nsde__normal_pair(seed, e, b, k, node | 0x80000000u, &x1, &x2);
      D = 3.0 * H + 0.5 * sqrt(l) * x1;
      E = sqrt(l / 12.0) * x2;
      WL = 0.5 * (W + D);
      WR = 0.5 * (W - D);
      HL = H - 0.25 * D + 0.5 * E;
      HR = H - 0.25 * D - 0.5 * E;
      if (r <= half * (1.0 + SNAP) && r >= half * (1.0 - SNAP)) {
        *w = wa + WL;
        *a = ia + half * wa + half * (HL + 0.5 * WL);
        return;
      }
      if (r < half) {
        W = WL;
        H = HL;
        node = 2 * node;
      } else {
        ia += half * wa + half * (HL + 0.5 * WL);
        wa += WL;
        lo += half;
        W = WR;
        H = HR;
        node = 2 * node + 1;
      }
      l = half;
    }
  }
}

/* W(s,t) and int_s^t W(s,u) du for one path. */
static void interval(const struct nsde_brownian *bm, uint32_t e, uint32_t b, double s, double t,
                     double *w_out, double *a_out)
{
  int64_t ks, kt;
  double ls, lt, ws, as, w = 0.0, a = 0.0;

  locate(bm, s, &ks, &ls);
  locate(bm, t, &kt, &lt);
  if (lt == 0.0 && kt > ks) { /* t on a boundary: end of the previous step */
    kt--;
    lt = 1.0;
  }
  in_step(bm->seed, e, b, (uint32_t)ks, bm->h, ls, &ws, &as);
  if (ks == kt) {
    double wt, at;
    in_step(bm->seed, e, b, (uint32_t)kt, bm->h, lt, &wt, &at);
    *w_out = wt - ws;
    *a_out = (at - as) - (lt - ls) * bm->h * ws;
    return;
  }
  for (int64_t k = ks; k <= kt; k++) {
    double wp, ap, len;
    if (k == ks) {
      double wf, af;
      in_step(bm->seed, e, b, (uint32_t)k, bm->h, 1.0, &wf, &af);
      len = (1.0 - ls) * bm->h;
      wp = wf - ws;
      ap = (af - as) - len * ws;
    } else if (k == kt) {
      in_step(bm->seed, e, b, (uint32_t)k, bm->h, lt, &wp, &ap);
      len = lt * bm->h;
    } else {
      in_step(bm->seed, e, b, (uint32_t)k, bm->h, 1.0, &wp, &ap);
      len = bm->h;
    }
    a += ap + len * w;
    w += wp;
  }
  *w_out = w;
  *a_out = a;
}

/* The generator in blocks along e: one clone per vector ISA, chosen at load
 * time (the values are the same bits on every clone; see philox.h). */

#define BLOCK 64

NSDE_CLONES static void normal_block_auto(uint64_t seed, const uint32_t *e, const uint32_t *b,
                                          uint32_t step, int n, double *z1, double *z2)
{
  nsde__normal_block_impl(seed, e, b, step, 1, n, z1, z2);
}

#ifdef NSDE__HAVE_PHILOX16
/* wd[w][j + i] = word w of counter (e[j + i], b[j + i], step, 1), i < 16 NV. */
NSDE__INLINE NSDE__AVX512 void philox_words(const int NV, uint64_t seed, const uint32_t *e,
                                            const uint32_t *b, uint32_t step, int j,
                                            uint32_t wd[4][BLOCK])
{
  __m512i c[2][4];
  for (int v = 0; v < NV; v++) {
    c[v][0] = _mm512_loadu_si512(e + j + 16 * v);
    c[v][1] = _mm512_loadu_si512(b + j + 16 * v);
    c[v][2] = _mm512_set1_epi32((int)step);
    c[v][3] = _mm512_set1_epi32(1);
  }
  nsde__philox16(NV, seed, c);
  for (int v = 0; v < NV; v++)
    for (int w = 0; w < 4; w++)
      _mm512_store_si512(wd[w] + j + 16 * v, c[v][w]);
}

#endif

#ifdef NSDE__HAVE_PHILOX16
/* wd[w][j + i] = word w of counter (e[j + i], b[j + i], step, 1), i < 8 NV. */
NSDE__INLINE NSDE__AVX2 void philox_words8(const int NV, uint64_t seed, const uint32_t *e,
                                           const uint32_t *b, uint32_t step, int j,
                                           uint32_t wd[4][BLOCK])
{
  __m256i c[2][4];
  for (int v = 0; v < NV; v++) {
    c[v][0] = _mm256_loadu_si256((const __m256i *)(e + j + 8 * v));
    c[v][1] = _mm256_loadu_si256((const __m256i *)(b + j + 8 * v));
    c[v][2] = _mm256_set1_epi32((int)step);
    c[v][3] = _mm256_set1_epi32(1);
  }
  nsde__philox8(NV, seed, c);
  for (int v = 0; v < NV; v++)
    for (int w = 0; w < 4; w++)
      _mm256_store_si256((__m256i *)(wd[w] + j + 8 * v), c[v][w]);
}

/* Philox for 2 L (then L) counters at a time with L-lane intrinsics
 * (WORDS), the words stored lane by lane, then the Box-Muller loop over them
 * (vectorised for the same instruction set); the remainder one by one.
 * Every element's operations are those of nsde__normal_one, so are the bits
 * (test-brownian's vector_lanes_frozen). On AVX2 the compiler's clone of the
 * generic loop stayed scalar (vmulsd, imul): 14% of a training step of the
 * CIFAR-10 recipe on Zen 3. */
#define NORMAL_BLOCK(NAME, TARGET, WORDS, L)                                                       \
  TARGET static void NAME(uint64_t seed, const uint32_t *e, const uint32_t *b, uint32_t step,      \
                          int n, double *z1, double *z2)                                           \
  {                                                                                                \
    uint32_t wd[4][BLOCK] __attribute__((aligned(64)));                                            \
    int j = 0;                                                                                     \
    for (; j + 2 * (L) <= n; j += 2 * (L))                                                         \
      WORDS(2, seed, e, b, step, j, wd);                                                           \
    if (j + (L) <= n) {                                                                            \
      WORDS(1, seed, e, b, step, j, wd);                                                           \
      j += (L);                                                                                    \
    }                                                                                              \
    _Pragma("omp simd") for (int i = 0; i < j; i++)                                                \
        nsde__box_muller(wd[0][i], wd[1][i], wd[2][i], wd[3][i], &z1[i], &z2[i]);                  \
    for (; j < n; j++)                                                                             \
      nsde__normal_one(seed, e[j], b[j], step, 1, &z1[j], &z2[j]);                                 \
  }
NORMAL_BLOCK(normal_block_avx512, NSDE__AVX512, philox_words, 16)
NORMAL_BLOCK(normal_block_avx2, NSDE__AVX2, philox_words8, 8)
#undef NORMAL_BLOCK
#endif

static void normal_block(uint64_t seed, const uint32_t *e, const uint32_t *b, uint32_t step, int n,
                         double *z1, double *z2)
{
#ifdef NSDE__HAVE_PHILOX16
  if (__builtin_cpu_supports("avx512f")) {
    normal_block_avx512(seed, e, b, step, n, z1, z2);
    return;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    normal_block_avx2(seed, e, b, step, n, z1, z2);
    return;
  }
#endif
  normal_block_auto(seed, e, b, step, n, z1, z2);
}

/* d[i0 + j] = sc z[j] for j < n, in the array's dtype. */
#define STORE_SCALED(T, SFX)                                                                       \
  static void store_scaled##SFX(void *d, int64_t i0, int n, double sc, const double *z)            \
  {                                                                                                \
    T *o = (T *)d + i0;                                                                            \
    for (int j = 0; j < n; j++)                                                                    \
      o[j] = (T)(sc * z[j]);                                                                       \
  }
NSDE__FOR_DTYPES(STORE_SCALED)
#undef STORE_SCALED

/* Increments and Levy areas of base step k for flat elements
 * [BLOCK q, BLOCK (q+1)) of the batch x dim array. */
static void fill_block(const struct nsde_brownian *bm, int64_t k, int64_t q, int64_t n_total,
                       enum nsde_dtype dtype, void *dw, void *levy)
{
  const double sw = sqrt(bm->h), sh = sqrt(bm->h / 12.0);
  const int64_t i0 = q * BLOCK;
  const int n = (int)(n_total - i0 < BLOCK ? n_total - i0 : BLOCK);
  double z1[BLOCK], z2[BLOCK];
  uint32_t ce[BLOCK], cb[BLOCK];
  int64_t e = i0 % bm->dim, b = bm->batch_offset + i0 / bm->dim;

  for (int j = 0; j < n;) { /* counters in runs along e, without a division per element */
    const int run = (int)(bm->dim - e < n - j ? bm->dim - e : n - j);
    for (int i = 0; i < run; i++) {
      ce[j + i] = (uint32_t)(e + i);
      cb[j + i] = (uint32_t)b;
    }
    j += run;
    e = 0;
    b++;
  }
  normal_block(bm->seed, ce, cb, (uint32_t)k, n, z1, z2);
  if (dtype == NSDE_DTYPE_FLOAT32) {
    store_scaled_f32(dw, i0, n, sw, z1);
    if (levy)
      store_scaled_f32(levy, i0, n, sh, z2);
  } else {
    store_scaled_f64(dw, i0, n, sw, z1);
    if (levy)
      store_scaled_f64(levy, i0, n, sh, z2);
  }
}

void nsde__brownian_fill(const struct nsde_brownian *bm, double s, double t, enum nsde_dtype dtype,
                         void *dw, void *levy)
{
  const int64_t n = bm->batch * bm->dim, dim = bm->dim;
  const double len = t - s;
  int64_t k, k2;
  double ls, lt;
  int nt = bm->ctx ? bm->ctx->threads : 1;

  (void)nt;
  locate(bm, s, &k, &ls);
  locate(bm, t, &k2, &lt);
  if (ls == 0.0 && ((lt == 0.0 && k2 == k + 1) || (lt == 1.0 && k2 == k))) {
    /* a base step: one generator call per element, in vectorised blocks */
    const int64_t nblocks = (n + BLOCK - 1) / BLOCK;
    NSDE_PAR_FOR(nt > 1 && n > 4096, "omp parallel for schedule(static) num_threads(nt)",
                 for (int64_t q = 0; q < nblocks; q++) fill_block(bm, k, q, n, dtype, dw, levy););
    return;
  }
  NSDE_PAR_FOR(
      nt > 1 && n > 4096, "omp parallel for schedule(static) num_threads(nt)",
      for (int64_t i = 0; i < n; i++) {
        uint32_t e = (uint32_t)(i % dim), b = (uint32_t)(bm->batch_offset + i / dim);
        double w, a, hl;
        interval(bm, e, b, s, t, &w, &a);
        hl = a / len - 0.5 * w;
        nsde__set_el(dtype, dw, i, w);
        if (levy)
          nsde__set_el(dtype, levy, i, hl);
      });
}

NSDE_API enum nsde_status nsde_brownian_increment(const struct nsde_brownian *bm, double s,
                                                  double t, struct nsde_tensor *dw,
                                                  struct nsde_tensor *levy)
{
  struct nsde_context *ctx = bm ? bm->ctx : NULL;

  if (!bm || !dw)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_brownian_increment: NULL argument");
  if (!(s >= bm->t0 && s < t && t <= bm->t1))
    return nsde__error(ctx, NSDE_ERR_INVALID,
                       "nsde_brownian_increment: need t0 <= s < t <= t1 (s=%g t=%g, span [%g, %g])",
                       s, t, bm->t0, bm->t1);
  if (dw->numel != bm->batch * bm->dim || !dw->contiguous ||
      (levy && (levy->numel != dw->numel || !levy->contiguous)))
    return nsde__error(ctx, NSDE_ERR_SHAPE,
                       "nsde_brownian_increment: outputs must be contiguous with %lld elements",
                       (long long)(bm->batch * bm->dim));
  if (levy && levy->dtype != dw->dtype)
    return nsde__error(ctx, NSDE_ERR_DTYPE, "nsde_brownian_increment: output dtypes differ");
  nsde__brownian_fill(bm, s, t, dw->dtype, dw->data, levy ? levy->data : NULL);
  return NSDE_OK;
}
