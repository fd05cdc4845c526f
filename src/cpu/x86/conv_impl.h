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

/* Full unrolling of the tap loops: gcc needs the pragma; clang unrolls these
 * small constant loops itself, and with the pragma its UBSan build of this
 * file took minutes. */
#if defined(__clang__)
#define KL_DW_UNROLL
#else
#define KL_DW_UNROLL _Pragma("GCC unroll 5")
#endif

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

/* Input vector for output lanes starting at p (stride SW, n lanes). */
KL_INL V dw_ld(const float *p, size_t n, const size_t SW) {
    if (SW == 1) return n == VL ? v_load(p) : v_load_n(p, n);
    if (SW == 2) return dw_load_even_n(p, n);
    float tmp[VL];
    for (size_t l = 0; l < VL; l++) tmp[l] = l < n ? p[l * SW] : 0.0f;
    return v_load(tmp);
}

/* Bias, residual, cheap activation and store of n <= VL outputs at y[ow]
 * (dw_plane applies the other activations to the finished plane). */
KL_INL void dw_store(const kl_dw_args *a, V acc, float *y, const float *z, size_t ow, size_t n, V va, V vb) {
    if (n == VL) {
        if (z) acc = v_add(acc, v_load(z + ow));
        v_store(y + ow, vm_act_cheap(acc, a->act.kind, va, vb));
    } else {
        if (z) acc = v_add(acc, v_load_n(z + ow, n));
        v_store_n(y + ow, vm_act_cheap(acc, a->act.kind, va, vb), n);
    }
}

/* The whole plane; KH, KW and SW are constants in the fast instances.  Four
 * output vectors per step keep four independent FMA chains in flight. */
KL_INL void dw_plane(const kl_dw_args *a, const size_t KH, const size_t KW, const size_t SW) {
    V wv[25];
    for (size_t i = 0; i < KH * KW; i++) wv[i] = v_bcast(a->w + i);
    V va = v_set1(a->act.alpha), vb = v_set1(a->act.beta), vbias = v_set1(a->bias);
    size_t OW = a->OW, DW = a->DW, rs = a->DH * a->WP;
    size_t ow_main = OW / (4 * VL) * (4 * VL);
    for (size_t oh = 0; oh < a->OH; oh++) {
        float *y = a->y + oh * OW;
        const float *z = a->z ? a->z + oh * OW : NULL;
        const float *x0 = a->x + oh * a->SH * a->WP;
        for (size_t ow = 0; ow < ow_main; ow += 4 * VL) {
            V c0 = vbias, c1 = vbias, c2 = vbias, c3 = vbias;
KL_DW_UNROLL
            for (size_t kh = 0; kh < KH; kh++) {
                const float *row = x0 + kh * rs + ow * SW;
KL_DW_UNROLL
                for (size_t kw = 0; kw < KW; kw++) {
                    const float *p = row + kw * DW;
                    V w = wv[kh * KW + kw];
                    c0 = v_fma(w, dw_ld(p, VL, SW), c0);
                    c1 = v_fma(w, dw_ld(p + VL * SW, VL, SW), c1);
                    c2 = v_fma(w, dw_ld(p + 2 * VL * SW, VL, SW), c2);
                    c3 = v_fma(w, dw_ld(p + 3 * VL * SW, VL, SW), c3);
                }
            }
            dw_store(a, c0, y, z, ow, VL, va, vb);
            dw_store(a, c1, y, z, ow + VL, VL, va, vb);
            dw_store(a, c2, y, z, ow + 2 * VL, VL, va, vb);
            dw_store(a, c3, y, z, ow + 3 * VL, VL, va, vb);
        }
    }
    /* the remaining columns, four output rows at a time (independent chains) */
    for (size_t ow = ow_main; ow < OW; ow += VL) {
        size_t n = OW - ow < VL ? OW - ow : VL;
        size_t oh = 0;
        for (; oh + 4 <= a->OH; oh += 4) {
            V c0 = vbias, c1 = vbias, c2 = vbias, c3 = vbias;
            const float *x0 = a->x + oh * a->SH * a->WP + ow * SW;
            size_t step = a->SH * a->WP;
KL_DW_UNROLL
            for (size_t kh = 0; kh < KH; kh++) {
                const float *row = x0 + kh * rs;
KL_DW_UNROLL
                for (size_t kw = 0; kw < KW; kw++) {
                    const float *p = row + kw * DW;
                    V w = wv[kh * KW + kw];
                    c0 = v_fma(w, dw_ld(p, n, SW), c0);
                    c1 = v_fma(w, dw_ld(p + step, n, SW), c1);
                    c2 = v_fma(w, dw_ld(p + 2 * step, n, SW), c2);
                    c3 = v_fma(w, dw_ld(p + 3 * step, n, SW), c3);
                }
            }
            const float *z = a->z ? a->z + oh * OW : NULL;
            dw_store(a, c0, a->y + oh * OW, z, ow, n, va, vb);
            dw_store(a, c1, a->y + (oh + 1) * OW, z ? z + OW : NULL, ow, n, va, vb);
            dw_store(a, c2, a->y + (oh + 2) * OW, z ? z + 2 * OW : NULL, ow, n, va, vb);
            dw_store(a, c3, a->y + (oh + 3) * OW, z ? z + 3 * OW : NULL, ow, n, va, vb);
        }
        for (; oh < a->OH; oh++) {
            V c0 = vbias;
            const float *x0 = a->x + oh * a->SH * a->WP + ow * SW;
KL_DW_UNROLL
            for (size_t kh = 0; kh < KH; kh++)
KL_DW_UNROLL
                for (size_t kw = 0; kw < KW; kw++) c0 = v_fma(wv[kh * KW + kw], dw_ld(x0 + kh * rs + kw * DW, n, SW), c0);
            dw_store(a, c0, a->y + oh * OW, a->z ? a->z + oh * OW : NULL, ow, n, va, vb);
        }
    }
    if (!vm_act_is_cheap(a->act.kind)) KL_SIMD_FN(vec_act)(a->act, a->y, a->OH * OW);
}

void KL_SIMD_FN(dwconv)(const kl_dw_args *a) {
    if (a->KH == 3 && a->KW == 3 && a->SW == 1)
        dw_plane(a, 3, 3, 1);
    else if (a->KH == 3 && a->KW == 3 && a->SW == 2)
        dw_plane(a, 3, 3, 2);
    else if (a->KH == 5 && a->KW == 5 && a->SW == 1)
        dw_plane(a, 5, 5, 1);
    else if (a->KH == 5 && a->KW == 5 && a->SW == 2)
        dw_plane(a, 5, 5, 2);
    else
        kl_x86_generic_dwconv(a); /* other kernel sizes and strides: portable loop */
}

/* ---- Winograd F(4x4, 3x3) transforms, 16 tiles per call --------------------- */

#define WINO_BT(d0, d1, d2, d3, d4, d5, r)                                          \
    do {                                                                           \
        V s12_ = v_add(d1, d2), d12_ = v_sub(d1, d2), d42_ = v_sub(d4, d2);        \
        V d13_ = v_sub(d1, d3);                                                    \
        r[0] = v_add(v_fma(v_set1(4.0f), d0, v_mul(v_set1(-5.0f), d2)), d4);       \
        r[1] = v_fma(v_set1(-4.0f), s12_, v_add(d3, d4));                          \
        r[2] = v_fma(v_set1(4.0f), d12_, v_sub(d4, d3));                           \
        r[3] = v_fma(v_set1(-2.0f), d13_, d42_);                                   \
        r[4] = v_fma(v_set1(2.0f), d13_, d42_);                                    \
        r[5] = v_add(v_fma(v_set1(4.0f), d1, v_mul(v_set1(-5.0f), d3)), d5);       \
    } while (0)

#define WINO_AT(m0, m1, m2, m3, m4, m5, o)                                         \
    do {                                                                           \
        V a12_ = v_add(m1, m2), s12_ = v_sub(m1, m2);                              \
        V a34_ = v_add(m3, m4), s34_ = v_sub(m3, m4);                              \
        o[0] = v_add(v_add(m0, a12_), a34_);                                       \
        o[1] = v_fma(v_set1(2.0f), s34_, s12_);                                    \
        o[2] = v_fma(v_set1(4.0f), a34_, a12_);                                    \
        o[3] = v_add(v_fma(v_set1(8.0f), s34_, s12_), m5);                         \
    } while (0)

void KL_SIMD_FN(wino_in)(const kl_wino_in *a) {
    float buf[36][16] __attribute__((aligned(64)));
    for (size_t l = 0; l < 16; l++) {
        if (l >= a->nt) {
            for (int k = 0; k < 36; k++) buf[k][l] = 0.0f;
            continue;
        }
        size_t tg = a->t0 + l, t = tg % a->T, th = t / a->TW, tw = t % a->TW;
        const float *x = a->x + (tg / a->T) * a->xstride;
        ptrdiff_t r0 = (ptrdiff_t)(th * 4) - (ptrdiff_t)a->PT, c0 = (ptrdiff_t)(tw * 4) - (ptrdiff_t)a->PL;
        if (r0 >= 0 && c0 >= 0 && r0 + 6 <= (ptrdiff_t)a->H && c0 + 6 <= (ptrdiff_t)a->W) {
            const float *row = x + r0 * (ptrdiff_t)a->W + c0;
            for (int i = 0; i < 6; i++, row += a->W)
                for (int j = 0; j < 6; j++) buf[i * 6 + j][l] = row[j];
        } else {
            for (int i = 0; i < 6; i++) {
                ptrdiff_t r = r0 + i;
                for (int j = 0; j < 6; j++) {
                    ptrdiff_t c = c0 + j;
                    buf[i * 6 + j][l] = (r >= 0 && c >= 0 && r < (ptrdiff_t)a->H && c < (ptrdiff_t)a->W)
                                            ? x[r * (ptrdiff_t)a->W + c]
                                            : 0.0f;
                }
            }
        }
    }
    for (size_t h = 0; h < 16; h += VL) {
        V t[6][6], r[6];
        for (int j = 0; j < 6; j++) {
            WINO_BT(v_load(&buf[j][h]), v_load(&buf[6 + j][h]), v_load(&buf[12 + j][h]), v_load(&buf[18 + j][h]),
                    v_load(&buf[24 + j][h]), v_load(&buf[30 + j][h]), r);
            for (int i = 0; i < 6; i++) t[i][j] = r[i];
        }
        for (int i = 0; i < 6; i++) {
            WINO_BT(t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5], r);
            for (int j = 0; j < 6; j++) v_store(a->dst + (size_t)(i * 6 + j) * a->xs + h, r[j]);
        }
    }
}

void KL_SIMD_FN(wino_out)(const kl_wino_out *a) {
    float out[16][16] __attribute__((aligned(64)));
    V vbias = v_set1(a->bias);
    for (size_t h = 0; h < 16; h += VL) {
        V s[4][6], o[4];
        for (int j = 0; j < 6; j++) {
            const float *m = a->m + h + (size_t)j * a->xs;
            WINO_AT(v_load(m), v_load(m + 6 * a->xs), v_load(m + 12 * a->xs), v_load(m + 18 * a->xs),
                    v_load(m + 24 * a->xs), v_load(m + 30 * a->xs), o);
            for (int i = 0; i < 4; i++) s[i][j] = o[i];
        }
        for (int i = 0; i < 4; i++) {
            WINO_AT(s[i][0], s[i][1], s[i][2], s[i][3], s[i][4], s[i][5], o);
            for (int j = 0; j < 4; j++) v_store(&out[i * 4 + j][h], v_add(o[j], vbias));
        }
    }
    if (a->z) {
        for (size_t l = 0; l < a->nt; l++) {
            size_t tg = a->t0 + l, t = tg % a->T, th = t / a->TW, tw = t % a->TW;
            const float *z = a->z + (tg / a->T) * a->ystride;
            for (size_t i = 0; i < 4; i++)
                for (size_t j = 0; j < 4; j++) {
                    size_t oh = th * 4 + i, ow = tw * 4 + j;
                    if (oh < a->OH && ow < a->OW) out[i * 4 + j][l] += z[oh * a->OW + ow];
                }
        }
    }
    if (a->act.kind != KL_ACT_NONE) KL_SIMD_FN(vec_act)(a->act, &out[0][0], 16 * 16);
    for (size_t l = 0; l < a->nt; l++) {
        size_t tg = a->t0 + l, t = tg % a->T, th = t / a->TW, tw = t % a->TW;
        float *yp = a->y + (tg / a->T) * a->ystride;
        size_t oh0 = th * 4, ow0 = tw * 4;
        if (oh0 + 4 <= a->OH && ow0 + 4 <= a->OW) {
            float *y = yp + oh0 * a->OW + ow0;
            for (int i = 0; i < 4; i++, y += a->OW)
                for (int j = 0; j < 4; j++) y[j] = out[i * 4 + j][l];
        } else {
            for (size_t i = 0; i < 4 && oh0 + i < a->OH; i++)
                for (size_t j = 0; j < 4 && ow0 + j < a->OW; j++)
                    yp[(oh0 + i) * a->OW + ow0 + j] = out[i * 4 + j][l];
        }
    }
}

#endif
