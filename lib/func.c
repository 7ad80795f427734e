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

/* ---- vector-Jacobian products ------------------------------------------ */

double nsde__dot(enum nsde_dtype dtype, int64_t n, const void *v, const void *x)
{
  double acc = 0.0;

  if (dtype == NSDE_FLOAT32) {
    const float *a = v, *b = x;
    for (int64_t i = 0; i < n; i++)
      acc += (double)a[i] * (b ? (double)b[i] : 1.0);
  } else {
    const double *a = v, *b = x;
    for (int64_t i = 0; i < n; i++)
      acc += a[i] * (b ? b[i] : 1.0);
  }
  return acc;
}

static void add_param(const struct nsde_func *f, void *grad_params, int i, double v)
{
  if (!grad_params)
    return;
  if (f->dtype == NSDE_FLOAT32)
    ((float *)grad_params)[i] += (float)v;
  else
    ((double *)grad_params)[i] += v;
}

bool nsde__func_has_vjp(const struct nsde_func *f)
{
  return f->kind != NSDE__FUNC_USER || f->ops.vjp != NULL;
}

bool nsde__func_has_diag_vjp(const struct nsde_func *f)
{
  return f->kind != NSDE__FUNC_USER || f->ops.diag_deriv_vjp != NULL;
}

int nsde__func_vjp(const struct nsde_func *f, double t, int64_t batch, int64_t dim,
                   const void *x, const void *v, void *grad_x, void *grad_params)
{
  int64_t n = batch * dim;

  switch (f->kind) {
  case NSDE__FUNC_USER:
    return f->ops.vjp(f->user, t, batch, dim, x, v, grad_x, grad_params);
  case NSDE__FUNC_LINEAR: /* a x + b */
    affine(f, n, 0.0, param(f, 0), v, grad_x);
    add_param(f, grad_params, 0, nsde__dot(f->dtype, n, v, x));
    add_param(f, grad_params, 1, nsde__dot(f->dtype, n, v, NULL));
    return 0;
  case NSDE__FUNC_ADDITIVE: /* sigma */
    affine(f, n, 0.0, 0.0, NULL, grad_x);
    add_param(f, grad_params, 0, nsde__dot(f->dtype, n, v, NULL));
    return 0;
  case NSDE__FUNC_MULTIPLICATIVE: /* sigma x */
    affine(f, n, 0.0, param(f, 0), v, grad_x);
    add_param(f, grad_params, 0, nsde__dot(f->dtype, n, v, x));
    return 0;
  case NSDE__FUNC_DROPOUT:
    break;
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
  case NSDE__FUNC_LINEAR: /* diag = a */
  case NSDE__FUNC_MULTIPLICATIVE: /* diag = sigma */
    affine(f, n, 0.0, 0.0, NULL, grad_x);
    add_param(f, grad_params, 0, nsde__dot(f->dtype, n, v, NULL));
    return 0;
  case NSDE__FUNC_ADDITIVE: /* diag = 0 */
    affine(f, n, 0.0, 0.0, NULL, grad_x);
    return 0;
  case NSDE__FUNC_DROPOUT:
    break;
  }
  return -1;
}

/* ---- checking a user's vjp against finite differences --------------------- */

#include "philox.h"

static double get_el(enum nsde_dtype dt, const void *p, int64_t i)
{
  return dt == NSDE_FLOAT32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

static void set_el(enum nsde_dtype dt, void *p, int64_t i, double v)
{
  if (dt == NSDE_FLOAT32)
    ((float *)p)[i] = (float)v;
  else
    ((double *)p)[i] = v;
}

/* v . f(x) at the current x and parameters */
static int vdotf(const struct nsde_func *f, double t, int64_t batch, int64_t dim, const void *x,
                 const void *v, void *out, double *res)
{
  int rc = nsde__func_eval(f, t, batch, dim, x, NULL, out);
  if (rc < 0)
    return rc;
  *res = nsde__dot(f->dtype, batch * dim, v, out);
  return 0;
}

NSDE_API enum nsde_status nsde_func_check_vjp(struct nsde_func *f, double t,
                                              const struct nsde_tensor *x, uint64_t seed,
                                              double eps, struct nsde_vjp_report *report)
{
  struct nsde_context *ctx = f ? f->ctx : NULL;
  enum nsde_status st = NSDE_OK;
  int64_t batch, dim, n, np, stride_x, stride_p;
  size_t esz, bytes;
  char *mem = NULL, *xc, *v, *gx, *gp, *out;
  struct nsde_vjp_report r;
  int rc = 0;

  if (!f || !x || !report)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_func_check_vjp: NULL argument");
  if (report->size != sizeof(*report))
    return nsde__error(ctx, NSDE_ERR_INVALID,
                       "nsde_func_check_vjp: report->size must be sizeof(struct nsde_vjp_report)");
  if (f->kind == NSDE__FUNC_DROPOUT)
    return nsde__error(ctx, NSDE_ERR_UNSUPPORTED,
                       "nsde_func_check_vjp: dropout noise is sigma * drift; check the drift");
  if (!nsde__func_has_vjp(f))
    return nsde__error(ctx, NSDE_ERR_MISSING_OP, "nsde_func_check_vjp: the func has no vjp");
  if (x->dtype != f->dtype || !x->contiguous)
    return nsde__error(ctx, NSDE_ERR_SHAPE,
                       "nsde_func_check_vjp: x must be contiguous and of the func's dtype");
  if (!isfinite(t) || !(eps >= 0) || !isfinite(eps))
    return nsde__error(ctx, NSDE_ERR_INVALID, "nsde_func_check_vjp: bad t or eps");
  if (eps == 0)
    eps = f->dtype == NSDE_FLOAT64 ? 1e-6 : 1e-2;
  batch = x->shape[0];
  n = x->numel;
  dim = n / batch;
  np = f->n_params;
  esz = nsde__dtype_size(f->dtype);
  bytes = 4 * (size_t)n * esz + (size_t)np * esz + 64;
  mem = calloc(1, bytes);
  if (!mem)
    return nsde__error(ctx, NSDE_ERR_NOMEM, "nsde_func_check_vjp: out of memory");
  xc = mem;
  v = xc + (size_t)n * esz;
  gx = v + (size_t)n * esz;
  out = gx + (size_t)n * esz;
  gp = out + (size_t)n * esz;
  memcpy(xc, x->data, (size_t)n * esz);
  for (int64_t i = 0; i < n; i++) {
    double z1, z2;
    nsde__normal_pair(seed, (uint32_t)i, (uint32_t)(i >> 32), 0xC4EC, 7, &z1, &z2);
    set_el(f->dtype, v, i, z1);
  }
  rc = nsde__func_vjp(f, t, batch, dim, xc, v, gx, np ? gp : NULL);
  if (rc < 0) {
    st = nsde__error(ctx, NSDE_ERR_CALLBACK, "nsde_func_check_vjp: vjp returned %d", rc);
    goto done;
  }
  memset(&r, 0, sizeof(r));
  r.size = sizeof(r);
  stride_x = n > 4096 ? (n + 4095) / 4096 : 1;
  stride_p = np > 4096 ? (np + 4095) / 4096 : 1;
  for (int pass = 0; pass < 2; pass++) {
    int64_t count = pass == 0 ? n : np, stride = pass == 0 ? stride_x : stride_p;
    char *target = pass == 0 ? xc : (char *)f->params;
    for (int64_t j = 0; j < count; j += stride) {
      double orig = get_el(f->dtype, target, j), plus, minus, num, ana, err;
      set_el(f->dtype, target, j, orig + eps);
      rc = vdotf(f, t, batch, dim, xc, v, out, &plus);
      if (rc >= 0) {
        set_el(f->dtype, target, j, orig - eps);
        rc = vdotf(f, t, batch, dim, xc, v, out, &minus);
      }
      set_el(f->dtype, target, j, orig);
      if (rc < 0) {
        st = nsde__error(ctx, NSDE_ERR_CALLBACK, "nsde_func_check_vjp: eval returned %d", rc);
        goto done;
      }
      num = (plus - minus) / (2 * eps);
      ana = get_el(f->dtype, pass == 0 ? gx : gp, j);
      err = fabs(ana - num) / fmax(1.0, fabs(num));
      r.checked++;
      if (err > r.worst_rel_err || r.checked == 1) {
        r.worst_rel_err = err;
        r.worst_index = j;
        r.worst_is_param = pass;
        r.analytic = ana;
        r.numeric = num;
      }
    }
  }
  *report = r;
done:
  free(mem);
  return st;
}
