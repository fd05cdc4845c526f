/*
 * Schemas and shape inference of the normalization family: batch, instance,
 * layer, group, RMS, Lp and mean-variance normalization, LRN, and the
 * softmax family (Softmax, LogSoftmax, Hardmax).
 */
#include "ops/infer_util.h"

/* Shape-preserving op whose `axis` attribute (default dflt) must fit the
 * input's rank.  Before opset 13 the softmax family coerces the input to 2D
 * around `axis`, but the output still has the input's shape. */
static kiln_status axis_same(kl_infer_ctx *c, int64_t dflt) {
    const kl_shape *in = kl_infer_input_shape(c, 0);
    int axis;
    if (in && in->rank > 0) KL_TRY(kl_infer_attr_axis(c, "axis", dflt, in->rank, &axis));
    return kl_infer_unary(c);
}

/* Softmax family before/from opset 13; LpNormalization (axis -1). */
static kiln_status infer_softmax_v1(kl_infer_ctx *c) { return axis_same(c, 1); }
static kiln_status infer_softmax_v13(kl_infer_ctx *c) { return axis_same(c, -1); }
static kiln_status infer_lpnorm(kl_infer_ctx *c) { return axis_same(c, -1); }

/* Shape [C] from X = [N, C, ...], or unknown. */
static kiln_status channel_shape(kl_infer_ctx *c, kl_shape *out) {
    const kl_shape *x = kl_infer_input_shape(c, 0);
    KL_TRY(kl_infer_shape_new(c, x && x->rank >= 2 ? 1 : -1, out));
    if (out->rank == 1) out->dims[0] = x->dims[1];
    return KILN_OK;
}

/* BatchNormalization: Y like X; the optional statistics outputs (running or
 * saved mean/var) have the shape of input 3 (`mean`), by default [C]; from
 * opset 14 they take input 3's element type, before it X's. */
static kiln_status infer_batchnorm(kl_infer_ctx *c) {
    KL_TRY(kl_infer_unary(c));
    kl_shape stat;
    const kl_shape *mean = kl_infer_input_shape(c, 3);
    if (mean) KL_TRY(kl_infer_shape_copy(c, mean, &stat));
    else KL_TRY(channel_shape(c, &stat));
    kiln_dtype dt = c->node->opset >= 14 ? kl_infer_input_dtype(c, 3) : kl_infer_input_dtype(c, 0);
    for (size_t i = 1; i < kl_infer_n_outputs(c) && i < 5; i++)
        KL_TRY(kl_infer_set_output(c, i, dt, &stat));
    return KILN_OK;
}

/* LayerNormalization: Y like X; Mean and InvStdDev keep the dims before
 * `axis` and have 1 after it, in the `stash_type` element type. */
static kiln_status infer_layernorm(kl_infer_ctx *c) {
    const kl_shape *x = kl_infer_input_shape(c, 0);
    KL_TRY(kl_infer_unary(c));
    if (kl_infer_n_outputs(c) < 2) return KILN_OK;
    kiln_dtype stash = kl_infer_dtype_from_attr(kl_node_attr_int(c->node, "stash_type", 1));
    if (stash == KILN_DTYPE_UNDEFINED)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'stash_type' is not a type");
    kl_shape st = {-1, NULL};
    if (x) {
        int axis;
        KL_TRY(kl_infer_attr_axis(c, "axis", -1, x->rank, &axis));
        KL_TRY(kl_infer_shape_copy(c, x, &st));
        for (int k = axis; k < st.rank; k++) st.dims[k] = kl_dim_known(1);
    }
    KL_TRY(kl_infer_set_output(c, 1, stash, &st));
    return kl_infer_set_output(c, 2, stash, &st);
}

/* RMSNormalization: Y like X, `axis` must fit X's rank. */
static kiln_status infer_rmsnorm(kl_infer_ctx *c) { return axis_same(c, -1); }

/* ---- the table --------------------------------------------------------------------- */

#define A_I KL_ATTR_INT
#define A_F KL_ATTR_FLOAT

static const kl_attr_spec a_bn_v1[] = {{"consumed_inputs", KL_ATTR_INTS, true},
                                       {"epsilon", A_F, false},
                                       {"is_test", A_I, false},
                                       {"momentum", A_F, false},
                                       {"spatial", A_I, false},
                                       {0}};
static const kl_attr_spec a_bn_v6[] = {{"epsilon", A_F, false},
                                       {"is_test", A_I, false},
                                       {"momentum", A_F, false},
                                       {"spatial", A_I, false},
                                       {0}};
static const kl_attr_spec a_bn_v7[] = {
    {"epsilon", A_F, false}, {"momentum", A_F, false}, {"spatial", A_I, false}, {0}};
static const kl_attr_spec a_bn_v9[] = {{"epsilon", A_F, false}, {"momentum", A_F, false}, {0}};
static const kl_attr_spec a_bn_v14[] = {
    {"epsilon", A_F, false}, {"momentum", A_F, false}, {"training_mode", A_I, false}, {0}};
static const kl_attr_spec a_in_v1[] = {
    {"consumed_inputs", KL_ATTR_INTS, false}, {"epsilon", A_F, false}, {0}};
static const kl_attr_spec a_epsilon[] = {{"epsilon", A_F, false}, {0}};
static const kl_attr_spec a_axis_eps_stash[] = {
    {"axis", A_I, false}, {"epsilon", A_F, false}, {"stash_type", A_I, false}, {0}};
static const kl_attr_spec a_gn_v18[] = {
    {"epsilon", A_F, false}, {"num_groups", A_I, true}, {0}};
static const kl_attr_spec a_gn_v21[] = {
    {"epsilon", A_F, false}, {"num_groups", A_I, true}, {"stash_type", A_I, false}, {0}};
static const kl_attr_spec a_lp[] = {{"axis", A_I, false}, {"p", A_I, false}, {0}};
static const kl_attr_spec a_mvn[] = {{"axes", KL_ATTR_INTS, false}, {0}};
static const kl_attr_spec a_lrn[] = {{"alpha", A_F, false},
                                     {"beta", A_F, false},
                                     {"bias", A_F, false},
                                     {"size", A_I, true},
                                     {0}};
static const kl_attr_spec a_axis[] = {{"axis", A_I, false}, {0}};

#define ROW(op, since, until, imin, imax, omin, omax, attrs, fn) \
    {"", op, since, until, imin, imax, omin, omax, attrs, fn}
/* Softmax family: 1-10 axis >= 0 (default 1, 2D coercion), 11-12 negative
 * axis allowed, 13+ default -1 and no coercion. */
#define SOFTMAX(op)                                                          \
    ROW(op, 1, 10, 1, 1, 1, 1, a_axis, infer_softmax_v1),                    \
        ROW(op, 11, 12, 1, 1, 1, 1, a_axis, infer_softmax_v1),               \
        ROW(op, 13, 0, 1, 1, 1, 1, a_axis, infer_softmax_v13)

const kl_op_schema kl_ops_norm[] = {
    ROW("BatchNormalization", 1, 5, 5, 5, 1, 5, a_bn_v1, infer_batchnorm),
    ROW("BatchNormalization", 6, 6, 5, 5, 1, 5, a_bn_v6, infer_batchnorm),
    ROW("BatchNormalization", 7, 8, 5, 5, 1, 5, a_bn_v7, infer_batchnorm),
    ROW("BatchNormalization", 9, 13, 5, 5, 1, 5, a_bn_v9, infer_batchnorm),
    ROW("BatchNormalization", 14, 0, 5, 5, 1, 3, a_bn_v14, infer_batchnorm),
    ROW("InstanceNormalization", 1, 5, 3, 3, 1, 1, a_in_v1, kl_infer_unary),
    ROW("InstanceNormalization", 6, 0, 3, 3, 1, 1, a_epsilon, kl_infer_unary),
    ROW("LayerNormalization", 17, 0, 2, 3, 1, 3, a_axis_eps_stash, infer_layernorm),
    ROW("GroupNormalization", 18, 20, 3, 3, 1, 1, a_gn_v18, kl_infer_unary),
    ROW("GroupNormalization", 21, 0, 3, 3, 1, 1, a_gn_v21, kl_infer_unary),
    ROW("RMSNormalization", 23, 0, 2, 2, 1, 1, a_axis_eps_stash, infer_rmsnorm),
    ROW("LpNormalization", 1, 0, 1, 1, 1, 1, a_lp, infer_lpnorm),
    ROW("MeanVarianceNormalization", 9, 0, 1, 1, 1, 1, a_mvn, kl_infer_unary),
    ROW("LRN", 1, 0, 1, 1, 1, 1, a_lrn, kl_infer_unary),
    SOFTMAX("Softmax"), SOFTMAX("LogSoftmax"), SOFTMAX("Hardmax"),
    {0},
};
