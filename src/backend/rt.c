/* Runtime values: creation, reference counting, element access. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/kernel.h"
#include "backend/smallfloat.h"

/* Aligned allocation for tensor data (64 bytes, for SIMD kernels later). */
static void *kl_rt_alloc_data(size_t nbytes, bool zero) {
    size_t n;
    if (kl_add_size(nbytes, 63, &n) || n > KL_MAX_ALLOC) {
        kl_errorf(KILN_ERR_NO_MEMORY, "tensor of %zu bytes exceeds kiln's limit", nbytes);
        return NULL;
    }
    n &= ~(size_t)63;
    if (n == 0) n = 64;
    void *p = aligned_alloc(64, n);
    if (!p) {
        kl_errorf(KILN_ERR_NO_MEMORY, "out of memory allocating a tensor of %zu bytes", nbytes);
        return NULL;
    }
    if (zero) memset(p, 0, n);
    return p;
}

static kiln_status kl_rt_shape(kl_rt *v, kiln_dtype dtype, int rank, const int64_t *dims) {
    if (rank < 0 || rank > KILN_MAX_RANK)
        return kl_errorf(KILN_ERR_UNSUPPORTED, "tensor rank %d is outside 0..%d", rank, KILN_MAX_RANK);
    int64_t count = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) return kl_errorf(KILN_ERR_SHAPE, "tensor dimension %d is negative (%lld)", i, (long long)dims[i]);
        if (kl_mul_i64(count, dims[i], &count)) return kl_errorf(KILN_ERR_SHAPE, "tensor element count overflows");
        v->dims[i] = dims[i];
    }
    v->kind = KL_RT_TENSOR;
    v->dtype = dtype;
    v->rank = rank;
    v->count = count;
    if (dtype == KILN_DTYPE_STRING) {
        if (kl_mul_size((size_t)count, sizeof(kl_str), &v->nbytes))
            return kl_errorf(KILN_ERR_SHAPE, "string tensor too large");
    } else if (!kl_dtype_nbytes(dtype, count, &v->nbytes)) {
        return kl_errorf(KILN_ERR_SHAPE, "tensor of %lld %s elements is too large", (long long)count,
                         kiln_dtype_name(dtype));
    }
    return KILN_OK;
}

static kiln_status rt_tensor(kiln_dtype dtype, int rank, const int64_t *dims, bool zero, kl_rt **out) {
    kl_rt *v = kl_calloc(1, sizeof *v);
    if (!v) return KILN_ERR_NO_MEMORY;
    kiln_status s = kl_rt_shape(v, dtype, rank, dims);
    if (!s) {
        v->data = kl_rt_alloc_data(v->nbytes, zero || dtype == KILN_DTYPE_STRING);
        if (!v->data) s = KILN_ERR_NO_MEMORY;
    }
    if (s) {
        kl_free(v);
        return s;
    }
    if (dtype == KILN_DTYPE_STRING) {
        kl_str *st = v->data;
        for (int64_t i = 0; i < v->count; i++) st[i] = (kl_str){NULL, 0};
    }
    v->owns_data = true;
    v->refs = 1;
    *out = v;
    return KILN_OK;
}

kiln_status kl_rt_tensor(kiln_dtype dtype, int rank, const int64_t *dims, kl_rt **out) {
    return rt_tensor(dtype, rank, dims, true, out);
}

kiln_status kl_rt_tensor_uninit(kiln_dtype dtype, int rank, const int64_t *dims, kl_rt **out) {
    return rt_tensor(dtype, rank, dims, false, out);
}

kiln_status kl_rt_tensor_view(kiln_dtype dtype, int rank, const int64_t *dims, void *data, size_t nbytes,
                              kl_rt **out) {
    kl_rt *v = kl_calloc(1, sizeof *v);
    if (!v) return KILN_ERR_NO_MEMORY;
    kiln_status s = kl_rt_shape(v, dtype, rank, dims);
    if (!s && nbytes < v->nbytes)
        s = kl_errorf(KILN_ERR_SHAPE, "tensor view of %zu bytes is smaller than its shape needs (%zu)", nbytes, v->nbytes);
    if (s) {
        kl_free(v);
        return s;
    }
    v->data = data;
    v->refs = 1;
    *out = v;
    return KILN_OK;
}

/* Initialize a caller-owned (pooled) header as a tensor view over data:
 * no allocation; the header is not freed when its references drop to 0. */
kiln_status kl_rt_view_init(kl_rt *v, kiln_dtype dtype, int rank, const int64_t *dims, void *data, size_t nbytes) {
    memset(v, 0, sizeof *v);
    KL_TRY(kl_rt_shape(v, dtype, rank, dims));
    if (nbytes < v->nbytes)
        return kl_errorf(KILN_ERR_SHAPE, "buffer of %zu bytes is too small for %zu", nbytes, v->nbytes);
    v->data = data;
    v->refs = 1;
    v->pooled = true;
    return KILN_OK;
}

kiln_status kl_rt_sequence(kiln_dtype elem, kl_rt **items, size_t n, kl_rt **out) {
    kl_rt *v = kl_calloc(1, sizeof *v);
    if (!v) return KILN_ERR_NO_MEMORY;
    v->kind = KL_RT_SEQUENCE;
    v->dtype = elem;
    v->refs = 1;
    if (n) {
        v->items = kl_calloc(n, sizeof *v->items);
        if (!v->items) {
            kl_free(v);
            return KILN_ERR_NO_MEMORY;
        }
        for (size_t i = 0; i < n; i++) v->items[i] = kl_rt_ref(items[i]);
    }
    v->n_items = n;
    *out = v;
    return KILN_OK;
}

kiln_status kl_rt_none(kl_type_kind of, kl_rt **out) {
    kl_rt *v = kl_calloc(1, sizeof *v);
    if (!v) return KILN_ERR_NO_MEMORY;
    v->kind = KL_RT_NONE;
    v->opt_of = of;
    v->refs = 1;
    *out = v;
    return KILN_OK;
}

kiln_status kl_rt_set_string(kl_rt *t, int64_t i, const char *s, size_t len) {
    kl_str *st = t->data;
    char *copy = kl_malloc(len + 1);
    if (!copy) return KILN_ERR_NO_MEMORY;
    if (len) memcpy(copy, s, len);
    copy[len] = 0;
    if (t->owns_data) kl_free((void *)st[i].ptr);
    st[i] = (kl_str){copy, len};
    return KILN_OK;
}

kiln_status kl_rt_clone(const kl_rt *src, kl_rt **out) {
    if (src->kind == KL_RT_SEQUENCE) return kl_rt_sequence(src->dtype, src->items, src->n_items, out);
    if (src->kind == KL_RT_NONE) return kl_rt_none(src->opt_of, out);
    kl_rt *v;
    KL_TRY(kl_rt_tensor(src->dtype, src->rank, src->dims, &v));
    if (src->dtype == KILN_DTYPE_STRING) {
        const kl_str *st = src->data;
        for (int64_t i = 0; i < src->count; i++) {
            kiln_status s = kl_rt_set_string(v, i, st[i].ptr ? st[i].ptr : "", st[i].len);
            if (s) {
                kl_rt_unref(v);
                return s;
            }
        }
    } else if (src->nbytes) {
        memcpy(v->data, src->data, src->nbytes);
    }
    *out = v;
    return KILN_OK;
}

kiln_status kl_rt_from_tensor(const kl_tensor *t, kl_rt **out) {
    kl_rt *r;
    KL_TRY(kl_rt_tensor(t->dtype, t->rank, t->dims, &r));
    if (t->dtype == KILN_DTYPE_STRING) {
        for (int64_t i = 0; t->strings && i < t->count; i++) {
            kiln_status s = kl_rt_set_string(r, i, t->strings[i].ptr, t->strings[i].len);
            if (s) {
                kl_rt_unref(r);
                return s;
            }
        }
    } else if (r->nbytes) {
        if (!t->data || t->nbytes < r->nbytes) {
            kl_rt_unref(r);
            return kl_errorf(KILN_ERR_INVALID_MODEL, "tensor '%s' has no valid data", t->name);
        }
        memcpy(r->data, t->data, r->nbytes);
    }
    *out = r;
    return KILN_OK;
}

/* Reference counts are atomic (gcc/clang __atomic builtins on the int
 * field): values shared between sessions or threads, such as constants,
 * may be referenced and released concurrently.  The last release
 * acquires every earlier one's writes before freeing. */
kl_rt *kl_rt_ref(kl_rt *v) {
    if (v) __atomic_fetch_add(&v->refs, 1, __ATOMIC_RELAXED);
    return v;
}

void kl_rt_unref(kl_rt *v) {
    if (!v || __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) > 0) return;
    for (size_t i = 0; i < v->n_items; i++) kl_rt_unref(v->items[i]);
    kl_free(v->items);
    if (v->owns_data) {
        if (v->dtype == KILN_DTYPE_STRING && v->kind == KL_RT_TENSOR) {
            kl_str *st = v->data;
            for (int64_t i = 0; i < v->count; i++) kl_free((void *)st[i].ptr);
        }
        free(v->data); /* aligned_alloc */
    }
    if (!v->pooled) kl_free(v);
}

char *kl_rt_describe(const kl_rt *v, char *buf, size_t size) {
    if (!v) {
        snprintf(buf, size, "(absent)");
        return buf;
    }
    if (v->kind == KL_RT_NONE) {
        snprintf(buf, size, "optional(none)");
        return buf;
    }
    if (v->kind == KL_RT_SEQUENCE) {
        snprintf(buf, size, "seq(%s) of %zu", kiln_dtype_name(v->dtype), v->n_items);
        return buf;
    }
    size_t pos = 0;
    int n = snprintf(buf, size, "%s[", kiln_dtype_name(v->dtype));
    pos = n > 0 ? (size_t)n : 0;
    for (int i = 0; i < v->rank && pos < size; i++) {
        n = snprintf(buf + pos, size - pos, "%s%lld", i ? "," : "", (long long)v->dims[i]);
        if (n > 0) pos += (size_t)n;
    }
    if (pos < size) snprintf(buf + pos, size - pos, "]");
    return buf;
}

/* ---- element access ------------------------------------------------------------- */

/* Value of 4-bit / 2-bit element i (sign-extended for signed types). */
static int64_t kl_get_subbyte(const kl_rt *t, int64_t i) {
    const uint8_t *p = t->data;
    if (t->dtype == KILN_DTYPE_INT2 || t->dtype == KILN_DTYPE_UINT2) {
        int v = (p[i / 4] >> (2 * (i % 4))) & 3;
        return t->dtype == KILN_DTYPE_INT2 && (v & 2) ? v - 4 : v;
    }
    int v = (p[i / 2] >> (4 * (i % 2))) & 15;
    return t->dtype == KILN_DTYPE_INT4 && (v & 8) ? v - 16 : v;
}

static void kl_set_subbyte(kl_rt *t, int64_t i, int64_t v) {
    uint8_t *p = t->data;
    if (t->dtype == KILN_DTYPE_INT2 || t->dtype == KILN_DTYPE_UINT2) {
        int sh = 2 * (int)(i % 4);
        p[i / 4] = (uint8_t)((p[i / 4] & ~(3 << sh)) | (((int)v & 3) << sh));
        return;
    }
    int sh = 4 * (int)(i % 2);
    p[i / 2] = (uint8_t)((p[i / 2] & ~(15 << sh)) | (((int)v & 15) << sh));
}

double kl_rt_get_f64(const kl_rt *t, int64_t i) {
    const uint8_t *d = t->data;
    switch (t->dtype) {
    case KILN_DTYPE_FLOAT: return ((const float *)d)[i];
    case KILN_DTYPE_DOUBLE: return ((const double *)d)[i];
    case KILN_DTYPE_FLOAT16: return kl_f16_to_f32(((const uint16_t *)d)[i]);
    case KILN_DTYPE_BFLOAT16: return kl_bf16_to_f32(((const uint16_t *)d)[i]);
    case KILN_DTYPE_INT8: return ((const int8_t *)d)[i];
    case KILN_DTYPE_UINT8: return d[i];
    case KILN_DTYPE_INT16: return ((const int16_t *)d)[i];
    case KILN_DTYPE_UINT16: return ((const uint16_t *)d)[i];
    case KILN_DTYPE_INT32: return ((const int32_t *)d)[i];
    case KILN_DTYPE_UINT32: return ((const uint32_t *)d)[i];
    case KILN_DTYPE_INT64: return (double)((const int64_t *)d)[i];
    case KILN_DTYPE_UINT64: return (double)((const uint64_t *)d)[i];
    case KILN_DTYPE_BOOL: return d[i] ? 1.0 : 0.0;
    case KILN_DTYPE_FLOAT8E4M3FN:
    case KILN_DTYPE_FLOAT8E4M3FNUZ:
    case KILN_DTYPE_FLOAT8E5M2:
    case KILN_DTYPE_FLOAT8E5M2FNUZ:
    case KILN_DTYPE_FLOAT8E8M0: return kl_small_to_f32(t->dtype, d[i]);
    case KILN_DTYPE_FLOAT4E2M1: return kl_small_to_f32(t->dtype, (uint8_t)((d[i / 2] >> (4 * (i % 2))) & 15));
    case KILN_DTYPE_INT4: case KILN_DTYPE_UINT4: case KILN_DTYPE_INT2: case KILN_DTYPE_UINT2:
        return (double)kl_get_subbyte(t, i);
    default: return 0.0;
    }
}

/* Convert a double to an integer type's range without UB: NaN -> 0,
 * out-of-range values saturate (C casts would be undefined). */
static int64_t kl_f64_to_i64_sat(double v, double lo, double hi) {
    if (isnan(v)) return 0;
    if (v <= lo) return (int64_t)lo;
    if (v >= hi) return v >= 9.2233720368547758e18 ? INT64_MAX : (int64_t)hi;
    return (int64_t)v;
}

void kl_rt_set_f64(kl_rt *t, int64_t i, double v) {
    uint8_t *d = t->data;
    switch (t->dtype) {
    case KILN_DTYPE_FLOAT: ((float *)d)[i] = (float)v; break;
    case KILN_DTYPE_DOUBLE: ((double *)d)[i] = v; break;
    case KILN_DTYPE_FLOAT16: ((uint16_t *)d)[i] = kl_f32_to_f16((float)v); break;
    case KILN_DTYPE_BFLOAT16: ((uint16_t *)d)[i] = kl_f32_to_bf16((float)v); break;
    case KILN_DTYPE_INT8: ((int8_t *)d)[i] = (int8_t)kl_f64_to_i64_sat(v, -128, 127); break;
    case KILN_DTYPE_UINT8: d[i] = (uint8_t)kl_f64_to_i64_sat(v, 0, 255); break;
    case KILN_DTYPE_INT16: ((int16_t *)d)[i] = (int16_t)kl_f64_to_i64_sat(v, -32768, 32767); break;
    case KILN_DTYPE_UINT16: ((uint16_t *)d)[i] = (uint16_t)kl_f64_to_i64_sat(v, 0, 65535); break;
    case KILN_DTYPE_INT32: ((int32_t *)d)[i] = (int32_t)kl_f64_to_i64_sat(v, -2147483648.0, 2147483647.0); break;
    case KILN_DTYPE_UINT32: ((uint32_t *)d)[i] = (uint32_t)kl_f64_to_i64_sat(v, 0, 4294967295.0); break;
    case KILN_DTYPE_INT64: ((int64_t *)d)[i] = kl_f64_to_i64_sat(v, -9.2233720368547758e18, 9.2233720368547758e18); break;
    case KILN_DTYPE_UINT64:
        ((uint64_t *)d)[i] = isnan(v) || v <= 0 ? 0 : v >= 1.8446744073709552e19 ? UINT64_MAX : (uint64_t)v;
        break;
    case KILN_DTYPE_BOOL: d[i] = v != 0.0; break;
    case KILN_DTYPE_FLOAT8E4M3FN:
    case KILN_DTYPE_FLOAT8E4M3FNUZ:
    case KILN_DTYPE_FLOAT8E5M2:
    case KILN_DTYPE_FLOAT8E5M2FNUZ:
    case KILN_DTYPE_FLOAT8E8M0: /* as Cast with its defaults: saturate, round_mode up */
        d[i] = (uint8_t)kl_sf_encode(t->dtype, v, true, KL_SF_ROUND_UP);
        break;
    case KILN_DTYPE_FLOAT4E2M1: {
        int sh = 4 * (int)(i % 2);
        uint8_t c = (uint8_t)kl_sf_encode(t->dtype, v, true, KL_SF_ROUND_UP);
        d[i / 2] = (uint8_t)((d[i / 2] & ~(15 << sh)) | (c << sh));
        break;
    }
    case KILN_DTYPE_INT4: kl_set_subbyte(t, i, kl_f64_to_i64_sat(nearbyint(v), -8, 7)); break;
    case KILN_DTYPE_UINT4: kl_set_subbyte(t, i, kl_f64_to_i64_sat(nearbyint(v), 0, 15)); break;
    case KILN_DTYPE_INT2: kl_set_subbyte(t, i, kl_f64_to_i64_sat(nearbyint(v), -2, 1)); break;
    case KILN_DTYPE_UINT2: kl_set_subbyte(t, i, kl_f64_to_i64_sat(nearbyint(v), 0, 3)); break;
    default: break;
    }
}

int64_t kl_rt_get_i64(const kl_rt *t, int64_t i) {
    const uint8_t *d = t->data;
    switch (t->dtype) {
    case KILN_DTYPE_INT8: return ((const int8_t *)d)[i];
    case KILN_DTYPE_UINT8: return d[i];
    case KILN_DTYPE_INT16: return ((const int16_t *)d)[i];
    case KILN_DTYPE_UINT16: return ((const uint16_t *)d)[i];
    case KILN_DTYPE_INT32: return ((const int32_t *)d)[i];
    case KILN_DTYPE_UINT32: return ((const uint32_t *)d)[i];
    case KILN_DTYPE_INT64: return ((const int64_t *)d)[i];
    case KILN_DTYPE_UINT64: return (int64_t)((const uint64_t *)d)[i];
    case KILN_DTYPE_BOOL: return d[i] != 0;
    case KILN_DTYPE_INT4: case KILN_DTYPE_UINT4: case KILN_DTYPE_INT2: case KILN_DTYPE_UINT2:
        return kl_get_subbyte(t, i);
    default: {
        double v = kl_rt_get_f64(t, i);
        return kl_f64_to_i64_sat(v, -9.2233720368547758e18, 9.2233720368547758e18);
    }
    }
}

void kl_rt_set_i64(kl_rt *t, int64_t i, int64_t v) {
    uint8_t *d = t->data;
    switch (t->dtype) {
    case KILN_DTYPE_INT8: ((int8_t *)d)[i] = (int8_t)v; break;
    case KILN_DTYPE_UINT8: d[i] = (uint8_t)v; break;
    case KILN_DTYPE_INT16: ((int16_t *)d)[i] = (int16_t)v; break;
    case KILN_DTYPE_UINT16: ((uint16_t *)d)[i] = (uint16_t)v; break;
    case KILN_DTYPE_INT32: ((int32_t *)d)[i] = (int32_t)v; break;
    case KILN_DTYPE_UINT32: ((uint32_t *)d)[i] = (uint32_t)v; break;
    case KILN_DTYPE_INT64: ((int64_t *)d)[i] = v; break;
    case KILN_DTYPE_UINT64: ((uint64_t *)d)[i] = (uint64_t)v; break;
    case KILN_DTYPE_BOOL: d[i] = v != 0; break;
    case KILN_DTYPE_INT4: case KILN_DTYPE_UINT4: case KILN_DTYPE_INT2: case KILN_DTYPE_UINT2:
        kl_set_subbyte(t, i, v);
        break;
    default: kl_rt_set_f64(t, i, (double)v); break;
    }
}

kiln_status kl_rt_to_i64(const kl_rt *t, int64_t *out, int64_t max, const char *what) {
    if (!t || t->kind != KL_RT_TENSOR || !kl_dtype_is_integer(t->dtype))
        return kl_errorf(KILN_ERR_TYPE, "%s must be an integer tensor", what);
    if (t->count > max)
        return kl_errorf(KILN_ERR_SHAPE, "%s has %lld elements; at most %lld allowed", what, (long long)t->count,
                         (long long)max);
    for (int64_t i = 0; i < t->count; i++) out[i] = kl_rt_get_i64(t, i);
    return KILN_OK;
}
