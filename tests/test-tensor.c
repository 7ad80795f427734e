/* Tensors: creation, bad input, elementwise ops, GEMM. SPDX-License-Identifier: MIT */
#include "testutil.h"

static struct nsde_context *ctx;

static void setup(void)
{
  ctx = test_ctx();
}
static void teardown(void)
{
  nsde_context_free(ctx);
}

START_TEST(new_and_query)
{
  int64_t shape[4] = {2, 3, 4, 5};
  struct nsde_tensor *t = NULL;
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, shape, &t), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_rank(t), 4);
  ck_assert_int_eq(nsde_tensor_numel(t), 120);
  ck_assert_int_eq(nsde_tensor_dtype(t), NSDE_DTYPE_FLOAT32);
  ck_assert_int_eq(nsde_tensor_dim(t, 2), 4);
  ck_assert_int_eq(nsde_tensor_dim(t, 4), -1);
  ck_assert_int_eq(nsde_tensor_dim(t, -1), -1);
  ck_assert_int_eq(nsde_tensor_stride(t, 0), 60);
  ck_assert_int_eq(nsde_tensor_stride(t, 3), 1);
  ck_assert_int_eq(nsde_tensor_is_contiguous(t), 1);
  ck_assert_int_eq((uintptr_t)nsde_tensor_data(t) % 64, 0);
  ck_assert_ptr_eq(nsde_tensor_data_const(t), nsde_tensor_data(t));
  for (int i = 0; i < 120; i++) /* zero-filled */
    ck_assert_float_eq(((float *)nsde_tensor_data(t))[i], 0.0f);
  nsde_tensor_free(t);
}
END_TEST

START_TEST(null_handles)
{
  int64_t shape[1] = {3};
  ck_assert_int_eq(nsde_tensor_rank(NULL), -1);
  ck_assert_int_eq(nsde_tensor_numel(NULL), -1);
  ck_assert_int_eq(nsde_tensor_dim(NULL, 0), -1);
  ck_assert_int_eq(nsde_tensor_stride(NULL, 0), -1);
  ck_assert_int_eq(nsde_tensor_dtype(NULL), 0);
  ck_assert_ptr_null(nsde_tensor_data(NULL));
  ck_assert_ptr_null(nsde_tensor_data_const(NULL));
  ck_assert_ptr_null(nsde_func_params_const(NULL));
  ck_assert_int_eq(nsde_tensor_is_contiguous(NULL), 0);
  ck_assert_int_eq(nsde_tensor_fill(NULL, 1), NSDE_ERR_NULL);
  ck_assert_int_eq(nsde_tensor_scale(NULL, 1), NSDE_ERR_NULL);
  ck_assert_int_eq(nsde_tensor_copy(NULL, NULL), NSDE_ERR_NULL);
  ck_assert_int_eq(nsde_tensor_axpy(1, NULL, NULL), NSDE_ERR_NULL);
  ck_assert_int_eq(nsde_tensor_gemm(NSDE_TRANS_NONE, NSDE_TRANS_NONE, 1, NULL, NULL, 0, NULL),
                   NSDE_ERR_NULL);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 1, shape, NULL), NSDE_ERR_NULL);
  ck_assert_int_eq(nsde_tensor_new(NULL, NSDE_DTYPE_FLOAT32, 1, shape, NULL), NSDE_ERR_NULL);
  nsde_tensor_free(NULL);
}
END_TEST

START_TEST(bad_shapes)
{
  struct nsde_tensor *t = (struct nsde_tensor *)0x1;
  int64_t zero[2] = {3, 0}, neg[2] = {-2, 3}, ok[2] = {2, 2};
  int64_t huge[2] = {(int64_t)1 << 20, (int64_t)1 << 20}; /* 2^40 elements */
  int64_t over[4] = {INT64_MAX / 2, 4, 1, 1};             /* overflows int64 */
  int64_t over_bytes[1] = {INT64_MAX / 2};                /* overflows bytes */

  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, zero, &t), NSDE_ERR_SHAPE);
  ck_assert_ptr_null(t);
  ck_assert_ptr_nonnull(strstr(nsde_context_last_error(ctx), "axis 1"));
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, neg, &t), NSDE_ERR_SHAPE);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 0, ok, &t), NSDE_ERR_SHAPE);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 5, ok, &t), NSDE_ERR_SHAPE);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, NULL, &t), NSDE_ERR_NULL);
  ck_assert_int_eq(nsde_tensor_new(ctx, (enum nsde_dtype)9, 2, ok, &t), NSDE_ERR_DTYPE);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, over, &t), NSDE_ERR_OVERFLOW);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 1, over_bytes, &t), NSDE_ERR_OVERFLOW);
  {
    enum nsde_status st = nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, huge, &t); /* 4 TiB */
    ck_assert_msg(st == NSDE_ERR_NOMEM || st == NSDE_OK, "status %d", st);
    nsde_tensor_free(st == NSDE_OK ? t : NULL);
  }
}
END_TEST

START_TEST(wrap_and_strides)
{
  double buf[24];
  int64_t shape[2] = {3, 4}, strides[2] = {1, 3}; /* column-major view */
  int64_t overlap[2] = {1, 1}, zero[2] = {0, 1};
  struct nsde_tensor *t, *c;

  for (int i = 0; i < 24; i++)
    buf[i] = i;
  ck_assert_int_eq(nsde_tensor_wrap(ctx, NSDE_DTYPE_FLOAT64, 2, shape, strides, buf, &t), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_is_contiguous(t), 0);
  ck_assert_int_eq(nsde_tensor_wrap(ctx, NSDE_DTYPE_FLOAT64, 2, shape, overlap, buf, &c),
                   NSDE_ERR_INVALID);
  ck_assert_int_eq(nsde_tensor_wrap(ctx, NSDE_DTYPE_FLOAT64, 2, shape, zero, buf, &c),
                   NSDE_ERR_INVALID);
  ck_assert_int_eq(nsde_tensor_wrap(ctx, NSDE_DTYPE_FLOAT64, 2, shape, NULL, NULL, &c),
                   NSDE_ERR_NULL);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &c), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_copy(c, t), NSDE_OK); /* transposes */
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++)
      ck_assert_double_eq(((double *)nsde_tensor_data(c))[i * 4 + j], (double)(i + 3 * j));
  ck_assert_int_eq(nsde_tensor_scale(t, 2.0), NSDE_OK);
  ck_assert_double_eq(buf[11], 22.0);
  ck_assert_double_eq(buf[12], 12.0);                      /* outside the view: untouched */
  ck_assert_int_eq(nsde_tensor_axpy(-1.0, c, t), NSDE_OK); /* t = 2*orig - orig */
  for (int i = 0; i < 12; i++)
    ck_assert_double_eq(buf[i], (double)i);
  ck_assert_int_eq(nsde_tensor_fill(t, 7.5), NSDE_OK);
  ck_assert_double_eq(buf[5], 7.5);
  ck_assert_int_eq(nsde_tensor_scale(t, NAN), NSDE_ERR_NONFINITE);
  ck_assert_int_eq(nsde_tensor_axpy(INFINITY, c, t), NSDE_ERR_NONFINITE);
  nsde_tensor_free(t);
  nsde_tensor_free(c);
}
END_TEST

START_TEST(mismatch)
{
  int64_t s1[2] = {2, 3}, s2[2] = {3, 2};
  struct nsde_tensor *a, *b, *c;
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, s1, &a), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, s2, &b), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, s1, &c), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_copy(a, b), NSDE_ERR_SHAPE);
  ck_assert_int_eq(nsde_tensor_copy(a, c), NSDE_ERR_DTYPE);
  ck_assert_int_eq(nsde_tensor_axpy(1.0, b, a), NSDE_ERR_SHAPE);
  ck_assert_int_eq(nsde_tensor_gemm(NSDE_TRANS_NONE, NSDE_TRANS_NONE, 1, a, a, 0, a),
                   NSDE_ERR_SHAPE);
  ck_assert_int_eq(nsde_tensor_gemm(NSDE_TRANS_NONE, NSDE_TRANS_NONE, 1, a, b, 0, c),
                   NSDE_ERR_DTYPE);
  ck_assert_int_eq(nsde_tensor_gemm((enum nsde_trans)5, NSDE_TRANS_NONE, 1, a, b, 0, a),
                   NSDE_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(nsde_context_last_error(ctx), "transposition"));
  nsde_tensor_free(a);
  nsde_tensor_free(b);
  nsde_tensor_free(c);
}
END_TEST

static double lcg(uint64_t *s)
{
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(*s >> 11) * 0x1.0p-53 - 0.5;
}

/* GEMM against a naive triple loop, all transpositions, both dtypes,
 * with a strided (sub-matrix) C. */
START_TEST(gemm_vs_naive)
{
  const int m = 37, n = 29, k = 53;
  uint64_t seed = 1;
  for (int dt = 1; dt <= 2; dt++)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++) {
        enum nsde_dtype dtype = (enum nsde_dtype)dt;
        int64_t sa[2] = {ta ? k : m, ta ? m : k}, sb[2] = {tb ? n : k, tb ? k : n};
        int64_t big[2] = {m + 3, n + 5}, sc[2] = {m, n}, stc[2] = {n + 5, 1};
        struct nsde_tensor *A, *Bt, *Cbig, *C;
        double *ref = malloc(sizeof(double) * m * n);
        double tol = dt == 1 ? 1e-4 : 1e-12;
        ck_assert_int_eq(nsde_tensor_new(ctx, dtype, 2, sa, &A), NSDE_OK);
        ck_assert_int_eq(nsde_tensor_new(ctx, dtype, 2, sb, &Bt), NSDE_OK);
        ck_assert_int_eq(nsde_tensor_new(ctx, dtype, 2, big, &Cbig), NSDE_OK);
        for (int i = 0; i < m * k; i++) {
          double v = lcg(&seed);
          if (dt == 1)
            ((float *)nsde_tensor_data(A))[i] = (float)v;
          else
            ((double *)nsde_tensor_data(A))[i] = v;
        }
        for (int i = 0; i < k * n; i++) {
          double v = lcg(&seed);
          if (dt == 1)
            ((float *)nsde_tensor_data(Bt))[i] = (float)v;
          else
            ((double *)nsde_tensor_data(Bt))[i] = v;
        }
        TRY(nsde_tensor_fill(Cbig, NAN)); /* beta = 0 must ignore it */
        ck_assert_int_eq(nsde_tensor_wrap(ctx, dtype, 2, sc, stc,
                                          (char *)nsde_tensor_data(Cbig) +
                                              (dt == 1 ? 4 : 8) * (size_t)(1 * (n + 5) + 2),
                                          &C),
                         NSDE_OK);
        for (int i = 0; i < m; i++)
          for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int p = 0; p < k; p++) {
              int ia = ta ? p * m + i : i * k + p, ib = tb ? j * k + p : p * n + j;
              double av = dt == 1 ? ((float *)nsde_tensor_data(A))[ia]
                                  : ((double *)nsde_tensor_data(A))[ia];
              double bv = dt == 1 ? ((float *)nsde_tensor_data(Bt))[ib]
                                  : ((double *)nsde_tensor_data(Bt))[ib];
              acc += av * bv;
            }
            ref[i * n + j] = 1.5 * acc;
          }
        ck_assert_int_eq(nsde_tensor_gemm(ta ? NSDE_TRANS_TRANSPOSE : NSDE_TRANS_NONE,
                                          tb ? NSDE_TRANS_TRANSPOSE : NSDE_TRANS_NONE, 1.5, A, Bt,
                                          0.0, C),
                         NSDE_OK);
        for (int i = 0; i < m; i++)
          for (int j = 0; j < n; j++) {
            size_t off = (size_t)(i + 1) * (n + 5) + (j + 2);
            double got = dt == 1 ? ((float *)nsde_tensor_data(Cbig))[off]
                                 : ((double *)nsde_tensor_data(Cbig))[off];
            ck_assert_msg(fabs(got - ref[i * n + j]) <= tol, "dt %d ta %d tb %d (%d,%d): %g vs %g",
                          dt, ta, tb, i, j, got, ref[i * n + j]);
          }
        /* beta = 1 accumulates */
        ck_assert_int_eq(nsde_tensor_gemm(ta ? NSDE_TRANS_TRANSPOSE : NSDE_TRANS_NONE,
                                          tb ? NSDE_TRANS_TRANSPOSE : NSDE_TRANS_NONE, 1.5, A, Bt,
                                          1.0, C),
                         NSDE_OK);
        {
          double got = dt == 1 ? ((float *)nsde_tensor_data(Cbig))[(n + 5) + 2]
                               : ((double *)nsde_tensor_data(Cbig))[(n + 5) + 2];
          ck_assert(fabs(got - 2 * ref[0]) <= 2 * tol);
          /* elements outside the view keep their NaN */
          ck_assert(isnan(dt == 1 ? ((float *)nsde_tensor_data(Cbig))[0]
                                  : ((double *)nsde_tensor_data(Cbig))[0]));
        }
        free(ref);
        nsde_tensor_free(C);
        nsde_tensor_free(A);
        nsde_tensor_free(Bt);
        nsde_tensor_free(Cbig);
      }
}
END_TEST

/* Large contiguous ops take the threaded path; results must not depend on it. */
START_TEST(threaded_ops)
{
  int64_t shape[1] = {300001};
  struct nsde_tensor *x, *y;
  ck_assert_int_eq(nsde_context_set_threads(ctx, 2), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 1, shape, &x), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 1, shape, &y), NSDE_OK);
  for (int64_t i = 0; i < shape[0]; i++)
    ((float *)nsde_tensor_data(x))[i] = (float)(i % 1000);
  TRY(nsde_tensor_fill(y, 1.0));
  ck_assert_int_eq(nsde_tensor_axpy(0.5, x, y), NSDE_OK);
  ck_assert_int_eq(nsde_tensor_scale(y, 2.0), NSDE_OK);
  for (int64_t i = 0; i < shape[0]; i++)
    ck_assert_float_eq(((float *)nsde_tensor_data(y))[i], 2.0f + (float)(i % 1000));
  nsde_tensor_free(x);
  nsde_tensor_free(y);
}
END_TEST

/* GEMM bits do not depend on the thread count, also for the small, skinny
 * shapes of convolution weight gradients (BLIS's "sup" kernels differ there). */
START_TEST(gemm_thread_independent)
{
  const int shapes[4][3] = {{8, 27, 900}, {64, 27, 900}, {16, 153, 900}, {900, 64, 585}};
  for (int s = 0; s < 4; s++) {
    int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
    int64_t sa[2] = {m, k}, sb[2] = {n, k}, sc[2] = {m, n};
    struct nsde_tensor *A, *B, *C1, *C2;
    uint64_t seed = 7;
    ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, sa, &A), NSDE_OK);
    ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, sb, &B), NSDE_OK);
    ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, sc, &C1), NSDE_OK);
    ck_assert_int_eq(nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, sc, &C2), NSDE_OK);
    for (int i = 0; i < m * k; i++)
      ((float *)nsde_tensor_data(A))[i] = (float)lcg(&seed);
    for (int i = 0; i < n * k; i++)
      ((float *)nsde_tensor_data(B))[i] = (float)lcg(&seed);
    TRY(nsde_context_set_threads(ctx, 1));
    ck_assert_int_eq(nsde_tensor_gemm(NSDE_TRANS_NONE, NSDE_TRANS_TRANSPOSE, 1.0, A, B, 0.0, C1),
                     NSDE_OK);
    TRY(nsde_context_set_threads(ctx, 2));
    ck_assert_int_eq(nsde_tensor_gemm(NSDE_TRANS_NONE, NSDE_TRANS_TRANSPOSE, 1.0, A, B, 0.0, C2),
                     NSDE_OK);
    ck_assert_msg(
        !memcmp(nsde_tensor_data(C1), nsde_tensor_data(C2), sizeof(float) * (size_t)(m * n)),
        "%dx%dx%d differs between 1 and 2 threads", m, n, k);
    nsde_tensor_free(A);
    nsde_tensor_free(B);
    nsde_tensor_free(C1);
    nsde_tensor_free(C2);
  }
}
END_TEST

int main(void)
{
  Suite *s = suite_create("tensor");
  TCase *tc = tcase_create("tensor");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, new_and_query);
  tcase_add_test(tc, null_handles);
  tcase_add_test(tc, bad_shapes);
  tcase_add_test(tc, wrap_and_strides);
  tcase_add_test(tc, mismatch);
  tcase_add_test(tc, gemm_vs_naive);
  tcase_add_test(tc, threaded_ops);
  tcase_add_test(tc, gemm_thread_independent);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
