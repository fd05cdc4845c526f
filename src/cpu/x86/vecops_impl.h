/*
 * vecops_impl.h — the vecops.h kernels written once over simd.h and compiled
 * per ISA (included by vecops_avx2.c and vecops_avx512.c only): elementwise
 * steps, LayerNorm/RMSNorm rows, Softmax rows and columns.  Uses the vector
 * exp/erf/tanh of vecmath_impl.h, with the ends the reference kernels have
 * (exp overflows to inf and underflows to 0; sigmoid and softplus stay
 * accurate for large |x|; erf keeps its relative accuracy near 0).
 */
#ifndef KL_CPU_X86_VECOPS_IMPL_H
#define KL_CPU_X86_VECOPS_IMPL_H

#include <math.h>

#include "cpu/x86/vecmath_impl.h"
#include "cpu/x86/vecops.h"

/* ---- a few operations simd.h does not have ------------------------------------------- */

#if defined(KL_SIMD_AVX512)
KL_INL V vo_sqrt(V x) { return _mm512_sqrt_ps(x); }
KL_INL VI vo_bits(V x) { return _mm512_castps_si512(x); }
KL_INL V vo_float(VI i) { return _mm512_castsi512_ps(i); }
KL_INL VI vo_srli23(VI i) { return _mm512_srli_epi32(i, 23); }
KL_INL VI vo_iand(VI a, int m) { return _mm512_and_si512(a, _mm512_set1_epi32(m)); }
KL_INL VI vo_ior(VI a, int m) { return _mm512_or_si512(a, _mm512_set1_epi32(m)); }
KL_INL V vo_cvt_f(VI i) { return _mm512_cvtepi32_ps(i); }
KL_INL VM vo_eq(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
KL_INL VM vo_le(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
KL_INL VM vo_mor(VM a, VM b) { return (VM)(a | b); }
KL_INL VM vo_mnone(void) { return 0; }
/* First n < VL lanes from p, the others `fill`. */
KL_INL V vo_load_fill(const float *p, size_t n, V fill) { return _mm512_mask_loadu_ps(fill, v_tailmask(n), p); }
KL_INL float vo_hsum(V x) { return _mm512_reduce_add_ps(x); }
KL_INL float vo_hmax(V x) { return _mm512_reduce_max_ps(x); }
#else
KL_INL V vo_sqrt(V x) { return _mm256_sqrt_ps(x); }
KL_INL VI vo_bits(V x) { return _mm256_castps_si256(x); }
KL_INL V vo_float(VI i) { return _mm256_castsi256_ps(i); }
KL_INL VI vo_srli23(VI i) { return _mm256_srli_epi32(i, 23); }
KL_INL VI vo_iand(VI a, int m) { return _mm256_and_si256(a, _mm256_set1_epi32(m)); }
KL_INL VI vo_ior(VI a, int m) { return _mm256_or_si256(a, _mm256_set1_epi32(m)); }
KL_INL V vo_cvt_f(VI i) { return _mm256_cvtepi32_ps(i); }
KL_INL VM vo_eq(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
KL_INL VM vo_le(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
KL_INL VM vo_mor(VM a, VM b) { return _mm256_or_ps(a, b); }
KL_INL VM vo_mnone(void) { return _mm256_setzero_ps(); }
KL_INL V vo_load_fill(const float *p, size_t n, V fill) {
    __m256i m = v_tailmask(n);
    return _mm256_blendv_ps(fill, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
KL_INL float vo_hsum(V x) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
KL_INL float vo_hmax(V x) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

/* ---- math with the reference kernels' ends --------------------------------------------- */

/* exp(x): inf above ln(FLT_MAX), 0 below the smallest subnormal's log. */
KL_INL V vo_exp(V x) {
    V r = vm_exp(x);
    r = v_blend(v_ge(x, v_set1(88.72283935546875f)), r, v_set1(INFINITY));
    return v_blend(v_lt(x, v_set1(-103.972084f)), r, v_zero());
}

/* 1/(1+e^-x) as r = 1/(1+e^-|x|), e^-|x| r for x < 0: no overflow, tiny
 * results keep their relative accuracy. */
KL_INL V vo_sigmoid(V x) {
    V e = vo_exp(v_xor(v_abs(x), v_set1(-0.0f)));
    V r = v_div(v_set1(1.0f), v_add(v_set1(1.0f), e));
    return v_blend(v_lt(x, v_zero()), r, v_mul(e, r));
}

/* log(x) (Cephes logf): mantissa in [sqrt(1/2), sqrt 2), degree-8
 * polynomial; subnormals scaled by 2^23; 0 -> -inf, x < 0 -> NaN, inf -> inf. */
KL_INL V vo_log(V x) {
    VM sub = v_lt(x, v_set1(1.17549435e-38f));
    V xs = v_blend(sub, x, v_mul(x, v_set1(8388608.0f)));
    VI bits = vo_bits(xs);
    V e = v_sub(vo_cvt_f(vo_srli23(vo_iand(bits, 0x7f800000))), v_set1(126.0f));
    e = v_blend(sub, e, v_sub(e, v_set1(23.0f)));
    V m = vo_float(vo_ior(vo_iand(bits, 0x007fffff), 0x3f000000)); /* [0.5, 1) */
    VM lo = v_lt(m, v_set1(0.707106781186547524f));
    e = v_blend(lo, e, v_sub(e, v_set1(1.0f)));
    m = v_blend(lo, v_sub(m, v_set1(1.0f)), v_sub(v_add(m, m), v_set1(1.0f)));
    V z = v_mul(m, m);
    V y = v_set1(7.0376836292e-2f);
    y = v_fma(y, m, v_set1(-1.1514610310e-1f));
    y = v_fma(y, m, v_set1(1.1676998740e-1f));
    y = v_fma(y, m, v_set1(-1.2420140846e-1f));
    y = v_fma(y, m, v_set1(1.4249322787e-1f));
    y = v_fma(y, m, v_set1(-1.6668057665e-1f));
    y = v_fma(y, m, v_set1(2.0000714765e-1f));
    y = v_fma(y, m, v_set1(-2.4999993993e-1f));
    y = v_fma(y, m, v_set1(3.3333331174e-1f));
    y = v_mul(v_mul(y, m), z);
    y = v_fma(e, v_set1(-2.12194440e-4f), y);
    y = v_fnma(z, v_set1(0.5f), y);
    V r = v_add(m, y);
    r = v_fma(e, v_set1(0.693359375f), r);
    r = v_blend(vo_eq(x, v_zero()), r, v_set1(-INFINITY));
    r = v_blend(vo_eq(x, v_set1(INFINITY)), r, x);
    r = v_blend(v_lt(x, v_zero()), r, v_set1(NAN));
    return v_blend(v_isnan(x), r, x);
}

/* log(1 + t) for t >= 0 (t = e^-|x| in softplus): log(u) t / (u - 1). */
KL_INL V vo_log1p_pos(V t) {
    V u = v_add(v_set1(1.0f), t);
    V d = v_sub(u, v_set1(1.0f));
    V r = v_div(v_mul(vo_log(u), t), d);
    return v_blend(vo_eq(d, v_zero()), r, t);
}

/* erf(u): the series below |u| = 1 (relative accuracy near 0), 1 - erfc above. */
KL_INL V vo_erf(V u) {
    V au = v_abs(u);
    V big = v_sub(v_set1(1.0f), vm_erfc_big(v_max(au, v_set1(1.0f))));
    big = v_or(big, v_and(u, v_set1(-0.0f)));
    V r = v_blend(v_lt(au, v_set1(1.0f)), big, vm_erf_small(u));
    return v_blend(v_isnan(u), r, u);
}

/* One step on x with operand o (vector) and step parameters a, b. */
KL_INL V vo_apply(int op, V x, V o, V a, V b) {
    switch (op) {
    case KL_VOP_ADD: return v_add(x, o);
    case KL_VOP_SUB: return v_sub(x, o);
    case KL_VOP_RSUB: return v_sub(o, x);
    case KL_VOP_MUL: return v_mul(x, o);
    case KL_VOP_DIV: return v_div(x, o);
    case KL_VOP_RDIV: return v_div(o, x);
    case KL_VOP_RELU: return v_max(v_zero(), x);
    case KL_VOP_SIGMOID: return vo_sigmoid(x);
    case KL_VOP_TANH: return vm_tanh(x);
    case KL_VOP_EXP: return vo_exp(x);
    case KL_VOP_LOG: return vo_log(x);
    case KL_VOP_ERF: return vo_erf(x);
    case KL_VOP_SQRT: return vo_sqrt(x);
    case KL_VOP_NEG: return v_xor(x, v_set1(-0.0f));
    case KL_VOP_ABS: return v_abs(x);
    case KL_VOP_RECIPROCAL: return v_div(v_set1(1.0f), x);
    case KL_VOP_LEAKY_RELU: return v_blend(v_lt(x, v_zero()), x, v_mul(x, a));
    case KL_VOP_SOFTPLUS: {
        V r = v_add(v_max(v_zero(), x), vo_log1p_pos(vm_exp(v_xor(v_abs(x), v_set1(-0.0f)))));
        return v_blend(v_isnan(x), r, x);
    }
    case KL_VOP_GELU_ERF: return vm_gelu_erf(x);
    case KL_VOP_GELU_TANH: {
        V x3 = v_mul(v_mul(x, x), x);
        V y2 = v_mul(v_fma(x3, v_set1(0.044715f), x), v_set1(2.0f * 0.79788456080286536f));
        return v_mul(x, vo_sigmoid(y2));
    }
    case KL_VOP_HARD_SWISH:
        return v_mul(x, v_max(v_zero(), v_min(v_set1(1.0f), v_add(v_div(x, v_set1(6.0f)), v_set1(0.5f)))));
    case KL_VOP_HARD_SIGMOID: return v_max(v_zero(), v_min(v_set1(1.0f), v_fma(x, a, b)));
    case KL_VOP_SWISH: return v_mul(x, vo_sigmoid(v_mul(x, a)));
    default: return x;
    }
}

/* The loop of one opcode (OP a constant after inlining). */
#define VO_STEP_LOOP(OP)                                                                     \
    do {                                                                                     \
        size_t i_ = 0;                                                                       \
        if (vec) {                                                                           \
            for (; i_ + VL <= n; i_ += VL)                                                   \
                v_store(y + i_, vo_apply(OP, v_load(v + i_), v_load(o + i_), va, vb));       \
            if (i_ < n)                                                                      \
                v_store_n(y + i_, vo_apply(OP, v_load_n(v + i_, n - i_), v_load_n(o + i_, n - i_), va, vb), n - i_); \
        } else {                                                                             \
            for (; i_ + VL <= n; i_ += VL) v_store(y + i_, vo_apply(OP, v_load(v + i_), ob, va, vb)); \
            if (i_ < n) v_store_n(y + i_, vo_apply(OP, v_load_n(v + i_, n - i_), ob, va, vb), n - i_); \
        }                                                                                    \
    } while (0)

/* Pow and its reverse: x^2 and x^3 by products, else the C library per element. */
static void KL_SIMD_FN(vo_pow)(const kl_vstep *s, float *y, const float *v, const float *o, size_t os, size_t n) {
    float c = o ? o[0] : s->a;
    if (s->op == KL_VOP_POW && (!o || !os) && (c == 2.0f || c == 3.0f || c == 1.0f)) {
        size_t i = 0;
        for (; i + VL <= n; i += VL) {
            V x = v_load(v + i);
            v_store(y + i, c == 1.0f ? x : c == 2.0f ? v_mul(x, x) : v_mul(v_mul(x, x), x));
        }
        for (; i < n; i++) y[i] = c == 1.0f ? v[i] : c == 2.0f ? v[i] * v[i] : v[i] * v[i] * v[i];
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float ov = o ? o[i * os] : s->a;
        y[i] = s->op == KL_VOP_POW ? powf(v[i], ov) : powf(ov, v[i]);
    }
}

static void KL_SIMD_FN(vo_step)(const kl_vstep *s, float *y, const float *v, const float *o, size_t os, size_t n) {
    if (s->op == KL_VOP_POW || s->op == KL_VOP_RPOW) {
        KL_SIMD_FN(vo_pow)(s, y, v, o, os, n);
        return;
    }
    bool vec = o && os;
    V ob = o ? v_set1(o[0]) : v_set1(s->a), va = v_set1(s->a), vb = v_set1(s->b);
    switch (s->op) {
    case KL_VOP_ADD: VO_STEP_LOOP(KL_VOP_ADD); break;
    case KL_VOP_SUB: VO_STEP_LOOP(KL_VOP_SUB); break;
    case KL_VOP_RSUB: VO_STEP_LOOP(KL_VOP_RSUB); break;
    case KL_VOP_MUL: VO_STEP_LOOP(KL_VOP_MUL); break;
    case KL_VOP_DIV: VO_STEP_LOOP(KL_VOP_DIV); break;
    case KL_VOP_RDIV: VO_STEP_LOOP(KL_VOP_RDIV); break;
    case KL_VOP_RELU: VO_STEP_LOOP(KL_VOP_RELU); break;
    case KL_VOP_SIGMOID: VO_STEP_LOOP(KL_VOP_SIGMOID); break;
    case KL_VOP_TANH: VO_STEP_LOOP(KL_VOP_TANH); break;
    case KL_VOP_EXP: VO_STEP_LOOP(KL_VOP_EXP); break;
    case KL_VOP_LOG: VO_STEP_LOOP(KL_VOP_LOG); break;
    case KL_VOP_ERF: VO_STEP_LOOP(KL_VOP_ERF); break;
    case KL_VOP_SQRT: VO_STEP_LOOP(KL_VOP_SQRT); break;
    case KL_VOP_NEG: VO_STEP_LOOP(KL_VOP_NEG); break;
    case KL_VOP_ABS: VO_STEP_LOOP(KL_VOP_ABS); break;
    case KL_VOP_RECIPROCAL: VO_STEP_LOOP(KL_VOP_RECIPROCAL); break;
    case KL_VOP_LEAKY_RELU: VO_STEP_LOOP(KL_VOP_LEAKY_RELU); break;
    case KL_VOP_SOFTPLUS: VO_STEP_LOOP(KL_VOP_SOFTPLUS); break;
    case KL_VOP_GELU_ERF: VO_STEP_LOOP(KL_VOP_GELU_ERF); break;
    case KL_VOP_GELU_TANH: VO_STEP_LOOP(KL_VOP_GELU_TANH); break;
    case KL_VOP_HARD_SWISH: VO_STEP_LOOP(KL_VOP_HARD_SWISH); break;
    case KL_VOP_HARD_SIGMOID: VO_STEP_LOOP(KL_VOP_HARD_SIGMOID); break;
    case KL_VOP_SWISH: VO_STEP_LOOP(KL_VOP_SWISH); break;
    default: break;
    }
}

/* ---- LayerNorm / RMSNorm ------------------------------------------------------------------- */

static float KL_SIMD_FN(vo_sum)(const float *x, size_t n) {
    V s0 = v_zero(), s1 = v_zero(), s2 = v_zero(), s3 = v_zero();
    size_t i = 0;
    for (; i + 4 * VL <= n; i += 4 * VL) {
        s0 = v_add(s0, v_load(x + i));
        s1 = v_add(s1, v_load(x + i + VL));
        s2 = v_add(s2, v_load(x + i + 2 * VL));
        s3 = v_add(s3, v_load(x + i + 3 * VL));
    }
    for (; i + VL <= n; i += VL) s0 = v_add(s0, v_load(x + i));
    if (i < n) s1 = v_add(s1, v_load_n(x + i, n - i));
    return vo_hsum(v_add(v_add(s0, s1), v_add(s2, s3)));
}

/* sum (x - m)^2 */
static float KL_SIMD_FN(vo_sumsq)(const float *x, size_t n, float m) {
    V vm = v_set1(m), s0 = v_zero(), s1 = v_zero(), s2 = v_zero(), s3 = v_zero();
    size_t i = 0;
    for (; i + 4 * VL <= n; i += 4 * VL) {
        V d0 = v_sub(v_load(x + i), vm), d1 = v_sub(v_load(x + i + VL), vm);
        V d2 = v_sub(v_load(x + i + 2 * VL), vm), d3 = v_sub(v_load(x + i + 3 * VL), vm);
        s0 = v_fma(d0, d0, s0);
        s1 = v_fma(d1, d1, s1);
        s2 = v_fma(d2, d2, s2);
        s3 = v_fma(d3, d3, s3);
    }
    for (; i + VL <= n; i += VL) {
        V d = v_sub(v_load(x + i), vm);
        s0 = v_fma(d, d, s0);
    }
    if (i < n) {
        size_t r = n - i;
        V d = v_sub(vo_load_fill(x + i, r, vm), vm);
        s1 = v_fma(d, d, s1);
    }
    return vo_hsum(v_add(v_add(s0, s1), v_add(s2, s3)));
}

static void KL_SIMD_FN(vo_norm)(bool rms, const float *x, float *y, size_t r0, size_t r1, size_t n, const float *w,
                                const float *b, float eps) {
    for (size_t r = r0; r < r1; r++) {
        const float *px = x + r * n;
        float *py = y + r * n;
        float mean = rms ? 0.0f : KL_SIMD_FN(vo_sum)(px, n) / (float)n;
        float q = KL_SIMD_FN(vo_sumsq)(px, n, mean);
        float inv = (float)(1.0 / sqrt((double)q / (double)n + (double)eps));
        V vm = v_set1(mean), vi = v_set1(inv), one = v_set1(1.0f), zero = v_zero();
        size_t i = 0;
        for (; i + VL <= n; i += VL) {
            V t = v_mul(v_sub(v_load(px + i), vm), vi);
            v_store(py + i, v_fma(t, w ? v_load(w + i) : one, b ? v_load(b + i) : zero));
        }
        if (i < n) {
            size_t k = n - i;
            V t = v_mul(v_sub(v_load_n(px + i, k), vm), vi);
            v_store_n(py + i, v_fma(t, w ? v_load_n(w + i, k) : one, b ? v_load_n(b + i, k) : zero), k);
        }
    }
}

/* ---- Softmax --------------------------------------------------------------------------------- */

static void KL_SIMD_FN(vo_softmax_rows)(const float *x, float *y, size_t r0, size_t r1, size_t n) {
    V ninf = v_set1(-INFINITY);
    for (size_t r = r0; r < r1; r++) {
        const float *px = x + r * n;
        float *py = y + r * n;
        V m0 = ninf, m1 = ninf;
        VM nan = vo_mnone();
        size_t i = 0;
        for (; i + 2 * VL <= n; i += 2 * VL) {
            V a = v_load(px + i), c = v_load(px + i + VL);
            nan = vo_mor(nan, vo_mor(v_isnan(a), v_isnan(c)));
            m0 = v_max(m0, a);
            m1 = v_max(m1, c);
        }
        for (; i + VL <= n; i += VL) {
            V a = v_load(px + i);
            nan = vo_mor(nan, v_isnan(a));
            m0 = v_max(m0, a);
        }
        if (i < n) {
            V a = vo_load_fill(px + i, n - i, ninf);
            nan = vo_mor(nan, v_isnan(a));
            m1 = v_max(m1, a);
        }
        float m = vo_hmax(v_max(m0, m1));
        if (vm_any(nan) || m == INFINITY || m == -INFINITY) {
            for (size_t j = 0; j < n; j++) py[j] = NAN;
            continue;
        }
        V vm = v_set1(m), s0 = v_zero(), s1 = v_zero();
        for (i = 0; i + 2 * VL <= n; i += 2 * VL) {
            V e0 = vo_exp(v_sub(v_load(px + i), vm)), e1 = vo_exp(v_sub(v_load(px + i + VL), vm));
            v_store(py + i, e0);
            v_store(py + i + VL, e1);
            s0 = v_add(s0, e0);
            s1 = v_add(s1, e1);
        }
        for (; i + VL <= n; i += VL) {
            V e = vo_exp(v_sub(v_load(px + i), vm));
            v_store(py + i, e);
            s0 = v_add(s0, e);
        }
        if (i < n) {
            V e = vo_exp(v_sub(vo_load_fill(px + i, n - i, ninf), vm));
            v_store_n(py + i, e, n - i);
            s1 = v_add(s1, e);
        }
        V inv = v_set1(1.0f / vo_hsum(v_add(s0, s1)));
        for (i = 0; i + VL <= n; i += VL) v_store(py + i, v_mul(v_load(py + i), inv));
        if (i < n) v_store_n(py + i, v_mul(v_load_n(py + i, n - i), inv), n - i);
    }
}

/* Columns [i0, i1) of one [n, inner] slab: lanes are columns. */
static void KL_SIMD_FN(vo_softmax_cols)(const float *x, float *y, size_t n, size_t inner, size_t i0, size_t i1) {
    V ninf = v_set1(-INFINITY), pinf = v_set1(INFINITY);
    for (size_t c = i0; c < i1; c += VL) {
        size_t k = i1 - c < VL ? i1 - c : VL;
        V m = ninf;
        VM bad = vo_mnone();
        for (size_t j = 0; j < n; j++) {
            V a = k == VL ? v_load(x + j * inner + c) : vo_load_fill(x + j * inner + c, k, ninf);
            bad = vo_mor(bad, v_isnan(a));
            m = v_max(m, a);
        }
        bad = vo_mor(bad, vo_mor(vo_eq(m, pinf), vo_eq(m, ninf)));
        V s = v_zero();
        for (size_t j = 0; j < n; j++) {
            V a = k == VL ? v_load(x + j * inner + c) : vo_load_fill(x + j * inner + c, k, ninf);
            V e = vo_exp(v_sub(a, m));
            s = v_add(s, e);
            if (k == VL) v_store(y + j * inner + c, e);
            else v_store_n(y + j * inner + c, e, k);
        }
        V inv = v_blend(bad, v_div(v_set1(1.0f), s), v_set1(NAN));
        for (size_t j = 0; j < n; j++) {
            float *p = y + j * inner + c;
            if (k == VL) v_store(p, v_mul(v_load(p), inv));
            else v_store_n(p, v_mul(v_load_n(p, k), inv), k);
        }
    }
}

/* ---- global average pool: plane means with a double sum --------------------------------- */

/* y[p] = (float)(sum of the n values of plane p, in double, / n) for p <
 * planes: the reference's double accumulation, vectorized (the order of the
 * additions differs; in double that does not show after the rounding). */
static void KL_SIMD_FN(vo_plane_mean)(const float *x, size_t planes, size_t n, float *y) {
    for (size_t p = 0; p < planes; p++, x += n) {
        size_t i = 0;
#if defined(KL_SIMD_AVX512)
        __m512d s0 = _mm512_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
        for (; i + 32 <= n; i += 32) {
            s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm256_loadu_ps(x + i)));
            s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8)));
            s2 = _mm512_add_pd(s2, _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 16)));
            s3 = _mm512_add_pd(s3, _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 24)));
        }
        for (; i + 8 <= n; i += 8) s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm256_loadu_ps(x + i)));
        if (i < n) {
            __mmask8 m = (__mmask8)((1u << (n - i)) - 1u);
            s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, x + i)));
        }
        double s = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3)));
#else
        __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
        for (; i + 16 <= n; i += 16) {
            s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
            s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)));
            s2 = _mm256_add_pd(s2, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)));
            s3 = _mm256_add_pd(s3, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 12)));
        }
        for (; i + 4 <= n; i += 4) s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
        __m256d t = _mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3));
        __m128d h = _mm_add_pd(_mm256_castpd256_pd128(t), _mm256_extractf128_pd(t, 1));
        double s = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
        for (; i < n; i++) s += x[i];
#endif
        y[p] = (float)(s / (double)n);
    }
}

/* ---- matrix-vector product (1x1 convolutions on 1x1 maps: squeeze-excite) -------------------- */

/* y[m] = act(bias[m] + sum_k w[m*K + k] x[k] + z[m]) for m < M (bias, z
 * may be NULL; w need not be 4-byte aligned: vector loads only).  Four rows
 * at a time, each a dot product along K. */
static void KL_SIMD_FN(vo_matvec)(const float *w, size_t M, size_t K, const float *x, const float *bias,
                                  const float *z, float *y, int act_kind, float alpha, float beta) {
    V va = v_set1(alpha), vb = v_set1(beta);
    kl_act_kind kind = (kl_act_kind)act_kind;
    size_t kv = K / VL * VL, kt = K - kv;
    size_t m = 0;
    for (; m + 4 <= M; m += 4) {
        const float *w0 = w + m * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
        V s0 = v_zero(), s1 = v_zero(), s2 = v_zero(), s3 = v_zero();
        for (size_t k = 0; k < kv; k += VL) {
            V xv = v_load(x + k);
            s0 = v_fma(v_load(w0 + k), xv, s0);
            s1 = v_fma(v_load(w1 + k), xv, s1);
            s2 = v_fma(v_load(w2 + k), xv, s2);
            s3 = v_fma(v_load(w3 + k), xv, s3);
        }
        if (kt) {
            V xv = v_load_n(x + kv, kt);
            s0 = v_fma(v_load_n(w0 + kv, kt), xv, s0);
            s1 = v_fma(v_load_n(w1 + kv, kt), xv, s1);
            s2 = v_fma(v_load_n(w2 + kv, kt), xv, s2);
            s3 = v_fma(v_load_n(w3 + kv, kt), xv, s3);
        }
        float r[VL] = {0};
        r[0] = vo_hsum(s0), r[1] = vo_hsum(s1), r[2] = vo_hsum(s2), r[3] = vo_hsum(s3);
        V o = v_load_n(r, 4);
        if (bias) o = v_add(o, v_load_n(bias + m, 4));
        if (z) o = v_add(o, v_load_n(z + m, 4));
        v_store_n(y + m, vm_act(o, kind, va, vb), 4);
    }
    for (; m < M; m++) {
        const float *w0 = w + m * K;
        V s0 = v_zero();
        for (size_t k = 0; k < kv; k += VL) s0 = v_fma(v_load(w0 + k), v_load(x + k), s0);
        if (kt) s0 = v_fma(v_load_n(w0 + kv, kt), v_load_n(x + kv, kt), s0);
        float r[VL] = {0};
        r[0] = vo_hsum(s0);
        V o = v_load_n(r, 1);
        if (bias) o = v_add(o, v_load_n(bias + m, 1));
        if (z) o = v_add(o, v_load_n(z + m, 1));
        v_store_n(y + m, vm_act(o, kind, va, vb), 1);
    }
}

/* ---- max pooling rows ---------------------------------------------------------------------- */

/* v_max(r, t) returns t where r is NaN (maxps gives its second operand). */
static void KL_SIMD_FN(vo_max_into)(float *t, const float *r, size_t n) {
    size_t i = 0;
    for (; i + VL <= n; i += VL) v_store(t + i, v_max(v_load(r + i), v_load(t + i)));
    if (i < n) v_store_n(t + i, v_max(v_load_n(r + i, n - i), v_load_n(t + i, n - i)), n - i);
}

/* The even lanes of the 2m-1 floats at p (m <= VL; nothing read past them). */
KL_INL V vo_load_even_n(const float *p, size_t m) {
    size_t c = 2 * m - 1;
#if VL == 16
    V lo = c >= 16 ? v_load(p) : v_load_n(p, c), hi = c > 16 ? v_load_n(p + 16, c - 16) : v_zero();
    const __m512i idx = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    return _mm512_permutex2var_ps(lo, idx, hi);
#else
    V lo = c >= 8 ? v_load(p) : v_load_n(p, c), hi = c > 8 ? v_load_n(p + 8, c - 8) : v_zero();
    V sh = _mm256_shuffle_ps(lo, hi, 0x88); /* a0 a2 b0 b2 a4 a6 b4 b6 */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(sh), 0xD8));
#endif
}

static void KL_SIMD_FN(vo_max_cols)(const float *t, size_t s, size_t kw, size_t n, float *y) {
    if (s > 2 || kw == 0) {
        for (size_t o = 0; o < n; o++) {
            float m = t[o * s];
            for (size_t k = 1; k < kw; k++) m = t[o * s + k] > m ? t[o * s + k] : m;
            y[o] = m;
        }
        return;
    }
    for (size_t o = 0; o < n; o += VL) {
        size_t m = n - o < (size_t)VL ? n - o : (size_t)VL;
        const float *p = t + o * s;
        V acc;
        if (s == 1) {
            acc = m == VL ? v_load(p) : v_load_n(p, m);
            for (size_t k = 1; k < kw; k++) acc = v_max(m == VL ? v_load(p + k) : v_load_n(p + k, m), acc);
        } else {
            acc = vo_load_even_n(p, m);
            for (size_t k = 1; k < kw; k++) acc = v_max(vo_load_even_n(p + k, m), acc);
        }
        if (m == VL) v_store(y + o, acc);
        else v_store_n(y + o, acc, m);
    }
}

/* v_max(r, m) keeps m where r is NaN, so starting from -inf skips NaNs as max_into does. */
static void KL_SIMD_FN(vo_max_rows)(float *t, const float *const *r, size_t nr, size_t n) {
    const V ninf = v_set1(-INFINITY);
    size_t i = 0;
    if (nr == 3) { /* 3x3 and 3x3/2 windows: the common case, unrolled */
        const float *a = r[0], *b = r[1], *c = r[2];
        for (; i + VL <= n; i += VL)
            v_store(t + i, v_max(v_load(c + i), v_max(v_load(b + i), v_max(v_load(a + i), ninf))));
    }
    for (; i + VL <= n; i += VL) {
        V m = ninf;
        for (size_t k = 0; k < nr; k++) m = v_max(v_load(r[k] + i), m);
        v_store(t + i, m);
    }
    if (i < n) {
        V m = ninf;
        for (size_t k = 0; k < nr; k++) m = v_max(v_load_n(r[k] + i, n - i), m);
        v_store_n(t + i, m, n - i);
    }
}

#define KL_VEC_KERNELS_TABLE(name)                                                                   \
    const kl_vec_kernels name = {KL_SIMD_FN(vo_step),        KL_SIMD_FN(vo_norm),     KL_SIMD_FN(vo_softmax_rows), \
                                 KL_SIMD_FN(vo_softmax_cols), KL_SIMD_FN(vo_plane_mean), KL_SIMD_FN(vo_matvec),   \
                                 KL_SIMD_FN(vo_max_into),    KL_SIMD_FN(vo_max_cols),  KL_SIMD_FN(vo_max_rows)};

#endif
