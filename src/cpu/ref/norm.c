/*
 * CPU reference kernels: the norm family.  Statistics (mean, variance,
 * norms) are computed in double with two passes; Softmax and friends live
 * in norm_softmax.c.
 */
#include <math.h>
#include <string.h>

#include "cpu/ref/norm.h"
#include "cpu/ref/reduce.h"

/* ---- helpers ------------------------------------------------------------------------- */

static bool nm_is_float(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT || t == KILN_DTYPE_DOUBLE || t == KILN_DTYPE_FLOAT16 || t == KILN_DTYPE_BFLOAT16;
}

/* Input i as a float tensor, or an error naming it. */
static kiln_status nm_input(kl_kctx *c, size_t i, const char *name, bool required, const kl_rt **out) {
    *out = i < c->n_in ? c->in[i] : NULL;
    if (!*out) {
        if (required) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "input '%s' is missing", name);
        return KILN_OK;
    }
    if ((*out)->kind != KL_RT_TENSOR || !nm_is_float((*out)->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "input '%s' must be a float, double, float16 or bfloat16 tensor",
                            name);
    return KILN_OK;
}

/* Read a 1-D parameter of `count` values (any shape with that many
 * elements) into a new double array. */
static kiln_status nm_param(kl_kctx *c, const kl_rt *t, const char *name, int64_t count, double **out) {
    *out = NULL;
    if (t->count != count)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "input '%s' has %lld elements, expected %lld", name,
                            (long long)t->count, (long long)count);
    double *v = kl_calloc((size_t)(count ? count : 1), sizeof *v);
    if (!v) return KILN_ERR_NO_MEMORY;
    for (int64_t i = 0; i < count; i++) v[i] = kl_red_ld(t, i);
    *out = v;
    return KILN_OK;
}

/* Broadcast t unidirectionally to the nr dims nd (count elements) into a
 * new double array; NULL t gives NULL. */
static kiln_status nm_expand(kl_kctx *c, const kl_rt *t, const char *name, int nr, const int64_t *nd, int64_t count,
                             double **out) {
    *out = NULL;
    if (!t) return KILN_OK;
    int64_t st[KILN_MAX_RANK] = {0}, ts[KILN_MAX_RANK];
    kl_ref_strides(t->rank, t->dims, ts);
    for (int i = 0; i < t->rank; i++) {
        int o = nr - t->rank + i;
        if (t->dims[i] == 1) continue;
        if (o < 0 || t->dims[i] != nd[o]) {
            char b[128];
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "input '%s' (%s) does not broadcast to the normalized shape", name,
                                kl_rt_describe(t, b, sizeof b));
        }
        st[o] = ts[i];
    }
    double *v = kl_calloc((size_t)(count ? count : 1), sizeof *v);
    if (!v) return KILN_ERR_NO_MEMORY;
    int64_t idx[KILN_MAX_RANK] = {0}, off = 0;
    for (int64_t k = 0; k < count; k++) {
        v[k] = kl_red_ld(t, off);
        for (int d = nr - 1; d >= 0; d--) {
            off += st[d];
            if (++idx[d] < nd[d]) break;
            off -= st[d] * nd[d];
            idx[d] = 0;
        }
    }
    *out = v;
    return KILN_OK;
}

/* Mean and (biased) variance of the `len` contiguous elements of x from
 * `base`, two passes in double. */
static void nm_stats(const kl_rt *x, int64_t base, int64_t len, double *mean, double *var) {
    double s = 0, q = 0;
    if (x->dtype == KILN_DTYPE_FLOAT) {
        const float *p = (const float *)x->data + base;
        for (int64_t k = 0; k < len; k++) s += p[k];
        *mean = s / (double)len;
        for (int64_t k = 0; k < len; k++) q += (p[k] - *mean) * (p[k] - *mean);
    } else {
        for (int64_t k = 0; k < len; k++) s += kl_red_ld(x, base + k);
        *mean = s / (double)len;
        for (int64_t k = 0; k < len; k++) {
            double d = kl_red_ld(x, base + k) - *mean;
            q += d * d;
        }
    }
    *var = q / (double)len;
}

/* A float stash_type attribute as a dtype (LayerNormalization, GroupNormalization). */
static kiln_status nm_stash(kl_kctx *c, kiln_dtype *out) {
    int64_t s = kl_node_attr_int(c->node, "stash_type", 1);
    if (s < 0 || s >= KILN_DTYPE_COUNT || !nm_is_float((kiln_dtype)s))
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'stash_type' (%lld) is not a float type",
                            (long long)s);
    *out = (kiln_dtype)s;
    return KILN_OK;
}

/* ---- BatchNormalization ------------------------------------------------------------------ */

/* Y = scale * (X - mean) / sqrt(var + epsilon) + B per channel.  Training
 * statistics (batch mean/variance, running averages with `momentum`) are
 * computed for opset 14+ with training_mode=1, and for older opsets when
 * the node asks for the extra outputs (and is_test is 0 before opset 7). */
static kiln_status k_batchnorm(kl_kctx *c) {
    const kl_rt *x, *sc, *bi, *mi, *vi;
    KL_TRY(nm_input(c, 0, "X", true, &x));
    KL_TRY(nm_input(c, 1, "scale", true, &sc));
    KL_TRY(nm_input(c, 2, "B", true, &bi));
    KL_TRY(nm_input(c, 3, "input_mean", true, &mi));
    KL_TRY(nm_input(c, 4, "input_var", true, &vi));
    if (x->rank < 2) return kl_kctx_fail(c, KILN_ERR_SHAPE, "input 'X' must have rank >= 2 (N x C x ...)");
    const kl_node *n = c->node;
    double eps = kl_node_attr_float(n, "epsilon", 1e-5f);
    double mom = kl_node_attr_float(n, "momentum", 0.9f);
    bool training;
    if (n->opset >= 14) {
        training = kl_node_attr_int(n, "training_mode", 0) != 0;
    } else {
        training = false;
        for (size_t i = 1; i < c->n_out; i++) training |= kl_kctx_want(c, i);
        if (n->opset < 7 && kl_node_attr_int(n, "is_test", 0) != 0) training = false;
    }
    int64_t N = x->dims[0], S = 1;
    for (int i = 2; i < x->rank; i++) S = kl_red_mul(S, x->dims[i]);
    int64_t G = x->dims[1], I = S;
    if (n->opset < 9 && kl_node_attr_int(n, "spatial", 1) == 0) {
        G = kl_red_mul(G, S);
        I = 1;
    }
    double *a = NULL, *b = NULL, *m = NULL, *v = NULL, *bm = NULL, *bv = NULL;
    kiln_status s = nm_param(c, sc, "scale", G, &a);
    if (!s) s = nm_param(c, bi, "B", G, &b);
    if (!s) s = nm_param(c, mi, "input_mean", G, &m);
    if (!s) s = nm_param(c, vi, "input_var", G, &v);
    if (!s && training) {
        bm = kl_calloc((size_t)(G ? G : 1), sizeof *bm);
        bv = kl_calloc((size_t)(G ? G : 1), sizeof *bv);
        if (!bm || !bv) s = KILN_ERR_NO_MEMORY;
    }
    kl_rt *y = NULL;
    if (!s) s = kl_kctx_output(c, 0, x->dtype, x->rank, x->dims, &y);
    if (s) goto done;
    if (training) {
        double cnt = (double)N * (double)I;
        for (int64_t g = 0; g < G; g++) {
            double sum = 0, q = 0;
            for (int64_t i = 0; i < N; i++)
                for (int64_t k = 0; k < I; k++) sum += kl_red_ld(x, (i * G + g) * I + k);
            bm[g] = sum / cnt;
            for (int64_t i = 0; i < N; i++)
                for (int64_t k = 0; k < I; k++) {
                    double d = kl_red_ld(x, (i * G + g) * I + k) - bm[g];
                    q += d * d;
                }
            bv[g] = q / cnt;
        }
        for (int64_t g = 0; g < G; g++) { /* m, v become the running averages */
            m[g] = m[g] * mom + bm[g] * (1 - mom);
            v[g] = v[g] * mom + bv[g] * (1 - mom);
        }
        const double *outs[4] = {m, v, bm, bv};
        size_t nout = n->opset >= 14 ? 2 : 4;
        for (size_t k = 0; k < nout && k + 1 < c->n_out; k++) {
            kl_rt *t;
            s = kl_kctx_output(c, k + 1, mi->dtype, mi->rank, mi->dims, &t);
            if (s) goto done;
            for (int64_t g = 0; g < G; g++) kl_red_st(t, g, outs[k][g]);
        }
    }
    for (int64_t g = 0; g < G; g++) {
        double mean = training ? bm[g] : m[g], var = training ? bv[g] : v[g];
        a[g] = a[g] / sqrt(var + eps);
        b[g] = b[g] - mean * a[g];
    }
    if (x->dtype == KILN_DTYPE_FLOAT) {
        const float *px = x->data;
        float *py = y->data;
        for (int64_t i = 0; i < N; i++)
            for (int64_t g = 0; g < G; g++, px += I, py += I)
                for (int64_t k = 0; k < I; k++) py[k] = (float)(px[k] * a[g] + b[g]);
    } else {
        for (int64_t i = 0; i < N; i++)
            for (int64_t g = 0; g < G; g++)
                for (int64_t k = 0; k < I; k++) {
                    int64_t e = (i * G + g) * I + k;
                    kl_red_st(y, e, kl_red_ld(x, e) * a[g] + b[g]);
                }
    }
done:
    kl_free(a);
    kl_free(b);
    kl_free(m);
    kl_free(v);
    kl_free(bm);
    kl_free(bv);
    return s;
}

/* ---- InstanceNormalization / GroupNormalization ----------------------------------------------- */

/* Blocks of `len` contiguous elements normalized by their own mean and
 * variance: block i is group g = i % groups of its sample; element k uses
 * scale/bias index g (per_group) or channel g*ch_per_blk + k/per_ch. */
typedef struct nm_blocks {
    int64_t nb, len;
    int64_t per_ch;     /* elements per channel within a block */
    int64_t ch_per_blk; /* channels in one block */
    bool per_group;     /* scale/bias indexed by block-in-sample (GroupNorm-18) */
    int64_t groups;     /* blocks per sample */
} nm_blocks;

/* Normalize every block of bl (see nm_blocks) into y. */
static void nm_block_norm(const kl_rt *x, kl_rt *y, const nm_blocks *bl, const double *a, const double *b, double eps) {
    for (int64_t i = 0; i < bl->nb; i++) {
        double mean, var;
        int64_t base = i * bl->len;
        nm_stats(x, base, bl->len, &mean, &var);
        double inv = 1.0 / sqrt(var + eps);
        int64_t g = i % bl->groups;
        for (int64_t k = 0; k < bl->len; k++) {
            int64_t ch = bl->per_group ? g : g * bl->ch_per_blk + k / bl->per_ch;
            kl_red_st(y, base + k, (kl_red_ld(x, base + k) - mean) * inv * a[ch] + b[ch]);
        }
    }
}

/* InstanceNormalization: per (n, c) statistics over the spatial dims. */
static kiln_status k_instancenorm(kl_kctx *c) {
    const kl_rt *x, *sc, *bi;
    KL_TRY(nm_input(c, 0, "input", true, &x));
    KL_TRY(nm_input(c, 1, "scale", true, &sc));
    KL_TRY(nm_input(c, 2, "B", true, &bi));
    if (x->rank < 2) return kl_kctx_fail(c, KILN_ERR_SHAPE, "input must have rank >= 2 (N x C x ...)");
    double eps = kl_node_attr_float(c->node, "epsilon", 1e-5f);
    int64_t C = x->dims[1], S = 1;
    for (int i = 2; i < x->rank; i++) S = kl_red_mul(S, x->dims[i]);
    double *a = NULL, *b = NULL;
    kl_rt *y;
    kiln_status s = nm_param(c, sc, "scale", C, &a);
    if (!s) s = nm_param(c, bi, "B", C, &b);
    if (!s) s = kl_kctx_output(c, 0, x->dtype, x->rank, x->dims, &y);
    if (!s && x->count) {
        nm_blocks bl = {x->dims[0] * C, S, S, 1, false, C};
        nm_block_norm(x, y, &bl, a, b, eps);
    }
    kl_free(a);
    kl_free(b);
    return s;
}

/* GroupNormalization: per (n, group) statistics over C/num_groups channels
 * and the spatial dims; scale/bias per group (opset 18) or per channel (21). */
static kiln_status k_groupnorm(kl_kctx *c) {
    const kl_rt *x, *sc, *bi;
    KL_TRY(nm_input(c, 0, "X", true, &x));
    KL_TRY(nm_input(c, 1, "scale", true, &sc));
    KL_TRY(nm_input(c, 2, "bias", true, &bi));
    if (x->rank < 2) return kl_kctx_fail(c, KILN_ERR_SHAPE, "input 'X' must have rank >= 2 (N x C x ...)");
    if (!kl_node_attr(c->node, "num_groups"))
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'num_groups' is missing");
    if (c->node->opset >= 21) {
        kiln_dtype st;
        KL_TRY(nm_stash(c, &st));
    }
    int64_t G = kl_node_attr_int(c->node, "num_groups", 0), C = x->dims[1], S = 1;
    if (G <= 0 || C % G != 0)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "num_groups (%lld) must be positive and divide the %lld channels",
                            (long long)G, (long long)C);
    for (int i = 2; i < x->rank; i++) S = kl_red_mul(S, x->dims[i]);
    double eps = kl_node_attr_float(c->node, "epsilon", 1e-5f);
    bool per_group = c->node->opset < 21;
    double *a = NULL, *b = NULL;
    kl_rt *y;
    kiln_status s = nm_param(c, sc, "scale", per_group ? G : C, &a);
    if (!s) s = nm_param(c, bi, "bias", per_group ? G : C, &b);
    if (!s) s = kl_kctx_output(c, 0, x->dtype, x->rank, x->dims, &y);
    if (!s && x->count) {
        nm_blocks bl = {x->dims[0] * G, (C / G) * S, S, C / G, per_group, G};
        nm_block_norm(x, y, &bl, a, b, eps);
    }
    kl_free(a);
    kl_free(b);
    return s;
}

/* ---- LayerNormalization / RMSNormalization ------------------------------------------------------ */

/* Normalize each row X[i, axis:] (flattened) by its mean and variance
 * (LayerNorm) or its root mean square (RMSNorm), then * Scale (+ B). */
static kiln_status ln_run(kl_kctx *c, bool rms) {
    const kl_rt *x, *sc, *bi = NULL;
    KL_TRY(nm_input(c, 0, "X", true, &x));
    KL_TRY(nm_input(c, 1, "Scale", true, &sc));
    if (!rms) KL_TRY(nm_input(c, 2, "B", false, &bi));
    int axis;
    KL_TRY(kl_ref_axis(kl_node_attr_int(c->node, "axis", -1), x->rank, false, "attribute 'axis'", &axis));
    kiln_dtype stash;
    KL_TRY(nm_stash(c, &stash));
    double eps = kl_node_attr_float(c->node, "epsilon", 1e-5f);
    int64_t rows = 1, cols = 1, sdims[KILN_MAX_RANK];
    for (int i = 0; i < x->rank; i++) {
        int64_t *p = i < axis ? &rows : &cols;
        *p = kl_red_mul(*p, x->dims[i]);
        sdims[i] = i < axis ? x->dims[i] : 1;
    }
    int nr = x->rank - axis;
    const int64_t *nd = x->dims + axis;
    double *w = NULL, *b = NULL;
    kl_rt *y, *om = NULL, *oi = NULL;
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, x->dims, &y));
    if (!rms && c->n_out > 1) KL_TRY(kl_kctx_output(c, 1, stash, x->rank, sdims, &om));
    if (!rms && c->n_out > 2) KL_TRY(kl_kctx_output(c, 2, stash, x->rank, sdims, &oi));
    if (x->count == 0) { /* statistics of empty rows are NaN (0/0) */
        for (int64_t r = 0; om && r < om->count; r++) kl_red_st(om, r, NAN);
        for (int64_t r = 0; oi && r < oi->count; r++) kl_red_st(oi, r, NAN);
        return KILN_OK;
    }
    kiln_status s = nm_expand(c, sc, "Scale", nr, nd, cols, &w);
    if (!s) s = nm_expand(c, bi, "B", nr, nd, cols, &b);
    if (s) goto done;
    for (int64_t r = 0; r < rows; r++) {
        int64_t base = r * cols;
        double mean = 0, var;
        if (rms) {
            double q = 0;
            for (int64_t k = 0; k < cols; k++) {
                double v = kl_red_ld(x, base + k);
                q += v * v;
            }
            var = q / (double)cols;
        } else {
            nm_stats(x, base, cols, &mean, &var);
        }
        double inv = 1.0 / sqrt(var + eps);
        if (om) kl_red_st(om, r, mean);
        if (oi) kl_red_st(oi, r, inv);
        if (x->dtype == KILN_DTYPE_FLOAT) {
            const float *px = (const float *)x->data + base;
            float *py = (float *)y->data + base;
            for (int64_t k = 0; k < cols; k++)
                py[k] = (float)((px[k] - mean) * inv * w[k] + (b ? b[k] : 0.0));
        } else {
            for (int64_t k = 0; k < cols; k++)
                kl_red_st(y, base + k, (kl_red_ld(x, base + k) - mean) * inv * w[k] + (b ? b[k] : 0.0));
        }
    }
done:
    kl_free(w);
    kl_free(b);
    return s;
}

static kiln_status k_layernorm(kl_kctx *c) { return ln_run(c, false); }
static kiln_status k_rmsnorm(kl_kctx *c) { return ln_run(c, true); }

/* ---- LpNormalization ------------------------------------------------------------------------- */

/* X / ||X||_p along `axis` (p = 1 or 2); a zero norm gives 0 (the ONNX
 * reference's rule, instead of 0/0). */
static kiln_status k_lpnorm(kl_kctx *c) {
    const kl_rt *x;
    KL_TRY(nm_input(c, 0, "input", true, &x));
    int axis;
    KL_TRY(kl_ref_axis(kl_node_attr_int(c->node, "axis", -1), x->rank, false, "attribute 'axis'", &axis));
    int64_t p = kl_node_attr_int(c->node, "p", 2);
    if (p != 1 && p != 2) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'p' must be 1 or 2, not %lld", (long long)p);
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, x->dims, &y));
    if (x->count == 0) return KILN_OK;
    int64_t outer, n, inner;
    kl_red_split(x, axis, &outer, &n, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            int64_t base = o * n * inner + in;
            double acc = 0;
            for (int64_t j = 0; j < n; j++) {
                double v = kl_red_ld(x, base + j * inner);
                acc += p == 1 ? fabs(v) : v * v;
            }
            double norm = p == 1 ? acc : sqrt(acc);
            for (int64_t j = 0; j < n; j++) {
                double v = kl_red_ld(x, base + j * inner);
                kl_red_st(y, base + j * inner, norm == 0 ? 0.0 : v / norm);
            }
        }
    return KILN_OK;
}

/* ---- MeanVarianceNormalization ------------------------------------------------------------------ */

typedef struct mvn_ctx {
    int phase; /* 0: sums, 1: squared deviations, 2: write Y */
    const kl_rt *x;
    kl_rt *y;
    double *mean, *var;
} mvn_ctx;

static void mvn_visit(void *vc, int64_t xo, int64_t len, int64_t o, int64_t st) {
    mvn_ctx *m = vc;
    for (int64_t j = 0; j < len; j++) {
        int64_t k = o + j * st;
        double v = kl_red_ld(m->x, xo + j);
        if (m->phase == 0) m->mean[k] += v;
        else if (m->phase == 1) m->var[k] += (v - m->mean[k]) * (v - m->mean[k]);
        else kl_red_st(m->y, xo + j, (v - m->mean[k]) / (sqrt(m->var[k]) + 1e-9));
    }
}

/* (X - mean) / (std + 1e-9) with statistics over `axes` (default 0,2,3). */
static kiln_status k_mvn(kl_kctx *c) {
    const kl_rt *x;
    KL_TRY(nm_input(c, 0, "X", true, &x));
    static const int64_t dflt[] = {0, 2, 3};
    const int64_t *axes = dflt;
    int64_t na = kl_node_attr_ints(c->node, "axes", &axes);
    if (na < 0) {
        axes = dflt;
        na = 3;
    }
    bool red[KILN_MAX_RANK] = {0};
    for (int64_t k = 0; k < na; k++) {
        int a;
        KL_TRY(kl_ref_axis(axes[k], x->rank, false, "attribute 'axes' value", &a));
        red[a] = true;
    }
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, x->dims, &y));
    kl_red_plan p;
    kl_red_plan_init(&p, x->rank, x->dims, red);
    if (p.out_count == 0 || p.in_count == 0) return KILN_OK;
    mvn_ctx m = {0, x, y, kl_calloc((size_t)p.out_count, sizeof(double)), kl_calloc((size_t)p.out_count, sizeof(double))};
    if (!m.mean || !m.var) {
        kl_free(m.mean);
        kl_free(m.var);
        return KILN_ERR_NO_MEMORY;
    }
    double cnt = (double)(p.in_count / p.out_count);
    kl_red_foreach(&p, mvn_visit, &m);
    for (int64_t i = 0; i < p.out_count; i++) m.mean[i] /= cnt;
    m.phase = 1;
    kl_red_foreach(&p, mvn_visit, &m);
    for (int64_t i = 0; i < p.out_count; i++) m.var[i] /= cnt;
    m.phase = 2;
    kl_red_foreach(&p, mvn_visit, &m);
    kl_free(m.mean);
    kl_free(m.var);
    return KILN_OK;
}

/* ---- LRN --------------------------------------------------------------------------------------- */

/* Y = X / (bias + alpha/size * sum of squares over a window of `size`
 * channels)^beta, window [c - floor((size-1)/2), c + ceil((size-1)/2)]. */
static kiln_status k_lrn(kl_kctx *c) {
    const kl_rt *x;
    KL_TRY(nm_input(c, 0, "X", true, &x));
    if (x->rank < 2) return kl_kctx_fail(c, KILN_ERR_SHAPE, "input 'X' must have rank >= 2 (N x C x ...)");
    if (!kl_node_attr(c->node, "size")) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'size' is missing");
    int64_t size = kl_node_attr_int(c->node, "size", 1);
    if (size <= 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'size' must be positive");
    double alpha = kl_node_attr_float(c->node, "alpha", 1e-4f);
    double beta = kl_node_attr_float(c->node, "beta", 0.75f);
    double bias = kl_node_attr_float(c->node, "bias", 1.0f);
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, x->dims, &y));
    if (x->count == 0) return KILN_OK;
    int64_t N = x->dims[0], C = x->dims[1], S = 1;
    for (int i = 2; i < x->rank; i++) S = kl_red_mul(S, x->dims[i]);
    int64_t lo = (size - 1) / 2, hi = size / 2; /* floor and ceil of (size-1)/2 */
    for (int64_t n = 0; n < N; n++)
        for (int64_t ch = 0; ch < C; ch++)
            for (int64_t k = 0; k < S; k++) {
                int64_t c0 = ch - lo < 0 ? 0 : ch - lo, c1 = ch + hi >= C ? C - 1 : ch + hi;
                double q = 0;
                for (int64_t j = c0; j <= c1; j++) {
                    double v = kl_red_ld(x, (n * C + j) * S + k);
                    q += v * v;
                }
                int64_t e = (n * C + ch) * S + k;
                kl_red_st(y, e, kl_red_ld(x, e) / pow(bias + alpha / (double)size * q, beta));
            }
    return KILN_OK;
}

/* ---- the table --------------------------------------------------------------------------------- */

const kl_kernel_def kl_ref_norm[] = {
    {"", "BatchNormalization", 1, 0, KL_T_FLOATS, k_batchnorm},
    {"", "InstanceNormalization", 1, 0, KL_T_FLOATS, k_instancenorm},
    {"", "LayerNormalization", 17, 0, KL_T_FLOATS, k_layernorm},
    {"", "GroupNormalization", 18, 0, KL_T_FLOATS, k_groupnorm},
    {"", "RMSNormalization", 23, 0, KL_T_FLOATS, k_rmsnorm},
    {"", "LpNormalization", 1, 0, KL_T_FLOATS, k_lpnorm},
    {"", "MeanVarianceNormalization", 9, 0, KL_T_FLOATS, k_mvn},
    {"", "LRN", 1, 0, KL_T_FLOATS, k_lrn},
    {"", "Softmax", 1, 0, KL_T_FLOATS, kl_ref_softmax},
    {"", "LogSoftmax", 1, 0, KL_T_FLOATS, kl_ref_logsoftmax},
    {"", "Hardmax", 1, 0, KL_T_FLOATS, kl_ref_hardmax},
    {0},
};
