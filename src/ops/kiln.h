/*
 * kiln.h (ops) — operators of the "kiln" domain, made by the optimizer's
 * passes (src/passes/): their schemas live in kiln.c, their reference
 * kernels in src/cpu/ref/fused.c.  Every graph the builder emits must run
 * on those kernels.
 *
 *   kiln.FusedConv(X, W, B?, Z?) -> Y
 *       Conv's attributes, plus activation (INT, kl_act), act_alpha,
 *       act_beta (FLOAT).  Y = act(conv(X, W) + B + Z), Z of Y's shape.
 *   kiln.FusedGemm(A, B, C?, Z?) -> Y
 *       Gemm's attributes plus the activation attributes.
 *       Y = act(alpha*A'*B' + beta*C + Z), Z of Y's shape.
 *   kiln.FusedConvDw(X, W1, B1, W2, B2) -> Y
 *       A 1x1 convolution (W1 [M, C, 1, 1], stride 1, no pads) and the
 *       depthwise convolution on its output (W2 [M, 1, KH, KW], group M,
 *       dilation 1) in one node: strides and pads (the depthwise layer's),
 *       activation/act_alpha/act_beta (the depthwise layer's),
 *       expand_activation/expand_act_alpha/expand_act_beta (the 1x1's).
 *       Y = act(dwconv(expand_act(conv1x1(X, W1) + B1), W2) + B2).  Made
 *       only for CPU builds (the CPU runs it without the expanded tensor).
 */
#ifndef KL_OPS_KILN_H
#define KL_OPS_KILN_H

#include "ops/ops.h"

#define KL_KILN_DOMAIN "kiln"

/* Activation applied by fused ops (attribute "activation").  act_alpha and
 * act_beta carry the parameters of the ONNX op the activation replaced. */
typedef enum kl_act {
    KL_ACT_NONE = 0,
    KL_ACT_RELU = 1,
    KL_ACT_CLIP = 2,         /* min(max(x, alpha), beta) */
    KL_ACT_LEAKY_RELU = 3,   /* x >= 0 ? x : alpha*x */
    KL_ACT_SIGMOID = 4,
    KL_ACT_SILU = 5,         /* x * sigmoid(x) */
    KL_ACT_HARD_SIGMOID = 6, /* max(0, min(1, alpha*x + beta)) */
    KL_ACT_HARD_SWISH = 7,   /* x * max(0, min(1, x/6 + 1/2)) */
    KL_ACT_GELU_ERF = 8,     /* 0.5*x*(1 + erf(x/sqrt(2))) */
    KL_ACT_GELU_TANH = 9,    /* 0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x^3))) */
    KL_ACT_MISH = 10,        /* x * tanh(softplus(x)) */
    KL_ACT_TANH = 11,
    KL_ACT_COUNT
} kl_act;

/* "relu", "clip", ... ("none" for KL_ACT_NONE, NULL when out of range). */
const char *kl_kiln_act_name(kl_act a);

/* Apply activation a in place to x[0..n) in float32, with the same formulas
 * as the ONNX ops' reference kernels (src/cpu/ref/).  Defined in
 * src/cpu/ref/fused.c (shared by every kernel of a fused op). */
void kl_act_apply_f32(kl_act a, float alpha, float beta, float *x, size_t n);

/* Schemas of the kiln domain (kiln.c), terminated by a row with name NULL. */
extern const kl_op_schema kl_ops_kiln[];

#endif /* KL_OPS_KILN_H */
