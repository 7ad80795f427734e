/*
 * A net's passes: batches split into runs of items per thread, each run
 * through the layers in groups of items, one layer at a time for a group
 * (per-thread scratch); per-chunk parameter gradients summed in a fixed
 * order.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>
#include <string.h>

#include "conv-direct.h"
#include "nn-private.h"
#include "nn-internal.h"

/* ---- per-thread scratch ------------------------------------------------------ */

/* Items per group of the backward pass (NSDE_BWD_GROUP, 8 by default, at
 * most 64): a group goes back through the layers one layer at a time, as
 * the forward's groups do, each item with its own pair of gradient buffers.
 * Fewer where the pairs would pass 4 MiB per thread (nets of large images,
 * whose own activations fill the cache anyway). */
static int choose_group(const char *e, int max)
{
  const long v = e ? strtol(e, NULL, 10) : 8;
  return v < 1 ? 1 : v > max ? max : (int)v;
}

static int choose_bwd_group(const char *e)
{
  return choose_group(e, 64);
}

static int bwd_group_items(const struct nsde_net *net)
{
  static int cached = -1;
  const int g = nsde__env_knob(&cached, "NSDE_BWD_GROUP", choose_bwd_group);
  const size_t fit = ((size_t)4 << 20) / (2 * sizeof(float) * net->item_sz);
  return (size_t)g <= fit ? g : fit > 1 ? (int)fit : 1;
}

static size_t scratch_floats(const struct nsde_net *net)
{
  return ((net->wacc_sz + 15) & ~(size_t)15) + net->stage_sz + 2 * net->col_sz +
         (2 * (size_t)bwd_group_items(net) + 2) * net->item_sz + 12 * (size_t)net->maxc +
         32 * (size_t)net->maxc + 64;
}

static struct scratch thread_scratch(const struct nsde_net *net, int tid)
{
  struct scratch sc;
  float *p = net->scr + (size_t)tid * scratch_floats(net);
  sc.wacc = p;
  p += (net->wacc_sz + 15) & ~(size_t)15;
  sc.stage = p;
  p += net->stage_sz;
  sc.col = p;
  sc.dcol = sc.col + net->col_sz;
  sc.tmp = sc.dcol + net->col_sz;
  sc.dxout = sc.tmp + net->item_sz;
  sc.dg = sc.dxout + net->item_sz;
  sc.acc = (double *)(void *)(sc.dg + 2 * (size_t)bwd_group_items(net) *
                                          net->item_sz); /* item_sz is a multiple of 16 */
  sc.wt = (float *)(void *)(sc.acc + 6 * (size_t)net->maxc);
  return sc;
}

/* ---- batch forward / backward -------------------------------------------------- */

static bool spatial(int c, int h, int w)
{
  return c > 1 && (int64_t)h * w > 1;
}

/* Whether a batch's input (NCHW -> channels-last) and output (back) are transposed. */
static bool transposes_input(const struct nsde_net *net)
{
  return !net->in_nhwc && spatial(net->c, net->h, net->w);
}

bool nsde__nn_transposes_output(const struct nsde_net *net)
{
  const struct layer *last = &net->L[net->nl - 1];
  return !net->out_nhwc && spatial(last->cout, last->hout, last->wout);
}

int nsde__nn_use_threads(struct nsde_net *net)
{
  int nt = net->ctx->threads;
  if (nt > net->nscr) {
    float *s = nsde__alloc(scratch_floats(net) * sizeof(float) * (size_t)nt);
    if (s) { /* else keep the threads there is scratch for: results do not change */
      /* the weight-gradient accumulators start at zero, and each chunk's
       * flush leaves them so (nsde__nn_direct_flush; F(4x4)'s du excepted,
       * which a chunk's first group overwrites) */
      for (int k = 0; k < nt; k++)
        memset(s + (size_t)k * scratch_floats(net), 0, net->wacc_sz * sizeof(float));
      nsde__free(net->scr);
      net->scr = s;
      net->nscr = nt;
    }
  }
  return nt < net->nscr ? nt : net->nscr;
}

/* Items per group of the forward pass: a group goes through the layers one
 * layer at a time, so a layer's packed filters (590 KB for a 64-channel
 * F(4x4) layer) are read from L2 for all its items instead of streaming
 * every layer's through the cache for each item. Each item's results are
 * the same whatever the grouping (items are independent in a forward). */
static int choose_fwd_group(const char *e)
{
  return choose_group(e, 4096);
}

static int fwd_group_items(void)
{
  static int cached = -1;
  return nsde__env_knob(&cached, "NSDE_FWD_GROUP", choose_fwd_group);
}

/* Items [b0, b1) forward, one layer at a time for all of them (x: the batch,
 * NCHW when the net transposes it). With replay, layers whose output is on
 * the tape are skipped. */
static void fwd_group(const struct nsde_net *net, int64_t b0, int64_t b1, const float *x, float t,
                      const struct scratch *sc, bool replay)
{
  const bool tin = transposes_input(net), tout = nsde__nn_transposes_output(net);
  const struct layer *last = &net->L[net->nl - 1];
  const int64_t isz = (int64_t)net->c * net->h * net->w;
  if (tin)
    for (int64_t b = b0; b < b1; b++)
      nsde__nn_to_nhwc(x + b * isz, net->xin + b * isz, net->c, (int64_t)net->h * net->w);
  for (int i = 0; i < net->nl;) {
    int ran = 1;
    for (int64_t b = b0; b < b1; b++) {
      const float *in = i > 0 ? net->act[i - 1] + b * net->L[i - 1].out_sz
                        : tin ? net->xin + b * isz
                              : x + b * isz;
      float *out = net->act[i] ? net->act[i] + b * net->L[i].out_sz : NULL;
      ran = net->L[i].ops->forward(net, i, b, in, out, t, sc, replay);
    }
    i += ran; /* the same for every item: fused layers are fused for all */
  }
  if (tout)
    for (int64_t b = b0; b < b1; b++)
      nsde__to_nchw(net->act[net->nl - 1] + b * last->out_sz, net->yout + b * last->out_sz,
                    last->cout, (int64_t)last->hout * last->wout);
}

void nsde__nn_run_forward(struct nsde_net *net, int64_t B, const float *x, float t, bool replay)
{
  const int nt = nsde__nn_use_threads(net);
  const int64_t G = fwd_group_items();
  (void)nt;
  nsde__nn_pack_weights(net);
  /* each thread takes an equal run of items, as a static schedule over the
   * items would, and goes through it a group at a time */
#pragma omp parallel num_threads(nt) if (B > 1)
  {
    const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
    const struct scratch sc = thread_scratch(net, tid);
    const unsigned fp = nsde__ftz_enter();
    for (int64_t b0 = B * tid / nth, end = B * (tid + 1) / nth; b0 < end; b0 += G)
      fwd_group(net, b0, b0 + G < end ? b0 + G : end, x, t, &sc, replay);
    nsde__ftz_leave(fp);
  }
}

const float *nsde__nn_output_of(const struct nsde_net *net)
{
  return nsde__nn_transposes_output(net) ? net->yout : net->act[net->nl - 1];
}

const float *nsde__net_forward_raw(struct nsde_net *net, int64_t B, const float *x, float t)
{
  nsde__nn_use_slot(net, -1); /* never write over the tape */
  nsde__nn_run_forward(net, B, x, t, false);
  return nsde__nn_output_of(net);
}

/* Items per gradient chunk: a chunk's parameter gradients are summed in item
 * order by one thread, then the chunks in chunk order, so the result depends
 * on B only, never on the thread count. At least 8 items per chunk past 32
 * items (at least 4 chunks below that, for the threads): each chunk zeroes
 * and flushes its own weight-gradient accumulators, which with a chunk per
 * 2 items cost a micro-batch of 32 a quarter of its time. */
static int64_t num_chunks(const struct nsde_net *net, int64_t B)
{
  int64_t nc = B / 8 > 4 ? B / 8 : 4;
  nc = nc < net->max_chunks ? nc : net->max_chunks;
  return B < nc ? B : nc;
}

/* Items [b0, b1) of a chunk backward from dy, one layer at a time for all
 * of them (the layer's filters read from the cache for each; each item's
 * results, and each layer's parameter sums over the items in item order, are
 * those of item after item). Item k's gradient moves between the two
 * buffers of its pair; dx (NCHW when the net transposes the input) may be
 * NULL; parameter gradients (packed layout) are added to gp. */
static void bwd_group(const struct nsde_net *net, int64_t b0, int64_t b1, const float *x,
                      const float *dy, float *dx, float *gp, float t, const struct scratch *sc)
{
  const bool tin = transposes_input(net), tout = nsde__nn_transposes_output(net);
  const struct layer *last = &net->L[net->nl - 1];
  const int64_t isz = (int64_t)net->c * net->h * net->w;
  const float *g[64];
  for (int64_t b = b0; b < b1; b++) {
    float *pair = sc->dg + 2 * (b - b0) * net->item_sz;
    g[b - b0] = dy + b * last->out_sz;
    if (tout) {
      nsde__nn_to_nhwc(g[b - b0], pair, last->cout, (int64_t)last->hout * last->wout);
      g[b - b0] = pair;
    }
  }
  for (int i = net->nl - 1; i >= 0; i--) {
    const struct layer *l = &net->L[i];
    for (int64_t b = b0; b < b1; b++) {
      float *pair = sc->dg + 2 * (b - b0) * net->item_sz, *dst;
      const float *in = i > 0 ? (net->act[i - 1] ? net->act[i - 1] + b * l->in_sz : NULL)
                        : tin ? net->xin + b * isz
                              : x + b * isz;
      const float *y = net->act[i] ? net->act[i] + b * l->out_sz : NULL;
      /* the buffer of the pair that g is not in (g may be either after a pass-through) */
      if (i > 0)
        dst = g[b - b0] == pair ? pair + net->item_sz : pair;
      else
        dst = dx ? (tin ? sc->dxout : dx + b * isz) : NULL;
      g[b - b0] = l->ops->backward(net, i, b, in, y, g[b - b0], dst, gp, t, sc);
      if (i == 0 && dx && tin)
        nsde__to_nchw(sc->dxout, dx + b * isz, net->c, (int64_t)net->h * net->w);
    }
  }
}

/* Parameters [j0, j0 + RED) of layer l (fewer at its end): the sum over
 * the nc chunks' gradients, in chunk order from 0.0f, added to gp at their
 * public places. Cloned: the baseline's SSE loads made it 2.7% of a
 * training step of the trained recipe, AVX-512's 1.7%. */
#define RED 256
NSDE_CLONES static void reduce_block(const struct nsde_net *net, const struct layer *l, int64_t j0,
                                     int64_t nc, float *gp)
{
  const int n = (int)(l->np - j0 < RED ? l->np - j0 : RED);
  const float *p = net->part + l->poff + j0;
  float s[RED];
  int64_t idx[RED];
  for (int k = 0; k < n; k++)
    s[k] = 0.0f;
  for (int64_t c = 0; c < nc; c++)
    for (int k = 0; k < n; k++)
      s[k] += p[c * net->np + k];
  if (!l->ops->public_indices) {
    for (int k = 0; k < n; k++)
      gp[l->poff + j0 + k] += s[k];
    return;
  }
  l->ops->public_indices(l, j0, n, idx);
  for (int k = 0; k < n; k++)
    gp[l->poff + idx[k]] += s[k];
}

void nsde__net_backward_raw(struct nsde_net *net, int64_t B, const float *x, const float *dy,
                            float *dx, float *gp, float t)
{
  const int nt = nsde__nn_use_threads(net);
  const int64_t nc = num_chunks(net, B), np = net->np;
  (void)nt;
  /* the packed weights are those of the forward pass this follows; each
   * chunk zeroes its own gradients (a serial memset of all of them, 4.8 MB
   * per drift backward of the trained recipe, left the other thread waiting);
   * the weight-gradient accumulators are zero already (see above) */
#pragma omp parallel for schedule(static) num_threads(nt) if (nc > 1)
  for (int64_t c = 0; c < nc; c++) {
    const struct scratch sc = thread_scratch(net, omp_get_thread_num());
    const unsigned fp = nsde__ftz_enter();
    const int64_t end = (c + 1) * B / nc, G = bwd_group_items(net);
    memset(net->part + c * np, 0, (size_t)np * sizeof(float));
    for (int64_t b0 = c * B / nc; b0 < end; b0 += G)
      bwd_group(net, b0, b0 + G < end ? b0 + G : end, x, dy, dx, net->part + c * np, t, &sc);
    nsde__nn_direct_flush(net, net->part + c * np, &sc);
    nsde__ftz_leave(fp);
  }
  /* reduce the chunks in order, mapping packed convolution weights back:
   * blocks of RED parameters, each summed over the chunks in chunk order
   * (one contiguous run per chunk; a loop per parameter over the chunks,
   * strided by np and scalar, took 4.4% of a training step of the trained
   * recipe), then moved to their public places */
  for (int i = 0; i < net->nl; i++) {
    const struct layer *l = &net->L[i];
    const int64_t nb = (l->np + RED - 1) / RED;
#pragma omp parallel for schedule(static) num_threads(nt) if (l->np > NSDE_PAR_MIN / 8)
    for (int64_t q = 0; q < nb; q++)
      reduce_block(net, l, q * RED, nc, gp);
  }
}

#undef RED

void nsde__net_set_no_wgrad(struct nsde_net *net, bool on)
{
  net->no_wgrad = on;
}

void nsde__net_set_no_tape(struct nsde_net *net, bool on)
{
  net->no_tape = on;
}

void nsde__net_set_layout(struct nsde_net *net, bool in_nhwc, bool out_nhwc)
{
  net->in_nhwc = in_nhwc;
  net->out_nhwc = out_nhwc;
}
