/* Schemas and shape inference of the kiln-domain ops made by the passes. */
#include <string.h>

#include "ops/infer_util.h"
#include "ops/kiln.h"

static const char *const kl_act_names[KL_ACT_COUNT] = {
    "none", "relu", "clip", "leaky_relu", "sigmoid", "silu",
    "hard_sigmoid", "hard_swish", "gelu_erf", "gelu_tanh", "mish", "tanh",
};

const char *kl_kiln_act_name(kl_act a) {
    return (int)a >= 0 && a < KL_ACT_COUNT ? kl_act_names[a] : NULL;
}

/* The activation attribute must name a known kl_act. */
static kiln_status check_act(kl_infer_ctx *c) {
    int64_t a = kl_node_attr_int(c->node, "activation", 0);
    if (a < 0 || a >= KL_ACT_COUNT)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "activation is %lld, not a kiln activation",
                             (long long)a);
    return KILN_OK;
}

/* Z (input `zi`), when given, must have output 0's element type, and its
 * known dims must equal the output's. */
static kiln_status check_z(kl_infer_ctx *c, size_t zi) {
    if (!kl_infer_has_input(c, zi)) return KILN_OK;
    kiln_dtype zt = kl_infer_input_dtype(c, zi), xt = kl_infer_input_dtype(c, 0);
    if (zt && xt && zt != xt)
        return kl_infer_fail(c, KILN_ERR_TYPE, "Z is %s but X is %s", kiln_dtype_name(zt),
                             kiln_dtype_name(xt));
    const kl_shape *z = kl_infer_input_shape(c, zi);
    const kl_value *y = c->node->n_outputs ? c->node->outputs[0] : NULL;
    if (!z || !y || y->type.shape.rank < 0) return KILN_OK;
    const kl_shape *ys = &y->type.shape;
    if (z->rank != ys->rank)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "Z has rank %d, output has rank %d", z->rank,
                             ys->rank);
    for (int i = 0; i < z->rank; i++)
        if (z->dims[i].value >= 0 && ys->dims[i].value >= 0 && z->dims[i].value != ys->dims[i].value)
            return kl_infer_fail(c, KILN_ERR_SHAPE, "Z dim %d is %lld, output's is %lld", i,
                                 (long long)z->dims[i].value, (long long)ys->dims[i].value);
    return KILN_OK;
}

/* FusedConv: Conv's output shape, then Z checked against it. */
static kiln_status infer_fused_conv(kl_infer_ctx *c) {
    KL_TRY(check_act(c));
    kiln_dtype xt = kl_infer_input_dtype(c, 0), wt = kl_infer_input_dtype(c, 1);
    if (xt && wt && xt != wt)
        return kl_infer_fail(c, KILN_ERR_TYPE, "X is %s but W is %s", kiln_dtype_name(xt),
                             kiln_dtype_name(wt));
    KL_TRY(kl_infer_conv_like(c, 0, 1, xt));
    return check_z(c, 3);
}

/* FusedGemm: Gemm's rules (the ai.onnx Gemm schema's inference), then Z. */
static kiln_status infer_fused_gemm(kl_infer_ctx *c) {
    KL_TRY(check_act(c));
    const kl_op_schema *gemm = kl_op_find("", "Gemm", 13, NULL);
    if (!gemm || !gemm->infer) return kl_infer_fail(c, KILN_ERR_INTERNAL, "no Gemm schema");
    KL_TRY(gemm->infer(c));
    return check_z(c, 3);
}

/* Strides (2 values, default 1) and pads (4 values, default 0) attributes
 * sname and pname of the node, checked. */
static kiln_status conv_geometry(kl_infer_ctx *c, const char *sname, const char *pname, int64_t s[2], int64_t p[4]) {
    const int64_t *st, *pd;
    s[0] = s[1] = 1, p[0] = p[1] = p[2] = p[3] = 0;
    int64_t ns = kl_node_attr_ints(c->node, sname, &st), np = kl_node_attr_ints(c->node, pname, &pd);
    if ((ns >= 0 && ns != 2) || (np >= 0 && np != 4))
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "%s must have 2 values and %s 4", sname, pname);
    for (int i = 0; i < 2 && ns == 2; i++) s[i] = st[i];
    for (int i = 0; i < 4 && np == 4; i++) p[i] = pd[i];
    if (s[0] < 1 || s[1] < 1 || p[0] < 0 || p[1] < 0 || p[2] < 0 || p[3] < 0)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "%s must be >= 1 and %s >= 0", sname, pname);
    return KILN_OK;
}

/* Spatial dims 2 and 3 of out from in's, kernel k's (dims 2, 3), strides s
 * and pads p (dilation 1); unknown where an input is. */
static kiln_status conv_spatial(kl_infer_ctx *c, const kl_shape *in, const kl_shape *k, const int64_t s[2],
                                const int64_t p[4], kl_shape *out) {
    for (int i = 0; i < 2; i++) {
        const kl_dim *d = &in->dims[2 + i], *kd = &k->dims[2 + i];
        if (!kl_dim_is_known(d) || !kl_dim_is_known(kd)) {
            out->dims[2 + i] = kl_dim_unknown();
            continue;
        }
        int64_t span = d->value + p[i] + p[i + 2] - kd->value;
        if (span < 0) return kl_infer_fail(c, KILN_ERR_SHAPE, "kernel larger than the padded input");
        out->dims[2 + i] = kl_dim_known(span / s[i] + 1);
    }
    return KILN_OK;
}

/* FusedConvDw: X [N, C, H, W], W1 [M, C, KH1, KW1] (a 1x1 expansion, or a
 * stem with expand_strides and expand_pads), W2 [M, 1, KH, KW]; the first
 * layer's output T [N, M, H1, W1] and Y [N, M, OH, OW] from strides and
 * pads (dilation 1). */
static kiln_status infer_fused_conv_dw(kl_infer_ctx *c) {
    KL_TRY(check_act(c));
    int64_t ea = kl_node_attr_int(c->node, "expand_activation", 0);
    if (ea < 0 || ea >= KL_ACT_COUNT)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "expand_activation is %lld, not a kiln activation",
                             (long long)ea);
    kiln_dtype xt = kl_infer_input_dtype(c, 0);
    for (size_t i = 1; i < 5; i++) {
        kiln_dtype t = kl_infer_input_dtype(c, i);
        if (xt && t && t != xt)
            return kl_infer_fail(c, KILN_ERR_TYPE, "input %zu is %s but X is %s", i, kiln_dtype_name(t),
                                 kiln_dtype_name(xt));
    }
    const kl_shape *x = kl_infer_input_shape(c, 0), *w1 = kl_infer_input_shape(c, 1), *w2 = kl_infer_input_shape(c, 3);
    if ((x && x->rank != 4) || (w1 && w1->rank != 4) || (w2 && w2->rank != 4))
        return kl_infer_fail(c, KILN_ERR_SHAPE, "X, W1 and W2 must have rank 4");
    if (!x || !w1 || !w2) return kl_infer_set_output(c, 0, xt, NULL);
    if (kl_dim_is_known(&x->dims[1]) && kl_dim_is_known(&w1->dims[1]) && x->dims[1].value != w1->dims[1].value)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "X has %lld channels, W1 takes %lld", (long long)x->dims[1].value,
                             (long long)w1->dims[1].value);
    if ((kl_dim_is_known(&w2->dims[1]) && w2->dims[1].value != 1) ||
        (kl_dim_is_known(&w1->dims[0]) && kl_dim_is_known(&w2->dims[0]) && w1->dims[0].value != w2->dims[0].value))
        return kl_infer_fail(c, KILN_ERR_SHAPE, "W1 must be [M, C, KH1, KW1] and W2 [M, 1, KH, KW]");
    int64_t es[2], ep[4], s[2], p[4];
    KL_TRY(conv_geometry(c, "expand_strides", "expand_pads", es, ep));
    KL_TRY(conv_geometry(c, "strides", "pads", s, p));
    kl_shape t, out;
    KL_TRY(kl_infer_shape_new(c, 4, &t));
    KL_TRY(conv_spatial(c, x, w1, es, ep, &t));
    KL_TRY(kl_infer_shape_new(c, 4, &out));
    out.dims[0] = x->dims[0];
    out.dims[1] = w2->dims[0];
    KL_TRY(conv_spatial(c, &t, w2, s, p, &out));
    return kl_infer_set_output(c, 0, xt, &out);
}

/* ScaledConv: X [N, C, H, W], S [N or 1, C, 1, 1], W [M, C, 1, 1], B [M],
 * Z; Y = act(Conv1x1(X * S, W, B) + Z) is [N, M, H, W]. */
static kiln_status infer_scaled_conv(kl_infer_ctx *c) {
    KL_TRY(check_act(c));
    kiln_dtype xt = kl_infer_input_dtype(c, 0);
    for (size_t i = 1; i < 4; i++) {
        kiln_dtype t = kl_infer_input_dtype(c, i);
        if (xt && t && t != xt)
            return kl_infer_fail(c, KILN_ERR_TYPE, "input %zu is %s but X is %s", i, kiln_dtype_name(t),
                                 kiln_dtype_name(xt));
    }
    const kl_shape *x = kl_infer_input_shape(c, 0), *sc = kl_infer_input_shape(c, 1), *w = kl_infer_input_shape(c, 2),
                   *b = kl_infer_input_shape(c, 3);
    if ((x && x->rank != 4) || (sc && sc->rank != 4) || (w && w->rank != 4) || (b && b->rank != 1))
        return kl_infer_fail(c, KILN_ERR_SHAPE, "X, S and W must have rank 4, B rank 1");
    if (!x || !w) return kl_infer_set_output(c, 0, xt, NULL);
    const kl_dim *C = &x->dims[1];
    if ((kl_dim_is_known(C) && kl_dim_is_known(&w->dims[1]) && C->value != w->dims[1].value) ||
        (kl_dim_is_known(&w->dims[2]) && w->dims[2].value != 1) || (kl_dim_is_known(&w->dims[3]) && w->dims[3].value != 1))
        return kl_infer_fail(c, KILN_ERR_SHAPE, "W must be [M, C, 1, 1] for X's C channels");
    if (sc) {
        bool bad = (kl_dim_is_known(&sc->dims[2]) && sc->dims[2].value != 1) ||
                   (kl_dim_is_known(&sc->dims[3]) && sc->dims[3].value != 1) ||
                   (kl_dim_is_known(&sc->dims[1]) && kl_dim_is_known(C) && sc->dims[1].value != C->value) ||
                   (kl_dim_is_known(&sc->dims[0]) && kl_dim_is_known(&x->dims[0]) && sc->dims[0].value != 1 &&
                    sc->dims[0].value != x->dims[0].value);
        if (bad) return kl_infer_fail(c, KILN_ERR_SHAPE, "S must be [N or 1, C, 1, 1]");
    }
    if (b && kl_dim_is_known(&b->dims[0]) && kl_dim_is_known(&w->dims[0]) && b->dims[0].value != w->dims[0].value)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "B has %lld values for %lld output channels",
                             (long long)b->dims[0].value, (long long)w->dims[0].value);
    kl_shape out;
    KL_TRY(kl_infer_shape_new(c, 4, &out));
    out.dims[0] = x->dims[0];
    out.dims[1] = w->dims[0];
    out.dims[2] = x->dims[2];
    out.dims[3] = x->dims[3];
    KL_TRY(kl_infer_set_output(c, 0, xt, &out));
    return check_z(c, 4);
}

/* ---- the blocked layout (NCHWc, c = 16; src/passes/layout.c) ---- */

#define KL_NCHWC_BLOCK 16

static kl_dim blocks_of(kl_dim c) {
    return kl_dim_is_known(&c) ? kl_dim_known((c.value + KL_NCHWC_BLOCK - 1) / KL_NCHWC_BLOCK) : kl_dim_unknown();
}

/* ReorderNchwc: X [N, C, H, W] -> [N, ceil(C/16), H, W, 16]. */
static kiln_status infer_reorder_nchwc(kl_infer_ctx *c) {
    kiln_dtype xt = kl_infer_input_dtype(c, 0);
    const kl_shape *x = kl_infer_input_shape(c, 0);
    if (x && x->rank != 4) return kl_infer_fail(c, KILN_ERR_SHAPE, "X must have rank 4, has %d", x->rank);
    if (!x) return kl_infer_set_output(c, 0, xt, NULL);
    kl_shape out;
    KL_TRY(kl_infer_shape_new(c, 5, &out));
    out.dims[0] = x->dims[0];
    out.dims[1] = blocks_of(x->dims[1]);
    out.dims[2] = x->dims[2];
    out.dims[3] = x->dims[3];
    out.dims[4] = kl_dim_known(KL_NCHWC_BLOCK);
    return kl_infer_set_output(c, 0, xt, &out);
}

/* ReorderNchw: X [N, Cb, H, W, 16] and channels C -> [N, C, H, W]. */
static kiln_status infer_reorder_nchw(kl_infer_ctx *c) {
    kiln_dtype xt = kl_infer_input_dtype(c, 0);
    int64_t C = kl_node_attr_int(c->node, "channels", -1);
    if (C < 1) return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "channels must be given and >= 1");
    const kl_shape *x = kl_infer_input_shape(c, 0);
    if (x && (x->rank != 5 || (kl_dim_is_known(&x->dims[4]) && x->dims[4].value != KL_NCHWC_BLOCK)))
        return kl_infer_fail(c, KILN_ERR_SHAPE, "X must be [N, Cb, H, W, 16]");
    if (x && kl_dim_is_known(&x->dims[1]) && x->dims[1].value != (C + KL_NCHWC_BLOCK - 1) / KL_NCHWC_BLOCK)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "X has %lld blocks, %lld channels need %lld",
                             (long long)x->dims[1].value, (long long)C,
                             (long long)((C + KL_NCHWC_BLOCK - 1) / KL_NCHWC_BLOCK));
    if (!x) return kl_infer_set_output(c, 0, xt, NULL);
    kl_shape out;
    KL_TRY(kl_infer_shape_new(c, 4, &out));
    out.dims[0] = x->dims[0];
    out.dims[1] = kl_dim_known(C);
    out.dims[2] = x->dims[2];
    out.dims[3] = x->dims[3];
    return kl_infer_set_output(c, 0, xt, &out);
}

/* ConvNchwc: X [N, Cb, H, W, 16] (in_nchw: [N, C, H, W]), W [M, C/group,
 * KH, KW] (group 1, or C == M for depthwise), B [M], Z like Y; Y [N,
 * ceil(M/16), OH, OW, 16] from strides and pads (dilation 1). */
static kiln_status infer_conv_nchwc(kl_infer_ctx *c) {
    KL_TRY(check_act(c));
    kiln_dtype xt = kl_infer_input_dtype(c, 0), wt = kl_infer_input_dtype(c, 1);
    if (xt && wt && xt != wt)
        return kl_infer_fail(c, KILN_ERR_TYPE, "X is %s but W is %s", kiln_dtype_name(xt), kiln_dtype_name(wt));
    bool nchw = kl_node_attr_int(c->node, "in_nchw", 0) != 0;
    int64_t group = kl_node_attr_int(c->node, "group", 1);
    const kl_shape *x = kl_infer_input_shape(c, 0), *w = kl_infer_input_shape(c, 1);
    if ((x && x->rank != (nchw ? 4 : 5)) || (w && w->rank != 4))
        return kl_infer_fail(c, KILN_ERR_SHAPE, "X must have rank %d and W rank 4", nchw ? 4 : 5);
    if (!x || !w) return kl_infer_set_output(c, 0, xt, NULL);
    if (group < 1 || (group > 1 && (nchw || !kl_dim_is_known(&w->dims[0]) || w->dims[0].value != group ||
                                    (kl_dim_is_known(&w->dims[1]) && w->dims[1].value != 1))))
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "group must be 1 or the channel count (depthwise)");
    kl_dim C = kl_dim_is_known(&w->dims[1]) ? kl_dim_known(w->dims[1].value * group) : kl_dim_unknown();
    if (kl_dim_is_known(&C) && kl_dim_is_known(&x->dims[1])) {
        int64_t want = nchw ? C.value : (C.value + KL_NCHWC_BLOCK - 1) / KL_NCHWC_BLOCK;
        if (x->dims[1].value != want)
            return kl_infer_fail(c, KILN_ERR_SHAPE, "X dim 1 is %lld, W takes %lld channels (%lld)",
                                 (long long)x->dims[1].value, (long long)C.value, (long long)want);
    }
    int64_t s[2], p[4];
    KL_TRY(conv_geometry(c, "strides", "pads", s, p));
    kl_shape out;
    KL_TRY(kl_infer_shape_new(c, 5, &out));
    out.dims[0] = x->dims[0];
    out.dims[1] = blocks_of(w->dims[0]);
    KL_TRY(conv_spatial(c, x, w, s, p, &out));
    out.dims[4] = kl_dim_known(KL_NCHWC_BLOCK);
    KL_TRY(kl_infer_set_output(c, 0, xt, &out));
    return check_z(c, 3);
}

/* MaxPoolNchwc: X [N, Cb, H, W, 16], kernel_shape, strides, pads -> [N, Cb, OH, OW, 16]. */
static kiln_status infer_maxpool_nchwc(kl_infer_ctx *c) {
    kiln_dtype xt = kl_infer_input_dtype(c, 0);
    const kl_shape *x = kl_infer_input_shape(c, 0);
    const int64_t *k;
    if (kl_node_attr_ints(c->node, "kernel_shape", &k) != 2 || k[0] < 1 || k[1] < 1)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "kernel_shape must have 2 values >= 1");
    if (x && x->rank != 5) return kl_infer_fail(c, KILN_ERR_SHAPE, "X must be [N, Cb, H, W, 16]");
    int64_t s[2], p[4];
    KL_TRY(conv_geometry(c, "strides", "pads", s, p));
    if (!x) return kl_infer_set_output(c, 0, xt, NULL);
    kl_shape ks, out;
    KL_TRY(kl_infer_shape_new(c, 4, &ks));
    ks.dims[2] = kl_dim_known(k[0]);
    ks.dims[3] = kl_dim_known(k[1]);
    KL_TRY(kl_infer_shape_new(c, 5, &out));
    out.dims[0] = x->dims[0];
    out.dims[1] = x->dims[1];
    KL_TRY(conv_spatial(c, x, &ks, s, p, &out));
    out.dims[4] = x->dims[4];
    return kl_infer_set_output(c, 0, xt, &out);
}

#define OPT(n, t) {n, KL_ATTR_##t, false}
#define END {NULL, KL_ATTR_UNDEFINED, false}

static const kl_attr_spec fused_conv_attrs[] = {
    OPT("auto_pad", STRING), OPT("dilations", INTS), OPT("group", INT),
    OPT("kernel_shape", INTS), OPT("pads", INTS), OPT("strides", INTS),
    OPT("activation", INT), OPT("act_alpha", FLOAT), OPT("act_beta", FLOAT), END};
static const kl_attr_spec fused_conv_dw_attrs[] = {
    OPT("pads", INTS), OPT("strides", INTS), OPT("activation", INT), OPT("act_alpha", FLOAT), OPT("act_beta", FLOAT),
    OPT("expand_activation", INT), OPT("expand_act_alpha", FLOAT), OPT("expand_act_beta", FLOAT),
    OPT("expand_strides", INTS), OPT("expand_pads", INTS), END};
static const kl_attr_spec scaled_conv_attrs[] = {
    OPT("activation", INT), OPT("act_alpha", FLOAT), OPT("act_beta", FLOAT), END};
static const kl_attr_spec no_attrs[] = {END};
static const kl_attr_spec reorder_nchw_attrs[] = {OPT("channels", INT), END};
static const kl_attr_spec conv_nchwc_attrs[] = {
    OPT("pads", INTS), OPT("strides", INTS), OPT("group", INT), OPT("in_nchw", INT),
    OPT("activation", INT), OPT("act_alpha", FLOAT), OPT("act_beta", FLOAT), END};
static const kl_attr_spec maxpool_nchwc_attrs[] = {OPT("kernel_shape", INTS), OPT("pads", INTS), OPT("strides", INTS), END};
static const kl_attr_spec fused_gemm_attrs[] = {
    OPT("alpha", FLOAT), OPT("beta", FLOAT), OPT("transA", INT), OPT("transB", INT),
    OPT("activation", INT), OPT("act_alpha", FLOAT), OPT("act_beta", FLOAT), END};

const kl_op_schema kl_ops_kiln[] = {
    {KL_KILN_DOMAIN, "FusedConv", 1, 0, 2, 4, 1, 1, fused_conv_attrs, infer_fused_conv},
    {KL_KILN_DOMAIN, "FusedGemm", 1, 0, 2, 4, 1, 1, fused_gemm_attrs, infer_fused_gemm},
    {KL_KILN_DOMAIN, "FusedConvDw", 1, 0, 5, 5, 1, 1, fused_conv_dw_attrs, infer_fused_conv_dw},
    {KL_KILN_DOMAIN, "ScaledConv", 1, 0, 4, 5, 1, 1, scaled_conv_attrs, infer_scaled_conv},
    {KL_KILN_DOMAIN, "ReorderNchwc", 1, 0, 1, 1, 1, 1, no_attrs, infer_reorder_nchwc},
    {KL_KILN_DOMAIN, "ReorderNchw", 1, 0, 1, 1, 1, 1, reorder_nchw_attrs, infer_reorder_nchw},
    {KL_KILN_DOMAIN, "ConvNchwc", 1, 0, 2, 4, 1, 1, conv_nchwc_attrs, infer_conv_nchwc},
    {KL_KILN_DOMAIN, "MaxPoolNchwc", 1, 0, 1, 1, 1, 1, maxpool_nchwc_attrs, infer_maxpool_nchwc},
    {NULL, NULL, 0, 0, 0, 0, 0, 0, NULL, NULL},
};
