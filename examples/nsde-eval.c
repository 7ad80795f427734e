/*
 * nsde-eval: evaluate a trained model (paper, section 7).
 *
 *   nsde-eval --model MODEL --data fashion-mnist|cifar10|stl10 [--data-dir DIR]
 *             [--subset N] [--ttn PASSES] [--attack-images N] [--attack-steps S]
 *             [--eps 0,0.05,...] [--severities 5] [--corruption-passes P] [--out DIR]
 *             [--threads T] [--seed S]
 *
 * Clean accuracy without noise and with the test-time noise ensemble (TTN:
 * summed softmax of PASSES noisy passes); the authors' l2 attack (Adam, lr
 * 0.005, noise on during the attack, projection on the l2 ball and [0, 1],
 * classification with TTN) for each budget, with the mean distortion reached;
 * CIFAR-10-C style corruptions computed from the images (Gaussian, shot and
 * impulse noise, contrast, brightness; the published severities 1..5).
 * Writes DIR/summary.csv, DIR/attack.csv and DIR/corruption.csv. Public API only.
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>

#include "common.h"

static uint64_t sm_state;
static double uniform01(void)
{
  uint64_t z = (sm_state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return ((double)((z ^ (z >> 31)) >> 11) + 0.5) * 0x1.0p-53;
}
static double normal01(void)
{
  return sqrt(-2.0 * log(uniform01())) * cos(6.283185307179586 * uniform01());
}
static double poisson(double lam)
{
  if (lam > 60) /* normal approximation for large means */
    return fmax(0.0, floor(lam + sqrt(lam) * normal01() + 0.5));
  {
    double L = exp(-lam), p = 1.0;
    int k = 0;
    do {
      k++;
      p *= uniform01();
    } while (p > L);
    return k - 1;
  }
}

/* CIFAR-10-C parameters (Hendrycks & Dietterich 2019), severities 1..5. */
static const char *families[5] = {"gaussian_noise", "shot_noise", "impulse_noise", "contrast",
                                  "brightness"};
static const double params[5][5] = {
  {0.04, 0.06, 0.08, 0.09, 0.10},   /* Gaussian sigma */
  {500, 250, 100, 75, 50},          /* shot: photons per unit */
  {0.01, 0.02, 0.03, 0.05, 0.07},   /* impulse: salt-and-pepper amount */
  {0.75, 0.5, 0.4, 0.3, 0.15},      /* contrast factor */
  {0.05, 0.1, 0.15, 0.2, 0.3},      /* brightness: added to the value channel */
};

static void corrupt(float *x, int64_t n_per_image, int64_t count, int fam, int sev)
{
  if (sev == 0)
    return;
  for (int64_t b = 0; b < count; b++) {
    float *im = x + b * n_per_image;
    double mean = 0, c = params[fam][sev - 1];
    if (fam == 3) {
      for (int64_t i = 0; i < n_per_image; i++)
        mean += im[i];
      mean /= (double)n_per_image;
    }
    for (int64_t i = 0; i < n_per_image; i++) {
      double v = im[i];
      switch (fam) {
      case 0: v += c * normal01(); break;
      case 1: v = poisson(v * c) / c; break;
      case 2: {
        double u = uniform01();
        if (u < c / 2) v = 0;
        else if (u < c) v = 1;
        break;
      }
      case 3: v = (v - mean) * c + mean; break;
      case 4: v += c; break; /* HSV value shift, applied per channel (approximation) */
      }
      im[i] = (float)(v < 0 ? 0 : v > 1 ? 1 : v);
    }
  }
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
  int ttn = 100, steps = 40, severities = 5, threads = 0, cpasses = -1;
  double eps_list[32] = {0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5};
  int neps = 11;
  unsigned long long seed = 12345;
  struct nsde_context *ctx;
  struct nsde_model *m;
  struct nsde_model_config cfg;
  struct nsde_dataset *ds;
  struct nsde_tensor *x, *probs, *gx;
  int32_t *labels;
  int64_t *idx, n, item;
  int c, h, w, classes, bs;
  char path[4096];
  FILE *fs, *fa, *fc;
  double t0 = ex_now();

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && ++i)
    if (OPT("--model")) model_path = v;
    else if (OPT("--data")) data = v;
    else if (OPT("--data-dir")) dir = v;
    else if (OPT("--subset")) subset = atol(v);
    else if (OPT("--ttn")) ttn = atoi(v);
    else if (OPT("--attack-images")) attack_images = atol(v);
    else if (OPT("--attack-steps")) steps = atoi(v);
    else if (OPT("--severities")) severities = atoi(v);
    else if (OPT("--corruption-passes")) cpasses = atoi(v);
    else if (OPT("--out")) outdir = v;
    else if (OPT("--threads")) threads = atoi(v);
    else if (OPT("--seed")) seed = strtoull(v, NULL, 0);
    else if (OPT("--eps")) {
      char *p = (char *)v;
      neps = 0;
      while (*p && neps < 32) {
        eps_list[neps++] = strtod(p, &p);
        if (*p == ',') p++;
      }
    } else {
      fprintf(stderr, "usage: nsde-eval --model MODEL --data fashion-mnist|cifar10|stl10 [--data-dir DIR] "
                      "[--subset N] [--ttn PASSES] [--attack-images N] [--attack-steps S] "
                      "[--eps e1,e2,..] [--severities 0..5] [--corruption-passes P] [--out DIR] "
                      "[--threads T] [--seed S]\n");
      return 2;
    }
#undef OPT
  }
  if (cpasses < 0)
    cpasses = ttn < 10 ? ttn : 10;
  if (!model_path || ttn < 0 || steps < 0 || severities < 0 || severities > 5 || subset < 1) {
    fprintf(stderr, "nsde-eval: --model is required; counts must not be negative\n");
    return 2;
  }
  ex_check(NULL, nsde_context_new(&ctx), "context");
  ex_check(ctx, nsde_context_set_threads(ctx, threads), "threads");
  ds = ex_load(ctx, data, dir, NSDE_SPLIT_TEST, subset);
  nsde_dataset_info(ds, &c, &h, &w, &classes);
  n = nsde_dataset_size(ds);
  bs = n < 100 ? (int)n : 100;
  if (attack_images > 0 && attack_images < bs)
    bs = (int)attack_images; /* the attack runs in whole batches */
  ex_check(ctx, nsde_model_load(ctx, model_path, bs, &m), "loading the model");
  nsde_model_get_config(m, &cfg);
  if (cfg.in_channels != c || cfg.in_height != h || cfg.in_width != w || cfg.classes != classes) {
    fprintf(stderr, "nsde-eval: the model takes %dx%dx%d images in %d classes, the data has %dx%dx%d in %d\n",
            cfg.in_channels, cfg.in_height, cfg.in_width, cfg.classes, c, h, w, classes);
    return 1;
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
    return 1;
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
    printf("nsde-eval: %s on %lld %s test images: clean accuracy %.4f (noise off)", model_path,
           (long long)n, data, (double)hit0 / n);
    if (ttn > 0)
      printf(", %.4f (TTN, %d passes)", (double)hitt / n, ttn);
    printf("\n");
    fprintf(fs, "metric,value\nimages,%lld\nclean_accuracy,%.6f\nttn_accuracy,%.6f\nttn_passes,%d\n",
            (long long)n, (double)hit0 / n, ttn > 0 ? (double)hitt / n : NAN, ttn);
  }

  /* the authors' l2 attack */
  fprintf(fa, "eps,accuracy,mean_l2\n");
  if (attack_images > 0 && steps > 0) {
    int64_t na = attack_images < n ? attack_images : n;
    float *x0 = malloc(sizeof(float) * (size_t)(bs * item)), *mo = malloc(sizeof(float) * (size_t)(bs * item));
    float *vo = malloc(sizeof(float) * (size_t)(bs * item));
    for (int e = 0; e < neps; e++) {
      int64_t hits = 0, total = 0;
      double l2sum = 0;
      for (int64_t b0 = 0; b0 < na; b0 += bs) {
        int cnt = (int)(na - b0 < bs ? na - b0 : bs);
        float *xd = nsde_tensor_data(x), *gd = nsde_tensor_data(gx);
        if (cnt < bs)
          break; /* whole batches only */
        for (int k = 0; k < bs; k++) idx[k] = b0 + k;
        ex_check(ctx, nsde_dataset_batch(ds, idx, bs, 0, 0, x, labels), "batch");
        memcpy(x0, xd, sizeof(float) * (size_t)(bs * item));
        memset(mo, 0, sizeof(float) * (size_t)(bs * item));
        memset(vo, 0, sizeof(float) * (size_t)(bs * item));
        for (int s = 0; eps_list[e] > 0 && s < steps; s++) {
          const double lr = 0.005, b1 = 0.9, b2 = 0.999;
          ex_check(ctx, nsde_model_loss_grad(m, x, labels, 1, seed + 7777 + (unsigned long long)(s * 131 + b0),
                                             gx, NULL, NULL), "attack gradient");
          for (int64_t i = 0; i < bs * item; i++) { /* Adam descent on -CE */
            double g = -gd[i];
            mo[i] = (float)(b1 * mo[i] + (1 - b1) * g);
            vo[i] = (float)(b2 * vo[i] + (1 - b2) * g * g);
            xd[i] -= (float)(lr * (mo[i] / (1 - pow(b1, s + 1))) / (sqrt(vo[i] / (1 - pow(b2, s + 1))) + 1e-8));
          }
          for (int k = 0; k < bs; k++) { /* project on the l2 ball, then [0, 1] */
            double nrm = 0;
            for (int64_t i = 0; i < item; i++) {
              double d = xd[k * item + i] - x0[k * item + i];
              nrm += d * d;
            }
            nrm = sqrt(nrm);
            for (int64_t i = 0; i < item; i++) {
              double d = xd[k * item + i] - x0[k * item + i];
              if (nrm > eps_list[e])
                d *= eps_list[e] / nrm;
              xd[k * item + i] = (float)fmin(1.0, fmax(0.0, x0[k * item + i] + d));
            }
          }
        }
        for (int k = 0; k < bs; k++) {
          double nrm = 0;
          for (int64_t i = 0; i < item; i++) {
            double d = xd[k * item + i] - x0[k * item + i];
            nrm += d * d;
          }
          l2sum += sqrt(nrm);
        }
        ex_check(ctx, nsde_model_predict(m, x, ttn, seed + 99 + (unsigned long long)b0, probs), "attack TTN");
        hits += count_correct(nsde_tensor_data(probs), labels, bs, classes);
        total += bs;
      }
      if (total == 0)
        break;
      printf("nsde-eval: l2 attack eps %.3f: accuracy %.4f, mean distortion %.4f (%lld images)\n",
             eps_list[e], (double)hits / total, l2sum / total, (long long)total);
      fprintf(fa, "%g,%.6f,%.6f\n", eps_list[e], (double)hits / total, l2sum / total);
      fflush(stdout);
    }
    free(x0);
    free(mo);
    free(vo);
  }

  /* corruptions */
  fprintf(fc, "severity,family,accuracy\n");
  for (int sev = 0; sev <= severities; sev++) {
    double mean_acc = 0;
    for (int f = 0; f < 5; f++) {
      int64_t hits = 0;
      sm_state = seed * 31 + (unsigned long long)(sev * 5 + f);
      for (int64_t b0 = 0; b0 + bs <= n; b0 += bs) {
        for (int k = 0; k < bs; k++) idx[k] = b0 + k;
        ex_check(ctx, nsde_dataset_batch(ds, idx, bs, 0, 0, x, labels), "batch");
        corrupt(nsde_tensor_data(x), item, bs, f, sev);
        ex_check(ctx, nsde_model_predict(m, x, cpasses, seed + 5 + (unsigned long long)b0, probs),
                 "predict");
        hits += count_correct(nsde_tensor_data(probs), labels, bs, classes);
      }
      fprintf(fc, "%d,%s,%.6f\n", sev, families[f], (double)hits / n);
      mean_acc += (double)hits / n / 5;
    }
    printf("nsde-eval: corruption severity %d: mean accuracy over %d families %.4f\n", sev, 5, mean_acc);
    fflush(stdout);
  }
  fclose(fs);
  fclose(fa);
  fclose(fc);
  printf("nsde-eval: results in %s/{summary,attack,corruption}.csv (%.0f s)\n", outdir, ex_now() - t0);
  free(labels);
  free(idx);
  nsde_tensor_free(x);
  nsde_tensor_free(gx);
  nsde_tensor_free(probs);
  nsde_model_free(m);
  nsde_dataset_free(ds);
  nsde_context_free(ctx);
  return 0;
}
