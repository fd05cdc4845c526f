/*
 * conv_impl.h — the depthwise convolution kernel written once over simd.h:
 * for each output row, the interior columns (every tap inside the input) are
 * computed VL at a time with all KH*KW taps accumulated in a register
 * (stride 1: plain loads; stride 2: two loads deinterleaved); the border
 * columns and other strides go through a scalar loop.  Bias, residual and the
 * activation are applied before the store.  Included by conv_avx2.c/_avx512.c.
 */
#ifndef KL_CPU_X86_CONV_IMPL_H
#define KL_CPU_X86_CONV_IMPL_H

#include "core/core.h"
#include "cpu/x86/kernels.h"
#include "cpu/x86/simd.h"
#include "cpu/x86/vecmath_impl.h"

/* Even lanes of the 2*n-1 floats at p (n <= VL lanes; no read past them). */
KL_INL V dw_load_even_n(const float *p, size_t n) {
    size_t m = 2 * n - 1;
#if VL == 16
    V lo = v_load_n(p, m), hi = m > 16 ? v_load_n(p + 16, m - 16) : v_zero();
    const __m512i idx = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    return _mm512_permutex2var_ps(lo, idx, hi);
#else
    V lo = v_load_n(p, m), hi = m > 8 ? v_load_n(p + 8, m - 8) : v_zero();
    V s = _mm256_shuffle_ps(lo, hi, 0x88); /* a0 a2 b0 b2 a4 a6 b4 b6 */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), 0xD8));
#endif
}

/* One vector of outputs [ow, ow+n) of row oh; KH/KW constant where inlined. */
KL_INL V dw_vec(const kl_dw_args *a, size_t oh, size_t ow, size_t n, const size_t KH, const size_t KW, const V *wv) {
    V acc = v_set1(a->bias);
    for (size_t kh = 0; kh < KH; kh++) {
        const float *row = a->x + (oh * a->SH + kh * a->DH) * a->WP + ow * a->SW;
        for (size_t kw = 0; kw < KW; kw++) {
            const float *p = row + kw * a->DW;
            V xv;
            if (a->SW == 1)
                xv = n == VL ? v_load(p) : v_load_n(p, n);
            else if (a->SW == 2)
                xv = dw_load_even_n(p, n);
            else {
                float tmp[VL];
                for (size_t l = 0; l < VL; l++) tmp[l] = l < n ? p[l * a->SW] : 0.0f;
                xv = v_load(tmp);
            }
            acc = v_fma(wv[kh * KW + kw], xv, acc);
        }
    }
    return acc;
}

/* The whole plane; KH/KW are constants in the 3x3 and 5x5 instances. */
KL_INL void dw_plane(const kl_dw_args *a, const size_t KH, const size_t KW) {
    V wv[25];
    for (size_t i = 0; i < KH * KW; i++) wv[i] = v_bcast(a->w + i);
    V va = v_set1(a->act.alpha), vb = v_set1(a->act.beta);
    size_t OW = a->OW;
    for (size_t oh = 0; oh < a->OH; oh++) {
        float *y = a->y + oh * OW;
        const float *z = a->z ? a->z + oh * OW : NULL;
        size_t ow = 0;
        for (; ow + VL <= OW; ow += VL) {
            V acc = dw_vec(a, oh, ow, VL, KH, KW, wv);
            if (z) acc = v_add(acc, v_load(z + ow));
            v_store(y + ow, vm_act(acc, a->act.kind, va, vb));
        }
        if (ow < OW) {
            size_t n = OW - ow;
            V acc = dw_vec(a, oh, ow, n, KH, KW, wv);
            if (z) acc = v_add(acc, v_load_n(z + ow, n));
            v_store_n(y + ow, vm_act(acc, a->act.kind, va, vb), n);
        }
    }
}

void KL_SIMD_FN(dwconv)(const kl_dw_args *a) {
    if (a->KH == 3 && a->KW == 3)
        dw_plane(a, 3, 3);
    else if (a->KH == 5 && a->KW == 5)
        dw_plane(a, 5, 5);
    else if (a->KH * a->KW <= 25)
        dw_plane(a, a->KH, a->KW);
    else
        kl_x86_generic_dwconv(a);
}

#endif
