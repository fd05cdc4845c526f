/*
 * k_gemv.cu — kiln's float16 product of a few rows (m <= KC_GEMV_MAX_M) by a
 * constant matrix: y[r, j] = act(alpha * sum_k a[r, k] b(k, j) + bias[j] +
 * beta * z[r, j]), float32 accumulation.  At batch 1 a transformer's class
 * token (the MLP after sink_gather, the classifier) and a CNN's classifier
 * are such products: they read the whole weight matrix once, for a few
 * FLOPs, so their time is the weights' bytes at the memory's rate plus a
 * launch; cuBLASLt's tiles for m = 1 run at a fraction of that.  Timed
 * against cuBLASLt's candidates in kc_gemm_create (KC_GEMM_ALGO_GEMV).
 *
 * Two forms, by how b is stored:
 *  - b [k, n] (row-major, ldb; a MatMul's weights): a thread owns 8
 *    consecutive columns (one 16-byte load a row), 32 lanes 256 columns; a
 *    block's 8 warps take interleaved rows of a slice of k, and the grid's
 *    y dimension splits k so that the weights stream through enough SMs.
 *    The block's sums meet in shared memory; with a split, each block
 *    writes its float32 partial sums to ws and the last block of a column
 *    tile to arrive (cnt, zero between runs) adds them in order and
 *    finishes, so the result does not depend on the blocks' order.
 *  - b [n, k] (transposed, ldb; Gemm's transB weights): a warp owns one
 *    output column at a time, its lanes read the row in 16-byte pieces and
 *    meet by shuffles.
 */
#include "cuda/k_common.cuh"

#define GV_COLS 256 /* columns of a block's tile in the [k, n] form: 32 lanes x 8 */
#define GV_WARPS 8

template <int M>
__global__ void __launch_bounds__(GV_WARPS * 32) k_gemv_nn(kc_gemv_params p) {
    kc_pdl_wait();
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int64_t col = (int64_t)blockIdx.x * GV_COLS + lane * 8;
    const int64_t k0 = (int64_t)blockIdx.y * p.kslice, k1 = min(p.k, k0 + p.kslice);
    float acc[M][8];
#pragma unroll
    for (int r = 0; r < M; r++)
#pragma unroll
        for (int j = 0; j < 8; j++) acc[r][j] = 0.0f;
    const __half *a = (const __half *)p.a, *b = (const __half *)p.b;
    if (col < p.n) {
        for (int64_t k = k0 + w; k < k1; k += GV_WARPS) {
            const uint4 v = __ldcs(reinterpret_cast<const uint4 *>(b + k * p.ldb + col));
            const __half2 *h = reinterpret_cast<const __half2 *>(&v);
            float2 f[4];
#pragma unroll
            for (int j = 0; j < 4; j++) f[j] = __half22float2(h[j]);
#pragma unroll
            for (int r = 0; r < M; r++) {
                const float x = __half2float(a[r * p.lda + k]);
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    acc[r][2 * j] = fmaf(x, f[j].x, acc[r][2 * j]);
                    acc[r][2 * j + 1] = fmaf(x, f[j].y, acc[r][2 * j + 1]);
                }
            }
        }
    }
    __shared__ float red[GV_WARPS][M][GV_COLS];
#pragma unroll
    for (int r = 0; r < M; r++)
#pragma unroll
        for (int j = 0; j < 8; j++) red[w][r][lane * 8 + j] = acc[r][j];
    __syncthreads();
    /* thread t sums column t of the tile over the warps */
    const int t = threadIdx.x;
    const int64_t c = (int64_t)blockIdx.x * GV_COLS + t;
    float s[M];
#pragma unroll
    for (int r = 0; r < M; r++) {
        float v = 0.0f;
#pragma unroll
        for (int q = 0; q < GV_WARPS; q++) v += red[q][r][t];
        s[r] = v;
    }
    if (gridDim.y > 1) {
        __shared__ bool last;
        float *part = (float *)p.ws;
        if (c < p.n)
#pragma unroll
            for (int r = 0; r < M; r++) __stcg(part + ((int64_t)blockIdx.y * M + r) * p.n + c, s[r]);
        __threadfence();
        __syncthreads();
        if (t == 0) last = atomicAdd(p.cnt + blockIdx.x, 1u) == gridDim.y - 1;
        __syncthreads();
        if (!last) return;
        __threadfence();
        if (c < p.n)
#pragma unroll
            for (int r = 0; r < M; r++) {
                float v = 0.0f;
                for (unsigned z = 0; z < gridDim.y; z++) v += __ldcg(part + ((int64_t)z * M + r) * p.n + c);
                s[r] = v;
            }
        if (t == 0) p.cnt[blockIdx.x] = 0; /* for the next run */
    }
    if (c >= p.n) return;
    const float bv = p.bias ? __half2float(((const __half *)p.bias)[c]) : 0.0f;
#pragma unroll
    for (int r = 0; r < M; r++) {
        float v = p.alpha * s[r] + bv;
        if (p.z) v += p.beta * __half2float(((const __half *)p.z)[r * p.ldy + c]);
        ((__half *)p.y)[r * p.ldy + c] = __float2half(kc_act(p.act, v, p.act_alpha, p.act_beta));
    }
}

template <int M>
__global__ void __launch_bounds__(GV_WARPS * 32) k_gemv_nt(kc_gemv_params p) {
    kc_pdl_wait();
    const int lane = threadIdx.x & 31;
    const int64_t c = (int64_t)blockIdx.x * GV_WARPS + (threadIdx.x >> 5);
    if (c >= p.n) return;
    const __half *a = (const __half *)p.a, *brow = (const __half *)p.b + c * p.ldb;
    float acc[M];
#pragma unroll
    for (int r = 0; r < M; r++) acc[r] = 0.0f;
    for (int64_t k = (int64_t)lane * 8; k < p.k; k += 256) {
        const uint4 v = __ldcs(reinterpret_cast<const uint4 *>(brow + k));
        const __half2 *h = reinterpret_cast<const __half2 *>(&v);
#pragma unroll
        for (int r = 0; r < M; r++) {
            const uint4 u = *reinterpret_cast<const uint4 *>(a + r * p.lda + k);
            const __half2 *g = reinterpret_cast<const __half2 *>(&u);
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const float2 fb = __half22float2(h[j]), fa = __half22float2(g[j]);
                acc[r] = fmaf(fa.x, fb.x, acc[r]);
                acc[r] = fmaf(fa.y, fb.y, acc[r]);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < M; r++)
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], o);
    if (lane != 0) return;
    const float bv = p.bias ? __half2float(((const __half *)p.bias)[c]) : 0.0f;
#pragma unroll
    for (int r = 0; r < M; r++) {
        float v = p.alpha * acc[r] + bv;
        if (p.z) v += p.beta * __half2float(((const __half *)p.z)[r * p.ldy + c]);
        ((__half *)p.y)[r * p.ldy + c] = __float2half(kc_act(p.act, v, p.act_alpha, p.act_beta));
    }
}

/* The split of k in the [k, n] form: enough blocks for every SM twice over
 * (132 on an H100), slices of at least 64 rows (8 a warp). */
static int64_t gv_kslice(const kc_gemv_params *p) {
    const int64_t tiles = (p->n + GV_COLS - 1) / GV_COLS;
    int64_t splits = (264 + tiles - 1) / tiles;
    const int64_t most = (p->k + 63) / 64;
    if (splits > most) splits = most;
    if (splits > KC_GEMV_MAX_SPLITS) splits = KC_GEMV_MAX_SPLITS;
    if (splits < 1) splits = 1;
    int64_t slice = (p->k + splits - 1) / splits;
    return (slice + GV_WARPS - 1) / GV_WARPS * GV_WARPS;
}

extern "C" bool kc_gemv_ok(const kc_gemv_params *p) {
    if (p->m < 1 || p->m > KC_GEMV_MAX_M || p->n < 1 || p->k < 1 || p->lda < p->k || p->ldy < p->n) return false;
    if (!kc_aligned(p->b, 16) || p->ldb % 8) return false;
    if (p->trans_b) return p->ldb >= p->k && p->k % 8 == 0 && p->lda % 8 == 0 && kc_aligned(p->a, 16);
    return p->ldb >= p->n && p->n % 8 == 0;
}

extern "C" size_t kc_gemv_ws(const kc_gemv_params *p) {
    if (p->trans_b) return 0;
    const int64_t splits = (p->k + gv_kslice(p) - 1) / gv_kslice(p);
    return splits > 1 ? (size_t)(splits * p->m * p->n) * sizeof(float) : 0;
}

extern "C" size_t kc_gemv_counters(const kc_gemv_params *p) {
    return p->trans_b ? 0 : (size_t)((p->n + GV_COLS - 1) / GV_COLS);
}

template <int M> static void gv_launch(const kc_gemv_params &q, cudaStream_t st) {
    if (q.trans_b) {
        kc_launch(k_gemv_nt<M>, dim3((unsigned)((q.n + GV_WARPS - 1) / GV_WARPS)), dim3(GV_WARPS * 32), 0, st, q);
    } else {
        const unsigned splits = (unsigned)((q.k + q.kslice - 1) / q.kslice);
        kc_launch(k_gemv_nn<M>, dim3((unsigned)((q.n + GV_COLS - 1) / GV_COLS), splits), dim3(GV_WARPS * 32), 0, st,
                  q);
    }
}

extern "C" cudaError_t kc_gemv(const kc_gemv_params *p, cudaStream_t stream) {
    if (!kc_gemv_ok(p) || !p->a || !p->y) return cudaErrorInvalidValue;
    kc_gemv_params q = *p;
    if (!q.trans_b) {
        q.kslice = gv_kslice(&q);
        if (q.kslice < q.k && (!q.ws || !q.cnt || !kc_aligned(q.ws, 16))) return cudaErrorInvalidValue;
    }
    switch (q.m) {
    case 1: gv_launch<1>(q, stream); break;
    case 2: gv_launch<2>(q, stream); break;
    case 3: gv_launch<3>(q, stream); break;
    default: gv_launch<4>(q, stream); break;
    }
    return cudaGetLastError();
}
