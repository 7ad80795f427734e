/*
 * 05-classify: load a trained model file and classify CIFAR-10 images.
 *
 * usage: 05-classify MODEL [CIFAR10_BIN_DIR]
 * With the data directory: the first 8 test images, their labels and the
 * model's answers. Without: one synthetic image (a smooth colour pattern),
 * to show the calls. The shipped models are in models/ (models/README.md).
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdio.h>

#include <nsde/nsde.h>

static const char *const names[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                      "dog",      "frog",       "horse", "ship", "truck"};

int main(int argc, char **argv)
{
  struct nsde_context *ctx = NULL;
  struct nsde_model *m = NULL;
  struct nsde_dataset *ds = NULL;
  struct nsde_tensor *x = NULL, *probs = NULL;
  int64_t n = 8, idx[8] = {0, 1, 2, 3, 4, 5, 6, 7}, xs[4] = {8, 3, 32, 32}, ps[2] = {8, 10};
  int32_t labels[8];
  int rc = 1;

  if (argc < 2) {
    fprintf(stderr, "usage: 05-classify MODEL [CIFAR10_BIN_DIR]\n");
    return 2;
  }
  if (argc < 3)
    n = xs[0] = ps[0] = 1;
  if (nsde_context_new(&ctx) || nsde_model_load(ctx, argv[1], n, &m) ||
      nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, xs, &x) ||
      nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, ps, &probs))
    goto done;
  if (argc >= 3) { /* normalised as in training, no crop */
    if (nsde_dataset_load_cifar10(ctx, argv[2], NSDE_SPLIT_TEST, n, &ds) ||
        nsde_dataset_batch(ds, idx, n, 0, 0, x, labels))
      goto done;
  } else {
    for (int i = 0; i < 3 * 32 * 32; i++)
      ((float *)nsde_tensor_data(x))[i] = (float)sin(0.05 * i + i / 1024);
    labels[0] = -1;
  }
  if (nsde_model_predict(m, x, 0, 0, probs)) /* one deterministic pass */
    goto done;
  for (int64_t b = 0; b < n; b++) {
    const float *p = (const float *)nsde_tensor_data(probs) + b * 10;
    int best = 0;
    for (int k = 1; k < 10; k++)
      best = p[k] > p[best] ? k : best;
    printf("image %lld: %-10s -> %-10s (p = %.3f)\n", (long long)b,
           labels[b] >= 0 ? names[labels[b]] : "synthetic", names[best], p[best]);
  }
  rc = 0;
done:
  if (rc)
    fprintf(stderr, "05-classify: %s\n", nsde_context_last_error(ctx));
  nsde_tensor_free(probs);
  nsde_tensor_free(x);
  nsde_dataset_free(ds);
  nsde_model_free(m);
  nsde_context_free(ctx);
  return rc;
}
