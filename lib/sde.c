/*
 * The SDE object: drift, diffusion, noise structure, interpretation.
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>

#include "func-private.h"

NSDE_API enum nsde_status nsde_sde_new(struct nsde_context *ctx, struct nsde_func *drift,
                                       struct nsde_func *diffusion, enum nsde_noise noise,
                                       enum nsde_calculus calculus, struct nsde_sde **out)
{
  struct nsde_sde *sde;

  if (!out)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_sde_new: output pointer is NULL");
  *out = NULL;
  if (!ctx)
    return NSDE_ERR_NULL;
  if (!drift)
    return nsde__error(ctx, NSDE_ERR_NULL, "nsde_sde_new: drift is NULL");
  if ((int)noise < NSDE_NOISE_NONE || (int)noise > NSDE_NOISE_GENERAL)
    return nsde__error(ctx, NSDE_ERR_INVALID, "nsde_sde_new: unknown noise type %d", (int)noise);
  if (calculus != NSDE_CALCULUS_ITO && calculus != NSDE_CALCULUS_STRATONOVICH)
    return nsde__error(ctx, NSDE_ERR_INVALID, "nsde_sde_new: unknown calculus %d", (int)calculus);
  if ((noise == NSDE_NOISE_NONE) != (diffusion == NULL))
    return nsde__error(ctx, NSDE_ERR_INVALID,
                       "nsde_sde_new: a diffusion is needed exactly when the noise is not NONE");
  if (diffusion) {
    if (diffusion->dtype != drift->dtype)
      return nsde__error(ctx, NSDE_ERR_DTYPE, "nsde_sde_new: drift and diffusion dtypes differ");
    if ((noise == NSDE_NOISE_GENERAL) != diffusion->matrix)
      return nsde__error(ctx, NSDE_ERR_INVALID,
                         "nsde_sde_new: general noise needs a matrix diffusion "
                         "(nsde_func_new_matrix), and a matrix diffusion needs general noise");
    if (noise == NSDE_NOISE_ADDITIVE &&
        (diffusion->kind == NSDE__FUNC_MULTIPLICATIVE || diffusion->kind == NSDE__FUNC_DROPOUT ||
         diffusion->kind == NSDE__FUNC_LINEAR))
      return nsde__error(ctx, NSDE_ERR_INVALID,
                         "nsde_sde_new: this diffusion depends on the state; it is not additive");
  }
  if (drift->matrix)
    return nsde__error(ctx, NSDE_ERR_INVALID, "nsde_sde_new: the drift cannot be a matrix func");
  if (drift->kind == NSDE__FUNC_DROPOUT)
    return nsde__error(ctx, NSDE_ERR_INVALID,
                       "nsde_sde_new: the dropout diffusion needs a drift; it cannot be one");
  sde = calloc(1, sizeof(*sde));
  if (!sde)
    return nsde__error(ctx, NSDE_ERR_NOMEM, "out of memory");
  sde->ctx = ctx;
  sde->drift = drift;
  sde->diffusion = diffusion;
  sde->noise = noise;
  sde->calculus = calculus;
  sde->dtype = drift->dtype;
  *out = sde;
  return NSDE_OK;
}

NSDE_API void nsde_sde_free(struct nsde_sde *sde)
{
  free(sde);
}
