/*
 * CPU reference kernels: integer / quantized products — MatMulInteger,
 * QLinearMatMul, ConvInteger, QLinearConv.
 *
 * Operands are converted to double with their zero points subtracted
 * (exact for every integer type these ops take) and accumulated in double,
 * which is exact while sums stay below 2^53.  Integer outputs of
 * MatMulInteger / ConvInteger wrap to int32; QLinear* requantize with
 * round(acc * (a_scale * b_scale / y_scale)) + y_zero_point, the
 * multiplier computed in the scales' type as the ONNX reference does,
 * rounded half to even and saturated.  float8 operands (QLinearMatMul 21)
 * are decoded to their values.
 */
#include <math.h>
#include <string.h>

#include "cpu/ref/quant.h"

/* ---- small helpers --------------------------------------------------------------- */

/* n zeroed elements of `size` bytes (at least one), overflow-checked; NULL
 * with the error set. */
static void *q_alloc(int64_t n, size_t size) {
    size_t bytes;
    if (n < 0 || kl_mul_size((size_t)KL_MAX(n, 1), size, &bytes) || bytes > KL_MAX_ALLOC) {
        kl_errorf(KILN_ERR_NO_MEMORY, "work buffer of %lld elements is too large", (long long)n);
        return NULL;
    }
    void *p = kl_calloc((size_t)KL_MAX(n, 1), size);
    if (!p) kl_errorf(KILN_ERR_NO_MEMORY, "out of memory (%zu bytes)", bytes);
    return p;
}

/* Optional input i, NULL when omitted. */
static const kl_rt *q_opt_in(const kl_kctx *c, size_t i) {
    return i < c->n_in && c->in[i] && c->in[i]->kind == KL_RT_TENSOR ? c->in[i] : NULL;
}

/* Value of an operand element (integers exactly, small floats decoded). */
static inline double q_val(const kl_rt *t, int64_t i) {
    switch (t->dtype) {
    case KILN_DTYPE_UINT8: return ((const uint8_t *)t->data)[i];
    case KILN_DTYPE_INT8: return ((const int8_t *)t->data)[i];
    default: return kl_dtype_is_integer(t->dtype) ? (double)kl_rt_get_i64(t, i) : kl_rt_get_f64(t, i);
    }
}

/* Integer quantized types and the float8 types. */
static bool q_operand_type_ok(kiln_dtype t) {
    int64_t lo, hi;
    return kl_quant_int_range(t, &lo, &hi) || t == KILN_DTYPE_FLOAT8E4M3FN || t == KILN_DTYPE_FLOAT8E4M3FNUZ ||
           t == KILN_DTYPE_FLOAT8E5M2 || t == KILN_DTYPE_FLOAT8E5M2FNUZ;
}

/* Requantize v (already scaled) into element i of y: integers rounded half
 * to even and saturated, float8 encoded with saturation. */
static inline void q_requant_store(kl_rt *y, int64_t i, double v, int64_t lo, int64_t hi, bool is_int) {
    if (!is_int) {
        ((uint8_t *)y->data)[i] = kl_quant_f32_to_small(y->dtype, (float)v, true);
        return;
    }
    double r = nearbyint(v);
    if (isnan(r)) r = 0.0;
    int64_t q = r <= (double)lo ? lo : r >= (double)hi ? hi : (int64_t)r;
    kl_rt_set_i64(y, i, q);
}

/* ---- batched matrix product with numpy broadcasting ---------------------------------- */

typedef struct q_mm {
    int64_t M, N, K;
    int brank;                       /* number of broadcast batch dims */
    int64_t bdims[KILN_MAX_RANK];    /* output batch dims */
    int64_t sa[KILN_MAX_RANK], sb[KILN_MAX_RANK]; /* batch strides in matrices (0 = broadcast) */
    int64_t nbatch;
    int orank;
    int64_t odims[KILN_MAX_RANK];
    int64_t abatch, bbatch;          /* matrices in a and b */
} q_mm;

/* numpy matmul shapes of a x b (1-D operands promoted, batch dims broadcast). */
static kiln_status q_mm_shape(kl_kctx *c, const kl_rt *a, const kl_rt *b, q_mm *mm) {
    char s1[128], s2[128];
    if (a->rank < 1 || b->rank < 1)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "matmul operands must have rank >= 1, got %s and %s",
                            kl_rt_describe(a, s1, sizeof s1), kl_rt_describe(b, s2, sizeof s2));
    memset(mm, 0, sizeof *mm);
    int ar = a->rank == 1 ? 0 : a->rank - 2, br = b->rank == 1 ? 0 : b->rank - 2;
    mm->M = a->rank == 1 ? 1 : a->dims[a->rank - 2];
    mm->K = a->dims[a->rank - 1];
    int64_t kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
    mm->N = b->rank == 1 ? 1 : b->dims[b->rank - 1];
    if (kb != mm->K)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "matmul inner dimensions differ: %s x %s",
                            kl_rt_describe(a, s1, sizeof s1), kl_rt_describe(b, s2, sizeof s2));
    mm->brank = KL_MAX(ar, br);
    int64_t stA = mm->M * mm->K, stB = mm->K * mm->N;
    mm->abatch = mm->bbatch = 1;
    for (int d = 0; d < ar; d++) mm->abatch *= a->dims[d];
    for (int d = 0; d < br; d++) mm->bbatch *= b->dims[d];
    for (int d = mm->brank - 1; d >= 0; d--) {
        int da = d - (mm->brank - ar), db = d - (mm->brank - br);
        int64_t xa = da >= 0 ? a->dims[da] : 1, xb = db >= 0 ? b->dims[db] : 1;
        if (xa != xb && xa != 1 && xb != 1)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "matmul batch dimensions of %s and %s do not broadcast",
                                kl_rt_describe(a, s1, sizeof s1), kl_rt_describe(b, s2, sizeof s2));
        mm->bdims[d] = xa == 1 ? xb : xa;
        mm->sa[d] = xa == 1 ? 0 : stA;
        mm->sb[d] = xb == 1 ? 0 : stB;
        if (da >= 0) stA *= xa;
        if (db >= 0) stB *= xb;
    }
    mm->nbatch = 1;
    for (int d = 0; d < mm->brank; d++) mm->nbatch *= mm->bdims[d];
    mm->orank = 0;
    for (int d = 0; d < mm->brank; d++) mm->odims[mm->orank++] = mm->bdims[d];
    if (a->rank > 1) mm->odims[mm->orank++] = mm->M;
    if (b->rank > 1) mm->odims[mm->orank++] = mm->N;
    return KILN_OK;
}

/* Offsets of the a and b matrices of output batch bi. */
static void q_mm_offsets(const q_mm *mm, int64_t bi, int64_t *oa, int64_t *ob) {
    *oa = *ob = 0;
    for (int d = mm->brank - 1; d >= 0; d--) {
        int64_t idx = bi % mm->bdims[d];
        bi /= mm->bdims[d];
        *oa += idx * mm->sa[d];
        *ob += idx * mm->sb[d];
    }
}

/* C[nbatch, M, N] = A x B (C zeroed by the caller). */
static void q_mm_run(const q_mm *mm, const double *A, const double *B, double *C) {
    int64_t M = mm->M, N = mm->N, K = mm->K;
    for (int64_t bi = 0; bi < mm->nbatch; bi++) {
        int64_t oa, ob;
        q_mm_offsets(mm, bi, &oa, &ob);
        double *cb = C + bi * M * N;
        for (int64_t i = 0; i < M; i++) {
            double *restrict crow = cb + i * N;
            for (int64_t k = 0; k < K; k++) {
                double av = A[oa + i * K + k];
                if (av == 0.0) continue;
                const double *restrict brow = B + ob + k * N;
                for (int64_t j = 0; j < N; j++) crow[j] += av * brow[j];
            }
        }
    }
}

/* How a per-row (of a) or per-column (of b) parameter is indexed: 0 one
 * value, 1 one per row/column, 2 one per (matrix, row/column). */
static kiln_status q_mm_param_mode(kl_kctx *c, const kl_rt *p, const kl_rt *m, const q_mm *mm, bool rows,
                                   const char *what, int *mode) {
    *mode = 0;
    if (!p || p->count == 1) return KILN_OK;
    int64_t len = rows ? mm->M : mm->N, nmat = rows ? mm->abatch : mm->bbatch;
    if (p->rank == 1 && p->count == len && m->rank >= 2) {
        *mode = 1;
        return KILN_OK;
    }
    if (p->rank == m->rank && m->rank >= 2 && p->count == nmat * len &&
        p->dims[rows ? m->rank - 1 : m->rank - 2] == 1) {
        *mode = 2;
        return KILN_OK;
    }
    char s1[128], s2[128];
    return kl_kctx_fail(c, KILN_ERR_SHAPE, "%s %s must be a scalar or hold one value per %s of %s", what,
                        kl_rt_describe(p, s1, sizeof s1), rows ? "row" : "column", kl_rt_describe(m, s2, sizeof s2));
}

/* Index into a parameter of element e of a (rows) or b (columns). */
static inline int64_t q_mm_param_idx(const q_mm *mm, int mode, bool rows, int64_t e) {
    if (mode == 0) return 0;
    if (rows) {
        int64_t i = (e / mm->K) % mm->M;
        return mode == 1 ? i : (e / (mm->M * mm->K)) * mm->M + i;
    }
    int64_t j = e % mm->N;
    return mode == 1 ? j : (e / (mm->K * mm->N)) * mm->N + j;
}

/* t's values minus its zero point (per tensor / row / column) as doubles. */
static kiln_status q_mm_operand(kl_kctx *c, const kl_rt *t, const kl_rt *zp, const q_mm *mm, bool rows,
                                const char *what, double **out) {
    int mode;
    KL_TRY(q_mm_param_mode(c, zp, t, mm, rows, what, &mode));
    double *v = q_alloc(t->count, sizeof *v);
    if (!v) return KILN_ERR_NO_MEMORY;
    for (int64_t e = 0; e < t->count; e++)
        v[e] = q_val(t, e) - (zp ? q_val(zp, q_mm_param_idx(mm, mode, rows, e)) : 0.0);
    *out = v;
    return KILN_OK;
}

kiln_status kl_quant_matmul_integer(kl_kctx *c) {
    const kl_rt *a, *b;
    KL_TRY(kl_quant_input(c, 0, "A", &a));
    KL_TRY(kl_quant_input(c, 1, "B", &b));
    const kl_rt *az = q_opt_in(c, 2), *bz = q_opt_in(c, 3);
    if (!kl_dtype_is_integer(a->dtype) || !kl_dtype_is_integer(b->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "A (%s) and B (%s) must be integer tensors", kiln_dtype_name(a->dtype),
                            kiln_dtype_name(b->dtype));
    if ((az && az->dtype != a->dtype) || (bz && bz->dtype != b->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "zero points must have the types of A and B");
    q_mm mm;
    KL_TRY(q_mm_shape(c, a, b, &mm));
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_INT32, mm.orank, mm.odims, &y));
    double *A = NULL, *B = NULL, *C = NULL;
    kiln_status s = q_mm_operand(c, a, az, &mm, true, "a_zero_point", &A);
    if (s == KILN_OK) s = q_mm_operand(c, b, bz, &mm, false, "b_zero_point", &B);
    if (s == KILN_OK && !(C = q_alloc(y->count, sizeof *C))) s = KILN_ERR_NO_MEMORY;
    if (s == KILN_OK) {
        q_mm_run(&mm, A, B, C);
        int32_t *yd = y->data;
        for (int64_t i = 0; i < y->count; i++) {
            double v = C[i];
            int64_t w = fabs(v) < 9.2e18 ? (int64_t)v : 0;
            yd[i] = (int32_t)(uint32_t)(uint64_t)w; /* wraps modulo 2^32 */
        }
    }
    kl_free(A);
    kl_free(B);
    kl_free(C);
    return s;
}

/* Per-row / per-column scale values (length = scale count). */
static kiln_status q_scales(const kl_rt *t, double **out) {
    double *v = q_alloc(t->count, sizeof *v);
    if (!v) return KILN_ERR_NO_MEMORY;
    for (int64_t i = 0; i < t->count; i++) v[i] = kl_rt_get_f64(t, i);
    *out = v;
    return KILN_OK;
}

kiln_status kl_quant_qlinear_matmul(kl_kctx *c) {
    const kl_rt *a, *as, *b, *bs, *ys;
    KL_TRY(kl_quant_input(c, 0, "a", &a));
    KL_TRY(kl_quant_input(c, 1, "a_scale", &as));
    KL_TRY(kl_quant_input(c, 3, "b", &b));
    KL_TRY(kl_quant_input(c, 4, "b_scale", &bs));
    KL_TRY(kl_quant_input(c, 6, "y_scale", &ys));
    const kl_rt *az = q_opt_in(c, 2), *bz = q_opt_in(c, 5), *yz = q_opt_in(c, 7);
    if (!q_operand_type_ok(a->dtype) || !q_operand_type_ok(b->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "a (%s) and b (%s) must be quantized types", kiln_dtype_name(a->dtype),
                            kiln_dtype_name(b->dtype));
    if ((az && az->dtype != a->dtype) || (bz && bz->dtype != b->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "zero points must have the types of a and b");
    kiln_dtype yt = yz ? yz->dtype : a->dtype;
    int64_t lo = 0, hi = 0;
    bool is_int = kl_quant_int_range(yt, &lo, &hi);
    if (!q_operand_type_ok(yt)) return kl_kctx_fail(c, KILN_ERR_TYPE, "cannot produce %s", kiln_dtype_name(yt));
    if (ys->count != 1 || (yz && yz->count != 1))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "y_scale and y_zero_point must be scalars");
    q_mm mm;
    KL_TRY(q_mm_shape(c, a, b, &mm));
    int amode, bmode;
    KL_TRY(q_mm_param_mode(c, as, a, &mm, true, "a_scale", &amode));
    KL_TRY(q_mm_param_mode(c, bs, b, &mm, false, "b_scale", &bmode));
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, yt, mm.orank, mm.odims, &y));
    double *A = NULL, *B = NULL, *C = NULL, *av = NULL, *bv = NULL;
    kiln_status s = q_mm_operand(c, a, az, &mm, true, "a_zero_point", &A);
    if (s == KILN_OK) s = q_mm_operand(c, b, bz, &mm, false, "b_zero_point", &B);
    if (s == KILN_OK) s = q_scales(as, &av);
    if (s == KILN_OK) s = q_scales(bs, &bv);
    if (s == KILN_OK && !(C = q_alloc(y->count, sizeof *C))) s = KILN_ERR_NO_MEMORY;
    if (s == KILN_OK) {
        q_mm_run(&mm, A, B, C);
        kiln_dtype st = as->dtype;
        double ysv = kl_rt_get_f64(ys, 0), yzv = yz ? q_val(yz, 0) : 0.0;
        int64_t M = mm.M, N = mm.N;
        for (int64_t bi = 0, e = 0; bi < mm.nbatch; bi++) {
            int64_t oa, ob;
            q_mm_offsets(&mm, bi, &oa, &ob);
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++, e++) {
                    double sa = av[amode == 0 ? 0 : amode == 1 ? i : (oa / (M * mm.K)) * M + i];
                    double sb = bv[bmode == 0 ? 0 : bmode == 1 ? j : (ob / (mm.K * N)) * N + j];
                    double mult = kl_quant_round_to(st, kl_quant_round_to(st, sa * sb) / ysv);
                    q_requant_store(y, e, C[e] * mult + yzv, lo, hi, is_int);
                }
        }
    }
    kl_free(A);
    kl_free(B);
    kl_free(C);
    kl_free(av);
    kl_free(bv);
    return s;
}

/* ---- convolution ---------------------------------------------------------------------- */

typedef struct q_conv {
    int ns;
    int64_t N, C, M, group;
    int64_t in[KILN_MAX_RANK], k[KILN_MAX_RANK], out[KILN_MAX_RANK];
    int64_t s[KILN_MAX_RANK], d[KILN_MAX_RANK], pb[KILN_MAX_RANK], pe[KILN_MAX_RANK];
} q_conv;

/* INTS attribute of exactly n values >= lo into out (left as is when absent). */
static kiln_status q_attr_ints(kl_kctx *c, const char *name, int n, int64_t lo, int64_t *out) {
    const int64_t *v;
    int64_t cnt = kl_node_attr_ints(c->node, name, &v);
    if (cnt < 0) return KILN_OK;
    if (cnt != n)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute '%s' has %lld values, expected %d", name,
                            (long long)cnt, n);
    for (int i = 0; i < n; i++) {
        if (v[i] < lo)
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute '%s' value %lld is below %lld", name,
                                (long long)v[i], (long long)lo);
        out[i] = v[i];
    }
    return KILN_OK;
}

/* Convolution geometry from x, w and the attributes (kernel_shape, strides,
 * dilations, pads, auto_pad, group); output sizes as ONNX shape inference. */
static kiln_status q_conv_geom(kl_kctx *c, const kl_rt *x, const kl_rt *w, q_conv *g) {
    char s1[128], s2[128];
    if (x->rank < 3 || w->rank != x->rank)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "conv input %s and weight %s must have the same rank >= 3",
                            kl_rt_describe(x, s1, sizeof s1), kl_rt_describe(w, s2, sizeof s2));
    memset(g, 0, sizeof *g);
    g->ns = x->rank - 2;
    g->N = x->dims[0];
    g->C = x->dims[1];
    g->M = w->dims[0];
    g->group = kl_node_attr_int(c->node, "group", 1);
    if (g->group < 1 || g->C % g->group || g->M % g->group || w->dims[1] * g->group != g->C)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "group %lld does not fit input %s and weight %s",
                            (long long)g->group, kl_rt_describe(x, s1, sizeof s1), kl_rt_describe(w, s2, sizeof s2));
    int ns = g->ns;
    int64_t pads[2 * KILN_MAX_RANK] = {0};
    for (int i = 0; i < ns; i++) {
        g->in[i] = x->dims[2 + i];
        g->k[i] = w->dims[2 + i];
        g->s[i] = g->d[i] = 1;
    }
    int64_t ks[KILN_MAX_RANK];
    memcpy(ks, g->k, sizeof ks);
    KL_TRY(q_attr_ints(c, "kernel_shape", ns, 1, ks));
    for (int i = 0; i < ns; i++)
        if (ks[i] != g->k[i])
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "kernel_shape does not match weight %s",
                                kl_rt_describe(w, s1, sizeof s1));
    KL_TRY(q_attr_ints(c, "strides", ns, 1, g->s));
    KL_TRY(q_attr_ints(c, "dilations", ns, 1, g->d));
    KL_TRY(q_attr_ints(c, "pads", 2 * ns, 0, pads));
    const char *ap = kl_node_attr_string(c->node, "auto_pad", "NOTSET");
    bool same = strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0;
    bool valid = strcmp(ap, "VALID") == 0;
    if (!same && !valid && strcmp(ap, "NOTSET") != 0 && ap[0] != '\0')
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "unknown auto_pad '%s'", ap);
    for (int i = 0; i < ns; i++) {
        int64_t ke = (g->k[i] - 1) * g->d[i] + 1;
        if (same) {
            int64_t o = (g->in[i] + g->s[i] - 1) / g->s[i];
            int64_t total = KL_MAX(0, (o - 1) * g->s[i] + ke - g->in[i]);
            g->pb[i] = strcmp(ap, "SAME_UPPER") == 0 ? total / 2 : total - total / 2;
            g->pe[i] = total - g->pb[i];
        } else if (!valid) {
            g->pb[i] = pads[i];
            g->pe[i] = pads[ns + i];
        }
        int64_t span = g->in[i] + g->pb[i] + g->pe[i] - ke;
        g->out[i] = span < 0 ? 0 : span / g->s[i] + 1;
    }
    return KILN_OK;
}

/* Offsets into one input channel of every (kernel position, output
 * position) pair, -1 where the window reads padding: [KS][P]. */
static int64_t *q_conv_index(const q_conv *g, int64_t KS, int64_t P) {
    int64_t n;
    if (kl_mul_i64(KS, P, &n)) {
        kl_errorf(KILN_ERR_NO_MEMORY, "conv index too large");
        return NULL;
    }
    int64_t *idx = q_alloc(n, sizeof *idx);
    if (!idx) return NULL;
    int ns = g->ns;
    for (int64_t kp = 0; kp < KS; kp++) {
        int64_t kidx[KILN_MAX_RANK], r = kp;
        for (int i = ns - 1; i >= 0; i--) {
            kidx[i] = r % g->k[i];
            r /= g->k[i];
        }
        int64_t oidx[KILN_MAX_RANK] = {0};
        for (int64_t p = 0; p < P; p++) {
            int64_t off = 0;
            for (int i = 0; i < ns && off >= 0; i++) {
                int64_t pos = oidx[i] * g->s[i] - g->pb[i] + kidx[i] * g->d[i];
                off = pos < 0 || pos >= g->in[i] ? -1 : off * g->in[i] + pos;
            }
            idx[kp * P + p] = off;
            for (int i = ns - 1; i >= 0; i--) {
                if (++oidx[i] < g->out[i]) break;
                oidx[i] = 0;
            }
        }
    }
    return idx;
}

/* The largest |v| of n values, or -1 when one is not an integer. */
static double q_int_bound(const double *v, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (v[i] != floor(v[i])) return -1.0;
        m = fmax(m, fabs(v[i]));
    }
    return m;
}

/* acc[N, M, out...] = conv(X, W) over operands with zero points already
 * subtracted (padding contributes 0): im2col per (image, group), then
 * rows of W times the columns.  Integer operands whose sums provably fit
 * int32 use int32 arithmetic (exact, and faster); others double. */
static kiln_status q_conv_run(const q_conv *g, const double *X, const double *W, double *acc, int64_t xn,
                              int64_t wn) {
    int64_t P = 1, KS = 1, IS = 1;
    for (int i = 0; i < g->ns; i++) {
        P *= g->out[i];
        KS *= g->k[i];
        IS *= g->in[i];
    }
    int64_t Cg = g->C / g->group, Mg = g->M / g->group, KK = Cg * KS, colsz;
    if (P == 0 || g->N == 0 || g->M == 0) return KILN_OK;
    double xb = q_int_bound(X, xn), wb = q_int_bound(W, wn);
    bool i32 = xb >= 0 && wb >= 0 && (double)KK * xb * wb < 2147483647.0 && xb < 65536 && wb < 65536;
    if (kl_mul_i64(KK, P, &colsz)) return kl_errorf(KILN_ERR_NO_MEMORY, "conv work buffer too large");
    int64_t *idx = q_conv_index(g, KS, P);
    void *col = idx ? q_alloc(colsz, i32 ? sizeof(int32_t) : sizeof(double)) : NULL;
    int32_t *wi = col && i32 ? q_alloc(wn, sizeof *wi) : NULL;
    int32_t *ai = col && i32 ? q_alloc(P, sizeof *ai) : NULL;
    if (!idx || !col || (i32 && (!wi || !ai))) {
        kl_free(idx);
        kl_free(col);
        kl_free(wi);
        kl_free(ai);
        return KILN_ERR_NO_MEMORY;
    }
    if (i32)
        for (int64_t i = 0; i < wn; i++) wi[i] = (int32_t)W[i];
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t gr = 0; gr < g->group; gr++) {
            for (int64_t ci = 0; ci < Cg; ci++) {
                const double *xc = X + (n * g->C + gr * Cg + ci) * IS;
                for (int64_t kp = 0; kp < KS; kp++) {
                    const int64_t *ix = idx + kp * P;
                    int64_t r = (ci * KS + kp) * P;
                    if (i32)
                        for (int64_t p = 0; p < P; p++) ((int32_t *)col)[r + p] = ix[p] < 0 ? 0 : (int32_t)xc[ix[p]];
                    else
                        for (int64_t p = 0; p < P; p++) ((double *)col)[r + p] = ix[p] < 0 ? 0.0 : xc[ix[p]];
                }
            }
            for (int64_t m = 0; m < Mg; m++) {
                int64_t mo = gr * Mg + m;
                double *restrict orow = acc + (n * g->M + mo) * P;
                if (i32) {
                    const int32_t *wrow = wi + mo * KK;
                    memset(ai, 0, (size_t)P * sizeof *ai);
                    for (int64_t kk = 0; kk < KK; kk++) {
                        int32_t wv = wrow[kk];
                        if (wv == 0) continue;
                        const int32_t *restrict cr = (const int32_t *)col + kk * P;
                        int32_t *restrict ar = ai;
                        for (int64_t p = 0; p < P; p++) ar[p] += wv * cr[p];
                    }
                    for (int64_t p = 0; p < P; p++) orow[p] += ai[p];
                } else {
                    const double *wrow = W + mo * KK;
                    for (int64_t kk = 0; kk < KK; kk++) {
                        double wv = wrow[kk];
                        if (wv == 0.0) continue;
                        const double *restrict cr = (const double *)col + kk * P;
                        for (int64_t p = 0; p < P; p++) orow[p] += wv * cr[p];
                    }
                }
            }
        }
    kl_free(idx);
    kl_free(col);
    kl_free(wi);
    kl_free(ai);
    return KILN_OK;
}

/* X - x_zero_point (scalar) and W - w_zero_point (scalar or per output
 * channel) as doubles. */
static kiln_status q_conv_operands(kl_kctx *c, const kl_rt *x, const kl_rt *xz, const kl_rt *w, const kl_rt *wz,
                                   double **X, double **W) {
    char s1[128];
    if (xz && xz->count != 1)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "x_zero_point %s must be a scalar", kl_rt_describe(xz, s1, sizeof s1));
    if (wz && wz->count != 1 && wz->count != w->dims[0])
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "w_zero_point %s must be a scalar or hold one value per output channel",
                            kl_rt_describe(wz, s1, sizeof s1));
    *X = q_alloc(x->count, sizeof **X);
    *W = q_alloc(w->count, sizeof **W);
    if (!*X || !*W) {
        kl_free(*X);
        kl_free(*W);
        *X = *W = NULL;
        return KILN_ERR_NO_MEMORY;
    }
    double xzv = xz ? q_val(xz, 0) : 0.0;
    for (int64_t i = 0; i < x->count; i++) (*X)[i] = q_val(x, i) - xzv;
    int64_t per = w->dims[0] ? w->count / w->dims[0] : 0;
    for (int64_t i = 0; i < w->count; i++)
        (*W)[i] = q_val(w, i) - (wz ? q_val(wz, wz->count == 1 ? 0 : i / per) : 0.0);
    return KILN_OK;
}

/* Output shape [N, M, out...]. */
static void q_conv_out_dims(const q_conv *g, int64_t *dims) {
    dims[0] = g->N;
    dims[1] = g->M;
    for (int i = 0; i < g->ns; i++) dims[2 + i] = g->out[i];
}

kiln_status kl_quant_conv_integer(kl_kctx *c) {
    const kl_rt *x, *w;
    KL_TRY(kl_quant_input(c, 0, "x", &x));
    KL_TRY(kl_quant_input(c, 1, "w", &w));
    const kl_rt *xz = q_opt_in(c, 2), *wz = q_opt_in(c, 3);
    if (!kl_dtype_is_integer(x->dtype) || !kl_dtype_is_integer(w->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "x (%s) and w (%s) must be integer tensors", kiln_dtype_name(x->dtype),
                            kiln_dtype_name(w->dtype));
    q_conv g;
    KL_TRY(q_conv_geom(c, x, w, &g));
    int64_t dims[KILN_MAX_RANK];
    q_conv_out_dims(&g, dims);
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_INT32, x->rank, dims, &y));
    double *X, *W, *acc = NULL;
    KL_TRY(q_conv_operands(c, x, xz, w, wz, &X, &W));
    kiln_status s = KILN_OK;
    if (!(acc = q_alloc(y->count, sizeof *acc))) s = KILN_ERR_NO_MEMORY;
    if (s == KILN_OK) s = q_conv_run(&g, X, W, acc, x->count, w->count);
    if (s == KILN_OK) {
        int32_t *yd = y->data;
        for (int64_t i = 0; i < y->count; i++) {
            int64_t v = fabs(acc[i]) < 9.2e18 ? (int64_t)acc[i] : 0;
            yd[i] = (int32_t)(uint32_t)(uint64_t)v;
        }
    }
    kl_free(X);
    kl_free(W);
    kl_free(acc);
    return s;
}

kiln_status kl_quant_qlinear_conv(kl_kctx *c) {
    const kl_rt *x, *xs, *w, *ws, *ys;
    KL_TRY(kl_quant_input(c, 0, "x", &x));
    KL_TRY(kl_quant_input(c, 1, "x_scale", &xs));
    KL_TRY(kl_quant_input(c, 3, "w", &w));
    KL_TRY(kl_quant_input(c, 4, "w_scale", &ws));
    KL_TRY(kl_quant_input(c, 6, "y_scale", &ys));
    const kl_rt *xz = q_opt_in(c, 2), *wz = q_opt_in(c, 5), *yz = q_opt_in(c, 7), *bias = q_opt_in(c, 8);
    if (!q_operand_type_ok(x->dtype) || !q_operand_type_ok(w->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "x (%s) and w (%s) must be quantized types", kiln_dtype_name(x->dtype),
                            kiln_dtype_name(w->dtype));
    kiln_dtype yt = yz ? yz->dtype : x->dtype;
    int64_t lo = 0, hi = 0;
    bool is_int = kl_quant_int_range(yt, &lo, &hi);
    if (!q_operand_type_ok(yt)) return kl_kctx_fail(c, KILN_ERR_TYPE, "cannot produce %s", kiln_dtype_name(yt));
    char s1[128];
    if (xs->count != 1 || ys->count != 1 || (yz && yz->count != 1))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "x_scale, y_scale and y_zero_point must be scalars");
    q_conv g;
    KL_TRY(q_conv_geom(c, x, w, &g));
    if (ws->count != 1 && ws->count != g.M)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "w_scale %s must be a scalar or hold one value per output channel",
                            kl_rt_describe(ws, s1, sizeof s1));
    if (bias && bias->count != g.M)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "bias %s must hold %lld values", kl_rt_describe(bias, s1, sizeof s1),
                            (long long)g.M);
    int64_t dims[KILN_MAX_RANK];
    q_conv_out_dims(&g, dims);
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, yt, x->rank, dims, &y));
    double *X, *W, *acc = NULL;
    KL_TRY(q_conv_operands(c, x, xz, w, wz, &X, &W));
    kiln_status s = KILN_OK;
    if (!(acc = q_alloc(y->count, sizeof *acc))) s = KILN_ERR_NO_MEMORY;
    if (s == KILN_OK) s = q_conv_run(&g, X, W, acc, x->count, w->count);
    if (s == KILN_OK) {
        kiln_dtype st = xs->dtype;
        double xsv = kl_rt_get_f64(xs, 0), ysv = kl_rt_get_f64(ys, 0), yzv = yz ? q_val(yz, 0) : 0.0;
        int64_t P = 1;
        for (int i = 0; i < g.ns; i++) P *= g.out[i];
        for (int64_t n = 0, e = 0; n < g.N; n++)
            for (int64_t m = 0; m < g.M; m++) {
                double mult =
                    kl_quant_round_to(st, kl_quant_round_to(st, xsv * kl_rt_get_f64(ws, ws->count == 1 ? 0 : m)) / ysv);
                double bv = bias ? (double)kl_rt_get_i64(bias, m) : 0.0;
                for (int64_t p = 0; p < P; p++, e++) q_requant_store(y, e, (acc[e] + bv) * mult + yzv, lo, hi, is_int);
            }
    }
    kl_free(X);
    kl_free(W);
    kl_free(acc);
    return s;
}
