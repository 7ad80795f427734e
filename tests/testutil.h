/* Helpers shared by the Check suites. SPDX-License-Identifier: MIT */
#ifndef NSDE_TESTUTIL_H
#define NSDE_TESTUTIL_H

#include <check.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nsde/nsde.h>

/* Seed of the statistical tests: NSDE_TEST_SEED or a fixed default, printed
 * once so a failure can be replayed. */
static inline uint64_t test_seed(void)
{
  static int printed;
  const char *env = getenv("NSDE_TEST_SEED");
  uint64_t seed = env ? strtoull(env, NULL, 0) : 20191906u;
  if (!printed) {
    printf("# seed %" PRIu64 " (set NSDE_TEST_SEED to change)\n", seed);
    printed = 1;
  }
  return seed;
}

/* A call that must succeed (status-returning calls warn when dropped). */
#define TRY(call) ck_assert_int_eq((call), NSDE_OK)
#define NELEM(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

static inline struct nsde_context *test_ctx(void)
{
  struct nsde_context *ctx = NULL;
  ck_assert_int_eq(nsde_context_new(&ctx), NSDE_OK);
  ck_assert_ptr_nonnull(ctx);
  return ctx;
}

/* An SDE and the functions it borrows, freed together. */
struct problem {
  struct nsde_func *f, *g;
  struct nsde_sde *sde;
};

static inline void problem_free(struct problem *p)
{
  nsde_sde_free(p->sde);
  nsde_func_free(p->g);
  nsde_func_free(p->f);
}

/* A float64 tensor of shape (batch, dim) filled with v. */
static inline struct nsde_tensor *test_state64(struct nsde_context *c, int64_t batch, int64_t dim,
                                               double v)
{
  struct nsde_tensor *x;
  int64_t shape[2] = {batch, dim};
  TRY(nsde_tensor_new(c, NSDE_DTYPE_FLOAT64, 2, shape, &x));
  TRY(nsde_tensor_fill(x, v));
  return x;
}

/* Least-squares slope of log(y) against log(x). */
static inline double loglog_slope(const double *x, const double *y, int n)
{
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (int i = 0; i < n; i++) {
    double lx = log(x[i]), ly = log(y[i]);
    sx += lx;
    sy += ly;
    sxx += lx * lx;
    sxy += lx * ly;
  }
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

/* FNV-1a 64 from its published definition (standard basis
 * 14695981039346656037), written here independently of the library's. */
static inline uint64_t fnv1a_64(const unsigned char *p, size_t n, uint64_t basis)
{
  uint64_t h = basis;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

/* Run one suite; the process exit status tells meson. */
static inline int run_suite(Suite *s)
{
  SRunner *sr = srunner_create(s);
  int failed;
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
