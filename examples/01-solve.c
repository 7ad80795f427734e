/*
 * 01-solve: solve an SDE and compare with its exact solution.
 *
 * Geometric Brownian motion dx = mu x dt + s x dW (Ito), x(0) = 1, on [0, 1]
 * with Milstein, 100 steps, 10,000 paths. Its exact solution on the same path
 * is x(1) = exp((mu - s^2/2) + s W(1)); the solver's Brownian path gives W(1).
 * Prints the sample mean against E x(1) = e^mu and the strong error.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <nsde/nsde.h>

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != NSDE_OK) {                                                                       \
      fprintf(stderr, "01-solve: %s\n", nsde_context_last_error(ctx));                             \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

int main(void)
{
  const double mu = 0.5, s = 0.8;
  const int64_t paths = 10000;
  int64_t shape[2] = {paths, 1};
  struct nsde_context *ctx = NULL;
  struct nsde_func *f, *g;
  struct nsde_sde *sde;
  struct nsde_solver_config cfg;
  struct nsde_solver *solver;
  struct nsde_tensor *x, *w;
  double mean = 0, var = 0, err = 0;

  CHECK(nsde_context_new(&ctx));
  CHECK(nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT64, mu, 0.0, &f));   /* f = mu x */
  CHECK(nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT64, s, &g)); /* g = s x */
  CHECK(nsde_sde_new(ctx, f, g, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_ITO, &sde));
  nsde_solver_config_init(&cfg);
  cfg.scheme = NSDE_SCHEME_MILSTEIN;
  cfg.n_steps = 100;
  cfg.seed = 2019;
  CHECK(nsde_solver_new(sde, &cfg, 2, shape, &solver));
  CHECK(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &x));
  CHECK(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &w));
  CHECK(nsde_tensor_fill(x, 1.0));
  CHECK(nsde_solve(solver, x, NULL));
  /* W(1) - W(0) of every path: the path the solver used */
  CHECK(nsde_brownian_increment(nsde_solver_brownian(solver), 0.0, 1.0, w, NULL));
  for (int64_t i = 0; i < paths; i++) {
    double xi = ((double *)nsde_tensor_data(x))[i], wi = ((double *)nsde_tensor_data(w))[i];
    double exact = exp(mu - 0.5 * s * s + s * wi);
    mean += xi / (double)paths;
    var += xi * xi / (double)paths;
    err += fabs(xi - exact) / (double)paths;
  }
  var -= mean * mean;
  printf("paths %lld, Milstein, %lld steps\n", (long long)paths, (long long)cfg.n_steps);
  printf("mean x(1) = %.4f +- %.4f (exact e^mu = %.4f)\n", mean, sqrt(var / (double)paths),
         exp(mu));
  printf("strong error E|x(1) - exact| = %.2e\n", err);
  nsde_tensor_free(w);
  nsde_tensor_free(x);
  nsde_solver_free(solver);
  nsde_sde_free(sde);
  nsde_func_free(g);
  nsde_func_free(f);
  nsde_context_free(ctx);
  return fabs(mean - exp(mu)) < 4 * sqrt(var / (double)paths) && err < 1e-2 ? 0 : 1;
}
