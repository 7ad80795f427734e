/* nsde-train --val: the held-out images and the noise-off validation pass.
 * SPDX-License-Identifier: MIT */
#ifndef NSDE_APPS_HOLDOUT_H
#define NSDE_APPS_HOLDOUT_H

#include <stdint.h>

#include <nsde/nsde.h>

/* Held-out images (--val), as the model takes them: floats and labels. */
struct holdout {
  float *x;
  int32_t *y;
  int64_t n, item;
  int c, h, w; /* image shape */
};

/* The last val of the first `subset` (0: all) training images into ho; the
 * training set is then loaded as the first size - val images, so that a run
 * with --val trains exactly as one with --subset (size - val) would. Usage
 * errors exit 2 naming prog. */
struct nsde_dataset *load_with_holdout(struct nsde_context *ctx, const char *prog, const char *data,
                                       const char *dir, long subset, long val, struct holdout *ho);

/* Noise-off accuracy and mean cross-entropy of the model on the held-out
 * images, in batches of at most mb. */
void validate(struct nsde_context *ctx, struct nsde_model *m, const struct holdout *ho, int mb,
              int classes, double *acc, double *loss);

#endif
