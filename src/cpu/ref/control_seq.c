/* CPU reference kernels: sequence and optional operators, and the element
 * copy / stack / slice helpers of the control family. */
#include <string.h>

#include "cpu/ref/control.h"
#include "cpu/ref/ref.h"

/* ---- helpers ------------------------------------------------------------------ */

kiln_status kl_ctrl_copy(kl_rt *dst, int64_t doff, const kl_rt *src, int64_t soff, int64_t n) {
    if (n <= 0) return KILN_OK;
    if (src->dtype == KILN_DTYPE_STRING) {
        const kl_str *s = src->data;
        for (int64_t i = 0; i < n; i++) KL_TRY(kl_rt_set_string(dst, doff + i, s[soff + i].ptr, s[soff + i].len));
        return KILN_OK;
    }
    size_t bits = kiln_dtype_bits(src->dtype);
    if (bits >= 8) {
        size_t b = bits / 8;
        memcpy((uint8_t *)dst->data + (size_t)doff * b, (const uint8_t *)src->data + (size_t)soff * b, (size_t)n * b);
        return KILN_OK;
    }
    if (bits != 4 && bits != 2 && bits != 1)
        return kl_errorf(KILN_ERR_UNSUPPORTED, "cannot copy elements of type %s", kiln_dtype_name(src->dtype));
    const uint8_t *s = src->data;
    uint8_t *d = dst->data;
    int64_t per = (int64_t)(8 / bits);
    unsigned mask = (1u << bits) - 1;
    for (int64_t i = 0; i < n; i++) {
        int64_t si = soff + i, di = doff + i;
        unsigned v = (s[si / per] >> (bits * (size_t)(si % per))) & mask;
        unsigned sh = (unsigned)(bits * (size_t)(di % per));
        d[di / per] = (uint8_t)((d[di / per] & ~(mask << sh)) | (v << sh));
    }
    return KILN_OK;
}

kiln_status kl_ctrl_stack(kl_rt *const *items, size_t n, int axis, bool reverse, const char *what, kl_rt **out) {
    if (n == 0) return kl_errorf(KILN_ERR_INTERNAL, "%s: nothing to stack", what);
    const kl_rt *t0 = items[0];
    char a[128], b[128];
    for (size_t i = 0; i < n; i++) {
        const kl_rt *t = items[i];
        if (t->kind != KL_RT_TENSOR)
            return kl_errorf(KILN_ERR_TYPE, "%s %zu is %s, expected a tensor", what, i, kl_rt_describe(t, a, sizeof a));
        if (t->dtype != t0->dtype || !kl_ref_same_shape(t, t0))
            return kl_errorf(KILN_ERR_SHAPE, "%s %zu is %s but %s 0 is %s (they must match)", what, i,
                             kl_rt_describe(t, a, sizeof a), what, kl_rt_describe(t0, b, sizeof b));
    }
    if (t0->rank + 1 > KILN_MAX_RANK || axis < 0 || axis > t0->rank)
        return kl_errorf(KILN_ERR_SHAPE, "%s: cannot stack rank %d tensors along axis %d", what, t0->rank, axis);
    if (n > (size_t)INT64_MAX) return kl_errorf(KILN_ERR_SHAPE, "%s: too many values", what);
    int64_t dims[KILN_MAX_RANK], outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) {
        dims[i] = t0->dims[i];
        outer *= t0->dims[i];
    }
    dims[axis] = (int64_t)n;
    for (int i = axis; i < t0->rank; i++) {
        dims[i + 1] = t0->dims[i];
        inner *= t0->dims[i];
    }
    kl_rt *r;
    KL_TRY(kl_rt_tensor(t0->dtype, t0->rank + 1, dims, &r));
    for (size_t i = 0; i < n && r->count; i++) {
        int64_t p = reverse ? (int64_t)(n - 1 - i) : (int64_t)i;
        for (int64_t o = 0; o < outer; o++) {
            kiln_status s = kl_ctrl_copy(r, (o * (int64_t)n + p) * inner, items[i], o * inner, inner);
            if (s) {
                kl_rt_unref(r);
                return s;
            }
        }
    }
    *out = r;
    return KILN_OK;
}

kiln_status kl_ctrl_slice(const kl_rt *t, int axis, int64_t index, kl_rt **out) {
    int64_t dims[KILN_MAX_RANK], outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) {
        dims[i] = t->dims[i];
        outer *= t->dims[i];
    }
    for (int i = axis + 1; i < t->rank; i++) {
        dims[i - 1] = t->dims[i];
        inner *= t->dims[i];
    }
    kl_rt *r;
    KL_TRY(kl_rt_tensor(t->dtype, t->rank - 1, dims, &r));
    int64_t d = t->dims[axis];
    for (int64_t o = 0; o < outer && r->count; o++) {
        kiln_status s = kl_ctrl_copy(r, o * inner, t, (o * d + index) * inner, inner);
        if (s) {
            kl_rt_unref(r);
            return s;
        }
    }
    *out = r;
    return KILN_OK;
}

kiln_dtype kl_ctrl_seq_elem(const kl_type *t) {
    if (t && t->kind == KL_TYPE_OPTIONAL) t = t->inner;
    if (!t || t->kind != KL_TYPE_SEQUENCE || !t->inner || t->inner->kind != KL_TYPE_TENSOR) return KILN_DTYPE_UNDEFINED;
    return t->inner->elem;
}

/* Input i as a sequence, or a failure naming it. */
static kiln_status kl_seq_input(kl_kctx *c, size_t i, const char *name, kl_rt **out) {
    kl_rt *v = i < c->n_in ? c->in[i] : NULL;
    char a[128];
    if (!v) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "input %zu '%s' is missing", i, name);
    if (v->kind != KL_RT_SEQUENCE)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "input %zu '%s' is %s, expected a sequence", i, name,
                            kl_rt_describe(v, a, sizeof a));
    *out = v;
    return KILN_OK;
}

/* Input i as a tensor, or a failure naming it. */
static kiln_status kl_tensor_input(kl_kctx *c, size_t i, const char *name, kl_rt **out) {
    kl_rt *v = i < c->n_in ? c->in[i] : NULL;
    char a[128];
    if (!v) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "input %zu '%s' is missing", i, name);
    if (v->kind != KL_RT_TENSOR)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "input %zu '%s' is %s, expected a tensor", i, name,
                            kl_rt_describe(v, a, sizeof a));
    *out = v;
    return KILN_OK;
}

/* Read the scalar integer position input i and normalize it against a
 * sequence of n items: valid range [-n, n-1], or [-n, n] with `end`. */
static kiln_status kl_seq_position(kl_kctx *c, size_t i, size_t n, bool end, size_t *out) {
    kl_rt *p = NULL;
    KL_TRY(kl_tensor_input(c, i, "position", &p));
    if ((p->dtype != KILN_DTYPE_INT32 && p->dtype != KILN_DTYPE_INT64) || p->count != 1 || p->rank > 1)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "input %zu 'position' must be an int32 or int64 scalar", i);
    int64_t v = kl_rt_get_i64(p, 0), len = (int64_t)n;
    int64_t hi = end ? len : len - 1;
    if (v < -len || v > hi)
        return kl_kctx_fail(c, KILN_ERR_INVALID_ARGUMENT, "position %lld is out of range [%lld, %lld] for a sequence of %zu",
                            (long long)v, (long long)-len, (long long)hi, n);
    *out = (size_t)(v < 0 ? v + len : v);
    return KILN_OK;
}

/* New sequence made of the items of seq with item `skip` left out (skip >=
 * n_items: none) and `ins` inserted at `at` (ins NULL: none). */
static kiln_status kl_seq_edit(kl_kctx *c, const kl_rt *seq, size_t skip, kl_rt *ins, size_t at, kiln_dtype elem) {
    size_t n = seq->n_items + 1;
    kl_rt **items = kl_calloc(n, sizeof *items);
    if (!items) return KILN_ERR_NO_MEMORY;
    size_t k = 0;
    for (size_t i = 0; i <= seq->n_items; i++) {
        if (ins && i == at) items[k++] = ins;
        if (i < seq->n_items && i != skip) items[k++] = seq->items[i];
    }
    kl_rt *r;
    kiln_status s = kl_rt_sequence(elem, items, k, &r);
    kl_free(items);
    return s ? s : kl_kctx_set_output(c, 0, r);
}

/* ---- sequence operators ------------------------------------------------------------ */

/* SequenceEmpty-11: an empty sequence of attribute dtype (default float). */
kiln_status kl_ctrl_sequence_empty(kl_kctx *c) {
    int64_t dt = kl_node_attr_int(c->node, "dtype", KILN_DTYPE_FLOAT);
    if (dt < INT32_MIN || dt > INT32_MAX || !kl_dtype_valid((int32_t)dt))
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'dtype' %lld is not a valid element type", (long long)dt);
    kl_rt *r;
    KL_TRY(kl_rt_sequence((kiln_dtype)dt, NULL, 0, &r));
    return kl_kctx_set_output(c, 0, r);
}

/* SequenceConstruct-11: a sequence of the input tensors (same element type). */
kiln_status kl_ctrl_sequence_construct(kl_kctx *c) {
    if (c->n_in == 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "needs at least one input");
    kl_rt *t = NULL;
    for (size_t i = 0; i < c->n_in; i++) {
        KL_TRY(kl_tensor_input(c, i, "inputs", &t));
        if (t->dtype != c->in[0]->dtype)
            return kl_kctx_fail(c, KILN_ERR_TYPE, "input %zu is %s but input 0 is %s (all must have one type)", i,
                                kiln_dtype_name(t->dtype), kiln_dtype_name(c->in[0]->dtype));
    }
    kl_rt *r;
    KL_TRY(kl_rt_sequence(c->in[0]->dtype, c->in, c->n_in, &r));
    return kl_kctx_set_output(c, 0, r);
}

/* SequenceInsert-11: insert tensor at position (default: append). */
kiln_status kl_ctrl_sequence_insert(kl_kctx *c) {
    kl_rt *seq = NULL, *t = NULL;
    KL_TRY(kl_seq_input(c, 0, "input_sequence", &seq));
    KL_TRY(kl_tensor_input(c, 1, "tensor", &t));
    if (seq->dtype != KILN_DTYPE_UNDEFINED && seq->dtype != t->dtype)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "tensor of type %s cannot be inserted into a sequence of %s",
                            kiln_dtype_name(t->dtype), kiln_dtype_name(seq->dtype));
    size_t at = seq->n_items;
    if (c->n_in > 2 && c->in[2]) KL_TRY(kl_seq_position(c, 2, seq->n_items, true, &at));
    return kl_seq_edit(c, seq, SIZE_MAX, t, at, t->dtype);
}

/* SequenceAt-11: the tensor at position. */
kiln_status kl_ctrl_sequence_at(kl_kctx *c) {
    kl_rt *seq = NULL;
    size_t at;
    KL_TRY(kl_seq_input(c, 0, "input_sequence", &seq));
    KL_TRY(kl_seq_position(c, 1, seq->n_items, false, &at));
    return kl_kctx_set_output(c, 0, kl_rt_ref(seq->items[at]));
}

/* SequenceErase-11: remove the tensor at position (default: the last). */
kiln_status kl_ctrl_sequence_erase(kl_kctx *c) {
    kl_rt *seq = NULL;
    KL_TRY(kl_seq_input(c, 0, "input_sequence", &seq));
    if (seq->n_items == 0) return kl_kctx_fail(c, KILN_ERR_INVALID_ARGUMENT, "cannot erase from an empty sequence");
    size_t at = seq->n_items - 1;
    if (c->n_in > 1 && c->in[1]) KL_TRY(kl_seq_position(c, 1, seq->n_items, false, &at));
    return kl_seq_edit(c, seq, at, NULL, 0, seq->dtype);
}

/* SequenceLength-11: number of tensors, as an int64 scalar. */
kiln_status kl_ctrl_sequence_length(kl_kctx *c) {
    kl_rt *seq = NULL, *r;
    KL_TRY(kl_seq_input(c, 0, "input_sequence", &seq));
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_INT64, 0, NULL, &r));
    *(int64_t *)r->data = (int64_t)seq->n_items;
    return KILN_OK;
}

/* Part [start, start+len) of t along axis as a new tensor (axis removed
 * when squeeze and len == 1). */
static kiln_status kl_split_part(const kl_rt *t, int axis, int64_t start, int64_t len, bool squeeze, kl_rt **out) {
    int64_t dims[KILN_MAX_RANK], outer = 1, inner = 1, d = t->dims[axis];
    memcpy(dims, t->dims, sizeof dims);
    dims[axis] = len;
    for (int i = 0; i < axis; i++) outer *= t->dims[i];
    for (int i = axis + 1; i < t->rank; i++) inner *= t->dims[i];
    if (squeeze) memmove(&dims[axis], &dims[axis + 1], (size_t)(t->rank - axis - 1) * sizeof dims[0]);
    kl_rt *r;
    KL_TRY(kl_rt_tensor(t->dtype, squeeze ? t->rank - 1 : t->rank, dims, &r));
    for (int64_t o = 0; o < outer && r->count; o++) {
        kiln_status s = kl_ctrl_copy(r, o * len * inner, t, (o * d + start) * inner, len * inner);
        if (s) {
            kl_rt_unref(r);
            return s;
        }
    }
    *out = r;
    return KILN_OK;
}

/* SplitToSequence-11: split along axis into pieces of 1 (split omitted;
 * keepdims=0 drops the axis), of a scalar size (last may be smaller), or of
 * the listed lengths. */
kiln_status kl_ctrl_split_to_sequence(kl_kctx *c) {
    kl_rt *t = NULL, *split = c->n_in > 1 ? c->in[1] : NULL;
    KL_TRY(kl_tensor_input(c, 0, "input", &t));
    int axis;
    KL_TRY(kl_ref_axis(kl_node_attr_int(c->node, "axis", 0), t->rank, false, "attribute 'axis'", &axis));
    bool keep = kl_node_attr_int(c->node, "keepdims", 1) != 0;
    int64_t d = t->dims[axis], n, chunk = 1;
    if (split) {
        if (split->kind != KL_RT_TENSOR || !kl_dtype_is_integer(split->dtype) || split->rank > 1)
            return kl_kctx_fail(c, KILN_ERR_TYPE, "input 1 'split' must be an integer scalar or 1-D tensor");
        if (split->rank == 0) {
            chunk = kl_rt_get_i64(split, 0);
            if (chunk <= 0)
                return kl_kctx_fail(c, KILN_ERR_INVALID_ARGUMENT, "input 1 'split' is %lld; it must be positive",
                                    (long long)chunk);
            n = d / chunk + (d % chunk != 0);
        } else {
            n = split->count;
            int64_t sum = 0;
            for (int64_t i = 0; i < n; i++) {
                int64_t v = kl_rt_get_i64(split, i);
                if (v < 0 || kl_add_i64(sum, v, &sum))
                    return kl_kctx_fail(c, KILN_ERR_INVALID_ARGUMENT, "input 1 'split' has an invalid length %lld",
                                        (long long)v);
            }
            if (sum != d)
                return kl_kctx_fail(c, KILN_ERR_INVALID_ARGUMENT,
                                    "input 1 'split' lengths sum to %lld but axis %d has %lld elements", (long long)sum,
                                    axis, (long long)d);
        }
    } else {
        n = d;
    }
    kl_rt **items = kl_calloc(n ? (size_t)n : 1, sizeof *items);
    if (!items) return KILN_ERR_NO_MEMORY;
    kiln_status s = KILN_OK;
    int64_t start = 0, k = 0;
    for (; k < n && !s; k++) {
        int64_t len = !split ? 1 : split->rank == 0 ? KL_MIN(chunk, d - start) : kl_rt_get_i64(split, k);
        s = kl_split_part(t, axis, start, len, !split && !keep, &items[k]);
        start += len;
    }
    kl_rt *r = NULL;
    if (!s) s = kl_rt_sequence(t->dtype, items, (size_t)n, &r);
    for (int64_t i = 0; i < n; i++) kl_rt_unref(items[i]);
    kl_free(items);
    return s ? s : kl_kctx_set_output(c, 0, r);
}

/* ConcatFromSequence-11: concatenate the tensors along axis, or stack them
 * along a new axis (new_axis=1). */
kiln_status kl_ctrl_concat_from_sequence(kl_kctx *c) {
    kl_rt *seq = NULL;
    KL_TRY(kl_seq_input(c, 0, "input_sequence", &seq));
    const kl_attr *aa = kl_node_attr(c->node, "axis");
    if (!aa) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'axis' is required");
    bool stack = kl_node_attr_int(c->node, "new_axis", 0) != 0;
    if (seq->n_items == 0)
        return kl_kctx_fail(c, KILN_ERR_INVALID_ARGUMENT, "input sequence is empty (nothing to concatenate)");
    const kl_rt *t0 = seq->items[0];
    int axis;
    KL_TRY(kl_ref_axis(aa->i, t0->rank, stack, "attribute 'axis'", &axis));
    if (stack) {
        kl_rt *r;
        KL_TRY(kl_ctrl_stack(seq->items, seq->n_items, axis, false, "sequence item", &r));
        return kl_kctx_set_output(c, 0, r);
    }
    int64_t dims[KILN_MAX_RANK], total = 0;
    char a[128], b[128];
    for (size_t i = 0; i < seq->n_items; i++) {
        const kl_rt *t = seq->items[i];
        bool ok = t->kind == KL_RT_TENSOR && t->dtype == t0->dtype && t->rank == t0->rank;
        for (int k = 0; ok && k < t->rank; k++) ok = k == axis || t->dims[k] == t0->dims[k];
        if (!ok)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "sequence item %zu is %s, item 0 is %s: they cannot be concatenated on axis %d",
                                i, kl_rt_describe(t, a, sizeof a), kl_rt_describe(t0, b, sizeof b), axis);
        if (kl_add_i64(total, t->dims[axis], &total)) return kl_kctx_fail(c, KILN_ERR_SHAPE, "result is too large");
    }
    memcpy(dims, t0->dims, sizeof dims);
    dims[axis] = total;
    int64_t outer = 1, inner = 1, start = 0;
    for (int i = 0; i < axis; i++) outer *= dims[i];
    for (int i = axis + 1; i < t0->rank; i++) inner *= dims[i];
    kl_rt *r;
    KL_TRY(kl_kctx_output(c, 0, t0->dtype, t0->rank, dims, &r));
    for (size_t i = 0; i < seq->n_items && r->count; i++) {
        const kl_rt *t = seq->items[i];
        int64_t len = t->dims[axis];
        for (int64_t o = 0; o < outer; o++) KL_TRY(kl_ctrl_copy(r, (o * total + start) * inner, t, o * len * inner, len * inner));
        start += len;
    }
    return KILN_OK;
}

/* ---- optional operators ------------------------------------------------------------ */

/* Optional-15: wrap the input, or make an empty optional of attribute type. */
kiln_status kl_ctrl_optional(kl_kctx *c) {
    if (c->n_in > 0 && c->in[0]) return kl_kctx_set_output(c, 0, kl_rt_ref(c->in[0]));
    const kl_attr *ta = kl_node_attr(c->node, "type");
    if (!ta || ta->type != KL_ATTR_TYPE_PROTO || !ta->tp)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "without an input, attribute 'type' is required");
    kl_rt *r;
    KL_TRY(kl_rt_none(ta->tp->kind, &r));
    return kl_kctx_set_output(c, 0, r);
}

/* OptionalGetElement-15/18: the value of a non-empty optional (opset 18 also
 * passes a plain tensor or sequence through). */
kiln_status kl_ctrl_optional_get_element(kl_kctx *c) {
    kl_rt *v = c->n_in > 0 ? c->in[0] : NULL;
    if (!v) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "input 0 is missing");
    if (v->kind == KL_RT_NONE) return kl_kctx_fail(c, KILN_ERR_INVALID_ARGUMENT, "input 0 is an optional without a value");
    return kl_kctx_set_output(c, 0, kl_rt_ref(v));
}

/* OptionalHasElement-15/18: bool scalar, true when the input is present and
 * not an empty optional. */
kiln_status kl_ctrl_optional_has_element(kl_kctx *c) {
    kl_rt *v = c->n_in > 0 ? c->in[0] : NULL, *r;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_BOOL, 0, NULL, &r));
    *(uint8_t *)r->data = v && v->kind != KL_RT_NONE;
    return KILN_OK;
}
