/*
 * nsde-eval's l2 attacks, noise on while attacking (one Brownian path per
 * gradient, or the mean over E->eot paths: expectation over transformation),
 * classification with TTN: the authors' Adam attack, l2 PGD, and
 * Carlini-Wagner (see nsde-eval.c); PGD runs E->restarts times per image,
 * first from the clean image, then from random points of the eps ball, and
 * an image counts as broken when any run breaks it; with E->attack_noise_off the model is
 * attacked and classified with its noise off, which tells a stochastic
 * defence from a smoother learned map. Public API only.
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L
#include "eval.h"
#include "rng.h"

/* The input gradient of one attack step into E->gx: one noisy pass with
 * seed sd, or with E->eot > 1 (a model with noise), the mean over E->eot
 * passes with independent Brownian paths (the first with seed sd, so that
 * eot = 1 is the single-path attack). With lo->per_image set, each image's
 * value is the mean over the passes.
 * acc and pl: scratch of bs * item floats and bs doubles. */
static void attack_grad(const struct eval *E, struct nsde_tensor *x,
                        const struct nsde_loss_options *lo, unsigned long long sd, float *acc,
                        double *pl, const char *what)
{
  const int passes = E->eot; /* 1 for an ODE (nsde-eval.c) */
  const int64_t tot = E->bs * E->item;
  float *gd = nsde_tensor_data(E->gx);
  struct nsde_loss_options o = *lo;

  ex_check(E->ctx, nsde_model_loss_grad_opts(E->m, x, E->labels, !E->attack_noise_off, sd, lo),
           what);
  if (passes == 1)
    return;
  memcpy(acc, gd, sizeof(float) * (size_t)tot);
  if (lo->per_image)
    o.per_image = pl;
  for (int p = 1; p < passes; p++) {
    ex_check(E->ctx,
             nsde_model_loss_grad_opts(E->m, x, E->labels, 1,
                                       sd + 1000003ULL * (unsigned long long)p, &o),
             what);
    for (int64_t i = 0; i < tot; i++)
      acc[i] += gd[i];
    for (int k = 0; lo->per_image && k < E->bs; k++)
      lo->per_image[k] += pl[k];
  }
  for (int64_t i = 0; i < tot; i++)
    gd[i] = acc[i] / (float)passes;
  for (int k = 0; lo->per_image && k < E->bs; k++)
    lo->per_image[k] /= passes;
}

const char *const eval_attack_names[3] = {"authors", "pgd", "cw"};

/* An attack run's scratch, per batch of bs images (tot floats) or per
 * attacked image (na of them, nab batches). */
struct attack_ws {
  int64_t na, nab, tot;
  int ttn; /* classification passes */
  float *x0, *mo, *vo, *wv, *best, *acc;
  double *cw_l2, *pl, *pl2, *dist; /* dist: per image of a batch */
  unsigned char *clean_ok, *cw_ok, *alive;
};

static int ws_alloc(struct attack_ws *W, int bs)
{
  const size_t tot = (size_t)W->tot, na = (size_t)W->na;
  W->x0 = malloc(sizeof(float) * tot);
  W->mo = malloc(sizeof(float) * tot);
  W->vo = malloc(sizeof(float) * tot);
  W->wv = malloc(sizeof(float) * tot);
  W->best = malloc(sizeof(float) * tot);
  W->acc = malloc(sizeof(float) * tot);
  W->clean_ok = malloc(na);
  W->cw_ok = malloc(na);
  W->cw_l2 = malloc(sizeof(double) * na);
  W->pl = malloc(sizeof(double) * (size_t)bs);
  W->pl2 = malloc(sizeof(double) * (size_t)bs);
  W->dist = malloc(sizeof(double) * (size_t)bs);
  W->alive = malloc((size_t)bs);
  return W->x0 && W->mo && W->vo && W->wv && W->best && W->acc && W->clean_ok && W->cw_ok &&
         W->cw_l2 && W->pl && W->pl2 && W->dist && W->alive;
}

static void ws_free(struct attack_ws *W)
{
  free(W->x0);
  free(W->mo);
  free(W->vo);
  free(W->wv);
  free(W->best);
  free(W->acc);
  free(W->clean_ok);
  free(W->cw_ok);
  free(W->cw_l2);
  free(W->pl);
  free(W->pl2);
  free(W->dist);
  free(W->alive);
}

/* Test images bb * bs .. (bb + 1) * bs into E->x, E->labels. */
static void load_batch(const struct eval *E, int64_t bb)
{
  for (int k = 0; k < E->bs; k++)
    E->idx[k] = bb * E->bs + k;
  ex_check(E->ctx, nsde_dataset_batch(E->ds, E->idx, E->bs, 0, 0, E->x, E->labels), "batch");
}

/* The TTN classification of E->x with batch bb's seed; whether image k is right. */
static void classify(const struct eval *E, const struct attack_ws *W, int64_t bb)
{
  ex_check(E->ctx,
           nsde_model_predict(E->m, E->x, W->ttn, E->seed + 99 + (unsigned long long)bb, E->probs),
           "attack TTN");
}

static int right(const struct eval *E, int k)
{
  return correct_one((float *)nsde_tensor_data(E->probs) + k * E->classes, E->labels[k],
                     E->classes);
}

/* Carlini-Wagner on batch bb: Adam on tanh-space w for E->steps steps; the
 * smallest iterate misclassified on its noisy pass is kept (cw_l2) and then
 * confirmed with TTN (cw_ok: not broken). */
static void cw_batch(const struct eval *E, struct attack_ws *W, int64_t bb,
                     const struct nsde_loss_options *lo, double cw_c, double cw_kappa)
{
  const int bs = E->bs;
  const int64_t item = E->item, tot = W->tot;
  float *xd = nsde_tensor_data(E->x), *gd = nsde_tensor_data(E->gx);

  load_batch(E, bb);
  memcpy(W->x0, xd, sizeof(float) * (size_t)tot);
  memcpy(W->best, xd, sizeof(float) * (size_t)tot);
  memset(W->mo, 0, sizeof(float) * (size_t)tot);
  memset(W->vo, 0, sizeof(float) * (size_t)tot);
  for (int64_t i = 0; i < tot; i++) /* x = (tanh w + 1) / 2, starting at x0 */
    W->wv[i] = (float)atanh(fmin(1 - 1e-6, fmax(-1 + 1e-6, 2.0 * W->x0[i] - 1.0)));
  for (int k = 0; k < bs; k++)
    W->cw_l2[bb * bs + k] = INFINITY;
  for (int st = 0; st < E->steps; st++) {
    struct nsde_loss_options cw = *lo;
    cw.kind = NSDE_MODEL_LOSS_CW_MARGIN;
    cw.kappa = cw_kappa;
    cw.per_image = W->pl;
    for (int64_t i = 0; i < tot; i++)
      xd[i] = (float)(0.5 * (tanh(W->wv[i]) + 1.0));
    attack_grad(E, E->x, &cw, E->seed + 4242 + (unsigned long long)(st * 131 + bb), W->acc, W->pl2,
                "C&W gradient");
    for (int k = 0; k < bs; k++) { /* f <= -kappa: misclassified on this noisy pass */
      double d = l2dist(xd + k * item, W->x0 + k * item, item);
      if (W->pl[k] <= -cw_kappa && d < W->cw_l2[bb * bs + k]) {
        W->cw_l2[bb * bs + k] = d;
        memcpy(W->best + k * item, xd + k * item, sizeof(float) * (size_t)item);
      }
    }
    for (int64_t i = 0; i < tot; i++) {
      double dx = 0.5 * (1.0 - tanh(W->wv[i]) * tanh(W->wv[i]));
      W->wv[i] -= adam_delta(&W->mo[i], &W->vo[i],
                             (2.0 * ((double)xd[i] - W->x0[i]) + cw_c * bs * gd[i]) * dx, 0.01, st);
    }
  }
  memcpy(xd, W->best, sizeof(float) * (size_t)tot); /* confirm with TTN */
  classify(E, W, bb);
  for (int k = 0; k < bs; k++)
    W->cw_ok[bb * bs + k] = (unsigned char)(isinf(W->cw_l2[bb * bs + k]) || right(E, k));
}

static void cw_report(const struct attack_ws *W, double cw_kappa)
{
  int64_t unconfirmed = 0, found = 0, ok = 0;
  for (int64_t j = 0; j < W->na; j++) {
    ok += W->clean_ok[j];
    found += W->clean_ok[j] && !isinf(W->cw_l2[j]);
    unconfirmed += W->clean_ok[j] && !isinf(W->cw_l2[j]) && W->cw_ok[j];
  }
  printf("nsde-eval: cw      kappa %g: %lld of the %lld correctly classified images reached a "
         "margin <= "
         "-kappa; TTN does not confirm %lld of those (counted as not broken)\n",
         cw_kappa, (long long)found, (long long)ok, (long long)unconfirmed);
}

/* A point drawn uniformly from the l2 ball of radius eps around each image
 * of the batch (then clipped to [0, 1]): PGD's random start number r. */
static void random_start(const struct eval *E, struct attack_ws *W, double eps, int64_t bb, int r)
{
  const int64_t item = E->item;
  float *xd = nsde_tensor_data(E->x);
  for (int k = 0; k < E->bs; k++) {
    uint64_t st = (E->seed * 1000003ULL + (uint64_t)(bb * E->bs + k)) * 1009ULL + (uint64_t)r;
    double nrm = 0, rad;
    for (int64_t i = 0; i < item; i++) {
      W->acc[k * item + i] = (float)ex_normal(&st);
      nrm += (double)W->acc[k * item + i] * W->acc[k * item + i];
    }
    rad = eps * pow(ex_u01(&st), 1.0 / (double)item) / (nrm > 0 ? sqrt(nrm) : 1.0);
    for (int64_t i = 0; i < item; i++)
      xd[k * item + i] = (float)(W->x0[k * item + i] + rad * W->acc[k * item + i]);
    project(xd + k * item, W->x0 + k * item, item, eps);
  }
}

/* The authors' Adam attack (meth 0) or l2 PGD (1) on batch bb at radius
 * eps, starting from the clean images (kept in x0), or for PGD run r > 0
 * from a random point of the ball (with other Brownian paths). */
static void descend_batch(const struct eval *E, struct attack_ws *W, int meth, double eps,
                          int64_t bb, int r, const struct nsde_loss_options *lo)
{
  const int bs = E->bs, steps = E->steps;
  const int64_t item = E->item, tot = W->tot;
  float *xd = nsde_tensor_data(E->x), *gd = nsde_tensor_data(E->gx);

  load_batch(E, bb);
  memcpy(W->x0, xd, sizeof(float) * (size_t)tot);
  memset(W->mo, 0, sizeof(float) * (size_t)tot);
  memset(W->vo, 0, sizeof(float) * (size_t)tot);
  if (r > 0 && eps > 0)
    random_start(E, W, eps, bb, r);
  for (int st = 0; eps > 0 && st < steps; st++) {
    const unsigned long long sd = E->seed + 7777 + (unsigned long long)(st * 131 + bb) +
                                  7919ULL * 1000003ULL * (unsigned long long)r;
    attack_grad(E, E->x, lo, sd, W->acc, W->pl2, "attack gradient");
    if (meth == 0) { /* Adam descent on -CE */
      for (int64_t i = 0; i < tot; i++)
        xd[i] -= adam_delta(&W->mo[i], &W->vo[i], -gd[i], 0.005, st);
    } else { /* l2 PGD: ascend along the normalised gradient */
      const double alpha = 2.5 * eps / steps;
      for (int k = 0; k < bs; k++) {
        double gn = 0;
        for (int64_t i = 0; i < item; i++)
          gn += (double)gd[k * item + i] * gd[k * item + i];
        gn = sqrt(gn);
        if (gn > 0)
          for (int64_t i = 0; i < item; i++)
            xd[k * item + i] += (float)(alpha * gd[k * item + i] / gn);
      }
    }
    for (int k = 0; k < bs; k++)
      project(xd + k * item, W->x0 + k * item, item, eps);
  }
}

/* Attack meth at radius eps on every attacked image: a row per image into
 * fi, the accuracy and mean distortion into fa and on stdout. */
static void score_eps(const struct eval *E, struct attack_ws *W, int meth, double eps,
                      const struct nsde_loss_options *lo, FILE *fa, FILE *fi)
{
  const int bs = E->bs;
  const int64_t item = E->item, na = W->na;
  const float *xd = nsde_tensor_data(E->x);
  int64_t hits = 0;
  double l2sum = 0;

  for (int64_t bb = 0; bb < W->nab; bb++) {
    if (meth == 2) {
      for (int k = 0; k < bs; k++) {
        int64_t j = bb * bs + k;
        int broken = !W->cw_ok[j] && W->cw_l2[j] <= eps;
        hits += W->clean_ok[j] && !broken;
        fprintf(fi, "cw,%g,%lld,%d\n", eps, (long long)j, W->clean_ok[j] && !broken);
        l2sum += W->clean_ok[j] && broken ? W->cw_l2[j] : 0.0;
      }
      continue;
    }
    for (int k = 0; k < bs; k++) {
      W->alive[k] = W->clean_ok[bb * bs + k];
      W->dist[k] = 0.0; /* the returned example: the clean image where that already fails */
    }
    for (int r = 0; r < (meth == 1 ? E->restarts : 1); r++) {
      descend_batch(E, W, meth, eps, bb, r, lo);
      classify(E, W, bb);
      for (int k = 0; k < bs; k++)
        if (W->alive[k]) { /* the run that breaks it, or the last */
          W->dist[k] = l2dist(xd + k * item, W->x0 + k * item, item);
          W->alive[k] = (unsigned char)right(E, k);
        }
    }
    for (int k = 0; k < bs; k++) {
      hits += W->alive[k];
      fprintf(fi, "%s,%g,%lld,%d\n", eval_attack_names[meth], eps, (long long)(bb * bs + k),
              W->alive[k]);
      l2sum += W->dist[k];
    }
  }
  printf("nsde-eval: %-7s l2 attack eps %.3f: accuracy %.4f +- %.4f, mean distortion %.4f "
         "(%lld images)\n",
         eval_attack_names[meth], eps, (double)hits / na, bse((double)hits / na, na), l2sum / na,
         (long long)na);
  fprintf(fa, "%s,%g,%.6f,%.6f,%.6f,%lld\n", eval_attack_names[meth], eps, (double)hits / na,
          l2sum / na, bse((double)hits / na, na), (long long)na);
  fflush(stdout);
}

void eval_attacks(const struct eval *E, int64_t attack_images, const int use_attack[3],
                  const double *eps_list, int neps, double cw_c, double cw_kappa, FILE *fa,
                  FILE *fi)
{
  const int bs = E->bs;
  struct nsde_loss_options lo; /* every attack step: dL/dx only */
  struct attack_ws W = {0};

  nsde_loss_options_init(&lo);
  lo.grad_images = E->gx;
  lo.no_param_grads = 1;
  fprintf(fa, "method,eps,accuracy,mean_l2,se,images\n");
  fprintf(fi, "method,eps,image,correct\n");
  if (attack_images <= 0 || E->steps <= 0)
    return;
  W.na = attack_images < E->n ? attack_images / bs * bs : E->n / bs * bs;
  W.nab = W.na / bs;
  W.tot = bs * E->item;
  W.ttn = E->attack_noise_off ? 0 : E->ttn;
  if (!ws_alloc(&W, bs)) {
    fprintf(stderr, "nsde-eval: out of memory for the attacks\n");
    ws_free(&W);
    exit(1);
  }
  /* clean TTN correctness per image, with the seeds the attacks classify with */
  for (int64_t bb = 0; bb < W.nab; bb++) {
    load_batch(E, bb);
    classify(E, &W, bb);
    for (int k = 0; k < bs; k++)
      W.clean_ok[bb * bs + k] = (unsigned char)right(E, k);
  }
  for (int meth = 0; meth < 3; meth++) {
    if (!use_attack[meth] || W.na == 0)
      continue;
    if (meth == 2) { /* Carlini-Wagner once per batch: smallest misclassified iterate */
      for (int64_t bb = 0; bb < W.nab; bb++)
        cw_batch(E, &W, bb, &lo, cw_c, cw_kappa);
      cw_report(&W, cw_kappa);
    }
    for (int e = 0; e < neps; e++)
      score_eps(E, &W, meth, eps_list[e], &lo, fa, fi);
  }
  ws_free(&W);
}
