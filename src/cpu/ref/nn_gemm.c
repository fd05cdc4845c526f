/*
 * CPU reference kernels: matrix products.  kl_nn_sgemm is the float32
 * workhorse of Conv, ConvTranspose, Gemm and MatMul: B is packed into
 * 16-column strips and A into 4-row panels per (NC x KC) block, and a 4x16
 * micro-kernel with fixed trip counts (which the compiler vectorizes at
 * -O2) accumulates in float.  Double and integer products are plain
 * blocked i-k-j loops.
 */
#include <string.h>

#include "cpu/ref/nn.h"

#define SG_MR 4
#define SG_NR 16
#define SG_KC 256
#define SG_NC 512

/* acc[4][16] = sum over k < kc of ap[k][0..4) x bp[k][0..16). */
static void sg_kernel(int64_t kc, const float *restrict ap, const float *restrict bp, float acc[SG_MR][SG_NR]) {
    float c0[SG_NR] = {0}, c1[SG_NR] = {0}, c2[SG_NR] = {0}, c3[SG_NR] = {0};
    for (int64_t k = 0; k < kc; k++) {
        const float *restrict b = bp + k * SG_NR;
        float a0 = ap[k * SG_MR], a1 = ap[k * SG_MR + 1], a2 = ap[k * SG_MR + 2], a3 = ap[k * SG_MR + 3];
        for (int j = 0; j < SG_NR; j++) {
            c0[j] += a0 * b[j];
            c1[j] += a1 * b[j];
            c2[j] += a2 * b[j];
            c3[j] += a3 * b[j];
        }
    }
    memcpy(acc[0], c0, sizeof c0);
    memcpy(acc[1], c1, sizeof c1);
    memcpy(acc[2], c2, sizeof c2);
    memcpy(acc[3], c3, sizeof c3);
}

kiln_status kl_nn_sgemm(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t rsa, int64_t csa,
                        const float *B, int64_t rsb, int64_t csb, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0 || K <= 0) return KILN_OK;
    int64_t nc_max = KL_MIN(N, SG_NC), strips_max = (nc_max + SG_NR - 1) / SG_NR;
    float *bp = kl_nn_alloc(SG_KC * strips_max * SG_NR, sizeof *bp);
    float *ap = kl_nn_alloc(SG_KC * SG_MR, sizeof *ap);
    if (!bp || !ap) {
        kl_nn_free(bp);
        kl_nn_free(ap);
        return KILN_ERR_NO_MEMORY;
    }
    float acc[SG_MR][SG_NR];
    for (int64_t j0 = 0; j0 < N; j0 += SG_NC) {
        int64_t nc = KL_MIN(N - j0, SG_NC), strips = (nc + SG_NR - 1) / SG_NR;
        for (int64_t k0 = 0; k0 < K; k0 += SG_KC) {
            int64_t kc = KL_MIN(K - k0, SG_KC);
            for (int64_t s = 0; s < strips; s++) {
                float *dst = bp + s * kc * SG_NR;
                int64_t jb = j0 + s * SG_NR, w = KL_MIN(SG_NR, N - jb);
                for (int64_t k = 0; k < kc; k++) {
                    const float *src = B + (k0 + k) * rsb + jb * csb;
                    float *d = dst + k * SG_NR;
                    int64_t j = 0;
                    if (csb == 1)
                        for (; j < w; j++) d[j] = src[j];
                    else
                        for (; j < w; j++) d[j] = src[j * csb];
                    for (; j < SG_NR; j++) d[j] = 0.0f;
                }
            }
            for (int64_t i0 = 0; i0 < M; i0 += SG_MR) {
                int64_t mr = KL_MIN(SG_MR, M - i0);
                for (int64_t k = 0; k < kc; k++) {
                    int r = 0;
                    for (; r < mr; r++) ap[k * SG_MR + r] = A[(i0 + r) * rsa + (k0 + k) * csa];
                    for (; r < SG_MR; r++) ap[k * SG_MR + r] = 0.0f;
                }
                for (int64_t s = 0; s < strips; s++) {
                    int64_t jb = j0 + s * SG_NR, w = KL_MIN(SG_NR, N - jb);
                    sg_kernel(kc, ap, bp + s * kc * SG_NR, acc);
                    for (int64_t r = 0; r < mr; r++) {
                        float *crow = C + (i0 + r) * ldc + jb;
                        if (alpha == 1.0f)
                            for (int64_t j = 0; j < w; j++) crow[j] += acc[r][j];
                        else
                            for (int64_t j = 0; j < w; j++) crow[j] += alpha * acc[r][j];
                    }
                }
            }
        }
    }
    kl_nn_free(bp);
    kl_nn_free(ap);
    return KILN_OK;
}

kiln_status kl_nn_dgemm(int64_t M, int64_t N, int64_t K, double alpha, const double *A, int64_t rsa, int64_t csa,
                        const double *B, int64_t rsb, int64_t csb, double *C, int64_t ldc) {
    if (M <= 0 || N <= 0 || K <= 0) return KILN_OK;
    double *bp = kl_nn_alloc(KL_MIN(K, SG_KC) * KL_MIN(N, SG_NC), sizeof *bp);
    if (!bp) return KILN_ERR_NO_MEMORY;
    for (int64_t j0 = 0; j0 < N; j0 += SG_NC) {
        int64_t nc = KL_MIN(N - j0, SG_NC);
        for (int64_t k0 = 0; k0 < K; k0 += SG_KC) {
            int64_t kc = KL_MIN(K - k0, SG_KC);
            for (int64_t k = 0; k < kc; k++)
                for (int64_t j = 0; j < nc; j++) bp[k * nc + j] = B[(k0 + k) * rsb + (j0 + j) * csb];
            for (int64_t i = 0; i < M; i++) {
                double *restrict crow = C + i * ldc + j0;
                for (int64_t k = 0; k < kc; k++) {
                    double a = alpha * A[i * rsa + (k0 + k) * csa];
                    const double *restrict b = bp + k * nc;
                    for (int64_t j = 0; j < nc; j++) crow[j] += a * b[j];
                }
            }
        }
    }
    kl_nn_free(bp);
    return KILN_OK;
}

void kl_nn_igemm(int64_t M, int64_t N, int64_t K, const int64_t *A, int64_t rsa, int64_t csa, const int64_t *B,
                 int64_t rsb, int64_t csb, int64_t *C, int64_t ldc) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t k = 0; k < K; k++) {
            uint64_t a = (uint64_t)A[i * rsa + k * csa];
            for (int64_t j = 0; j < N; j++) {
                uint64_t *cij = (uint64_t *)&C[i * ldc + j];
                *cij += a * (uint64_t)B[k * rsb + j * csb];
            }
        }
}

/* ---- Gemm ---------------------------------------------------------------------------------- */

/* Strides that broadcast C (rank <= 2) unidirectionally to [M, N]. */
static kiln_status gemm_c_strides(kl_kctx *c, const kl_rt *ct, int64_t M, int64_t N, int64_t *sm, int64_t *sn) {
    int64_t d0 = ct->rank >= 2 ? ct->dims[ct->rank - 2] : 1, d1 = ct->rank >= 1 ? ct->dims[ct->rank - 1] : 1;
    char b[96];
    if (ct->rank > 2 || (d0 != M && d0 != 1) || (d1 != N && d1 != 1))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "input C %s does not broadcast to [%lld,%lld]",
                            kl_rt_describe(ct, b, sizeof b), (long long)M, (long long)N);
    *sm = d0 == 1 ? 0 : d1;
    *sn = d1 == 1 ? 0 : 1;
    return KILN_OK;
}

kiln_status kl_nn_gemm(kl_kctx *c) {
    const kl_rt *a, *b, *ct;
    KL_TRY(kl_nn_input(c, 0, "A", true, &a));
    KL_TRY(kl_nn_input(c, 1, "B", true, &b));
    KL_TRY(kl_nn_input(c, 2, "C", c->node->opset < 11, &ct));
    KL_TRY(kl_nn_same_type(c, 1, "B"));
    KL_TRY(kl_nn_same_type(c, 2, "C"));
    if (a->rank != 2 || b->rank != 2)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "A and B must have rank 2, got %d and %d", a->rank, b->rank);
    bool ta = kl_node_attr_int(c->node, "transA", 0) != 0, tb = kl_node_attr_int(c->node, "transB", 0) != 0;
    double alpha = kl_node_attr_float(c->node, "alpha", 1.0f), beta = kl_node_attr_float(c->node, "beta", 1.0f);
    int64_t M = a->dims[ta ? 1 : 0], K = a->dims[ta ? 0 : 1], K2 = b->dims[tb ? 1 : 0], N = b->dims[tb ? 0 : 1];
    if (K != K2)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "inner dimensions do not match: %lld vs %lld (transA=%d, transB=%d)",
                            (long long)K, (long long)K2, ta, tb);
    int64_t rsa = ta ? 1 : a->dims[1], csa = ta ? a->dims[1] : 1;
    int64_t rsb = tb ? 1 : b->dims[1], csb = tb ? b->dims[1] : 1;
    int64_t sm = 0, sn = 0;
    if (ct && beta != 0.0) KL_TRY(gemm_c_strides(c, ct, M, N, &sm, &sn));
    else ct = NULL;
    kl_rt *y;
    int64_t dims[2] = {M, N};
    KL_TRY(kl_kctx_output(c, 0, a->dtype, 2, dims, &y));
    kiln_status s = KILN_OK;
    if (kl_dtype_is_integer(a->dtype)) {
        int64_t *av = NULL, *bv = NULL, *yv = kl_nn_alloc(M * N, sizeof *yv);
        s = yv ? KILN_OK : KILN_ERR_NO_MEMORY;
        if (!s) s = kl_nn_as_i64(a, &av);
        if (!s) s = kl_nn_as_i64(b, &bv);
        if (!s) {
            memset(yv, 0, (size_t)(M * N) * sizeof *yv);
            kl_nn_igemm(M, N, K, av, rsa, csa, bv, rsb, csb, yv, N);
            bool exact = alpha == 1.0 && (beta == 1.0 || !ct);
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    int64_t o = i * N + j;
                    if (exact) {
                        uint64_t v = (uint64_t)yv[o];
                        if (ct) v += (uint64_t)kl_rt_get_i64(ct, i * sm + j * sn);
                        kl_rt_set_i64(y, o, (int64_t)v);
                    } else {
                        double v = alpha * (double)yv[o];
                        if (ct) v += beta * (double)kl_rt_get_i64(ct, i * sm + j * sn);
                        kl_rt_set_f64(y, o, v);
                    }
                }
        }
        kl_nn_free(av);
        kl_nn_free(bv);
        kl_nn_free(yv);
        return s;
    }
    if (a->dtype == KILN_DTYPE_DOUBLE) {
        double *yv = y->data;
        const double *cv = ct ? ct->data : NULL;
        for (int64_t i = 0; cv && i < M; i++)
            for (int64_t j = 0; j < N; j++) yv[i * N + j] = beta * cv[i * sm + j * sn];
        return kl_nn_dgemm(M, N, K, alpha, a->data, rsa, csa, b->data, rsb, csb, yv, N);
    }
    const float *av, *bv, *cv = NULL;
    float *ao, *bo = NULL, *co = NULL, *yv, *yo = NULL;
    KL_TRY(kl_nn_as_f32(a, &av, &ao));
    if ((s = kl_nn_as_f32(b, &bv, &bo)) || (ct && (s = kl_nn_as_f32(ct, &cv, &co))) ||
        (s = kl_nn_out_f32(y, &yv, &yo)))
        goto done;
    for (int64_t i = 0; cv && i < M; i++)
        for (int64_t j = 0; j < N; j++) yv[i * N + j] = (float)beta * cv[i * sm + j * sn];
    s = kl_nn_sgemm(M, N, K, (float)alpha, av, rsa, csa, bv, rsb, csb, yv, N);
    kl_nn_finish_f32(y, yo);
    yo = NULL;
done:
    kl_nn_free(ao);
    kl_nn_free(bo);
    kl_nn_free(co);
    kl_nn_free(yo);
    return s;
}

/* ---- MatMul -------------------------------------------------------------------------------- */

typedef struct mm_plan {
    int64_t M, N, K, batch;
    int brank;
    int64_t bdims[KILN_MAX_RANK], sa[KILN_MAX_RANK], sb[KILN_MAX_RANK]; /* batch strides in matrices */
    int64_t fold;                                                       /* A batches folded into M */
} mm_plan;

/* Shapes of numpy matmul: 1-D operands promoted, batch dims broadcast. */
static kiln_status mm_shapes(kl_kctx *c, const kl_rt *a, const kl_rt *b, mm_plan *p, int *yr, int64_t *yd) {
    char s1[96], s2[96];
    if (a->rank < 1 || b->rank < 1)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "operands must have rank >= 1, got %d and %d", a->rank, b->rank);
    int64_t M = a->rank >= 2 ? a->dims[a->rank - 2] : 1, K = a->dims[a->rank - 1];
    int64_t K2 = b->rank >= 2 ? b->dims[b->rank - 2] : b->dims[0], N = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    if (K != K2)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "inner dimensions do not match: A is %s, B is %s",
                            kl_rt_describe(a, s1, sizeof s1), kl_rt_describe(b, s2, sizeof s2));
    int ra = KL_MAX(a->rank - 2, 0), rb = KL_MAX(b->rank - 2, 0), r = KL_MAX(ra, rb);
    int64_t mat_a = M * K, mat_b = K * N, st_a = mat_a, st_b = mat_b;
    memset(p, 0, sizeof *p);
    p->M = M;
    p->N = N;
    p->K = K;
    p->brank = r;
    p->batch = 1;
    for (int i = r - 1; i >= 0; i--) {
        int ia = i - (r - ra), ib = i - (r - rb);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "batch dimensions do not broadcast: A is %s, B is %s",
                                kl_rt_describe(a, s1, sizeof s1), kl_rt_describe(b, s2, sizeof s2));
        p->bdims[i] = da == 1 ? db : da;
        p->sa[i] = da == 1 ? 0 : st_a;
        p->sb[i] = db == 1 ? 0 : st_b;
        st_a *= da;
        st_b *= db;
        p->batch *= p->bdims[i];
    }
    *yr = 0;
    for (int i = 0; i < r; i++) yd[(*yr)++] = p->bdims[i];
    if (a->rank >= 2) yd[(*yr)++] = M;
    if (b->rank >= 2) yd[(*yr)++] = N;
    /* B shared by every batch and A's batches contiguous: one tall product. */
    bool b_shared = true, a_dense = true;
    for (int i = 0; i < r; i++) {
        if (p->sb[i] != 0) b_shared = false;
        if (p->bdims[i] != 1 && p->sa[i] == 0) a_dense = false;
    }
    p->fold = b_shared && a_dense ? p->batch : 1;
    return KILN_OK;
}

/* Offsets of batch `bi` in A and B. */
static void mm_offsets(const mm_plan *p, int64_t bi, int64_t *oa, int64_t *ob) {
    *oa = *ob = 0;
    for (int i = p->brank - 1; i >= 0; i--) {
        int64_t x = bi % p->bdims[i];
        bi /= p->bdims[i];
        *oa += x * p->sa[i];
        *ob += x * p->sb[i];
    }
}

kiln_status kl_nn_matmul(kl_kctx *c) {
    const kl_rt *a, *b;
    KL_TRY(kl_nn_input(c, 0, "A", true, &a));
    KL_TRY(kl_nn_input(c, 1, "B", true, &b));
    KL_TRY(kl_nn_same_type(c, 1, "B"));
    mm_plan p;
    int yr = 0;
    int64_t yd[KILN_MAX_RANK + 2];
    KL_TRY(mm_shapes(c, a, b, &p, &yr, yd));
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, a->dtype, yr, yd, &y));
    if (y->count == 0) return KILN_OK;
    int64_t M = p.M, N = p.N, K = p.K, nb = p.batch, mm = M;
    if (p.fold > 1) {
        mm = M * p.fold;
        nb = 1;
    }
    kiln_status s = KILN_OK;
    if (kl_dtype_is_integer(a->dtype)) {
        int64_t *av = NULL, *bv = NULL, *yv = kl_calloc((size_t)y->count, sizeof *yv);
        if (!yv || kl_nn_as_i64(a, &av) || kl_nn_as_i64(b, &bv)) {
            s = KILN_ERR_NO_MEMORY;
        } else {
            for (int64_t bi = 0; bi < nb; bi++) {
                int64_t oa, ob;
                mm_offsets(&p, bi, &oa, &ob);
                kl_nn_igemm(mm, N, K, av + oa, K, 1, bv + ob, N, 1, yv + bi * M * N, N);
            }
            for (int64_t i = 0; i < y->count; i++) kl_rt_set_i64(y, i, yv[i]);
        }
        kl_nn_free(av);
        kl_nn_free(bv);
        kl_nn_free(yv);
        return s;
    }
    if (a->dtype == KILN_DTYPE_DOUBLE) {
        const double *av = a->data, *bv = b->data;
        for (int64_t bi = 0; bi < nb && !s; bi++) {
            int64_t oa, ob;
            mm_offsets(&p, bi, &oa, &ob);
            s = kl_nn_dgemm(mm, N, K, 1.0, av + oa, K, 1, bv + ob, N, 1, (double *)y->data + bi * M * N, N);
        }
        return s;
    }
    const float *av, *bv;
    float *ao, *bo = NULL, *yv, *yo = NULL;
    KL_TRY(kl_nn_as_f32(a, &av, &ao));
    if ((s = kl_nn_as_f32(b, &bv, &bo)) || (s = kl_nn_out_f32(y, &yv, &yo))) goto done;
    for (int64_t bi = 0; bi < nb && !s; bi++) {
        int64_t oa, ob;
        mm_offsets(&p, bi, &oa, &ob);
        s = kl_nn_sgemm(mm, N, K, 1.0f, av + oa, K, 1, bv + ob, N, 1, yv + bi * M * N, N);
    }
    kl_nn_finish_f32(y, yo);
    yo = NULL;
done:
    kl_nn_free(ao);
    kl_nn_free(bo);
    kl_nn_free(yo);
    return s;
}
