/* Element types: names, sizes, half-precision conversions. */
#include <string.h>

#include "core/core.h"

static const char *const kl_dtype_names[KILN_DTYPE_COUNT] = {
    "undefined", "float", "uint8", "int8", "uint16", "int16", "int32", "int64", "string",
    "bool", "float16", "double", "uint32", "uint64", "complex64", "complex128", "bfloat16",
    "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz", "uint4", "int4",
    "float4e2m1", "float8e8m0", "uint2", "int2"};

static const uint8_t kl_dtype_bitsz[KILN_DTYPE_COUNT] = {
    0, 32, 8, 8, 16, 16, 32, 64, 0, 8, 16, 64, 32, 64, 64, 128, 16, 8, 8, 8, 8, 4, 4, 4, 8, 2, 2};

bool kl_dtype_valid(int32_t dtype) { return dtype > 0 && dtype < KILN_DTYPE_COUNT; }

KILN_API const char *kiln_dtype_name(kiln_dtype dtype) {
    if ((int)dtype < 0 || (int)dtype >= KILN_DTYPE_COUNT) return "undefined";
    return kl_dtype_names[dtype];
}

KILN_API size_t kiln_dtype_bits(kiln_dtype dtype) {
    if ((int)dtype < 0 || (int)dtype >= KILN_DTYPE_COUNT) return 0;
    return kl_dtype_bitsz[dtype];
}

bool kl_dtype_is_float(kiln_dtype t) {
    switch (t) {
    case KILN_DTYPE_FLOAT: case KILN_DTYPE_FLOAT16: case KILN_DTYPE_DOUBLE:
    case KILN_DTYPE_BFLOAT16: case KILN_DTYPE_FLOAT8E4M3FN: case KILN_DTYPE_FLOAT8E4M3FNUZ:
    case KILN_DTYPE_FLOAT8E5M2: case KILN_DTYPE_FLOAT8E5M2FNUZ: case KILN_DTYPE_FLOAT4E2M1:
    case KILN_DTYPE_FLOAT8E8M0:
        return true;
    default:
        return false;
    }
}

bool kl_dtype_is_integer(kiln_dtype t) {
    switch (t) {
    case KILN_DTYPE_UINT8: case KILN_DTYPE_INT8: case KILN_DTYPE_UINT16: case KILN_DTYPE_INT16:
    case KILN_DTYPE_INT32: case KILN_DTYPE_INT64: case KILN_DTYPE_UINT32: case KILN_DTYPE_UINT64:
    case KILN_DTYPE_UINT4: case KILN_DTYPE_INT4: case KILN_DTYPE_UINT2: case KILN_DTYPE_INT2:
        return true;
    default:
        return false;
    }
}

bool kl_dtype_is_signed(kiln_dtype t) {
    switch (t) {
    case KILN_DTYPE_INT8: case KILN_DTYPE_INT16: case KILN_DTYPE_INT32: case KILN_DTYPE_INT64:
    case KILN_DTYPE_INT4: case KILN_DTYPE_INT2:
        return true;
    default:
        return kl_dtype_is_float(t);
    }
}

bool kl_dtype_nbytes(kiln_dtype t, int64_t count, size_t *out) {
    size_t bits = kiln_dtype_bits(t), total;
    if (bits == 0 || count < 0) return false;
    if (kl_mul_size((size_t)count, bits, &total)) return false;
    if (kl_add_size(total, 7, &total)) return false;
    *out = total / 8;
    return true;
}

float kl_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, f;
    if (exp == 0) {
        if (man == 0) {
            f = sign;
        } else { /* subnormal: normalize */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3ff;
            f = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        f = sign | 0x7f800000u | (man << 13);
    } else {
        f = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float r;
    memcpy(&r, &f, 4);
    return r;
}

uint16_t kl_f32_to_f16(float v) {
    uint32_t f;
    memcpy(&f, &v, 4);
    uint32_t sign = (f >> 16) & 0x8000;
    int32_t exp = (int32_t)((f >> 23) & 0xff);
    uint32_t man = f & 0x7fffff;
    if (exp == 255) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0));
    int32_t e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
    return (uint16_t)half;
}

float kl_bf16_to_f32(uint16_t h) {
    uint32_t f = (uint32_t)h << 16;
    float r;
    memcpy(&r, &f, 4);
    return r;
}

uint16_t kl_f32_to_bf16(float v) {
    uint32_t f;
    memcpy(&f, &v, 4);
    if ((f & 0x7fffffff) > 0x7f800000) return (uint16_t)((f >> 16) | 0x40);
    f += 0x7fff + ((f >> 16) & 1);
    return (uint16_t)(f >> 16);
}
