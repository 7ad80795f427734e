/*
 * nsde-eval: evaluate a trained model (paper, section 7).
 *
 *   nsde-eval --model MODEL --data fashion-mnist|cifar10|stl10 [--data-dir DIR]
 *             [--subset N] [--ttn PASSES] [--attack-images N] [--attack-steps S]
 *             [--attack-eot K] [--attack-restarts R] [--attack-noise on|off]
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
 *    projections; --attack-restarts R runs it R times per image, first from
 *    the clean image, then from points drawn uniformly from the eps ball
 *    (other Brownian paths each time), and an image counts as broken when
 *    any run breaks it;
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
 * CIFAR-10-C style corruptions computed from the images (apps/corrupt*.c:
 * Gaussian, shot, impulse, speckle noise; Gaussian, defocus, glass, zoom and
 * motion blur; contrast, brightness, saturation; fog, snow, spatter; pixelate,
 * elastic transform; JPEG via libjpeg), severities
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
 * DIR/hidden.csv; for an SDE also DIR/hidden-noise-off.csv, the same curve
 * with the noise off (one pass); each image's eps_0 and eps_T per curve in
 * DIR/hidden-images.csv. Writes DIR/summary.csv, DIR/attack.csv
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
    {"attack-restarts", "R", "Evaluation",
     "PGD runs per image: from the clean image, then R - 1 random starts in the eps ball", "1"},
    {"attack-noise", "on|off", "Evaluation", "off: attack and classify an SDE with its noise off",
     "on"},
    {"cw-c", "C", "Evaluation", "Carlini-Wagner's constant c", "1"},
    {"cw-kappa", "K", "Evaluation", "Carlini-Wagner's confidence kappa", "0"},
    {"severities", "S", "Evaluation", "corruption severities 1..S; 0: no corruptions", "5"},
    {"corruption-passes", "LIST", "Evaluation",
     "noisy passes per corrupted image, one protocol each (0: noise off; at most 4)",
     "0 and min(ttn, 20)"},
    {"corruption-images", "N", "Evaluation",
     "corrupted images per family and severity; 0: --subset", "0"},
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
     "--corruption-passes 0,1,20",
     NULL},
    NULL,
    eval_opts,
    (int)(sizeof(eval_opts) / sizeof(eval_opts[0])),
};

/* The command line. */
struct eval_args {
  const char *model_path, *data, *dir, *outdir;
  long subset, attack_images, cimages, himages;
  int ttn, steps, eot, restarts, severities, threads, report, hpasses;
  int cpasses[4], ncp; /* corruption protocols: passes per prediction */
  int noise_off;       /* --attack-noise off */
  int use_attack[3];
  double cw_c, cw_kappa, eps_list[32];
  int neps;
  unsigned long long seed;
};

/* --attacks a,b: which of the three run (exit status 2 on an unknown one,
 * -1 to go on). */
static int parse_attacks(const char *v, int use_attack[3])
{
  char buf[256];
  const char *p = v;

  for (int k = 0; k < 3; k++)
    use_attack[k] = 0;
  while (*p) {
    size_t len = strcspn(p, ",");
    int k = 0;
    snprintf(buf, sizeof(buf), "%.*s", (int)(len < 255 ? len : 255), p);
    while (k < 3 && strcmp(buf, eval_attack_names[k]))
      k++;
    if (k == 3) {
      fprintf(stderr,
              "nsde-eval: --attacks '%s': unknown attack '%s' (authors, pgd, cw); try "
              "'nsde-eval --help'\n",
              v, buf);
      return 2;
    }
    use_attack[k] = 1;
    p += len;
    if (*p == ',')
      p++;
  }
  return -1;
}

/* Options into *A (an exit status, or -1 to go on). */
static int parse_args(int argc, char **argv, struct eval_args *A)
{
  static const char *const onoff[] = {"on", "off", NULL};
  static const char *const datas[] = {"fashion-mnist", "cifar10", "stl10", NULL};
  const char *P = "nsde-eval";
  int rc = -1;

  *A = (struct eval_args){.data = "fashion-mnist",
                          .outdir = ".",
                          .subset = 1000,
                          .attack_images = 200,
                          .himages = 1,
                          .ttn = 100,
                          .steps = 40,
                          .eot = 1,
                          .restarts = 1,
                          .severities = 5,
                          .use_attack = {1, 1, 1},
                          .cw_c = 1.0,
                          .eps_list = {0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5},
                          .neps = 11,
                          .seed = 12345};
  for (const char *a, *v; rc < 0 && cli_next(&eval_prog, argc, argv, &a, &v);) {
#define OPT(name) (!strcmp(a, name))
    if (OPT("--model"))
      A->model_path = v;
    else if (OPT("--data"))
      A->data = ex_choice(P, a, v, datas);
    else if (OPT("--data-dir"))
      A->dir = v;
    else if (OPT("--subset"))
      A->subset = (long)ex_int(P, a, v, 1, 1000000000);
    else if (OPT("--ttn"))
      A->ttn = (int)ex_int(P, a, v, 0, 100000);
    else if (OPT("--attack-images"))
      A->attack_images = (long)ex_int(P, a, v, 0, 1000000000);
    else if (OPT("--attack-steps"))
      A->steps = (int)ex_int(P, a, v, 0, 1000000);
    else if (OPT("--attack-eot"))
      A->eot = (int)ex_int(P, a, v, 1, 10000);
    else if (OPT("--attack-restarts"))
      A->restarts = (int)ex_int(P, a, v, 1, 1000);
    else if (OPT("--attack-noise"))
      A->noise_off = !strcmp(ex_choice(P, a, v, onoff), "off");
    else if (OPT("--severities"))
      A->severities = (int)ex_int(P, a, v, 0, 5);
    else if (OPT("--corruption-passes"))
      A->ncp = ex_wholes(P, a, v, 0, 100000, A->cpasses, 4, "passes");
    else if (OPT("--out"))
      A->outdir = v;
    else if (OPT("--threads"))
      A->threads = (int)ex_int(P, a, v, 0, 1024);
    else if (OPT("--seed"))
      A->seed = (unsigned long long)ex_int(P, a, v, 0, (1LL << 62));
    else if (OPT("--cw-c"))
      A->cw_c = ex_real(P, a, v, 0, 1e6);
    else if (OPT("--cw-kappa"))
      A->cw_kappa = ex_real(P, a, v, 0, 1e6);
    else if (OPT("--corruption-report"))
      A->report = (int)ex_int(P, a, v, 1, 1000000000);
    else if (OPT("--hidden-curve"))
      A->hpasses = (int)ex_int(P, a, v, 0, 100000);
    else if (OPT("--hidden-images"))
      A->himages = (long)ex_int(P, a, v, 1, 1000000);
    else if (OPT("--corruption-images"))
      A->cimages = (long)ex_int(P, a, v, 0, 1000000000);
    else if (OPT("--attacks"))
      rc = parse_attacks(v, A->use_attack);
    else if (OPT("--eps"))
      A->neps = ex_reals(P, a, v, 0, 1000, A->eps_list, 32);
    else {
      fprintf(stderr, "%s: option %s has no handler (a bug)\n", P, a);
      return 1;
    }
#undef OPT
  }
  if (A->ncp == 0) { /* the noise off, and the TTN ensemble of at most 20 passes */
    A->cpasses[A->ncp++] = 0;
    if (A->ttn > 0)
      A->cpasses[A->ncp++] = A->ttn < 20 ? A->ttn : 20;
  }
  return rc;
}

/* The result files, in the order of their names. */
enum {
  F_SUMMARY,
  F_ATTACK,
  F_CORRUPTION,
  F_PREDICTIONS,
  F_ATTACK_IMAGES,
  F_CORRUPTION_IMAGES,
  F_N
};
static const char *const file_names[F_N] = {"summary",     "attack",        "corruption",
                                            "predictions", "attack-images", "corruption-images"};

static int open_files(const char *outdir, FILE *f[F_N])
{
  char path[4096];

  for (int k = 0; k < F_N; k++) {
    snprintf(path, sizeof(path), "%s/%s.csv", outdir, file_names[k]);
    f[k] = fopen(path, "w");
  }
  for (int k = 0; k < F_N; k++)
    if (!f[k]) {
      fprintf(stderr, "nsde-eval: cannot write into %s\n", outdir);
      return 1;
    }
  return 0;
}

/* Closes the files; a full disk shows here (status 1 if it was 0). */
static int close_files(const char *outdir, FILE *f[F_N], int status)
{
  for (int k = 0; k < F_N; k++)
    if (f[k] && fclose(f[k]) != 0 && status == 0) {
      fprintf(stderr, "nsde-eval: cannot write %s/%s.csv\n", outdir, file_names[k]);
      status = 1;
    }
  return status;
}

/* The model, the test images and the batch buffers into E (1 if the model
 * does not take these images). */
static int load_eval(const struct eval_args *A, struct eval *E)
{
  struct nsde_context *ctx;
  int64_t n;

  ex_check(NULL, nsde_context_new(&E->ctx), "context");
  ctx = E->ctx;
  ex_check(ctx, nsde_context_set_threads(ctx, A->threads), "threads");
  E->ds = ex_load(ctx, A->data, A->dir, NSDE_SPLIT_TEST, A->subset);
  ex_check(ctx, nsde_dataset_get_info(E->ds, &E->c, &E->h, &E->w, &E->classes), "dataset info");
  n = nsde_dataset_size(E->ds);
  E->bs = n < 100 ? (int)n : 100;
  if (A->attack_images > 0 && A->attack_images < E->bs)
    E->bs = (int)A->attack_images; /* the attack runs in whole batches */
  ex_check(ctx, nsde_model_load(ctx, A->model_path, E->bs, &E->m), "loading the model");
  ex_check(ctx, nsde_model_get_config(E->m, &E->cfg), "model get config");
  if (E->cfg.in_channels != E->c || E->cfg.in_height != E->h || E->cfg.in_width != E->w ||
      E->cfg.classes != E->classes) {
    fprintf(
        stderr,
        "nsde-eval: the model takes %dx%dx%d images in %d classes, the data has %dx%dx%d in %d\n",
        E->cfg.in_channels, E->cfg.in_height, E->cfg.in_width, E->cfg.classes, E->c, E->h, E->w,
        E->classes);
    return 1;
  }
  E->n = n;
  E->item = (int64_t)E->c * E->h * E->w;
  E->seed = A->seed;
  E->ttn = A->ttn;
  E->steps = A->steps;
  /* one path when the model has no noise or it is off: every "noisy" pass is the same */
  E->eot = E->cfg.noise == NSDE_MODEL_NOISE_ODE || A->noise_off ? 1 : A->eot;
  E->restarts = A->restarts;
  E->outdir = A->outdir;
  E->attack_noise_off = A->noise_off;
  {
    int64_t shape[4] = {E->bs, E->c, E->h, E->w}, ps[2] = {E->bs, E->classes};
    ex_check(ctx, nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, shape, &E->x), "tensor");
    ex_check(ctx, nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, shape, &E->gx), "tensor");
    ex_check(ctx, nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, ps, &E->probs), "tensor");
  }
  E->labels = malloc(sizeof(int32_t) * (size_t)E->bs);
  E->idx = malloc(sizeof(int64_t) * (size_t)E->bs);
  return 0;
}

/* Clean accuracy, deterministic and TTN, over whole batches (E->n becomes
 * their count): per image into fp, the totals into fs (1: no memory). */
static int eval_clean(const struct eval_args *A, struct eval *E, FILE *fp, FILE *fs)
{
  const int bs = E->bs, classes = E->classes, ttn = E->ttn;
  int64_t hit0 = 0, hitt = 0, n = E->n;
  int *pred0 = malloc(sizeof(int) * (size_t)bs);

  if (!pred0) {
    fprintf(stderr, "nsde-eval: out of memory\n");
    return 1;
  }
  fprintf(fp, "image,label,clean,ttn\n");
  for (int64_t b0 = 0; b0 + bs <= n; b0 += bs) {
    const float *pr = nsde_tensor_data(E->probs);
    for (int k = 0; k < bs; k++)
      E->idx[k] = b0 + k;
    ex_check(E->ctx, nsde_dataset_batch(E->ds, E->idx, bs, 0, 0, E->x, E->labels), "batch");
    ex_check(E->ctx, nsde_model_predict(E->m, E->x, 0, 0, E->probs), "predict");
    for (int k = 0; k < bs; k++) {
      pred0[k] = argmax_one(pr + (int64_t)k * classes, classes);
      hit0 += pred0[k] == E->labels[k];
    }
    if (ttn > 0)
      ex_check(
          E->ctx,
          nsde_model_predict(E->m, E->x, ttn, E->seed + (unsigned long long)b0 * 1000, E->probs),
          "TTN");
    for (int k = 0; k < bs; k++) {
      int predt = ttn > 0 ? argmax_one(pr + (int64_t)k * classes, classes) : -1; /* -1: no TTN */
      hitt += predt == E->labels[k];
      fprintf(fp, "%lld,%d,%d,%d\n", (long long)(b0 + k), (int)E->labels[k], pred0[k], predt);
    }
  }
  free(pred0);
  E->n = n = n / bs * bs;
  printf("nsde-eval: %s on %lld %s test images: clean accuracy %.4f +- %.4f (noise off)",
         A->model_path, (long long)n, A->data, (double)hit0 / n, bse((double)hit0 / n, n));
  if (ttn > 0)
    printf(", %.4f +- %.4f (TTN, %d passes)", (double)hitt / n, bse((double)hitt / n, n), ttn);
  printf(" [+- one binomial standard error]\n");
  fprintf(fs,
          "metric,value\nimages,%lld\nclean_accuracy,%.6f\nttn_accuracy,%.6f\nttn_passes,%d\n"
          "clean_se,%.6f\nttn_se,%.6f\nattack_eot,%d\ncw_c,%g\ncw_kappa,%g\nattack_noise,%s\n"
          "attack_restarts,%d\n",
          (long long)n, (double)hit0 / n, ttn > 0 ? (double)hitt / n : NAN, ttn,
          bse((double)hit0 / n, n), ttn > 0 ? bse((double)hitt / n, n) : NAN, E->eot, A->cw_c,
          A->cw_kappa, A->noise_off ? "off" : "on", E->restarts);
  return 0;
}

/* Every evaluation the options ask for, results into the files (0 or 1). */
static int run(const struct eval_args *A, struct eval *E, FILE *f[F_N])
{
  if (eval_clean(A, E, f[F_PREDICTIONS], f[F_SUMMARY]) != 0)
    return 1;
  eval_attacks(E, A->attack_images, A->use_attack, A->eps_list, A->neps, A->cw_c, A->cw_kappa,
               f[F_ATTACK], f[F_ATTACK_IMAGES]);
  if (A->hpasses > 0 && eval_hidden(E, A->hpasses, A->himages) != 0)
    return 1;
  if (eval_corruptions(E, A->severities, A->cpasses, A->ncp, A->cimages, f[F_CORRUPTION],
                       f[F_CORRUPTION_IMAGES]) != 0)
    return 1;
  return 0;
}

int main(int argc, char **argv)
{
  struct eval_args A;
  struct eval E = {0};
  FILE *f[F_N] = {NULL};
  const double t0 = ex_now();
  int status;

  if ((status = parse_args(argc, argv, &A)) >= 0)
    return status;
  if (A.report > 0) /* corruption strength per family and severity, no model needed */
    return eval_corruption_report(A.data, A.dir, A.report, A.seed);
  if (!A.model_path || A.ttn < 0 || A.steps < 0 || A.severities < 0 || A.severities > 5 ||
      A.subset < 1 || A.hpasses < 0 || A.himages < 1 || A.cimages < 0 || !(A.cw_c >= 0) ||
      !isfinite(A.cw_c) || !(A.cw_kappa >= 0) || !isfinite(A.cw_kappa)) {
    fprintf(stderr, "nsde-eval: --model MODEL is required; try 'nsde-eval --help'\n");
    return 2;
  }
  status = load_eval(&A, &E);
  if (status == 0)
    status = open_files(A.outdir, f);
  if (status == 0)
    status = run(&A, &E, f);
  if (status == 0)
    printf("nsde-eval: results in %s/{summary,attack,corruption,predictions,attack-images,"
           "corruption-images}.csv (%.0f s)\n",
           A.outdir, ex_now() - t0);
  status = close_files(A.outdir, f, status);
  free(E.labels);
  free(E.idx);
  nsde_tensor_free(E.x);
  nsde_tensor_free(E.gx);
  nsde_tensor_free(E.probs);
  nsde_model_free(E.m);
  nsde_dataset_free(E.ds);
  nsde_context_free(E.ctx);
  return status;
}
