/**
 * @file
 * libnsde - Neural stochastic differential equations in C.
 * SPDX-License-Identifier: MIT
 *
 * Worked example: geometric Brownian motion dx = mu x dt + sigma x dW,
 * 1000 paths, Euler-Maruyama, 100 steps (error checks shortened; the
 * compiler warns about the dropped statuses; examples/01-solve.c checks them).
 *
 * @code
 *   #include <nsde/nsde.h>
 *
 *   struct nsde_context *ctx;  nsde_context_new(&ctx);
 *   struct nsde_func *f, *g;
 *   nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT64, 0.5, 0.0, &f);    // f = 0.5 x
 *   nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT64, 0.8, &g); // G = 0.8 x
 *   struct nsde_sde *sde;
 *   nsde_sde_new(ctx, f, g, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_ITO, &sde);
 *   struct nsde_solver_config cfg;  nsde_solver_config_init(&cfg);
 *   cfg.n_steps = 100;  cfg.seed = 42;
 *   int64_t shape[2] = {1000, 1};
 *   struct nsde_solver *solver;
 *   nsde_solver_new(sde, &cfg, 2, shape, &solver);
 *   struct nsde_tensor *x;  nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &x);
 *   nsde_tensor_fill(x, 1.0);
 *   if (nsde_solve(solver, x, NULL) != NSDE_OK)
 *       fprintf(stderr, "%s\n", nsde_context_last_error(ctx));
 *   // ... read nsde_tensor_data(x), then free everything:
 *   nsde_tensor_free(x); nsde_solver_free(solver); nsde_sde_free(sde);
 *   nsde_func_free(g); nsde_func_free(f); nsde_context_free(ctx);
 * @endcode
 *
 * Link with `pkg-config --cflags --libs nsde`.
 */
#ifndef NSDE_H
#define NSDE_H

#include <nsde/nsde-version.h>
#include <nsde/nsde-core.h>
#include <nsde/nsde-tensor.h>
#include <nsde/nsde-brownian.h>
#include <nsde/nsde-func.h>
#include <nsde/nsde-sde.h>
#include <nsde/nsde-net.h>
#include <nsde/nsde-model.h>
#include <nsde/nsde-optim.h>
#include <nsde/nsde-data.h>
#include <nsde/nsde-file.h>

#endif
