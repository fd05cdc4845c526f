/*
 * k_spatial.cu — kiln's NCHW spatial CUDA kernels (launchers in
 * cuda/kernels.h): kc_pool2d_run (MaxPool / AveragePool with padding and
 * dilation) and kc_resize_run (ONNX Resize nearest / bilinear with the
 * coordinate transforms and nearest modes of src/cpu/ref/tensor_resize.c).
 * Grid: x over the output plane, y over the N*C planes; one thread per
 * output element.  Resize coordinates are computed in double, as the
 * reference does, so nearest-mode ties round the same way.
 */
#include "cuda/k_common.cuh"

/* ---- pooling -------------------------------------------------------------------------------- */

template <typename T> __global__ void k_pool2d(T *y, const T *x, const kc_pool2d p) {
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
            if (!p.is_max) acc = __fdiv_rn(acc, p.count_include_pad ? (float)(p.kh * p.kw) : (float)cnt);
            kc_st(y + pl * psz + t, acc);
        }
    }
}

extern "C" cudaError_t kc_pool2d_run(void *y, const void *x, const kc_pool2d *p, kc_dtype t, cudaStream_t stream) {
    if (!p || p->n < 0 || p->c < 0 || p->h < 0 || p->w < 0 || p->oh < 0 || p->ow < 0 || p->kh < 1 || p->kw < 1 ||
        p->sh < 1 || p->sw < 1 || p->dh < 1 || p->dw < 1)
        return cudaErrorInvalidValue;
    int64_t planes = p->n * p->c, psz = p->oh * p->ow;
    if (planes == 0 || psz == 0) return cudaSuccess;
    dim3 g(kc_blocks(psz, KC_THREADS), (unsigned)(planes < 65535 ? planes : 65535));
    if (t == KC_F16) k_pool2d<__half><<<g, KC_THREADS, 0, stream>>>((__half *)y, (const __half *)x, *p);
    else k_pool2d<float><<<g, KC_THREADS, 0, stream>>>((float *)y, (const float *)x, *p);
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

/* The output width of an axis: scale * L, snapped to O when it is O up
 * to float rounding (a scale derived from sizes, O / L). */
static double rs_owidth(float s, int64_t L, int64_t O) {
    double w = (double)s * (double)L;
    return fabs(w - (double)O) <= 1e-6 * (double)(O > 1 ? O : 1) ? (double)O : w;
}

extern "C" cudaError_t kc_resize_run(void *y, const void *x, const kc_resize *p, kc_dtype t, cudaStream_t stream) {
    if (!p || p->n < 0 || p->c < 0 || p->h < 0 || p->w < 0 || p->oh < 0 || p->ow < 0 || p->mode < 0 || p->mode > 1 ||
        p->coord < 0 || p->coord > 4 || p->nearest < 0 || p->nearest > 3 || !(p->scale_h > 0) || !(p->scale_w > 0))
        return cudaErrorInvalidValue;
    rs_args a;
    a.planes = p->n * p->c;
    if (a.planes == 0 || p->oh == 0 || p->ow == 0) return cudaSuccess;
    if (p->h == 0 || p->w == 0) return cudaErrorInvalidValue;
    a.ax[0] = {p->h, p->oh, (double)p->scale_h, rs_owidth(p->scale_h, p->h, p->oh), !(p->oh == p->h && p->scale_h == 1)};
    a.ax[1] = {p->w, p->ow, (double)p->scale_w, rs_owidth(p->scale_w, p->w, p->ow), !(p->ow == p->w && p->scale_w == 1)};
    a.mode = p->mode;
    a.coord = p->coord;
    a.nearest = p->nearest;
    /* planes along grid y, several per thread (the taps are computed once per
     * thread), while keeping at least ~2048 blocks when there is work for them */
    int64_t psz = p->oh * p->ow, gx = kc_blocks(psz, KC_THREADS), gy = (a.planes + 63) / 64, want = (2048 + gx - 1) / gx;
    if (gy < want) gy = want < a.planes ? want : a.planes;
    dim3 g((unsigned)gx, (unsigned)(gy < 65535 ? gy : 65535));
    if (t == KC_F16) k_resize<__half><<<g, KC_THREADS, 0, stream>>>((__half *)y, (const __half *)x, a);
    else k_resize<float><<<g, KC_THREADS, 0, stream>>>((float *)y, (const float *)x, a);
    return cudaGetLastError();
}
