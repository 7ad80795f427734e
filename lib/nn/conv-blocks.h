/* Register blocks of the convolution kernels (conv-direct.c, conv-wino.c):
 * R rows x NB vectors of accumulators, filled by rank-1 updates. Every
 * function is inlined with constant R and NB, so the accumulators stay in
 * registers. Not installed.
 *
 * The kernels are compiled twice from the same source: for AVX-512 (vf is
 * 16 floats, names end in _avx512) and, with NSDE_ISA_AVX2 defined (the
 * -avx2.c twins), for AVX2 + FMA (vf is 8 floats, _avx2). The data layouts
 * (channels blocked by 16, weights by 64 output channels) are the same for
 * both; only the register blocks differ. Lanes never mix: each output float
 * is summed in an order fixed by the layer's shape, the same for both
 * instruction sets and any block or thread, so the two builds give the same
 * bits.
 * SPDX-License-Identifier: MIT */
#ifndef NSDE_CONV_BLOCKS_H
#define NSDE_CONV_BLOCKS_H

/* HAVE_X86: the kernels can be compiled here (chosen at run time); TGT and
 * INL mark the functions built for them; ISA(name) is name's variant for
 * the instruction set of this compilation; VL the floats in a vector. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <stdint.h>
#define HAVE_X86 1
#define INL __attribute__((always_inline)) inline

#if defined(NSDE_ISA_AVX2) || defined(NSDE_ISA_EMU512)
#define NSDE_ISA_TWIN 1 /* a second compilation: the kernels only */
#endif

#ifdef NSDE_ISA_EMU512
/* Tests only (tests/emu512-*.c): the AVX-512 kernels' code - 16-float
 * vectors and their register blocks - on pairs of AVX2 registers, so that a
 * CPU without AVX-512 can check their results bit for bit. */
#define TGT __attribute__((target("avx2,fma")))
#define ISA(name) name##_emu512
#define VL 16
typedef struct {
  __m256 lo, hi;
} vf;
#define NSDE__EMU static inline TGT __attribute__((always_inline)) vf
NSDE__EMU vf_load(const float *p)
{
  return (vf){_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
}
static inline TGT __attribute__((always_inline)) void vf_store(float *p, vf a)
{
  _mm256_storeu_ps(p, a.lo);
  _mm256_storeu_ps(p + 8, a.hi);
}
NSDE__EMU vf_add(vf a, vf b)
{
  return (vf){_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)};
}
NSDE__EMU vf_sub(vf a, vf b)
{
  return (vf){_mm256_sub_ps(a.lo, b.lo), _mm256_sub_ps(a.hi, b.hi)};
}
NSDE__EMU vf_mul(vf a, vf b)
{
  return (vf){_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)};
}
NSDE__EMU vf_fmadd(vf a, vf b, vf c)
{
  return (vf){_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
}
NSDE__EMU vf_set1(float x)
{
  return (vf){_mm256_set1_ps(x), _mm256_set1_ps(x)};
}
NSDE__EMU vf_zero(void)
{
  return (vf){_mm256_setzero_ps(), _mm256_setzero_ps()};
}
#undef NSDE__EMU
#elif defined(NSDE_ISA_AVX2)
#define TGT __attribute__((target("avx2,fma")))
#define ISA(name) name##_avx2
#define VL 8
typedef __m256 vf;
#define vf_load _mm256_loadu_ps
#define vf_store _mm256_storeu_ps
#define vf_add _mm256_add_ps
#define vf_sub _mm256_sub_ps
#define vf_mul _mm256_mul_ps
#define vf_fmadd _mm256_fmadd_ps
#define vf_set1 _mm256_set1_ps
#define vf_zero _mm256_setzero_ps
#else
#define TGT __attribute__((target("avx512f")))
#define ISA(name) name##_avx512
#define VL 16
typedef __m512 vf;
#define vf_load _mm512_loadu_ps
#define vf_store _mm512_storeu_ps
#define vf_add _mm512_add_ps
#define vf_sub _mm512_sub_ps
#define vf_mul _mm512_mul_ps
#define vf_fmadd _mm512_fmadd_ps
#define vf_set1 _mm512_set1_ps
#define vf_zero _mm512_setzero_ps
#endif

/* Vectors per block of 16 channels (the layouts' unit). */
#define V16 (16 / VL)

#define NSDE__BLK static inline TGT __attribute__((always_inline))

NSDE__BLK void nsde__blk_zero(const int R, const int NB, vf acc[16][4])
{
#pragma GCC unroll 16
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int j = 0; j < NB; j++)
      acc[r][j] = vf_zero();
}

/* v[j] = p[VL j], j < NB */
NSDE__BLK void nsde__blk_load(const int NB, const float *p, vf v[4])
{
#pragma GCC unroll 4
  for (int j = 0; j < NB; j++)
    v[j] = vf_load(p + VL * j);
}

/* acc[r][j] += b[r * bstride] v[j] for r < R, j < NB */
NSDE__BLK void nsde__blk_rank1(const int R, const int NB, vf acc[16][4], const float *restrict b,
                               const int64_t bstride, const vf *v)
{
#pragma GCC unroll 16
  for (int r = 0; r < R; r++) {
    const vf bb = vf_set1(b[r * bstride]);
#pragma GCC unroll 4
    for (int j = 0; j < NB; j++)
      acc[r][j] = vf_fmadd(bb, v[j], acc[r][j]);
  }
}

/* out[p cout + VL j] = y + bias[VL j] + tv tr[p cout + VL j], bias and tr
 * optional: the Winograd output transforms' last step */
NSDE__BLK void nsde__blk_epilogue(vf y, const float *bias, const float *tr, vf tv, int64_t p,
                                  int cout, int j, float *out)
{
  if (bias)
    y = vf_add(y, vf_load(bias + VL * j));
  if (tr)
    y = vf_add(y, vf_mul(tv, vf_load(tr + p * cout + VL * j)));
  vf_store(out + p * cout + VL * j, y);
}

/* d[r * rs + VL j] = acc[r][j], or += with add */
NSDE__BLK void nsde__blk_store(const int R, const int NB, vf acc[16][4], float *d, const int64_t rs,
                               const int add)
{
#pragma GCC unroll 16
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int j = 0; j < NB; j++) {
      float *p = d + r * rs + VL * j;
      vf_store(p, add ? vf_add(vf_load(p), acc[r][j]) : acc[r][j]);
    }
}
#else
#define HAVE_X86 0
#endif

#endif
