/*
 * CPU reference kernels, tensor family: indexing (Gather, GatherElements,
 * GatherND) and scattering (ScatterND, ScatterElements / Scatter,
 * TensorScatter).  Every index read from a tensor is checked against its
 * axis (negative indices count from the end, as the spec allows).
 */
#include <math.h>
#include <string.h>

#include "cpu/ref/tensor.h"

/* Input i as an int32/int64 index tensor. */
static kiln_status kl_tz_need_indices(kl_kctx *c, size_t i, kl_rt **out) {
    KL_TRY(kl_tz_need(c, i, "indices", out));
    if ((*out)->dtype != KILN_DTYPE_INT64 && (*out)->dtype != KILN_DTYPE_INT32)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "indices must be int32 or int64, not %s", kiln_dtype_name((*out)->dtype));
    return KILN_OK;
}

/* Index element i (int32 or int64). */
static int64_t kl_tz_ix(const kl_rt *t, int64_t i) {
    return t->dtype == KILN_DTYPE_INT64 ? ((const int64_t *)t->data)[i] : ((const int32_t *)t->data)[i];
}

/* ---- reductions of the scatter operators ------------------------------------------- */

enum { KL_RED_NONE, KL_RED_ADD, KL_RED_MUL, KL_RED_MAX, KL_RED_MIN };

/* The `reduction` attribute (opset 16: none/add/mul; 18: max/min too). */
static kiln_status kl_tz_reduction(kl_kctx *c, const kl_rt *data, int *out) {
    const char *r = kl_node_attr_string(c->node, "reduction", "none");
    *out = !strcmp(r, "none") ? KL_RED_NONE : !strcmp(r, "add") ? KL_RED_ADD : !strcmp(r, "mul") ? KL_RED_MUL
           : !strcmp(r, "max") && c->node->opset >= 18 ? KL_RED_MAX
           : !strcmp(r, "min") && c->node->opset >= 18 ? KL_RED_MIN : -1;
    if (*out < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "reduction '%s' is not supported", r);
    if (*out != KL_RED_NONE && (data->dtype == KILN_DTYPE_STRING || kiln_dtype_bits(data->dtype) < 8))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "reduction '%s' does not apply to %s", r, kiln_dtype_name(data->dtype));
    return KILN_OK;
}

/* red(a, b) in double; max/min propagate NaN like numpy. */
static double kl_tz_red_f64(int red, double a, double b) {
    switch (red) {
    case KL_RED_ADD: return a + b;
    case KL_RED_MUL: return a * b;
    case KL_RED_MAX: return isnan(a) || isnan(b) ? NAN : a > b ? a : b;
    default: return isnan(a) || isnan(b) ? NAN : a < b ? a : b;
    }
}

/* y[yi] = red(y[yi], u[ui]); integers wrap, floats compute in double. */
static kiln_status kl_tz_apply(kl_rt *y, int64_t yi, const kl_rt *u, int64_t ui, int red, size_t es) {
    if (red == KL_RED_NONE) return kl_tz_move1(y, yi, u, ui, es);
    if (y->dtype == KILN_DTYPE_FLOAT) {
        float *yp = y->data;
        yp[yi] = (float)kl_tz_red_f64(red, yp[yi], ((const float *)u->data)[ui]);
    } else if (kl_dtype_is_float(y->dtype)) {
        kl_rt_set_f64(y, yi, kl_tz_red_f64(red, kl_rt_get_f64(y, yi), kl_rt_get_f64(u, ui)));
    } else {
        int64_t a = kl_rt_get_i64(y, yi), b = kl_rt_get_i64(u, ui), r;
        bool uns = !kl_dtype_is_signed(y->dtype);
        switch (red) {
        case KL_RED_ADD: r = (int64_t)((uint64_t)a + (uint64_t)b); break;
        case KL_RED_MUL: r = (int64_t)((uint64_t)a * (uint64_t)b); break;
        case KL_RED_MAX: r = (uns ? (uint64_t)a > (uint64_t)b : a > b) ? a : b; break;
        default: r = (uns ? (uint64_t)a < (uint64_t)b : a < b) ? a : b; break;
        }
        kl_rt_set_i64(y, yi, r);
    }
    return KILN_OK;
}

/* ---- Gather ----------------------------------------------------------------------- */

/* Gather: data[..., indices[...], ...] along `axis`. */
kiln_status kl_tz_gather(kl_kctx *c) {
    kl_rt *x = NULL, *ix = NULL, *y = NULL;
    KL_TRY(kl_tz_need(c, 0, "data", &x));
    KL_TRY(kl_tz_need_indices(c, 1, &ix));
    if (x->rank < 1) return kl_kctx_fail(c, KILN_ERR_SHAPE, "data must have rank >= 1");
    int ax, r = x->rank - 1 + ix->rank;
    KL_TRY(kl_ref_axis(kl_node_attr_int(c->node, "axis", 0), x->rank, false, "axis", &ax));
    if (r > KILN_MAX_RANK) return kl_kctx_fail(c, KILN_ERR_UNSUPPORTED, "output rank %d exceeds %d", r, KILN_MAX_RANK);
    int64_t dims[KILN_MAX_RANK], outer = 1, inner = 1, d = x->dims[ax], ni = ix->count;
    int n = 0;
    for (int i = 0; i < ax; i++) outer = kl_tz_mulw(outer, (dims[n++] = x->dims[i]));
    for (int i = 0; i < ix->rank; i++) dims[n++] = ix->dims[i];
    for (int i = ax + 1; i < x->rank; i++) inner = kl_tz_mulw(inner, (dims[n++] = x->dims[i]));
    int64_t *iv = kl_calloc((size_t)(ni ? ni : 1), sizeof *iv);
    if (!iv) return KILN_ERR_NO_MEMORY;
    kiln_status s = KILN_OK;
    for (int64_t j = 0; !s && j < ni; j++) s = kl_tz_index(c, kl_tz_ix(ix, j), d, "indices value", &iv[j]);
    if (!s) s = kl_kctx_output(c, 0, x->dtype, r, dims, &y);
    if (!s && y->count == 0) outer = 0;
    size_t es = kl_tz_esize(x->dtype);
    for (int64_t o = 0; !s && o < outer; o++)
        for (int64_t j = 0; !s && j < ni; j++) {
            int64_t di = (o * ni + j) * inner, si = (o * d + iv[j]) * inner;
            s = inner == 1 ? kl_tz_move1(y, di, x, si, es) : kl_tz_copy(y, di, x, si, inner);
        }
    kl_free(iv);
    return s;
}

/* Per-axis checks shared by GatherElements / ScatterElements: same rank,
 * and indices no larger than data off the axis. */
static kiln_status kl_tz_elements_shape(kl_kctx *c, const kl_rt *x, const kl_rt *ix, int *ax) {
    if (x->rank < 1 || ix->rank != x->rank)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "indices (rank %d) must have the rank of data (%d), at least 1", ix->rank,
                            x->rank);
    KL_TRY(kl_ref_axis(kl_node_attr_int(c->node, "axis", 0), x->rank, false, "axis", ax));
    for (int i = 0; i < x->rank; i++)
        if (i != *ax && ix->dims[i] > x->dims[i])
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "indices dimension %d (%lld) exceeds data's (%lld)", i,
                                (long long)ix->dims[i], (long long)x->dims[i]);
    return KILN_OK;
}

/* Offset in data of element `it` of indices (odometer idx), its axis
 * coordinate replaced by the (checked) index value. */
static kiln_status kl_tz_elem_off(kl_kctx *c, const kl_rt *x, const kl_rt *ix, int64_t it, const int64_t *idx, int ax,
                                  const int64_t *st, int64_t *off) {
    int64_t v;
    KL_TRY(kl_tz_index(c, kl_tz_ix(ix, it), x->dims[ax], "indices value", &v));
    int64_t o = v * st[ax];
    for (int k = 0; k < x->rank; k++)
        if (k != ax) o += idx[k] * st[k];
    *off = o;
    return KILN_OK;
}

/* Advance the row-major multi-index idx over dims (wraps to zero at the end). */
static void kl_tz_odometer(int64_t *idx, const int64_t *dims, int r) {
    for (int k = r - 1; k >= 0; k--) {
        if (++idx[k] < dims[k]) return;
        idx[k] = 0;
    }
}

/* GatherElements: out[i] = data[i with axis coordinate indices[i]]. */
kiln_status kl_tz_gather_elements(kl_kctx *c) {
    kl_rt *x = NULL, *ix = NULL, *y = NULL;
    KL_TRY(kl_tz_need(c, 0, "data", &x));
    KL_TRY(kl_tz_need_indices(c, 1, &ix));
    int ax;
    KL_TRY(kl_tz_elements_shape(c, x, ix, &ax));
    KL_TRY(kl_kctx_output(c, 0, x->dtype, ix->rank, ix->dims, &y));
    int64_t st[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0}, off;
    kl_tz_strides(x->rank, x->dims, st);
    size_t es = kl_tz_esize(x->dtype);
    for (int64_t i = 0; i < ix->count; i++, kl_tz_odometer(idx, ix->dims, ix->rank)) {
        KL_TRY(kl_tz_elem_off(c, x, ix, i, idx, ax, st, &off));
        KL_TRY(kl_tz_move1(y, i, x, off, es));
    }
    return KILN_OK;
}

/* ScatterElements (and Scatter, opset 9-10): a copy of data with
 * updates[i] reduced into data[i with axis coordinate indices[i]]. */
kiln_status kl_tz_scatter_elements(kl_kctx *c) {
    kl_rt *x = NULL, *ix = NULL, *u = NULL, *y = NULL;
    KL_TRY(kl_tz_need(c, 0, "data", &x));
    KL_TRY(kl_tz_need_indices(c, 1, &ix));
    KL_TRY(kl_tz_need(c, 2, "updates", &u));
    int ax, red;
    KL_TRY(kl_tz_elements_shape(c, x, ix, &ax));
    KL_TRY(kl_tz_reduction(c, x, &red));
    if (u->dtype != x->dtype || !kl_ref_same_shape(u, ix))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "updates must have the indices' shape and the data's type");
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, x->dims, &y));
    KL_TRY(kl_tz_copy(y, 0, x, 0, x->count));
    int64_t st[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0}, off;
    kl_tz_strides(x->rank, x->dims, st);
    size_t es = kl_tz_esize(x->dtype);
    for (int64_t i = 0; i < ix->count; i++, kl_tz_odometer(idx, ix->dims, ix->rank)) {
        KL_TRY(kl_tz_elem_off(c, x, ix, i, idx, ax, st, &off));
        KL_TRY(kl_tz_apply(y, off, u, i, red, es));
    }
    return KILN_OK;
}

/* ---- GatherND, ScatterND ------------------------------------------------------------ */

/* Geometry of an ND index tensor over data: b batch dims, k coordinates per
 * tuple, nb batches of nt tuples each, slices of `slice` elements. */
typedef struct kl_nd {
    int b, k;
    int64_t nb, nt, slice, xbatch;
} kl_nd;

/* Check the GatherND/ScatterND shapes (batch_dims b) and fill g. */
static kiln_status kl_tz_nd(kl_kctx *c, const kl_rt *x, const kl_rt *ix, int64_t b, kl_nd *g) {
    int q = ix->rank, r = x->rank;
    if (q < 1 || r < 1 || b < 0 || b >= KL_MIN(q, r))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "batch_dims %lld is invalid for data rank %d and indices rank %d",
                            (long long)b, r, q);
    int64_t k = ix->dims[q - 1];
    if (k < 0 || k > r - b)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "indices' last dimension %lld exceeds data rank %d - batch_dims %lld",
                            (long long)k, r, (long long)b);
    g->b = (int)b;
    g->k = (int)k;
    g->nb = 1;
    g->nt = 1;
    g->slice = 1;
    g->xbatch = 1;
    for (int i = 0; i < b; i++) {
        if (ix->dims[i] != x->dims[i])
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "batch dimension %d differs: indices %lld, data %lld", i,
                                (long long)ix->dims[i], (long long)x->dims[i]);
        g->nb = kl_tz_mulw(g->nb, x->dims[i]);
    }
    for (int i = (int)b; i < q - 1; i++) g->nt = kl_tz_mulw(g->nt, ix->dims[i]);
    for (int i = (int)(b + k); i < r; i++) g->slice = kl_tz_mulw(g->slice, x->dims[i]);
    for (int i = (int)b; i < r; i++) g->xbatch = kl_tz_mulw(g->xbatch, x->dims[i]);
    return KILN_OK;
}

/* Data offset of tuple t (global tuple number) in batch bi. */
static kiln_status kl_tz_nd_off(kl_kctx *c, const kl_rt *x, const kl_rt *ix, const kl_nd *g, const int64_t *st,
                                int64_t bi, int64_t t, int64_t *off) {
    int64_t o = bi * g->xbatch;
    for (int j = 0; j < g->k; j++) {
        int64_t v;
        KL_TRY(kl_tz_index(c, kl_tz_ix(ix, t * g->k + j), x->dims[g->b + j], "indices value", &v));
        o += v * st[g->b + j];
    }
    *off = o;
    return KILN_OK;
}

/* GatherND: slices of data addressed by the index tuples of the last axis. */
kiln_status kl_tz_gather_nd(kl_kctx *c) {
    kl_rt *x = NULL, *ix = NULL, *y = NULL;
    KL_TRY(kl_tz_need(c, 0, "data", &x));
    KL_TRY(kl_tz_need_indices(c, 1, &ix));
    kl_nd g;
    KL_TRY(kl_tz_nd(c, x, ix, kl_node_attr_int(c->node, "batch_dims", 0), &g));
    int64_t dims[2 * KILN_MAX_RANK], st[KILN_MAX_RANK];
    int n = 0;
    for (int i = 0; i < ix->rank - 1; i++) dims[n++] = ix->dims[i];
    for (int i = g.b + g.k; i < x->rank; i++) dims[n++] = x->dims[i];
    if (n > KILN_MAX_RANK) return kl_kctx_fail(c, KILN_ERR_UNSUPPORTED, "output rank %d exceeds %d", n, KILN_MAX_RANK);
    KL_TRY(kl_kctx_output(c, 0, x->dtype, n, dims, &y));
    if (y->count == 0) return KILN_OK;
    kl_tz_strides(x->rank, x->dims, st);
    for (int64_t bi = 0; bi < g.nb; bi++)
        for (int64_t t = 0; t < g.nt; t++) {
            int64_t off, tt = bi * g.nt + t;
            KL_TRY(kl_tz_nd_off(c, x, ix, &g, st, bi, tt, &off));
            KL_TRY(kl_tz_copy(y, tt * g.slice, x, off, g.slice));
        }
    return KILN_OK;
}

/* ScatterND: a copy of data with each updates slice reduced into the slice
 * its index tuple addresses. */
kiln_status kl_tz_scatter_nd(kl_kctx *c) {
    kl_rt *x = NULL, *ix = NULL, *u = NULL, *y = NULL;
    KL_TRY(kl_tz_need(c, 0, "data", &x));
    KL_TRY(kl_tz_need_indices(c, 1, &ix));
    KL_TRY(kl_tz_need(c, 2, "updates", &u));
    int red;
    KL_TRY(kl_tz_reduction(c, x, &red));
    kl_nd g;
    KL_TRY(kl_tz_nd(c, x, ix, 0, &g));
    bool ok = u->dtype == x->dtype && u->rank == ix->rank - 1 + x->rank - g.k;
    for (int i = 0; ok && i < ix->rank - 1; i++) ok = u->dims[i] == ix->dims[i];
    for (int i = g.k; ok && i < x->rank; i++) ok = u->dims[ix->rank - 1 + i - g.k] == x->dims[i];
    if (!ok) {
        char a[128];
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "updates %s must be indices.shape[:-1] + data.shape[%d:] of the data's type",
                            kl_rt_describe(u, a, sizeof a), g.k);
    }
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, x->dims, &y));
    KL_TRY(kl_tz_copy(y, 0, x, 0, x->count));
    if (u->count == 0) return KILN_OK;
    int64_t st[KILN_MAX_RANK];
    kl_tz_strides(x->rank, x->dims, st);
    size_t es = kl_tz_esize(x->dtype);
    for (int64_t t = 0; t < g.nt; t++) {
        int64_t off;
        KL_TRY(kl_tz_nd_off(c, x, ix, &g, st, 0, t, &off));
        if (red == KL_RED_NONE) {
            KL_TRY(kl_tz_copy(y, off, u, t * g.slice, g.slice));
            continue;
        }
        for (int64_t e = 0; e < g.slice; e++) KL_TRY(kl_tz_apply(y, off + e, u, t * g.slice + e, red, es));
    }
    return KILN_OK;
}

/* ---- TensorScatter (opset 24) --------------------------------------------------------- */

/* TensorScatter: a copy of past_cache with `update` written along `axis` at
 * write_indices[batch] (zero if absent), wrapping in "circular" mode. */
kiln_status kl_tz_tensor_scatter(kl_kctx *c) {
    kl_rt *x = NULL, *u = NULL, *wi = NULL, *y = NULL;
    KL_TRY(kl_tz_need(c, 0, "past_cache", &x));
    KL_TRY(kl_tz_need(c, 1, "update", &u));
    if (c->n_in > 2 && c->in[2]) KL_TRY(kl_tz_need_indices(c, 2, &wi));
    const char *mode = kl_node_attr_string(c->node, "mode", "linear");
    bool circ = !strcmp(mode, "circular");
    if (!circ && strcmp(mode, "linear")) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "mode '%s' is invalid", mode);
    if (x->rank < 2) return kl_kctx_fail(c, KILN_ERR_SHAPE, "past_cache must have rank >= 2");
    int ax;
    KL_TRY(kl_ref_axis(kl_node_attr_int(c->node, "axis", -2), x->rank, false, "axis", &ax));
    if (ax == 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "axis cannot be the batch axis 0");
    bool ok = u->dtype == x->dtype && u->rank == x->rank && u->dims[ax] <= x->dims[ax];
    for (int i = 0; ok && i < x->rank; i++) ok = i == ax || u->dims[i] == x->dims[i];
    if (!ok) {
        char a[128], b[128];
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "update %s must match past_cache %s except a shorter axis %d",
                            kl_rt_describe(u, a, sizeof a), kl_rt_describe(x, b, sizeof b), ax);
    }
    int64_t B = x->dims[0], M = x->dims[ax], S = u->dims[ax], inner = 1, mid = 1;
    if (wi && (wi->rank != 1 || wi->count != B))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "write_indices must have shape [%lld]", (long long)B);
    for (int i = ax + 1; i < x->rank; i++) inner = kl_tz_mulw(inner, x->dims[i]);
    for (int i = 1; i < ax; i++) mid = kl_tz_mulw(mid, x->dims[i]);
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, x->dims, &y));
    KL_TRY(kl_tz_copy(y, 0, x, 0, x->count));
    for (int64_t b = 0; b < B; b++) {
        int64_t w = wi ? kl_tz_ix(wi, b) : 0;
        if (w < 0 || (!circ && w > M - S))
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "write_indices[%lld] = %lld is out of range for %lld of %lld positions",
                                (long long)b, (long long)w, (long long)S, (long long)M);
    }
    if (u->count == 0) return KILN_OK;
    for (int64_t b = 0; b < B; b++) {
        int64_t w = wi ? kl_tz_ix(wi, b) : 0;
        for (int64_t m = 0; m < mid; m++)
            for (int64_t s = 0; s < S; s++) {
                int64_t t = circ ? (w + s) % M : w + s;
                KL_TRY(kl_tz_copy(y, ((b * mid + m) * M + t) * inner, u, ((b * mid + m) * S + s) * inner, inner));
            }
    }
    return KILN_OK;
}
