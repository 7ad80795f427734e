/*
 * 02-gradients: pathwise gradients with each strategy, and what they cost.
 *
 * L = mean over 1,000 paths of x(1) for dx = a x dt + s x dW, x(0) = 1, 200
 * steps. For a linear SDE every scheme's x(1) is x(0) times a product, so
 * dL/dx(0)_i = x_i(1) / x_i(0) / paths exactly: each strategy is checked
 * against that. STORE_ALL and CHECKPOINT give the same bits; ADJOINT (the
 * continuous stochastic adjoint, Euler-Maruyama) approaches them as the step
 * shrinks; REVERSIBLE (reversible Heun, Stratonovich) is exact in O(1) memory.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <nsde/nsde.h>

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != NSDE_OK) {                                                                       \
      fprintf(stderr, "02-gradients: %s\n", nsde_context_last_error(ctx));                         \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

#define PATHS 1000

static const char *names[] = {"store-all", "checkpoint", "adjoint", "reversible"};

int main(void)
{
  const enum nsde_grad_strategy strat[] = {NSDE_GRAD_STORE_ALL, NSDE_GRAD_CHECKPOINT,
                                           NSDE_GRAD_ADJOINT, NSDE_GRAD_REVERSIBLE};
  int64_t shape[2] = {PATHS, 1};
  struct nsde_context *ctx = NULL;
  int bad = 0;

  CHECK(nsde_context_new(&ctx));
  printf("%-10s %12s %10s %10s %14s\n", "strategy", "dL/da", "dL/ds", "bytes", "dL/dx0 error");
  for (int k = 0; k < 4; k++) {
    const int rev = strat[k] == NSDE_GRAD_REVERSIBLE;
    struct nsde_func *f, *g;
    struct nsde_sde *sde;
    struct nsde_solver_config cfg;
    struct nsde_solver *s;
    struct nsde_tensor *x, *gfin, *gx0;
    double ga[2], gs[1], err = 0;
    size_t bytes;

    CHECK(nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT64, 0.5, 0.0, &f));
    CHECK(nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT64, 0.8, &g));
    CHECK(nsde_sde_new(ctx, f, g, NSDE_NOISE_DIAGONAL,
                       rev ? NSDE_CALCULUS_STRATONOVICH : NSDE_CALCULUS_ITO, &sde));
    nsde_solver_config_init(&cfg);
    cfg.scheme = rev ? NSDE_SCHEME_REVERSIBLE_HEUN : NSDE_SCHEME_EULER_MARUYAMA;
    cfg.n_steps = 200;
    cfg.seed = 7;
    cfg.grad = strat[k];
    CHECK(nsde_solver_workspace_bytes(sde, &cfg, 2, shape, &bytes));
    CHECK(nsde_solver_new(sde, &cfg, 2, shape, &s));
    CHECK(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &x));
    CHECK(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &gfin));
    CHECK(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &gx0));
    CHECK(nsde_tensor_fill(x, 1.0));
    CHECK(nsde_solve(s, x, NULL));
    CHECK(nsde_tensor_fill(gfin, 1.0 / PATHS)); /* dL/dx(1) */
    CHECK(nsde_backward(s, gfin, NULL, gx0, ga, 2, gs, 1));
    for (int i = 0; i < PATHS; i++) {
      double want = ((double *)nsde_tensor_data(x))[i] / PATHS;
      double got = ((double *)nsde_tensor_data(gx0))[i];
      err += fabs(got - want) / want / PATHS;
    }
    printf("%-10s %12.6f %10.6f %10zu %14.1e\n", names[k], ga[0], gs[0], bytes, err);
    /* mean relative error: exact strategies to rounding, the adjoint to its
     * discretisation error (it converges as the step shrinks) */
    bad |= err > (strat[k] == NSDE_GRAD_ADJOINT ? 0.05 : 1e-12);
    nsde_tensor_free(gx0);
    nsde_tensor_free(gfin);
    nsde_tensor_free(x);
    nsde_solver_free(s);
    nsde_sde_free(sde);
    nsde_func_free(g);
    nsde_func_free(f);
  }
  nsde_context_free(ctx);
  return bad;
}
