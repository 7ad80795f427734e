/*
 * Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3", SC 2011) and the Gaussian pairs of the Brownian stream, version 1.
 * Not installed.
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_PHILOX_H
#define NSDE_PHILOX_H

#include <math.h>
#include <stdint.h>

static inline void nsde__philox4x32_10(const uint32_t ctr_in[4], uint64_t seed, uint32_t out[4])
{
  uint32_t c0 = ctr_in[0], c1 = ctr_in[1], c2 = ctr_in[2], c3 = ctr_in[3];
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);

  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0;
    uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
    uint32_t n1 = (uint32_t)p1;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    uint32_t n3 = (uint32_t)p0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/*
 * Two independent standard normals from counter (e, b, node, lane) under
 * key seed: Box-Muller on two 53-bit uniforms made of the four words.
 * u1 lies in (0, 1), so the logarithm is finite.
 */
static inline void nsde__normal_pair(uint64_t seed, uint32_t e, uint32_t b, uint32_t step,
                                     uint32_t node, double *z1, double *z2)
{
  const uint32_t ctr[4] = {e, b, step, node};
  uint32_t w[4];
  double u1, u2, r, s, c;

  nsde__philox4x32_10(ctr, seed, w);
  u1 = ((double)((((uint64_t)w[0] << 32) | w[1]) >> 11) + 0.5) * 0x1.0p-53;
  u2 = (double)((((uint64_t)w[2] << 32) | w[3]) >> 11) * 0x1.0p-53;
  r = sqrt(-2.0 * log(u1));
  s = sin(6.283185307179586476925286766559 * u2);
  c = cos(6.283185307179586476925286766559 * u2);
  *z1 = r * c;
  *z2 = r * s;
}

#endif
