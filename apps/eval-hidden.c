/*
 * nsde-eval's hidden-state perturbation curve (paper, Fig. 4), per image,
 * then averaged over the first --hidden-images test images: the authors'
 * attack at eps 0.1, the hidden state averaged over noisy passes on the same
 * Brownian paths for the clean and the attacked image. Public API only.
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L
#include "eval.h"

/* hidden.csv: eps_t, its standard error over the images; and the summary line. */
static int write_hidden(const char *outdir, double t1, int nt, const double *sum,
                        const double *sum2, int64_t nimg, int64_t passes)
{
  char path[4096];
  FILE *fh;
  snprintf(path, sizeof(path), "%s/hidden.csv", outdir);
  fh = fopen(path, "w");
  if (!fh) {
    fprintf(stderr, "nsde-eval: cannot write %s\n", path);
    return 1;
  }
  fprintf(fh, "t,eps_t,se,images\n");
  for (int t = 0; t <= nt; t++) {
    double mu = sum[t] / (double)nimg, var = sum2[t] / (double)nimg - mu * mu;
    double se =
        nimg > 1 ? sqrt(fmax(var, 0.0) * (double)nimg / (double)(nimg - 1) / (double)nimg) : NAN;
    fprintf(fh, "%g,%.6g,%.6g,%lld\n", t1 * t / nt, mu, se, (long long)nimg);
  }
  fclose(fh);
  printf("nsde-eval: hidden-state perturbation (eps 0.1 attack, %lld passes, mean over %lld "
         "images): eps_T %.4g (eps at t = 0: %.4g) in %s\n",
         (long long)passes, (long long)nimg, sum[nt] / (double)nimg, sum[0] / (double)nimg, path);
  return 0;
}

int eval_hidden(const struct eval *E, int hpasses, int64_t himages)
{
  const struct nsde_model_config cfg = E->cfg;
  const char *outdir = E->outdir;
  const int c = E->c, h = E->h, w = E->w;
  struct nsde_context *ctx = E->ctx;
  struct nsde_model *m = E->m;
  struct nsde_dataset *ds = E->ds;
  const int64_t n = E->n, item = E->item;
  const int bs = E->bs, steps = E->steps;
  const unsigned long long seed = E->seed;
  int rc = 0;

  if (hpasses > 0) {
    const int nt = 50, chunk = bs < 16 ? bs : 16;
    int64_t one[4] = {1, c, h, w}, cs[4] = {chunk, c, h, w}, sdim = 0;
    struct nsde_tensor *x1, *g1, *xc, *traj = NULL;
    float *x0 = malloc(sizeof(float) * (size_t)item), *mo = malloc(sizeof(float) * (size_t)item);
    float *vo = malloc(sizeof(float) * (size_t)item);
    double *mean[2] = {NULL, NULL}, *sum = calloc((size_t)nt + 1, sizeof(double));
    double *sum2 = calloc((size_t)nt + 1, sizeof(double));
    int32_t lab;
    int64_t passes = cfg.noise == NSDE_MODEL_NOISE_ODE ? 1 : hpasses,
            nimg = himages < n ? himages : n;
    struct nsde_loss_options lo; /* the attack's steps: dL/dx only */
    ex_check(ctx, nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, one, &x1), "tensor");
    ex_check(ctx, nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, one, &g1), "tensor");
    nsde_loss_options_init(&lo);
    lo.grad_images = g1;
    lo.no_param_grads = 1;
    ex_check(ctx, nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, cs, &xc), "tensor");
    for (int64_t img = 0; img < nimg; img++) {
      ex_check(ctx, nsde_dataset_batch(ds, &img, 1, 0, 0, x1, &lab), "batch");
      memcpy(x0, nsde_tensor_data(x1), sizeof(float) * (size_t)item);
      memset(mo, 0, sizeof(float) * (size_t)item);
      memset(vo, 0, sizeof(float) * (size_t)item);
      for (int st = 0; st < (steps > 0 ? steps : 40); st++) { /* the authors' attack, eps 0.1 */
        float *xd1 = nsde_tensor_data(x1), *gd1 = nsde_tensor_data(g1);
        ex_check(ctx,
                 nsde_model_loss_grad_opts(
                     m, x1, &lab, 1, seed + 31337 + (unsigned long long)(img * 1000 + st), &lo),
                 "attack gradient");
        for (int64_t i = 0; i < item; i++)
          xd1[i] -= adam_delta(&mo[i], &vo[i], -gd1[i], 0.005, st);
        project(xd1, x0, item, 0.1);
      }
      for (int which = 0; which < 2; which++) { /* 0: clean, 1: attacked; the same paths */
        const float *src = which ? (const float *)nsde_tensor_data(x1) : x0;
        for (int64_t done = 0; done < passes; done += chunk) {
          const int64_t nb = passes - done < chunk ? passes - done : chunk;
          for (int k = 0; k < chunk; k++)
            memcpy((float *)nsde_tensor_data(xc) + k * item, src, sizeof(float) * (size_t)item);
          if (!traj) {
            int64_t ts[1];
            int scn, shh, sww;
            ex_check(ctx, nsde_model_get_state_shape(m, &scn, &shh, &sww), "state shape");
            sdim = (int64_t)scn * shh * sww;
            ts[0] = (nt + 1) * chunk * sdim;
            ex_check(ctx, nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 1, ts, &traj),
                     "trajectory tensor");
            mean[0] = malloc(sizeof(double) * (size_t)((nt + 1) * sdim));
            mean[1] = malloc(sizeof(double) * (size_t)((nt + 1) * sdim));
          }
          if (done == 0)
            memset(mean[which], 0, sizeof(double) * (size_t)((nt + 1) * sdim));
          ex_check(ctx,
                   nsde_model_trajectory(m, xc, cfg.noise != NSDE_MODEL_NOISE_ODE,
                                         seed + 555 + (unsigned long long)(img * 100000 + done), nt,
                                         traj),
                   "trajectory");
          for (int t = 0; t <= nt; t++)
            for (int64_t k = 0; k < nb; k++) {
              const float *st_ =
                  (const float *)nsde_tensor_data(traj) + ((int64_t)t * chunk + k) * sdim;
              for (int64_t i = 0; i < sdim; i++)
                mean[which][(int64_t)t * sdim + i] += st_[i] / (double)passes;
            }
        }
      }
      for (int t = 0; t <= nt; t++) {
        double num = 0, den = 0, e;
        for (int64_t i = 0; i < sdim; i++) {
          double a = mean[1][(int64_t)t * sdim + i], b = mean[0][(int64_t)t * sdim + i];
          num += (a - b) * (a - b);
          den += b * b;
        }
        e = sqrt(num) / sqrt(den > 0 ? den : 1);
        sum[t] += e;
        sum2[t] += e * e;
      }
    }
    rc = write_hidden(outdir, cfg.t1, nt, sum, sum2, nimg, passes);
    free(x0);
    free(mo);
    free(vo);
    free(mean[0]);
    free(mean[1]);
    free(sum);
    free(sum2);
    nsde_tensor_free(x1);
    nsde_tensor_free(g1);
    nsde_tensor_free(xc);
    nsde_tensor_free(traj);
  }

  return rc;
}
