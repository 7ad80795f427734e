/*
 * Group norm on channels-last items (P pixels x C channels), with an optional
 * fused ReLU, forward and backward; sums in float blocks added in double.
 *
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn-internal.h"

#define GN_BLOCK 64

/* The channel loops of the group norm take C as a constant for the common
 * widths (one to four full vectors, no remainder code per pixel). */
#define GN_DISPATCH(call_c)                                                                        \
  switch (C) {                                                                                     \
  case 16: call_c(16); break;                                                                      \
  case 32: call_c(32); break;                                                                      \
  case 64: call_c(64); break;                                                                      \
  default: call_c(C); break;                                                                       \
  }

/* s[c] = sum over pixels of x[p][c] (- m[c], squared, when m is given). */
static inline __attribute__((always_inline)) void gn_sums_c(const float *restrict x, int64_t P,
                                                            const int C, const float *restrict m,
                                                            float *restrict fs, double *restrict s)
{
  for (int c = 0; c < C; c++)
    s[c] = 0;
  for (int64_t p0 = 0; p0 < P; p0 += GN_BLOCK) {
    const int64_t p1 = p0 + GN_BLOCK < P ? p0 + GN_BLOCK : P;
    for (int c = 0; c < C; c++)
      fs[c] = 0.0f;
    if (m) {
      for (int64_t p = p0; p < p1; p++)
        for (int c = 0; c < C; c++) {
          const float d = x[p * C + c] - m[c];
          fs[c] += d * d;
        }
    } else {
      for (int64_t p = p0; p < p1; p++)
        for (int c = 0; c < C; c++)
          fs[c] += x[p * C + c];
    }
    for (int c = 0; c < C; c++)
      s[c] += fs[c];
  }
}

NSDE_CLONES static void gn_sums(const float *restrict x, int64_t P, int C, const float *restrict m,
                                float *restrict fs, double *restrict s)
{
#define GN_SUMS(c_) gn_sums_c(x, P, c_, m, fs, s)
  GN_DISPATCH(GN_SUMS)
#undef GN_SUMS
}

/* y = x a + sh per channel, then ReLU if asked. */
static inline __attribute__((always_inline)) void gn_apply_c(const float *restrict x, int64_t P,
                                                             const int C, const float *restrict a,
                                                             const float *restrict sh, bool relu,
                                                             float *restrict y)
{
  if (relu) {
    for (int64_t p = 0; p < P; p++)
      for (int c = 0; c < C; c++) {
        float v = x[p * C + c] * a[c] + sh[c];
        y[p * C + c] = v > 0.0f ? v : 0.0f;
      }
  } else {
    for (int64_t p = 0; p < P; p++)
      for (int c = 0; c < C; c++)
        y[p * C + c] = x[p * C + c] * a[c] + sh[c];
  }
}

NSDE_CLONES static void gn_apply(const float *restrict x, int64_t P, int C, const float *restrict a,
                                 const float *restrict sh, bool relu, float *restrict y)
{
#define GN_APPLY(c_) gn_apply_c(x, P, c_, a, sh, relu, y)
  GN_DISPATCH(GN_APPLY)
#undef GN_APPLY
}

/* dy at j, or with a fused ReLU (r, its output) dy where the ReLU passed
 * and 0 elsewhere: the group norm's output gradient, read where it is
 * needed instead of written to a scratch first. */
#define GN_DY(j) (r ? (r[j] > 0.0f ? dy[j] : 0.0f) : dy[j])

/* The backward's two passes: block sums of dy (x - m) and dy into sg, sb;
 * then dx (when given). */
static inline __attribute__((always_inline)) void
gn_bsums_c(const float *restrict x, const float *restrict dy, const float *restrict r, int64_t P,
           const int C, const float *restrict fm, float *restrict fsg, float *restrict fsb,
           double *restrict sg, double *restrict sb)
{
  for (int64_t p0 = 0; p0 < P; p0 += GN_BLOCK) {
    const int64_t p1 = p0 + GN_BLOCK < P ? p0 + GN_BLOCK : P;
    for (int c = 0; c < C; c++)
      fsg[c] = fsb[c] = 0.0f;
    for (int64_t p = p0; p < p1; p++)
      for (int c = 0; c < C; c++) {
        const float d = GN_DY(p * C + c);
        fsg[c] += d * (x[p * C + c] - fm[c]);
        fsb[c] += d;
      }
    for (int c = 0; c < C; c++) {
      sg[c] += fsg[c];
      sb[c] += fsb[c];
    }
  }
}

/* One instantiation per channel count, with and without the ReLU mask (r). */
NSDE_CLONES static void gn_bsums(const float *restrict x, const float *restrict dy,
                                 const float *restrict r, int64_t P, int C,
                                 const float *restrict fm, float *restrict fsg, float *restrict fsb,
                                 double *restrict sg, double *restrict sb)
{
#define GN_BSUMS(c_) gn_bsums_c(x, dy, r, P, c_, fm, fsg, fsb, sg, sb)
#define GN_BSUMS0(c_) gn_bsums_c(x, dy, NULL, P, c_, fm, fsg, fsb, sg, sb)
  if (r) {
    GN_DISPATCH(GN_BSUMS)
  } else {
    GN_DISPATCH(GN_BSUMS0)
  }
#undef GN_BSUMS
#undef GN_BSUMS0
}

static inline __attribute__((always_inline)) void
gn_dx_c(const float *restrict x, const float *restrict dy, const float *restrict r, int64_t P,
        const int C, const float *restrict fm, const float *restrict fr,
        const float *restrict gamma, const float *restrict m1, const float *restrict m2,
        float *restrict dx)
{
  for (int64_t p = 0; p < P; p++)
    for (int c = 0; c < C; c++) {
      const float xh = (x[p * C + c] - fm[c]) * fr[c];
      dx[p * C + c] = fr[c] * (GN_DY(p * C + c) * gamma[c] - m1[c] - xh * m2[c]);
    }
}

NSDE_CLONES static void gn_dx(const float *restrict x, const float *restrict dy,
                              const float *restrict r, int64_t P, int C, const float *restrict fm,
                              const float *restrict fr, const float *restrict gamma,
                              const float *restrict m1, const float *restrict m2,
                              float *restrict dx)
{
#define GN_DX(c_) gn_dx_c(x, dy, r, P, c_, fm, fr, gamma, m1, m2, dx)
#define GN_DX0(c_) gn_dx_c(x, dy, NULL, P, c_, fm, fr, gamma, m1, m2, dx)
  if (r) {
    GN_DISPATCH(GN_DX)
  } else {
    GN_DISPATCH(GN_DX0)
  }
#undef GN_DX
#undef GN_DX0
}
#undef GN_DY

NSDE_CLONES void nsde__nn_gn_fwd_item(const struct nsde_net *net, const struct layer *l, int64_t b,
                                      const float *restrict x, float *restrict y, bool relu,
                                      double *restrict acc)
{
  const int C = l->cin, G = l->groups, cg = C / G;
  const int64_t P = (int64_t)l->hin * l->win;
  const double n = (double)cg * (double)P;
  const float *gamma = net->params + l->poff, *beta = gamma + C;
  double *s = acc;
  float *a = (float *)(acc + C), *sh = a + C, *fm = sh + C, *fs = fm + C;

  gn_sums(x, P, C, NULL, fs, s);
  for (int g = 0; g < G; g++) {
    double m = 0;
    for (int c = g * cg; c < (g + 1) * cg; c++)
      m += s[c];
    for (int c = g * cg; c < (g + 1) * cg; c++)
      fm[c] = (float)(m / n);
  }
  gn_sums(x, P, C, fm, fs, s);
  for (int g = 0; g < G; g++) {
    double v = 0;
    float rstd;
    for (int c = g * cg; c < (g + 1) * cg; c++)
      v += s[c];
    rstd = (float)(1.0 / sqrt(v / n + (double)l->eps));
    l->stats[2 * (b * G + g)] = fm[g * cg];
    l->stats[2 * (b * G + g) + 1] = rstd;
    for (int c = g * cg; c < (g + 1) * cg; c++) {
      a[c] = rstd * gamma[c];
      sh[c] = beta[c] - fm[c] * a[c];
    }
  }
  gn_apply(x, P, C, a, sh, relu, y);
}

/* With relu (the output of a fused ReLU), dy is the ReLU's output gradient,
 * masked by relu > 0 where it is read. */
NSDE_CLONES void nsde__nn_gn_bwd_item(const struct nsde_net *net, const struct layer *l, int64_t b,
                                      const float *restrict x, const float *restrict dy,
                                      const float *restrict relu, float *restrict dx,
                                      float *restrict gp, double *restrict acc)
{
  const int C = l->cin, G = l->groups, cg = C / G;
  const int64_t P = (int64_t)l->hin * l->win;
  const double n = (double)cg * (double)P;
  const float *gamma = net->params + l->poff;
  float *dgamma = gp + l->poff, *dbeta = dgamma + C;
  double *sg = acc, *sb = acc + C;
  float *fm = (float *)(acc + 2 * C), *fr = fm + C, *m1 = fr + C, *m2 = m1 + C, *fsg = m2 + C,
        *fsb = fsg + C;

  for (int c = 0; c < C; c++) {
    int g = c / cg;
    fm[c] = l->stats[2 * (b * G + g)];
    fr[c] = l->stats[2 * (b * G + g) + 1];
    sg[c] = sb[c] = 0;
  }
  /* sg = sum dy (x - mean) rstd, sb = sum dy */
  gn_bsums(x, dy, relu, P, C, fm, fsg, fsb, sg, sb);
  for (int c = 0; c < C; c++)
    sg[c] *= fr[c];
  for (int g = 0; g < G; g++) {
    double a1 = 0, a2 = 0;
    for (int c = g * cg; c < (g + 1) * cg; c++) {
      a1 += gamma[c] * sb[c];
      a2 += gamma[c] * sg[c];
    }
    for (int c = g * cg; c < (g + 1) * cg; c++) {
      m1[c] = (float)(a1 / n);
      m2[c] = (float)(a2 / n);
    }
  }
  for (int c = 0; c < C; c++) {
    dgamma[c] += (float)sg[c];
    dbeta[c] += (float)sb[c];
  }
  if (dx)
    gn_dx(x, dy, relu, P, C, fm, fr, gamma, m1, m2, dx);
}

/* ---- the layer ops ---------------------------------------------------------- */

static enum nsde_status gn_add(struct nsde_net *net, struct layer *l, const struct layer_args *a)
{
  if (a->groups < 1 || l->cin % a->groups != 0 || !(a->eps > 0) || !isfinite(a->eps))
    return nsde__error(net->ctx, NSDE_ERR_INVALID,
                       "groupnorm: %d groups must divide %d channels, eps must be > 0", a->groups,
                       l->cin);
  l->groups = a->groups;
  l->eps = (float)a->eps;
  l->np = 2 * (int64_t)l->cin;
  return NSDE_OK;
}

/* gamma 1, beta 0 (no draws from the stream) */
static void gn_init(const struct layer *l, float *p, uint64_t *rng)
{
  (void)rng;
  for (int c = 0; c < l->cin; c++) {
    p[c] = 1.0f;
    p[l->cin + c] = 0.0f;
  }
}

/* Per-item statistics; a ReLU right after it is applied here (fused). */
static enum nsde_status gn_plan(struct nsde_net *net, int i, int64_t max_batch, size_t *wp)
{
  struct layer *l = &net->L[i];

  (void)wp;
  l->fused_relu = i + 1 < net->nl && net->L[i + 1].ops->pointwise_relu;
  l->stats = calloc((size_t)(2 * max_batch * l->groups), sizeof(float));
  return l->stats ? NSDE_OK : nsde__error(net->ctx, NSDE_ERR_NOMEM, "out of memory");
}

static int gn_forward(const struct nsde_net *net, int i, int64_t b, const float *in, float *out,
                      float t, const struct scratch *sc, bool replay)
{
  const struct layer *l = &net->L[i];

  (void)t;
  (void)replay;
  if (!l->fused_relu) {
    nsde__nn_gn_fwd_item(net, l, b, in, out, false, sc->acc);
    return 1;
  }
  nsde__nn_gn_fwd_item(net, l, b, in, net->act[i + 1] + b * l->out_sz, true, sc->acc);
  return 2;
}

static const float *gn_backward(const struct nsde_net *net, int i, int64_t b, const float *in,
                                const float *y, const float *g, float *dst, float *gp, float t,
                                const struct scratch *sc)
{
  const struct layer *l = &net->L[i];

  (void)y;
  (void)t;
  nsde__nn_gn_bwd_item(net, l, b, in, g, l->fused_relu ? net->act[i + 1] + b * l->out_sz : NULL,
                       dst, gp, sc->acc);
  return dst;
}

const struct layer_ops nsde__layer_groupnorm = {
    .add = gn_add,
    .init = gn_init,
    .plan = gn_plan,
    .forward = gn_forward,
    .backward = gn_backward,
};

NSDE_API enum nsde_status nsde_net_add_groupnorm(struct nsde_net *net, int groups, double eps)
{
  const struct layer_args a = {.groups = groups, .eps = eps};
  return nsde__nn_add_layer(net, L_GN, &a);
}
