/*
 * Spatter of CIFAR-10-C (Hendrycks & Dietterich 2019, the parameters of
 * their make_cifar_c.py): a Gaussian "liquid layer" (mean c0, sd c1),
 * smoothed (sigma c2) and cut below c3 into drops.
 * Severities 1-3, water: the drops' edges (Canny, thresholds 50 and 150, on
 * the layer in bytes) give a distance map (5x5 chamfer L2, capped at 20),
 * box-blurred, histogram-equalised, embossed by a 3x3 kernel, blurred again;
 * the layer times that map, scaled to c4 at its maximum, adds pale
 * turquoise (175, 238, 238)/255.
 * Severities 4-5, mud: the drops, blurred (sigma c4), replace the image by
 * mud brown (63, 42, 20)/255 where the blurred mask is at least 0.8.
 * Written from that description and OpenCV's documented definitions of the
 * steps (Sobel 3x3 with replicated borders, L1 magnitude, non-maximum
 * suppression in four directions, 8-connected hysteresis; the chamfer
 * weights 1, 1.4, 2.1969; equalisation by the cumulative histogram;
 * reflect-101 borders for the filters). Grey images get the colours'
 * luminance. A layer without drops leaves the image as it is.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "corrupt-private.h"

/* Canny edges of an H x W byte image into edge (1: edge, 0: not); work
 * holds 3 H W ints. */
void corr_canny(const unsigned char *u, int H, int W, double low, double high, unsigned char *edge,
                int *work)
{
  int *gx = work, *gy = work + H * W, *mag = work + 2 * H * W, *stack = gx; /* gx reused */
  int top = 0;
#define PX(y, x) (int)u[(y < 0 ? 0 : y >= H ? H - 1 : y) * W + (x < 0 ? 0 : x >= W ? W - 1 : x)]
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      gx[y * W + x] = PX(y - 1, x + 1) + 2 * PX(y, x + 1) + PX(y + 1, x + 1) - PX(y - 1, x - 1) -
                      2 * PX(y, x - 1) - PX(y + 1, x - 1);
      gy[y * W + x] = PX(y + 1, x - 1) + 2 * PX(y + 1, x) + PX(y + 1, x + 1) - PX(y - 1, x - 1) -
                      2 * PX(y - 1, x) - PX(y - 1, x + 1);
      mag[y * W + x] = abs(gx[y * W + x]) + abs(gy[y * W + x]);
    }
#undef PX
#define MAG(y, x) (y < 0 || y >= H || x < 0 || x >= W ? 0 : mag[(y)*W + (x)])
  /* non-maximum suppression: 2 strong, 1 weak, 0 none (edge as scratch) */
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      const int m = mag[y * W + x];
      const double ax = abs(gx[y * W + x]), ay = abs(gy[y * W + x]);
      int keep;
      if (m <= low) {
        keep = 0;
      } else if (ay < ax * 0.41421356237309503) { /* across a vertical edge */
        keep = m > MAG(y, x - 1) && m >= MAG(y, x + 1);
      } else if (ay > ax * 2.414213562373095) { /* across a horizontal edge */
        keep = m > MAG(y - 1, x) && m >= MAG(y + 1, x);
      } else {
        const int s = (gx[y * W + x] ^ gy[y * W + x]) < 0 ? -1 : 1;
        keep = m > MAG(y - 1, x - s) && m > MAG(y + 1, x + s);
      }
      edge[y * W + x] = (unsigned char)(keep ? (m > high ? 2 : 1) : 0);
    }
#undef MAG
  /* hysteresis: weak pixels 8-connected to a strong one become edges */
  for (int i = 0; i < H * W; i++)
    if (edge[i] == 2)
      stack[top++] = i;
  while (top > 0) {
    const int i = stack[--top], y = i / W, x = i % W;
    for (int dy = -1; dy <= 1; dy++)
      for (int dx = -1; dx <= 1; dx++) {
        const int yy = y + dy, xx = x + dx;
        if (yy >= 0 && yy < H && xx >= 0 && xx < W && edge[yy * W + xx] == 1) {
          edge[yy * W + xx] = 2;
          stack[top++] = yy * W + xx;
        }
      }
  }
  for (int i = 0; i < H * W; i++)
    edge[i] = edge[i] == 2;
}

/* Distance to the nearest edge pixel, 5x5 chamfer (OpenCV's DIST_L2 mask
 * 5 weights), capped at cap. */
static void chamfer(const unsigned char *edge, int H, int W, double cap, float *d)
{
  static const int off[8][2] = {{-1, 0},  {0, -1}, {-1, -1}, {-1, 1},
                                {-2, -1}, {-2, 1}, {-1, -2}, {-1, 2}};
  static const float wt[8] = {1, 1, 1.4f, 1.4f, 2.1969f, 2.1969f, 2.1969f, 2.1969f};
  for (int i = 0; i < H * W; i++)
    d[i] = edge[i] ? 0.0f : 1e6f;
  for (int pass = 0; pass < 2; pass++) { /* forward: neighbours above; backward: below */
    const int sg = pass ? -1 : 1;
    for (int k = 0; k < H * W; k++) {
      const int i = pass ? H * W - 1 - k : k, y = i / W, x = i % W;
      for (int j = 0; j < 8; j++) {
        const int yy = y + sg * off[j][0], xx = x + sg * off[j][1];
        if (yy >= 0 && yy < H && xx >= 0 && xx < W && d[yy * W + xx] + wt[j] < d[i])
          d[i] = d[yy * W + xx] + wt[j];
      }
    }
  }
  for (int i = 0; i < H * W; i++)
    d[i] = d[i] > cap ? (float)cap : d[i];
}

/* The water's strength map (before scaling) from the layer in bytes; t
 * holds H W floats. */
static void water_map(const unsigned char *u8, int H, int W, float *map, float *t,
                      unsigned char *edge, int *work)
{
  static const double box[9] = {1 / 9.0, 1 / 9.0, 1 / 9.0, 1 / 9.0, 1 / 9.0,
                                1 / 9.0, 1 / 9.0, 1 / 9.0, 1 / 9.0};
  static const double emboss[9] = {-2, -1, 0, -1, 1, 1, 0, 1, 2};
  int hist[256] = {0}, first = 0, sum = 0;
  float lut[256];
  corr_canny(u8, H, W, 50, 150, edge, work);
  chamfer(edge, H, W, 20, map);
  corr_filter(map, 1, H, W, box, 1, 0, t);
  for (int i = 0; i < H * W; i++)
    hist[(int)map[i]]++; /* to bytes by truncation, as astype(uint8) */
  while (hist[first] == 0)
    first++;
  for (int v = first; v < 256; v++) { /* equalised: the count above the lowest level */
    sum += v > first ? hist[v] : 0;
    lut[v] = hist[first] == H * W ? (float)first
                                  : (float)floor(sum * 255.0 / (H * W - hist[first]) + 0.5);
  }
  for (int i = 0; i < H * W; i++)
    map[i] = lut[(int)map[i]];
  corr_filter(map, 1, H, W, emboss, 1, 0, t);
  for (int i = 0; i < H * W; i++) /* to bytes, saturating */
    map[i] = (float)fmin(255.0, fmax(0.0, floor(map[i] + 0.5)));
  corr_filter(map, 1, H, W, box, 1, 0, t);
  for (int i = 0; i < H * W; i++)
    map[i] = (float)floor(map[i] + 0.5) * u8[i];
}

int corr_spatter(float *im, int C, int H, int W, const double *c)
{
  static const double water[3] = {175 / 255.0, 238 / 255.0, 238 / 255.0};
  static const double mud[3] = {63 / 255.0, 42 / 255.0, 20 / 255.0};
  const size_t n = (size_t)H * W;
  const double *rgb = c[5] == 0 ? water : mud;
  float *layer = malloc(sizeof(float) * n * 3), *map = layer + n, *t = map + n;
  unsigned char *u8 = calloc(n * 2, 1);
  int *work = malloc(sizeof(int) * n * 3);
  double col[3], top = 0;

  if (!layer || !u8 || !work) {
    free(layer);
    free(u8);
    free(work);
    return -1;
  }
  for (int ch = 0; ch < 3; ch++) /* grey: the colour's luminance (ITU-R 601) */
    col[ch] = C == 3 ? rgb[ch] : 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
  for (size_t i = 0; i < n; i++)
    layer[i] = (float)(c[0] + c[1] * corr_normal());
  corr_gauss_blur(layer, 1, H, W, c[2], t);
  for (size_t i = 0; i < n; i++)
    if (layer[i] < c[3])
      layer[i] = 0.0f;
  if (c[5] == 0) {
    for (size_t i = 0; i < n; i++)
      u8[i] = (unsigned char)fmin(255.0, layer[i] * 255.0);
    water_map(u8, H, W, map, t, u8 + n, work);
    for (size_t i = 0; i < n; i++)
      top = fmax(top, map[i]);
    for (int ch = 0; ch < C && top > 0; ch++)
      for (size_t i = 0; i < n; i++)
        im[ch * n + i] += (float)(map[i] / top * c[4] * col[ch]);
  } else {
    for (size_t i = 0; i < n; i++)
      map[i] = layer[i] > c[3] ? 1.0f : 0.0f;
    corr_gauss_blur(map, 1, H, W, c[4], t);
    for (int ch = 0; ch < C; ch++)
      for (size_t i = 0; i < n; i++) {
        const double m = map[i] < 0.8f ? 0.0 : map[i];
        im[ch * n + i] = (float)(im[ch * n + i] * (1 - m) + col[ch] * m);
      }
  }
  free(layer);
  free(u8);
  free(work);
  return 0;
}
