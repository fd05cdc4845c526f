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
        k_softmax_col<T><<<kc_blocks(a.outer * a.inner, KC_THREADS), KC_THREADS, 0, stream>>>(a);
    } else if (a.axis > 1024) {
        unsigned g = (unsigned)(a.outer < KC_MAX_BLOCKS ? a.outer : KC_MAX_BLOCKS);
        k_softmax_block<T><<<g, 512, 0, stream>>>(a);
    } else {
        unsigned g = kc_blocks(a.outer * 32, KC_THREADS);
        if (a.axis <= 128) k_softmax_warp<T, 4><<<g, KC_THREADS, 0, stream>>>(a);
        else if (a.axis <= 512) k_softmax_warp<T, 16><<<g, KC_THREADS, 0, stream>>>(a);
        else k_softmax_warp<T, 32><<<g, KC_THREADS, 0, stream>>>(a);
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
            if (a.scale) kc_ld8((const T *)a.scale + c, sc);
            if (a.bias) kc_ld8((const T *)a.bias + c, bi);
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
    ln_args a = {y, x, scale, rms ? NULL : bias, rows, cols, eps, rms != 0};
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
        k_reduce_cols<T><<<(unsigned)(nb < KC_MAX_BLOCKS ? nb : KC_MAX_BLOCKS), dim3(bx, by), 0, stream>>>(a);
    } else if (a.red > 1024) {
        k_reduce_block<T><<<(unsigned)(a.outer < KC_MAX_BLOCKS ? a.outer : KC_MAX_BLOCKS), 512, 0, stream>>>(a);
    } else {
        k_reduce_warp<T><<<kc_blocks(a.outer * 32, KC_THREADS), KC_THREADS, 0, stream>>>(a);
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
    if (t == KC_F16) k_se_mlp<__half><<<(unsigned)n, KC_THREADS, smem, stream>>>(a);
    else k_se_mlp<float><<<(unsigned)n, KC_THREADS, smem, stream>>>(a);
    return cudaGetLastError();
}

/* Programmatic dependent launch (k_common.cuh): on for sm_90+ unless
 * KILN_CUDA_PDL=0; decided once per process on the current device. */
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
