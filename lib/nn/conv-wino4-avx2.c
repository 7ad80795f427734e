/* The F(4x4, 3x3) transforms of conv-wino4.c compiled for AVX2 and FMA (conv-blocks.h).
 * SPDX-License-Identifier: MIT */
#define NSDE_ISA_AVX2 1
#include "conv-wino4.c"
