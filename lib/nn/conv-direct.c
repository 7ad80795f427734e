/*
 * Register-blocked direct 3x3 / stride 1 / padding 1 convolutions for
 * channels-last items whose channel counts are multiples of 16, with
 * AVX-512 or (the same source compiled again, conv-direct-avx2.c) AVX2 and
 * FMA: the forward pass (also the input gradient, with rotated kernels) and
 * the weight gradient. The same kernels with 2x2 taps and no padding
 * (nsde__direct2_*) run the 4x4 / stride 2 layers after a space-to-depth
 * (conv-s2.c).
 *
 * Why not GEMM: at the paper's widths (16-64 channels) one item's GEMMs are
 * small (900 x 64 x 585 at most) and BLIS spends much of its time packing;
 * Winograd needs two transforms per pass that cost more than the products at
 * 16 channels. Here the padded input is read in place: the accumulators of a
 * block of output pixels x 16..64 output channels stay in registers for the
 * whole 3x3 x cin reduction, each weight vector is loaded once per block and
 * each input value is broadcast straight from memory into the FMA.
 *
 * Every output element is summed in a fixed order that depends only on the
 * layer's channel counts (tap-major then input channel; for a 16-channel
 * output block input channel, kernel row, kernel column), never on the block
 * or thread it falls in, so results are identical for any thread count.
 *
 * SPDX-License-Identifier: MIT
 */
#include "conv-direct.h"
#include "conv-blocks.h"
#include "nsde-private.h"

#include <stdlib.h>
#include <string.h>

#ifndef NSDE_ISA_TWIN /* the kernels' twins (conv-direct-avx2.c) have only the kernels */

#if HAVE_X86
/* NSDE_DIRECT=0 turns the direct kernels off, NSDE_DIRECT=avx2 keeps an
 * AVX-512 CPU on the AVX2 kernels (for comparisons). */
static int choose_isa(const char *e)
{
  const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (e && !strcmp(e, "0"))
    return 0;
  if (__builtin_cpu_supports("avx512f") && !(e && !strcmp(e, "avx2")))
    return 2;
  return avx2 ? 1 : 0;
}
#endif

int nsde__direct_isa(void)
{
#if HAVE_X86
  static int cached = -1;
  return nsde__env_knob(&cached, "NSDE_DIRECT", choose_isa);
#else
  return 0;
#endif
}

bool nsde__direct_supported(int cin, int cout)
{
  return nsde__direct_isa() > 0 && cin >= 16 && cout >= 16 && cin % 16 == 0 && cout % 16 == 0;
}

/* The input is read in its own order, pixel after pixel (it is usually
 * cold: a tape slot written one layer or step before; block after block, a
 * stride of 4 cache lines, made this copy 4.6% of a 2-thread training step
 * of the trained recipe, most of it waiting for loads), the next row asked
 * for ahead. */
NSDE_CLONES void nsde__direct_pad(const float *in, int h, int w, int c, float *pad)
{
  const int nb = c / 16;
  const int64_t bs = (int64_t)(w + 2) * 16, rs = nb * bs, rowf = (int64_t)w * c;
  memset(pad, 0, (size_t)rs * sizeof(float));
  for (int y = 0; y < h; y++) {
    float *row = pad + (y + 1) * rs;
    const float *restrict src = in + (int64_t)y * rowf;
    if (y + 1 < h)
      for (int64_t q = 0; q < rowf; q += 16)
        __builtin_prefetch(src + rowf + q, 0, 3);
    for (int b = 0; b < nb; b++) {
      memset(row + b * bs, 0, 16 * sizeof(float));
      memset(row + b * bs + (int64_t)(w + 1) * 16, 0, 16 * sizeof(float));
    }
    if (nb == 1) { /* 16 channels: the blocked row is the channels-last row */
      memcpy(row + 16, src, (size_t)w * 16 * sizeof(float));
      continue;
    }
    for (int x = 0; x < w; x++)
      for (int b = 0; b < nb; b++) {
        float *restrict d = row + b * bs + (x + 1) * 16;
        for (int k = 0; k < 16; k++)
          d[k] = src[(int64_t)x * c + 16 * b + k];
      }
  }
  memset(pad + (int64_t)(h + 1) * rs, 0, (size_t)rs * sizeof(float));
}

int64_t nsde__direct_widx(int cin, int cout, int tap, int ci, int co)
{
  return nsde__direct_widx_k(3, cin, cout, tap, ci, co);
}

int64_t nsde__direct_widx_k(int k, int cin, int cout, int tap, int ci, int co)
{
  const int co0 = co / 64 * 64, bw = cout - co0 < 64 ? cout - co0 : 64;
  return (int64_t)co0 * k * k * cin + ((int64_t)tap * cin + ci) * bw + (co - co0);
}

#endif /* NSDE_ISA_TWIN */

#if HAVE_X86

/* Register blocks per instruction set: PMAX1 pixels x 16 channels for the
 * 16-output-channel block (fwd_block1, one vector of weights per tap held in
 * registers), and for wider outputs sub-blocks of SUBV vectors x 6 pixels
 * (fwd_block) and of SUBV vectors x 4 input channels (wgrad_block). With
 * AVX-512 a sub-block is the whole weight block of up to 64 channels; AVX2
 * has 16 registers, so a block of 32-64 channels runs as 16-channel slices. */
#ifdef NSDE_ISA_AVX2
#define PMAX1 6
#define SUBV 2
#else
#define PMAX1 15
#endif

/* PB output pixels x NB vectors of output channels: out[p][co] = init[p][co]
 * + sum_{tap, ci} in[p + tap][ci] * w[tap][ci][co]. The input is blocked by
 * 16 channels (see nsde__direct_pad) and the weights by output channels
 * (nsde__direct_widx; ws floats per row: the width of the weight block, of
 * which w points at this block's first channel), so every address in the
 * unrolled loop over 16 input channels is a base register plus a constant. */
static INL TGT void fwd_block(const int PB, const int NB, const int K, const float *restrict in,
                              int64_t rs, int64_t bs, int cin, const float *restrict w,
                              const int ws, int cout, const float *restrict bias,
                              const float *restrict tr, float t, float *restrict out)
{
  vf acc[16][4];
#pragma GCC unroll 16
  for (int p = 0; p < PB; p++)
#pragma GCC unroll 4
    for (int j = 0; j < NB; j++) {
      acc[p][j] = bias ? vf_load(bias + VL * j) : vf_zero();
      if (tr)
        acc[p][j] = vf_fmadd(vf_set1(t), vf_load(tr + (int64_t)p * cout + VL * j), acc[p][j]);
    }
  for (int ky = 0; ky < K; ky++)
    for (int kx = 0; kx < K; kx++)
      for (int cb = 0; cb < cin / 16; cb++) {
        const float *ip = in + ky * rs + cb * bs + kx * 16;
        const float *wp = w + ((int64_t)(ky * K + kx) * cin + cb * 16) * ws;
#pragma GCC unroll 16
        for (int ci = 0; ci < 16; ci++) {
          vf wv[4];
          nsde__blk_load(NB, wp + ci * ws, wv);
          nsde__blk_rank1(PB, NB, acc, ip + ci, 16, wv);
        }
      }
  nsde__blk_store(PB, NB, acc, out, cout, 0);
}

/* The same for one vector of a 16-output-channel layer (w, bias, tr and out
 * point at the vector's first channel), where the block above does one FMA
 * per broadcast input value: here the loop order is (input channel, kernel
 * row, input pixel, kernel column), so each broadcast value feeds the up to
 * three outputs it reaches through the three kernel columns, with the nine
 * taps' weight vectors of the input channel held in registers. */
static INL TGT void fwd_block1(const int PB, const int K, const float *restrict in, int64_t rs,
                               int64_t bs, int cin, const float *restrict w, int cout,
                               const float *restrict bias, const float *restrict tr, float t,
                               float *restrict out)
{
  vf acc[16];
#pragma GCC unroll 16
  for (int p = 0; p < PB; p++) {
    acc[p] = bias ? vf_load(bias) : vf_zero();
    if (tr)
      acc[p] = vf_fmadd(vf_set1(t), vf_load(tr + (int64_t)p * cout), acc[p]);
  }
  for (int cb = 0; cb < cin / 16; cb++)
    for (int k = 0; k < 16; k++) {
      const int ci = cb * 16 + k;
      vf wv[9];
#pragma GCC unroll 9
      for (int tap = 0; tap < K * K; tap++)
        wv[tap] = vf_load(w + ((int64_t)tap * cin + ci) * 16);
#pragma GCC unroll 3
      for (int ky = 0; ky < K; ky++) {
        const float *ip = in + ky * rs + cb * bs + k;
#pragma GCC unroll 18
        for (int q = 0; q < PB + K - 1; q++) {
          const vf b = vf_set1(ip[q * 16]);
#pragma GCC unroll 3
          for (int kx = 0; kx < K; kx++)
            if (q - kx >= 0 && q - kx < PB)
              acc[q - kx] = vf_fmadd(b, wv[ky * K + kx], acc[q - kx]);
        }
      }
    }
#pragma GCC unroll 16
  for (int p = 0; p < PB; p++)
    vf_store(out + (int64_t)p * cout, acc[p]);
}

/* fwd_block's signature for 16 output channels, one vector at a time. */
static INL TGT void fwd_block_16(const int PB, const int NB, const int K, const float *restrict in,
                                 int64_t rs, int64_t bs, int cin, const float *restrict w,
                                 const int ws, int cout, const float *restrict bias,
                                 const float *restrict tr, float t, float *restrict out)
{
  (void)NB, (void)ws;
#pragma GCC unroll 2
  for (int v = 0; v < V16; v++)
    fwd_block1(PB, K, in, rs, bs, cin, w + VL * v, cout, bias ? bias + VL * v : NULL,
               tr ? tr + VL * v : NULL, t, out + VL * v);
}

/* One output row, NB vectors of output channels at w (rows ws apart): pixel
 * blocks of PMAX, then 4, 2, 1; K x K taps over an input row of w + K - 1
 * pixels. */
#define FWD_AT(BLOCK, PB, NB, K)                                                                   \
  BLOCK(PB, NB, K, in + x * 16, rs, bs, cin, wt, ws, cout, bias,                                   \
        tr ? tr + (int64_t)x * cout : NULL, t, out + (int64_t)x * cout)
#define FWD_ROW(NAME, NB, PMAX, BLOCK, K)                                                          \
  static TGT void NAME(const float *in, int64_t rs, int w, int cin, const float *wt, int ws,       \
                       int cout, const float *bias, const float *tr, float t, float *out)          \
  {                                                                                                \
    const int64_t bs = (int64_t)(w + K - 1) * 16;                                                  \
    int x = 0;                                                                                     \
    for (; x + PMAX <= w; x += PMAX)                                                               \
      FWD_AT(BLOCK, PMAX, NB, K);                                                                  \
    for (; x + 4 <= w; x += 4)                                                                     \
      FWD_AT(BLOCK, 4, NB, K);                                                                     \
    for (; x + 2 <= w; x += 2)                                                                     \
      FWD_AT(BLOCK, 2, NB, K);                                                                     \
    for (; x < w; x++)                                                                             \
      FWD_AT(BLOCK, 1, NB, K);                                                                     \
  }

/* One output row of a weight block of nb x 16 output channels (wt, bias, tr
 * and out at its first channel), for K x K kernels (fwd_row3, fwd_row2). */
#ifdef NSDE_ISA_AVX2
#define FWD_ROWS(SFX, K)                                                                           \
  FWD_ROW(fwd_row_1##SFX, 1, PMAX1, fwd_block_16, K)                                               \
  FWD_ROW(fwd_row_sub##SFX, SUBV, 6, fwd_block, K)                                                 \
  static TGT void fwd_row##SFX(int nb, const float *in, int64_t rs, int w, int cin,                \
                               const float *wt, int cout, const float *bias, const float *tr,      \
                               float t, float *out)                                                \
  {                                                                                                \
    const int ws = 16 * nb;                                                                        \
    if (nb == 1) {                                                                                 \
      fwd_row_1##SFX(in, rs, w, cin, wt, ws, cout, bias, tr, t, out);                              \
      return;                                                                                      \
    }                                                                                              \
    for (int s = 0; s < nb; s++)                                                                   \
      fwd_row_sub##SFX(in, rs, w, cin, wt + 16 * s, ws, cout, bias ? bias + 16 * s : NULL,         \
                       tr ? tr + 16 * s : NULL, t, out + 16 * s);                                  \
  }
#else
#define FWD_ROWS(SFX, K)                                                                           \
  FWD_ROW(fwd_row_1##SFX, 1, PMAX1, fwd_block_16, K)                                               \
  FWD_ROW(fwd_row_2##SFX, 2, 10, fwd_block, K)                                                     \
  FWD_ROW(fwd_row_3##SFX, 3, 8, fwd_block, K)                                                      \
  FWD_ROW(fwd_row_4##SFX, 4, 6, fwd_block, K)                                                      \
  static TGT void fwd_row##SFX(int nb, const float *in, int64_t rs, int w, int cin,                \
                               const float *wt, int cout, const float *bias, const float *tr,      \
                               float t, float *out)                                                \
  {                                                                                                \
    const int ws = 16 * nb;                                                                        \
    switch (nb) {                                                                                  \
    case 1: fwd_row_1##SFX(in, rs, w, cin, wt, ws, cout, bias, tr, t, out); break;                 \
    case 4: fwd_row_4##SFX(in, rs, w, cin, wt, ws, cout, bias, tr, t, out); break;                 \
    case 3: fwd_row_3##SFX(in, rs, w, cin, wt, ws, cout, bias, tr, t, out); break;                 \
    default: fwd_row_2##SFX(in, rs, w, cin, wt, ws, cout, bias, tr, t, out); break;                \
    }                                                                                              \
  }
#endif
FWD_ROWS(3, 3)
FWD_ROWS(2, 2)
#undef FWD_ROWS
#undef FWD_ROW
#undef FWD_AT

/* The forward of K x K kernels over rows of w + K - 1 input pixels. */
#define DIRECT_FWD(NAME, K)                                                                        \
  TGT void ISA(NAME)(const float *pad, int h, int w, int cin, int cout, const float *wt,           \
                     const float *bias, const float *tr, float t, float *out)                      \
  {                                                                                                \
    const int64_t rs = (int64_t)(w + K - 1) * cin; /* one input row, all channel blocks */         \
    for (int y = 0; y < h; y++) {                                                                  \
      const float *in = pad + y * rs;                                                              \
      float *o = out + (int64_t)y * w * cout;                                                      \
      const float *r = tr ? tr + (int64_t)y * w * cout : NULL;                                     \
      /* output channels in blocks of 64, the rest in one block of 16-48 */                        \
      for (int co = 0; co < cout; co += 64) {                                                      \
        const int nb = (cout - co < 64 ? cout - co : 64) / 16;                                     \
        fwd_row##K(nb, in, rs, w, cin, wt + (int64_t)co * K * K * cin, cout,                       \
                   bias ? bias + co : NULL, r ? r + co : NULL, t, o + co);                         \
      }                                                                                            \
    }                                                                                              \
  }
DIRECT_FWD(nsde__direct_fwd, 3)
DIRECT_FWD(nsde__direct2_fwd, 2)
#undef DIRECT_FWD

/* dw[tap][ci..ci+CB][co..co+NB*VL] += sum_p in[p + tap][ci..] g[p][co..] over all pixels
 * (input rows of w + k - 1 pixels). */
static INL TGT void wgrad_block(const int CB, const int NB, int k, const float *restrict pad, int h,
                                int w, int cin, const float *restrict g, int cout,
                                float *restrict dw)
{
  const int64_t rs = (int64_t)(w + k - 1) * cin;
  vf acc[16][4];
  nsde__blk_zero(CB, NB, acc);
  for (int y = 0; y < h; y++) {
    const float *ip = pad + y * rs;
    const float *gp = g + (int64_t)y * w * cout;
    for (int x = 0; x < w; x++) {
      vf gv[4];
      nsde__blk_load(NB, gp + (int64_t)x * cout, gv);
      nsde__blk_rank1(CB, NB, acc, ip + x * 16, 1, gv);
    }
  }
  nsde__blk_store(CB, NB, acc, dw, cout, 1);
}

/* NB vectors of output channels, CB input channels at a time (CB divides
 * 16), k x k taps. */
#define WGRAD(NAME, NB, CB)                                                                        \
  static TGT void NAME(int k, const float *pad, int h, int w, int cin, const float *g, int cout,   \
                       float *dw)                                                                  \
  {                                                                                                \
    const int64_t iw = w + k - 1; /* input pixels per row */                                       \
    for (int tap = 0; tap < k * k; tap++)                                                          \
      for (int ci = 0; ci < cin; ci += CB)                                                         \
        wgrad_block(CB, NB, k,                                                                     \
                    pad + (tap / k) * iw * cin + (ci / 16) * iw * 16 + (tap % k) * 16 + ci % 16,   \
                    h, w, cin, g, cout, dw + ((int64_t)tap * cin + ci) * cout);                    \
  }
#ifdef NSDE_ISA_AVX2
WGRAD(wgrad_sub, 2, 4) /* 16 channels x 4: 8 accumulators, 2 loads, a broadcast */
#else
WGRAD(wgrad_1, 1, 16)
WGRAD(wgrad_2, 2, 8)
WGRAD(wgrad_3, 3, 8)
WGRAD(wgrad_4, 4, 4)
#endif
#undef WGRAD

static TGT void wgrad_k(int k, const float *pad, int h, int w, int cin, const float *g, int cout,
                        float *dw)
{
#ifdef NSDE_ISA_AVX2
  for (int co = 0; co < cout; co += 16)
    wgrad_sub(k, pad, h, w, cin, g + co, cout, dw + co);
#else
  int co = 0;
  for (; co + 64 <= cout; co += 64)
    wgrad_4(k, pad, h, w, cin, g + co, cout, dw + co);
  switch ((cout - co) / 16) {
  case 3: wgrad_3(k, pad, h, w, cin, g + co, cout, dw + co); break;
  case 2: wgrad_2(k, pad, h, w, cin, g + co, cout, dw + co); break;
  case 1: wgrad_1(k, pad, h, w, cin, g + co, cout, dw + co); break;
  default: break;
  }
#endif
}

TGT void ISA(nsde__direct_wgrad)(const float *pad, int h, int w, int cin, const float *g, int cout,
                                 float *dw)
{
  wgrad_k(3, pad, h, w, cin, g, cout, dw);
}

TGT void ISA(nsde__direct2_wgrad)(const float *pad, int h, int w, int cin, const float *g, int cout,
                                  float *dw)
{
  wgrad_k(2, pad, h, w, cin, g, cout, dw);
}

#endif /* HAVE_X86 */

#ifndef NSDE_ISA_TWIN
/* The instruction set's kernels (nsde__direct_isa: 2 AVX-512, 1 AVX2). */
void nsde__direct_fwd(const float *pad, int h, int w, int cin, int cout, const float *wt,
                      const float *bias, const float *tr, float t, float *out)
{
  NSDE__DIRECT_CALL(nsde__direct_fwd, pad, h, w, cin, cout, wt, bias, tr, t, out);
}

void nsde__direct_wgrad(const float *pad, int h, int w, int cin, const float *g, int cout,
                        float *dw)
{
  NSDE__DIRECT_CALL(nsde__direct_wgrad, pad, h, w, cin, g, cout, dw);
}

void nsde__direct2_fwd(const float *in, int h, int w, int cin, int cout, const float *wt,
                       const float *bias, float *out)
{
  NSDE__DIRECT_CALL(nsde__direct2_fwd, in, h, w, cin, cout, wt, bias, NULL, 0.0f, out);
}

void nsde__direct2_wgrad(const float *in, int h, int w, int cin, const float *g, int cout,
                         float *dw)
{
  NSDE__DIRECT_CALL(nsde__direct2_wgrad, in, h, w, cin, g, cout, dw);
}
#endif
