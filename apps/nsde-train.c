/*
 * nsde-train: train the paper's ODE/SDE classifiers with its recipe (SGD,
 * momentum 0.9, lr 0.1 divided by 10 at each stage, momentum reset per stage,
 * random crops with zero padding, one noisy forward pass per batch).
 *
 *   nsde-train --data fashion-mnist|cifar10|stl10 [--data-dir DIR] --out MODEL
 *              [--noise ode|additive|multiplicative|dropout] [--sigma S]
 *              [--width W] [--groups G] [--stages 40,40,20,20] [--epochs E]
 *              [--subset N] [--batch B] [--lr LR] [--crop P] [--seed S]
 *              [--threads T] [--metrics FILE.csv] [--grad store-all|checkpoint] [--resume]
 *              [--arch cifar|large] [--schedule step|cosine] [--warmup W] [--wd D] [--nesterov]
 *              [--stop-after K] [--micro-batch M] [--rank-timeout S] [--val N]
 *
 * --epochs truncates the step schedule (the stages still decide the learning
 * rate). --schedule cosine instead runs --epochs E epochs with the learning
 * rate set per batch: linear warm-up from 0 over the first W epochs, then a
 * half cosine from --lr down to 0 at the end of epoch E (momentum is not
 * reset). --arch large puts the strided stem (two stride-2 convolutions) in
 * front of the SDE block, so that it runs at 1/4 of the image's height and
 * width; the default is the paper's 3x3 stem for images under 64 pixels.
 * --val N holds out the last N training images (after --subset): the model
 * trains on the others exactly as with --subset (size - N), and after every
 * epoch its noise-off accuracy and
 * mean loss on the N are printed and written to --metrics (val_acc,
 * val_loss; empty without --val), so that hyper-parameters such as sigma
 * can be chosen without the test set.
 * --wd is PyTorch's L2 weight decay (the paper uses none). --stop-after K ends
 * this sitting after K more epochs without changing the schedule; --resume
 * continues it later.
 * A non-finite state or loss, or an exploding loss (above 20 ln(classes),
 * twenty times that of a uniform guess), stops the run with a message naming
 * the epoch and batch (exit status 3); the model file of the last finished
 * epoch stays.
 * After every epoch the model file and MODEL.state (epoch count and SGD
 * momentum, checksummed) are written atomically; --resume continues from them
 * exactly where the run stopped: every batch, crop and noise path derives from
 * (seed, epoch, batch), so the resumed run ends with the same bits as an
 * uninterrupted one.
 * --micro-batch M computes each batch's gradient as the mean of fixed
 * micro-batches of M images, added in order. Built with MPI (nsde-train-mpi,
 * run with mpirun -np K), micro-batch j runs on rank j % K (default M = 32)
 * and the model and state files are the same bytes for any K, any thread
 * count, and nsde-train with the same --micro-batch (doc/distributed.md).
 * Faults under MPI: a rank that is killed or exits ends the job at once
 * (mpirun stops the others); a rank that fails on its own (rank 0 cannot
 * write a file) calls MPI_Abort; a rank that hangs is found by the others'
 * --rank-timeout S (default 300 s: the longest a collective may wait), which
 * stop the job with a message. The files of the last finished epoch stay.
 * Public API only.
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "eval.h"

#include "train-state.h"

#include "dist.h"

#ifdef NSDE_HAVE_MPI
#define TRAIN_PROG "nsde-train-mpi"
#else
#define TRAIN_PROG "nsde-train"
#endif

/* One training step in micro-batches of mb images: micro-batch j (images
 * idx[j mb .. (j+1) mb), its own noise seed) runs on rank j % K; the
 * micro-batch gradients meet in slots (one slot per micro-batch, zero where
 * another rank computes it), are summed over the ranks (exact: one non-zero
 * term per element) and added in micro-batch order. The mean gradient lands
 * in nsde_model_grads(), the same bits for any number of ranks and threads. */
static double comm_s, comm_bytes; /* time and bytes in the collectives */
static int64_t comm_steps;

static enum nsde_status micro_step(struct nsde_model *m, const struct nsde_dataset *ds,
                                   const int64_t *idx, int batch, int mb, int crop,
                                   unsigned long long crop_seed, unsigned long long noise_seed,
                                   struct nsde_tensor *xm, int32_t *labels, float *slots,
                                   double *stats, double *loss, int64_t *corr)
{
  const int nm = batch / mb;
  const int64_t np = nsde_model_num_params(m);
  float *grads = nsde_model_grads(m);
  enum nsde_status st;

  memset(slots, 0, sizeof(float) * (size_t)(nm * np));
  memset(stats, 0, sizeof(double) * (size_t)(2 * nm));
  for (int j = dist_rank(); j < nm; j += dist_size()) {
    double l;
    int64_t c;
    if ((st = nsde_dataset_batch(ds, idx + (int64_t)j * mb, mb, crop, crop_seed, xm, labels)) != NSDE_OK)
      return st;
    st = nsde_model_loss_grad(m, xm, labels, 1, noise_seed * 65536u + (unsigned long long)j, NULL,
                              &l, &c);
    if (st == NSDE_ERR_NONFINITE)
      l = NAN; /* every rank sees it in the summed loss and stops */
    else if (st != NSDE_OK)
      return st;
    memcpy(slots + (int64_t)j * np, grads, sizeof(float) * (size_t)np);
    stats[2 * j] = l;
    stats[2 * j + 1] = (double)c;
  }
  {
    const double t0 = ex_now();
    dist_sum_float(slots, (size_t)(nm * np));
    dist_sum_double(stats, (size_t)(2 * nm));
    comm_s += ex_now() - t0;
    comm_bytes += (double)nm * (double)np * sizeof(float) + 2.0 * nm * sizeof(double);
    comm_steps++;
  }
  for (int64_t i = 0; i < np; i++) {
    double g = 0;
    for (int j = 0; j < nm; j++)
      g += slots[(int64_t)j * np + i];
    grads[i] = (float)(g / nm);
  }
  *loss = 0;
  *corr = 0;
  for (int j = 0; j < nm; j++) {
    *loss += stats[2 * j] / nm;
    *corr += (int64_t)stats[2 * j + 1];
  }
  return NSDE_OK;
}

/* Fail now, not after the first epoch, when MODEL cannot be written: a
 * directory, or a place where no file can be created. */
static int check_writable(const char *out)
{
  char probe[4200];
  FILE *f;
  struct stat sb;
  if (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode)) {
    fprintf(stderr, "nsde-train: --out %s is a directory\n", out);
    return -1;
  }
  snprintf(probe, sizeof(probe), "%s.probe", out);
  f = fopen(probe, "wb");
  if (!f) {
    fprintf(stderr, "nsde-train: cannot write next to %s: %s\n", out, strerror(errno));
    return -1;
  }
  fclose(f);
  remove(probe);
  return 0;
}

/* Held-out images (--val), as the model takes them: floats and labels. */
struct holdout {
  float *x;
  int32_t *y;
  int64_t n, item;
  int c, h, w; /* image shape */
};

/* The last val of the first `subset` (0: all) training images into ho; the
 * training set is then loaded as the first size - val images, so that a run
 * with --val trains exactly as one with --subset (size - val) would. */
static struct nsde_dataset *load_with_holdout(struct nsde_context *ctx, const char *data,
                                              const char *dir, long subset, long val,
                                              struct holdout *ho)
{
  struct nsde_dataset *all = ex_load(ctx, data, dir, NSDE_SPLIT_TRAIN, subset);
  const int64_t n_all = nsde_dataset_size(all);
  int c, h, w, classes;
  int64_t *idx;
  struct nsde_tensor *x;
  if (val >= n_all) {
    fprintf(stderr, "%s: --val %ld must leave training images (the set has %lld); try '%s --help'\n",
            TRAIN_PROG, val, (long long)n_all, TRAIN_PROG);
    exit(2);
  }
  ex_check(ctx, nsde_dataset_get_info(all, &c, &h, &w, &classes), "dataset info");
  {
    int64_t shape[4] = {val, c, h, w};
    ex_check(ctx, nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, shape, &x), "tensor");
  }
  ho->n = val;
  ho->c = c, ho->h = h, ho->w = w;
  ho->item = (int64_t)c * h * w;
  ho->x = malloc(sizeof(float) * (size_t)(val * ho->item));
  ho->y = malloc(sizeof(int32_t) * (size_t)val);
  idx = malloc(sizeof(int64_t) * (size_t)val);
  if (!ho->x || !ho->y || !idx) {
    fprintf(stderr, "nsde-train: out of memory for %ld held-out images\n", val);
    exit(1);
  }
  for (int64_t i = 0; i < val; i++)
    idx[i] = n_all - val + i;
  ex_check(ctx, nsde_dataset_batch(all, idx, val, 0, 0, x, ho->y), "held-out images");
  memcpy(ho->x, nsde_tensor_data(x), sizeof(float) * (size_t)(val * ho->item));
  free(idx);
  nsde_tensor_free(x);
  nsde_dataset_free(all);
  return ex_load(ctx, data, dir, NSDE_SPLIT_TRAIN, (long)(n_all - val));
}

static const struct cli_opt train_opts[] = {
    {"data", "NAME", "Data", "data set: fashion-mnist, cifar10 or stl10", "fashion-mnist"},
    {"data-dir", "DIR", "Data", "where the data set's files are",
     "/usr/share/datasets/fashion-mnist, cifar-10-batches-bin, stl10_binary"},
    {"subset", "N", "Data", "train on the first N training images; 0: all", "0"},
    {"val", "N", "Data", "hold out the last N of them: noise-off accuracy and loss after every epoch",
     "0"},
    {"crop", "P", "Data", "random crops with P pixels of zero padding", "4 for cifar10, 8 for stl10, 0"},
    {"arch", "NAME", "Model", "cifar (the paper's 3x3 stem) or large (strided stem, block at 1/4 size)",
     "large for images of 64 pixels or more, else cifar"},
    {"noise", "KIND", "Model", "ode, additive, multiplicative or dropout", "multiplicative"},
    {"sigma", "S", "Model", "noise scale of the SDE block, in [0, 100]", "1.0"},
    {"width", "W", "Model", "channels of the SDE block", "64"},
    {"groups", "G", "Model", "GroupNorm groups; 0: the paper's min(32, channels)", "0"},
    {"seed", "S", "Model", "seed of the initialisation, the shuffles and the noise", "1"},
    {"stages", "A,B,..", "Training", "epochs of each learning-rate stage (lr / 10 per stage)",
     "40,40,20,20"},
    {"epochs", "E", "Training", "stop after E epochs (the cosine schedule's length)",
     "the sum of the stages"},
    {"schedule", "NAME", "Training", "step (the paper's stages) or cosine (per batch, to 0 at E)",
     "step"},
    {"warmup", "W", "Training", "cosine: linear warm-up over the first W epochs", "0"},
    {"lr", "LR", "Training", "initial learning rate", "0.1"},
    {"batch", "B", "Training", "images per SGD step", "128"},
    {"wd", "D", "Training", "L2 weight decay (the paper uses none)", "0"},
    {"nesterov", NULL, "Training", "Nesterov momentum", "off"},
    {"grad", "KIND", "Training", "store-all or checkpoint (less memory, same gradients)", "store-all"},
    {"resume", NULL, "Training", "continue from MODEL.state where the last run stopped", "off"},
    {"stop-after", "K", "Training", "end this sitting after K more epochs (--resume continues)",
     "none"},
    {"out", "MODEL", "Output", "the model file to write (required); the state goes to MODEL.state",
     NULL},
    {"metrics", "FILE", "Output", "per-epoch CSV: epoch, lr, loss, accuracy, speed, validation",
     "none"},
    {"threads", "T", "Performance", "threads; 0: all cores", "0"},
    {"micro-batch", "M", "Performance", "process each batch in pieces of M images (same result)",
     "the batch; 32 under MPI"},
    {"rank-timeout", "S", "Performance", "nsde-train-mpi: seconds a rank waits for the others", "300"},
};

static const struct cli_prog train_prog = {
    TRAIN_PROG,
    "--out MODEL [--data NAME] [OPTION]...",
    "train the paper's Neural SDE or ODE image classifier",
    "Runs the paper's recipe (SGD, momentum 0.9, staged learning rate, random crops, one noisy\n"
    "pass per batch) and writes a model file for nsde-eval; a killed run resumes with --resume.",
    {"nsde-train --out fmnist.nsde",
     "nsde-train --data cifar10 --data-dir cifar-10-batches-bin --out sde.nsde --noise "
     "multiplicative --sigma 0.5 --val 5000 --metrics sde.csv",
     "mpirun -np 2 nsde-train-mpi --data cifar10 --out sde.nsde --batch 128", NULL},
    "nsde-train-mpi is the same program over MPI (doc/distributed.md): every rank trains on its "
    "share of each batch and the model is bit for bit the one nsde-train makes.",
    train_opts,
    (int)(sizeof(train_opts) / sizeof(train_opts[0])),
};

/* Noise-off accuracy and mean cross-entropy of the model on the held-out
 * images, in batches of at most mb. */
static void validate(struct nsde_context *ctx, struct nsde_model *m, const struct holdout *ho,
                     int mb, int classes, double *acc, double *loss)
{
  int64_t hits = 0, cur = 0;
  double ls = 0;
  struct nsde_tensor *x = NULL, *probs = NULL;
  for (int64_t b0 = 0; b0 < ho->n; b0 += mb) {
    const int64_t bs = ho->n - b0 < mb ? ho->n - b0 : mb;
    const int32_t *y = ho->y + b0;
    const float *p;
    if (bs != cur) { /* the first batch, and the last one when smaller */
      int64_t shape[4] = {bs, ho->c, ho->h, ho->w}, ps[2] = {bs, classes};
      cur = bs;
      nsde_tensor_free(x);
      nsde_tensor_free(probs);
      ex_check(ctx, nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, shape, &x), "tensor");
      ex_check(ctx, nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 2, ps, &probs), "tensor");
    }
    memcpy(nsde_tensor_data(x), ho->x + b0 * ho->item, sizeof(float) * (size_t)(bs * ho->item));
    ex_check(ctx, nsde_model_predict(m, x, 0, 0, probs), "validation pass");
    p = nsde_tensor_data(probs);
    hits += count_correct(p, y, bs, classes);
    for (int64_t i = 0; i < bs; i++)
      ls -= log(fmax((double)p[i * classes + y[i]], 1e-300));
  }
  *acc = (double)hits / (double)ho->n;
  *loss = ls / (double)ho->n;
  nsde_tensor_free(x);
  nsde_tensor_free(probs);
}

int main(int argc, char **argv)
{
  const char *data = "fashion-mnist", *dir = NULL, *out = NULL, *metrics = NULL, *noise = "multiplicative";
  int stages[8] = {40, 40, 20, 20}, nstages = 4, epochs = -1, batch = 128, crop = -1, threads = 0;
  int width = 64, groups = 0, resume = 0, first_epoch = 0, nesterov = 0, stop_after = -1;
  int mb = 0; /* micro-batch; 0: the whole batch at once (or 32 under MPI) */
  float *slots = NULL;
  double *stats = NULL;
  const char *grad = "store-all", *arch = NULL, *schedule = "step";
  long subset = 0, val = 0;
  double sigma = 1.0, lr0 = 0.1, warmup = 0, wd = 0, explode;
  unsigned long long seed = 1;
  struct nsde_context *ctx;
  struct nsde_dataset *ds;
  struct nsde_model_config cfg;
  struct nsde_model *m = NULL;
  struct nsde_sgd *opt = NULL;
  struct nsde_lr_schedule *sched = NULL;
  struct nsde_tensor *x = NULL;
  int32_t *labels = NULL;
  int64_t *perm = NULL, n;
  struct holdout ho = {NULL, NULL, 0, 0, 0, 0, 0};
  int c, h, w, classes, total_epochs = 0, cosine;
  FILE *mf = NULL;
  int rc = 0;
  double t_start;

  dist_init(&argc, &argv);
  if (dist_rank() != 0 && !freopen("/dev/null", "w", stdout)) /* one rank reports */
    dist_abort(1);

  for (const char *a, *v; cli_next(&train_prog, argc, argv, &a, &v);) {
#define OPT(name) (!strcmp(a, name))
    static const char *const datas[] = {"fashion-mnist", "cifar10", "stl10", NULL};
    static const char *const noises[] = {"ode", "additive", "multiplicative", "dropout", NULL};
    static const char *const grads[] = {"store-all", "checkpoint", NULL};
    static const char *const archs[] = {"cifar", "large", NULL};
    static const char *const schedules[] = {"step", "cosine", NULL};
    const char *P = TRAIN_PROG;
    if (OPT("--data")) data = ex_choice(P, a, v, datas);
    else if (OPT("--data-dir")) dir = v;
    else if (OPT("--out")) out = v;
    else if (OPT("--metrics")) metrics = v;
    else if (OPT("--noise")) noise = ex_choice(P, a, v, noises);
    else if (OPT("--sigma")) sigma = ex_real(P, a, v, 0, 100);
    else if (OPT("--width")) width = (int)ex_int(P, a, v, 1, 4096);
    else if (OPT("--groups")) groups = (int)ex_int(P, a, v, 0, 4096);
    else if (OPT("--epochs")) epochs = (int)ex_int(P, a, v, 1, 100000);
    else if (OPT("--subset")) subset = (long)ex_int(P, a, v, 0, 1000000000);
    else if (OPT("--batch")) batch = (int)ex_int(P, a, v, 1, 65536);
    else if (OPT("--lr")) lr0 = ex_real(P, a, v, 1e-12, 1e6);
    else if (OPT("--crop")) crop = (int)ex_int(P, a, v, 0, 64);
    else if (OPT("--seed")) seed = (unsigned long long)ex_int(P, a, v, 0, (1LL << 62));
    else if (OPT("--threads")) threads = (int)ex_int(P, a, v, 0, 1024);
    else if (OPT("--grad")) grad = ex_choice(P, a, v, grads);
    else if (OPT("--arch")) arch = ex_choice(P, a, v, archs);
    else if (OPT("--schedule")) schedule = ex_choice(P, a, v, schedules);
    else if (OPT("--warmup")) warmup = ex_real(P, a, v, 0, 100000);
    else if (OPT("--wd")) wd = ex_real(P, a, v, 0, 1);
    else if (!strcmp(a, "--nesterov")) nesterov = 1;
    else if (OPT("--stop-after")) stop_after = (int)ex_int(P, a, v, 1, 100000);
    else if (OPT("--micro-batch")) mb = (int)ex_int(P, a, v, 1, 65536);
    else if (OPT("--rank-timeout")) dist_set_timeout((unsigned)ex_int(P, a, v, 1, 86400));
    else if (OPT("--val")) val = (long)ex_int(P, a, v, 0, 1000000000);
    else if (!strcmp(a, "--resume")) resume = 1;
    else if (OPT("--stages")) nstages = ex_wholes(P, a, v, 1, 100000, stages, 8, "epochs");
    else {
      fprintf(stderr, "%s: option %s has no handler (a bug)\n", P, a);
      return 1;
    }
#undef OPT
  }
  cosine = !strcmp(schedule, "cosine");
  if (!out) {
    fprintf(stderr, "%s: --out MODEL is required; try '%s --help'\n", TRAIN_PROG, TRAIN_PROG);
    return 2;
  }
  if (cosine && (epochs < 1 || warmup > epochs)) {
    fprintf(stderr, "%s: --schedule cosine needs --epochs E and --warmup W <= E; try '%s --help'\n",
            TRAIN_PROG, TRAIN_PROG);
    return 2;
  }
  if (dist_rank() == 0 && check_writable(out) != 0) {
    if (dist_size() > 1)
      dist_abort(1); /* the other ranks would wait for rank 0 */
    return 1;
  }
  for (int k = 0; k < nstages; k++)
    total_epochs += stages[k] > 0 ? stages[k] : 0;
  if (!cosine && (epochs < 0 || epochs > total_epochs))
    epochs = total_epochs;
  ex_check(NULL, nsde_context_new(&ctx), "context");
  ex_check(ctx, nsde_context_set_threads(ctx, threads), "threads");
  ds = val > 0 ? load_with_holdout(ctx, data, dir, subset, val, &ho)
               : ex_load(ctx, data, dir, NSDE_SPLIT_TRAIN, subset);
  ex_check(ctx, nsde_dataset_get_info(ds, &c, &h, &w, &classes), "dataset info");
  n = nsde_dataset_size(ds);
  if (crop < 0)
    crop = !strcmp(data, "cifar10") ? 4 : !strcmp(data, "stl10") ? 8 : 0;
  if (batch > n)
    batch = (int)n;
#ifdef NSDE_HAVE_MPI
  if (mb == 0) /* the same micro-batches for any number of ranks: the same bits */
    mb = batch % 32 == 0 ? 32 : batch;
#endif
  if (mb == 0)
    mb = batch;
  if (mb > batch || batch % mb != 0) {
    fprintf(stderr, "%s: --micro-batch %d must divide the batch %d; try '%s --help'\n", TRAIN_PROG, mb,
            batch, TRAIN_PROG);
    return 2;
  }
  nsde_model_config_init(&cfg);
  cfg.arch = arch ? (!strcmp(arch, "large") ? NSDE_MODEL_ARCH_LARGE : NSDE_MODEL_ARCH_CIFAR)
                  : h >= 64 ? NSDE_MODEL_ARCH_LARGE : NSDE_MODEL_ARCH_CIFAR;
  cfg.in_channels = c;
  cfg.in_height = h;
  cfg.in_width = w;
  cfg.classes = classes;
  cfg.width = width;
  cfg.groups = groups;
  cfg.sigma = sigma;
  cfg.max_batch = mb;
  cfg.init_seed = seed;
  cfg.noise = !strcmp(noise, "ode") ? NSDE_MODEL_NOISE_ODE : !strcmp(noise, "additive") ? NSDE_MODEL_NOISE_ADDITIVE
            : !strcmp(noise, "dropout") ? NSDE_MODEL_NOISE_DROPOUT : NSDE_MODEL_NOISE_MULTIPLICATIVE;
  cfg.grad = !strcmp(grad, "checkpoint") ? NSDE_GRAD_CHECKPOINT : NSDE_GRAD_STORE_ALL;
  if (resume) {
    /* the saved model, with this run's gradient setting and batch */
    struct nsde_model_config saved;
    struct nsde_model *ms;
    ex_check(ctx, nsde_model_load(ctx, out, batch, &ms), "loading the model to resume");
    ex_check(ctx, nsde_model_get_config(ms, &saved), "model get config");
    if (saved.in_channels != c || saved.in_height != h || saved.in_width != w ||
        saved.classes != classes) {
      fprintf(stderr, "nsde-train: cannot resume: %s takes %dx%dx%d images in %d classes, %s has "
                      "%dx%dx%d in %d\n", out, saved.in_channels, saved.in_height, saved.in_width,
              saved.classes, data, c, h, w, classes);
      nsde_model_free(ms);
      rc = 1;
      goto done;
    }
    saved.grad = cfg.grad;
    saved.max_batch = mb;
    ex_check(ctx, nsde_model_new(ctx, &saved, &m), "model");
    memcpy(nsde_model_params(m), nsde_model_params(ms), sizeof(float) * (size_t)nsde_model_num_params(m));
    ex_check(ctx, nsde_model_params_changed(m), "model");
    nsde_model_free(ms);
    cfg = saved;
  } else {
    ex_check(ctx, nsde_model_new(ctx, &cfg, &m), "model");
  }
  ex_check(ctx, nsde_sgd_new(ctx, nsde_model_num_params(m), 0.9, wd, nesterov, &opt), "optimiser");
  ex_check(ctx, cosine ? nsde_lr_schedule_new_cosine(ctx, lr0, warmup, epochs, &sched)
                       : nsde_lr_schedule_new_staged(ctx, lr0, stages, nstages, &sched),
           "learning-rate schedule");
  if (resume) {
    first_epoch = load_state(out, nsde_model_params(m), nsde_sgd_velocity(opt), nsde_model_num_params(m));
    if (first_epoch < 0) {
      rc = 1;
      goto done;
    }
    ex_check(ctx, nsde_model_params_changed(m), "model");
    printf("nsde-train: resuming %s after epoch %d\n", out, first_epoch);
    /* A kill between the last epoch's two writes leaves the state one epoch
     * ahead of the model file; with no epoch left to train, no later write
     * would bring the model file up to it, so write it now (the state's
     * parameters; the same bytes when the two already agree). */
    if (first_epoch >= epochs && dist_rank() == 0)
      ex_check(ctx, nsde_model_save(m, out), "saving the model");
  }
  {
    int64_t shape[4] = {mb, c, h, w}; /* a whole batch, or one micro-batch */
    ex_check(ctx, nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT32, 4, shape, &x), "tensor");
  }
  if (mb < batch) {
    slots = malloc(sizeof(float) * (size_t)(batch / mb) * (size_t)nsde_model_num_params(m));
    stats = malloc(sizeof(double) * (size_t)(2 * (batch / mb)));
    if (!slots || !stats) {
      fprintf(stderr, "nsde-train: out of memory for %d micro-batch gradients\n", batch / mb);
      rc = 1;
      goto done;
    }
  }
  labels = malloc(sizeof(int32_t) * (size_t)batch);
  perm = malloc(sizeof(int64_t) * (size_t)n);
  if (metrics && dist_rank() == 0) {
    mf = fopen(metrics, resume ? "a" : "w");
    if (!mf) {
      perror(metrics);
      rc = 1;
      goto done;
    }
    if (!resume)
      fprintf(mf, "epoch,lr,train_loss,train_acc,images_per_s,seconds,val_acc,val_loss\n");
  }
  printf("nsde-train: %s, %lld images %dx%dx%d, %s noise sigma %g, width %d, %lld parameters, "
         "%d epochs, batch %d, BLIS '%s'\n", data, (long long)n, c, h, w, noise, sigma, width,
         (long long)nsde_model_num_params(m), epochs, batch, nsde_blis_arch());
  if (val > 0)
    printf("nsde-train: the last %ld images held out for validation\n", val);
  explode = 20.0 * log((double)classes);
  t_start = ex_now();
  for (int e = first_epoch; e < epochs && (stop_after < 0 || e < first_epoch + stop_after); e++) {
    double lr = nsde_lr_schedule_at(sched, e), loss_sum = 0, t0 = ex_now(), val_acc = NAN, val_loss = NAN;
    int64_t hits = 0, seen = 0, nb = n / batch;
    if (!cosine && e > 0 && lr != nsde_lr_schedule_at(sched, e - 1))
      ex_check(ctx, nsde_sgd_reset(opt), "sgd reset"); /* the paper resets momentum at each stage */
    ex_check(ctx, nsde_dataset_permutation(ds, seed * 1000 + (unsigned long long)e, perm), "permutation");
    for (int64_t b = 0; b < nb; b++) {
      double loss;
      int64_t corr;
      enum nsde_status st;
      const unsigned long long crop_seed = seed * 7919 + (unsigned long long)(e * nb + b);
      const unsigned long long noise_seed = seed * 104729 + (unsigned long long)(e * nb + b);
      if (mb < batch) {
        st = micro_step(m, ds, perm + b * batch, batch, mb, crop, crop_seed, noise_seed, x, labels,
                        slots, stats, &loss, &corr);
      } else {
        ex_check(ctx, nsde_dataset_batch(ds, perm + b * batch, batch, crop, crop_seed, x, labels),
                 "batch");
        st = nsde_model_loss_grad(m, x, labels, 1, noise_seed, NULL, &loss, &corr);
      }
      if (st != NSDE_OK && st != NSDE_ERR_NONFINITE)
        ex_check(ctx, st, "training step");
      if (st == NSDE_ERR_NONFINITE || !isfinite(loss) || loss > explode) {
        fprintf(stderr, "\nnsde-train: the training diverged (%s) at epoch %d, batch %lld; stopping. "
                        "%s holds the model after epoch %d%s\n",
                st != NSDE_OK ? nsde_context_last_error(ctx) : "loss not finite or above 20 ln(classes)",
                e + 1, (long long)(b + 1), out, e,
                e == 0 ? " (no epoch finished: no model written)" : "");
        rc = 3;
        goto done;
      }
      if (cosine)
        lr = nsde_lr_schedule_at(sched, e + (double)b / (double)nb);
      ex_check(ctx, nsde_sgd_step(opt, nsde_model_params(m), nsde_model_grads(m), lr), "SGD");
      loss_sum += loss * batch;
      hits += corr;
      seen += batch;
      if ((b + 1) % 10 == 0 || b + 1 == nb) {
        double el = ex_now() - t_start, rate = seen / (ex_now() - t0);
        double left = ((double)(epochs - e) * n - seen) / rate;
        printf("\repoch %d/%d batch %lld/%lld loss %.4f acc %.3f %.1f img/s ETA %.0f s   ", e + 1,
               epochs, (long long)(b + 1), (long long)nb, loss_sum / seen, (double)hits / seen, rate,
               left > 0 ? left : 0);
        fflush(stdout);
        (void)el;
      }
    }
    printf("\n");
    if (dist_rank() != 0)
      continue; /* one rank writes the files */
    if (val > 0) {
      validate(ctx, m, &ho, mb, classes, &val_acc, &val_loss);
      printf("epoch %d/%d validation (%ld images, noise off): acc %.4f loss %.4f\n", e + 1, epochs,
             val, val_acc, val_loss);
    }
    /* the state first: a crash between the two writes leaves a state one
     * epoch ahead of the model file, and --resume takes the state's parameters */
    if (save_state(ctx, out, e + 1, nsde_model_params(m), nsde_sgd_velocity(opt),
                   nsde_model_num_params(m)) != 0) {
      fprintf(stderr, "nsde-train: cannot write %s.state: %s\n", out, nsde_context_last_error(ctx));
      rc = 1;
      goto done;
    }
    ex_check(ctx, nsde_model_save(m, out), "saving the model");
    if (mf) {
      char vs[64] = ","; /* val_acc,val_loss, empty without --val: one fprintf per row */
      if (val > 0)
        snprintf(vs, sizeof(vs), "%.4f,%.6f", val_acc, val_loss);
      fprintf(mf, "%d,%g,%.6f,%.4f,%.2f,%.1f,%s\n", e + 1, lr, loss_sum / seen, (double)hits / seen,
              seen / (ex_now() - t0), ex_now() - t_start, vs);
      fflush(mf);
    }
  }
  printf("nsde-train: wrote %s (%.0f s)\n", out, ex_now() - t_start);
  if (dist_size() > 1 && comm_steps > 0)
    printf("nsde-train: %d ranks, micro-batches of %d: %.2f MB summed per step, %.1f ms per step "
           "in the collectives\n", dist_size(), mb, comm_bytes / comm_steps / 1e6,
           1e3 * comm_s / comm_steps);
done:
  if (rc != 0 && rc != 3 && dist_size() > 1) {
    /* an error of this rank alone (rank 0 writes the files): the others
     * would wait for it in their next collective */
    fflush(stdout);
    dist_abort(rc);
  }
  if (mf)
    fclose(mf);
  free(labels);
  free(perm);
  nsde_tensor_free(x);
  free(slots);
  free(stats);
  nsde_sgd_free(opt);
  nsde_lr_schedule_free(sched);
  nsde_model_free(m);
  nsde_dataset_free(ds);
  free(ho.x);
  free(ho.y);
  nsde_context_free(ctx);
  dist_finalize();
  return rc;
}
