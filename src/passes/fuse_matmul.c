/*
 * fuse_matmul: a linear layer's MatMul with a constant weight B, followed
 * by at most one scalar Mul/Div (alpha), a bias Add (N values over the last
 * dim) and an activation (kl_pass_match_activation: Relu, GELU in its erf
 * and tanh spellings, SiLU...), becomes one kiln.FusedMatMul.  An existing
 * FusedMatMul without activation takes a following activation.  MatMuls of
 * two computed operands (attention scores) are left alone.
 */
#include <stdio.h>

#include "passes/passes_transformer.h"

/* Can b be FusedMatMul's bias for product y: float32, rank 1 to y's rank,
 * dims [1,...,1,N] with N y's last dim? */
static bool bias_fits(const kl_value *b, const kl_value *y) {
    const kl_shape *bs = &b->type.shape, *ys = &y->type.shape;
    if (!kl_tp_is_f32(b) || bs->rank < 1 || ys->rank < 1 || bs->rank > ys->rank) return false;
    for (int i = 0; i + 1 < bs->rank; i++)
        if (bs->dims[i].value != 1) return false;
    return kl_tp_dim_same(&bs->dims[bs->rank - 1], &ys->dims[ys->rank - 1]);
}

/* The Mul/Div by a one-element constant of rank <= cur's (so the output
 * keeps cur's shape) reading cur (cur first for Div); sets *factor (Div: 1/c). */
static kl_node *scalar_step(kl_pass_ctx *c, kl_value *cur, double *factor) {
    kl_node *u = kl_value_only_use(c->g, cur);
    bool mul = kl_tp_is_op(u, "Mul"), div = kl_tp_is_op(u, "Div");
    if ((!mul && !div) || u->n_inputs != 2) return NULL;
    int side = u->inputs[0] == cur ? 1 : 0;
    if (u->inputs[1 - side] != cur || !u->inputs[side] || u->inputs[side] == cur || (div && side != 1)) return NULL;
    double k;
    const kl_tensor *t = kl_value_const(c->m, u->inputs[side]);
    if (!t || t->count != 1 || t->rank > cur->type.shape.rank || !kl_pass_const_scalar(c, u->inputs[side], &k) ||
        (div && k == 0.0))
        return NULL;
    *factor = div ? 1.0 / k : k;
    return u;
}

/* The bias Add reading cur (bias_fits: the output keeps cur's shape);
 * *bias = its other operand. */
static kl_node *bias_step(kl_pass_ctx *c, kl_value *cur, kl_value **bias) {
    kl_node *u = kl_value_only_use(c->g, cur);
    if (!kl_tp_is_op(u, "Add") || u->n_inputs != 2) return NULL;
    int side = u->inputs[0] == cur ? 1 : 0;
    kl_value *b = u->inputs[side];
    if (u->inputs[1 - side] != cur || !b || b == cur || !bias_fits(b, cur)) return NULL;
    *bias = b;
    return u;
}

kiln_status kl_pass_fuse_matmul(kl_pass_ctx *c) {
    for (size_t i = 0; i < c->g->n_nodes; i++) {
        kl_node *p = c->g->nodes[i];
        bool mm = kl_tp_is_op(p, "MatMul") && p->n_inputs == 2;
        bool fm = kl_tp_is_kiln(p, "FusedMatMul") && kl_node_attr_int(p, "activation", 0) == KL_ACT_NONE &&
                  p->n_outputs == 1 && kl_tp_is_f32(p->outputs[0]);
        if ((!mm && !fm) || !kl_tp_is_f32(p->inputs[0]) || !kl_tp_is_f32(p->inputs[1]) ||
            !kl_value_const(c->m, p->inputs[1]))
            continue;
        kl_node *abs[24];
        size_t n_abs = 0;
        abs[n_abs++] = p;
        kl_value *cur = p->outputs[0];
        kl_value *bias = fm && p->n_inputs > 2 ? p->inputs[2] : NULL;
        double alpha = fm ? kl_node_attr_float(p, "alpha", 1.0f) : 1.0, k;
        kl_node *u;
        if (!bias && (u = scalar_step(c, cur, &k))) {
            alpha *= k;
            abs[n_abs++] = u;
            cur = u->outputs[0];
        }
        if (!bias && (u = bias_step(c, cur, &bias))) {
            abs[n_abs++] = u;
            cur = u->outputs[0];
        }
        kl_act_match m;
        bool act = kl_pass_match_activation(c, cur, &m);
        if (n_abs == 1 && !act) continue;
        if (!kl_pass_begin(c)) return KILN_OK;
        if (act) {
            memcpy(abs + n_abs, m.nodes, m.n_nodes * sizeof *m.nodes);
            n_abs += m.n_nodes;
            cur = m.out;
        }
        kl_attr attrs[4] = {kl_attr_of_float("alpha", (float)alpha),
                            kl_attr_of_int("activation", act ? m.act : KL_ACT_NONE),
                            kl_attr_of_float("act_alpha", act ? m.alpha : 0.0f),
                            kl_attr_of_float("act_beta", act ? m.beta : 0.0f)};
        kl_value *in[3] = {p->inputs[0], p->inputs[1], bias};
        kl_node *at = cur->producer;
        const char *origin = kl_nodes_origin(c->m, abs, n_abs);
        if (!origin) return KILN_ERR_NO_MEMORY;
        for (size_t a = 0; a < n_abs; a++) kl_node_remove(abs[a]);
        kl_node *n;
        KL_TRY(kl_node_new(c->g, NULL, "FusedMatMul", KL_KILN_DOMAIN, in, bias ? 3 : 2, &cur, 1, attrs, 4, origin,
                           at, &n));
        KL_TRY(kl_node_infer(c->m, n));
        KL_TRY(kl_pass_commit(c, n->fused_from));
    }
    return KILN_OK;
}
