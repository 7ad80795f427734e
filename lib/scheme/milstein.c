/*
 * Milstein (Ito, diagonal or additive noise):
 *   x1 = x + f h + g dW + 1/2 g g' (dW^2 - h),   g' = dg_i/dx_i (diag_deriv).
 * Strong order 1.0. Backward, with c = dW^2 - h:
 *   A += vjp_f(x; h A) + vjp_g(x; A (dW + g' c/2)) + vjp_g'(x; A g c/2).
 * SPDX-License-Identifier: MIT
 */
#include "elementwise.h"
#include "scheme.h"
#include "kernels.h"

/* Milstein (Ito, diagonal): x1 = x + f h + g dW + 1/2 g g' (dW^2 - h) */
#define NSDE__K_MILSTEIN(T, SFX)                                                                   \
  static inline int64_t k_milstein##SFX(int64_t n, T h, const T *x, const T *f, const T *g,        \
                                        const T *gp, const T *dw, T *x1, int nt)                   \
  {                                                                                                \
    int64_t bad = 0;                                                                               \
    (void)nt;                                                                                      \
    NSDE__FINITE_LOOP(x1, T v = x[i] + f[i] * h + g[i] * dw[i] +                                   \
                                (T)0.5 * g[i] * gp[i] * (dw[i] * dw[i] - h););                     \
    return bad;                                                                                    \
  }

NSDE__FOR_DTYPES(NSDE__K_MILSTEIN)

static unsigned bufs(bool noise)
{
  return noise ? 1u << B_GP | 1u << B_DFX : 0u;
}

static enum nsde_status check(struct nsde_context *ctx, const struct nsde_sde *sde)
{
  if (sde->noise == NSDE_NOISE_NONE)
    return NSDE_OK;
  if (sde->noise == NSDE_NOISE_SCALAR)
    return nsde__error(ctx, NSDE_ERR_UNSUPPORTED,
                       "Milstein here needs diagonal or additive noise, not scalar");
  if (!nsde__func_has_diag(sde->diffusion))
    return nsde__error(ctx, NSDE_ERR_MISSING_OP,
                       "Milstein needs dG_i/dx_i: the diffusion has no diag_deriv callback");
  if (sde->diffusion->kind == NSDE__FUNC_DROPOUT && !nsde__func_has_diag(sde->drift))
    return nsde__error(ctx, NSDE_ERR_MISSING_OP,
                       "Milstein with dropout noise needs the drift's diag_deriv callback");
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
  if ((st = nsde__solver_eval_fg(s, t, B[B_CUR], B[B_F0], B[B_G0])) != NSDE_OK)
    return st;
  if (!s->dw) { /* without noise Milstein is Euler-Maruyama */
    *bad = nsde__em_update(s, h, B[B_NEXT]);
    return NSDE_OK;
  }
  if (s->sde->diffusion->kind == NSDE__FUNC_DROPOUT) {
    rc = nsde__func_diag(s->sde->drift, t, s->batch, s->dim, B[B_CUR], NULL, B[B_DFX]);
    if (rc < 0)
      return nsde__solver_cb_fail(s, "drift diag_deriv", rc, t);
  }
  rc = nsde__func_diag(s->sde->diffusion, t, s->batch, s->dim, B[B_CUR], B[B_DFX], B[B_GP]);
  if (rc < 0)
    return nsde__solver_cb_fail(s, "diffusion diag_deriv", rc, t);
  *bad = NSDE__TYPED(
      s, k_milstein_f32(s->n, (float)h, B[B_CUR], B[B_F0], B[B_G0], B[B_GP], s->dw, B[B_NEXT], nt),
      k_milstein_f64(s->n, h, B[B_CUR], B[B_F0], B[B_G0], B[B_GP], s->dw, B[B_NEXT], nt));
  return NSDE_OK;
}

static enum nsde_status back(struct nsde_solver *s, int64_t n, double t, double h, const void *r0,
                             const void *r1, void *pd, void *pg)
{
  const bool noise = s->dw != NULL;
  void **G = s->gbuf;
  void *A = G[G_A];
  enum nsde_status st;
  int rc;

  (void)r1;
  if (noise) {
    if ((st = nsde__solver_eval_fg(s, t, r0, G[G_F], G[G_G])) != NSDE_OK)
      return st;
    rc = nsde__func_diag(s->sde->diffusion, t, s->batch, s->dim, r0, NULL, G[G_GP]);
    if (rc < 0)
      return nsde__vjp_fail(s, "diffusion diag_deriv", rc, n);
  }
  NSDE__EW(
      s, T c = WV * WV - (T)h; R(G[G_CF]) = (T)h * R(A); if (noise) {
        R(G[G_CG]) = R(A) * (WV + (T)0.5 * R(G[G_GP]) * c);
        R(G[G_CGP]) = (T)0.5 * R(A) * R(G[G_G]) * c;
      });
  return nsde__vjp_all(s, n, t, r0, G[G_CF], noise ? G[G_CG] : NULL, noise ? G[G_CGP] : NULL, A, pd,
                       pg);
}

const struct nsde__scheme nsde__scheme_milstein = {
    .name = "Milstein",
    .calculus = NSDE_CALCULUS_ITO,
    .bufs = bufs,
    .rec_n = 1,
    .rec = {B_CUR}, /* the step's input */
    .check = check,
    .step = step,
    .back = back,
    .back_diag_vjp = true,
    .adapt = {.kind = NSDE__EST_DOUBLING, .lower = -1, .state_noise = true, .q = {2.0, 1.5, 1.5}},
};
