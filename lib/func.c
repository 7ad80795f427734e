/*
 * Drift and diffusion function objects: user callbacks and built-ins.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "func-private.h"

static enum nsde_status func_alloc(struct nsde_context *ctx, enum nsde_dtype dtype,
                                   enum nsde__func_kind kind, struct nsde_func **out,
                                   struct nsde_func **f)
{
  if (!out)
    return nsde__error(ctx, NSDE_ERR_NULL, "output pointer is NULL");
  *out = NULL;
  if (!ctx)
    return NSDE_ERR_NULL;
  if (!nsde__dtype_valid(dtype))
    return nsde__error(ctx, NSDE_ERR_DTYPE, "unknown dtype %d", (int)dtype);
  *f = calloc(1, sizeof(**f));
  if (!*f)
    return nsde__error(ctx, NSDE_ERR_NOMEM, "out of memory");
  (*f)->ctx = ctx;
  (*f)->dtype = dtype;
  (*f)->kind = kind;
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_func_new(struct nsde_context *ctx, enum nsde_dtype dtype,
                                        const struct nsde_func_ops *ops, void *user,
                                        int64_t n_params, void *params,
                                        struct nsde_func **out)
{
  struct nsde_func *f = NULL;
  enum nsde_status st;

  if (!ops) {
    if (out)
      *out = NULL;
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_func_new: ops is NULL");
  }
  if (ops->size < offsetof(struct nsde_func_ops, eval) + sizeof(ops->eval) ||
      ops->size > sizeof(struct nsde_func_ops)) {
    if (out)
      *out = NULL;
    return nsde__error(ctx, NSDE_ERR_INVALID,
                       "nsde_func_new: ops->size is %zu; set it to sizeof(struct nsde_func_ops)",
                       ops->size);
  }
  if (!ops->eval) {
    if (out)
      *out = NULL;
    return nsde__error(ctx, NSDE_ERR_MISSING_OP, "nsde_func_new: eval callback is required");
  }
  if (n_params < 0 || (n_params > 0) != (params != NULL)) {
    if (out)
      *out = NULL;
    return nsde__error(ctx, NSDE_ERR_INVALID,
                       "nsde_func_new: params must be non-NULL exactly when n_params > 0");
  }
  st = func_alloc(ctx, dtype, NSDE__FUNC_USER, out, &f);
  if (st != NSDE_OK)
    return st;
  memcpy(&f->ops, ops, ops->size); /* members a shorter (older) struct lacks stay NULL */
  f->ops.size = sizeof(f->ops);
  f->user = user;
  f->n_params = n_params;
  f->params = params;
  *out = f;
  return NSDE_OK;
}

static enum nsde_status builtin(struct nsde_context *ctx, enum nsde_dtype dtype,
                                enum nsde__func_kind kind, int np, double p0, double p1,
                                struct nsde_func **out)
{
  struct nsde_func *f = NULL;
  enum nsde_status st;

  if (!isfinite(p0) || !isfinite(p1)) {
    if (out)
      *out = NULL;
    return nsde__error(ctx, NSDE_ERR_NONFINITE, "built-in function parameter is not finite");
  }
  st = func_alloc(ctx, dtype, kind, out, &f);
  if (st != NSDE_OK)
    return st;
  f->n_params = np;
  if (dtype == NSDE_FLOAT32) {
    f->own.f[0] = (float)p0;
    f->own.f[1] = (float)p1;
    f->params = f->own.f;
  } else {
    f->own.d[0] = p0;
    f->own.d[1] = p1;
    f->params = f->own.d;
  }
  *out = f;
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_func_new_linear(struct nsde_context *ctx, enum nsde_dtype dtype,
                                               double a, double b, struct nsde_func **out)
{
  return builtin(ctx, dtype, NSDE__FUNC_LINEAR, 2, a, b, out);
}

NSDE_API enum nsde_status nsde_diffusion_new_additive(struct nsde_context *ctx,
                                                      enum nsde_dtype dtype, double sigma,
                                                      struct nsde_func **out)
{
  return builtin(ctx, dtype, NSDE__FUNC_ADDITIVE, 1, sigma, 0.0, out);
}

NSDE_API enum nsde_status nsde_diffusion_new_multiplicative(struct nsde_context *ctx,
                                                            enum nsde_dtype dtype, double sigma,
                                                            struct nsde_func **out)
{
  return builtin(ctx, dtype, NSDE__FUNC_MULTIPLICATIVE, 1, sigma, 0.0, out);
}

NSDE_API enum nsde_status nsde_diffusion_new_dropout(struct nsde_context *ctx,
                                                     enum nsde_dtype dtype, double sigma,
                                                     struct nsde_func **out)
{
  return builtin(ctx, dtype, NSDE__FUNC_DROPOUT, 1, sigma, 0.0, out);
}

NSDE_API void nsde_func_free(struct nsde_func *f)
{
  free(f);
}

NSDE_API int64_t nsde_func_num_params(const struct nsde_func *f)
{
  return f ? f->n_params : -1;
}

NSDE_API void *nsde_func_params(const struct nsde_func *f)
{
  return f && f->n_params > 0 ? f->params : NULL;
}

/* out = c0 + c1*x (x may be NULL), or out = c1*fx for dropout. */
#define AFFINE(T)                                                                    \
  static void affine_##T(int64_t n, T c0, T c1, const T *x, T *out, int nt)         \
  {                                                                                  \
    (void)nt;                                                                        \
    if (x) {                                                                         \
      _Pragma("omp parallel for simd num_threads(nt) if(n > NSDE_PAR_MIN)")         \
      for (int64_t i = 0; i < n; i++) out[i] = c0 + c1 * x[i];                       \
    } else {                                                                         \
      _Pragma("omp parallel for simd num_threads(nt) if(n > NSDE_PAR_MIN)")         \
      for (int64_t i = 0; i < n; i++) out[i] = c0;                                   \
    }                                                                                \
  }
AFFINE(float)
AFFINE(double)

static void affine(const struct nsde_func *f, int64_t n, double c0, double c1, const void *x,
                   void *out)
{
  int nt = f->ctx->threads;

  if (f->dtype == NSDE_FLOAT32)
    affine_float(n, (float)c0, (float)c1, x, out, nt);
  else
    affine_double(n, c0, c1, x, out, nt);
}

static double param(const struct nsde_func *f, int i)
{
  return f->dtype == NSDE_FLOAT32 ? (double)((const float *)f->params)[i]
                                  : ((const double *)f->params)[i];
}

int nsde__func_eval(const struct nsde_func *f, double t, int64_t batch, int64_t dim,
                    const void *x, const void *fx, void *out)
{
  int64_t n = batch * dim;

  switch (f->kind) {
  case NSDE__FUNC_USER:
    return f->ops.eval(f->user, t, batch, dim, x, out);
  case NSDE__FUNC_LINEAR:
    affine(f, n, param(f, 1), param(f, 0), x, out);
    return 0;
  case NSDE__FUNC_ADDITIVE:
    affine(f, n, param(f, 0), 0.0, NULL, out);
    return 0;
  case NSDE__FUNC_MULTIPLICATIVE:
    affine(f, n, 0.0, param(f, 0), x, out);
    return 0;
  case NSDE__FUNC_DROPOUT:
    affine(f, n, 0.0, param(f, 0), fx, out);
    return 0;
  }
  return -1;
}

bool nsde__func_has_diag(const struct nsde_func *f)
{
  return f->kind != NSDE__FUNC_USER || f->ops.diag_deriv != NULL;
}

int nsde__func_diag(const struct nsde_func *f, double t, int64_t batch, int64_t dim,
                    const void *x, const void *dfx, void *out)
{
  int64_t n = batch * dim;

  switch (f->kind) {
  case NSDE__FUNC_USER:
    return f->ops.diag_deriv(f->user, t, batch, dim, x, out);
  case NSDE__FUNC_LINEAR:
    affine(f, n, param(f, 0), 0.0, NULL, out);
    return 0;
  case NSDE__FUNC_ADDITIVE:
    affine(f, n, 0.0, 0.0, NULL, out);
    return 0;
  case NSDE__FUNC_MULTIPLICATIVE:
    affine(f, n, param(f, 0), 0.0, NULL, out);
    return 0;
  case NSDE__FUNC_DROPOUT:
    affine(f, n, 0.0, param(f, 0), dfx, out);
    return 0;
  }
  return -1;
}
