/*
 * nsde-eval's parts (apps/): what the clean, attack, hidden-state and
 * corruption evaluations share. Public API only.
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_APPS_EVAL_H
#define NSDE_APPS_EVAL_H

#include <math.h>
#include <stdint.h>

#include "common.h"

/* One evaluation run: the model, the test images and the options. */
struct eval {
  struct nsde_context *ctx;
  struct nsde_model *m;
  struct nsde_model_config cfg;
  struct nsde_dataset *ds;
  struct nsde_tensor *x, *gx, *probs; /* a batch of images, their gradient, probabilities */
  int32_t *labels;
  int64_t *idx;
  int64_t n, item; /* test images (whole batches), floats per image */
  int c, h, w, classes, bs;
  unsigned long long seed;
  int ttn, steps;       /* TTN passes, attack steps */
  int eot;              /* noisy passes averaged per attack gradient */
  int restarts;         /* PGD runs per image: from the clean image, then random starts */
  int attack_noise_off; /* attack and classify the model with its noise off */
  const char *outdir;
};

/* The predicted class: the first of the largest probabilities. */
static inline int argmax_one(const float *probs, int classes)
{
  int best = 0;
  for (int k = 1; k < classes; k++)
    if (probs[k] > probs[best])
      best = k;
  return best;
}

static inline int correct_one(const float *probs, int32_t label, int classes)
{
  return argmax_one(probs, classes) == label;
}

/* Binomial standard error of an accuracy p measured on n images. */
static inline double bse(double p, int64_t n)
{
  return n > 0 ? sqrt(p * (1.0 - p) / (double)n) : NAN;
}

static inline double l2dist(const float *a, const float *b, int64_t n)
{
  double s = 0;
  for (int64_t i = 0; i < n; i++)
    s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
  return sqrt(s);
}

/* One Adam step for one coordinate with gradient g (moments m, v; step
 * counted from 0): the amount to subtract. */
static inline float adam_delta(float *m, float *v, double g, double lr, int step)
{
  const double b1 = 0.9, b2 = 0.999;
  *m = (float)(b1 * *m + (1 - b1) * g);
  *v = (float)(b2 * *v + (1 - b2) * g * g);
  return (float)(lr * (*m / (1 - pow(b1, step + 1))) / (sqrt(*v / (1 - pow(b2, step + 1))) + 1e-8));
}

/* Project x on the l2 ball of radius eps around x0, then on [0, 1]. */
static inline void project(float *x, const float *x0, int64_t n, double eps)
{
  double nrm = l2dist(x, x0, n), f = nrm > eps ? eps / nrm : 1.0;
  for (int64_t i = 0; i < n; i++)
    x[i] = (float)fmin(1.0, fmax(0.0, x0[i] + f * ((double)x[i] - x0[i])));
}

static inline int64_t count_correct(const float *probs, const int32_t *labels, int64_t count,
                                    int classes)
{
  int64_t hits = 0;
  for (int64_t b = 0; b < count; b++)
    hits += correct_one(probs + b * classes, labels[b], classes);
  return hits;
}

/* The attacks' names, as --attacks and the result files spell them. */
extern const char *const eval_attack_names[3];

/* eval-attacks.c: l2 attacks (authors, PGD, C&W) at every eps, into fa; each
 * image's outcome (method,eps,image,correct) into fi */
void eval_attacks(const struct eval *E, int64_t attack_images, const int use_attack[3],
                  const double *eps_list, int neps, double cw_c, double cw_kappa, FILE *fa,
                  FILE *fi);
/* eval-hidden.c: the paper's Fig. 4 curve averaged over images; 0 or 1 (cannot write) */
int eval_hidden(const struct eval *E, int hpasses, int64_t himages);
/* eval-corrupt.c: accuracy under each corruption family and severity with
 * each of the ncp (<= 4) pass counts cpasses (0: noise off, 1: one noisy
 * pass, more: the TTN ensemble), and the drop from severity 0, into fc; each
 * image's outcome into fi */
int eval_corruptions(const struct eval *E, int severities, const int *cpasses, int ncp,
                     int64_t cimages, FILE *fc, FILE *fi);
/* eval-corrupt.c: mean |change| per family and severity on the first n images, no model */
int eval_corruption_report(const char *data, const char *dir, int64_t n, unsigned long long seed);

#endif
