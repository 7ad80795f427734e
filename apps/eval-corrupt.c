/*
 * nsde-eval's corruptions: accuracy under CIFAR-10-C style corruptions
 * computed from the images (corrupt.h), and the corruption-strength report.
 * Public API only.
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L
#include "eval.h"

#include "corrupt.h"

int eval_corruption_report(const char *data, const char *dir, int64_t report,
                           unsigned long long seed)
{
  struct nsde_context *rc;
  struct nsde_dataset *rd;
  struct nsde_tensor *rx;
  int32_t *rl;
  int64_t ri[1] = {0}, rs[4] = {1, 0, 0, 0};
  int rcn, rh, rw, rk;
  ex_check(NULL, nsde_context_new(&rc), "context");
  rd = ex_load(rc, data, dir, NSDE_SPLIT_TEST, report);
  ex_check(rc, nsde_dataset_get_info(rd, &rcn, &rh, &rw, &rk), "dataset info");
  rs[1] = rcn;
  rs[2] = rh;
  rs[3] = rw;
  ex_check(rc, nsde_tensor_new(rc, NSDE_DTYPE_FLOAT32, 4, rs, &rx), "tensor");
  rl = malloc(sizeof(int32_t));
  printf("family,severity,mean_abs_change\n");
  for (int f = 0; f < CORR_N; f++) {
    if (!corr_available(f, rcn))
      continue;
    for (int sev = 0; sev <= 5; sev++) {
      double tot = 0;
      int64_t nimg = nsde_dataset_size(rd), item1 = (int64_t)rcn * rh * rw;
      float *im = malloc(sizeof(float) * (size_t)item1);
      corr_seed(seed, sev, f);
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

/* One corrupted batch (images b0 .. b0+bs-1, family f at severity sev; sev 0
 * is the clean image) predicted under every protocol: hits[k] += the
 * correct count with cpasses[k] passes (0: noise off), each image's outcome
 * into fi. */
static int corrupted_batch(const struct eval *E, int f, int sev, int64_t b0, const int *cpasses,
                           int ncp, int64_t *hits, FILE *fi)
{
  float *xd = nsde_tensor_data(E->x);
  const float *pr = nsde_tensor_data(E->probs);
  for (int k = 0; k < E->bs; k++)
    E->idx[k] = b0 + k;
  ex_check(E->ctx, nsde_dataset_batch(E->ds, E->idx, E->bs, 0, 0, E->x, E->labels), "batch");
  for (int k = 0; k < E->bs; k++)
    if (corrupt_image(xd + k * E->item, E->c, E->h, E->w, f, sev) != 0) {
      fprintf(stderr, "nsde-eval: out of memory in the corruptions\n");
      return 1;
    }
  for (int j = 0; j < ncp; j++) {
    ex_check(
        E->ctx,
        nsde_model_predict(E->m, E->x, cpasses[j], E->seed + 5 + (unsigned long long)b0, E->probs),
        "predict");
    for (int k = 0; k < E->bs; k++) {
      const int ok = correct_one(pr + (int64_t)k * E->classes, E->labels[k], E->classes);
      hits[j] += ok;
      fprintf(fi, "%d,%s,%d,%lld,%d\n", sev, sev == 0 ? "none" : corr_names[f], cpasses[j],
              (long long)(b0 + k), ok);
    }
  }
  return 0;
}

int eval_corruptions(const struct eval *E, int severities, const int *cpasses, int ncp,
                     int64_t cimages, FILE *fc, FILE *fi)
{
  int64_t n = E->n, hits0[4] = {0, 0, 0, 0};
  const int bs = E->bs;

  fprintf(fc, "severity,family,accuracy,se,images,passes,drop\n");
  fprintf(fi, "severity,family,passes,image,correct\n");
  if (cimages > 0 && cimages < n)
    n = cimages / bs * bs > 0 ? cimages / bs * bs : bs;
  /* severity 0 is the clean image for every family (the same noise seeds):
   * computed once, its per-image rows under the family "none" */
  for (int64_t b0 = 0; b0 + bs <= n; b0 += bs)
    if (corrupted_batch(E, 0, 0, b0, cpasses, ncp, hits0, fi) != 0)
      return 1;
  for (int sev = 0; sev <= severities; sev++) {
    double mean_acc[4] = {0, 0, 0, 0};
    int nf = 0;
    for (int f = 0; f < CORR_N; f++) {
      int64_t hits[4] = {0, 0, 0, 0};
      if (!corr_available(f, E->c))
        continue;
      corr_seed(E->seed, sev, f);
      if (sev == 0)
        memcpy(hits, hits0, sizeof(hits));
      else
        for (int64_t b0 = 0; b0 + bs <= n; b0 += bs)
          if (corrupted_batch(E, f, sev, b0, cpasses, ncp, hits, fi) != 0)
            return 1;
      for (int j = 0; j < ncp; j++) {
        const double acc = (double)hits[j] / n;
        fprintf(fc, "%d,%s,%.6f,%.6f,%lld,%d,%.6f\n", sev, corr_names[f], acc, bse(acc, n),
                (long long)n, cpasses[j], (double)hits0[j] / n - acc);
        mean_acc[j] += acc;
      }
      nf++;
    }
    /* the families share the images: the mean's error is at most the
     * binomial error of one family's accuracy at the mean */
    for (int j = 0; j < ncp && nf > 0; j++)
      printf("nsde-eval: corruption severity %d, %s: mean accuracy over %d families %.4f +- %.4f, "
             "drop from severity 0 %.4f (%lld images each)\n",
             sev,
             cpasses[j] == 0   ? "noise off"
             : cpasses[j] == 1 ? "one noisy pass"
                               : "TTN",
             nf, mean_acc[j] / nf, bse(mean_acc[j] / nf, n),
             (double)hits0[j] / n - mean_acc[j] / nf, (long long)n);
    fflush(stdout);
  }
  return 0;
}
