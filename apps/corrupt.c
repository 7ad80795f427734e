/*
 * CIFAR-10-C style corruptions computed from the image alone (Hendrycks &
 * Dietterich 2019, the parameters of their make_cifar_c.py, severities 1..5;
 * severity 0 is the identity). Images are C x H x W floats in [0, 1].
 * Written from their definitions with this file's own random stream, so the
 * corrupted images are draws from the same distributions, not their bytes.
 * Motion blur and snow are in corrupt-motion.c, the elastic transform in
 * corrupt-elastic.c, spatter in corrupt-spatter.c. Not here: frost (the
 * published images blend in photographs of frost).
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef NSDE_HAVE_JPEG
#include <stdio.h>
#include <jpeglib.h>
#endif

#include "corrupt.h"
#include "corrupt-private.h"
#include "rng.h"

const char *const corr_names[CORR_N] = {
    "gaussian_noise",    "shot_noise",   "impulse_noise",    "speckle_noise",
    "gaussian_blur",     "defocus_blur", "contrast",         "brightness",
    "saturate",          "pixelate",     "jpeg_compression", "glass_blur",
    "zoom_blur",         "fog",          "motion_blur",      "snow",
    "elastic_transform", "spatter"};
static const double corr_p[CORR_N][5][7] = {
    {{0.04}, {0.06}, {0.08}, {0.09}, {0.10}},                   /* sigma */
    {{500}, {250}, {100}, {75}, {50}},                          /* photons per unit */
    {{0.01}, {0.02}, {0.03}, {0.05}, {0.07}},                   /* salt-and-pepper amount */
    {{0.06}, {0.10}, {0.12}, {0.16}, {0.20}},                   /* multiplicative sigma */
    {{0.4}, {0.6}, {0.7}, {0.8}, {1.0}},                        /* blur sigma */
    {{0.3, 0.4}, {0.4, 0.5}, {0.5, 0.6}, {1, 0.2}, {1.5, 0.1}}, /* disk radius, alias blur */
    {{0.75}, {0.5}, {0.4}, {0.3}, {0.15}},                      /* contrast factor */
    {{0.05}, {0.1}, {0.15}, {0.2}, {0.3}},                      /* HSV value shift */
    {{0.3, 0}, {0.1, 0}, {1.5, 0}, {2, 0.1}, {2.5, 0.2}},       /* HSV saturation a s + b */
    {{0.95}, {0.9}, {0.85}, {0.75}, {0.65}},                    /* box down/up-sampling */
    {{80}, {65}, {58}, {50}, {40}},                             /* JPEG quality */
    {{0.05, 1, 1}, {0.25, 1, 1}, {0.4, 1, 1}, {0.25, 1, 2}, {0.4, 1, 2}}, /* sigma, delta, rounds */
    {{1.06}, {1.11}, {1.16}, {1.21}, {1.26}},               /* zooms 1, 1.01, .. below this */
    {{0.2, 3}, {0.5, 3}, {0.75, 2.5}, {1, 2}, {1.5, 1.75}}, /* fog strength, wibble decay */
    {{6, 1}, {6, 1.5}, {6, 2}, {8, 2}, {9, 2.5}},           /* motion radius, sigma */
    /* snow: flake mean, sd, zoom, threshold, motion radius, sigma, image weight */
    {{0.1, 0.2, 1, 0.6, 8, 3, 0.95},
     {0.1, 0.2, 1, 0.5, 10, 4, 0.9},
     {0.15, 0.3, 1.75, 0.55, 10, 4, 0.9},
     {0.25, 0.3, 2.25, 0.6, 12, 6, 0.85},
     {0.3, 0.3, 1.25, 0.65, 14, 12, 0.8}},
    /* elastic, in units of the image side: displacement, its smoothing, affine jitter */
    {{0, 0, 0.08}, {0.05, 0.2, 0.07}, {0.08, 0.06, 0.06}, {0.1, 0.04, 0.05}, {0.1, 0.03, 0.03}},
    /* spatter: layer mean, sd, smoothing, drop threshold, water strength or mud blur, mud */
    {{0.62, 0.1, 0.7, 0.7, 0.5, 0},
     {0.65, 0.1, 0.8, 0.7, 0.5, 0},
     {0.65, 0.3, 1, 0.69, 0.5, 0},
     {0.65, 0.1, 0.7, 0.69, 0.6, 1},
     {0.65, 0.1, 0.5, 0.68, 0.6, 1}},
};

/* The noise stream of family f at severity sev: the first 11 families keep
 * the streams they had before the later ones were added. */
static uint64_t corr_rng;

void corr_seed(uint64_t seed, int sev, int f)
{
  corr_rng = seed * 31 + (uint64_t)(f < 11 ? sev * 11 + f : 1000 + sev * 16 + f);
}

double corr_u01(void)
{
  return ex_u01(&corr_rng);
}
double corr_normal(void)
{
  return ex_normal(&corr_rng);
}
static double corr_poisson(double lam)
{
  double L, p = 1.0;
  int k = 0;
  if (lam > 60) /* normal approximation for large means */
    return fmax(0.0, floor(lam + sqrt(lam) * corr_normal() + 0.5));
  L = exp(-lam);
  do {
    k++;
    p *= corr_u01();
  } while (p > L);
  return k - 1;
}

int corr_reflect101(int i, int n)
{
  if (n == 1)
    return 0;
  while (i < 0 || i >= n)
    i = i < 0 ? -i : 2 * n - 2 - i;
  return i;
}

/* 2-D correlation of each plane with a (2r+1)^2 kernel; borders: nearest or reflect-101. */
void corr_filter(float *im, int C, int H, int W, const double *k, int r, int nearest, float *tmp)
{
  const int n = 2 * r + 1;
  for (int c = 0; c < C; c++) {
    float *p = im + (size_t)c * H * W;
    memcpy(tmp, p, sizeof(float) * (size_t)H * W);
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) {
        double s = 0;
        for (int dy = -r; dy <= r; dy++)
          for (int dx = -r; dx <= r; dx++) {
            int yy = y + dy, xx = x + dx;
            if (nearest) {
              yy = yy < 0 ? 0 : yy >= H ? H - 1 : yy;
              xx = xx < 0 ? 0 : xx >= W ? W - 1 : xx;
            } else {
              yy = corr_reflect101(yy, H);
              xx = corr_reflect101(xx, W);
            }
            s += k[(dy + r) * n + dx + r] * tmp[yy * W + xx];
          }
        p[y * W + x] = (float)s;
      }
  }
}

static void rgb2hsv(double r, double g, double b, double *h, double *s, double *v)
{
  double mx = fmax(r, fmax(g, b)), mn = fmin(r, fmin(g, b)), d = mx - mn;
  *v = mx;
  *s = mx > 0 ? d / mx : 0;
  if (d <= 0)
    *h = 0;
  else if (mx == r)
    *h = fmod((g - b) / d / 6.0 + 1.0, 1.0);
  else if (mx == g)
    *h = ((b - r) / d + 2.0) / 6.0;
  else
    *h = ((r - g) / d + 4.0) / 6.0;
}

static void hsv2rgb(double h, double s, double v, double *r, double *g, double *b)
{
  double hh = h * 6.0, f;
  int i = (int)floor(hh) % 6;
  double p, q, t;
  f = hh - floor(hh);
  p = v * (1 - s);
  q = v * (1 - f * s);
  t = v * (1 - (1 - f) * s);
  switch (i < 0 ? i + 6 : i) {
  case 0:
    *r = v;
    *g = t;
    *b = p;
    break;
  case 1:
    *r = q;
    *g = v;
    *b = p;
    break;
  case 2:
    *r = p;
    *g = v;
    *b = t;
    break;
  case 3:
    *r = p;
    *g = q;
    *b = v;
    break;
  case 4:
    *r = t;
    *g = p;
    *b = v;
    break;
  default:
    *r = v;
    *g = p;
    *b = q;
    break;
  }
}

/* PIL's BOX resampling of one plane (area weights), separable. */
static void box_resize(const float *src, int H, int W, float *dst, int h, int w, float *tmp)
{
  for (int y = 0; y < H; y++) /* rows: W -> w */
    for (int x = 0; x < w; x++) {
      double a = (double)x * W / w, b = (double)(x + 1) * W / w, s = 0;
      for (int i = (int)floor(a); i < (int)ceil(b) && i < W; i++)
        s += src[y * W + i] * (fmin(b, i + 1.0) - fmax(a, (double)i));
      tmp[y * w + x] = (float)(s / (b - a));
    }
  for (int x = 0; x < w; x++) /* columns: H -> h */
    for (int y = 0; y < h; y++) {
      double a = (double)y * H / h, b = (double)(y + 1) * H / h, s = 0;
      for (int i = (int)floor(a); i < (int)ceil(b) && i < H; i++)
        s += tmp[i * w + x] * (fmin(b, i + 1.0) - fmax(a, (double)i));
      dst[y * w + x] = (float)(s / (b - a));
    }
}

#ifdef NSDE_HAVE_JPEG
/* Encode at quality q with libjpeg (4:2:0 for colour, as PIL) and decode. */
static int jpeg_roundtrip(float *im, int C, int H, int W, int q)
{
  struct jpeg_compress_struct cinfo;
  struct jpeg_decompress_struct dinfo;
  struct jpeg_error_mgr jerr;
  unsigned char *buf = NULL, *pix = malloc((size_t)C * H * W);
  unsigned long len = 0;
  if (!pix || (C != 1 && C != 3)) {
    free(pix);
    return -1;
  }
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      for (int c = 0; c < C; c++)
        pix[((size_t)y * W + x) * C + c] =
            (unsigned char)lrint(fmin(1.0, fmax(0.0, im[((size_t)c * H + y) * W + x])) * 255.0);
  cinfo.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, &buf, &len);
  cinfo.image_width = (JDIMENSION)W;
  cinfo.image_height = (JDIMENSION)H;
  cinfo.input_components = C;
  cinfo.in_color_space = C == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, q, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = pix + (size_t)cinfo.next_scanline * W * C;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  dinfo.err = jpeg_std_error(&jerr);
  jpeg_create_decompress(&dinfo);
  jpeg_mem_src(&dinfo, buf, len);
  jpeg_read_header(&dinfo, TRUE);
  jpeg_start_decompress(&dinfo);
  while (dinfo.output_scanline < dinfo.output_height) {
    JSAMPROW row = pix + (size_t)dinfo.output_scanline * W * C;
    jpeg_read_scanlines(&dinfo, &row, 1);
  }
  jpeg_finish_decompress(&dinfo);
  jpeg_destroy_decompress(&dinfo);
  free(buf);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      for (int c = 0; c < C; c++)
        im[((size_t)c * H + y) * W + x] = pix[((size_t)y * W + x) * C + c] / 255.0f;
  free(pix);
  return 0;
}
#endif

/* skimage.filters.gaussian: truncated at 4 sigma, nearest borders. */
void corr_gauss_blur(float *im, int C, int H, int W, double sigma, float *tmp)
{
  int r = (int)(4.0 * sigma + 0.5);
  double k[(2 * 4 + 1) * (2 * 4 + 1)], s = 0;
  if (r > 4)
    r = 4; /* the published sigmas stay at or below 1 */
  for (int dy = -r; dy <= r; dy++)
    for (int dx = -r; dx <= r; dx++)
      s += k[(dy + r) * (2 * r + 1) + dx + r] = exp(-(dx * dx + dy * dy) / (2 * sigma * sigma));
  for (int i = 0; i < (2 * r + 1) * (2 * r + 1); i++)
    k[i] /= s;
  corr_filter(im, C, H, W, k, r, 1, tmp);
}

/* Glass blur: blur, quantise to bytes, swap each pixel (rows and columns
 * from the far border inwards, all channels) with one at an offset in
 * [-delta, delta) per axis, rounds times, blur again. */
static void glass_blur(float *im, int C, int H, int W, const double *c, float *tmp)
{
  const int d = (int)c[1];
  corr_gauss_blur(im, C, H, W, c[0], tmp);
  for (size_t i = 0; i < (size_t)C * H * W; i++)
    im[i] = (float)(floor(fmin(1.0, fmax(0.0, im[i])) * 255.0) / 255.0);
  for (int it = 0; it < (int)c[2]; it++)
    for (int y = H - d; y > d; y--)
      for (int x = W - d; x > d; x--) {
        /* offsets in [-d, d): the partner stays inside, y + dy in [1, H - 1] */
        const int dx = (int)floor(corr_u01() * 2 * d) - d, dy = (int)floor(corr_u01() * 2 * d) - d;
        const int y2 = y + dy, x2 = x + dx;
        for (int ch = 0; ch < C; ch++) {
          float *p = im + (size_t)ch * H * W, t = p[y * W + x];
          p[y * W + x] = p[y2 * W + x2];
          p[y2 * W + x2] = t;
        }
      }
  corr_gauss_blur(im, C, H, W, c[0], tmp);
}

/* scipy.ndimage.zoom (order 1) of the centre crop by z, trimmed to H x W,
 * added to out: one plane. Output pixel o of a zoom from n to m pixels reads
 * input o (n - 1) / (m - 1), linearly interpolated. */
void corr_zoom_add(const float *p, int H, int W, double z, float *out)
{
  const int ch = (int)ceil(H / z), cw = (int)ceil(W / z), top = (H - ch) / 2, left = (W - cw) / 2;
  const int mh = (int)floor(ch * z + 0.5), mw = (int)floor(cw * z + 0.5);
  const int ty = (mh - H) / 2, tx = (mw - W) / 2;
  for (int y = 0; y < H; y++) {
    const double sy = mh > 1 ? (double)(y + ty) * (ch - 1) / (mh - 1) : 0;
    const int y0 = (int)floor(sy), y1 = y0 + 1 < ch ? y0 + 1 : y0;
    for (int x = 0; x < W; x++) {
      const double sx = mw > 1 ? (double)(x + tx) * (cw - 1) / (mw - 1) : 0;
      const int x0 = (int)floor(sx), x1 = x0 + 1 < cw ? x0 + 1 : x0;
      const double fy = sy - y0, fx = sx - x0;
      const float *r0 = p + (size_t)(top + y0) * W + left, *r1 = p + (size_t)(top + y1) * W + left;
      out[y * W + x] += (float)((1 - fy) * ((1 - fx) * r0[x0] + fx * r0[x1]) +
                                fy * ((1 - fx) * r1[x0] + fx * r1[x1]));
    }
  }
}

/* Zoom blur: the mean of the image and its zooms by 1, 1.01, ... below c. */
static void zoom_blur(float *im, int C, int H, int W, double top_zoom, float *tmp)
{
  int nz = 0;
  for (int ch = 0; ch < C; ch++) {
    float *p = im + (size_t)ch * H * W;
    nz = 0;
    memset(tmp, 0, sizeof(float) * (size_t)H * W);
    for (double z = 1.0; z < top_zoom - 1e-9; z = 1.0 + 0.01 * ++nz)
      corr_zoom_add(p, H, W, z, tmp);
    for (int i = 0; i < H * W; i++)
      p[i] = (p[i] + tmp[i]) / (float)(nz + 1);
  }
}

/* Diamond-square height map of side m (a power of two), in [0, 1], on a
 * torus, the initial wibble 100 divided by decay at each halving. */
static void plasma(double *a, int m, double decay)
{
  double wib = 100, lo = INFINITY, hi = -INFINITY;
#define A(i, j) a[(((i) % m + m) % m) * m + (((j) % m + m) % m)]
  a[0] = 0;
  for (int s = m; s >= 2; s /= 2, wib /= decay) {
    const int h = s / 2;
    for (int i = 0; i < m; i += s) /* squares: corners' mean + wibble */
      for (int j = 0; j < m; j += s)
        A(i + h, j + h) = (A(i, j) + A(i + s, j) + A(i, j + s) + A(i + s, j + s)) / 4 +
                          wib * (wib * (2 * corr_u01() - 1));
    for (int i = 0; i < m; i += s) /* diamonds: the two centres and corners beside */
      for (int j = 0; j < m; j += s) {
        A(i, j + h) = (A(i + h, j + h) + A(i - h, j + h) + A(i, j) + A(i, j + s)) / 4 +
                      wib * (wib * (2 * corr_u01() - 1));
        A(i + h, j) = (A(i + h, j + h) + A(i + h, j - h) + A(i, j) + A(i + s, j)) / 4 +
                      wib * (wib * (2 * corr_u01() - 1));
      }
  }
#undef A
  for (int i = 0; i < m * m; i++) {
    lo = fmin(lo, a[i]);
    hi = fmax(hi, a[i]);
  }
  for (int i = 0; i < m * m; i++)
    a[i] = hi > lo ? (a[i] - lo) / (hi - lo) : 0;
}

/* Fog: a plasma-fractal haze of strength c[0] added to every channel, the
 * image rescaled by max / (max + c[0]). */
static int fog(float *im, int C, int H, int W, const double *c)
{
  int m = 1;
  double mx = 0, *a;
  while (m < H || m < W)
    m *= 2;
  a = malloc(sizeof(double) * (size_t)m * m);
  if (!a)
    return -1;
  plasma(a, m, c[1]);
  for (size_t i = 0; i < (size_t)C * H * W; i++)
    mx = fmax(mx, im[i]);
  for (int ch = 0; ch < C; ch++)
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) {
        float *p = im + ((size_t)ch * H + y) * W + x;
        *p = (float)((*p + c[0] * a[y * m + x]) * mx / (mx + c[0]));
      }
  free(a);
  return 0;
}

/* Defocus: a 17x17 aliased disk of radius c0 antialiased by a 3x3
 * Gaussian of sigma c1, reflect-101 borders. */
static void defocus_blur(float *im, int C, int H, int W, const double *c, float *tmp)
{
  double disk[17 * 17], k[17 * 17], g[3], s = 0, gs = 0;
  for (int y = -8; y <= 8; y++)
    for (int x = -8; x <= 8; x++)
      s += disk[(y + 8) * 17 + x + 8] = (x * x + y * y <= c[0] * c[0]) ? 1.0 : 0.0;
  for (int i = 0; i < 17 * 17; i++)
    disk[i] /= s;
  for (int i = 0; i < 3; i++)
    gs += g[i] = exp(-(i - 1) * (i - 1) / (2 * c[1] * c[1]));
  for (int i = 0; i < 3; i++)
    g[i] /= gs;
  for (int y = 0; y < 17; y++)
    for (int x = 0; x < 17; x++) {
      double v = 0;
      for (int a = -1; a <= 1; a++)
        for (int b = -1; b <= 1; b++)
          v += g[a + 1] * g[b + 1] *
               disk[corr_reflect101(y + a, 17) * 17 + corr_reflect101(x + b, 17)];
      k[y * 17 + x] = v;
    }
  corr_filter(im, C, H, W, k, 8, 0, tmp);
}

/* Whether a family can run on C-channel images here. */
int corr_available(int fam, int C)
{
#ifndef NSDE_HAVE_JPEG
  if (fam == CORR_JPEG)
    return 0;
#endif
  if ((fam == CORR_SATURATE) && C != 3)
    return 0; /* no colour to saturate */
  return fam != CORR_JPEG || C == 1 || C == 3;
}

/* Corrupt one image in place (returns -1 on allocation failure). */
int corrupt_image(float *im, int C, int H, int W, int fam, int sev)
{
  const size_t n = (size_t)C * H * W;
  const double *c;
  float *tmp;
  int rc = 0;
  if (sev <= 0)
    return 0;
  c = corr_p[fam][sev - 1];
  tmp = malloc(sizeof(float) * (n + 64 * 64 + 16));
  if (!tmp)
    return -1;
  switch (fam) {
  case CORR_GAUSS:
    for (size_t i = 0; i < n; i++)
      im[i] += (float)(c[0] * corr_normal());
    break;
  case CORR_SHOT:
    for (size_t i = 0; i < n; i++)
      im[i] = (float)(corr_poisson(im[i] * c[0]) / c[0]);
    break;
  case CORR_IMPULSE:
    for (size_t i = 0; i < n; i++) {
      double u = corr_u01();
      if (u < c[0] / 2)
        im[i] = 0.0f;
      else if (u < c[0])
        im[i] = 1.0f;
    }
    break;
  case CORR_SPECKLE:
    for (size_t i = 0; i < n; i++)
      im[i] += (float)(im[i] * c[0] * corr_normal());
    break;
  case CORR_GBLUR: /* skimage: truncate 4 sigma, nearest border */
    corr_gauss_blur(im, C, H, W, c[0], tmp);
    break;
  case CORR_GLASS: glass_blur(im, C, H, W, c, tmp); break;
  case CORR_ZOOM: zoom_blur(im, C, H, W, c[0], tmp); break;
  case CORR_FOG: rc = fog(im, C, H, W, c); break;
  case CORR_MOTION: corr_motion_blur(im, C, H, W, c, tmp); break;
  case CORR_SNOW: rc = corr_snow(im, C, H, W, c); break;
  case CORR_ELASTIC: rc = corr_elastic(im, C, H, W, c); break;
  case CORR_SPATTER: rc = corr_spatter(im, C, H, W, c); break;
  case CORR_DEFOCUS: defocus_blur(im, C, H, W, c, tmp); break;
  case CORR_CONTRAST:
    for (int ch = 0; ch < C; ch++) {
      float *p = im + (size_t)ch * H * W;
      double mean = 0;
      for (int i = 0; i < H * W; i++)
        mean += p[i];
      mean /= H * W;
      for (int i = 0; i < H * W; i++)
        p[i] = (float)((p[i] - mean) * c[0] + mean);
    }
    break;
  case CORR_BRIGHT:
  case CORR_SATURATE:
    if (C != 3) { /* grey: the value channel is the image */
      if (fam == CORR_BRIGHT)
        for (size_t i = 0; i < n; i++)
          im[i] = (float)fmin(1.0, im[i] + c[0]);
      break;
    }
    for (int i = 0; i < H * W; i++) {
      double r = fmin(1, fmax(0, im[i])), g = fmin(1, fmax(0, im[H * W + i]));
      double b = fmin(1, fmax(0, im[2 * H * W + i])), h, s, v;
      rgb2hsv(r, g, b, &h, &s, &v);
      if (fam == CORR_BRIGHT)
        v = fmin(1.0, fmax(0.0, v + c[0]));
      else
        s = fmin(1.0, fmax(0.0, s * c[0] + c[1]));
      hsv2rgb(h, s, v, &r, &g, &b);
      im[i] = (float)r;
      im[H * W + i] = (float)g;
      im[2 * H * W + i] = (float)b;
    }
    break;
  case CORR_PIXELATE: {
    int h = (int)(H * c[0]), w = (int)(W * c[0]);
    float *small = malloc(sizeof(float) * ((size_t)h * w + (size_t)H * W * 2));
    if (!small) {
      rc = -1;
      break;
    }
    for (int ch = 0; ch < C; ch++) {
      float *p = im + (size_t)ch * H * W, *t2 = small + (size_t)h * w;
      box_resize(p, H, W, small, h, w, t2);
      box_resize(small, h, w, p, H, W, t2);
    }
    free(small);
    break;
  }
  case CORR_JPEG:
#ifdef NSDE_HAVE_JPEG
    rc = jpeg_roundtrip(im, C, H, W, (int)c[0]);
#endif
    break;
  }
  for (size_t i = 0; i < n && rc == 0; i++)
    im[i] = im[i] < 0.0f ? 0.0f : im[i] > 1.0f ? 1.0f : im[i];
  free(tmp);
  return rc != 0 ? -1 : 0;
}
