/*
 * CPU reference kernels: LinearAttention and CausalConvWithState (opset 27)
 * and ai.onnx.preview FlexAttention.
 *
 * LinearAttention keeps a [B, Hkv, dk, dv] state per sequence step:
 * optional decay (state *= exp(decay)), optional delta rule
 * (v <- beta * (v - S^T (erase * k))), write S += k v^T, read
 * o = scale * q^T S with query heads sharing kv heads (GQA).  Like the
 * function body it computes in float32 precision or better (here double)
 * and casts at the end.
 */
#include <math.h>
#include <string.h>

#include "cpu/ref/rnn.h"

/* ---- LinearAttention ------------------------------------------------------------------ */

kiln_status kl_rnn_linear_attention(kl_kctx *c) {
    const kl_node *n = c->node;
    const kl_rt *q, *k, *v;
    KL_TRY(kl_rnn_req(c, 0, "query", &q));
    KL_TRY(kl_rnn_req(c, 1, "key", &k));
    KL_TRY(kl_rnn_req(c, 2, "value", &v));
    const kl_rt *past = kl_rnn_opt(c, 3), *decay = kl_rnn_opt(c, 4), *beta = kl_rnn_opt(c, 5);
    const kl_rt *erase = kl_rnn_opt(c, 6);
    char s1[128], s2[128];
    const char *rule = kl_node_attr_string(n, "update_rule", "gated_delta");
    bool gating, delta;
    if (strcmp(rule, "linear") == 0)
        gating = false, delta = false;
    else if (strcmp(rule, "gated") == 0)
        gating = true, delta = false;
    else if (strcmp(rule, "delta") == 0)
        gating = false, delta = true;
    else if (strcmp(rule, "gated_delta") == 0)
        gating = true, delta = true;
    else
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "unknown update_rule '%s'", rule);
    int64_t Hq = kl_node_attr_int(n, "q_num_heads", 0), Hkv = kl_node_attr_int(n, "kv_num_heads", 0);
    if (Hq <= 0 || Hkv <= 0 || Hq % Hkv)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL,
                            "q_num_heads (%lld) must be a positive multiple of kv_num_heads (%lld)", (long long)Hq,
                            (long long)Hkv);
    if (gating != (decay != NULL))
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "update_rule '%s' %s the decay input", rule,
                            gating ? "requires" : "forbids");
    if (delta != (beta != NULL))
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "update_rule '%s' %s the beta input", rule,
                            delta ? "requires" : "forbids");
    if (erase && !delta)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "update_rule '%s' forbids the erase_gate input", rule);
    if (!kl_rnn_is_float(q->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "query must be a float tensor, got %s", kiln_dtype_name(q->dtype));
    if (q->rank != 3 || k->rank != 3 || v->rank != 3)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "query, key and value must be 3-D (B, T, H*D)");
    int64_t B = q->dims[0], T = q->dims[1];
    if (q->dims[2] % Hq || k->dims[2] % Hkv || v->dims[2] % Hkv)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "hidden sizes are not multiples of the head counts");
    int64_t dk = q->dims[2] / Hq, dv = v->dims[2] / Hkv, group = Hq / Hkv;
    if (k->dims[0] != B || v->dims[0] != B || k->dims[1] != T || v->dims[1] != T || k->dims[2] != Hkv * dk)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "key %s and value %s do not fit query %s",
                            kl_rt_describe(k, s1, sizeof s1), kl_rt_describe(v, s2, sizeof s2),
                            kl_rt_describe(q, s1, sizeof s1));
    int64_t dlast = 0, blast = 0;
    if (decay) {
        dlast = decay->rank == 3 ? decay->dims[2] : -1;
        if (decay->rank != 3 || decay->dims[0] != B || decay->dims[1] != T || (dlast != Hkv && dlast != Hkv * dk))
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "decay %s must be [%lld, %lld, %lld or %lld]",
                                kl_rt_describe(decay, s1, sizeof s1), (long long)B, (long long)T, (long long)Hkv,
                                (long long)(Hkv * dk));
    }
    if (beta) {
        blast = beta->rank == 3 ? beta->dims[2] : -1;
        if (beta->rank != 3 || beta->dims[0] != B || beta->dims[1] != T || (blast != Hkv && blast != 1))
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "beta %s must be [%lld, %lld, %lld or 1]",
                                kl_rt_describe(beta, s1, sizeof s1), (long long)B, (long long)T, (long long)Hkv);
    }
    if (erase && (erase->rank != 3 || erase->dims[0] != B || erase->dims[1] != T || erase->dims[2] != Hkv * dk))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "erase_gate %s must be [%lld, %lld, %lld]",
                            kl_rt_describe(erase, s1, sizeof s1), (long long)B, (long long)T, (long long)(Hkv * dk));
    if (past && (past->rank != 4 || past->dims[0] != B || past->dims[1] != Hkv || past->dims[2] != dk ||
                 past->dims[3] != dv))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "past_state %s must be [%lld, %lld, %lld, %lld]",
                            kl_rt_describe(past, s1, sizeof s1), (long long)B, (long long)Hkv, (long long)dk,
                            (long long)dv);
    const kl_attr *sa = kl_node_attr(n, "scale");
    double scale = sa && sa->f != 0.0f ? (double)sa->f : (double)(1.0f / sqrtf((float)dk));
    kl_rt *out, *ps = NULL;
    int64_t odims[3] = {B, T, Hq * dv}, sdims[4] = {B, Hkv, dk, dv};
    KL_TRY(kl_kctx_output(c, 0, q->dtype, 3, odims, &out));
    if (kl_rnn_want(c, 1)) KL_TRY(kl_kctx_output(c, 1, past ? past->dtype : q->dtype, 4, sdims, &ps));
    double *S = kl_rnn_alloc(B * Hkv * dk * dv), *vt = kl_rnn_alloc(dv), *ke = kl_rnn_alloc(dk);
    if (!S || !vt || !ke) {
        kl_free(S);
        kl_free(vt);
        kl_free(ke);
        return KILN_ERR_NO_MEMORY;
    }
    if (past)
        for (int64_t i = 0; i < past->count; i++) S[i] = kl_rt_get_f64(past, i);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            for (int64_t h = 0; h < Hkv; h++) {
                double *st = S + (b * Hkv + h) * dk * dv;
                int64_t kbase = (b * T + t) * Hkv * dk + h * dk, vbase = (b * T + t) * Hkv * dv + h * dv;
                if (gating)
                    for (int64_t i = 0; i < dk; i++) {
                        double g = exp(kl_rt_get_f64(decay, dlast == Hkv ? (b * T + t) * Hkv + h : kbase + i));
                        for (int64_t m = 0; m < dv; m++) st[i * dv + m] *= g;
                    }
                for (int64_t m = 0; m < dv; m++) vt[m] = kl_rt_get_f64(v, vbase + m);
                if (delta) {
                    double bt = kl_rt_get_f64(beta, (b * T + t) * blast + (blast == 1 ? 0 : h));
                    for (int64_t i = 0; i < dk; i++)
                        ke[i] = kl_rt_get_f64(k, kbase + i) * (erase ? kl_rt_get_f64(erase, kbase + i) : 1.0);
                    for (int64_t m = 0; m < dv; m++) {
                        double r = 0.0;
                        for (int64_t i = 0; i < dk; i++) r += st[i * dv + m] * ke[i];
                        vt[m] = bt * (vt[m] - r);
                    }
                }
                for (int64_t i = 0; i < dk; i++) {
                    double kv = kl_rt_get_f64(k, kbase + i);
                    for (int64_t m = 0; m < dv; m++) st[i * dv + m] += kv * vt[m];
                }
            }
            for (int64_t h = 0; h < Hq; h++) {
                const double *st = S + (b * Hkv + h / group) * dk * dv;
                int64_t qbase = (b * T + t) * Hq * dk + h * dk;
                for (int64_t m = 0; m < dv; m++) {
                    double o = 0.0;
                    for (int64_t i = 0; i < dk; i++) o += kl_rt_get_f64(q, qbase + i) * st[i * dv + m];
                    kl_rt_set_f64(out, (b * T + t) * Hq * dv + h * dv + m, (double)(float)(scale * o));
                }
            }
        }
    if (ps)
        for (int64_t i = 0; i < ps->count; i++) kl_rt_set_f64(ps, i, (double)(float)S[i]);
    kl_free(S);
    kl_free(vt);
    kl_free(ke);
    return KILN_OK;
}

/* ---- CausalConvWithState ------------------------------------------------------------------ */

kiln_status kl_rnn_causal_conv(kl_kctx *c) {
    const kl_node *n = c->node;
    const kl_rt *x, *w;
    KL_TRY(kl_rnn_req(c, 0, "input", &x));
    KL_TRY(kl_rnn_req(c, 1, "weight", &w));
    const kl_rt *bias = kl_rnn_opt(c, 2), *past = kl_rnn_opt(c, 3);
    char s1[128], s2[128];
    const char *act = kl_node_attr_string(n, "activation", "none");
    bool silu = strcmp(act, "silu") == 0 || strcmp(act, "swish") == 0;
    if (!silu && strcmp(act, "none") != 0)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "unknown activation '%s' (none, silu, swish)", act);
    if (!kl_rnn_is_float(x->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "input must be a float tensor, got %s", kiln_dtype_name(x->dtype));
    if (x->rank != 3 || w->rank != 3 || w->dims[0] != x->dims[1] || w->dims[1] != 1 || w->dims[2] < 1)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "input %s must be [B, C, L] and weight %s [C, 1, k]",
                            kl_rt_describe(x, s1, sizeof s1), kl_rt_describe(w, s2, sizeof s2));
    int64_t B = x->dims[0], C = x->dims[1], L = x->dims[2], K = w->dims[2], K1 = K - 1, PL = L + K1;
    if (bias && bias->count != C)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "bias %s must hold %lld values", kl_rt_describe(bias, s1, sizeof s1),
                            (long long)C);
    if (past && (past->rank != 3 || past->dims[0] != B || past->dims[1] != C || past->dims[2] != K1))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "past_state %s must be [%lld, %lld, %lld]",
                            kl_rt_describe(past, s1, sizeof s1), (long long)B, (long long)C, (long long)K1);
    kl_rt *y, *ps = NULL;
    int64_t sdims[3] = {B, C, K1};
    KL_TRY(kl_kctx_output(c, 0, x->dtype, 3, x->dims, &y));
    if (kl_rnn_want(c, 1)) KL_TRY(kl_kctx_output(c, 1, x->dtype, 3, sdims, &ps));
    double *pad = kl_rnn_alloc(PL);
    if (!pad) return KILN_ERR_NO_MEMORY;
    kiln_dtype dt = x->dtype;
    for (int64_t b = 0; b < B; b++)
        for (int64_t ch = 0; ch < C; ch++) {
            for (int64_t t = 0; t < K1; t++) pad[t] = past ? kl_rt_get_f64(past, (b * C + ch) * K1 + t) : 0.0;
            for (int64_t t = 0; t < L; t++) pad[K1 + t] = kl_rt_get_f64(x, (b * C + ch) * L + t);
            double bv = bias ? kl_rt_get_f64(bias, ch) : 0.0;
            for (int64_t t = 0; t < L; t++) {
                double s = bv;
                for (int64_t j = 0; j < K; j++) s += kl_rt_get_f64(w, ch * K + j) * pad[t + j];
                s = kl_rnn_round(dt, s);
                if (silu) {
                    float f = (float)s;
                    s = (double)(f * (1.0f / (1.0f + expf(-f))));
                }
                kl_rt_set_f64(y, (b * C + ch) * L + t, s);
            }
            if (ps)
                for (int64_t t = 0; t < K1; t++) kl_rt_set_f64(ps, (b * C + ch) * K1 + t, pad[PL - K1 + t]);
        }
    kl_free(pad);
    return KILN_OK;
}

/* ---- FlexAttention ------------------------------------------------------------------------ */

/* Run a one-input modifier graph on the whole [B, H, L, S] tensor vals (in
 * place, values of type dt). */
static kiln_status flex_tensor_mod(kl_kctx *c, const kl_graph *g, const char *what, kiln_dtype dt,
                                   const int64_t *dims, double *vals) {
    kl_rt *in, *out = NULL;
    KL_TRY(kl_rt_tensor(dt, 4, dims, &in));
    for (int64_t i = 0; i < in->count; i++) kl_rt_set_f64(in, i, vals[i]);
    int64_t count = in->count;
    kiln_status s = kl_exec_subgraph(c, g, &in, 1, &out, 1);
    kl_rt_unref(in);
    if (s != KILN_OK) return s;
    if (!out || out->kind != KL_RT_TENSOR || out->count != count) {
        char d[128];
        kl_rt_describe(out, d, sizeof d);
        kl_rt_unref(out);
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "%s must return a tensor of the input's shape, got %s", what, d);
    }
    for (int64_t i = 0; i < out->count; i++) vals[i] = kl_rt_get_f64(out, i);
    kl_rt_unref(out);
    return KILN_OK;
}

/* New int64 / dt scalar. */
static kiln_status flex_scalar(kiln_dtype dt, double v, kl_rt **out) {
    KL_TRY(kl_rt_tensor(dt, 0, NULL, out));
    kl_rt_set_f64(*out, 0, v);
    return KILN_OK;
}

/* Per-element modifier: inputs (value,) b, h, q_idx, k_idx scalars; with_value
 * false is mask_mod (bool result: false -> mask_value). */
static kiln_status flex_scalar_mod(kl_kctx *c, const kl_graph *g, const char *what, kiln_dtype dt,
                                   const int64_t *dims, double *vals, bool with_value, double mask_value) {
    int64_t idx[4] = {0};
    for (int64_t e = 0; e < dims[0] * dims[1] * dims[2] * dims[3]; e++) {
        kl_rt *ins[5] = {0}, *out = NULL;
        size_t ni = 0;
        kiln_status s = KILN_OK;
        if (with_value) s = flex_scalar(dt, vals[e], &ins[ni++]);
        for (int d = 0; d < 4 && s == KILN_OK; d++) s = flex_scalar(KILN_DTYPE_INT64, (double)idx[d], &ins[ni++]);
        if (s == KILN_OK) s = kl_exec_subgraph(c, g, ins, ni, &out, 1);
        for (size_t i = 0; i < ni; i++) kl_rt_unref(ins[i]);
        if (s != KILN_OK) return s;
        if (!out || out->kind != KL_RT_TENSOR || out->count != 1) {
            kl_rt_unref(out);
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "%s must return a scalar", what);
        }
        if (with_value)
            vals[e] = kl_rt_get_f64(out, 0);
        else if (kl_rt_get_f64(out, 0) == 0.0)
            vals[e] = mask_value;
        kl_rt_unref(out);
        for (int d = 3; d >= 0; d--) {
            if (++idx[d] < dims[d]) break;
            idx[d] = 0;
        }
    }
    return KILN_OK;
}

/* Apply modifier attribute `name` if present. */
static kiln_status flex_apply(kl_kctx *c, const char *name, kiln_dtype dt, const int64_t *dims, double *vals,
                              double mask_value) {
    const kl_attr *a = kl_node_attr(c->node, name);
    if (!a || !a->g) return KILN_OK;
    const kl_graph *g = a->g;
    bool mask = strcmp(name, "mask_mod") == 0;
    if (g->n_inputs == 1) return flex_tensor_mod(c, g, name, dt, dims, vals);
    if (g->n_inputs == (mask ? 4u : 5u)) return flex_scalar_mod(c, g, name, dt, dims, vals, !mask, mask_value);
    return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "%s graph has %zu inputs; expected 1 or %d", name, g->n_inputs,
                        mask ? 4 : 5);
}

kiln_status kl_rnn_flex_attention(kl_kctx *c) {
    const kl_node *n = c->node;
    const kl_rt *Q, *K, *V;
    KL_TRY(kl_rnn_req(c, 0, "Q", &Q));
    KL_TRY(kl_rnn_req(c, 1, "K", &K));
    KL_TRY(kl_rnn_req(c, 2, "V", &V));
    char s1[128], s2[128], s3[128];
    kiln_dtype dt = Q->dtype;
    if (!kl_rnn_is_float(dt) || K->dtype != dt || !kl_rnn_is_float(V->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "Q, K and V must be float tensors of one type");
    if (Q->rank != 4 || K->rank != 4 || V->rank != 4 || K->dims[0] != Q->dims[0] || V->dims[0] != Q->dims[0] ||
        K->dims[3] != Q->dims[3] || V->dims[1] != K->dims[1] || V->dims[2] != K->dims[2] || K->dims[1] <= 0 ||
        Q->dims[1] % K->dims[1])
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "Q %s, K %s, V %s must be [B,Hq,L,E], [B,Hkv,S,E], [B,Hkv,S,Ev] "
                            "with Hq a multiple of Hkv", kl_rt_describe(Q, s1, sizeof s1),
                            kl_rt_describe(K, s2, sizeof s2), kl_rt_describe(V, s3, sizeof s3));
    int64_t B = Q->dims[0], Hq = Q->dims[1], L = Q->dims[2], E = Q->dims[3];
    int64_t Hkv = K->dims[1], S = K->dims[2], Ev = V->dims[3], group = Hq / Hkv;
    int64_t spa = kl_node_attr_int(n, "softmax_precision", 0);
    kiln_dtype sp = spa > 0 && spa < KILN_DTYPE_COUNT && kl_rnn_is_float((kiln_dtype)spa) ? (kiln_dtype)spa
                    : dt == KILN_DTYPE_FLOAT16 || dt == KILN_DTYPE_BFLOAT16                  ? KILN_DTYPE_FLOAT
                                                                                           : dt;
    const kl_attr *sa = kl_node_attr(n, "scale");
    float scale = sa ? sa->f : 1.0f / sqrtf((float)E);
    double sq = kl_rnn_round(dt, sqrtf(scale));
    double mask_value = kl_node_attr_float(n, "mask_value", -INFINITY);
    int64_t sdims[4] = {B, Hq, L, S}, ns;
    if (kl_mul_i64(B * Hq, L * S, &ns)) return kl_kctx_fail(c, KILN_ERR_NO_MEMORY, "scores are too large");
    double *sc = kl_rnn_alloc(ns);
    if (!sc) return KILN_ERR_NO_MEMORY;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hq; h++)
            for (int64_t i = 0; i < L; i++)
                for (int64_t j = 0; j < S; j++) {
                    double s = 0.0;
                    int64_t qo = ((b * Hq + h) * L + i) * E, ko = ((b * Hkv + h / group) * S + j) * E;
                    for (int64_t e = 0; e < E; e++)
                        s += kl_rnn_round(dt, kl_rt_get_f64(Q, qo + e) * sq) * kl_rnn_round(dt, kl_rt_get_f64(K, ko + e) * sq);
                    sc[((b * Hq + h) * L + i) * S + j] = kl_rnn_round(sp, kl_rnn_round(dt, s));
                }
    kiln_status st = flex_apply(c, "score_mod", sp, sdims, sc, mask_value);
    if (st == KILN_OK) st = flex_apply(c, "mask_mod", sp, sdims, sc, mask_value);
    for (int64_t r = 0; st == KILN_OK && r < B * Hq * L; r++) {
        double *row = sc + r * S, mx = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < S; j++) mx = isnan(row[j]) || isnan(mx) ? NAN : fmax(mx, row[j]);
        for (int64_t j = 0; j < S; j++) sum += row[j] = exp(row[j] - mx);
        for (int64_t j = 0; j < S; j++) row[j] = kl_rnn_round(sp, row[j] / sum);
    }
    if (st == KILN_OK) st = flex_apply(c, "prob_mod", sp, sdims, sc, mask_value);
    kl_rt *y = NULL;
    int64_t odims[4] = {B, Hq, L, Ev};
    if (st == KILN_OK) st = kl_kctx_output(c, 0, dt, 4, odims, &y);
    for (int64_t b = 0; st == KILN_OK && b < B; b++)
        for (int64_t h = 0; h < Hq; h++)
            for (int64_t i = 0; i < L; i++)
                for (int64_t e = 0; e < Ev; e++) {
                    double s = 0.0;
                    const double *p = sc + ((b * Hq + h) * L + i) * S;
                    for (int64_t j = 0; j < S; j++)
                        s += p[j] * kl_rnn_round(sp, kl_rt_get_f64(V, ((b * Hkv + h / group) * S + j) * Ev + e));
                    kl_rt_set_f64(y, ((b * Hq + h) * L + i) * Ev + e, kl_rnn_round(sp, s));
                }
    kl_free(sc);
    return st;
}
