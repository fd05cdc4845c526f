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
    bool neg = signbit(x);
    /* NaN codes: 0x80 for the UZ formats, all ones for the others (with the
     * sign of the value); float4e2m1 has no NaN and ONNX maps NaN to +6.0. */
    uint8_t nan_code = f.uz ? 0x80 : t == KILN_DTYPE_FLOAT4E2M1 ? 0x7 : (uint8_t)(sign_bit - 1);
    if (t == KILN_DTYPE_FLOAT8E5M2) nan_code = 0x7f;
    if (isnan(x)) return t == KILN_DTYPE_FLOAT4E2M1 || f.uz ? nan_code : (uint8_t)(nan_code | (neg ? sign_bit : 0));
    float a = fabsf(x);
    /* Positive codes 0..maxc are ordered by value: the largest finite one. */
    uint8_t maxc = (uint8_t)(sign_bit - 1);
    while (maxc > 0 && !isfinite(kl_small_to_f32(t, maxc))) maxc--;
    float maxv = kl_small_to_f32(t, maxc);
    uint8_t code;
    if (isinf(a) || a > maxv) {
        /* Beyond the largest finite value: it may still round down to max. */
        if (!isinf(a)) {
            float ulp = maxv - kl_small_to_f32(t, (uint8_t)(maxc - 1));
            if (a < maxv + ulp / 2 || (a == maxv + ulp / 2 && !(maxc & 1))) {
                code = maxc;
                goto done;
            }
        }
        if (saturate || t == KILN_DTYPE_FLOAT4E2M1) code = maxc;
        else if (f.has_inf) code = (uint8_t)(((1 << f.ebits) - 1) << f.mbits);
        else return f.uz ? nan_code : (uint8_t)(nan_code | (neg ? sign_bit : 0));
    } else {
        /* Binary search for the last code whose value is <= a, then round to
         * the nearer neighbour, ties to the even code. */
        int lo = 0, hi = maxc;
        while (lo < hi) {
            int mid = (lo + hi + 1) / 2;
            if (kl_small_to_f32(t, (uint8_t)mid) <= a) lo = mid;
            else hi = mid - 1;
        }
        code = (uint8_t)lo;
        if (lo < maxc) {
            float below = kl_small_to_f32(t, (uint8_t)lo), above = kl_small_to_f32(t, (uint8_t)(lo + 1));
            float db = a - below, da = above - a;
            if (da < db || (da == db && (lo & 1))) code = (uint8_t)(lo + 1);
        }
    }
done:
    if (neg && !(f.uz && code == 0)) code |= sign_bit;
    return code;
}
