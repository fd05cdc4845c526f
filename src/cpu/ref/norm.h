/*
 * norm.h — kernels of the norm family defined outside norm.c.
 */
#ifndef KL_REF_NORM_H
#define KL_REF_NORM_H

#include "backend/kernel.h"

/* Softmax, LogSoftmax, Hardmax (norm_softmax.c): opset < 13 coerces the
 * input to 2D at `axis` (default 1); opset 13+ works along one axis
 * (default -1). */
kiln_status kl_ref_softmax(kl_kctx *c);
kiln_status kl_ref_logsoftmax(kl_kctx *c);
kiln_status kl_ref_hardmax(kl_kctx *c);

#endif
