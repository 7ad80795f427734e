/* Solver internals: the solver object and the stepping functions of
 * solver.c that adaptive.c, grad.c and the schemes build on. The layering is
 * one way: solver.c calls neither the gradient engine nor the adaptive
 * controller, only the hooks they install (struct nsde__recorder, struct
 * nsde__stepper); their constructors' side is in solver-build.h. Not
 * installed.
 * SPDX-License-Identifier: MIT */
#ifndef NSDE_SOLVER_PRIVATE_H
#define NSDE_SOLVER_PRIVATE_H

#include "brownian-private.h"
#include "func-private.h"

#define NSDE__MAX_REJ 64 /* adaptive, general noise: pending rejected ends kept */

enum buf {
  B_CUR,
  B_NEXT,
  B_F0,
  B_G0,
  B_F1,
  B_G1,
  B_XT,
  B_GP,
  B_DFX,
  B_Z,
  B_Z1,
  B_X0,
  B_ERR, /* adaptive: the state before a trial step, the comparison solution */
  B_NBUF
};

/* The backward pass's work arrays (grad.c, lib/scheme/): the cotangent A of
 * the state, Z (a two-state scheme's second state), the cotangents handed to the
 * drift, diffusion and its derivative, temporaries, and the adjoint's state. */
enum gb { G_A, G_Z, G_CF, G_CG, G_CGP, G_T1, G_T2, G_TMP, G_F, G_G, G_GP, G_X2, G_A2, G_X0, G_N };

struct nsde_solver;

/* What the gradient engine (grad.c) hooks into a forward solve; NULL without
 * a gradient strategy. */
struct nsde__recorder {
  /* A forward step of nsde_solve is about to run from s->step. */
  void (*before_step)(struct nsde_solver *s);
  /* While s->recording: step has been computed, B_NEXT not yet current. */
  void (*record)(struct nsde_solver *s, int64_t step);
  /* While s->recording: where step's Brownian increments go (NULL: the
   * solver's own array). */
  void *(*dw_slot)(const struct nsde_solver *s, int64_t step);
  /* nsde_solve finished: the tape belongs to this solve and its parameters. */
  void (*solved)(struct nsde_solver *s);
};

/* Adaptive steps (adaptive.c); NULL on a fixed grid. */
struct nsde__stepper {
  /* One accepted step (one or two grid steps), trial steps as needed. */
  enum nsde_status (*advance)(struct nsde_solver *s);
  /* Rewind the controller and the save-at bookkeeping to t0. */
  void (*reset)(struct nsde_solver *s);
};

struct nsde_solver {
  struct nsde_context *ctx;
  const struct nsde__recorder *rec;    /* gradient hooks, or NULL */
  const struct nsde__stepper *stepper; /* adaptive steps, or NULL */
  const struct nsde_sde *sde;
  enum nsde_scheme scheme;
  const struct nsde__scheme *sch; /* its steps (lib/scheme/) */
  enum nsde_dtype dtype;
  size_t esz;
  int rank;
  int64_t shape[NSDE_MAX_RANK];
  int64_t batch, dim, n, wn;
  int scalar;
  int64_t m;      /* general noise: Brownian dimension per batch element (0: other noise) */
  int64_t n_grid; /* steps */
  double *grid;   /* n_grid + 1 times */
  int64_t n_save;
  int64_t *save_idx; /* grid index of each save-at time */
  struct nsde_brownian bm;
  void *buf[B_NBUF];
  void *dw, *hl; /* this step's increments: dw_own, or a slot of dw_tape */
  void *dw_own;
  int64_t dw_step; /* the step whose increments dw_own holds after a backward step, or -1 */
  void *ws;
  size_t ws_bytes;
  int64_t step;
  bool z_fresh; /* two-state schemes: z not yet set from the state */
  double t0, t1;

  /* adaptive steps (adaptive.c); grid holds the accepted times */
  bool adaptive;
  double rtol, atol, dt0, dt_min, dt_max;
  int64_t grid_cap;  /* most steps the grid (and the gradient memory) holds */
  double h_next;     /* the controller's next trial step */
  double err_prev;   /* the last accepted error norm (PI controller) */
  double *save_at;   /* the save-at times (copied), targets of the steps */
  int64_t save_next; /* first save-at time not yet reached */
  double *rej;       /* general noise: ends of rejected steps still ahead, decreasing */
  int n_rej;         /* (NSDE__MAX_REJ at most) */

  /* statistics (nsde_solver_get_stats) */
  int64_t n_rejected, n_drift, n_draws;

  /* gradients (grad.c) */
  enum nsde_grad_strategy grad;
  bool want_pg;        /* the backward pass returns the diffusion's parameter gradients */
  int rec_n;           /* arrays per step record */
  enum buf rec_buf[2]; /* which buffers a record copies */
  void *tape;          /* STORE_ALL: records; CHECKPOINT: segment records */
  void *dw_tape;       /* the records' Brownian increments (NULL: drawn again) */
  size_t dw_rec;       /* bytes per record in dw_tape */
  int64_t tape_first;  /* step index of tape slot 0 while recording */
  int64_t tape_end;    /* steps from this one on have no increments in dw_tape */
  int64_t tape_slots;
  int rec_shift; /* step n's record lies in slot n - tape_first + rec_shift */
  bool recording;
  void *ckpt; /* CHECKPOINT: states every ck_every steps */
  int64_t ck_every, n_ckpt;
  int ck_arrays;   /* 1, or 2 for a two-state scheme (y, z) */
  void *gbuf[G_N]; /* backward work arrays */
  void *pscratch;  /* parameter-gradient scratch (2 x (np_drift + np_diff)) */
  void *cgm;       /* general noise: the diffusion's cotangent (numel x m) */
  bool grad_ready; /* a completed nsde_solve() the tape belongs to */
  uint64_t param_hash;
};

/* One step (backwards = 1: a reversible scheme run backwards) from s->step on
 * the grid: compute, refuse non-finite values, commit. */
enum nsde_status nsde__solver_step(struct nsde_solver *s, int backwards);
/* The two halves: compute the step from t to t_next into B_NEXT (the state
 * and the time untouched; *bad = number of non-finite new values), and
 * commit it (record it for gradients, make B_NEXT current, advance). */
enum nsde_status nsde__solver_step_compute(struct nsde_solver *s, double t, double t_next,
                                           int backwards, int64_t *bad);
void nsde__solver_step_commit(struct nsde_solver *s, int backwards);
/* Drift at (t, x) -> f and diffusion -> g (g NULL: skip). */
enum nsde_status nsde__solver_eval_fg(struct nsde_solver *s, double t, const void *x, void *f,
                                      void *g);
/* Copy between a user tensor of the state's shape (any strides) and a
 * contiguous solver array. */
void nsde__solver_xfer(struct nsde_solver *s, struct nsde_tensor *user, void *buf, bool to_user);
enum nsde_status nsde__solver_cb_fail(struct nsde_solver *s, const char *which, int rc, double t);

/* Number of NaN or infinite values among the n of p. */
int64_t nsde__count_nonfinite(enum nsde_dtype dtype, int64_t n, const void *p, int threads);

#endif
