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
#if defined(__clang__)
#define KL_DW_UNROLL_ALL
#else
#define KL_DW_UNROLL_ALL _Pragma("GCC unroll 16")
#endif
/* Output rows per block of the row-blocked kernel (accumulators). */
#define KL_DW_R 4
#define KL_DW_RMAX 8

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

/* ---- direct row-blocked form: the unpadded plane, dilation 1, strides 1 or 2 ---- */

/* Loads of lanes l < n of row[c + l*S] (S 1 or 2) that read zero where the
 * column c + l*S is outside [0, W): the masks of the border vectors, made
 * once per vector and tap column (the masked-off lanes are not read). */
typedef struct dw_edge {
#if VL == 16
    __mmask16 lo, hi;
#else
    __m256i lo, hi;
    int any_hi;
#endif
} dw_edge;

KL_INL dw_edge dw_edge_make(ptrdiff_t c, size_t n, const size_t S, ptrdiff_t W) {
    ptrdiff_t m = (ptrdiff_t)((n - 1) * S + 1); /* source elements */
    ptrdiff_t lo = c < 0 ? -c : 0, hi = W - c < m ? W - c : m;
    if (hi < lo) hi = lo;
    dw_edge e;
#if VL == 16
    uint64_t bits = hi > lo ? (((1ull << (hi - lo)) - 1ull) << lo) : 0;
    e.lo = (__mmask16)(bits & 0xFFFFu);
    e.hi = (__mmask16)((bits >> 16) & 0xFFFFu);
#else
    const __m256i iv = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    e.lo = _mm256_and_si256(_mm256_cmpgt_epi32(iv, _mm256_set1_epi32((int)lo - 1)),
                            _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), iv));
    e.hi = _mm256_and_si256(_mm256_cmpgt_epi32(iv, _mm256_set1_epi32((int)lo - 9)),
                            _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi - 8), iv));
    e.any_hi = hi > 8;
#endif
    return e;
}

/* p = row + c (may point before the row: only unmasked lanes are read). */
KL_INL V dw_ld_edge(const float *p, dw_edge e, const size_t S) {
#if VL == 16
    V l = _mm512_maskz_loadu_ps(e.lo, p);
    if (S == 1) return l;
    V h = _mm512_maskz_loadu_ps(e.hi, p + 16);
    const __m512i idx = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    return _mm512_permutex2var_ps(l, idx, h);
#else
    V l = _mm256_maskload_ps(p, e.lo);
    if (S == 1) return l;
    V h = e.any_hi ? _mm256_maskload_ps(p + 8, e.hi) : v_zero();
    V sh = _mm256_shuffle_ps(l, h, 0x88);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(sh), 0xD8));
#endif
}

#if VL == 16
/* Stride 2 at AVX-512: the KW (3 or 5) tap vectors x[c0 + 2l + kw] of one
 * input row (row = x + c0), from two loads deinterleaved into the even and
 * odd columns and the one to three columns past them shifted in (valignd),
 * instead of two loads and a permute per tap (96ch 112x112 3x3/2: 0.225 ->
 * 0.204 ms with interior vectors only).  k0..k2: the columns of
 * [0, 16), [16, 32), [32, 35) inside the input (masked-off ones read as 0
 * and are not read). */
KL_INL void dw_row_s2(const float *row, const size_t KW, V *t, __mmask16 k0, __mmask16 k1, __mmask16 k2) {
    const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i io = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    V lo = _mm512_maskz_loadu_ps(k0, row), hi = _mm512_maskz_loadu_ps(k1, row + 16);
    V ev = _mm512_permutex2var_ps(lo, ie, hi), od = _mm512_permutex2var_ps(lo, io, hi);
    __m512i nx = _mm512_castps_si512(_mm512_maskz_loadu_ps(k2, row + 32)); /* columns 32.. */
    t[0] = ev;
    t[1] = od;
    if (KW == 3) {
        t[2] = _mm512_castsi512_ps(_mm512_alignr_epi32(nx, _mm512_castps_si512(ev), 1));
    } else { /* 5: columns 32 and 34 after the even ones, 33 after the odd */
        __m512i ne = _mm512_permutexvar_epi32(_mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0), nx);
        __m512i no = _mm512_permutexvar_epi32(_mm512_set1_epi32(1), nx);
        t[2] = _mm512_castsi512_ps(_mm512_alignr_epi32(ne, _mm512_castps_si512(ev), 1));
        t[3] = _mm512_castsi512_ps(_mm512_alignr_epi32(no, _mm512_castps_si512(od), 1));
        t[4] = _mm512_castsi512_ps(_mm512_alignr_epi32(ne, _mm512_castps_si512(ev), 2));
    }
}
#endif

/* R output rows from oh0, one vector of n output columns from ow: every
 * input row under the block is loaded once per tap column (KW vectors) and
 * feeds each of the block's output rows whose window covers it (a 3x3
 * stride-1 block of 4 rows: 18 loads for 36 FMAs; the column form: 36).
 * Rows outside the input are skipped; EDGE: columns outside it read as 0. */
KL_INL void dw_rows_vec(const kl_dw_args *a, const V *wv, size_t oh0, size_t ow, const size_t n, const size_t R,
                        const size_t KH, const size_t KW, const size_t S, const int EDGE, const int SILU, V vbias, V va,
                        V vb) {
    ptrdiff_t W = (ptrdiff_t)a->W, H = (ptrdiff_t)a->H;
    ptrdiff_t ih0 = (ptrdiff_t)(oh0 * S) - (ptrdiff_t)a->PT, c0 = (ptrdiff_t)(ow * S) - (ptrdiff_t)a->PL;
    size_t OW = a->OW;
    V c[KL_DW_RMAX];
    dw_edge e[5];
    if (EDGE && (VL != 16 || S != 2))
        for (size_t kw = 0; kw < KW; kw++) e[kw] = dw_edge_make(c0 + (ptrdiff_t)kw, n, S, W);
#if VL == 16
    /* stride 2 (dw_row_s2): columns c0 + [0, 2n + KW - 1) that lie inside the row */
    __mmask16 k0 = 0xFFFF, k1 = 0xFFFF, k2 = KW == 3 ? 0x1 : 0x7;
    if (S == 2 && EDGE) {
        ptrdiff_t lo = c0 < 0 ? -c0 : 0, hi = W - c0, m = (ptrdiff_t)(2 * n + KW - 2);
        if (hi > m) hi = m;
        if (hi < lo) hi = lo;
        uint64_t bits = (hi >= 64 ? ~0ull : ((1ull << hi) - 1ull)) & ~((1ull << lo) - 1ull);
        k0 = (__mmask16)(bits & 0xFFFFu), k1 = (__mmask16)((bits >> 16) & 0xFFFFu);
        k2 = (__mmask16)(k2 & ((bits >> 32) & 0xFFFFu));
    }
#endif
    for (size_t j = 0; j < R; j++) c[j] = vbias;
KL_DW_UNROLL_ALL
    for (size_t r = 0; r < (R - 1) * S + KH; r++) {
        ptrdiff_t ih = ih0 + (ptrdiff_t)r;
        if (ih < 0 || ih >= H) continue;
        const float *row = a->x + ih * W + c0;
        V t[5];
#if VL == 16
        if (S == 2) {
            dw_row_s2(row, KW, t, k0, k1, k2);
        } else
#endif
        {
KL_DW_UNROLL_ALL
            for (size_t kw = 0; kw < KW; kw++) t[kw] = EDGE ? dw_ld_edge(row + kw, e[kw], S) : dw_ld(row + kw, n, S);
        }
KL_DW_UNROLL_ALL
        for (size_t j = 0; j < R; j++) {
            if (r < j * S || r - j * S >= KH) continue;
            size_t kh = r - j * S;
KL_DW_UNROLL_ALL
            for (size_t kw = 0; kw < KW; kw++) c[j] = v_fma(wv[kh * KW + kw], t[kw], c[j]);
        }
    }
    for (size_t j = 0; j < R; j++) {
        if (!SILU) {
            dw_store(a, c[j], a->y + (oh0 + j) * OW, a->z ? a->z + (oh0 + j) * OW : NULL, ow, n, va, vb);
            continue;
        }
        /* SiLU in the store, while the vector is in a register (no second pass over the plane) */
        float *y = a->y + (oh0 + j) * OW + ow;
        const float *z = a->z ? a->z + (oh0 + j) * OW + ow : NULL;
        V v = c[j];
        if (z) v = v_add(v, n == VL ? v_load(z) : v_load_n(z, n));
        v = v_mul(v, vm_sigmoid(v));
        if (n == VL)
            v_store(y, v);
        else
            v_store_n(y, v, n);
    }
}

/* Output rows [oh0, oh0 + R), every column: vectors whose taps all lie
 * inside the row take plain loads, the others (borders, tail) masked ones. */
KL_INL void dw_rows(const kl_dw_args *a, const V *wv, size_t oh0, const size_t R, const size_t KH, const size_t KW,
                    const size_t S, const int SILU, V vbias, V va, V vb) {
    size_t OW = a->OW, ow = 0;
    ptrdiff_t W = (ptrdiff_t)a->W, PL = (ptrdiff_t)a->PL;
    for (; ow + VL <= OW; ow += VL) {
        ptrdiff_t c0 = (ptrdiff_t)(ow * S) - PL;
        if (c0 >= 0 && c0 + (ptrdiff_t)((VL - 1) * S + KW) <= W)
            dw_rows_vec(a, wv, oh0, ow, VL, R, KH, KW, S, 0, SILU, vbias, va, vb);
        else
            dw_rows_vec(a, wv, oh0, ow, VL, R, KH, KW, S, 1, SILU, vbias, va, vb);
    }
    if (ow < OW) dw_rows_vec(a, wv, oh0, ow, OW - ow, R, KH, KW, S, 1, SILU, vbias, va, vb);
}

/* SILU: the activation is SiLU, applied in the stores; otherwise cheap
 * activations are, and the others go over the finished plane. */
KL_INL void dw_plane_rows(const kl_dw_args *a, const size_t KH, const size_t KW, const size_t S, const int SILU) {
    V wv[25];
    for (size_t i = 0; i < KH * KW; i++) wv[i] = v_bcast(a->w + i);
    V va = v_set1(a->act.alpha), vb = v_set1(a->act.beta), vbias = v_set1(a->bias);
    size_t oh = 0, OH = a->OH;
    for (; oh + KL_DW_R <= OH; oh += KL_DW_R) dw_rows(a, wv, oh, KL_DW_R, KH, KW, S, SILU, vbias, va, vb);
    if (oh + 2 <= OH) {
        dw_rows(a, wv, oh, 2, KH, KW, S, SILU, vbias, va, vb);
        oh += 2;
    }
    if (oh < OH) dw_rows(a, wv, oh, 1, KH, KW, S, SILU, vbias, va, vb);
    if (!SILU && !vm_act_is_cheap(a->act.kind)) KL_SIMD_FN(vec_act)(a->act, a->y, a->OH * a->OW);
}

#if VL == 8
/* ---- AVX2 column form: the unpadded plane, dilation 1, strides 1 or 2 ---------
 * One vector of output columns is run down every output row, so each input
 * row under it is loaded once (KW vectors; stride 2: two or three pairs of
 * loads split into even and odd columns) and feeds the L = (K-1)/S + 1
 * output rows whose window covers it, their accumulators live in registers
 * (16 ymm: 3x3 stride 1 holds 9 weights, 3 accumulators and 3 taps).  The
 * row form (dw_rows_vec) loaded each input row once per block of 4 output
 * rows and went through the stack at AVX2.  Stride 2 keeps the lanes in
 * shuffle_ps order (outputs 0 1 4 5 2 3 6 7) through the FMAs and puts them
 * back once per output vector at the store. */

/* Lanes l of a load at row + c + off whose column c + off + l is in [0, W). */
KL_INL __m256i dwc_mask(ptrdiff_t c, ptrdiff_t off, ptrdiff_t W) {
    const __m256i iv = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    ptrdiff_t lo = -(c + off), hi = W - (c + off);
    if (lo < -1) lo = -1;
    if (hi > 8) hi = 8;
    if (hi < 0) hi = 0;
    return _mm256_and_si256(_mm256_cmpgt_epi32(iv, _mm256_set1_epi32((int)lo - 1)),
                            _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), iv));
}

/* Source offsets of the stride-2 loads: even/odd pairs (0, 8), (2, 10), (4, 12). */
static const ptrdiff_t dwc_s2_off[6] = {0, 8, 2, 10, 4, 12};

/* The K tap vectors of one input row (row = x + ih*W + c0). */
KL_INL void dwc_row(const float *row, const size_t K, const size_t S, const int EDGE, const __m256i *mk, V *t) {
    if (S == 1) {
KL_DW_UNROLL_ALL
        for (size_t kw = 0; kw < K; kw++) t[kw] = EDGE ? _mm256_maskload_ps(row + kw, mk[kw]) : v_load(row + kw);
        return;
    }
    V l[6];
    size_t nl = K == 3 ? 4 : 6;
KL_DW_UNROLL_ALL
    for (size_t i = 0; i < nl; i++)
        l[i] = EDGE ? _mm256_maskload_ps(row + dwc_s2_off[i], mk[i]) : v_load(row + dwc_s2_off[i]);
    t[0] = _mm256_shuffle_ps(l[0], l[1], 0x88);
    t[1] = _mm256_shuffle_ps(l[0], l[1], 0xDD);
    t[2] = _mm256_shuffle_ps(l[2], l[3], 0x88);
    if (K == 5) {
        t[3] = _mm256_shuffle_ps(l[2], l[3], 0xDD);
        t[4] = _mm256_shuffle_ps(l[4], l[5], 0x88);
    }
}

/* Input row i (padded numbering: ih = i - PT) into the accumulators of
 * outputs o0 + j (slot (p + j) % L, j < nj), those whose window covers it:
 * kh = i - (o0 + j)*S, given as i0 = i - o0*S. */
KL_INL void dwc_feed(const kl_dw_args *a, const V *wv, const float *xc, size_t o0, size_t i0, size_t p, size_t nj,
                     V *acc, const size_t K, const size_t S, const size_t L, const int EDGE, const __m256i *mk) {
    ptrdiff_t ih = (ptrdiff_t)(o0 * S + i0) - (ptrdiff_t)a->PT;
    if (ih < 0 || ih >= (ptrdiff_t)a->H) return;
    V t[5];
    dwc_row(xc + ih * (ptrdiff_t)a->W, K, S, EDGE, mk, t);
KL_DW_UNROLL_ALL
    for (size_t j = 0; j < nj; j++) {
        if (i0 < j * S || i0 - j * S >= K) continue;
        size_t kh = i0 - j * S;
KL_DW_UNROLL_ALL
        for (size_t kw = 0; kw < K; kw++) acc[(p + j) % L] = v_fma(wv[kh * K + kw], t[kw], acc[(p + j) % L]);
    }
}

/* Bias-started accumulator v of output row o, columns [ow, ow + n): residual,
 * activation and the store.  AM (a constant): 1 SiLU, 2 Clip, 3 ReLU, 0 the
 * cheap ones chosen per store (others: a pass over the finished plane). */
KL_INL void dwc_store(const kl_dw_args *a, V v, size_t o, size_t ow, size_t n, const size_t S, const int AM, V va,
                      V vb) {
    if (S == 2) v = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xD8));
    size_t q = o * a->OW + ow;
    if (a->z) v = v_add(v, n == VL ? v_load(a->z + q) : v_load_n(a->z + q, n));
    if (AM == 1)
        v = v_mul(v, vm_sigmoid(v));
    else if (AM == 2)
        v = v_min(vb, v_max(va, v));
    else if (AM == 3)
        v = v_max(v_zero(), v);
    else
        v = vm_act_cheap(v, a->act.kind, va, vb);
    if (n == VL)
        v_store(a->y + q, v);
    else
        v_store_n(a->y + q, v, n);
}

/* Output columns [ow, ow + n) of every output row. */
KL_INL void dwc_strip(const kl_dw_args *a, const V *wv, size_t ow, size_t n, const size_t K, const size_t S,
                      const int EDGE, const int AM, V vbias, V va, V vb, size_t ob, size_t OH) {
    enum { L = 5 }; /* slots; (K-1)/S + 1 <= 5 are used */
    const size_t NL = (K - 1) / S + 1;
    ptrdiff_t c0 = (ptrdiff_t)(ow * S) - (ptrdiff_t)a->PL, W = (ptrdiff_t)a->W;
    const float *xc = a->x + c0;
    __m256i mk[6];
    if (EDGE)
        for (size_t i = 0; i < (S == 1 ? K : K == 3 ? 4 : 6); i++)
            mk[i] = dwc_mask(c0, S == 1 ? (ptrdiff_t)i : dwc_s2_off[i], W);
    V acc[L];
    (void)L;
    /* outputs 0..NL-2 take rows [0, K-S) before the steps */
KL_DW_UNROLL_ALL
    for (size_t j = 0; j + 1 < NL; j++) acc[j] = vbias;
KL_DW_UNROLL_ALL
    for (size_t i = 0; i + S < K; i++) dwc_feed(a, wv, xc, ob, i, 0, NL - 1, acc, K, S, NL, EDGE, mk);
    for (size_t o = ob; o < OH; o += NL) {
KL_DW_UNROLL_ALL
        for (size_t p = 0; p < NL; p++) {
            if (o + p >= OH) break;
            /* step o + p: output o + p + NL - 1 starts, rows [(o+p)*S + K - S, (o+p)*S + K) come in,
             * output o + p is complete */
            acc[(p + NL - 1) % NL] = vbias;
KL_DW_UNROLL_ALL
            for (size_t s = 0; s < S; s++) dwc_feed(a, wv, xc, o + p, K - S + s, p, NL, acc, K, S, NL, EDGE, mk);
            dwc_store(a, acc[p], o + p, ow, n, S, AM, va, vb);
        }
    }
}

/* Two adjacent whole non-border vectors at once (a full cache line per
 * output row stored; the weights from memory operands where the 16
 * registers run out). */
KL_INL void dwc_feed2(const kl_dw_args *a, const V *wv, const float *xc, size_t o0, size_t i0, size_t p, size_t nj,
                      V *acc0, V *acc1, const size_t K, const size_t S, const size_t L) {
    ptrdiff_t ih = (ptrdiff_t)(o0 * S + i0) - (ptrdiff_t)a->PT;
    if (ih < 0 || ih >= (ptrdiff_t)a->H) return;
    V t0[5], t1[5];
    const float *row = xc + ih * (ptrdiff_t)a->W;
    dwc_row(row, K, S, 0, NULL, t0);
    dwc_row(row + VL * S, K, S, 0, NULL, t1);
KL_DW_UNROLL_ALL
    for (size_t j = 0; j < nj; j++) {
        if (i0 < j * S || i0 - j * S >= K) continue;
        size_t kh = i0 - j * S;
KL_DW_UNROLL_ALL
        for (size_t kw = 0; kw < K; kw++) {
            acc0[(p + j) % L] = v_fma(wv[kh * K + kw], t0[kw], acc0[(p + j) % L]);
            acc1[(p + j) % L] = v_fma(wv[kh * K + kw], t1[kw], acc1[(p + j) % L]);
        }
    }
}

KL_INL void dwc_strip2(const kl_dw_args *a, const V *wv, size_t ow, const size_t K, const size_t S, const int AM,
                       V vbias, V va, V vb, size_t ob, size_t OH) {
    const size_t NL = (K - 1) / S + 1;
    ptrdiff_t c0 = (ptrdiff_t)(ow * S) - (ptrdiff_t)a->PL;
    const float *xc = a->x + c0;
    V acc0[5], acc1[5];
KL_DW_UNROLL_ALL
    for (size_t j = 0; j + 1 < NL; j++) acc0[j] = acc1[j] = vbias;
KL_DW_UNROLL_ALL
    for (size_t i = 0; i + S < K; i++) dwc_feed2(a, wv, xc, ob, i, 0, NL - 1, acc0, acc1, K, S, NL);
    for (size_t o = ob; o < OH; o += NL) {
KL_DW_UNROLL_ALL
        for (size_t p = 0; p < NL; p++) {
            if (o + p >= OH) break;
            acc0[(p + NL - 1) % NL] = acc1[(p + NL - 1) % NL] = vbias;
KL_DW_UNROLL_ALL
            for (size_t s = 0; s < S; s++) dwc_feed2(a, wv, xc, o + p, K - S + s, p, NL, acc0, acc1, K, S, NL);
            dwc_store(a, acc0[p], o + p, ow, VL, S, AM, va, vb);
            dwc_store(a, acc1[p], o + p, ow + VL, VL, S, AM, va, vb);
        }
    }
}


#define KL_DWC_BAND_BYTES 8192   /* input rows per band of output rows */
#define KL_DWC_BAND_PLANE 16384  /* planes above this many bytes are banded */
KL_INL void dwc_plane_t(const kl_dw_args *ap, const size_t K, const size_t S, const int AM, const int BAND) {
    /* a local copy: the stores to y cannot alias it, so its fields stay in
     * registers instead of being reloaded after every store */
    const kl_dw_args args = *ap, *a = K == 3 ? &args : ap;
    V wv[25];
    for (size_t i = 0; i < K * K; i++) wv[i] = v_bcast(a->w + i);
    V va = v_set1(a->act.alpha), vb = v_set1(a->act.beta), vbias = v_set1(a->bias);
    size_t OW = a->OW, OH = a->OH;
    ptrdiff_t W = (ptrdiff_t)a->W, PL = (ptrdiff_t)a->PL;
    /* columns read by a whole vector: [c0, c0 + (VL-1)*S + K), stride 2 one more (the odd half of the last pair) */
    ptrdiff_t span = (ptrdiff_t)((VL - 1) * S + K + (S == 2));
    /* bands of output rows whose input rows stay in L1 while every column
     * strip runs down them (a strip down a whole plane past L1 found the
     * rows it shares with the previous strip gone) */
#define KL_DWC_COLS(OB, OE)                                                                                  \
    do {                                                                                                     \
        size_t ob_ = (OB), oe_ = (OE), ow = 0;                                                               \
        for (; ow + VL <= OW; ow += VL) {                                                                    \
            ptrdiff_t c0 = (ptrdiff_t)(ow * S) - PL;                                                         \
            if ((K == 3 || S == 2) && ow + 2 * VL <= OW && c0 >= 0 && c0 + span + (ptrdiff_t)(VL * S) <= W) { \
                dwc_strip2(a, wv, ow, K, S, AM, vbias, va, vb, ob_, oe_);                                    \
                ow += VL;                                                                                    \
            } else if (c0 >= 0 && c0 + span <= W)                                                            \
                dwc_strip(a, wv, ow, VL, K, S, 0, AM, vbias, va, vb, ob_, oe_);                              \
            else                                                                                             \
                dwc_strip(a, wv, ow, VL, K, S, 1, AM, vbias, va, vb, ob_, oe_);                              \
        }                                                                                                    \
        if (ow < OW) dwc_strip(a, wv, ow, OW - ow, K, S, 1, AM, vbias, va, vb, ob_, oe_);                    \
    } while (0)
    if (!BAND) {
        KL_DWC_COLS(0, OH);
    } else {
        size_t band = KL_DWC_BAND_BYTES / (a->W * sizeof(float) * S);
        if (band < 8) band = 8;
        for (size_t ob = 0; ob < OH; ob += band) KL_DWC_COLS(ob, KL_MIN(OH, ob + band));
    }
#undef KL_DWC_COLS
    if (AM == 0 && !vm_act_is_cheap(a->act.kind)) KL_SIMD_FN(vec_act)(a->act, a->y, a->OH * a->OW);
}

/* Planes past KL_DWC_BAND_PLANE in bands of rows, each geometry and
 * activation its own function: inline beside the unbanded form in dwconv
 * they made the 7x7/14x14 planes 10-30% slower (layout), and a call per
 * plane for every plane cost those 4-8%. */
#define KL_DWC_FN(K, S, AM)                                                                                  \
    static __attribute__((noinline)) void dwc_band_##K##_##S##_##AM(const kl_dw_args *a) {                    \
        dwc_plane_t(a, K, S, AM, 1);                                                                         \
    }
KL_DWC_FN(3, 1, 0) KL_DWC_FN(3, 1, 1) KL_DWC_FN(3, 1, 2) KL_DWC_FN(3, 1, 3)
KL_DWC_FN(3, 2, 0) KL_DWC_FN(3, 2, 1) KL_DWC_FN(3, 2, 2) KL_DWC_FN(3, 2, 3)
KL_DWC_FN(5, 1, 0) KL_DWC_FN(5, 1, 1) KL_DWC_FN(5, 2, 0) KL_DWC_FN(5, 2, 1)
#undef KL_DWC_FN
#define dwc_plane(a, K, S, AM)                                                                               \
    (a->H * a->W * sizeof(float) > KL_DWC_BAND_PLANE ? dwc_band_##K##_##S##_##AM(a) : dwc_plane_t(a, K, S, AM, 0))
#endif

void KL_SIMD_FN(dwconv)(const kl_dw_args *a) {
    if (a->direct) { /* kl_x86_dw_direct: 3x3/5x5, stride 1/2 both ways, dilation 1 */
        /* SiLU in the stores pays for 5x5 (240ch 28x28 0.25 -> 0.21 ms, 672ch 14x14
         * 0.205 -> 0.175); for 3x3 only at AVX-512 with its 17-op SiLU (96ch
         * 112x112/2 0.30-0.34 -> 0.275, 144ch 56x56/2 0.11-0.13 -> 0.105-0.109;
         * with the older 21-op form 0.115 -> 0.15), at AVX2 not measurably */
        int silu = a->act.kind == KL_ACT_SILU, silu3 = silu && VL == 16;
#if VL == 8
        /* AVX2: SiLU in the stores on planes past L1 (32ch 112x112 3x3: 0.319
         * -> 0.301 ms, 96ch 112x112/2: 0.346 -> 0.334), a pass over the
         * finished plane (still in L1) below (144ch 56x56/2: 0.152 -> 0.139,
         * 5x5/2: 0.231 -> 0.208, 192ch 28x28 3x3: 0.138 -> 0.132) */
        silu = silu && a->OH * a->OW >= 56 * 56;
        /* 3x3: Clip (ReLU6) and ReLU as constants in the stores too (5x5/2
         * 144ch 56x56 was 5% slower with them, SiLU's form included) */
        int am = silu ? 1 : a->KH != 3 ? 0 : a->act.kind == KL_ACT_CLIP ? 2 : a->act.kind == KL_ACT_RELU ? 3 : 0;
#define KL_DWC_AM(K, S)                                                                                      \
    do {                                                                                                     \
        if (am == 1)                                                                                         \
            dwc_plane(a, K, S, 1);                                                                           \
        else if (am == 2)                                                                                    \
            dwc_plane(a, K, S, 2);                                                                           \
        else if (am == 3)                                                                                    \
            dwc_plane(a, K, S, 3);                                                                           \
        else                                                                                                 \
            dwc_plane(a, K, S, 0);                                                                           \
    } while (0)
        if (a->KH == 3 && a->SW == 1)
            KL_DWC_AM(3, 1);
        else if (a->KH == 3)
            KL_DWC_AM(3, 2);
        else if (a->SW == 1)
            am ? dwc_plane(a, 5, 1, 1) : dwc_plane(a, 5, 1, 0);
        else
            am ? dwc_plane(a, 5, 2, 1) : dwc_plane(a, 5, 2, 0);
#undef KL_DWC_AM
        return;
#endif
        if (a->KH == 3 && a->SW == 1)
            silu3 ? dw_plane_rows(a, 3, 3, 1, 1) : dw_plane_rows(a, 3, 3, 1, 0);
        else if (a->KH == 3)
            silu3 ? dw_plane_rows(a, 3, 3, 2, 1) : dw_plane_rows(a, 3, 3, 2, 0);
        else if (a->SW == 1)
            silu ? dw_plane_rows(a, 5, 5, 1, 1) : dw_plane_rows(a, 5, 5, 1, 0);
        else
            silu ? dw_plane_rows(a, 5, 5, 2, 1) : dw_plane_rows(a, 5, 5, 2, 0);
    } else if (a->KH == 3 && a->KW == 3 && a->SW == 1)
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

/* ---- conv.direct: few input channels (stems), KL_DIRECT_MB channels per block ---- */

/* Output row oh, NV (1 or 2) vectors of output columns from ow (n columns
 * in the last one), every output channel: each tap's input vectors (KW per
 * input row; stride 2 by two loads and a permute, borders by masked loads)
 * are loaded once per block of KL_DIRECT_MB channels and each broadcast
 * weight feeds NV accumulators; rows outside the input are skipped.  Bias,
 * residual and a cheap activation before the store (cd_rows applies the
 * others to the finished row: inlined at every store they made this file
 * 12 times larger). */
KL_INL void cd_vec(const kl_direct_args *a, size_t oh, size_t ow, const size_t NV, const size_t n, const size_t KW,
                   const size_t S, const int EDGE, V va, V vb) {
    enum { MB = KL_DIRECT_MB };
    ptrdiff_t W = (ptrdiff_t)a->W, H = (ptrdiff_t)a->H;
    ptrdiff_t ih0 = (ptrdiff_t)(oh * S) - (ptrdiff_t)a->PT, c0 = (ptrdiff_t)(ow * S) - (ptrdiff_t)a->PL;
    size_t KH = a->KH, C = a->C, K = C * KH * KW;
    size_t kh0 = ih0 < 0 ? (size_t)(-ih0) : 0;
    size_t kh1 = H - ih0 < (ptrdiff_t)KH ? (size_t)(H - ih0) : KH;
    dw_edge e[7];
    if (EDGE)
        for (size_t kw = 0; kw < KW; kw++) e[kw] = dw_edge_make(c0 + (ptrdiff_t)kw, n, S, W);
    for (size_t mb = 0; mb < a->M; mb += MB) {
        const float *wb = a->w + mb * K;
        V c[2][MB];
KL_DW_UNROLL_ALL
        for (size_t j = 0; j < MB; j++) c[0][j] = c[1][j] = v_bcast(a->bias + mb + j);
        for (size_t ci = 0; ci < C; ci++)
            for (size_t kh = kh0; kh < kh1; kh++) {
                const float *row = a->x + ((ptrdiff_t)(ci * a->H) + ih0 + (ptrdiff_t)kh) * W + c0;
                const float *wk = wb + (ci * KH + kh) * KW * MB;
KL_DW_UNROLL_ALL
                for (size_t kw = 0; kw < KW; kw++) {
                    V t0 = EDGE ? dw_ld_edge(row + kw, e[kw], S) : dw_ld(row + kw, NV == 1 ? n : VL, S);
                    V t1 = NV == 2 ? dw_ld(row + kw + VL * S, VL, S) : t0;
KL_DW_UNROLL_ALL
                    for (size_t j = 0; j < MB; j++) {
                        V w = v_bcast(wk + kw * MB + j);
                        c[0][j] = v_fma(w, t0, c[0][j]);
                        if (NV == 2) c[1][j] = v_fma(w, t1, c[1][j]);
                    }
                }
            }
KL_DW_UNROLL_ALL
        for (size_t j = 0; j < MB; j++) {
            if (mb + j >= a->M) break;
            size_t q = kl_direct_yoff(a, mb + j, oh) + ow;
            V acc = c[0][j];
            if (NV == 2) {
                V acc1 = c[1][j];
                if (a->z) acc = v_add(acc, v_load(a->z + q)), acc1 = v_add(acc1, v_load(a->z + q + VL));
                v_store(a->y + q, vm_act_cheap(acc, a->act.kind, va, vb));
                v_store(a->y + q + VL, vm_act_cheap(acc1, a->act.kind, va, vb));
            } else if (n == VL) {
                if (a->z) acc = v_add(acc, v_load(a->z + q));
                v_store(a->y + q, vm_act_cheap(acc, a->act.kind, va, vb));
            } else {
                if (a->z) acc = v_add(acc, v_load_n(a->z + q, n));
                v_store_n(a->y + q, vm_act_cheap(acc, a->act.kind, va, vb), n);
            }
        }
    }
}

#if VL == 8
/* AVX2 form of cd_vec for kernels up to 5 wide: each input row's KW tap
 * vectors are made once (dwc_row: stride 2 by pairs of loads split into
 * even/odd columns, lanes in shuffle_ps order until the store) and feed the
 * block's channels four at a time (8 accumulators for two vectors: with 8
 * channels' 16 and the taps, cd_vec spilled at AVX2's 16 registers). */
KL_INL void cd2_vec(const kl_direct_args *a, size_t oh, size_t ow, const size_t NV, const size_t n, const size_t KW,
                    const size_t S, const int EDGE, V va, V vb, const int AM) {
    enum { MB = KL_DIRECT_MB, MH = 4 };
    ptrdiff_t W = (ptrdiff_t)a->W, H = (ptrdiff_t)a->H;
    ptrdiff_t ih0 = (ptrdiff_t)(oh * S) - (ptrdiff_t)a->PT, c0 = (ptrdiff_t)(ow * S) - (ptrdiff_t)a->PL;
    size_t KH = a->KH, C = a->C, K = C * KH * KW;
    size_t kh0 = ih0 < 0 ? (size_t)(-ih0) : 0;
    size_t kh1 = H - ih0 < (ptrdiff_t)KH ? (size_t)(H - ih0) : KH;
    __m256i mk[6];
    if (EDGE)
        for (size_t i = 0; i < (S == 1 ? KW : KW == 3 ? 4 : 6); i++)
            mk[i] = dwc_mask(c0, S == 1 ? (ptrdiff_t)i : dwc_s2_off[i], W);
    for (size_t mb = 0; mb < a->M; mb += MB) {
        const float *wb = a->w + mb * K;
        for (size_t h = 0; h < MB && mb + h < a->M; h += MH) {
            V c[2][MH];
KL_DW_UNROLL_ALL
            for (size_t j = 0; j < MH; j++) c[0][j] = c[1][j] = v_bcast(a->bias + mb + h + j);
            for (size_t ci = 0; ci < C; ci++)
                for (size_t kh = kh0; kh < kh1; kh++) {
                    const float *row = a->x + ((ptrdiff_t)(ci * a->H) + ih0 + (ptrdiff_t)kh) * W + c0;
                    const float *wk = wb + (ci * KH + kh) * KW * MB + h;
                    if (S == 2 && !EDGE) {
                        /* a pair of taps (kw, kw + 1) at a time from one pair of
                         * loads per vector: 8 accumulators, 4 taps and a
                         * broadcast live (all taps of the row at once spilled
                         * two accumulators through the stack) */
KL_DW_UNROLL_ALL
                        for (size_t kw = 0; kw < KW; kw += 2) {
                            V l0 = v_load(row + kw), l1 = v_load(row + kw + VL);
                            V e0 = _mm256_shuffle_ps(l0, l1, 0x88), o0 = _mm256_shuffle_ps(l0, l1, 0xDD);
                            V e1 = e0, o1 = o0;
                            if (NV == 2) {
                                V m0 = v_load(row + 2 * VL + kw), m1 = v_load(row + 3 * VL + kw);
                                e1 = _mm256_shuffle_ps(m0, m1, 0x88), o1 = _mm256_shuffle_ps(m0, m1, 0xDD);
                            }
KL_DW_UNROLL_ALL
                            for (size_t j = 0; j < MH; j++) {
                                V w = v_bcast(wk + kw * MB + j);
                                c[0][j] = v_fma(w, e0, c[0][j]);
                                if (NV == 2) c[1][j] = v_fma(w, e1, c[1][j]);
                            }
                            if (kw + 1 < KW)
KL_DW_UNROLL_ALL
                                for (size_t j = 0; j < MH; j++) {
                                    V w = v_bcast(wk + (kw + 1) * MB + j);
                                    c[0][j] = v_fma(w, o0, c[0][j]);
                                    if (NV == 2) c[1][j] = v_fma(w, o1, c[1][j]);
                                }
                        }
                        continue;
                    }
                    V t0[5], t1[5];
                    dwc_row(row, KW, S, EDGE, mk, t0);
                    if (NV == 2) dwc_row(row + VL * S, KW, S, 0, mk, t1);
KL_DW_UNROLL_ALL
                    for (size_t kw = 0; kw < KW; kw++)
KL_DW_UNROLL_ALL
                        for (size_t j = 0; j < MH; j++) {
                            V w = v_bcast(wk + kw * MB + j);
                            c[0][j] = v_fma(w, t0[kw], c[0][j]);
                            if (NV == 2) c[1][j] = v_fma(w, t1[kw], c[1][j]);
                        }
                }
KL_DW_UNROLL_ALL
            for (size_t j = 0; j < MH; j++) {
                if (mb + h + j >= a->M) break;
                size_t q = kl_direct_yoff(a, mb + h + j, oh) + ow;
KL_DW_UNROLL_ALL
                for (size_t v = 0; v < NV; v++) {
                    V acc = c[v][j];
                    if (S == 2) acc = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(acc), 0xD8));
                    size_t nn = NV == 2 ? VL : n, qq = q + v * VL;
                    if (nn == VL) {
                        if (a->z) acc = v_add(acc, v_load(a->z + qq));
                    } else {
                        if (a->z) acc = v_add(acc, v_load_n(a->z + qq, nn));
                    }
                    if (AM == 2)
                        acc = v_min(vb, v_max(va, acc));
                    else if (AM == 3)
                        acc = v_max(v_zero(), acc);
                    else
                        acc = vm_act_cheap(acc, a->act.kind, va, vb);
                    if (nn == VL)
                        v_store(a->y + qq, acc);
                    else
                        v_store_n(a->y + qq, acc, nn);
                }
            }
        }
    }
}
#endif

/* Rows [oh0, oh1): pairs of vectors whose taps all lie inside the row take
 * plain loads, the others (borders, the tail) go one at a time with masked
 * loads where needed. */
#if VL == 8
#define CD_VEC(...) (KW == 3 || KW == 5 ? cd2_vec(__VA_ARGS__, AM) : cd_vec(__VA_ARGS__))
#else
#define CD_VEC(...) cd_vec(__VA_ARGS__)
#endif
/* AM (AVX2): 2 Clip, 3 ReLU as constants in cd2_vec's stores, 0 any */
KL_INL void cd_rows(const kl_direct_args *ap, const size_t KW, const size_t S, const int AM) {
    /* a local copy: the stores to y cannot alias it (its fields were
     * reloaded after every store) */
    const kl_direct_args args = *ap, *a = VL == 8 ? &args : ap;
    V va = v_set1(a->act.alpha), vb = v_set1(a->act.beta);
    ptrdiff_t W = (ptrdiff_t)a->W, PL = (ptrdiff_t)a->PL;
    /* cd2_vec at stride 2 reads one column more (the odd half of its last pair) */
    ptrdiff_t xs = VL == 8 && S == 2 && (KW == 3 || KW == 5);
    for (size_t oh = a->oh0; oh < a->oh1; oh++) {
        size_t ow = 0;
        while (ow + VL <= a->OW) {
            ptrdiff_t c0 = (ptrdiff_t)(ow * S) - PL;
            if (c0 >= 0 && ow + 2 * VL <= a->OW && c0 + (ptrdiff_t)((2 * VL - 1) * S + KW) + xs <= W) {
                CD_VEC(a, oh, ow, 2, VL, KW, S, 0, va, vb);
                ow += 2 * VL;
            } else {
                if (c0 >= 0 && c0 + (ptrdiff_t)((VL - 1) * S + KW) + xs <= W)
                    CD_VEC(a, oh, ow, 1, VL, KW, S, 0, va, vb);
                else
                    CD_VEC(a, oh, ow, 1, VL, KW, S, 1, va, vb);
                ow += VL;
            }
        }
        if (ow < a->OW) CD_VEC(a, oh, ow, 1, a->OW - ow, KW, S, 1, va, vb);
        if (!vm_act_is_cheap(a->act.kind)) /* the finished row, still in L1 (SiLU: the stem of EfficientNet) */
            for (size_t m = 0; m < a->M; m++)
                KL_SIMD_FN(vec_act)(a->act, a->y + kl_direct_yoff(a, m, oh), a->OW);
    }
}
#undef CD_VEC

void KL_SIMD_FN(conv_direct)(const kl_direct_args *a) {
    /* kl_conv2d_supports(KL_CONV_DIRECT): KW <= 7, S 1 or 2 */
    if (a->S == 1) {
        switch (a->KW) {
        case 3: cd_rows(a, 3, 1, 0); break;
        case 5: cd_rows(a, 5, 1, 0); break;
        case 7: cd_rows(a, 7, 1, 0); break;
        default: cd_rows(a, a->KW, 1, 0); break;
        }
    } else {
        switch (a->KW) {
        case 3:
            /* MobileNet's stem (3x3/2, ReLU6) */
            if (VL == 8 && a->act.kind == KL_ACT_CLIP)
                cd_rows(a, 3, 2, 2);
            else if (VL == 8 && a->act.kind == KL_ACT_RELU)
                cd_rows(a, 3, 2, 3);
            else
                cd_rows(a, 3, 2, 0);
            break;
        case 5: cd_rows(a, 5, 2, 0); break;
        case 7: cd_rows(a, 7, 2, 0); break;
        default: cd_rows(a, a->KW, 2, 0); break;
        }
    }
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

/* Lanes [l0, l0+n) of v to p[0..n). */
KL_INL void wino_store_lanes(float *p, V v, size_t l0, size_t n) {
#if VL == 16
    v_store_n(p, _mm512_maskz_compress_ps((__mmask16)(((1u << n) - 1u) << l0), v), n);
#else
    const __m256i iv = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    v_store_n(p, _mm256_permutevar8x32_ps(v, _mm256_add_epi32(iv, _mm256_set1_epi32((int)l0))), n);
#endif
}

/* Vector h (lanes h..h+VL-1) of product k where kl_wino_in's layout puts
 * it: whole in the tile-major layout; in the transposed one, the runs of
 * lanes that share a 6-tile panel by masked stores. */
KL_INL void wino_put(const kl_wino_in *a, size_t k, size_t h, V v) {
    float *d = a->dst + k * a->xs;
    if (!a->cgp) {
        v_store(d + h, v);
        return;
    }
    size_t end = h + VL < a->nw ? h + VL : a->nw;
    for (size_t l = h; l < end;) {
        size_t q = a->q0 + l, r = q % 6, n = 6 - r < end - l ? 6 - r : end - l;
        /* lanes from l go to rows r.. of panel q/6 */
        wino_store_lanes(d + (q / 6) * 6 * a->cgp + r, v, l - h, n);
        l += n;
    }
}

/* In-place transpose of eight rows of eight floats. */
KL_INL void wino_tr8x8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20), r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20), r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31), r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31), r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* The 6x6 input tiles of 16 tiles, tile-major in lanes: each tile's six
 * rows are read as six floats (a masked load: nothing past the tile), then
 * eight tiles' rows are transposed in registers, so buf[i*6+j][l] is written
 * by vector stores (it was 36 scalar loads and stores per tile).  Tiles
 * that cross the border (and lanes past nt, which read zeros) go through a
 * zero-padded 6x8 copy. */
void KL_SIMD_FN(wino_in)(const kl_wino_in *a) {
    float buf[36][16] __attribute__((aligned(64)));
    float pad[16][48] __attribute__((aligned(32)));
    static const float zeros[48];
    const float *rp[16];
    size_t rs[16];
    for (size_t l = 0; l < 16; l++) {
        rs[l] = 8;
        if (l >= a->nt) {
            rp[l] = zeros;
            continue;
        }
        size_t tg = a->t0 + l, t = tg % a->T, th = t / a->TW, tw = t % a->TW;
        const float *x = a->x + (tg / a->T) * a->xstride;
        ptrdiff_t r0 = (ptrdiff_t)(th * 4) - (ptrdiff_t)a->PT, c0 = (ptrdiff_t)(tw * 4) - (ptrdiff_t)a->PL;
        if (r0 >= 0 && c0 >= 0 && r0 + 6 <= (ptrdiff_t)a->H && c0 + 6 <= (ptrdiff_t)a->W) {
            rp[l] = x + r0 * (ptrdiff_t)a->W + c0;
            rs[l] = a->W;
            continue;
        }
        for (int i = 0; i < 6; i++) {
            ptrdiff_t r = r0 + i;
            for (int j = 0; j < 6; j++) {
                ptrdiff_t c = c0 + j;
                pad[l][i * 8 + j] = (r >= 0 && c >= 0 && r < (ptrdiff_t)a->H && c < (ptrdiff_t)a->W)
                                        ? x[r * (ptrdiff_t)a->W + c]
                                        : 0.0f;
            }
        }
        rp[l] = pad[l];
    }
    const __m256i m6 = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    for (size_t h = 0; h < 16; h += 8)
        for (size_t i = 0; i < 6; i++) {
            __m256 r[8];
            for (size_t k = 0; k < 8; k++) r[k] = _mm256_maskload_ps(rp[h + k] + i * rs[h + k], m6);
            wino_tr8x8(r);
            for (size_t j = 0; j < 6; j++) _mm256_store_ps(&buf[i * 6 + j][h], r[j]);
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
            for (int j = 0; j < 6; j++) wino_put(a, (size_t)(i * 6 + j), h, r[j]);
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
    /* whole tiles: the four rows of eight tiles transposed in registers
     * (out[i*4+j][l] -> four floats per tile row), stored as 4-float vectors */
    float *yt[16];
    for (size_t l = 0; l < 16; l++) {
        yt[l] = NULL;
        if (l >= a->nt) continue;
        size_t tg = a->t0 + l, t = tg % a->T, th = t / a->TW, tw = t % a->TW;
        if (th * 4 + 4 <= a->OH && tw * 4 + 4 <= a->OW)
            yt[l] = a->y + (tg / a->T) * a->ystride + th * 4 * a->OW + tw * 4;
    }
    for (size_t h = 0; h < a->nt; h += 8)
        for (size_t i = 0; i < 4; i++) {
            __m256 c0 = _mm256_load_ps(&out[i * 4][h]), c1 = _mm256_load_ps(&out[i * 4 + 1][h]);
            __m256 c2 = _mm256_load_ps(&out[i * 4 + 2][h]), c3 = _mm256_load_ps(&out[i * 4 + 3][h]);
            __m256 t0 = _mm256_unpacklo_ps(c0, c1), t1 = _mm256_unpackhi_ps(c0, c1);
            __m256 t2 = _mm256_unpacklo_ps(c2, c3), t3 = _mm256_unpackhi_ps(c2, c3);
            __m256 r0 = _mm256_shuffle_ps(t0, t2, 0x44), r1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 r2 = _mm256_shuffle_ps(t1, t3, 0x44), r3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m128 v[8] = {_mm256_castps256_ps128(r0),   _mm256_castps256_ps128(r1),
                           _mm256_castps256_ps128(r2),   _mm256_castps256_ps128(r3),
                           _mm256_extractf128_ps(r0, 1), _mm256_extractf128_ps(r1, 1),
                           _mm256_extractf128_ps(r2, 1), _mm256_extractf128_ps(r3, 1)};
            for (size_t k = 0; k < 8; k++)
                if (yt[h + k]) _mm_storeu_ps(yt[h + k] + i * a->OW, v[k]);
        }
    /* tiles cut by the map's border */
    for (size_t l = 0; l < a->nt; l++) {
        if (yt[l]) continue;
        size_t tg = a->t0 + l, t = tg % a->T, th = t / a->TW, tw = t % a->TW;
        float *yp = a->y + (tg / a->T) * a->ystride;
        size_t oh0 = th * 4, ow0 = tw * 4;
        for (size_t i = 0; i < 4 && oh0 + i < a->OH; i++)
            for (size_t j = 0; j < 4 && ow0 + j < a->OW; j++) yp[(oh0 + i) * a->OW + ow0 + j] = out[i * 4 + j][l];
    }
}

/* ---- Winograd F(2x2, 3x3): 4x4 input tiles at stride 2, 2x2 outputs ---- */

#define WINO2_BT(d0, d1, d2, d3, r)                                                \
    do {                                                                           \
        r[0] = v_sub(d0, d2);                                                      \
        r[1] = v_add(d1, d2);                                                      \
        r[2] = v_sub(d2, d1);                                                      \
        r[3] = v_sub(d1, d3);                                                      \
    } while (0)

void KL_SIMD_FN(wino2_in)(const kl_wino_in *a) {
    float buf[16][16] __attribute__((aligned(64)));
    for (size_t l = 0; l < 16; l++) {
        if (l >= a->nt) {
            for (int k = 0; k < 16; k++) buf[k][l] = 0.0f;
            continue;
        }
        size_t tg = a->t0 + l, t = tg % a->T, th = t / a->TW, tw = t % a->TW;
        const float *x = a->x + (tg / a->T) * a->xstride;
        ptrdiff_t r0 = (ptrdiff_t)(th * 2) - (ptrdiff_t)a->PT, c0 = (ptrdiff_t)(tw * 2) - (ptrdiff_t)a->PL;
        if (r0 >= 0 && c0 >= 0 && r0 + 4 <= (ptrdiff_t)a->H && c0 + 4 <= (ptrdiff_t)a->W) {
            const float *row = x + r0 * (ptrdiff_t)a->W + c0;
            for (int i = 0; i < 4; i++, row += a->W)
                for (int j = 0; j < 4; j++) buf[i * 4 + j][l] = row[j];
        } else {
            for (int i = 0; i < 4; i++) {
                ptrdiff_t r = r0 + i;
                for (int j = 0; j < 4; j++) {
                    ptrdiff_t c = c0 + j;
                    buf[i * 4 + j][l] = (r >= 0 && c >= 0 && r < (ptrdiff_t)a->H && c < (ptrdiff_t)a->W)
                                            ? x[r * (ptrdiff_t)a->W + c]
                                            : 0.0f;
                }
            }
        }
    }
    for (size_t h = 0; h < 16; h += VL) {
        V t[4][4], r[4];
        for (int j = 0; j < 4; j++) {
            WINO2_BT(v_load(&buf[j][h]), v_load(&buf[4 + j][h]), v_load(&buf[8 + j][h]), v_load(&buf[12 + j][h]), r);
            for (int i = 0; i < 4; i++) t[i][j] = r[i];
        }
        for (int i = 0; i < 4; i++) {
            WINO2_BT(t[i][0], t[i][1], t[i][2], t[i][3], r);
            for (int j = 0; j < 4; j++) wino_put(a, (size_t)(i * 4 + j), h, r[j]);
        }
    }
}

void KL_SIMD_FN(wino2_out)(const kl_wino2_out *a) {
    for (size_t l = 0; l < a->nt; l++) {
        size_t tt = a->t0 + l, th = tt / a->TW, tw = tt % a->TW;
        size_t oh0 = th * 2, ow0 = tw * 2;
        bool r1 = oh0 + 1 < a->OH, c1 = ow0 + 1 < a->OW;
        float *o00 = a->o + (oh0 * a->OW + ow0) * a->ldo, *o10 = r1 ? o00 + a->OW * a->ldo : o00;
        const float *c = a->c + l * a->ldc;
        for (size_t m = 0; m < a->mc; m += VL) {
            size_t n = a->mc - m < VL ? a->mc - m : VL;
            V mm[16];
            for (int k = 0; k < 16; k++) mm[k] = n == VL ? v_load(c + (size_t)k * a->xs + m) : v_load_n(c + (size_t)k * a->xs + m, n);
            V s0[4], s1[4];
            for (int j = 0; j < 4; j++) {
                s0[j] = v_add(v_add(mm[j], mm[4 + j]), mm[8 + j]);
                s1[j] = v_sub(v_sub(mm[4 + j], mm[8 + j]), mm[12 + j]);
            }
            V b = a->bias ? (n == VL ? v_load(a->bias + m) : v_load_n(a->bias + m, n)) : v_zero();
            V y00 = v_add(v_add(v_add(s0[0], s0[1]), s0[2]), b), y01 = v_add(v_sub(v_sub(s0[1], s0[2]), s0[3]), b);
            V y10 = v_add(v_add(v_add(s1[0], s1[1]), s1[2]), b), y11 = v_add(v_sub(v_sub(s1[1], s1[2]), s1[3]), b);
            if (n == VL) {
                v_store(o00 + m, y00);
                if (c1) v_store(o00 + a->ldo + m, y01);
                if (r1) v_store(o10 + m, y10);
                if (r1 && c1) v_store(o10 + a->ldo + m, y11);
            } else {
                v_store_n(o00 + m, y00, n);
                if (c1) v_store_n(o00 + a->ldo + m, y01, n);
                if (r1) v_store_n(o10 + m, y10, n);
                if (r1 && c1) v_store_n(o10 + a->ldo + m, y11, n);
            }
        }
    }
}

void KL_SIMD_FN(wino4t_out)(const kl_wino2_out *a) {
    for (size_t l = 0; l < a->nt; l++) {
        size_t tt = a->t0 + l, th = tt / a->TW, tw = tt % a->TW;
        size_t oh0 = th * 4, ow0 = tw * 4;
        size_t nr = a->OH - oh0 < 4 ? a->OH - oh0 : 4, nc = a->OW - ow0 < 4 ? a->OW - ow0 : 4;
        float *o0 = a->o + (oh0 * a->OW + ow0) * a->ldo;
        const float *c = a->c + l * a->ldc;
        for (size_t m = 0; m < a->mc; m += VL) {
            size_t n = a->mc - m < VL ? a->mc - m : VL;
            V s[4][6], o[4];
            for (int j = 0; j < 6; j++) {
                const float *p = c + (size_t)j * a->xs + m;
                size_t x6 = 6 * a->xs;
                if (n == VL)
                    WINO_AT(v_load(p), v_load(p + x6), v_load(p + 2 * x6), v_load(p + 3 * x6), v_load(p + 4 * x6),
                            v_load(p + 5 * x6), o);
                else
                    WINO_AT(v_load_n(p, n), v_load_n(p + x6, n), v_load_n(p + 2 * x6, n), v_load_n(p + 3 * x6, n),
                            v_load_n(p + 4 * x6, n), v_load_n(p + 5 * x6, n), o);
                for (int i = 0; i < 4; i++) s[i][j] = o[i];
            }
            V b = a->bias ? (n == VL ? v_load(a->bias + m) : v_load_n(a->bias + m, n)) : v_zero();
            for (size_t i = 0; i < nr; i++) {
                WINO_AT(s[i][0], s[i][1], s[i][2], s[i][3], s[i][4], s[i][5], o);
                float *y = o0 + i * a->OW * a->ldo + m;
                for (size_t j = 0; j < nc; j++) {
                    if (n == VL)
                        v_store(y + j * a->ldo, v_add(o[j], b));
                    else
                        v_store_n(y + j * a->ldo, v_add(o[j], b), n);
                }
            }
        }
    }
}

/* ---- im2col packing (kl_im2col_args, kernels.h) ------------------------------ */

/* A panel of 16 output pixels is cut into segments, the runs of pixels in
 * one output row.  For a tap (c, kh, kw) a segment reads one input row: with
 * stride 1 its lanes are contiguous floats (one masked load), with stride 2
 * (AVX-512) the even floats of a contiguous span (two masked loads and a
 * permute).  Lanes whose column falls in the padding, and whole segments
 * whose row does, stay zero; so do lanes past np.  No gathers: they are
 * slow on Zen 4.  Other strides (and stride 2 on AVX2) take the portable
 * loop. */
#define IM_MAXSEG 16

typedef struct im_panel {
    size_t nseg;
    size_t l0[IM_MAXSEG], l1[IM_MAXSEG]; /* lanes [l0, l1) */
    ptrdiff_t ihb[IM_MAXSEG];           /* oh*SH - PT of the segment's row */
    ptrdiff_t iwb[IM_MAXSEG];           /* ow*SW - PL of lane l0 */
    int32_t iw[16];                     /* ow*SW - PL per lane */
} im_panel;

/* Segments of pixels [pix, pix+n) in rows of OW. */
static void im_segments(const kl_im2col_args *a, size_t pix, size_t n, im_panel *pn) {
    size_t oh = pix / a->OW, ow = pix % a->OW, l = 0;
    pn->nseg = 0;
    while (l < n) {
        size_t len = a->OW - ow < n - l ? a->OW - ow : n - l;
        size_t s = pn->nseg++;
        pn->l0[s] = l, pn->l1[s] = l + len;
        pn->ihb[s] = (ptrdiff_t)(oh * a->SH) - (ptrdiff_t)a->PT;
        pn->iwb[s] = (ptrdiff_t)(ow * a->SW) - (ptrdiff_t)a->PL;
        for (size_t q = 0; q < len; q++) pn->iw[l + q] = (int32_t)((ow + q) * a->SW) - (int32_t)a->PL;
        l += len;
        ow = 0, oh++;
    }
    for (; l < 16; l++) pn->iw[l] = -1; /* never valid */
}

#if VL == 16
KL_INL __mmask16 im_bits(size_t b, size_t e) { /* bits [b, e) of 16, b <= e <= 16 */
    uint32_t hi = e >= 16 ? 0xFFFFu : ((1u << e) - 1u);
    return (__mmask16)(hi & ~((1u << b) - 1u));
}

/* Taps outer, panels inner: one tap (c, kh, kw) sweeps the tile's panels
 * left to right, so it reads its input rows in address order (a stream
 * the hardware prefetchers follow) instead of jumping between the planes
 * of every channel for each panel of 16 pixels.  Panels' segments are
 * computed once per call (up to IM_MAXPANELS panels at a time). */
#define IM_MAXPANELS 16

void KL_SIMD_FN(im2col)(const kl_im2col_args *a) {
    if (a->SW > 2) {
        kl_x86_generic_im2col(a);
        return;
    }
    const size_t khw = a->KH * a->KW, HW = a->H * a->W, ps = a->ks * 16;
    const ptrdiff_t W = (ptrdiff_t)a->W;
    const __m512i vw = _mm512_set1_epi32((int32_t)a->W);
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    im_panel pn[IM_MAXPANELS];
    __mmask16 segm[IM_MAXPANELS][IM_MAXSEG];
    __m512i viw[IM_MAXPANELS];
    for (size_t j0 = 0; j0 < a->np; j0 += 16 * IM_MAXPANELS) {
        size_t npn = (a->np - j0 + 15) / 16;
        if (npn > IM_MAXPANELS) npn = IM_MAXPANELS;
        for (size_t q = 0; q < npn; q++) {
            size_t j = j0 + 16 * q, n = a->np - j < 16 ? a->np - j : 16;
            im_segments(a, a->p0 + j, n, &pn[q]);
            viw[q] = _mm512_loadu_si512((const void *)pn[q].iw);
            for (size_t sg = 0; sg < pn[q].nseg; sg++) segm[q][sg] = im_bits(pn[q].l0[sg], pn[q].l1[sg]);
        }
        float *dst0 = a->dst + (j0 / 16) * ps;
        size_t c = a->k0 / khw, r = a->k0 % khw, kh = r / a->KW, kw = r % a->KW;
        for (size_t k = 0; k < a->ks; k++) {
            const float *xc = a->x + c * HW;
            ptrdiff_t dh = (ptrdiff_t)(kh * a->DH), dw = (ptrdiff_t)(kw * a->DW);
            const __m512i vdw = _mm512_set1_epi32((int32_t)dw);
            float *d = dst0 + k * 16;
            for (size_t q = 0; q < npn; q++, d += ps) {
                const im_panel *pq = &pn[q];
                __mmask16 wv = _mm512_cmplt_epu32_mask(_mm512_add_epi32(viw[q], vdw), vw);
                V v = v_zero();
                for (size_t sg = 0; sg < pq->nseg; sg++) {
                    ptrdiff_t ih = pq->ihb[sg] + dh;
                    __mmask16 m = wv & segm[q][sg];
                    if (ih < 0 || ih >= (ptrdiff_t)a->H || !m) continue;
                    /* address of lane l0's tap; lanes are read relative to it */
                    const float *p = xc + ih * W + pq->iwb[sg] + dw;
                    size_t l0 = pq->l0[sg];
                    if (a->SW == 1) {
                        v = _mm512_mask_loadu_ps(v, m, p - l0);
                    } else if (m == 0xFFFF) {
                        /* a whole panel inside one row: floats [0, 31) of q */
                        const float *qq = p - 2 * l0;
                        v = _mm512_permutex2var_ps(_mm512_loadu_ps(qq), even, _mm512_maskz_loadu_ps(0x7FFF, qq + 16));
                    } else {
                        size_t la = (size_t)__builtin_ctz(m), lb = la + (size_t)__builtin_popcount(m);
                        size_t e0 = 2 * la, e1 = 2 * lb - 1; /* floats [e0, e1) from qq */
                        const float *qq = p - 2 * l0;
                        V lo = e0 < 16 ? _mm512_maskz_loadu_ps(im_bits(e0, e1 < 16 ? e1 : 16), qq) : v_zero();
                        V hi = e1 > 16 ? _mm512_maskz_loadu_ps(im_bits(e0 > 16 ? e0 - 16 : 0, e1 - 16), qq + 16)
                                       : v_zero();
                        v = _mm512_mask_mov_ps(v, m, _mm512_permutex2var_ps(lo, even, hi));
                    }
                }
                v_store(d, v);
            }
            if (++kw == a->KW) {
                kw = 0;
                if (++kh == a->KH) kh = 0, c++;
            }
        }
    }
}
#else
void KL_SIMD_FN(im2col)(const kl_im2col_args *a) {
    if (a->SW != 1) {
        kl_x86_generic_im2col(a);
        return;
    }
    const size_t khw = a->KH * a->KW, HW = a->H * a->W;
    const ptrdiff_t W = (ptrdiff_t)a->W;
    const __m256i sgn = _mm256_set1_epi32(INT32_MIN);
    const __m256i vw = _mm256_xor_si256(_mm256_set1_epi32((int32_t)a->W), sgn);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    im_panel pn;
    for (size_t j = 0; j < a->np; j += 16) {
        size_t n = a->np - j < 16 ? a->np - j : 16;
        float *d = a->dst + (j / 16) * a->ks * 16;
        im_segments(a, a->p0 + j, n, &pn);
        __m256i viw[2] = {_mm256_loadu_si256((const __m256i *)pn.iw), _mm256_loadu_si256((const __m256i *)(pn.iw + 8))};
        __m256i segm[IM_MAXSEG][2];
        for (size_t s = 0; s < pn.nseg; s++)
            for (int h = 0; h < 2; h++) {
                __m256i li = _mm256_add_epi32(lane, _mm256_set1_epi32(8 * h));
                segm[s][h] = _mm256_and_si256(_mm256_cmpgt_epi32(li, _mm256_set1_epi32((int32_t)pn.l0[s] - 1)),
                                              _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)pn.l1[s]), li));
            }
        size_t c = a->k0 / khw, r = a->k0 % khw, kh = r / a->KW, kw = r % a->KW;
        for (size_t k = 0; k < a->ks; k++, d += 16) {
            const float *xc = a->x + c * HW;
            ptrdiff_t dh = (ptrdiff_t)(kh * a->DH), dw = (ptrdiff_t)(kw * a->DW);
            __m256i vdw = _mm256_set1_epi32((int32_t)dw);
            for (int h = 0; h < 2; h++) {
                /* iw + dw <u W */
                __m256i wv = _mm256_cmpgt_epi32(vw, _mm256_xor_si256(_mm256_add_epi32(viw[h], vdw), sgn));
                V v = v_zero();
                for (size_t s = 0; s < pn.nseg; s++) {
                    ptrdiff_t ih = pn.ihb[s] + dh;
                    if (ih < 0 || ih >= (ptrdiff_t)a->H || pn.l1[s] <= (size_t)(8 * h) || pn.l0[s] >= (size_t)(8 * h + 8))
                        continue;
                    __m256i m = _mm256_and_si256(wv, segm[s][h]);
                    if (_mm256_testz_si256(m, m)) continue;
                    const float *p = xc + ih * W + pn.iwb[s] + dw - (ptrdiff_t)pn.l0[s] + 8 * h;
                    v = _mm256_blendv_ps(v, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
                }
                v_store(d + 8 * h, v);
            }
            if (++kw == a->KW) {
                kw = 0;
                if (++kh == a->KH) kh = 0, c++;
            }
        }
    }
}
#endif


/* ---- im2row write-back (kl_im2row_out, kernels.h) ------------------------------- */

#if defined(KL_SIMD_AVX512)
#define IM2ROW_W 16
/* In-register transpose of the 16x16 block r[0..16) (row i lane j -> row j lane i). */
KL_INL void tr_block(V *r) {
    V t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    /* t[2k]: lanes (r[2k][0], r[2k+1][0], r[2k][1], r[2k+1][1]) per 128-bit block */
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    /* r[4g+c], 128-bit block b: column 4b+c of rows 4g..4g+3 */
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[4 + i], _MM_SHUFFLE(2, 0, 2, 0));
        t[4 + i] = _mm512_shuffle_f32x4(r[i], r[4 + i], _MM_SHUFFLE(3, 1, 3, 1));
        t[8 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], _MM_SHUFFLE(2, 0, 2, 0));
        t[12 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], _MM_SHUFFLE(3, 1, 3, 1));
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], _MM_SHUFFLE(2, 0, 2, 0));
        r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], _MM_SHUFFLE(3, 1, 3, 1));
        r[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], _MM_SHUFFLE(2, 0, 2, 0));
        r[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], _MM_SHUFFLE(3, 1, 3, 1));
    }
}
#else
#define IM2ROW_W 8
/* In-register transpose of the 8x8 block r[0..8) (row i lane j -> row j lane i). */
KL_INL void tr_block(V *r) {
    V t[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm256_permute2f128_ps(r[i], r[4 + i], 0x20);
        t[4 + i] = _mm256_permute2f128_ps(r[i], r[4 + i], 0x31);
    }
    for (int i = 0; i < 8; i++) r[i] = t[i];
}
#endif

/* ---- depthwise, channel-interleaved (kl_dwcb_args, kernels.h) ------------------ */

/* Output row oh, pixels [ow0, ow0 + KL_DWCB_OB) of lanes [h, h + VL) of the
 * block: every tap one FMA per pixel with the tap's weight vector.  ACT 1:
 * SiLU, 2: a cheap activation, 0: none (applied later). */
KL_INL void dwcb_row(const kl_dwcb_args *a, const float *xb, float *yb, size_t WB, size_t OWP, size_t oh, size_t ow0,
                     size_t h, const size_t K, const size_t S, const int ACT, V vbias, V va, V vb) {
    enum { C = KL_DWCB_C, OB = KL_DWCB_OB };
    V acc[OB];
    for (size_t o = 0; o < OB; o++) acc[o] = vbias;
KL_DW_UNROLL
    for (size_t kh = 0; kh < K; kh++) {
        const float *row = xb + ((oh * S + kh) * WB + ow0 * S) * C + h;
KL_DW_UNROLL
        for (size_t kw = 0; kw < K; kw++) {
            V w = v_load(a->w + (kh * K + kw) * C + h);
KL_DW_UNROLL_ALL
            for (size_t o = 0; o < OB; o++) acc[o] = v_fma(v_load(row + (o * S + kw) * C), w, acc[o]);
        }
    }
    float *y = yb + (oh * OWP + ow0) * C + h;
KL_DW_UNROLL_ALL
    for (size_t o = 0; o < OB; o++) {
        V v = acc[o];
        if (ACT == 1) v = v_mul(v, vm_sigmoid(v));
        if (ACT == 2) v = vm_act_cheap(v, a->act.kind, va, vb);
        v_store(y + o * C, v);
    }
}

KL_INL void dwcb_compute(const kl_dwcb_args *a, const float *xb, float *yb, size_t WB, size_t OWP, size_t h,
                         const size_t K, const size_t S, int act) {
    V vbias = v_load(a->bias + h), va = v_set1(a->act.alpha), vb = v_set1(a->act.beta);
    for (size_t oh = 0; oh < a->OH; oh++)
        for (size_t ow0 = 0; ow0 < OWP; ow0 += KL_DWCB_OB) {
            if (act == 1)
                dwcb_row(a, xb, yb, WB, OWP, oh, ow0, h, K, S, 1, vbias, va, vb);
            else if (act == 2)
                dwcb_row(a, xb, yb, WB, OWP, oh, ow0, h, K, S, 2, vbias, va, vb);
            else
                dwcb_row(a, xb, yb, WB, OWP, oh, ow0, h, K, S, 0, vbias, va, vb);
        }
}

void KL_SIMD_FN(dwcb)(const kl_dwcb_args *a) {
    enum { C = KL_DWCB_C };
    size_t HB, WB, OWP;
    kl_dwcb_dims(a->OH, a->OW, a->K, a->S, &HB, &WB, &OWP);
    float *xb = a->buf, *yb = a->buf + HB * WB * C;
    size_t HW = a->H * a->W, OHW = a->OH * a->OW, W = a->W;
    int silu = a->act.kind == KL_ACT_SILU, cheap = vm_act_is_cheap(a->act.kind);
    /* the activation in the compute loop when no residual comes after it */
    int act = a->z ? 0 : silu ? 1 : cheap && a->act.kind != KL_ACT_NONE ? 2 : 0;
    V va = v_set1(a->act.alpha), vb = v_set1(a->act.beta);
    for (size_t h = 0; h < C && h < a->nc; h += VL) {
        /* in: VL pixels x VL channels per transpose, into the padded buffer */
        size_t ih = 0, iw = 0;
        for (size_t i0 = 0; i0 < HW; i0 += VL) {
            size_t n = HW - i0 < VL ? HW - i0 : VL;
            V r[VL];
            for (size_t j = 0; j < VL; j++) {
                const float *src = a->x + (h + j) * HW + i0;
                r[j] = h + j >= a->nc ? v_zero() : n == VL ? v_load(src) : v_load_n(src, n);
            }
            tr_block(r);
            for (size_t j = 0; j < n; j++) {
                if (ih + a->PT < HB && iw + a->PL < WB) v_store(xb + ((ih + a->PT) * WB + iw + a->PL) * C + h, r[j]);
                if (++iw == W) iw = 0, ih++;
            }
        }
        if (a->K == 3 && a->S == 1)
            dwcb_compute(a, xb, yb, WB, OWP, h, 3, 1, act);
        else if (a->K == 3)
            dwcb_compute(a, xb, yb, WB, OWP, h, 3, 2, act);
        else if (a->S == 1)
            dwcb_compute(a, xb, yb, WB, OWP, h, 5, 1, act);
        else
            dwcb_compute(a, xb, yb, WB, OWP, h, 5, 2, act);
        /* out: back to channel planes, with the residual and the activation
         * the compute loop did not apply */
        size_t oh = 0, ow = 0;
        for (size_t q0 = 0; q0 < OHW; q0 += VL) {
            size_t n = OHW - q0 < VL ? OHW - q0 : VL;
            V r[VL];
            for (size_t j = 0; j < VL; j++) {
                r[j] = j < n ? v_load(yb + (oh * OWP + ow) * C + h) : v_zero();
                if (j < n && ++ow == a->OW) ow = 0, oh++;
            }
            tr_block(r);
            for (size_t j = 0; j < VL && h + j < a->nc; j++) {
                V v = r[j];
                float *y = a->y + (h + j) * OHW + q0;
                if (a->z) {
                    v = v_add(v, v_load_n(a->z + (h + j) * OHW + q0, n));
                    if (silu) v = v_mul(v, vm_sigmoid(v));
                    else if (cheap) v = vm_act_cheap(v, a->act.kind, va, vb);
                }
                v_store_n(y, v, n);
            }
        }
    }
    if (!cheap && !silu)
        for (size_t c = 0; c < a->nc; c++) KL_SIMD_FN(vec_act)(a->act, a->y + c * OHW, OHW);
}

/* Blocks of W pixels x W channels (W = the vector width), transposed in registers. */
void KL_SIMD_FN(im2row_out)(const kl_im2row_out *a) {
    enum { W = IM2ROW_W };
    V va = v_set1(a->act.alpha), vb = v_set1(a->act.beta);
    int cheap = vm_act_is_cheap(a->act.kind), silu = a->act.kind == KL_ACT_SILU;
    for (size_t m0 = 0; m0 < a->mc; m0 += W) {
        size_t nm = KL_MIN((size_t)W, a->mc - m0);
        for (size_t q0 = 0; q0 < a->nq; q0 += W) {
            size_t nq = KL_MIN((size_t)W, a->nq - q0);
            V r[W];
            for (size_t i = 0; i < W; i++) r[i] = i < nq ? v_load(a->ct + (q0 + i) * a->ldc + m0) : v_zero();
            tr_block(r);
            for (size_t j = 0; j < nm; j++) {
                float *y = a->y + (m0 + j) * a->ystride + q0;
                V v = r[j];
                if (a->z) v = v_add(v, v_load_n(a->z + (m0 + j) * a->ystride + q0, nq));
                if (cheap)
                    v = vm_act_cheap(v, a->act.kind, va, vb);
                else if (silu) /* in the register: no pass per channel over the plane */
                    v = v_mul(v, vm_sigmoid(v));
                v_store_n(y, v, nq);
            }
        }
    }
    if (!cheap && !silu)
        for (size_t m = 0; m < a->mc; m++) KL_SIMD_FN(vec_act)(a->act, a->y + m * a->ystride, a->nq);
}
#undef IM2ROW_W

/* ---- conv.igemm: one output row as an implicit GEMM (kl_igemm_row) ---------- */

#if defined(__clang__)
#define IG_UNROLL _Pragma("unroll")
#else
#define IG_UNROLL _Pragma("GCC unroll 32") /* every pixel of a tile: the accumulators stay in registers */
#endif

/* R pixels x NV vectors of channels (R*NV accumulators), channels from c0:
 * bias, then per tap one broadcast per pixel and NV weight loads. */
KL_INL void ig_tile(const kl_igemm_row *a, size_t q0, size_t c0, const int R, const int NV) {
    V acc[24];
    const size_t PV = 16 / VL; /* vectors per 16-channel panel */
    const float *bp[4];
IG_UNROLL
    for (int j = 0; j < NV; j++) {
        size_t ch = c0 + (size_t)j * VL;
        bp[j] = a->b + (ch / 16) * a->bps + ch % 16;
        V bj = v_load(a->bias + ch);
IG_UNROLL
        for (int r = 0; r < R; r++) acc[r * NV + j] = bj;
    }
    (void)PV;
    const float *x = a->x + q0 * a->S;
    size_t S = a->S;
    for (size_t k = 0; k < a->K; k++) {
        const float *p = x + a->off[k];
        V bv[4];
IG_UNROLL
        for (int j = 0; j < NV; j++) bv[j] = v_load(bp[j] + k * 16);
IG_UNROLL
        for (int r = 0; r < R; r++) {
            V xv = v_bcast(p + (size_t)r * S);
IG_UNROLL
            for (int j = 0; j < NV; j++) acc[r * NV + j] = v_fma(xv, bv[j], acc[r * NV + j]);
        }
    }
IG_UNROLL
    for (int r = 0; r < R; r++)
IG_UNROLL
        for (int j = 0; j < NV; j++) v_store(a->ct + (q0 + (size_t)r) * a->ldc + c0 + (size_t)j * VL, acc[r * NV + j]);
}

/* Channel groups of up to 4 vectors (AVX-512: 64 channels, 6 pixels a
 * tile; AVX2: 32 channels, 3 pixels), fewer vectors with more pixels at
 * the end, so 24 (AVX2: 12) accumulators stay in registers; TILE is
 * ig_tile or ik_tile, a the call's arguments (M, nq). */
#if VL == 16
#define IG_TILES(TILE, a)                                                                    \
    for (size_t v0 = 0, nvec = ((a)->M + VL - 1) / VL; v0 < nvec; v0 += 4) {                 \
        size_t nv = KL_MIN((size_t)4, nvec - v0), c0 = v0 * VL;                              \
        switch (nv) {                                                                        \
        case 4: for (size_t q = 0; q < (a)->nq; q += 6) TILE(a, q, c0, 6, 4); break;         \
        case 3: for (size_t q = 0; q < (a)->nq; q += 8) TILE(a, q, c0, 8, 3); break;         \
        case 2: for (size_t q = 0; q < (a)->nq; q += 12) TILE(a, q, c0, 12, 2); break;       \
        default: for (size_t q = 0; q < (a)->nq; q += 24) TILE(a, q, c0, 24, 1); break;      \
        }                                                                                    \
    }
#else
#define IG_TILES(TILE, a)                                                                    \
    for (size_t v0 = 0, nvec = ((a)->M + VL - 1) / VL; v0 < nvec; v0 += 4) {                 \
        size_t nv = KL_MIN((size_t)4, nvec - v0), c0 = v0 * VL;                              \
        switch (nv) {                                                                        \
        case 4: for (size_t q = 0; q < (a)->nq; q += 3) TILE(a, q, c0, 3, 4); break;         \
        case 3: for (size_t q = 0; q < (a)->nq; q += 4) TILE(a, q, c0, 4, 3); break;         \
        case 2: for (size_t q = 0; q < (a)->nq; q += 6) TILE(a, q, c0, 6, 2); break;         \
        default: for (size_t q = 0; q < (a)->nq; q += 12) TILE(a, q, c0, 12, 1); break;      \
        }                                                                                    \
    }
#endif

void KL_SIMD_FN(igemm_row)(const kl_igemm_row *a) { IG_TILES(ig_tile, a) }


/* ---- conv.igemmk: taps [k0, k1) of a band of pixels (kl_igemm_blk) ---------- */

/* R pixels x NV vectors of channels from c0: the sums start from the bias
 * or from ct, then per tap one broadcast per pixel (from its own window
 * origin) and NV weight loads; back to ct. */
KL_INL void ik_tile(const kl_igemm_blk *a, size_t q0, size_t c0, const int R, const int NV) {
    V acc[24];
    const float *bp[4];
    const float *xb[24];
IG_UNROLL
    for (int j = 0; j < NV; j++) {
        size_t ch = c0 + (size_t)j * VL;
        bp[j] = a->b + (ch / 16) * a->bps + ch % 16;
    }
IG_UNROLL
    for (int r = 0; r < R; r++) xb[r] = a->x + a->poff[q0 + (size_t)r];
    if (a->bias) {
IG_UNROLL
        for (int j = 0; j < NV; j++) {
            V bj = v_load(a->bias + c0 + (size_t)j * VL);
IG_UNROLL
            for (int r = 0; r < R; r++) acc[r * NV + j] = bj;
        }
    } else {
IG_UNROLL
        for (int r = 0; r < R; r++)
IG_UNROLL
            for (int j = 0; j < NV; j++) acc[r * NV + j] = v_load(a->ct + (q0 + (size_t)r) * a->ldc + c0 + (size_t)j * VL);
    }
    for (size_t k = a->k0; k < a->k1; k++) {
        ptrdiff_t o = a->off[k];
        V bv[4];
IG_UNROLL
        for (int j = 0; j < NV; j++) bv[j] = v_load(bp[j] + k * 16);
IG_UNROLL
        for (int r = 0; r < R; r++) {
            V xv = v_bcast(xb[r] + o);
IG_UNROLL
            for (int j = 0; j < NV; j++) acc[r * NV + j] = v_fma(xv, bv[j], acc[r * NV + j]);
        }
    }
IG_UNROLL
    for (int r = 0; r < R; r++)
IG_UNROLL
        for (int j = 0; j < NV; j++) v_store(a->ct + (q0 + (size_t)r) * a->ldc + c0 + (size_t)j * VL, acc[r * NV + j]);
}

/* The tiles of kl_igemm_row, over the band's pixels. */
void KL_SIMD_FN(igemm_blk)(const kl_igemm_blk *a) { IG_TILES(ik_tile, a) }
#undef IG_TILES

#endif
