/*
 * Networks of float32 layers: conv2d, concat-conv2d (time plane), group norm,
 * ReLU, global average pool, linear. Items enter and leave NCHW; inside, each
 * item is channels-last and runs through all layers on one thread (items in
 * parallel, one-thread BLIS calls), so results do not depend on the thread
 * count. 3x3/stride 1/pad 1 convolutions use Winograd F(2x2,3x3) forward;
 * the rest im2col + GEMM with the pixels as the M dimension (C = pixels x
 * channels). An optional tape keeps convolution outputs for the backward pass.
 *
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#else
static int omp_get_thread_num(void) { return 0; }
#endif

#include "conv-direct.h"
#include "func-private.h"
#include "nn-private.h"
#include "nsde-private.h"

enum lkind { L_CONV, L_CCONV, L_GN, L_RELU, L_POOL, L_LINEAR };

struct layer {
  enum lkind kind;
  int cin, hin, win, cout, hout, wout; /* cin excludes the time plane */
  int k, stride, pad, groups;
  float eps;
  int64_t poff, np, in_sz, out_sz;
  int64_t wpoff;   /* convolution: packed weights in net->wpack */
  int64_t waoff;   /* direct convolution: its weight-gradient accumulator in the scratch (-1: none) */
  bool fused_relu; /* group norm followed by ReLU: writes the ReLU's output */
  float *stats;    /* GN: mean and rstd per (item, group) */
};

struct tape_meta {
  double t;
  int64_t B;
  uint64_t xh, ph;
  bool valid;
};

struct nsde_net {
  struct nsde_context *ctx;
  int c, h, w;
  struct layer *L;
  int nl, cap;
  bool final;
  int64_t max_batch, np;
  float *params, *grads;
  float **act;     /* act[i]: output of layer i (channels-last items) */
  float **own;     /* the net's own output buffers (NULL for a fused group norm) */
  bool *taped;     /* layer i's output is kept on the tape */
  int64_t *tape_off;
  float *wpack;    /* convolution weights, tap-major (see im2col_item) */
  float *xin;      /* channels-last copy of an NCHW input batch */
  float *yout;     /* NCHW copy of a spatial output batch */
  float *part;     /* per-chunk parameter gradients */
  int64_t max_chunks;
  uint64_t *fp;    /* per-item fingerprints */
  size_t col_sz, item_sz;
  size_t wacc_sz;  /* per-thread direct weight-gradient accumulators, all layers */
  int maxc;
  float *scr;      /* per-thread scratch */
  int nscr;
  bool in_nhwc, out_nhwc;
  float *tape;     /* tape_n slots of tape_slot floats: the convolution outputs of one eval */
  struct tape_meta *meta;
  size_t tape_slot;
  int64_t tape_n, tape_next, tape_hits, tape_misses;
  void *mem;
};

static int64_t conv_kp(const struct layer *l);
static bool use_winograd(const struct layer *l);
static bool use_direct(const struct layer *l);
static int64_t wino_tiles(const struct layer *l);
static int64_t wino_extra(const struct layer *l);
static int use_threads(struct nsde_net *net);

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
    return nsde__error(ctx, NSDE_ERR_SHAPE, "nsde_net_new: bad input shape %d x %d x %d",
                       channels, height, width);
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
static void cur_shape(const struct nsde_net *net, int *c, int *h, int *w)
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
  cur_shape(net, &l->cin, &l->hin, &l->win);
  l->in_sz = (int64_t)l->cin * l->hin * l->win;
  return NSDE_OK;
}

static enum nsde_status add_conv(struct nsde_net *net, enum lkind kind, int out_channels,
                                 int kernel, int stride, int padding)
{
  struct layer l;
  enum nsde_status st;
  int64_t fan;

  memset(&l, 0, sizeof(l));
  if ((st = push(net, &l)) != NSDE_OK)
    return st;
  if (out_channels < 1 || out_channels > (1 << 16) || kernel < 1 || kernel > 64 || stride < 1 ||
      stride > 64 || padding < 0 || padding > 64)
    return nsde__error(net->ctx, NSDE_ERR_INVALID,
                       "conv2d: bad out_channels %d, kernel %d, stride %d or padding %d",
                       out_channels, kernel, stride, padding);
  l.kind = kind;
  l.cout = out_channels;
  l.k = kernel;
  l.stride = stride;
  l.pad = padding;
  l.hout = (l.hin + 2 * padding - kernel) / stride + 1;
  l.wout = (l.win + 2 * padding - kernel) / stride + 1;
  if (l.hin + 2 * padding < kernel || l.win + 2 * padding < kernel || l.hout < 1 || l.wout < 1)
    return nsde__error(net->ctx, NSDE_ERR_SHAPE,
                       "conv2d: a %dx%d kernel does not fit a %dx%d input padded by %d", kernel,
                       kernel, l.hin, l.win, padding);
  fan = (int64_t)(l.cin + (kind == L_CCONV)) * kernel * kernel;
  l.np = (int64_t)out_channels * fan + out_channels;
  l.out_sz = (int64_t)l.cout * l.hout * l.wout;
  net->L[net->nl++] = l;
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_net_add_conv2d(struct nsde_net *net, int out_channels, int kernel,
                                              int stride, int padding)
{
  return add_conv(net, L_CONV, out_channels, kernel, stride, padding);
}

NSDE_API enum nsde_status nsde_net_add_concat_conv2d(struct nsde_net *net, int out_channels,
                                                     int kernel, int stride, int padding)
{
  return add_conv(net, L_CCONV, out_channels, kernel, stride, padding);
}

static enum nsde_status add_simple(struct nsde_net *net, enum lkind kind, int groups, double eps,
                                   int out_features)
{
  struct layer l;
  enum nsde_status st;

  memset(&l, 0, sizeof(l));
  if ((st = push(net, &l)) != NSDE_OK)
    return st;
  l.kind = kind;
  l.cout = l.cin;
  l.hout = l.hin;
  l.wout = l.win;
  switch (kind) {
  case L_GN:
    if (groups < 1 || l.cin % groups != 0 || !(eps > 0) || !isfinite(eps))
      return nsde__error(net->ctx, NSDE_ERR_INVALID,
                         "groupnorm: %d groups must divide %d channels, eps must be > 0", groups,
                         l.cin);
    l.groups = groups;
    l.eps = (float)eps;
    l.np = 2 * (int64_t)l.cin;
    break;
  case L_POOL:
    l.hout = l.wout = 1;
    break;
  case L_LINEAR:
    if (out_features < 1 || out_features > (1 << 24))
      return nsde__error(net->ctx, NSDE_ERR_INVALID, "linear: bad out_features %d", out_features);
    l.cout = out_features;
    l.hout = l.wout = 1;
    l.np = (int64_t)out_features * l.in_sz + out_features;
    break;
  default:
    break;
  }
  l.out_sz = (int64_t)l.cout * l.hout * l.wout;
  net->L[net->nl++] = l;
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_net_add_groupnorm(struct nsde_net *net, int groups, double eps)
{
  return add_simple(net, L_GN, groups, eps, 0);
}

NSDE_API enum nsde_status nsde_net_add_relu(struct nsde_net *net)
{
  return add_simple(net, L_RELU, 0, 0, 0);
}

NSDE_API enum nsde_status nsde_net_add_avgpool(struct nsde_net *net)
{
  return add_simple(net, L_POOL, 0, 0, 0);
}

NSDE_API enum nsde_status nsde_net_add_linear(struct nsde_net *net, int out_features)
{
  return add_simple(net, L_LINEAR, 0, 0, out_features);
}

/* splitmix64: parameter initialisation only */
static uint64_t splitmix(uint64_t *s)
{
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static void init_params(struct nsde_net *net, uint64_t seed)
{
  uint64_t st = seed ^ 0x6E736465ULL;
  for (int i = 0; i < net->nl; i++) {
    struct layer *l = &net->L[i];
    float *p = net->params + l->poff;
    if (l->kind == L_GN) {
      for (int c = 0; c < l->cin; c++) {
        p[c] = 1.0f;
        p[l->cin + c] = 0.0f;
      }
    } else if (l->np > 0) {
      int64_t fan = l->kind == L_LINEAR ? l->in_sz
                                        : (int64_t)(l->cin + (l->kind == L_CCONV)) * l->k * l->k;
      double bound = 1.0 / sqrt((double)fan);
      for (int64_t j = 0; j < l->np; j++) {
        double u = (double)(splitmix(&st) >> 11) * 0x1.0p-53;
        p[j] = (float)((2.0 * u - 1.0) * bound);
      }
    }
  }
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

NSDE_API enum nsde_status nsde_net_finalize(struct nsde_net *net, int64_t max_batch,
                                            uint64_t seed)
{
  size_t total = 0, act_total = 0, wp = 0, isz;
  const struct layer *last;
  char *m;

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
  net->tape_slot = 0;
  for (int i = 0; i < net->nl; i++) {
    struct layer *l = &net->L[i];
    l->poff = net->np;
    net->np += l->np;
    l->fused_relu = l->kind == L_GN && i + 1 < net->nl && net->L[i + 1].kind == L_RELU;
    if (!l->fused_relu)
      act_total += ((size_t)max_batch * (size_t)l->out_sz * 4 + 63) & ~(size_t)63;
    if (l->kind == L_CONV || l->kind == L_CCONV) {
      size_t col = (size_t)conv_kp(l) * l->hout * l->wout;
      size_t wcol = use_winograd(l) ? 16 * (size_t)wino_tiles(l) *
                                          (size_t)(l->cin > l->cout ? l->cin : l->cout) : 0;
      /* direct: a padded item in col (the weight gradient has its own accumulator) */
      size_t dcol = use_direct(l) ? (size_t)(l->hin + 2) * (size_t)(l->win + 2) *
                                            (size_t)(l->cin > l->cout ? l->cin : l->cout) : 0;
      col = wcol > col ? wcol : col;
      col = dcol > col ? dcol : col;
      net->col_sz = col > net->col_sz ? col : net->col_sz;
      l->wpoff = (int64_t)wp;
      l->waoff = use_direct(l) ? (int64_t)net->wacc_sz : -1;
      if (use_direct(l))
        net->wacc_sz += 9 * (size_t)l->cin * (size_t)l->cout;
      wp += (size_t)l->cout * (size_t)conv_kp(l) + (size_t)wino_extra(l);
      net->taped[i] = true;
      net->tape_off[i] = (int64_t)net->tape_slot;
      net->tape_slot += ((size_t)max_batch * (size_t)l->out_sz + 15) & ~(size_t)15;
    }
    if (l->kind == L_GN) {
      l->stats = calloc((size_t)(2 * max_batch * l->groups), sizeof(float));
      if (!l->stats)
        return unfinalize(net, nsde__error(net->ctx, NSDE_ERR_NOMEM, "out of memory"));
    }
    net->item_sz = (size_t)l->out_sz > net->item_sz ? (size_t)l->out_sz : net->item_sz;
    net->maxc = l->cin > net->maxc ? l->cin : net->maxc;
    net->maxc = l->cout > net->maxc ? l->cout : net->maxc;
  }
  net->col_sz = (net->col_sz + 15) & ~(size_t)15;
  net->item_sz = (net->item_sz + 15) & ~(size_t)15;
  /* at most 16 gradient chunks and 64 MiB of them; depends on the shapes only */
  net->max_chunks = net->np > 0 ? ((int64_t)64 << 20) / (net->np * 4) : 16;
  net->max_chunks = net->max_chunks < 1 ? 1 : net->max_chunks > 16 ? 16 : net->max_chunks;
  last = &net->L[net->nl - 1];
#define SZ(nfloats) ((((size_t)(nfloats)) * 4 + 63) & ~(size_t)63)
  total = 2 * SZ(net->np) + act_total + SZ(wp) + SZ((size_t)max_batch * isz) +
          SZ((size_t)max_batch * (size_t)last->out_sz) + SZ((size_t)net->max_chunks * net->np);
  net->mem = nsde__alloc(total);
  if (!net->mem)
    return unfinalize(net, nsde__error(net->ctx, NSDE_ERR_NOMEM,
                                       "nsde_net_finalize: cannot allocate %zu bytes", total));
  memset(net->mem, 0, total);
  m = net->mem;
#define CARVE(ptr, nfloats)                                  \
  do {                                                       \
    (ptr) = (float *)(void *)m;                              \
    m += SZ(nfloats);                                        \
  } while (0)
  CARVE(net->params, net->np);
  CARVE(net->grads, net->np);
  for (int i = 0; i < net->nl; i++)
    if (!net->L[i].fused_relu)
      CARVE(net->own[i], (size_t)max_batch * (size_t)net->L[i].out_sz);
  CARVE(net->wpack, wp);
  CARVE(net->xin, (size_t)max_batch * isz);
  CARVE(net->yout, (size_t)max_batch * (size_t)last->out_sz);
  CARVE(net->part, (size_t)net->max_chunks * net->np);
#undef CARVE
#undef SZ
  memcpy(net->act, net->own, (size_t)net->nl * sizeof(float *));
  net->max_batch = max_batch;
  net->final = true;
  use_threads(net);
  init_params(net, seed);
  return NSDE_OK;
}

NSDE_API int64_t nsde_net_num_params(const struct nsde_net *net)
{
  return net && net->final ? net->np : -1;
}

NSDE_API float *nsde_net_params(const struct nsde_net *net)
{
  return net && net->final ? net->params : NULL;
}

NSDE_API float *nsde_net_grads(const struct nsde_net *net)
{
  return net && net->final ? net->grads : NULL;
}

NSDE_API enum nsde_status nsde_net_output_shape(const struct nsde_net *net, int *channels,
                                                int *height, int *width)
{
  if (!net || !channels || !height || !width)
    return NSDE_ERR_NULL;
  cur_shape(net, channels, height, width);
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
static void to_nhwc(const float *src, float *dst, int c, int64_t p)
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

static int64_t conv_kp(const struct layer *l)
{
  return (int64_t)(l->cin + (l->kind == L_CCONV)) * l->k * l->k;
}

/* col[p K' + (ky k + kx) cc + c]: pixel p's receptive field, tap-major with
 * the cc = cin (+1 time plane) channels contiguous; padding reads zero, the
 * time plane included. */
static void im2col_item(const struct layer *l, const float *in, float t, float *col)
{
  const int cc = l->cin + (l->kind == L_CCONV), off = l->kind == L_CCONV, k = l->k;
  const int64_t Kp = conv_kp(l);
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
  const int64_t Kp = conv_kp(l);
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

/* Public weight index (o, c, ky, kx) of the packed (tap-major) index j' of row o. */
static int64_t conv_public_index(const struct layer *l, int64_t jp)
{
  const int cc = l->cin + (l->kind == L_CCONV), k = l->k;
  const int64_t tap = jp / cc, c = jp % cc;
  return (c * k + tap / k) * k + tap % k;
}

/* ---- Winograd F(2x2, 3x3) for 3x3 / stride 1 / padding 1 ------------------- */

/* Lavin & Gray's minimal filtering: a 2x2 output tile from a 4x4 input tile
 * with 16 multiplies per channel pair instead of 36, Y = A^T [U . V] A with
 * U = G g G^T and V = B^T d B. The 16 products summed over the input
 * channels are 16 GEMMs (tiles x cin times cin x cout). The time plane of a
 * concat-conv is constant inside the image, so its contribution is t times a
 * precomputed per-pixel response (the kernel's taps that fall inside). */

static bool is_3x3_same(const struct layer *l)
{
  return (l->kind == L_CONV || l->kind == L_CCONV) && l->k == 3 && l->stride == 1 && l->pad == 1;
}

/* Channel counts that are multiples of 16 on an AVX-512 CPU take the direct
 * kernels (lib/conv-direct.c); other 3x3 same convolutions take Winograd. */
static bool use_direct(const struct layer *l)
{
  return is_3x3_same(l) && nsde__direct_supported(l->cin, l->cout);
}

static bool use_winograd(const struct layer *l)
{
  return is_3x3_same(l) && !use_direct(l);
}

static int64_t wino_tiles(const struct layer *l)
{
  return (int64_t)((l->hout + 1) / 2) * ((l->wout + 1) / 2);
}

/* Packed floats a 3x3/stride 1/pad 1 layer needs after its tap-major
 * weights: the forward filters (Winograd U, 16 x cout x cin, or the direct
 * kernels' 9 x cin x cout), for concat-conv the time response (P x cout),
 * then the input-gradient filters (Winograd Ud or the rotated direct ones). */
static int64_t wino_extra(const struct layer *l)
{
  if (!is_3x3_same(l))
    return 0;
  return 32 * (int64_t)l->cout * l->cin +
         (l->kind == L_CCONV ? (int64_t)l->hout * l->wout * l->cout : 0);
}

/* The input-gradient filters of a 3x3/stride 1/pad 1 layer (see wino_extra). */
static float *dgrad_filters(const struct nsde_net *net, const struct layer *l)
{
  return net->wpack + l->wpoff + (size_t)l->cout * conv_kp(l) + 16 * (size_t)l->cout * l->cin +
         (l->kind == L_CCONV ? (size_t)l->hout * l->wout * l->cout : 0);
}

/* u = G g G^T for one 3x3 kernel g */
static void wino_filter(const float *g, float u[4][4])
{
  float tg[4][3];
  for (int j = 0; j < 3; j++) {
    tg[0][j] = g[j];
    tg[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
    tg[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
    tg[3][j] = g[6 + j];
  }
  for (int r = 0; r < 4; r++) {
    u[r][0] = tg[r][0];
    u[r][1] = 0.5f * (tg[r][0] + tg[r][1] + tg[r][2]);
    u[r][2] = 0.5f * (tg[r][0] - tg[r][1] + tg[r][2]);
    u[r][3] = tg[r][2];
  }
}

/* tr[p][o]: the response of output pixel p to a time plane of ones (the
 * kernel's taps that fall inside the image). */
static void time_response(const struct layer *l, const float *W, float *tr)
{
  const int cc = l->cin + 1;
  for (int oy = 0; oy < l->hout; oy++)
    for (int ox = 0; ox < l->wout; ox++)
      for (int o = 0; o < l->cout; o++) {
        const float *g = W + (int64_t)o * cc * 9;
        float s = 0.0f;
        for (int ky = 0; ky < 3; ky++)
          for (int kx = 0; kx < 3; kx++) {
            int iy = oy - 1 + ky, ix = ox - 1 + kx;
            if (iy >= 0 && iy < l->hin && ix >= 0 && ix < l->win)
              s += g[ky * 3 + kx];
          }
        tr[((int64_t)oy * l->wout + ox) * l->cout + o] = s;
      }
}

/* The direct kernels' weights (nsde__direct_widx) and, for the input
 * gradient, the kernel rotated by 180 degrees with the channels swapped. */
static void direct_pack(const struct layer *l, const float *W, float *wd, float *wr)
{
  const int cc = l->cin + (l->kind == L_CCONV), off = l->kind == L_CCONV;
  for (int o = 0; o < l->cout; o++)
    for (int c = 0; c < l->cin; c++) {
      const float *g = W + ((int64_t)o * cc + c + off) * 9;
      for (int tap = 0; tap < 9; tap++) {
        wd[nsde__direct_widx(l->cin, l->cout, tap, c, o)] = g[tap];
        wr[nsde__direct_widx(l->cout, l->cin, tap, o, c)] = g[8 - tap];
      }
    }
}

static void wino_pack(const struct layer *l, const float *W, float *U, float *Ud)
{
  const int cc = l->cin + (l->kind == L_CCONV), off = l->kind == L_CCONV;
  /* the input gradient is the correlation of the output gradient with the
   * kernel rotated by 180 degrees, input and output channels swapped */
  for (int o = 0; o < l->cout; o++)
    for (int c = 0; c < l->cin; c++) {
      const float *g = W + ((int64_t)o * cc + c + off) * 9;
      float rot[9], u[4][4], ud[4][4];
      for (int j = 0; j < 9; j++)
        rot[j] = g[8 - j];
      wino_filter(g, u);
      wino_filter(rot, ud);
      for (int xi = 0; xi < 16; xi++) {
        U[((int64_t)xi * l->cout + o) * l->cin + c] = u[xi / 4][xi % 4];
        Ud[((int64_t)xi * l->cin + c) * l->cout + o] = ud[xi / 4][xi % 4];
      }
    }
}

/* V[xi][tile][c] = (B^T d B)[xi] for every input tile d of the item. */
#define D(i) (wt + (int64_t)(i) * C)
#define TT(i) (wt + (int64_t)(16 + (i)) * C)
NSDE_CLONES static void wino_input(const struct layer *l, const float *restrict in,
                                   float *restrict V, float *restrict wt)
{
  const int C = l->cin, th = (l->hout + 1) / 2, tw = (l->wout + 1) / 2;
  const int64_t T = (int64_t)th * tw;
  for (int ty = 0; ty < th; ty++)
    for (int tx = 0; tx < tw; tx++) {
      const int64_t tile = (int64_t)ty * tw + tx;
      for (int r = 0; r < 4; r++)
        for (int s = 0; s < 4; s++) {
          const int iy = 2 * ty - 1 + r, ix = 2 * tx - 1 + s;
          if (iy < 0 || iy >= l->hin || ix < 0 || ix >= l->win)
            memset(D(r * 4 + s), 0, (size_t)C * sizeof(float));
          else
            memcpy(D(r * 4 + s), in + ((int64_t)iy * l->win + ix) * C, (size_t)C * sizeof(float));
        }
      for (int s = 0; s < 4; s++)
        for (int c = 0; c < C; c++) {
          TT(0 * 4 + s)[c] = D(0 * 4 + s)[c] - D(2 * 4 + s)[c];
          TT(1 * 4 + s)[c] = D(1 * 4 + s)[c] + D(2 * 4 + s)[c];
          TT(2 * 4 + s)[c] = D(2 * 4 + s)[c] - D(1 * 4 + s)[c];
          TT(3 * 4 + s)[c] = D(1 * 4 + s)[c] - D(3 * 4 + s)[c];
        }
      for (int r = 0; r < 4; r++) {
        float *v0 = V + ((int64_t)(r * 4 + 0) * T + tile) * C, *v1 = v0 + T * C,
              *v2 = v1 + T * C, *v3 = v2 + T * C;
        for (int c = 0; c < C; c++) {
          v0[c] = TT(r * 4 + 0)[c] - TT(r * 4 + 2)[c];
          v1[c] = TT(r * 4 + 1)[c] + TT(r * 4 + 2)[c];
          v2[c] = TT(r * 4 + 2)[c] - TT(r * 4 + 1)[c];
          v3[c] = TT(r * 4 + 1)[c] - TT(r * 4 + 3)[c];
        }
      }
    }
}

#undef D
#undef TT

/* out = A^T M A per tile, plus bias and t times the time response. */
#define AA(i, s) (wt + (int64_t)((i) * 4 + (s)) * O)
NSDE_CLONES static void wino_output(const struct layer *l, const float *restrict M,
                                    const float *restrict bias, const float *restrict tr, float t,
                                    float *restrict out, float *restrict wt)
{
  const int O = l->cout, th = (l->hout + 1) / 2, tw = (l->wout + 1) / 2;
  const int64_t T = (int64_t)th * tw;
  for (int ty = 0; ty < th; ty++)
    for (int tx = 0; tx < tw; tx++) {
      const int64_t tile = (int64_t)ty * tw + tx;
      for (int s = 0; s < 4; s++) {
        const float *m0 = M + ((int64_t)(0 * 4 + s) * T + tile) * O, *m1 = m0 + 4 * T * O,
                    *m2 = m1 + 4 * T * O, *m3 = m2 + 4 * T * O;
        for (int o = 0; o < O; o++) {
          AA(0, s)[o] = m0[o] + m1[o] + m2[o];
          AA(1, s)[o] = m1[o] - m2[o] - m3[o];
        }
      }
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
          const int oy = 2 * ty + i, ox = 2 * tx + j;
          float *y;
          const float *r;
          if (oy >= l->hout || ox >= l->wout)
            continue;
          y = out + ((int64_t)oy * l->wout + ox) * O;
          r = tr ? tr + ((int64_t)oy * l->wout + ox) * O : NULL;
          for (int o = 0; o < O; o++) {
            float v = j == 0 ? AA(i, 0)[o] + AA(i, 1)[o] + AA(i, 2)[o]
                             : AA(i, 1)[o] - AA(i, 2)[o] - AA(i, 3)[o];
            y[o] = v + (bias ? bias[o] : 0.0f) + (r ? t * r[o] : 0.0f);
          }
        }
    }
}
#undef AA

/* out = the Winograd correlation of in with the transformed filters U
 * (16 x cout x cin), plus bias and t times tr where given. V and M hold
 * 16 x tiles x max(cin, cout) floats each; wt is wino_input/output's. */
static void wino_conv(const struct layer *l, const float *in, const float *U, const float *bias,
                      const float *tr, float t, float *out, float *V, float *M, float *wt)
{
  const int64_t T = wino_tiles(l);
  wino_input(l, in, V, wt);
  for (int xi = 0; xi < 16; xi++)
    nsde__gemm(NULL, NSDE_FLOAT32, false, false, T, l->cout, l->cin, 1.0, V + xi * T * l->cin,
               l->cin, 1, U + (int64_t)xi * l->cout * l->cin, 1, l->cin, 0.0,
               M + xi * T * l->cout, l->cout, 1);
  wino_output(l, M, bias, tr, t, out, wt);
}

static void pack_weights(struct nsde_net *net)
{
  for (int i = 0; i < net->nl; i++) {
    const struct layer *l = &net->L[i];
    const int64_t Kp = conv_kp(l);
    const float *W = net->params + l->poff;
    float *Wp = net->wpack + l->wpoff;
    if (l->kind != L_CONV && l->kind != L_CCONV)
      continue;
    for (int o = 0; o < l->cout; o++)
      for (int64_t jp = 0; jp < Kp; jp++)
        Wp[o * Kp + jp] = W[o * Kp + conv_public_index(l, jp)];
    if (use_winograd(l))
      wino_pack(l, W, Wp + (size_t)l->cout * Kp, dgrad_filters(net, l));
    else if (use_direct(l))
      direct_pack(l, W, Wp + (size_t)l->cout * Kp, dgrad_filters(net, l));
    if (is_3x3_same(l) && l->kind == L_CCONV)
      time_response(l, W, Wp + (size_t)l->cout * Kp + 16 * (size_t)l->cout * l->cin);
  }
}

/* One item: out (P x cout) = col (P x K') Wp^T + bias; one thread's GEMM. */
static void conv_fwd_item(const struct nsde_net *net, const struct layer *l, const float *in,
                          float *out, float t, float *col, float *dcol, float *wt)
{
  const int64_t Kp = conv_kp(l), P = (int64_t)l->hout * l->wout;
  const float *bias = net->params + l->poff + (size_t)l->cout * Kp;
  if (use_direct(l)) {
    const float *wd = net->wpack + l->wpoff + (size_t)l->cout * Kp;
    nsde__direct_pad(in, l->hin, l->win, l->cin, col);
    nsde__direct_fwd(col, l->hout, l->wout, l->cin, l->cout, wd, bias,
                     l->kind == L_CCONV ? wd + 16 * (int64_t)l->cout * l->cin : NULL, t, out);
    return;
  }
  if (use_winograd(l)) {
    const float *U = net->wpack + l->wpoff + (size_t)l->cout * Kp;
    wino_conv(l, in, U, bias, l->kind == L_CCONV ? U + 16 * (int64_t)l->cout * l->cin : NULL, t,
              out, col, dcol, wt);
    return;
  }
  im2col_item(l, in, t, col);
  for (int64_t p = 0; p < P; p++)
    memcpy(out + p * l->cout, bias, (size_t)l->cout * sizeof(float));
  nsde__gemm(NULL, NSDE_FLOAT32, false, false, P, l->cout, Kp, 1.0, col, Kp, 1,
             net->wpack + l->wpoff, 1, Kp, 1.0, out, l->cout, 1);
}

/* dW[o][tap] += t times the sum of g[p][o] over the output pixels p whose
 * tap reads inside the image (the time plane is zero in the padding). Row
 * sums first (whole row, without the first pixel, without the last), then
 * the rows each tap reads. */
static void time_plane_grad(const struct layer *l, const float *g, float t, float *dW,
                            int64_t Kp, float *rows)
{
  const int H = l->hout, Wd = l->wout, O = l->cout;
  for (int oy = 0; oy < H; oy++) {
    float *r = rows + (int64_t)oy * 3 * O;
    const float *gr = g + (int64_t)oy * Wd * O;
    for (int o = 0; o < O; o++) {
      float s = 0.0f;
      for (int ox = 1; ox < Wd - 1; ox++)
        s += gr[(int64_t)ox * O + o];
      r[o] = s + gr[o] + (Wd > 1 ? gr[(int64_t)(Wd - 1) * O + o] : 0.0f); /* whole row */
      r[O + o] = s + (Wd > 1 ? gr[(int64_t)(Wd - 1) * O + o] : 0.0f);     /* without ox 0 */
      r[2 * O + o] = s + (Wd > 1 ? gr[o] : 0.0f);                          /* without the last */
    }
  }
  for (int tap = 0; tap < 9; tap++) {
    const int ky = tap / 3, kx = tap % 3, which = kx == 1 ? 0 : kx == 0 ? 1 : 2;
    const int y0 = ky == 0 ? 1 : 0, y1 = ky == 2 ? H - 1 : H;
    if (Wd == 1 && kx != 1)
      continue; /* a one-pixel-wide image: the side columns read only padding */
    for (int o = 0; o < O; o++) {
      float s = 0.0f;
      for (int oy = y0; oy < y1; oy++)
        s += rows[((int64_t)oy * 3 + which) * O + o];
      dW[(int64_t)o * Kp + tap * (l->cin + 1)] += t * s;
    }
  }
}

/* The direct kernels' backward for one item: the weight gradient added to
 * the chunk's accumulator wacc ([tap][c][o], the kernels' layout; moved into
 * the packed layout once per chunk by direct_flush), the time plane's
 * gradient into dW, and dx. */
static void direct_bwd_item(const struct nsde_net *net, const struct layer *l, const float *in,
                            const float *g, float *dx, float *dW, float t, float *col,
                            float *wacc)
{
  nsde__direct_pad(in, l->hin, l->win, l->cin, col);
  nsde__direct_wgrad(col, l->hout, l->wout, l->cin, g, l->cout, wacc + l->waoff);
  if (l->kind == L_CCONV)
    time_plane_grad(l, g, t, dW, conv_kp(l), col);
  if (dx) {
    nsde__direct_pad(g, l->hout, l->wout, l->cout, col);
    nsde__direct_fwd(col, l->hin, l->win, l->cout, l->cin, dgrad_filters(net, l), NULL, NULL, 0.0f, dx);
  }
}

/* A chunk's direct weight gradients into its packed gradient gp (which holds
 * zeros there: nothing else writes those entries, so the sum per item is the
 * one the per-item transposition gave); the accumulators are zeroed. */
static void direct_flush(const struct nsde_net *net, float *gp, float *wacc)
{
  for (int i = 0; i < net->nl; i++) {
    const struct layer *l = &net->L[i];
    if ((l->kind != L_CONV && l->kind != L_CCONV) || l->waoff < 0)
      continue;
    {
      const int64_t Kp = conv_kp(l);
      const int cc = l->cin + (l->kind == L_CCONV), off = l->kind == L_CCONV;
      float *dW = gp + l->poff, *dwd = wacc + l->waoff;
      for (int o = 0; o < l->cout; o++)
        for (int tap = 0; tap < 9; tap++)
          for (int c = 0; c < l->cin; c++)
            dW[(int64_t)o * Kp + tap * cc + off + c] += dwd[((int64_t)tap * l->cin + c) * l->cout + o];
      memset(dwd, 0, 9 * (size_t)l->cin * l->cout * sizeof(float));
    }
  }
}

/* One item's backward: parameter gradients (packed layout) into gp, dx if wanted. */
static void conv_bwd_item(const struct nsde_net *net, const struct layer *l, const float *in,
                          const float *g, float *dx, float *gp, float t, float *col, float *dcol,
                          float *wt, float *wacc)
{
  const int64_t Kp = conv_kp(l), P = (int64_t)l->hout * l->wout;
  float *dW = gp + l->poff, *db = dW + (size_t)l->cout * Kp;
  for (int64_t p = 0; p < P; p++)
    for (int o = 0; o < l->cout; o++)
      db[o] += g[p * l->cout + o];
  if (use_direct(l)) {
    direct_bwd_item(net, l, in, g, dx, dW, t, col, wacc);
    return;
  }
  im2col_item(l, in, t, col);
  /* dW (cout x K') += g^T (cout x P) col (P x K') */
  nsde__gemm(NULL, NSDE_FLOAT32, false, false, l->cout, Kp, P, 1.0, g, 1, l->cout, col, Kp, 1, 1.0,
             dW, Kp, 1);
  if (dx && use_winograd(l)) {
    /* the same Winograd forward on the transposed problem: g (cout channels)
     * correlated with the rotated kernels gives dx (cin channels) */
    struct layer lt = *l;
    lt.kind = L_CONV;
    lt.cin = l->cout;
    lt.cout = l->cin;
    wino_conv(&lt, g, dgrad_filters(net, l), NULL, NULL, 0.0f, dx, col, dcol, wt);
  } else if (dx) {
    /* dcol (P x K') = g (P x cout) Wp (cout x K') */
    nsde__gemm(NULL, NSDE_FLOAT32, false, false, P, Kp, l->cout, 1.0, g, l->cout, 1,
               net->wpack + l->wpoff, Kp, 1, 0.0, dcol, Kp, 1);
    col2im_item(l, dcol, dx);
  }
}

/* ---- group norm (channels-last item: P x C) ------------------------------- */

/* Group norm sums run over the pixels with one float accumulator per
 * channel (a vector across channels), in blocks of GN_BLOCK pixels whose
 * sums are added in double: float speed, double-like accuracy, and the same
 * order for every vector width. */
#define GN_BLOCK 64

/* The channel loops of the group norm take C as a constant for the common
 * widths (one to four full vectors, no remainder code per pixel). */
#define GN_DISPATCH(call_c)                                                                    \
  switch (C) {                                                                                 \
  case 16: call_c(16); break;                                                                  \
  case 32: call_c(32); break;                                                                  \
  case 64: call_c(64); break;                                                                  \
  default: call_c(C); break;                                                                   \
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

NSDE_CLONES static void gn_sums(const float *restrict x, int64_t P, int C,
                                const float *restrict m, float *restrict fs, double *restrict s)
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

NSDE_CLONES static void gn_apply(const float *restrict x, int64_t P, int C,
                                 const float *restrict a, const float *restrict sh, bool relu,
                                 float *restrict y)
{
#define GN_APPLY(c_) gn_apply_c(x, P, c_, a, sh, relu, y)
  GN_DISPATCH(GN_APPLY)
#undef GN_APPLY
}

/* The backward's two passes: block sums of dy (x - m) and dy into sg, sb;
 * then dx (when given). */
static inline __attribute__((always_inline)) void gn_bsums_c(
    const float *restrict x, const float *restrict dy, int64_t P, const int C,
    const float *restrict fm, float *restrict fsg, float *restrict fsb, double *restrict sg,
    double *restrict sb)
{
  for (int64_t p0 = 0; p0 < P; p0 += GN_BLOCK) {
    const int64_t p1 = p0 + GN_BLOCK < P ? p0 + GN_BLOCK : P;
    for (int c = 0; c < C; c++)
      fsg[c] = fsb[c] = 0.0f;
    for (int64_t p = p0; p < p1; p++)
      for (int c = 0; c < C; c++) {
        const float d = dy[p * C + c];
        fsg[c] += d * (x[p * C + c] - fm[c]);
        fsb[c] += d;
      }
    for (int c = 0; c < C; c++) {
      sg[c] += fsg[c];
      sb[c] += fsb[c];
    }
  }
}

NSDE_CLONES static void gn_bsums(const float *restrict x, const float *restrict dy, int64_t P,
                                 int C, const float *restrict fm, float *restrict fsg,
                                 float *restrict fsb, double *restrict sg, double *restrict sb)
{
#define GN_BSUMS(c_) gn_bsums_c(x, dy, P, c_, fm, fsg, fsb, sg, sb)
  GN_DISPATCH(GN_BSUMS)
#undef GN_BSUMS
}

static inline __attribute__((always_inline)) void gn_dx_c(
    const float *restrict x, const float *restrict dy, int64_t P, const int C,
    const float *restrict fm, const float *restrict fr, const float *restrict gamma,
    const float *restrict m1, const float *restrict m2, float *restrict dx)
{
  for (int64_t p = 0; p < P; p++)
    for (int c = 0; c < C; c++) {
      const float xh = (x[p * C + c] - fm[c]) * fr[c];
      dx[p * C + c] = fr[c] * (dy[p * C + c] * gamma[c] - m1[c] - xh * m2[c]);
    }
}

NSDE_CLONES static void gn_dx(const float *restrict x, const float *restrict dy, int64_t P, int C,
                              const float *restrict fm, const float *restrict fr,
                              const float *restrict gamma, const float *restrict m1,
                              const float *restrict m2, float *restrict dx)
{
#define GN_DX(c_) gn_dx_c(x, dy, P, c_, fm, fr, gamma, m1, m2, dx)
  GN_DISPATCH(GN_DX)
#undef GN_DX
}

NSDE_CLONES static void gn_fwd_item(const struct nsde_net *net, const struct layer *l,
                                    int64_t b, const float *restrict x, float *restrict y,
                                    bool relu, double *restrict acc)
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

/* With relu (the output of a fused ReLU), dy is the ReLU's output gradient:
 * masked (an item's scratch) receives the group norm's output gradient. */
NSDE_CLONES static void gn_bwd_item(const struct nsde_net *net, const struct layer *l,
                                    int64_t b, const float *restrict x, const float *restrict dy,
                                    const float *restrict relu, float *restrict masked,
                                    float *restrict dx, float *restrict gp, double *restrict acc)
{
  const int C = l->cin, G = l->groups, cg = C / G;
  const int64_t P = (int64_t)l->hin * l->win;
  const double n = (double)cg * (double)P;
  const float *gamma = net->params + l->poff;
  float *dgamma = gp + l->poff, *dbeta = dgamma + C;
  double *sg = acc, *sb = acc + C;
  float *fm = (float *)(acc + 2 * C), *fr = fm + C, *m1 = fr + C, *m2 = m1 + C, *fsg = m2 + C,
        *fsb = fsg + C;

  if (relu) {
    for (int64_t j = 0; j < P * C; j++)
      masked[j] = relu[j] > 0.0f ? dy[j] : 0.0f;
    dy = masked;
  }
  for (int c = 0; c < C; c++) {
    int g = c / cg;
    fm[c] = l->stats[2 * (b * G + g)];
    fr[c] = l->stats[2 * (b * G + g) + 1];
    sg[c] = sb[c] = 0;
  }
  /* sg = sum dy (x - mean) rstd, sb = sum dy */
  gn_bsums(x, dy, P, C, fm, fsg, fsb, sg, sb);
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
    gn_dx(x, dy, P, C, fm, fr, gamma, m1, m2, dx);
}

/* ---- per-item forward / backward --------------------------------------------- */

/* One thread's scratch: im2col / Winograd buffers, two item gradients, a
 * linear layer's NCHW view, the batch passes' transposed output gradient and
 * input gradient, group-norm accumulators (doubles), Winograd temporaries. */
struct scratch {
  float *col, *dcol, *d[2], *tmp, *gin, *dxout, *wt;
  double *acc;
  float *wacc; /* direct convolutions' weight gradients, [tap][c][o], summed over a chunk */
};

static size_t scratch_floats(const struct nsde_net *net)
{
  return ((net->wacc_sz + 15) & ~(size_t)15) + 2 * net->col_sz + 5 * net->item_sz +
         12 * (size_t)net->maxc + 32 * (size_t)net->maxc + 64;
}

static struct scratch thread_scratch(const struct nsde_net *net, int tid)
{
  struct scratch sc;
  float *p = net->scr + (size_t)tid * scratch_floats(net);
  sc.wacc = p;
  p += (net->wacc_sz + 15) & ~(size_t)15;
  sc.col = p;
  sc.dcol = sc.col + net->col_sz;
  sc.d[0] = sc.dcol + net->col_sz;
  sc.d[1] = sc.d[0] + net->item_sz;
  sc.tmp = sc.d[1] + net->item_sz;
  sc.gin = sc.tmp + net->item_sz;
  sc.dxout = sc.gin + net->item_sz;
  sc.acc = (double *)(void *)(sc.dxout + net->item_sz); /* item_sz is a multiple of 16 */
  sc.wt = (float *)(void *)(sc.acc + 6 * (size_t)net->maxc);
  return sc;
}

/* A linear layer reads its input in the public NCHW flattening. */
static const float *linear_input(const struct layer *l, const float *x, float *tmp)
{
  if ((int64_t)l->hin * l->win == 1 || l->cin == 1)
    return x;
  nsde__to_nchw(x, tmp, l->cin, (int64_t)l->hin * l->win);
  return tmp;
}

/* All layers for item b; with replay, layers whose output is on the tape are
 * skipped. x is the item, channels-last. */
static void fwd_item(const struct nsde_net *net, int64_t b, const float *x, float t,
                     const struct scratch *sc, bool replay)
{
  const float *in = x;
  for (int i = 0; i < net->nl; i++) {
    const struct layer *l = &net->L[i];
    float *out = net->act[i] ? net->act[i] + b * l->out_sz : NULL;
    switch (l->kind) {
    case L_CONV:
    case L_CCONV:
      if (!replay || !net->taped[i])
        conv_fwd_item(net, l, in, out, t, sc->col, sc->dcol, sc->wt);
      break;
    case L_GN:
      if (l->fused_relu) {
        out = net->act[i + 1] + b * l->out_sz;
        gn_fwd_item(net, l, b, in, out, true, sc->acc);
        i++;
      } else {
        gn_fwd_item(net, l, b, in, out, false, sc->acc);
      }
      break;
    case L_RELU:
      for (int64_t j = 0; j < l->in_sz; j++)
        out[j] = in[j] > 0.0f ? in[j] : 0.0f;
      break;
    case L_POOL: {
      const int64_t P = (int64_t)l->hin * l->win;
      double *s = sc->acc;
      for (int c = 0; c < l->cin; c++)
        s[c] = 0;
      for (int64_t p = 0; p < P; p++)
        for (int c = 0; c < l->cin; c++)
          s[c] += in[p * l->cin + c];
      for (int c = 0; c < l->cin; c++)
        out[c] = (float)(s[c] / (double)P);
      break;
    }
    case L_LINEAR: {
      const float *W = net->params + l->poff, *bias = W + (size_t)l->cout * l->in_sz;
      const float *v = linear_input(l, in, sc->tmp);
      for (int o = 0; o < l->cout; o++) {
        float s = 0.0f;
        for (int64_t j = 0; j < l->in_sz; j++)
          s += W[o * l->in_sz + j] * v[j];
        out[o] = s + bias[o];
      }
      break;
    }
    }
    in = out;
  }
}

/* Item b's backward from g (the output gradient, channels-last) after
 * fwd_item; dx (channels-last) may be NULL; parameter gradients (packed
 * convolution layout) are added to gp. */
static void bwd_item(const struct nsde_net *net, int64_t b, const float *x, const float *g,
                     float *dx, float *gp, float t, const struct scratch *sc)
{
  for (int i = net->nl - 1; i >= 0; i--) {
    const struct layer *l = &net->L[i];
    const float *in = i == 0 ? x : net->act[i - 1] ? net->act[i - 1] + b * l->in_sz : NULL;
    const float *y = net->act[i] ? net->act[i] + b * l->out_sz : NULL;
    /* the item-gradient buffer that g is not in (g may be either after a pass-through) */
    float *dst = i > 0 ? (g == sc->d[0] ? sc->d[1] : sc->d[0]) : dx;
    switch (l->kind) {
    case L_CONV:
    case L_CCONV:
      conv_bwd_item(net, l, in, g, dst, gp, t, sc->col, sc->dcol, sc->wt, sc->wacc);
      break;
    case L_GN:
      gn_bwd_item(net, l, b, in, g, l->fused_relu ? net->act[i + 1] + b * l->out_sz : NULL,
                  sc->tmp, dst, gp, sc->acc);
      break;
    case L_RELU:
      if (i > 0 && net->L[i - 1].fused_relu) {
        dst = (float *)g; /* the group norm below applies the mask */
        break;
      }
      if (dst)
        for (int64_t j = 0; j < l->in_sz; j++)
          dst[j] = y[j] > 0.0f ? g[j] : 0.0f;
      break;
    case L_POOL:
      if (dst) {
        const int64_t P = (int64_t)l->hin * l->win;
        for (int64_t p = 0; p < P; p++)
          for (int c = 0; c < l->cin; c++)
            dst[p * l->cin + c] = g[c] / (float)P;
      }
      break;
    case L_LINEAR: {
      const float *W = net->params + l->poff, *v = linear_input(l, in, sc->tmp);
      float *dW = gp + l->poff, *dbias = dW + (size_t)l->cout * l->in_sz;
      for (int o = 0; o < l->cout; o++) {
        for (int64_t j = 0; j < l->in_sz; j++)
          dW[o * l->in_sz + j] += g[o] * v[j];
        dbias[o] += g[o];
      }
      if (dst) {
        float *d = (int64_t)l->hin * l->win == 1 || l->cin == 1 ? dst : sc->tmp;
        for (int64_t j = 0; j < l->in_sz; j++)
          d[j] = 0.0f;
        for (int o = 0; o < l->cout; o++)
          for (int64_t j = 0; j < l->in_sz; j++)
            d[j] += W[o * l->in_sz + j] * g[o];
        if (d == sc->tmp)
          to_nhwc(sc->tmp, dst, l->cin, (int64_t)l->hin * l->win);
      }
      break;
    }
    }
    g = dst;
  }
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

static bool transposes_output(const struct nsde_net *net)
{
  const struct layer *last = &net->L[net->nl - 1];
  return !net->out_nhwc && spatial(last->cout, last->hout, last->wout);
}

static int use_threads(struct nsde_net *net)
{
  int nt = net->ctx->threads;
  if (nt > net->nscr) {
    float *s = nsde__alloc(scratch_floats(net) * sizeof(float) * (size_t)nt);
    if (s) { /* else keep the threads there is scratch for: results do not change */
      nsde__free(net->scr);
      net->scr = s;
      net->nscr = nt;
    }
  }
  return nt < net->nscr ? nt : net->nscr;
}

static void run_forward(struct nsde_net *net, int64_t B, const float *x, float t, bool replay)
{
  const int nt = use_threads(net);
  const bool tin = transposes_input(net), tout = transposes_output(net);
  const struct layer *last = &net->L[net->nl - 1];
  const int64_t isz = (int64_t)net->c * net->h * net->w;
  (void)nt;
  pack_weights(net);
#pragma omp parallel for schedule(static) num_threads(nt) if (B > 1)
  for (int64_t b = 0; b < B; b++) {
    const struct scratch sc = thread_scratch(net, omp_get_thread_num());
    const float *xb = x + b * isz;
    const unsigned fp = nsde__ftz_enter();
    if (tin) {
      to_nhwc(xb, net->xin + b * isz, net->c, (int64_t)net->h * net->w);
      xb = net->xin + b * isz;
    }
    fwd_item(net, b, xb, t, &sc, replay);
    if (tout)
      nsde__to_nchw(net->act[net->nl - 1] + b * last->out_sz, net->yout + b * last->out_sz,
                    last->cout, (int64_t)last->hout * last->wout);
    nsde__ftz_leave(fp);
  }
}

static void use_slot(struct nsde_net *net, int64_t s);

static const float *output_of(const struct nsde_net *net)
{
  return transposes_output(net) ? net->yout : net->act[net->nl - 1];
}

const float *nsde__net_forward_raw(struct nsde_net *net, int64_t B, const float *x, float t)
{
  use_slot(net, -1); /* never write over the tape */
  run_forward(net, B, x, t, false);
  return output_of(net);
}

/* Items per gradient chunk: a chunk's parameter gradients are summed in item
 * order by one thread, then the chunks in chunk order, so the result depends
 * on B only, never on the thread count. */
static int64_t num_chunks(const struct nsde_net *net, int64_t B)
{
  return B < net->max_chunks ? B : net->max_chunks;
}

void nsde__net_backward_raw(struct nsde_net *net, int64_t B, const float *x, const float *dy,
                            float *dx, float *gp, float t)
{
  const int nt = use_threads(net);
  const bool tin = transposes_input(net), tout = transposes_output(net);
  const struct layer *last = &net->L[net->nl - 1];
  const int64_t isz = (int64_t)net->c * net->h * net->w, nc = num_chunks(net, B), np = net->np;
  (void)nt;
  /* the packed weights are those of the forward pass this follows */
  memset(net->part, 0, (size_t)(nc * np) * sizeof(float));
#pragma omp parallel for schedule(static) num_threads(nt) if (nc > 1)
  for (int64_t c = 0; c < nc; c++) {
    const struct scratch sc = thread_scratch(net, omp_get_thread_num());
    const unsigned fp = nsde__ftz_enter();
    memset(sc.wacc, 0, net->wacc_sz * sizeof(float));
    for (int64_t b = c * B / nc; b < (c + 1) * B / nc; b++) {
      const float *xb = tin ? net->xin + b * isz : x + b * isz, *g = dy + b * last->out_sz;
      float *dxb = dx ? (tin ? sc.dxout : dx + b * isz) : NULL;
      if (tout) {
        to_nhwc(g, sc.gin, last->cout, (int64_t)last->hout * last->wout);
        g = sc.gin;
      }
      bwd_item(net, b, xb, g, dxb, net->part + c * np, t, &sc);
      if (dx && tin)
        nsde__to_nchw(sc.dxout, dx + b * isz, net->c, (int64_t)net->h * net->w);
    }
    direct_flush(net, net->part + c * np, sc.wacc);
    nsde__ftz_leave(fp);
  }
  /* reduce the chunks in order, mapping packed convolution weights back */
  for (int i = 0; i < net->nl; i++) {
    const struct layer *l = &net->L[i];
    const bool conv = l->kind == L_CONV || l->kind == L_CCONV;
    const int64_t Kp = conv ? conv_kp(l) : 0;
#pragma omp parallel for schedule(static) num_threads(nt) if (l->np > NSDE_PAR_MIN / 8)
    for (int64_t j = 0; j < l->np; j++) {
      float s = 0.0f;
      int64_t dst = j;
      for (int64_t c = 0; c < nc; c++)
        s += net->part[c * np + l->poff + j];
      if (conv && j < l->cout * Kp)
        dst = j / Kp * Kp + conv_public_index(l, j % Kp);
      gp[l->poff + dst] += s;
    }
  }
}

void nsde__net_set_layout(struct nsde_net *net, bool in_nhwc, bool out_nhwc)
{
  net->in_nhwc = in_nhwc;
  net->out_nhwc = out_nhwc;
}

/* ---- the activation tape ------------------------------------------------------ */

/* 64-bit fingerprint of n floats (four interleaved multiply-xorshift lanes). */
static uint64_t fingerprint(const float *v, int64_t n)
{
  uint64_t h[4] = {0x9E3779B97F4A7C15ULL, 0xC2B2AE3D27D4EB4FULL, 0x165667B19E3779F9ULL,
                   0x27D4EB2F165667C5ULL};
  int64_t i = 0;
  uint32_t w[4];
  for (; i + 4 <= n; i += 4) {
    memcpy(w, v + i, sizeof(w));
    for (int j = 0; j < 4; j++)
      h[j] = (h[j] ^ w[j]) * 0x100000001B3ULL;
  }
  for (; i < n; i++) {
    memcpy(w, v + i, 4);
    h[0] = (h[0] ^ w[0]) * 0x100000001B3ULL;
  }
  return (h[0] ^ (h[1] >> 7) ^ (h[2] << 11) ^ (h[3] >> 13)) * 0xBF58476D1CE4E5B9ULL ^ (uint64_t)n;
}

static uint64_t batch_fingerprint(struct nsde_net *net, int64_t B, const float *x)
{
  const int64_t isz = (int64_t)net->c * net->h * net->w;
  const int nt = use_threads(net);
  uint64_t h = 0;
  (void)nt;
#pragma omp parallel for schedule(static) num_threads(nt) if (B > 1)
  for (int64_t b = 0; b < B; b++)
    net->fp[b] = fingerprint(x + b * isz, isz);
  for (int64_t b = 0; b < B; b++)
    h = (h ^ net->fp[b]) * 0x100000001B3ULL + (uint64_t)b;
  return h;
}

/* Point the convolution outputs at tape slot s (or the net's own buffers for s < 0). */
static void use_slot(struct nsde_net *net, int64_t s)
{
  for (int i = 0; i < net->nl; i++)
    net->act[i] = s >= 0 && net->taped[i]
                      ? net->tape + (size_t)s * net->tape_slot + (size_t)net->tape_off[i]
                      : net->own[i];
}

NSDE_API enum nsde_status nsde_net_tape_stats(const struct nsde_net *net, int64_t *hits,
                                              int64_t *misses)
{
  if (!net || !hits || !misses)
    return NSDE_ERR_NULL;
  *hits = net->tape_hits;
  *misses = net->tape_misses;
  return NSDE_OK;
}

NSDE_API int64_t nsde_net_tape_bytes(const struct nsde_net *net, int64_t slots)
{
  if (!net || !net->final || slots < 0)
    return -1;
  return slots * (int64_t)net->tape_slot * 4;
}

NSDE_API enum nsde_status nsde_net_set_tape(struct nsde_net *net, int64_t slots)
{
  float *tape = NULL;
  struct tape_meta *meta = NULL;

  if (!net)
    return NSDE_ERR_NULL;
  if (!net->final)
    return nsde__error(net->ctx, NSDE_ERR_STATE, "nsde_net_set_tape: finalize the net first");
  if (slots < 0 || slots > (1 << 20) ||
      (slots > 0 && (int64_t)net->tape_slot > INT64_MAX / 4 / slots))
    return nsde__error(net->ctx, NSDE_ERR_INVALID, "nsde_net_set_tape: bad slot count %lld",
                       (long long)slots);
  if (slots > 0) {
    tape = nsde__alloc((size_t)slots * net->tape_slot * sizeof(float) + 64);
    meta = calloc((size_t)slots, sizeof(*meta));
    if (!tape || !meta) {
      nsde__free(tape);
      free(meta);
      return nsde__error(net->ctx, NSDE_ERR_NOMEM, "nsde_net_set_tape: cannot allocate %lld bytes",
                         (long long)(slots * (int64_t)net->tape_slot * 4));
    }
  }
  use_slot(net, -1);
  nsde__free(net->tape);
  free(net->meta);
  net->tape = tape;
  net->meta = meta;
  net->tape_n = slots;
  net->tape_next = 0;
  return NSDE_OK;
}

/* Forward through the func: record the convolution outputs on the tape. */
static const float *taped_forward(struct nsde_net *net, int64_t B, const float *x, float t)
{
  struct tape_meta *m;
  const float *y;
  if (net->tape_n == 0)
    return nsde__net_forward_raw(net, B, x, t);
  m = &net->meta[net->tape_next];
  m->valid = false;
  use_slot(net, net->tape_next);
  run_forward(net, B, x, t, false);
  y = output_of(net);
  m->t = t;
  m->B = B;
  m->xh = batch_fingerprint(net, B, x);
  m->ph = fingerprint(net->params, net->np);
  m->valid = true;
  net->tape_next = (net->tape_next + 1) % net->tape_n;
  return y;
}

/* Before a backward at (t, x): replay from the newest matching tape slot
 * (same t, batch, input bits and parameter bits), else recompute. */
static void prepare_backward(struct nsde_net *net, int64_t B, const float *x, float t)
{
  if (net->tape_n > 0) {
    const uint64_t xh = batch_fingerprint(net, B, x), ph = fingerprint(net->params, net->np);
    for (int64_t k = 1; k <= net->tape_n; k++) {
      int64_t s = (net->tape_next - k + net->tape_n) % net->tape_n;
      const struct tape_meta *m = &net->meta[s];
      if (m->valid && m->t == t && m->B == B && m->xh == xh && m->ph == ph) {
        use_slot(net, s);
        run_forward(net, B, x, t, true);
        net->tape_hits++;
        return;
      }
    }
    net->tape_misses++;
  }
  nsde__net_forward_raw(net, B, x, t);
}

static enum nsde_status check_io(struct nsde_net *net, const struct nsde_tensor *x,
                                 const struct nsde_tensor *y, int64_t y_item, const char *what)
{
  if (!net)
    return NSDE_ERR_NULL;
  if (!net->final)
    return nsde__error(net->ctx, NSDE_ERR_STATE, "%s: call nsde_net_finalize first", what);
  if (!x || !y)
    return nsde__error(net->ctx, NSDE_ERR_NULL, "%s: NULL tensor", what);
  if (x->dtype != NSDE_FLOAT32 || y->dtype != NSDE_FLOAT32)
    return nsde__error(net->ctx, NSDE_ERR_DTYPE, "%s: networks take float32 tensors", what);
  if (!x->contiguous || !y->contiguous || x->shape[0] != y->shape[0] ||
      x->shape[0] > net->max_batch || x->numel != x->shape[0] * (int64_t)net->c * net->h * net->w ||
      y->numel != y->shape[0] * y_item)
    return nsde__error(net->ctx, NSDE_ERR_SHAPE,
                       "%s: x must be contiguous (B, %d, %d, %d) with B <= %lld and the output "
                       "(B, %lld)", what, net->c, net->h, net->w, (long long)net->max_batch,
                       (long long)y_item);
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_net_forward(struct nsde_net *net, double t,
                                           const struct nsde_tensor *x, struct nsde_tensor *y)
{
  enum nsde_status st = check_io(net, x, y, net && net->nl ? net->L[net->nl - 1].out_sz : 0,
                                 "nsde_net_forward");
  const float *out;

  if (st != NSDE_OK)
    return st;
  out = nsde__net_forward_raw(net, x->shape[0], x->data, (float)t);
  memcpy(y->data, out, (size_t)y->numel * sizeof(float));
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_net_backward(struct nsde_net *net, double t,
                                            const struct nsde_tensor *x,
                                            const struct nsde_tensor *dy, struct nsde_tensor *dx)
{
  enum nsde_status st = check_io(net, x, dy, net && net->nl ? net->L[net->nl - 1].out_sz : 0,
                                 "nsde_net_backward");

  if (st != NSDE_OK)
    return st;
  if (dx && (dx->dtype != NSDE_FLOAT32 || !dx->contiguous || dx->numel != x->numel))
    return nsde__error(net->ctx, NSDE_ERR_SHAPE, "nsde_net_backward: dx must match x");
  nsde__net_forward_raw(net, x->shape[0], x->data, (float)t);
  nsde__net_backward_raw(net, x->shape[0], x->data, dy->data, dx ? dx->data : NULL, net->grads,
                   (float)t);
  return NSDE_OK;
}

/* ---- the net as a drift ----------------------------------------------------- */

static int net_eval_cb(void *user, double t, int64_t batch, int64_t dim, const void *x, void *out)
{
  struct nsde_net *net = user;
  const int last = net->nl - 1;
  float *own = net->own[last];
  const float *y;
  bool direct;
  if (dim != (int64_t)net->c * net->h * net->w || batch > net->max_batch)
    return -1;
  /* an untaped channels-last last layer writes straight into the solver's buffer */
  direct = !transposes_output(net) && !net->taped[last] && net->own[last];
  if (direct)
    net->own[last] = out;
  y = taped_forward(net, batch, x, (float)t);
  if (direct) {
    net->own[last] = own;
    use_slot(net, -1); /* no pointer into the caller's buffer stays behind */
  }
  if (y != out)
    memcpy(out, y, (size_t)(batch * dim) * sizeof(float));
  return 0;
}

static int net_vjp_cb(void *user, double t, int64_t batch, int64_t dim, const void *x,
                      const void *v, void *grad_x, void *grad_params)
{
  struct nsde_net *net = user;
  if (dim != (int64_t)net->c * net->h * net->w || batch > net->max_batch)
    return -1;
  prepare_backward(net, batch, x, (float)t); /* the tape's activations, or recompute them */
  nsde__net_backward_raw(net, batch, x, v, grad_x, grad_params ? grad_params : net->grads, (float)t);
  return 0;
}

NSDE_API enum nsde_status nsde_net_as_func(struct nsde_net *net, struct nsde_func **out)
{
  struct nsde_func_ops ops;
  int c, h, w;

  if (!net || !out)
    return NSDE_ERR_NULL;
  *out = NULL;
  if (!net->final)
    return nsde__error(net->ctx, NSDE_ERR_STATE, "nsde_net_as_func: finalize the net first");
  cur_shape(net, &c, &h, &w);
  if (c != net->c || h != net->h || w != net->w)
    return nsde__error(net->ctx, NSDE_ERR_SHAPE,
                       "nsde_net_as_func: a drift's output shape (%d, %d, %d) must equal its "
                       "input shape (%d, %d, %d)", c, h, w, net->c, net->h, net->w);
  memset(&ops, 0, sizeof(ops));
  ops.size = sizeof(ops);
  ops.eval = net_eval_cb;
  ops.vjp = net_vjp_cb;
  return nsde_func_new(net->ctx, NSDE_FLOAT32, &ops, net, net->np, net->np ? net->params : NULL,
                       out);
}

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
