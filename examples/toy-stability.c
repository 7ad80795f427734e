/*
 * toy-stability: the paper's Fig. 1. dx = x dt + sigma x dW on [0, T], x(0) = 1,
 * for sigma = 0 (the ODE: x = e^t, diverges) and sigma = 2.8 (the Lyapunov
 * exponent 1 - sigma^2/2 = -2.92 is negative: almost every path decays).
 *
 * The mean of x itself is e^t for every sigma (a handful of rare, huge paths
 * carry it), so the picture averages log10|x| over the paths, with the 10th
 * and 90th percentiles, beside the exact Lyapunov line (1 - sigma^2/2) t / ln 10.
 *
 * usage: toy-stability [--short] [--out DIR] [--paths N]
 * Writes DIR/toy-stability.dat and, if gnuplot is installed, DIR/toy-stability.png.
 * Exits 1 if the noisy system does not decay (the paper's claim fails).
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nsde/nsde.h>

#define NT 101

static int cmp_d(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
  const char *out = ".";
  int64_t paths = 2000, steps = 2000;
  const double T = 5.0, sigmas[2] = {0.0, 2.8};
  double times[NT], stats[2][NT][3];
  struct nsde_context *ctx;
  char path[4096];
  FILE *fp;
  int ok = 1;

  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--short")) {
      paths = 300;
      steps = 500;
    } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
      out = argv[++i];
    } else if (!strcmp(argv[i], "--paths") && i + 1 < argc) {
      paths = atoll(argv[++i]);
    } else {
      fprintf(stderr, "usage: toy-stability [--short] [--out DIR] [--paths N]\n");
      return 2;
    }
  }
  if (paths < 10 || paths > 10000000) {
    fprintf(stderr, "toy-stability: --paths must be between 10 and 1e7\n");
    return 2;
  }
  for (int k = 0; k < NT; k++)
    times[k] = T * k / (NT - 1);
  if (nsde_context_new(&ctx) != NSDE_OK)
    return 2;
  for (int s = 0; s < 2; s++) {
    struct nsde_func *f, *g = NULL;
    struct nsde_sde *sde;
    struct nsde_solver_config cfg;
    struct nsde_solver *solver;
    struct nsde_tensor *x, *saved;
    int64_t shape[2] = {paths, 1}, sshape[2] = {NT, paths};
    double *col = malloc((size_t)paths * sizeof(double));
    enum nsde_status st;

    st = nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT64, 1.0, 0.0, &f);
    if (st == NSDE_OK && sigmas[s] > 0)
      st = nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT64, sigmas[s], &g);
    if (st == NSDE_OK)
      st = nsde_sde_new(ctx, f, g, g ? NSDE_NOISE_DIAGONAL : NSDE_NOISE_NONE, NSDE_CALCULUS_ITO,
                        &sde);
    if (st != NSDE_OK) {
      fprintf(stderr, "toy-stability: %s\n", nsde_context_last_error(ctx));
      return 2;
    }
    nsde_solver_config_init(&cfg);
    cfg.scheme = NSDE_SCHEME_MILSTEIN;
    cfg.t1 = T;
    cfg.n_steps = steps;
    cfg.save_at = times;
    cfg.n_save = NT;
    cfg.seed = 1;
    st = nsde_solver_new(sde, &cfg, 2, shape, &solver);
    if (st == NSDE_OK)
      st = nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &x);
    if (st == NSDE_OK)
      st = nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, sshape, &saved);
    if (st == NSDE_OK)
      st = nsde_tensor_fill(x, 1.0);
    if (st == NSDE_OK)
      st = nsde_solve(solver, x, saved);
    if (st != NSDE_OK || !col) {
      fprintf(stderr, "toy-stability: %s\n", nsde_context_last_error(ctx));
      return 2;
    }
    for (int k = 0; k < NT; k++) {
      const double *xs = (const double *)nsde_tensor_data(saved) + (size_t)k * paths;
      double mean = 0;
      for (int64_t i = 0; i < paths; i++) {
        col[i] = log10(fabs(xs[i]) + 1e-300);
        mean += col[i] / (double)paths;
      }
      qsort(col, (size_t)paths, sizeof(double), cmp_d);
      stats[s][k][0] = mean;
      stats[s][k][1] = col[paths / 10];
      stats[s][k][2] = col[paths - 1 - paths / 10];
    }
    free(col);
    nsde_tensor_free(saved);
    nsde_tensor_free(x);
    nsde_solver_free(solver);
    nsde_sde_free(sde);
    nsde_func_free(g);
    nsde_func_free(f);
  }
  nsde_context_free(ctx);

  snprintf(path, sizeof(path), "%s/toy-stability.dat", out);
  fp = fopen(path, "w");
  if (!fp) {
    perror(path);
    return 2;
  }
  fprintf(fp, "# t  mean_log10|x| p10 p90 (sigma=0)  mean p10 p90 (sigma=2.8)  lyapunov(2.8)\n");
  for (int k = 0; k < NT; k++)
    fprintf(fp, "%g %g %g %g %g %g %g %g\n", times[k], stats[0][k][0], stats[0][k][1],
            stats[0][k][2], stats[1][k][0], stats[1][k][1], stats[1][k][2],
            (1 - 2.8 * 2.8 / 2) * times[k] / log(10.0));
  fclose(fp);
  printf("toy-stability: wrote %s\n", path);
  printf("t=%g mean log10|x|: sigma=0 %.3f (exact %.3f), sigma=2.8 %.3f (Lyapunov %.3f)\n", T,
         stats[0][NT - 1][0], T / log(10.0), stats[1][NT - 1][0],
         (1 - 2.8 * 2.8 / 2) * T / log(10.0));
  /* the claim: without noise it grows, with sigma = 2.8 it decays */
  ok = stats[0][NT - 1][0] > 2.0 && stats[1][NT - 1][0] < -3.0;

  if (system("command -v gnuplot >/dev/null 2>&1") == 0) {
    char cmd[8192];
    snprintf(cmd, sizeof(cmd),
             "gnuplot -e \"set terminal png size 800,500; set output '%s/toy-stability.png'; "
             "set title 'dx = x dt + sigma x dW: log10|x(t)| over paths (band: 10-90%%)'; "
             "set xlabel 't'; set ylabel 'log10 |x|'; set key left bottom; "
             "plot '%s' u 1:6:7 w filledcurves lc rgb '#ccccff' t 'sigma=2.8, 10-90%% of paths', "
             "'' u 1:2 w l lw 2 lc rgb 'red' t 'sigma=0 (the ODE)', "
             "'' u 1:5 w l lw 2 lc rgb 'blue' t 'sigma=2.8 mean', "
             "'' u 1:8 w l dt 2 lc rgb 'black' t 'Lyapunov exponent line'\"",
             out, path);
    if (system(cmd) == 0)
      printf("toy-stability: wrote %s/toy-stability.png\n", out);
    else
      fprintf(stderr, "toy-stability: gnuplot failed; the data file is complete\n");
  } else {
    printf("toy-stability: gnuplot not found, skipped the PNG\n");
  }
  return ok ? 0 : 1;
}
