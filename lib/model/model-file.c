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

#define FNV_BASIS 14695981039346656037ULL   /* FNV-1a 64's offset basis (version 2) */
#define FNV_BASIS_V1 1469598103934665603ULL /* what version 1 used: a digit short */

static uint64_t fnv1a(const unsigned char *p, size_t n, uint64_t h)
{
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 1099511628211ULL;
  return h;
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
  put_u32(buf + 16, (uint32_t)c->arch);
  put_u32(buf + 20, (uint32_t)c->in_channels);
  put_u32(buf + 24, (uint32_t)c->in_height);
  put_u32(buf + 28, (uint32_t)c->in_width);
  put_u32(buf + 32, (uint32_t)c->width);
  put_u32(buf + 36, (uint32_t)c->classes);
  put_u32(buf + 40, (uint32_t)c->noise);
  put_u32(buf + 44, (uint32_t)c->learn_sigma);
  put_f64(buf + 48, c->sigma);
  put_f64(buf + 56, c->t1);
  put_f64(buf + 64, c->dt);
  put_u64(buf + 72, (uint64_t)m->np);
  put_u32(buf + 80, (uint32_t)c->grad);
  put_u32(buf + 84, (uint32_t)c->groups);
  for (int64_t i = 0; i < m->np; i++) {
    uint32_t u;
    memcpy(&u, &m->params[i], 4);
    put_u32(buf + HEADER_BYTES + 4 * i, u);
  }
  put_u64(buf + total - 8, fnv1a(buf, total - 8, FNV_BASIS));

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
  n += 2 * w + w * c->classes + c->classes;         /* the head: GN, linear */
  return n + (c->learn_sigma ? 1 : 0);
}

NSDE_API enum nsde_status nsde_model_load(struct nsde_context *ctx, const char *path,
                                          int64_t max_batch, struct nsde_model **out)
{
  struct nsde_model_config c;
  struct nsde_model *m = NULL;
  enum nsde_status st;
  unsigned char *buf = NULL;
  uint64_t np;
  uint32_t version, learn_sigma;
  size_t total;
  struct stat sb;
  FILE *fp;

  if (!out)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_model_load: output pointer is NULL");
  *out = NULL;
  if (!ctx || !path)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_model_load: NULL argument");
  fp = fopen(path, "rb");
  if (!fp)
    return nsde__error(ctx, NSDE_ERR_IO, "cannot open model file %s: %s", path, strerror(errno));
  if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    fclose(fp);
    return nsde__error(ctx, NSDE_ERR_IO, "model file %s is not a regular file", path);
  }
  if (sb.st_size < HEADER_BYTES + 8 || sb.st_size > ((off_t)1 << 34)) {
    fclose(fp);
    return nsde__error(ctx, NSDE_ERR_FORMAT, "model file %s: size %lld is impossible (truncated?)",
                       path, (long long)sb.st_size);
  }
  total = (size_t)sb.st_size;
  buf = malloc(total);
  if (!buf) {
    fclose(fp);
    return nsde__error(ctx, NSDE_ERR_NOMEM, "out of memory reading %s", path);
  }
  if (fread(buf, 1, total, fp) != total) {
    fclose(fp);
    free(buf);
    return nsde__error(ctx, NSDE_ERR_IO, "model file %s: read failed", path);
  }
  fclose(fp);
  st = NSDE_ERR_FORMAT;
  if (memcmp(buf, MAGIC, 8) != 0) {
    nsde__error(ctx, st, "%s is not a libnsde model file (bad magic)", path);
    goto fail;
  }
  version = get_u32(buf + 8);
  if ((version != 1 && version != FILE_VERSION) || get_u32(buf + 12) != HEADER_BYTES) {
    nsde__error(ctx, st, "model file %s has format version %u; this libnsde reads versions 1 "
                "to %u", path, version, FILE_VERSION);
    goto fail;
  }
  np = get_u64(buf + 72);
  if (np == 0 || np > ((uint64_t)1 << 31) || total != HEADER_BYTES + np * 4 + 8) {
    nsde__error(ctx, st, "model file %s: %zu bytes do not hold %llu parameters (truncated or "
                "extended)", path, total, (unsigned long long)np);
    goto fail;
  }
  if (get_u64(buf + total - 8) != fnv1a(buf, total - 8, version == 1 ? FNV_BASIS_V1 : FNV_BASIS)) {
    nsde__error(ctx, st, "model file %s: checksum mismatch (the file is corrupted)", path);
    goto fail;
  }
  for (int i = 88; i < HEADER_BYTES; i++)
    if (buf[i] != 0) {
      nsde__error(ctx, st, "model file %s: reserved header byte %d is %u, must be 0 (a file "
                  "from a newer libnsde?)", path, i, buf[i]);
      goto fail;
    }
  nsde_model_config_init(&c);
  c.arch = (enum nsde_model_arch)get_u32(buf + 16);
  c.in_channels = (int)get_u32(buf + 20);
  c.in_height = (int)get_u32(buf + 24);
  c.in_width = (int)get_u32(buf + 28);
  c.width = (int)get_u32(buf + 32);
  c.classes = (int)get_u32(buf + 36);
  c.noise = (enum nsde_model_noise)get_u32(buf + 40);
  learn_sigma = get_u32(buf + 44);
  if (learn_sigma > 1) {
    st = nsde__error(ctx, NSDE_ERR_FORMAT, "model file %s: learn_sigma is %u, must be 0 or 1", path,
                     (unsigned)learn_sigma);
    goto fail;
  }
  c.learn_sigma = learn_sigma == 1;
  c.sigma = get_f64(buf + 48);
  c.t1 = get_f64(buf + 56);
  c.dt = get_f64(buf + 64);
  c.grad = (enum nsde_grad_strategy)get_u32(buf + 80);
  c.groups = (int)get_u32(buf + 84);
  c.max_batch = max_batch;
  if (nsde__model_check_config(ctx, &c) != NSDE_OK) {
    char why[512]; /* the context's buffer cannot be both source and destination */
    snprintf(why, sizeof(why), "%s", nsde_context_last_error(ctx));
    nsde__error(ctx, st, "model file %s: invalid configuration: %s", path, why);
    goto fail;
  }
  if ((uint64_t)config_params(&c) != np) { /* before allocating what the header asks for */
    st = nsde__error(ctx, NSDE_ERR_FORMAT,
                     "model file %s holds %llu parameters, its configuration needs %lld", path,
                     (unsigned long long)np, (long long)config_params(&c));
    goto fail;
  }
  if ((st = nsde_model_new(ctx, &c, &m)) != NSDE_OK)
    goto fail;
  if ((uint64_t)m->np != np) {
    st = nsde__error(ctx, NSDE_ERR_FORMAT,
                     "model file %s holds %llu parameters, its configuration needs %lld", path,
                     (unsigned long long)np, (long long)m->np);
    goto fail;
  }
  for (uint64_t i = 0; i < np; i++) {
    uint32_t u = get_u32(buf + HEADER_BYTES + 4 * i);
    memcpy(&m->params[i], &u, 4);
    if (!isfinite(m->params[i])) {
      st = nsde__error(ctx, NSDE_ERR_FORMAT, "model file %s: parameter %llu is not finite", path,
                       (unsigned long long)i);
      goto fail;
    }
  }
  nsde__model_sync_params(m);
  free(buf);
  *out = m;
  return NSDE_OK;
fail:
  free(buf);
  nsde_model_free(m);
  return st;
}
