/*
 * k_elementwise.cu — kiln's elementwise and data-movement CUDA kernels
 * (launchers declared in cuda/kernels.h): kc_cast, kc_fill, kc_copy_nd
 * (with the head split/merge of attention as strided copies), kc_gather,
 * kc_bias_act and kc_fe (kiln.FusedElementwise programs).  Dense data
 * moves 8 elements per thread with 16-byte accesses when aligned; strided
 * copies collapse mergeable dims on the host, then either transpose
 * through shared-memory tiles (y's and x's contiguous axes differ) or
 * widen contiguous rows to 16/8/4-byte words.
 */
#include <string.h>

#include "cuda/k_common.cuh"

/* ---- cast and fill ------------------------------------------------------------------- */

template <typename TY, typename TX> __global__ void k_cast(TY *y, const TX *x, int64_t n, int vec) {
    kc_pdl_wait();
    int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, nth = (int64_t)gridDim.x * blockDim.x, head = 0;
    if (vec) {
        int64_t nv = n / 8;
        for (int64_t i = tid; i < nv; i += nth) {
            float v[8];
            kc_ld8(x + 8 * i, v);
            kc_st8(y + 8 * i, v);
        }
        head = nv * 8;
    }
    for (int64_t i = head + tid; i < n; i += nth) kc_st(y + i, kc_ld(x + i));
}

extern "C" cudaError_t kc_cast(void *y, kc_dtype yt, const void *x, kc_dtype xt, int64_t n, cudaStream_t stream) {
    if (n < 0) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    if (xt == yt) {
        if (y == x) return cudaSuccess;
        cudaError_t e = cudaMemcpyAsync(y, x, (size_t)n * kc_dtype_size(xt), cudaMemcpyDeviceToDevice, stream);
        return e != cudaSuccess ? e : cudaGetLastError();
    }
    int vec = kc_aligned(x, 16) && kc_aligned(y, 16);
    unsigned g = kc_blocks(vec ? n / 8 + n % 8 : n, KC_THREADS);
    if (yt == KC_F16)
        kc_launch(k_cast<__half, float>, dim3(g), dim3(KC_THREADS), 0, stream, (__half *)y, (const float *)x, n, vec);
    else
        kc_launch(k_cast<float, __half>, dim3(g), dim3(KC_THREADS), 0, stream, (float *)y, (const __half *)x, n, vec);
    return cudaGetLastError();
}

template <typename T> __global__ void k_fill(T *y, float value, int64_t n, int vec) {
    kc_pdl_wait();
    int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, nth = (int64_t)gridDim.x * blockDim.x, head = 0;
    if (vec) {
        float v[8];
#pragma unroll
        for (int e = 0; e < 8; e++) v[e] = value;
        int64_t nv = n / 8;
        for (int64_t i = tid; i < nv; i += nth) kc_st8(y + 8 * i, v);
        head = nv * 8;
    }
    for (int64_t i = head + tid; i < n; i += nth) kc_st(y + i, value);
}

extern "C" cudaError_t kc_fill(void *y, kc_dtype t, float value, int64_t n, cudaStream_t stream) {
    if (n < 0) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    int vec = kc_aligned(y, 16);
    unsigned g = kc_blocks(vec ? n / 8 + n % 8 : n, KC_THREADS);
    if (t == KC_F16) kc_launch(k_fill<__half>, dim3(g), dim3(KC_THREADS), 0, stream, (__half *)y, value, n, vec);
    else kc_launch(k_fill<float>, dim3(g), dim3(KC_THREADS), 0, stream, (float *)y, value, n, vec);
    return cudaGetLastError();
}

/* ---- strided copy -------------------------------------------------------------------- */

/* dims and strides innermost first (d[0] varies fastest). */
typedef struct cp_args {
    int64_t d[KC_MAX_RANK], xs[KC_MAX_RANK], ys[KC_MAX_RANK];
    int64_t n;
    int rank;
} cp_args;

/* General path: one element (of 1..16 bytes) per thread and step; index
 * arithmetic in I (uint32_t when a.n < 2^31: 32-bit division is several
 * times cheaper than 64-bit). */
template <typename E, typename I> __global__ void k_copy(E *y, const E *x, const cp_args a) {
    kc_pdl_wait();
    I n = (I)a.n, nth = (I)gridDim.x * blockDim.x;
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += nth) {
        I r = i;
        int64_t xo = 0, yo = 0;
#pragma unroll
        for (int k = 0; k < KC_MAX_RANK; k++) {
            if (k < a.rank) {
                I c = r;
                if (k < a.rank - 1) {
                    I d = (I)a.d[k];
                    c = r % d;
                    r /= d;
                }
                xo += (int64_t)c * a.xs[k];
                yo += (int64_t)c * a.ys[k];
            }
        }
        y[yo] = x[xo];
    }
}

/* Transpose path: axis A is contiguous in y (stride 1), axis B in x; the
 * other axes (up to KC_MAX_RANK - 2) index whole tiles. */
typedef struct tp_args {
    int64_t da, db;   /* sizes of A and B */
    int64_t xa, yb;   /* x's stride of A, y's stride of B */
    int64_t d[KC_MAX_RANK], xs[KC_MAX_RANK], ys[KC_MAX_RANK];
    int nrest;
    int64_t ta, tb, ntiles; /* tiles along A, along B, in all */
} tp_args;

/* TD x TD tiles, blocks of 32 x 8 threads: a tile is read along B (rows
 * of x), stored in shared memory, and written along A (rows of y).  The
 * row pitch TD + PAD elements (PAD: one 4-byte word) keeps the column
 * reads free of bank conflicts. */
template <typename E, int TD> __global__ void k_copy_tile(E *y, const E *x, const tp_args a) {
    constexpr int PAD = sizeof(E) >= 4 ? 1 : 4 / (int)sizeof(E);
    __shared__ E tile[TD][TD + PAD];
    kc_pdl_wait();
    int tx = threadIdx.x, ty = threadIdx.y;
    for (int64_t t = blockIdx.x; t < a.ntiles; t += gridDim.x) {
        int64_t r = t, ia = r % a.ta;
        r /= a.ta;
        int64_t ib = r % a.tb, xo = 0, yo = 0;
        r /= a.tb;
#pragma unroll
        for (int k = 0; k < KC_MAX_RANK; k++) {
            if (k < a.nrest) {
                int64_t c = r % a.d[k];
                r /= a.d[k];
                xo += c * a.xs[k];
                yo += c * a.ys[k];
            }
        }
        int64_t a0 = ia * TD, b0 = ib * TD;
        int na = (int)(a.da - a0 < TD ? a.da - a0 : TD), nb = (int)(a.db - b0 < TD ? a.db - b0 : TD);
        xo += a0 * a.xa + b0;
        yo += b0 * a.yb + a0;
        __syncthreads(); /* the previous tile's reads of `tile` are done */
        for (int i = ty; i < na; i += 8)
            for (int j = tx; j < nb; j += 32) tile[i][j] = x[xo + i * a.xa + j];
        __syncthreads();
        for (int j = ty; j < nb; j += 8)
            for (int i = tx; i < na; i += 32) y[yo + j * a.yb + i] = tile[i][j];
    }
}

/* Launch the tiled transpose over axes A (ys 1) and B (xs 1) of the merged a. */
static cudaError_t copy_tiled(void *y, const void *x, const cp_args &a, int A, int B, size_t es, cudaStream_t stream) {
    tp_args t;
    memset(&t, 0, sizeof t);
    t.da = a.d[A], t.db = a.d[B], t.xa = a.xs[A], t.yb = a.ys[B];
    for (int k = 0; k < a.rank; k++) {
        if (k == A || k == B) continue;
        t.d[t.nrest] = a.d[k], t.xs[t.nrest] = a.xs[k], t.ys[t.nrest] = a.ys[k];
        t.nrest++;
    }
    int td = es <= 2 ? 64 : 32;
    t.ta = (t.da + td - 1) / td;
    t.tb = (t.db + td - 1) / td;
    t.ntiles = a.n / (t.da * t.db) * t.ta * t.tb;
    unsigned g = (unsigned)(t.ntiles < KC_MAX_BLOCKS ? t.ntiles : KC_MAX_BLOCKS);
    dim3 blk(32, 8);
    switch (es) {
    case 1: kc_launch(k_copy_tile<uint8_t, 64>, dim3(g), blk, 0, stream, (uint8_t *)y, (const uint8_t *)x, t); break;
    case 2: kc_launch(k_copy_tile<uint16_t, 64>, dim3(g), blk, 0, stream, (uint16_t *)y, (const uint16_t *)x, t); break;
    case 4: kc_launch(k_copy_tile<uint32_t, 32>, dim3(g), blk, 0, stream, (uint32_t *)y, (const uint32_t *)x, t); break;
    default: kc_launch(k_copy_tile<uint2, 32>, dim3(g), blk, 0, stream, (uint2 *)y, (const uint2 *)x, t); break;
    }
    return cudaGetLastError();
}

template <typename E> static void copy_launch(void *y, const void *x, const cp_args &a, cudaStream_t stream) {
    unsigned g = kc_blocks(a.n, KC_THREADS);
    if (a.n <= INT32_MAX) kc_launch(k_copy<E, uint32_t>, dim3(g), dim3(KC_THREADS), 0, stream, (E *)y, (const E *)x, a);
    else kc_launch(k_copy<E, int64_t>, dim3(g), dim3(KC_THREADS), 0, stream, (E *)y, (const E *)x, a);
}

/* How copy_nd moves one merged copy. */
enum { CP_NONE, CP_MEMCPY, CP_TILE, CP_PLAIN };

/* Merge the axes of a copy (innermost first in a), and say how to move it:
 * nothing, one memcpy, a tiled transpose over axes *A and *B, or the plain
 * kernel (then a unit-stride axis, if there is one, is moved innermost so
 * that rows widen; copies do not depend on the order of the axes). */
static int copy_prep(cp_args &a, const int64_t *ystride, const int64_t *xstride, const int64_t *dims, int rank,
                     int *A, int *B) {
    memset(&a, 0, sizeof a);
    a.n = 1;
    for (int k = rank - 1; k >= 0; k--) {
        int64_t d = dims[k];
        if (d == 0) return CP_NONE;
        a.n *= d;
        if (d == 1) continue;
        int m = a.rank - 1;
        if (m >= 0 && xstride[k] == a.xs[m] * a.d[m] && ystride[k] == a.ys[m] * a.d[m]) {
            a.d[m] *= d;
        } else {
            a.d[a.rank] = d;
            a.xs[a.rank] = xstride[k];
            a.ys[a.rank] = ystride[k];
            a.rank++;
        }
    }
    if (a.rank == 0 || (a.rank == 1 && a.xs[0] == 1 && a.ys[0] == 1)) return CP_MEMCPY;
    /* transpose: y's contiguous axis A differs from x's contiguous axis B, both long enough for tiles */
    *A = -1, *B = -1;
    for (int k = 0; k < a.rank; k++) {
        if (*A < 0 && a.ys[k] == 1) *A = k;
        if (*B < 0 && a.xs[k] == 1) *B = k;
    }
    if (*A >= 0 && *B >= 0 && *A != *B && a.d[*A] >= 8 && a.d[*B] >= 8) return CP_TILE;
    /* a channel slice of an NHWC tensor merges to [pixels (stride C), channels (stride 1)]:
     * the unit-stride axis goes innermost */
    if (!(a.xs[0] == 1 && a.ys[0] == 1))
        for (int k = 1; k < a.rank; k++)
            if (a.xs[k] == 1 && a.ys[k] == 1) {
                int64_t t;
                t = a.d[0], a.d[0] = a.d[k], a.d[k] = t;
                t = a.xs[0], a.xs[0] = a.xs[k], a.xs[k] = t;
                t = a.ys[0], a.ys[0] = a.ys[k], a.ys[k] = t;
                break;
            }
    return CP_PLAIN;
}

/* The widest word (16, 8, 4 or 2 bytes, at least es) a plain copy may move per thread. */
static size_t copy_word(const cp_args &a, const void *y, const void *x, size_t es) {
    if (a.xs[0] != 1 || a.ys[0] != 1) return es;
    for (size_t target = 16; target > es; target /= 2) {
        int64_t f = (int64_t)(target / es);
        bool ok = a.d[0] % f == 0 && kc_aligned(x, target) && kc_aligned(y, target);
        for (int k = 1; ok && k < a.rank; k++) ok = a.xs[k] % f == 0 && a.ys[k] % f == 0;
        if (ok) return target;
    }
    return es;
}

/* Rewrite a plain copy of es-byte elements as one of `word`-byte words (copy_word said it may). */
static void copy_widen(cp_args &a, size_t es, size_t word) {
    if (word <= es) return;
    int64_t f = (int64_t)(word / es);
    a.d[0] /= f;
    for (int k = 1; k < a.rank; k++) a.xs[k] /= f, a.ys[k] /= f;
    a.n /= f;
}

/* kc_copy_nd after validation: collapse, then tile, widen or copy plainly. */
static cudaError_t copy_nd(void *y, const int64_t *ystride, const void *x, const int64_t *xstride, const int64_t *dims,
                           int rank, size_t es, cudaStream_t stream) {
    if (rank < 0 || rank > KC_MAX_RANK || (es != 1 && es != 2 && es != 4 && es != 8)) return cudaErrorInvalidValue;
    for (int k = 0; k < rank; k++)
        if (dims[k] < 0) return cudaErrorInvalidValue;
    cp_args a;
    int A, B;
    switch (copy_prep(a, ystride, xstride, dims, rank, &A, &B)) {
    case CP_NONE: return cudaSuccess;
    case CP_MEMCPY: {
        cudaError_t e = cudaMemcpyAsync(y, x, (size_t)a.n * es, cudaMemcpyDeviceToDevice, stream);
        return e != cudaSuccess ? e : cudaGetLastError();
    }
    case CP_TILE: return copy_tiled(y, x, a, A, B, es, stream);
    default: break;
    }
    size_t w = copy_word(a, y, x, es);
    copy_widen(a, es, w);
    switch (w) {
    case 1: copy_launch<uint8_t>(y, x, a, stream); break;
    case 2: copy_launch<uint16_t>(y, x, a, stream); break;
    case 4: copy_launch<uint32_t>(y, x, a, stream); break;
    case 8: copy_launch<uint2>(y, x, a, stream); break;
    default: copy_launch<uint4>(y, x, a, stream); break;
    }
    return cudaGetLastError();
}

extern "C" cudaError_t kc_copy_nd(void *y, const int64_t *ystride, const void *x, const int64_t *xstride,
                                  const int64_t *dims, int rank, size_t elem_size, cudaStream_t stream) {
    if (rank > 0 && (!ystride || !xstride || !dims)) return cudaErrorInvalidValue;
    return copy_nd(y, ystride, x, xstride, dims, rank, elem_size, stream);
}

/* Several plain copies in one launch (a Concat's or Split's parts): each
 * copy gets its own range of blocks; block b finds its copy among the
 * first blocks b0[]. */
typedef struct cpm_args {
    cp_args a[KC_COPY_MULTI];
    const void *x[KC_COPY_MULTI];
    void *y[KC_COPY_MULTI];
    unsigned b0[KC_COPY_MULTI + 1];
    int n;
} cpm_args;

template <typename E> __global__ void k_copy_multi(const cpm_args m) {
    kc_pdl_wait();
    int c = 0;
    while (c + 1 < m.n && blockIdx.x >= m.b0[c + 1]) c++;
    const cp_args &a = m.a[c];
    const E *x = (const E *)m.x[c];
    E *y = (E *)m.y[c];
    uint32_t n = (uint32_t)a.n, nth = (m.b0[c + 1] - m.b0[c]) * blockDim.x;
    for (uint32_t i = (blockIdx.x - m.b0[c]) * blockDim.x + threadIdx.x; i < n; i += nth) {
        uint32_t r = i;
        int64_t xo = 0, yo = 0;
#pragma unroll
        for (int k = 0; k < KC_MAX_RANK; k++) {
            if (k < a.rank) {
                uint32_t q = r;
                if (k < a.rank - 1) {
                    uint32_t d = (uint32_t)a.d[k];
                    q = r % d;
                    r /= d;
                }
                xo += (int64_t)q * a.xs[k];
                yo += (int64_t)q * a.ys[k];
            }
        }
        y[yo] = x[xo];
    }
}

extern "C" cudaError_t kc_copy_multi(const kc_copy_desc *c, int n, size_t es, cudaStream_t stream) {
    if (n < 0 || (n > 0 && !c) || (es != 1 && es != 2 && es != 4 && es != 8)) return cudaErrorInvalidValue;
    for (int i = 0; i < n; i++) {
        if (c[i].rank < 0 || c[i].rank > KC_MAX_RANK || (c[i].rank > 0 && (!c[i].ys || !c[i].xs || !c[i].dims)))
            return cudaErrorInvalidValue;
        for (int k = 0; k < c[i].rank; k++)
            if (c[i].dims[k] < 0) return cudaErrorInvalidValue;
    }
    /* the plain copies go together (up to KC_COPY_MULTI a launch, 32-bit
     * indices); the others, and any left over, one by one */
    cpm_args m;
    memset(&m, 0, sizeof m);
    size_t word = 16;
    int idx[KC_COPY_MULTI];
    for (int i = 0; i < n; i++) {
        cp_args a;
        int A, B, mode = copy_prep(a, c[i].ys, c[i].xs, c[i].dims, c[i].rank, &A, &B);
        if (mode == CP_NONE) continue;
        if (mode == CP_PLAIN && m.n < KC_COPY_MULTI && a.n <= INT32_MAX) {
            size_t w = copy_word(a, c[i].y, c[i].x, es);
            if (w < word) word = w;
            m.a[m.n] = a, m.x[m.n] = c[i].x, m.y[m.n] = c[i].y, idx[m.n] = i;
            m.n++;
            continue;
        }
        cudaError_t e = copy_nd(c[i].y, c[i].ys, c[i].x, c[i].xs, c[i].dims, c[i].rank, es, stream);
        if (e != cudaSuccess) return e;
    }
    if (m.n == 1) {
        const kc_copy_desc *d = &c[idx[0]];
        return copy_nd(d->y, d->ys, d->x, d->xs, d->dims, d->rank, es, stream);
    }
    if (m.n == 0) return cudaSuccess;
    int64_t total = 0;
    for (int i = 0; i < m.n; i++) {
        copy_widen(m.a[i], es, word);
        total += m.a[i].n;
    }
    /* blocks in proportion to the work, KC_MAX_BLOCKS in all at most */
    int64_t want = (total + KC_THREADS - 1) / KC_THREADS, scale = want > KC_MAX_BLOCKS ? want / KC_MAX_BLOCKS + 1 : 1;
    unsigned b = 0;
    for (int i = 0; i < m.n; i++) {
        m.b0[i] = b;
        int64_t nb = (m.a[i].n + (int64_t)KC_THREADS * scale - 1) / ((int64_t)KC_THREADS * scale);
        b += (unsigned)(nb < 1 ? 1 : nb);
    }
    m.b0[m.n] = b;
    switch (word) {
    case 1: kc_launch(k_copy_multi<uint8_t>, dim3(b), dim3(KC_THREADS), 0, stream, m); break;
    case 2: kc_launch(k_copy_multi<uint16_t>, dim3(b), dim3(KC_THREADS), 0, stream, m); break;
    case 4: kc_launch(k_copy_multi<uint32_t>, dim3(b), dim3(KC_THREADS), 0, stream, m); break;
    case 8: kc_launch(k_copy_multi<uint2>, dim3(b), dim3(KC_THREADS), 0, stream, m); break;
    default: kc_launch(k_copy_multi<uint4>, dim3(b), dim3(KC_THREADS), 0, stream, m); break;
    }
    return cudaGetLastError();
}

extern "C" cudaError_t kc_heads_split(void *y, const void *x, int64_t b, int64_t s, int64_t h, int64_t d, int64_t ld,
                                      int seq_first, kc_dtype t, cudaStream_t stream) {
    /* y [B, H, S, D] dense <- x rows (b, s) at row b*S+s (or s*B+b), head h at column h*D */
    int64_t dims[4] = {b, h, s, d}, ys[4] = {h * s * d, s * d, d, 1};
    int64_t xs[4] = {seq_first ? ld : s * ld, d, seq_first ? b * ld : ld, 1};
    return copy_nd(y, ys, x, xs, dims, 4, kc_dtype_size(t), stream);
}

extern "C" cudaError_t kc_heads_merge(void *y, const void *x, int64_t b, int64_t s, int64_t h, int64_t d,
                                      int seq_first, kc_dtype t, cudaStream_t stream) {
    /* y [B, S, H*D] (or [S, B, H*D]) dense <- x [B, H, S, D] dense, in y's order */
    int64_t hd = h * d;
    if (!seq_first) {
        int64_t dims[4] = {b, s, h, d}, ys[4] = {s * hd, hd, d, 1}, xs[4] = {h * s * d, d, s * d, 1};
        return copy_nd(y, ys, x, xs, dims, 4, kc_dtype_size(t), stream);
    }
    int64_t dims[4] = {s, b, h, d}, ys[4] = {b * hd, hd, d, 1}, xs[4] = {d, h * s * d, s * d, 1};
    return copy_nd(y, ys, x, xs, dims, 4, kc_dtype_size(t), stream);
}

/* ---- gather -------------------------------------------------------------------------- */

template <typename E>
__global__ void k_gather(E *y, const E *x, const int64_t *idx, int64_t axis, int64_t n_idx, int64_t inner, int64_t n) {
    kc_pdl_wait();
    int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, nth = (int64_t)gridDim.x * blockDim.x;
    for (int64_t t = tid; t < n; t += nth) {
        int64_t i = t % inner, r = t / inner, j = r % n_idx, o = r / n_idx, k = idx[j];
        if (k < 0) k += axis;
        k = k < 0 ? 0 : k >= axis ? axis - 1 : k;
        y[t] = x[(o * axis + k) * inner + i];
    }
}

extern "C" cudaError_t kc_gather(void *y, const void *x, const int64_t *idx, int64_t outer, int64_t axis,
                                 int64_t n_idx, int64_t inner, size_t elem_size, cudaStream_t stream) {
    size_t es = elem_size;
    if (outer < 0 || axis < 0 || n_idx < 0 || inner < 0 || (es != 1 && es != 2 && es != 4 && es != 8))
        return cudaErrorInvalidValue;
    if (outer == 0 || n_idx == 0 || inner == 0) return cudaSuccess;
    if (axis == 0) return cudaErrorInvalidValue;
    for (size_t target = 16; target > es; target /= 2) {
        int64_t f = (int64_t)(target / es);
        if (inner % f == 0 && kc_aligned(x, target) && kc_aligned(y, target)) {
            inner /= f;
            es = target;
            break;
        }
    }
    int64_t n = outer * n_idx * inner;
    unsigned g = kc_blocks(n, KC_THREADS);
    switch (es) {
    case 1: kc_launch(k_gather<uint8_t>, dim3(g), dim3(KC_THREADS), 0, stream, (uint8_t *)y, (const uint8_t *)x, idx, axis, n_idx, inner, n); break;
    case 2: kc_launch(k_gather<uint16_t>, dim3(g), dim3(KC_THREADS), 0, stream, (uint16_t *)y, (const uint16_t *)x, idx, axis, n_idx, inner, n); break;
    case 4: kc_launch(k_gather<uint32_t>, dim3(g), dim3(KC_THREADS), 0, stream, (uint32_t *)y, (const uint32_t *)x, idx, axis, n_idx, inner, n); break;
    case 8: kc_launch(k_gather<uint2>, dim3(g), dim3(KC_THREADS), 0, stream, (uint2 *)y, (const uint2 *)x, idx, axis, n_idx, inner, n); break;
    default: kc_launch(k_gather<uint4>, dim3(g), dim3(KC_THREADS), 0, stream, (uint4 *)y, (const uint4 *)x, idx, axis, n_idx, inner, n); break;
    }
    return cudaGetLastError();
}

/* ---- bias + residual + activation ------------------------------------------------------ */

typedef struct ba_args {
    void *y;
    const void *x, *bias, *z;
    int64_t channels, inner, n;
    int act;
    float alpha, beta;
} ba_args;

template <typename T> __global__ void k_bias_act(const ba_args a, int vec) {
    kc_pdl_wait();
    int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, nth = (int64_t)gridDim.x * blockDim.x, head = 0;
    T *y = (T *)a.y;
    const T *x = (const T *)a.x, *bias = (const T *)a.bias, *z = (const T *)a.z;
    if (vec) {
        /* 8 elements share one channel (inner % 8 == 0) or are channels c..c+7 (inner == 1) */
        int64_t nv = a.n / 8;
        for (int64_t i = tid; i < nv; i += nth) {
            int64_t base = 8 * i;
            float v[8], w[8];
            kc_ld8(x + base, v);
            if (bias) {
                if (a.inner == 1) {
                    kc_ld8(bias + base % a.channels, w);
                } else {
                    float b = kc_ld(bias + (base / a.inner) % a.channels);
#pragma unroll
                    for (int e = 0; e < 8; e++) w[e] = b;
                }
#pragma unroll
                for (int e = 0; e < 8; e++) v[e] += w[e];
            }
            if (z) {
                kc_ld8(z + base, w);
#pragma unroll
                for (int e = 0; e < 8; e++) v[e] += w[e];
            }
#pragma unroll
            for (int e = 0; e < 8; e++) v[e] = kc_act(a.act, v[e], a.alpha, a.beta);
            kc_st8(y + base, v);
        }
        head = nv * 8;
    }
    for (int64_t i = head + tid; i < a.n; i += nth) {
        float v = kc_ld(x + i);
        if (bias) v += kc_ld(bias + (i / a.inner) % a.channels);
        if (z) v += kc_ld(z + i);
        kc_st(y + i, kc_act(a.act, v, a.alpha, a.beta));
    }
}

extern "C" cudaError_t kc_bias_act(void *y, const void *x, const void *bias, const void *z, int64_t outer,
                                   int64_t channels, int64_t inner, int act, float alpha, float beta, kc_dtype t,
                                   cudaStream_t stream) {
    if (outer < 0 || channels < 0 || inner < 0) return cudaErrorInvalidValue;
    ba_args a = {y, x, bias, z, channels, inner, outer * channels * inner, act, alpha, beta};
    if (a.n == 0) return cudaSuccess;
    int vec = kc_aligned(x, 16) && kc_aligned(y, 16) && (!z || kc_aligned(z, 16));
    if (vec && bias)
        vec = inner % 8 == 0 || (inner == 1 && channels % 8 == 0 && kc_aligned(bias, 16));
    unsigned g = kc_blocks(vec ? a.n / 8 + a.n % 8 : a.n, KC_THREADS);
    if (t == KC_F16) kc_launch(k_bias_act<__half>, dim3(g), dim3(KC_THREADS), 0, stream, a, vec);
    else kc_launch(k_bias_act<float>, dim3(g), dim3(KC_THREADS), 0, stream, a, vec);
    return cudaGetLastError();
}

/* kc_bias_act over outer-strided views: 8 consecutive elements of a row
 * (channels * inner) per thread when rows, strides and pointers allow. */
typedef struct bal_args {
    void *y;
    const void *x, *bias, *z;
    int64_t ldy, ldx, ldz, row, channels, inner, n;
    int act;
    float alpha, beta;
} bal_args;

template <typename T> __global__ void k_bias_act_ld(const bal_args a, int vec) {
    kc_pdl_wait();
    int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, nth = (int64_t)gridDim.x * blockDim.x;
    T *y = (T *)a.y;
    const T *x = (const T *)a.x, *bias = (const T *)a.bias, *z = (const T *)a.z;
    if (vec) {
        int64_t nv = a.n / 8;
        for (int64_t i = tid; i < nv; i += nth) {
            int64_t e0 = 8 * i, o = e0 / a.row, r = e0 - o * a.row;
            float v[8], w[8];
            kc_ld8(x + o * a.ldx + r, v);
            if (bias) {
                if (a.inner == 1) {
                    kc_ld8(bias + r, w);
                } else {
                    float b = kc_ld(bias + r / a.inner);
#pragma unroll
                    for (int e = 0; e < 8; e++) w[e] = b;
                }
#pragma unroll
                for (int e = 0; e < 8; e++) v[e] += w[e];
            }
            if (z) {
                kc_ld8(z + o * a.ldz + r, w);
#pragma unroll
                for (int e = 0; e < 8; e++) v[e] += w[e];
            }
#pragma unroll
            for (int e = 0; e < 8; e++) v[e] = kc_act(a.act, v[e], a.alpha, a.beta);
            kc_st8(y + o * a.ldy + r, v);
        }
        return;
    }
    for (int64_t i = tid; i < a.n; i += nth) {
        int64_t o = i / a.row, r = i - o * a.row;
        float v = kc_ld(x + o * a.ldx + r);
        if (bias) v += kc_ld(bias + r / a.inner);
        if (z) v += kc_ld(z + o * a.ldz + r);
        kc_st(y + o * a.ldy + r, kc_act(a.act, v, a.alpha, a.beta));
    }
}

extern "C" cudaError_t kc_bias_act_ld(void *y, int64_t ldy, const void *x, int64_t ldx, const void *bias,
                                      const void *z, int64_t ldz, int64_t outer, int64_t channels, int64_t inner,
                                      int act, float alpha, float beta, kc_dtype t, cudaStream_t stream) {
    if (outer < 0 || channels < 0 || inner < 0) return cudaErrorInvalidValue;
    int64_t row = channels * inner;
    if (ldy < row || ldx < row || (z && ldz < row)) return cudaErrorInvalidValue;
    bal_args a = {y, x, bias, z, ldy, ldx, z ? ldz : row, row, channels, inner, outer * row, act, alpha, beta};
    if (a.n == 0) return cudaSuccess;
    /* whole 8-element groups inside a row (row % 8 == 0), each 16-byte aligned in every tensor */
    int vec = row % 8 == 0 && ldy % 8 == 0 && ldx % 8 == 0 && (!z || ldz % 8 == 0) && kc_aligned(x, 16) &&
              kc_aligned(y, 16) && (!z || kc_aligned(z, 16));
    if (vec && bias) vec = inner % 8 == 0 || (inner == 1 && kc_aligned(bias, 16));
    unsigned g = kc_blocks(vec ? a.n / 8 : a.n, KC_THREADS);
    if (t == KC_F16) kc_launch(k_bias_act_ld<__half>, dim3(g), dim3(KC_THREADS), 0, stream, a, vec);
    else kc_launch(k_bias_act_ld<float>, dim3(g), dim3(KC_THREADS), 0, stream, a, vec);
    return cudaGetLastError();
}

/* ---- fused elementwise programs -------------------------------------------------------- */

/* The program with y's dims collapsed, innermost first; st[j][k] is input
 * j's stride along collapsed dim k (0 beyond rank). */
typedef struct fe_args {
    const void *in[KC_MAX_INPUTS];
    void *y;
    int64_t n;
    int n_steps, rank, n_in;
    int op[KC_MAX_STEPS], arg[KC_MAX_STEPS];
    float imm[KC_MAX_STEPS];
    int64_t d[KC_MAX_RANK];
    int64_t st[KC_MAX_INPUTS][KC_MAX_RANK];
    int64_t yst[KC_MAX_RANK]; /* y's strides over the collapsed dims (dense: their running products) */
} fe_args;

#define FE_CASE(code, expr)                                                                                            \
    case code:                                                                                                         \
        _Pragma("unroll") for (int e = 0; e < N; e++) {                                                                \
            float x = v[e], a = o[e];                                                                                  \
            (void)a;                                                                                                   \
            v[e] = (expr);                                                                                             \
        }                                                                                                              \
        break;

/* v[e] = op(v[e], o[e]) for e < N (kl_fe_op, src/ops/kiln_transformer.h). */
template <int N> static __device__ __forceinline__ void fe_step(int op, float *v, const float *o) {
    switch (op) {
        FE_CASE(0, x + a)
        FE_CASE(1, x - a)
        FE_CASE(2, a - x)
        FE_CASE(3, x * a)
        FE_CASE(4, __fdiv_rn(x, a))
        FE_CASE(5, __fdiv_rn(a, x))
        FE_CASE(6, kc_pow(x, a))
        FE_CASE(7, kc_pow(a, x))
        FE_CASE(16, x < 0 ? 0.0f : x)
        FE_CASE(17, kc_sigmoid(x))
        FE_CASE(18, kc_tanh(x))
        FE_CASE(19, __expf(x))
        FE_CASE(20, kc_log(x))
        FE_CASE(21, erff(x))
        FE_CASE(22, __fsqrt_rn(x))
        FE_CASE(23, -x)
        FE_CASE(24, fabsf(x))
        FE_CASE(25, __frcp_rn(x))
        FE_CASE(26, x < 0 ? a * x : x)
        FE_CASE(27, kc_softplus(x))
    default: break;
    }
}

/* Any layout: per element, the coordinates over the collapsed dims. I is
 * the index type: 32-bit when every offset fits (64-bit division costs
 * several times as much on the GPU). */
template <typename T, typename I> __global__ void k_fe_gen(const fe_args a) {
    kc_pdl_wait();
    I tid = (I)blockIdx.x * blockDim.x + threadIdx.x, nth = (I)gridDim.x * blockDim.x, n = (I)a.n;
    for (I i = tid; i < n; i += nth) {
        I c[KC_MAX_RANK], r = i, off = 0;
#pragma unroll
        for (int k = 0; k < KC_MAX_RANK; k++) {
            c[k] = 0;
            if (k < a.rank) {
                I d = (I)a.d[k];
                c[k] = r % d;
                r /= d;
            }
        }
#pragma unroll
        for (int k = 0; k < KC_MAX_RANK; k++) off += c[k] * (I)a.st[0][k];
        float v = kc_ld((const T *)a.in[0] + off), o;
        for (int s = 0; s < a.n_steps; s++) {
            int g = a.arg[s];
            if (g >= 0) {
                off = 0;
#pragma unroll
                for (int k = 0; k < KC_MAX_RANK; k++) off += c[k] * (I)a.st[g][k];
                o = kc_ld((const T *)a.in[g] + off);
            } else {
                o = g == -1 ? a.imm[s] : v;
            }
            fe_step<1>(a.op[s], &v, &o);
        }
        I yo = 0;
#pragma unroll
        for (int k = 0; k < KC_MAX_RANK; k++) yo += c[k] * (I)a.yst[k];
        kc_st((T *)a.y + yo, v);
    }
}

/* Broadcasting over the outer collapsed dims, the innermost one a multiple
 * of 8 with every input dense (stride 1, 16-byte aligned rows) or constant
 * along it: 8 elements per thread, the coordinates once per 8 (an SE
 * block's x * s[N,1,1,C] in NHWC, a position embedding [1,S,E] added over
 * the batch). */
template <typename T, typename I> __global__ void k_fe_bvec(const fe_args a) {
    kc_pdl_wait();
    I tid = (I)blockIdx.x * blockDim.x + threadIdx.x, nth = (I)gridDim.x * blockDim.x, ng = (I)(a.n / 8);
    I d0 = (I)a.d[0];
    for (I gi = tid; gi < ng; gi += nth) {
        I i = gi * 8, c0 = i % d0, r = i / d0;
        I off[KC_MAX_INPUTS], yo = c0;
#pragma unroll
        for (int j = 0; j < KC_MAX_INPUTS; j++) off[j] = j < a.n_in ? c0 * (I)a.st[j][0] : 0;
#pragma unroll
        for (int k = 1; k < KC_MAX_RANK; k++) {
            if (k < a.rank) {
                I d = (I)a.d[k], ck = r % d;
                r /= d;
                yo += ck * (I)a.yst[k];
#pragma unroll
                for (int j = 0; j < KC_MAX_INPUTS; j++)
                    if (j < a.n_in) off[j] += ck * (I)a.st[j][k];
            }
        }
        float v[8], o[8];
        if (a.st[0][0]) {
            kc_ld8((const T *)a.in[0] + off[0], v);
        } else {
            float s0 = kc_ld((const T *)a.in[0] + off[0]);
#pragma unroll
            for (int e = 0; e < 8; e++) v[e] = s0;
        }
        for (int s = 0; s < a.n_steps; s++) {
            int g = a.arg[s];
            if (g >= 0 && a.st[g][0]) {
                kc_ld8((const T *)a.in[g] + off[g], o);
            } else {
                float s0 = g >= 0 ? kc_ld((const T *)a.in[g] + off[g]) : a.imm[s];
#pragma unroll
                for (int e = 0; e < 8; e++) o[e] = g == -2 ? v[e] : s0;
            }
            fe_step<8>(a.op[s], v, o);
        }
        kc_st8((T *)a.y + yo, v);
    }
}

/* Dense or broadcast-scalar inputs (collapsed rank <= 1, strides 0 or 1):
 * 8 elements per thread, then the tail one by one. */
template <typename T> __global__ void k_fe_vec(const fe_args a) {
    kc_pdl_wait();
    int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, nth = (int64_t)gridDim.x * blockDim.x;
    int64_t nv = a.n / 8;
    for (int64_t i = tid; i < nv; i += nth) {
        int64_t base = 8 * i;
        float v[8], o[8];
        if (a.st[0][0]) {
            kc_ld8((const T *)a.in[0] + base, v);
        } else {
            float s0 = kc_ld((const T *)a.in[0]);
#pragma unroll
            for (int e = 0; e < 8; e++) v[e] = s0;
        }
        for (int s = 0; s < a.n_steps; s++) {
            int g = a.arg[s];
            if (g >= 0 && a.st[g][0]) {
                kc_ld8((const T *)a.in[g] + base, o);
            } else {
                float s0 = g >= 0 ? kc_ld((const T *)a.in[g]) : a.imm[s];
#pragma unroll
                for (int e = 0; e < 8; e++) o[e] = g == -2 ? v[e] : s0;
            }
            fe_step<8>(a.op[s], v, o);
        }
        kc_st8((T *)a.y + base, v);
    }
    int64_t i = nv * 8 + tid;
    if (i < a.n) {
        float v = kc_ld((const T *)a.in[0] + i * a.st[0][0]), o;
        for (int s = 0; s < a.n_steps; s++) {
            int g = a.arg[s];
            o = g >= 0 ? kc_ld((const T *)a.in[g] + i * a.st[g][0]) : g == -1 ? a.imm[s] : v;
            fe_step<1>(a.op[s], &v, &o);
        }
        kc_st((T *)a.y + i, v);
    }
}

extern "C" cudaError_t kc_fe(void *y, const void *const *inputs, const kc_fe_program *p, kc_dtype t,
                             cudaStream_t stream) {
    if (!p || !inputs || p->n_steps < 1 || p->n_steps > KC_MAX_STEPS || p->n_inputs < 1 ||
        p->n_inputs > KC_MAX_INPUTS || p->rank < 0 || p->rank > KC_MAX_RANK)
        return cudaErrorInvalidValue;
    fe_args a;
    memset(&a, 0, sizeof a);
    a.y = y;
    a.n_steps = p->n_steps;
    for (int s = 0; s < p->n_steps; s++) {
        if (p->arg[s] < -2 || p->arg[s] >= p->n_inputs) return cudaErrorInvalidValue;
        a.op[s] = p->op[s];
        a.arg[s] = p->arg[s];
        a.imm[s] = p->imm[s];
    }
    for (int j = 0; j < p->n_inputs; j++) a.in[j] = inputs[j];
    a.n_in = p->n_inputs;
    /* collapse y's dims (innermost first): drop 1s, merge where every input's strides (and a strided y's)
     * chain */
    a.n = 1;
    int64_t yd[KC_MAX_RANK], run = 1;
    for (int k = p->rank - 1; k >= 0; k--) { /* y's strides: its own, or dense */
        yd[k] = p->y_strided ? p->ystride[k] : run;
        run *= p->dims[k];
    }
    for (int k = p->rank - 1; k >= 0; k--) {
        int64_t d = p->dims[k];
        if (d < 0) return cudaErrorInvalidValue;
        if (d == 0) return cudaSuccess;
        a.n *= d;
        if (d == 1) continue;
        int m = a.rank - 1;
        bool merge = m >= 0 && yd[k] == a.yst[m] * a.d[m];
        for (int j = 0; merge && j < p->n_inputs; j++) merge = p->stride[j][k] == a.st[j][m] * a.d[m];
        if (merge) {
            a.d[m] *= d;
        } else {
            for (int j = 0; j < p->n_inputs; j++) a.st[j][a.rank] = p->stride[j][k];
            a.yst[a.rank] = yd[k];
            a.d[a.rank++] = d;
        }
    }
    /* y dense along the innermost collapsed dim, and its other strides in whole 8-element groups */
    bool ydense = a.rank == 0 || a.yst[0] == 1;
    bool vec = a.rank <= 1 && ydense && kc_aligned(y, 16);
    for (int j = 0; vec && j < p->n_inputs; j++)
        vec = a.st[j][0] == 0 || (a.st[j][0] == 1 && kc_aligned(inputs[j], 16));
    /* 32-bit indices when n and every input's largest offset fit */
    bool small = a.n <= (int64_t)UINT32_MAX;
    for (int j = 0; small && j < p->n_inputs; j++) {
        int64_t top = 0;
        for (int k = 0; k < a.rank; k++) top += (a.d[k] - 1) * (a.st[j][k] < 0 ? -a.st[j][k] : a.st[j][k]);
        small = top <= (int64_t)UINT32_MAX;
        for (int k = 0; k < a.rank; k++) small = small && a.st[j][k] >= 0;
    }
    int64_t ytop = 0;
    for (int k = 0; k < a.rank; k++) {
        small = small && a.yst[k] >= 0;
        ytop += (a.d[k] - 1) * (a.yst[k] < 0 ? -a.yst[k] : a.yst[k]);
    }
    small = small && ytop <= (int64_t)UINT32_MAX;
    bool bvec = !vec && small && ydense && a.rank >= 2 && a.d[0] % 8 == 0 && kc_aligned(y, 16);
    for (int k = 1; bvec && k < a.rank; k++) bvec = a.yst[k] % 8 == 0;
    for (int j = 0; bvec && j < p->n_inputs; j++) {
        if (a.st[j][0] == 0) continue;
        bvec = a.st[j][0] == 1 && kc_aligned(inputs[j], 16);
        for (int k = 1; bvec && k < a.rank; k++) bvec = a.st[j][k] % 8 == 0;
    }
    if (vec) {
        unsigned g = kc_blocks(a.n / 8 > a.n % 8 ? a.n / 8 : a.n % 8, KC_THREADS);
        if (t == KC_F16) kc_launch(k_fe_vec<__half>, dim3(g), dim3(KC_THREADS), 0, stream, a);
        else kc_launch(k_fe_vec<float>, dim3(g), dim3(KC_THREADS), 0, stream, a);
    } else if (bvec) {
        unsigned g = kc_blocks(a.n / 8, KC_THREADS);
        if (t == KC_F16) kc_launch(k_fe_bvec<__half, uint32_t>, dim3(g), dim3(KC_THREADS), 0, stream, a);
        else kc_launch(k_fe_bvec<float, uint32_t>, dim3(g), dim3(KC_THREADS), 0, stream, a);
    } else if (small) {
        unsigned g = kc_blocks(a.n, KC_THREADS);
        if (t == KC_F16) kc_launch(k_fe_gen<__half, uint32_t>, dim3(g), dim3(KC_THREADS), 0, stream, a);
        else kc_launch(k_fe_gen<float, uint32_t>, dim3(g), dim3(KC_THREADS), 0, stream, a);
    } else {
        unsigned g = kc_blocks(a.n, KC_THREADS);
        if (t == KC_F16) kc_launch(k_fe_gen<__half, int64_t>, dim3(g), dim3(KC_THREADS), 0, stream, a);
        else kc_launch(k_fe_gen<float, int64_t>, dim3(g), dim3(KC_THREADS), 0, stream, a);
    }
    return cudaGetLastError();
}

/* ---- einsum ---------------------------------------------------------------------------- */

typedef struct es_args {
    const void *x0, *x1;
    void *y;
    int n_out, n_sum;
    int64_t n, outer_sum; /* y's elements; summed combinations outside the innermost summed label */
    int64_t size[KC_EINSUM_LABELS], st0[KC_EINSUM_LABELS], st1[KC_EINSUM_LABELS];
} es_args;

/* One thread per y element: its coordinates give both operands' bases, then
 * the summed labels (the last one innermost, the others by a linear index). */
template <typename T, typename I> __global__ void k_einsum(const es_args a) {
    kc_pdl_wait();
    I tid = (I)blockIdx.x * blockDim.x + threadIdx.x, nth = (I)gridDim.x * blockDim.x, n = (I)a.n;
    const T *x0 = (const T *)a.x0, *x1 = (const T *)a.x1;
    int last = a.n_out + a.n_sum - 1;
    I dl = a.n_sum ? (I)a.size[last] : 1, s0l = a.n_sum ? (I)a.st0[last] : 0, s1l = a.n_sum ? (I)a.st1[last] : 0;
    for (I i = tid; i < n; i += nth) {
        I r = i, b0 = 0, b1 = 0;
        for (int l = a.n_out - 1; l >= 0; l--) {
            I d = (I)a.size[l], c = r % d;
            r /= d;
            b0 += c * (I)a.st0[l];
            b1 += c * (I)a.st1[l];
        }
        float acc = 0.f;
        for (I o = 0; o < (I)a.outer_sum; o++) {
            I q = o, o0 = b0, o1 = b1;
            for (int l = last - 1; l >= a.n_out; l--) {
                I d = (I)a.size[l], c = q % d;
                q /= d;
                o0 += c * (I)a.st0[l];
                o1 += c * (I)a.st1[l];
            }
            if (x1) {
                for (I j = 0; j < dl; j++) acc += kc_ld(x0 + o0 + j * s0l) * kc_ld(x1 + o1 + j * s1l);
            } else {
                for (I j = 0; j < dl; j++) acc += kc_ld(x0 + o0 + j * s0l);
            }
        }
        kc_st((T *)a.y + i, acc);
    }
}

/* Two-operand einsums whose summed labels are in both operands run as a
 * batched GEMM over label groups: batch (y, x0 and x1), M (y and x0 only),
 * N (y and x1 only), K (summed).  Each group may hold several labels of any
 * strides: a row's offsets are decomposed once per block into shared
 * memory, so the tiles load with plain adds.  64x64 output tiles, K in
 * steps of 16, 4x4 outputs per thread, float32 accumulation.  SAM's
 * relative-position einsums ("bhwc,hkc->bhwk") ran 0.39 ms each in the
 * one-thread-per-output kernel above (uncoalesced, no reuse). */
#define ES_TM 64
#define ES_TN 64
#define ES_TK 16
typedef struct es_group {
    int n;
    int64_t size[KC_EINSUM_LABELS], s0[KC_EINSUM_LABELS], s1[KC_EINSUM_LABELS], sy[KC_EINSUM_LABELS];
} es_group;
typedef struct es_gemm_args {
    const void *x0, *x1;
    void *y;
    int64_t nb, nm, nn, nk;
    es_group g[4]; /* batch, M, N, K */
} es_gemm_args;

template <typename I>
static __device__ __forceinline__ void es_offsets(const es_group &g, I i, I *o0, I *o1, I *oy) {
    I a = 0, b = 0, c = 0;
    for (int l = g.n - 1; l >= 0; l--) {
        I d = (I)g.size[l], q = i % d;
        i /= d;
        a += q * (I)g.s0[l], b += q * (I)g.s1[l], c += q * (I)g.sy[l];
    }
    *o0 = a, *o1 = b, *oy = c;
}

template <typename T, typename I> __global__ void __launch_bounds__(256) k_einsum_gemm(const es_gemm_args a) {
    __shared__ float As[ES_TK][ES_TM + 4], Bs[ES_TK][ES_TN + 4];
    __shared__ I offA[ES_TM], offB[ES_TN], offYm[ES_TM], offYn[ES_TN];
    kc_pdl_wait();
    const T *x0 = (const T *)a.x0, *x1 = (const T *)a.x1;
    int t = threadIdx.x, tx = t % 16, ty = t / 16;
    I m0 = (I)blockIdx.y * ES_TM, n0 = (I)blockIdx.x * ES_TN;
    I M = (I)a.nm, N = (I)a.nn, K = (I)a.nk;
    for (I bi = blockIdx.z; bi < (I)a.nb; bi += gridDim.z) {
        I b0, b1, by;
        es_offsets<I>(a.g[0], bi, &b0, &b1, &by);
        __syncthreads(); /* the previous batch's readers of the offsets are done */
        if (t < ES_TM) {
            I m = m0 + t, o0 = 0, o1, oy = 0;
            if (m < M) es_offsets<I>(a.g[1], m, &o0, &o1, &oy);
            offA[t] = b0 + o0, offYm[t] = by + oy;
        } else if (t < ES_TM + ES_TN) {
            I n = n0 + (t - ES_TM), o0, o1 = 0, oy = 0;
            if (n < N) es_offsets<I>(a.g[2], n, &o0, &o1, &oy);
            offB[t - ES_TM] = b1 + o1, offYn[t - ES_TM] = oy;
        }
        float acc[4][4];
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) acc[i][j] = 0.f;
        for (I k0 = 0; k0 < K; k0 += ES_TK) {
            __syncthreads();
            /* 1024 elements of each tile, 4 per thread; consecutive threads take consecutive k */
#pragma unroll
            for (int r = 0; r < 4; r++) {
                int e = t + 256 * r, kk = e % ES_TK, mm = e / ES_TK;
                I k = k0 + kk, ka, kb, ky;
                bool kin = k < K;
                if (kin) es_offsets<I>(a.g[3], k, &ka, &kb, &ky);
                As[kk][mm] = (kin && m0 + mm < M) ? kc_ld(x0 + offA[mm] + ka) : 0.f;
                Bs[kk][mm] = (kin && n0 + mm < N) ? kc_ld(x1 + offB[mm] + kb) : 0.f;
            }
            __syncthreads();
#pragma unroll
            for (int kk = 0; kk < ES_TK; kk++) {
                float av[4], bv[4];
#pragma unroll
                for (int i = 0; i < 4; i++) av[i] = As[kk][ty * 4 + i], bv[i] = Bs[kk][tx * 4 + i];
#pragma unroll
                for (int i = 0; i < 4; i++)
#pragma unroll
                    for (int j = 0; j < 4; j++) acc[i][j] += av[i] * bv[j];
            }
        }
#pragma unroll
        for (int i = 0; i < 4; i++) {
            I m = m0 + ty * 4 + i;
            if (m >= M) continue;
#pragma unroll
            for (int j = 0; j < 4; j++) {
                I n = n0 + tx * 4 + j;
                if (n < N) kc_st((T *)a.y + offYm[ty * 4 + i] + offYn[tx * 4 + j], acc[i][j]);
            }
        }
    }
}

/* The GEMM form of d, or false when a summed label is missing from an
 * operand (or there is one operand). */
static bool es_gemm_form(const kc_einsum_desc *d, es_gemm_args *a) {
    int64_t sy[KC_EINSUM_LABELS], st = 1;
    for (int l = d->n_out - 1; l >= 0; l--) sy[l] = st, st *= d->size[l];
    int64_t *tot[4] = {&a->nb, &a->nm, &a->nn, &a->nk};
    for (int g = 0; g < 4; g++) a->g[g].n = 0, *tot[g] = 1;
    for (int l = 0; l < d->n_out + d->n_sum; l++) {
        bool in0 = d->st[0][l] != 0, in1 = d->st[1][l] != 0, out = l < d->n_out;
        int g;
        if (!out) {
            if (!(in0 && in1)) {
                if (d->size[l] == 1) continue; /* a summed label of size 1 in one operand: nothing to sum */
                return false;
            }
            g = 3;
        } else g = in0 && in1 ? 0 : in0 ? 1 : in1 ? 2 : -1;
        if (g < 0) {
            if (d->size[l] == 1) continue;
            return false;
        }
        es_group *e = &a->g[g];
        e->size[e->n] = d->size[l], e->s0[e->n] = d->st[0][l], e->s1[e->n] = d->st[1][l];
        e->sy[e->n] = out ? sy[l] : 0;
        e->n++;
        *tot[g] *= d->size[l];
    }
    return true;
}

extern "C" cudaError_t kc_einsum(void *y, const void *x0, const void *x1, const kc_einsum_desc *d, kc_dtype t,
                                 cudaStream_t stream) {
    if (!d || !x0 || d->n_out < 0 || d->n_sum < 0 || d->n_out + d->n_sum > KC_EINSUM_LABELS)
        return cudaErrorInvalidValue;
    es_args a;
    memset(&a, 0, sizeof a);
    a.x0 = x0, a.x1 = x1, a.y = y, a.n_out = d->n_out, a.n_sum = d->n_sum;
    a.n = 1;
    a.outer_sum = 1;
    int64_t top0 = 0, top1 = 0;
    for (int l = 0; l < d->n_out + d->n_sum; l++) {
        if (d->size[l] < 0 || d->st[0][l] < 0 || d->st[1][l] < 0) return cudaErrorInvalidValue;
        if (d->size[l] == 0) {
            if (l < d->n_out) return cudaSuccess; /* empty y */
        }
        a.size[l] = d->size[l], a.st0[l] = d->st[0][l], a.st1[l] = d->st[1][l];
        if (l < d->n_out) a.n *= d->size[l];
        else if (l < d->n_out + d->n_sum - 1) a.outer_sum *= d->size[l];
        if (d->size[l] > 0) top0 += (d->size[l] - 1) * d->st[0][l], top1 += (d->size[l] - 1) * d->st[1][l];
    }
    bool small = a.n <= (int64_t)UINT32_MAX && top0 <= (int64_t)UINT32_MAX && top1 <= (int64_t)UINT32_MAX;
    if (a.n == 0) return cudaSuccess;
    es_gemm_args ga;
    memset(&ga, 0, sizeof ga);
    if (x1 && !d->naive && es_gemm_form(d, &ga) && ga.nk > 0 && (ga.nm + ES_TM - 1) / ES_TM <= 65535 &&
        (ga.nn + ES_TN - 1) / ES_TN <= INT32_MAX) {
        ga.x0 = x0, ga.x1 = x1, ga.y = y;
        dim3 grid((unsigned)((ga.nn + ES_TN - 1) / ES_TN), (unsigned)((ga.nm + ES_TM - 1) / ES_TM),
                  (unsigned)(ga.nb < 65535 ? ga.nb : 65535));
        if (small) {
            if (t == KC_F16) kc_launch(k_einsum_gemm<__half, uint32_t>, dim3(grid), dim3(256), 0, stream, ga);
            else kc_launch(k_einsum_gemm<float, uint32_t>, dim3(grid), dim3(256), 0, stream, ga);
        } else {
            if (t == KC_F16) kc_launch(k_einsum_gemm<__half, int64_t>, dim3(grid), dim3(256), 0, stream, ga);
            else kc_launch(k_einsum_gemm<float, int64_t>, dim3(grid), dim3(256), 0, stream, ga);
        }
        return cudaGetLastError();
    }
    unsigned g = kc_blocks(a.n, KC_THREADS);
    if (small) {
        if (t == KC_F16) kc_launch(k_einsum<__half, uint32_t>, dim3(g), dim3(KC_THREADS), 0, stream, a);
        else kc_launch(k_einsum<float, uint32_t>, dim3(g), dim3(KC_THREADS), 0, stream, a);
    } else {
        if (t == KC_F16) kc_launch(k_einsum<__half, int64_t>, dim3(g), dim3(KC_THREADS), 0, stream, a);
        else kc_launch(k_einsum<float, int64_t>, dim3(g), dim3(KC_THREADS), 0, stream, a);
    }
    return cudaGetLastError();
}

/* ---- float32 products as three TF32 products (3xTF32) ------------------------------- */

/* x rounded to TF32's 10 mantissa bits (nearest, ties away); inf/NaN and
 * values the rounding would carry past FLT_MAX keep the truncation. */
static __device__ __forceinline__ float kc_tf32_hi(float x) {
    unsigned u = __float_as_uint(x);
    if ((u & 0x7f800000u) == 0x7f800000u) return x;
    unsigned r = (u + 0x1000u) & 0xffffe000u;
    if ((r & 0x7f800000u) == 0x7f800000u) r = u & 0xffffe000u;
    return __uint_as_float(r);
}

__global__ void k_split_tf32(float *y, const float *x, int64_t outer, int64_t inner, int64_t ld, unsigned lo_mask,
                             int vec) {
    kc_pdl_wait();
    int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, nth = (int64_t)gridDim.x * blockDim.x;
    if (vec) {
        const int64_t iv = inner / 4, n = outer * iv;
        for (int64_t i = tid; i < n; i += nth) {
            const int64_t o = i / iv, c = (i - o * iv) * 4;
            const float4 v = *reinterpret_cast<const float4 *>(x + o * ld + c);
            float4 hi = make_float4(kc_tf32_hi(v.x), kc_tf32_hi(v.y), kc_tf32_hi(v.z), kc_tf32_hi(v.w));
            float4 lo = make_float4(v.x - hi.x, v.y - hi.y, v.z - hi.z, v.w - hi.w);
            float *d = y + o * 3 * inner + c;
#pragma unroll
            for (int s = 0; s < 3; s++) *reinterpret_cast<float4 *>(d + s * inner) = (lo_mask >> s) & 1u ? lo : hi;
        }
    } else {
        const int64_t n = outer * inner;
        for (int64_t i = tid; i < n; i += nth) {
            const int64_t o = i / inner, c = i - o * inner;
            const float v = x[o * ld + c], hi = kc_tf32_hi(v), lo = v - hi;
            float *d = y + o * 3 * inner + c;
#pragma unroll
            for (int s = 0; s < 3; s++) d[s * inner] = (lo_mask >> s) & 1u ? lo : hi;
        }
    }
}

extern "C" cudaError_t kc_split_tf32(void *y, const void *x, int64_t outer, int64_t inner, int64_t ld,
                                     unsigned lo_mask, cudaStream_t stream) {
    if (outer < 0 || inner < 0 || ld < inner || !y || !x) return cudaErrorInvalidValue;
    if (outer == 0 || inner == 0) return cudaSuccess;
    int vec = kc_aligned(x, 16) && kc_aligned(y, 16) && inner % 4 == 0 && ld % 4 == 0;
    unsigned g = kc_blocks(vec ? outer * (inner / 4) : outer * inner, KC_THREADS);
    kc_launch(k_split_tf32, dim3(g), dim3(KC_THREADS), 0, stream, (float *)y, (const float *)x, outer, inner, ld, lo_mask, vec);
    return cudaGetLastError();
}
