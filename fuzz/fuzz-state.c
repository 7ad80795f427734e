/* libFuzzer target: nsde-train's training state reader (--resume). Input: 2
 * bytes (little-endian) of the parameter count the reader expects, then the
 * file. SPDX-License-Identifier: MIT */
#include "fuzz-common.h"

#include <fcntl.h>

#include "../apps/train-state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  int64_t n;
  float *p, *v;
  int e;
  if (size < 2)
    return 0;
  n = 1 + ((int64_t)data[0] | (int64_t)data[1] << 8);
  fz_file(0, "m.nsde.state", data + 2, size - 2);
  p = calloc((size_t)n, sizeof(float));
  v = calloc((size_t)n, sizeof(float));
  {
    char model[256];
    int saved = dup(2), null = open("/dev/null", O_WRONLY); /* its messages are not the point */
    snprintf(model, sizeof(model), "%s/m.nsde", fz_dir());
    fflush(stderr);
    dup2(null, 2);
    e = load_state(model, p, v, n);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(null);
  }
  if (e >= 100000)
    abort(); /* the reader promises less */
  free(p);
  free(v);
  return 0;
}
