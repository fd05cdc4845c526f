/*
 * remove_identity: nodes that pass their input through unchanged --
 * Identity, Dropout in inference (mask output unused), Cast to the type it
 * already has, a Transpose pair that cancels, a Reshape to the shape the
 * input already has (static).
 */
#include <string.h>

#include "passes/passes_internal.h"

bool kl_pass_is(const kl_node *n, const char *op) {
    return !n->removed && !n->domain[0] && strcmp(n->op_type, op) == 0;
}

/* Rewire readers of node n's output 0 to `src` and remove n. */
static kiln_status bypass(kl_pass_ctx *c, kl_node *n, kl_value *src) {
    kl_value *y = n->outputs[0];
    kl_node_remove(n);
    KL_TRY(kl_value_replace(c->g, y, src));
    return kl_pass_commit(c, kl_node_label(n));
}

/* Is node n a pass-through of input 0 (see the file comment)?  For a
 * Transpose pair, *src is set to the first Transpose's input. */
static bool pass_through(kl_pass_ctx *c, kl_node *n, kl_value **src) {
    if (n->n_outputs < 1 || !n->outputs[0] || n->n_inputs < 1 || !n->inputs[0]) return false;
    kl_value *x = n->inputs[0], *y = n->outputs[0];
    *src = x;
    if (kl_pass_is(n, "Identity")) return x->type.kind == KL_TYPE_TENSOR || x->type.kind == y->type.kind;
    if (kl_pass_is(n, "Dropout")) {
        /* Inference: training_mode absent or a constant false; the mask unused. */
        if (n->n_outputs > 1 && n->outputs[1] && (n->outputs[1]->n_uses || kl_value_escapes(c->g, n->outputs[1])))
            return false;
        if (n->n_inputs > 2 && n->inputs[2]) {
            const kl_tensor *t = kl_value_const(c->m, n->inputs[2]);
            if (!t || t->count != 1 || kl_tensor_get_f64(t, 0) != 0.0) return false;
        }
        if (n->opset < 7 && kl_node_attr_int(n, "is_test", 0) == 0) return false;
        return true;
    }
    if (kl_pass_is(n, "Cast")) {
        int64_t to = kl_node_attr_int(n, "to", 0);
        return x->type.kind == KL_TYPE_TENSOR && x->type.elem && to == (int64_t)x->type.elem &&
               n->opset >= 6;
    }
    if (kl_pass_is(n, "Reshape")) {
        const kl_shape *xs = &x->type.shape, *ys = &y->type.shape;
        if (x->type.kind != KL_TYPE_TENSOR || !kl_shape_is_static(xs) || !kl_shape_is_static(ys) ||
            xs->rank != ys->rank)
            return false;
        for (int i = 0; i < xs->rank; i++)
            if (xs->dims[i].value != ys->dims[i].value) return false;
        return true;
    }
    if (kl_pass_is(n, "Transpose")) {
        kl_node *p = x->producer;
        if (!p || !kl_pass_is(p, "Transpose") || !p->inputs[0]) return false;
        const int64_t *a, *b;
        int64_t na = kl_node_attr_ints(p, "perm", &a), nb = kl_node_attr_ints(n, "perm", &b);
        if (na < 0 || na != nb || na > KILN_MAX_RANK) return false;
        for (int64_t i = 0; i < na; i++)
            if (a[i] < 0 || a[i] >= na || b[i] < 0 || b[i] >= na || a[b[i]] != i) return false;
        *src = p->inputs[0];
        return true;
    }
    return false;
}

kiln_status kl_pass_remove_identity(kl_pass_ctx *c) {
    kl_graph *g = c->g;
    for (size_t i = 0; i < g->n_nodes; i++) {
        kl_node *n = g->nodes[i];
        kl_value *src;
        if (n->removed || !pass_through(c, n, &src)) continue;
        if (!kl_value_can_replace(g, n->outputs[0], src)) continue;
        if (!kl_pass_begin(c)) return KILN_OK;
        KL_TRY(bypass(c, n, src));
    }
    return KILN_OK;
}
