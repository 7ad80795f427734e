/*
 * The model module's internals (lib/model/): the model object, shared by the
 * model, its passes and its file format. Not installed.
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_MODEL_PRIVATE_H
#define NSDE_MODEL_PRIVATE_H

#include "nsde-private.h"

#define MAX_SOLVERS 6

struct msolver {
  int64_t batch;
  int noisy, grad;
  struct nsde_solver *s;
};

struct nsde_model {
  struct nsde_context *ctx;
  struct nsde_model_config cfg;
  struct nsde_net *stem, *drift, *head;
  struct nsde_func *f, *g;
  struct nsde_sde *sde_noisy, *sde_ode;
  struct msolver sol[MAX_SOLVERS];
  int nsol;
  int64_t np, off_stem, off_drift, off_head, np_stem, np_drift, np_head;
  float *params, *grads;
  int sc, sh, sw;
  int64_t state_sz;
  float *h, *dh, *dh0, *logits, *dlogits;
};

/* NSDE_OK when c is a configuration nsde_model_new() builds; else the reason. */
enum nsde_status nsde__model_check_config(struct nsde_context *ctx,
                                          const struct nsde_model_config *c);
/* Copy what the nets and funcs read from the flat parameters (a learned sigma). */
void nsde__model_sync_params(struct nsde_model *m);
/* The cached solver for (batch, noise on/off, gradients on/off); NULL on failure
 * (the reason on the context). */
struct nsde_solver *nsde__model_solver(struct nsde_model *m, int64_t batch, int noisy, int grad);

#endif
