/* Narrow float formats (float16, bfloat16, float8, float4): the one encoder
 * and decoder of kiln (see smallfloat.h for the rules). */
#include <math.h>
#include <string.h>

#include "backend/smallfloat.h"

/* A binary float format: mantissa bits, exponent bias, bits per element,
 * largest finite value, and the fnuz flag (no -0, 0x80 is NaN). */
typedef struct kl_fmt {
    int mbits, bias, nbits;
    double max;
    bool uz;
} kl_fmt;

/* Parameters of format t; false for types that are not such formats
 * (e8m0, which is a bare exponent, included). */
static bool kl_fmt_of(kiln_dtype t, kl_fmt *f) {
    switch (t) {
    case KILN_DTYPE_FLOAT16: *f = (kl_fmt){10, 15, 16, 65504.0, false}; return true;
    case KILN_DTYPE_BFLOAT16: *f = (kl_fmt){7, 127, 16, 0x1.fep127, false}; return true;
    case KILN_DTYPE_FLOAT8E4M3FN: *f = (kl_fmt){3, 7, 8, 448.0, false}; return true;
    case KILN_DTYPE_FLOAT8E4M3FNUZ: *f = (kl_fmt){3, 8, 8, 240.0, true}; return true;
    case KILN_DTYPE_FLOAT8E5M2: *f = (kl_fmt){2, 15, 8, 57344.0, false}; return true;
    case KILN_DTYPE_FLOAT8E5M2FNUZ: *f = (kl_fmt){2, 16, 8, 57344.0, true}; return true;
    case KILN_DTYPE_FLOAT4E2M1: *f = (kl_fmt){1, 1, 4, 6.0, false}; return true;
    default: return false;
    }
}

float kl_small_to_f32(kiln_dtype t, uint8_t c) {
    if (t == KILN_DTYPE_FLOAT8E8M0) return c == 0xff ? NAN : ldexpf(1.0f, (int)c - 127);
    kl_fmt f;
    if (!kl_fmt_of(t, &f) || f.nbits > 8) return NAN;
    int ebits = f.nbits - 1 - f.mbits;
    int sign = (c >> (f.nbits - 1)) & 1;
    int e = (c >> f.mbits) & ((1 << ebits) - 1);
    int m = c & ((1 << f.mbits) - 1);
    if (f.uz && c == 0x80) return NAN;
    if (t == KILN_DTYPE_FLOAT8E4M3FN && e == 15 && m == 7) return NAN;
    if (t == KILN_DTYPE_FLOAT8E5M2 && e == 31) return m ? NAN : (sign ? -INFINITY : INFINITY);
    float v = e == 0 ? ldexpf((float)m, 1 - f.bias - f.mbits)
                     : ldexpf((float)((1 << f.mbits) | m), e - f.bias - f.mbits);
    return sign ? -v : v;
}

/* x rounded to nearest even at the precision of format f (no range limit
 * above; subnormal spacing below the smallest normal): adding and
 * removing 2^(k+52) rounds |x| to a multiple of 2^k in one IEEE step. */
static double kl_round_fmt(double x, const kl_fmt *f) {
    if (x == 0 || !isfinite(x)) return x;
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    int e = (int)((b >> 52) & 0x7ff) - 1023; /* |x| in [2^e, 2^(e+1)) */
    if (e < 1 - f->bias) e = 1 - f->bias;
    uint64_t cb = (uint64_t)(e - f->mbits + 52 + 1023) << 52;
    double c, a = fabs(x);
    memcpy(&c, &cb, sizeof c);
    double r = (a + c) - c;
    return x < 0 ? -r : r;
}

/* Code (without sign) of a > 0 that is exactly representable in f. */
static uint32_t kl_pack_fmt(double a, const kl_fmt *f) {
    if (a == 0) return 0;
    uint64_t b;
    memcpy(&b, &a, sizeof b);
    int e = (int)((b >> 52) & 0x7ff) - 1023, emin = 1 - f->bias;
    uint64_t m = (b & ((1ull << 52) - 1)) | (1ull << 52);
    if (e < emin) return (uint32_t)(m >> (52 - f->mbits + (emin - e)));
    return ((uint32_t)(e + f->bias) << f->mbits) | (uint32_t)((m >> (52 - f->mbits)) & ((1u << f->mbits) - 1));
}

/* float8e8m0 code of float32 x, as onnx.numpy_helper.to_float8e8m0: the
 * float32 exponent field, moved up by the mantissa per `round`. */
static uint8_t kl_encode_e8m0(float x, bool saturate, kl_sf_round round) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    uint32_t e = (b >> 23) & 0xff, m = b & 0x7fffff;
    if (e == 0xff) return 0xff;
    bool up = false;
    if (round == KL_SF_ROUND_UP) {
        up = m != 0;
    } else if (round == KL_SF_ROUND_NEAREST) {
        bool g = m & 0x400000, r = m & 0x200000, s = m & 0x1fffff;
        up = g && (r || s || e > 0);
    }
    if (up && saturate && e == 0xfe) up = false;
    return (uint8_t)(e + up);
}

uint16_t kl_sf_encode(kiln_dtype t, double x, bool saturate, kl_sf_round round) {
    if (t == KILN_DTYPE_FLOAT8E8M0) return kl_encode_e8m0((float)x, saturate, round);
    kl_fmt f;
    if (!kl_fmt_of(t, &f)) return 0;
    uint32_t sign = signbit(x) ? 1u << (f.nbits - 1) : 0;
    if (isnan(x)) {
        switch (t) {
        case KILN_DTYPE_FLOAT16: return (uint16_t)(0x7e00 | sign);
        case KILN_DTYPE_BFLOAT16: return (uint16_t)(0x7fc0 | sign);
        case KILN_DTYPE_FLOAT4E2M1: return 0x8; /* no NaN: -0, as the ONNX test data and ml_dtypes */
        default: return (uint16_t)(f.uz ? 0x80 : 0x7f | sign);
        }
    }
    double r = kl_round_fmt(x, &f);
    if (fabs(r) > f.max) {
        switch (t) {
        case KILN_DTYPE_FLOAT16: return (uint16_t)(0x7c00 | sign);
        case KILN_DTYPE_BFLOAT16: return (uint16_t)(0x7f80 | sign);
        case KILN_DTYPE_FLOAT4E2M1: return (uint16_t)(0x7 | sign);
        case KILN_DTYPE_FLOAT8E4M3FN: return (uint16_t)((saturate ? 0x7e : 0x7f) | sign);
        case KILN_DTYPE_FLOAT8E5M2: return (uint16_t)((saturate ? 0x7b : 0x7c) | sign);
        default: return (uint16_t)(saturate ? 0x7f | sign : 0x80); /* fnuz */
        }
    }
    uint32_t code = kl_pack_fmt(fabs(r), &f);
    if (code == 0 && f.uz) return 0; /* no negative zero */
    return (uint16_t)(code | sign);
}

double kl_sf_round_value(kiln_dtype t, double x) {
    kl_fmt f;
    return kl_fmt_of(t, &f) ? kl_round_fmt(x, &f) : x;
}
