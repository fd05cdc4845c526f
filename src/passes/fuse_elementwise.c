/*
 * fuse_elementwise: a chain of float32 elementwise ops, each intermediate
 * read only by the next op, becomes one kiln.FusedElementwise whose
 * program (ops, args, imms) replays the ops in order.  Members: Add, Sub,
 * Mul, Div, Pow (one operand the running value; the other a scalar
 * constant that cannot widen the shape -> an immediate, the running value
 * itself, or a tensor input that broadcasts), Relu, Sigmoid, Tanh, Exp,
 * Log, Erf, Sqrt, Neg, Abs, Reciprocal, LeakyRelu, Softplus.  Elementwise
 * ops commute with broadcasting, so evaluating the program per element of
 * the final (broadcast) shape gives the chain's result.  At least two ops;
 * at most KL_FE_MAX_INPUTS inputs and KL_FE_MAX_STEPS steps.
 */
#include <math.h>

#include "passes/passes_transformer.h"

typedef struct fe_chain {
    int64_t ops[KL_FE_MAX_STEPS], args[KL_FE_MAX_STEPS];
    float imms[KL_FE_MAX_STEPS];
    kl_node *nodes[KL_FE_MAX_STEPS];
    size_t n;
    kl_value *in[KL_FE_MAX_INPUTS];
    size_t n_in;
} fe_chain;

/* Opcode of a unary member (imm: its parameter), or -1. */
static int unary_code(const kl_node *n, float *imm) {
    static const struct {
        const char *op;
        int code;
    } t[] = {{"Relu", KL_FE_RELU}, {"Sigmoid", KL_FE_SIGMOID}, {"Tanh", KL_FE_TANH}, {"Exp", KL_FE_EXP},
             {"Log", KL_FE_LOG}, {"Erf", KL_FE_ERF}, {"Sqrt", KL_FE_SQRT}, {"Neg", KL_FE_NEG},
             {"Abs", KL_FE_ABS}, {"Reciprocal", KL_FE_RECIPROCAL}, {"Softplus", KL_FE_SOFTPLUS}};
    *imm = 0.0f;
    if (n->n_inputs != 1 || !kl_tp_is_f32(n->inputs[0])) return -1;
    for (size_t i = 0; i < KL_ARRAY_LEN(t); i++)
        if (kl_tp_is_op(n, t[i].op)) return t[i].code;
    if (kl_tp_is_op(n, "LeakyRelu")) {
        *imm = kl_node_attr_float(n, "alpha", 0.01f);
        return KL_FE_LEAKY_RELU;
    }
    return -1;
}

/* Opcode of a binary member with the running value first, or -1;
 * *rev the opcode with the running value second. */
static int binary_code(const kl_node *n, int *rev) {
    static const struct {
        const char *op;
        int code, rev;
    } t[] = {{"Add", KL_FE_ADD, KL_FE_ADD}, {"Sub", KL_FE_SUB, KL_FE_RSUB}, {"Mul", KL_FE_MUL, KL_FE_MUL},
             {"Div", KL_FE_DIV, KL_FE_RDIV}, {"Pow", KL_FE_POW, KL_FE_RPOW}};
    if (n->n_inputs != 2 || !n->inputs[0] || !n->inputs[1]) return -1;
    for (size_t i = 0; i < KL_ARRAY_LEN(t); i++)
        if (kl_tp_is_op(n, t[i].op)) {
            *rev = t[i].rev;
            return t[i].code;
        }
    return -1;
}

/* Is o a one-element numeric constant exactly representable in float that
 * cannot widen a value of rank `rank`?  Sets *f. */
static bool as_immediate(kl_pass_ctx *c, const kl_value *o, int rank, float *f) {
    const kl_tensor *t = kl_value_const(c->m, o);
    if (!t || t->count != 1 || t->rank > rank || t->dtype == KILN_DTYPE_STRING || t->dtype == KILN_DTYPE_BOOL)
        return false;
    double v = kl_tensor_get_f64(t, 0);
    if (!isnan(v) && (double)(float)v != v) return false;
    *f = (float)v;
    return true;
}

/* Index of input value o in the chain (added when new); -1 when full. */
static int64_t input_index(fe_chain *ch, kl_value *o) {
    for (size_t i = 0; i < ch->n_in; i++)
        if (ch->in[i] == o) return (int64_t)i;
    if (ch->n_in == KL_FE_MAX_INPUTS) return -1;
    ch->in[ch->n_in] = o;
    return (int64_t)ch->n_in++;
}

/* Append node n as a step reading the running value cur (NULL for the
 * first node: its chain input is chosen here).  False: n does not fit. */
static bool add_step(kl_pass_ctx *c, fe_chain *ch, kl_node *n, kl_value *cur) {
    if (ch->n == KL_FE_MAX_STEPS || !kl_tp_is_f32(n->outputs[0])) return false;
    int rank = n->outputs[0]->type.shape.rank;
    float imm;
    int code = unary_code(n, &imm), rev;
    if (code >= 0) {
        if (cur ? n->inputs[0] != cur : input_index(ch, n->inputs[0]) != 0) return false;
        ch->ops[ch->n] = code;
        ch->args[ch->n] = KL_FE_ARG_IMM;
        ch->imms[ch->n] = imm;
        ch->nodes[ch->n++] = n;
        return true;
    }
    if ((code = binary_code(n, &rev)) < 0 || rank < 0) return false;
    kl_value *a = n->inputs[0], *b = n->inputs[1];
    int64_t arg;
    imm = 0.0f;
    if (!cur) { /* first node: the non-immediate operand is the chain input */
        if (!kl_tp_is_f32(a) && !kl_tp_is_f32(b)) return false;
        if (kl_tp_is_f32(a) && as_immediate(c, b, a->type.shape.rank, &imm)) {
            cur = a;
        } else if (kl_tp_is_f32(b) && as_immediate(c, a, b->type.shape.rank, &imm)) {
            cur = b;
        } else {
            cur = a;
        }
        if (!kl_tp_is_f32(cur) || input_index(ch, cur) != 0) return false;
    }
    bool first = a == cur;
    kl_value *o = first ? b : a;
    if (o == cur) {
        arg = KL_FE_ARG_SELF;
    } else if (as_immediate(c, o, cur->type.shape.rank, &imm)) {
        arg = KL_FE_ARG_IMM;
    } else {
        if (!kl_tp_is_f32(o) || (arg = input_index(ch, o)) < 0) return false;
    }
    ch->ops[ch->n] = first ? code : rev;
    ch->args[ch->n] = arg;
    ch->imms[ch->n] = imm;
    ch->nodes[ch->n++] = n;
    return true;
}

/* The chain starting at node n (at least one step when true). */
static bool grow_chain(kl_pass_ctx *c, kl_node *n, fe_chain *ch) {
    memset(ch, 0, sizeof *ch);
    if (n->removed || n->n_outputs != 1 || !add_step(c, ch, n, NULL)) return false;
    for (;;) {
        kl_value *cur = ch->nodes[ch->n - 1]->outputs[0];
        if (!cur->n_uses) break;
        kl_node *m = cur->uses[0].node;
        if (m->removed || m->n_outputs != 1 || !kl_tp_only_reader(c, cur, m)) break;
        fe_chain save = *ch;
        if (!add_step(c, ch, m, cur)) {
            *ch = save;
            break;
        }
    }
    return true;
}

kiln_status kl_pass_fuse_elementwise(kl_pass_ctx *c) {
    fe_chain ch;
    for (size_t i = 0; i < c->g->n_nodes; i++) {
        if (!grow_chain(c, c->g->nodes[i], &ch) || ch.n < 2) continue;
        if (!kl_pass_begin(c)) return KILN_OK;
        kl_attr attrs[3];
        KL_TRY(kl_attr_of_ints(c->m, "ops", ch.ops, ch.n, &attrs[0]));
        KL_TRY(kl_attr_of_ints(c->m, "args", ch.args, ch.n, &attrs[1]));
        memset(&attrs[2], 0, sizeof attrs[2]);
        attrs[2].name = "imms";
        attrs[2].type = KL_ATTR_FLOATS;
        attrs[2].n = ch.n;
        attrs[2].floats = kl_arena_array(&c->m->arena, ch.n, sizeof(float));
        if (!attrs[2].floats) return KILN_ERR_NO_MEMORY;
        memcpy(attrs[2].floats, ch.imms, ch.n * sizeof(float));
        kl_value *out = ch.nodes[ch.n - 1]->outputs[0];
        kl_node *at = ch.nodes[ch.n - 1];
        const char *origin = kl_nodes_origin(c->m, ch.nodes, ch.n);
        if (!origin) return KILN_ERR_NO_MEMORY;
        for (size_t k = 0; k < ch.n; k++) kl_node_remove(ch.nodes[k]);
        kl_node *n;
        KL_TRY(kl_node_new(c->g, NULL, "FusedElementwise", KL_KILN_DOMAIN, ch.in, ch.n_in, &out, 1, attrs, 3,
                           origin, at, &n));
        KL_TRY(kl_node_infer(c->m, n));
        KL_TRY(kl_pass_commit(c, n->fused_from));
    }
    return KILN_OK;
}
