/*
 * CIFAR-10-C style corruptions computed from the image alone (corrupt.c has
 * the definitions and their sources). Images are C x H x W floats in [0, 1];
 * severities 1..5, 0 the identity.
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_APPS_CORRUPT_H
#define NSDE_APPS_CORRUPT_H

#include <stdint.h>

enum {
  CORR_GAUSS,
  CORR_SHOT,
  CORR_IMPULSE,
  CORR_SPECKLE,
  CORR_GBLUR,
  CORR_DEFOCUS,
  CORR_CONTRAST,
  CORR_BRIGHT,
  CORR_SATURATE,
  CORR_PIXELATE,
  CORR_JPEG,
  CORR_GLASS,
  CORR_ZOOM,
  CORR_FOG,
  CORR_MOTION,
  CORR_SNOW,
  CORR_ELASTIC,
  CORR_SPATTER,
  CORR_N
};

/* The families' names, as CIFAR-10-C spells them. */
extern const char *const corr_names[CORR_N];

/* Start the noise stream of family f at severity sev for this seed: the
 * first 11 families keep the streams they had before the later ones came. */
void corr_seed(uint64_t seed, int sev, int f);
/* Whether a family can run on C-channel images here. */
int corr_available(int fam, int C);
/* Corrupt one image in place, drawing from the stream (-1: no memory). */
int corrupt_image(float *im, int C, int H, int W, int fam, int sev);

#endif
