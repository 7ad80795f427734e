/* What the solver's constructor (solver-new.c) asks of the gradient engine
 * (grad.c) and the adaptive controller (adaptive.c): checks, sizes, and the
 * hooks they install. solver.c does not include this. Not installed.
 * SPDX-License-Identifier: MIT */
#ifndef NSDE_SOLVER_BUILD_H
#define NSDE_SOLVER_BUILD_H

#include "solver-private.h"

/* adaptive.c: check the adaptive options (c->adaptive set); *cap = max_steps. */
enum nsde_status nsde__adaptive_plan(const struct nsde_sde *sde, const struct nsde_solver_config *c,
                                     int64_t *cap);
/* adaptive.c: the hooks of adaptive steps. */
extern const struct nsde__stepper nsde__adaptive_stepper;

/* grad.c: validate the gradient options and size their memory: the bytes of
 * the tape, checkpoints and work arrays, and the checkpoint interval. */
enum nsde_status nsde__grad_plan(const struct nsde_sde *sde, const struct nsde_solver_config *c,
                                 int64_t n_grid, int64_t n, int64_t wn, size_t *bytes,
                                 int64_t *ck_every);
/* grad.c: wire the gradient memory (from nsde__grad_plan) into a new solver
 * and install its hooks (s->rec). */
void nsde__grad_setup(struct nsde_solver *s, char *mem, int64_t ck_every);

#endif
