/* The AVX-512 convolution kernels checked on any AVX2 CPU: their code,
 * compiled with 16-float vectors on pairs of AVX2 registers
 * (tests/emu512-*.c), must give the AVX2 kernels' bits for every entry point
 * (direct forward and weight gradient, Winograd F(2x2) and F(4x4) forward
 * and weight gradients), as lib/nn/conv-blocks.h says they do; the AVX2
 * kernels are checked against a naive convolution by test-nn. On a CPU
 * without AVX2 there is nothing to run.
 * SPDX-License-Identifier: MIT */
#include "testutil.h"

#include "nn/conv-direct.h"

static void fill(float *p, int64_t n, uint64_t seed)
{
  for (int64_t i = 0; i < n; i++) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    p[i] = (float)((double)(seed >> 11) / 9007199254740992.0 - 0.5);
  }
}

/* a fresh buffer of n floats from seed */
static float *rnd(int64_t n, uint64_t seed)
{
  float *p = malloc((size_t)n * sizeof(float));
  ck_assert_ptr_nonnull(p);
  fill(p, n, seed);
  return p;
}

static void same_bits(const float *a, const float *b, int64_t n, const char *what, int shape)
{
  for (int64_t i = 0; i < n; i++)
    ck_assert_msg(!memcmp(&a[i], &b[i], sizeof(float)),
                  "%s, shape %d, [%lld]: avx2 %.9g, avx512 %.9g", what, shape, (long long)i, a[i],
                  b[i]);
}

START_TEST(avx512_code_gives_avx2_bits)
{
  static const int shapes[][4] = {
      /* cin, h, w, cout */
      {16, 5, 7, 32},   {32, 3, 19, 16},  {16, 4, 11, 48},  {16, 2, 8, 80},   {32, 1, 1, 16},
      {32, 4, 6, 32},   {48, 6, 10, 64},  {64, 8, 8, 80},   {32, 12, 10, 48}, {64, 2, 30, 64},
      {128, 4, 6, 128}, {80, 2, 6, 64},   {96, 6, 4, 80},   {48, 4, 4, 128},  {32, 28, 28, 32},
      {64, 4, 12, 32},  {64, 8, 8, 64},   {16, 30, 30, 16}, {16, 8, 8, 16},   {16, 6, 10, 48},
      {32, 10, 14, 32}, {48, 18, 22, 64}, {64, 30, 30, 64}};
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
    return; /* neither set of kernels can run here */
  for (int k = 0; k < (int)(sizeof(shapes) / sizeof(shapes[0])); k++) {
    const int cin = shapes[k][0], h = shapes[k][1], w = shapes[k][2], cout = shapes[k][3];
    const int64_t npad = (int64_t)(h + 2) * (w + 2) * cin, nout = (int64_t)h * w * cout;
    const int64_t nu = 36 * (int64_t)cin * cout;
    float *pad = rnd(npad, 1 + k), *wt = rnd(nu, 2 + k), *bias = rnd(cout, 3 + k);
    float *tr = rnd(nout, 4 + k), *g = rnd(nout, 5 + k);
    float *a = rnd(nu > nout ? nu : nout, 6 + k), *b = malloc((size_t)(nu > nout ? nu : nout) * 4);
    ck_assert_ptr_nonnull(b);
    memcpy(b, a, (size_t)(nu > nout ? nu : nout) * 4);
    nsde__direct_fwd_avx2(pad, h, w, cin, cout, wt, bias, tr, 0.37f, a);
    nsde__direct_fwd_emu512(pad, h, w, cin, cout, wt, bias, tr, 0.37f, b);
    same_bits(a, b, nout, "direct forward", k);
    nsde__direct_wgrad_avx2(pad, h, w, cin, g, cout, a);
    nsde__direct_wgrad_emu512(pad, h, w, cin, g, cout, b);
    same_bits(a, b, 9 * (int64_t)cin * cout, "direct weight gradient", k);
    if (nsde__nn_wino_reg_supported(cin, cout, h, w)) {
      float *s = malloc((size_t)nsde__nn_wino_reg_scratch(h, w, cin, cout) * sizeof(float));
      float *u2 = malloc((size_t)nu * sizeof(float)), *u5 = malloc((size_t)nu * sizeof(float));
      const int m = nsde__nn_wino_reg_m(h, w), nx = (m + 2) * (m + 2);
      ck_assert_ptr_nonnull(s);
      ck_assert_ptr_nonnull(u2);
      ck_assert_ptr_nonnull(u5);
      /* the same filters in each kernel's layout: blocks of 16 and of 64 channels */
      for (int xi = 0; xi < nx; xi++)
        for (int ci = 0; ci < cin; ci++)
          for (int co = 0; co < cout; co++) {
            const float v = wt[((int64_t)xi * cin + ci) * cout + co];
            u2[nsde__nn_wino_reg_uidx(16, cin, cout, nx, xi, ci, co)] = v;
            u5[nsde__nn_wino_reg_uidx(64, cin, cout, nx, xi, ci, co)] = v;
          }
      nsde__nn_wino_reg_fwd_avx2(pad, h, w, cin, cout, u2, bias, tr, 0.37f, a, s);
      nsde__nn_wino_reg_fwd_emu512(pad, h, w, cin, cout, u5, bias, tr, 0.37f, b, s);
      same_bits(a, b, nout, m == 4 ? "F(4x4) forward" : "F(2x2) forward", k);
      nsde__nn_wino_reg_fwd_avx2(pad, h, w, cin, cout, u2, NULL, NULL, 0.0f, a, s);
      nsde__nn_wino_reg_fwd_emu512(pad, h, w, cin, cout, u5, NULL, NULL, 0.0f, b, s);
      same_bits(a, b, nout, "Winograd forward without bias", k);
      free(u2), free(u5);
      nsde__nn_wino_reg_wgrad_avx2(pad, h, w, cin, g, cout, a, s);
      nsde__nn_wino_reg_wgrad_emu512(pad, h, w, cin, g, cout, b, s);
      same_bits(a, b, 16 * (int64_t)cin * cout, "Winograd weight gradient", k);
      free(s);
      if (nsde__nn_wino4_wgrad_items(h, w)) { /* F(4x4)'s, over a group of items */
        const int n = nsde__nn_wino4_wgrad_items(h, w);
        const int64_t ns = nsde__nn_wino4_stage_size(h, w, cin, cout);
        float *s2 = malloc((size_t)ns * sizeof(float)), *s5 = malloc((size_t)ns * sizeof(float));
        ck_assert_ptr_nonnull(s2);
        ck_assert_ptr_nonnull(s5);
        for (int it = 0; it < n; it++) {
          nsde__nn_wino4_wgrad_add_avx2(pad, h, w, cin, g, cout, it, s2);
          nsde__nn_wino4_wgrad_add_emu512(pad, h, w, cin, g, cout, it, s5);
        }
        fill(a, nu, 7 + k);
        memcpy(b, a, (size_t)nu * sizeof(float));
        for (int add = 0; add < 2; add++) { /* stored, then added to that */
          nsde__nn_wino4_wgrad_sum_avx2(h, w, cin, cout, n, s2, a, add);
          nsde__nn_wino4_wgrad_sum_emu512(h, w, cin, cout, n, s5, b, add);
          same_bits(a, b, nu, "F(4x4) weight gradient", k);
        }
        free(s2), free(s5);
      }
    }
    free(pad), free(wt), free(bias), free(tr), free(g), free(a), free(b);
  }
}
END_TEST

/* The few-input-channel kernels (lib/nn/conv-few.c): the AVX-512 code, on
 * pairs of AVX2 registers and, on an AVX-512 CPU, natively, gives the AVX2
 * kernels' bits (forward, weight gradient, input gradient with its fixed
 * lane sum) on pixel blocks, tails, 1-3 input and 16-64 output channels. */
START_TEST(few_channel_kernels_same_bits)
{
  static const int shapes[][4] = {/* cin, h, w, cout */
                                  {3, 32, 32, 16}, {1, 5, 7, 32},  {2, 3, 19, 48},
                                  {3, 1, 1, 16},   {3, 4, 23, 64}, {1, 2, 17, 16}};
  const int native = __builtin_cpu_supports("avx512f") != 0;
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
    return;
  for (int k = 0; k < (int)(sizeof(shapes) / sizeof(shapes[0])); k++) {
    const int cin = shapes[k][0], h = shapes[k][1], w = shapes[k][2], cout = shapes[k][3];
    const int64_t npad = (int64_t)(h + 2) * (w + 2) * cout, nout = (int64_t)h * w * cout;
    const int64_t nw = 9 * (int64_t)cin * cout, nr = nout > nw ? nout : nw;
    float *pad = rnd(npad, 11 + k), *wf = rnd(nw, 12 + k), *bias = rnd(cout, 13 + k);
    float *g = rnd(nout, 14 + k), *r[3];
    for (int v = 0; v < 3; v++) { /* avx2, emu512, avx512 */
      r[v] = malloc((size_t)nr * sizeof(float));
      ck_assert_ptr_nonnull(r[v]);
    }
    nsde__few_fwd_avx2(pad, h, w, cin, cout, wf, bias, r[0]);
    nsde__few_fwd_emu512(pad, h, w, cin, cout, wf, bias, r[1]);
    if (native)
      nsde__few_fwd_avx512(pad, h, w, cin, cout, wf, bias, r[2]);
    for (int v = 1; v < 2 + native; v++)
      same_bits(r[0], r[v], nout, v == 1 ? "few forward (emulated)" : "few forward", k);
    for (int v = 0; v < 3; v++) /* the weight gradient adds into its accumulator */
      memset(r[v], 0, (size_t)nw * sizeof(float));
    nsde__few_wgrad_avx2(pad, h, w, cin, g, cout, r[0]);
    nsde__few_wgrad_emu512(pad, h, w, cin, g, cout, r[1]);
    if (native)
      nsde__few_wgrad_avx512(pad, h, w, cin, g, cout, r[2]);
    for (int v = 1; v < 2 + native; v++)
      same_bits(r[0], r[v], nw, "few weight gradient", k);
    nsde__few_dgrad_avx2(pad, h, w, cout, wf, cin, r[0]);
    nsde__few_dgrad_emu512(pad, h, w, cout, wf, cin, r[1]);
    if (native)
      nsde__few_dgrad_avx512(pad, h, w, cout, wf, cin, r[2]);
    for (int v = 1; v < 2 + native; v++)
      same_bits(r[0], r[v], (int64_t)h * w * cin, "few input gradient", k);
    free(pad), free(wf), free(bias), free(g), free(r[0]), free(r[1]), free(r[2]);
  }
}
END_TEST

/* The direct kernels with 2 x 2 taps (the 4x4 / stride 2 layers after a
 * space-to-depth, lib/nn/conv-s2.c): the AVX-512 code on pairs of AVX2
 * registers gives the AVX2 kernels' bits, forward with and without bias and
 * the weight gradient, 16-128 input and output channels, pixel tails. */
START_TEST(two_by_two_kernels_same_bits)
{
  static const int shapes[][4] = {/* cin, h, w, cout */
                                  {64, 16, 16, 32}, {128, 8, 8, 64}, {16, 5, 7, 80},
                                  {32, 3, 13, 16},  {64, 1, 1, 48},  {48, 9, 17, 128}};
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
    return;
  for (int k = 0; k < (int)(sizeof(shapes) / sizeof(shapes[0])); k++) {
    const int cin = shapes[k][0], h = shapes[k][1], w = shapes[k][2], cout = shapes[k][3];
    const int64_t nin = (int64_t)(h + 1) * (w + 1) * cin, nout = (int64_t)h * w * cout;
    const int64_t nw = 4 * (int64_t)cin * cout, nr = nout > nw ? nout : nw;
    float *in = rnd(nin, 21 + k), *wt = rnd(nw, 22 + k), *bias = rnd(cout, 23 + k);
    float *g = rnd(nout, 24 + k), *a = rnd(nr, 25 + k), *b = malloc((size_t)nr * sizeof(float));
    ck_assert_ptr_nonnull(b);
    for (int wb = 0; wb < 2; wb++) {
      nsde__direct2_fwd_avx2(in, h, w, cin, cout, wt, wb ? bias : NULL, NULL, 0.0f, a);
      nsde__direct2_fwd_emu512(in, h, w, cin, cout, wt, wb ? bias : NULL, NULL, 0.0f, b);
      same_bits(a, b, nout, wb ? "2x2 forward" : "2x2 forward without bias", k);
    }
    memcpy(b, a, (size_t)nr * sizeof(float)); /* the gradient adds to what is there */
    nsde__direct2_wgrad_avx2(in, h, w, cin, g, cout, a);
    nsde__direct2_wgrad_emu512(in, h, w, cin, g, cout, b);
    same_bits(a, b, nw, "2x2 weight gradient", k);
    free(in), free(wt), free(bias), free(g), free(a), free(b);
  }
}
END_TEST

int main(void)
{
  Suite *s = suite_create("kernels");
  TCase *tc = tcase_create("kernels");
  tcase_add_test(tc, avx512_code_gives_avx2_bits);
  tcase_add_test(tc, few_channel_kernels_same_bits);
  tcase_add_test(tc, two_by_two_kernels_same_bits);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
