/* Shared helpers of the example programs (public API only). SPDX-License-Identifier: MIT */
#ifndef NSDE_EXAMPLES_COMMON_H
#define NSDE_EXAMPLES_COMMON_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

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

#endif
