/*
 * vecmath.c — activation names, the portable (generic level) definitions of
 * every activation, and the kl_vec_act dispatch.
 */
#include "cpu/x86/vecmath.h"

#include <math.h>

#include "cpu/x86/kernels.h"

const char *kl_act_name(kl_act_kind kind) {
    static const char *names[KL_ACT_COUNT] = {"none",         "relu",       "clip",     "leaky_relu",
                                              "sigmoid",      "silu",       "hard_sigmoid", "hard_swish",
                                              "gelu_erf",     "gelu_tanh",  "mish",     "tanh"};
    return (unsigned)kind < KL_ACT_COUNT ? names[kind] : "?";
}

float kl_act_scalar(kl_act act, float x) {
    switch (act.kind) {
    case KL_ACT_NONE: return x;
    case KL_ACT_RELU: return x > 0.0f ? x : (x != x ? x : 0.0f);
    case KL_ACT_CLIP: return x != x ? x : fminf(fmaxf(x, act.alpha), act.beta);
    case KL_ACT_LEAKY_RELU: return x < 0.0f ? x * act.alpha : x;
    case KL_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case KL_ACT_SILU: return x / (1.0f + expf(-x));
    case KL_ACT_HARD_SIGMOID: {
        float v = act.alpha * x + act.beta;
        return v != v ? v : fmaxf(0.0f, fminf(1.0f, v));
    }
    case KL_ACT_HARD_SWISH: return x * fmaxf(0.0f, fminf(1.0f, x / 6.0f + 0.5f));
    case KL_ACT_GELU_ERF: return 0.5f * x * erfcf(-x * 0.70710678118654752f);
    case KL_ACT_GELU_TANH: {
        float y = 0.79788456080286536f * (x + 0.044715f * x * x * x);
        return x / (1.0f + expf(-2.0f * y));
    }
    case KL_ACT_MISH: return x > 20.0f ? x : x * tanhf(log1pf(expf(x)));
    case KL_ACT_TANH: return tanhf(x);
    default: return x;
    }
}

void kl_x86_generic_vec_act(kl_act act, float *x, size_t n) {
    if (act.kind == KL_ACT_NONE) return;
    for (size_t i = 0; i < n; i++) x[i] = kl_act_scalar(act, x[i]);
}

void kl_vec_act_isa(kl_isa isa, kl_act act, float *x, size_t n) {
    if (act.kind == KL_ACT_NONE || n == 0) return;
    kl_x86_ops_get(isa)->vec_act(act, x, n);
}

void kl_vec_act(kl_act_kind kind, float alpha, float beta, float *x, size_t n) {
    kl_act act = {kind, alpha, beta};
    kl_vec_act_isa(KL_ISA_AUTO, act, x, n);
}
