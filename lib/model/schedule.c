/*
 * Learning-rate schedules: the paper's staged one (base_lr / 10^k in stage k)
 * and a linear warm-up followed by a half cosine to zero, as one object whose
 * rate is a pure function of the (fractional) epoch.
 *
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nsde-private.h"

enum { SCHEDULE_STAGED, SCHEDULE_COSINE, MAX_STAGES = 64 };

struct nsde_lr_schedule {
  int kind;
  double base_lr, warmup, epochs;
  int n_stages;
  int stages[MAX_STAGES];
};

static double staged(double base_lr, const int *stage_epochs, int n_stages, int epoch)
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

static enum nsde_status check_base(struct nsde_context *ctx, const char *fn, double base_lr,
                                   struct nsde_lr_schedule **out)
{
  if (!ctx)
    return NSDE_ERR_NULL;
  if (!out)
    return nsde__error(ctx, NSDE_ERR_NULL, "%s: output pointer is NULL", fn);
  *out = NULL;
  if (!(base_lr > 0.0) || !isfinite(base_lr))
    return nsde__error(ctx, NSDE_ERR_INVALID, "%s: base_lr %g must be finite and > 0", fn, base_lr);
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_lr_schedule_new_staged(struct nsde_context *ctx, double base_lr,
                                                      const int *stage_epochs, int n_stages,
                                                      struct nsde_lr_schedule **out)
{
  static const char fn[] = "nsde_lr_schedule_new_staged";
  struct nsde_lr_schedule *s;
  enum nsde_status st = check_base(ctx, fn, base_lr, out);

  if (st != NSDE_OK)
    return st;
  if (!stage_epochs)
    return nsde__error(ctx, NSDE_ERR_NULL, "%s: stage_epochs is NULL", fn);
  if (n_stages < 1 || n_stages > MAX_STAGES)
    return nsde__error(ctx, NSDE_ERR_INVALID, "%s: n_stages %d out of range 1..%d", fn, n_stages,
                       MAX_STAGES);
  for (int k = 0; k < n_stages; k++)
    if (stage_epochs[k] < 1)
      return nsde__error(ctx, NSDE_ERR_INVALID, "%s: stage %d lasts %d epochs, must be >= 1", fn, k,
                         stage_epochs[k]);
  if (!(s = calloc(1, sizeof(*s))))
    return nsde__error(ctx, NSDE_ERR_NOMEM, "%s: out of memory", fn);
  s->kind = SCHEDULE_STAGED;
  s->base_lr = base_lr;
  s->n_stages = n_stages;
  memcpy(s->stages, stage_epochs, sizeof(int) * (size_t)n_stages);
  *out = s;
  return NSDE_OK;
}

NSDE_API enum nsde_status nsde_lr_schedule_new_cosine(struct nsde_context *ctx, double base_lr,
                                                      double warmup_epochs, double epochs,
                                                      struct nsde_lr_schedule **out)
{
  static const char fn[] = "nsde_lr_schedule_new_cosine";
  struct nsde_lr_schedule *s;
  enum nsde_status st = check_base(ctx, fn, base_lr, out);

  if (st != NSDE_OK)
    return st;
  if (!(epochs > 0.0) || !isfinite(epochs))
    return nsde__error(ctx, NSDE_ERR_INVALID, "%s: epochs %g must be finite and > 0", fn, epochs);
  if (!(warmup_epochs >= 0.0) || !(warmup_epochs <= epochs))
    return nsde__error(ctx, NSDE_ERR_INVALID, "%s: warmup_epochs %g out of range 0..%g", fn,
                       warmup_epochs, epochs);
  if (!(s = calloc(1, sizeof(*s))))
    return nsde__error(ctx, NSDE_ERR_NOMEM, "%s: out of memory", fn);
  s->kind = SCHEDULE_COSINE;
  s->base_lr = base_lr;
  s->warmup = warmup_epochs;
  s->epochs = epochs;
  *out = s;
  return NSDE_OK;
}

NSDE_API void nsde_lr_schedule_free(struct nsde_lr_schedule *s)
{
  free(s);
}

NSDE_API double nsde_lr_schedule_at(const struct nsde_lr_schedule *s, double epoch)
{
  if (!s || isnan(epoch))
    return NAN;
  if (epoch < 0.0)
    epoch = 0.0;
  if (s->kind == SCHEDULE_STAGED)
    return staged(s->base_lr, s->stages, s->n_stages, epoch >= 2e9 ? 2000000000 : (int)epoch);
  if (epoch < s->warmup)
    return s->base_lr * (epoch + 1e-3) / s->warmup;
  if (s->epochs <= s->warmup)
    return s->base_lr;
  if (epoch >= s->epochs)
    return 0.0;
  return 0.5 * s->base_lr *
         (1.0 + cos(3.14159265358979323846 * (epoch - s->warmup) / (s->epochs - s->warmup)));
}
