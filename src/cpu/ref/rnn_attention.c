/*
 * CPU reference kernels: Attention (opset 23, 24) and RotaryEmbedding (23).
 *
 * Attention follows the ONNX function body step by step, rounding to the
 * input type T where the body does (it computes in T): Q and K are each
 * scaled by sqrt(scale), the product is rounded to T, softcap applies
 * before the bias, the bias (mask, causal and padding parts) is added in T,
 * softmax runs in softmax_precision (default T) and rows whose bias is -inf
 * everywhere get zero probabilities instead of NaN.  Products accumulate in
 * double.
 */
#include <math.h>
#include <string.h>

#include "cpu/ref/rnn.h"

/* ---- Attention --------------------------------------------------------------------------- */

typedef struct att_ctx {
    int64_t B, Hq, Hkv, L, S, P, T, Dk, Dv;
    bool three_d;
    kiln_dtype dt, sp;
    double *q, *k, *v; /* [B,Hq,L,Dk] scaled, [B,Hkv,T,Dk] scaled, [B,Hkv,T,Dv] */
    /* mask */
    const kl_rt *mask;
    int64_t mdims[4], mstr[4];
    bool causal;
    int64_t *offset;  /* per batch causal offset */
    int64_t *nonpad;  /* per batch valid kv length, or NULL */
} att_ctx;

/* Element (b, h, s, d) of a 3-D [B, S, H*D] or 4-D [B, H, S, D] tensor. */
static inline int64_t att_index(bool three_d, int64_t H, int64_t S, int64_t D, int64_t b, int64_t h, int64_t s,
                                int64_t d) {
    return three_d ? (b * S + s) * H * D + h * D + d : ((b * H + h) * S + s) * D + d;
}

/* Mask value (bias) of (b, h, i, j) before adding causal / padding parts. */
static double att_mask(const att_ctx *a, int64_t b, int64_t h, int64_t i, int64_t j) {
    if (!a->mask) return 0.0;
    if (j >= a->mdims[3]) return -INFINITY;
    int64_t off = b * a->mstr[0] + h * a->mstr[1] + i * a->mstr[2] + j * a->mstr[3];
    if (a->mask->dtype == KILN_DTYPE_BOOL) return ((const uint8_t *)a->mask->data)[off] ? 0.0 : -INFINITY;
    return kl_rt_get_f64(a->mask, off);
}

/* Any mask, causal or padding part at all. */
static bool att_has_bias(const att_ctx *a) {
    return a->mask || a->causal || a->nonpad;
}

/* Full bias of (b, h, i, j) in T: mask + causal + padding (-inf parts). */
static double att_bias(const att_ctx *a, int64_t b, int64_t h, int64_t i, int64_t j) {
    double v = att_mask(a, b, h, i, j);
    if (a->causal && j > i + a->offset[b]) v += -INFINITY;
    if (a->nonpad && j >= a->nonpad[b]) v += -INFINITY;
    return kl_rnn_round(a->dt, v);
}

/* Release a's buffers. */
static void att_free(att_ctx *a) {
    kl_free(a->q);
    kl_free(a->k);
    kl_free(a->v);
    kl_free(a->offset);
    kl_free(a->nonpad);
}

/* Shapes, heads and the mask layout. */
static kiln_status att_shapes(kl_kctx *c, att_ctx *a, const kl_rt *Q, const kl_rt *K, const kl_rt *V,
                              const kl_rt *pk, const kl_rt *pv) {
    const kl_node *n = c->node;
    char s1[128], s2[128], s3[128];
    if (Q->rank != K->rank || Q->rank != V->rank || (Q->rank != 3 && Q->rank != 4))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "Q %s, K %s and V %s must all be 3-D or all 4-D",
                            kl_rt_describe(Q, s1, sizeof s1), kl_rt_describe(K, s2, sizeof s2),
                            kl_rt_describe(V, s3, sizeof s3));
    a->three_d = Q->rank == 3;
    a->B = Q->dims[0];
    if (K->dims[0] != a->B || V->dims[0] != a->B)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "Q, K and V batch sizes differ");
    if (a->three_d) {
        a->Hq = kl_node_attr_int(n, "q_num_heads", 0);
        a->Hkv = kl_node_attr_int(n, "kv_num_heads", 0);
        if (a->Hq <= 0 || a->Hkv <= 0)
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "3-D inputs need attributes q_num_heads and kv_num_heads");
        if (Q->dims[2] % a->Hq || K->dims[2] % a->Hkv || V->dims[2] % a->Hkv)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "hidden sizes of Q %s, K %s, V %s are not multiples of the heads",
                                kl_rt_describe(Q, s1, sizeof s1), kl_rt_describe(K, s2, sizeof s2),
                                kl_rt_describe(V, s3, sizeof s3));
        a->L = Q->dims[1];
        a->S = K->dims[1];
        a->Dk = Q->dims[2] / a->Hq;
        if (K->dims[2] / a->Hkv != a->Dk)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "Q and K head sizes differ");
        a->Dv = V->dims[2] / a->Hkv;
        if (V->dims[1] != a->S) return kl_kctx_fail(c, KILN_ERR_SHAPE, "K and V sequence lengths differ");
    } else {
        a->Hq = Q->dims[1];
        a->Hkv = K->dims[1];
        a->L = Q->dims[2];
        a->S = K->dims[2];
        a->Dk = Q->dims[3];
        a->Dv = V->dims[3];
        if (K->dims[3] != a->Dk || V->dims[1] != a->Hkv || V->dims[2] != a->S)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "Q %s, K %s and V %s do not fit together",
                                kl_rt_describe(Q, s1, sizeof s1), kl_rt_describe(K, s2, sizeof s2),
                                kl_rt_describe(V, s3, sizeof s3));
    }
    if (a->Hkv <= 0 || a->Hq % a->Hkv)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "q heads (%lld) must be a multiple of kv heads (%lld)",
                            (long long)a->Hq, (long long)a->Hkv);
    a->P = 0;
    if ((pk == NULL) != (pv == NULL))
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "past_key and past_value must be given together");
    if (pk) {
        if (pk->rank != 4 || pv->rank != 4 || pk->dims[0] != a->B || pk->dims[1] != a->Hkv || pk->dims[3] != a->Dk ||
            pv->dims[0] != a->B || pv->dims[1] != a->Hkv || pv->dims[3] != a->Dv || pv->dims[2] != pk->dims[2])
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "past_key %s / past_value %s do not fit [%lld,%lld,*,%lld/%lld]",
                                kl_rt_describe(pk, s1, sizeof s1), kl_rt_describe(pv, s2, sizeof s2),
                                (long long)a->B, (long long)a->Hkv, (long long)a->Dk, (long long)a->Dv);
        a->P = pk->dims[2];
    }
    a->T = a->P + a->S;
    if (a->mask) {
        const kl_rt *m = a->mask;
        if (m->rank < 2 || m->rank > 4)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "attn_mask %s must have rank 2 to 4", kl_rt_describe(m, s1, sizeof s1));
        int64_t full[4] = {a->B, a->Hq, a->L, a->T}, st = 1;
        for (int d = 3; d >= 0; d--) {
            int md = d - (4 - m->rank);
            int64_t dim = md >= 0 ? m->dims[md] : 1;
            bool ok = d == 3 ? dim <= a->T : dim == 1 || dim == full[d];
            if (!ok)
                return kl_kctx_fail(c, KILN_ERR_SHAPE, "attn_mask %s does not broadcast to [%lld,%lld,%lld,%lld]",
                                    kl_rt_describe(m, s1, sizeof s1), (long long)a->B, (long long)a->Hq,
                                    (long long)a->L, (long long)a->T);
            a->mdims[d] = dim;
            a->mstr[d] = dim == 1 && d != 3 ? 0 : st;
            st *= dim;
        }
    }
    return KILN_OK;
}

/* Q, K (with past) and V (with past) as double arrays, Q and K scaled by
 * sqrt(scale) in T. */
static kiln_status att_load(kl_kctx *c, att_ctx *a, const kl_rt *Q, const kl_rt *K, const kl_rt *V, const kl_rt *pk,
                            const kl_rt *pv, double sq) {
    int64_t nq, nk, nv;
    if (kl_mul_i64(a->B * a->Hq * a->L, a->Dk, &nq) || kl_mul_i64(a->B * a->Hkv * a->T, a->Dk, &nk) ||
        kl_mul_i64(a->B * a->Hkv * a->T, a->Dv, &nv))
        return kl_kctx_fail(c, KILN_ERR_NO_MEMORY, "attention inputs are too large");
    if (!(a->q = kl_rnn_alloc(nq)) || !(a->k = kl_rnn_alloc(nk)) || !(a->v = kl_rnn_alloc(nv)))
        return KILN_ERR_NO_MEMORY;
    kiln_dtype dt = a->dt;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->Hq; h++)
            for (int64_t i = 0; i < a->L; i++)
                for (int64_t d = 0; d < a->Dk; d++)
                    a->q[((b * a->Hq + h) * a->L + i) * a->Dk + d] = kl_rnn_round(
                        dt, kl_rt_get_f64(Q, att_index(a->three_d, a->Hq, a->L, a->Dk, b, h, i, d)) * sq);
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->Hkv; h++)
            for (int64_t t = 0; t < a->T; t++) {
                double *kr = a->k + ((b * a->Hkv + h) * a->T + t) * a->Dk;
                double *vr = a->v + ((b * a->Hkv + h) * a->T + t) * a->Dv;
                for (int64_t d = 0; d < a->Dk; d++) {
                    double kv = t < a->P ? kl_rt_get_f64(pk, ((b * a->Hkv + h) * a->P + t) * a->Dk + d)
                                         : kl_rt_get_f64(K, att_index(a->three_d, a->Hkv, a->S, a->Dk, b, h, t - a->P, d));
                    kr[d] = kl_rnn_round(dt, kv * sq);
                }
                for (int64_t d = 0; d < a->Dv; d++)
                    vr[d] = t < a->P ? kl_rt_get_f64(pv, ((b * a->Hkv + h) * a->P + t) * a->Dv + d)
                                     : kl_rt_get_f64(V, att_index(a->three_d, a->Hkv, a->S, a->Dv, b, h, t - a->P, d));
            }
    return KILN_OK;
}

/* present_key / present_value: past concatenated with the new keys / values. */
static kiln_status att_present(kl_kctx *c, size_t i, const att_ctx *a, const kl_rt *past, const kl_rt *cur,
                               int64_t D) {
    if (!kl_rnn_want(c, i)) return KILN_OK;
    int64_t dims[4] = {a->B, a->Hkv, a->T, D};
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, i, a->dt, 4, dims, &y));
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->Hkv; h++)
            for (int64_t t = 0; t < a->T; t++)
                for (int64_t d = 0; d < D; d++) {
                    double v = t < a->P ? kl_rt_get_f64(past, ((b * a->Hkv + h) * a->P + t) * D + d)
                                        : kl_rt_get_f64(cur, att_index(a->three_d, a->Hkv, a->S, D, b, h, t - a->P, d));
                    kl_rt_set_f64(y, ((b * a->Hkv + h) * a->T + t) * D + d, v);
                }
    return KILN_OK;
}

kiln_status kl_rnn_attention(kl_kctx *c) {
    const kl_node *n = c->node;
    const kl_rt *Q, *K, *V;
    KL_TRY(kl_rnn_req(c, 0, "Q", &Q));
    KL_TRY(kl_rnn_req(c, 1, "K", &K));
    KL_TRY(kl_rnn_req(c, 2, "V", &V));
    const kl_rt *pk = kl_rnn_opt(c, 4), *pv = kl_rnn_opt(c, 5);
    const kl_rt *np = n->opset >= 24 ? kl_rnn_opt(c, 6) : NULL;
    att_ctx a;
    memset(&a, 0, sizeof a);
    a.dt = Q->dtype;
    if (!kl_rnn_is_float(a.dt) || K->dtype != a.dt || V->dtype != a.dt)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "Q, K and V must share one float type (got %s, %s, %s)",
                            kiln_dtype_name(Q->dtype), kiln_dtype_name(K->dtype), kiln_dtype_name(V->dtype));
    a.mask = kl_rnn_opt(c, 3);
    if (a.mask && a.mask->dtype != KILN_DTYPE_BOOL && !kl_rnn_is_float(a.mask->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "attn_mask must be bool or float, got %s",
                            kiln_dtype_name(a.mask->dtype));
    int64_t sp = kl_node_attr_int(n, "softmax_precision", 0);
    a.sp = sp > 0 && sp < KILN_DTYPE_COUNT && kl_rnn_is_float((kiln_dtype)sp) ? (kiln_dtype)sp : a.dt;
    int64_t mode = kl_node_attr_int(n, "qk_matmul_output_mode", 0);
    if (mode < 0 || mode > 3)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "qk_matmul_output_mode must be 0..3, got %lld", (long long)mode);
    const kl_attr *cap_attr = kl_node_attr(n, "softcap");
    double cap = cap_attr ? kl_rnn_round(a.dt, (float)cap_attr->f) : 0.0;
    a.causal = kl_node_attr_int(n, "is_causal", 0) != 0;
    kiln_status s = att_shapes(c, &a, Q, K, V, pk, pv);
    if (s != KILN_OK) return s;
    const kl_attr *sc_attr = kl_node_attr(n, "scale");
    float scale = sc_attr ? sc_attr->f : 1.0f / sqrtf((float)a.Dk);
    double sq = kl_rnn_round(a.dt, sqrtf(scale));
    a.offset = kl_calloc((size_t)KL_MAX(a.B, 1), sizeof *a.offset);
    if (!a.offset) return kl_errorf(KILN_ERR_NO_MEMORY, "out of memory");
    if (np) {
        char s1[128];
        if (np->count != a.B || !kl_dtype_is_integer(np->dtype)) {
            att_free(&a);
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "nonpad_kv_seqlen %s must hold %lld integers",
                                kl_rt_describe(np, s1, sizeof s1), (long long)a.B);
        }
        a.nonpad = kl_calloc((size_t)KL_MAX(a.B, 1), sizeof *a.nonpad);
        if (!a.nonpad) {
            att_free(&a);
            return kl_errorf(KILN_ERR_NO_MEMORY, "out of memory");
        }
        for (int64_t b = 0; b < a.B; b++) a.nonpad[b] = kl_rt_get_i64(np, b);
    }
    for (int64_t b = 0; b < a.B; b++) a.offset[b] = pk ? a.P : a.nonpad ? a.nonpad[b] - a.L : 0;
    s = att_load(c, &a, Q, K, V, pk, pv, sq);
    kl_rt *y = NULL, *qk = NULL;
    if (s == KILN_OK) {
        int64_t dims[4] = {a.B, a.Hq, a.L, a.Dv};
        if (a.three_d) dims[1] = a.L, dims[2] = a.Hq * a.Dv;
        s = kl_kctx_output(c, 0, a.dt, a.three_d ? 3 : 4, dims, &y);
    }
    if (s == KILN_OK) s = att_present(c, 1, &a, pk, K, a.Dk);
    if (s == KILN_OK) s = att_present(c, 2, &a, pv, V, a.Dv);
    if (s == KILN_OK && kl_rnn_want(c, 3)) {
        int64_t dims[4] = {a.B, a.Hq, a.L, a.T};
        s = kl_kctx_output(c, 3, a.dt, 4, dims, &qk);
    }
    double *row = NULL, *p = NULL, *yo = NULL;
    if (s == KILN_OK && (!(row = kl_rnn_alloc(a.T)) || !(p = kl_rnn_alloc(a.T)) || !(yo = kl_rnn_alloc(a.Dv))))
        s = KILN_ERR_NO_MEMORY;
    int64_t group = a.Hq / a.Hkv;
    kiln_dtype dt = a.dt;
    bool has_bias = att_has_bias(&a);
    for (int64_t b = 0; s == KILN_OK && b < a.B; b++)
        for (int64_t h = 0; h < a.Hq; h++)
            for (int64_t i = 0; i < a.L; i++) {
                const double *qr = a.q + ((b * a.Hq + h) * a.L + i) * a.Dk;
                const double *kb = a.k + (b * a.Hkv + h / group) * a.T * a.Dk;
                const double *vb = a.v + (b * a.Hkv + h / group) * a.T * a.Dv;
                int64_t qoff = ((b * a.Hq + h) * a.L + i) * a.T;
                double mx = -INFINITY, bmax = -INFINITY;
                bool bnan = false, snan = false;
                for (int64_t j = 0; j < a.T; j++) {
                    double sc = 0.0;
                    const double *kr = kb + j * a.Dk;
                    for (int64_t d = 0; d < a.Dk; d++) sc += qr[d] * kr[d];
                    sc = kl_rnn_round(dt, sc);
                    if (qk && mode == 0) kl_rt_set_f64(qk, qoff + j, sc);
                    if (cap > 0)
                        sc = kl_rnn_round(dt, kl_rnn_round(dt, tanh(kl_rnn_round(dt, sc / cap))) * cap);
                    if (qk && mode == 1) kl_rt_set_f64(qk, qoff + j, sc);
                    double bias = has_bias ? att_bias(&a, b, h, i, j) : 0.0;
                    if (isnan(bias)) bnan = true;
                    if (bias > bmax) bmax = bias;
                    sc = kl_rnn_round(dt, sc + bias);
                    if (qk && mode == 2) kl_rt_set_f64(qk, qoff + j, sc);
                    sc = kl_rnn_round(a.sp, sc);
                    row[j] = sc;
                    if (isnan(sc)) snan = true;
                    else if (sc > mx) mx = sc;
                }
                if (snan) mx = NAN; /* NaN poisons the row, as numpy max does */
                bool masked = has_bias && !bnan && bmax == -INFINITY;
                double sum = 0.0;
                for (int64_t j = 0; j < a.T; j++) {
                    p[j] = exp(row[j] - mx);
                    sum += p[j];
                }
                for (int64_t j = 0; j < a.T; j++)
                    p[j] = masked ? 0.0 : kl_rnn_round(dt, kl_rnn_round(a.sp, p[j] / sum));
                if (qk && mode == 3)
                    for (int64_t j = 0; j < a.T; j++) kl_rt_set_f64(qk, qoff + j, p[j]);
                for (int64_t e = 0; e < a.Dv; e++) yo[e] = 0.0;
                for (int64_t j = 0; j < a.T; j++) {
                    if (p[j] == 0.0) continue;
                    const double *vr = vb + j * a.Dv;
                    for (int64_t e = 0; e < a.Dv; e++) yo[e] += p[j] * vr[e];
                }
                for (int64_t e = 0; e < a.Dv; e++) {
                    int64_t dst = a.three_d ? (b * a.L + i) * a.Hq * a.Dv + h * a.Dv + e
                                            : ((b * a.Hq + h) * a.L + i) * a.Dv + e;
                    kl_rt_set_f64(y, dst, yo[e]);
                }
            }
    kl_free(row);
    kl_free(p);
    kl_free(yo);
    att_free(&a);
    return s;
}

/* ---- RotaryEmbedding --------------------------------------------------------------------- */

kiln_status kl_rnn_rotary_embedding(kl_kctx *c) {
    const kl_node *n = c->node;
    const kl_rt *x, *cc, *sc;
    KL_TRY(kl_rnn_req(c, 0, "input", &x));
    KL_TRY(kl_rnn_req(c, 1, "cos_cache", &cc));
    KL_TRY(kl_rnn_req(c, 2, "sin_cache", &sc));
    const kl_rt *pos = kl_rnn_opt(c, 3);
    char s1[128], s2[128];
    if (!kl_rnn_is_float(x->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "input must be a float tensor, got %s", kiln_dtype_name(x->dtype));
    if (x->rank != 3 && x->rank != 4)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "input %s must be 3-D or 4-D", kl_rt_describe(x, s1, sizeof s1));
    bool three = x->rank == 3;
    int64_t B = x->dims[0], S, H, D;
    if (three) {
        H = kl_node_attr_int(n, "num_heads", 0);
        if (H <= 0 || x->dims[2] % H)
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL,
                                "3-D input %s needs attribute num_heads dividing the hidden size",
                                kl_rt_describe(x, s1, sizeof s1));
        S = x->dims[1];
        D = x->dims[2] / H;
    } else {
        H = x->dims[1];
        S = x->dims[2];
        D = x->dims[3];
    }
    int64_t rd = kl_node_attr_int(n, "rotary_embedding_dim", 0);
    if (rd == 0) rd = D;
    if (rd < 0 || rd > D || rd % 2)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "rotary_embedding_dim %lld must be even and <= head size %lld",
                            (long long)rd, (long long)D);
    int64_t half = rd / 2;
    bool inter = kl_node_attr_int(n, "interleaved", 0) != 0;
    if (!kl_ref_same_shape(cc, sc))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "cos_cache %s and sin_cache %s differ", kl_rt_describe(cc, s1, sizeof s1),
                            kl_rt_describe(sc, s2, sizeof s2));
    if (pos) {
        if (cc->rank != 2 || cc->dims[1] != half)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "cos_cache %s must be [max_position, %lld]",
                                kl_rt_describe(cc, s1, sizeof s1), (long long)half);
        if (!kl_dtype_is_integer(pos->dtype) || pos->count != B * S)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "position_ids %s must be [%lld, %lld] integers",
                                kl_rt_describe(pos, s1, sizeof s1), (long long)B, (long long)S);
    } else if (cc->rank != 3 || cc->dims[0] != B || cc->dims[1] != S || cc->dims[2] != half) {
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "without position_ids, cos_cache %s must be [%lld, %lld, %lld]",
                            kl_rt_describe(cc, s1, sizeof s1), (long long)B, (long long)S, (long long)half);
    }
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, x->dims, &y));
    kiln_dtype dt = x->dtype;
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++) {
            int64_t row = b * S + s;
            if (pos) {
                int64_t p = kl_rt_get_i64(pos, b * S + s);
                if (p < 0 || p >= cc->dims[0])
                    return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "position_ids value %lld is outside [0, %lld)",
                                        (long long)p, (long long)cc->dims[0]);
                row = p;
            }
            for (int64_t h = 0; h < H; h++) {
                int64_t base = three ? (b * S + s) * H * D + h * D : ((b * H + h) * S + s) * D;
                for (int64_t k = 0; k < half; k++) {
                    double cv = kl_rt_get_f64(cc, row * half + k), sv = kl_rt_get_f64(sc, row * half + k);
                    int64_t i1 = inter ? base + 2 * k : base + k, i2 = inter ? base + 2 * k + 1 : base + half + k;
                    double x1 = kl_rt_get_f64(x, i1), x2 = kl_rt_get_f64(x, i2);
                    double re = kl_rnn_round(dt, kl_rnn_round(dt, cv * x1) - kl_rnn_round(dt, sv * x2));
                    double im = kl_rnn_round(dt, kl_rnn_round(dt, sv * x1) + kl_rnn_round(dt, cv * x2));
                    kl_rt_set_f64(y, i1, re);
                    kl_rt_set_f64(y, i2, im);
                }
                for (int64_t d = rd; d < D; d++) kl_rt_set_f64(y, base + d, kl_rt_get_f64(x, base + d));
            }
        }
    return KILN_OK;
}
