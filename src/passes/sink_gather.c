/*
 * sink_gather.c — compute only the row a Gather keeps.
 *
 * A ViT classifies from its class token: `x[:, 0]` (Gather, axis 1, one
 * index) after the encoder's final LayerNorm.  Everything between the last
 * attention and that Gather works token by token (LayerNorm over the
 * features, the MLP's MatMuls against constant weights, GELU, the residual
 * Adds), so the other 196 rows of the last block's MLP are computed and
 * thrown away: about a twelfth of the encoder's MLP work.
 *
 * This pass moves such a Gather above the node that makes its input when
 * that node treats the gathered axis row by row:
 *   Gather(op(a, b, ...), axis, i) -> op(Gather(a, axis, i), Gather(b, ...), ...)
 * for
 *   - elementwise ops (Add, Sub, Mul, Div, Pow, the unary activations):
 *     each input of the output's rank with the same size on that axis is
 *     gathered; an input of lower rank that does not reach the axis
 *     (broadcasts from the right) is read as it is;
 *   - LayerNormalization whose normalized axes all come after that axis;
 *   - MatMul of A (rank >= 3; the axis a batch axis or the row axis,
 *     rank - 2) by a constant 2-D B.
 * The Gather must be the only reader of that value, and its indices a
 * constant scalar (the axis is then removed).  Gathers of one value with
 * the same axis and index are merged first, so a value read by a residual
 * Add and a LayerNorm (both now gathered) moves on up.  The result is the
 * same arithmetic on fewer rows.
 */
#include <string.h>

#include "passes/passes_internal.h"

/* The constant scalar index of Gather g and its axis normalized against the data rank r. */
static bool gather_scalar(kl_pass_ctx *c, const kl_node *g, int r, int *axis, const kl_value **idx) {
    if (!kl_pass_is(g, "Gather") || g->n_inputs != 2 || g->n_outputs != 1 || !g->inputs[0] || !g->inputs[1] ||
        !g->outputs[0])
        return false;
    const kl_tensor *t = kl_value_const(c->m, g->inputs[1]);
    if (!t || t->rank != 0 || t->count != 1 || (t->dtype != KILN_DTYPE_INT64 && t->dtype != KILN_DTYPE_INT32))
        return false;
    int64_t a = kl_node_attr_int(g, "axis", 0);
    if (a < 0) a += r;
    if (a < 0 || a >= r) return false;
    *axis = (int)a;
    *idx = g->inputs[1];
    return true;
}

static bool same_dim(const kl_dim *a, const kl_dim *b) {
    if (a->value >= 0 || b->value >= 0) return a->value == b->value;
    return a->param && b->param && strcmp(a->param, b->param) == 0;
}

/* Is op (domain "") applied element by element (inputs broadcast)? */
static bool elementwise(const kl_node *n) {
    static const char *const ops[] = {"Add", "Sub", "Mul", "Div", "Pow", "Relu", "Sigmoid", "Tanh", "Erf", "Sqrt",
                                      "Exp", "Neg", "Abs", "Gelu", "Softplus", "LeakyRelu", "HardSigmoid",
                                      "HardSwish", "Elu", "Selu", "Identity", "Reciprocal", "Clip", "Cast"};
    if (n->domain[0]) return false;
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (!strcmp(n->op_type, ops[i])) return true;
    return false;
}

/* The value of a constant scalar index tensor (int64 or int32). */
static int64_t index_of(const kl_tensor *t) {
    if (t->dtype == KILN_DTYPE_INT64) {
        int64_t v;
        memcpy(&v, t->data, 8);
        return v;
    }
    int32_t v;
    memcpy(&v, t->data, 4);
    return v;
}

/* Merge one other Gather of g's data with g's axis and index into g (readers moved to g's output). */
static kiln_status merge_twin(kl_pass_ctx *c, kl_node *g, int r, int axis, const kl_value *idx, bool *merged) {
    kl_value *x = g->inputs[0];
    int64_t want = index_of(kl_value_const(c->m, idx));
    for (size_t u = 0; u < x->n_uses; u++) {
        kl_node *o = x->uses[u].node;
        int oa;
        const kl_value *oi;
        if (o == g || o->removed || x->uses[u].input != 0 || !gather_scalar(c, o, r, &oa, &oi) || oa != axis ||
            index_of(kl_value_const(c->m, oi)) != want || o->index < g->index ||
            !kl_value_can_replace(c->g, o->outputs[0], g->outputs[0]))
            continue;
        if (!kl_pass_begin(c)) return KILN_OK;
        KL_TRY(kl_value_replace(c->g, o->outputs[0], g->outputs[0]));
        kl_node_remove(o);
        KL_TRY(kl_pass_commit(c, kl_nodes_origin(c->m, &o, 1)));
        *merged = true;
        return KILN_OK; /* the use list changed: the caller looks again */
    }
    return KILN_OK;
}

kiln_status kl_pass_sink_gather(kl_pass_ctx *c) {
    kl_graph *g = c->g;
    for (size_t i = 0; i < g->n_nodes; i++) {
        kl_node *gn = g->nodes[i];
        if (gn->removed || !kl_pass_is(gn, "Gather") || !gn->inputs[0]) continue;
        kl_value *x = gn->inputs[0];
        int r = x->type.shape.rank, axis;
        const kl_value *idx;
        if (r < 2 || !gather_scalar(c, gn, r, &axis, &idx)) continue;
        bool merged = false;
        KL_TRY(merge_twin(c, gn, r, axis, idx, &merged));
        if (c->stopped) return KILN_OK;
        if (merged) {
            i--; /* this Gather again: more twins, or its move */
            continue;
        }
        kl_node *p = x->producer;
        if (!p || p->removed || p->n_outputs != 1 || kl_value_only_use(g, x) != gn || p->n_inputs > 8) continue;
        const kl_shape *xs = &x->type.shape;
        bool ln = kl_pass_is(p, "LayerNormalization"), mm = kl_pass_is(p, "MatMul");
        if (!elementwise(p) && !ln && !mm) continue;
        /* which inputs to gather */
        bool take[8] = {0}, ok = true;
        for (size_t k = 0; k < p->n_inputs && ok; k++) {
            const kl_value *u = p->inputs[k];
            if (!u || (mm && k == 1)) continue; /* (MatMul's B: checked below) */
            int ur = u->type.shape.rank;
            if (ur < 0) ok = false;
            else if (ur == r) take[k] = same_dim(&u->type.shape.dims[axis], &xs->dims[axis]) && xs->dims[axis].value != 1;
            else ok = ur <= r - 1 - axis; /* broadcast from the right, short of the axis */
            if (ur == r && !take[k]) ok = false;
        }
        if (!ok) continue;
        if (ln) {
            int64_t la = kl_node_attr_int(p, "axis", -1);
            if (la < 0) la += r;
            if (la <= axis || p->n_outputs != 1 || !take[0]) continue;
        }
        if (mm) {
            /* A [.., M, K] gathered on a batch or the row axis; B a constant matrix */
            if (p->n_inputs != 2 || !take[0] || take[1] || r < 3 || axis > r - 2 || !p->inputs[1] ||
                p->inputs[1]->type.shape.rank != 2 || !kl_value_const(c->m, p->inputs[1]))
                continue;
        }
        if (p->n_attrs > 16) continue; /* (more than the copy below holds: left as it is) */
        if (kl_value_escapes(g, x) || !kl_pass_begin(c)) {
            if (c->stopped) return KILN_OK;
            continue;
        }
        /* the moved Gathers keep the Gather's origin, the op its own (profiles and reports name them as before) */
        kl_node *both[2] = {p, gn};
        const char *label = kl_nodes_origin(c->m, both, 2), *g_origin = kl_nodes_origin(c->m, &gn, 1),
                   *p_origin = kl_nodes_origin(c->m, &p, 1);
        if (!label || !g_origin || !p_origin) return KILN_ERR_NO_MEMORY;
        kl_value *in[8] = {0};
        kl_attr ga = kl_attr_of_int("axis", axis);
        for (size_t k = 0; k < p->n_inputs; k++) {
            in[k] = p->inputs[k];
            if (!take[k]) continue;
            kl_value *gv, *gi[2] = {p->inputs[k], (kl_value *)idx};
            kl_node *n;
            KL_TRY(kl_value_new(g, p->inputs[k]->name, NULL, &gv));
            KL_TRY(kl_node_new(g, NULL, "Gather", "", gi, 2, &gv, 1, &ga, 1, g_origin, p, &n));
            KL_TRY(kl_node_infer(c->m, n));
            in[k] = gv;
        }
        /* the op again on the gathered inputs, making the Gather's output; LayerNorm's non-negative axis
         * moves down by one */
        kl_attr attrs[16];
        size_t na = 0;
        for (size_t a = 0; a < p->n_attrs; a++) {
            attrs[na] = p->attrs[a];
            if (ln && !strcmp(p->attrs[a].name, "axis") && attrs[na].i > axis) attrs[na].i--;
            na++;
        }
        kl_value *y = gn->outputs[0];
        size_t np = p->n_inputs;
        const char *op = p->op_type, *dom = p->domain;
        kl_node_remove(gn);
        kl_node_remove(p);
        kl_node *n;
        KL_TRY(kl_node_new(g, NULL, op, dom, in, np, &y, 1, attrs, na, p_origin, gn, &n));
        KL_TRY(kl_node_infer(c->m, n));
        KL_TRY(kl_pass_commit(c, label));
        if (c->stopped) return KILN_OK;
        i = (size_t)-1; /* the new Gathers are earlier in the order: look again from the start */
    }
    return KILN_OK;
}
