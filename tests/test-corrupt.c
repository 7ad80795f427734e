/* The corruption families of nsde-eval (apps/corrupt*.c) against what each
 * must do whatever its random draws: severity 0 is the identity; every
 * family keeps images in [0, 1] and is a function of the stream (the same
 * seed, the same image); motion blur moves a point's mass along one line
 * without losing any and leaves a constant image as it is; the elastic
 * transform leaves a constant image as it is and moves a ramp's values by
 * about the jitter it draws; snow only brightens a black image; spatter's
 * Canny edges trace a square's outline and nothing of a flat image, its
 * water only adds pale turquoise and its mud replaces at least 80% of a
 * pixel by mud brown.
 * SPDX-License-Identifier: MIT */
#include "testutil.h"

#include "corrupt.h"
#include "corrupt-private.h"

#define H 32
#define W 32

static void fill(float *im, int C, float v)
{
  for (int i = 0; i < C * H * W; i++)
    im[i] = v;
}

START_TEST(identity_range_determinism)
{
  float a[3 * H * W], b[3 * H * W], x[3 * H * W];
  for (int i = 0; i < 3 * H * W; i++)
    x[i] = (float)((i * 37 % 101) / 100.0);
  for (int f = 0; f < CORR_N; f++) {
    if (!corr_available(f, 3))
      continue;
    memcpy(a, x, sizeof(a));
    corr_seed(7, 0, f);
    ck_assert_int_eq(corrupt_image(a, 3, H, W, f, 0), 0);
    ck_assert_msg(!memcmp(a, x, sizeof(a)), "%s: severity 0 changed the image", corr_names[f]);
    for (int sev = 1; sev <= 5; sev++) {
      memcpy(a, x, sizeof(a));
      memcpy(b, x, sizeof(b));
      corr_seed(7, sev, f);
      ck_assert_int_eq(corrupt_image(a, 3, H, W, f, sev), 0);
      corr_seed(7, sev, f);
      ck_assert_int_eq(corrupt_image(b, 3, H, W, f, sev), 0);
      ck_assert_msg(!memcmp(a, b, sizeof(a)), "%s %d: not a function of the seed", corr_names[f],
                    sev);
      for (int i = 0; i < 3 * H * W; i++)
        ck_assert_msg(a[i] >= 0.0f && a[i] <= 1.0f, "%s %d: %g outside [0, 1]", corr_names[f], sev,
                      a[i]);
    }
  }
}
END_TEST

START_TEST(motion_blur_moves_mass)
{
  float im[H * W];
  for (int sev = 1; sev <= 5; sev++) {
    double sum = 0, peak = 0;
    int n_lit = 0;
    fill(im, 1, 0.0f);
    im[16 * W + 16] = 1.0f;
    corr_seed(3, sev, CORR_MOTION);
    ck_assert_int_eq(corrupt_image(im, 1, H, W, CORR_MOTION, sev), 0);
    for (int i = 0; i < H * W; i++) {
      sum += im[i];
      n_lit += im[i] > 0;
      peak = fmax(peak, im[i]);
    }
    ck_assert_msg(fabs(sum - 1.0) < 1e-5, "severity %d: mass %g", sev, sum);
    ck_assert_msg(n_lit >= 3 && im[16 * W + 16] == (float)peak, "severity %d: %d pixels lit", sev,
                  n_lit);
    fill(im, 1, 0.25f);
    ck_assert_int_eq(corrupt_image(im, 1, H, W, CORR_MOTION, sev), 0);
    for (int i = 0; i < H * W; i++)
      ck_assert_float_eq_tol(im[i], 0.25f, 1e-6f);
  }
}
END_TEST

START_TEST(elastic_keeps_constants_and_moves_little)
{
  float im[H * W], ramp[H * W];
  for (int sev = 1; sev <= 5; sev++) {
    double worst = 0;
    fill(im, 1, 0.5f);
    corr_seed(5, sev, CORR_ELASTIC);
    ck_assert_int_eq(corrupt_image(im, 1, H, W, CORR_ELASTIC, sev), 0);
    for (int i = 0; i < H * W; i++)
      ck_assert_float_eq_tol(im[i], 0.5f, 1e-6f);
    /* a horizontal ramp of 1/64 per pixel: away from the borders a pixel's
     * new value says how far it moved along x; the affine jitter is at most
     * 0.08 of the side and the displacement field is small */
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++)
        ramp[y * W + x] = im[y * W + x] = (float)(0.25 + x / 64.0);
    ck_assert_int_eq(corrupt_image(im, 1, H, W, CORR_ELASTIC, sev), 0);
    for (int y = 8; y < H - 8; y++)
      for (int x = 8; x < W - 8; x++)
        worst = fmax(worst, fabs(im[y * W + x] - ramp[y * W + x]) * 64.0);
    ck_assert_msg(worst > 0.01 && worst < 8.0, "severity %d: a pixel moved %g", sev, worst);
  }
}
END_TEST

START_TEST(snow_brightens)
{
  float im[3 * H * W];
  for (int sev = 1; sev <= 5; sev++) {
    double mean = 0;
    fill(im, 3, 0.0f);
    corr_seed(9, sev, CORR_SNOW);
    ck_assert_int_eq(corrupt_image(im, 3, H, W, CORR_SNOW, sev), 0);
    for (int i = 0; i < 3 * H * W; i++)
      mean += im[i];
    mean /= 3 * H * W;
    /* black whitens towards 0.5 with weight 1 - c6 (0.05 .. 0.2), plus flakes */
    ck_assert_msg(mean > 0.02 && mean < 0.9, "severity %d: mean %g", sev, mean);
  }
}
END_TEST

START_TEST(canny_traces_outlines)
{
  unsigned char u[H * W], e[H * W];
  int work[3 * H * W], n = 0;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      u[y * W + x] = (unsigned char)(y >= 8 && y < 24 && x >= 8 && x < 24 ? 200 : 0);
  corr_canny(u, H, W, 50, 150, e, work);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      /* chessboard distance to the square's outline, from either side */
      const int ex = x < 8 ? 8 - x : x > 23 ? x - 23 : 0, ey = y < 8 ? 8 - y : y > 23 ? y - 23 : 0;
      const int ix = x - 8 < 23 - x ? x - 8 : 23 - x, iy = y - 8 < 23 - y ? y - 8 : 23 - y;
      const int d = ex || ey ? (ex > ey ? ex : ey) : (ix < iy ? ix : iy) + 1;
      n += e[y * W + x];
      ck_assert_msg(!e[y * W + x] || d <= 1, "an edge at (%d, %d), %d from the outline", y, x, d);
    }
  for (int y = 10; y < 22; y++) { /* one pixel of each side of the square per row */
    int row = 0;
    for (int x = 0; x < W; x++)
      row += e[y * W + x];
    ck_assert_msg(row == 2, "row %d has %d edge pixels", y, row);
  }
  ck_assert_msg(n >= 4 * 14 && n <= 4 * 18, "%d edge pixels", n);
  /* hysteresis: a step strong above (4 x 60 > 150) and weak below (4 x 30,
   * between 50 and 150) is one edge; the weak step alone is none */
  for (int lower = 0; lower < 2; lower++) {
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++)
        u[y * W + x] = (unsigned char)(x < 16 ? 0 : y < 16 && !lower ? 60 : 30);
    corr_canny(u, H, W, 50, 150, e, work);
    for (int y = 2; y < H - 2; y++)
      ck_assert_msg(e[y * W + 15] + e[y * W + 16] == !lower, "%s: row %d", lower ? "weak" : "step",
                    y);
  }
  memset(u, 120, sizeof(u));
  corr_canny(u, H, W, 50, 150, e, work);
  for (int i = 0; i < H * W; i++)
    ck_assert_msg(!e[i], "an edge in a flat image at %d", i);
}
END_TEST

START_TEST(spatter_water_and_mud)
{
  static const double water[3] = {175 / 255.0, 238 / 255.0, 238 / 255.0};
  static const double mud[3] = {63 / 255.0, 42 / 255.0, 20 / 255.0};
  float im[3 * H * W], x[3 * H * W];
  for (int i = 0; i < 3 * H * W; i++)
    x[i] = (float)(0.1 + 0.2 * ((i * 13 % 17) / 17.0));
  for (int sev = 1; sev <= 5; sev++) {
    long changed = 0;
    for (int seed = 0; seed < 20; seed++) {
      memcpy(im, x, sizeof(im));
      corr_seed((uint64_t)seed, sev, CORR_SPATTER);
      ck_assert_int_eq(corrupt_image(im, 3, H, W, CORR_SPATTER, sev), 0);
      for (int i = 0; i < H * W; i++) {
        const double d0 = im[i] - x[i], d1 = im[H * W + i] - x[H * W + i];
        if (fabs(d0) + fabs(d1) + fabs(im[2 * H * W + i] - x[2 * H * W + i]) == 0)
          continue;
        changed++;
        for (int ch = 0; ch < 3 && sev <= 3; ch++)
          ck_assert_msg(im[ch * H * W + i] >= x[ch * H * W + i], "severity %d: water darkened",
                        sev);
        if (sev <= 3 && d0 > 1e-3) /* adds in the colour's proportions (nothing clips here) */
          ck_assert_msg(fabs(d1 / d0 - water[1] / water[0]) < 1e-3, "severity %d: ratio %g", sev,
                        d1 / d0);
        for (int ch = 0; ch < 3 && sev > 3; ch++) {
          const double a = im[ch * H * W + i], b = x[ch * H * W + i];
          ck_assert_msg(fabs(a - mud[ch]) <= 0.2 * fabs(b - mud[ch]) + 1e-6,
                        "severity %d: %g from %g is not mud", sev, a, b);
        }
      }
    }
    ck_assert_msg(changed > 0, "severity %d: no drop in 20 draws", sev);
  }
}
END_TEST

int main(void)
{
  Suite *s = suite_create("corrupt");
  TCase *tc = tcase_create("corrupt");
  tcase_add_test(tc, identity_range_determinism);
  tcase_add_test(tc, motion_blur_moves_mass);
  tcase_add_test(tc, elastic_keeps_constants_and_moves_little);
  tcase_add_test(tc, snow_brightens);
  tcase_add_test(tc, canny_traces_outlines);
  tcase_add_test(tc, spatter_water_and_mud);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
