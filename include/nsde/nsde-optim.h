/**
 * @file
 * libnsde - stochastic gradient descent and the paper's learning-rate schedule.
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_OPTIM_H
#define NSDE_OPTIM_H

#include <nsde/nsde-core.h>

#ifdef __cplusplus
extern "C" {
#endif

/** SGD with momentum (PyTorch's convention: v = mu v + g + wd p; p -= lr v,
 *  or p -= lr (g + wd p + mu v) with Nesterov). */
struct nsde_sgd;

/**
 * An optimiser for @p n_params parameters with momentum @p momentum in [0, 1),
 * L2 weight decay @p weight_decay >= 0 and Nesterov momentum when @p nesterov
 * is 1; the velocity starts at zero.
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_INVALID, NSDE_ERR_NOMEM.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_sgd_new(struct nsde_context *ctx, int64_t n_params,
                                                      double momentum, double weight_decay,
                                                      bool nesterov, struct nsde_sgd **out);
/** Free. NULL is a no-op. @since 1.0 */
NSDE_API void nsde_sgd_free(struct nsde_sgd *opt);
/** One step on @p params with @p grads (n_params floats each).
 *  @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_INVALID (lr not finite or < 0),
 *          NSDE_ERR_NONFINITE (a non-finite gradient: nothing changed).
 *  @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_sgd_step(struct nsde_sgd *opt, float *params,
                                                       const float *grads, double lr);
/** The momentum buffer (borrowed; n_params floats): save it with the model
 * to resume training exactly. NULL for NULL. @since 1.0 */
NSDE_API float *nsde_sgd_velocity(struct nsde_sgd *opt);
/** Zero the momentum buffer (the paper resets it at each learning-rate stage).
 *  @return NSDE_OK, NSDE_ERR_NULL. @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_sgd_reset(struct nsde_sgd *opt);
/** A learning-rate schedule: the rate as a pure function of the epoch
 *  position (fractional: epoch + batch / batches_per_epoch). */
struct nsde_lr_schedule;

/**
 * The paper's staged schedule: @p base_lr / 10^k during stage k, stage k
 * lasting @p stage_epochs[k] epochs (copied); the last stage continues past
 * its end. The rate changes only at whole epochs.
 * @return NSDE_OK, NSDE_ERR_NULL (ctx, stage_epochs or out NULL),
 *         NSDE_ERR_INVALID (base_lr not finite and > 0, n_stages outside
 *         1..64, a stage shorter than one epoch), NSDE_ERR_NOMEM.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_lr_schedule_new_staged(struct nsde_context *ctx, double base_lr, const int *stage_epochs,
                            int n_stages, struct nsde_lr_schedule **out);
/**
 * Linear warm-up then a half cosine: at epoch position p the rate is
 * @p base_lr (p + 0.001) / W for p < W = @p warmup_epochs, then
 * base_lr (1 + cos(pi (p - W) / (E - W))) / 2 down to 0 at p = E = @p epochs
 * (0 after). nsde-train's --schedule cosine.
 * @return NSDE_OK, NSDE_ERR_NULL (ctx or out NULL), NSDE_ERR_INVALID (base_lr
 *         or epochs not finite and > 0, warmup_epochs outside 0..epochs),
 *         NSDE_ERR_NOMEM.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_lr_schedule_new_cosine(struct nsde_context *ctx, double base_lr, double warmup_epochs,
                            double epochs, struct nsde_lr_schedule **out);
/** The rate at epoch position @p epoch (negative counts as 0); NaN for a NULL
 *  schedule or a NaN position. @since 1.0 */
NSDE_API double nsde_lr_schedule_at(const struct nsde_lr_schedule *s, double epoch);
/** Free. NULL is a no-op. @since 1.0 */
NSDE_API void nsde_lr_schedule_free(struct nsde_lr_schedule *s);

#ifdef __cplusplus
}
#endif
#endif
