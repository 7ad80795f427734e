/*
 * The activation tape: the convolution outputs of recent forward passes, kept
 * by (time, batch fingerprint) so the backward pass replays none of them; the
 * public forward and backward calls.
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "nn-private.h"
#include "nn-internal.h"

/* ---- the activation tape ------------------------------------------------------ */

/* The batch's fingerprint: each item's (nsde__fingerprint, in parallel over
 * the items), combined in item order. The trained recipe fingerprints its
 * states and parameters at every drift evaluation: the helper's eight
 * chains over 8-byte words take 0.25 ns a float on Zen 5, where four over
 * single floats took 1.3 ns, 1.5% of a training step. */
static uint64_t batch_fingerprint(struct nsde_net *net, int64_t B, const float *x)
{
  const int64_t isz = (int64_t)net->c * net->h * net->w;
  const int nt = nsde__nn_use_threads(net);
  uint64_t h = 0;
  (void)nt;
#pragma omp parallel for schedule(static) num_threads(nt) if (B > 1)
  for (int64_t b = 0; b < B; b++)
    net->fp[b] = nsde__fingerprint(x + b * isz, (size_t)isz * sizeof(float));
  for (int64_t b = 0; b < B; b++)
    h = (h ^ net->fp[b]) * NSDE__FNV_PRIME + (uint64_t)b;
  return h;
}

static uint64_t params_fingerprint(const struct nsde_net *net)
{
  return nsde__fingerprint(net->params, (size_t)net->np * sizeof(float));
}

/* Point the convolution outputs at tape slot s (or the net's own buffers for s < 0). */
void nsde__nn_use_slot(struct nsde_net *net, int64_t s)
{
  for (int i = 0; i < net->nl; i++)
    net->act[i] = s >= 0 && net->taped[i]
                      ? net->tape + (size_t)s * net->tape_slot + (size_t)net->tape_off[i]
                      : net->own[i];
}

NSDE_API enum nsde_status nsde_net_get_tape_stats(const struct nsde_net *net, int64_t *hits,
                                                  int64_t *misses)
{
  if (!net || !hits || !misses)
    return NSDE_ERR_NULL;
  *hits = net->tape_hits;
  *misses = net->tape_misses;
  return NSDE_OK;
}

NSDE_API int64_t nsde_net_tape_bytes(const struct nsde_net *net, int64_t slots)
{
  if (!net || !net->final || slots < 0)
    return -1;
  return slots * (int64_t)net->tape_slot * 4;
}

NSDE_API enum nsde_status nsde_net_set_tape(struct nsde_net *net, int64_t slots)
{
  float *tape = NULL;
  struct tape_meta *meta = NULL;

  if (!net)
    return NSDE_ERR_NULL;
  if (!net->final)
    return nsde__error(net->ctx, NSDE_ERR_STATE, "nsde_net_set_tape: finalize the net first");
  if (slots < 0 || slots > (1 << 20) ||
      (slots > 0 && (int64_t)net->tape_slot > INT64_MAX / 4 / slots))
    return nsde__error(net->ctx, NSDE_ERR_INVALID, "nsde_net_set_tape: bad slot count %lld",
                       (long long)slots);
  if (slots > 0) {
    tape = nsde__alloc((size_t)slots * net->tape_slot * sizeof(float) + 64);
    meta = calloc((size_t)slots, sizeof(*meta));
    if (!tape || !meta) {
      nsde__free(tape);
      free(meta);
      return nsde__error(net->ctx, NSDE_ERR_NOMEM, "nsde_net_set_tape: cannot allocate %lld bytes",
                         (long long)(slots * (int64_t)net->tape_slot * 4));
    }
  }
  nsde__nn_use_slot(net, -1);
  nsde__free(net->tape);
  free(net->meta);
  net->tape = tape;
  net->meta = meta;
  net->tape_n = slots;
  net->tape_next = 0;
  return NSDE_OK;
}

/* Forward through the func: record the convolution outputs on the tape. */
const float *nsde__nn_taped_forward(struct nsde_net *net, int64_t B, const float *x, float t)
{
  struct tape_meta *m;
  const float *y;
  if (net->tape_n == 0 || net->no_tape)
    return nsde__net_forward_raw(net, B, x, t);
  m = &net->meta[net->tape_next];
  m->valid = false;
  nsde__nn_use_slot(net, net->tape_next);
  nsde__nn_run_forward(net, B, x, t, false);
  y = nsde__nn_output_of(net);
  m->t = t;
  m->B = B;
  m->xh = batch_fingerprint(net, B, x);
  m->ph = params_fingerprint(net);
  m->valid = true;
  net->tape_next = (net->tape_next + 1) % net->tape_n;
  return y;
}

/* Before a backward at (t, x): replay from the newest matching tape slot
 * (same t, batch, input bits and parameter bits), else recompute. */
void nsde__nn_prepare_backward(struct nsde_net *net, int64_t B, const float *x, float t)
{
  if (net->tape_n > 0) {
    const uint64_t xh = batch_fingerprint(net, B, x), ph = params_fingerprint(net);
    for (int64_t k = 1; k <= net->tape_n; k++) {
      int64_t s = (net->tape_next - k + net->tape_n) % net->tape_n;
      const struct tape_meta *m = &net->meta[s];
      if (m->valid && m->t == t && m->B == B && m->xh == xh && m->ph == ph) {
        nsde__nn_use_slot(net, s);
        nsde__nn_run_forward(net, B, x, t, true);
        net->tape_hits++;
        return;
      }
    }
    net->tape_misses++;
  }
  nsde__net_forward_raw(net, B, x, t);
}

static enum nsde_status check_io(struct nsde_net *net, const struct nsde_tensor *x,
                                 const struct nsde_tensor *y, int64_t y_item, const char *what)
{
  enum nsde_status st;

  if (!net)
    return NSDE_ERR_NULL;
  if (!net->final)
    return nsde__error(net->ctx, NSDE_ERR_STATE, "%s: call nsde_net_finalize first", what);
  if ((st = nsde__check_tensor(net->ctx, what, "x", x, NSDE_DTYPE_FLOAT32, -1, NULL, true)) !=
          NSDE_OK ||
      (st = nsde__check_tensor(net->ctx, what, "the output", y, NSDE_DTYPE_FLOAT32, -1, NULL,
                               true)) != NSDE_OK)
    return st;
  if (x->shape[0] != y->shape[0] || x->shape[0] > net->max_batch ||
      x->numel != x->shape[0] * (int64_t)net->c * net->h * net->w ||
      y->numel != y->shape[0] * y_item)
    return nsde__error(net->ctx, NSDE_ERR_SHAPE,
                       "%s: x must be contiguous (B, %d, %d, %d) with B <= %lld and the output "
                       "(B, %lld)",
                       what, net->c, net->h, net->w, (long long)net->max_batch, (long long)y_item);
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_net_forward(struct nsde_net *net, double t,
                                           const struct nsde_tensor *x, struct nsde_tensor *y)
{
  enum nsde_status st =
      check_io(net, x, y, net && net->nl ? net->L[net->nl - 1].out_sz : 0, "nsde_net_forward");
  const float *out;

  if (st != NSDE_OK)
    return st;
  out = nsde__net_forward_raw(net, x->shape[0], x->data, (float)t);
  memcpy(y->data, out, (size_t)y->numel * sizeof(float));
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_net_backward(struct nsde_net *net, double t,
                                            const struct nsde_tensor *x,
                                            const struct nsde_tensor *dy, struct nsde_tensor *dx)
{
  enum nsde_status st =
      check_io(net, x, dy, net && net->nl ? net->L[net->nl - 1].out_sz : 0, "nsde_net_backward");

  if (st != NSDE_OK)
    return st;
  if (dx && (dx->dtype != NSDE_DTYPE_FLOAT32 || !dx->contiguous || dx->numel != x->numel))
    return nsde__error(net->ctx, NSDE_ERR_SHAPE, "nsde_net_backward: dx must match x");
  nsde__net_forward_raw(net, x->shape[0], x->data, (float)t);
  nsde__net_backward_raw(net, x->shape[0], x->data, dy->data, dx ? dx->data : NULL, net->grads,
                         (float)t);
  return NSDE_OK;
}
