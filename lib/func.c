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
                                        int64_t n_params, void *params,
                                        struct nsde_func **out)
{
  struct nsde_func *f = NULL;
  struct nsde_func_ops o;
  enum nsde_status st;

  if (out)
    *out = NULL;
  if (!ops)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_func_new: ops is NULL");
  /* members a shorter (older) struct lacks read as NULL: optional ops absent */
  st = nsde__struct_in(ctx, "nsde_func_new: ops", ops, NSDE__SIZE_TO(struct nsde_func_ops, eval),
                       sizeof(o), &o);
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
  if (dtype == NSDE_DTYPE_FLOAT32) {
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

NSDE_API enum nsde_status nsde_func_new_additive(struct nsde_context *ctx,
                                                      enum nsde_dtype dtype, double sigma,
                                                      struct nsde_func **out)
{
  return builtin(ctx, dtype, NSDE__FUNC_ADDITIVE, 1, sigma, 0.0, out);
}

NSDE_API enum nsde_status nsde_func_new_multiplicative(struct nsde_context *ctx,
                                                            enum nsde_dtype dtype, double sigma,
                                                            struct nsde_func **out)
{
  return builtin(ctx, dtype, NSDE__FUNC_MULTIPLICATIVE, 1, sigma, 0.0, out);
}

NSDE_API enum nsde_status nsde_func_new_dropout(struct nsde_context *ctx,
                                                     enum nsde_dtype dtype, double sigma,
                                                     struct nsde_func **out)
{
  return builtin(ctx, dtype, NSDE__FUNC_DROPOUT, 1, sigma, 0.0, out);
}

/* The names before 0.3, kept one release (deprecated in the header). */
NSDE_API enum nsde_status nsde_diffusion_new_additive(struct nsde_context *ctx,
                                                      enum nsde_dtype dtype, double sigma,
                                                      struct nsde_func **out)
{
  return nsde_func_new_additive(ctx, dtype, sigma, out);
}

NSDE_API enum nsde_status nsde_diffusion_new_multiplicative(struct nsde_context *ctx,
                                                            enum nsde_dtype dtype, double sigma,
                                                            struct nsde_func **out)
{
  return nsde_func_new_multiplicative(ctx, dtype, sigma, out);
}

NSDE_API enum nsde_status nsde_diffusion_new_dropout(struct nsde_context *ctx,
                                                     enum nsde_dtype dtype, double sigma,
                                                     struct nsde_func **out)
{
  return nsde_func_new_dropout(ctx, dtype, sigma, out);
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

  if (f->dtype == NSDE_DTYPE_FLOAT32)
    affine_float(n, (float)c0, (float)c1, x, out, nt);
  else
    affine_double(n, c0, c1, x, out, nt);
}

static double param(const struct nsde_func *f, int i)
{
  return f->dtype == NSDE_DTYPE_FLOAT32 ? (double)((const float *)f->params)[i]
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

  if (dtype == NSDE_DTYPE_FLOAT32) {
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
  if (f->dtype == NSDE_DTYPE_FLOAT32)
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
  return dt == NSDE_DTYPE_FLOAT32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

static void set_el(enum nsde_dtype dt, void *p, int64_t i, double v)
{
  if (dt == NSDE_DTYPE_FLOAT32)
    ((float *)p)[i] = (float)v;
  else
    ((double *)p)[i] = v;
}

/* Above these, a check fails (worst relative error; see nsde-func.h). */
static double check_tol(enum nsde_dtype dt)
{
  return dt == NSDE_DTYPE_FLOAT64 ? 1e-5 : 5e-2;
}

/* v . g(x) at the current x and parameters, g = f or g = diag_deriv(f) */
static int vdotf(const struct nsde_func *f, int diag, double t, int64_t batch, int64_t dim,
                 const void *x, const void *v, void *out, double *res)
{
  int rc = diag ? nsde__func_diag(f, t, batch, dim, x, NULL, out)
                : nsde__func_eval(f, t, batch, dim, x, NULL, out);
  if (rc < 0)
    return rc;
  *res = nsde__dot(f->dtype, batch * dim * (diag ? 1 : f->out_m), v, out);
  return 0;
}

/* The checks' common arguments; NULL or a message naming @p fn. */
static enum nsde_status check_args(struct nsde_func *f, const struct nsde_tensor *x,
                                   double t, double eps, const struct nsde_vjp_report *report,
                                   const char *fn)
{
  struct nsde_context *ctx = f ? f->ctx : NULL;
  enum nsde_status st;

  if (!f || !x || !report)
    return nsde__error(ctx, NSDE_ERR_NULL, "%s: NULL argument", fn);
  st = nsde__struct_out_check(ctx, fn, report, NSDE__SIZE_TO(struct nsde_vjp_report, checked));
  if (st != NSDE_OK)
    return st;
  if (f->kind == NSDE__FUNC_DROPOUT)
    return nsde__error(ctx, NSDE_ERR_UNSUPPORTED,
                       "%s: dropout noise is sigma * drift; check the drift", fn);
  if (x->dtype != f->dtype)
    return nsde__error(ctx, NSDE_ERR_DTYPE, "%s: x is %s, the func is %s", fn,
                       x->dtype == NSDE_DTYPE_FLOAT32 ? "float32" : "float64",
                       f->dtype == NSDE_DTYPE_FLOAT32 ? "float32" : "float64");
  if (!x->contiguous)
    return nsde__error(ctx, NSDE_ERR_SHAPE, "%s: x must be contiguous", fn);
  if (!isfinite(t) || !(eps >= 0) || !isfinite(eps))
    return nsde__error(ctx, NSDE_ERR_INVALID, "%s: t = %g and eps = %g must be finite, eps >= 0",
                       fn, t, eps);
  return NSDE_OK;
}

/* Records (analytic, numeric) at (index, is_param) when it is the worst so far. */
/* The report into the caller's struct: as many bytes as its size says (an
 * older, shorter struct gets the members it has; a newer, longer one keeps
 * its extra members untouched), its size field left as the caller set it. */
static void report_out(struct nsde_vjp_report *dst, const struct nsde_vjp_report *r)
{
  size_t n = dst->size < sizeof(*r) ? dst->size : sizeof(*r);
  memcpy((char *)dst + sizeof(size_t), (const char *)r + sizeof(size_t), n - sizeof(size_t));
}

static void note(struct nsde_vjp_report *r, int64_t j, int is_param, double ana, double num)
{
  double err = fabs(ana - num) / fmax(1.0, fabs(num));
  r->checked++;
  if (err > r->worst_rel_err || r->checked == 1 || isnan(err)) {
    r->worst_rel_err = isnan(err) ? INFINITY : err;
    r->worst_index = j;
    r->worst_is_param = is_param;
    r->analytic = ana;
    r->numeric = num;
  }
}

/* The vjp of g = f (diag 0) or of g = diag_deriv(f) (diag 1) against central
 * differences of v . g, after checking the callback contract: grad_x is
 * overwritten (it is pre-filled with NaN) and grad_params accumulated (a
 * second call on a pre-filled buffer must add the same amounts). */
static enum nsde_status check_vjp_of(struct nsde_func *f, int diag, double t,
                                     const struct nsde_tensor *x, uint64_t seed, double eps,
                                     struct nsde_vjp_report *report, const char *fn)
{
  struct nsde_context *ctx = f->ctx;
  enum nsde_status st = NSDE_OK;
  int64_t batch, dim, n, nv, np, stride_x, stride_p;
  size_t esz, bytes;
  char *mem = NULL, *xc, *v, *gx, *gp, *gp2, *out;
  struct nsde_vjp_report r;
  const char *what = diag ? "diag_deriv_vjp" : "vjp";
  int rc = 0;

  if (eps == 0)
    eps = f->dtype == NSDE_DTYPE_FLOAT64 ? 1e-6 : 1e-2;
  batch = x->shape[0];
  n = x->numel;
  dim = n / batch;
  np = f->n_params;
  nv = n * (diag ? 1 : f->out_m); /* outputs: n, or n * m for a matrix func */
  esz = nsde__dtype_size(f->dtype);
  bytes = (2 * (size_t)n + 2 * (size_t)nv) * esz + 2 * (size_t)np * esz + 64;
  mem = calloc(1, bytes);
  if (!mem)
    return nsde__error(ctx, NSDE_ERR_NOMEM, "%s: out of memory", fn);
  xc = mem;
  v = xc + (size_t)n * esz;
  gx = v + (size_t)nv * esz;
  out = gx + (size_t)n * esz;
  gp = out + (size_t)nv * esz;
  gp2 = gp + (size_t)np * esz;
  memcpy(xc, x->data, (size_t)n * esz);
  for (int64_t i = 0; i < nv; i++) {
    double z1, z2;
    nsde__normal_pair(seed, (uint32_t)i, (uint32_t)(i >> 32), 0xC4EC, 7, &z1, &z2);
    set_el(f->dtype, v, i, z1);
    if (i < n)
      set_el(f->dtype, gx, i, NAN);
  }
  for (int64_t k = 0; k < np; k++)
    set_el(f->dtype, gp2, k, (double)(1 + k % 7)); /* exact in either dtype */
  memset(&r, 0, sizeof(r));
  r.size = sizeof(r);
  rc = diag ? nsde__func_diag_vjp(f, t, batch, dim, xc, v, gx, np ? gp : NULL)
            : nsde__func_vjp(f, t, batch, dim, xc, v, gx, np ? gp : NULL);
  if (rc >= 0 && np)
    rc = diag ? nsde__func_diag_vjp(f, t, batch, dim, xc, v, out, gp2)
              : nsde__func_vjp(f, t, batch, dim, xc, v, out, gp2);
  if (rc < 0) {
    st = nsde__error(ctx, NSDE_ERR_CALLBACK, "%s: the %s callback returned %d", fn, what, rc);
    goto done;
  }
  for (int64_t i = 0; i < n; i++)
    if (isnan(get_el(f->dtype, gx, i))) {
      note(&r, i, 0, NAN, 0.0);
      report_out(report, &r);
      st = nsde__error(ctx, NSDE_ERR_CHECK_FAILED,
                       "%s: the %s callback left grad_x[%lld] as it found it (NaN) or added to "
                       "it: it must overwrite every element of grad_x", fn, what, (long long)i);
      goto done;
    }
  for (int64_t k = 0; k < np; k++) {
    double once = get_el(f->dtype, gp, k), added = get_el(f->dtype, gp2, k) - (double)(1 + k % 7);
    double tol = (f->dtype == NSDE_DTYPE_FLOAT64 ? 1e-12 : 1e-5) * (8.0 + fabs(once));
    if (!(fabs(added - once) <= tol)) {
      note(&r, k, 1, added, once);
      report_out(report, &r);
      st = nsde__error(ctx, NSDE_ERR_CHECK_FAILED,
                       "%s: the %s callback does not add to grad_params[%lld] (%g on a zeroed "
                       "buffer, %g added to a filled one): it must accumulate (+=), not "
                       "overwrite", fn, what, (long long)k, once, added);
      goto done;
    }
  }
  stride_x = n > 4096 ? (n + 4095) / 4096 : 1;
  stride_p = np > 4096 ? (np + 4095) / 4096 : 1;
  for (int pass = 0; pass < 2; pass++) {
    int64_t count = pass == 0 ? n : np, stride = pass == 0 ? stride_x : stride_p;
    char *target = pass == 0 ? xc : (char *)f->params;
    for (int64_t j = 0; j < count; j += stride) {
      double orig = get_el(f->dtype, target, j), plus, minus;
      set_el(f->dtype, target, j, orig + eps);
      rc = vdotf(f, diag, t, batch, dim, xc, v, out, &plus);
      if (rc >= 0) {
        set_el(f->dtype, target, j, orig - eps);
        rc = vdotf(f, diag, t, batch, dim, xc, v, out, &minus);
      }
      set_el(f->dtype, target, j, orig);
      if (rc < 0) {
        st = nsde__error(ctx, NSDE_ERR_CALLBACK, "%s: evaluating the func returned %d", fn, rc);
        goto done;
      }
      note(&r, j, pass, get_el(f->dtype, pass == 0 ? gx : gp, j), (plus - minus) / (2 * eps));
    }
  }
  report_out(report, &r);
  if (!(r.worst_rel_err <= check_tol(f->dtype)))
    st = nsde__error(ctx, NSDE_ERR_CHECK_FAILED,
                     "%s: the %s disagrees with central differences: relative error %.3g at %s "
                     "%lld (analytic %.6g, numeric %.6g; tolerance %g)", fn, what,
                     r.worst_rel_err, r.worst_is_param ? "parameter" : "input element",
                     (long long)r.worst_index, r.analytic, r.numeric, check_tol(f->dtype));
done:
  free(mem);
  return st;
}

NSDE_API enum nsde_status nsde_func_check_vjp(struct nsde_func *f, double t,
                                              const struct nsde_tensor *x, uint64_t seed,
                                              double eps, struct nsde_vjp_report *report)
{
  const char *fn = "nsde_func_check_vjp";
  enum nsde_status st = check_args(f, x, t, eps, report, fn);
  if (st != NSDE_OK)
    return st;
  if (!nsde__func_has_vjp(f))
    return nsde__error(f->ctx, NSDE_ERR_MISSING_OP, "%s: the func has no vjp", fn);
  return check_vjp_of(f, 0, t, x, seed, eps, report, fn);
}

NSDE_API enum nsde_status nsde_func_check_diag_vjp(struct nsde_func *f, double t,
                                                   const struct nsde_tensor *x, uint64_t seed,
                                                   double eps, struct nsde_vjp_report *report)
{
  const char *fn = "nsde_func_check_diag_vjp";
  enum nsde_status st = check_args(f, x, t, eps, report, fn);
  if (st != NSDE_OK)
    return st;
  if (!nsde__func_has_diag(f) || !nsde__func_has_diag_vjp(f))
    return nsde__error(f->ctx, NSDE_ERR_MISSING_OP,
                       "%s: the func needs both diag_deriv and diag_deriv_vjp", fn);
  return check_vjp_of(f, 1, t, x, seed, eps, report, fn);
}

NSDE_API enum nsde_status nsde_func_check_diag(struct nsde_func *f, double t,
                                               const struct nsde_tensor *x, double eps,
                                               struct nsde_vjp_report *report)
{
  const char *fn = "nsde_func_check_diag";
  enum nsde_status st = check_args(f, x, t, eps, report, fn);
  struct nsde_vjp_report r;
  int64_t batch, n, stride;
  size_t esz;
  char *mem, *xc, *d, *fp, *fm;
  int rc;

  if (st != NSDE_OK)
    return st;
  if (!nsde__func_has_diag(f))
    return nsde__error(f->ctx, NSDE_ERR_MISSING_OP, "%s: the func has no diag_deriv", fn);
  if (eps == 0)
    eps = f->dtype == NSDE_DTYPE_FLOAT64 ? 1e-6 : 1e-2;
  batch = x->shape[0];
  n = x->numel;
  esz = nsde__dtype_size(f->dtype);
  mem = calloc(4, (size_t)n * esz);
  if (!mem)
    return nsde__error(f->ctx, NSDE_ERR_NOMEM, "%s: out of memory", fn);
  xc = mem;
  d = xc + (size_t)n * esz;
  fp = d + (size_t)n * esz;
  fm = fp + (size_t)n * esz;
  memcpy(xc, x->data, (size_t)n * esz);
  memset(&r, 0, sizeof(r));
  r.size = sizeof(r);
  rc = nsde__func_diag(f, t, batch, n / batch, xc, NULL, d);
  stride = n > 4096 ? (n + 4095) / 4096 : 1;
  /* d f_j / d x_j by central differences: one perturbed element at a time */
  for (int64_t j = 0; rc >= 0 && j < n; j += stride) {
    double orig = get_el(f->dtype, xc, j);
    set_el(f->dtype, xc, j, orig + eps);
    rc = nsde__func_eval(f, t, batch, n / batch, xc, NULL, fp);
    set_el(f->dtype, xc, j, orig - eps);
    if (rc >= 0)
      rc = nsde__func_eval(f, t, batch, n / batch, xc, NULL, fm);
    set_el(f->dtype, xc, j, orig);
    if (rc >= 0)
      note(&r, j, 0, get_el(f->dtype, d, j),
           (get_el(f->dtype, fp, j) - get_el(f->dtype, fm, j)) / (2 * eps));
  }
  free(mem);
  if (rc < 0)
    return nsde__error(f->ctx, NSDE_ERR_CALLBACK, "%s: a callback returned %d", fn, rc);
  report_out(report, &r);
  if (!(r.worst_rel_err <= check_tol(f->dtype)))
    return nsde__error(f->ctx, NSDE_ERR_CHECK_FAILED,
                       "%s: diag_deriv disagrees with central differences: relative error %.3g "
                       "at element %lld (analytic %.6g, numeric %.6g; tolerance %g)", fn,
                       r.worst_rel_err, (long long)r.worst_index, r.analytic, r.numeric,
                       check_tol(f->dtype));
  return NSDE_OK;
}
