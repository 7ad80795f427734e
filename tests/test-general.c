/* General noise dx = f dt + G(t,x) dW, G dim x m: agreement with diagonal
 * noise, closed forms, non-commutative noise against a fine grid, adaptive
 * steps, gradients against finite differences, invalid combinations.
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

static double *D(struct nsde_tensor *t)
{
  return nsde_tensor_data(t);
}

static struct nsde_tensor *state(int64_t batch, int64_t dim, double v)
{
  return test_state64(ctx, batch, dim, v);
}

/* G = diag(sigma x): general noise with m = dim, the same as diagonal noise. */
static int diag_eval(void *user, double t, int64_t batch, int64_t dim, const void *x, void *out)
{
  const double *xd = x, sigma = *(const double *)user;
  double *o = out;
  (void)t;
  for (int64_t r = 0; r < batch * dim; r++)
    for (int64_t j = 0; j < dim; j++)
      o[r * dim + j] = j == r % dim ? sigma * xd[r] : 0.0;
  return 0;
}

/* G_ij = sigma_j x_i (d = 1, m = 2 gives dX = X (s1 dW1 + s2 dW2), which commutes). */
static const double sig2[2] = {0.6, 0.3};
static int two_eval(void *user, double t, int64_t batch, int64_t dim, const void *x, void *out)
{
  const double *xd = x;
  double *o = out;
  (void)user;
  (void)t;
  for (int64_t r = 0; r < batch * dim; r++)
    for (int j = 0; j < 2; j++)
      o[r * 2 + j] = sig2[j] * xd[r];
  return 0;
}

static struct nsde_solver *fixed(const struct nsde_sde *sde, enum nsde_scheme scheme, int64_t n,
                                 int64_t base, uint64_t seed, int64_t batch, int64_t dim)
{
  struct nsde_solver_config c;
  struct nsde_solver *s = NULL;
  int64_t shape[2] = {batch, dim};
  nsde_solver_config_init(&c);
  c.scheme = scheme;
  c.n_steps = n;
  c.brownian_steps = base;
  c.seed = seed;
  ck_assert_msg(nsde_solver_new(sde, &c, 2, shape, &s) == NSDE_OK, "%s",
                nsde_context_last_error(ctx));
  return s;
}

/* With G diagonal, general noise reproduces diagonal noise bit for bit
 * (Brownian element j of the general path is element j of the diagonal one). */
START_TEST(diagonal_matrix_matches_diagonal_noise)
{
  double sigma = 0.7;
  struct nsde_func_ops ops = {sizeof(ops), diag_eval, NULL, NULL, NULL};
  struct nsde_func *f, *gm, *gd;
  struct nsde_sde *gen, *dia;
  const enum nsde_scheme schemes[2] = {NSDE_SCHEME_EULER_MARUYAMA, NSDE_SCHEME_HEUN};

  TRY(nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT64, 0.4, 0.1, &f));
  TRY(nsde_func_new_matrix(ctx, NSDE_DTYPE_FLOAT64, &ops, &sigma, 0, NULL, 3, &gm));
  TRY(nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT64, sigma, &gd));
  for (int k = 0; k < 2; k++) {
    enum nsde_calculus calc = k ? NSDE_CALCULUS_STRATONOVICH : NSDE_CALCULUS_ITO;
    struct nsde_solver *a, *b;
    struct nsde_tensor *x = state(4, 3, 1.0), *y = state(4, 3, 1.0);
    TRY(nsde_sde_new(ctx, f, gm, NSDE_NOISE_GENERAL, calc, &gen));
    TRY(nsde_sde_new(ctx, f, gd, NSDE_NOISE_DIAGONAL, calc, &dia));
    a = fixed(gen, schemes[k], 50, 0, 5, 4, 3);
    b = fixed(dia, schemes[k], 50, 0, 5, 4, 3);
    TRY(nsde_solve(a, x, NULL));
    TRY(nsde_solve(b, y, NULL));
    for (int i = 0; i < 12; i++)
      ck_assert_double_eq(D(x)[i], D(y)[i]);
    nsde_solver_free(a);
    nsde_solver_free(b);
    nsde_sde_free(gen);
    nsde_sde_free(dia);
    nsde_tensor_free(x);
    nsde_tensor_free(y);
  }
  nsde_func_free(f);
  nsde_func_free(gm);
  nsde_func_free(gd);
}
END_TEST

/* dX = mu X dt + X (s1 dW1 + s2 dW2): exact X = exp(a t + s1 W1 + s2 W2) with
 * a = mu (Stratonovich) or mu - (s1^2 + s2^2)/2 (Ito). Strong orders on
 * nested grids: Heun 1 (the noise commutes), Euler-Maruyama 0.5. */
START_TEST(two_brownian_motions_closed_form)
{
  const double mu = 0.3;
  const int64_t M = 2000, base = 1024, steps[] = {16, 32, 64, 128};
  struct nsde_func_ops ops = {sizeof(ops), two_eval, NULL, NULL, NULL};
  struct nsde_func *f, *g;
  const enum nsde_scheme schemes[2] = {NSDE_SCHEME_EULER_MARUYAMA, NSDE_SCHEME_HEUN};
  const double expect[2] = {0.5, 1.0};

  TRY(nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT64, mu, 0.0, &f));
  TRY(nsde_func_new_matrix(ctx, NSDE_DTYPE_FLOAT64, &ops, NULL, 0, NULL, 2, &g));
  for (int k = 0; k < 2; k++) {
    enum nsde_calculus calc = k ? NSDE_CALCULUS_STRATONOVICH : NSDE_CALCULUS_ITO;
    const double a = k ? mu : mu - 0.5 * (sig2[0] * sig2[0] + sig2[1] * sig2[1]);
    struct nsde_sde *sde;
    struct nsde_tensor *x = state(M, 1, 1.0), *w;
    double h[4], err[4], slope;
    int64_t wn = 2 * M;
    TRY(nsde_sde_new(ctx, f, g, NSDE_NOISE_GENERAL, calc, &sde));
    TRY(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 1, &wn, &w));
    for (int q = 0; q < 4; q++) {
      struct nsde_solver *s = fixed(sde, schemes[k], steps[q], base, 9, M, 1);
      double e = 0.0;
      TRY(nsde_tensor_fill(x, 1.0));
      TRY(nsde_solve(s, x, NULL));
      TRY(nsde_brownian_increment(nsde_solver_brownian(s), 0.0, 1.0, w, NULL));
      for (int64_t i = 0; i < M; i++)
        e += fabs(D(x)[i] - exp(a + sig2[0] * D(w)[2 * i] + sig2[1] * D(w)[2 * i + 1]));
      err[q] = e / M;
      h[q] = 1.0 / steps[q];
      nsde_solver_free(s);
    }
    slope = loglog_slope(h, err, 4);
    printf("# general noise, %s: strong order %.2f (expected %.1f), error %.2e at 128 steps\n",
           k ? "Heun" : "Euler-Maruyama", slope, expect[k], err[3]);
    ck_assert_msg(fabs(slope - expect[k]) < 0.2, "order %.2f, expected %.1f", slope, expect[k]);
    nsde_tensor_free(w);
    nsde_tensor_free(x);
    nsde_sde_free(sde);
  }
  nsde_func_free(f);
  nsde_func_free(g);
}
END_TEST

/* Non-commutative noise: dX1 = dW1, dX2 = X1 dW2 (Stratonovich), so
 * X2(1) = X1(0) W2(1) + int W1 o dW2 needs the Levy area. Reference: Heun
 * (the trapezoid rule here) on 2^16 steps of the same path, within about
 * 1e-3. Fixed Heun converges at order 0.5; adaptive Heun, whose rejected
 * steps' ends stay targets, converges to the same solution as rtol falls. */
static int nc_eval(void *user, double t, int64_t batch, int64_t dim, const void *x, void *out)
{
  const double *xd = x;
  double *o = out;
  (void)user;
  (void)t;
  for (int64_t b = 0; b < batch; b++) {
    o[b * 4 + 0] = 1.0;
    o[b * 4 + 1] = 0.0;
    o[b * 4 + 2] = 0.0;
    o[b * 4 + 3] = xd[b * dim];
  }
  return 0;
}

static int zero_eval(void *user, double t, int64_t batch, int64_t dim, const void *x, void *out)
{
  (void)user;
  (void)t;
  (void)x;
  memset(out, 0, (size_t)(batch * dim) * sizeof(double));
  return 0;
}

START_TEST(non_commutative_noise)
{
  const int64_t B = 32;
  struct nsde_func_ops gops = {sizeof(gops), nc_eval, NULL, NULL, NULL};
  struct nsde_func_ops fops = {sizeof(fops), zero_eval, NULL, NULL, NULL};
  struct nsde_func *f, *g;
  struct nsde_sde *sde;
  struct nsde_tensor *ref = state(B, 2, 0.5), *x = state(B, 2, 0.5);
  double prev = INFINITY, herr[3], hh[3];

  TRY(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &fops, NULL, 0, NULL, &f));
  TRY(nsde_func_new_matrix(ctx, NSDE_DTYPE_FLOAT64, &gops, NULL, 0, NULL, 2, &g));
  TRY(nsde_sde_new(ctx, f, g, NSDE_NOISE_GENERAL, NSDE_CALCULUS_STRATONOVICH, &sde));
  {
    struct nsde_solver *s = fixed(sde, NSDE_SCHEME_HEUN, 1 << 16, 4, 21, B, 2);
    TRY(nsde_solve(s, ref, NULL));
    nsde_solver_free(s);
  }
  for (int q = 0; q < 3; q++) {
    struct nsde_solver *s = fixed(sde, NSDE_SCHEME_HEUN, 16 << (2 * q), 4, 21, B, 2);
    double e = 0.0;
    TRY(nsde_tensor_fill(x, 0.5));
    TRY(nsde_solve(s, x, NULL));
    for (int64_t i = 0; i < B; i++)
      e += fabs(D(x)[2 * i + 1] - D(ref)[2 * i + 1]) / B;
    herr[q] = e;
    hh[q] = 1.0 / (16 << (2 * q));
    nsde_solver_free(s);
  }
  printf("# non-commutative, fixed Heun: errors %.2e %.2e %.2e at 16, 64, 256 steps, order %.2f\n",
         herr[0], herr[1], herr[2], loglog_slope(hh, herr, 3));
  ck_assert(fabs(loglog_slope(hh, herr, 3) - 0.5) < 0.2);
  for (double rtol = 1e-1; rtol > 1e-5; rtol /= 10) {
    struct nsde_solver_config c;
    struct nsde_solver *s;
    struct nsde_solver_stats st = {.size = sizeof(st)};
    int64_t shape[2] = {1, 2};
    double e = 0.0, steps = 0.0;
    struct nsde_tensor *x1 = state(1, 2, 0.5);
    for (int64_t i = 0; i < B; i++) { /* one path per solve: each adapts alone */
      nsde_solver_config_init(&c);
      c.scheme = NSDE_SCHEME_HEUN;
      c.adaptive = 1;
      c.rtol = rtol;
      c.atol = rtol;
      c.n_steps = 4;
      c.seed = 21;
      c.batch_offset = i;
      c.max_steps = 1 << 18;
      TRY(nsde_solver_new(sde, &c, 2, shape, &s));
      TRY(nsde_tensor_fill(x1, 0.5));
      ck_assert_msg(nsde_solve(s, x1, NULL) == NSDE_OK, "%s", nsde_context_last_error(ctx));
      TRY(nsde_solver_get_stats(s, &st));
      e += fabs(D(x1)[1] - D(ref)[2 * i + 1]) / B;
      ck_assert_double_eq_tol(D(x1)[0], D(ref)[2 * i], 1e-12); /* X1 = 0.5 + W1 exactly */
      steps += (double)st.steps / B;
      nsde_solver_free(s);
    }
    printf("# non-commutative, adaptive Heun rtol %.0e: mean error %.2e in %.0f steps\n", rtol, e,
           steps);
    ck_assert_msg(e < prev, "no convergence at rtol %g", rtol);
    prev = e;
    nsde_tensor_free(x1);
  }
  ck_assert_msg(prev < 2e-2, "error %g at rtol 1e-4", prev);
  nsde_tensor_free(ref);
  nsde_tensor_free(x);
  nsde_sde_free(sde);
  nsde_func_free(f);
  nsde_func_free(g);
}
END_TEST

/* G_ij = p0 x_i c_j + p1 x_(1-i) s_j  (d = 2, m = 3), with its vjp. */
static const double cc[3] = {1.0, 0.5, -0.3}, ss[3] = {0.2, -0.7, 1.0};
static int mix_eval(void *user, double t, int64_t batch, int64_t dim, const void *x, void *out)
{
  const double *xd = x, *p = user;
  double *o = out;
  (void)t;
  for (int64_t b = 0; b < batch; b++)
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 3; j++)
        o[(b * dim + i) * 3 + j] =
            p[0] * xd[b * dim + i] * cc[j] + p[1] * xd[b * dim + 1 - i] * ss[j];
  return 0;
}

static int broken;
static int mix_vjp(void *user, double t, int64_t batch, int64_t dim, const void *x, const void *v,
                   void *grad_x, void *grad_params)
{
  const double *xd = x, *vd = v, *p = user;
  double *gx = grad_x, *gp = grad_params;
  (void)t;
  for (int64_t b = 0; b < batch; b++) {
    gx[b * dim] = gx[b * dim + 1] = 0.0;
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 3; j++) {
        double vij = vd[(b * dim + i) * 3 + j];
        gx[b * dim + i] += vij * p[0] * cc[j];
        gx[b * dim + 1 - i] += vij * p[1] * ss[j] * (broken ? 1.01 : 1.0);
        if (gp) {
          gp[0] += vij * xd[b * dim + i] * cc[j];
          gp[1] += vij * xd[b * dim + 1 - i] * ss[j];
        }
      }
  }
  return 0;
}

static double loss(const struct nsde_sde *sde, enum nsde_scheme scheme, const double *x0)
{
  struct nsde_solver *s = fixed(sde, scheme, 20, 0, 3, 2, 2);
  struct nsde_tensor *x = state(2, 2, 0.0);
  double L = 0.0;
  memcpy(D(x), x0, 4 * sizeof(double));
  TRY(nsde_solve(s, x, NULL));
  for (int i = 0; i < 4; i++)
    L += 0.5 * D(x)[i] * D(x)[i] + 0.1 * D(x)[i];
  nsde_solver_free(s);
  nsde_tensor_free(x);
  return L;
}

START_TEST(gradients_and_vjp_check)
{
  double p[2] = {0.4, 0.3}, x0[4] = {1.0, -0.5, 0.3, 0.8};
  struct nsde_func_ops ops = {sizeof(ops), mix_eval, mix_vjp, NULL, NULL};
  struct nsde_func *f, *g;
  struct nsde_vjp_report rep = {.size = sizeof(rep)};
  struct nsde_tensor *xc = state(2, 2, 0.0);

  TRY(nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT64, -0.5, 0.2, &f));
  TRY(nsde_func_new_matrix(ctx, NSDE_DTYPE_FLOAT64, &ops, p, 2, p, 3, &g));
  memcpy(D(xc), x0, sizeof(x0));
  TRY(nsde_func_check_vjp(g, 0.0, xc, 1, 0.0, &rep));
  broken = 1; /* the checker sees a wrong vjp of a matrix func */
  ck_assert_int_eq(nsde_func_check_vjp(g, 0.0, xc, 1, 0.0, &rep), NSDE_ERR_CHECK_FAILED);
  broken = 0;
  for (int k = 0; k < 2; k++) {
    const enum nsde_scheme scheme = k ? NSDE_SCHEME_HEUN : NSDE_SCHEME_EULER_MARUYAMA;
    struct nsde_sde *sde;
    struct nsde_solver_config c;
    struct nsde_solver *s;
    struct nsde_tensor *x = state(2, 2, 0.0), *gi = state(2, 2, 0.0);
    int64_t shape[2] = {2, 2};
    double gp[2], gf[2], eps = 1e-6;
    TRY(nsde_sde_new(ctx, f, g, NSDE_NOISE_GENERAL,
                     k ? NSDE_CALCULUS_STRATONOVICH : NSDE_CALCULUS_ITO, &sde));
    nsde_solver_config_init(&c);
    c.scheme = scheme;
    c.n_steps = 20;
    c.seed = 3;
    c.grad = k ? NSDE_GRAD_CHECKPOINT : NSDE_GRAD_STORE_ALL;
    TRY(nsde_solver_new(sde, &c, 2, shape, &s));
    memcpy(D(x), x0, sizeof(x0));
    TRY(nsde_solve(s, x, NULL));
    for (int i = 0; i < 4; i++)
      D(x)[i] += 0.1; /* dL/dx(1) */
    ck_assert_msg(nsde_backward(s, x, NULL, gi, gf, NELEM(gf), gp, NELEM(gp)) == NSDE_OK, "%s",
                  nsde_context_last_error(ctx));
    for (int i = 0; i < 4; i++) {
      double xp[4], xm[4], fd;
      memcpy(xp, x0, sizeof(x0));
      memcpy(xm, x0, sizeof(x0));
      xp[i] += eps;
      xm[i] -= eps;
      fd = (loss(sde, scheme, xp) - loss(sde, scheme, xm)) / (2 * eps);
      ck_assert_msg(fabs(fd - D(gi)[i]) < 1e-6 * fmax(1.0, fabs(fd)), "dL/dx0[%d] %.9g fd %.9g", i,
                    D(gi)[i], fd);
    }
    for (int j = 0; j < 2; j++) {
      double p0 = p[j], fd;
      p[j] = p0 + eps;
      fd = loss(sde, scheme, x0);
      p[j] = p0 - eps;
      fd = (fd - loss(sde, scheme, x0)) / (2 * eps);
      p[j] = p0;
      ck_assert_msg(fabs(fd - gp[j]) < 1e-6 * fmax(1.0, fabs(fd)), "dL/dp[%d] %.9g fd %.9g", j,
                    gp[j], fd);
    }
    nsde_solver_free(s);
    nsde_sde_free(sde);
    nsde_tensor_free(x);
    nsde_tensor_free(gi);
  }
  nsde_tensor_free(xc);
  nsde_func_free(f);
  nsde_func_free(g);
}
END_TEST

START_TEST(invalid_combinations)
{
  double p[2] = {0.4, 0.3};
  struct nsde_func_ops ops = {sizeof(ops), mix_eval, mix_vjp, NULL, NULL};
  struct nsde_func *f, *g, *add, *bad = NULL;
  struct nsde_sde *sde = NULL;
  struct nsde_solver_config c;
  struct nsde_solver *s = NULL;
  int64_t shape[2] = {2, 2};

  TRY(nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT64, -0.5, 0.2, &f));
  TRY(nsde_func_new_matrix(ctx, NSDE_DTYPE_FLOAT64, &ops, p, 2, p, 3, &g));
  TRY(nsde_func_new_additive(ctx, NSDE_DTYPE_FLOAT64, 0.1, &add));
  ck_assert_int_eq(nsde_func_new_matrix(ctx, NSDE_DTYPE_FLOAT64, &ops, p, 2, p, 0, &bad),
                   NSDE_ERR_INVALID);
  ck_assert_ptr_null(bad);
  ck_assert_int_eq(nsde_sde_new(ctx, f, g, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_ITO, &sde),
                   NSDE_ERR_INVALID);
  ck_assert_int_eq(nsde_sde_new(ctx, f, add, NSDE_NOISE_GENERAL, NSDE_CALCULUS_ITO, &sde),
                   NSDE_ERR_INVALID);
  ck_assert_int_eq(nsde_sde_new(ctx, g, add, NSDE_NOISE_ADDITIVE, NSDE_CALCULUS_ITO, &sde),
                   NSDE_ERR_INVALID);
  TRY(nsde_sde_new(ctx, f, g, NSDE_NOISE_GENERAL, NSDE_CALCULUS_ITO, &sde));
  nsde_solver_config_init(&c);
  c.scheme = NSDE_SCHEME_MILSTEIN;
  ck_assert_int_eq(nsde_solver_new(sde, &c, 2, shape, &s), NSDE_ERR_UNSUPPORTED);
  c.scheme = NSDE_SCHEME_SRA1;
  ck_assert_int_eq(nsde_solver_new(sde, &c, 2, shape, &s), NSDE_ERR_UNSUPPORTED);
  c.scheme = NSDE_SCHEME_HEUN; /* Stratonovich scheme, Ito SDE */
  ck_assert_int_eq(nsde_solver_new(sde, &c, 2, shape, &s), NSDE_ERR_UNSUPPORTED);
  c.scheme = NSDE_SCHEME_EULER_MARUYAMA;
  c.grad = NSDE_GRAD_ADJOINT;
  ck_assert_int_eq(nsde_solver_new(sde, &c, 2, shape, &s), NSDE_ERR_UNSUPPORTED);
  c.grad = NSDE_GRAD_NONE;
  c.adaptive = 1; /* Euler-Maruyama, state-dependent noise */
  ck_assert_int_eq(nsde_solver_new(sde, &c, 2, shape, &s), NSDE_ERR_UNSUPPORTED);
  ck_assert_ptr_null(s);
  nsde_sde_free(sde);
  nsde_func_free(f);
  nsde_func_free(g);
  nsde_func_free(add);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("general");
  TCase *tc = tcase_create("general");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, diagonal_matrix_matches_diagonal_noise);
  tcase_add_test(tc, two_brownian_motions_closed_form);
  tcase_add_test(tc, non_commutative_noise);
  tcase_add_test(tc, gradients_and_vjp_check);
  tcase_add_test(tc, invalid_combinations);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  return run_suite(suite());
}
