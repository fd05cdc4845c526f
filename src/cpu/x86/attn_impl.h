/*
 * attn_impl.h — the fused attention tile (attn.h) written once over simd.h
 * and compiled per ISA (included by attn_avx2.c / attn_avx512.c only).
 *
 * Both products run through one 6-row micro-kernel (at_mk): S = Q K^T reads
 * Q rows in place (broadcast) against the packed K^T panel (AVX-512: 6 x 64
 * keys in 24 zmm; AVX2: 6 x 16 in 12 ymm), O = alpha O + P V reads P from
 * the score tile (broadcast) against V rows in place (AVX-512: 64 columns of
 * Dv per pass, AVX2: 16; then single vectors, the last one masked).  The
 * softmax step between them (scale, mask, row max, exp, row sum) works on
 * the MR x NK score tile in L1 with the vector exp of vecmath_impl.h.
 */
#ifndef KL_CPU_X86_ATTN_IMPL_H
#define KL_CPU_X86_ATTN_IMPL_H

#include <math.h>
#include <string.h>

#include "cpu/x86/attn.h"
#include "cpu/x86/simd.h"
#include "cpu/x86/vecmath_impl.h"

#if VL == 16
#define AT_QKV 4 /* vectors per Q K^T pass: 64 keys */
#define AT_PVV 4 /* vectors of Dv per P V pass */
#else
#define AT_QKV 2
#define AT_PVV 2
#endif

#if KL_ATTN_MR != 6
#error "at_mk is written for 6 rows"
#endif

KL_INL float at_hmax(V x) {
#if VL == 16
    return _mm512_reduce_max_ps(x);
#else
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
#endif
}

KL_INL float at_hsum(V x) {
#if VL == 16
    return _mm512_reduce_add_ps(x);
#else
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
#endif
}

/* exp(x) for x <= 0 or NaN (scores minus their running max).  AVX-512:
 * vm_exp's reduction and polynomial with one scalef for 2^n (no upper
 * clamp, a single rounding for subnormal results); AVX2: vm_exp. */
KL_INL V at_exp(V x) {
#if VL == 16
    x = v_max(v_set1(-104.0f), x); /* keeps a NaN x */
    V n = v_round(v_mul(x, v_set1(1.44269504088896341f)));
    V r = v_fnma(n, v_set1(0.693359375f), x);
    r = v_fnma(n, v_set1(-2.12194440e-4f), r);
    V p = v_set1(1.9875691500e-4f);
    p = v_fma(p, r, v_set1(1.3981999507e-3f));
    p = v_fma(p, r, v_set1(8.3334519073e-3f));
    p = v_fma(p, r, v_set1(4.1665795894e-2f));
    p = v_fma(p, r, v_set1(1.6666665459e-1f));
    p = v_fma(p, r, v_set1(5.0000001201e-1f));
    p = v_fma(p, v_mul(r, r), v_add(r, v_set1(1.0f)));
    return _mm512_scalef_ps(p, n);
#else
    return vm_exp(x);
#endif
}

/* x with lanes n.. replaced by fill (n < VL). */
KL_INL V at_keep(V x, size_t n, V fill) {
#if VL == 16
    return v_blend(v_tailmask(n), fill, x);
#else
    return v_blend(_mm256_castsi256_ps(v_tailmask(n)), fill, x);
#endif
}

#define AT_ROW(i)                                                                          \
    do {                                                                                   \
        V a_ = v_bcast(a##i + k);                                                          \
        c##i##0 = v_fma(a_, b0, c##i##0);                                                  \
        if (NV > 1) c##i##1 = v_fma(a_, b1, c##i##1);                                      \
        if (NV > 2) c##i##2 = v_fma(a_, b2, c##i##2);                                      \
        if (NV > 3) c##i##3 = v_fma(a_, b3, c##i##3);                                      \
    } while (0)
#define AT_INIT(i)                                                                         \
    do {                                                                                   \
        if (alpha) {                                                                       \
            V al_ = v_set1(alpha[i]);                                                      \
            c##i##0 = v_mul(al_, v_load(c + i * ldc));                                     \
            if (NV > 1) c##i##1 = v_mul(al_, v_load(c + i * ldc + VL));                    \
            if (NV > 2) c##i##2 = v_mul(al_, v_load(c + i * ldc + 2 * VL));                \
            if (NV > 3) c##i##3 = v_mul(al_, v_load(c + i * ldc + 3 * VL));                \
        }                                                                                  \
    } while (0)
#define AT_OUT(i)                                                                          \
    do {                                                                                   \
        v_store(c + i * ldc, c##i##0);                                                     \
        if (NV > 1) v_store(c + i * ldc + VL, c##i##1);                                    \
        if (NV > 2) v_store(c + i * ldc + 2 * VL, c##i##2);                                \
        if (NV > 3) v_store(c + i * ldc + 3 * VL, c##i##3);                                \
    } while (0)

/* C[6 x NV*VL] (row stride ldc, full vectors) = alpha_i C_i (alpha NULL:
 * 0) + sum_k a_i[k] * B[k] over kc steps, B[k] = b + k*bstep (NV vectors;
 * with NV == 1 and FULL == 0 only the first `tail` lanes are read). */
KL_INL void at_mk(const int NV, const int FULL, size_t kc, const float *const *ap, const float *b, size_t bstep,
                  size_t tail, float *c, size_t ldc, const float *alpha) {
    const float *a0 = ap[0], *a1 = ap[1], *a2 = ap[2], *a3 = ap[3], *a4 = ap[4], *a5 = ap[5];
    V c00 = v_zero(), c01 = v_zero(), c02 = v_zero(), c03 = v_zero();
    V c10 = v_zero(), c11 = v_zero(), c12 = v_zero(), c13 = v_zero();
    V c20 = v_zero(), c21 = v_zero(), c22 = v_zero(), c23 = v_zero();
    V c30 = v_zero(), c31 = v_zero(), c32 = v_zero(), c33 = v_zero();
    V c40 = v_zero(), c41 = v_zero(), c42 = v_zero(), c43 = v_zero();
    V c50 = v_zero(), c51 = v_zero(), c52 = v_zero(), c53 = v_zero();
    AT_INIT(0);
    AT_INIT(1);
    AT_INIT(2);
    AT_INIT(3);
    AT_INIT(4);
    AT_INIT(5);
    for (size_t k = 0; k < kc; k++, b += bstep) {
        V b0 = FULL ? v_load(b) : v_load_n(b, tail);
        V b1 = NV > 1 ? v_load(b + VL) : v_zero();
        V b2 = NV > 2 ? v_load(b + 2 * VL) : v_zero();
        V b3 = NV > 3 ? v_load(b + 3 * VL) : v_zero();
        AT_ROW(0);
        AT_ROW(1);
        AT_ROW(2);
        AT_ROW(3);
        AT_ROW(4);
        AT_ROW(5);
    }
    AT_OUT(0);
    AT_OUT(1);
    AT_OUT(2);
    AT_OUT(3);
    AT_OUT(4);
    AT_OUT(5);
}

/* Softmax step of one key block (nk keys) for the 6 rows of the score tile
 * s: scale, mask, online max / sum update of ml (m at ml[i], l at
 * ml[KL_ATTN_MR*KL_ATTN_GROUPS + i]), P = exp(S - m) written back in
 * place, alpha[i] = exp(m_old - m_new). */
KL_INL void at_softmax(float *s, size_t nk, float scale, const float *const *mrow, size_t m_ks, float *ml,
                       float *alpha) {
    const size_t nv = (nk + VL - 1) / VL, lofs = KL_ATTN_MR * KL_ATTN_GROUPS;
    const V vscale = v_set1(scale), ninf = v_set1(-INFINITY);
    for (int i = 0; i < KL_ATTN_MR; i++) {
        float *sr = s + (size_t)i * KL_ATTN_NK;
        const float *mr = mrow ? mrow[i] : NULL;
        V vmax = ninf;
        for (size_t t = 0; t < nv; t++) {
            size_t j = t * VL, left = nk - j;
            V x = v_load(sr + j);
            if (!mr) {
                x = v_mul(x, vscale);
            } else {
                V mk = !m_ks ? v_bcast(mr) : left >= VL ? v_load(mr + j) : v_load_n(mr + j, left);
                x = v_fma(x, vscale, mk);
            }
            if (left < VL) x = at_keep(x, left, ninf);
            v_store(sr + j, x);
            vmax = v_max(x, vmax); /* a NaN score is skipped, as the reference's max skips it */
        }
        float bm = at_hmax(vmax), mo = ml[i];
        float mn = bm > mo ? bm : mo;
        float shift = mn == -INFINITY ? 0.0f : mn; /* all -inf so far: P = 0, not NaN */
        alpha[i] = expf(mo - shift);
        V vs = v_set1(shift), sum = v_zero();
        for (size_t t = 0; t < nv; t++) {
            V p = at_exp(v_sub(v_load(sr + t * VL), vs));
            v_store(sr + t * VL, p);
            sum = v_add(sum, p);
        }
        ml[i] = mn;
        ml[lofs + i] = ml[lofs + i] * alpha[i] + at_hsum(sum);
    }
}

void KL_SIMD_FN(attn_tile)(const kl_attn_tile *t) {
    const size_t MR = KL_ATTN_MR, NK = KL_ATTN_NK, lofs = KL_ATTN_MR * KL_ATTN_GROUPS;
    const size_t ng = (t->rows + MR - 1) / MR, nkb = (t->Sk + NK - 1) / NK, D = t->D, Dv = t->Dv, dvp = t->dvp;
    memset(t->o, 0, ng * MR * dvp * sizeof(float));
    for (size_t i = 0; i < ng * MR; i++) {
        t->ml[i] = -INFINITY;
        t->ml[lofs + i] = 0.0f;
    }
    for (size_t kb = 0; kb < nkb; kb++) {
        const size_t k0 = kb * NK, nk = t->Sk - k0 < NK ? t->Sk - k0 : NK;
        const float *ktb = t->kt + k0 * D, *vb = t->v + k0 * t->v_ss;
        const size_t nsub = (nk + AT_QKV * VL - 1) / (AT_QKV * VL);
        for (size_t g = 0; g < ng; g++) {
            const size_t r0 = g * MR, m = t->rows - r0 < MR ? t->rows - r0 : MR;
            const float *qr[KL_ATTN_MR], *mr[KL_ATTN_MR], *sr[KL_ATTN_MR];
            for (size_t i = 0; i < MR; i++) {
                size_t r = r0 + (i < m ? i : 0); /* rows past the tile repeat its first one */
                qr[i] = t->q + r * t->q_ss;
                mr[i] = t->mask ? t->mask + r * t->m_qs + k0 * t->m_ks : NULL;
                sr[i] = t->s + i * NK;
            }
            for (size_t u = 0; u < nsub; u++) { /* the last pass only as wide as the keys left */
                const size_t nvk = (nk - u * AT_QKV * VL + VL - 1) / VL;
                const float *kp = ktb + u * AT_QKV * VL;
                float *sp = t->s + u * AT_QKV * VL;
                if (nvk >= AT_QKV) at_mk(AT_QKV, 1, D, qr, kp, NK, VL, sp, NK, NULL);
                else if (AT_QKV > 3 && nvk == 3) at_mk(3, 1, D, qr, kp, NK, VL, sp, NK, NULL);
                else if (AT_QKV > 2 && nvk == 2) at_mk(2, 1, D, qr, kp, NK, VL, sp, NK, NULL);
                else at_mk(1, 1, D, qr, kp, NK, VL, sp, NK, NULL);
            }
            float alpha[KL_ATTN_MR];
            at_softmax(t->s, nk, t->scale, t->mask ? mr : NULL, t->m_ks, t->ml + r0, alpha);
            float *o = t->o + r0 * dvp;
            size_t c0 = 0;
            for (; c0 + AT_PVV * VL <= Dv; c0 += AT_PVV * VL)
                at_mk(AT_PVV, 1, nk, sr, vb + c0, t->v_ss, VL, o + c0, dvp, alpha);
            /* the whole vectors left in one pass (Dv 32: two), so P is broadcast once for them */
            if (AT_PVV > 3 && c0 + 3 * VL <= Dv) {
                at_mk(3, 1, nk, sr, vb + c0, t->v_ss, VL, o + c0, dvp, alpha);
                c0 += 3 * VL;
            } else if (AT_PVV > 2 && c0 + 2 * VL <= Dv) {
                at_mk(2, 1, nk, sr, vb + c0, t->v_ss, VL, o + c0, dvp, alpha);
                c0 += 2 * VL;
            }
            for (; c0 + VL <= Dv; c0 += VL) at_mk(1, 1, nk, sr, vb + c0, t->v_ss, VL, o + c0, dvp, alpha);
            if (c0 < Dv) at_mk(1, 0, nk, sr, vb + c0, t->v_ss, Dv - c0, o + c0, dvp, alpha);
        }
    }
    for (size_t r = 0; r < t->rows; r++) {
        float *y = t->y + r * t->y_ss;
        const float *o = t->o + r * dvp;
        float mx = t->ml[r];
        V inv = v_set1(mx == -INFINITY ? NAN : 1.0f / t->ml[lofs + r]);
        size_t c = 0;
        for (; c + VL <= Dv; c += VL) v_store(y + c, v_mul(v_load(o + c), inv));
        if (c < Dv) v_store_n(y + c, v_mul(v_load(o + c), inv), Dv - c);
    }
}

#endif
