/*
 * nsde-eval's hidden-state perturbation curve (paper, Fig. 4), per image,
 * then averaged over the first --hidden-images test images: the authors'
 * attack at eps 0.1, the hidden state averaged over noisy passes on the same
 * Brownian paths for the clean and the attacked image; for an SDE also the
 * same curve with the noise off (one deterministic pass), which separates
 * what averaging the noise does from what the learned map does; each
 * image's ends (eps_0, eps_T) go to hidden-images.csv for paired
 * comparisons. Public API only.
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L
#include "eval.h"

/* OUTDIR/NAME: eps_t, its standard error over the images; and the summary line. */
static int write_hidden(const char *outdir, const char *name, double t1, int nt, const double *sum,
                        const double *sum2, int64_t nimg, int64_t passes)
{
  char path[4096];
  FILE *fh;
  snprintf(path, sizeof(path), "%s/%s", outdir, name);
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
  printf("nsde-eval: hidden-state perturbation (eps 0.1 attack, %lld %s, mean over %lld "
         "images): eps_T %.4g (eps at t = 0: %.4g) in %s\n",
         (long long)passes, passes > 1 ? "passes" : "pass, noise off", (long long)nimg,
         sum[nt] / (double)nimg, sum[0] / (double)nimg, path);
  return 0;
}

static void no_memory(void)
{
  fprintf(stderr, "nsde-eval: out of memory for the hidden-state curve\n");
  exit(1);
}

/* What the curves need: the model's state size, chunk copies of one image,
 * their trajectories (nt + 1 states each), the mean state over the passes
 * of the clean (0) and the attacked (1) image, and per curve (0: as the
 * model runs, 1: noise off) the sums of eps_t and its square over images. */
struct hcurve {
  int nt, chunk;
  int64_t sdim;
  struct nsde_tensor *xc, *traj;
  double *mean[2], *sum[2], *sum2[2];
  double *ends[2]; /* per image: eps_0 and eps_T of curve k */
};

static void hcurve_new(const struct eval *E, struct hcurve *H, int64_t nimg)
{
  int64_t cs[4] = {H->chunk, E->c, E->h, E->w}, ts[1];
  int scn, shh, sww;
  ex_check(E->ctx, nsde_tensor_new(E->ctx, NSDE_DTYPE_FLOAT32, 4, cs, &H->xc), "tensor");
  ex_check(E->ctx, nsde_model_get_state_shape(E->m, &scn, &shh, &sww), "state shape");
  H->sdim = (int64_t)scn * shh * sww;
  ts[0] = (H->nt + 1) * H->chunk * H->sdim;
  ex_check(E->ctx, nsde_tensor_new(E->ctx, NSDE_DTYPE_FLOAT32, 1, ts, &H->traj),
           "trajectory tensor");
  for (int k = 0; k < 2; k++) {
    H->mean[k] = malloc(sizeof(double) * (size_t)((H->nt + 1) * H->sdim));
    H->sum[k] = calloc((size_t)H->nt + 1, sizeof(double));
    H->sum2[k] = calloc((size_t)H->nt + 1, sizeof(double));
    H->ends[k] = calloc((size_t)nimg * 2, sizeof(double));
    if (!H->mean[k] || !H->sum[k] || !H->sum2[k] || !H->ends[k])
      no_memory();
  }
}

static void hcurve_free(struct hcurve *H)
{
  nsde_tensor_free(H->xc);
  nsde_tensor_free(H->traj);
  for (int k = 0; k < 2; k++) {
    free(H->mean[k]);
    free(H->sum[k]);
    free(H->sum2[k]);
    free(H->ends[k]);
  }
}

/* The authors' attack at eps 0.1 on test image img: x0 the clean image, x1
 * the attacked one (mo, vo: Adam's moments, g1 the image gradient). */
static void attack_image(const struct eval *E, int64_t img, float *x0, struct nsde_tensor *x1,
                         struct nsde_tensor *g1, float *mo, float *vo)
{
  const int64_t item = E->item;
  struct nsde_loss_options lo; /* the attack's steps: dL/dx only */
  int32_t lab;
  nsde_loss_options_init(&lo);
  lo.grad_images = g1;
  lo.no_param_grads = 1;
  ex_check(E->ctx, nsde_dataset_batch(E->ds, &img, 1, 0, 0, x1, &lab), "batch");
  memcpy(x0, nsde_tensor_data(x1), sizeof(float) * (size_t)item);
  memset(mo, 0, sizeof(float) * (size_t)item);
  memset(vo, 0, sizeof(float) * (size_t)item);
  for (int st = 0; st < (E->steps > 0 ? E->steps : 40); st++) {
    float *xd1 = nsde_tensor_data(x1), *gd1 = nsde_tensor_data(g1);
    ex_check(E->ctx,
             nsde_model_loss_grad_opts(
                 E->m, x1, &lab, 1, E->seed + 31337 + (unsigned long long)(img * 1000 + st), &lo),
             "attack gradient");
    for (int64_t i = 0; i < item; i++)
      xd1[i] -= adam_delta(&mo[i], &vo[i], -gd1[i], 0.005, st);
    project(xd1, x0, item, 0.1);
  }
}

/* H->mean[which]: the hidden state of image src averaged over passes, with
 * the noise on or off (passes from the same Brownian paths for either image). */
static void mean_states(const struct eval *E, struct hcurve *H, const float *src, int which,
                        int noise, int64_t passes, int64_t img)
{
  const int nt = H->nt, chunk = H->chunk;
  const int64_t sdim = H->sdim;
  double *mean = H->mean[which];
  memset(mean, 0, sizeof(double) * (size_t)((nt + 1) * sdim));
  for (int k = 0; k < chunk; k++)
    memcpy((float *)nsde_tensor_data(H->xc) + k * E->item, src, sizeof(float) * (size_t)E->item);
  for (int64_t done = 0; done < passes; done += chunk) {
    const int64_t nb = passes - done < chunk ? passes - done : chunk;
    ex_check(E->ctx,
             nsde_model_trajectory(E->m, H->xc, noise,
                                   E->seed + 555 + (unsigned long long)(img * 100000 + done), nt,
                                   H->traj),
             "trajectory");
    for (int t = 0; t <= nt; t++)
      for (int64_t k = 0; k < nb; k++) {
        const float *st =
            (const float *)nsde_tensor_data(H->traj) + ((int64_t)t * chunk + k) * sdim;
        for (int64_t i = 0; i < sdim; i++)
          mean[(int64_t)t * sdim + i] += st[i] / (double)passes;
      }
  }
}

/* eps_t = |mean h_t(x_adv) - mean h_t(x)| / |mean h_t(x)| into curve k's
 * sums, and its ends into image img's entry. */
static void add_eps(struct hcurve *H, int k, int64_t img)
{
  for (int t = 0; t <= H->nt; t++) {
    double num = 0, den = 0, e;
    for (int64_t i = 0; i < H->sdim; i++) {
      double a = H->mean[1][(int64_t)t * H->sdim + i], b = H->mean[0][(int64_t)t * H->sdim + i];
      num += (a - b) * (a - b);
      den += b * b;
    }
    e = sqrt(num) / sqrt(den > 0 ? den : 1);
    H->sum[k][t] += e;
    H->sum2[k][t] += e * e;
    if (t == 0 || t == H->nt)
      H->ends[k][img * 2 + (t > 0)] = e;
  }
}

/* OUTDIR/hidden-images.csv: each image's eps_0 and eps_T per curve ("model":
 * as the model runs, noise averaged over the passes; "noise-off": an SDE
 * with its noise off), for comparisons paired over the images. */
static int write_ends(const char *outdir, const struct hcurve *H, int64_t nimg, int sde)
{
  char path[4096];
  FILE *fh;
  snprintf(path, sizeof(path), "%s/hidden-images.csv", outdir);
  fh = fopen(path, "w");
  if (!fh) {
    fprintf(stderr, "nsde-eval: cannot write %s\n", path);
    return 1;
  }
  fprintf(fh, "curve,image,eps_0,eps_T\n");
  for (int k = 0; k <= sde; k++)
    for (int64_t i = 0; i < nimg; i++)
      fprintf(fh, "%s,%lld,%.6g,%.6g\n", k ? "noise-off" : "model", (long long)i, H->ends[k][i * 2],
              H->ends[k][i * 2 + 1]);
  fclose(fh);
  return 0;
}

int eval_hidden(const struct eval *E, int hpasses, int64_t himages)
{
  const int sde = E->cfg.noise != NSDE_MODEL_NOISE_ODE;
  const int64_t item = E->item, passes = sde ? hpasses : 1;
  const int64_t nimg = himages < E->n ? himages : E->n, one[4] = {1, E->c, E->h, E->w};
  struct hcurve H = {.nt = 50, .chunk = E->bs < 16 ? E->bs : 16};
  struct nsde_tensor *x1, *g1;
  float *x0, *mo, *vo;
  int rc;

  if (hpasses <= 0)
    return 0;
  x0 = malloc(sizeof(float) * (size_t)item);
  mo = malloc(sizeof(float) * (size_t)item);
  vo = malloc(sizeof(float) * (size_t)item);
  if (!x0 || !mo || !vo)
    no_memory();
  ex_check(E->ctx, nsde_tensor_new(E->ctx, NSDE_DTYPE_FLOAT32, 4, one, &x1), "tensor");
  ex_check(E->ctx, nsde_tensor_new(E->ctx, NSDE_DTYPE_FLOAT32, 4, one, &g1), "tensor");
  hcurve_new(E, &H, nimg);
  for (int64_t img = 0; img < nimg; img++) {
    attack_image(E, img, x0, x1, g1, mo, vo);
    for (int k = 0; k <= sde; k++) { /* 0: as the model runs; 1: an SDE with its noise off */
      const int noise = sde && k == 0;
      mean_states(E, &H, x0, 0, noise, noise ? passes : 1, img);
      mean_states(E, &H, nsde_tensor_data(x1), 1, noise, noise ? passes : 1, img);
      add_eps(&H, k, img);
    }
  }
  rc = write_hidden(E->outdir, "hidden.csv", E->cfg.t1, H.nt, H.sum[0], H.sum2[0], nimg, passes);
  if (rc == 0 && sde)
    rc = write_hidden(E->outdir, "hidden-noise-off.csv", E->cfg.t1, H.nt, H.sum[1], H.sum2[1], nimg,
                      1);
  if (rc == 0)
    rc = write_ends(E->outdir, &H, nimg, sde);
  hcurve_free(&H);
  free(x0);
  free(mo);
  free(vo);
  nsde_tensor_free(x1);
  nsde_tensor_free(g1);
  return rc;
}
