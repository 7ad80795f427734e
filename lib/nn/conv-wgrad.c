/*
 * The weight gradients of the direct and register-blocked Winograd
 * convolutions (conv-direct.c, conv-wino.c): each item's added to its
 * chunk's accumulator in the kernels' layout (F(4x4)'s through groups of
 * items), then moved into the packed gradient once per chunk.
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "conv-direct.h"
#include "nn-private.h"
#include "nn-internal.h"

/* tg[tap][o] += t times the sum of g[p][o] over the output pixels p whose
 * tap reads inside the image (the time plane is zero in the padding). Row
 * sums first (whole row, without the first pixel, without the last), then
 * the rows each tap reads. Every sum runs over the pixels in order, one
 * channel per lane (the loops over o vectorise; a loop over pixels per
 * channel, strided, and the strided adds into dW took 3.5% of a training
 * step at 8x8; nsde__nn_direct_flush adds tg to dW once per chunk; cloned:
 * as SSE code it was 1.5% of a 2-thread step of the trained recipe). rows
 * holds 3 hout + 1 rows of cout floats. */
NSDE_CLONES static void time_plane_grad(const struct layer *l, const float *g, float t, float *tg,
                                        float *rows)
{
  const int H = l->hout, Wd = l->wout, O = l->cout;
  float *restrict acc = rows + (int64_t)H * 3 * O;
  for (int oy = 0; oy < H; oy++) {
    float *restrict r = rows + (int64_t)oy * 3 * O;
    const float *restrict gr = g + (int64_t)oy * Wd * O;
    const float *restrict last = gr + (int64_t)(Wd - 1) * O;
    for (int o = 0; o < O; o++)
      acc[o] = 0.0f;
    for (int ox = 1; ox < Wd - 1; ox++)
      for (int o = 0; o < O; o++)
        acc[o] += gr[(int64_t)ox * O + o];
    /* one store stream per loop: they vectorise (one loop of three did not) */
    for (int o = 0; o < O; o++)
      r[2 * O + o] = acc[o] + (Wd > 1 ? gr[o] : 0.0f); /* without the last */
    for (int o = 0; o < O; o++)
      r[O + o] = acc[o] + (Wd > 1 ? last[o] : 0.0f); /* without ox 0 */
    for (int o = 0; o < O; o++)
      r[o] = acc[o] + gr[o] + (Wd > 1 ? last[o] : 0.0f); /* whole row */
  }
  for (int tap = 0; tap < 9; tap++) {
    const int ky = tap / 3, kx = tap % 3, which = kx == 1 ? 0 : kx == 0 ? 1 : 2;
    const int y0 = ky == 0 ? 1 : 0, y1 = ky == 2 ? H - 1 : H;
    if (Wd == 1 && kx != 1)
      continue; /* a one-pixel-wide image: the side columns read only padding */
    for (int o = 0; o < O; o++)
      acc[o] = 0.0f;
    for (int oy = y0; oy < y1; oy++)
      for (int o = 0; o < O; o++)
        acc[o] += rows[((int64_t)oy * 3 + which) * O + o];
    for (int o = 0; o < O; o++)
      tg[tap * O + o] += t * acc[o];
  }
}

/* Items per group of F(4x4)'s weight gradient (0: not that way). */
int nsde__nn_wgrad4_items(const struct layer *l)
{
  return nsde__nn_use_wino_reg(l) ? nsde__nn_wino4_wgrad_items(l->hout, l->wout) : 0;
}

/* Planes of a direct layer's kernel weight-gradient accumulator: Winograd's
 * du[xi][c][o] (F(4x4) or F(2x2)), the direct kernels' [tap][c][o], or a
 * 4x4 / stride 2 layer's [(a, b)][(dy, dx, c)][o] (conv-s2.c). */
static int kernel_grad_planes(const struct layer *l)
{
  return nsde__nn_wgrad4_items(l) ? 36 : nsde__nn_use_wino_reg(l) || nsde__nn_use_s2(l) ? 16 : 9;
}

static int64_t kernel_grads_size(const struct layer *l)
{
  return kernel_grad_planes(l) * (int64_t)l->cin * l->cout;
}

/* A concat-conv's time-plane weight gradients [tap][o]: floats, and where
 * they lie in the chunk's accumulators (after the kernels'). */
static int64_t time_grads_size(const struct layer *l)
{
  return l->kind == L_CCONV ? 9 * (int64_t)l->cout : 0;
}

static float *time_grads(const struct layer *l, float *wacc)
{
  return wacc + l->waoff + kernel_grads_size(l);
}

/* F(4x4)'s weight gradient: [0] the items staged in the group, [1] the
 * groups summed into du in this chunk (the first stores, so du is never
 * zeroed); after the time-plane gradients, zero between chunks. 16 floats
 * are kept for them, so the next layer's accumulators stay 64-byte aligned. */
static int *staged_items(const struct layer *l, float *wacc)
{
  return (int *)(void *)(time_grads(l, wacc) + time_grads_size(l));
}

int64_t nsde__nn_wacc_size(const struct layer *l)
{
  return kernel_grads_size(l) + time_grads_size(l) + (nsde__nn_wgrad4_items(l) ? 16 : 0);
}

/* The direct kernels' backward for one item: the weight gradient added to
 * the chunk's accumulator sc->wacc (Winograd's du or the direct kernels'
 * [tap][c][o]; F(4x4)'s through the item's group in sc->stage; moved into
 * the packed layout once per chunk by nsde__nn_direct_flush), the time plane's
 * gradient into dW, and dx. */
void nsde__nn_direct_bwd_item(const struct nsde_net *net, const struct layer *l, const float *in,
                              const float *g, float *dx, float t, const struct scratch *sc)
{
  float *col = sc->col, *dcol = sc->dcol, *wacc = sc->wacc;
  if (!net->no_wgrad) {
    const int items = nsde__nn_wgrad4_items(l);
    nsde__direct_pad(in, l->hin, l->win, l->cin, col);
    if (items) {
      int *n = staged_items(l, wacc);
      float *stage = sc->stage + l->stoff;
      nsde__nn_wino4_wgrad_add(col, l->hout, l->wout, l->cin, g, l->cout, n[0], stage);
      if (++n[0] == items) {
        nsde__nn_wino4_wgrad_sum(l->hout, l->wout, l->cin, l->cout, n[0], stage, wacc + l->waoff,
                                 n[1]++ > 0);
        n[0] = 0;
      }
    } else if (nsde__nn_use_wino_reg(l))
      nsde__nn_wino_reg_wgrad(col, l->hout, l->wout, l->cin, g, l->cout, wacc + l->waoff, dcol);
    else
      nsde__direct_wgrad(col, l->hout, l->wout, l->cin, g, l->cout, wacc + l->waoff);
    if (l->kind == L_CCONV)
      time_plane_grad(l, g, t, time_grads(l, wacc), col);
  }
  if (dx) {
    nsde__direct_pad(g, l->hout, l->wout, l->cout, col);
    if (nsde__nn_use_wino_reg(l))
      nsde__nn_wino_reg_fwd(col, l->hin, l->win, l->cout, l->cin, nsde__nn_dgrad_filters(net, l),
                            NULL, NULL, 0.0f, dx, dcol);
    else
      nsde__direct_fwd(col, l->hin, l->win, l->cout, l->cin, nsde__nn_dgrad_filters(net, l), NULL,
                       NULL, 0.0f, dx);
  }
}

/* g[k][j] = (G^T u G)[k / 3][k % 3] for the 16 planes u[xi][0 .. n) of
 * F(2x2, 3x3), G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]. */
static inline void flush_g2(const float *const u[], int n, float g[9][64])
{
  float r[3][4][64];
  for (int s = 0; s < 4; s++)
    for (int j = 0; j < n; j++) {
      r[0][s][j] = u[s][j] + 0.5f * (u[4 + s][j] + u[8 + s][j]);
      r[1][s][j] = 0.5f * (u[4 + s][j] - u[8 + s][j]);
      r[2][s][j] = 0.5f * (u[4 + s][j] + u[8 + s][j]) + u[12 + s][j];
    }
  for (int k = 0; k < 3; k++)
    for (int j = 0; j < n; j++) {
      g[3 * k][j] = r[k][0][j] + 0.5f * (r[k][1][j] + r[k][2][j]);
      g[3 * k + 1][j] = 0.5f * (r[k][1][j] - r[k][2][j]);
      g[3 * k + 2][j] = 0.5f * (r[k][1][j] + r[k][2][j]) + r[k][3][j];
    }
}

/* The same for the 36 planes of F(4x4, 3x3) and its G (conv3x3.c's
 * wino4_g): the columns of G are [1 1/3 -1/3 -16/15 1/15 0], [0 1/3 1/3
 * -8/15 -2/15 0] and [0 1/3 -1/3 -4/15 4/15 1]. */
static inline void g4t(float u0, float u1, float u2, float u3, float u4, float u5, float *r0,
                       float *r1, float *r2)
{
  const float d = (1.0f / 3) * (u1 - u2), e = (1.0f / 3) * (u1 + u2);
  *r0 = u0 + d - (16.0f / 15) * u3 + (1.0f / 15) * u4;
  *r1 = e - (8.0f / 15) * u3 - (2.0f / 15) * u4;
  *r2 = d - (4.0f / 15) * u3 + (4.0f / 15) * u4 + u5;
}

static inline void flush_g4(const float *const u[], int n, float g[9][64])
{
  float r[3][6][64];
  for (int s = 0; s < 6; s++)
    for (int j = 0; j < n; j++)
      g4t(u[s][j], u[6 + s][j], u[12 + s][j], u[18 + s][j], u[24 + s][j], u[30 + s][j], &r[0][s][j],
          &r[1][s][j], &r[2][s][j]);
  for (int k = 0; k < 3; k++)
    for (int j = 0; j < n; j++)
      g4t(r[k][0][j], r[k][1][j], r[k][2][j], r[k][3][j], r[k][4][j], r[k][5][j], &g[3 * k][j],
          &g[3 * k + 1][j], &g[3 * k + 2][j]);
}

/* The Winograd weight gradient du[xi][c][o] of a chunk (nx = 16 or 36
 * planes) into dW ([tap][cc][o], nsde__nn_grad_row): tap (ky, kx)
 * gets (G^T du G)[ky][kx]; F(2x2)'s du is zeroed. The transform runs over
 * output channels in blocks of 64 (the loops over o vectorise) for 8 input
 * channels at a time. */
#define FLUSH_C 8
NSDE_CLONES static void wino_flush(const struct layer *l, int nx, float *du, float *dW, int off)
{
  const int64_t cs = (int64_t)l->cin * l->cout;
  for (int c0 = 0; c0 < l->cin; c0 += FLUSH_C)
    for (int o0 = 0; o0 < l->cout; o0 += 64) {
      const int n = l->cout - o0 < 64 ? l->cout - o0 : 64;
      const int nc = l->cin - c0 < FLUSH_C ? l->cin - c0 : FLUSH_C;
      float g[FLUSH_C][9][64];
      for (int ci = 0; ci < nc; ci++) {
        const float *u[36];
        for (int xi = 0; xi < nx; xi++)
          u[xi] = du + xi * cs + (int64_t)(c0 + ci) * l->cout + o0;
        if (nx == 16)
          flush_g2(u, n, g[ci]);
        else
          flush_g4(u, n, g[ci]);
      }
      for (int tap = 0; tap < 9; tap++)
        for (int ci = 0; ci < nc; ci++) {
          float *d = dW + nsde__nn_grad_row(l, tap, off + c0 + ci) + o0;
          for (int j = 0; j < n; j++)
            d[j] += g[ci][tap][j];
        }
    }
  if (nx == 16) /* F(4x4)'s du is not zeroed: a chunk's first group stores into it */
    memset(du, 0, 16 * (size_t)cs * sizeof(float));
}
#undef FLUSH_C

/* A chunk's direct weight gradients into its gradient gp (which holds zeros
 * there: nothing else writes those entries, so the sum per item is the one
 * the per-item transposition gave); the accumulators are zeroed. A direct
 * or few-channel layer's lie [tap][cc][o] there (nsde__nn_grad_row), a
 * stride-2 layer's as its packed weights. */
void nsde__nn_direct_flush(const struct nsde_net *net, float *gp, const struct scratch *sc)
{
  float *wacc = sc->wacc;
  if (net->no_wgrad)
    return; /* the accumulators hold zeros */
  for (int i = 0; i < net->nl; i++) {
    const struct layer *l = &net->L[i];
    if ((l->kind != L_CONV && l->kind != L_CCONV) || l->waoff < 0)
      continue;
    {
      const int off = l->kind == L_CCONV, O = l->cout;
      float *dW = gp + l->poff, *dwd = wacc + l->waoff;
      if (l->kind == L_CCONV) { /* dW holds zeros there, so the sum is the per-item one */
        float *tg = time_grads(l, wacc);
        for (int tap = 0; tap < 9; tap++)
          for (int o = 0; o < O; o++)
            dW[nsde__nn_grad_row(l, tap, 0) + o] += tg[tap * O + o];
        memset(tg, 0, (size_t)time_grads_size(l) * sizeof(float));
      }
      if (nsde__nn_wgrad4_items(l)) {
        int *n = staged_items(l, wacc);
        if (n[0]) /* the chunk's last group */
          nsde__nn_wino4_wgrad_sum(l->hout, l->wout, l->cin, l->cout, n[0], sc->stage + l->stoff,
                                   dwd, n[1] > 0);
        n[0] = n[1] = 0;
      }
      if (nsde__nn_use_wino_reg(l)) {
        wino_flush(l, kernel_grad_planes(l), dwd, dW, off);
        continue;
      }
      if (nsde__nn_use_s2(l)) {
        nsde__nn_s2_flush(l, dwd, dW);
        continue;
      }
      for (int tap = 0; tap < 9; tap++)
        for (int c = 0; c < l->cin; c++) {
          float *d = dW + nsde__nn_grad_row(l, tap, off + c);
          const float *s = dwd + ((int64_t)tap * l->cin + c) * O;
          for (int o = 0; o < O; o++)
            d[o] += s[o];
        }
      memset(dwd, 0, 9 * (size_t)l->cin * O * sizeof(float));
    }
  }
}
