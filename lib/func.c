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
  (*f)->out_m = 1;
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_func_new_matrix(struct nsde_context *ctx, enum nsde_dtype dtype,
                                               const struct nsde_func_ops *ops, void *user,
                                               int64_t n_params, void *params, int64_t m,
                                               struct nsde_func **out)
{
  enum nsde_status st;

  if (out)
    *out = NULL;
  if (m < 1 || m >= ((int64_t)1 << 32))
    return nsde__error(ctx, NSDE_ERR_INVALID, "nsde_func_new_matrix: m = %lld outside 1..2^32-1",
                       (long long)m);
  st = nsde_func_new(ctx, dtype, ops, user, n_params, params, out);
  if (st == NSDE_OK) {
    (*out)->out_m = m;
    (*out)->matrix = true;
    (*out)->ops.diag_deriv = NULL; /* not defined for a matrix */
    (*out)->ops.diag_deriv_vjp = NULL;
  }
  return st;
}

NSDE_API enum nsde_status nsde_func_new(struct nsde_context *ctx, enum nsde_dtype dtype,
                                        const struct nsde_func_ops *ops, void *user,
                                        int64_t n_params, void *params, struct nsde_func **out)
{
  struct nsde_func *f = NULL;
  struct nsde_func_ops o;
  enum nsde_status st;

  if (out)
    *out = NULL;
  if (!ops)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_func_new: ops is NULL");
  /* at least the 1.0 layout; optional ops are NULL members */
  st = nsde__struct_in(ctx, "nsde_func_new: ops", ops,
                       NSDE__SIZE_TO(struct nsde_func_ops, diag_deriv_vjp), sizeof(o), &o);
  if (st != NSDE_OK)
    return st;
  ops = &o;
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
  f->ops = o;
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
  f->params = dtype == NSDE_DTYPE_FLOAT32 ? (void *)f->own.f : (void *)f->own.d;
  nsde__set_el(dtype, f->params, 0, p0);
  nsde__set_el(dtype, f->params, 1, p1);
  *out = f;
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_func_new_linear(struct nsde_context *ctx, enum nsde_dtype dtype,
                                               double a, double b, struct nsde_func **out)
{
  return builtin(ctx, dtype, NSDE__FUNC_LINEAR, 2, a, b, out);
}

NSDE_API enum nsde_status nsde_func_new_additive(struct nsde_context *ctx, enum nsde_dtype dtype,
                                                 double sigma, struct nsde_func **out)
{
  return builtin(ctx, dtype, NSDE__FUNC_ADDITIVE, 1, sigma, 0.0, out);
}

NSDE_API enum nsde_status nsde_func_new_multiplicative(struct nsde_context *ctx,
                                                       enum nsde_dtype dtype, double sigma,
                                                       struct nsde_func **out)
{
  return builtin(ctx, dtype, NSDE__FUNC_MULTIPLICATIVE, 1, sigma, 0.0, out);
}

NSDE_API enum nsde_status nsde_func_new_dropout(struct nsde_context *ctx, enum nsde_dtype dtype,
                                                double sigma, struct nsde_func **out)
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

NSDE_API void *nsde_func_params(struct nsde_func *f)
{
  return f && f->n_params > 0 ? f->params : NULL;
}

NSDE_API const void *nsde_func_params_const(const struct nsde_func *f)
{
  return f && f->n_params > 0 ? f->params : NULL;
}

/* out = c0 + c1*x (x may be NULL), or out = c1*fx for dropout. */
#define AFFINE(T, SFX)                                                                             \
  NSDE_CLONES static void affine##SFX(int64_t n, T c0, T c1, const T *x, T *out, int nt)           \
  {                                                                                                \
    (void)nt;                                                                                      \
    if (x) {                                                                                       \
      NSDE_PAR_FOR_SIMD(nt > 1 && n > NSDE_PAR_MIN, "omp parallel for simd num_threads(nt)",       \
                        "omp simd", for (int64_t i = 0; i < n; i++) out[i] = c0 + c1 * x[i];);     \
    } else {                                                                                       \
      NSDE_PAR_FOR_SIMD(nt > 1 && n > NSDE_PAR_MIN, "omp parallel for simd num_threads(nt)",       \
                        "omp simd", for (int64_t i = 0; i < n; i++) out[i] = c0;);                 \
    }                                                                                              \
  }
NSDE__FOR_DTYPES(AFFINE)
#undef AFFINE

static void affine(const struct nsde_func *f, int64_t n, double c0, double c1, const void *x,
                   void *out)
{
  int nt = f->ctx->threads;

  if (f->dtype == NSDE_DTYPE_FLOAT32)
    affine_f32(n, (float)c0, (float)c1, x, out, nt);
  else
    affine_f64(n, c0, c1, x, out, nt);
}

/* Parameter i of a built-in. */
static double param(const struct nsde_func *f, int i)
{
  return nsde__get_el(f->dtype, f->params, i);
}

int nsde__func_eval(const struct nsde_func *f, double t, int64_t batch, int64_t dim, const void *x,
                    const void *fx, void *out)
{
  int64_t n = batch * dim;

  switch (f->kind) {
  case NSDE__FUNC_USER: return f->ops.eval(f->user, t, batch, dim, x, out);
  case NSDE__FUNC_LINEAR: affine(f, n, param(f, 1), param(f, 0), x, out); return 0;
  case NSDE__FUNC_ADDITIVE: affine(f, n, param(f, 0), 0.0, NULL, out); return 0;
  case NSDE__FUNC_MULTIPLICATIVE: affine(f, n, 0.0, param(f, 0), x, out); return 0;
  case NSDE__FUNC_DROPOUT: affine(f, n, 0.0, param(f, 0), fx, out); return 0;
  }
  return -1;
}

bool nsde__func_has_diag(const struct nsde_func *f)
{
  return f->kind != NSDE__FUNC_USER || f->ops.diag_deriv != NULL;
}

int nsde__func_diag(const struct nsde_func *f, double t, int64_t batch, int64_t dim, const void *x,
                    const void *dfx, void *out)
{
  int64_t n = batch * dim;

  switch (f->kind) {
  case NSDE__FUNC_USER: return f->ops.diag_deriv(f->user, t, batch, dim, x, out);
  case NSDE__FUNC_LINEAR: affine(f, n, param(f, 0), 0.0, NULL, out); return 0;
  case NSDE__FUNC_ADDITIVE: affine(f, n, 0.0, 0.0, NULL, out); return 0;
  case NSDE__FUNC_MULTIPLICATIVE: affine(f, n, param(f, 0), 0.0, NULL, out); return 0;
  case NSDE__FUNC_DROPOUT: affine(f, n, 0.0, param(f, 0), dfx, out); return 0;
  }
  return -1;
}

/* ---- vector-Jacobian products ------------------------------------------ */

/* sum v[i] x[i] (x NULL: sum v[i]) in double. */
#define DOT(T, SFX)                                                                                \
  static double dot##SFX(int64_t n, const T *a, const T *b)                                        \
  {                                                                                                \
    double acc = 0.0;                                                                              \
    for (int64_t i = 0; i < n; i++)                                                                \
      acc += (double)a[i] * (b ? (double)b[i] : 1.0);                                              \
    return acc;                                                                                    \
  }
NSDE__FOR_DTYPES(DOT)
#undef DOT

double nsde__dot(enum nsde_dtype dtype, int64_t n, const void *v, const void *x)
{
  return dtype == NSDE_DTYPE_FLOAT32 ? dot_f32(n, v, x) : dot_f64(n, v, x);
}

/* grad_params[i] += sum v[j] x[j] (x NULL: sum v[j]), nothing without grad_params */
static void add_param(const struct nsde_func *f, void *grad_params, int i, int64_t n, const void *v,
                      const void *x)
{
  if (grad_params)
    nsde__add_el(f->dtype, grad_params, i, nsde__dot(f->dtype, n, v, x));
}

bool nsde__func_has_vjp(const struct nsde_func *f)
{
  return f->kind != NSDE__FUNC_USER || f->ops.vjp != NULL;
}

bool nsde__func_has_diag_vjp(const struct nsde_func *f)
{
  return f->kind != NSDE__FUNC_USER || f->ops.diag_deriv_vjp != NULL;
}

int nsde__func_vjp(const struct nsde_func *f, double t, int64_t batch, int64_t dim, const void *x,
                   const void *v, void *grad_x, void *grad_params)
{
  int64_t n = batch * dim;

  switch (f->kind) {
  case NSDE__FUNC_USER: return f->ops.vjp(f->user, t, batch, dim, x, v, grad_x, grad_params);
  case NSDE__FUNC_LINEAR: /* a x + b */
    affine(f, n, 0.0, param(f, 0), v, grad_x);
    add_param(f, grad_params, 0, n, v, x);
    add_param(f, grad_params, 1, n, v, NULL);
    return 0;
  case NSDE__FUNC_ADDITIVE: /* sigma */
    affine(f, n, 0.0, 0.0, NULL, grad_x);
    add_param(f, grad_params, 0, n, v, NULL);
    return 0;
  case NSDE__FUNC_MULTIPLICATIVE: /* sigma x */
    affine(f, n, 0.0, param(f, 0), v, grad_x);
    add_param(f, grad_params, 0, n, v, x);
    return 0;
  case NSDE__FUNC_DROPOUT: break;
  }
  return -1;
}

int nsde__func_diag_vjp(const struct nsde_func *f, double t, int64_t batch, int64_t dim,
                        const void *x, const void *v, void *grad_x, void *grad_params)
{
  int64_t n = batch * dim;

  switch (f->kind) {
  case NSDE__FUNC_USER:
    return f->ops.diag_deriv_vjp(f->user, t, batch, dim, x, v, grad_x, grad_params);
  case NSDE__FUNC_LINEAR:         /* diag = a */
  case NSDE__FUNC_MULTIPLICATIVE: /* diag = sigma */
    affine(f, n, 0.0, 0.0, NULL, grad_x);
    add_param(f, grad_params, 0, n, v, NULL);
    return 0;
  case NSDE__FUNC_ADDITIVE: /* diag = 0 */ affine(f, n, 0.0, 0.0, NULL, grad_x); return 0;
  case NSDE__FUNC_DROPOUT: break;
  }
  return -1;
}
