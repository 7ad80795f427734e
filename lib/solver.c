/*
 * Stepping a solver: one step computes into spare buffers and is committed
 * (pointer swap) only when every callback succeeded and every new value is
 * finite, so a failed step leaves the state and the time as they were; the
 * public calls nsde_solve, nsde_solver_step, reset, reconstruct and the
 * accessors. The schemes' formulas are in lib/scheme/ and doc/solvers.md.
 *
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "brownian-private.h"
#include "func-private.h"

#include "scheme/scheme.h"

/* ---- one step ---------------------------------------------------------- */

enum nsde_status nsde__solver_cb_fail(struct nsde_solver *s, const char *which, int rc, double t)
{
  return nsde__error(s->ctx, NSDE_ERR_CALLBACK,
                     "%s callback returned %d in step %lld of %lld (t = %.6g)", which, rc,
                     (long long)s->step, (long long)s->n_grid, t);
}

/* An integer count, so the same for any split among the threads (serial,
 * the scan of the state after each step left the other thread of a
 * 2-thread training step waiting for 1.2% of its time). */
#define NONFINITE(T, SFX)                                                                          \
  NSDE_CLONES static int64_t nonfinite##SFX(int64_t n, const T *a, int nt)                         \
  {                                                                                                \
    int64_t bad = 0;                                                                               \
    (void)nt;                                                                                      \
    NSDE_PAR_FOR(nt > 1 && n > NSDE_PAR_MIN,                                                       \
                 "omp parallel for reduction(+ : bad) schedule(static) num_threads(nt)",           \
                 for (int64_t i = 0; i < n; i++) bad += !isfinite(a[i]););                         \
    return bad;                                                                                    \
  }
NSDE__FOR_DTYPES(NONFINITE)
#undef NONFINITE

int64_t nsde__count_nonfinite(enum nsde_dtype dtype, int64_t n, const void *p, int threads)
{
  return dtype == NSDE_DTYPE_FLOAT32 ? nonfinite_f32(n, p, threads) : nonfinite_f64(n, p, threads);
}

static enum nsde_status nonfinite(struct nsde_solver *s, int64_t bad, double t, double h)
{
  return nsde__error(s->ctx, NSDE_ERR_NONFINITE,
                     "%lld non-finite state values after step %lld of %lld (t = %.6g -> "
                     "%.6g); state kept as before the step",
                     (long long)bad, (long long)s->step, (long long)s->n_grid, t, t + h);
}

/* drift at (t, x) -> f; diffusion -> g (g may be NULL when no noise) */
enum nsde_status nsde__solver_eval_fg(struct nsde_solver *s, double t, const void *x, void *f,
                                      void *g)
{
  const struct nsde_sde *sde = s->sde;
  int rc = nsde__func_eval(sde->drift, t, s->batch, s->dim, x, NULL, f);

  s->n_drift++; /* every drift evaluation of a step passes here (a scheme's own count theirs) */
  if (rc < 0)
    return nsde__solver_cb_fail(s, "drift", rc, t);
  if (g) {
    rc = nsde__func_eval(sde->diffusion, t, s->batch, s->dim, x, f, g);
    if (rc < 0)
      return nsde__solver_cb_fail(s, "diffusion", rc, t);
  }
  return NSDE_OK;
}

enum nsde_status nsde__solver_step_compute(struct nsde_solver *s, double t, double t_next,
                                           int backwards, int64_t *bad)
{
  if (s->dw) { /* a recorded step draws into its tape slot, for the backward pass */
    const int64_t i = backwards ? s->step - 1 : s->step;
    s->dw = s->recording && !backwards ? s->rec->dw_slot(s, s->step) : NULL;
    if (!s->dw)
      s->dw = s->dw_own;
    if (!(backwards && s->dw_step == i)) { /* a reconstruction: drawn by back_step */
      nsde__brownian_fill(&s->bm, t, t_next, s->dtype, s->dw, s->hl);
      s->n_draws++;
    }
    s->dw_step = -1;
  }
  *bad = 0;
  return s->sch->step(s, t, t_next, backwards, bad);
}

void nsde__solver_step_commit(struct nsde_solver *s, int backwards)
{
  if (s->recording && !backwards)
    s->rec->record(s, s->step);
  NSDE__SWAP(s->buf[B_CUR], s->buf[B_NEXT]);
  s->step += backwards ? -1 : 1;
}

enum nsde_status nsde__solver_step(struct nsde_solver *s, int backwards)
{
  const int64_t i = backwards ? s->step - 1 : s->step;
  const double t = s->grid[i], t_next = s->grid[i + 1];
  int64_t bad = 0;
  enum nsde_status st = nsde__solver_step_compute(s, t, t_next, backwards, &bad);

  if (st != NSDE_OK)
    return st;
  if (bad)
    return nonfinite(s, bad, t, t_next - t);
  nsde__solver_step_commit(s, backwards);
  return NSDE_OK;
}

/* ---- public stepping ----------------------------------------------------- */

static enum nsde_status check_state(struct nsde_solver *s, const struct nsde_tensor *x,
                                    const char *what)
{
  return nsde__check_tensor(s->ctx, what, "the state", x, s->dtype, s->rank, s->shape, false);
}

/* Copy between the user's tensor and a contiguous solver buffer. */
void nsde__solver_xfer(struct nsde_solver *s, struct nsde_tensor *user, void *buf, bool to_user)
{
  struct nsde_tensor view = *user;
  enum nsde_status st;

  view.data = buf;
  view.owned = NULL;
  view.contiguous = 1;
  {
    int64_t stride = 1;
    for (int i = s->rank - 1; i >= 0; i--) {
      view.stride[i] = stride;
      stride *= s->shape[i];
    }
  }
  /* cannot fail: the callers checked the user tensor's dtype and shape */
  st = to_user ? nsde_tensor_copy(user, &view) : nsde_tensor_copy(&view, user);
  (void)st;
}

NSDE_API enum nsde_status nsde_solver_reset(struct nsde_solver *s)
{
  if (!s)
    return NSDE_ERR_NULL;
  s->step = 0;
  s->z_fresh = true;
  s->grad_ready = false;
  s->n_drift = 0;
  s->n_draws = 0;
  s->dw_step = -1;
  if (s->stepper)
    s->stepper->reset(s);
  return NSDE_OK;
}

static bool at_end(const struct nsde_solver *s)
{
  return s->adaptive ? s->step > 0 && s->grid[s->step] == s->t1 : s->step >= s->n_grid;
}

NSDE_API enum nsde_status nsde_solver_step(struct nsde_solver *s, struct nsde_tensor *state)
{
  enum nsde_status st;

  if (!s)
    return NSDE_ERR_NULL;
  if ((st = check_state(s, state, "nsde_solver_step")) != NSDE_OK)
    return st;
  if (at_end(s))
    return nsde__error(s->ctx, NSDE_ERR_STATE,
                       "nsde_solver_step: already at t1; call nsde_solver_reset() first");
  nsde__solver_xfer(s, state, s->buf[B_CUR], false);
  s->grad_ready = false;
  st = s->stepper ? s->stepper->advance(s) : nsde__solver_step(s, 0);
  if (st == NSDE_OK)
    nsde__solver_xfer(s, state, s->buf[B_CUR], true);
  return st;
}

NSDE_API enum nsde_status nsde_solve(struct nsde_solver *s, struct nsde_tensor *state,
                                     struct nsde_tensor *saved)
{
  enum nsde_status st;
  int64_t j = 0;
  size_t bytes;

  if (!s)
    return NSDE_ERR_NULL;
  if ((st = check_state(s, state, "nsde_solve")) != NSDE_OK)
    return st;
  bytes = (size_t)s->n * s->esz;
  if (saved && (saved->dtype != s->dtype || !saved->contiguous || saved->numel != s->n_save * s->n))
    return nsde__error(s->ctx, NSDE_ERR_SHAPE,
                       "nsde_solve: saved must be contiguous, of the state's dtype, with "
                       "n_save * numel(state) = %lld elements",
                       (long long)(s->n_save * s->n));
  if ((st = nsde_solver_reset(s)) != NSDE_OK)
    return st;
  nsde__solver_xfer(s, state, s->buf[B_CUR], false);
  {
    int64_t bad = nsde__count_nonfinite(s->dtype, s->n, s->buf[B_CUR], s->ctx->threads);
    if (bad)
      return nsde__error(s->ctx, NSDE_ERR_NONFINITE,
                         "nsde_solve: %lld non-finite values in the initial state; nothing was "
                         "computed",
                         (long long)bad);
  }
  s->recording = s->grad == NSDE_GRAD_STORE_ALL;
  s->tape_first = 0;
  s->tape_end = s->n_grid;
  for (;;) {
    while (saved && j < s->n_save && s->save_idx[j] == s->step) {
      memcpy((char *)saved->data + (size_t)j * bytes, s->buf[B_CUR], bytes);
      j++;
    }
    if (at_end(s))
      break;
    if (s->stepper) {
      st = s->stepper->advance(s); /* calls before_step itself */
    } else {
      if (s->rec)
        s->rec->before_step(s);
      st = nsde__solver_step(s, 0);
    }
    if (st != NSDE_OK)
      break;
  }
  s->recording = false;
  nsde__solver_xfer(s, state, s->buf[B_CUR], true);
  if (st == NSDE_OK && s->rec)
    s->rec->solved(s);
  return st;
}

NSDE_API enum nsde_status nsde_solver_reconstruct(struct nsde_solver *s, struct nsde_tensor *state)
{
  enum nsde_status st;

  if (!s)
    return NSDE_ERR_NULL;
  if (!s->sch->reversible) {
    char names[160];
    return nsde__error(s->ctx, NSDE_ERR_UNSUPPORTED,
                       "nsde_solver_reconstruct: only a reversible scheme (%s) can run "
                       "backwards, this solver is %s",
                       nsde__scheme_names(names, sizeof(names), nsde__scheme_reversible),
                       s->sch->name);
  }
  if ((st = check_state(s, state, "nsde_solver_reconstruct")) != NSDE_OK)
    return st;
  if (s->step != s->n_grid || s->z_fresh)
    return nsde__error(s->ctx, NSDE_ERR_STATE,
                       "nsde_solver_reconstruct: the integration has not reached t1");
  s->grad_ready = false;
  while (s->step > 0) {
    st = nsde__solver_step(s, 1);
    if (st != NSDE_OK)
      return st;
  }
  nsde__solver_xfer(s, state, s->buf[B_CUR], true);
  s->z_fresh = true;
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_solver_set_seed(struct nsde_solver *s, uint64_t seed)
{
  if (!s)
    return NSDE_ERR_NULL;
  s->bm.seed = seed;
  s->grad_ready = false;
  return NSDE_OK;
}

NSDE_API double nsde_solver_time(const struct nsde_solver *s)
{
  return s ? s->grid[s->step] : NAN;
}

NSDE_API int64_t nsde_solver_step_index(const struct nsde_solver *s)
{
  return s ? s->step : -1;
}

NSDE_API int64_t nsde_solver_num_steps(const struct nsde_solver *s)
{
  return s ? s->n_grid : -1;
}

NSDE_API const struct nsde_brownian *nsde_solver_brownian(const struct nsde_solver *s)
{
  return s ? &s->bm : NULL;
}

NSDE_API enum nsde_status nsde_solver_get_stats(const struct nsde_solver *s,
                                                struct nsde_solver_stats *user)
{
  struct nsde_solver_stats st;
  int64_t n;

  if (!s || !user)
    return NSDE_ERR_NULL;
  memset(&st, 0, sizeof(st));
  st.size = sizeof(st);
  n = s->adaptive ? s->step : s->n_grid;
  st.steps = n;
  st.rejected = s->n_rejected;
  st.drift_evals = s->n_drift;
  st.brownian_draws = s->n_draws;
  st.dt_smallest = n > 0 ? INFINITY : 0.0;
  for (int64_t i = 0; i < n; i++) {
    double h = s->grid[i + 1] - s->grid[i];
    st.dt_smallest = h < st.dt_smallest ? h : st.dt_smallest;
    st.dt_largest = h > st.dt_largest ? h : st.dt_largest;
  }
  {
    enum nsde_status rc = nsde__struct_out_check(
        s->ctx, "solver stats", user, NSDE__SIZE_TO(struct nsde_solver_stats, brownian_draws));
    size_t size = user->size;
    if (rc != NSDE_OK)
      return rc;
    memcpy(user, &st, size < sizeof(st) ? size : sizeof(st));
    user->size = size;
  }
  return NSDE_OK;
}

NSDE_API int64_t nsde_solver_get_times(const struct nsde_solver *s, const double **times)
{
  if (!s || !times)
    return -1;
  *times = s->grid;
  return s->adaptive ? s->step : s->n_grid;
}
