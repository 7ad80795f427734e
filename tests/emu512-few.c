/* The kernels of lib/nn/conv-few.c compiled as for AVX-512 on AVX2 registers
 * (NSDE_ISA_EMU512, lib/nn/conv-blocks.h), for tests/test-kernels.c.
 * SPDX-License-Identifier: MIT */
#define NSDE_ISA_EMU512 1
#include "nn/conv-few.c"
