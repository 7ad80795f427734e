/* Adaptive step sizes: convergence to the pathwise solution on the same
 * Brownian path, step counts that follow the problem, failures with clear
 * statuses, save-at targets, and exact gradients through accepted steps.
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

/* dx = mu x dt + sigma x dW (diagonal), Ito or Stratonovich. */
static struct problem gbm(double mu, double sigma, enum nsde_calculus calc)
{
  struct problem p;
  TRY(nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT64, mu, 0.0, &p.f));
  TRY(nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT64, sigma, &p.g));
  TRY(nsde_sde_new(ctx, p.f, p.g, NSDE_NOISE_DIAGONAL, calc, &p.sde));
  return p;
}

/* dx = -k x dt + sigma dW (additive): a fast transient, then noise. */
static struct problem ou(double k, double sigma)
{
  struct problem p;
  TRY(nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT64, -k, 0.0, &p.f));
  TRY(nsde_func_new_additive(ctx, NSDE_DTYPE_FLOAT64, sigma, &p.g));
  TRY(nsde_sde_new(ctx, p.f, p.g, NSDE_NOISE_ADDITIVE, NSDE_CALCULUS_ITO, &p.sde));
  return p;
}

static struct nsde_tensor *state(int64_t batch, int64_t dim, double v)
{
  return test_state64(ctx, batch, dim, v);
}

static double *D(struct nsde_tensor *t)
{
  return nsde_tensor_data(t);
}

static void adaptive_config(struct nsde_solver_config *c, enum nsde_scheme scheme, double rtol)
{
  nsde_solver_config_init(c);
  c->scheme = scheme;
  c->adaptive = 1;
  c->rtol = rtol;
  c->atol = rtol * 1e-2;
  c->n_steps = 4; /* the Brownian base grid; the tree refines it */
}

/* Per-path adaptive solves (batch 1, path i by batch_offset) of GBM against
 * its exact solution on the same path, at falling tolerances: the mean error
 * falls with the mean step at the scheme's strong order. */
static const struct {
  const char *name;
  enum nsde_scheme scheme;
  enum nsde_calculus calc;
  double order;
} gbm_cases[] = {
    {"heun", NSDE_SCHEME_HEUN, NSDE_CALCULUS_STRATONOVICH, 1.0},
    {"milstein", NSDE_SCHEME_MILSTEIN, NSDE_CALCULUS_ITO, 1.0},
};

START_TEST(gbm_converges_on_the_path)
{
  const double mu = 0.5, sigma = 0.8, rtols[] = {1e-1, 3e-2, 1e-2, 3e-3, 1e-3};
  const int K = 5, M = 200;
  const uint64_t seed = test_seed();
  struct problem p = gbm(mu, sigma, gbm_cases[_i].calc);
  struct nsde_tensor *x = state(1, 1, 1.0);
  double err[5], h[5], slope;

  for (int k = 0; k < K; k++) {
    double e = 0.0, steps = 0.0, rejected = 0.0;
    for (int64_t i = 0; i < M; i++) {
      struct nsde_solver_config c;
      struct nsde_solver *s;
      struct nsde_solver_stats st = {.size = sizeof(st)};
      int64_t shape[2] = {1, 1}, one = 1;
      struct nsde_tensor *w;
      double exact, drift = gbm_cases[_i].calc == NSDE_CALCULUS_ITO ? mu - 0.5 * sigma * sigma : mu;
      adaptive_config(&c, gbm_cases[_i].scheme, rtols[k]);
      c.seed = seed;
      c.batch_offset = i;
      ck_assert_msg(nsde_solver_new(p.sde, &c, 2, shape, &s) == NSDE_OK, "%s",
                    nsde_context_last_error(ctx));
      TRY(nsde_tensor_fill(x, 1.0));
      ck_assert_msg(nsde_solve(s, x, NULL) == NSDE_OK, "%s", nsde_context_last_error(ctx));
      TRY(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 1, &one, &w));
      TRY(nsde_brownian_increment(nsde_solver_brownian(s), 0.0, 1.0, w, NULL));
      exact = exp(drift + sigma * D(w)[0]);
      e += fabs(D(x)[0] - exact);
      TRY(nsde_solver_get_stats(s, &st));
      steps += (double)st.steps;
      rejected += (double)st.rejected;
      nsde_tensor_free(w);
      nsde_solver_free(s);
    }
    err[k] = e / M;
    h[k] = M / steps;
    printf("# %s rtol %.0e: mean error %.3e, mean steps %.1f, rejected %.1f\n", gbm_cases[_i].name,
           rtols[k], err[k], steps / M, rejected / M);
  }
  slope = loglog_slope(h, err, K);
  printf("# %s adaptive strong order %.2f (expected %.1f)\n", gbm_cases[_i].name, slope,
         gbm_cases[_i].order);
  for (int k = 1; k < K; k++)
    ck_assert_msg(err[k] < err[k - 1] && h[k] < h[k - 1], "%s: no convergence at rtol %g",
                  gbm_cases[_i].name, rtols[k]);
  ck_assert_msg(fabs(slope - gbm_cases[_i].order) < 0.3, "%s: order %.2f, expected %.1f",
                gbm_cases[_i].name, slope, gbm_cases[_i].order);
  /* the global error stays within a modest multiple of the tolerance (measured: Heun 0.7,
   * Milstein 16 times rtol; step doubling's estimate is the less conservative) */
  ck_assert_msg(err[K - 1] < 25 * rtols[K - 1], "%s: error %g at rtol 1e-3", gbm_cases[_i].name,
                err[K - 1]);
  nsde_tensor_free(x);
  problem_free(&p);
}
END_TEST

/* SRA1 on an additive-noise SDE without a closed form: the adaptive solution
 * approaches a fine fixed-grid SRA1 solution on the same paths (same seed and
 * Brownian base grid), and rejected trials did not move the path: a solve
 * started with a huge first step (many rejections) ends where one started
 * small does, to the tolerance. */
START_TEST(sra1_converges_to_the_fine_grid)
{
  const int64_t B = 64;
  const uint64_t seed = test_seed();
  struct problem p = ou(20.0, 0.5);
  struct nsde_tensor *ref = state(B, 1, 1.0), *x = state(B, 1, 1.0);
  int64_t shape[2] = {B, 1};
  double prev = INFINITY;

  {
    struct nsde_solver_config c;
    struct nsde_solver *s;
    nsde_solver_config_init(&c);
    c.scheme = NSDE_SCHEME_SRA1;
    c.n_steps = 1 << 15;
    c.brownian_steps = 4;
    c.seed = seed;
    TRY(nsde_solver_new(p.sde, &c, 2, shape, &s));
    TRY(nsde_solve(s, ref, NULL));
    nsde_solver_free(s);
  }
  for (double rtol = 1e-1; rtol > 1e-4; rtol /= 10) {
    struct nsde_solver_config c;
    struct nsde_solver *s;
    double e = 0.0;
    adaptive_config(&c, NSDE_SCHEME_SRA1, rtol);
    c.seed = seed;
    c.max_steps = 1 << 16;
    TRY(nsde_solver_new(p.sde, &c, 2, shape, &s));
    TRY(nsde_tensor_fill(x, 1.0));
    ck_assert_msg(nsde_solve(s, x, NULL) == NSDE_OK, "%s", nsde_context_last_error(ctx));
    for (int64_t i = 0; i < B; i++)
      e = fmax(e, fabs(D(x)[i] - D(ref)[i]));
    printf("# sra1 rtol %.0e: max error against the fine grid %.3e in %lld steps\n", rtol, e,
           (long long)nsde_solver_num_steps(s));
    ck_assert_msg(e < prev, "no convergence at rtol %g", rtol);
    prev = e;
    nsde_solver_free(s);
  }
  ck_assert_msg(prev < 1e-6, "error %g at rtol 1e-3", prev);
  {
    struct nsde_solver_config c;
    struct nsde_solver *s;
    struct nsde_solver_stats st = {.size = sizeof(st)};
    struct nsde_tensor *y = state(B, 1, 1.0);
    adaptive_config(&c, NSDE_SCHEME_SRA1, 1e-3);
    c.seed = seed;
    c.max_steps = 1 << 16;
    TRY(nsde_solver_new(p.sde, &c, 2, shape, &s));
    TRY(nsde_tensor_fill(x, 1.0));
    TRY(nsde_solve(s, x, NULL));
    nsde_solver_free(s);
    c.dt0 = 1.0; /* rejected again and again at first */
    TRY(nsde_solver_new(p.sde, &c, 2, shape, &s));
    TRY(nsde_solve(s, y, NULL));
    TRY(nsde_solver_get_stats(s, &st));
    ck_assert_int_ge(st.rejected, 3);
    for (int64_t i = 0; i < B; i++)
      ck_assert_double_eq_tol(D(y)[i], D(ref)[i], 1e-6);
    nsde_solver_free(s);
    nsde_tensor_free(y);
  }
  nsde_tensor_free(ref);
  nsde_tensor_free(x);
  problem_free(&p);
}
END_TEST

/* A fast transient (rate 50 for t < 0.1), then slow drift: steps are short
 * in the transient and long after it. */
static int transient_drift(void *user, double t, int64_t batch, int64_t dim, const void *x,
                           void *out)
{
  const double *xd = x;
  double *o = out, k = t < 0.1 ? 50.0 : 0.5;
  (void)user;
  for (int64_t i = 0; i < batch * dim; i++)
    o[i] = -k * (xd[i] - 1.0);
  return 0;
}

START_TEST(steps_follow_the_problem)
{
  struct nsde_func_ops ops = {sizeof(ops), transient_drift, NULL, NULL, NULL};
  struct problem p;
  struct nsde_solver_config c;
  struct nsde_solver *s;
  struct nsde_solver_stats st = {.size = sizeof(st)};
  struct nsde_tensor *x = state(8, 4, 5.0);
  int64_t shape[2] = {8, 4}, n, early = 0, late = 0;
  const double *t;

  TRY(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &ops, NULL, 0, NULL, &p.f));
  TRY(nsde_func_new_additive(ctx, NSDE_DTYPE_FLOAT64, 0.05, &p.g));
  TRY(nsde_sde_new(ctx, p.f, p.g, NSDE_NOISE_ADDITIVE, NSDE_CALCULUS_STRATONOVICH, &p.sde));
  adaptive_config(&c, NSDE_SCHEME_HEUN, 1e-3);
  c.seed = test_seed();
  TRY(nsde_solver_new(p.sde, &c, 2, shape, &s));
  TRY(nsde_solve(s, x, NULL));
  TRY(nsde_solver_get_stats(s, &st));
  n = nsde_solver_get_times(s, &t);
  ck_assert_int_eq(n, st.steps);
  ck_assert_double_eq(t[0], 0.0);
  ck_assert_double_eq(t[n], 1.0);
  for (int64_t i = 0; i < n; i++) {
    /* every step but the last ends on a node of the Brownian tree (base
     * step 1/4) at most about log2(32 bh / h) levels deep, where drawing
     * its increment is cheap; a step shrank by less than 1/32 for it */
    const double h = t[i + 1] - t[i], u = t[i + 1] * 4.0;
    const int d = (int)ceil(log2(32.0 * 0.25 / h)) + 1;
    ck_assert(h > 0);
    if (i + 1 < n)
      ck_assert_msg(fabs(ldexp(u, d) - nearbyint(ldexp(u, d))) < 1e-6,
                    "step %lld ends at %.17g, on no node of depth %d", (long long)i, t[i + 1], d);
    early += t[i + 1] <= 0.1;
    late += t[i] >= 0.5;
  }
  printf("# transient: %lld steps (%lld rejected), %lld in [0, 0.1], %lld in [0.5, 1], "
         "dt %.2e .. %.2e\n",
         (long long)n, (long long)st.rejected, (long long)early, (long long)late, st.dt_smallest,
         st.dt_largest);
  /* a tenth of the time span takes several times the steps of half of it */
  ck_assert_msg(early > 3 * late, "%lld steps in the transient, %lld after", (long long)early,
                (long long)late);
  ck_assert_int_eq(st.drift_evals, 2 * (st.steps + st.rejected));
  nsde_solver_free(s);
  nsde_tensor_free(x);
  problem_free(&p);
}
END_TEST

/* dx = x^2 dt blows up at t = 1/x0: the step size collapses and the solve
 * stops with NSDE_ERR_STEP_SIZE at a finite state before the blow-up; too few
 * max_steps stop the same way, naming max_steps. */
START_TEST(failures_are_clear)
{
  struct problem p = ou(1.0, 0.1);
  struct nsde_solver_config c;
  struct nsde_solver *s;
  struct nsde_tensor *x = state(2, 3, 1.0);
  int64_t shape[2] = {2, 3};

  /* max_steps */
  adaptive_config(&c, NSDE_SCHEME_SRA1, 1e-8);
  c.max_steps = 5;
  TRY(nsde_solver_new(p.sde, &c, 2, shape, &s));
  ck_assert_int_eq(nsde_solve(s, x, NULL), NSDE_ERR_STEP_SIZE);
  ck_assert_ptr_nonnull(strstr(nsde_context_last_error(ctx), "max_steps"));
  ck_assert_int_eq(nsde_solver_num_steps(s), 5);
  for (int i = 0; i < 6; i++)
    ck_assert(isfinite(D(x)[i]) && D(x)[i] != 1.0); /* the state at the 5th step */
  nsde_solver_free(s);
  problem_free(&p);

  /* invalid and unsupported combinations */
  p = gbm(0.1, 0.2, NSDE_CALCULUS_ITO);
  adaptive_config(&c, NSDE_SCHEME_EULER_MARUYAMA, 1e-3);
  ck_assert_int_eq(nsde_solver_new(p.sde, &c, 2, shape, &s), NSDE_ERR_UNSUPPORTED);
  ck_assert_ptr_null(s);
  c.scheme = NSDE_SCHEME_MILSTEIN;
  c.grad = NSDE_GRAD_ADJOINT;
  ck_assert_int_eq(nsde_solver_new(p.sde, &c, 2, shape, &s), NSDE_ERR_UNSUPPORTED);
  c.grad = NSDE_GRAD_NONE;
  c.rtol = 0.0;
  ck_assert_int_eq(nsde_solver_new(p.sde, &c, 2, shape, &s), NSDE_ERR_INVALID);
  c.rtol = NAN;
  ck_assert_int_eq(nsde_solver_new(p.sde, &c, 2, shape, &s), NSDE_ERR_INVALID);
  c.rtol = 1e-3;
  c.dt_min = 0.5;
  c.dt_max = 0.1;
  ck_assert_int_eq(nsde_solver_new(p.sde, &c, 2, shape, &s), NSDE_ERR_INVALID);
  c.dt_min = c.dt_max = 0.0;
  c.max_steps = -1;
  ck_assert_int_eq(nsde_solver_new(p.sde, &c, 2, shape, &s), NSDE_ERR_INVALID);
  c.max_steps = 0;
  problem_free(&p);
  p = gbm(0.1, 0.2, NSDE_CALCULUS_STRATONOVICH);
  c.scheme = NSDE_SCHEME_REVERSIBLE_HEUN;
  ck_assert_int_eq(nsde_solver_new(p.sde, &c, 2, shape, &s), NSDE_ERR_UNSUPPORTED);
  problem_free(&p);
  nsde_tensor_free(x);
}
END_TEST

static int square_drift(void *user, double t, int64_t batch, int64_t dim, const void *x, void *out)
{
  const double *xd = x;
  double *o = out;
  (void)user;
  (void)t;
  for (int64_t i = 0; i < batch * dim; i++)
    o[i] = xd[i] * xd[i];
  return 0;
}

START_TEST(blow_up_stops_at_dt_min)
{
  struct nsde_func_ops ops = {sizeof(ops), square_drift, NULL, NULL, NULL};
  struct problem p;
  struct nsde_solver_config c;
  struct nsde_solver *s;
  struct nsde_tensor *x = state(1, 1, 1.0);
  int64_t shape[2] = {1, 1};

  TRY(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &ops, NULL, 0, NULL, &p.f));
  TRY(nsde_func_new_additive(ctx, NSDE_DTYPE_FLOAT64, 0.0, &p.g));
  TRY(nsde_sde_new(ctx, p.f, p.g, NSDE_NOISE_ADDITIVE, NSDE_CALCULUS_ITO, &p.sde));
  adaptive_config(&c, NSDE_SCHEME_HEUN, 1e-4);
  c.t1 = 2.0;
  c.dt_min = 1e-7;
  c.max_steps = 1 << 20;
  TRY(nsde_solver_new(p.sde, &c, 2, shape, &s));
  ck_assert_int_eq(nsde_solve(s, x, NULL), NSDE_ERR_STEP_SIZE);
  printf("# blow-up: %s\n", nsde_context_last_error(ctx));
  ck_assert_ptr_nonnull(strstr(nsde_context_last_error(ctx), "dt_min"));
  /* stopped at the blow-up (Heun's lags the exact t = 1 slightly), state finite and large */
  ck_assert(nsde_solver_time(s) > 0.99 && nsde_solver_time(s) < 1.01);
  ck_assert(isfinite(D(x)[0]) && D(x)[0] > 1000.0);
  nsde_solver_free(s);
  nsde_tensor_free(x);
  problem_free(&p);
}
END_TEST

/* Save-at times are hit exactly and their states match a step-wise run. */
START_TEST(save_at_and_stepwise)
{
  const double at[] = {0.0, 0.25, 0.5, 0.77};
  struct problem p = gbm(0.3, 0.6, NSDE_CALCULUS_STRATONOVICH);
  struct nsde_solver_config c;
  struct nsde_solver *s;
  struct nsde_tensor *x = state(5, 2, 1.0), *y = state(5, 2, 1.0), *saved;
  int64_t shape[2] = {5, 2}, sshape = 4 * 10, n, j = 0;
  const double *t;

  adaptive_config(&c, NSDE_SCHEME_HEUN, 1e-3);
  c.save_at = at;
  c.n_save = 4;
  c.seed = 7;
  TRY(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 1, &sshape, &saved));
  TRY(nsde_solver_new(p.sde, &c, 2, shape, &s));
  TRY(nsde_solve(s, x, saved));
  n = nsde_solver_get_times(s, &t);
  for (int64_t i = 0; i <= n && j < 4; i++)
    if (t[i] == at[j])
      j++;
  ck_assert_int_eq(j, 4);
  /* the same solve step by step, stopping at the save times */
  TRY(nsde_solver_reset(s));
  j = 1;
  for (;;) {
    enum nsde_status st = nsde_solver_step(s, y);
    if (st == NSDE_ERR_STATE)
      break;
    ck_assert_int_eq(st, NSDE_OK);
    if (j < 4 && nsde_solver_time(s) == at[j]) {
      for (int i = 0; i < 10; i++)
        ck_assert_double_eq(D(y)[i], D(saved)[j * 10 + i]);
      j++;
    }
  }
  ck_assert_int_eq(j, 4);
  ck_assert_double_eq(nsde_solver_time(s), 1.0);
  for (int i = 0; i < 10; i++) {
    ck_assert_double_eq(D(x)[i], D(y)[i]);
    ck_assert_double_eq(D(saved)[i], 1.0);
  }
  nsde_solver_free(s);
  nsde_tensor_free(x);
  nsde_tensor_free(y);
  nsde_tensor_free(saved);
  problem_free(&p);
}
END_TEST

/* Gradients through an adaptive solve: store-all and checkpointing agree,
 * and both match central finite differences of the solve on the recorded
 * accepted grid with the same Brownian path (a fixed-grid solver whose
 * save-at times are the accepted times, so the grid and the path are frozen). */
static const struct {
  const char *name;
  enum nsde_scheme scheme;
  enum nsde_calculus calc;
} grad_cases[] = {
    {"heun", NSDE_SCHEME_HEUN, NSDE_CALCULUS_STRATONOVICH},
    {"milstein", NSDE_SCHEME_MILSTEIN, NSDE_CALCULUS_ITO},
};

/* L = sum of x(1)^2 / 2 on the frozen grid. */
static double frozen_loss(const struct nsde_sde *sde, enum nsde_scheme scheme, const double *times,
                          int64_t n, uint64_t seed, const double *x0, int64_t B, int64_t dim)
{
  struct nsde_solver_config c;
  struct nsde_solver *s;
  struct nsde_tensor *x = state(B, dim, 0.0);
  int64_t shape[2] = {B, dim};
  double L = 0.0;

  nsde_solver_config_init(&c);
  c.scheme = scheme;
  c.n_steps = 1;
  c.brownian_steps = 4;
  c.save_at = times + 1;
  c.n_save = n - 1;
  c.seed = seed;
  TRY(nsde_solver_new(sde, &c, 2, shape, &s));
  ck_assert_int_eq(nsde_solver_num_steps(s), n);
  memcpy(D(x), x0, (size_t)(B * dim) * sizeof(double));
  TRY(nsde_solve(s, x, NULL));
  for (int64_t i = 0; i < B * dim; i++)
    L += 0.5 * D(x)[i] * D(x)[i];
  nsde_solver_free(s);
  nsde_tensor_free(x);
  return L;
}

START_TEST(gradients_through_accepted_steps)
{
  const int64_t B = 3, dim = 2, N = B * dim;
  const uint64_t seed = 11;
  struct problem p = gbm(0.4, 0.7, grad_cases[_i].calc);
  int64_t shape[2] = {B, dim}, n;
  double x0[6] = {1.0, 0.5, -0.7, 2.0, 1.3, -0.2}, gx[2][6], gf[2][2], gg[2][1];
  double *times = NULL;
  const double *t;

  for (int strat = 0; strat < 2; strat++) {
    struct nsde_solver_config c;
    struct nsde_solver *s;
    struct nsde_tensor *x = state(B, dim, 0.0), *gfin, *gini = state(B, dim, 0.0);
    adaptive_config(&c, grad_cases[_i].scheme, 1e-2);
    c.seed = seed;
    c.grad = strat ? NSDE_GRAD_CHECKPOINT : NSDE_GRAD_STORE_ALL;
    c.max_steps = 512;
    TRY(nsde_solver_new(p.sde, &c, 2, shape, &s));
    memcpy(D(x), x0, sizeof(x0));
    TRY(nsde_solve(s, x, NULL));
    gfin = x; /* dL/dx(1) = x(1) */
    ck_assert_msg(nsde_backward(s, gfin, NULL, gini, gf[strat], 2, gg[strat], 1) == NSDE_OK, "%s",
                  nsde_context_last_error(ctx));
    memcpy(gx[strat], D(gini), sizeof(x0));
    n = nsde_solver_get_times(s, &t);
    if (strat == 0) {
      times = malloc((size_t)(n + 1) * sizeof(double));
      memcpy(times, t, (size_t)(n + 1) * sizeof(double));
    } else {
      ck_assert_int_eq(n, nsde_solver_num_steps(s));
    }
    nsde_solver_free(s);
    nsde_tensor_free(x);
    nsde_tensor_free(gini);
  }
  printf("# %s: gradient through %lld accepted steps\n", grad_cases[_i].name, (long long)n);
  ck_assert_int_gt(n, 8);
  for (int i = 0; i < 6; i++)
    ck_assert_double_eq(gx[0][i], gx[1][i]);
  ck_assert_double_eq(gf[0][0], gf[1][0]);
  ck_assert_double_eq(gg[0][0], gg[1][0]);
  {
    const double eps = 1e-6;
    for (int64_t i = 0; i < N; i++) {
      double xp[6], xm[6], fd;
      memcpy(xp, x0, sizeof(x0));
      memcpy(xm, x0, sizeof(x0));
      xp[i] += eps;
      xm[i] -= eps;
      fd = (frozen_loss(p.sde, grad_cases[_i].scheme, times, n, seed, xp, B, dim) -
            frozen_loss(p.sde, grad_cases[_i].scheme, times, n, seed, xm, B, dim)) /
           (2 * eps);
      ck_assert_msg(fabs(fd - gx[0][i]) < 1e-6 * fmax(1.0, fabs(fd)),
                    "%s: dL/dx0[%lld] %.9g, finite difference %.9g", grad_cases[_i].name,
                    (long long)i, gx[0][i], fd);
    }
    /* the diffusion's sigma, perturbed in place */
    {
      double *sig = nsde_func_params(p.g), s0 = *sig, fd;
      *sig = s0 + eps;
      fd = frozen_loss(p.sde, grad_cases[_i].scheme, times, n, seed, x0, B, dim);
      *sig = s0 - eps;
      fd = (fd - frozen_loss(p.sde, grad_cases[_i].scheme, times, n, seed, x0, B, dim)) / (2 * eps);
      *sig = s0;
      ck_assert_msg(fabs(fd - gg[0][0]) < 1e-6 * fmax(1.0, fabs(fd)),
                    "%s: dL/dsigma %.9g, finite difference %.9g", grad_cases[_i].name, gg[0][0],
                    fd);
    }
  }
  free(times);
  problem_free(&p);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("adaptive");
  TCase *tc = tcase_create("adaptive");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, gbm_converges_on_the_path, 0, 2);
  tcase_add_test(tc, sra1_converges_to_the_fine_grid);
  tcase_add_test(tc, steps_follow_the_problem);
  tcase_add_test(tc, failures_are_clear);
  tcase_add_test(tc, blow_up_stops_at_dt_min);
  tcase_add_test(tc, save_at_and_stepwise);
  tcase_add_loop_test(tc, gradients_through_accepted_steps, 0, 2);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  return run_suite(suite());
}
