/*
 * CPU reference kernels: TopK, CumSum and CumProd (reduce family).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/ref/reduce.h"

/* ---- TopK ---------------------------------------------------------------------------- */

typedef struct topk_item {
    uint64_t key; /* ascending key order = output order */
    int64_t idx;
} topk_item;

/* Order by key, then by index (the lower index first on ties). */
static int topk_cmp(const void *a, const void *b) {
    const topk_item *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* An unsigned key that sorts like the value: NaN above +inf, -0 == +0. */
static uint64_t topk_key(const kl_rt *x, int64_t i, bool isf) {
    if (isf) {
        double v = kl_red_ld(x, i);
        if (isnan(v)) return UINT64_MAX;
        if (v == 0) v = 0.0;
        uint64_t b;
        memcpy(&b, &v, sizeof b);
        return (b >> 63) ? ~b : b | (1ull << 63);
    }
    uint64_t u = (uint64_t)kl_rt_get_i64(x, i);
    return x->dtype == KILN_DTYPE_UINT64 ? u : u ^ (1ull << 63);
}

/* TopK (opset 1: attribute k; 10+: input K; 11+: largest/sorted).  The
 * result is always sorted (a valid order for sorted=0 too). */
kiln_status kl_ref_topk(kl_kctx *c) {
    const kl_rt *x = c->in[0];
    if (!x || x->kind != KL_RT_TENSOR) return kl_kctx_fail(c, KILN_ERR_TYPE, "input 'X' must be a tensor");
    kiln_dtype dt = x->dtype;
    bool isf = kl_dtype_is_float(dt);
    if (!isf && !kl_dtype_is_integer(dt))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "TopK does not support element type %s", kiln_dtype_name(dt));
    int axis;
    KL_TRY(kl_ref_axis(kl_node_attr_int(c->node, "axis", -1), x->rank, false, "attribute 'axis'", &axis));
    int64_t k;
    if (c->node->opset < 10) {
        if (!kl_node_attr(c->node, "k")) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'k' is missing");
        k = kl_node_attr_int(c->node, "k", 0);
    } else {
        int64_t nk;
        if (c->n_in < 2 || !c->in[1] || c->in[1]->kind != KL_RT_TENSOR)
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "input 'K' is missing");
        KL_TRY(kl_ref_input_ints(c, 1, &k, 1, &nk));
        if (nk != 1) return kl_kctx_fail(c, KILN_ERR_SHAPE, "input 'K' must hold one value");
    }
    bool largest = c->node->opset < 11 || kl_node_attr_int(c->node, "largest", 1) != 0;
    int64_t outer, n, inner;
    kl_red_split(x, axis, &outer, &n, &inner);
    if (k < 0 || k > n)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "K = %lld is outside [0, %lld] (axis %d)", (long long)k,
                            (long long)n, axis);
    int64_t dims[KILN_MAX_RANK];
    memcpy(dims, x->dims, (size_t)x->rank * sizeof dims[0]);
    dims[axis] = k;
    kl_rt *vals, *idxs;
    KL_TRY(kl_kctx_output(c, 0, dt, x->rank, dims, &vals));
    KL_TRY(kl_kctx_output(c, 1, KILN_DTYPE_INT64, x->rank, dims, &idxs));
    if (k == 0 || x->count == 0) return KILN_OK;
    topk_item *it = kl_calloc((size_t)n, sizeof *it);
    if (!it) return KILN_ERR_NO_MEMORY;
    size_t bits = kiln_dtype_bits(dt), esz = bits / 8;
    int64_t *oi = idxs->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            int64_t base = o * n * inner + in, obase = o * k * inner + in;
            for (int64_t j = 0; j < n; j++) {
                uint64_t key = topk_key(x, base + j * inner, isf);
                it[j] = (topk_item){largest ? ~key : key, j};
            }
            qsort(it, (size_t)n, sizeof *it, topk_cmp);
            for (int64_t j = 0; j < k; j++) {
                int64_t src = base + it[j].idx * inner, dst = obase + j * inner;
                oi[dst] = it[j].idx;
                if (bits % 8 == 0)
                    memcpy((char *)vals->data + (size_t)dst * esz, (const char *)x->data + (size_t)src * esz, esz);
                else if (isf)
                    kl_rt_set_f64(vals, dst, kl_rt_get_f64(x, src));
                else
                    kl_rt_set_i64(vals, dst, kl_rt_get_i64(x, src));
            }
        }
    kl_free(it);
    return KILN_OK;
}

/* ---- CumSum / CumProd ---------------------------------------------------------------- */

/* Running sum or product along the axis given by input 1 (a scalar),
 * with the `exclusive` and `reverse` attributes. */
static kiln_status cum_run(kl_kctx *c, bool prod) {
    const kl_rt *x = c->in[0];
    if (!x || x->kind != KL_RT_TENSOR) return kl_kctx_fail(c, KILN_ERR_TYPE, "input 'x' must be a tensor");
    kiln_dtype dt = x->dtype;
    bool isf = kl_dtype_is_float(dt);
    if (!isf && !kl_dtype_is_integer(dt))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "%s does not support element type %s", c->node->op_type,
                            kiln_dtype_name(dt));
    if (c->n_in < 2 || !c->in[1] || c->in[1]->kind != KL_RT_TENSOR)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "input 'axis' is missing");
    int64_t a, na;
    KL_TRY(kl_ref_input_ints(c, 1, &a, 1, &na));
    if (na != 1) return kl_kctx_fail(c, KILN_ERR_SHAPE, "input 'axis' must be a scalar");
    int axis;
    KL_TRY(kl_ref_axis(a, x->rank, false, "input 'axis'", &axis));
    bool excl = kl_node_attr_int(c->node, "exclusive", 0) != 0;
    bool rev = kl_node_attr_int(c->node, "reverse", 0) != 0;
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, dt, x->rank, x->dims, &y));
    if (x->count == 0) return KILN_OK;
    int64_t outer, n, inner;
    kl_red_split(x, axis, &outer, &n, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            int64_t base = o * n * inner + in;
            double af = prod ? 1.0 : 0.0;
            uint64_t ai = prod ? 1 : 0;
            for (int64_t jj = 0; jj < n; jj++) {
                int64_t i = base + (rev ? n - 1 - jj : jj) * inner;
                if (isf) {
                    double v = kl_red_ld(x, i);
                    if (excl) kl_red_st(y, i, af);
                    af = prod ? af * v : af + v;
                    if (!excl) kl_red_st(y, i, af);
                } else {
                    uint64_t v = (uint64_t)kl_rt_get_i64(x, i);
                    if (excl) kl_rt_set_i64(y, i, (int64_t)ai);
                    ai = prod ? ai * v : ai + v;
                    if (!excl) kl_rt_set_i64(y, i, (int64_t)ai);
                }
            }
        }
    return KILN_OK;
}

kiln_status kl_ref_cumsum(kl_kctx *c) { return cum_run(c, false); }
kiln_status kl_ref_cumprod(kl_kctx *c) { return cum_run(c, true); }
