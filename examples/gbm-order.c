/*
 * gbm-order: measured strong order of every libnsde solver.
 *
 * Each scheme integrates an SDE with a known answer on nested grids of 8..128
 * steps, all driven by the same Brownian paths (pinned on a 2048-step base
 * grid via brownian_steps), and the mean absolute error at t = 1 is fitted
 * against the step size on log-log axes:
 *   Ito GBM           dx = 0.5 x dt + 0.7 x dW      exact x0 exp(0.255 + 0.7 W(1))
 *   Stratonovich GBM  dx = 0.5 x dt + 0.7 x o dW    exact x0 exp(0.5 + 0.7 W(1))
 *   additive noise    dx = (-x + sin(x)(1+t)) dt + 0.8 dW, reference on the base grid
 *
 * usage: gbm-order [--short] [--paths N]
 * Prints `solver=<name> strong_order=<x>` per scheme. With --short (fewer
 * paths, used by the test suite) it exits 1 if an order is off by > 0.25.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nsde/nsde.h>

#define CHECK(call)                                                                                \
  do {                                                                                             \
    enum nsde_status st_ = (call);                                                                 \
    if (st_ != NSDE_OK) {                                                                          \
      fprintf(stderr, "gbm-order: %s: %s (%s)\n", #call, nsde_status_str(st_),                     \
              nsde_context_last_error(ctx));                                                       \
      exit(2);                                                                                     \
    }                                                                                              \
  } while (0)

static int additive_drift(void *user, double t, int64_t batch, int64_t dim, const void *x,
                          void *out)
{
  (void)user;
  for (int64_t i = 0; i < batch * dim; i++) {
    double v = ((const double *)x)[i];
    ((double *)out)[i] = -v + sin(v) * (1.0 + t);
  }
  return 0;
}

static struct nsde_context *ctx;

static double solve(const struct nsde_sde *sde, enum nsde_scheme scheme, int64_t steps,
                    int64_t base, int64_t paths, struct nsde_tensor *x, struct nsde_tensor *w)
{
  struct nsde_solver_config cfg;
  struct nsde_solver *s;
  int64_t shape[2] = {paths, 1};

  nsde_solver_config_init(&cfg);
  cfg.scheme = scheme;
  cfg.n_steps = steps;
  cfg.brownian_steps = base;
  cfg.seed = 2019;
  CHECK(nsde_solver_new(sde, &cfg, 2, shape, &s));
  CHECK(nsde_tensor_fill(x, 1.0));
  CHECK(nsde_solve(s, x, NULL));
  if (w)
    CHECK(nsde_brownian_increment(nsde_solver_brownian(s), 0.0, 1.0, w, NULL));
  nsde_solver_free(s);
  return 0;
}

int main(int argc, char **argv)
{
  const struct {
    const char *name;
    enum nsde_scheme scheme;
    enum nsde_calculus calc;
    int additive;
    double expected;
  } cases[] = {
      {"euler-maruyama", NSDE_SCHEME_EULER_MARUYAMA, NSDE_CALCULUS_ITO, 0, 0.5},
      {"milstein", NSDE_SCHEME_MILSTEIN, NSDE_CALCULUS_ITO, 0, 1.0},
      {"heun", NSDE_SCHEME_HEUN, NSDE_CALCULUS_STRATONOVICH, 0, 1.0},
      {"reversible-heun", NSDE_SCHEME_REVERSIBLE_HEUN, NSDE_CALCULUS_STRATONOVICH, 0, 1.0},
      {"sra1", NSDE_SCHEME_SRA1, NSDE_CALCULUS_ITO, 1, 1.5},
  };
  const int64_t steps[5] = {8, 16, 32, 64, 128}, base = 2048;
  int64_t paths = 4000;
  int short_mode = 0, bad = 0;

  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--short")) {
      short_mode = 1;
      paths = 1000;
    } else if (!strcmp(argv[i], "--paths") && i + 1 < argc) {
      paths = atoll(argv[++i]);
    } else {
      fprintf(stderr, "usage: gbm-order [--short] [--paths N]\n");
      return 2;
    }
  }
  if (paths < 10 || paths > 100000000) {
    fprintf(stderr, "gbm-order: --paths must be between 10 and 1e8\n");
    return 2;
  }
  if (nsde_context_new(&ctx) != NSDE_OK)
    return 2;
  for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
    struct nsde_func *f, *g;
    struct nsde_sde *sde;
    struct nsde_tensor *x, *ref, *w;
    int64_t shape[2] = {paths, 1};
    double lh[5], le[5], sx = 0, sy = 0, sxx = 0, sxy = 0, slope;

    if (cases[c].additive) {
      struct nsde_func_ops ops = {sizeof(ops), additive_drift, NULL, NULL, NULL};
      CHECK(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &ops, NULL, 0, NULL, &f));
      CHECK(nsde_func_new_additive(ctx, NSDE_DTYPE_FLOAT64, 0.8, &g));
      CHECK(nsde_sde_new(ctx, f, g, NSDE_NOISE_ADDITIVE, NSDE_CALCULUS_ITO, &sde));
    } else {
      CHECK(nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT64, 0.5, 0.0, &f));
      CHECK(nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT64, 0.7, &g));
      CHECK(nsde_sde_new(ctx, f, g, NSDE_NOISE_DIAGONAL, cases[c].calc, &sde));
    }
    CHECK(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &x));
    CHECK(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &ref));
    CHECK(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 1, shape, &w));
    solve(sde, cases[c].scheme, base, base, paths, ref, w);
    if (!cases[c].additive) {
      double drift = cases[c].calc == NSDE_CALCULUS_ITO ? 0.5 - 0.5 * 0.49 : 0.5;
      for (int64_t i = 0; i < paths; i++)
        ((double *)nsde_tensor_data(ref))[i] =
            exp(drift + 0.7 * ((double *)nsde_tensor_data(w))[i]);
    }
    for (int k = 0; k < 5; k++) {
      double err = 0;
      solve(sde, cases[c].scheme, steps[k], base, paths, x, NULL);
      for (int64_t i = 0; i < paths; i++)
        err += fabs(((double *)nsde_tensor_data(x))[i] - ((double *)nsde_tensor_data(ref))[i]);
      lh[k] = log(1.0 / (double)steps[k]);
      le[k] = log(err / (double)paths);
    }
    for (int k = 0; k < 5; k++) {
      sx += lh[k];
      sy += le[k];
      sxx += lh[k] * lh[k];
      sxy += lh[k] * le[k];
    }
    slope = (5 * sxy - sx * sy) / (5 * sxx - sx * sx);
    printf("solver=%s strong_order=%.3f\n", cases[c].name, slope);
    if (fabs(slope - cases[c].expected) > 0.25)
      bad = 1;
    nsde_tensor_free(x);
    nsde_tensor_free(ref);
    nsde_tensor_free(w);
    nsde_sde_free(sde);
    nsde_func_free(g);
    nsde_func_free(f);
  }
  nsde_context_free(ctx);
  return short_mode && bad ? 1 : 0;
}
