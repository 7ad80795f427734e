/* Data readers on generated files, good and bad; batches; permutations.
 * SPDX-License-Identifier: MIT */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static struct nsde_context *ctx;
static char dir[4096];

static void setup(void)
{
  const char *tmp = getenv("NSDE_TEST_TMP");
  ctx = test_ctx();
  snprintf(dir, sizeof(dir), "%s/data-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
  char cmd[4200];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
  nsde_context_free(ctx);
}

static void put(const char *name, const unsigned char *d, size_t n, int gz)
{
  char path[4400];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  if (gz) {
    gzFile f = gzopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(gzwrite(f, d, (unsigned)n), (int)n);
    gzclose(f);
  } else {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(d, 1, n, f), n);
    fclose(f);
  }
}

/* CIFAR-10: record r has label r % 10 and pixel value (r + i) % 256. */
static unsigned char *cifar_records(int n)
{
  unsigned char *d = malloc((size_t)n * 3073);
  for (int r = 0; r < n; r++) {
    d[r * 3073] = (unsigned char)(r % 10);
    for (int i = 0; i < 3072; i++)
      d[r * 3073 + 1 + i] = (unsigned char)((r + i) % 256);
  }
  return d;
}

START_TEST(cifar10_good)
{
  unsigned char *d = cifar_records(25);
  struct nsde_dataset *ds;
  struct nsde_tensor *x;
  int64_t shape[4] = {2, 3, 32, 32}, idx[2] = {0, 13};
  int32_t labels[2];
  int c, h, w, k;
  for (int f = 1; f <= 5; f++) {
    char name[32];
    snprintf(name, sizeof(name), "data_batch_%d.bin", f);
    put(name, d + (f - 1) * 5 * 3073, 5 * 3073, 0);
  }
  put("test_batch.bin", d, 3 * 3073, 0);
  ck_assert_int_eq(nsde_dataset_load_cifar10(ctx, dir, NSDE_SPLIT_TRAIN, 0, &ds), NSDE_OK);
  ck_assert_int_eq(nsde_dataset_size(ds), 25);
  ck_assert_int_eq(nsde_dataset_get_info(ds, &c, &h, &w, &k), NSDE_OK);
  ck_assert(c == 3 && h == 32 && w == 32 && k == 10);
  ck_assert_int_eq(nsde_dataset_label(ds, 13), 3);
  ck_assert_int_eq(nsde_dataset_label(ds, 25), -1);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, shape, &x), NSDE_OK);
  ck_assert_int_eq(nsde_dataset_batch(ds, idx, 2, 0, 0, x, labels), NSDE_OK);
  ck_assert_int_eq(labels[1], 3);
  ck_assert_float_eq_tol(((float *)nsde_tensor_data(x))[3072 + 5], (float)((13 + 5) % 256) / 255.0f,
                         1e-6f);
  /* random crop: a shifted copy with zero fill, the same for the same seed */
  {
    struct nsde_tensor *y;
    int nonzero_shift = 0;
    ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, shape, &y), NSDE_OK);
    for (uint64_t seed = 0; seed < 20 && !nonzero_shift; seed++) {
      const float *a = nsde_tensor_data(x), *b = nsde_tensor_data(y);
      ck_assert_int_eq(nsde_dataset_batch(ds, idx, 2, 4, seed, y, NULL), NSDE_OK);
      ck_assert_int_eq(nsde_dataset_batch(ds, idx, 2, 0, 0, x, NULL), NSDE_OK);
      /* every crop pixel is either zero fill or some original pixel of that channel */
      for (int i = 0; i < 2 * 3072; i++) {
        int found = b[i] == 0.0f;
        for (int j = (i / 1024) * 1024; !found && j < (i / 1024 + 1) * 1024; j++)
          found = a[j] == b[i];
        ck_assert(found);
      }
      nonzero_shift = memcmp(a, b, sizeof(float) * 6144) != 0;
    }
    ck_assert(nonzero_shift);
    nsde_tensor_free(y);
  }
  nsde_dataset_free(ds);
  ck_assert_int_eq(nsde_dataset_load_cifar10(ctx, dir, NSDE_SPLIT_TRAIN, 7, &ds), NSDE_OK);
  ck_assert_int_eq(nsde_dataset_size(ds), 7);
  nsde_dataset_free(ds);
  ck_assert_int_eq(nsde_dataset_load_cifar10(ctx, dir, NSDE_SPLIT_TEST, 0, &ds), NSDE_OK);
  ck_assert_int_eq(nsde_dataset_size(ds), 3);
  idx[1] = 3;
  ck_assert_int_eq(nsde_dataset_batch(ds, idx, 2, 0, 0, x, labels), NSDE_ERR_INVALID);
  ck_assert_int_eq(nsde_dataset_batch(ds, idx, 2, -1, 0, x, labels), NSDE_ERR_INVALID);
  nsde_dataset_free(ds);
  nsde_tensor_free(x);
  free(d);
}
END_TEST

START_TEST(cifar10_bad)
{
  unsigned char *d = cifar_records(4);
  struct nsde_dataset *ds = (struct nsde_dataset *)0x1;
  /* missing files */
  ck_assert_int_eq(nsde_dataset_load_cifar10(ctx, dir, NSDE_SPLIT_TEST, 0, &ds), NSDE_ERR_IO);
  ck_assert_ptr_null(ds);
  ck_assert_ptr_nonnull(strstr(nsde_context_last_error(ctx), "test_batch.bin"));
  /* truncated record */
  put("test_batch.bin", d, 3 * 3073 + 100, 0);
  ck_assert_int_eq(nsde_dataset_load_cifar10(ctx, dir, NSDE_SPLIT_TEST, 0, &ds), NSDE_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(nsde_context_last_error(ctx), "truncated"));
  /* empty file */
  put("test_batch.bin", d, 0, 0);
  ck_assert_int_eq(nsde_dataset_load_cifar10(ctx, dir, NSDE_SPLIT_TEST, 0, &ds), NSDE_ERR_FORMAT);
  /* bad label */
  d[3073] = 200;
  put("test_batch.bin", d, 4 * 3073, 0);
  ck_assert_int_eq(nsde_dataset_load_cifar10(ctx, dir, NSDE_SPLIT_TEST, 0, &ds), NSDE_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(nsde_context_last_error(ctx), "label"));
  /* a directory where a file should be */
  {
    char p[4400];
    snprintf(p, sizeof(p), "%s/test_batch.bin", dir);
    remove(p);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    ck_assert_int_eq(nsde_dataset_load_cifar10(ctx, dir, NSDE_SPLIT_TEST, 0, &ds), NSDE_ERR_IO);
    rmdir(p);
  }
  ck_assert_int_eq(nsde_dataset_load_cifar10(ctx, NULL, NSDE_SPLIT_TEST, 0, &ds), NSDE_ERR_NULL);
  ck_assert_int_eq(nsde_dataset_load_cifar10(ctx, dir, (enum nsde_split)5, 0, &ds),
                   NSDE_ERR_INVALID);
  ck_assert_int_eq(nsde_dataset_load_cifar10(ctx, dir, NSDE_SPLIT_TEST, -1, &ds), NSDE_ERR_INVALID);
  nsde_dataset_free(NULL);
  ck_assert_int_eq(nsde_dataset_size(NULL), -1);
  free(d);
}
END_TEST

static size_t idx_images(unsigned char *b, uint32_t n, uint32_t rows, uint32_t cols)
{
  const uint32_t hdr[4] = {0x00000803, n, rows, cols};
  for (int i = 0; i < 4; i++) {
    b[4 * i] = (unsigned char)(hdr[i] >> 24);
    b[4 * i + 1] = (unsigned char)(hdr[i] >> 16);
    b[4 * i + 2] = (unsigned char)(hdr[i] >> 8);
    b[4 * i + 3] = (unsigned char)hdr[i];
  }
  for (uint32_t i = 0; i < n * rows * cols; i++)
    b[16 + i] = (unsigned char)(i * 7);
  return 16 + (size_t)n * rows * cols;
}

static size_t idx_labels(unsigned char *b, uint32_t n)
{
  const uint32_t hdr[2] = {0x00000801, n};
  for (int i = 0; i < 2; i++) {
    b[4 * i] = (unsigned char)(hdr[i] >> 24);
    b[4 * i + 1] = (unsigned char)(hdr[i] >> 16);
    b[4 * i + 2] = (unsigned char)(hdr[i] >> 8);
    b[4 * i + 3] = (unsigned char)hdr[i];
  }
  for (uint32_t i = 0; i < n; i++)
    b[8 + i] = (unsigned char)(i % 10);
  return 8 + n;
}

START_TEST(fashion_mnist)
{
  unsigned char img[16 + 6 * 28 * 28], lab[8 + 6];
  size_t ni = idx_images(img, 6, 28, 28), nl = idx_labels(lab, 6);
  struct nsde_dataset *ds;
  int c, h, w;
  for (int gz = 0; gz < 2; gz++) {
    put(gz ? "t10k-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte", img, ni, gz);
    put(gz ? "t10k-labels-idx1-ubyte.gz" : "t10k-labels-idx1-ubyte", lab, nl, gz);
    ck_assert_msg(nsde_dataset_load_fashion_mnist(ctx, dir, NSDE_SPLIT_TEST, 0, &ds) == NSDE_OK,
                  "%s", nsde_context_last_error(ctx));
    ck_assert_int_eq(nsde_dataset_size(ds), 6);
    TRY(nsde_dataset_get_info(ds, &c, &h, &w, NULL));
    ck_assert(c == 1 && h == 28 && w == 28);
    ck_assert_int_eq(nsde_dataset_label(ds, 4), 4);
    nsde_dataset_free(ds);
  }
  /* bad: wrong magic, header/size mismatch, label count mismatch, truncated gzip */
  img[3] = 0x01;
  put("t10k-images-idx3-ubyte.gz", img, ni, 1);
  ck_assert_int_eq(nsde_dataset_load_fashion_mnist(ctx, dir, NSDE_SPLIT_TEST, 0, &ds),
                   NSDE_ERR_FORMAT);
  img[3] = 0x03;
  put("t10k-images-idx3-ubyte.gz", img, ni - 5, 1);
  ck_assert_int_eq(nsde_dataset_load_fashion_mnist(ctx, dir, NSDE_SPLIT_TEST, 0, &ds),
                   NSDE_ERR_FORMAT);
  put("t10k-images-idx3-ubyte.gz", img, ni, 1);
  put("t10k-labels-idx1-ubyte.gz", lab, nl - 1, 1);
  ck_assert_int_eq(nsde_dataset_load_fashion_mnist(ctx, dir, NSDE_SPLIT_TEST, 0, &ds),
                   NSDE_ERR_FORMAT);
  {
    /* a gzip stream cut in half */
    char p[4400];
    FILE *f;
    long sz;
    unsigned char buf[8192];
    put("t10k-labels-idx1-ubyte.gz", lab, nl, 1);
    snprintf(p, sizeof(p), "%s/t10k-images-idx3-ubyte.gz", dir);
    f = fopen(p, "rb");
    sz = (long)fread(buf, 1, sizeof(buf), f);
    fclose(f);
    f = fopen(p, "wb");
    fwrite(buf, 1, (size_t)sz / 2, f);
    fclose(f);
    ck_assert_int_eq(nsde_dataset_load_fashion_mnist(ctx, dir, NSDE_SPLIT_TEST, 0, &ds),
                     NSDE_ERR_FORMAT);
  }
  ck_assert_int_eq(nsde_dataset_load_fashion_mnist(ctx, dir, NSDE_SPLIT_TRAIN, 0, &ds),
                   NSDE_ERR_IO);
}
END_TEST

START_TEST(stl10)
{
  const size_t item = 3 * 96 * 96;
  unsigned char *x = malloc(2 * item), y[2] = {1, 10};
  struct nsde_dataset *ds;
  struct nsde_tensor *t;
  int64_t shape[4] = {1, 3, 96, 96}, idx[1] = {1};
  int32_t lab;
  for (size_t i = 0; i < 2 * item; i++)
    x[i] = (unsigned char)(i % 251);
  put("test_X.bin", x, 2 * item, 0);
  put("test_y.bin", y, 2, 0);
  ck_assert_int_eq(nsde_dataset_load_stl10(ctx, dir, NSDE_SPLIT_TEST, 0, &ds), NSDE_OK);
  ck_assert_int_eq(nsde_dataset_size(ds), 2);
  ck_assert_int_eq(nsde_dataset_label(ds, 1), 9);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, shape, &t), NSDE_OK);
  ck_assert_int_eq(nsde_dataset_batch(ds, idx, 1, 0, 0, t, &lab), NSDE_OK);
  /* stored column-major: file (c, x, y) is pixel (c, row y, column x) */
  {
    int c = 2, row = 5, colm = 17;
    size_t file = item + (size_t)(c * 96 + colm) * 96 + row;
    ck_assert_float_eq_tol(((float *)nsde_tensor_data(t))[(c * 96 + row) * 96 + colm],
                           (float)x[file] / 255.0f, 1e-6f);
  }
  nsde_dataset_free(ds);
  y[1] = 11;
  put("test_y.bin", y, 2, 0);
  ck_assert_int_eq(nsde_dataset_load_stl10(ctx, dir, NSDE_SPLIT_TEST, 0, &ds), NSDE_ERR_FORMAT);
  put("test_y.bin", y, 1, 0);
  ck_assert_int_eq(nsde_dataset_load_stl10(ctx, dir, NSDE_SPLIT_TEST, 0, &ds), NSDE_ERR_FORMAT);
  put("test_X.bin", x, item + 7, 0);
  ck_assert_int_eq(nsde_dataset_load_stl10(ctx, dir, NSDE_SPLIT_TEST, 0, &ds), NSDE_ERR_FORMAT);
  nsde_tensor_free(t);
  free(x);
}
END_TEST

START_TEST(permutation)
{
  /* recorded: the order nsde-train uses (resumed runs rely on it) */
  static const int64_t want[25] = {7,  23, 3,  19, 21, 20, 2,  13, 8, 9, 1,  0, 18,
                                   15, 24, 14, 22, 11, 16, 10, 12, 6, 5, 17, 4};
  unsigned char *d = cifar_records(25);
  struct nsde_dataset *ds;
  int64_t p[25], q[25];
  int seen[25] = {0};
  put("test_batch.bin", d, 25 * 3073, 0);
  free(d);
  ck_assert_int_eq(nsde_dataset_load_cifar10(ctx, dir, NSDE_SPLIT_TEST, 0, &ds), NSDE_OK);
  ck_assert_int_eq(nsde_dataset_permutation(ds, 5, p), NSDE_OK);
  ck_assert(!memcmp(p, want, sizeof(want)));
  ck_assert_int_eq(nsde_dataset_permutation(ds, 6, q), NSDE_OK);
  ck_assert(memcmp(p, q, sizeof(want)) != 0);
  ck_assert_int_eq(nsde_dataset_permutation(NULL, 5, p), NSDE_ERR_NULL);
  ck_assert_int_eq(nsde_dataset_permutation(ds, 5, NULL), NSDE_ERR_NULL);
  nsde_dataset_free(ds);
  for (int i = 0; i < 25; i++) /* a permutation of 0..24 */
    seen[p[i]]++;
  for (int i = 0; i < 25; i++)
    ck_assert_int_eq(seen[i], 1);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("data");
  TCase *tc = tcase_create("data");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, cifar10_good);
  tcase_add_test(tc, cifar10_bad);
  tcase_add_test(tc, fashion_mnist);
  tcase_add_test(tc, stl10);
  tcase_add_test(tc, permutation);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
