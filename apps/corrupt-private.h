/* What the corruption files share (corrupt.c, corrupt-motion.c,
 * corrupt-elastic.c, corrupt-spatter.c): the noise stream, borders, zoom, and the families
 * that live outside corrupt.c. Images are C x H x W floats.
 * SPDX-License-Identifier: MIT */
#ifndef NSDE_APPS_CORRUPT_PRIVATE_H
#define NSDE_APPS_CORRUPT_PRIVATE_H

/* The stream corr_seed started: uniform in (0, 1), standard normal. */
double corr_u01(void);
double corr_normal(void);
/* Index i reflected into [0, n) without repeating the edge (OpenCV's
 * BORDER_REFLECT_101). */
int corr_reflect101(int i, int n);
/* scipy.ndimage.zoom (order 1) of the centre crop of one plane by z, trimmed
 * to H x W and added to out. */
void corr_zoom_add(const float *p, int H, int W, double z, float *out);

/* Filter each of the C planes in place with the (2r + 1)^2 kernel k
 * (correlation; nearest borders if nearest, else reflect-101); tmp holds
 * H W floats. */
void corr_filter(float *im, int C, int H, int W, const double *k, int r, int nearest, float *tmp);
/* skimage.filters.gaussian (truncated at 4 sigma, nearest borders), sigma
 * at most 1; tmp holds H W floats. */
void corr_gauss_blur(float *im, int C, int H, int W, double sigma, float *tmp);

/* Motion blur with the family's (radius, sigma) and a random angle in
 * [-45, 45) degrees; tmp holds H W floats. */
void corr_motion_blur(float *im, int C, int H, int W, const double *c, float *tmp);
/* Snow with the family's seven parameters (-1: no memory). */
int corr_snow(float *im, int C, int H, int W, const double *c);
/* Elastic transform with the family's three parameters (-1: no memory). */
int corr_elastic(float *im, int C, int H, int W, const double *c);
/* Spatter with the family's six parameters (-1: no memory). */
int corr_spatter(float *im, int C, int H, int W, const double *c);
/* Canny edges (Sobel 3x3, L1 magnitude, thresholds low and high) of an
 * H x W byte image into edge (1: edge); work holds 3 H W ints. */
void corr_canny(const unsigned char *u, int H, int W, double low, double high, unsigned char *edge,
                int *work);

#endif
