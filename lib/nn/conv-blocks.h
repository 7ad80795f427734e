/* Register blocks of the AVX-512 convolution kernels (conv-direct.c,
 * conv-wino.c): R rows x NB vectors of 16 floats of accumulators, filled by
 * rank-1 updates. Every function is inlined with constant R and NB, so the
 * accumulators stay in registers. Not installed.
 * SPDX-License-Identifier: MIT */
#ifndef NSDE_CONV_BLOCKS_H
#define NSDE_CONV_BLOCKS_H

/* HAVE_X86: the AVX-512 kernels can be compiled here (chosen at run time);
 * TGT and INL mark the functions built for them. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <stdint.h>
#define HAVE_X86 1
#define TGT __attribute__((target("avx512f")))
#define INL __attribute__((always_inline)) inline

#define NSDE__BLK static inline __attribute__((target("avx512f"), always_inline))

NSDE__BLK void nsde__blk_zero(const int R, const int NB, __m512 acc[16][4])
{
#pragma GCC unroll 16
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int j = 0; j < NB; j++)
      acc[r][j] = _mm512_setzero_ps();
}

/* v[j] = p[16 j], j < NB */
NSDE__BLK void nsde__blk_load(const int NB, const float *p, __m512 v[4])
{
#pragma GCC unroll 4
  for (int j = 0; j < NB; j++)
    v[j] = _mm512_loadu_ps(p + 16 * j);
}

/* acc[r][j] += b[r * bstride] v[j] for r < R, j < NB */
NSDE__BLK void nsde__blk_rank1(const int R, const int NB, __m512 acc[16][4],
                               const float *restrict b, const int64_t bstride, const __m512 *v)
{
#pragma GCC unroll 16
  for (int r = 0; r < R; r++) {
    const __m512 bb = _mm512_set1_ps(b[r * bstride]);
#pragma GCC unroll 4
    for (int j = 0; j < NB; j++)
      acc[r][j] = _mm512_fmadd_ps(bb, v[j], acc[r][j]);
  }
}

/* d[r * rs + 16 j] = acc[r][j], or += with add */
NSDE__BLK void nsde__blk_store(const int R, const int NB, __m512 acc[16][4], float *d,
                               const int64_t rs, const int add)
{
#pragma GCC unroll 16
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int j = 0; j < NB; j++) {
      float *p = d + r * rs + 16 * j;
      _mm512_storeu_ps(p, add ? _mm512_add_ps(_mm512_loadu_ps(p), acc[r][j]) : acc[r][j]);
    }
}
#else
#define HAVE_X86 0
#endif

#endif
