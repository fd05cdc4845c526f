/* Editing the IR: consumer lists, new nodes/values/constants, rewiring,
 * tombstones, compaction and the graph check (the contracts are in ir.h). */
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"
#include "ops/ops.h"

/* ---- consumer lists -------------------------------------------------------------- */

/* Append (node, k) to v's readers; the array lives in the model's arena. */
static kiln_status use_add(kl_value *v, kl_node *node, size_t k) {
    if (v->n_uses == v->cap_uses) {
        size_t cap = v->cap_uses ? v->cap_uses * 2 : 4;
        kl_use *u = kl_arena_array(&v->graph->model->arena, cap, sizeof *u);
        if (!u) return KILN_ERR_NO_MEMORY;
        if (v->n_uses) memcpy(u, v->uses, v->n_uses * sizeof *u);
        v->uses = u;
        v->cap_uses = cap;
    }
    v->uses[v->n_uses++] = (kl_use){node, k};
    v->use_count = v->n_uses;
    return KILN_OK;
}

/* Drop one (node, k) entry from v's readers (order not kept). */
static void use_drop(kl_value *v, const kl_node *node, size_t k) {
    for (size_t i = 0; i < v->n_uses; i++)
        if (v->uses[i].node == node && v->uses[i].input == k) {
            v->uses[i] = v->uses[--v->n_uses];
            break;
        }
    v->use_count = v->n_uses;
}

/* True if v's readers are tracked (v belongs to a graph whose lists are built). */
static bool tracked(const kl_value *v) { return v && v->graph && v->graph->uses_built; }

typedef kiln_status (*sub_fn)(kl_graph *g, kl_node *reader, size_t k, kl_value *v, void *user);

/* Call fn for every input of every node inside subgraph sg (recursively) that
 * reads a value of the outer graph g. */
static kiln_status sub_reads(kl_graph *g, kl_graph *sg, sub_fn fn, void *user, int depth) {
    if (!sg || depth > 64) return KILN_OK;
    for (size_t i = 0; i < sg->n_nodes; i++) {
        kl_node *n = sg->nodes[i];
        if (!n || n->removed) continue;
        for (size_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] && n->inputs[k]->graph == g) KL_TRY(fn(g, n, k, n->inputs[k], user));
        for (size_t a = 0; a < n->n_attrs; a++) {
            kl_attr *at = &n->attrs[a];
            if (at->type == KL_ATTR_GRAPH) KL_TRY(sub_reads(g, at->g, fn, user, depth + 1));
            if (at->type == KL_ATTR_GRAPHS)
                for (size_t j = 0; j < at->n; j++) KL_TRY(sub_reads(g, at->graphs[j], fn, user, depth + 1));
        }
    }
    return KILN_OK;
}

/* sub_reads over every subgraph attribute of node n. */
static kiln_status node_sub_reads(kl_graph *g, kl_node *n, sub_fn fn, void *user) {
    for (size_t a = 0; a < n->n_attrs; a++) {
        kl_attr *at = &n->attrs[a];
        if (at->type == KL_ATTR_GRAPH) KL_TRY(sub_reads(g, at->g, fn, user, 1));
        if (at->type == KL_ATTR_GRAPHS)
            for (size_t j = 0; j < at->n; j++) KL_TRY(sub_reads(g, at->graphs[j], fn, user, 1));
    }
    return KILN_OK;
}

static kiln_status sub_add(kl_graph *g, kl_node *reader, size_t k, kl_value *v, void *user) {
    (void)g, (void)user;
    return use_add(v, reader, k);
}

static kiln_status sub_drop(kl_graph *g, kl_node *reader, size_t k, kl_value *v, void *user) {
    (void)g, (void)user;
    use_drop(v, reader, k);
    return KILN_OK;
}

/* Has node n a subgraph attribute? */
static bool has_subgraph(const kl_node *n) {
    for (size_t a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].type == KL_ATTR_GRAPH || n->attrs[a].type == KL_ATTR_GRAPHS) return true;
    return false;
}

/* Does any subgraph (recursively) of g's nodes list v among its outputs? */
static bool sub_returns(const kl_graph *sg, const kl_value *v, int depth) {
    if (!sg || depth > 64) return false;
    if (depth == 0 && sg->uses_built && sg->n_subgraph_nodes == 0) return false; /* no subgraphs */
    if (depth > 0)
        for (size_t k = 0; k < sg->n_outputs; k++)
            if (sg->outputs[k] == v) return true;
    for (size_t i = 0; i < sg->n_nodes; i++) {
        const kl_node *n = sg->nodes[i];
        if (!n || n->removed) continue;
        for (size_t a = 0; a < n->n_attrs; a++) {
            const kl_attr *at = &n->attrs[a];
            if (at->type == KL_ATTR_GRAPH && sub_returns(at->g, v, depth + 1)) return true;
            if (at->type == KL_ATTR_GRAPHS)
                for (size_t j = 0; j < at->n; j++)
                    if (sub_returns(at->graphs[j], v, depth + 1)) return true;
        }
    }
    return false;
}

/* Replace `from` by `to` in the outputs of every subgraph below sg. */
static void sub_outputs_replace(kl_graph *sg, const kl_value *from, kl_value *to, int depth) {
    if (!sg || depth > 64) return;
    if (depth > 0)
        for (size_t k = 0; k < sg->n_outputs; k++)
            if (sg->outputs[k] == from) sg->outputs[k] = to;
    for (size_t i = 0; i < sg->n_nodes; i++) {
        kl_node *n = sg->nodes[i];
        if (!n || n->removed) continue;
        for (size_t a = 0; a < n->n_attrs; a++) {
            kl_attr *at = &n->attrs[a];
            if (at->type == KL_ATTR_GRAPH) sub_outputs_replace(at->g, from, to, depth + 1);
            if (at->type == KL_ATTR_GRAPHS)
                for (size_t j = 0; j < at->n; j++) sub_outputs_replace(at->graphs[j], from, to, depth + 1);
        }
    }
}

kiln_status kl_graph_build_uses(kl_graph *g) {
    for (size_t i = 0; i < g->n_values; i++) {
        g->values[i]->n_uses = 0;
        g->values[i]->use_count = 0;
    }
    g->uses_built = true;
    g->n_subgraph_nodes = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        kl_node *n = g->nodes[i];
        if (n->removed) continue;
        g->n_subgraph_nodes += has_subgraph(n);
        for (size_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] && n->inputs[k]->graph == g) KL_TRY(use_add(n->inputs[k], n, k));
        KL_TRY(node_sub_reads(g, n, sub_add, NULL));
    }
    return KILN_OK;
}

kl_node *kl_value_only_use(const kl_graph *g, const kl_value *v) {
    if (!v || v->n_uses != 1 || (v->flags & KL_VALUE_GRAPH_OUTPUT)) return NULL;
    kl_node *n = v->uses[0].node;
    if (n->removed || n->graph != g || sub_returns(g, v, 0)) return NULL;
    return n;
}

bool kl_value_escapes(const kl_graph *g, const kl_value *v) {
    if (v->flags & KL_VALUE_GRAPH_OUTPUT) return true;
    for (size_t i = 0; i < v->n_uses; i++)
        if (v->uses[i].node->graph != g) return true;
    return sub_returns(g, v, 0);
}

/* ---- values ------------------------------------------------------------------------- */

kiln_status kl_value_new(kl_graph *g, const char *hint, const kl_type *type, kl_value **out) {
    kl_arena *a = &g->model->arena;
    if (!hint || !hint[0]) hint = "kl";
    const char *name = hint;
    for (unsigned k = 1; kl_graph_lookup(g, name); k++) {
        name = kl_arena_printf(a, "%s_k%u", hint, k);
        if (!name) return KILN_ERR_NO_MEMORY;
    }
    kl_value *v;
    KL_TRY(kl_graph_value(g, name, &v));
    if (type) KL_TRY(kl_type_copy(a, type, &v->type));
    *out = v;
    return KILN_OK;
}

/* Deep copy of tensor t into arena a (numeric data only). */
static kiln_status tensor_copy(kl_arena *a, const kl_tensor *t, kl_tensor **out) {
    if (t->dtype == KILN_DTYPE_STRING)
        return kl_errorf(KILN_ERR_UNSUPPORTED, "tensor '%s': string constants cannot be copied",
                         t->name ? t->name : "");
    kl_tensor *c = kl_arena_alloc(a, sizeof *c);
    if (!c) return KILN_ERR_NO_MEMORY;
    *c = *t;
    c->strings = NULL;
    c->external = false;
    c->location = NULL;
    c->offset = 0;
    if (t->rank > 0) {
        c->dims = kl_arena_array(a, (size_t)t->rank, sizeof *c->dims);
        if (!c->dims) return KILN_ERR_NO_MEMORY;
        memcpy(c->dims, t->dims, (size_t)t->rank * sizeof *c->dims);
    } else {
        c->dims = NULL;
    }
    if (t->nbytes) {
        void *d = kl_arena_alloc(a, t->nbytes);
        if (!d) return KILN_ERR_NO_MEMORY;
        memcpy(d, t->data, t->nbytes);
        c->data = d;
    } else {
        c->data = NULL;
    }
    *out = c;
    return KILN_OK;
}

/* Add v to g's initializer list (growing it in the arena). */
static kiln_status init_list_add(kl_graph *g, kl_value *v) {
    for (size_t i = 0; i < g->n_initializers; i++)
        if (g->initializers[i] == v) return KILN_OK;
    size_t cap = g->cap_initializers ? g->cap_initializers : g->n_initializers;
    if (g->n_initializers == cap) {
        cap = cap ? cap * 2 : 8;
        kl_value **l = kl_arena_array(&g->model->arena, cap, sizeof *l);
        if (!l) return KILN_ERR_NO_MEMORY;
        if (g->n_initializers) memcpy(l, g->initializers, g->n_initializers * sizeof *l);
        g->initializers = l;
        g->cap_initializers = cap;
    }
    g->initializers[g->n_initializers++] = v;
    return KILN_OK;
}

kiln_status kl_value_set_const(kl_graph *g, kl_value *v, const kl_tensor *t) {
    kl_arena *a = &g->model->arena;
    kl_tensor *c;
    KL_TRY(tensor_copy(a, t, &c));
    c->name = v->name;
    v->init = c;
    v->producer = NULL;
    v->producer_output = 0;
    v->flags |= KL_VALUE_INITIALIZER;
    if (v->type.kind != KL_TYPE_TENSOR || v->type.shape.rank < 0 || !v->type.elem) {
        kl_dim *d = c->rank ? kl_arena_array(a, (size_t)c->rank, sizeof *d) : NULL;
        if (c->rank && !d) return KILN_ERR_NO_MEMORY;
        for (int i = 0; i < c->rank; i++) d[i] = (kl_dim){c->dims[i], NULL};
        v->type.kind = KL_TYPE_TENSOR;
        v->type.elem = c->dtype;
        v->type.shape.rank = c->rank;
        v->type.shape.dims = d;
        v->type.inner = NULL;
    }
    return init_list_add(g, v);
}

kiln_status kl_value_new_const(kl_graph *g, const char *hint, const kl_tensor *t, kl_value **out) {
    kl_value *v;
    KL_TRY(kl_value_new(g, hint, NULL, &v));
    KL_TRY(kl_value_set_const(g, v, t));
    *out = v;
    return KILN_OK;
}

/* A rank-0/1 tensor in m's arena holding n elements of `dtype` copied from p. */
static const kl_tensor *attr_tensor(kl_model *m, kiln_dtype dtype, int rank, size_t n,
                                    const void *p, size_t esize) {
    kl_tensor *t = kl_arena_alloc(&m->arena, sizeof *t);
    int64_t *dims = kl_arena_alloc(&m->arena, sizeof *dims);
    void *d = n ? kl_arena_alloc(&m->arena, n * esize) : NULL;
    if (!t || !dims || (n && !d)) {
        kl_error_clear();
        return NULL;
    }
    if (n) memcpy(d, p, n * esize);
    dims[0] = (int64_t)n;
    t->name = "";
    t->dtype = dtype;
    t->rank = rank;
    t->dims = rank ? dims : NULL;
    t->count = (int64_t)n;
    t->data = d;
    t->nbytes = n * esize;
    return t;
}

const kl_tensor *kl_value_const(kl_model *m, const kl_value *v) {
    if (!v || (v->flags & KL_VALUE_GRAPH_INPUT)) return NULL; /* an input may override it */
    if (v->flags & KL_VALUE_INITIALIZER) return v->init;
    const kl_node *n = v->producer;
    if (!n || n->removed || v->producer_output != 0 || strcmp(n->op_type, "Constant") != 0 ||
        n->domain[0])
        return NULL;
    for (size_t k = 0; k < n->n_attrs; k++) {
        const kl_attr *a = &n->attrs[k];
        if (strcmp(a->name, "value") == 0 && a->type == KL_ATTR_TENSOR) return a->t;
        if (strcmp(a->name, "value_float") == 0 && a->type == KL_ATTR_FLOAT)
            return attr_tensor(m, KILN_DTYPE_FLOAT, 0, 1, &a->f, sizeof a->f);
        if (strcmp(a->name, "value_int") == 0 && a->type == KL_ATTR_INT)
            return attr_tensor(m, KILN_DTYPE_INT64, 0, 1, &a->i, sizeof a->i);
        if (strcmp(a->name, "value_floats") == 0 && a->type == KL_ATTR_FLOATS)
            return attr_tensor(m, KILN_DTYPE_FLOAT, 1, a->n, a->floats, sizeof(float));
        if (strcmp(a->name, "value_ints") == 0 && a->type == KL_ATTR_INTS)
            return attr_tensor(m, KILN_DTYPE_INT64, 1, a->n, a->ints, sizeof(int64_t));
    }
    return NULL;
}

/* ---- nodes ---------------------------------------------------------------------------- */

/* Make sure m imports `domain` (version 1 for "kiln"). */
static kiln_status import_domain(kl_model *m, const char *domain) {
    if (kl_model_opset(m, domain) > 0 || strcmp(domain, "kiln") != 0) return KILN_OK;
    kl_opset *o = kl_arena_array(&m->arena, m->n_opsets + 1, sizeof *o);
    if (!o) return KILN_ERR_NO_MEMORY;
    if (m->n_opsets) memcpy(o, m->opsets, m->n_opsets * sizeof *o);
    o[m->n_opsets] = (kl_opset){"kiln", 1};
    m->opsets = o;
    m->n_opsets++;
    return KILN_OK;
}

/* Insert n into g->nodes before position pos (growing the array). */
static kiln_status node_insert(kl_graph *g, kl_node *n, size_t pos) {
    size_t cap = g->cap_nodes ? g->cap_nodes : g->n_nodes;
    if (g->n_nodes == cap) {
        cap = cap ? cap * 2 : 8;
        kl_node **l = kl_arena_array(&g->model->arena, cap, sizeof *l);
        if (!l) return KILN_ERR_NO_MEMORY;
        if (g->n_nodes) memcpy(l, g->nodes, g->n_nodes * sizeof *l);
        g->nodes = l;
        g->cap_nodes = cap;
    }
    memmove(g->nodes + pos + 1, g->nodes + pos, (g->n_nodes - pos) * sizeof *g->nodes);
    g->nodes[pos] = n;
    g->n_nodes++;
    for (size_t i = pos; i < g->n_nodes; i++) g->nodes[i]->index = i;
    return KILN_OK;
}

kiln_status kl_node_new(kl_graph *g, const char *name, const char *op, const char *domain,
                        kl_value *const *inputs, size_t n_inputs, kl_value *const *outputs,
                        size_t n_outputs, const kl_attr *attrs, size_t n_attrs,
                        const char *fused_from, kl_node *at, kl_node **out) {
    kl_model *m = g->model;
    kl_arena *a = &m->arena;
    if (!domain || strcmp(domain, "ai.onnx") == 0) domain = "";
    for (size_t k = 0; k < n_outputs; k++)
        if (outputs[k] && outputs[k]->producer && !outputs[k]->producer->removed)
            return kl_errorf(KILN_ERR_INTERNAL, "new %s node: output '%s' is already produced by '%s'",
                             op, outputs[k]->name, kl_node_label(outputs[k]->producer));
    if (at && (at->graph != g || at->index >= g->n_nodes || g->nodes[at->index] != at))
        return kl_errorf(KILN_ERR_INTERNAL, "new %s node: insertion point is not a node of the graph", op);
    KL_TRY(import_domain(m, domain));
    kl_node *n = kl_arena_alloc(a, sizeof *n);
    if (!n) return KILN_ERR_NO_MEMORY;
    n->op_type = kl_arena_strdup(a, op);
    n->domain = kl_arena_strdup(a, domain);
    n->name = kl_arena_strdup(a, name ? name : fused_from ? fused_from : op);
    n->fused_from = fused_from ? kl_arena_strdup(a, fused_from) : NULL;
    n->overload = "";
    n->opset = kl_model_opset(m, domain);
    n->graph = g;
    n->inputs = kl_arena_array(a, n_inputs ? n_inputs : 1, sizeof *n->inputs);
    n->outputs = kl_arena_array(a, n_outputs ? n_outputs : 1, sizeof *n->outputs);
    n->attrs = kl_arena_array(a, n_attrs ? n_attrs : 1, sizeof *n->attrs);
    if (!n->op_type || !n->domain || !n->name || (fused_from && !n->fused_from) || !n->inputs ||
        !n->outputs || !n->attrs)
        return KILN_ERR_NO_MEMORY;
    n->n_inputs = n_inputs;
    n->n_outputs = n_outputs;
    n->n_attrs = n_attrs;
    if (n_attrs) memcpy(n->attrs, attrs, n_attrs * sizeof *attrs);
    n->schema = kl_op_find(n->domain, n->op_type, n->opset, NULL);
    KL_TRY(node_insert(g, n, at ? at->index : g->n_nodes));
    g->n_subgraph_nodes += has_subgraph(n);
    for (size_t k = 0; k < n_inputs; k++) {
        n->inputs[k] = inputs[k];
        if (tracked(inputs[k]) && inputs[k]->graph == g) KL_TRY(use_add(inputs[k], n, k));
    }
    for (size_t k = 0; k < n_outputs; k++) {
        n->outputs[k] = outputs[k];
        if (outputs[k]) {
            outputs[k]->producer = n;
            outputs[k]->producer_output = (int)k;
        }
    }
    if (out) *out = n;
    return KILN_OK;
}

kiln_status kl_node_infer(kl_model *m, kl_node *n) {
    if (!n->schema || !n->schema->infer) return KILN_OK;
    kl_infer_ctx c = {m, n->graph, n, &m->arena, false};
    return n->schema->infer(&c);
}

kiln_status kl_node_set_input(kl_node *n, size_t k, kl_value *v) {
    if (k >= n->n_inputs)
        return kl_errorf(KILN_ERR_INTERNAL, "node '%s' (%s): no input %zu", kl_node_label(n),
                         n->op_type, k);
    kl_value *old = n->inputs[k];
    if (old == v) return KILN_OK;
    if (tracked(old) && !n->removed) use_drop(old, n, k);
    n->inputs[k] = v;
    if (tracked(v) && !n->removed) KL_TRY(use_add(v, n, k));
    return KILN_OK;
}

void kl_node_remove(kl_node *n) {
    if (n->removed) return;
    for (size_t k = 0; k < n->n_inputs; k++)
        if (tracked(n->inputs[k])) use_drop(n->inputs[k], n, k);
    if (n->graph->uses_built) (void)node_sub_reads(n->graph, n, sub_drop, NULL);
    for (size_t k = 0; k < n->n_outputs; k++) {
        kl_value *v = n->outputs[k];
        if (v && v->producer == n) v->producer = NULL;
    }
    n->removed = true;
}

const char *kl_nodes_origin(kl_model *m, kl_node *const *nodes, size_t n) {
    size_t len = 1;
    char tmp[64];
    for (size_t i = 0; i < n; i++) {
        const char *s = nodes[i]->fused_from ? nodes[i]->fused_from : nodes[i]->name;
        if (!s || !s[0]) {
            snprintf(tmp, sizeof tmp, "%s#%zu", nodes[i]->op_type, nodes[i]->index);
            s = tmp;
        }
        len += strlen(s) + 1;
    }
    char *buf = kl_arena_alloc(&m->arena, len);
    if (!buf) return NULL;
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = nodes[i]->fused_from ? nodes[i]->fused_from : nodes[i]->name;
        if (!s || !s[0]) {
            snprintf(tmp, sizeof tmp, "%s#%zu", nodes[i]->op_type, nodes[i]->index);
            s = tmp;
        }
        if (i) buf[pos++] = '+';
        size_t l = strlen(s);
        memcpy(buf + pos, s, l);
        pos += l;
    }
    buf[pos] = 0;
    return buf;
}

/* ---- rewiring -------------------------------------------------------------------------- */

/* Same element type and no known rank/dim that differs. */
static bool types_agree(const kl_type *a, const kl_type *b) {
    if (a->kind == KL_TYPE_UNKNOWN || b->kind == KL_TYPE_UNKNOWN) return true;
    if (a->kind != b->kind) return false;
    if (a->kind != KL_TYPE_TENSOR) return true;
    if (a->elem && b->elem && a->elem != b->elem) return false;
    if (a->shape.rank < 0 || b->shape.rank < 0) return true;
    if (a->shape.rank != b->shape.rank) return false;
    for (int i = 0; i < a->shape.rank; i++) {
        int64_t x = a->shape.dims[i].value, y = b->shape.dims[i].value;
        if (x >= 0 && y >= 0 && x != y) return false;
    }
    return true;
}

bool kl_value_can_replace(const kl_graph *g, const kl_value *from, const kl_value *to) {
    if (!from || !to || from == to || !types_agree(&from->type, &to->type)) return false;
    if (to->graph != g && from->flags & KL_VALUE_GRAPH_OUTPUT) return false;
    if (from->flags & KL_VALUE_GRAPH_OUTPUT)
        return to->producer && !to->producer->removed &&
               !(to->flags & (KL_VALUE_GRAPH_INPUT | KL_VALUE_GRAPH_OUTPUT | KL_VALUE_INITIALIZER));
    return true;
}

/* Move every reader of `from` in g (and subgraphs) to `to`. */
static kiln_status move_readers(kl_graph *g, kl_value *from, kl_value *to) {
    if (tracked(from)) {
        while (from->n_uses) {
            kl_use u = from->uses[from->n_uses - 1];
            KL_TRY(kl_node_set_input(u.node, u.input, to));
        }
    } else {
        for (size_t i = 0; i < g->n_nodes; i++) {
            kl_node *n = g->nodes[i];
            if (n->removed) continue;
            for (size_t k = 0; k < n->n_inputs; k++)
                if (n->inputs[k] == from) KL_TRY(kl_node_set_input(n, k, to));
        }
    }
    sub_outputs_replace(g, from, to, 0);
    return KILN_OK;
}

kiln_status kl_value_replace(kl_graph *g, kl_value *from, kl_value *to) {
    if (!kl_value_can_replace(g, from, to)) {
        char a[128], b[128];
        return kl_errorf(KILN_ERR_INTERNAL,
                         "cannot replace value '%s' (%s) by '%s' (%s): type, shape or role differs",
                         from ? from->name : "(null)", from ? kl_type_format(&from->type, a, sizeof a) : "",
                         to ? to->name : "(null)", to ? kl_type_format(&to->type, b, sizeof b) : "");
    }
    if (!(from->flags & KL_VALUE_GRAPH_OUTPUT)) return move_readers(g, from, to);
    /* Keep the graph output's name: to's producer now produces `from`. */
    kl_node *p = to->producer;
    int k = to->producer_output;
    p->outputs[k] = from;
    from->producer = p;
    from->producer_output = k;
    to->producer = NULL;
    return move_readers(g, to, from);
}

/* ---- compaction ------------------------------------------------------------------------- */

/* Producer in g of value v (live), or NULL. */
static kl_node *live_producer(const kl_graph *g, const kl_value *v) {
    if (!v || v->graph != g || !v->producer || v->producer->removed) return NULL;
    return v->producer;
}

typedef struct dep_walk {
    kl_node **deps;
    size_t n, cap;
} dep_walk;

static kiln_status dep_push(dep_walk *w, kl_node *n) {
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        kl_node **d = kl_realloc_array(w->deps, cap, sizeof *d);
        if (!d) return KILN_ERR_NO_MEMORY;
        w->deps = d;
        w->cap = cap;
    }
    w->deps[w->n++] = n;
    return KILN_OK;
}

static kiln_status sub_dep(kl_graph *g, kl_node *reader, size_t k, kl_value *v, void *user) {
    (void)reader, (void)k;
    kl_node *p = live_producer(g, v);
    return p ? dep_push(user, p) : KILN_OK;
}

/* Producers (live, in g) that node n depends on, its subgraphs' reads included. */
static kiln_status node_deps(kl_graph *g, kl_node *n, dep_walk *w) {
    w->n = 0;
    for (size_t k = 0; k < n->n_inputs; k++) {
        kl_node *p = live_producer(g, n->inputs[k]);
        if (p) KL_TRY(dep_push(w, p));
    }
    return node_sub_reads(g, n, sub_dep, w);
}

/* Reorder the live nodes of g (already without tombstones) topologically,
 * keeping the current order where it is already valid. */
static kiln_status topo_sort(kl_graph *g) {
    size_t nn = g->n_nodes;
    if (!nn) return KILN_OK;
    kiln_status s = KILN_OK;
    dep_walk w = {0};
    bool sorted = true;
    for (size_t i = 0; i < nn && sorted && !s; i++) {
        s = node_deps(g, g->nodes[i], &w);
        for (size_t j = 0; j < w.n && !s; j++)
            if (w.deps[j]->index >= i) sorted = false;
    }
    if (s || sorted) {
        kl_free(w.deps);
        return s;
    }
    /* Depth-first: emit each node after its producers (explicit stack). */
    uint8_t *state = kl_calloc(nn, 1); /* 0 new, 1 on stack, 2 emitted */
    kl_node **order = kl_calloc(nn, sizeof *order);
    kl_node **stack = kl_calloc(nn, sizeof *stack);
    size_t n_order = 0;
    if (!state || !order || !stack) s = KILN_ERR_NO_MEMORY;
    for (size_t i = 0; i < nn && !s; i++) {
        if (state[i]) continue;
        size_t sp = 0;
        stack[sp++] = g->nodes[i];
        state[i] = 1;
        while (sp && !s) {
            kl_node *top = stack[sp - 1];
            s = node_deps(g, top, &w);
            kl_node *next = NULL;
            for (size_t j = 0; j < w.n && !s; j++) {
                size_t d = w.deps[j]->index;
                if (state[d] == 1) {
                    s = kl_errorf(KILN_ERR_INTERNAL, "graph has a cycle through node '%s' (%s)",
                                  kl_node_label(w.deps[j]), w.deps[j]->op_type);
                } else if (state[d] == 0) {
                    next = w.deps[j];
                    break;
                }
            }
            if (s) break;
            if (next) {
                state[next->index] = 1;
                stack[sp++] = next;
            } else {
                state[top->index] = 2;
                order[n_order++] = top;
                sp--;
            }
        }
    }
    if (!s) {
        for (size_t i = 0; i < nn; i++) {
            g->nodes[i] = order[i];
            order[i]->index = i;
        }
    }
    kl_free(state);
    kl_free(order);
    kl_free(stack);
    kl_free(w.deps);
    return s;
}

kiln_status kl_graph_compact(kl_graph *g) {
    size_t j = 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i]->removed) g->nodes[j++] = g->nodes[i];
    g->n_nodes = j;
    for (size_t i = 0; i < g->n_nodes; i++) g->nodes[i]->index = i;
    KL_TRY(topo_sort(g));
    j = 0;
    for (size_t i = 0; i < g->n_initializers; i++)
        if (g->initializers[i]->flags & KL_VALUE_INITIALIZER) g->initializers[j++] = g->initializers[i];
    g->n_initializers = j;
    j = 0;
    for (size_t i = 0; i < g->n_values; i++) {
        kl_value *v = g->values[i];
        if (v->producer && v->producer->removed) v->producer = NULL;
        bool role = v->flags & (KL_VALUE_GRAPH_INPUT | KL_VALUE_GRAPH_OUTPUT | KL_VALUE_INITIALIZER);
        bool read = g->uses_built ? v->n_uses > 0 : v->use_count > 0;
        if (!v->producer && !role && !read && !sub_returns(g, v, 0)) continue;
        v->id = j;
        g->values[j++] = v;
    }
    g->n_values = j;
    return KILN_OK;
}

/* ---- the check ------------------------------------------------------------------------------ */

typedef struct verify_ctx {
    size_t *count; /* per value id: readers found */
    const char *bad;
} verify_ctx;

static kiln_status sub_count(kl_graph *g, kl_node *reader, size_t k, kl_value *v, void *user) {
    verify_ctx *vc = user;
    (void)reader, (void)k;
    if (v->id < g->n_values && g->values[v->id] == v) vc->count[v->id]++;
    return KILN_OK;
}

/* Is v visible from g (its own scope or an enclosing one)? */
static bool visible(const kl_graph *g, const kl_value *v) {
    for (; g; g = g->parent)
        if (v->graph == g) return true;
    return false;
}

kiln_status kl_graph_verify(const kl_graph *cg) {
    kl_graph *g = (kl_graph *)cg; /* walked read-only */
    for (size_t i = 0; i < g->n_values; i++)
        if (g->values[i]->id != i || g->values[i]->graph != g)
            return kl_errorf(KILN_ERR_INTERNAL, "value '%s' has id %zu at position %zu",
                             g->values[i]->name, g->values[i]->id, i);
    for (size_t i = 0; i < g->n_nodes; i++) {
        const kl_node *n = g->nodes[i];
        if (n->index != i || n->graph != g)
            return kl_errorf(KILN_ERR_INTERNAL, "node '%s' (%s) has index %zu at position %zu",
                             kl_node_label(n), n->op_type, n->index, i);
        if (n->removed) continue;
        for (size_t k = 0; k < n->n_inputs; k++) {
            const kl_value *v = n->inputs[k];
            if (!v) continue;
            if (!visible(g, v))
                return kl_errorf(KILN_ERR_INTERNAL, "node '%s' (%s): input %zu '%s' is not in scope",
                                 kl_node_label(n), n->op_type, k, v->name);
            if (v->graph != g) continue;
            if (v->id >= g->n_values || g->values[v->id] != v)
                return kl_errorf(KILN_ERR_INTERNAL, "node '%s' (%s): input %zu '%s' is not a value of the graph",
                                 kl_node_label(n), n->op_type, k, v->name);
            if (v->producer) {
                if (v->producer->removed)
                    return kl_errorf(KILN_ERR_INTERNAL, "node '%s' (%s): input %zu '%s' comes from removed node '%s'",
                                     kl_node_label(n), n->op_type, k, v->name, kl_node_label(v->producer));
                if (v->producer->graph != g || v->producer->index >= i)
                    return kl_errorf(KILN_ERR_INTERNAL,
                                     "node '%s' (%s): input %zu '%s' is produced by '%s' (%s), which does not come before it",
                                     kl_node_label(n), n->op_type, k, v->name, kl_node_label(v->producer),
                                     v->producer->op_type);
            } else if (!(v->flags & (KL_VALUE_GRAPH_INPUT | KL_VALUE_INITIALIZER))) {
                return kl_errorf(KILN_ERR_INTERNAL, "node '%s' (%s): input %zu '%s' is never produced",
                                 kl_node_label(n), n->op_type, k, v->name);
            }
        }
        for (size_t k = 0; k < n->n_outputs; k++) {
            const kl_value *v = n->outputs[k];
            if (!v) continue;
            if (v->graph != g || v->id >= g->n_values || g->values[v->id] != v)
                return kl_errorf(KILN_ERR_INTERNAL, "node '%s' (%s): output %zu '%s' is not a value of the graph",
                                 kl_node_label(n), n->op_type, k, v->name);
            if (v->producer != n || v->producer_output != (int)k)
                return kl_errorf(KILN_ERR_INTERNAL, "node '%s' (%s): output %zu '%s' is produced by %s'%s'",
                                 kl_node_label(n), n->op_type, k, v->name, v->producer ? "" : "no node, not ",
                                 v->producer ? kl_node_label(v->producer) : kl_node_label(n));
            if (v->flags & (KL_VALUE_GRAPH_INPUT | KL_VALUE_INITIALIZER))
                return kl_errorf(KILN_ERR_INTERNAL, "node '%s' (%s): output '%s' is also a graph input or initializer",
                                 kl_node_label(n), n->op_type, v->name);
        }
    }
    for (size_t i = 0; i < g->n_outputs; i++) {
        const kl_value *v = g->outputs[i];
        if (!v) continue;
        bool ok = (v->producer && !v->producer->removed) ||
                  (v->flags & (KL_VALUE_GRAPH_INPUT | KL_VALUE_INITIALIZER)) || v->graph != g;
        if (!ok) return kl_errorf(KILN_ERR_INTERNAL, "graph output '%s' is never produced", v->name);
    }
    for (size_t i = 0; i < g->n_initializers; i++) {
        const kl_value *v = g->initializers[i];
        if (!(v->flags & KL_VALUE_INITIALIZER) || (!v->init && !v->sparse_init))
            return kl_errorf(KILN_ERR_INTERNAL, "initializer '%s' has no data", v->name);
        if (v->producer && !v->producer->removed)
            return kl_errorf(KILN_ERR_INTERNAL, "initializer '%s' is also produced by node '%s'",
                             v->name, kl_node_label(v->producer));
    }
    if (!g->uses_built) return KILN_OK;
    verify_ctx vc = {kl_calloc(g->n_values ? g->n_values : 1, sizeof(size_t)), NULL};
    if (!vc.count) return KILN_ERR_NO_MEMORY;
    kiln_status s = KILN_OK;
    for (size_t i = 0; i < g->n_nodes && !s; i++) {
        kl_node *n = g->nodes[i];
        if (n->removed) continue;
        for (size_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] && n->inputs[k]->graph == g) vc.count[n->inputs[k]->id]++;
        s = node_sub_reads(g, n, sub_count, &vc);
    }
    for (size_t i = 0; i < g->n_values && !s; i++) {
        const kl_value *v = g->values[i];
        if (vc.count[i] != v->n_uses) {
            s = kl_errorf(KILN_ERR_INTERNAL, "value '%s' has %zu readers but its consumer list has %zu",
                          v->name, vc.count[i], v->n_uses);
            break;
        }
        for (size_t u = 0; u < v->n_uses && !s; u++) {
            const kl_use *us = &v->uses[u];
            if (us->node->removed || us->input >= us->node->n_inputs || us->node->inputs[us->input] != v)
                s = kl_errorf(KILN_ERR_INTERNAL, "value '%s': consumer list names node '%s' input %zu, which reads %s",
                              v->name, kl_node_label(us->node), us->input,
                              us->node->removed ? "nothing (removed)" : "another value");
        }
    }
    kl_free(vc.count);
    return s;
}

/* ---- attributes ----------------------------------------------------------------------------- */

kl_attr kl_attr_of_int(const char *name, int64_t v) {
    kl_attr a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.type = KL_ATTR_INT;
    a.i = v;
    return a;
}

kl_attr kl_attr_of_float(const char *name, float v) {
    kl_attr a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.type = KL_ATTR_FLOAT;
    a.f = v;
    return a;
}

kiln_status kl_attr_of_ints(kl_model *m, const char *name, const int64_t *v, size_t n, kl_attr *out) {
    memset(out, 0, sizeof *out);
    out->name = name;
    out->type = KL_ATTR_INTS;
    out->n = n;
    out->ints = kl_arena_array(&m->arena, n ? n : 1, sizeof *out->ints);
    if (!out->ints) return KILN_ERR_NO_MEMORY;
    if (n) memcpy(out->ints, v, n * sizeof *v);
    return KILN_OK;
}
