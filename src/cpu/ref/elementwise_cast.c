/*
 * Cast, CastLike, BitCast and the exact element conversions they share.
 *
 * Every value is carried exactly (floats as double, integers as 64-bit bits)
 * and rounded once into the target, so float16/bfloat16/float8 results are
 * the correctly rounded ones even from double or int64 sources.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend/smallfloat.h"
#include "cpu/ref/elementwise.h"

/* ---- small float formats ------------------------------------------------------ */

/* Cast's round_mode as the shared encoder's rounding (smallfloat.h). */
static kl_sf_round kl_cast_round(const kl_cast_opts *o) {
    if (!o) return KL_SF_ROUND_UP;
    switch (o->round) {
    case KL_E8M0_DOWN: return KL_SF_ROUND_DOWN;
    case KL_E8M0_NEAREST: return KL_SF_ROUND_NEAREST;
    default: return KL_SF_ROUND_UP;
    }
}

/* ---- integers -------------------------------------------------------------------- */

/* True for the unsigned integer types. */
static bool kl_is_unsigned(kiln_dtype t) {
    switch (t) {
    case KILN_DTYPE_UINT8: case KILN_DTYPE_UINT16: case KILN_DTYPE_UINT32: case KILN_DTYPE_UINT64:
    case KILN_DTYPE_UINT4: case KILN_DTYPE_UINT2:
        return true;
    default:
        return false;
    }
}

/* Smallest and largest value of integer type t (as int64; uint64 max as -1). */
static void kl_int_range(kiln_dtype t, int64_t *lo, int64_t *hi) {
    switch (t) {
    case KILN_DTYPE_INT8: *lo = INT8_MIN; *hi = INT8_MAX; break;
    case KILN_DTYPE_INT16: *lo = INT16_MIN; *hi = INT16_MAX; break;
    case KILN_DTYPE_INT32: *lo = INT32_MIN; *hi = INT32_MAX; break;
    case KILN_DTYPE_UINT8: *lo = 0; *hi = UINT8_MAX; break;
    case KILN_DTYPE_UINT16: *lo = 0; *hi = UINT16_MAX; break;
    case KILN_DTYPE_UINT32: *lo = 0; *hi = UINT32_MAX; break;
    case KILN_DTYPE_UINT64: *lo = 0; *hi = -1; break;
    case KILN_DTYPE_INT4: *lo = -8; *hi = 7; break;
    case KILN_DTYPE_UINT4: *lo = 0; *hi = 15; break;
    case KILN_DTYPE_INT2: *lo = -2; *hi = 1; break;
    case KILN_DTYPE_UINT2: *lo = 0; *hi = 3; break;
    default: *lo = INT64_MIN; *hi = INT64_MAX; break;
    }
}

/* Bits of float x converted to integer type t: truncation toward zero, the
 * caller keeps the low bits; NaN -> 0; beyond int64 (uint64 for uint64)
 * saturates to t's range (the spec leaves it undefined; C makes it UB). */
static int64_t kl_f64_to_int(double x, kiln_dtype t) {
    if (isnan(x)) return 0;
    x = trunc(x);
    int64_t lo, hi;
    kl_int_range(t, &lo, &hi);
    if (t == KILN_DTYPE_UINT64 && x >= 9223372036854775808.0) {
        uint64_t u = x >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)x;
        int64_t r;
        memcpy(&r, &u, sizeof r);
        return r;
    }
    if (x >= 9223372036854775808.0) return hi;
    if (x < -9223372036854775808.0) return lo;
    return (int64_t)x;
}

/* uint64 m as a double rounded to odd: exact below 2^53, else the
 * discarded bits stick to the last kept bit, so one more rounding to any
 * narrower format is correct. */
static double kl_u64_to_f64_odd(uint64_t m) {
    if (m < (1ull << 53)) return (double)m;
    int drop = 64 - __builtin_clzll(m) - 53;
    uint64_t hi = m >> drop;
    if (m & ((1ull << drop) - 1)) hi |= 1;
    return ldexp((double)hi, drop);
}

/* v as a double, rounded to odd when it is an integer beyond 2^53. */
static double kl_num_to_f64_odd(kl_num v) {
    if (v.kind == KL_NUM_F) return v.f;
    if (v.kind == KL_NUM_U) return kl_u64_to_f64_odd((uint64_t)v.i);
    if (v.i >= 0) return kl_u64_to_f64_odd((uint64_t)v.i);
    return -kl_u64_to_f64_odd(-(uint64_t)v.i);
}

/* ---- element access ---------------------------------------------------------------- */

kl_num kl_ew_get(const kl_rt *t, int64_t i) {
    kl_num v = {KL_NUM_F, 0, 0};
    if (t->dtype == KILN_DTYPE_BOOL || kl_dtype_is_integer(t->dtype)) {
        v.kind = kl_is_unsigned(t->dtype) ? KL_NUM_U : KL_NUM_I;
        v.i = kl_rt_get_i64(t, i);
    } else {
        v.f = kl_rt_get_f64(t, i);
    }
    return v;
}

/* Store float value x into float-typed element i of t. */
static void kl_put_float(kl_rt *t, int64_t i, double x, const kl_cast_opts *o) {
    uint8_t *d = t->data;
    bool sat = o ? o->saturate : true;
    switch (t->dtype) {
    case KILN_DTYPE_FLOAT: ((float *)t->data)[i] = (float)x; break;
    case KILN_DTYPE_DOUBLE: ((double *)t->data)[i] = x; break;
    case KILN_DTYPE_FLOAT16:
    case KILN_DTYPE_BFLOAT16: ((uint16_t *)t->data)[i] = kl_sf_encode(t->dtype, x, sat, KL_SF_ROUND_UP); break;
    case KILN_DTYPE_FLOAT8E4M3FN:
    case KILN_DTYPE_FLOAT8E4M3FNUZ:
    case KILN_DTYPE_FLOAT8E5M2:
    case KILN_DTYPE_FLOAT8E5M2FNUZ:
    case KILN_DTYPE_FLOAT8E8M0: d[i] = (uint8_t)kl_sf_encode(t->dtype, x, sat, kl_cast_round(o)); break;
    case KILN_DTYPE_FLOAT4E2M1: {
        int sh = 4 * (int)(i % 2);
        uint8_t c = (uint8_t)kl_sf_encode(t->dtype, x, true, KL_SF_ROUND_UP);
        d[i / 2] = (uint8_t)((d[i / 2] & ~(15 << sh)) | (c << sh));
        break;
    }
    default: break;
    }
}

void kl_ew_put(kl_rt *t, int64_t i, kl_num v, const kl_cast_opts *o) {
    kiln_dtype d = t->dtype;
    if (d == KILN_DTYPE_BOOL) {
        ((uint8_t *)t->data)[i] = v.kind == KL_NUM_F ? v.f != 0 : v.i != 0;
        return;
    }
    if (kl_dtype_is_integer(d)) {
        kl_rt_set_i64(t, i, v.kind == KL_NUM_F ? kl_f64_to_int(v.f, d) : v.i);
        return;
    }
    if (v.kind != KL_NUM_F) {
        /* int -> float/double: C's conversion rounds once, correctly. */
        bool u = v.kind == KL_NUM_U;
        if (d == KILN_DTYPE_FLOAT) {
            ((float *)t->data)[i] = u ? (float)(uint64_t)v.i : (float)v.i;
            return;
        }
        if (d == KILN_DTYPE_DOUBLE) {
            ((double *)t->data)[i] = u ? (double)(uint64_t)v.i : (double)v.i;
            return;
        }
        if (d == KILN_DTYPE_FLOAT8E8M0) {
            kl_put_float(t, i, u ? (float)(uint64_t)v.i : (float)v.i, o);
            return;
        }
    }
    kl_put_float(t, i, kl_num_to_f64_odd(v), o);
}

void kl_ew_set_f64(kl_rt *t, int64_t i, double v) {
    kl_ew_put(t, i, (kl_num){KL_NUM_F, v, 0}, NULL);
}

bool kl_ew_castable(kiln_dtype t) {
    return t == KILN_DTYPE_STRING || t == KILN_DTYPE_BOOL || kl_dtype_is_integer(t) || kl_dtype_is_float(t);
}

/* ---- strings ---------------------------------------------------------------------------- */

/* v rounded to element type t and read back (the value t would hold). */
static double kl_round_to(double v, kiln_dtype t) {
    if (t == KILN_DTYPE_DOUBLE) return v;
    if (t == KILN_DTYPE_FLOAT) return (float)v;
    if (t == KILN_DTYPE_FLOAT8E8M0) {
        uint8_t c = (uint8_t)kl_sf_encode(t, v, true, KL_SF_ROUND_NEAREST);
        return kl_small_to_f32(t, c);
    }
    return kl_sf_round_value(t, v);
}

/* Shortest decimal that reads back as v in type t, formatted as numpy's
 * str (the ONNX reference casts with astype(str)): positional when
 * 1e-4 <= |v| < 1e16 ("100.0", "0.001"), else scientific ("1e+16",
 * "1e-04" for float32 0.0001, which is below 1e-4); "nan", "inf", "-inf". */
static void kl_format_float(double v, kiln_dtype t, char *out, size_t size) {
    if (isnan(v)) {
        snprintf(out, size, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(out, size, v < 0 ? "-inf" : "inf");
        return;
    }
    if (v == 0) {
        snprintf(out, size, signbit(v) ? "-0.0" : "0.0");
        return;
    }
    char tmp[64];
    int maxp = t == KILN_DTYPE_DOUBLE ? 17 : 9;
    for (int p = 1; p <= maxp; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
        double back = t == KILN_DTYPE_FLOAT ? (double)strtof(tmp, NULL) : kl_round_to(strtod(tmp, NULL), t);
        if (back == v) break;
    }
    /* tmp is "-d.ddde+XX": split into digits and exponent. */
    char digits[32];
    size_t nd = 0;
    const char *p = tmp;
    bool neg = *p == '-';
    if (neg) p++;
    for (; *p && *p != 'e' && nd < sizeof digits - 1; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    digits[nd] = 0;
    while (nd > 1 && digits[nd - 1] == '0') digits[--nd] = 0;
    int x = *p == 'e' ? atoi(p + 1) : 0;
    size_t pos = 0;
    char buf[128];
    if (neg) buf[pos++] = '-';
    long double av = fabsl((long double)v);
    if (av >= 1e-4L && av < 1e16L) {
        if (x >= 0) {
            for (int k = 0; k <= x; k++) buf[pos++] = (size_t)k < nd ? digits[k] : '0';
            buf[pos++] = '.';
            if ((size_t)x + 1 < nd)
                for (size_t k = (size_t)x + 1; k < nd; k++) buf[pos++] = digits[k];
            else
                buf[pos++] = '0';
        } else {
            buf[pos++] = '0';
            buf[pos++] = '.';
            for (int k = 0; k < -x - 1; k++) buf[pos++] = '0';
            for (size_t k = 0; k < nd; k++) buf[pos++] = digits[k];
        }
        buf[pos] = 0;
    } else {
        buf[pos++] = digits[0];
        if (nd > 1) {
            buf[pos++] = '.';
            for (size_t k = 1; k < nd; k++) buf[pos++] = digits[k];
        }
        snprintf(buf + pos, sizeof buf - pos, "e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
    }
    snprintf(out, size, "%s", buf);
}

/* Text of element i of numeric tensor t (Cast to string). */
static void kl_format_elem(const kl_rt *t, int64_t i, char *out, size_t size) {
    kl_num v = kl_ew_get(t, i);
    if (t->dtype == KILN_DTYPE_BOOL) snprintf(out, size, v.i ? "True" : "False");
    else if (v.kind == KL_NUM_I) snprintf(out, size, "%lld", (long long)v.i);
    else if (v.kind == KL_NUM_U) snprintf(out, size, "%llu", (unsigned long long)(uint64_t)v.i);
    else kl_format_float(v.f, t->dtype, out, size);
}

/* True if p holds only white space. */
static bool kl_only_space(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v') p++;
    return *p == 0;
}

/* Parse NUL-terminated s for target type d into *v (and *f32 for float, read
 * with strtof so the one rounding is correct).  Integers are read exactly
 * when written as integers, else as a float then truncated ("100.5" -> 100);
 * "INF", "+INF", "-INF", "NaN" in any case are the special values. */
static bool kl_parse_num(const char *s, kiln_dtype d, kl_num *v, float *f32) {
    char *end;
    if (d == KILN_DTYPE_BOOL) {
        const char *p = s;
        while (*p == ' ' || *p == '\t') p++;
        if (!strncasecmp(p, "true", 4) && kl_only_space(p + 4)) {
            *v = (kl_num){KL_NUM_I, 0, 1};
            return true;
        }
        if (!strncasecmp(p, "false", 5) && kl_only_space(p + 5)) {
            *v = (kl_num){KL_NUM_I, 0, 0};
            return true;
        }
    }
    if (kl_dtype_is_integer(d) || d == KILN_DTYPE_BOOL) {
        errno = 0;
        if (kl_is_unsigned(d) && !strchr(s, '-')) {
            unsigned long long u = strtoull(s, &end, 10);
            if (end != s && errno == 0 && kl_only_space(end)) {
                *v = (kl_num){KL_NUM_U, 0, (int64_t)u};
                return true;
            }
        } else {
            long long x = strtoll(s, &end, 10);
            if (end != s && errno == 0 && kl_only_space(end)) {
                *v = (kl_num){KL_NUM_I, 0, x};
                return true;
            }
        }
    }
    if (d == KILN_DTYPE_FLOAT) {
        *f32 = strtof(s, &end);
        *v = (kl_num){KL_NUM_F, *f32, 0};
    } else {
        *v = (kl_num){KL_NUM_F, strtod(s, &end), 0};
    }
    return end != s && kl_only_space(end);
}

/* ---- whole tensors ---------------------------------------------------------------------- */

/* Fast loops for the casts real models use; false if (src, dst) has none. */
static bool kl_cast_fast(const kl_rt *src, kl_rt *dst) {
    int64_t n = src->count;
    kiln_dtype a = src->dtype, b = dst->dtype;
    if (a == KILN_DTYPE_FLOAT && b == KILN_DTYPE_DOUBLE) {
        const float *x = src->data;
        double *y = dst->data;
        for (int64_t i = 0; i < n; i++) y[i] = x[i];
    } else if (a == KILN_DTYPE_DOUBLE && b == KILN_DTYPE_FLOAT) {
        const double *x = src->data;
        float *y = dst->data;
        for (int64_t i = 0; i < n; i++) y[i] = (float)x[i];
    } else if (a == KILN_DTYPE_INT64 && b == KILN_DTYPE_FLOAT) {
        const int64_t *x = src->data;
        float *y = dst->data;
        for (int64_t i = 0; i < n; i++) y[i] = (float)x[i];
    } else if (a == KILN_DTYPE_INT32 && b == KILN_DTYPE_FLOAT) {
        const int32_t *x = src->data;
        float *y = dst->data;
        for (int64_t i = 0; i < n; i++) y[i] = (float)x[i];
    } else if (a == KILN_DTYPE_INT64 && b == KILN_DTYPE_INT32) {
        const int64_t *x = src->data;
        int32_t *y = dst->data;
        for (int64_t i = 0; i < n; i++) y[i] = (int32_t)(uint32_t)(uint64_t)x[i];
    } else if (a == KILN_DTYPE_INT32 && b == KILN_DTYPE_INT64) {
        const int32_t *x = src->data;
        int64_t *y = dst->data;
        for (int64_t i = 0; i < n; i++) y[i] = x[i];
    } else if (a == KILN_DTYPE_FLOAT && (b == KILN_DTYPE_INT64 || b == KILN_DTYPE_INT32)) {
        const float *x = src->data;
        if (b == KILN_DTYPE_INT64)
            for (int64_t i = 0; i < n; i++) ((int64_t *)dst->data)[i] = kl_f64_to_int(x[i], b);
        else
            for (int64_t i = 0; i < n; i++)
                ((int32_t *)dst->data)[i] = (int32_t)(uint32_t)(uint64_t)kl_f64_to_int(x[i], b);
    } else if (a == KILN_DTYPE_FLOAT && (b == KILN_DTYPE_FLOAT16 || b == KILN_DTYPE_BFLOAT16)) {
        /* One rounding from float: the core converters are exact RNE. */
        const float *x = src->data;
        uint16_t *y = dst->data;
        if (b == KILN_DTYPE_FLOAT16)
            for (int64_t i = 0; i < n; i++) y[i] = kl_f32_to_f16(x[i]);
        else
            for (int64_t i = 0; i < n; i++) y[i] = kl_f32_to_bf16(x[i]);
    } else if ((a == KILN_DTYPE_FLOAT16 || a == KILN_DTYPE_BFLOAT16) && b == KILN_DTYPE_FLOAT) {
        const uint16_t *x = src->data;
        float *y = dst->data;
        if (a == KILN_DTYPE_FLOAT16)
            for (int64_t i = 0; i < n; i++) y[i] = kl_f16_to_f32(x[i]);
        else
            for (int64_t i = 0; i < n; i++) y[i] = kl_bf16_to_f32(x[i]);
    } else if (a == KILN_DTYPE_BOOL && b == KILN_DTYPE_FLOAT) {
        const uint8_t *x = src->data;
        float *y = dst->data;
        for (int64_t i = 0; i < n; i++) y[i] = x[i] ? 1.0f : 0.0f;
    } else if (a == KILN_DTYPE_FLOAT && b == KILN_DTYPE_BOOL) {
        const float *x = src->data;
        uint8_t *y = dst->data;
        for (int64_t i = 0; i < n; i++) y[i] = x[i] != 0;
    } else {
        return false;
    }
    return true;
}

kiln_status kl_ew_cast_tensor(const kl_rt *src, kl_rt *dst, const kl_cast_opts *o) {
    int64_t n = src->count;
    if (src->dtype == dst->dtype) {
        if (src->dtype != KILN_DTYPE_STRING) {
            if (src->nbytes) memcpy(dst->data, src->data, src->nbytes);
            return KILN_OK;
        }
        const kl_str *s = src->data;
        for (int64_t i = 0; i < n; i++) KL_TRY(kl_rt_set_string(dst, i, s[i].ptr ? s[i].ptr : "", s[i].len));
        return KILN_OK;
    }
    if (dst->dtype == KILN_DTYPE_STRING) {
        char buf[128];
        for (int64_t i = 0; i < n; i++) {
            kl_format_elem(src, i, buf, sizeof buf);
            KL_TRY(kl_rt_set_string(dst, i, buf, strlen(buf)));
        }
        return KILN_OK;
    }
    if (src->dtype == KILN_DTYPE_STRING) {
        const kl_str *s = src->data;
        char small[128];
        for (int64_t i = 0; i < n; i++) {
            size_t len = s[i].len;
            char *buf = small;
            if (len >= sizeof small && !(buf = kl_malloc(len + 1))) return KILN_ERR_NO_MEMORY;
            if (len) memcpy(buf, s[i].ptr, len);
            buf[len] = 0;
            kl_num v;
            float f32 = 0;
            bool ok = !memchr(buf, 0, len) && kl_parse_num(buf, dst->dtype, &v, &f32);
            if (ok && dst->dtype == KILN_DTYPE_FLOAT) ((float *)dst->data)[i] = f32;
            else if (ok) kl_ew_put(dst, i, v, o);
            kiln_status st = ok ? KILN_OK
                                : kl_errorf(KILN_ERR_INVALID_ARGUMENT, "string element %lld \"%.40s\" is not a number",
                                            (long long)i, buf);
            if (buf != small) kl_free(buf);
            if (st) return st;
        }
        return KILN_OK;
    }
    if (kl_cast_fast(src, dst)) return KILN_OK;
    for (int64_t i = 0; i < n; i++) kl_ew_put(dst, i, kl_ew_get(src, i), o);
    return KILN_OK;
}

/* ---- kernels ---------------------------------------------------------------------------- */

kiln_status kl_ew_input(kl_kctx *c, size_t i, kl_rt **out) {
    if (i >= c->n_in || !c->in[i]) return kl_kctx_fail(c, KILN_ERR_TYPE, "input %zu is missing", i);
    if (c->in[i]->kind != KL_RT_TENSOR)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "input %zu must be a tensor, not a sequence or optional", i);
    *out = c->in[i];
    return KILN_OK;
}

/* Cast options from the node: saturate (opset 19+), round_mode (opset 25+). */
static kiln_status kl_cast_options(kl_kctx *c, kl_cast_opts *o) {
    o->saturate = kl_node_attr_int(c->node, "saturate", 1) != 0;
    o->round = KL_E8M0_UP;
    const char *rm = kl_node_attr_string(c->node, "round_mode", "up");
    if (!strcmp(rm, "down")) o->round = KL_E8M0_DOWN;
    else if (!strcmp(rm, "nearest")) o->round = KL_E8M0_NEAREST;
    else if (strcmp(rm, "up") != 0)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute round_mode '%s' is not up, down or nearest", rm);
    return KILN_OK;
}

/* Cast x to element type `to` into output 0. */
static kiln_status kl_cast_to(kl_kctx *c, kl_rt *x, int64_t to) {
    if (!kl_dtype_valid((int32_t)to) || !kl_ew_castable((kiln_dtype)to))
        return kl_kctx_fail(c, KILN_ERR_UNSUPPORTED, "cannot cast to element type %lld", (long long)to);
    if (!kl_ew_castable(x->dtype))
        return kl_kctx_fail(c, KILN_ERR_UNSUPPORTED, "cannot cast from %s", kiln_dtype_name(x->dtype));
    kl_cast_opts o;
    KL_TRY(kl_cast_options(c, &o));
    kl_rt *y = NULL;
    KL_TRY(kl_kctx_output(c, 0, (kiln_dtype)to, x->rank, x->dims, &y));
    return kl_ew_cast_tensor(x, y, &o);
}

kiln_status kl_ew_cast(kl_kctx *c) {
    kl_rt *x = NULL;
    KL_TRY(kl_ew_input(c, 0, &x));
    const kl_attr *a = kl_node_attr(c->node, "to");
    if (!a) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'to' is required");
    return kl_cast_to(c, x, a->i);
}

kiln_status kl_ew_castlike(kl_kctx *c) {
    kl_rt *x = NULL, *like = NULL;
    KL_TRY(kl_ew_input(c, 0, &x));
    KL_TRY(kl_ew_input(c, 1, &like));
    return kl_cast_to(c, x, like->dtype);
}

/* BitCast (opset 26): the same bytes reinterpreted as `to`, same shape. */
kiln_status kl_ew_bitcast(kl_kctx *c) {
    kl_rt *x = NULL, *y = NULL;
    KL_TRY(kl_ew_input(c, 0, &x));
    const kl_attr *a = kl_node_attr(c->node, "to");
    if (!a) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'to' is required");
    if (!kl_dtype_valid((int32_t)a->i) || a->i == KILN_DTYPE_STRING || x->dtype == KILN_DTYPE_STRING)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "BitCast from %s to element type %lld: strings and unknown types cannot be bitcast",
                            kiln_dtype_name(x->dtype), (long long)a->i);
    kiln_dtype to = (kiln_dtype)a->i;
    if (kiln_dtype_bits(to) != kiln_dtype_bits(x->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "BitCast from %s (%zu bits) to %s (%zu bits): widths differ",
                            kiln_dtype_name(x->dtype), kiln_dtype_bits(x->dtype), kiln_dtype_name(to), kiln_dtype_bits(to));
    KL_TRY(kl_kctx_output(c, 0, to, x->rank, x->dims, &y));
    if (y->nbytes) memcpy(y->data, x->data, y->nbytes);
    return KILN_OK;
}
