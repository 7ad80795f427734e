/*
 * Euler-Maruyama (Ito): x1 = x + f(t, x) h + G(t, x) dW.
 * Strong order 0.5 (1.0 with additive noise). Backward:
 * A += vjp_f(x; h A) + vjp_G(x; A dW)  (general noise: vjp_G(x; A dW^T)).
 * Also the continuous stochastic adjoint (NSDE_GRAD_ADJOINT), the adjoint of
 * Euler-Maruyama solves.
 * SPDX-License-Identifier: MIT
 */
#include "elementwise.h"
#include "scheme.h"
#include "kernels.h"

static unsigned bufs(bool noise)
{
  (void)noise;
  return 0;
}

static enum nsde_status step(struct nsde_solver *s, double t, double t_next, int backwards,
                             int64_t *bad)
{
  void **B = s->buf;
  enum nsde_status st;

  (void)backwards;
  if ((st = nsde__solver_eval_fg(s, t, B[B_CUR], B[B_F0], B[B_G0])) != NSDE_OK)
    return st;
  *bad = nsde__em_update(s, t_next - t, B[B_NEXT]);
  return NSDE_OK;
}

NSDE_CLONES static enum nsde_status back(struct nsde_solver *s, int64_t n, double t, double h,
                                         const void *r0, const void *r1, void *pd, void *pg)
{
  void **G = s->gbuf;
  void *A = G[G_A];

  (void)r1;
  if (s->m) {
    NSDE__EW(s, R(G[G_CF]) = (T)h * R(A););
    return nsde__vjp_all(s, n, t, r0, G[G_CF], nsde__outer_dw(s, A, 1.0), NULL, A, pd, pg);
  }
  NSDE__EW(s, R(G[G_CF]) = (T)h * R(A); R(G[G_CG]) = R(A) * WV;);
  return nsde__vjp_all(s, n, t, r0, G[G_CF], s->dw ? G[G_CG] : NULL, NULL, A, pd, pg);
}

/* Continuous stochastic adjoint of an Ito SDE (Euler-Maruyama forward), in
 * Stratonovich form b = f - g g'/2, from t_{n+1} back to t_n by Heun:
 *   X2 = X - b(X) h - g(X) dW,          a2 = a + vjp_b(X; h a) + vjp_g(X; a dW)
 *   x_n = (X + X2)/2 - (b(X2) h + g(X2) dW)/2
 *   a_n = (a + a2)/2 + (vjp_b(X2; h a2) + vjp_g(X2; a2 dW))/2
 * with vjp_b(x; c) = vjp_f(x; c) - vjp_g(x; c g'/2) - vjp_g'(x; c g/2); the
 * parameter gradient integrates the same products (trapezoidal). */
static enum nsde_status adjoint_point(struct nsde_solver *s, int64_t n, double t, const void *x,
                                      const void *a, double scale, double h, void *acc, void *pd,
                                      void *pg)
{
  const bool noise = s->dw != NULL;
  const bool statedep = noise && s->sde->noise == NSDE_NOISE_DIAGONAL;
  void **G = s->gbuf;
  enum nsde_status st;
  int rc;

  if ((st = nsde__solver_eval_fg(s, t, x, G[G_F], noise ? G[G_G] : NULL)) != NSDE_OK)
    return st;
  if (statedep) {
    rc = nsde__func_diag(s->sde->diffusion, t, s->batch, s->dim, x, NULL, G[G_GP]);
    if (rc < 0)
      return nsde__vjp_fail(s, "diffusion diag_deriv", rc, n);
  }
  NSDE__EW(
      s, T cb = (T)(scale * h) * R(a); R(G[G_CF]) = cb; if (noise) {
        T gp = statedep ? R(G[G_GP]) : (T)0;
        R(G[G_CG]) = (T)scale * R(a) * WV - (T)0.5 * cb * gp;
        R(G[G_CGP]) = -(T)0.5 * cb * R(G[G_G]);
        R(G[G_F]) -= (T)0.5 * R(G[G_G]) * gp;
      });
  return nsde__vjp_all(s, n, t, x, G[G_CF], noise ? G[G_CG] : NULL, statedep ? G[G_CGP] : NULL, acc,
                       pd, pg);
}

static enum nsde_status adjoint(struct nsde_solver *s, int64_t n, void *pd, void *pg, void *pd2,
                                void *pg2, size_t np_d, size_t np_g)
{
  const double t0 = s->grid[n], t1 = s->grid[n + 1], h = t1 - t0;
  const bool noise = s->dw != NULL;
  void **G = s->gbuf;
  void *X = G[G_X0], *a = G[G_A];
  enum nsde_status st;

  if (noise) {
    nsde__brownian_fill(&s->bm, t0, t1, s->dtype, s->dw, NULL);
    s->n_draws++;
    s->dw_step = -1;
  }
  memset(pd2, 0, np_d * s->esz);
  memset(pg2, 0, np_g * s->esz);
  nsde__grad_zero(s, G[G_T1]);
  if ((st = adjoint_point(s, n, t1, X, a, 1.0, h, G[G_T1], pd2, pg2)) != NSDE_OK)
    return st;
  /* predictor; G_F holds b(X), G_G holds g(X) */
  NSDE__EW(s, R(G[G_X2]) = R(X) - R(G[G_F]) * (T)h - (noise ? R(G[G_G]) * WV : (T)0);
           R(G[G_A2]) = R(a) + R(G[G_T1]););
  nsde__grad_zero(s, G[G_T2]);
  if ((st = adjoint_point(s, n, t0, G[G_X2], G[G_A2], 0.5, h, G[G_T2], pd, pg)) != NSDE_OK)
    return st;
  NSDE__EW(s, R(X) = (T)0.5 * (R(X) + R(G[G_X2])) -
                     (T)0.5 * (R(G[G_F]) * (T)h + (noise ? R(G[G_G]) * WV : (T)0));
           R(a) = (T)0.5 * (R(a) + R(G[G_A2])) + R(G[G_T2]););
  for (size_t i = 0; i < np_d; i++)
    nsde__add_el(s->dtype, pd, (int64_t)i, 0.5 * nsde__get_el(s->dtype, pd2, (int64_t)i));
  for (size_t i = 0; i < np_g; i++)
    nsde__add_el(s->dtype, pg, (int64_t)i, 0.5 * nsde__get_el(s->dtype, pg2, (int64_t)i));
  return NSDE_OK;
}

const struct nsde__scheme nsde__scheme_euler_maruyama = {
    .name = "Euler-Maruyama",
    .calculus = NSDE_CALCULUS_ITO,
    .bufs = bufs,
    .rec_n = 1,
    .rec = {B_CUR}, /* the step's input */
    .step = step,
    .back = back,
    .adjoint = adjoint,
    .general_noise = true,
    .adapt = {.kind = NSDE__EST_DOUBLING, .lower = -1, .state_noise = false, .q = {2.0, 1.5, 1.0}},
};
