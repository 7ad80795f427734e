/*
 * 04-net-drift: a neural network as the drift of an SDE, trained by its
 * pathwise gradient.
 *
 * The paper's drift network (GroupNorm-ReLU-ConcatConv three times, GroupNorm)
 * on a 16 x 8 x 8 state, multiplicative noise sigma 0.5, Euler-Maruyama with
 * 10 steps on [0, 1], a batch of 4. L = sum x(1)^2 / 2, so dL/dx(1) = x(1).
 * nsde_backward gives dL/d(every network weight) in one pass; the largest is
 * checked against a central difference on the same Brownian path.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <nsde/nsde.h>

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != NSDE_OK) {                                                                       \
      fprintf(stderr, "04-net-drift: %s\n", nsde_context_last_error(ctx));                         \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

static struct nsde_context *ctx;

/* L(params) on the solver's fixed Brownian path, from x0 */
static double loss(struct nsde_solver *s, struct nsde_tensor *x, const struct nsde_tensor *x0)
{
  double l = 0;
  CHECK(nsde_tensor_copy(x, x0));
  CHECK(nsde_solve(s, x, NULL));
  for (int64_t i = 0; i < nsde_tensor_numel(x); i++)
    l += 0.5 * (double)((float *)nsde_tensor_data(x))[i] * ((float *)nsde_tensor_data(x))[i];
  return l;
}

int main(void)
{
  int64_t shape[4] = {4, 16, 8, 8}, np, k = 0;
  struct nsde_net *net;
  struct nsde_func *f, *g;
  struct nsde_sde *sde;
  struct nsde_solver_config cfg;
  struct nsde_solver *s;
  struct nsde_tensor *x0, *x, *gx;
  float *p, *grad;
  double l, num, rel;
  const double eps = 1e-2;

  CHECK(nsde_context_new(&ctx));
  CHECK(nsde_net_new_paper_drift(ctx, 16, 8, 8, 4, 4, 1, &net));
  CHECK(nsde_net_as_func(net, &f));
  CHECK(nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT32, 0.5, &g));
  CHECK(nsde_sde_new(ctx, f, g, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_ITO, &sde));
  nsde_solver_config_init(&cfg);
  cfg.n_steps = 10;
  cfg.seed = 3;
  cfg.grad = NSDE_GRAD_STORE_ALL;
  CHECK(nsde_solver_new(sde, &cfg, 4, shape, &s));
  CHECK(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, shape, &x0));
  CHECK(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, shape, &x));
  CHECK(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, shape, &gx));
  for (int64_t i = 0; i < nsde_tensor_numel(x0); i++)
    ((float *)nsde_tensor_data(x0))[i] = (float)sin(0.1 * (double)i);
  np = nsde_net_num_params(net);
  grad = calloc((size_t)np, sizeof(float));
  l = loss(s, x, x0);
  CHECK(nsde_backward(s, x, NULL, gx, grad, np, NULL, 0)); /* dL/dx(1) = x(1) */
  for (int64_t j = 1; j < np; j++)
    if (fabsf(grad[j]) > fabsf(grad[k]))
      k = j;
  p = nsde_net_params(net);
  p[k] += (float)eps;
  num = loss(s, x, x0);
  p[k] -= (float)(2 * eps);
  num = (num - loss(s, x, x0)) / (2 * eps);
  p[k] += (float)eps;
  rel = fabs(grad[k] - num) / fabs(num);
  printf("network drift: %lld parameters, L = %.3f\n", (long long)np, l);
  printf("largest gradient: parameter %lld, backward %.3f, central difference %.3f (rel. %.0e)\n",
         (long long)k, grad[k], num, rel);
  free(grad);
  nsde_tensor_free(gx);
  nsde_tensor_free(x);
  nsde_tensor_free(x0);
  nsde_solver_free(s);
  nsde_sde_free(sde);
  nsde_func_free(g);
  nsde_func_free(f);
  nsde_net_free(net);
  nsde_context_free(ctx);
  return rel < 1e-2 ? 0 : 1;
}
