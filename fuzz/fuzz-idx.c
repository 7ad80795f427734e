/* libFuzzer target: the IDX reader of Fashion-MNIST, raw and gzip.
 * Input: 1 byte of flags (bit 0: the files are named .gz and go through
 * zlib), 2 bytes (little-endian) of image-file length, the image file, the
 * label file. SPDX-License-Identifier: MIT */
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct nsde_context *ctx;
  struct nsde_dataset *ds = NULL;
  size_t li;
  int gz;
  if (size < 3)
    return 0;
  gz = data[0] & 1;
  li = (size_t)data[1] | (size_t)data[2] << 8;
  data += 3;
  size -= 3;
  if (li > size)
    li = size;
  ctx = fz_context();
  fz_remove("t10k-images-idx3-ubyte");
  fz_remove("t10k-labels-idx1-ubyte");
  fz_remove("t10k-images-idx3-ubyte.gz");
  fz_remove("t10k-labels-idx1-ubyte.gz");
  fz_file(0, gz ? "t10k-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte", data, li);
  fz_file(1, gz ? "t10k-labels-idx1-ubyte.gz" : "t10k-labels-idx1-ubyte", data + li, size - li);
  if (nsde_dataset_load_fashion_mnist(ctx, fz_dir(), NSDE_SPLIT_TEST, 0, &ds) == NSDE_OK)
    fz_use_dataset(ctx, ds);
  else if (!nsde_context_last_error(ctx)[0])
    abort();
  nsde_dataset_free(ds);
  return 0;
}
