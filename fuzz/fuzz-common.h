/* Shared by the libFuzzer targets: a private directory and files in it.
 * SPDX-License-Identifier: MIT */
#ifndef NSDE_FUZZ_COMMON_H
#define NSDE_FUZZ_COMMON_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nsde/nsde.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One context for the whole run (one thread), its last error cleared. */
static inline struct nsde_context *fz_context(void)
{
  static struct nsde_context *ctx;
  if (!ctx && (nsde_context_new(&ctx) != NSDE_OK || nsde_context_set_threads(ctx, 1) != NSDE_OK))
    abort();
  nsde_context_clear_error(ctx);
  return ctx;
}

/* A directory of this process's own, made once: in /dev/shm where there is
 * one (a file per input on a disk-backed /tmp left the targets waiting on the
 * file system for half their time), else in /tmp. */
static inline const char *fz_dir(void)
{
  static char dir[64];
  if (!dir[0]) {
    snprintf(dir, sizeof(dir), "/dev/shm/nsde-fuzz-XXXXXX");
    if (!mkdtemp(dir)) {
      snprintf(dir, sizeof(dir), "/tmp/nsde-fuzz-XXXXXX");
      if (!mkdtemp(dir))
        abort();
    }
  }
  return dir;
}

/* Write n bytes to DIR/name; return the path (static buffer per slot). */
static inline const char *fz_file(int slot, const char *name, const uint8_t *p, size_t n)
{
  static char path[4][256];
  FILE *f;
  snprintf(path[slot], sizeof(path[slot]), "%s/%s", fz_dir(), name);
  f = fopen(path[slot], "wb");
  if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0)
    abort();
  return path[slot];
}

static inline void fz_remove(const char *name)
{
  char path[256];
  snprintf(path, sizeof(path), "%s/%s", fz_dir(), name);
  remove(path);
}

/* A loaded data set must hand out its images: gather the first few, with crops. */
static inline void fz_use_dataset(struct nsde_context *ctx, struct nsde_dataset *ds)
{
  int c, h, w, k;
  int64_t n = nsde_dataset_size(ds), idx[2] = {0, n - 1}, shape[4];
  struct nsde_tensor *x;
  int32_t labels[2];
  if (nsde_dataset_get_info(ds, &c, &h, &w, &k) != NSDE_OK || n < 1)
    abort(); /* a loaded data set always knows its shape */
  shape[0] = 2;
  shape[1] = c;
  shape[2] = h;
  shape[3] = w;
  if (nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, shape, &x) != NSDE_OK)
    return;
  if (nsde_dataset_batch(ds, idx, 2, 2, 1, x, labels) == NSDE_OK &&
      (labels[0] < 0 || labels[0] >= k || labels[1] < 0 || labels[1] >= k))
    abort(); /* labels out of the declared range */
  nsde_tensor_free(x);
}

#endif
