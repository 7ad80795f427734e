/*
 * One integration scheme per file (lib/scheme/, one .c each): its checks, its forward
 * step and its backward step (the reverse-mode derivative of the same
 * formula) side by side, behind one descriptor. The solver (solver.c,
 * adaptive.c) and the gradient engine (grad.c) reach a scheme only through
 * it. Not installed.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_SCHEME_H
#define NSDE_SCHEME_H

#include <math.h>
#include <string.h>

#include "solver-private.h"

/* The schemes, one line each: the public enum value and the descriptor's
 * name (nsde__scheme_<name>, defined in lib/scheme/<file>.c). The registry
 * (scheme.c) is indexed by the enum; its order is the order of the names in
 * messages. */
#define NSDE__SCHEMES(X)                                                                           \
  X(NSDE_SCHEME_EULER_MARUYAMA, euler_maruyama)                                                    \
  X(NSDE_SCHEME_MILSTEIN, milstein)                                                                \
  X(NSDE_SCHEME_HEUN, heun)                                                                        \
  X(NSDE_SCHEME_REVERSIBLE_HEUN, reversible_heun)                                                  \
  X(NSDE_SCHEME_SRA1, sra1)

/* Every descriptor is written with designated initializers; a slot left out
 * is 0, false or NULL, which is always the "does not" answer. */
struct nsde__scheme {
  /* The name in messages ("reversible Heun"). */
  const char *name;
  /* The calculus of the SDEs it solves, NSDE_CALCULUS_ITO or
   * NSDE_CALCULUS_STRATONOVICH (an SDE whose noise commutes - none or
   * additive - is solved under either); NSDE__ANY_CALCULUS: check decides. */
  int calculus;
  /* Buffers the forward step uses beyond B_CUR, B_NEXT, B_F0 and (with
   * noise) B_G0: a bit per enum buf. */
  unsigned (*bufs)(bool noise);
  /* What a store-all record of one step keeps (the step's input state and
   * intermediate points), in this order. */
  int rec_n;
  enum buf rec[2];
  /* Whether the scheme solves this SDE beyond calculus and general noise
   * (noise types, callbacks); NULL: it does. */
  enum nsde_status (*check)(struct nsde_context *ctx, const struct nsde_sde *sde);
  /* The step from t to t_next (dW, and the Levy area if levy_area, already
   * in s->dw, s->hl) into B_NEXT; *bad = non-finite values. backwards (only
   * if reversible): undo the step from t_next back to t. */
  enum nsde_status (*step)(struct nsde_solver *s, double t, double t_next, int backwards,
                           int64_t *bad);
  /* The backward step: G_A holds dL/dx_{n+1} on entry, dL/dx_n on return;
   * r0, r1 the step's record; parameter gradients added to pd, pg. */
  enum nsde_status (*back)(struct nsde_solver *s, int64_t n, double t, double h, const void *r0,
                           const void *r1, void *pd, void *pg);
  /* two_state only: after the last backward step, add to G_A the cotangent
   * that reached the second state's start z0 (= y0) and the functions
   * evaluated there. */
  enum nsde_status (*back_initial)(struct nsde_solver *s, const void *z0, void *pd, void *pg);
  /* NSDE_GRAD_ADJOINT's step n (NULL: the scheme has no adjoint): G_X0 holds
   * the state and G_A its cotangent at t_{n+1} on entry, at t_n on return;
   * pd2, pg2 are scratch for np_d, np_g parameter gradients. */
  enum nsde_status (*adjoint)(struct nsde_solver *s, int64_t n, void *pd, void *pg, void *pd2,
                              void *pg2, size_t np_d, size_t np_g);
  /* Whether step and back handle general (matrix) noise, s->m > 0. */
  bool general_noise;
  /* Whether a step draws the space-time Levy area beside dW (into s->hl):
   * the solver keeps an array for it, and a record cannot stand in for the
   * draw, which is two arrays. */
  bool levy_area;
  /* Whether the scheme carries a second state z (B_Z, with f(z), g(z) in
   * B_F0, B_G0) from step to step, starting at z0 = y0 when s->z_fresh:
   * checkpoints keep z, the record of step n sits at tape slot n + 1 (slot
   * 0: z0), and back_initial finishes the backward pass. */
  bool two_state;
  /* Whether step(backwards = 1) undoes a step exactly up to rounding:
   * nsde_solver_reconstruct and NSDE_GRAD_REVERSIBLE. */
  bool reversible;
  /* Whether back needs the diffusion's diag_deriv_vjp (and, with dropout
   * noise, second derivatives of the drift, which no callback gives). */
  bool back_diag_vjp;
  /* Adaptive steps (adaptive.c): how the local error is estimated; for
   * NSDE__EST_EMBEDDED the buffer the step leaves its lower-order solution
   * in (-1: the Euler-Maruyama step from the same f, g and dW); whether
   * state-dependent noise is accepted (false: the adaptive limit is biased);
   * and the exponent q of the local error h^q without noise, with additive
   * noise and with state-dependent noise. */
  struct {
    enum { NSDE__EST_NONE, NSDE__EST_EMBEDDED, NSDE__EST_DOUBLING } kind;
    int lower;
    bool state_noise;
    double q[3];
  } adapt;
};

#define NSDE__ANY_CALCULUS (-1)

/* The descriptor of a scheme; NULL for an unknown value. */
const struct nsde__scheme *nsde__scheme_of(enum nsde_scheme scheme);

/* Whether the scheme solves this SDE: known, general noise if the SDE has
 * it, the calculus, then the scheme's own check; an error names both. */
enum nsde_status nsde__scheme_check(struct nsde_context *ctx, const struct nsde_sde *sde,
                                    enum nsde_scheme scheme);

/* The names of the schemes for which pred holds, "A, B or C", into buf. */
const char *nsde__scheme_names(char *buf, size_t cap, bool (*pred)(const struct nsde__scheme *));
bool nsde__scheme_reversible(const struct nsde__scheme *sch);

/* ---- helpers of the forward steps ----------------------------------------- */

/* Exchange two buffer pointers (the step's rotations of s->buf). */
#define NSDE__SWAP(a, b)                                                                           \
  do {                                                                                             \
    void *tmp_ = (a);                                                                              \
    (a) = (b);                                                                                     \
    (b) = tmp_;                                                                                    \
  } while (0)

#define NSDE__TYPED(s, expr_f32, expr_f64)                                                         \
  ((s)->dtype == NSDE_DTYPE_FLOAT32 ? (expr_f32) : (expr_f64))

/* ---- helpers of the backward steps (vjp.c) --------------------------------- */

/* acc += vjp_f(x; cf) + vjp_G(x; cg) + vjp_G'(x; cgp) at time t, parameter
 * gradients added to pd / pg (details in vjp.c). */
enum nsde_status nsde__vjp_all(struct nsde_solver *s, int64_t step, double t, const void *x,
                               void *cf, void *cg, void *cgp, void *acc, void *pd, void *pg);
enum nsde_status nsde__vjp_fail(struct nsde_solver *s, const char *which, int rc, int64_t step);
/* General noise: the outer product scale c dW^T per batch element, in s->cgm. */
void *nsde__outer_dw(struct nsde_solver *s, const void *c, double scale);
void nsde__grad_zero(struct nsde_solver *s, void *p);

#endif
