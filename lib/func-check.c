/*
 * The checkers of user callbacks: nsde_func_check_vjp(), nsde_func_check_diag()
 * and nsde_func_check_diag_vjp() compare a func's vjp, diag_deriv and
 * diag_deriv_vjp with central differences of its own eval and diag_deriv, and
 * check the callback contract (grad_x overwritten, grad_params accumulated).
 *
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "func-private.h"
#include "philox.h"

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
static enum nsde_status check_args(struct nsde_func *f, const struct nsde_tensor *x, double t,
                                   double eps, const struct nsde_vjp_report *report, const char *fn)
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
  if ((st = nsde__check_tensor(ctx, fn, "x (the func's dtype)", x, f->dtype, -1, NULL, true)) !=
      NSDE_OK)
    return st;
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
/* The vjp contract: every grad_x element overwritten (gx was NaN-filled),
 * parameter gradients added (gp from zero, gp2 onto 1 + k % 7). */
static enum nsde_status check_contract(const struct nsde_func *f, int64_t n, int64_t np,
                                       const char *gx, const char *gp, const char *gp2,
                                       struct nsde_vjp_report *r, struct nsde_vjp_report *report,
                                       const char *fn, const char *what)
{
  struct nsde_context *ctx = f->ctx;

  for (int64_t i = 0; i < n; i++)
    if (isnan(nsde__get_el(f->dtype, gx, i))) {
      note(r, i, 0, NAN, 0.0);
      report_out(report, r);
      return nsde__error(ctx, NSDE_ERR_CHECK_FAILED,
                         "%s: the %s callback left grad_x[%lld] as it found it (NaN) or added to "
                         "it: it must overwrite every element of grad_x",
                         fn, what, (long long)i);
    }
  for (int64_t k = 0; k < np; k++) {
    double once = nsde__get_el(f->dtype, gp, k);
    double added = nsde__get_el(f->dtype, gp2, k) - (double)(1 + k % 7);
    double tol = (f->dtype == NSDE_DTYPE_FLOAT64 ? 1e-12 : 1e-5) * (8.0 + fabs(once));
    if (!(fabs(added - once) <= tol)) {
      note(r, k, 1, added, once);
      report_out(report, r);
      return nsde__error(ctx, NSDE_ERR_CHECK_FAILED,
                         "%s: the %s callback does not add to grad_params[%lld] (%g on a zeroed "
                         "buffer, %g added to a filled one): it must accumulate (+=), not "
                         "overwrite",
                         fn, what, (long long)k, once, added);
    }
  }
  return NSDE_OK;
}

/* Central differences of v . f along sampled inputs (pass 0) and
 * parameters (pass 1), noted against the vjp's gx and gp. */
static enum nsde_status compare_fd(struct nsde_func *f, int diag, double t, int64_t batch,
                                   int64_t dim, double eps, char *xc, const char *v, char *out,
                                   const char *gx, const char *gp, struct nsde_vjp_report *r,
                                   const char *fn)
{
  const int64_t n = batch * dim, np = f->n_params;
  const int64_t stride_x = n > 4096 ? (n + 4095) / 4096 : 1;
  const int64_t stride_p = np > 4096 ? (np + 4095) / 4096 : 1;
  int rc;

  for (int pass = 0; pass < 2; pass++) {
    int64_t count = pass == 0 ? n : np, stride = pass == 0 ? stride_x : stride_p;
    char *target = pass == 0 ? xc : (char *)f->params;
    for (int64_t j = 0; j < count; j += stride) {
      double orig = nsde__get_el(f->dtype, target, j), plus, minus;
      nsde__set_el(f->dtype, target, j, orig + eps);
      rc = vdotf(f, diag, t, batch, dim, xc, v, out, &plus);
      if (rc >= 0) {
        nsde__set_el(f->dtype, target, j, orig - eps);
        rc = vdotf(f, diag, t, batch, dim, xc, v, out, &minus);
      }
      nsde__set_el(f->dtype, target, j, orig);
      if (rc < 0) {
        return nsde__error(f->ctx, NSDE_ERR_CALLBACK, "%s: evaluating the func returned %d", fn,
                           rc);
      }
      note(r, j, pass, nsde__get_el(f->dtype, pass == 0 ? gx : gp, j), (plus - minus) / (2 * eps));
    }
  }
  return NSDE_OK;
}

static enum nsde_status check_vjp_of(struct nsde_func *f, int diag, double t,
                                     const struct nsde_tensor *x, uint64_t seed, double eps,
                                     struct nsde_vjp_report *report, const char *fn)
{
  struct nsde_context *ctx = f->ctx;
  enum nsde_status st = NSDE_OK;
  int64_t batch, dim, n, nv, np;
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
    nsde__set_el(f->dtype, v, i, z1);
    if (i < n)
      nsde__set_el(f->dtype, gx, i, NAN);
  }
  for (int64_t k = 0; k < np; k++)
    nsde__set_el(f->dtype, gp2, k, (double)(1 + k % 7)); /* exact in either dtype */
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
  if ((st = check_contract(f, n, np, gx, gp, gp2, &r, report, fn, what)) != NSDE_OK)
    goto done;
  if ((st = compare_fd(f, diag, t, batch, dim, eps, xc, v, out, gx, gp, &r, fn)) != NSDE_OK)
    goto done;
  report_out(report, &r);
  if (!(r.worst_rel_err <= check_tol(f->dtype)))
    st = nsde__error(ctx, NSDE_ERR_CHECK_FAILED,
                     "%s: the %s disagrees with central differences: relative error %.3g at %s "
                     "%lld (analytic %.6g, numeric %.6g; tolerance %g)",
                     fn, what, r.worst_rel_err, r.worst_is_param ? "parameter" : "input element",
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
    double orig = nsde__get_el(f->dtype, xc, j);
    nsde__set_el(f->dtype, xc, j, orig + eps);
    rc = nsde__func_eval(f, t, batch, n / batch, xc, NULL, fp);
    nsde__set_el(f->dtype, xc, j, orig - eps);
    if (rc >= 0)
      rc = nsde__func_eval(f, t, batch, n / batch, xc, NULL, fm);
    nsde__set_el(f->dtype, xc, j, orig);
    if (rc >= 0)
      note(&r, j, 0, nsde__get_el(f->dtype, d, j),
           (nsde__get_el(f->dtype, fp, j) - nsde__get_el(f->dtype, fm, j)) / (2 * eps));
  }
  free(mem);
  if (rc < 0)
    return nsde__error(f->ctx, NSDE_ERR_CALLBACK, "%s: a callback returned %d", fn, rc);
  report_out(report, &r);
  if (!(r.worst_rel_err <= check_tol(f->dtype)))
    return nsde__error(f->ctx, NSDE_ERR_CHECK_FAILED,
                       "%s: diag_deriv disagrees with central differences: relative error %.3g "
                       "at element %lld (analytic %.6g, numeric %.6g; tolerance %g)",
                       fn, r.worst_rel_err, (long long)r.worst_index, r.analytic, r.numeric,
                       check_tol(f->dtype));
  return NSDE_OK;
}
