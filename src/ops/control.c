/*
 * control.c — schemas and shape/type inference for control flow (If, Loop,
 * Scan), tensor sequences and optionals.
 *
 * kl_infer_graph infers every subgraph attribute of a node before calling
 * the node's infer, so the rules here read the types of the branch/body
 * graphs' outputs.  Types of values that may differ between branches or
 * iterations are merged: same element type, dimensions that differ become
 * unknown, ranks that differ make the rank unknown.
 */
#include <string.h>

#include "ops/infer_util.h"

/* ---- type helpers --------------------------------------------------------- */

/* Largest constant (split sizes, trip counts) read from an input. */
#define CTL_MAX_CONST 1024

/* True if output i exists and was not left out (""). */
static bool out_used(const kl_infer_ctx *c, size_t i) {
    return i < c->node->n_outputs && c->node->outputs[i] != NULL;
}

/* A fresh arena type of `kind` with nothing else known. */
static kl_type *type_new(kl_infer_ctx *c, kl_type_kind kind) {
    kl_type *t = kl_arena_alloc(c->arena, sizeof *t);
    if (!t) return NULL;
    t->kind = kind;
    t->elem = KILN_DTYPE_UNDEFINED;
    t->shape.rank = -1;
    t->shape.dims = NULL;
    t->inner = NULL;
    return t;
}

/* *out = a shape every value of shape a or b fits: unequal dims unknown,
 * unequal ranks give unknown rank. */
static kiln_status shape_merge(kl_infer_ctx *c, const kl_shape *a, const kl_shape *b,
                               kl_shape *out) {
    if (a->rank < 0 || b->rank < 0 || a->rank != b->rank) {
        out->rank = -1;
        out->dims = NULL;
        return KILN_OK;
    }
    KL_TRY(kl_infer_shape_new(c, a->rank, out));
    for (int d = 0; d < a->rank; d++)
        if (kl_dim_same(&a->dims[d], &b->dims[d])) out->dims[d] = a->dims[d];
    return KILN_OK;
}

/* *out = t with every shape made unknown (element types kept). */
static kiln_status type_loosen(kl_infer_ctx *c, const kl_type *t, kl_type *out) {
    out->kind = t ? t->kind : KL_TYPE_UNKNOWN;
    out->elem = t ? t->elem : KILN_DTYPE_UNDEFINED;
    out->shape.rank = -1;
    out->shape.dims = NULL;
    out->inner = NULL;
    if (t && t->inner) {
        out->inner = type_new(c, KL_TYPE_UNKNOWN);
        if (!out->inner) return KILN_ERR_NO_MEMORY;
        KL_TRY(type_loosen(c, t->inner, out->inner));
    }
    return KILN_OK;
}

/* *out = the merge of types a and b (either may be NULL = unknown).  Returns
 * KILN_ERR_TYPE, with no message set, when they provably differ in kind or
 * element type; the caller names the node and the values. */
static kiln_status type_merge(kl_infer_ctx *c, const kl_type *a, const kl_type *b,
                              kl_type *out) {
    bool a_known = a && a->kind != KL_TYPE_UNKNOWN, b_known = b && b->kind != KL_TYPE_UNKNOWN;
    if (!a_known) return type_loosen(c, b_known ? b : NULL, out);
    if (!b_known) return type_loosen(c, a, out);
    if (a->kind != b->kind) return KILN_ERR_TYPE;
    if (a->elem != KILN_DTYPE_UNDEFINED && b->elem != KILN_DTYPE_UNDEFINED && a->elem != b->elem)
        return KILN_ERR_TYPE;
    out->kind = a->kind;
    out->elem = a->elem != KILN_DTYPE_UNDEFINED ? a->elem : b->elem;
    out->inner = NULL;
    out->shape.rank = -1;
    out->shape.dims = NULL;
    if (a->kind == KL_TYPE_TENSOR || a->kind == KL_TYPE_SPARSE_TENSOR)
        KL_TRY(shape_merge(c, &a->shape, &b->shape, &out->shape));
    if (a->inner || b->inner) {
        out->inner = type_new(c, KL_TYPE_UNKNOWN);
        if (!out->inner) return KILN_ERR_NO_MEMORY;
        KL_TRY(type_merge(c, a->inner, b->inner, out->inner));
    }
    return KILN_OK;
}

/* Set output i to type t (skipped when t is unknown or the output unused). */
static kiln_status set_type(kl_infer_ctx *c, size_t i, const kl_type *t) {
    if (!out_used(c, i) || !t || t->kind == KL_TYPE_UNKNOWN) return KILN_OK;
    if (t->kind == KL_TYPE_TENSOR)
        return kl_infer_set_output(c, i, t->elem, t->shape.rank >= 0 ? &t->shape : NULL);
    return kl_infer_set_output_type(c, i, t);
}

/* Merge a and b into a new type and set output i to it; a mismatch is a
 * type error naming `what`. */
static kiln_status set_merged(kl_infer_ctx *c, size_t i, const kl_type *a, const kl_type *b,
                              const char *what_a, const char *what_b, size_t index) {
    kl_type *m = type_new(c, KL_TYPE_UNKNOWN);
    if (!m) return KILN_ERR_NO_MEMORY;
    kiln_status s = type_merge(c, a, b, m);
    if (s == KILN_ERR_TYPE) {
        char ba[128], bb[128];
        return kl_infer_fail(c, KILN_ERR_TYPE, "%s %zu is %s but %s %zu is %s", what_a, index,
                             kl_type_format(a, ba, sizeof ba), what_b, index,
                             kl_type_format(b, bb, sizeof bb));
    }
    KL_TRY(s);
    return set_type(c, i, m);
}

/* The initial value's type to merge with a loop-carried body output: an
 * optional initial value whose body output is not optional (Loop-16's
 * "optional in, sequence out") merges through its element type, as ONNX
 * takes the body's type for such outputs. */
static const kl_type *carried_init(const kl_type *init, const kl_type *body) {
    if (init && body && init->kind == KL_TYPE_OPTIONAL && body->kind != KL_TYPE_OPTIONAL &&
        body->kind != KL_TYPE_UNKNOWN)
        return init->inner;
    return init;
}

/* The GRAPH attribute `name` of the node, or NULL. */
static const kl_graph *graph_attr(const kl_infer_ctx *c, const char *name) {
    const kl_attr *a = kl_node_attr(c->node, name);
    return a && a->type == KL_ATTR_GRAPH ? a->g : NULL;
}

/* Type of a graph output (NULL when the graph has no output i). */
static const kl_type *graph_out_type(const kl_graph *g, size_t i) {
    return i < g->n_outputs && g->outputs[i] ? &g->outputs[i]->type : NULL;
}

/* A scalar integer constant input; false if unknown. */
static bool input_const_i64(const kl_infer_ctx *c, size_t i, int64_t *out) {
    const kl_tensor *t = kl_infer_input_const(c, i);
    return t && t->count == 1 && kl_tensor_to_i64(t, out, 1);
}

/* Set output i to a tensor of `elem` whose shape is `inner` with `n_extra`
 * dims `extra` inserted at position `at` (unknown rank stays unknown). */
static kiln_status set_with_dims(kl_infer_ctx *c, size_t i, kiln_dtype elem,
                                 const kl_shape *inner, int at, const kl_dim *extra,
                                 int n_extra) {
    if (!out_used(c, i)) return KILN_OK;
    if (!inner || inner->rank < 0) return kl_infer_set_output(c, i, elem, NULL);
    kl_shape s;
    KL_TRY(kl_infer_shape_new(c, inner->rank + n_extra, &s));
    for (int d = 0, k = 0; d < s.rank; d++) {
        if (d >= at && d < at + n_extra) s.dims[d] = extra[d - at];
        else s.dims[d] = inner->dims[k++];
    }
    return kl_infer_set_output(c, i, elem, &s);
}

/* ---- If ---------------------------------------------------------------------- */

/* Outputs: then_branch's and else_branch's output types, merged. */
static kiln_status infer_if(kl_infer_ctx *c) {
    kiln_dtype cd = kl_infer_input_dtype(c, 0);
    if (cd != KILN_DTYPE_UNDEFINED && cd != KILN_DTYPE_BOOL)
        return kl_infer_fail(c, KILN_ERR_TYPE, "condition must be bool, not %s",
                             kiln_dtype_name(cd));
    const kl_graph *tg = graph_attr(c, "then_branch"), *eg = graph_attr(c, "else_branch");
    if (!tg || !eg) return KILN_OK;
    size_t n = c->node->n_outputs;
    if (tg->n_outputs != n || eg->n_outputs != n)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "node has %zu outputs but then_branch has %zu and else_branch %zu",
                             n, tg->n_outputs, eg->n_outputs);
    for (size_t i = 0; i < n; i++)
        KL_TRY(set_merged(c, i, graph_out_type(tg, i), graph_out_type(eg, i),
                          "then_branch output", "else_branch output", i));
    return KILN_OK;
}

/* ---- Loop -------------------------------------------------------------------- */

/* Outputs: N loop-carried values (body outputs 1..N merged with the initial
 * values), then scan outputs (body outputs N+1.. with a leading dim, the trip
 * count when M is constant and there is no condition input). */
static kiln_status infer_loop(kl_infer_ctx *c) {
    const kl_graph *body = graph_attr(c, "body");
    size_t nin = c->node->n_inputs;
    if (!body || nin < 2) return KILN_OK;
    size_t n_carried = nin - 2;
    if (body->n_inputs != n_carried + 2)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "body has %zu inputs, expected %zu (iteration number, condition "
                             "and %zu loop-carried values)",
                             body->n_inputs, n_carried + 2, n_carried);
    if (body->n_outputs < n_carried + 1)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "body has %zu outputs, expected at least %zu (condition and %zu "
                             "loop-carried values)",
                             body->n_outputs, n_carried + 1, n_carried);
    size_t n_scan = body->n_outputs - 1 - n_carried;
    if (c->node->n_outputs > n_carried + n_scan)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "node has %zu outputs but its body gives %zu loop-carried values "
                             "and %zu scan outputs",
                             c->node->n_outputs, n_carried, n_scan);
    kiln_dtype md = kl_infer_input_dtype(c, 0), cd = kl_infer_input_dtype(c, 1);
    if (kl_infer_has_input(c, 0) && md != KILN_DTYPE_UNDEFINED && md != KILN_DTYPE_INT64)
        return kl_infer_fail(c, KILN_ERR_TYPE, "trip count M must be int64, not %s",
                             kiln_dtype_name(md));
    if (kl_infer_has_input(c, 1) && cd != KILN_DTYPE_UNDEFINED && cd != KILN_DTYPE_BOOL)
        return kl_infer_fail(c, KILN_ERR_TYPE, "condition must be bool, not %s",
                             kiln_dtype_name(cd));
    for (size_t i = 0; i < n_carried; i++) {
        const kl_type *bt = graph_out_type(body, 1 + i);
        KL_TRY(set_merged(c, i, carried_init(kl_infer_input_type(c, 2 + i), bt), bt,
                          "initial loop-carried value", "body loop-carried output", i));
    }
    kl_dim trips = {-1, NULL};
    int64_t m;
    if (!kl_infer_has_input(c, 1) && kl_infer_has_input(c, 0) && input_const_i64(c, 0, &m) &&
        m >= 0)
        trips.value = m;
    for (size_t j = 0; j < n_scan; j++) {
        const kl_type *bt = graph_out_type(body, 1 + n_carried + j);
        if (!bt || bt->kind != KL_TYPE_TENSOR) continue;
        KL_TRY(set_with_dims(c, n_carried + j, bt->elem, &bt->shape, 0, &trips, 1));
    }
    return KILN_OK;
}

/* ---- Scan -------------------------------------------------------------------- */

/* The INTS attribute `name` checked to have `n` entries (or absent: NULL). */
static kiln_status ints_attr_n(kl_infer_ctx *c, const char *name, size_t n,
                               const int64_t **out) {
    int64_t k = kl_node_attr_ints(c->node, name, out);
    if (k < 0) {
        *out = NULL;
        return KILN_OK;
    }
    if ((size_t)k != n)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "attribute '%s' has %lld entries, expected %zu",
                             name, (long long)k, n);
    return KILN_OK;
}

/* Scan-9 and later: states then scan outputs; the scan length comes from the
 * scan inputs' scan_input_axes dims and is inserted at scan_output_axes. */
static kiln_status infer_scan9(kl_infer_ctx *c) {
    const kl_graph *body = graph_attr(c, "body");
    size_t nin = c->node->n_inputs;
    int64_t m = kl_node_attr_int(c->node, "num_scan_inputs", -1);
    if (!body || m < 0) return KILN_OK;
    if (m < 1 || (uint64_t)m > nin)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "num_scan_inputs is %lld but the node has %zu inputs", (long long)m, nin);
    size_t n_state = nin - (size_t)m;
    if (body->n_inputs != nin)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "body has %zu inputs, expected %zu",
                             body->n_inputs, nin);
    if (body->n_outputs < n_state)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "body has %zu outputs, fewer than the %zu state values",
                             body->n_outputs, n_state);
    size_t n_scan_out = body->n_outputs - n_state;
    if (c->node->n_outputs > body->n_outputs)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "node has %zu outputs but its body has %zu",
                             c->node->n_outputs, body->n_outputs);
    const int64_t *in_axes, *out_axes;
    KL_TRY(ints_attr_n(c, "scan_input_axes", (size_t)m, &in_axes));
    KL_TRY(ints_attr_n(c, "scan_output_axes", n_scan_out, &out_axes));
    kl_dim len = {-1, NULL};
    for (size_t k = 0; k < (size_t)m; k++) {
        const kl_shape *s = kl_infer_input_shape(c, n_state + k);
        int ax;
        if (!s) continue;
        if (!kl_infer_axis(in_axes ? in_axes[k] : 0, s->rank, &ax))
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                                 "scan input %zu: axis %lld is out of range for rank %d", k,
                                 (long long)(in_axes ? in_axes[k] : 0), s->rank);
        const kl_dim *d = &s->dims[ax];
        if (len.value >= 0 && d->value >= 0 && d->value != len.value)
            return kl_infer_fail(c, KILN_ERR_SHAPE,
                                 "scan inputs have different lengths (%lld and %lld)",
                                 (long long)len.value, (long long)d->value);
        if (len.value < 0 && (d->value >= 0 || (!len.param && d->param))) len = *d;
    }
    for (size_t i = 0; i < n_state; i++) {
        const kl_type *bt = graph_out_type(body, i);
        KL_TRY(set_merged(c, i, carried_init(kl_infer_input_type(c, i), bt), bt, "initial state",
                          "body state output", i));
    }
    for (size_t j = 0; j < n_scan_out; j++) {
        const kl_type *bt = graph_out_type(body, n_state + j);
        if (!bt || bt->kind != KL_TYPE_TENSOR || !out_used(c, n_state + j)) continue;
        int ax = 0;
        if (bt->shape.rank >= 0) {
            int64_t a = out_axes ? out_axes[j] : 0;
            if (!kl_infer_axis(a, bt->shape.rank + 1, &ax))
                return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                                     "scan output %zu: axis %lld is out of range for rank %d", j,
                                     (long long)a, bt->shape.rank + 1);
        }
        KL_TRY(set_with_dims(c, n_state + j, bt->elem, &bt->shape, ax, &len, 1));
    }
    return KILN_OK;
}

/* Scan-8: every input and output has a leading batch dim; scan inputs and
 * outputs have the sequence dim second; input 0 is the optional
 * sequence_lens. */
static kiln_status infer_scan8(kl_infer_ctx *c) {
    const kl_graph *body = graph_attr(c, "body");
    size_t nin = c->node->n_inputs;
    int64_t m = kl_node_attr_int(c->node, "num_scan_inputs", -1);
    if (!body || m < 0 || nin < 1) return KILN_OK;
    if (m < 1 || (uint64_t)m > nin - 1)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "num_scan_inputs is %lld but the node has %zu inputs after "
                             "sequence_lens",
                             (long long)m, nin - 1);
    size_t n_state = nin - 1 - (size_t)m;
    if (body->n_inputs != nin - 1)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "body has %zu inputs, expected %zu",
                             body->n_inputs, nin - 1);
    if (body->n_outputs < n_state || c->node->n_outputs > body->n_outputs)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "body has %zu outputs; the node has %zu outputs and %zu states",
                             body->n_outputs, c->node->n_outputs, n_state);
    kl_dim bs[2] = {{-1, NULL}, {-1, NULL}};
    for (size_t k = 1; k < nin; k++) {
        const kl_shape *s = kl_infer_input_shape(c, k);
        if (!s || s->rank < 1) continue;
        if (bs[0].value < 0 && (s->dims[0].value >= 0 || s->dims[0].param)) bs[0] = s->dims[0];
        if (k >= 1 + n_state && s->rank >= 2 && bs[1].value < 0 &&
            (s->dims[1].value >= 0 || s->dims[1].param))
            bs[1] = s->dims[1];
    }
    for (size_t i = 0; i < body->n_outputs && i < c->node->n_outputs; i++) {
        const kl_type *bt = graph_out_type(body, i);
        if (!bt || bt->kind != KL_TYPE_TENSOR) continue;
        KL_TRY(set_with_dims(c, i, bt->elem, &bt->shape, 0, bs, i < n_state ? 1 : 2));
    }
    return KILN_OK;
}

/* ---- sequences --------------------------------------------------------------- */

/* Type of input i if it is (or may be) a sequence; a known non-sequence is
 * a type error. *out is NULL when nothing is known. */
static kiln_status seq_input(kl_infer_ctx *c, size_t i, const kl_type **out) {
    const kl_type *t = kl_infer_input_type(c, i);
    *out = NULL;
    if (!t || t->kind == KL_TYPE_UNKNOWN) return KILN_OK;
    if (t->kind != KL_TYPE_SEQUENCE) {
        char b[128];
        return kl_infer_fail(c, KILN_ERR_TYPE, "input %zu must be a sequence, not %s", i,
                             kl_type_format(t, b, sizeof b));
    }
    *out = t;
    return KILN_OK;
}

/* Type of input i if it is (or may be) a tensor; NULL when unknown. */
static kiln_status tensor_input(kl_infer_ctx *c, size_t i, const kl_type **out) {
    const kl_type *t = kl_infer_input_type(c, i);
    *out = NULL;
    if (!t || t->kind == KL_TYPE_UNKNOWN) return KILN_OK;
    if (t->kind != KL_TYPE_TENSOR) {
        char b[128];
        return kl_infer_fail(c, KILN_ERR_TYPE, "input %zu must be a tensor, not %s", i,
                             kl_type_format(t, b, sizeof b));
    }
    *out = t;
    return KILN_OK;
}

/* Set output i to seq(elem) (elem may be NULL: element unknown). */
static kiln_status set_seq(kl_infer_ctx *c, size_t i, const kl_type *elem) {
    if (!out_used(c, i)) return KILN_OK;
    kl_type *t = type_new(c, KL_TYPE_SEQUENCE);
    if (!t) return KILN_ERR_NO_MEMORY;
    if (elem && elem->kind != KL_TYPE_UNKNOWN) {
        t->inner = type_new(c, KL_TYPE_UNKNOWN);
        if (!t->inner) return KILN_ERR_NO_MEMORY;
        KL_TRY(kl_type_copy(c->arena, elem, t->inner));
    }
    return kl_infer_set_output_type(c, i, t);
}

/* SequenceEmpty: seq(tensor(dtype)), dtype defaulting to float. */
static kiln_status infer_sequence_empty(kl_infer_ctx *c) {
    int64_t dt = kl_node_attr_int(c->node, "dtype", KILN_DTYPE_FLOAT);
    if (dt < INT32_MIN || dt > INT32_MAX || !kl_dtype_valid((int32_t)dt))
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "dtype %lld is not a tensor element type",
                             (long long)dt);
    kl_type *e = type_new(c, KL_TYPE_TENSOR);
    if (!e) return KILN_ERR_NO_MEMORY;
    e->elem = (kiln_dtype)dt;
    return set_seq(c, 0, e);
}

/* SequenceConstruct: seq(merge of all input tensor types). */
static kiln_status infer_sequence_construct(kl_infer_ctx *c) {
    size_t n = kl_infer_n_inputs(c);
    kl_type *acc = NULL;
    for (size_t i = 0; i < n; i++) {
        const kl_type *t;
        KL_TRY(tensor_input(c, i, &t));
        if (!t) return set_seq(c, 0, NULL);
        if (!acc) {
            acc = type_new(c, KL_TYPE_UNKNOWN);
            if (!acc) return KILN_ERR_NO_MEMORY;
            KL_TRY(kl_type_copy(c->arena, t, acc));
            continue;
        }
        kl_type *m = type_new(c, KL_TYPE_UNKNOWN);
        if (!m) return KILN_ERR_NO_MEMORY;
        kiln_status s = type_merge(c, acc, t, m);
        if (s == KILN_ERR_TYPE)
            return kl_infer_fail(c, KILN_ERR_TYPE,
                                 "inputs must share one element type: input %zu is %s, input 0 is %s",
                                 i, kiln_dtype_name(t->elem), kiln_dtype_name(acc->elem));
        KL_TRY(s);
        acc = m;
    }
    return set_seq(c, 0, acc);
}

/* SequenceInsert: seq(merge of the sequence's element and the tensor). */
static kiln_status infer_sequence_insert(kl_infer_ctx *c) {
    const kl_type *s, *t;
    KL_TRY(seq_input(c, 0, &s));
    KL_TRY(tensor_input(c, 1, &t));
    const kl_type *inner = s ? s->inner : NULL;
    kl_type *m = type_new(c, KL_TYPE_UNKNOWN);
    if (!m) return KILN_ERR_NO_MEMORY;
    kiln_status st = type_merge(c, inner, t, m);
    if (st == KILN_ERR_TYPE) {
        char a[128], b[128];
        return kl_infer_fail(c, KILN_ERR_TYPE, "cannot insert %s into a sequence of %s",
                             kl_type_format(t, a, sizeof a), kl_type_format(inner, b, sizeof b));
    }
    KL_TRY(st);
    return set_seq(c, 0, m);
}

/* SequenceAt: the sequence's element type. */
static kiln_status infer_sequence_at(kl_infer_ctx *c) {
    const kl_type *s;
    KL_TRY(seq_input(c, 0, &s));
    return s && s->inner ? set_type(c, 0, s->inner) : KILN_OK;
}

/* SequenceErase: the input sequence's type. */
static kiln_status infer_sequence_erase(kl_infer_ctx *c) {
    const kl_type *s;
    KL_TRY(seq_input(c, 0, &s));
    return s ? set_type(c, 0, s) : KILN_OK;
}

/* SequenceLength: an int64 scalar. */
static kiln_status infer_sequence_length(kl_infer_ctx *c) {
    const kl_type *s;
    KL_TRY(seq_input(c, 0, &s));
    kl_shape scalar = {0, NULL};
    return kl_infer_set_output(c, 0, KILN_DTYPE_INT64, &scalar);
}

/* SplitToSequence: seq(tensor) whose split axis is the chunk size when all
 * chunks provably have the same size (or is removed with keepdims=0). */
static kiln_status infer_split_to_sequence(kl_infer_ctx *c) {
    const kl_type *t;
    KL_TRY(tensor_input(c, 0, &t));
    if (!t) return set_seq(c, 0, NULL);
    kl_type *e = type_new(c, KL_TYPE_TENSOR);
    if (!e) return KILN_ERR_NO_MEMORY;
    e->elem = t->elem;
    if (t->shape.rank < 0) return set_seq(c, 0, e);
    int r = t->shape.rank, ax;
    int64_t axis = kl_node_attr_int(c->node, "axis", 0);
    if (!kl_infer_axis(axis, r, &ax))
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "axis %lld is out of range for rank %d",
                             (long long)axis, r);
    kl_dim chunk = {-1, NULL};
    const kl_dim *in = &t->shape.dims[ax];
    bool drop = false;
    if (!kl_infer_has_input(c, 1)) {
        drop = kl_node_attr_int(c->node, "keepdims", 1) == 0;
        chunk.value = 1;
    } else {
        const kl_tensor *sp = kl_infer_input_const(c, 1);
        int64_t v[CTL_MAX_CONST];
        if (sp && sp->count >= 1 && sp->count <= CTL_MAX_CONST && kl_tensor_to_i64(sp, v, CTL_MAX_CONST)) {
            for (int64_t k = 0; k < sp->count; k++)
                if (v[k] < 0)
                    return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "split sizes must be >= 0, got %lld",
                                         (long long)v[k]);
            bool same = true;
            for (int64_t k = 1; k < sp->count; k++) same = same && v[k] == v[0];
            if (sp->rank == 0 && in->value >= 0 && v[0] > 0 && in->value % v[0] == 0)
                chunk.value = v[0];
            else if (sp->rank == 0 && in->value >= 0 && v[0] >= in->value)
                chunk.value = in->value;
            else if (sp->rank == 1 && same)
                chunk.value = v[0];
        }
    }
    if (drop) {
        KL_TRY(kl_infer_shape_new(c, r - 1, &e->shape));
        for (int d = 0, k = 0; d < r; d++)
            if (d != ax) e->shape.dims[k++] = t->shape.dims[d];
    } else {
        KL_TRY(kl_infer_shape_new(c, r, &e->shape));
        for (int d = 0; d < r; d++) e->shape.dims[d] = d == ax ? chunk : t->shape.dims[d];
    }
    return set_seq(c, 0, e);
}

/* ConcatFromSequence: the element's shape with the concatenation axis
 * unknown (new_axis=1 inserts it). */
static kiln_status infer_concat_from_sequence(kl_infer_ctx *c) {
    const kl_type *s;
    KL_TRY(seq_input(c, 0, &s));
    const kl_type *e = s ? s->inner : NULL;
    if (!e || e->kind == KL_TYPE_UNKNOWN) return KILN_OK;
    if (e->kind != KL_TYPE_TENSOR) {
        char b[128];
        return kl_infer_fail(c, KILN_ERR_TYPE, "sequence elements must be tensors, not %s",
                             kl_type_format(e, b, sizeof b));
    }
    if (e->shape.rank < 0) return kl_infer_set_output(c, 0, e->elem, NULL);
    bool new_axis = kl_node_attr_int(c->node, "new_axis", 0) != 0;
    int r = e->shape.rank + (new_axis ? 1 : 0), ax;
    int64_t axis = kl_node_attr_int(c->node, "axis", 0);
    if (!kl_infer_axis(axis, r, &ax))
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "axis %lld is out of range for rank %d",
                             (long long)axis, r);
    if (new_axis) {
        kl_dim unk = {-1, NULL};
        return set_with_dims(c, 0, e->elem, &e->shape, ax, &unk, 1);
    }
    kl_shape o;
    KL_TRY(kl_infer_shape_new(c, r, &o));
    for (int d = 0; d < r; d++)
        if (d != ax) o.dims[d] = e->shape.dims[d];
    return kl_infer_set_output(c, 0, e->elem, &o);
}

/* SequenceMap: output k is a sequence of the body's output k. */
static kiln_status infer_sequence_map(kl_infer_ctx *c) {
    const kl_type *s;
    KL_TRY(seq_input(c, 0, &s));
    const kl_graph *body = graph_attr(c, "body");
    if (!body) return KILN_OK;
    if (body->n_inputs != c->node->n_inputs)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "body has %zu inputs, expected %zu",
                             body->n_inputs, c->node->n_inputs);
    if (body->n_outputs != c->node->n_outputs)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "node has %zu outputs but its body has %zu",
                             c->node->n_outputs, body->n_outputs);
    for (size_t k = 0; k < body->n_outputs; k++) {
        const kl_type *bt = graph_out_type(body, k);
        if (!bt || bt->kind == KL_TYPE_UNKNOWN) {
            KL_TRY(set_seq(c, k, NULL));
            continue;
        }
        kl_type *l = type_new(c, KL_TYPE_UNKNOWN);
        if (!l) return KILN_ERR_NO_MEMORY;
        /* Elements may differ in shape between iterations: keep the rank
         * and the dims the body proves, which it does from its declared
         * input, so they hold for every element. */
        KL_TRY(kl_type_copy(c->arena, bt, l));
        KL_TRY(set_seq(c, k, l));
    }
    return KILN_OK;
}

/* ---- optionals --------------------------------------------------------------- */

/* Optional: optional(input's type) or optional(the `type` attribute). */
static kiln_status infer_optional(kl_infer_ctx *c) {
    const kl_attr *a = kl_node_attr(c->node, "type");
    const kl_type *inner = NULL;
    if (kl_infer_has_input(c, 0)) inner = kl_infer_input_type(c, 0);
    else if (a && a->type == KL_ATTR_TYPE_PROTO) inner = a->tp;
    else
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "needs either an input or a 'type' attribute");
    if (!out_used(c, 0)) return KILN_OK;
    kl_type *t = type_new(c, KL_TYPE_OPTIONAL);
    if (!t) return KILN_ERR_NO_MEMORY;
    if (inner && inner->kind != KL_TYPE_UNKNOWN) {
        t->inner = type_new(c, KL_TYPE_UNKNOWN);
        if (!t->inner) return KILN_ERR_NO_MEMORY;
        KL_TRY(kl_type_copy(c->arena, inner, t->inner));
    }
    return kl_infer_set_output_type(c, 0, t);
}

/* OptionalGetElement: the optional's element type; from opset 18 a tensor
 * or sequence input passes through. */
static kiln_status infer_optional_get_element(kl_infer_ctx *c) {
    const kl_type *t = kl_infer_input_type(c, 0);
    if (!t || t->kind == KL_TYPE_UNKNOWN) return KILN_OK;
    if (t->kind == KL_TYPE_OPTIONAL) return t->inner ? set_type(c, 0, t->inner) : KILN_OK;
    if (c->node->opset >= 18 && (t->kind == KL_TYPE_TENSOR || t->kind == KL_TYPE_SEQUENCE))
        return set_type(c, 0, t);
    char b[128];
    return kl_infer_fail(c, KILN_ERR_TYPE, "input must be an optional%s, not %s",
                         c->node->opset >= 18 ? ", a tensor or a sequence" : "",
                         kl_type_format(t, b, sizeof b));
}

/* OptionalHasElement: a bool scalar. */
static kiln_status infer_optional_has_element(kl_infer_ctx *c) {
    kl_shape scalar = {0, NULL};
    return kl_infer_set_output(c, 0, KILN_DTYPE_BOOL, &scalar);
}

/* ---- schemas ----------------------------------------------------------------- */

static const kl_attr_spec attrs_if[] = {
    {"else_branch", KL_ATTR_GRAPH, true}, {"then_branch", KL_ATTR_GRAPH, true}, {NULL}};
static const kl_attr_spec attrs_body[] = {{"body", KL_ATTR_GRAPH, true}, {NULL}};
static const kl_attr_spec attrs_scan8[] = {{"body", KL_ATTR_GRAPH, true},
                                           {"directions", KL_ATTR_INTS, false},
                                           {"num_scan_inputs", KL_ATTR_INT, true},
                                           {NULL}};
static const kl_attr_spec attrs_scan9[] = {{"body", KL_ATTR_GRAPH, true},
                                           {"num_scan_inputs", KL_ATTR_INT, true},
                                           {"scan_input_axes", KL_ATTR_INTS, false},
                                           {"scan_input_directions", KL_ATTR_INTS, false},
                                           {"scan_output_axes", KL_ATTR_INTS, false},
                                           {"scan_output_directions", KL_ATTR_INTS, false},
                                           {NULL}};
static const kl_attr_spec attrs_none[] = {{NULL}};
static const kl_attr_spec attrs_seq_empty[] = {{"dtype", KL_ATTR_INT, false}, {NULL}};
static const kl_attr_spec attrs_split_to_seq[] = {
    {"axis", KL_ATTR_INT, false}, {"keepdims", KL_ATTR_INT, false}, {NULL}};
static const kl_attr_spec attrs_concat_from_seq[] = {
    {"axis", KL_ATTR_INT, true}, {"new_axis", KL_ATTR_INT, false}, {NULL}};
static const kl_attr_spec attrs_optional[] = {{"type", KL_ATTR_TYPE_PROTO, false}, {NULL}};

/* If, Loop and Scan changed only their type lists after the rows below
 * (If/Loop 11, 13, 16, 19, 21, 23, 24, 25; Scan 11, 16, 19, 21, 23, 24, 25). */
const kl_op_schema kl_ops_control[] = {
    {"", "If", 1, 0, 1, 1, 1, -1, attrs_if, infer_if},
    {"", "Loop", 1, 10, 3, -1, 1, -1, attrs_body, infer_loop},
    {"", "Loop", 11, 0, 2, -1, 1, -1, attrs_body, infer_loop},
    {"", "Scan", 8, 8, 2, -1, 1, -1, attrs_scan8, infer_scan8},
    {"", "Scan", 9, 0, 1, -1, 1, -1, attrs_scan9, infer_scan9},
    {"", "SequenceAt", 11, 0, 2, 2, 1, 1, attrs_none, infer_sequence_at},
    {"", "SequenceConstruct", 11, 0, 1, -1, 1, 1, attrs_none, infer_sequence_construct},
    {"", "SequenceEmpty", 11, 0, 0, 0, 1, 1, attrs_seq_empty, infer_sequence_empty},
    {"", "SequenceInsert", 11, 0, 2, 3, 1, 1, attrs_none, infer_sequence_insert},
    {"", "SequenceErase", 11, 0, 1, 2, 1, 1, attrs_none, infer_sequence_erase},
    {"", "SequenceLength", 11, 0, 1, 1, 1, 1, attrs_none, infer_sequence_length},
    {"", "SequenceMap", 17, 0, 1, -1, 1, -1, attrs_body, infer_sequence_map},
    {"", "SplitToSequence", 11, 0, 1, 2, 1, 1, attrs_split_to_seq, infer_split_to_sequence},
    {"", "ConcatFromSequence", 11, 0, 1, 1, 1, 1, attrs_concat_from_seq,
     infer_concat_from_sequence},
    {"", "Optional", 15, 0, 0, 1, 1, 1, attrs_optional, infer_optional},
    {"", "OptionalGetElement", 15, 17, 1, 1, 1, 1, attrs_none, infer_optional_get_element},
    {"", "OptionalGetElement", 18, 0, 1, 1, 1, 1, attrs_none, infer_optional_get_element},
    {"", "OptionalHasElement", 15, 17, 1, 1, 1, 1, attrs_none, infer_optional_has_element},
    {"", "OptionalHasElement", 18, 0, 0, 1, 1, 1, attrs_none, infer_optional_has_element},
    {NULL},
};
