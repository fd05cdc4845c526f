/*
 * k_spatial.cu — kiln's spatial CUDA kernels on NCHW and NHWC (launchers
 * in cuda/kernels.h): kc_pool2d_run (MaxPool / AveragePool with padding and
 * dilation), kc_global_pool_nhwc, and kc_resize_run (ONNX Resize nearest /
 * bilinear with the coordinate transforms and nearest modes of
 * src/cpu/ref/tensor_resize.c).  NCHW grid: x over the output plane, y over
 * the N*C planes, one thread per output element; NHWC: one thread per
 * output pixel and group of channels (16-byte vectors where C and the
 * pointers allow), channels innermost so accesses coalesce.  Resize coordinates are computed in double, as the
 * reference does, so nearest-mode ties round the same way.
 */
#include "cuda/k_common.cuh"

/* ---- pooling -------------------------------------------------------------------------------- */

/* count_include_pad divisor of the window starting at (hs, ws): kh*kw
 * without end pads (the original behaviour), else the taps inside the
 * padded input per axis (src/cpu/ref/nn_pool.c, pool_window_at). */
static __device__ __forceinline__ float pool_div(const kc_pool2d &p, int64_t hs, int64_t ws) {
    if (p.pb == 0 && p.pr == 0) return (float)p.kh * (float)p.kw;
    int64_t lh = p.h + p.pb - hs, lw = p.w + p.pr - ws;
    int64_t ch = lh > 0 ? (lh + p.dh - 1) / p.dh : 0, cw = lw > 0 ? (lw + p.dw - 1) / p.dw : 0;
    if (ch > p.kh) ch = p.kh;
    if (cw > p.kw) cw = p.kw;
    return (float)(ch * cw);
}

/* NCHW: grid x over the output plane, y over the N*C planes. */
template <typename T> __global__ void k_pool2d(T *y, const T *x, const kc_pool2d p) {
    kc_pdl_wait();
    int64_t planes = p.n * p.c, psz = p.oh * p.ow;
    for (int64_t pl = blockIdx.y; pl < planes; pl += gridDim.y) {
        const T *xp = x + pl * p.h * p.w;
        for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < psz; t += (int64_t)gridDim.x * blockDim.x) {
            int64_t ox = t % p.ow, oy = t / p.ow, hs = oy * p.sh - p.pt, ws = ox * p.sw - p.pl;
            float acc = p.is_max ? -INFINITY : 0.0f;
            int cnt = 0;
            for (int ky = 0; ky < p.kh; ky++) {
                int64_t iy = hs + (int64_t)ky * p.dh;
                if (iy < 0 || iy >= p.h) continue;
                for (int kx = 0; kx < p.kw; kx++) {
                    int64_t ix = ws + (int64_t)kx * p.dw;
                    if (ix < 0 || ix >= p.w) continue;
                    float v = kc_ld(xp + iy * p.w + ix);
                    if (p.is_max) {
                        if (!isnan(v) && v > acc) acc = v; /* NaN never wins, as the reference */
                    } else {
                        acc += v;
                    }
                    cnt++;
                }
            }
            if (!p.is_max) acc = __fdiv_rn(acc, p.count_include_pad ? pool_div(p, hs, ws) : (float)cnt);
            kc_st(y + pl * psz + t, acc);
        }
    }
}

/* NHWC: one thread per (n, oy, ox, group of V channels), the group
 * innermost so a warp reads and writes consecutive channels.  Output
 * element offset of thread t is t * V. */
template <typename T, int V> __global__ void k_pool2d_nhwc(T *y, const T *x, const kc_pool2d p) {
    kc_pdl_wait();
    int64_t cg = p.c / V, total = p.n * p.oh * p.ow * cg;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t g = t % cg, r = t / cg, ox = r % p.ow;
        r /= p.ow;
        int64_t oy = r % p.oh, n = r / p.oh, hs = oy * p.sh - p.pt, ws = ox * p.sw - p.pl;
        const T *xn = x + n * p.h * p.w * p.c + g * V;
        float acc[V], v[V];
#pragma unroll
        for (int j = 0; j < V; j++) acc[j] = p.is_max ? -INFINITY : 0.0f;
        int cnt = 0;
        for (int ky = 0; ky < p.kh; ky++) {
            int64_t iy = hs + (int64_t)ky * p.dh;
            if (iy < 0 || iy >= p.h) continue;
            for (int kx = 0; kx < p.kw; kx++) {
                int64_t ix = ws + (int64_t)kx * p.dw;
                if (ix < 0 || ix >= p.w) continue;
                kc_ldv<V>(xn + (iy * p.w + ix) * p.c, v);
                if (p.is_max) {
#pragma unroll
                    for (int j = 0; j < V; j++)
                        if (!isnan(v[j]) && v[j] > acc[j]) acc[j] = v[j];
                } else {
#pragma unroll
                    for (int j = 0; j < V; j++) acc[j] += v[j];
                }
                cnt++;
            }
        }
        if (!p.is_max) {
            float d = p.count_include_pad ? pool_div(p, hs, ws) : (float)cnt;
#pragma unroll
            for (int j = 0; j < V; j++) acc[j] = __fdiv_rn(acc[j], d);
        }
        kc_stv<V>(y + t * V, acc);
    }
}

extern "C" cudaError_t kc_pool2d_run(void *y, const void *x, const kc_pool2d *p, kc_dtype t, cudaStream_t stream) {
    if (!p || p->n < 0 || p->c < 0 || p->h < 0 || p->w < 0 || p->oh < 0 || p->ow < 0 || p->kh < 1 || p->kw < 1 ||
        p->sh < 1 || p->sw < 1 || p->dh < 1 || p->dw < 1 || p->pb < 0 || p->pr < 0)
        return cudaErrorInvalidValue;
    int64_t planes = p->n * p->c, psz = p->oh * p->ow;
    if (planes == 0 || psz == 0) return cudaSuccess;
    if (p->nhwc) {
        int v = t == KC_F16 ? 8 : 4;
        if (p->c % v != 0 || !kc_aligned(x, 16) || !kc_aligned(y, 16)) v = 1;
        unsigned g = kc_blocks(planes * psz / v, KC_THREADS);
        if (t == KC_F16 && v > 1) kc_launch(k_pool2d_nhwc<__half, 8>, dim3(g), dim3(KC_THREADS), 0, stream, (__half *)y, (const __half *)x, *p);
        else if (t == KC_F16) kc_launch(k_pool2d_nhwc<__half, 1>, dim3(g), dim3(KC_THREADS), 0, stream, (__half *)y, (const __half *)x, *p);
        else if (v > 1) kc_launch(k_pool2d_nhwc<float, 4>, dim3(g), dim3(KC_THREADS), 0, stream, (float *)y, (const float *)x, *p);
        else kc_launch(k_pool2d_nhwc<float, 1>, dim3(g), dim3(KC_THREADS), 0, stream, (float *)y, (const float *)x, *p);
        return cudaGetLastError();
    }
    dim3 g(kc_blocks(psz, KC_THREADS), (unsigned)(planes < 65535 ? planes : 65535));
    if (t == KC_F16) kc_launch(k_pool2d<__half>, dim3(g), dim3(KC_THREADS), 0, stream, (__half *)y, (const __half *)x, *p);
    else kc_launch(k_pool2d<float>, dim3(g), dim3(KC_THREADS), 0, stream, (float *)y, (const float *)x, *p);
    return cudaGetLastError();
}

/* ---- space-to-depth pack (kc_s2d_pack) -------------------------------------------------------- */

/* One thread per output pixel: its 16 elements gathered, then stored as 16-byte pieces. */
template <typename U> __global__ void k_s2d_pack(U *s, const U *x, const kc_s2d p) {
    kc_pdl_wait();
    const int64_t total = p.n * p.hs * p.ws;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t j = i % p.ws, t = i / p.ws, ii = t % p.hs, n = t / p.hs;
        __align__(16) U v[16];
#pragma unroll
        for (int q = 0; q < 16; q++) {
            const int r2 = q >> 3, s2 = (q >> 2) & 1, c = q & 3;
            const int64_t h = 2 * ii + r2 - p.p0, w = 2 * j + s2 - p.p1;
            const bool ok = c < p.c && h >= 0 && h < p.h && w >= 0 && w < p.w;
            v[q] = ok ? x[n * p.xs[0] + c * p.xs[1] + h * p.xs[2] + w * p.xs[3]] : (U)0;
        }
        uint4 *o = reinterpret_cast<uint4 *>(s + i * 16);
#pragma unroll
        for (int q = 0; q < (int)(16 * sizeof(U) / 16); q++) o[q] = reinterpret_cast<const uint4 *>(v)[q];
    }
}

extern "C" cudaError_t kc_s2d_pack(void *s, const void *x, const kc_s2d *p, size_t es, cudaStream_t stream) {
    if (!p || !s || !x || (es != 2 && es != 4) || ((uintptr_t)s & 15) || p->c < 1 || p->c > 4 || p->n < 0 ||
        p->hs < 0 || p->ws < 0)
        return cudaErrorInvalidValue;
    const int64_t total = p->n * p->hs * p->ws;
    if (total == 0) return cudaSuccess;
    unsigned g = kc_blocks(total, KC_THREADS);
    if (es == 2) kc_launch(k_s2d_pack<unsigned short>, dim3(g), dim3(KC_THREADS), 0, stream, (unsigned short *)s, (const unsigned short *)x, *p);
    else kc_launch(k_s2d_pack<unsigned>, dim3(g), dim3(KC_THREADS), 0, stream, (unsigned *)s, (const unsigned *)x, *p);
    return cudaGetLastError();
}

/* ---- global pool, NHWC ---------------------------------------------------------------------- */

/* Blocks of (bx, by) threads over (n, chunk of bx*V channels): thread
 * (tx, ty) accumulates channels g*V..g*V+V-1 (g = chunk*bx + tx) over the
 * rows i = ty, ty + by, ...; partials meet in shared memory (by*bx*V
 * floats, dynamic), then bx*V threads each finish one channel. */
template <typename T, int V>
__global__ void k_gpool_nhwc(T *y, const T *x, int64_t n, int64_t hw, int64_t c, int is_max) {
    kc_pdl_wait();
    extern __shared__ float gp_sh[];
    int bx = blockDim.x, by = blockDim.y, tx = threadIdx.x, ty = threadIdx.y, lin = ty * bx + tx;
    int64_t cg = c / V, chunks = (cg + bx - 1) / bx;
    float id = is_max ? -INFINITY : 0.0f;
    for (int64_t b = blockIdx.x; b < n * chunks; b += gridDim.x) {
        int64_t ni = b / chunks, c0 = (b % chunks) * bx * V, g = (b % chunks) * bx + tx;
        float acc[V], v[V];
#pragma unroll
        for (int j = 0; j < V; j++) acc[j] = id;
        if (g < cg) {
            const T *xp = x + ni * hw * c + g * V;
            for (int64_t i = ty; i < hw; i += by) {
                kc_ldv<V>(xp + i * c, v);
#pragma unroll
                for (int j = 0; j < V; j++) acc[j] = is_max ? kc_nanmax(acc[j], v[j]) : acc[j] + v[j];
            }
        }
        __syncthreads(); /* the previous chunk's reads of gp_sh are done */
#pragma unroll
        for (int j = 0; j < V; j++) gp_sh[lin * V + j] = acc[j];
        __syncthreads();
        for (int o = lin; o < bx * V && c0 + o < c; o += bx * by) {
            float a = id;
            for (int k = 0; k < by; k++) {
                float s = gp_sh[k * bx * V + o];
                a = is_max ? kc_nanmax(a, s) : a + s;
            }
            kc_st(y + ni * c + c0 + o, is_max ? a : __fdiv_rn(a, (float)hw));
        }
    }
}

extern "C" cudaError_t kc_global_pool_nhwc(void *y, const void *x, int64_t n, int64_t hw, int64_t c, int is_max,
                                           kc_dtype t, cudaStream_t stream) {
    if (n < 0 || hw < 0 || c < 0) return cudaErrorInvalidValue;
    if (n == 0 || c == 0) return cudaSuccess;
    int v = t == KC_F16 ? 8 : 4;
    if (c % v != 0 || !kc_aligned(x, 16) || !kc_aligned(y, 16)) v = 1;
    int64_t cg = c / v;
    int bx = cg >= 32 ? 32 : (int)cg;
    int64_t nb = n * ((cg + bx - 1) / bx);
    /* 256 threads a block; up to 1024 (more rows in flight) when there are few blocks */
    int64_t by = (nb < 264 ? 1024 : KC_THREADS) / bx;
    if (by > hw) by = hw > 0 ? hw : 1;
    dim3 blk((unsigned)bx, (unsigned)by);
    unsigned g = (unsigned)(nb < KC_MAX_BLOCKS ? nb : KC_MAX_BLOCKS);
    size_t sh = (size_t)bx * (size_t)by * (size_t)v * sizeof(float);
    if (t == KC_F16 && v > 1)
        kc_launch(k_gpool_nhwc<__half, 8>, dim3(g), dim3(blk), sh, stream, (__half *)y, (const __half *)x, n, hw, c, is_max);
    else if (t == KC_F16)
        kc_launch(k_gpool_nhwc<__half, 1>, dim3(g), dim3(blk), sh, stream, (__half *)y, (const __half *)x, n, hw, c, is_max);
    else if (v > 1)
        kc_launch(k_gpool_nhwc<float, 4>, dim3(g), dim3(blk), sh, stream, (float *)y, (const float *)x, n, hw, c, is_max);
    else
        kc_launch(k_gpool_nhwc<float, 1>, dim3(g), dim3(blk), sh, stream, (float *)y, (const float *)x, n, hw, c, is_max);
    return cudaGetLastError();
}

/* ---- resize --------------------------------------------------------------------------------- */

/* One resized axis: input length L, output length O, scale s, the output
 * width owidth (scale * L) the coordinate transforms divide by, and
 * whether it is resized at all (the reference leaves O == L, s == 1 alone). */
typedef struct rs_axis {
    int64_t L, O;
    double s, owidth;
    int active;
} rs_axis;

typedef struct rs_args {
    rs_axis ax[2]; /* H, W */
    int64_t planes;
    int mode, coord, nearest;
} rs_args;

/* x_original of output coordinate o (ONNX Resize coordinate_transformation_mode). */
static __device__ __forceinline__ double rs_coord(int coord, const rs_axis &a, double o) {
    switch (coord) {
    case 1: return o / a.s;
    case 2: return a.owidth == 1 ? 0.0 : o * (double)(a.L - 1) / (a.owidth - 1);
    case 3: return a.owidth > 1 ? (o + 0.5) / a.s - 0.5 : 0.0;
    case 4: return (o + 0.5) / a.s;
    default: return (o + 0.5) / a.s - 0.5;
    }
}

static __device__ __forceinline__ int64_t rs_clamp(int64_t k, int64_t L) { return k < 0 ? 0 : k >= L ? L - 1 : k; }

/* Taps of output coordinate o: indices i0, i1 and the weight w1 of i1
 * (nearest: i0 = i1, w1 = 0). */
static __device__ __forceinline__ void rs_taps(const rs_args &p, const rs_axis &a, int64_t o, int64_t *i0,
                                               int64_t *i1, float *w1) {
    if (!a.active) {
        *i0 = *i1 = o;
        *w1 = 0;
        return;
    }
    double xo = rs_coord(p.coord, a, (double)o), fl = floor(xo);
    int64_t base = xo == fl ? (int64_t)fl - 1 : (int64_t)fl;
    double ratio = xo - (double)base; /* in (0, 1] */
    if (p.mode == 0) {
        int64_t k;
        if (ratio == 1) {
            k = base + 1;
        } else {
            bool up = p.nearest == 0 ? ratio > 0.5 : p.nearest == 1 ? ratio >= 0.5 : p.nearest == 3;
            k = base + up;
        }
        *i0 = *i1 = rs_clamp(k, a.L);
        *w1 = 0;
        return;
    }
    *i0 = rs_clamp(base, a.L);
    *i1 = rs_clamp(base + 1, a.L);
    *w1 = (float)ratio;
}

template <typename T> __global__ void k_resize(T *y, const T *x, const rs_args p) {
    kc_pdl_wait();
    int64_t ih = p.ax[0].L, iw = p.ax[1].L, oh = p.ax[0].O, ow = p.ax[1].O, psz = oh * ow;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < psz; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t ox = t % ow, oy = t / ow, y0, y1, x0, x1;
        float wy, wx;
        rs_taps(p, p.ax[0], oy, &y0, &y1, &wy);
        rs_taps(p, p.ax[1], ox, &x0, &x1, &wx);
        for (int64_t pl = blockIdx.y; pl < p.planes; pl += gridDim.y) {
            const T *xp = x + pl * ih * iw;
            float v;
            if (p.mode == 0) {
                v = kc_ld(xp + y0 * iw + x0);
            } else {
                float a = kc_ld(xp + y0 * iw + x0), b = kc_ld(xp + y0 * iw + x1);
                float c = kc_ld(xp + y1 * iw + x0), d = kc_ld(xp + y1 * iw + x1);
                float top = a + (b - a) * wx, bot = c + (d - c) * wx;
                v = top + (bot - top) * wy;
            }
            kc_st(y + pl * psz + t, v);
        }
    }
}

/* NHWC: one thread per (n, oy, ox, group of V channels), the group
 * innermost; p.planes is N.  Output element offset of thread t is t * V. */
template <typename T, int V> __global__ void k_resize_nhwc(T *y, const T *x, const rs_args p, int64_t c) {
    kc_pdl_wait();
    int64_t ih = p.ax[0].L, iw = p.ax[1].L, oh = p.ax[0].O, ow = p.ax[1].O, cg = c / V, total = p.planes * oh * ow * cg;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t g = t % cg, r = t / cg, ox = r % ow;
        r /= ow;
        int64_t oy = r % oh, n = r / oh, y0, y1, x0, x1;
        float wy, wx, v[V];
        rs_taps(p, p.ax[0], oy, &y0, &y1, &wy);
        rs_taps(p, p.ax[1], ox, &x0, &x1, &wx);
        const T *xn = x + n * ih * iw * c + g * V;
        if (p.mode == 0) {
            kc_ldv<V>(xn + (y0 * iw + x0) * c, v);
        } else {
            float a[V], b[V], d[V];
            kc_ldv<V>(xn + (y0 * iw + x0) * c, a);
            kc_ldv<V>(xn + (y0 * iw + x1) * c, b);
            kc_ldv<V>(xn + (y1 * iw + x0) * c, v);
            kc_ldv<V>(xn + (y1 * iw + x1) * c, d);
#pragma unroll
            for (int j = 0; j < V; j++) {
                float top = a[j] + (b[j] - a[j]) * wx, bot = v[j] + (d[j] - v[j]) * wx;
                v[j] = top + (bot - top) * wy;
            }
        }
        kc_stv<V>(y + t * V, v);
    }
}

/* The output width of an axis: scale * L, snapped to O when it is O up
 * to float rounding (a scale derived from sizes, O / L). */
static double rs_owidth(float s, int64_t L, int64_t O, int64_t len) {
    if (len > 0) return (double)len;
    double w = (double)s * (double)L;
    return fabs(w - (double)O) <= 1e-6 * (double)(O > 1 ? O : 1) ? (double)O : w;
}

extern "C" cudaError_t kc_resize_run(void *y, const void *x, const kc_resize *p, kc_dtype t, cudaStream_t stream) {
    if (!p || p->n < 0 || p->c < 0 || p->h < 0 || p->w < 0 || p->oh < 0 || p->ow < 0 || p->mode < 0 || p->mode > 1 ||
        p->coord < 0 || p->coord > 4 || p->nearest < 0 || p->nearest > 3 || !(p->scale_h > 0) || !(p->scale_w > 0) ||
        p->len_h < 0 || p->len_w < 0)
        return cudaErrorInvalidValue;
    rs_args a;
    a.planes = p->n * p->c;
    if (a.planes == 0 || p->oh == 0 || p->ow == 0) return cudaSuccess;
    if (p->h == 0 || p->w == 0) return cudaErrorInvalidValue;
    a.ax[0] = {p->h, p->oh, (double)p->scale_h, rs_owidth(p->scale_h, p->h, p->oh, p->len_h), !(p->oh == p->h && p->scale_h == 1)};
    a.ax[1] = {p->w, p->ow, (double)p->scale_w, rs_owidth(p->scale_w, p->w, p->ow, p->len_w), !(p->ow == p->w && p->scale_w == 1)};
    a.mode = p->mode;
    a.coord = p->coord;
    a.nearest = p->nearest;
    if (p->nhwc) {
        a.planes = p->n;
        int v = t == KC_F16 ? 8 : 4;
        if (p->c % v != 0 || !kc_aligned(x, 16) || !kc_aligned(y, 16)) v = 1;
        unsigned g = kc_blocks(p->n * p->oh * p->ow * (p->c / v), KC_THREADS);
        if (t == KC_F16 && v > 1)
            kc_launch(k_resize_nhwc<__half, 8>, dim3(g), dim3(KC_THREADS), 0, stream, (__half *)y, (const __half *)x, a, p->c);
        else if (t == KC_F16)
            kc_launch(k_resize_nhwc<__half, 1>, dim3(g), dim3(KC_THREADS), 0, stream, (__half *)y, (const __half *)x, a, p->c);
        else if (v > 1)
            kc_launch(k_resize_nhwc<float, 4>, dim3(g), dim3(KC_THREADS), 0, stream, (float *)y, (const float *)x, a, p->c);
        else
            kc_launch(k_resize_nhwc<float, 1>, dim3(g), dim3(KC_THREADS), 0, stream, (float *)y, (const float *)x, a, p->c);
        return cudaGetLastError();
    }
    /* planes along grid y, several per thread (the taps are computed once per
     * thread), while keeping at least ~2048 blocks when there is work for them */
    int64_t psz = p->oh * p->ow, gx = kc_blocks(psz, KC_THREADS), gy = (a.planes + 63) / 64, want = (2048 + gx - 1) / gx;
    if (gy < want) gy = want < a.planes ? want : a.planes;
    dim3 g((unsigned)gx, (unsigned)(gy < 65535 ? gy : 65535));
    if (t == KC_F16) kc_launch(k_resize<__half>, dim3(g), dim3(KC_THREADS), 0, stream, (__half *)y, (const __half *)x, a);
    else kc_launch(k_resize<float>, dim3(g), dim3(KC_THREADS), 0, stream, (float *)y, (const float *)x, a);
    return cudaGetLastError();
}

/* ---- depthwise convolution, NHWC ------------------------------------------------------------- */

/* Block: CG channel groups of 8 (threadIdx.x) by 256/CG pixels
 * (threadIdx.y); blockIdx.y picks the block's CG*8 channels, whose weights
 * are staged transposed in shared memory ([tap][channel], float32), and
 * blockIdx.x strides over the output pixels.  Neighbouring threads read
 * neighbouring 16-byte channel vectors, so loads and stores coalesce; the
 * taps of neighbouring pixels overlap in L1. */
/* RR, SS > 0: the kernel size fixed at compile time (3x3, 5x5), the taps
 * unrolled with predicated loads, so that a thread's loads are in flight
 * together instead of one tap after another (EfficientNet-B0's 14x14 5x5
 * layers took 15 us at batch 1 with the loop). */
template <typename T, int RR, int SS>
__global__ void k_dw_nhwc(T *y, const T *x, const T *w, const T *bias, const T *z, const kc_dwconv p, int cg) {
    extern __shared__ float ws[];
    kc_pdl_wait(); /* the filters too: a graph may compute them */
    int taps = p.r * p.s, cw = cg * 8;
    int64_t c0 = (int64_t)blockIdx.y * cw;
    int nt = blockDim.x * blockDim.y, tid = threadIdx.y * blockDim.x + threadIdx.x;
    /* the block's filters [cw, taps] into ws [taps, cw]: 16-byte loads
     * (C % 8 == 0, so the block's span is whole vectors), else one by one */
    constexpr int VW = sizeof(T) == 2 ? 8 : 4;
    int cwe = p.c - c0 < cw ? (int)(p.c - c0) : cw, nval = taps * cwe;
    const T *wb = w + c0 * taps;
    if (((uintptr_t)wb & 15) == 0) {
        for (int j = tid; j * VW < nval; j += nt) {
            float v[VW];
            kc_ldv<VW>(wb + j * VW, v);
#pragma unroll
            for (int e = 0; e < VW; e++) {
                int f = j * VW + e;
                ws[(f % taps) * cw + f / taps] = v[e];
            }
        }
    } else {
        for (int f = tid; f < nval; f += nt) ws[(f % taps) * cw + f / taps] = kc_ld(wb + f);
    }
    __syncthreads();
    int64_t c = c0 + (int64_t)threadIdx.x * 8;
    if (c >= p.c) return;
    float b[8];
#pragma unroll
    for (int e = 0; e < 8; e++) b[e] = 0.0f;
    if (bias) {
#pragma unroll
        for (int e = 0; e < 8; e++) b[e] = kc_ld(bias + c + e);
    }
    const float *wt = ws + threadIdx.x * 8;
    int64_t npix = p.n * p.oh * p.ow;
    for (int64_t pix = (int64_t)blockIdx.x * blockDim.y + threadIdx.y; pix < npix; pix += (int64_t)gridDim.x * blockDim.y) {
        int64_t ox = pix % p.ow, t = pix / p.ow, oy = t % p.oh, n = t / p.oh;
        float acc[8];
#pragma unroll
        for (int e = 0; e < 8; e++) acc[e] = b[e];
        int64_t iy0 = oy * p.sh - p.pt, ix0 = ox * p.sw - p.pl;
        if (RR > 0) {
#pragma unroll
            for (int r = 0; r < RR; r++) {
                int64_t iy = iy0 + (int64_t)r * p.dh;
                bool vy = iy >= 0 && iy < p.h;
                const T *row = x + ((n * p.h + (vy ? iy : 0)) * p.w) * p.c + c;
#pragma unroll
                for (int s2 = 0; s2 < SS; s2++) {
                    int64_t ix = ix0 + (int64_t)s2 * p.dw;
                    float v[8];
                    if (vy && ix >= 0 && ix < p.w) kc_ld8(row + ix * p.c, v);
                    else {
#pragma unroll
                        for (int e = 0; e < 8; e++) v[e] = 0.0f;
                    }
                    const float *wk = wt + (r * SS + s2) * cw;
#pragma unroll
                    for (int e = 0; e < 8; e++) acc[e] = fmaf(v[e], wk[e], acc[e]);
                }
            }
        } else
        for (int r = 0; r < p.r; r++) {
            int64_t iy = iy0 + (int64_t)r * p.dh;
            if (iy < 0 || iy >= p.h) continue;
            const T *row = x + ((n * p.h + iy) * p.w) * p.c + c;
            for (int s2 = 0; s2 < p.s; s2++) {
                int64_t ix = ix0 + (int64_t)s2 * p.dw;
                if (ix < 0 || ix >= p.w) continue;
                float v[8];
                kc_ld8(row + ix * p.c, v);
                const float *wk = wt + (r * p.s + s2) * cw;
#pragma unroll
                for (int e = 0; e < 8; e++) acc[e] = fmaf(v[e], wk[e], acc[e]);
            }
        }
        if (z) {
            float v[8];
            kc_ld8(z + pix * p.c + c, v);
#pragma unroll
            for (int e = 0; e < 8; e++) acc[e] += v[e];
        }
#pragma unroll
        for (int e = 0; e < 8; e++) acc[e] = kc_act(p.act, acc[e], p.alpha, p.beta);
        kc_st8(y + pix * p.c + c, acc);
    }
}

/* One (pixel, 8 channels) item of the tap-major kernels below: stores y
 * and leaves the activated values (before rounding to T) in acc. */
template <typename T, int RR, int SS>
static __device__ __forceinline__ void dw_taps_item(T *y, const T *x, const T *wt, const T *bias, const T *z,
                                                    const kc_dwconv &p, int bias8, int64_t n, int64_t oy, int64_t ox,
                                                    int64_t c, float acc[8]) {
    const int64_t pix = (n * p.oh + oy) * p.ow + ox;
    if (bias && bias8) {
        kc_ld8(bias + c, acc);
    } else {
#pragma unroll
        for (int e = 0; e < 8; e++) acc[e] = bias ? kc_ld(bias + c + e) : 0.0f;
    }
    const int64_t iy0 = oy * p.sh - p.pt, ix0 = ox * p.sw - p.pl;
    /* every tap's load is unconditional (a tap in the padding reads a
     * clamped in-bounds pixel and is weighted 0) and all are issued
     * before the first product, raw, so that they are in flight
     * together: one memory latency per pixel, not one per tap */
    uint4 xv[RR * SS], wv[RR * SS];
    unsigned ok = 0;
#pragma unroll
    for (int r = 0; r < RR; r++) {
        int64_t iy = iy0 + (int64_t)r * p.dh;
        bool vy = iy >= 0 && iy < p.h;
        const T *row = x + ((n * p.h + (iy < 0 ? 0 : iy >= p.h ? p.h - 1 : iy)) * p.w) * p.c + c;
#pragma unroll
        for (int s2 = 0; s2 < SS; s2++) {
            int64_t ix = ix0 + (int64_t)s2 * p.dw;
            xv[r * SS + s2] = *reinterpret_cast<const uint4 *>(row + (ix < 0 ? 0 : ix >= p.w ? p.w - 1 : ix) * p.c);
            wv[r * SS + s2] = *reinterpret_cast<const uint4 *>(wt + (int64_t)(r * SS + s2) * p.c + c);
            if (vy && ix >= 0 && ix < p.w) ok |= 1u << (r * SS + s2);
        }
    }
#pragma unroll
    for (int q = 0; q < RR * SS; q++) {
        const float m = (ok >> q) & 1u ? 1.0f : 0.0f;
        const uint4 u = xv[q], g = wv[q];
        acc[0] = fmaf(kc_lo(u.x) * m, kc_lo(g.x), acc[0]);
        acc[1] = fmaf(kc_hi(u.x) * m, kc_hi(g.x), acc[1]);
        acc[2] = fmaf(kc_lo(u.y) * m, kc_lo(g.y), acc[2]);
        acc[3] = fmaf(kc_hi(u.y) * m, kc_hi(g.y), acc[3]);
        acc[4] = fmaf(kc_lo(u.z) * m, kc_lo(g.z), acc[4]);
        acc[5] = fmaf(kc_hi(u.z) * m, kc_hi(g.z), acc[5]);
        acc[6] = fmaf(kc_lo(u.w) * m, kc_lo(g.w), acc[6]);
        acc[7] = fmaf(kc_hi(u.w) * m, kc_hi(g.w), acc[7]);
    }
    if (z) {
        float v[8];
        kc_ld8(z + pix * p.c + c, v);
#pragma unroll
        for (int e = 0; e < 8; e++) acc[e] += v[e];
    }
#pragma unroll
    for (int e = 0; e < 8; e++) acc[e] = kc_act(p.act, acc[e], p.alpha, p.beta);
    kc_st8(y + pix * p.c + c, acc);
}

/* The same convolution with the filters tap-major, wt[R*S][C] (a copy the
 * executor makes of constant weights once): one thread per (pixel, 8
 * channels), no shared memory and no barrier.  Each tap's 16 bytes of
 * weights are a coalesced load beside the 16 bytes of input, so a thread's
 * loads of every tap are in flight together; at batch 1 the staging of the
 * filters into shared memory was the chain the kernel above waits on (ncu:
 * 11-19% achieved occupancy, 31% of stalls on shared memory, EfficientNet-B0). */
template <typename T, int RR, int SS> /* T: __half (16-byte pieces of 8) */
__global__ void __launch_bounds__(128) k_dw_nhwc_taps(T *y, const T *x, const T *wt, const T *bias, const T *z,
                                                      const kc_dwconv p, int bias8) {
    kc_pdl_wait();
    const int64_t groups = p.c / 8, total = p.n * p.oh * p.ow * groups;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t c = (i % groups) * 8, pix = i / groups;
        int64_t ox = pix % p.ow, t = pix / p.ow, oy = t % p.oh, n = t / p.oh;
        float acc[8];
        dw_taps_item<T, RR, SS>(y, x, wt, bias, z, p, bias8, n, oy, ox, c, acc);
    }
}

/* How a block of the blocked tap-major kernels below covers its work:
 * block (chunk of bx channel groups, pixel part, image), threads (bx
 * groups, by pixels).  Slices (th == 0): part k is pixels [k*by, k*by +
 * by) in row order, the groups in chunks of at most 32 (small layers: as
 * many blocks as there are items to spread).  Tiles (th > 0): part k is a
 * th x tw tile of output pixels, the groups in chunks of at most 8: every
 * tap of the tile's pixels reads the same (th + R - 1) x (tw + S - 1)
 * input pixels, so the block's reads after the first hit L1.  In row order
 * the blocks that share input rows run on different SMs and each tap's
 * input came from L2 again (EfficientNet-B0 b256, 14x14x672 5x5: 0.38 ms
 * against cuDNN's 0.19). */
struct dw_blocking {
    int bx, by, th, tw;
    int64_t chunks, parts, tiles_x;
};

/* Tiles for layers of at least this many (pixel, 8-channel) items
 * (KILN_CUDA_DW_TILE=N; kc_dwconv_set_tile_min for tests).  Off by
 * default: written in the thirtieth session, which had no device time to
 * measure it (bench/gpu/call30a.sh is the A/B; 65536 would leave batch 1
 * as it is).  Read once: launches are on the run path. */
static int64_t g_dw_tile_min = -1;
extern "C" void kc_dwconv_set_tile_min(int64_t v) {
    if (v >= 0) {
        g_dw_tile_min = v;
    } else {
        const char *e = getenv("KILN_CUDA_DW_TILE");
        char *end = NULL;
        long long n = e && *e ? strtoll(e, &end, 10) : -1;
        g_dw_tile_min = end && !*end && n >= 0 ? (int64_t)n : INT64_MAX;
    }
}

static void dw_blocking_of(const kc_dwconv *p, dw_blocking *b) {
    if (g_dw_tile_min < 0) kc_dwconv_set_tile_min(-1);
    const int64_t groups = p->c / 8, hw = p->oh * p->ow;
    if (p->n * hw * groups >= g_dw_tile_min) {
        int64_t ch = (groups + 7) / 8;
        b->bx = (int)((groups + ch - 1) / ch);
        int maxpix = 128 / b->bx;
        b->tw = maxpix >= 32 ? 8 : 4;
        if (b->tw > p->ow) b->tw = (int)p->ow;
        b->th = maxpix / b->tw;
        if (b->th > p->oh) b->th = (int)p->oh;
        b->by = b->th * b->tw;
        b->chunks = (groups + b->bx - 1) / b->bx;
        b->tiles_x = (p->ow + b->tw - 1) / b->tw;
        b->parts = b->tiles_x * ((p->oh + b->th - 1) / b->th);
    } else {
        int64_t ch = (groups + 31) / 32;
        b->bx = (int)((groups + ch - 1) / ch);
        b->by = 128 / b->bx;
        b->th = b->tw = 0;
        b->chunks = (groups + b->bx - 1) / b->bx;
        b->tiles_x = 0;
        b->parts = (hw + b->by - 1) / b->by;
    }
}

/* The blocked tap-major kernel; POOL: it also pools its output for a
 * squeeze-excitation step (kc_dwconv_nhwc_taps_pool): the block's sums
 * over its pixels of y as stored go to part [N][parts][C]. The separate
 * pool over y cost EfficientNet-B0 a launch per block. */
template <typename T, int RR, int SS, bool POOL>
__global__ void __launch_bounds__(128) k_dw_nhwc_taps_blk(T *y, const T *x, const T *wt, const T *bias, const T *z,
                                                          const kc_dwconv p, int bias8, float *part, int64_t parts,
                                                          int th, int tw, int64_t tiles_x) {
    __shared__ float red[POOL ? 128 * 8 : 1];
    kc_pdl_wait();
    const int bx = blockDim.x, by = blockDim.y, tx = threadIdx.x, ty = threadIdx.y, lin = ty * bx + tx;
    const int64_t groups = p.c / 8, g = (int64_t)blockIdx.x * bx + tx, n = blockIdx.z, c0 = (int64_t)blockIdx.x * bx * 8;
    int64_t oy, ox;
    bool in;
    if (th) {
        const int64_t ty0 = (int64_t)(blockIdx.y / tiles_x) * th, tx0 = (int64_t)(blockIdx.y % tiles_x) * tw;
        oy = ty0 + ty / tw;
        ox = tx0 + ty % tw;
        in = oy < p.oh && ox < p.ow;
    } else {
        const int64_t pix = (int64_t)blockIdx.y * by + ty;
        oy = pix / p.ow;
        ox = pix % p.ow;
        in = pix < p.oh * p.ow;
    }
    float acc[8];
    if (g < groups && in) {
        dw_taps_item<T, RR, SS>(y, x, wt, bias, z, p, bias8, n, oy, ox, g * 8, acc);
        if (POOL) {
#pragma unroll
            for (int e = 0; e < 8; e++) { /* the value as stored */
                T st;
                kc_st(&st, acc[e]);
                acc[e] = kc_ld(&st);
            }
        }
    } else {
#pragma unroll
        for (int e = 0; e < 8; e++) acc[e] = 0.0f;
    }
    if constexpr (POOL) {
#pragma unroll
        for (int e = 0; e < 8; e++) red[lin * 8 + e] = acc[e];
        __syncthreads();
        for (int o = lin; o < bx * 8 && c0 + o < p.c; o += bx * by) {
            float s = 0.0f;
            for (int k = 0; k < by; k++) s += red[k * bx * 8 + o];
            part[(n * parts + blockIdx.y) * p.c + c0 + o] = s;
        }
    }
}

/* ---- im2col, NHWC -------------------------------------------------------------------------- */

/* One thread per V-element piece of a column row: (m, tap, piece).  I is
 * the index type: int where every index fits (the launch checks), since
 * 64-bit division and remainder are long instruction sequences on the GPU
 * and this kernel does eight of them per element. */
template <typename U, typename I>
__global__ void k_im2col_nhwc(U *col, const U *x, const kc_dwconv p, I cu, I total) {
    kc_pdl_wait();
    const I taps = (I)(p.r * p.s), s = (I)p.s, ow = (I)p.ow, oh = (I)p.oh;
    for (I i = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; i < total; i += (I)gridDim.x * (I)blockDim.x) {
        I cc = i % cu, t = i / cu;
        I tap = t % taps;
        I m = t / taps;
        I ox = m % ow, t2 = m / ow, oy = t2 % oh, n = t2 / oh;
        I iy = oy * (I)p.sh - (I)p.pt + (tap / s) * (I)p.dh, ix = ox * (I)p.sw - (I)p.pl + (tap % s) * (I)p.dw;
        U v;
        if (iy >= 0 && iy < (I)p.h && ix >= 0 && ix < (I)p.w) v = x[((n * (I)p.h + iy) * (I)p.w + ix) * cu + cc];
        else memset(&v, 0, sizeof v);
        col[i] = v;
    }
}

template <typename U>
static void im2col_launch(U *col, const U *x, const kc_dwconv *p, int64_t cu, int64_t total, cudaStream_t stream) {
    /* int indices when the column buffer and the input (and every
     * intermediate product of the index arithmetic) stay below 2^31 */
    static int wide = -1; /* KILN_CUDA_IM2COL64=1: 64-bit indices always (A/B) */
    if (wide < 0) wide = getenv("KILN_CUDA_IM2COL64") != NULL;
    int64_t in = p->n * p->h * p->w * cu;
    if (total < INT32_MAX / 2 && in < INT32_MAX / 2 && !wide)
        kc_launch(k_im2col_nhwc<U, int>, dim3(kc_blocks(total, KC_THREADS)), dim3(KC_THREADS), 0, stream, col, x, *p,
                  (int)cu, (int)total);
    else
        kc_launch(k_im2col_nhwc<U, int64_t>, dim3(kc_blocks(total, KC_THREADS)), dim3(KC_THREADS), 0, stream, col, x,
                  *p, cu, total);
}

extern "C" cudaError_t kc_im2col_nhwc(void *col, const void *x, const kc_dwconv *p, kc_dtype t, cudaStream_t stream) {
    if (!p || !col || !x || p->c < 1 || p->r < 1 || p->s < 1 || p->sh < 1 || p->sw < 1 || p->dh < 1 || p->dw < 1 ||
        p->n < 0 || p->oh < 0 || p->ow < 0 || (t != KC_F32 && t != KC_F16))
        return cudaErrorInvalidValue;
    size_t bytes = (size_t)p->c * (t == KC_F16 ? 2u : 4u);
    int64_t m = p->n * p->oh * p->ow, taps = (int64_t)p->r * p->s;
    if (m == 0) return cudaSuccess;
    if (bytes % 16 == 0 && kc_aligned(col, 16) && kc_aligned(x, 16)) {
        int64_t cu = (int64_t)(bytes / 16), total = m * taps * cu;
        im2col_launch((uint4 *)col, (const uint4 *)x, p, cu, total, stream);
    } else if (bytes % 4 == 0 && kc_aligned(col, 4) && kc_aligned(x, 4)) {
        int64_t cu = (int64_t)(bytes / 4), total = m * taps * cu;
        im2col_launch((unsigned *)col, (const unsigned *)x, p, cu, total, stream);
    } else {
        int64_t cu = p->c, total = m * taps * cu;
        im2col_launch((unsigned short *)col, (const unsigned short *)x, p, cu, total, stream);
    }
    return cudaGetLastError();
}

extern "C" bool kc_dwconv_nhwc_ok(const kc_dwconv *p, const void *x, const void *y, const void *z) {
    return p && p->c > 0 && p->c % 8 == 0 && p->r >= 1 && p->s >= 1 && p->r * p->s <= KC_DW_MAX_TAPS &&
           p->sh >= 1 && p->sw >= 1 && p->dh >= 1 && p->dw >= 1 && p->n >= 0 && p->oh >= 0 && p->ow >= 0 &&
           kc_aligned(x, 16) && kc_aligned(y, 16) && (!z || kc_aligned(z, 16));
}

extern "C" cudaError_t kc_dwconv_nhwc(void *y, const void *x, const void *w, const void *bias, const void *z,
                                      const kc_dwconv *p, kc_dtype t, cudaStream_t stream) {
    if (!kc_dwconv_nhwc_ok(p, x, y, z)) return cudaErrorInvalidValue;
    int64_t groups = p->c / 8, npix = p->n * p->oh * p->ow;
    if (npix == 0) return cudaSuccess;
    int cg = groups < 32 ? (int)groups : 32;
    while (cg > 1 && (size_t)p->r * p->s * cg * 8 * sizeof(float) > 48 * 1024) cg /= 2; /* static shared-memory limit */
    int py = KC_THREADS / cg;
    int64_t cblocks = (groups + cg - 1) / cg;
    if (cblocks > 65535) return cudaErrorInvalidValue;
    int64_t want = (npix + py - 1) / py;
    /* enough pixel blocks to fill the GPU several times over, the rest by striding */
    int64_t cap = 8192 / cblocks + 1;
    unsigned gx = (unsigned)(want < cap ? want : cap);
    dim3 grid(gx, (unsigned)cblocks), block((unsigned)cg, (unsigned)py);
    size_t smem = (size_t)p->r * p->s * cg * 8 * sizeof(float);
    /* Unrolled taps for small float16 layers (batch 1: latency-bound); the
     * loop elsewhere, where occupancy counts (measured on the H200: unrolled,
     * EfficientNet-B0 batch 1 -3%, MobileNet-V2 -3%; batch 256 +1%; float32
     * batch 32 +7% and +24%, its 8-float taps spilling). */
    int rs = p->r == 3 && p->s == 3 ? 3 : p->r == 5 && p->s == 5 ? 5 : 0;
    static int force_loop = -1; /* read once: launches are on the run path */
    if (force_loop < 0) force_loop = getenv("KILN_CUDA_DW_LOOP") != NULL;
    if (t != KC_F16 || npix * groups > (1 << 18) || force_loop) rs = 0;
    if (t == KC_F16) {
        void (*k)(__half *, const __half *, const __half *, const __half *, const __half *, const kc_dwconv, int) =
            rs == 3 ? k_dw_nhwc<__half, 3, 3> : rs == 5 ? k_dw_nhwc<__half, 5, 5> : k_dw_nhwc<__half, 0, 0>;
        kc_launch(k, grid, block, smem, stream, (__half *)y, (const __half *)x, (const __half *)w, (const __half *)bias,
                  (const __half *)z, *p, cg);
    } else {
        kc_launch(k_dw_nhwc<float, 0, 0>, grid, block, smem, stream, (float *)y, (const float *)x, (const float *)w,
                  (const float *)bias, (const float *)z, *p, cg);
    }
    return cudaGetLastError();
}

/* KILN_CUDA_DW_TAPS: 0 never, 1 float16 3x3 and 5x5 layers of at most 2^18
 * (pixel, 8-channel) items (batch 1-8 of EfficientNet-B0), 2 (default) at
 * every size: EfficientNet-B0 FP16 b256 7.49 -> 7.24 ms on an H100 (the
 * taps form, with the SE pool fused, won four layers from cuDNN's kernel
 * and its separate activation and pool passes; twenty-ninth session).
 * Read once: launches are on the run path. */
static int dw_taps_mode(void) {
    static int mode = -1;
    if (mode < 0) {
        const char *e = getenv("KILN_CUDA_DW_TAPS");
        mode = e && (e[0] == '0' || e[0] == '1') && !e[1] ? e[0] - '0' : 2;
    }
    return mode;
}

extern "C" bool kc_dwconv_taps_ok(const kc_dwconv *p, kc_dtype t) {
    int mode = dw_taps_mode();
    return p && mode && t == KC_F16 && ((p->r == 3 && p->s == 3) || (p->r == 5 && p->s == 5)) && p->c % 8 == 0 &&
           (mode == 2 || p->n * p->oh * p->ow * (p->c / 8) <= (1 << 18));
}

extern "C" cudaError_t kc_dwconv_nhwc_taps(void *y, const void *x, const void *wt, const void *bias, const void *z,
                                           const kc_dwconv *p, kc_dtype t, cudaStream_t stream) {
    if (!kc_dwconv_nhwc_ok(p, x, y, z) || !kc_dwconv_taps_ok(p, t) || !wt || !kc_aligned(wt, 16))
        return cudaErrorInvalidValue;
    int64_t total = p->n * p->oh * p->ow * (p->c / 8);
    if (total == 0) return cudaSuccess;
    int b8 = bias && kc_aligned(bias, 16);
    dw_blocking bk;
    dw_blocking_of(p, &bk);
    if (bk.th && p->n <= 65535 && bk.parts <= 65535) {
        dim3 g((unsigned)bk.chunks, (unsigned)bk.parts, (unsigned)p->n), b((unsigned)bk.bx, (unsigned)bk.by);
        if (p->r == 3)
            kc_launch(k_dw_nhwc_taps_blk<__half, 3, 3, false>, g, b, 0, stream, (__half *)y, (const __half *)x,
                      (const __half *)wt, (const __half *)bias, (const __half *)z, *p, b8, (float *)NULL,
                      (int64_t)0, bk.th, bk.tw, bk.tiles_x);
        else
            kc_launch(k_dw_nhwc_taps_blk<__half, 5, 5, false>, g, b, 0, stream, (__half *)y, (const __half *)x,
                      (const __half *)wt, (const __half *)bias, (const __half *)z, *p, b8, (float *)NULL,
                      (int64_t)0, bk.th, bk.tw, bk.tiles_x);
        return cudaGetLastError();
    }
    unsigned g = kc_blocks(total, 128);
    if (p->r == 3)
        kc_launch(k_dw_nhwc_taps<__half, 3, 3>, dim3(g), dim3(128), 0, stream, (__half *)y, (const __half *)x,
                  (const __half *)wt, (const __half *)bias, (const __half *)z, *p, b8);
    else
        kc_launch(k_dw_nhwc_taps<__half, 5, 5>, dim3(g), dim3(128), 0, stream, (__half *)y, (const __half *)x,
                  (const __half *)wt, (const __half *)bias, (const __half *)z, *p, b8);
    return cudaGetLastError();
}

extern "C" int64_t kc_dwconv_pool_parts(const kc_dwconv *p, kc_dtype t) {
    if (!p || !kc_dwconv_taps_ok(p, t) || p->n < 1 || p->n > 65535 || p->oh * p->ow < 1) return 0;
    dw_blocking bk;
    dw_blocking_of(p, &bk);
    return bk.parts <= 65535 ? bk.parts : 0;
}

extern "C" cudaError_t kc_dwconv_nhwc_taps_pool(void *y, const void *x, const void *wt, const void *bias,
                                                const void *z, const kc_dwconv *p, float *part, kc_dtype t,
                                                cudaStream_t stream) {
    int64_t np = kc_dwconv_pool_parts(p, t);
    if (!np || !part || !kc_dwconv_nhwc_ok(p, x, y, z) || !wt || !kc_aligned(wt, 16)) return cudaErrorInvalidValue;
    dw_blocking bk;
    dw_blocking_of(p, &bk);
    dim3 g((unsigned)bk.chunks, (unsigned)bk.parts, (unsigned)p->n), b((unsigned)bk.bx, (unsigned)bk.by);
    int b8 = bias && kc_aligned(bias, 16);
    if (p->r == 3)
        kc_launch(k_dw_nhwc_taps_blk<__half, 3, 3, true>, g, b, 0, stream, (__half *)y, (const __half *)x,
                  (const __half *)wt, (const __half *)bias, (const __half *)z, *p, b8, part, bk.parts, bk.th, bk.tw,
                  bk.tiles_x);
    else
        kc_launch(k_dw_nhwc_taps_blk<__half, 5, 5, true>, g, b, 0, stream, (__half *)y, (const __half *)x,
                  (const __half *)wt, (const __half *)bias, (const __half *)z, *p, b8, part, bk.parts, bk.th, bk.tw,
                  bk.tiles_x);
    return cudaGetLastError();
}
