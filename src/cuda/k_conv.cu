/*
 * k_conv.cu — kiln's own float16 NHWC convolution: an implicit GEMM on
 * tensor cores with the whole epilogue fused (contract in cuda/kernels.h,
 * kc_igemm_nhwc).
 *
 * The convolution is the product Y[M, K] = A[M, R*S*C] W[K, R*S*C]^T with
 * M = N*OH*OW output pixels; A is never formed: a block's A tile (BM pixels
 * x 32 of R*S*C) is gathered from x in 16-byte pieces (8 channels of one
 * tap, C % 8 == 0), zero-filled where the tap falls in the padding.  One
 * block of 4 warps (2 x 2, or 4 x 1) computes a BM x BN tile of Y; A and W tiles are
 * staged in shared memory by cp.async in a 4-deep ring (tiles t+1..t+3
 * load while tile t computes: at batch 1 the weights stream from memory),
 * fed to mma.sync.m16n8k16 (f16 in, f32 accumulators) by ldmatrix.  Fragment layouts as in k_attention.cu; W's
 * rows ([k][rsc]) are B's column-major storage, so both operands take plain
 * ldmatrix.  Shared rows are 32 + 8 halves (80 bytes): the 8 rows one
 * ldmatrix reads fall in distinct bank groups.
 *
 * The float32 form (same tiles, 16 floats of R*S*C a K-tile, 4 channels a
 * 16-byte piece, C % 4 == 0) keeps float32's accuracy on TF32 tensor cores
 * as three products (mma.sync.m16n8k8 tf32): each operand element v is
 * split at fragment load into hi = tf32(v) and lo = tf32(v - hi), and the
 * accumulators take lo_a hi_b + hi_a lo_b + hi_a hi_b (the lo lo term,
 * ~2^-22 relative, is left out).  The tensor cores' own additions do not
 * round to nearest, so each K-tile's products are summed alone and added to
 * the accumulators with round-to-nearest: the error stays of float32's own
 * order however long R*S*C is.  Shared rows
 * are 16 + 4 floats (80 bytes): a fragment's 32 reads fall in 32 banks.
 *
 * Epilogue in float32: + bias[k], + z[m, k] (a residual of y's shape),
 * then the activation (kc_act: ReLU, SiLU, ...); the tile is staged in
 * shared memory so that z and y move in 16-byte pieces of rows.  It
 * is what cuDNN's legacy API cannot do for SiLU (a second pass over y) and
 * what cuBLASLt's epilogues lack.  Tile shapes are the tactic: the builder
 * times each against cuDNN's algorithms (KC_CONV_ALGO_IGEMM + cfg, dnn.c).
 */
#include "cuda/k_common.cuh"

#include <stdint.h>

#define IG_THREADS 128
#define IG_STAGES 4

/* Per element type: K-tile width BK (64 bytes of a row), shared row length
 * LD (80 bytes), elements per 16-byte piece VEC. */
template <typename T> struct ig_t;
template <> struct ig_t<__half> {
    static constexpr int BK = 32, LD = 40, VEC = 8;
};
template <> struct ig_t<float> {
    static constexpr int BK = 16, LD = 20, VEC = 4;
};

/* mma.m16n8k16 and cp.async need sm_80: older targets compile an empty body. */
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
#define IG_HAVE_MMA 1
#else
#define IG_HAVE_MMA 0
#endif

template <typename T> struct ig_params {
    const T *x, *w, *bias, *z;
    T *y;
    int64_t m;          /* N*OH*OW */
    int n_hw;           /* OH*OW */
    int h, wd, c, k, r, s, oh, ow, pt, pl, sh, sw, dh, dw;
    int kg;             /* R*S*C */
    int ldx, ldy, ldz;  /* pixel strides of x, y, z (elements): c, k, k when dense, more for a channel slab */
    int act;
    float alpha, beta;
    /* split K: blockIdx.z takes K-tiles [z*per, z*per + per); partial sums
     * [splits][M][K] float32 in part; the last block of an output tile to
     * arrive (cnt[tile], zero between runs) adds them in order and finishes */
    int splits, per;
    float *part;
    unsigned *cnt;
    /* stage buffers allocated, min(IG_STAGES, K-tiles per block): a block
     * touches ring stages 0 .. its K-tiles - 1 only, so a 1x1 layer of <= 32
     * channels (one K-tile) gets a quarter of the shared memory and several
     * times the blocks per multiprocessor (memory-bound: EfficientNet-B0's
     * 16->96 expansion at 112x112) */
    int stages;
};

static __device__ __forceinline__ unsigned ig_saddr(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }

static __device__ __forceinline__ void ig_cp16(void *dst, const void *src, bool valid) {
#if IG_HAVE_MMA
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(ig_saddr(dst)), "l"(src),
                 "r"(valid ? 16 : 0)
                 : "memory");
#endif
}
static __device__ __forceinline__ void ig_commit() {
#if IG_HAVE_MMA
    asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
template <int N> static __device__ __forceinline__ void ig_wait() {
#if IG_HAVE_MMA
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}
static __device__ __forceinline__ void ig_ldsm(unsigned *r, const __half *p) {
#if IG_HAVE_MMA
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(ig_saddr(p))
                 : "memory");
#endif
}
static __device__ __forceinline__ void ig_mma(float *c, const unsigned *a, unsigned b0, unsigned b1) {
#if IG_HAVE_MMA
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

/* TF32: hi = v rounded to TF32 (as its bit pattern), lo = the remainder rounded again. */
static __device__ __forceinline__ void ig_tf32(float v, unsigned &hi, unsigned &lo) {
#if IG_HAVE_MMA
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(hi) : "f"(v));
    const float r = v - __uint_as_float(hi);
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(lo) : "f"(r));
#else
    hi = lo = 0u;
#endif
}
static __device__ __forceinline__ void ig_mma_tf32(float *c, const unsigned *a, unsigned b0, unsigned b1) {
#if IG_HAVE_MMA
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

/* Epilogue element access: one element as float. */
static __device__ __forceinline__ float ig_ld1(const __half *p) { return __half2float(*p); }
static __device__ __forceinline__ float ig_ld1(const float *p) { return *p; }

/* Where one thread's A rows start: image offset and the input corner of
 * the output pixel (rows past M are marked by ih0 = INT_MIN / 2). */
template <int BM> struct ig_rows {
    int64_t base[BM / 32];
    int ih0[BM / 32], iw0[BM / 32];
};

/* Load K-tile kt (columns [kt*BK, kt*BK + BK) of R*S*C) of A and W into stage buffers as, bs.  Each thread
 * moves column chunk (tid & 3) of rows (tid >> 2) + 32 i; (ch, cs, cr) is that chunk's (channel, s, r) for
 * this tile, kept incrementally by the caller. */
template <typename T, int BM, int BN>
static __device__ __forceinline__ void ig_load(const ig_params<T> &p, T *as, T *bs, const ig_rows<BM> &rw,
                                               const int64_t (&wrow)[BN / 32], int kt, int ch, int cs, int cr) {
    constexpr int BK = ig_t<T>::BK, LD = ig_t<T>::LD;
    const int tid = threadIdx.x, col = (tid & 3) * ig_t<T>::VEC, row0 = tid >> 2;
    const int kidx = kt * BK + col;
    const bool kin = kidx < p.kg;
    const int dy = cr * p.dh, dx = cs * p.dw;
#pragma unroll
    for (int i = 0; i < BM / 32; i++) {
        int ih = rw.ih0[i] + dy, iw = rw.iw0[i] + dx;
        bool ok = kin && ih >= 0 && ih < p.h && iw >= 0 && iw < p.wd;
        const T *src = ok ? p.x + rw.base[i] + ((int64_t)ih * p.wd + iw) * p.ldx + ch : p.x;
        ig_cp16(as + (row0 + 32 * i) * LD + col, src, ok);
    }
#pragma unroll
    for (int i = 0; i < BN / 32; i++) {
        bool ok = kin && wrow[i] >= 0;
        const T *src = ok ? p.w + wrow[i] + kidx : p.w;
        ig_cp16(bs + (row0 + 32 * i) * LD + col, src, ok);
    }
}

/* Advance one chunk's (channel, s, r) by one K-tile (BK columns). */
template <typename T> static __device__ __forceinline__ void ig_step(const ig_params<T> &p, int &ch, int &cs, int &cr) {
    ch += ig_t<T>::BK;
    while (ch >= p.c) {
        ch -= p.c;
        if (++cs == p.s) {
            cs = 0;
            ++cr;
        }
    }
}

template <typename T, int BM, int BN, int WARPS_M>
__global__ void __launch_bounds__(IG_THREADS) k_igemm(const ig_params<T> p) {
#if IG_HAVE_MMA
    constexpr int WARPS_N = 4 / WARPS_M, WM = BM / WARPS_M, WN = BN / WARPS_N, MI = WM / 16, NI = WN / 8;
    constexpr int BK = ig_t<T>::BK, LD = ig_t<T>::LD;
    static_assert(WM % 16 == 0 && WN % 16 == 0, "warp tiles are 16-row, 16-column multiples");
    extern __shared__ __align__(16) unsigned char ig_smem[];
    T *sa = reinterpret_cast<T *>(ig_smem);
    T *sb = sa + p.stages * BM * LD;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, wm = warp / WARPS_N, wn = warp % WARPS_N;
    const int64_t m0 = (int64_t)blockIdx.x * BM;
    const int n0 = blockIdx.y * BN;

    ig_rows<BM> rw;
#pragma unroll
    for (int i = 0; i < BM / 32; i++) {
        int64_t m = m0 + (tid >> 2) + 32 * i;
        if (m < p.m) {
            int64_t img = m / p.n_hw;
            int rem = (int)(m - img * p.n_hw), oy = rem / p.ow, ox = rem - oy * p.ow;
            rw.base[i] = img * p.h * p.wd * p.ldx;
            rw.ih0[i] = oy * p.sh - p.pt;
            rw.iw0[i] = ox * p.sw - p.pl;
        } else {
            rw.base[i] = 0;
            rw.ih0[i] = -(1 << 29); /* never inside the input */
            rw.iw0[i] = 0;
        }
    }
    int64_t wrow[BN / 32];
#pragma unroll
    for (int i = 0; i < BN / 32; i++) {
        int kk = n0 + (tid >> 2) + 32 * i;
        wrow[i] = kk < p.k ? (int64_t)kk * p.kg : -1;
    }

    float acc[MI][NI][4];
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.0f;

    kc_pdl_wait();
    const int kt_all = (p.kg + BK - 1) / BK;
    /* this block's K-tiles [kt0, kt0 + kt_n) (all of them unless K is split) */
    const int kt0 = p.splits > 1 ? (int)blockIdx.z * p.per : 0;
    const int kt_n = p.splits > 1 ? min(p.per, kt_all - kt0) : kt_all;
    /* this thread's chunk coordinates (channel, s, r) for the next tile to
     * load: column kt0 * BK + its chunk of R*S*C (C < BK: the first chunk
     * may already be past tap 0) */
    int ch, cs, cr;
    {
        int kidx = kt0 * BK + (tid & 3) * ig_t<T>::VEC;
        ch = kidx % p.c;
        int t = kidx / p.c;
        cs = t % p.s;
        cr = t / p.s;
    }
#pragma unroll
    for (int st = 0; st < IG_STAGES - 1; st++) {
        if (st < kt_n) {
            ig_load<T, BM, BN>(p, sa + st * BM * LD, sb + st * BN * LD, rw, wrow, kt0 + st, ch, cs, cr);
            ig_step(p, ch, cs, cr);
        }
        ig_commit();
    }
    for (int kt = 0; kt < kt_n; kt++) {
        ig_wait<IG_STAGES - 2>();
        __syncthreads();
        {
            int nt = kt + IG_STAGES - 1, st = nt % IG_STAGES;
            if (nt < kt_n) {
                ig_load<T, BM, BN>(p, sa + st * BM * LD, sb + st * BN * LD, rw, wrow, kt0 + nt, ch, cs, cr);
                ig_step(p, ch, cs, cr);
            }
            ig_commit();
        }
        const T *as = sa + (kt % IG_STAGES) * BM * LD;
        const T *bs = sb + (kt % IG_STAGES) * BN * LD;
        if constexpr (sizeof(T) == 2) {
#pragma unroll
            for (int kk = 0; kk < BK / 16; kk++) {
                unsigned af[MI][4];
#pragma unroll
                for (int i = 0; i < MI; i++)
                    ig_ldsm(af[i], as + (wm * WM + i * 16 + (lane & 15)) * LD + kk * 16 + (lane >> 4) * 8);
#pragma unroll
                for (int j = 0; j < NI / 2; j++) {
                    unsigned r[4];
                    ig_ldsm(r, bs + (wn * WN + j * 16 + (lane & 7) + (lane >> 4) * 8) * LD + kk * 16 +
                                   ((lane >> 3) & 1) * 8);
#pragma unroll
                    for (int i = 0; i < MI; i++) {
                        ig_mma(acc[i][2 * j], af[i], r[0], r[1]);
                        ig_mma(acc[i][2 * j + 1], af[i], r[2], r[3]);
                    }
                }
            }
        } else {
            /* m16n8k8 tf32 fragments (PTX ISA): a0 (g, t), a1 (g + 8, t), a2 (g, t + 4), a3 (g + 8, t + 4);
             * b0 (k t, n g), b1 (k t + 4, n g); g = lane / 4, t = lane % 4.  The tensor cores'
             * own additions do not round to nearest: accumulated over all of R*S*C in the mma
             * accumulators, ResNet-50 FP32 came out at relative L2 2e-5 against the CPU (cuDNN's
             * float32: 7e-7).  So a K-tile's six products go into a zeroed t, and t into acc with
             * round-to-nearest adds. */
            const int fg = lane >> 2, ft = lane & 3;
            unsigned ahi[BK / 8][MI][4], alo[BK / 8][MI][4];
#pragma unroll
            for (int kk = 0; kk < BK / 8; kk++)
#pragma unroll
                for (int i = 0; i < MI; i++) {
                    const float *a = reinterpret_cast<const float *>(as) + (wm * WM + i * 16 + fg) * LD + kk * 8 + ft;
                    ig_tf32(a[0], ahi[kk][i][0], alo[kk][i][0]);
                    ig_tf32(a[8 * LD], ahi[kk][i][1], alo[kk][i][1]);
                    ig_tf32(a[4], ahi[kk][i][2], alo[kk][i][2]);
                    ig_tf32(a[8 * LD + 4], ahi[kk][i][3], alo[kk][i][3]);
                }
#pragma unroll
            for (int j = 0; j < NI; j++) {
                unsigned bhi[BK / 8][2], blo[BK / 8][2];
#pragma unroll
                for (int kk = 0; kk < BK / 8; kk++) {
                    const float *b = reinterpret_cast<const float *>(bs) + (wn * WN + j * 8 + fg) * LD + kk * 8 + ft;
                    ig_tf32(b[0], bhi[kk][0], blo[kk][0]);
                    ig_tf32(b[4], bhi[kk][1], blo[kk][1]);
                }
#pragma unroll
                for (int i = 0; i < MI; i++) {
                    float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
                    for (int kk = 0; kk < BK / 8; kk++) {
                        /* small terms first */
                        ig_mma_tf32(t, alo[kk][i], bhi[kk][0], bhi[kk][1]);
                        ig_mma_tf32(t, ahi[kk][i], blo[kk][0], blo[kk][1]);
                        ig_mma_tf32(t, ahi[kk][i], bhi[kk][0], bhi[kk][1]);
                    }
#pragma unroll
                    for (int e = 0; e < 4; e++) acc[i][j][e] = __fadd_rn(acc[i][j][e], t[e]);
                }
            }
        }
    }
    ig_wait<0>();

    /* epilogue: rows g and g + 8 of each 16-row fragment, column pairs 2 tc */
    const int g = lane >> 2, tc = lane & 3;
    if (p.splits > 1) {
        /* this split's partial sums, then the last block of the tile adds all of them in split order
         * (the same sum whatever the order of arrival) */
        __shared__ unsigned ig_last;
        float *part = p.part + (int64_t)blockIdx.z * p.m * p.k;
#pragma unroll
        for (int j = 0; j < NI; j++) {
            const int col = n0 + wn * WN + j * 8 + tc * 2;
            if (col >= p.k) continue;
#pragma unroll
            for (int i = 0; i < MI; i++)
#pragma unroll
                for (int hf = 0; hf < 2; hf++) {
                    const int64_t m = m0 + wm * WM + i * 16 + g + hf * 8;
                    if (m < p.m)
                        __stcg(reinterpret_cast<float2 *>(part + m * p.k + col),
                               make_float2(acc[i][j][2 * hf], acc[i][j][2 * hf + 1]));
                }
        }
        __threadfence();
        __syncthreads();
        const unsigned tile = blockIdx.y * gridDim.x + blockIdx.x;
        if (tid == 0) ig_last = atomicAdd(p.cnt + tile, 1u) == (unsigned)p.splits - 1;
        __syncthreads();
        if (!ig_last) return;
        __threadfence();
#pragma unroll
        for (int j = 0; j < NI; j++) {
            const int col = n0 + wn * WN + j * 8 + tc * 2;
            if (col >= p.k) continue;
#pragma unroll
            for (int i = 0; i < MI; i++)
#pragma unroll
                for (int hf = 0; hf < 2; hf++) {
                    const int64_t m = m0 + wm * WM + i * 16 + g + hf * 8;
                    float s0 = 0.0f, s1 = 0.0f;
                    if (m < p.m)
                        for (int z = 0; z < p.splits; z++) {
                            float2 v = __ldcg(reinterpret_cast<const float2 *>(p.part + ((int64_t)z * p.m + m) * p.k + col));
                            s0 += v.x;
                            s1 += v.y;
                        }
                    acc[i][j][2 * hf] = s0;
                    acc[i][j][2 * hf + 1] = s1;
                }
        }
        if (tid == 0) p.cnt[tile] = 0; /* for the next run */
    }
    /* The tile goes through shared memory (the stage buffers, free now) so
     * that y and z move in whole 16-byte pieces of rows: stored from the
     * fragments, a warp's pair stores half-filled eight 32-byte sectors, and
     * memory-bound layers (EfficientNet-B0's 1x1 expansions at batch 256)
     * ran at half the bandwidth.  Rows EP floats apart (EP = 8 mod 32): the
     * fragments' pair stores fall in distinct banks. */
    constexpr int EP = BN + 8, V = ig_t<T>::VEC, CPR = BN / V;
    static_assert((size_t)BM * EP * sizeof(float) <= (size_t)IG_STAGES * (BM + BN) * LD * sizeof(T),
                  "the staged tile fits the stage buffers");
    float *ep = reinterpret_cast<float *>(ig_smem);
    __syncthreads(); /* every warp is done with the stage buffers */
#pragma unroll
    for (int j = 0; j < NI; j++)
#pragma unroll
        for (int i = 0; i < MI; i++)
#pragma unroll
            for (int hf = 0; hf < 2; hf++)
                *reinterpret_cast<float2 *>(ep + (wm * WM + i * 16 + g + hf * 8) * EP + wn * WN + j * 8 + tc * 2) =
                    make_float2(acc[i][j][2 * hf], acc[i][j][2 * hf + 1]);
    __syncthreads();
    const bool vec = p.ldy % V == 0 && ((uintptr_t)p.y & 15) == 0 && (!p.z || (p.ldz % V == 0 && ((uintptr_t)p.z & 15) == 0));
    for (int idx = tid; idx < BM * CPR; idx += IG_THREADS) {
        const int r = idx / CPR, cc = (idx - r * CPR) * V, col = n0 + cc;
        const int64_t m = m0 + r;
        if (m >= p.m || col >= p.k) continue;
        const float *src = ep + r * EP + cc;
        if (vec && col + V <= p.k) {
            float v[V], zz[V];
#pragma unroll
            for (int e = 0; e < V; e++) v[e] = src[e] + (p.bias ? ig_ld1(p.bias + col + e) : 0.0f);
            if (p.z) {
                kc_ldv<V>(p.z + m * p.ldz + col, zz);
#pragma unroll
                for (int e = 0; e < V; e++) v[e] += zz[e];
            }
#pragma unroll
            for (int e = 0; e < V; e++) v[e] = kc_act(p.act, v[e], p.alpha, p.beta);
            kc_stv<V>(p.y + m * p.ldy + col, v);
        } else {
            for (int e = 0; e < V && col + e < p.k; e++) {
                float v = src[e] + (p.bias ? ig_ld1(p.bias + col + e) : 0.0f);
                if (p.z) v += ig_ld1(p.z + m * p.ldz + col + e);
                v = kc_act(p.act, v, p.alpha, p.beta);
                if constexpr (sizeof(T) == 2) p.y[m * p.ldy + col + e] = __float2half_rn(v);
                else p.y[m * p.ldy + col + e] = v;
            }
        }
    }
#endif
}

template <typename T, int BM, int BN, int WARPS_M>
static cudaError_t ig_launch(const ig_params<T> &p, cudaStream_t stream) {
    if (p.splits > 1 && (!p.part || !p.cnt)) return cudaErrorInvalidValue;
    if (p.stages < 1 || p.stages > IG_STAGES) return cudaErrorInvalidValue;
    const size_t full = (size_t)IG_STAGES * (BM + BN) * ig_t<T>::LD * sizeof(T);
    const size_t epi = (size_t)BM * (BN + 8) * sizeof(float); /* the staged output tile (EP floats a row) */
    size_t smem = (size_t)p.stages * (BM + BN) * ig_t<T>::LD * sizeof(T);
    if (smem < epi) smem = epi;
    static bool ready = false; /* the opt-in above 48 KiB (for the largest form), once per shape */
    if (full > 48 * 1024 && !ready) {
        cudaError_t e = cudaFuncSetAttribute(k_igemm<T, BM, BN, WARPS_M>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)full);
        if (e != cudaSuccess) return e;
        ready = true;
    }
    dim3 grid((unsigned)((p.m + BM - 1) / BM), (unsigned)((p.k + BN - 1) / BN), (unsigned)p.splits);
    kc_launch(k_igemm<T, BM, BN, WARPS_M>, grid, dim3(IG_THREADS), smem, stream, p);
    return cudaGetLastError();
}

/* The tile shapes (BM x BN, warps along M) and K splits of the tactics: 2 x 2 warps, then 4 x 1 for
 * layers with few output channels (YOLOv8n's 16-64), then K split 2 or 4 ways for layers whose output
 * is a few dozen tiles (YOLOv8n's 20x20 and 40x40 maps: 26-104 blocks on 132 SMs). */
static const struct { short bm, bn, wm, splits; } ig_cfgs[KC_IGEMM_CFGS] = {
    {128, 128, 2, 1}, {128, 64, 2, 1}, {64, 128, 2, 1}, {64, 64, 2, 1}, {64, 32, 2, 1},
    {32, 64, 2, 1},   {32, 32, 2, 1},  {128, 32, 4, 1}, {256, 32, 4, 1}, {128, 64, 4, 1},
    {32, 32, 2, 2},   {32, 32, 2, 4},  {64, 32, 2, 4},  {32, 64, 2, 4}};

extern "C" bool kc_igemm_cfg_shape(int cfg, int *bm, int *bn, int *wm, int *splits) {
    if (cfg < 0 || cfg >= KC_IGEMM_CFGS) return false;
    *bm = ig_cfgs[cfg].bm;
    *bn = ig_cfgs[cfg].bn;
    *wm = ig_cfgs[cfg].wm;
    *splits = ig_cfgs[cfg].splits;
    return true;
}

/* K-tile width of the element type. */
static int ig_bk(const kc_igemm_desc *q) { return q->t == KC_F32 ? ig_t<float>::BK : ig_t<__half>::BK; }

/* K-tiles per split and the number of splits (every split non-empty). */
static void ig_split(const kc_igemm_desc *q, int cfg, int *per, int *splits) {
    int bk = ig_bk(q), kt = (q->r * q->s * (int)q->c + bk - 1) / bk, s = ig_cfgs[cfg].splits;
    if (s > kt) s = kt;
    if (s < 1) s = 1;
    *per = (kt + s - 1) / s;
    *splits = (kt + *per - 1) / *per;
}

extern "C" size_t kc_igemm_nhwc_ws(const kc_igemm_desc *q, int cfg) {
    if (!q || cfg < 0 || cfg >= KC_IGEMM_CFGS) return 0;
    int per, splits;
    ig_split(q, cfg, &per, &splits);
    return splits > 1 ? (size_t)splits * (size_t)(q->n * q->oh * q->ow) * (size_t)q->k * sizeof(float) : 0;
}

extern "C" size_t kc_igemm_nhwc_counters(const kc_igemm_desc *q, int cfg) {
    if (!q || cfg < 0 || cfg >= KC_IGEMM_CFGS) return 0;
    int per, splits;
    ig_split(q, cfg, &per, &splits);
    if (splits < 2) return 0;
    int64_t m = q->n * q->oh * q->ow;
    return (size_t)((m + ig_cfgs[cfg].bm - 1) / ig_cfgs[cfg].bm) * (size_t)((q->k + ig_cfgs[cfg].bn - 1) / ig_cfgs[cfg].bn);
}

extern "C" bool kc_igemm_nhwc_ok(const kc_igemm_desc *q, const void *x, const void *w, const void *bias,
                                 const void *z, const void *y) {
    if (q->t != KC_F16 && q->t != KC_F32) return false;
    const int vec = q->t == KC_F32 ? ig_t<float>::VEC : ig_t<__half>::VEC;
    const size_t esz = q->t == KC_F32 ? 4 : 2;
    if (q->c < vec || q->c % vec || q->k < 2 || q->k % 2 || q->n < 1 || q->r < 1 || q->s < 1 || q->oh < 1 ||
        q->ow < 1)
        return false;
    /* 32-bit index arithmetic inside an image and over R*S*C */
    if (q->h * q->w * q->c > INT32_MAX / 2 || q->r * q->s * q->c > INT32_MAX / 2 || q->oh * q->ow > INT32_MAX / 2 ||
        (q->n * q->oh * q->ow + 127) / 32 > INT32_MAX || (q->k + 127) / 32 > 65535)
        return false;
    /* strided (channel-slab) tensors: pixel strides at least the channels, x's in 16-byte pieces, y's and
     * z's in pairs */
    const int64_t ldx = q->ldx ? q->ldx : q->c, ldy = q->ldy ? q->ldy : q->k, ldz = q->ldz ? q->ldz : q->k;
    if (ldx < q->c || ldy < q->k || ldz < q->k || ldx % vec || ldy % 2 || ldz % 2 ||
        q->h * q->w * ldx > INT32_MAX / 2)
        return false;
    /* pieces of 16 bytes from x and w; pairs to y and from z */
    return kc_aligned(x, 16) && kc_aligned(w, 16) && kc_aligned(y, 2 * esz) && (!z || kc_aligned(z, 2 * esz)) &&
           (!bias || kc_aligned(bias, esz));
}

template <typename T>
static cudaError_t ig_run(void *y, const void *x, const void *w, const void *bias, const void *z,
                          const kc_igemm_desc *q, int cfg, void *ws, unsigned *cnt, cudaStream_t stream) {
    ig_params<T> p;
    p.x = static_cast<const T *>(x);
    p.w = static_cast<const T *>(w);
    p.bias = static_cast<const T *>(bias);
    p.z = static_cast<const T *>(z);
    p.y = static_cast<T *>(y);
    p.m = q->n * q->oh * q->ow;
    p.n_hw = (int)(q->oh * q->ow);
    p.h = (int)q->h;
    p.wd = (int)q->w;
    p.c = (int)q->c;
    p.k = (int)q->k;
    p.r = q->r;
    p.s = q->s;
    p.oh = (int)q->oh;
    p.ow = (int)q->ow;
    p.pt = q->pt;
    p.pl = q->pl;
    p.sh = q->sh;
    p.sw = q->sw;
    p.dh = q->dh;
    p.dw = q->dw;
    p.kg = q->r * q->s * (int)q->c;
    p.ldx = (int)(q->ldx ? q->ldx : q->c);
    p.ldy = (int)(q->ldy ? q->ldy : q->k);
    p.ldz = (int)(q->ldz ? q->ldz : q->k);
    p.act = q->act;
    p.alpha = q->alpha;
    p.beta = q->beta;
    ig_split(q, cfg, &p.per, &p.splits);
    {
        const int bk = ig_bk(q), kt_all = (p.kg + bk - 1) / bk, kt_block = p.splits > 1 ? p.per : kt_all;
        p.stages = kt_block < IG_STAGES ? (kt_block < 1 ? 1 : kt_block) : IG_STAGES;
    }
    p.part = static_cast<float *>(ws);
    p.cnt = cnt;
    if (p.splits > 1 && (!kc_aligned(ws, 16) || !cnt)) return cudaErrorInvalidValue;
    switch (cfg) {
    case 0: return ig_launch<T, 128, 128, 2>(p, stream);
    case 1: return ig_launch<T, 128, 64, 2>(p, stream);
    case 2: return ig_launch<T, 64, 128, 2>(p, stream);
    case 3: return ig_launch<T, 64, 64, 2>(p, stream);
    case 4: return ig_launch<T, 64, 32, 2>(p, stream);
    case 5: return ig_launch<T, 32, 64, 2>(p, stream);
    case 6: return ig_launch<T, 32, 32, 2>(p, stream);
    case 7: return ig_launch<T, 128, 32, 4>(p, stream);
    case 8: return ig_launch<T, 256, 32, 4>(p, stream);
    case 9: return ig_launch<T, 128, 64, 4>(p, stream);
    case 10:
    case 11: return ig_launch<T, 32, 32, 2>(p, stream);
    case 12: return ig_launch<T, 64, 32, 2>(p, stream);
    default: return ig_launch<T, 32, 64, 2>(p, stream);
    }
}

extern "C" cudaError_t kc_igemm_nhwc(void *y, const void *x, const void *w, const void *bias, const void *z,
                                     const kc_igemm_desc *q, int cfg, void *ws, unsigned *cnt, cudaStream_t stream) {
    if (!kc_igemm_nhwc_ok(q, x, w, bias, z, y) || cfg < 0 || cfg >= KC_IGEMM_CFGS) return cudaErrorInvalidValue;
    return q->t == KC_F32 ? ig_run<float>(y, x, w, bias, z, q, cfg, ws, cnt, stream)
                          : ig_run<__half>(y, x, w, bias, z, q, cfg, ws, cnt, stream);
}

/* ---- kc_pw_nhwc: 1x1, a few input channels ---------------------------------------------------- */

#define PW_NB 6      /* n8 blocks a warp computes: 48 output channels */
#define PW_WARPS 4
#define PW_ST (8 * PW_NB + 8) /* staged row, floats (56 = 24 mod 32: the pair stores' banks differ) */

/* A-fragment piece: x[row][col], col even, two halves as one 32-bit word (0 past the row or the channels). */
static __device__ __forceinline__ unsigned pw_a(const __half *x, int64_t row, int64_t m, int c, int col) {
    return row < m && col < c ? *reinterpret_cast<const unsigned *>(x + row * c + col) : 0u;
}

template <int KS> /* K-steps of 16 channels: c <= 16 KS */
__global__ void __launch_bounds__(PW_WARPS * 32) k_pw(__half *y, const __half *x, const __half *w, const __half *bias,
                                                      const __half *z, int64_t m, int c, int k, int act, float alpha,
                                                      float beta) {
#if IG_HAVE_MMA
    __shared__ __align__(16) float st[PW_WARPS][16 * PW_ST];
    kc_pdl_wait();
    const int lane = threadIdx.x & 31, wi = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int n0 = blockIdx.x * 8 * PW_NB; /* the output chunks along x: the blocks resident together share pixels, so x is read from DRAM once */
    /* this warp's B fragments, once: b[j][ks][0..1] = w[n0 + 8j + g][16 ks + 2t (+8) .. +1] */
    unsigned b[PW_NB][KS][2];
#pragma unroll
    for (int j = 0; j < PW_NB; j++)
#pragma unroll
        for (int ks = 0; ks < KS; ks++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int n = n0 + 8 * j + g, col = 16 * ks + 2 * t + 8 * h;
                b[j][ks][h] = n < k && col < c ? *reinterpret_cast<const unsigned *>(w + (int64_t)n * c + col) : 0u;
            }
    float *sw = st[wi];
    const int64_t groups = (m + 15) / 16, step = (int64_t)gridDim.y * PW_WARPS;
    for (int64_t grp = (int64_t)blockIdx.y * PW_WARPS + wi; grp < groups; grp += step) {
        const int64_t r0 = grp * 16;
        unsigned a[KS][4];
#pragma unroll
        for (int ks = 0; ks < KS; ks++) {
            a[ks][0] = pw_a(x, r0 + g, m, c, 16 * ks + 2 * t);
            a[ks][1] = pw_a(x, r0 + g + 8, m, c, 16 * ks + 2 * t);
            a[ks][2] = pw_a(x, r0 + g, m, c, 16 * ks + 2 * t + 8);
            a[ks][3] = pw_a(x, r0 + g + 8, m, c, 16 * ks + 2 * t + 8);
        }
        __syncwarp(); /* the previous group's staged rows are read */
#pragma unroll
        for (int j = 0; j < PW_NB; j++) {
            float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
            for (int ks = 0; ks < KS; ks++) ig_mma(acc, a[ks], b[j][ks][0], b[j][ks][1]);
            *reinterpret_cast<float2 *>(sw + g * PW_ST + 8 * j + 2 * t) = make_float2(acc[0], acc[1]);
            *reinterpret_cast<float2 *>(sw + (g + 8) * PW_ST + 8 * j + 2 * t) = make_float2(acc[2], acc[3]);
        }
        __syncwarp();
        /* 16 rows x PW_NB pieces of 8 channels, one piece a lane at a time */
        for (int it = lane; it < 16 * PW_NB; it += 32) {
            const int r = it / PW_NB, cc = (it - r * PW_NB) * 8, col = n0 + cc;
            const int64_t row = r0 + r;
            if (row >= m || col >= k) continue;
            float v[8], u[8];
            kc_ld8(sw + r * PW_ST + cc, v);
            if (bias) {
                kc_ld8(bias + col, u);
#pragma unroll
                for (int e = 0; e < 8; e++) v[e] += u[e];
            }
            if (z) {
                kc_ld8(z + row * k + col, u);
#pragma unroll
                for (int e = 0; e < 8; e++) v[e] += u[e];
            }
#pragma unroll
            for (int e = 0; e < 8; e++) v[e] = kc_act(act, v[e], alpha, beta);
            kc_st8(y + row * k + col, v);
        }
    }
#endif
}

extern "C" bool kc_pw_nhwc_ok(int64_t c, int64_t k, const void *x, const void *w, const void *bias, const void *z,
                              const void *y) {
    return c >= 8 && c <= 64 && c % 8 == 0 && k >= 8 && k % 8 == 0 && k <= (int64_t)INT32_MAX / 2 && x && w && y &&
           kc_aligned(x, 16) && kc_aligned(w, 16) && kc_aligned(y, 16) && (!bias || kc_aligned(bias, 16)) &&
           (!z || kc_aligned(z, 16));
}

extern "C" cudaError_t kc_pw_nhwc(void *y, const void *x, const void *w, const void *bias, const void *z, int64_t m,
                                  int64_t c, int64_t k, int act, float alpha, float beta, cudaStream_t stream) {
    if (m < 0 || !kc_pw_nhwc_ok(c, k, x, w, bias, z, y)) return cudaErrorInvalidValue;
    if (m == 0) return cudaSuccess;
    const int64_t groups = (m + 15) / 16, nchunks = (k + 8 * PW_NB - 1) / (8 * PW_NB);
    if (nchunks > INT32_MAX) return cudaErrorInvalidValue;
    int64_t blocks = (groups + PW_WARPS - 1) / PW_WARPS, cap = 4096 / nchunks + 1; /* then grid-stride */
    if (cap > 65535) cap = 65535;
    dim3 grid((unsigned)nchunks, (unsigned)(blocks < cap ? blocks : cap));
    void (*kf)(__half *, const __half *, const __half *, const __half *, const __half *, int64_t, int, int, int, float,
               float) = c <= 16 ? k_pw<1> : c <= 32 ? k_pw<2> : c <= 48 ? k_pw<3> : k_pw<4>;
    kc_launch(kf, grid, dim3(PW_WARPS * 32), 0, stream, (__half *)y, (const __half *)x, (const __half *)w,
              (const __half *)bias, (const __half *)z, m, (int)c, (int)k, act, alpha, beta);
    return cudaGetLastError();
}
