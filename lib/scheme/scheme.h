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

struct nsde__scheme {
  const char *name;
  /* Buffers the forward step uses beyond B_CUR, B_NEXT, B_F0 and (with
   * noise) B_G0: a bit per enum buf. */
  unsigned (*bufs)(bool noise);
  /* What a store-all record of one step keeps (the step's input state and
   * intermediate points), in this order. */
  int rec_n;
  enum buf rec[2];
  /* Whether the scheme solves this SDE (calculus, noise, callbacks). */
  enum nsde_status (*check)(struct nsde_context *ctx, const struct nsde_sde *sde);
  /* The step from t to t_next (dW, and the Levy area if the solver keeps
   * one, already in s->dw, s->hl) into B_NEXT; *bad = non-finite values. */
  enum nsde_status (*step)(struct nsde_solver *s, double t, double t_next, int backwards,
                           int64_t *bad);
  /* The backward step: G_A holds dL/dx_{n+1} on entry, dL/dx_n on return;
   * r0, r1 the step's record; parameter gradients added to pd, pg. */
  enum nsde_status (*back)(struct nsde_solver *s, int64_t n, double t, double h, const void *r0,
                           const void *r1, void *pd, void *pg);
  /* NSDE_GRAD_ADJOINT's step n (NULL: the scheme has no adjoint): G_X0 holds
   * the state and G_A its cotangent at t_{n+1} on entry, at t_n on return;
   * pd2, pg2 are scratch for np_d, np_g parameter gradients. */
  enum nsde_status (*adjoint)(struct nsde_solver *s, int64_t n, void *pd, void *pg, void *pd2,
                              void *pg2, size_t np_d, size_t np_g);
  /* Whether step and back handle general (matrix) noise, s->m > 0. */
  bool general_noise;
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

/* The descriptor of a scheme; NULL for an unknown value. */
const struct nsde__scheme *nsde__scheme_of(enum nsde_scheme scheme);

/* ---- helpers of the forward steps ----------------------------------------- */

/* NSDE_ERR_UNSUPPORTED, naming the scheme and the other calculus's schemes,
 * unless the SDE is of the calculus the scheme solves or its noise commutes
 * (none or additive: the two calculi agree). */
enum nsde_status nsde__scheme_calculus(struct nsde_context *ctx, const struct nsde_sde *sde,
                                       enum nsde_calculus calculus, const char *name);

#define NSDE__TYPED(s, expr_f32, expr_f64) ((s)->dtype == NSDE_DTYPE_FLOAT32 ? (expr_f32) : (expr_f64))

/* ---- helpers of the backward steps (grad.c) -------------------------------- */

/* acc += vjp_f(x; cf) + vjp_G(x; cg) + vjp_G'(x; cgp) at time t, parameter
 * gradients added to pd / pg (details in grad.c). */
enum nsde_status nsde__vjp_all(struct nsde_solver *s, int64_t step, double t, const void *x,
                               void *cf, void *cg, void *cgp, void *acc, void *pd, void *pg);
enum nsde_status nsde__vjp_fail(struct nsde_solver *s, const char *which, int rc, int64_t step);
/* General noise: the outer product scale c dW^T per batch element, in s->cgm. */
void *nsde__outer_dw(struct nsde_solver *s, const void *c, double scale);
void nsde__grad_zero(struct nsde_solver *s, void *p);
/* p[i] += v in the dtype. */
void nsde__param_add(enum nsde_dtype dt, void *p, int i, double v);

/* Elementwise loops over the n state elements: BODY sees T (float or
 * double), i, R(p) (element i of array p), WV (the Brownian increment of
 * element i, 0 without noise) and HV (its Levy area). */
#define EW(BODY)                                                                        \
  do {                                                                                  \
    const int64_t n_ = s->n;                                                            \
    const int nt_ = s->ctx->threads;                                                    \
    (void)nt_;                                                                          \
    if (s->dtype == NSDE_DTYPE_FLOAT32) {                                               \
      typedef float T;                                                                  \
      NSDE_PAR_FOR(nt_ > 1 && n_ > NSDE_PAR_MIN,                                        \
                   "omp parallel for num_threads(nt_)",                                 \
      for (int64_t i = 0; i < n_; i++) { BODY });                                       \
    } else {                                                                            \
      typedef double T;                                                                 \
      NSDE_PAR_FOR(nt_ > 1 && n_ > NSDE_PAR_MIN,                                        \
                   "omp parallel for num_threads(nt_)",                                 \
      for (int64_t i = 0; i < n_; i++) { BODY });                                       \
    }                                                                                   \
  } while (0)
#define R(p) (((T *)(p))[i])
#define WV (s->dw ? ((const T *)s->dw)[s->scalar ? i / s->dim : i] : (T)0)
#define HV (((const T *)s->hl)[i])

#endif
