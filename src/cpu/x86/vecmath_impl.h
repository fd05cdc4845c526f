/*
 * vecmath_impl.h — vector exp/tanh/erf and every activation of vecmath.h,
 * written once over simd.h and compiled per ISA (included by the *_avx2.c and
 * *_avx512.c files only).  Accuracy targets: exp ~1 ulp (Cephes polynomial
 * with Cody-Waite reduction, subnormal results kept by a two-step scaling);
 * tanh, erf, sigmoid ~1e-6 relative or better.  NaN inputs give NaN.
 */
#ifndef KL_CPU_X86_VECMATH_IMPL_H
#define KL_CPU_X86_VECMATH_IMPL_H

#include "cpu/x86/simd.h"
#include "cpu/x86/vecmath.h"

/* exp(x); x > 88.72 gives about FLT_MAX, x < -103.97 gives 0. */
KL_INL V vm_exp(V x) {
    x = v_min(v_set1(88.7228393f), x);
    x = v_max(v_set1(-103.972084f), x);
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
#if defined(KL_SIMD_AVX512)
    return _mm512_scalef_ps(p, n); /* p 2^n in one rounding, subnormal results included */
#else
    VI ni = v_cvt_i(n);
    VI n1 = vi_srai1(ni);
    VI n2 = vi_sub(ni, n1);
    return v_mul(v_mul(p, v_pow2i(n1)), v_pow2i(n2));
#endif
}

/* 1/(1+exp(-x)) as r = 1/(1+e), e = exp(-|x|), and e*r for x < 0 (no
 * overflow; tiny results keep their relative accuracy).  The reciprocal of
 * 1+e in [1, 2] is an estimate refined by Newton steps (~1 ulp; a division
 * costs several times more on Zen 4 and it dominated SiLU epilogues).
 * AVX-512 scales exp's polynomial with scalef (subnormal results included). */
KL_INL V vm_sigmoid(V x) {
    V one = v_set1(1.0f);
    V nx = v_or(x, v_set1(-0.0f)); /* -|x| (AVX-512) */
#if defined(KL_SIMD_AVX512)
    /* e = 2^t, t = -|x| log2(e) (|x| capped at 103.97: e rounds to 0 from
     * there on); t = floor(t) + r with r in [0, 1) by vreduceps (exact),
     * 2^r by a degree-5 fit on [0, 1) (relative error 1.6e-7 in float),
     * scaled by 2^floor(t) with scalef (subnormal results included).  The
     * rounding of t costs what a half-ulp change of x does (the tests'
     * conditioning term), so t is not split into hi + lo.  The result is
     * q = 1/(1+e), times e where x < 0 (sign bits as the mask: -0 gives
     * e*q = 1/2, NaN stays NaN). */
    V nc = v_max(v_set1(-103.972084f), nx);
    V t = v_mul(nc, v_set1(1.44269504088896341f));
    V r = _mm512_reduce_ps(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    V p = v_set1(1.87757274e-3f);
    p = v_fma(p, r, v_set1(8.98934435e-3f));
    p = v_fma(p, r, v_set1(5.58263175e-2f));
    p = v_fma(p, r, v_set1(2.40153611e-1f));
    p = v_fma(p, r, v_set1(6.93153083e-1f));
    p = v_fma(p, r, v_set1(9.99999940e-1f));
    V e = _mm512_scalef_ps(p, t);
    V d = v_add(one, e);
    V q = _mm512_rcp14_ps(d);
    q = v_fma(q, v_fnma(d, q, one), q);
    return _mm512_mask_mul_ps(q, _mm512_movepi32_mask(_mm512_castps_si512(x)), e, q);
#else
    /* AVX2: no |x| and no blend.  q = 1/(1+e), e = 2^t, t = -x log2(e):
     * 1+e and the reciprocal keep their relative accuracy for large e, so
     * x < 0 needs no e*q branch.  Everything runs scaled by 2^-64 so that
     * subnormal results come out right: t is clamped to [-62, 151] (e below
     * 2^-62 leaves 1+e = 1; past 151 the result is under half the smallest
     * subnormal); t = n + r, n = round(t), 2^r by a degree-5 fit on
     * [-1/2, 1/2] (relative 1.6e-7) with coefficients carrying 2^-64, 2^n
     * added to its exponent field as an integer (a normal float from 2^-126
     * to 2^88); d = 2^-64 + e 2^-64 and the result 2^-64 / d, one rounding
     * (into the subnormals where the result is that small).  A ymm division
     * beat the reciprocal estimate with a Newton step and a multiply by
     * 2^-64 on Zen 4 (SiLU over 4096 floats: 0.264 vs 0.327 ns per float;
     * zmm divisions are what made AVX-512 take the estimate).  15 vector ops
     * where the symmetric form with vm_exp's two-step scaling took 27 (no
     * Cody-Waite split, see above: t's rounding costs ~3e-6 relative near
     * |x| = 88). */
    (void)nx;
    V t = v_mul(x, v_set1(-1.44269504088896341f));
    t = v_min(v_set1(151.0f), v_max(v_set1(-62.0f), t)); /* NaN stays NaN */
    V n = v_round(t);
    V r = v_sub(t, n);
    V p = v_set1(1.3276442e-3f * 0x1p-64f);
    p = v_fma(p, r, v_set1(9.6755419e-3f * 0x1p-64f));
    p = v_fma(p, r, v_set1(5.5507135e-2f * 0x1p-64f));
    p = v_fma(p, r, v_set1(2.4022120e-1f * 0x1p-64f));
    p = v_fma(p, r, v_set1(6.9314694e-1f * 0x1p-64f));
    p = v_fma(p, r, v_set1(1.0000001f * 0x1p-64f));
    V e = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), _mm256_slli_epi32(v_cvt_i(n), 23)));
    V d = v_add(v_set1(0x1p-64f), e);
    (void)one;
    return v_div(v_set1(0x1p-64f), d);
#endif
}

/* tanh: odd Taylor series below 0.4, 1-2/(exp(2|x|)+1) above, sign restored. */
KL_INL V vm_tanh(V x) {
    V ax = v_abs(x);
    V sign = v_and(x, v_set1(-0.0f));
    V x2 = v_mul(x, x);
    V p = v_set1(-929569.0f / 638512875.0f);
    p = v_fma(p, x2, v_set1(21844.0f / 6081075.0f));
    p = v_fma(p, x2, v_set1(-1382.0f / 155925.0f));
    p = v_fma(p, x2, v_set1(62.0f / 2835.0f));
    p = v_fma(p, x2, v_set1(-17.0f / 315.0f));
    p = v_fma(p, x2, v_set1(2.0f / 15.0f));
    p = v_fma(p, x2, v_set1(-1.0f / 3.0f));
    V small = v_fma(v_mul(p, x2), x, x);
    V e = vm_exp(v_add(ax, ax));
    V big = v_sub(v_set1(1.0f), v_div(v_set1(2.0f), v_add(e, v_set1(1.0f))));
    big = v_or(big, sign);
    return v_blend(v_lt(ax, v_set1(0.4f)), big, small);
}

/* erfc(u) for u >= 1 as exp(-u^2) * h(1/u) / u, h a degree-10 fit of
 * u*erfc(u)*exp(u^2) on [1, 10] (relative error < 4e-7 in float); u^2 is
 * split (hi + lo) so exp(-u^2) keeps its accuracy for large u. */
KL_INL V vm_erfc_big(V u) {
    VM huge = v_ge(u, v_set1(10.0f)); /* erfc(10) ~ 2e-45: 0 from there on */
    u = v_min(u, v_set1(10.0f));
    V t = v_div(v_set1(1.0f), u);
    V h = v_set1(-6.459559093e-02f);
    h = v_fma(h, t, v_set1(3.256438029e-01f));
    h = v_fma(h, t, v_set1(-6.186014583e-01f));
    h = v_fma(h, t, v_set1(3.914008207e-01f));
    h = v_fma(h, t, v_set1(4.310882626e-01f));
    h = v_fma(h, t, v_set1(-1.029771989e+00f));
    h = v_fma(h, t, v_set1(7.726972295e-01f));
    h = v_fma(h, t, v_set1(-7.025695306e-02f));
    h = v_fma(h, t, v_set1(-2.736721662e-01f));
    h = v_fma(h, t, v_set1(-5.532099358e-04f));
    h = v_fma(h, t, v_set1(5.642048035e-01f));
    V hi = v_mul(u, u);
    V lo = v_fms(u, u, hi);
    V e = vm_exp(v_xor(hi, v_set1(-0.0f)));
    e = v_fnma(e, lo, e); /* exp(-hi-lo) ~ exp(-hi)*(1-lo) */
    return v_blend(huge, v_mul(v_mul(e, h), t), v_zero());
}

/* erf(u) for |u| < 1: Taylor series of 2/sqrt(pi) * sum (-1)^n u^(2n+1)/(n!(2n+1)). */
KL_INL V vm_erf_small(V u) {
    V u2 = v_mul(u, u);
    /* coefficients c_n = (-1)^n / (n! (2n+1)) for n = 10 .. 0 */
    V p = v_set1(1.0f / (3628800.0f * 21.0f));
    p = v_fma(p, u2, v_set1(-1.0f / (362880.0f * 19.0f)));
    p = v_fma(p, u2, v_set1(1.0f / (40320.0f * 17.0f)));
    p = v_fma(p, u2, v_set1(-1.0f / (5040.0f * 15.0f)));
    p = v_fma(p, u2, v_set1(1.0f / (720.0f * 13.0f)));
    p = v_fma(p, u2, v_set1(-1.0f / (120.0f * 11.0f)));
    p = v_fma(p, u2, v_set1(1.0f / (24.0f * 9.0f)));
    p = v_fma(p, u2, v_set1(-1.0f / (6.0f * 7.0f)));
    p = v_fma(p, u2, v_set1(1.0f / (2.0f * 5.0f)));
    p = v_fma(p, u2, v_set1(-1.0f / 3.0f));
    p = v_fma(p, u2, v_set1(1.0f));
    return v_mul(v_mul(p, u), v_set1(1.1283791670955126f));
}

/* 1 + erf(u), accurate also where it is small (u << 0). */
KL_INL V vm_one_plus_erf(V u) {
    V au = v_abs(u);
    V one = v_set1(1.0f);
    V es = vm_erf_small(u);          /* valid for |u| < 1 */
    V ec = vm_erfc_big(v_max(au, one)); /* valid for |u| >= 1 */
    V small = v_add(one, es);
    V big = v_blend(v_lt(u, v_zero()), v_sub(v_set1(2.0f), ec), ec);
    return v_blend(v_lt(au, one), big, small);
}

KL_INL V vm_erf(V u) { return v_sub(vm_one_plus_erf(u), v_set1(1.0f)); }

/* x/2 * (1 + erf(u)), u = x/sqrt(2), from one form for every u:
 * erfc(z) = exp(-z^2) Q(t), z = |u|, t = 1/(1 + z/2) in [1/6, 1] for z in
 * [0, 10], Q of degree 9 a weighted least-squares fit of erfc(z) exp(z^2)
 * (relative error 3.5e-8 in exact arithmetic, below 5e-7 in float on
 * [0, 10]); 1 + erf(u) = 2 - erfc(z) for u >= 0 and erfc(z) otherwise, so
 * the tail keeps its relative accuracy; z^2 is split (hi + lo) for exp as
 * in vm_erfc_big.  exp(-z^2) and Q(t) are independent chains, and there is
 * one polynomial where vm_one_plus_erf evaluates two. */
KL_INL V vm_gelu_erf(V x) {
    V u = v_mul(x, v_set1(0.70710678118654752f));
    V au = v_abs(u);
    VM huge = v_ge(au, v_set1(10.0f)); /* erfc(10) ~ 2e-45: 0 from there on */
    V z = v_min(au, v_set1(10.0f));
#if defined(KL_SIMD_AVX512)
    /* zmm divisions are slow on Zen 4: the estimate and a Newton step (d in [1, 6]) */
    V d = v_fma(z, v_set1(0.5f), v_set1(1.0f));
    V t = _mm512_rcp14_ps(d);
    t = v_fma(t, v_fnma(d, t, v_set1(1.0f)), t);
#else
    V t = v_div(v_set1(1.0f), v_fma(z, v_set1(0.5f), v_set1(1.0f)));
#endif
    V q = v_set1(-5.595061563e-02f);
    q = v_fma(q, t, v_set1(2.684574420e-01f));
    q = v_fma(q, t, v_set1(-4.513728178e-01f));
    q = v_fma(q, t, v_set1(2.332563021e-01f));
    q = v_fma(q, t, v_set1(8.011047060e-03f));
    q = v_fma(q, t, v_set1(1.855891944e-01f));
    q = v_fma(q, t, v_set1(2.484750160e-01f));
    q = v_fma(q, t, v_set1(2.813430543e-01f));
    q = v_fma(q, t, v_set1(2.821962677e-01f));
    q = v_fma(q, t, v_set1(-4.925175098e-06f));
    V hi = v_mul(z, z);
    V lo = v_fms(z, z, hi);
    V e = vm_exp(v_xor(hi, v_set1(-0.0f)));
    e = v_fnma(e, lo, e); /* exp(-hi-lo) ~ exp(-hi)*(1-lo) */
    V ec = v_blend(huge, v_mul(e, q), v_zero());
    V ope = v_blend(v_lt(u, v_zero()), v_sub(v_set1(2.0f), ec), ec);
    V r = v_mul(v_mul(x, v_set1(0.5f)), ope);
    return v_blend(v_isnan(x), r, x);
}

/* x/2*(1+tanh(y)) = x*sigmoid(2y), y = sqrt(2/pi)*(x+0.044715x^3). */
KL_INL V vm_gelu_tanh(V x) {
    V x3 = v_mul(v_mul(x, x), x);
    V y2 = v_mul(v_fma(x3, v_set1(0.044715f), x), v_set1(2.0f * 0.79788456080286536f));
    return v_mul(x, vm_sigmoid(y2));
}

/* x*tanh(softplus(x)) = x*n/(n+2), n = e^x (e^x + 2); x for x > 20. */
KL_INL V vm_mish(V x) {
    V e = vm_exp(v_min(v_set1(20.0f), x));
    V n = v_mul(e, v_add(e, v_set1(2.0f)));
    V r = v_div(v_mul(x, n), v_add(n, v_set1(2.0f)));
    return v_blend(v_lt(v_set1(20.0f), x), r, x);
}

/* One activation on one vector.  The kind is a run-time value; callers hoist
 * the switch out of loops where it matters (see vm_act_array). */
KL_INL V vm_act(V x, kl_act_kind kind, V va, V vb) {
    switch (kind) {
    case KL_ACT_NONE: return x;
    case KL_ACT_RELU: return v_max(v_zero(), x);
    case KL_ACT_CLIP: return v_min(vb, v_max(va, x));
    case KL_ACT_LEAKY_RELU: return v_blend(v_lt(x, v_zero()), x, v_mul(x, va));
    case KL_ACT_SIGMOID: return vm_sigmoid(x);
    case KL_ACT_SILU: return v_mul(x, vm_sigmoid(x));
    case KL_ACT_HARD_SIGMOID: return v_max(v_zero(), v_min(v_set1(1.0f), v_fma(x, va, vb)));
    case KL_ACT_HARD_SWISH:
        return v_mul(x, v_max(v_zero(), v_min(v_set1(1.0f), v_fma(x, v_set1(1.0f / 6.0f), v_set1(0.5f)))));
    case KL_ACT_GELU_ERF: return vm_gelu_erf(x);
    case KL_ACT_GELU_TANH: return vm_gelu_tanh(x);
    case KL_ACT_MISH: return vm_mish(x);
    case KL_ACT_TANH: return vm_tanh(x);
    default: return x;
    }
}

/* The cheap activations only (vm_act_is_cheap); others pass x through.  Small
 * enough to inline at every store of a kernel. */
KL_INL V vm_act_cheap(V x, kl_act_kind kind, V va, V vb) {
    switch (kind) {
    case KL_ACT_RELU: return v_max(v_zero(), x);
    case KL_ACT_CLIP: return v_min(vb, v_max(va, x));
    case KL_ACT_LEAKY_RELU: return v_blend(v_lt(x, v_zero()), x, v_mul(x, va));
    case KL_ACT_HARD_SIGMOID: return v_max(v_zero(), v_min(v_set1(1.0f), v_fma(x, va, vb)));
    case KL_ACT_HARD_SWISH:
        return v_mul(x, v_max(v_zero(), v_min(v_set1(1.0f), v_fma(x, v_set1(1.0f / 6.0f), v_set1(0.5f)))));
    default: return x;
    }
}

/* True for the activations cheap enough to apply inline in a kernel's store. */
KL_INL int vm_act_is_cheap(kl_act_kind kind) {
    return kind == KL_ACT_NONE || kind == KL_ACT_RELU || kind == KL_ACT_CLIP || kind == KL_ACT_LEAKY_RELU ||
           kind == KL_ACT_HARD_SIGMOID || kind == KL_ACT_HARD_SWISH;
}

#define KL_VM_ACT_LOOP(KIND)                                                   \
    do {                                                                       \
        size_t i_ = 0;                                                         \
        for (; i_ + VL <= n; i_ += VL) v_store(x + i_, vm_act(v_load(x + i_), KIND, va, vb)); \
        if (i_ < n) v_store_n(x + i_, vm_act(v_load_n(x + i_, n - i_), KIND, va, vb), n - i_); \
    } while (0)

/* x[0..n) = act(x), one specialised loop per kind. */
static inline void vm_act_array(kl_act act, float *x, size_t n) {
    V va = v_set1(act.alpha), vb = v_set1(act.beta);
    switch (act.kind) {
    case KL_ACT_NONE: break;
    case KL_ACT_RELU: KL_VM_ACT_LOOP(KL_ACT_RELU); break;
    case KL_ACT_CLIP: KL_VM_ACT_LOOP(KL_ACT_CLIP); break;
    case KL_ACT_LEAKY_RELU: KL_VM_ACT_LOOP(KL_ACT_LEAKY_RELU); break;
    case KL_ACT_SIGMOID: KL_VM_ACT_LOOP(KL_ACT_SIGMOID); break;
    case KL_ACT_SILU: KL_VM_ACT_LOOP(KL_ACT_SILU); break;
    case KL_ACT_HARD_SIGMOID: KL_VM_ACT_LOOP(KL_ACT_HARD_SIGMOID); break;
    case KL_ACT_HARD_SWISH: KL_VM_ACT_LOOP(KL_ACT_HARD_SWISH); break;
    case KL_ACT_GELU_ERF: KL_VM_ACT_LOOP(KL_ACT_GELU_ERF); break;
    case KL_ACT_GELU_TANH: KL_VM_ACT_LOOP(KL_ACT_GELU_TANH); break;
    case KL_ACT_MISH: KL_VM_ACT_LOOP(KL_ACT_MISH); break;
    case KL_ACT_TANH: KL_VM_ACT_LOOP(KL_ACT_TANH); break;
    default: break;
    }
}

#endif
