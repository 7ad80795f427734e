/*
 * The global average pool: the mean of each channel over the pixels (sums in
 * double), no parameters; the gradient spreads evenly back.
 *
 * SPDX-License-Identifier: MIT
 */
#include "nn-internal.h"

static enum nsde_status pool_add(struct nsde_net *net, struct layer *l, const struct layer_args *a)
{
  (void)net;
  (void)a;
  l->hout = l->wout = 1;
  return NSDE_OK;
}

static int pool_forward(const struct nsde_net *net, int i, int64_t b, const float *in, float *out,
                        float t, const struct scratch *sc, bool replay)
{
  const struct layer *l = &net->L[i];
  const int64_t P = (int64_t)l->hin * l->win;
  double *s = sc->acc;

  (void)b;
  (void)t;
  (void)replay;
  for (int c = 0; c < l->cin; c++)
    s[c] = 0;
  for (int64_t p = 0; p < P; p++)
    for (int c = 0; c < l->cin; c++)
      s[c] += in[p * l->cin + c];
  for (int c = 0; c < l->cin; c++)
    out[c] = (float)(s[c] / (double)P);
  return 1;
}

static const float *pool_backward(const struct nsde_net *net, int i, int64_t b, const float *in,
                                  const float *y, const float *g, float *dst, float *gp, float t,
                                  const struct scratch *sc)
{
  const struct layer *l = &net->L[i];
  const int64_t P = (int64_t)l->hin * l->win;

  (void)b;
  (void)in;
  (void)y;
  (void)gp;
  (void)t;
  (void)sc;
  if (dst)
    for (int64_t p = 0; p < P; p++)
      for (int c = 0; c < l->cin; c++)
        dst[p * l->cin + c] = g[c] / (float)P;
  return dst;
}

const struct layer_ops nsde__layer_avgpool = {
    .add = pool_add,
    .forward = pool_forward,
    .backward = pool_backward,
};

NSDE_API enum nsde_status nsde_net_add_avgpool(struct nsde_net *net)
{
  const struct layer_args a = {0};
  return nsde__nn_add_layer(net, L_POOL, &a);
}
