/*
 * nsde-eval: evaluate a trained model (paper, section 7).
 *
 *   nsde-eval --model MODEL --data fashion-mnist|cifar10|stl10 [--data-dir DIR]
 *             [--subset N] [--ttn PASSES] [--attack-images N] [--attack-steps S]
 *             [--attack-eot K] [--attack-noise on|off]
 *             [--eps 0,0.05,...] [--attacks authors,pgd,cw] [--cw-c C] [--cw-kappa K]
 *             [--severities 5]
 *             [--corruption-passes 0,20] [--corruption-images N] [--hidden-curve PASSES]
 *             [--hidden-images N]
 *             [--out DIR] [--threads T]
 *             [--seed S]
 *
 * Clean accuracy without noise and with the test-time noise ensemble (TTN:
 * summed softmax of PASSES noisy passes). l2 attacks, noise on while
 * attacking (one Brownian path per gradient; --attack-eot K: the mean
 * gradient over K independent paths, expectation over transformation, so
 * that the noise does not hide the gradient from the attack; an ODE has one
 * path), classification with TTN:
 *  - authors: Adam on the cross-entropy, lr 0.005, projection on the l2 ball
 *    and [0, 1] after every step (the paper's code);
 *  - pgd: l2 PGD, steps of 2.5 eps / S along the normalised gradient, same
 *    projections;
 *  - cw: Carlini-Wagner l2 (tanh box, Adam lr 0.01, fixed c, confidence
 *    kappa [0]), run once per batch: the smallest iterate whose logit margin
 *    (on the step's noisy pass, or the mean over the --attack-eot passes)
 *    is <= -kappa, confirmed with TTN; an image counts as broken at budget
 *    eps when that iterate is within eps. The run prints how many such
 *    iterates TTN does not confirm (with noise, a kappa-0 iterate sits on
 *    one pass's decision boundary and TTN often undoes it).
 * --attack-noise off attacks and classifies an SDE with its noise off (one
 * deterministic path, no TTN), to tell a stochastic defence from a smoother
 * learned map.
 * Every attack returns the clean image when that is already misclassified
 * (with the same TTN noise), so accuracy never exceeds the eps = 0 value.
 * CIFAR-10-C style corruptions computed from the images (apps/corrupt.h:
 * Gaussian, shot, impulse, speckle noise; Gaussian and defocus blur;
 * contrast, brightness, saturation; pixelate; JPEG via libjpeg), severities
 * 1..5, each corrupted image predicted under every protocol of
 * --corruption-passes (up to 4 pass counts: 0 the noise off, 1 one noisy
 * pass, more the TTN ensemble; default 0 and min(--ttn, 20)); corruption.csv
 * (severity,family,accuracy,se,images,passes,drop) has severity 0 (the clean
 * images) and each accuracy's drop from it, corruption-images.csv
 * (severity,family,passes,image,correct) each image's outcome (severity 0
 * once, family "none"). --corruption-report N prints each family's mean |change| per
 * severity on N images and exits. --hidden-curve PASSES: the paper's Fig. 4
 * on each of the first --hidden-images N test images (default 1), averaged
 * over them (hidden.csv: t, mean eps_t, its standard error over the images,
 * N): the authors' attack at eps 0.1, then the hidden
 * state averaged over PASSES noisy passes (50 Euler-Maruyama steps, the same
 * Brownian paths for the clean and the attacked image), and
 * eps_t = |mean h_t(x_adv) - mean h_t(x)| / |mean h_t(x)| written to
 * DIR/hidden.csv. Writes DIR/summary.csv, DIR/attack.csv
 * (method,eps,accuracy,mean_l2), DIR/corruption.csv and DIR/predictions.csv
 * (image,label,clean,ttn: each test image's predicted class with noise off
 * and with TTN, -1 without TTN) and DIR/attack-images.csv (method,eps,
 * image,correct: each attacked image's outcome); two models' files give
 * paired comparisons on the same images. Public API only.
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L
#include "eval.h"

#include "cli.h"

static const struct cli_opt eval_opts[] = {
    {"model", "MODEL", "Data", "the model file to evaluate (required)", NULL},
    {"data", "NAME", "Data", "data set: fashion-mnist, cifar10 or stl10 (its test split)",
     "fashion-mnist"},
    {"data-dir", "DIR", "Data", "where the data set's files are", "as nsde-train"},
    {"subset", "N", "Data", "evaluate the first N test images", "1000"},
    {"ttn", "PASSES", "Evaluation", "noisy passes of the test-time noise ensemble; 0: none", "100"},
    {"attacks", "LIST", "Evaluation", "l2 attacks to run: authors, pgd, cw (comma-separated)",
     "authors,pgd,cw"},
    {"eps", "LIST", "Evaluation", "l2 budgets (comma-separated, at most 32)",
     "0,0.05,...,0.5 (11 values)"},
    {"attack-images", "N", "Evaluation", "images attacked; 0: no attacks", "200"},
    {"attack-steps", "S", "Evaluation", "iterations of each attack", "40"},
    {"attack-eot", "K", "Evaluation", "gradient averaged over K noise paths per step", "1"},
    {"attack-noise", "on|off", "Evaluation", "off: attack and classify an SDE with its noise off",
     "on"},
    {"cw-c", "C", "Evaluation", "Carlini-Wagner's constant c", "1"},
    {"cw-kappa", "K", "Evaluation", "Carlini-Wagner's confidence kappa", "0"},
    {"severities", "S", "Evaluation", "corruption severities 1..S; 0: no corruptions", "5"},
    {"corruption-passes", "LIST", "Evaluation",
     "noisy passes per corrupted image, one protocol each (0: noise off; at most 4)",
     "0 and min(ttn, 20)"},
    {"corruption-images", "N", "Evaluation", "corrupted images per family and severity; 0: --subset",
     "0"},
    {"corruption-report", "N", "Evaluation",
     "only report each corruption's strength on N images (no model needed)", "off"},
    {"hidden-curve", "PASSES", "Evaluation",
     "hidden-state spread over up to PASSES noisy passes (paper, Fig. 4); 0: off", "0"},
    {"hidden-images", "N", "Evaluation", "images of the hidden-state curve", "1"},
    {"seed", "S", "Evaluation", "seed of the noise, the attacks' and the corruptions' randomness",
     "12345"},
    {"out", "DIR", "Output", "directory of the CSV files (summary, attacks, corruption, ...)", "."},
    {"threads", "T", "Performance", "threads; 0: all cores", "0"},
};

static const struct cli_prog eval_prog = {
    "nsde-eval",
    "--model MODEL [--data NAME] [OPTION]...",
    "evaluate a trained Neural SDE or ODE classifier: accuracy, attacks, corruptions",
    "Clean accuracy with the noise off and with the test-time ensemble, l2 attacks (the paper's,\n"
    "PGD, Carlini-Wagner) and CIFAR-10-C style corruptions, written as CSV files to --out.",
    {"nsde-eval --model fmnist.nsde --subset 1000",
     "nsde-eval --model sde.nsde --data cifar10 --data-dir cifar-10-batches-bin --subset 10000 "
     "--attack-images 1000 --out results",
     "nsde-eval --model sde.nsde --data cifar10 --attack-images 0 --severities 5 "
     "--corruption-passes 0,1,20", NULL},
    NULL,
    eval_opts,
    (int)(sizeof(eval_opts) / sizeof(eval_opts[0])),
};

int main(int argc, char **argv)
{
  const char *model_path = NULL, *data = "fashion-mnist", *dir = NULL, *outdir = ".";
  long subset = 1000, attack_images = 200;
  int ttn = 100, steps = 40, eot = 1, severities = 5, threads = 0, report = 0, hpasses = 0;
  int cpasses[4], ncp = 0; /* corruption protocols: passes per prediction */
  int noise_off = 0;        /* --attack-noise off */
  static const char *const onoff[] = {"on", "off", NULL};
  long cimages = 0, himages = 1;
  int use_attack[3] = {1, 1, 1};
  double cw_c = 1.0, cw_kappa = 0.0;
  static const char *const attack_names[3] = {"authors", "pgd", "cw"};
  double eps_list[32] = {0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5};
  int neps = 11;
  unsigned long long seed = 12345;
  struct nsde_context *ctx;
  struct nsde_model *m = NULL;
  struct nsde_model_config cfg;
  struct nsde_dataset *ds;
  struct nsde_tensor *x = NULL, *probs = NULL, *gx = NULL;
  int32_t *labels = NULL;
  int64_t *idx = NULL, n, item;
  int c, h, w, classes, bs;
  char path[4096];
  FILE *fs = NULL, *fa = NULL, *fc = NULL, *fp = NULL, *fi = NULL, *fk = NULL;
  int status = 0;
  struct eval E;
  double t0 = ex_now();

  for (const char *a, *v; cli_next(&eval_prog, argc, argv, &a, &v);) {
#define OPT(name) (!strcmp(a, name))
    static const char *const datas[] = {"fashion-mnist", "cifar10", "stl10", NULL};
    const char *P = "nsde-eval";
    if (OPT("--model")) model_path = v;
    else if (OPT("--data")) data = ex_choice(P, a, v, datas);
    else if (OPT("--data-dir")) dir = v;
    else if (OPT("--subset")) subset = (long)ex_int(P, a, v, 1, 1000000000);
    else if (OPT("--ttn")) ttn = (int)ex_int(P, a, v, 0, 100000);
    else if (OPT("--attack-images")) attack_images = (long)ex_int(P, a, v, 0, 1000000000);
    else if (OPT("--attack-steps")) steps = (int)ex_int(P, a, v, 0, 1000000);
    else if (OPT("--attack-eot")) eot = (int)ex_int(P, a, v, 1, 10000);
    else if (OPT("--attack-noise")) noise_off = !strcmp(ex_choice(P, a, v, onoff), "off");
    else if (OPT("--severities")) severities = (int)ex_int(P, a, v, 0, 5);
    else if (OPT("--corruption-passes")) ncp = ex_wholes(P, a, v, 0, 100000, cpasses, 4, "passes");
    else if (OPT("--out")) outdir = v;
    else if (OPT("--threads")) threads = (int)ex_int(P, a, v, 0, 1024);
    else if (OPT("--seed")) seed = (unsigned long long)ex_int(P, a, v, 0, (1LL << 62));
    else if (OPT("--cw-c")) cw_c = ex_real(P, a, v, 0, 1e6);
    else if (OPT("--cw-kappa")) cw_kappa = ex_real(P, a, v, 0, 1e6);
    else if (OPT("--corruption-report")) report = (int)ex_int(P, a, v, 1, 1000000000);
    else if (OPT("--hidden-curve")) hpasses = (int)ex_int(P, a, v, 0, 100000);
    else if (OPT("--hidden-images")) himages = (long)ex_int(P, a, v, 1, 1000000);
    else if (OPT("--corruption-images")) cimages = (long)ex_int(P, a, v, 0, 1000000000);
    else if (OPT("--attacks")) {
      char buf[256];
      const char *p = v;
      for (int k = 0; k < 3; k++)
        use_attack[k] = 0;
      while (*p) {
        size_t len = strcspn(p, ",");
        int k = 0;
        snprintf(buf, sizeof(buf), "%.*s", (int)(len < 255 ? len : 255), p);
        while (k < 3 && strcmp(buf, attack_names[k]))
          k++;
        if (k == 3) {
          fprintf(stderr, "nsde-eval: --attacks '%s': unknown attack '%s' (authors, pgd, cw); try "
                  "'nsde-eval --help'\n", v, buf);
          return 2;
        }
        use_attack[k] = 1;
        p += len;
        if (*p == ',')
          p++;
      }
    }
    else if (OPT("--eps")) neps = ex_reals(P, a, v, 0, 1000, eps_list, 32);
    else {
      fprintf(stderr, "%s: option %s has no handler (a bug)\n", P, a);
      return 1;
    }
#undef OPT
  }
  if (ncp == 0) { /* the noise off, and the TTN ensemble of at most 20 passes */
    cpasses[ncp++] = 0;
    if (ttn > 0)
      cpasses[ncp++] = ttn < 20 ? ttn : 20;
  }
  if (report > 0) /* corruption strength per family and severity, no model needed */
    return eval_corruption_report(data, dir, report, seed);
  if (!model_path || ttn < 0 || steps < 0 || severities < 0 || severities > 5 || subset < 1 ||
      hpasses < 0 || himages < 1 || cimages < 0 || !(cw_c >= 0) || !isfinite(cw_c) ||
      !(cw_kappa >= 0) || !isfinite(cw_kappa)) {
    fprintf(stderr, "nsde-eval: --model MODEL is required; try 'nsde-eval --help'\n");
    return 2;
  }
  ex_check(NULL, nsde_context_new(&ctx), "context");
  ex_check(ctx, nsde_context_set_threads(ctx, threads), "threads");
  ds = ex_load(ctx, data, dir, NSDE_SPLIT_TEST, subset);
  ex_check(ctx, nsde_dataset_get_info(ds, &c, &h, &w, &classes), "dataset info");
  n = nsde_dataset_size(ds);
  bs = n < 100 ? (int)n : 100;
  if (attack_images > 0 && attack_images < bs)
    bs = (int)attack_images; /* the attack runs in whole batches */
  ex_check(ctx, nsde_model_load(ctx, model_path, bs, &m), "loading the model");
  ex_check(ctx, nsde_model_get_config(m, &cfg), "model get config");
  if (cfg.in_channels != c || cfg.in_height != h || cfg.in_width != w || cfg.classes != classes) {
    fprintf(stderr, "nsde-eval: the model takes %dx%dx%d images in %d classes, the data has %dx%dx%d in %d\n",
            cfg.in_channels, cfg.in_height, cfg.in_width, cfg.classes, c, h, w, classes);
    status = 1;
    goto done;
  }
  if (cfg.noise == NSDE_MODEL_NOISE_ODE || noise_off)
    eot = 1; /* one path: every "noisy" pass is the same */
  item = (int64_t)c * h * w;
  {
    int64_t shape[4] = {bs, c, h, w}, ps[2] = {bs, classes};
    ex_check(ctx, nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, shape, &x), "tensor");
    ex_check(ctx, nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, shape, &gx), "tensor");
    ex_check(ctx, nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, ps, &probs), "tensor");
  }
  labels = malloc(sizeof(int32_t) * (size_t)bs);
  idx = malloc(sizeof(int64_t) * (size_t)bs);
  snprintf(path, sizeof(path), "%s/summary.csv", outdir);
  fs = fopen(path, "w");
  snprintf(path, sizeof(path), "%s/attack.csv", outdir);
  fa = fopen(path, "w");
  snprintf(path, sizeof(path), "%s/corruption.csv", outdir);
  fc = fopen(path, "w");
  snprintf(path, sizeof(path), "%s/predictions.csv", outdir);
  fp = fopen(path, "w");
  snprintf(path, sizeof(path), "%s/attack-images.csv", outdir);
  fi = fopen(path, "w");
  snprintf(path, sizeof(path), "%s/corruption-images.csv", outdir);
  fk = fopen(path, "w");
  if (!fs || !fa || !fc || !fp || !fi || !fk) {
    fprintf(stderr, "nsde-eval: cannot write into %s\n", outdir);
    status = 1;
    goto done;
  }

  /* clean: deterministic and TTN */
  {
    int64_t hit0 = 0, hitt = 0;
    int *pred0 = malloc(sizeof(int) * (size_t)bs);
    if (!pred0) {
      fprintf(stderr, "nsde-eval: out of memory\n");
      status = 1;
      goto done;
    }
    fprintf(fp, "image,label,clean,ttn\n");
    for (int64_t b0 = 0; b0 + bs <= n; b0 += bs) {
      const float *pr = nsde_tensor_data(probs);
      for (int k = 0; k < bs; k++) idx[k] = b0 + k;
      ex_check(ctx, nsde_dataset_batch(ds, idx, bs, 0, 0, x, labels), "batch");
      ex_check(ctx, nsde_model_predict(m, x, 0, 0, probs), "predict");
      for (int k = 0; k < bs; k++) {
        pred0[k] = argmax_one(pr + (int64_t)k * classes, classes);
        hit0 += pred0[k] == labels[k];
      }
      if (ttn > 0)
        ex_check(ctx, nsde_model_predict(m, x, ttn, seed + (unsigned long long)b0 * 1000, probs), "TTN");
      for (int k = 0; k < bs; k++) {
        int predt = ttn > 0 ? argmax_one(pr + (int64_t)k * classes, classes) : -1; /* -1: no TTN */
        hitt += predt == labels[k];
        fprintf(fp, "%lld,%d,%d,%d\n", (long long)(b0 + k), (int)labels[k], pred0[k], predt);
      }
    }
    free(pred0);
    n = n / bs * bs;
    printf("nsde-eval: %s on %lld %s test images: clean accuracy %.4f +- %.4f (noise off)",
           model_path, (long long)n, data, (double)hit0 / n, bse((double)hit0 / n, n));
    if (ttn > 0)
      printf(", %.4f +- %.4f (TTN, %d passes)", (double)hitt / n, bse((double)hitt / n, n), ttn);
    printf(" [+- one binomial standard error]\n");
    fprintf(fs, "metric,value\nimages,%lld\nclean_accuracy,%.6f\nttn_accuracy,%.6f\nttn_passes,%d\n"
                "clean_se,%.6f\nttn_se,%.6f\nattack_eot,%d\ncw_c,%g\ncw_kappa,%g\nattack_noise,%s\n",
            (long long)n, (double)hit0 / n, ttn > 0 ? (double)hitt / n : NAN, ttn,
            bse((double)hit0 / n, n), ttn > 0 ? bse((double)hitt / n, n) : NAN,
            eot, cw_c, cw_kappa, noise_off ? "off" : "on");
  }

  E.ctx = ctx; E.m = m; E.cfg = cfg; E.ds = ds; E.x = x; E.gx = gx; E.probs = probs;
  E.labels = labels; E.idx = idx; E.n = n; E.item = item; E.c = c; E.h = h; E.w = w;
  E.classes = classes; E.bs = bs; E.seed = seed; E.ttn = ttn; E.steps = steps; E.eot = eot; E.outdir = outdir;
  E.attack_noise_off = noise_off;
  eval_attacks(&E, attack_images, use_attack, eps_list, neps, cw_c, cw_kappa, fa, fi);
  if (hpasses > 0 && eval_hidden(&E, hpasses, himages) != 0) {
    status = 1;
    goto done;
  }
  if (eval_corruptions(&E, severities, cpasses, ncp, cimages, fc, fk) != 0) {
    status = 1;
    goto done;
  }
  printf("nsde-eval: results in %s/{summary,attack,corruption,predictions,attack-images,"
         "corruption-images}.csv (%.0f s)\n", outdir,
         ex_now() - t0);
done:
  {
    FILE *out[6] = {fs, fa, fc, fp, fi, fk};
    static const char *const names[6] = {"summary", "attack", "corruption", "predictions", "attack-images",
                                         "corruption-images"};
    for (int k = 0; k < 6; k++)
      if (out[k] && fclose(out[k]) != 0 && status == 0) { /* a full disk shows here */
        fprintf(stderr, "nsde-eval: cannot write %s/%s.csv\n", outdir, names[k]);
        status = 1;
      }
  }
  free(labels);
  free(idx);
  nsde_tensor_free(x);
  nsde_tensor_free(gx);
  nsde_tensor_free(probs);
  nsde_model_free(m);
  nsde_dataset_free(ds);
  nsde_context_free(ctx);
  return status;
}
