/* The elementwise kernels (lib/solver-kernels.h) for float and double.
 * SPDX-License-Identifier: MIT */
#ifndef NSDE_SCHEME_KERNELS_H
#define NSDE_SCHEME_KERNELS_H
#define T float
#define SFX _f32
#include "solver-kernels.h"
#undef T
#undef SFX
#define T double
#define SFX _f64
#include "solver-kernels.h"
#undef T
#undef SFX
#endif
