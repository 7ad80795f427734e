/*
 * Networks of NCHW float32 layers: conv2d, concat-conv2d (time plane), group
 * norm, ReLU, global average pool, linear. Convolutions are im2col + BLIS
 * GEMM, laid out with the pixels as the M dimension (C = pixels x channels),
 * which is BLIS's faster shape here; images are processed one after another
 * with BLIS's threads, so results do not depend on the thread count.
 *
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
  float *stats; /* GN: mean and rstd per (item, group) */
};

struct nsde_net {
  struct nsde_context *ctx;
  int c, h, w;
  struct layer *L;
  int nl, cap;
  bool final;
  int64_t max_batch, np;
  float *params, *grads;
  float **act;   /* act[i]: output of layer i */
  float *col;    /* im2col buffer */
  float *ctmp;   /* convolution output / gathered gradient, (cout x images x pixels) */
  float *dbuf[2];
  float *partial;
  void *mem;
};

static int64_t conv_chunk(const struct layer *l, int64_t max_batch);

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

NSDE_API enum nsde_status nsde_net_finalize(struct nsde_net *net, int64_t max_batch,
                                            uint64_t seed)
{
  size_t total = 0, col = 0, ctmp = 0, maxact = 0, act_total = 0, part = 0;
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
  if (!net->act)
    return nsde__error(net->ctx, NSDE_ERR_NOMEM, "out of memory");
  net->np = 0;
  maxact = (size_t)net->c * net->h * net->w;
  for (int i = 0; i < net->nl; i++) {
    struct layer *l = &net->L[i];
    l->poff = net->np;
    net->np += l->np;
    act_total += ((size_t)max_batch * (size_t)l->out_sz * 4 + 63) & ~(size_t)63;
    if (l->kind == L_CONV || l->kind == L_CCONV) {
      size_t K = (size_t)(l->cin + (l->kind == L_CCONV)) * l->k * l->k;
      size_t P = (size_t)l->hout * l->wout;
      size_t nb = (size_t)conv_chunk(l, max_batch);
      col = K * P * nb > col ? K * P * nb : col;
      ctmp = (size_t)l->cout * P * nb > ctmp ? (size_t)l->cout * P * nb : ctmp;
    }
    if (l->kind == L_GN) {
      l->stats = calloc((size_t)(2 * max_batch * l->groups), sizeof(float));
      if (!l->stats)
        return nsde__error(net->ctx, NSDE_ERR_NOMEM, "out of memory");
      part = (size_t)(2 * max_batch * l->cin) > part ? (size_t)(2 * max_batch * l->cin) : part;
    }
    maxact = (size_t)l->out_sz > maxact ? (size_t)l->out_sz : maxact;
  }
  total = 2 * (((size_t)net->np * 4 + 63) & ~(size_t)63) + act_total +
          ((col * 4 + 63) & ~(size_t)63) + ((ctmp * 4 + 63) & ~(size_t)63) +
          2 * (((size_t)max_batch * maxact * 4 + 63) & ~(size_t)63) +
          ((part * 4 + 63) & ~(size_t)63);
  net->mem = nsde__alloc(total);
  if (!net->mem)
    return nsde__error(net->ctx, NSDE_ERR_NOMEM, "nsde_net_finalize: cannot allocate %zu bytes",
                       total);
  memset(net->mem, 0, total);
  m = net->mem;
#define CARVE(ptr, nfloats)                                  \
  do {                                                       \
    (ptr) = (float *)(void *)m;                              \
    m += ((size_t)(nfloats) * 4 + 63) & ~(size_t)63;         \
  } while (0)
  CARVE(net->params, net->np);
  CARVE(net->grads, net->np);
  for (int i = 0; i < net->nl; i++)
    CARVE(net->act[i], (size_t)max_batch * (size_t)net->L[i].out_sz);
  CARVE(net->col, col);
  CARVE(net->ctmp, ctmp);
  CARVE(net->dbuf[0], (size_t)max_batch * maxact);
  CARVE(net->dbuf[1], (size_t)max_batch * maxact);
  CARVE(net->partial, part);
#undef CARVE
  net->max_batch = max_batch;
  net->final = true;
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

/* ---- convolution ----------------------------------------------------------- */

/* Output columns [*ox0, *ox1) whose input column, for kernel column kx, lies
 * inside the image (the rest read zero padding). Shared by im2col and col2im. */
static void valid_cols(const struct layer *l, int kx, int *ox0, int *ox1)
{
  int a = 0, b = l->wout;
  while (a < b && a * l->stride - l->pad + kx < 0)
    a++;
  while (b > a && (b - 1) * l->stride - l->pad + kx >= l->win)
    b--;
  *ox0 = a;
  *ox1 = b;
}

/* col[(c k k + ky k + kx) P + oy wout + ox] = input value or padding zero;
 * for concat-conv, channel 0 is the plane of value t. */
static void im2col(const struct nsde_net *net, const struct layer *l, const float *in, float t,
                   float *col, int64_t ld)
{
  const int cc = l->cin + (l->kind == L_CCONV), k = l->k, P = l->hout * l->wout;
  const int rows = cc * k * k, nt = net->ctx->threads;
  (void)nt;
#pragma omp parallel for schedule(static) num_threads(nt) if ((int64_t)rows * P > NSDE_PAR_MIN)
  for (int r = 0; r < rows; r++) {
    int c = r / (k * k), ky = (r / k) % k, kx = r % k;
    int src = l->kind == L_CCONV ? c - 1 : c;
    float *dst = col + (size_t)r * (size_t)ld;
    const float *plane = src >= 0 ? in + (size_t)src * l->hin * l->win : NULL;
    int ox0, ox1;
    valid_cols(l, kx, &ox0, &ox1);
    for (int oy = 0; oy < l->hout; oy++) {
      int iy = oy * l->stride - l->pad + ky;
      float *d = dst + oy * l->wout;
      if (iy < 0 || iy >= l->hin) {
        memset(d, 0, (size_t)l->wout * sizeof(float));
        continue;
      }
      for (int ox = 0; ox < ox0; ox++)
        d[ox] = 0.0f;
      if (!plane) {
        for (int ox = ox0; ox < ox1; ox++)
          d[ox] = t;
      } else if (l->stride == 1) {
        memcpy(d + ox0, plane + iy * l->win + ox0 - l->pad + kx, (size_t)(ox1 - ox0) * sizeof(float));
      } else {
        const float *srow = plane + iy * l->win - l->pad + kx;
        for (int ox = ox0; ox < ox1; ox++)
          d[ox] = srow[ox * l->stride];
      }
      for (int ox = ox1; ox < l->wout; ox++)
        d[ox] = 0.0f;
    }
  }
}

/* dx[c][iy][ix] += dcol[...]: the adjoint of im2col (time plane skipped). */
static void col2im(const struct nsde_net *net, const struct layer *l, const float *dcol, int64_t ld,
                   float *dx)
{
  const int k = l->k, P = l->hout * l->wout, off = l->kind == L_CCONV, nt = net->ctx->threads;
  (void)nt;
#pragma omp parallel for schedule(static) num_threads(nt) if ((int64_t)l->cin * k * k * P > NSDE_PAR_MIN)
  for (int c = 0; c < l->cin; c++) {
    float *plane = dx + (size_t)c * l->hin * l->win;
    memset(plane, 0, (size_t)l->hin * l->win * sizeof(float));
    for (int ky = 0; ky < k; ky++)
      for (int kx = 0; kx < k; kx++) {
        const float *src = dcol + (size_t)(((c + off) * k + ky) * k + kx) * (size_t)ld;
        int ox0, ox1;
        valid_cols(l, kx, &ox0, &ox1);
        for (int oy = 0; oy < l->hout; oy++) {
          int iy = oy * l->stride - l->pad + ky;
          float *drow;
          const float *srow = src + oy * l->wout;
          if (iy < 0 || iy >= l->hin)
            continue;
          drow = plane + iy * l->win - l->pad + kx;
          if (l->stride == 1) {
            for (int ox = ox0; ox < ox1; ox++)
              drow[ox] += srow[ox];
          } else {
            for (int ox = ox0; ox < ox1; ox++)
              drow[ox * l->stride] += srow[ox];
          }
        }
      }
  }
}

/* Images per GEMM: enough pixels to keep BLIS efficient, few enough that the
 * column buffer stays around 4 MB. Depends on shapes only (determinism). */
static int64_t conv_chunk(const struct layer *l, int64_t max_batch)
{
  const int64_t K = (int64_t)(l->cin + (l->kind == L_CCONV)) * l->k * l->k;
  const int64_t P = (int64_t)l->hout * l->wout;
  int64_t nb = ((int64_t)1 << 19) / (K * P > 0 ? K * P : 1);
  if (nb < 1)
    nb = 1;
  if (nb > max_batch)
    nb = max_batch;
  return nb;
}

static void conv_forward(struct nsde_net *net, const struct layer *l, int64_t B, const float *x,
                         float *y, float t)
{
  const int64_t K = (int64_t)(l->cin + (l->kind == L_CCONV)) * l->k * l->k;
  const int64_t P = (int64_t)l->hout * l->wout, nbmax = conv_chunk(l, net->max_batch);
  const float *W = net->params + l->poff, *bias = W + (size_t)l->cout * K;

  for (int64_t b0 = 0; b0 < B; b0 += nbmax) {
    const int64_t nb = B - b0 < nbmax ? B - b0 : nbmax, ld = nb * P;
    for (int64_t j = 0; j < nb; j++)
      im2col(net, l, x + (b0 + j) * l->in_sz, t, net->col + j * P, ld);
    /* C^T (nb P x cout) = col^T (nb P x K) W^T (K x cout), stored as C (cout x nb P) */
    nsde__gemm(net->ctx, NSDE_FLOAT32, false, false, ld, l->cout, K, 1.0, net->col, 1, ld, W, 1, K,
               0.0, net->ctmp, 1, ld);
    for (int64_t j = 0; j < nb; j++)
      for (int o = 0; o < l->cout; o++) {
        const float *src = net->ctmp + (size_t)o * ld + j * P;
        float *dst = y + (b0 + j) * l->out_sz + (size_t)o * P;
        for (int64_t p = 0; p < P; p++)
          dst[p] = src[p] + bias[o];
      }
  }
}

static void conv_backward(struct nsde_net *net, const struct layer *l, int64_t B, const float *x,
                          const float *dy, float *dx, float *gp, float t)
{
  const int64_t K = (int64_t)(l->cin + (l->kind == L_CCONV)) * l->k * l->k;
  const int64_t P = (int64_t)l->hout * l->wout, nbmax = conv_chunk(l, net->max_batch);
  const float *W = net->params + l->poff;
  float *dW = gp + l->poff, *db = dW + (size_t)l->cout * K;

  for (int64_t b0 = 0; b0 < B; b0 += nbmax) {
    const int64_t nb = B - b0 < nbmax ? B - b0 : nbmax, ld = nb * P;
    for (int64_t j = 0; j < nb; j++) {
      im2col(net, l, x + (b0 + j) * l->in_sz, t, net->col + j * P, ld);
      for (int o = 0; o < l->cout; o++) /* gather dy into (cout x nb P) */
        memcpy(net->ctmp + (size_t)o * ld + j * P, dy + (b0 + j) * l->out_sz + (size_t)o * P,
               (size_t)P * sizeof(float));
    }
    /* dW (cout x K) += dY (cout x nb P) col^T (nb P x K) */
    nsde__gemm(net->ctx, NSDE_FLOAT32, false, false, l->cout, K, ld, 1.0, net->ctmp, ld, 1,
               net->col, 1, ld, 1.0, dW, K, 1);
    for (int o = 0; o < l->cout; o++) {
      double s = 0;
      const float *row = net->ctmp + (size_t)o * ld;
      for (int64_t p = 0; p < ld; p++)
        s += row[p];
      db[o] += (float)s;
    }
    if (dx) {
      /* dcol (K x nb P) = W^T (K x cout) dY (cout x nb P), then scatter back */
      nsde__gemm(net->ctx, NSDE_FLOAT32, false, false, K, ld, l->cout, 1.0, W, 1, K, net->ctmp,
                 ld, 1, 0.0, net->col, ld, 1);
      for (int64_t j = 0; j < nb; j++)
        col2im(net, l, net->col + j * P, ld, dx + (b0 + j) * l->in_sz);
    }
  }
}

/* ---- group norm ------------------------------------------------------------- */

static void gn_forward(struct nsde_net *net, const struct layer *l, int64_t B, const float *x,
                       float *y)
{
  const int G = l->groups, cg = l->cin / G;
  const int64_t hw = (int64_t)l->hin * l->win, n = cg * hw;
  const float *gamma = net->params + l->poff, *beta = gamma + l->cin;
  const int nt = net->ctx->threads;
  (void)nt;
#pragma omp parallel for schedule(static) num_threads(nt) if (B * l->in_sz > NSDE_PAR_MIN)
  for (int64_t bg = 0; bg < B * G; bg++) {
    int64_t b = bg / G, g = bg % G;
    const float *xs = x + b * l->in_sz + g * n;
    float *ys = y + b * l->in_sz + g * n;
    double mean = 0, var = 0, rstd;
    for (int64_t i = 0; i < n; i++)
      mean += xs[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++)
      var += ((double)xs[i] - mean) * ((double)xs[i] - mean);
    var /= (double)n;
    rstd = 1.0 / sqrt(var + (double)l->eps);
    l->stats[2 * bg] = (float)mean;
    l->stats[2 * bg + 1] = (float)rstd;
    for (int c = 0; c < cg; c++) {
      int ch = (int)g * cg + c;
      float a = (float)rstd * gamma[ch], s = beta[ch] - (float)mean * a;
      for (int64_t i = 0; i < hw; i++)
        ys[c * hw + i] = xs[c * hw + i] * a + s;
    }
  }
}

static void gn_backward(struct nsde_net *net, const struct layer *l, int64_t B, const float *x,
                        const float *dy, float *dx, float *gp)
{
  const int G = l->groups, cg = l->cin / G, C = l->cin;
  const int64_t hw = (int64_t)l->hin * l->win, n = cg * hw;
  const float *gamma = net->params + l->poff;
  float *dgamma = gp + l->poff, *dbeta = dgamma + C, *part = net->partial;
  const int nt = net->ctx->threads;
  (void)nt;
#pragma omp parallel for schedule(static) num_threads(nt) if (B * l->in_sz > NSDE_PAR_MIN)
  for (int64_t bg = 0; bg < B * G; bg++) {
    int64_t b = bg / G, g = bg % G;
    const float *xs = x + b * l->in_sz + g * n, *dys = dy + b * l->in_sz + g * n;
    const double mean = l->stats[2 * bg], rstd = l->stats[2 * bg + 1];
    double m1 = 0, m2 = 0;
    for (int c = 0; c < cg; c++) {
      int ch = (int)g * cg + c;
      double sg = 0, sb = 0;
      for (int64_t i = 0; i < hw; i++) {
        double xh = ((double)xs[c * hw + i] - mean) * rstd, d = dys[c * hw + i];
        sg += d * xh;
        sb += d;
        m1 += d * gamma[ch];
        m2 += d * gamma[ch] * xh;
      }
      part[2 * (b * C + ch)] = (float)sg;
      part[2 * (b * C + ch) + 1] = (float)sb;
    }
    m1 /= (double)n;
    m2 /= (double)n;
    if (dx) {
      float *dxs = dx + b * l->in_sz + g * n;
      for (int c = 0; c < cg; c++) {
        int ch = (int)g * cg + c;
        for (int64_t i = 0; i < hw; i++) {
          double xh = ((double)xs[c * hw + i] - mean) * rstd;
          dxs[c * hw + i] = (float)(rstd * ((double)dys[c * hw + i] * gamma[ch] - m1 - xh * m2));
        }
      }
    }
  }
  for (int64_t b = 0; b < B; b++) /* fixed order: independent of the thread count */
    for (int c = 0; c < C; c++) {
      dgamma[c] += part[2 * (b * C + c)];
      dbeta[c] += part[2 * (b * C + c) + 1];
    }
}

/* ---- forward / backward ----------------------------------------------------- */

static void layer_forward(struct nsde_net *net, const struct layer *l, int64_t B, const float *x,
                          float *y, float t)
{
  const int64_t n = B * l->in_sz;
  const int nt = net->ctx->threads;
  (void)nt;
  switch (l->kind) {
  case L_CONV:
  case L_CCONV:
    conv_forward(net, l, B, x, y, t);
    break;
  case L_GN:
    gn_forward(net, l, B, x, y);
    break;
  case L_RELU:
#pragma omp parallel for simd num_threads(nt) if (n > NSDE_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
      y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    break;
  case L_POOL: {
    const int64_t hw = (int64_t)l->hin * l->win;
    for (int64_t bc = 0; bc < B * l->cin; bc++) {
      double s = 0;
      for (int64_t i = 0; i < hw; i++)
        s += x[bc * hw + i];
      y[bc] = (float)(s / (double)hw);
    }
    break;
  }
  case L_LINEAR: {
    const float *W = net->params + l->poff, *bias = W + (size_t)l->cout * l->in_sz;
    nsde__gemm(net->ctx, NSDE_FLOAT32, false, false, B, l->cout, l->in_sz, 1.0, x, l->in_sz, 1,
               W, 1, l->in_sz, 0.0, y, l->cout, 1);
    for (int64_t b = 0; b < B; b++)
      for (int o = 0; o < l->cout; o++)
        y[b * l->cout + o] += bias[o];
    break;
  }
  }
}

static void layer_backward(struct nsde_net *net, const struct layer *l, int64_t B,
                           const float *x, const float *y, const float *dy, float *dx, float *gp,
                           float t)
{
  const int64_t n = B * l->in_sz;
  const int nt = net->ctx->threads;
  (void)nt;
  switch (l->kind) {
  case L_CONV:
  case L_CCONV:
    conv_backward(net, l, B, x, dy, dx, gp, t);
    break;
  case L_GN:
    gn_backward(net, l, B, x, dy, dx, gp);
    break;
  case L_RELU:
    if (dx) {
#pragma omp parallel for simd num_threads(nt) if (n > NSDE_PAR_MIN)
      for (int64_t i = 0; i < n; i++)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    }
    break;
  case L_POOL:
    if (dx) {
      const int64_t hw = (int64_t)l->hin * l->win;
      for (int64_t bc = 0; bc < B * l->cin; bc++)
        for (int64_t i = 0; i < hw; i++)
          dx[bc * hw + i] = dy[bc] / (float)hw;
    }
    break;
  case L_LINEAR: {
    const float *W = net->params + l->poff;
    float *dW = gp + l->poff, *db = dW + (size_t)l->cout * l->in_sz;
    /* dW (out x in) += dy^T (out x B) x (B x in) */
    nsde__gemm(net->ctx, NSDE_FLOAT32, false, false, l->cout, l->in_sz, B, 1.0, dy, 1, l->cout,
               x, l->in_sz, 1, 1.0, dW, l->in_sz, 1);
    for (int o = 0; o < l->cout; o++) {
      double s = 0;
      for (int64_t b = 0; b < B; b++)
        s += dy[b * l->cout + o];
      db[o] += (float)s;
    }
    if (dx)
      nsde__gemm(net->ctx, NSDE_FLOAT32, false, false, B, l->in_sz, l->cout, 1.0, dy, l->cout, 1,
                 W, l->in_sz, 1, 0.0, dx, l->in_sz, 1);
    break;
  }
  }
}

/* Raw forward on B items: returns the output activation. */
const float *nsde__net_forward_raw(struct nsde_net *net, int64_t B, const float *x, float t)
{
  const float *in = x;
  for (int i = 0; i < net->nl; i++) {
    layer_forward(net, &net->L[i], B, in, net->act[i], t);
    in = net->act[i];
  }
  return in;
}

/* Raw backward after net_forward_raw on the same x: dx may be NULL;
 * parameter gradients are added to gp. */
void nsde__net_backward_raw(struct nsde_net *net, int64_t B, const float *x, const float *dy,
                             float *dx, float *gp, float t)
{
  const float *g = dy;
  for (int i = net->nl - 1; i >= 0; i--) {
    const struct layer *l = &net->L[i];
    const float *in = i > 0 ? net->act[i - 1] : x;
    float *dst = i > 0 ? net->dbuf[i % 2] : dx;
    layer_backward(net, l, B, in, net->act[i], g, dst, gp, t);
    g = dst;
  }
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
  const float *y;
  if (dim != (int64_t)net->c * net->h * net->w || batch > net->max_batch)
    return -1;
  y = nsde__net_forward_raw(net, batch, x, (float)t);
  memcpy(out, y, (size_t)(batch * dim) * sizeof(float));
  return 0;
}

static int net_vjp_cb(void *user, double t, int64_t batch, int64_t dim, const void *x,
                      const void *v, void *grad_x, void *grad_params)
{
  struct nsde_net *net = user;
  if (dim != (int64_t)net->c * net->h * net->w || batch > net->max_batch)
    return -1;
  nsde__net_forward_raw(net, batch, x, (float)t); /* recompute this step's activations */
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
