/*
 * CPU reference kernels: Softmax, LogSoftmax and Hardmax (norm family).
 * exp and sums run in double after subtracting the row maximum.
 */
#include <math.h>
#include <string.h>

#include "cpu/ref/norm.h"
#include "cpu/ref/reduce.h"

typedef enum sm_kind { SM_SOFTMAX, SM_LOGSOFTMAX, SM_HARDMAX } sm_kind;

/* Normalize one row of n values x[i*stride] into y (same layout); e is a
 * scratch buffer of n doubles. */
static void sm_row(sm_kind kind, const kl_rt *x, kl_rt *y, int64_t base, int64_t n, int64_t stride, double *e) {
    double m = -INFINITY;
    int64_t arg = 0;
    for (int64_t j = 0; j < n; j++) {
        double v = kl_red_ld(x, base + j * stride);
        e[j] = v;
        if (!isnan(m) && (isnan(v) || v > m)) {
            m = v;
            arg = j;
        }
    }
    if (kind == SM_HARDMAX) {
        for (int64_t j = 0; j < n; j++) kl_red_st(y, base + j * stride, j == arg ? 1.0 : 0.0);
        return;
    }
    double sum = 0;
    for (int64_t j = 0; j < n; j++) {
        e[j] = exp(e[j] - m);
        sum += e[j];
    }
    if (kind == SM_SOFTMAX) {
        for (int64_t j = 0; j < n; j++) kl_red_st(y, base + j * stride, e[j] / sum);
    } else {
        double ls = m + log(sum);
        for (int64_t j = 0; j < n; j++) kl_red_st(y, base + j * stride, kl_red_ld(x, base + j * stride) - ls);
    }
}

/* float32 Softmax of contiguous rows (the common case in real models). */
static void sm_rows_f32(const float *x, float *y, int64_t rows, int64_t n, double *e) {
    for (int64_t r = 0; r < rows; r++, x += n, y += n) {
        double m = -INFINITY;
        for (int64_t j = 0; j < n; j++)
            if (!isnan(m) && (isnan(x[j]) || x[j] > m)) m = x[j];
        double sum = 0;
        for (int64_t j = 0; j < n; j++) sum += e[j] = exp((double)x[j] - m);
        double inv = 1.0 / sum;
        for (int64_t j = 0; j < n; j++) y[j] = (float)(e[j] * inv);
    }
}

static kiln_status sm_run(kl_kctx *c, sm_kind kind) {
    const kl_rt *x = c->in[0];
    if (!x || x->kind != KL_RT_TENSOR) return kl_kctx_fail(c, KILN_ERR_TYPE, "input must be a tensor");
    kiln_dtype dt = x->dtype;
    if (dt != KILN_DTYPE_FLOAT && dt != KILN_DTYPE_DOUBLE && dt != KILN_DTYPE_FLOAT16 && dt != KILN_DTYPE_BFLOAT16)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "%s does not support element type %s", c->node->op_type,
                            kiln_dtype_name(dt));
    int64_t outer = 1, n = 1, inner = 1;
    if (c->node->opset >= 13) {
        int axis;
        int64_t a = kl_node_attr_int(c->node, "axis", -1);
        if (x->rank > 0 || (a != 0 && a != -1)) {
            KL_TRY(kl_ref_axis(a, x->rank, false, "attribute 'axis'", &axis));
            kl_red_split(x, axis, &outer, &n, &inner);
        }
    } else {
        int64_t a = kl_node_attr_int(c->node, "axis", 1);
        if (a < -x->rank || a > x->rank)
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'axis' %lld is out of range for rank %d",
                                (long long)a, x->rank);
        int axis = (int)(a < 0 ? a + x->rank : a);
        for (int i = 0; i < x->rank; i++) {
            int64_t *p = i < axis ? &outer : &n;
            *p = kl_red_mul(*p, x->dims[i]);
        }
    }
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, dt, x->rank, x->dims, &y));
    if (x->count == 0) return KILN_OK;
    double *e = kl_malloc((size_t)n * sizeof *e);
    if (!e) return KILN_ERR_NO_MEMORY;
    if (kind == SM_SOFTMAX && dt == KILN_DTYPE_FLOAT && inner == 1) {
        sm_rows_f32(x->data, y->data, outer, n, e);
    } else {
        for (int64_t o = 0; o < outer; o++)
            for (int64_t in = 0; in < inner; in++) sm_row(kind, x, y, o * n * inner + in, n, inner, e);
    }
    kl_free(e);
    return KILN_OK;
}

kiln_status kl_ref_softmax(kl_kctx *c) { return sm_run(c, SM_SOFTMAX); }
kiln_status kl_ref_logsoftmax(kl_kctx *c) { return sm_run(c, SM_LOGSOFTMAX); }
kiln_status kl_ref_hardmax(kl_kctx *c) { return sm_run(c, SM_HARDMAX); }
