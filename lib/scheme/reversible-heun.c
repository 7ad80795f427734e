/*
 * Reversible Heun (Kidger et al. 2021), Stratonovich, algebraically reversible:
 *   z1 = 2y - z + f(z) h + g(z) dW,
 *   y1 = y + (f(z) + f(z1)) h/2 + (g(z) + g(z1)) dW/2,
 * with z0 = y0; B_Z holds z and (B_F0, B_G0) f(z), g(z) between steps. Run
 * backwards (h -> -h, dW -> -dW) it recovers (y, z) exactly up to rounding.
 * The backward step carries the cotangents of y_{n+1}, z_{n+1} (Y = G_A,
 * Z = G_Z) and of f(z_{n+1}), g(z_{n+1}) (G_CF, G_CG); r0 = z_{n+1}:
 *   CF += h Y/2, CG += dW Y/2;  Zt = Z + vjp(z_{n+1}; CF, CG)
 *   y_n: Y + 2 Zt;  z_n: -Zt;  f(z_n): h (Y/2 + Zt);  g(z_n): dW (Y/2 + Zt)
 * SPDX-License-Identifier: MIT
 */
#include "elementwise.h"
#include "scheme.h"
#include "kernels.h"

/* Reversible Heun, auxiliary state: z1 = 2y - z + fz h + gz sw dW (sw = -1: backwards) */
#define NSDE__K_REVZ(T, SFX)                                                                       \
  static inline int64_t k_revz##SFX(int64_t n, int64_t dim, int scalar, T h, T sw, const T *y,     \
                                    const T *z, const T *fz, const T *gz, const T *dw, T *z1,      \
                                    int nt)                                                        \
  {                                                                                                \
    int64_t bad = 0;                                                                               \
    (void)nt;                                                                                      \
    if (gz) {                                                                                      \
      NSDE__NOISE_LOOP(T, z1, T v = (T)2 * y[i] - z[i] + fz[i] * h + gz[i] * sw * W;);             \
    } else {                                                                                       \
      NSDE__FINITE_LOOP(z1, T v = (T)2 * y[i] - z[i] + fz[i] * h;);                                \
    }                                                                                              \
    return bad;                                                                                    \
  }

NSDE__FOR_DTYPES(NSDE__K_REVZ)

static unsigned bufs(bool noise)
{
  return 1u << B_Z | 1u << B_Z1 | 1u << B_F1 | (noise ? 1u << B_G1 : 0u);
}

static enum nsde_status step(struct nsde_solver *s, double t, double t_next, int backwards,
                             int64_t *bad)
{
  const double h = t_next - t, sgn = backwards ? -1.0 : 1.0, hs = sgn * h;
  const double t_to = backwards ? t : t_next;
  const int nt = s->ctx->threads;
  void **B = s->buf;
  enum nsde_status st;

  if (s->z_fresh) {
    memcpy(B[B_Z], B[B_CUR], (size_t)s->n * s->esz);
    if ((st = nsde__solver_eval_fg(s, t, B[B_Z], B[B_F0], B[B_G0])) != NSDE_OK)
      return st;
    s->z_fresh = false;
  }
  *bad = NSDE__TYPED(s,
                     k_revz_f32(s->n, s->dim, s->scalar, (float)hs, (float)sgn, B[B_CUR], B[B_Z],
                                B[B_F0], B[B_G0], s->dw, B[B_Z1], nt),
                     k_revz_f64(s->n, s->dim, s->scalar, hs, sgn, B[B_CUR], B[B_Z], B[B_F0],
                                B[B_G0], s->dw, B[B_Z1], nt));
  if (*bad)
    return NSDE_OK;
  if ((st = nsde__solver_eval_fg(s, t_to, B[B_Z1], B[B_F1], B[B_G1])) != NSDE_OK)
    return st;
  *bad = NSDE__TYPED(s,
                     k_heun_f32(s->n, s->dim, s->scalar, (float)hs, (float)sgn, B[B_CUR], B[B_F0],
                                B[B_F1], B[B_G0], B[B_G1], s->dw, B[B_NEXT], nt),
                     k_heun_f64(s->n, s->dim, s->scalar, hs, sgn, B[B_CUR], B[B_F0], B[B_F1],
                                B[B_G0], B[B_G1], s->dw, B[B_NEXT], nt));
  if (!*bad) {
    NSDE__SWAP(B[B_Z], B[B_Z1]);
    NSDE__SWAP(B[B_F0], B[B_F1]);
    NSDE__SWAP(B[B_G0], B[B_G1]);
  }
  return NSDE_OK;
}

static enum nsde_status back(struct nsde_solver *s, int64_t n, double t, double h, const void *r0,
                             const void *r1, void *pd, void *pg)
{
  const bool noise = s->dw != NULL;
  void **G = s->gbuf;
  void *A = G[G_A];
  enum nsde_status st;

  (void)r1;
  NSDE__EW(s, R(G[G_CF]) += (T)(0.5 * h) * R(A); R(G[G_CG]) += (T)0.5 * R(A) * WV;);
  if ((st = nsde__vjp_all(s, n, t + h, r0, G[G_CF], noise ? G[G_CG] : NULL, NULL, G[G_Z], pd,
                          pg)) != NSDE_OK)
    return st;
  NSDE__EW(s, T u = (T)0.5 * R(A) + R(G[G_Z]); R(G[G_CF]) = (T)h * u; R(G[G_CG]) = u * WV;
           R(A) += (T)2 * R(G[G_Z]); R(G[G_Z]) = -R(G[G_Z]););
  return NSDE_OK;
}

/* The backward pass ends at z_0 = y_0: the initial state's cotangent is
 * Y + Z plus the vjp through f(z_0), g(z_0) with the cotangents CF, CG. */
static enum nsde_status back_initial(struct nsde_solver *s, const void *z0, void *pd, void *pg)
{
  void **G = s->gbuf;
  void *A = G[G_A], *Z = G[G_Z];

  NSDE__EW(s, R(A) += R(Z););
  return nsde__vjp_all(s, 0, s->grid[0], z0, G[G_CF], s->dw ? G[G_CG] : NULL, NULL, A, pd, pg);
}

const struct nsde__scheme nsde__scheme_reversible_heun = {
    .name = "reversible Heun",
    .calculus = NSDE_CALCULUS_STRATONOVICH,
    .bufs = bufs,
    .rec_n = 1,
    .rec = {B_Z}, /* z_{n+1}: y_n follows from it backwards */
    .step = step,
    .back = back,
    .back_initial = back_initial,
    .two_state = true,
    .reversible = true,
    .adapt = {.kind = NSDE__EST_NONE, .lower = -1},
};
