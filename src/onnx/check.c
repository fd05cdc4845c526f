/*
 * check.c — the ONNX model checker: what onnx.checker.check_model checks
 * (IR and opset versions, SSA names, topological order, attributes against
 * the op schemas, initializer sizes, typed graph inputs/outputs, subgraphs)
 * and a bit more (sparse indices, initializers against their declared
 * types), plus the list of operators kiln cannot run yet.  Which ops can run
 * is asked through the caller's kl_check_caps, so onnx/ never depends on a
 * backend.
 *
 * The checker reads the IR only: it never fails on a broken model, it
 * records a problem naming the node (index, name, op type) or the value.
 * Problems the reader already records (duplicate names, untyped graph
 * inputs/outputs, data sizes that do not fit the dims, conflicting opset
 * imports) reach the result through m->problems and are not repeated.
 */
#include <stdio.h>
#include <string.h>

#include "onnx/onnx.h"
#include "ops/ops.h"

#define KL_CHECK_MAX_IR_VERSION 14 /* 14 (onnx 1.23): TypeProto.Opaque outside ONNX-ML builds too */
#define KL_CHECK_MAX_ONNX_OPSET 28
#define KL_CHECK_MAX_ML_OPSET 5
#define KL_CHECK_MAX_TRAINING_OPSET 1
#define KL_CHECK_MAX_DEPTH 64 /* the parser stops at KL_ONNX_MAX_GRAPH_DEPTH */

/* One (domain, op, opset) used by the model, for the "cannot run yet" list. */
typedef struct op_use {
    const char *domain, *op;
    int64_t opset;
    bool has_schema;
    size_t count;
    int64_t first_index;      /* main-graph index of the first user */
    const char *first_desc;   /* description of the first user */
} op_use;

typedef struct checker {
    const kl_model *m;
    kl_check_result *r;
    kl_strmap op_keys; /* "domain\x1fop\x1fopset" -> op_use */
    kl_ptrvec ops;     /* op_use*, in order of first use */
    const kl_check_caps *caps; /* NULL: every op with a schema counts as runnable */
} checker;

/* Whether the caller can run (domain, op, opset); true when it gave no
 * capability callback. */
static bool can_run(const checker *c, const char *domain, const char *op, int64_t opset) {
    if (!c->caps || !c->caps->can_run) return true;
    return c->caps->can_run(domain, op, opset, c->caps->user);
}

/* ---- recording problems ---------------------------------------------------- */

/* Format into the result's arena; NULL when out of memory. */
static char *vformat(kl_arena *a, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (len < 0) len = 0;
    char *s = kl_arena_alloc(a, (size_t)len + 1);
    if (s) vsnprintf(s, (size_t)len + 1, fmt, ap);
    return s;
}

/* printf into arena `a`; NULL when out of memory. */
static char *format(kl_arena *a, const char *fmt, ...) KL_PRINTF(2, 3);
static char *format(kl_arena *a, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(a, fmt, ap);
    va_end(ap);
    return s;
}

/* Append a problem whose message is already in the result's arena. */
static kiln_status push(kl_check_result *r, kiln_check_severity sev, int64_t node_index,
                        const char *msg) {
    if (!msg) return KILN_ERR_NO_MEMORY;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        kl_problem *items = kl_realloc_array(r->items, cap, sizeof(*items));
        if (!items) return KILN_ERR_NO_MEMORY;
        r->items = items;
        r->cap = cap;
    }
    r->items[r->n++] = (kl_problem){.severity = sev, .node_index = node_index, .message = msg};
    if (sev == KILN_CHECK_ERROR) r->n_errors++;
    return KILN_OK;
}

/* Record a problem with a formatted message. */
static kiln_status add(checker *c, kiln_check_severity sev, int64_t node_index,
                       const char *fmt, ...) KL_PRINTF(4, 5);
static kiln_status add(checker *c, kiln_check_severity sev, int64_t node_index,
                       const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(&c->r->arena, fmt, ap);
    va_end(ap);
    return push(c->r, sev, node_index, msg);
}

/* ---- descriptions ------------------------------------------------------------ */

/* Display name of a domain: "ai.onnx" for the default one. */
static const char *domain_name(const char *domain) {
    return (!domain || !*domain) ? "ai.onnx" : domain;
}

/* True for the default domain, however it is written. */
static bool is_onnx_domain(const char *domain) {
    return !domain || !*domain || strcmp(domain, "ai.onnx") == 0;
}

/* Index in the main graph of the node that is `n` or contains n's graph. */
static int64_t top_index(const kl_node *n) {
    while (n && n->graph && n->graph->parent && n->graph->owner) n = n->graph->owner;
    return n ? (int64_t)n->index : -1;
}

/* "<prefix>node 3 'conv1' (Conv)"; custom domains as "(com.x:Op)". */
static const char *node_desc(checker *c, const char *prefix, const kl_node *n) {
    const char *name = n->name ? n->name : "";
    const char *op = n->op_type ? n->op_type : "";
    const char *dom = is_onnx_domain(n->domain) ? "" : n->domain;
    const char *sep = *dom ? ":" : "";
    if (*name)
        return format(&c->r->arena, "%snode %zu '%s' (%s%s%s)", prefix, n->index, name, dom,
                      sep, op);
    return format(&c->r->arena, "%snode %zu (%s%s%s)", prefix, n->index, dom, sep, op);
}

/* "FLOAT", "INTS", ... as in AttributeProto.AttributeType. */
static const char *attr_type_name(kl_attr_type t) {
    static const char *names[] = {"UNDEFINED", "FLOAT",   "INT",     "STRING",
                                  "TENSOR",    "GRAPH",   "FLOATS",  "INTS",
                                  "STRINGS",   "TENSORS", "GRAPHS",  "SPARSE_TENSOR",
                                  "SPARSE_TENSORS", "TYPE_PROTO", "TYPE_PROTOS"};
    return (unsigned)t < KL_ARRAY_LEN(names) ? names[t] : "unknown";
}

/* "[2,3]" for a tensor's dims, into buf. */
static const char *dims_str(const int64_t *dims, int rank, char *buf, size_t size) {
    size_t len = 0;
    buf[0] = 0;
    len += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < rank && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, i ? ",%lld" : "%lld", (long long)dims[i]);
    if (len < size) snprintf(buf + len, size - len, "]");
    return buf;
}

/* ---- model level -------------------------------------------------------------- */

/* IR version and opset imports of the model. */
static kiln_status check_versions(checker *c) {
    const kl_model *m = c->m;
    if (m->ir_version <= 0) {
        KL_TRY(add(c, KILN_CHECK_ERROR, -1,
                   "model: ir_version is not set (ModelProto field 1); kiln knows IR versions 1..%d",
                   KL_CHECK_MAX_IR_VERSION));
    } else if (m->ir_version > KL_CHECK_MAX_IR_VERSION) {
        KL_TRY(add(c, KILN_CHECK_ERROR, -1,
                   "model: unknown IR version %lld (kiln knows IR versions 1..%d)",
                   (long long)m->ir_version, KL_CHECK_MAX_IR_VERSION));
    }
    if (m->ir_version >= 3 && m->n_opsets == 0)
        KL_TRY(add(c, KILN_CHECK_ERROR, -1,
                   "model: opset_import is missing (required from IR version 3; the model has IR "
                   "version %lld)",
                   (long long)m->ir_version));
    if (m->ir_version > 0 && m->ir_version < 3 && m->n_opsets > 0)
        KL_TRY(add(c, KILN_CHECK_ERROR, -1,
                   "model: IR version %lld cannot have opset_import (introduced in IR version 3)",
                   (long long)m->ir_version));
    for (size_t i = 0; i < m->n_opsets; i++) {
        const kl_opset *o = &m->opsets[i];
        const char *d = domain_name(o->domain);
        if (o->version < 1) {
            KL_TRY(add(c, KILN_CHECK_ERROR, -1,
                       "model: opset_import of domain '%s' has invalid version %lld", d,
                       (long long)o->version));
        } else if (is_onnx_domain(o->domain) && o->version > KL_CHECK_MAX_ONNX_OPSET) {
            KL_TRY(add(c, KILN_CHECK_ERROR, -1,
                       "model: unknown opset version %lld of domain 'ai.onnx' (kiln knows 1..%d)",
                       (long long)o->version, KL_CHECK_MAX_ONNX_OPSET));
        } else if (strcmp(d, "ai.onnx.ml") == 0 && o->version > KL_CHECK_MAX_ML_OPSET) {
            KL_TRY(add(c, KILN_CHECK_WARNING, -1,
                       "model: unknown opset version %lld of domain 'ai.onnx.ml' (kiln knows 1..%d)",
                       (long long)o->version, KL_CHECK_MAX_ML_OPSET));
        } else if (strcmp(d, "ai.onnx.preview.training") == 0 &&
                   o->version > KL_CHECK_MAX_TRAINING_OPSET) {
            KL_TRY(add(c, KILN_CHECK_WARNING, -1,
                       "model: unknown opset version %lld of domain 'ai.onnx.preview.training' "
                       "(kiln knows 1..%d)",
                       (long long)o->version, KL_CHECK_MAX_TRAINING_OPSET));
        }
    }
    return KILN_OK;
}

/* ---- tensors ---------------------------------------------------------------- */

/* Dims, dtype and data length of a constant tensor; `what` names it. */
static kiln_status check_tensor(checker *c, int64_t ni, const char *what, const kl_tensor *t) {
    char buf[256];
    if (t->dtype == KILN_DTYPE_UNDEFINED || !kl_dtype_valid((int32_t)t->dtype))
        return add(c, KILN_CHECK_ERROR, ni, "%s has unknown data type %d", what, (int)t->dtype);
    if (t->rank < 0 || t->rank > KILN_MAX_RANK)
        return add(c, KILN_CHECK_ERROR, ni, "%s has rank %d (kiln allows 0..%d)", what, t->rank,
                   KILN_MAX_RANK);
    if (t->rank > 0 && !t->dims) return add(c, KILN_CHECK_ERROR, ni, "%s has no dims", what);
    int64_t count = 1;
    bool overflow = false;
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] < 0)
            return add(c, KILN_CHECK_ERROR, ni, "%s has negative dimension %d (%lld) in dims %s",
                       what, i, (long long)t->dims[i], dims_str(t->dims, t->rank, buf, sizeof buf));
        if (!overflow && kl_mul_i64(count, t->dims[i], &count)) overflow = true;
    }
    dims_str(t->dims, t->rank, buf, sizeof buf);
    if (overflow)
        return add(c, KILN_CHECK_ERROR, ni, "%s: element count of dims %s overflows", what, buf);
    if (count != t->count)
        return add(c, KILN_CHECK_ERROR, ni, "%s has %lld elements, but dims %s say %lld", what,
                   (long long)t->count, buf, (long long)count);
    if (t->dtype == KILN_DTYPE_STRING) {
        return KILN_OK; /* the reader reports a string count that does not fit */
    }
    size_t want;
    if (!kl_dtype_nbytes(t->dtype, count, &want))
        return add(c, KILN_CHECK_ERROR, ni, "%s: byte size of dims %s overflows", what, buf);
    if (want > 0 && !t->data && t->nbytes == 0) return KILN_OK; /* dropped: the reader said why */
    if (t->nbytes != want)
        return add(c, KILN_CHECK_ERROR, ni,
                   "%s has %zu bytes of data, but dims %s of %s need %zu bytes", what, t->nbytes,
                   buf, kiln_dtype_name(t->dtype), want);
    return KILN_OK;
}

/* A sparse constant: its values and indices, and every index in range
 * and in increasing order (as onnx.checker requires). */
static kiln_status check_sparse(checker *c, int64_t ni, const char *what, const kl_sparse *s) {
    char buf[256];
    if (!s->values || !s->indices)
        return add(c, KILN_CHECK_ERROR, ni, "sparse %s has no %s", what,
                   s->values ? "indices" : "values");
    if (s->rank < 0 || s->rank > KILN_MAX_RANK || (s->rank > 0 && !s->dims))
        return add(c, KILN_CHECK_ERROR, ni, "sparse %s has invalid rank %d", what, s->rank);
    int64_t dense = 1;
    for (int i = 0; i < s->rank; i++) {
        if (s->dims[i] < 0)
            return add(c, KILN_CHECK_ERROR, ni, "sparse %s has negative dimension %d (%lld)",
                       what, i, (long long)s->dims[i]);
        if (kl_mul_i64(dense, s->dims[i], &dense))
            return add(c, KILN_CHECK_ERROR, ni, "sparse %s: element count overflows", what);
    }
    const char *vwhat = format(&c->r->arena, "values of sparse %s", what);
    const char *iwhat = format(&c->r->arena, "indices of sparse %s", what);
    if (!vwhat || !iwhat) return KILN_ERR_NO_MEMORY;
    size_t before = c->r->n;
    KL_TRY(check_tensor(c, ni, vwhat, s->values));
    KL_TRY(check_tensor(c, ni, iwhat, s->indices));
    if (c->r->n != before) return KILN_OK;
    const kl_tensor *v = s->values, *ix = s->indices;
    if (v->rank != 1)
        return add(c, KILN_CHECK_ERROR, ni, "sparse %s: values must have rank 1, not %d", what,
                   v->rank);
    int64_t nnz = v->dims[0];
    if (ix->dtype != KILN_DTYPE_INT64)
        return add(c, KILN_CHECK_ERROR, ni, "sparse %s: indices must be int64, not %s", what,
                   kiln_dtype_name(ix->dtype));
    const uint8_t *p = ix->data;
    if (ix->rank == 1 && ix->dims[0] == nnz) {
        int64_t prev = -1;
        for (int64_t k = 0; k < nnz; k++) {
            int64_t idx;
            memcpy(&idx, p + (size_t)k * 8, 8);
            if (idx < 0 || idx >= dense)
                return add(c, KILN_CHECK_ERROR, ni,
                           "sparse %s: index %lld at position %lld is out of range [0, %lld)",
                           what, (long long)idx, (long long)k, (long long)dense);
            if (idx <= prev)
                return add(c, KILN_CHECK_ERROR, ni,
                           "sparse %s: index %lld at position %lld is not in increasing order",
                           what, (long long)idx, (long long)k);
            prev = idx;
        }
        return KILN_OK;
    }
    if (ix->rank == 2 && ix->dims[0] == nnz && ix->dims[1] == s->rank) {
        int64_t prev = -1;
        for (int64_t k = 0; k < nnz; k++) {
            int64_t lin = 0;
            for (int d = 0; d < s->rank; d++) {
                int64_t idx;
                memcpy(&idx, p + ((size_t)k * (size_t)s->rank + (size_t)d) * 8, 8);
                if (idx < 0 || idx >= s->dims[d])
                    return add(c, KILN_CHECK_ERROR, ni,
                               "sparse %s: index %lld of dimension %d at position %lld is out of "
                               "range [0, %lld)",
                               what, (long long)idx, d, (long long)k, (long long)s->dims[d]);
                lin = lin * s->dims[d] + idx; /* < dense: no overflow */
            }
            if (lin <= prev)
                return add(c, KILN_CHECK_ERROR, ni,
                           "sparse %s: indices at position %lld are not in increasing order",
                           what, (long long)k);
            prev = lin;
        }
        return KILN_OK;
    }
    return add(c, KILN_CHECK_ERROR, ni,
               "sparse %s: indices have dims %s, expected [%lld] or [%lld,%d]", what,
               dims_str(ix->dims, ix->rank, buf, sizeof buf), (long long)nnz, (long long)nnz,
               s->rank);
}

/* An initializer against the type its graph input declares. */
static kiln_status check_init_type(checker *c, const char *what, const kl_value *v) {
    const kl_tensor *t = v->init;
    if (!t || !(v->flags & KL_VALUE_DECLARED) || v->type.kind != KL_TYPE_TENSOR) return KILN_OK;
    char b1[256], b2[256];
    if (v->type.elem != KILN_DTYPE_UNDEFINED && v->type.elem != t->dtype)
        return add(c, KILN_CHECK_ERROR, -1, "%s has element type %s, but its declared type is %s",
                   what, kiln_dtype_name(t->dtype), kl_type_format(&v->type, b1, sizeof b1));
    const kl_shape *s = &v->type.shape;
    if (s->rank < 0) return KILN_OK;
    bool bad = s->rank != t->rank;
    for (int i = 0; !bad && i < s->rank; i++)
        bad = s->dims[i].value >= 0 && s->dims[i].value != t->dims[i];
    if (bad)
        return add(c, KILN_CHECK_ERROR, -1, "%s has dims %s, but its declared shape is %s", what,
                   dims_str(t->dims, t->rank, b1, sizeof b1), kl_shape_format(s, b2, sizeof b2));
    return KILN_OK;
}

/* ---- operators ---------------------------------------------------------------- */

/* Count a use of (domain, op, opset) for the "cannot run yet" list. */
static kiln_status note_op(checker *c, const kl_node *n, const char *desc) {
    const char *dom = is_onnx_domain(n->domain) ? "" : n->domain;
    char *key = format(&c->r->arena, "%s\x1f%s\x1f%lld", dom, n->op_type, (long long)n->opset);
    if (!key) return KILN_ERR_NO_MEMORY;
    op_use *u = kl_strmap_get(&c->op_keys, key);
    if (u) {
        u->count++;
        return KILN_OK;
    }
    u = kl_arena_alloc(&c->r->arena, sizeof(*u));
    if (!u) return KILN_ERR_NO_MEMORY;
    *u = (op_use){.domain = dom, .op = n->op_type, .opset = n->opset,
                  .has_schema = n->schema != NULL, .count = 1,
                  .first_index = top_index(n), .first_desc = desc};
    KL_TRY(kl_strmap_put(&c->op_keys, key, u));
    return kl_ptrvec_push(&c->ops, u);
}

/* Report each used op that has no schema or no kernel, once. */
static kiln_status report_ops(checker *c) {
    for (size_t i = 0; i < c->ops.len; i++) {
        const op_use *u = c->ops.items[i];
        if (u->has_schema && can_run(c, u->domain, u->op, u->opset)) continue;
        const char *why = u->has_schema ? "no kernel for it yet"
                                        : "kiln has no schema for this op and opset";
        KL_TRY(add(c, KILN_CHECK_UNSUPPORTED, u->first_index,
                   "op %s (domain '%s', opset %lld): cannot run yet (%s); used by %zu node%s, "
                   "first %s",
                   u->op, domain_name(u->domain), (long long)u->opset, why, u->count,
                   u->count == 1 ? "" : "s", u->first_desc));
    }
    return KILN_OK;
}

/* Ops whose leading inputs may be left out although min_inputs counts them. */
static bool optional_leading_input(const kl_node *n) {
    return is_onnx_domain(n->domain) &&
           (strcmp(n->op_type, "Loop") == 0 || (strcmp(n->op_type, "Scan") == 0 && n->opset < 9));
}

/* `have` inputs or outputs against the schema's [min, max] (max -1: any). */
static kiln_status check_arity(checker *c, int64_t ni, const char *desc, const char *what,
                               size_t have, int min, int max) {
    if ((min >= 0 && have < (size_t)min) || (max >= 0 && have > (size_t)max)) {
        if (max < 0)
            return add(c, KILN_CHECK_ERROR, ni, "%s: has %zu %s, expected at least %d", desc,
                       have, what, min);
        if (min == max)
            return add(c, KILN_CHECK_ERROR, ni, "%s: has %zu %s, expected %d", desc, have, what,
                       min);
        return add(c, KILN_CHECK_ERROR, ni, "%s: has %zu %s, expected %d to %d", desc, have, what,
                   min, max);
    }
    return KILN_OK;
}

/* Attributes and input/output counts against the node's schema. */
static kiln_status check_schema(checker *c, int64_t ni, const char *desc, const kl_node *n,
                                bool in_function) {
    const kl_op_schema *s = n->schema;
    KL_TRY(check_arity(c, ni, desc, "inputs", n->n_inputs, s->min_inputs, s->max_inputs));
    KL_TRY(check_arity(c, ni, desc, "outputs", n->n_outputs, s->min_outputs, s->max_outputs));
    if (!optional_leading_input(n)) {
        for (size_t i = 0; i < n->n_inputs && i < (size_t)KL_MAX(s->min_inputs, 0); i++)
            if (!n->inputs[i])
                KL_TRY(add(c, KILN_CHECK_ERROR, ni, "%s: required input %zu is empty", desc, i));
    }
    if (!s->attrs) return KILN_OK;
    for (size_t i = 0; i < n->n_attrs; i++) {
        const kl_attr *a = &n->attrs[i];
        const kl_attr_spec *spec = NULL;
        for (const kl_attr_spec *p = s->attrs; p->name; p++)
            if (a->name && strcmp(p->name, a->name) == 0) spec = p;
        if (!spec) {
            KL_TRY(add(c, KILN_CHECK_ERROR, ni,
                       "%s: unknown attribute '%s' (not in the schema of %s opset %lld)", desc,
                       a->name ? a->name : "", n->op_type, (long long)n->opset));
            continue;
        }
        if (in_function && a->ref_attr_name && a->type == KL_ATTR_UNDEFINED) continue;
        if (a->type != spec->type)
            KL_TRY(add(c, KILN_CHECK_ERROR, ni, "%s: attribute '%s' has type %s, expected %s",
                       desc, a->name, attr_type_name(a->type), attr_type_name(spec->type)));
    }
    for (const kl_attr_spec *p = s->attrs; p->name; p++) {
        if (!p->required || kl_node_attr(n, p->name)) continue;
        KL_TRY(add(c, KILN_CHECK_ERROR, ni, "%s: required attribute '%s' (%s) is missing", desc,
                   p->name, attr_type_name(p->type)));
    }
    return KILN_OK;
}

/* ---- graphs --------------------------------------------------------------------- */

static kiln_status check_graph(checker *c, const kl_graph *g, const char *prefix,
                               bool in_function);

/* The node of graph `anc` that (through subgraphs) contains graph `g`. */
static const kl_node *ancestor_in(const kl_graph *g, const kl_graph *anc) {
    const kl_node *n = NULL;
    while (g && g != anc) {
        n = g->owner;
        g = g->parent;
    }
    return g ? n : NULL;
}

/* A value's name, never NULL. */
static const char *value_name(const kl_value *v) { return v->name ? v->name : ""; }

/* Where each input of node `n` (index i of graph g) comes from. */
static kiln_status check_node_inputs(checker *c, const kl_graph *g, const kl_node *n,
                                     int64_t ni, const char *desc) {
    for (size_t j = 0; j < n->n_inputs; j++) {
        const kl_value *v = n->inputs[j];
        if (!v) continue;
        bool source = v->flags & (KL_VALUE_GRAPH_INPUT | KL_VALUE_INITIALIZER);
        if (!v->producer) {
            if (source) continue;
            /* A subgraph that reads a value its enclosing graph produces later. */
            const kl_value *later = g->parent && v->name ? kl_graph_lookup(g->parent, v->name) : NULL;
            if (later && later->producer)
                KL_TRY(add(c, KILN_CHECK_ERROR, ni,
                           "%s: input %zu '%s' is used before it is produced by node %zu (%s) of an "
                           "enclosing graph (nodes are not in topological order)",
                           desc, j, value_name(v), later->producer->index,
                           later->producer->op_type));
            else
                KL_TRY(add(c, KILN_CHECK_ERROR, ni,
                           "%s: input %zu '%s' is never produced (not a graph input, an "
                           "initializer or an output of an earlier node%s)",
                           desc, j, value_name(v), g->parent ? " or of an enclosing graph" : ""));
            continue;
        }
        const kl_node *p = v->producer;
        if (p->graph == g) {
            if (p->index >= n->index)
                KL_TRY(add(c, KILN_CHECK_ERROR, ni,
                           "%s: input %zu '%s' is used before it is produced by node %zu (%s) "
                           "(nodes are not in topological order)",
                           desc, j, value_name(v), p->index, p->op_type));
            continue;
        }
        const kl_node *anc = ancestor_in(g, p->graph);
        if (anc && p->index >= anc->index)
            KL_TRY(add(c, KILN_CHECK_ERROR, ni,
                       "%s: input %zu '%s' of an enclosing graph is used before it is produced "
                       "by node %zu (%s) of that graph (nodes are not in topological order)",
                       desc, j, value_name(v), p->index, p->op_type));
    }
    return KILN_OK;
}

/* Tensor, sparse and graph attributes of `n` (the reader already reports
 * duplicate attribute names and outputs that reuse a name). */
static kiln_status check_node_attrs(checker *c, const kl_node *n, int64_t ni, const char *desc,
                                    bool in_function) {
    for (size_t i = 0; i < n->n_attrs; i++) {
        const kl_attr *a = &n->attrs[i];
        const char *an = a->name ? a->name : "";
        if (!*an) KL_TRY(add(c, KILN_CHECK_ERROR, ni, "%s: attribute %zu has no name", desc, i));
        if (a->ref_attr_name && !in_function)
            KL_TRY(add(c, KILN_CHECK_ERROR, ni,
                       "%s: attribute '%s' refers to '%s' (ref_attr_name) outside a function",
                       desc, an, a->ref_attr_name));
        const char *what;
        switch (a->type) {
        case KL_ATTR_TENSOR:
            if (!a->t) break;
            what = format(&c->r->arena, "%s: tensor of attribute '%s'", desc, an);
            if (!what) return KILN_ERR_NO_MEMORY;
            KL_TRY(check_tensor(c, ni, what, a->t));
            break;
        case KL_ATTR_TENSORS:
            for (size_t k = 0; a->tensors && k < a->n; k++) {
                what = format(&c->r->arena, "%s: tensor %zu of attribute '%s'", desc, k, an);
                if (!what) return KILN_ERR_NO_MEMORY;
                if (a->tensors[k]) KL_TRY(check_tensor(c, ni, what, a->tensors[k]));
            }
            break;
        case KL_ATTR_SPARSE_TENSOR:
            if (!a->sparse) break;
            what = format(&c->r->arena, "tensor of attribute '%s' of %s", an, desc);
            if (!what) return KILN_ERR_NO_MEMORY;
            KL_TRY(check_sparse(c, ni, what, a->sparse));
            break;
        case KL_ATTR_SPARSE_TENSORS:
            for (size_t k = 0; a->sparses && k < a->n; k++) {
                what = format(&c->r->arena, "tensor %zu of attribute '%s' of %s", k, an, desc);
                if (!what) return KILN_ERR_NO_MEMORY;
                if (a->sparses[k]) KL_TRY(check_sparse(c, ni, what, a->sparses[k]));
            }
            break;
        case KL_ATTR_GRAPH:
            if (!a->g) break;
            what = format(&c->r->arena, "%s %s: ", desc, an);
            if (!what) return KILN_ERR_NO_MEMORY;
            KL_TRY(check_graph(c, a->g, what, in_function));
            break;
        case KL_ATTR_GRAPHS:
            for (size_t k = 0; a->graphs && k < a->n; k++) {
                if (!a->graphs[k]) continue;
                what = format(&c->r->arena, "%s %s[%zu]: ", desc, an, k);
                if (!what) return KILN_ERR_NO_MEMORY;
                KL_TRY(check_graph(c, a->graphs[k], what, in_function));
            }
            break;
        default:
            break;
        }
    }
    return KILN_OK;
}

/* Everything about one node of graph g; its subgraphs recursively. */
static kiln_status check_node(checker *c, const kl_graph *g, const kl_node *n, const char *prefix,
                              bool in_function) {
    int64_t ni = in_function ? -1 : top_index(n);
    const char *desc = node_desc(c, prefix, n);
    if (!desc) return KILN_ERR_NO_MEMORY;
    if (!n->op_type || !*n->op_type) {
        KL_TRY(add(c, KILN_CHECK_ERROR, ni, "%s: op_type is empty", desc));
        return KILN_OK;
    }
    if (n->n_inputs == 0 && n->n_outputs == 0)
        KL_TRY(add(c, KILN_CHECK_ERROR, ni, "%s: has no inputs and no outputs", desc));
    KL_TRY(check_node_inputs(c, g, n, ni, desc));
    KL_TRY(check_node_attrs(c, n, ni, desc, in_function));
    if (n->opset <= 0) {
        bool implicit = c->m->n_opsets == 0 && c->m->ir_version < 3 && is_onnx_domain(n->domain);
        if (!implicit)
            KL_TRY(add(c, KILN_CHECK_ERROR, ni,
                       "%s: domain '%s' is not imported (no opset_import for it)", desc,
                       domain_name(n->domain)));
        return KILN_OK;
    }
    if (n->schema) KL_TRY(check_schema(c, ni, desc, n, in_function));
    if (!in_function) KL_TRY(note_op(c, n, desc));
    return KILN_OK;
}

/* Declared graph inputs: named once, typed (main graph). */
static kiln_status check_graph_inputs(checker *c, const kl_graph *g, const char *prefix,
                                      bool is_main, kl_strmap *seen) {
    for (size_t i = 0; i < g->n_inputs; i++) {
        const kl_value *v = g->inputs[i];
        if (!v) continue;
        const char *name = value_name(v);
        if (!*name) {
            KL_TRY(add(c, KILN_CHECK_ERROR, -1, "%sgraph input %zu has no name", prefix, i));
            continue;
        }
        if (kl_strmap_get(seen, name)) {
            KL_TRY(add(c, KILN_CHECK_ERROR, -1,
                       "%sgraph input '%s' is declared more than once (names must be assigned "
                       "once)",
                       prefix, name));
            continue;
        }
        KL_TRY(kl_strmap_put(seen, name, (void *)v));
        if (!is_main) continue;
        if (!(v->flags & KL_VALUE_DECLARED)) {
            continue; /* the reader reports inputs without a type */
        } else if (v->type.kind == KL_TYPE_UNKNOWN) {
            KL_TRY(add(c, KILN_CHECK_ERROR, -1,
                       "%sgraph input '%s' has an empty type (no tensor, sequence, map or "
                       "optional type)",
                       prefix, name));
        } else if ((v->type.kind == KL_TYPE_TENSOR || v->type.kind == KL_TYPE_SPARSE_TENSOR) &&
                   v->type.elem == KILN_DTYPE_UNDEFINED) {
            KL_TRY(add(c, KILN_CHECK_ERROR, -1,
                       "%sgraph input '%s' has no element type (elem_type is not set)", prefix,
                       name));
        } else if (v->type.kind == KL_TYPE_TENSOR && v->type.shape.rank < 0 && !v->init) {
            KL_TRY(add(c, KILN_CHECK_WARNING, -1,
                       "%sgraph input '%s' has no shape (onnx.checker requires one)", prefix,
                       name));
        }
    }
    return KILN_OK;
}

/* Initializers: named once, inputs before IR 4, valid data. */
static kiln_status check_initializers(checker *c, const kl_graph *g, const char *prefix,
                                      kl_strmap *seen) {
    for (size_t i = 0; i < g->n_initializers; i++) {
        const kl_value *v = g->initializers[i];
        if (!v) continue;
        const char *name = value_name(v);
        if (kl_strmap_get(seen, name)) {
            KL_TRY(add(c, KILN_CHECK_ERROR, -1,
                       "%sinitializer '%s' is given more than once (names must be assigned once)",
                       prefix, name));
            continue;
        }
        KL_TRY(kl_strmap_put(seen, name, (void *)v));
        if (c->m->ir_version > 0 && c->m->ir_version < 4 && !(v->flags & KL_VALUE_GRAPH_INPUT))
            KL_TRY(add(c, KILN_CHECK_ERROR, -1,
                       "%sinitializer '%s' is not a graph input (required before IR version 4; "
                       "the model has IR version %lld)",
                       prefix, name, (long long)c->m->ir_version));
    }
    for (size_t i = 0; i < g->n_values; i++) {
        const kl_value *v = g->values[i];
        if (!v || (!v->init && !v->sparse_init)) continue;
        const char *what = format(&c->r->arena, "%sinitializer '%s'", prefix, value_name(v));
        if (!what) return KILN_ERR_NO_MEMORY;
        size_t before = c->r->n;
        if (v->init) KL_TRY(check_tensor(c, -1, what, v->init));
        if (v->sparse_init) KL_TRY(check_sparse(c, -1, what, v->sparse_init));
        if (c->r->n == before && v->init) KL_TRY(check_init_type(c, what, v));
    }
    return KILN_OK;
}

/* Graph outputs: named, produced, typed (main graph). */
static kiln_status check_graph_outputs(checker *c, const kl_graph *g, const char *prefix,
                                       bool is_main) {
    for (size_t i = 0; i < g->n_outputs; i++) {
        const kl_value *v = g->outputs[i];
        if (!v) continue;
        const char *name = value_name(v);
        if (!*name) {
            KL_TRY(add(c, KILN_CHECK_ERROR, -1, "%sgraph output %zu has no name", prefix, i));
            continue;
        }
        if (!v->producer && !(v->flags & (KL_VALUE_GRAPH_INPUT | KL_VALUE_INITIALIZER)))
            KL_TRY(add(c, KILN_CHECK_ERROR, -1,
                       "%sgraph output '%s' is never produced (no node, graph input or "
                       "initializer has this name)",
                       prefix, name));
        if (!is_main) continue;
        if (!(v->flags & KL_VALUE_DECLARED))
            continue; /* the reader reports outputs without a type */
        if (v->type.kind == KL_TYPE_UNKNOWN)
            KL_TRY(add(c, KILN_CHECK_ERROR, -1,
                       "%sgraph output '%s' has an empty type (no tensor, sequence, map or "
                       "optional type)",
                       prefix, name));
        else if ((v->type.kind == KL_TYPE_TENSOR || v->type.kind == KL_TYPE_SPARSE_TENSOR) &&
                 v->type.elem == KILN_DTYPE_UNDEFINED)
            KL_TRY(add(c, KILN_CHECK_ERROR, -1,
                       "%sgraph output '%s' has no element type (elem_type is not set)", prefix,
                       name));
    }
    return KILN_OK;
}

/* Check graph `g` and, through node attributes, its subgraphs.  `prefix`
 * locates g in messages ("" for the main graph). */
static kiln_status check_graph(checker *c, const kl_graph *g, const char *prefix,
                               bool in_function) {
    if (g->depth > KL_CHECK_MAX_DEPTH)
        return add(c, KILN_CHECK_ERROR, -1, "%sgraph nests deeper than %d levels", prefix,
                   KL_CHECK_MAX_DEPTH);
    bool is_main = !g->parent && !in_function;
    if (!in_function && (!g->name || !*g->name))
        KL_TRY(add(c, KILN_CHECK_ERROR, -1, "%sgraph has no name (GraphProto.name is required)",
                   prefix));
    kl_strmap inputs = {0}, inits = {0};
    kiln_status s = check_graph_inputs(c, g, prefix, is_main, &inputs);
    if (s == KILN_OK) s = check_initializers(c, g, prefix, &inits);
    kl_strmap_free(&inputs);
    kl_strmap_free(&inits);
    KL_TRY(s);
    for (size_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]) KL_TRY(check_node(c, g, g->nodes[i], prefix, in_function));
    return check_graph_outputs(c, g, prefix, is_main);
}

/* ---- entry points ------------------------------------------------------------------ */

/* The model's load-time problems (reader, shape inference), in order. */
static kiln_status copy_load_problems(checker *c) {
    for (size_t i = 0; i < c->m->n_problems; i++) {
        const kl_problem *p = &c->m->problems[i];
        const char *msg = kl_arena_strdup(&c->r->arena, p->message ? p->message : "");
        KL_TRY(push(c->r, p->severity, p->node_index, msg));
    }
    return KILN_OK;
}

/* Model, main graph, local functions, then the "cannot run yet" list. */
static kiln_status run_checks(checker *c) {
    KL_TRY(copy_load_problems(c));
    KL_TRY(check_versions(c));
    if (!c->m->graph) {
        KL_TRY(add(c, KILN_CHECK_ERROR, -1, "model has no graph (ModelProto field 7)"));
    } else {
        KL_TRY(check_graph(c, c->m->graph, "", false));
    }
    for (size_t i = 0; i < c->m->n_functions; i++) {
        const kl_function *f = c->m->functions[i];
        if (!f || !f->body) continue;
        const char *prefix = format(&c->r->arena, "function '%s' (domain '%s'): ",
                                    f->name ? f->name : "", f->domain ? f->domain : "");
        if (!prefix) return KILN_ERR_NO_MEMORY;
        KL_TRY(check_graph(c, f->body, prefix, true));
    }
    return report_ops(c);
}

/* See onnx.h.  Fails only on bad arguments or out of memory. */
kiln_status kl_check_model(const kl_model *m, kl_check_result **out) {
    return kl_check_model_caps(m, NULL, out);
}

/* See onnx.h.  Fails only on bad arguments or out of memory. */
kiln_status kl_check_model_caps(const kl_model *m, const kl_check_caps *caps, kl_check_result **out) {
    if (!m || !out) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kl_check_model: NULL argument");
    kl_check_result *r = kl_calloc(1, sizeof(*r));
    if (!r) return KILN_ERR_NO_MEMORY;
    kl_arena_init(&r->arena);
    checker c = {.m = m, .r = r, .caps = caps};
    kiln_status s = run_checks(&c);
    kl_strmap_free(&c.op_keys);
    kl_ptrvec_free(&c.ops);
    if (s != KILN_OK) {
        kl_check_free(r);
        return kl_error_context(s, "%s: checking the model: ", m->path ? m->path : "<memory>");
    }
    *out = r;
    return KILN_OK;
}

/* Release a result; NULL is a no-op. */
void kl_check_free(kl_check_result *r) {
    if (!r) return;
    kl_free(r->items);
    kl_arena_free(&r->arena);
    kl_free(r);
}
