/*
 * fuse_bn, fuse_conv_add, fuse_activation: BatchNormalization folded into
 * Conv/ConvTranspose/Gemm weights, Conv + residual Add into kiln.FusedConv
 * with input Z, and activations fused into Conv/Gemm as kiln.FusedConv /
 * kiln.FusedGemm.  Also the activation matcher shared with the MatMul
 * passes (kl_pass_match_activation).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "passes/passes_internal.h"

bool kl_pass_const_scalar(kl_pass_ctx *c, const kl_value *v, double *out) {
    const kl_tensor *t = kl_value_const(c->m, v);
    if (!t || t->count < 1 || !kl_dtype_is_float(t->dtype)) return false;
    double x = kl_tensor_get_f64(t, 0);
    for (int64_t i = 1; i < t->count; i++)
        if (kl_tensor_get_f64(t, i) != x) return false;
    *out = x;
    return true;
}

/* Is v a float32 tensor value? */
static bool is_f32(const kl_value *v) {
    return v && v->type.kind == KL_TYPE_TENSOR && v->type.elem == KILN_DTYPE_FLOAT;
}

/* Is node n a kiln-domain op named op? */
static bool is_kiln(const kl_node *n, const char *op) {
    return !n->removed && strcmp(n->domain, KL_KILN_DOMAIN) == 0 && strcmp(n->op_type, op) == 0;
}

/* ---- activation matching ------------------------------------------------------------------ */

typedef enum { P_X, P_CONST, P_OP, P_ALT } pkind;

/* An expression pattern over the activation's input X. */
typedef struct pat {
    pkind k;
    const char *op;        /* P_OP: ai.onnx op type; Add/Mul are commutative */
    double c;              /* P_CONST: the scalar (relative tolerance 1e-5) */
    const struct pat *a, *b; /* operands (P_OP: b NULL for unary), or alternatives */
} pat;

#define PX {P_X, NULL, 0, NULL, NULL}
#define PC(v) {P_CONST, NULL, v, NULL, NULL}
#define P1(o, x) {P_OP, o, 0, x, NULL}
#define P2(o, x, y) {P_OP, o, 0, x, y}
#define PALT(x, y) {P_ALT, NULL, 0, x, y}

static const pat p_x = PX, p_half = PC(0.5), p_one = PC(1.0), p_three = PC(3.0);
static const pat p_sqrt2 = PC(1.4142135623730951), p_rsqrt2 = PC(0.7071067811865476);
static const pat p_c0447 = PC(0.044715), p_c0797 = PC(0.7978845608028654);
/* SiLU: X * Sigmoid(X) */
static const pat p_sig = P1("Sigmoid", &p_x), p_silu = P2("Mul", &p_x, &p_sig);
/* Mish: X * Tanh(Softplus(X)) */
static const pat p_sp = P1("Softplus", &p_x), p_tsp = P1("Tanh", &p_sp), p_mish = P2("Mul", &p_x, &p_tsp);
/* HardSwish: X * HardSigmoid(X) (alpha 1/6, beta 0.5, checked separately) */
static const pat p_hsig = P1("HardSigmoid", &p_x), p_hswish = P2("Mul", &p_x, &p_hsig);
/* GELU, erf: 0.5 * X * (1 + Erf(X / sqrt 2)) in the orders exporters write */
static const pat p_div2 = P2("Div", &p_x, &p_sqrt2), p_mulr2 = P2("Mul", &p_x, &p_rsqrt2);
static const pat p_erfarg = PALT(&p_div2, &p_mulr2), p_erf = P1("Erf", &p_erfarg);
static const pat p_erf1 = P2("Add", &p_erf, &p_one);
static const pat p_xhalf = P2("Mul", &p_x, &p_half);
static const pat p_ge_a0 = P2("Mul", &p_x, &p_erf1), p_ge_a = P2("Mul", &p_ge_a0, &p_half);
static const pat p_ge_b = P2("Mul", &p_xhalf, &p_erf1);
static const pat p_ge_c0 = P2("Mul", &p_erf1, &p_half), p_ge_c = P2("Mul", &p_x, &p_ge_c0);
static const pat p_ge_ab = PALT(&p_ge_a, &p_ge_b), p_gelu_erf = PALT(&p_ge_ab, &p_ge_c);
/* GELU, tanh: 0.5 * X * (1 + Tanh(sqrt(2/pi) * (X + 0.044715 * X^3))) */
static const pat p_pow3 = P2("Pow", &p_x, &p_three), p_xx = P2("Mul", &p_x, &p_x);
static const pat p_xxx = P2("Mul", &p_xx, &p_x), p_cube = PALT(&p_pow3, &p_xxx);
static const pat p_kc = P2("Mul", &p_cube, &p_c0447), p_inner = P2("Add", &p_x, &p_kc);
static const pat p_scl = P2("Mul", &p_inner, &p_c0797), p_th = P1("Tanh", &p_scl);
static const pat p_th1 = P2("Add", &p_th, &p_one);
static const pat p_gt_a0 = P2("Mul", &p_x, &p_th1), p_gt_a = P2("Mul", &p_gt_a0, &p_half);
static const pat p_gt_b = P2("Mul", &p_xhalf, &p_th1);
static const pat p_gt_c0 = P2("Mul", &p_th1, &p_half), p_gt_c = P2("Mul", &p_x, &p_gt_c0);
static const pat p_gt_ab = PALT(&p_gt_a, &p_gt_b), p_gelu_tanh = PALT(&p_gt_ab, &p_gt_c);

static const struct {
    const pat *p;
    kl_act act;
} kl_act_patterns[] = {
    {&p_silu, KL_ACT_SILU},         {&p_mish, KL_ACT_MISH},           {&p_hswish, KL_ACT_HARD_SWISH},
    {&p_gelu_erf, KL_ACT_GELU_ERF}, {&p_gelu_tanh, KL_ACT_GELU_TANH},
};

typedef struct mstate {
    kl_pass_ctx *c;
    kl_value *x;
    kl_node *nodes[16];
    size_t n;
} mstate;

/* Add n to the matched set (no duplicates); false when full. */
static bool ms_add(mstate *s, kl_node *n) {
    for (size_t i = 0; i < s->n; i++)
        if (s->nodes[i] == n) return true;
    if (s->n == KL_ARRAY_LEN(s->nodes)) return false;
    s->nodes[s->n++] = n;
    return true;
}

static bool pat_match(mstate *s, const pat *p, kl_value *v);

/* Match operands (pa, pb) against inputs (va, vb). */
static bool pat_match2(mstate *s, const pat *pa, const pat *pb, kl_value *va, kl_value *vb) {
    size_t save = s->n;
    if (pat_match(s, pa, va) && pat_match(s, pb, vb)) return true;
    s->n = save;
    return false;
}

/* Does value v compute pattern p (X bound to s->x)?  Matched nodes are added. */
static bool pat_match(mstate *s, const pat *p, kl_value *v) {
    if (!v) return false;
    switch (p->k) {
    case P_X: return v == s->x;
    case P_CONST: {
        double c;
        return kl_pass_const_scalar(s->c, v, &c) && fabs(c - p->c) <= 1e-5 * fabs(p->c);
    }
    case P_ALT: {
        size_t save = s->n;
        if (pat_match(s, p->a, v)) return true;
        s->n = save;
        if (pat_match(s, p->b, v)) return true;
        s->n = save;
        return false;
    }
    case P_OP: break;
    }
    kl_node *n = v->producer;
    if (!n || !kl_pass_is(n, p->op) || n->outputs[0] != v || !is_f32(v)) return false;
    size_t save = s->n;
    if (!ms_add(s, n)) return false;
    bool ok;
    if (!p->b) {
        ok = n->n_inputs >= 1 && pat_match(s, p->a, n->inputs[0]);
    } else {
        if (n->n_inputs != 2) {
            ok = false;
        } else {
            bool comm = strcmp(p->op, "Add") == 0 || strcmp(p->op, "Mul") == 0;
            ok = pat_match2(s, p->a, p->b, n->inputs[0], n->inputs[1]) ||
                 (comm && pat_match2(s, p->a, p->b, n->inputs[1], n->inputs[0]));
        }
    }
    if (!ok) s->n = save;
    return ok;
}

/* Is node n in the matched set? */
static bool ms_has(const mstate *s, const kl_node *n) {
    for (size_t i = 0; i < s->n; i++)
        if (s->nodes[i] == n) return true;
    return false;
}

/* Are all readers of x and of every intermediate value inside the match,
 * with nothing but `out` escaping? */
static bool ms_closed(const mstate *s, const kl_value *out) {
    const kl_graph *g = s->c->g;
    for (size_t i = 0; i < s->x->n_uses; i++)
        if (!ms_has(s, s->x->uses[i].node)) return false;
    for (size_t i = 0; i < s->n; i++) {
        const kl_node *n = s->nodes[i];
        for (size_t k = 0; k < n->n_outputs; k++) {
            const kl_value *v = n->outputs[k];
            if (!v || v == out) continue;
            if (kl_value_escapes(g, v)) return false;
            for (size_t u = 0; u < v->n_uses; u++)
                if (!ms_has(s, v->uses[u].node)) return false;
        }
    }
    return true;
}

/* One-node activations reading x: the act and its parameters. */
static bool single_act(kl_pass_ctx *c, const kl_node *n, kl_act *act, float *alpha, float *beta) {
    *alpha = *beta = 0.0f;
    if (n->n_outputs < 1 || !is_f32(n->outputs[0])) return false;
    if (kl_pass_is(n, "Relu")) *act = KL_ACT_RELU;
    else if (kl_pass_is(n, "Sigmoid")) *act = KL_ACT_SIGMOID;
    else if (kl_pass_is(n, "Tanh")) *act = KL_ACT_TANH;
    else if (kl_pass_is(n, "HardSwish")) *act = KL_ACT_HARD_SWISH;
    else if (kl_pass_is(n, "Mish")) *act = KL_ACT_MISH;
    else if (kl_pass_is(n, "LeakyRelu")) {
        *act = KL_ACT_LEAKY_RELU;
        *alpha = kl_node_attr_float(n, "alpha", 0.01f);
    } else if (kl_pass_is(n, "HardSigmoid")) {
        *act = KL_ACT_HARD_SIGMOID;
        *alpha = kl_node_attr_float(n, "alpha", 0.2f);
        *beta = kl_node_attr_float(n, "beta", 0.5f);
    } else if (kl_pass_is(n, "Gelu")) {
        const char *mode = kl_node_attr_string(n, "approximate", "none");
        if (strcmp(mode, "none") == 0) *act = KL_ACT_GELU_ERF;
        else if (strcmp(mode, "tanh") == 0) *act = KL_ACT_GELU_TANH;
        else return false;
    } else if (kl_pass_is(n, "Clip")) {
        *act = KL_ACT_CLIP;
        if (n->opset < 11) {
            *alpha = kl_node_attr_float(n, "min", -FLT_MAX);
            *beta = kl_node_attr_float(n, "max", FLT_MAX);
            return true;
        }
        *alpha = -INFINITY;
        *beta = INFINITY;
        for (size_t k = 1; k < n->n_inputs && k <= 2; k++) {
            if (!n->inputs[k]) continue;
            const kl_tensor *t = kl_value_const(c->m, n->inputs[k]);
            if (!t || t->count != 1 || t->dtype != KILN_DTYPE_FLOAT) return false;
            float v = (float)kl_tensor_get_f64(t, 0);
            if (k == 1) *alpha = v;
            else *beta = v;
        }
    } else {
        return false;
    }
    return true;
}

bool kl_pass_match_activation(kl_pass_ctx *c, kl_value *x, kl_act_match *out) {
    memset(out, 0, sizeof *out);
    if (!is_f32(x) || !x->n_uses || (x->flags & KL_VALUE_GRAPH_OUTPUT) || kl_value_escapes(c->g, x))
        return false;
    bool found = false;
    /* One node reading x. */
    if (x->n_uses == 1) {
        kl_node *n = x->uses[0].node;
        kl_act act;
        float a, b;
        if (n->graph == c->g && !n->removed && x->uses[0].input == 0 && single_act(c, n, &act, &a, &b)) {
            out->act = act;
            out->alpha = a;
            out->beta = b;
            out->nodes[0] = n;
            out->n_nodes = 1;
            out->out = n->outputs[0];
            found = true;
        }
    }
    /* Multi-node spellings: candidate roots within a few steps below x. */
    kl_node *cand[48];
    size_t nc = 0, head = 0;
    for (size_t i = 0; i < x->n_uses && nc < KL_ARRAY_LEN(cand); i++) cand[nc++] = x->uses[i].node;
    for (int depth = 0; depth < 8 && head < nc; depth++) {
        size_t end = nc;
        for (; head < end; head++) {
            kl_node *n = cand[head];
            if (n->removed || n->graph != c->g || n->n_outputs < 1 || !n->outputs[0]) continue;
            const kl_value *v = n->outputs[0];
            for (size_t u = 0; u < v->n_uses && nc < KL_ARRAY_LEN(cand); u++) {
                kl_node *r = v->uses[u].node;
                bool dup = false;
                for (size_t j = 0; j < nc && !dup; j++) dup = cand[j] == r;
                if (!dup) cand[nc++] = r;
            }
        }
    }
    for (size_t i = 0; i < nc; i++) {
        kl_node *r = cand[i];
        if (r->removed || r->graph != c->g || r->n_outputs < 1 || !r->outputs[0]) continue;
        for (size_t p = 0; p < KL_ARRAY_LEN(kl_act_patterns); p++) {
            mstate s = {c, x, {0}, 0};
            if (!pat_match(&s, kl_act_patterns[p].p, r->outputs[0])) continue;
            if (s.n <= out->n_nodes || !ms_closed(&s, r->outputs[0])) continue;
            if (kl_act_patterns[p].act == KL_ACT_HARD_SWISH) {
                const kl_node *hs = NULL;
                for (size_t k = 0; k < s.n; k++)
                    if (kl_pass_is(s.nodes[k], "HardSigmoid")) hs = s.nodes[k];
                if (!hs || fabsf(kl_node_attr_float(hs, "alpha", 0.2f) - 1.0f / 6.0f) > 1e-6f ||
                    kl_node_attr_float(hs, "beta", 0.5f) != 0.5f)
                    continue;
            }
            out->act = kl_act_patterns[p].act;
            out->alpha = out->beta = 0.0f;
            out->n_nodes = s.n;
            out->out = r->outputs[0];
            found = true;
            /* in graph order */
            for (size_t a = 0; a < s.n; a++)
                for (size_t b = a + 1; b < s.n; b++)
                    if (s.nodes[b]->index < s.nodes[a]->index) {
                        kl_node *t = s.nodes[a];
                        s.nodes[a] = s.nodes[b];
                        s.nodes[b] = t;
                    }
            memcpy(out->nodes, s.nodes, s.n * sizeof *s.nodes);
        }
    }
    return found;
}

/* ---- helpers for building fused nodes ------------------------------------------------------ */

/* Attributes of src whose names are in `keep` (NULL-terminated), into out
 * (capacity cap); returns the count. */
static size_t copy_attrs(const kl_node *src, const char *const *keep, kl_attr *out, size_t cap) {
    size_t n = 0;
    for (size_t i = 0; i < src->n_attrs && n < cap; i++)
        for (const char *const *k = keep; *k; k++)
            if (strcmp(src->attrs[i].name, *k) == 0) {
                out[n++] = src->attrs[i];
                break;
            }
    return n;
}

static const char *const conv_attr_names[] = {"auto_pad", "dilations", "group", "kernel_shape",
                                              "pads", "strides", NULL};
static const char *const gemm_attr_names[] = {"alpha", "beta", "transA", "transB", NULL};

/* The activation of a kiln fused node (KL_ACT_NONE for others). */
static kl_act node_act(const kl_node *n) {
    if (strcmp(n->domain, KL_KILN_DOMAIN) != 0) return KL_ACT_NONE;
    return (kl_act)kl_node_attr_int(n, "activation", 0);
}

/* Has a fused node a Z input? */
static bool node_has_z(const kl_node *n) { return n->n_inputs > 3 && n->inputs[3]; }

/* Create the fused replacement of `base` (Conv/FusedConv or Gemm/FusedGemm):
 * inputs in[0..n_in), output `out`, activation (act, alpha, beta), placed at
 * `at`, absorbing nodes absorbed[0..n_abs) (base first). */
static kiln_status make_fused(kl_pass_ctx *c, kl_node *base, bool conv, kl_value *const *in, size_t n_in,
                              kl_value *out, kl_act act, float alpha, float beta, kl_node *const *absorbed,
                              size_t n_abs, kl_node *at, kl_node **made) {
    kl_attr attrs[16];
    size_t na = copy_attrs(base, conv ? conv_attr_names : gemm_attr_names, attrs, 12);
    attrs[na++] = kl_attr_of_int("activation", act);
    attrs[na++] = kl_attr_of_float("act_alpha", alpha);
    attrs[na++] = kl_attr_of_float("act_beta", beta);
    const char *origin = kl_nodes_origin(c->m, absorbed, n_abs);
    if (!origin) return KILN_ERR_NO_MEMORY;
    for (size_t i = 0; i < n_abs; i++) kl_node_remove(absorbed[i]);
    kl_node *n;
    KL_TRY(kl_node_new(c->g, NULL, conv ? "FusedConv" : "FusedGemm", KL_KILN_DOMAIN, in, n_in, &out, 1, attrs,
                       na, origin, at, &n));
    KL_TRY(kl_node_infer(c->m, n));
    if (made) *made = n;
    return KILN_OK;
}

/* ---- fuse_bn ------------------------------------------------------------------------------------ */

/* Float32 constant data of v with `count` elements, copied to a new array. */
static float *const_f32(kl_pass_ctx *c, const kl_value *v, int64_t count) {
    const kl_tensor *t = kl_value_const(c->m, v);
    if (!t || t->dtype != KILN_DTYPE_FLOAT || t->count != count || t->nbytes < (size_t)count * 4) return NULL;
    float *p = kl_malloc((size_t)(count ? count : 1) * sizeof *p);
    if (p && count) memcpy(p, t->data, (size_t)count * sizeof *p);
    return p;
}

/* Is BatchNormalization node bn an inference-mode BN whose extra outputs
 * nobody reads? */
static bool bn_inference(const kl_pass_ctx *c, const kl_node *bn) {
    if (bn->n_inputs != 5 || bn->n_outputs < 1 || !bn->outputs[0]) return false;
    if (bn->opset >= 14 && kl_node_attr_int(bn, "training_mode", 0) != 0) return false;
    if (bn->opset < 9 && kl_node_attr_int(bn, "spatial", 1) == 0) return false;
    for (size_t k = 1; k < bn->n_outputs; k++) {
        const kl_value *v = bn->outputs[k];
        if (v && (v->n_uses || kl_value_escapes(c->g, v))) return false;
    }
    for (size_t k = 0; k < 5; k++)
        if (!bn->inputs[k]) return false;
    return true;
}

/* Fold bn into its producer p (Conv, ConvTranspose, Gemm, or a FusedConv /
 * FusedGemm without activation and Z); false when it does not apply. */
static kiln_status fold_bn(kl_pass_ctx *c, kl_node *bn, bool *done) {
    *done = false;
    kl_value *x = bn->inputs[0], *y = bn->outputs[0];
    kl_node *p = x->producer;
    if (!p || p->removed || p->outputs[0] != x || kl_value_only_use(c->g, x) != bn || !is_f32(x) || !is_f32(y))
        return KILN_OK;
    int kind; /* 0 conv, 1 conv transpose, 2 gemm */
    if (kl_pass_is(p, "Conv") || (is_kiln(p, "FusedConv") && node_act(p) == KL_ACT_NONE && !node_has_z(p))) kind = 0;
    else if (kl_pass_is(p, "ConvTranspose")) kind = 1;
    else if ((kl_pass_is(p, "Gemm") && p->opset >= 7) ||
             (is_kiln(p, "FusedGemm") && node_act(p) == KL_ACT_NONE && !node_has_z(p)))
        kind = 2;
    else
        return KILN_OK;
    if (p->n_inputs < 2 || !p->inputs[0] || !p->inputs[1]) return KILN_OK;
    const kl_tensor *wt = kl_value_const(c->m, p->inputs[1]);
    if (!wt || wt->dtype != KILN_DTYPE_FLOAT || wt->rank < 2) return KILN_OK;
    int64_t group = kind == 2 ? 1 : kl_node_attr_int(p, "group", 1);
    bool tb = kind == 2 && kl_node_attr_int(p, "transB", 0) != 0;
    int64_t M; /* output channels */
    if (kind == 0) M = wt->dims[0];
    else if (kind == 1) M = wt->dims[1] * group;
    else M = tb ? wt->dims[0] : wt->dims[1];
    if (M <= 0 || group < 1 || (kind == 1 && wt->dims[0] % group)) return KILN_OK;
    if (kind == 2 && x->type.shape.rank != 2) return KILN_OK;
    /* Bias: absent, or a float constant of M elements (Gemm: [M] or [1,M]). */
    kl_value *bv = p->n_inputs > 2 ? p->inputs[2] : NULL;
    const kl_tensor *bt = bv ? kl_value_const(c->m, bv) : NULL;
    if (bv && (!bt || bt->dtype != KILN_DTYPE_FLOAT || bt->count != M)) return KILN_OK;
    if (bv && kind == 2 && !(bt->rank == 1 || (bt->rank == 2 && bt->dims[0] == 1))) return KILN_OK;
    float *sc = const_f32(c, bn->inputs[1], M), *bb = const_f32(c, bn->inputs[2], M);
    float *mu = const_f32(c, bn->inputs[3], M), *var = const_f32(c, bn->inputs[4], M);
    float *w = NULL, *b = NULL;
    kiln_status s = KILN_OK;
    if (!sc || !bb || !mu || !var) goto done; /* not constant: leave it */
    if (!kl_pass_begin(c)) goto done;
    double eps = kl_node_attr_float(bn, "epsilon", 1e-5f);
    double alpha = kind == 2 ? kl_node_attr_float(p, "alpha", 1.0f) : 1.0;
    double beta = kind == 2 ? kl_node_attr_float(p, "beta", 1.0f) : 1.0;
    (void)alpha;
    w = kl_malloc(wt->nbytes);
    b = kl_malloc((size_t)M * sizeof *b);
    if (!w || !b) {
        s = KILN_ERR_NO_MEMORY;
        goto done;
    }
    memcpy(w, wt->data, wt->nbytes);
    int64_t inner = wt->count / (wt->dims[0] * wt->dims[1]);
    for (int64_t i = 0; i < wt->count; i++) {
        int64_t m;
        if (kind == 0) m = i / (wt->count / wt->dims[0]);
        else if (kind == 1) {
            int64_t ci = i / (wt->dims[1] * inner), j = (i / inner) % wt->dims[1];
            m = (ci / (wt->dims[0] / group)) * wt->dims[1] + j;
        } else
            m = tb ? i / wt->dims[1] : i % wt->dims[1];
        double f = sc[m] / sqrt((double)var[m] + eps);
        w[i] = (float)(w[i] * f);
    }
    for (int64_t m = 0; m < M; m++) {
        double f = sc[m] / sqrt((double)var[m] + eps), b0 = 0.0;
        if (bt) {
            float bf;
            memcpy(&bf, (const char *)bt->data + m * 4, 4);
            b0 = kind == 2 ? beta * bf : bf;
        }
        b[m] = (float)((b0 - mu[m]) * f + bb[m]);
    }
    kl_tensor nt = *wt;
    nt.name = "";
    nt.data = w;
    kl_value *nw, *nb;
    char hint[256];
    snprintf(hint, sizeof hint, "%s_bnw", p->inputs[1]->name);
    s = kl_value_new_const(c->g, hint, &nt, &nw);
    int64_t bdim = M;
    kl_tensor btn = {"", KILN_DTYPE_FLOAT, 1, &bdim, M, b, (size_t)M * 4, NULL, false, NULL, 0};
    snprintf(hint, sizeof hint, "%s_bnb", bn->name[0] ? bn->name : "bn");
    if (!s) s = kl_value_new_const(c->g, hint, &btn, &nb);
    if (s) goto done;
    kl_node *absorbed[2] = {p, bn};
    const char *origin = kl_nodes_origin(c->m, absorbed, 2);
    if (!origin) {
        s = KILN_ERR_NO_MEMORY;
        goto done;
    }
    kl_value *in[4] = {p->inputs[0], nw, nb, node_has_z(p) ? p->inputs[3] : NULL};
    size_t n_in = 3;
    kl_attr attrs[24];
    size_t na = 0;
    for (size_t i = 0; i < p->n_attrs && na < 20; i++) {
        if (kind == 2 && strcmp(p->attrs[i].name, "beta") == 0) continue; /* folded into the bias */
        attrs[na++] = p->attrs[i];
    }
    kl_node_remove(p);
    kl_node_remove(bn);
    kl_node *n;
    s = kl_node_new(c->g, NULL, p->op_type, p->domain, in, n_in, &y, 1, attrs, na, origin, bn, &n);
    if (!s) s = kl_node_infer(c->m, n);
    if (!s) s = kl_pass_commit(c, origin);
    *done = true;
done:
    kl_free(sc);
    kl_free(bb);
    kl_free(mu);
    kl_free(var);
    kl_free(w);
    kl_free(b);
    return s;
}

static bool same_shape(const kl_shape *a, const kl_shape *b);

/* Per-channel values of constant v for an output [N, M, spatial...] of
 * rank `rank`: v broadcasts along every axis but the channel axis (1), with
 * M or 1 elements there.  Returns a new array of M floats, or NULL. */
static float *channel_const(kl_pass_ctx *c, const kl_value *v, int rank, int64_t M) {
    const kl_tensor *t = kl_value_const(c->m, v);
    if (!t || t->dtype != KILN_DTYPE_FLOAT || t->rank > rank || t->nbytes < (size_t)t->count * 4) return NULL;
    int64_t per = 1;
    for (int i = 0; i < t->rank; i++) {
        int axis = rank - t->rank + i;
        if (axis == 1) per = t->dims[i];
        else if (t->dims[i] != 1) return NULL;
    }
    if (per != 1 && per != M) return NULL;
    float *out = kl_malloc((size_t)M * sizeof *out);
    if (!out) return NULL;
    for (int64_t m = 0; m < M; m++) memcpy(&out[m], (const char *)t->data + (per == 1 ? 0 : m) * 4, 4);
    return out;
}

/* Conv (or FusedConv without activation and Z) followed by Add or Mul of a
 * per-channel constant: folded into the bias (Add) or weights and bias (Mul). */
static kiln_status fold_affine(kl_pass_ctx *c, kl_node *op) {
    bool mul = kl_pass_is(op, "Mul");
    if (op->n_inputs != 2 || !is_f32(op->outputs[0])) return KILN_OK;
    for (int side = 0; side < 2; side++) {
        kl_value *x = op->inputs[side], *k = op->inputs[1 - side];
        kl_node *p = x ? x->producer : NULL;
        if (!p || p->removed || p->outputs[0] != x || kl_value_only_use(c->g, x) != op || !is_f32(x)) continue;
        if (!kl_pass_is(p, "Conv") && !(is_kiln(p, "FusedConv") && node_act(p) == KL_ACT_NONE && !node_has_z(p)))
            continue;
        const kl_tensor *wt = kl_value_const(c->m, p->inputs[1]);
        const kl_tensor *bt = p->n_inputs > 2 && p->inputs[2] ? kl_value_const(c->m, p->inputs[2]) : NULL;
        int rank = x->type.shape.rank;
        if (!wt || wt->dtype != KILN_DTYPE_FLOAT || wt->rank < 2 || rank != wt->rank || k == x) continue;
        int64_t M = wt->dims[0];
        if (p->n_inputs > 2 && p->inputs[2] && (!bt || bt->dtype != KILN_DTYPE_FLOAT || bt->count != M)) continue;
        /* The result must keep the Conv output's shape (no broadcast growth). */
        if (!same_shape(&op->outputs[0]->type.shape, &x->type.shape)) continue;
        float *cv = channel_const(c, k, rank, M);
        if (!cv) continue;
        if (!kl_pass_begin(c)) {
            kl_free(cv);
            return KILN_OK;
        }
        float *b = kl_malloc((size_t)M * sizeof *b), *w = mul ? kl_malloc(wt->nbytes) : NULL;
        kiln_status s = (!b || (mul && !w)) ? KILN_ERR_NO_MEMORY : KILN_OK;
        kl_value *nw = p->inputs[1], *nb = NULL;
        char hint[256];
        if (!s) {
            for (int64_t m = 0; m < M; m++) {
                float b0 = 0;
                if (bt) memcpy(&b0, (const char *)bt->data + m * 4, 4);
                b[m] = mul ? b0 * cv[m] : b0 + cv[m];
            }
            int64_t bdim = M;
            kl_tensor btn = {"", KILN_DTYPE_FLOAT, 1, &bdim, M, b, (size_t)M * 4, NULL, false, NULL, 0};
            snprintf(hint, sizeof hint, "%s_bias", op->name[0] ? op->name : "affine");
            s = kl_value_new_const(c->g, hint, &btn, &nb);
        }
        if (!s && mul) {
            memcpy(w, wt->data, wt->nbytes);
            int64_t per = wt->count / M;
            for (int64_t i = 0; i < wt->count; i++) w[i] *= cv[i / per];
            kl_tensor nt = *wt;
            nt.name = "";
            nt.data = w;
            snprintf(hint, sizeof hint, "%s_scaled", p->inputs[1]->name);
            s = kl_value_new_const(c->g, hint, &nt, &nw);
        }
        kl_free(cv);
        kl_free(b);
        kl_free(w);
        KL_TRY(s);
        kl_node *abs[2] = {p, op};
        const char *origin = kl_nodes_origin(c->m, abs, 2);
        if (!origin) return KILN_ERR_NO_MEMORY;
        kl_value *in[3] = {p->inputs[0], nw, nb}, *y = op->outputs[0];
        kl_attr attrs[24];
        size_t na = 0;
        for (size_t i = 0; i < p->n_attrs && na < 24; i++) attrs[na++] = p->attrs[i];
        kl_node_remove(p);
        kl_node_remove(op);
        kl_node *n;
        KL_TRY(kl_node_new(c->g, NULL, p->op_type, p->domain, in, 3, &y, 1, attrs, na, origin, op, &n));
        KL_TRY(kl_node_infer(c->m, n));
        return kl_pass_commit(c, origin);
    }
    return KILN_OK;
}

kiln_status kl_pass_fuse_bn(kl_pass_ctx *c) {
    for (size_t i = 0; i < c->g->n_nodes; i++) {
        kl_node *n = c->g->nodes[i];
        if (kl_pass_is(n, "Add") || kl_pass_is(n, "Mul")) {
            KL_TRY(fold_affine(c, n));
            if (c->stopped) return KILN_OK;
            continue;
        }
        if (!kl_pass_is(n, "BatchNormalization") || !bn_inference(c, n)) continue;
        bool done;
        KL_TRY(fold_bn(c, n, &done));
        if (c->stopped) return KILN_OK;
    }
    return KILN_OK;
}

/* ---- fuse_conv_add ---------------------------------------------------------------------------- */

/* Same rank and the same dims (known sizes equal, or the same symbol). */
static bool same_shape(const kl_shape *a, const kl_shape *b) {
    if (a->rank < 0 || a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++) {
        const kl_dim *x = &a->dims[i], *y = &b->dims[i];
        if (x->value >= 0 || y->value >= 0) {
            if (x->value != y->value) return false;
        } else if (!x->param || !y->param || strcmp(x->param, y->param) != 0) {
            return false;
        }
    }
    return true;
}

/* A Conv / FusedConv (no activation, no Z) producing v, read only once. */
static kl_node *plain_conv(const kl_pass_ctx *c, const kl_value *v) {
    kl_node *p = v ? v->producer : NULL;
    if (!p || p->removed || p->outputs[0] != v || !is_f32(v) || !kl_value_only_use(c->g, v)) return NULL;
    if (kl_pass_is(p, "Conv")) return p;
    if (is_kiln(p, "FusedConv") && node_act(p) == KL_ACT_NONE && !node_has_z(p)) return p;
    return NULL;
}

kiln_status kl_pass_fuse_conv_add(kl_pass_ctx *c) {
    for (size_t i = 0; i < c->g->n_nodes; i++) {
        kl_node *add = c->g->nodes[i];
        if (!kl_pass_is(add, "Add") || add->n_inputs != 2 || !is_f32(add->outputs[0])) continue;
        for (int side = 0; side < 2; side++) {
            kl_value *cv = add->inputs[side], *z = add->inputs[1 - side];
            kl_node *p = plain_conv(c, cv);
            if (!p || !z || z == cv || !is_f32(z) || !same_shape(&z->type.shape, &cv->type.shape) ||
                !same_shape(&add->outputs[0]->type.shape, &cv->type.shape))
                continue;
            if (!kl_pass_begin(c)) return KILN_OK;
            kl_value *in[4] = {p->inputs[0], p->inputs[1], p->n_inputs > 2 ? p->inputs[2] : NULL, z};
            kl_node *abs[2] = {p, add};
            kl_node *n;
            KL_TRY(make_fused(c, p, true, in, 4, add->outputs[0], KL_ACT_NONE, 0, 0, abs, 2, add, &n));
            KL_TRY(kl_pass_commit(c, n->fused_from));
            break;
        }
    }
    return KILN_OK;
}

/* ---- fuse_activation ------------------------------------------------------------------------------ */

kiln_status kl_pass_fuse_activation(kl_pass_ctx *c) {
    for (size_t i = 0; i < c->g->n_nodes; i++) {
        kl_node *p = c->g->nodes[i];
        if (p->removed || p->n_outputs != 1 || !is_f32(p->outputs[0])) continue;
        bool conv;
        if (kl_pass_is(p, "Conv") || (is_kiln(p, "FusedConv") && node_act(p) == KL_ACT_NONE)) conv = true;
        else if ((kl_pass_is(p, "Gemm") && p->opset >= 7) || (is_kiln(p, "FusedGemm") && node_act(p) == KL_ACT_NONE))
            conv = false;
        else
            continue;
        if (p->n_inputs < 2 || !is_f32(p->inputs[0])) continue;
        kl_act_match m;
        if (!kl_pass_match_activation(c, p->outputs[0], &m)) continue;
        if (!kl_pass_begin(c)) return KILN_OK;
        kl_value *in[4] = {p->inputs[0], p->inputs[1], p->n_inputs > 2 ? p->inputs[2] : NULL,
                           p->n_inputs > 3 ? p->inputs[3] : NULL};
        size_t n_in = in[3] ? 4 : 3;
        kl_node *abs[17];
        abs[0] = p;
        memcpy(abs + 1, m.nodes, m.n_nodes * sizeof *m.nodes);
        kl_node *at = m.out->producer, *n;
        KL_TRY(make_fused(c, p, conv, in, n_in, m.out, m.act, m.alpha, m.beta, abs, m.n_nodes + 1, at, &n));
        KL_TRY(kl_pass_commit(c, n->fused_from));
    }
    return KILN_OK;
}

/* ---- fuse_conv_dw ----------------------------------------------------------------------------- */

/* Bytes of the expanded tensor (one image) from which the pair is fused:
 * smaller ones stay in L2 between the two layers anyway, and the depthwise
 * layer alone has faster forms for small maps. */
#define KL_CONV_DW_MIN_BYTES ((size_t)3 << 20)
/* A stem's (the first layer kxk on few channels): its output need only
 * exceed L2 (1 MiB on Zen 4), MobileNet-V2's and EfficientNet-B0's 32 x
 * 112 x 112 (1.5 MiB) cost 0.2 ms more stored and read back than in
 * bands, 1 thread, AVX-512 */
#define KL_STEM_DW_MIN_BYTES ((size_t)1 << 20)
/* A stem's most input channels and kernel size (the CPU's conv.direct:
 * KL_CONV_DIRECT_MAX_C, 7x7) */
#define KL_STEM_MAX_C 4
#define KL_STEM_MAX_K 7

/* INTS attribute `name` of n absent, or `count` values all equal to v
 * (callers pass the ONNX default as v). */
static bool ints_are(const kl_node *n, const char *name, int64_t v, int64_t count) {
    const int64_t *p;
    int64_t k = kl_node_attr_ints(n, name, &p);
    if (k < 0) return true;
    if (k != count) return false;
    for (int64_t i = 0; i < k; i++)
        if (p[i] != v) return false;
    return true;
}

/* A Conv / FusedConv without Z, float, constant rank-4 weights and a
 * constant bias of M values, explicit pads (auto_pad NOTSET): its weights
 * (and bias) tensors. */
static bool conv_consts(kl_pass_ctx *c, const kl_node *n, const kl_tensor **w, const kl_tensor **b) {
    if (!(kl_pass_is(n, "Conv") || is_kiln(n, "FusedConv")) || node_has_z(n) || n->n_inputs < 3 || !n->inputs[2])
        return false;
    if (!is_f32(n->inputs[0]) || !is_f32(n->outputs[0])) return false;
    if (strcmp(kl_node_attr_string(n, "auto_pad", "NOTSET"), "NOTSET") != 0) return false;
    *w = kl_value_const(c->m, n->inputs[1]);
    *b = kl_value_const(c->m, n->inputs[2]);
    return *w && *b && (*w)->dtype == KILN_DTYPE_FLOAT && (*b)->dtype == KILN_DTYPE_FLOAT && (*w)->rank == 4 &&
           (*b)->count == (*w)->dims[0] && ints_are(n, "dilations", 1, 2);
}

/* A 1x1 convolution (stride 1, no pads, group 1), or a stem (group 1, at
 * most KL_STEM_MAX_C input channels, a kernel of 2x2 to 7x7, strides 1 or 2
 * equal both ways, dilation 1), feeding only a depthwise convolution (3x3
 * or 5x5, strides 1 or 2 equal both ways, dilation 1, pads below the
 * kernel, no Z) becomes kiln.FusedConvDw: the CPU computes the first
 * layer's tensor a band of rows at a time in cache (conv.expand_dw).  Only
 * for CPU builds (kl_pass_options.cpu_fused), for first-layer tensors of
 * at least KL_CONV_DW_MIN_BYTES (stems: KL_STEM_DW_MIN_BYTES) per image
 * with static C, H, W. */
kiln_status kl_pass_fuse_conv_dw(kl_pass_ctx *c) {
    if (!c->cpu_fused) return KILN_OK;
    for (size_t i = 0; i < c->g->n_nodes; i++) {
        kl_node *d = c->g->nodes[i];
        const kl_tensor *w2, *b2, *w1, *b1;
        if (d->removed || d->n_outputs != 1 || !conv_consts(c, d, &w2, &b2)) continue;
        kl_value *t = d->inputs[0];
        kl_node *e = t->producer;
        if (!e || e->removed || e->n_outputs != 1 || e->outputs[0] != t || kl_value_only_use(c->g, t) != d ||
            !conv_consts(c, e, &w1, &b1))
            continue;
        int64_t M = w1->dims[0], K = w2->dims[2];
        const kl_shape *ts = &t->type.shape, *xs = &e->inputs[0]->type.shape;
        if (ts->rank != 4 || xs->rank != 4 || ts->dims[1].value != M || ts->dims[2].value < 1 ||
            ts->dims[3].value < 1 || xs->dims[1].value != w1->dims[1])
            continue;
        /* the 1x1 layer, or a stem */
        int64_t EK = w1->dims[2];
        const int64_t *est, *epd;
        int64_t nest = kl_node_attr_ints(e, "strides", &est), nepd = kl_node_attr_ints(e, "pads", &epd);
        int64_t es = nest == 2 ? est[0] : 1;
        bool is_1x1 = EK == 1 && w1->dims[3] == 1 && ints_are(e, "strides", 1, 2) && ints_are(e, "pads", 0, 4);
        bool is_stem = !is_1x1 && w1->dims[1] <= KL_STEM_MAX_C && EK >= 1 && EK <= KL_STEM_MAX_K &&
                       w1->dims[3] >= 1 && w1->dims[3] <= KL_STEM_MAX_K && EK * w1->dims[3] > 1 &&
                       (nest < 0 || (nest == 2 && est[0] == est[1])) && (es == 1 || es == 2) &&
                       (nepd < 0 || nepd == 4);
        for (int k = 0; k < 4 && is_stem && nepd == 4; k++) is_stem = epd[k] >= 0;
        if ((!is_1x1 && !is_stem) || kl_node_attr_int(e, "group", 1) != 1) continue;
        /* the depthwise layer */
        const int64_t *st, *pd;
        int64_t nst = kl_node_attr_ints(d, "strides", &st), npd = kl_node_attr_ints(d, "pads", &pd);
        int64_t s = nst == 2 ? st[0] : 1;
        if (w2->dims[0] != M || w2->dims[1] != 1 || kl_node_attr_int(d, "group", 1) != M || (K != 3 && K != 5) ||
            w2->dims[3] != K || (nst >= 0 && (nst != 2 || st[0] != st[1])) || (s != 1 && s != 2) ||
            (npd >= 0 && npd != 4))
            continue;
        bool pads_ok = true;
        for (int k = 0; k < 4 && npd == 4; k++) pads_ok &= pd[k] >= 0 && pd[k] < K;
        if (!pads_ok) continue;
        size_t min_bytes = is_stem ? KL_STEM_DW_MIN_BYTES : KL_CONV_DW_MIN_BYTES;
        if ((size_t)(M * ts->dims[2].value * ts->dims[3].value) * sizeof(float) < min_bytes) continue;
        if (!kl_pass_begin(c)) return KILN_OK;
        kl_attr attrs[10];
        size_t na = 0;
        int64_t sv[2] = {s, s}, pv[4] = {0, 0, 0, 0};
        for (int k = 0; k < 4 && npd == 4; k++) pv[k] = pd[k];
        KL_TRY(kl_attr_of_ints(c->m, "strides", sv, 2, &attrs[na++]));
        KL_TRY(kl_attr_of_ints(c->m, "pads", pv, 4, &attrs[na++]));
        if (is_stem) {
            int64_t esv[2] = {es, es}, epv[4] = {0, 0, 0, 0};
            for (int k = 0; k < 4 && nepd == 4; k++) epv[k] = epd[k];
            KL_TRY(kl_attr_of_ints(c->m, "expand_strides", esv, 2, &attrs[na++]));
            KL_TRY(kl_attr_of_ints(c->m, "expand_pads", epv, 4, &attrs[na++]));
        }
        attrs[na++] = kl_attr_of_int("activation", node_act(d));
        attrs[na++] = kl_attr_of_float("act_alpha", kl_node_attr_float(d, "act_alpha", 0.0f));
        attrs[na++] = kl_attr_of_float("act_beta", kl_node_attr_float(d, "act_beta", 0.0f));
        attrs[na++] = kl_attr_of_int("expand_activation", node_act(e));
        attrs[na++] = kl_attr_of_float("expand_act_alpha", kl_node_attr_float(e, "act_alpha", 0.0f));
        attrs[na++] = kl_attr_of_float("expand_act_beta", kl_node_attr_float(e, "act_beta", 0.0f));
        kl_node *abs[2] = {e, d};
        const char *origin = kl_nodes_origin(c->m, abs, 2);
        if (!origin) return KILN_ERR_NO_MEMORY;
        kl_value *in[5] = {e->inputs[0], e->inputs[1], e->inputs[2], d->inputs[1], d->inputs[2]}, *y = d->outputs[0];
        kl_node_remove(e);
        kl_node_remove(d);
        kl_node *n;
        KL_TRY(kl_node_new(c->g, NULL, "FusedConvDw", KL_KILN_DOMAIN, in, 5, &y, 1, attrs, na, origin, d, &n));
        KL_TRY(kl_node_infer(c->m, n));
        KL_TRY(kl_pass_commit(c, origin));
    }
    return KILN_OK;
}

/* ---- fuse_se_conv ------------------------------------------------------------------------------ */

/* Do dims a and b name the same size (equal values, or the same symbol)? */
static bool same_dim(const kl_dim *a, const kl_dim *b) {
    if (a->value >= 0 || b->value >= 0) return a->value == b->value;
    return a->param && b->param && strcmp(a->param, b->param) == 0;
}

/* Mul(x, s) -> 1x1 convolution, where s is a per-channel scale of x ([N or
 * 1, C, 1, 1]: a squeeze-excite gate) and the product feeds only the
 * convolution (stride 1, no pads, group 1, constant W and B, optional Z),
 * becomes kiln.ScaledConv(x, s, W, B, Z): the CPU scales a copy of the
 * packed weights per image (M x C multiplies) instead of the activations
 * (C x H x W), so only where M < H x W, or on maps of 64 pixels or fewer
 * (im2row's transposed copy of x takes the scale).  CPU builds only
 * (kl_pass_options.cpu_fused). */
kiln_status kl_pass_fuse_se_conv(kl_pass_ctx *c) {
    if (!c->cpu_fused) return KILN_OK;
    for (size_t i = 0; i < c->g->n_nodes; i++) {
        kl_node *d = c->g->nodes[i];
        if (d->removed || d->n_outputs != 1 || !(kl_pass_is(d, "Conv") || is_kiln(d, "FusedConv"))) continue;
        if (d->n_inputs < 3 || !d->inputs[2] || !is_f32(d->inputs[0]) || !is_f32(d->outputs[0])) continue;
        const kl_tensor *w = kl_value_const(c->m, d->inputs[1]), *b = kl_value_const(c->m, d->inputs[2]);
        if (!w || !b || w->dtype != KILN_DTYPE_FLOAT || b->dtype != KILN_DTYPE_FLOAT || w->rank != 4 ||
            w->dims[2] != 1 || w->dims[3] != 1 || b->count != w->dims[0])
            continue;
        const char *ap = kl_node_attr_string(d, "auto_pad", "NOTSET");
        if ((strcmp(ap, "NOTSET") != 0 && strcmp(ap, "VALID") != 0) || kl_node_attr_int(d, "group", 1) != 1 ||
            !ints_are(d, "strides", 1, 2) || !ints_are(d, "dilations", 1, 2) || !ints_are(d, "pads", 0, 4))
            continue;
        kl_value *t = d->inputs[0];
        kl_node *mul = t->producer;
        if (!mul || mul->removed || !kl_pass_is(mul, "Mul") || mul->n_inputs != 2 || mul->n_outputs != 1 ||
            kl_value_only_use(c->g, t) != d)
            continue;
        const kl_shape *ts = &t->type.shape;
        if (ts->rank != 4 || ts->dims[1].value != w->dims[1] || ts->dims[2].value < 1 || ts->dims[3].value < 1)
            continue;
        /* which operand is the scale: rank 4, [N or 1, C, 1, 1] */
        kl_value *x = NULL, *s = NULL;
        for (int k = 0; k < 2 && !x; k++) {
            kl_value *a = mul->inputs[k], *g = mul->inputs[1 - k];
            if (!a || !g || !is_f32(a) || !is_f32(g)) break;
            const kl_shape *as = &a->type.shape, *gs = &g->type.shape;
            if (as->rank != 4 || gs->rank != 4) break;
            bool a_full = true;
            for (int j = 0; j < 4; j++) a_full &= same_dim(&as->dims[j], &ts->dims[j]);
            bool g_scale = gs->dims[1].value == w->dims[1] && gs->dims[2].value == 1 && gs->dims[3].value == 1 &&
                           (gs->dims[0].value == 1 || same_dim(&gs->dims[0], &ts->dims[0]));
            if (a_full && g_scale) x = a, s = g;
        }
        if (!x) continue;
        /* the CPU scales a copy of W (M x C) where M < H x W; on maps of 64
         * pixels or fewer it scales the transposed copy of x that im2row
         * packs anyway */
        int64_t hw = ts->dims[2].value * ts->dims[3].value;
        if (w->dims[0] >= hw && hw > 64) continue;
        if (!kl_pass_begin(c)) return KILN_OK;
        kl_attr attrs[3];
        attrs[0] = kl_attr_of_int("activation", node_act(d));
        attrs[1] = kl_attr_of_float("act_alpha", kl_node_attr_float(d, "act_alpha", 0.0f));
        attrs[2] = kl_attr_of_float("act_beta", kl_node_attr_float(d, "act_beta", 0.0f));
        kl_node *abs[2] = {mul, d};
        const char *origin = kl_nodes_origin(c->m, abs, 2);
        if (!origin) return KILN_ERR_NO_MEMORY;
        bool z = node_has_z(d);
        kl_value *in[5] = {x, s, d->inputs[1], d->inputs[2], z ? d->inputs[3] : NULL}, *y = d->outputs[0];
        kl_node_remove(mul);
        kl_node_remove(d);
        kl_node *n;
        KL_TRY(kl_node_new(c->g, NULL, "ScaledConv", KL_KILN_DOMAIN, in, z ? 5 : 4, &y, 1, attrs, 3, origin, d, &n));
        KL_TRY(kl_node_infer(c->m, n));
        KL_TRY(kl_pass_commit(c, origin));
    }
    return KILN_OK;
}
