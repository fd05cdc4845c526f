/* Shared helpers of the reference kernels. */
#include <stdio.h>
#include <string.h>

#include "cpu/ref/ref.h"

kiln_status kl_ref_broadcast_shape(kl_rt *const *ins, size_t n, int *rank, int64_t *dims) {
    int r = 0;
    for (size_t k = 0; k < n; k++)
        if (ins[k] && ins[k]->rank > r) r = ins[k]->rank;
    for (int i = 0; i < r; i++) dims[i] = 1;
    for (size_t k = 0; k < n; k++) {
        const kl_rt *t = ins[k];
        if (!t) continue;
        for (int i = 0; i < t->rank; i++) {
            int o = r - t->rank + i;
            int64_t d = t->dims[i];
            if (d == dims[o] || d == 1) continue;
            if (dims[o] == 1) {
                dims[o] = d;
                continue;
            }
            char a[128], b[128];
            return kl_errorf(KILN_ERR_SHAPE, "shapes %s (input %zu) and %s cannot be broadcast together",
                             kl_rt_describe(t, a, sizeof a), k, kl_rt_describe(ins[0], b, sizeof b));
        }
    }
    *rank = r;
    return KILN_OK;
}

void kl_ref_strides(int rank, const int64_t *dims, int64_t *strides) {
    uint64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        strides[i] = (int64_t)s;
        s *= (uint64_t)dims[i];
    }
}

void kl_bcast_init(kl_bcast *it, int rank, const int64_t *dims, kl_rt *const *ins, size_t n) {
    memset(it, 0, sizeof *it);
    it->rank = rank;
    it->n = (int)n;
    memcpy(it->dims, dims, (size_t)rank * sizeof *dims);
    for (size_t k = 0; k < n && k < KL_BCAST_MAX_IN; k++) {
        const kl_rt *t = ins[k];
        if (!t) continue;
        int64_t st[KILN_MAX_RANK];
        kl_ref_strides(t->rank, t->dims, st);
        for (int i = 0; i < t->rank; i++) {
            int o = rank - t->rank + i;
            it->strides[k][o] = t->dims[i] == 1 ? 0 : st[i];
        }
    }
}

void kl_bcast_next(kl_bcast *it) {
    for (int i = it->rank - 1; i >= 0; i--) {
        it->idx[i]++;
        for (int k = 0; k < it->n; k++) it->off[k] += it->strides[k][i];
        if (it->idx[i] < it->dims[i]) return;
        for (int k = 0; k < it->n; k++) it->off[k] -= it->strides[k][i] * it->dims[i];
        it->idx[i] = 0;
    }
}

kiln_status kl_ref_axis(int64_t axis, int rank, bool insert, const char *what, int *out) {
    int64_t r = insert ? rank + 1 : rank;
    if (axis < -r || axis >= r)
        return kl_errorf(KILN_ERR_INVALID_MODEL, "%s %lld is out of range for rank %d", what, (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + r : axis);
    return KILN_OK;
}

kiln_status kl_ref_input_ints(const kl_kctx *c, size_t i, int64_t *vals, int64_t max, int64_t *n) {
    *n = -1;
    if (i >= c->n_in || !c->in[i]) return KILN_OK;
    const kl_rt *t = c->in[i];
    char what[64];
    snprintf(what, sizeof what, "input %zu", i);
    KL_TRY(kl_rt_to_i64(t, vals, max, what));
    *n = t->count;
    return KILN_OK;
}

kiln_status kl_ref_input_scalar_f64(const kl_kctx *c, size_t i, double *out) {
    if (i >= c->n_in || !c->in[i] || c->in[i]->kind != KL_RT_TENSOR || c->in[i]->count != 1)
        return kl_errorf(KILN_ERR_SHAPE, "input %zu must be a scalar", i);
    *out = kl_rt_get_f64(c->in[i], 0);
    return KILN_OK;
}

kiln_status kl_ref_input_scalar_i64(const kl_kctx *c, size_t i, int64_t *out) {
    if (i >= c->n_in || !c->in[i] || c->in[i]->kind != KL_RT_TENSOR || c->in[i]->count != 1)
        return kl_errorf(KILN_ERR_SHAPE, "input %zu must be a scalar", i);
    *out = kl_rt_get_i64(c->in[i], 0);
    return KILN_OK;
}

bool kl_ref_same_shape(const kl_rt *a, const kl_rt *b) {
    return a->rank == b->rank && memcmp(a->dims, b->dims, (size_t)a->rank * sizeof a->dims[0]) == 0;
}
