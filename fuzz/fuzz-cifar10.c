/* libFuzzer target: the CIFAR-10 binary reader (test_batch.bin). SPDX-License-Identifier: MIT */
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct nsde_context *ctx;
  struct nsde_dataset *ds = NULL;
  ctx = fz_context();
  fz_file(0, "test_batch.bin", data, size);
  if (nsde_dataset_load_cifar10(ctx, fz_dir(), NSDE_SPLIT_TEST, 0, &ds) == NSDE_OK)
    fz_use_dataset(ctx, ds);
  else if (!nsde_context_last_error(ctx)[0])
    abort(); /* every refusal says why */
  nsde_dataset_free(ds);
  return 0;
}
