/*
 * CPU reference kernels of the kiln-domain fused ops (src/ops/kiln.h): the
 * reference Conv/Gemm kernels, then "+ Z" and the activation in float32,
 * with the same formulas as the ONNX activation kernels (elementwise.c), so
 * a fused graph gives the unfused graph's numbers.
 */
#include <math.h>
#include <string.h>

#include "cpu/ref/nn.h"
#include "ops/kiln.h"

/* Logistic function without overflow (elementwise.c's kl_sigmoid). */
static double act_sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

static double act_softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

static double act_clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

void kl_act_apply_f32(kl_act a, float alpha, float beta, float *x, size_t n) {
    size_t i;
    switch (a) {
    case KL_ACT_NONE:
    case KL_ACT_COUNT: break;
    case KL_ACT_RELU:
        for (i = 0; i < n; i++) x[i] = x[i] < 0 ? 0.0f : x[i];
        break;
    case KL_ACT_CLIP: /* Clip: min(max(x, lo), hi); NaN stays NaN */
        for (i = 0; i < n; i++) {
            float v = x[i];
            if (v < alpha) v = alpha;
            if (v > beta) v = beta;
            x[i] = v;
        }
        break;
    case KL_ACT_LEAKY_RELU:
        for (i = 0; i < n; i++) x[i] = x[i] < 0 ? (float)((double)alpha * x[i]) : x[i];
        break;
    case KL_ACT_SIGMOID:
        for (i = 0; i < n; i++) x[i] = (float)act_sigmoid(x[i]);
        break;
    case KL_ACT_SILU: /* Mul(x, Sigmoid(x)): the sigmoid is rounded to float first */
        for (i = 0; i < n; i++) x[i] = x[i] * (float)act_sigmoid(x[i]);
        break;
    case KL_ACT_HARD_SIGMOID:
        for (i = 0; i < n; i++) x[i] = (float)act_clamp01((double)alpha * x[i] + (double)beta);
        break;
    case KL_ACT_HARD_SWISH:
        for (i = 0; i < n; i++) {
            double v = x[i];
            x[i] = (float)(v * act_clamp01(v / 6.0 + 0.5));
        }
        break;
    case KL_ACT_GELU_ERF:
        for (i = 0; i < n; i++) {
            double v = x[i];
            x[i] = (float)(0.5 * v * (1.0 + erf(v * 0.7071067811865476)));
        }
        break;
    case KL_ACT_GELU_TANH:
        for (i = 0; i < n; i++) {
            double v = x[i];
            x[i] = (float)(0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))));
        }
        break;
    case KL_ACT_MISH:
        for (i = 0; i < n; i++) {
            double v = x[i];
            x[i] = (float)(v * tanh(act_softplus(v)));
        }
        break;
    case KL_ACT_TANH:
        for (i = 0; i < n; i++) x[i] = (float)tanh((double)x[i]);
        break;
    }
}

/* y += Z (input zi, when given) and y = act(y), in place on float32 y. */
static kiln_status fused_epilogue(kl_kctx *c, size_t zi, kl_rt *y) {
    int64_t act = kl_node_attr_int(c->node, "activation", 0);
    if (act < 0 || act >= KL_ACT_COUNT)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "activation %lld is not a kiln activation",
                            (long long)act);
    if (y->dtype != KILN_DTYPE_FLOAT)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "fused ops run on float only, output is %s",
                            kiln_dtype_name(y->dtype));
    float *out = y->data;
    if (zi < c->n_in && c->in[zi]) {
        const kl_rt *z = c->in[zi];
        char a[96], b[96];
        if (z->kind != KL_RT_TENSOR || z->dtype != KILN_DTYPE_FLOAT || z->rank != y->rank ||
            memcmp(z->dims, y->dims, (size_t)y->rank * sizeof *y->dims) != 0)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "Z is %s, output is %s",
                                kl_rt_describe(z, a, sizeof a), kl_rt_describe(y, b, sizeof b));
        const float *zv = z->data;
        for (int64_t i = 0; i < y->count; i++) out[i] += zv[i];
    }
    kl_act_apply_f32((kl_act)act, kl_node_attr_float(c->node, "act_alpha", 0.0f),
                     kl_node_attr_float(c->node, "act_beta", 0.0f), out, (size_t)y->count);
    return KILN_OK;
}

/* kiln.FusedConv: Conv(X, W, B), then + Z and the activation. */
static kiln_status fused_conv(kl_kctx *c) {
    kl_kctx sub = *c;
    sub.n_in = KL_MIN(c->n_in, 3);
    KL_TRY(kl_nn_conv(&sub));
    return fused_epilogue(c, 3, c->out[0]);
}

/* kiln.FusedGemm: Gemm(A, B, C) with opset-13 rules (C optional), then + Z
 * and the activation. */
static kiln_status fused_gemm(kl_kctx *c) {
    kl_node gemm = *c->node;
    gemm.opset = 13;
    kl_kctx sub = *c;
    sub.node = &gemm;
    sub.n_in = KL_MIN(c->n_in, 3);
    KL_TRY(kl_nn_gemm(&sub));
    return fused_epilogue(c, 3, c->out[0]);
}

const kl_kernel_def kl_ref_fused[] = {
    {KL_KILN_DOMAIN, "FusedConv", 1, 0, KL_T(FLOAT), fused_conv},
    {KL_KILN_DOMAIN, "FusedGemm", 1, 0, KL_T(FLOAT), fused_gemm},
    {NULL, NULL, 0, 0, 0, NULL},
};
