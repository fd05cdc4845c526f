/*
 * CPU reference kernels: linear quantization (QuantizeLinear,
 * DequantizeLinear, DynamicQuantizeLinear) and the quant family table;
 * float8 / float4 outputs go through the shared encoder (smallfloat.h).
 *
 * Granularity follows the shape of the scale: one element = per tensor, a
 * 1-D scale = per axis (`axis`), a scale of the input's rank = blocked
 * (`block_size` along `axis`, opset 21+).  The division x / scale is done
 * in the precision the spec names (opset 23+: the `precision` attribute or
 * the scale's type; before: numpy promotion of x and scale), then rounded
 * half to even and saturated.
 */
#include <math.h>
#include <string.h>

#include "backend/smallfloat.h"
#include "cpu/ref/quant.h"

/* ---- shared helpers -------------------------------------------------------------- */

double kl_quant_round_to(kiln_dtype t, double v) {
    switch (t) {
    case KILN_DTYPE_DOUBLE: return v;
    case KILN_DTYPE_FLOAT16: return kl_f16_to_f32(kl_f32_to_f16((float)v));
    case KILN_DTYPE_BFLOAT16: return kl_bf16_to_f32(kl_f32_to_bf16((float)v));
    default: return (double)(float)v;
    }
}

/* float8 / float4 code of x for QuantizeLinear: the shared encoder
 * (smallfloat.h), ties to even, e8m0 to the nearer power of two. */
uint8_t kl_quant_f32_to_small(kiln_dtype t, float x, bool saturate) {
    return (uint8_t)kl_sf_encode(t, x, saturate, KL_SF_ROUND_NEAREST);
}

bool kl_quant_int_range(kiln_dtype t, int64_t *lo, int64_t *hi) {
    switch (t) {
    case KILN_DTYPE_INT8: *lo = -128, *hi = 127; return true;
    case KILN_DTYPE_UINT8: *lo = 0, *hi = 255; return true;
    case KILN_DTYPE_INT16: *lo = -32768, *hi = 32767; return true;
    case KILN_DTYPE_UINT16: *lo = 0, *hi = 65535; return true;
    case KILN_DTYPE_INT4: *lo = -8, *hi = 7; return true;
    case KILN_DTYPE_UINT4: *lo = 0, *hi = 15; return true;
    case KILN_DTYPE_INT2: *lo = -2, *hi = 1; return true;
    case KILN_DTYPE_UINT2: *lo = 0, *hi = 3; return true;
    case KILN_DTYPE_INT32: *lo = INT32_MIN, *hi = INT32_MAX; return true;
    default: return false;
    }
}

kiln_status kl_quant_input(kl_kctx *c, size_t i, const char *what, const kl_rt **out) {
    if (i >= c->n_in || !c->in[i]) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "input '%s' is required", what);
    if (c->in[i]->kind != KL_RT_TENSOR) return kl_kctx_fail(c, KILN_ERR_TYPE, "input '%s' must be a tensor", what);
    *out = c->in[i];
    return KILN_OK;
}

/* Optional input i: NULL when omitted. */
static const kl_rt *q_opt(const kl_kctx *c, size_t i) {
    return i < c->n_in && c->in[i] && c->in[i]->kind == KL_RT_TENSOR ? c->in[i] : NULL;
}

/* float8 and float4 types. */
static bool q_is_small_float(kiln_dtype t) {
    switch (t) {
    case KILN_DTYPE_FLOAT8E4M3FN: case KILN_DTYPE_FLOAT8E4M3FNUZ: case KILN_DTYPE_FLOAT8E5M2:
    case KILN_DTYPE_FLOAT8E5M2FNUZ: case KILN_DTYPE_FLOAT4E2M1:
        return true;
    default:
        return false;
    }
}

/* float, float16, bfloat16, double. */
static bool q_is_float(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT || t == KILN_DTYPE_FLOAT16 || t == KILN_DTYPE_BFLOAT16 || t == KILN_DTYPE_DOUBLE;
}

/* Element i of t as double; float32 read directly. */
static inline double q_get(const kl_rt *t, int64_t i) {
    return t->dtype == KILN_DTYPE_FLOAT ? (double)((const float *)t->data)[i] : kl_rt_get_f64(t, i);
}

/* Store a float8 / float4 code at element i. */
static void q_store_code(kl_rt *y, int64_t i, uint8_t code) {
    uint8_t *d = y->data;
    if (y->dtype == KILN_DTYPE_FLOAT4E2M1) {
        int sh = 4 * (int)(i % 2);
        d[i / 2] = (uint8_t)((d[i / 2] & ~(15 << sh)) | ((code & 15) << sh));
    } else {
        d[i] = code;
    }
}

/* ---- granularity ----------------------------------------------------------------- */

/* x viewed as [outer, ax, inner]; the scale element of x element
 * (o, a, in) is 0 (per tensor), a (per axis) or (o*sax + a/blk)*inner + in
 * (blocked). */
typedef struct q_gran {
    int mode; /* 0 per tensor, 1 per axis, 2 blocked */
    int64_t outer, ax, inner, blk, sax;
} q_gran;

/* Granularity of scale (and zero point) against x; errors name the shapes. */
static kiln_status q_granularity(kl_kctx *c, const kl_rt *x, const kl_rt *scale, const kl_rt *zp, q_gran *g) {
    const kl_node *n = c->node;
    char a[128], b[128];
    if (zp && zp->count != scale->count && !kl_ref_same_shape(zp, scale))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "zero point %s must have the shape of the scale %s",
                            kl_rt_describe(zp, a, sizeof a), kl_rt_describe(scale, b, sizeof b));
    if (zp && scale->count > 1 && !kl_ref_same_shape(zp, scale))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "zero point %s must have the shape of the scale %s",
                            kl_rt_describe(zp, a, sizeof a), kl_rt_describe(scale, b, sizeof b));
    int64_t block = n->opset >= 21 ? kl_node_attr_int(n, "block_size", 0) : 0;
    if (block < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'block_size' must be >= 0, got %lld",
                                       (long long)block);
    memset(g, 0, sizeof *g);
    g->outer = 1;
    g->ax = 1;
    g->inner = x->count;
    if (scale->count == 1) return KILN_OK; /* one scale: per tensor, whatever block_size says */
    int axis;
    KL_TRY(kl_ref_axis(kl_node_attr_int(n, "axis", 1), x->rank, false, "attribute 'axis'", &axis));
    g->outer = 1;
    for (int d = 0; d < axis; d++) g->outer *= x->dims[d];
    g->ax = x->dims[axis];
    g->inner = 1;
    for (int d = axis + 1; d < x->rank; d++) g->inner *= x->dims[d];
    if (block == 0) {
        if (scale->rank != 1 || scale->count != g->ax)
            return kl_kctx_fail(c, KILN_ERR_SHAPE,
                                "scale %s must be a scalar or a 1-D tensor of %lld elements (axis %d of input %s)",
                                kl_rt_describe(scale, a, sizeof a), (long long)g->ax, axis,
                                kl_rt_describe(x, b, sizeof b));
        g->mode = 1;
        return KILN_OK;
    }
    bool ok = scale->rank == x->rank;
    for (int d = 0; ok && d < x->rank; d++)
        ok = d == axis ? scale->dims[d] == (x->dims[d] + block - 1) / block : scale->dims[d] == x->dims[d];
    if (!ok)
        return kl_kctx_fail(c, KILN_ERR_SHAPE,
                            "blocked quantization: scale %s does not fit input %s with block_size %lld on axis %d",
                            kl_rt_describe(scale, a, sizeof a), kl_rt_describe(x, b, sizeof b), (long long)block,
                            axis);
    g->mode = 2;
    g->blk = block;
    g->sax = scale->dims[axis];
    return KILN_OK;
}

/* Scale element of x element (o, a, in). */
static inline int64_t q_sidx(const q_gran *g, int64_t o, int64_t a, int64_t in) {
    return g->mode == 0 ? 0 : g->mode == 1 ? a : (o * g->sax + a / g->blk) * g->inner + in;
}

/* Values of t (n elements) as a new double array; NULL input gives zeros. */
static kiln_status q_values(const kl_rt *t, int64_t n, double **out) {
    double *v = kl_calloc((size_t)KL_MAX(n, 1), sizeof *v);
    if (!v) return kl_errorf(KILN_ERR_NO_MEMORY, "out of memory");
    if (t)
        for (int64_t i = 0; i < n; i++) v[i] = kl_rt_get_f64(t, i);
    *out = v;
    return KILN_OK;
}

/* ---- QuantizeLinear -------------------------------------------------------------- */

static bool q_output_type_ok(kiln_dtype t) {
    int64_t lo, hi;
    return (t != KILN_DTYPE_INT32 && kl_quant_int_range(t, &lo, &hi)) || q_is_small_float(t);
}

/* Precision of the division x / scale. */
static kiln_dtype q_div_precision(const kl_kctx *c, kiln_dtype xt, kiln_dtype st) {
    const kl_node *n = c->node;
    if (n->opset >= 23) {
        int64_t p = kl_node_attr_int(n, "precision", 0);
        if (p > 0 && p < KILN_DTYPE_COUNT && q_is_float((kiln_dtype)p)) return (kiln_dtype)p;
        return q_is_float(st) ? st : KILN_DTYPE_FLOAT;
    }
    if (xt == st && q_is_float(xt)) return xt;
    if (xt == KILN_DTYPE_DOUBLE || st == KILN_DTYPE_DOUBLE) return KILN_DTYPE_DOUBLE;
    return KILN_DTYPE_FLOAT;
}

/* y = saturate(round(x / scale) + zero_point) for every granularity. */
static kiln_status q_quantize_into(kl_kctx *c, const kl_rt *x, const kl_rt *scale, const kl_rt *zp, kl_rt *y,
                                   kiln_dtype prec, bool saturate) {
    q_gran g;
    KL_TRY(q_granularity(c, x, scale, zp, &g));
    double *sc = NULL, *zv = NULL;
    kiln_status s = q_values(scale, scale->count, &sc);
    if (s == KILN_OK) s = q_values(zp, scale->count, &zv);
    if (s != KILN_OK) {
        kl_free(sc);
        return s;
    }
    int64_t lo = 0, hi = 0;
    bool is_int = kl_quant_int_range(y->dtype, &lo, &hi);
    bool fast = x->dtype == KILN_DTYPE_FLOAT && prec == KILN_DTYPE_FLOAT &&
                (y->dtype == KILN_DTYPE_UINT8 || y->dtype == KILN_DTYPE_INT8);
    if (fast) { /* float -> 8-bit: the common QDQ case */
        const float *xd = x->data;
        for (int64_t o = 0, e = 0; o < g.outer; o++)
            for (int64_t a = 0; a < g.ax; a++)
                for (int64_t in = 0; in < g.inner; in++, e++) {
                    int64_t k = q_sidx(&g, o, a, in);
                    float r = nearbyintf((float)((double)xd[e] / sc[k]));
                    if (isnan(r)) r = 0.0f;
                    double v = (double)r + zv[k];
                    v = v < (double)lo ? (double)lo : v > (double)hi ? (double)hi : v;
                    if (y->dtype == KILN_DTYPE_UINT8)
                        ((uint8_t *)y->data)[e] = (uint8_t)v;
                    else
                        ((int8_t *)y->data)[e] = (int8_t)v;
                }
        kl_free(sc);
        kl_free(zv);
        return KILN_OK;
    }
    for (int64_t o = 0, e = 0; o < g.outer; o++)
        for (int64_t a = 0; a < g.ax; a++)
            for (int64_t in = 0; in < g.inner; in++, e++) {
                int64_t k = q_sidx(&g, o, a, in);
                double q = kl_quant_round_to(prec, q_get(x, e) / sc[k]);
                if (is_int) {
                    double r = nearbyint(q);
                    if (isnan(r)) r = 0.0;
                    r += zv[k];
                    int64_t v = r <= (double)lo ? lo : r >= (double)hi ? hi : (int64_t)r;
                    kl_rt_set_i64(y, e, v);
                } else {
                    q_store_code(y, e, kl_quant_f32_to_small(y->dtype, (float)(q + zv[k]), saturate));
                }
            }
    kl_free(sc);
    kl_free(zv);
    return KILN_OK;
}

/* QuantizeLinear: output type from y_zero_point, output_dtype (21+) or uint8;
 * saturate (19+) for float8 outputs. */
static kiln_status q_quantize(kl_kctx *c) {
    const kl_node *n = c->node;
    const kl_rt *x, *scale;
    KL_TRY(kl_quant_input(c, 0, "x", &x));
    KL_TRY(kl_quant_input(c, 1, "y_scale", &scale));
    const kl_rt *zp = q_opt(c, 2);
    if (x->dtype == KILN_DTYPE_STRING || x->dtype == KILN_DTYPE_BOOL || scale->dtype == KILN_DTYPE_STRING)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "x (%s) and y_scale (%s) must be numeric", kiln_dtype_name(x->dtype),
                            kiln_dtype_name(scale->dtype));
    int64_t odt = n->opset >= 21 ? kl_node_attr_int(n, "output_dtype", 0) : 0;
    if (odt < 0 || odt >= KILN_DTYPE_COUNT)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'output_dtype' %lld is not a type", (long long)odt);
    if (zp && odt && odt != (int64_t)zp->dtype)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "output_dtype %s does not match y_zero_point type %s",
                            kiln_dtype_name((kiln_dtype)odt), kiln_dtype_name(zp->dtype));
    kiln_dtype ot = zp ? zp->dtype : odt ? (kiln_dtype)odt : KILN_DTYPE_UINT8;
    if (!q_output_type_ok(ot))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "cannot quantize to %s", kiln_dtype_name(ot));
    bool saturate = n->opset >= 19 ? kl_node_attr_int(n, "saturate", 1) != 0 : true;
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, ot, x->rank, x->dims, &y));
    return q_quantize_into(c, x, scale, zp, y, q_div_precision(c, x->dtype, scale->dtype), saturate);
}

/* ---- DequantizeLinear ------------------------------------------------------------ */

/* DequantizeLinear: y = (x - x_zero_point) * x_scale in the output type
 * (output_dtype from 23, else the scale's type). */
static kiln_status q_dequantize(kl_kctx *c) {
    const kl_node *n = c->node;
    const kl_rt *x, *scale;
    KL_TRY(kl_quant_input(c, 0, "x", &x));
    KL_TRY(kl_quant_input(c, 1, "x_scale", &scale));
    const kl_rt *zp = q_opt(c, 2);
    int64_t lo, hi;
    if (!kl_quant_int_range(x->dtype, &lo, &hi) && !q_is_small_float(x->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "cannot dequantize %s", kiln_dtype_name(x->dtype));
    if (zp && zp->dtype != x->dtype)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "x_zero_point type %s differs from x type %s",
                            kiln_dtype_name(zp->dtype), kiln_dtype_name(x->dtype));
    int64_t odt = n->opset >= 23 ? kl_node_attr_int(n, "output_dtype", 0) : 0;
    kiln_dtype ot = odt > 0 && odt < KILN_DTYPE_COUNT ? (kiln_dtype)odt : scale->dtype;
    if (!q_is_float(ot))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "output type %s is not a float type (x_scale %s%s)",
                            kiln_dtype_name(ot), kiln_dtype_name(scale->dtype),
                            odt ? "" : "; set output_dtype");
    q_gran g;
    KL_TRY(q_granularity(c, x, scale, zp, &g));
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, ot, x->rank, x->dims, &y));
    double *sc = NULL, *zv = NULL;
    kiln_status s = q_values(scale, scale->count, &sc);
    if (s == KILN_OK) s = q_values(zp, scale->count, &zv);
    if (s != KILN_OK) {
        kl_free(sc);
        return s;
    }
    bool small = q_is_small_float(x->dtype);
    for (int64_t o = 0, e = 0; o < g.outer; o++)
        for (int64_t a = 0; a < g.ax; a++)
            for (int64_t in = 0; in < g.inner; in++, e++) {
                int64_t k = q_sidx(&g, o, a, in);
                double xv = x->dtype == KILN_DTYPE_UINT8  ? (double)((const uint8_t *)x->data)[e]
                            : x->dtype == KILN_DTYPE_INT8 ? (double)((const int8_t *)x->data)[e]
                            : small                       ? kl_rt_get_f64(x, e)
                                                          : (double)kl_rt_get_i64(x, e);
                double v = (xv - zv[k]) * sc[k];
                if (ot == KILN_DTYPE_FLOAT)
                    ((float *)y->data)[e] = (float)v;
                else
                    kl_rt_set_f64(y, e, v);
            }
    kl_free(sc);
    kl_free(zv);
    return KILN_OK;
}

/* ---- DynamicQuantizeLinear ------------------------------------------------------- */

/* uint8 quantization with scale = (max(0, max x) - min(0, min x)) / 255 and
 * zero point round(clip(-min / scale, 0, 255)), all in float as the
 * function body; an all-zero range gives scale 0, zero point 0, y 0. */
static kiln_status q_dynamic_quantize(kl_kctx *c) {
    const kl_rt *x;
    KL_TRY(kl_quant_input(c, 0, "x", &x));
    if (!q_is_float(x->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "x must be a float tensor, got %s", kiln_dtype_name(x->dtype));
    float mn = 0.0f, mx = 0.0f;
    for (int64_t i = 0; i < x->count; i++) {
        float v = (float)q_get(x, i);
        mn = fminf(mn, v);
        mx = fmaxf(mx, v);
    }
    float scale = (mx - mn) / 255.0f;
    float zpf = 0.0f;
    if (scale != 0.0f && isfinite(scale)) {
        zpf = 0.0f - mn / scale;
        zpf = zpf < 0.0f ? 0.0f : zpf > 255.0f ? 255.0f : zpf;
        zpf = nearbyintf(zpf);
    }
    kl_rt *y, *ys, *yz;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_UINT8, x->rank, x->dims, &y));
    KL_TRY(kl_kctx_output(c, 1, KILN_DTYPE_FLOAT, 0, NULL, &ys));
    KL_TRY(kl_kctx_output(c, 2, KILN_DTYPE_UINT8, 0, NULL, &yz));
    ((float *)ys->data)[0] = scale;
    ((uint8_t *)yz->data)[0] = (uint8_t)zpf;
    uint8_t *yd = y->data;
    if (scale == 0.0f || !isfinite(scale)) return KILN_OK;
    for (int64_t i = 0; i < x->count; i++) {
        float q = nearbyintf((float)q_get(x, i) / scale);
        if (isnan(q)) q = 0.0f;
        q += zpf;
        yd[i] = (uint8_t)(q <= 0.0f ? 0.0f : q >= 255.0f ? 255.0f : q);
    }
    return KILN_OK;
}

/* ---- table ------------------------------------------------------------------------- */

const kl_kernel_def kl_ref_quant[] = {
    {"", "QuantizeLinear", 10, 0, 0, q_quantize},
    {"", "DequantizeLinear", 10, 0, 0, q_dequantize},
    {"", "DynamicQuantizeLinear", 11, 0, KL_T_FLOATS, q_dynamic_quantize},
    {"", "MatMulInteger", 10, 0, 0, kl_quant_matmul_integer},
    {"", "QLinearMatMul", 10, 0, 0, kl_quant_qlinear_matmul},
    {"", "ConvInteger", 10, 0, 0, kl_quant_conv_integer},
    {"", "QLinearConv", 10, 0, 0, kl_quant_qlinear_conv},
    {0},
};
