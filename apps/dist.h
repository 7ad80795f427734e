/*
 * Data-parallel training for nsde-train: the few collective operations it
 * needs, over MPI when built with it (nsde-train-mpi, -Dmpi), and trivial for
 * one process otherwise. The library itself knows nothing of MPI: a training
 * step's parameter gradient comes from nsde_model_loss_grad on fixed
 * micro-batches, and nsde_sgd_step applies the combined gradient
 * (doc/distributed.md).
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_APPS_DIST_H
#define NSDE_APPS_DIST_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef NSDE_HAVE_MPI
#include <mpi.h>
#include <signal.h>
#include <unistd.h>

static int dist_rank_, dist_size_ = 1;
static unsigned dist_timeout_ = 300; /* seconds a collective may wait; --rank-timeout */

/* A rank that hangs (stopped, deadlocked, cut off by the network) would keep
 * the others waiting in their next collective for ever: MPI has no timeout.
 * Each collective runs under alarm(); when it fires, this rank says why and
 * exits, and mpirun then stops every other rank (as for a killed one). Only
 * async-signal-safe calls here. */
static void dist_on_alarm_(int sig)
{
  static const char msg[] = "\nnsde-train-mpi: a collective got no answer within --rank-timeout "
                            "seconds: another rank hangs or cannot be reached; stopping (the files "
                            "of the last finished epoch stay, --resume continues)\n";
  (void)sig;
  if (write(2, msg, sizeof(msg) - 1) < 0)
    _exit(4);
  _exit(4);
}

static inline void dist_init(int *argc, char ***argv)
{
  if (MPI_Init(argc, argv) != MPI_SUCCESS) {
    fprintf(stderr, "nsde-train: MPI_Init failed\n");
    exit(1);
  }
  /* a failed collective aborts the whole job instead of hanging it */
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
  MPI_Comm_rank(MPI_COMM_WORLD, &dist_rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &dist_size_);
  {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = dist_on_alarm_;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
  }
}
static inline void dist_set_timeout(unsigned seconds)
{
  dist_timeout_ = seconds;
}
static inline void dist_finalize(void)
{
  MPI_Finalize();
}
/* Element-wise sum over the ranks, in place. Used only on buffers where each
 * element is non-zero on at most one rank, so the sum is exact whatever order
 * MPI adds in: the result's bits do not depend on the number of ranks. */
static inline void dist_sum_float(float *p, size_t n)
{
  for (size_t done = 0; done < n;) {
    int k = n - done > (1u << 30) ? (1 << 30) : (int)(n - done);
    alarm(dist_timeout_);
    MPI_Allreduce(MPI_IN_PLACE, p + done, k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    alarm(0);
    done += (size_t)k;
  }
}
static inline void dist_sum_double(double *p, size_t n)
{
  alarm(dist_timeout_);
  MPI_Allreduce(MPI_IN_PLACE, p, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  alarm(0);
}
/* Stop every rank: one rank's error ends the job, not only its process. */
static inline void dist_abort(int code)
{
  MPI_Abort(MPI_COMM_WORLD, code);
}
#else
static const int dist_rank_ = 0, dist_size_ = 1;
static inline void dist_init(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
}
static inline void dist_set_timeout(unsigned seconds)
{
  (void)seconds;
}
static inline void dist_finalize(void) {}
static inline void dist_sum_float(float *p, size_t n)
{
  (void)p;
  (void)n;
}
static inline void dist_sum_double(double *p, size_t n)
{
  (void)p;
  (void)n;
}
static inline void dist_abort(int code)
{
  exit(code);
}
#endif

static inline int dist_rank(void)
{
  return dist_rank_;
}
static inline int dist_size(void)
{
  return dist_size_;
}

#endif
