/*
 * Making a solver: the configuration checked against the SDE and its scheme
 * (lib/scheme/), the time grid, and the one workspace allocation that holds
 * every buffer, the grid, the gradient memory (grad.c) and, for adaptive
 * solves (adaptive.c), their bookkeeping. Stepping (solver.c) allocates
 * nothing.
 *
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "brownian-private.h"
#include "func-private.h"

#include "scheme/scheme.h"
#include "solver-build.h"

NSDE_API void nsde_solver_config_init(struct nsde_solver_config *cfg)
{
  if (!cfg)
    return;
  memset(cfg, 0, sizeof(*cfg));
  cfg->size = sizeof(*cfg);
  cfg->scheme = NSDE_SCHEME_EULER_MARUYAMA;
  cfg->t0 = 0.0;
  cfg->t1 = 1.0;
  cfg->grid = NSDE_GRID_STEPS;
  cfg->n_steps = 10;
  cfg->dt = 0.1;
  cfg->rtol = 1e-3;
  cfg->atol = 1e-6;
}

/* Which buffers a scheme needs (bit per enum buf). */
static unsigned scheme_bufs(const struct nsde_sde *sde, enum nsde_scheme scheme)
{
  bool noise = sde->noise != NSDE_NOISE_NONE;
  return 1u << B_CUR | 1u << B_NEXT | 1u << B_F0 | (noise ? 1u << B_G0 : 0u) |
         nsde__scheme_of(scheme)->bufs(noise);
}

/* Number of equal base steps the configuration asks for. */
static enum nsde_status base_steps(struct nsde_context *ctx, const struct nsde_solver_config *c,
                                   int64_t *n)
{
  double span = c->t1 - c->t0, q;

  switch (c->grid) {
  case NSDE_GRID_STEPS:
    if (c->n_steps < 1 || c->n_steps >= ((int64_t)1 << 32))
      return nsde__error(ctx, NSDE_ERR_INVALID, "n_steps %lld outside 1..2^32-1",
                         (long long)c->n_steps);
    *n = c->n_steps;
    return NSDE_OK;
  case NSDE_GRID_DT:
  case NSDE_GRID_PAPER:
    if (!(c->dt > 0.0) || !isfinite(c->dt))
      return nsde__error(ctx, NSDE_ERR_INVALID, "dt must be finite and > 0 (got %g)", c->dt);
    q = span / c->dt;
    if (!(q < 4294967294.0))
      return nsde__error(ctx, NSDE_ERR_INVALID, "(t1 - t0)/dt = %g steps is too many", q);
    if (c->grid == NSDE_GRID_PAPER)
      *n = (int64_t)q + 1; /* int(T/h) + 1, as the paper's code */
    else
      *n = (int64_t)ceil(q * (1.0 - 1e-12)) < 1 ? 1 : (int64_t)ceil(q * (1.0 - 1e-12));
    return NSDE_OK;
  }
  return nsde__error(ctx, NSDE_ERR_INVALID, "unknown grid rule %d", (int)c->grid);
}

struct plan {
  int64_t batch, dim, n, wn, m, nbase, n_grid, ck_every;
  unsigned bufs;
  size_t bytes, off[B_NBUF], off_dw, off_hl, off_grid, off_save, off_save_at, off_rej, off_grad;
};

/* The caller's solver config in this library's layout (older layouts zero-filled). */
static enum nsde_status config_in(struct nsde_context *ctx, const struct nsde_solver_config *user,
                                  struct nsde_solver_config *c)
{
  return nsde__struct_in(ctx, "solver config", user,
                         NSDE__SIZE_TO(struct nsde_solver_config, max_steps), sizeof(*c), c);
}

/* The time span, the base grid and the save-at times. */
static enum nsde_status plan_times(struct nsde_context *ctx, const struct nsde_solver_config *c,
                                   struct plan *p)
{
  enum nsde_status st;

  if (!isfinite(c->t0) || !isfinite(c->t1) || !(c->t0 < c->t1))
    return nsde__error(ctx, NSDE_ERR_INVALID, "need finite t0 < t1 (got t0 = %g, t1 = %g)", c->t0,
                       c->t1);
  st = base_steps(ctx, c, &p->nbase);
  if (st != NSDE_OK)
    return st;
  if (c->n_save < 0 || (c->n_save > 0 && !c->save_at) || c->n_save > (int64_t)1 << 24)
    return nsde__error(ctx, NSDE_ERR_INVALID, "save_at: bad count %lld or NULL times",
                       (long long)c->n_save);
  for (int64_t i = 0; i < c->n_save; i++)
    if (!(c->save_at[i] >= c->t0 && c->save_at[i] <= c->t1) ||
        (i > 0 && !(c->save_at[i] > c->save_at[i - 1])))
      return nsde__error(ctx, NSDE_ERR_INVALID,
                         "save_at[%lld] = %g: times must increase strictly and lie in [t0, t1]",
                         (long long)i, c->save_at[i]);
  return NSDE_OK;
}

/* The state's shape and what the noise and the Brownian path make of it. */
static enum nsde_status plan_shape(const struct nsde_sde *sde, const struct nsde_solver_config *c,
                                   int rank, const int64_t *shape, struct plan *p)
{
  struct nsde_context *ctx = sde->ctx;
  enum nsde_status st;
  int64_t numel;

  st = nsde__check_shape(ctx, "nsde_solver_new", rank, shape, &numel);
  if (st != NSDE_OK)
    return st;
  p->batch = shape[0];
  p->dim = numel / shape[0];
  p->n = numel;
  p->m = sde->noise == NSDE_NOISE_GENERAL ? sde->diffusion->out_m : 0;
  p->wn = sde->noise == NSDE_NOISE_SCALAR ? p->batch : p->m ? p->batch * p->m : numel;
  if (p->m && (double)numel * (double)p->m > 9e15)
    return nsde__error(ctx, NSDE_ERR_OVERFLOW, "general noise: %lld x %lld diffusion values",
                       (long long)numel, (long long)p->m);
  if (c->batch_offset < 0)
    return nsde__error(ctx, NSDE_ERR_INVALID, "nsde_solver_new: batch_offset %lld is negative",
                       (long long)c->batch_offset);
  if (p->batch >= ((int64_t)1 << 32) - c->batch_offset || p->dim >= ((int64_t)1 << 32))
    return nsde__error(ctx, NSDE_ERR_SHAPE,
                       "nsde_solver_new: batch %lld + batch_offset %lld and elements per batch "
                       "item %lld must stay below 2^32",
                       (long long)p->batch, (long long)c->batch_offset, (long long)p->dim);
  if (c->brownian_steps < 0 || c->brownian_steps >= ((int64_t)1 << 32))
    return nsde__error(ctx, NSDE_ERR_INVALID, "brownian_steps %lld outside 0..2^32-1",
                       (long long)c->brownian_steps);
  return NSDE_OK;
}

/* Offsets of every array in the one workspace allocation. */
static enum nsde_status plan_layout(const struct nsde_sde *sde, const struct nsde_solver_config *c,
                                    struct plan *p)
{
  struct nsde_context *ctx = sde->ctx;
  const int64_t numel = p->n;
  size_t esz = nsde__dtype_size(sde->dtype), sz, total = 0;
  enum nsde_status st;

  p->n_grid = p->nbase + c->n_save; /* upper bound: save times may split steps */
  p->bufs = scheme_bufs(sde, c->scheme);
  if (c->adaptive) {
    if ((st = nsde__adaptive_plan(sde, c, &p->n_grid)) != NSDE_OK)
      return st;
    p->bufs |= 1u << B_X0 | 1u << B_ERR;
  }
  if (!nsde__mul_size((size_t)numel, esz, &sz) || sz > SIZE_MAX / 32)
    return nsde__error(ctx, NSDE_ERR_OVERFLOW, "state of %lld elements is too large",
                       (long long)numel);
  sz = nsde__round64(sz);
  for (int b = 0; b < B_NBUF; b++) {
    p->off[b] = total;
    if (p->bufs & (1u << b)) /* general noise: G is numel x m */
      total +=
          (b == B_G0 || b == B_G1) && p->m ? nsde__round64((size_t)numel * (size_t)p->m * esz) : sz;
  }
  {
    size_t wsz = nsde__round64((size_t)p->wn * esz);
    p->off_dw = total;
    total += sde->noise != NSDE_NOISE_NONE ? wsz : 0;
    p->off_hl = total;
    total += nsde__scheme_of(c->scheme)->levy_area && sde->noise != NSDE_NOISE_NONE ? wsz : 0;
  }
  p->off_grid = total;
  total += nsde__round64((size_t)(p->n_grid + 1) * sizeof(double));
  p->off_save = total;
  total += nsde__round64((size_t)c->n_save * sizeof(int64_t));
  p->off_save_at = total; /* adaptive: the save-at times are the steps' targets */
  total += c->adaptive ? nsde__round64((size_t)c->n_save * sizeof(double)) : 0;
  p->off_rej = total; /* adaptive, general noise: the pending ends of rejected steps */
  total += c->adaptive && p->m ? nsde__round64(NSDE__MAX_REJ * sizeof(double)) : 0;
  {
    size_t gbytes = 0;
    st = nsde__grad_plan(sde, c, p->n_grid, numel, p->wn, &gbytes, &p->ck_every);
    if (st != NSDE_OK)
      return st;
    p->off_grad = total;
    if (gbytes > SIZE_MAX - total)
      return nsde__error(ctx, NSDE_ERR_OVERFLOW, "gradient memory does not fit in size_t");
    total += gbytes;
  }
  p->bytes = total;
  return NSDE_OK;
}

static enum nsde_status make_plan(const struct nsde_sde *sde, const struct nsde_solver_config *c,
                                  int rank, const int64_t *shape, struct plan *p)
{
  enum nsde_status st;

  if ((st = nsde__scheme_check(sde->ctx, sde, c->scheme)) != NSDE_OK ||
      (st = plan_times(sde->ctx, c, p)) != NSDE_OK ||
      (st = plan_shape(sde, c, rank, shape, p)) != NSDE_OK)
    return st;
  return plan_layout(sde, c, p);
}

NSDE_API enum nsde_status nsde_solver_workspace_bytes(const struct nsde_sde *sde,
                                                      const struct nsde_solver_config *cfg,
                                                      int rank, const int64_t *state_shape,
                                                      size_t *bytes)
{
  struct nsde_solver_config c;
  struct plan p;
  enum nsde_status st;

  if (!sde || !cfg || !bytes)
    return nsde__error(sde ? sde->ctx : NULL, NSDE_ERR_NULL,
                       "nsde_solver_workspace_bytes: NULL argument");
  if ((st = config_in(sde->ctx, cfg, &c)) != NSDE_OK)
    return st;
  st = make_plan(sde, &c, rank, state_shape, &p);
  if (st == NSDE_OK)
    *bytes = p.bytes + sizeof(struct nsde_solver);
  return st;
}

/* Base grid merged with the save-at times; returns the step count. */
static int64_t build_grid(const struct nsde_solver_config *c, int64_t nbase, double *grid,
                          int64_t *save_idx)
{
  const double span = c->t1 - c->t0, tol = 1e-9 * span / (double)nbase;
  int64_t g = 0, j = 0;

  for (int64_t k = 0; k <= nbase; k++) {
    double tk = k == nbase ? c->t1 : c->t0 + span * (double)k / (double)nbase;
    while (j < c->n_save && c->save_at[j] < tk - tol) { /* strictly inside a step */
      grid[g] = c->save_at[j];
      save_idx[j++] = g++;
    }
    grid[g] = tk;
    while (j < c->n_save && fabs(c->save_at[j] - tk) <= tol)
      save_idx[j++] = g;
    g++;
  }
  return g - 1;
}

/* Adaptive steps: tolerances, step bounds, and the save-at times the steps
 * aim at. */
static void setup_adaptive(struct nsde_solver *s, const struct nsde_solver_config *cfg,
                           const struct plan *p, char *ws)
{
  const double span = cfg->t1 - cfg->t0;
  s->rtol = cfg->rtol;
  s->atol = cfg->atol;
  s->dt0 = cfg->dt0 > 0.0 ? cfg->dt0 : span / (double)p->nbase;
  s->dt_min = cfg->dt_min > 0.0 ? cfg->dt_min : span * 1e-10;
  s->dt_max = cfg->dt_max > 0.0 ? cfg->dt_max : span;
  s->grid_cap = p->n_grid;
  s->n_grid = p->n_grid; /* sizes the gradient memory below; reset to 0 after */
  s->save_at = (double *)(void *)(ws + p->off_save_at);
  s->rej = (double *)(void *)(ws + p->off_rej);
  if (cfg->n_save > 0) /* save_at may be NULL when there are none */
    memcpy(s->save_at, cfg->save_at, (size_t)cfg->n_save * sizeof(double));
}

/* The Brownian path of a solve: this config's seed and span, one increment
 * per base step unless brownian_steps says otherwise. */
static void brownian_config(const struct nsde_solver_config *cfg, const struct plan *p, bool scalar,
                            struct nsde_brownian_config *bc)
{
  nsde_brownian_config_init(bc);
  bc->seed = cfg->seed;
  bc->t0 = cfg->t0;
  bc->t1 = cfg->t1;
  bc->n_steps = cfg->brownian_steps > 0 ? cfg->brownian_steps : p->nbase;
  bc->batch = p->batch;
  bc->dim = scalar ? 1 : p->m ? p->m : p->dim;
  bc->batch_offset = cfg->batch_offset;
}

NSDE_API enum nsde_status nsde_solver_new(const struct nsde_sde *sde,
                                          const struct nsde_solver_config *user, int rank,
                                          const int64_t *state_shape, struct nsde_solver **out)
{
  struct nsde_context *ctx = sde ? sde->ctx : NULL;
  struct nsde_solver_config c;
  const struct nsde_solver_config *cfg = &c;
  struct nsde_brownian_config bc;
  struct nsde_solver *s;
  enum nsde_status st;
  struct plan p;
  char *ws;

  if (!out)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_solver_new: output pointer is NULL");
  *out = NULL;
  if (!sde || !user)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_solver_new: NULL argument");
  if ((st = config_in(ctx, user, &c)) != NSDE_OK)
    return st;
  st = make_plan(sde, cfg, rank, state_shape, &p);
  if (st != NSDE_OK)
    return st;
  s = calloc(1, sizeof(*s));
  ws = nsde__alloc(p.bytes);
  if (!s || !ws) {
    free(s);
    nsde__free(ws);
    return nsde__error(ctx, NSDE_ERR_NOMEM, "cannot allocate %zu bytes of solver workspace",
                       p.bytes);
  }
  s->ctx = ctx;
  s->sde = sde;
  s->scheme = cfg->scheme;
  s->sch = nsde__scheme_of(cfg->scheme);
  s->dtype = sde->dtype;
  s->esz = nsde__dtype_size(sde->dtype);
  s->rank = rank;
  memcpy(s->shape, state_shape, (size_t)rank * sizeof(int64_t));
  s->batch = p.batch;
  s->dim = p.dim;
  s->n = p.n;
  s->wn = p.wn;
  s->m = p.m;
  s->scalar = sde->noise == NSDE_NOISE_SCALAR;
  s->ws = ws;
  s->ws_bytes = p.bytes;
  for (int b = 0; b < B_NBUF; b++)
    s->buf[b] = (p.bufs & (1u << b)) ? ws + p.off[b] : NULL;
  s->dw = s->dw_own = sde->noise != NSDE_NOISE_NONE ? ws + p.off_dw : NULL;
  s->dw_step = -1;
  s->hl = s->sch->levy_area && s->dw ? ws + p.off_hl : NULL;
  s->grid = (double *)(void *)(ws + p.off_grid);
  s->save_idx = (int64_t *)(void *)(ws + p.off_save);
  s->n_save = cfg->n_save;
  s->t0 = cfg->t0;
  s->t1 = cfg->t1;
  s->adaptive = cfg->adaptive;
  if (s->adaptive)
    setup_adaptive(s, cfg, &p, ws);
  else
    s->n_grid = build_grid(cfg, p.nbase, s->grid, s->save_idx);

  brownian_config(cfg, &p, s->scalar, &bc);
  st = nsde__brownian_init(ctx, &s->bm, &bc);
  if (st != NSDE_OK) {
    nsde_solver_free(s);
    return st;
  }
  s->z_fresh = true;
  s->grad = cfg->grad;
  nsde__grad_setup(s, ws + p.off_grad, p.ck_every);
  if (s->adaptive) {
    s->stepper = &nsde__adaptive_stepper;
    s->stepper->reset(s);
  }
  *out = s;
  return NSDE_OK;
}

NSDE_API void nsde_solver_free(struct nsde_solver *s)
{
  if (!s)
    return;
  nsde__free(s->ws);
  free(s);
}
