/*
 * 06-adaptive: adaptive steps and general noise on a stochastic Lotka-Volterra
 * model whose prey and predators feel two correlated Brownian motions:
 *   dx = x (a - b y) dt + s1 x dW1
 *   dy = y (c x - d) dt + s2 y (r dW1 + sqrt(1 - r^2) dW2)   (Stratonovich)
 * G is a 2 x 2 matrix per path (NSDE_NOISE_GENERAL). Adaptive Heun meets
 * rtol with fewer steps than equal steps of the same accuracy would need:
 * the error of each is measured against 2^16 equal steps on the same path.
 * With an argument, writes t, x, y of path 0 at every accepted step, e.g.
 *   example-06-adaptive lv.dat && gnuplot -e "set term png; set out 'lv.png'; \
 *     plot 'lv.dat' u 1:2 w l t 'prey', '' u 1:3 w l t 'predators'"
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdio.h>

#include <nsde/nsde.h>

#define P 64 /* paths */
static const double A = 1.0, B = 0.1, C = 0.075, D = 1.5, S1 = 0.1, S2 = 0.1, R = 0.5;

static int drift(void *u, double t, int64_t batch, int64_t dim, const void *xv, void *ov)
{
  const double *x = xv;
  double *o = ov;
  for (int64_t b = 0; b < 2 * batch; b += 2) {
    o[b] = x[b] * (A - B * x[b + 1]);
    o[b + 1] = x[b + 1] * (C * x[b] - D);
  }
  return (void)u, (void)t, (void)dim, 0;
}

static int diffusion(void *u, double t, int64_t batch, int64_t dim, const void *xv, void *ov)
{
  const double *x = xv;
  double *o = ov; /* G[b][i][j] at (b*2 + i)*2 + j */
  for (int64_t b = 0; b < batch; b++) {
    o[4 * b] = S1 * x[2 * b], o[4 * b + 1] = 0.0;
    o[4 * b + 2] = S2 * R * x[2 * b + 1], o[4 * b + 3] = S2 * sqrt(1 - R * R) * x[2 * b + 1];
  }
  return (void)u, (void)t, (void)dim, 0;
}

/* P paths from (10, 5) to t = 15, step by step; adaptive if rtol > 0, else n
 * equal steps. Writes x(15) to out, path 0 along the way to dat (if any). */
static enum nsde_status solve(struct nsde_context *ctx, struct nsde_sde *sde, double rtol,
                              int64_t n, double *out, struct nsde_solver_stats *st, FILE *dat)
{
  struct nsde_solver_config c;
  struct nsde_solver *s = NULL;
  struct nsde_tensor *x = NULL;
  int64_t shape[2] = {P, 2};
  enum nsde_status rc;
  nsde_solver_config_init(&c);
  c.scheme = NSDE_SCHEME_HEUN;
  c.t1 = 15.0;
  c.n_steps = rtol > 0 ? 15 : n; /* adaptive: the Brownian base grid */
  c.brownian_steps = 15;         /* the same paths for every solve */
  c.seed = 42;
  c.adaptive = rtol > 0;
  c.rtol = c.atol = rtol;
  c.max_steps = 1 << 17;
  if ((rc = nsde_solver_new(sde, &c, 2, shape, &s)) == NSDE_OK)
    rc = nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &x);
  for (int i = 0; !rc && i < 2 * P; i++)
    ((double *)nsde_tensor_data(x))[i] = i % 2 ? 5.0 : 10.0;
  while (!rc && (rc = nsde_solver_step(s, x)) == NSDE_OK)
    if (dat)
      fprintf(dat, "%.5f %.5f %.5f\n", nsde_solver_time(s), ((double *)nsde_tensor_data(x))[0],
              ((double *)nsde_tensor_data(x))[1]);
  rc = rc == NSDE_ERR_STATE ? NSDE_OK : rc; /* NSDE_ERR_STATE: t1 reached */
  for (int i = 0; !rc && i < 2 * P; i++)
    out[i] = ((double *)nsde_tensor_data(x))[i];
  st->size = sizeof(*st);
  if (!rc)
    rc = nsde_solver_get_stats(s, st);
  nsde_tensor_free(x);
  nsde_solver_free(s);
  return rc;
}

static double err(const double *a, const double *b) /* mean absolute error at t = 15 */
{
  double e = 0.0;
  for (int i = 0; i < 2 * P; i++)
    e += fabs(a[i] - b[i]);
  return e / (2 * P);
}

int main(int argc, char **argv)
{
  struct nsde_func_ops fo = {sizeof(fo), drift, NULL, NULL, NULL}, go = fo;
  struct nsde_context *ctx = NULL;
  struct nsde_func *f = NULL, *g = NULL;
  struct nsde_sde *sde = NULL;
  struct nsde_solver_stats st;
  double ref[2 * P], x[2 * P];
  FILE *dat = argc > 1 ? fopen(argv[1], "w") : NULL;
  int rc;

  go.eval = diffusion;
  rc = nsde_context_new(&ctx) || nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &fo, NULL, 0, NULL, &f) ||
       nsde_func_new_matrix(ctx, NSDE_DTYPE_FLOAT64, &go, NULL, 0, NULL, 2, &g) ||
       nsde_sde_new(ctx, f, g, NSDE_NOISE_GENERAL, NSDE_CALCULUS_STRATONOVICH, &sde) ||
       solve(ctx, sde, 0, 1 << 16, ref, &st, NULL);
  for (double rtol = 1e-2; !rc && rtol > 1e-5; rtol /= 10) {
    int64_t n = 16;
    double e;
    rc = solve(ctx, sde, rtol, 0, x, &st, rtol < 2e-4 ? dat : NULL);
    e = err(x, ref);
    printf("rtol %.0e: %5lld adaptive steps (%4lld rejected), error %.2e", rtol,
           (long long)st.steps, (long long)st.rejected, e);
    for (; !rc && n < (1 << 16); n *= 2) /* the fewest equal steps (2^k) with no larger error */
      if (solve(ctx, sde, 0, n, x, &st, NULL) == NSDE_OK && err(x, ref) <= e)
        break; /* (too few steps may also fail with NSDE_ERR_NONFINITE) */
    printf("; equal steps: %lld\n", (long long)n);
  }
  if (rc)
    fprintf(stderr, "06-adaptive: %s\n", nsde_context_last_error(ctx));
  if (dat)
    fclose(dat);
  nsde_sde_free(sde);
  nsde_func_free(f);
  nsde_func_free(g);
  nsde_context_free(ctx);
  return rc ? 1 : 0;
}
