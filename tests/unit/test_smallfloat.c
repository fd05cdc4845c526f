/*
 * test_smallfloat.c — the shared narrow-float encoder (kl_sf_encode) against
 * a straightforward reference written here from the format definitions:
 * decode every code, pick the nearest by brute force (ties to the even
 * code), then apply the ONNX overflow, saturation and NaN rules.  Inputs
 * sweep float32 bit patterns: every exponent field (0..255) with 518
 * mantissas each, both signs, plus each format's exact midpoints and their
 * float32 neighbours, infinities and NaN.  float16 / bfloat16 are compared
 * with core's own converters, float8e8m0 with its power-of-two rules in
 * all three rounding modes.  Finally the three users (Cast's setter,
 * QuantizeLinear's encoder, the generic kl_rt_set_f64) must give the shared
 * encoder's codes, so they can no longer disagree.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "backend/kernel.h"
#include "backend/smallfloat.h"
#include "cpu/ref/elementwise.h"
#include "cpu/ref/quant.h"

/* ---- the reference ------------------------------------------------------------ */

typedef enum fmt_kind { K_FN, K_IEEE, K_FNUZ, K_FP4 } fmt_kind;

typedef struct ref_fmt {
    kiln_dtype t;
    const char *name;
    int ebits, mbits, bias;
    fmt_kind kind;
    unsigned nbits;
} ref_fmt;

static const ref_fmt g_fmts[] = {
    {KILN_DTYPE_FLOAT8E4M3FN, "e4m3fn", 4, 3, 7, K_FN, 8},
    {KILN_DTYPE_FLOAT8E4M3FNUZ, "e4m3fnuz", 4, 3, 8, K_FNUZ, 8},
    {KILN_DTYPE_FLOAT8E5M2, "e5m2", 5, 2, 15, K_IEEE, 8},
    {KILN_DTYPE_FLOAT8E5M2FNUZ, "e5m2fnuz", 5, 2, 16, K_FNUZ, 8},
    {KILN_DTYPE_FLOAT4E2M1, "e2m1", 2, 1, 1, K_FP4, 4},
};

/* Value of positive code c (sign bit clear); false when c is NaN or inf. */
static bool ref_value(const ref_fmt *f, unsigned c, double *v) {
    unsigned e = c >> f->mbits, m = c & ((1u << f->mbits) - 1), emax = (1u << f->ebits) - 1;
    if (f->kind == K_FN && e == emax && m == (1u << f->mbits) - 1) return false;
    if (f->kind == K_IEEE && e == emax) return false;
    *v = e == 0 ? ldexp((double)m, 1 - f->bias - f->mbits) : ldexp((double)((1u << f->mbits) | m), (int)e - f->bias - f->mbits);
    return true;
}

/* Largest finite positive code. */
static unsigned ref_maxc(const ref_fmt *f) {
    unsigned c = (1u << (f->nbits - 1)) - 1;
    double v;
    while (!ref_value(f, c, &v)) c--;
    return c;
}

/* The code ONNX gives x in format f. */
static unsigned ref_encode(const ref_fmt *f, float x, bool saturate) {
    unsigned sign = signbit(x) ? 1u << (f->nbits - 1) : 0;
    if (isnan(x)) return f->kind == K_FNUZ ? 0x80 : f->kind == K_FP4 ? 0x8 : 0x7f | sign;
    if (f->kind == K_FP4) saturate = true;
    double a = fabs((double)x), maxv;
    unsigned maxc = ref_maxc(f);
    ref_value(f, maxc, &maxv);
    /* The code after max (an exponent step when max ends the binade). */
    double above = maxv + ldexp(1.0, (int)(maxc >> f->mbits) - f->bias - f->mbits);
    /* Linear scan for the last code c with value <= a (codes are ordered
     * by value), then the midpoint to the next one decides, ties to the
     * even code.  Midpoints are exact in double; no distances are
     * subtracted, so tiny and huge inputs compare exactly. */
    bool over = isinf(a);
    unsigned best = 0;
    if (!over) {
        unsigned c = 0;
        for (unsigned d = 1; d <= maxc; d++) {
            double v;
            ref_value(f, d, &v);
            if (v <= a) c = d;
        }
        double lo, hi = above;
        ref_value(f, c, &lo);
        if (c < maxc) ref_value(f, c + 1, &hi);
        double mid = (lo + hi) / 2;
        best = a < mid ? c : a > mid ? c + 1 : (c & 1) ? c + 1 : c;
        if (best > maxc) over = true;
    }
    if (over) {
        if (saturate) best = maxc;
        else if (f->kind == K_FN) return 0x7f | sign;
        else if (f->kind == K_IEEE) return 0x7c | sign;
        else return 0x80; /* fnuz: NaN */
    }
    if (f->kind == K_FNUZ && best == 0) return 0;
    return best | sign;
}

/* float8e8m0 reference: |x|'s power of two per the rounding mode, from the
 * value (float32 normals); float32 subnormals follow the ONNX bit rule
 * (code 0, or 1 when rounded up by the mantissa). */
static unsigned ref_e8m0(float x, bool saturate, kl_sf_round mode) {
    if (isnan(x) || isinf(x)) return 0xff;
    double a = fabs((double)x);
    if (a < 0x1p-126) {
        if (a == 0) return 0;
        if (mode == KL_SF_ROUND_UP) return 1;
        /* The bit rule (guard bit and any lower bit) moves every subnormal
         * above 2^-127 up, not only those past 1.5 * 2^-127. */
        if (mode == KL_SF_ROUND_NEAREST) return a > 0x1p-127 ? 1 : 0;
        return 0;
    }
    int k = (int)floor(log2(a)); /* 2^k <= a < 2^(k+1) */
    if (ldexp(1.0, k) > a) k--;
    if (ldexp(1.0, k + 1) <= a) k++;
    double lo = ldexp(1.0, k);
    bool up = mode == KL_SF_ROUND_UP ? a > lo : mode == KL_SF_ROUND_NEAREST ? a >= 1.5 * lo : false;
    int code = k + 127 + up;
    if (code > 254) return saturate ? 254 : 255;
    return (unsigned)code;
}

/* ---- inputs ---------------------------------------------------------------------- */

static float *g_in;
static size_t g_n;

/* Push a float32 from its bits. */
static void push_bits(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    g_in[g_n++] = f;
}

/* Every exponent field with 518 mantissas, both signs, plus each format's
 * midpoints between adjacent codes and their float32 neighbours. */
static void make_inputs(void) {
    g_in = malloc(sizeof *g_in * 600000);
    g_n = 0;
    static const uint32_t fixed[] = {0, 1, 2, 0x3fffff, 0x400000, 0x400001, 0x7ffffe, 0x7fffff};
    for (uint32_t s = 0; s < 2; s++)
        for (uint32_t e = 0; e < 256; e++) {
            for (size_t j = 0; j < KL_ARRAY_LEN(fixed); j++) push_bits(s << 31 | e << 23 | fixed[j]);
            for (uint32_t j = 0; j < 510; j++) push_bits(s << 31 | e << 23 | ((j * 16411u + 977u) & 0x7fffff));
        }
    for (size_t k = 0; k < KL_ARRAY_LEN(g_fmts); k++) {
        const ref_fmt *f = &g_fmts[k];
        unsigned maxc = ref_maxc(f);
        double maxv;
        ref_value(f, maxc, &maxv);
        for (unsigned c = 0; c <= maxc; c++) {
            double v, w;
            ref_value(f, c, &v);
            if (c < maxc) ref_value(f, c + 1, &w);
            else w = maxv + ldexp(1.0, (int)(maxc >> f->mbits) - f->bias - f->mbits);
            float mid = (float)((v + w) / 2), vals[5] = {mid, nextafterf(mid, 0), nextafterf(mid, INFINITY), (float)v,
                                                         nextafterf((float)w, INFINITY)};
            for (int i = 0; i < 5; i++) {
                g_in[g_n++] = vals[i];
                g_in[g_n++] = -vals[i];
            }
        }
    }
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_float8_float4(void) {
    for (size_t k = 0; k < KL_ARRAY_LEN(g_fmts); k++) {
        const ref_fmt *f = &g_fmts[k];
        for (int sat = 0; sat < 2; sat++) {
            size_t bad = 0;
            for (size_t i = 0; i < g_n; i++) {
                unsigned want = ref_encode(f, g_in[i], sat), got = kl_sf_encode(f->t, g_in[i], sat, KL_SF_ROUND_NEAREST);
                if (want != got && bad++ < 5)
                    fprintf(stderr, "    %s saturate=%d x=%a: got 0x%x, reference 0x%x\n", f->name, sat,
                            (double)g_in[i], got, want);
            }
            KT_CHECK_EQ_INT(bad, 0);
        }
        /* Decoding every code agrees with the reference's values. */
        size_t bad = 0;
        for (unsigned c = 0; c < (1u << f->nbits); c++) {
            double v;
            float got = kl_small_to_f32(f->t, (uint8_t)c);
            unsigned pos = c & ((1u << (f->nbits - 1)) - 1);
            bool neg = c >> (f->nbits - 1);
            if (f->kind == K_FNUZ && c == 0x80) bad += !isnan(got);
            else if (!ref_value(f, pos, &v)) bad += !(isnan(got) || isinf(got));
            else bad += (double)got != (neg ? -v : v) || (bool)signbit(got) != neg;
        }
        KT_CHECK_EQ_INT(bad, 0);
    }
    fprintf(stderr, "    %zu float32 inputs per format and saturate mode\n", g_n);
}

static void test_float16_bfloat16(void) {
    size_t bad16 = 0, badb = 0, n = 0;
    for (uint64_t b = 0; b < (1ull << 32); b += 251) {
        float x;
        uint32_t u = (uint32_t)b;
        memcpy(&x, &u, sizeof x);
        n++;
        uint16_t h = kl_sf_encode(KILN_DTYPE_FLOAT16, x, true, KL_SF_ROUND_NEAREST);
        uint16_t g = kl_sf_encode(KILN_DTYPE_BFLOAT16, x, true, KL_SF_ROUND_NEAREST);
        if (isnan(x)) {
            bad16 += !isnan(kl_f16_to_f32(h));
            badb += !isnan(kl_bf16_to_f32(g));
        } else {
            bad16 += h != kl_f32_to_f16(x);
            badb += g != kl_f32_to_bf16(x);
        }
    }
    fprintf(stderr, "    %zu float32 patterns (stride 251)\n", n);
    KT_CHECK_EQ_INT(bad16, 0);
    KT_CHECK_EQ_INT(badb, 0);
    /* From double, one rounding: 1 + 2^-11 + 2^-40 is above the float16
     * midpoint and must round up, although (float) of it would tie. */
    double x = 1.0 + 0x1p-11 + 0x1p-40;
    KT_CHECK_EQ_INT(kl_sf_encode(KILN_DTYPE_FLOAT16, x, true, KL_SF_ROUND_NEAREST), 0x3c01);
}

static void test_e8m0(void) {
    static const kl_sf_round modes[3] = {KL_SF_ROUND_UP, KL_SF_ROUND_DOWN, KL_SF_ROUND_NEAREST};
    for (int m = 0; m < 3; m++)
        for (int sat = 0; sat < 2; sat++) {
            size_t bad = 0;
            for (size_t i = 0; i < g_n; i++) {
                unsigned want = ref_e8m0(g_in[i], sat, modes[m]), got = kl_sf_encode(KILN_DTYPE_FLOAT8E8M0, g_in[i], sat, modes[m]);
                if (want != got && bad++ < 5)
                    fprintf(stderr, "    e8m0 mode=%d saturate=%d x=%a: got 0x%x, reference 0x%x\n", m, sat,
                            (double)g_in[i], got, want);
            }
            KT_CHECK_EQ_INT(bad, 0);
        }
    KT_CHECK_EQ_INT(kl_sf_encode(KILN_DTYPE_FLOAT8E8M0, 1.5, true, KL_SF_ROUND_NEAREST), 128);
    KT_CHECK_EQ_INT(kl_sf_encode(KILN_DTYPE_FLOAT8E8M0, 1.25, true, KL_SF_ROUND_NEAREST), 127);
    KT_CHECK_EQ_INT(kl_sf_encode(KILN_DTYPE_FLOAT8E8M0, 1.25, true, KL_SF_ROUND_UP), 128);
    KT_CHECK_EQ_INT(kl_sf_encode(KILN_DTYPE_FLOAT8E8M0, 1.75, true, KL_SF_ROUND_DOWN), 127);
    for (unsigned c = 0; c < 255; c++) KT_CHECK(kl_small_to_f32(KILN_DTYPE_FLOAT8E8M0, (uint8_t)c) == ldexpf(1.0f, (int)c - 127));
    KT_CHECK(isnan(kl_small_to_f32(KILN_DTYPE_FLOAT8E8M0, 0xff)));
}

/* Element i of t's code (float4: its nibble). */
static unsigned code_at(const kl_rt *t, int64_t i) {
    const uint8_t *d = t->data;
    return t->dtype == KILN_DTYPE_FLOAT4E2M1 ? (d[i / 2] >> (4 * (i % 2))) & 15 : d[i];
}

/* Cast's setter (kl_ew_set_f64, Cast's defaults), the generic setter
 * (kl_rt_set_f64) and QuantizeLinear's encoder all give the shared
 * encoder's codes: saturate, round-up e8m0, float4 NaN = 0x8. */
static void test_users_agree(void) {
    static const kiln_dtype types[] = {KILN_DTYPE_FLOAT8E4M3FN, KILN_DTYPE_FLOAT8E4M3FNUZ, KILN_DTYPE_FLOAT8E5M2,
                                       KILN_DTYPE_FLOAT8E5M2FNUZ, KILN_DTYPE_FLOAT4E2M1, KILN_DTYPE_FLOAT8E8M0};
    for (size_t k = 0; k < KL_ARRAY_LEN(types); k++) {
        kiln_dtype t = types[k];
        int64_t dims[1] = {2};
        kl_rt *a = NULL, *b = NULL;
        KT_CHECK_EQ_INT(kl_rt_tensor(t, 1, dims, &a), KILN_OK);
        KT_CHECK_EQ_INT(kl_rt_tensor(t, 1, dims, &b), KILN_OK);
        if (!a || !b) {
            kl_rt_unref(a);
            kl_rt_unref(b);
            continue;
        }
        size_t bad_generic = 0, bad_cast = 0, bad_quant = 0;
        for (size_t i = 0; i < g_n; i++) {
            float x = g_in[i];
            unsigned want = kl_sf_encode(t, x, true, KL_SF_ROUND_UP);
            kl_rt_set_f64(a, (int64_t)(i & 1), x);
            kl_ew_set_f64(b, (int64_t)(i & 1), x);
            bad_generic += code_at(a, (int64_t)(i & 1)) != want;
            bad_cast += code_at(b, (int64_t)(i & 1)) != want;
            if (t != KILN_DTYPE_FLOAT8E8M0)
                for (int sat = 0; sat < 2; sat++)
                    bad_quant += kl_quant_f32_to_small(t, x, sat) != kl_sf_encode(t, x, sat, KL_SF_ROUND_NEAREST);
        }
        KT_CHECK_EQ_INT(bad_generic, 0);
        KT_CHECK_EQ_INT(bad_cast, 0);
        KT_CHECK_EQ_INT(bad_quant, 0);
        kl_rt_unref(a);
        kl_rt_unref(b);
    }
    /* The two disagreements of the last round, now settled. */
    KT_CHECK_EQ_INT(kl_quant_f32_to_small(KILN_DTYPE_FLOAT4E2M1, NAN, true), 0x8);
    KT_CHECK_EQ_INT(kl_sf_encode(KILN_DTYPE_FLOAT4E2M1, NAN, true, KL_SF_ROUND_UP), 0x8);
    int64_t one[1] = {1};
    kl_rt *e = NULL;
    KT_CHECK_EQ_INT(kl_rt_tensor(KILN_DTYPE_FLOAT8E8M0, 1, one, &e), KILN_OK);
    if (e) {
        kl_rt_set_f64(e, 0, 1.25); /* Cast's default rounds up: 2 */
        KT_CHECK_EQ_INT(((uint8_t *)e->data)[0], 128);
        KT_CHECK(kl_rt_get_f64(e, 0) == 2.0);
    }
    kl_rt_unref(e);
}

int main(void) {
    make_inputs();
    KT_RUN(test_float8_float4);
    KT_RUN(test_float16_bfloat16);
    KT_RUN(test_e8m0);
    KT_RUN(test_users_agree);
    free(g_in);
    return kt_summary();
}
