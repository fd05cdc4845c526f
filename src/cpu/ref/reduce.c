/*
 * CPU reference kernels: the reduce family.  Reduce* and ArgMax/ArgMin live
 * here; TopK, CumSum and CumProd in reduce_scan.c.  Floating types
 * accumulate in double; integer types in 64-bit two's complement, which
 * wraps exactly like the narrow type once stored back.
 */
#include <math.h>
#include <string.h>

#include "cpu/ref/reduce.h"

/* ---- reduction plan ---------------------------------------------------------------- */

void kl_red_plan_init(kl_red_plan *p, int rank, const int64_t *dims, const bool *reduced) {
    memset(p, 0, sizeof *p);
    p->in_count = 1;
    p->out_count = 1;
    for (int i = 0; i < rank; i++) {
        p->in_count = kl_red_mul(p->in_count, dims[i]);
        if (!reduced[i]) p->out_count = kl_red_mul(p->out_count, dims[i]);
        if (dims[i] == 1) continue;
        if (p->n > 0 && p->red[p->n - 1] == reduced[i]) {
            p->size[p->n - 1] = kl_red_mul(p->size[p->n - 1], dims[i]);
        } else {
            p->size[p->n] = dims[i];
            p->red[p->n] = reduced[i];
            p->n++;
        }
    }
    int64_t s = 1;
    for (int i = p->n - 1; i >= 0; i--) {
        p->ostride[i] = p->red[i] ? 0 : s;
        if (!p->red[i]) s = kl_red_mul(s, p->size[i]);
    }
}

void kl_red_foreach(const kl_red_plan *p, kl_red_visit fn, void *ctx) {
    if (p->in_count == 0) return;
    if (p->n == 0) {
        fn(ctx, 0, 1, 0, 0);
        return;
    }
    int64_t len = p->size[p->n - 1], step = p->red[p->n - 1] ? 0 : 1;
    int64_t idx[KILN_MAX_RANK] = {0}, o = 0;
    for (int64_t x = 0; x < p->in_count; x += len) {
        fn(ctx, x, len, o, step);
        for (int d = p->n - 2; d >= 0; d--) {
            idx[d]++;
            o += p->ostride[d];
            if (idx[d] < p->size[d]) break;
            o -= p->ostride[d] * p->size[d];
            idx[d] = 0;
        }
    }
}

void kl_red_split(const kl_rt *t, int axis, int64_t *outer, int64_t *n, int64_t *inner) {
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < axis; i++) *outer = kl_red_mul(*outer, t->dims[i]);
    for (int i = axis + 1; i < t->rank; i++) *inner = kl_red_mul(*inner, t->dims[i]);
    *n = axis < t->rank ? t->dims[axis] : 1;
}

/* ---- accumulation steps ------------------------------------------------------------- */

typedef enum red_op { R_SUM, R_MEAN, R_PROD, R_MAX, R_MIN, R_L1, R_L2, R_SUMSQ, R_LOGSUM, R_LOGSUMEXP } red_op;

typedef enum red_step { S_SUM, S_SUMSQ, S_ABS, S_PROD, S_MAX, S_MIN, S_EXP } red_step;

typedef struct red_ctx {
    red_step step;
    const kl_rt *x;
    double *f;           /* floating accumulators */
    uint64_t *u;         /* integer accumulators (two's complement bits) */
    const double *shift; /* S_EXP: per-output shift (the max) */
    bool uns;            /* uint64: compare unsigned */
} red_ctx;

/* Fold a run into double accumulators; NaN propagates through Max/Min. */
static void red_visit_f(void *vc, int64_t xo, int64_t len, int64_t o, int64_t st) {
    red_ctx *c = vc;
    const kl_rt *x = c->x;
    double *a = c->f + o;
    switch (c->step) {
    case S_SUM:
        if (st == 0 && x->dtype == KILN_DTYPE_FLOAT) { /* float32 row sums (ReduceMean/Sum) */
            const float *p = (const float *)x->data + xo;
            double s = 0;
            for (int64_t j = 0; j < len; j++) s += p[j];
            a[0] += s;
        } else if (x->dtype == KILN_DTYPE_FLOAT) {
            const float *p = (const float *)x->data + xo;
            for (int64_t j = 0; j < len; j++) a[j] += p[j];
        } else {
            for (int64_t j = 0; j < len; j++) a[j * st] += kl_red_ld(x, xo + j);
        }
        break;
    case S_SUMSQ:
        for (int64_t j = 0; j < len; j++) {
            double v = kl_red_ld(x, xo + j);
            a[j * st] += v * v;
        }
        break;
    case S_ABS:
        for (int64_t j = 0; j < len; j++) a[j * st] += fabs(kl_red_ld(x, xo + j));
        break;
    case S_PROD:
        for (int64_t j = 0; j < len; j++) a[j * st] *= kl_red_ld(x, xo + j);
        break;
    case S_MAX:
        for (int64_t j = 0; j < len; j++) {
            double v = kl_red_ld(x, xo + j), *p = a + j * st;
            if (!isnan(*p) && (isnan(v) || v > *p)) *p = v;
        }
        break;
    case S_MIN:
        for (int64_t j = 0; j < len; j++) {
            double v = kl_red_ld(x, xo + j), *p = a + j * st;
            if (!isnan(*p) && (isnan(v) || v < *p)) *p = v;
        }
        break;
    case S_EXP:
        for (int64_t j = 0; j < len; j++) a[j * st] += exp(kl_red_ld(x, xo + j) - c->shift[o + j * st]);
        break;
    }
}

/* Fold a run into 64-bit integer accumulators (wrapping arithmetic). */
static void red_visit_i(void *vc, int64_t xo, int64_t len, int64_t o, int64_t st) {
    red_ctx *c = vc;
    const kl_rt *x = c->x;
    uint64_t *a = c->u + o;
    for (int64_t j = 0; j < len; j++) {
        uint64_t v = (uint64_t)kl_rt_get_i64(x, xo + j), *p = a + j * st;
        switch (c->step) {
        case S_SUM: *p += v; break;
        case S_SUMSQ: *p += v * v; break;
        case S_ABS: *p += (!c->uns && (int64_t)v < 0) ? (uint64_t)0 - v : v; break;
        case S_PROD: *p *= v; break;
        case S_MAX:
            if (c->uns ? v > *p : (int64_t)v > (int64_t)*p) *p = v;
            break;
        case S_MIN:
            if (c->uns ? v < *p : (int64_t)v < (int64_t)*p) *p = v;
            break;
        case S_EXP: break;
        }
    }
}

/* Smallest and largest value of an integer (or bool) type, as int64 bits. */
static void red_int_limits(kiln_dtype t, uint64_t *lo, uint64_t *hi) {
    int64_t l = 0, h = 0;
    switch (t) {
    case KILN_DTYPE_INT8: l = INT8_MIN; h = INT8_MAX; break;
    case KILN_DTYPE_UINT8: h = UINT8_MAX; break;
    case KILN_DTYPE_INT16: l = INT16_MIN; h = INT16_MAX; break;
    case KILN_DTYPE_UINT16: h = UINT16_MAX; break;
    case KILN_DTYPE_INT32: l = INT32_MIN; h = INT32_MAX; break;
    case KILN_DTYPE_UINT32: h = UINT32_MAX; break;
    case KILN_DTYPE_INT64: l = INT64_MIN; h = INT64_MAX; break;
    case KILN_DTYPE_INT4: l = -8; h = 7; break;
    case KILN_DTYPE_UINT4: h = 15; break;
    case KILN_DTYPE_INT2: l = -2; h = 1; break;
    case KILN_DTYPE_UINT2: h = 3; break;
    case KILN_DTYPE_BOOL: h = 1; break;
    default: break;
    }
    *lo = (uint64_t)l;
    *hi = t == KILN_DTYPE_UINT64 ? UINT64_MAX : (uint64_t)h;
}

static bool red_is_float(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT || t == KILN_DTYPE_DOUBLE || t == KILN_DTYPE_FLOAT16 || t == KILN_DTYPE_BFLOAT16;
}

/* Which axes to reduce: from the `axes` input (opset >= axes_input_since)
 * or attribute; none given means all axes, or none with
 * noop_with_empty_axes. */
static kiln_status red_axes(kl_kctx *c, int axes_input_since, bool *reduced) {
    const kl_node *n = c->node;
    const kl_rt *x = c->in[0];
    int64_t axes[64], na;
    bool noop = false;
    if (n->opset >= axes_input_since) {
        if (c->n_in > 1 && c->in[1] && c->in[1]->kind != KL_RT_TENSOR)
            return kl_kctx_fail(c, KILN_ERR_TYPE, "input 'axes' must be a tensor");
        KL_TRY(kl_ref_input_ints(c, 1, axes, (int64_t)KL_ARRAY_LEN(axes), &na));
        noop = kl_node_attr_int(n, "noop_with_empty_axes", 0) != 0;
    } else {
        const int64_t *av = NULL;
        na = kl_node_attr_ints(n, "axes", &av);
        if (na > (int64_t)KL_ARRAY_LEN(axes))
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'axes' has %lld entries", (long long)na);
        for (int64_t k = 0; k < na; k++) axes[k] = av[k];
    }
    for (int i = 0; i < x->rank; i++) reduced[i] = na <= 0 && !noop;
    for (int64_t k = 0; k < na; k++) {
        int a;
        KL_TRY(kl_ref_axis(axes[k], x->rank, false, "axes value", &a));
        if (reduced[a])
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "axes lists axis %lld twice", (long long)axes[k]);
        reduced[a] = true;
    }
    return KILN_OK;
}

/* Reduce* over the axes chosen by red_axes, keepdims honoured. */
static kiln_status red_run(kl_kctx *c, red_op op, int axes_input_since) {
    const kl_rt *x = c->in[0];
    if (!x || x->kind != KL_RT_TENSOR) return kl_kctx_fail(c, KILN_ERR_TYPE, "input 'data' must be a tensor");
    kiln_dtype dt = x->dtype;
    bool isf = red_is_float(dt);
    bool boolok = dt == KILN_DTYPE_BOOL && (op == R_MAX || op == R_MIN);
    if (!isf && !kl_dtype_is_integer(dt) && !boolok)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "%s does not support element type %s", c->node->op_type,
                            kiln_dtype_name(dt));
    bool reduced[KILN_MAX_RANK];
    KL_TRY(red_axes(c, axes_input_since, reduced));
    bool keep = kl_node_attr_int(c->node, "keepdims", 1) != 0;
    int64_t dims[KILN_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++) {
        if (!reduced[i]) dims[r++] = x->dims[i];
        else if (keep) dims[r++] = 1;
    }
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, dt, r, dims, &y));
    kl_red_plan p;
    kl_red_plan_init(&p, x->rank, x->dims, reduced);
    int64_t no = p.out_count, group = no ? p.in_count / no : 0;
    if (no == 0) return KILN_OK;

    red_ctx rc = {.x = x, .uns = dt == KILN_DTYPE_UINT64};
    static const red_step steps[] = {[R_SUM] = S_SUM, [R_MEAN] = S_SUM, [R_PROD] = S_PROD, [R_MAX] = S_MAX,
                                     [R_MIN] = S_MIN, [R_L1] = S_ABS, [R_L2] = S_SUMSQ, [R_SUMSQ] = S_SUMSQ,
                                     [R_LOGSUM] = S_SUM, [R_LOGSUMEXP] = S_EXP};
    rc.step = steps[op];
    bool fpath = isf || op == R_L2 || op == R_LOGSUM || op == R_LOGSUMEXP;
    if (fpath) {
        double *acc = kl_calloc((size_t)no, sizeof *acc), *shift = NULL;
        if (!acc) return KILN_ERR_NO_MEMORY;
        double init = op == R_MAX ? -INFINITY : op == R_MIN ? INFINITY : op == R_PROD ? 1.0 : 0.0;
        for (int64_t i = 0; i < no; i++) acc[i] = init;
        if (op == R_LOGSUMEXP) {
            shift = kl_calloc((size_t)no, sizeof *shift);
            if (!shift) {
                kl_free(acc);
                return KILN_ERR_NO_MEMORY;
            }
            for (int64_t i = 0; i < no; i++) shift[i] = -INFINITY;
            red_ctx mc = {.step = S_MAX, .x = x, .f = shift};
            kl_red_foreach(&p, red_visit_f, &mc);
            for (int64_t i = 0; i < no; i++)
                if (isinf(shift[i])) shift[i] = 0.0;
            rc.shift = shift;
        }
        rc.f = acc;
        kl_red_foreach(&p, red_visit_f, &rc);
        for (int64_t i = 0; i < no; i++) {
            double v = acc[i];
            switch (op) {
            case R_MEAN: v = v / (double)group; break;
            case R_L2: v = sqrt(v); break;
            case R_LOGSUM: v = log(v); break;
            case R_LOGSUMEXP: v = shift[i] + log(v); break;
            default: break;
            }
            kl_red_st(y, i, v);
        }
        kl_free(shift);
        kl_free(acc);
        return KILN_OK;
    }
    uint64_t *acc = kl_calloc((size_t)no, sizeof *acc), lo, hi;
    if (!acc) return KILN_ERR_NO_MEMORY;
    red_int_limits(dt, &lo, &hi);
    uint64_t init = op == R_MAX ? lo : op == R_MIN ? hi : op == R_PROD ? 1 : 0;
    for (int64_t i = 0; i < no; i++) acc[i] = init;
    rc.u = acc;
    kl_red_foreach(&p, red_visit_i, &rc);
    for (int64_t i = 0; i < no; i++) {
        uint64_t v = acc[i];
        if (op == R_MEAN)
            v = group == 0 ? 0 : rc.uns ? v / (uint64_t)group : (uint64_t)((int64_t)v / group);
        kl_rt_set_i64(y, i, (int64_t)v);
    }
    kl_free(acc);
    return KILN_OK;
}

static kiln_status k_reduce_sum(kl_kctx *c) { return red_run(c, R_SUM, 13); }
static kiln_status k_reduce_mean(kl_kctx *c) { return red_run(c, R_MEAN, 18); }
static kiln_status k_reduce_prod(kl_kctx *c) { return red_run(c, R_PROD, 18); }
static kiln_status k_reduce_max(kl_kctx *c) { return red_run(c, R_MAX, 18); }
static kiln_status k_reduce_min(kl_kctx *c) { return red_run(c, R_MIN, 18); }
static kiln_status k_reduce_l1(kl_kctx *c) { return red_run(c, R_L1, 18); }
static kiln_status k_reduce_l2(kl_kctx *c) { return red_run(c, R_L2, 18); }
static kiln_status k_reduce_sumsq(kl_kctx *c) { return red_run(c, R_SUMSQ, 18); }
static kiln_status k_reduce_logsum(kl_kctx *c) { return red_run(c, R_LOGSUM, 18); }
static kiln_status k_reduce_logsumexp(kl_kctx *c) { return red_run(c, R_LOGSUMEXP, 18); }

/* ---- ArgMax / ArgMin ------------------------------------------------------------------- */

/* Is v a better pick than best?  NaN beats everything (numpy argmax/argmin). */
static bool arg_better_f(double v, double best, bool is_max) {
    if (isnan(best)) return false;
    return isnan(v) || (is_max ? v > best : v < best);
}

/* ArgMax / ArgMin along `axis` (int64 indices); ties go to the first index,
 * or the last with select_last_index (opset 12). */
static kiln_status arg_run(kl_kctx *c, bool is_max) {
    const kl_rt *x = c->in[0];
    if (!x || x->kind != KL_RT_TENSOR) return kl_kctx_fail(c, KILN_ERR_TYPE, "input 'data' must be a tensor");
    kiln_dtype dt = x->dtype;
    bool isf = red_is_float(dt);
    if (!isf && !kl_dtype_is_integer(dt) && dt != KILN_DTYPE_BOOL)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "%s does not support element type %s", c->node->op_type,
                            kiln_dtype_name(dt));
    int axis;
    KL_TRY(kl_ref_axis(kl_node_attr_int(c->node, "axis", 0), x->rank, false, "attribute 'axis'", &axis));
    bool keep = kl_node_attr_int(c->node, "keepdims", 1) != 0;
    bool last = c->node->opset >= 12 && kl_node_attr_int(c->node, "select_last_index", 0) != 0;
    int64_t outer, n, inner, dims[KILN_MAX_RANK];
    kl_red_split(x, axis, &outer, &n, &inner);
    int r = 0;
    for (int i = 0; i < x->rank; i++) {
        if (i != axis) dims[r++] = x->dims[i];
        else if (keep) dims[r++] = 1;
    }
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_INT64, r, dims, &y));
    if (x->count == 0) {
        if (y->count == 0) return KILN_OK;
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "%s over axis %d of size 0 has no result", c->node->op_type, axis);
    }
    int64_t *out = y->data;
    bool uns = dt == KILN_DTYPE_UINT64;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            int64_t base = o * n * inner + in, bi = 0;
            if (isf) {
                double best = kl_red_ld(x, base);
                for (int64_t j = 1; j < n; j++) {
                    double v = kl_red_ld(x, base + j * inner);
                    bool same = v == best || (isnan(v) && isnan(best));
                    if (arg_better_f(v, best, is_max) || (last && same)) {
                        best = v;
                        bi = j;
                    }
                }
            } else {
                uint64_t best = (uint64_t)kl_rt_get_i64(x, base);
                for (int64_t j = 1; j < n; j++) {
                    uint64_t v = (uint64_t)kl_rt_get_i64(x, base + j * inner);
                    bool gt = uns ? v > best : (int64_t)v > (int64_t)best;
                    bool lt = uns ? v < best : (int64_t)v < (int64_t)best;
                    if ((is_max ? gt : lt) || (last && v == best)) {
                        best = v;
                        bi = j;
                    }
                }
            }
            out[o * inner + in] = bi;
        }
    return KILN_OK;
}

static kiln_status k_argmax(kl_kctx *c) { return arg_run(c, true); }
static kiln_status k_argmin(kl_kctx *c) { return arg_run(c, false); }

#define RED_T KL_T_NUMERIC
#define RED_T_MINMAX (KL_T_NUMERIC | KL_T(BOOL))

const kl_kernel_def kl_ref_reduce[] = {
    {"", "ReduceSum", 1, 0, RED_T, k_reduce_sum},
    {"", "ReduceMean", 1, 0, RED_T, k_reduce_mean},
    {"", "ReduceProd", 1, 0, RED_T, k_reduce_prod},
    {"", "ReduceMax", 1, 0, RED_T_MINMAX, k_reduce_max},
    {"", "ReduceMin", 1, 0, RED_T_MINMAX, k_reduce_min},
    {"", "ReduceL1", 1, 0, RED_T, k_reduce_l1},
    {"", "ReduceL2", 1, 0, RED_T, k_reduce_l2},
    {"", "ReduceSumSquare", 1, 0, RED_T, k_reduce_sumsq},
    {"", "ReduceLogSum", 1, 0, RED_T, k_reduce_logsum},
    {"", "ReduceLogSumExp", 1, 0, RED_T, k_reduce_logsumexp},
    {"", "ArgMax", 1, 0, RED_T, k_argmax},
    {"", "ArgMin", 1, 0, RED_T, k_argmin},
    {"", "TopK", 1, 0, RED_T, kl_ref_topk},
    {"", "CumSum", 11, 0, RED_T, kl_ref_cumsum},
    {"", "CumProd", 26, 0, RED_T, kl_ref_cumprod},
    {0},
};
