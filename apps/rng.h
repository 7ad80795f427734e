/*
 * The programs' own random streams (corruptions, attack starts): SplitMix64
 * over a 64-bit state, uniform in (0, 1) and standard normal. Not the
 * library's Brownian generator, which is counter-based (Philox).
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_APPS_RNG_H
#define NSDE_APPS_RNG_H

#include <math.h>
#include <stdint.h>

/* Uniform in (0, 1): the state advances by the golden-ratio increment. */
static inline double ex_u01(uint64_t *state)
{
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return ((double)((z ^ (z >> 31)) >> 11) + 0.5) * 0x1.0p-53;
}

/* Standard normal (Box-Muller, the radius drawn first). */
static inline double ex_normal(uint64_t *state)
{
  const double r = sqrt(-2.0 * log(ex_u01(state)));
  return r * cos(6.283185307179586 * ex_u01(state));
}

#endif
