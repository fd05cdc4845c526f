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
 *
 * sink_gather_attention carries such a Gather (after sink_gather has moved
 * it up to the last attention block's residual Add) on into the block:
 *   - through the output projection between its flatten and unflatten
 *     Reshapes: Gather(Reshape(L(Reshape(a)))) -> L(Gather(a)), L a
 *     row-wise linear layer (MatMul, Gemm, kiln.FusedMatMul by a constant
 *     matrix);
 *   - into a kiln.Attention without a mask, on its sequence axis: the
 *     attention of the one query row against every key,
 *     Reshape(Attention(Gather(q, [i]), k, v)) (ViT-B/16's last attention
 *     on 1 of 197 rows);
 *   - above a column Slice of a packed QKV projection:
 *     Gather(Slice(p)) -> Slice(Gather(p)), the Slice leaving the gathered
 *     axis whole (on the GPU the Gather of one row of p is then a view and
 *     the Slice one the attention reads in place);
 *   - out of that projection: the query row gets its own product by the
 *     query columns of the weights, the projection keeps the key and value
 *     columns.
 * A separate pass so that `--disable-pass sink_gather_attention` measures it.
 */
#include <string.h>

#include "passes/passes_transformer.h"

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

/* A new Gather(data, idx, axis) inserted before node `at`, labelled `origin`: its output in *out. */
static kiln_status new_gather(kl_pass_ctx *c, kl_value *data, const kl_value *idx, int64_t axis, const char *origin,
                              kl_node *at, kl_value **out) {
    kl_value *gi[2] = {data, (kl_value *)idx};
    kl_attr ga = kl_attr_of_int("axis", axis);
    kl_node *n;
    KL_TRY(kl_value_new(c->g, data->name, NULL, out));
    KL_TRY(kl_node_new(c->g, NULL, "Gather", "", gi, 2, out, 1, &ga, 1, origin, at, &n));
    return kl_node_infer(c->m, n);
}

/* A new 1-D int64 constant of the n values v. */
static kiln_status i64_const(kl_pass_ctx *c, const char *hint, int64_t *v, int64_t n, kl_value **out) {
    int64_t d = n;
    kl_tensor t = {"", KILN_DTYPE_INT64, 1, &d, n, v, (size_t)n * sizeof *v, NULL, false, NULL, 0};
    return kl_value_new_const(c->g, hint, &t, out);
}

/* Copy n's attributes into attrs[16] (false: more than that). */
static bool copy_attrs(const kl_node *n, kl_attr *attrs, size_t *na) {
    if (n->n_attrs > 16) return false;
    for (size_t a = 0; a < n->n_attrs; a++) attrs[a] = n->attrs[a];
    *na = n->n_attrs;
    return true;
}

/* Gather(x, axis, i) of a float Slice x = Slice(p, starts, ends, axes[, steps]) that leaves the gathered axis
 * whole, i one constant index (a scalar or a 1-element list): Slice(Gather(p, axis, i), ...), the sliced axes
 * renumbered when a scalar index removes the axis.  (A class token's query columns of a packed QKV
 * projection: the Gather of the projection's row is a view on the GPU, and the Slice of it one the
 * attention reads in place.) */
static kiln_status sink_slice(kl_pass_ctx *c, kl_node *gn, bool *moved) {
    kl_graph *g = c->g;
    kl_value *x = gn->inputs[0];
    kl_node *s = kl_tp_producer(c, x);
    const kl_tensor *it = gn->inputs[1] ? kl_value_const(c->m, gn->inputs[1]) : NULL;
    if (!kl_tp_is_op(s, "Slice") || s->opset < 10 || s->n_inputs < 4 || s->n_inputs > 5 || !s->inputs[3] ||
        s->n_outputs != 1 || !s->inputs[0] || kl_value_only_use(g, x) != gn || gn->n_outputs != 1 || !it ||
        it->rank > 1 || it->count != 1 || (it->dtype != KILN_DTYPE_INT64 && it->dtype != KILN_DTYPE_INT32))
        return KILN_OK;
    int r = x->type.shape.rank;
    int64_t axis = kl_node_attr_int(gn, "axis", 0), ax[8];
    if (axis < 0) axis += r;
    const kl_tensor *at = kl_value_const(c->m, s->inputs[3]);
    if (r < 1 || axis < 0 || axis >= r || !at || at->rank != 1 || at->count < 1 || at->count > 8 ||
        !kl_tensor_to_i64(at, ax, 8))
        return KILN_OK;
    for (int64_t k = 0; k < at->count; k++) {
        if (ax[k] < 0) ax[k] += r;
        if (ax[k] < 0 || ax[k] >= r || ax[k] == axis) return KILN_OK;
        if (it->rank == 0 && ax[k] > axis) ax[k]--;
    }
    if (!kl_pass_begin(c)) return KILN_OK;
    kl_node *both[2] = {s, gn};
    const char *label = kl_nodes_origin(c->m, both, 2), *g_origin = kl_nodes_origin(c->m, &gn, 1),
               *s_origin = kl_nodes_origin(c->m, &s, 1);
    if (!label || !g_origin || !s_origin) return KILN_ERR_NO_MEMORY;
    kl_value *gv, *axv, *in[5];
    kl_node *n;
    KL_TRY(new_gather(c, s->inputs[0], gn->inputs[1], axis, g_origin, s, &gv));
    KL_TRY(i64_const(c, "gathered_slice_axes", ax, at->count, &axv));
    size_t ni = s->n_inputs;
    for (size_t k = 0; k < ni; k++) in[k] = s->inputs[k];
    in[0] = gv;
    in[3] = axv;
    kl_value *y = gn->outputs[0];
    kl_node_remove(gn);
    kl_node_remove(s);
    KL_TRY(kl_node_new(g, NULL, "Slice", "", in, ni, &y, 1, NULL, 0, s_origin, gn, &n));
    KL_TRY(kl_node_infer(c->m, n));
    KL_TRY(kl_pass_commit(c, label));
    *moved = true;
    return KILN_OK;
}

/* Gather(z, axis <= 1, i) of z = Reshape(l), l a row-wise linear layer of f = Reshape(a): a [d0, d1, E] ->
 * f [d0*d1, E] -> l [d0*d1, N] -> z [d0, d1, N] (the flatten and unflatten around a transformer's output
 * projection; z's d0 follows from its count and d1, so it may be unknown).  The gathered rows are the layer
 * applied to Gather(a, axis, i) [d_other, E], which is the Gather's output [d_other, N] directly. */
static kiln_status sink_linear(kl_pass_ctx *c, kl_node *gn, int axis, const kl_value *idx, bool *moved) {
    kl_graph *g = c->g;
    kl_value *z = gn->inputs[0];
    kl_node *ru = kl_tp_producer(c, z);
    if (axis > 1 || !kl_tp_is_op(ru, "Reshape") || ru->n_outputs != 1 || !ru->inputs[0]) return KILN_OK;
    kl_value *l = ru->inputs[0];
    kl_node *lin = kl_tp_producer(c, l);
    if (!kl_tp_row_linear(c, lin) || lin->n_inputs > 3 || kl_value_only_use(g, l) != ru || !lin->inputs[0])
        return KILN_OK;
    kl_value *f = lin->inputs[0];
    kl_node *rf = kl_tp_producer(c, f);
    if (!kl_tp_is_op(rf, "Reshape") || !rf->inputs[0] || kl_value_only_use(g, f) != lin) return KILN_OK;
    kl_value *a = rf->inputs[0];
    const kl_shape *as = &a->type.shape, *fs = &f->type.shape, *ls = &l->type.shape, *zs = &z->type.shape;
    if (as->rank != 3 || fs->rank != 2 || ls->rank != 2 || zs->rank != 3 || !kl_tp_dim_same(&as->dims[2], &fs->dims[1]) ||
        !kl_tp_dim_same(&as->dims[1], &zs->dims[1]) ||
        !kl_tp_dim_same(&ls->dims[1], &zs->dims[2]) || as->dims[axis].value == 1)
        return KILN_OK;
    kl_attr attrs[16];
    size_t na;
    if (!copy_attrs(lin, attrs, &na) || !kl_pass_begin(c)) return KILN_OK;
    kl_node *all[4] = {rf, lin, ru, gn};
    const char *label = kl_nodes_origin(c->m, all, 4), *g_origin = kl_nodes_origin(c->m, &gn, 1),
               *l_origin = kl_nodes_origin(c->m, &lin, 1);
    if (!label || !g_origin || !l_origin) return KILN_ERR_NO_MEMORY;
    kl_value *gv, *in[3] = {0};
    kl_node *n;
    KL_TRY(new_gather(c, a, idx, axis, g_origin, rf, &gv));
    size_t ni = lin->n_inputs;
    for (size_t k = 0; k < ni; k++) in[k] = lin->inputs[k];
    in[0] = gv;
    kl_value *y = gn->outputs[0];
    const char *op = lin->op_type, *dom = lin->domain;
    kl_node_remove(gn);
    kl_node_remove(ru);
    kl_node_remove(lin);
    kl_node_remove(rf);
    KL_TRY(kl_node_new(g, NULL, op, dom, in, ni, &y, 1, attrs, na, l_origin, gn, &n));
    KL_TRY(kl_node_infer(c->m, n));
    KL_TRY(kl_pass_commit(c, label));
    *moved = true;
    return KILN_OK;
}

/* Gather(y, axis, i) of y = kiln.Attention(q, k, v) without a mask, axis its sequence axis: the attention of
 * the one query row, Attention(Gather(q, axis, [i]), k, v), then a Reshape that drops the axis (a ViT's
 * class token after the last block: 1 query row against all keys instead of all of them). */
static kiln_status sink_attention(kl_pass_ctx *c, kl_node *gn, int axis, const kl_value *idx, bool *moved) {
    kl_graph *g = c->g;
    kl_value *x = gn->inputs[0];
    kl_node *at = kl_tp_producer(c, x);
    if (!kl_tp_is_kiln(at, "Attention") || at->n_outputs != 1 || at->n_inputs < 3 || at->n_inputs > 4 ||
        (at->n_inputs == 4 && at->inputs[3]) || !at->inputs[0] || !at->inputs[1] || !at->inputs[2] ||
        x->type.shape.rank != 3 || axis != (kl_node_attr_int(at, "seq_first", 0) ? 0 : 1))
        return KILN_OK;
    int64_t tgt[2] = {0, -1}; /* [B, 1, E] -> [B, E] */
    if (axis == 0) {          /* [1, B, E] -> [B, E] */
        tgt[0] = -1;
        tgt[1] = x->type.shape.dims[2].value;
        if (tgt[1] < 1) return KILN_OK;
    }
    kl_attr attrs[16];
    size_t na;
    if (!copy_attrs(at, attrs, &na) || !kl_pass_begin(c)) return KILN_OK;
    kl_node *both[2] = {at, gn};
    const char *label = kl_nodes_origin(c->m, both, 2), *g_origin = kl_nodes_origin(c->m, &gn, 1),
               *a_origin = kl_nodes_origin(c->m, &at, 1);
    if (!label || !g_origin || !a_origin) return KILN_ERR_NO_MEMORY;
    int64_t i = index_of(kl_value_const(c->m, idx));
    kl_value *iv, *tv, *qv, *av;
    KL_TRY(i64_const(c, "query_row", &i, 1, &iv));
    KL_TRY(i64_const(c, "query_row_shape", tgt, 2, &tv));
    kl_node *n;
    KL_TRY(new_gather(c, at->inputs[0], iv, axis, g_origin, at, &qv));
    kl_value *ai[3] = {qv, at->inputs[1], at->inputs[2]}, *y = gn->outputs[0];
    KL_TRY(kl_value_new(g, x->name, NULL, &av));
    kl_node_remove(gn);
    kl_node_remove(at);
    KL_TRY(kl_node_new(g, NULL, "Attention", KL_KILN_DOMAIN, ai, 3, &av, 1, attrs, na, a_origin, gn, &n));
    KL_TRY(kl_node_infer(c->m, n));
    kl_value *ri[2] = {av, tv};
    KL_TRY(kl_node_new(g, NULL, "Reshape", "", ri, 2, &y, 1, NULL, 0, g_origin, gn, &n));
    KL_TRY(kl_node_infer(c->m, n));
    KL_TRY(kl_pass_commit(c, label));
    *moved = true;
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
        for (size_t k = 0; k < p->n_inputs; k++) {
            in[k] = p->inputs[k];
            if (!take[k]) continue;
            KL_TRY(new_gather(c, p->inputs[k], idx, axis, g_origin, p, &in[k]));
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

/* Columns [*a, *b) of a width-`width` last axis that Slice node s takes (constant starts and ends, axes the last
 * axis, step 1; bounds clamped as Slice does), false for anything else. */
static bool col_slice(kl_pass_ctx *c, const kl_node *s, int64_t width, int64_t *a, int64_t *b) {
    int64_t v[2];
    if (!kl_tp_is_op(s, "Slice") || s->opset < 10 || s->n_inputs < 4 || s->n_inputs > 5 || !s->inputs[0] ||
        s->n_outputs != 1)
        return false;
    int r = s->inputs[0]->type.shape.rank;
    const kl_tensor *ts = kl_value_const(c->m, s->inputs[1]), *te = kl_value_const(c->m, s->inputs[2]),
                    *ta = kl_value_const(c->m, s->inputs[3]);
    if (r < 1 || !ts || !te || !ta || ts->count != 1 || te->count != 1 || ta->count != 1 || !kl_tensor_to_i64(ta, v, 1) ||
        (v[0] != -1 && v[0] != r - 1))
        return false;
    if (s->n_inputs == 5 && s->inputs[4]) {
        const kl_tensor *tp = kl_value_const(c->m, s->inputs[4]);
        if (!tp || tp->count != 1 || !kl_tensor_to_i64(tp, v, 1) || v[0] != 1) return false;
    }
    if (!kl_tensor_to_i64(ts, a, 1) || !kl_tensor_to_i64(te, b, 1)) return false;
    if (*a < 0) *a += width;
    if (*b < 0) *b += width;
    *a = *a < 0 ? 0 : *a > width ? width : *a;
    *b = *b < 0 ? 0 : *b > width ? width : *b;
    return *a < *b;
}

/* Columns [a, b) of constant w ([K, N] float, or a bias of N values shaped [1, ..., N]) as a new constant. */
static kiln_status const_cols(kl_pass_ctx *c, const kl_value *w, int64_t a, int64_t b, kl_value **out) {
    const kl_tensor *t = kl_value_const(c->m, w);
    int64_t n = t->dims[t->rank - 1], rows = t->count / n, d[2] = {rows, b - a};
    float *buf = kl_malloc((size_t)(rows * (b - a)) * sizeof(float)); /* (copied again into the arena) */
    if (!buf) return KILN_ERR_NO_MEMORY;
    for (int64_t r = 0; r < rows; r++) memcpy(buf + r * (b - a), (const float *)t->data + r * n + a, (size_t)(b - a) * sizeof(float));
    kl_tensor nt = {"", KILN_DTYPE_FLOAT, t->rank == 1 ? 1 : 2, t->rank == 1 ? d + 1 : d, rows * (b - a), buf,
                    (size_t)(rows * (b - a)) * sizeof(float), NULL, false, NULL, 0};
    kiln_status st = kl_value_new_const(c->g, w->name, &nt, out);
    kl_free(buf);
    return st;
}

/* Gather(p, axis, i) read only by a column Slice [a, b) of p = X W (+ bias) (MatMul or kiln.FusedMatMul by a
 * constant [K, N] W), while p's other readers are column Slices that all lie on one side of [a, b) (the class
 * token's query columns of a packed QKV projection, whose key and value columns every row needs):
 *   - the gathered query comes from its own product, Gather(X, axis, i) W[:, a:b] (+ bias[a:b]);
 *   - p keeps only the columns [lo, hi) the other Slices read, X W[:, lo:hi], their bounds moved down by lo.
 * The last attention of ViT-B/16 then projects its queries for 1 row instead of 197. */
static kiln_status sink_split_projection(kl_pass_ctx *c, kl_node *gn, bool *moved) {
    kl_graph *g = c->g;
    kl_value *p = gn->inputs[0], *y = gn->outputs[0];
    kl_node *l = kl_tp_producer(c, p), *sq = y ? kl_value_only_use(g, y) : NULL;
    const kl_tensor *it = gn->inputs[1] ? kl_value_const(c->m, gn->inputs[1]) : NULL;
    bool fm = kl_tp_is_kiln(l, "FusedMatMul");
    if (!l || (!fm && !(kl_tp_is_op(l, "MatMul") && l->n_inputs == 2)) || l->n_outputs != 1 || !sq || !it ||
        it->rank > 1 || it->count != 1 || (it->dtype != KILN_DTYPE_INT64 && it->dtype != KILN_DTYPE_INT32) ||
        p->n_uses < 2 || kl_value_escapes(g, p) || !l->inputs[0] || !l->inputs[1] || l->n_inputs > 3)
        return KILN_OK;
    const kl_value *w = l->inputs[1], *bias = l->n_inputs > 2 ? l->inputs[2] : NULL;
    const kl_tensor *wt = kl_value_const(c->m, w), *bt = bias ? kl_value_const(c->m, bias) : NULL;
    int r = p->type.shape.rank;
    int64_t axis = kl_node_attr_int(gn, "axis", 0);
    if (axis < 0) axis += r;
    if (!wt || wt->rank != 2 || wt->dtype != KILN_DTYPE_FLOAT || r < 2 || axis < 0 || axis >= r - 1 ||
        (r >= 3 && axis > r - 2) || l->inputs[0]->type.shape.rank != r || (bias && (!bt || bt->dtype != KILN_DTYPE_FLOAT)))
        return KILN_OK;
    int64_t n = wt->dims[1], a, b, lo = n, hi = 0;
    if (bt && (bt->rank < 1 || bt->count != n)) return KILN_OK;
    if (!col_slice(c, sq, n, &a, &b)) return KILN_OK;
    kl_node *others[8];
    size_t no = 0;
    for (size_t u = 0; u < p->n_uses; u++) {
        kl_node *o = p->uses[u].node;
        if (o == gn) continue;
        int64_t oa, ob;
        if (no == 8 || p->uses[u].input != 0 || !col_slice(c, o, n, &oa, &ob)) return KILN_OK;
        others[no++] = o;
        lo = oa < lo ? oa : lo;
        hi = ob > hi ? ob : hi;
    }
    if (!no || (b > lo && a < hi)) return KILN_OK;
    kl_attr attrs[16];
    size_t na;
    if (!copy_attrs(l, attrs, &na) || !kl_pass_begin(c)) return KILN_OK;
    kl_node *all[3] = {l, gn, sq};
    const char *label = kl_nodes_origin(c->m, all, 3), *g_origin = kl_nodes_origin(c->m, &gn, 1),
               *l_origin = kl_nodes_origin(c->m, &l, 1);
    if (!label || !g_origin || !l_origin) return KILN_ERR_NO_MEMORY;
    kl_value *x = l->inputs[0], *xg, *in[3] = {0};
    kl_node *nn;
    size_t ni = l->n_inputs;
    const char *op = l->op_type, *dom = l->domain;
    /* the query row: Gather(X) and its own product */
    KL_TRY(new_gather(c, x, gn->inputs[1], axis, g_origin, l, &xg));
    in[0] = xg;
    KL_TRY(const_cols(c, w, a, b, &in[1]));
    if (bias) KL_TRY(const_cols(c, bias, a, b, &in[2]));
    kl_value *yq = sq->outputs[0];
    kl_node_remove(sq);
    kl_node_remove(gn);
    KL_TRY(kl_node_new(g, NULL, op, dom, in, ni, &yq, 1, attrs, na, l_origin, sq, &nn));
    KL_TRY(kl_node_infer(c->m, nn));
    if (hi - lo < n) {
        /* the other readers' columns only */
        kl_value *pk;
        in[0] = x;
        KL_TRY(const_cols(c, w, lo, hi, &in[1]));
        if (bias) KL_TRY(const_cols(c, bias, lo, hi, &in[2]));
        KL_TRY(kl_value_new(g, p->name, NULL, &pk));
        KL_TRY(kl_node_new(g, NULL, op, dom, in, ni, &pk, 1, attrs, na, l_origin, l, &nn));
        KL_TRY(kl_node_infer(c->m, nn));
        for (size_t k = 0; k < no; k++) {
            int64_t oa, ob;
            col_slice(c, others[k], n, &oa, &ob);
            oa -= lo;
            ob -= lo;
            kl_value *sv, *ev;
            KL_TRY(i64_const(c, "kv_start", &oa, 1, &sv));
            KL_TRY(i64_const(c, "kv_end", &ob, 1, &ev));
            KL_TRY(kl_node_set_input(others[k], 0, pk));
            KL_TRY(kl_node_set_input(others[k], 1, sv));
            KL_TRY(kl_node_set_input(others[k], 2, ev));
            KL_TRY(kl_node_infer(c->m, others[k]));
        }
        kl_node_remove(l);
    }
    KL_TRY(kl_pass_commit(c, label));
    *moved = true;
    return KILN_OK;
}

kiln_status kl_pass_sink_gather_attention(kl_pass_ctx *c) {
    kl_graph *g = c->g;
    for (size_t i = 0; i < g->n_nodes; i++) {
        kl_node *gn = g->nodes[i];
        if (gn->removed || !kl_pass_is(gn, "Gather") || !gn->inputs[0] || gn->n_outputs != 1) continue;
        bool moved = false;
        if (kl_value_only_use(g, gn->inputs[0]) != gn) {
            KL_TRY(sink_split_projection(c, gn, &moved));
            if (c->stopped) return KILN_OK;
            if (moved) i = (size_t)-1;
            continue;
        }
        int r = gn->inputs[0]->type.shape.rank, axis;
        const kl_value *idx;
        if (r >= 2 && gather_scalar(c, gn, r, &axis, &idx)) {
            KL_TRY(sink_linear(c, gn, axis, idx, &moved));
            if (!moved && !c->stopped) KL_TRY(sink_attention(c, gn, axis, idx, &moved));
        }
        if (!moved && !c->stopped) KL_TRY(sink_slice(c, gn, &moved));
        if (c->stopped) return KILN_OK;
        if (moved) i = (size_t)-1; /* the new Gather is earlier: look again from the start */
    }
    return KILN_OK;
}
