/*
 * Convolutions by im2col + GEMM, pixels as the M dimension (C = pixels x
 * channels), their backward pass, the weight packing of every convolution, and
 * the dispatch to the 3x3 kernels of conv3x3.c.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>
#include <string.h>

#include "conv-direct.h"
#include "nn-private.h"
#include "nn-internal.h"

void nsde__nn_to_nhwc(const float *src, float *dst, int c, int64_t p)
{
  for (int64_t i = 0; i < p; i++)
    for (int j = 0; j < c; j++)
      dst[i * c + j] = src[(int64_t)j * p + i];
}

void nsde__to_nchw(const float *src, float *dst, int c, int64_t p)
{
  for (int j = 0; j < c; j++)
    for (int64_t i = 0; i < p; i++)
      dst[(int64_t)j * p + i] = src[i * c + j];
}

/* ---- convolution ----------------------------------------------------------- */

int64_t nsde__nn_conv_kp(const struct layer *l)
{
  return (int64_t)(l->cin + (l->kind == L_CCONV)) * l->k * l->k;
}

/* col[p K' + (ky k + kx) cc + c]: pixel p's receptive field, tap-major with
 * the cc = cin (+1 time plane) channels contiguous; padding reads zero, the
 * time plane included. */
static void im2col_item(const struct layer *l, const float *in, float t, float *col)
{
  const int cc = l->cin + (l->kind == L_CCONV), off = l->kind == L_CCONV, k = l->k;
  const int64_t Kp = nsde__nn_conv_kp(l);
  for (int oy = 0; oy < l->hout; oy++)
    for (int ox = 0; ox < l->wout; ox++) {
      float *d = col + ((int64_t)oy * l->wout + ox) * Kp;
      for (int ky = 0; ky < k; ky++) {
        const int iy = oy * l->stride - l->pad + ky;
        for (int kx = 0; kx < k; kx++) {
          const int ix = ox * l->stride - l->pad + kx;
          float *seg = d + (ky * k + kx) * cc;
          if (iy < 0 || iy >= l->hin || ix < 0 || ix >= l->win) {
            memset(seg, 0, (size_t)cc * sizeof(float));
            continue;
          }
          if (off)
            seg[0] = t;
          memcpy(seg + off, in + ((int64_t)iy * l->win + ix) * l->cin,
                 (size_t)l->cin * sizeof(float));
        }
      }
    }
}

/* dx = the adjoint of im2col applied to dcol (time plane dropped). */
NSDE_CLONES static void col2im_item(const struct layer *l, const float *restrict dcol,
                                    float *restrict dx)
{
  const int cc = l->cin + (l->kind == L_CCONV), off = l->kind == L_CCONV, k = l->k;
  const int64_t Kp = nsde__nn_conv_kp(l);
  memset(dx, 0, (size_t)l->in_sz * sizeof(float));
  for (int oy = 0; oy < l->hout; oy++)
    for (int ox = 0; ox < l->wout; ox++) {
      const float *s = dcol + ((int64_t)oy * l->wout + ox) * Kp;
      for (int ky = 0; ky < k; ky++) {
        const int iy = oy * l->stride - l->pad + ky;
        if (iy < 0 || iy >= l->hin)
          continue;
        for (int kx = 0; kx < k; kx++) {
          const int ix = ox * l->stride - l->pad + kx;
          const float *seg = s + (ky * k + kx) * cc + off;
          float *d = dx + ((int64_t)iy * l->win + ix) * l->cin;
          if (ix < 0 || ix >= l->win)
            continue;
          for (int c = 0; c < l->cin; c++)
            d[c] += seg[c];
        }
      }
    }
}

/* The weights are packed tap-major; the biases follow in place. Packed
 * index j = o K' + tap cc + c walked in order, without a division per index
 * (one per index took 1.7% of a training step of the trained recipe). The
 * packing and the chunk reduction both map indices with it. */
static void conv_public_indices(const struct layer *l, int64_t j0, int n, int64_t *idx)
{
  const int64_t Kp = nsde__nn_conv_kp(l), nw = l->cout * Kp;
  const int cc = l->cin + (l->kind == L_CCONV), k = l->k;
  int64_t row = j0 / Kp * Kp;
  int tap = (int)(j0 % Kp / cc), c = (int)(j0 % Kp % cc);
  for (int q = 0; q < n; q++) {
    if (j0 + q >= nw) {
      idx[q] = j0 + q;
      continue;
    }
    idx[q] = row + (int64_t)c * k * k + tap; /* (o, c, ky, kx): tap = ky k + kx */
    if (++c == cc) {
      c = 0;
      if (++tap == k * k) {
        tap = 0;
        row += Kp;
      }
    }
  }
}

/* Where a chunk's gradients lie (nsde_layer_ops.public_indices): a direct
 * or few-channel layer's weights as [tap][cc][o], index
 * nsde__nn_grad_row(l, tap, c) + o (walked here in that order), so that
 * nsde__nn_direct_flush adds whole vectors of output channels (adding its
 * [c][tap] blocks into the packed [o][tap][c] order, eight channels per
 * cache line, took two thirds of the flush: 3.8% of a training step of the
 * trained recipe); every other convolution's as its packed weights. The
 * biases follow in place either way. */
static void conv_grad_indices(const struct layer *l, int64_t j0, int n, int64_t *idx)
{
  const int64_t Kp = nsde__nn_conv_kp(l), nw = l->cout * Kp;
  const int cc = l->cin + (l->kind == L_CCONV), O = l->cout;
  int tap, c, o;
  if (!nsde__nn_use_direct(l) && !nsde__nn_use_few(l)) {
    conv_public_indices(l, j0, n, idx);
    return;
  }
  tap = (int)(j0 / O / cc), c = (int)(j0 / O % cc), o = (int)(j0 % O);
  for (int q = 0; q < n; q++) {
    if (j0 + q >= nw) {
      idx[q] = j0 + q;
      continue;
    }
    idx[q] = (int64_t)o * Kp + (int64_t)c * 9 + tap; /* (o, c, ky, kx): tap = 3 ky + kx */
    if (++o == O) {
      o = 0;
      if (++c == cc) {
        c = 0;
        tap++;
      }
    }
  }
}

/* Every pass packs the weights it uses; a pass with the same parameters as
 * the last packing (the replays and the other drift evaluations of a step:
 * 22 per training batch of the CIFAR-10 recipe) reuses it. The parameters
 * are a user-writable buffer, so the test compares them, bit for bit. */
void nsde__nn_pack_weights(struct nsde_net *net)
{
  const size_t bytes = (size_t)net->np * sizeof(float);
  const int nt = net->ctx->threads;
  if (net->packed && !memcmp(net->packed_of, net->params, bytes))
    return;
  for (int i = 0; i < net->nl; i++) {
    const struct layer *l = &net->L[i];
    const int64_t Kp = nsde__nn_conv_kp(l);
    const float *W = net->params + l->poff;
    float *Wp = net->wpack + l->wpoff;
    if (l->kind != L_CONV && l->kind != L_CCONV)
      continue;
    for (int64_t j = 0; j < l->cout * Kp; j += 256) {
      int64_t idx[256];
      const int n = (int)(l->cout * Kp - j < 256 ? l->cout * Kp - j : 256);
      conv_public_indices(l, j, n, idx);
      for (int q = 0; q < n; q++)
        Wp[j + q] = W[idx[q]];
    }
    if (nsde__nn_use_winograd(l))
      nsde__nn_wino_pack(l, W, Wp + (size_t)l->cout * Kp, nsde__nn_dgrad_filters(net, l), nt);
    else if (nsde__nn_use_wino_reg(l))
      nsde__nn_wino_reg_pack(l, W, Wp + (size_t)l->cout * Kp, nsde__nn_dgrad_filters(net, l), nt);
    else if (nsde__nn_use_direct(l))
      nsde__nn_direct_pack(l, W, Wp + (size_t)l->cout * Kp, nsde__nn_dgrad_filters(net, l));
    else if (nsde__nn_use_few(l))
      nsde__nn_few_pack(l, W, Wp + (size_t)l->cout * Kp);
    else if (nsde__nn_use_s2(l))
      nsde__nn_s2_pack(l, W, Wp + (size_t)l->cout * Kp, nsde__nn_dgrad_filters(net, l));
    if (nsde__nn_is_3x3_same(l) && l->kind == L_CCONV)
      nsde__nn_time_response(
          l, W, Wp + (size_t)l->cout * Kp + (size_t)(nsde__nn_filter_planes(l) * l->cout * l->cin));
  }
  memcpy(net->packed_of, net->params, bytes);
  net->packed = true;
}

/* One item: out (P x cout) = col (P x K') Wp^T + bias; one thread's GEMM. */
void nsde__nn_conv_fwd_item(const struct nsde_net *net, const struct layer *l, const float *in,
                            float *out, float t, float *col, float *dcol, float *wt)
{
  const int64_t Kp = nsde__nn_conv_kp(l), P = (int64_t)l->hout * l->wout;
  const float *bias = net->params + l->poff + (size_t)l->cout * Kp;
  if (nsde__nn_use_direct(l)) {
    const float *wd = net->wpack + l->wpoff + (size_t)l->cout * Kp;
    const float *tr = l->kind == L_CCONV ? wd + nsde__nn_filter_planes(l) * l->cout * l->cin : NULL;
    nsde__direct_pad(in, l->hin, l->win, l->cin, col);
    if (nsde__nn_use_wino_reg(l))
      nsde__nn_wino_reg_fwd(col, l->hout, l->wout, l->cin, l->cout, wd, bias, tr, t, out, dcol);
    else
      nsde__direct_fwd(col, l->hout, l->wout, l->cin, l->cout, wd, bias, tr, t, out);
    return;
  }
  if (nsde__nn_use_few(l)) {
    nsde__nn_few_fwd_item(l, net->wpack + l->wpoff + (size_t)l->cout * Kp, bias, in, out, col);
    return;
  }
  if (nsde__nn_use_s2(l)) {
    nsde__nn_s2_fwd_item(l, net->wpack + l->wpoff + (size_t)l->cout * Kp, bias, in, out, col);
    return;
  }
  if (nsde__nn_use_winograd(l)) {
    const float *U = net->wpack + l->wpoff + (size_t)l->cout * Kp;
    nsde__nn_wino_conv(l, in, U, bias,
                       l->kind == L_CCONV ? U + nsde__nn_filter_planes(l) * l->cout * l->cin : NULL,
                       t, out, col, dcol, wt);
    return;
  }
  im2col_item(l, in, t, col);
  for (int64_t p = 0; p < P; p++)
    memcpy(out + p * l->cout, bias, (size_t)l->cout * sizeof(float));
  nsde__gemm(NULL, NSDE_DTYPE_FLOAT32, false, false, P, l->cout, Kp, 1.0, col, Kp, 1,
             net->wpack + l->wpoff, 1, Kp, 1.0, out, l->cout, 1);
}

/* db[o] += the sum of g[p][o] over the P pixels in order (restrict: db and
 * g never overlap, and the loop over o vectorises; cloned: as SSE code it
 * was 1% of a 2-thread training step of the trained recipe). */
NSDE_CLONES static void bias_grad(const float *restrict g, int64_t P, int cout, float *restrict db)
{
  for (int64_t p = 0; p < P; p++)
    for (int o = 0; o < cout; o++)
      db[o] += g[p * cout + o];
}

/* One item's backward: parameter gradients (packed layout) into gp unless
 * net->no_wgrad, dx if wanted. */
void nsde__nn_conv_bwd_item(const struct nsde_net *net, const struct layer *l, const float *in,
                            const float *g, float *dx, float *gp, float t, const struct scratch *sc)
{
  float *col = sc->col, *dcol = sc->dcol, *wt = sc->wt;
  const int64_t Kp = nsde__nn_conv_kp(l), P = (int64_t)l->hout * l->wout;
  float *dW = gp + l->poff;
  if (!net->no_wgrad)
    bias_grad(g, P, l->cout, dW + (size_t)l->cout * Kp);
  if (nsde__nn_use_direct(l)) {
    nsde__nn_direct_bwd_item(net, l, in, g, dx, t, sc);
    return;
  }
  if (nsde__nn_use_few(l)) {
    nsde__nn_few_bwd_item(l, net->wpack + l->wpoff + (size_t)l->cout * Kp, in, g,
                          net->no_wgrad ? NULL : sc->wacc + l->waoff, dx, col);
    return;
  }
  if (nsde__nn_use_s2(l)) {
    nsde__nn_s2_bwd_item(l, nsde__nn_dgrad_filters(net, l), in, g,
                         net->no_wgrad ? NULL : sc->wacc + l->waoff, dx, col, dcol);
    return;
  }
  if (!net->no_wgrad) {
    im2col_item(l, in, t, col);
    /* dW (cout x K') += g^T (cout x P) col (P x K') */
    nsde__gemm(NULL, NSDE_DTYPE_FLOAT32, false, false, l->cout, Kp, P, 1.0, g, 1, l->cout, col, Kp,
               1, 1.0, dW, Kp, 1);
  }
  if (dx && nsde__nn_use_winograd(l)) {
    /* the same Winograd forward on the transposed problem: g (cout channels)
     * correlated with the rotated kernels gives dx (cin channels) */
    struct layer lt = *l;
    lt.kind = L_CONV;
    lt.cin = l->cout;
    lt.cout = l->cin;
    nsde__nn_wino_conv(&lt, g, nsde__nn_dgrad_filters(net, l), NULL, NULL, 0.0f, dx, col, dcol, wt);
  } else if (dx) {
    /* dcol (P x K') = g (P x cout) Wp (cout x K') */
    nsde__gemm(NULL, NSDE_DTYPE_FLOAT32, false, false, P, Kp, l->cout, 1.0, g, l->cout, 1,
               net->wpack + l->wpoff, Kp, 1, 0.0, dcol, Kp, 1);
    col2im_item(l, dcol, dx);
  }
}

/* ---- group norm (channels-last item: P x C) ------------------------------- */

/* Group norm sums run over the pixels with one float accumulator per
 * channel (a vector across channels), in blocks of GN_BLOCK pixels whose
 * sums are added in double: float speed, double-like accuracy, and the same
 * order for every vector width. */

/* ---- the layer ops of conv2d and concat-conv2d -------------------------------- */

static enum nsde_status conv_add(struct nsde_net *net, struct layer *l, const struct layer_args *a)
{
  if (a->out < 1 || a->out > (1 << 16) || a->kernel < 1 || a->kernel > 64 || a->stride < 1 ||
      a->stride > 64 || a->pad < 0 || a->pad > 64)
    return nsde__error(net->ctx, NSDE_ERR_INVALID,
                       "conv2d: bad out_channels %d, kernel %d, stride %d or padding %d", a->out,
                       a->kernel, a->stride, a->pad);
  l->cout = a->out;
  l->k = a->kernel;
  l->stride = a->stride;
  l->pad = a->pad;
  l->hout = (l->hin + 2 * a->pad - a->kernel) / a->stride + 1;
  l->wout = (l->win + 2 * a->pad - a->kernel) / a->stride + 1;
  if (l->hin + 2 * a->pad < a->kernel || l->win + 2 * a->pad < a->kernel || l->hout < 1 ||
      l->wout < 1)
    return nsde__error(net->ctx, NSDE_ERR_SHAPE,
                       "conv2d: a %dx%d kernel does not fit a %dx%d input padded by %d", a->kernel,
                       a->kernel, l->hin, l->win, a->pad);
  l->np = (int64_t)a->out * nsde__nn_conv_kp(l) + a->out;
  return NSDE_OK;
}

static void conv_init(const struct layer *l, float *p, uint64_t *rng)
{
  nsde__nn_init_uniform(p, l->np, nsde__nn_conv_kp(l), rng);
}

/* A convolution's share of the net's scratch (the largest of im2col,
 * Winograd and direct), its packed weights at *wp, its weight-gradient
 * accumulator and its tape slot. */
static enum nsde_status conv_plan(struct nsde_net *net, int i, int64_t max_batch, size_t *wp)
{
  struct layer *l = &net->L[i];
  size_t col = (size_t)nsde__nn_conv_kp(l) * l->hout * l->wout;
  size_t wcol = nsde__nn_use_winograd(l) ? 16 * (size_t)nsde__nn_wino_tiles(l) *
                                               (size_t)(l->cin > l->cout ? l->cin : l->cout)
                                         : 0;
  /* direct: a padded item in col (the weight gradient has its own accumulator) */
  size_t dcol = nsde__nn_use_direct(l) ? (size_t)(l->hin + 2) * (size_t)(l->win + 2) *
                                             (size_t)(l->cin > l->cout ? l->cin : l->cout)
                                       : 0;
  if (nsde__nn_use_wino_reg(l)) {
    const size_t w5 = (size_t)nsde__nn_wino_reg_scratch(l->hout, l->wout, l->cin, l->cout);
    wcol = w5 > wcol ? w5 : wcol;
  }
  if (nsde__nn_use_few(l))
    dcol = nsde__nn_few_scratch(l);
  if (nsde__nn_use_s2(l))
    dcol = nsde__nn_s2_scratch(l);
  col = wcol > col ? wcol : col;
  col = dcol > col ? dcol : col;
  net->col_sz = col > net->col_sz ? col : net->col_sz;
  l->wpoff = (int64_t)*wp;
  l->waoff = nsde__nn_use_direct(l) || nsde__nn_use_few(l) || nsde__nn_use_s2(l)
                 ? (int64_t)net->wacc_sz
                 : -1;
  if (l->waoff >= 0)
    net->wacc_sz += (size_t)nsde__nn_wacc_size(l);
  l->stoff = nsde__nn_wgrad4_items(l) ? (int64_t)net->stage_sz : -1;
  if (nsde__nn_wgrad4_items(l))
    net->stage_sz +=
        ((size_t)nsde__nn_wino4_stage_size(l->hout, l->wout, l->cin, l->cout) + 15) & ~(size_t)15;
  *wp += (size_t)l->cout * (size_t)nsde__nn_conv_kp(l) + (size_t)nsde__nn_wino_extra(l);
  net->taped[i] = true;
  net->tape_off[i] = (int64_t)net->tape_slot;
  net->tape_slot += ((size_t)max_batch * (size_t)l->out_sz + 15) & ~(size_t)15;
  return NSDE_OK;
}

static int conv_forward(const struct nsde_net *net, int i, int64_t b, const float *in, float *out,
                        float t, const struct scratch *sc, bool replay)
{
  (void)b;
  if (!replay || !net->taped[i]) /* a replay finds taped outputs in place */
    nsde__nn_conv_fwd_item(net, &net->L[i], in, out, t, sc->col, sc->dcol, sc->wt);
  return 1;
}

static const float *conv_backward(const struct nsde_net *net, int i, int64_t b, const float *in,
                                  const float *y, const float *g, float *dst, float *gp, float t,
                                  const struct scratch *sc)
{
  (void)b;
  (void)y;
  nsde__nn_conv_bwd_item(net, &net->L[i], in, g, dst, gp, t, sc);
  return dst;
}

/* Both kinds: concat-conv2d has the time as one more input plane, which
 * nsde__nn_conv_kp counts. */
const struct layer_ops nsde__layer_conv = {
    .add = conv_add,
    .init = conv_init,
    .plan = conv_plan,
    .forward = conv_forward,
    .backward = conv_backward,
    .public_indices = conv_grad_indices,
};

NSDE_API enum nsde_status nsde_net_add_conv2d(struct nsde_net *net, int out_channels, int kernel,
                                              int stride, int padding)
{
  const struct layer_args a = {
      .out = out_channels, .kernel = kernel, .stride = stride, .pad = padding};
  return nsde__nn_add_layer(net, L_CONV, &a);
}

NSDE_API enum nsde_status nsde_net_add_concat_conv2d(struct nsde_net *net, int out_channels,
                                                     int kernel, int stride, int padding)
{
  const struct layer_args a = {
      .out = out_channels, .kernel = kernel, .stride = stride, .pad = padding};
  return nsde__nn_add_layer(net, L_CCONV, &a);
}
