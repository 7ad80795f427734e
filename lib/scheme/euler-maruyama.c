/*
 * Euler-Maruyama (Ito): x1 = x + f(t, x) h + G(t, x) dW.
 * Strong order 0.5 (1.0 with additive noise). Backward:
 * A += vjp_f(x; h A) + vjp_G(x; A dW)  (general noise: vjp_G(x; A dW^T)).
 * SPDX-License-Identifier: MIT
 */
#include "scheme.h"
#include "kernels.h"

static unsigned bufs(bool noise)
{
  (void)noise;
  return 0;
}

static enum nsde_status check(struct nsde_context *ctx, const struct nsde_sde *sde)
{
  return nsde__scheme_calculus(ctx, sde, NSDE_CALCULUS_ITO, "Euler-Maruyama");
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
  if (s->m)
    *bad = NSDE__TYPED(s, k_em_gen_f32(s->n, s->dim, s->m, (float)h, B[B_CUR], B[B_F0], B[B_G0],
                                       s->dw, B[B_NEXT], nt),
                       k_em_gen_f64(s->n, s->dim, s->m, h, B[B_CUR], B[B_F0], B[B_G0], s->dw,
                                    B[B_NEXT], nt));
  else
    *bad = NSDE__TYPED(s, k_em_f32(s->n, s->dim, s->scalar, (float)h, B[B_CUR], B[B_F0], B[B_G0],
                                   s->dw, B[B_NEXT], nt),
                       k_em_f64(s->n, s->dim, s->scalar, h, B[B_CUR], B[B_F0], B[B_G0], s->dw,
                                B[B_NEXT], nt));
  return NSDE_OK;
}

static enum nsde_status back(struct nsde_solver *s, int64_t n, double t, double h, const void *r0,
                             const void *r1, void *pd, void *pg)
{
  void **G = s->gbuf;
  void *A = G[G_A];

  (void)r1;
  if (s->m) {
    EW(R(G[G_CF]) = (T)h * R(A););
    return nsde__vjp_all(s, n, t, r0, G[G_CF], nsde__outer_dw(s, A, 1.0), NULL, A, pd, pg);
  }
  EW(R(G[G_CF]) = (T)h * R(A); R(G[G_CG]) = R(A) * WV;);
  return nsde__vjp_all(s, n, t, r0, G[G_CF], s->dw ? G[G_CG] : NULL, NULL, A, pd, pg);
}

const struct nsde__scheme nsde__scheme_euler_maruyama = {
  "Euler-Maruyama", bufs, 1, {B_CUR, B_CUR}, check, step, back,
};
