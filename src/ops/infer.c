/*
 * Shape inference: the context helpers of ops.h and infer_util.h, and the
 * driver that runs every node's schema over a graph (subgraphs first).
 */
#include <stdio.h>
#include <string.h>

#include "ops/infer_util.h"

/* Subgraph nesting the driver follows (the parser already bounds it). */
#define KL_INFER_MAX_DEPTH 64

/* ---- inputs ------------------------------------------------------------------- */

size_t kl_infer_n_inputs(const kl_infer_ctx *c) { return c->node->n_inputs; }

size_t kl_infer_n_outputs(const kl_infer_ctx *c) { return c->node->n_outputs; }

bool kl_infer_has_input(const kl_infer_ctx *c, size_t i) {
    return i < c->node->n_inputs && c->node->inputs[i] != NULL;
}

/* The value of input i, or NULL when omitted. */
static kl_value *infer_in(const kl_infer_ctx *c, size_t i) {
    return kl_infer_has_input(c, i) ? c->node->inputs[i] : NULL;
}

/* The value of output i, or NULL when omitted. */
static kl_value *infer_out(const kl_infer_ctx *c, size_t i) {
    return i < c->node->n_outputs ? c->node->outputs[i] : NULL;
}

/* Give an initializer whose type nobody set the type of its data. */
static void infer_type_from_init(const kl_infer_ctx *c, kl_value *v) {
    const kl_tensor *t = v->init;
    if (v->type.kind != KL_TYPE_UNKNOWN || !t || t->rank < 0 || t->rank > KILN_MAX_RANK) return;
    kl_dim *dims = NULL;
    if (t->rank > 0) {
        dims = kl_arena_array(c->arena, (size_t)t->rank, sizeof *dims);
        if (!dims) {
            kl_error_clear();
            return;
        }
        for (int k = 0; k < t->rank; k++) dims[k] = kl_dim_known(t->dims[k]);
    }
    v->type.kind = KL_TYPE_TENSOR;
    v->type.elem = t->dtype;
    v->type.shape.rank = t->rank;
    v->type.shape.dims = dims;
}

const kl_type *kl_infer_input_type(const kl_infer_ctx *c, size_t i) {
    kl_value *v = infer_in(c, i);
    if (!v) return NULL;
    infer_type_from_init(c, v);
    return &v->type;
}

const kl_shape *kl_infer_input_shape(const kl_infer_ctx *c, size_t i) {
    const kl_type *t = kl_infer_input_type(c, i);
    if (!t || (t->kind != KL_TYPE_TENSOR && t->kind != KL_TYPE_SPARSE_TENSOR)) return NULL;
    return t->shape.rank < 0 ? NULL : &t->shape;
}

kiln_dtype kl_infer_input_dtype(const kl_infer_ctx *c, size_t i) {
    const kl_type *t = kl_infer_input_type(c, i);
    if (!t || (t->kind != KL_TYPE_TENSOR && t->kind != KL_TYPE_SPARSE_TENSOR))
        return KILN_DTYPE_UNDEFINED;
    return t->elem;
}

/* A rank-0/1 tensor over attribute storage `data` (no copy). */
static const kl_tensor *infer_attr_tensor(const kl_infer_ctx *c, kiln_dtype dtype, int rank,
                                          int64_t count, const void *data, size_t elem) {
    kl_tensor *t = kl_arena_alloc(c->arena, sizeof *t);
    int64_t *dims = kl_arena_alloc(c->arena, sizeof *dims);
    if (!t || !dims) {
        kl_error_clear();
        return NULL;
    }
    dims[0] = count;
    t->name = "";
    t->dtype = dtype;
    t->rank = rank;
    t->dims = dims;
    t->count = count;
    t->nbytes = (size_t)count * elem;
    t->data = t->nbytes ? data : NULL;
    return t;
}

const kl_tensor *kl_infer_input_const(const kl_infer_ctx *c, size_t i) {
    kl_value *v = infer_in(c, i);
    if (!v) return NULL;
    if (v->init) return v->init;
    const kl_node *n = v->producer;
    if (!n || v->producer_output != 0 || !n->op_type || strcmp(n->op_type, "Constant") != 0 ||
        (n->domain && n->domain[0]))
        return NULL;
    for (size_t k = 0; k < n->n_attrs; k++) {
        const kl_attr *a = &n->attrs[k];
        if (!a->name) continue;
        if (strcmp(a->name, "value") == 0 && a->type == KL_ATTR_TENSOR) return a->t;
        if (strcmp(a->name, "value_float") == 0 && a->type == KL_ATTR_FLOAT)
            return infer_attr_tensor(c, KILN_DTYPE_FLOAT, 0, 1, &a->f, sizeof a->f);
        if (strcmp(a->name, "value_int") == 0 && a->type == KL_ATTR_INT)
            return infer_attr_tensor(c, KILN_DTYPE_INT64, 0, 1, &a->i, sizeof a->i);
        if (strcmp(a->name, "value_floats") == 0 && a->type == KL_ATTR_FLOATS)
            return infer_attr_tensor(c, KILN_DTYPE_FLOAT, 1, (int64_t)a->n, a->floats,
                                     sizeof(float));
        if (strcmp(a->name, "value_ints") == 0 && a->type == KL_ATTR_INTS)
            return infer_attr_tensor(c, KILN_DTYPE_INT64, 1, (int64_t)a->n, a->ints,
                                     sizeof(int64_t));
    }
    return NULL;
}

bool kl_infer_input_ints(const kl_infer_ctx *c, size_t i, int64_t *vals, int64_t max,
                         int64_t *count) {
    const kl_tensor *t = kl_infer_input_const(c, i);
    if (!t || t->count < 0 || t->count > max) return false;
    if (!kl_tensor_to_i64(t, vals, max)) return false;
    *count = t->count;
    return true;
}

const kl_symval *kl_infer_input_sym(const kl_infer_ctx *c, size_t i) {
    kl_value *v = infer_in(c, i);
    if (!v) return NULL;
    if (v->sym) return v->sym;
    const kl_tensor *t = kl_infer_input_const(c, i);
    int64_t vals[KL_SYMVAL_MAX];
    if (!t || t->rank > 1 || t->count > KL_SYMVAL_MAX || !kl_dtype_is_integer(t->dtype) ||
        !kl_tensor_to_i64(t, vals, KL_SYMVAL_MAX))
        return NULL;
    kl_symval *s = kl_arena_alloc(c->arena, sizeof *s);
    kl_dim *d = kl_arena_array(c->arena, (size_t)(t->count ? t->count : 1), sizeof *d);
    if (!s || !d) {
        kl_error_clear();
        return NULL;
    }
    for (int64_t k = 0; k < t->count; k++) d[k] = kl_dim_known(vals[k]);
    s->rank = t->rank;
    s->count = t->count;
    s->v = d;
    v->sym = s;
    return s;
}

/* ---- errors and axes --------------------------------------------------------------- */

kiln_status kl_infer_fail(kl_infer_ctx *c, kiln_status status, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return kl_errorf(status, "node '%s' (%s): %s", kl_node_label(c->node),
                     c->node->op_type ? c->node->op_type : "?", msg);
}

bool kl_infer_axis(int64_t axis, int rank, int *out) {
    if (rank < 0 || axis < -(int64_t)rank || axis >= rank) return false;
    *out = (int)(axis < 0 ? axis + rank : axis);
    return true;
}

kiln_status kl_infer_attr_axis(kl_infer_ctx *c, const char *name, int64_t dflt, int rank,
                               int *out) {
    int64_t axis = kl_node_attr_int(c->node, name, dflt);
    if (rank < 0) {
        if (axis < -KILN_MAX_RANK || axis > KILN_MAX_RANK)
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "attribute '%s' = %lld is out of range",
                                 name, (long long)axis);
        *out = (int)axis;
        return KILN_OK;
    }
    if (!kl_infer_axis(axis, rank, out))
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "attribute '%s' = %lld is out of range for an input of rank %d",
                             name, (long long)axis, rank);
    return KILN_OK;
}

kiln_dtype kl_infer_dtype_from_attr(int64_t to) {
    if (to <= 0 || to >= KILN_DTYPE_COUNT || !kl_dtype_valid((int32_t)to))
        return KILN_DTYPE_UNDEFINED;
    return (kiln_dtype)to;
}

/* ---- shapes ------------------------------------------------------------------------ */

kiln_status kl_infer_shape_new(kl_infer_ctx *c, int rank, kl_shape *out) {
    if (rank < 0) {
        out->rank = -1;
        out->dims = NULL;
        return KILN_OK;
    }
    if (rank > KILN_MAX_RANK)
        return kl_infer_fail(c, KILN_ERR_UNSUPPORTED,
                             "output rank %d is larger than kiln's limit of %d", rank,
                             KILN_MAX_RANK);
    kl_dim *d = NULL;
    if (rank > 0) {
        d = kl_arena_array(c->arena, (size_t)rank, sizeof *d);
        if (!d) return KILN_ERR_NO_MEMORY;
        for (int k = 0; k < rank; k++) d[k] = kl_dim_unknown();
    }
    out->rank = rank;
    out->dims = d;
    return KILN_OK;
}

kiln_status kl_infer_shape_copy(kl_infer_ctx *c, const kl_shape *src, kl_shape *dst) {
    kl_shape s;
    KL_TRY(kl_infer_shape_new(c, src ? src->rank : -1, &s));
    if (s.rank > 0) memcpy(s.dims, src->dims, (size_t)s.rank * sizeof *s.dims);
    *dst = s;
    return KILN_OK;
}

/* Broadcast one dimension pair; false when they cannot broadcast. */
static bool infer_bcast_dim(const kl_dim *a, const kl_dim *b, kl_dim *out) {
    if (a->value >= 0 && b->value >= 0) {
        if (a->value == b->value || b->value == 1) *out = *a;
        else if (a->value == 1) *out = *b;
        else return false;
    } else if (a->value >= 0) {
        *out = a->value == 1 ? *b : *a; /* the other must be 1 or equal */
    } else if (b->value >= 0) {
        *out = b->value == 1 ? *a : *b;
    } else if (a->param && b->param && strcmp(a->param, b->param) == 0) {
        *out = *a;
    } else {
        *out = kl_dim_unknown();
    }
    return true;
}

kiln_status kl_infer_broadcast(kl_infer_ctx *c, const kl_shape *a, const kl_shape *b,
                               kl_shape *out) {
    if (!a || !b || a->rank < 0 || b->rank < 0) {
        out->rank = -1;
        out->dims = NULL;
        return KILN_OK;
    }
    int rank = KL_MAX(a->rank, b->rank);
    kl_shape s;
    KL_TRY(kl_infer_shape_new(c, rank, &s));
    for (int k = 0; k < rank; k++) {
        int ia = k - (rank - a->rank), ib = k - (rank - b->rank);
        kl_dim one = kl_dim_known(1);
        const kl_dim *da = ia >= 0 ? &a->dims[ia] : &one, *db = ib >= 0 ? &b->dims[ib] : &one;
        if (!infer_bcast_dim(da, db, &s.dims[k])) {
            char sa[256], sb[256];
            return kl_infer_fail(c, KILN_ERR_SHAPE,
                                 "input shapes %s and %s cannot be broadcast (%lld vs %lld)",
                                 kl_shape_format(a, sa, sizeof sa),
                                 kl_shape_format(b, sb, sizeof sb), (long long)da->value,
                                 (long long)db->value);
        }
    }
    *out = s;
    return KILN_OK;
}

kiln_status kl_infer_broadcast_inputs(kl_infer_ctx *c, size_t first, size_t count,
                                      kl_shape *out) {
    kl_shape acc = {0, NULL};
    bool unknown = false, any = false;
    for (size_t i = first; i < first + count && i < kl_infer_n_inputs(c); i++) {
        if (!kl_infer_has_input(c, i)) continue;
        const kl_shape *s = kl_infer_input_shape(c, i);
        if (!s) {
            unknown = true;
            continue;
        }
        if (!any) KL_TRY(kl_infer_shape_copy(c, s, &acc));
        else KL_TRY(kl_infer_broadcast(c, &acc, s, &acc));
        any = true;
    }
    if (unknown || !any) {
        out->rank = -1;
        out->dims = NULL;
    } else {
        *out = acc;
    }
    return KILN_OK;
}

kiln_status kl_infer_shape_merge(kl_infer_ctx *c, const kl_shape *a, const kl_shape *b,
                                 const char *what, kl_shape *out) {
    if (!a || a->rank < 0) return kl_infer_shape_copy(c, b, out);
    if (!b || b->rank < 0) return kl_infer_shape_copy(c, a, out);
    char sa[256], sb[256];
    if (a->rank != b->rank)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "%s have different shapes %s and %s", what,
                             kl_shape_format(a, sa, sizeof sa), kl_shape_format(b, sb, sizeof sb));
    kl_shape s;
    KL_TRY(kl_infer_shape_new(c, a->rank, &s));
    for (int k = 0; k < a->rank; k++) {
        const kl_dim *da = &a->dims[k], *db = &b->dims[k];
        if (da->value >= 0 && db->value >= 0 && da->value != db->value)
            return kl_infer_fail(c, KILN_ERR_SHAPE, "%s have different shapes %s and %s", what,
                                 kl_shape_format(a, sa, sizeof sa),
                                 kl_shape_format(b, sb, sizeof sb));
        s.dims[k] = (da->value >= 0 || (db->value < 0 && da->param)) ? *da : *db;
    }
    *out = s;
    return KILN_OK;
}

/* ---- outputs ------------------------------------------------------------------------ */

/* Error for output i: "node 'n' (Op): output 0 'y': <message>". */
static kiln_status infer_out_fail(kl_infer_ctx *c, size_t i, kiln_status st, const char *what,
                                  const char *inferred, const char *declared) {
    const kl_value *v = infer_out(c, i);
    return kl_infer_fail(c, st, "output %zu '%s': inferred %s %s but the %s %s", i, v && v->name ? v->name : "",
                         what, inferred, v && (v->flags & KL_VALUE_DECLARED) ? "model declares" : "graph had",
                         declared);
}

/* Merge an inferred shape `inf` with the declared `dec` into *out. */
static kiln_status infer_merge_shape(kl_infer_ctx *c, size_t i, const kl_shape *inf,
                                     const kl_shape *dec, kl_shape *out) {
    if (inf->rank < 0) return kl_infer_shape_copy(c, dec, out);
    if (dec->rank < 0) return kl_infer_shape_copy(c, inf, out);
    char si[256], sd[256];
    bool conflict = inf->rank != dec->rank;
    for (int k = 0; !conflict && k < inf->rank; k++)
        conflict = inf->dims[k].value >= 0 && dec->dims[k].value >= 0 &&
                   inf->dims[k].value != dec->dims[k].value;
    if (conflict)
        return infer_out_fail(c, i, KILN_ERR_SHAPE, "shape", kl_shape_format(inf, si, sizeof si),
                              kl_shape_format(dec, sd, sizeof sd));
    kl_shape s;
    KL_TRY(kl_infer_shape_new(c, inf->rank, &s));
    for (int k = 0; k < inf->rank; k++) {
        const kl_dim *di = &inf->dims[k], *dd = &dec->dims[k];
        if (dd->value >= 0) s.dims[k] = *dd;
        else if (di->value >= 0) s.dims[k] = *di;
        else s.dims[k] = dd->param ? *dd : *di;
    }
    *out = s;
    return KILN_OK;
}

/* Merge inferred type `inf` with declared `dec` into *out (arena). */
static kiln_status infer_merge_type(kl_infer_ctx *c, size_t i, const kl_type *inf,
                                    const kl_type *dec, kl_type *out, int depth) {
    char si[256], sd[256];
    if (!inf || inf->kind == KL_TYPE_UNKNOWN)
        return dec ? kl_type_copy(c->arena, dec, out) : KILN_OK;
    if (!dec || dec->kind == KL_TYPE_UNKNOWN || depth > KL_INFER_MAX_DEPTH)
        return kl_type_copy(c->arena, inf, out);
    bool elem_conflict = inf->elem != KILN_DTYPE_UNDEFINED && dec->elem != KILN_DTYPE_UNDEFINED &&
                         inf->elem != dec->elem;
    if (inf->kind != dec->kind || (inf->kind != KL_TYPE_SEQUENCE &&
                                   inf->kind != KL_TYPE_OPTIONAL && elem_conflict))
        return infer_out_fail(c, i, KILN_ERR_TYPE, "type", kl_type_format(inf, si, sizeof si),
                              kl_type_format(dec, sd, sizeof sd));
    memset(out, 0, sizeof *out);
    out->kind = inf->kind;
    out->elem = inf->elem != KILN_DTYPE_UNDEFINED ? inf->elem : dec->elem;
    out->shape.rank = -1;
    if (inf->kind == KL_TYPE_TENSOR || inf->kind == KL_TYPE_SPARSE_TENSOR)
        KL_TRY(infer_merge_shape(c, i, &inf->shape, &dec->shape, &out->shape));
    if (inf->inner || dec->inner) {
        kl_type *inner = kl_arena_alloc(c->arena, sizeof *inner);
        if (!inner) return KILN_ERR_NO_MEMORY;
        KL_TRY(infer_merge_type(c, i, inf->inner, dec->inner, inner, depth + 1));
        out->inner = inner;
    }
    return KILN_OK;
}

kiln_status kl_infer_set_output_type(kl_infer_ctx *c, size_t i, const kl_type *type) {
    kl_value *v = infer_out(c, i);
    if (!v || !type || type->kind == KL_TYPE_UNKNOWN) return KILN_OK;
    kl_type t;
    if ((v->flags & KL_VALUE_DECLARED) || c->refine) KL_TRY(infer_merge_type(c, i, type, &v->type, &t, 0));
    else KL_TRY(kl_type_copy(c->arena, type, &t));
    v->type = t;
    v->flags |= KL_VALUE_INFERRED;
    return KILN_OK;
}

kiln_status kl_infer_set_output(kl_infer_ctx *c, size_t i, kiln_dtype dtype,
                                const kl_shape *shape) {
    kl_type t;
    memset(&t, 0, sizeof t);
    t.kind = KL_TYPE_TENSOR;
    t.elem = dtype;
    t.shape.rank = -1;
    if (shape) t.shape = *shape;
    return kl_infer_set_output_type(c, i, &t);
}

kiln_status kl_infer_symval_new(kl_infer_ctx *c, int rank, int64_t count, kl_symval *out) {
    if (count < 0 || count > KL_SYMVAL_MAX || rank < 0 || rank > 1 || (rank == 0 && count != 1))
        return kl_errorf(KILN_ERR_INTERNAL, "symbolic value of rank %d with %lld elements", rank,
                         (long long)count);
    kl_dim *d = kl_arena_array(c->arena, (size_t)(count ? count : 1), sizeof *d);
    if (!d) return KILN_ERR_NO_MEMORY;
    for (int64_t k = 0; k < count; k++) d[k] = kl_symdim_none();
    out->rank = rank;
    out->count = count;
    out->v = d;
    return KILN_OK;
}

kiln_status kl_infer_set_output_sym(kl_infer_ctx *c, size_t i, const kl_symval *sym) {
    kl_value *v = infer_out(c, i);
    if (!v || !sym) return KILN_OK;
    kl_symval *s = kl_arena_alloc(c->arena, sizeof *s);
    if (!s) return KILN_ERR_NO_MEMORY;
    KL_TRY(kl_infer_symval_new(c, sym->rank, sym->count, s));
    if (sym->count) memcpy(s->v, sym->v, (size_t)sym->count * sizeof *s->v);
    v->sym = s;
    return KILN_OK;
}

/* ---- common infer functions ------------------------------------------------------------- */

kiln_status kl_infer_copy_type(kl_infer_ctx *c, size_t out, size_t in) {
    const kl_type *t = kl_infer_input_type(c, in);
    return t ? kl_infer_set_output_type(c, out, t) : KILN_OK;
}

kiln_status kl_infer_unary_as(kl_infer_ctx *c, kiln_dtype dtype) {
    return kl_infer_set_output(c, 0, dtype, kl_infer_input_shape(c, 0));
}

kiln_status kl_infer_unary(kl_infer_ctx *c) {
    return kl_infer_unary_as(c, kl_infer_input_dtype(c, 0));
}

/* ---- driver -------------------------------------------------------------------------------- */

/* Infer one graph at nesting `depth`, subgraphs of each node first. */
static kiln_status infer_graph(kl_model *m, kl_graph *g, int depth, bool refine) {
    if (!g || depth > KL_INFER_MAX_DEPTH) return KILN_OK;
    for (size_t k = 0; k < g->n_nodes; k++) {
        kl_node *n = g->nodes[k];
        if (!n) continue;
        for (size_t a = 0; a < n->n_attrs; a++) {
            const kl_attr *at = &n->attrs[a];
            if (at->type == KL_ATTR_GRAPH && at->g) KL_TRY(infer_graph(m, at->g, depth + 1, refine));
            if (at->type == KL_ATTR_GRAPHS && at->graphs)
                for (size_t j = 0; j < at->n; j++) KL_TRY(infer_graph(m, at->graphs[j], depth + 1, refine));
        }
        if (!n->schema || !n->schema->infer) continue;
        kl_infer_ctx c = {m, g, n, &m->arena, refine};
        kiln_status st = n->schema->infer(&c);
        if (st == KILN_ERR_NO_MEMORY) return st;
        if (st != KILN_OK) {
            int64_t idx = g->depth == 0 && g->parent == NULL ? (int64_t)n->index : -1;
            /* Inside an If branch the node may never run for the inputs the
             * model gets (a 2-D branch of a 3-D model): a warning, not an error. */
            bool in_branch = false;
            for (const kl_graph *p = g; p && p->owner; p = p->parent)
                in_branch |= strcmp(p->owner->op_type, "If") == 0;
            KL_TRY(kl_model_problem(m, in_branch ? KILN_CHECK_WARNING : KILN_CHECK_ERROR, idx, "%s%s",
                                    kl_error_message(), in_branch ? " (in an If branch)" : ""));
            kl_error_clear();
        }
    }
    return KILN_OK;
}

kiln_status kl_infer_graph(kl_model *m, kl_graph *g) { return infer_graph(m, g, 0, false); }

kiln_status kl_infer_graph_refine(kl_model *m, kl_graph *g) { return infer_graph(m, g, 0, true); }
