/*
 * Model files (doc/model.md): a 128-byte little-endian header with the
 * configuration, the parameters, an FNV-1a checksum; written atomically.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "func-private.h"
#include "nn-private.h"
#include "model-private.h"

#define MAGIC "NSDEMODL"
#define FILE_VERSION 2u /* version 1: the same layout, a non-standard FNV offset basis */
#define HEADER_BYTES 128

static void put_u32(unsigned char *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

static uint64_t get_u64(const unsigned char *p)
{
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

static void put_f64(unsigned char *p, double d)
{
  uint64_t v;
  memcpy(&v, &d, 8);
  put_u64(p, v);
}

static double get_f64(const unsigned char *p)
{
  uint64_t v = get_u64(p);
  double d;
  memcpy(&d, &v, 8);
  return d;
}

/* Version 2 checks with FNV-1a 64 (NSDE__FNV_BASIS); version 1 files
 * started from a basis a digit short. */
#define FNV_BASIS_V1 1469598103934665603ULL

/* The configuration in the header, one row a field: byte offset, how it is
 * stored (u32, a u32 that must be 0 or 1, f64) and its member of struct
 * nsde_model_config. Bytes 8-15 are the version and the header size, 72-79
 * the parameter count; 88-127 are reserved and must be 0. */
#define HEADER_FIELDS(X)                                                                           \
  X(16, u32, arch)                                                                                 \
  X(20, u32, in_channels)                                                                          \
  X(24, u32, in_height)                                                                            \
  X(28, u32, in_width)                                                                             \
  X(32, u32, width)                                                                                \
  X(36, u32, classes)                                                                              \
  X(40, u32, noise)                                                                                \
  X(44, flag, learn_sigma)                                                                         \
  X(48, f64, sigma)                                                                                \
  X(56, f64, t1)                                                                                   \
  X(64, f64, dt)                                                                                   \
  X(80, u32, grad)                                                                                 \
  X(84, u32, groups)

static void put_flag(unsigned char *p, bool v)
{
  put_u32(p, v ? 1u : 0u);
}

NSDE_API enum nsde_status nsde_model_save(const struct nsde_model *m, const char *path)
{
  const struct nsde_model_config *c;
  size_t total;
  unsigned char *buf;
  enum nsde_status st;

  if (!m || !path)
    return nsde__error(m ? m->ctx : NULL, NSDE_ERR_NULL, "nsde_model_save: NULL argument");
  c = &m->cfg;
  total = HEADER_BYTES + (size_t)m->np * 4 + 8;
  buf = calloc(1, total);
  if (!buf)
    return nsde__error(m->ctx, NSDE_ERR_NOMEM, "nsde_model_save: out of memory");
  memcpy(buf, MAGIC, 8);
  put_u32(buf + 8, FILE_VERSION);
  put_u32(buf + 12, HEADER_BYTES);
#define PUT(off, kind, member) put_##kind(buf + (off), c->member);
  HEADER_FIELDS(PUT)
#undef PUT
  put_u64(buf + 72, (uint64_t)m->np);
  for (int64_t i = 0; i < m->np; i++) {
    uint32_t u;
    memcpy(&u, &m->params[i], 4);
    put_u32(buf + HEADER_BYTES + 4 * i, u);
  }
  put_u64(buf + total - 8, nsde__fnv1a(buf, total - 8, NSDE__FNV_BASIS));

  st = nsde_file_write_atomic(m->ctx, path, buf, total);
  free(buf);
  return st;
}

/* The number of parameters nsde_model_new() gives a valid configuration,
 * without building it: the loader compares it with the file's count before
 * allocating activations for whatever image size a header claims. */
static int64_t config_params(const struct nsde_model_config *c)
{
  const int64_t w = c->width, cin = c->in_channels;
  int64_t n;
  if (c->arch == NSDE_MODEL_ARCH_CIFAR) {
    n = w * cin * 9 + w;
  } else {
    const int64_t w4 = w / 4, w2 = w / 2;
    n = w4 * cin * 9 + w4 + 2 * w4 + w2 * w4 * 16 + w2 + 2 * w2 + w * w2 * 16 + w;
  }
  n += 3 * (2 * w + w * (w + 1) * 9 + w) + 2 * w; /* the drift: 3 x (GN, ConcatConv), GN */
  n += 2 * w + w * c->classes + c->classes;       /* the head: GN, linear */
  return n + (c->learn_sigma ? 1 : 0);
}

/* The whole file into *buf (a regular file of a possible size). */
static enum nsde_status read_file(struct nsde_context *ctx, const char *path, unsigned char **buf,
                                  size_t *total)
{
  struct stat sb;
  FILE *fp = fopen(path, "rb");
  enum nsde_status st = NSDE_OK;

  if (!fp)
    return nsde__error(ctx, NSDE_ERR_IO, "cannot open model file %s: %s", path, strerror(errno));
  if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode))
    st = nsde__error(ctx, NSDE_ERR_IO, "model file %s is not a regular file", path);
  else if (sb.st_size < HEADER_BYTES + 8 || sb.st_size > ((off_t)1 << 34))
    st = nsde__error(ctx, NSDE_ERR_FORMAT, "model file %s: size %lld is impossible (truncated?)",
                     path, (long long)sb.st_size);
  else if (!(*buf = malloc((size_t)sb.st_size)))
    st = nsde__error(ctx, NSDE_ERR_NOMEM, "out of memory reading %s", path);
  else if (fread(*buf, 1, (size_t)sb.st_size, fp) != (size_t)sb.st_size)
    st = nsde__error(ctx, NSDE_ERR_IO, "model file %s: read failed", path);
  fclose(fp);
  if (st == NSDE_OK)
    *total = (size_t)sb.st_size;
  return st;
}

/* Magic, version, size, checksum and reserved bytes; *np the parameters. */
static enum nsde_status check_header(struct nsde_context *ctx, const char *path,
                                     const unsigned char *buf, size_t total, uint64_t *np)
{
  const enum nsde_status st = NSDE_ERR_FORMAT;
  uint32_t version;

  if (memcmp(buf, MAGIC, 8) != 0)
    return nsde__error(ctx, st, "%s is not a libnsde model file (bad magic)", path);
  version = get_u32(buf + 8);
  if ((version != 1 && version != FILE_VERSION) || get_u32(buf + 12) != HEADER_BYTES)
    return nsde__error(ctx, st,
                       "model file %s has format version %u; this libnsde reads "
                       "versions 1 to %u",
                       path, version, FILE_VERSION);
  *np = get_u64(buf + 72);
  if (*np == 0 || *np > ((uint64_t)1 << 31) || total != HEADER_BYTES + *np * 4 + 8)
    return nsde__error(ctx, st,
                       "model file %s: %zu bytes do not hold %llu parameters "
                       "(truncated or extended)",
                       path, total, (unsigned long long)*np);
  if (get_u64(buf + total - 8) !=
      nsde__fnv1a(buf, total - 8, version == 1 ? FNV_BASIS_V1 : NSDE__FNV_BASIS))
    return nsde__error(ctx, st, "model file %s: checksum mismatch (the file is corrupted)", path);
  for (int i = 88; i < HEADER_BYTES; i++)
    if (buf[i] != 0)
      return nsde__error(ctx, st,
                         "model file %s: reserved header byte %d is %u, must be 0 (a "
                         "file from a newer libnsde?)",
                         path, i, buf[i]);
  return NSDE_OK;
}

/* The configuration the header holds, checked: a field out of its range is
 * a format error naming the file, the field and the range. */
static enum nsde_status header_config(struct nsde_context *ctx, const char *path,
                                      const unsigned char *buf, int64_t max_batch,
                                      struct nsde_model_config *c)
{
  nsde_model_config_init(c);
  c->max_batch = max_batch;
#define GET_u32(off, member) c->member = get_u32(buf + (off));
#define GET_f64(off, member) c->member = get_f64(buf + (off));
#define GET_flag(off, member)                                                                      \
  if (get_u32(buf + (off)) > 1)                                                                    \
    return nsde__error(ctx, NSDE_ERR_FORMAT, "model file %s: " #member " is %u, must be 0 or 1",   \
                       path, (unsigned)get_u32(buf + (off)));                                      \
  c->member = get_u32(buf + (off)) == 1;
#define GET(off, kind, member) GET_##kind(off, member)
  HEADER_FIELDS(GET)
#undef GET
#undef GET_flag
#undef GET_f64
#undef GET_u32
  if (nsde__model_check_config(ctx, c) != NSDE_OK) {
    char why[512]; /* the context's buffer cannot be both source and destination */
    snprintf(why, sizeof(why), "%s", nsde_context_last_error(ctx));
    return nsde__error(ctx, NSDE_ERR_FORMAT, "model file %s: invalid configuration: %s", path, why);
  }
  return NSDE_OK;
}

/* The parameters into m, each finite. */
static enum nsde_status read_params(struct nsde_context *ctx, const char *path,
                                    const unsigned char *buf, uint64_t np, struct nsde_model *m)
{
  if ((uint64_t)m->np != np)
    return nsde__error(ctx, NSDE_ERR_FORMAT,
                       "model file %s holds %llu parameters, its configuration needs %lld", path,
                       (unsigned long long)np, (long long)m->np);
  for (uint64_t i = 0; i < np; i++) {
    uint32_t u = get_u32(buf + HEADER_BYTES + 4 * i);
    memcpy(&m->params[i], &u, 4);
    if (!isfinite(m->params[i]))
      return nsde__error(ctx, NSDE_ERR_FORMAT, "model file %s: parameter %llu is not finite", path,
                         (unsigned long long)i);
  }
  nsde__model_sync_params(m);
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_model_load(struct nsde_context *ctx, const char *path,
                                          int64_t max_batch, struct nsde_model **out)
{
  struct nsde_model_config c;
  struct nsde_model *m = NULL;
  unsigned char *buf = NULL;
  enum nsde_status st;
  uint64_t np = 0;
  size_t total = 0;

  if (!out)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_model_load: output pointer is NULL");
  *out = NULL;
  if (!ctx || !path)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_model_load: NULL argument");
  if ((st = read_file(ctx, path, &buf, &total)) != NSDE_OK ||
      (st = check_header(ctx, path, buf, total, &np)) != NSDE_OK)
    goto fail;
  if ((st = header_config(ctx, path, buf, max_batch, &c)) != NSDE_OK)
    goto fail;
  if ((uint64_t)config_params(&c) != np) { /* before allocating what the header asks for */
    st = nsde__error(ctx, NSDE_ERR_FORMAT,
                     "model file %s holds %llu parameters, its configuration needs %lld", path,
                     (unsigned long long)np, (long long)config_params(&c));
    goto fail;
  }
  if ((st = nsde_model_new(ctx, &c, &m)) != NSDE_OK ||
      (st = read_params(ctx, path, buf, np, m)) != NSDE_OK)
    goto fail;
  free(buf);
  *out = m;
  return NSDE_OK;
fail:
  free(buf);
  nsde_model_free(m);
  return st;
}
