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
 * @since 0.1
 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_sgd_new(struct nsde_context *ctx, int64_t n_params, double momentum, double weight_decay,
             int nesterov, struct nsde_sgd **out);
/** Free. NULL is a no-op. @since 0.1 */
NSDE_API void nsde_sgd_free(struct nsde_sgd *opt);
/** One step on @p params with @p grads (n_params floats each). @since 0.1 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_sgd_step(struct nsde_sgd *opt, float *params, const float *grads, double lr);
/** The momentum buffer (borrowed; n_params floats): save it with the model
 * to resume training exactly. NULL for NULL. @since 0.1 */
NSDE_API float *nsde_sgd_velocity(struct nsde_sgd *opt);
/** Zero the momentum buffer (the paper resets it at each learning-rate stage). @since 0.1 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_sgd_reset(struct nsde_sgd *opt);
/** The paper's staged schedule: base_lr / 10^k during stage k (stage lengths in
 *  epochs); the last stage continues past its end. @since 0.1 */
NSDE_API double nsde_lr_staged(double base_lr, const int *stage_epochs, int n_stages, int epoch);

#ifdef __cplusplus
}
#endif
#endif
