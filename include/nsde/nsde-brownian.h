/**
 * @file
 * libnsde - reproducible Brownian paths.
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_BROWNIAN_H
#define NSDE_BROWNIAN_H

#include <nsde/nsde-tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Version of the Brownian stream definition (doc/solvers.md). The values a
 * given (seed, batch element, step, element) produces change only when this
 * number changes.
 */
#define NSDE_BROWNIAN_STREAM_VERSION 1

/** Stream version of the library actually loaded. @since 1.0 */
NSDE_API int nsde_brownian_stream_version(void);

/**
 * A family of independent Brownian paths W_{b,e}(t) on [t0, t1], one per
 * batch element b and element e. The path is a pure function of
 * (seed, b + batch_offset, e): it is generated on demand with a
 * counter-based generator (Philox-4x32-10), stores nothing, and gives the
 * same bits for any thread count, batch split or order of queries.
 *
 * The path is pinned on a base grid of n_steps equal steps; inside a step a
 * Brownian tree refines it jointly with its space-time Levy area, so that
 * increments over any sub-intervals are consistent with the step increments
 * (W(a,b) = W(a,c) + W(c,b)).
 */
struct nsde_brownian;

/** Options of nsde_brownian_new(). Set size = sizeof(struct nsde_brownian_config). */
struct nsde_brownian_config {
  size_t size;          /**< sizeof(struct nsde_brownian_config) */
  uint64_t seed;        /**< the paths are a pure function of the seed and the indices */
  double t0;            /**< start of the interval, finite */
  double t1;            /**< end of the interval: t0 < t1, finite */
  int64_t n_steps;      /**< base grid steps, 1 .. 2^32-1 */
  int64_t batch;        /**< paths are indexed by batch element ... */
  int64_t dim;          /**< ... and by element within it (each < 2^32) */
  int64_t batch_offset; /**< global index of batch element 0 (for batch splits) */
};

/** Fill @p cfg with defaults (seed 0, [0,1], 1 step, batch 1, dim 1). @since 1.0 */
NSDE_API void nsde_brownian_config_init(struct nsde_brownian_config *cfg);

/**
 * Create a Brownian path family.
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_INVALID (bad size field, times,
 *         step count, or indices beyond 2^32), NSDE_ERR_NOMEM.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_brownian_new(struct nsde_context *ctx,
                                                           const struct nsde_brownian_config *cfg,
                                                           struct nsde_brownian **out);

/** Free. NULL is a no-op. @since 1.0 */
NSDE_API void nsde_brownian_free(struct nsde_brownian *bm);

/**
 * Increments W(t) - W(s) of every path, t0 <= s < t <= t1 (s == t is refused:
 * the Levy area divides by t - s), written to @p dw
 * (a contiguous tensor of batch*dim elements, float32 or float64), and
 * optionally the space-time Levy area H(s,t) = (1/(t-s)) int_s^t (W(r) - W(s)) dr
 * - (W(t)-W(s))/2 to @p levy (same layout; NULL to skip).
 * When (s, t) is a base step the cost is one generator call per element.
 *
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_INVALID (times out of order or
 *         range), NSDE_ERR_SHAPE (wrong element count or not contiguous),
 *         NSDE_ERR_DTYPE.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_brownian_increment(const struct nsde_brownian *bm,
                                                                 double s, double t,
                                                                 struct nsde_tensor *dw,
                                                                 struct nsde_tensor *levy);

#ifdef __cplusplus
}
#endif
#endif
