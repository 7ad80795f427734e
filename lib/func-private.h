/* Function objects and SDEs, internals. Not installed. SPDX-License-Identifier: MIT */
#ifndef NSDE_FUNC_PRIVATE_H
#define NSDE_FUNC_PRIVATE_H

#include "nsde-private.h"

enum nsde__func_kind {
  NSDE__FUNC_USER = 0,
  NSDE__FUNC_LINEAR,         /* a*x + b */
  NSDE__FUNC_ADDITIVE,       /* sigma */
  NSDE__FUNC_MULTIPLICATIVE, /* sigma*x */
  NSDE__FUNC_DROPOUT         /* sigma*f(t,x), f the drift */
};

struct nsde_func {
  struct nsde_context *ctx;
  enum nsde_dtype dtype;
  enum nsde__func_kind kind;
  struct nsde_func_ops ops;
  void *user;
  int64_t n_params;
  void *params;
  int64_t out_m; /* outputs per state element: 1, or m for a matrix func */
  bool matrix;   /* made by nsde_func_new_matrix (general noise) */
  union {
    float f[2];
    double d[2];
  } own; /* parameters of the built-ins */
};

struct nsde_sde {
  struct nsde_context *ctx;
  struct nsde_func *drift, *diffusion;
  enum nsde_noise noise;
  enum nsde_calculus calculus;
  enum nsde_dtype dtype;
};

/* out = f(t, x) for batch*dim elements. For NSDE__FUNC_DROPOUT, fx must hold
 * the drift value at the same point. Returns the callback's value (0 ok). */
int nsde__func_eval(const struct nsde_func *f, double t, int64_t batch, int64_t dim, const void *x,
                    const void *fx, void *out);

/* out_i = d f_i / d x_i. For DROPOUT, dfx must hold the drift's diagonal. */
int nsde__func_diag(const struct nsde_func *f, double t, int64_t batch, int64_t dim, const void *x,
                    const void *dfx, void *out);

/* Whether nsde__func_diag() can be evaluated without a drift diagonal. */
bool nsde__func_has_diag(const struct nsde_func *f);

/* Vector-Jacobian products (not for NSDE__FUNC_DROPOUT, which the solver
 * folds into its drift): grad_x = v^T df/dx (overwrite), grad_params += v^T
 * df/dp (in the func's dtype; NULL skips). Returns the callback's value. */
int nsde__func_vjp(const struct nsde_func *f, double t, int64_t batch, int64_t dim, const void *x,
                   const void *v, void *grad_x, void *grad_params);
/* The same for the map x -> diag_deriv(x). */
int nsde__func_diag_vjp(const struct nsde_func *f, double t, int64_t batch, int64_t dim,
                        const void *x, const void *v, void *grad_x, void *grad_params);
bool nsde__func_has_vjp(const struct nsde_func *f);
bool nsde__func_has_diag_vjp(const struct nsde_func *f);
/* Sum of v[i] * (x ? x[i] : 1) in double, sequential (deterministic). */
double nsde__dot(enum nsde_dtype dtype, int64_t n, const void *v, const void *x);

#endif
