/* kiln_tensor: dense CPU tensors, owning their memory or borrowing the caller's. */
#include <string.h>

#include "runtime/runtime.h"

/* Check dtype, rank and dims and compute the element count and byte size.
 * `fn` names the API function in messages. */
static kiln_status kl_tensor_layout(const char *fn, kiln_dtype dtype, const int64_t *shape,
                                    int rank, int64_t *count, size_t *nbytes) {
    if (!kl_dtype_valid((int32_t)dtype))
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: unknown element type %d", fn, (int)dtype);
    if (dtype == KILN_DTYPE_STRING)
        return kl_errorf(KILN_ERR_UNSUPPORTED,
                         "%s: string tensors are not supported through the API yet", fn);
    if (rank < 0 || rank > KILN_MAX_RANK)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: rank %d is outside 0..%d", fn, rank,
                         KILN_MAX_RANK);
    if (rank > 0 && !shape)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: shape is NULL for rank %d", fn, rank);
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0)
            return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: dim %d is %lld, must be >= 0", fn,
                             i, (long long)shape[i]);
        if (kl_mul_i64(n, shape[i], &n))
            return kl_errorf(KILN_ERR_INVALID_ARGUMENT,
                             "%s: element count of the shape overflows 64 bits", fn);
    }
    if (!kl_dtype_nbytes(dtype, n, nbytes) || *nbytes > KL_MAX_ALLOC)
        return kl_errorf(KILN_ERR_NO_MEMORY, "%s: %lld elements of %s exceed the %llu-byte limit",
                         fn, (long long)n, kiln_dtype_name(dtype),
                         (unsigned long long)KL_MAX_ALLOC);
    *count = n;
    return KILN_OK;
}

/* Allocate a tensor header for a validated layout. */
static kiln_status kl_tensor_new(kiln_dtype dtype, const int64_t *shape, int rank, int64_t count,
                                 size_t nbytes, kiln_tensor **out) {
    kiln_tensor *t = kl_calloc(1, sizeof *t);
    if (!t) return KILN_ERR_NO_MEMORY;
    t->dtype = dtype;
    t->rank = rank;
    if (rank > 0) memcpy(t->shape, shape, (size_t)rank * sizeof *shape);
    t->count = count;
    t->nbytes = nbytes;
    *out = t;
    return KILN_OK;
}

KILN_API kiln_status kiln_tensor_create(kiln_dtype dtype, const int64_t *shape, int rank,
                                        kiln_tensor **out) {
    if (!out) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_tensor_create: out is NULL");
    int64_t count;
    size_t nbytes;
    KL_TRY(kl_tensor_layout("kiln_tensor_create", dtype, shape, rank, &count, &nbytes));
    void *data = NULL;
    if (nbytes > 0 && !(data = kl_calloc(1, nbytes))) return KILN_ERR_NO_MEMORY;
    kiln_tensor *t;
    kiln_status s = kl_tensor_new(dtype, shape, rank, count, nbytes, &t);
    if (s != KILN_OK) {
        kl_free(data);
        return s;
    }
    t->data = data;
    t->owned = true;
    *out = t;
    return KILN_OK;
}

KILN_API kiln_status kiln_tensor_create_from_data(kiln_dtype dtype, const int64_t *shape,
                                                  int rank, void *data, size_t size_bytes,
                                                  kiln_tensor **out) {
    const char *fn = "kiln_tensor_create_from_data";
    if (!out) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
    int64_t count;
    size_t nbytes;
    KL_TRY(kl_tensor_layout(fn, dtype, shape, rank, &count, &nbytes));
    if (size_bytes != nbytes)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT,
                         "%s: size_bytes is %zu but %lld elements of %s take %zu bytes", fn,
                         size_bytes, (long long)count, kiln_dtype_name(dtype), nbytes);
    if (!data && nbytes > 0)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: data is NULL for %zu bytes", fn, nbytes);
    kiln_tensor *t;
    KL_TRY(kl_tensor_new(dtype, shape, rank, count, nbytes, &t));
    t->data = data;
    t->owned = false;
    *out = t;
    return KILN_OK;
}

KILN_API void kiln_tensor_destroy(kiln_tensor *tensor) {
    if (!tensor) return;
    if (tensor->owned) kl_free(tensor->data);
    kl_free(tensor);
}

KILN_API kiln_status kiln_tensor_dtype(const kiln_tensor *tensor, kiln_dtype *dtype) {
    if (!tensor || !dtype)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_tensor_dtype: %s is NULL",
                         !tensor ? "tensor" : "dtype");
    *dtype = tensor->dtype;
    return KILN_OK;
}

KILN_API kiln_status kiln_tensor_shape(const kiln_tensor *tensor, int *rank,
                                       const int64_t **shape) {
    if (!tensor || !rank || !shape)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_tensor_shape: %s is NULL",
                         !tensor ? "tensor" : !rank ? "rank" : "shape");
    *rank = tensor->rank;
    *shape = tensor->shape;
    return KILN_OK;
}

KILN_API kiln_status kiln_tensor_data(kiln_tensor *tensor, void **data, size_t *size_bytes) {
    if (!tensor || !data || !size_bytes)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_tensor_data: %s is NULL",
                         !tensor ? "tensor" : !data ? "data" : "size_bytes");
    *data = tensor->data;
    *size_bytes = tensor->nbytes;
    return KILN_OK;
}

KILN_API kiln_status kiln_tensor_element_count(const kiln_tensor *tensor, int64_t *count) {
    if (!tensor || !count)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_tensor_element_count: %s is NULL",
                         !tensor ? "tensor" : "count");
    *count = tensor->count;
    return KILN_OK;
}
