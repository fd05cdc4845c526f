/*
 * k_norm.cu — kiln's row-wise CUDA kernels (launchers in cuda/kernels.h):
 * kc_softmax (scale + broadcast mask; NaN-propagating max as the CPU
 * reference), kc_layernorm (LayerNorm / RMSNorm, two-pass statistics),
 * kc_reduce and kc_global_pool.  Rows of up to 1024 values go one warp per
 * row with the row held in registers; longer rows one block per row
 * (re-read from L1/L2); a reduced middle axis with inner > 1 one thread
 * (softmax) or one block column (reduce) per output.
 */
#include <stdlib.h>
#include <string.h>

#include "cuda/k_common.cuh"

/* ---- softmax --------------------------------------------------------------------------- */

typedef struct sm_args {
    void *y;
    const void *x, *mask;
    int64_t outer, axis, inner;
    float scale;
    int mask_f16;
    int64_t mdiv, mmod, mos, mas, mis;
} sm_args;

/* Offset of the mask row of outer index o. */
static __device__ __forceinline__ int64_t sm_mrow(const sm_args &a, int64_t o) { return (o / a.mdiv) % a.mmod * a.mos; }

static __device__ __forceinline__ float sm_mask(const sm_args &a, int64_t off) {
    return a.mask_f16 ? kc_ld((const __half *)a.mask + off) : kc_ld((const float *)a.mask + off);
}

/* scale * x + mask of element c (inner == 1) of row o at xr. */
template <typename T>
static __device__ __forceinline__ float sm_val(const sm_args &a, const T *xr, int64_t mrow, int64_t c) {
    float v = a.scale * kc_ld(xr + c);
    return a.mask ? v + sm_mask(a, mrow + c * a.mas) : v;
}

/* One warp per row of axis <= 32 * N values, inner == 1. */
template <typename T, int N> __global__ void k_softmax_warp(const sm_args a) {
    kc_pdl_wait();
    int lane = threadIdx.x & 31;
    int64_t wid = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5, nw = ((int64_t)gridDim.x * blockDim.x) >> 5;
    for (int64_t row = wid; row < a.outer; row += nw) {
        const T *xr = (const T *)a.x + row * a.axis;
        int64_t mrow = a.mask ? sm_mrow(a, row) : 0;
        float v[N], m = -INFINITY, s = 0;
#pragma unroll
        for (int k = 0; k < N; k++) {
            int64_t c = lane + 32 * k;
            v[k] = 0;
            if (c < a.axis) {
                v[k] = sm_val(a, xr, mrow, c);
                m = kc_nanmax(m, v[k]);
            }
        }
        m = kc_warp_reduce<KC_RED_MAX>(m);
#pragma unroll
        for (int k = 0; k < N; k++) {
            if (lane + 32 * k < a.axis) {
                v[k] = __expf(v[k] - m);
                s += v[k];
            }
        }
        float inv = 1.0f / kc_warp_reduce<KC_RED_SUM>(s);
        T *yr = (T *)a.y + row * a.axis;
#pragma unroll
        for (int k = 0; k < N; k++) {
            int64_t c = lane + 32 * k;
            if (c < a.axis) kc_st(yr + c, v[k] * inv);
        }
    }
}

/* One block per row, inner == 1: max, sum, write (three reads of the row). */
template <typename T> __global__ void k_softmax_block(const sm_args a) {
    kc_pdl_wait();
    __shared__ float sh[32];
    for (int64_t row = blockIdx.x; row < a.outer; row += gridDim.x) {
        const T *xr = (const T *)a.x + row * a.axis;
        T *yr = (T *)a.y + row * a.axis;
        int64_t mrow = a.mask ? sm_mrow(a, row) : 0;
        float m = -INFINITY, s = 0;
        for (int64_t c = threadIdx.x; c < a.axis; c += blockDim.x) m = kc_nanmax(m, sm_val(a, xr, mrow, c));
        m = kc_block_reduce<KC_RED_MAX>(m, sh, -INFINITY);
        for (int64_t c = threadIdx.x; c < a.axis; c += blockDim.x) s += __expf(sm_val(a, xr, mrow, c) - m);
        float inv = 1.0f / kc_block_reduce<KC_RED_SUM>(s, sh, 0.0f);
        for (int64_t c = threadIdx.x; c < a.axis; c += blockDim.x) kc_st(yr + c, __expf(sm_val(a, xr, mrow, c) - m) * inv);
    }
}

/* One thread per (outer, inner) column, inner > 1. */
template <typename T> __global__ void k_softmax_col(const sm_args a) {
    kc_pdl_wait();
    int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, nth = (int64_t)gridDim.x * blockDim.x;
    for (int64_t t = tid; t < a.outer * a.inner; t += nth) {
        int64_t o = t / a.inner, i = t % a.inner, base = o * a.axis * a.inner + i;
        const T *x = (const T *)a.x + base;
        T *y = (T *)a.y + base;
        int64_t moff = a.mask ? sm_mrow(a, o) + i * a.mis : 0;
        float m = -INFINITY, s = 0;
#define SM_VAL(r) (a.mask ? a.scale * kc_ld(x + (r) * a.inner) + sm_mask(a, moff + (r) * a.mas) : a.scale * kc_ld(x + (r) * a.inner))
        for (int64_t r = 0; r < a.axis; r++) m = kc_nanmax(m, SM_VAL(r));
        for (int64_t r = 0; r < a.axis; r++) s += __expf(SM_VAL(r) - m);
        float inv = 1.0f / s;
        for (int64_t r = 0; r < a.axis; r++) kc_st(y + r * a.inner, __expf(SM_VAL(r) - m) * inv);
#undef SM_VAL
    }
}

template <typename T> static void softmax_launch(const sm_args &a, cudaStream_t stream) {
    if (a.inner > 1) {
        kc_launch(k_softmax_col<T>, dim3(kc_blocks(a.outer * a.inner, KC_THREADS)), dim3(KC_THREADS), 0, stream, a);
    } else if (a.axis > 1024) {
        unsigned g = (unsigned)(a.outer < KC_MAX_BLOCKS ? a.outer : KC_MAX_BLOCKS);
        kc_launch(k_softmax_block<T>, dim3(g), dim3(512), 0, stream, a);
    } else {
        unsigned g = kc_blocks(a.outer * 32, KC_THREADS);
        if (a.axis <= 128) kc_launch(k_softmax_warp<T, 4>, dim3(g), dim3(KC_THREADS), 0, stream, a);
        else if (a.axis <= 512) kc_launch(k_softmax_warp<T, 16>, dim3(g), dim3(KC_THREADS), 0, stream, a);
        else kc_launch(k_softmax_warp<T, 32>, dim3(g), dim3(KC_THREADS), 0, stream, a);
    }
}

extern "C" cudaError_t kc_softmax(void *y, const void *x, int64_t outer, int64_t axis, int64_t inner, float scale,
                                  const void *mask, kc_dtype mask_t, int64_t mask_outer_div, int64_t mask_outer_mod,
                                  int64_t mask_outer_stride, int64_t mask_axis_stride, int64_t mask_inner_stride,
                                  kc_dtype t, cudaStream_t stream) {
    if (outer < 0 || axis < 0 || inner < 0) return cudaErrorInvalidValue;
    if (outer == 0 || axis == 0 || inner == 0) return cudaSuccess;
    if (mask && (mask_outer_div < 1 || mask_outer_mod < 1)) return cudaErrorInvalidValue;
    sm_args a = {y, x, mask, outer, axis, inner, scale, mask_t == KC_F16, mask ? mask_outer_div : 1,
                 mask ? mask_outer_mod : 1, mask_outer_stride, mask_axis_stride, mask_inner_stride};
    if (t == KC_F16) softmax_launch<__half>(a, stream);
    else softmax_launch<float>(a, stream);
    return cudaGetLastError();
}

/* ---- LayerNorm / RMSNorm ---------------------------------------------------------------- */

typedef struct ln_args {
    void *y;
    const void *x, *scale, *bias;
    int64_t rows, cols;
    float eps;
    int rms;
    int early; /* k_layernorm_warp8, float16: scale and bias loaded before the row (KILN_CUDA_LN_EARLY=0: after) */
    int persist; /* float16, cols % 8 == 0: k_layernorm_h8p (default; KILN_CUDA_LN_PERSIST=0: k_layernorm_warp8) */
} ln_args;

template <typename T>
static __device__ __forceinline__ float ln_out(const ln_args &a, float v, float mean, float inv, int64_t c) {
    float r = (v - mean) * inv;
    if (a.scale) r *= kc_ld((const T *)a.scale + c);
    if (a.bias) r += kc_ld((const T *)a.bias + c);
    return r;
}

/* One warp per row of cols <= 32 * N values. */
template <typename T, int N> __global__ void k_layernorm_warp(const ln_args a) {
    kc_pdl_wait();
    int lane = threadIdx.x & 31;
    int64_t wid = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5, nw = ((int64_t)gridDim.x * blockDim.x) >> 5;
    float rc = 1.0f / (float)a.cols;
    for (int64_t row = wid; row < a.rows; row += nw) {
        const T *xr = (const T *)a.x + row * a.cols;
        float v[N], mean = 0, q = 0;
#pragma unroll
        for (int k = 0; k < N; k++) {
            int64_t c = lane + 32 * k;
            v[k] = c < a.cols ? kc_ld(xr + c) : 0.0f;
            mean += v[k];
        }
        mean = a.rms ? 0.0f : kc_warp_reduce<KC_RED_SUM>(mean) * rc;
#pragma unroll
        for (int k = 0; k < N; k++) {
            float d = v[k] - mean;
            if (lane + 32 * k < a.cols) q += d * d;
        }
        float inv = rsqrtf(kc_warp_reduce<KC_RED_SUM>(q) * rc + a.eps);
        T *yr = (T *)a.y + row * a.cols;
#pragma unroll
        for (int k = 0; k < N; k++) {
            int64_t c = lane + 32 * k;
            if (c < a.cols) kc_st(yr + c, ln_out<T>(a, v[k], mean, inv, c));
        }
    }
}

/* One warp per row of cols <= 32 * 8 * NC values, cols % 8 == 0, every
 * pointer 16-byte aligned: each lane reads and writes 8 contiguous values
 * per 16-byte access (ViT's 768-wide float16 rows: 3 accesses per lane
 * instead of 24 two-byte ones), the row kept in registers. */
template <typename T, int NC> __global__ void k_layernorm_warp8(const ln_args a) {
    kc_pdl_wait();
    int lane = threadIdx.x & 31;
    int64_t wid = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5, nw = ((int64_t)gridDim.x * blockDim.x) >> 5;
    float rc = 1.0f / (float)a.cols;
    /* float16: the lane's scale and bias (the same for every row) loaded
     * raw before the row, so their loads overlap the row's instead of
     * following the two reductions (ViT-B/16's LayerNorms at batch 1 are
     * chains of a few dependent loads) */
    const bool RAW = sizeof(T) == 2 && a.early;
    uint4 rsc[NC], rbi[NC];
#pragma unroll
    for (int k = 0; k < NC; k++) {
        int64_t c = 8 * (lane + 32 * k);
        rsc[k] = rbi[k] = make_uint4(0, 0, 0, 0);
        if (RAW && c < a.cols) {
            if (a.scale) rsc[k] = *reinterpret_cast<const uint4 *>((const T *)a.scale + c);
            if (a.bias) rbi[k] = *reinterpret_cast<const uint4 *>((const T *)a.bias + c);
        }
    }
    for (int64_t row = wid; row < a.rows; row += nw) {
        const T *xr = (const T *)a.x + row * a.cols;
        float v[NC][8], mean = 0, q = 0;
#pragma unroll
        for (int k = 0; k < NC; k++) {
            int64_t c = 8 * (lane + 32 * k);
            if (c < a.cols) {
                kc_ld8(xr + c, v[k]);
            } else {
#pragma unroll
                for (int e = 0; e < 8; e++) v[k][e] = 0.0f;
            }
#pragma unroll
            for (int e = 0; e < 8; e++) mean += v[k][e];
        }
        mean = a.rms ? 0.0f : kc_warp_reduce<KC_RED_SUM>(mean) * rc;
#pragma unroll
        for (int k = 0; k < NC; k++)
            if (8 * (lane + 32 * k) < a.cols)
#pragma unroll
                for (int e = 0; e < 8; e++) q += (v[k][e] - mean) * (v[k][e] - mean);
        float inv = rsqrtf(kc_warp_reduce<KC_RED_SUM>(q) * rc + a.eps);
        T *yr = (T *)a.y + row * a.cols;
#pragma unroll
        for (int k = 0; k < NC; k++) {
            int64_t c = 8 * (lane + 32 * k);
            if (c >= a.cols) continue;
            float sc[8], bi[8], o[8];
            if (RAW) {
                const uint4 us = rsc[k], ub = rbi[k];
                sc[0] = kc_lo(us.x), sc[1] = kc_hi(us.x), sc[2] = kc_lo(us.y), sc[3] = kc_hi(us.y);
                sc[4] = kc_lo(us.z), sc[5] = kc_hi(us.z), sc[6] = kc_lo(us.w), sc[7] = kc_hi(us.w);
                bi[0] = kc_lo(ub.x), bi[1] = kc_hi(ub.x), bi[2] = kc_lo(ub.y), bi[3] = kc_hi(ub.y);
                bi[4] = kc_lo(ub.z), bi[5] = kc_hi(ub.z), bi[6] = kc_lo(ub.w), bi[7] = kc_hi(ub.w);
            } else {
                if (a.scale) kc_ld8((const T *)a.scale + c, sc);
                if (a.bias) kc_ld8((const T *)a.bias + c, bi);
            }
#pragma unroll
            for (int e = 0; e < 8; e++) {
                float r = (v[k][e] - mean) * inv;
                if (a.scale) r *= sc[e];
                if (a.bias) r += bi[e];
                o[e] = r;
            }
            kc_st8(yr + c, o);
        }
    }
}

/* float16 rows of cols <= 256 * NC (cols % 8 == 0, 16-byte aligned), one
 * warp per row on a grid sized to fill the device once (ln_persist_blocks),
 * each warp looping over rows: the scale and bias are read once per warp
 * instead of once per row (at ViT-B/16's batch 256, 50432 rows of 768, the
 * per-row reads were as many L2 bytes as the rows themselves), and the next
 * row's 16-byte loads are issued before this row's reductions, so every
 * warp keeps two rows in flight.  Rows are independent, so y may be x.
 * On by default since the twenty-eighth session (KILN_CUDA_LN_PERSIST=0 turns it off): H100, ViT-B/16
 * FP16 GPU compute medians, three alternating rounds, b256 19.14 against 19.58 ms with k_layernorm_warp8,
 * b1 0.4677 against 0.4740; test_cuda_kernels 1706/1706 with it (bench/gpu/session26.md, session28.md). */
template <int NC> __global__ void __launch_bounds__(KC_THREADS) k_layernorm_h8p(const ln_args a) {
    kc_pdl_wait();
    const int lane = threadIdx.x & 31;
    const int64_t wid = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5, nw = ((int64_t)gridDim.x * blockDim.x) >> 5;
    const float rc = 1.0f / (float)a.cols;
    const __half *x = (const __half *)a.x;
    __half *y = (__half *)a.y;
    uint4 rsc[NC], rbi[NC], cur[NC], nxt[NC];
#pragma unroll
    for (int k = 0; k < NC; k++) {
        const int64_t c = 8 * (lane + 32 * k);
        rsc[k] = rbi[k] = cur[k] = nxt[k] = make_uint4(0, 0, 0, 0);
        if (c < a.cols) {
            if (a.scale) rsc[k] = *reinterpret_cast<const uint4 *>((const __half *)a.scale + c);
            if (a.bias) rbi[k] = *reinterpret_cast<const uint4 *>((const __half *)a.bias + c);
            if (wid < a.rows) cur[k] = *reinterpret_cast<const uint4 *>(x + wid * a.cols + c);
        }
    }
    for (int64_t row = wid; row < a.rows; row += nw) {
        const int64_t nrow = row + nw;
#pragma unroll
        for (int k = 0; k < NC; k++) {
            const int64_t c = 8 * (lane + 32 * k);
            if (nrow < a.rows && c < a.cols) nxt[k] = *reinterpret_cast<const uint4 *>(x + nrow * a.cols + c);
        }
        float v[NC][8], mean = 0.0f, q = 0.0f;
#pragma unroll
        for (int k = 0; k < NC; k++) {
            const uint4 u = cur[k]; /* zero past cols */
            v[k][0] = kc_lo(u.x), v[k][1] = kc_hi(u.x), v[k][2] = kc_lo(u.y), v[k][3] = kc_hi(u.y);
            v[k][4] = kc_lo(u.z), v[k][5] = kc_hi(u.z), v[k][6] = kc_lo(u.w), v[k][7] = kc_hi(u.w);
#pragma unroll
            for (int e = 0; e < 8; e++) mean += v[k][e];
        }
        mean = a.rms ? 0.0f : kc_warp_reduce<KC_RED_SUM>(mean) * rc;
#pragma unroll
        for (int k = 0; k < NC; k++)
            if (8 * (lane + 32 * k) < a.cols)
#pragma unroll
                for (int e = 0; e < 8; e++) q += (v[k][e] - mean) * (v[k][e] - mean);
        const float inv = rsqrtf(kc_warp_reduce<KC_RED_SUM>(q) * rc + a.eps);
#pragma unroll
        for (int k = 0; k < NC; k++) {
            const int64_t c = 8 * (lane + 32 * k);
            if (c >= a.cols) continue;
            const uint4 us = rsc[k], ub = rbi[k];
            const float sc[8] = {kc_lo(us.x), kc_hi(us.x), kc_lo(us.y), kc_hi(us.y),
                                 kc_lo(us.z), kc_hi(us.z), kc_lo(us.w), kc_hi(us.w)};
            const float bi[8] = {kc_lo(ub.x), kc_hi(ub.x), kc_lo(ub.y), kc_hi(ub.y),
                                 kc_lo(ub.z), kc_hi(ub.z), kc_lo(ub.w), kc_hi(ub.w)};
            float o[8];
#pragma unroll
            for (int e = 0; e < 8; e++) {
                float r = (v[k][e] - mean) * inv;
                if (a.scale) r *= sc[e];
                if (a.bias) r += bi[e];
                o[e] = r;
            }
            kc_st8(y + row * a.cols + c, o);
            cur[k] = nxt[k];
        }
    }
}

/* Blocks of KC_THREADS that fill the device once with k (0: unknown). */
template <typename K> static unsigned ln_persist_blocks(K k) {
    int dev = 0, sms = 0, per = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per, k, KC_THREADS, 0) != cudaSuccess || sms < 1 || per < 1) {
        (void)cudaGetLastError();
        return 0;
    }
    return (unsigned)(sms * per);
}

/* One block per row. */
template <typename T> __global__ void k_layernorm_block(const ln_args a) {
    kc_pdl_wait();
    __shared__ float sh[32];
    float rc = 1.0f / (float)a.cols;
    for (int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {
        const T *xr = (const T *)a.x + row * a.cols;
        T *yr = (T *)a.y + row * a.cols;
        float mean = 0, q = 0;
        if (!a.rms) {
            for (int64_t c = threadIdx.x; c < a.cols; c += blockDim.x) mean += kc_ld(xr + c);
            mean = kc_block_reduce<KC_RED_SUM>(mean, sh, 0.0f) * rc;
        }
        for (int64_t c = threadIdx.x; c < a.cols; c += blockDim.x) {
            float d = kc_ld(xr + c) - mean;
            q += d * d;
        }
        float inv = rsqrtf(kc_block_reduce<KC_RED_SUM>(q, sh, 0.0f) * rc + a.eps);
        for (int64_t c = threadIdx.x; c < a.cols; c += blockDim.x)
            kc_st(yr + c, ln_out<T>(a, kc_ld(xr + c), mean, inv, c));
    }
}

template <typename T> static void layernorm_launch(const ln_args &a, cudaStream_t stream) {
    if (a.cols > 1024) {
        unsigned g = (unsigned)(a.rows < KC_MAX_BLOCKS ? a.rows : KC_MAX_BLOCKS);
        kc_launch(k_layernorm_block<T>, g, 512, 0, stream, a);
        return;
    }
    unsigned g = kc_blocks(a.rows * 32, KC_THREADS);
    const size_t al = 16;
    if (a.cols % 8 == 0 && (size_t)a.cols * sizeof(T) % al == 0 && kc_aligned(a.x, al) && kc_aligned(a.y, al) &&
        (!a.scale || kc_aligned(a.scale, al)) && (!a.bias || kc_aligned(a.bias, al))) {
        if (sizeof(T) == 2 && a.persist) {
            /* the device-filling grid (read once per device and instance: launches are on the run path) */
            static unsigned pb[4] = {0, 0, 0, 0};
            const int nc = a.cols <= 256 ? 1 : a.cols <= 512 ? 2 : a.cols <= 768 ? 3 : 4;
            if (!pb[nc - 1]) {
                unsigned v = nc == 1 ? ln_persist_blocks(k_layernorm_h8p<1>) : nc == 2 ? ln_persist_blocks(k_layernorm_h8p<2>)
                           : nc == 3 ? ln_persist_blocks(k_layernorm_h8p<3>) : ln_persist_blocks(k_layernorm_h8p<4>);
                pb[nc - 1] = v ? v : KC_MAX_BLOCKS;
            }
            if (g > pb[nc - 1]) g = pb[nc - 1];
            if (nc == 1) kc_launch(k_layernorm_h8p<1>, g, KC_THREADS, 0, stream, a);
            else if (nc == 2) kc_launch(k_layernorm_h8p<2>, g, KC_THREADS, 0, stream, a);
            else if (nc == 3) kc_launch(k_layernorm_h8p<3>, g, KC_THREADS, 0, stream, a);
            else kc_launch(k_layernorm_h8p<4>, g, KC_THREADS, 0, stream, a);
            return;
        }
        if (a.cols <= 256) kc_launch(k_layernorm_warp8<T, 1>, g, KC_THREADS, 0, stream, a);
        else if (a.cols <= 512) kc_launch(k_layernorm_warp8<T, 2>, g, KC_THREADS, 0, stream, a);
        else if (a.cols <= 768) kc_launch(k_layernorm_warp8<T, 3>, g, KC_THREADS, 0, stream, a);
        else kc_launch(k_layernorm_warp8<T, 4>, g, KC_THREADS, 0, stream, a);
        return;
    }
    if (a.cols <= 128) kc_launch(k_layernorm_warp<T, 4>, g, KC_THREADS, 0, stream, a);
    else if (a.cols <= 512) kc_launch(k_layernorm_warp<T, 16>, g, KC_THREADS, 0, stream, a);
    else kc_launch(k_layernorm_warp<T, 32>, g, KC_THREADS, 0, stream, a);
}

extern "C" cudaError_t kc_layernorm(void *y, const void *x, const void *scale, const void *bias, int64_t rows,
                                    int64_t cols, float eps, int rms, kc_dtype t, cudaStream_t stream) {
    if (rows < 0 || cols < 0) return cudaErrorInvalidValue;
    if (rows == 0 || cols == 0) return cudaSuccess;
    static int early = -1; /* read once: launches are on the run path */
    if (early < 0) {
        const char *e = getenv("KILN_CUDA_LN_EARLY");
        early = !(e && strcmp(e, "0") == 0);
    }
    static int persist = -1; /* KILN_CUDA_LN_PERSIST=0: k_layernorm_warp8 instead (bench/gpu/session28.md) */
    if (persist < 0) {
        const char *e = getenv("KILN_CUDA_LN_PERSIST");
        persist = !(e && strcmp(e, "0") == 0);
    }
    ln_args a = {y, x, scale, rms ? NULL : bias, rows, cols, eps, rms != 0, early, persist};
    if (t == KC_F16) layernorm_launch<__half>(a, stream);
    else layernorm_launch<float>(a, stream);
    return cudaGetLastError();
}

/* ---- reductions ------------------------------------------------------------------------- */

typedef struct rd_args {
    void *y;
    const void *x;
    int64_t outer, red, inner;
    int op; /* 0 sum, 1 mean, 2 max, 3 min, 4 sum of squares, 5 L2 */
} rd_args;

static __device__ __forceinline__ float rd_ident(int op) { return op == 2 ? -INFINITY : op == 3 ? INFINITY : 0.0f; }

static __device__ __forceinline__ float rd_comb(int op, float acc, float v) {
    return op == 2 ? kc_nanmax(acc, v) : op == 3 ? kc_nanmin(acc, v) : acc + v;
}

static __device__ __forceinline__ float rd_elem(int op, float v) { return op >= 4 ? v * v : v; }

static __device__ __forceinline__ float rd_final(const rd_args &a, float acc) {
    return a.op == 1 ? __fdiv_rn(acc, (float)a.red) : a.op == 5 ? __fsqrt_rn(acc) : acc;
}

/* Reduce acc over a full warp with op's combiner. */
static __device__ __forceinline__ float rd_warp(int op, float acc) {
    return op == 2 ? kc_warp_reduce<KC_RED_MAX>(acc) : op == 3 ? kc_warp_reduce<KC_RED_MIN>(acc)
                                                               : kc_warp_reduce<KC_RED_SUM>(acc);
}

/* inner == 1, red <= 1024: one warp per row. */
template <typename T> __global__ void k_reduce_warp(const rd_args a) {
    kc_pdl_wait();
    int lane = threadIdx.x & 31;
    int64_t wid = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5, nw = ((int64_t)gridDim.x * blockDim.x) >> 5;
    for (int64_t row = wid; row < a.outer; row += nw) {
        const T *xr = (const T *)a.x + row * a.red;
        float acc = rd_ident(a.op);
        for (int64_t c = lane; c < a.red; c += 32) acc = rd_comb(a.op, acc, rd_elem(a.op, kc_ld(xr + c)));
        acc = rd_warp(a.op, acc);
        if (lane == 0) kc_st((T *)a.y + row, rd_final(a, acc));
    }
}

/* inner == 1, red > 1024: one block per row. */
template <typename T> __global__ void k_reduce_block(const rd_args a) {
    kc_pdl_wait();
    __shared__ float sh[32];
    float id = rd_ident(a.op);
    for (int64_t row = blockIdx.x; row < a.outer; row += gridDim.x) {
        const T *xr = (const T *)a.x + row * a.red;
        float acc = id;
        for (int64_t c = threadIdx.x; c < a.red; c += blockDim.x) acc = rd_comb(a.op, acc, rd_elem(a.op, kc_ld(xr + c)));
        acc = a.op == 2   ? kc_block_reduce<KC_RED_MAX>(acc, sh, id)
              : a.op == 3 ? kc_block_reduce<KC_RED_MIN>(acc, sh, id)
                          : kc_block_reduce<KC_RED_SUM>(acc, sh, id);
        if (threadIdx.x == 0) kc_st((T *)a.y + row, rd_final(a, acc));
    }
}

/* inner > 1: blocks of (bx, by) threads; a block owns bx consecutive inner
 * indices of one outer index, its rows split the reduced axis by by. */
template <typename T> __global__ void k_reduce_cols(const rd_args a) {
    kc_pdl_wait();
    __shared__ float sh[KC_THREADS];
    int bx = blockDim.x, by = blockDim.y, tx = threadIdx.x, ty = threadIdx.y;
    int64_t tiles = (a.inner + bx - 1) / bx;
    float id = rd_ident(a.op);
    for (int64_t b = blockIdx.x; b < a.outer * tiles; b += gridDim.x) {
        int64_t o = b / tiles, i = (b % tiles) * bx + tx;
        float acc = id;
        if (i < a.inner) {
            const T *x = (const T *)a.x + o * a.red * a.inner + i;
            for (int64_t r = ty; r < a.red; r += by) acc = rd_comb(a.op, acc, rd_elem(a.op, kc_ld(x + r * a.inner)));
        }
        __syncthreads(); /* the previous tile's reads of sh are done */
        sh[ty * bx + tx] = acc;
        __syncthreads();
        if (ty == 0 && i < a.inner) {
            for (int k = 1; k < by; k++) acc = rd_comb(a.op, acc, sh[k * bx + tx]);
            kc_st((T *)a.y + o * a.inner + i, rd_final(a, acc));
        }
    }
}

template <typename T> static void reduce_launch(const rd_args &a, cudaStream_t stream) {
    if (a.inner > 1) {
        int by = a.red >= 8 ? 8 : a.red < 1 ? 1 : (int)a.red;
        int bx = KC_THREADS / by;
        if (bx > 32 && a.inner <= 32) bx = 32;
        int64_t tiles = (a.inner + bx - 1) / bx;
        int64_t nb = a.outer * tiles;
        kc_launch(k_reduce_cols<T>, dim3((unsigned)(nb < KC_MAX_BLOCKS ? nb : KC_MAX_BLOCKS)), dim3(bx, by), 0, stream, a);
    } else if (a.red > 1024) {
        kc_launch(k_reduce_block<T>, dim3((unsigned)(a.outer < KC_MAX_BLOCKS ? a.outer : KC_MAX_BLOCKS)), dim3(512), 0, stream, a);
    } else {
        kc_launch(k_reduce_warp<T>, dim3(kc_blocks(a.outer * 32, KC_THREADS)), dim3(KC_THREADS), 0, stream, a);
    }
}

extern "C" cudaError_t kc_reduce(void *y, const void *x, int64_t outer, int64_t red, int64_t inner, int op, kc_dtype t,
                                 cudaStream_t stream) {
    if (outer < 0 || red < 0 || inner < 0 || op < 0 || op > 5) return cudaErrorInvalidValue;
    if (outer == 0 || inner == 0) return cudaSuccess;
    rd_args a = {y, x, outer, red, inner, op};
    if (t == KC_F16) reduce_launch<__half>(a, stream);
    else reduce_launch<float>(a, stream);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_global_pool(void *y, const void *x, int64_t rows, int64_t inner, int is_max, kc_dtype t,
                                      cudaStream_t stream) {
    return kc_reduce(y, x, rows, inner, 1, is_max ? 2 : 1, t, stream);
}

/* ---- squeeze-and-excitation MLP ---------------------------------------------------------- */

typedef struct se_args {
    void *y;
    const void *p, *w1, *b1, *w2, *b2;
    int c, cr, act1, act2;
    float a1, be1, a2, be2;
} se_args;

template <typename T> __global__ void k_se_mlp(const se_args a) {
    kc_pdl_wait();
    extern __shared__ float se_sh[];
    float *sp = se_sh, *sh = se_sh + a.c;
    const int64_t row = blockIdx.x;
    const T *p = (const T *)a.p + row * a.c, *w1 = (const T *)a.w1, *w2 = (const T *)a.w2;
    const T *b1 = (const T *)a.b1, *b2 = (const T *)a.b2;
    for (int i = threadIdx.x; i < a.c; i += blockDim.x) sp[i] = kc_ld(p + i);
    __syncthreads();
    /* hidden units: a warp each, lanes over C */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int j = warp; j < a.cr; j += nw) {
        const T *wr = w1 + (int64_t)j * a.c;
        float acc = 0.0f;
        for (int i = lane; i < a.c; i += 32) acc = fmaf(kc_ld(wr + i), sp[i], acc);
        acc = kc_warp_reduce<KC_RED_SUM>(acc);
        if (lane == 0) sh[j] = kc_act(a.act1, acc + (b1 ? kc_ld(b1 + j) : 0.0f), a.a1, a.be1);
    }
    __syncthreads();
    /* outputs: a thread each, over the hidden units in shared memory */
    T *y = (T *)a.y + row * a.c;
    for (int i = threadIdx.x; i < a.c; i += blockDim.x) {
        const T *wr = w2 + (int64_t)i * a.cr;
        float acc = 0.0f;
        for (int j = 0; j < a.cr; j++) acc = fmaf(kc_ld(wr + j), sh[j], acc);
        kc_st(y + i, kc_act(a.act2, acc + (b2 ? kc_ld(b2 + i) : 0.0f), a.a2, a.be2));
    }
}

extern "C" cudaError_t kc_se_mlp(void *y, const void *p, const void *w1, const void *b1, const void *w2, const void *b2,
                                 int64_t n, int64_t c, int64_t cr, int act1, float alpha1, float beta1, int act2,
                                 float alpha2, float beta2, kc_dtype t, cudaStream_t stream) {
    if (n < 0 || c < 1 || cr < 1 || c > 8192 || cr > 1024 || n > 0x7fffffff || !y || !p || !w1 || !w2 ||
        (t != KC_F32 && t != KC_F16))
        return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    se_args a = {y, p, w1, b1, w2, b2, (int)c, (int)cr, act1, act2, alpha1, beta1, alpha2, beta2};
    size_t smem = (size_t)(c + cr) * sizeof(float);
    if (t == KC_F16) kc_launch(k_se_mlp<__half>, dim3((unsigned)n), dim3(KC_THREADS), smem, stream, a);
    else kc_launch(k_se_mlp<float>, dim3((unsigned)n), dim3(KC_THREADS), smem, stream, a);
    return cudaGetLastError();
}

/* ---- global pool + squeeze-and-excitation MLP ------------------------------------------- */

/* The pool runs over (channel chunk, row part, image) blocks into float
 * partial sums (or maxima) [N, P, C] in the workspace, P parts of the rows
 * so that a batch-1 pool fills the GPU (one block per image and channel
 * chunk took 20-28 us on EfficientNet-B0's early layers); then the MLP
 * kernel combines the parts and runs both layers, over (slice of 256
 * outputs, image) blocks, each block recomputing the few hidden units. */
#define SEP_TARGET_BLOCKS 264
/* the MLP kernel's block: 512 threads by default, so that the parts of a
 * channel are summed by up to 4 lanes at once where C is small and 16 warps
 * share the hidden units (256 threads left a chain of 56-75 dependent loads
 * per thread on EfficientNet-B0's 96- and 144-channel layers).  Measured on
 * an H100, EfficientNet-B0 FP16 GPU compute, three rounds each: batch 1
 * 0.472 ms with 512 or 1024 threads against 0.507 with 256; batch 256
 * 7.62 ms with 512, 7.68-7.74 with 1024, 7.72-7.74 with 256.
 * KILN_CUDA_SE_THREADS=256 or 1024 picks another (the kernels are compiled
 * for up to SEP_MLP_MAX). */
#define SEP_MLP_MAX 1024
static int sep_mlp_threads(void) {
    static int t = 0;
    if (!t) {
        const char *e = getenv("KILN_CUDA_SE_THREADS");
        t = e && (atoi(e) == 256 || atoi(e) == 1024) ? atoi(e) : 512;
    }
    return t;
}

static int64_t sep_bx(int64_t c, int v) { int64_t cg = c / v; return cg >= 32 ? 32 : cg; }

static int sep_vec(int64_t c, kc_dtype t) { return t == KC_F16 ? (c % 8 == 0 ? 8 : 1) : (c % 4 == 0 ? 4 : 1); }

static int64_t sep_parts(int64_t n, int64_t hw, int64_t c, kc_dtype t) {
    int v = sep_vec(c, t);
    int64_t bx = sep_bx(c, v), by = KC_THREADS / bx, chunks = (c / v + bx - 1) / bx;
    /* enough blocks to fill the GPU, at least 4 rows per thread */
    int64_t want = (SEP_TARGET_BLOCKS + n * chunks - 1) / (n * chunks), most = (hw + 4 * by - 1) / (4 * by);
    if (want > most) want = most;
    if (want > 256) want = 256;
    return want < 1 ? 1 : want;
}

/* the parts [N, P, C], then (16-byte aligned) the split fold's scales [N, C], all float */
static int64_t sep_sc_off(int64_t n, int64_t hw, int64_t c, kc_dtype t) {
    return (n * sep_parts(n, hw, c, t) * c + 3) / 4 * 4;
}

extern "C" size_t kc_se_pool_ws(int64_t n, int64_t hw, int64_t c, kc_dtype t) {
    if (n < 1 || hw < 1 || c < 1) return 0;
    return (size_t)(sep_sc_off(n, hw, c, t) + n * c) * sizeof(float);
}

/* The fold's form: KILN_CUDA_SE_SPLIT=0 the fused kernel (every block
 * recomputes the MLP), 1 one MLP block per image then k_se_fold, 2 (the
 * default) k_se_hidden then k_se_scale_fold. */
static int sep_split(void) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("KILN_CUDA_SE_SPLIT");
        on = e && (strcmp(e, "0") == 0 || strcmp(e, "1") == 0) ? e[0] - '0' : 2;
    }
    return on;
}

/* KILN_CUDA_SE_EARLY=0: k_se_hidden and k_se_scale_fold issue their
 * constant loads in program order (after the values they wait for). */
static int sep_early(void) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("KILN_CUDA_SE_EARLY");
        on = !(e && strcmp(e, "0") == 0);
    }
    return on;
}

template <typename T, int V>
__global__ void k_pool_part(float *part, const T *x, int64_t hw, int64_t c, int64_t parts, int is_max) {
    extern __shared__ float pp_sh[];
    kc_pdl_wait();
    int bx = blockDim.x, by = blockDim.y, tx = threadIdx.x, ty = threadIdx.y, lin = ty * bx + tx;
    int64_t cg = c / V, g = (int64_t)blockIdx.x * bx + tx, c0 = (int64_t)blockIdx.x * bx * V;
    int64_t part_i = blockIdx.y, ni = blockIdx.z, rows = (hw + parts - 1) / parts;
    int64_t r0 = part_i * rows, r1 = r0 + rows < hw ? r0 + rows : hw;
    float id = is_max ? -INFINITY : 0.0f, acc[V], v[V];
#pragma unroll
    for (int j = 0; j < V; j++) acc[j] = id;
    if (g < cg) {
        const T *xp = x + ni * hw * c + g * V;
        for (int64_t i = r0 + ty; i < r1; i += by) {
            kc_ldv<V>(xp + i * c, v);
#pragma unroll
            for (int j = 0; j < V; j++) acc[j] = is_max ? kc_nanmax(acc[j], v[j]) : acc[j] + v[j];
        }
    }
#pragma unroll
    for (int j = 0; j < V; j++) pp_sh[lin * V + j] = acc[j];
    __syncthreads();
    for (int o = lin; o < bx * V && c0 + o < c; o += bx * by) {
        float a = id;
        for (int k = 0; k < by; k++) {
            float s = pp_sh[k * bx * V + o];
            a = is_max ? kc_nanmax(a, s) : a + s;
        }
        part[(ni * parts + part_i) * c + c0 + o] = a;
    }
}

typedef struct sep_args {
    void *y;
    const float *part;
    const void *w1, *b1, *w2, *b2;
    int64_t hw, parts;
    int c, cr, act1, act2, is_max;
    float a1, be1, a2, be2;
    void *wf;         /* wf [N][K, C] = wsrc [K, C] * y[n] (per column), or NULL */
    const void *wsrc;
    int wk;
} sep_args;

/* The pooled means (or maxima) of the block's image into sp [C] and the
 * hidden units into sh [CR], both in shared memory. */
template <typename T, int V> __device__ void sep_pool(const sep_args &a, int64_t row, float *sp, float *scratch = NULL) {
    const float *part = a.part + row * a.parts * a.c;
    /* with scratch (4 floats a thread, 16-byte aligned): 16-byte columns,
     * the parts split over the threads left, then summed in order (the
     * tap-major depthwise kernel's parts: 49-448 of them a channel) */
    const int cols = a.c / 4;
    if (scratch && a.c % 4 == 0 && a.parts > 1 && cols <= (int)blockDim.x && ((uintptr_t)part & 15) == 0) {
        int lanes = (int)blockDim.x / cols;
        if (lanes > a.parts) lanes = (int)a.parts;
        const int col = threadIdx.x % cols, k0 = threadIdx.x / cols;
        const float id = a.is_max ? -INFINITY : 0.0f;
        if (k0 < lanes) {
            float acc[4] = {id, id, id, id};
#pragma unroll 4
            for (int64_t k = k0; k < a.parts; k += lanes) {
                float v[4];
                kc_ldv<4>(part + k * a.c + col * 4, v);
#pragma unroll
                for (int e = 0; e < 4; e++) acc[e] = a.is_max ? kc_nanmax(acc[e], v[e]) : acc[e] + v[e];
            }
#pragma unroll
            for (int e = 0; e < 4; e++) scratch[(k0 * cols + col) * 4 + e] = acc[e];
        }
        __syncthreads();
        for (int i = threadIdx.x; i < a.c; i += blockDim.x) {
            float acc = id;
            for (int l = 0; l < lanes; l++) acc = a.is_max ? kc_nanmax(acc, scratch[l * a.c + i]) : acc + scratch[l * a.c + i];
            sp[i] = a.is_max ? acc : __fdiv_rn(acc, (float)a.hw);
        }
        __syncthreads();
        return;
    }
    /* the parts of each channel: G lanes of a warp each (a serial loop over
     * 196 parts took 35 us for a 32-channel layer) */
    int G = 1;
    while (G < 32 && G < a.parts && 2 * G * a.c <= (int)blockDim.x) G *= 2;
    const int per = blockDim.x / G, gi = threadIdx.x % G, ch = threadIdx.x / G;
    for (int base = 0; base < a.c; base += per) {
        int i = base + ch;
        float acc = a.is_max ? -INFINITY : 0.0f;
        if (i < a.c)
#pragma unroll 4
            for (int64_t k = gi; k < a.parts; k += G) {
                float s = part[k * a.c + i];
                acc = a.is_max ? kc_nanmax(acc, s) : acc + s;
            }
        for (int off = G / 2; off > 0; off >>= 1) {
            float o = __shfl_down_sync(0xffffffffu, acc, off, G);
            acc = a.is_max ? kc_nanmax(acc, o) : acc + o;
        }
        if (gi == 0 && i < a.c) sp[i] = a.is_max ? acc : __fdiv_rn(acc, (float)a.hw);
    }
    __syncthreads();
}

template <typename T, int V> __device__ void sep_hidden(const sep_args &a, int64_t row, float *sp, float *sh) {
    sep_pool<T, V>(a, row, sp);
    /* hidden units: a warp each, lanes over C (V elements per load) */
    const T *w1 = (const T *)a.w1, *b1 = (const T *)a.b1;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    /* four hidden units at a time per warp, so that their loads are in flight together */
    for (int j0 = warp * 4; j0 < a.cr; j0 += nw * 4) {
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        /* unrolled so that several rounds of loads are in flight (at batch 1
         * the MLP is a chain of dependent loads: 22 us for C = 1152 with a
         * cold L2 when each round waited for the one before) */
#pragma unroll 3
        for (int i = lane * V; i < a.c; i += 32 * V) {
            float v[4][V];
#pragma unroll
            for (int q = 0; q < 4; q++)
                if (j0 + q < a.cr) kc_ldv<V>(w1 + (int64_t)(j0 + q) * a.c + i, v[q]);
#pragma unroll
            for (int q = 0; q < 4; q++)
                if (j0 + q < a.cr) {
#pragma unroll
                    for (int e = 0; e < V; e++) acc[q] = fmaf(v[q][e], sp[i + e], acc[q]);
                }
        }
#pragma unroll
        for (int q = 0; q < 4; q++) {
            float r = kc_warp_reduce<KC_RED_SUM>(acc[q]);
            if (lane == 0 && j0 + q < a.cr) sh[j0 + q] = kc_act(a.act1, r + (b1 ? kc_ld(b1 + j0 + q) : 0.0f), a.a1, a.be1);
        }
    }
    __syncthreads();
}

/* Output channel i of the MLP (the scale), over the hidden units sh. */
template <typename T, int V> __device__ float sep_out(const sep_args &a, int i, const float *sh) {
    const T *wr = (const T *)a.w2 + (int64_t)i * a.cr, *b2 = (const T *)a.b2;
    float acc = 0.0f;
    if (V == 8 && a.cr % 8 == 0 && ((uintptr_t)wr & 15) == 0) { /* 16-byte rows pieces */
#pragma unroll 4
        for (int j = 0; j < a.cr; j += 8) {
            float v[8];
            kc_ldv<8>(wr + j, v);
#pragma unroll
            for (int e = 0; e < 8; e++) acc = fmaf(v[e], sh[j + e], acc);
        }
    } else {
#pragma unroll 8
        for (int j = 0; j < a.cr; j++) acc = fmaf(kc_ld(wr + j), sh[j], acc);
    }
    return kc_act(a.act2, acc + (b2 ? kc_ld(b2 + i) : 0.0f), a.a2, a.be2);
}

template <typename T, int V> __global__ void __launch_bounds__(SEP_MLP_MAX) k_se_mlp_part(const sep_args a) {
    extern __shared__ float se_sh[];
    kc_pdl_wait();
    float *sp = se_sh, *sh = se_sh + a.c;
    /* folding into the next 1x1 convolution's weights: blockIdx.y is a
     * slice of its K rows, blockIdx.z the image; every block computes the MLP */
    const int64_t row = a.wf ? blockIdx.z : blockIdx.y;
    sep_hidden<T, V>(a, row, sp, sh);
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= a.c) return;
    float sv = sep_out<T, V>(a, i, sh);
    if (!a.wf || blockIdx.y == 0) kc_st((T *)a.y + row * a.c + i, sv);
    if (a.wf) { /* the column i of this block's rows of the weights, scaled by y as stored */
        T st;
        kc_st(&st, sv);
        sv = kc_ld(&st);
        int per = (a.wk + (int)gridDim.y - 1) / (int)gridDim.y, o0 = (int)blockIdx.y * per;
        int o1 = o0 + per < a.wk ? o0 + per : a.wk;
        const T *ws = (const T *)a.wsrc;
        T *wf = (T *)a.wf + row * a.wk * a.c;
#pragma unroll 4
        for (int o = o0; o < o1; o++) kc_st(wf + (int64_t)o * a.c + i, kc_ld(ws + (int64_t)o * a.c + i) * sv);
    }
}

/* The split form of the fold: one block per image computes the MLP once
 * and writes the scale (as stored, in float) to sc [N, C]; then k_se_fold
 * scales the weights over the whole GPU, V elements a thread.  The fused
 * kernel above recomputes the MLP in every block of its slices, and its
 * chain of dependent loads (parts, both layers, then the rows of its slice
 * one element a thread) took 12-17 us for EfficientNet-B0's 672- and
 * 1152-channel layers with warm caches (ncu, H100). */
template <typename T, int V> __global__ void __launch_bounds__(SEP_MLP_MAX) k_se_mlp_one(const sep_args a, float *sc) {
    extern __shared__ float se_sh[];
    kc_pdl_wait();
    float *sp = se_sh, *sh = se_sh + a.c;
    const int64_t row = blockIdx.x;
    sep_hidden<T, V>(a, row, sp, sh);
    for (int i = threadIdx.x; i < a.c; i += blockDim.x) {
        T st;
        kc_st(&st, sep_out<T, V>(a, i, sh));
        ((T *)a.y)[row * a.c + i] = st;
        sc[row * a.c + i] = kc_ld(&st);
    }
}

/* wf [n][o][i] = wsrc [o][i] * sc [n][i], V elements a thread (C % V == 0). */
template <typename T, int V> __global__ void k_se_fold(T *wf, const T *wsrc, const float *sc, int64_t n, int64_t wk,
                                                       int64_t c) {
    kc_pdl_wait();
    const int64_t cv = c / V, total = n * wk * cv;
    for (int64_t g = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; g < total; g += (int64_t)gridDim.x * blockDim.x) {
        int64_t iv = g % cv, t = g / cv, o = t % wk, ni = t / wk;
        float w[V], s[V];
        kc_ldv<V>(wsrc + o * c + iv * V, w);
        const float *sp = sc + ni * c + iv * V;
        if (V % 4 == 0) {
#pragma unroll
            for (int q = 0; q < V; q += 4) kc_ldv<4>(sp + q, s + q);
        } else {
#pragma unroll
            for (int e = 0; e < V; e++) s[e] = sp[e];
        }
#pragma unroll
        for (int e = 0; e < V; e++) w[e] *= s[e];
        kc_stv<V>(wf + (ni * wk + o) * c + iv * V, w);
    }
}

/* The split fold's second form (the default): the hidden units over
 * several blocks, a warp each with all its loads in flight (k_se_hidden),
 * then the scales and the fold together over the GPU (k_se_scale_fold).
 * ncu put k_se_mlp_one's single block at 46% achieved occupancy with 37% of
 * its stalls at barriers: the 48 hidden units of a 1152-channel layer ran
 * on 12 warps of one multiprocessor, too few loads in flight to read their
 * 110 KB of weights quickly. */
#define SEH_WARPS 16
template <typename T, int V>
__global__ void __launch_bounds__(SEH_WARPS * 32) k_se_hidden(const sep_args a, float *hid, int early) {
    extern __shared__ float se_sh[];
    kc_pdl_wait();
    const int64_t row = blockIdx.y;
    const int lane = threadIdx.x & 31, j = blockIdx.x * SEH_WARPS + (threadIdx.x >> 5);
    const T *wr = (const T *)a.w1 + (int64_t)(j < a.cr ? j : 0) * a.c, *b1 = (const T *)a.b1;
    /* the first round of the row's loads is issued before the pool (it does
     * not depend on it), so that the two latencies overlap (early) */
    float v[8][V];
    const bool pre = early && j < a.cr;
    if (pre) {
#pragma unroll
        for (int u = 0; u < 8; u++)
            if (lane * V + u * 32 * V < a.c) kc_ldv<V>(wr + lane * V + u * 32 * V, v[u]);
    }
    sep_pool<T, V>(a, row, se_sh, se_sh + a.c);
    if (j >= a.cr) return;
    float acc = 0.0f;
    /* rounds of 8 loads a lane issued before their sums (C = 1152 at V = 8: one round) */
    for (int i0 = lane * V; i0 < a.c; i0 += 8 * 32 * V) {
        if (!pre || i0 != lane * V) {
#pragma unroll
            for (int u = 0; u < 8; u++)
                if (i0 + u * 32 * V < a.c) kc_ldv<V>(wr + i0 + u * 32 * V, v[u]);
        }
#pragma unroll
        for (int u = 0; u < 8; u++)
            if (i0 + u * 32 * V < a.c) {
#pragma unroll
                for (int e = 0; e < V; e++) acc = fmaf(v[u][e], se_sh[i0 + u * 32 * V + e], acc);
            }
    }
    acc = kc_warp_reduce<KC_RED_SUM>(acc);
    if (lane == 0) hid[row * a.cr + j] = kc_act(a.act1, acc + (b1 ? kc_ld(b1 + j) : 0.0f), a.a1, a.be1);
}

/* Block (slice of 256 channels, slice of the K rows, image): the slice's
 * scales (a thread each, over the hidden units), stored once to y, then
 * wf [n][o][i] = wsrc [o][i] * scale[i] over the block's rows, V columns a
 * thread. */
#define SESF_COLS 256
template <typename T, int V>
__global__ void __launch_bounds__(SESF_COLS) k_se_scale_fold(const sep_args a, const float *hid, int early) {
    __shared__ float ssc[SESF_COLS];
    extern __shared__ float sh_h[];
    kc_pdl_wait();
    const int64_t row = blockIdx.z;
    const int c0 = blockIdx.x * SESF_COLS, i = c0 + threadIdx.x;
    const int per = (a.wk + (int)gridDim.y - 1) / (int)gridDim.y, o0 = (int)blockIdx.y * per;
    const int o1 = o0 + per < a.wk ? o0 + per : a.wk;
    constexpr int G = SESF_COLS / V;
    const int gi = threadIdx.x % G, col = c0 + gi * V, of = o0 + (int)threadIdx.x / G;
    const T *ws = (const T *)a.wsrc;
    /* early: the loads that do not depend on the hidden units (this
     * thread's row of w2 and its first row of the weights to scale) are
     * issued before them, so that their latency overlaps the wait for hid */
    const T *w2r = (const T *)a.w2 + (int64_t)(i < a.c ? i : 0) * a.cr;
    const bool pre2 = early && sizeof(T) == 2 && i < a.c && a.cr % 8 == 0 && a.cr <= 64 && ((uintptr_t)w2r & 15) == 0;
    const bool prew = early && col < a.c && of < o1;
    float w2v[64], wfirst[V];
    if (pre2) {
#pragma unroll
        for (int q = 0; q < 8; q++)
            if (q * 8 < a.cr) kc_ldv<8>(w2r + q * 8, w2v + q * 8);
    }
    if (prew) kc_ldv<V>(ws + (int64_t)of * a.c + col, wfirst);
    for (int j = threadIdx.x; j < a.cr; j += blockDim.x) sh_h[j] = hid[row * a.cr + j];
    __syncthreads();
    if (i < a.c) {
        T st;
        float sv;
        if (pre2) { /* sep_out's order of products */
            const T *b2 = (const T *)a.b2;
            float acc = 0.0f;
#pragma unroll
            for (int q = 0; q < 8; q++)
                if (q * 8 < a.cr) {
#pragma unroll
                    for (int e = 0; e < 8; e++) acc = fmaf(w2v[q * 8 + e], sh_h[q * 8 + e], acc);
                }
            sv = kc_act(a.act2, acc + (b2 ? kc_ld(b2 + i) : 0.0f), a.a2, a.be2);
        } else {
            sv = sep_out<T, sizeof(T) == 2 ? 8 : 4>(a, i, sh_h);
        }
        kc_st(&st, sv);
        if (blockIdx.y == 0) ((T *)a.y)[row * a.c + i] = st;
        ssc[threadIdx.x] = kc_ld(&st);
    }
    __syncthreads();
    if (col >= a.c) return;
    T *wf = (T *)a.wf + row * a.wk * a.c;
    for (int o = of; o < o1; o += SESF_COLS / G) {
        float w[V];
        if (prew && o == of) {
#pragma unroll
            for (int e = 0; e < V; e++) w[e] = wfirst[e];
        } else {
            kc_ldv<V>(ws + (int64_t)o * a.c + col, w);
        }
#pragma unroll
        for (int e = 0; e < V; e++) w[e] *= ssc[gi * V + e];
        kc_stv<V>(wf + (int64_t)o * a.c + col, w);
    }
}

static cudaError_t sep_after_pool(const sep_args &a, int64_t n, float *hid, int v, kc_dtype t, cudaStream_t stream);

extern "C" cudaError_t kc_se_pool_mlp(void *y, const void *x, void *ws, int64_t n, int64_t hw, int64_t c, int is_max,
                                      const void *w1, const void *b1, const void *w2, const void *b2, int64_t cr,
                                      int act1, float alpha1, float beta1, int act2, float alpha2, float beta2,
                                      kc_dtype t, cudaStream_t stream) {
    return kc_se_pool_mlp_fold(y, x, ws, n, hw, c, is_max, w1, b1, w2, b2, cr, act1, alpha1, beta1, act2, alpha2, beta2,
                               NULL, NULL, 0, t, stream);
}

extern "C" cudaError_t kc_se_pool_mlp_fold(void *y, const void *x, void *ws, int64_t n, int64_t hw, int64_t c,
                                           int is_max, const void *w1, const void *b1, const void *w2, const void *b2,
                                           int64_t cr, int act1, float alpha1, float beta1, int act2, float alpha2,
                                           float beta2, void *wf, const void *wsrc, int64_t wk, kc_dtype t,
                                           cudaStream_t stream) {
    if (n < 0 || hw < 1 || c < 1 || cr < 1 || c > 8192 || cr > 1024 || n > 65535 || !y || !x || !ws || !w1 || !w2 ||
        (t != KC_F32 && t != KC_F16) || (wf && (!wsrc || wk < 1 || wk > 65535)))
        return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    int v = sep_vec(c, t);
    if (!kc_aligned(x, 16) || !kc_aligned(w1, 16) || !kc_aligned(ws, 16)) v = 1;
    int64_t parts = sep_parts(n, hw, c, t), bx = v == sep_vec(c, t) ? sep_bx(c, v) : sep_bx(c, 1);
    int64_t by = KC_THREADS / bx, chunks = (c / v + bx - 1) / bx;
    dim3 g1((unsigned)chunks, (unsigned)parts, (unsigned)n), b1k((unsigned)bx, (unsigned)by);
    size_t sh1 = (size_t)(bx * by * v) * sizeof(float);
    float *part = (float *)ws;
    if (t == KC_F16 && v == 8) kc_launch(k_pool_part<__half, 8>, g1, b1k, sh1, stream, part, (const __half *)x, hw, c, parts, is_max);
    else if (t == KC_F16) kc_launch(k_pool_part<__half, 1>, g1, b1k, sh1, stream, part, (const __half *)x, hw, c, parts, is_max);
    else if (v == 4) kc_launch(k_pool_part<float, 4>, g1, b1k, sh1, stream, part, (const float *)x, hw, c, parts, is_max);
    else kc_launch(k_pool_part<float, 1>, g1, b1k, sh1, stream, part, (const float *)x, hw, c, parts, is_max);
    sep_args a = {y, part, w1, b1, w2, b2, hw, parts, (int)c, (int)cr, act1, act2, is_max, alpha1, beta1, alpha2, beta2,
                  wf, wsrc, (int)wk};
    return sep_after_pool(a, n, part + sep_sc_off(n, hw, c, t), v, t, stream);
}

/* The MLP (and the fold) once the parts of the pool are in a.part: hid,
 * the hidden units' or the scales' room (n * c floats). */
static cudaError_t sep_after_pool(const sep_args &a, int64_t n, float *hid, int v, kc_dtype t, cudaStream_t stream) {
    const int64_t c = a.c, cr = a.cr, wk = a.wk;
    const void *wf = a.wf, *wsrc = a.wsrc;
    const int mt = sep_mlp_threads();
    size_t sh2 = (size_t)(c + cr) * sizeof(float);
    if (wf && sep_split() == 2 && cr <= c) {
        /* hid: [N, CR] */
        dim3 gh((unsigned)((cr + SEH_WARPS - 1) / SEH_WARPS), (unsigned)n);
        size_t shh = (size_t)(c + 4 * SEH_WARPS * 32) * sizeof(float);
        if (t == KC_F16 && v == 8) kc_launch(k_se_hidden<__half, 8>, gh, dim3(SEH_WARPS * 32), shh, stream, a, hid, sep_early());
        else if (t == KC_F16) kc_launch(k_se_hidden<__half, 1>, gh, dim3(SEH_WARPS * 32), shh, stream, a, hid, sep_early());
        else if (v == 4) kc_launch(k_se_hidden<float, 4>, gh, dim3(SEH_WARPS * 32), shh, stream, a, hid, sep_early());
        else kc_launch(k_se_hidden<float, 1>, gh, dim3(SEH_WARPS * 32), shh, stream, a, hid, sep_early());
        int vf = t == KC_F16 ? 8 : 4;
        if (c % vf || !kc_aligned(wf, 16) || !kc_aligned(wsrc, 16)) vf = 1;
        /* row slices: about two blocks per multiprocessor in all */
        int64_t cx = (c + SESF_COLS - 1) / SESF_COLS, ry = (264 + cx * n - 1) / (cx * n);
        if (ry > wk) ry = wk;
        dim3 gf((unsigned)cx, (unsigned)(ry < 1 ? 1 : ry), (unsigned)n);
        size_t shf = (size_t)cr * sizeof(float);
        if (t == KC_F16 && vf == 8) kc_launch(k_se_scale_fold<__half, 8>, gf, dim3(SESF_COLS), shf, stream, a, hid, sep_early());
        else if (t == KC_F16) kc_launch(k_se_scale_fold<__half, 1>, gf, dim3(SESF_COLS), shf, stream, a, hid, sep_early());
        else if (vf == 4) kc_launch(k_se_scale_fold<float, 4>, gf, dim3(SESF_COLS), shf, stream, a, hid, sep_early());
        else kc_launch(k_se_scale_fold<float, 1>, gf, dim3(SESF_COLS), shf, stream, a, hid, sep_early());
        return cudaGetLastError();
    }
    if (wf && sep_split()) {
        float *sc = hid;
        if (t == KC_F16 && v == 8) kc_launch(k_se_mlp_one<__half, 8>, dim3((unsigned)n), dim3(mt), sh2, stream, a, sc);
        else if (t == KC_F16) kc_launch(k_se_mlp_one<__half, 1>, dim3((unsigned)n), dim3(mt), sh2, stream, a, sc);
        else if (v == 4) kc_launch(k_se_mlp_one<float, 4>, dim3((unsigned)n), dim3(mt), sh2, stream, a, sc);
        else kc_launch(k_se_mlp_one<float, 1>, dim3((unsigned)n), dim3(mt), sh2, stream, a, sc);
        int vf = t == KC_F16 ? 8 : 4;
        if (c % vf || !kc_aligned(wf, 16) || !kc_aligned(wsrc, 16)) vf = 1;
        int64_t total = n * wk * (c / vf);
        unsigned g = kc_blocks(total, KC_THREADS);
        if (t == KC_F16 && vf == 8)
            kc_launch(k_se_fold<__half, 8>, dim3(g), dim3(KC_THREADS), 0, stream, (__half *)wf, (const __half *)wsrc, sc, n, wk, c);
        else if (t == KC_F16)
            kc_launch(k_se_fold<__half, 1>, dim3(g), dim3(KC_THREADS), 0, stream, (__half *)wf, (const __half *)wsrc, sc, n, wk, c);
        else if (vf == 4)
            kc_launch(k_se_fold<float, 4>, dim3(g), dim3(KC_THREADS), 0, stream, (float *)wf, (const float *)wsrc, sc, n, wk, c);
        else
            kc_launch(k_se_fold<float, 1>, dim3(g), dim3(KC_THREADS), 0, stream, (float *)wf, (const float *)wsrc, sc, n, wk, c);
        return cudaGetLastError();
    }
    dim3 g2((unsigned)((c + mt - 1) / mt), (unsigned)n);
    if (wf) { /* slices of the K rows per image, about 96 blocks in all at least (each recomputes the small MLP) */
        int64_t blocks = (int64_t)g2.x * n, sl = (96 + blocks - 1) / blocks;
        g2.y = (unsigned)(sl < wk ? sl : wk);
        g2.z = (unsigned)n;
    }
    if (t == KC_F16 && v == 8) kc_launch(k_se_mlp_part<__half, 8>, g2, dim3(mt), sh2, stream, a);
    else if (t == KC_F16) kc_launch(k_se_mlp_part<__half, 1>, g2, dim3(mt), sh2, stream, a);
    else if (v == 4) kc_launch(k_se_mlp_part<float, 4>, g2, dim3(mt), sh2, stream, a);
    else kc_launch(k_se_mlp_part<float, 1>, g2, dim3(mt), sh2, stream, a);
    return cudaGetLastError();
}

extern "C" cudaError_t kc_se_mlp_fold_parts(void *y, const float *part, int64_t parts, void *ws, int64_t n,
                                            int64_t hw, int64_t c, const void *w1, const void *b1, const void *w2,
                                            const void *b2, int64_t cr, int act1, float alpha1, float beta1, int act2,
                                            float alpha2, float beta2, void *wf, const void *wsrc, int64_t wk,
                                            kc_dtype t, cudaStream_t stream) {
    if (n < 0 || hw < 1 || c < 1 || cr < 1 || c > 8192 || cr > 1024 || n > 65535 || parts < 1 || !y || !part || !ws ||
        !w1 || !w2 || (t != KC_F32 && t != KC_F16) || (wf && (!wsrc || wk < 1 || wk > 65535)))
        return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    int v = sep_vec(c, t);
    if (!kc_aligned(w1, 16) || !kc_aligned(ws, 16)) v = 1;
    sep_args a = {y, part, w1, b1, w2, b2, hw, parts, (int)c, (int)cr, act1, act2, 0, alpha1, beta1, alpha2, beta2,
                  wf, wsrc, (int)wk};
    return sep_after_pool(a, n, (float *)ws, v, t, stream);
}

/* Programmatic dependent launch (k_common.cuh): on for sm_90+ unless
 * KILN_CUDA_PDL=0; decided once per process on the current device. */
static __thread int pdl_hold;
extern "C" void kc_pdl_hold(int on) { pdl_hold = on; }
extern "C" int kc_pdl_held(void) { return pdl_hold; }

extern "C" int kc_pdl_enabled(void) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("KILN_CUDA_PDL");
        int dev = 0, major = 0;
        bool sm90 = cudaGetDevice(&dev) == cudaSuccess &&
                    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major >= 9;
        cudaGetLastError();
        on = sm90 && !(e && strcmp(e, "0") == 0);
    }
    return on;
}
