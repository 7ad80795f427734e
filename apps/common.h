/* Shared helpers of the example programs (public API only). SPDX-License-Identifier: MIT */
#ifndef NSDE_EXAMPLES_COMMON_H
#define NSDE_EXAMPLES_COMMON_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nsde/nsde.h>

static inline double ex_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Load "fashion-mnist" (default directory: Debian's dataset-fashion-mnist) or
 * "cifar10" (a cifar-10-batches-bin directory). Exits with a message on error. */
static inline struct nsde_dataset *ex_load(struct nsde_context *ctx, const char *name,
                                           const char *dir, enum nsde_split split, long n)
{
  struct nsde_dataset *ds = NULL;
  enum nsde_status st;
  if (!strcmp(name, "cifar10"))
    st = nsde_dataset_load_cifar10(ctx, dir ? dir : "cifar-10-batches-bin", split, n, &ds);
  else if (!strcmp(name, "fashion-mnist"))
    st = nsde_dataset_load_fashion_mnist(ctx, dir ? dir : "/usr/share/datasets/fashion-mnist",
                                         split, n, &ds);
  else if (!strcmp(name, "stl10"))
    st = nsde_dataset_load_stl10(ctx, dir ? dir : "stl10_binary", split, n, &ds);
  else {
    fprintf(stderr, "unknown data set '%s' (fashion-mnist, cifar10, stl10)\n", name);
    exit(2);
  }
  if (st != NSDE_OK) {
    fprintf(stderr, "cannot load %s: %s\n", name, nsde_context_last_error(ctx));
    exit(1);
  }
  return ds;
}

static inline void ex_check(struct nsde_context *ctx, enum nsde_status st, const char *what)
{
  if (st != NSDE_OK) {
    fprintf(stderr, "%s: %s (%s)\n", what, nsde_status_str(st), nsde_context_last_error(ctx));
    exit(1);
  }
}

/* Strict option values: the whole string a number in [lo, hi] (atoi would
 * read "abc" as 0 and "1e9" as 1). The ex_parse_ forms return 0 or -1; the
 * ex_ forms print a one-line message naming the program, the option and the
 * range, and exit 2. */
static inline int ex_parse_int(const char *v, long long lo, long long hi, long long *out)
{
  char *end;
  long long x;
  if (!v)
    return -1;
  errno = 0;
  x = strtoll(v, &end, 10);
  if (end == v || *end || errno || x < lo || x > hi)
    return -1;
  *out = x;
  return 0;
}

static inline int ex_parse_real(const char *v, double lo, double hi, double *out)
{
  char *end;
  double x;
  if (!v)
    return -1;
  errno = 0;
  x = strtod(v, &end);
  if (end == v || *end || errno || !(x >= lo && x <= hi))
    return -1;
  *out = x;
  return 0;
}

/* A comma-separated list of 1 to @p max numbers in [lo, hi]: the count, or -1. */
static inline int ex_parse_reals(const char *v, double lo, double hi, double *out, int max)
{
  int n = 0;
  const char *p = v;
  if (!p)
    return -1;
  while (*p) {
    char buf[64];
    size_t len = strcspn(p, ",");
    if (n == max || len == 0 || len >= sizeof(buf))
      return -1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    if (ex_parse_real(buf, lo, hi, &out[n++]) != 0)
      return -1;
    p += len;
    if (*p == ',' && !*++p)
      return -1; /* a trailing comma */
  }
  return n > 0 ? n : -1;
}

static inline long long ex_int(const char *prog, const char *opt, const char *v, long long lo,
                               long long hi)
{
  long long x;
  if (ex_parse_int(v, lo, hi, &x) != 0) {
    fprintf(stderr, "%s: %s '%s' is not an integer in [%lld, %lld]; try '%s --help'\n", prog, opt,
            v ? v : "", lo, hi, prog);
    exit(2);
  }
  return x;
}

static inline double ex_real(const char *prog, const char *opt, const char *v, double lo, double hi)
{
  double x;
  if (ex_parse_real(v, lo, hi, &x) != 0) {
    fprintf(stderr, "%s: %s '%s' is not a number in [%g, %g]; try '%s --help'\n", prog, opt,
            v ? v : "", lo, hi, prog);
    exit(2);
  }
  return x;
}

static inline int ex_reals(const char *prog, const char *opt, const char *v, double lo, double hi,
                           double *out, int max)
{
  int n = ex_parse_reals(v, lo, hi, out, max);
  if (n < 0) {
    fprintf(stderr,
            "%s: %s '%s' must be 1 to %d comma-separated numbers in [%g, %g]; try '%s "
            "--help'\n",
            prog, opt, v ? v : "", max, lo, hi, prog);
    exit(2);
  }
  return n;
}

/* ex_reals for whole numbers (what: "epochs", "passes"), into ints. */
static inline int ex_wholes(const char *prog, const char *opt, const char *v, double lo, double hi,
                            int *out, int max, const char *what)
{
  double r[16];
  int n = ex_reals(prog, opt, v, lo, hi, r, max < 16 ? max : 16);
  for (int k = 0; k < n; k++) {
    if (r[k] != floor(r[k])) {
      fprintf(stderr, "%s: %s '%s' must be whole numbers of %s; try '%s --help'\n", prog, opt, v,
              what, prog);
      exit(2);
    }
    out[k] = (int)r[k];
  }
  return n;
}

/* @p v must be one of the NULL-terminated @p choices. */
static inline const char *ex_choice(const char *prog, const char *opt, const char *v,
                                    const char *const *choices)
{
  for (int i = 0; v && choices[i]; i++)
    if (!strcmp(v, choices[i]))
      return v;
  fprintf(stderr, "%s: %s '%s' is not one of:", prog, opt, v ? v : "");
  for (int i = 0; choices[i]; i++)
    fprintf(stderr, " %s", choices[i]);
  fprintf(stderr, "; try '%s --help'\n", prog);
  exit(2);
}

#endif
