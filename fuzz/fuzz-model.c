/* libFuzzer target: model files. Input: 1 byte of flags (bit 0: fix up the
 * version 2 checksum, so that the fuzzer gets past it to the header and the
 * parameters), then the file. A file that loads must run a forward pass.
 * SPDX-License-Identifier: MIT */
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct nsde_context *ctx;
  struct nsde_model *m = NULL;
  uint8_t *buf;
  const char *path;
  if (size < 1)
    return 0;
  buf = malloc(size);
  memcpy(buf, data + 1, size - 1);
  if ((data[0] & 1) && size - 1 >= 8) {
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < size - 1 - 8; i++)
      h = (h ^ buf[i]) * 1099511628211ULL;
    for (int i = 0; i < 8; i++)
      buf[size - 1 - 8 + i] = (uint8_t)(h >> (8 * i));
  }
  path = fz_file(0, "m.nsde", buf, size - 1);
  free(buf);
  ctx = fz_context();
  if (nsde_model_load(ctx, path, 1, &m) == NSDE_OK) {
    struct nsde_model_config c;
    struct nsde_tensor *x, *lg;
    if (nsde_model_get_config(m, &c) != NSDE_OK)
      abort(); /* a loaded model always has a configuration */
    {
      int64_t xs[4] = {1, c.in_channels, c.in_height, c.in_width}, ls[2] = {1, c.classes};
      if (nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, xs, &x) == NSDE_OK) {
        if (nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, ls, &lg) == NSDE_OK) {
          /* any status is fine (huge weights may overflow); no crash */
          if (nsde_tensor_fill(x, 0.5) == NSDE_OK) {
            enum nsde_status fst = nsde_model_forward(m, x, 1, 3, lg);
            (void)fst;
          }
          nsde_tensor_free(lg);
        }
        nsde_tensor_free(x);
      }
    }
  } else if (!nsde_context_last_error(ctx)[0]) {
    abort();
  }
  nsde_model_free(m);
  return 0;
}
