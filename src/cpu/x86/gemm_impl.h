/*
 * gemm_impl.h — the SGEMM micro-kernel written once over simd.h: MR=6 rows by
 * NP panels of 16 columns (AVX2: 6x16 in 12 ymm accumulators; AVX-512: up to
 * 6x64 in 24 zmm accumulators), the fused epilogue applied in the store, and
 * the FMA loop that measures the peak.  Included by gemm_avx2.c/gemm_avx512.c.
 */
#ifndef KL_CPU_X86_GEMM_IMPL_H
#define KL_CPU_X86_GEMM_IMPL_H

#include "cpu/x86/kernels.h"
#include "cpu/x86/simd.h"
#include "cpu/x86/vecmath_impl.h"

#define VPP (KL_SGEMM_NP / VL) /* vectors per 16-column panel */
#define KL_UK_CPF 24 /* k steps before the end at which the C tile is prefetched */
#ifndef KL_UK_PBD
#define KL_UK_PBD 8 /* B read in place (PB): rows prefetched this many k steps ahead */
#endif

/* Epilogue of one output vector: row i, columns col..col+nn (nn <= VL). */
KL_INL void ukernel_store(V v, float *c, size_t i, size_t col, size_t nn, size_t ldc, const kl_ukargs *u, V valpha,
                          V vbeta, V va, V vb, int cheap, int silu) {
    float *cp = c + i * ldc + col;
    int full = nn >= VL;
    v = v_mul(v, valpha);
    if (u->first) {
        if (u->beta != 0.0f) v = v_fma(vbeta, full ? v_load(cp) : v_load_n(cp, nn), v);
    } else {
        v = v_add(v, full ? v_load(cp) : v_load_n(cp, nn));
    }
    if (u->last) {
        if (u->col_bias) v = v_add(v, full ? v_load(u->col_bias + col) : v_load_n(u->col_bias + col, nn));
        if (u->row_bias) v = v_add(v, v_bcast(u->row_bias + i));
        if (u->z) {
            const float *zp = u->z + i * u->ldz + col;
            v = v_add(v, full ? v_load(zp) : v_load_n(zp, nn));
        }
        if (cheap)
            v = vm_act_cheap(v, u->act.kind, va, vb);
        else if (silu) /* in the register: no second pass over the tile */
            v = v_mul(v, vm_sigmoid(v));
    }
    if (full)
        v_store(cp, v);
    else
        v_store_n(cp, v, nn);
}

/* The 6 x (NV*VL) kernel; NV is a compile-time constant at each call site.
 * Accumulators are named scalars (not an array), so gcc and clang both keep
 * them in registers; the ones past NV are dead code. */
#define KL_UK_ROW(i)                                                                       \
    do {                                                                                   \
        V a_ = v_bcast(a + i);                                                             \
        c##i##0 = v_fma(a_, b0, c##i##0);                                                  \
        if (NV > 1) c##i##1 = v_fma(a_, b1, c##i##1);                                      \
        if (NV > 2) c##i##2 = v_fma(a_, b2, c##i##2);                                      \
        if (NV > 3) c##i##3 = v_fma(a_, b3, c##i##3);                                      \
    } while (0)
#define KL_UK_OUT(i)                                                                       \
    do {                                                                                   \
        out[i][0] = c##i##0;                                                               \
        if (NV > 1) out[i][1] = c##i##1;                                                   \
        if (NV > 2) out[i][2] = c##i##2;                                                   \
        if (NV > 3) out[i][3] = c##i##3;                                                   \
    } while (0)

#define KL_UK_ST(i, NN)                                                                                    \
    do {                                                                                                   \
        ukernel_store(c##i##0, c, i, 0, NN(0), ldc, u, valpha, vbeta, va, vb, cheap, silu);                      \
        if (NV > 1 && n > VL) ukernel_store(c##i##1, c, i, VL, NN(1), ldc, u, valpha, vbeta, va, vb, cheap, silu); \
        if (NV > 2) ukernel_store(c##i##2, c, i, 2 * VL, NN(2), ldc, u, valpha, vbeta, va, vb, cheap, silu);     \
        if (NV > 3) ukernel_store(c##i##3, c, i, 3 * VL, NN(3), ldc, u, valpha, vbeta, va, vb, cheap, silu);     \
    } while (0)
/* Activation ACT (0 none, 1 ReLU, 2 Clip, 3 SiLU; a constant) of v. */
KL_INL V uk_act(V v, const int ACT, V va, V vb) {
    if (ACT == 1) return v_max(v_zero(), v);
    if (ACT == 2) return v_min(vb, v_max(va, v));
    if (ACT == 3) return v_mul(v, vm_sigmoid(v));
    return v;
}
#define KL_UK_FAST1(i, j, ACT)                                                                             \
    do {                                                                                                   \
        V v_ = c##i##j;                                                                                    \
        if (accc) v_ = v_add(v_, v_load(c + i * ldc + j * VL));                                            \
        if (cb) v_ = v_add(v_, v_load(cb + j * VL));                                                       \
        if (rb) v_ = v_add(v_, rbv_);                                                                      \
        if (z) v_ = v_add(v_, v_load(z + i * ldz + j * VL));                                               \
        v_store(c + i * ldc + j * VL, uk_act(v_, ACT, va, vb));                                            \
    } while (0)
#define KL_UK_FAST(i, ACT)                                                                                 \
    do {                                                                                                   \
        V rbv_ = rb ? v_bcast(rb + i) : v_zero();                                                          \
        KL_UK_FAST1(i, 0, ACT);                                                                            \
        if (NV > 1) KL_UK_FAST1(i, 1, ACT);                                                                \
        if (NV > 2) KL_UK_FAST1(i, 2, ACT);                                                                \
        if (NV > 3) KL_UK_FAST1(i, 3, ACT);                                                                \
    } while (0)
#define KL_UK_FAST_ALL(ACT)                                                                                \
    do {                                                                                                   \
        KL_UK_FAST(0, ACT);                                                                                \
        if (m > 1) KL_UK_FAST(1, ACT);                                                                     \
        if (m > 2) KL_UK_FAST(2, ACT);                                                                     \
        if (m > 3) KL_UK_FAST(3, ACT);                                                                     \
        if (m > 4) KL_UK_FAST(4, ACT);                                                                     \
        if (m > 5) KL_UK_FAST(5, ACT);                                                                     \
    } while (0)
#define KL_UK_FULL(j) ((size_t)VL)      /* every vector whole: the tail tests fold away */
#define KL_UK_PART(j) (n - (size_t)(j) * VL) /* the last vector may be partial */

/* MB: B is read in place (not zero-padded panels), so lanes past column n
 * are loaded masked (never touching memory past the row's n columns). */
KL_INL void ukernel_np(size_t kc, const float *a, const float *b, size_t bs, size_t bk, float *c, size_t ldc, size_t m,
                       size_t n, const kl_ukargs *u, const int NV, const int MB, const int PB) {
    /* NV vectors per row (<= 4; AVX2: 1 or 2 of one panel); with MB only
     * the last one is partial (the dispatch below picks NV so that
     * n > (NV-1)*VL), its lane mask made once */
    const VT tmask = v_tailmask_t(MB ? n - (size_t)(NV - 1) * VL : VL);
    V c00 = v_zero(), c01 = v_zero(), c02 = v_zero(), c03 = v_zero();
    V c10 = v_zero(), c11 = v_zero(), c12 = v_zero(), c13 = v_zero();
    V c20 = v_zero(), c21 = v_zero(), c22 = v_zero(), c23 = v_zero();
    V c30 = v_zero(), c31 = v_zero(), c32 = v_zero(), c33 = v_zero();
    V c40 = v_zero(), c41 = v_zero(), c42 = v_zero(), c43 = v_zero();
    V c50 = v_zero(), c51 = v_zero(), c52 = v_zero(), c53 = v_zero();
    /* vector j of a k step: panel j/VPP, lane offset (j%VPP)*VL */
    const float *q0 = b, *q1 = VPP == 2 ? b + VL : b + bs, *q2 = b + 2 * bs, *q3 = b + 3 * bs;
    const float *pf = u->pf;
    const size_t pfn = u->pf_n, pfps = u->pf_ps;
#define KL_UK_STEP(PF)                                                                     \
    do {                                                                                   \
        if (PF) {                                                                          \
            _mm_prefetch((const char *)pf, _MM_HINT_T1);                                   \
            if (pfn > 1) _mm_prefetch((const char *)(pf + pfps), _MM_HINT_T1);            \
            if (pfn > 2) _mm_prefetch((const char *)(pf + 2 * pfps), _MM_HINT_T1);        \
            if (pfn > 3) _mm_prefetch((const char *)(pf + 3 * pfps), _MM_HINT_T1);        \
            pf += KL_SGEMM_NP;                                                             \
        }                                                                                  \
        if (PB && VL == 16 && k + KL_UK_PBD < kc) { /* a line per vector */              \
            _mm_prefetch((const char *)(q0 + KL_UK_PBD * bk), _MM_HINT_T0);                \
            if (NV > 1) _mm_prefetch((const char *)(q1 + KL_UK_PBD * bk), _MM_HINT_T0);    \
            if (NV > 2) _mm_prefetch((const char *)(q2 + KL_UK_PBD * bk), _MM_HINT_T0);    \
            if (NV > 3) _mm_prefetch((const char *)(q3 + KL_UK_PBD * bk), _MM_HINT_T0);    \
        } else if (PB && k + KL_UK_PBD < kc) { /* rows of this product only */           \
            _mm_prefetch((const char *)(q0 + KL_UK_PBD * bk), _MM_HINT_T0);                \
            _mm_prefetch((const char *)(q0 + KL_UK_PBD * bk + NV * VL - 1), _MM_HINT_T0);  \
        }                                                                                  \
        V b0 = MB && NV == 1 ? v_load_t(q0, tmask) : v_load(q0);                           \
        V b1 = NV > 1 ? (MB && NV == 2 ? v_load_t(q1, tmask) : v_load(q1)) : v_zero();     \
        V b2 = NV > 2 ? (MB && NV == 3 ? v_load_t(q2, tmask) : v_load(q2)) : v_zero();     \
        V b3 = NV > 3 ? (MB ? v_load_t(q3, tmask) : v_load(q3)) : v_zero();                \
        KL_UK_ROW(0);                                                                      \
        KL_UK_ROW(1);                                                                      \
        KL_UK_ROW(2);                                                                      \
        KL_UK_ROW(3);                                                                      \
        KL_UK_ROW(4);                                                                      \
        KL_UK_ROW(5);                                                                      \
        a += KL_SGEMM_MR;                                                                  \
        q0 += bk;                                                                          \
        q1 += bk;                                                                          \
        q2 += bk;                                                                          \
        q3 += bk;                                                                          \
    } while (0)
    /* the next call's B is fetched a line per k step when the caller names
     * it (u->pf); the C tile is fetched for writing during the last
     * KL_UK_CPF steps, so the epilogue finds it in L1 */
    size_t kpre = kc > KL_UK_CPF ? kc - KL_UK_CPF : 0, k = 0;
    /* steps that fetch a line of pf: all of them, or the first pf_lines */
    size_t kpf = !pf ? 0 : u->pf_lines && u->pf_lines < kc ? u->pf_lines : kc;
    for (; k < kpf && k < kpre; k++) KL_UK_STEP(1);
    for (; k + 2 <= kpre; k += 2) {
        KL_UK_STEP(0);
        KL_UK_STEP(0);
    }
    for (; k < kpre; k++) KL_UK_STEP(0);
    /* (AVX2: only with KL_UK_CPF steps of lead; issued at the start of a
     * short product they cost more than they saved: 16->96 112x112 1x1
     * 0.688 -> 0.646 ms without, 144->24 56x56 0.237 -> 0.264 without) */
    if (VL == 16 || kc > KL_UK_CPF)
    for (size_t i = 0; i < m; i++)
        for (size_t l = 0; l < n; l += 16) _mm_prefetch((const char *)(c + i * ldc + l), _MM_HINT_ET0);
    for (; k < kpf; k++) KL_UK_STEP(1);
    for (; k < kc; k++) KL_UK_STEP(0);
#undef KL_UK_STEP
    V va = v_set1(u->act.alpha), vb = v_set1(u->act.beta);
    if (n >= (size_t)NV * VL && u->alpha == 1.0f && (!u->first || u->beta == 0.0f)) {
        /* a tile of whole vectors with alpha 1 (every 1x1 convolution,
         * im2col, im2row; their K blocks, first storing, then adding to C):
         * column or row bias, residual and activation
         * with the fields in locals and the activation chosen once, not
         * tested (and reloaded, C's stores may alias *u) at each store */
        const float *rb = u->last ? u->row_bias : NULL, *z = u->last ? u->z : NULL;
        const float *cb = u->last ? u->col_bias : NULL;
        size_t ldz = u->ldz;
        int accc = !u->first; /* a later K block: add to C */
        switch (u->last ? u->act.kind : KL_ACT_NONE) {
        case KL_ACT_NONE: KL_UK_FAST_ALL(0); return;
        case KL_ACT_RELU: KL_UK_FAST_ALL(1); return;
        case KL_ACT_CLIP: KL_UK_FAST_ALL(2); return;
        case KL_ACT_SILU: KL_UK_FAST_ALL(3); return;
        default: break;
        }
    }
    V valpha = v_set1(u->alpha), vbeta = v_set1(u->beta);
    int cheap = vm_act_is_cheap(u->act.kind), silu = u->act.kind == KL_ACT_SILU;
    if (m == KL_SGEMM_MR) {
        /* six rows: straight from the accumulators, no spill, no loop (n >
         * (NV-1)*VL on AVX-512 by the choice of NP; AVX2's second vector is
         * skipped when n <= 8) */
        if (n >= (size_t)NV * VL) {
            KL_UK_ST(0, KL_UK_FULL);
            KL_UK_ST(1, KL_UK_FULL);
            KL_UK_ST(2, KL_UK_FULL);
            KL_UK_ST(3, KL_UK_FULL);
            KL_UK_ST(4, KL_UK_FULL);
            KL_UK_ST(5, KL_UK_FULL);
        } else {
            KL_UK_ST(0, KL_UK_PART);
            KL_UK_ST(1, KL_UK_PART);
            KL_UK_ST(2, KL_UK_PART);
            KL_UK_ST(3, KL_UK_PART);
            KL_UK_ST(4, KL_UK_PART);
            KL_UK_ST(5, KL_UK_PART);
        }
        if (u->last && !cheap && !silu)
            for (size_t i = 0; i < m; i++) KL_SIMD_FN(vec_act)(u->act, c + i * ldc, n);
        return;
    }
    V out[KL_SGEMM_MR][4];
    KL_UK_OUT(0);
    KL_UK_OUT(1);
    KL_UK_OUT(2);
    KL_UK_OUT(3);
    KL_UK_OUT(4);
    KL_UK_OUT(5);
    for (size_t i = 0; i < m; i++) {
        for (int j = 0; j < NV; j++) {
            size_t col = (size_t)j * VL;
            if (col >= n) break;
            ukernel_store(out[i][j], c, i, col, n - col, ldc, u, valpha, vbeta, va, vb, cheap, silu);
        }
    }
    if (u->last && !cheap && !silu)
        for (size_t i = 0; i < m; i++) KL_SIMD_FN(vec_act)(u->act, c + i * ldc, n);
}

#if VL == 16
/* The kernel with the fewest vectors per row that covers n columns (MB: the
 * last one partial; PB: B's rows prefetched ahead). */
#define KL_UK_NV(MB, PB)                                                                  \
    do {                                                                                  \
        if (n > 48)                                                                       \
            ukernel_np(kc, a, b, bstride, bk, c, ldc, m, n, u, 4, MB, PB);                \
        else if (n > 32)                                                                  \
            ukernel_np(kc, a, b, bstride, bk, c, ldc, m, n, u, 3, MB, PB);                \
        else if (n > 16)                                                                  \
            ukernel_np(kc, a, b, bstride, bk, c, ldc, m, n, u, 2, MB, PB);                \
        else                                                                              \
            ukernel_np(kc, a, b, bstride, bk, c, ldc, m, n, u, 1, MB, PB);                \
    } while (0)

void KL_SIMD_FN(sgemm_kernel)(size_t kc, const float *a, const float *b, size_t bstride, size_t bk, float *c,
                              size_t ldc, size_t m, size_t n, const kl_ukargs *u) {
    /* B read in place (bk a row stride, not 16: a 1x1 convolution's input
     * planes, H*W floats between k steps) is loaded masked past column n,
     * and has its rows prefetched KL_UK_PBD steps ahead in products of 32
     * steps or more: Ice Lake, 1 thread, cold, three alternating rounds:
     * ResNet-50's 56x56 1x1 layers 67-70 -> 82-84 and 82-83 -> 93-96
     * GFLOP/s, 7x7-28x28 layers even to +10%; MobileNet's 16->96 112x112
     * (16 steps) lost 5% with it */
    const int pb = bk != KL_SGEMM_NP && kc >= 4 * KL_UK_PBD;
    if (bk != KL_SGEMM_NP && n % VL && pb)
        KL_UK_NV(1, 1);
    else if (bk != KL_SGEMM_NP && n % VL)
        KL_UK_NV(1, 0);
    else if (pb)
        KL_UK_NV(0, 1);
    else
        KL_UK_NV(0, 0);
}
#undef KL_UK_NV
#else
void KL_SIMD_FN(sgemm_kernel)(size_t kc, const float *a, const float *b, size_t bstride, size_t bk, float *c,
                              size_t ldc, size_t m, size_t n, const kl_ukargs *u) {
    /* a panel's tail of at most 8 columns runs one vector per row (6
     * FMAs per k step, not 12); B read in place (bk a row stride) is
     * prefetched KL_UK_PBD rows ahead, loaded masked past column n */
    if (bk != KL_SGEMM_NP) {
        if (n <= VL)
            ukernel_np(kc, a, b, bstride, bk, c, ldc, m, n, u, 1, n < VL, 1);
        else if (n < KL_SGEMM_NP)
            ukernel_np(kc, a, b, bstride, bk, c, ldc, m, n, u, 2, 1, 1);
        else
            ukernel_np(kc, a, b, bstride, bk, c, ldc, m, n, u, 2, 0, 1);
    } else if (n <= VL)
        ukernel_np(kc, a, b, bstride, bk, c, ldc, m, n, u, 1, 0, 0);
    else
        ukernel_np(kc, a, b, bstride, bk, c, ldc, m, n, u, 2, 0, 0);
}
#endif

void KL_SIMD_FN(vec_act)(kl_act act, float *x, size_t n) { vm_act_array(act, x, n); }

/* 12 independent FMA chains per iteration (enough for 2 pipes x 4-5 cycles
 * latency); returns the flops performed. */
double KL_SIMD_FN(fma_loop)(long iters) {
    V a0 = v_set1(0.0f), a1 = v_set1(1.0f), a2 = v_set1(2.0f), a3 = v_set1(3.0f), a4 = v_set1(4.0f),
      a5 = v_set1(5.0f), a6 = v_set1(6.0f), a7 = v_set1(7.0f), a8 = v_set1(8.0f), a9 = v_set1(9.0f),
      a10 = v_set1(10.0f), a11 = v_set1(11.0f);
    V m = v_set1(0.999999f), k = v_set1(1e-7f);
    for (long i = 0; i < iters; i++) {
        a0 = v_fma(a0, m, k); a1 = v_fma(a1, m, k); a2 = v_fma(a2, m, k); a3 = v_fma(a3, m, k);
        a4 = v_fma(a4, m, k); a5 = v_fma(a5, m, k); a6 = v_fma(a6, m, k); a7 = v_fma(a7, m, k);
        a8 = v_fma(a8, m, k); a9 = v_fma(a9, m, k); a10 = v_fma(a10, m, k); a11 = v_fma(a11, m, k);
        __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5));
    }
    V s = v_add(v_add(v_add(a0, a1), v_add(a2, a3)), v_add(v_add(a4, a5), v_add(a6, a7)));
    s = v_add(s, v_add(v_add(a8, a9), v_add(a10, a11)));
    float out[VL];
    v_store(out, s);
    volatile float sink = out[0];
    (void)sink;
    return 2.0 * 12.0 * VL * (double)iters;
}

#endif
