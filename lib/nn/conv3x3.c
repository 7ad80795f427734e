/*
 * 3x3 / stride 1 / padding 1 convolutions: Winograd F(2x2, 3x3) forward, the
 * direct AVX-512 kernels' weight packing (conv-direct.c), the time plane of a
 * concat-conv as a per-pixel response.
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "conv-direct.h"
#include "nn-internal.h"

/* ---- Winograd F(2x2, 3x3) for 3x3 / stride 1 / padding 1 ------------------- */

/* Lavin & Gray's minimal filtering: a 2x2 output tile from a 4x4 input tile
 * with 16 multiplies per channel pair instead of 36, Y = A^T [U . V] A with
 * U = G g G^T and V = B^T d B. The 16 products summed over the input
 * channels are 16 GEMMs (tiles x cin times cin x cout). The time plane of a
 * concat-conv is constant inside the image, so its contribution is t times a
 * precomputed per-pixel response (the kernel's taps that fall inside). */

bool nsde__nn_is_3x3_same(const struct layer *l)
{
  return (l->kind == L_CONV || l->kind == L_CCONV) && l->k == 3 && l->stride == 1 && l->pad == 1;
}

/* Channel counts that are multiples of 16 on an AVX-512 CPU take the direct
 * kernels (lib/nn/conv-direct.c), 1-3 input channels those of
 * lib/nn/conv-few.c; other 3x3 same convolutions take Winograd. */
bool nsde__nn_use_direct(const struct layer *l)
{
  return nsde__nn_is_3x3_same(l) && nsde__direct_supported(l->cin, l->cout);
}

/* Direct layers with both channel counts >= 32 (>= 16 on AVX2) and even
 * sides run their forward, input gradient and weight gradient through the
 * register-blocked Winograd kernels (lib/nn/conv-wino.c). */
bool nsde__nn_use_wino_reg(const struct layer *l)
{
  return nsde__nn_use_direct(l) && nsde__nn_wino_reg_supported(l->cin, l->cout, l->hout, l->wout);
}

bool nsde__nn_use_winograd(const struct layer *l)
{
  return nsde__nn_is_3x3_same(l) && !nsde__nn_use_direct(l) && !nsde__nn_use_few(l);
}

/* Planes of the layer's forward (and input-gradient) filters: 36 for
 * F(4x4, 3x3), else 16 (the direct kernels' 9 taps, or a stride-2 layer's
 * 4 taps of 4 cin channels, in the same room). */
int64_t nsde__nn_filter_planes(const struct layer *l)
{
  return nsde__nn_use_wino_reg(l) && nsde__nn_wino_reg_m(l->hout, l->wout) == 4 ? 36 : 16;
}

int64_t nsde__nn_wino_tiles(const struct layer *l)
{
  return (int64_t)((l->hout + 1) / 2) * ((l->wout + 1) / 2);
}

/* Packed floats a 3x3/stride 1/pad 1 or a stride-2 direct layer needs
 * after its tap-major weights: the forward filters (Winograd U, 16 or 36 x
 * cout x cin, or the direct kernels' taps x cin x cout), for concat-conv the
 * time response (P x cout), then the input-gradient filters (Winograd Ud or
 * the rotated direct ones), nsde__nn_filter_planes floats per channel pair
 * each. */
int64_t nsde__nn_wino_extra(const struct layer *l)
{
  if (!nsde__nn_is_3x3_same(l) && !nsde__nn_use_s2(l))
    return 0;
  return 2 * nsde__nn_filter_planes(l) * l->cout * l->cin +
         (l->kind == L_CCONV ? (int64_t)l->hout * l->wout * l->cout : 0);
}

/* The input-gradient filters of a layer with nsde__nn_wino_extra room. */
float *nsde__nn_dgrad_filters(const struct nsde_net *net, const struct layer *l)
{
  return net->wpack + l->wpoff + (size_t)l->cout * nsde__nn_conv_kp(l) +
         (size_t)(nsde__nn_filter_planes(l) * l->cout * l->cin) +
         (l->kind == L_CCONV ? (size_t)l->hout * l->wout * l->cout : 0);
}

/* u = G g G^T for one 3x3 kernel g */
static void wino_filter(const float *g, float u[6][6])
{
  float tg[4][3];
  for (int j = 0; j < 3; j++) {
    tg[0][j] = g[j];
    tg[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
    tg[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
    tg[3][j] = g[6 + j];
  }
  for (int r = 0; r < 4; r++) {
    u[r][0] = tg[r][0];
    u[r][1] = 0.5f * (tg[r][0] + tg[r][1] + tg[r][2]);
    u[r][2] = 0.5f * (tg[r][0] - tg[r][1] + tg[r][2]);
    u[r][3] = tg[r][2];
  }
}

/* (G x)[0..5] for one column x of a kernel, F(4x4, 3x3)'s G (conv-wino4.c) */
static void wino4_g(float a, float b, float c, float *u, int stride)
{
  u[0] = a;
  u[stride] = (a + b + c) / 3.0f;
  u[2 * stride] = -(a - b + c) / 3.0f;
  u[3 * stride] = -(16.0f * a + 8.0f * b + 4.0f * c) / 15.0f;
  u[4 * stride] = (a - 2.0f * b + 4.0f * c) / 15.0f;
  u[5 * stride] = c;
}

/* u = G g G^T for one 3x3 kernel g, F(4x4, 3x3)'s G */
static void wino4_filter(const float *g, float u[6][6])
{
  float tg[6][3];
  for (int j = 0; j < 3; j++)
    wino4_g(g[j], g[3 + j], g[6 + j], &tg[0][j], 3);
  for (int r = 0; r < 6; r++)
    wino4_g(tg[r][0], tg[r][1], tg[r][2], u[r], 1);
}

/* tr[p][o]: the response of output pixel p to a time plane of ones (the
 * kernel's taps that fall inside the image). */
void nsde__nn_time_response(const struct layer *l, const float *W, float *tr)
{
  const int cc = l->cin + 1;
  for (int oy = 0; oy < l->hout; oy++)
    for (int ox = 0; ox < l->wout; ox++)
      for (int o = 0; o < l->cout; o++) {
        const float *g = W + (int64_t)o * cc * 9;
        float s = 0.0f;
        for (int ky = 0; ky < 3; ky++)
          for (int kx = 0; kx < 3; kx++) {
            int iy = oy - 1 + ky, ix = ox - 1 + kx;
            if (iy >= 0 && iy < l->hin && ix >= 0 && ix < l->win)
              s += g[ky * 3 + kx];
          }
        tr[((int64_t)oy * l->wout + ox) * l->cout + o] = s;
      }
}

/* The direct kernels' weights (nsde__direct_widx) and, for the input
 * gradient, the kernel rotated by 180 degrees with the channels swapped. */
void nsde__nn_direct_pack(const struct layer *l, const float *W, float *wd, float *wr)
{
  const int cc = l->cin + (l->kind == L_CCONV), off = l->kind == L_CCONV;
  for (int o = 0; o < l->cout; o++)
    for (int c = 0; c < l->cin; c++) {
      const float *g = W + ((int64_t)o * cc + c + off) * 9;
      for (int tap = 0; tap < 9; tap++) {
        wd[nsde__direct_widx(l->cin, l->cout, tap, c, o)] = g[tap];
        wr[nsde__direct_widx(l->cout, l->cin, tap, o, c)] = g[8 - tap];
      }
    }
}

/* U = G g G^T of output channel o's kernels for the forward pass and Ud from the kernel
 * rotated by 180 degrees, input and output channels swapped, for the input
 * gradient (the correlation of the output gradient with the rotated kernel).
 * Layout: [xi][o][c] and [xi][c][o] for the BLIS Winograd path, or with
 * blocked set the register-blocked kernels' nsde__nn_wino_reg_uidx. */
static void pack_filter_row(const struct layer *l, const float *W, float *U, float *Ud,
                            bool blocked, int o)
{
  const int cc = l->cin + (l->kind == L_CCONV), off = l->kind == L_CCONV;
  const int n = blocked && nsde__nn_filter_planes(l) == 36 ? 6 : 4, nx = n * n;
  const int blk = nsde__nn_wino_reg_block();
  for (int c = 0; c < l->cin; c++) {
    const float *g = W + ((int64_t)o * cc + c + off) * 9;
    float rot[9], u[6][6], ud[6][6];
    for (int j = 0; j < 9; j++)
      rot[j] = g[8 - j];
    if (n == 6) {
      wino4_filter(g, u);
      wino4_filter(rot, ud);
    } else {
      wino_filter(g, u);
      wino_filter(rot, ud);
    }
    for (int xi = 0; xi < nx; xi++) {
      const int64_t iu = blocked ? nsde__nn_wino_reg_uidx(blk, l->cin, l->cout, nx, xi, c, o)
                                 : ((int64_t)xi * l->cout + o) * l->cin + c;
      const int64_t id = blocked ? nsde__nn_wino_reg_uidx(blk, l->cout, l->cin, nx, xi, o, c)
                                 : ((int64_t)xi * l->cin + c) * l->cout + o;
      U[iu] = u[xi / n][xi % n];
      Ud[id] = ud[xi / n][xi % n];
    }
  }
}

/* Rows of output channels on nt threads for the larger layers: the drift's
 * three, packed serially at the first drift evaluation after each parameter
 * update, left the other thread of a 2-thread training step of the trained
 * recipe waiting for 1.5% of its time. */
static void wino_pack_filters(const struct layer *l, const float *W, float *U, float *Ud,
                              bool blocked, int nt)
{
  (void)nt;
  NSDE_PAR_FOR(nt > 1 && (int64_t)l->cout * l->cin >= 1024,
               "omp parallel for schedule(static) num_threads(nt)",
               for (int o = 0; o < l->cout; o++) pack_filter_row(l, W, U, Ud, blocked, o););
}

void nsde__nn_wino_reg_pack(const struct layer *l, const float *W, float *U, float *Ud, int nt)
{
  wino_pack_filters(l, W, U, Ud, true, nt);
}

void nsde__nn_wino_pack(const struct layer *l, const float *W, float *U, float *Ud, int nt)
{
  wino_pack_filters(l, W, U, Ud, false, nt);
}

/* V[xi][tile][c] = (B^T d B)[xi] for every input tile d of the item. */
#define D(i) (wt + (int64_t)(i)*C)
#define TT(i) (wt + (int64_t)(16 + (i)) * C)
NSDE_CLONES static void wino_input(const struct layer *l, const float *restrict in,
                                   float *restrict V, float *restrict wt)
{
  const int C = l->cin, th = (l->hout + 1) / 2, tw = (l->wout + 1) / 2;
  const int64_t T = (int64_t)th * tw;
  for (int ty = 0; ty < th; ty++)
    for (int tx = 0; tx < tw; tx++) {
      const int64_t tile = (int64_t)ty * tw + tx;
      for (int r = 0; r < 4; r++)
        for (int s = 0; s < 4; s++) {
          const int iy = 2 * ty - 1 + r, ix = 2 * tx - 1 + s;
          if (iy < 0 || iy >= l->hin || ix < 0 || ix >= l->win)
            memset(D(r * 4 + s), 0, (size_t)C * sizeof(float));
          else
            memcpy(D(r * 4 + s), in + ((int64_t)iy * l->win + ix) * C, (size_t)C * sizeof(float));
        }
      for (int s = 0; s < 4; s++)
        for (int c = 0; c < C; c++) {
          TT(0 * 4 + s)[c] = D(0 * 4 + s)[c] - D(2 * 4 + s)[c];
          TT(1 * 4 + s)[c] = D(1 * 4 + s)[c] + D(2 * 4 + s)[c];
          TT(2 * 4 + s)[c] = D(2 * 4 + s)[c] - D(1 * 4 + s)[c];
          TT(3 * 4 + s)[c] = D(1 * 4 + s)[c] - D(3 * 4 + s)[c];
        }
      for (int r = 0; r < 4; r++) {
        float *v0 = V + ((int64_t)(r * 4 + 0) * T + tile) * C, *v1 = v0 + T * C, *v2 = v1 + T * C,
              *v3 = v2 + T * C;
        for (int c = 0; c < C; c++) {
          v0[c] = TT(r * 4 + 0)[c] - TT(r * 4 + 2)[c];
          v1[c] = TT(r * 4 + 1)[c] + TT(r * 4 + 2)[c];
          v2[c] = TT(r * 4 + 2)[c] - TT(r * 4 + 1)[c];
          v3[c] = TT(r * 4 + 1)[c] - TT(r * 4 + 3)[c];
        }
      }
    }
}

#undef D
#undef TT

/* out = A^T M A per tile, plus bias and t times the time response. */
#define AA(i, s) (wt + (int64_t)((i)*4 + (s)) * O)
NSDE_CLONES static void wino_output(const struct layer *l, const float *restrict M,
                                    const float *restrict bias, const float *restrict tr, float t,
                                    float *restrict out, float *restrict wt)
{
  const int O = l->cout, th = (l->hout + 1) / 2, tw = (l->wout + 1) / 2;
  const int64_t T = (int64_t)th * tw;
  for (int ty = 0; ty < th; ty++)
    for (int tx = 0; tx < tw; tx++) {
      const int64_t tile = (int64_t)ty * tw + tx;
      for (int s = 0; s < 4; s++) {
        const float *m0 = M + ((int64_t)(0 * 4 + s) * T + tile) * O, *m1 = m0 + 4 * T * O,
                    *m2 = m1 + 4 * T * O, *m3 = m2 + 4 * T * O;
        for (int o = 0; o < O; o++) {
          AA(0, s)[o] = m0[o] + m1[o] + m2[o];
          AA(1, s)[o] = m1[o] - m2[o] - m3[o];
        }
      }
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
          const int oy = 2 * ty + i, ox = 2 * tx + j;
          float *y;
          const float *r;
          if (oy >= l->hout || ox >= l->wout)
            continue;
          y = out + ((int64_t)oy * l->wout + ox) * O;
          r = tr ? tr + ((int64_t)oy * l->wout + ox) * O : NULL;
          for (int o = 0; o < O; o++) {
            float v = j == 0 ? AA(i, 0)[o] + AA(i, 1)[o] + AA(i, 2)[o]
                             : AA(i, 1)[o] - AA(i, 2)[o] - AA(i, 3)[o];
            y[o] = v + (bias ? bias[o] : 0.0f) + (r ? t * r[o] : 0.0f);
          }
        }
    }
}
#undef AA

/* out = the Winograd correlation of in with the transformed filters U
 * (16 x cout x cin), plus bias and t times tr where given. V and M hold
 * 16 x tiles x max(cin, cout) floats each; wt is wino_input/output's. */
void nsde__nn_wino_conv(const struct layer *l, const float *in, const float *U, const float *bias,
                        const float *tr, float t, float *out, float *V, float *M, float *wt)
{
  const int64_t T = nsde__nn_wino_tiles(l);
  wino_input(l, in, V, wt);
  for (int xi = 0; xi < 16; xi++)
    nsde__gemm(NULL, NSDE_DTYPE_FLOAT32, false, false, T, l->cout, l->cin, 1.0, V + xi * T * l->cin,
               l->cin, 1, U + (int64_t)xi * l->cout * l->cin, 1, l->cin, 0.0, M + xi * T * l->cout,
               l->cout, 1);
  wino_output(l, M, bias, tr, t, out, wt);
}
