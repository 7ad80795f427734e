/*
 * The network module's internals (lib/nn/): the net and layer structs and the
 * calls between its files. The module's direction: net.c builds, pass.c runs
 * the layers (through their ops tables: conv.c with conv3x3.c and
 * conv-direct.c, groupnorm.c, relu.c, avgpool.c, linear.c) item by
 * item, tape.c keeps activations, drift.c makes a net an SDE drift. Not
 * installed.
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_NN_INTERNAL_H
#define NSDE_NN_INTERNAL_H

#include "nsde-private.h"

#ifdef _OPENMP
#include <omp.h>
#else
static inline int omp_get_thread_num(void)
{
  return 0;
}
static inline int omp_get_num_threads(void)
{
  return 1;
}
#endif

/* The layer kinds, one line each: the kind and its ops table
 * (nsde__layer_<name>, defined in the layer's file: conv.c, which serves
 * both convolutions, groupnorm.c, relu.c, avgpool.c, linear.c). */
#define NSDE__LAYERS(X)                                                                            \
  X(L_CONV, conv)                                                                                  \
  X(L_CCONV, conv)                                                                                 \
  X(L_GN, groupnorm)                                                                               \
  X(L_RELU, relu)                                                                                  \
  X(L_POOL, avgpool)                                                                               \
  X(L_LINEAR, linear)

#define NSDE__LAYER_KIND(kind, name) kind,
enum lkind { NSDE__LAYERS(NSDE__LAYER_KIND) L_N };
#undef NSDE__LAYER_KIND

struct layer_ops;

struct layer {
  enum lkind kind;
  const struct layer_ops *ops;
  int cin, hin, win, cout, hout, wout; /* cin excludes the time plane */
  int k, stride, pad, groups;
  float eps;
  int64_t poff, np, in_sz, out_sz;
  int64_t wpoff; /* convolution: packed weights in net->wpack */
  int64_t waoff; /* direct convolution: its weight-gradient accumulator in the scratch (-1: none) */
  int64_t stoff; /* F(4x4) weight gradient: its group's staging in the scratch (-1: none) */
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
  float **act; /* act[i]: output of layer i (channels-last items) */
  float **own; /* the net's own output buffers (NULL for a fused group norm) */
  bool *taped; /* layer i's output is kept on the tape */
  int64_t *tape_off;
  float *wpack;     /* convolution weights, tap-major (see im2col_item) */
  float *packed_of; /* the parameters wpack was made from (valid when packed) */
  bool packed;
  float *xin;  /* channels-last copy of an NCHW input batch */
  float *yout; /* NCHW copy of a spatial output batch */
  float *part; /* per-chunk parameter gradients */
  int64_t max_chunks;
  uint64_t *fp; /* per-item fingerprints */
  size_t col_sz, item_sz;
  size_t wacc_sz;  /* per-thread direct weight-gradient accumulators, all layers */
  size_t stage_sz; /* per-thread stagings of F(4x4)'s weight gradient, all layers */
  int maxc;
  float *scr; /* per-thread scratch */
  int nscr;
  bool in_nhwc, out_nhwc;
  bool no_wgrad; /* backward computes dx only: no convolution weight or bias gradients */
  bool no_tape;  /* forward passes skip the tape (nsde__net_set_no_tape) */
  float *tape;   /* tape_n slots of tape_slot floats: the convolution outputs of one eval */
  struct tape_meta *meta;
  size_t tape_slot;
  int64_t tape_n, tape_next, tape_hits, tape_misses;
  void *mem;
};

/* One thread's scratch (pass.c): im2col / Winograd buffers, a linear
 * layer's NCHW view, the backward's channels-last input gradient, two
 * gradient buffers per item of a backward group, group-norm accumulators
 * (doubles), Winograd temporaries. */
struct scratch {
  float *col, *dcol, *tmp, *dxout, *dg, *wt;
  double *acc;
  float *wacc;  /* direct convolutions' weight gradients, [tap][c][o], summed over a chunk */
  float *stage; /* the items of F(4x4)'s weight-gradient groups, transformed */
};

/* What nsde_net_add_* asked for (each layer reads its own fields). */
struct layer_args {
  int out, kernel, stride, pad, groups;
  double eps;
};

/* What a layer kind does. net.c and pass.c reach a layer only through this
 * table; forward and backward are required, any other hook left NULL does
 * nothing. */
struct layer_ops {
  /* Shape the new layer l (cin, hin, win, in_sz: the net's current output;
   * cout, hout, wout preset to the input's) from a: set the output shape,
   * l->np and its own fields, or refuse the arguments. */
  enum nsde_status (*add)(struct nsde_net *net, struct layer *l, const struct layer_args *a);
  /* The initial parameters p[0 .. l->np), drawing from the stream *rng in
   * layer order. */
  void (*init)(const struct layer *l, float *p, uint64_t *rng);
  /* At nsde_net_finalize, layer i: its share of the scratch, of the packed
   * weights (*wp floats so far), its tape slot and per-item buffers. */
  enum nsde_status (*plan)(struct nsde_net *net, int i, int64_t max_batch, size_t *wp);
  /* Item b forward, in -> out (channels-last); returns how many layers it
   * ran: 2 when it also wrote the next layer's output (a fused ReLU). */
  int (*forward)(const struct nsde_net *net, int i, int64_t b, const float *in, float *out, float t,
                 const struct scratch *sc, bool replay);
  /* Item b backward: the output gradient g into the input gradient dst
   * (NULL: not wanted), parameter gradients added to gp (packed layout);
   * returns the gradient for the layer below: dst, or g passed through. */
  const float *(*backward)(const struct nsde_net *net, int i, int64_t b, const float *in,
                           const float *y, const float *g, float *dst, float *gp, float t,
                           const struct scratch *sc);
  /* Where a chunk's parameter gradients j0 .. j0 + n - 1 (in the layer's
   * own layout) belong among the public parameters: idx[0 .. n) (NULL:
   * where they are). */
  void (*public_indices)(const struct layer *l, int64_t j0, int n, int64_t *idx);
  /* Whether the layer is max(x, 0), which a group norm before it can apply
   * while it writes. */
  bool pointwise_relu;
};

#define NSDE__LAYER_DECL(kind, name) extern const struct layer_ops nsde__layer_##name;
NSDE__LAYERS(NSDE__LAYER_DECL)
#undef NSDE__LAYER_DECL

/* net.c: building and finalising */
void nsde__nn_cur_shape(const struct nsde_net *net, int *c, int *h, int *w);
/* Append a layer of this kind, shaped by its ops' add. */
enum nsde_status nsde__nn_add_layer(struct nsde_net *net, enum lkind kind,
                                    const struct layer_args *a);
/* n uniform values in +-1/sqrt(fan) from the stream (the PyTorch default). */
void nsde__nn_init_uniform(float *p, int64_t n, int64_t fan, uint64_t *rng);

/* conv.c: im2col/GEMM convolution and its dispatch */
void nsde__nn_to_nhwc(const float *src, float *dst, int c, int64_t p);
int64_t nsde__nn_conv_kp(const struct layer *l);
/* A direct or few-channel layer's chunk gradients lie [tap][cc][o] (cc =
 * its input channels and the time plane first if it has one; conv.c's
 * conv_grad_indices): the first float of (tap, c)'s row of output
 * channels. */
static inline int64_t nsde__nn_grad_row(const struct layer *l, int tap, int c)
{
  return ((int64_t)tap * (l->cin + (l->kind == L_CCONV)) + c) * l->cout;
}
void nsde__nn_pack_weights(struct nsde_net *net);
void nsde__nn_conv_fwd_item(const struct nsde_net *net, const struct layer *l, const float *in,
                            float *out, float t, float *col, float *dcol, float *wt);
/* conv-wgrad.c: the direct layers' weight gradients. Items per group of
 * F(4x4)'s (0: not that way); floats of a layer's part of the chunk's
 * accumulators (sc->wacc; they lie at its l->waoff). */
int nsde__nn_wgrad4_items(const struct layer *l);
int64_t nsde__nn_wacc_size(const struct layer *l);
void nsde__nn_direct_bwd_item(const struct nsde_net *net, const struct layer *l, const float *in,
                              const float *g, float *dx, float t, const struct scratch *sc);
void nsde__nn_direct_flush(const struct nsde_net *net, float *gp, const struct scratch *sc);
void nsde__nn_conv_bwd_item(const struct nsde_net *net, const struct layer *l, const float *in,
                            const float *g, float *dx, float *gp, float t,
                            const struct scratch *sc);

/* conv3x3.c: 3x3/stride 1/pad 1 convolutions: Winograd F(2x2,3x3), direct-kernel packing */
bool nsde__nn_is_3x3_same(const struct layer *l);
bool nsde__nn_use_direct(const struct layer *l);
bool nsde__nn_use_winograd(const struct layer *l);
bool nsde__nn_use_wino_reg(const struct layer *l);
/* conv-few.c: whether the layer takes the few-input-channel kernels (3x3
 * same conv2d, 1-3 input channels, output channels a multiple of 16, a CPU
 * with the direct kernels); their filters wf ([tap][ci][co], packed after the
 * tap-major weights); the scratch (col) floats; one item's forward and
 * backward (the weight gradient added to the chunk's accumulator, laid out
 * as a direct layer's, unless NULL; dx unless NULL). */
bool nsde__nn_use_few(const struct layer *l);
void nsde__nn_few_pack(const struct layer *l, const float *W, float *wf);
size_t nsde__nn_few_scratch(const struct layer *l);
void nsde__nn_few_fwd_item(const struct layer *l, const float *wf, const float *bias,
                           const float *in, float *out, float *col);
void nsde__nn_few_bwd_item(const struct layer *l, const float *wf, const float *in, const float *g,
                           float *dw, float *dx, float *col);
/* conv-s2.c: whether the layer takes the direct kernels as a 4x4 / stride 2
 * / padding 1 conv2d (channel counts multiples of 16, a CPU with the direct
 * kernels); its filters (wf for the forward, wr for the input gradient, 16
 * cin cout floats each, packed after the tap-major weights); the scratch
 * floats (col and dcol each); one item's forward and backward (the weight
 * gradient added to the chunk's accumulator dwd unless NULL, 16 cin cout
 * floats, dx unless NULL); the chunk's accumulator into the packed gradient. */
bool nsde__nn_use_s2(const struct layer *l);
void nsde__nn_s2_pack(const struct layer *l, const float *W, float *wf, float *wr);
size_t nsde__nn_s2_scratch(const struct layer *l);
void nsde__nn_s2_fwd_item(const struct layer *l, const float *wf, const float *bias,
                          const float *in, float *out, float *col);
void nsde__nn_s2_bwd_item(const struct layer *l, const float *wr, const float *in, const float *g,
                          float *dwd, float *dx, float *col, float *dcol);
void nsde__nn_s2_flush(const struct layer *l, float *dwd, float *dW);
int64_t nsde__nn_filter_planes(const struct layer *l);
int64_t nsde__nn_wino_tiles(const struct layer *l);
int64_t nsde__nn_wino_extra(const struct layer *l);
float *nsde__nn_dgrad_filters(const struct nsde_net *net, const struct layer *l);
void nsde__nn_time_response(const struct layer *l, const float *W, float *tr);
void nsde__nn_direct_pack(const struct layer *l, const float *W, float *wd, float *wr);
void nsde__nn_wino_reg_pack(const struct layer *l, const float *W, float *U, float *Ud, int nt);
void nsde__nn_wino_pack(const struct layer *l, const float *W, float *U, float *Ud, int nt);
void nsde__nn_wino_conv(const struct layer *l, const float *in, const float *U, const float *bias,
                        const float *tr, float t, float *out, float *V, float *M, float *wt);

/* groupnorm.c: group norm (channels-last items) */
void nsde__nn_gn_fwd_item(const struct nsde_net *net, const struct layer *l, int64_t b,
                          const float *restrict x, float *restrict y, bool relu,
                          double *restrict acc);
void nsde__nn_gn_bwd_item(const struct nsde_net *net, const struct layer *l, int64_t b,
                          const float *restrict x, const float *restrict dy,
                          const float *restrict relu, float *restrict dx, float *restrict gp,
                          double *restrict acc);

/* pass.c: per-item and batch passes */
bool nsde__nn_transposes_output(const struct nsde_net *net);
int nsde__nn_use_threads(struct nsde_net *net);
void nsde__nn_run_forward(struct nsde_net *net, int64_t B, const float *x, float t, bool replay);
const float *nsde__nn_output_of(const struct nsde_net *net);

/* tape.c: the activation tape */
void nsde__nn_use_slot(struct nsde_net *net, int64_t s);
const float *nsde__nn_taped_forward(struct nsde_net *net, int64_t B, const float *x, float t);
void nsde__nn_prepare_backward(struct nsde_net *net, int64_t B, const float *x, float t);

#endif
