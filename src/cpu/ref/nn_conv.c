/*
 * CPU reference kernels: Conv, ConvTranspose, DeformConv and Col2Im.
 * Conv and ConvTranspose run im2col/col2im + GEMM in float (float, float16,
 * bfloat16) or double; DeformConv samples its columns bilinearly in double;
 * Col2Im accumulates in double.
 */
#include <math.h>
#include <string.h>

#include "cpu/ref/nn.h"

/* Most elements of one im2col buffer (output positions are chunked). */
#define NN_COL_BUDGET ((int64_t)1 << 22)

#define NN_T float
#define NN_(name) name##_f32
#define NN_GEMM kl_nn_sgemm
#include "cpu/ref/nn_conv_t.h"
#undef NN_T
#undef NN_
#undef NN_GEMM

#define NN_T double
#define NN_(name) name##_f64
#define NN_GEMM kl_nn_dgemm
#include "cpu/ref/nn_conv_t.h"
#undef NN_T
#undef NN_
#undef NN_GEMM

/* Checks shared by the convolutions: X [N, C, spatial...] and W of the same
 * rank (and type), group >= 1; kernel sizes from W's dims 2.. (attribute
 * kernel_shape, when given, must agree). */
static kiln_status conv_common(kl_kctx *c, const kl_rt *x, const kl_rt *w, int min_rank, int64_t *group,
                               int64_t *k) {
    char b1[96], b2[96];
    if (x->rank < min_rank || x->rank != w->rank)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "X %s and W %s must have the same rank >= %d",
                            kl_rt_describe(x, b1, sizeof b1), kl_rt_describe(w, b2, sizeof b2), min_rank);
    *group = kl_node_attr_int(c->node, "group", 1);
    if (*group < 1) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "group is %lld, must be >= 1", (long long)*group);
    int ns = x->rank - 2;
    int64_t ks[KILN_MAX_RANK];
    bool have_k;
    KL_TRY(kl_nn_attr_ints(c, "kernel_shape", ns, 1, ks, &have_k));
    for (int i = 0; i < ns; i++) {
        k[i] = w->dims[2 + i];
        if (have_k && ks[i] != k[i])
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "kernel_shape[%d] is %lld but W %s has %lld", i, (long long)ks[i],
                                kl_rt_describe(w, b1, sizeof b1), (long long)k[i]);
        if (k[i] < 1)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "W %s has an empty kernel", kl_rt_describe(w, b1, sizeof b1));
    }
    return KILN_OK;
}

/* Bias input i: NULL or a tensor of exactly m elements. */
static kiln_status conv_bias(kl_kctx *c, size_t i, int64_t m, const kl_rt **b) {
    KL_TRY(kl_nn_input(c, i, "B", false, b));
    if (!*b) return KILN_OK;
    KL_TRY(kl_nn_same_type(c, i, "B"));
    if ((*b)->count != m)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "bias B has %lld elements, expected %lld", (long long)(*b)->count,
                            (long long)m);
    return KILN_OK;
}

typedef kiln_status (*conv_f32_fn)(const kl_nn_geom *, int64_t, int64_t, int64_t, int64_t, const float *,
                                   const float *, const float *, float *);
typedef kiln_status (*conv_f64_fn)(const kl_nn_geom *, int64_t, int64_t, int64_t, int64_t, const double *,
                                   const double *, const double *, double *);

/* Run a typed core on x, w, b into y: double in double, the rest in float. */
static kiln_status conv_dispatch(const kl_nn_geom *g, int64_t N, int64_t C, int64_t M, int64_t group,
                                 const kl_rt *x, const kl_rt *w, const kl_rt *b, kl_rt *y, conv_f32_fn f32,
                                 conv_f64_fn f64) {
    if (y->count == 0) return KILN_OK;
    if (x->dtype == KILN_DTYPE_DOUBLE) return f64(g, N, C, M, group, x->data, w->data, b ? b->data : NULL, y->data);
    const float *xv, *wv, *bv = NULL;
    float *xo, *wo = NULL, *bo = NULL, *yv, *yo = NULL;
    kiln_status s;
    KL_TRY(kl_nn_as_f32(x, &xv, &xo));
    if ((s = kl_nn_as_f32(w, &wv, &wo)) || (b && (s = kl_nn_as_f32(b, &bv, &bo))) ||
        (s = kl_nn_out_f32(y, &yv, &yo)))
        goto done;
    s = f32(g, N, C, M, group, xv, wv, bv, yv);
    kl_nn_finish_f32(y, yo);
    yo = NULL;
done:
    kl_nn_free(xo);
    kl_nn_free(wo);
    kl_nn_free(bo);
    kl_nn_free(yo);
    return s;
}

kiln_status kl_nn_conv(kl_kctx *c) {
    const kl_rt *x, *w, *b;
    int64_t group, k[KILN_MAX_RANK];
    KL_TRY(kl_nn_input(c, 0, "X", true, &x));
    KL_TRY(kl_nn_input(c, 1, "W", true, &w));
    KL_TRY(kl_nn_same_type(c, 1, "W"));
    KL_TRY(conv_common(c, x, w, 2, &group, k));
    int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0];
    if (C != w->dims[1] * group || M % group != 0)
        return kl_kctx_fail(c, KILN_ERR_SHAPE,
                            "X has %lld channels and W is [%lld,%lld,...] with group %lld: expected X channels = "
                            "W dim 1 x group and W dim 0 divisible by group",
                            (long long)C, (long long)M, (long long)w->dims[1], (long long)group);
    KL_TRY(conv_bias(c, 2, M, &b));
    kl_nn_geom g;
    KL_TRY(kl_nn_geom_init(c, x->rank - 2, x->dims + 2, k, false, &g));
    int64_t yd[KILN_MAX_RANK] = {N, M};
    for (int i = 0; i < g.ns; i++) yd[2 + i] = g.out[i];
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, yd, &y));
    return conv_dispatch(&g, N, C, M, group, x, w, b, y, conv_f32, conv_f64);
}

/* Floor division by 2 (Python's //), for negative total paddings. */
static int64_t floor_half(int64_t v) {
    return v >= 0 ? v / 2 : -((-v + 1) / 2);
}

kiln_status kl_nn_conv_t_geometry(kl_kctx *c, const kl_rt *x, const kl_rt *w, int64_t *group_out, kl_nn_geom *gout) {
    int64_t group, k[KILN_MAX_RANK];
    KL_TRY(conv_common(c, x, w, 3, &group, k));
    int ns = x->rank - 2;
    int64_t C = x->dims[1];
    if (C != w->dims[0] || C % group != 0)
        return kl_kctx_fail(c, KILN_ERR_SHAPE,
                            "X has %lld channels but W dim 0 is %lld (must be equal and divisible by group %lld)",
                            (long long)C, (long long)w->dims[0], (long long)group);
    kl_nn_geom g;
    int64_t pads[2 * KILN_MAX_RANK] = {0}, opad[KILN_MAX_RANK] = {0};
    bool has_pads;
    memset(&g, 0, sizeof g);
    g.ns = ns;
    for (int i = 0; i < ns; i++) {
        g.k[i] = k[i];
        g.s[i] = g.d[i] = 1;
        g.out[i] = x->dims[2 + i];
    }
    KL_TRY(kl_nn_attr_ints(c, "strides", ns, 1, g.s, NULL));
    KL_TRY(kl_nn_attr_ints(c, "dilations", ns, 1, g.d, NULL));
    KL_TRY(kl_nn_attr_ints(c, "pads", 2 * ns, 0, pads, &has_pads));
    KL_TRY(kl_nn_attr_ints(c, "output_padding", ns, 0, opad, NULL));
    const char *ap = kl_node_attr_string(c->node, "auto_pad", "NOTSET");
    bool upper = strcmp(ap, "SAME_UPPER") == 0, same = !has_pads && (upper || strcmp(ap, "SAME_LOWER") == 0);
    const int64_t *os;
    int64_t n_os = kl_node_attr_ints(c->node, "output_shape", &os);
    if (n_os >= 0 && n_os != ns && n_os != ns + 2)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'output_shape' has %lld values, expected %d",
                            (long long)n_os, ns);
    for (int i = 0; i < ns; i++) {
        int64_t in = x->dims[2 + i], ek, natural, out, pb, total;
        if (kl_mul_i64(g.k[i] - 1, g.d[i], &ek) || kl_mul_i64(g.s[i], in - 1, &natural) ||
            natural > ((int64_t)1 << 50) || ek > ((int64_t)1 << 50))
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "spatial axis %d: the output size overflows", i);
        natural += opad[i] + ek + 1;
        ek += 1;
        if (n_os >= 0) {
            /* Spec: pads generated from output_shape; a larger output only
             * extends the end (the total padding is clamped at 0). */
            out = os[n_os - ns + i];
            total = KL_MAX(natural - out, 0);
            pb = upper ? total / 2 : total - total / 2;
        } else if (same) {
            out = in * g.s[i];
            total = natural - out;
            pb = upper ? floor_half(total) : total - floor_half(total);
        } else {
            bool valid = strcmp(ap, "VALID") == 0 && !has_pads;
            pb = valid ? 0 : pads[i];
            out = natural - pb - (valid ? 0 : pads[ns + i]);
        }
        if (out < 1)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "spatial axis %d: output size %lld is not positive", i,
                                (long long)out);
        g.in[i] = out;
        g.pb[i] = pb;
    }
    *group_out = group;
    *gout = g;
    return KILN_OK;
}

kiln_status kl_nn_conv_transpose(kl_kctx *c) {
    const kl_rt *x, *w, *b;
    int64_t group;
    kl_nn_geom g;
    KL_TRY(kl_nn_input(c, 0, "X", true, &x));
    KL_TRY(kl_nn_input(c, 1, "W", true, &w));
    KL_TRY(kl_nn_same_type(c, 1, "W"));
    KL_TRY(kl_nn_conv_t_geometry(c, x, w, &group, &g));
    int ns = g.ns;
    int64_t N = x->dims[0], C = x->dims[1], M = w->dims[1] * group;
    KL_TRY(conv_bias(c, 2, M, &b));
    int64_t yd[KILN_MAX_RANK] = {N, M};
    for (int i = 0; i < ns; i++) yd[2 + i] = g.in[i];
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, yd, &y));
    return conv_dispatch(&g, N, C, M, group, x, w, b, y, conv_t_f32, conv_t_f64);
}

/* ---- DeformConv ------------------------------------------------------------------------- */

/* Linear interpolation of image (sizes in[0..ns)) at pos, zero outside. */
static double deform_sample(int ns, const int64_t *in, const int64_t *istr, const double *img, const double *pos) {
    int64_t base[KILN_MAX_RANK];
    double frac[KILN_MAX_RANK], sum = 0.0;
    for (int d = 0; d < ns; d++) {
        if (!(pos[d] > -1.0 && pos[d] < (double)in[d])) return 0.0; /* also NaN */
        double f = floor(pos[d]);
        base[d] = (int64_t)f;
        frac[d] = pos[d] - f;
    }
    for (unsigned corner = 0; corner < (1u << ns); corner++) {
        double wgt = 1.0;
        int64_t off = 0;
        bool ok = true;
        for (int d = 0; d < ns && ok; d++) {
            int up = (corner >> d) & 1;
            int64_t id = base[d] + up;
            wgt *= up ? frac[d] : 1.0 - frac[d];
            if (id < 0 || id >= in[d]) ok = false;
            off += id * istr[d];
        }
        if (ok && wgt != 0.0) sum += wgt * img[off];
    }
    return sum;
}

/* Check that t is [N, ch, out...]. */
static kiln_status deform_shape(kl_kctx *c, const kl_rt *t, const char *name, int64_t N, int64_t ch,
                                const kl_nn_geom *g) {
    bool ok = t->rank == g->ns + 2 && t->dims[0] == N && t->dims[1] == ch;
    for (int i = 0; ok && i < g->ns; i++) ok = t->dims[2 + i] == g->out[i];
    if (!ok) {
        char b[96];
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "input '%s' is %s, expected [%lld,%lld,<output spatial sizes>]", name,
                            kl_rt_describe(t, b, sizeof b), (long long)N, (long long)ch);
    }
    return KILN_OK;
}

kiln_status kl_nn_deform_conv(kl_kctx *c) {
    const kl_rt *x, *w, *off, *b, *mask;
    int64_t group, k[KILN_MAX_RANK];
    KL_TRY(kl_nn_input(c, 0, "X", true, &x));
    KL_TRY(kl_nn_input(c, 1, "W", true, &w));
    KL_TRY(kl_nn_input(c, 2, "offset", true, &off));
    KL_TRY(kl_nn_input(c, 4, "mask", false, &mask));
    KL_TRY(kl_nn_same_type(c, 1, "W"));
    KL_TRY(kl_nn_same_type(c, 2, "offset"));
    KL_TRY(kl_nn_same_type(c, 4, "mask"));
    KL_TRY(conv_common(c, x, w, 3, &group, k));
    int ns = x->rank - 2;
    int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], og = kl_node_attr_int(c->node, "offset_group", 1);
    if (C != w->dims[1] * group || M % group != 0)
        return kl_kctx_fail(c, KILN_ERR_SHAPE,
                            "X has %lld channels and W is [%lld,%lld,...] with group %lld: expected X channels = "
                            "W dim 1 x group and W dim 0 divisible by group",
                            (long long)C, (long long)M, (long long)w->dims[1], (long long)group);
    if (og < 1 || C % og != 0)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "offset_group %lld does not divide the %lld channels",
                            (long long)og, (long long)C);
    KL_TRY(conv_bias(c, 3, M, &b));
    kl_nn_geom g;
    KL_TRY(kl_nn_geom_init(c, ns, x->dims + 2, k, false, &g));
    int64_t prodk = 1, P = 1, insz = 1, istr[KILN_MAX_RANK];
    for (int d = ns - 1; d >= 0; d--) {
        istr[d] = insz;
        insz *= g.in[d];
        prodk *= g.k[d];
        P *= g.out[d];
    }
    KL_TRY(deform_shape(c, off, "offset", N, og * prodk * ns, &g));
    if (mask) KL_TRY(deform_shape(c, mask, "mask", N, og * prodk, &g));
    int64_t yd[KILN_MAX_RANK] = {N, M};
    for (int i = 0; i < ns; i++) yd[2 + i] = g.out[i];
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, yd, &y));
    if (y->count == 0) return KILN_OK;
    double *xv = NULL, *wv = NULL, *ov = NULL, *bv = NULL, *mv = NULL, *yv = NULL, *col = NULL;
    int64_t Cg = C / group, Mg = M / group, Kall = C * prodk, Kg = Cg * prodk, cpo = C / og;
    int64_t pc = KL_MAX(1, KL_MIN(P, NN_COL_BUDGET / KL_MAX(Kall, 1)));
    kiln_status s = KILN_ERR_NO_MEMORY;
    if (kl_nn_as_f64(x, &xv) || kl_nn_as_f64(w, &wv) || kl_nn_as_f64(off, &ov) || (b && kl_nn_as_f64(b, &bv)) ||
        (mask && kl_nn_as_f64(mask, &mv)) || !(yv = kl_calloc((size_t)y->count, sizeof *yv)) ||
        !(col = kl_nn_alloc(Kall * pc, sizeof *col)))
        goto done;
    s = KILN_OK;
    for (int64_t n = 0; n < N && !s; n++) {
        double *yn = yv + n * M * P;
        for (int64_t m = 0; bv && m < M; m++)
            for (int64_t p = 0; p < P; p++) yn[m * P + p] = bv[m];
        for (int64_t p0 = 0; p0 < P && !s; p0 += pc) {
            int64_t p1 = KL_MIN(P, p0 + pc);
            for (int64_t r = 0; r < Kall; r++) {
                int64_t ch = r / prodk, kk = r % prodk, gi = ch / cpo, kidx[KILN_MAX_RANK], kr = kk;
                for (int d = ns - 1; d >= 0; d--) {
                    kidx[d] = kr % g.k[d];
                    kr /= g.k[d];
                }
                const double *img = xv + (n * C + ch) * insz;
                const double *offs = ov + (n * og * prodk * ns + (gi * prodk + kk) * ns) * P;
                const double *mk = mv ? mv + (n * og * prodk + gi * prodk + kk) * P : NULL;
                for (int64_t p = p0; p < p1; p++) {
                    double pos[KILN_MAX_RANK];
                    int64_t q = p;
                    for (int d = ns - 1; d >= 0; d--) {
                        int64_t o = q % g.out[d];
                        q /= g.out[d];
                        pos[d] = (double)(o * g.s[d] - g.pb[d] + kidx[d] * g.d[d]) + offs[d * P + p];
                    }
                    double v = deform_sample(ns, g.in, istr, img, pos);
                    col[r * (p1 - p0) + (p - p0)] = mk ? v * mk[p] : v;
                }
            }
            for (int64_t gi = 0; gi < group && !s; gi++)
                s = kl_nn_dgemm(Mg, p1 - p0, Kg, 1.0, wv + gi * Mg * Kg, Kg, 1, col + gi * Kg * (p1 - p0), p1 - p0, 1,
                                yn + gi * Mg * P + p0, P);
        }
    }
    if (!s) kl_nn_store_f64(y, yv);
done:
    kl_nn_free(xv);
    kl_nn_free(wv);
    kl_nn_free(ov);
    kl_nn_free(bv);
    kl_nn_free(mv);
    kl_nn_free(yv);
    kl_nn_free(col);
    return s;
}

/* ---- Col2Im ------------------------------------------------------------------------------ */

kiln_status kl_nn_col2im(kl_kctx *c) {
    const kl_rt *x, *is, *bs;
    KL_TRY(kl_nn_input(c, 0, "input", true, &x));
    KL_TRY(kl_nn_input(c, 1, "image_shape", true, &is));
    KL_TRY(kl_nn_input(c, 2, "block_shape", true, &bs));
    int64_t img[KILN_MAX_RANK], blk[KILN_MAX_RANK], ni, nb;
    KL_TRY(kl_ref_input_ints(c, 1, img, KILN_MAX_RANK - 2, &ni));
    KL_TRY(kl_ref_input_ints(c, 2, blk, KILN_MAX_RANK - 2, &nb));
    if (ni != nb || ni < 1)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "image_shape has %lld values and block_shape %lld (need equal, >= 1)",
                            (long long)ni, (long long)nb);
    if (x->rank != 3) return kl_kctx_fail(c, KILN_ERR_SHAPE, "input has rank %d, expected 3", x->rank);
    int ns = (int)ni;
    int64_t prodb = 1;
    for (int i = 0; i < ns; i++) {
        if (blk[i] < 1 || img[i] < 1 || kl_mul_i64(prodb, blk[i], &prodb))
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "image_shape and block_shape values must be positive");
    }
    if (x->dims[1] % prodb != 0)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "input has %lld channels, not a multiple of the block size %lld",
                            (long long)x->dims[1], (long long)prodb);
    kl_nn_geom g;
    KL_TRY(kl_nn_geom_init(c, ns, img, blk, false, &g));
    int64_t L = 1, N = x->dims[0], C = x->dims[1] / prodb;
    for (int i = 0; i < ns; i++) L *= g.out[i];
    if (L != x->dims[2])
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "input has %lld blocks (dim 2), the geometry gives %lld",
                            (long long)x->dims[2], (long long)L);
    int64_t yd[KILN_MAX_RANK] = {N, C};
    for (int i = 0; i < ns; i++) yd[2 + i] = img[i];
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, x->dtype, ns + 2, yd, &y));
    if (y->count == 0 || x->count == 0) return KILN_OK;
    double *xv, *yv = kl_calloc((size_t)y->count, sizeof *yv);
    if (!yv) return KILN_ERR_NO_MEMORY;
    if (kl_nn_as_f64(x, &xv)) {
        kl_nn_free(yv);
        return KILN_ERR_NO_MEMORY;
    }
    int64_t isz = y->count / (N * C);
    for (int64_t n = 0; n < N; n++) im_col_f64(&g, C, 0, L, yv + n * C * isz, xv + n * C * prodb * L, false);
    kl_nn_store_f64(y, yv);
    kl_nn_free(xv);
    kl_nn_free(yv);
    return KILN_OK;
}
