/* nsde-train's training state file (MODEL.state): written crash-safely,
 * read back for --resume. Shared with the fuzz target of its reader.
 * SPDX-License-Identifier: MIT */
#ifndef NSDE_EXAMPLES_TRAIN_STATE_H
#define NSDE_EXAMPLES_TRAIN_STATE_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nsde/nsde.h>

static inline uint64_t fnv(const unsigned char *p, size_t n, uint64_t h)
{
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001B3ULL;
  return h;
}

/*
 * MODEL.state, the training state --resume continues from, host byte order:
 *   version 2: "NSDETRN2", u32 epochs done, u64 n, n floats of parameters,
 *              n floats of SGD momentum, u64 FNV-1a 64 of all preceding bytes;
 *   version 1: "NSDETRN1", u32, u64 n, n floats of momentum, u64 FNV-1a
 *              (the parameters came from the model file; still read).
 * Version 2 carries the parameters so that the pair is consistent whatever
 * moment a crash lands: the state is written (crash-safely) before the model
 * file, and a resume takes the parameters from the state.
 */
static inline int save_state(struct nsde_context *ctx, const char *model, int epochs_done,
                             const float *params, const float *v, int64_t n)
{
  char path[4096];
  uint32_t e = (uint32_t)epochs_done;
  uint64_t nn = (uint64_t)n, h;
  size_t total = 8 + 4 + 8 + 2 * (size_t)n * 4 + 8;
  unsigned char *buf = malloc(total);
  enum nsde_status st;
  if (!buf)
    return -1;
  memcpy(buf, "NSDETRN2", 8);
  memcpy(buf + 8, &e, 4);
  memcpy(buf + 12, &nn, 8);
  memcpy(buf + 20, params, (size_t)n * 4);
  memcpy(buf + 20 + (size_t)n * 4, v, (size_t)n * 4);
  h = fnv(buf, total - 8, 0xCBF29CE484222325ULL);
  memcpy(buf + total - 8, &h, 8);
  snprintf(path, sizeof(path), "%s.state", model);
  st = nsde_file_write_atomic(ctx, path, buf, total);
  free(buf);
  return st == NSDE_OK ? 0 : -1;
}

/* Returns the epochs done (momentum into v; parameters into params for a
 * version 2 state, params untouched for version 1), or -1 with a message. */
static inline int load_state(const char *model, float *params, float *v, int64_t n)
{
  char path[4096];
  unsigned char *buf = NULL;
  size_t want2 = 8 + 4 + 8 + 2 * (size_t)n * 4 + 8, want1 = want2 - (size_t)n * 4, got = 0;
  uint32_t e = 0;
  uint64_t nn = 0, hf = 0;
  int version = 0;
  FILE *f;
  snprintf(path, sizeof(path), "%s.state", model);
  f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "nsde-train: cannot resume: %s: %s\n", path, strerror(errno));
    return -1;
  }
  buf = malloc(want2 + 1);
  if (buf)
    got = fread(buf, 1, want2 + 1, f);
  fclose(f);
  if (buf && got >= 20) {
    version = !memcmp(buf, "NSDETRN2", 8) && got == want2   ? 2
              : !memcmp(buf, "NSDETRN1", 8) && got == want1 ? 1
                                                            : 0;
    memcpy(&e, buf + 8, 4);
    memcpy(&nn, buf + 12, 8);
    if (version)
      memcpy(&hf, buf + got - 8, 8);
  }
  if (version == 0 || nn != (uint64_t)n || e >= 100000 ||
      hf != fnv(buf, got - 8, 0xCBF29CE484222325ULL)) {
    fprintf(stderr,
            "nsde-train: cannot resume: %s is truncated, corrupted or belongs to another "
            "model (%lld parameters expected)\n",
            path, (long long)n);
    free(buf);
    return -1;
  }
  if (version == 2) {
    memcpy(params, buf + 20, (size_t)n * 4);
    memcpy(v, buf + 20 + (size_t)n * 4, (size_t)n * 4);
  } else {
    memcpy(v, buf + 20, (size_t)n * 4);
  }
  free(buf);
  return (int)e;
}

#endif
