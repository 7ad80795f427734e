/*
 * SRA1 (Roessler 2010), additive noise, strong order 1.5:
 *   I = H + dW/2 (H the space-time Levy area),
 *   H2 = x + 3/4 f(t, x) h + 3/2 g(t+h) I,
 *   x1 = x + h (f(t, x)/3 + 2 f(t + 3h/4, H2)/3) + g(t+h) (dW - I) + g(t) I.
 * The backward step differentiates the same formula.
 * SPDX-License-Identifier: MIT
 */
#include "elementwise.h"
#include "scheme.h"
#include "kernels.h"

/* SRA1 stage 2: H2 = x + 3/4 f1 h + 3/2 g(t+h) (I10/h), I10/h = Hl + dW/2 */
/* clang-format off */
#define NSDE__K_SRA_STAGE(T, SFX)                                                                  \
static inline void k_sra_stage##SFX(int64_t n, T h, const T *x, const T *f1, const T *g_end,       \
                                    const T *dw, const T *hl, T *h2, int nt)                       \
{                                                                                                  \
  (void)nt;                                                                                        \
  NSDE_PAR_FOR_SIMD(nt > 1 && n > NSDE_PAR_MIN,                                                    \
                    "omp parallel for simd num_threads(nt)",                                       \
                    "omp simd",                                                                    \
  for (int64_t i = 0; i < n; i++)                                                                  \
    h2[i] = x[i] + (T)0.75 * f1[i] * h +                                                           \
            (g_end ? (T)1.5 * g_end[i] * (hl[i] + (T)0.5 * dw[i]) : (T)0););                       \
}

/* SRA1 update: x1 = x + h (f1/3 + 2 f2/3) + g(t+h) (dW - I10/h) + g(t) I10/h */
#define NSDE__K_SRA(T, SFX)                                                                        \
static inline int64_t k_sra##SFX(int64_t n, T h, const T *x, const T *f1, const T *f2,             \
                                 const T *g_end, const T *g_start, const T *dw, const T *hl,       \
                                 T *x1, int nt)                                                    \
{                                                                                                  \
  int64_t bad = 0;                                                                                 \
  (void)nt;                                                                                        \
  NSDE__FINITE_LOOP(x1, T v = x[i] + h * (f1[i] / (T)3 + (T)2 * f2[i] / (T)3);                     \
                        if (g_end) {                                                               \
                          T i10 = hl[i] + (T)0.5 * dw[i];                                          \
                          v += g_end[i] * (dw[i] - i10) + g_start[i] * i10;                        \
                        });                                                                        \
  return bad;                                                                                      \
}

NSDE__FOR_DTYPES(NSDE__K_SRA_STAGE)
NSDE__FOR_DTYPES(NSDE__K_SRA)
/* clang-format on */

static unsigned bufs(bool noise)
{
  return 1u << B_XT | 1u << B_F1 | (noise ? 1u << B_G1 : 0u);
}

static enum nsde_status check(struct nsde_context *ctx, const struct nsde_sde *sde)
{
  if (sde->noise != NSDE_NOISE_NONE && sde->noise != NSDE_NOISE_ADDITIVE)
    return nsde__error(ctx, NSDE_ERR_UNSUPPORTED, "SRA1 needs additive noise");
  return NSDE_OK;
}

static enum nsde_status step(struct nsde_solver *s, double t, double t_next, int backwards,
                             int64_t *bad)
{
  const double h = t_next - t;
  const int nt = s->ctx->threads;
  void **B = s->buf;
  enum nsde_status st;
  int rc;

  (void)backwards;
  /* f0 = f(t, x), g0 = g(t), g1 = g(t + h) */
  if ((st = nsde__solver_eval_fg(s, t, B[B_CUR], B[B_F0], B[B_G0])) != NSDE_OK)
    return st;
  if (s->dw) {
    rc = nsde__func_eval(s->sde->diffusion, t_next, s->batch, s->dim, B[B_CUR], NULL, B[B_G1]);
    if (rc < 0)
      return nsde__solver_cb_fail(s, "diffusion", rc, t_next);
  }
  NSDE__TYPED(
      s, k_sra_stage_f32(s->n, (float)h, B[B_CUR], B[B_F0], B[B_G1], s->dw, s->hl, B[B_XT], nt),
      k_sra_stage_f64(s->n, h, B[B_CUR], B[B_F0], B[B_G1], s->dw, s->hl, B[B_XT], nt));
  rc = nsde__func_eval(s->sde->drift, t + 0.75 * h, s->batch, s->dim, B[B_XT], NULL, B[B_F1]);
  s->n_drift++;
  if (rc < 0)
    return nsde__solver_cb_fail(s, "drift", rc, t + 0.75 * h);
  *bad = NSDE__TYPED(s,
                     k_sra_f32(s->n, (float)h, B[B_CUR], B[B_F0], B[B_F1], B[B_G1], B[B_G0], s->dw,
                               s->hl, B[B_NEXT], nt),
                     k_sra_f64(s->n, h, B[B_CUR], B[B_F0], B[B_F1], B[B_G1], B[B_G0], s->dw, s->hl,
                               B[B_NEXT], nt));
  return NSDE_OK;
}

static enum nsde_status back(struct nsde_solver *s, int64_t n, double t, double h, const void *r0,
                             const void *r1, void *pd, void *pg)
{
  const bool noise = s->dw != NULL;
  void **G = s->gbuf;
  void *A = G[G_A];
  enum nsde_status st;

  nsde__grad_zero(s, G[G_T1]);
  NSDE__EW(s, R(G[G_CF]) = (T)(2.0 * h / 3.0) * R(A););
  if ((st = nsde__vjp_all(s, n, t + 0.75 * h, r1, G[G_CF], NULL, NULL, G[G_T1], pd, pg)) != NSDE_OK)
    return st;
  NSDE__EW(
      s, R(G[G_CF]) = (T)(h / 3.0) * R(A) + (T)(0.75 * h) * R(G[G_T1]); if (noise) {
        T I = HV + (T)0.5 * WV;
        R(G[G_CG]) = R(A) * (WV - I) + (T)1.5 * I * R(G[G_T1]);
        R(G[G_CGP]) = R(A) * I;
      } R(A) += R(G[G_T1]););
  if ((st = nsde__vjp_all(s, n, t, r0, G[G_CF], NULL, NULL, A, pd, pg)) != NSDE_OK)
    return st;
  if (!noise)
    return NSDE_OK;
  if ((st = nsde__vjp_all(s, n, t + h, r0, NULL, G[G_CG], NULL, A, pd, pg)) != NSDE_OK)
    return st;
  return nsde__vjp_all(s, n, t, r0, NULL, G[G_CGP], NULL, A, pd, pg);
}

const struct nsde__scheme nsde__scheme_sra1 = {
    .name = "SRA1",
    .calculus = NSDE__ANY_CALCULUS, /* additive noise only: check refuses the rest */
    .bufs = bufs,
    .rec_n = 2,
    .rec = {B_CUR, B_XT}, /* the input and the stage H2 */
    .check = check,
    .step = step,
    .back = back,
    .levy_area = true,
    .adapt = {.kind = NSDE__EST_EMBEDDED, .lower = -1, .state_noise = false, .q = {2.0, 1.5, 0.0}},
};
