/* Brownian paths: generator, distribution, consistency, reproducibility.
 * SPDX-License-Identifier: MIT */
#include "testutil.h"

#include "philox.h"

static struct nsde_context *ctx;
static void setup(void)
{
  ctx = test_ctx();
}
static void teardown(void)
{
  nsde_context_free(ctx);
}

/* Known-answer vectors published with Random123 (kat_vectors). */
START_TEST(philox_known_answers)
{
  static const struct {
    uint32_t ctr[4];
    uint64_t key;
    uint32_t out[4];
  } kat[] = {
      {{0, 0, 0, 0}, 0, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       0xffffffffffffffffULL,
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       0x299f31d0a4093822ULL,
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
    uint32_t out[4];
    nsde__philox4x32_10(kat[i].ctr, kat[i].key, out);
    for (int j = 0; j < 4; j++)
      ck_assert_msg(out[j] == kat[i].out[j], "vector %zu word %d: %08x != %08x", i, j, out[j],
                    kat[i].out[j]);
  }
}
END_TEST

static struct nsde_brownian *make_bm(uint64_t seed, double t0, double t1, int64_t steps,
                                     int64_t batch, int64_t dim, int64_t offset)
{
  struct nsde_brownian_config c;
  struct nsde_brownian *bm = NULL;
  nsde_brownian_config_init(&c);
  c.seed = seed;
  c.t0 = t0;
  c.t1 = t1;
  c.n_steps = steps;
  c.batch = batch;
  c.dim = dim;
  c.batch_offset = offset;
  ck_assert_int_eq(nsde_brownian_new(ctx, &c, &bm), NSDE_OK);
  return bm;
}

static struct nsde_tensor *vec(enum nsde_dtype dt, int64_t n)
{
  struct nsde_tensor *t;
  ck_assert_int_eq(nsde_tensor_new(ctx, dt, 1, &n, &t), NSDE_OK);
  return t;
}

static double norm_cdf(double x)
{
  return 0.5 * erfc(-x / sqrt(2.0));
}

static int cmp_d(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Kolmogorov-Smirnov distance of z (sorted in place) from N(0,1). */
static double ks_normal(double *z, int64_t n)
{
  double d = 0;
  qsort(z, (size_t)n, sizeof(double), cmp_d);
  for (int64_t i = 0; i < n; i++) {
    double f = norm_cdf(z[i]);
    double a = fabs(f - (double)i / n), b = fabs((double)(i + 1) / n - f);
    d = fmax(d, fmax(a, b));
  }
  return d;
}

/* Mean, variance and normality of increments and Levy areas over a base step
 * and over an arbitrary sub-interval (which goes through the Brownian tree). */
START_TEST(increment_distribution)
{
  const int64_t n = 40000;
  struct nsde_brownian *bm = make_bm(test_seed(), 0.0, 2.0, 5, 2, n / 2, 0);
  struct nsde_tensor *w = vec(NSDE_DTYPE_FLOAT64, n), *h = vec(NSDE_DTYPE_FLOAT64, n);
  const double intervals[3][2] = {{0.4, 0.8}, {0.13, 0.37}, {0.5, 1.9}};

  for (int q = 0; q < 3; q++) {
    double s = intervals[q][0], t = intervals[q][1], len = t - s;
    double mw = 0, vw = 0, mh = 0, vh = 0, cwh = 0, ks;
    double *wd, *hd;
    ck_assert_int_eq(nsde_brownian_increment(bm, s, t, w, h), NSDE_OK);
    wd = nsde_tensor_data(w);
    hd = nsde_tensor_data(h);
    for (int64_t i = 0; i < n; i++) {
      mw += wd[i];
      vw += wd[i] * wd[i];
      mh += hd[i];
      vh += hd[i] * hd[i];
      cwh += wd[i] * hd[i];
    }
    mw /= n;
    vw /= n;
    mh /= n;
    vh /= n;
    cwh /= n;
    /* 5 standard errors: never flakes for a fixed seed, catches factor errors */
    ck_assert_msg(fabs(mw) < 5 * sqrt(len / n), "[%g,%g] mean W %g", s, t, mw);
    ck_assert_msg(fabs(vw / len - 1) < 5 * sqrt(2.0 / n), "[%g,%g] var W %g vs %g", s, t, vw, len);
    ck_assert_msg(fabs(mh) < 5 * sqrt(len / 12 / n), "[%g,%g] mean H %g", s, t, mh);
    ck_assert_msg(fabs(vh / (len / 12) - 1) < 5 * sqrt(2.0 / n), "[%g,%g] var H %g vs %g", s, t, vh,
                  len / 12);
    ck_assert_msg(fabs(cwh) / sqrt(vw * vh) < 5 / sqrt((double)n), "[%g,%g] corr(W,H) %g", s, t,
                  cwh / sqrt(vw * vh));
    for (int64_t i = 0; i < n; i++)
      wd[i] /= sqrt(len);
    ks = ks_normal(wd, n);
    ck_assert_msg(ks < 2.2 / sqrt((double)n), "[%g,%g] KS distance %g", s, t, ks);
  }
  nsde_tensor_free(w);
  nsde_tensor_free(h);
  nsde_brownian_free(bm);
}
END_TEST

/* Increments over disjoint pieces are uncorrelated (independent increments). */
START_TEST(independent_pieces)
{
  const int64_t n = 40000;
  struct nsde_brownian *bm = make_bm(test_seed() + 1, 0.0, 1.0, 3, 1, n, 0);
  struct nsde_tensor *a = vec(NSDE_DTYPE_FLOAT64, n), *b = vec(NSDE_DTYPE_FLOAT64, n);
  double c = 0, va = 0, vb = 0;
  ck_assert_int_eq(nsde_brownian_increment(bm, 0.1, 0.2, a, NULL), NSDE_OK);
  ck_assert_int_eq(nsde_brownian_increment(bm, 0.2, 0.45, b, NULL), NSDE_OK);
  for (int64_t i = 0; i < n; i++) {
    double x = ((double *)nsde_tensor_data(a))[i], y = ((double *)nsde_tensor_data(b))[i];
    c += x * y;
    va += x * x;
    vb += y * y;
  }
  ck_assert_msg(fabs(c / sqrt(va * vb)) < 5 / sqrt((double)n), "corr %g", c / sqrt(va * vb));
  nsde_tensor_free(a);
  nsde_tensor_free(b);
  nsde_brownian_free(bm);
}
END_TEST

/* W(a,b) = W(a,c) + W(c,b), and the Levy areas compose:
 * (b-a)(H_ab + W_ab/2) = (c-a)(H_ac + W_ac/2) + (b-c)(W_ac + H_cb + W_cb/2). */
START_TEST(additivity)
{
  const int64_t n = 64;
  struct nsde_brownian *bm = make_bm(test_seed() + 2, -1.0, 3.0, 7, 4, n / 4, 0);
  struct nsde_tensor *w[3], *h[3];
  const double pts[][3] = {{-1.0, 0.3, 3.0},
                           {0.1, 0.2, 0.25},
                           {-0.5, 1.0, 2.2},
                           {-1.0 + 4.0 / 7, -1.0 + 8.0 / 7, -1.0 + 12.0 / 7},
                           {0.7, 0.70001, 0.9}};
  for (int i = 0; i < 3; i++) {
    w[i] = vec(NSDE_DTYPE_FLOAT64, n);
    h[i] = vec(NSDE_DTYPE_FLOAT64, n);
  }
  for (size_t q = 0; q < sizeof(pts) / sizeof(pts[0]); q++) {
    double a = pts[q][0], c = pts[q][1], b = pts[q][2];
    ck_assert_int_eq(nsde_brownian_increment(bm, a, b, w[0], h[0]), NSDE_OK);
    ck_assert_int_eq(nsde_brownian_increment(bm, a, c, w[1], h[1]), NSDE_OK);
    ck_assert_int_eq(nsde_brownian_increment(bm, c, b, w[2], h[2]), NSDE_OK);
    for (int64_t i = 0; i < n; i++) {
      double wab = ((double *)nsde_tensor_data(w[0]))[i];
      double wac = ((double *)nsde_tensor_data(w[1]))[i];
      double wcb = ((double *)nsde_tensor_data(w[2]))[i];
      double hab = ((double *)nsde_tensor_data(h[0]))[i];
      double hac = ((double *)nsde_tensor_data(h[1]))[i];
      double hcb = ((double *)nsde_tensor_data(h[2]))[i];
      double lhs = (b - a) * (hab + wab / 2);
      double rhs = (c - a) * (hac + wac / 2) + (b - c) * (wac + hcb + wcb / 2);
      ck_assert_msg(fabs(wab - (wac + wcb)) < 1e-12, "case %zu elem %lld: %.17g vs %.17g", q,
                    (long long)i, wab, wac + wcb);
      ck_assert_msg(fabs(lhs - rhs) < 1e-11, "area case %zu elem %lld: %.17g vs %.17g", q,
                    (long long)i, lhs, rhs);
    }
  }
  for (int i = 0; i < 3; i++) {
    nsde_tensor_free(w[i]);
    nsde_tensor_free(h[i]);
  }
  nsde_brownian_free(bm);
}
END_TEST

/* A whole base step comes from the block generator (vectorised, with its
 * AVX-512 Philox), its halves from the root draw and the tree (the scalar
 * generator): the halves must add up to the whole step for every element,
 * over an odd length that leaves 16-lane and one-by-one remainders in the
 * 64-element blocks, batch rows shifted by batch_offset. */
START_TEST(block_matches_scalar)
{
  const int64_t batch = 3, dim = 1003, n = batch * dim;
  struct nsde_brownian *bm = make_bm(test_seed() + 3, 0.0, 1.0, 4, batch, dim, 5);
  struct nsde_tensor *w[3], *h[3];
  for (int i = 0; i < 3; i++) {
    w[i] = vec(NSDE_DTYPE_FLOAT64, n);
    h[i] = vec(NSDE_DTYPE_FLOAT64, n);
  }
  ck_assert_int_eq(nsde_brownian_increment(bm, 0.25, 0.5, w[0], h[0]), NSDE_OK);
  ck_assert_int_eq(nsde_brownian_increment(bm, 0.25, 0.375, w[1], h[1]), NSDE_OK);
  ck_assert_int_eq(nsde_brownian_increment(bm, 0.375, 0.5, w[2], h[2]), NSDE_OK);
  for (int64_t i = 0; i < n; i++) {
    const double *W0 = nsde_tensor_data(w[0]), *W1 = nsde_tensor_data(w[1]),
                 *W2 = nsde_tensor_data(w[2]), *H0 = nsde_tensor_data(h[0]),
                 *H1 = nsde_tensor_data(h[1]), *H2 = nsde_tensor_data(h[2]);
    const double lhs = 0.25 * (H0[i] + W0[i] / 2);
    const double rhs = 0.125 * (H1[i] + W1[i] / 2) + 0.125 * (W1[i] + H2[i] + W2[i] / 2);
    ck_assert_msg(fabs(W0[i] - (W1[i] + W2[i])) < 1e-12, "element %lld: %.17g vs %.17g",
                  (long long)i, W0[i], W1[i] + W2[i]);
    ck_assert_msg(fabs(lhs - rhs) < 1e-12, "area, element %lld: %.17g vs %.17g", (long long)i, lhs,
                  rhs);
  }
  for (int i = 0; i < 3; i++) {
    nsde_tensor_free(w[i]);
    nsde_tensor_free(h[i]);
  }
  nsde_brownian_free(bm);
}
END_TEST

static void fill_both(struct nsde_brownian *bm, double s, double t, struct nsde_tensor *w,
                      struct nsde_tensor *h)
{
  ck_assert_int_eq(nsde_brownian_increment(bm, s, t, w, h), NSDE_OK);
}

/* Bit-identical for 1 and 2 threads, for any batch split, and in float32
 * equal to the rounded float64 values. */
START_TEST(reproducible)
{
  const int64_t batch = 6, dim = 5000, n = batch * dim;
  struct nsde_brownian *whole = make_bm(77, 0.0, 1.0, 10, batch, dim, 0);
  struct nsde_brownian *lo = make_bm(77, 0.0, 1.0, 10, 2, dim, 0);
  struct nsde_brownian *hi = make_bm(77, 0.0, 1.0, 10, 4, dim, 2);
  struct nsde_tensor *w1 = vec(NSDE_DTYPE_FLOAT64, n), *w2 = vec(NSDE_DTYPE_FLOAT64, n);
  struct nsde_tensor *h1 = vec(NSDE_DTYPE_FLOAT64, n), *h2 = vec(NSDE_DTYPE_FLOAT64, n);
  struct nsde_tensor *wl = vec(NSDE_DTYPE_FLOAT64, 2 * dim), *wh = vec(NSDE_DTYPE_FLOAT64, 4 * dim);
  struct nsde_tensor *wf = vec(NSDE_DTYPE_FLOAT32, n);
  const double iv[2][2] = {{0.3, 0.4}, {0.31, 0.77}};

  for (int q = 0; q < 2; q++) {
    TRY(nsde_context_set_threads(ctx, 1));
    fill_both(whole, iv[q][0], iv[q][1], w1, h1);
    TRY(nsde_context_set_threads(ctx, 2));
    fill_both(whole, iv[q][0], iv[q][1], w2, h2);
    ck_assert(!memcmp(nsde_tensor_data(w1), nsde_tensor_data(w2), (size_t)n * 8));
    ck_assert(!memcmp(nsde_tensor_data(h1), nsde_tensor_data(h2), (size_t)n * 8));
    fill_both(lo, iv[q][0], iv[q][1], wl, NULL);
    fill_both(hi, iv[q][0], iv[q][1], wh, NULL);
    ck_assert(!memcmp(nsde_tensor_data(wl), nsde_tensor_data(w1), (size_t)(2 * dim) * 8));
    ck_assert(!memcmp(nsde_tensor_data(wh), (double *)nsde_tensor_data(w1) + 2 * dim,
                      (size_t)(4 * dim) * 8));
    fill_both(whole, iv[q][0], iv[q][1], wf, NULL);
    for (int64_t i = 0; i < n; i++)
      ck_assert(((float *)nsde_tensor_data(wf))[i] == (float)((double *)nsde_tensor_data(w1))[i]);
  }
  /* a different seed gives a different path */
  {
    struct nsde_brownian *other = make_bm(78, 0.0, 1.0, 10, batch, dim, 0);
    fill_both(other, 0.3, 0.4, w2, NULL);
    fill_both(whole, 0.3, 0.4, w1, NULL);
    ck_assert(memcmp(nsde_tensor_data(w1), nsde_tensor_data(w2), (size_t)n * 8) != 0);
    nsde_brownian_free(other);
  }
  nsde_tensor_free(w1);
  nsde_tensor_free(w2);
  nsde_tensor_free(h1);
  nsde_tensor_free(h2);
  nsde_tensor_free(wl);
  nsde_tensor_free(wh);
  nsde_tensor_free(wf);
  nsde_brownian_free(whole);
  nsde_brownian_free(lo);
  nsde_brownian_free(hi);
}
END_TEST

/* Stream version 1 is frozen: these recorded values must never change
 * without bumping NSDE_BROWNIAN_STREAM_VERSION. */
START_TEST(stream_frozen)
{
  struct nsde_brownian *bm = make_bm(12345, 0.0, 1.0, 4, 1, 3, 0);
  struct nsde_tensor *w = vec(NSDE_DTYPE_FLOAT64, 3);
#include "data/brownian-v1.inc"
  double got[3];
  ck_assert_int_eq(nsde_brownian_stream_version(), NSDE_BROWNIAN_STREAM_VERSION);
  ck_assert_int_eq(NSDE_BROWNIAN_STREAM_VERSION, 1);
  fill_both(bm, 0.25, 0.5, w, NULL);
  memcpy(got, nsde_tensor_data(w), sizeof(got));
  printf("# stream v1 W(0.25,0.5) = %.17g %.17g %.17g\n", got[0], got[1], got[2]);
  for (int i = 0; i < 3; i++)
    ck_assert_msg(got[i] == recorded_v1[i], /* bit-exact: the stream is frozen */
                  "element %d: %.17g vs recorded %.17g", i, got[i], recorded_v1[i]);
  nsde_tensor_free(w);
  nsde_brownian_free(bm);
}
END_TEST

/* The vectorised generator (AVX-512 or AVX2 Philox lanes, the Box-Muller
 * loop over them, the scalar remainder of each block of 64) against bits
 * recorded from the compiler-vectorised generic path before the AVX2
 * intrinsics existed: 3 x 1003 elements, so that full lanes, half blocks and
 * remainders all occur. FNV-1a of W(0.25, 0.5) then of its Levy area. */
START_TEST(vector_lanes_frozen)
{
  const int64_t n = 3 * 1003;
  struct nsde_brownian *bm = make_bm(12345, 0.0, 1.0, 4, 3, 1003, 0);
  struct nsde_tensor *w = vec(NSDE_DTYPE_FLOAT64, n), *h = vec(NSDE_DTYPE_FLOAT64, n);
  uint64_t hash;
  fill_both(bm, 0.25, 0.5, w, h);
  hash = fnv1a_64(nsde_tensor_data(w), 8 * (size_t)n, 14695981039346656037ULL);
  hash = fnv1a_64(nsde_tensor_data(h), 8 * (size_t)n, hash);
  printf("# 3 x 1003 stream hash %016llx\n", (unsigned long long)hash);
  ck_assert_msg(hash == 0xb216ed0b22620f89ULL, "stream bits changed: %016llx",
                (unsigned long long)hash);
  nsde_tensor_free(w);
  nsde_tensor_free(h);
  nsde_brownian_free(bm);
}
END_TEST

START_TEST(bad_input)
{
  struct nsde_brownian_config c;
  struct nsde_brownian *bm = (struct nsde_brownian *)0x1;
  struct nsde_tensor *w, *w3, *wf;

  nsde_brownian_config_init(&c);
  ck_assert_int_eq(nsde_brownian_new(ctx, NULL, &bm), NSDE_ERR_NULL);
  ck_assert_int_eq(nsde_brownian_new(ctx, &c, NULL), NSDE_ERR_NULL);
  c.t1 = c.t0;
  ck_assert_int_eq(nsde_brownian_new(ctx, &c, &bm), NSDE_ERR_INVALID);
  ck_assert_ptr_null(bm);
  c.t1 = NAN;
  ck_assert_int_eq(nsde_brownian_new(ctx, &c, &bm), NSDE_ERR_INVALID);
  nsde_brownian_config_init(&c);
  c.n_steps = 0;
  ck_assert_int_eq(nsde_brownian_new(ctx, &c, &bm), NSDE_ERR_INVALID);
  nsde_brownian_config_init(&c);
  c.dim = (int64_t)1 << 33;
  ck_assert_int_eq(nsde_brownian_new(ctx, &c, &bm), NSDE_ERR_INVALID);
  nsde_brownian_config_init(&c);
  c.batch_offset = -1;
  ck_assert_int_eq(nsde_brownian_new(ctx, &c, &bm), NSDE_ERR_INVALID);
  nsde_brownian_config_init(&c);
  c.size = 8;
  ck_assert_int_eq(nsde_brownian_new(ctx, &c, &bm), NSDE_ERR_INVALID);

  bm = make_bm(1, 0.0, 1.0, 2, 1, 2, 0);
  w = vec(NSDE_DTYPE_FLOAT64, 2);
  w3 = vec(NSDE_DTYPE_FLOAT64, 3);
  wf = vec(NSDE_DTYPE_FLOAT32, 2);
  ck_assert_int_eq(nsde_brownian_increment(bm, 0.5, 0.5, w, NULL), NSDE_ERR_INVALID);
  ck_assert_int_eq(nsde_brownian_increment(bm, 0.6, 0.5, w, NULL), NSDE_ERR_INVALID);
  ck_assert_int_eq(nsde_brownian_increment(bm, -0.1, 0.5, w, NULL), NSDE_ERR_INVALID);
  ck_assert_int_eq(nsde_brownian_increment(bm, 0.0, 1.5, w, NULL), NSDE_ERR_INVALID);
  ck_assert_int_eq(nsde_brownian_increment(bm, NAN, 0.5, w, NULL), NSDE_ERR_INVALID);
  ck_assert_int_eq(nsde_brownian_increment(bm, 0.0, 0.5, w3, NULL), NSDE_ERR_SHAPE);
  ck_assert_int_eq(nsde_brownian_increment(bm, 0.0, 0.5, w, wf), NSDE_ERR_DTYPE);
  ck_assert_int_eq(nsde_brownian_increment(bm, 0.0, 0.5, NULL, NULL), NSDE_ERR_NULL);
  ck_assert_int_eq(nsde_brownian_increment(NULL, 0.0, 0.5, w, NULL), NSDE_ERR_NULL);
  nsde_brownian_free(NULL);
  nsde_tensor_free(w);
  nsde_tensor_free(w3);
  nsde_tensor_free(wf);
  nsde_brownian_free(bm);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("brownian");
  TCase *tc = tcase_create("brownian");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, philox_known_answers);
  tcase_add_test(tc, increment_distribution);
  tcase_add_test(tc, independent_pieces);
  tcase_add_test(tc, additivity);
  tcase_add_test(tc, block_matches_scalar);
  tcase_add_test(tc, reproducible);
  tcase_add_test(tc, stream_frozen);
  tcase_add_test(tc, vector_lanes_frozen);
  tcase_add_test(tc, bad_input);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
