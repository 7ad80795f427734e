/*
 * The paper's classifiers: stem network -> SDE block (network drift, built-in
 * diffusion, Euler-Maruyama on the paper's grid) -> head. This file builds
 * them and owns their parameters; passes.c runs them, sgd.c trains them,
 * model-file.c saves and loads them.
 *
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "func-private.h"
#include "nn-private.h"
#include "model-private.h"

NSDE_API void nsde_model_config_init(struct nsde_model_config *cfg)
{
  if (!cfg)
    return;
  memset(cfg, 0, sizeof(*cfg));
  cfg->size = sizeof(*cfg);
  cfg->arch = NSDE_MODEL_ARCH_CIFAR;
  cfg->in_channels = 3;
  cfg->in_height = 32;
  cfg->in_width = 32;
  cfg->width = 64;
  cfg->classes = 10;
  cfg->noise = NSDE_MODEL_NOISE_MULTIPLICATIVE;
  cfg->sigma = 1.0;
  cfg->t1 = 1.0;
  cfg->dt = 0.1;
  cfg->grad = NSDE_GRAD_CHECKPOINT;
  cfg->max_batch = 128;
  cfg->init_seed = 1;
}

/* The valid range of each integer field of a model configuration; a value
 * outside it is refused with the field's name and its range. */
#define MODEL_INT_FIELDS(X)                                                                        \
  X(arch, NSDE_MODEL_ARCH_CIFAR, NSDE_MODEL_ARCH_LARGE)                                            \
  X(in_channels, 1, 64)                                                                            \
  X(in_height, 4, 4096)                                                                            \
  X(in_width, 4, 4096)                                                                             \
  X(width, 1, 4096)                                                                                \
  X(groups, 0, 4096)                                                                               \
  X(classes, 2, 100000)                                                                            \
  X(noise, NSDE_MODEL_NOISE_ODE, NSDE_MODEL_NOISE_DROPOUT)                                         \
  X(grad, NSDE_GRAD_NONE, NSDE_GRAD_ADJOINT)                                                       \
  X(max_batch, 1, 65536)

/* The paper's min(32, C) unless the config asks for fewer groups. */
static int gn_groups_for(const struct nsde_model_config *cfg, int c)
{
  int g = cfg->groups > 0 ? cfg->groups : 32;
  return c < g ? c : g;
}

enum nsde_status nsde__model_check_config(struct nsde_context *ctx,
                                          const struct nsde_model_config *c)
{
#define CHECK_INT(f, lo, hi)                                                                       \
  if ((long long)c->f < (long long)(lo) || (long long)c->f > (long long)(hi))                      \
    return nsde__error(ctx, NSDE_ERR_INVALID,                                                      \
                       "model config: " #f " is %lld, must be in "                                 \
                       "[%lld, %lld]",                                                             \
                       (long long)c->f, (long long)(lo), (long long)(hi));
  MODEL_INT_FIELDS(CHECK_INT)
#undef CHECK_INT
  if (!isfinite(c->sigma) || c->sigma < 0)
    return nsde__error(ctx, NSDE_ERR_INVALID, "model config: sigma is %g, must be finite and >= 0",
                       c->sigma);
  if (!(c->t1 > 0) || !isfinite(c->t1))
    return nsde__error(ctx, NSDE_ERR_INVALID, "model config: T (t1) is %g, must be finite and > 0",
                       c->t1);
  if (!(c->dt > 0) || c->t1 / c->dt > 100000)
    return nsde__error(ctx, NSDE_ERR_INVALID,
                       "model config: dt is %g, must be > 0 with T/dt <= "
                       "100000 (T %g)",
                       c->dt, c->t1);
  if (c->arch == NSDE_MODEL_ARCH_LARGE && c->width % 4 != 0)
    return nsde__error(ctx, NSDE_ERR_INVALID,
                       "model config: width is %d, the large architecture "
                       "needs a multiple of 4",
                       c->width);
  {
    /* what build_nets normalises: the block's width; the large stem's w/4, w/2 */
    const int chans[3] = {c->width, c->width / 4, c->width / 2};
    const int n = c->arch == NSDE_MODEL_ARCH_LARGE ? 3 : 1;
    for (int i = 0; i < n; i++)
      if (chans[i] % gn_groups_for(c, chans[i]) != 0)
        return nsde__error(ctx, NSDE_ERR_INVALID,
                           "model config: groups is %d, GroupNorm needs a "
                           "divisor of %d channels (0: the paper's min(32, channels))",
                           c->groups, chans[i]);
  }
  return NSDE_OK;
}

static enum nsde_status build_nets(struct nsde_model *m)
{
  const struct nsde_model_config *c = &m->cfg;
  enum nsde_status st;
  uint64_t seed = c->init_seed * 3;

  st = nsde_net_new(m->ctx, c->in_channels, c->in_height, c->in_width, &m->stem);
  if (st != NSDE_OK)
    return st;
  if (c->arch == NSDE_MODEL_ARCH_CIFAR) {
    st = nsde_net_add_conv2d(m->stem, c->width, 3, 1, 0);
  } else {
    int w4 = c->width / 4, w2 = c->width / 2;
    if ((st = nsde_net_add_conv2d(m->stem, w4, 3, 1, 1)) == NSDE_OK &&
        (st = nsde_net_add_groupnorm(m->stem, gn_groups_for(c, w4), 1e-5)) == NSDE_OK &&
        (st = nsde_net_add_relu(m->stem)) == NSDE_OK &&
        (st = nsde_net_add_conv2d(m->stem, w2, 4, 2, 1)) == NSDE_OK &&
        (st = nsde_net_add_groupnorm(m->stem, gn_groups_for(c, w2), 1e-5)) == NSDE_OK &&
        (st = nsde_net_add_relu(m->stem)) == NSDE_OK)
      st = nsde_net_add_conv2d(m->stem, c->width, 4, 2, 1);
  }
  if (st == NSDE_OK)
    st = nsde_net_finalize(m->stem, c->max_batch, seed + 1);
  if (st == NSDE_OK)
    st = nsde_net_get_output_shape(m->stem, &m->sc, &m->sh, &m->sw);
  if (st == NSDE_OK)
    st = nsde_net_new_paper_drift(m->ctx, m->sc, m->sh, m->sw, gn_groups_for(c, m->sc),
                                  c->max_batch, seed + 2, &m->drift);
  if (st == NSDE_OK)
    st = nsde_net_new(m->ctx, m->sc, m->sh, m->sw, &m->head);
  if (st == NSDE_OK)
    st = nsde_net_add_groupnorm(m->head, gn_groups_for(c, m->sc), 1e-5);
  if (st == NSDE_OK)
    st = nsde_net_add_relu(m->head);
  if (st == NSDE_OK)
    st = nsde_net_add_avgpool(m->head);
  if (st == NSDE_OK)
    st = nsde_net_add_linear(m->head, c->classes);
  if (st == NSDE_OK)
    st = nsde_net_finalize(m->head, c->max_batch, seed + 3);
  return st;
}

/* The checkpoint interval: every step when the solver's workspace for it is
 * within 1.25x that of the fewest bytes (checkpoint_every 0), else the
 * fewest bytes. Every step, Euler-Maruyama's backward pass replays nothing
 * (its record is the step's input); the drift's activations, the memory
 * that matters, are recomputed in its vjp either way. The paper's 11 steps
 * at width 64: workspace 887 against 798 MB, peak 1.22 GB and 1.21-1.33x
 * store-all's time against 1.13 GB and 1.37-1.47x every 2 steps
 * (doc/performance.md, session 25); a fine grid keeps the fewest bytes'
 * sqrt(N) checkpoints. */
static int64_t ck_every(const struct nsde_sde *sde, struct nsde_solver_config sc,
                        const int64_t *shape)
{
  size_t fewest, every;
  sc.checkpoint_every = 0;
  if (nsde_solver_workspace_bytes(sde, &sc, 4, shape, &fewest) != NSDE_OK)
    return 0; /* nsde_solver_new says why */
  sc.checkpoint_every = 1;
  if (nsde_solver_workspace_bytes(sde, &sc, 4, shape, &every) != NSDE_OK)
    return 0;
  return (double)every <= 1.25 * (double)fewest ? 1 : 0;
}

struct nsde_solver *nsde__model_solver(struct nsde_model *m, int64_t batch, int noisy, int grad)
{
  struct nsde_solver_config sc;
  struct nsde_solver *s = NULL;
  int64_t shape[4] = {batch, m->sc, m->sh, m->sw};

  noisy = noisy && m->cfg.noise != NSDE_MODEL_NOISE_ODE;
  for (int i = 0; i < m->nsol; i++)
    if (m->sol[i].batch == batch && m->sol[i].noisy == noisy && m->sol[i].grad == grad)
      return m->sol[i].s;
  nsde_solver_config_init(&sc);
  sc.scheme = NSDE_SCHEME_EULER_MARUYAMA;
  sc.t1 = m->cfg.t1;
  sc.grid = NSDE_GRID_PAPER;
  sc.dt = m->cfg.dt;
  sc.grad = grad ? m->cfg.grad : NSDE_GRAD_NONE;
  if (sc.grad == NSDE_GRAD_CHECKPOINT)
    sc.checkpoint_every = ck_every(noisy ? m->sde_noisy : m->sde_ode, sc, shape);
  if (nsde_solver_new(noisy ? m->sde_noisy : m->sde_ode, &sc, 4, shape, &s) != NSDE_OK)
    return NULL;
  if (m->nsol == MAX_SOLVERS) { /* evict the oldest */
    nsde_solver_free(m->sol[0].s);
    memmove(m->sol, m->sol + 1, (MAX_SOLVERS - 1) * sizeof(m->sol[0]));
    m->nsol--;
  }
  m->sol[m->nsol].batch = batch;
  m->sol[m->nsol].noisy = noisy;
  m->sol[m->nsol].grad = grad;
  m->sol[m->nsol].s = s;
  m->nsol++;
  return s;
}

/* The parameter, gradient and activation buffers, bound to the nets. */
static enum nsde_status alloc_buffers(struct nsde_model *m)
{
  const struct nsde_model_config *cfg = &m->cfg;
  size_t sz;

  m->np_stem = nsde_net_num_params(m->stem);
  m->np_drift = nsde_net_num_params(m->drift);
  m->np_head = nsde_net_num_params(m->head);
  m->off_stem = 0;
  m->off_drift = m->np_stem;
  m->off_head = m->off_drift + m->np_drift;
  m->np = m->off_head + m->np_head + (cfg->learn_sigma ? 1 : 0);
  m->state_sz = (int64_t)m->sc * m->sh * m->sw;
  m->params = nsde__alloc((size_t)m->np * sizeof(float));
  m->grads = nsde__alloc((size_t)m->np * sizeof(float));
  sz = (size_t)cfg->max_batch * (size_t)m->state_sz * sizeof(float);
  m->h = nsde__alloc(sz);
  m->dh = nsde__alloc(sz);
  m->dh0 = nsde__alloc(sz);
  m->logits = nsde__alloc((size_t)cfg->max_batch * (size_t)cfg->classes * sizeof(float));
  m->dlogits = nsde__alloc((size_t)cfg->max_batch * (size_t)cfg->classes * sizeof(float));
  if (!m->params || !m->grads || !m->h || !m->dh || !m->dh0 || !m->logits || !m->dlogits) {
    return nsde__error(m->ctx, NSDE_ERR_NOMEM, "nsde_model_new: out of memory");
  }
  nsde__net_bind(m->stem, m->params + m->off_stem, m->grads + m->off_stem);
  nsde__net_bind(m->drift, m->params + m->off_drift, m->grads + m->off_drift);
  nsde__net_bind(m->head, m->params + m->off_head, m->grads + m->off_head);
  /* the state between the nets stays channels-last: no transposes per step */
  nsde__net_set_layout(m->stem, false, true);
  nsde__net_set_layout(m->drift, true, true);
  nsde__net_set_layout(m->head, true, false);
  if (cfg->learn_sigma) {
    m->params[m->np - 1] = (float)cfg->sigma;
    m->grads[m->np - 1] = 0;
  }
  return NSDE_OK;
}

/* The drift as a function, the noise, the ODE and SDE, and the solver of a
 * full batch (with the drift's tape when every state is stored). */
static enum nsde_status build_sdes(struct nsde_model *m)
{
  const struct nsde_model_config *cfg = &m->cfg;
  struct nsde_context *ctx = m->ctx;
  enum nsde_status st;

  if ((st = nsde_net_as_func(m->drift, &m->f)) != NSDE_OK)
    return st;
  switch (cfg->noise) {
  case NSDE_MODEL_NOISE_ADDITIVE:
    st = nsde_func_new_additive(ctx, NSDE_DTYPE_FLOAT32, cfg->sigma, &m->g);
    break;
  case NSDE_MODEL_NOISE_MULTIPLICATIVE:
    st = nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT32, cfg->sigma, &m->g);
    break;
  case NSDE_MODEL_NOISE_DROPOUT:
    st = nsde_func_new_dropout(ctx, NSDE_DTYPE_FLOAT32, cfg->sigma, &m->g);
    break;
  case NSDE_MODEL_NOISE_ODE: break;
  }
  if (st == NSDE_OK)
    st = nsde_sde_new(ctx, m->f, NULL, NSDE_NOISE_NONE, NSDE_CALCULUS_ITO, &m->sde_ode);
  if (st == NSDE_OK && m->g)
    st = nsde_sde_new(ctx, m->f, m->g,
                      cfg->noise == NSDE_MODEL_NOISE_ADDITIVE ? NSDE_NOISE_ADDITIVE
                                                              : NSDE_NOISE_DIAGONAL,
                      NSDE_CALCULUS_ITO, &m->sde_noisy);
  if (st == NSDE_OK && !nsde__model_solver(m, cfg->max_batch, m->g != NULL, 1))
    st = nsde_context_last_status(ctx) != NSDE_OK ? nsde_context_last_status(ctx) : NSDE_ERR_NOMEM;
  /* storing every state: keep every step's convolution outputs too, so the
   * backward pass recomputes no convolution (one drift eval per EM step) */
  if (st == NSDE_OK && cfg->grad == NSDE_GRAD_STORE_ALL)
    st = nsde_net_set_tape(
        m->drift, nsde_solver_num_steps(nsde__model_solver(m, cfg->max_batch, m->g != NULL, 1)));
  return st;
}

NSDE_API enum nsde_status nsde_model_new(struct nsde_context *ctx,
                                         const struct nsde_model_config *user,
                                         struct nsde_model **out)
{
  struct nsde_model_config c;
  const struct nsde_model_config *cfg = &c;
  struct nsde_model *m;
  enum nsde_status st;

  if (!out)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_model_new: output pointer is NULL");
  *out = NULL;
  if (!ctx || !user)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_model_new: NULL argument");
  if ((st = nsde__struct_in(ctx, "model config", user,
                            NSDE__SIZE_TO(struct nsde_model_config, init_seed), sizeof(c), &c)) !=
      NSDE_OK)
    return st;
  if ((st = nsde__model_check_config(ctx, cfg)) != NSDE_OK)
    return st;
  m = calloc(1, sizeof(*m));
  if (!m)
    return nsde__error(ctx, NSDE_ERR_NOMEM, "out of memory");
  m->ctx = ctx;
  m->cfg = *cfg;
  if ((st = build_nets(m)) != NSDE_OK)
    goto fail;
  if ((st = alloc_buffers(m)) != NSDE_OK || (st = build_sdes(m)) != NSDE_OK)
    goto fail;
  *out = m;
  return NSDE_OK;
fail:
  nsde_model_free(m);
  return st;
}

NSDE_API void nsde_model_free(struct nsde_model *m)
{
  if (!m)
    return;
  for (int i = 0; i < m->nsol; i++)
    nsde_solver_free(m->sol[i].s);
  nsde_sde_free(m->sde_noisy);
  nsde_sde_free(m->sde_ode);
  nsde_func_free(m->g);
  nsde_func_free(m->f);
  nsde_net_free(m->stem);
  nsde_net_free(m->drift);
  nsde_net_free(m->head);
  nsde__free(m->params);
  nsde__free(m->grads);
  nsde__free(m->h);
  nsde__free(m->dh);
  nsde__free(m->dh0);
  nsde__free(m->logits);
  nsde__free(m->dlogits);
  free(m);
}

NSDE_API enum nsde_status nsde_model_get_config(const struct nsde_model *m,
                                                struct nsde_model_config *cfg)
{
  /* The layout of 1.0: what a caller that leaves the size field unset gets,
   * so a program built against 1.0 keeps working after the struct grows; one
   * that sets it gets that many bytes. */
  const size_t v10 = NSDE__SIZE_TO(struct nsde_model_config, init_seed);
  size_t size;

  if (!m || !cfg)
    return NSDE_ERR_NULL;
  memcpy(&size, cfg, sizeof(size));
  if (size < v10 || size > NSDE__STRUCT_MAX)
    size = v10;
  memcpy(cfg, &m->cfg, size < sizeof(m->cfg) ? size : sizeof(m->cfg));
  cfg->size = size;
  return NSDE_OK;
}

NSDE_API int64_t nsde_model_num_params(const struct nsde_model *m)
{
  return m ? m->np : -1;
}
NSDE_API float *nsde_model_params(struct nsde_model *m)
{
  return m ? m->params : NULL;
}
NSDE_API float *nsde_model_grads(struct nsde_model *m)
{
  return m ? m->grads : NULL;
}
NSDE_API const float *nsde_model_params_const(const struct nsde_model *m)
{
  return m ? m->params : NULL;
}
NSDE_API const float *nsde_model_grads_const(const struct nsde_model *m)
{
  return m ? m->grads : NULL;
}

void nsde__model_sync_params(struct nsde_model *m)
{
  if (m->cfg.learn_sigma && m->g)
    *(float *)nsde_func_params(m->g) = m->params[m->np - 1];
}

NSDE_API enum nsde_status nsde_model_params_changed(struct nsde_model *m)
{
  if (!m)
    return NSDE_ERR_NULL;
  nsde__model_sync_params(m);
  return NSDE_OK;
}
