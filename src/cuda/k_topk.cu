/*
 * k_topk.cu — ONNX TopK on the device (launcher in cuda/kernels.h): one
 * block per row of x viewed as [outer, n, inner] (the row: n elements
 * `inner` apart), the row's (key, index) pairs sorted in shared memory by
 * a bitonic network, the first k written out.  Keys order as the CPU
 * reference's (src/cpu/ref/reduce_scan.c): NaN above +inf, -0 equal to +0,
 * the lower index first among equal values; the output is always sorted.
 */
#include "cuda/k_common.cuh"

/* A 32-bit key that sorts like the float: NaN highest, -0 as +0. */
static __device__ __forceinline__ unsigned tk_key(float v) {
    if (isnan(v)) return 0xffffffffu;
    if (v == 0.0f) v = 0.0f;
    unsigned b = __float_as_uint(v);
    return (b >> 31) ? ~b : (b | 0x80000000u);
}

template <typename T>
__global__ void __launch_bounds__(KC_THREADS) k_topk(T *vals, int64_t *idx, const T *x, int64_t n, int64_t inner,
                                                    int64_t k, int largest, int p2) {
    kc_pdl_wait();
    extern __shared__ unsigned long long tk_s[];
    const int64_t row = blockIdx.x, o = row / inner, in = row - o * inner;
    const T *xr = x + o * n * inner + in;
    /* (key, index) with the key flipped for the largest first: ascending = output order */
    for (int i = threadIdx.x; i < p2; i += blockDim.x) {
        unsigned long long e = ~0ull; /* padding sorts last */
        if (i < n) {
            unsigned key = tk_key(kc_ld(xr + (int64_t)i * inner));
            if (largest) key = ~key;
            e = ((unsigned long long)key << 32) | (unsigned)i;
        }
        tk_s[i] = e;
    }
    __syncthreads();
    for (int size = 2; size <= p2; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int i = threadIdx.x; i < p2 / 2; i += blockDim.x) {
                int lo = 2 * stride * (i / stride) + (i % stride), hi = lo + stride;
                bool up = (lo & size) == 0;
                unsigned long long a = tk_s[lo], b = tk_s[hi];
                if ((a > b) == up) {
                    tk_s[lo] = b;
                    tk_s[hi] = a;
                }
            }
            __syncthreads();
        }
    }
    T *vr = vals + o * k * inner + in;
    int64_t *ir = idx + o * k * inner + in;
    for (int j = threadIdx.x; j < k; j += blockDim.x) {
        int64_t src = (int64_t)(unsigned)(tk_s[j] & 0xffffffffu);
        vr[(int64_t)j * inner] = xr[src * inner];
        ir[(int64_t)j * inner] = src;
    }
}

extern "C" cudaError_t kc_topk(void *vals, int64_t *idx, const void *x, int64_t outer, int64_t n, int64_t inner,
                               int64_t k, int largest, kc_dtype t, cudaStream_t stream) {
    if (outer < 0 || n < 0 || inner < 0 || k < 0 || k > n || n > KC_TOPK_MAX_N) return cudaErrorInvalidValue;
    if (outer == 0 || inner == 0 || k == 0) return cudaSuccess;
    if (outer * inner > (int64_t)INT32_MAX) return cudaErrorInvalidValue;
    int p2 = 1;
    while (p2 < n) p2 <<= 1;
    size_t smem = (size_t)p2 * sizeof(unsigned long long);
    dim3 grid((unsigned)(outer * inner));
    if (t == KC_F16)
        kc_launch(k_topk<__half>, grid, dim3(KC_THREADS), smem, stream, (__half *)vals, idx, (const __half *)x, n,
                  inner, k, largest, p2);
    else
        kc_launch(k_topk<float>, grid, dim3(KC_THREADS), smem, stream, (float *)vals, idx, (const float *)x, n, inner,
                  k, largest, p2);
    return cudaGetLastError();
}
