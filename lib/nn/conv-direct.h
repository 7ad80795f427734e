/* Direct 3x3 / stride 1 / padding 1 convolution kernels (lib/nn/conv-direct.c).
 * Not installed. SPDX-License-Identifier: MIT */
#ifndef NSDE_CONV_DIRECT_H
#define NSDE_CONV_DIRECT_H

#include <stdbool.h>
#include <stdint.h>

/* The kernels this CPU runs: 2 AVX-512, 1 AVX2 with FMA, 0 none (other
 * CPUs, or NSDE_DIRECT=0; NSDE_DIRECT=avx2 keeps an AVX-512 CPU on the AVX2
 * kernels, which give the same bits). */
int nsde__direct_isa(void);

/* Whether this CPU and these channel counts take the direct kernels
 * (AVX-512 or AVX2 with FMA, both counts multiples of 16). */
bool nsde__direct_supported(int cin, int cout);

/* pad = the channels-last item in (h x w x c) with a zero border of one
 * pixel, blocked by 16 channels: pad[y][c / 16][x][c % 16] for y < h + 2,
 * x < w + 2. */
void nsde__direct_pad(const float *in, int h, int w, int c, float *pad);

/* Where weight (tap, ci, co) goes in the kernels' weight layout: blocks of
 * 64 output channels (the last one 16-48), in each [tap][ci][co]; tap < 9,
 * or k * k for k x k kernels (_k). */
int64_t nsde__direct_widx(int cin, int cout, int tap, int ci, int co);
int64_t nsde__direct_widx_k(int k, int cin, int cout, int tap, int ci, int co);

/* name's kernels for this CPU's instruction set (nsde__direct_isa: 2
 * AVX-512, else AVX2); nothing where neither can be compiled (no layer
 * takes the direct kernels there). */
#if defined(__x86_64__) && defined(__GNUC__)
#define NSDE__DIRECT_CALL(name, ...)                                                               \
  (nsde__direct_isa() == 2 ? name##_avx512(__VA_ARGS__) : name##_avx2(__VA_ARGS__))
#else
#define NSDE__DIRECT_CALL(name, ...) ((void)0)
#endif

/* out (h x w x cout, channels-last) = bias + t tr + the correlation of the
 * padded input (nsde__direct_pad) with the weights wt (nsde__direct_widx;
 * tap = 3 ky + kx). bias (cout) and tr (h x w x cout) may be NULL. */
void nsde__direct_fwd(const float *pad, int h, int w, int cin, int cout, const float *wt,
                      const float *bias, const float *tr, float t, float *out);

/* dw[tap][ci][co] += sum over pixels p of pad[p + tap][ci] g[p][co]: the
 * weight gradient for the output gradient g (h x w x cout, channels-last);
 * dw is plain [tap][ci][co]. */
void nsde__direct_wgrad(const float *pad, int h, int w, int cin, const float *g, int cout,
                        float *dw);

/* The same kernels for 2 x 2 taps without padding (the 4x4 / stride 2 /
 * padding 1 convolutions after a space-to-depth, lib/nn/conv-s2.c): out (h x
 * w x cout) = bias + the correlation of in (h + 1 x w + 1 pixels, blocked by
 * 16 channels like nsde__direct_pad's result) with wt
 * (nsde__direct_widx_k(2, ...)); bias may be NULL. dw[tap][ci][co] += the
 * weight gradient for g (h x w x cout). */
void nsde__direct2_fwd(const float *in, int h, int w, int cin, int cout, const float *wt,
                       const float *bias, float *out);
void nsde__direct2_wgrad(const float *in, int h, int w, int cin, const float *g, int cout,
                         float *dw);

/* Winograd F(2x2, 3x3) for the same layers with the products in registers
 * like the direct kernels, "wino_reg" (lib/nn/conv-wino.c; the other
 * Winograd, nsde__nn_wino_*, runs its products as GEMMs): whether a
 * layer of these channel counts and output size takes it (direct kernels
 * supported, both counts >= 32 - 16 with AVX2 - h and w even; NSDE_WINOGRAD=0
 * turns it off). */
bool nsde__nn_wino_reg_supported(int cin, int cout, int h, int w);

/* The output tile side of the forward kernel for h x w outputs: 4
 * (F(4x4, 3x3), conv-wino4.c) when each is a multiple of 4 or at least 10
 * (the last tiles partial), else 2 (F(2x2, 3x3)); NSDE_WINOGRAD=2 keeps
 * every layer on 2 (comparisons). The weight gradient is F(2x2, 3x3) but
 * for nsde__nn_wino4_wgrad_items. */
int nsde__nn_wino_reg_m(int h, int w);

/* Output channels per block of the packed filters for this CPU's kernels:
 * 64 for AVX-512 (a product block holds up to 64 channels), 16 for AVX2 (its
 * products take 16 at a time: with 64-wide blocks each streamed every fourth
 * cache line of the filters; 16-wide blocks trained the CIFAR-10 recipe
 * 1.04x and inferred 1.06-1.09x faster on Zen 3, same bits). */
int nsde__nn_wino_reg_block(void);

/* Where the transformed filter value (xi = (m + 2) row + column of U =
 * G g G^T, nx = (m + 2)^2 of them, ci, co) goes: blocks of blk output
 * channels (nsde__nn_wino_reg_block; the last one narrower), in each
 * [xi][ci][co]. */
int64_t nsde__nn_wino_reg_uidx(int blk, int cin, int cout, int nx, int xi, int ci, int co);

/* Floats of scratch nsde__nn_wino_reg_fwd needs. */
int64_t nsde__nn_wino_reg_scratch(int h, int w, int cin, int cout);

/* nsde__direct_fwd's result through Winograd: the same padded input, the
 * filters U in the nsde__nn_wino_reg_uidx layout, scratch of
 * nsde__nn_wino_reg_scratch floats. */
void nsde__nn_wino_reg_fwd(const float *pad, int h, int w, int cin, int cout, const float *U,
                           const float *bias, const float *tr, float t, float *out, float *scratch);

/* du[xi][ci][co] += the Winograd weight gradient for the output gradient g
 * (h x w x cout, channels-last) and the padded input: sum over tiles of
 * (B^T d B)[xi] (A dY A^T)[xi]. The weight gradient of tap (ky, kx) is
 * (G^T du G)[ky][kx] (nsde__nn_direct_flush applies it). */
void nsde__nn_wino_reg_wgrad(const float *pad, int h, int w, int cin, const float *g, int cout,
                             float *du, float *scratch);

/* The weight gradient as F(4x4, 3x3) where an item has few tiles (at 8x8
 * with F(2x2) an item's 16 tiles went through all 16 planes of du, so each
 * accumulator was read and written for every 16 products): items go in
 * groups of nsde__nn_wino4_wgrad_items (32 tiles, sides multiples of 4;
 * 0: the layer keeps F(2x2)), each staged by nsde__nn_wino4_wgrad_add as item k of the group
 * (the padded input and the output gradient, transformed, into a staging of
 * nsde__nn_wino4_stage_size floats), then nsde__nn_wino4_wgrad_sum adds the
 * products of the group's n items to du[xi][ci][co] (36 planes; add 0:
 * stores them there instead; the weight gradient of tap (ky, kx) is (G^T du
 * G)[ky][kx] with F(4x4)'s G). */
int nsde__nn_wino4_wgrad_items(int h, int w);
int64_t nsde__nn_wino4_stage_size(int h, int w, int cin, int cout);
void nsde__nn_wino4_wgrad_add(const float *pad, int h, int w, int cin, const float *g, int cout,
                              int k, float *stage);
void nsde__nn_wino4_wgrad_sum(int h, int w, int cin, int cout, int n, const float *stage, float *du,
                              int add);

/* 3x3 / stride 1 / padding 1 with 1-3 input channels and output channels a
 * multiple of 16 (lib/nn/conv-few.c). pad = the channels-last item (h x w x
 * c) with a zero border of one pixel, channels-last too. */
void nsde__few_pad(const float *in, int h, int w, int c, float *pad);

/* Each instruction set's kernels behind the entry points above and the
 * F(4x4, 3x3) transforms (conv-direct.c, conv-wino.c, conv-wino4.c and their
 * -avx2.c twins), and those of conv-few.c (and its twin): out = bias + the
 * correlation of pad (nsde__few_pad) with wf ([tap][ci][co]); dw[tap][ci][co]
 * = the weight gradient for g (stored, not added); dx (h x w x cin) = the
 * input gradient from gpad (g padded by nsde__direct_pad). */
#define NSDE__CONV_KERNELS(SUF)                                                                    \
  void nsde__direct_fwd_##SUF(const float *pad, int h, int w, int cin, int cout, const float *wt,  \
                              const float *bias, const float *tr, float t, float *out);            \
  void nsde__direct_wgrad_##SUF(const float *pad, int h, int w, int cin, const float *g, int cout, \
                                float *dw);                                                        \
  void nsde__nn_wino_reg_fwd_##SUF(const float *pad, int h, int w, int cin, int cout,              \
                                   const float *U, const float *bias, const float *tr, float t,    \
                                   float *out, float *scratch);                                    \
  void nsde__nn_wino_reg_wgrad_##SUF(const float *pad, int h, int w, int cin, const float *g,      \
                                     int cout, float *du, float *scratch);                         \
  void nsde__nn_wino4_wgrad_add_##SUF(const float *pad, int h, int w, int cin, const float *g,     \
                                      int cout, int k, float *stage);                              \
  void nsde__nn_wino4_wgrad_sum_##SUF(int h, int w, int cin, int cout, int n, const float *stage,  \
                                      float *du, int add);                                         \
  void nsde__wino4_input_##SUF(const float *pad, int h, int w, int cin, int ty0, int nr, float *V, \
                               int64_t P);                                                         \
  void nsde__wino4_grad_##SUF(const float *g, int w, int cout, int ty0, int nr, float *Gd,         \
                              int64_t P);                                                          \
  void nsde__wino4_output_##SUF(const float *M, int h, int w, int cout, int ty0, int t0, int pb,   \
                                const float *bias, const float *tr, float t, float *out);          \
  void nsde__direct2_fwd_##SUF(const float *pad, int h, int w, int cin, int cout, const float *wt, \
                               const float *bias, const float *tr, float t, float *out);           \
  void nsde__direct2_wgrad_##SUF(const float *pad, int h, int w, int cin, const float *g,          \
                                 int cout, float *dw);                                             \
  void nsde__few_fwd_##SUF(const float *pad, int h, int w, int cin, int cout, const float *wf,     \
                           const float *bias, float *out);                                         \
  void nsde__few_wgrad_##SUF(const float *pad, int h, int w, int cin, const float *g, int cout,    \
                             float *dw);                                                           \
  void nsde__few_dgrad_##SUF(const float *gpad, int h, int w, int cout, const float *wf, int cin,  \
                             float *dx);
NSDE__CONV_KERNELS(avx512)
NSDE__CONV_KERNELS(avx2)
NSDE__CONV_KERNELS(emu512) /* tests only: the AVX-512 code on AVX2 (conv-blocks.h) */
#undef NSDE__CONV_KERNELS

#endif
