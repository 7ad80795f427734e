/*
 * Motion blur and snow of CIFAR-10-C (Hendrycks & Dietterich 2019, the
 * parameters of their make_cifar_c.py), whose code calls ImageMagick's
 * motion blur: a one-sided kernel of 2 ceil(radius) + 1 taps along the
 * angle, weights exp(-i^2 / (2 sigma^2)) normalised, each tap rounded to
 * the nearest pixel, the edge pixels repeated beyond the border. Written
 * from that description; our images stay floats where theirs went through
 * 8-bit PNG files between the steps.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "corrupt-private.h"

#define MAX_TAPS 64

/* One plane, src -> dst (distinct). */
static void motion_plane(const float *src, float *dst, int H, int W, double radius, double sigma,
                         double angle_deg)
{
  const double a = angle_deg * 3.14159265358979323846 / 180.0;
  int taps = 2 * (int)ceil(radius) + 1, ox[MAX_TAPS], oy[MAX_TAPS];
  double k[MAX_TAPS], norm = 0;

  if (taps > MAX_TAPS)
    taps = MAX_TAPS;
  for (int i = 0; i < taps; i++) {
    norm += k[i] = exp(-(double)(i * i) / (2.0 * sigma * sigma));
    ox[i] = (int)ceil(i * cos(a) - 0.5);
    oy[i] = (int)ceil(i * sin(a) - 0.5);
  }
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      double s = 0;
      for (int i = 0; i < taps; i++) {
        int xx = x + ox[i], yy = y + oy[i];
        xx = xx < 0 ? 0 : xx >= W ? W - 1 : xx;
        yy = yy < 0 ? 0 : yy >= H ? H - 1 : yy;
        s += k[i] * src[(size_t)yy * W + xx];
      }
      dst[(size_t)y * W + x] = (float)(s / norm);
    }
}

void corr_motion_blur(float *im, int C, int H, int W, const double *c, float *tmp)
{
  const double angle = -45.0 + 90.0 * corr_u01();
  for (int ch = 0; ch < C; ch++) {
    float *p = im + (size_t)ch * H * W;
    memcpy(tmp, p, sizeof(float) * (size_t)H * W);
    motion_plane(tmp, p, H, W, c[0], c[1], angle);
  }
}

/* Snow: flakes N(c0, c1) per pixel, zoomed by c2 about the centre, those
 * under c3 removed, clipped to [0, 1] and motion-blurred (radius c4, sigma
 * c5, falling at -135..-45 degrees); the image is whitened towards
 * max(x, 1.5 grey + 0.5) with weight 1 - c6, and the flakes and the flakes
 * turned by 180 degrees are added. */
int corr_snow(float *im, int C, int H, int W, const double *c)
{
  const size_t P = (size_t)H * W;
  float *flake = calloc(3 * P, sizeof(float)), *zoomed = flake + P, *blur = zoomed + P;
  double angle;

  if (!flake)
    return -1;
  for (size_t i = 0; i < P; i++)
    flake[i] = (float)(c[0] + c[1] * corr_normal());
  corr_zoom_add(flake, H, W, c[2], zoomed);
  for (size_t i = 0; i < P; i++) {
    float v = zoomed[i] < (float)c[3] ? 0.0f : zoomed[i];
    zoomed[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
  }
  angle = -135.0 + 90.0 * corr_u01();
  motion_plane(zoomed, blur, H, W, c[4], c[5], angle);
  for (size_t i = 0; i < P; i++) {
    double grey = C == 3 ? 0.299 * im[i] + 0.587 * im[P + i] + 0.114 * im[2 * P + i] : im[i];
    double snow = (double)blur[i] + blur[P - 1 - i];
    for (int ch = 0; ch < C; ch++) {
      double x = im[(size_t)ch * P + i];
      x = c[6] * x + (1.0 - c[6]) * fmax(x, grey * 1.5 + 0.5);
      im[(size_t)ch * P + i] = (float)(x + snow);
    }
  }
  free(flake);
  return 0;
}
