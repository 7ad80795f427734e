/*
 * The paper's classifiers: stem network -> SDE block (network drift, built-in
 * diffusion, Euler-Maruyama on the paper's grid) -> head; training passes,
 * test-time noise ensembles, SGD, and the model file format.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "func-private.h"
#include "nn-private.h"
#include "nsde-private.h"

#define MAX_SOLVERS 6

struct msolver {
  int64_t batch;
  int noisy, grad;
  struct nsde_solver *s;
};

struct nsde_model {
  struct nsde_context *ctx;
  struct nsde_model_config cfg;
  struct nsde_net *stem, *drift, *head;
  struct nsde_func *f, *g;
  struct nsde_sde *sde_noisy, *sde_ode;
  struct msolver sol[MAX_SOLVERS];
  int nsol;
  int64_t np, off_stem, off_drift, off_head, np_stem, np_drift, np_head;
  float *params, *grads;
  int sc, sh, sw;
  int64_t state_sz;
  float *h, *dh, *dh0, *logits, *dlogits;
};

NSDE_API void nsde_model_config_init(struct nsde_model_config *cfg)
{
  if (!cfg)
    return;
  memset(cfg, 0, sizeof(*cfg));
  cfg->size = sizeof(*cfg);
  cfg->arch = NSDE_ARCH_CIFAR;
  cfg->in_channels = 3;
  cfg->in_height = 32;
  cfg->in_width = 32;
  cfg->width = 64;
  cfg->classes = 10;
  cfg->noise = NSDE_MODEL_MULTIPLICATIVE;
  cfg->sigma = 1.0;
  cfg->t1 = 1.0;
  cfg->dt = 0.1;
  cfg->grad = NSDE_GRAD_CHECKPOINT;
  cfg->max_batch = 128;
  cfg->init_seed = 1;
}

static enum nsde_status check_config(struct nsde_context *ctx, const struct nsde_model_config *c)
{
  if ((c->arch != NSDE_ARCH_CIFAR && c->arch != NSDE_ARCH_LARGE) || c->in_channels < 1 ||
      c->in_channels > 64 || c->in_height < 4 || c->in_width < 4 || c->in_height > 4096 ||
      c->in_width > 4096 || c->width < 1 || c->width > 4096 || c->classes < 2 ||
      c->classes > 100000 || (int)c->noise < NSDE_MODEL_ODE || (int)c->noise > NSDE_MODEL_DROPOUT ||
      !isfinite(c->sigma) || c->sigma < 0 || !(c->t1 > 0) || !isfinite(c->t1) || !(c->dt > 0) ||
      c->t1 / c->dt > 100000 || c->max_batch < 1 || c->max_batch > 65536 ||
      (c->learn_sigma != 0 && c->learn_sigma != 1) || (int)c->grad < NSDE_GRAD_NONE ||
      (int)c->grad > NSDE_GRAD_ADJOINT ||
      (c->arch == NSDE_ARCH_LARGE && c->width % 4 != 0) || c->groups < 0 || c->groups > 4096)
    return nsde__error(ctx, NSDE_ERR_INVALID,
                       "model config: out of range (arch %d, input %dx%dx%d, width %d, classes "
                       "%d, noise %d, sigma %g, T %g, dt %g, max_batch %lld)", (int)c->arch,
                       c->in_channels, c->in_height, c->in_width, c->width, c->classes,
                       (int)c->noise, c->sigma, c->t1, c->dt, (long long)c->max_batch);
  return NSDE_OK;
}

/* The paper's min(32, C) unless the config asks for fewer groups. */
static int gn_groups_for(const struct nsde_model_config *cfg, int c)
{
  int g = cfg->groups > 0 ? cfg->groups : 32;
  return c < g ? c : g;
}

static enum nsde_status build_nets(struct nsde_model *m)
{
  const struct nsde_model_config *c = &m->cfg;
  enum nsde_status st;
  uint64_t seed = c->init_seed * 3;

  st = nsde_net_new(m->ctx, c->in_channels, c->in_height, c->in_width, &m->stem);
  if (st != NSDE_OK)
    return st;
  if (c->arch == NSDE_ARCH_CIFAR) {
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
    st = nsde_net_output_shape(m->stem, &m->sc, &m->sh, &m->sw);
  if (st == NSDE_OK)
    st = nsde_net_new_paper_drift(m->ctx, m->sc, m->sh, m->sw, gn_groups_for(c, m->sc), c->max_batch,
                                  seed + 2, &m->drift);
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

static struct nsde_solver *get_solver(struct nsde_model *m, int64_t batch, int noisy, int grad)
{
  struct nsde_solver_config sc;
  struct nsde_solver *s = NULL;
  int64_t shape[4] = {batch, m->sc, m->sh, m->sw};

  noisy = noisy && m->cfg.noise != NSDE_MODEL_ODE;
  for (int i = 0; i < m->nsol; i++)
    if (m->sol[i].batch == batch && m->sol[i].noisy == noisy && m->sol[i].grad == grad)
      return m->sol[i].s;
  nsde_solver_config_init(&sc);
  sc.scheme = NSDE_SCHEME_EULER_MARUYAMA;
  sc.t1 = m->cfg.t1;
  sc.grid = NSDE_GRID_PAPER;
  sc.dt = m->cfg.dt;
  sc.grad = grad ? m->cfg.grad : NSDE_GRAD_NONE;
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

NSDE_API enum nsde_status nsde_model_new(struct nsde_context *ctx,
                                         const struct nsde_model_config *user,
                                         struct nsde_model **out)
{
  struct nsde_model_config c;
  const struct nsde_model_config *cfg = &c;
  struct nsde_model *m;
  enum nsde_status st;
  size_t sz;

  if (!out)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_model_new: output pointer is NULL");
  *out = NULL;
  if (!ctx || !user)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_model_new: NULL argument");
  if ((st = nsde__struct_in(ctx, "model config", user,
                            NSDE__SIZE_TO(struct nsde_model_config, init_seed), sizeof(c), &c)) !=
      NSDE_OK)
    return st;
  if ((st = check_config(ctx, cfg)) != NSDE_OK)
    return st;
  m = calloc(1, sizeof(*m));
  if (!m)
    return nsde__error(ctx, NSDE_ERR_NOMEM, "out of memory");
  m->ctx = ctx;
  m->cfg = *cfg;
  if ((st = build_nets(m)) != NSDE_OK)
    goto fail;
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
    st = nsde__error(ctx, NSDE_ERR_NOMEM, "nsde_model_new: out of memory");
    goto fail;
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
  if ((st = nsde_net_as_func(m->drift, &m->f)) != NSDE_OK)
    goto fail;
  switch (cfg->noise) {
  case NSDE_MODEL_ADDITIVE: st = nsde_diffusion_new_additive(ctx, NSDE_FLOAT32, cfg->sigma, &m->g); break;
  case NSDE_MODEL_MULTIPLICATIVE: st = nsde_diffusion_new_multiplicative(ctx, NSDE_FLOAT32, cfg->sigma, &m->g); break;
  case NSDE_MODEL_DROPOUT: st = nsde_diffusion_new_dropout(ctx, NSDE_FLOAT32, cfg->sigma, &m->g); break;
  case NSDE_MODEL_ODE: break;
  }
  if (st == NSDE_OK)
    st = nsde_sde_new(ctx, m->f, NULL, NSDE_NOISE_NONE, NSDE_ITO, &m->sde_ode);
  if (st == NSDE_OK && m->g)
    st = nsde_sde_new(ctx, m->f, m->g,
                      cfg->noise == NSDE_MODEL_ADDITIVE ? NSDE_NOISE_ADDITIVE : NSDE_NOISE_DIAGONAL,
                      NSDE_ITO, &m->sde_noisy);
  if (st == NSDE_OK && !get_solver(m, cfg->max_batch, m->g != NULL, 1))
    st = nsde_context_last_status(ctx) != NSDE_OK ? nsde_context_last_status(ctx) : NSDE_ERR_NOMEM;
  /* storing every state: keep every step's convolution outputs too, so the
   * backward pass recomputes no convolution (one drift eval per EM step) */
  if (st == NSDE_OK && cfg->grad == NSDE_GRAD_STORE_ALL)
    st = nsde_net_set_tape(m->drift, nsde_solver_num_steps(get_solver(m, cfg->max_batch,
                                                                       m->g != NULL, 1)));
  if (st != NSDE_OK)
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
  if (!m || !cfg)
    return NSDE_ERR_NULL;
  *cfg = m->cfg;
  return NSDE_OK;
}

NSDE_API int64_t nsde_model_num_params(const struct nsde_model *m) { return m ? m->np : -1; }
NSDE_API float *nsde_model_params(const struct nsde_model *m) { return m ? m->params : NULL; }
NSDE_API float *nsde_model_grads(const struct nsde_model *m) { return m ? m->grads : NULL; }

NSDE_API enum nsde_status nsde_model_params_changed(struct nsde_model *m)
{
  if (!m)
    return NSDE_ERR_NULL;
  if (m->cfg.learn_sigma && m->g)
    *(float *)nsde_func_params(m->g) = m->params[m->np - 1];
  return NSDE_OK;
}

static enum nsde_status check_images(struct nsde_model *m, const struct nsde_tensor *x,
                                     const char *what)
{
  if (!x)
    return nsde__error(m->ctx, NSDE_ERR_NULL, "%s: images tensor is NULL", what);
  if (x->dtype != NSDE_FLOAT32)
    return nsde__error(m->ctx, NSDE_ERR_DTYPE, "%s: images must be float32", what);
  if (x->rank != 4 || !x->contiguous || x->shape[1] != m->cfg.in_channels ||
      x->shape[2] != m->cfg.in_height || x->shape[3] != m->cfg.in_width ||
      x->shape[0] > m->cfg.max_batch)
    return nsde__error(m->ctx, NSDE_ERR_SHAPE,
                       "%s: images must be contiguous (B, %d, %d, %d) with B <= %lld", what,
                       m->cfg.in_channels, m->cfg.in_height, m->cfg.in_width,
                       (long long)m->cfg.max_batch);
  return NSDE_OK;
}

/* stem -> SDE block -> head; logits left in m->logits. */
static enum nsde_status forward(struct nsde_model *m, const struct nsde_tensor *images, int noisy,
                                uint64_t seed, int grad, struct nsde_solver **used)
{
  const int64_t B = images->shape[0];
  const float *h0, *lg;
  struct nsde_solver *s;
  struct nsde_tensor *state = NULL;
  int64_t shape[4] = {B, m->sc, m->sh, m->sw};
  enum nsde_status st;

  nsde_model_params_changed(m);
  s = get_solver(m, B, noisy, grad);
  if (!s)
    return nsde_context_last_status(m->ctx) != NSDE_OK ? nsde_context_last_status(m->ctx)
                                                        : NSDE_ERR_NOMEM;
  h0 = nsde__net_forward_raw(m->stem, B, images->data, 0.0f);
  memcpy(m->h, h0, (size_t)(B * m->state_sz) * sizeof(float));
  if ((st = nsde_tensor_wrap(m->ctx, NSDE_FLOAT32, 4, shape, NULL, m->h, &state)) != NSDE_OK)
    return st;
  nsde_solver_set_seed(s, seed);
  st = nsde_solve(s, state, NULL);
  nsde_tensor_free(state);
  if (st != NSDE_OK)
    return st;
  lg = nsde__net_forward_raw(m->head, B, m->h, 0.0f);
  memcpy(m->logits, lg, (size_t)(B * m->cfg.classes) * sizeof(float));
  *used = s;
  return NSDE_OK;
}

static enum nsde_status check_out(struct nsde_model *m, const struct nsde_tensor *images,
                                  const struct nsde_tensor *out, const char *what)
{
  enum nsde_status st = check_images(m, images, what);
  if (st != NSDE_OK)
    return st;
  if (!out)
    return nsde__error(m->ctx, NSDE_ERR_NULL, "%s: output tensor is NULL", what);
  if (out->dtype != NSDE_FLOAT32 || !out->contiguous ||
      out->numel != images->shape[0] * m->cfg.classes)
    return nsde__error(m->ctx, NSDE_ERR_SHAPE, "%s: output must be contiguous float32 (B, %d)",
                       what, m->cfg.classes);
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_model_state_shape(const struct nsde_model *m, int *channels,
                                                 int *height, int *width)
{
  if (!m || !channels || !height || !width)
    return NSDE_ERR_NULL;
  *channels = m->sc;
  *height = m->sh;
  *width = m->sw;
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_model_trajectory(struct nsde_model *m,
                                                const struct nsde_tensor *images, int noisy,
                                                uint64_t seed, int64_t n_steps,
                                                struct nsde_tensor *states)
{
  struct nsde_solver_config sc;
  struct nsde_solver *s = NULL;
  struct nsde_tensor *state = NULL, *saved = NULL;
  enum nsde_status st;
  double *times;
  float *buf = NULL;
  int64_t B, shape[4];
  const float *h0;

  if (!m)
    return NSDE_ERR_NULL;
  if ((st = check_images(m, images, "nsde_model_trajectory")) != NSDE_OK)
    return st;
  if (n_steps < 1 || n_steps > 100000)
    return nsde__error(m->ctx, NSDE_ERR_INVALID, "nsde_model_trajectory: bad step count %lld",
                       (long long)n_steps);
  B = images->shape[0];
  if (!states)
    return nsde__error(m->ctx, NSDE_ERR_NULL, "nsde_model_trajectory: states is NULL");
  if (states->dtype != NSDE_FLOAT32 || !states->contiguous ||
      states->numel != (n_steps + 1) * B * m->state_sz)
    return nsde__error(m->ctx, NSDE_ERR_SHAPE,
                       "nsde_model_trajectory: states must be contiguous float32 with %lld "
                       "elements", (long long)((n_steps + 1) * B * m->state_sz));
  times = malloc(sizeof(double) * (size_t)(n_steps + 1));
  buf = nsde__alloc(sizeof(float) * (size_t)((n_steps + 1) * B * m->state_sz));
  if (!times || !buf) {
    free(times);
    nsde__free(buf);
    return nsde__error(m->ctx, NSDE_ERR_NOMEM, "nsde_model_trajectory: out of memory");
  }
  for (int64_t k = 0; k <= n_steps; k++)
    times[k] = m->cfg.t1 * (double)k / (double)n_steps;
  nsde_solver_config_init(&sc);
  sc.scheme = NSDE_SCHEME_EULER_MARUYAMA;
  sc.t1 = m->cfg.t1;
  sc.grid = NSDE_GRID_STEPS;
  sc.n_steps = n_steps;
  sc.save_at = times;
  sc.n_save = n_steps + 1;
  sc.seed = seed;
  shape[0] = B;
  shape[1] = m->sc;
  shape[2] = m->sh;
  shape[3] = m->sw;
  nsde_model_params_changed(m);
  st = nsde_solver_new(noisy && m->g ? m->sde_noisy : m->sde_ode, &sc, 4, shape, &s);
  if (st == NSDE_OK) {
    h0 = nsde__net_forward_raw(m->stem, B, images->data, 0.0f);
    memcpy(m->h, h0, (size_t)(B * m->state_sz) * sizeof(float));
    st = nsde_tensor_wrap(m->ctx, NSDE_FLOAT32, 4, shape, NULL, m->h, &state);
  }
  if (st == NSDE_OK) {
    int64_t sshape[4] = {(n_steps + 1) * B, m->sc, m->sh, m->sw};
    st = nsde_tensor_wrap(m->ctx, NSDE_FLOAT32, 4, sshape, NULL, buf, &saved);
  }
  if (st == NSDE_OK)
    st = nsde_solve(s, state, saved);
  if (st == NSDE_OK) /* the state is channels-last inside the model */
    for (int64_t i = 0; i < (n_steps + 1) * B; i++)
      nsde__to_nchw(buf + i * m->state_sz, (float *)states->data + i * m->state_sz, m->sc,
                    (int64_t)m->sh * m->sw);
  nsde_tensor_free(state);
  nsde_tensor_free(saved);
  nsde_solver_free(s);
  nsde__free(buf);
  free(times);
  return st;
}

NSDE_API enum nsde_status nsde_model_forward(struct nsde_model *m,
                                             const struct nsde_tensor *images, int noisy,
                                             uint64_t seed, struct nsde_tensor *logits)
{
  struct nsde_solver *s;
  enum nsde_status st;

  if (!m)
    return NSDE_ERR_NULL;
  if ((st = check_out(m, images, logits, "nsde_model_forward")) != NSDE_OK)
    return st;
  if ((st = forward(m, images, noisy, seed, 0, &s)) != NSDE_OK)
    return st;
  memcpy(logits->data, m->logits, (size_t)logits->numel * sizeof(float));
  return NSDE_OK;
}

/* softmax of row z (n values) into p, in double */
static void softmax(const float *z, int n, double *p)
{
  double mx = z[0], s = 0;
  for (int k = 1; k < n; k++)
    mx = z[k] > mx ? z[k] : mx;
  for (int k = 0; k < n; k++) {
    p[k] = exp((double)z[k] - mx);
    s += p[k];
  }
  for (int k = 0; k < n; k++)
    p[k] /= s;
}

NSDE_API enum nsde_status nsde_model_predict(struct nsde_model *m,
                                             const struct nsde_tensor *images, int passes,
                                             uint64_t seed, struct nsde_tensor *probs)
{
  const int C = m ? m->cfg.classes : 0;
  double *p;
  float *out;
  struct nsde_solver *s;
  enum nsde_status st;
  int64_t B;
  int runs;

  if (!m)
    return NSDE_ERR_NULL;
  if ((st = check_out(m, images, probs, "nsde_model_predict")) != NSDE_OK)
    return st;
  if (passes < 0 || passes > 100000)
    return nsde__error(m->ctx, NSDE_ERR_INVALID, "nsde_model_predict: passes %d out of range",
                       passes);
  B = images->shape[0];
  out = probs->data;
  memset(out, 0, (size_t)(B * C) * sizeof(float));
  p = malloc((size_t)C * sizeof(double));
  if (!p)
    return nsde__error(m->ctx, NSDE_ERR_NOMEM, "out of memory");
  runs = passes == 0 || m->cfg.noise == NSDE_MODEL_ODE ? 1 : passes; /* ODE passes are all equal */
  for (int r = 0; r < runs; r++) {
    if ((st = forward(m, images, passes > 0, seed + (uint64_t)r, 0, &s)) != NSDE_OK) {
      free(p);
      return st;
    }
    for (int64_t b = 0; b < B; b++) {
      softmax(m->logits + b * C, C, p);
      for (int k = 0; k < C; k++)
        out[b * C + k] += (float)(p[k] / runs);
    }
  }
  free(p);
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_model_loss_grad(struct nsde_model *m,
                                               const struct nsde_tensor *images,
                                               const int32_t *labels, int noisy, uint64_t seed,
                                               struct nsde_tensor *grad_images, double *loss,
                                               int64_t *correct)
{
  return nsde_model_loss_grad_ex(m, images, labels, noisy, seed, NSDE_LOSS_CROSS_ENTROPY, 0.0,
                                 grad_images, loss, correct, NULL);
}

NSDE_API enum nsde_status nsde_model_loss_grad_ex(struct nsde_model *m,
                                                  const struct nsde_tensor *images,
                                                  const int32_t *labels, int noisy,
                                                  uint64_t seed, enum nsde_model_loss kind,
                                                  double kappa, struct nsde_tensor *grad_images,
                                                  double *loss, int64_t *correct,
                                                  double *per_image)
{
  const int C = m ? m->cfg.classes : 0;
  struct nsde_tensor *tdh = NULL, *tdh0 = NULL;
  struct nsde_solver *s;
  enum nsde_status st;
  double total = 0, *p;
  int64_t B, hits = 0;
  float sigma_grad = 0;

  if (!m)
    return NSDE_ERR_NULL;
  if ((st = check_images(m, images, "nsde_model_loss_grad")) != NSDE_OK)
    return st;
  if (!labels)
    return nsde__error(m->ctx, NSDE_ERR_NULL, "nsde_model_loss_grad: labels is NULL");
  B = images->shape[0];
  for (int64_t b = 0; b < B; b++)
    if (labels[b] < 0 || labels[b] >= C)
      return nsde__error(m->ctx, NSDE_ERR_INVALID,
                         "nsde_model_loss_grad: label %d of image %lld outside 0..%d",
                         (int)labels[b], (long long)b, C - 1);
  if (grad_images && (grad_images->dtype != NSDE_FLOAT32 || !grad_images->contiguous ||
                      grad_images->numel != images->numel))
    return nsde__error(m->ctx, NSDE_ERR_SHAPE, "nsde_model_loss_grad: grad_images must match images");
  if ((kind != NSDE_LOSS_CROSS_ENTROPY && kind != NSDE_LOSS_CW_MARGIN) || !(kappa >= 0) ||
      !isfinite(kappa))
    return nsde__error(m->ctx, NSDE_ERR_INVALID,
                       "nsde_model_loss_grad_ex: unknown loss %d or bad kappa %g", (int)kind, kappa);
  if ((st = forward(m, images, noisy, seed, 1, &s)) != NSDE_OK)
    return st;
  p = malloc((size_t)C * sizeof(double));
  if (!p)
    return nsde__error(m->ctx, NSDE_ERR_NOMEM, "out of memory");
  for (int64_t b = 0; b < B; b++) {
    const float *z = m->logits + b * C;
    float *dz = m->dlogits + b * C;
    int best = 0, other = -1;
    double li;
    for (int k = 0; k < C; k++) {
      if (z[k] > z[best])
        best = k;
      if (k != labels[b] && (other < 0 || z[k] > z[other]))
        other = k;
    }
    hits += best == labels[b];
    if (kind == NSDE_LOSS_CROSS_ENTROPY) {
      softmax(z, C, p);
      li = -log(fmax(p[labels[b]], 1e-300));
      for (int k = 0; k < C; k++)
        dz[k] = (float)((p[k] - (k == labels[b] ? 1.0 : 0.0)) / (double)B);
    } else { /* Carlini-Wagner: max(z_y - max_{j != y} z_j, -kappa) */
      double margin = other < 0 ? 0.0 : (double)z[labels[b]] - z[other];
      li = fmax(margin, -kappa);
      for (int k = 0; k < C; k++)
        dz[k] = 0.0f;
      if (other >= 0 && margin > -kappa) {
        dz[labels[b]] = (float)(1.0 / (double)B);
        dz[other] = (float)(-1.0 / (double)B);
      }
    }
    total += li;
    if (per_image)
      per_image[b] = li;
  }
  free(p);
  memset(m->grads, 0, (size_t)m->np * sizeof(float));
  /* head (its activations are those of this forward pass) */
  nsde__net_backward_raw(m->head, B, m->h, m->dlogits, m->dh, m->grads + m->off_head, 0.0f);
  {
    int64_t shape[4] = {B, m->sc, m->sh, m->sw};
    if ((st = nsde_tensor_wrap(m->ctx, NSDE_FLOAT32, 4, shape, NULL, m->dh, &tdh)) == NSDE_OK)
      st = nsde_tensor_wrap(m->ctx, NSDE_FLOAT32, 4, shape, NULL, m->dh0, &tdh0);
    if (st == NSDE_OK)
      st = nsde_backward(s, tdh, NULL, tdh0, m->grads + m->off_drift,
                         noisy && m->g ? &sigma_grad : NULL);
    nsde_tensor_free(tdh);
    nsde_tensor_free(tdh0);
    if (st != NSDE_OK)
      return st;
  }
  /* the stem's activations are still those of this pass: the SDE block and
   * head use their own networks */
  nsde__net_backward_raw(m->stem, B, images->data, m->dh0, grad_images ? grad_images->data : NULL,
                         m->grads + m->off_stem, 0.0f);
  if (m->cfg.learn_sigma)
    m->grads[m->np - 1] = sigma_grad;
  if (loss)
    *loss = total / (double)B;
  if (correct)
    *correct = hits;
  return NSDE_OK;
}

/* ---- SGD ------------------------------------------------------------------------ */

struct nsde_sgd {
  struct nsde_context *ctx;
  int64_t n;
  double momentum, wd;
  int nesterov;
  float *v;
};

NSDE_API enum nsde_status nsde_sgd_new(struct nsde_context *ctx, int64_t n_params,
                                       double momentum, double weight_decay, int nesterov,
                                       struct nsde_sgd **out)
{
  struct nsde_sgd *o;

  if (!out)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_sgd_new: output pointer is NULL");
  *out = NULL;
  if (!ctx)
    return NSDE_ERR_NULL;
  if (n_params < 1 || n_params > ((int64_t)1 << 40) || !(momentum >= 0 && momentum < 1) ||
      !(weight_decay >= 0) || !isfinite(weight_decay) || (nesterov && momentum == 0))
    return nsde__error(ctx, NSDE_ERR_INVALID,
                       "nsde_sgd_new: bad n_params %lld, momentum %g or weight decay %g",
                       (long long)n_params, momentum, weight_decay);
  o = calloc(1, sizeof(*o));
  if (o)
    o->v = nsde__alloc((size_t)n_params * sizeof(float));
  if (!o || !o->v) {
    free(o);
    return nsde__error(ctx, NSDE_ERR_NOMEM, "out of memory");
  }
  memset(o->v, 0, (size_t)n_params * sizeof(float));
  o->ctx = ctx;
  o->n = n_params;
  o->momentum = momentum;
  o->wd = weight_decay;
  o->nesterov = nesterov;
  *out = o;
  return NSDE_OK;
}

NSDE_API void nsde_sgd_free(struct nsde_sgd *opt)
{
  if (!opt)
    return;
  nsde__free(opt->v);
  free(opt);
}

NSDE_API enum nsde_status nsde_sgd_step(struct nsde_sgd *opt, float *params, const float *grads,
                                        double lr)
{
  const float mu = opt ? (float)opt->momentum : 0, wd = opt ? (float)opt->wd : 0;
  float *v;
  int64_t n;

  if (!opt || !params || !grads)
    return NSDE_ERR_NULL;
  if (!(lr >= 0) || !isfinite(lr))
    return nsde__error(opt->ctx, NSDE_ERR_INVALID, "nsde_sgd_step: bad learning rate %g", lr);
  v = opt->v;
  n = opt->n;
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(grads[i]))
      return nsde__error(opt->ctx, NSDE_ERR_NONFINITE,
                         "nsde_sgd_step: gradient %lld is not finite; parameters unchanged",
                         (long long)i);
  for (int64_t i = 0; i < n; i++) {
    float g = grads[i] + wd * params[i];
    v[i] = mu * v[i] + g;
    params[i] -= (float)lr * (opt->nesterov ? g + mu * v[i] : v[i]);
  }
  return NSDE_OK;
}

NSDE_API float *nsde_sgd_velocity(struct nsde_sgd *opt)
{
  return opt ? opt->v : NULL;
}

NSDE_API enum nsde_status nsde_sgd_reset(struct nsde_sgd *opt)
{
  if (!opt)
    return NSDE_ERR_NULL;
  memset(opt->v, 0, (size_t)opt->n * sizeof(float));
  return NSDE_OK;
}

NSDE_API double nsde_lr_staged(double base_lr, const int *stage_epochs, int n_stages, int epoch)
{
  int end = 0;
  double lr = base_lr;

  if (!stage_epochs || n_stages < 1)
    return base_lr;
  for (int k = 0; k < n_stages; k++) {
    end += stage_epochs[k];
    if (epoch < end || k == n_stages - 1)
      return lr;
    lr /= 10.0;
  }
  return lr;
}

/* ---- model files (doc/model.md) ------------------------------------------------ */

#define MAGIC "NSDEMODL"
#define FILE_VERSION 2u /* version 1: the same layout, a non-standard FNV offset basis */
#define HEADER_BYTES 128

static void put_u32(unsigned char *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

static uint64_t get_u64(const unsigned char *p)
{
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

static void put_f64(unsigned char *p, double d)
{
  uint64_t v;
  memcpy(&v, &d, 8);
  put_u64(p, v);
}

static double get_f64(const unsigned char *p)
{
  uint64_t v = get_u64(p);
  double d;
  memcpy(&d, &v, 8);
  return d;
}

#define FNV_BASIS 14695981039346656037ULL   /* FNV-1a 64's offset basis (version 2) */
#define FNV_BASIS_V1 1469598103934665603ULL /* what version 1 used: a digit short */

static uint64_t fnv1a(const unsigned char *p, size_t n, uint64_t h)
{
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

NSDE_API enum nsde_status nsde_model_save(const struct nsde_model *m, const char *path)
{
  const struct nsde_model_config *c;
  size_t total;
  unsigned char *buf;
  enum nsde_status st;

  if (!m || !path)
    return nsde__error(m ? m->ctx : NULL, NSDE_ERR_NULL, "nsde_model_save: NULL argument");
  c = &m->cfg;
  total = HEADER_BYTES + (size_t)m->np * 4 + 8;
  buf = calloc(1, total);
  if (!buf)
    return nsde__error(m->ctx, NSDE_ERR_NOMEM, "nsde_model_save: out of memory");
  memcpy(buf, MAGIC, 8);
  put_u32(buf + 8, FILE_VERSION);
  put_u32(buf + 12, HEADER_BYTES);
  put_u32(buf + 16, (uint32_t)c->arch);
  put_u32(buf + 20, (uint32_t)c->in_channels);
  put_u32(buf + 24, (uint32_t)c->in_height);
  put_u32(buf + 28, (uint32_t)c->in_width);
  put_u32(buf + 32, (uint32_t)c->width);
  put_u32(buf + 36, (uint32_t)c->classes);
  put_u32(buf + 40, (uint32_t)c->noise);
  put_u32(buf + 44, (uint32_t)c->learn_sigma);
  put_f64(buf + 48, c->sigma);
  put_f64(buf + 56, c->t1);
  put_f64(buf + 64, c->dt);
  put_u64(buf + 72, (uint64_t)m->np);
  put_u32(buf + 80, (uint32_t)c->grad);
  put_u32(buf + 84, (uint32_t)c->groups);
  for (int64_t i = 0; i < m->np; i++) {
    uint32_t u;
    memcpy(&u, &m->params[i], 4);
    put_u32(buf + HEADER_BYTES + 4 * i, u);
  }
  put_u64(buf + total - 8, fnv1a(buf, total - 8, FNV_BASIS));

  st = nsde_file_write_atomic(m->ctx, path, buf, total);
  free(buf);
  return st;
}

/* The number of parameters nsde_model_new() gives a valid configuration,
 * without building it: the loader compares it with the file's count before
 * allocating activations for whatever image size a header claims. */
static int64_t config_params(const struct nsde_model_config *c)
{
  const int64_t w = c->width, cin = c->in_channels;
  int64_t n;
  if (c->arch == NSDE_ARCH_CIFAR) {
    n = w * cin * 9 + w;
  } else {
    const int64_t w4 = w / 4, w2 = w / 2;
    n = w4 * cin * 9 + w4 + 2 * w4 + w2 * w4 * 16 + w2 + 2 * w2 + w * w2 * 16 + w;
  }
  n += 3 * (2 * w + w * (w + 1) * 9 + w) + 2 * w; /* the drift: 3 x (GN, ConcatConv), GN */
  n += 2 * w + w * c->classes + c->classes;         /* the head: GN, linear */
  return n + (c->learn_sigma ? 1 : 0);
}

NSDE_API enum nsde_status nsde_model_load(struct nsde_context *ctx, const char *path,
                                          int64_t max_batch, struct nsde_model **out)
{
  struct nsde_model_config c;
  struct nsde_model *m = NULL;
  enum nsde_status st;
  unsigned char *buf = NULL;
  uint64_t np;
  uint32_t version;
  size_t total;
  struct stat sb;
  FILE *fp;

  if (!out)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_model_load: output pointer is NULL");
  *out = NULL;
  if (!ctx || !path)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_model_load: NULL argument");
  fp = fopen(path, "rb");
  if (!fp)
    return nsde__error(ctx, NSDE_ERR_IO, "cannot open model file %s: %s", path, strerror(errno));
  if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    fclose(fp);
    return nsde__error(ctx, NSDE_ERR_IO, "model file %s is not a regular file", path);
  }
  if (sb.st_size < HEADER_BYTES + 8 || sb.st_size > ((off_t)1 << 34)) {
    fclose(fp);
    return nsde__error(ctx, NSDE_ERR_FORMAT, "model file %s: size %lld is impossible (truncated?)",
                       path, (long long)sb.st_size);
  }
  total = (size_t)sb.st_size;
  buf = malloc(total);
  if (!buf) {
    fclose(fp);
    return nsde__error(ctx, NSDE_ERR_NOMEM, "out of memory reading %s", path);
  }
  if (fread(buf, 1, total, fp) != total) {
    fclose(fp);
    free(buf);
    return nsde__error(ctx, NSDE_ERR_IO, "model file %s: read failed", path);
  }
  fclose(fp);
  st = NSDE_ERR_FORMAT;
  if (memcmp(buf, MAGIC, 8) != 0) {
    nsde__error(ctx, st, "%s is not a libnsde model file (bad magic)", path);
    goto fail;
  }
  version = get_u32(buf + 8);
  if ((version != 1 && version != FILE_VERSION) || get_u32(buf + 12) != HEADER_BYTES) {
    nsde__error(ctx, st, "model file %s has format version %u; this libnsde reads versions 1 "
                "to %u", path, version, FILE_VERSION);
    goto fail;
  }
  np = get_u64(buf + 72);
  if (np == 0 || np > ((uint64_t)1 << 31) || total != HEADER_BYTES + np * 4 + 8) {
    nsde__error(ctx, st, "model file %s: %zu bytes do not hold %llu parameters (truncated or "
                "extended)", path, total, (unsigned long long)np);
    goto fail;
  }
  if (get_u64(buf + total - 8) != fnv1a(buf, total - 8, version == 1 ? FNV_BASIS_V1 : FNV_BASIS)) {
    nsde__error(ctx, st, "model file %s: checksum mismatch (the file is corrupted)", path);
    goto fail;
  }
  for (int i = 88; i < HEADER_BYTES; i++)
    if (buf[i] != 0) {
      nsde__error(ctx, st, "model file %s: reserved header byte %d is %u, must be 0 (a file "
                  "from a newer libnsde?)", path, i, buf[i]);
      goto fail;
    }
  nsde_model_config_init(&c);
  c.arch = (enum nsde_model_arch)get_u32(buf + 16);
  c.in_channels = (int)get_u32(buf + 20);
  c.in_height = (int)get_u32(buf + 24);
  c.in_width = (int)get_u32(buf + 28);
  c.width = (int)get_u32(buf + 32);
  c.classes = (int)get_u32(buf + 36);
  c.noise = (enum nsde_model_noise)get_u32(buf + 40);
  c.learn_sigma = (int)get_u32(buf + 44);
  c.sigma = get_f64(buf + 48);
  c.t1 = get_f64(buf + 56);
  c.dt = get_f64(buf + 64);
  c.grad = (enum nsde_grad_strategy)get_u32(buf + 80);
  c.groups = (int)get_u32(buf + 84);
  c.max_batch = max_batch;
  if (check_config(ctx, &c) != NSDE_OK) {
    char why[512]; /* the context's buffer cannot be both source and destination */
    snprintf(why, sizeof(why), "%s", nsde_context_last_error(ctx));
    nsde__error(ctx, st, "model file %s: invalid configuration: %s", path, why);
    goto fail;
  }
  if ((uint64_t)config_params(&c) != np) { /* before allocating what the header asks for */
    st = nsde__error(ctx, NSDE_ERR_FORMAT,
                     "model file %s holds %llu parameters, its configuration needs %lld", path,
                     (unsigned long long)np, (long long)config_params(&c));
    goto fail;
  }
  if ((st = nsde_model_new(ctx, &c, &m)) != NSDE_OK)
    goto fail;
  if ((uint64_t)m->np != np) {
    st = nsde__error(ctx, NSDE_ERR_FORMAT,
                     "model file %s holds %llu parameters, its configuration needs %lld", path,
                     (unsigned long long)np, (long long)m->np);
    goto fail;
  }
  for (uint64_t i = 0; i < np; i++) {
    uint32_t u = get_u32(buf + HEADER_BYTES + 4 * i);
    memcpy(&m->params[i], &u, 4);
    if (!isfinite(m->params[i])) {
      st = nsde__error(ctx, NSDE_ERR_FORMAT, "model file %s: parameter %llu is not finite", path,
                       (unsigned long long)i);
      goto fail;
    }
  }
  nsde_model_params_changed(m);
  free(buf);
  *out = m;
  return NSDE_OK;
fail:
  free(buf);
  nsde_model_free(m);
  return st;
}
