/*
 * fuse_attention: multi-head scaled dot-product attention into one
 * kiln.Attention node (ops/kiln_transformer.h).  The match starts at a
 * Softmax over the last axis and walks:
 *
 *   scores  = MatMul(Qh, Kh^T) [* c | / c]... [+ mask]      -> Softmax
 *   context = MatMul(Softmax, Vh) -> Transpose -> Reshape (merging heads)
 *
 * where each of Qh, Kh^T, Vh is a projected tensor X [a0, a1, H*D] taken
 * through one Reshape that splits the heads and Transposes (scalar Mul/Div
 * allowed between them), in one of two layouts:
 *   BERT / HF:  X [B, S, E] -> Reshape [B, S, H, D] -> Transpose (0,2,1,3)
 *               (K: (0,2,3,1), or (0,2,1,3) then (0,1,3,2))
 *   torch nn.MultiheadAttention: X [S, B, E] -> Reshape [S, B*H, D] ->
 *               Transpose (1,0,2) (K: (1,2,0) or two Transposes)
 *   torch 2.x (scaled_dot_product_attention): the same, then Reshape
 *               [B, H, S, D] (K: Transpose (0,1,3,2) after it), scalar Mul
 *               on Q and on K^T; context Transpose (2,0,1,3) -> [S, B, H, D]
 *               (its packed q/k/v split became Slices in split_qkv, fuse_mha.c)
 * The Reshapes are checked on the values' inferred shapes (one of the two
 * leading dims provably kept, H and D known, symbolic "k*batch" dims
 * understood), the permutations exactly.  The context's Transpose must give
 * [B, S, H, Dv] (or [S, B, H, Dv]) memory order, which is kiln.Attention's
 * output order, so the final Reshape reads the new node's output instead
 * (unless its target has a 0 that would copy a dim that changed); Shapes of
 * the context whose Gathers take only the leading dims both layouts share
 * (Hugging Face computes the Reshape's target that way) read a Shape of the
 * new output.  The
 * scale is the product of every scalar factor on the way; a mask must be
 * added after all of them and broadcast to the scores without growing them.
 */
#include <stdlib.h>

#include "ops/infer_util.h"
#include "passes/passes_transformer.h"

#define ATT_MAX_NODES 48

/* Axes of a head-split tensor, in terms of its source X [a0, a1, H*D]. */
enum { AX_A0, AX_A1, AX_HEAD, AX_DIM, AX_A1HEAD };

typedef struct head_src {
    kl_value *x;        /* the projected tensor [a0, a1, H*D] */
    int64_t heads, dim; /* H, D */
    int rank;           /* 4: [.., H, D] split; 3: torch's [S, B*H, D] */
    bool seq_first;     /* a1 is the batch */
    double scale;       /* product of the scalar factors on the way */
} head_src;

typedef struct att_match {
    kl_node *nodes[ATT_MAX_NODES];
    size_t n;
    bool overflow;
} att_match;

static void am_add(att_match *m, kl_node *n) {
    if (m->n < ATT_MAX_NODES) m->nodes[m->n++] = n;
    else m->overflow = true;
}

/* Split a symbol "k*name" into k and name (plain names: k = 1). */
static int64_t sym_coef(const char *sym, const char **base) {
    char *end;
    long long k = strtoll(sym, &end, 10);
    if (end != sym && *end == '*' && k > 1) {
        *base = end + 1;
        return k;
    }
    *base = sym;
    return 1;
}

/* Is dim o provably k times dim a (known sizes, or symbols "k*name")? */
static bool dim_is_multiple(const kl_dim *o, int64_t k, const kl_dim *a) {
    if (a->value >= 0) return o->value >= 0 && o->value == k * a->value;
    if (!a->param || !o->param || o->value >= 0) return false;
    const char *ba, *bo;
    int64_t ka = sym_coef(a->param, &ba), ko = sym_coef(o->param, &bo);
    return ko == k * ka && strcmp(ba, bo) == 0;
}

/* Scalar Mul/Div node p reading data value v (v first for Div): the
 * factor, when the constant cannot widen v's rank. */
static bool scalar_factor(kl_pass_ctx *c, const kl_node *p, const kl_value *v, double *factor) {
    bool mul = kl_tp_is_op(p, "Mul"), div = kl_tp_is_op(p, "Div");
    if ((!mul && !div) || p->n_inputs != 2 || !v) return false;
    int side = p->inputs[0] == v ? 1 : 0;
    if (p->inputs[1 - side] != v || p->inputs[side] == v || (div && side != 1)) return false;
    const kl_tensor *t = kl_value_const(c->m, p->inputs[side]);
    double k;
    if (!t || t->count != 1 || t->rank > v->type.shape.rank || !kl_pass_const_scalar(c, p->inputs[side], &k) ||
        (div && k == 0.0))
        return false;
    *factor = div ? 1.0 / k : k;
    return true;
}

/* The data operand (the non-constant one) of p when p is a Mul/Div of two
 * given inputs, else NULL. */
static kl_value *scalar_data(kl_pass_ctx *c, const kl_node *p) {
    if ((!kl_tp_is_op(p, "Mul") && !kl_tp_is_op(p, "Div")) || p->n_inputs != 2 || !p->inputs[0] || !p->inputs[1])
        return NULL;
    return kl_value_const(c->m, p->inputs[0]) ? p->inputs[1] : p->inputs[0];
}

/* The head split Reshape rs: v X [a0, a1, E] -> [a0, a1, H, D] (rank 4)
 * or [a0, a1*H, D] (rank 3); sets H, D and the atoms of rs's output axes. */
static bool trace_reshape_atoms(const kl_node *rs, const kl_value *v, int rank, head_src *h, int *atoms) {
    if (!kl_tp_is_f32(v)) return false;
    const kl_shape *xs = &v->type.shape, *os = &rs->outputs[0]->type.shape;
    if (xs->rank != 3 || os->rank != rank) return false;
    int64_t E = xs->dims[2].value;
    if (E <= 0) return false;
    if (rank == 4) {
        h->heads = os->dims[2].value;
        h->dim = os->dims[3].value;
        if (h->heads <= 0 || h->dim <= 0 || h->heads * h->dim != E) return false;
        if (!kl_tp_dim_same(&os->dims[0], &xs->dims[0]) && !kl_tp_dim_same(&os->dims[1], &xs->dims[1])) return false;
        atoms[0] = AX_A0, atoms[1] = AX_A1, atoms[2] = AX_HEAD, atoms[3] = AX_DIM;
    } else if (rank == 3) {
        h->dim = os->dims[2].value;
        if (h->dim <= 0 || E % h->dim) return false;
        h->heads = E / h->dim;
        if (!dim_is_multiple(&os->dims[1], h->heads, &xs->dims[1]) && !kl_tp_dim_same(&os->dims[0], &xs->dims[0]))
            return false;
        atoms[0] = AX_A0, atoms[1] = AX_A1HEAD, atoms[2] = AX_DIM;
    } else {
        return false;
    }
    return true;
}

/* torch 2.x's head split of X [S, B, E] (nn.MultiheadAttention before
 * scaled_dot_product_attention): Reshape [S, B*H, D] -> Transpose (1,0,2)
 * -> [B*H, S, D], which Reshape rs makes [B, H, S, D].  On a match the two
 * nodes join m, H and D are set and *x = X. */
static bool torch2_heads(kl_pass_ctx *c, kl_node *rs, head_src *h, att_match *m, kl_value **x) {
    static const int64_t p3[3] = {1, 0, 2};
    const int64_t *pv;
    kl_value *v = rs->inputs[0];
    kl_node *t = kl_tp_producer(c, v);
    if (!kl_tp_is_op(t, "Transpose") || !kl_tp_only_reader(c, v, rs) || kl_node_attr_ints(t, "perm", &pv) != 3 ||
        memcmp(pv, p3, sizeof p3) != 0)
        return false;
    kl_value *u = t->inputs[0];
    kl_node *r0 = kl_tp_producer(c, u);
    if (!kl_tp_is_op(r0, "Reshape") || !kl_tp_only_reader(c, u, t) || !kl_tp_is_f32(r0->inputs[0])) return false;
    kl_value *X = r0->inputs[0];
    const kl_shape *xs = &X->type.shape, *us = &u->type.shape, *os = &rs->outputs[0]->type.shape;
    if (xs->rank != 3 || us->rank != 3 || os->rank != 4) return false;
    int64_t E = xs->dims[2].value, D = us->dims[2].value;
    if (E <= 0 || D <= 0 || E % D) return false;
    int64_t H = E / D;
    /* [S, B, E] -> [S, B*H, D] -> [B*H, S, D] -> [B, H, S, D] */
    if (!kl_tp_dim_same(&us->dims[0], &xs->dims[0]) || !dim_is_multiple(&us->dims[1], H, &xs->dims[1]) ||
        !kl_tp_dim_same(&os->dims[0], &xs->dims[1]) || os->dims[1].value != H ||
        !kl_tp_dim_same(&os->dims[2], &xs->dims[0]) || os->dims[3].value != D)
        return false;
    am_add(m, t);
    am_add(m, r0);
    h->heads = H;
    h->dim = D;
    *x = X;
    return true;
}

/* Trace MatMul operand v (read only by `reader`) back to its projected
 * tensor.  role: 0 Q and 2 V ([B, H, S, D] wanted), 1 K ([B, H, D, S]). */
static bool trace_heads(kl_pass_ctx *c, kl_value *v, kl_node *reader, int role, head_src *h, att_match *m) {
    if (!v) return false;
    int64_t perms[8][KILN_MAX_RANK];
    int n_perm = 0, rank = v->type.shape.rank;
    h->scale = 1.0;
    kl_node *rs = NULL;
    while (!rs) {
        kl_node *p = kl_tp_producer(c, v);
        if (!p || !kl_tp_only_reader(c, v, reader) || !kl_tp_is_f32(v) || v->type.shape.rank != rank) return false;
        double k;
        if (kl_tp_is_op(p, "Transpose")) {
            if (n_perm == 8 || rank < 3 || rank > 4) return false;
            const int64_t *pv;
            int64_t np = kl_node_attr_ints(p, "perm", &pv);
            bool seen[KILN_MAX_RANK] = {false};
            for (int i = 0; i < rank; i++) {
                int64_t a = np < 0 ? rank - 1 - i : np == rank ? pv[i] : -1;
                if (a < 0 || a >= rank || seen[a]) return false;
                seen[a] = true;
                perms[n_perm][i] = a;
            }
            n_perm++;
            v = p->inputs[0];
        } else if (scalar_factor(c, p, scalar_data(c, p), &k)) {
            h->scale *= k;
            v = scalar_data(c, p);
        } else if (kl_tp_is_op(p, "Reshape")) {
            rs = p;
            v = p->inputs[0];
        } else {
            return false;
        }
        am_add(m, p);
        reader = p;
    }
    /* v: X [a0, a1, E] -> Reshape output o (torch 2.x: X through two more nodes) */
    int atoms[4];
    if (rank == 4 && torch2_heads(c, rs, h, m, &v)) {
        atoms[0] = AX_A1, atoms[1] = AX_HEAD, atoms[2] = AX_A0, atoms[3] = AX_DIM;
    } else if (!trace_reshape_atoms(rs, v, rank, h, atoms)) {
        return false;
    }
    /* compose the Transposes in graph order (collected last first) */
    int final[4];
    for (int i = 0; i < rank; i++) final[i] = atoms[i];
    for (int t = n_perm - 1; t >= 0; t--) {
        int next[4];
        for (int i = 0; i < rank; i++) next[i] = final[perms[t][i]];
        memcpy(final, next, sizeof next);
    }
    bool k = role == 1;
    if (rank == 4) {
        int seq_ax = k ? 3 : 2, dim_ax = k ? 2 : 3;
        if (final[1] != AX_HEAD || final[dim_ax] != AX_DIM) return false;
        if (final[0] == AX_A0 && final[seq_ax] == AX_A1) h->seq_first = false;
        else if (final[0] == AX_A1 && final[seq_ax] == AX_A0) h->seq_first = true;
        else return false;
    } else {
        int want[3] = {AX_A1HEAD, k ? AX_DIM : AX_A0, k ? AX_A0 : AX_DIM};
        if (memcmp(final, want, sizeof want) != 0) return false;
        h->seq_first = true;
    }
    h->x = v;
    h->rank = rank;
    return true;
}

/* Does v come from a MatMul through single-reader scalar Mul/Div only? */
static bool from_matmul(kl_pass_ctx *c, kl_value *v) {
    for (int depth = 0; depth < 8; depth++) {
        kl_node *p = kl_tp_producer(c, v);
        if (!p || v->n_uses != 1) return false;
        if (kl_tp_is_op(p, "MatMul")) return true;
        double k;
        if (!scalar_factor(c, p, scalar_data(c, p), &k)) return false;
        v = scalar_data(c, p);
    }
    return false;
}

/* Does mask broadcast to scores (rank <= its rank, each dim 1 or the same),
 * in a way that kiln.Attention's [B, H, Sq, Sk] broadcast reproduces? */
static bool mask_fits(const kl_value *mask, const kl_value *scores) {
    if (!kl_tp_is_f32(mask)) return false;
    const kl_shape *ms = &mask->type.shape, *ss = &scores->type.shape;
    if (ms->rank < 0 || ms->rank > ss->rank) return false;
    for (int i = 0; i < ms->rank; i++) {
        const kl_dim *d = &ms->dims[i], *sd = &ss->dims[ss->rank - ms->rank + i];
        if (d->value != 1 && !kl_tp_dim_same(d, sd)) return false;
        if (ss->rank == 3 && ms->rank == 3 && i == 0 && d->value != 1) return false; /* [B*H] can't split */
    }
    return true;
}

/* Can Reshape r read `to` (the new output) instead of its input: no 0 in
 * its target at a position >= `safe` (where old and new dims differ)? */
static bool reshape_target_ok(kl_pass_ctx *c, const kl_node *r, int safe) {
    if (r->n_inputs < 2 || kl_node_attr_int(r, "allowzero", 0)) return r->n_inputs >= 2;
    const kl_value *t = r->inputs[1];
    if (!t) return false;
    const kl_tensor *ct = kl_value_const(c->m, t);
    int64_t vals[KILN_MAX_RANK];
    if (ct) {
        if (ct->count > KILN_MAX_RANK || !kl_tensor_to_i64(ct, vals, KILN_MAX_RANK)) return false;
        for (int64_t i = safe; i < ct->count; i++)
            if (vals[i] == 0) return false;
        return true;
    }
    const kl_symval *sv = t->sym;
    if (!sv) return false;
    for (int64_t i = safe; i < sv->count; i++) {
        const kl_dim *d = &sv->v[i];
        if (!d->param && (!kl_symdim_known(d) || d->value == 0)) return false; /* 0 or unknown */
    }
    return true;
}

/* Is Shape node sh (of the old context) used only for dims both layouts
 * share: no start/end, read only by Gathers on axis 0 with constant
 * indices in [0, safe)? */
static bool shape_reader_ok(kl_pass_ctx *c, const kl_node *sh, int safe) {
    const kl_value *o = sh->n_outputs == 1 ? sh->outputs[0] : NULL;
    if (!o || kl_node_attr(sh, "start") || kl_node_attr(sh, "end") || !o->n_uses || kl_value_escapes(c->g, o))
        return false;
    for (size_t u = 0; u < o->n_uses; u++) {
        const kl_node *g = o->uses[u].node;
        if (!kl_pass_is(g, "Gather") || g->removed || o->uses[u].input != 0 || g->n_inputs != 2 ||
            kl_node_attr_int(g, "axis", 0) != 0 || !g->inputs[1])
            return false;
        const kl_tensor *t = kl_value_const(c->m, g->inputs[1]);
        int64_t idx[KILN_MAX_RANK];
        if (!t || t->count > KILN_MAX_RANK || !kl_tensor_to_i64(t, idx, KILN_MAX_RANK)) return false;
        for (int64_t i = 0; i < t->count; i++)
            if (idx[i] < 0 || idx[i] >= safe) return false;
    }
    return true;
}

/* Replace Shape node sh (shape_reader_ok) by a new Shape of y placed before
 * `at`: its Gathers read the new shape, the old Shape is removed. */
static kiln_status reshape_shape_reader(kl_pass_ctx *c, kl_node *sh, kl_value *y, kl_node *at) {
    kl_value *old = sh->outputs[0], *nv;
    kl_node *gathers[16], *n;
    size_t ng = 0;
    for (size_t u = 0; u < old->n_uses && ng < 16; u++) gathers[ng++] = old->uses[u].node;
    if (ng != old->n_uses) return kl_errorf(KILN_ERR_INTERNAL, "Shape '%s' has too many readers", kl_node_label(sh));
    const char *origin = kl_nodes_origin(c->m, &sh, 1);
    if (!origin) return KILN_ERR_NO_MEMORY;
    KL_TRY(kl_value_new(c->g, old->name, NULL, &nv));
    KL_TRY(kl_node_new(c->g, NULL, "Shape", "", &y, 1, &nv, 1, NULL, 0, origin, at, &n));
    KL_TRY(kl_node_infer(c->m, n));
    for (size_t i = 0; i < ng; i++) KL_TRY(kl_node_set_input(gathers[i], 0, nv));
    kl_node_remove(sh);
    return KILN_OK;
}

/* The attention block around Softmax node sm, rewritten when it matches. */
static kiln_status try_attention(kl_pass_ctx *c, kl_node *sm, bool *done) {
    *done = false;
    att_match m = {.n = 0};
    kl_value *s = sm->inputs[0];
    if (!kl_tp_is_f32(s)) return KILN_OK;
    int r = s->type.shape.rank;
    if (r != 3 && r != 4) return KILN_OK;
    int64_t axis = kl_node_attr_int(sm, "axis", sm->opset >= 13 ? -1 : 1);
    if (axis != -1 && axis != r - 1) return KILN_OK;
    am_add(&m, sm);
    /* backwards: [Add mask] after all [scalar Mul/Div], then MatMul */
    kl_value *mask = NULL, *v = s;
    kl_node *reader = sm, *mm1 = NULL;
    double scale = 1.0, k;
    for (int depth = 0; depth < 8 && !mm1; depth++) {
        kl_node *p = kl_tp_producer(c, v);
        if (!p || !kl_tp_only_reader(c, v, reader) || v->type.shape.rank != r) return KILN_OK;
        if (kl_tp_is_op(p, "MatMul") && p->n_inputs == 2) {
            mm1 = p;
        } else if (!mask && depth == 0 && kl_tp_is_op(p, "Add") && p->n_inputs == 2) {
            int side = from_matmul(c, p->inputs[0]) ? 0 : from_matmul(c, p->inputs[1]) ? 1 : -1;
            /* against the scores before the Add: the mask must not widen them */
            if (side < 0 || p->inputs[0] == p->inputs[1] || !mask_fits(p->inputs[1 - side], p->inputs[side]))
                return KILN_OK;
            mask = p->inputs[1 - side];
            v = p->inputs[side];
        } else if (scalar_factor(c, p, scalar_data(c, p), &k)) {
            scale *= k;
            v = scalar_data(c, p);
        } else {
            return KILN_OK;
        }
        am_add(&m, p);
        reader = p;
    }
    if (!mm1) return KILN_OK;
    /* forwards: MatMul(P, Vh) -> Transpose -> Reshape */
    kl_node *mm2 = kl_value_only_use(c->g, sm->outputs[0]);
    if (!kl_tp_is_op(mm2, "MatMul") || mm2->n_inputs != 2 || mm2->inputs[0] != sm->outputs[0] ||
        mm2->inputs[1] == sm->outputs[0] || mm2->outputs[0]->type.shape.rank != r)
        return KILN_OK;
    kl_node *tr = kl_value_only_use(c->g, mm2->outputs[0]);
    if (!kl_tp_is_op(tr, "Transpose")) return KILN_OK;
    /* the context is read by one Reshape (merging the heads) and maybe by
     * Shapes whose dims the Reshape's target is computed from (HF exports) */
    kl_value *ctx = tr->outputs[0];
    kl_node *rs = NULL, *shapes[8];
    size_t n_shapes = 0;
    if (kl_value_escapes(c->g, ctx)) return KILN_OK;
    for (size_t u = 0; u < ctx->n_uses; u++) {
        kl_node *rd = ctx->uses[u].node;
        if (kl_tp_is_op(rd, "Reshape") && ctx->uses[u].input == 0 && !rs) rs = rd;
        else if (kl_pass_is(rd, "Shape") && !rd->removed && n_shapes < 8) shapes[n_shapes++] = rd;
        else return KILN_OK;
    }
    if (!rs) return KILN_OK;
    const int64_t *pv;
    int64_t np = kl_node_attr_ints(tr, "perm", &pv);
    static const int64_t bf4[4] = {0, 2, 1, 3}, sf4[4] = {2, 0, 1, 3}, sf3[3] = {1, 0, 2};
    bool out_sf;
    if (np != r) return KILN_OK;
    if (r == 4 && memcmp(pv, bf4, sizeof bf4) == 0) out_sf = false;
    else if (r == 4 && memcmp(pv, sf4, sizeof sf4) == 0) out_sf = true;
    else if (r == 3 && memcmp(pv, sf3, sizeof sf3) == 0) out_sf = true;
    else return KILN_OK;
    am_add(&m, mm2);
    am_add(&m, tr);
    head_src q, kk, vv;
    if (!trace_heads(c, mm1->inputs[0], mm1, 0, &q, &m) || !trace_heads(c, mm1->inputs[1], mm1, 1, &kk, &m) ||
        !trace_heads(c, mm2->inputs[1], mm2, 2, &vv, &m) || m.overflow)
        return KILN_OK;
    if (q.rank != r || kk.rank != r || vv.rank != r || q.seq_first != out_sf || kk.seq_first != out_sf ||
        vv.seq_first != out_sf || q.heads != kk.heads || q.heads != vv.heads || q.dim != kk.dim)
        return KILN_OK;
    /* one batch for Q, K, V (rank 3 with H > 1: MatMul could not broadcast it) */
    int bat = out_sf ? 1 : 0;
    if ((r == 4 || q.heads == 1) &&
        (!kl_tp_dim_same(&q.x->type.shape.dims[bat], &kk.x->type.shape.dims[bat]) ||
         !kl_tp_dim_same(&q.x->type.shape.dims[bat], &vv.x->type.shape.dims[bat])))
        return KILN_OK;
    if (!reshape_target_ok(c, rs, r == 4 ? 2 : 1)) return KILN_OK;
    for (size_t i = 0; i < n_shapes; i++)
        if (!shape_reader_ok(c, shapes[i], r == 4 ? 2 : 1)) return KILN_OK;
    if (!kl_pass_begin(c)) return KILN_OK;
    scale *= q.scale * kk.scale;
    kl_attr attrs[3] = {kl_attr_of_int("num_heads", q.heads), kl_attr_of_float("scale", (float)scale),
                        kl_attr_of_int("seq_first", out_sf)};
    kl_value *in[4] = {q.x, kk.x, vv.x, mask};
    for (size_t a = 0; a + 1 < m.n; a++) /* graph order for the origin label */
        for (size_t b = a + 1; b < m.n; b++)
            if (m.nodes[b]->index < m.nodes[a]->index) {
                kl_node *t = m.nodes[a];
                m.nodes[a] = m.nodes[b];
                m.nodes[b] = t;
            }
    const char *origin = kl_nodes_origin(c->m, m.nodes, m.n);
    if (!origin) return KILN_ERR_NO_MEMORY;
    for (size_t i = 0; i < m.n; i++) kl_node_remove(m.nodes[i]);
    kl_value *y;
    kl_node *n;
    KL_TRY(kl_value_new(c->g, ctx->name, NULL, &y));
    /* at the context Transpose's place: after every input, before every reader */
    KL_TRY(kl_node_new(c->g, NULL, "Attention", KL_KILN_DOMAIN, in, mask ? 4 : 3, &y, 1, attrs, 3, origin, tr, &n));
    KL_TRY(kl_node_infer(c->m, n));
    KL_TRY(kl_node_set_input(rs, 0, y));
    for (size_t i = 0; i < n_shapes; i++) KL_TRY(reshape_shape_reader(c, shapes[i], y, tr));
    *done = true;
    return kl_pass_commit(c, n->fused_from);
}

kiln_status kl_pass_fuse_attention(kl_pass_ctx *c) {
    for (size_t i = 0; i < c->g->n_nodes; i++) {
        kl_node *n = c->g->nodes[i];
        if (!kl_tp_is_op(n, "Softmax") || n->n_inputs != 1) continue;
        bool done;
        KL_TRY(try_attention(c, n, &done));
        if (c->stopped) return KILN_OK;
    }
    return KILN_OK;
}
