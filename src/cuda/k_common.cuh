/*
 * k_common.cuh — device helpers shared by kiln's CUDA C kernels
 * (src/cuda/k_*.cu): float/half loads and stores computed in float32,
 * 8-element (16-byte for half, 2 x 16-byte for float) vector accesses,
 * NaN-propagating min/max, warp and block reductions, the activation and
 * fused-elementwise formulas (precise where --use_fast_math would turn the
 * library call into a hardware approximation), and launch sizing.
 */
#ifndef KL_CUDA_K_COMMON_CUH
#define KL_CUDA_K_COMMON_CUH

#include <cuda_fp16.h>
#include <math.h>
#include <stdint.h>

#include "cuda/kernels.h"

#define KC_THREADS 256
#define KC_MAX_BLOCKS 65536

/* Blocks for `work` items at `threads` per block (grid-stride loops cover the rest). */
static inline unsigned kc_blocks(int64_t work, int threads) {
    int64_t b = (work + threads - 1) / threads;
    if (b > KC_MAX_BLOCKS) b = KC_MAX_BLOCKS;
    return b < 1 ? 1u : (unsigned)b;
}

/* ---- programmatic dependent launch (sm_90) -------------------------------------------
 * A kernel launched with kc_launch may be started by the GPU before the
 * kernel ahead of it on the stream has finished (its blocks are placed and
 * wait), so the launch latency between the two overlaps the first one's
 * tail; in a CUDA graph the edge becomes a programmatic one.  Every kernel
 * launched that way calls kc_pdl_wait() before it touches memory: it
 * returns once the previous kernel has completed and its writes are
 * visible.  On by default on sm_90+; KILN_CUDA_PDL=0 turns it off. */
/* With -DKILN_CUDA_PDL_TRIGGER=1 each block, past the wait, also lets the
 * next kernel launch (griddepcontrol.launch_dependents): once every block
 * has passed it, the next kernel's blocks are placed and wait there instead
 * of being launched when this kernel exits (their own wait still holds them
 * until it has completed).  Off: measured on an H100 (FP16 b1, one engine,
 * two builds alternating, twenty-first session) it cost EfficientNet-B0 5%
 * (0.386 against 0.368 ms), gained YOLOv8n 2% (0.643 against 0.656) and left
 * ResNet-50 and ViT-B/16 even. */
#ifndef KILN_CUDA_PDL_TRIGGER
#define KILN_CUDA_PDL_TRIGGER 0
#endif
static __device__ __forceinline__ void kc_pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#if KILN_CUDA_PDL_TRIGGER
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
#endif
}

extern "C" int kc_pdl_enabled(void);
/* kc_pdl_hold (cuda/kernels.h): no early launch for the calling thread's next launches */
extern "C" int kc_pdl_held(void);

template <typename... KP, typename... A>
static inline void kc_launch(void (*k)(KP...), dim3 grid, dim3 block, size_t smem, cudaStream_t st, A... args) {
    if (kc_pdl_enabled() && !kc_pdl_held()) {
        cudaLaunchConfig_t cfg = {};
        cfg.gridDim = grid;
        cfg.blockDim = block;
        cfg.dynamicSmemBytes = smem;
        cfg.stream = st;
        cudaLaunchAttribute at[1];
        at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        at[0].val.programmaticStreamSerializationAllowed = 1;
        cfg.attrs = at;
        cfg.numAttrs = 1;
        (void)cudaLaunchKernelEx(&cfg, k, args...); /* an error stays the last error: callers read it */
    } else {
        k<<<grid, block, smem, st>>>(args...);
    }
}

/* True if p is aligned to `a` bytes. */
static inline bool kc_aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* ---- loads and stores ---------------------------------------------------------------- */

static __device__ __forceinline__ float kc_ld(const float *p) { return *p; }
static __device__ __forceinline__ float kc_ld(const __half *p) { return __half2float(*p); }
static __device__ __forceinline__ void kc_st(float *p, float v) { *p = v; }
static __device__ __forceinline__ void kc_st(__half *p, float v) { *p = __float2half_rn(v); }

static __device__ __forceinline__ float kc_lo(unsigned w) { return __half2float(__ushort_as_half((unsigned short)(w & 0xffffu))); }
static __device__ __forceinline__ float kc_hi(unsigned w) { return __half2float(__ushort_as_half((unsigned short)(w >> 16))); }
static __device__ __forceinline__ unsigned kc_pack(float a, float b) {
    return (unsigned)__half_as_ushort(__float2half_rn(a)) | ((unsigned)__half_as_ushort(__float2half_rn(b)) << 16);
}

/* v[0..8) = p[0..8); p aligned to 16 bytes. */
static __device__ __forceinline__ void kc_ld8(const float *p, float *v) {
    float4 a = reinterpret_cast<const float4 *>(p)[0], b = reinterpret_cast<const float4 *>(p)[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}
static __device__ __forceinline__ void kc_ld8(const __half *p, float *v) {
    uint4 u = *reinterpret_cast<const uint4 *>(p);
    v[0] = kc_lo(u.x), v[1] = kc_hi(u.x), v[2] = kc_lo(u.y), v[3] = kc_hi(u.y);
    v[4] = kc_lo(u.z), v[5] = kc_hi(u.z), v[6] = kc_lo(u.w), v[7] = kc_hi(u.w);
}
/* p[0..8) = v[0..8); p aligned to 16 bytes. */
static __device__ __forceinline__ void kc_st8(float *p, const float *v) {
    reinterpret_cast<float4 *>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4 *>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
}
static __device__ __forceinline__ void kc_st8(__half *p, const float *v) {
    *reinterpret_cast<uint4 *>(p) =
        make_uint4(kc_pack(v[0], v[1]), kc_pack(v[2], v[3]), kc_pack(v[4], v[5]), kc_pack(v[6], v[7]));
}

/* V-element accesses: V = 1 (any alignment) or V = 16 / sizeof(T) (one
 * 16-byte access; p aligned to 16 bytes). */
template <int V> static __device__ __forceinline__ void kc_ldv(const float *p, float *v) {
    if (V == 4) {
        float4 a = *reinterpret_cast<const float4 *>(p);
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w;
    } else {
#pragma unroll
        for (int i = 0; i < V; i++) v[i] = p[i];
    }
}
template <int V> static __device__ __forceinline__ void kc_ldv(const __half *p, float *v) {
    if (V == 8) {
        kc_ld8(p, v);
    } else {
#pragma unroll
        for (int i = 0; i < V; i++) v[i] = __half2float(p[i]);
    }
}
template <int V> static __device__ __forceinline__ void kc_stv(float *p, const float *v) {
    if (V == 4) {
        *reinterpret_cast<float4 *>(p) = make_float4(v[0], v[1], v[2], v[3]);
    } else {
#pragma unroll
        for (int i = 0; i < V; i++) p[i] = v[i];
    }
}
template <int V> static __device__ __forceinline__ void kc_stv(__half *p, const float *v) {
    if (V == 8) {
        kc_st8(p, v);
    } else {
#pragma unroll
        for (int i = 0; i < V; i++) p[i] = __float2half_rn(v[i]);
    }
}

/* ---- NaN-propagating min / max, reductions -------------------------------------------- */

static __device__ __forceinline__ float kc_nanmax(float a, float b) { return (isnan(a) || a > b) ? a : b; }
static __device__ __forceinline__ float kc_nanmin(float a, float b) { return (isnan(a) || a < b) ? a : b; }

enum { KC_RED_SUM = 0, KC_RED_MAX = 1, KC_RED_MIN = 2 };

template <int R> static __device__ __forceinline__ float kc_comb(float a, float b) {
    return R == KC_RED_SUM ? a + b : R == KC_RED_MAX ? kc_nanmax(a, b) : kc_nanmin(a, b);
}

/* Reduce v over the 32 lanes of a full warp; every lane gets the result. */
template <int R> static __device__ __forceinline__ float kc_warp_reduce(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = kc_comb<R>(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Reduce v over the block (blockDim.x a multiple of 32, at most 1024);
 * every thread gets the result.  sh: 32 floats of shared memory; every
 * thread of the block must call it. */
template <int R> static __device__ __forceinline__ float kc_block_reduce(float v, float *sh, float ident) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = kc_warp_reduce<R>(v);
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0) sh[w] = v;
    __syncthreads();
    return kc_warp_reduce<R>(lane < nw ? sh[lane] : ident);
}

/* ---- math (float32; accurate under --use_fast_math) ------------------------------------ */

/* tanh to a few ulp (tanhf becomes tanh.approx, ~5e-4 relative, under fast math):
 * cephes tanhf's polynomial below 0.625, 1 - 2/(e^2x + 1) above. */
static __device__ __forceinline__ float kc_tanh(float x) {
    float a = fabsf(x);
    if (a >= 0.625f) {
        float r = 1.0f - 2.0f / (__expf(2.0f * a) + 1.0f);
        return copysignf(r, x);
    }
    float z = x * x;
    return ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z -
            3.33332819422e-1f) * z * x + x;
}

/* log: log1p of the exact x - 1 near 1, where lg2.approx's absolute error would dominate. */
static __device__ __forceinline__ float kc_log(float x) {
    return (x >= 0.5f && x <= 2.0f) ? log1pf(x - 1.0f) : logf(x);
}

static __device__ __forceinline__ float kc_sigmoid(float x) { return 1.0f / (1.0f + __expf(-x)); }
static __device__ __forceinline__ float kc_softplus(float x) {
    return x > 0 ? x + log1pf(__expf(-x)) : log1pf(__expf(x));
}
static __device__ __forceinline__ float kc_clamp01(float v) { return v < 0 ? 0.0f : v > 1 ? 1.0f : v; }

/* pow in double (as the reference): __powf is NaN for negative bases. */
static __device__ __noinline__ float kc_pow(float x, float y) { return (float)pow((double)x, (double)y); }

/* Activation `act` (kl_act, src/ops/kiln.h) of v. */
static __device__ __forceinline__ float kc_act(int act, float v, float alpha, float beta) {
    switch (act) {
    case 1: return v < 0 ? 0.0f : v;
    case 2:
        if (v < alpha) v = alpha;
        if (v > beta) v = beta;
        return v;
    case 3: return v < 0 ? alpha * v : v;
    case 4: return kc_sigmoid(v);
    case 5: return v * kc_sigmoid(v);
    case 6: return kc_clamp01(alpha * v + beta);
    case 7: { /* x * clamp(x/6 + 1/2, 0, 1) as x * clamp(x + 3, 0, 6) / 6: x + 3 is exact near -3, where
                 x/6 + 1/2 cancelled to a few correct bits (relative error 9e-5 in one test case) */
        float t = v + 3.0f;
        t = t < 0 ? 0.0f : t > 6.0f ? 6.0f : t;
        return v * t * (1.0f / 6.0f);
    }
    case 8: return 0.5f * v * erfcf(-v * 0.70710678118654752f); /* erfc: no cancellation in the negative tail */
    case 9: /* 0.5 v (1 + tanh(u)) as v / (1 + e^-2u): 1 + tanh(u) cancelled in the negative tail (relative
               error 4e-4 in one test case, up to 1 past v = -6; now at most 1.3e-5, checked on the host) */
        return v / (1.0f + __expf(-1.5957691216057308f * (v + 0.044715f * v * v * v)));
    case 10: return v * kc_tanh(kc_softplus(v));
    case 11: return kc_tanh(v);
    default: return v;
    }
}

#endif /* KL_CUDA_K_COMMON_CUH */
