/*
 * CPU reference kernels, tensor family: generators and selections
 * (ConstantOfShape, Range, EyeLike, OneHot, Trilu, NonZero, Unique).
 */
#include <math.h>
#include <string.h>

#include "cpu/ref/tensor.h"

/* ---- element comparison (any dtype: numbers, bool, strings, complex) ------------- */

/* Is element i of t nonzero (strings: non-empty; complex: either part)? */
static bool kl_tz_nonzero(const kl_rt *t, int64_t i) {
    switch (t->dtype) {
    case KILN_DTYPE_STRING: return ((const kl_str *)t->data)[i].len != 0;
    case KILN_DTYPE_COMPLEX64: {
        const float *p = t->data;
        return p[2 * i] != 0.0f || p[2 * i + 1] != 0.0f;
    }
    case KILN_DTYPE_COMPLEX128: {
        const double *p = t->data;
        return p[2 * i] != 0.0 || p[2 * i + 1] != 0.0;
    }
    default:
        return kl_dtype_is_float(t->dtype) ? kl_rt_get_f64(t, i) != 0.0 : kl_rt_get_i64(t, i) != 0;
    }
}

/* Order of doubles with NaN after every number and equal to NaN. */
static int kl_tz_cmp_f64(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) - isnan(b);
    return a < b ? -1 : a > b;
}

/* Compare elements i and j of t (numeric order; strings bytewise; complex
 * by real then imaginary part). */
static int kl_tz_cmp(const kl_rt *t, int64_t i, int64_t j) {
    switch (t->dtype) {
    case KILN_DTYPE_STRING: {
        const kl_str *s = t->data;
        size_t n = KL_MIN(s[i].len, s[j].len);
        int r = n ? memcmp(s[i].ptr, s[j].ptr, n) : 0;
        return r ? (r < 0 ? -1 : 1) : s[i].len < s[j].len ? -1 : s[i].len > s[j].len;
    }
    case KILN_DTYPE_COMPLEX64: {
        const float *p = t->data;
        int r = kl_tz_cmp_f64(p[2 * i], p[2 * j]);
        return r ? r : kl_tz_cmp_f64(p[2 * i + 1], p[2 * j + 1]);
    }
    case KILN_DTYPE_COMPLEX128: {
        const double *p = t->data;
        int r = kl_tz_cmp_f64(p[2 * i], p[2 * j]);
        return r ? r : kl_tz_cmp_f64(p[2 * i + 1], p[2 * j + 1]);
    }
    default: break;
    }
    if (kl_dtype_is_float(t->dtype)) return kl_tz_cmp_f64(kl_rt_get_f64(t, i), kl_rt_get_f64(t, j));
    int64_t a = kl_rt_get_i64(t, i), b = kl_rt_get_i64(t, j);
    if (t->dtype == KILN_DTYPE_UINT64) return (uint64_t)a < (uint64_t)b ? -1 : (uint64_t)a > (uint64_t)b;
    return a < b ? -1 : a > b;
}

/* ---- ConstantOfShape, Range, EyeLike ----------------------------------------------- */

/* ConstantOfShape: a tensor of the given shape filled with `value` (one
 * element; default float 0). */
kiln_status kl_tz_constant_of_shape(kl_kctx *c) {
    kl_rt *y = NULL, *v = NULL;
    int64_t dims[KILN_MAX_RANK], n;
    kiln_status s = kl_ref_input_ints(c, 0, dims, KILN_MAX_RANK, &n);
    if (s) return kl_error_context(s, "input: ");
    if (n < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "the shape input is missing");
    const kl_attr *a = kl_node_attr(c->node, "value");
    const kl_tensor *t = a ? a->t : NULL;
    kiln_dtype dt = t ? t->dtype : KILN_DTYPE_FLOAT;
    if (t && (t->count != 1 || dt == KILN_DTYPE_STRING || !t->data))
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "value must be a one-element numeric tensor");
    KL_TRY(kl_kctx_output(c, 0, dt, (int)n, dims, &y));
    if (!t || y->count == 0) return KILN_OK;
    KL_TRY(kl_rt_tensor(dt, 0, NULL, &v));
    memcpy(v->data, t->data, v->nbytes);
    s = kl_tz_fill(y, v, 0);
    kl_rt_unref(v);
    return s;
}

/* Range: start + i*delta for i < max(ceil((limit-start)/delta), 0);
 * integers exactly, floats in double. */
kiln_status kl_tz_range(kl_kctx *c) {
    kl_rt *a = NULL, *l = NULL, *d = NULL, *y = NULL;
    KL_TRY(kl_tz_need(c, 0, "start", &a));
    KL_TRY(kl_tz_need(c, 1, "limit", &l));
    KL_TRY(kl_tz_need(c, 2, "delta", &d));
    if (a->count != 1 || l->count != 1 || d->count != 1 || l->dtype != a->dtype || d->dtype != a->dtype ||
        a->dtype == KILN_DTYPE_STRING || a->dtype == KILN_DTYPE_BOOL)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "start, limit and delta must be numeric scalars of one type");
    int64_t n;
    if (kl_dtype_is_integer(a->dtype)) {
        int64_t s0 = kl_rt_get_i64(a, 0), lim = kl_rt_get_i64(l, 0), dl = kl_rt_get_i64(d, 0), diff;
        if (dl == 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "delta is 0");
        if (__builtin_sub_overflow(lim, s0, &diff)) return kl_kctx_fail(c, KILN_ERR_SHAPE, "range is too large");
        n = (dl == -1) ? (diff == INT64_MIN ? INT64_MAX : -diff) : diff / dl;
        if (dl != -1 && diff % dl != 0 && ((diff < 0) == (dl < 0))) n++;
        if (n < 0) n = 0;
        KL_TRY(kl_kctx_output(c, 0, a->dtype, 1, &n, &y));
        for (int64_t i = 0; i < n; i++) kl_rt_set_i64(y, i, (int64_t)((uint64_t)s0 + (uint64_t)i * (uint64_t)dl));
        return KILN_OK;
    }
    double s0 = kl_rt_get_f64(a, 0), lim = kl_rt_get_f64(l, 0), dl = kl_rt_get_f64(d, 0);
    double cnt = ceil((lim - s0) / dl);
    if (dl == 0 || isnan(cnt) || cnt > 4e18)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "range(%g, %g, %g) is invalid", s0, lim, dl);
    n = cnt > 0 ? (int64_t)cnt : 0;
    KL_TRY(kl_kctx_output(c, 0, a->dtype, 1, &n, &y));
    if (a->dtype == KILN_DTYPE_FLOAT) {
        float *p = y->data;
        for (int64_t i = 0; i < n; i++) p[i] = (float)(s0 + (double)i * dl);
    } else {
        for (int64_t i = 0; i < n; i++) kl_rt_set_f64(y, i, s0 + (double)i * dl);
    }
    return KILN_OK;
}

/* EyeLike: ones on the k-th diagonal of a 2-D tensor, of `dtype` (default
 * the input's type). */
kiln_status kl_tz_eye_like(kl_kctx *c) {
    kl_rt *x = NULL, *y = NULL;
    KL_TRY(kl_tz_need(c, 0, "input", &x));
    if (x->rank != 2) return kl_kctx_fail(c, KILN_ERR_SHAPE, "input must be 2-D, not rank %d", x->rank);
    int64_t dt = kl_node_attr_int(c->node, "dtype", x->dtype), k = kl_node_attr_int(c->node, "k", 0);
    if (!kl_dtype_valid((int32_t)dt) || dt == KILN_DTYPE_STRING || kiln_dtype_bits((kiln_dtype)dt) < 8)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "dtype %lld is not supported", (long long)dt);
    KL_TRY(kl_kctx_output(c, 0, (kiln_dtype)dt, 2, x->dims, &y));
    int64_t R = x->dims[0], C = x->dims[1];
    if (k <= -R || k >= C) return KILN_OK;
    for (int64_t i = k < 0 ? -k : 0; i < R && i + k < C; i++) kl_rt_set_f64(y, i * C + i + k, 1.0);
    return KILN_OK;
}

/* ---- OneHot, Trilu, NonZero -------------------------------------------------------- */

/* OneHot: indices' shape with `depth` inserted at `axis`; values[1] where
 * the class matches (negative indices count from the end), else values[0].
 * Indices outside [-depth, depth) give all-off rows. */
kiln_status kl_tz_one_hot(kl_kctx *c) {
    kl_rt *ix = NULL, *dp = NULL, *vals = NULL, *y = NULL;
    KL_TRY(kl_tz_need(c, 0, "indices", &ix));
    KL_TRY(kl_tz_need(c, 1, "depth", &dp));
    KL_TRY(kl_tz_need(c, 2, "values", &vals));
    if (dp->count != 1 || dp->dtype == KILN_DTYPE_STRING || ix->dtype == KILN_DTYPE_STRING)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "depth must be a numeric scalar and indices numeric");
    if (vals->count != 2) return kl_kctx_fail(c, KILN_ERR_SHAPE, "values must have 2 elements, not %lld", (long long)vals->count);
    double dd = kl_rt_get_f64(dp, 0);
    if (!(dd >= 1) || dd > 4e18) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "depth %g is invalid", dd);
    int64_t depth = (int64_t)dd;
    int r = ix->rank + 1, ax;
    if (r > KILN_MAX_RANK) return kl_kctx_fail(c, KILN_ERR_UNSUPPORTED, "output rank %d exceeds %d", r, KILN_MAX_RANK);
    KL_TRY(kl_ref_axis(kl_node_attr_int(c->node, "axis", -1), ix->rank, true, "axis", &ax));
    int64_t dims[KILN_MAX_RANK], outer = 1, inner = 1;
    for (int i = 0, k = 0; i < r; i++) {
        if (i == ax) {
            dims[i] = depth;
            continue;
        }
        dims[i] = ix->dims[k++];
        if (i < ax) outer = kl_tz_mulw(outer, dims[i]);
        else inner = kl_tz_mulw(inner, dims[i]);
    }
    KL_TRY(kl_kctx_output(c, 0, vals->dtype, r, dims, &y));
    if (y->count == 0) return KILN_OK;
    KL_TRY(kl_tz_fill(y, vals, 0));
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t v = kl_rt_get_i64(ix, o * inner + i);
            if (v < -depth || v >= depth) continue;
            if (v < 0) v += depth;
            KL_TRY(kl_tz_copy(y, (o * depth + v) * inner + i, vals, 1, 1));
        }
    return KILN_OK;
}

/* Trilu: keep the upper (j - i >= k) or lower (j - i <= k) triangle of the
 * last two axes; the rest is zero. */
kiln_status kl_tz_trilu(kl_kctx *c) {
    kl_rt *x = NULL, *y = NULL;
    KL_TRY(kl_tz_need(c, 0, "input", &x));
    if (x->rank < 2) return kl_kctx_fail(c, KILN_ERR_SHAPE, "input must have rank >= 2, not %d", x->rank);
    int64_t k = 0;
    if (c->n_in > 1 && c->in[1]) KL_TRY(kl_ref_input_scalar_i64(c, 1, &k));
    bool upper = kl_node_attr_int(c->node, "upper", 1) != 0;
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, x->dims, &y));
    int64_t R = x->dims[x->rank - 2], C = x->dims[x->rank - 1], mats = R > 0 && C > 0 ? x->count / (R * C) : 0;
    int64_t lim = R + C + 1;
    k = k < -lim ? -lim : k > lim ? lim : k;
    for (int64_t m = 0; m < mats; m++)
        for (int64_t i = 0; i < R; i++) {
            int64_t lo = upper ? i + k : 0, hi = upper ? C : i + k + 1;
            lo = KL_MAX(lo, 0);
            hi = KL_MIN(hi, C);
            if (lo < hi) KL_TRY(kl_tz_copy(y, (m * R + i) * C + lo, x, (m * R + i) * C + lo, hi - lo));
        }
    return KILN_OK;
}

/* NonZero: int64 [rank, n] coordinates of the nonzero elements in row-major
 * order (a scalar counts as shape [1]). */
kiln_status kl_tz_non_zero(kl_kctx *c) {
    kl_rt *x = NULL, *y = NULL;
    KL_TRY(kl_tz_need(c, 0, "X", &x));
    int64_t n = 0, r = x->rank ? x->rank : 1, dims[2], one = 1;
    const int64_t *xd = x->rank ? x->dims : &one;
    /* one-byte elements (bool, uint8, int8: a detector's score masks) are read directly */
    const bool bytes = x->dtype == KILN_DTYPE_BOOL || x->dtype == KILN_DTYPE_UINT8 || x->dtype == KILN_DTYPE_INT8;
    const uint8_t *xb = x->data;
    if (bytes)
        for (int64_t i = 0; i < x->count; i++) n += xb[i] != 0;
    else
        for (int64_t i = 0; i < x->count; i++) n += kl_tz_nonzero(x, i);
    dims[0] = r;
    dims[1] = n;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_INT64, 2, dims, &y));
    int64_t *p = y->data, idx[KILN_MAX_RANK] = {0}, j = 0;
    if (bytes && r == 1) {
        for (int64_t i = 0; i < x->count; i++)
            if (xb[i]) p[j++] = i;
        return KILN_OK;
    }
    for (int64_t i = 0; i < x->count; i++) {
        if (kl_tz_nonzero(x, i)) {
            for (int64_t k = 0; k < r; k++) p[k * n + j] = idx[k];
            j++;
        }
        for (int64_t k = r - 1; k >= 0; k--) {
            if (++idx[k] < xd[k]) break;
            idx[k] = 0;
        }
    }
    return KILN_OK;
}

/* ---- Unique ------------------------------------------------------------------------- */

/* Slices of x along an axis (or single elements when flattened). */
typedef struct kl_uq {
    const kl_rt *x;
    int64_t n, outer, inner; /* slice s holds x[(o*n + s)*inner + i] */
} kl_uq;

/* Lexicographic order of slices a and b (row-major over outer, inner). */
static int kl_uq_cmp(const kl_uq *u, int64_t a, int64_t b) {
    for (int64_t o = 0; o < u->outer; o++)
        for (int64_t i = 0; i < u->inner; i++) {
            int r = kl_tz_cmp(u->x, (o * u->n + a) * u->inner + i, (o * u->n + b) * u->inner + i);
            if (r) return r;
        }
    return 0;
}

/* Stable merge sort of v[0..n) by slice order, tmp as scratch. */
static void kl_uq_sort(const kl_uq *u, int64_t *v, int64_t *tmp, int64_t n) {
    if (n < 2) return;
    int64_t h = n / 2;
    kl_uq_sort(u, v, tmp, h);
    kl_uq_sort(u, v + h, tmp, n - h);
    int64_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = kl_uq_cmp(u, v[j], v[i]) < 0 ? v[j++] : v[i++];
    while (i < h) tmp[k++] = v[i++];
    while (j < n) tmp[k++] = v[j++];
    memcpy(v, tmp, (size_t)n * sizeof *v);
}

/* Unique: the distinct elements (or slices along `axis`), sorted or in
 * order of first occurrence, with first-occurrence indices, the inverse
 * mapping and the counts. */
kiln_status kl_tz_unique(kl_kctx *c) {
    kl_rt *x = NULL, *y = NULL, *yi = NULL, *yinv = NULL, *ycnt = NULL;
    KL_TRY(kl_tz_need(c, 0, "X", &x));
    bool sorted = kl_node_attr_int(c->node, "sorted", 1) != 0, has_axis = kl_node_attr(c->node, "axis") != NULL;
    kl_uq u = {x, x->count, 1, 1};
    int ax = 0;
    if (has_axis) {
        KL_TRY(kl_ref_axis(kl_node_attr_int(c->node, "axis", 0), x->rank, false, "axis", &ax));
        u.n = x->dims[ax];
        for (int i = 0; i < ax; i++) u.outer = kl_tz_mulw(u.outer, x->dims[i]);
        for (int i = ax + 1; i < x->rank; i++) u.inner = kl_tz_mulw(u.inner, x->dims[i]);
    }
    if (x->count == 0) u.outer = u.inner = 0; /* empty slices: never read */
    int64_t n = u.n, m = n ? n : 1;
    int64_t *ord = kl_calloc((size_t)m, sizeof *ord), *tmp = kl_calloc((size_t)m, sizeof *tmp);
    int64_t *grp = kl_calloc((size_t)m, sizeof *grp), *first = kl_calloc((size_t)m, sizeof *first);
    int64_t *cnt = kl_calloc((size_t)m, sizeof *cnt), *rank = kl_calloc((size_t)m, sizeof *rank);
    kiln_status s = KILN_OK;
    if (!ord || !tmp || !grp || !first || !cnt || !rank) {
        s = KILN_ERR_NO_MEMORY;
        goto done;
    }
    for (int64_t i = 0; i < n; i++) ord[i] = i;
    kl_uq_sort(&u, ord, tmp, n);
    int64_t U = 0; /* groups in sorted order: first[g] = first occurrence, cnt[g] */
    for (int64_t i = 0; i < n; i++) {
        if (i == 0 || kl_uq_cmp(&u, ord[i - 1], ord[i]) != 0) first[U++] = ord[i];
        grp[ord[i]] = U - 1;
        cnt[U - 1]++;
    }
    /* rank[g]: output position of sorted group g */
    for (int64_t g = 0; g < U; g++) rank[g] = g;
    if (!sorted) { /* order groups by first occurrence */
        int64_t pos = 0;
        for (int64_t i = 0; i < n; i++)
            if (first[grp[i]] == i) rank[grp[i]] = pos++;
    }
    int64_t dims[KILN_MAX_RANK];
    if (has_axis) {
        memcpy(dims, x->dims, sizeof dims);
        dims[ax] = U;
    } else {
        dims[0] = U;
    }
    if ((s = kl_kctx_output(c, 0, x->dtype, has_axis ? x->rank : 1, dims, &y)) ||
        (c->n_out > 1 && (s = kl_kctx_output(c, 1, KILN_DTYPE_INT64, 1, &U, &yi))) ||
        (c->n_out > 2 && (s = kl_kctx_output(c, 2, KILN_DTYPE_INT64, 1, &n, &yinv))) ||
        (c->n_out > 3 && (s = kl_kctx_output(c, 3, KILN_DTYPE_INT64, 1, &U, &ycnt))))
        goto done;
    for (int64_t g = 0; g < U; g++) {
        int64_t r = rank[g];
        if (yi) ((int64_t *)yi->data)[r] = first[g];
        if (ycnt) ((int64_t *)ycnt->data)[r] = cnt[g];
        for (int64_t o = 0; !s && o < u.outer; o++)
            s = kl_tz_copy(y, (o * U + r) * u.inner, x, (o * n + first[g]) * u.inner, u.inner);
    }
    for (int64_t i = 0; yinv && i < n; i++) ((int64_t *)yinv->data)[i] = rank[grp[i]];
done:
    kl_free(ord);
    kl_free(tmp);
    kl_free(grp);
    kl_free(first);
    kl_free(cnt);
    kl_free(rank);
    return s;
}
