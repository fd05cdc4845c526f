/*
 * CPU reference kernels of the transformer-side kiln ops
 * (ops/kiln_transformer.h): FusedMatMul, LayerNorm, RMSNorm, Attention and
 * FusedElementwise, float32.  Matrix products go through the reference
 * sgemm; norm statistics are computed in double (two passes) like the ONNX
 * LayerNormalization kernel; elementwise steps are computed in double and
 * rounded once per step, like the separate ONNX ops.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cpu/ref/nn.h"
#include "ops/kiln_transformer.h"

/* Input i as a float32 tensor (required or optional), else an error naming it. */
static kiln_status ft_input(kl_kctx *c, size_t i, const char *name, bool required, const kl_rt **out) {
    *out = i < c->n_in ? c->in[i] : NULL;
    if (!*out) {
        if (required) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "input '%s' is missing", name);
        return KILN_OK;
    }
    if ((*out)->kind != KL_RT_TENSOR || (*out)->dtype != KILN_DTYPE_FLOAT)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "input '%s' must be a float tensor", name);
    return KILN_OK;
}

/* ---- FusedMatMul --------------------------------------------------------------------- */

/* Y = act(alpha * MatMul(A, B) + bias): the reference MatMul, then the
 * epilogue in the order the unfused Mul, Add and activation would run. */
static kiln_status k_fused_matmul(kl_kctx *c) {
    const kl_rt *a, *b, *bias;
    KL_TRY(ft_input(c, 0, "A", true, &a));
    KL_TRY(ft_input(c, 1, "B", true, &b));
    KL_TRY(ft_input(c, 2, "bias", false, &bias));
    int64_t act = kl_node_attr_int(c->node, "activation", 0);
    if (act < 0 || act >= KL_ACT_COUNT)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "activation %lld is not a kiln activation", (long long)act);
    float alpha = kl_node_attr_float(c->node, "alpha", 1.0f);
    kl_kctx sub = *c;
    sub.n_in = 2;
    KL_TRY(kl_nn_matmul(&sub));
    kl_rt *y = c->out[0];
    float *yv = y->data;
    int64_t n = y->rank >= 1 ? y->dims[y->rank - 1] : 1;
    if (bias) {
        char d1[96], d2[96];
        bool ok = y->rank >= 1 && bias->rank >= 1 && bias->rank <= y->rank && bias->count == n &&
                  bias->dims[bias->rank - 1] == n;
        if (!ok)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "bias %s does not match the last dim of the product %s",
                                kl_rt_describe(bias, d1, sizeof d1), kl_rt_describe(y, d2, sizeof d2));
    }
    if (alpha != 1.0f)
        for (int64_t i = 0; i < y->count; i++) yv[i] = (float)((double)alpha * yv[i]);
    if (bias && n > 0) {
        const float *bv = bias->data;
        for (int64_t r = 0; r < y->count / n; r++)
            for (int64_t j = 0; j < n; j++) yv[r * n + j] += bv[j];
    }
    kl_act_apply_f32((kl_act)act, kl_node_attr_float(c->node, "act_alpha", 0.0f),
                     kl_node_attr_float(c->node, "act_beta", 0.0f), yv, (size_t)y->count);
    return KILN_OK;
}

/* ---- LayerNorm / RMSNorm ------------------------------------------------------------------ */

/* Parameter t (NULL: `dflt` everywhere) broadcast to the nr normalized dims
 * nd (cols elements) into a new double array *out. */
static kiln_status ft_expand(kl_kctx *c, const kl_rt *t, const char *name, double dflt, int nr, const int64_t *nd,
                             int64_t cols, double **out) {
    double *v = kl_nn_alloc(cols ? cols : 1, sizeof *v);
    if (!v) return KILN_ERR_NO_MEMORY;
    *out = v;
    if (!t) {
        for (int64_t k = 0; k < cols; k++) v[k] = dflt;
        return KILN_OK;
    }
    int64_t st[KILN_MAX_RANK] = {0}, ts[KILN_MAX_RANK];
    kl_ref_strides(t->rank, t->dims, ts);
    for (int i = 0; i < t->rank; i++) {
        int o = nr - t->rank + i;
        if (t->dims[i] == 1) continue;
        if (o < 0 || t->dims[i] != nd[o]) {
            char b[96];
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "input '%s' %s does not broadcast to the normalized shape",
                                name, kl_rt_describe(t, b, sizeof b));
        }
        st[o] = ts[i];
    }
    const float *tv = t->data;
    int64_t idx[KILN_MAX_RANK] = {0}, off = 0;
    for (int64_t k = 0; k < cols; k++) {
        v[k] = tv[off];
        for (int d = nr - 1; d >= 0; d--) {
            off += st[d];
            if (++idx[d] < nd[d]) break;
            off -= st[d] * nd[d];
            idx[d] = 0;
        }
    }
    return KILN_OK;
}

/* Rows X[i, axis:] normalized by mean and variance (LayerNorm) or by root
 * mean square (RMSNorm), statistics in double, then * scale (+ bias). */
static kiln_status ft_norm(kl_kctx *c, bool rms) {
    const kl_rt *x, *sc, *bi = NULL;
    KL_TRY(ft_input(c, 0, "X", true, &x));
    KL_TRY(ft_input(c, 1, "scale", false, &sc));
    if (!rms) KL_TRY(ft_input(c, 2, "bias", false, &bi));
    int axis;
    KL_TRY(kl_ref_axis(kl_node_attr_int(c->node, "axis", -1), x->rank, false, "attribute 'axis'", &axis));
    double eps = kl_node_attr_float(c->node, "epsilon", 1e-5f);
    int64_t rows = 1, cols = 1;
    for (int i = 0; i < x->rank; i++) {
        if (i < axis) rows *= x->dims[i];
        else cols *= x->dims[i];
    }
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, x->dims, &y));
    if (x->count == 0) return KILN_OK;
    double *w = NULL, *b = NULL;
    kiln_status s = ft_expand(c, sc, "scale", 1.0, x->rank - axis, x->dims + axis, cols, &w);
    if (!s) s = ft_expand(c, bi, "bias", 0.0, x->rank - axis, x->dims + axis, cols, &b);
    if (s) goto done;
    for (int64_t r = 0; r < rows; r++) {
        const float *px = (const float *)x->data + r * cols;
        float *py = (float *)y->data + r * cols;
        double mean = 0, q = 0;
        if (!rms) {
            for (int64_t k = 0; k < cols; k++) mean += px[k];
            mean /= (double)cols;
        }
        for (int64_t k = 0; k < cols; k++) q += (px[k] - mean) * (px[k] - mean);
        double inv = 1.0 / sqrt(q / (double)cols + eps);
        for (int64_t k = 0; k < cols; k++) py[k] = (float)((px[k] - mean) * inv * w[k] + b[k]);
    }
done:
    kl_nn_free(w);
    kl_nn_free(b);
    return s;
}

static kiln_status k_layernorm(kl_kctx *c) { return ft_norm(c, false); }
static kiln_status k_rmsnorm(kl_kctx *c) { return ft_norm(c, true); }

/* ---- Attention ---------------------------------------------------------------------- */

/* Geometry of a [B, S, E] (or [S, B, E] when seq_first) operand: element
 * (b, s, col) at b*bs + s*ss + col. */
typedef struct ft_seq {
    int64_t batch, seq, width, bs, ss;
} ft_seq;

static kiln_status ft_seq_of(kl_kctx *c, const kl_rt *t, const char *name, bool sf, ft_seq *g) {
    if (t->rank != 3) {
        char b[96];
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "%s is %s, expected rank 3", name, kl_rt_describe(t, b, sizeof b));
    }
    g->width = t->dims[2];
    g->batch = t->dims[sf ? 1 : 0];
    g->seq = t->dims[sf ? 0 : 1];
    g->bs = sf ? g->width : g->seq * g->width;
    g->ss = sf ? t->dims[1] * g->width : g->width;
    return KILN_OK;
}

/* Per batch and head: P = softmax(scale * Q K^T + mask) row-wise (max
 * subtracted, float), Y = P V; heads packed in the last dim. */
static kiln_status k_attention(kl_kctx *c) {
    const kl_rt *q, *k, *v, *mask;
    KL_TRY(ft_input(c, 0, "Q", true, &q));
    KL_TRY(ft_input(c, 1, "K", true, &k));
    KL_TRY(ft_input(c, 2, "V", true, &v));
    KL_TRY(ft_input(c, 3, "mask", false, &mask));
    int64_t H = kl_node_attr_int(c->node, "num_heads", 0);
    bool sf = kl_node_attr_int(c->node, "seq_first", 0) != 0;
    ft_seq gq, gk, gv;
    KL_TRY(ft_seq_of(c, q, "Q", sf, &gq));
    KL_TRY(ft_seq_of(c, k, "K", sf, &gk));
    KL_TRY(ft_seq_of(c, v, "V", sf, &gv));
    char d1[96], d2[96], d3[96];
    if (H < 1 || gq.width != gk.width || gq.width % H || gv.width % H || gq.batch != gk.batch ||
        gq.batch != gv.batch || gk.seq != gv.seq)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "Q %s, K %s and V %s do not fit %lld heads%s",
                            kl_rt_describe(q, d1, sizeof d1), kl_rt_describe(k, d2, sizeof d2),
                            kl_rt_describe(v, d3, sizeof d3), (long long)H, sf ? " (seq_first)" : "");
    int64_t B = gq.batch, Sq = gq.seq, Sk = gk.seq, D = gq.width / H, Dv = gv.width / H;
    float scale = D > 0 ? (float)(1.0 / sqrt((double)D)) : 1.0f;
    const kl_attr *sa = kl_node_attr(c->node, "scale");
    if (sa) scale = sa->f;
    /* mask strides over [B, H, Sq, Sk], 0 on broadcast axes */
    int64_t full[4] = {B, H, Sq, Sk}, ms[4] = {0, 0, 0, 0};
    if (mask) {
        int64_t ts[KILN_MAX_RANK];
        if (mask->rank > 4)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "mask %s has rank > 4", kl_rt_describe(mask, d1, sizeof d1));
        kl_ref_strides(mask->rank, mask->dims, ts);
        for (int i = 0; i < mask->rank; i++) {
            int o = 4 - mask->rank + i;
            if (mask->dims[i] == 1) continue;
            if (mask->dims[i] != full[o])
                return kl_kctx_fail(c, KILN_ERR_SHAPE, "mask %s does not broadcast to [%lld,%lld,%lld,%lld]",
                                    kl_rt_describe(mask, d1, sizeof d1), (long long)B, (long long)H,
                                    (long long)Sq, (long long)Sk);
            ms[o] = ts[i];
        }
    }
    int64_t ydims[3] = {sf ? Sq : B, sf ? B : Sq, H * Dv};
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 3, ydims, &y));
    if (y->count == 0) return KILN_OK;
    int64_t ybs = sf ? H * Dv : Sq * H * Dv, yss = sf ? B * H * Dv : H * Dv;
    float *sc = kl_nn_alloc(Sq * Sk, sizeof *sc);
    if (!sc) return KILN_ERR_NO_MEMORY;
    const float *qv = q->data, *kv = k->data, *vv = v->data, *mv = mask ? mask->data : NULL;
    float *yv = y->data;
    kiln_status s = KILN_OK;
    for (int64_t b = 0; b < B && !s; b++)
        for (int64_t h = 0; h < H && !s; h++) {
            memset(sc, 0, (size_t)(Sq * Sk) * sizeof *sc);
            if (Sk > 0 && D > 0)
                s = kl_nn_sgemm(Sq, Sk, D, scale, qv + b * gq.bs + h * D, gq.ss, 1, kv + b * gk.bs + h * D, 1,
                                gk.ss, sc, Sk);
            if (s) break;
            for (int64_t i = 0; i < Sq; i++) {
                float *row = sc + i * Sk;
                if (mv) {
                    const float *mrow = mv + b * ms[0] + h * ms[1] + i * ms[2];
                    for (int64_t j = 0; j < Sk; j++) row[j] += mrow[j * ms[3]];
                }
                float mx = -INFINITY, sum = 0.0f;
                for (int64_t j = 0; j < Sk; j++) mx = row[j] > mx ? row[j] : mx;
                for (int64_t j = 0; j < Sk; j++) sum += row[j] = expf(row[j] - mx);
                float inv = 1.0f / sum;
                for (int64_t j = 0; j < Sk; j++) row[j] *= inv;
            }
            if (Sk > 0 && Dv > 0)
                s = kl_nn_sgemm(Sq, Dv, Sk, 1.0f, sc, Sk, 1, vv + b * gv.bs + h * Dv, gv.ss, 1,
                                yv + b * ybs + h * Dv, yss);
        }
    kl_nn_free(sc);
    return s;
}

/* ---- FusedElementwise ------------------------------------------------------------------- */

/* Logistic function without overflow (elementwise.c's formula). */
static double fe_sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* One step on value x with operand o (double, as the ONNX kernels compute). */
static double fe_apply(int64_t op, double x, double o) {
    switch (op) {
    case KL_FE_ADD: return x + o;
    case KL_FE_SUB: return x - o;
    case KL_FE_RSUB: return o - x;
    case KL_FE_MUL: return x * o;
    case KL_FE_DIV: return x / o;
    case KL_FE_RDIV: return o / x;
    case KL_FE_POW: return pow(x, o);
    case KL_FE_RPOW: return pow(o, x);
    case KL_FE_RELU: return x < 0 ? 0.0 : x;
    case KL_FE_SIGMOID: return fe_sigmoid(x);
    case KL_FE_TANH: return tanh(x);
    case KL_FE_EXP: return exp(x);
    case KL_FE_LOG: return log(x);
    case KL_FE_ERF: return erf(x);
    case KL_FE_SQRT: return sqrt(x);
    case KL_FE_NEG: return -x;
    case KL_FE_ABS: return fabs(x);
    case KL_FE_RECIPROCAL: return 1.0 / x;
    case KL_FE_LEAKY_RELU: return x < 0 ? o * x : x;
    case KL_FE_SOFTPLUS: return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    default: return x;
    }
}

/* y[i] = t broadcast to y's shape (t's shape must broadcast to it). */
static void fe_broadcast(const kl_rt *t, kl_rt *y, float *dst) {
    const float *tv = t->data;
    if (t->count == y->count) {
        memcpy(dst, tv, (size_t)y->count * sizeof *dst);
        return;
    }
    if (t->count == 1) {
        for (int64_t i = 0; i < y->count; i++) dst[i] = tv[0];
        return;
    }
    kl_bcast it;
    kl_rt *ins[1] = {(kl_rt *)t};
    kl_bcast_init(&it, y->rank, y->dims, ins, 1);
    for (int64_t i = 0; i < y->count; i++, kl_bcast_next(&it)) dst[i] = tv[it.off[0]];
}

/* Run the step program over the broadcast shape of all inputs. */
static kiln_status k_fused_elementwise(kl_kctx *c) {
    const int64_t *ops, *args;
    int64_t n = kl_node_attr_ints(c->node, "ops", &ops), na = kl_node_attr_ints(c->node, "args", &args);
    const kl_attr *imms = kl_node_attr(c->node, "imms");
    if (n < 1 || na != n || !imms || imms->type != KL_ATTR_FLOATS || imms->n != (size_t)n || c->n_in < 1 ||
        c->n_in > KL_FE_MAX_INPUTS)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "malformed program (ops, args, imms)");
    for (size_t i = 0; i < c->n_in; i++) {
        const kl_rt *t;
        char name[32];
        snprintf(name, sizeof name, "X%zu", i);
        KL_TRY(ft_input(c, i, name, true, &t));
    }
    for (int64_t i = 0; i < n; i++) {
        bool bin = kl_fe_is_binary(ops[i]);
        bool ok = (bin || kl_fe_is_unary(ops[i])) &&
                  (args[i] == KL_FE_ARG_IMM || (bin && args[i] == KL_FE_ARG_SELF) ||
                   (bin && args[i] >= 0 && (size_t)args[i] < c->n_in));
        if (!ok)
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "step %lld: opcode %lld with operand %lld is invalid",
                                (long long)i, (long long)ops[i], (long long)args[i]);
    }
    int rank;
    int64_t dims[KILN_MAX_RANK];
    KL_TRY(kl_ref_broadcast_shape(c->in, c->n_in, &rank, dims));
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, rank, dims, &y));
    if (y->count == 0) return KILN_OK;
    float *yv = y->data, *tmp = NULL;
    fe_broadcast(c->in[0], y, yv);
    for (int64_t s = 0; s < n; s++) {
        int64_t op = ops[s], a = args[s];
        if (a == KL_FE_ARG_IMM) {
            double o = imms->floats[s];
            for (int64_t i = 0; i < y->count; i++) yv[i] = (float)fe_apply(op, yv[i], o);
        } else if (a == KL_FE_ARG_SELF) {
            for (int64_t i = 0; i < y->count; i++) yv[i] = (float)fe_apply(op, yv[i], yv[i]);
        } else {
            const kl_rt *t = c->in[a];
            const float *tv = t->data;
            if (t->count == y->count) {
                for (int64_t i = 0; i < y->count; i++) yv[i] = (float)fe_apply(op, yv[i], tv[i]);
            } else if (t->count == 1) {
                for (int64_t i = 0; i < y->count; i++) yv[i] = (float)fe_apply(op, yv[i], tv[0]);
            } else {
                if (!tmp && !(tmp = kl_nn_alloc(y->count, sizeof *tmp))) return KILN_ERR_NO_MEMORY;
                fe_broadcast(t, y, tmp);
                for (int64_t i = 0; i < y->count; i++) yv[i] = (float)fe_apply(op, yv[i], tmp[i]);
            }
        }
    }
    kl_nn_free(tmp);
    return KILN_OK;
}

const kl_kernel_def kl_ref_fused_transformer[] = {
    {KL_KILN_DOMAIN, "FusedMatMul", 1, 0, KL_T(FLOAT), k_fused_matmul},
    {KL_KILN_DOMAIN, "LayerNorm", 1, 0, KL_T(FLOAT), k_layernorm},
    {KL_KILN_DOMAIN, "RMSNorm", 1, 0, KL_T(FLOAT), k_rmsnorm},
    {KL_KILN_DOMAIN, "Attention", 1, 0, KL_T(FLOAT), k_attention},
    {KL_KILN_DOMAIN, "FusedElementwise", 1, 0, KL_T(FLOAT), k_fused_elementwise},
    {NULL, NULL, 0, 0, 0, NULL},
};
