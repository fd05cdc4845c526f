/* Fast cpu tactics for kiln.Attention (issue 9): the fused attention kernel
 * of src/cpu/x86/attn.h (Q K^T tiles, online softmax, P V into the output
 * tile; Q, K, V, Y read and written in place in the head-packed layout), at
 * each ISA level: attn.flash.generic / .avx2 / .avx512.  Shapes and the mask
 * are checked at run time with the reference kernel's messages. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/provider.h"
#include "cpu/threadpool.h"
#include "cpu/x86/attn.h"

static bool attn_float_input(const kl_node *n, size_t i) {
    return i < n->n_inputs && n->inputs[i] && n->inputs[i]->type.kind == KL_TYPE_TENSOR &&
           n->inputs[i]->type.elem == KILN_DTYPE_FLOAT;
}

/* kiln.Attention with float Q, K, V (and mask) of rank 3 (mask <= 4). */
static bool attn_applies(const kl_node *n, char *why, size_t wsz) {
    const char *msg = NULL;
    if (strcmp(n->domain, "kiln") != 0 || strcmp(n->op_type, "Attention") != 0)
        msg = "not kiln.Attention";
    else if (!attn_float_input(n, 0) || !attn_float_input(n, 1) || !attn_float_input(n, 2) ||
             (n->n_inputs > 3 && n->inputs[3] && !attn_float_input(n, 3)))
        msg = "not float";
    else if (kl_node_attr_int(n, "num_heads", 0) < 1)
        msg = "num_heads < 1";
    for (size_t i = 0; !msg && i < 4 && i < n->n_inputs; i++) {
        const kl_shape *s = n->inputs[i] ? &n->inputs[i]->type.shape : NULL;
        if (s && s->rank >= 0 && (i < 3 ? s->rank != 3 : s->rank > 4)) msg = "Q, K, V not of rank 3 or mask above 4";
    }
    if (!msg) return true;
    if (why && wsz) snprintf(why, wsz, "%s", msg);
    return false;
}

/* [B, S, E] or [S, B, E] (seq_first) geometry: element (b, s, col) at
 * b*bs + s*ss + col. */
typedef struct attn_seq {
    size_t batch, seq, width, bs, ss;
} attn_seq;

static kiln_status attn_seq_of(kl_kctx *c, const kl_rt *t, const char *name, bool sf, attn_seq *g) {
    if (!t || t->kind != KL_RT_TENSOR || t->dtype != KILN_DTYPE_FLOAT)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "input '%s' must be a float tensor", name);
    if (t->rank != 3) {
        char b[96];
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "%s is %s, expected rank 3", name, kl_rt_describe(t, b, sizeof b));
    }
    g->width = (size_t)t->dims[2];
    g->batch = (size_t)t->dims[sf ? 1 : 0];
    g->seq = (size_t)t->dims[sf ? 0 : 1];
    g->bs = sf ? g->width : g->seq * g->width;
    g->ss = sf ? (size_t)t->dims[1] * g->width : g->width;
    return KILN_OK;
}

static kiln_status attn_run_isa(kl_kctx *c, kl_isa isa) {
    const kl_rt *q = c->n_in > 0 ? c->in[0] : NULL, *k = c->n_in > 1 ? c->in[1] : NULL;
    const kl_rt *v = c->n_in > 2 ? c->in[2] : NULL, *mask = c->n_in > 3 ? c->in[3] : NULL;
    if (mask && (mask->kind != KL_RT_TENSOR || mask->dtype != KILN_DTYPE_FLOAT))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "input 'mask' must be a float tensor");
    int64_t H = kl_node_attr_int(c->node, "num_heads", 0);
    bool sf = kl_node_attr_int(c->node, "seq_first", 0) != 0;
    attn_seq gq, gk, gv;
    KL_TRY(attn_seq_of(c, q, "Q", sf, &gq));
    KL_TRY(attn_seq_of(c, k, "K", sf, &gk));
    KL_TRY(attn_seq_of(c, v, "V", sf, &gv));
    char d1[96], d2[96], d3[96];
    if (H < 1 || gq.width != gk.width || gq.width % (size_t)H || gv.width % (size_t)H || gq.batch != gk.batch ||
        gq.batch != gv.batch || gk.seq != gv.seq)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "Q %s, K %s and V %s do not fit %lld heads%s",
                            kl_rt_describe(q, d1, sizeof d1), kl_rt_describe(k, d2, sizeof d2),
                            kl_rt_describe(v, d3, sizeof d3), (long long)H, sf ? " (seq_first)" : "");
    kl_attn_args a;
    memset(&a, 0, sizeof a);
    a.B = gq.batch, a.H = (size_t)H, a.Sq = gq.seq, a.Sk = gk.seq;
    a.D = gq.width / a.H, a.Dv = gv.width / a.H;
    a.scale = a.D > 0 ? (float)(1.0 / sqrt((double)a.D)) : 1.0f;
    const kl_attr *sa = kl_node_attr(c->node, "scale");
    if (sa) a.scale = sa->f;
    a.q = q->data, a.k = k->data, a.v = v->data;
    a.q_bs = gq.bs, a.q_ss = gq.ss, a.k_bs = gk.bs, a.k_ss = gk.ss, a.v_bs = gv.bs, a.v_ss = gv.ss;
    if (mask) {
        int64_t full[4] = {(int64_t)a.B, H, (int64_t)a.Sq, (int64_t)a.Sk}, ms[4] = {0, 0, 0, 0}, st = 1;
        if (mask->rank > 4)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "mask %s has rank > 4", kl_rt_describe(mask, d1, sizeof d1));
        for (int i = mask->rank - 1; i >= 0; st *= mask->dims[i], i--) {
            int o = 4 - mask->rank + i;
            if (mask->dims[i] == 1) continue;
            if (mask->dims[i] != full[o])
                return kl_kctx_fail(c, KILN_ERR_SHAPE, "mask %s does not broadcast to [%lld,%lld,%lld,%lld]",
                                    kl_rt_describe(mask, d1, sizeof d1), (long long)a.B, (long long)H,
                                    (long long)a.Sq, (long long)a.Sk);
            ms[o] = st;
        }
        a.mask = mask->data;
        a.m_bs = (size_t)ms[0], a.m_hs = (size_t)ms[1], a.m_qs = (size_t)ms[2], a.m_ks = (size_t)ms[3];
    }
    int64_t ydims[3] = {sf ? (int64_t)a.Sq : (int64_t)a.B, sf ? (int64_t)a.B : (int64_t)a.Sq, (int64_t)(a.H * a.Dv)};
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 3, ydims, &y));
    if (y->count == 0) return KILN_OK;
    a.y = y->data;
    a.y_bs = sf ? a.H * a.Dv : a.Sq * a.H * a.Dv;
    a.y_ss = sf ? a.B * a.H * a.Dv : a.H * a.Dv;
    a.isa = isa;
    kl_pool *pool = c->pool;
    size_t ws = kl_attn_workspace_size(&a, kl_pool_threads(pool));
    void *work = ws ? kl_kctx_scratch(c, ws) : NULL;
    if (ws && !work) return KILN_ERR_NO_MEMORY;
    return kl_attn(pool, &a, work);
}

static kiln_status attn_run_generic(kl_kctx *c) { return attn_run_isa(c, KL_ISA_REF); }
static kiln_status attn_run_avx2(kl_kctx *c) { return attn_run_isa(c, KL_ISA_AVX2); }
static kiln_status attn_run_avx512(kl_kctx *c) { return attn_run_isa(c, KL_ISA_AVX512); }

static const kl_tactic attn_tactics[] = {
    {"attn.flash.generic", 0, 20, attn_applies, NULL, NULL, attn_run_generic, KL_TACTIC_WRITES_ALL},
#if defined(__x86_64__) || defined(_M_X64)
    {"attn.flash.avx2", KL_FEAT_AVX2, 20, attn_applies, NULL, NULL, attn_run_avx2, KL_TACTIC_WRITES_ALL},
    {"attn.flash.avx512", KL_FEAT_AVX2 | KL_FEAT_AVX512, 20, attn_applies, NULL, NULL, attn_run_avx512,
     KL_TACTIC_WRITES_ALL},
#endif
};

/* The tactic of the active ISA level (KILN_ISA lowers it), when it applies. */
size_t kl_cpu_attn_tactics(const kl_node *n, const kl_tactic **out, size_t max) {
    if (!max || !attn_applies(n, NULL, 0)) return 0;
    kl_isa lv = kl_isa_active();
    size_t i = 0;
#if defined(__x86_64__) || defined(_M_X64)
    i = lv >= KL_ISA_AVX512 ? 2 : lv >= KL_ISA_AVX2 ? 1 : 0;
#else
    (void)lv;
#endif
    out[0] = &attn_tactics[i];
    return 1;
}

/* Any level by name (engines name the level they were built for). */
const kl_tactic *kl_cpu_attn_tactic_named(const kl_node *n, const char *name) {
    for (size_t i = 0; i < KL_ARRAY_LEN(attn_tactics); i++)
        if (strcmp(attn_tactics[i].name, name) == 0) return attn_applies(n, NULL, 0) ? &attn_tactics[i] : NULL;
    return NULL;
}
