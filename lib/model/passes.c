/*
 * The model's passes: deterministic and noisy forward passes, hidden-state
 * trajectories, test-time noise ensembles (predict) and the training loss
 * with its gradient.
 *
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "func-private.h"
#include "nn-private.h"
#include "model-private.h"

static enum nsde_status check_images(struct nsde_model *m, const struct nsde_tensor *x,
                                     const char *what)
{
  const int64_t shape[4] = {-1, m->cfg.in_channels, m->cfg.in_height, m->cfg.in_width};
  enum nsde_status st;

  if ((st = nsde__check_tensor(m->ctx, what, "images", x, NSDE_DTYPE_FLOAT32, 4, shape, true)) !=
      NSDE_OK)
    return st;
  if (x->shape[0] > m->cfg.max_batch)
    return nsde__error(m->ctx, NSDE_ERR_SHAPE, "%s: a batch of %lld images, the model takes %lld",
                       what, (long long)x->shape[0], (long long)m->cfg.max_batch);
  return NSDE_OK;
}

/* stem -> SDE block -> head; logits left in m->logits. */
static enum nsde_status forward(struct nsde_model *m, const struct nsde_tensor *images, bool noisy,
                                uint64_t seed, int grad, struct nsde_solver **used)
{
  const int64_t B = images->shape[0];
  const float *h0, *lg;
  struct nsde_solver *s;
  struct nsde_tensor *state = NULL;
  int64_t shape[4] = {B, m->sc, m->sh, m->sw};
  enum nsde_status st;

  nsde__model_sync_params(m);
  s = nsde__model_solver(m, B, noisy, grad);
  if (!s)
    return nsde_context_last_status(m->ctx) != NSDE_OK ? nsde_context_last_status(m->ctx)
                                                       : NSDE_ERR_NOMEM;
  h0 = nsde__net_forward_raw(m->stem, B, images->data, 0.0f);
  memcpy(m->h, h0, (size_t)(B * m->state_sz) * sizeof(float));
  if ((st = nsde_tensor_wrap(m->ctx, NSDE_DTYPE_FLOAT32, 4, shape, NULL, m->h, &state)) != NSDE_OK)
    return st;
  st = nsde_solver_set_seed(s, seed);
  /* without gradients nothing reads the drift's tape: 11 batch fingerprints
   * and writes to cold slots saved per pass */
  nsde__net_set_no_tape(m->drift, !grad);
  if (st == NSDE_OK)
    st = nsde_solve(s, state, NULL);
  nsde__net_set_no_tape(m->drift, false);
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
  if ((st = nsde__check_tensor(m->ctx, what, "the output", out, NSDE_DTYPE_FLOAT32, -1, NULL,
                               true)) != NSDE_OK)
    return st;
  if (out->numel != images->shape[0] * m->cfg.classes)
    return nsde__error(m->ctx, NSDE_ERR_SHAPE, "%s: output must be contiguous float32 (B, %d)",
                       what, m->cfg.classes);
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_model_get_state_shape(const struct nsde_model *m, int *channels,
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
                                                const struct nsde_tensor *images, bool noisy,
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
  if (states->dtype != NSDE_DTYPE_FLOAT32 || !states->contiguous ||
      states->numel != (n_steps + 1) * B * m->state_sz)
    return nsde__error(m->ctx, NSDE_ERR_SHAPE,
                       "nsde_model_trajectory: states must be contiguous float32 with %lld "
                       "elements",
                       (long long)((n_steps + 1) * B * m->state_sz));
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
  nsde__model_sync_params(m);
  st = nsde_solver_new(noisy && m->g ? m->sde_noisy : m->sde_ode, &sc, 4, shape, &s);
  if (st == NSDE_OK) {
    h0 = nsde__net_forward_raw(m->stem, B, images->data, 0.0f);
    memcpy(m->h, h0, (size_t)(B * m->state_sz) * sizeof(float));
    st = nsde_tensor_wrap(m->ctx, NSDE_DTYPE_FLOAT32, 4, shape, NULL, m->h, &state);
  }
  if (st == NSDE_OK) {
    int64_t sshape[4] = {(n_steps + 1) * B, m->sc, m->sh, m->sw};
    st = nsde_tensor_wrap(m->ctx, NSDE_DTYPE_FLOAT32, 4, sshape, NULL, buf, &saved);
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

NSDE_API enum nsde_status nsde_model_forward(struct nsde_model *m, const struct nsde_tensor *images,
                                             bool noisy, uint64_t seed, struct nsde_tensor *logits)
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

NSDE_API enum nsde_status nsde_model_predict(struct nsde_model *m, const struct nsde_tensor *images,
                                             int passes, uint64_t seed, struct nsde_tensor *probs)
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
  runs = passes == 0 || m->cfg.noise == NSDE_MODEL_NOISE_ODE
             ? 1
             : passes; /* ODE passes are all equal */
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
                                               const int32_t *labels, bool noisy, uint64_t seed,
                                               struct nsde_tensor *grad_images, double *loss,
                                               int64_t *correct)
{
  struct nsde_loss_options o;

  nsde_loss_options_init(&o);
  o.grad_images = grad_images;
  o.loss = loss;
  o.correct = correct;
  return nsde_model_loss_grad_opts(m, images, labels, noisy, seed, &o);
}

NSDE_API void nsde_loss_options_init(struct nsde_loss_options *opts)
{
  if (!opts)
    return;
  memset(opts, 0, sizeof(*opts));
  opts->size = sizeof(*opts);
  opts->kind = NSDE_MODEL_LOSS_CROSS_ENTROPY;
}

/* The model's three networks compute input gradients only (on) or all (off). */
static void set_no_wgrad(struct nsde_model *m, bool on)
{
  nsde__net_set_no_wgrad(m->stem, on);
  nsde__net_set_no_wgrad(m->drift, on);
  nsde__net_set_no_wgrad(m->head, on);
}

/* The options in this library's layout, and the arguments checked. */
static enum nsde_status loss_args(struct nsde_model *m, const struct nsde_tensor *images,
                                  const int32_t *labels, const struct nsde_loss_options *user,
                                  struct nsde_loss_options *o)
{
  const int C = m->cfg.classes;
  enum nsde_status st;

  if (!user)
    nsde_loss_options_init(o);
  else if ((st = nsde__struct_in(m->ctx, "loss options", user,
                                 NSDE__SIZE_TO(struct nsde_loss_options, no_param_grads),
                                 sizeof(*o), o)) != NSDE_OK)
    return st;
  if ((st = check_images(m, images, "nsde_model_loss_grad")) != NSDE_OK)
    return st;
  if (!labels)
    return nsde__error(m->ctx, NSDE_ERR_NULL, "nsde_model_loss_grad: labels is NULL");
  for (int64_t b = 0; b < images->shape[0]; b++)
    if (labels[b] < 0 || labels[b] >= C)
      return nsde__error(m->ctx, NSDE_ERR_INVALID,
                         "nsde_model_loss_grad: label %d of image %lld outside 0..%d",
                         (int)labels[b], (long long)b, C - 1);
  if (o->grad_images && (o->grad_images->dtype != NSDE_DTYPE_FLOAT32 ||
                         !o->grad_images->contiguous || o->grad_images->numel != images->numel))
    return nsde__error(m->ctx, NSDE_ERR_SHAPE,
                       "nsde_model_loss_grad: grad_images must match images");
  if ((o->kind != NSDE_MODEL_LOSS_CROSS_ENTROPY && o->kind != NSDE_MODEL_LOSS_CW_MARGIN) ||
      !(o->kappa >= 0) || !isfinite(o->kappa))
    return nsde__error(m->ctx, NSDE_ERR_INVALID,
                       "nsde_model_loss_grad: unknown loss %d or bad kappa %g", (int)o->kind,
                       o->kappa);
  return NSDE_OK;
}

/* The loss of each image's logits and its gradient (m->dlogits, the batch
 * mean's); *total the sum, *hits the images whose top logit is the label. */
static enum nsde_status loss_of_logits(struct nsde_model *m, int64_t B, const int32_t *labels,
                                       const struct nsde_loss_options *o, double *total,
                                       int64_t *hits)
{
  const int C = m->cfg.classes;
  double *p = malloc((size_t)C * sizeof(double));

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
    *hits += best == labels[b];
    if (o->kind == NSDE_MODEL_LOSS_CROSS_ENTROPY) {
      softmax(z, C, p);
      li = -log(fmax(p[labels[b]], 1e-300));
      for (int k = 0; k < C; k++)
        dz[k] = (float)((p[k] - (k == labels[b] ? 1.0 : 0.0)) / (double)B);
    } else { /* Carlini-Wagner: max(z_y - max_{j != y} z_j, -kappa) */
      double margin = other < 0 ? 0.0 : (double)z[labels[b]] - z[other];
      li = fmax(margin, -o->kappa);
      for (int k = 0; k < C; k++)
        dz[k] = 0.0f;
      if (other >= 0 && margin > -o->kappa) {
        dz[labels[b]] = (float)(1.0 / (double)B);
        dz[other] = (float)(-1.0 / (double)B);
      }
    }
    *total += li;
    if (o->per_image)
      o->per_image[b] = li;
  }
  free(p);
  return NSDE_OK;
}

/* The SDE block's backward pass: m->dh (the head's input gradient) to
 * m->dh0, the drift's gradients and dL/dsigma. */
static enum nsde_status block_backward(struct nsde_model *m, struct nsde_solver *s, int64_t B,
                                       bool noisy, float *sigma_grad)
{
  int64_t shape[4] = {B, m->sc, m->sh, m->sw};
  struct nsde_tensor *tdh = NULL, *tdh0 = NULL;
  enum nsde_status st;

  if ((st = nsde_tensor_wrap(m->ctx, NSDE_DTYPE_FLOAT32, 4, shape, NULL, m->dh, &tdh)) == NSDE_OK)
    st = nsde_tensor_wrap(m->ctx, NSDE_DTYPE_FLOAT32, 4, shape, NULL, m->dh0, &tdh0);
  if (st == NSDE_OK)
    st = nsde_backward(s, tdh, NULL, tdh0, m->grads + m->off_drift, m->np_drift,
                       noisy && m->g && m->cfg.learn_sigma ? sigma_grad : NULL,
                       noisy && m->g && m->cfg.learn_sigma ? 1 : 0);
  nsde_tensor_free(tdh);
  nsde_tensor_free(tdh0);
  return st;
}

NSDE_API enum nsde_status nsde_model_loss_grad_opts(struct nsde_model *m,
                                                    const struct nsde_tensor *images,
                                                    const int32_t *labels, bool noisy,
                                                    uint64_t seed,
                                                    const struct nsde_loss_options *user)
{
  struct nsde_loss_options o;
  struct nsde_solver *s;
  enum nsde_status st;
  double total = 0;
  int64_t B, hits = 0;
  float sigma_grad = 0;

  if (!m)
    return NSDE_ERR_NULL;
  if ((st = loss_args(m, images, labels, user, &o)) != NSDE_OK)
    return st;
  B = images->shape[0];
  if ((st = forward(m, images, noisy, seed, 1, &s)) != NSDE_OK ||
      (st = loss_of_logits(m, B, labels, &o, &total, &hits)) != NSDE_OK)
    return st;
  memset(m->grads, 0, (size_t)m->np * sizeof(float));
  /* no_param_grads: the convolutions compute their input gradients only */
  set_no_wgrad(m, o.no_param_grads != 0);
  /* head (its activations are those of this forward pass) */
  nsde__net_backward_raw(m->head, B, m->h, m->dlogits, m->dh, m->grads + m->off_head, 0.0f);
  st = block_backward(m, s, B, noisy, &sigma_grad);
  /* the stem's activations are still those of this pass: the SDE block and
   * head use their own networks */
  if (st == NSDE_OK)
    nsde__net_backward_raw(m->stem, B, images->data, m->dh0,
                           o.grad_images ? o.grad_images->data : NULL, m->grads + m->off_stem,
                           0.0f);
  set_no_wgrad(m, false);
  if (st != NSDE_OK)
    return st;
  if (o.no_param_grads) /* what the group norms and the head still added */
    memset(m->grads, 0, (size_t)m->np * sizeof(float));
  else if (m->cfg.learn_sigma)
    m->grads[m->np - 1] = sigma_grad;
  if (o.loss)
    *o.loss = total / (double)B;
  if (o.correct)
    *o.correct = hits;
  return NSDE_OK;
}
