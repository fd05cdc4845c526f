/*
 * vecops.h — vectorized float32 kernels for the non-GEMM ops of the fast CPU
 * provider (issue 9 item 3): LayerNorm / RMSNorm rows, Softmax (last axis
 * or any axis), and elementwise programs (kiln.FusedElementwise, the plain
 * unary activations and the broadcasting Add/Sub/Mul/Div), each with a
 * portable C version (vecops.c) and AVX2 / AVX-512 versions
 * (vecops_impl.h compiled by vecops_avx2.c / vecops_avx512.c), chosen at run
 * time by level (kl_isa; KILN_ISA caps it).
 *
 * The drivers split work over the pool (NULL: inline) when a call covers
 * more than KL_VEC_PAR_MIN elements, by rows or element ranges, and never
 * allocate.  Semantics follow src/cpu/ref: fused_transformer.c for the kiln
 * ops (norm statistics two-pass, biased variance), norm_softmax.c for
 * Softmax (a row holding NaN, +inf, or only -inf becomes all NaN),
 * elementwise.c for the activations.  Arithmetic is float32 (the reference
 * works in double and rounds per op): exp/tanh/erf/log are accurate to a few
 * ulp; add, subtract, multiply and divide are the correctly rounded float
 * operations.
 */
#ifndef KL_CPU_X86_VECOPS_H
#define KL_CPU_X86_VECOPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu/x86/isa.h"

struct kl_pool;

/* Elements below which a call runs on one thread. */
#define KL_VEC_PAR_MIN 32768

/* Step opcodes of an elementwise program.  Values below 28 are those of
 * kiln.FusedElementwise (kl_fe_op, src/ops/kiln_transformer.h); the others
 * are the activations of plain ONNX ops with no FusedElementwise opcode. */
typedef enum kl_vop {
    KL_VOP_ADD = 0,
    KL_VOP_SUB = 1,
    KL_VOP_RSUB = 2, /* o - v */
    KL_VOP_MUL = 3,
    KL_VOP_DIV = 4,
    KL_VOP_RDIV = 5, /* o / v */
    KL_VOP_POW = 6,
    KL_VOP_RPOW = 7, /* o ^ v */
    KL_VOP_RELU = 16,
    KL_VOP_SIGMOID = 17,
    KL_VOP_TANH = 18,
    KL_VOP_EXP = 19,
    KL_VOP_LOG = 20,
    KL_VOP_ERF = 21,
    KL_VOP_SQRT = 22,
    KL_VOP_NEG = 23,
    KL_VOP_ABS = 24,
    KL_VOP_RECIPROCAL = 25,
    KL_VOP_LEAKY_RELU = 26, /* a = alpha */
    KL_VOP_SOFTPLUS = 27,
    KL_VOP_GELU_ERF = 40,    /* x/2 (1 + erf(x/sqrt 2)) */
    KL_VOP_GELU_TANH = 41,   /* x/2 (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))) */
    KL_VOP_HARD_SWISH = 42,  /* x max(0, min(1, x/6 + 1/2)) */
    KL_VOP_HARD_SIGMOID = 43, /* max(0, min(1, a x + b)) */
    KL_VOP_SWISH = 44,       /* x sigmoid(a x) (Swish-24; a = 1 is SiLU) */
    KL_VOP_END = 45
} kl_vop;

/* True for the opcodes that take an operand (v = op(v, o)). */
static inline bool kl_vop_binary(int op) { return op >= 0 && op <= KL_VOP_RPOW; }
/* True for every opcode the kernels implement. */
static inline bool kl_vop_valid(int op) {
    return kl_vop_binary(op) || (op >= KL_VOP_RELU && op <= KL_VOP_SOFTPLUS) ||
           (op >= KL_VOP_GELU_ERF && op < KL_VOP_END);
}

/* Operand of a step: an immediate, the running value itself, or input k. */
#define KL_VARG_IMM (-1)
#define KL_VARG_SELF (-2)
#define KL_VPROG_MAX_STEPS 64
#define KL_VPROG_MAX_INPUTS 8

typedef struct kl_vstep {
    int op;      /* kl_vop */
    int arg;     /* KL_VARG_IMM, KL_VARG_SELF or an input index */
    float a, b;  /* immediate operand / activation parameters */
} kl_vstep;

/* An elementwise program over inputs broadcast (numpy rules) to the output
 * shape: v = input 0, then v = step_i(v) for each step; y = v. */
typedef struct kl_vprog {
    kl_vstep steps[KL_VPROG_MAX_STEPS];
    int n_steps;
    int n_in;
    const float *in[KL_VPROG_MAX_INPUTS];
    int in_rank[KL_VPROG_MAX_INPUTS];
    const int64_t *in_dims[KL_VPROG_MAX_INPUTS];
} kl_vprog;

/* Run program p into y (rank, dims: the broadcast shape of the inputs,
 * which the caller has checked; y holds its product of elements).  y may
 * be input 0's buffer when input 0 has y's shape (in place). */
void kl_vec_prog_run(kl_isa isa, struct kl_pool *pool, const kl_vprog *p, float *y, int rank, const int64_t *dims);

/* LayerNorm (rms false) or RMSNorm (rms true) of `rows` rows of n values:
 * y = (x - mean) / sqrt(var + eps) * w + b (mean 0 for RMS; w, b [n] or
 * NULL for 1 / 0).  Statistics in float, two passes. */
void kl_vec_norm(kl_isa isa, struct kl_pool *pool, bool rms, const float *x, float *y, size_t rows, size_t n,
                 const float *w, const float *b, float eps);

/* Softmax over the middle axis of x viewed as [outer, n, inner]. */
void kl_vec_softmax(kl_isa isa, struct kl_pool *pool, const float *x, float *y, size_t outer, size_t n,
                    size_t inner);

/* ---- per-level kernels (internal: vecops.c and the per-ISA files) ---- */

typedef struct kl_vec_kernels {
    /* y[i] = step(v[i], o[i * os]) for i < n (o NULL: the step's immediate;
     * os 0 or 1; y may be v). */
    void (*step)(const kl_vstep *s, float *y, const float *v, const float *o, size_t os, size_t n);
    /* rows [r0, r1) of a norm */
    void (*norm)(bool rms, const float *x, float *y, size_t r0, size_t r1, size_t n, const float *w, const float *b,
                 float eps);
    /* contiguous rows [r0, r1) of n values */
    void (*softmax_rows)(const float *x, float *y, size_t r0, size_t r1, size_t n);
    /* columns [i0, i1) of the slab x[o, :, :] (n x inner) */
    void (*softmax_cols)(const float *x, float *y, size_t n, size_t inner, size_t i0, size_t i1);
    /* y[p] = mean of the n values of plane p (x + p*n), summed in double */
    void (*plane_mean)(const float *x, size_t planes, size_t n, float *y);
    /* y[m] = act(bias[m] + sum_k w[m*K + k] x[k] + z[m]), m < M (bias, z
     * may be NULL; w and bias need not be 4-byte aligned); the activation
     * is kl_act {act_kind (a kl_act_kind), alpha, beta} of vecmath.h */
    void (*matvec)(const float *w, size_t M, size_t K, const float *x, const float *bias, const float *z, float *y,
                   int act_kind, float alpha, float beta);
    /* max pooling's two passes: t[i] = max(r[i], t[i]) for i < n, a NaN in
     * r skipped (t holds none); y[o] = max of t[o*s + k] for k < kw, o < n
     * (t NaN-free, readable up to (n-1)*s + kw) */
    void (*max_into)(float *t, const float *r, size_t n);
    void (*max_cols)(const float *t, size_t s, size_t kw, size_t n, float *y);
    /* t[i] = max over the nr >= 1 rows r[k][i] (and -inf: NaN skipped), i < n:
     * max_into's folding of a window's rows in one pass */
    void (*max_rows)(float *t, const float *const *r, size_t nr, size_t n);
} kl_vec_kernels;

const kl_vec_kernels *kl_vec_kernels_get(kl_isa isa);

#if defined(__x86_64__) || defined(_M_X64)
extern const kl_vec_kernels kl_vec_kernels_avx2;
extern const kl_vec_kernels kl_vec_kernels_avx512;
#endif

#endif
