/**
 * @file
 * libnsde - drift and diffusion function objects: user callbacks, the built-ins, and
 * the derivative checkers that test a callback against finite differences.
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_FUNC_H
#define NSDE_FUNC_H

#include <nsde/nsde-tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Callbacks of a user function object (drift or diffusion). Every array is
 * contiguous, batch*dim elements of the function's dtype (float or double),
 * batch-major. Inputs are const; outputs are preallocated by libnsde.
 * Return 0 on success and a negative value to stop the computation; the
 * solver then reports NSDE_ERR_CALLBACK naming the callback, step and time.
 * Callbacks may be called from the thread that called libnsde only.
 */
struct nsde_func_ops {
  /** Set to sizeof(struct nsde_func_ops): lets later versions add members. */
  size_t size;
  /** Required: out = f(t, x). */
  int (*eval)(void *user, double t, int64_t batch, int64_t dim, const void *x, void *out);
  /** Optional: grad_x = v^T df/dx (overwrite) and grad_params += v^T df/dp
   *  summed over the batch (grad_params may be NULL: skip it). */
  int (*vjp)(void *user, double t, int64_t batch, int64_t dim, const void *x, const void *v,
             void *grad_x, void *grad_params);
  /** Optional: out_i = d f_i / d x_i (diagonal of the Jacobian; Milstein). */
  int (*diag_deriv)(void *user, double t, int64_t batch, int64_t dim, const void *x, void *out);
  /** Optional: vector-Jacobian product of the map x -> diag_deriv(x):
   *  grad_x = v^T d(diag_deriv)/dx (overwrite), grad_params += v^T d(diag_deriv)/dp
   *  (grad_params may be NULL). Needed for gradients through Milstein steps and
   *  for the stochastic adjoint with state-dependent noise. */
  int (*diag_deriv_vjp)(void *user, double t, int64_t batch, int64_t dim, const void *x,
                        const void *v, void *grad_x, void *grad_params);
};

/** A drift or diffusion function: user callbacks or a built-in. */
struct nsde_func;

/**
 * Wrap user callbacks.
 * @param ops       copied; ops->size must be set, eval must not be NULL
 * @param user      passed back to every callback (borrowed)
 * @param n_params  number of parameters (>= 0) stored at @p params
 * @param params    the caller's parameter buffer of the func's dtype
 *                  (borrowed; NULL iff n_params == 0)
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_MISSING_OP (no eval),
 *         NSDE_ERR_INVALID, NSDE_ERR_DTYPE, NSDE_ERR_NOMEM.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_func_new(struct nsde_context *ctx, enum nsde_dtype dtype, const struct nsde_func_ops *ops,
              void *user, int64_t n_params, void *params, struct nsde_func **out);

/**
 * Wrap user callbacks that return a matrix per state row: the diffusion G of
 * general noise (NSDE_NOISE_GENERAL), dim x m per batch element. eval writes
 * batch*dim*m values, G[b][i][j] at ((b*dim + i)*m + j); vjp gets a cotangent
 * v of that shape and writes grad_x (batch*dim) = sum over i, j of
 * v[b][i][j] dG[b][i][j]/dx[b][.] (overwrite) and adds v . dG/dp to
 * grad_params. diag_deriv and diag_deriv_vjp are ignored. nsde_func_check_vjp()
 * checks the vjp of such a func.
 * @param m  Brownian dimension, 1 .. 2^32-1
 * @return as nsde_func_new(), and NSDE_ERR_INVALID for m.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_func_new_matrix(struct nsde_context *ctx, enum nsde_dtype dtype,
                     const struct nsde_func_ops *ops, void *user, int64_t n_params, void *params,
                     int64_t m, struct nsde_func **out);

/** Built-in f(t, x) = a*x + b elementwise; parameters (a, b) owned by the func.
 *  @return NSDE_OK, NSDE_ERR_NULL (ctx or out NULL), NSDE_ERR_DTYPE (unknown
 *          dtype), NSDE_ERR_NONFINITE (a parameter not finite), NSDE_ERR_NOMEM.
 *  @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_func_new_linear(struct nsde_context *ctx,
                                                              enum nsde_dtype dtype, double a,
                                                              double b, struct nsde_func **out);

/** Built-in diffusion G = sigma (additive noise). Parameter (sigma).
 *  @return NSDE_OK, NSDE_ERR_NULL (ctx or out NULL), NSDE_ERR_DTYPE (unknown
 *          dtype), NSDE_ERR_NONFINITE (a parameter not finite), NSDE_ERR_NOMEM.
 *  @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_func_new_additive(struct nsde_context *ctx,
                                                                enum nsde_dtype dtype, double sigma,
                                                                struct nsde_func **out);
/** Built-in diffusion G = sigma * x (multiplicative noise). Parameter (sigma).
 *  @return NSDE_OK, NSDE_ERR_NULL (ctx or out NULL), NSDE_ERR_DTYPE (unknown
 *          dtype), NSDE_ERR_NONFINITE (a parameter not finite), NSDE_ERR_NOMEM.
 *  @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_func_new_multiplicative(struct nsde_context *ctx,
                                                                      enum nsde_dtype dtype,
                                                                      double sigma,
                                                                      struct nsde_func **out);
/** Built-in diffusion G = sigma * f(t, x), reusing the drift value computed at
 *  the same point in the same step (dropout-style noise; no second drift call).
 *  Parameter (sigma).
 *  @return NSDE_OK, NSDE_ERR_NULL (ctx or out NULL), NSDE_ERR_DTYPE (unknown
 *          dtype), NSDE_ERR_NONFINITE (a parameter not finite), NSDE_ERR_NOMEM.
 *  @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_func_new_dropout(struct nsde_context *ctx,
                                                               enum nsde_dtype dtype, double sigma,
                                                               struct nsde_func **out);

/** Free. NULL is a no-op. @since 1.0 */
NSDE_API void nsde_func_free(struct nsde_func *f);
/** Number of parameters, -1 for NULL. @since 1.0 */
NSDE_API int64_t nsde_func_num_params(const struct nsde_func *f);
/** The parameter buffer (nsde_func_num_params() values of the func's dtype;
 *  borrowed, writable), NULL if none or for NULL. @since 1.0 for one) */
NSDE_API void *nsde_func_params(struct nsde_func *f);
/** The same buffer, read-only, from a const handle. @since 1.0 */
NSDE_API const void *nsde_func_params_const(const struct nsde_func *f);

/** Result of nsde_func_check_vjp(). */
struct nsde_vjp_report {
  size_t size;          /**< sizeof(struct nsde_vjp_report), set by the caller */
  double worst_rel_err; /**< max |analytic - numeric| / max(1, |numeric|) */
  int64_t worst_index;  /**< where: input element, or parameter index */
  bool worst_is_param;  /**< true if worst_index counts parameters */
  double analytic;      /**< the vjp's value there */
  double numeric;       /**< the central difference there */
  int64_t checked;      /**< number of directional derivatives compared */
};

/**
 * Check a function's vjp callback against central finite differences:
 * for a random cotangent v (from @p seed), compares v^T df/dx_j and
 * v^T df/dp_k with (v.f(x + eps e_j) - v.f(x - eps e_j)) / (2 eps), for every
 * input element and parameter (at most 4096 of each, spread evenly). The
 * parameter buffer is perturbed and restored: callbacks must read their
 * parameters from the buffer registered with the func, not from a copy.
 *
 * It also checks the two halves of the callback contract: grad_x is
 * overwritten (the checker pre-fills it with NaN; any element left NaN fails)
 * and grad_params is accumulated (a second call on a buffer pre-filled with
 * known values must add what the first call wrote into a zeroed one).
 *
 * The verdict: NSDE_ERR_CHECK_FAILED, with a message naming the element, when
 * the contract is broken or the worst relative error
 * |analytic - numeric| / max(1, |numeric|) exceeds 1e-5 (float64) or 5e-2
 * (float32, where central differences with eps 1e-2 are good to about 1e-3
 * on smooth functions and ReLU kinks cost more). The report is filled in
 * either case, so a caller may apply a tolerance of its own. Use float64 for
 * tight checks.
 * @param x  the point (batch x dim elements of the func's dtype, contiguous)
 * @param eps  step; 0 chooses 1e-6 (float64) or 1e-2 (float32)
 * @return NSDE_OK, NSDE_ERR_CHECK_FAILED, NSDE_ERR_NULL, NSDE_ERR_INVALID,
 *         NSDE_ERR_MISSING_OP (no vjp), NSDE_ERR_UNSUPPORTED (dropout: check its
 *         drift), NSDE_ERR_DTYPE, NSDE_ERR_SHAPE, NSDE_ERR_CALLBACK, NSDE_ERR_NOMEM.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_func_check_vjp(struct nsde_func *f, double t,
                                                             const struct nsde_tensor *x,
                                                             uint64_t seed, double eps,
                                                             struct nsde_vjp_report *report);

/**
 * Check diag_deriv (Milstein, the adjoint) against central differences:
 * (f_j(x + eps e_j) - f_j(x - eps e_j)) / (2 eps) for every element j (at most
 * 4096, spread evenly). Same report, tolerances and statuses as
 * nsde_func_check_vjp().
 * @return NSDE_OK (within tolerance), NSDE_ERR_CHECK_FAILED (diag_deriv
 *         disagrees with the differences; the report says where),
 *         NSDE_ERR_MISSING_OP (no diag_deriv), NSDE_ERR_NULL, NSDE_ERR_SHAPE,
 *         NSDE_ERR_DTYPE (x not the func's shape or dtype), NSDE_ERR_INVALID
 *         (eps not finite and > 0), NSDE_ERR_CALLBACK (a callback failed or
 *         returned non-finite values), NSDE_ERR_NOMEM.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_func_check_diag(struct nsde_func *f, double t,
                                                              const struct nsde_tensor *x,
                                                              double eps,
                                                              struct nsde_vjp_report *report);

/**
 * Check diag_deriv_vjp, the vjp of the map x -> diag_deriv(x), exactly as
 * nsde_func_check_vjp() checks vjp: the contract (grad_x overwritten,
 * grad_params accumulated) and central differences of v . diag_deriv(x) in
 * every input element and parameter.
 * @return the statuses of nsde_func_check_vjp() (NSDE_ERR_CHECK_FAILED for a
 *         wrong or contract-breaking diag_deriv_vjp), NSDE_ERR_MISSING_OP
 *         unless the func has both diag_deriv and diag_deriv_vjp.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_func_check_diag_vjp(struct nsde_func *f, double t,
                                                                  const struct nsde_tensor *x,
                                                                  uint64_t seed, double eps,
                                                                  struct nsde_vjp_report *report);

#ifdef __cplusplus
}
#endif
#endif
