/*
 * The ReLU layer: y = max(x, 0), no parameters. A group norm right before it
 * applies it while it writes (groupnorm.c); then this layer only passes the
 * gradient through, the group norm masking it.
 *
 * SPDX-License-Identifier: MIT
 */
#include "nn-internal.h"

static int relu_forward(const struct nsde_net *net, int i, int64_t b, const float *in, float *out,
                        float t, const struct scratch *sc, bool replay)
{
  const struct layer *l = &net->L[i];

  (void)b;
  (void)t;
  (void)sc;
  (void)replay;
  for (int64_t j = 0; j < l->in_sz; j++)
    out[j] = in[j] > 0.0f ? in[j] : 0.0f;
  return 1;
}

static const float *relu_backward(const struct nsde_net *net, int i, int64_t b, const float *in,
                                  const float *y, const float *g, float *dst, float *gp, float t,
                                  const struct scratch *sc)
{
  const struct layer *l = &net->L[i];

  (void)b;
  (void)in;
  (void)gp;
  (void)t;
  (void)sc;
  if (i > 0 && net->L[i - 1].fused_relu)
    return g; /* the group norm below applies the mask */
  if (dst)
    for (int64_t j = 0; j < l->in_sz; j++)
      dst[j] = y[j] > 0.0f ? g[j] : 0.0f;
  return dst;
}

const struct layer_ops nsde__layer_relu = {
    .forward = relu_forward,
    .backward = relu_backward,
    .pointwise_relu = true,
};

NSDE_API enum nsde_status nsde_net_add_relu(struct nsde_net *net)
{
  const struct layer_args a = {0};
  return nsde__nn_add_layer(net, L_RELU, &a);
}
