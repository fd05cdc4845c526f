/*
 * CPU reference kernels, tensor family: shared data-movement helpers,
 * Constant, Shape, Size and the family's registry rows.  See tensor.h for the other files.
 */
#include <math.h>
#include <string.h>

#include "cpu/ref/tensor.h"
#include "cpu/threadpool.h"

/* ---- shared helpers ------------------------------------------------------------ */

size_t kl_tz_esize(kiln_dtype t) {
    if (t == KILN_DTYPE_STRING) return 0;
    size_t b = kiln_dtype_bits(t);
    return b >= 8 ? b / 8 : 0;
}

/* Raw bits of sub-byte element i (bits = 4 or 2). */
static unsigned kl_tz_raw_get(const kl_rt *t, int64_t i, unsigned bits) {
    const uint8_t *p = t->data;
    int64_t per = 8 / bits;
    return (p[i / per] >> (bits * (unsigned)(i % per))) & ((1u << bits) - 1);
}

/* Store raw bits v into sub-byte element i. */
static void kl_tz_raw_set(kl_rt *t, int64_t i, unsigned bits, unsigned v) {
    uint8_t *p = t->data;
    int64_t per = 8 / bits;
    unsigned sh = bits * (unsigned)(i % per), mask = ((1u << bits) - 1) << sh;
    p[i / per] = (uint8_t)((p[i / per] & ~mask) | ((v << sh) & mask));
}

kiln_status kl_tz_copy(kl_rt *dst, int64_t di, const kl_rt *src, int64_t si, int64_t n) {
    if (n <= 0) return KILN_OK;
    if (src->dtype == KILN_DTYPE_STRING) {
        const kl_str *s = src->data;
        for (int64_t k = 0; k < n; k++)
            KL_TRY(kl_rt_set_string(dst, di + k, s[si + k].ptr, s[si + k].len));
        return KILN_OK;
    }
    size_t es = kl_tz_esize(src->dtype);
    if (es) {
        memmove((uint8_t *)dst->data + (size_t)di * es, (const uint8_t *)src->data + (size_t)si * es, (size_t)n * es);
        return KILN_OK;
    }
    unsigned bits = (unsigned)kiln_dtype_bits(src->dtype);
    if (bits != 4 && bits != 2) return kl_errorf(KILN_ERR_UNSUPPORTED, "cannot move %s elements", kiln_dtype_name(src->dtype));
    for (int64_t k = 0; k < n; k++) kl_tz_raw_set(dst, di + k, bits, kl_tz_raw_get(src, si + k, bits));
    return KILN_OK;
}

void kl_tz_strides(int rank, const int64_t *dims, int64_t *strides) {
    uint64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        strides[i] = (int64_t)s;
        s *= (uint64_t)dims[i];
    }
}

/* dims/strides of a strided copy with unit axes dropped and adjacent
 * axes merged where both sides allow: *r axes left (0: one element). */
static void kl_tz_collapse(const int64_t *dstr, const int64_t *sstr, int rank, const int64_t *dims, int64_t *d,
                           int64_t *ds, int64_t *ss, int *r) {
    *r = 0;
    for (int k = 0; k < rank; k++) {
        if (dims[k] == 1) continue;
        if (*r > 0 && ds[*r - 1] == dstr[k] * dims[k] && ss[*r - 1] == sstr[k] * dims[k]) {
            d[*r - 1] *= dims[k];
            ds[*r - 1] = dstr[k];
            ss[*r - 1] = sstr[k];
        } else {
            d[*r] = dims[k];
            ds[*r] = dstr[k];
            ss[*r] = sstr[k];
            (*r)++;
        }
    }
}

kiln_status kl_tz_strided(kl_rt *dst, int64_t doff, const int64_t *dstr, const kl_rt *src, int64_t soff,
                          const int64_t *sstr, int rank, const int64_t *dims) {
    int64_t d[2 * KILN_MAX_RANK], ds[2 * KILN_MAX_RANK], ss[2 * KILN_MAX_RANK];
    int r;
    for (int k = 0; k < rank; k++)
        if (dims[k] == 0) return KILN_OK;
    kl_tz_collapse(dstr, sstr, rank, dims, d, ds, ss, &r);
    if (r == 0) return kl_tz_copy(dst, doff, src, soff, 1);
    size_t es = kl_tz_esize(src->dtype);
    int64_t n = d[r - 1], ids = ds[r - 1], iss = ss[r - 1];
    int64_t idx[2 * KILN_MAX_RANK] = {0};
    uint8_t *dp = dst->data;
    const uint8_t *sp = src->data;
    for (;;) {
        if (es && ids == 1 && iss == 1) {
            memcpy(dp + (size_t)doff * es, sp + (size_t)soff * es, (size_t)n * es);
        } else if (es == 4) {
            for (int64_t i = 0; i < n; i++) memcpy(dp + (size_t)(doff + i * ids) * 4, sp + (size_t)(soff + i * iss) * 4, 4);
        } else if (es == 1) {
            for (int64_t i = 0; i < n; i++) dp[doff + i * ids] = sp[soff + i * iss];
        } else if (es == 2) {
            for (int64_t i = 0; i < n; i++) memcpy(dp + (size_t)(doff + i * ids) * 2, sp + (size_t)(soff + i * iss) * 2, 2);
        } else if (es == 8) {
            for (int64_t i = 0; i < n; i++) memcpy(dp + (size_t)(doff + i * ids) * 8, sp + (size_t)(soff + i * iss) * 8, 8);
        } else {
            for (int64_t i = 0; i < n; i++) KL_TRY(kl_tz_move1(dst, doff + i * ids, src, soff + i * iss, es));
        }
        int k = r - 2;
        for (; k >= 0; k--) {
            idx[k]++;
            doff += ds[k];
            soff += ss[k];
            if (idx[k] < d[k]) break;
            doff -= ds[k] * d[k];
            soff -= ss[k] * d[k];
            idx[k] = 0;
        }
        if (k < 0) return KILN_OK;
    }
}

/* ---- the same over a thread pool, for large copies ------------------------------ */

#define KL_TZ_MT_BYTES ((size_t)1 << 20) /* smaller copies stay on the calling thread */
#define KL_TZ_MT_PIECE ((size_t)1 << 18) /* bytes of a piece of a contiguous row */

typedef struct kl_tz_mt {
    uint8_t *dp;
    const uint8_t *sp;
    size_t es;
    int r;
    int64_t d[2 * KILN_MAX_RANK], ds[2 * KILN_MAX_RANK], ss[2 * KILN_MAX_RANK];
    int64_t doff, soff, pieces, plen; /* each row of d[r-1] elements in pieces of plen */
} kl_tz_mt;

/* Items [b, e): item i is piece i % pieces of row i / pieces (row-major
 * over the outer axes d[0..r-2]). */
static void kl_tz_mt_task(void *arg, size_t b, size_t e, int tid) {
    const kl_tz_mt *m = arg;
    (void)tid;
    int64_t n = m->d[m->r - 1], ids = m->ds[m->r - 1], iss = m->ss[m->r - 1];
    size_t es = m->es;
    for (size_t it = b; it < e; it++) {
        int64_t row = (int64_t)it / m->pieces, p0 = ((int64_t)it % m->pieces) * m->plen;
        int64_t p1 = KL_MIN(n, p0 + m->plen), doff = m->doff, soff = m->soff;
        for (int k = m->r - 2; k >= 0; k--) {
            int64_t q = row % m->d[k];
            row /= m->d[k];
            doff += q * m->ds[k];
            soff += q * m->ss[k];
        }
        uint8_t *dp = m->dp;
        const uint8_t *sp = m->sp;
        if (ids == 1 && iss == 1) {
            memcpy(dp + (size_t)(doff + p0) * es, sp + (size_t)(soff + p0) * es, (size_t)(p1 - p0) * es);
            continue;
        }
        for (int64_t i = p0; i < p1; i++) {
            uint8_t *o = dp + (size_t)(doff + i * ids) * es;
            const uint8_t *q = sp + (size_t)(soff + i * iss) * es;
            switch (es) {
            case 1: *o = *q; break;
            case 2: memcpy(o, q, 2); break;
            case 4: memcpy(o, q, 4); break;
            default: memcpy(o, q, 8); break;
            }
        }
    }
}

kiln_status kl_tz_strided_mt(struct kl_pool *pool, kl_rt *dst, int64_t doff, const int64_t *dstr, const kl_rt *src,
                             int64_t soff, const int64_t *sstr, int rank, const int64_t *dims) {
    size_t es = kl_tz_esize(src->dtype);
    int64_t count = 1;
    for (int k = 0; k < rank; k++) count = kl_tz_mulw(count, dims[k]);
    int threads = kl_pool_threads(pool);
    if (threads < 2 || count <= 0 || (es != 1 && es != 2 && es != 4 && es != 8) ||
        (size_t)count * es < KL_TZ_MT_BYTES)
        return kl_tz_strided(dst, doff, dstr, src, soff, sstr, rank, dims);
    kl_tz_mt m;
    kl_tz_collapse(dstr, sstr, rank, dims, m.d, m.ds, m.ss, &m.r);
    if (m.r == 0) return kl_tz_strided(dst, doff, dstr, src, soff, sstr, rank, dims);
    int64_t n = m.d[m.r - 1], rows = count / n;
    m.dp = dst->data, m.sp = src->data, m.es = es, m.doff = doff, m.soff = soff;
    /* few long rows: cut them (any row, strided too) into pieces of about KL_TZ_MT_PIECE bytes */
    m.pieces = 1;
    if (rows < 4 * (int64_t)threads) m.pieces = KL_MAX((int64_t)1, KL_MIN(n, (int64_t)((size_t)n * es / KL_TZ_MT_PIECE)));
    m.plen = (n + m.pieces - 1) / m.pieces;
    m.pieces = (n + m.plen - 1) / m.plen;
    kl_parallel_for_dyn(pool, threads, (size_t)(rows * m.pieces), 1, kl_tz_mt_task, &m);
    return KILN_OK;
}

kiln_status kl_tz_copy_mt(struct kl_pool *pool, kl_rt *dst, int64_t di, const kl_rt *src, int64_t si, int64_t n) {
    size_t es = kl_tz_esize(src->dtype);
    const uint8_t *s0 = (const uint8_t *)src->data + (size_t)si * es;
    uint8_t *d0 = (uint8_t *)dst->data + (size_t)di * es;
    if (es && d0 == s0) return KILN_OK; /* planned in place (Reshape over its dying input): nothing moves */
    bool apart = es && n > 0 && (d0 + (size_t)n * es <= s0 || s0 + (size_t)n * es <= d0);
    if (!apart) return kl_tz_copy(dst, di, src, si, n);
    int64_t one = 1;
    return kl_tz_strided_mt(pool, dst, di, &one, src, si, &one, 1, &n);
}

kiln_status kl_tz_fill(kl_rt *dst, const kl_rt *val, int64_t vi) {
    size_t es = kl_tz_esize(dst->dtype);
    if (!es || dst->count == 0) {
        for (int64_t i = 0; i < dst->count; i++) KL_TRY(kl_tz_copy(dst, i, val, vi, 1));
        return KILN_OK;
    }
    uint8_t *p = dst->data;
    memcpy(p, (const uint8_t *)val->data + (size_t)vi * es, es);
    size_t have = es, total = (size_t)dst->count * es;
    while (have < total) {
        size_t n = KL_MIN(have, total - have);
        memcpy(p + have, p, n);
        have += n;
    }
    return KILN_OK;
}

kiln_status kl_tz_need(kl_kctx *c, size_t i, const char *what, kl_rt **out) {
    if (i >= c->n_in || !c->in[i]) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "input %zu (%s) is missing", i, what);
    if (c->in[i]->kind != KL_RT_TENSOR)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "input %zu (%s) must be a tensor", i, what);
    *out = c->in[i];
    return KILN_OK;
}

kiln_status kl_tz_output_copy(kl_kctx *c, size_t i, const kl_rt *src, int rank, const int64_t *dims) {
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, i, src->dtype, rank, dims, &y));
    if (y->count != src->count)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "output has %lld elements but the input has %lld", (long long)y->count,
                            (long long)src->count);
    return kl_tz_copy_mt(c->pool, y, 0, src, 0, src->count);
}

kiln_status kl_tz_index(kl_kctx *c, int64_t v, int64_t dim, const char *what, int64_t *out) {
    if (v < -dim || v >= dim)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "%s %lld is out of range for a dimension of size %lld", what,
                            (long long)v, (long long)dim);
    *out = v < 0 ? v + dim : v;
    return KILN_OK;
}

/* ---- Constant -------------------------------------------------------------------- */

/* A runtime copy of constant tensor t (its data may be unaligned). */
static kiln_status kl_tz_from_tensor(kl_kctx *c, const kl_tensor *t, kl_rt **out) {
    kl_rt *r;
    KL_TRY(kl_rt_tensor(t->dtype, t->rank, t->dims, &r));
    kiln_status s = KILN_OK;
    if (t->dtype == KILN_DTYPE_STRING) {
        for (int64_t i = 0; !s && t->strings && i < t->count; i++)
            s = kl_rt_set_string(r, i, t->strings[i].ptr, t->strings[i].len);
    } else if (r->nbytes) {
        if (!t->data || t->nbytes < r->nbytes)
            s = kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "tensor '%s' has %zu bytes of data, %zu needed", t->name,
                             t->nbytes, r->nbytes);
        else
            memcpy(r->data, t->data, r->nbytes);
    }
    if (s) {
        kl_rt_unref(r);
        return s;
    }
    *out = r;
    return KILN_OK;
}

/* Element i of an int64 constant tensor (unaligned-safe). */
static int64_t kl_tz_tensor_i64(const kl_tensor *t, int64_t i) {
    int64_t v;
    memcpy(&v, (const uint8_t *)t->data + (size_t)i * sizeof v, sizeof v);
    return v;
}

/* Dense tensor of a sparse constant (COO indices, linear or per axis). */
static kiln_status kl_tz_from_sparse(kl_kctx *c, const kl_sparse *sp, kl_rt **out) {
    if (!sp->values || !sp->indices)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "sparse_value has no values or indices");
    const kl_tensor *ix = sp->indices;
    int64_t nnz = sp->values->count;
    bool linear = ix->rank == 1;
    if (ix->dtype != KILN_DTYPE_INT64 || !(linear || ix->rank == 2) || ix->dims[0] != nnz ||
        (!linear && ix->dims[1] != sp->rank) || (ix->count && (!ix->data || ix->nbytes < (size_t)ix->count * 8)))
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "sparse_value indices must be int64 [%lld] or [%lld,%d]",
                            (long long)nnz, (long long)nnz, sp->rank);
    kl_rt *vals, *y;
    KL_TRY(kl_tz_from_tensor(c, sp->values, &vals));
    kiln_status s = kl_rt_tensor(vals->dtype, sp->rank, sp->dims, &y);
    if (s) {
        kl_rt_unref(vals);
        return s;
    }
    int64_t st[KILN_MAX_RANK];
    kl_tz_strides(y->rank, y->dims, st);
    for (int64_t k = 0; !s && k < nnz; k++) {
        int64_t off = 0;
        if (linear) {
            off = kl_tz_tensor_i64(ix, k);
            if (off < 0 || off >= y->count)
                s = kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "sparse_value index %lld is out of range", (long long)off);
        } else {
            for (int d = 0; !s && d < sp->rank; d++) {
                int64_t v = kl_tz_tensor_i64(ix, k * sp->rank + d);
                if (v < 0 || v >= y->dims[d])
                    s = kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "sparse_value index %lld of axis %d is out of range",
                                     (long long)v, d);
                off += v * st[d];
            }
        }
        if (!s) s = kl_tz_copy(y, off, vals, k, 1);
    }
    kl_rt_unref(vals);
    if (s) {
        kl_rt_unref(y);
        return s;
    }
    *out = y;
    return KILN_OK;
}

/* Constant: the tensor of whichever value attribute is set. */
static kiln_status kl_tz_constant(kl_kctx *c) {
    const kl_node *n = c->node;
    kl_rt *y = NULL;
    const kl_attr *a;
    if ((a = kl_node_attr(n, "value")) && a->t) {
        KL_TRY(kl_tz_from_tensor(c, a->t, &y));
    } else if ((a = kl_node_attr(n, "sparse_value")) && a->sparse) {
        KL_TRY(kl_tz_from_sparse(c, a->sparse, &y));
    } else if ((a = kl_node_attr(n, "value_float"))) {
        KL_TRY(kl_rt_tensor(KILN_DTYPE_FLOAT, 0, NULL, &y));
        ((float *)y->data)[0] = a->f;
    } else if ((a = kl_node_attr(n, "value_floats"))) {
        int64_t d = (int64_t)a->n;
        KL_TRY(kl_rt_tensor(KILN_DTYPE_FLOAT, 1, &d, &y));
        if (a->n) memcpy(y->data, a->floats, a->n * sizeof(float));
    } else if ((a = kl_node_attr(n, "value_int"))) {
        KL_TRY(kl_rt_tensor(KILN_DTYPE_INT64, 0, NULL, &y));
        ((int64_t *)y->data)[0] = a->i;
    } else if ((a = kl_node_attr(n, "value_ints"))) {
        int64_t d = (int64_t)a->n;
        KL_TRY(kl_rt_tensor(KILN_DTYPE_INT64, 1, &d, &y));
        if (a->n) memcpy(y->data, a->ints, a->n * sizeof(int64_t));
    } else if ((a = kl_node_attr(n, "value_string"))) {
        KL_TRY(kl_rt_tensor(KILN_DTYPE_STRING, 0, NULL, &y));
        kiln_status s = kl_rt_set_string(y, 0, a->s.ptr, a->s.len);
        if (s) {
            kl_rt_unref(y);
            return s;
        }
    } else if ((a = kl_node_attr(n, "value_strings"))) {
        int64_t d = (int64_t)a->n;
        KL_TRY(kl_rt_tensor(KILN_DTYPE_STRING, 1, &d, &y));
        for (size_t i = 0; i < a->n; i++) {
            kiln_status s = kl_rt_set_string(y, (int64_t)i, a->strings[i].ptr, a->strings[i].len);
            if (s) {
                kl_rt_unref(y);
                return s;
            }
        }
    } else {
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "Constant has none of the value attributes");
    }
    return kl_kctx_set_output(c, 0, y);
}

/* ---- Shape, Size ------------------------------------------------------------------ */

/* Clamp a Shape start/end (opset 15): negative counts from the back. */
static int64_t kl_tz_shape_clamp(int64_t v, int64_t r) {
    if (v < 0) v += r;
    return v < 0 ? 0 : v > r ? r : v;
}

/* Shape: the input's dims[start:end] as int64. */
static kiln_status kl_tz_shape(kl_kctx *c) {
    kl_rt *x = NULL, *y = NULL;
    KL_TRY(kl_tz_need(c, 0, "data", &x));
    int64_t r = x->rank;
    int64_t start = kl_tz_shape_clamp(kl_node_attr_int(c->node, "start", 0), r);
    int64_t end = kl_node_attr(c->node, "end") ? kl_tz_shape_clamp(kl_node_attr_int(c->node, "end", r), r) : r;
    int64_t n = end > start ? end - start : 0;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_INT64, 1, &n, &y));
    for (int64_t i = 0; i < n; i++) ((int64_t *)y->data)[i] = x->dims[start + i];
    return KILN_OK;
}

/* Size: the input's element count as an int64 scalar. */
static kiln_status kl_tz_size(kl_kctx *c) {
    kl_rt *x = NULL, *y = NULL;
    KL_TRY(kl_tz_need(c, 0, "data", &x));
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_INT64, 0, NULL, &y));
    ((int64_t *)y->data)[0] = x->count;
    return KILN_OK;
}

/* ---- registry ------------------------------------------------------------------- */

const kl_kernel_def kl_ref_tensor[] = {
    {"", "Constant", 1, 0, 0, kl_tz_constant},
    {"", "Shape", 1, 0, 0, kl_tz_shape},
    {"", "Size", 1, 0, 0, kl_tz_size},
    {"", "Reshape", 1, 0, 0, kl_tz_reshape},
    {"", "Flatten", 1, 0, 0, kl_tz_flatten},
    {"", "Squeeze", 1, 0, 0, kl_tz_squeeze},
    {"", "Unsqueeze", 1, 0, 0, kl_tz_unsqueeze},
    {"", "Expand", 8, 0, 0, kl_tz_expand},
    {"", "Tile", 1, 0, 0, kl_tz_tile},
    {"", "Transpose", 1, 0, 0, kl_tz_transpose},
    {"", "Concat", 1, 0, 0, kl_tz_concat},
    {"", "Split", 1, 0, 0, kl_tz_split},
    {"", "Slice", 1, 0, 0, kl_tz_slice},
    {"", "Pad", 1, 0, 0, kl_tz_pad},
    {"", "CenterCropPad", 18, 0, 0, kl_tz_center_crop_pad},
    {"", "DepthToSpace", 1, 0, 0, kl_tz_depth_to_space},
    {"", "SpaceToDepth", 1, 0, 0, kl_tz_space_to_depth},
    {"", "Compress", 9, 0, 0, kl_tz_compress},
    {"", "ReverseSequence", 10, 0, 0, kl_tz_reverse_sequence},
    {"", "Gather", 1, 0, 0, kl_tz_gather},
    {"", "GatherElements", 11, 0, 0, kl_tz_gather_elements},
    {"", "GatherND", 11, 0, 0, kl_tz_gather_nd},
    {"", "ScatterND", 11, 0, 0, kl_tz_scatter_nd},
    {"", "ScatterElements", 11, 0, 0, kl_tz_scatter_elements},
    {"", "Scatter", 9, 10, 0, kl_tz_scatter_elements},
    {"", "TensorScatter", 24, 0, 0, kl_tz_tensor_scatter},
    {"", "ConstantOfShape", 9, 0, 0, kl_tz_constant_of_shape},
    {"", "Range", 11, 0, 0, kl_tz_range},
    {"", "EyeLike", 9, 0, 0, kl_tz_eye_like},
    {"", "OneHot", 9, 0, 0, kl_tz_one_hot},
    {"", "Trilu", 14, 0, 0, kl_tz_trilu},
    {"", "NonZero", 9, 0, 0, kl_tz_non_zero},
    {"", "Unique", 11, 0, 0, kl_tz_unique},
    {"", "Resize", 10, 0, 0, kl_tz_resize},
    {"", "Upsample", 1, 9, 0, kl_tz_upsample},
    {0},
};
