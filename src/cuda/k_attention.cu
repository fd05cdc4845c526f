/*
 * k_attention.cu — fused flash-style attention for float16 (contract in
 * cuda/k_attention.h).
 *
 * One block of 4 warps per (batch, head, 64 query rows); warp w owns query
 * rows [16w, 16w+16) of the tile.  K/V tiles of 64 keys are staged in
 * shared memory with cp.async, double-buffered (tile t+1 loads while tile t
 * computes).  Products are mma.sync.m16n8k16 (f16 inputs, f32 accumulators)
 * fed by ldmatrix; the layouts used (PTX ISA, "Matrix fragments for
 * mma.m16n8k16"), with g = lane / 4 and c = lane % 4:
 *   A (16x16, row):  a0 (g, 2c..2c+1)  a1 (g+8, 2c..)  a2 (g, 2c+8..)  a3 (g+8, 2c+8..)
 *   B (16x8, col):   b0 (k 2c..2c+1, n g)  b1 (k 2c+8.., n g)
 *   C (16x8, f32):   c0,c1 (g, 2c..2c+1)  c2,c3 (g+8, 2c..2c+1)
 *   ldmatrix.x4: lanes 8i..8i+7 address the rows of 8x8 matrix i, register i
 *   receives matrix i with lane holding (row g, cols 2c..2c+1); with .trans
 *   it holds (rows 2c..2c+1, col g).
 * S = Q K^T: A from Q rows (row-major [q][d]), B from K rows ([key][d] is
 * B's column-major storage, so plain ldmatrix).  O += P V: P's A fragments
 * are the S accumulators of two adjacent 8-key blocks converted to f16 (the
 * C layout of n-blocks 2t, 2t+1 is the A layout of k-block t), and V
 * ([key][d], row-major k x n) goes through ldmatrix.trans.
 *
 * Online softmax in the log2 domain: x = log2(e) * (scale * qk + mask),
 * running max m and per-thread partial sums l (quad-reduced at the end),
 * O rescaled by 2^(m_old - m_new).  A running max of -inf uses 0 as the
 * exponent base so masked-out leading tiles give p = 0, not NaN; a row with
 * no finite score ends with l = 0 and yields NaN (as the reference).
 * Shared rows are padded by 8 halves (16 bytes) so ldmatrix's 8 row
 * addresses fall in distinct bank groups.
 *
 * Tails: a key tile with fewer than 64 keys computes only its 16-key blocks
 * that hold keys (fa_tile<.., NKB>, one instance per count), and a warp
 * whose 16 query rows all lie past Sq only helps load (ViT's S = 197 =
 * 3 * 64 + 5: 13 of 16 warp-tiles and key blocks do work instead of 16).
 * Without a mask and with a positive scale, the scale is folded into the
 * exponent (FA_PLAIN); SAM's global attention (kw = 64) reads its staged
 * relative-position terms as pairs, one row term per tile (FA_REL64).
 * H200, bench/gpu/flash_bench.c, before -> after: ViT-B/16 b256 0.269 ->
 * 0.228 ms, SAM global 0.667 -> 0.317 ms, SAM windows 0.095 -> 0.078 ms.
 */
#include <cuda_fp16.h>
#include <math.h>
#include <stdint.h>

#include "cuda/k_attention.h"
#include "cuda/k_common.cuh"

#define FA_BM 64      /* query rows per block */
#define FA_BN 64      /* keys per tile */
#define FA_THREADS 128
#define FA_LOG2E 1.4426950408889634f

typedef struct fa_params {
    const __half *q, *k, *v;
    __half *y;
    const void *mask, *mask2;
    int64_t b, sq, sk, h, ldq, ldk, ldv, ldy;
    int64_t msb, msh, msq, msk;
    int64_t m2sb, m2sh, m2sq, m2sk, rel_kw; /* decomposed relative positions (rel_kw > 0) */
    int rel_kh, rel_smem; /* Sk / rel_kw; 1: the block's rows of both terms staged in shared memory */
    float scale_log2;  /* scale * log2(e) */
    int seq_first, mask_f16, vec, nqt;
} fa_params;

/* Q (64 * mt rows) and two buffers each of K and V (64 rows). */
static size_t fa_smem_bytes(int d, int mt) {
    return (size_t)(FA_BM * mt + 4 * FA_BN) * (d + 8) * sizeof(__half);
}
/* The relative-position terms of a block's 64 query rows, staged when
 * kh, kw <= FA_REL_MAX (float16: [64][kh + kw]). */
#define FA_REL_MAX 64
static size_t fa_rel_smem_bytes() { return (size_t)FA_BM * (2 * FA_REL_MAX + 4) * sizeof(__half); }

/* mma.m16n8k16 and cp.async need sm_80: older targets compile an empty
 * kernel that kc_flash_prepare refuses (the unfused path runs instead). */
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
#define FA_ENABLED 1
#else
#define FA_ENABLED 0
#endif

#if FA_ENABLED
/* Row stride (halves) of the staged terms: an odd number of 4-byte words,
 * so the 8 rows a warp's lanes read fall in different banks. */
static __device__ __forceinline__ int fa_rel_ld(int w) {
    int words = (w + 1) / 2;
    return 2 * (words % 2 ? words : words + 1);
}

/* ---- PTX wrappers ------------------------------------------------------------------------ */

static __device__ __forceinline__ unsigned fa_saddr(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }

/* 16 bytes global -> shared, zero-filled when !valid (src then is not read). */
static __device__ __forceinline__ void fa_cp16(void *dst, const void *src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(fa_saddr(dst)), "l"(src),
                 "r"(valid ? 16 : 0)
                 : "memory");
}
static __device__ __forceinline__ void fa_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> static __device__ __forceinline__ void fa_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

static __device__ __forceinline__ void fa_ldsm(unsigned *r, const __half *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(fa_saddr(p))
                 : "memory");
}
static __device__ __forceinline__ void fa_ldsm_t(unsigned *r, const __half *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(fa_saddr(p))
                 : "memory");
}

/* c += a b for one 16x8 tile (b0, b1: the two B registers). */
static __device__ __forceinline__ void fa_mma(float *c, const unsigned *a, unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* Two floats as one f16x2 register (lo in the low half: the lower column). */
static __device__ __forceinline__ unsigned fa_pack(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<unsigned *>(&h);
}

/* ---- tile loads ---------------------------------------------------------------------------- */

/* Rows [r0, r0 + ROWS) of one head of x (x points at the head's first
 * column) into shared s (row stride D + 8), by NT threads (tid: this one's
 * index among them); rows >= n are zero-filled.  Sequence row r of batch b
 * is global row seq_first ? r*B + b : b*n + r. */
template <int D, int ROWS, int NT>
static __device__ __forceinline__ void fa_load(__half *s, const __half *x, int64_t ld, int64_t r0, int64_t n,
                                               int64_t b, int64_t B, int seq_first, int vec, int tid) {
    constexpr int CH = D / 8; /* 16-byte chunks per row */
    static_assert(ROWS * CH % NT == 0, "whole rounds of chunks");
#pragma unroll
    for (int i = 0; i < ROWS * CH / NT; i++) {
        int c = tid + i * NT, r = c / CH, cc = c % CH;
        int64_t rr = r0 + r;
        bool ok = rr < n;
        const __half *src = x + (seq_first ? rr * B + b : b * n + rr) * ld + cc * 8;
        __half *dst = s + r * (D + 8) + cc * 8;
        if (vec) {
            fa_cp16(dst, ok ? src : x, ok);
        } else {
#pragma unroll
            for (int e = 0; e < 8; e++) dst[e] = ok ? src[e] : __float2half_rn(0.0f);
        }
    }
}

static __device__ __forceinline__ float fa_f(float v) { return v; }
static __device__ __forceinline__ float fa_f(__half v) { return __half2float(v); }

/* s += log2(e) * mask for this thread's S elements: row g reads m + off0,
 * row g+8 m + off1 (rows >= Sq skipped: ok0, ok1), element (nb, e) at key
 * offset nb*8 + (e&1) from the thread's first key (offsets >= lim are out
 * of range: not read), stride msk. */
template <int NB, typename M>
static __device__ __forceinline__ void fa_add_mask(float (*s)[4], const M *m, int64_t off0, int64_t off1, int64_t msk,
                                                   bool ok0, bool ok1, int lim) {
    const M *r0 = m + off0, *r1 = m + off1;
#pragma unroll
    for (int nb = 0; nb < NB; nb++) {
        if (nb * 8 < lim) {
            if (ok0) s[nb][0] += FA_LOG2E * fa_f(r0[0]);
            if (ok1) s[nb][2] += FA_LOG2E * fa_f(r1[0]);
        }
        if (nb * 8 + 1 < lim) {
            if (ok0) s[nb][1] += FA_LOG2E * fa_f(r0[msk]);
            if (ok1) s[nb][3] += FA_LOG2E * fa_f(r1[msk]);
        }
        r0 += 8 * msk;
        r1 += 8 * msk;
    }
}

/* The decomposed relative-position bias (SAM): key k = kh * kw + kq adds
 * m[row + kh * msk] + m2[row2 + kq * m2sk].  k0: this thread's first key;
 * (kh, kq) advance with the keys, so no division per element. */
template <int NB, typename M>
static __device__ __forceinline__ void fa_add_rel(float (*s)[4], const M *m, const M *m2, int64_t off0, int64_t off1,
                                                  int64_t o20, int64_t o21, int64_t msk, int64_t m2sk, int64_t kw,
                                                  int64_t k0, bool ok0, bool ok1, int lim) {
    int64_t kh = k0 / kw, kq = k0 - kh * kw;
#pragma unroll
    for (int nb = 0; nb < NB; nb++) {
#pragma unroll
        for (int e = 0; e < 2; e++) {
            int64_t h1 = kh, q1 = kq + e;
            if (q1 >= kw) q1 -= kw, h1++;
            if (nb * 8 + e < lim) {
                if (ok0) s[nb][e] += FA_LOG2E * (fa_f(m[off0 + h1 * msk]) + fa_f(m2[o20 + q1 * m2sk]));
                if (ok1) s[nb][2 + e] += FA_LOG2E * (fa_f(m[off1 + h1 * msk]) + fa_f(m2[o21 + q1 * m2sk]));
            }
        }
        kq += 8;
        while (kq >= kw) kq -= kw, kh++;
    }
}

/* The same from shared memory: r0 / r1 the two rows' [kh terms | kw terms]. */
template <int NB>
static __device__ __forceinline__ void fa_add_rel_sh(float (*s)[4], const __half *r0, const __half *r1, int kh_n,
                                                     int kw, int64_t k0, bool ok0, bool ok1, int lim) {
    int kh = (int)(k0 / kw), kq = (int)(k0 - (int64_t)kh * kw);
#pragma unroll
    for (int nb = 0; nb < NB; nb++) {
#pragma unroll
        for (int e = 0; e < 2; e++) {
            int h1 = kh, q1 = kq + e;
            if (q1 >= kw) q1 -= kw, h1++;
            if (nb * 8 + e < lim) {
                if (ok0) s[nb][e] += FA_LOG2E * (__half2float(r0[h1]) + __half2float(r0[kh_n + q1]));
                if (ok1) s[nb][2 + e] += FA_LOG2E * (__half2float(r1[h1]) + __half2float(r1[kh_n + q1]));
            }
        }
        kq += 8;
        while (kq >= kw) kq -= kw, kh++;
    }
}

#endif /* FA_ENABLED */

/* ---- kernel ---------------------------------------------------------------------------------- */

/* What a tile's scores get before the softmax, chosen at launch (each its
 * own kernel instance, so the common case keeps its registers):
 *   FA_PLAIN  no mask, scale > 0: the scale is folded into the exponent
 *             (max taken on the raw products; p = 2^(qk * scale_log2 - m));
 *   FA_MASK   an additive mask (or a scale <= 0);
 *   FA_REL    SAM's decomposed relative positions, any kh x kw;
 *   FA_REL64  the same with kw == 64 and the terms staged in shared memory:
 *             key tile t is row kh = t of the key grid, so its row term is
 *             one value per query row and its column terms are the staged
 *             kw terms in order (16-bit pairs, no index arithmetic);
 *   FA_PLAIN_H2  FA_PLAIN with the exponentials taken in float16 pairs
 *             (ex2.approx.f16x2: half the special-function instructions;
 *             P is float16 for the P V product anyway). */
enum { FA_PLAIN = 0, FA_MASK = 1, FA_REL = 2, FA_REL64 = 3, FA_PLAIN_H2 = 4 };
#define FA_IS_PLAIN(MODE) ((MODE) == FA_PLAIN || (MODE) == FA_PLAIN_H2)
#define FA_IS_REL(MODE) ((MODE) == FA_REL || (MODE) == FA_REL64)

#if FA_ENABLED
/* Scores of keys past Sk (element (nb, e) with nb*8 + (e&1) >= lim) to -inf. */
template <int NB> static __device__ __forceinline__ void fa_mask_tail(float (*s)[4], int lim) {
#pragma unroll
    for (int nb = 0; nb < NB; nb++)
#pragma unroll
        for (int e = 0; e < 4; e++)
            if (nb * 8 + (e & 1) >= lim) s[nb][e] = -INFINITY;
}

/* One key tile for one warp's MT m-tiles of 16 query rows (MT = 2: each K
 * and V fragment loaded from shared memory feeds two products): S = Q K^T
 * over the tile's first NKB 16-key blocks (the rest are keys >= Sk: a tail
 * tile skips them), the online-softmax update of (m, l, o), and O += P V.
 * kv: valid keys of the tile (<= 16 * NKB).  qi[mt]: the thread's two query
 * rows (g, g + 8) of m-tile mt, mrow[mt] their mask rows; srow: the staged
 * relative-position row of m-tile 0's row g (REL modes, MT == 1). */
template <int D, int MODE, int NKB, int MT>
static __device__ __forceinline__ void fa_tile(const fa_params &p, const __half *ks, const __half *vs,
                                               unsigned (&qf)[MT][D / 16][4], float (&o)[MT][D / 8][4],
                                               float (&m)[MT][2], float (&l)[MT][2], int t, int kv,
                                               const int64_t (&qi)[MT][2], const int64_t (&mrow)[MT][2],
                                               const __half *sR, int srow, int64_t b, int64_t h) {
    constexpr int LD = D + 8, NB = 2 * NKB;
    static_assert(MT == 1 || !FA_IS_REL(MODE), "two m-tiles: no relative positions");
    const int lane = threadIdx.x & 31, tc = lane & 3;

    /* S = Q K^T: 16 rows x 16*NKB keys per m-tile, NB n-blocks of 8 keys */
    float s[MT][NB][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int i = 0; i < NB; i++) s[mt][i][0] = s[mt][i][1] = s[mt][i][2] = s[mt][i][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
#pragma unroll
        for (int jj = 0; jj < NKB; jj++) {
            /* matrices: (keys 0-7, d 0-7), (keys 0-7, d 8-15), (keys 8-15, d 0-7), (keys 8-15, d 8-15) */
            unsigned r[4];
            fa_ldsm(r, ks + (jj * 16 + (lane & 7) + (lane >> 4) * 8) * LD + kk * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                fa_mma(s[mt][2 * jj], qf[mt][kk], r[0], r[1]);
                fa_mma(s[mt][2 * jj + 1], qf[mt][kk], r[2], r[3]);
            }
        }
    }

    const int64_t k0 = (int64_t)t * FA_BN;
    const int lim = kv - tc * 2; /* element (nb, e) is a key < Sk iff nb*8 + (e&1) < lim */
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        const int64_t qi0 = qi[mt][0], qi1 = qi[mt][1], mrow0 = mrow[mt][0], mrow1 = mrow[mt][1];
        float(&st)[NB][4] = s[mt];
        float mx0, mx1;
        if constexpr (FA_IS_PLAIN(MODE)) {
            /* raw maxima; the scale (> 0) keeps their order */
            float r0 = -INFINITY, r1 = -INFINITY;
            if (kv < 16 * NKB) fa_mask_tail<NB>(st, lim);
#pragma unroll
            for (int nb = 0; nb < NB; nb++) {
                r0 = fmaxf(r0, fmaxf(st[nb][0], st[nb][1]));
                r1 = fmaxf(r1, fmaxf(st[nb][2], st[nb][3]));
            }
            mx0 = fmaxf(m[mt][0], r0 * p.scale_log2);
            mx1 = fmaxf(m[mt][1], r1 * p.scale_log2);
        } else {
            if constexpr (MODE == FA_REL64) {
                /* kw == 64 == FA_BN and Sk = 64 kh: tile t is key row kh = t, all keys valid */
                const int ld = fa_rel_ld(p.rel_kh + (int)p.rel_kw);
                const __half *a0 = sR + (srow + mt * 16) * ld, *a1 = a0 + 8 * ld;
                const float h0 = __half2float(a0[t]), h1 = __half2float(a1[t]);
                const __half *w0 = a0 + p.rel_kh + tc * 2, *w1 = a1 + p.rel_kh + tc * 2;
#pragma unroll
                for (int nb = 0; nb < NB; nb++) {
                    const float2 c0 = __half22float2(*reinterpret_cast<const __half2 *>(w0 + nb * 8));
                    const float2 c1 = __half22float2(*reinterpret_cast<const __half2 *>(w1 + nb * 8));
                    st[nb][0] = fmaf(st[nb][0], p.scale_log2, FA_LOG2E * (h0 + c0.x));
                    st[nb][1] = fmaf(st[nb][1], p.scale_log2, FA_LOG2E * (h0 + c0.y));
                    st[nb][2] = fmaf(st[nb][2], p.scale_log2, FA_LOG2E * (h1 + c1.x));
                    st[nb][3] = fmaf(st[nb][3], p.scale_log2, FA_LOG2E * (h1 + c1.y));
                }
            } else {
#pragma unroll
                for (int nb = 0; nb < NB; nb++)
#pragma unroll
                    for (int e = 0; e < 4; e++) st[nb][e] *= p.scale_log2;
                if constexpr (MODE == FA_REL) {
                    if (p.rel_smem) {
                        const int ld = fa_rel_ld(p.rel_kh + (int)p.rel_kw);
                        fa_add_rel_sh<NB>(st, sR + (srow + mt * 16) * ld, sR + (srow + mt * 16 + 8) * ld, p.rel_kh,
                                          (int)p.rel_kw, k0 + tc * 2, qi0 < p.sq, qi1 < p.sq, lim);
                    } else {
                        const int64_t r2 = b * p.m2sb + h * p.m2sh;
                        if (p.mask_f16)
                            fa_add_rel<NB>(st, static_cast<const __half *>(p.mask),
                                           static_cast<const __half *>(p.mask2), mrow0, mrow1, r2 + qi0 * p.m2sq,
                                           r2 + qi1 * p.m2sq, p.msk, p.m2sk, p.rel_kw, k0 + tc * 2, qi0 < p.sq,
                                           qi1 < p.sq, lim);
                        else
                            fa_add_rel<NB>(st, static_cast<const float *>(p.mask),
                                           static_cast<const float *>(p.mask2), mrow0, mrow1, r2 + qi0 * p.m2sq,
                                           r2 + qi1 * p.m2sq, p.msk, p.m2sk, p.rel_kw, k0 + tc * 2, qi0 < p.sq,
                                           qi1 < p.sq, lim);
                    }
                } else if (p.mask) {
                    const int64_t c0 = (k0 + tc * 2) * p.msk;
                    if (p.mask_f16)
                        fa_add_mask<NB>(st, static_cast<const __half *>(p.mask), mrow0 + c0, mrow1 + c0, p.msk,
                                        qi0 < p.sq, qi1 < p.sq, lim);
                    else
                        fa_add_mask<NB>(st, static_cast<const float *>(p.mask), mrow0 + c0, mrow1 + c0, p.msk,
                                        qi0 < p.sq, qi1 < p.sq, lim);
                }
                if (kv < 16 * NKB) fa_mask_tail<NB>(st, lim);
            }
            mx0 = m[mt][0];
            mx1 = m[mt][1];
#pragma unroll
            for (int nb = 0; nb < NB; nb++) {
                mx0 = fmaxf(mx0, fmaxf(st[nb][0], st[nb][1]));
                mx1 = fmaxf(mx1, fmaxf(st[nb][2], st[nb][3]));
            }
        }
        /* a row's keys are spread over the 4 lanes of a quad */
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        const float base0 = mx0 == -INFINITY ? 0.0f : mx0, base1 = mx1 == -INFINITY ? 0.0f : mx1;
        const float al0 = exp2f(m[mt][0] - base0), al1 = exp2f(m[mt][1] - base1);
        m[mt][0] = mx0;
        m[mt][1] = mx1;
        float ls0 = 0.0f, ls1 = 0.0f;
#pragma unroll
        for (int nb = 0; nb < NB; nb++) {
            if constexpr (MODE == FA_PLAIN_H2) {
                /* the pair's float16 probabilities as the P V product's A register, kept in st[nb][0]
                   (row g) and st[nb][2] (row g + 8); the sums from their float values */
                const __half2 e0 = h2exp2(__floats2half2_rn(fmaf(st[nb][0], p.scale_log2, -base0),
                                                            fmaf(st[nb][1], p.scale_log2, -base0)));
                const __half2 e1 = h2exp2(__floats2half2_rn(fmaf(st[nb][2], p.scale_log2, -base1),
                                                            fmaf(st[nb][3], p.scale_log2, -base1)));
                const float2 f0 = __half22float2(e0), f1 = __half22float2(e1);
                st[nb][0] = __uint_as_float(*reinterpret_cast<const unsigned *>(&e0));
                st[nb][2] = __uint_as_float(*reinterpret_cast<const unsigned *>(&e1));
                ls0 += f0.x + f0.y;
                ls1 += f1.x + f1.y;
                continue;
            } else if constexpr (MODE == FA_PLAIN) {
                st[nb][0] = exp2f(fmaf(st[nb][0], p.scale_log2, -base0));
                st[nb][1] = exp2f(fmaf(st[nb][1], p.scale_log2, -base0));
                st[nb][2] = exp2f(fmaf(st[nb][2], p.scale_log2, -base1));
                st[nb][3] = exp2f(fmaf(st[nb][3], p.scale_log2, -base1));
            } else {
                st[nb][0] = exp2f(st[nb][0] - base0);
                st[nb][1] = exp2f(st[nb][1] - base0);
                st[nb][2] = exp2f(st[nb][2] - base1);
                st[nb][3] = exp2f(st[nb][3] - base1);
            }
            ls0 += st[nb][0] + st[nb][1];
            ls1 += st[nb][2] + st[nb][3];
        }
        l[mt][0] = l[mt][0] * al0 + ls0;
        l[mt][1] = l[mt][1] * al1 + ls1;
#pragma unroll
        for (int i = 0; i < D / 8; i++) {
            o[mt][i][0] *= al0;
            o[mt][i][1] *= al0;
            o[mt][i][2] *= al1;
            o[mt][i][3] *= al1;
        }
    }

    /* O += P V: k-block kt (keys 16kt..16kt+15) is S n-blocks 2kt, 2kt+1 */
#pragma unroll
    for (int kt = 0; kt < NKB; kt++) {
        unsigned a[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
            if constexpr (MODE == FA_PLAIN_H2) {
                a[mt][0] = __float_as_uint(s[mt][2 * kt][0]);
                a[mt][1] = __float_as_uint(s[mt][2 * kt][2]);
                a[mt][2] = __float_as_uint(s[mt][2 * kt + 1][0]);
                a[mt][3] = __float_as_uint(s[mt][2 * kt + 1][2]);
            } else {
                a[mt][0] = fa_pack(s[mt][2 * kt][0], s[mt][2 * kt][1]);
                a[mt][1] = fa_pack(s[mt][2 * kt][2], s[mt][2 * kt][3]);
                a[mt][2] = fa_pack(s[mt][2 * kt + 1][0], s[mt][2 * kt + 1][1]);
                a[mt][3] = fa_pack(s[mt][2 * kt + 1][2], s[mt][2 * kt + 1][3]);
            }
        }
#pragma unroll
        for (int ee = 0; ee < D / 16; ee++) {
            /* transposed matrices: (keys 0-7, d 0-7), (keys 8-15, d 0-7), (keys 0-7, d 8-15), (keys 8-15, d 8-15) */
            unsigned r[4];
            fa_ldsm_t(r, vs + (kt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + ee * 16 + (lane >> 4) * 8);
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                fa_mma(o[mt][2 * ee], a[mt], r[0], r[1]);
                fa_mma(o[mt][2 * ee + 1], a[mt], r[2], r[3]);
            }
        }
    }
}

/* fa_tile for a tile of kv valid keys: a tail tile computes only its 16-key
 * blocks that hold keys (REL64 tiles are always whole). */
template <int D, int MODE, int MT>
static __device__ __forceinline__ void fa_tile_kv(const fa_params &p, const __half *ks, const __half *vs,
                                                  unsigned (&qf)[MT][D / 16][4], float (&o)[MT][D / 8][4],
                                                  float (&m)[MT][2], float (&l)[MT][2], int t, int kv,
                                                  const int64_t (&qi)[MT][2], const int64_t (&mrow)[MT][2],
                                                  const __half *sR, int srow, int64_t b, int64_t h) {
    if constexpr (MODE == FA_REL64)
        fa_tile<D, MODE, 4, MT>(p, ks, vs, qf, o, m, l, t, kv, qi, mrow, sR, srow, b, h);
    else if (kv > 48)
        fa_tile<D, MODE, 4, MT>(p, ks, vs, qf, o, m, l, t, kv, qi, mrow, sR, srow, b, h);
    else if (kv > 32)
        fa_tile<D, MODE, 3, MT>(p, ks, vs, qf, o, m, l, t, kv, qi, mrow, sR, srow, b, h);
    else if (kv > 16)
        fa_tile<D, MODE, 2, MT>(p, ks, vs, qf, o, m, l, t, kv, qi, mrow, sR, srow, b, h);
    else
        fa_tile<D, MODE, 1, MT>(p, ks, vs, qf, o, m, l, t, kv, qi, mrow, sR, srow, b, h);
}
/* 16 staged output rows (so, row stride D + 8) to Y rows r0.. (those < Sq), 16-byte stores. */
template <int D>
static __device__ __forceinline__ void fa_store_rows(const fa_params &p, const __half *so, int64_t r0, int64_t b,
                                                     int64_t h, int lane) {
    constexpr int CH = D / 8, LD = D + 8;
#pragma unroll
    for (int i = 0; i < 16 * CH / 32; i++) {
        int c = lane + i * 32, r = c / CH, cc = c % CH;
        int64_t qi = r0 + r;
        if (qi >= p.sq) continue;
        __half *dst = p.y + (p.seq_first ? qi * p.b + b : b * p.sq + qi) * p.ldy + h * D + cc * 8;
        const __half *src = so + r * LD + cc * 8;
        if (p.vec) {
            *reinterpret_cast<uint4 *>(dst) = *reinterpret_cast<const uint4 *>(src);
        } else {
#pragma unroll
            for (int e = 0; e < 8; e++) dst[e] = src[e];
        }
    }
}
#endif /* FA_ENABLED */

/* Blocks per SM the register budget is sized for at D == 64: 4 (128
 * registers) for the plain and masked kernels, 3 (168) for the
 * relative-position ones, which spill at 128 (H200, bench/gpu/flash_bench.c:
 * ViT-B/16 b256 0.228 ms at 4 against 0.241 at 3; SAM's global attention
 * 0.317 ms at 3 against 0.340 at 4); 2 for two m-tiles per warp (their
 * accumulators and scores double). */
#define FA_MINB64(MODE, MT) ((MT) == 2 ? 2 : FA_IS_REL(MODE) ? 3 : 4)

/* One block of 4 warps per (batch, head, 64 * MT query rows); warp w owns
 * rows [16 MT w, 16 MT (w + 1)) of the block's. */
template <int D, int MODE, int MT>
__global__ void __launch_bounds__(FA_THREADS, D == 64 ? FA_MINB64(MODE, MT) : 2) k_flash(const fa_params p) {
#if !FA_ENABLED
    (void)p;
#else
    kc_pdl_wait();
    extern __shared__ __align__(16) unsigned char fa_sh[];
    constexpr int LD = D + 8, TILE = FA_BN * LD, BM = FA_BM * MT;
    constexpr bool REL = FA_IS_REL(MODE);
    static_assert(MT == 1 || !REL, "two m-tiles: no relative positions");
    /* Q: BM rows; K, V: 2 buffers each */
    __half *sQ = reinterpret_cast<__half *>(fa_sh), *sK = sQ + BM * LD, *sV = sK + 2 * TILE;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tc = lane & 3;
    const int64_t bh = blockIdx.x / p.nqt, b = bh / p.h, h = bh % p.h;
    const int64_t q0 = (int64_t)(blockIdx.x % p.nqt) * BM;
    const __half *Q = p.q + h * D, *K = p.k + h * D, *V = p.v + h * D;
    const int nkt = (int)((p.sk + FA_BN - 1) / FA_BN);
    __half *sR = sV + 2 * TILE; /* REL with rel_smem: [64][kh + kw] */
    if (REL && p.rel_smem) {
        /* this block's rows of Rh and Rw (read once instead of per key tile; made visible by the
           __syncthreads before the first tile's scores) */
        const int w = p.rel_kh + (int)p.rel_kw, ld = fa_rel_ld(w);
        const __half *m1 = static_cast<const __half *>(p.mask), *m2 = static_cast<const __half *>(p.mask2);
        for (int i = threadIdx.x; i < FA_BM * w; i += FA_THREADS) {
            int r = i / w, c = i - r * w;
            int64_t q = q0 + r;
            __half v = __float2half_rn(0.0f);
            if (q < p.sq)
                v = c < p.rel_kh ? m1[b * p.msb + h * p.msh + q * p.msq + c * p.msk]
                                 : m2[b * p.m2sb + h * p.m2sh + q * p.m2sq + (c - p.rel_kh) * p.m2sk];
            sR[r * ld + c] = v;
        }
    }

    fa_load<D, BM, FA_THREADS>(sQ, Q, p.ldq, q0, p.sq, b, p.b, p.seq_first, p.vec, threadIdx.x);
    fa_load<D, FA_BN, FA_THREADS>(sK, K, p.ldk, 0, p.sk, b, p.b, p.seq_first, p.vec, threadIdx.x);
    fa_load<D, FA_BN, FA_THREADS>(sV, V, p.ldv, 0, p.sk, b, p.b, p.seq_first, p.vec, threadIdx.x);
    fa_commit();

    /* this thread's query rows and their mask rows; a warp whose rows are all >= Sq (the last
       query tile's) only helps load, and one whose second m-tile is all >= Sq computes one */
    const int wr = warp * 16 * MT;
    int64_t qi[MT][2], mrow[MT][2];
    const int64_t mbase = b * p.msb + h * p.msh;
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        qi[mt][0] = q0 + wr + mt * 16 + g;
        qi[mt][1] = qi[mt][0] + 8;
        mrow[mt][0] = mbase + qi[mt][0] * p.msq;
        mrow[mt][1] = mbase + qi[mt][1] * p.msq;
    }
    const bool active = q0 + wr < p.sq, both = MT == 2 && q0 + wr + 16 < p.sq;

    float o[MT][D / 8][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int i = 0; i < D / 8; i++) o[mt][i][0] = o[mt][i][1] = o[mt][i][2] = o[mt][i][3] = 0.0f;
    float m[MT][2], l[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) m[mt][0] = m[mt][1] = -INFINITY, l[mt][0] = l[mt][1] = 0.0f;
    unsigned qf[MT][D / 16][4];

    for (int t = 0; t < nkt; t++) {
        const int buf = t & 1;
        if (t + 1 < nkt) {
            fa_load<D, FA_BN, FA_THREADS>(sK + (buf ^ 1) * TILE, K, p.ldk, (int64_t)(t + 1) * FA_BN, p.sk, b, p.b,
                                          p.seq_first, p.vec, threadIdx.x);
            fa_load<D, FA_BN, FA_THREADS>(sV + (buf ^ 1) * TILE, V, p.ldv, (int64_t)(t + 1) * FA_BN, p.sk, b, p.b,
                                          p.seq_first, p.vec, threadIdx.x);
            fa_commit();
            fa_wait<1>(); /* tile t (and Q) landed; tile t+1 may be in flight */
        } else {
            fa_wait<0>();
        }
        __syncthreads();
        if (active) {
            if (t == 0) {
                /* A fragments of the warp's Q rows: matrices (rows 0-7 | 8-15) x (cols 0-7 | 8-15) */
#pragma unroll
                for (int mt = 0; mt < MT; mt++)
#pragma unroll
                    for (int kk = 0; kk < D / 16; kk++)
                        fa_ldsm(qf[mt][kk], sQ + (wr + mt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + kk * 16 +
                                                (lane >> 4) * 8);
            }
            const __half *ks = sK + buf * TILE, *vs = sV + buf * TILE;
            const int64_t rest = p.sk - (int64_t)t * FA_BN;
            const int kv = rest < FA_BN ? (int)rest : FA_BN;
            if (MT == 1 || both) {
                fa_tile_kv<D, MODE, MT>(p, ks, vs, qf, o, m, l, t, kv, qi, mrow, sR, wr + g, b, h);
            } else {
                /* the first m-tile alone (same storage, first element) */
                fa_tile_kv<D, MODE, 1>(p, ks, vs, reinterpret_cast<unsigned(&)[1][D / 16][4]>(qf),
                                       reinterpret_cast<float(&)[1][D / 8][4]>(o), reinterpret_cast<float(&)[1][2]>(m),
                                       reinterpret_cast<float(&)[1][2]>(l), t, kv,
                                       reinterpret_cast<const int64_t(&)[1][2]>(qi),
                                       reinterpret_cast<const int64_t(&)[1][2]>(mrow), sR, wr + g, b, h);
            }
        }
        __syncthreads(); /* buffer buf is refilled by the next iteration's prefetch */
    }
    if (!active) return;

#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        if (mt == 1 && !both) break;
        /* normalize; a row without a finite score (l == 0) or with NaN gives NaN */
        float l0 = l[mt][0], l1 = l[mt][1];
        l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
        l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
        l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
        l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
        const float qnan = __int_as_float(0x7fffffff);
        const float inv0 = l0 > 0.0f ? 1.0f / l0 : qnan, inv1 = l1 > 0.0f ? 1.0f / l1 : qnan;

        /* stage through this warp's own 16 rows of sQ (only this warp read them), then 16-byte row stores */
        const int r0 = wr + mt * 16;
        __half *so = sQ + r0 * LD;
#pragma unroll
        for (int i = 0; i < D / 8; i++) {
            *reinterpret_cast<unsigned *>(so + g * LD + i * 8 + tc * 2) =
                fa_pack(o[mt][i][0] * inv0, o[mt][i][1] * inv0);
            *reinterpret_cast<unsigned *>(so + (g + 8) * LD + i * 8 + tc * 2) =
                fa_pack(o[mt][i][2] * inv1, o[mt][i][3] * inv1);
        }
        __syncwarp();
        fa_store_rows<D>(p, so, q0 + r0, b, h, lane);
    }
#endif /* FA_ENABLED */
}

/* Split keys, for grids too small to fill the GPU (ViT at batch 1: 12 heads
 * x 4 query tiles): one block of 4 warps per (batch, head, 16 query rows),
 * warp w takes key tiles w, w + 4, ... into its own K/V buffers, and the
 * warps' (m, l, O) are merged through shared memory at the end.  D == 64,
 * no relative positions. */
#define FA_SPLIT_D 64
#define FA_SPLIT_W (FA_THREADS / 32)
static size_t fa_split_smem_bytes() {
    return (size_t)(16 + 2 * FA_SPLIT_W * FA_BN) * (FA_SPLIT_D + 8) * sizeof(__half);
}

template <int MODE>
__global__ void __launch_bounds__(FA_THREADS) k_flash_split(const fa_params p) {
#if !FA_ENABLED
    (void)p;
#else
    static_assert(!FA_IS_REL(MODE), "split keys: no relative positions");
    kc_pdl_wait();
    extern __shared__ __align__(16) unsigned char fa_sh[];
    constexpr int D = FA_SPLIT_D, LD = D + 8, TILE = FA_BN * LD, PL = D + 8; /* PL: floats per merged row */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tc = lane & 3;
    const int64_t bh = blockIdx.x / p.nqt, b = bh / p.h, h = bh % p.h;
    const int64_t q0 = (int64_t)(blockIdx.x % p.nqt) * 16;
    const __half *Q = p.q + h * D, *K = p.k + h * D, *V = p.v + h * D;
    const int nkt = (int)((p.sk + FA_BN - 1) / FA_BN);
    __half *sQ = reinterpret_cast<__half *>(fa_sh), *ks = sQ + 16 * LD + 2 * warp * TILE, *vs = ks + TILE;

    fa_load<D, 16, FA_THREADS>(sQ, Q, p.ldq, q0, p.sq, b, p.b, p.seq_first, p.vec, threadIdx.x);
    if (warp < nkt) {
        fa_load<D, FA_BN, 32>(ks, K, p.ldk, (int64_t)warp * FA_BN, p.sk, b, p.b, p.seq_first, p.vec, lane);
        fa_load<D, FA_BN, 32>(vs, V, p.ldv, (int64_t)warp * FA_BN, p.sk, b, p.b, p.seq_first, p.vec, lane);
    }
    fa_commit();
    fa_wait<0>();
    __syncthreads(); /* Q (loaded by all) and each warp's first tile */

    int64_t qi[1][2], mrow[1][2];
    qi[0][0] = q0 + g;
    qi[0][1] = q0 + g + 8;
    mrow[0][0] = b * p.msb + h * p.msh + qi[0][0] * p.msq;
    mrow[0][1] = b * p.msb + h * p.msh + qi[0][1] * p.msq;
    unsigned qf[1][D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
        fa_ldsm(qf[0][kk], sQ + ((lane & 7) + ((lane >> 3) & 1) * 8) * LD + kk * 16 + (lane >> 4) * 8);
    float o[1][D / 8][4];
#pragma unroll
    for (int i = 0; i < D / 8; i++) o[0][i][0] = o[0][i][1] = o[0][i][2] = o[0][i][3] = 0.0f;
    float m[1][2] = {{-INFINITY, -INFINITY}}, l[1][2] = {{0.0f, 0.0f}};

    for (int t = warp; t < nkt; t += FA_SPLIT_W) {
        if (t != warp) {
            __syncwarp(); /* the warp's reads of the previous tile are done */
            fa_load<D, FA_BN, 32>(ks, K, p.ldk, (int64_t)t * FA_BN, p.sk, b, p.b, p.seq_first, p.vec, lane);
            fa_load<D, FA_BN, 32>(vs, V, p.ldv, (int64_t)t * FA_BN, p.sk, b, p.b, p.seq_first, p.vec, lane);
            fa_commit();
            fa_wait<0>();
            __syncwarp();
        }
        const int64_t rest = p.sk - (int64_t)t * FA_BN;
        fa_tile_kv<D, MODE, 1>(p, ks, vs, qf, o, m, l, t, rest < FA_BN ? (int)rest : FA_BN, qi, mrow, nullptr, 0, b,
                               h);
    }

    /* each warp's partial (O unnormalized, m, l) into its own K buffer as floats: [16][PL], m[16], l[16] */
    float l0 = l[0][0], l1 = l[0][1];
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    __syncwarp();
    float *po = reinterpret_cast<float *>(ks), *pm = po + 16 * PL, *pl = pm + 16;
#pragma unroll
    for (int i = 0; i < D / 8; i++) {
        *reinterpret_cast<float2 *>(po + g * PL + i * 8 + tc * 2) = make_float2(o[0][i][0], o[0][i][1]);
        *reinterpret_cast<float2 *>(po + (g + 8) * PL + i * 8 + tc * 2) = make_float2(o[0][i][2], o[0][i][3]);
    }
    if (tc == 0) pm[g] = m[0][0], pm[g + 8] = m[0][1], pl[g] = l0, pl[g + 8] = l1;
    __syncthreads();

    /* merge: thread -> row r, 8 columns from c0; warps without a tile hold nothing */
    const int r = threadIdx.x >> 3, c0 = (threadIdx.x & 7) * 8, nw = nkt < FA_SPLIT_W ? nkt : FA_SPLIT_W;
    const int64_t q = q0 + r;
    if (q >= p.sq) return;
    const float *base_w = reinterpret_cast<const float *>(sQ + 16 * LD);
    constexpr int WSTRIDE = 2 * TILE / 2; /* floats per warp's region (2 * TILE halves) */
    float M = -INFINITY;
    for (int w = 0; w < nw; w++) M = fmaxf(M, base_w[w * WSTRIDE + 16 * PL + r]);
    const float mb = M == -INFINITY ? 0.0f : M;
    float L = 0.0f, acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int w = 0; w < nw; w++) {
        const float *pw = base_w + w * WSTRIDE;
        const float e = exp2f(pw[16 * PL + r] - mb);
        L += e * pw[16 * PL + 16 + r];
#pragma unroll
        for (int j = 0; j < 8; j++) acc[j] += e * pw[r * PL + c0 + j];
    }
    const float inv = L > 0.0f ? 1.0f / L : __int_as_float(0x7fffffff);
    __half *dst = p.y + (p.seq_first ? q * p.b + b : b * p.sq + q) * p.ldy + h * D + c0;
    if (p.vec) {
        uint4 u;
        u.x = fa_pack(acc[0] * inv, acc[1] * inv), u.y = fa_pack(acc[2] * inv, acc[3] * inv);
        u.z = fa_pack(acc[4] * inv, acc[5] * inv), u.w = fa_pack(acc[6] * inv, acc[7] * inv);
        *reinterpret_cast<uint4 *>(dst) = u;
    } else {
#pragma unroll
        for (int j = 0; j < 8; j++) dst[j] = __float2half_rn(acc[j] * inv);
    }
#endif /* FA_ENABLED */
}

/* ---- launchers ------------------------------------------------------------------------------ */

extern "C" bool kc_flash_supported(kc_dtype t, int64_t d, int64_t dv, int64_t b, int64_t h, int64_t sq) {
    if (t != KC_F16 || d != dv || (d != 64 && d != 128) || b < 1 || h < 1 || sq < 1) return false;
    int64_t nqt = (sq + FA_BM - 1) / FA_BM;
    return b * h <= INT32_MAX / nqt;
}

/* The kernel for the current device must come from sm_80+ code (SASS or
 * PTX): a build for older architectures only has the empty body. */
template <int D> static cudaError_t fa_prepare() {
    cudaFuncAttributes fa;
    cudaError_t e = cudaFuncGetAttributes(&fa, k_flash<D, FA_PLAIN, 1>);
    if (e != cudaSuccess) return e;
    if (fa.ptxVersion < 80 || fa.binaryVersion < 80) return cudaErrorNotSupported;
    const int base = (int)fa_smem_bytes(D, 1), rel = (int)(fa_smem_bytes(D, 1) + fa_rel_smem_bytes());
    const cudaFuncAttribute smem = cudaFuncAttributeMaxDynamicSharedMemorySize;
    if ((e = cudaFuncSetAttribute(k_flash<D, FA_PLAIN, 1>, smem, base)) ||
        (e = cudaFuncSetAttribute(k_flash<D, FA_MASK, 1>, smem, base)) ||
        (e = cudaFuncSetAttribute(k_flash<D, FA_REL, 1>, smem, rel)) ||
        (e = cudaFuncSetAttribute(k_flash<D, FA_REL64, 1>, smem, rel)) ||
        (e = cudaFuncSetAttribute(k_flash<D, FA_PLAIN_H2, 1>, smem, base)))
        return e;
    if constexpr (D == FA_SPLIT_D) {
        const int two = (int)fa_smem_bytes(D, 2), split = (int)fa_split_smem_bytes();
        if ((e = cudaFuncSetAttribute(k_flash<D, FA_PLAIN, 2>, smem, two)) ||
            (e = cudaFuncSetAttribute(k_flash<D, FA_MASK, 2>, smem, two)) ||
            (e = cudaFuncSetAttribute(k_flash_split<FA_PLAIN>, smem, split)))
            return e;
        return cudaFuncSetAttribute(k_flash_split<FA_MASK>, smem, split);
    }
    return cudaSuccess;
}

template <int D>
static void fa_launch(int mode, int variant, unsigned grid, cudaStream_t stream, const fa_params &p) {
    const size_t base = fa_smem_bytes(D, 1), rel = fa_smem_bytes(D, 1) + fa_rel_smem_bytes();
    if constexpr (D == FA_SPLIT_D) {
        if (variant == KC_FLASH_TWO_MTILES) {
            const size_t two = fa_smem_bytes(D, 2);
            if (mode == FA_PLAIN) kc_launch(k_flash<D, FA_PLAIN, 2>, grid, FA_THREADS, two, stream, p);
            else kc_launch(k_flash<D, FA_MASK, 2>, grid, FA_THREADS, two, stream, p);
            return;
        }
        if (variant == KC_FLASH_SPLIT_KEYS) {
            const size_t split = fa_split_smem_bytes();
            if (mode == FA_PLAIN) kc_launch(k_flash_split<FA_PLAIN>, grid, FA_THREADS, split, stream, p);
            else kc_launch(k_flash_split<FA_MASK>, grid, FA_THREADS, split, stream, p);
            return;
        }
    }
    switch (mode) {
    case FA_PLAIN: kc_launch(k_flash<D, FA_PLAIN, 1>, grid, FA_THREADS, base, stream, p); break;
    case FA_PLAIN_H2: kc_launch(k_flash<D, FA_PLAIN_H2, 1>, grid, FA_THREADS, base, stream, p); break;
    case FA_MASK: kc_launch(k_flash<D, FA_MASK, 1>, grid, FA_THREADS, base, stream, p); break;
    case FA_REL: kc_launch(k_flash<D, FA_REL, 1>, grid, FA_THREADS, rel, stream, p); break;
    default: kc_launch(k_flash<D, FA_REL64, 1>, grid, FA_THREADS, rel, stream, p); break;
    }
}

extern "C" cudaError_t kc_flash_prepare(int64_t d) {
    return d == 64 ? fa_prepare<64>() : d == 128 ? fa_prepare<128>() : cudaErrorInvalidValue;
}

static bool fa_al16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

static int fa_mode(const kc_flash_desc *a) {
    if (a->rel_kw > 0) {
        const int64_t kh = a->sk / a->rel_kw;
        const bool staged = a->rel_kw <= FA_REL_MAX && kh <= FA_REL_MAX && a->mask_t == KC_F16;
        return staged && a->rel_kw == FA_BN && kh % 2 == 0 ? FA_REL64 : FA_REL;
    }
    return !a->has_mask && a->scale > 0.0f ? FA_PLAIN : FA_MASK;
}

static int64_t fa_cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

extern "C" int kc_flash_variant(const kc_flash_desc *a) {
    const int mode = fa_mode(a);
    const bool plain = a->d == FA_SPLIT_D && (mode == FA_PLAIN || mode == FA_MASK);
    const int64_t bh = a->b * a->h, nkt = fa_cdiv(a->sk, FA_BN);
    const bool two = plain && bh <= INT32_MAX / fa_cdiv(a->sq, 2 * FA_BM);
    const bool split = plain && nkt >= 2 && bh <= INT32_MAX / fa_cdiv(a->sq, 16);
    switch (a->variant) {
    case KC_FLASH_TWO_MTILES: return two ? KC_FLASH_TWO_MTILES : KC_FLASH_ONE_MTILE;
    case KC_FLASH_SPLIT_KEYS: return split ? KC_FLASH_SPLIT_KEYS : KC_FLASH_ONE_MTILE;
    case KC_FLASH_H2EXP: return mode == FA_PLAIN ? KC_FLASH_H2EXP : KC_FLASH_ONE_MTILE;
    default: return KC_FLASH_ONE_MTILE; /* AUTO: the others did not pay where tried (bench/RESULTS.md) */
    }
}

extern "C" cudaError_t kc_flash_attn(void *y, const void *q, const void *k, const void *v, const void *mask,
                                     const void *mask2, const kc_flash_desc *a, cudaStream_t stream) {
    if (!a || !y || !q || !k || !v || (a->has_mask && !mask) || a->sk < 1 || a->rel_kw < 0 ||
        (a->rel_kw > 0 && (!a->has_mask || !mask2 || a->sk % a->rel_kw)) ||
        !kc_flash_supported(KC_F16, a->d, a->d, a->b, a->h, a->sq) || a->ldq < a->h * a->d ||
        a->ldk < a->h * a->d || a->ldv < a->h * a->d || (a->has_mask && a->mask_t != KC_F32 && a->mask_t != KC_F16))
        return cudaErrorInvalidValue;
    if (((uintptr_t)y | (uintptr_t)q | (uintptr_t)k | (uintptr_t)v) & 1u) return cudaErrorMisalignedAddress;
    fa_params p;
    p.q = static_cast<const __half *>(q);
    p.k = static_cast<const __half *>(k);
    p.v = static_cast<const __half *>(v);
    p.y = static_cast<__half *>(y);
    p.mask = a->has_mask ? mask : NULL;
    p.b = a->b, p.sq = a->sq, p.sk = a->sk, p.h = a->h;
    p.ldq = a->ldq, p.ldk = a->ldk, p.ldv = a->ldv, p.ldy = a->h * a->d;
    p.msb = a->msb, p.msh = a->msh, p.msq = a->msq, p.msk = a->msk;
    p.mask2 = a->rel_kw > 0 ? mask2 : NULL;
    p.rel_kw = a->rel_kw;
    p.m2sb = a->m2sb, p.m2sh = a->m2sh, p.m2sq = a->m2sq, p.m2sk = a->m2sk;
    p.rel_kh = a->rel_kw > 0 ? (int)(a->sk / a->rel_kw) : 0;
    p.rel_smem = a->rel_kw > 0 && a->rel_kw <= FA_REL_MAX && p.rel_kh <= FA_REL_MAX && a->mask_t == KC_F16;
    p.scale_log2 = a->scale * FA_LOG2E;
    p.seq_first = a->seq_first != 0;
    p.mask_f16 = a->has_mask && a->mask_t == KC_F16;
    p.vec = fa_al16(q) && fa_al16(k) && fa_al16(v) && fa_al16(y) && a->ldq % 8 == 0 && a->ldk % 8 == 0 &&
            a->ldv % 8 == 0;
    const int variant = kc_flash_variant(a), mode = variant == KC_FLASH_H2EXP ? FA_PLAIN_H2 : fa_mode(a);
    const int64_t rows = variant == KC_FLASH_SPLIT_KEYS ? 16 : variant == KC_FLASH_TWO_MTILES ? 2 * FA_BM : FA_BM;
    p.nqt = (int)fa_cdiv(a->sq, rows);
    unsigned grid = (unsigned)(a->b * a->h * p.nqt);
    if (a->d == 64)
        fa_launch<64>(mode, variant, grid, stream, p);
    else
        fa_launch<128>(mode, variant, grid, stream, p);
    return cudaGetLastError();
}
