/*
 * A net as an SDE drift: nsde_net_as_func wraps a net in the func interface
 * (eval = forward, vjp = backward).
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "func-private.h"
#include "nn-private.h"
#include "nn-internal.h"

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
  direct = !nsde__nn_transposes_output(net) && !net->taped[last] && net->own[last];
  if (direct)
    net->own[last] = out;
  y = nsde__nn_taped_forward(net, batch, x, (float)t);
  if (direct) {
    net->own[last] = own;
    nsde__nn_use_slot(net, -1); /* no pointer into the caller's buffer stays behind */
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
  nsde__nn_prepare_backward(net, batch, x,
                            (float)t); /* the tape's activations, or recompute them */
  nsde__net_backward_raw(net, batch, x, v, grad_x, grad_params ? grad_params : net->grads,
                         (float)t);
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
  nsde__nn_cur_shape(net, &c, &h, &w);
  if (c != net->c || h != net->h || w != net->w)
    return nsde__error(net->ctx, NSDE_ERR_SHAPE,
                       "nsde_net_as_func: a drift's output shape (%d, %d, %d) must equal its "
                       "input shape (%d, %d, %d)",
                       c, h, w, net->c, net->h, net->w);
  memset(&ops, 0, sizeof(ops));
  ops.size = sizeof(ops);
  ops.eval = net_eval_cb;
  ops.vjp = net_vjp_cb;
  return nsde_func_new(net->ctx, NSDE_DTYPE_FLOAT32, &ops, net, net->np,
                       net->np ? net->params : NULL, out);
}
