/*
 * Adaptive step sizes: an error estimate per scheme, a PI controller, and
 * the bookkeeping that makes the accepted steps an ordinary solver grid (so
 * nsde_backward differentiates an adaptive solve exactly as a fixed one).
 *
 * Error estimates (y: the scheme's step from x, z: a second solution):
 *   Heun            z = the Euler predictor of the same step (no extra work)
 *   SRA1            z = Euler-Maruyama from the same f(t,x), g(t) and dW
 *   Euler-Maruyama,
 *   Milstein        step doubling: z = one step of h, y = two steps of h/2
 *                   (y is kept: the accepted grid gets both half steps)
 * The error norm is the largest, over batch elements, of the RMS over the
 * element's values of (y - z) / (atol + rtol max(|x|, |y|)); a step is
 * accepted when it is <= 1 and finite.
 *
 * Every increment comes from the solver's Brownian paths, which are fixed on
 * their base grid and refined by the Brownian tree: a rejected step draws
 * nothing, and the retried smaller step sees sub-increments of the same path.
 * Diagonal, scalar and additive noise commute, and every scheme offered here
 * meets the conditions under which adaptive solutions converge to the
 * pathwise solution (Foster and Jelincic 2024); Euler-Maruyama with
 * state-dependent noise does not (its adaptive limit is biased), so it is
 * refused. General noise need not commute: there the end of every rejected
 * step stays a target until a later step lands on it (the condition of the
 * same paper for non-commutative noise). doc/solvers.md has the details.
 *
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <string.h>

#include "scheme/scheme.h"
#include "solver-build.h"

#define SAFETY 0.9
#define FAC_MIN 0.2
#define FAC_MAX 5.0
#define PI_B1 0.7 /* the controller: h *= SAFETY e^(-B1/q) e_prev^(B2/q) */
#define PI_B2 0.4
#define DEFAULT_MAX_STEPS 10000
#define MAX_STEPS_LIMIT ((int64_t)1 << 26)

static bool doubling(enum nsde_scheme scheme)
{
  return nsde__scheme_of(scheme)->adapt.kind == NSDE__EST_DOUBLING;
}

static bool has_estimate(const struct nsde__scheme *sch)
{
  return sch->adapt.kind != NSDE__EST_NONE;
}

static bool takes_state_noise(const struct nsde__scheme *sch)
{
  return sch->adapt.kind != NSDE__EST_NONE && sch->adapt.state_noise;
}

enum nsde_status nsde__adaptive_plan(const struct nsde_sde *sde, const struct nsde_solver_config *c,
                                     int64_t *cap)
{
  struct nsde_context *ctx = sde->ctx;
  const struct nsde__scheme *sch = nsde__scheme_of(c->scheme);
  const bool state_noise = sde->noise == NSDE_NOISE_DIAGONAL || sde->noise == NSDE_NOISE_SCALAR ||
                           sde->noise == NSDE_NOISE_GENERAL;

  char names[160];

  if (sch->adapt.kind == NSDE__EST_NONE)
    return nsde__error(ctx, NSDE_ERR_UNSUPPORTED,
                       "adaptive steps: %s has no error estimate here; use %s", sch->name,
                       nsde__scheme_names(names, sizeof(names), has_estimate));
  if (!sch->adapt.state_noise && state_noise)
    return nsde__error(ctx, NSDE_ERR_UNSUPPORTED,
                       "adaptive steps: %s with state-dependent noise converges to a biased "
                       "limit when steps depend on the path; use %s",
                       sch->name, nsde__scheme_names(names, sizeof(names), takes_state_noise));
  if (c->grad == NSDE_GRAD_ADJOINT || c->grad == NSDE_GRAD_REVERSIBLE)
    return nsde__error(ctx, NSDE_ERR_UNSUPPORTED,
                       "adaptive steps: gradients by NSDE_GRAD_STORE_ALL or NSDE_GRAD_CHECKPOINT");
  if (!(c->rtol > 0.0) || !isfinite(c->rtol) || !(c->atol >= 0.0) || !isfinite(c->atol))
    return nsde__error(ctx, NSDE_ERR_INVALID,
                       "adaptive steps: need finite rtol > 0 and atol >= 0 (got %g, %g)", c->rtol,
                       c->atol);
  if (!(c->dt0 >= 0.0) || !(c->dt_min >= 0.0) || !(c->dt_max >= 0.0) || !isfinite(c->dt0) ||
      !isfinite(c->dt_min) || !isfinite(c->dt_max))
    return nsde__error(ctx, NSDE_ERR_INVALID,
                       "adaptive steps: dt0, dt_min, dt_max must be finite and >= 0 (0: default)");
  if (c->dt_max > 0.0 && c->dt_min > c->dt_max)
    return nsde__error(ctx, NSDE_ERR_INVALID, "adaptive steps: dt_min %g > dt_max %g", c->dt_min,
                       c->dt_max);
  if (c->max_steps < 0 || c->max_steps > MAX_STEPS_LIMIT)
    return nsde__error(ctx, NSDE_ERR_INVALID, "adaptive steps: max_steps %lld outside 0..2^26",
                       (long long)c->max_steps);
  *cap = c->max_steps > 0 ? c->max_steps : DEFAULT_MAX_STEPS;
  if (doubling(c->scheme) && *cap < 2)
    return nsde__error(ctx, NSDE_ERR_INVALID, "adaptive steps: step doubling needs max_steps >= 2");
  return NSDE_OK;
}

static void adaptive_reset(struct nsde_solver *s)
{
  const double tol = 1e-12 * (s->t1 - s->t0);

  s->grid[0] = s->t0;
  s->n_grid = 0;
  s->h_next = s->dt0;
  s->err_prev = 1.0;
  s->n_rejected = 0;
  s->save_next = 0;
  s->n_rej = 0;
  for (int64_t j = 0; j < s->n_save; j++)
    s->save_idx[j] = -1;
  while (s->save_next < s->n_save && s->save_at[s->save_next] <= s->t0 + tol)
    s->save_idx[s->save_next++] = 0;
}

/* Local error exponent q of the estimate (error ~ h^q): 2 for ODEs, 1.5 for
 * additive noise and Milstein, 1 for Heun against Euler with state-dependent
 * noise. */
static double error_order(const struct nsde_solver *s)
{
  const int kind = s->sde->noise == NSDE_NOISE_NONE       ? 0
                   : s->sde->noise == NSDE_NOISE_ADDITIVE ? 1
                                                          : 2;
  return s->sch->adapt.q[kind];
}

/* The error norm of y against z (z NULL: z = x + f0 h + g0 dW, elementwise). */
#define NORM_FN(T, SFX)                                                                            \
  static double norm##SFX(const struct nsde_solver *s, const T *x, const T *y, const T *z,         \
                          const T *f0, const T *g0, const T *dw, double h)                         \
  {                                                                                                \
    const int64_t dim = s->dim;                                                                    \
    const double atol = s->atol, rtol = s->rtol;                                                   \
    const int64_t n = s->n;                                                                        \
    const int nt = s->ctx->threads;                                                                \
    double worst = 0.0;                                                                            \
    (void)nt;                                                                                      \
    NSDE_PAR_FOR(                                                                                  \
        nt > 1 && n > NSDE_PAR_MIN, "omp parallel for reduction(max : worst) num_threads(nt)",     \
        for (int64_t b = 0; b < s->batch; b++) {                                                   \
          double acc = 0.0;                                                                        \
          for (int64_t i = b * dim; i < (b + 1) * dim; i++) {                                      \
            double zi = z ? (double)z[i]                                                           \
                          : (double)x[i] + (double)f0[i] * h + (g0 ? (double)g0[i] * dw[i] : 0.0); \
            double sc = atol + rtol * fmax(fabs((double)x[i]), fabs((double)y[i]));                \
            double e = ((double)y[i] - zi) / sc;                                                   \
            acc += e * e;                                                                          \
          }                                                                                        \
          acc = sqrt(acc / (double)dim);                                                           \
          if (!(acc <= worst)) /* NaN propagates as infinity */                                    \
            worst = isnan(acc) ? INFINITY : acc;                                                   \
        });                                                                                        \
    return worst;                                                                                  \
  }
NSDE__FOR_DTYPES(NORM_FN)
#undef NORM_FN

static double norm(const struct nsde_solver *s, const void *x, const void *y, const void *z,
                   double h)
{
  const void *f0 = s->buf[B_F0], *g0 = s->dw ? s->buf[B_G0] : NULL;
  return s->dtype == NSDE_DTYPE_FLOAT32 ? norm_f32(s, x, y, z, f0, g0, s->dw, h)
                                        : norm_f64(s, x, y, z, f0, g0, s->dw, h);
}

/* The next step's target: the next save-at time, or t1, or (general noise)
 * the end of the nearest rejected step still ahead. */
static double target(const struct nsde_solver *s)
{
  double t = s->save_next < s->n_save ? s->save_at[s->save_next] : s->t1;
  return s->n_rej > 0 && s->rej[s->n_rej - 1] < t ? s->rej[s->n_rej - 1] : t;
}

/* The end of a step of size h from t, on a node of the Brownian tree: t + h
 * rounded down to a multiple of bh 2^-d from the base grid (bh its step), d
 * the smallest depth with bh 2^-d <= h / 32. A step shrinks by less than a
 * thirty-second, and drawing its increment descends about log2(32 bh / h)
 * levels of the tree instead of the full 30 that a time on no node takes
 * (measured: 143 -> 34 ms per step for 100 x 1,000 elements). Where rounding would leave no step (h below the tree's
 * resolution) the end stays t + h. */
static double node_end(const struct nsde_solver *s, double t, double h)
{
  double res = s->bm.h, t_new;
  for (int d = 0; d < 30 && res > 0.03125 * h; d++)
    res *= 0.5;
  t_new = s->bm.t0 + floor((t + h - s->bm.t0) / res) * res;
  return t_new > t ? t_new : t + h;
}

/* Trial of one step of size h to t_new with step doubling: on return the
 * grid holds the two half steps and the state the two halves' result
 * (committed), *err the norm; the caller rolls back on rejection. */
static enum nsde_status trial_doubling(struct nsde_solver *s, double t, double t_new, double *err,
                                       int *committed)
{
  const size_t bytes = (size_t)s->n * s->esz;
  const double mid = t + 0.5 * (t_new - t);
  enum nsde_status st;
  int64_t bad = 0;

  *committed = 0;
  *err = INFINITY;
  if ((st = nsde__solver_step_compute(s, t, t_new, 0, &bad)) != NSDE_OK || bad)
    return st;
  memcpy(s->buf[B_ERR], s->buf[B_NEXT], bytes);
  s->grid[s->step + 1] = mid;
  s->grid[s->step + 2] = t_new;
  for (int half = 0; half < 2; half++) {
    double a = half ? mid : t, b = half ? t_new : mid;
    if (s->rec)
      s->rec->before_step(s);
    if ((st = nsde__solver_step_compute(s, a, b, 0, &bad)) != NSDE_OK || bad)
      return st;
    nsde__solver_step_commit(s, 0);
    (*committed)++;
  }
  *err = norm(s, s->buf[B_X0], s->buf[B_CUR], s->buf[B_ERR], t_new - t);
  return NSDE_OK;
}

/* Trial with an embedded estimate: B_NEXT holds the step, nothing committed. */
static enum nsde_status trial_embedded(struct nsde_solver *s, double t, double t_new, double *err)
{
  enum nsde_status st;
  int64_t bad = 0;

  *err = INFINITY;
  if ((st = nsde__solver_step_compute(s, t, t_new, 0, &bad)) != NSDE_OK || bad)
    return st;
  *err = norm(s, s->buf[B_CUR], s->buf[B_NEXT],
              s->sch->adapt.lower >= 0 ? s->buf[s->sch->adapt.lower] : NULL, t_new - t);
  return NSDE_OK;
}

static enum nsde_status adaptive_step(struct nsde_solver *s)
{
  const double t = s->grid[s->step], span = s->t1 - s->t0, tol = 1e-12 * span;
  const double q = error_order(s);
  const bool dbl = doubling(s->scheme);
  const size_t bytes = (size_t)s->n * s->esz;
  enum nsde_status st;

  if (dbl)
    memcpy(s->buf[B_X0], s->buf[B_CUR], bytes);
  for (;;) {
    const double goal = target(s);
    double h = fmin(fmax(s->h_next, s->dt_min), s->dt_max), t_new, err;
    const double proposed = h;
    bool clamped = false;
    int committed = 0;

    if (t + h >= goal - tol) {
      t_new = goal;
      h = goal - t;
      clamped = true;
    } else {
      t_new = node_end(s, t, h);
      h = t_new - t;
    }
    if (s->step + (dbl ? 2 : 1) > s->grid_cap)
      return nsde__error(s->ctx, NSDE_ERR_STEP_SIZE,
                         "adaptive solve: max_steps = %lld reached at t = %.6g (t1 = %.6g); "
                         "raise max_steps or the tolerances (state kept at t)",
                         (long long)s->grid_cap, t, s->t1);
    st = dbl ? trial_doubling(s, t, t_new, &err, &committed) : trial_embedded(s, t, t_new, &err);
    if (st != NSDE_OK || !(err <= 1.0)) {
      if (committed) { /* roll back the half steps */
        s->step -= committed;
        memcpy(s->buf[B_CUR], s->buf[B_X0], bytes);
      }
      if (st != NSDE_OK)
        return st;
      s->n_rejected++;
      if (s->m && s->n_rej < NSDE__MAX_REJ && (s->n_rej == 0 || t_new < s->rej[s->n_rej - 1]))
        s->rej[s->n_rej++] = t_new; /* later steps end there: the path stays previsible */
      if (h <= s->dt_min * (1.0 + 1e-12))
        return nsde__error(s->ctx, NSDE_ERR_STEP_SIZE,
                           "adaptive solve: at t = %.6g the error is %.3g times the tolerance "
                           "at the smallest step dt_min = %.3g (%s); state kept at t",
                           t, err, s->dt_min,
                           isfinite(err) ? "rtol/atol too tight, or a "
                                           "singularity"
                                         : "the step gave non-finite values");
      s->h_next = fmax(h * (isfinite(err) ? fmax(FAC_MIN, SAFETY * pow(err, -1.0 / q)) : FAC_MIN),
                       s->dt_min);
      continue;
    }
    /* accepted */
    if (!dbl) {
      if (s->rec)
        s->rec->before_step(s);
      s->grid[s->step + 1] = t_new;
      nsde__solver_step_commit(s, 0);
    }
    {
      double fac =
          err == 0.0 ? FAC_MAX : SAFETY * pow(err, -PI_B1 / q) * pow(s->err_prev, PI_B2 / q);
      fac = fmin(FAC_MAX, fmax(FAC_MIN, fac));
      s->h_next = h * fac;
      if (clamped && s->h_next < proposed)
        s->h_next = proposed; /* a step shortened to hit a target says nothing new */
      s->err_prev = fmax(err, 1e-4);
    }
    s->n_grid = s->step;
    while (s->n_rej > 0 && s->rej[s->n_rej - 1] <= t_new + tol)
      s->n_rej--;
    while (s->save_next < s->n_save && fabs(s->save_at[s->save_next] - t_new) <= tol)
      s->save_idx[s->save_next++] = s->step;
    return NSDE_OK;
  }
}

const struct nsde__stepper nsde__adaptive_stepper = {
    .advance = adaptive_step,
    .reset = adaptive_reset,
};
