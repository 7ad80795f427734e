/*
 * Stochastic gradient descent with (Nesterov) momentum and weight decay (the
 * learning-rate schedules are in schedule.c).
 *
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nsde-private.h"

struct nsde_sgd {
  struct nsde_context *ctx;
  int64_t n;
  double momentum, wd;
  bool nesterov;
  float *v;
};

NSDE_API enum nsde_status nsde_sgd_new(struct nsde_context *ctx, int64_t n_params, double momentum,
                                       double weight_decay, bool nesterov, struct nsde_sgd **out)
{
  struct nsde_sgd *o;

  if (!out)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_sgd_new: output pointer is NULL");
  *out = NULL;
  if (!ctx)
    return NSDE_ERR_NULL;
  if (n_params < 1 || n_params > ((int64_t)1 << 40) || !(momentum >= 0 && momentum < 1) ||
      !(weight_decay >= 0) || !isfinite(weight_decay) || (nesterov && momentum == 0))
    return nsde__error(ctx, NSDE_ERR_INVALID,
                       "nsde_sgd_new: bad n_params %lld, momentum %g or weight decay %g",
                       (long long)n_params, momentum, weight_decay);
  o = calloc(1, sizeof(*o));
  if (o)
    o->v = nsde__alloc((size_t)n_params * sizeof(float));
  if (!o || !o->v) {
    free(o);
    return nsde__error(ctx, NSDE_ERR_NOMEM, "out of memory");
  }
  memset(o->v, 0, (size_t)n_params * sizeof(float));
  o->ctx = ctx;
  o->n = n_params;
  o->momentum = momentum;
  o->wd = weight_decay;
  o->nesterov = nesterov;
  *out = o;
  return NSDE_OK;
}

NSDE_API void nsde_sgd_free(struct nsde_sgd *opt)
{
  if (!opt)
    return;
  nsde__free(opt->v);
  free(opt);
}

NSDE_API enum nsde_status nsde_sgd_step(struct nsde_sgd *opt, float *params, const float *grads,
                                        double lr)
{
  const float mu = opt ? (float)opt->momentum : 0, wd = opt ? (float)opt->wd : 0;
  float *v;
  int64_t n;

  if (!opt || !params || !grads)
    return NSDE_ERR_NULL;
  if (!(lr >= 0) || !isfinite(lr))
    return nsde__error(opt->ctx, NSDE_ERR_INVALID, "nsde_sgd_step: bad learning rate %g", lr);
  v = opt->v;
  n = opt->n;
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(grads[i]))
      return nsde__error(opt->ctx, NSDE_ERR_NONFINITE,
                         "nsde_sgd_step: gradient %lld is not finite; parameters unchanged",
                         (long long)i);
  for (int64_t i = 0; i < n; i++) {
    float g = grads[i] + wd * params[i];
    v[i] = mu * v[i] + g;
    params[i] -= (float)lr * (opt->nesterov ? g + mu * v[i] : v[i]);
  }
  return NSDE_OK;
}

NSDE_API float *nsde_sgd_velocity(struct nsde_sgd *opt)
{
  return opt ? opt->v : NULL;
}

NSDE_API enum nsde_status nsde_sgd_reset(struct nsde_sgd *opt)
{
  if (!opt)
    return NSDE_ERR_NULL;
  memset(opt->v, 0, (size_t)opt->n * sizeof(float));
  return NSDE_OK;
}
