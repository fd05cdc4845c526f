/*
 * simd.h — a thin vector abstraction so the kernel templates (vecmath_impl.h,
 * gemm_impl.h, conv_impl.h) are written once and compiled per ISA.  Include
 * it only from a per-ISA file, after defining KL_SIMD_AVX512 or KL_SIMD_AVX2
 * (the file's own compile flags must enable that ISA).
 */
#ifndef KL_CPU_X86_SIMD_H
#define KL_CPU_X86_SIMD_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define KL_INL static inline __attribute__((always_inline))

#if defined(KL_SIMD_AVX512)

typedef __m512 V;
typedef __m512i VI;
typedef __mmask16 VM;
#define VL 16
#define KL_SIMD_NAME avx512

KL_INL V v_load(const float *p) { return _mm512_loadu_ps(p); }
KL_INL VM v_tailmask(size_t n) { return (VM)(n >= 16 ? 0xFFFFu : ((1u << n) - 1u)); }
/* Loads/stores of the first n < VL lanes never touch memory past them. */
KL_INL V v_load_n(const float *p, size_t n) { return _mm512_maskz_loadu_ps(v_tailmask(n), p); }
/* A tail mask made once (VT) and loads by it: v_load_t(p, v_tailmask_t(n)) == v_load_n(p, n). */
typedef __mmask16 VT;
KL_INL VT v_tailmask_t(size_t n) { return v_tailmask(n); }
KL_INL V v_load_t(const float *p, VT m) { return _mm512_maskz_loadu_ps(m, p); }
KL_INL void v_store(float *p, V v) { _mm512_storeu_ps(p, v); }
KL_INL void v_store_n(float *p, V v, size_t n) { _mm512_mask_storeu_ps(p, v_tailmask(n), v); }
KL_INL V v_set1(float x) { return _mm512_set1_ps(x); }
KL_INL V v_bcast(const float *p) { return _mm512_set1_ps(*p); }
KL_INL V v_zero(void) { return _mm512_setzero_ps(); }
KL_INL V v_add(V a, V b) { return _mm512_add_ps(a, b); }
KL_INL V v_sub(V a, V b) { return _mm512_sub_ps(a, b); }
KL_INL V v_mul(V a, V b) { return _mm512_mul_ps(a, b); }
KL_INL V v_div(V a, V b) { return _mm512_div_ps(a, b); }
KL_INL V v_fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }   /* a*b+c */
KL_INL V v_fnma(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); } /* c-a*b */
KL_INL V v_fms(V a, V b, V c) { return _mm512_fmsub_ps(a, b, c); }   /* a*b-c */
/* max/min return the second operand when either is NaN (x86 rule). */
KL_INL V v_max(V a, V b) { return _mm512_max_ps(a, b); }
KL_INL V v_min(V a, V b) { return _mm512_min_ps(a, b); }
KL_INL V v_abs(V a) { return _mm512_abs_ps(a); }
KL_INL V v_and(V a, V b) { return _mm512_and_ps(a, b); }
KL_INL V v_xor(V a, V b) { return _mm512_xor_ps(a, b); }
KL_INL V v_or(V a, V b) { return _mm512_or_ps(a, b); }
KL_INL V v_round(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
KL_INL VI v_cvt_i(V a) { return _mm512_cvtps_epi32(a); }
/* 2^n for integer n in [-126, 127]. */
KL_INL V v_pow2i(VI n) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n, _mm512_set1_epi32(127)), 23));
}
KL_INL VI vi_srai1(VI n) { return _mm512_srai_epi32(n, 1); }
KL_INL VI vi_sub(VI a, VI b) { return _mm512_sub_epi32(a, b); }
KL_INL VM v_lt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
KL_INL VM v_ge(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
KL_INL VM v_isnan(V a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
/* m ? b : a, lane by lane. */
KL_INL V v_blend(VM m, V a, V b) { return _mm512_mask_blend_ps(m, a, b); }
KL_INL int vm_any(VM m) { return m != 0; }

#elif defined(KL_SIMD_AVX2)

typedef __m256 V;
typedef __m256i VI;
typedef __m256 VM;
#define VL 8
#define KL_SIMD_NAME avx2

static const int32_t kl_simd_tail_tab[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
KL_INL __m256i v_tailmask(size_t n) {
    return _mm256_loadu_si256((const __m256i *)(kl_simd_tail_tab + 8 - (n >= 8 ? 8 : n)));
}
KL_INL V v_load(const float *p) { return _mm256_loadu_ps(p); }
KL_INL V v_load_n(const float *p, size_t n) { return _mm256_maskload_ps(p, v_tailmask(n)); }
typedef __m256i VT;
KL_INL VT v_tailmask_t(size_t n) { return v_tailmask(n); }
KL_INL V v_load_t(const float *p, VT m) { return _mm256_maskload_ps(p, m); }
KL_INL void v_store(float *p, V v) { _mm256_storeu_ps(p, v); }
/* Plain 16/8/4-byte stores of the first n lanes: vmaskmovps to memory costs
 * ~12 cycles on Zen 4 (a plain store 1.5). */
KL_INL void v_store_n(float *p, V v, size_t n) {
    if (n >= 8) {
        _mm256_storeu_ps(p, v);
        return;
    }
    __m128 h = _mm256_castps256_ps128(v);
    if (n & 4) {
        _mm_storeu_ps(p, h);
        h = _mm256_extractf128_ps(v, 1);
        p += 4;
    }
    if (n & 2) {
        _mm_storel_pi((__m64 *)(void *)p, h);
        h = _mm_movehl_ps(h, h);
        p += 2;
    }
    if (n & 1) _mm_store_ss(p, h);
}
KL_INL V v_set1(float x) { return _mm256_set1_ps(x); }
KL_INL V v_bcast(const float *p) { return _mm256_broadcast_ss(p); }
KL_INL V v_zero(void) { return _mm256_setzero_ps(); }
KL_INL V v_add(V a, V b) { return _mm256_add_ps(a, b); }
KL_INL V v_sub(V a, V b) { return _mm256_sub_ps(a, b); }
KL_INL V v_mul(V a, V b) { return _mm256_mul_ps(a, b); }
KL_INL V v_div(V a, V b) { return _mm256_div_ps(a, b); }
KL_INL V v_fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
KL_INL V v_fnma(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }
KL_INL V v_fms(V a, V b, V c) { return _mm256_fmsub_ps(a, b, c); }
KL_INL V v_max(V a, V b) { return _mm256_max_ps(a, b); }
KL_INL V v_min(V a, V b) { return _mm256_min_ps(a, b); }
KL_INL V v_abs(V a) { return _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))); }
KL_INL V v_and(V a, V b) { return _mm256_and_ps(a, b); }
KL_INL V v_xor(V a, V b) { return _mm256_xor_ps(a, b); }
KL_INL V v_or(V a, V b) { return _mm256_or_ps(a, b); }
KL_INL V v_round(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
KL_INL VI v_cvt_i(V a) { return _mm256_cvtps_epi32(a); }
KL_INL V v_pow2i(VI n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23));
}
KL_INL VI vi_srai1(VI n) { return _mm256_srai_epi32(n, 1); }
KL_INL VI vi_sub(VI a, VI b) { return _mm256_sub_epi32(a, b); }
KL_INL VM v_lt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
KL_INL VM v_ge(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
KL_INL VM v_isnan(V a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
KL_INL V v_blend(VM m, V a, V b) { return _mm256_blendv_ps(a, b, m); }
KL_INL int vm_any(VM m) { return _mm256_movemask_ps(m) != 0; }

#else
#error "define KL_SIMD_AVX512 or KL_SIMD_AVX2 before including simd.h"
#endif

#define KL_SIMD_CAT2(a, b) a##b
#define KL_SIMD_CAT(a, b) KL_SIMD_CAT2(a, b)
/* KL_SIMD_FN(sgemm_kernel) -> kl_x86_avx512_sgemm_kernel (or _avx2_). */
#define KL_SIMD_FN(name) KL_SIMD_CAT(KL_SIMD_CAT(KL_SIMD_CAT(kl_x86_, KL_SIMD_NAME), _), name)

#endif
