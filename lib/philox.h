/*
 * Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3", SC 2011) and the Gaussian pairs of the Brownian stream, version 1.
 *
 * The normals are computed with libnsde's own branch-free logarithm and
 * sine/cosine (below) rather than libm's, for two reasons: the loops
 * vectorise (16 lanes of AVX-512 at a time), and the stream's bits do not
 * depend on the C library's version. Only correctly rounded IEEE operations
 * are used, and the project compiles without floating-point contraction, so
 * vector lanes and scalar remainders give identical bits.
 *
 * Not installed.
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_PHILOX_H
#define NSDE_PHILOX_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Forced inlining lets each vector-ISA clone of a caller compile its own copy. */
#if defined(__GNUC__)
#define NSDE__INLINE static inline __attribute__((always_inline))
#else
#define NSDE__INLINE static inline
#endif

/* The generator's uses besides the Brownian stream, named once: each puts its
 * tag in counter word 2 ({index low, index high, tag, 0}), under its own seed.
 * (The Brownian stream's counters are {element, batch element, step, node}.)
 * The values are frozen: changing one changes every crop or shuffle made. */
enum nsde__philox_tag {
  NSDE__PHILOX_CROP = 0xA06,        /* nsde_dataset_batch: random-crop offsets */
  NSDE__PHILOX_PERMUTATION = 0x5F1E /* nsde_permutation: the shuffle's keys */
};

NSDE__INLINE void nsde__philox4x32_10(const uint32_t ctr_in[4], uint64_t seed, uint32_t out[4])
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
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/* ln(u) for u in (0, 1], relative error below 1e-15: u = m 2^e with m in
 * [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s), s = (m-1)/(m+1), |s| < 0.172.
 * Integer <-> double conversions are done with bit patterns so that the
 * loop vectorises without AVX-512DQ. */
NSDE__INLINE double nsde__log01(double u)
{
  uint64_t bits, mb, eb;
  double m, e, s, s2, p, big;

  memcpy(&bits, &u, sizeof(bits));
  eb = (bits >> 52) | 0x4330000000000000ULL; /* 2^52 + biased exponent */
  memcpy(&e, &eb, sizeof(e));
  e -= 4503599627370496.0 + 1023.0;
  mb = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL; /* m in [1, 2) */
  memcpy(&m, &mb, sizeof(m));
  /* m above sqrt(2): halve it (exactly: its exponent field minus one; a
   * multiplication by a selected factor kept GCC from vectorising for AVX2) */
  big = m > 1.4142135623730951 ? 1.0 : 0.0;
  mb -= (uint64_t)(m > 1.4142135623730951) << 52;
  memcpy(&m, &mb, sizeof(m));
  e += big;
  s = (m - 1.0) / (m + 1.0);
  s2 = s * s;
  p = 1.0 / 19;
  p = p * s2 + 1.0 / 17;
  p = p * s2 + 1.0 / 15;
  p = p * s2 + 1.0 / 13;
  p = p * s2 + 1.0 / 11;
  p = p * s2 + 1.0 / 9;
  p = p * s2 + 1.0 / 7;
  p = p * s2 + 1.0 / 5;
  p = p * s2 + 1.0 / 3;
  p = p * s2 + 1.0;
  return e * 0.69314718055994530942 + 2.0 * s * p;
}

/* sin and cos of 2 pi u for u in [0, 1): nearest quarter turn q in 0..4
 * (rounding by the 1.5 * 2^52 trick, which vectorises where floor() does
 * not) and a remainder of at most an eighth of a turn. */
NSDE__INLINE void nsde__sincos2pi(double u, double *sn, double *cs)
{
  const double round_c = 6755399441055744.0;
  double y = 4.0 * u, q = (y + round_c) - round_c, r = y - q;
  double t = r * 1.5707963267948966, t2 = t * t;
  double s, c, odd, so, co;

  s = -1.0 / 1307674368000.0; /* -1/15! */
  s = s * t2 + 1.0 / 6227020800.0;
  s = s * t2 - 1.0 / 39916800.0;
  s = s * t2 + 1.0 / 362880.0;
  s = s * t2 - 1.0 / 5040.0;
  s = s * t2 + 1.0 / 120.0;
  s = s * t2 - 1.0 / 6.0;
  s = t + t * t2 * s;
  c = 1.0 / 87178291200.0; /* 1/14! */
  c = c * t2 - 1.0 / 479001600.0;
  c = c * t2 + 1.0 / 3628800.0;
  c = c * t2 - 1.0 / 40320.0;
  c = c * t2 + 1.0 / 720.0;
  c = c * t2 - 1.0 / 24.0;
  c = c * t2 + 0.5;
  c = 1.0 - t2 * c;
  /* rotate by q quarter turns: (s, c) -> (c, -s) -> (-s, -c) -> (-c, s) */
  /* | rather than ||: no branch, so the loop also vectorises for AVX2 */
  odd = ((q == 1.0) | (q == 3.0)) ? 1.0 : 0.0;
  so = odd * c + (1.0 - odd) * s;
  co = odd * s + (1.0 - odd) * c;
  *sn = ((q == 2.0) | (q == 3.0)) ? -so : so;
  *cs = ((q == 1.0) | (q == 2.0)) ? -co : co;
}

/* (hi:lo >> 11) * 2^-53 in [0, 1), through bit patterns (vectorises). */
NSDE__INLINE double nsde__u53(uint32_t hi, uint32_t lo)
{
  uint64_t v = ((((uint64_t)hi << 32) | lo) >> 12) | 0x3ff0000000000000ULL; /* 1 + 52 bits */
  double d;
  memcpy(&d, &v, sizeof(d));
  return (d - 1.0) + (double)(int32_t)(lo >> 11 & 1) * 0x1.0p-53; /* signed: AVX2 converts it */
}

/* Two standard normals from four Philox words (Box-Muller on two 53-bit
 * uniforms; u1 in (0, 1) so the logarithm is finite). */
NSDE__INLINE void nsde__box_muller(uint32_t w0, uint32_t w1, uint32_t w2, uint32_t w3, double *z1,
                                   double *z2)
{
  double u1 = nsde__u53(w0, w1) + 0x1.0p-54, u2 = nsde__u53(w2, w3);
  double r = sqrt(-2.0 * nsde__log01(u1)), s, c;

  nsde__sincos2pi(u2, &s, &c);
  *z1 = r * c;
  *z2 = r * s;
}

/* Block form for counters (e[j], b[j], step, node), j < n: the same values
 * as nsde__normal_pair(), written so the compiler vectorises across j. Each
 * iteration computes two elements (j and j + n/2), giving the core two
 * independent vector chains to interleave through Philox's ten dependent
 * rounds (Zen 5, one thread: 100 -> 108 million normals per second; the rest
 * is the double-precision Box-Muller arithmetic itself). Per element the
 * operations are unchanged, so are the bits. */
NSDE__INLINE void nsde__normal_one(uint64_t seed, uint32_t c0, uint32_t c1, uint32_t c2,
                                   uint32_t c3, double *z1, double *z2)
{
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
#define NSDE__PHILOX_ROUND                                                                         \
  {                                                                                                \
    uint64_t p0 = (uint64_t)0xD2511F53u * c0;                                                      \
    uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;                                                      \
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;                                                  \
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;                                                  \
    c1 = (uint32_t)p1;                                                                             \
    c3 = (uint32_t)p0;                                                                             \
    c0 = n0;                                                                                       \
    c2 = n2;                                                                                       \
    k0 += 0x9E3779B9u;                                                                             \
    k1 += 0xBB67AE85u;                                                                             \
  }
  NSDE__PHILOX_ROUND NSDE__PHILOX_ROUND NSDE__PHILOX_ROUND NSDE__PHILOX_ROUND NSDE__PHILOX_ROUND
      NSDE__PHILOX_ROUND NSDE__PHILOX_ROUND NSDE__PHILOX_ROUND NSDE__PHILOX_ROUND NSDE__PHILOX_ROUND
#undef NSDE__PHILOX_ROUND
          nsde__box_muller(c0, c1, c2, c3, z1, z2);
}

/* Normals for counter (e, b, step, node) under key seed. */
NSDE__INLINE void nsde__normal_pair(uint64_t seed, uint32_t e, uint32_t b, uint32_t step,
                                    uint32_t node, double *z1, double *z2)
{
  nsde__normal_one(seed, e, b, step, node, z1, z2);
}

NSDE__INLINE void nsde__normal_block_impl(uint64_t seed, const uint32_t *e, const uint32_t *b,
                                          uint32_t step, uint32_t node, int n, double *z1,
                                          double *z2)
{
  const int half = n / 2;
#pragma omp simd
  for (int j = 0; j < half; j++) {
    nsde__normal_one(seed, e[j], b[j], step, node, &z1[j], &z2[j]);
    nsde__normal_one(seed, e[j + half], b[j + half], step, node, &z1[j + half], &z2[j + half]);
  }
  if (n % 2)
    nsde__normal_one(seed, e[n - 1], b[n - 1], step, node, &z1[n - 1], &z2[n - 1]);
}

/* Philox-4x32-10 for 16 counters per vector with AVX-512F intrinsics: the
 * same rounds as above, lane by lane. The compiler's vectorisation of the
 * 64-bit products (vpmullq and lane shuffles) ran at 166 million normals per
 * second on one Zen 5 core, the block built on this at 300 (same bits).
 * AVX-512F has no 32-bit high multiply: even and odd lanes go through
 * vpmuludq separately and are blended back. NV independent chains (1 or 2)
 * let the core overlap the ten dependent rounds. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define NSDE__HAVE_PHILOX16 1
#define NSDE__AVX512 __attribute__((target("avx512f")))

NSDE__INLINE NSDE__AVX512 void nsde__mulhilo16(__m512i a, __m512i m, __m512i *hi, __m512i *lo)
{
  const __m512i even = _mm512_mul_epu32(a, m), odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
  *lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}

/* c[v][0..3]: the counter words of chain v, replaced by the output words. */
NSDE__INLINE NSDE__AVX512 void nsde__philox16(const int NV, uint64_t seed, __m512i c[2][4])
{
  const __m512i m0 = _mm512_set1_epi32((int)0xD2511F53u), m1 = _mm512_set1_epi32((int)0xCD9E8D57u);
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
#pragma GCC unroll 10
  for (int r = 0; r < 10; r++) {
    const __m512i key0 = _mm512_set1_epi32((int)k0), key1 = _mm512_set1_epi32((int)k1);
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) {
      __m512i hi0, lo0, hi1, lo1;
      nsde__mulhilo16(c[v][0], m0, &hi0, &lo0);
      nsde__mulhilo16(c[v][2], m1, &hi1, &lo1);
      c[v][0] = _mm512_ternarylogic_epi32(hi1, c[v][1], key0, 0x96); /* three-way xor */
      c[v][2] = _mm512_ternarylogic_epi32(hi0, c[v][3], key1, 0x96);
      c[v][1] = lo1;
      c[v][3] = lo0;
    }
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
}

/* The same with AVX2, 8 counters per vector (Zen 3 and other CPUs without
 * AVX-512, where the compiler left the generator scalar). */
#define NSDE__AVX2 __attribute__((target("avx2,fma")))

NSDE__INLINE NSDE__AVX2 void nsde__mulhilo8(__m256i a, __m256i m, __m256i *hi, __m256i *lo)
{
  const __m256i even = _mm256_mul_epu32(a, m), odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

NSDE__INLINE NSDE__AVX2 void nsde__philox8(const int NV, uint64_t seed, __m256i c[2][4])
{
  const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
#pragma GCC unroll 10
  for (int r = 0; r < 10; r++) {
    const __m256i key0 = _mm256_set1_epi32((int)k0), key1 = _mm256_set1_epi32((int)k1);
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) {
      __m256i hi0, lo0, hi1, lo1;
      nsde__mulhilo8(c[v][0], m0, &hi0, &lo0);
      nsde__mulhilo8(c[v][2], m1, &hi1, &lo1);
      c[v][0] = _mm256_xor_si256(_mm256_xor_si256(hi1, c[v][1]), key0);
      c[v][2] = _mm256_xor_si256(_mm256_xor_si256(hi0, c[v][3]), key1);
      c[v][1] = lo1;
      c[v][3] = lo0;
    }
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
}
#endif

#endif
