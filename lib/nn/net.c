/*
 * Networks of float32 layers: conv2d, concat-conv2d (time plane), group norm,
 * ReLU, global average pool, linear. Items enter and leave NCHW; inside, each
 * item is channels-last and runs through all layers on one thread (items in
 * parallel, one-thread BLIS calls), so results do not depend on the thread
 * count. This file builds a net: the layer registry (each kind's shape,
 * initialisation and plan are in its own file, struct layer_ops), parameter
 * initialisation, the one allocation in nsde_net_finalize, the paper's drift
 * network.
 *
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conv-direct.h"
#include "nn-private.h"
#include "nn-internal.h"

NSDE_API enum nsde_status nsde_net_new(struct nsde_context *ctx, int channels, int height,
                                       int width, struct nsde_net **out)
{
  struct nsde_net *net;

  if (!out)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_net_new: output pointer is NULL");
  *out = NULL;
  if (!ctx)
    return NSDE_ERR_NULL;
  if (channels < 1 || height < 1 || width < 1 || channels > (1 << 20) || height > (1 << 16) ||
      width > (1 << 16))
    return nsde__error(ctx, NSDE_ERR_SHAPE, "nsde_net_new: bad input shape %d x %d x %d", channels,
                       height, width);
  net = calloc(1, sizeof(*net));
  if (!net)
    return nsde__error(ctx, NSDE_ERR_NOMEM, "out of memory");
  net->ctx = ctx;
  net->c = channels;
  net->h = height;
  net->w = width;
  *out = net;
  return NSDE_OK;
}

NSDE_API void nsde_net_free(struct nsde_net *net)
{
  if (!net)
    return;
  for (int i = 0; i < net->nl; i++)
    free(net->L[i].stats);
  free(net->L);
  free(net->act);
  free(net->own);
  free(net->taped);
  free(net->tape_off);
  free(net->fp);
  free(net->meta);
  nsde__free(net->tape);
  nsde__free(net->scr);
  nsde__free(net->mem);
  free(net);
}

/* The item shape the next layer receives. */
void nsde__nn_cur_shape(const struct nsde_net *net, int *c, int *h, int *w)
{
  if (net->nl == 0) {
    *c = net->c;
    *h = net->h;
    *w = net->w;
  } else {
    *c = net->L[net->nl - 1].cout;
    *h = net->L[net->nl - 1].hout;
    *w = net->L[net->nl - 1].wout;
  }
}

static enum nsde_status push(struct nsde_net *net, struct layer *l)
{
  if (!net)
    return NSDE_ERR_NULL;
  if (net->final)
    return nsde__error(net->ctx, NSDE_ERR_STATE, "layers cannot be added after nsde_net_finalize");
  if (net->nl == net->cap) {
    int cap = net->cap ? 2 * net->cap : 8;
    struct layer *nl = realloc(net->L, (size_t)cap * sizeof(*nl));
    if (!nl)
      return nsde__error(net->ctx, NSDE_ERR_NOMEM, "out of memory");
    net->L = nl;
    net->cap = cap;
  }
  nsde__nn_cur_shape(net, &l->cin, &l->hin, &l->win);
  l->in_sz = (int64_t)l->cin * l->hin * l->win;
  return NSDE_OK;
}

static const struct layer_ops *const layer_ops[L_N] = {
#define NSDE__LAYER_ENTRY(kind, name) [kind] = &nsde__layer_##name,
    NSDE__LAYERS(NSDE__LAYER_ENTRY)
#undef NSDE__LAYER_ENTRY
};

enum nsde_status nsde__nn_add_layer(struct nsde_net *net, enum lkind kind,
                                    const struct layer_args *a)
{
  struct layer l;
  enum nsde_status st;

  memset(&l, 0, sizeof(l));
  if ((st = push(net, &l)) != NSDE_OK)
    return st;
  l.kind = kind;
  l.ops = layer_ops[kind];
  l.cout = l.cin;
  l.hout = l.hin;
  l.wout = l.win;
  if (l.ops->add && (st = l.ops->add(net, &l, a)) != NSDE_OK)
    return st;
  l.out_sz = (int64_t)l.cout * l.hout * l.wout;
  net->L[net->nl++] = l;
  return NSDE_OK;
}

/* splitmix64: parameter initialisation only */
static uint64_t splitmix(uint64_t *s)
{
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void nsde__nn_init_uniform(float *p, int64_t n, int64_t fan, uint64_t *rng)
{
  double bound = 1.0 / sqrt((double)fan);
  for (int64_t j = 0; j < n; j++) {
    double u = (double)(splitmix(rng) >> 11) * 0x1.0p-53;
    p[j] = (float)((2.0 * u - 1.0) * bound);
  }
}

static void init_params(struct nsde_net *net, uint64_t seed)
{
  uint64_t st = seed ^ 0x6E736465ULL;
  for (int i = 0; i < net->nl; i++)
    if (net->L[i].ops->init)
      net->L[i].ops->init(&net->L[i], net->params + net->L[i].poff, &st);
}

/* Undo a finalize that failed part-way, so that a retry (for example with a
 * smaller max_batch after NSDE_ERR_NOMEM) does not leak what it allocated. */
static enum nsde_status unfinalize(struct nsde_net *net, enum nsde_status st)
{
  for (int i = 0; i < net->nl; i++) {
    free(net->L[i].stats);
    net->L[i].stats = NULL;
  }
  free(net->act);
  free(net->own);
  free(net->taped);
  free(net->tape_off);
  free(net->fp);
  nsde__free(net->mem);
  net->act = net->own = NULL;
  net->taped = NULL;
  net->tape_off = NULL;
  net->fp = NULL;
  net->mem = NULL;
  return st;
}

/* The one allocation of parameters, gradients, activations, packed weights
 * and the net's input and output buffers, carved in that order. */
static enum nsde_status carve(struct nsde_net *net, int64_t max_batch, size_t isz, size_t act_total,
                              size_t wp)
{
  const struct layer *last = &net->L[net->nl - 1];
  size_t total;
  char *m;

#define SZ(nfloats) nsde__round64((size_t)(nfloats)*4)
  total = 3 * SZ(net->np) + act_total + SZ(wp) + SZ((size_t)max_batch * isz) +
          SZ((size_t)max_batch * (size_t)last->out_sz) + SZ((size_t)net->max_chunks * net->np);
  net->mem = nsde__alloc(total);
  if (!net->mem)
    return nsde__error(net->ctx, NSDE_ERR_NOMEM, "nsde_net_finalize: cannot allocate %zu bytes",
                       total);
  memset(net->mem, 0, total);
  m = net->mem;
#define CARVE(ptr, nfloats)                                                                        \
  do {                                                                                             \
    (ptr) = (float *)(void *)m;                                                                    \
    m += SZ(nfloats);                                                                              \
  } while (0)
  CARVE(net->params, net->np);
  CARVE(net->grads, net->np);
  for (int i = 0; i < net->nl; i++)
    if (!net->L[i].fused_relu)
      CARVE(net->own[i], (size_t)max_batch * (size_t)net->L[i].out_sz);
  CARVE(net->wpack, wp);
  CARVE(net->packed_of, net->np);
  net->packed = false;
  CARVE(net->xin, (size_t)max_batch * isz);
  CARVE(net->yout, (size_t)max_batch * (size_t)last->out_sz);
  CARVE(net->part, (size_t)net->max_chunks * net->np);
#undef CARVE
#undef SZ
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_net_finalize(struct nsde_net *net, int64_t max_batch, uint64_t seed)
{
  size_t act_total = 0, wp = 0, isz;
  enum nsde_status st;

  if (!net)
    return NSDE_ERR_NULL;
  if (net->final || net->nl == 0)
    return nsde__error(net->ctx, NSDE_ERR_STATE,
                       "nsde_net_finalize: the net is already final or has no layer");
  if (max_batch < 1 || max_batch > (1 << 24))
    return nsde__error(net->ctx, NSDE_ERR_INVALID, "nsde_net_finalize: bad max_batch %lld",
                       (long long)max_batch);
  net->act = calloc((size_t)net->nl, sizeof(float *));
  net->own = calloc((size_t)net->nl, sizeof(float *));
  net->taped = calloc((size_t)net->nl, sizeof(bool));
  net->tape_off = calloc((size_t)net->nl, sizeof(int64_t));
  net->fp = calloc((size_t)max_batch, sizeof(uint64_t));
  if (!net->act || !net->own || !net->taped || !net->tape_off || !net->fp)
    return unfinalize(net, nsde__error(net->ctx, NSDE_ERR_NOMEM, "out of memory"));
  net->np = 0;
  isz = (size_t)net->c * net->h * net->w;
  net->item_sz = isz;
  net->maxc = net->c;
  net->col_sz = 0;
  net->wacc_sz = 0;
  net->stage_sz = 0;
  net->tape_slot = 0;
  for (int i = 0; i < net->nl; i++) {
    struct layer *l = &net->L[i];
    l->poff = net->np;
    net->np += l->np;
    if (l->ops->plan && (st = l->ops->plan(net, i, max_batch, &wp)) != NSDE_OK)
      return unfinalize(net, st);
    if (!l->fused_relu)
      act_total += nsde__round64((size_t)max_batch * (size_t)l->out_sz * 4);
    net->item_sz = (size_t)l->out_sz > net->item_sz ? (size_t)l->out_sz : net->item_sz;
    net->maxc = l->cin > net->maxc ? l->cin : net->maxc;
    net->maxc = l->cout > net->maxc ? l->cout : net->maxc;
  }
  net->col_sz = (net->col_sz + 15) & ~(size_t)15;
  net->item_sz = (net->item_sz + 15) & ~(size_t)15;
  /* at most 16 gradient chunks and 64 MiB of them; depends on the shapes only */
  net->max_chunks = net->np > 0 ? ((int64_t)64 << 20) / (net->np * 4) : 16;
  net->max_chunks = net->max_chunks < 1 ? 1 : net->max_chunks > 16 ? 16 : net->max_chunks;
  if (carve(net, max_batch, isz, act_total, wp) != NSDE_OK)
    return unfinalize(net, NSDE_ERR_NOMEM);
  memcpy(net->act, net->own, (size_t)net->nl * sizeof(float *));
  net->max_batch = max_batch;
  net->final = true;
  nsde__nn_use_threads(net);
  init_params(net, seed);
  return NSDE_OK;
}

NSDE_API int64_t nsde_net_num_params(const struct nsde_net *net)
{
  return net && net->final ? net->np : -1;
}

NSDE_API float *nsde_net_params(struct nsde_net *net)
{
  return net && net->final ? net->params : NULL;
}

NSDE_API float *nsde_net_grads(struct nsde_net *net)
{
  return net && net->final ? net->grads : NULL;
}

NSDE_API const float *nsde_net_params_const(const struct nsde_net *net)
{
  return net && net->final ? net->params : NULL;
}

NSDE_API const float *nsde_net_grads_const(const struct nsde_net *net)
{
  return net && net->final ? net->grads : NULL;
}

NSDE_API enum nsde_status nsde_net_get_output_shape(const struct nsde_net *net, int *channels,
                                                    int *height, int *width)
{
  if (!net || !channels || !height || !width)
    return NSDE_ERR_NULL;
  nsde__nn_cur_shape(net, channels, height, width);
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_net_zero_grads(struct nsde_net *net)
{
  if (!net)
    return NSDE_ERR_NULL;
  if (net->final)
    memset(net->grads, 0, (size_t)net->np * sizeof(float));
  return NSDE_OK;
}

/* ---- layout helpers ---------------------------------------------------------- */

/* Inside a net every spatial activation is one item after another, each
 * channels-last (H x W x C, "NHWC"): a convolution is then one GEMM with the
 * pixels as rows and the channels as columns, its output already in the
 * layout the next layer reads. Items enter and leave in NCHW unless the
 * model marked the net channels-last (nsde__net_set_layout). */
NSDE_API enum nsde_status nsde_net_new_paper_drift(struct nsde_context *ctx, int channels,
                                                   int height, int width, int groups,
                                                   int64_t max_batch, uint64_t seed,
                                                   struct nsde_net **out)
{
  struct nsde_net *net = NULL;
  enum nsde_status st = nsde_net_new(ctx, channels, height, width, &net);

  if (groups <= 0)
    groups = channels < 32 ? channels : 32;

  if (st != NSDE_OK) {
    if (out)
      *out = NULL;
    return st;
  }
  for (int i = 0; i < 3 && st == NSDE_OK; i++) {
    st = nsde_net_add_groupnorm(net, groups, 1e-5);
    if (st == NSDE_OK)
      st = nsde_net_add_relu(net);
    if (st == NSDE_OK)
      st = nsde_net_add_concat_conv2d(net, channels, 3, 1, 1);
  }
  if (st == NSDE_OK)
    st = nsde_net_add_groupnorm(net, groups, 1e-5);
  if (st == NSDE_OK)
    st = nsde_net_finalize(net, max_batch, seed);
  if (st != NSDE_OK) {
    nsde_net_free(net);
    net = NULL;
  }
  *out = net;
  return st;
}

void nsde__net_bind(struct nsde_net *net, float *params, float *grads)
{
  memcpy(params, net->params, (size_t)net->np * sizeof(float));
  memset(grads, 0, (size_t)net->np * sizeof(float));
  net->params = params;
  net->grads = grads;
}

int64_t nsde__net_out_size(const struct nsde_net *net)
{
  return net->L[net->nl - 1].out_sz;
}
