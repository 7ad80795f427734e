/*
 * Data sets: CIFAR-10, Fashion-MNIST, STL-10 readers; batches; shuffling.
 * Every read is bounds-checked against the file's real size, so truncated or
 * hostile files give a status and a message, never a crash.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "nsde-private.h"
#include "philox.h"

struct nsde_dataset {
  struct nsde_context *ctx;
  int c, h, w, classes;
  int64_t n, cap;
  unsigned char *pix; /* n x c x h x w, row-major */
  int32_t *labels;
};

static enum nsde_status ds_new(struct nsde_context *ctx, int c, int h, int w, int classes,
                               struct nsde_dataset **out)
{
  struct nsde_dataset *ds = calloc(1, sizeof(*ds));
  if (!ds)
    return nsde__error(ctx, NSDE_ERR_NOMEM, "out of memory");
  ds->ctx = ctx;
  ds->c = c;
  ds->h = h;
  ds->w = w;
  ds->classes = classes;
  *out = ds;
  return NSDE_OK;
}

static enum nsde_status ds_reserve(struct nsde_dataset *ds, int64_t n)
{
  size_t item = (size_t)ds->c * ds->h * ds->w;
  unsigned char *p;
  int32_t *l;
  if (n <= ds->cap)
    return NSDE_OK;
  p = realloc(ds->pix, (size_t)n * item);
  if (!p)
    return nsde__error(ds->ctx, NSDE_ERR_NOMEM, "out of memory for %lld images", (long long)n);
  ds->pix = p;
  l = realloc(ds->labels, (size_t)n * sizeof(int32_t));
  if (!l)
    return nsde__error(ds->ctx, NSDE_ERR_NOMEM, "out of memory for %lld labels", (long long)n);
  ds->labels = l;
  ds->cap = n;
  return NSDE_OK;
}

NSDE_API void nsde_dataset_free(struct nsde_dataset *ds)
{
  if (!ds)
    return;
  free(ds->pix);
  free(ds->labels);
  free(ds);
}

/* Whole file into memory (gzip-decompressed when it is gzip). */
static enum nsde_status read_file(struct nsde_context *ctx, const char *path, unsigned char **data,
                                  size_t *len)
{
  gzFile gz;
  unsigned char *buf = NULL;
  size_t cap = 0, n = 0;
  struct stat sb;

  *data = NULL;
  *len = 0;
  if (stat(path, &sb) != 0)
    return nsde__error(ctx, NSDE_ERR_IO, "cannot open %s: %s", path, strerror(errno));
  if (!S_ISREG(sb.st_mode))
    return nsde__error(ctx, NSDE_ERR_IO, "%s is not a regular file", path);
  gz = gzopen(path, "rb"); /* reads plain files transparently */
  if (!gz)
    return nsde__error(ctx, NSDE_ERR_IO, "cannot open %s: %s", path, strerror(errno));
  for (;;) {
    int r;
    if (n == cap) {
      size_t ncap = cap ? 2 * cap : (size_t)1 << 20;
      unsigned char *nb;
      if (ncap > ((size_t)1 << 34)) {
        gzclose(gz);
        free(buf);
        return nsde__error(ctx, NSDE_ERR_FORMAT, "%s: more than 16 GiB of data", path);
      }
      nb = realloc(buf, ncap);
      if (!nb) {
        gzclose(gz);
        free(buf);
        return nsde__error(ctx, NSDE_ERR_NOMEM, "out of memory reading %s", path);
      }
      buf = nb;
      cap = ncap;
    }
    r = gzread(gz, buf + n, (unsigned)(cap - n > (1u << 30) ? (1u << 30) : cap - n));
    if (r < 0) {
      int err;
      const char *msg = gzerror(gz, &err);
      enum nsde_status st =
          nsde__error(ctx, NSDE_ERR_FORMAT, "%s: corrupt compressed data (%s)", path, msg);
      gzclose(gz);
      free(buf);
      return st;
    }
    if (r == 0)
      break;
    n += (size_t)r;
  }
  {
    int err = gzclose(gz);
    if (err == Z_BUF_ERROR || err == Z_DATA_ERROR) {
      free(buf);
      return nsde__error(ctx, NSDE_ERR_FORMAT, "%s: truncated or corrupt gzip stream", path);
    }
  }
  *data = buf;
  *len = n;
  return NSDE_OK;
}

static char *join(const char *dir, const char *name)
{
  size_t a = strlen(dir), b = strlen(name);
  char *p = malloc(a + b + 2);
  if (!p)
    return NULL;
  memcpy(p, dir, a);
  p[a] = '/';
  memcpy(p + a + 1, name, b + 1);
  return p;
}

static enum nsde_status cifar_file(struct nsde_dataset *ds, const char *path, int64_t max_images)
{
  unsigned char *d;
  size_t len;
  int64_t recs;
  enum nsde_status st = read_file(ds->ctx, path, &d, &len);

  if (st != NSDE_OK)
    return st;
  if (len == 0 || len % 3073 != 0) {
    free(d);
    return nsde__error(ds->ctx, NSDE_ERR_FORMAT,
                       "%s: %zu bytes is not a whole number of 3073-byte CIFAR-10 records "
                       "(truncated?)",
                       path, len);
  }
  recs = (int64_t)(len / 3073);
  if (max_images > 0 && ds->n + recs > max_images)
    recs = max_images - ds->n;
  if ((st = ds_reserve(ds, ds->n + recs)) != NSDE_OK) {
    free(d);
    return st;
  }
  for (int64_t r = 0; r < recs; r++) {
    const unsigned char *rec = d + (size_t)r * 3073;
    if (rec[0] > 9) {
      int label = rec[0];
      free(d);
      return nsde__error(ds->ctx, NSDE_ERR_FORMAT,
                         "%s: record %lld has label %d (CIFAR-10 has 0..9)", path, (long long)r,
                         label);
    }
    ds->labels[ds->n] = rec[0];
    memcpy(ds->pix + (size_t)ds->n * 3072, rec + 1, 3072);
    ds->n++;
  }
  free(d);
  return NSDE_OK;
}

static enum nsde_status check_args(struct nsde_context *ctx, const char *dir, int split,
                                   int64_t max_images, struct nsde_dataset **out)
{
  if (!out)
    return nsde__error(ctx, NSDE_ERR_NULL, "dataset: output pointer is NULL");
  *out = NULL;
  if (!ctx || !dir)
    return nsde__error(ctx, NSDE_ERR_NULL, "dataset: NULL argument");
  if ((split != NSDE_SPLIT_TRAIN && split != NSDE_SPLIT_TEST) || max_images < 0)
    return nsde__error(ctx, NSDE_ERR_INVALID, "dataset: bad split %d or max_images %lld", split,
                       (long long)max_images);
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_dataset_load_cifar10(struct nsde_context *ctx, const char *dir,
                                                    enum nsde_split split, int64_t max_images,
                                                    struct nsde_dataset **out)
{
  static const char *train[5] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                 "data_batch_4.bin", "data_batch_5.bin"};
  static const char *test[1] = {"test_batch.bin"};
  const char **files = split == NSDE_SPLIT_TRAIN ? train : test;
  int nf = split == NSDE_SPLIT_TRAIN ? 5 : 1;
  struct nsde_dataset *ds = NULL;
  enum nsde_status st = check_args(ctx, dir, (int)split, max_images, out);

  if (st != NSDE_OK || (st = ds_new(ctx, 3, 32, 32, 10, &ds)) != NSDE_OK)
    return st;
  for (int f = 0; f < nf && (max_images == 0 || ds->n < max_images); f++) {
    char *path = join(dir, files[f]);
    st =
        path ? cifar_file(ds, path, max_images) : nsde__error(ctx, NSDE_ERR_NOMEM, "out of memory");
    free(path);
    if (st != NSDE_OK) {
      nsde_dataset_free(ds);
      return st;
    }
  }
  *out = ds;
  return NSDE_OK;
}

static uint32_t be32(const unsigned char *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* An IDX file: open NAME or NAME.gz in dir. */
static enum nsde_status read_idx(struct nsde_context *ctx, const char *dir, const char *name,
                                 unsigned char **d, size_t *len, char **used)
{
  char *plain = join(dir, name), *gzname = malloc(strlen(name) + 4), *gzp;
  struct stat sb;
  enum nsde_status st;
  if (!plain || !gzname) {
    free(plain);
    free(gzname);
    return nsde__error(ctx, NSDE_ERR_NOMEM, "out of memory");
  }
  strcpy(gzname, name);
  strcat(gzname, ".gz");
  gzp = join(dir, gzname);
  free(gzname);
  if (gzp && stat(gzp, &sb) == 0) {
    free(plain);
    *used = gzp;
  } else {
    free(gzp);
    *used = plain;
  }
  if (!*used)
    return nsde__error(ctx, NSDE_ERR_NOMEM, "out of memory");
  st = read_file(ctx, *used, d, len);
  return st;
}

NSDE_API enum nsde_status nsde_dataset_load_fashion_mnist(struct nsde_context *ctx, const char *dir,
                                                          enum nsde_split split, int64_t max_images,
                                                          struct nsde_dataset **out)
{
  const char *iname =
      split == NSDE_SPLIT_TRAIN ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte";
  const char *lname =
      split == NSDE_SPLIT_TRAIN ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte";
  unsigned char *di = NULL, *dl = NULL;
  size_t li = 0, ll = 0;
  char *pi = NULL, *pl = NULL;
  struct nsde_dataset *ds = NULL;
  enum nsde_status st = check_args(ctx, dir, (int)split, max_images, out);
  uint32_t n, rows, cols;

  if (st != NSDE_OK)
    return st;
  if ((st = read_idx(ctx, dir, iname, &di, &li, &pi)) != NSDE_OK ||
      (st = read_idx(ctx, dir, lname, &dl, &ll, &pl)) != NSDE_OK)
    goto done;
  st = NSDE_ERR_FORMAT;
  if (li < 16 || be32(di) != 0x00000803) {
    nsde__error(ctx, st, "%s: not an IDX image file (magic or header)", pi);
    goto done;
  }
  if (ll < 8 || be32(dl) != 0x00000801) {
    nsde__error(ctx, st, "%s: not an IDX label file (magic or header)", pl);
    goto done;
  }
  n = be32(di + 4);
  rows = be32(di + 8);
  cols = be32(di + 12);
  if (rows == 0 || cols == 0 || rows > 4096 || cols > 4096 ||
      (uint64_t)li != 16 + (uint64_t)n * rows * cols) {
    nsde__error(ctx, st, "%s: header says %u images of %ux%u, the file has %zu bytes", pi, n, rows,
                cols, li);
    goto done;
  }
  if (be32(dl + 4) != n || ll != 8 + (size_t)n) {
    nsde__error(ctx, st, "%s: %u labels expected to match %s, the file has %zu bytes", pl, n, pi,
                ll);
    goto done;
  }
  if ((st = ds_new(ctx, 1, (int)rows, (int)cols, 10, &ds)) != NSDE_OK)
    goto done;
  if (max_images > 0 && (int64_t)n > max_images)
    n = (uint32_t)max_images;
  if ((st = ds_reserve(ds, n > 0 ? n : 1)) != NSDE_OK)
    goto done;
  for (uint32_t i = 0; i < n; i++) {
    if (dl[8 + i] > 9) {
      st = nsde__error(ctx, NSDE_ERR_FORMAT, "%s: label %u of image %u is out of 0..9", pl,
                       dl[8 + i], i);
      goto done;
    }
    ds->labels[i] = dl[8 + i];
  }
  memcpy(ds->pix, di + 16, (size_t)n * rows * cols);
  ds->n = n;
  st = NSDE_OK;
done:
  free(di);
  free(dl);
  free(pi);
  free(pl);
  if (st != NSDE_OK) {
    nsde_dataset_free(ds);
    return st;
  }
  *out = ds;
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_dataset_load_stl10(struct nsde_context *ctx, const char *dir,
                                                  enum nsde_split split, int64_t max_images,
                                                  struct nsde_dataset **out)
{
  const size_t item = 3 * 96 * 96;
  char *px = NULL, *py = NULL;
  unsigned char *dx = NULL, *dy = NULL;
  size_t lx = 0, ly = 0;
  struct nsde_dataset *ds = NULL;
  enum nsde_status st = check_args(ctx, dir, (int)split, max_images, out);
  int64_t n;

  if (st != NSDE_OK)
    return st;
  px = join(dir, split == NSDE_SPLIT_TRAIN ? "train_X.bin" : "test_X.bin");
  py = join(dir, split == NSDE_SPLIT_TRAIN ? "train_y.bin" : "test_y.bin");
  if (!px || !py) {
    st = nsde__error(ctx, NSDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  if ((st = read_file(ctx, px, &dx, &lx)) != NSDE_OK ||
      (st = read_file(ctx, py, &dy, &ly)) != NSDE_OK)
    goto done;
  if (lx == 0 || lx % item != 0) {
    st = nsde__error(ctx, NSDE_ERR_FORMAT, "%s: %zu bytes is not a whole number of 96x96x3 images",
                     px, lx);
    goto done;
  }
  n = (int64_t)(lx / item);
  if ((int64_t)ly != n) {
    st = nsde__error(ctx, NSDE_ERR_FORMAT, "%s: %zu labels for %lld images in %s", py, ly,
                     (long long)n, px);
    goto done;
  }
  if (max_images > 0 && n > max_images)
    n = max_images;
  if ((st = ds_new(ctx, 3, 96, 96, 10, &ds)) != NSDE_OK || (st = ds_reserve(ds, n)) != NSDE_OK)
    goto done;
  for (int64_t i = 0; i < n; i++) {
    const unsigned char *src = dx + (size_t)i * item;
    unsigned char *dst = ds->pix + (size_t)i * item;
    if (dy[i] < 1 || dy[i] > 10) {
      st = nsde__error(ctx, NSDE_ERR_FORMAT, "%s: label %d of image %lld is out of 1..10", py,
                       dy[i], (long long)i);
      goto done;
    }
    ds->labels[i] = dy[i] - 1;
    for (int c = 0; c < 3; c++) /* stored column-major: x fastest is wrong, y fastest is right */
      for (int x = 0; x < 96; x++)
        for (int y = 0; y < 96; y++)
          dst[(c * 96 + y) * 96 + x] = src[(c * 96 + x) * 96 + y];
  }
  ds->n = n;
done:
  free(px);
  free(py);
  free(dx);
  free(dy);
  if (st != NSDE_OK) {
    nsde_dataset_free(ds);
    return st;
  }
  *out = ds;
  return NSDE_OK;
}

NSDE_API int64_t nsde_dataset_size(const struct nsde_dataset *ds)
{
  return ds ? ds->n : -1;
}

NSDE_API enum nsde_status nsde_dataset_get_info(const struct nsde_dataset *ds, int *channels,
                                                int *height, int *width, int *classes)
{
  if (!ds)
    return NSDE_ERR_NULL;
  if (channels)
    *channels = ds->c;
  if (height)
    *height = ds->h;
  if (width)
    *width = ds->w;
  if (classes)
    *classes = ds->classes;
  return NSDE_OK;
}

NSDE_API int nsde_dataset_label(const struct nsde_dataset *ds, int64_t i)
{
  return ds && i >= 0 && i < ds->n ? ds->labels[i] : -1;
}

NSDE_API enum nsde_status nsde_dataset_batch(const struct nsde_dataset *ds, const int64_t *indices,
                                             int64_t count, int crop_pad, uint64_t seed,
                                             struct nsde_tensor *images, int32_t *labels)
{
  const int64_t item = ds ? (int64_t)ds->c * ds->h * ds->w : 0;
  float *out;

  if (!ds || !indices || !images)
    return nsde__error(ds ? ds->ctx : NULL, NSDE_ERR_NULL, "nsde_dataset_batch: NULL argument");
  if (count < 1 || crop_pad < 0 || crop_pad > 64)
    return nsde__error(ds->ctx, NSDE_ERR_INVALID, "nsde_dataset_batch: bad count or crop_pad");
  if (images->dtype != NSDE_DTYPE_FLOAT32 || !images->contiguous || images->numel != count * item)
    return nsde__error(ds->ctx, NSDE_ERR_SHAPE,
                       "nsde_dataset_batch: images must be contiguous float32 (%lld, %d, %d, %d)",
                       (long long)count, ds->c, ds->h, ds->w);
  for (int64_t k = 0; k < count; k++)
    if (indices[k] < 0 || indices[k] >= ds->n)
      return nsde__error(ds->ctx, NSDE_ERR_INVALID, "nsde_dataset_batch: index %lld out of 0..%lld",
                         (long long)indices[k], (long long)(ds->n - 1));
  out = images->data;
  for (int64_t k = 0; k < count; k++) {
    const unsigned char *src = ds->pix + (size_t)indices[k] * (size_t)item;
    float *dst = out + k * item;
    int oy = 0, ox = 0;
    if (crop_pad > 0) {
      uint32_t ctr[4] = {(uint32_t)indices[k], (uint32_t)(indices[k] >> 32), NSDE__PHILOX_CROP, 0},
               w[4];
      nsde__philox4x32_10(ctr, seed, w);
      oy = (int)(w[0] % (uint32_t)(2 * crop_pad + 1)) - crop_pad;
      ox = (int)(w[1] % (uint32_t)(2 * crop_pad + 1)) - crop_pad;
    }
    for (int c = 0; c < ds->c; c++)
      for (int y = 0; y < ds->h; y++)
        for (int x = 0; x < ds->w; x++) {
          int sy = y + oy, sx = x + ox;
          dst[(c * ds->h + y) * ds->w + x] =
              (sy < 0 || sy >= ds->h || sx < 0 || sx >= ds->w)
                  ? 0.0f
                  : (float)src[(c * ds->h + sy) * ds->w + sx] * (1.0f / 255.0f);
        }
    if (labels)
      labels[k] = ds->labels[indices[k]];
  }
  return NSDE_OK;
}

static void shuffle(int64_t *perm, int64_t n, uint64_t seed)
{
  for (int64_t i = 0; i < n; i++)
    perm[i] = i;
  for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates, Philox-driven */
    uint32_t ctr[4] = {(uint32_t)i, (uint32_t)(i >> 32), NSDE__PHILOX_PERMUTATION, 0}, w[4];
    uint64_t r;
    int64_t j, t;
    nsde__philox4x32_10(ctr, seed, w);
    r = ((uint64_t)w[0] << 32) | w[1];
    j = (int64_t)(r % (uint64_t)(i + 1));
    t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

NSDE_API enum nsde_status nsde_dataset_permutation(const struct nsde_dataset *ds, uint64_t seed,
                                                   int64_t *perm)
{
  if (!ds || !perm)
    return NSDE_ERR_NULL;
  shuffle(perm, ds->n, seed);
  return NSDE_OK;
}
