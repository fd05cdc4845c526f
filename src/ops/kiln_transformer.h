/*
 * kiln_transformer.h — the transformer-side operators of the "kiln" domain
 * (opset 1), made by src/passes/fuse_{matmul,norm,attention,elementwise}.c.
 * Schemas and shape inference: src/ops/kiln_transformer.c; reference
 * kernels (float32): src/cpu/ref/fused_transformer.c.
 *
 *   kiln.FusedMatMul(A, B, bias?) -> Y
 *       Y = act(alpha * MatMul(A, B) + bias).  MatMul is numpy's (batch
 *       dims broadcast, 1-D operands promoted); bias holds N = Y's last dim
 *       values, shaped [N] or [1,...,1,N] of rank <= Y's.  Attributes:
 *       alpha (FLOAT, 1), activation (INT kl_act, 0), act_alpha, act_beta.
 *
 *   kiln.LayerNorm(X, scale?, bias?) -> Y       attrs axis (INT, -1), epsilon (FLOAT, 1e-5)
 *   kiln.RMSNorm(X, scale?) -> Y                attrs axis (INT, -1), epsilon (FLOAT, 1e-5)
 *       Each row X[i, axis:] (flattened) normalized by its mean and biased
 *       variance (LayerNorm: (x - mean) / sqrt(var + eps)) or by its root
 *       mean square (RMSNorm: x / sqrt(mean(x^2) + eps)), then * scale
 *       (+ bias); scale and bias broadcast to X.shape[axis:].  A left-out
 *       scale is 1, a left-out bias 0.
 *
 *   kiln.Attention(Q, K, V, mask?) -> Y
 *       Multi-head scaled dot-product attention on projected, head-packed
 *       tensors: Q [B, Sq, H*D], K [B, Sk, H*D], V [B, Sk, H*Dv] (head h
 *       occupies columns h*D..h*D+D-1), or [S, B, H*D] each when
 *       seq_first = 1 (torch.nn.MultiheadAttention's internal layout).
 *       For every batch b and head h:
 *         P = softmax_row(scale * Q_bh K_bh^T + mask_bh)   [Sq, Sk]
 *         Y_bh = P V_bh                                     [Sq, Dv]
 *       Y is [B, Sq, H*Dv] ([Sq, B, H*Dv] when seq_first), heads packed
 *       like the inputs, so a fast kernel reads Q/K/V with strides and the
 *       output projection reads Y as it is.  mask (optional, float) is
 *       added to the scaled scores and broadcasts (numpy) to [B, H, Sq, Sk].
 *       Attributes: num_heads (INT, required), scale (FLOAT, default
 *       1/sqrt(D)), seq_first (INT, 0).  The Q/K/V projections stay outside
 *       (kiln.FusedMatMul nodes, packed or not).
 *
 *   kiln.FusedElementwise(X0, X1, ...) -> Y
 *       A chain of float elementwise ops as a program: Y = broadcast shape
 *       of all inputs; per element, v = X0, then for each step i,
 *       v = op_i(v, operand_i) with op_i = ops[i] (kl_fe_op) and operand_i
 *       = input args[i] (broadcast), imms[i] when args[i] == KL_FE_ARG_IMM,
 *       or v itself when args[i] == KL_FE_ARG_SELF (unary ops: args[i] is
 *       KL_FE_ARG_IMM and imms[i] their parameter, 0 when they have none).
 *       Each step is computed in double and rounded to the element type, as
 *       the separate ops would be.  Attributes ops, args (INTS), imms (FLOATS),
 *       all of the same length >= 1.
 */
#ifndef KL_OPS_KILN_TRANSFORMER_H
#define KL_OPS_KILN_TRANSFORMER_H

#include "ops/kiln.h"

/* Step opcodes of kiln.FusedElementwise ("R" forms: the operand comes first,
 * e.g. KL_FE_RSUB is operand - v). */
typedef enum kl_fe_op {
    KL_FE_ADD = 0,
    KL_FE_SUB = 1,
    KL_FE_RSUB = 2,
    KL_FE_MUL = 3,
    KL_FE_DIV = 4,
    KL_FE_RDIV = 5,
    KL_FE_POW = 6,
    KL_FE_RPOW = 7,
    KL_FE_BINARY_END = 8, /* opcodes below this take an operand */
    KL_FE_RELU = 16,
    KL_FE_SIGMOID = 17,
    KL_FE_TANH = 18,
    KL_FE_EXP = 19,
    KL_FE_LOG = 20,
    KL_FE_ERF = 21,
    KL_FE_SQRT = 22,
    KL_FE_NEG = 23,
    KL_FE_ABS = 24,
    KL_FE_RECIPROCAL = 25,
    KL_FE_LEAKY_RELU = 26, /* imms[i] = alpha */
    KL_FE_SOFTPLUS = 27,
    KL_FE_OP_END = 28
} kl_fe_op;

#define KL_FE_ARG_IMM (-1)  /* operand is imms[i] */
#define KL_FE_ARG_SELF (-2) /* operand is the running value itself (x*x) */
#define KL_FE_MAX_STEPS 64
#define KL_FE_MAX_INPUTS 8

/* True if op is a kl_fe_op that takes an operand / takes none. */
static inline bool kl_fe_is_binary(int64_t op) { return op >= 0 && op < KL_FE_BINARY_END; }
static inline bool kl_fe_is_unary(int64_t op) { return op >= KL_FE_RELU && op < KL_FE_OP_END; }

/* Schemas of kiln.FusedMatMul, LayerNorm, RMSNorm, Attention and
 * FusedElementwise, terminated by a row with name NULL. */
extern const kl_op_schema kl_ops_kiln_transformer[];

#endif /* KL_OPS_KILN_TRANSFORMER_H */
