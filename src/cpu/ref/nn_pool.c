/*
 * CPU reference kernels: pooling (AveragePool, MaxPool with Indices, LpPool,
 * the Global variants), MaxUnpool and MaxRoiPool.  Windows are computed in
 * double over any number of spatial axes; padded positions never enter a
 * max, and enter an average only as count_include_pad says (the divisor then
 * counts the positions inside the padded input, as PyTorch and ONNX
 * Runtime: window parts added by ceil_mode beyond the end padding are not
 * counted).
 */
#include <math.h>
#include <string.h>

#include "cpu/ref/nn.h"

typedef enum { POOL_AVG, POOL_MAX, POOL_LP } pool_kind;

typedef struct pool_args {
    pool_kind kind;
    bool count_pad;  /* AveragePool count_include_pad */
    bool col_major;  /* MaxPool storage_order = 1 */
    double p;        /* LpPool exponent */
} pool_args;

/* Window of output position p: per axis the first input coordinate and
 * the range [lo, hi) of kernel taps inside the input; *padded counts the
 * taps inside the padded input.  False when no tap is inside the input. */
static bool pool_window_at(const kl_nn_geom *g, int64_t p, int64_t *start, int64_t *lo, int64_t *hi,
                           double *padded) {
    bool any = true;
    *padded = 1.0;
    for (int d = g->ns - 1; d >= 0; d--) {
        int64_t o = p % g->out[d], dl = g->d[d], st;
        p /= g->out[d];
        st = start[d] = o * g->s[d] - g->pb[d];
        lo[d] = st >= 0 ? 0 : (-st + dl - 1) / dl;
        hi[d] = g->in[d] - st > 0 ? KL_MIN(g->k[d], (g->in[d] - st + dl - 1) / dl) : 0;
        int64_t lim = g->in[d] + g->pe[d] - st;
        *padded *= lim > 0 ? (double)KL_MIN(g->k[d], (lim + dl - 1) / dl) : 0.0;
        if (lo[d] >= hi[d]) any = false;
    }
    return any;
}

/* Pool x [NC, in...] into y [NC, out...] (ind: MaxPool indices or NULL). */
static void pool_run(const kl_nn_geom *g, int64_t NC, const pool_args *a, const double *x, double *y,
                     int64_t *ind) {
    int ns = g->ns;
    int64_t insz = 1, P = 1, rstr[KILN_MAX_RANK], cstr[KILN_MAX_RANK];
    for (int d = ns - 1; d >= 0; d--) {
        rstr[d] = insz;
        insz *= g->in[d];
        P *= g->out[d];
    }
    for (int d = 0; d < ns; d++) cstr[d] = d == 0 ? 1 : cstr[d - 1] * g->in[d - 1];
    for (int64_t nc = 0; nc < NC; nc++) {
        const double *xc = x + nc * insz;
        for (int64_t p = 0; p < P; p++) {
            int64_t start[KILN_MAX_RANK], lo[KILN_MAX_RANK], hi[KILN_MAX_RANK], kk[KILN_MAX_RANK];
            int64_t cnt = 0, best = -1;
            double padded, acc = a->kind == POOL_MAX ? -INFINITY : 0.0;
            bool any = pool_window_at(g, p, start, lo, hi, &padded);
            for (int d = 0; d < ns; d++) kk[d] = lo[d];
            while (any) {
                int64_t off = 0;
                for (int d = 0; d < ns; d++) off += (start[d] + kk[d] * g->d[d]) * rstr[d];
                double v = xc[off];
                if (a->kind == POOL_MAX) {
                    if (!isnan(v) && (best < 0 || v > acc)) {
                        acc = v;
                        best = off;
                    }
                } else if (a->kind == POOL_AVG) {
                    acc += v;
                } else {
                    acc += pow(fabs(v), a->p);
                }
                cnt++;
                int d = ns - 1;
                for (; d >= 0; d--) {
                    if (++kk[d] < hi[d]) break;
                    kk[d] = lo[d];
                }
                any = d >= 0;
            }
            if (a->kind == POOL_AVG) acc /= a->count_pad ? padded : (double)cnt;
            else if (a->kind == POOL_LP) acc = pow(acc, 1.0 / a->p);
            y[nc * P + p] = acc;
            if (ind) {
                int64_t idx = -1;
                if (best >= 0) {
                    idx = nc * insz;
                    for (int d = 0; d < ns; d++)
                        idx += (best / rstr[d]) % g->in[d] * (a->col_major ? cstr[d] : rstr[d]);
                }
                ind[nc * P + p] = idx;
            }
        }
    }
}

/* Common driver of the windowed pools: X [N, C, spatial...] and the
 * required kernel_shape; writes output 0 (and MaxPool's Indices). */
static kiln_status pool_window(kl_kctx *c, pool_args *a) {
    const kl_rt *x;
    KL_TRY(kl_nn_input(c, 0, "X", true, &x));
    if (!kl_nn_is_float(x->dtype) && a->kind != POOL_MAX)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "X must be a float tensor, got %s", kiln_dtype_name(x->dtype));
    if (x->rank < 3) return kl_kctx_fail(c, KILN_ERR_SHAPE, "X has rank %d, expected N, C and spatial axes", x->rank);
    int ns = x->rank - 2;
    int64_t k[KILN_MAX_RANK];
    bool have_k;
    KL_TRY(kl_nn_attr_ints(c, "kernel_shape", ns, 1, k, &have_k));
    if (!have_k) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'kernel_shape' is required");
    kl_nn_geom g;
    KL_TRY(kl_nn_geom_init(c, ns, x->dims + 2, k, true, &g));
    int64_t yd[KILN_MAX_RANK] = {x->dims[0], x->dims[1]};
    for (int i = 0; i < ns; i++) yd[2 + i] = g.out[i];
    kl_rt *y, *ind = NULL;
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, yd, &y));
    if (a->kind == POOL_MAX && c->n_out > 1 && kl_kctx_want(c, 1))
        KL_TRY(kl_kctx_output(c, 1, KILN_DTYPE_INT64, x->rank, yd, &ind));
    if (y->count == 0) return KILN_OK;
    double *xv, *yv = kl_nn_alloc(y->count, sizeof *yv);
    if (!yv) return KILN_ERR_NO_MEMORY;
    if (kl_nn_as_f64(x, &xv)) {
        kl_nn_free(yv);
        return KILN_ERR_NO_MEMORY;
    }
    pool_run(&g, x->dims[0] * x->dims[1], a, xv, yv, ind ? ind->data : NULL);
    kl_nn_store_f64(y, yv);
    kl_nn_free(xv);
    kl_nn_free(yv);
    return KILN_OK;
}

/* LpPool / GlobalLpPool exponent: attribute p (float in opset 1, int
 * later), default 2. */
static kiln_status pool_p(kl_kctx *c, double *p) {
    const kl_attr *at = kl_node_attr(c->node, "p");
    *p = 2.0;
    if (at) *p = at->type == KL_ATTR_FLOAT ? (double)at->f : (double)at->i;
    if (!(*p > 0.0)) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'p' is %g, must be positive", *p);
    return KILN_OK;
}

kiln_status kl_nn_average_pool(kl_kctx *c) {
    pool_args a = {POOL_AVG, kl_node_attr_int(c->node, "count_include_pad", 0) != 0, false, 1.0};
    return pool_window(c, &a);
}

kiln_status kl_nn_max_pool(kl_kctx *c) {
    int64_t so = kl_node_attr_int(c->node, "storage_order", 0);
    if (so != 0 && so != 1)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "storage_order is %lld, must be 0 or 1", (long long)so);
    pool_args a = {POOL_MAX, false, so == 1, 1.0};
    return pool_window(c, &a);
}

kiln_status kl_nn_lp_pool(kl_kctx *c) {
    pool_args a = {POOL_LP, false, false, 2.0};
    KL_TRY(pool_p(c, &a.p));
    return pool_window(c, &a);
}

/* Global pools: reduce every spatial axis of X [N, C, ...] to 1. */
static kiln_status pool_global(kl_kctx *c, pool_kind kind) {
    const kl_rt *x;
    double p = 2.0;
    KL_TRY(kl_nn_input(c, 0, "X", true, &x));
    if (!kl_nn_is_float(x->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "X must be a float tensor, got %s", kiln_dtype_name(x->dtype));
    if (x->rank < 2) return kl_kctx_fail(c, KILN_ERR_SHAPE, "X has rank %d, expected at least 2", x->rank);
    if (kind == POOL_LP) KL_TRY(pool_p(c, &p));
    int64_t yd[KILN_MAX_RANK] = {x->dims[0], x->dims[1]};
    for (int i = 2; i < x->rank; i++) yd[i] = 1;
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, yd, &y));
    if (y->count == 0) return KILN_OK;
    int64_t sz = x->count / y->count;
    double *yv = kl_nn_alloc(y->count, sizeof *yv);
    if (!yv) return KILN_ERR_NO_MEMORY;
    for (int64_t nc = 0; nc < y->count; nc++) {
        double acc = kind == POOL_MAX ? -INFINITY : 0.0;
        if (x->dtype == KILN_DTYPE_FLOAT) {
            const float *xf = (const float *)x->data + nc * sz;
            for (int64_t i = 0; i < sz; i++) {
                double v = xf[i];
                if (kind == POOL_AVG) acc += v;
                else if (kind == POOL_MAX) acc = isnan(v) || v > acc ? v : acc;
                else acc += pow(fabs(v), p);
                if (isnan(acc) && kind == POOL_MAX) break;
            }
        } else {
            for (int64_t i = 0; i < sz; i++) {
                double v = kl_rt_get_f64(x, nc * sz + i);
                if (kind == POOL_AVG) acc += v;
                else if (kind == POOL_MAX) acc = isnan(v) || v > acc ? v : acc;
                else acc += pow(fabs(v), p);
                if (isnan(acc) && kind == POOL_MAX) break;
            }
        }
        if (kind == POOL_AVG) acc /= (double)sz;
        else if (kind == POOL_LP) acc = pow(acc, 1.0 / p);
        yv[nc] = acc;
    }
    kl_nn_store_f64(y, yv);
    kl_nn_free(yv);
    return KILN_OK;
}

kiln_status kl_nn_global_average_pool(kl_kctx *c) {
    return pool_global(c, POOL_AVG);
}

kiln_status kl_nn_global_max_pool(kl_kctx *c) {
    return pool_global(c, POOL_MAX);
}

kiln_status kl_nn_global_lp_pool(kl_kctx *c) {
    return pool_global(c, POOL_LP);
}

/* ---- MaxUnpool ------------------------------------------------------------------------ */

/* Y = zeros(inferred shape (in-1)*stride + k - pads); Y[I[j]] = X[j]; then
 * the result is placed at the origin of output_shape when that input is
 * given (as the ONNX reference: indices refer to the inferred shape). */
kiln_status kl_nn_max_unpool(kl_kctx *c) {
    const kl_rt *x, *ix, *os;
    KL_TRY(kl_nn_input(c, 0, "X", true, &x));
    KL_TRY(kl_nn_input(c, 1, "I", true, &ix));
    KL_TRY(kl_nn_input(c, 2, "output_shape", false, &os));
    if (x->rank < 3) return kl_kctx_fail(c, KILN_ERR_SHAPE, "X has rank %d, expected at least 3", x->rank);
    if (ix->dtype != KILN_DTYPE_INT64 || !kl_ref_same_shape(x, ix))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "indices I must be int64 with the shape of X");
    int ns = x->rank - 2;
    int64_t k[KILN_MAX_RANK], s[KILN_MAX_RANK], pads[2 * KILN_MAX_RANK] = {0};
    bool have_k;
    for (int i = 0; i < ns; i++) s[i] = 1;
    KL_TRY(kl_nn_attr_ints(c, "kernel_shape", ns, 1, k, &have_k));
    if (!have_k) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'kernel_shape' is required");
    KL_TRY(kl_nn_attr_ints(c, "strides", ns, 1, s, NULL));
    KL_TRY(kl_nn_attr_ints(c, "pads", 2 * ns, 0, pads, NULL));
    int64_t inf[KILN_MAX_RANK] = {x->dims[0], x->dims[1]}, yd[KILN_MAX_RANK], ninf = x->dims[0] * x->dims[1];
    for (int i = 0; i < ns; i++) {
        bool bad = kl_mul_i64(x->dims[2 + i] - 1, s[i], &inf[2 + i]);
        inf[2 + i] += k[i] - pads[i] - pads[ns + i];
        if (bad || inf[2 + i] < 0 || kl_mul_i64(ninf, inf[2 + i], &ninf) || ninf > ((int64_t)1 << 40))
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "spatial axis %d: output size is invalid", i);
    }
    memcpy(yd, inf, sizeof yd);
    if (os) {
        int64_t n;
        KL_TRY(kl_ref_input_ints(c, 2, yd, KILN_MAX_RANK, &n));
        if (n != x->rank)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "output_shape has %lld values, expected %d", (long long)n,
                                x->rank);
        for (int i = 0; i < x->rank; i++)
            if (yd[i] < 0) return kl_kctx_fail(c, KILN_ERR_SHAPE, "output_shape has a negative value");
    }
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, yd, &y));
    size_t es;
    kl_dtype_nbytes(x->dtype, 1, &es);
    bool direct = memcmp(yd, inf, (size_t)x->rank * sizeof *yd) == 0;
    uint8_t *buf = direct ? y->data : kl_calloc((size_t)(ninf ? ninf : 1), es);
    if (!buf) return KILN_ERR_NO_MEMORY;
    const int64_t *iv = ix->data;
    for (int64_t j = 0; j < x->count; j++) {
        if (iv[j] < 0 || iv[j] >= ninf) {
            if (!direct) kl_nn_free(buf);
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "index %lld at position %lld is outside [0, %lld)",
                                (long long)iv[j], (long long)j, (long long)ninf);
        }
        memcpy(buf + (size_t)iv[j] * es, (const uint8_t *)x->data + (size_t)j * es, es);
    }
    if (direct) return KILN_OK;
    /* Copy the overlap of the inferred block into the origin of y. */
    int64_t istr[KILN_MAX_RANK], ystr[KILN_MAX_RANK], ov[KILN_MAX_RANK], cnt = 1;
    kl_ref_strides(x->rank, inf, istr);
    kl_ref_strides(x->rank, yd, ystr);
    for (int i = 0; i < x->rank; i++) cnt *= ov[i] = KL_MIN(inf[i], yd[i]);
    for (int64_t e = 0; e < cnt; e++) {
        int64_t q = e, io = 0, yo = 0;
        for (int i = x->rank - 1; i >= 0; i--) {
            int64_t v = q % ov[i];
            q /= ov[i];
            io += v * istr[i];
            yo += v * ystr[i];
        }
        memcpy((uint8_t *)y->data + (size_t)yo * es, buf + (size_t)io * es, es);
    }
    kl_nn_free(buf);
    return KILN_OK;
}

/* ---- MaxRoiPool ----------------------------------------------------------------------- */

/* Round half away from zero into int64, clamped. */
static int64_t roi_round(double v) {
    if (isnan(v)) return 0;
    v = round(v);
    return v < -9e15 ? (int64_t)-9e15 : v > 9e15 ? (int64_t)9e15 : (int64_t)v;
}

kiln_status kl_nn_max_roi_pool(kl_kctx *c) {
    const kl_rt *x, *rois;
    KL_TRY(kl_nn_input(c, 0, "X", true, &x));
    KL_TRY(kl_nn_input(c, 1, "rois", true, &rois));
    KL_TRY(kl_nn_same_type(c, 1, "rois"));
    if (x->rank != 4) return kl_kctx_fail(c, KILN_ERR_SHAPE, "X has rank %d, expected 4", x->rank);
    if (rois->rank != 2 || rois->dims[1] != 5)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "rois must be [num_rois, 5]");
    int64_t ps[2];
    bool have;
    KL_TRY(kl_nn_attr_ints(c, "pooled_shape", 2, 1, ps, &have));
    if (!have) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'pooled_shape' is required");
    bool dbl = x->dtype == KILN_DTYPE_DOUBLE;
    double scale = kl_node_attr_float(c->node, "spatial_scale", 1.0f);
    int64_t R = rois->dims[0], N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    int64_t yd[4] = {R, C, ps[0], ps[1]};
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, x->dtype, 4, yd, &y));
    for (int64_t r = 0; r < R; r++) {
        double rv[5];
        for (int i = 0; i < 5; i++) rv[i] = kl_rt_get_f64(rois, r * 5 + i);
        if (!(rv[0] >= 0 && rv[0] < (double)N))
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "roi %lld has batch index %g, outside [0, %lld)",
                                (long long)r, rv[0], (long long)N);
        int64_t bi = (int64_t)rv[0], st[4];
        /* As the ONNX reference: float arithmetic for float inputs. */
        for (int i = 0; i < 4; i++)
            st[i] = roi_round(dbl ? rv[1 + i] * scale : (double)((float)rv[1 + i] * (float)scale));
        int64_t rw = KL_MAX(st[2] - st[0] + 1, 1), rh = KL_MAX(st[3] - st[1] + 1, 1);
        double bh = dbl ? (double)rh / (double)ps[0] : (double)((float)rh / (float)ps[0]);
        double bw = dbl ? (double)rw / (double)ps[1] : (double)((float)rw / (float)ps[1]);
        for (int64_t ph = 0; ph < ps[0]; ph++)
            for (int64_t pw = 0; pw < ps[1]; pw++) {
                double h0 = dbl ? (double)ph * bh : (double)((float)ph * (float)bh);
                double h1 = dbl ? (double)(ph + 1) * bh : (double)((float)(ph + 1) * (float)bh);
                double w0 = dbl ? (double)pw * bw : (double)((float)pw * (float)bw);
                double w1 = dbl ? (double)(pw + 1) * bw : (double)((float)(pw + 1) * (float)bw);
                int64_t hs = KL_MIN(KL_MAX((int64_t)floor(h0) + st[1], 0), H);
                int64_t he = KL_MIN(KL_MAX((int64_t)ceil(h1) + st[1], 0), H);
                int64_t ws = KL_MIN(KL_MAX((int64_t)floor(w0) + st[0], 0), W);
                int64_t we = KL_MIN(KL_MAX((int64_t)ceil(w1) + st[0], 0), W);
                for (int64_t ch = 0; ch < C; ch++) {
                    double best = 0.0;
                    if (he > hs && we > ws) {
                        best = -INFINITY;
                        for (int64_t h = hs; h < he; h++)
                            for (int64_t w = ws; w < we; w++) {
                                double v = kl_rt_get_f64(x, ((bi * C + ch) * H + h) * W + w);
                                if (v > best || isnan(v)) best = v;
                                if (isnan(best)) break;
                            }
                    }
                    kl_rt_set_f64(y, ((r * C + ch) * ps[0] + ph) * ps[1] + pw, best);
                }
            }
    }
    return KILN_OK;
}
