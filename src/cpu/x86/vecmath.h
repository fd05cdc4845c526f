/*
 * vecmath.h — activations and vector math of the fast CPU kernels: one enum
 * for every activation a GEMM/conv epilogue can apply, and kl_vec_act to
 * apply one in place over an array with the ISA's vector code.  exp, tanh,
 * erf and sigmoid are accurate to a few ulp (about 1e-6 relative or better;
 * sigmoid below -16 to what rounding x by half an ulp costs, up to 2e-6 at
 * -100; tests/ops checks each against a double-precision reference with
 * that conditioning term).
 */
#ifndef KL_CPU_X86_VECMATH_H
#define KL_CPU_X86_VECMATH_H

#include <stddef.h>

#include "cpu/x86/isa.h"

typedef enum kl_act_kind {
    KL_ACT_NONE = 0,
    KL_ACT_RELU,          /* max(0, x) */
    KL_ACT_CLIP,          /* min(max(x, alpha), beta) */
    KL_ACT_LEAKY_RELU,    /* x >= 0 ? x : alpha*x */
    KL_ACT_SIGMOID,       /* 1/(1+exp(-x)) */
    KL_ACT_SILU,          /* x*sigmoid(x) */
    KL_ACT_HARD_SIGMOID,  /* max(0, min(1, alpha*x+beta)) (ONNX: 0.2, 0.5) */
    KL_ACT_HARD_SWISH,    /* x*max(0, min(1, x/6+1/2)) */
    KL_ACT_GELU_ERF,      /* x/2*(1+erf(x/sqrt 2)) */
    KL_ACT_GELU_TANH,     /* x/2*(1+tanh(sqrt(2/pi)*(x+0.044715x^3))) */
    KL_ACT_MISH,          /* x*tanh(log(1+exp(x))) */
    KL_ACT_TANH,
    KL_ACT_COUNT
} kl_act_kind;

/* An activation with its parameters (CLIP: alpha=min, beta=max). */
typedef struct kl_act {
    kl_act_kind kind;
    float alpha, beta;
} kl_act;

/* Short name ("silu", "clip", ...) for case strings and tactic reports. */
const char *kl_act_name(kl_act_kind kind);

/* x[i] = act(x[i]) for i < n with the active level's vector code. */
void kl_vec_act(kl_act_kind kind, float alpha, float beta, float *x, size_t n);
/* The same with the code of level `isa` (KL_ISA_AUTO: the active level). */
void kl_vec_act_isa(kl_isa isa, kl_act act, float *x, size_t n);

/* One value, in portable C (the generic level's definition). */
float kl_act_scalar(kl_act act, float x);

#endif
