/* What the corruption files share (corrupt.c, corrupt-motion.c,
 * corrupt-elastic.c): the noise stream, borders, zoom, and the families
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

/* Motion blur with the family's (radius, sigma) and a random angle in
 * [-45, 45) degrees; tmp holds H W floats. */
void corr_motion_blur(float *im, int C, int H, int W, const double *c, float *tmp);
/* Snow with the family's seven parameters (-1: no memory). */
int corr_snow(float *im, int C, int H, int W, const double *c);
/* Elastic transform with the family's three parameters (-1: no memory). */
int corr_elastic(float *im, int C, int H, int W, const double *c);

#endif
