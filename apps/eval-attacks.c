/*
 * nsde-eval's l2 attacks, noise on while attacking (one Brownian path per
 * gradient, or the mean over E->eot paths: expectation over transformation),
 * classification with TTN: the authors' Adam attack, l2 PGD, and
 * Carlini-Wagner (see nsde-eval.c); with E->attack_noise_off the model is
 * attacked and classified with its noise off, which tells a stochastic
 * defence from a smoother learned map. Public API only.
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L
#include "eval.h"

/* The input gradient of one attack step into E->gx: one noisy pass with
 * seed sd, or with E->eot > 1 (a model with noise), the mean over E->eot
 * passes with independent Brownian paths (the first with seed sd, so that
 * eot = 1 is the single-path attack). With lo->per_image set, each image's
 * value is the mean over the passes.
 * acc and pl: scratch of bs * item floats and bs doubles. */
static void attack_grad(const struct eval *E, struct nsde_tensor *x, const struct nsde_loss_options *lo,
                        unsigned long long sd, float *acc, double *pl, const char *what)
{
  const int passes = E->eot; /* 1 for an ODE (nsde-eval.c) */
  const int64_t tot = E->bs * E->item;
  float *gd = nsde_tensor_data(E->gx);
  struct nsde_loss_options o = *lo;

  ex_check(E->ctx, nsde_model_loss_grad_opts(E->m, x, E->labels, !E->attack_noise_off, sd, lo), what);
  if (passes == 1)
    return;
  memcpy(acc, gd, sizeof(float) * (size_t)tot);
  if (lo->per_image)
    o.per_image = pl;
  for (int p = 1; p < passes; p++) {
    ex_check(E->ctx, nsde_model_loss_grad_opts(E->m, x, E->labels, 1, sd + 1000003ULL * (unsigned long long)p, &o),
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

void eval_attacks(const struct eval *E, int64_t attack_images, const int use_attack[3],
                  const double *eps_list, int neps, double cw_c, double cw_kappa, FILE *fa, FILE *fi)
{
  static const char *const attack_names[3] = {"authors", "pgd", "cw"};
  struct nsde_context *ctx = E->ctx;
  struct nsde_model *m = E->m;
  struct nsde_dataset *ds = E->ds;
  struct nsde_tensor *x = E->x, *gx = E->gx, *probs = E->probs;
  int32_t *labels = E->labels;
  int64_t *idx = E->idx, n = E->n, item = E->item;
  const int bs = E->bs, classes = E->classes, steps = E->steps;
  const int ttn = E->attack_noise_off ? 0 : E->ttn; /* classification passes */
  const unsigned long long seed = E->seed;
  struct nsde_loss_options lo; /* every attack step: dL/dx only */

  nsde_loss_options_init(&lo);
  lo.grad_images = gx;
  lo.no_param_grads = 1;
  fprintf(fa, "method,eps,accuracy,mean_l2,se,images\n");
  fprintf(fi, "method,eps,image,correct\n");
  if (attack_images > 0 && steps > 0) {
    const int64_t na = attack_images < n ? attack_images / bs * bs : n / bs * bs, nab = na / bs;
    const int64_t tot = bs * item;
    float *x0 = malloc(sizeof(float) * (size_t)tot), *mo = malloc(sizeof(float) * (size_t)tot);
    float *vo = malloc(sizeof(float) * (size_t)tot), *wv = malloc(sizeof(float) * (size_t)tot);
    float *best = malloc(sizeof(float) * (size_t)tot);
    unsigned char *clean_ok = malloc((size_t)na);
    double *cw_l2 = malloc(sizeof(double) * (size_t)na), *pl = malloc(sizeof(double) * (size_t)bs);
    unsigned char *cw_ok = malloc((size_t)na);
    float *acc = malloc(sizeof(float) * (size_t)tot);
    double *pl2 = malloc(sizeof(double) * (size_t)bs);
    float *xd = nsde_tensor_data(x), *gd = nsde_tensor_data(gx);
    /* clean TTN correctness per image, with the seeds the attacks classify with */
    for (int64_t bb = 0; bb < nab; bb++) {
      for (int k = 0; k < bs; k++) idx[k] = bb * bs + k;
      ex_check(ctx, nsde_dataset_batch(ds, idx, bs, 0, 0, x, labels), "batch");
      ex_check(ctx, nsde_model_predict(m, x, ttn, seed + 99 + (unsigned long long)bb, probs), "attack TTN");
      for (int k = 0; k < bs; k++)
        clean_ok[bb * bs + k] = (unsigned char)correct_one((float *)nsde_tensor_data(probs) + k * classes,
                                                           labels[k], classes);
    }
    for (int meth = 0; meth < 3; meth++) {
      if (!use_attack[meth] || na == 0)
        continue;
      if (meth == 2) { /* Carlini-Wagner once per batch: smallest misclassified iterate */
        for (int64_t bb = 0; bb < nab; bb++) {
          for (int k = 0; k < bs; k++) idx[k] = bb * bs + k;
          ex_check(ctx, nsde_dataset_batch(ds, idx, bs, 0, 0, x, labels), "batch");
          memcpy(x0, xd, sizeof(float) * (size_t)tot);
          memcpy(best, xd, sizeof(float) * (size_t)tot);
          memset(mo, 0, sizeof(float) * (size_t)tot);
          memset(vo, 0, sizeof(float) * (size_t)tot);
          for (int64_t i = 0; i < tot; i++) /* x = (tanh w + 1) / 2, starting at x0 */
            wv[i] = (float)atanh(fmin(1 - 1e-6, fmax(-1 + 1e-6, 2.0 * x0[i] - 1.0)));
          for (int k = 0; k < bs; k++)
            cw_l2[bb * bs + k] = INFINITY;
          for (int st = 0; st < steps; st++) {
            struct nsde_loss_options cw = lo;
            cw.kind = NSDE_MODEL_LOSS_CW_MARGIN;
            cw.kappa = cw_kappa;
            cw.per_image = pl;
            for (int64_t i = 0; i < tot; i++)
              xd[i] = (float)(0.5 * (tanh(wv[i]) + 1.0));
            attack_grad(E, x, &cw, seed + 4242 + (unsigned long long)(st * 131 + bb), acc, pl2, "C&W gradient");
            for (int k = 0; k < bs; k++) { /* f <= -kappa: misclassified on this noisy pass */
              double d = l2dist(xd + k * item, x0 + k * item, item);
              if (pl[k] <= -cw_kappa && d < cw_l2[bb * bs + k]) {
                cw_l2[bb * bs + k] = d;
                memcpy(best + k * item, xd + k * item, sizeof(float) * (size_t)item);
              }
            }
            for (int64_t i = 0; i < tot; i++) {
              double dx = 0.5 * (1.0 - tanh(wv[i]) * tanh(wv[i]));
              wv[i] -= adam_delta(&mo[i], &vo[i], (2.0 * ((double)xd[i] - x0[i]) + cw_c * bs * gd[i]) * dx,
                                  0.01, st);
            }
          }
          memcpy(xd, best, sizeof(float) * (size_t)tot); /* confirm with TTN */
          ex_check(ctx, nsde_model_predict(m, x, ttn, seed + 99 + (unsigned long long)bb, probs), "attack TTN");
          for (int k = 0; k < bs; k++)
            cw_ok[bb * bs + k] = (unsigned char)(isinf(cw_l2[bb * bs + k]) ||
                                                 correct_one((float *)nsde_tensor_data(probs) + k * classes,
                                                             labels[k], classes));
        }
        {
          int64_t unconfirmed = 0, found = 0, ok = 0;
          for (int64_t j = 0; j < na; j++) {
            ok += clean_ok[j];
            found += clean_ok[j] && !isinf(cw_l2[j]);
            unconfirmed += clean_ok[j] && !isinf(cw_l2[j]) && cw_ok[j];
          }
          printf("nsde-eval: cw      kappa %g: %lld of the %lld correctly classified images reached a margin <= "
                 "-kappa; TTN does not confirm %lld of those (counted as not broken)\n",
                 cw_kappa, (long long)found, (long long)ok, (long long)unconfirmed);
        }
      }
      for (int e = 0; e < neps; e++) {
        int64_t hits = 0;
        double l2sum = 0;
        for (int64_t bb = 0; bb < nab; bb++) {
          if (meth == 2) {
            for (int k = 0; k < bs; k++) {
              int64_t j = bb * bs + k;
              int broken = !cw_ok[j] && cw_l2[j] <= eps_list[e];
              hits += clean_ok[j] && !broken;
              fprintf(fi, "cw,%g,%lld,%d\n", eps_list[e], (long long)j, clean_ok[j] && !broken);
              l2sum += clean_ok[j] && broken ? cw_l2[j] : 0.0;
            }
            continue;
          }
          for (int k = 0; k < bs; k++) idx[k] = bb * bs + k;
          ex_check(ctx, nsde_dataset_batch(ds, idx, bs, 0, 0, x, labels), "batch");
          memcpy(x0, xd, sizeof(float) * (size_t)tot);
          memset(mo, 0, sizeof(float) * (size_t)tot);
          memset(vo, 0, sizeof(float) * (size_t)tot);
          for (int st = 0; eps_list[e] > 0 && st < steps; st++) {
            const unsigned long long sd = seed + 7777 + (unsigned long long)(st * 131 + bb);
            attack_grad(E, x, &lo, sd, acc, pl2, "attack gradient");
            if (meth == 0) { /* Adam descent on -CE */
              for (int64_t i = 0; i < tot; i++)
                xd[i] -= adam_delta(&mo[i], &vo[i], -gd[i], 0.005, st);
            } else { /* l2 PGD: ascend along the normalised gradient */
              const double alpha = 2.5 * eps_list[e] / steps;
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
              project(xd + k * item, x0 + k * item, item, eps_list[e]);
          }
          ex_check(ctx, nsde_model_predict(m, x, ttn, seed + 99 + (unsigned long long)bb, probs), "attack TTN");
          for (int k = 0; k < bs; k++) {
            int ok = clean_ok[bb * bs + k] &&
                     correct_one((float *)nsde_tensor_data(probs) + k * classes, labels[k], classes);
            hits += ok;
            fprintf(fi, "%s,%g,%lld,%d\n", attack_names[meth], eps_list[e], (long long)(bb * bs + k), ok);
            /* the returned example: the clean image where that already fails */
            l2sum += clean_ok[bb * bs + k] ? l2dist(xd + k * item, x0 + k * item, item) : 0.0;
          }
        }
        printf("nsde-eval: %-7s l2 attack eps %.3f: accuracy %.4f +- %.4f, mean distortion %.4f "
               "(%lld images)\n", attack_names[meth], eps_list[e], (double)hits / na,
               bse((double)hits / na, na), l2sum / na, (long long)na);
        fprintf(fa, "%s,%g,%.6f,%.6f,%.6f,%lld\n", attack_names[meth], eps_list[e], (double)hits / na,
                l2sum / na, bse((double)hits / na, na), (long long)na);
        fflush(stdout);
      }
    }
    free(x0); free(mo); free(vo); free(wv); free(best); free(clean_ok); free(cw_l2); free(pl);
    free(cw_ok); free(acc); free(pl2);
  }

}
