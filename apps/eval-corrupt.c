/*
 * nsde-eval's corruptions: accuracy under CIFAR-10-C style corruptions
 * computed from the images (corrupt.h), and the corruption-strength report.
 * Public API only.
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L
#include "eval.h"

#include "corrupt.h"

int eval_corruption_report(const char *data, const char *dir, int64_t report, unsigned long long seed)
{
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

int eval_corruptions(const struct eval *E, int severities, int cpasses, int64_t cimages, FILE *fc)
{
  struct nsde_context *ctx = E->ctx;
  struct nsde_model *m = E->m;
  struct nsde_dataset *ds = E->ds;
  struct nsde_tensor *x = E->x, *probs = E->probs;
  int32_t *labels = E->labels;
  int64_t *idx = E->idx, n = E->n, item = E->item;
  const int bs = E->bs, classes = E->classes, c = E->c, h = E->h, w = E->w;
  const unsigned long long seed = E->seed;

  fprintf(fc, "severity,family,accuracy,se,images\n");
  if (cimages > 0 && cimages < n)
    n = cimages / bs * bs > 0 ? cimages / bs * bs : bs;
  for (int sev = 0; sev <= severities; sev++) {
    double mean_acc = 0;
    int nf = 0;
    int64_t hits0 = -1; /* severity 0: every family is the clean image with the same noise seeds */
    for (int f = 0; f < CORR_N; f++) {
      int64_t hits = 0;
      if (!corr_available(f, c))
        continue;
      corr_rng = seed * 31 + (unsigned long long)(sev * CORR_N + f);
      if (sev == 0 && hits0 >= 0)
        hits = hits0;
      else
        for (int64_t b0 = 0; b0 + bs <= n; b0 += bs) {
          for (int k = 0; k < bs; k++) idx[k] = b0 + k;
          ex_check(ctx, nsde_dataset_batch(ds, idx, bs, 0, 0, x, labels), "batch");
          for (int k = 0; k < bs; k++)
            if (corrupt_image((float *)nsde_tensor_data(x) + k * item, c, h, w, f, sev) != 0) {
              fprintf(stderr, "nsde-eval: out of memory in the corruptions\n");
              return 1;
            }
          ex_check(ctx, nsde_model_predict(m, x, cpasses, seed + 5 + (unsigned long long)b0, probs),
                   "predict");
          hits += count_correct(nsde_tensor_data(probs), labels, bs, classes);
        }
      if (sev == 0)
        hits0 = hits;
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
  return 0;
}
