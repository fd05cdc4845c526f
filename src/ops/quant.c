/*
 * Schemas and shape inference of the quantization family: QuantizeLinear,
 * DequantizeLinear (per-tensor, per-axis and blocked), DynamicQuantizeLinear
 * and the integer / QLinear forms of Conv and MatMul.  Rows follow ONNX's
 * version boundaries (onnx/defs/quantization).
 */
#include <string.h>

#include "ops/infer_util.h"
#include "ops/ops.h"


/* Element type named by integer attribute `name` (0 or absent: UNDEFINED);
 * a value that is no element type is an error. */
static kiln_status dtype_attr(kl_infer_ctx *c, const char *name, kiln_dtype *out) {
    int64_t v = kl_node_attr_int(c->node, name, 0);
    *out = KILN_DTYPE_UNDEFINED;
    if (v == 0) return KILN_OK;
    if (v < 0 || v > INT32_MAX || !kl_dtype_valid((int32_t)v) || v == KILN_DTYPE_STRING)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "%s %lld is not an element type", name,
                             (long long)v);
    *out = (kiln_dtype)v;
    return KILN_OK;
}

/* The scale (input 1) and zero point (input 2) of a Q/DQ node must fit x
 * (input 0): a scalar, a 1-D tensor of x's length on `axis`, or (blocked)
 * x's rank with ceil(D/block_size) on `axis`.  Only provable mismatches are
 * errors. */
static kiln_status check_qparams(kl_infer_ctx *c) {
    const kl_shape *x = kl_infer_input_shape(c, 0), *s = kl_infer_input_shape(c, 1);
    const kl_shape *z = kl_infer_input_shape(c, 2);
    int64_t block = c->node->opset >= 21 ? kl_node_attr_int(c->node, "block_size", 0) : 0;
    char b1[128], b2[128];
    if (block < 0)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "block_size is %lld, must be >= 0",
                             (long long)block);
    /* Ranks may differ in practice ([] vs [1] in ONNX's own tests): compare
     * only same-rank shapes. */
    if (s && z && s->rank == z->rank) {
        for (int i = 0; i < s->rank; i++)
            if (kl_dim_is_known(&s->dims[i]) && kl_dim_is_known(&z->dims[i]) &&
                s->dims[i].value != z->dims[i].value)
                return kl_infer_fail(c, KILN_ERR_SHAPE,
                                     "zero point %s does not have the scale's shape %s",
                                     kl_shape_format(z, b1, sizeof b1),
                                     kl_shape_format(s, b2, sizeof b2));
    }
    if (!x || !s || s->rank == 0 || c->node->opset < 13 || x->rank <= 1) return KILN_OK;
    if (s->rank == 1 && kl_dim_is_known(&s->dims[0]) && s->dims[0].value == 1) return KILN_OK;
    int axis;
    KL_TRY(kl_infer_attr_axis(c, "axis", 1, x->rank, &axis));
    if (block == 0) {
        const kl_dim *d = &x->dims[axis], *n = &s->dims[0];
        if (s->rank != 1)
            return kl_infer_fail(c, KILN_ERR_SHAPE,
                                 "scale has rank %d; without block_size it must be a scalar or "
                                 "1-D",
                                 s->rank);
        if (kl_dim_is_known(d) && kl_dim_is_known(n) && n->value != 1 && n->value != d->value)
            return kl_infer_fail(c, KILN_ERR_SHAPE,
                                 "scale has %lld values but x has %lld on axis %d",
                                 (long long)n->value, (long long)d->value, axis);
        return KILN_OK;
    }
    if (s->rank != x->rank)
        return kl_infer_fail(c, KILN_ERR_SHAPE,
                             "blocked quantization: scale has rank %d but x has rank %d",
                             s->rank, x->rank);
    for (int i = 0; i < x->rank; i++) {
        const kl_dim *d = &x->dims[i], *n = &s->dims[i];
        if (!kl_dim_is_known(d) || !kl_dim_is_known(n)) continue;
        int64_t want = i == axis ? d->value / block + (d->value % block != 0) : d->value;
        if (n->value != want)
            return kl_infer_fail(c, KILN_ERR_SHAPE,
                                 "blocked quantization: scale %s does not fit x %s with "
                                 "block_size %lld on axis %d",
                                 kl_shape_format(s, b1, sizeof b1),
                                 kl_shape_format(x, b2, sizeof b2), (long long)block, axis);
    }
    return KILN_OK;
}

/* QuantizeLinear: x's shape; element type of y_zero_point, else
 * output_dtype (opset 21+), else uint8. */
static kiln_status infer_quantize(kl_infer_ctx *c) {
    kiln_dtype zt = kl_infer_input_dtype(c, 2), od = KILN_DTYPE_UNDEFINED;
    if (c->node->opset >= 21) KL_TRY(dtype_attr(c, "output_dtype", &od));
    if (od && zt && od != zt)
        return kl_infer_fail(c, KILN_ERR_TYPE, "output_dtype %s does not match y_zero_point's %s",
                             kiln_dtype_name(od), kiln_dtype_name(zt));
    KL_TRY(check_qparams(c));
    kiln_dtype dt = zt ? zt : od ? od : kl_infer_has_input(c, 2) ? KILN_DTYPE_UNDEFINED
                                                                 : KILN_DTYPE_UINT8;
    return kl_infer_unary_as(c, dt);
}

/* DequantizeLinear: x's shape; float before opset 19, then x_scale's type,
 * or output_dtype (opset 23+). */
static kiln_status infer_dequantize(kl_infer_ctx *c) {
    kiln_dtype dt = KILN_DTYPE_FLOAT, od = KILN_DTYPE_UNDEFINED;
    kiln_dtype xt = kl_infer_input_dtype(c, 0), zt = kl_infer_input_dtype(c, 2);
    if (xt && zt && xt != zt)
        return kl_infer_fail(c, KILN_ERR_TYPE, "x is %s but x_zero_point is %s",
                             kiln_dtype_name(xt), kiln_dtype_name(zt));
    if (c->node->opset >= 23) KL_TRY(dtype_attr(c, "output_dtype", &od));
    if (c->node->opset >= 19) dt = od ? od : kl_infer_input_dtype(c, 1);
    KL_TRY(check_qparams(c));
    return kl_infer_unary_as(c, dt);
}

/* DynamicQuantizeLinear: y uint8 with x's shape, scalar float scale and
 * scalar uint8 zero point. */
static kiln_status infer_dynamic_quantize(kl_infer_ctx *c) {
    kl_shape scalar = {0, NULL};
    KL_TRY(kl_infer_unary_as(c, KILN_DTYPE_UINT8));
    if (kl_infer_n_outputs(c) > 1 && c->node->outputs[1])
        KL_TRY(kl_infer_set_output(c, 1, KILN_DTYPE_FLOAT, &scalar));
    if (kl_infer_n_outputs(c) > 2 && c->node->outputs[2])
        KL_TRY(kl_infer_set_output(c, 2, KILN_DTYPE_UINT8, &scalar));
    return KILN_OK;
}

/* QLinearConv: Conv shape from x (0) and w (3); type of y_zero_point (7). */
static kiln_status infer_qlinear_conv(kl_infer_ctx *c) {
    return kl_infer_conv_like(c, 0, 3, kl_infer_input_dtype(c, 7));
}

/* QLinearMatMul: MatMul shape from a (0) and b (3); type of y_zero_point. */
static kiln_status infer_qlinear_matmul(kl_infer_ctx *c) {
    return kl_infer_matmul_like(c, 0, 3, kl_infer_input_dtype(c, 7));
}

/* MatMulInteger: MatMul shape, int32. */
static kiln_status infer_matmul_integer(kl_infer_ctx *c) {
    return kl_infer_matmul_like(c, 0, 1, KILN_DTYPE_INT32);
}

/* ConvInteger: Conv shape, int32. */
static kiln_status infer_conv_integer(kl_infer_ctx *c) {
    return kl_infer_conv_like(c, 0, 1, KILN_DTYPE_INT32);
}

#define OPT(n, t) {n, KL_ATTR_##t, false}
#define END {NULL, KL_ATTR_UNDEFINED, false}

static const kl_attr_spec no_attrs[] = {END};
static const kl_attr_spec axis_attrs[] = {OPT("axis", INT), END};
static const kl_attr_spec q19_attrs[] = {OPT("axis", INT), OPT("saturate", INT), END};
static const kl_attr_spec q21_attrs[] = {
    OPT("axis", INT), OPT("block_size", INT), OPT("output_dtype", INT), OPT("saturate", INT),
    END};
static const kl_attr_spec q23_attrs[] = {
    OPT("axis", INT), OPT("block_size", INT), OPT("output_dtype", INT), OPT("precision", INT),
    OPT("saturate", INT), END};
static const kl_attr_spec dq21_attrs[] = {OPT("axis", INT), OPT("block_size", INT), END};
static const kl_attr_spec dq23_attrs[] = {
    OPT("axis", INT), OPT("block_size", INT), OPT("output_dtype", INT), END};
static const kl_attr_spec conv_attrs[] = {
    OPT("auto_pad", STRING), OPT("dilations", INTS), OPT("group", INT),
    OPT("kernel_shape", INTS), OPT("pads", INTS), OPT("strides", INTS), END};

/* Version boundaries: 19 adds float8 and saturate, 21 blocked quantization,
 * int4 and output_dtype (Q), 23 float4 and precision (Q) / output_dtype
 * (DQ), 24 float8e8m0 scales, 25 int2/uint2. */
const kl_op_schema kl_ops_quant[] = {
    {"", "QuantizeLinear", 10, 12, 2, 3, 1, 1, no_attrs, infer_quantize},
    {"", "QuantizeLinear", 13, 18, 2, 3, 1, 1, axis_attrs, infer_quantize},
    {"", "QuantizeLinear", 19, 20, 2, 3, 1, 1, q19_attrs, infer_quantize},
    {"", "QuantizeLinear", 21, 22, 2, 3, 1, 1, q21_attrs, infer_quantize},
    {"", "QuantizeLinear", 23, 23, 2, 3, 1, 1, q23_attrs, infer_quantize},
    {"", "QuantizeLinear", 24, 24, 2, 3, 1, 1, q23_attrs, infer_quantize},
    {"", "QuantizeLinear", 25, 0, 2, 3, 1, 1, q23_attrs, infer_quantize},
    {"", "DequantizeLinear", 10, 12, 2, 3, 1, 1, no_attrs, infer_dequantize},
    {"", "DequantizeLinear", 13, 18, 2, 3, 1, 1, axis_attrs, infer_dequantize},
    {"", "DequantizeLinear", 19, 20, 2, 3, 1, 1, axis_attrs, infer_dequantize},
    {"", "DequantizeLinear", 21, 22, 2, 3, 1, 1, dq21_attrs, infer_dequantize},
    {"", "DequantizeLinear", 23, 23, 2, 3, 1, 1, dq23_attrs, infer_dequantize},
    {"", "DequantizeLinear", 24, 24, 2, 3, 1, 1, dq23_attrs, infer_dequantize},
    {"", "DequantizeLinear", 25, 0, 2, 3, 1, 1, dq23_attrs, infer_dequantize},
    {"", "DynamicQuantizeLinear", 11, 0, 1, 1, 3, 3, no_attrs, infer_dynamic_quantize},
    {"", "QLinearConv", 10, 0, 8, 9, 1, 1, conv_attrs, infer_qlinear_conv},
    {"", "QLinearMatMul", 10, 20, 8, 8, 1, 1, no_attrs, infer_qlinear_matmul},
    {"", "QLinearMatMul", 21, 0, 8, 8, 1, 1, no_attrs, infer_qlinear_matmul},
    {"", "MatMulInteger", 10, 0, 2, 4, 1, 1, no_attrs, infer_matmul_integer},
    {"", "ConvInteger", 10, 0, 2, 4, 1, 1, conv_attrs, infer_conv_integer},
    {NULL, NULL, 0, 0, 0, 0, 0, 0, NULL, NULL},
};
