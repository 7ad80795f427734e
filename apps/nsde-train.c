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

#include "holdout.h"
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
    if ((st = nsde_dataset_batch(ds, idx + (int64_t)j * mb, mb, crop, crop_seed, xm, labels)) !=
        NSDE_OK)
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

static const struct cli_opt train_opts[] = {
    {"data", "NAME", "Data", "data set: fashion-mnist, cifar10 or stl10", "fashion-mnist"},
    {"data-dir", "DIR", "Data", "where the data set's files are",
     "/usr/share/datasets/fashion-mnist, cifar-10-batches-bin, stl10_binary"},
    {"subset", "N", "Data", "train on the first N training images; 0: all", "0"},
    {"val", "N", "Data",
     "hold out the last N of them: noise-off accuracy and loss after every epoch", "0"},
    {"crop", "P", "Data", "random crops with P pixels of zero padding",
     "4 for cifar10, 8 for stl10, 0"},
    {"arch", "NAME", "Model",
     "cifar (the paper's 3x3 stem) or large (strided stem, block at 1/4 size)",
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
    {"grad", "KIND", "Training", "store-all or checkpoint (less memory, same gradients)",
     "store-all"},
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
    {"rank-timeout", "S", "Performance", "nsde-train-mpi: seconds a rank waits for the others",
     "300"},
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

/* The command line. */
struct train_args {
  const char *data, *dir, *out, *metrics, *noise, *grad, *arch, *schedule;
  int stages[8], nstages, epochs, batch, crop, threads, width, groups, stop_after;
  int mb; /* micro-batch; 0: the whole batch at once (or 32 under MPI) */
  int resume, nesterov, cosine;
  long subset, val;
  double sigma, lr0, warmup, wd;
  unsigned long long seed;
};

/* What a run holds: the data, the model and its optimiser, the batch
 * buffers, the metrics file. */
struct train_run {
  struct nsde_context *ctx;
  struct nsde_dataset *ds;
  struct holdout ho;
  struct nsde_model *m;
  struct nsde_sgd *opt;
  struct nsde_lr_schedule *sched;
  struct nsde_tensor *x;
  int32_t *labels;
  int64_t *perm, n;
  float *slots;
  double *stats;
  FILE *mf;
  int c, h, w, classes, first_epoch;
  double t_start, explode;
};

/* Options into *A (exit status 2 on a usage error, -1 to go on). */
static int parse_args(int argc, char **argv, struct train_args *A)
{
  const char *P = TRAIN_PROG;

  *A = (struct train_args){.data = "fashion-mnist",
                           .noise = "multiplicative",
                           .stages = {40, 40, 20, 20},
                           .nstages = 4,
                           .epochs = -1,
                           .batch = 128,
                           .crop = -1,
                           .width = 64,
                           .stop_after = -1,
                           .grad = "store-all",
                           .schedule = "step",
                           .sigma = 1.0,
                           .lr0 = 0.1,
                           .seed = 1};
  for (const char *a, *v; cli_next(&train_prog, argc, argv, &a, &v);) {
#define OPT(name) (!strcmp(a, name))
    static const char *const datas[] = {"fashion-mnist", "cifar10", "stl10", NULL};
    static const char *const noises[] = {"ode", "additive", "multiplicative", "dropout", NULL};
    static const char *const grads[] = {"store-all", "checkpoint", NULL};
    static const char *const archs[] = {"cifar", "large", NULL};
    static const char *const schedules[] = {"step", "cosine", NULL};
    if (OPT("--data"))
      A->data = ex_choice(P, a, v, datas);
    else if (OPT("--data-dir"))
      A->dir = v;
    else if (OPT("--out"))
      A->out = v;
    else if (OPT("--metrics"))
      A->metrics = v;
    else if (OPT("--noise"))
      A->noise = ex_choice(P, a, v, noises);
    else if (OPT("--sigma"))
      A->sigma = ex_real(P, a, v, 0, 100);
    else if (OPT("--width"))
      A->width = (int)ex_int(P, a, v, 1, 4096);
    else if (OPT("--groups"))
      A->groups = (int)ex_int(P, a, v, 0, 4096);
    else if (OPT("--epochs"))
      A->epochs = (int)ex_int(P, a, v, 1, 100000);
    else if (OPT("--subset"))
      A->subset = (long)ex_int(P, a, v, 0, 1000000000);
    else if (OPT("--batch"))
      A->batch = (int)ex_int(P, a, v, 1, 65536);
    else if (OPT("--lr"))
      A->lr0 = ex_real(P, a, v, 1e-12, 1e6);
    else if (OPT("--crop"))
      A->crop = (int)ex_int(P, a, v, 0, 64);
    else if (OPT("--seed"))
      A->seed = (unsigned long long)ex_int(P, a, v, 0, (1LL << 62));
    else if (OPT("--threads"))
      A->threads = (int)ex_int(P, a, v, 0, 1024);
    else if (OPT("--grad"))
      A->grad = ex_choice(P, a, v, grads);
    else if (OPT("--arch"))
      A->arch = ex_choice(P, a, v, archs);
    else if (OPT("--schedule"))
      A->schedule = ex_choice(P, a, v, schedules);
    else if (OPT("--warmup"))
      A->warmup = ex_real(P, a, v, 0, 100000);
    else if (OPT("--wd"))
      A->wd = ex_real(P, a, v, 0, 1);
    else if (!strcmp(a, "--nesterov"))
      A->nesterov = 1;
    else if (OPT("--stop-after"))
      A->stop_after = (int)ex_int(P, a, v, 1, 100000);
    else if (OPT("--micro-batch"))
      A->mb = (int)ex_int(P, a, v, 1, 65536);
    else if (OPT("--rank-timeout"))
      dist_set_timeout((unsigned)ex_int(P, a, v, 1, 86400));
    else if (OPT("--val"))
      A->val = (long)ex_int(P, a, v, 0, 1000000000);
    else if (!strcmp(a, "--resume"))
      A->resume = 1;
    else if (OPT("--stages"))
      A->nstages = ex_wholes(P, a, v, 1, 100000, A->stages, 8, "epochs");
    else {
      fprintf(stderr, "%s: option %s has no handler (a bug)\n", P, a);
      return 1;
    }
#undef OPT
  }
  A->cosine = !strcmp(A->schedule, "cosine");
  if (!A->out) {
    fprintf(stderr, "%s: --out MODEL is required; try '%s --help'\n", P, P);
    return 2;
  }
  if (A->cosine && (A->epochs < 1 || A->warmup > A->epochs)) {
    fprintf(stderr, "%s: --schedule cosine needs --epochs E and --warmup W <= E; try '%s --help'\n",
            P, P);
    return 2;
  }
  return -1;
}

/* The epochs to train, the data, the crop and the micro-batch (exit status
 * 2 if it does not divide the batch, -1 to go on). */
static int load_data(struct train_args *A, struct train_run *R)
{
  int total_epochs = 0;

  for (int k = 0; k < A->nstages; k++)
    total_epochs += A->stages[k] > 0 ? A->stages[k] : 0;
  if (!A->cosine && (A->epochs < 0 || A->epochs > total_epochs))
    A->epochs = total_epochs;
  ex_check(NULL, nsde_context_new(&R->ctx), "context");
  ex_check(R->ctx, nsde_context_set_threads(R->ctx, A->threads), "threads");
  R->ds = A->val > 0
              ? load_with_holdout(R->ctx, TRAIN_PROG, A->data, A->dir, A->subset, A->val, &R->ho)
              : ex_load(R->ctx, A->data, A->dir, NSDE_SPLIT_TRAIN, A->subset);
  ex_check(R->ctx, nsde_dataset_get_info(R->ds, &R->c, &R->h, &R->w, &R->classes), "dataset info");
  R->n = nsde_dataset_size(R->ds);
  if (A->crop < 0)
    A->crop = !strcmp(A->data, "cifar10") ? 4 : !strcmp(A->data, "stl10") ? 8 : 0;
  if (A->batch > R->n)
    A->batch = (int)R->n;
#ifdef NSDE_HAVE_MPI
  if (A->mb == 0) /* the same micro-batches for any number of ranks: the same bits */
    A->mb = A->batch % 32 == 0 ? 32 : A->batch;
#endif
  if (A->mb == 0)
    A->mb = A->batch;
  if (A->mb > A->batch || A->batch % A->mb != 0) {
    fprintf(stderr, "%s: --micro-batch %d must divide the batch %d; try '%s --help'\n", TRAIN_PROG,
            A->mb, A->batch, TRAIN_PROG);
    return 2;
  }
  return -1;
}

/* The model --resume continues: the saved one, with this run's gradient
 * setting and batch (1 if it cannot be, 0 if made). */
static int resume_model(const struct train_args *A, struct train_run *R,
                        struct nsde_model_config *cfg)
{
  struct nsde_model_config saved;
  struct nsde_model *ms;

  ex_check(R->ctx, nsde_model_load(R->ctx, A->out, A->batch, &ms), "loading the model to resume");
  ex_check(R->ctx, nsde_model_get_config(ms, &saved), "model get config");
  if (saved.in_channels != R->c || saved.in_height != R->h || saved.in_width != R->w ||
      saved.classes != R->classes) {
    fprintf(stderr,
            "nsde-train: cannot resume: %s takes %dx%dx%d images in %d classes, %s has "
            "%dx%dx%d in %d\n",
            A->out, saved.in_channels, saved.in_height, saved.in_width, saved.classes, A->data,
            R->c, R->h, R->w, R->classes);
    nsde_model_free(ms);
    return 1;
  }
  saved.grad = cfg->grad;
  saved.max_batch = A->mb;
  ex_check(R->ctx, nsde_model_new(R->ctx, &saved, &R->m), "model");
  memcpy(nsde_model_params(R->m), nsde_model_params(ms),
         sizeof(float) * (size_t)nsde_model_num_params(R->m));
  ex_check(R->ctx, nsde_model_params_changed(R->m), "model");
  nsde_model_free(ms);
  *cfg = saved;
  return 0;
}

/* The model (new, or resumed with its optimiser state), the optimiser and
 * the learning-rate schedule (1 on failure). */
static int build_model(const struct train_args *A, struct train_run *R)
{
  struct nsde_context *ctx = R->ctx;
  struct nsde_model_config cfg;

  nsde_model_config_init(&cfg);
  cfg.arch = A->arch ? (!strcmp(A->arch, "large") ? NSDE_MODEL_ARCH_LARGE : NSDE_MODEL_ARCH_CIFAR)
             : R->h >= 64 ? NSDE_MODEL_ARCH_LARGE
                          : NSDE_MODEL_ARCH_CIFAR;
  cfg.in_channels = R->c;
  cfg.in_height = R->h;
  cfg.in_width = R->w;
  cfg.classes = R->classes;
  cfg.width = A->width;
  cfg.groups = A->groups;
  cfg.sigma = A->sigma;
  cfg.max_batch = A->mb;
  cfg.init_seed = A->seed;
  cfg.noise = !strcmp(A->noise, "ode")        ? NSDE_MODEL_NOISE_ODE
              : !strcmp(A->noise, "additive") ? NSDE_MODEL_NOISE_ADDITIVE
              : !strcmp(A->noise, "dropout")  ? NSDE_MODEL_NOISE_DROPOUT
                                              : NSDE_MODEL_NOISE_MULTIPLICATIVE;
  cfg.grad = !strcmp(A->grad, "checkpoint") ? NSDE_GRAD_CHECKPOINT : NSDE_GRAD_STORE_ALL;
  if (A->resume) {
    if (resume_model(A, R, &cfg) != 0)
      return 1;
  } else {
    ex_check(ctx, nsde_model_new(ctx, &cfg, &R->m), "model");
  }
  ex_check(ctx, nsde_sgd_new(ctx, nsde_model_num_params(R->m), 0.9, A->wd, A->nesterov, &R->opt),
           "optimiser");
  ex_check(ctx,
           A->cosine ? nsde_lr_schedule_new_cosine(ctx, A->lr0, A->warmup, A->epochs, &R->sched)
                     : nsde_lr_schedule_new_staged(ctx, A->lr0, A->stages, A->nstages, &R->sched),
           "learning-rate schedule");
  if (A->resume) {
    R->first_epoch = load_state(A->out, nsde_model_params(R->m), nsde_sgd_velocity(R->opt),
                                nsde_model_num_params(R->m));
    if (R->first_epoch < 0)
      return 1;
    ex_check(ctx, nsde_model_params_changed(R->m), "model");
    printf("nsde-train: resuming %s after epoch %d\n", A->out, R->first_epoch);
    /* A kill between the last epoch's two writes leaves the state one epoch
     * ahead of the model file; with no epoch left to train, no later write
     * would bring the model file up to it, so write it now (the state's
     * parameters; the same bytes when the two already agree). */
    if (R->first_epoch >= A->epochs && dist_rank() == 0)
      ex_check(ctx, nsde_model_save(R->m, A->out), "saving the model");
  }
  return 0;
}

/* The batch buffers and the metrics file (1 on failure). */
static int open_run(const struct train_args *A, struct train_run *R)
{
  const int batch = A->batch, mb = A->mb;
  int64_t shape[4] = {mb, R->c, R->h, R->w}; /* a whole batch, or one micro-batch */

  ex_check(R->ctx, nsde_tensor_new(R->ctx, NSDE_DTYPE_FLOAT32, 4, shape, &R->x), "tensor");
  if (mb < batch) {
    R->slots = malloc(sizeof(float) * (size_t)(batch / mb) * (size_t)nsde_model_num_params(R->m));
    R->stats = malloc(sizeof(double) * (size_t)(2 * (batch / mb)));
    if (!R->slots || !R->stats) {
      fprintf(stderr, "nsde-train: out of memory for %d micro-batch gradients\n", batch / mb);
      return 1;
    }
  }
  R->labels = malloc(sizeof(int32_t) * (size_t)batch);
  R->perm = malloc(sizeof(int64_t) * (size_t)R->n);
  if (A->metrics && dist_rank() == 0) {
    R->mf = fopen(A->metrics, A->resume ? "a" : "w");
    if (!R->mf) {
      perror(A->metrics);
      return 1;
    }
    if (!A->resume)
      fprintf(R->mf, "epoch,lr,train_loss,train_acc,images_per_s,seconds,val_acc,val_loss\n");
  }
  return 0;
}

/* Epoch e's batches (3 if the training diverged, 0 otherwise); the sums for
 * the epoch's line and row. */
static int train_epoch(const struct train_args *A, struct train_run *R, int e, double t0,
                       double *lr, double *loss_sum, int64_t *hits, int64_t *seen)
{
  struct nsde_context *ctx = R->ctx;
  const int batch = A->batch, mb = A->mb;
  const int64_t nb = R->n / batch;

  ex_check(ctx, nsde_dataset_permutation(R->ds, A->seed * 1000 + (unsigned long long)e, R->perm),
           "permutation");
  for (int64_t b = 0; b < nb; b++) {
    double loss;
    int64_t corr;
    enum nsde_status st;
    const unsigned long long crop_seed = A->seed * 7919 + (unsigned long long)(e * nb + b);
    const unsigned long long noise_seed = A->seed * 104729 + (unsigned long long)(e * nb + b);
    if (mb < batch) {
      st = micro_step(R->m, R->ds, R->perm + b * batch, batch, mb, A->crop, crop_seed, noise_seed,
                      R->x, R->labels, R->slots, R->stats, &loss, &corr);
    } else {
      ex_check(ctx,
               nsde_dataset_batch(R->ds, R->perm + b * batch, batch, A->crop, crop_seed, R->x,
                                  R->labels),
               "batch");
      st = nsde_model_loss_grad(R->m, R->x, R->labels, 1, noise_seed, NULL, &loss, &corr);
    }
    if (st != NSDE_OK && st != NSDE_ERR_NONFINITE)
      ex_check(ctx, st, "training step");
    if (st == NSDE_ERR_NONFINITE || !isfinite(loss) || loss > R->explode) {
      fprintf(stderr,
              "\nnsde-train: the training diverged (%s) at epoch %d, batch %lld; stopping. "
              "%s holds the model after epoch %d%s\n",
              st != NSDE_OK ? nsde_context_last_error(ctx)
                            : "loss not finite or above 20 ln(classes)",
              e + 1, (long long)(b + 1), A->out, e,
              e == 0 ? " (no epoch finished: no model written)" : "");
      return 3;
    }
    if (A->cosine)
      *lr = nsde_lr_schedule_at(R->sched, e + (double)b / (double)nb);
    ex_check(ctx, nsde_sgd_step(R->opt, nsde_model_params(R->m), nsde_model_grads(R->m), *lr),
             "SGD");
    *loss_sum += loss * batch;
    *hits += corr;
    *seen += batch;
    if ((b + 1) % 10 == 0 || b + 1 == nb) {
      double rate = *seen / (ex_now() - t0);
      double left = ((double)(A->epochs - e) * R->n - *seen) / rate;
      printf("\repoch %d/%d batch %lld/%lld loss %.4f acc %.3f %.1f img/s ETA %.0f s   ", e + 1,
             A->epochs, (long long)(b + 1), (long long)nb, *loss_sum / *seen, (double)*hits / *seen,
             rate, left > 0 ? left : 0);
      fflush(stdout);
    }
  }
  printf("\n");
  return 0;
}

/* After epoch e (rank 0): validation, the state and model files, the
 * metrics row (1 if a file cannot be written). */
static int end_epoch(const struct train_args *A, struct train_run *R, int e, double lr, double t0,
                     double loss_sum, int64_t hits, int64_t seen)
{
  struct nsde_context *ctx = R->ctx;
  double val_acc = NAN, val_loss = NAN;

  if (A->val > 0) {
    validate(ctx, R->m, &R->ho, A->mb, R->classes, &val_acc, &val_loss);
    printf("epoch %d/%d validation (%ld images, noise off): acc %.4f loss %.4f\n", e + 1, A->epochs,
           A->val, val_acc, val_loss);
  }
  /* the state first: a crash between the two writes leaves a state one
   * epoch ahead of the model file, and --resume takes the state's parameters */
  if (save_state(ctx, A->out, e + 1, nsde_model_params(R->m), nsde_sgd_velocity(R->opt),
                 nsde_model_num_params(R->m)) != 0) {
    fprintf(stderr, "nsde-train: cannot write %s.state: %s\n", A->out,
            nsde_context_last_error(ctx));
    return 1;
  }
  ex_check(ctx, nsde_model_save(R->m, A->out), "saving the model");
  if (R->mf) {
    char vs[64] = ","; /* val_acc,val_loss, empty without --val: one fprintf per row */
    if (A->val > 0)
      snprintf(vs, sizeof(vs), "%.4f,%.6f", val_acc, val_loss);
    fprintf(R->mf, "%d,%g,%.6f,%.4f,%.2f,%.1f,%s\n", e + 1, lr, loss_sum / seen,
            (double)hits / seen, seen / (ex_now() - t0), ex_now() - R->t_start, vs);
    fflush(R->mf);
  }
  return 0;
}

/* Every epoch of this sitting (0, or the exit status). */
static int train(const struct train_args *A, struct train_run *R)
{
  printf("nsde-train: %s, %lld images %dx%dx%d, %s noise sigma %g, width %d, %lld parameters, "
         "%d epochs, batch %d, BLIS '%s'\n",
         A->data, (long long)R->n, R->c, R->h, R->w, A->noise, A->sigma, A->width,
         (long long)nsde_model_num_params(R->m), A->epochs, A->batch, nsde_blis_arch());
  if (A->val > 0)
    printf("nsde-train: the last %ld images held out for validation\n", A->val);
  R->explode = 20.0 * log((double)R->classes);
  R->t_start = ex_now();
  for (int e = R->first_epoch;
       e < A->epochs && (A->stop_after < 0 || e < R->first_epoch + A->stop_after); e++) {
    double lr = nsde_lr_schedule_at(R->sched, e), loss_sum = 0, t0 = ex_now();
    int64_t hits = 0, seen = 0;
    int rc;
    if (!A->cosine && e > 0 && lr != nsde_lr_schedule_at(R->sched, e - 1))
      ex_check(R->ctx, nsde_sgd_reset(R->opt), "sgd reset"); /* the paper resets momentum */
    if ((rc = train_epoch(A, R, e, t0, &lr, &loss_sum, &hits, &seen)) != 0)
      return rc;
    if (dist_rank() != 0)
      continue; /* one rank writes the files */
    if ((rc = end_epoch(A, R, e, lr, t0, loss_sum, hits, seen)) != 0)
      return rc;
  }
  printf("nsde-train: wrote %s (%.0f s)\n", A->out, ex_now() - R->t_start);
  if (dist_size() > 1 && comm_steps > 0)
    printf("nsde-train: %d ranks, micro-batches of %d: %.2f MB summed per step, %.1f ms per step "
           "in the collectives\n",
           dist_size(), A->mb, comm_bytes / comm_steps / 1e6, 1e3 * comm_s / comm_steps);
  return 0;
}

static void free_run(struct train_run *R)
{
  if (R->mf)
    fclose(R->mf);
  free(R->labels);
  free(R->perm);
  nsde_tensor_free(R->x);
  free(R->slots);
  free(R->stats);
  nsde_sgd_free(R->opt);
  nsde_lr_schedule_free(R->sched);
  nsde_model_free(R->m);
  nsde_dataset_free(R->ds);
  free(R->ho.x);
  free(R->ho.y);
  nsde_context_free(R->ctx);
}

int main(int argc, char **argv)
{
  struct train_args A;
  struct train_run R = {0};
  int rc;

  dist_init(&argc, &argv);
  if (dist_rank() != 0 && !freopen("/dev/null", "w", stdout)) /* one rank reports */
    dist_abort(1);
  if ((rc = parse_args(argc, argv, &A)) >= 0)
    return rc;
  if (dist_rank() == 0 && check_writable(A.out) != 0) {
    if (dist_size() > 1)
      dist_abort(1); /* the other ranks would wait for rank 0 */
    return 1;
  }
  if ((rc = load_data(&A, &R)) >= 0)
    return rc;
  rc = build_model(&A, &R);
  if (rc == 0)
    rc = open_run(&A, &R);
  if (rc == 0)
    rc = train(&A, &R);
  if (rc != 0 && rc != 3 && dist_size() > 1) {
    /* an error of this rank alone (rank 0 writes the files): the others
     * would wait for it in their next collective */
    fflush(stdout);
    dist_abort(rc);
  }
  free_run(&R);
  dist_finalize();
  return rc;
}
