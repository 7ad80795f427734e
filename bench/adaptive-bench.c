/*
 * nsde-bench-adaptive: what adaptive steps cost and what they save.
 *
 *  1. Overhead: a DIM-dimensional SDE with PATHS paths (default 1,000 x
 *     10,000, float32), dx = -x dt + 0.5 x o dW (Stratonovich), adaptive Heun.
 *     The fixed-step Heun solver then runs on exactly the accepted grid (its
 *     save-at times are the accepted times) with the same Brownian paths;
 *     the ratio of the two times per accepted step is the controller's
 *     overhead (error norm, rejected trials). Both measured back to back.
 *  2. Steps saved at equal error, on a problem with a fast transient
 *     (dx = -k(t) (x - 1) dt + 0.05 dW, k = 50 for t < 0.1, 0.5 after; 1,000
 *     x 100 paths, float64, or DIM x PATHS when smaller): adaptive Heun at
 *     rtol 1e-2 .. 1e-4 against the fewest equal steps (torchsde-style fixed
 *     steps, powers of two) with no larger error, both measured against 2^15
 *     equal steps on the same paths.
 *
 * usage: nsde-bench-adaptive [DIM PATHS [REPS [PART]]]
 *   REPS: repetitions of part 1 (default 2); PART: 1 or 2 runs only that part
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nsde/nsde.h>

static struct nsde_context *ctx;

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != NSDE_OK) {                                                                       \
      fprintf(stderr, "nsde-bench-adaptive: %s: %s\n", #call, nsde_context_last_error(ctx));       \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

static int transient(void *u, double t, int64_t batch, int64_t dim, const void *xv, void *ov)
{
  const double *x = xv;
  double *o = ov, k = t < 0.1 ? 50.0 : 0.5;
  for (int64_t i = 0; i < batch * dim; i++)
    o[i] = -k * (x[i] - 1.0);
  return (void)u, 0;
}

static int64_t last_rejected; /* rejected trial steps of the last run() */

/* Solve from x0 = v; adaptive (rtol > 0) or fixed on n equal steps or on the
 * given interior times. Returns seconds; *steps the grid steps. */
static double run(const struct nsde_sde *sde, enum nsde_dtype dt, int64_t batch, int64_t dim,
                  double v, double rtol, int64_t n, const double *times, int64_t n_times,
                  struct nsde_tensor *x, int64_t *steps, double **grid)
{
  struct nsde_solver_config c;
  struct nsde_solver *s;
  int64_t shape[2] = {batch, dim};
  const double *t;
  double t0;

  nsde_solver_config_init(&c);
  c.scheme = NSDE_SCHEME_HEUN;
  c.seed = 1;
  c.brownian_steps = 8;
  c.n_steps = rtol > 0 ? 8 : times ? 1 : n;
  c.save_at = times;
  c.n_save = times ? n_times : 0;
  c.adaptive = rtol > 0;
  c.rtol = rtol > 0 ? rtol : 1e-3;
  c.atol = c.rtol * 1e-2;
  c.max_steps = 1 << 16;
  (void)dt;
  CHECK(nsde_solver_new(sde, &c, 2, shape, &s));
  CHECK(nsde_tensor_fill(x, v));
  t0 = now();
  CHECK(nsde_solve(s, x, NULL));
  t0 = now() - t0;
  *steps = nsde_solver_get_times(s, &t);
  {
    struct nsde_solver_stats st;
    st.size = sizeof(st);
    CHECK(nsde_solver_get_stats(s, &st));
    last_rejected = st.rejected;
  }
  if (grid) {
    *grid = malloc((size_t)(*steps + 1) * sizeof(double));
    memcpy(*grid, t, (size_t)(*steps + 1) * sizeof(double));
  }
  nsde_solver_free(s);
  return t0;
}

static double maxdiff(const struct nsde_tensor *a, const struct nsde_tensor *b)
{
  const double *p = nsde_tensor_data_const(a), *q = nsde_tensor_data_const(b);
  double e = 0.0;
  for (int64_t i = 0; i < nsde_tensor_numel(a); i++)
    e = fmax(e, fabs(p[i] - q[i]));
  return e;
}

int main(int argc, char **argv)
{
  int64_t dim = argc > 2 ? atoll(argv[1]) : 1000, paths = argc > 2 ? atoll(argv[2]) : 10000;
  const int reps = argc > 3 ? atoi(argv[3]) : 2, part = argc > 4 ? atoi(argv[4]) : 0;
  struct nsde_func *f, *g, *ft, *ga;
  struct nsde_sde *sde, *tr;
  struct nsde_tensor *x, *ref, *y;
  int64_t shape[2] = {paths, dim}, na, nf, tshape[2];
  double *grid, ta, tf;

  if (dim < 1 || paths < 1 || reps < 1 || part < 0 || part > 2) {
    fprintf(stderr, "usage: nsde-bench-adaptive [DIM PATHS [REPS [PART]]]\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  CHECK(nsde_context_new(&ctx));
  /* 1. overhead per accepted step */
  CHECK(nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT32, -1.0, 0.0, &f));
  CHECK(nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT32, 0.5, &g));
  CHECK(nsde_sde_new(ctx, f, g, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_STRATONOVICH, &sde));
  CHECK(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, shape, &x));
  printf("overhead: %lld x %lld float32, Heun, rtol 1e-2, %d threads\n", (long long)paths,
         (long long)dim, nsde_context_threads(ctx));
  for (int rep = 0; part != 2 && rep < reps; rep++) {
    int64_t rej;
    ta = run(sde, NSDE_DTYPE_FLOAT32, paths, dim, 1.0, 1e-2, 0, NULL, 0, x, &na, &grid);
    rej = last_rejected;
    tf = run(sde, NSDE_DTYPE_FLOAT32, paths, dim, 1.0, 0, 0, grid + 1, na - 1, x, &nf, NULL);
    printf("  adaptive %lld steps + %lld rejected %.3f s (%.1f ms/accepted step, %.1f ms/trial); "
           "fixed, same grid, %lld steps %.3f s (%.1f ms/step); ratio per accepted step %.2f, "
           "per trial %.2f\n",
           (long long)na, (long long)rej, ta, 1e3 * ta / (double)na, 1e3 * ta / (double)(na + rej),
           (long long)nf, tf, 1e3 * tf / (double)nf, ta / tf,
           ta / (double)(na + rej) / (tf / (double)nf));
    free(grid);
  }
  nsde_tensor_free(x);
  /* 2. steps saved at equal error */
  if (part != 1) {
    struct nsde_func_ops ops = {sizeof(ops), transient, NULL, NULL, NULL};
    CHECK(nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &ops, NULL, 0, NULL, &ft));
    CHECK(nsde_func_new_additive(ctx, NSDE_DTYPE_FLOAT64, 0.05, &ga));
    CHECK(nsde_sde_new(ctx, ft, ga, NSDE_NOISE_ADDITIVE, NSDE_CALCULUS_STRATONOVICH, &tr));
    tshape[0] = paths < 100 ? paths : 100; /* 100 x 1,000 unless DIM PATHS are smaller */
    tshape[1] = dim < 1000 ? dim : 1000;
    CHECK(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, tshape, &ref));
    CHECK(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, tshape, &y));
    run(tr, NSDE_DTYPE_FLOAT64, tshape[0], tshape[1], 5.0, 0, 1 << 15, NULL, 0, ref, &nf, NULL);
    printf("steps at equal error: %lld x %lld float64, transient (rate 50 until t = 0.1), Heun\n",
           (long long)tshape[0], (long long)tshape[1]);
    for (double rtol = 1e-2; rtol > 1e-5; rtol /= 10) {
      double e, ef = INFINITY, tfix = 0.0;
      int64_t n = 4;
      ta = run(tr, NSDE_DTYPE_FLOAT64, tshape[0], tshape[1], 5.0, rtol, 0, NULL, 0, y, &na, NULL);
      e = maxdiff(y, ref);
      for (; n <= (1 << 15); n *= 2) {
        tfix = run(tr, NSDE_DTYPE_FLOAT64, tshape[0], tshape[1], 5.0, 0, n, NULL, 0, y, &nf, NULL);
        if ((ef = maxdiff(y, ref)) <= e)
          break;
      }
      printf("  rtol %.0e: adaptive %5lld steps, error %.2e, %.3f s; equal steps %6lld, error "
             "%.2e, %.3f s; steps saved %.1fx, time %.2fx\n",
             rtol, (long long)na, e, ta, (long long)n, ef, tfix, (double)n / (double)na, tfix / ta);
    }
    nsde_tensor_free(ref);
    nsde_tensor_free(y);
    nsde_sde_free(tr);
    nsde_func_free(ft);
    nsde_func_free(ga);
  }
  nsde_sde_free(sde);
  nsde_func_free(f);
  nsde_func_free(g);
  nsde_context_free(ctx);
  return 0;
}
