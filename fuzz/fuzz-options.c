/* libFuzzer target: the command-line value parsers of the programs. Input:
 * 1 byte choosing the parser, then the value string. Every accepted value
 * must lie in the range asked for. SPDX-License-Identifier: MIT */
#include "fuzz-common.h"

#include <math.h>

#include "../apps/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *s;
  if (size < 1)
    return 0;
  s = malloc(size);
  memcpy(s, data + 1, size - 1);
  s[size - 1] = '\0';
  switch (data[0] % 3) {
  case 0: {
    long long x;
    if (ex_parse_int(s, -5, 1000000, &x) == 0 && (x < -5 || x > 1000000))
      abort();
    break;
  }
  case 1: {
    double x;
    if (ex_parse_real(s, 0, 1e6, &x) == 0 && !(x >= 0 && x <= 1e6))
      abort();
    break;
  }
  default: {
    double xs[8];
    int n = ex_parse_reals(s, 0, 1000, xs, 8);
    if (n == 0 || n > 8)
      abort();
    for (int i = 0; i < n; i++)
      if (!(xs[i] >= 0 && xs[i] <= 1000))
        abort();
    break;
  }
  }
  free(s);
  return 0;
}
