/* The corruption families of nsde-eval (apps/corrupt*.c) against what each
 * must do whatever its random draws: severity 0 is the identity; every
 * family keeps images in [0, 1] and is a function of the stream (the same
 * seed, the same image); motion blur moves a point's mass along one line
 * without losing any and leaves a constant image as it is; the elastic
 * transform leaves a constant image as it is and moves a ramp's values by
 * about the jitter it draws; snow only brightens a black image.
 * SPDX-License-Identifier: MIT */
#include "testutil.h"

#include "corrupt.h"

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

int main(void)
{
  Suite *s = suite_create("corrupt");
  TCase *tc = tcase_create("corrupt");
  tcase_add_test(tc, identity_range_determinism);
  tcase_add_test(tc, motion_blur_moves_mass);
  tcase_add_test(tc, elastic_keeps_constants_and_moves_little);
  tcase_add_test(tc, snow_brightens);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
