/*
 * CPU reference kernels of the kiln-domain fused ops (src/ops/kiln.h): the
 * reference Conv/Gemm kernels, then "+ Z" and the activation in float32,
 * with the same formulas as the ONNX activation kernels (elementwise.c), so
 * a fused graph gives the unfused graph's numbers.
 */
#include <math.h>
#include <string.h>

#include "cpu/ref/nn.h"
#include "ops/kiln.h"

/* Logistic function without overflow (elementwise.c's kl_sigmoid). */
static double act_sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

static double act_softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

static double act_clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

void kl_act_apply_f32(kl_act a, float alpha, float beta, float *x, size_t n) {
    size_t i;
    switch (a) {
    case KL_ACT_NONE:
    case KL_ACT_COUNT: break;
    case KL_ACT_RELU:
        for (i = 0; i < n; i++) x[i] = x[i] < 0 ? 0.0f : x[i];
        break;
    case KL_ACT_CLIP: /* Clip: min(max(x, lo), hi); NaN stays NaN */
        for (i = 0; i < n; i++) {
            float v = x[i];
            if (v < alpha) v = alpha;
            if (v > beta) v = beta;
            x[i] = v;
        }
        break;
    case KL_ACT_LEAKY_RELU:
        for (i = 0; i < n; i++) x[i] = x[i] < 0 ? (float)((double)alpha * x[i]) : x[i];
        break;
    case KL_ACT_SIGMOID:
        for (i = 0; i < n; i++) x[i] = (float)act_sigmoid(x[i]);
        break;
    case KL_ACT_SILU: /* Mul(x, Sigmoid(x)): the sigmoid is rounded to float first */
        for (i = 0; i < n; i++) x[i] = x[i] * (float)act_sigmoid(x[i]);
        break;
    case KL_ACT_HARD_SIGMOID:
        for (i = 0; i < n; i++) x[i] = (float)act_clamp01((double)alpha * x[i] + (double)beta);
        break;
    case KL_ACT_HARD_SWISH:
        for (i = 0; i < n; i++) {
            double v = x[i];
            x[i] = (float)(v * act_clamp01(v / 6.0 + 0.5));
        }
        break;
    case KL_ACT_GELU_ERF:
        for (i = 0; i < n; i++) {
            double v = x[i];
            x[i] = (float)(0.5 * v * (1.0 + erf(v * 0.7071067811865476)));
        }
        break;
    case KL_ACT_GELU_TANH:
        for (i = 0; i < n; i++) {
            double v = x[i];
            x[i] = (float)(0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))));
        }
        break;
    case KL_ACT_MISH:
        for (i = 0; i < n; i++) {
            double v = x[i];
            x[i] = (float)(v * tanh(act_softplus(v)));
        }
        break;
    case KL_ACT_TANH:
        for (i = 0; i < n; i++) x[i] = (float)tanh((double)x[i]);
        break;
    }
}

/* y += Z (input zi, when given) and y = act(y), in place on float32 y. */
static kiln_status fused_epilogue(kl_kctx *c, size_t zi, kl_rt *y) {
    int64_t act = kl_node_attr_int(c->node, "activation", 0);
    if (act < 0 || act >= KL_ACT_COUNT)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "activation %lld is not a kiln activation",
                            (long long)act);
    if (y->dtype != KILN_DTYPE_FLOAT)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "fused ops run on float only, output is %s",
                            kiln_dtype_name(y->dtype));
    float *out = y->data;
    if (zi < c->n_in && c->in[zi]) {
        const kl_rt *z = c->in[zi];
        char a[96], b[96];
        if (z->kind != KL_RT_TENSOR || z->dtype != KILN_DTYPE_FLOAT || z->rank != y->rank ||
            memcmp(z->dims, y->dims, (size_t)y->rank * sizeof *y->dims) != 0)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "Z is %s, output is %s",
                                kl_rt_describe(z, a, sizeof a), kl_rt_describe(y, b, sizeof b));
        const float *zv = z->data;
        for (int64_t i = 0; i < y->count; i++) out[i] += zv[i];
    }
    kl_act_apply_f32((kl_act)act, kl_node_attr_float(c->node, "act_alpha", 0.0f),
                     kl_node_attr_float(c->node, "act_beta", 0.0f), out, (size_t)y->count);
    return KILN_OK;
}

/* kiln.FusedConv: Conv(X, W, B), then + Z and the activation.  The host
 * plan may place Y over a dying Z (kl_op_inplace_host_input): the
 * convolution would then write over Z before the epilogue reads it, so a
 * float Z is set aside first, in the node's scratch (a copy of its bytes;
 * this kernel is the oracle, not the fast path). */
static kiln_status fused_conv(kl_kctx *c) {
    kl_kctx sub = *c;
    sub.n_in = KL_MIN(c->n_in, 3);
    kl_rt *z = c->n_in > 3 ? c->in[3] : NULL;
    if (!z || z->kind != KL_RT_TENSOR || z->dtype != KILN_DTYPE_FLOAT || !z->data || z->count <= 0) {
        KL_TRY(kl_nn_conv(&sub));
        return fused_epilogue(c, 3, c->out[0]);
    }
    float *keep = kl_kctx_scratch(c, (size_t)z->count * sizeof(float)); /* (kl_nn_conv uses no scratch) */
    if (!keep) return kl_kctx_fail(c, KILN_ERR_NO_MEMORY, "no memory to set the residual aside (%lld floats)",
                                   (long long)z->count);
    memcpy(keep, z->data, (size_t)z->count * sizeof(float));
    kl_rt zk = *z;
    zk.data = keep;
    kl_rt *ins[4] = {c->in[0], c->n_in > 1 ? c->in[1] : NULL, c->n_in > 2 ? c->in[2] : NULL, &zk};
    kl_kctx cz = *c;
    cz.in = ins;
    cz.n_in = 4;
    KL_TRY(kl_nn_conv(&sub));
    return fused_epilogue(&cz, 3, c->out[0]);
}

/* kiln.FusedGemm: Gemm(A, B, C) with opset-13 rules (C optional), then + Z
 * and the activation. */
static kiln_status fused_gemm(kl_kctx *c) {
    kl_node gemm = *c->node;
    gemm.opset = 13;
    kl_kctx sub = *c;
    sub.node = &gemm;
    sub.n_in = KL_MIN(c->n_in, 3);
    KL_TRY(kl_nn_gemm(&sub));
    return fused_epilogue(c, 3, c->out[0]);
}

/* Strides (2 values >= 1, default 1) and pads (4 values >= 0, default 0)
 * attributes sname and pname of c's node; false when malformed. */
static bool conv_geometry(const kl_kctx *c, const char *sname, const char *pname, int64_t s[2], int64_t p[4]) {
    const int64_t *st, *pd;
    s[0] = s[1] = 1, p[0] = p[1] = p[2] = p[3] = 0;
    int64_t ns = kl_node_attr_ints(c->node, sname, &st), np = kl_node_attr_ints(c->node, pname, &pd);
    if ((ns >= 0 && ns != 2) || (np >= 0 && np != 4)) return false;
    for (int i = 0; i < 2 && ns == 2; i++) s[i] = st[i];
    for (int i = 0; i < 4 && np == 4; i++) p[i] = pd[i];
    return s[0] >= 1 && s[1] >= 1 && p[0] >= 0 && p[1] >= 0 && p[2] >= 0 && p[3] >= 0;
}

/* kiln.FusedConvDw: the first layer (a 1x1 expansion or a stem, with
 * expand_strides and expand_pads) of one image into a float [M, H1, W1]
 * temporary (what the unfused graph stores), accumulated in double, its
 * activation; then the depthwise layer in double, B2 and the activation. */
static kiln_status fused_conv_dw(kl_kctx *c) {
    if (c->n_in < 5) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "needs X, W1, B1, W2, B2");
    for (size_t i = 0; i < 5; i++)
        if (!c->in[i] || c->in[i]->kind != KL_RT_TENSOR || c->in[i]->dtype != KILN_DTYPE_FLOAT)
            return kl_kctx_fail(c, KILN_ERR_TYPE, "input %zu is not a float tensor", i);
    const kl_rt *x = c->in[0], *w1 = c->in[1], *b1 = c->in[2], *w2 = c->in[3], *b2 = c->in[4];
    if (x->rank != 4 || w1->rank != 4 || w2->rank != 4)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "X, W1 and W2 must have rank 4");
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3], M = w1->dims[0];
    int64_t EKH = w1->dims[2], EKW = w1->dims[3], KH = w2->dims[2], KW = w2->dims[3];
    if (w1->dims[1] != C || w2->dims[0] != M || w2->dims[1] != 1 || b1->count != M || b2->count != M || KH < 1 ||
        KW < 1 || EKH < 1 || EKW < 1)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "W1 must be [M, C, KH1, KW1], W2 [M, 1, KH, KW], B1 and B2 [M]");
    int64_t es[2], ep[4], s[2], p[4];
    if (!conv_geometry(c, "expand_strides", "expand_pads", es, ep) || !conv_geometry(c, "strides", "pads", s, p))
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "strides (2 values >= 1) or pads (4 values >= 0)");
    if (H + ep[0] + ep[2] < EKH || W + ep[1] + ep[3] < EKW)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "the first kernel is larger than the padded input");
    int64_t H1 = (H + ep[0] + ep[2] - EKH) / es[0] + 1, W1 = (W + ep[1] + ep[3] - EKW) / es[1] + 1;
    if (H1 + p[0] + p[2] < KH || W1 + p[1] + p[3] < KW)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "kernel larger than the padded input");
    int64_t OH = (H1 + p[0] + p[2] - KH) / s[0] + 1, OW = (W1 + p[1] + p[3] - KW) / s[1] + 1;
    int64_t ea = kl_node_attr_int(c->node, "expand_activation", 0), a2 = kl_node_attr_int(c->node, "activation", 0);
    if (ea < 0 || ea >= KL_ACT_COUNT || a2 < 0 || a2 >= KL_ACT_COUNT)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "activation is not a kiln activation");
    int64_t dims[4] = {N, M, OH, OW};
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 4, dims, &y));
    if (y->count == 0) return KILN_OK;
    size_t HW = (size_t)(H * W), HW1 = (size_t)(H1 * W1);
    float *t = kl_malloc(KL_MAX((size_t)M * HW1, (size_t)1) * sizeof(float));
    if (!t) return KILN_ERR_NO_MEMORY;
    const float *xv = x->data, *w1v = w1->data, *b1v = b1->data, *w2v = w2->data, *b2v = b2->data;
    float *yv = y->data;
    for (int64_t n = 0; n < N; n++) {
        const float *xn = xv + (size_t)(n * C) * HW;
        for (int64_t m = 0; m < M; m++)
            for (int64_t oh = 0; oh < H1; oh++)
                for (int64_t ow = 0; ow < W1; ow++) {
                    double acc = b1v[m];
                    for (int64_t ci = 0; ci < C; ci++)
                        for (int64_t kh = 0; kh < EKH; kh++) {
                            int64_t ih = oh * es[0] + kh - ep[0];
                            if (ih < 0 || ih >= H) continue;
                            for (int64_t kw = 0; kw < EKW; kw++) {
                                int64_t iw = ow * es[1] + kw - ep[1];
                                if (iw < 0 || iw >= W) continue;
                                acc += (double)xn[(size_t)ci * HW + (size_t)(ih * W + iw)] *
                                       w1v[((m * C + ci) * EKH + kh) * EKW + kw];
                            }
                        }
                    t[(size_t)m * HW1 + (size_t)(oh * W1 + ow)] = (float)acc;
                }
        kl_act_apply_f32((kl_act)ea, kl_node_attr_float(c->node, "expand_act_alpha", 0.0f),
                         kl_node_attr_float(c->node, "expand_act_beta", 0.0f), t, (size_t)M * HW1);
        for (int64_t m = 0; m < M; m++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    double acc = b2v[m];
                    for (int64_t kh = 0; kh < KH; kh++) {
                        int64_t ih = oh * s[0] + kh - p[0];
                        if (ih < 0 || ih >= H1) continue;
                        for (int64_t kw = 0; kw < KW; kw++) {
                            int64_t iw = ow * s[1] + kw - p[1];
                            if (iw < 0 || iw >= W1) continue;
                            acc += (double)t[(size_t)(m * H1 + ih) * (size_t)W1 + (size_t)iw] * w2v[(m * KH + kh) * KW + kw];
                        }
                    }
                    yv[((n * M + m) * OH + oh) * OW + ow] = (float)acc;
                }
    }
    kl_free(t);
    kl_act_apply_f32((kl_act)a2, kl_node_attr_float(c->node, "act_alpha", 0.0f),
                     kl_node_attr_float(c->node, "act_beta", 0.0f), yv, (size_t)y->count);
    return KILN_OK;
}

/* kiln.ScaledConv: X * S rounded to float (what the unfused Mul stores),
 * the 1x1 convolution accumulated in double, B, Z and the activation. */
static kiln_status scaled_conv(kl_kctx *c) {
    if (c->n_in < 4) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "needs X, S, W, B");
    size_t nin = KL_MIN(c->n_in, (size_t)5);
    for (size_t i = 0; i < nin; i++)
        if ((i < 4 || c->in[i]) && (!c->in[i] || c->in[i]->kind != KL_RT_TENSOR || c->in[i]->dtype != KILN_DTYPE_FLOAT))
            return kl_kctx_fail(c, KILN_ERR_TYPE, "input %zu is not a float tensor", i);
    const kl_rt *x = c->in[0], *sc = c->in[1], *w = c->in[2], *b = c->in[3];
    if (x->rank != 4 || sc->rank != 4 || w->rank != 4 || b->rank != 1)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "X, S and W must have rank 4, B rank 1");
    int64_t N = x->dims[0], C = x->dims[1], HW = x->dims[2] * x->dims[3], M = w->dims[0];
    if (w->dims[1] != C || w->dims[2] != 1 || w->dims[3] != 1 || b->dims[0] != M)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "W must be [M, C, 1, 1] and B [M] for X's %lld channels", (long long)C);
    if ((sc->dims[0] != N && sc->dims[0] != 1) || sc->dims[1] != C || sc->dims[2] != 1 || sc->dims[3] != 1)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "S must be [N or 1, C, 1, 1]");
    int64_t dims[4] = {N, M, x->dims[2], x->dims[3]};
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 4, dims, &y));
    if (y->count == 0) return KILN_OK;
    float *t = kl_malloc(KL_MAX((size_t)(C * HW), (size_t)1) * sizeof(float));
    if (!t) return KILN_ERR_NO_MEMORY;
    const float *xv = x->data, *sv = sc->data, *wv = w->data, *bv = b->data;
    float *yv = y->data;
    for (int64_t n = 0; n < N; n++) {
        const float *s = sv + (sc->dims[0] == 1 ? 0 : n * C);
        for (int64_t ci = 0; ci < C; ci++)
            for (int64_t q = 0; q < HW; q++) t[ci * HW + q] = xv[(n * C + ci) * HW + q] * s[ci];
        for (int64_t m = 0; m < M; m++)
            for (int64_t q = 0; q < HW; q++) {
                double acc = bv[m];
                for (int64_t ci = 0; ci < C; ci++) acc += (double)t[ci * HW + q] * wv[m * C + ci];
                yv[(n * M + m) * HW + q] = (float)acc;
            }
    }
    kl_free(t);
    return fused_epilogue(c, 4, y);
}

/* ---- the blocked layout (NCHWc, c = 16): the oracle of src/cpu/x86/nchwc.c ---- */

#define NCB 16

static bool ref_float_rank(const kl_rt *t, int rank) {
    return t && t->kind == KL_RT_TENSOR && t->dtype == KILN_DTYPE_FLOAT && t->rank == rank;
}

/* kiln.ReorderNchwc: [N, C, H, W] -> [N, ceil(C/16), H, W, 16], padding lanes zero. */
static kiln_status reorder_nchwc(kl_kctx *c) {
    const kl_rt *x = c->n_in ? c->in[0] : NULL;
    if (!ref_float_rank(x, 4)) return kl_kctx_fail(c, KILN_ERR_TYPE, "X must be a float tensor of rank 4");
    int64_t N = x->dims[0], C = x->dims[1], HW = x->dims[2] * x->dims[3], Cb = (C + NCB - 1) / NCB;
    int64_t dims[5] = {N, Cb, x->dims[2], x->dims[3], NCB};
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 5, dims, &y));
    const float *xv = x->data;
    float *yv = y->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t cb = 0; cb < Cb; cb++)
            for (int64_t q = 0; q < HW; q++)
                for (int64_t l = 0; l < NCB; l++) {
                    int64_t ch = cb * NCB + l;
                    yv[((n * Cb + cb) * HW + q) * NCB + l] = ch < C ? xv[(n * C + ch) * HW + q] : 0.0f;
                }
    return KILN_OK;
}

/* kiln.ReorderNchw: [N, Cb, H, W, 16] -> [N, channels, H, W]. */
static kiln_status reorder_nchw(kl_kctx *c) {
    const kl_rt *x = c->n_in ? c->in[0] : NULL;
    int64_t C = kl_node_attr_int(c->node, "channels", -1);
    if (!ref_float_rank(x, 5) || x->dims[4] != NCB || C < 1 || x->dims[1] != (C + NCB - 1) / NCB)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "X must be a float [N, ceil(channels/16), H, W, 16]");
    int64_t N = x->dims[0], Cb = x->dims[1], HW = x->dims[2] * x->dims[3];
    int64_t dims[4] = {N, C, x->dims[2], x->dims[3]};
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 4, dims, &y));
    const float *xv = x->data;
    float *yv = y->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t ch = 0; ch < C; ch++)
            for (int64_t q = 0; q < HW; q++) yv[(n * C + ch) * HW + q] = xv[((n * Cb + ch / NCB) * HW + q) * NCB + ch % NCB];
    return KILN_OK;
}

/* Two ints of attribute `name` (default d), or four for pads. */
static void ref_ints(const kl_node *n, const char *name, int64_t *out, int cnt, int64_t d) {
    const int64_t *v;
    int64_t k = kl_node_attr_ints(n, name, &v);
    for (int i = 0; i < cnt; i++) out[i] = k == cnt ? v[i] : d;
}

/* kiln.ConvNchwc: accumulated in double over the real input channels; the
 * output's padding lanes get act(0 + Z) like the vector kernels'. */
static kiln_status conv_nchwc(kl_kctx *c) {
    bool nchw = kl_node_attr_int(c->node, "in_nchw", 0) != 0;
    int64_t group = kl_node_attr_int(c->node, "group", 1);
    const kl_rt *x = c->n_in > 0 ? c->in[0] : NULL, *w = c->n_in > 1 ? c->in[1] : NULL;
    const kl_rt *b = c->n_in > 2 ? c->in[2] : NULL, *z = c->n_in > 3 ? c->in[3] : NULL;
    if (!ref_float_rank(x, nchw ? 4 : 5) || !ref_float_rank(w, 4) || (b && !ref_float_rank(b, 1)))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "X, W (and B) must be float tensors of ranks %d, 4 (and 1)", nchw ? 4 : 5);
    int64_t M = w->dims[0], Cg = w->dims[1], KH = w->dims[2], KW = w->dims[3], C = Cg * group;
    int64_t H = x->dims[2], W = x->dims[3], Cb = (C + NCB - 1) / NCB, Mb = (M + NCB - 1) / NCB;
    if ((group != 1 && (group != M || Cg != 1 || nchw)) || x->dims[1] != (nchw ? C : Cb) || (!nchw && x->dims[4] != NCB) ||
        (b && b->dims[0] != M))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "X, W, B or group do not fit a blocked convolution");
    int64_t s[2], p[4];
    ref_ints(c->node, "strides", s, 2, 1);
    ref_ints(c->node, "pads", p, 4, 0);
    if (s[0] < 1 || s[1] < 1 || H + p[0] + p[2] < KH || W + p[1] + p[3] < KW)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "kernel larger than the padded input");
    int64_t N = x->dims[0], OH = (H + p[0] + p[2] - KH) / s[0] + 1, OW = (W + p[1] + p[3] - KW) / s[1] + 1;
    int64_t dims[5] = {N, Mb, OH, OW, NCB};
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 5, dims, &y));
    if (z && (!ref_float_rank(z, 5) || memcmp(z->dims, y->dims, sizeof dims) != 0))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "Z must have the output's shape");
    int64_t act = kl_node_attr_int(c->node, "activation", 0);
    float alpha = kl_node_attr_float(c->node, "act_alpha", 0.0f), beta = kl_node_attr_float(c->node, "act_beta", 0.0f);
    const float *xv = x->data, *wv = w->data, *bv = b ? b->data : NULL, *zv = z ? z->data : NULL;
    float *yv = y->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < Mb * NCB; m++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    double a = m < M && bv ? bv[m] : 0.0;
                    for (int64_t k = 0; k < Cg && m < M; k++) {
                        int64_t ch = group == 1 ? k : m;
                        for (int64_t kh = 0; kh < KH; kh++) {
                            int64_t ih = oh * s[0] - p[0] + kh;
                            if (ih < 0 || ih >= H) continue;
                            for (int64_t kw = 0; kw < KW; kw++) {
                                int64_t iw = ow * s[1] - p[1] + kw;
                                if (iw < 0 || iw >= W) continue;
                                double xval = nchw ? xv[((n * C + ch) * H + ih) * W + iw]
                                                   : xv[(((n * Cb + ch / NCB) * H + ih) * W + iw) * NCB + ch % NCB];
                                a += xval * wv[((m * Cg + k) * KH + kh) * KW + kw];
                            }
                        }
                    }
                    int64_t o = (((n * Mb + m / NCB) * OH + oh) * OW + ow) * NCB + m % NCB;
                    float v = (float)a;
                    if (zv) v += zv[o];
                    kl_act_apply_f32((kl_act)act, alpha, beta, &v, 1);
                    yv[o] = v;
                }
    return KILN_OK;
}

/* kiln.MaxPoolNchwc: every lane pooled; padded taps skipped. */
static kiln_status maxpool_nchwc(kl_kctx *c) {
    const kl_rt *x = c->n_in ? c->in[0] : NULL;
    if (!ref_float_rank(x, 5)) return kl_kctx_fail(c, KILN_ERR_TYPE, "X must be a float tensor of rank 5");
    int64_t k[2], s[2], p[4];
    ref_ints(c->node, "kernel_shape", k, 2, 0);
    ref_ints(c->node, "strides", s, 2, 1);
    ref_ints(c->node, "pads", p, 4, 0);
    int64_t N = x->dims[0], Cb = x->dims[1], H = x->dims[2], W = x->dims[3], L = x->dims[4];
    if (k[0] < 1 || k[1] < 1 || s[0] < 1 || s[1] < 1 || H + p[0] + p[2] < k[0] || W + p[1] + p[3] < k[1])
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "kernel_shape, strides or pads do not fit the input");
    int64_t OH = (H + p[0] + p[2] - k[0]) / s[0] + 1, OW = (W + p[1] + p[3] - k[1]) / s[1] + 1;
    int64_t dims[5] = {N, Cb, OH, OW, L};
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 5, dims, &y));
    const float *xv = x->data;
    float *yv = y->data;
    for (int64_t nb = 0; nb < N * Cb; nb++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++)
                for (int64_t l = 0; l < L; l++) {
                    float m = -INFINITY;
                    for (int64_t kh = 0; kh < k[0]; kh++)
                        for (int64_t kw = 0; kw < k[1]; kw++) {
                            int64_t ih = oh * s[0] - p[0] + kh, iw = ow * s[1] - p[1] + kw;
                            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                            float v = xv[((nb * H + ih) * W + iw) * L + l];
                            if (v > m || isnan(v)) m = v;
                        }
                    yv[((nb * OH + oh) * OW + ow) * L + l] = m;
                }
    return KILN_OK;
}

const kl_kernel_def kl_ref_fused[] = {
    {KL_KILN_DOMAIN, "FusedConv", 1, 0, KL_T(FLOAT), fused_conv},
    {KL_KILN_DOMAIN, "FusedGemm", 1, 0, KL_T(FLOAT), fused_gemm},
    {KL_KILN_DOMAIN, "FusedConvDw", 1, 0, KL_T(FLOAT), fused_conv_dw},
    {KL_KILN_DOMAIN, "ScaledConv", 1, 0, KL_T(FLOAT), scaled_conv},
    {KL_KILN_DOMAIN, "ReorderNchwc", 1, 0, KL_T(FLOAT), reorder_nchwc},
    {KL_KILN_DOMAIN, "ReorderNchw", 1, 0, KL_T(FLOAT), reorder_nchw},
    {KL_KILN_DOMAIN, "ConvNchwc", 1, 0, KL_T(FLOAT), conv_nchwc},
    {KL_KILN_DOMAIN, "MaxPoolNchwc", 1, 0, KL_T(FLOAT), maxpool_nchwc},
    {NULL, NULL, 0, 0, 0, NULL},
};
