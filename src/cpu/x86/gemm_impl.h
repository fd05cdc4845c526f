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

/* Epilogue of one output vector: row i, columns col..col+nn (nn <= VL). */
KL_INL void ukernel_store(V v, float *c, size_t i, size_t col, size_t nn, size_t ldc, const kl_ukargs *u, V valpha,
                          V vbeta, V va, V vb, int cheap) {
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
        if (cheap) v = vm_act(v, u->act.kind, va, vb);
    }
    if (full)
        v_store(cp, v);
    else
        v_store_n(cp, v, nn);
}

/* The 6 x (NP*16) kernel; NP is a compile-time constant at each call site. */
KL_INL void ukernel_np(size_t kc, const float *a, const float *b, size_t bs, float *c, size_t ldc, size_t m, size_t n,
                       const kl_ukargs *u, const int NP) {
    V acc[KL_SGEMM_MR][4 * VPP];
#pragma GCC unroll 6
    for (int i = 0; i < KL_SGEMM_MR; i++)
#pragma GCC unroll 8
        for (int j = 0; j < NP * VPP; j++) acc[i][j] = v_zero();
    const float *b1 = b + bs, *b2 = b + 2 * bs, *b3 = b + 3 * bs;
    for (size_t k = 0; k < kc; k++) {
        V bv[4 * VPP];
#pragma GCC unroll 8
        for (int q = 0; q < VPP; q++) {
            bv[q] = v_load(b + q * VL);
            if (NP > 1) bv[VPP + q] = v_load(b1 + q * VL);
            if (NP > 2) bv[2 * VPP + q] = v_load(b2 + q * VL);
            if (NP > 3) bv[3 * VPP + q] = v_load(b3 + q * VL);
        }
#pragma GCC unroll 6
        for (int i = 0; i < KL_SGEMM_MR; i++) {
            V ai = v_bcast(a + i);
#pragma GCC unroll 8
            for (int j = 0; j < NP * VPP; j++) acc[i][j] = v_fma(ai, bv[j], acc[i][j]);
        }
        a += KL_SGEMM_MR;
        b += KL_SGEMM_NP;
        b1 += KL_SGEMM_NP;
        b2 += KL_SGEMM_NP;
        b3 += KL_SGEMM_NP;
    }
    /* copy out with constant indices, so acc[][] itself stays in registers */
    V out[KL_SGEMM_MR][4 * VPP];
#pragma GCC unroll 6
    for (int i = 0; i < KL_SGEMM_MR; i++)
#pragma GCC unroll 8
        for (int j = 0; j < NP * VPP; j++) out[i][j] = acc[i][j];
    V valpha = v_set1(u->alpha), vbeta = v_set1(u->beta);
    V va = v_set1(u->act.alpha), vb = v_set1(u->act.beta);
    int cheap = vm_act_is_cheap(u->act.kind);
    for (size_t i = 0; i < m; i++) {
#pragma GCC unroll 8
        for (int j = 0; j < NP * VPP; j++) {
            size_t col = (size_t)j * VL;
            if (col >= n) break;
            ukernel_store(out[i][j], c, i, col, n - col, ldc, u, valpha, vbeta, va, vb, cheap);
        }
    }
    if (u->last && !cheap)
        for (size_t i = 0; i < m; i++) vm_act_array(u->act, c + i * ldc, n);
}

#if VL == 16
void KL_SIMD_FN(sgemm_kernel)(size_t kc, const float *a, const float *b, size_t bstride, float *c, size_t ldc,
                              size_t m, size_t n, const kl_ukargs *u) {
    if (n > 48)
        ukernel_np(kc, a, b, bstride, c, ldc, m, n, u, 4);
    else if (n > 32)
        ukernel_np(kc, a, b, bstride, c, ldc, m, n, u, 3);
    else if (n > 16)
        ukernel_np(kc, a, b, bstride, c, ldc, m, n, u, 2);
    else
        ukernel_np(kc, a, b, bstride, c, ldc, m, n, u, 1);
}
#else
void KL_SIMD_FN(sgemm_kernel)(size_t kc, const float *a, const float *b, size_t bstride, float *c, size_t ldc,
                              size_t m, size_t n, const kl_ukargs *u) {
    ukernel_np(kc, a, b, bstride, c, ldc, m, n, u, 1);
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
