/*
 * The linear layer: y = W v + bias, with v the input in the public NCHW
 * flattening (W is out x in_sz, row-major; the bias follows).
 *
 * SPDX-License-Identifier: MIT
 */
#include "nn-private.h"
#include "nn-internal.h"

static enum nsde_status linear_add(struct nsde_net *net, struct layer *l,
                                   const struct layer_args *a)
{
  if (a->out < 1 || a->out > (1 << 24))
    return nsde__error(net->ctx, NSDE_ERR_INVALID, "linear: bad out_features %d", a->out);
  l->cout = a->out;
  l->hout = l->wout = 1;
  l->np = (int64_t)a->out * l->in_sz + a->out;
  return NSDE_OK;
}

static void linear_init(const struct layer *l, float *p, uint64_t *rng)
{
  nsde__nn_init_uniform(p, l->np, l->in_sz, rng);
}

/* The input in the NCHW flattening: x itself when it has one pixel or one
 * channel, else transposed into tmp. */
static const float *linear_input(const struct layer *l, const float *x, float *tmp)
{
  if ((int64_t)l->hin * l->win == 1 || l->cin == 1)
    return x;
  nsde__to_nchw(x, tmp, l->cin, (int64_t)l->hin * l->win);
  return tmp;
}

static int linear_forward(const struct nsde_net *net, int i, int64_t b, const float *in, float *out,
                          float t, const struct scratch *sc, bool replay)
{
  const struct layer *l = &net->L[i];
  const float *W = net->params + l->poff, *bias = W + (size_t)l->cout * l->in_sz;
  const float *v = linear_input(l, in, sc->tmp);

  (void)b;
  (void)t;
  (void)replay;
  for (int o = 0; o < l->cout; o++) {
    float s = 0.0f;
    for (int64_t j = 0; j < l->in_sz; j++)
      s += W[o * l->in_sz + j] * v[j];
    out[o] = s + bias[o];
  }
  return 1;
}

static const float *linear_backward(const struct nsde_net *net, int i, int64_t b, const float *in,
                                    const float *y, const float *g, float *dst, float *gp, float t,
                                    const struct scratch *sc)
{
  const struct layer *l = &net->L[i];
  const float *W = net->params + l->poff, *v = linear_input(l, in, sc->tmp);
  float *dW = gp + l->poff, *dbias = dW + (size_t)l->cout * l->in_sz;

  (void)b;
  (void)y;
  (void)t;
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
      nsde__nn_to_nhwc(sc->tmp, dst, l->cin, (int64_t)l->hin * l->win);
  }
  return dst;
}

const struct layer_ops nsde__layer_linear = {
    .add = linear_add,
    .init = linear_init,
    .forward = linear_forward,
    .backward = linear_backward,
};

NSDE_API enum nsde_status nsde_net_add_linear(struct nsde_net *net, int out_features)
{
  const struct layer_args a = {.out = out_features};
  return nsde__nn_add_layer(net, L_LINEAR, &a);
}
