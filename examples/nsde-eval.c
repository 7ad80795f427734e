/*
 * nsde-eval: evaluate a trained model (paper, section 7).
 *
 *   nsde-eval --model MODEL --data fashion-mnist|cifar10|stl10 [--data-dir DIR]
 *             [--subset N] [--ttn PASSES] [--attack-images N] [--attack-steps S]
 *             [--eps 0,0.05,...] [--attacks authors,pgd,cw] [--cw-c C] [--severities 5]
 *             [--corruption-passes P] [--corruption-images N] [--hidden-curve PASSES]
 *             [--hidden-images N]
 *             [--out DIR] [--threads T]
 *             [--seed S]
 *
 * Clean accuracy without noise and with the test-time noise ensemble (TTN:
 * summed softmax of PASSES noisy passes). l2 attacks, noise on while
 * attacking (one Brownian path per gradient), classification with TTN:
 *  - authors: Adam on the cross-entropy, lr 0.005, projection on the l2 ball
 *    and [0, 1] after every step (the paper's code);
 *  - pgd: l2 PGD, steps of 2.5 eps / S along the normalised gradient, same
 *    projections;
 *  - cw: Carlini-Wagner l2 (tanh box, Adam lr 0.01, fixed c, kappa 0), run
 *    once per batch; an image counts as broken at budget eps when the
 *    smallest adversarial found is within eps.
 * Every attack returns the clean image when that is already misclassified
 * (with the same TTN noise), so accuracy never exceeds the eps = 0 value.
 * CIFAR-10-C style corruptions computed from the images (examples/corrupt.h:
 * Gaussian, shot, impulse, speckle noise; Gaussian and defocus blur;
 * contrast, brightness, saturation; pixelate; JPEG via libjpeg), severities
 * 1..5. --corruption-report N prints each family's mean |change| per
 * severity on N images and exits. --hidden-curve PASSES: the paper's Fig. 4
 * on each of the first --hidden-images N test images (default 1), averaged
 * over them (hidden.csv: t, mean eps_t, its standard error over the images,
 * N): the authors' attack at eps 0.1, then the hidden
 * state averaged over PASSES noisy passes (50 Euler-Maruyama steps, the same
 * Brownian paths for the clean and the attacked image), and
 * eps_t = |mean h_t(x_adv) - mean h_t(x)| / |mean h_t(x)| written to
 * DIR/hidden.csv. Writes DIR/summary.csv, DIR/attack.csv
 * (method,eps,accuracy,mean_l2) and DIR/corruption.csv. Public API only.
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>

#include "common.h"

#include "corrupt.h"

static int correct_one(const float *probs, int32_t label, int classes)
{
  int best = 0;
  for (int k = 1; k < classes; k++)
    if (probs[k] > probs[best])
      best = k;
  return best == label;
}

/* Binomial standard error of an accuracy p measured on n images. */
static double bse(double p, int64_t n)
{
  return n > 0 ? sqrt(p * (1.0 - p) / (double)n) : NAN;
}

static double l2dist(const float *a, const float *b, int64_t n)
{
  double s = 0;
  for (int64_t i = 0; i < n; i++)
    s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
  return sqrt(s);
}

/* One Adam step for one coordinate with gradient g (moments m, v; step
 * counted from 0): the amount to subtract. */
static float adam_delta(float *m, float *v, double g, double lr, int step)
{
  const double b1 = 0.9, b2 = 0.999;
  *m = (float)(b1 * *m + (1 - b1) * g);
  *v = (float)(b2 * *v + (1 - b2) * g * g);
  return (float)(lr * (*m / (1 - pow(b1, step + 1))) / (sqrt(*v / (1 - pow(b2, step + 1))) + 1e-8));
}

/* Project x on the l2 ball of radius eps around x0, then on [0, 1]. */
static void project(float *x, const float *x0, int64_t n, double eps)
{
  double nrm = l2dist(x, x0, n), f = nrm > eps ? eps / nrm : 1.0;
  for (int64_t i = 0; i < n; i++)
    x[i] = (float)fmin(1.0, fmax(0.0, x0[i] + f * ((double)x[i] - x0[i])));
}

static int64_t count_correct(const float *probs, const int32_t *labels, int64_t count, int classes)
{
  int64_t hits = 0;
  for (int64_t b = 0; b < count; b++) {
    int best = 0;
    for (int k = 1; k < classes; k++)
      if (probs[b * classes + k] > probs[b * classes + best])
        best = k;
    hits += best == labels[b];
  }
  return hits;
}

int main(int argc, char **argv)
{
  const char *model_path = NULL, *data = "fashion-mnist", *dir = NULL, *outdir = ".";
  long subset = 1000, attack_images = 200;
  int ttn = 100, steps = 40, severities = 5, threads = 0, cpasses = -1, report = 0, hpasses = 0;
  long cimages = 0, himages = 1;
  int use_attack[3] = {1, 1, 1};
  double cw_c = 1.0;
  static const char *const attack_names[3] = {"authors", "pgd", "cw"};
  double eps_list[32] = {0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5};
  int neps = 11;
  unsigned long long seed = 12345;
  struct nsde_context *ctx;
  struct nsde_model *m = NULL;
  struct nsde_model_config cfg;
  struct nsde_dataset *ds;
  struct nsde_tensor *x = NULL, *probs = NULL, *gx = NULL;
  int32_t *labels = NULL;
  int64_t *idx = NULL, n, item;
  int c, h, w, classes, bs;
  char path[4096];
  FILE *fs = NULL, *fa = NULL, *fc = NULL;
  int status = 0;
  double t0 = ex_now();

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && ++i)
    static const char *const datas[] = {"fashion-mnist", "cifar10", "stl10", NULL};
    const char *P = "nsde-eval";
    if (OPT("--model")) model_path = v;
    else if (OPT("--data")) data = ex_choice(P, a, v, datas);
    else if (OPT("--data-dir")) dir = v;
    else if (OPT("--subset")) subset = (long)ex_int(P, a, v, 1, 1000000000);
    else if (OPT("--ttn")) ttn = (int)ex_int(P, a, v, 0, 100000);
    else if (OPT("--attack-images")) attack_images = (long)ex_int(P, a, v, 0, 1000000000);
    else if (OPT("--attack-steps")) steps = (int)ex_int(P, a, v, 0, 1000000);
    else if (OPT("--severities")) severities = (int)ex_int(P, a, v, 0, 5);
    else if (OPT("--corruption-passes")) cpasses = (int)ex_int(P, a, v, 0, 100000);
    else if (OPT("--out")) outdir = v;
    else if (OPT("--threads")) threads = (int)ex_int(P, a, v, 0, 1024);
    else if (OPT("--seed")) seed = (unsigned long long)ex_int(P, a, v, 0, (1LL << 62));
    else if (OPT("--cw-c")) cw_c = ex_real(P, a, v, 0, 1e6);
    else if (OPT("--corruption-report")) report = (int)ex_int(P, a, v, 1, 1000000000);
    else if (OPT("--hidden-curve")) hpasses = (int)ex_int(P, a, v, 0, 100000);
    else if (OPT("--hidden-images")) himages = (long)ex_int(P, a, v, 1, 1000000);
    else if (OPT("--corruption-images")) cimages = (long)ex_int(P, a, v, 0, 1000000000);
    else if (OPT("--attacks")) {
      char buf[256];
      const char *p = v;
      for (int k = 0; k < 3; k++)
        use_attack[k] = 0;
      while (*p) {
        size_t len = strcspn(p, ",");
        int k = 0;
        snprintf(buf, sizeof(buf), "%.*s", (int)(len < 255 ? len : 255), p);
        while (k < 3 && strcmp(buf, attack_names[k]))
          k++;
        if (k == 3) {
          fprintf(stderr, "nsde-eval: --attacks '%s': unknown attack '%s' (authors, pgd, cw)\n", v,
                  buf);
          return 2;
        }
        use_attack[k] = 1;
        p += len;
        if (*p == ',')
          p++;
      }
    }
    else if (OPT("--eps")) neps = ex_reals(P, a, v, 0, 1000, eps_list, 32);
    else {
      fprintf(stderr, "usage: nsde-eval --model MODEL --data fashion-mnist|cifar10|stl10 [--data-dir DIR] "
                      "[--subset N] [--ttn PASSES] [--attack-images N] [--attack-steps S] "
                      "[--eps e1,e2,..] [--attacks authors,pgd,cw] [--cw-c C] [--severities 0..5] "
                      "[--corruption-passes P] [--corruption-images N] [--corruption-report N] [--hidden-curve PASSES] [--hidden-images N] "
                      "[--out DIR] [--threads T] "
                      "[--seed S]\n");
      return 2;
    }
#undef OPT
  }
  if (cpasses < 0)
    cpasses = ttn < 10 ? ttn : 10;
  if (report > 0) { /* corruption strength per family and severity, no model needed */
    struct nsde_context *rc;
    struct nsde_dataset *rd;
    struct nsde_tensor *rx;
    int32_t *rl;
    int64_t ri[1] = {0}, rs[4] = {1, 0, 0, 0};
    int rcn, rh, rw, rk;
    ex_check(NULL, nsde_context_new(&rc), "context");
    rd = ex_load(rc, data, dir, NSDE_SPLIT_TEST, report);
    ex_check(rc, nsde_dataset_info(rd, &rcn, &rh, &rw, &rk), "dataset info");
    rs[1] = rcn; rs[2] = rh; rs[3] = rw;
    ex_check(rc, nsde_tensor_new(rc, NSDE_FLOAT32, 4, rs, &rx), "tensor");
    rl = malloc(sizeof(int32_t));
    printf("family,severity,mean_abs_change\n");
    for (int f = 0; f < CORR_N; f++) {
      if (!corr_available(f, rcn))
        continue;
      for (int sev = 0; sev <= 5; sev++) {
        double tot = 0;
        int64_t nimg = nsde_dataset_size(rd), item1 = (int64_t)rcn * rh * rw;
        float *im = malloc(sizeof(float) * (size_t)item1);
        corr_rng = seed * 31 + (unsigned long long)(sev * CORR_N + f);
        for (int64_t i = 0; i < nimg; i++) {
          ri[0] = i;
          ex_check(rc, nsde_dataset_batch(rd, ri, 1, 0, 0, rx, rl), "batch");
          memcpy(im, nsde_tensor_data(rx), sizeof(float) * (size_t)item1);
          if (corrupt_image(im, rcn, rh, rw, f, sev) != 0)
            return 1;
          for (int64_t j = 0; j < item1; j++)
            tot += fabs((double)im[j] - ((float *)nsde_tensor_data(rx))[j]);
        }
        printf("%s,%d,%.6g\n", corr_names[f], sev, tot / (double)(nimg * item1));
        free(im);
      }
    }
    free(rl);
    nsde_tensor_free(rx);
    nsde_dataset_free(rd);
    nsde_context_free(rc);
    return 0;
  }
  if (!model_path || ttn < 0 || steps < 0 || severities < 0 || severities > 5 || subset < 1 ||
      hpasses < 0 || himages < 1 || cimages < 0 || !(cw_c >= 0) || !isfinite(cw_c)) {
    fprintf(stderr, "nsde-eval: --model is required; counts must not be negative\n");
    return 2;
  }
  ex_check(NULL, nsde_context_new(&ctx), "context");
  ex_check(ctx, nsde_context_set_threads(ctx, threads), "threads");
  ds = ex_load(ctx, data, dir, NSDE_SPLIT_TEST, subset);
  ex_check(ctx, nsde_dataset_info(ds, &c, &h, &w, &classes), "dataset info");
  n = nsde_dataset_size(ds);
  bs = n < 100 ? (int)n : 100;
  if (attack_images > 0 && attack_images < bs)
    bs = (int)attack_images; /* the attack runs in whole batches */
  ex_check(ctx, nsde_model_load(ctx, model_path, bs, &m), "loading the model");
  ex_check(ctx, nsde_model_get_config(m, &cfg), "model get config");
  if (cfg.in_channels != c || cfg.in_height != h || cfg.in_width != w || cfg.classes != classes) {
    fprintf(stderr, "nsde-eval: the model takes %dx%dx%d images in %d classes, the data has %dx%dx%d in %d\n",
            cfg.in_channels, cfg.in_height, cfg.in_width, cfg.classes, c, h, w, classes);
    status = 1;
    goto done;
  }
  item = (int64_t)c * h * w;
  {
    int64_t shape[4] = {bs, c, h, w}, ps[2] = {bs, classes};
    ex_check(ctx, nsde_tensor_new(ctx, NSDE_FLOAT32, 4, shape, &x), "tensor");
    ex_check(ctx, nsde_tensor_new(ctx, NSDE_FLOAT32, 4, shape, &gx), "tensor");
    ex_check(ctx, nsde_tensor_new(ctx, NSDE_FLOAT32, 2, ps, &probs), "tensor");
  }
  labels = malloc(sizeof(int32_t) * (size_t)bs);
  idx = malloc(sizeof(int64_t) * (size_t)bs);
  snprintf(path, sizeof(path), "%s/summary.csv", outdir);
  fs = fopen(path, "w");
  snprintf(path, sizeof(path), "%s/attack.csv", outdir);
  fa = fopen(path, "w");
  snprintf(path, sizeof(path), "%s/corruption.csv", outdir);
  fc = fopen(path, "w");
  if (!fs || !fa || !fc) {
    fprintf(stderr, "nsde-eval: cannot write into %s\n", outdir);
    status = 1;
    goto done;
  }

  /* clean: deterministic and TTN */
  {
    int64_t hit0 = 0, hitt = 0;
    for (int64_t b0 = 0; b0 + bs <= n; b0 += bs) {
      for (int k = 0; k < bs; k++) idx[k] = b0 + k;
      ex_check(ctx, nsde_dataset_batch(ds, idx, bs, 0, 0, x, labels), "batch");
      ex_check(ctx, nsde_model_predict(m, x, 0, 0, probs), "predict");
      hit0 += count_correct(nsde_tensor_data(probs), labels, bs, classes);
      if (ttn > 0) {
        ex_check(ctx, nsde_model_predict(m, x, ttn, seed + (unsigned long long)b0 * 1000, probs), "TTN");
        hitt += count_correct(nsde_tensor_data(probs), labels, bs, classes);
      }
    }
    n = n / bs * bs;
    printf("nsde-eval: %s on %lld %s test images: clean accuracy %.4f +- %.4f (noise off)",
           model_path, (long long)n, data, (double)hit0 / n, bse((double)hit0 / n, n));
    if (ttn > 0)
      printf(", %.4f +- %.4f (TTN, %d passes)", (double)hitt / n, bse((double)hitt / n, n), ttn);
    printf(" [+- one binomial standard error]\n");
    fprintf(fs, "metric,value\nimages,%lld\nclean_accuracy,%.6f\nttn_accuracy,%.6f\nttn_passes,%d\n"
                "clean_se,%.6f\nttn_se,%.6f\n",
            (long long)n, (double)hit0 / n, ttn > 0 ? (double)hitt / n : NAN, ttn,
            bse((double)hit0 / n, n), ttn > 0 ? bse((double)hitt / n, n) : NAN);
  }

  /* l2 attacks */
  fprintf(fa, "method,eps,accuracy,mean_l2,se,images\n");
  if (attack_images > 0 && steps > 0) {
    const int64_t na = attack_images < n ? attack_images / bs * bs : n / bs * bs, nab = na / bs;
    const int64_t tot = bs * item;
    float *x0 = malloc(sizeof(float) * (size_t)tot), *mo = malloc(sizeof(float) * (size_t)tot);
    float *vo = malloc(sizeof(float) * (size_t)tot), *wv = malloc(sizeof(float) * (size_t)tot);
    float *best = malloc(sizeof(float) * (size_t)tot);
    unsigned char *clean_ok = malloc((size_t)na);
    double *cw_l2 = malloc(sizeof(double) * (size_t)na), *pl = malloc(sizeof(double) * (size_t)bs);
    unsigned char *cw_ok = malloc((size_t)na);
    float *xd = nsde_tensor_data(x), *gd = nsde_tensor_data(gx);
    /* clean TTN correctness per image, with the seeds the attacks classify with */
    for (int64_t bb = 0; bb < nab; bb++) {
      for (int k = 0; k < bs; k++) idx[k] = bb * bs + k;
      ex_check(ctx, nsde_dataset_batch(ds, idx, bs, 0, 0, x, labels), "batch");
      ex_check(ctx, nsde_model_predict(m, x, ttn, seed + 99 + (unsigned long long)bb, probs), "attack TTN");
      for (int k = 0; k < bs; k++)
        clean_ok[bb * bs + k] = (unsigned char)correct_one((float *)nsde_tensor_data(probs) + k * classes,
                                                           labels[k], classes);
    }
    for (int meth = 0; meth < 3; meth++) {
      if (!use_attack[meth] || na == 0)
        continue;
      if (meth == 2) { /* Carlini-Wagner once per batch: smallest misclassified iterate */
        for (int64_t bb = 0; bb < nab; bb++) {
          for (int k = 0; k < bs; k++) idx[k] = bb * bs + k;
          ex_check(ctx, nsde_dataset_batch(ds, idx, bs, 0, 0, x, labels), "batch");
          memcpy(x0, xd, sizeof(float) * (size_t)tot);
          memcpy(best, xd, sizeof(float) * (size_t)tot);
          memset(mo, 0, sizeof(float) * (size_t)tot);
          memset(vo, 0, sizeof(float) * (size_t)tot);
          for (int64_t i = 0; i < tot; i++) /* x = (tanh w + 1) / 2, starting at x0 */
            wv[i] = (float)atanh(fmin(1 - 1e-6, fmax(-1 + 1e-6, 2.0 * x0[i] - 1.0)));
          for (int k = 0; k < bs; k++)
            cw_l2[bb * bs + k] = INFINITY;
          for (int st = 0; st < steps; st++) {
            for (int64_t i = 0; i < tot; i++)
              xd[i] = (float)(0.5 * (tanh(wv[i]) + 1.0));
            ex_check(ctx, nsde_model_loss_grad_ex(m, x, labels, 1, seed + 4242 + (unsigned long long)(st * 131 + bb),
                                                  NSDE_LOSS_CW_MARGIN, 0.0, gx, NULL, NULL, pl), "C&W gradient");
            for (int k = 0; k < bs; k++) { /* f <= 0: misclassified on this noisy pass */
              double d = l2dist(xd + k * item, x0 + k * item, item);
              if (pl[k] <= 0 && d < cw_l2[bb * bs + k]) {
                cw_l2[bb * bs + k] = d;
                memcpy(best + k * item, xd + k * item, sizeof(float) * (size_t)item);
              }
            }
            for (int64_t i = 0; i < tot; i++) {
              double dx = 0.5 * (1.0 - tanh(wv[i]) * tanh(wv[i]));
              wv[i] -= adam_delta(&mo[i], &vo[i], (2.0 * ((double)xd[i] - x0[i]) + cw_c * bs * gd[i]) * dx,
                                  0.01, st);
            }
          }
          memcpy(xd, best, sizeof(float) * (size_t)tot); /* confirm with TTN */
          ex_check(ctx, nsde_model_predict(m, x, ttn, seed + 99 + (unsigned long long)bb, probs), "attack TTN");
          for (int k = 0; k < bs; k++)
            cw_ok[bb * bs + k] = (unsigned char)(isinf(cw_l2[bb * bs + k]) ||
                                                 correct_one((float *)nsde_tensor_data(probs) + k * classes,
                                                             labels[k], classes));
        }
      }
      for (int e = 0; e < neps; e++) {
        int64_t hits = 0;
        double l2sum = 0;
        for (int64_t bb = 0; bb < nab; bb++) {
          if (meth == 2) {
            for (int k = 0; k < bs; k++) {
              int64_t j = bb * bs + k;
              int broken = !cw_ok[j] && cw_l2[j] <= eps_list[e];
              hits += clean_ok[j] && !broken;
              l2sum += clean_ok[j] && broken ? cw_l2[j] : 0.0;
            }
            continue;
          }
          for (int k = 0; k < bs; k++) idx[k] = bb * bs + k;
          ex_check(ctx, nsde_dataset_batch(ds, idx, bs, 0, 0, x, labels), "batch");
          memcpy(x0, xd, sizeof(float) * (size_t)tot);
          memset(mo, 0, sizeof(float) * (size_t)tot);
          memset(vo, 0, sizeof(float) * (size_t)tot);
          for (int st = 0; eps_list[e] > 0 && st < steps; st++) {
            const unsigned long long sd = seed + 7777 + (unsigned long long)(st * 131 + bb);
            ex_check(ctx, nsde_model_loss_grad(m, x, labels, 1, sd, gx, NULL, NULL), "attack gradient");
            if (meth == 0) { /* Adam descent on -CE */
              for (int64_t i = 0; i < tot; i++)
                xd[i] -= adam_delta(&mo[i], &vo[i], -gd[i], 0.005, st);
            } else { /* l2 PGD: ascend along the normalised gradient */
              const double alpha = 2.5 * eps_list[e] / steps;
              for (int k = 0; k < bs; k++) {
                double gn = 0;
                for (int64_t i = 0; i < item; i++)
                  gn += (double)gd[k * item + i] * gd[k * item + i];
                gn = sqrt(gn);
                if (gn > 0)
                  for (int64_t i = 0; i < item; i++)
                    xd[k * item + i] += (float)(alpha * gd[k * item + i] / gn);
              }
            }
            for (int k = 0; k < bs; k++)
              project(xd + k * item, x0 + k * item, item, eps_list[e]);
          }
          ex_check(ctx, nsde_model_predict(m, x, ttn, seed + 99 + (unsigned long long)bb, probs), "attack TTN");
          for (int k = 0; k < bs; k++) {
            int ok = clean_ok[bb * bs + k] &&
                     correct_one((float *)nsde_tensor_data(probs) + k * classes, labels[k], classes);
            hits += ok;
            /* the returned example: the clean image where that already fails */
            l2sum += clean_ok[bb * bs + k] ? l2dist(xd + k * item, x0 + k * item, item) : 0.0;
          }
        }
        printf("nsde-eval: %-7s l2 attack eps %.3f: accuracy %.4f +- %.4f, mean distortion %.4f "
               "(%lld images)\n", attack_names[meth], eps_list[e], (double)hits / na,
               bse((double)hits / na, na), l2sum / na, (long long)na);
        fprintf(fa, "%s,%g,%.6f,%.6f,%.6f,%lld\n", attack_names[meth], eps_list[e], (double)hits / na,
                l2sum / na, bse((double)hits / na, na), (long long)na);
        fflush(stdout);
      }
    }
    free(x0); free(mo); free(vo); free(wv); free(best); free(clean_ok); free(cw_l2); free(pl);
    free(cw_ok);
  }

  /* the hidden-state perturbation curve (paper, Fig. 4), per image, then
   * averaged over the first --hidden-images test images */
  if (hpasses > 0) {
    const int nt = 50, chunk = bs < 16 ? bs : 16;
    int64_t one[4] = {1, c, h, w}, cs[4] = {chunk, c, h, w}, sdim = 0;
    struct nsde_tensor *x1, *g1, *xc, *traj = NULL;
    float *x0 = malloc(sizeof(float) * (size_t)item), *mo = malloc(sizeof(float) * (size_t)item);
    float *vo = malloc(sizeof(float) * (size_t)item);
    double *mean[2] = {NULL, NULL}, *sum = calloc((size_t)nt + 1, sizeof(double));
    double *sum2 = calloc((size_t)nt + 1, sizeof(double));
    int32_t lab;
    int64_t passes = cfg.noise == NSDE_MODEL_ODE ? 1 : hpasses, nimg = himages < n ? himages : n;
    FILE *fh;
    ex_check(ctx, nsde_tensor_new(ctx, NSDE_FLOAT32, 4, one, &x1), "tensor");
    ex_check(ctx, nsde_tensor_new(ctx, NSDE_FLOAT32, 4, one, &g1), "tensor");
    ex_check(ctx, nsde_tensor_new(ctx, NSDE_FLOAT32, 4, cs, &xc), "tensor");
    for (int64_t img = 0; img < nimg; img++) {
      ex_check(ctx, nsde_dataset_batch(ds, &img, 1, 0, 0, x1, &lab), "batch");
      memcpy(x0, nsde_tensor_data(x1), sizeof(float) * (size_t)item);
      memset(mo, 0, sizeof(float) * (size_t)item);
      memset(vo, 0, sizeof(float) * (size_t)item);
      for (int st = 0; st < (steps > 0 ? steps : 40); st++) { /* the authors' attack, eps 0.1 */
        float *xd1 = nsde_tensor_data(x1), *gd1 = nsde_tensor_data(g1);
        ex_check(ctx, nsde_model_loss_grad(m, x1, &lab, 1,
                                           seed + 31337 + (unsigned long long)(img * 1000 + st),
                                           g1, NULL, NULL), "attack gradient");
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
            ex_check(ctx, nsde_model_state_shape(m, &scn, &shh, &sww), "state shape");
            sdim = (int64_t)scn * shh * sww;
            ts[0] = (nt + 1) * chunk * sdim;
            ex_check(ctx, nsde_tensor_new(ctx, NSDE_FLOAT32, 1, ts, &traj), "trajectory tensor");
            mean[0] = malloc(sizeof(double) * (size_t)((nt + 1) * sdim));
            mean[1] = malloc(sizeof(double) * (size_t)((nt + 1) * sdim));
          }
          if (done == 0)
            memset(mean[which], 0, sizeof(double) * (size_t)((nt + 1) * sdim));
          ex_check(ctx, nsde_model_trajectory(m, xc, cfg.noise != NSDE_MODEL_ODE,
                                              seed + 555 + (unsigned long long)(img * 100000 + done),
                                              nt, traj), "trajectory");
          for (int t = 0; t <= nt; t++)
            for (int64_t k = 0; k < nb; k++) {
              const float *st_ = (const float *)nsde_tensor_data(traj) + ((int64_t)t * chunk + k) * sdim;
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
    snprintf(path, sizeof(path), "%s/hidden.csv", outdir);
    fh = fopen(path, "w");
    if (!fh) {
      fprintf(stderr, "nsde-eval: cannot write %s\n", path);
      return 1;
    }
    fprintf(fh, "t,eps_t,se,images\n");
    for (int t = 0; t <= nt; t++) {
      double mu = sum[t] / (double)nimg, var = sum2[t] / (double)nimg - mu * mu;
      double se = nimg > 1 ? sqrt(fmax(var, 0.0) * (double)nimg / (double)(nimg - 1) / (double)nimg) : NAN;
      fprintf(fh, "%g,%.6g,%.6g,%lld\n", cfg.t1 * t / nt, mu, se, (long long)nimg);
    }
    fclose(fh);
    printf("nsde-eval: hidden-state perturbation (eps 0.1 attack, %lld passes, mean over %lld "
           "images): eps_T %.4g (eps at t = 0: %.4g) in %s\n", (long long)passes, (long long)nimg,
           sum[nt] / (double)nimg, sum[0] / (double)nimg, path);
    free(x0); free(mo); free(vo); free(mean[0]); free(mean[1]); free(sum); free(sum2);
    nsde_tensor_free(x1); nsde_tensor_free(g1); nsde_tensor_free(xc); nsde_tensor_free(traj);
  }

  /* corruptions (on the first --corruption-images test images, whole batches) */
  fprintf(fc, "severity,family,accuracy,se,images\n");
  if (cimages > 0 && cimages < n)
    n = cimages / bs * bs > 0 ? cimages / bs * bs : bs;
  for (int sev = 0; sev <= severities; sev++) {
    double mean_acc = 0;
    int nf = 0;
    for (int f = 0; f < CORR_N; f++) {
      int64_t hits = 0;
      if (!corr_available(f, c))
        continue;
      corr_rng = seed * 31 + (unsigned long long)(sev * CORR_N + f);
      for (int64_t b0 = 0; b0 + bs <= n; b0 += bs) {
        for (int k = 0; k < bs; k++) idx[k] = b0 + k;
        ex_check(ctx, nsde_dataset_batch(ds, idx, bs, 0, 0, x, labels), "batch");
        for (int k = 0; k < bs; k++)
          if (corrupt_image((float *)nsde_tensor_data(x) + k * item, c, h, w, f, sev) != 0) {
            fprintf(stderr, "nsde-eval: out of memory in the corruptions\n");
            status = 1;
            goto done;
          }
        ex_check(ctx, nsde_model_predict(m, x, cpasses, seed + 5 + (unsigned long long)b0, probs),
                 "predict");
        hits += count_correct(nsde_tensor_data(probs), labels, bs, classes);
      }
      fprintf(fc, "%d,%s,%.6f,%.6f,%lld\n", sev, corr_names[f], (double)hits / n,
              bse((double)hits / n, n), (long long)n);
      mean_acc += (double)hits / n;
      nf++;
    }
    /* the families share the images: the mean's error is at most the
     * binomial error of one family's accuracy at the mean */
    printf("nsde-eval: corruption severity %d: mean accuracy over %d families %.4f +- %.4f "
           "(%lld images each)\n", sev, nf, nf ? mean_acc / nf : 0.0,
           nf ? bse(mean_acc / nf, n) : 0.0, (long long)n);
    fflush(stdout);
  }
  printf("nsde-eval: results in %s/{summary,attack,corruption}.csv (%.0f s)\n", outdir, ex_now() - t0);
done:
  if (fs)
    fclose(fs);
  if (fa)
    fclose(fa);
  if (fc)
    fclose(fc);
  free(labels);
  free(idx);
  nsde_tensor_free(x);
  nsde_tensor_free(gx);
  nsde_tensor_free(probs);
  nsde_model_free(m);
  nsde_dataset_free(ds);
  nsde_context_free(ctx);
  return status;
}
