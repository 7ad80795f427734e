/*
 * 3x3 / stride 1 / padding 1 convolutions with 1-3 input channels (an
 * image's first layer) and output channels a multiple of 16, with AVX-512 or
 * (the same source compiled again, conv-few-avx2.c) AVX2 and FMA: the
 * forward pass, the weight gradient and the input gradient.
 *
 * Why not the other paths: the direct kernels need 16 input channels, and
 * Winograd with 3 input channels ran 16 BLIS products of K = 3 per item plus
 * its transforms and transposes - the large recipe's first layer (3 -> 16
 * at 32x32) took about 14% of a 1-thread training step at 8 GFLOP/s. Here a
 * block of output pixels x 16 channels stays in registers for the 9 cin
 * multiply-adds of each output vector; the weight gradient keeps all 9 cin
 * (AVX2: 3 cin) taps' accumulators in registers over the item's pixels.
 *
 * Every output element is summed in an order fixed by the layer's shape:
 * the forward from the bias over (tap, input channel); the weight gradient
 * over the pixels in order from zero; the input gradient over (16-channel
 * block, tap) in each of 16 lanes (output channel mod 16), then the lanes
 * in a fixed tree. Never on the block, thread or instruction set.
 *
 * SPDX-License-Identifier: MIT
 */
#include "conv-blocks.h"
#include "conv-direct.h"
#include "nn-internal.h"

#include <string.h>

#ifndef NSDE_ISA_TWIN /* the kernels' twins (conv-few-avx2.c) have only the kernels */

bool nsde__nn_use_few(const struct layer *l)
{
  return nsde__nn_is_3x3_same(l) && l->kind == L_CONV && l->cin <= 3 && l->cout % 16 == 0 &&
         nsde__direct_isa() > 0;
}

void nsde__few_pad(const float *in, int h, int w, int c, float *pad)
{
  const int64_t rs = (int64_t)(w + 2) * c;
  memset(pad, 0, (size_t)rs * sizeof(float));
  for (int y = 0; y < h; y++) {
    float *row = pad + (y + 1) * rs;
    memset(row, 0, (size_t)c * sizeof(float));
    memcpy(row + c, in + (int64_t)y * w * c, (size_t)w * c * sizeof(float));
    memset(row + (int64_t)(w + 1) * c, 0, (size_t)c * sizeof(float));
  }
  memset(pad + (int64_t)(h + 1) * rs, 0, (size_t)rs * sizeof(float));
}

#endif /* NSDE_ISA_TWIN */

#if HAVE_X86

#ifdef NSDE_ISA_AVX2
#define PMAX 6  /* pixels x 2 vectors of 8 channels: 12 accumulators of 16 registers */
#define WROWS 1 /* kernel rows per pass of the weight gradient: 3 cin accumulators */
#else
#define PMAX 16
#define WROWS 3 /* all 9 cin accumulators in registers */
#endif

/* out[p][16 channels] = bias + sum over (tap, ci) of in[p + tap][ci] w[tap][ci]
 * for PB pixels of a row; w (rows cout floats apart), bias and out at the
 * block's first channel. */
static INL TGT void fwd_block(const int PB, const int CIN, const float *restrict in, int64_t rs,
                              const float *restrict w, int cout, const float *restrict bias,
                              float *restrict out)
{
  vf acc[16][4], wv[4];
#pragma GCC unroll 16
  for (int p = 0; p < PB; p++)
    nsde__blk_load(V16, bias, acc[p]);
#pragma GCC unroll 3
  for (int ky = 0; ky < 3; ky++)
#pragma GCC unroll 3
    for (int kx = 0; kx < 3; kx++)
#pragma GCC unroll 3
      for (int ci = 0; ci < CIN; ci++) {
        nsde__blk_load(V16, w + (int64_t)((ky * 3 + kx) * CIN + ci) * cout, wv);
        nsde__blk_rank1(PB, V16, acc, in + ky * rs + kx * CIN + ci, CIN, wv);
      }
  nsde__blk_store(PB, V16, acc, out, cout, 0);
}

#define FWD_AT(PB) fwd_block(PB, CIN, in + x * CIN, rs, w, cout, bias, out + (int64_t)x * cout)
/* One output row of 16 channels: pixel blocks of PMAX, then 4, 2, 1. */
static INL TGT void fwd_row(const int CIN, const float *in, int64_t rs, int wd, const float *w,
                            int cout, const float *bias, float *out)
{
  int x = 0;
  for (; x + PMAX <= wd; x += PMAX)
    FWD_AT(PMAX);
  for (; x + 4 <= wd; x += 4)
    FWD_AT(4);
  for (; x + 2 <= wd; x += 2)
    FWD_AT(2);
  for (; x < wd; x++)
    FWD_AT(1);
}
#undef FWD_AT

static INL TGT void fwd_cin(const int CIN, const float *pad, int h, int w, int cout,
                            const float *wf, const float *bias, float *out)
{
  const int64_t rs = (int64_t)(w + 2) * CIN;
  for (int y = 0; y < h; y++)
    for (int co = 0; co < cout; co += 16)
      fwd_row(CIN, pad + y * rs, rs, w, wf + co, cout, bias + co, out + (int64_t)y * w * cout + co);
}

TGT void ISA(nsde__few_fwd)(const float *pad, int h, int w, int cin, int cout, const float *wf,
                            const float *bias, float *out)
{
  switch (cin) {
  case 1: fwd_cin(1, pad, h, w, cout, wf, bias, out); break;
  case 2: fwd_cin(2, pad, h, w, cout, wf, bias, out); break;
  default: fwd_cin(3, pad, h, w, cout, wf, bias, out); break;
  }
}

/* dw[tap][ci][VL channels] += the sum over the pixels, in order, of in[p + tap][ci]
 * g[p] for the taps of kernel rows ky0 .. ky0 + WROWS - 1; g and dw at the
 * vector's first channel. */
static INL TGT void wgrad_rows(const int CIN, const float *restrict pad, int h, int w, int ky0,
                               const float *restrict g, int cout, float *restrict dw)
{
  const int64_t rs = (int64_t)(w + 2) * CIN;
  vf acc[WROWS * 9];
#pragma GCC unroll 27
  for (int r = 0; r < WROWS * 3 * CIN; r++)
    acc[r] = vf_zero();
  for (int y = 0; y < h; y++) {
    const float *ip = pad + (y + ky0) * rs;
    const float *gp = g + (int64_t)y * w * cout;
    for (int x = 0; x < w; x++) {
      const vf gv = vf_load(gp + (int64_t)x * cout);
#pragma GCC unroll 3
      for (int ky = 0; ky < WROWS; ky++)
#pragma GCC unroll 9
        for (int j = 0; j < 3 * CIN; j++) /* j = kx CIN + ci: consecutive floats */
          acc[ky * 3 * CIN + j] =
              vf_fmadd(vf_set1(ip[ky * rs + x * CIN + j]), gv, acc[ky * 3 * CIN + j]);
    }
  }
#pragma GCC unroll 27
  for (int r = 0; r < WROWS * 3 * CIN; r++) {
    float *d = dw + ((int64_t)ky0 * 3 * CIN + r) * cout;
    vf_store(d, vf_add(vf_load(d), acc[r]));
  }
}

static INL TGT void wgrad_cin(const int CIN, const float *pad, int h, int w, const float *g,
                              int cout, float *dw)
{
  for (int co = 0; co < cout; co += VL)
    for (int ky0 = 0; ky0 < 3; ky0 += WROWS)
      wgrad_rows(CIN, pad, h, w, ky0, g + co, cout, dw + co);
}

TGT void ISA(nsde__few_wgrad)(const float *pad, int h, int w, int cin, const float *g, int cout,
                              float *dw)
{
  switch (cin) {
  case 1: wgrad_cin(1, pad, h, w, g, cout, dw); break;
  case 2: wgrad_cin(2, pad, h, w, g, cout, dw); break;
  default: wgrad_cin(3, pad, h, w, g, cout, dw); break;
  }
}

/* The sum of 16 lanes (V16 vectors) as the tree lane i + lane i + 8, then
 * i + 4, i + 2, i + 1: the same bits for every instruction set. */
static INL TGT float hsum16(const vf *v)
{
#if defined(NSDE_ISA_EMU512)
  const __m256 s8 = _mm256_add_ps(v[0].lo, v[0].hi);
#elif defined(NSDE_ISA_AVX2)
  const __m256 s8 = _mm256_add_ps(v[0], v[1]);
#else
  const __m256 s8 =
      _mm256_add_ps(_mm512_castps512_ps256(v[0]),
                    _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v[0]), 1)));
#endif
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

/* dx[p][ci] = sum over (16-channel block, tap) of gpad[p + 2 - tap] . w[tap][ci]
 * per lane, then the lanes (hsum16); gpad is the padded output gradient in
 * nsde__direct_pad's layout. */
static INL TGT void dgrad_cin(const int CIN, const float *gpad, int h, int w, int cout,
                              const float *wf, float *dx)
{
  const int64_t bs = (int64_t)(w + 2) * 16, rs = cout / 16 * bs;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      vf acc[3][4];
#pragma GCC unroll 3
      for (int ci = 0; ci < CIN; ci++)
#pragma GCC unroll 2
        for (int v = 0; v < V16; v++)
          acc[ci][v] = vf_zero();
      for (int cb = 0; cb < cout / 16; cb++)
#pragma GCC unroll 9
        for (int tap = 0; tap < 9; tap++) {
          vf gv[4];
          nsde__blk_load(V16, gpad + (y + 2 - tap / 3) * rs + cb * bs + (x + 2 - tap % 3) * 16, gv);
#pragma GCC unroll 3
          for (int ci = 0; ci < CIN; ci++)
#pragma GCC unroll 2
            for (int v = 0; v < V16; v++)
              acc[ci][v] = vf_fmadd(gv[v], vf_load(wf + (tap * CIN + ci) * cout + cb * 16 + VL * v),
                                    acc[ci][v]);
        }
#pragma GCC unroll 3
      for (int ci = 0; ci < CIN; ci++)
        dx[((int64_t)y * w + x) * CIN + ci] = hsum16(acc[ci]);
    }
}

TGT void ISA(nsde__few_dgrad)(const float *gpad, int h, int w, int cout, const float *wf, int cin,
                              float *dx)
{
  switch (cin) {
  case 1: dgrad_cin(1, gpad, h, w, cout, wf, dx); break;
  case 2: dgrad_cin(2, gpad, h, w, cout, wf, dx); break;
  default: dgrad_cin(3, gpad, h, w, cout, wf, dx); break;
  }
}

#endif /* HAVE_X86 */

#ifndef NSDE_ISA_TWIN
/* wf[(tap cin + ci) cout + co] from the public weights W[co][ci][ky][kx] */
void nsde__nn_few_pack(const struct layer *l, const float *W, float *wf)
{
  for (int co = 0; co < l->cout; co++)
    for (int ci = 0; ci < l->cin; ci++)
      for (int tap = 0; tap < 9; tap++)
        wf[((int64_t)tap * l->cin + ci) * l->cout + co] = W[((int64_t)co * l->cin + ci) * 9 + tap];
}

/* Floats of scratch (col) the layer's passes need: the padded input, or
 * the padded output gradient in nsde__direct_pad's layout. */
size_t nsde__nn_few_scratch(const struct layer *l)
{
  return (size_t)(l->hin + 2) * (size_t)(l->win + 2) *
         (size_t)(l->cin > l->cout ? l->cin : l->cout);
}

void nsde__nn_few_fwd_item(const struct layer *l, const float *wf, const float *bias,
                           const float *in, float *out, float *col)
{
  nsde__few_pad(in, l->hin, l->win, l->cin, col);
  NSDE__DIRECT_CALL(nsde__few_fwd, col, l->hout, l->wout, l->cin, l->cout, wf, bias, out);
}

/* The weight gradient added to the chunk's accumulator dw ([tap][ci][co],
 * moved into the chunk's gradient by nsde__nn_direct_flush) unless NULL, dx
 * if wanted; col is scratch (nsde__nn_few_scratch). */
void nsde__nn_few_bwd_item(const struct layer *l, const float *wf, const float *in, const float *g,
                           float *dw, float *dx, float *col)
{
  if (dw) {
    nsde__few_pad(in, l->hin, l->win, l->cin, col);
    NSDE__DIRECT_CALL(nsde__few_wgrad, col, l->hout, l->wout, l->cin, g, l->cout, dw);
  }
  if (dx) {
    nsde__direct_pad(g, l->hout, l->wout, l->cout, col);
    NSDE__DIRECT_CALL(nsde__few_dgrad, col, l->hin, l->win, l->cout, wf, l->cin, dx);
  }
}
#endif
