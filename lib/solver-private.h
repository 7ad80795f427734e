/* Solver internals shared by solver.c and grad.c. Not installed.
 * SPDX-License-Identifier: MIT */
#ifndef NSDE_SOLVER_PRIVATE_H
#define NSDE_SOLVER_PRIVATE_H

#include "brownian-private.h"
#include "func-private.h"

#define NSDE__MAX_REJ 64 /* adaptive, general noise: pending rejected ends kept */

enum buf {
  B_CUR, B_NEXT, B_F0, B_G0, B_F1, B_G1, B_XT, B_GP, B_DFX, B_Z, B_Z1,
  B_X0, B_ERR, /* adaptive: the state before a trial step, the comparison solution */
  B_NBUF
};

/* The backward pass's work arrays (grad.c, lib/scheme/): the cotangent A of
 * the state, Z (reversible Heun's second state), the cotangents handed to the
 * drift, diffusion and its derivative, temporaries, and the adjoint's state. */
enum gb { G_A, G_Z, G_CF, G_CG, G_CGP, G_T1, G_T2, G_TMP, G_F, G_G, G_GP, G_X2, G_A2, G_X0, G_N };

struct nsde_solver {
  struct nsde_context *ctx;
  const struct nsde_sde *sde;
  enum nsde_scheme scheme;
  const struct nsde__scheme *sch; /* its steps (lib/scheme/) */
  enum nsde_dtype dtype;
  size_t esz;
  int rank;
  int64_t shape[NSDE_MAX_RANK];
  int64_t batch, dim, n, wn;
  int scalar;
  int64_t m;        /* general noise: Brownian dimension per batch element (0: other noise) */
  int64_t n_grid;   /* steps */
  double *grid;     /* n_grid + 1 times */
  int64_t n_save;
  int64_t *save_idx; /* grid index of each save-at time */
  struct nsde_brownian bm;
  void *buf[B_NBUF];
  void *dw, *hl;    /* this step's increments: dw_own, or a slot of dw_tape */
  void *dw_own;
  int64_t dw_step;  /* the step whose increments dw_own holds after a backward step, or -1 */
  void *ws;
  size_t ws_bytes;
  int64_t step;
  bool rev_fresh;   /* reversible Heun: z not yet set from the state */
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
  int rec_n;              /* arrays per step record */
  enum buf rec_buf[2];    /* which buffers a record copies */
  void *tape;             /* STORE_ALL: records; CHECKPOINT: segment records */
  void *dw_tape;          /* the records' Brownian increments (NULL: drawn again) */
  size_t dw_rec;          /* bytes per record in dw_tape */
  int64_t tape_first;     /* step index of tape slot 0 while recording */
  int64_t tape_slots;
  bool recording;
  void *ckpt;             /* CHECKPOINT: states every ck_every steps */
  int64_t ck_every, n_ckpt;
  int ck_arrays;          /* 1, or 2 for reversible Heun (y, z) */
  void *gbuf[G_N];        /* backward work arrays */
  void *pscratch;         /* parameter-gradient scratch (2 x (np_drift + np_diff)) */
  void *cgm;              /* general noise: the diffusion's cotangent (numel x m) */
  bool grad_ready;        /* a completed nsde_solve() the tape belongs to */
  uint64_t param_hash;
};


/* One step (backwards = 1: reversible Heun run backwards) from s->step on
 * the grid: compute, refuse non-finite values, commit. */
enum nsde_status nsde__solver_step(struct nsde_solver *s, int backwards);
/* The two halves: compute the step from t to t_next into B_NEXT (the state
 * and the time untouched; *bad = number of non-finite new values), and
 * commit it (record it for gradients, make B_NEXT current, advance). */
enum nsde_status nsde__solver_step_compute(struct nsde_solver *s, double t, double t_next,
                                           int backwards, int64_t *bad);
void nsde__solver_step_commit(struct nsde_solver *s, int backwards);
/* adaptive.c: check the adaptive options (c->adaptive set); *cap = max_steps. */
enum nsde_status nsde__adaptive_plan(const struct nsde_sde *sde, const struct nsde_solver_config *c,
                                     int64_t *cap);
/* adaptive.c: rewind the controller and the save-at bookkeeping to t0. */
void nsde__adaptive_reset(struct nsde_solver *s);
/* adaptive.c: one accepted step (one or two grid steps), trial steps as needed. */
enum nsde_status nsde__adaptive_step(struct nsde_solver *s);

/* Drift at (t, x) -> f and diffusion -> g (g NULL: skip). */
enum nsde_status nsde__solver_eval_fg(struct nsde_solver *s, double t, const void *x, void *f,
                                      void *g);
/* Copy between a user tensor of the state's shape (any strides) and a
 * contiguous solver array. */
void nsde__solver_xfer(struct nsde_solver *s, struct nsde_tensor *user, void *buf, bool to_user);
enum nsde_status nsde__solver_cb_fail(struct nsde_solver *s, const char *which, int rc,
                                      double t);

/* grad.c: validate the gradient options and size their memory: the bytes of
 * the tape, checkpoints and work arrays, and the checkpoint interval. */
enum nsde_status nsde__grad_plan(const struct nsde_sde *sde, const struct nsde_solver_config *c,
                                 int64_t n_grid, int64_t n, int64_t wn, size_t *bytes,
                                 int64_t *ck_every);
/* grad.c: wire the gradient memory (from nsde__grad_plan) into a new solver. */
void nsde__grad_setup(struct nsde_solver *s, char *mem, int64_t ck_every);
/* grad.c: hooks of the forward pass. */
void nsde__grad_before_step(struct nsde_solver *s);
void nsde__grad_record(struct nsde_solver *s, int64_t step);
/* grad.c: where the tape keeps step's Brownian increments (NULL: not kept). */
void *nsde__grad_dw_slot(const struct nsde_solver *s, int64_t step);
uint64_t nsde__grad_param_hash(const struct nsde_solver *s);

/* Number of NaN or infinite values among the n of p. */
int64_t nsde__count_nonfinite(enum nsde_dtype dtype, int64_t n, const void *p);

#endif
