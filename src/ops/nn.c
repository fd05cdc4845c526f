/*
 * Schemas and shape inference of the nn family: convolutions, pooling,
 * matrix products (Gemm, MatMul, Einsum, Det), recurrent networks and the
 * attention operators.  Rows follow ONNX's own version boundaries; the
 * output-size rules follow onnx/defs/nn/defs.cc (convPoolShapeInference,
 * convTransposeShapeInference) so that inferred shapes agree with ONNX.
 */
#include <string.h>

#include "ops/infer_util.h"
#include "ops/ops.h"


#define KL_MAX_SPATIAL (KILN_MAX_RANK - 2)
/* Sizes, pads and kernels at or above this are left unknown rather than
 * risking overflow in the output-size arithmetic (no real model gets near). */
#define KL_DIM_LIMIT ((int64_t)1 << 40)

/* ---- small helpers ------------------------------------------------------------ */

/* True for a size safe to add and compare: 0 <= v < KL_DIM_LIMIT. */
static bool sane(int64_t v) { return v >= 0 && v < KL_DIM_LIMIT; }

/* True when output i exists and is not left out. */
static bool want_output(const kl_infer_ctx *c, size_t i) {
    return i < kl_infer_n_outputs(c) && c->node->outputs[i] != NULL;
}

/* Set output i only when the node has it. */
static kiln_status set_out(kl_infer_ctx *c, size_t i, kiln_dtype dt, const kl_shape *s) {
    return want_output(c, i) ? kl_infer_set_output(c, i, dt, s) : KILN_OK;
}

/* STRING attribute as a byte string, {NULL, 0} when absent or not a string. */
static kl_str str_attr(const kl_node *n, const char *name) {
    const kl_attr *a = kl_node_attr(n, name);
    kl_str none = {NULL, 0};
    return a && a->type == KL_ATTR_STRING ? a->s : none;
}

/* True when `s` spells `lit` exactly. */
static bool str_is(kl_str s, const char *lit) {
    size_t n = strlen(lit);
    return s.ptr && s.len == n && memcmp(s.ptr, lit, n) == 0;
}

/* The dimension known to be the more specific of two that must agree. */
static kl_dim dim_pick(const kl_dim *a, const kl_dim *b) {
    if (a && kl_dim_is_known(a)) return *a;
    if (b && kl_dim_is_known(b)) return *b;
    if (a && a->param) return *a;
    return b ? *b : kl_dim_unknown();
}

/* Dimension i of shape s, or unknown when s is NULL or too short. */
static kl_dim dim_at(const kl_shape *s, int i) {
    if (!s || i < 0 || i >= s->rank) return kl_dim_unknown();
    return s->dims[i];
}

/* Two dimensions that are known and different. */
static bool dims_conflict(const kl_dim *a, const kl_dim *b) {
    return kl_dim_is_known(a) && kl_dim_is_known(b) && a->value != b->value;
}

/* a / n when a is known and divisible, else unknown. */
static kl_dim dim_div(kl_dim a, int64_t n) {
    if (n == 1) return a;
    if (n > 0 && kl_dim_is_known(&a) && a.value % n == 0) return kl_dim_known(a.value / n);
    return kl_dim_unknown();
}

/* a * n (n >= 1), keeping a symbol when n == 1. */
static kl_dim dim_mul(kl_dim a, int64_t n) {
    int64_t v;
    if (n == 1) return a;
    if (n > 0 && kl_dim_is_known(&a) && !kl_mul_i64(a.value, n, &v)) return kl_dim_known(v);
    return kl_dim_unknown();
}

/* a + b, keeping a symbol when the other term is a known 0. */
static kl_dim dim_add(kl_dim a, kl_dim b) {
    int64_t v;
    if (kl_dim_is_known(&a) && kl_dim_is_known(&b))
        return kl_add_i64(a.value, b.value, &v) ? kl_dim_unknown() : kl_dim_known(v);
    if (kl_dim_is_known(&a) && a.value == 0) return b;
    if (kl_dim_is_known(&b) && b.value == 0) return a;
    return kl_dim_unknown();
}

/* Element types of inputs i and j (when given) must be equal. */
static kiln_status same_dtype(kl_infer_ctx *c, size_t i, size_t j) {
    kiln_dtype a = kl_infer_input_dtype(c, i), b = kl_infer_input_dtype(c, j);
    if (a != KILN_DTYPE_UNDEFINED && b != KILN_DTYPE_UNDEFINED && a != b)
        return kl_infer_fail(c, KILN_ERR_TYPE, "input %zu is %s but input %zu is %s", i,
                             kiln_dtype_name(a), j, kiln_dtype_name(b));
    return KILN_OK;
}

/* Every given input in [first, last) has input `ref`'s element type. */
static kiln_status same_dtype_from(kl_infer_ctx *c, size_t ref, size_t first, size_t last) {
    for (size_t i = first; i < last && i < kl_infer_n_inputs(c); i++)
        if (kl_infer_has_input(c, i)) KL_TRY(same_dtype(c, ref, i));
    return KILN_OK;
}

/* ---- convolution / pooling geometry ------------------------------------------- */

typedef enum { PAD_NOTSET, PAD_VALID, PAD_SAME_UPPER, PAD_SAME_LOWER } kl_autopad;

typedef struct kl_geom {
    int ns;                     /* number of spatial axes */
    int64_t k[KL_MAX_SPATIAL];  /* kernel size, -1 when unknown */
    int64_t s[KL_MAX_SPATIAL], d[KL_MAX_SPATIAL];
    int64_t pb[KL_MAX_SPATIAL], pe[KL_MAX_SPATIAL]; /* pads at begin / end */
    bool has_pads;              /* "pads" given (it wins over auto_pad, as in ONNX) */
    kl_autopad autopad;
    bool ceil;
} kl_geom;

/* Read INTS attribute `name` of exactly `n` values, each >= lo, into out
 * (left as is when absent).  A wrong count or value is an error. */
static kiln_status read_ints(kl_infer_ctx *c, const char *name, int n, int64_t lo, int64_t *out,
                             bool *present) {
    const int64_t *v;
    int64_t cnt = kl_node_attr_ints(c->node, name, &v);
    if (present) *present = cnt >= 0;
    if (cnt < 0) return KILN_OK;
    if (cnt != n)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "attribute '%s' has %lld values, expected %d", name, (long long)cnt,
                             n);
    for (int i = 0; i < n; i++) {
        if (v[i] < lo)
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                                 "attribute '%s' value %lld is below %lld", name,
                                 (long long)v[i], (long long)lo);
        out[i] = v[i];
    }
    return KILN_OK;
}

/* Parse auto_pad (absent or "" = NOTSET). */
static kiln_status read_autopad(kl_infer_ctx *c, kl_autopad *out) {
    kl_str s = str_attr(c->node, "auto_pad");
    if (!s.ptr || s.len == 0 || str_is(s, "NOTSET")) *out = PAD_NOTSET;
    else if (str_is(s, "VALID")) *out = PAD_VALID;
    else if (str_is(s, "SAME_UPPER")) *out = PAD_SAME_UPPER;
    else if (str_is(s, "SAME_LOWER")) *out = PAD_SAME_LOWER;
    else
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "auto_pad '%.*s' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID",
                             (int)KL_MIN(s.len, 64), s.ptr);
    return KILN_OK;
}

/* Fill g for `ns` spatial axes: kernel from kernel_shape or else from the
 * weight's dims 2.. (w may be NULL), strides, dilations, pads, auto_pad,
 * ceil_mode.  Attribute values that break the op's rules are errors. */
static kiln_status read_geom(kl_infer_ctx *c, int ns, const kl_shape *w, kl_geom *g) {
    bool have_k;
    memset(g, 0, sizeof *g);
    g->ns = ns;
    for (int i = 0; i < ns; i++) {
        g->k[i] = -1;
        g->s[i] = g->d[i] = 1;
    }
    KL_TRY(read_ints(c, "kernel_shape", ns, 1, g->k, &have_k));
    for (int i = 0; i < ns && w && w->rank == ns + 2; i++) {
        const kl_dim *wd = &w->dims[2 + i];
        if (!have_k) g->k[i] = wd->value;
        else if (kl_dim_is_known(wd) && wd->value != g->k[i])
            return kl_infer_fail(c, KILN_ERR_SHAPE,
                                 "kernel_shape[%d] is %lld but W has %lld on that axis", i,
                                 (long long)g->k[i], (long long)wd->value);
    }
    KL_TRY(read_ints(c, "strides", ns, 1, g->s, NULL));
    KL_TRY(read_ints(c, "dilations", ns, 1, g->d, NULL));
    int64_t pads[2 * KL_MAX_SPATIAL] = {0};
    KL_TRY(read_ints(c, "pads", 2 * ns, 0, pads, &g->has_pads));
    for (int i = 0; i < ns; i++) {
        g->pb[i] = pads[i];
        g->pe[i] = pads[ns + i];
    }
    KL_TRY(read_autopad(c, &g->autopad));
    g->ceil = kl_node_attr_int(c->node, "ceil_mode", 0) != 0;
    return KILN_OK;
}

/* Effective kernel extent (k-1)*d+1 for axis i, or -1 if unknown/overflow. */
static int64_t eff_kernel(const kl_geom *g, int i) {
    int64_t e;
    if (g->k[i] < 1 || kl_mul_i64(g->k[i] - 1, g->d[i], &e) || kl_add_i64(e, 1, &e)) return -1;
    return e;
}

/* Output size of spatial axis i of a convolution or pooling window sliding
 * over `in`, as ONNX's convPoolShapeInference: SAME pads from the input's
 * residual modulo the stride, floor or ceil division, and in ceil_mode a
 * last window starting in the right padding is dropped (as PyTorch). */
static kiln_status window_out(kl_infer_ctx *c, const kl_geom *g, int i, const kl_dim *in,
                              kl_dim *out) {
    int64_t s = g->s[i], ek = eff_kernel(g, i), pb = 0, pe = 0, ein, o;
    bool same = !g->has_pads && (g->autopad == PAD_SAME_UPPER || g->autopad == PAD_SAME_LOWER);
    *out = kl_dim_unknown();
    if (same && !kl_dim_is_known(in)) {
        if (s == 1) *out = *in; /* pads ek-1 in total: the size is kept */
        return KILN_OK;
    }
    if (same && ek < 0) { /* without ceil_mode SAME is ceil(in / stride) whatever the kernel */
        if (!g->ceil) *out = kl_dim_known(in->value / s + (in->value % s != 0));
        return KILN_OK;
    }
    if (!sane(s) || (ek >= 0 && !sane(ek)) || (kl_dim_is_known(in) && !sane(in->value)))
        return KILN_OK;
    if (same) {
        int64_t r = in->value % s, total = KL_MAX(r == 0 ? ek - s : ek - r, 0);
        pb = g->autopad == PAD_SAME_UPPER ? total / 2 : total - total / 2;
        pe = total - pb;
    } else if (g->has_pads || g->autopad == PAD_NOTSET) {
        pb = g->pb[i];
        pe = g->pe[i];
    }
    if (ek < 0 || !sane(pb) || !sane(pe)) return KILN_OK;
    if (!kl_dim_is_known(in)) {
        if (s == 1 && pb + pe == ek - 1) *out = *in;
        return KILN_OK;
    }
    ein = in->value + pb + pe;
    if (ein < ek)
        return kl_infer_fail(c, KILN_ERR_SHAPE,
                             "spatial axis %d: the window (%lld with dilation) is larger than "
                             "the input (%lld with padding)",
                             i, (long long)ek, (long long)ein);
    o = (g->ceil ? (ein - ek + s - 1) / s : (ein - ek) / s) + 1;
    if (g->ceil && (o - 1) * s >= in->value + pb) o--;
    *out = kl_dim_known(o);
    return KILN_OK;
}

/* Number of spatial axes for an N,C,spatial... tensor of `rank`; errors when
 * the rank cannot be one. */
static kiln_status spatial_count(kl_infer_ctx *c, int rank, int *ns) {
    if (rank < 2)
        return kl_infer_fail(c, KILN_ERR_SHAPE,
                             "input has rank %d, expected at least 2 (N, C, spatial...)", rank);
    if (rank - 2 > KL_MAX_SPATIAL)
        return kl_infer_fail(c, KILN_ERR_UNSUPPORTED, "input has rank %d, at most %d supported",
                             rank, KILN_MAX_RANK);
    *ns = rank - 2;
    return KILN_OK;
}

/* Rank implied by input x, else weight w, else kernel_shape; -1 if none. */
static int conv_rank(const kl_infer_ctx *c, const kl_shape *x, const kl_shape *w) {
    const int64_t *v;
    int64_t n;
    if (x) return x->rank;
    if (w) return w->rank;
    n = kl_node_attr_ints(c->node, "kernel_shape", &v);
    return n >= 0 && n <= KL_MAX_SPATIAL ? (int)n + 2 : -1;
}

/* Group count (attribute "group", default 1) must be positive. */
static kiln_status read_group(kl_infer_ctx *c, int64_t *group) {
    *group = kl_node_attr_int(c->node, "group", 1);
    if (*group < 1)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "group is %lld, must be >= 1",
                             (long long)*group);
    return KILN_OK;
}

/* Conv-style output 0: [N, W.dim0, spatial...] from input x and weight w;
 * checks X channels == W.dim1 * group.  Used by Conv, DeformConv,
 * ConvInteger and QLinearConv. */
kiln_status kl_infer_conv_like(kl_infer_ctx *c, size_t xi, size_t wi, kiln_dtype dt) {
    const kl_shape *x = kl_infer_input_shape(c, xi), *w = kl_infer_input_shape(c, wi);
    int rank = conv_rank(c, x, w), ns;
    int64_t group;
    kl_geom g;
    kl_shape out;
    if (rank < 0) return kl_infer_set_output(c, 0, dt, NULL);
    if (x && w && x->rank != w->rank)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "X has rank %d but W has rank %d", x->rank,
                             w->rank);
    KL_TRY(spatial_count(c, rank, &ns));
    KL_TRY(read_group(c, &group));
    kl_dim xc = dim_at(x, 1), wc = dim_at(w, 1), wm = dim_at(w, 0);
    if (kl_dim_is_known(&xc) && kl_dim_is_known(&wc) && xc.value != wc.value * group)
        return kl_infer_fail(c, KILN_ERR_SHAPE,
                             "input X has %lld channels but W expects %lld (W dim 1 = %lld x "
                             "group %lld)",
                             (long long)xc.value, (long long)(wc.value * group),
                             (long long)wc.value, (long long)group);
    if (kl_dim_is_known(&wm) && wm.value % group != 0)
        return kl_infer_fail(c, KILN_ERR_SHAPE,
                             "W has %lld output channels, not a multiple of group %lld",
                             (long long)wm.value, (long long)group);
    KL_TRY(read_geom(c, ns, w, &g));
    KL_TRY(kl_infer_shape_new(c, rank, &out));
    out.dims[0] = dim_at(x, 0);
    out.dims[1] = wm;
    for (int i = 0; i < ns; i++) {
        kl_dim in = dim_at(x, 2 + i);
        KL_TRY(window_out(c, &g, i, &in, &out.dims[2 + i]));
    }
    return kl_infer_set_output(c, 0, dt, &out);
}

/* Conv, DeformConv. */
static kiln_status infer_conv(kl_infer_ctx *c) {
    KL_TRY(same_dtype_from(c, 0, 1, 5));
    return kl_infer_conv_like(c, 0, 1, kl_infer_input_dtype(c, 0));
}

/* ConvTranspose: [N, W.dim1 * group, spatial...]; spatial from output_shape
 * or stride*(in-1) + output_padding + eff_kernel - pads. */
static kiln_status infer_conv_transpose(kl_infer_ctx *c) {
    const kl_shape *x = kl_infer_input_shape(c, 0), *w = kl_infer_input_shape(c, 1);
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    int rank = conv_rank(c, x, w), ns;
    int64_t group, opad[KL_MAX_SPATIAL] = {0};
    const int64_t *oshape;
    kl_geom g;
    kl_shape out;
    KL_TRY(same_dtype_from(c, 0, 1, 3));
    if (rank < 0) return kl_infer_set_output(c, 0, dt, NULL);
    if (x && w && x->rank != w->rank)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "X has rank %d but W has rank %d", x->rank,
                             w->rank);
    KL_TRY(spatial_count(c, rank, &ns));
    KL_TRY(read_group(c, &group));
    kl_dim xc = dim_at(x, 1), wc = dim_at(w, 0);
    if (dims_conflict(&xc, &wc))
        return kl_infer_fail(c, KILN_ERR_SHAPE, "input X has %lld channels but W dim 0 is %lld",
                             (long long)xc.value, (long long)wc.value);
    if (kl_dim_is_known(&wc) && wc.value % group != 0)
        return kl_infer_fail(c, KILN_ERR_SHAPE,
                             "W has %lld input channels, not a multiple of group %lld",
                             (long long)wc.value, (long long)group);
    KL_TRY(read_geom(c, ns, w, &g));
    if (g.has_pads && g.autopad != PAD_NOTSET)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "attributes 'pads' and 'auto_pad' cannot be used together");
    KL_TRY(read_ints(c, "output_padding", ns, 0, opad, NULL));
    int64_t n_os = kl_node_attr_ints(c->node, "output_shape", &oshape);
    if (n_os >= 0 && n_os != ns && n_os != ns + 2)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "attribute 'output_shape' has %lld values, expected %d",
                             (long long)n_os, ns);
    KL_TRY(kl_infer_shape_new(c, rank, &out));
    out.dims[0] = dim_at(x, 0);
    out.dims[1] = dim_mul(dim_at(w, 1), group);
    for (int i = 0; i < ns; i++) {
        kl_dim in = dim_at(x, 2 + i);
        int64_t ek = eff_kernel(&g, i), pb = g.pb[i], pe = g.pe[i], o, t;
        if (n_os >= 0) {
            out.dims[2 + i] = kl_dim_known(oshape[n_os - ns + i]);
            continue;
        }
        if (ek < 0 || !sane(ek) || !sane(opad[i]) || !sane(pb) || !sane(pe)) continue;
        if (!g.has_pads) {
            pb = pe = 0;
            if (g.autopad == PAD_SAME_UPPER || g.autopad == PAD_SAME_LOWER) {
                int64_t total = KL_MAX(ek - g.s[i], 0);
                pb = g.autopad == PAD_SAME_UPPER ? total / 2 : total - total / 2;
                pe = total - pb;
            }
        }
        if (!kl_dim_is_known(&in)) {
            if (g.s[i] == 1 && opad[i] + ek - 1 - pb - pe == 0) out.dims[2 + i] = in;
            continue;
        }
        if (in.value < 1 || kl_mul_i64(g.s[i], in.value - 1, &o) ||
            kl_add_i64(o, opad[i] + ek, &o))
            continue;
        t = pb + pe;
        if (o - t < 1)
            return kl_infer_fail(c, KILN_ERR_SHAPE,
                                 "spatial axis %d: output size %lld is not positive", i,
                                 (long long)(o - t));
        out.dims[2 + i] = kl_dim_known(o - t);
    }
    return kl_infer_set_output(c, 0, dt, &out);
}

/* AveragePool, MaxPool (with optional int64 Indices), LpPool. */
static kiln_status infer_pool(kl_infer_ctx *c) {
    const kl_shape *x = kl_infer_input_shape(c, 0);
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    int rank = conv_rank(c, x, NULL), ns;
    kl_geom g;
    kl_shape out;
    if (rank < 0) {
        KL_TRY(set_out(c, 1, KILN_DTYPE_INT64, NULL));
        return kl_infer_set_output(c, 0, dt, NULL);
    }
    KL_TRY(spatial_count(c, rank, &ns));
    KL_TRY(read_geom(c, ns, NULL, &g));
    KL_TRY(kl_infer_shape_new(c, rank, &out));
    out.dims[0] = dim_at(x, 0);
    out.dims[1] = dim_at(x, 1);
    for (int i = 0; i < ns; i++) {
        kl_dim in = dim_at(x, 2 + i);
        KL_TRY(window_out(c, &g, i, &in, &out.dims[2 + i]));
    }
    KL_TRY(set_out(c, 1, KILN_DTYPE_INT64, &out));
    return kl_infer_set_output(c, 0, dt, &out);
}

/* GlobalAveragePool, GlobalMaxPool, GlobalLpPool: [N, C, 1, ...]. */
static kiln_status infer_global_pool(kl_infer_ctx *c) {
    const kl_shape *x = kl_infer_input_shape(c, 0);
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    int ns;
    kl_shape out;
    if (!x) return kl_infer_set_output(c, 0, dt, NULL);
    KL_TRY(spatial_count(c, x->rank, &ns));
    KL_TRY(kl_infer_shape_new(c, x->rank, &out));
    out.dims[0] = x->dims[0];
    out.dims[1] = x->dims[1];
    for (int i = 0; i < ns; i++) out.dims[2 + i] = kl_dim_known(1);
    return kl_infer_set_output(c, 0, dt, &out);
}

/* MaxUnpool: output_shape input when known, else (in-1)*stride + k - pads. */
static kiln_status infer_max_unpool(kl_infer_ctx *c) {
    const kl_shape *x = kl_infer_input_shape(c, 0), *os = kl_infer_input_shape(c, 2);
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    int64_t vals[KILN_MAX_RANK], n;
    int ns;
    kl_geom g;
    kl_shape out;
    if (kl_infer_has_input(c, 2)) {
        if (kl_infer_input_ints(c, 2, vals, KILN_MAX_RANK, &n)) {
            KL_TRY(kl_infer_shape_new(c, (int)n, &out));
            for (int i = 0; i < (int)n; i++)
                if (vals[i] >= 0) out.dims[i] = kl_dim_known(vals[i]);
            return kl_infer_set_output(c, 0, dt, &out);
        }
        if (os && os->rank == 1 && kl_dim_is_known(&os->dims[0]) &&
            os->dims[0].value <= KILN_MAX_RANK) {
            KL_TRY(kl_infer_shape_new(c, (int)os->dims[0].value, &out));
            return kl_infer_set_output(c, 0, dt, &out);
        }
        return kl_infer_set_output(c, 0, dt, NULL);
    }
    if (!x) return kl_infer_set_output(c, 0, dt, NULL);
    KL_TRY(spatial_count(c, x->rank, &ns));
    KL_TRY(read_geom(c, ns, NULL, &g));
    KL_TRY(kl_infer_shape_new(c, x->rank, &out));
    out.dims[0] = x->dims[0];
    out.dims[1] = x->dims[1];
    for (int i = 0; i < ns; i++) {
        const kl_dim *in = &x->dims[2 + i];
        int64_t o;
        if (!kl_dim_is_known(in) || in->value < 1 || !sane(g.k[i]) || !sane(g.pb[i]) ||
            !sane(g.pe[i]) || kl_mul_i64(in->value - 1, g.s[i], &o) || o >= KL_DIM_LIMIT)
            continue;
        o += g.k[i] - g.pb[i] - g.pe[i];
        if (o < 1)
            return kl_infer_fail(c, KILN_ERR_SHAPE,
                                 "spatial axis %d: output size %lld is not positive", i,
                                 (long long)o);
        out.dims[2 + i] = kl_dim_known(o);
    }
    return kl_infer_set_output(c, 0, dt, &out);
}

/* MaxRoiPool: [num_rois, C, pooled_h, pooled_w]. */
static kiln_status infer_max_roi_pool(kl_infer_ctx *c) {
    const kl_shape *x = kl_infer_input_shape(c, 0), *r = kl_infer_input_shape(c, 1);
    int64_t ps[2] = {-1, -1};
    kl_shape out;
    if (x && x->rank != 4)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "X has rank %d, expected 4", x->rank);
    if (r && r->rank != 2)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "rois has rank %d, expected 2", r->rank);
    KL_TRY(read_ints(c, "pooled_shape", 2, 1, ps, NULL));
    KL_TRY(kl_infer_shape_new(c, 4, &out));
    out.dims[0] = dim_at(r, 0);
    out.dims[1] = dim_at(x, 1);
    for (int i = 0; i < 2; i++)
        if (ps[i] > 0) out.dims[2 + i] = kl_dim_known(ps[i]);
    return kl_infer_set_output(c, 0, kl_infer_input_dtype(c, 0), &out);
}

/* ---- matrix products ---------------------------------------------------------- */

/* Numpy matmul of inputs a and b (1-D operands promoted and removed again,
 * batch dimensions broadcast); inner dimensions must agree. */
kiln_status kl_infer_matmul_like(kl_infer_ctx *c, size_t ai, size_t bi, kiln_dtype dt) {
    const kl_shape *a = kl_infer_input_shape(c, ai), *b = kl_infer_input_shape(c, bi);
    char sa[128], sb[128];
    kl_shape out, batch = {0, NULL};
    if (!a || !b) return kl_infer_set_output(c, 0, dt, NULL);
    if (a->rank < 1 || b->rank < 1)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "operands must have rank >= 1, got %d and %d",
                             a->rank, b->rank);
    const kl_dim *ak = &a->dims[a->rank - 1];
    const kl_dim *bk = &b->dims[b->rank >= 2 ? b->rank - 2 : 0];
    if (dims_conflict(ak, bk))
        return kl_infer_fail(c, KILN_ERR_SHAPE,
                             "inner dimensions do not match: %lld vs %lld (A is %s, B is %s)",
                             (long long)ak->value, (long long)bk->value,
                             kl_shape_format(a, sa, sizeof sa), kl_shape_format(b, sb, sizeof sb));
    kl_shape ab = {KL_MAX(a->rank - 2, 0), a->dims}, bb = {KL_MAX(b->rank - 2, 0), b->dims};
    if (ab.rank > 0 || bb.rank > 0) KL_TRY(kl_infer_broadcast(c, &ab, &bb, &batch));
    if (batch.rank < 0) return kl_infer_set_output(c, 0, dt, NULL);
    int rank = batch.rank + (a->rank >= 2) + (b->rank >= 2), r = batch.rank;
    KL_TRY(kl_infer_shape_new(c, rank, &out));
    for (int i = 0; i < batch.rank; i++) out.dims[i] = batch.dims[i];
    if (a->rank >= 2) out.dims[r++] = a->dims[a->rank - 2];
    if (b->rank >= 2) out.dims[r] = b->dims[b->rank - 1];
    return kl_infer_set_output(c, 0, dt, &out);
}

/* MatMul. */
static kiln_status infer_matmul(kl_infer_ctx *c) {
    KL_TRY(same_dtype(c, 0, 1));
    return kl_infer_matmul_like(c, 0, 1, kl_infer_input_dtype(c, 0));
}

/* Gemm: Y[M, N] = op(A)[M, K] x op(B)[K, N] (+ C broadcast to [M, N]). */
static kiln_status infer_gemm(kl_infer_ctx *c) {
    const kl_shape *a = kl_infer_input_shape(c, 0), *b = kl_infer_input_shape(c, 1);
    const kl_shape *cs = kl_infer_input_shape(c, 2);
    bool ta = kl_node_attr_int(c->node, "transA", 0) != 0;
    bool tb = kl_node_attr_int(c->node, "transB", 0) != 0;
    kl_shape out;
    KL_TRY(same_dtype_from(c, 0, 1, 3));
    if (a && a->rank != 2)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "A has rank %d, expected 2", a->rank);
    if (b && b->rank != 2)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "B has rank %d, expected 2", b->rank);
    kl_dim m = dim_at(a, ta ? 1 : 0), ka = dim_at(a, ta ? 0 : 1);
    kl_dim kb = dim_at(b, tb ? 1 : 0), n = dim_at(b, tb ? 0 : 1);
    if (dims_conflict(&ka, &kb))
        return kl_infer_fail(c, KILN_ERR_SHAPE,
                             "inner dimensions do not match: %lld vs %lld (transA=%d, transB=%d)",
                             (long long)ka.value, (long long)kb.value, ta, tb);
    bool bcast = c->node->opset >= 7 || kl_node_attr_int(c->node, "broadcast", 0) != 0;
    if (cs && bcast) {
        if (cs->rank > 2)
            return kl_infer_fail(c, KILN_ERR_SHAPE, "C has rank %d, expected at most 2",
                                 cs->rank);
        for (int i = 0; i < cs->rank; i++) {
            const kl_dim *cd = &cs->dims[i], *td = cs->rank - i == 2 ? &m : &n;
            if (dims_conflict(cd, td) && cd->value != 1)
                return kl_infer_fail(c, KILN_ERR_SHAPE,
                                     "C dimension %d is %lld, cannot broadcast to %lld", i,
                                     (long long)cd->value, (long long)td->value);
        }
    }
    KL_TRY(kl_infer_shape_new(c, 2, &out));
    out.dims[0] = m;
    out.dims[1] = n;
    return kl_infer_set_output(c, 0, kl_infer_input_dtype(c, 0), &out);
}

/* Merge dimension d into acc where both name the same axis and size-1
 * broadcasting is allowed; known sizes that differ (neither 1) conflict. */
static bool dim_merge_bcast(kl_dim *acc, const kl_dim *d) {
    if (kl_dim_is_known(acc) && kl_dim_is_known(d)) {
        if (acc->value == d->value || d->value == 1) return true;
        if (acc->value == 1) {
            *acc = *d;
            return true;
        }
        return false;
    }
    if (kl_dim_is_known(acc) && acc->value > 1) return true;
    if (kl_dim_is_known(d) && d->value > 1) {
        *acc = *d;
        return true;
    }
    if (kl_dim_is_known(acc)) { /* acc == 1 (or 0), d unknown */
        if (acc->value == 1) *acc = *d;
        return true;
    }
    if (!kl_dim_is_known(d) && !kl_dim_same(acc, d)) *acc = kl_dim_unknown();
    return true;
}

/* Index 0..51 of an Einsum label (A-Z, a-z in ASCII order), -1 otherwise. */
static int einsum_label(char ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return 26 + (ch - 'a');
    return -1;
}

/* The letter of label index l (0..51). */
static char einsum_char(int l) {
    return l < 26 ? (char)('A' + l) : (char)('a' + (l - 26));
}

typedef struct kl_einsum_term {
    int labels[KILN_MAX_RANK * 4]; /* label indices; -2 marks the ellipsis */
    int n;                         /* entries in labels (ellipsis counts 1) */
    bool ell;
} kl_einsum_term;

/* Parse one Einsum term (letters, at most one "...", spaces) from
 * [p, end) into t. */
static kiln_status einsum_term(kl_infer_ctx *c, const char *p, const char *end,
                               kl_einsum_term *t) {
    t->n = 0;
    t->ell = false;
    while (p < end) {
        if (*p == ' ') {
            p++;
            continue;
        }
        if (t->n == (int)KL_ARRAY_LEN(t->labels))
            return kl_infer_fail(c, KILN_ERR_UNSUPPORTED, "equation term has too many labels");
        if (*p == '.') {
            if (end - p < 3 || p[1] != '.' || p[2] != '.' || t->ell)
                return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                                     "equation has a malformed ellipsis");
            t->ell = true;
            t->labels[t->n++] = -2;
            p += 3;
            continue;
        }
        int l = einsum_label(*p);
        if (l < 0)
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                                 "equation has character '%c', expected letters, ',', '->' or "
                                 "'...'",
                                 *p);
        t->labels[t->n++] = l;
        p++;
    }
    return KILN_OK;
}

/* Einsum: output from the equation (explicit "->" or numpy's implicit form:
 * broadcast ellipsis dims, then labels seen once in alphabetical order). */
static kiln_status infer_einsum(kl_infer_ctx *c) {
    kl_str eq = str_attr(c->node, "equation");
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    kl_dim ldim[52], ell[KILN_MAX_RANK];
    int lcount[52] = {0}, ell_rank = 0;
    bool any_ell = false, ell_unknown = false;
    kl_einsum_term t;
    kl_shape out;
    if (!eq.ptr) return kl_infer_set_output(c, 0, dt, NULL);
    KL_TRY(same_dtype_from(c, 0, 1, kl_infer_n_inputs(c)));
    for (int i = 0; i < 52; i++) ldim[i] = kl_dim_unknown();
    const char *p = eq.ptr, *end = eq.ptr + eq.len, *arrow = NULL;
    for (const char *q = p; q + 1 < end; q++)
        if (q[0] == '-' && q[1] == '>') {
            arrow = q;
            break;
        }
    const char *lhs_end = arrow ? arrow : end;
    size_t n_in = kl_infer_n_inputs(c), k = 0;
    for (const char *q = p;; k++) {
        const char *comma = q;
        while (comma < lhs_end && *comma != ',') comma++;
        if (k >= n_in)
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                                 "equation has more terms than the node's %zu inputs", n_in);
        KL_TRY(einsum_term(c, q, comma, &t));
        const kl_shape *s = kl_infer_input_shape(c, k);
        int nlab = t.n - (t.ell ? 1 : 0), er = 0;
        if (s) {
            if (t.ell ? s->rank < nlab : s->rank != nlab)
                return kl_infer_fail(c, KILN_ERR_SHAPE,
                                     "equation term %zu has %d labels but input %zu has rank %d",
                                     k, nlab, k, s->rank);
            er = s->rank - nlab;
        }
        if (t.ell) {
            any_ell = true;
            if (!s) ell_unknown = true;
            if (er > KILN_MAX_RANK)
                return kl_infer_fail(c, KILN_ERR_UNSUPPORTED, "ellipsis covers too many axes");
            /* right-align this term's ellipsis dims with the accumulated ones */
            if (er > ell_rank) {
                memmove(ell + (er - ell_rank), ell, (size_t)ell_rank * sizeof *ell);
                for (int j = 0; j < er - ell_rank; j++) ell[j] = kl_dim_known(1);
                ell_rank = er;
            }
        }
        for (int j = 0, pos = 0; j < t.n; j++) {
            if (t.labels[j] == -2) {
                for (int e = 0; e < er; e++)
                    if (!dim_merge_bcast(&ell[ell_rank - er + e], &s->dims[pos + e]))
                        return kl_infer_fail(c, KILN_ERR_SHAPE,
                                             "ellipsis dimensions of input %zu do not broadcast",
                                             k);
                pos += er;
                continue;
            }
            int l = t.labels[j];
            if (s) {
                const kl_dim *d = &s->dims[pos];
                if (lcount[l] == 0) ldim[l] = *d;
                else if (!dim_merge_bcast(&ldim[l], d))
                    return kl_infer_fail(c, KILN_ERR_SHAPE,
                                         "label '%c' is %lld in one input and %lld in input %zu",
                                         einsum_char(l),
                                         (long long)ldim[l].value, (long long)d->value, k);
            }
            lcount[l]++;
            pos++;
        }
        if (comma >= lhs_end) break;
        q = comma + 1;
    }
    if (k + 1 != n_in)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "equation has %zu terms but the node has %zu inputs", k + 1, n_in);
    if (arrow) {
        KL_TRY(einsum_term(c, arrow + 2, end, &t));
    } else { /* implicit output */
        t.n = 0;
        t.ell = any_ell;
        if (any_ell) t.labels[t.n++] = -2;
        for (int l = 0; l < 52; l++)
            if (lcount[l] == 1) t.labels[t.n++] = l;
    }
    if (t.ell && ell_unknown) return kl_infer_set_output(c, 0, dt, NULL);
    int rank = t.n - (t.ell ? 1 : 0) + (t.ell ? ell_rank : 0);
    if (rank > KILN_MAX_RANK)
        return kl_infer_fail(c, KILN_ERR_UNSUPPORTED, "output rank %d is too large", rank);
    KL_TRY(kl_infer_shape_new(c, rank, &out));
    for (int j = 0, pos = 0; j < t.n; j++) {
        int l = t.labels[j];
        if (l == -2) {
            for (int e = 0; e < ell_rank; e++) out.dims[pos++] = ell[e];
            continue;
        }
        if (lcount[l] == 0)
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                                 "output label '%c' does not appear in any input",
                                 einsum_char(l));
        out.dims[pos++] = ldim[l];
    }
    return kl_infer_set_output(c, 0, dt, &out);
}

/* Det: [*, M, M] -> [*]. */
static kiln_status infer_det(kl_infer_ctx *c) {
    const kl_shape *x = kl_infer_input_shape(c, 0);
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    kl_shape out;
    if (!x) return kl_infer_set_output(c, 0, dt, NULL);
    if (x->rank < 2)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "X has rank %d, expected at least 2", x->rank);
    if (dims_conflict(&x->dims[x->rank - 1], &x->dims[x->rank - 2]))
        return kl_infer_fail(c, KILN_ERR_SHAPE, "matrices are %lld x %lld, not square",
                             (long long)x->dims[x->rank - 2].value,
                             (long long)x->dims[x->rank - 1].value);
    KL_TRY(kl_infer_shape_new(c, x->rank - 2, &out));
    for (int i = 0; i < x->rank - 2; i++) out.dims[i] = x->dims[i];
    return kl_infer_set_output(c, 0, dt, &out);
}

/* ---- recurrent networks ------------------------------------------------------- */

/* RNN, GRU, LSTM: Y [seq, dirs, batch, hidden] (layout 1: [batch, seq, dirs,
 * hidden]); Y_h and Y_c [dirs, batch, hidden] (layout 1: [batch, dirs,
 * hidden]). */
static kiln_status infer_rnn(kl_infer_ctx *c) {
    const kl_shape *x = kl_infer_input_shape(c, 0), *w = kl_infer_input_shape(c, 1);
    const kl_shape *r = kl_infer_input_shape(c, 2);
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    kl_str dir = str_attr(c->node, "direction");
    int64_t layout = c->node->opset >= 14 ? kl_node_attr_int(c->node, "layout", 0) : 0;
    int64_t nd;
    kl_dim hidden;
    kl_shape y, yh;
    KL_TRY(same_dtype_from(c, 0, 1, 4));
    if (!dir.ptr || str_is(dir, "forward") || str_is(dir, "reverse")) nd = 1;
    else if (str_is(dir, "bidirectional")) nd = 2;
    else
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "direction '%.*s' is not forward, reverse or bidirectional",
                             (int)KL_MIN(dir.len, 64), dir.ptr);
    if (layout != 0 && layout != 1)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "layout is %lld, expected 0 or 1",
                             (long long)layout);
    if (x && x->rank != 3)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "X has rank %d, expected 3", x->rank);
    if (w && w->rank != 3)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "W has rank %d, expected 3", w->rank);
    if (r && r->rank != 3)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "R has rank %d, expected 3", r->rank);
    kl_dim wd = dim_at(w, 0);
    if (kl_dim_is_known(&wd) && wd.value != nd)
        return kl_infer_fail(c, KILN_ERR_SHAPE,
                             "W has %lld directions but direction implies %lld",
                             (long long)wd.value, (long long)nd);
    int64_t hs = kl_node_attr_int(c->node, "hidden_size", -1);
    if (kl_node_attr(c->node, "hidden_size") && hs < 1)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "hidden_size is %lld, must be >= 1",
                             (long long)hs);
    hidden = hs >= 1 ? kl_dim_known(hs) : dim_at(r, 2);
    kl_dim rh = dim_at(r, 2);
    if (dims_conflict(&hidden, &rh))
        return kl_infer_fail(c, KILN_ERR_SHAPE, "hidden_size is %lld but R has %lld",
                             (long long)hidden.value, (long long)rh.value);
    kl_dim seq = dim_at(x, layout ? 1 : 0), batch = dim_at(x, layout ? 0 : 1);
    KL_TRY(kl_infer_shape_new(c, 4, &y));
    KL_TRY(kl_infer_shape_new(c, 3, &yh));
    if (layout == 0) {
        y.dims[0] = seq;
        y.dims[1] = kl_dim_known(nd);
        y.dims[2] = batch;
        yh.dims[0] = kl_dim_known(nd);
        yh.dims[1] = batch;
    } else {
        y.dims[0] = batch;
        y.dims[1] = seq;
        y.dims[2] = kl_dim_known(nd);
        yh.dims[0] = batch;
        yh.dims[1] = kl_dim_known(nd);
    }
    y.dims[3] = hidden;
    yh.dims[2] = hidden;
    KL_TRY(set_out(c, 0, dt, &y));
    KL_TRY(set_out(c, 1, dt, &yh));
    return set_out(c, 2, dt, &yh);
}

/* ---- attention ----------------------------------------------------------------- */

/* Attention (opset 23, 24): Q/K/V 4-D [B, heads, seq, head_size] or 3-D
 * [B, seq, heads*head_size] with q_num_heads / kv_num_heads.  Outputs Y,
 * present_key, present_value [B, kv_heads, past+kv_seq, size] and
 * qk_matmul_output [B, q_heads, q_seq, past+kv_seq]. */
static kiln_status infer_attention(kl_infer_ctx *c) {
    const kl_shape *q = kl_infer_input_shape(c, 0), *k = kl_infer_input_shape(c, 1);
    const kl_shape *v = kl_infer_input_shape(c, 2);
    const kl_shape *pk = kl_infer_input_shape(c, 4), *pv = kl_infer_input_shape(c, 5);
    kiln_dtype tq = kl_infer_input_dtype(c, 0), tv = kl_infer_input_dtype(c, 2);
    int64_t qh_attr = kl_node_attr_int(c->node, "q_num_heads", 0);
    int64_t kvh_attr = kl_node_attr_int(c->node, "kv_num_heads", 0);
    int rank = q ? q->rank : k ? k->rank : v ? v->rank : -1;
    kl_dim b, qh, kvh, sq, skv, dq, dk, dv;
    kl_shape y, pks, pvs, qk;
    KL_TRY(same_dtype(c, 0, 1));
    if (rank < 0) {
        KL_TRY(set_out(c, 0, tq, NULL));
        return KILN_OK;
    }
    if (rank != 3 && rank != 4)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "Q has rank %d, expected 3 or 4", rank);
    if ((k && k->rank != rank) || (v && v->rank != rank))
        return kl_infer_fail(c, KILN_ERR_SHAPE, "Q, K and V must have the same rank");
    b = dim_pick(q ? &q->dims[0] : NULL, k ? &k->dims[0] : NULL);
    if (rank == 4) {
        qh = dim_at(q, 1);
        kvh = dim_pick(k ? &k->dims[1] : NULL, v ? &v->dims[1] : NULL);
        sq = dim_at(q, 2);
        skv = dim_pick(k ? &k->dims[2] : NULL, v ? &v->dims[2] : NULL);
        dq = dim_at(q, 3);
        dk = dim_at(k, 3);
        dv = dim_at(v, 3);
    } else {
        if (qh_attr < 1 || kvh_attr < 1)
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                                 "3-D inputs need attributes q_num_heads and kv_num_heads >= 1");
        qh = kl_dim_known(qh_attr);
        kvh = kl_dim_known(kvh_attr);
        sq = dim_at(q, 1);
        skv = dim_pick(k ? &k->dims[1] : NULL, v ? &v->dims[1] : NULL);
        kl_dim hq = dim_at(q, 2), hk = dim_at(k, 2), hv = dim_at(v, 2);
        if ((kl_dim_is_known(&hq) && hq.value % qh_attr) ||
            (kl_dim_is_known(&hk) && hk.value % kvh_attr) ||
            (kl_dim_is_known(&hv) && hv.value % kvh_attr))
            return kl_infer_fail(c, KILN_ERR_SHAPE,
                                 "hidden sizes (Q %lld, K %lld, V %lld) are not multiples of the "
                                 "head counts (%lld, %lld)",
                                 (long long)hq.value, (long long)hk.value, (long long)hv.value,
                                 (long long)qh_attr, (long long)kvh_attr);
        dq = dim_div(hq, qh_attr);
        dk = dim_div(hk, kvh_attr);
        dv = dim_div(hv, kvh_attr);
    }
    if (dims_conflict(&dq, &dk))
        return kl_infer_fail(c, KILN_ERR_SHAPE, "Q head size %lld differs from K head size %lld",
                             (long long)dq.value, (long long)dk.value);
    if (kl_dim_is_known(&qh) && kl_dim_is_known(&kvh) &&
        (kvh.value == 0 || qh.value % kvh.value != 0))
        return kl_infer_fail(c, KILN_ERR_SHAPE,
                             "q_num_heads %lld is not a multiple of kv_num_heads %lld",
                             (long long)qh.value, (long long)kvh.value);
    if (!kl_dim_is_known(&dk)) dk = dim_pick(&dk, pk && pk->rank == 4 ? &pk->dims[3] : NULL);
    if (!kl_dim_is_known(&dv)) dv = dim_pick(&dv, pv && pv->rank == 4 ? &pv->dims[3] : NULL);
    /* Y */
    if (rank == 4) {
        KL_TRY(kl_infer_shape_new(c, 4, &y));
        y.dims[0] = b;
        y.dims[1] = qh;
        y.dims[2] = sq;
        y.dims[3] = dv;
    } else {
        KL_TRY(kl_infer_shape_new(c, 3, &y));
        y.dims[0] = b;
        y.dims[1] = sq;
        y.dims[2] = qh_attr == kvh_attr ? dim_at(v, 2) : dim_mul(dv, qh_attr);
    }
    KL_TRY(set_out(c, 0, tq, &y));
    /* present_key / present_value / qk_matmul_output */
    kl_dim tk = pk ? dim_add(dim_at(pk, 2), skv) : skv;
    kl_dim tvl = pv ? dim_add(dim_at(pv, 2), skv) : skv;
    kl_dim kvh_k = kl_dim_is_known(&kvh) ? kvh : dim_at(pk, 1);
    KL_TRY(kl_infer_shape_new(c, 4, &pks));
    pks.dims[0] = b;
    pks.dims[1] = kvh_k;
    pks.dims[2] = tk;
    pks.dims[3] = dk;
    KL_TRY(set_out(c, 1, tq, &pks));
    KL_TRY(kl_infer_shape_new(c, 4, &pvs));
    pvs.dims[0] = b;
    pvs.dims[1] = kl_dim_is_known(&kvh) ? kvh : dim_at(pv, 1);
    pvs.dims[2] = tvl;
    pvs.dims[3] = dv;
    KL_TRY(set_out(c, 2, tv, &pvs));
    KL_TRY(kl_infer_shape_new(c, 4, &qk));
    qk.dims[0] = b;
    qk.dims[1] = qh;
    qk.dims[2] = sq;
    qk.dims[3] = tk;
    return set_out(c, 3, tq, &qk);
}

/* LinearAttention (opset 27): output [B, T, q_heads * d_v], present_state
 * [B, kv_heads, d_k, d_v] (past_state's shape when given). */
static kiln_status infer_linear_attention(kl_infer_ctx *c) {
    const kl_shape *q = kl_infer_input_shape(c, 0), *k = kl_infer_input_shape(c, 1);
    const kl_shape *v = kl_infer_input_shape(c, 2), *ps = kl_infer_input_shape(c, 3);
    kiln_dtype dt = kl_infer_input_dtype(c, 0), st = kl_infer_input_dtype(c, 3);
    int64_t qh = kl_node_attr_int(c->node, "q_num_heads", 0);
    int64_t kvh = kl_node_attr_int(c->node, "kv_num_heads", 0);
    kl_shape out, pres;
    if (qh < 1 || kvh < 1 || qh % kvh != 0)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "q_num_heads (%lld) must be a positive multiple of kv_num_heads "
                             "(%lld)",
                             (long long)qh, (long long)kvh);
    for (int i = 0; i < 3; i++) {
        const kl_shape *s = i == 0 ? q : i == 1 ? k : v;
        if (s && s->rank != 3)
            return kl_infer_fail(c, KILN_ERR_SHAPE, "input %d has rank %d, expected 3", i,
                                 s->rank);
    }
    kl_dim dk = dim_div(dim_at(k, 2), kvh), dv = dim_div(dim_at(v, 2), kvh);
    if (q) {
        KL_TRY(kl_infer_shape_new(c, 3, &out));
        out.dims[0] = q->dims[0];
        out.dims[1] = q->dims[1];
        out.dims[2] = qh == kvh ? dim_at(v, 2) : dim_mul(dv, qh);
        KL_TRY(set_out(c, 0, dt, &out));
    } else {
        KL_TRY(set_out(c, 0, dt, NULL));
    }
    if (ps && ps->rank == 4) return set_out(c, 1, st ? st : dt, ps);
    KL_TRY(kl_infer_shape_new(c, 4, &pres));
    pres.dims[0] = dim_pick(q ? &q->dims[0] : NULL, k ? &k->dims[0] : NULL);
    pres.dims[1] = kl_dim_known(kvh);
    pres.dims[2] = dk;
    pres.dims[3] = dv;
    return set_out(c, 1, st ? st : dt, &pres);
}

/* CausalConvWithState (opset 27): output = input's shape; present_state
 * [B, C, k-1] with k the weight's last dimension. */
static kiln_status infer_causal_conv(kl_infer_ctx *c) {
    const kl_shape *x = kl_infer_input_shape(c, 0), *w = kl_infer_input_shape(c, 1);
    const kl_shape *ps = kl_infer_input_shape(c, 3);
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    kl_shape pres;
    if (x && x->rank != 3)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "input has rank %d, expected 3", x->rank);
    if (w && w->rank != 3)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "weight has rank %d, expected 3", w->rank);
    KL_TRY(same_dtype_from(c, 0, 1, 4));
    kl_dim xc = dim_at(x, 1), wc = dim_at(w, 0);
    if (dims_conflict(&xc, &wc))
        return kl_infer_fail(c, KILN_ERR_SHAPE, "input has %lld channels but weight has %lld",
                             (long long)xc.value, (long long)wc.value);
    KL_TRY(set_out(c, 0, dt, x));
    kl_dim kk = dim_at(w, 2);
    KL_TRY(kl_infer_shape_new(c, 3, &pres));
    pres.dims[0] = dim_pick(x ? &x->dims[0] : NULL, ps ? &ps->dims[0] : NULL);
    pres.dims[1] = dim_pick(&xc, &wc);
    pres.dims[2] = kl_dim_is_known(&kk) && kk.value >= 1 ? kl_dim_known(kk.value - 1)
                                                         : dim_at(ps, 2);
    return set_out(c, 1, dt, &pres);
}

/* FlexAttention (ai.onnx.preview 1): Y [B, q_heads, q_seq, v_head_size]. */
static kiln_status infer_flex_attention(kl_infer_ctx *c) {
    const kl_shape *q = kl_infer_input_shape(c, 0), *v = kl_infer_input_shape(c, 2);
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    kl_shape y;
    if (!q || q->rank != 4) return set_out(c, 0, dt, q);
    KL_TRY(kl_infer_shape_new(c, 4, &y));
    for (int i = 0; i < 3; i++) y.dims[i] = q->dims[i];
    y.dims[3] = dim_at(v && v->rank == 4 ? v : NULL, 3);
    return set_out(c, 0, dt, &y);
}

/* ---- image ops ------------------------------------------------------------------ */

/* Col2Im: input [N, C*prod(block), L] -> [N, C, image_shape...]. */
static kiln_status infer_col2im(kl_infer_ctx *c) {
    const kl_shape *x = kl_infer_input_shape(c, 0), *is = kl_infer_input_shape(c, 1);
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    int64_t img[KILN_MAX_RANK], blk[KILN_MAX_RANK], ni = -1, nb = -1;
    kl_shape out;
    bool have_img = kl_infer_input_ints(c, 1, img, KL_MAX_SPATIAL, &ni);
    bool have_blk = kl_infer_input_ints(c, 2, blk, KL_MAX_SPATIAL, &nb);
    if (!have_img) ni = is && is->rank == 1 ? is->dims[0].value : -1;
    if (ni < 0 || ni > KL_MAX_SPATIAL) return kl_infer_set_output(c, 0, dt, NULL);
    if (x && x->rank != 3)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "input has rank %d, expected 3", x->rank);
    if (have_blk && nb != ni)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "image_shape has %lld values, block_shape %lld",
                             (long long)ni, (long long)nb);
    KL_TRY(kl_infer_shape_new(c, (int)ni + 2, &out));
    out.dims[0] = dim_at(x, 0);
    if (have_blk) {
        int64_t prod = 1;
        for (int i = 0; i < nb; i++)
            if (blk[i] < 1 || kl_mul_i64(prod, blk[i], &prod))
                return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "block_shape is invalid");
        kl_dim cb = dim_at(x, 1);
        if (kl_dim_is_known(&cb) && cb.value % prod != 0)
            return kl_infer_fail(c, KILN_ERR_SHAPE,
                                 "input has %lld channels, not a multiple of the block size "
                                 "%lld",
                                 (long long)cb.value, (long long)prod);
        out.dims[1] = dim_div(cb, prod);
    }
    for (int i = 0; have_img && i < ni; i++)
        if (img[i] >= 0) out.dims[2 + i] = kl_dim_known(img[i]);
    return kl_infer_set_output(c, 0, dt, &out);
}

/* GridSample: X [N, C, D1..Dr], grid [N, O1..Or, r] -> [N, C, O1..Or]. */
static kiln_status infer_grid_sample(kl_infer_ctx *c) {
    const kl_shape *x = kl_infer_input_shape(c, 0), *g = kl_infer_input_shape(c, 1);
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    int rank = x ? x->rank : g ? g->rank : -1;
    kl_shape out;
    if (rank < 0) return kl_infer_set_output(c, 0, dt, NULL);
    if (rank < 3 || (x && g && x->rank != g->rank))
        return kl_infer_fail(c, KILN_ERR_SHAPE,
                             "X (rank %d) and grid (rank %d) must have the same rank >= 3",
                             x ? x->rank : -1, g ? g->rank : -1);
    kl_dim last = dim_at(g, rank - 1);
    if (kl_dim_is_known(&last) && last.value != rank - 2)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "grid's last dimension is %lld, expected %d",
                             (long long)last.value, rank - 2);
    kl_dim nx = dim_at(x, 0), ng = dim_at(g, 0);
    if (dims_conflict(&nx, &ng))
        return kl_infer_fail(c, KILN_ERR_SHAPE, "X has batch %lld but grid has %lld",
                             (long long)nx.value, (long long)ng.value);
    KL_TRY(kl_infer_shape_new(c, rank, &out));
    out.dims[0] = dim_pick(&nx, &ng);
    out.dims[1] = dim_at(x, 1);
    for (int i = 2; i < rank; i++) out.dims[i] = dim_at(g, i - 1);
    return kl_infer_set_output(c, 0, dt, &out);
}

/* AffineGrid: theta [N, 2, 3] / [N, 3, 4], size (N, C, H, W) / (N, C, D, H,
 * W) -> grid [N, H, W, 2] / [N, D, H, W, 3]. */
static kiln_status infer_affine_grid(kl_infer_ctx *c) {
    const kl_shape *th = kl_infer_input_shape(c, 0), *ss = kl_infer_input_shape(c, 1);
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    int64_t size[8], n = -1;
    kl_shape out;
    bool have = kl_infer_input_ints(c, 1, size, 8, &n);
    if (!have && ss && ss->rank == 1) n = ss->dims[0].value;
    if (n < 0) {
        kl_dim r = dim_at(th, 1);
        if (kl_dim_is_known(&r) && (r.value == 2 || r.value == 3)) n = r.value + 2;
    }
    if (n < 0) return kl_infer_set_output(c, 0, dt, NULL);
    if (n != 4 && n != 5)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "size has %lld values, expected 4 or 5",
                             (long long)n);
    if (th && th->rank != 3)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "theta has rank %d, expected 3", th->rank);
    KL_TRY(kl_infer_shape_new(c, (int)n, &out));
    out.dims[0] = have && size[0] >= 0 ? kl_dim_known(size[0]) : dim_at(th, 0);
    for (int i = 1; i < n - 1; i++)
        if (have && size[i + 1] >= 0) out.dims[i] = kl_dim_known(size[i + 1]);
    out.dims[n - 1] = kl_dim_known(n - 2);
    return kl_infer_set_output(c, 0, dt, &out);
}

/* ---- schema table --------------------------------------------------------------- */

#define OPT(n, t) {n, KL_ATTR_##t, false}
#define REQ(n, t) {n, KL_ATTR_##t, true}
#define END {NULL, KL_ATTR_UNDEFINED, false}

static const kl_attr_spec conv_attrs[] = {
    OPT("auto_pad", STRING), OPT("dilations", INTS), OPT("group", INT),
    OPT("kernel_shape", INTS), OPT("pads", INTS), OPT("strides", INTS), END};
static const kl_attr_spec convt_attrs[] = {
    OPT("auto_pad", STRING), OPT("dilations", INTS), OPT("group", INT),
    OPT("kernel_shape", INTS), OPT("output_padding", INTS), OPT("output_shape", INTS),
    OPT("pads", INTS), OPT("strides", INTS), END};
static const kl_attr_spec deform_attrs[] = {
    OPT("dilations", INTS), OPT("group", INT), OPT("kernel_shape", INTS),
    OPT("offset_group", INT), OPT("pads", INTS), OPT("strides", INTS), END};
static const kl_attr_spec avgpool1_attrs[] = {
    OPT("auto_pad", STRING), REQ("kernel_shape", INTS), OPT("pads", INTS),
    OPT("strides", INTS), END};
static const kl_attr_spec avgpool7_attrs[] = {
    OPT("auto_pad", STRING), OPT("count_include_pad", INT), REQ("kernel_shape", INTS),
    OPT("pads", INTS), OPT("strides", INTS), END};
static const kl_attr_spec avgpool10_attrs[] = {
    OPT("auto_pad", STRING), OPT("ceil_mode", INT), OPT("count_include_pad", INT),
    REQ("kernel_shape", INTS), OPT("pads", INTS), OPT("strides", INTS), END};
static const kl_attr_spec avgpool19_attrs[] = {
    OPT("auto_pad", STRING), OPT("ceil_mode", INT), OPT("count_include_pad", INT),
    OPT("dilations", INTS), REQ("kernel_shape", INTS), OPT("pads", INTS),
    OPT("strides", INTS), END};
static const kl_attr_spec maxpool8_attrs[] = {
    OPT("auto_pad", STRING), REQ("kernel_shape", INTS), OPT("pads", INTS),
    OPT("storage_order", INT), OPT("strides", INTS), END};
static const kl_attr_spec maxpool10_attrs[] = {
    OPT("auto_pad", STRING), OPT("ceil_mode", INT), OPT("dilations", INTS),
    REQ("kernel_shape", INTS), OPT("pads", INTS), OPT("storage_order", INT),
    OPT("strides", INTS), END};
static const kl_attr_spec maxunpool_attrs[] = {
    REQ("kernel_shape", INTS), OPT("pads", INTS), OPT("strides", INTS), END};
static const kl_attr_spec lppool1_attrs[] = {
    OPT("auto_pad", STRING), OPT("kernel_shape", INTS), OPT("p", FLOAT), OPT("pads", INTS),
    OPT("strides", INTS), END};
static const kl_attr_spec lppool2_attrs[] = {
    OPT("auto_pad", STRING), REQ("kernel_shape", INTS), OPT("p", INT), OPT("pads", INTS),
    OPT("strides", INTS), END};
static const kl_attr_spec lppool18_attrs[] = {
    OPT("auto_pad", STRING), OPT("ceil_mode", INT), OPT("dilations", INTS),
    REQ("kernel_shape", INTS), OPT("p", INT), OPT("pads", INTS), OPT("strides", INTS), END};
static const kl_attr_spec no_attrs[] = {END};
static const kl_attr_spec glppool1_attrs[] = {OPT("p", FLOAT), END};
static const kl_attr_spec glppool2_attrs[] = {OPT("p", INT), END};
static const kl_attr_spec maxroipool_attrs[] = {
    REQ("pooled_shape", INTS), OPT("spatial_scale", FLOAT), END};
static const kl_attr_spec gemm1_attrs[] = {
    OPT("alpha", FLOAT), OPT("beta", FLOAT), OPT("broadcast", INT), OPT("transA", INT),
    OPT("transB", INT), END};
static const kl_attr_spec gemm7_attrs[] = {
    OPT("alpha", FLOAT), OPT("beta", FLOAT), OPT("transA", INT), OPT("transB", INT), END};
static const kl_attr_spec einsum_attrs[] = {REQ("equation", STRING), END};

#define RNN_COMMON                                                                   \
    OPT("activation_alpha", FLOATS), OPT("activation_beta", FLOATS),                 \
        OPT("activations", STRINGS), OPT("clip", FLOAT), OPT("direction", STRING), \
        OPT("hidden_size", INT)
static const kl_attr_spec rnn1_attrs[] = {RNN_COMMON, OPT("output_sequence", INT), END};
static const kl_attr_spec rnn7_attrs[] = {RNN_COMMON, END};
static const kl_attr_spec rnn14_attrs[] = {RNN_COMMON, OPT("layout", INT), END};
static const kl_attr_spec gru3_attrs[] = {
    RNN_COMMON, OPT("linear_before_reset", INT), OPT("output_sequence", INT), END};
static const kl_attr_spec gru7_attrs[] = {RNN_COMMON, OPT("linear_before_reset", INT), END};
static const kl_attr_spec gru14_attrs[] = {
    RNN_COMMON, OPT("layout", INT), OPT("linear_before_reset", INT), END};
static const kl_attr_spec lstm1_attrs[] = {
    RNN_COMMON, OPT("input_forget", INT), OPT("output_sequence", INT), END};
static const kl_attr_spec lstm7_attrs[] = {RNN_COMMON, OPT("input_forget", INT), END};
static const kl_attr_spec lstm14_attrs[] = {
    RNN_COMMON, OPT("input_forget", INT), OPT("layout", INT), END};
static const kl_attr_spec attention_attrs[] = {
    OPT("is_causal", INT), OPT("kv_num_heads", INT), OPT("q_num_heads", INT),
    OPT("qk_matmul_output_mode", INT), OPT("scale", FLOAT), OPT("softcap", FLOAT),
    OPT("softmax_precision", INT), END};
static const kl_attr_spec rotary_attrs[] = {
    OPT("interleaved", INT), OPT("num_heads", INT), OPT("rotary_embedding_dim", INT), END};
static const kl_attr_spec linear_attention_attrs[] = {
    OPT("chunk_size", INT), REQ("kv_num_heads", INT), REQ("q_num_heads", INT),
    OPT("scale", FLOAT), OPT("update_rule", STRING), END};
static const kl_attr_spec causal_conv_attrs[] = {OPT("activation", STRING), END};
static const kl_attr_spec col2im_attrs[] = {
    OPT("dilations", INTS), OPT("pads", INTS), OPT("strides", INTS), END};
static const kl_attr_spec grid_sample_attrs[] = {
    OPT("align_corners", INT), OPT("mode", STRING), OPT("padding_mode", STRING), END};
static const kl_attr_spec affine_grid_attrs[] = {OPT("align_corners", INT), END};

const kl_op_schema kl_ops_nn[] = {
    {"", "Conv", 1, 10, 2, 3, 1, 1, conv_attrs, infer_conv},
    {"", "Conv", 11, 21, 2, 3, 1, 1, conv_attrs, infer_conv},
    {"", "Conv", 22, 0, 2, 3, 1, 1, conv_attrs, infer_conv},
    {"", "ConvTranspose", 1, 10, 2, 3, 1, 1, convt_attrs, infer_conv_transpose},
    {"", "ConvTranspose", 11, 21, 2, 3, 1, 1, convt_attrs, infer_conv_transpose},
    {"", "ConvTranspose", 22, 0, 2, 3, 1, 1, convt_attrs, infer_conv_transpose},
    {"", "DeformConv", 19, 21, 3, 5, 1, 1, deform_attrs, infer_conv},
    {"", "DeformConv", 22, 0, 3, 5, 1, 1, deform_attrs, infer_conv},
    {"", "AveragePool", 1, 6, 1, 1, 1, 1, avgpool1_attrs, infer_pool},
    {"", "AveragePool", 7, 9, 1, 1, 1, 1, avgpool7_attrs, infer_pool},
    {"", "AveragePool", 10, 10, 1, 1, 1, 1, avgpool10_attrs, infer_pool},
    {"", "AveragePool", 11, 18, 1, 1, 1, 1, avgpool10_attrs, infer_pool},
    {"", "AveragePool", 19, 21, 1, 1, 1, 1, avgpool19_attrs, infer_pool},
    {"", "AveragePool", 22, 0, 1, 1, 1, 1, avgpool19_attrs, infer_pool},
    {"", "MaxPool", 1, 7, 1, 1, 1, 1, avgpool1_attrs, infer_pool},
    {"", "MaxPool", 8, 9, 1, 1, 1, 2, maxpool8_attrs, infer_pool},
    {"", "MaxPool", 10, 10, 1, 1, 1, 2, maxpool10_attrs, infer_pool},
    {"", "MaxPool", 11, 11, 1, 1, 1, 2, maxpool10_attrs, infer_pool},
    {"", "MaxPool", 12, 21, 1, 1, 1, 2, maxpool10_attrs, infer_pool},
    {"", "MaxPool", 22, 0, 1, 1, 1, 2, maxpool10_attrs, infer_pool},
    {"", "MaxUnpool", 9, 10, 2, 3, 1, 1, maxunpool_attrs, infer_max_unpool},
    {"", "MaxUnpool", 11, 21, 2, 3, 1, 1, maxunpool_attrs, infer_max_unpool},
    {"", "MaxUnpool", 22, 0, 2, 3, 1, 1, maxunpool_attrs, infer_max_unpool},
    {"", "LpPool", 1, 1, 1, 1, 1, 1, lppool1_attrs, infer_pool},
    {"", "LpPool", 2, 10, 1, 1, 1, 1, lppool2_attrs, infer_pool},
    {"", "LpPool", 11, 17, 1, 1, 1, 1, lppool2_attrs, infer_pool},
    {"", "LpPool", 18, 21, 1, 1, 1, 1, lppool18_attrs, infer_pool},
    {"", "LpPool", 22, 0, 1, 1, 1, 1, lppool18_attrs, infer_pool},
    {"", "GlobalAveragePool", 1, 21, 1, 1, 1, 1, no_attrs, infer_global_pool},
    {"", "GlobalAveragePool", 22, 0, 1, 1, 1, 1, no_attrs, infer_global_pool},
    {"", "GlobalMaxPool", 1, 21, 1, 1, 1, 1, no_attrs, infer_global_pool},
    {"", "GlobalMaxPool", 22, 0, 1, 1, 1, 1, no_attrs, infer_global_pool},
    {"", "GlobalLpPool", 1, 1, 1, 1, 1, 1, glppool1_attrs, infer_global_pool},
    {"", "GlobalLpPool", 2, 21, 1, 1, 1, 1, glppool2_attrs, infer_global_pool},
    {"", "GlobalLpPool", 22, 0, 1, 1, 1, 1, glppool2_attrs, infer_global_pool},
    {"", "MaxRoiPool", 1, 21, 2, 2, 1, 1, maxroipool_attrs, infer_max_roi_pool},
    {"", "MaxRoiPool", 22, 0, 2, 2, 1, 1, maxroipool_attrs, infer_max_roi_pool},
    {"", "Gemm", 1, 5, 3, 3, 1, 1, gemm1_attrs, infer_gemm},
    {"", "Gemm", 6, 6, 3, 3, 1, 1, gemm1_attrs, infer_gemm},
    {"", "Gemm", 7, 8, 3, 3, 1, 1, gemm7_attrs, infer_gemm},
    {"", "Gemm", 9, 10, 3, 3, 1, 1, gemm7_attrs, infer_gemm},
    {"", "Gemm", 11, 12, 2, 3, 1, 1, gemm7_attrs, infer_gemm},
    {"", "Gemm", 13, 0, 2, 3, 1, 1, gemm7_attrs, infer_gemm},
    {"", "MatMul", 1, 8, 2, 2, 1, 1, no_attrs, infer_matmul},
    {"", "MatMul", 9, 12, 2, 2, 1, 1, no_attrs, infer_matmul},
    {"", "MatMul", 13, 0, 2, 2, 1, 1, no_attrs, infer_matmul},
    {"", "Einsum", 12, 0, 1, -1, 1, 1, einsum_attrs, infer_einsum},
    {"", "Det", 11, 21, 1, 1, 1, 1, no_attrs, infer_det},
    {"", "Det", 22, 0, 1, 1, 1, 1, no_attrs, infer_det},
    {"", "RNN", 1, 6, 3, 6, 0, 2, rnn1_attrs, infer_rnn},
    {"", "RNN", 7, 13, 3, 6, 0, 2, rnn7_attrs, infer_rnn},
    {"", "RNN", 14, 21, 3, 6, 0, 2, rnn14_attrs, infer_rnn},
    {"", "RNN", 22, 0, 3, 6, 0, 2, rnn14_attrs, infer_rnn},
    {"", "GRU", 1, 2, 3, 6, 2, 2, rnn1_attrs, infer_rnn},
    {"", "GRU", 3, 6, 3, 6, 0, 2, gru3_attrs, infer_rnn},
    {"", "GRU", 7, 13, 3, 6, 0, 2, gru7_attrs, infer_rnn},
    {"", "GRU", 14, 21, 3, 6, 0, 2, gru14_attrs, infer_rnn},
    {"", "GRU", 22, 0, 3, 6, 0, 2, gru14_attrs, infer_rnn},
    {"", "LSTM", 1, 6, 3, 8, 0, 3, lstm1_attrs, infer_rnn},
    {"", "LSTM", 7, 13, 3, 8, 0, 3, lstm7_attrs, infer_rnn},
    {"", "LSTM", 14, 21, 3, 8, 0, 3, lstm14_attrs, infer_rnn},
    {"", "LSTM", 22, 0, 3, 8, 0, 3, lstm14_attrs, infer_rnn},
    {"", "Attention", 23, 23, 3, 6, 1, 4, attention_attrs, infer_attention},
    {"", "Attention", 24, 0, 3, 7, 1, 4, attention_attrs, infer_attention},
    {"", "RotaryEmbedding", 23, 0, 3, 4, 1, 1, rotary_attrs, kl_infer_unary},
    {"", "LinearAttention", 27, 0, 3, 6, 1, 2, linear_attention_attrs, infer_linear_attention},
    {"", "CausalConvWithState", 27, 0, 2, 4, 1, 2, causal_conv_attrs, infer_causal_conv},
    {"", "Col2Im", 18, 0, 3, 3, 1, 1, col2im_attrs, infer_col2im},
    {"", "GridSample", 16, 19, 2, 2, 1, 1, grid_sample_attrs, infer_grid_sample},
    {"", "GridSample", 20, 21, 2, 2, 1, 1, grid_sample_attrs, infer_grid_sample},
    {"", "GridSample", 22, 0, 2, 2, 1, 1, grid_sample_attrs, infer_grid_sample},
    {"", "AffineGrid", 20, 0, 2, 2, 1, 1, affine_grid_attrs, infer_affine_grid},
    /* Preview domain: attributes (score_mod/prob_mod graphs, scale...) still
     * moving, so any are accepted. */
    {"ai.onnx.preview", "FlexAttention", 1, 0, 3, -1, 1, -1, NULL, infer_flex_attention},
    {NULL, NULL, 0, 0, 0, 0, 0, 0, NULL, NULL},
};
