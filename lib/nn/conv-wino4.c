/*
 * The transforms of Winograd F(4x4, 3x3) for the forward pass, the input
 * gradient and the weight gradient of conv-wino.c's layers whose sides are
 * multiples of 4 or at least 10 (the last tiles partial: read as zeros past
 * the padded input, written only inside the output; the weight gradient
 * only for multiples of 4; the products and the loop over tiles are
 * conv-wino.c's):
 * a 4x4 output tile from a 6x6 input tile, 36 products per channel pair
 * instead of F(2x2, 3x3)'s 64 for the same 16 outputs, so 1.78x fewer
 * multiply-adds.
 *
 * Lavin & Gray's minimal filtering with the points 0, 1, -1, 1/2, -2 and
 * infinity, which Barabasz et al. (2018) found to round less than the usual
 * 0, 1, -1, 2, -2 (measured here: the largest error of a 64-channel layer
 * against a float64 convolution 2.5e-6 against 6.7e-6, F(2x2)'s 4e-7):
 *
 *   B^T = [1 -3/2   -2  3/2    1 0]   G = [    1     0     0]
 *         [0   -1  1/2  5/2    1 0]       [  1/3   1/3   1/3]
 *         [0    1 -5/2  1/2    1 0]       [ -1/3   1/3  -1/3]
 *         [0   -2   -1    2    1 0]       [-16/15 -8/15 -4/15]
 *         [0  1/2   -1 -1/2    1 0]       [ 1/15 -2/15  4/15]
 *         [0    1 -3/2   -2  3/2 1]       [    0     0     1]
 *
 *   A^T = [1 1  1     1  1 0]
 *         [0 1 -1   1/2 -2 0]
 *         [0 1  1   1/4  4 0]
 *         [0 1 -1   1/8 -8 1]
 *
 * (G is applied to the filters in conv3x3.c.) Each output is
 * computed in an order fixed by the layer's shape, the same for both
 * instruction sets (the -avx2.c twin) and any thread count.
 *
 * SPDX-License-Identifier: MIT
 */
#include "conv-blocks.h"
#include "conv-direct.h"

#if HAVE_X86

/* t = B^T d for one column of 6 vectors */
static INL TGT void bt6(const vf d[6], vf t[6])
{
  const vf h = vf_set1(0.5f), h3 = vf_set1(1.5f), two = vf_set1(2.0f), h5 = vf_set1(2.5f);
  const vf d42 = vf_sub(d[4], d[2]);
  t[0] = vf_fmadd(h3, vf_sub(d[3], d[1]), vf_fmadd(vf_set1(-2.0f), d[2], vf_add(d[0], d[4])));
  t[1] = vf_fmadd(h5, d[3], vf_fmadd(h, d[2], vf_sub(d[4], d[1])));
  t[2] = vf_fmadd(h, d[3], vf_fmadd(vf_set1(-2.5f), d[2], vf_add(d[4], d[1])));
  t[3] = vf_fmadd(two, vf_sub(d[3], d[1]), d42);
  t[4] = vf_fmadd(h, vf_sub(d[1], d[3]), d42);
  t[5] = vf_fmadd(h3, d42, vf_fmadd(vf_set1(-2.0f), d[3], vf_add(d[1], d[5])));
}

/* a = A^T m for one column of 6 vectors */
static INL TGT void at4(const vf m[6], vf a[4])
{
  const vf s12 = vf_add(m[1], m[2]), d12 = vf_sub(m[1], m[2]);
  a[0] = vf_add(vf_add(vf_add(m[0], s12), m[3]), m[4]);
  a[1] = vf_fmadd(vf_set1(-2.0f), m[4], vf_fmadd(vf_set1(0.5f), m[3], d12));
  a[2] = vf_fmadd(vf_set1(4.0f), m[4], vf_fmadd(vf_set1(0.25f), m[3], s12));
  a[3] = vf_add(vf_fmadd(vf_set1(-8.0f), m[4], vf_fmadd(vf_set1(0.125f), m[3], d12)), m[5]);
}

/* a = A y for one column of 4 vectors (A = (A^T)^T, 6 x 4): the gradient
 * with respect to a column of M, given the column's output gradient y */
static INL TGT void a6(const vf y[4], vf a[6])
{
  const vf s02 = vf_add(y[0], y[2]), s13 = vf_add(y[1], y[3]);
  a[0] = y[0];
  a[1] = vf_add(s02, s13);
  a[2] = vf_sub(s02, s13);
  a[3] = vf_fmadd(vf_set1(0.125f), y[3],
                  vf_fmadd(vf_set1(0.25f), y[2], vf_fmadd(vf_set1(0.5f), y[1], y[0])));
  a[4] = vf_fmadd(vf_set1(-8.0f), y[3],
                  vf_fmadd(vf_set1(4.0f), y[2], vf_fmadd(vf_set1(-2.0f), y[1], y[0])));
  a[5] = y[3];
}

/* One 6x6 tile of 16 or 8 channels from the padded item (base: its top
 * left value; rs floats between rows): V's planes (P apart) at v. An edge
 * tile (edge 1) reads only its first nrow rows and ncol columns, which lie
 * in the padded item; the rest of the tile is zero. */
static INL TGT void input_tile(const float *restrict base, int64_t rs, const int edge, int nrow,
                               int ncol, float *restrict v, int64_t P)
{
  vf u[6][6]; /* u[s][r] = (B^T d)[r][s] */
  for (int s = 0; s < 6; s++) {
    vf d[6];
    for (int r = 0; r < 6; r++)
      d[r] = !edge || (r < nrow && s < ncol) ? vf_load(base + r * rs + s * 16) : vf_zero();
    bt6(d, u[s]);
  }
  for (int r = 0; r < 6; r++) {
    vf d[6], o[6];
    for (int s = 0; s < 6; s++)
      d[s] = u[s][r];
    bt6(d, o);
    for (int s = 0; s < 6; s++)
      vf_store(v + (r * 6 + s) * P, o[s]);
  }
}

/* V[xi][tile][ci] = (B^T d B)[xi] (xi = 6 row + column) for the tiles of
 * tile rows ty0 .. ty0+nr-1, d read from the padded, channel-blocked item
 * (nsde__direct_pad, h + 2 x w + 2 pixels; where 4 does not divide a side,
 * the last tiles reach past it and read zeros there); the 36 planes of V
 * are P floats apart. */
TGT void ISA(nsde__wino4_input)(const float *restrict pad, int h, int w, int cin, int ty0, int nr,
                                float *restrict V, int64_t P)
{
  const int tw = (w + 3) / 4;
  const int64_t rs = (int64_t)(w + 2) * cin, bs = (int64_t)(w + 2) * 16;
  for (int ty = 0; ty < nr; ty++)
    for (int tx = 0; tx < tw; tx++) {
      const int64_t tile = (int64_t)ty * tw + tx;
      const int nrow = h + 2 - 4 * (ty0 + ty), ncol = w + 2 - 4 * tx;
      const bool edge = nrow < 6 || ncol < 6;
      for (int cv = 0; cv < cin / VL; cv++) {
        const int cb = cv / V16, ch = cb * 16 + VL * (cv % V16);
        const float *base =
            pad + (int64_t)(4 * (ty0 + ty)) * rs + cb * bs + 4 * tx * 16 + VL * (cv % V16);
        if (edge)
          input_tile(base, rs, 1, nrow, ncol, V + tile * cin + ch, P);
        else
          input_tile(base, rs, 0, 6, 6, V + tile * cin + ch, P);
      }
    }
}

/* Gd[xi][tile][co] = (A dY A^T)[xi] (xi = 6 row + column), the gradient
 * with respect to the products M, for the 4x4 output-gradient tiles dY of
 * tile rows ty0 .. ty0+nr-1 (g channels-last); the 36 planes of Gd are P
 * floats apart. */
TGT void ISA(nsde__wino4_grad)(const float *restrict g, int w, int cout, int ty0, int nr,
                               float *restrict Gd, int64_t P)
{
  const int tw = w / 4;
  for (int ty = 0; ty < nr; ty++)
    for (int tx = 0; tx < tw; tx++) {
      const int64_t tile = (int64_t)ty * tw + tx;
      const float *g0 = g + ((int64_t)(4 * (ty0 + ty)) * w + 4 * tx) * cout;
      for (int j = 0; j < cout / VL; j++) {
        vf a[4][6]; /* a[k][r] = (A dY)[r][k] */
        for (int k = 0; k < 4; k++) {
          vf y[4];
          for (int i = 0; i < 4; i++)
            y[i] = vf_load(g0 + ((int64_t)i * w + k) * cout + VL * j);
          a6(y, a[k]);
        }
        for (int r = 0; r < 6; r++) {
          vf y[4], o[6];
          for (int k = 0; k < 4; k++)
            y[k] = a[k][r];
          a6(y, o);
          for (int s = 0; s < 6; s++)
            vf_store(Gd + (r * 6 + s) * P + tile * cout + VL * j, o[s]);
        }
      }
    }
}

/* out (h x w) = A^T M A for tiles t0 .. t0+pb-1 of the chunk starting at
 * tile row ty0, plus bias and t times the time response tr (both optional);
 * M is [tile - t0][xi][cout]. A tile past the last row or column writes
 * only its pixels inside. */
TGT void ISA(nsde__wino4_output)(const float *restrict M, int h, int w, int cout, int ty0, int t0,
                                 int pb, const float *restrict bias, const float *restrict tr,
                                 float t, float *restrict out)
{
  const int tw = (w + 3) / 4;
  const vf tv = vf_set1(t);
  for (int q = 0; q < pb; q++) {
    const int ty = ty0 + (t0 + q) / tw, tx = (t0 + q) % tw;
    const int ni = h - 4 * ty < 4 ? h - 4 * ty : 4, nk = w - 4 * tx < 4 ? w - 4 * tx : 4;
    const float *mt = M + (int64_t)q * 36 * cout;
    for (int j = 0; j < cout / VL; j++) {
      vf a[6][4]; /* a[s][i] = (A^T M)[i][s] */
      for (int s = 0; s < 6; s++) {
        vf m[6];
        for (int r = 0; r < 6; r++)
          m[r] = vf_load(mt + (int64_t)(r * 6 + s) * cout + VL * j);
        at4(m, a[s]);
      }
      for (int i = 0; i < ni; i++) {
        vf m[6], y[4];
        for (int s = 0; s < 6; s++)
          m[s] = a[s][i];
        at4(m, y);
        for (int k = 0; k < nk; k++)
          nsde__blk_epilogue(y[k], bias, tr, tv, (int64_t)(4 * ty + i) * w + 4 * tx + k, cout, j,
                             out);
      }
    }
  }
}

#endif /* HAVE_X86 */
