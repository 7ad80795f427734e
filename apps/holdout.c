/* nsde-train --val: the held-out images and the noise-off validation pass
 * (holdout.h).
 * SPDX-License-Identifier: MIT */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "eval.h"
#include "holdout.h"

struct nsde_dataset *load_with_holdout(struct nsde_context *ctx, const char *prog, const char *data,
                                       const char *dir, long subset, long val, struct holdout *ho)
{
  struct nsde_dataset *all = ex_load(ctx, data, dir, NSDE_SPLIT_TRAIN, subset);
  const int64_t n_all = nsde_dataset_size(all);
  int c, h, w, classes;
  int64_t *idx;
  struct nsde_tensor *x;
  if (val >= n_all) {
    fprintf(stderr,
            "%s: --val %ld must leave training images (the set has %lld); try '%s --help'\n", prog,
            val, (long long)n_all, prog);
    exit(2);
  }
  ex_check(ctx, nsde_dataset_get_info(all, &c, &h, &w, &classes), "dataset info");
  {
    int64_t shape[4] = {val, c, h, w};
    ex_check(ctx, nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, shape, &x), "tensor");
  }
  ho->n = val;
  ho->c = c, ho->h = h, ho->w = w;
  ho->item = (int64_t)c * h * w;
  ho->x = malloc(sizeof(float) * (size_t)(val * ho->item));
  ho->y = malloc(sizeof(int32_t) * (size_t)val);
  idx = malloc(sizeof(int64_t) * (size_t)val);
  if (!ho->x || !ho->y || !idx) {
    fprintf(stderr, "%s: out of memory for %ld held-out images\n", prog, val);
    exit(1);
  }
  for (int64_t i = 0; i < val; i++)
    idx[i] = n_all - val + i;
  ex_check(ctx, nsde_dataset_batch(all, idx, val, 0, 0, x, ho->y), "held-out images");
  memcpy(ho->x, nsde_tensor_data(x), sizeof(float) * (size_t)(val * ho->item));
  free(idx);
  nsde_tensor_free(x);
  nsde_dataset_free(all);
  return ex_load(ctx, data, dir, NSDE_SPLIT_TRAIN, (long)(n_all - val));
}

void validate(struct nsde_context *ctx, struct nsde_model *m, const struct holdout *ho, int mb,
              int classes, double *acc, double *loss)
{
  int64_t hits = 0, cur = 0;
  double ls = 0;
  struct nsde_tensor *x = NULL, *probs = NULL;
  for (int64_t b0 = 0; b0 < ho->n; b0 += mb) {
    const int64_t bs = ho->n - b0 < mb ? ho->n - b0 : mb;
    const int32_t *y = ho->y + b0;
    const float *p;
    if (bs != cur) { /* the first batch, and the last one when smaller */
      int64_t shape[4] = {bs, ho->c, ho->h, ho->w}, ps[2] = {bs, classes};
      cur = bs;
      nsde_tensor_free(x);
      nsde_tensor_free(probs);
      ex_check(ctx, nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, shape, &x), "tensor");
      ex_check(ctx, nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, ps, &probs), "tensor");
    }
    memcpy(nsde_tensor_data(x), ho->x + b0 * ho->item, sizeof(float) * (size_t)(bs * ho->item));
    ex_check(ctx, nsde_model_predict(m, x, 0, 0, probs), "validation pass");
    p = nsde_tensor_data(probs);
    hits += count_correct(p, y, bs, classes);
    for (int64_t i = 0; i < bs; i++)
      ls -= log(fmax((double)p[i * classes + y[i]], 1e-300));
  }
  *acc = (double)hits / (double)ho->n;
  *loss = ls / (double)ho->n;
  nsde_tensor_free(x);
  nsde_tensor_free(probs);
}
