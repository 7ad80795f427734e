/* Network internals for the models. Not installed. SPDX-License-Identifier: MIT */
#ifndef NSDE_NN_PRIVATE_H
#define NSDE_NN_PRIVATE_H

#include "nsde-private.h"

/* Forward on B contiguous items; returns the net's output activation. */
const float *nsde__net_forward_raw(struct nsde_net *net, int64_t B, const float *x, float t);
/* Backward after nsde__net_forward_raw on the same x with the same
 * parameters (the weights packed by that pass are reused); dx may be NULL;
 * parameter gradients are added to gp. */
void nsde__net_backward_raw(struct nsde_net *net, int64_t B, const float *x, const float *dy,
                            float *dx, float *gp, float t);
/* Move the net's parameters (and gradients) into caller-owned slices. */
void nsde__net_bind(struct nsde_net *net, float *params, float *grads);
/* Items enter (in_nhwc) and leave (out_nhwc) channels-last instead of NCHW. */
void nsde__net_set_layout(struct nsde_net *net, bool in_nhwc, bool out_nhwc);
/* on: backward passes compute input gradients only (no convolution weight
 * or bias gradients) until switched off */
void nsde__net_set_no_wgrad(struct nsde_net *net, bool on);
/* on: forward passes record nothing on the tape (no backward will follow:
 * no fingerprints, and the outputs stay in the net's own, warm buffers)
 * until switched off; a backward then recomputes its forward */
void nsde__net_set_no_tape(struct nsde_net *net, bool on);
/* p pixels x c channels (channels-last) -> c planes of p pixels (NCHW). */
void nsde__to_nchw(const float *src, float *dst, int c, int64_t p);
int64_t nsde__net_out_size(const struct nsde_net *net);

#endif
