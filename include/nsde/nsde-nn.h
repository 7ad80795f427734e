/**
 * @file
 * libnsde - networks, the paper's classifiers and their optimiser: includes
 * nsde-net.h, nsde-model.h and nsde-optim.h (the header of 0.1 and 0.2, kept
 * so that programs including it keep compiling).
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_NN_H
#define NSDE_NN_H

#include <nsde/nsde-net.h>
#include <nsde/nsde-model.h>
#include <nsde/nsde-optim.h>

#endif
