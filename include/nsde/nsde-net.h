/**
 * @file
 * libnsde - neural networks as drift functions: layers, networks, the paper's drift
 * network. float32, NCHW.
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_NET_H
#define NSDE_NET_H

#include <nsde/nsde-sde.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A feed-forward network: a list of layers applied to a batch of NCHW float32
 * items. Build it with the nsde_net_add_* calls, then nsde_net_finalize(). Its
 * parameters live in one contiguous float buffer, their gradients in another.
 */
struct nsde_net;

/**
 * Start a network whose input items are C x H x W.
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_SHAPE, NSDE_ERR_NOMEM.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_net_new(struct nsde_context *ctx, int channels,
                                                      int height, int width, struct nsde_net **out);
/** Free. NULL is a no-op. @since 1.0 */
NSDE_API void nsde_net_free(struct nsde_net *net);

/** Conv2d with bias: out_channels x k x k kernels, stride, zero padding.
 *  @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_STATE (after nsde_net_finalize()),
 *          NSDE_ERR_INVALID (out_channels outside 1..65536, kernel or stride
 *          outside 1..64, padding outside 0..64), NSDE_ERR_SHAPE (the layer
 *          does not fit the current item shape), NSDE_ERR_NOMEM.
 *  @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_net_add_conv2d(struct nsde_net *net, int out_channels,
                                                             int kernel, int stride, int padding);
/** ConcatConv2d: a constant plane of value t is prepended as channel 0
 *  (zero-padded like the rest), then a conv2d with bias.
 *  @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_STATE (after nsde_net_finalize()),
 *          NSDE_ERR_INVALID (out_channels outside 1..65536, kernel or stride
 *          outside 1..64, padding outside 0..64), NSDE_ERR_SHAPE (the layer
 *          does not fit the current item shape), NSDE_ERR_NOMEM.
 *  @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_net_add_concat_conv2d(struct nsde_net *net,
                                                                    int out_channels, int kernel,
                                                                    int stride, int padding);
/** GroupNorm with learned per-channel scale (init 1) and shift (init 0).
 *  @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_STATE (after nsde_net_finalize()),
 *          NSDE_ERR_INVALID (groups < 1 or not dividing the channels, eps not finite and > 0), NSDE_ERR_SHAPE (the layer does not fit the
 *          current item shape), NSDE_ERR_NOMEM.
 *  @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_net_add_groupnorm(struct nsde_net *net, int groups,
                                                                double eps);
/** ReLU.
 *  @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_STATE (after nsde_net_finalize()),
 *          NSDE_ERR_NOMEM.
 *  @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_net_add_relu(struct nsde_net *net);
/** Global average pool: C x H x W -> C x 1 x 1.
 *  @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_STATE (after nsde_net_finalize()),
 *          NSDE_ERR_NOMEM.
 *  @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_net_add_avgpool(struct nsde_net *net);
/** Linear (fully connected, with bias) on the flattened item.
 *  @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_STATE (after nsde_net_finalize()),
 *          NSDE_ERR_INVALID (out_features < 1), NSDE_ERR_SHAPE (the layer does not fit the
 *          current item shape), NSDE_ERR_NOMEM.
 *  @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_net_add_linear(struct nsde_net *net,
                                                             int out_features);

/**
 * Allocate parameters and workspace for batches of up to @p max_batch items
 * and initialise the parameters as PyTorch does by default (weights and biases
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)), GroupNorm scale 1, shift 0) from @p seed.
 * No layer can be added afterwards.
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_STATE (already final or no layer),
 *         NSDE_ERR_INVALID, NSDE_ERR_OVERFLOW, NSDE_ERR_NOMEM.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_net_finalize(struct nsde_net *net, int64_t max_batch,
                                                           uint64_t seed);

/** Number of parameters (-1 for NULL or before finalize). @since 1.0 */
NSDE_API int64_t nsde_net_num_params(const struct nsde_net *net);
/** The parameter buffer (borrowed, writable; nsde_net_num_params() floats), NULL
 *  before finalize. @since 1.0 */
NSDE_API float *nsde_net_params(struct nsde_net *net);
/** The gradient buffer, same layout and length, accumulated by
 *  nsde_net_backward(). @since 1.0 */
NSDE_API float *nsde_net_grads(struct nsde_net *net);
/** nsde_net_params(), read-only, from a const handle. @since 1.0 */
NSDE_API const float *nsde_net_params_const(const struct nsde_net *net);
/** nsde_net_grads(), read-only, from a const handle. @since 1.0 */
NSDE_API const float *nsde_net_grads_const(const struct nsde_net *net);
/** Output shape of one item: writes C, H, W. @return NSDE_OK, NSDE_ERR_NULL. @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_net_get_output_shape(const struct nsde_net *net, int *channels, int *height, int *width);

/**
 * y = net(t, x) for a batch: x is (B, C, H, W) float32, y the output shape
 * (rank 2 (B, features) or 4), both contiguous, B <= max_batch.
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_STATE (not finalized),
 *         NSDE_ERR_SHAPE, NSDE_ERR_DTYPE.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_net_forward(struct nsde_net *net, double t,
                                                          const struct nsde_tensor *x,
                                                          struct nsde_tensor *y);
/**
 * Backward pass at x: dx = dy^T dnet/dx (dx may be NULL) and the parameter
 * gradients added into nsde_net_grads(). Recomputes the forward pass at x.
 * @return as nsde_net_forward().
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_net_backward(struct nsde_net *net, double t,
                                                           const struct nsde_tensor *x,
                                                           const struct nsde_tensor *dy,
                                                           struct nsde_tensor *dx);
/** Set the gradient buffer to zero. @return NSDE_OK, NSDE_ERR_NULL (also before
 *  nsde_net_finalize()). @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_net_zero_grads(struct nsde_net *net);

/**
 * A drift function object backed by the network (float32; the net's output
 * shape must equal its input shape). Its eval is the forward pass, its vjp the
 * backward pass (recomputing the step's activations), its parameters the net's.
 * The func borrows the net.
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_STATE (not finalized),
 *         NSDE_ERR_SHAPE (output shape differs from the input shape),
 *         NSDE_ERR_NOMEM.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_net_as_func(struct nsde_net *net,
                                                          struct nsde_func **out);

/**
 * Keep the convolution outputs of the last @p slots forward evaluations made
 * through the net's func (nsde_net_as_func) on a tape, so that a vjp at the
 * same (t, x) replays only the cheap layers instead of recomputing the
 * convolutions. A vjp looks up the newest slot with the same t, batch size,
 * input bits and parameter bits (64-bit fingerprints) and recomputes when
 * none matches: the gradients are the same either way, bit for bit. With the
 * STORE_ALL strategy and as many slots as drift evaluations per solve, a
 * backward pass costs one network backward per step and no recomputed
 * forward. 0 slots (the default) turns the tape off and frees it.
 * @return NSDE_OK, NSDE_ERR_STATE before finalize, NSDE_ERR_INVALID, NSDE_ERR_NOMEM.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_net_set_tape(struct nsde_net *net, int64_t slots);
/** Bytes a tape of @p slots slots takes (-1 for a NULL or unfinalized net). @since 1.0 */
NSDE_API int64_t nsde_net_tape_bytes(const struct nsde_net *net, int64_t slots);
/** How many vjps replayed from the tape (hits) and recomputed (misses) so far.
 *  @return NSDE_OK, NSDE_ERR_NULL. @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_net_get_tape_stats(const struct nsde_net *net,
                                                                 int64_t *hits, int64_t *misses);

/**
 * The paper's drift network for a C x H x W state: GN-ReLU-ConcatConv(3x3, pad 1)
 * three times, then GN; GroupNorm with @p groups groups (0: the paper's
 * min(32, C)) and eps 1e-5. Finalized for @p max_batch and initialised from @p seed.
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_SHAPE (a size < 1),
 *         NSDE_ERR_INVALID (max_batch < 1, groups not dividing C),
 *         NSDE_ERR_NOMEM.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_net_new_paper_drift(struct nsde_context *ctx, int channels, int height, int width, int groups,
                         int64_t max_batch, uint64_t seed, struct nsde_net **out);

#ifdef __cplusplus
}
#endif
#endif
