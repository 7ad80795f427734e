/* Brownian internals shared with the solvers. Not installed. SPDX-License-Identifier: MIT */
#ifndef NSDE_BROWNIAN_PRIVATE_H
#define NSDE_BROWNIAN_PRIVATE_H

#include "nsde-private.h"

struct nsde_brownian {
  struct nsde_context *ctx;
  uint64_t seed;
  double t0, t1, h;
  int64_t n_steps, batch, dim, batch_offset;
};

/* Fill dw[batch*dim] (and levy, if not NULL) with W(s,t) and H(s,t) in dtype,
 * on ctx's threads. The caller has checked t0 <= s < t <= t1. */
void nsde__brownian_fill(const struct nsde_brownian *bm, double s, double t, enum nsde_dtype dtype,
                         void *dw, void *levy);

/* Initialise bm in place (no allocation): used by solvers that embed one. */
enum nsde_status nsde__brownian_init(struct nsde_context *ctx, struct nsde_brownian *bm,
                                     const struct nsde_brownian_config *cfg);

#endif
