/* Solvers: convergence orders, reversibility, reproducibility, errors.
 * SPDX-License-Identifier: MIT */
#include "testutil.h"

static struct nsde_context *ctx;
static void setup(void)
{
  ctx = test_ctx();
}
static void teardown(void)
{
  nsde_context_free(ctx);
}

static struct problem gbm(enum nsde_dtype dt, double mu, double sigma, enum nsde_calculus calc)
{
  struct problem p;
  ck_assert_int_eq(nsde_func_new_linear(ctx, dt, mu, 0.0, &p.f), NSDE_OK);
  ck_assert_int_eq(nsde_func_new_multiplicative(ctx, dt, sigma, &p.g), NSDE_OK);
  ck_assert_int_eq(nsde_sde_new(ctx, p.f, p.g, NSDE_NOISE_DIAGONAL, calc, &p.sde), NSDE_OK);
  return p;
}

static struct nsde_solver *solver(const struct nsde_sde *sde, enum nsde_scheme scheme,
                                  int64_t steps, uint64_t seed, int64_t batch, int64_t dim)
{
  struct nsde_solver_config cfg;
  struct nsde_solver *s = NULL;
  int64_t shape[2] = {batch, dim};
  nsde_solver_config_init(&cfg);
  cfg.scheme = scheme;
  cfg.n_steps = steps;
  cfg.seed = seed;
  ck_assert_msg(nsde_solver_new(sde, &cfg, 2, shape, &s) == NSDE_OK, "%s",
                nsde_context_last_error(ctx));
  return s;
}

static struct nsde_tensor *state(enum nsde_dtype dt, int64_t batch, int64_t dim, double v)
{
  struct nsde_tensor *x;
  int64_t shape[2] = {batch, dim};
  ck_assert_int_eq(nsde_tensor_new(ctx, dt, 2, shape, &x), NSDE_OK);
  TRY(nsde_tensor_fill(x, v));
  return x;
}

/* Nonlinear drift for the additive-noise test: f = -x + sin(x) (1 + t). */
static int sin_drift(void *user, double t, int64_t batch, int64_t dim, const void *x, void *out)
{
  const double *xd = x;
  double *o = out;
  (void)user;
  for (int64_t i = 0; i < batch * dim; i++)
    o[i] = -xd[i] + sin(xd[i]) * (1.0 + t);
  return 0;
}

/* Strong order: the same Brownian paths (pinned on a 2^11-step base grid)
 * drive every resolution; error against the exact solution (GBM) or a
 * base-grid reference (additive noise). */
static const struct {
  enum nsde_scheme scheme;
  enum nsde_calculus calc;
  double order;
  const char *name;
} order_cases[] = {
    {NSDE_SCHEME_EULER_MARUYAMA, NSDE_CALCULUS_ITO, 0.5, "euler-maruyama"},
    {NSDE_SCHEME_MILSTEIN, NSDE_CALCULUS_ITO, 1.0, "milstein"},
    {NSDE_SCHEME_HEUN, NSDE_CALCULUS_STRATONOVICH, 1.0, "heun"},
    {NSDE_SCHEME_REVERSIBLE_HEUN, NSDE_CALCULUS_STRATONOVICH, 1.0, "reversible-heun"},
    {NSDE_SCHEME_SRA1, NSDE_CALCULUS_ITO, 1.5, "sra1"},
};

START_TEST(strong_order)
{
  const int64_t M = 4000, base = 2048;
  const double mu = 0.5, sigma = 0.7;
  const int64_t steps[] = {8, 16, 32, 64, 128};
  const int K = 5;
  double h[5], err[5], slope;
  struct problem p;
  struct nsde_tensor *ref = state(NSDE_DTYPE_FLOAT64, M, 1, 1.0),
                     *x = state(NSDE_DTYPE_FLOAT64, M, 1, 1.0);
  bool additive = order_cases[_i].scheme == NSDE_SCHEME_SRA1;
  uint64_t seed = test_seed();

  if (additive) {
    struct nsde_func_ops ops = {sizeof(ops), sin_drift, NULL, NULL, NULL};
    ck_assert_int_eq(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &ops, NULL, 0, NULL, &p.f), NSDE_OK);
    ck_assert_int_eq(nsde_func_new_additive(ctx, NSDE_DTYPE_FLOAT64, 0.8, &p.g), NSDE_OK);
    ck_assert_int_eq(nsde_sde_new(ctx, p.f, p.g, NSDE_NOISE_ADDITIVE, NSDE_CALCULUS_ITO, &p.sde),
                     NSDE_OK);
  } else {
    p = gbm(NSDE_DTYPE_FLOAT64, mu, sigma, order_cases[_i].calc);
  }
  {
    /* reference: exact GBM from W(1), or the scheme on the base grid */
    struct nsde_solver *s = solver(p.sde, order_cases[_i].scheme, base, seed, M, 1);
    ck_assert_int_eq(nsde_solve(s, ref, NULL), NSDE_OK);
    if (!additive) {
      int64_t n = M;
      struct nsde_tensor *w;
      ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 1, &n, &w), NSDE_OK);
      ck_assert_int_eq(nsde_brownian_increment(nsde_solver_brownian(s), 0.0, 1.0, w, NULL),
                       NSDE_OK);
      for (int64_t i = 0; i < M; i++) {
        double wt = ((double *)nsde_tensor_data(w))[i];
        double drift = order_cases[_i].calc == NSDE_CALCULUS_ITO ? mu - 0.5 * sigma * sigma : mu;
        ((double *)nsde_tensor_data(ref))[i] = exp(drift + sigma * wt);
      }
      nsde_tensor_free(w);
    }
    nsde_solver_free(s);
  }
  for (int k = 0; k < K; k++) {
    struct nsde_solver_config cfg;
    struct nsde_solver *s;
    int64_t shape[2] = {M, 1};
    double e = 0;
    nsde_solver_config_init(&cfg);
    cfg.scheme = order_cases[_i].scheme;
    cfg.n_steps = steps[k];
    cfg.brownian_steps = base; /* coarse steps sum the base increments */
    cfg.seed = seed;
    ck_assert_int_eq(nsde_solver_new(p.sde, &cfg, 2, shape, &s), NSDE_OK);
    TRY(nsde_tensor_fill(x, 1.0));
    ck_assert_int_eq(nsde_solve(s, x, NULL), NSDE_OK);
    for (int64_t i = 0; i < M; i++)
      e += fabs(((double *)nsde_tensor_data(x))[i] - ((double *)nsde_tensor_data(ref))[i]);
    h[k] = 1.0 / (double)steps[k];
    err[k] = e / (double)M;
    nsde_solver_free(s);
  }
  slope = loglog_slope(h, err, K);
  printf("# solver=%s strong_order=%.3f (expected %.1f)\n", order_cases[_i].name, slope,
         order_cases[_i].order);
  ck_assert_msg(fabs(slope - order_cases[_i].order) < 0.15, "%s: slope %.3f, expected %.1f",
                order_cases[_i].name, slope, order_cases[_i].order);
  nsde_tensor_free(ref);
  nsde_tensor_free(x);
  problem_free(&p);
}
END_TEST

/* Weak order 1 of Euler-Maruyama on Ornstein-Uhlenbeck dX = -X dt + 0.5 dW:
 * E X(1) = e^-1, Var X(1) = 0.25 (1 - e^-2) / 2. */
START_TEST(weak_order_em)
{
  const int64_t M = 1000000;
  const int64_t steps[] = {4, 8, 16, 32};
  double h[4], em[4], ev[4];
  struct nsde_func *f, *g;
  struct nsde_sde *sde;
  struct nsde_tensor *x = state(NSDE_DTYPE_FLOAT64, M, 1, 1.0);
  const double mean_exact = exp(-1.0), var_exact = 0.25 * (1 - exp(-2.0)) / 2;

  ck_assert_int_eq(nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT64, -1.0, 0.0, &f), NSDE_OK);
  ck_assert_int_eq(nsde_func_new_additive(ctx, NSDE_DTYPE_FLOAT64, 0.5, &g), NSDE_OK);
  ck_assert_int_eq(nsde_sde_new(ctx, f, g, NSDE_NOISE_ADDITIVE, NSDE_CALCULUS_ITO, &sde), NSDE_OK);
  for (int k = 0; k < 4; k++) {
    struct nsde_solver_config cfg;
    struct nsde_solver *s;
    int64_t shape[2] = {M, 1};
    double m = 0, v = 0;
    nsde_solver_config_init(&cfg);
    cfg.n_steps = steps[k];
    cfg.brownian_steps = 32;
    cfg.seed = test_seed();
    ck_assert_int_eq(nsde_solver_new(sde, &cfg, 2, shape, &s), NSDE_OK);
    TRY(nsde_tensor_fill(x, 1.0));
    ck_assert_int_eq(nsde_solve(s, x, NULL), NSDE_OK);
    for (int64_t i = 0; i < M; i++)
      m += ((double *)nsde_tensor_data(x))[i];
    m /= (double)M;
    for (int64_t i = 0; i < M; i++) {
      double d = ((double *)nsde_tensor_data(x))[i] - m;
      v += d * d;
    }
    v /= (double)(M - 1);
    h[k] = 1.0 / (double)steps[k];
    em[k] = fabs(m - mean_exact);
    ev[k] = fabs(v - var_exact);
    nsde_solver_free(s);
  }
  printf("# EM weak order: mean %.3f variance %.3f\n", loglog_slope(h, em, 4),
         loglog_slope(h, ev, 4));
  ck_assert_msg(fabs(loglog_slope(h, em, 4) - 1.0) < 0.15, "mean slope %g", loglog_slope(h, em, 4));
  ck_assert_msg(fabs(loglog_slope(h, ev, 4) - 1.0) < 0.15, "var slope %g", loglog_slope(h, ev, 4));
  nsde_tensor_free(x);
  nsde_sde_free(sde);
  nsde_func_free(g);
  nsde_func_free(f);
}
END_TEST

/* Nonlinear Stratonovich SDE for the reversibility test:
 * f = sin(x) - 0.5 x (1 + t), G = 0.4 x (multiplicative). */
static int rev_drift(void *user, double t, int64_t batch, int64_t dim, const void *x, void *out)
{
  int64_t n = batch * dim;
  if (*(const int *)user == NSDE_DTYPE_FLOAT64) {
    for (int64_t i = 0; i < n; i++) {
      double v = ((const double *)x)[i];
      ((double *)out)[i] = sin(v) - 0.5 * v * (1 + t);
    }
  } else {
    for (int64_t i = 0; i < n; i++) {
      float v = ((const float *)x)[i];
      ((float *)out)[i] = sinf(v) - 0.5f * v * (float)(1 + t);
    }
  }
  return 0;
}

START_TEST(reversible_reconstruction)
{
  int dts[2] = {NSDE_DTYPE_FLOAT64, NSDE_DTYPE_FLOAT32};
  for (int d = 0; d < 2; d++) {
    enum nsde_dtype dt = (enum nsde_dtype)dts[d];
    struct nsde_func_ops ops = {sizeof(ops), rev_drift, NULL, NULL, NULL};
    struct nsde_func *f, *g;
    struct nsde_sde *sde;
    struct nsde_solver *s;
    const int64_t B = 64, D = 16;
    struct nsde_tensor *x = state(dt, B, D, 0.0), *x0 = state(dt, B, D, 0.0);
    double worst = 0, moved = 0;
    uint64_t seed = 99;

    ck_assert_int_eq(nsde_func_new(ctx, dt, &ops, &dts[d], 0, NULL, &f), NSDE_OK);
    ck_assert_int_eq(nsde_func_new_multiplicative(ctx, dt, 0.4, &g), NSDE_OK);
    ck_assert_int_eq(nsde_sde_new(ctx, f, g, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_STRATONOVICH, &sde),
                     NSDE_OK);
    s = solver(sde, NSDE_SCHEME_REVERSIBLE_HEUN, 100, seed, B, D);
    for (int64_t i = 0; i < B * D; i++) {
      double v = 0.5 + 1.5 * sin(0.37 * (double)i);
      if (dt == NSDE_DTYPE_FLOAT64)
        ((double *)nsde_tensor_data(x))[i] = v;
      else
        ((float *)nsde_tensor_data(x))[i] = (float)v;
    }
    TRY(nsde_tensor_copy(x0, x));
    ck_assert_int_eq(nsde_solver_reconstruct(s, x), NSDE_ERR_STATE); /* nothing solved yet */
    ck_assert_int_eq(nsde_solve(s, x, NULL), NSDE_OK);
    ck_assert_int_eq(nsde_solver_reconstruct(s, x), NSDE_OK);
    for (int64_t i = 0; i < B * D; i++) {
      double a = dt == NSDE_DTYPE_FLOAT64 ? ((double *)nsde_tensor_data(x))[i]
                                          : ((float *)nsde_tensor_data(x))[i];
      double b = dt == NSDE_DTYPE_FLOAT64 ? ((double *)nsde_tensor_data(x0))[i]
                                          : ((float *)nsde_tensor_data(x0))[i];
      worst = fmax(worst, fabs(a - b) / fmax(1.0, fabs(b)));
    }
    printf("# reversible Heun %s: worst relative reconstruction error %.3g\n",
           dt == NSDE_DTYPE_FLOAT64 ? "float64" : "float32", worst);
    ck_assert_msg(worst < (dt == NSDE_DTYPE_FLOAT64 ? 1e-12 : 1e-5), "dtype %d: error %g", dt,
                  worst);
    /* and the forward solve really moved the state */
    ck_assert_int_eq(nsde_solve(s, x, NULL), NSDE_OK);
    for (int64_t i = 0; i < B * D; i++)
      moved += fabs((dt == NSDE_DTYPE_FLOAT64 ? ((double *)nsde_tensor_data(x))[i]
                                              : ((float *)nsde_tensor_data(x))[i]) -
                    (dt == NSDE_DTYPE_FLOAT64 ? ((double *)nsde_tensor_data(x0))[i]
                                              : ((float *)nsde_tensor_data(x0))[i]));
    ck_assert(moved / (double)(B * D) > 0.1);
    nsde_solver_free(s);
    nsde_tensor_free(x);
    nsde_tensor_free(x0);
    nsde_sde_free(sde);
    nsde_func_free(g);
    nsde_func_free(f);
  }
}
END_TEST

/* 1 vs 2 threads, batch split with batch_offset, and step-wise vs solve:
 * all bit-identical. */
START_TEST(reproducible)
{
  const int64_t B = 40, D = 2000;
  struct problem p = gbm(NSDE_DTYPE_FLOAT32, 0.3, 0.6, NSDE_CALCULUS_ITO);
  struct nsde_tensor *a = state(NSDE_DTYPE_FLOAT32, B, D, 1.0),
                     *b = state(NSDE_DTYPE_FLOAT32, B, D, 1.0);
  struct nsde_tensor *lo = state(NSDE_DTYPE_FLOAT32, 15, D, 1.0),
                     *hi = state(NSDE_DTYPE_FLOAT32, 25, D, 1.0);
  struct nsde_solver *s = solver(p.sde, NSDE_SCHEME_EULER_MARUYAMA, 11, 5, B, D);
  struct nsde_solver_config cfg;
  struct nsde_solver *slo, *shi;
  int64_t shlo[2] = {15, D}, shhi[2] = {25, D};

  TRY(nsde_context_set_threads(ctx, 1));
  ck_assert_int_eq(nsde_solve(s, a, NULL), NSDE_OK);
  TRY(nsde_context_set_threads(ctx, 2));
  ck_assert_int_eq(nsde_solve(s, b, NULL), NSDE_OK);
  ck_assert(!memcmp(nsde_tensor_data(a), nsde_tensor_data(b), (size_t)(B * D) * 4));

  nsde_solver_config_init(&cfg);
  cfg.n_steps = 11;
  cfg.seed = 5;
  ck_assert_int_eq(nsde_solver_new(p.sde, &cfg, 2, shlo, &slo), NSDE_OK);
  cfg.batch_offset = 15;
  ck_assert_int_eq(nsde_solver_new(p.sde, &cfg, 2, shhi, &shi), NSDE_OK);
  ck_assert_int_eq(nsde_solve(slo, lo, NULL), NSDE_OK);
  ck_assert_int_eq(nsde_solve(shi, hi, NULL), NSDE_OK);
  ck_assert(!memcmp(nsde_tensor_data(lo), nsde_tensor_data(a), (size_t)(15 * D) * 4));
  ck_assert(
      !memcmp(nsde_tensor_data(hi), (float *)nsde_tensor_data(a) + 15 * D, (size_t)(25 * D) * 4));

  TRY(nsde_tensor_fill(b, 1.0));
  ck_assert_int_eq(nsde_solver_reset(s), NSDE_OK);
  ck_assert_double_eq(nsde_solver_time(s), 0.0);
  while (nsde_solver_step_index(s) < nsde_solver_num_steps(s))
    ck_assert_int_eq(nsde_solver_step(s, b), NSDE_OK);
  ck_assert_double_eq_tol(nsde_solver_time(s), 1.0, 1e-15);
  ck_assert_int_eq(nsde_solver_step(s, b), NSDE_ERR_STATE);
  ck_assert(!memcmp(nsde_tensor_data(a), nsde_tensor_data(b), (size_t)(B * D) * 4));

  nsde_solver_free(s);
  nsde_solver_free(slo);
  nsde_solver_free(shi);
  nsde_tensor_free(a);
  nsde_tensor_free(b);
  nsde_tensor_free(lo);
  nsde_tensor_free(hi);
  problem_free(&p);
}
END_TEST

/* float32 and float64 see the same Brownian path and agree to float rounding. */
START_TEST(float32_matches_float64)
{
  struct problem p32 = gbm(NSDE_DTYPE_FLOAT32, 0.5, 0.8, NSDE_CALCULUS_STRATONOVICH);
  struct problem p64 = gbm(NSDE_DTYPE_FLOAT64, 0.5, 0.8, NSDE_CALCULUS_STRATONOVICH);
  struct nsde_solver *s32 = solver(p32.sde, NSDE_SCHEME_HEUN, 50, 11, 100, 3);
  struct nsde_solver *s64 = solver(p64.sde, NSDE_SCHEME_HEUN, 50, 11, 100, 3);
  struct nsde_tensor *x32 = state(NSDE_DTYPE_FLOAT32, 100, 3, 1.0),
                     *x64 = state(NSDE_DTYPE_FLOAT64, 100, 3, 1.0);
  ck_assert_int_eq(nsde_solve(s32, x32, NULL), NSDE_OK);
  ck_assert_int_eq(nsde_solve(s64, x64, NULL), NSDE_OK);
  for (int i = 0; i < 300; i++) {
    double a = ((float *)nsde_tensor_data(x32))[i], b = ((double *)nsde_tensor_data(x64))[i];
    ck_assert_msg(fabs(a - b) <= 2e-5 * fabs(b), "%d: %g vs %g", i, a, b);
  }
  nsde_solver_free(s32);
  nsde_solver_free(s64);
  nsde_tensor_free(x32);
  nsde_tensor_free(x64);
  problem_free(&p32);
  problem_free(&p64);
}
END_TEST

/* Grids: the paper's N = int(T/h) + 1, ceil for NSDE_GRID_DT, save-at times. */
START_TEST(grids_and_save_at)
{
  struct problem p = gbm(NSDE_DTYPE_FLOAT64, 0.2, 0.3, NSDE_CALCULUS_ITO);
  struct nsde_solver_config cfg;
  struct nsde_solver *s;
  int64_t shape[2] = {8, 2};
  const double times[5] = {0.0, 0.25, 0.33, 0.5, 1.0};
  struct nsde_tensor *x = state(NSDE_DTYPE_FLOAT64, 8, 2, 1.0),
                     *y = state(NSDE_DTYPE_FLOAT64, 8, 2, 1.0);
  struct nsde_tensor *saved;
  int64_t sshape[2] = {5, 16};

  nsde_solver_config_init(&cfg);
  cfg.grid = NSDE_GRID_PAPER;
  cfg.dt = 0.1;
  ck_assert_int_eq(nsde_solver_new(p.sde, &cfg, 2, shape, &s), NSDE_OK);
  ck_assert_int_eq(nsde_solver_num_steps(s), 11);
  nsde_solver_free(s);
  cfg.grid = NSDE_GRID_DT;
  ck_assert_int_eq(nsde_solver_new(p.sde, &cfg, 2, shape, &s), NSDE_OK);
  ck_assert_int_eq(nsde_solver_num_steps(s), 10);
  nsde_solver_free(s);
  cfg.dt = 0.3;
  ck_assert_int_eq(nsde_solver_new(p.sde, &cfg, 2, shape, &s), NSDE_OK);
  ck_assert_int_eq(nsde_solver_num_steps(s), 4);
  nsde_solver_free(s);

  nsde_solver_config_init(&cfg);
  cfg.n_steps = 4;
  cfg.seed = 3;
  cfg.save_at = times;
  cfg.n_save = 5;
  ck_assert_int_eq(nsde_solver_new(p.sde, &cfg, 2, shape, &s), NSDE_OK);
  ck_assert_int_eq(nsde_solver_num_steps(s), 5); /* 0.33 splits a step */
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, sshape, &saved), NSDE_OK);
  ck_assert_int_eq(nsde_solve(s, x, saved), NSDE_OK);
  {
    const double *sv = nsde_tensor_data(saved);
    struct nsde_solver *plain = solver(p.sde, NSDE_SCHEME_EULER_MARUYAMA, 4, 3, 8, 2);
    for (int i = 0; i < 16; i++)
      ck_assert_double_eq(sv[i], 1.0);                     /* t = 0 */
    ck_assert_int_eq(nsde_solver_step(plain, y), NSDE_OK); /* t = 0.25 */
    ck_assert(!memcmp(sv + 16, nsde_tensor_data(y), 16 * 8));
    ck_assert(!memcmp(sv + 64, nsde_tensor_data(x), 16 * 8)); /* t = 1 is the final state */
    for (int i = 0; i < 16; i++) /* the split step stays on the same path */
      ck_assert(sv[32 + i] != sv[16 + i] && sv[48 + i] != sv[32 + i]);
    nsde_solver_free(plain);
  }
  nsde_solver_free(s);
  {
    const double bad1[2] = {0.5, 0.4}, bad2[1] = {1.5};
    cfg.save_at = bad1;
    cfg.n_save = 2;
    ck_assert_int_eq(nsde_solver_new(p.sde, &cfg, 2, shape, &s), NSDE_ERR_INVALID);
    cfg.save_at = bad2;
    cfg.n_save = 1;
    ck_assert_int_eq(nsde_solver_new(p.sde, &cfg, 2, shape, &s), NSDE_ERR_INVALID);
    cfg.save_at = NULL;
    ck_assert_int_eq(nsde_solver_new(p.sde, &cfg, 2, shape, &s), NSDE_ERR_INVALID);
    cfg.n_save = 0;
    cfg.batch_offset = -1; /* named as what it is, not as a size limit */
    ck_assert_int_eq(nsde_solver_new(p.sde, &cfg, 2, shape, &s), NSDE_ERR_INVALID);
    ck_assert_msg(strstr(nsde_context_last_error(ctx), "batch_offset -1 is negative") != NULL, "%s",
                  nsde_context_last_error(ctx));
    cfg.batch_offset = 0;
    ck_assert_int_eq(nsde_solver_new(p.sde, &cfg, 0, shape, &s), NSDE_ERR_SHAPE);
    ck_assert_msg(strstr(nsde_context_last_error(ctx), "nsde_solver_new: rank 0") != NULL, "%s",
                  nsde_context_last_error(ctx));
  }
  nsde_tensor_free(saved);
  nsde_tensor_free(x);
  nsde_tensor_free(y);
  problem_free(&p);
}
END_TEST

/* Scalar noise: one Brownian motion per batch element, shared by its elements. */
START_TEST(scalar_noise)
{
  struct nsde_func *f, *g;
  struct nsde_sde *sde;
  struct nsde_solver *s;
  struct nsde_tensor *x = state(NSDE_DTYPE_FLOAT64, 3, 4, 0.0);
  const double *xd = nsde_tensor_data(x);
  ck_assert_int_eq(nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT64, 0.0, 0.0, &f), NSDE_OK);
  ck_assert_int_eq(nsde_func_new_additive(ctx, NSDE_DTYPE_FLOAT64, 1.0, &g), NSDE_OK);
  ck_assert_int_eq(nsde_sde_new(ctx, f, g, NSDE_NOISE_SCALAR, NSDE_CALCULUS_ITO, &sde), NSDE_OK);
  s = solver(sde, NSDE_SCHEME_EULER_MARUYAMA, 7, 1, 3, 4);
  ck_assert_int_eq(nsde_solve(s, x, NULL), NSDE_OK);
  for (int b = 0; b < 3; b++)
    for (int e = 1; e < 4; e++)
      ck_assert_double_eq_tol(xd[b * 4 + e], xd[b * 4], 1e-15);
  ck_assert(xd[0] != xd[4] && xd[4] != xd[8]);
  nsde_solver_free(s);
  /* Milstein needs diagonal noise */
  {
    struct nsde_solver_config cfg;
    int64_t shape[2] = {3, 4};
    nsde_solver_config_init(&cfg);
    cfg.scheme = NSDE_SCHEME_MILSTEIN;
    ck_assert_int_eq(nsde_solver_new(sde, &cfg, 2, shape, &s), NSDE_ERR_UNSUPPORTED);
  }
  nsde_tensor_free(x);
  nsde_sde_free(sde);
  nsde_func_free(g);
  nsde_func_free(f);
}
END_TEST

/* Dropout noise G = sigma f(x) with f = a x is multiplicative noise sigma*a. */
START_TEST(dropout_matches_multiplicative)
{
  struct nsde_func *f, *gd, *gm;
  struct nsde_sde *sd, *sm;
  struct nsde_tensor *xd = state(NSDE_DTYPE_FLOAT64, 10, 10, 1.0),
                     *xm = state(NSDE_DTYPE_FLOAT64, 10, 10, 1.0);
  for (int sch = 0; sch < 2; sch++) {
    struct nsde_solver *a, *b;
    ck_assert_int_eq(nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT64, 0.7, 0.0, &f), NSDE_OK);
    ck_assert_int_eq(nsde_func_new_dropout(ctx, NSDE_DTYPE_FLOAT64, 0.5, &gd), NSDE_OK);
    ck_assert_int_eq(nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT64, 0.35, &gm), NSDE_OK);
    ck_assert_int_eq(nsde_sde_new(ctx, f, gd, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_ITO, &sd),
                     NSDE_OK);
    ck_assert_int_eq(nsde_sde_new(ctx, f, gm, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_ITO, &sm),
                     NSDE_OK);
    a = solver(sd, sch ? NSDE_SCHEME_MILSTEIN : NSDE_SCHEME_EULER_MARUYAMA, 20, 8, 10, 10);
    b = solver(sm, sch ? NSDE_SCHEME_MILSTEIN : NSDE_SCHEME_EULER_MARUYAMA, 20, 8, 10, 10);
    TRY(nsde_tensor_fill(xd, 1.0));
    TRY(nsde_tensor_fill(xm, 1.0));
    ck_assert_int_eq(nsde_solve(a, xd, NULL), NSDE_OK);
    ck_assert_int_eq(nsde_solve(b, xm, NULL), NSDE_OK);
    for (int i = 0; i < 100; i++)
      ck_assert_double_eq_tol(((double *)nsde_tensor_data(xd))[i],
                              ((double *)nsde_tensor_data(xm))[i], 1e-12);
    nsde_solver_free(a);
    nsde_solver_free(b);
    nsde_sde_free(sd);
    nsde_sde_free(sm);
    nsde_func_free(f);
    nsde_func_free(gd);
    nsde_func_free(gm);
  }
  nsde_tensor_free(xd);
  nsde_tensor_free(xm);
}
END_TEST

/* ---- errors ------------------------------------------------------------- */

struct fail_at {
  double t_fail;
  int calls;
};

static int failing_drift(void *user, double t, int64_t batch, int64_t dim, const void *x, void *out)
{
  struct fail_at *fa = user;
  fa->calls++;
  if (t >= fa->t_fail)
    return -7;
  for (int64_t i = 0; i < batch * dim; i++)
    ((double *)out)[i] = 0.5 * ((const double *)x)[i];
  return 0;
}

static int exploding_drift(void *user, double t, int64_t batch, int64_t dim, const void *x,
                           void *out)
{
  (void)user;
  (void)t;
  for (int64_t i = 0; i < batch * dim; i++)
    ((double *)out)[i] = 1e200 * ((const double *)x)[i] * ((const double *)x)[i];
  return 0;
}

START_TEST(callback_error_keeps_state)
{
  struct fail_at fa = {0.45, 0};
  struct nsde_func_ops ops = {sizeof(ops), failing_drift, NULL, NULL, NULL};
  struct nsde_func *f, *g;
  struct nsde_sde *sde;
  struct nsde_solver *s, *ref;
  struct nsde_tensor *x = state(NSDE_DTYPE_FLOAT64, 4, 3, 1.0),
                     *y = state(NSDE_DTYPE_FLOAT64, 4, 3, 1.0);
  struct fail_at never = {1e9, 0};
  struct nsde_func *fref;

  ck_assert_int_eq(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &ops, &fa, 0, NULL, &f), NSDE_OK);
  ck_assert_int_eq(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &ops, &never, 0, NULL, &fref), NSDE_OK);
  ck_assert_int_eq(nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT64, 0.3, &g), NSDE_OK);
  ck_assert_int_eq(nsde_sde_new(ctx, f, g, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_ITO, &sde), NSDE_OK);
  s = solver(sde, NSDE_SCHEME_EULER_MARUYAMA, 10, 4, 4, 3);
  ck_assert_int_eq(nsde_solve(s, x, NULL), NSDE_ERR_CALLBACK);
  ck_assert_msg(strstr(nsde_context_last_error(ctx), "step 5") != NULL, "%s",
                nsde_context_last_error(ctx));
  ck_assert_ptr_nonnull(strstr(nsde_context_last_error(ctx), "t = 0.5"));
  ck_assert_ptr_nonnull(strstr(nsde_context_last_error(ctx), "drift"));
  ck_assert_int_eq(nsde_solver_step_index(s), 5);
  {
    /* the state is the one after 5 good steps */
    struct nsde_sde *sref;
    ck_assert_int_eq(nsde_sde_new(ctx, fref, g, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_ITO, &sref),
                     NSDE_OK);
    ref = solver(sref, NSDE_SCHEME_EULER_MARUYAMA, 10, 4, 4, 3);
    for (int k = 0; k < 5; k++)
      ck_assert_int_eq(nsde_solver_step(ref, y), NSDE_OK);
    ck_assert(!memcmp(nsde_tensor_data(x), nsde_tensor_data(y), 12 * 8));
    /* a failing step-wise call leaves state and time alone */
    fa.t_fail = 0.15;
    ck_assert_int_eq(nsde_solver_reset(s), NSDE_OK);
    TRY(nsde_tensor_fill(x, 2.0));
    ck_assert_int_eq(nsde_solver_step(s, x), NSDE_OK);
    ck_assert_int_eq(nsde_solver_step(s, x), NSDE_OK);
    TRY(nsde_tensor_copy(y, x));
    ck_assert_int_eq(nsde_solver_step(s, x), NSDE_ERR_CALLBACK);
    ck_assert_int_eq(nsde_solver_step_index(s), 2);
    ck_assert(!memcmp(nsde_tensor_data(x), nsde_tensor_data(y), 12 * 8));
    nsde_solver_free(ref);
    nsde_sde_free(sref);
  }
  nsde_solver_free(s);
  nsde_sde_free(sde);
  nsde_func_free(f);
  nsde_func_free(fref);

  {
    struct nsde_func_ops eops = {sizeof(eops), exploding_drift, NULL, NULL, NULL};
    ck_assert_int_eq(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &eops, NULL, 0, NULL, &f), NSDE_OK);
    ck_assert_int_eq(nsde_sde_new(ctx, f, NULL, NSDE_NOISE_NONE, NSDE_CALCULUS_ITO, &sde), NSDE_OK);
    s = solver(sde, NSDE_SCHEME_EULER_MARUYAMA, 10, 4, 4, 3);
    TRY(nsde_tensor_fill(x, 1.0));
    ck_assert_int_eq(nsde_solve(s, x, NULL), NSDE_ERR_NONFINITE);
    ck_assert_ptr_nonnull(strstr(nsde_context_last_error(ctx), "step 1"));
    for (int i = 0; i < 12; i++) /* 1 + 1e200 * 0.1: the last finite state */
      ck_assert_double_eq_tol(((double *)nsde_tensor_data(x))[i], 1e199, 1e186);
    /* a NaN in the initial state is the caller's input, named as such, before any step */
    TRY(nsde_tensor_fill(x, 1.0));
    ((double *)nsde_tensor_data(x))[5] = NAN;
    ck_assert_int_eq(nsde_solve(s, x, NULL), NSDE_ERR_NONFINITE);
    ck_assert_msg(strstr(nsde_context_last_error(ctx),
                         "nsde_solve: 1 non-finite values in the initial state") &&
                      !strstr(nsde_context_last_error(ctx), "step"),
                  "%s", nsde_context_last_error(ctx));
    ck_assert_int_eq(nsde_solver_step_index(s), 0);
    nsde_solver_free(s);
    nsde_sde_free(sde);
    nsde_func_free(f);
  }
  nsde_func_free(g);
  nsde_tensor_free(x);
  nsde_tensor_free(y);
}
END_TEST

static int user_g(void *user, double t, int64_t batch, int64_t dim, const void *x, void *out)
{
  (void)user;
  (void)t;
  for (int64_t i = 0; i < batch * dim; i++)
    ((double *)out)[i] = 0.1 * ((const double *)x)[i];
  return 0;
}

/* The enum values are part of the 1.0 ABI (a program built against 1.0
 * passes these numbers): they never change. */
START_TEST(enum_values_frozen)
{
  ck_assert_int_eq(NSDE_CALCULUS_ITO, 0);
  ck_assert_int_eq(NSDE_CALCULUS_STRATONOVICH, 1);
  ck_assert_int_eq(NSDE_MODEL_NOISE_ODE, 0);
  ck_assert_int_eq(NSDE_MODEL_NOISE_ADDITIVE, 1);
  ck_assert_int_eq(NSDE_MODEL_NOISE_MULTIPLICATIVE, 2);
  ck_assert_int_eq(NSDE_MODEL_NOISE_DROPOUT, 3);
  ck_assert_int_eq(NSDE_DTYPE_FLOAT32, 1);
  ck_assert_int_eq(NSDE_DTYPE_FLOAT64, 2);
  ck_assert_int_eq(NSDE_TRANS_NONE, 0);
  ck_assert_int_eq(NSDE_TRANS_TRANSPOSE, 1);
  ck_assert_int_eq(NSDE_MODEL_ARCH_CIFAR, 0);
  ck_assert_int_eq(NSDE_MODEL_ARCH_LARGE, 1);
  ck_assert_int_eq(NSDE_MODEL_LOSS_CROSS_ENTROPY, 0);
  ck_assert_int_eq(NSDE_MODEL_LOSS_CW_MARGIN, 1);
  ck_assert_int_eq(NSDE_NOISE_GENERAL, 4);
  ck_assert_int_eq(NSDE_GRAD_ADJOINT, 4);
}
END_TEST

/* One mistake in a solver config each (on an Ito SDE with diagonal noise):
 * the status nsde_solver_new returns and a fragment of its message. */
#define BAD_CONFIGS(X)                                                                             \
  X(t1_is_t0, c->t1 = c->t0, NSDE_ERR_INVALID, "need finite t0 < t1")                              \
  X(t1_below_t0, c->t1 = -1.0, NSDE_ERR_INVALID, "need finite t0 < t1")                            \
  X(t1_infinite, c->t1 = INFINITY, NSDE_ERR_INVALID, "need finite t0 < t1")                        \
  X(dt_zero, (c->grid = NSDE_GRID_DT, c->dt = 0.0), NSDE_ERR_INVALID, "dt must be finite and > 0") \
  X(dt_negative, (c->grid = NSDE_GRID_DT, c->dt = -0.1), NSDE_ERR_INVALID, "dt must be")           \
  X(dt_nan, (c->grid = NSDE_GRID_DT, c->dt = NAN), NSDE_ERR_INVALID, "dt must be")                 \
  X(dt_tiny, (c->grid = NSDE_GRID_DT, c->dt = 1e-300), NSDE_ERR_INVALID, "steps is too many")      \
  X(no_steps, c->n_steps = 0, NSDE_ERR_INVALID, "n_steps 0 outside")                               \
  X(unknown_grid, c->grid = (enum nsde_grid)9, NSDE_ERR_INVALID, "unknown grid rule 9")            \
  X(unknown_scheme, c->scheme = (enum nsde_scheme)42, NSDE_ERR_INVALID, "unknown scheme 42")       \
  X(negative_scheme, c->scheme = (enum nsde_scheme) - 1, NSDE_ERR_INVALID, "unknown scheme -1")    \
  X(size_too_small, c->size = 16, NSDE_ERR_INVALID, "solver config")                               \
  X(size_garbage, c->size = (size_t)1 << 40, NSDE_ERR_INVALID, "solver config")                    \
  X(brownian_steps, c->brownian_steps = -3, NSDE_ERR_INVALID, "brownian_steps -3")                 \
  X(heun_on_ito, c->scheme = NSDE_SCHEME_HEUN, NSDE_ERR_UNSUPPORTED,                               \
    "Heun solves Stratonovich SDEs; this SDE is Ito (use Euler-Maruyama or Milstein)")             \
  X(reversible_on_ito, c->scheme = NSDE_SCHEME_REVERSIBLE_HEUN, NSDE_ERR_UNSUPPORTED,              \
    "reversible Heun solves Stratonovich SDEs")                                                    \
  X(sra1_multiplicative, c->scheme = NSDE_SCHEME_SRA1, NSDE_ERR_UNSUPPORTED,                       \
    "SRA1 needs additive noise")                                                                   \
  X(reversible_grad_em, c->grad = NSDE_GRAD_REVERSIBLE, NSDE_ERR_UNSUPPORTED,                      \
    "NSDE_GRAD_REVERSIBLE needs a reversible scheme (reversible Heun), not Euler-Maruyama")        \
  X(unknown_grad, c->grad = (enum nsde_grad_strategy)9, NSDE_ERR_INVALID,                          \
    "unknown gradient strategy 9")                                                                 \
  X(negative_checkpoint, (c->grad = NSDE_GRAD_CHECKPOINT, c->checkpoint_every = -1),               \
    NSDE_ERR_INVALID, "checkpoint_every must be >= 0")                                             \
  X(negative_offset, c->batch_offset = -1, NSDE_ERR_INVALID, "batch_offset -1 is negative")

#define BAD_SETTER(name, stmt, st, says)                                                           \
  static void bad_##name(struct nsde_solver_config *c)                                             \
  {                                                                                                \
    stmt;                                                                                          \
  }
BAD_CONFIGS(BAD_SETTER)
#undef BAD_SETTER

static const struct {
  const char *name;
  void (*set)(struct nsde_solver_config *c);
  enum nsde_status want;
  const char *says;
} bad_configs[] = {
#define BAD_ROW(name, stmt, st, says) {#name, bad_##name, st, says},
    BAD_CONFIGS(BAD_ROW)
#undef BAD_ROW
};

START_TEST(invalid_options)
{
  struct problem ito = gbm(NSDE_DTYPE_FLOAT64, 0.1, 0.2, NSDE_CALCULUS_ITO);
  struct problem strat = gbm(NSDE_DTYPE_FLOAT64, 0.1, 0.2, NSDE_CALCULUS_STRATONOVICH);
  struct nsde_solver_config cfg;
  struct nsde_solver *s = (struct nsde_solver *)0x1;
  int64_t shape[2] = {2, 2}, bad_shape[2] = {2, 0};
  struct nsde_func_ops gops = {sizeof(gops), user_g, NULL, NULL, NULL};
  struct nsde_func *ug, *dg, *uf;
  struct nsde_sde *sde;
  size_t bytes = 0;

#define EXPECT(st_)                                                                                \
  ck_assert_msg(nsde_solver_new(ito.sde, &cfg, 2, shape, &s) == (st_), "%s",                       \
                nsde_context_last_error(ctx))
  /* the table of one-field mistakes: each refused with its status and a
   * message that names the problem */
  for (int64_t k = 0; k < NELEM(bad_configs); k++) {
    s = (struct nsde_solver *)0x1;
    nsde_solver_config_init(&cfg);
    bad_configs[k].set(&cfg);
    ck_assert_msg(nsde_solver_new(ito.sde, &cfg, 2, shape, &s) == bad_configs[k].want,
                  "%s: got '%s'", bad_configs[k].name, nsde_context_last_error(ctx));
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(nsde_context_last_error(ctx), bad_configs[k].says) != NULL,
                  "%s: the message '%s' lacks '%s'", bad_configs[k].name,
                  nsde_context_last_error(ctx), bad_configs[k].says);
  }
  nsde_solver_config_init(&cfg);
  {
    /* a program built against a newer header: a longer struct is taken
     * while the members this library does not know stay zero (default),
     * refused when one is set */
    struct {
      struct nsde_solver_config c;
      double newer_member;
    } big;
    memset(&big, 0, sizeof(big));
    nsde_solver_config_init(&big.c);
    big.c.size = sizeof(big);
    ck_assert_msg(nsde_solver_new(ito.sde, &big.c, 2, shape, &s) == NSDE_OK, "%s",
                  nsde_context_last_error(ctx));
    nsde_solver_free(s);
    big.newer_member = 1.0;
    ck_assert_int_eq(nsde_solver_new(ito.sde, &big.c, 2, shape, &s), NSDE_ERR_UNSUPPORTED);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(nsde_context_last_error(ctx), "newer"));
  }
  nsde_solver_config_init(&cfg); /* EM on a Stratonovich SDE */
  ck_assert_int_eq(nsde_solver_new(strat.sde, &cfg, 2, shape, &s), NSDE_ERR_UNSUPPORTED);
  ck_assert_int_eq(nsde_solver_new(ito.sde, &cfg, 2, bad_shape, &s), NSDE_ERR_SHAPE);
  ck_assert_int_eq(nsde_solver_new(ito.sde, &cfg, 7, shape, &s), NSDE_ERR_SHAPE);
  ck_assert_int_eq(nsde_solver_new(NULL, &cfg, 2, shape, &s), NSDE_ERR_NULL);
  ck_assert_int_eq(nsde_solver_new(ito.sde, NULL, 2, shape, &s), NSDE_ERR_NULL);
  ck_assert_int_eq(nsde_solver_new(ito.sde, &cfg, 2, shape, NULL), NSDE_ERR_NULL);
  ck_assert_int_eq(nsde_solver_workspace_bytes(ito.sde, &cfg, 2, shape, &bytes), NSDE_OK);
  ck_assert_int_gt((long)bytes, 4 * 4 * 8);
  cfg.n_steps = 0;
  ck_assert_int_eq(nsde_solver_workspace_bytes(ito.sde, &cfg, 2, shape, &bytes), NSDE_ERR_INVALID);
  nsde_solver_config_init(&cfg);

  /* Milstein without dG/dx */
  ck_assert_int_eq(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &gops, NULL, 0, NULL, &ug), NSDE_OK);
  ck_assert_int_eq(nsde_sde_new(ctx, ito.f, ug, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_ITO, &sde),
                   NSDE_OK);
  cfg.scheme = NSDE_SCHEME_MILSTEIN;
  ck_assert_int_eq(nsde_solver_new(sde, &cfg, 2, shape, &s), NSDE_ERR_MISSING_OP);
  ck_assert_ptr_nonnull(strstr(nsde_context_last_error(ctx), "diag_deriv"));
  nsde_sde_free(sde);
  /* Milstein with dropout noise and a user drift without diag_deriv */
  gops.eval = user_g;
  ck_assert_int_eq(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &gops, NULL, 0, NULL, &uf), NSDE_OK);
  ck_assert_int_eq(nsde_func_new_dropout(ctx, NSDE_DTYPE_FLOAT64, 0.5, &dg), NSDE_OK);
  ck_assert_int_eq(nsde_sde_new(ctx, uf, dg, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_ITO, &sde),
                   NSDE_OK);
  ck_assert_int_eq(nsde_solver_new(sde, &cfg, 2, shape, &s), NSDE_ERR_MISSING_OP);
  nsde_sde_free(sde);

  /* SDE construction */
  ck_assert_int_eq(nsde_sde_new(ctx, ito.f, NULL, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_ITO, &sde),
                   NSDE_ERR_INVALID);
  ck_assert_int_eq(nsde_sde_new(ctx, ito.f, ito.g, NSDE_NOISE_NONE, NSDE_CALCULUS_ITO, &sde),
                   NSDE_ERR_INVALID);
  ck_assert_int_eq(nsde_sde_new(ctx, ito.f, ito.g, NSDE_NOISE_ADDITIVE, NSDE_CALCULUS_ITO, &sde),
                   NSDE_ERR_INVALID);
  ck_assert_int_eq(nsde_sde_new(ctx, dg, ito.g, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_ITO, &sde),
                   NSDE_ERR_INVALID);
  ck_assert_int_eq(nsde_sde_new(ctx, NULL, ito.g, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_ITO, &sde),
                   NSDE_ERR_NULL);
  ck_assert_int_eq(nsde_sde_new(ctx, ito.f, ito.g, (enum nsde_noise)8, NSDE_CALCULUS_ITO, &sde),
                   NSDE_ERR_INVALID);
  ck_assert_int_eq(
      nsde_sde_new(ctx, ito.f, ito.g, NSDE_NOISE_DIAGONAL, (enum nsde_calculus)3, &sde),
      NSDE_ERR_INVALID);
  {
    struct nsde_func *g32;
    ck_assert_int_eq(nsde_func_new_additive(ctx, NSDE_DTYPE_FLOAT32, 0.5, &g32), NSDE_OK);
    ck_assert_int_eq(nsde_sde_new(ctx, ito.f, g32, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_ITO, &sde),
                     NSDE_ERR_DTYPE);
    nsde_func_free(g32);
  }

  /* function objects */
  {
    struct nsde_func *f;
    struct nsde_func_ops none = {sizeof(none), NULL, NULL, NULL, NULL};
    struct nsde_func_ops small = {4, user_g, NULL, NULL, NULL};
    double params[2];
    ck_assert_int_eq(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, NULL, NULL, 0, NULL, &f),
                     NSDE_ERR_NULL);
    ck_assert_int_eq(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &none, NULL, 0, NULL, &f),
                     NSDE_ERR_MISSING_OP);
    ck_assert_int_eq(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &small, NULL, 0, NULL, &f),
                     NSDE_ERR_INVALID);
    ck_assert_int_eq(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &gops, NULL, 2, NULL, &f),
                     NSDE_ERR_INVALID);
    ck_assert_int_eq(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &gops, NULL, 0, params, &f),
                     NSDE_ERR_INVALID);
    ck_assert_int_eq(nsde_func_new(ctx, (enum nsde_dtype)0, &gops, NULL, 0, NULL, &f),
                     NSDE_ERR_DTYPE);
    ck_assert_int_eq(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &gops, NULL, 2, params, &f), NSDE_OK);
    ck_assert_int_eq(nsde_func_num_params(f), 2);
    ck_assert_ptr_eq(nsde_func_params(f), params);
    nsde_func_free(f);
    ck_assert_int_eq(nsde_func_new_additive(ctx, NSDE_DTYPE_FLOAT64, NAN, &f), NSDE_ERR_NONFINITE);
    ck_assert_int_eq(nsde_func_num_params(NULL), -1);
    ck_assert_ptr_null(nsde_func_params(NULL));
    ck_assert_int_eq(nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT64, 2.0, 3.0, &f), NSDE_OK);
    ck_assert_int_eq(nsde_func_num_params(f), 2);
    ck_assert_double_eq(((double *)nsde_func_params(f))[1], 3.0);
    nsde_func_free(f);
    nsde_func_free(NULL);
    nsde_sde_free(NULL);
    nsde_solver_free(NULL);
  }

  /* solve-time mismatches */
  {
    struct nsde_solver *ok;
    struct nsde_tensor *x32 = state(NSDE_DTYPE_FLOAT32, 2, 2, 1.0),
                       *x3 = state(NSDE_DTYPE_FLOAT64, 3, 2, 1.0);
    struct nsde_tensor *x = state(NSDE_DTYPE_FLOAT64, 2, 2, 1.0),
                       *saved = state(NSDE_DTYPE_FLOAT64, 3, 2, 0.0);
    nsde_solver_config_init(&cfg);
    ck_assert_int_eq(nsde_solver_new(ito.sde, &cfg, 2, shape, &ok), NSDE_OK);
    ck_assert_int_eq(nsde_solve(ok, x32, NULL), NSDE_ERR_DTYPE);
    ck_assert_int_eq(nsde_solve(ok, x3, NULL), NSDE_ERR_SHAPE);
    ck_assert_int_eq(nsde_solve(ok, NULL, NULL), NSDE_ERR_NULL);
    ck_assert_int_eq(nsde_solve(NULL, x, NULL), NSDE_ERR_NULL);
    ck_assert_int_eq(nsde_solve(ok, x, saved), NSDE_ERR_SHAPE); /* n_save is 0 */
    ck_assert_int_eq(nsde_solver_step(ok, x3), NSDE_ERR_SHAPE);
    ck_assert_int_eq(nsde_solver_reconstruct(ok, x), NSDE_ERR_UNSUPPORTED);
    ck_assert(isnan(nsde_solver_time(NULL)));
    ck_assert_int_eq(nsde_solver_step_index(NULL), -1);
    ck_assert_int_eq(nsde_solver_num_steps(NULL), -1);
    ck_assert_ptr_null(nsde_solver_brownian(NULL));
    ck_assert_int_eq(nsde_solver_reset(NULL), NSDE_ERR_NULL);
    ck_assert_int_eq(nsde_solver_step(NULL, x), NSDE_ERR_NULL);
    ck_assert_int_eq(nsde_solver_reconstruct(NULL, x), NSDE_ERR_NULL);
    nsde_solver_free(ok);
    nsde_tensor_free(x32);
    nsde_tensor_free(x3);
    nsde_tensor_free(x);
    nsde_tensor_free(saved);
  }
#undef EXPECT
  nsde_func_free(ug);
  nsde_func_free(uf);
  nsde_func_free(dg);
  problem_free(&ito);
  problem_free(&strat);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("solver");
  TCase *order = tcase_create("order");
  TCase *tc = tcase_create("solver");
  tcase_add_checked_fixture(order, setup, teardown);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(order, 600);
  tcase_set_timeout(tc, 300);
  tcase_add_loop_test(order, strong_order, 0, (int)(sizeof(order_cases) / sizeof(order_cases[0])));
  tcase_add_test(order, weak_order_em);
  tcase_add_test(tc, reversible_reconstruction);
  tcase_add_test(tc, reproducible);
  tcase_add_test(tc, float32_matches_float64);
  tcase_add_test(tc, grids_and_save_at);
  tcase_add_test(tc, scalar_noise);
  tcase_add_test(tc, dropout_matches_multiplicative);
  tcase_add_test(tc, callback_error_keeps_state);
  tcase_add_test(tc, invalid_options);
  tcase_add_test(tc, enum_values_frozen);
  suite_add_tcase(s, order);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
