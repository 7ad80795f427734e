/*
 * Tensors: creation, queries, elementwise operations, GEMM.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsde-private.h"

static void set_contiguous_strides(struct nsde_tensor *t)
{
  int64_t s = 1;

  for (int i = t->rank - 1; i >= 0; i--) {
    t->stride[i] = s;
    s *= t->shape[i];
  }
}

static int is_contiguous(const struct nsde_tensor *t)
{
  int64_t s = 1;

  for (int i = t->rank - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->stride[i] != s)
      return 0;
    s *= t->shape[i];
  }
  return 1;
}

/* Positive strides that never map two indices to one element: sort axes by
 * stride; each stride must be at least the span of the axes below it. */
static bool strides_ok(int rank, const int64_t *shape, const int64_t *stride, int64_t *span)
{
  int order[NSDE_MAX_RANK];
  int64_t reach = 1; /* elements covered by the axes seen so far */

  for (int i = 0; i < rank; i++) {
    if (stride[i] < 1)
      return false;
    order[i] = i;
  }
  for (int i = 1; i < rank; i++)
    for (int j = i; j > 0 && stride[order[j]] < stride[order[j - 1]]; j--) {
      int tmp = order[j];
      order[j] = order[j - 1];
      order[j - 1] = tmp;
    }
  for (int i = 0; i < rank; i++) {
    int ax = order[i];
    int64_t ext;
    if (shape[ax] == 1)
      continue;
    if (stride[ax] < reach)
      return false;
    if (!nsde__mul_i64(stride[ax], shape[ax] - 1, &ext) || ext > INT64_MAX - 1)
      return false;
    reach = ext + 1 > reach ? ext + 1 : reach;
  }
  *span = reach;
  return true;
}

static enum nsde_status tensor_init(struct nsde_context *ctx, enum nsde_dtype dtype, int rank,
                                    const int64_t *shape, struct nsde_tensor **out,
                                    struct nsde_tensor **t)
{
  enum nsde_status st;
  int64_t numel;

  if (!out)
    return nsde__error(ctx, NSDE_ERR_NULL, "output pointer is NULL");
  *out = NULL;
  if (!ctx)
    return NSDE_ERR_NULL;
  if (!nsde__dtype_valid(dtype))
    return nsde__error(ctx, NSDE_ERR_DTYPE, "unknown dtype %d", (int)dtype);
  st = nsde__check_shape(ctx, "nsde_tensor_new", rank, shape, &numel);
  if (st != NSDE_OK)
    return st;
  *t = calloc(1, sizeof(**t));
  if (!*t)
    return nsde__error(ctx, NSDE_ERR_NOMEM, "out of memory for a tensor header");
  (*t)->ctx = ctx;
  (*t)->dtype = dtype;
  (*t)->rank = rank;
  (*t)->numel = numel;
  memcpy((*t)->shape, shape, (size_t)rank * sizeof(int64_t));
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_tensor_new(struct nsde_context *ctx, enum nsde_dtype dtype, int rank,
                                          const int64_t *shape, struct nsde_tensor **out)
{
  struct nsde_tensor *t = NULL;
  size_t bytes;
  enum nsde_status st = tensor_init(ctx, dtype, rank, shape, out, &t);

  if (st != NSDE_OK)
    return st;
  if (!nsde__mul_size((size_t)t->numel, nsde__dtype_size(dtype), &bytes) ||
      bytes > (size_t)PTRDIFF_MAX) {
    long long n = (long long)t->numel;
    free(t);
    return nsde__error(ctx, NSDE_ERR_OVERFLOW, "tensor of %lld elements overflows the byte size",
                       n);
  }
  t->owned = nsde__alloc(bytes);
  if (!t->owned) {
    long long n = (long long)t->numel;
    free(t);
    return nsde__error(ctx, NSDE_ERR_NOMEM, "cannot allocate %zu bytes for %lld elements", bytes,
                       n);
  }
  memset(t->owned, 0, bytes);
  t->data = t->owned;
  set_contiguous_strides(t);
  t->contiguous = 1;
  *out = t;
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_tensor_wrap(struct nsde_context *ctx, enum nsde_dtype dtype,
                                           int rank, const int64_t *shape, const int64_t *strides,
                                           void *data, struct nsde_tensor **out)
{
  struct nsde_tensor *t = NULL;
  enum nsde_status st;
  int64_t span;
  size_t bytes;

  if (out)
    *out = NULL;
  if (!data)
    return nsde__error(ctx, NSDE_ERR_NULL, "data pointer is NULL");
  st = tensor_init(ctx, dtype, rank, shape, out, &t);
  if (st != NSDE_OK)
    return st;
  if (strides) {
    if (!strides_ok(rank, shape, strides, &span)) {
      free(t);
      return nsde__error(ctx, NSDE_ERR_INVALID,
                         "strides must be positive and must not make elements overlap");
    }
    memcpy(t->stride, strides, (size_t)rank * sizeof(int64_t));
  } else {
    set_contiguous_strides(t);
    span = t->numel;
  }
  if (!nsde__mul_size((size_t)span, nsde__dtype_size(dtype), &bytes) ||
      bytes > (size_t)PTRDIFF_MAX) {
    free(t);
    return nsde__error(ctx, NSDE_ERR_OVERFLOW, "wrapped tensor spans more bytes than fit");
  }
  t->data = data;
  t->contiguous = is_contiguous(t);
  *out = t;
  return NSDE_OK;
}

NSDE_API void nsde_tensor_free(struct nsde_tensor *t)
{
  if (!t)
    return;
  nsde__free(t->owned);
  free(t);
}

NSDE_API int nsde_tensor_rank(const struct nsde_tensor *t)
{
  return t ? t->rank : -1;
}

NSDE_API int64_t nsde_tensor_dim(const struct nsde_tensor *t, int axis)
{
  return (t && axis >= 0 && axis < t->rank) ? t->shape[axis] : -1;
}

NSDE_API int64_t nsde_tensor_stride(const struct nsde_tensor *t, int axis)
{
  return (t && axis >= 0 && axis < t->rank) ? t->stride[axis] : -1;
}

NSDE_API int64_t nsde_tensor_numel(const struct nsde_tensor *t)
{
  return t ? t->numel : -1;
}

NSDE_API enum nsde_dtype nsde_tensor_dtype(const struct nsde_tensor *t)
{
  return t ? t->dtype : (enum nsde_dtype)0;
}

NSDE_API void *nsde_tensor_data(struct nsde_tensor *t)
{
  return t ? t->data : NULL;
}
NSDE_API const void *nsde_tensor_data_const(const struct nsde_tensor *t)
{
  return t ? t->data : NULL;
}

NSDE_API bool nsde_tensor_is_contiguous(const struct nsde_tensor *t)
{
  return t ? t->contiguous : 0;
}

/* ---- elementwise kernels ------------------------------------------------
 * Every operation is y[i] = op(y[i], x[i]) over one or two tensors of one
 * shape. Contiguous operands take a flat, vectorised, threaded loop; other
 * layouts walk the (padded to rank 4) index space. */

enum ew_op { EW_FILL, EW_COPY, EW_SCALE, EW_AXPY };

#define EW_LOOP(T, SFX)                                                                            \
  static void ew_flat##SFX(enum ew_op op, int64_t n, double a, const T *x, T *y, int nt)           \
  {                                                                                                \
    const T av = (T)a;                                                                             \
    (void)nt;                                                                                      \
    switch (op) {                                                                                  \
    case EW_FILL:                                                                                  \
      NSDE_PAR_FOR_SIMD(nt > 1 && n > NSDE_PAR_MIN, "omp parallel for simd num_threads(nt)",       \
                        "omp simd", for (int64_t i = 0; i < n; i++) y[i] = av;);                   \
      break;                                                                                       \
    case EW_COPY:                                                                                  \
      NSDE_PAR_FOR_SIMD(nt > 1 && n > NSDE_PAR_MIN, "omp parallel for simd num_threads(nt)",       \
                        "omp simd", for (int64_t i = 0; i < n; i++) y[i] = x[i];);                 \
      break;                                                                                       \
    case EW_SCALE:                                                                                 \
      NSDE_PAR_FOR_SIMD(nt > 1 && n > NSDE_PAR_MIN, "omp parallel for simd num_threads(nt)",       \
                        "omp simd", for (int64_t i = 0; i < n; i++) y[i] *= av;);                  \
      break;                                                                                       \
    case EW_AXPY:                                                                                  \
      NSDE_PAR_FOR_SIMD(nt > 1 && n > NSDE_PAR_MIN, "omp parallel for simd num_threads(nt)",       \
                        "omp simd", for (int64_t i = 0; i < n; i++) y[i] += av * x[i];);           \
      break;                                                                                       \
    }                                                                                              \
  }                                                                                                \
  static void ew_strided##SFX(enum ew_op op, const int64_t *shape, double a, const T *x,           \
                              const int64_t *sx, T *y, const int64_t *sy)                          \
  {                                                                                                \
    const T av = (T)a;                                                                             \
    for (int64_t i0 = 0; i0 < shape[0]; i0++)                                                      \
      for (int64_t i1 = 0; i1 < shape[1]; i1++)                                                    \
        for (int64_t i2 = 0; i2 < shape[2]; i2++)                                                  \
          for (int64_t i3 = 0; i3 < shape[3]; i3++) {                                              \
            T *py = y + i0 * sy[0] + i1 * sy[1] + i2 * sy[2] + i3 * sy[3];                         \
            const T *px = x ? x + i0 * sx[0] + i1 * sx[1] + i2 * sx[2] + i3 * sx[3] : NULL;        \
            switch (op) {                                                                          \
            case EW_FILL: *py = av; break;                                                         \
            case EW_COPY: *py = *px; break;                                                        \
            case EW_SCALE: *py *= av; break;                                                       \
            case EW_AXPY: *py += av * *px; break;                                                  \
            }                                                                                      \
          }                                                                                        \
  }

NSDE__FOR_DTYPES(EW_LOOP)

static void pad4(const struct nsde_tensor *t, int64_t *shape, int64_t *stride)
{
  int off = NSDE_MAX_RANK - t->rank;

  for (int i = 0; i < NSDE_MAX_RANK; i++) {
    shape[i] = i < off ? 1 : t->shape[i - off];
    stride[i] = i < off ? 0 : t->stride[i - off];
  }
}

static void ew_run(enum ew_op op, double a, const struct nsde_tensor *x, struct nsde_tensor *y)
{
  int nt = y->ctx ? y->ctx->threads : 1;

  if (y->contiguous && (!x || x->contiguous)) {
    if (y->dtype == NSDE_DTYPE_FLOAT32)
      ew_flat_f32(op, y->numel, a, x ? x->data : NULL, y->data, nt);
    else
      ew_flat_f64(op, y->numel, a, x ? x->data : NULL, y->data, nt);
  } else {
    int64_t shape[4], sy[4], sx[4] = {0, 0, 0, 0};
    pad4(y, shape, sy);
    if (x)
      pad4(x, shape, sx);
    if (y->dtype == NSDE_DTYPE_FLOAT32)
      ew_strided_f32(op, shape, a, x ? x->data : NULL, sx, y->data, sy);
    else
      ew_strided_f64(op, shape, a, x ? x->data : NULL, sx, y->data, sy);
  }
}

/* "(2, 3, -)" into buf: a shape, "-" for any extent. */
static const char *shape_str(char *buf, size_t cap, int rank, const int64_t *shape)
{
  size_t k = 0;
  buf[k++] = '(';
  for (int i = 0; i < rank && k + 24 < cap; i++)
    k += (size_t)(shape[i] < 0
                      ? snprintf(buf + k, cap - k, "%s-", i ? ", " : "")
                      : snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]));
  snprintf(buf + k, cap - k, ")");
  return buf;
}

enum nsde_status nsde__check_tensor(struct nsde_context *ctx, const char *fn, const char *what,
                                    const struct nsde_tensor *t, enum nsde_dtype dt, int rank,
                                    const int64_t *shape, bool contiguous)
{
  char want[256], got[256];
  bool ok = true;

  if (!t)
    return nsde__error(ctx, NSDE_ERR_NULL, "%s: %s is NULL", fn, what);
  if (t->dtype != dt)
    return nsde__error(ctx, NSDE_ERR_DTYPE, "%s: %s is %s, must be %s", fn, what,
                       nsde__dtype_name(t->dtype), nsde__dtype_name(dt));
  if (rank >= 0) {
    ok = t->rank == rank;
    for (int i = 0; ok && i < rank; i++)
      ok = shape[i] < 0 || t->shape[i] == shape[i];
  }
  if (!ok)
    return nsde__error(ctx, NSDE_ERR_SHAPE, "%s: %s has shape %s, must be %s", fn, what,
                       shape_str(got, sizeof(got), t->rank, t->shape),
                       shape_str(want, sizeof(want), rank, shape));
  if (contiguous && !t->contiguous)
    return nsde__error(ctx, NSDE_ERR_SHAPE, "%s: %s must be contiguous", fn, what);
  return NSDE_OK;
}

/* x must match y's dtype and shape (names xn, yn in fn's messages). */
static enum nsde_status check_pair(const struct nsde_tensor *x, const struct nsde_tensor *y,
                                   const char *fn, const char *xn, const char *yn)
{
  if (!y)
    return nsde__error(x ? x->ctx : NULL, NSDE_ERR_NULL, "%s: %s is NULL", fn, yn);
  return nsde__check_tensor(y->ctx, fn, xn, x, y->dtype, y->rank, y->shape, false);
}

NSDE_API enum nsde_status nsde_tensor_fill(struct nsde_tensor *t, double value)
{
  if (!t)
    return NSDE_ERR_NULL;
  ew_run(EW_FILL, value, NULL, t);
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_tensor_copy(struct nsde_tensor *dst, const struct nsde_tensor *src)
{
  enum nsde_status st = check_pair(src, dst, "nsde_tensor_copy", "src", "dst");

  if (st != NSDE_OK)
    return st;
  if (dst->data == src->data && !memcmp(dst->stride, src->stride, sizeof(dst->stride)))
    return NSDE_OK;
  ew_run(EW_COPY, 0.0, src, dst);
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_tensor_scale(struct nsde_tensor *t, double alpha)
{
  if (!t)
    return NSDE_ERR_NULL;
  if (!isfinite(alpha))
    return nsde__error(t->ctx, NSDE_ERR_NONFINITE, "nsde_tensor_scale: alpha is not finite");
  ew_run(EW_SCALE, alpha, NULL, t);
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_tensor_axpy(double alpha, const struct nsde_tensor *x,
                                           struct nsde_tensor *y)
{
  enum nsde_status st = check_pair(x, y, "nsde_tensor_axpy", "x", "y");

  if (st != NSDE_OK)
    return st;
  if (!isfinite(alpha))
    return nsde__error(y->ctx, NSDE_ERR_NONFINITE, "nsde_tensor_axpy: alpha is not finite");
  ew_run(EW_AXPY, alpha, x, y);
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_tensor_gemm(enum nsde_trans trans_a, enum nsde_trans trans_b,
                                           double alpha, const struct nsde_tensor *a,
                                           const struct nsde_tensor *b, double beta,
                                           struct nsde_tensor *c)
{
  struct nsde_context *ctx = c ? c->ctx : NULL;
  int64_t m, n, k, kb;

  if (!a || !b || !c)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_tensor_gemm: tensor is NULL");
  if ((trans_a != NSDE_TRANS_NONE && trans_a != NSDE_TRANS_TRANSPOSE) ||
      (trans_b != NSDE_TRANS_NONE && trans_b != NSDE_TRANS_TRANSPOSE))
    return nsde__error(ctx, NSDE_ERR_INVALID, "nsde_tensor_gemm: bad transposition flag");
  if (a->dtype != c->dtype || b->dtype != c->dtype)
    return nsde__error(ctx, NSDE_ERR_DTYPE, "nsde_tensor_gemm: dtypes differ");
  if (a->rank != 2 || b->rank != 2 || c->rank != 2)
    return nsde__error(ctx, NSDE_ERR_SHAPE, "nsde_tensor_gemm: operands must have rank 2");
  if (!isfinite(alpha) || !isfinite(beta))
    return nsde__error(ctx, NSDE_ERR_NONFINITE, "nsde_tensor_gemm: alpha or beta not finite");
  m = trans_a ? a->shape[1] : a->shape[0];
  k = trans_a ? a->shape[0] : a->shape[1];
  kb = trans_b ? b->shape[1] : b->shape[0];
  n = trans_b ? b->shape[0] : b->shape[1];
  if (k != kb || c->shape[0] != m || c->shape[1] != n)
    return nsde__error(ctx, NSDE_ERR_SHAPE,
                       "nsde_tensor_gemm: op(A) is %lldx%lld, op(B) %lldx%lld, C %lldx%lld",
                       (long long)m, (long long)k, (long long)kb, (long long)n,
                       (long long)c->shape[0], (long long)c->shape[1]);
  if (beta == 0.0) /* BLAS convention: C is output only */
    ew_run(EW_FILL, 0.0, NULL, c);
  nsde__gemm(ctx, c->dtype, trans_a, trans_b, m, n, k, alpha, a->data, a->stride[0], a->stride[1],
             b->data, b->stride[0], b->stride[1], beta == 0.0 ? 0.0 : beta, c->data, c->stride[0],
             c->stride[1]);
  return NSDE_OK;
}
