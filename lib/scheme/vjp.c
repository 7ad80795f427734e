/*
 * What the schemes' backward steps share (declared in scheme.h): the
 * vector-Jacobian products of the drift and the diffusion at one point, with
 * dropout noise's sigma f folded in, the general-noise outer products, and
 * the failure message of a vjp callback.
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "elementwise.h"
#include "scheme.h"

enum nsde_status nsde__vjp_fail(struct nsde_solver *s, const char *which, int rc, int64_t step)
{
  return nsde__error(s->ctx, NSDE_ERR_CALLBACK,
                     "%s callback returned %d in the backward pass at step %lld (t = %.6g)", which,
                     rc, (long long)step, s->grid[step]);
}

/*
 * acc += vjp_f(x; cf) + vjp_G(x; cg) + vjp_G'(x; cgp) at time t, parameter
 * gradients added to pd / pg. cg, cgp may be NULL. For dropout noise
 * G = sigma f: vjp_G(x; cg) = vjp_f(x; sigma cg) and dL/dsigma += cg . f(x),
 * so cf is overwritten with cf + sigma cg. step names the step in messages.
 */
NSDE_CLONES enum nsde_status nsde__vjp_all(struct nsde_solver *s, int64_t step, double t,
                                           const void *x, void *cf, void *cg, void *cgp, void *acc,
                                           void *pd, void *pg)
{
  const struct nsde_func *f = s->sde->drift, *g = s->sde->diffusion;
  void *tmp = s->gbuf[G_TMP];
  int rc;

  /* the diffusion's parameter gradients only where the caller takes them:
   * the model's sigma, when not learned, cost a serial dot product over
   * the state per step (2.7% of a 2-thread training step of the trained
   * recipe, the other thread waiting) and, for dropout, a drift evaluation */
  pg = s->want_pg ? pg : NULL;
  if (cg && g->kind == NSDE__FUNC_DROPOUT) {
    const double sigma = nsde__get_el(g->dtype, g->params, 0);
    if (pg) {
      rc = nsde__func_eval(f, t, s->batch, s->dim, x, NULL, s->gbuf[G_F]);
      if (rc < 0)
        return nsde__vjp_fail(s, "drift", rc, step);
      nsde__add_el(s->dtype, pg, 0, nsde__dot(s->dtype, s->n, cg, s->gbuf[G_F]));
    }
    NSDE__EW(s, R(cf) += (T)sigma * R(cg););
    cg = NULL;
  }
  if (cf) {
    rc = nsde__func_vjp(f, t, s->batch, s->dim, x, cf, tmp, pd);
    if (rc < 0)
      return nsde__vjp_fail(s, "drift vjp", rc, step);
    NSDE__EW(s, R(acc) += R(tmp););
  }
  if (cg) {
    rc = nsde__func_vjp(g, t, s->batch, s->dim, x, cg, tmp, pg);
    if (rc < 0)
      return nsde__vjp_fail(s, "diffusion vjp", rc, step);
    NSDE__EW(s, R(acc) += R(tmp););
  }
  if (cgp) {
    rc = nsde__func_diag_vjp(g, t, s->batch, s->dim, x, cgp, tmp, pg);
    if (rc < 0)
      return nsde__vjp_fail(s, "diffusion diag_deriv_vjp", rc, step);
    NSDE__EW(s, R(acc) += R(tmp););
  }
  return NSDE_OK;
}

void nsde__grad_zero(struct nsde_solver *s, void *p)
{
  memset(p, 0, (size_t)s->n * s->esz);
}

/* General noise: the cotangent of G is the outer product of the state's
 * cotangent c and dW per batch element, scaled:
 * cgm[(b dim + i) m + j] = scale c[b dim + i] dW[b m + j]. */
/* clang-format off */
#define OUTER_DW(T, SFX)                                                                           \
  static void outer_dw##SFX(int64_t n, int64_t m, int64_t dim, T scale, const T *cc, const T *w, \
                            T *o, int nt)                                                          \
  {                                                                                                \
    (void)nt;                                                                                      \
    NSDE_PAR_FOR(nt > 1 && n * m > NSDE_PAR_MIN,                                                   \
                 "omp parallel for num_threads(nt)",                                               \
    for (int64_t r = 0; r < n; r++)                                                                \
      for (int64_t j = 0; j < m; j++)                                                              \
        o[r * m + j] = scale * cc[r] * w[(r / dim) * m + j];);                                     \
  }
NSDE__FOR_DTYPES(OUTER_DW)
#undef OUTER_DW
/* clang-format on */

void *nsde__outer_dw(struct nsde_solver *s, const void *c, double scale)
{
  NSDE__TYPED(s, outer_dw_f32(s->n, s->m, s->dim, (float)scale, c, s->dw, s->cgm, s->ctx->threads),
              outer_dw_f64(s->n, s->m, s->dim, scale, c, s->dw, s->cgm, s->ctx->threads));
  return s->cgm;
}
