/*
 * Pathwise gradients: reverse-mode differentiation through the solver's
 * discrete steps with the Brownian increments held fixed (the paper's
 * Theorem 3.1 in discrete time), and the strategies that decide what the
 * forward pass keeps:
 *
 *   STORE_ALL   every step's record (its input state and intermediate points)
 *   CHECKPOINT  states every k steps; a segment is replayed forward (same code,
 *               same regenerated noise, so the same bits) before its backward
 *   REVERSIBLE  a reversible scheme: each step reconstructed backwards, nothing kept
 *   ADJOINT     Euler-Maruyama: the continuous stochastic adjoint (Li et al.
 *               2020) integrated backwards with Heun on the regenerated path
 *
 * Each scheme's backward step sits beside its forward step in lib/scheme/
 * (with the vjp helpers they share, lib/scheme/vjp.c); A is the cotangent
 * dL/dx of the step's output, and vjp(x; c) means c^T d(.)/dx.
 * doc/gradients.md has the derivations.
 *
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scheme/elementwise.h"
#include "scheme/scheme.h"
#include "solver-build.h"

static int64_t n_params(const struct nsde_func *f)
{
  return f ? f->n_params : 0;
}

/* Bytes of the Brownian increments a step record keeps beside its states
 * (STORE_ALL and CHECKPOINT tapes of wn increments each): the backward step
 * reads them instead of drawing them again - the same values, so the same
 * bits - which was a fifth of a training step of the paper's CIFAR-10 model.
 * Not for a scheme that draws a Levy area too (two arrays a step) nor for
 * adaptive steps (trial steps draw increments that may be rejected). */
static size_t dw_rec_bytes(const struct nsde_sde *sde, const struct nsde_solver_config *c,
                           int64_t wn)
{
  if (sde->noise == NSDE_NOISE_NONE || nsde__scheme_of(c->scheme)->levy_area || c->adaptive ||
      (c->grad != NSDE_GRAD_STORE_ALL && c->grad != NSDE_GRAD_CHECKPOINT))
    return 0;
  return nsde__round64((size_t)wn * nsde__dtype_size(sde->dtype));
}

/* Whether a checkpointed segment's tape skips its ends: where a step's record
 * is its input (Euler-Maruyama, Milstein), a segment's first record is its
 * checkpoint, and its last step need not be replayed - only its input
 * recorded; the backward step draws its increments. A segment of k steps
 * then keeps k - 1 records and replays k - 1 steps (checkpoint_every 1:
 * none). */
static bool ck_skips_ends(const struct nsde__scheme *sch)
{
  return !sch->two_state && sch->rec_n == 1 && sch->rec[0] == B_CUR;
}

/* Records a checkpointed segment of k steps keeps (a two-state scheme's
 * from slot 1). */
static int64_t ck_slots(const struct nsde__scheme *sch, int64_t k)
{
  return ck_skips_ends(sch) ? k - 1 : k + (sch->two_state ? 1 : 0);
}

/* Bytes of N steps checkpointed every k: the checkpoints (ckb bytes each)
 * and one segment's records (rec bytes each). */
static double ck_bytes(const struct nsde__scheme *sch, int64_t n_grid, int64_t k, size_t ckb,
                       size_t rec)
{
  return (double)((n_grid + k - 1) / k) * (double)ckb + (double)ck_slots(sch, k) * (double)rec;
}

/* Whether the strategy can differentiate this SDE under this scheme. */
static enum nsde_status grad_check(const struct nsde_sde *sde, const struct nsde_solver_config *c)
{
  struct nsde_context *ctx = sde->ctx;
  const struct nsde_func *g = sde->diffusion;
  const struct nsde__scheme *sch = nsde__scheme_of(c->scheme);
  const bool dropout = g && g->kind == NSDE__FUNC_DROPOUT;

  if ((int)c->grad < NSDE_GRAD_NONE || (int)c->grad > NSDE_GRAD_ADJOINT)
    return nsde__error(ctx, NSDE_ERR_INVALID, "unknown gradient strategy %d", (int)c->grad);
  if (!nsde__func_has_vjp(sde->drift))
    return nsde__error(ctx, NSDE_ERR_MISSING_OP, "gradients need the drift's vjp callback");
  if (g && !dropout && !nsde__func_has_vjp(g))
    return nsde__error(ctx, NSDE_ERR_MISSING_OP, "gradients need the diffusion's vjp callback");
  if (sch->back_diag_vjp && g) {
    if (dropout)
      return nsde__error(ctx, NSDE_ERR_UNSUPPORTED,
                         "gradients through %s with dropout noise are not supported "
                         "(they need second derivatives of the drift)",
                         sch->name);
    if (!nsde__func_has_diag_vjp(g))
      return nsde__error(ctx, NSDE_ERR_MISSING_OP,
                         "gradients through %s need the diffusion's diag_deriv_vjp", sch->name);
  }
  if (c->grad == NSDE_GRAD_REVERSIBLE && !sch->reversible) {
    char names[160];
    return nsde__error(ctx, NSDE_ERR_UNSUPPORTED,
                       "NSDE_GRAD_REVERSIBLE needs a reversible "
                       "scheme (%s), not %s",
                       nsde__scheme_names(names, sizeof(names), nsde__scheme_reversible),
                       sch->name);
  }
  if (c->grad == NSDE_GRAD_ADJOINT) {
    if (!sch->adjoint)
      return nsde__error(ctx, NSDE_ERR_UNSUPPORTED,
                         "NSDE_GRAD_ADJOINT is the adjoint of Euler-Maruyama (Ito) solves");
    if (g && (dropout || sde->noise == NSDE_NOISE_SCALAR || sde->noise == NSDE_NOISE_GENERAL))
      return nsde__error(ctx, NSDE_ERR_UNSUPPORTED,
                         "NSDE_GRAD_ADJOINT supports no, additive or diagonal noise with a "
                         "built-in or callback diffusion (not dropout, scalar or general)");
    if (g && sde->noise == NSDE_NOISE_DIAGONAL &&
        (!nsde__func_has_diag(g) || !nsde__func_has_diag_vjp(g)))
      return nsde__error(ctx, NSDE_ERR_MISSING_OP,
                         "NSDE_GRAD_ADJOINT with state-dependent noise needs the diffusion's "
                         "diag_deriv and diag_deriv_vjp (the Ito-Stratonovich correction)");
  }
  return NSDE_OK;
}

enum nsde_status nsde__grad_plan(const struct nsde_sde *sde, const struct nsde_solver_config *c,
                                 int64_t n_grid, int64_t n, int64_t wn, size_t *bytes,
                                 int64_t *ck_every)
{
  struct nsde_context *ctx = sde->ctx;
  const struct nsde_func *g = sde->diffusion;
  const struct nsde__scheme *sch = nsde__scheme_of(c->scheme);
  const bool two = sch->two_state;
  const size_t esz = nsde__dtype_size(sde->dtype);
  size_t arr, work, rec, ck = 0, tape = 0;
  enum nsde_status st;

  *bytes = 0;
  *ck_every = 0;
  if (c->grad == NSDE_GRAD_NONE)
    return NSDE_OK;
  if ((st = grad_check(sde, c)) != NSDE_OK)
    return st;
  if (c->checkpoint_every < 0)
    return nsde__error(ctx, NSDE_ERR_INVALID, "checkpoint_every must be >= 0");

  arr = nsde__round64((size_t)n * esz);
  if (arr / 32 > SIZE_MAX / 64 / G_N)
    return nsde__error(ctx, NSDE_ERR_OVERFLOW, "gradient work arrays overflow");
  work = G_N * arr + nsde__round64(4 * (size_t)(n_params(sde->drift) + n_params(g)) * esz);
  if (sde->noise == NSDE_NOISE_GENERAL) /* the diffusion's cotangent, numel x m */
    work += nsde__round64((size_t)n * (size_t)g->out_m * esz);
  rec = (size_t)nsde__scheme_of(c->scheme)->rec_n * arr + dw_rec_bytes(sde, c, wn);
  if (c->grad == NSDE_GRAD_STORE_ALL) {
    if ((size_t)n_grid + 1 > SIZE_MAX / rec)
      return nsde__error(ctx, NSDE_ERR_OVERFLOW, "store-all tape overflows");
    tape = ((size_t)n_grid + 1) * rec;
  } else if (c->grad == NSDE_GRAD_CHECKPOINT) {
    const size_t ckb = (two ? 2 : 1) * arr;
    int64_t k = c->checkpoint_every > 0 ? c->checkpoint_every : 0;
    double best = INFINITY;
    if (k > n_grid)
      k = n_grid;
    if (k == 0) /* the interval that needs the fewest bytes: ~sqrt(N) */
      for (int64_t kk = 1; kk <= n_grid; kk++) {
        const double m = ck_bytes(sch, n_grid, kk, ckb, rec);
        if (m < best) {
          best = m;
          k = kk;
        }
      }
    if (ck_bytes(sch, n_grid, k, ckb, rec) > 1e18)
      return nsde__error(ctx, NSDE_ERR_OVERFLOW, "checkpoint memory overflows");
    ck = (size_t)((n_grid + k - 1) / k) * ckb;
    tape = (size_t)ck_slots(sch, k) * rec;
    *ck_every = k;
    if (c->grad_budget_bytes > 0 && work + ck + tape > c->grad_budget_bytes)
      return nsde__error(ctx, NSDE_ERR_NOMEM,
                         "checkpointing %lld steps every %lld needs %zu bytes, over the budget "
                         "of %zu",
                         (long long)n_grid, (long long)k, work + ck + tape, c->grad_budget_bytes);
  }
  *bytes = work + tape + ck;
  return NSDE_OK;
}

static void *dw_slot(const struct nsde_solver *s, int64_t step)
{
  const int64_t k = step - s->tape_first;

  if (!s->dw_tape || k < 0 || k >= s->tape_slots || step >= s->tape_end)
    return NULL;
  return (char *)s->dw_tape + (size_t)k * s->dw_rec;
}

static size_t arr_bytes(const struct nsde_solver *s)
{
  return nsde__round64((size_t)s->n * s->esz);
}

static void *slot(const struct nsde_solver *s, int64_t k, int j)
{
  return (char *)s->tape + ((size_t)k * (size_t)s->rec_n + (size_t)j) * arr_bytes(s);
}

static void *ckpt(const struct nsde_solver *s, int64_t c, int j)
{
  return (char *)s->ckpt + ((size_t)c * (size_t)s->ck_arrays + (size_t)j) * arr_bytes(s);
}

static void record(struct nsde_solver *s, int64_t step)
{
  int64_t k = step - s->tape_first + s->rec_shift;

  if (k < 0 || k >= s->tape_slots)
    return;
  for (int j = 0; j < s->rec_n; j++)
    memcpy(slot(s, k, j), s->buf[s->rec_buf[j]], (size_t)s->n * s->esz);
}

static void before_step(struct nsde_solver *s)
{
  const bool two = s->sch->two_state;
  const size_t bytes = (size_t)s->n * s->esz;

  if (s->grad == NSDE_GRAD_STORE_ALL && two && s->step == 0)
    memcpy(slot(s, 0, 0), s->buf[B_CUR], bytes); /* z_0 = y_0 */
  if (s->grad == NSDE_GRAD_CHECKPOINT && s->step % s->ck_every == 0) {
    int64_t c = s->step / s->ck_every;
    memcpy(ckpt(s, c, 0), s->buf[B_CUR], bytes);
    if (two)
      memcpy(ckpt(s, c, 1), s->z_fresh ? s->buf[B_CUR] : s->buf[B_Z], bytes);
  }
}

static uint64_t param_hash(const struct nsde_solver *s)
{
  const struct nsde_func *fs[2] = {s->sde->drift, s->sde->diffusion};
  uint64_t h = NSDE__FNV_BASIS;

  for (int k = 0; k < 2; k++)
    if (fs[k] && fs[k]->n_params > 0)
      h = (h ^ nsde__fingerprint(fs[k]->params, (size_t)fs[k]->n_params * s->esz)) *
          NSDE__FNV_PRIME;
  return h;
}

/* nsde_solve finished: the tape is this solve's, for these parameters. */
static void solved(struct nsde_solver *s)
{
  s->grad_ready = true;
  s->param_hash = param_hash(s);
}

static const struct nsde__recorder recorder = {
    .before_step = before_step,
    .record = record,
    .dw_slot = dw_slot,
    .solved = solved,
};

void nsde__grad_setup(struct nsde_solver *s, char *mem, int64_t ck_every)
{
  const size_t arr = nsde__round64((size_t)s->n * s->esz);
  const int64_t np = n_params(s->sde->drift) + n_params(s->sde->diffusion);

  s->recording = false;
  s->grad_ready = false;
  if (s->grad == NSDE_GRAD_NONE)
    return;
  s->rec = &recorder;
  s->rec_n = s->sch->rec_n;
  s->rec_buf[0] = s->sch->rec[0];
  s->rec_buf[1] = s->sch->rec[1];
  for (int i = 0; i < G_N; i++)
    s->gbuf[i] = mem + (size_t)i * arr;
  mem += G_N * arr;
  s->pscratch = mem;
  mem += nsde__round64(4 * (size_t)np * s->esz);
  if (s->m) {
    s->cgm = mem;
    mem += nsde__round64((size_t)s->n * (size_t)s->m * s->esz);
  }
  s->tape = mem;
  s->rec_shift = s->sch->two_state ? 1 : 0;
  if (s->grad == NSDE_GRAD_STORE_ALL) {
    s->tape_slots = s->n_grid + 1;
  } else if (s->grad == NSDE_GRAD_CHECKPOINT) {
    s->ck_every = ck_every;
    s->tape_slots = ck_slots(s->sch, ck_every);
    if (ck_skips_ends(s->sch))
      s->rec_shift = -1; /* a segment's first record is its checkpoint */
    s->n_ckpt = (s->n_grid + ck_every - 1) / ck_every;
    s->ck_arrays = s->sch->two_state ? 2 : 1;
  }
  s->dw_rec = s->dw_own
                  ? dw_rec_bytes(s->sde,
                                 &(struct nsde_solver_config){
                                     .scheme = s->scheme, .adaptive = s->adaptive, .grad = s->grad},
                                 s->wn)
                  : 0;
  mem += (size_t)s->tape_slots * (size_t)s->rec_n * arr;
  s->dw_tape = s->dw_rec ? mem : NULL;
  mem += (size_t)s->tape_slots * s->dw_rec;
  if (s->grad == NSDE_GRAD_CHECKPOINT)
    s->ckpt = mem;
}

/* ---- one backward step -------------------------------------------------------
 * In: A = dL/dx_{n+1} (G_A), the record of step n. Out: A = dL/dx_n. Each
 * scheme's backward step sits beside its forward step in lib/scheme/. */

static enum nsde_status back_step(struct nsde_solver *s, int64_t n, const void *r0, const void *r1,
                                  void *pd, void *pg)
{
  const double t = s->grid[n], h = s->grid[n + 1] - t;

  if (s->dw) { /* the increments of the forward step: recorded, or drawn again */
    s->dw = dw_slot(s, n);
    if (!s->dw) {
      s->dw = s->dw_own;
      nsde__brownian_fill(&s->bm, t, t + h, s->dtype, s->dw, s->hl);
      s->n_draws++;
      s->dw_step = n;
    }
  }
  return s->sch->back(s, n, t, h, r0, r1, pd, pg);
}

/* ---- the public entry ------------------------------------------------------- */

static void add_saved(struct nsde_solver *s, const struct nsde_tensor *gs, int64_t idx, void *A)
{
  if (!gs)
    return;
  for (int64_t j = 0; j < s->n_save; j++)
    if (s->save_idx[j] == idx) {
      const char *src = (const char *)gs->data + (size_t)j * (size_t)s->n * s->esz;
      NSDE__EW(s, R(A) += ((const T *)src)[i];);
    }
}

/* After the backward step into grid point n: add the save-at cotangents there
 * and refuse a non-finite gradient, naming the step. */
static enum nsde_status step_done(struct nsde_solver *s, const struct nsde_tensor *grad_saved,
                                  int64_t n)
{
  add_saved(s, grad_saved, n, s->gbuf[G_A]);
  if (nsde__count_nonfinite(s->dtype, s->n, s->gbuf[G_A], s->ctx->threads))
    return nsde__error(s->ctx, NSDE_ERR_NONFINITE,
                       "nsde_backward: non-finite gradient at step %lld (t = %.6g)", (long long)n,
                       s->grid[n]);
  return NSDE_OK;
}

static enum nsde_status check_like_state(struct nsde_solver *s, const struct nsde_tensor *t,
                                         const char *what)
{
  return nsde__check_tensor(s->ctx, "nsde_backward", what, t, s->dtype, s->rank, s->shape, false);
}

/* A parameter-gradient buffer holds exactly the function's parameters (or is
 * NULL with a count of 0). */
static enum nsde_status check_param_count(struct nsde_solver *s, const void *buf, int64_t n,
                                          size_t np, const char *which)
{
  if (buf ? n == (int64_t)np : n == 0)
    return NSDE_OK;
  return nsde__error(s->ctx, NSDE_ERR_SHAPE,
                     "nsde_backward: grad_%s_params %s %lld values, the %s has %lld parameters",
                     which, buf ? "holds" : "is NULL with", (long long)n, which, (long long)np);
}

/* What every strategy's backward pass shares: the save-at cotangents and
 * the parameter-gradient accumulators (pd2, pg2: the adjoint's scratch). */
struct back_run {
  const struct nsde_tensor *saved;
  void *pd, *pg, *pd2, *pg2;
  size_t np_d, np_g;
};

/* A two-state scheme's backward pass ends at its second state's start z0. */
static enum nsde_status back_initial(struct nsde_solver *s, const void *z0, struct back_run *r)
{
  return s->sch->two_state ? s->sch->back_initial(s, z0, r->pd, r->pg) : NSDE_OK;
}

static enum nsde_status back_store_all(struct nsde_solver *s, struct back_run *r)
{
  const int64_t off = s->sch->two_state ? 1 : 0;
  enum nsde_status st = NSDE_OK;

  for (int64_t n = s->n_grid - 1; n >= 0 && st == NSDE_OK; n--) {
    st = back_step(s, n, slot(s, n + off, 0), s->rec_n > 1 ? slot(s, n + off, 1) : NULL, r->pd,
                   r->pg);
    if (st == NSDE_OK)
      st = step_done(s, r->saved, n);
  }
  return st == NSDE_OK ? back_initial(s, slot(s, 0, 0), r) : st;
}

/* Each segment replayed forward from its checkpoint (recording it: the same
 * code and noise, so the same bits; ck_skips_ends: not its last step), then
 * differentiated backwards. */
static enum nsde_status back_checkpoint(struct nsde_solver *s, struct back_run *r)
{
  const int64_t N = s->n_grid;
  const size_t bytes = (size_t)s->n * s->esz;
  const int64_t ends = ck_skips_ends(s->sch);
  enum nsde_status st = NSDE_OK;

  for (int64_t c = (N + s->ck_every - 1) / s->ck_every - 1; c >= 0 && st == NSDE_OK; c--) {
    int64_t c0 = c * s->ck_every, c1 = c0 + s->ck_every < N ? c0 + s->ck_every : N;
    if (c1 - c0 > ends) /* a segment of one step replays nothing */
      memcpy(s->buf[B_CUR], ckpt(s, c, 0), bytes);
    if (s->sch->two_state) {
      memcpy(s->buf[B_Z], ckpt(s, c, 1), bytes);
      st = nsde__solver_eval_fg(s, s->grid[c0], s->buf[B_Z], s->buf[B_F0],
                                s->dw ? s->buf[B_G0] : NULL);
      s->z_fresh = false;
    }
    s->step = c0;
    s->tape_first = c0;
    s->tape_end = c1 - ends; /* a shorter last segment has slots to spare */
    s->recording = true;
    for (int64_t i = c0; i < c1 - ends && st == NSDE_OK; i++)
      st = nsde__solver_step(s, 0);
    if (ends && st == NSDE_OK)
      record(s, s->step); /* the last step's input (ck_skips_ends) */
    s->recording = false;
    for (int64_t n = c1 - 1; n >= c0 && st == NSDE_OK; n--) {
      const int64_t k = n - c0 + s->rec_shift;
      const void *r0 = ends && n == c0 ? ckpt(s, c, 0) : slot(s, k, 0);
      st = back_step(s, n, r0, s->rec_n > 1 ? slot(s, k, 1) : NULL, r->pd, r->pg);
      if (st == NSDE_OK)
        st = step_done(s, r->saved, n);
    }
  }
  s->step = N; /* the solver's own state is not needed again */
  return st == NSDE_OK ? back_initial(s, ckpt(s, 0, 1), r) : st;
}

/* Nothing kept: each step's input (y_n, z_n) reconstructed from B_Z's z_N. */
static enum nsde_status back_reversible(struct nsde_solver *s, struct back_run *r)
{
  enum nsde_status st = NSDE_OK;

  for (int64_t n = s->n_grid - 1; n >= 0 && st == NSDE_OK; n--) {
    st = back_step(s, n, s->buf[B_Z], NULL, r->pd, r->pg);
    if (st == NSDE_OK)
      st = nsde__solver_step(s, 1);
    if (st == NSDE_OK)
      st = step_done(s, r->saved, n);
  }
  if (st == NSDE_OK)
    st = back_initial(s, s->buf[B_Z], r);
  s->grad_ready = false; /* the reconstruction consumed the final state */
  s->z_fresh = true;
  return st;
}

static enum nsde_status back_adjoint(struct nsde_solver *s, struct back_run *r)
{
  enum nsde_status st = NSDE_OK;

  memcpy(s->gbuf[G_X0], s->buf[B_CUR], (size_t)s->n * s->esz);
  for (int64_t n = s->n_grid - 1; n >= 0 && st == NSDE_OK; n--) {
    st = s->sch->adjoint(s, n, r->pd, r->pg, r->pd2, r->pg2, r->np_d, r->np_g);
    if (st == NSDE_OK)
      st = step_done(s, r->saved, n);
  }
  return st;
}

/* The checks of nsde_backward's arguments and of the solver's state. */
static enum nsde_status back_args(struct nsde_solver *s, const struct nsde_tensor *grad_final,
                                  const struct nsde_tensor *grad_saved,
                                  const struct nsde_tensor *grad_initial, const void *gd,
                                  int64_t n_gd, const void *gg, int64_t n_gg)
{
  enum nsde_status st;

  if (s->grad == NSDE_GRAD_NONE)
    return nsde__error(s->ctx, NSDE_ERR_UNSUPPORTED,
                       "nsde_backward: the solver was made without a gradient strategy "
                       "(set grad in nsde_solver_config)");
  if ((st = check_like_state(s, grad_final, "grad_final")) != NSDE_OK ||
      (st = check_like_state(s, grad_initial, "grad_initial")) != NSDE_OK)
    return st;
  if (grad_saved && (grad_saved->dtype != s->dtype || !grad_saved->contiguous ||
                     grad_saved->numel != s->n_save * s->n))
    return nsde__error(s->ctx, NSDE_ERR_SHAPE,
                       "nsde_backward: grad_saved must be contiguous with n_save * numel = %lld "
                       "elements of the state's dtype",
                       (long long)(s->n_save * s->n));
  if (!s->grad_ready)
    return nsde__error(s->ctx, NSDE_ERR_STATE,
                       "nsde_backward: no completed nsde_solve() to differentiate (the solver "
                       "was never solved, failed, or was stepped, reset or reconstructed since)");
  if (param_hash(s) != s->param_hash)
    return nsde__error(s->ctx, NSDE_ERR_STATE,
                       "nsde_backward: drift or diffusion parameters changed since the solve");
  if ((st = check_param_count(s, gd, n_gd, (size_t)n_params(s->sde->drift), "drift")) != NSDE_OK)
    return st;
  return check_param_count(s, gg, n_gg, (size_t)n_params(s->sde->diffusion), "diffusion");
}

/* G_A = grad_final (refused if not finite), the other cotangents zero. */
static enum nsde_status back_start(struct nsde_solver *s, const struct nsde_tensor *grad_final,
                                   const struct nsde_tensor *grad_saved)
{
  void *A = s->gbuf[G_A];
  int64_t bad;

  nsde__solver_xfer(s, (struct nsde_tensor *)grad_final, A, false);
  bad = nsde__count_nonfinite(s->dtype, s->n, A, s->ctx->threads);
  if (bad == 0 && grad_saved)
    bad = nsde__count_nonfinite(s->dtype, grad_saved->numel, grad_saved->data, s->ctx->threads);
  if (bad)
    return nsde__error(s->ctx, NSDE_ERR_NONFINITE,
                       "nsde_backward: %lld non-finite values in grad_final%s; nothing was "
                       "computed",
                       (long long)bad, grad_saved ? " or grad_saved" : "");
  nsde__grad_zero(s, s->gbuf[G_Z]);
  nsde__grad_zero(s, s->gbuf[G_CF]);
  nsde__grad_zero(s, s->gbuf[G_CG]);
  add_saved(s, grad_saved, s->n_grid, A);
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_backward(struct nsde_solver *s, const struct nsde_tensor *grad_final,
                                        const struct nsde_tensor *grad_saved,
                                        struct nsde_tensor *grad_initial, void *grad_drift_params,
                                        int64_t n_grad_drift, void *grad_diffusion_params,
                                        int64_t n_grad_diffusion)
{
  static enum nsde_status (*const strategy[])(struct nsde_solver *, struct back_run *) = {
      [NSDE_GRAD_STORE_ALL] = back_store_all,
      [NSDE_GRAD_CHECKPOINT] = back_checkpoint,
      [NSDE_GRAD_REVERSIBLE] = back_reversible,
      [NSDE_GRAD_ADJOINT] = back_adjoint,
  };
  struct back_run r = {.saved = grad_saved};
  enum nsde_status st;
  int64_t n_drift;

  if (!s)
    return NSDE_ERR_NULL;
  if ((st = back_args(s, grad_final, grad_saved, grad_initial, grad_drift_params, n_grad_drift,
                      grad_diffusion_params, n_grad_diffusion)) != NSDE_OK)
    return st;
  r.np_d = (size_t)n_params(s->sde->drift);
  r.np_g = (size_t)n_params(s->sde->diffusion);
  r.pd = s->pscratch;
  r.pg = (char *)r.pd + r.np_d * s->esz;
  r.pd2 = (char *)r.pg + r.np_g * s->esz;
  r.pg2 = (char *)r.pd2 + r.np_d * s->esz;
  memset(r.pd, 0, 2 * (r.np_d + r.np_g) * s->esz);
  s->want_pg = grad_diffusion_params != NULL;
  if ((st = back_start(s, grad_final, grad_saved)) != NSDE_OK)
    return st;
  n_drift = s->n_drift; /* replays are not the solve's cost */
  st = strategy[s->grad](s, &r);
  s->n_drift = n_drift;
  if (st != NSDE_OK)
    return st;
  nsde__solver_xfer(s, grad_initial, s->gbuf[G_A], true);
  if (grad_drift_params)
    memcpy(grad_drift_params, r.pd, r.np_d * s->esz);
  if (grad_diffusion_params)
    memcpy(grad_diffusion_params, r.pg, r.np_g * s->esz);
  return NSDE_OK;
}
