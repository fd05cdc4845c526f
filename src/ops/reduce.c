/*
 * Schemas and shape inference of the reduction family: Reduce*, ArgMax,
 * ArgMin, TopK, CumSum, CumProd.  Reduce ops take `axes` as an attribute up
 * to opset 17 (ReduceSum: 12) and as an optional input afterwards; an axes
 * input whose contents are unknown leaves the reduced dims unknown.
 */
#include "ops/infer_util.h"

/* Output 0 = input 0 with the marked axes reduced (kept as 1 or dropped). */
static kiln_status reduce_shape(kl_infer_ctx *c, const kl_shape *in, const bool *mark,
                                bool keepdims, kiln_dtype dtype) {
    int rank = 0;
    for (int k = 0; k < in->rank; k++) rank += keepdims || !mark[k];
    kl_shape out;
    KL_TRY(kl_infer_shape_new(c, rank, &out));
    for (int k = 0, j = 0; k < in->rank; k++) {
        if (!mark[k]) out.dims[j++] = in->dims[k];
        else if (keepdims) out.dims[j++] = kl_dim_known(1);
    }
    return kl_infer_set_output(c, 0, dtype, &out);
}

/* Reduce*: axes from the attribute (axes_input false) or input 1. */
static kiln_status reduce_infer(kl_infer_ctx *c, bool axes_input) {
    const kl_shape *in = kl_infer_input_shape(c, 0);
    kiln_dtype dtype = kl_infer_input_dtype(c, 0);
    bool keepdims = kl_node_attr_int(c->node, "keepdims", 1) != 0;
    bool noop = kl_node_attr_int(c->node, "noop_with_empty_axes", 0) != 0;
    int64_t axes[KILN_MAX_RANK * 2], n_axes = 0;
    bool known = true;
    if (axes_input) {
        if (kl_infer_has_input(c, 1) &&
            !kl_infer_input_ints(c, 1, axes, (int64_t)KL_ARRAY_LEN(axes), &n_axes)) {
            const kl_symval *s = kl_infer_input_sym(c, 1);
            known = s && s->count <= (int64_t)KL_ARRAY_LEN(axes);
            for (int64_t k = 0; known && k < s->count; k++) {
                known = kl_symdim_known(&s->v[k]);
                axes[k] = s->v[k].value;
            }
            n_axes = known ? s->count : 0;
        }
    } else {
        const int64_t *vals = NULL;
        n_axes = kl_node_attr_ints(c->node, "axes", &vals);
        if (n_axes > (int64_t)KL_ARRAY_LEN(axes))
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'axes' has %lld entries",
                                 (long long)n_axes);
        for (int64_t k = 0; k < n_axes; k++) axes[k] = vals[k];
        if (n_axes < 0) n_axes = 0;
    }
    if (!in) return kl_infer_set_output(c, 0, dtype, NULL);
    if (!known) { /* which dims go is unknown: with keepdims, each is itself or 1 */
        kl_shape out;
        KL_TRY(kl_infer_shape_new(c, keepdims ? in->rank : -1, &out));
        for (int k = 0; k < out.rank; k++)
            if (in->dims[k].value == 1) out.dims[k] = in->dims[k];
        return kl_infer_set_output(c, 0, dtype, &out);
    }
    bool mark[KILN_MAX_RANK] = {false};
    if (in->rank > KILN_MAX_RANK)
        return kl_infer_fail(c, KILN_ERR_UNSUPPORTED, "input rank %d is too large", in->rank);
    if (n_axes == 0) {
        if (noop) return kl_infer_set_output(c, 0, dtype, in);
        for (int k = 0; k < in->rank; k++) mark[k] = true;
    }
    for (int64_t k = 0; k < n_axes; k++) {
        int a;
        if (!kl_infer_axis(axes[k], in->rank, &a))
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                                 "axis %lld is out of range for an input of rank %d",
                                 (long long)axes[k], in->rank);
        mark[a] = true;
    }
    return reduce_shape(c, in, mark, keepdims, dtype);
}

/* Reduce* before opset 18 (ReduceSum: 13) and after. */
static kiln_status infer_reduce_attr(kl_infer_ctx *c) { return reduce_infer(c, false); }
static kiln_status infer_reduce_input(kl_infer_ctx *c) { return reduce_infer(c, true); }

/* ArgMax/ArgMin: one axis, int64 indices. */
static kiln_status infer_argmax(kl_infer_ctx *c) {
    const kl_shape *in = kl_infer_input_shape(c, 0);
    bool keepdims = kl_node_attr_int(c->node, "keepdims", 1) != 0;
    if (!in) return kl_infer_set_output(c, 0, KILN_DTYPE_INT64, NULL);
    if (in->rank > KILN_MAX_RANK)
        return kl_infer_fail(c, KILN_ERR_UNSUPPORTED, "input rank %d is too large", in->rank);
    int axis;
    KL_TRY(kl_infer_attr_axis(c, "axis", 0, in->rank, &axis));
    bool mark[KILN_MAX_RANK] = {false};
    mark[axis] = true;
    return reduce_shape(c, in, mark, keepdims, KILN_DTYPE_INT64);
}

/* TopK: values and int64 indices, dimension `axis` becomes K (attribute `k`
 * before opset 10, input 1 after; unknown when not constant). */
static kiln_status infer_topk(kl_infer_ctx *c) {
    const kl_shape *in = kl_infer_input_shape(c, 0);
    kiln_dtype dtype = kl_infer_input_dtype(c, 0);
    if (!in) {
        KL_TRY(kl_infer_set_output(c, 0, dtype, NULL));
        return kl_infer_set_output(c, 1, KILN_DTYPE_INT64, NULL);
    }
    int axis;
    KL_TRY(kl_infer_attr_axis(c, "axis", -1, in->rank, &axis));
    kl_dim k = kl_dim_unknown();
    if (c->node->schema && c->node->schema->max_inputs < 2) {
        k = kl_dim_known(kl_node_attr_int(c->node, "k", -1));
    } else {
        const kl_symval *s = kl_infer_input_sym(c, 1);
        if (s && s->count != 1)
            return kl_infer_fail(c, KILN_ERR_SHAPE, "input 'K' has %lld elements, expected 1",
                                 (long long)s->count);
        if (s) k = kl_symdim_unknown(&s->v[0]) ? kl_dim_unknown() : s->v[0];
    }
    if (k.value < -1 || (k.value == -1 && !k.param && kl_infer_input_const(c, 1)))
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "K = %lld is negative",
                             (long long)k.value);
    kl_shape out;
    KL_TRY(kl_infer_shape_copy(c, in, &out));
    out.dims[axis] = k;
    KL_TRY(kl_infer_set_output(c, 0, dtype, &out));
    return kl_infer_set_output(c, 1, KILN_DTYPE_INT64, &out);
}

/* ---- the table --------------------------------------------------------------------- */

static const kl_attr_spec a_axes_keep[] = {
    {"axes", KL_ATTR_INTS, false}, {"keepdims", KL_ATTR_INT, false}, {0}};
static const kl_attr_spec a_keep_noop[] = {
    {"keepdims", KL_ATTR_INT, false}, {"noop_with_empty_axes", KL_ATTR_INT, false}, {0}};
static const kl_attr_spec a_arg_v1[] = {
    {"axis", KL_ATTR_INT, false}, {"keepdims", KL_ATTR_INT, false}, {0}};
static const kl_attr_spec a_arg_v12[] = {{"axis", KL_ATTR_INT, false},
                                         {"keepdims", KL_ATTR_INT, false},
                                         {"select_last_index", KL_ATTR_INT, false},
                                         {0}};
static const kl_attr_spec a_topk_v1[] = {
    {"axis", KL_ATTR_INT, false}, {"k", KL_ATTR_INT, true}, {0}};
static const kl_attr_spec a_topk_v10[] = {{"axis", KL_ATTR_INT, false}, {0}};
static const kl_attr_spec a_topk_v11[] = {{"axis", KL_ATTR_INT, false},
                                          {"largest", KL_ATTR_INT, false},
                                          {"sorted", KL_ATTR_INT, false},
                                          {0}};
static const kl_attr_spec a_cum[] = {
    {"exclusive", KL_ATTR_INT, false}, {"reverse", KL_ATTR_INT, false}, {0}};

#define ROW(op, since, until, imin, imax, omin, omax, attrs, fn) \
    {"", op, since, until, imin, imax, omin, omax, attrs, fn}
/* Reduce op: axes attribute (1-10: non-negative axes; 11-17: negative
 * allowed), axes input from 18. */
#define REDUCE(op)                                                               \
    ROW(op, 1, 10, 1, 1, 1, 1, a_axes_keep, infer_reduce_attr),                  \
        ROW(op, 11, 17, 1, 1, 1, 1, a_axes_keep, infer_reduce_attr),             \
        ROW(op, 18, 0, 1, 2, 1, 1, a_keep_noop, infer_reduce_input)
#define ARG(op)                                                                  \
    ROW(op, 1, 10, 1, 1, 1, 1, a_arg_v1, infer_argmax),                          \
        ROW(op, 11, 11, 1, 1, 1, 1, a_arg_v1, infer_argmax),                     \
        ROW(op, 12, 0, 1, 1, 1, 1, a_arg_v12, infer_argmax)

const kl_op_schema kl_ops_reduce[] = {
    REDUCE("ReduceL1"), REDUCE("ReduceL2"), REDUCE("ReduceLogSum"), REDUCE("ReduceLogSumExp"),
    REDUCE("ReduceMax"), REDUCE("ReduceMean"), REDUCE("ReduceMin"), REDUCE("ReduceProd"),
    REDUCE("ReduceSumSquare"),
    ROW("ReduceSum", 1, 10, 1, 1, 1, 1, a_axes_keep, infer_reduce_attr),
    ROW("ReduceSum", 11, 12, 1, 1, 1, 1, a_axes_keep, infer_reduce_attr),
    ROW("ReduceSum", 13, 0, 1, 2, 1, 1, a_keep_noop, infer_reduce_input),
    ARG("ArgMax"), ARG("ArgMin"),
    ROW("TopK", 1, 9, 1, 1, 2, 2, a_topk_v1, infer_topk),
    ROW("TopK", 10, 10, 2, 2, 2, 2, a_topk_v10, infer_topk),
    ROW("TopK", 11, 0, 2, 2, 2, 2, a_topk_v11, infer_topk),
    ROW("CumSum", 11, 0, 2, 2, 1, 1, a_cum, kl_infer_unary),
    ROW("CumProd", 26, 0, 2, 2, 1, 1, a_cum, kl_infer_unary),
    {0},
};
