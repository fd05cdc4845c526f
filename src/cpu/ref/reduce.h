/*
 * reduce.h — shared pieces of the reduce and norm reference kernels: fast
 * element load/store through double, a reduction plan that walks an input
 * tensor in row-major runs together with the output element each run folds
 * into, and the kernels defined outside reduce.c (TopK, CumSum, CumProd).
 */
#ifndef KL_REF_REDUCE_H
#define KL_REF_REDUCE_H

#include "cpu/ref/ref.h"

/* Element i of a numeric tensor as double (float32 read directly). */
static inline double kl_red_ld(const kl_rt *t, int64_t i) {
    if (t->dtype == KILN_DTYPE_FLOAT) return ((const float *)t->data)[i];
    if (t->dtype == KILN_DTYPE_DOUBLE) return ((const double *)t->data)[i];
    return kl_rt_get_f64(t, i);
}

/* Store v into element i (rounded / saturated per the tensor's type). */
static inline void kl_red_st(kl_rt *t, int64_t i, double v) {
    if (t->dtype == KILN_DTYPE_FLOAT) ((float *)t->data)[i] = (float)v;
    else if (t->dtype == KILN_DTYPE_DOUBLE) ((double *)t->data)[i] = v;
    else kl_rt_set_f64(t, i, v);
}

/* a * b for non-negative sizes, saturating at INT64_MAX (partial products
 * of a tensor with a zero dim can exceed int64 although its count is 0). */
static inline int64_t kl_red_mul(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}

/* Input dims coalesced into alternating runs of reduced / kept axes (size-1
 * axes dropped); ostride is the output stride of each run (0 if reduced). */
typedef struct kl_red_plan {
    int n;
    int64_t size[KILN_MAX_RANK];
    int64_t ostride[KILN_MAX_RANK];
    bool red[KILN_MAX_RANK];
    int64_t in_count, out_count;
} kl_red_plan;

/* Plan the reduction of a tensor of dims over the axes flagged in reduced. */
void kl_red_plan_init(kl_red_plan *p, int rank, const int64_t *dims, const bool *reduced);

/* Called for each row-major run of `len` input elements starting at xoff:
 * element xoff+j folds into output o + j*ostep (ostep 0 or 1). */
typedef void (*kl_red_visit)(void *ctx, int64_t xoff, int64_t len, int64_t o, int64_t ostep);

/* Visit every input element of the plan in row-major order. */
void kl_red_foreach(const kl_red_plan *p, kl_red_visit fn, void *ctx);

/* Shape of a tensor as (outer, n, inner) around `axis` (saturating: callers
 * return early for empty tensors). */
void kl_red_split(const kl_rt *t, int axis, int64_t *outer, int64_t *n, int64_t *inner);

/* Kernels of reduce_scan.c. */
kiln_status kl_ref_topk(kl_kctx *c);
kiln_status kl_ref_cumsum(kl_kctx *c);
kiln_status kl_ref_cumprod(kl_kctx *c);

#endif
