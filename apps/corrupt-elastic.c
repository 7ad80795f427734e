/*
 * The elastic transform of CIFAR-10-C (Hendrycks & Dietterich 2019, their
 * make_cifar_c.py, after Simard et al. 2003): a random affine map of three
 * points about the centre, then a per-pixel displacement field, uniform
 * noise smoothed by a Gaussian and scaled. The parameters are in units of
 * the image side (their 32): displacement alpha, its smoothing sigma, and
 * the affine points' jitter. Written from the definition: the affine warp
 * is OpenCV's (bilinear, reflect-101 borders), the displacement sampling
 * scipy's map_coordinates (order 1, half-sample reflection).
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "corrupt-private.h"

/* Half-sample symmetric reflection (scipy's mode 'reflect'): -1 -> 0, n -> n - 1. */
static int reflect_half(int i, int n)
{
  const int period = 2 * n;
  i %= period;
  if (i < 0)
    i += period;
  return i < n ? i : period - 1 - i;
}

/* Bilinear sample of a plane at (y, x); border(i, n) maps outside indices. */
static double sample(const float *p, int H, int W, double y, double x, int (*border)(int, int))
{
  const int y0 = (int)floor(y), x0 = (int)floor(x);
  const double fy = y - y0, fx = x - x0;
  const int ya = border(y0, H), yb = border(y0 + 1, H), xa = border(x0, W), xb = border(x0 + 1, W);
  return (1 - fy) * ((1 - fx) * p[ya * W + xa] + fx * p[ya * W + xb]) +
         fy * ((1 - fx) * p[yb * W + xa] + fx * p[yb * W + xb]);
}

/* In place: a plane of uniform(-1, 1) noise smoothed by a Gaussian of sigma
 * (truncated at 3 sigma, half-sample reflection) and scaled by alpha. */
static void smooth_field(double *f, int H, int W, double sigma, double alpha, double *tmp)
{
  int r = (int)(3.0 * sigma + 0.5);
  double k[64], s = 0;

  for (int i = 0; i < H * W; i++)
    f[i] = 2.0 * corr_u01() - 1.0;
  if (r > 31)
    r = 31;
  for (int i = -r; i <= r; i++)
    s += k[i + r] = sigma > 0 ? exp(-(double)(i * i) / (2.0 * sigma * sigma)) : 1.0;
  for (int pass = 0; pass < 2; pass++) /* rows, then columns */
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) {
        double v = 0;
        for (int i = -r; i <= r; i++)
          v += k[i + r] * (pass == 0 ? f[y * W + reflect_half(x + i, W)]
                                     : tmp[reflect_half(y + i, H) * W + x]);
        (pass == 0 ? tmp : f)[y * W + x] = pass == 0 ? v / s : alpha * v / s;
      }
}

/* The inverse of the affine map M that takes the points a to b (points as
 * (x, y)): the map that takes b to a, inv = (n00 n01 n02; n10 n11 n12) with
 * a = N (b, 1), by Cramer's rule. */
static void affine_inverse(double a[3][2], double b[3][2], double inv[6])
{
  const double d =
      (b[0][0] - b[2][0]) * (b[1][1] - b[2][1]) - (b[1][0] - b[2][0]) * (b[0][1] - b[2][1]);
  for (int row = 0; row < 2; row++) {
    const double u0 = a[0][row] - a[2][row], u1 = a[1][row] - a[2][row];
    const double p = (u0 * (b[1][1] - b[2][1]) - u1 * (b[0][1] - b[2][1])) / d;
    const double q = ((b[0][0] - b[2][0]) * u1 - (b[1][0] - b[2][0]) * u0) / d;
    inv[3 * row] = p;
    inv[3 * row + 1] = q;
    inv[3 * row + 2] = a[2][row] - p * b[2][0] - q * b[2][1];
  }
}

int corr_elastic(float *im, int C, int H, int W, const double *c)
{
  const int side = H < W ? H : W, sq = side / 3;
  const double alpha = c[0] * side, sigma = c[1] * side, jitter = c[2] * side;
  const double cx = (double)(W / 2), cy = (double)(H / 2);
  double a[3][2] = {{cx + sq, cy + sq}, {cx + sq, cy - sq}, {cx - sq, cy - sq}};
  const size_t P = (size_t)H * W;
  double b[3][2], inv[6], *dx, *dy, *tmp;
  float *warped;

  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 2; j++)
      b[i][j] = a[i][j] + jitter * (2.0 * corr_u01() - 1.0);
  affine_inverse(a, b, inv);
  dx = malloc(sizeof(double) * 3 * P);
  warped = malloc(sizeof(float) * P);
  if (!dx || !warped) {
    free(dx);
    free(warped);
    return -1;
  }
  dy = dx + P;
  tmp = dy + P;
  smooth_field(dx, H, W, sigma, alpha, tmp);
  smooth_field(dy, H, W, sigma, alpha, tmp);
  for (int ch = 0; ch < C; ch++) {
    float *p = im + (size_t)ch * P;
    for (int y = 0; y < H; y++) /* dst(x, y) = src(M^-1 (x, y)) */
      for (int x = 0; x < W; x++)
        warped[y * W + x] = (float)sample(p, H, W, inv[3] * x + inv[4] * y + inv[5],
                                          inv[0] * x + inv[1] * y + inv[2], corr_reflect101);
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++)
        p[y * W + x] =
            (float)sample(warped, H, W, y + dy[y * W + x], x + dx[y * W + x], reflect_half);
  }
  free(dx);
  free(warped);
  return 0;
}
