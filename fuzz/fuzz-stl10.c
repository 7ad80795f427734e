/* libFuzzer target: the STL-10 reader (test_X.bin, test_y.bin). Input: 2
 * bytes (little-endian) of image-file length, the image file, the label
 * file. SPDX-License-Identifier: MIT */
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct nsde_context *ctx;
  struct nsde_dataset *ds = NULL;
  size_t li;
  if (size < 2)
    return 0;
  li = (size_t)data[0] | (size_t)data[1] << 8;
  data += 2;
  size -= 2;
  if (li > size)
    li = size;
  ctx = fz_context();
  fz_file(0, "test_X.bin", data, li);
  fz_file(1, "test_y.bin", data + li, size - li);
  if (nsde_dataset_load_stl10(ctx, fz_dir(), NSDE_SPLIT_TEST, 0, &ds) == NSDE_OK)
    fz_use_dataset(ctx, ds);
  else if (!nsde_context_last_error(ctx)[0])
    abort();
  nsde_dataset_free(ds);
  return 0;
}
