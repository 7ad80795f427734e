/*
 * Heun (Stratonovich), predictor-corrector:
 *   xt = x + f0 h + g0 dW,   x1 = x + (f0 + f1) h/2 + (g0 + g1) dW/2,
 * f1, g1 at (t + h, xt). Strong order 1.0 for commutative noise. Backward:
 *   At = vjp(xt; h A/2, A dW/2);  A += At + vjp(x; h (A/2 + At), dW (A/2 + At))
 * (general noise: the G cotangents are the outer products with dW).
 * SPDX-License-Identifier: MIT
 */
#include "elementwise.h"
#include "scheme.h"
#include "kernels.h"

static unsigned bufs(bool noise)
{
  return 1u << B_XT | 1u << B_F1 | (noise ? 1u << B_G1 : 0u);
}

static enum nsde_status step(struct nsde_solver *s, double t, double t_next, int backwards,
                             int64_t *bad)
{
  const double h = t_next - t;
  const int nt = s->ctx->threads;
  void **B = s->buf;
  enum nsde_status st;

  (void)backwards;
  if ((st = nsde__solver_eval_fg(s, t, B[B_CUR], B[B_F0], B[B_G0])) != NSDE_OK)
    return st;
  (void)nsde__em_update(s, h, B[B_XT]); /* the predictor; its non-finite values show below */
  if ((st = nsde__solver_eval_fg(s, t_next, B[B_XT], B[B_F1], B[B_G1])) != NSDE_OK)
    return st;
  if (s->m)
    *bad = NSDE__TYPED(s,
                       k_heun_gen_f32(s->n, s->dim, s->m, (float)h, B[B_CUR], B[B_F0], B[B_F1],
                                      B[B_G0], B[B_G1], s->dw, B[B_NEXT], nt),
                       k_heun_gen_f64(s->n, s->dim, s->m, h, B[B_CUR], B[B_F0], B[B_F1], B[B_G0],
                                      B[B_G1], s->dw, B[B_NEXT], nt));
  else
    *bad = NSDE__TYPED(s,
                       k_heun_f32(s->n, s->dim, s->scalar, (float)h, 1.0f, B[B_CUR], B[B_F0],
                                  B[B_F1], B[B_G0], B[B_G1], s->dw, B[B_NEXT], nt),
                       k_heun_f64(s->n, s->dim, s->scalar, h, 1.0, B[B_CUR], B[B_F0], B[B_F1],
                                  B[B_G0], B[B_G1], s->dw, B[B_NEXT], nt));
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
  if (s->m) {
    NSDE__EW(s, R(G[G_CF]) = (T)(0.5 * h) * R(A););
    if ((st = nsde__vjp_all(s, n, t + h, r1, G[G_CF], nsde__outer_dw(s, A, 0.5), NULL, G[G_T1], pd,
                            pg)) != NSDE_OK)
      return st;
    NSDE__EW(s, T u = (T)0.5 * R(A) + R(G[G_T1]); R(G[G_CF]) = (T)h * u; R(G[G_T2]) = u;
             R(A) += R(G[G_T1]););
    return nsde__vjp_all(s, n, t, r0, G[G_CF], nsde__outer_dw(s, G[G_T2], 1.0), NULL, A, pd, pg);
  }
  NSDE__EW(s, R(G[G_CF]) = (T)(0.5 * h) * R(A); R(G[G_CG]) = (T)0.5 * R(A) * WV;);
  if ((st = nsde__vjp_all(s, n, t + h, r1, G[G_CF], noise ? G[G_CG] : NULL, NULL, G[G_T1], pd,
                          pg)) != NSDE_OK)
    return st;
  NSDE__EW(s, T u = (T)0.5 * R(A) + R(G[G_T1]); R(G[G_CF]) = (T)h * u; R(G[G_CG]) = u * WV;
           R(A) += R(G[G_T1]););
  return nsde__vjp_all(s, n, t, r0, G[G_CF], noise ? G[G_CG] : NULL, NULL, A, pd, pg);
}

const struct nsde__scheme nsde__scheme_heun = {
    .name = "Heun",
    .calculus = NSDE_CALCULUS_STRATONOVICH,
    .bufs = bufs,
    .rec_n = 2,
    .rec = {B_CUR, B_XT}, /* the input and the predictor */
    .step = step,
    .back = back,
    .general_noise = true,
    /* the predictor is the Euler-Maruyama solution, order 0.5 below */
    .adapt = {.kind = NSDE__EST_EMBEDDED, .lower = B_XT, .state_noise = true, .q = {2.0, 1.5, 1.0}},
};
