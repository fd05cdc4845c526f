/*
 * layout_nchwc: CPU builds keep convolution activations in the channel-
 * blocked layout (NCHWc, c = 16; src/cpu/x86/nchwc.h) through chains of
 * layers, and reorder only at the edges.
 *
 * Every 2-D float Conv / kiln.FusedConv with constant weights, static C, H
 * and W, dilation 1, group 1 or depthwise (group == C == M) and pads below
 * the kernel becomes kiln.ConvNchwc; a MaxPool (2-D, dilation 1, no ceil
 * mode, one output) whose input is blocked becomes kiln.MaxPoolNchwc.  A
 * converted layer reads its input blocked: the blocked form of a converted
 * producer's output, else a kiln.ReorderNchwc of it (made once per value);
 * a stem (at most 4 input channels, group 1) reads the plain NCHW input
 * instead.  Its NCHW output is remade by a kiln.ReorderNchw for the readers
 * that are not converted and for graph outputs; one that nobody reads is
 * removed at the end.  The residual Z of a FusedConv is read blocked too.
 *
 * The pass runs once, after the fixed point of the others (the fusions
 * match Conv and FusedConv, not the blocked ops).
 */
#include <stdio.h>
#include <string.h>

#include "ops/kiln.h"
#include "passes/passes_internal.h"

#define LAYOUT_STEM_MAX_C 4

typedef struct lay_map {
    kl_value **from, **to; /* the blocked form `to[i]` of NCHW value `from[i]` */
    size_t n, cap;
} lay_map;

static kl_value *lay_get(const lay_map *m, const kl_value *v) {
    for (size_t i = 0; i < m->n; i++)
        if (m->from[i] == v) return m->to[i];
    return NULL;
}

static kiln_status lay_put(lay_map *m, kl_value *from, kl_value *to) {
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 64;
        kl_value **f = kl_realloc_array(m->from, cap, sizeof *f), **t = NULL;
        if (f) m->from = f;
        if (f) t = kl_realloc_array(m->to, cap, sizeof *t);
        if (!f || !t) return KILN_ERR_NO_MEMORY;
        m->to = t;
        m->cap = cap;
    }
    m->from[m->n] = from;
    m->to[m->n++] = to;
    return KILN_OK;
}

static bool is_kiln(const kl_node *n, const char *op) {
    return strcmp(n->domain, KL_KILN_DOMAIN) == 0 && strcmp(n->op_type, op) == 0;
}

static bool static_nchw_float(const kl_value *v) {
    if (!v || v->type.kind != KL_TYPE_TENSOR || v->type.elem != KILN_DTYPE_FLOAT || v->type.shape.rank != 4) return false;
    for (int a = 1; a < 4; a++)
        if (v->type.shape.dims[a].value <= 0) return false;
    return true;
}

/* ints attribute `name` of n is absent or equals v[0..cnt) */
static bool ints_all(const kl_node *n, const char *name, int64_t v, int cnt) {
    const int64_t *a;
    int64_t k = kl_node_attr_ints(n, name, &a);
    if (k < 0) return true;
    if (k != cnt) return false;
    for (int i = 0; i < cnt; i++)
        if (a[i] != v) return false;
    return true;
}

/* A convolution the blocked kernels take; *stem: it reads NCHW. */
static bool conv_ok(kl_pass_ctx *c, const kl_node *n, bool *stem) {
    if (!(n->domain[0] == 0 && strcmp(n->op_type, "Conv") == 0) && !is_kiln(n, "FusedConv")) return false;
    if (n->n_outputs != 1 || n->n_inputs < 2 || !static_nchw_float(n->inputs[0])) return false;
    const kl_tensor *w = kl_value_const(c->m, n->inputs[1]);
    if (!w || w->dtype != KILN_DTYPE_FLOAT || w->rank != 4 || !n->inputs[1]->init) return false;
    if (n->n_inputs > 2 && n->inputs[2]) {
        const kl_tensor *b = kl_value_const(c->m, n->inputs[2]);
        if (!b || !n->inputs[2]->init || b->dtype != KILN_DTYPE_FLOAT || b->count != w->dims[0]) return false;
    }
    if (n->n_inputs > 3 && n->inputs[3] && !static_nchw_float(n->inputs[3])) return false;
    const kl_value *y = n->outputs[0];
    if (!static_nchw_float(y)) return false;
    int64_t C = n->inputs[0]->type.shape.dims[1].value, M = w->dims[0], group = kl_node_attr_int(n, "group", 1);
    if (!(group == 1 && w->dims[1] == C) && !(group == C && M == C && w->dims[1] == 1)) return false;
    if (!ints_all(n, "dilations", 1, 2)) return false;
    const char *ap = kl_node_attr_string(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") != 0 && strcmp(ap, "VALID") != 0) return false;
    const int64_t *p, *s;
    int64_t np = kl_node_attr_ints(n, "pads", &p), ns = kl_node_attr_ints(n, "strides", &s);
    if ((np >= 0 && np != 4) || (ns >= 0 && (ns != 2 || s[0] < 1 || s[1] < 1))) return false;
    for (int k = 0; k < 4 && np == 4 && strcmp(ap, "VALID") != 0; k++)
        if (p[k] < 0 || p[k] >= w->dims[2 + k % 2]) return false;
    int64_t act = n->domain[0] ? kl_node_attr_int(n, "activation", 0) : 0;
    if (act < 0 || act >= KL_ACT_COUNT) return false;
    *stem = group == 1 && C <= LAYOUT_STEM_MAX_C;
    return true;
}

static bool maxpool_ok(const kl_node *n) {
    if (n->domain[0] || strcmp(n->op_type, "MaxPool") != 0 || n->n_outputs != 1 || n->n_inputs != 1) return false;
    if (!static_nchw_float(n->inputs[0]) || !static_nchw_float(n->outputs[0])) return false;
    const int64_t *k;
    if (kl_node_attr_ints(n, "kernel_shape", &k) != 2 || !ints_all(n, "dilations", 1, 2)) return false;
    if (kl_node_attr_int(n, "ceil_mode", 0) != 0) return false;
    const char *ap = kl_node_attr_string(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") != 0 && strcmp(ap, "VALID") != 0) return false;
    const int64_t *p;
    int64_t np = kl_node_attr_ints(n, "pads", &p);
    if (np >= 0 && np != 4) return false;
    for (int i = 0; i < 4 && np == 4; i++)
        if (p[i] < 0 || p[i] >= k[i % 2]) return false;
    return true;
}

/* A new unknown-typed value named after v (inference types it). */
static kiln_status blocked_value(kl_pass_ctx *c, const kl_value *v, kl_value **out) {
    char hint[256];
    snprintf(hint, sizeof hint, "%s_nchwc", v->name ? v->name : "t");
    return kl_value_new(c->g, hint, NULL, out);
}

/* The blocked form of NCHW value v: a converted producer's, else a new
 * kiln.ReorderNchwc before node `at`. */
static kiln_status blocked_of(kl_pass_ctx *c, lay_map *m, kl_value *v, kl_node *at, kl_value **out) {
    if ((*out = lay_get(m, v))) return KILN_OK;
    kl_value *b;
    KL_TRY(blocked_value(c, v, &b));
    kl_node *r;
    KL_TRY(kl_node_new(c->g, NULL, "ReorderNchwc", KL_KILN_DOMAIN, &v, 1, &b, 1, NULL, 0,
                       kl_nodes_origin(c->m, &at, 1), at, &r));
    KL_TRY(kl_node_infer(c->m, r));
    KL_TRY(lay_put(m, v, b));
    *out = b;
    return KILN_OK;
}

/* Copy of the INTS attribute `name` of n into attrs when present. */
static kiln_status copy_ints(kl_pass_ctx *c, const kl_node *n, const char *name, kl_attr *attrs, size_t *na) {
    const int64_t *v;
    int64_t k = kl_node_attr_ints(n, name, &v);
    if (k < 0) return KILN_OK;
    return kl_attr_of_ints(c->m, name, v, (size_t)k, &attrs[(*na)++]);
}

/* Replace node n (output y) by blocked op `op` over inputs in[0..nin) with
 * attrs, and a ReorderNchw remaking y for its other readers. */
static kiln_status replace(kl_pass_ctx *c, lay_map *m, kl_node *n, const char *op, kl_value **in, size_t nin,
                           const kl_attr *attrs, size_t na, int64_t channels) {
    kl_value *y = n->outputs[0], *yb;
    KL_TRY(blocked_value(c, y, &yb));
    const char *origin = kl_nodes_origin(c->m, &n, 1);
    if (!origin) return KILN_ERR_NO_MEMORY;
    kl_node_remove(n);
    kl_node *b, *r;
    KL_TRY(kl_node_new(c->g, NULL, op, KL_KILN_DOMAIN, in, nin, &yb, 1, attrs, na, origin, n, &b));
    KL_TRY(kl_node_infer(c->m, b));
    kl_attr ch = kl_attr_of_int("channels", channels);
    KL_TRY(kl_node_new(c->g, NULL, "ReorderNchw", KL_KILN_DOMAIN, &yb, 1, &y, 1, &ch, 1, origin, n, &r));
    KL_TRY(kl_node_infer(c->m, r));
    KL_TRY(lay_put(m, y, yb));
    return kl_pass_commit(c, origin);
}

kiln_status kl_pass_layout_nchwc(kl_pass_ctx *c) {
    lay_map m = {0};
    kiln_status s = KILN_OK;
    size_t nn = c->g->n_nodes;
    kl_node **order = kl_malloc((nn ? nn : 1) * sizeof *order);
    if (!order) return KILN_ERR_NO_MEMORY;
    memcpy(order, c->g->nodes, nn * sizeof *order);
    for (size_t i = 0; i < nn && !s; i++) {
        kl_node *n = order[i];
        if (n->removed) continue;
        bool stem = false;
        if (conv_ok(c, n, &stem)) {
            if (!kl_pass_begin(c)) break;
            kl_value *in[4] = {n->inputs[0], n->inputs[1], n->n_inputs > 2 ? n->inputs[2] : NULL, NULL};
            size_t nin = n->n_inputs > 2 && n->inputs[2] ? 3 : 2;
            if (!stem && (s = blocked_of(c, &m, n->inputs[0], n, &in[0]))) break;
            if (n->n_inputs > 3 && n->inputs[3]) {
                if ((s = blocked_of(c, &m, n->inputs[3], n, &in[3]))) break;
                nin = 4;
            }
            kl_attr attrs[12];
            size_t na = 0;
            bool valid = strcmp(kl_node_attr_string(n, "auto_pad", "NOTSET"), "VALID") == 0;
            if ((s = copy_ints(c, n, "strides", attrs, &na))) break;
            if (!valid && (s = copy_ints(c, n, "pads", attrs, &na))) break;
            attrs[na++] = kl_attr_of_int("group", kl_node_attr_int(n, "group", 1));
            if (stem) attrs[na++] = kl_attr_of_int("in_nchw", 1);
            if (n->domain[0]) {
                attrs[na++] = kl_attr_of_int("activation", kl_node_attr_int(n, "activation", 0));
                attrs[na++] = kl_attr_of_float("act_alpha", kl_node_attr_float(n, "act_alpha", 0.0f));
                attrs[na++] = kl_attr_of_float("act_beta", kl_node_attr_float(n, "act_beta", 0.0f));
            }
            int64_t M = n->outputs[0]->type.shape.dims[1].value;
            s = replace(c, &m, n, "ConvNchwc", in, nin, attrs, na, M);
        } else if (maxpool_ok(n) && lay_get(&m, n->inputs[0])) {
            if (!kl_pass_begin(c)) break;
            kl_value *in = lay_get(&m, n->inputs[0]);
            kl_attr attrs[4];
            size_t na = 0;
            bool valid = strcmp(kl_node_attr_string(n, "auto_pad", "NOTSET"), "VALID") == 0;
            if ((s = copy_ints(c, n, "kernel_shape", attrs, &na))) break;
            if ((s = copy_ints(c, n, "strides", attrs, &na))) break;
            if (!valid && (s = copy_ints(c, n, "pads", attrs, &na))) break;
            s = replace(c, &m, n, "MaxPoolNchwc", &in, 1, attrs, na, n->outputs[0]->type.shape.dims[1].value);
        }
    }
    /* the NCHW outputs that no reader kept */
    for (size_t i = 0; i < c->g->n_nodes && !s; i++) {
        kl_node *n = c->g->nodes[i];
        if (n->removed || !is_kiln(n, "ReorderNchw")) continue;
        kl_value *y = n->outputs[0];
        if (y->n_uses == 0 && !kl_value_escapes(c->g, y)) kl_node_remove(n);
    }
    kl_free(order);
    kl_free(m.from);
    kl_free(m.to);
    return s;
}
