/*
 * 03-custom-drift: a drift of your own, with its vector-Jacobian product
 * checked before any gradient relies on it.
 *
 * f(t, x) = p0 tanh(p1 x) + p2 t, elementwise, parameters (p0, p1, p2). Its
 * vjp must overwrite grad_x and add into grad_params (summed over the batch).
 * nsde_func_check_vjp compares it with central differences; then a vjp with a
 * deliberate mistake (p1 left out of dx) is caught.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdio.h>

#include <nsde/nsde.h>

struct drift {
  double p[3];
  int bug; /* 1: the wrong vjp */
};

static int eval(void *user, double t, int64_t batch, int64_t dim, const void *xv, void *outv)
{
  const struct drift *d = user;
  const double *x = xv;
  double *out = outv;
  for (int64_t i = 0; i < batch * dim; i++)
    out[i] = d->p[0] * tanh(d->p[1] * x[i]) + d->p[2] * t;
  return 0;
}

static int vjp(void *user, double t, int64_t batch, int64_t dim, const void *xv, const void *vv,
               void *gxv, void *gpv)
{
  const struct drift *d = user;
  const double *x = xv, *v = vv;
  double *gx = gxv, *gp = gpv;
  for (int64_t i = 0; i < batch * dim; i++) {
    double th = tanh(d->p[1] * x[i]), sech2 = 1.0 - th * th;
    gx[i] = v[i] * d->p[0] * sech2 * (d->bug ? 1.0 : d->p[1]); /* overwrite */
    if (gp) {                                                  /* accumulate */
      gp[0] += v[i] * th;
      gp[1] += v[i] * d->p[0] * sech2 * x[i];
      gp[2] += v[i] * t;
    }
  }
  return 0;
}

int main(void)
{
  struct drift d = {{1.5, 0.7, -0.3}, 0};
  struct nsde_func_ops ops = {sizeof(ops), eval, vjp, NULL, NULL};
  struct nsde_vjp_report r = {sizeof(r), 0, 0, 0, 0, 0, 0};
  struct nsde_context *ctx = NULL;
  struct nsde_func *f = NULL;
  struct nsde_tensor *x = NULL;
  int64_t shape[2] = {8, 5};
  enum nsde_status good, bad;

  if (nsde_context_new(&ctx) || nsde_func_new(ctx, NSDE_DTYPE_FLOAT64, &ops, &d, 3, d.p, &f) ||
      nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &x)) {
    fprintf(stderr, "03-custom-drift: %s\n", nsde_context_last_error(ctx));
    return 1;
  }
  for (int i = 0; i < 40; i++)
    ((double *)nsde_tensor_data(x))[i] = sin(1.0 + i);
  good = nsde_func_check_vjp(f, 0.4, x, 1, 0.0, &r);
  printf("correct vjp: %s, %lld derivatives, worst relative error %.1e\n", nsde_status_str(good),
         (long long)r.checked, r.worst_rel_err);
  d.bug = 1;
  bad = nsde_func_check_vjp(f, 0.4, x, 1, 0.0, &r);
  printf("wrong vjp:   %s, worst relative error %.3f at %s %lld (analytic %.4f, numeric %.4f)\n",
         nsde_status_str(bad), r.worst_rel_err, r.worst_is_param ? "parameter" : "input",
         (long long)r.worst_index, r.analytic, r.numeric);
  nsde_tensor_free(x);
  nsde_func_free(f);
  nsde_context_free(ctx);
  return good == NSDE_OK && bad == NSDE_ERR_CHECK_FAILED ? 0 : 1;
}
