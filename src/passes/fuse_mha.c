/*
 * split_qkv, sink_mha_transposes: torch nn.MultiheadAttention around
 * kiln.Attention (fuse_attention.c).
 *
 * split_qkv: torch 2.x splits the packed in-projection P [S, B, K*E]
 * (K = 3: q, k, v) as
 *   Reshape [S, B, K, E] -> Unsqueeze(0) -> Transpose (3,1,2,0,4)
 *     -> Squeeze(3) = [K, S, B, E] -> Gather(i, axis 0) = [S, B, E]
 * which is the column slice P[..., i*E:(i+1)*E].  Each Gather becomes
 * Slice(P, [i*E], [(i+1)*E], [-1]): the form torch 1.13's chunk exports,
 * which fuse_attention traces and the executors read in place.
 *
 * sink_mha_transposes: a seq-first kiln.Attention whose Q, K, V come
 * (directly or through such Slices) from linear layers of T =
 * Transpose(1,0,2)(X), X [B, S, E], and whose output Y [S, B, Ev] goes
 *   Reshape [S*B, Ev] -> Gemm | FusedMatMul -> Reshape [S, B, N]
 *     -> Transpose (1,0,2) = Z [B, S, N]
 * is rewritten batch-first: the projections read X, kiln.Attention has
 * seq_first 0, the Reshapes flatten/unflatten [B*S] rows and Z is the last
 * Reshape's output.  The projections and the output layer are row-wise, so
 * they commute with the row permutation.  Only when every value in between
 * has no reader outside the block.
 */
#include <stdio.h>

#include "passes/passes_transformer.h"

/* ---- split_qkv ------------------------------------------------------------------------------ */

/* Constant integer contents of v (at most max values, any integer dtype):
 * their count, or -1. */
static int64_t const_ints(kl_pass_ctx *c, const kl_value *v, int64_t *out, int64_t max) {
    const kl_tensor *t = v ? kl_value_const(c->m, v) : NULL;
    if (!t || t->count > max || t->rank > 1 || !kl_tensor_to_i64(t, out, max)) return -1;
    return t->count;
}

/* The axes of Unsqueeze/Squeeze node n (input 1 from opset 13, else the
 * attribute) when it lists exactly one axis: that axis, else INT64_MIN. */
static int64_t one_axis(kl_pass_ctx *c, const kl_node *n) {
    int64_t a[2];
    if (n->opset >= 13) return n->n_inputs == 2 && const_ints(c, n->inputs[1], a, 2) == 1 ? a[0] : INT64_MIN;
    const int64_t *v;
    return n->n_inputs == 1 && kl_node_attr_ints(n, "axes", &v) == 1 ? v[0] : INT64_MIN;
}

/* Does Transpose node n have exactly permutation want[0..r)? */
static bool perm_is(const kl_node *n, const int64_t *want, int r) {
    const int64_t *pv;
    return kl_node_attr_ints(n, "perm", &pv) == r && memcmp(pv, want, (size_t)r * sizeof *pv) == 0;
}

/* The packed split starting at Reshape rs, rewritten when it matches. */
static kiln_status try_split(kl_pass_ctx *c, kl_node *rs) {
    static const int64_t p5[5] = {3, 1, 2, 0, 4};
    kl_value *p = rs->inputs[0];
    if (rs->n_inputs != 2 || !kl_tp_is_f32(p) || !rs->inputs[1]) return KILN_OK;
    const kl_shape *ps = &p->type.shape, *os = &rs->outputs[0]->type.shape;
    if (ps->rank != 3 || os->rank != 4 || !kl_tp_dim_same(&ps->dims[0], &os->dims[0]) ||
        !kl_tp_dim_same(&ps->dims[1], &os->dims[1]))
        return KILN_OK;
    int64_t K = os->dims[2].value, E = os->dims[3].value;
    if (K < 1 || K > 8 || E <= 0 || ps->dims[2].value != K * E) return KILN_OK;
    kl_node *un = kl_value_only_use(c->g, rs->outputs[0]);
    if (!kl_tp_is_op(un, "Unsqueeze") || un->inputs[0] != rs->outputs[0] || one_axis(c, un) != 0) return KILN_OK;
    kl_node *tr = kl_value_only_use(c->g, un->outputs[0]);
    if (!kl_tp_is_op(tr, "Transpose") || !perm_is(tr, p5, 5)) return KILN_OK;
    kl_node *sq = kl_value_only_use(c->g, tr->outputs[0]);
    int64_t ax = sq && kl_tp_is_op(sq, "Squeeze") && sq->inputs[0] == tr->outputs[0] ? one_axis(c, sq) : INT64_MIN;
    if (ax != 3 && ax != -2) return KILN_OK;
    /* [K, S, B, E]: read only by Gathers of one constant index on axis 0 */
    kl_value *kv = sq->outputs[0];
    kl_node *gathers[8];
    int64_t idx[8];
    size_t ng = kv->n_uses;
    if (!ng || ng > 8 || kl_value_escapes(c->g, kv)) return KILN_OK;
    for (size_t u = 0; u < ng; u++) {
        kl_node *g = kv->uses[u].node;
        int64_t i[2];
        if (!kl_tp_is_op(g, "Gather") || g->n_inputs != 2 || g->inputs[0] != kv || kv->uses[u].input != 0 ||
            kl_node_attr_int(g, "axis", 0) != 0 || const_ints(c, g->inputs[1], i, 2) != 1 ||
            kl_value_const(c->m, g->inputs[1])->rank != 0 || i[0] < -K || i[0] >= K)
            return KILN_OK;
        gathers[u] = g;
        idx[u] = i[0] < 0 ? i[0] + K : i[0];
    }
    if (!kl_pass_begin(c)) return KILN_OK;
    kl_node *all[12] = {rs, un, tr, sq};
    for (size_t u = 0; u < ng; u++) all[4 + u] = gathers[u];
    const char *origin = kl_nodes_origin(c->m, all, 4 + ng);
    if (!origin) return KILN_ERR_NO_MEMORY;
    for (size_t i = 0; i < 4 + ng; i++) kl_node_remove(all[i]);
    int64_t one = 1, ax_v = -1;
    kl_tensor t = {"", KILN_DTYPE_INT64, 1, &one, 1, &ax_v, 8, NULL, false, NULL, 0};
    kl_value *axes;
    char hint[256];
    snprintf(hint, sizeof hint, "%s_axes", p->name);
    KL_TRY(kl_value_new_const(c->g, hint, &t, &axes));
    for (size_t u = 0; u < ng; u++) {
        int64_t st = idx[u] * E, en = st + E;
        kl_value *in[4] = {p, NULL, NULL, axes};
        t.data = &st;
        snprintf(hint, sizeof hint, "%s_start%lld", p->name, (long long)st);
        KL_TRY(kl_value_new_const(c->g, hint, &t, &in[1]));
        t.data = &en;
        snprintf(hint, sizeof hint, "%s_end%lld", p->name, (long long)en);
        KL_TRY(kl_value_new_const(c->g, hint, &t, &in[2]));
        kl_node *n;
        KL_TRY(kl_node_new(c->g, NULL, "Slice", "", in, 4, &gathers[u]->outputs[0], 1, NULL, 0, origin, gathers[u],
                           &n));
        KL_TRY(kl_node_infer(c->m, n));
    }
    return kl_pass_commit(c, origin);
}

kiln_status kl_pass_split_qkv(kl_pass_ctx *c) {
    for (size_t i = 0; i < c->g->n_nodes; i++) {
        kl_node *n = c->g->nodes[i];
        if (!kl_tp_is_op(n, "Reshape")) continue;
        KL_TRY(try_split(c, n));
        if (c->stopped) return KILN_OK;
    }
    return KILN_OK;
}

/* ---- sink_mha_transposes --------------------------------------------------------------------- */

#define SINK_MAX 24

typedef struct sink_match {
    kl_node *proj[3], *slice[3], *att, *t_in, *r_flat, *lin, *r_unflat, *t_out;
    size_t n_proj, n_slice;
} sink_match;

/* Is Slice node s a constant slice of its input's last axis (step 1)? */
static bool last_axis_slice(kl_pass_ctx *c, const kl_node *s) {
    int64_t v[2];
    if (!kl_tp_is_op(s, "Slice") || s->opset < 10 || s->n_inputs < 3 || s->n_inputs > 5) return false;
    int r = s->inputs[0] ? s->inputs[0]->type.shape.rank : -1;
    if (r < 1 || const_ints(c, s->inputs[1], v, 2) != 1 || const_ints(c, s->inputs[2], v, 2) != 1) return false;
    if (s->n_inputs > 3 && s->inputs[3] && (const_ints(c, s->inputs[3], v, 2) != 1 || (v[0] != -1 && v[0] != r - 1)))
        return false;
    if (s->n_inputs == 3 || !s->inputs[3]) return false; /* axes left out: axis 0 */
    if (s->n_inputs > 4 && s->inputs[4] && (const_ints(c, s->inputs[4], v, 2) != 1 || v[0] != 1)) return false;
    return true;
}

/* Does every reader of v belong to nodes[0..n) (and v not escape)? */
static bool readers_within(kl_pass_ctx *c, const kl_value *v, kl_node *const *nodes, size_t n) {
    if (!v || !v->n_uses || kl_value_escapes(c->g, v)) return false;
    for (size_t u = 0; u < v->n_uses; u++) {
        bool in = false;
        for (size_t i = 0; i < n && !in; i++) in = v->uses[u].node == nodes[i];
        if (!in) return false;
    }
    return true;
}

/* A 2- or 3-element constant Reshape target without 0 (no copied dims). */
static int64_t plain_target(kl_pass_ctx *c, const kl_node *r, int64_t *t) {
    if (r->n_inputs != 2 || kl_node_attr_int(r, "allowzero", 0)) return -1;
    int64_t n = const_ints(c, r->inputs[1], t, 3);
    for (int64_t i = 0; i < n; i++)
        if (t[i] == 0 || t[i] < -1) return -1;
    return n;
}

/* The block around seq-first kiln.Attention a (see the file comment). */
static bool sink_find(kl_pass_ctx *c, kl_node *a, sink_match *s, int64_t *unflat) {
    memset(s, 0, sizeof *s);
    s->att = a;
    if (kl_node_attr_int(a, "seq_first", 0) != 1 || a->n_inputs < 3 || a->n_outputs != 1) return false;
    for (int i = 0; i < 3; i++) {
        kl_value *v = a->inputs[i];
        kl_node *p = kl_tp_producer(c, v);
        if (p && last_axis_slice(c, p)) {
            if (!readers_within(c, v, &a, 1)) return false;
            bool seen = false;
            for (size_t k = 0; k < s->n_slice; k++) seen |= s->slice[k] == p;
            if (!seen) s->slice[s->n_slice++] = p;
            v = p->inputs[0];
            p = kl_tp_producer(c, v);
        }
        if (!kl_tp_row_linear(c, p) || kl_tp_is_op(p, "Gemm")) return false;
        bool seen = false;
        for (size_t k = 0; k < s->n_proj; k++) seen |= s->proj[k] == p;
        if (!seen) s->proj[s->n_proj++] = p;
    }
    /* every projection reads T = Transpose(1,0,2)(X), read by them alone */
    static const int64_t p3[3] = {1, 0, 2};
    kl_value *t = s->proj[0]->inputs[0];
    s->t_in = kl_tp_producer(c, t);
    if (!kl_tp_is_op(s->t_in, "Transpose") || !perm_is(s->t_in, p3, 3) || !readers_within(c, t, s->proj, s->n_proj))
        return false;
    for (size_t k = 0; k < s->n_proj; k++) {
        if (s->proj[k]->inputs[0] != t || s->proj[k]->inputs[1] == t) return false;
        kl_node *rd[4] = {a};
        for (size_t j = 0; j < s->n_slice; j++) rd[1 + j] = s->slice[j];
        if (!readers_within(c, s->proj[k]->outputs[0], rd, 1 + s->n_slice)) return false;
    }
    for (size_t j = 0; j < s->n_slice; j++) {
        bool ok = false;
        for (size_t k = 0; k < s->n_proj; k++) ok |= s->slice[j]->inputs[0] == s->proj[k]->outputs[0];
        if (!ok) return false;
    }
    /* Y [S, B, Ev] -> Reshape [S*B, Ev] -> linear -> Reshape [S, B, N] -> Transpose (1,0,2) */
    kl_value *y = a->outputs[0];
    const kl_shape *ys = &y->type.shape;
    int64_t tf[3];
    s->r_flat = kl_value_only_use(c->g, y);
    if (ys->rank != 3 || !kl_tp_is_op(s->r_flat, "Reshape") || s->r_flat->inputs[0] != y ||
        plain_target(c, s->r_flat, tf) != 2 || ys->dims[2].value <= 0 || tf[1] != ys->dims[2].value)
        return false; /* rows [S*B]: the target keeps Ev */
    s->lin = kl_value_only_use(c->g, s->r_flat->outputs[0]);
    if (!kl_tp_row_linear(c, s->lin) || s->lin->inputs[0] != s->r_flat->outputs[0] ||
        s->lin->inputs[1] == s->r_flat->outputs[0])
        return false;
    s->r_unflat = kl_value_only_use(c->g, s->lin->outputs[0]);
    if (!kl_tp_is_op(s->r_unflat, "Reshape") || s->r_unflat->inputs[0] != s->lin->outputs[0] ||
        plain_target(c, s->r_unflat, unflat) != 3)
        return false;
    const kl_shape *us = &s->r_unflat->outputs[0]->type.shape;
    if (us->rank != 3 || !kl_tp_dim_same(&us->dims[0], &ys->dims[0]) || !kl_tp_dim_same(&us->dims[1], &ys->dims[1]))
        return false;
    s->t_out = kl_value_only_use(c->g, s->r_unflat->outputs[0]);
    if (!kl_tp_is_op(s->t_out, "Transpose") || !perm_is(s->t_out, p3, 3)) return false;
    /* X [B, S, E]: T's batch and sequence are Y's */
    const kl_shape *xs = &s->t_in->inputs[0]->type.shape;
    return kl_tp_is_f32(s->t_in->inputs[0]) && xs->rank == 3 && kl_tp_dim_same(&xs->dims[0], &ys->dims[1]) &&
           kl_tp_dim_same(&xs->dims[1], &ys->dims[0]);
}

/* A copy of node n (same op, attributes, fused_from) before `at` reading
 * inputs in[] and writing a new value named after n's output (or `out`
 * when given); returns its output. */
static kiln_status copy_node(kl_pass_ctx *c, kl_node *n, kl_value *const *in, kl_value *out, const kl_attr *attrs,
                             size_t n_attrs, kl_value **y) {
    const char *origin = kl_nodes_origin(c->m, &n, 1);
    if (!origin) return KILN_ERR_NO_MEMORY;
    if (!out) KL_TRY(kl_value_new(c->g, n->outputs[0]->name, NULL, &out));
    kl_node *nn;
    KL_TRY(kl_node_new(c->g, NULL, n->op_type, n->domain, in, n->n_inputs, &out, 1, attrs ? attrs : n->attrs,
                       attrs ? n_attrs : n->n_attrs, origin, n, &nn));
    KL_TRY(kl_node_infer(c->m, nn));
    *y = out;
    return KILN_OK;
}

/* Rewrite the block s batch-first (sink_find held; unflat: the last
 * Reshape's target [S, B, N]). */
static kiln_status sink_rewrite(kl_pass_ctx *c, sink_match *s, const int64_t *unflat) {
    kl_node *all[SINK_MAX];
    size_t n = 0;
    all[n++] = s->t_in;
    for (size_t k = 0; k < s->n_proj; k++) all[n++] = s->proj[k];
    for (size_t k = 0; k < s->n_slice; k++) all[n++] = s->slice[k];
    all[n++] = s->att, all[n++] = s->r_flat, all[n++] = s->lin, all[n++] = s->r_unflat, all[n++] = s->t_out;
    kl_node *ends[2] = {s->t_in, s->t_out};
    const char *label = kl_nodes_origin(c->m, ends, 2);
    if (!label) return KILN_ERR_NO_MEMORY;
    kl_value *x = s->t_in->inputs[0], *z = s->t_out->outputs[0];
    kl_value *proj_y[3], *slice_y[3], *in[8];
    for (size_t i = 0; i < n; i++) kl_node_remove(all[i]);
    for (size_t k = 0; k < s->n_proj; k++) {
        kl_node *p = s->proj[k];
        memcpy(in, p->inputs, p->n_inputs * sizeof *in);
        in[0] = x;
        KL_TRY(copy_node(c, p, in, NULL, NULL, 0, &proj_y[k]));
    }
    /* a value of the old block -> its new counterpart */
    kl_value *olds[6], *news[6];
    size_t nm = 0;
    for (size_t k = 0; k < s->n_proj; k++) olds[nm] = s->proj[k]->outputs[0], news[nm++] = proj_y[k];
    for (size_t k = 0; k < s->n_slice; k++) {
        kl_node *sl = s->slice[k];
        memcpy(in, sl->inputs, sl->n_inputs * sizeof *in);
        for (size_t j = 0; j < nm; j++)
            if (in[0] == olds[j]) in[0] = news[j];
        KL_TRY(copy_node(c, sl, in, NULL, NULL, 0, &slice_y[k]));
    }
    for (size_t k = 0; k < s->n_slice; k++) olds[nm] = s->slice[k]->outputs[0], news[nm++] = slice_y[k];
    kl_node *a = s->att;
    memcpy(in, a->inputs, a->n_inputs * sizeof *in);
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < nm; j++)
            if (in[i] == olds[j]) {
                in[i] = news[j];
                break;
            }
    kl_attr attrs[3] = {kl_attr_of_int("num_heads", kl_node_attr_int(a, "num_heads", 0)),
                        kl_attr_of_int("seq_first", 0), kl_attr_of_float("scale", 0)};
    size_t na = 2;
    if (kl_node_attr(a, "scale")) attrs[na++] = kl_attr_of_float("scale", kl_node_attr_float(a, "scale", 1.0f));
    kl_value *y, *flat, *lin;
    KL_TRY(copy_node(c, a, in, NULL, attrs, na, &y));
    in[0] = y, in[1] = s->r_flat->inputs[1];
    KL_TRY(copy_node(c, s->r_flat, in, NULL, NULL, 0, &flat));
    memcpy(in, s->lin->inputs, s->lin->n_inputs * sizeof *in);
    in[0] = flat;
    KL_TRY(copy_node(c, s->lin, in, NULL, NULL, 0, &lin));
    int64_t three = 3, t[3] = {unflat[1], unflat[0], unflat[2]};
    kl_tensor tt = {"", KILN_DTYPE_INT64, 1, &three, 3, t, sizeof t, NULL, false, NULL, 0};
    char hint[256];
    snprintf(hint, sizeof hint, "%s_bf", s->r_unflat->inputs[1]->name);
    in[0] = lin;
    KL_TRY(kl_value_new_const(c->g, hint, &tt, &in[1]));
    KL_TRY(copy_node(c, s->r_unflat, in, z, NULL, 0, &y));
    return kl_pass_commit(c, label);
}

kiln_status kl_pass_sink_mha_transposes(kl_pass_ctx *c) {
    for (size_t i = 0; i < c->g->n_nodes; i++) {
        kl_node *n = c->g->nodes[i];
        sink_match s;
        int64_t unflat[3];
        if (!kl_tp_is_kiln(n, "Attention") || !sink_find(c, n, &s, unflat)) continue;
        if (!kl_pass_begin(c)) return KILN_OK;
        KL_TRY(sink_rewrite(c, &s, unflat));
    }
    return KILN_OK;
}
