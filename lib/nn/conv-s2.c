/*
 * 4x4 / stride 2 / padding 1 convolutions with channel counts multiples of
 * 16 (the large stem's two downsampling layers) through the direct kernels:
 * after a space-to-depth of the padded input (S[ys][xs][(dy, dx, c)] =
 * x[2 ys + dy - 1][2 xs + dx - 1][c]) the layer is a 2x2 convolution without
 * padding over 4 cin channels, out[oy][ox] = sum over (a, b) of
 * S[oy + a][ox + b] W'[a][b] with W'[a][b][(dy, dx, c)] = W[c][2a + dy][2b + dx].
 * The input gradient is the 2x2 correlation of the output gradient, padded
 * by one pixel, with W' rotated and transposed, then a depth-to-space.
 *
 * Why: these layers ran im2col and one BLIS product per item (K = 256 and
 * 512, 32 and 64 output channels), about 15% of a 1-thread training step of
 * the trained recipe, with BLIS packing the weights at every call.
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "conv-direct.h"
#include "nn-internal.h"

bool nsde__nn_use_s2(const struct layer *l)
{
  return l->kind == L_CONV && l->k == 4 && l->stride == 2 && l->pad == 1 &&
         nsde__direct_supported(l->cin, l->cout);
}

/* S (hout + 1 x wout + 1 pixels of 4 cin channels, blocked by 16 channels
 * as nsde__direct_pad lays them out) from the channels-last item in. */
static void space_to_depth(const struct layer *l, const float *in, float *S)
{
  const int C = l->cin, hs = l->hout + 1, ws = l->wout + 1;
  const int64_t bs = (int64_t)ws * 16, rs = 4 * (int64_t)C / 16 * bs;
  for (int ys = 0; ys < hs; ys++)
    for (int sub = 0; sub < 4; sub++) {
      const int y = 2 * ys + sub / 2 - 1;
      for (int cb = 0; cb < C / 16; cb++) {
        float *d = S + ys * rs + (sub * (C / 16) + cb) * bs;
        for (int xs = 0; xs < ws; xs++) {
          const int x = 2 * xs + sub % 2 - 1;
          if (y < 0 || y >= l->hin || x < 0 || x >= l->win)
            memset(d + xs * 16, 0, 16 * sizeof(float));
          else
            memcpy(d + xs * 16, in + ((int64_t)y * l->win + x) * C + cb * 16, 16 * sizeof(float));
        }
      }
    }
}

/* dx (channels-last) from dS (hout + 1 x wout + 1 pixels of 4 cin channels,
 * channels-last): each input pixel is one place of S. */
static void depth_to_space(const struct layer *l, const float *dS, float *dx)
{
  const int C = l->cin, ws = l->wout + 1;
  for (int y = 0; y < l->hin; y++)
    for (int x = 0; x < l->win; x++) {
      const int sub = (y + 1) % 2 * 2 + (x + 1) % 2;
      memcpy(dx + ((int64_t)y * l->win + x) * C,
             dS + ((int64_t)(y + 1) / 2 * ws + (x + 1) / 2) * 4 * C + sub * C,
             (size_t)C * sizeof(float));
    }
}

/* W' for the forward (nsde__direct_widx_k(2, 4 cin, cout, ...)) and, for
 * the input gradient, W' rotated by 180 degrees with the channels swapped,
 * from the public weights W[o][c][ky][kx]. */
void nsde__nn_s2_pack(const struct layer *l, const float *W, float *wf, float *wr)
{
  const int C = l->cin;
  for (int o = 0; o < l->cout; o++)
    for (int c = 0; c < C; c++)
      for (int ky = 0; ky < 4; ky++)
        for (int kx = 0; kx < 4; kx++) {
          const int tap = ky / 2 * 2 + kx / 2, q = (ky % 2 * 2 + kx % 2) * C + c;
          const float v = W[(((int64_t)o * C + c) * 4 + ky) * 4 + kx];
          wf[nsde__direct_widx_k(2, 4 * C, l->cout, tap, q, o)] = v;
          wr[nsde__direct_widx_k(2, l->cout, 4 * C, 3 - tap, o, q)] = v;
        }
}

/* Floats of scratch the passes need (col and dcol each): S or the padded
 * output gradient in col, dS in dcol. */
size_t nsde__nn_s2_scratch(const struct layer *l)
{
  const size_t s = (size_t)(l->hout + 1) * (size_t)(l->wout + 1) * 4 * (size_t)l->cin;
  const size_t gp = (size_t)(l->hout + 2) * (size_t)(l->wout + 2) * (size_t)l->cout;
  return s > gp ? s : gp;
}

void nsde__nn_s2_fwd_item(const struct layer *l, const float *wf, const float *bias,
                          const float *in, float *out, float *col)
{
  space_to_depth(l, in, col);
  nsde__direct2_fwd(col, l->hout, l->wout, 4 * l->cin, l->cout, wf, bias, out);
}

void nsde__nn_s2_bwd_item(const struct layer *l, const float *wr, const float *in, const float *g,
                          float *dwd, float *dx, float *col, float *dcol)
{
  if (dwd) {
    space_to_depth(l, in, col);
    nsde__direct2_wgrad(col, l->hout, l->wout, 4 * l->cin, g, l->cout, dwd);
  }
  if (dx) {
    nsde__direct_pad(g, l->hout, l->wout, l->cout, col);
    nsde__direct2_fwd(col, l->hout + 1, l->wout + 1, l->cout, 4 * l->cin, wr, NULL, dcol);
    depth_to_space(l, dcol, dx);
  }
}

/* A chunk's accumulated dwd[(a, b)][(dy, dx, c)][o] into the packed
 * gradient dW (o, (ky, kx), c), which holds zeros there; dwd is zeroed. */
void nsde__nn_s2_flush(const struct layer *l, float *dwd, float *dW)
{
  const int C = l->cin;
  const int64_t Kp = 16 * (int64_t)C;
  for (int o = 0; o < l->cout; o++)
    for (int ky = 0; ky < 4; ky++)
      for (int kx = 0; kx < 4; kx++) {
        const int tap = ky / 2 * 2 + kx / 2, q0 = (ky % 2 * 2 + kx % 2) * C;
        float *d = dW + o * Kp + (ky * 4 + kx) * C;
        const float *s = dwd + ((int64_t)tap * 4 * C + q0) * l->cout + o;
        for (int c = 0; c < C; c++)
          d[c] += s[(int64_t)c * l->cout];
      }
  memset(dwd, 0, 16 * (size_t)C * (size_t)l->cout * sizeof(float));
}
