/* The few-input-channel kernels of conv-few.c compiled for AVX2 and FMA (conv-blocks.h).
 * SPDX-License-Identifier: MIT */
#define NSDE_ISA_AVX2 1
#include "conv-few.c"
