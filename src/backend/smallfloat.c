/* 8-bit and 4-bit float formats (ONNX float8 / float4 types). */
#include <math.h>

#include "backend/smallfloat.h"

/* Format parameters. */
typedef struct kl_sf {
    int ebits, mbits, bias;
    bool has_inf, uz; /* uz: no negative zero, 0x80 is NaN */
    int ncodes;
} kl_sf;

static kl_sf kl_sf_of(kiln_dtype t) {
    switch (t) {
    case KILN_DTYPE_FLOAT8E4M3FN: return (kl_sf){4, 3, 7, false, false, 256};
    case KILN_DTYPE_FLOAT8E4M3FNUZ: return (kl_sf){4, 3, 8, false, true, 256};
    case KILN_DTYPE_FLOAT8E5M2: return (kl_sf){5, 2, 15, true, false, 256};
    case KILN_DTYPE_FLOAT8E5M2FNUZ: return (kl_sf){5, 2, 16, false, true, 256};
    case KILN_DTYPE_FLOAT4E2M1: return (kl_sf){2, 1, 1, false, false, 16};
    default: return (kl_sf){8, 0, 127, false, false, 256};
    }
}

float kl_small_to_f32(kiln_dtype t, uint8_t c) {
    if (t == KILN_DTYPE_FLOAT8E8M0) return c == 0xff ? NAN : ldexpf(1.0f, (int)c - 127);
    kl_sf f = kl_sf_of(t);
    int total = 1 + f.ebits + f.mbits;
    int sign = (c >> (total - 1)) & 1;
    int e = (c >> f.mbits) & ((1 << f.ebits) - 1);
    int m = c & ((1 << f.mbits) - 1);
    if (f.uz && c == 0x80) return NAN;
    if (t == KILN_DTYPE_FLOAT8E4M3FN && e == 15 && m == 7) return NAN;
    if (f.has_inf && e == (1 << f.ebits) - 1) return m ? NAN : (sign ? -INFINITY : INFINITY);
    float v = e == 0 ? ldexpf((float)m, 1 - f.bias - f.mbits)
                     : ldexpf((float)((1 << f.mbits) | m), e - f.bias - f.mbits);
    return sign ? -v : v;
}

uint8_t kl_f32_to_small(kiln_dtype t, float x, bool saturate) {
    if (t == KILN_DTYPE_FLOAT8E8M0) {
        if (isnan(x) || x <= 0) return isnan(x) ? 0xff : 0;
        int e;
        float fr = frexpf(x, &e); /* x = fr * 2^e, fr in [0.5,1) */
        int k = e - 1;            /* floor(log2 x) */
        if (fr > 0.75f) k++;      /* round to nearest power of two */
        k += 127;
        if (k < 0) return 0;
        if (k > 254) return saturate ? 254 : 0xff;
        return (uint8_t)k;
    }
    kl_sf f = kl_sf_of(t);
    int total = 1 + f.ebits + f.mbits;
    uint8_t sign_bit = (uint8_t)(1u << (total - 1));
    uint8_t nan_code = f.uz ? 0x80 : t == KILN_DTYPE_FLOAT4E2M1 ? 0 : (uint8_t)(sign_bit - 1);
    if (t == KILN_DTYPE_FLOAT8E5M2) nan_code = 0x7f;
    if (isnan(x)) return nan_code;
    bool neg = signbit(x);
    float a = fabsf(x);
    /* Largest finite code magnitude. */
    uint8_t maxc = 0;
    float maxv = 0;
    for (int c = 0; c < (f.ncodes >> 1); c++) {
        float v = kl_small_to_f32(t, (uint8_t)c);
        if (isfinite(v) && v > maxv) {
            maxv = v;
            maxc = (uint8_t)c;
        }
    }
    uint8_t code;
    if (isinf(a) || a > maxv) {
        /* Beyond the largest finite value: first round (it may still round down to max). */
        if (!isinf(a) && t != KILN_DTYPE_FLOAT4E2M1) {
            float next = ldexpf(1.0f, (int)floorf(log2f(maxv)) - f.mbits); /* ulp at max */
            if (a < maxv + next / 2 || (a == maxv + next / 2 && !(maxc & 1))) {
                code = maxc;
                goto done;
            }
        }
        if (saturate || t == KILN_DTYPE_FLOAT4E2M1) code = maxc;
        else if (f.has_inf) code = (uint8_t)(((1 << f.ebits) - 1) << f.mbits);
        else return nan_code;
    } else {
        /* Nearest representable magnitude, ties to the even code. */
        code = 0;
        float best = INFINITY;
        for (int c = 0; c <= maxc; c++) {
            float v = kl_small_to_f32(t, (uint8_t)c);
            float d = fabsf(v - a);
            if (d < best || (d == best && !(c & 1))) {
                best = d;
                code = (uint8_t)c;
            }
        }
    }
done:
    if (neg && !(f.uz && code == 0)) code |= sign_bit;
    return code;
}
