/*
 * macs.c — multiply-accumulate counts of Conv-, Gemm- and MatMul-like nodes
 * (see macs.h).
 */
#include "ir/macs.h"

#include <string.h>

/* Multiply *acc by v; false on overflow. */
static bool mac_mul(uint64_t *acc, uint64_t v) { return !__builtin_mul_overflow(*acc, v, acc); }

/* Size of the symbolic name p[0..len): its binding, or 1 (noted). */
static uint64_t mac_name(const kl_mac_env *env, const char *p, size_t len, bool note) {
    if (env)
        for (size_t i = 0; i < env->n; i++)
            if (strlen(env->names[i]) == len && memcmp(env->names[i], p, len) == 0)
                return env->values[i] >= 0 ? (uint64_t)env->values[i] : 1;
    if (note && env && env->note) env->note(env->user, p, len);
    return 1;
}

/* Value of a symbolic product such as "batch*12" or "12*batch*seq" (the
 * form symbolic shape inference gives derived dims): numbers multiply,
 * names take their binding or 1 (noted).  False if `p` is not such a
 * product. */
static bool mac_sym_product(const kl_mac_env *env, const char *p, uint64_t *out) {
    if (!strchr(p, '*')) return false;
    uint64_t v = 1;
    const char *names[16];
    size_t lens[16], n_names = 0;
    while (*p) {
        const char *end = strchr(p, '*');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && *p == ' ') p++, len--;
        while (len && p[len - 1] == ' ') len--;
        if (len == 0) return false;
        size_t digits = strspn(p, "0123456789");
        if (digits >= len) {
            uint64_t num = 0;
            for (size_t i = 0; i < len; i++)
                if (__builtin_mul_overflow(num, 10, &num) || __builtin_add_overflow(num, (uint64_t)(p[i] - '0'), &num))
                    return false;
            if (!mac_mul(&v, num)) return false;
        } else {
            if (n_names == 16) return false;
            names[n_names] = p;
            lens[n_names++] = len;
        }
        if (!end) break;
        p = end + 1;
    }
    /* Names are noted only once the whole product parsed. */
    for (size_t i = 0; i < n_names; i++)
        if (!mac_mul(&v, mac_name(env, names[i], lens[i], true))) return false;
    *out = v;
    return true;
}

/* Size of dim `d`: known, bound, or 1 for a named symbolic dim (products of
 * names and numbers evaluated likewise); false if unknown. */
static bool mac_dim(const kl_mac_env *env, const kl_dim *d, uint64_t *out) {
    if (d->value >= 0) {
        *out = (uint64_t)d->value;
        return true;
    }
    if (!d->param || !*d->param) return false;
    if (mac_sym_product(env, d->param, out)) return true;
    *out = mac_name(env, d->param, strlen(d->param), true);
    return true;
}

/* Shape of tensor value v when its rank is known, else NULL. */
static const kl_shape *mac_shape(const kl_value *v) {
    if (!v || v->type.kind != KL_TYPE_TENSOR || v->type.shape.rank < 0) return NULL;
    return &v->type.shape;
}

/* Input i of n, or NULL when absent. */
static const kl_value *mac_in(const kl_node *n, size_t i) { return i < n->n_inputs ? n->inputs[i] : NULL; }

/* MACs of a Conv-like node with data input xi and weight input wi:
 * N * Cout * prod(out spatial) * (Cin/group) * prod(kernel). */
static bool mac_conv(const kl_mac_env *env, const kl_node *n, size_t xi, size_t wi, uint64_t *out) {
    const kl_shape *x = mac_shape(mac_in(n, xi)), *w = mac_shape(mac_in(n, wi));
    const kl_shape *y = n->n_outputs > 0 ? mac_shape(n->outputs[0]) : NULL;
    if (!x || !w || w->rank < 3 || x->rank != w->rank) return false;
    int sp = w->rank - 2;
    uint64_t m = 1, v;
    if (!mac_dim(env, &x->dims[0], &v) || !mac_mul(&m, v)) return false; /* N */
    for (int i = 0; i < w->rank; i++) /* Cout, Cin/group, kernel */
        if (!mac_dim(env, &w->dims[i], &v) || !mac_mul(&m, v)) return false;
    if (y && y->rank == x->rank) {
        for (int i = 0; i < sp; i++)
            if (!mac_dim(env, &y->dims[2 + i], &v) || !mac_mul(&m, v)) return false;
        *out = m;
        return true;
    }
    /* Output shape not inferred: compute it from the attributes. */
    const int64_t *strides, *dil, *pads;
    int64_t ns = kl_node_attr_ints(n, "strides", &strides);
    int64_t nd = kl_node_attr_ints(n, "dilations", &dil);
    int64_t np = kl_node_attr_ints(n, "pads", &pads);
    const char *ap = kl_node_attr_string(n, "auto_pad", "NOTSET");
    for (int i = 0; i < sp; i++) {
        uint64_t in, k;
        if (!mac_dim(env, &x->dims[2 + i], &in) || !mac_dim(env, &w->dims[2 + i], &k)) return false;
        int64_t s = ns == sp ? strides[i] : 1, d = nd == sp ? dil[i] : 1;
        int64_t pb = np == 2 * sp ? pads[i] : 0, pe = np == 2 * sp ? pads[sp + i] : 0;
        if (s <= 0 || d <= 0 || in > INT32_MAX || k > INT32_MAX) return false;
        int64_t ext = d * ((int64_t)k - 1) + 1, o;
        if (strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0)
            o = ((int64_t)in + s - 1) / s;
        else if (strcmp(ap, "VALID") == 0)
            o = (int64_t)in >= ext ? ((int64_t)in - ext) / s + 1 : 0;
        else
            o = (int64_t)in + pb + pe >= ext ? ((int64_t)in + pb + pe - ext) / s + 1 : 0;
        if (o <= 0 || !mac_mul(&m, (uint64_t)o)) return false;
    }
    *out = m;
    return true;
}

/* MACs of ConvTranspose from the input side:
 * N * Cin * prod(in spatial) * (Cout/group) * prod(kernel). */
static bool mac_convtranspose(const kl_mac_env *env, const kl_node *n, uint64_t *out) {
    const kl_shape *x = mac_shape(mac_in(n, 0)), *w = mac_shape(mac_in(n, 1));
    if (!x || !w || w->rank < 3 || x->rank != w->rank) return false;
    uint64_t m = 1, v;
    for (int i = 0; i < x->rank; i++)
        if (!mac_dim(env, &x->dims[i], &v) || !mac_mul(&m, v)) return false;
    for (int i = 1; i < w->rank; i++)
        if (!mac_dim(env, &w->dims[i], &v) || !mac_mul(&m, v)) return false;
    *out = m;
    return true;
}

/* MACs of kiln.FusedConvDw: the 1x1 layer (N*M*C*H*W) plus the depthwise
 * one (N*M*KH*KW*OH*OW, from the output shape). */
static bool mac_conv_dw(const kl_mac_env *env, const kl_node *n, uint64_t *out) {
    const kl_shape *x = mac_shape(mac_in(n, 0)), *w1 = mac_shape(mac_in(n, 1)), *w2 = mac_shape(mac_in(n, 3));
    const kl_shape *y = n->n_outputs > 0 ? mac_shape(n->outputs[0]) : NULL;
    if (!x || !w1 || !w2 || !y || x->rank != 4 || w1->rank != 4 || w2->rank != 4 || y->rank != 4) return false;
    uint64_t e = 1, d = 1, v;
    const kl_dim *ed[] = {&x->dims[0], &x->dims[2], &x->dims[3], &w1->dims[0], &w1->dims[1]};
    const kl_dim *dd[] = {&y->dims[0], &y->dims[1], &y->dims[2], &y->dims[3], &w2->dims[2], &w2->dims[3]};
    for (size_t i = 0; i < 5; i++)
        if (!mac_dim(env, ed[i], &v) || !mac_mul(&e, v)) return false;
    for (size_t i = 0; i < 6; i++)
        if (!mac_dim(env, dd[i], &v) || !mac_mul(&d, v)) return false;
    if (__builtin_add_overflow(e, d, out)) return false;
    return true;
}

/* MACs of Gemm: M * N * K. */
static bool mac_gemm(const kl_mac_env *env, const kl_node *n, uint64_t *out) {
    const kl_shape *a = mac_shape(mac_in(n, 0)), *b = mac_shape(mac_in(n, 1));
    if (!a || !b || a->rank != 2 || b->rank != 2) return false;
    bool ta = kl_node_attr_int(n, "transA", 0) != 0, tb = kl_node_attr_int(n, "transB", 0) != 0;
    uint64_t m_, k, n_;
    if (!mac_dim(env, &a->dims[ta ? 1 : 0], &m_) || !mac_dim(env, &a->dims[ta ? 0 : 1], &k) ||
        !mac_dim(env, &b->dims[tb ? 0 : 1], &n_))
        return false;
    uint64_t m = m_;
    if (!mac_mul(&m, n_) || !mac_mul(&m, k)) return false;
    *out = m;
    return true;
}

/* MACs of MatMul-like nodes with inputs ai, bi: batch * M * N * K
 * (numpy matmul: 1-D operands promoted, batch dims broadcast). */
static bool mac_matmul(const kl_mac_env *env, const kl_node *n, size_t ai, size_t bi, uint64_t *out) {
    const kl_shape *a = mac_shape(mac_in(n, ai)), *b = mac_shape(mac_in(n, bi));
    if (!a || !b || a->rank < 1 || b->rank < 1) return false;
    uint64_t k, m_ = 1, n_ = 1, m;
    if (!mac_dim(env, &a->dims[a->rank - 1], &k)) return false;
    if (a->rank >= 2 && !mac_dim(env, &a->dims[a->rank - 2], &m_)) return false;
    if (b->rank >= 2 && !mac_dim(env, &b->dims[b->rank - 1], &n_)) return false;
    m = m_;
    if (!mac_mul(&m, n_) || !mac_mul(&m, k)) return false;
    int ba = a->rank > 2 ? a->rank - 2 : 0, bb = b->rank > 2 ? b->rank - 2 : 0;
    int nb = ba > bb ? ba : bb;
    for (int i = 0; i < nb; i++) {
        uint64_t da = 1, db = 1;
        int ia = ba - nb + i, ib = bb - nb + i;
        if (ia >= 0 && !mac_dim(env, &a->dims[ia], &da)) return false;
        if (ib >= 0 && !mac_dim(env, &b->dims[ib], &db)) return false;
        if (!mac_mul(&m, da > db ? da : db)) return false;
    }
    *out = m;
    return true;
}

/* MACs of kiln.Attention: Q [B, Sq, E] (seq_first: [Sq, B, E]), K [B, Sk, E],
 * V [B, Sk, Ev]: Q K^T is B*Sq*Sk*E and P V is B*Sq*Sk*Ev, summed over the
 * heads (what the MatMul pair it replaced counts). */
static bool mac_attention(const kl_mac_env *env, const kl_node *n, uint64_t *out) {
    const kl_shape *q = mac_shape(mac_in(n, 0)), *k = mac_shape(mac_in(n, 1)), *v = mac_shape(mac_in(n, 2));
    if (!q || !k || !v || q->rank != 3 || k->rank != 3 || v->rank != 3) return false;
    bool sf = kl_node_attr_int(n, "seq_first", 0) != 0;
    uint64_t b, sq, sk, e, ev;
    if (!mac_dim(env, &q->dims[0], &b) || !mac_dim(env, &q->dims[1], &sq) ||
        !mac_dim(env, &k->dims[sf ? 0 : 1], &sk) || !mac_dim(env, &q->dims[2], &e) ||
        !mac_dim(env, &v->dims[2], &ev) || __builtin_add_overflow(e, ev, &e))
        return false;
    uint64_t m = b;
    if (!mac_mul(&m, sq) || !mac_mul(&m, sk) || !mac_mul(&m, e)) return false;
    *out = m;
    return true;
}

int kl_node_macs(const kl_node *n, const kl_mac_env *env, uint64_t *out) {
    const char *op = n->op_type ? n->op_type : "";
    const char *dom = n->domain ? n->domain : "";
    bool ok;
    if (*dom == 0) {
        if (strcmp(op, "Conv") == 0 || strcmp(op, "ConvInteger") == 0) ok = mac_conv(env, n, 0, 1, out);
        else if (strcmp(op, "QLinearConv") == 0) ok = mac_conv(env, n, 0, 3, out);
        else if (strcmp(op, "ConvTranspose") == 0) ok = mac_convtranspose(env, n, out);
        else if (strcmp(op, "Gemm") == 0) ok = mac_gemm(env, n, out);
        else if (strcmp(op, "MatMul") == 0 || strcmp(op, "MatMulInteger") == 0) ok = mac_matmul(env, n, 0, 1, out);
        else if (strcmp(op, "QLinearMatMul") == 0) ok = mac_matmul(env, n, 0, 3, out);
        else return 0;
    } else if (strcmp(dom, "kiln") == 0) {
        if (strcmp(op, "FusedConv") == 0) ok = mac_conv(env, n, 0, 1, out);
        else if (strcmp(op, "FusedConvDw") == 0) ok = mac_conv_dw(env, n, out);
        else if (strcmp(op, "ScaledConv") == 0) ok = mac_conv(env, n, 0, 2, out);
        else if (strcmp(op, "FusedGemm") == 0) ok = mac_gemm(env, n, out);
        else if (strcmp(op, "FusedMatMul") == 0) ok = mac_matmul(env, n, 0, 1, out);
        else if (strcmp(op, "Attention") == 0) ok = mac_attention(env, n, out);
        else return 0;
    } else {
        return 0;
    }
    return ok ? 1 : -1;
}

void kl_graph_macs(const kl_graph *g, const kl_mac_env *env, kl_mac_count *out) {
    if (!g) return;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const kl_node *n = g->nodes[i];
        if (!n || n->removed) continue;
        uint64_t m = 0;
        int r = kl_node_macs(n, env, &m);
        if (r > 0) {
            if (__builtin_add_overflow(out->macs, m, &out->macs)) out->macs = UINT64_MAX;
            out->nodes++;
        } else if (r < 0) {
            out->unknown++;
        }
        for (size_t a = 0; a < n->n_attrs; a++) {
            const kl_attr *at = &n->attrs[a];
            if (at->type == KL_ATTR_GRAPH && at->g) kl_graph_macs(at->g, env, out);
            else if (at->type == KL_ATTR_GRAPHS && at->graphs)
                for (size_t k = 0; k < at->n; k++) kl_graph_macs(at->graphs[k], env, out);
        }
    }
}
