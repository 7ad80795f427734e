/**
 * @file
 * libnsde - SDEs, their solvers and the pathwise gradient (nsde_solve, nsde_backward).
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_SDE_H
#define NSDE_SDE_H

#include <nsde/nsde-brownian.h>
#include <nsde/nsde-func.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Structure of the noise term G(t, x) dW. */
enum nsde_noise {
  NSDE_NOISE_NONE = 0,     /**< ODE: no diffusion */
  NSDE_NOISE_DIAGONAL = 1, /**< one Brownian motion per state element, G elementwise */
  NSDE_NOISE_SCALAR = 2,   /**< one Brownian motion per batch element, G a vector */
  NSDE_NOISE_ADDITIVE = 3, /**< diagonal, and G does not depend on the state */
  /** G(t, x) a dim x m matrix per batch element (a diffusion made by
   *  nsde_func_new_matrix), W of dimension m: dx_i = f_i dt + sum_j G_ij dW_j.
   *  Euler-Maruyama (Ito) and Heun (Stratonovich), fixed or adaptive steps,
   *  with gradients. Heun has strong order 1 when the noise commutes
   *  (sum_k G_kj dG_ij/dx_k symmetric in the Brownian indices), 0.5 otherwise.
   *  @since 1.0 */
  NSDE_NOISE_GENERAL = 4
};

/** Interpretation of the stochastic integral. */
enum nsde_calculus {
  NSDE_CALCULUS_ITO = 0,         /**< Ito: the Euler-Maruyama limit @since 1.0 */
  NSDE_CALCULUS_STRATONOVICH = 1 /**< Stratonovich: the midpoint (Heun) limit @since 1.0 */
};

/** A stochastic differential equation dx = f(t,x) dt + G(t,x) dW. */
struct nsde_sde;

/**
 * @param drift      borrowed, required
 * @param diffusion  borrowed; NULL iff noise is NSDE_NOISE_NONE
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_INVALID (noise/diffusion
 *         mismatch, e.g. multiplicative G declared additive),
 *         NSDE_ERR_DTYPE (drift and diffusion dtypes differ), NSDE_ERR_NOMEM.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_sde_new(struct nsde_context *ctx, struct nsde_func *drift, struct nsde_func *diffusion,
             enum nsde_noise noise, enum nsde_calculus calculus, struct nsde_sde **out);
/** Free. NULL is a no-op. @since 1.0 */
NSDE_API void nsde_sde_free(struct nsde_sde *sde);

/** Integration schemes (doc/solvers.md gives formulas and orders). */
enum nsde_scheme {
  NSDE_SCHEME_EULER_MARUYAMA = 0,  /**< Ito; strong order 0.5 (1.0 additive) */
  NSDE_SCHEME_MILSTEIN = 1,        /**< Ito, diagonal noise, needs d G_i / d x_i; order 1.0 */
  NSDE_SCHEME_HEUN = 2,            /**< Stratonovich; order 1.0 for commutative noise */
  NSDE_SCHEME_REVERSIBLE_HEUN = 3, /**< Stratonovich, algebraically reversible; order 1.0 */
  NSDE_SCHEME_SRA1 = 4             /**< additive noise (Roessler SRA1); strong order 1.5 */
};

/** How the step grid is derived from the time span. */
enum nsde_grid {
  NSDE_GRID_STEPS = 0, /**< n_steps equal steps */
  NSDE_GRID_DT = 1,    /**< ceil((t1-t0)/dt) equal steps of at most dt */
  NSDE_GRID_PAPER = 2  /**< the paper's code: N = int((t1-t0)/dt) + 1 equal steps */
};

/**
 * How nsde_backward() obtains what it needs; chosen when the solver is made,
 * since it decides what the forward pass keeps. doc/gradients.md compares them.
 */
enum nsde_grad_strategy {
  NSDE_GRAD_NONE = 0,       /**< no gradients (nothing is kept) */
  NSDE_GRAD_STORE_ALL = 1,  /**< keep every step's inputs and intermediates: fastest */
  NSDE_GRAD_CHECKPOINT = 2, /**< keep states every k steps, recompute the rest; same
                                 result as STORE_ALL */
  NSDE_GRAD_REVERSIBLE = 3, /**< reversible Heun only: reconstruct each step backwards,
                                 O(1) memory in the step count, exact */
  NSDE_GRAD_ADJOINT = 4     /**< Euler-Maruyama (Ito) only: continuous stochastic adjoint
                                 (Li et al. 2020) on the regenerated path, O(1) memory;
                                 approximates STORE_ALL, converging as dt -> 0 */
};

/** Solver options. Initialise with nsde_solver_config_init(). */
struct nsde_solver_config {
  size_t size;             /**< sizeof(struct nsde_solver_config) */
  enum nsde_scheme scheme; /**< the scheme (NSDE_SCHEME_EULER_MARUYAMA) */
  double t0;               /**< start time (0) */
  double t1;               /**< end time, t0 < t1 (1) */
  enum nsde_grid grid;     /**< how the steps are chosen (NSDE_GRID_STEPS) */
  int64_t n_steps;         /**< for NSDE_GRID_STEPS */
  double dt;               /**< for NSDE_GRID_DT and NSDE_GRID_PAPER */
  const double *save_at;   /**< times in [t0, t1] whose states are recorded (copied) */
  int64_t n_save;          /**< number of save_at times (0) */
  uint64_t seed;           /**< Brownian seed */
  int64_t batch_offset;    /**< global index of batch element 0 */
  /** Base grid of the Brownian paths (see struct nsde_brownian): 0 pins them
   *  on the solver's own equal steps (fastest). Solvers given the same seed
   *  and brownian_steps see the same paths whatever their own step count,
   *  which is what convergence studies need. */
  int64_t brownian_steps;
  /** Gradient strategy (default NSDE_GRAD_NONE). */
  enum nsde_grad_strategy grad;
  /** NSDE_GRAD_CHECKPOINT: keep a state every this many steps; 0 lets
   *  libnsde choose the schedule that needs the fewest bytes (about sqrt(N)
   *  checkpoints), within grad_budget_bytes if that is not 0. */
  int64_t checkpoint_every;
  /** NSDE_GRAD_CHECKPOINT with checkpoint_every 0: the most bytes the gradient
   *  memory may take (0: no limit). nsde_solver_new() fails with NSDE_ERR_NOMEM
   *  naming the minimum when the budget cannot be met. */
  size_t grad_budget_bytes;
  /** 1: adaptive step sizes (doc/solvers.md, "Adaptive steps"); 0: the fixed
   *  grid above (default). Adaptive solves take the Brownian path of the base
   *  grid (brownian_steps, or the grid rule's step count) and refine it with
   *  the Brownian tree, so rejected steps leave the path unchanged and the
   *  solution converges to the fine fixed-grid solution on the same path.
   *  Schemes: Heun (embedded Euler estimate), SRA1 (embedded Euler-Maruyama),
   *  Milstein (step doubling), Euler-Maruyama (step doubling; ODEs and
   *  additive noise only). Not reversible Heun. @since 1.0 */
  bool adaptive;
  double rtol;   /**< relative tolerance, > 0 (1e-3) @since 1.0 */
  double atol;   /**< absolute tolerance, >= 0 (1e-6) @since 1.0 */
  double dt0;    /**< first trial step; 0: (t1 - t0) / base steps @since 1.0 */
  double dt_min; /**< smallest step; a step that needs less fails
                             (NSDE_ERR_STEP_SIZE). 0: (t1 - t0) * 1e-10 @since 1.0 */
  double dt_max; /**< largest step; 0: t1 - t0 @since 1.0 */
  /** Most steps one adaptive solve may take (accepted steps of the scheme,
   *  two per accepted pair of half steps with step doubling), 1 .. 2^26;
   *  0: 10000. It sizes the grid and, with gradients, their tape or
   *  checkpoints, as n_steps does for fixed grids. @since 1.0 */
  int64_t max_steps;
};

/** Defaults: Euler-Maruyama on [0, 1] with 10 steps, seed 0, no save-at times. @since 1.0 */
NSDE_API void nsde_solver_config_init(struct nsde_solver_config *cfg);

/**
 * A solver for one SDE, one configuration and one state shape. All memory
 * it needs is allocated here; stepping allocates nothing.
 */
struct nsde_solver;

/**
 * Bytes of workspace nsde_solver_new() would allocate for this problem.
 * @return as nsde_solver_new().
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_solver_workspace_bytes(const struct nsde_sde *sde, const struct nsde_solver_config *cfg,
                            int rank, const int64_t *state_shape, size_t *bytes);

/**
 * Create a solver. Axis 0 of @p state_shape is the batch; each batch
 * element has its own Brownian path.
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_INVALID (times, grid, save-at
 *         times, config size), NSDE_ERR_UNSUPPORTED (scheme does not fit the
 *         SDE's calculus or noise), NSDE_ERR_MISSING_OP (scheme needs a
 *         callback the functions lack), NSDE_ERR_SHAPE, NSDE_ERR_OVERFLOW,
 *         NSDE_ERR_NOMEM.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_solver_new(const struct nsde_sde *sde,
                                                         const struct nsde_solver_config *cfg,
                                                         int rank, const int64_t *state_shape,
                                                         struct nsde_solver **out);
/** Free. NULL is a no-op. @since 1.0 */
NSDE_API void nsde_solver_free(struct nsde_solver *s);

/**
 * Integrate from t0 to t1 in place: @p state holds x(t0) on entry and x(t1)
 * on success. If @p saved is not NULL it receives the state at each save-at
 * time, in order (contiguous, n_save * numel(state) elements, same dtype).
 * On error the state holds the last good state, the one before the failed
 * step, and the message names the step and the time.
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_SHAPE, NSDE_ERR_DTYPE,
 *         NSDE_ERR_CALLBACK, NSDE_ERR_NONFINITE.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_solve(struct nsde_solver *s, struct nsde_tensor *state, struct nsde_tensor *saved);

/** Rewind a step-wise integration to t0. @return NSDE_OK, NSDE_ERR_NULL. @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_solver_reset(struct nsde_solver *s);

/**
 * Advance @p state by one step (step-wise use: nsde_solver_reset(), then
 * nsde_solver_step() until it returns NSDE_ERR_STATE at t1). A failed step
 * leaves state and time unchanged.
 * @return NSDE_OK, NSDE_ERR_STATE (already at t1), or any error status of
 *         nsde_solve() (NSDE_ERR_NULL, NSDE_ERR_SHAPE, NSDE_ERR_DTYPE,
 *         NSDE_ERR_NONFINITE, NSDE_ERR_CALLBACK, NSDE_ERR_STEP_SIZE, ...).
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_solver_step(struct nsde_solver *s,
                                                          struct nsde_tensor *state);

/**
 * Use a new Brownian seed from the next solve on (a new path per training
 * batch, say); gradients of an earlier solve are no longer available.
 * @return NSDE_OK, NSDE_ERR_NULL.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_solver_set_seed(struct nsde_solver *s, uint64_t seed);

/** Current time of a step-wise integration (NaN for NULL). @since 1.0 */
NSDE_API double nsde_solver_time(const struct nsde_solver *s);
/** Steps taken so far (-1 for NULL). @since 1.0 */
NSDE_API int64_t nsde_solver_step_index(const struct nsde_solver *s);
/** Steps in the grid, save-at times included (adaptive solves: the steps
 *  accepted so far); -1 for NULL. @since 1.0 */
NSDE_API int64_t nsde_solver_num_steps(const struct nsde_solver *s);
/** The solver's Brownian paths (borrowed), NULL for NULL. @since 1.0 */
NSDE_API const struct nsde_brownian *nsde_solver_brownian(const struct nsde_solver *s);

/** What a solve cost (adaptive or fixed): filled by nsde_solver_get_stats(). */
struct nsde_solver_stats {
  size_t size;         /**< sizeof(struct nsde_solver_stats), set by the caller */
  int64_t steps;       /**< grid steps of the last solve (accepted steps) */
  int64_t rejected;    /**< adaptive: trial steps rejected (0 on fixed grids) */
  int64_t drift_evals; /**< drift evaluations, trial steps included */
  double dt_smallest;  /**< smallest accepted step */
  double dt_largest;   /**< largest accepted step */
  /** Brownian increment arrays drawn since the solve began, by the solve and by
   *  nsde_backward() after it: STORE_ALL and CHECKPOINT keep each step's
   *  increments with its record instead of drawing them again  */
  int64_t brownian_draws;
};

/**
 * Statistics of the last nsde_solve() (or of the step-wise integration so far).
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_INVALID (size field).
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_solver_get_stats(const struct nsde_solver *s,
                                                               struct nsde_solver_stats *stats);

/**
 * The grid times of the last solve: n_steps + 1 increasing times from t0 to
 * t1 (for adaptive solves, the accepted steps). Borrowed; valid until the
 * next solve, step or reset.
 * @return the number of steps, or -1 for NULL arguments.
 * @since 1.0
 */
NSDE_API int64_t nsde_solver_get_times(const struct nsde_solver *s, const double **times);

/**
 * Reversible Heun only: run the completed integration backwards with the
 * same Brownian increments and write the reconstructed x(t0) to @p state.
 * No stored trajectory is used. The solver is left at t0.
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_UNSUPPORTED (other schemes),
 *         NSDE_ERR_STATE (no completed integration), NSDE_ERR_SHAPE,
 *         NSDE_ERR_DTYPE, NSDE_ERR_CALLBACK.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_solver_reconstruct(struct nsde_solver *s,
                                                                 struct nsde_tensor *state);

/**
 * Pathwise gradient of a loss of the last nsde_solve() with respect to the
 * initial state and the parameters of drift and diffusion, for the same
 * Brownian path (paper, Theorem 3.1). Needs a solver made with a gradient
 * strategy and functions with vjp callbacks (built-ins have them).
 *
 * @param grad_final    dL/dx(t1), the state's shape and dtype (required)
 * @param grad_saved    dL/dx at the save-at times (n_save * numel elements,
 *                      contiguous) or NULL
 * @param grad_initial  receives dL/dx(t0) (required; any layout of the state's shape)
 * @param grad_drift_params      receives dL/d(drift parameters): values of
 *                               the SDE's dtype (overwritten), or NULL to skip
 * @param n_grad_drift           how many values @p grad_drift_params holds:
 *                               nsde_func_num_params() of the drift (0 with NULL)
 * @param grad_diffusion_params  the same for the diffusion (sigma of the
 *                               built-ins), or NULL
 * @param n_grad_diffusion       nsde_func_num_params() of the diffusion (0 with NULL)
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_STATE (no completed solve, the
 *         solver was stepped or reset since, or parameters changed since the
 *         solve), NSDE_ERR_UNSUPPORTED (solver made without a gradient
 *         strategy), NSDE_ERR_SHAPE (also a parameter-gradient count that
 *         is not the function's parameter count), NSDE_ERR_DTYPE, NSDE_ERR_CALLBACK,
 *         NSDE_ERR_NONFINITE (a gradient became NaN/inf; the message names
 *         the step).
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_backward(struct nsde_solver *s, const struct nsde_tensor *grad_final,
              const struct nsde_tensor *grad_saved, struct nsde_tensor *grad_initial,
              void *grad_drift_params, int64_t n_grad_drift, void *grad_diffusion_params,
              int64_t n_grad_diffusion);

#ifdef __cplusplus
}
#endif
#endif
