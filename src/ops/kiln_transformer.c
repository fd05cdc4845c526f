/*
 * Schemas and shape inference of the transformer-side kiln-domain ops
 * (FusedMatMul, LayerNorm, RMSNorm, Attention, FusedElementwise); their
 * meaning is written down in ops/kiln_transformer.h.
 */
#include "ops/infer_util.h"
#include "ops/kiln_transformer.h"

/* Inputs [first, first+count) that are given must have input 0's element type. */
static kiln_status same_dtype(kl_infer_ctx *c, size_t first, size_t count) {
    kiln_dtype t0 = kl_infer_input_dtype(c, 0);
    for (size_t i = first; i < first + count && i < kl_infer_n_inputs(c); i++) {
        kiln_dtype t = kl_infer_input_dtype(c, i);
        if (t0 && t && t != t0)
            return kl_infer_fail(c, KILN_ERR_TYPE, "input %zu is %s but input 0 is %s", i,
                                 kiln_dtype_name(t), kiln_dtype_name(t0));
    }
    return KILN_OK;
}

/* The activation attribute must name a kl_act. */
static kiln_status check_activation(kl_infer_ctx *c) {
    int64_t a = kl_node_attr_int(c->node, "activation", 0);
    if (a < 0 || a >= KL_ACT_COUNT)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "activation is %lld, not a kiln activation",
                             (long long)a);
    return KILN_OK;
}

/* FusedMatMul: MatMul's output; bias (input 2) holds Y's last dim values,
 * shaped [1,...,1,N] of rank <= Y's. */
static kiln_status infer_fused_matmul(kl_infer_ctx *c) {
    KL_TRY(check_activation(c));
    KL_TRY(same_dtype(c, 1, 2));
    KL_TRY(kl_infer_matmul_like(c, 0, 1, kl_infer_input_dtype(c, 0)));
    const kl_shape *bias = kl_infer_input_shape(c, 2);
    const kl_value *y = c->node->outputs[0];
    if (!bias || !y || y->type.shape.rank < 0) return KILN_OK;
    const kl_shape *ys = &y->type.shape;
    if (bias->rank < 1 || bias->rank > ys->rank || ys->rank < 1)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "bias has rank %d, expected 1 to %d", bias->rank,
                             ys->rank);
    for (int i = 0; i + 1 < bias->rank; i++)
        if (bias->dims[i].value != 1)
            return kl_infer_fail(c, KILN_ERR_SHAPE, "bias dim %d must be 1", i);
    const kl_dim *bn = &bias->dims[bias->rank - 1], *yn = &ys->dims[ys->rank - 1];
    if (bn->value >= 0 && yn->value >= 0 && bn->value != yn->value)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "bias has %lld values, the output's last dim is %lld",
                             (long long)bn->value, (long long)yn->value);
    return KILN_OK;
}

/* LayerNorm / RMSNorm: Y like X; axis must fit X's rank; scale and bias of
 * rank <= X.rank - axis. */
static kiln_status infer_norm(kl_infer_ctx *c) {
    KL_TRY(same_dtype(c, 1, 2));
    const kl_shape *x = kl_infer_input_shape(c, 0);
    if (x) {
        int axis;
        KL_TRY(kl_infer_attr_axis(c, "axis", -1, x->rank, &axis));
        for (size_t i = 1; i < kl_infer_n_inputs(c); i++) {
            const kl_shape *p = kl_infer_input_shape(c, i);
            if (p && p->rank > x->rank - axis)
                return kl_infer_fail(c, KILN_ERR_SHAPE,
                                     "input %zu has rank %d, more than the %d normalized axes", i,
                                     p->rank, x->rank - axis);
        }
    }
    return kl_infer_unary(c);
}

/* Attention: Y = [B, Sq, H*Dv] from Q's batch and sequence and V's last dim
 * (seq_first: [Sq, B, H*Dv]). */
static kiln_status infer_attention(kl_infer_ctx *c) {
    KL_TRY(same_dtype(c, 1, 3));
    int64_t heads = kl_node_attr_int(c->node, "num_heads", 0);
    bool sf = kl_node_attr_int(c->node, "seq_first", 0) != 0;
    if (heads < 1)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "num_heads is %lld, expected >= 1",
                             (long long)heads);
    const kl_shape *q = kl_infer_input_shape(c, 0), *k = kl_infer_input_shape(c, 1),
                   *v = kl_infer_input_shape(c, 2), *mask = kl_infer_input_shape(c, 3);
    const char *names[3] = {"Q", "K", "V"};
    const kl_shape *qkv[3] = {q, k, v};
    for (int i = 0; i < 3; i++) {
        if (!qkv[i]) continue;
        if (qkv[i]->rank != 3)
            return kl_infer_fail(c, KILN_ERR_SHAPE, "%s has rank %d, expected 3", names[i],
                                 qkv[i]->rank);
        int64_t e = qkv[i]->dims[2].value;
        if (e >= 0 && e % heads != 0)
            return kl_infer_fail(c, KILN_ERR_SHAPE, "%s's last dim %lld is not a multiple of num_heads %lld",
                                 names[i], (long long)e, (long long)heads);
    }
    if (q && k && q->dims[2].value >= 0 && k->dims[2].value >= 0 && q->dims[2].value != k->dims[2].value)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "Q and K have last dims %lld and %lld",
                             (long long)q->dims[2].value, (long long)k->dims[2].value);
    if (mask && mask->rank > 4)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "mask has rank %d, expected at most 4", mask->rank);
    if (!q || !v) return kl_infer_set_output(c, 0, kl_infer_input_dtype(c, 0), NULL);
    kl_shape y;
    KL_TRY(kl_infer_shape_new(c, 3, &y));
    y.dims[0] = q->dims[0];
    y.dims[1] = q->dims[1];
    y.dims[2] = v->dims[2];
    (void)sf; /* the layout is the same for Q and Y: both keep Q's first two dims */
    return kl_infer_set_output(c, 0, kl_infer_input_dtype(c, 0), &y);
}

/* FusedElementwise: a valid program; Y = broadcast of all inputs. */
static kiln_status infer_fused_elementwise(kl_infer_ctx *c) {
    const int64_t *ops, *args;
    int64_t n = kl_node_attr_ints(c->node, "ops", &ops), na = kl_node_attr_ints(c->node, "args", &args);
    const kl_attr *imms = kl_node_attr(c->node, "imms");
    size_t n_in = kl_infer_n_inputs(c);
    if (n < 1 || n > KL_FE_MAX_STEPS || na != n || !imms || imms->type != KL_ATTR_FLOATS ||
        imms->n != (size_t)n)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "ops, args and imms must have the same length, 1 to %d", KL_FE_MAX_STEPS);
    if (n_in < 1 || n_in > KL_FE_MAX_INPUTS)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "%zu inputs, expected 1 to %d", n_in,
                             KL_FE_MAX_INPUTS);
    for (int64_t i = 0; i < n; i++) {
        bool bin = kl_fe_is_binary(ops[i]);
        if (!bin && !kl_fe_is_unary(ops[i]))
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "step %lld: unknown opcode %lld",
                                 (long long)i, (long long)ops[i]);
        bool arg_ok = args[i] == KL_FE_ARG_IMM || (bin && args[i] == KL_FE_ARG_SELF) ||
                      (bin && args[i] >= 0 && (size_t)args[i] < n_in && kl_infer_has_input(c, (size_t)args[i]));
        if (!arg_ok)
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "step %lld: bad operand %lld",
                                 (long long)i, (long long)args[i]);
    }
    if (!kl_infer_has_input(c, 0))
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "input 0 is missing");
    KL_TRY(same_dtype(c, 1, n_in - 1));
    kl_shape y;
    KL_TRY(kl_infer_broadcast_inputs(c, 0, n_in, &y));
    return kl_infer_set_output(c, 0, kl_infer_input_dtype(c, 0), y.rank < 0 ? NULL : &y);
}

#define OPT(n, t) {n, KL_ATTR_##t, false}
#define REQ(n, t) {n, KL_ATTR_##t, true}
#define END {NULL, KL_ATTR_UNDEFINED, false}

static const kl_attr_spec fused_matmul_attrs[] = {OPT("alpha", FLOAT), OPT("activation", INT),
                                                  OPT("act_alpha", FLOAT), OPT("act_beta", FLOAT), END};
static const kl_attr_spec norm_attrs[] = {OPT("axis", INT), OPT("epsilon", FLOAT), END};
static const kl_attr_spec attention_attrs[] = {REQ("num_heads", INT), OPT("scale", FLOAT),
                                               OPT("seq_first", INT), END};
static const kl_attr_spec fused_ew_attrs[] = {REQ("ops", INTS), REQ("args", INTS), REQ("imms", FLOATS), END};

const kl_op_schema kl_ops_kiln_transformer[] = {
    {KL_KILN_DOMAIN, "FusedMatMul", 1, 0, 2, 3, 1, 1, fused_matmul_attrs, infer_fused_matmul},
    {KL_KILN_DOMAIN, "LayerNorm", 1, 0, 1, 3, 1, 1, norm_attrs, infer_norm},
    {KL_KILN_DOMAIN, "RMSNorm", 1, 0, 1, 2, 1, 1, norm_attrs, infer_norm},
    {KL_KILN_DOMAIN, "Attention", 1, 0, 3, 4, 1, 1, attention_attrs, infer_attention},
    {KL_KILN_DOMAIN, "FusedElementwise", 1, 0, 1, KL_FE_MAX_INPUTS, 1, 1, fused_ew_attrs,
     infer_fused_elementwise},
    {NULL, NULL, 0, 0, 0, 0, 0, 0, NULL, NULL},
};
