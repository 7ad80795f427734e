/*
 * nsde-bench: speed of libnsde against baselines measured in the same run.
 *
 *   nsde-bench gemm    sgemm through libnsde, n = 512, 1024, 2048, 1 and 2
 *                      threads, beside BLIS's portable 'generic' kernels
 *                      (measured in a child process, since BLIS picks its
 *                      kernels once per process)
 *   nsde-bench solve   Euler-Maruyama on a diagonal SDE with 1e2..1e6 state
 *                      elements, beside a hand-written fused C loop doing the
 *                      same arithmetic with the same Brownian generator
 *   nsde-bench grad    each gradient strategy for N = 10, 100, 1000 steps:
 *                      memory, backward/forward time, error vs store-all
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <blis.h>
#include <nsde/nsde.h>

#include "../apps/cli.h"
#include "../apps/common.h"

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(struct nsde_context *ctx, const char *what)
{
  fprintf(stderr, "nsde-bench: %s: %s\n", what, ctx ? nsde_context_last_error(ctx) : "");
  exit(1);
}

/* Best-of-reps GFLOP/s of C = A B for n x n float32 matrices. */
static double gemm_gflops(int n, int threads)
{
  struct nsde_context *ctx;
  struct nsde_tensor *a, *b, *c;
  int64_t shape[2] = {n, n};
  double best = 1e30;
  int reps = n <= 512 ? 40 : n <= 1024 ? 15 : 8; /* best of: the machine is shared */

  if (nsde_context_new(&ctx) != NSDE_OK || nsde_context_set_threads(ctx, threads) != NSDE_OK)
    die(ctx, "context");
  if (nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, shape, &a) ||
      nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, shape, &b) ||
      nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, shape, &c))
    die(ctx, "tensor");
  for (int64_t i = 0; i < (int64_t)n * n; i++) {
    ((float *)nsde_tensor_data(a))[i] = (float)((i * 7) % 13) / 13.0f;
    ((float *)nsde_tensor_data(b))[i] = (float)((i * 5) % 11) / 11.0f;
  }
  if (nsde_tensor_gemm(NSDE_TRANS_NONE, NSDE_TRANS_NONE, 1.0, a, b, 0.0, c)) /* warm-up */
    die(ctx, "gemm");
  for (int r = 0; r < reps; r++) {
    double t = now();
    if (nsde_tensor_gemm(NSDE_TRANS_NONE, NSDE_TRANS_NONE, 1.0, a, b, 0.0, c) != NSDE_OK)
      die(ctx, "gemm");
    t = now() - t;
    best = t < best ? t : best;
  }
  nsde_tensor_free(a);
  nsde_tensor_free(b);
  nsde_tensor_free(c);
  nsde_context_free(ctx);
  return 2.0 * n * (double)n * n / best * 1e-9;
}

/* The same measurement in a child process whose BLIS uses 'generic' kernels. */
static double generic_gflops(const char *self, int n, int threads)
{
  char cmd[4096], line[256];
  FILE *p;
  double g = NAN;

  snprintf(cmd, sizeof(cmd), "BLIS_ARCH_TYPE=%d '%s' gemm-one %d %d", (int)BLIS_ARCH_GENERIC, self,
           n, threads);
  p = popen(cmd, "r");
  if (!p)
    return NAN;
  if (fgets(line, sizeof(line), p))
    g = atof(line);
  pclose(p);
  return g;
}

static int cmd_gemm(const char *self)
{
  const int sizes[3] = {512, 1024, 2048};
  double last = 0, last_generic = 0;

  printf("# BLIS %s, kernels '%s' (choice %d: 0 BLIS, 1 libnsde, 2 BLIS_ARCH_TYPE)\n",
         bli_info_get_version_str(), nsde_blis_arch(), (int)nsde_blis_arch_choice());
  for (int s = 0; s < 3; s++)
    for (int t = 1; t <= 2; t++) {
      double g = gemm_gflops(sizes[s], t);
      double gg = generic_gflops(self, sizes[s], t);
      printf("gemm n=%d threads=%d gflops=%.1f generic_gflops=%.1f speedup=%.2f\n", sizes[s], t, g,
             gg, g / gg);
      fflush(stdout);
      last = g;
      last_generic = gg;
    }
  printf("gemm n=2048 threads=2 gflops=%.1f generic_gflops=%.1f\n", last, last_generic);
  return 0;
}

/* ---- solve ---------------------------------------------------------------- */

#define MU 0.3
#define SIGMA 0.5

/* The baseline: what a careful user would write by hand for
 * dx = MU x dt + SIGMA x dW with Euler-Maruyama: the same Brownian
 * generator (the public nsde_brownian_increment), then one fused loop. */
static void hand_em(struct nsde_brownian *bm, struct nsde_tensor *dw, float *x, int64_t n,
                    int64_t steps, int nt)
{
  const float h = (float)(1.0 / (double)steps);
  const float *w = nsde_tensor_data(dw);
  (void)nt;
  for (int64_t k = 0; k < steps; k++) {
    if (nsde_brownian_increment(bm, (double)k / (double)steps, (double)(k + 1) / (double)steps, dw,
                                NULL))
      die(NULL, "brownian increment");
    /* threads only past libnsde's threshold too, and no parallel region at
     * all below it (libgomp's if(0) region still costs a futex call) */
    if (nt > 1 && n > 8192) {
#pragma omp parallel for simd num_threads(nt)
      for (int64_t i = 0; i < n; i++)
        x[i] = x[i] + (float)MU * x[i] * h + (float)SIGMA * x[i] * w[i];
    } else {
#pragma omp simd
      for (int64_t i = 0; i < n; i++)
        x[i] = x[i] + (float)MU * x[i] * h + (float)SIGMA * x[i] * w[i];
    }
  }
}

static int cmd_solve(int threads)
{
  struct nsde_context *ctx;
  struct nsde_func *f, *g;
  struct nsde_sde *sde;
  const int64_t sizes[5] = {100, 10000, 100000, 1000000, 4000000};
  const int64_t steps = 20;

  if (nsde_context_new(&ctx) || nsde_context_set_threads(ctx, threads))
    die(ctx, "context");
  if (nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT32, MU, 0.0, &f) ||
      nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT32, SIGMA, &g) ||
      nsde_sde_new(ctx, f, g, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_ITO, &sde))
    die(ctx, "sde");
  printf("# Euler-Maruyama, dx = %.1f x dt + %.1f x dW, float32, %lld steps, %d thread(s)\n", MU,
         SIGMA, (long long)steps, threads);
  for (int s = 0; s < 5; s++) {
    int64_t n = sizes[s], batch = n >= 100 ? 100 : 1, dim = n / batch;
    int64_t shape[2] = {batch, dim};
    struct nsde_solver_config cfg;
    struct nsde_solver *solver;
    struct nsde_tensor *x, *dw;
    struct nsde_brownian *bm;
    struct nsde_brownian_config bc;
    float *hand = malloc((size_t)n * sizeof(float));
    double best_lib = 1e30, best_hand = 1e30, maxdiff = 0;
    int reps = n <= 10000 ? 200 : n <= 100000 ? 20 : 3;

    nsde_solver_config_init(&cfg);
    cfg.n_steps = steps;
    cfg.seed = 17;
    if (nsde_solver_new(sde, &cfg, 2, shape, &solver) ||
        nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, shape, &x))
      die(ctx, "solver");
    nsde_brownian_config_init(&bc);
    bc.seed = 17;
    bc.n_steps = steps;
    bc.batch = batch;
    bc.dim = dim;
    if (nsde_brownian_new(ctx, &bc, &bm) || nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, shape, &dw))
      die(ctx, "brownian");
    for (int r = 0; r < reps; r++) { /* interleaved, best of */
      double t;
      if (nsde_tensor_fill(x, 1.0))
        die(ctx, "tensor fill");
      t = now();
      if (nsde_solve(solver, x, NULL) != NSDE_OK)
        die(ctx, "solve");
      t = now() - t;
      best_lib = t < best_lib ? t : best_lib;
      for (int64_t i = 0; i < n; i++)
        hand[i] = 1.0f;
      t = now();
      hand_em(bm, dw, hand, n, steps, threads);
      t = now() - t;
      best_hand = t < best_hand ? t : best_hand;
    }
    for (int64_t i = 0; i < n; i++) {
      double d = fabs((double)hand[i] - ((float *)nsde_tensor_data(x))[i]);
      maxdiff = d > maxdiff ? d : maxdiff;
    }
    printf("solve elements=%lld element_steps_per_s=%.3g hand_element_steps_per_s=%.3g "
           "ratio=%.3f max_abs_diff=%.2g\n",
           (long long)n, (double)n * steps / best_lib, (double)n * steps / best_hand,
           best_lib / best_hand, maxdiff);
    fflush(stdout);
    nsde_tensor_free(x);
    nsde_tensor_free(dw);
    nsde_brownian_free(bm);
    nsde_solver_free(solver);
    free(hand);
  }
  nsde_sde_free(sde);
  nsde_func_free(g);
  nsde_func_free(f);
  nsde_context_free(ctx);
  return 0;
}

/* ---- grad ------------------------------------------------------------------- */

struct grad_run {
  double fwd_s, bwd_s;
  size_t bytes;
  double *gx; /* dL/dx0 */
  double gp[3];
};

static void grad_once(struct nsde_context *ctx, enum nsde_scheme scheme,
                      enum nsde_grad_strategy strat, int64_t N, int64_t batch, int64_t dim,
                      struct grad_run *r)
{
  struct nsde_func *f, *g;
  struct nsde_sde *sde;
  struct nsde_solver_config cfg;
  struct nsde_solver *s;
  struct nsde_tensor *x, *w, *gx;
  int64_t shape[2] = {batch, dim};
  float gd[2], gs[1];
  double t;

  if (nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT32, -0.5, 0.1, &f) ||
      nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT32, 0.4, &g) ||
      nsde_sde_new(ctx, f, g, NSDE_NOISE_DIAGONAL,
                   scheme == NSDE_SCHEME_REVERSIBLE_HEUN ? NSDE_CALCULUS_STRATONOVICH
                                                         : NSDE_CALCULUS_ITO,
                   &sde))
    die(ctx, "sde");
  nsde_solver_config_init(&cfg);
  cfg.scheme = scheme;
  cfg.n_steps = N;
  cfg.seed = 3;
  cfg.grad = strat;
  if (nsde_solver_workspace_bytes(sde, &cfg, 2, shape, &r->bytes) ||
      nsde_solver_new(sde, &cfg, 2, shape, &s) ||
      nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, shape, &x) ||
      nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, shape, &w) ||
      nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, shape, &gx))
    die(ctx, "solver");
  for (int64_t i = 0; i < batch * dim; i++) {
    ((float *)nsde_tensor_data(x))[i] = 1.0f + 0.25f * (float)sin((double)i);
    ((float *)nsde_tensor_data(w))[i] = (float)cos(0.1 * (double)i);
  }
  t = now();
  if (nsde_solve(s, x, NULL))
    die(ctx, "solve");
  r->fwd_s = now() - t;
  t = now();
  if (nsde_backward(s, w, NULL, gx, gd, 2, gs, 1))
    die(ctx, "backward");
  r->bwd_s = now() - t;
  for (int64_t i = 0; i < batch * dim; i++)
    r->gx[i] = ((float *)nsde_tensor_data(gx))[i];
  r->gp[0] = gd[0];
  r->gp[1] = gd[1];
  r->gp[2] = gs[0];
  nsde_tensor_free(x);
  nsde_tensor_free(w);
  nsde_tensor_free(gx);
  nsde_solver_free(s);
  nsde_sde_free(sde);
  nsde_func_free(g);
  nsde_func_free(f);
}

static int cmd_grad(int threads)
{
  const int64_t Ns[3] = {10, 100, 1000}, batch = 32, dim = 1000, n = batch * dim;
  const struct {
    const char *name;
    enum nsde_scheme scheme;
    enum nsde_grad_strategy strat;
  } runs[] = {
      {"store-all", NSDE_SCHEME_EULER_MARUYAMA, NSDE_GRAD_STORE_ALL},
      {"checkpoint", NSDE_SCHEME_EULER_MARUYAMA, NSDE_GRAD_CHECKPOINT},
      {"adjoint", NSDE_SCHEME_EULER_MARUYAMA, NSDE_GRAD_ADJOINT},
      {"store-all-revheun", NSDE_SCHEME_REVERSIBLE_HEUN, NSDE_GRAD_STORE_ALL},
      {"reversible", NSDE_SCHEME_REVERSIBLE_HEUN, NSDE_GRAD_REVERSIBLE},
  };
  struct nsde_context *ctx;
  struct grad_run ref, r;

  if (nsde_context_new(&ctx) || nsde_context_set_threads(ctx, threads))
    die(ctx, "context");
  ref.gx = malloc((size_t)n * sizeof(double));
  r.gx = malloc((size_t)n * sizeof(double));
  printf(
      "# dx = (-0.5 x + 0.1) dt + 0.4 x dW, float32, %lld x %lld state, %d thread(s); errors are "
      "relative to the store-all gradient of the same scheme (max over dL/dx0 and parameters, "
      "scaled by the largest entry)\n",
      (long long)batch, (long long)dim, threads);
  for (int j = 0; j < 3; j++)
    for (size_t k = 0; k < sizeof(runs) / sizeof(runs[0]); k++) {
      double err = 0, scale = 0, pscale = 0;
      if (k == 0 || k == 3)
        grad_once(ctx, runs[k].scheme, NSDE_GRAD_STORE_ALL, Ns[j], batch, dim, &ref);
      grad_once(ctx, runs[k].scheme, runs[k].strat, Ns[j], batch, dim, &r);
      for (int64_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(ref.gx[i]));
      for (int64_t i = 0; i < n; i++)
        err = fmax(err, fabs(r.gx[i] - ref.gx[i]) / scale);
      for (int i = 0; i < 3; i++)
        pscale = fmax(pscale, fabs(ref.gp[i]));
      for (int i = 0; i < 3; i++)
        err = fmax(err, fabs(r.gp[i] - ref.gp[i]) / pscale);
      printf("strategy=%s N=%lld peak_bytes=%zu backward_over_forward=%.2f "
             "max_rel_err_vs_store=%.2g\n",
             runs[k].name, (long long)Ns[j], r.bytes, r.bwd_s / r.fwd_s, err);
      fflush(stdout);
    }
  free(ref.gx);
  free(r.gx);
  nsde_context_free(ctx);
  return 0;
}

/* ---- model -------------------------------------------------------------------- */

#include <sys/resource.h>

/* The paper's CIFAR-10 model: training and inference images/s and peak RSS.
 * Each rate is the best of --reps timed windows of --steps batches (inference:
 * 3x as many batches, it is cheap and noisier), after --warmup batches. The
 * input is the first test batch of CIFAR-10 (--cifar DIR) or [0,1] values. */
/* A context with T threads and a CIFAR-10 model at width W for batches of
 * B: the paper's architecture (--arch cifar, the SDE block at 30x30) or the
 * strided stem of the trained recipe (--arch large, the block at 8x8);
 * exits on failure. */
static struct nsde_model *bench_model(int threads, int width, int batch,
                                      enum nsde_grad_strategy grad, enum nsde_model_arch arch,
                                      struct nsde_context **ctx)
{
  struct nsde_model_config cfg;
  struct nsde_model *m;
  if (nsde_context_new(ctx) || nsde_context_set_threads(*ctx, threads))
    die(*ctx, "context");
  nsde_model_config_init(&cfg);
  cfg.width = width;
  cfg.max_batch = batch;
  cfg.grad = grad;
  cfg.arch = arch;
  if (nsde_model_new(*ctx, &cfg, &m))
    die(*ctx, "model");
  return m;
}

/* The options of `model` and `eval` (--warmup, --cifar and --grad are
 * model's only). An option without a value, an unknown one or a value out of
 * range: a message and 2. */
struct bench_opts {
  int threads, batch, steps, reps, warmup, width;
  const char *cifar;
  enum nsde_grad_strategy grad;
  enum nsde_model_arch arch;
};

#define BENCH_COMMON_OPTS(G)                                                                       \
  {"threads", "T", G, "threads", "2"}, {"batch", "B", G, "images per batch (1..4096)", "128"},     \
      {"steps", "S", G, "timed steps per window", "3"},                                            \
      {"reps", "R", G, "windows; the best is reported", "1 (model), 3 (eval)"},                    \
      {"width", "W", G, "channels of the SDE block", "64"},                                        \
  {                                                                                                \
    "arch", "NAME", G, "cifar (block at 30x30) or large (block at 8x8, models/' recipe)", "cifar"  \
  }

static const struct cli_opt bench_model_opts[] = {
    BENCH_COMMON_OPTS("Model benchmark"),
    {"warmup", "N", "Model benchmark", "untimed steps first", "3"},
    {"cifar", "DIR", "Model benchmark", "time real CIFAR-10 images from DIR", "random images"},
    {"grad", "KIND", "Model benchmark", "store-all or checkpoint", "store-all"},
};
static const struct cli_opt bench_eval_opts[] = {BENCH_COMMON_OPTS("Evaluation benchmark")};

#define BENCH_PROG(cmd, opts, what)                                                                \
  {                                                                                                \
    "nsde-bench " cmd, "[OPTION]...", what,                                                        \
        "Times the paper's CIFAR-10 model with libnsde (compare with bench/torch-compare.py).",    \
        {"nsde-bench " cmd " --threads 2 --arch large", NULL}, NULL, opts,                         \
        (int)(sizeof(opts) / sizeof(opts[0]))                                                      \
  }

/* Options of `model` and `eval`; a value out of range: a message and 2. */
static void parse_opts(bool model, int argc, char **argv, struct bench_opts *o)
{
  static const struct cli_prog progs[2] = {
      BENCH_PROG("model", bench_model_opts, "training and inference speed of a CIFAR-10 model"),
      BENCH_PROG("eval", bench_eval_opts,
                 "milliseconds per image of a TTN pass and an attack step")};
  static const char *const grads[] = {"store-all", "checkpoint", NULL};
  static const char *const archs[] = {"cifar", "large", NULL};
  const char *P = model ? "nsde-bench model" : "nsde-bench eval";

  for (const char *k, *v; cli_next(&progs[model ? 0 : 1], argc, argv, &k, &v);) {
    if (!strcmp(k, "--threads"))
      o->threads = (int)ex_int(P, k, v, 1, 1024);
    else if (!strcmp(k, "--batch"))
      o->batch = (int)ex_int(P, k, v, 1, 4096);
    else if (!strcmp(k, "--steps"))
      o->steps = (int)ex_int(P, k, v, 1, 1000000);
    else if (!strcmp(k, "--reps"))
      o->reps = (int)ex_int(P, k, v, 1, 1000000);
    else if (!strcmp(k, "--width"))
      o->width = (int)ex_int(P, k, v, 1, 4096);
    else if (!strcmp(k, "--warmup"))
      o->warmup = (int)ex_int(P, k, v, 0, 1000000);
    else if (!strcmp(k, "--cifar"))
      o->cifar = v;
    else if (!strcmp(k, "--grad"))
      o->grad = !strcmp(ex_choice(P, k, v, grads), "checkpoint") ? NSDE_GRAD_CHECKPOINT
                                                                 : NSDE_GRAD_STORE_ALL;
    else if (!strcmp(k, "--arch"))
      o->arch = !strcmp(ex_choice(P, k, v, archs), "large") ? NSDE_MODEL_ARCH_LARGE
                                                            : NSDE_MODEL_ARCH_CIFAR;
  }
  if (o->arch == NSDE_MODEL_ARCH_LARGE && o->width % 4) {
    fprintf(stderr,
            "%s: --width %d: the large architecture needs a multiple of 4; try '%s "
            "--help'\n",
            P, o->width, P);
    exit(2);
  }
}

/* GFLOP of one image's forward pass counted as a direct convolution's
 * multiply-adds (2 FLOPs each): the drift's three (w+1 -> w) 3x3
 * convolutions at 11 steps, and the stem; a training step counts the
 * backward as twice the forward. */
static double fwd_gflop(enum nsde_model_arch arch, int w)
{
  if (arch == NSDE_MODEL_ARCH_CIFAR)
    return 2.0 * (11 * 3 * 900.0 * w * (w + 1) * 9 + 900.0 * w * 3 * 9) / 1e9;
  return 2.0 *
         (11 * 3 * 64.0 * w * (w + 1) * 9 + 1024.0 * (w / 4) * 3 * 9 +
          256.0 * (w / 2) * (w / 4) * 16 + 64.0 * w * (w / 2) * 16) /
         1e9;
}

static double time_train(struct nsde_context *ctx, struct nsde_model *m, struct nsde_sgd *opt,
                         const struct nsde_tensor *x, const int32_t *labels, int steps,
                         uint64_t *seed, double *loss)
{
  double t = now();
  for (int s = 0; s < steps; s++)
    if (nsde_model_loss_grad(m, x, labels, 1, ++*seed, NULL, loss, NULL) ||
        nsde_sgd_step(opt, nsde_model_params(m), nsde_model_grads(m), 0.01))
      die(ctx, "train");
  return (now() - t) / steps;
}

static double time_infer(struct nsde_context *ctx, struct nsde_model *m,
                         const struct nsde_tensor *x, struct nsde_tensor *logits, int n)
{
  double t = now();
  for (int s = 0; s < n; s++)
    if (nsde_model_forward(m, x, 0, 0, logits))
      die(ctx, "forward");
  return (now() - t) / n;
}

static int cmd_model(int argc, char **argv)
{
  struct bench_opts o = {2, 128, 3, 1, 3, 64, NULL, NSDE_GRAD_STORE_ALL, NSDE_MODEL_ARCH_CIFAR};
  int threads, batch, steps, width, reps, warmup;
  const char *cifar;
  enum nsde_grad_strategy grad;
  struct nsde_context *ctx;
  struct nsde_model *m;
  struct nsde_sgd *opt;
  struct nsde_tensor *x, *logits;
  int32_t *labels;
  double train_s = INFINITY, infer_s = INFINITY, loss = 0;
  uint64_t seed = 0;
  struct rusage ru;

  parse_opts(true, argc, argv, &o);
  threads = o.threads, batch = o.batch, steps = o.steps, width = o.width, reps = o.reps;
  warmup = o.warmup, cifar = o.cifar, grad = o.grad;
  m = bench_model(threads, width, batch, grad, o.arch, &ctx);
  if (nsde_sgd_new(ctx, nsde_model_num_params(m), 0.9, 0, 0, &opt))
    die(ctx, "sgd");
  {
    int64_t shape[4] = {batch, 3, 32, 32}, ls[2] = {batch, 10};
    if (nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, shape, &x) ||
        nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, ls, &logits))
      die(ctx, "tensor");
  }
  labels = calloc((size_t)batch, sizeof(int32_t));
  if (cifar) {
    struct nsde_dataset *ds;
    int64_t *idx = calloc((size_t)batch, sizeof(int64_t));
    if (!idx || nsde_dataset_load_cifar10(ctx, cifar, NSDE_SPLIT_TEST, batch, &ds))
      die(ctx, "cifar");
    for (int b = 0; b < batch; b++)
      idx[b] = b;
    if (nsde_dataset_size(ds) < batch || nsde_dataset_batch(ds, idx, batch, 0, 0, x, labels))
      die(ctx, "cifar batch");
    nsde_dataset_free(ds);
    free(idx);
  } else {
    for (int64_t i = 0; i < nsde_tensor_numel(x); i++)
      ((float *)nsde_tensor_data(x))[i] = (float)(0.5 + 0.5 * sin(0.01 * (double)i));
    for (int b = 0; b < batch; b++)
      labels[b] = b % 10;
  }
  /* warm-up (first touch of the buffers, the noise-free solver's first
   * use), then all training windows, then all inference windows */
  if (warmup > 0)
    time_train(ctx, m, opt, x, labels, warmup, &seed, &loss);
  for (int r = 0; r < reps; r++) {
    double tr = time_train(ctx, m, opt, x, labels, steps, &seed, &loss);
    train_s = tr < train_s ? tr : train_s;
  }
  if (warmup > 0)
    time_infer(ctx, m, x, logits, warmup);
  for (int r = 0; r < reps; r++) {
    double ti = time_infer(ctx, m, x, logits, 3 * steps);
    infer_s = ti < infer_s ? ti : infer_s;
  }
  getrusage(RUSAGE_SELF, &ru);
  printf("libnsde model arch=%s grad=%s width=%d batch=%d threads=%d params=%lld train_img_s=%.2f "
         "infer_img_s=%.2f peak_rss_bytes=%ld train_gflops=%.1f loss=%.4f\n",
         o.arch == NSDE_MODEL_ARCH_LARGE ? "large" : "cifar",
         grad == NSDE_GRAD_STORE_ALL ? "store-all" : "checkpoint", width, batch, threads,
         (long long)nsde_model_num_params(m), batch / train_s, batch / infer_s,
         ru.ru_maxrss * 1024L, 3.0 * fwd_gflop(o.arch, width) * batch / train_s, loss);
  free(labels);
  nsde_tensor_free(x);
  nsde_tensor_free(logits);
  nsde_sgd_free(opt);
  nsde_model_free(m);
  nsde_context_free(ctx);
  return 0;
}

/* The evaluation programs' unit costs: one noisy pass of the test-time
 * noise ensemble (TTN) and one attack step (loss and input gradient through
 * a noisy pass, as the authors' attack, PGD and Carlini-Wagner take), in
 * milliseconds per image, best of --reps windows of --steps batches. */
static int cmd_eval(int argc, char **argv)
{
  struct bench_opts o = {2, 128, 3, 3, 0, 64, NULL, NSDE_GRAD_STORE_ALL, NSDE_MODEL_ARCH_CIFAR};
  int threads, batch, steps, width, reps;
  struct nsde_context *ctx;
  struct nsde_model *m;
  struct nsde_tensor *x, *gx, *logits;
  int32_t *labels;
  double ttn = INFINITY, atk = INFINITY, loss;
  struct nsde_loss_options lo;
  uint64_t seed = 0;

  parse_opts(false, argc, argv, &o);
  threads = o.threads, batch = o.batch, steps = o.steps, width = o.width, reps = o.reps;
  m = bench_model(threads, width, batch, NSDE_GRAD_STORE_ALL, o.arch, &ctx);
  {
    int64_t shape[4] = {batch, 3, 32, 32}, ls[2] = {batch, 10};
    if (nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, shape, &x) ||
        nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, shape, &gx) ||
        nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, ls, &logits))
      die(ctx, "tensor");
  }
  labels = calloc((size_t)batch, sizeof(int32_t));
  for (int64_t i = 0; i < nsde_tensor_numel(x); i++)
    ((float *)nsde_tensor_data(x))[i] = (float)(0.5 + 0.5 * sin(0.01 * (double)i));
  for (int b = 0; b < batch; b++)
    labels[b] = b % 10;
  nsde_loss_options_init(&lo); /* an attack step: dL/dx only, as nsde-eval's */
  lo.grad_images = gx;
  lo.loss = &loss;
  lo.no_param_grads = 1;
  for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
    double t = now();
    for (int s = 0; s < steps; s++)
      if (nsde_model_forward(m, x, 1, ++seed, logits))
        die(ctx, "ttn pass");
    t = (now() - t) / steps;
    ttn = r >= 0 && t < ttn ? t : ttn;
    t = now();
    for (int s = 0; s < steps; s++)
      if (nsde_model_loss_grad_opts(m, x, labels, 1, ++seed, &lo))
        die(ctx, "attack step");
    t = (now() - t) / steps;
    atk = r >= 0 && t < atk ? t : atk;
  }
  printf("libnsde eval width=%d batch=%d threads=%d ttn_pass_ms_per_image=%.3f "
         "attack_step_ms_per_image=%.3f\n",
         width, batch, threads, 1e3 * ttn / batch, 1e3 * atk / batch);
  free(labels);
  nsde_tensor_free(x);
  nsde_tensor_free(gx);
  nsde_tensor_free(logits);
  nsde_model_free(m);
  nsde_context_free(ctx);
  return 0;
}

static void usage(FILE *out)
{
  fprintf(out, "Usage: nsde-bench COMMAND [ARGUMENT]...\n"
               "Speed of libnsde against baselines measured in the same run.\n\n"
               "Commands:\n"
               "  gemm             sgemm GFLOP/s through libnsde vs BLIS generic kernels\n"
               "  solve [THREADS]  SDE solve throughput vs a hand-written C loop (default: 1)\n"
               "  grad [THREADS]   gradient strategies: memory, backward/forward time, error\n"
               "                   (default: 2)\n"
               "  model [OPTION]...  training and inference speed of a CIFAR-10 model\n"
               "  eval [OPTION]...   ms per image of a TTN pass and of an attack step\n"
               "  --help, --version\n\n"
               "'nsde-bench model --help' and 'nsde-bench eval --help' list their options.\n"
               "Exit status: 0 success, 1 a runtime failure, 2 a usage error.\n");
}

int main(int argc, char **argv)
{
  if (argc >= 2 && !strcmp(argv[1], "gemm"))
    return cmd_gemm(argv[0]);
  if (argc == 4 && !strcmp(argv[1], "gemm-one")) { /* child of `gemm` */
    printf("%.3f\n", gemm_gflops((int)ex_int("nsde-bench gemm-one", "N", argv[2], 1, 65536),
                                 (int)ex_int("nsde-bench gemm-one", "threads", argv[3], 1, 1024)));
    return 0;
  }
  if (argc >= 2 && !strcmp(argv[1], "solve"))
    return cmd_solve(argc >= 3 ? (int)ex_int("nsde-bench solve", "THREADS", argv[2], 1, 1024) : 1);
  if (argc >= 2 && !strcmp(argv[1], "model"))
    return cmd_model(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "eval"))
    return cmd_eval(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "grad"))
    return cmd_grad(argc >= 3 ? (int)ex_int("nsde-bench grad", "THREADS", argv[2], 1, 1024) : 2);
  if (argc >= 2 && !strcmp(argv[1], "--help")) {
    usage(stdout);
    return 0;
  }
  if (argc >= 2 && !strcmp(argv[1], "--version")) {
    printf("nsde-bench (libnsde) %s\nlibrary %s\n", NSDE_VERSION_STRING, nsde_version());
    return 0;
  }
  fprintf(stderr,
          "nsde-bench: unknown or missing command '%s' (gemm, solve, grad, model, eval); "
          "try 'nsde-bench --help'\n",
          argc >= 2 ? argv[1] : "");
  return 2;
}
