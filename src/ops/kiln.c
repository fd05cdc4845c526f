/* Schemas and shape inference of the kiln-domain ops made by the passes. */
#include <string.h>

#include "ops/kiln.h"

static const char *const kl_act_names[KL_ACT_COUNT] = {
    "none", "relu", "clip", "leaky_relu", "sigmoid", "silu",
    "hard_sigmoid", "hard_swish", "gelu_erf", "gelu_tanh", "mish", "tanh",
};

const char *kl_kiln_act_name(kl_act a) {
    return (int)a >= 0 && a < KL_ACT_COUNT ? kl_act_names[a] : NULL;
}

/* The activation attribute must name a known kl_act. */
static kiln_status check_act(kl_infer_ctx *c) {
    int64_t a = kl_node_attr_int(c->node, "activation", 0);
    if (a < 0 || a >= KL_ACT_COUNT)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "activation is %lld, not a kiln activation",
                             (long long)a);
    return KILN_OK;
}

/* Z (input `zi`), when given, must have output 0's element type, and its
 * known dims must equal the output's. */
static kiln_status check_z(kl_infer_ctx *c, size_t zi) {
    if (!kl_infer_has_input(c, zi)) return KILN_OK;
    kiln_dtype zt = kl_infer_input_dtype(c, zi), xt = kl_infer_input_dtype(c, 0);
    if (zt && xt && zt != xt)
        return kl_infer_fail(c, KILN_ERR_TYPE, "Z is %s but X is %s", kiln_dtype_name(zt),
                             kiln_dtype_name(xt));
    const kl_shape *z = kl_infer_input_shape(c, zi);
    const kl_value *y = c->node->n_outputs ? c->node->outputs[0] : NULL;
    if (!z || !y || y->type.shape.rank < 0) return KILN_OK;
    const kl_shape *ys = &y->type.shape;
    if (z->rank != ys->rank)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "Z has rank %d, output has rank %d", z->rank,
                             ys->rank);
    for (int i = 0; i < z->rank; i++)
        if (z->dims[i].value >= 0 && ys->dims[i].value >= 0 && z->dims[i].value != ys->dims[i].value)
            return kl_infer_fail(c, KILN_ERR_SHAPE, "Z dim %d is %lld, output's is %lld", i,
                                 (long long)z->dims[i].value, (long long)ys->dims[i].value);
    return KILN_OK;
}

/* FusedConv: Conv's output shape, then Z checked against it. */
static kiln_status infer_fused_conv(kl_infer_ctx *c) {
    KL_TRY(check_act(c));
    kiln_dtype xt = kl_infer_input_dtype(c, 0), wt = kl_infer_input_dtype(c, 1);
    if (xt && wt && xt != wt)
        return kl_infer_fail(c, KILN_ERR_TYPE, "X is %s but W is %s", kiln_dtype_name(xt),
                             kiln_dtype_name(wt));
    KL_TRY(kl_infer_conv_like(c, 0, 1, xt));
    return check_z(c, 3);
}

/* FusedGemm: Gemm's rules (the ai.onnx Gemm schema's inference), then Z. */
static kiln_status infer_fused_gemm(kl_infer_ctx *c) {
    KL_TRY(check_act(c));
    const kl_op_schema *gemm = kl_op_find("", "Gemm", 13, NULL);
    if (!gemm || !gemm->infer) return kl_infer_fail(c, KILN_ERR_INTERNAL, "no Gemm schema");
    KL_TRY(gemm->infer(c));
    return check_z(c, 3);
}

#define OPT(n, t) {n, KL_ATTR_##t, false}
#define END {NULL, KL_ATTR_UNDEFINED, false}

static const kl_attr_spec fused_conv_attrs[] = {
    OPT("auto_pad", STRING), OPT("dilations", INTS), OPT("group", INT),
    OPT("kernel_shape", INTS), OPT("pads", INTS), OPT("strides", INTS),
    OPT("activation", INT), OPT("act_alpha", FLOAT), OPT("act_beta", FLOAT), END};
static const kl_attr_spec fused_gemm_attrs[] = {
    OPT("alpha", FLOAT), OPT("beta", FLOAT), OPT("transA", INT), OPT("transB", INT),
    OPT("activation", INT), OPT("act_alpha", FLOAT), OPT("act_beta", FLOAT), END};

const kl_op_schema kl_ops_kiln[] = {
    {KL_KILN_DOMAIN, "FusedConv", 1, 0, 2, 4, 1, 1, fused_conv_attrs, infer_fused_conv},
    {KL_KILN_DOMAIN, "FusedGemm", 1, 0, 2, 4, 1, 1, fused_gemm_attrs, infer_fused_gemm},
    {NULL, NULL, 0, 0, 0, 0, 0, 0, NULL, NULL},
};
