/*
 * CPU reference kernels, elementwise family: the unary operators (math,
 * activations, logic, IsNaN/IsInf) and the family's kernel table.  The
 * binary/variadic operators live in elementwise_binary.c, the conversions
 * in elementwise_cast.c, Identity/Dropout/SwiGLU in elementwise_misc.c.
 *
 * Floats are computed in double and rounded once into the element type;
 * float32 has typed loops (same results, no per-element dispatch).
 */
#include <math.h>
#include <string.h>

#include "cpu/ref/elementwise.h"

/* Attribute values of a unary operator. */
typedef struct kl_up {
    double a, b, g;
    int mode;
} kl_up;

typedef void (*kl_l32_fn)(const float *x, float *y, int64_t n, const kl_up *p);
typedef double (*kl_f64_fn)(double x, const kl_up *p);
/* Integer variant: x holds the value (uint64 bits when `u`). */
typedef int64_t (*kl_i64_fn)(int64_t x, bool u);

/* Apply a unary operator to input 0: floats through l32 (float32) or f
 * (others, rounded per Cast); integers through fi, or through f with the
 * result converted per Cast (truncation) when fi is NULL. */
static kiln_status kl_unary(kl_kctx *c, kl_l32_fn l32, kl_f64_fn f, kl_i64_fn fi, const kl_up *p) {
    kl_rt *x = NULL, *y = NULL;
    KL_TRY(kl_ew_input(c, 0, &x));
    bool is_int = kl_dtype_is_integer(x->dtype);
    if (!(kl_dtype_is_float(x->dtype) || (is_int && (fi || f))))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "%s does not apply to %s", c->node->op_type, kiln_dtype_name(x->dtype));
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, x->dims, &y));
    int64_t n = x->count;
    if (x->dtype == KILN_DTYPE_FLOAT) {
        l32(x->data, y->data, n, p);
    } else if (x->dtype == KILN_DTYPE_DOUBLE) {
        const double *in = x->data;
        double *out = y->data;
        for (int64_t i = 0; i < n; i++) out[i] = f(in[i], p);
    } else if (is_int && fi) {
        bool u = !kl_dtype_is_signed(x->dtype);
        for (int64_t i = 0; i < n; i++) kl_rt_set_i64(y, i, fi(kl_rt_get_i64(x, i), u));
    } else if (is_int) {
        for (int64_t i = 0; i < n; i++) {
            kl_num v = kl_ew_get(x, i);
            kl_ew_set_f64(y, i, f(v.kind == KL_NUM_U ? (double)(uint64_t)v.i : (double)v.i, p));
        }
    } else {
        for (int64_t i = 0; i < n; i++) kl_ew_set_f64(y, i, f(kl_rt_get_f64(x, i), p));
    }
    return KILN_OK;
}

/* Define name_f (double) and name_l (float32 loop) computing `expr` of x. */
#define KL_UOP(name, expr)                                                         \
    static double name##_f(double x, const kl_up *p) {                             \
        (void)p;                                                                   \
        return (expr);                                                             \
    }                                                                              \
    static void name##_l(const float *X, float *Y, int64_t n, const kl_up *p) {    \
        (void)p;                                                                   \
        for (int64_t i = 0; i < n; i++) {                                          \
            double x = X[i];                                                       \
            Y[i] = (float)(expr);                                                  \
        }                                                                          \
    }

/* A kernel running name_l/name_f with no attributes and integer fn fi. */
#define KL_URUN(name, fi)                                  \
    static kiln_status name##_run(kl_kctx *c) {            \
        kl_up p = {0, 0, 0, 0};                            \
        return kl_unary(c, name##_l, name##_f, fi, &p);    \
    }

/* Logistic function without overflow for large |x|. */
static double kl_sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

static double kl_softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

/* Clamp to [0, 1], NaN stays NaN. */
static double kl_clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

KL_UOP(kl_abs, fabs(x))
KL_UOP(kl_neg, -x)
KL_UOP(kl_sign, x > 0 ? 1.0 : x < 0 ? -1.0 : x)
KL_UOP(kl_relu, x < 0 ? 0.0 : x)
KL_UOP(kl_ceil, ceil(x))
KL_UOP(kl_floor, floor(x))
KL_UOP(kl_round, nearbyint(x))
KL_UOP(kl_recip, 1.0 / x)
KL_UOP(kl_sqrt, sqrt(x))
KL_UOP(kl_exp, exp(x))
KL_UOP(kl_log, log(x))
KL_UOP(kl_sin, sin(x))
KL_UOP(kl_cos, cos(x))
KL_UOP(kl_tan, tan(x))
KL_UOP(kl_asin, asin(x))
KL_UOP(kl_acos, acos(x))
KL_UOP(kl_atan, atan(x))
KL_UOP(kl_sinh, sinh(x))
KL_UOP(kl_cosh, cosh(x))
KL_UOP(kl_tanh, tanh(x))
KL_UOP(kl_asinh, asinh(x))
KL_UOP(kl_acosh, acosh(x))
KL_UOP(kl_atanh, atanh(x))
KL_UOP(kl_erf, erf(x))
KL_UOP(kl_sigm, kl_sigmoid(x))
KL_UOP(kl_softplus_op, kl_softplus(x))
KL_UOP(kl_softsign, x / (1.0 + fabs(x)))
KL_UOP(kl_mish, x * tanh(kl_softplus(x)))
KL_UOP(kl_hardswish, x * kl_clamp01(x / 6.0 + 0.5))
KL_UOP(kl_hardsigmoid, kl_clamp01(p->a * x + p->b))
KL_UOP(kl_leakyrelu, x < 0 ? p->a * x : x)
KL_UOP(kl_elu, x < 0 ? p->a * expm1(x) : x)
KL_UOP(kl_selu, x <= 0 ? p->g * (p->a * exp(x) - p->a) : p->g * x)
KL_UOP(kl_celu, x >= 0 ? x : p->a * expm1(x / p->a))
KL_UOP(kl_thrrelu, x > p->a ? x : 0.0)
KL_UOP(kl_shrink, x < -p->a ? x + p->b : x > p->a ? x - p->b : 0.0)
KL_UOP(kl_swish, x * kl_sigmoid(p->a * x))
KL_UOP(kl_gelu, p->mode ? 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
                        : 0.5 * x * (1.0 + erf(x * 0.7071067811865476)))

/* Integer variants; signed results wrap (abs/neg of the minimum stay it). */
static int64_t kl_abs_i(int64_t x, bool u) { return u || x >= 0 ? x : (int64_t)(0 - (uint64_t)x); }
static int64_t kl_neg_i(int64_t x, bool u) { return (void)u, (int64_t)(0 - (uint64_t)x); }
static int64_t kl_sign_i(int64_t x, bool u) { return u ? x != 0 : (x > 0) - (x < 0); }
static int64_t kl_relu_i(int64_t x, bool u) { return u || x > 0 ? x : 0; }
static int64_t kl_bnot_i(int64_t x, bool u) { return (void)u, ~x; }

KL_URUN(kl_abs, kl_abs_i)
KL_URUN(kl_neg, kl_neg_i)
KL_URUN(kl_sign, kl_sign_i)
KL_URUN(kl_relu, kl_relu_i)
KL_URUN(kl_ceil, NULL)
KL_URUN(kl_floor, NULL)
KL_URUN(kl_round, NULL)
KL_URUN(kl_recip, NULL)
KL_URUN(kl_sqrt, NULL)
KL_URUN(kl_exp, NULL)
KL_URUN(kl_log, NULL)
KL_URUN(kl_sin, NULL)
KL_URUN(kl_cos, NULL)
KL_URUN(kl_tan, NULL)
KL_URUN(kl_asin, NULL)
KL_URUN(kl_acos, NULL)
KL_URUN(kl_atan, NULL)
KL_URUN(kl_sinh, NULL)
KL_URUN(kl_cosh, NULL)
KL_URUN(kl_tanh, NULL)
KL_URUN(kl_asinh, NULL)
KL_URUN(kl_acosh, NULL)
KL_URUN(kl_atanh, NULL)
KL_URUN(kl_erf, NULL)
KL_URUN(kl_sigm, NULL)
KL_URUN(kl_softplus_op, NULL)
KL_URUN(kl_softsign, NULL)
KL_URUN(kl_mish, NULL)
KL_URUN(kl_hardswish, NULL)

/* Kernels whose floats come from attributes (float attributes, read as
 * the float32 value they hold). */
static kiln_status kl_hardsigmoid_run(kl_kctx *c) {
    kl_up p = {kl_node_attr_float(c->node, "alpha", 0.2f), kl_node_attr_float(c->node, "beta", 0.5f), 0, 0};
    return kl_unary(c, kl_hardsigmoid_l, kl_hardsigmoid_f, NULL, &p);
}

/* LeakyRelu: alpha * x below zero. */
static kiln_status kl_leakyrelu_run(kl_kctx *c) {
    kl_up p = {kl_node_attr_float(c->node, "alpha", 0.01f), 0, 0, 0};
    return kl_unary(c, kl_leakyrelu_l, kl_leakyrelu_f, NULL, &p);
}

/* Elu: alpha * (e^x - 1) below zero. */
static kiln_status kl_elu_run(kl_kctx *c) {
    kl_up p = {kl_node_attr_float(c->node, "alpha", 1.0f), 0, 0, 0};
    return kl_unary(c, kl_elu_l, kl_elu_f, NULL, &p);
}

/* Selu's defaults changed in opset 6 (1.6732/1.0507 before). */
static kiln_status kl_selu_run(kl_kctx *c) {
    bool old = c->node->opset < 6;
    kl_up p = {kl_node_attr_float(c->node, "alpha", old ? 1.6732f : 1.67326319217681884765625f), 0,
               kl_node_attr_float(c->node, "gamma", old ? 1.0507f : 1.05070102214813232421875f), 0};
    return kl_unary(c, kl_selu_l, kl_selu_f, NULL, &p);
}

/* Celu: max(0, x) + min(0, alpha * (e^(x/alpha) - 1)). */
static kiln_status kl_celu_run(kl_kctx *c) {
    kl_up p = {kl_node_attr_float(c->node, "alpha", 1.0f), 0, 0, 0};
    if (p.a == 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute alpha must not be 0");
    return kl_unary(c, kl_celu_l, kl_celu_f, NULL, &p);
}

/* ThresholdedRelu: x where x > alpha, else 0. */
static kiln_status kl_thrrelu_run(kl_kctx *c) {
    kl_up p = {kl_node_attr_float(c->node, "alpha", 1.0f), 0, 0, 0};
    return kl_unary(c, kl_thrrelu_l, kl_thrrelu_f, NULL, &p);
}

/* Shrink: x + bias below -lambd, x - bias above lambd, else 0 (any numeric type). */
static kiln_status kl_shrink_run(kl_kctx *c) {
    kl_up p = {kl_node_attr_float(c->node, "lambd", 0.5f), kl_node_attr_float(c->node, "bias", 0.0f), 0, 0};
    return kl_unary(c, kl_shrink_l, kl_shrink_f, NULL, &p);
}

/* Swish (opset 24): x * Sigmoid(alpha * x). */
static kiln_status kl_swish_run(kl_kctx *c) {
    kl_up p = {kl_node_attr_float(c->node, "alpha", 1.0f), 0, 0, 0};
    return kl_unary(c, kl_swish_l, kl_swish_f, NULL, &p);
}

/* Gelu (opset 20): approximate = "none" (erf) or "tanh". */
static kiln_status kl_gelu_run(kl_kctx *c) {
    const char *mode = kl_node_attr_string(c->node, "approximate", "none");
    kl_up p = {0, 0, 0, 0};
    if (!strcmp(mode, "tanh")) p.mode = 1;
    else if (strcmp(mode, "none") != 0)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute approximate '%s' must be none or tanh", mode);
    return kl_unary(c, kl_gelu_l, kl_gelu_f, NULL, &p);
}

/* BitwiseNot: integers only. */
static kiln_status kl_bitwise_not_run(kl_kctx *c) {
    kl_rt *x = NULL, *y = NULL;
    KL_TRY(kl_ew_input(c, 0, &x));
    if (!kl_dtype_is_integer(x->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "BitwiseNot does not apply to %s", kiln_dtype_name(x->dtype));
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, x->dims, &y));
    for (int64_t i = 0; i < x->count; i++) kl_rt_set_i64(y, i, kl_bnot_i(kl_rt_get_i64(x, i), false));
    return KILN_OK;
}

/* Not: bool only. */
static kiln_status kl_not_run(kl_kctx *c) {
    kl_rt *x = NULL, *y = NULL;
    KL_TRY(kl_ew_input(c, 0, &x));
    if (x->dtype != KILN_DTYPE_BOOL)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "Not does not apply to %s", kiln_dtype_name(x->dtype));
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_BOOL, x->rank, x->dims, &y));
    const uint8_t *in = x->data;
    uint8_t *out = y->data;
    for (int64_t i = 0; i < x->count; i++) out[i] = !in[i];
    return KILN_OK;
}

/* IsNaN / IsInf (detect_positive, detect_negative): bool of a float input. */
static kiln_status kl_isclass(kl_kctx *c, bool nan_test) {
    kl_rt *x = NULL, *y = NULL;
    KL_TRY(kl_ew_input(c, 0, &x));
    if (!kl_dtype_is_float(x->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "%s does not apply to %s", c->node->op_type, kiln_dtype_name(x->dtype));
    bool pos = kl_node_attr_int(c->node, "detect_positive", 1) != 0;
    bool neg = kl_node_attr_int(c->node, "detect_negative", 1) != 0;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_BOOL, x->rank, x->dims, &y));
    uint8_t *out = y->data;
    for (int64_t i = 0; i < x->count; i++) {
        double v = kl_rt_get_f64(x, i);
        out[i] = nan_test ? isnan(v) : isinf(v) && (v > 0 ? pos : neg);
    }
    return KILN_OK;
}

static kiln_status kl_isnan_run(kl_kctx *c) { return kl_isclass(c, true); }
static kiln_status kl_isinf_run(kl_kctx *c) { return kl_isclass(c, false); }

/* ---- the table ------------------------------------------------------------------------- */

#define KL_T_SINTS (KL_T(INT8) | KL_T(INT16) | KL_T(INT32) | KL_T(INT64))
#define KL_T_F8                                                                                   \
    (KL_T(FLOAT8E4M3FN) | KL_T(FLOAT8E4M3FNUZ) | KL_T(FLOAT8E5M2) | KL_T(FLOAT8E5M2FNUZ) |          \
     KL_T(FLOAT8E8M0))
#define KL_EW_F KL_T_FLOATS
#define KL_EW_N KL_T_NUMERIC

const kl_kernel_def kl_ref_elementwise[] = {
    /* unary math */
    {"", "Abs", 1, 0, KL_EW_N, kl_abs_run},
    {"", "Neg", 1, 0, KL_EW_F | KL_T_SINTS, kl_neg_run},
    {"", "Sign", 9, 0, KL_EW_N, kl_sign_run},
    {"", "Ceil", 1, 0, KL_EW_F, kl_ceil_run},
    {"", "Floor", 1, 0, KL_EW_F, kl_floor_run},
    {"", "Round", 11, 0, KL_EW_F, kl_round_run},
    {"", "Reciprocal", 1, 0, KL_EW_F, kl_recip_run},
    {"", "Sqrt", 1, 0, KL_EW_F, kl_sqrt_run},
    {"", "Exp", 1, 0, KL_EW_F, kl_exp_run},
    {"", "Log", 1, 0, KL_EW_F, kl_log_run},
    {"", "Sin", 7, 0, KL_EW_F, kl_sin_run},
    {"", "Cos", 7, 0, KL_EW_F, kl_cos_run},
    {"", "Tan", 7, 0, KL_EW_F, kl_tan_run},
    {"", "Asin", 7, 0, KL_EW_F, kl_asin_run},
    {"", "Acos", 7, 0, KL_EW_F, kl_acos_run},
    {"", "Atan", 7, 0, KL_EW_F, kl_atan_run},
    {"", "Sinh", 9, 0, KL_EW_F, kl_sinh_run},
    {"", "Cosh", 9, 0, KL_EW_F, kl_cosh_run},
    {"", "Tanh", 1, 0, KL_EW_F, kl_tanh_run},
    {"", "Asinh", 9, 0, KL_EW_F, kl_asinh_run},
    {"", "Acosh", 9, 0, KL_EW_F, kl_acosh_run},
    {"", "Atanh", 9, 0, KL_EW_F, kl_atanh_run},
    {"", "Erf", 9, 0, KL_EW_N, kl_erf_run},
    /* activations */
    {"", "Relu", 1, 0, KL_EW_F | KL_T_SINTS, kl_relu_run},
    {"", "Sigmoid", 1, 0, KL_EW_F, kl_sigm_run},
    {"", "Softplus", 1, 0, KL_EW_F, kl_softplus_op_run},
    {"", "Softsign", 1, 0, KL_EW_F, kl_softsign_run},
    {"", "Mish", 18, 0, KL_EW_F, kl_mish_run},
    {"", "HardSwish", 14, 0, KL_EW_F, kl_hardswish_run},
    {"", "HardSigmoid", 1, 0, KL_EW_F, kl_hardsigmoid_run},
    {"", "LeakyRelu", 1, 0, KL_EW_F, kl_leakyrelu_run},
    {"", "Elu", 1, 0, KL_EW_F, kl_elu_run},
    {"", "Selu", 1, 0, KL_EW_F, kl_selu_run},
    {"", "Celu", 12, 0, KL_EW_F, kl_celu_run},
    {"", "ThresholdedRelu", 10, 0, KL_EW_F, kl_thrrelu_run},
    {"", "Shrink", 9, 0, KL_EW_N, kl_shrink_run},
    {"", "Gelu", 20, 0, KL_EW_F, kl_gelu_run},
    {"", "Swish", 24, 0, KL_EW_F, kl_swish_run},
    {"", "PRelu", 1, 0, KL_EW_N, kl_ew_prelu},
    {"", "SwiGLU", 28, 0, KL_EW_F, kl_ew_swiglu},
    {"", "Clip", 1, 0, KL_EW_N, kl_ew_clip},
    /* arithmetic */
    {"", "Add", 1, 0, KL_EW_N, kl_ew_add},
    {"", "Sub", 1, 0, KL_EW_N, kl_ew_sub},
    {"", "Mul", 1, 0, KL_EW_N, kl_ew_mul},
    {"", "Div", 1, 0, KL_EW_N, kl_ew_div},
    {"", "Mod", 10, 0, KL_EW_N, kl_ew_mod},
    {"", "Pow", 1, 0, KL_EW_N, kl_ew_pow},
    {"", "Max", 1, 0, KL_EW_N, kl_ew_max},
    {"", "Min", 1, 0, KL_EW_N, kl_ew_min},
    {"", "Sum", 1, 0, KL_EW_F, kl_ew_sum},
    {"", "Mean", 1, 0, KL_EW_F, kl_ew_mean},
    /* comparisons and logic */
    {"", "Equal", 1, 0, KL_EW_N | KL_T(BOOL) | KL_T(STRING), kl_ew_equal},
    {"", "Greater", 1, 0, KL_EW_N, kl_ew_greater},
    {"", "GreaterOrEqual", 12, 0, KL_EW_N, kl_ew_greater_equal},
    {"", "Less", 1, 0, KL_EW_N, kl_ew_less},
    {"", "LessOrEqual", 12, 0, KL_EW_N, kl_ew_less_equal},
    {"", "And", 1, 0, KL_T(BOOL), kl_ew_and},
    {"", "Or", 1, 0, KL_T(BOOL), kl_ew_or},
    {"", "Xor", 1, 0, KL_T(BOOL), kl_ew_xor},
    {"", "Not", 1, 0, KL_T(BOOL), kl_not_run},
    {"", "IsNaN", 9, 0, KL_EW_F | KL_T_F8, kl_isnan_run},
    {"", "IsInf", 10, 0, KL_EW_F | KL_T_F8, kl_isinf_run},
    {"", "Where", 9, 0, KL_T(BOOL), kl_ew_where},
    /* bitwise */
    {"", "BitShift", 11, 0, KL_T_INTS & ~KL_T_SINTS, kl_ew_bitshift},
    {"", "BitwiseAnd", 18, 0, KL_T_INTS, kl_ew_bitwise_and},
    {"", "BitwiseOr", 18, 0, KL_T_INTS, kl_ew_bitwise_or},
    {"", "BitwiseXor", 18, 0, KL_T_INTS, kl_ew_bitwise_xor},
    {"", "BitwiseNot", 18, 0, KL_T_INTS, kl_bitwise_not_run},
    /* conversions and pass-through */
    {"", "Cast", 1, 0, 0, kl_ew_cast},
    {"", "CastLike", 15, 0, 0, kl_ew_castlike},
    {"", "BitCast", 26, 0, 0, kl_ew_bitcast},
    {"", "Identity", 1, 0, 0, kl_ew_identity},
    {"", "Dropout", 1, 0, KL_EW_F, kl_ew_dropout},
    {0},
};
