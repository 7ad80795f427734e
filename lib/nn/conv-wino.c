/*
 * Winograd F(2x2, 3x3) with AVX-512 or (the same source compiled again,
 * conv-wino-avx2.c) AVX2 and FMA for the direct kernels' layers when
 * both channel counts are at least 32 (16 with AVX2, see
 * nsde__nn_wino_reg_supported) and the image sides are even: the
 * forward pass, with the rotated filters the input gradient, and the weight
 * gradient (dU = sum over tiles of V . (A dY A^T), dW = G^T dU G).
 *
 * Lavin & Gray's minimal filtering: a 2x2 output tile from a 4x4 input tile,
 * Y = A^T [U . V] A with U = G g G^T and V = B^T d B, 16 products per
 * channel pair instead of 36. The 16 products summed over the input channels
 * are 16 small GEMMs (tiles x cin times cin x cout); here they run in
 * registers like the direct kernels (a block of up to 6 tiles x 64 output
 * channels of accumulators for the whole input-channel reduction, each
 * filter vector loaded once per block, each transformed input value
 * broadcast from memory), over chunks of tile rows small enough that the
 * transformed input V and the products M stay in the core's caches. The
 * filters are packed in blocks of output channels as wide as a product
 * block (64 with AVX-512, 16 with AVX2: nsde__nn_wino_reg_block), so each
 * block's products read their filters as one contiguous stream.
 *
 * Where both sides are multiples of 4 the forward pass and the input
 * gradient use F(4x4, 3x3) instead (a 4x4 tile from a 6x6 one, 36 products:
 * 1.78x fewer again; its transforms are in conv-wino4.c, the products and
 * the loop over tiles are these): at 8x8 with 64 channels a forward call
 * takes 26 us instead of 35 on one Zen 3 core. The weight gradient of such
 * layers is F(4x4, 3x3) too where an item has at most 16 tiles: an 8x8
 * item has 4, too few to read and write a 36-plane accumulator for, so
 * items are staged in groups of 32 tiles (nsde__nn_wino4_wgrad_add) and
 * their products summed per group (nsde__nn_wino4_wgrad_sum; conv-wgrad.c
 * keeps the groups): 1.78x fewer products than F(2x2)'s, the trained
 * recipe 1.09x faster on one Zen 3 core. Larger items keep F(2x2).
 * Sides of at least 10 that are 2 more than a multiple of 4 (the paper's
 * 30x30) take F(4x4) too, their last tiles partial (nsde__nn_wino_reg_m):
 * at 30x30, 64 tiles of 36 products instead of 225 of 16.
 *
 * At 64 channels this does 2.25x fewer multiply-adds than the direct kernel
 * and runs 1.7-1.8x faster (weight gradient 1.75-2.2x) on one Zen 5 core.
 * With 16 output channels a product does one broadcast per FMA and the
 * layer ran 0.88x the direct kernel's speed, which is why 16-channel layers
 * stay direct.
 *
 * Every output element is summed in a fixed order that depends only on the
 * layer's shape (input channel order inside each of the 16 products, then
 * the fixed output transform), never on blocks or threads, so results are
 * identical for any thread count. They differ from the direct kernel's in
 * the last bits (the transforms round differently): tests/test-nn.c checks
 * both against a naive convolution.
 *
 * SPDX-License-Identifier: MIT
 */
#include "conv-blocks.h"
#include "conv-direct.h"
#include "nsde-private.h"

#include <stdlib.h>
#include <string.h>

/* Floats between the 16 planes of V (T tiles x c channels) or of the
 * transformed output gradient: 16 more than T c, so that the planes do not
 * fall a multiple of 4 KiB apart (at 8x8 with 64 channels they were exactly
 * 4 KiB apart: the 16 stores of a tile's transform went to one L1 set,
 * whose 8 ways they evicted in turn, and 4K aliasing stalled the loads). */
static int64_t plane(int64_t T, int c)
{
  return T * c + 16;
}

/* Tiles of side m along a side of n pixels (the last one partial where m
 * does not divide n). */
static int tiles_along(int n, int m)
{
  return (n + m - 1) / m;
}

/* Rows of m x m tiles per chunk: about 24 tiles, at least one row. */
static int chunk_rows(int h, int w, int m)
{
  const int th = tiles_along(h, m), tw = tiles_along(w, m), r = 24 / tw;
  return r < 1 ? 1 : r > th ? th : r;
}

/* Tiles of a group of the F(4x4) weight gradient (nsde__nn_wino4_wgrad_items). */
static int64_t stage_tiles(int h, int w)
{
  return (int64_t)nsde__nn_wino4_wgrad_items(h, w) * (h / 4) * (w / 4);
}

#ifndef NSDE_ISA_TWIN /* the twins (conv-wino-avx2.c) have only the kernels */

/* NSDE_WINOGRAD: 0 keeps these layers on the direct kernels, 2 keeps them
 * on F(2x2, 3x3) (comparisons); anything else or unset, 1. */
static int choose_wino_mode(const char *e)
{
  return e && !strcmp(e, "0") ? 0 : e && !strcmp(e, "2") ? 2 : 1;
}

static int wino_mode(void)
{
  static int cached = -1;
  return nsde__env_knob(&cached, "NSDE_WINOGRAD", choose_wino_mode);
}

/* At least 16 channels each way, except on AVX-512 with F(2x2), which wants
 * 32. With AVX2 16 output channels are two 8-float vectors, so a block of
 * products does 2 loads and 6 broadcasts per 12 FMAs (on Zen 3 the paper's
 * model at width 16 trains 1.2x and infers 1.3x faster with them as
 * Winograd). AVX-512's one vector needs a broadcast per FMA: F(2x2) layers
 * of 16 channels ran 0.88x the direct kernel's speed on Zen 5, but F(4x4)'s
 * 2.25 products a pixel against F(2x2)'s 4 pay for it (Zen 5, width 16:
 * the paper's model infers 1.11-1.12x and trains 1.06-1.16x faster, the
 * strided-stem model 1.19-1.23x and 1.18x). */
bool nsde__nn_wino_reg_supported(int cin, int cout, int h, int w)
{
  const int least = nsde__direct_isa() == 1 || nsde__nn_wino_reg_m(h, w) == 4 ? 16 : 32;
  return wino_mode() != 0 && nsde__direct_supported(cin, cout) && cin >= least && cout >= least &&
         h % 2 == 0 && w % 2 == 0 && h > 0 && w > 0;
}

/* F(4x4) where each side is a multiple of 4 or at least 10 (even, so 2
 * more than a multiple: the last tiles keep 2 of their 4 rows or columns;
 * at 30 x 30, 64 tiles of 36 products per channel pair instead of F(2x2)'s
 * 225 of 16, 1.56x fewer; at 6 the two cost the same). */
static bool side4(int n)
{
  return n % 4 == 0 || n >= 10;
}

int nsde__nn_wino_reg_m(int h, int w)
{
  return wino_mode() != 2 && side4(h) && side4(w) ? 4 : 2;
}

int64_t nsde__nn_wino_reg_scratch(int h, int w, int cin, int cout)
{
  int64_t most = 0;
  for (int m = 2; m <= 4; m += 2) {
    int64_t tiles, t6, n;
    if (m == 4 && nsde__nn_wino_reg_m(h, w) != 4)
      continue;
    /* V ((m + 2)^2 planes of tiles x cin), then M of a block of up to 6
     * tiles (fwd) or the transformed output gradient (16 planes of tiles x
     * cout, wgrad, m = 2); the input gradient calls the forward with cin
     * and cout swapped, so the size must hold either way round */
    tiles = (int64_t)chunk_rows(h, w, m) * tiles_along(w, m);
    t6 = tiles > 6 ? tiles : 6;
    n = (m + 2) * (m + 2) * (plane(t6, cin) + plane(t6, cout)) + 16;
    most = n > most ? n : most;
  }
  return most;
}

int nsde__nn_wino4_wgrad_items(int h, int w)
{
  const int t1 = (h / 4) * (w / 4);
  if (nsde__nn_wino_reg_m(h, w) != 4 || h % 4 || w % 4 || t1 > 16)
    return 0;
  return 32 / t1;
}

int64_t nsde__nn_wino4_stage_size(int h, int w, int cin, int cout)
{
  const int64_t T = stage_tiles(h, w);
  return T ? 36 * (plane(T, cin) + plane(T, cout)) : 0;
}

int nsde__nn_wino_reg_block(void)
{
  return nsde__direct_isa() == 1 ? 16 : 64;
}

int64_t nsde__nn_wino_reg_uidx(int blk, int cin, int cout, int nx, int xi, int ci, int co)
{
  const int co0 = co / blk * blk, bw = cout - co0 < blk ? cout - co0 : blk;
  return (int64_t)co0 * nx * cin + ((int64_t)xi * cin + ci) * bw + (co - co0);
}

#endif /* NSDE_ISA_TWIN */

#if HAVE_X86

/* V[xi][tile][ci] = (B^T d B)[xi] for the tiles of tile rows ty0 .. ty0+nr-1,
 * d read from the padded, channel-blocked item (nsde__direct_pad). */
static TGT void input_transform(const float *restrict pad, int w, int cin, int ty0, int nr,
                                float *restrict V)
{
  const int tw = w / 2;
  const int64_t rs = (int64_t)(w + 2) * cin, bs = (int64_t)(w + 2) * 16, P = plane(nr * tw, cin);
  for (int ty = 0; ty < nr; ty++)
    for (int tx = 0; tx < tw; tx++) {
      const int64_t tile = (int64_t)ty * tw + tx;
      for (int cv = 0; cv < cin / VL; cv++) {
        const int cb = cv / V16, ch = cb * 16 + VL * (cv % V16);
        const float *base =
            pad + (int64_t)(2 * (ty0 + ty)) * rs + cb * bs + 2 * tx * 16 + VL * (cv % V16);
        vf d[4][4], u[4][4];
        for (int r = 0; r < 4; r++)
          for (int s = 0; s < 4; s++)
            d[r][s] = vf_load(base + r * rs + s * 16);
        for (int s = 0; s < 4; s++) {
          u[0][s] = vf_sub(d[0][s], d[2][s]);
          u[1][s] = vf_add(d[1][s], d[2][s]);
          u[2][s] = vf_sub(d[2][s], d[1][s]);
          u[3][s] = vf_sub(d[1][s], d[3][s]);
        }
        for (int r = 0; r < 4; r++) {
          float *v = V + (r * 4) * P + tile * cin + ch;
          vf_store(v, vf_sub(u[r][0], u[r][2]));
          vf_store(v + P, vf_add(u[r][1], u[r][2]));
          vf_store(v + 2 * P, vf_sub(u[r][2], u[r][1]));
          vf_store(v + 3 * P, vf_sub(u[r][1], u[r][3]));
        }
      }
    }
}

/* m[p][j] = sum_ci v[p][ci] u[ci][j] for PB tiles x NB vectors of output
 * channels: v rows cin apart, u rows bw apart, m rows ms apart. */
static INL TGT void gemm_block(const int PB, const int NB, const float *restrict v, int cin,
                               const float *restrict u, int bw, float *restrict m, int64_t ms)
{
  vf acc[16][4];
  nsde__blk_zero(PB, NB, acc);
#pragma GCC unroll 4
  for (int ci = 0; ci < cin; ci++) {
    vf uv[4];
    nsde__blk_load(NB, u + (int64_t)ci * bw, uv);
    nsde__blk_rank1(PB, NB, acc, v + ci, cin, uv);
  }
  nsde__blk_store(PB, NB, acc, m, ms, 0);
}

/* PB tiles (a run-time count up to 6) through gemm_block. */
#define GEMM_AT(PB, NB)                                                                            \
  case PB:                                                                                         \
    gemm_block(PB, NB, v, cin, u, bw, m, ms);                                                      \
    break;
#define GEMM_NB(NAME, NB)                                                                          \
  static TGT void NAME(int pb, const float *v, int cin, const float *u, int bw, float *m,          \
                       int64_t ms)                                                                 \
  {                                                                                                \
    switch (pb) {                                                                                  \
      GEMM_AT(1, NB)                                                                               \
      GEMM_AT(2, NB) GEMM_AT(3, NB) GEMM_AT(4, NB) GEMM_AT(5, NB) GEMM_AT(6, NB) default : break;  \
    }                                                                                              \
  }
#ifdef NSDE_ISA_AVX2
GEMM_NB(gemm_sub, 2) /* 16 channels x 6 tiles: 12 of AVX2's 16 registers accumulate */
#else
GEMM_NB(gemm_1, 1)
GEMM_NB(gemm_2, 2)
GEMM_NB(gemm_3, 3)
GEMM_NB(gemm_4, 4)
#endif
#undef GEMM_NB
#undef GEMM_AT

/* Output channels per block of the packed filters (nsde__nn_wino_reg_block). */
#ifdef NSDE_ISA_AVX2
#define UBLK 16
#else
#define UBLK 64
#endif

/* The pb tiles' products with a weight block of bw output channels. */
static TGT void gemm(int pb, const float *v, int cin, const float *u, int bw, float *m, int64_t ms)
{
#ifdef NSDE_ISA_AVX2
  for (int s = 0; s < bw; s += 16)
    gemm_sub(pb, v, cin, u + s, bw, m + s, ms);
#else
  switch (bw / 16) {
  case 4: gemm_4(pb, v, cin, u, bw, m, ms); break;
  case 3: gemm_3(pb, v, cin, u, bw, m, ms); break;
  case 2: gemm_2(pb, v, cin, u, bw, m, ms); break;
  case 1: gemm_1(pb, v, cin, u, bw, m, ms); break;
  default: break;
  }
#endif
}

/* out = A^T M A for tiles t0 .. t0+pb-1 of the chunk starting at tile row
 * ty0, plus bias and t times the time response tr (both optional); M is
 * [tile - t0][xi][cout]. */
static TGT void output_transform(const float *restrict M, int w, int cout, int ty0, int t0, int pb,
                                 const float *restrict bias, const float *restrict tr, float t,
                                 float *restrict out)
{
  const int tw = w / 2;
  const vf tv = vf_set1(t);
  for (int q = 0; q < pb; q++) {
    const int ty = ty0 + (t0 + q) / tw, tx = (t0 + q) % tw;
    const float *mt = M + (int64_t)q * 16 * cout;
    for (int j = 0; j < cout / VL; j++) {
      vf m[16], a[2][4];
      for (int xi = 0; xi < 16; xi++)
        m[xi] = vf_load(mt + (int64_t)xi * cout + VL * j);
      for (int s = 0; s < 4; s++) {
        a[0][s] = vf_add(vf_add(m[s], m[4 + s]), m[8 + s]);
        a[1][s] = vf_sub(vf_sub(m[4 + s], m[8 + s]), m[12 + s]);
      }
      for (int i = 0; i < 2; i++)
        for (int k = 0; k < 2; k++) {
          const vf y = k == 0 ? vf_add(vf_add(a[i][0], a[i][1]), a[i][2])
                              : vf_sub(vf_sub(a[i][1], a[i][2]), a[i][3]);
          nsde__blk_epilogue(y, bias, tr, tv, (int64_t)(2 * ty + i) * w + 2 * tx + k, cout, j, out);
        }
    }
  }
}

/* Gd[xi][tile][co] = (A dY A^T)[xi] for the 2x2 output-gradient tiles dY of
 * the chunk (g channels-last): the gradient with respect to the products M. */
static TGT void grad_transform(const float *restrict g, int w, int cout, int ty0, int nr,
                               float *restrict Gd)
{
  const int tw = w / 2;
  const int64_t P = plane(nr * tw, cout);
  for (int ty = 0; ty < nr; ty++)
    for (int tx = 0; tx < tw; tx++) {
      const int64_t tile = (int64_t)ty * tw + tx;
      const float *g0 = g + ((int64_t)(2 * (ty0 + ty)) * w + 2 * tx) * cout,
                  *g1 = g0 + (int64_t)w * cout;
      for (int j = 0; j < cout / VL; j++) {
        const vf y00 = vf_load(g0 + VL * j), y01 = vf_load(g0 + cout + VL * j);
        const vf y10 = vf_load(g1 + VL * j), y11 = vf_load(g1 + cout + VL * j);
        const vf zero = vf_zero();
        vf r[4][2];
        r[0][0] = y00;
        r[0][1] = y01;
        r[1][0] = vf_add(y00, y10);
        r[1][1] = vf_add(y01, y11);
        r[2][0] = vf_sub(y00, y10);
        r[2][1] = vf_sub(y01, y11);
        r[3][0] = vf_sub(zero, y10);
        r[3][1] = vf_sub(zero, y11);
        for (int i = 0; i < 4; i++) {
          float *d = Gd + (4 * i) * P + tile * cout + VL * j;
          vf_store(d, r[i][0]);
          vf_store(d + P, vf_add(r[i][0], r[i][1]));
          vf_store(d + 2 * P, vf_sub(r[i][0], r[i][1]));
          vf_store(d + 3 * P, vf_sub(zero, r[i][1]));
        }
      }
    }
}

/* du[c][j] += sum_t v[t][c] gd[t][j] (add 0: du[c][j] = ...) for CB input
 * channels x NB vectors of output channels over T tiles: v rows cin apart,
 * gd rows cout apart, du rows cout apart. */
static INL TGT void wgrad_block(const int CB, const int NB, int T, const float *restrict v, int cin,
                                const float *restrict gd, int cout, float *restrict du, int add)
{
  vf acc[16][4];
  nsde__blk_zero(CB, NB, acc);
  for (int t = 0; t < T; t++) {
    vf gv[4];
    nsde__blk_load(NB, gd + (int64_t)t * cout, gv);
    nsde__blk_rank1(CB, NB, acc, v + (int64_t)t * cin, 1, gv);
  }
  nsde__blk_store(CB, NB, acc, du, cout, add);
}

#define WGRAD_NB(NAME, NB, CB)                                                                     \
  static TGT void NAME(int T, const float *v, int cin, const float *gd, int cout, float *du,       \
                       int add)                                                                    \
  {                                                                                                \
    int c = 0;                                                                                     \
    for (; c + CB <= cin; c += CB)                                                                 \
      wgrad_block(CB, NB, T, v + c, cin, gd, cout, du + (int64_t)c * cout, add);                   \
    for (; c + 4 <= cin; c += 4) /* the rest (CB 6: 16 k mod 6 is 4, 2 or 0) */                    \
      wgrad_block(4, NB, T, v + c, cin, gd, cout, du + (int64_t)c * cout, add);                    \
    for (; c < cin; c++)                                                                           \
      wgrad_block(1, NB, T, v + c, cin, gd, cout, du + (int64_t)c * cout, add);                    \
  }
#ifdef NSDE_ISA_AVX2
WGRAD_NB(wgrad_sub, 2, 6) /* 16 channels x 6: 12 accumulators */
#else
WGRAD_NB(wgrad_1, 1, 16)
WGRAD_NB(wgrad_2, 2, 8)
WGRAD_NB(wgrad_3, 3, 8)
WGRAD_NB(wgrad_4, 4, 6)
#endif
#undef WGRAD_NB

/* du[xi] += (add 0: =) the products of the T tiles of plane xi, nx planes:
 * V's planes (T x cin) pv floats apart, Gd's (T x cout) pg apart, du's cin
 * cout. */
static TGT void wgrad_planes(int nx, int T, const float *V, int64_t pv, int cin, const float *Gd,
                             int64_t pg, int cout, float *du, int add)
{
  for (int xi = 0; xi < nx; xi++) {
    const float *v = V + xi * pv, *gd = Gd + xi * pg;
    float *d = du + (int64_t)xi * cin * cout;
#ifdef NSDE_ISA_AVX2
    for (int co = 0; co < cout; co += 16)
      wgrad_sub(T, v, cin, gd + co, cout, d + co, add);
#else
    int co = 0;
    for (; co + 64 <= cout; co += 64)
      wgrad_4(T, v, cin, gd + co, cout, d + co, add);
    switch ((cout - co) / 16) {
    case 3: wgrad_3(T, v, cin, gd + co, cout, d + co, add); break;
    case 2: wgrad_2(T, v, cin, gd + co, cout, d + co, add); break;
    case 1: wgrad_1(T, v, cin, gd + co, cout, d + co, add); break;
    default: break;
    }
#endif
  }
}

TGT void ISA(nsde__nn_wino_reg_wgrad)(const float *pad, int h, int w, int cin, const float *g,
                                      int cout, float *du, float *scratch)
{
  const int th = h / 2, tw = w / 2, rows = chunk_rows(h, w, 2);
  float *V = scratch, *Gd = scratch + 16 * plane((int64_t)rows * tw, cin);
  for (int ty0 = 0; ty0 < th; ty0 += rows) {
    const int nr = th - ty0 < rows ? th - ty0 : rows, T = nr * tw;
    input_transform(pad, w, cin, ty0, nr, V);
    grad_transform(g, w, cout, ty0, nr, Gd);
    wgrad_planes(16, T, V, plane(T, cin), cin, Gd, plane(T, cout), cout, du, 1);
  }
}

/* F(4x4)'s weight gradient over a group of items: item k's transformed
 * input and output gradient go to tiles k T1 .. (k + 1) T1 - 1 of the
 * group's staging (V: 36 planes of stage_tiles x cin, then Gd: 36 of
 * stage_tiles x cout); the products run once the group is full. */
TGT void ISA(nsde__nn_wino4_wgrad_add)(const float *pad, int h, int w, int cin, const float *g,
                                       int cout, int k, float *stage)
{
  const int64_t T = stage_tiles(h, w), t1 = (int64_t)(h / 4) * (w / 4), pv = plane(T, cin);
  ISA(nsde__wino4_input)(pad, h, w, cin, 0, h / 4, stage + k * t1 * cin, pv);
  ISA(nsde__wino4_grad)(g, w, cout, 0, h / 4, stage + 36 * pv + k * t1 * cout, plane(T, cout));
}

TGT void ISA(nsde__nn_wino4_wgrad_sum)(int h, int w, int cin, int cout, int n, const float *stage,
                                       float *du, int add)
{
  const int64_t T = stage_tiles(h, w), pv = plane(T, cin);
  wgrad_planes(36, n * (h / 4) * (w / 4), stage, pv, cin, stage + 36 * pv, plane(T, cout), cout, du,
               add);
}

TGT void ISA(nsde__nn_wino_reg_fwd)(const float *pad, int h, int w, int cin, int cout,
                                    const float *U, const float *bias, const float *tr, float t,
                                    float *out, float *scratch)
{
  const int m = nsde__nn_wino_reg_m(h, w), nx = (m + 2) * (m + 2);
  const int th = tiles_along(h, m), tw = tiles_along(w, m), rows = chunk_rows(h, w, m);
  const int64_t ms = nx * (int64_t)cout;
  float *V = scratch, *M = scratch + nx * plane((int64_t)rows * tw, cin);
  for (int ty0 = 0; ty0 < th; ty0 += rows) {
    const int nr = th - ty0 < rows ? th - ty0 : rows, T = nr * tw, nblk = (T + 5) / 6;
    if (m == 4)
      ISA(nsde__wino4_input)(pad, h, w, cin, ty0, nr, V, plane(T, cin));
    else
      input_transform(pad, w, cin, ty0, nr, V);
    /* blocks of at most 6 tiles, balanced (15 tiles: 5 + 5 + 5); all the
     * products of a block, then its output transform while M is in L1 */
    for (int k = 0, t0 = 0; k < nblk; k++) {
      const int pb = T / nblk + (k < T % nblk);
      /* the block's output lines are usually cold (a fresh tape slot): ask
       * for them now, so the stores of the output transform do not wait */
      for (int q = 0; q < pb; q++) {
        const int ty = ty0 + (t0 + q) / tw, tx = (t0 + q) % tw;
        const int ni = h - m * ty < m ? h - m * ty : m, nk = w - m * tx < m ? w - m * tx : m;
        for (int i = 0; i < ni; i++) {
          const char *o = (const char *)(out + ((int64_t)(m * ty + i) * w + m * tx) * cout);
          for (int64_t b = 0; b < nk * (int64_t)cout * 4; b += 64)
            __builtin_prefetch(o + b, 1, 3);
        }
      }
      for (int xi = 0; xi < nx; xi++) {
        const float *v = V + xi * plane(T, cin) + (int64_t)t0 * cin;
        float *mx = M + (int64_t)xi * cout;
        for (int co = 0; co < cout; co += UBLK) {
          const int bw = cout - co < UBLK ? cout - co : UBLK;
          gemm(pb, v, cin, U + (int64_t)co * nx * cin + (int64_t)xi * cin * bw, bw, mx + co, ms);
        }
      }
      if (m == 4)
        ISA(nsde__wino4_output)(M, h, w, cout, ty0, t0, pb, bias, tr, t, out);
      else
        output_transform(M, w, cout, ty0, t0, pb, bias, tr, t, out);
      t0 += pb;
    }
  }
}

#endif /* HAVE_X86 */

#ifndef NSDE_ISA_TWIN
/* The instruction set's kernels (nsde__direct_isa: 2 AVX-512, 1 AVX2). */
void nsde__nn_wino_reg_wgrad(const float *pad, int h, int w, int cin, const float *g, int cout,
                             float *du, float *scratch)
{
#if HAVE_X86
  if (nsde__direct_isa() == 2)
    nsde__nn_wino_reg_wgrad_avx512(pad, h, w, cin, g, cout, du, scratch);
  else
    nsde__nn_wino_reg_wgrad_avx2(pad, h, w, cin, g, cout, du, scratch);
#else
  (void)pad, (void)h, (void)w, (void)cin, (void)g, (void)cout, (void)du, (void)scratch;
#endif
}

void nsde__nn_wino4_wgrad_add(const float *pad, int h, int w, int cin, const float *g, int cout,
                              int k, float *stage)
{
#if HAVE_X86
  if (nsde__direct_isa() == 2)
    nsde__nn_wino4_wgrad_add_avx512(pad, h, w, cin, g, cout, k, stage);
  else
    nsde__nn_wino4_wgrad_add_avx2(pad, h, w, cin, g, cout, k, stage);
#else
  (void)pad, (void)h, (void)w, (void)cin, (void)g, (void)cout, (void)k, (void)stage;
#endif
}

void nsde__nn_wino4_wgrad_sum(int h, int w, int cin, int cout, int n, const float *stage, float *du,
                              int add)
{
#if HAVE_X86
  if (nsde__direct_isa() == 2)
    nsde__nn_wino4_wgrad_sum_avx512(h, w, cin, cout, n, stage, du, add);
  else
    nsde__nn_wino4_wgrad_sum_avx2(h, w, cin, cout, n, stage, du, add);
#else
  (void)h, (void)w, (void)cin, (void)cout, (void)n, (void)stage, (void)du, (void)add;
#endif
}

void nsde__nn_wino_reg_fwd(const float *pad, int h, int w, int cin, int cout, const float *U,
                           const float *bias, const float *tr, float t, float *out, float *scratch)
{
#if HAVE_X86
  if (nsde__direct_isa() == 2)
    nsde__nn_wino_reg_fwd_avx512(pad, h, w, cin, cout, U, bias, tr, t, out, scratch);
  else
    nsde__nn_wino_reg_fwd_avx2(pad, h, w, cin, cout, U, bias, tr, t, out, scratch);
#else
  (void)pad, (void)h, (void)w, (void)cin, (void)cout, (void)U, (void)bias, (void)tr, (void)t,
      (void)out, (void)scratch;
#endif
}
#endif
