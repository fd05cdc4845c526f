/*
 * fuse_norm: layer and RMS normalization into kiln.LayerNorm / kiln.RMSNorm.
 *
 * Decomposed LayerNorm (torch's export below opset 17, HF/BERT code):
 *   mean = ReduceMean(x, axes=[a..r-1], keepdims=1); d = Sub(x, mean)
 *   var = ReduceMean(Pow(d, 2) | Mul(d, d), same axes); s = Sqrt(Add(var, eps))
 *   n = Div(d, s) | Mul(d, Reciprocal(s)) ; [Mul(n, gamma)] ; [Add(., beta)]
 * Decomposed RMSNorm (T5, LLaMA):
 *   s = Sqrt(Add(ReduceMean(Pow(x, 2) | Mul(x, x), axes), eps))
 *   n = Div(x, s) | Mul(x, Reciprocal(s) | Div(1, s)) ; [Mul(n, gamma)]
 * gamma and beta must broadcast over the normalized axes only; every
 * intermediate value must have no reader outside the pattern.  The ONNX
 * LayerNormalization (17) and RMSNormalization (23) ops with only their
 * first output used and float statistics become the kiln ops too, so the
 * providers implement one op.
 */
#include "passes/passes_transformer.h"

#define NORM_MAX_NODES 12

typedef struct norm_match {
    kl_node *nodes[NORM_MAX_NODES];
    size_t n;
    kl_value *x, *gamma, *beta, *out;
    int axis;
    float eps;
} norm_match;

/* First normalized axis of ReduceMean r over an input of rank `rank` when
 * it keeps dims and reduces exactly the trailing axes [a, rank); -1 else. */
static int trailing_axes(kl_pass_ctx *c, const kl_node *r, int rank) {
    if (!kl_tp_is_op(r, "ReduceMean") || r->n_outputs != 1 || kl_node_attr_int(r, "keepdims", 1) != 1 || rank < 1)
        return -1;
    int64_t axes[KILN_MAX_RANK];
    int64_t n = -1;
    if (r->opset >= 18) {
        if (r->n_inputs > 1 && r->inputs[1]) {
            const kl_tensor *t = kl_value_const(c->m, r->inputs[1]);
            if (!t || t->count > KILN_MAX_RANK || !kl_tensor_to_i64(t, axes, KILN_MAX_RANK)) return -1;
            n = t->count;
        }
        if (n <= 0 && kl_node_attr_int(r, "noop_with_empty_axes", 0)) return -1;
    } else {
        const int64_t *v;
        n = kl_node_attr_ints(r, "axes", &v);
        if (n > KILN_MAX_RANK) return -1;
        if (n > 0) memcpy(axes, v, (size_t)n * sizeof *v);
    }
    if (n <= 0) return 0; /* all axes */
    bool seen[KILN_MAX_RANK] = {false};
    for (int64_t i = 0; i < n; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
        if (a < 0 || a >= rank || seen[a]) return -1;
        seen[a] = true;
    }
    int first = rank - (int)n;
    for (int a = first; a < rank; a++)
        if (!seen[a]) return -1;
    return first;
}

/* Can p scale/shift x's rows normalized from `axis`: float32, rank <=
 * rank(x) - axis, each dim 1 or x's dim at that position? */
static bool param_fits(const kl_value *p, const kl_value *x, int axis) {
    const kl_shape *ps = &p->type.shape, *xs = &x->type.shape;
    if (!kl_tp_is_f32(p) || ps->rank < 0 || ps->rank > xs->rank - axis) return false;
    for (int i = 0; i < ps->rank; i++) {
        const kl_dim *d = &ps->dims[i], *xd = &xs->dims[xs->rank - ps->rank + i];
        if (d->value != 1 && !kl_tp_dim_same(d, xd)) return false;
    }
    return true;
}

/* Is n a Pow(v, 2) or Mul(v, v)? */
static bool is_square_of(kl_pass_ctx *c, const kl_node *n, const kl_value *v) {
    double e;
    if (kl_tp_is_op(n, "Pow") && n->n_inputs == 2 && n->inputs[0] == v && n->inputs[1] && n->inputs[1] != v)
        return kl_pass_const_scalar(c, n->inputs[1], &e) && e == 2.0;
    return kl_tp_is_op(n, "Mul") && n->n_inputs == 2 && n->inputs[0] == v && n->inputs[1] == v;
}

/* The other operand of binary node n besides v (v read exactly once), or NULL. */
static kl_value *other_operand(const kl_node *n, const kl_value *v) {
    if (n->n_inputs != 2 || (n->inputs[0] == v) == (n->inputs[1] == v)) return NULL;
    return n->inputs[0] == v ? n->inputs[1] : n->inputs[0];
}

/* Is k a one-element constant of rank <= v's (it cannot widen v)? */
static bool one_elem(kl_pass_ctx *c, const kl_value *k, const kl_value *v) {
    const kl_tensor *t = k ? kl_value_const(c->m, k) : NULL;
    return t && t->count == 1 && t->rank <= v->type.shape.rank;
}

static void nm_add(norm_match *m, kl_node *n) {
    if (m->n < NORM_MAX_NODES) m->nodes[m->n++] = n;
}

/* From var (the mean of squares, read only by the Add): Add(var, eps) ->
 * Sqrt -> s, then n = Div(num, s) or Mul(num, Reciprocal(s) | Div(1, s)).
 * Returns n's node (num must be its numerator) and fills eps, nodes. */
static kl_node *match_denominator(kl_pass_ctx *c, kl_value *var, const kl_value *num, norm_match *m) {
    kl_node *add = kl_value_only_use(c->g, var);
    double eps;
    kl_value *ev;
    if (!kl_tp_is_op(add, "Add") || !(ev = other_operand(add, var)) || !one_elem(c, ev, var) ||
        !kl_pass_const_scalar(c, ev, &eps) || eps < 0)
        return NULL;
    kl_node *sq = kl_value_only_use(c->g, add->outputs[0]);
    if (!kl_tp_is_op(sq, "Sqrt")) return NULL;
    kl_value *s = sq->outputs[0];
    kl_node *u = kl_value_only_use(c->g, s);
    nm_add(m, add);
    nm_add(m, sq);
    m->eps = (float)eps;
    if (kl_tp_is_op(u, "Div") && u->n_inputs == 2 && u->inputs[1] == s && u->inputs[0] == num) return u;
    double one;
    bool recip = kl_tp_is_op(u, "Reciprocal") ||
                 (kl_tp_is_op(u, "Div") && u->n_inputs == 2 && u->inputs[1] == s && u->inputs[0] != s &&
                  one_elem(c, u->inputs[0], s) && kl_pass_const_scalar(c, u->inputs[0], &one) && one == 1.0);
    if (!recip) return NULL;
    kl_node *mul = kl_value_only_use(c->g, u->outputs[0]);
    if (!kl_tp_is_op(mul, "Mul") || other_operand(mul, u->outputs[0]) != num) return NULL;
    nm_add(m, u);
    return mul;
}

/* Optional Mul(n, gamma) and (LayerNorm) Add(., beta) after the normalized
 * value n: extends m, sets m->out. */
static void match_affine(kl_pass_ctx *c, kl_value *n, bool with_beta, norm_match *m) {
    m->out = n;
    kl_node *u = kl_value_only_use(c->g, n);
    kl_value *p;
    if (kl_tp_is_op(u, "Mul") && (p = other_operand(u, n)) && param_fits(p, m->x, m->axis)) {
        m->gamma = p;
        nm_add(m, u);
        m->out = u->outputs[0];
        u = kl_value_only_use(c->g, m->out);
    }
    if (with_beta && kl_tp_is_op(u, "Add") && (p = other_operand(u, m->out)) && param_fits(p, m->x, m->axis)) {
        m->beta = p;
        nm_add(m, u);
        m->out = u->outputs[0];
    }
}

/* Decomposed LayerNorm starting at its first ReduceMean r1. */
static bool match_layernorm(kl_pass_ctx *c, kl_node *r1, norm_match *m) {
    memset(m, 0, sizeof *m);
    kl_value *x = r1->inputs[0];
    if (!kl_tp_is_f32(x)) return false;
    int axis = trailing_axes(c, r1, x->type.shape.rank);
    if (axis < 0) return false;
    kl_value *mean = r1->outputs[0];
    kl_node *sub = kl_value_only_use(c->g, mean);
    if (!kl_tp_is_op(sub, "Sub") || sub->n_inputs != 2 || sub->inputs[0] != x || sub->inputs[1] != mean)
        return false;
    kl_value *d = sub->outputs[0];
    /* d is read by the square and by the normalization, nothing else */
    kl_node *sq = NULL, *other = NULL;
    if (kl_value_escapes(c->g, d)) return false;
    for (size_t i = 0; i < d->n_uses; i++) {
        kl_node *u = d->uses[i].node;
        if (u == sq || u == other) continue;
        if (!sq && is_square_of(c, u, d)) sq = u;
        else if (!other) other = u;
        else return false;
    }
    if (!sq || !other) return false;
    kl_node *r2 = kl_value_only_use(c->g, sq->outputs[0]);
    if (!r2 || r2->inputs[0] != sq->outputs[0] || trailing_axes(c, r2, x->type.shape.rank) != axis) return false;
    m->x = x;
    m->axis = axis;
    nm_add(m, r1);
    nm_add(m, sub);
    nm_add(m, sq);
    nm_add(m, r2);
    kl_node *nrm = match_denominator(c, r2->outputs[0], d, m);
    if (!nrm || nrm != other) return false;
    nm_add(m, nrm);
    match_affine(c, nrm->outputs[0], true, m);
    return true;
}

/* Decomposed RMSNorm starting at its ReduceMean r (of x squared). */
static bool match_rmsnorm(kl_pass_ctx *c, kl_node *r, norm_match *m) {
    memset(m, 0, sizeof *m);
    kl_value *p = r->inputs[0];
    kl_node *sq = kl_tp_producer(c, p);
    if (!sq || sq->n_inputs != 2 || !kl_tp_only_reader(c, p, r)) return false;
    kl_value *x = sq->inputs[0];
    if (!kl_tp_is_f32(x) || !is_square_of(c, sq, x)) return false;
    int axis = trailing_axes(c, r, x->type.shape.rank);
    if (axis < 0) return false;
    m->x = x;
    m->axis = axis;
    nm_add(m, sq);
    nm_add(m, r);
    kl_node *nrm = match_denominator(c, r->outputs[0], x, m);
    if (!nrm) return false;
    nm_add(m, nrm);
    match_affine(c, nrm->outputs[0], false, m);
    return true;
}

/* Replace the matched nodes by one kiln norm node `op` producing m->out. */
static kiln_status rewrite(kl_pass_ctx *c, norm_match *m, const char *op) {
    bool ln = strcmp(op, "LayerNorm") == 0;
    kl_attr attrs[2] = {kl_attr_of_int("axis", m->axis), kl_attr_of_float("epsilon", m->eps)};
    kl_value *in[3] = {m->x, m->gamma, m->beta};
    kl_node *at = m->out->producer;
    for (size_t a = 0; a + 1 < m->n; a++) /* graph order for the origin label */
        for (size_t b = a + 1; b < m->n; b++)
            if (m->nodes[b]->index < m->nodes[a]->index) {
                kl_node *t = m->nodes[a];
                m->nodes[a] = m->nodes[b];
                m->nodes[b] = t;
            }
    const char *origin = kl_nodes_origin(c->m, m->nodes, m->n);
    if (!origin) return KILN_ERR_NO_MEMORY;
    for (size_t i = 0; i < m->n; i++) kl_node_remove(m->nodes[i]);
    kl_node *n;
    size_t n_in = ln ? (m->beta ? 3 : m->gamma ? 2 : 1) : (m->gamma ? 2 : 1);
    KL_TRY(kl_node_new(c->g, NULL, op, KL_KILN_DOMAIN, in, n_in, &m->out, 1, attrs, 2, origin, at, &n));
    KL_TRY(kl_node_infer(c->m, n));
    return kl_pass_commit(c, n->fused_from);
}

/* An ONNX LayerNormalization / RMSNormalization whose statistics outputs
 * nobody reads, with float statistics, as the kiln op. */
static bool match_onnx_norm(kl_pass_ctx *c, kl_node *n, norm_match *m) {
    memset(m, 0, sizeof *m);
    bool ln = kl_tp_is_op(n, "LayerNormalization");
    if ((!ln && !kl_tp_is_op(n, "RMSNormalization")) || n->n_inputs < 2 || !kl_tp_is_f32(n->inputs[0]) ||
        !kl_tp_is_f32(n->inputs[1]) || (n->n_inputs > 2 && n->inputs[2] && !kl_tp_is_f32(n->inputs[2])))
        return false;
    if (kl_node_attr_int(n, "stash_type", 1) != KILN_DTYPE_FLOAT) return false;
    for (size_t k = 1; k < n->n_outputs; k++)
        if (n->outputs[k] && (n->outputs[k]->n_uses || kl_value_escapes(c->g, n->outputs[k]))) return false;
    int rank = n->inputs[0]->type.shape.rank;
    int64_t axis = kl_node_attr_int(n, "axis", -1);
    if (rank < 1 || axis < -rank || axis >= rank) return false;
    m->x = n->inputs[0];
    m->axis = (int)(axis < 0 ? axis + rank : axis);
    m->gamma = n->inputs[1];
    m->beta = ln && n->n_inputs > 2 ? n->inputs[2] : NULL;
    m->eps = kl_node_attr_float(n, "epsilon", 1e-5f);
    m->out = n->outputs[0];
    nm_add(m, n);
    return true;
}

kiln_status kl_pass_fuse_norm(kl_pass_ctx *c) {
    norm_match m;
    for (size_t i = 0; i < c->g->n_nodes; i++) {
        kl_node *n = c->g->nodes[i];
        if (n->removed || !match_onnx_norm(c, n, &m)) continue;
        if (!kl_pass_begin(c)) return KILN_OK;
        KL_TRY(rewrite(c, &m, kl_pass_is(n, "LayerNormalization") ? "LayerNorm" : "RMSNorm"));
    }
    for (size_t i = 0; i < c->g->n_nodes; i++) {
        kl_node *n = c->g->nodes[i];
        if (n->removed || !kl_tp_is_op(n, "ReduceMean") || !match_layernorm(c, n, &m)) continue;
        if (!kl_pass_begin(c)) return KILN_OK;
        KL_TRY(rewrite(c, &m, "LayerNorm"));
    }
    for (size_t i = 0; i < c->g->n_nodes; i++) {
        kl_node *n = c->g->nodes[i];
        if (n->removed || !kl_tp_is_op(n, "ReduceMean") || !match_rmsnorm(c, n, &m)) continue;
        if (!kl_pass_begin(c)) return KILN_OK;
        KL_TRY(rewrite(c, &m, "RMSNorm"));
    }
    return KILN_OK;
}
