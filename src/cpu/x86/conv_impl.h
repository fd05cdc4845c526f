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

/* Even lanes of the 2*VL floats at p (the last one is not read). */
KL_INL V dw_load_even(const float *p) {
#if VL == 16
    V lo = v_load(p), hi = v_load_n(p + 16, 15);
    const __m512i idx = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    return _mm512_permutex2var_ps(lo, idx, hi);
#else
    V lo = v_load(p), hi = v_load_n(p + 8, 7);
    V s = _mm256_shuffle_ps(lo, hi, 0x88); /* a0 a2 b0 b2 a4 a6 b4 b6 */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), 0xD8));
#endif
}

/* One output pixel without vector code (borders, strides > 2); no activation. */
KL_INL float dw_pixel(const kl_dw_args *a, size_t oh, size_t ow) {
    float s = a->bias;
    for (size_t kh = 0; kh < a->KH; kh++) {
        ptrdiff_t ih = (ptrdiff_t)(oh * a->SH + kh * a->DH) - (ptrdiff_t)a->PT;
        if (ih < 0 || ih >= (ptrdiff_t)a->H) continue;
        for (size_t kw = 0; kw < a->KW; kw++) {
            ptrdiff_t iw = (ptrdiff_t)(ow * a->SW + kw * a->DW) - (ptrdiff_t)a->PL;
            if (iw < 0 || iw >= (ptrdiff_t)a->W) continue;
            s += a->x[ih * (ptrdiff_t)a->W + iw] * a->w[kh * a->KW + kw];
        }
    }
    if (a->z) s += a->z[oh * a->OW + ow];
    return s;
}

void KL_SIMD_FN(dwconv)(const kl_dw_args *a) {
    size_t OW = a->OW, SW = a->SW;
    /* interior columns: ow*SW - PL >= 0 and ow*SW - PL + (KW-1)*DW <= W-1 */
    size_t lo = (a->PL + SW - 1) / SW;
    size_t span = (a->KW - 1) * a->DW;
    size_t hi = 0;
    if (a->W + a->PL >= span + 1) hi = KL_MIN(OW, (a->W - 1 + a->PL - span) / SW + 1);
    if (hi < lo || (SW != 1 && SW != 2)) lo = hi = 0;
    V vbias = v_set1(a->bias), va = v_set1(a->act.alpha), vb = v_set1(a->act.beta);
    for (size_t oh = 0; oh < a->OH; oh++) {
        float *y = a->y + oh * OW;
        const float *z = a->z ? a->z + oh * OW : NULL;
        size_t kh0 = 0, kh1 = a->KH;
        /* taps with an input row inside the image */
        while (kh0 < kh1 && (ptrdiff_t)(oh * a->SH + kh0 * a->DH) - (ptrdiff_t)a->PT < 0) kh0++;
        while (kh1 > kh0 && (ptrdiff_t)(oh * a->SH + (kh1 - 1) * a->DH) - (ptrdiff_t)a->PT >= (ptrdiff_t)a->H) kh1--;
        size_t ow = 0;
        for (; ow < lo; ow++) y[ow] = dw_pixel(a, oh, ow);
        for (; ow + VL <= hi; ow += VL) {
            V acc = vbias;
            for (size_t kh = kh0; kh < kh1; kh++) {
                const float *row = a->x + (oh * a->SH + kh * a->DH - a->PT) * a->W + ow * SW - a->PL;
                const float *w = a->w + kh * a->KW;
                if (SW == 1) {
                    for (size_t kw = 0; kw < a->KW; kw++) acc = v_fma(v_bcast(w + kw), v_load(row + kw * a->DW), acc);
                } else {
                    for (size_t kw = 0; kw < a->KW; kw++)
                        acc = v_fma(v_bcast(w + kw), dw_load_even(row + kw * a->DW), acc);
                }
            }
            if (z) acc = v_add(acc, v_load(z + ow));
            v_store(y + ow, vm_act(acc, a->act.kind, va, vb));
        }
        size_t vec_end = ow;
        for (; ow < OW; ow++) y[ow] = dw_pixel(a, oh, ow);
        /* activation of the scalar columns */
        if (a->act.kind != KL_ACT_NONE) {
            vm_act_array(a->act, y, lo < vec_end ? lo : vec_end);
            vm_act_array(a->act, y + vec_end, OW - vec_end);
        }
    }
}

#endif
