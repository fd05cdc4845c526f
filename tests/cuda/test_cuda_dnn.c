/*
 * test_cuda_dnn.c — src/cuda/dnn.c (cuDNN convolution, cuBLASLt products,
 * attention) against float64 CPU references on fresh random inputs, in
 * float32 (no TF32: relative L2 <= 1e-5) and float16 (<= 1e-2).  Outputs
 * are poisoned (0xFF bytes = NaN) before each run; every element must be
 * written and finite, and the gaps of a strided y must stay poisoned.
 * Conv and GEMM cases run the timed choice and then every algorithm forced.
 * Exits 77 (skip) without a CUDA device.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "cuda/dnn.h"
#include "cuda/kernels.h"
#include "cuda/k_attention.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static int n_pass, n_fail;
static int n_fused, n_unfused_eligible; /* flash-eligible attention cases by the path that ran */
static kc_dnn *g_dnn;
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

#define TOL_F32 1e-5
#define TOL_F32_FFT 5e-5 /* FFT / Winograd algorithms in float32 */
#define TOL_F16 1e-2
#define WS_MAX ((size_t)32 << 20)

/* ---- helpers ------------------------------------------------------------------------------ */

static float frand(void) /* uniform in [-1, 1) */
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static uint16_t f2h(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u)
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));
    if (ax >= 0x477ff000u)
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) {
        float a;
        memcpy(&a, &ax, 4);
        return (uint16_t)(sign | (uint32_t)lrintf(a * 16777216.0f));
    }
    uint32_t mant = ax & 0x7fffffu, e = (ax >> 23) - 127 + 15;
    uint32_t h = (e << 10) | (mant >> 13), rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++;
    return (uint16_t)(sign | h);
}

static float h2f(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v;
    if (e == 0)
        v = ldexpf((float)m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexpf((float)(1024 + m), e - 25);
    return (h & 0x8000) ? -v : v;
}

static size_t esz(kc_dtype t) { return t == KC_F16 ? 2 : 4; }

/* Random host values in [-scale, scale), rounded to t (the reference sees
 * exactly what the device sees). */
static float *host_rand(size_t n, float scale, kc_dtype t)
{
    float *h = malloc((n ? n : 1) * sizeof *h);
    if (!h) {
        fprintf(stderr, "out of host memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        h[i] = frand() * scale;
        if (t == KC_F16)
            h[i] = h2f(f2h(h[i]));
    }
    return h;
}

static void *dev_upload(const float *h, size_t n, kc_dtype t)
{
    void *d = NULL;
    size_t bytes = (n ? n : 1) * esz(t);
    if (cudaMalloc(&d, bytes) != cudaSuccess)
        return NULL;
    void *tmp = malloc(bytes);
    if (!tmp) {
        cudaFree(d);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (t == KC_F16)
            ((uint16_t *)tmp)[i] = f2h(h[i]);
        else
            ((float *)tmp)[i] = h[i];
    }
    cudaError_t e = cudaMemcpy(d, tmp, n * esz(t), cudaMemcpyHostToDevice);
    free(tmp);
    if (e != cudaSuccess) {
        cudaFree(d);
        return NULL;
    }
    return d;
}

static void *dev_poisoned(size_t n, kc_dtype t)
{
    void *d = NULL;
    if (cudaMalloc(&d, (n ? n : 1) * esz(t)) != cudaSuccess)
        return NULL;
    if (cudaMemset(d, 0xFF, (n ? n : 1) * esz(t)) != cudaSuccess) {
        cudaFree(d);
        return NULL;
    }
    return d;
}

/* Download n elements as float; *poisoned[i] = element still all 0xFF bytes. */
static float *dev_download(const void *d, size_t n, kc_dtype t, unsigned char **poisoned)
{
    size_t bytes = n * esz(t);
    unsigned char *raw = malloc(bytes ? bytes : 1);
    float *h = malloc((n ? n : 1) * sizeof *h);
    unsigned char *p = malloc(n ? n : 1);
    if (!raw || !h || !p || cudaDeviceSynchronize() != cudaSuccess ||
        cudaMemcpy(raw, d, bytes, cudaMemcpyDeviceToHost) != cudaSuccess) {
        free(raw);
        free(h);
        free(p);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        size_t k;
        for (k = 0; k < esz(t) && raw[i * esz(t) + k] == 0xFF; k++)
            ;
        p[i] = k == esz(t);
        if (t == KC_F16) {
            uint16_t v;
            memcpy(&v, raw + i * 2, 2);
            h[i] = h2f(v);
        } else {
            memcpy(&h[i], raw + i * 4, 4);
        }
    }
    free(raw);
    *poisoned = p;
    return h;
}

static double act_ref(int act, double x, double a, double b)
{
    switch (act) {
    case 1: return x > 0 ? x : 0;
    case 2: return fmin(fmax(x, a), b);
    case 3: return x >= 0 ? x : a * x;
    case 4: return 1 / (1 + exp(-x));
    case 5: return x / (1 + exp(-x));
    case 6: return fmax(0, fmin(1, a * x + b));
    case 7: return x * fmax(0, fmin(1, x / 6 + 0.5));
    case 8: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case 9: return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    case 10: return x * tanh(log1p(exp(x)));
    case 11: return tanh(x);
    default: return x;
    }
}

typedef struct err {
    double rel_l2, max_abs;
    size_t bad; /* non-finite or unwritten */
} err;

static err compare(const float *got, const double *ref, size_t n)
{
    double num = 0, den = 0;
    err e = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        if (isnan(ref[i])) { /* a NaN reference (attention row without a finite score) wants NaN */
            if (!isnan(got[i]))
                e.bad++;
            continue;
        }
        if (!isfinite(got[i])) {
            e.bad++;
            continue;
        }
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
        if (fabs(d) > e.max_abs)
            e.max_abs = fabs(d);
    }
    e.rel_l2 = den > 0 ? sqrt(num / den) : sqrt(num);
    return e;
}

static const char *tname(kc_dtype t) { return t == KC_F16 ? "f16" : "f32"; }

/* ---- convolution -------------------------------------------------------------------------- */

typedef struct conv_case {
    int n, c, h, w, k, r, s, pt, pl, pb, pr, sh, sw, dh, dw, g, act;
    bool bias, z;
    const char *name;
} conv_case;

static void conv_ref(const conv_case *cc, int nhwc, int oh, int ow, const float *x, const float *w, const float *b,
                     const float *z, double *y)
{
    int cg = cc->c / cc->g, kg = cc->k / cc->g;
    for (int n = 0; n < cc->n; n++)
        for (int k = 0; k < cc->k; k++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    int gi = k / kg;
                    double acc = 0;
                    for (int ci = 0; ci < cg; ci++) {
                        int c = gi * cg + ci;
                        for (int ky = 0; ky < cc->r; ky++) {
                            int iy = oy * cc->sh - cc->pt + ky * cc->dh;
                            if (iy < 0 || iy >= cc->h)
                                continue;
                            for (int kx = 0; kx < cc->s; kx++) {
                                int ix = ox * cc->sw - cc->pl + kx * cc->dw;
                                if (ix < 0 || ix >= cc->w)
                                    continue;
                                size_t xi = nhwc ? (((size_t)n * cc->h + iy) * cc->w + ix) * cc->c + c
                                                 : (((size_t)n * cc->c + c) * cc->h + iy) * cc->w + ix;
                                size_t wi = nhwc ? (((size_t)k * cc->r + ky) * cc->s + kx) * cg + ci
                                                 : (((size_t)k * cg + ci) * cc->r + ky) * cc->s + kx;
                                acc += (double)x[xi] * w[wi];
                            }
                        }
                    }
                    size_t yi = nhwc ? (((size_t)n * oh + oy) * ow + ox) * cc->k + k
                                     : (((size_t)n * cc->k + k) * oh + oy) * ow + ox;
                    if (b)
                        acc += b[k];
                    if (z)
                        acc += z[yi];
                    y[yi] = act_ref(cc->act, acc, 0.1, 0.0);
                }
}

static bool fft_like(int algo) { return algo >= 4; } /* FFT, FFT_TILING, WINOGRAD, WINOGRAD_NONFUSED */

/* Runs one convolution with algorithm `algo` (< 0: timed); 1 pass, 0 fail, -1 not offered. */
/* dtaps: a depthwise case's filters tap-major ([R*S, C]), given as the
 * executor gives its copy (kc_conv_desc.dw_taps); NULL: the plain form. */
static int conv_one(const conv_case *cc, kc_dtype t, int nhwc, int algo, const double *ref, size_t ny, void *dx,
                    void *dw, void *db, void *dz, void *dy, const void *dtaps, double *worst, int *chosen, char *msg,
                    size_t msg_size)
{
    kc_conv_desc d = {.t = t, .nhwc = nhwc, .n = cc->n, .c = cc->c, .h = cc->h, .w = cc->w, .k = cc->k,
                      .r = cc->r, .s = cc->s, .pad_t = cc->pt, .pad_l = cc->pl, .pad_b = cc->pb, .pad_r = cc->pr,
                      .stride_h = cc->sh, .stride_w = cc->sw, .dil_h = cc->dh, .dil_w = cc->dw, .groups = cc->g,
                      .act = cc->act, .act_alpha = 0.1f, .has_bias = cc->bias, .has_z = cc->z,
                      .dw_taps = dtaps != NULL};
    d.oh = (cc->h + cc->pt + cc->pb - cc->dh * (cc->r - 1) - 1) / cc->sh + 1;
    d.ow = (cc->w + cc->pl + cc->pr - cc->dw * (cc->s - 1) - 1) / cc->sw + 1;
    kc_conv *cv = NULL;
    char why[512] = "";
    if (kc_conv_create(g_dnn, &d, algo, WS_MAX, &cv, why, sizeof why)) {
        snprintf(msg, msg_size, "create(algo %d): %s", algo, why);
        return algo < 0 ? 0 : -1;
    }
    *chosen = kc_conv_algo(cv);
    if (dtaps)
        kc_conv_set_dw_taps(cv, dtaps);
    void *ws = NULL;
    int rc = 0;
    if (kc_conv_workspace(cv) && cudaMalloc(&ws, kc_conv_workspace(cv)) != cudaSuccess) {
        snprintf(msg, msg_size, "cudaMalloc workspace %zu", kc_conv_workspace(cv));
        goto done;
    }
    /* twice: kiln's split-K tactics must leave their tile counters as they found them */
    for (int rep = 0; rep < 2; rep++) {
        cudaMemset(dy, 0xFF, ny * esz(t));
        if (kc_conv_run(cv, dx, dw, cc->bias ? db : NULL, cc->z ? dz : NULL, dy, ws, 0, why, sizeof why)) {
            snprintf(msg, msg_size, "run(algo %d): %s", *chosen, why);
            (void)cudaGetLastError();
            rc = algo < 0 ? 0 : -1;
            goto done;
        }
    }
    unsigned char *poison = NULL;
    float *got = dev_download(dy, ny, t, &poison);
    if (!got) {
        snprintf(msg, msg_size, "download failed: %s", cudaGetErrorString(cudaGetLastError()));
        goto done;
    }
    err e = compare(got, ref, ny);
    double tol = t == KC_F16 ? TOL_F16 : fft_like(*chosen) ? TOL_F32_FFT : TOL_F32;
    if (e.rel_l2 > *worst)
        *worst = e.rel_l2;
    rc = e.bad == 0 && e.rel_l2 <= tol;
    if (!rc)
        snprintf(msg, msg_size, "algo %d: rel_l2 %.3g (tol %.0e) max_abs %.3g, %zu unwritten/non-finite", *chosen,
                 e.rel_l2, tol, e.max_abs, e.bad);
    free(got);
    free(poison);
done:
    cudaFree(ws);
    kc_conv_destroy(cv);
    return rc;
}

static void conv_test(const conv_case *cc, kc_dtype t, int nhwc)
{
    int oh = (cc->h + cc->pt + cc->pb - cc->dh * (cc->r - 1) - 1) / cc->sh + 1;
    int ow = (cc->w + cc->pl + cc->pr - cc->dw * (cc->s - 1) - 1) / cc->sw + 1;
    size_t nx = (size_t)cc->n * cc->c * cc->h * cc->w, nw = (size_t)cc->k * (cc->c / cc->g) * cc->r * cc->s;
    size_t ny = (size_t)cc->n * cc->k * oh * ow;
    float *hx = host_rand(nx, 1.0f, t), *hw = host_rand(nw, 0.5f, t), *hb = host_rand((size_t)cc->k, 0.5f, t);
    float *hz = host_rand(ny, 1.0f, t);
    double *ref = malloc(ny * sizeof *ref);
    conv_ref(cc, nhwc, oh, ow, hx, hw, cc->bias ? hb : NULL, cc->z ? hz : NULL, ref);
    void *dx = dev_upload(hx, nx, t), *dw = dev_upload(hw, nw, t), *db = dev_upload(hb, (size_t)cc->k, t);
    void *dz = dev_upload(hz, ny, t), *dy = dev_poisoned(ny, t);
    char msg[768] = "", first_fail[768] = "";
    double worst = 0;
    int chosen = -1, timed_algo = -1, ran = 0, refused = 0, failed = 0;
    if (!dx || !dw || !db || !dz || !dy || !ref) {
        snprintf(first_fail, sizeof first_fail, "allocation failed");
        failed = 1;
    } else {
        for (int ai = -1; ai < 14 + KC_IGEMM_CFGS; ai++) {
            /* cuDNN's 8, then kiln's depthwise kernel, the 1x1 product, im2col + product, both as float32
             * 3xTF32 products, kiln's few-channel 1x1 kernel, and every tile shape of kiln's implicit GEMM */
            int algo = ai < 8     ? ai
                       : ai == 8  ? KC_CONV_ALGO_DW
                       : ai == 9  ? KC_CONV_ALGO_GEMM
                       : ai == 10 ? KC_CONV_ALGO_IM2COL
                       : ai == 11 ? KC_CONV_ALGO_GEMM + KC_GEMM_ALGO_X3
                       : ai == 12 ? KC_CONV_ALGO_IM2COL + KC_GEMM_ALGO_X3
                       : ai == 13 ? KC_CONV_ALGO_PW
                                  : KC_CONV_ALGO_IGEMM + (ai - 14);
            int r = conv_one(cc, t, nhwc, algo, ref, ny, dx, dw, db, dz, dy, NULL, &worst, &chosen, msg, sizeof msg);
            if (algo < 0)
                timed_algo = chosen;
            if (r < 0) {
                refused++;
            } else {
                ran++;
                if (!r) {
                    failed++;
                    if (!first_fail[0])
                        snprintf(first_fail, sizeof first_fail, "%s", msg);
                }
            }
        }
    }
    if (!failed && timed_algo >= 0) {
        /* the timed choice's code, as an engine stores it, must set up the same algorithm again */
        int wc = -1;
        int r = conv_one(cc, t, nhwc, timed_algo, ref, ny, dx, dw, db, dz, dy, NULL, &worst, &wc, msg, sizeof msg);
        if (r <= 0 || wc != timed_algo) {
            failed++;
            snprintf(first_fail, sizeof first_fail, "timed algo %d recreated from its code: %s (got %d)", timed_algo,
                     r < 0 ? "refused" : r == 0 ? msg : "ran", wc);
        }
    }
    /* kiln's depthwise kernel reading the filters tap-major (float16 NHWC 3x3 and 5x5), forced and timed */
    kc_dwconv pq = {.n = cc->n, .h = cc->h, .w = cc->w, .c = cc->c, .r = cc->r, .s = cc->s, .oh = oh, .ow = ow};
    if (!failed && nhwc && cc->g == cc->c && cc->k == cc->c && kc_dwconv_taps_ok(&pq, t)) {
        size_t rs = (size_t)cc->r * cc->s;
        float *ht = malloc(nw * sizeof *ht);
        for (size_t c = 0; ht && c < (size_t)cc->c; c++)
            for (size_t q = 0; q < rs; q++)
                ht[q * cc->c + c] = hw[c * rs + q];
        void *dt = ht ? dev_upload(ht, nw, t) : NULL;
        /* forced in the size's own blocking, timed, forced in tiles (kc_dwconv_set_tile_min(0)) */
        for (int k2 = 0; k2 < 3 && !failed; k2++) {
            int algo = k2 == 1 ? -1 : KC_CONV_ALGO_DW, wc = -1;
            if (k2 == 2) kc_dwconv_set_tile_min(0);
            int r = dt ? conv_one(cc, t, nhwc, algo, ref, ny, dx, dw, db, dz, dy, dt, &worst, &wc, msg, sizeof msg) : 0;
            if (k2 == 2) kc_dwconv_set_tile_min(-1);
            if (r < 0 || (k2 != 1 && r > 0 && wc != KC_CONV_ALGO_DW))
                r = 0;
            if (r > 0) {
                ran++;
            } else {
                failed++;
                snprintf(first_fail, sizeof first_fail, "tap-major depthwise (algo %d%s): %s", algo,
                         k2 == 2 ? ", tiles" : "",
                         dt ? msg : "allocation failed");
            }
        }
        cudaFree(dt);
        free(ht);
    }
    printf("%s conv %-22s %s %s: timed algo %d, %d algorithms ran (%d not offered), worst rel_l2 %.2e%s%s\n",
           failed ? "FAIL" : "ok  ", cc->name, tname(t), nhwc ? "nhwc" : "nchw", timed_algo, ran, refused, worst,
           failed ? " — " : "", first_fail);
    failed ? n_fail++ : n_pass++;
    cudaFree(dx), cudaFree(dw), cudaFree(db), cudaFree(dz), cudaFree(dy);
    free(hx), free(hw), free(hb), free(hz), free(ref);
}

/* Channel slabs (kc_conv_desc.x_ch/y_ch/z_ch, a Concat's inputs written
 * and read in place): x is channels [8, 8 + c) of a tensor with c + 8 + 3
 * channels, z channels [0, k) of one with k + 8, y channels [8, 8 + k) of
 * one with k + 16.  Every algorithm that takes slabs, against float64 on
 * the dense values; the channels around y's slab must stay untouched. */
static void conv_slab_test(const conv_case *cc, kc_dtype t, int nhwc)
{
    const int x0 = 8, y0 = 8, xch = cc->c + 8 + (t == KC_F16 ? 8 : 4), ych = cc->k + 16, zch = cc->k + 8;
    int oh = (cc->h + cc->pt + cc->pb - cc->dh * (cc->r - 1) - 1) / cc->sh + 1;
    int ow = (cc->w + cc->pl + cc->pr - cc->dw * (cc->s - 1) - 1) / cc->sw + 1;
    size_t hw = (size_t)cc->h * cc->w, ohw = (size_t)oh * ow;
    size_t nxw = (size_t)cc->n * xch * hw, nw = (size_t)cc->k * (cc->c / cc->g) * cc->r * cc->s;
    size_t ny = (size_t)cc->n * cc->k * ohw, nyw = (size_t)cc->n * ych * ohw, nzw = (size_t)cc->n * zch * ohw;
    float *hxw = host_rand(nxw, 1.0f, t), *hw_ = host_rand(nw, 0.5f, t), *hb = host_rand((size_t)cc->k, 0.5f, t);
    float *hzw = host_rand(nzw, 1.0f, t);
    float *hx = malloc((size_t)cc->n * cc->c * hw * sizeof *hx), *hz = malloc(ny * sizeof *hz);
    double *ref = malloc(ny * sizeof *ref);
    /* the dense views: element (n, c, p) of a wide tensor with ch channels at channel offset c0 */
#define SLAB_AT(ch, c0, n, c, p, P) (nhwc ? ((size_t)(n) * (P) + (p)) * (ch) + (c0) + (c) : ((size_t)(n) * (ch) + (c0) + (c)) * (P) + (p))
#define DENSE_AT(ch, n, c, p, P) SLAB_AT(ch, 0, n, c, p, P)
    for (int n = 0; n < cc->n; n++)
        for (int c = 0; c < cc->c; c++)
            for (size_t q = 0; q < hw; q++)
                hx[DENSE_AT(cc->c, n, c, q, hw)] = hxw[SLAB_AT(xch, x0, n, c, q, hw)];
    for (int n = 0; n < cc->n; n++)
        for (int k = 0; k < cc->k; k++)
            for (size_t q = 0; q < ohw; q++)
                hz[DENSE_AT(cc->k, n, k, q, ohw)] = hzw[SLAB_AT(zch, 0, n, k, q, ohw)];
    conv_ref(cc, nhwc, oh, ow, hx, hw_, cc->bias ? hb : NULL, cc->z ? hz : NULL, ref);
    void *dxw = dev_upload(hxw, nxw, t), *dw = dev_upload(hw_, nw, t), *db = dev_upload(hb, (size_t)cc->k, t);
    void *dzw = dev_upload(hzw, nzw, t), *dyw = dev_poisoned(nyw, t);
    size_t e = esz(t);
    const char *dx = (const char *)dxw + (nhwc ? x0 : x0 * hw) * e;
    char *dy = (char *)dyw + (nhwc ? y0 : y0 * ohw) * e;
    char first_fail[768] = "";
    int ran = 0, failed = 0, timed_algo = -1;
    double worst = 0;
    for (int ai = -1; ai < 8 + KC_IGEMM_CFGS && dxw && dw && db && dzw && dyw; ai++) {
        int algo = ai < 8 ? ai : KC_CONV_ALGO_IGEMM + (ai - 8);
        kc_conv_desc d = {.t = t, .nhwc = nhwc, .n = cc->n, .c = cc->c, .h = cc->h, .w = cc->w, .k = cc->k,
                          .r = cc->r, .s = cc->s, .pad_t = cc->pt, .pad_l = cc->pl, .pad_b = cc->pb, .pad_r = cc->pr,
                          .stride_h = cc->sh, .stride_w = cc->sw, .dil_h = cc->dh, .dil_w = cc->dw, .groups = cc->g,
                          .act = cc->act, .act_alpha = 0.1f, .has_bias = cc->bias, .has_z = cc->z,
                          .x_ch = xch, .y_ch = ych, .z_ch = zch};
        d.oh = oh;
        d.ow = ow;
        kc_conv *cv = NULL;
        char why[512] = "";
        if (kc_conv_create(g_dnn, &d, algo, WS_MAX, &cv, why, sizeof why)) {
            if (algo < 0) {
                failed++;
                snprintf(first_fail, sizeof first_fail, "timed create: %s", why);
            }
            continue;
        }
        if (algo < 0)
            timed_algo = kc_conv_algo(cv);
        void *ws = NULL;
        cudaMemset(dyw, 0xFF, nyw * e);
        int bad_run = (kc_conv_workspace(cv) && cudaMalloc(&ws, kc_conv_workspace(cv)) != cudaSuccess) ||
                      kc_conv_run(cv, dx, dw, cc->bias ? db : NULL, cc->z ? dzw : NULL, dy, ws, 0, why, sizeof why);
        cudaFree(ws);
        kc_conv_destroy(cv);
        if (bad_run) {
            (void)cudaGetLastError();
            if (algo < 0 || algo >= KC_CONV_ALGO_IGEMM) { /* offered at create: must run */
                failed++;
                if (!first_fail[0])
                    snprintf(first_fail, sizeof first_fail, "run(algo %d): %s", algo, why);
            }
            continue;
        }
        ran++;
        unsigned char *poison = NULL;
        float *gotw = dev_download(dyw, nyw, t, &poison);
        float *got = malloc(ny * sizeof *got);
        size_t touched = 0;
        for (size_t i = 0; gotw && i < nyw; i++) {
            size_t q = i, n, c, pp; /* i's (n, c, p) in the wide y */
            if (nhwc) {
                c = q % ych;
                q /= ych;
                pp = q % ohw;
                n = q / ohw;
            } else {
                pp = q % ohw;
                q /= ohw;
                c = q % ych;
                n = q / ych;
            }
            if (c >= (size_t)y0 && c < (size_t)y0 + cc->k)
                got[DENSE_AT(cc->k, n, c - y0, pp, ohw)] = gotw[i];
            else if (!poison[i])
                touched++;
        }
        err er = gotw ? compare(got, ref, ny) : (err){1, 1, 1};
        double tol = t == KC_F16 ? TOL_F16 : fft_like(algo < 0 ? timed_algo : algo) ? TOL_F32_FFT : TOL_F32;
        if (er.rel_l2 > worst)
            worst = er.rel_l2;
        if (er.bad || er.rel_l2 > tol || touched) {
            failed++;
            if (!first_fail[0])
                snprintf(first_fail, sizeof first_fail, "algo %d: rel_l2 %.3g (tol %.0e), %zu unwritten, %zu outside "
                         "the slab written", algo < 0 ? timed_algo : algo, er.rel_l2, tol, er.bad, touched);
        }
        free(gotw);
        free(got);
        free(poison);
    }
#undef SLAB_AT
#undef DENSE_AT
    if (!ran && !failed) {
        failed++;
        snprintf(first_fail, sizeof first_fail, "no algorithm ran");
    }
    printf("%s conv slabs %-16s %s %s: timed algo %d, %d algorithms ran, worst rel_l2 %.2e%s%s\n",
           failed ? "FAIL" : "ok  ", cc->name, tname(t), nhwc ? "nhwc" : "nchw", timed_algo, ran, worst,
           failed ? " — " : "", first_fail);
    failed ? n_fail++ : n_pass++;
    cudaFree(dxw), cudaFree(dw), cudaFree(db), cudaFree(dzw), cudaFree(dyw);
    free(hxw), free(hw_), free(hb), free(hzw), free(hx), free(hz), free(ref);
}

/* Asymmetric padding cuDNN cannot express must be refused with a reason. */
static void conv_asym_refused(void)
{
    kc_conv_desc d = {.t = KC_F32, .n = 1, .c = 4, .h = 8, .w = 8, .k = 4, .r = 3, .s = 3, .oh = 4, .ow = 4,
                      .pad_t = 0, .pad_l = 0, .pad_b = 1, .pad_r = 1, .stride_h = 2, .stride_w = 2, .dil_h = 1,
                      .dil_w = 1, .groups = 1};
    kc_conv *cv = NULL;
    char why[512] = "";
    int rc = kc_conv_create(g_dnn, &d, -1, WS_MAX, &cv, why, sizeof why);
    bool ok = rc != 0 && cv == NULL && strstr(why, "asymmetric") != NULL;
    printf("%s conv asymmetric padding refused: %s\n", ok ? "ok  " : "FAIL", why);
    kc_conv_destroy(cv);
    ok ? n_pass++ : n_fail++;
}

/* ---- ConvTranspose (cuDNN's backward-data) -------------------------------------------------- */

typedef struct convt_case {
    int n, c, h, w, m, r, s, pt, pl, oh, ow, sh, sw, dh, dw, g, act;
    bool bias;
    const char *name;
} convt_case;

/* y[n, m, oy, ox] = act(b[m] + sum over c of group, iy, ix, ky, kx with oy = iy*sh - pt + ky*dh (and x alike)
 * of x[n, c, iy, ix] w[c, m % mg, ky, kx]): ONNX's ConvTranspose, the direct scatter form. */
static void convt_ref(const convt_case *cc, int nhwc, const float *x, const float *w, const float *b, double *y)
{
    int cg = cc->c / cc->g, mg = cc->m / cc->g;
    size_t ny = (size_t)cc->n * cc->m * cc->oh * cc->ow;
    for (size_t i = 0; i < ny; i++)
        y[i] = 0;
    for (int n = 0; n < cc->n; n++)
        for (int c = 0; c < cc->c; c++)
            for (int iy = 0; iy < cc->h; iy++)
                for (int ix = 0; ix < cc->w; ix++) {
                    size_t xi = nhwc ? (((size_t)n * cc->h + iy) * cc->w + ix) * cc->c + c
                                     : (((size_t)n * cc->c + c) * cc->h + iy) * cc->w + ix;
                    int gi = c / cg;
                    for (int mi = 0; mi < mg; mi++)
                        for (int ky = 0; ky < cc->r; ky++) {
                            int oy = iy * cc->sh - cc->pt + ky * cc->dh;
                            if (oy < 0 || oy >= cc->oh)
                                continue;
                            for (int kx = 0; kx < cc->s; kx++) {
                                int ox = ix * cc->sw - cc->pl + kx * cc->dw;
                                if (ox < 0 || ox >= cc->ow)
                                    continue;
                                int m = gi * mg + mi;
                                size_t wi = nhwc ? (((size_t)c * cc->r + ky) * cc->s + kx) * mg + mi
                                                 : (((size_t)c * mg + mi) * cc->r + ky) * cc->s + kx;
                                size_t yi = nhwc ? (((size_t)n * cc->oh + oy) * cc->ow + ox) * cc->m + m
                                                 : (((size_t)n * cc->m + m) * cc->oh + oy) * cc->ow + ox;
                                y[yi] += (double)x[xi] * w[wi];
                            }
                        }
                }
    for (size_t i = 0; i < ny; i++) {
        int m = nhwc ? (int)(i % (size_t)cc->m) : (int)(i / ((size_t)cc->oh * cc->ow) % (size_t)cc->m);
        y[i] = act_ref(cc->act, y[i] + (b ? b[m] : 0.0), 0.1, 0.0);
    }
}

/* The timed choice, every backward-data algorithm forced, and the timed code recreated. */
static void convt_test(const convt_case *cc, kc_dtype t, int nhwc)
{
    size_t nx = (size_t)cc->n * cc->c * cc->h * cc->w, nw = (size_t)cc->c * (cc->m / cc->g) * cc->r * cc->s;
    size_t ny = (size_t)cc->n * cc->m * cc->oh * cc->ow;
    float *hx = host_rand(nx, 1.0f, t), *hw = host_rand(nw, 0.5f, t), *hb = host_rand((size_t)cc->m, 0.5f, t);
    double *ref = malloc(ny * sizeof *ref);
    void *dx = dev_upload(hx, nx, t), *dw = dev_upload(hw, nw, t), *db = dev_upload(hb, (size_t)cc->m, t);
    void *dy = dev_poisoned(ny, t);
    kc_conv_desc d = {.t = t, .nhwc = nhwc, .transposed = true, .n = cc->n, .c = cc->c, .h = cc->h, .w = cc->w,
                      .k = cc->m, .r = cc->r, .s = cc->s, .oh = cc->oh, .ow = cc->ow, .pad_t = cc->pt,
                      .pad_l = cc->pl, .pad_b = cc->pt, .pad_r = cc->pl, .stride_h = cc->sh, .stride_w = cc->sw,
                      .dil_h = cc->dh, .dil_w = cc->dw, .groups = cc->g, .act = cc->act, .act_alpha = 0.1f,
                      .has_bias = cc->bias};
    char first_fail[768] = "", why[512] = "";
    double worst = 0;
    int timed = -1, ran = 0, refused = 0, failed = 0;
    if (!dx || !dw || !db || !dy || !ref) {
        snprintf(first_fail, sizeof first_fail, "allocation failed");
        failed = 1;
        goto report;
    }
    convt_ref(cc, nhwc, hx, hw, cc->bias ? hb : NULL, ref);
    for (int ai = -1; ai <= 6; ai++) {
        int algo = ai == 6 ? timed : ai;
        if (ai == 6 && timed < 0)
            break;
        kc_conv *cv = NULL;
        void *ws = NULL;
        if (kc_conv_create(g_dnn, &d, algo, WS_MAX, &cv, why, sizeof why)) {
            if (algo < 0 || ai == 6) {
                failed++;
                if (!first_fail[0])
                    snprintf(first_fail, sizeof first_fail, "create(algo %d): %s", algo, why);
            } else {
                refused++;
            }
            continue;
        }
        if (algo < 0)
            timed = kc_conv_algo(cv);
        int rc = 0;
        if (kc_conv_workspace(cv) && cudaMalloc(&ws, kc_conv_workspace(cv)) != cudaSuccess) {
            snprintf(why, sizeof why, "cudaMalloc workspace %zu", kc_conv_workspace(cv));
        } else {
            cudaMemset(dy, 0xFF, ny * esz(t));
            if (kc_conv_run(cv, dx, dw, cc->bias ? db : NULL, NULL, dy, ws, 0, why, sizeof why)) {
                (void)cudaGetLastError();
                rc = algo < 0 || ai == 6 ? 0 : -1;
            } else {
                unsigned char *poison = NULL;
                float *got = dev_download(dy, ny, t, &poison);
                if (got) {
                    err e = compare(got, ref, ny);
                    double tol = t == KC_F16 ? TOL_F16 : fft_like(kc_conv_algo(cv)) ? TOL_F32_FFT : TOL_F32;
                    if (e.rel_l2 > worst)
                        worst = e.rel_l2;
                    rc = e.bad == 0 && e.rel_l2 <= tol;
                    if (!rc)
                        snprintf(why, sizeof why, "rel_l2 %.3g (tol %.0e) max_abs %.3g, %zu unwritten/non-finite",
                                 e.rel_l2, tol, e.max_abs, e.bad);
                }
                free(got);
                free(poison);
            }
        }
        if (rc < 0) {
            refused++;
        } else {
            ran++;
            if (!rc) {
                failed++;
                if (!first_fail[0])
                    snprintf(first_fail, sizeof first_fail, "algo %d: %s", kc_conv_algo(cv), why);
            }
        }
        cudaFree(ws);
        kc_conv_destroy(cv);
    }
report:
    printf("%s convT %-21s %s %s: timed algo %d, %d runs (%d not offered), worst rel_l2 %.2e%s%s\n",
           failed ? "FAIL" : "ok  ", cc->name, tname(t), nhwc ? "nhwc" : "nchw", timed, ran, refused, worst,
           failed ? " — " : "", first_fail);
    failed ? n_fail++ : n_pass++;
    cudaFree(dx), cudaFree(dw), cudaFree(db), cudaFree(dy);
    free(hx), free(hw), free(hb), free(ref);
}

/* An output size the forward convolution does not map back onto the input is refused with the reason. */
static void convt_bad_size_refused(void)
{
    kc_conv_desc d = {.t = KC_F32, .transposed = true, .n = 1, .c = 4, .h = 5, .w = 5, .k = 4, .r = 3, .s = 3,
                      .oh = 17, .ow = 17, .stride_h = 2, .stride_w = 2, .dil_h = 1, .dil_w = 1, .groups = 1};
    kc_conv *cv = NULL;
    char why[512] = "";
    int rc = kc_conv_create(g_dnn, &d, -1, WS_MAX, &cv, why, sizeof why);
    bool ok = rc != 0 && cv == NULL && strstr(why, "convolve back") != NULL;
    printf("%s convT unmatched output size refused: %s\n", ok ? "ok  " : "FAIL", why);
    kc_conv_destroy(cv);
    ok ? n_pass++ : n_fail++;
}

/* ---- matrix products ----------------------------------------------------------------------- */

typedef struct gemm_case {
    int m, n, k, ta, tb, batch, bcast_a, bcast_b, bias, act;
    float alpha, beta; /* beta != 0: z */
    int ldy_pad, inplace_z, expect_refusal;
    const char *name;
    int ld8; /* 1: lda and ldb the rows' lengths + 8, not + 3 / + 1 (16-byte rows, as kc_gemv needs) */
} gemm_case;

static void gemm_test(const gemm_case *gc, kc_dtype t)
{
    int64_t m = gc->m, n = gc->n, k = gc->k, B = gc->batch;
    int64_t lda = (gc->ta ? m : k) + (gc->ld8 ? 8 : 3), ldb = (gc->tb ? k : n) + (gc->ld8 ? 8 : 1), ldy = n + gc->ldy_pad;
    int64_t arows = gc->ta ? k : m, brows = gc->tb ? n : k;
    int64_t sa = gc->bcast_a ? 0 : arows * lda, sb = gc->bcast_b ? 0 : brows * ldb, sy = m * ldy;
    size_t na = (size_t)((gc->bcast_a ? 1 : B) * arows * lda), nb = (size_t)((gc->bcast_b ? 1 : B) * brows * ldb);
    size_t ny = (size_t)(B * m * ldy);
    float *ha = host_rand(na, 1.0f, t), *hb = host_rand(nb, 1.0f, t), *hbias = host_rand((size_t)n, 1.0f, t);
    float *hz = host_rand(ny, 1.0f, t);
    double *ref = calloc(ny, sizeof *ref);
    bool use_z = gc->beta != 0.0f;
    for (int64_t bi = 0; bi < B; bi++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double acc = 0;
                for (int64_t l = 0; l < k; l++) {
                    double av = gc->ta ? ha[bi * sa + l * lda + i] : ha[bi * sa + i * lda + l];
                    double bv = gc->tb ? hb[bi * sb + j * ldb + l] : hb[bi * sb + l * ldb + j];
                    acc += av * bv;
                }
                acc *= gc->alpha;
                if (gc->bias)
                    acc += hbias[j];
                if (use_z)
                    acc += (double)gc->beta * hz[bi * sy + i * ldy + j];
                ref[bi * sy + i * ldy + j] = act_ref(gc->act, acc, 0.1, 0.0);
            }
    kc_gemm_desc d = {.t = t, .m = m, .n = n, .k = k, .trans_a = gc->ta, .trans_b = gc->tb, .lda = lda, .ldb = ldb,
                      .ldy = ldy, .batch = B, .stride_a = sa, .stride_b = sb, .stride_y = sy, .alpha = gc->alpha,
                      .beta = gc->beta, .has_bias = gc->bias, .has_z = use_z, .act = gc->act, .act_alpha = 0.1f};
    void *da = dev_upload(ha, na, t), *db = dev_upload(hb, nb, t), *dbias = dev_upload(hbias, (size_t)n, t);
    void *dz = dev_upload(hz, ny, t), *dy = dev_poisoned(ny, t);
    char first_fail[768] = "", why[512] = "";
    double worst = 0;
    int ran = 0, failed = 0, timed = -1;
    if (!da || !db || !dbias || !dz || !dy || !ref) {
        snprintf(first_fail, sizeof first_fail, "allocation failed");
        failed = 1;
        goto report;
    }
    if (gc->expect_refusal) {
        kc_gemm *g = NULL;
        int rc = kc_gemm_create(g_dnn, &d, -1, WS_MAX, &g, why, sizeof why);
        kc_gemm_destroy(g);
        if (rc == 0) {
            failed = 1;
            snprintf(first_fail, sizeof first_fail, "created, expected a refusal");
        } else {
            snprintf(first_fail, sizeof first_fail, "refused as expected: %s", why);
        }
        printf("%s gemm %-28s %s: %s\n", failed ? "FAIL" : "ok  ", gc->name, tname(t), first_fail);
        failed ? n_fail++ : n_pass++;
        goto cleanup;
    }
    /* the timed choice, every cuBLASLt candidate forced in turn, then the first two 3xTF32 forms (float32
       products they apply to; refused elsewhere), then kiln's few-row product (float16, m <= 4, 16-byte rows;
       refused elsewhere) */
    for (int ai = -1; ai < 11; ai++) {
        int algo = ai < 8 ? ai : ai < 10 ? KC_GEMM_ALGO_X3 + (ai - 8) : KC_GEMM_ALGO_GEMV;
        kc_gemm *g = NULL;
        if (kc_gemm_create(g_dnn, &d, algo, WS_MAX, &g, why, sizeof why)) {
            if (ai < 0) {
                failed++;
                snprintf(first_fail, sizeof first_fail, "create (timed): %s", why);
            }
            if (ai < 8)
                ai = 7; /* no more cuBLASLt candidates */
            continue;
        }
        if (algo < 0)
            timed = kc_gemm_algo(g);
        void *ws = NULL;
        if (kc_gemm_workspace(g) && cudaMalloc(&ws, kc_gemm_workspace(g)) != cudaSuccess) {
            failed++;
            snprintf(first_fail, sizeof first_fail, "workspace allocation failed");
            kc_gemm_destroy(g);
            break;
        }
        cudaMemset(dy, 0xFF, ny * esz(t));
        void *zp = dz;
        if (gc->inplace_z) { /* y holds z on entry (residual in place) */
            cudaMemcpy(dy, dz, ny * esz(t), cudaMemcpyDeviceToDevice);
            zp = dy;
        }
        ran++;
        if (kc_gemm_run(g, da, db, gc->bias ? dbias : NULL, use_z ? zp : NULL, dy, ws, 0, why, sizeof why)) {
            failed++;
            if (!first_fail[0])
                snprintf(first_fail, sizeof first_fail, "run (algo %d): %s", kc_gemm_algo(g), why);
        } else {
            unsigned char *poison = NULL;
            float *got = dev_download(dy, ny, t, &poison);
            if (!got) {
                failed++;
                snprintf(first_fail, sizeof first_fail, "download: %s", cudaGetErrorString(cudaGetLastError()));
            } else {
                /* written region vs reference; gaps (columns >= n) must still be poisoned,
                 * except in-place z where y held z */
                size_t nw = (size_t)(B * m * n), gaps_bad = 0, w = 0;
                float *gv = malloc(nw * sizeof *gv);
                double *rv = malloc(nw * sizeof *rv);
                for (int64_t bi = 0; bi < B; bi++)
                    for (int64_t i = 0; i < m; i++)
                        for (int64_t j = 0; j < ldy; j++) {
                            size_t idx = (size_t)(bi * sy + i * ldy + j);
                            if (j < n) {
                                gv[w] = got[idx];
                                rv[w++] = ref[idx];
                            } else if (!gc->inplace_z && !poison[idx]) {
                                gaps_bad++;
                            }
                        }
                err e = compare(gv, rv, nw);
                double tol = t == KC_F16 ? TOL_F16 : TOL_F32;
                if (e.rel_l2 > worst)
                    worst = e.rel_l2;
                if (e.bad || gaps_bad || e.rel_l2 > tol) {
                    failed++;
                    if (!first_fail[0])
                        snprintf(first_fail, sizeof first_fail,
                                 "algo %d: rel_l2 %.3g (tol %.0e) max_abs %.3g, %zu non-finite, %zu gap writes",
                                 kc_gemm_algo(g), e.rel_l2, tol, e.max_abs, e.bad, gaps_bad);
                }
                free(gv), free(rv), free(got), free(poison);
            }
        }
        cudaFree(ws);
        kc_gemm_destroy(g);
    }
report:
    printf("%s gemm %-28s %s: timed candidate %d, %d runs, worst rel_l2 %.2e%s%s\n", failed ? "FAIL" : "ok  ",
           gc->name, tname(t), timed, ran, worst, failed ? " — " : "", first_fail);
    failed ? n_fail++ : n_pass++;
cleanup:
    cudaFree(da), cudaFree(db), cudaFree(dbias), cudaFree(dz), cudaFree(dy);
    free(ha), free(hb), free(hbias), free(hz), free(ref);
}

/* ---- attention ------------------------------------------------------------------------------ */

typedef struct attn_case {
    int b, sq, sk, h, d, dv, seq_first;
    int packed;       /* 1: Q|K|V in one tensor, ld = 3*H*D; 2: ld = 3*H*D + 3 (unaligned rows) */
    int mask;         /* 0 none, 1 [B,1,1,Sk], 2 [1,1,Sq,Sk], 3 [B,1,Sq,Sk], 4 [B,Sq,H,Sk] permuted, 5 [B,H,1,Sk],
                       * 6 [1,1,Sq,Sk] with -inf: row 0 all (NaN output), row 1 the first min(Sk-1, 70) keys */
    int mask_f32;     /* mask dtype float32 (else t) */
    const char *name;
    int rel_kw;       /* > 0: SAM's decomposed relative positions instead of a mask: key j adds
                       * m[b,h,q,j / rel_kw] + m2[b,h,q,j % rel_kw] (both dense, mask dtype) */
} attn_case;

static void attn_test(const attn_case *ac, kc_dtype t)
{
    int64_t B = ac->b, Sq = ac->sq, Sk = ac->sk, H = ac->h, D = ac->d, Dv = ac->dv;
    int64_t ldq = H * D, ldk = H * D, ldv = H * Dv;
    if (ac->packed)
        ldq = ldk = ldv = 3 * H * D + (ac->packed == 2 ? 3 : 0); /* [Q | K | V] rows; Sq == Sk, D == Dv */
    size_t nq = (size_t)(B * Sq * ldq), nk = (size_t)(B * Sk * ldk), nv = (size_t)(B * Sk * ldv);
    float *hq = host_rand(nq, 1.0f, t), *hk = ac->packed ? hq : host_rand(nk, 1.0f, t);
    float *hv = ac->packed ? hq : host_rand(nv, 1.0f, t);
    int64_t koff = ac->packed ? H * D : 0, voff = ac->packed ? 2 * H * D : 0;
    int64_t msb = 0, msh = 0, msq = 0, msk = 1;
    size_t nm = 1;
    switch (ac->mask) {
    case 1: msb = Sk; nm = (size_t)(B * Sk); break;
    case 2: msq = Sk; nm = (size_t)(Sq * Sk); break;
    case 3: msb = Sq * Sk; msq = Sk; nm = (size_t)(B * Sq * Sk); break;
    case 4: msb = Sq * H * Sk; msq = H * Sk; msh = Sk; nm = (size_t)(B * Sq * H * Sk); break;
    case 5: msb = H * Sk; msh = Sk; nm = (size_t)(B * H * Sk); break;
    case 6: msq = Sk; nm = (size_t)(Sq * Sk); break;
    default: break;
    }
    int64_t KW = ac->rel_kw, KH = KW ? Sk / KW : 0;
    size_t nm2 = 1;
    if (KW) {
        msb = H * Sq * KH, msh = Sq * KH, msq = KH, msk = 1;
        nm = (size_t)(B * H * Sq * KH), nm2 = (size_t)(B * H * Sq * KW);
    }
    kc_dtype mt = ac->mask_f32 ? KC_F32 : t;
    float *hm = host_rand(nm, 2.0f, mt), *hm2 = host_rand(nm2, 2.0f, mt);
    if (ac->mask == 1) /* key padding: the last two keys of batch 1 masked out */
        for (int64_t j = 0; j < Sk; j++)
            hm[1 * Sk + j] = j >= Sk - 2 ? -10000.0f : 0.0f;
    if (ac->mask == 6)
        for (int64_t j = 0; j < Sk; j++) {
            hm[j] = -INFINITY;
            if (Sq > 1 && j < (Sk - 1 < 70 ? Sk - 1 : 70))
                hm[Sk + j] = -INFINITY;
        }
    float scale = 1.0f / sqrtf((float)D);
    size_t ny = (size_t)(B * Sq * H * Dv);
    double *ref = malloc(ny * sizeof *ref), *p = malloc((size_t)Sk * sizeof *p);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < Sq; i++) {
                int64_t qrow = ac->seq_first ? i * B + b : b * Sq + i;
                double mx = -INFINITY;
                for (int64_t j = 0; j < Sk; j++) {
                    int64_t krow = ac->seq_first ? j * B + b : b * Sk + j;
                    double s = 0;
                    for (int64_t x = 0; x < D; x++)
                        s += (double)hq[qrow * ldq + h * D + x] * hk[krow * ldk + koff + h * D + x];
                    s *= scale;
                    if (KW)
                        s += hm[b * msb + h * msh + i * msq + (j / KW) * msk] +
                             hm2[b * H * Sq * KW + h * Sq * KW + i * KW + j % KW];
                    else if (ac->mask)
                        s += hm[b * msb + h * msh + i * msq + j * msk];
                    p[j] = s;
                    if (s > mx)
                        mx = s;
                }
                double sum = 0;
                for (int64_t j = 0; j < Sk; j++)
                    sum += (p[j] = mx == -INFINITY ? NAN : exp(p[j] - mx)); /* no finite score: NaN */
                for (int64_t x = 0; x < Dv; x++) {
                    double o = 0;
                    for (int64_t j = 0; j < Sk; j++) {
                        int64_t vrow = ac->seq_first ? j * B + b : b * Sk + j;
                        o += p[j] / sum * hv[vrow * ldv + voff + h * Dv + x];
                    }
                    ref[qrow * H * Dv + h * Dv + x] = o;
                }
            }
    void *dq = dev_upload(hq, nq, t), *dk = ac->packed ? dq : dev_upload(hk, nk, t);
    void *dv = ac->packed ? dq : dev_upload(hv, nv, t), *dm = dev_upload(hm, nm, mt), *dy = dev_poisoned(ny, t);
    void *dm2 = dev_upload(hm2, nm2, mt);
    /* the fused kernel's tilings each forced in turn where they apply (head size 64, no relative
       positions), else the kernel's own choice */
    bool eligible = t == KC_F16 && D == Dv && (D == 64 || D == 128);
    /* ... and each timed at create (-1), the fastest kept */
    static const int tilings[] = {KC_FLASH_ONE_MTILE, KC_FLASH_TWO_MTILES, KC_FLASH_SPLIT_KEYS, KC_FLASH_H2EXP, -1};
    int ntil = eligible && D == 64 && !KW ? 5 : 1;
    for (int vi = 0; vi < ntil; vi++) {
        int var = ntil > 1 ? tilings[vi] : 0;
        if ((var == KC_FLASH_SPLIT_KEYS && Sk <= 64) || (var == KC_FLASH_H2EXP && ac->mask))
            continue; /* one key tile: nothing to split; float16 exponentials: no mask */
        if (vi > 0) {
            cudaFree(dy);
            dy = dev_poisoned(ny, t);
        }
        kc_attn_desc d = {.t = t, .b = B, .sq = Sq, .sk = Sk, .h = H, .d = D, .dv = Dv, .ldq = ldq, .ldk = ldk,
                          .ldv = ldv, .seq_first = ac->seq_first, .scale = scale, .has_mask = ac->mask != 0 || KW,
                          .mask_t = mt, .mask_stride_b = msb, .mask_stride_h = msh, .mask_stride_q = msq,
                          .mask_stride_k = msk, .rel_kw = KW, .mask2_stride_b = H * Sq * KW, .mask2_stride_h = Sq * KW,
                          .mask2_stride_q = KW, .mask2_stride_k = 1,
                          .flash_variant = var};
        kc_attn *a = NULL;
        void *ws = NULL;
        char why[512] = "", fail[768] = "";
        err e = {0, 0, 0};
        bool refused = false;
        if (!dq || !dk || !dv || !dm || !dm2 || !dy || !ref || !p) {
            snprintf(fail, sizeof fail, "allocation failed");
        } else if (KW && !(t == KC_F16 && D == Dv && (D == 64 || D == 128))) {
            /* the relative-position bias is the fused kernel's alone: refused elsewhere */
            if (!kc_attn_create(g_dnn, &d, &a, why, sizeof why))
                snprintf(fail, sizeof fail, "a relative-position bias was accepted outside the fused kernel");
            refused = true;
        } else if (kc_attn_create(g_dnn, &d, &a, why, sizeof why)) {
            snprintf(fail, sizeof fail, "create: %s", why);
        } else if (cudaMalloc(&ws, kc_attn_workspace(a)) != cudaSuccess) {
            snprintf(fail, sizeof fail, "workspace %zu: cudaMalloc failed", kc_attn_workspace(a));
        } else {
            const char *base = dq;
            const void *qp = dq, *kp = ac->packed ? base + koff * esz(t) : dk, *vp = ac->packed ? base + voff * esz(t) : dv;
            if (kc_attn_run(a, qp, kp, vp, ac->mask || KW ? dm : NULL, KW ? dm2 : NULL, dy, ws, 0, why, sizeof why)) {
                snprintf(fail, sizeof fail, "run: %s", why);
            } else {
                unsigned char *poison = NULL;
                float *got = dev_download(dy, ny, t, &poison);
                if (!got) {
                    snprintf(fail, sizeof fail, "download: %s", cudaGetErrorString(cudaGetLastError()));
                } else {
                    e = compare(got, ref, ny);
                    for (size_t i = 0; i < ny; i++) /* a NaN the kernel wrote, not the 0xFF poison */
                        e.bad += poison[i] && isnan(ref[i]);
                    double tol = t == KC_F16 ? TOL_F16 : TOL_F32;
                    if (e.bad || e.rel_l2 > tol)
                        snprintf(fail, sizeof fail, "rel_l2 %.3g (tol %.0e) max_abs %.3g, %zu unwritten/non-finite",
                                 e.rel_l2, tol, e.max_abs, e.bad);
                    free(got), free(poison);
                }
            }
        }
        if (a && eligible)
            kc_attn_is_fused(a) ? n_fused++ : n_unfused_eligible++;
        static const char *const vnames[] = {"", " 1x16", " 2x16", " split", " h2exp"}; /* timed: "t" after it */
        int ran = kc_attn_flash_variant(a);
        if (var > 0 ? ran != var : var < 0 && (ran < KC_FLASH_ONE_MTILE || ran > KC_FLASH_LAST))
            snprintf(fail + strlen(fail), sizeof fail - strlen(fail), "%sforced tiling %d ran as %d", fail[0] ? "; " : "",
                     var, ran);
        printf("%s attn %-40s %s: %-7s%-6s%s rel_l2 %.2e, workspace %zu%s%s\n", fail[0] ? "FAIL" : "ok  ", ac->name,
               tname(t), refused ? "refused" : !a ? "-" : kc_attn_is_fused(a) ? "fused" : "unfused",
               ran >= 1 && ran <= KC_FLASH_LAST ? vnames[ran] : "", var < 0 ? "t" : "", e.rel_l2,
               a ? kc_attn_workspace(a) : (size_t)0, fail[0] ? " — " : "", fail);
        fail[0] ? n_fail++ : n_pass++;
        kc_attn_destroy(a);
        a = NULL;
        cudaFree(ws);
    }
    cudaFree(dq), cudaFree(dm), cudaFree(dm2), cudaFree(dy);
    if (!ac->packed)
        cudaFree(dk), cudaFree(dv), free(hk), free(hv);
    free(hq), free(hm), free(hm2), free(ref), free(p);
}

/* The unfused attention of kc_attn_run (head splits, Q K^T, softmax, P V,
 * head merge) from the public pieces, for timing against the fused kernel. */
typedef struct unfused_attn {
    int64_t b, s, h, d, ld;
    kc_gemm *qk, *pv;
    void *qs, *ks, *vs, *sc, *os, *gws;
} unfused_attn;

static int unfused_run(const unfused_attn *u, const char *qkv, void *y, char *why, size_t why_size)
{
    size_t hd = (size_t)(u->h * u->d) * 2;
    if (kc_heads_split(u->qs, qkv, u->b, u->s, u->h, u->d, u->ld, 0, KC_F16, 0) ||
        kc_heads_split(u->ks, qkv + hd, u->b, u->s, u->h, u->d, u->ld, 0, KC_F16, 0) ||
        kc_heads_split(u->vs, qkv + 2 * hd, u->b, u->s, u->h, u->d, u->ld, 0, KC_F16, 0))
        return snprintf(why, why_size, "kc_heads_split failed"), -1;
    if (kc_gemm_run(u->qk, u->qs, u->ks, NULL, NULL, u->sc, u->gws, 0, why, why_size))
        return -1;
    if (kc_softmax(u->sc, u->sc, u->b * u->h * u->s, u->s, 1, 1.0f, NULL, KC_F32, 1, 1, 0, 0, 0, KC_F16, 0))
        return snprintf(why, why_size, "kc_softmax failed"), -1;
    if (kc_gemm_run(u->pv, u->sc, u->vs, NULL, NULL, u->os, u->gws, 0, why, why_size))
        return -1;
    if (kc_heads_merge(y, u->os, u->b, u->s, u->h, u->d, 0, KC_F16, 0))
        return snprintf(why, why_size, "kc_heads_merge failed"), -1;
    return 0;
}

static int cmp_float(const void *x, const void *y)
{
    float a = *(const float *)x, b = *(const float *)y;
    return a < b ? -1 : a > b;
}

/* ViT-B/16 attention at batch 256 (B 256, S 197, H 12, D 64, packed QKV,
 * float16): median of 20 runs (CUDA events) of kc_attn (fused when it
 * applies) and of the unfused pipeline.  Printed, not asserted. */
static void attn_timing(void)
{
    enum { RUNS = 20, WARMUP = 3 };
    const int64_t B = 256, S = 197, H = 12, D = 64, ld = 3 * H * D, bh = B * H;
    size_t nqkv = (size_t)(B * S * ld), ny = (size_t)(B * S * H * D);
    size_t sz_split = (size_t)(bh * S * D) * 2, sz_s = (size_t)(bh * S * S) * 2;
    kc_attn_desc d = {.t = KC_F16, .b = B, .sq = S, .sk = S, .h = H, .d = D, .dv = D, .ldq = ld, .ldk = ld,
                      .ldv = ld, .scale = 0.125f};
    kc_gemm_desc gq = {.t = KC_F16, .m = S, .n = S, .k = D, .trans_b = true, .lda = D, .ldb = D, .ldy = S,
                       .batch = bh, .stride_a = S * D, .stride_b = S * D, .stride_y = S * S, .alpha = 0.125f};
    kc_gemm_desc gp = {.t = KC_F16, .m = S, .n = D, .k = S, .lda = S, .ldb = D, .ldy = D, .batch = bh,
                       .stride_a = S * S, .stride_b = S * D, .stride_y = S * D, .alpha = 1.0f};
    unfused_attn u = {.b = B, .s = S, .h = H, .d = D, .ld = ld};
    kc_attn *a = NULL;
    char *qkv = NULL, *uws = NULL;
    void *y = NULL, *aws = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    float tm[2][RUNS];
    char why[512] = "";
    if (cudaMalloc((void **)&qkv, nqkv * 2) || cudaMalloc(&y, ny * 2) || cudaMemset(qkv, 0x30, nqkv * 2) ||
        cudaEventCreate(&e0) || cudaEventCreate(&e1)) {
        snprintf(why, sizeof why, "cuda allocation failed");
    } else if (kc_attn_create(g_dnn, &d, &a, why, sizeof why) ||
               kc_gemm_create(g_dnn, &gq, 0, WS_MAX, &u.qk, why, sizeof why) ||
               kc_gemm_create(g_dnn, &gp, 0, WS_MAX, &u.pv, why, sizeof why)) {
        /* why set */
    } else {
        size_t gws = kc_gemm_workspace(u.qk) > kc_gemm_workspace(u.pv) ? kc_gemm_workspace(u.qk)
                                                                       : kc_gemm_workspace(u.pv);
        size_t aw = kc_attn_workspace(a) ? kc_attn_workspace(a) : 256;
        if (cudaMalloc(&aws, aw) || cudaMalloc((void **)&uws, 4 * sz_split + sz_s + gws + 256)) {
            snprintf(why, sizeof why, "workspace: cudaMalloc failed");
        } else {
            u.qs = uws, u.ks = uws + sz_split, u.vs = uws + 2 * sz_split, u.os = uws + 3 * sz_split;
            u.sc = uws + 4 * sz_split, u.gws = uws + 4 * sz_split + sz_s;
            size_t hd = (size_t)(H * D) * 2;
            for (int path = 0; path < 2 && !why[0]; path++)
                for (int r = -WARMUP; r < RUNS && !why[0]; r++) {
                    int rc = cudaEventRecord(e0, 0) != cudaSuccess;
                    if (!rc)
                        rc = path == 0 ? kc_attn_run(a, qkv, qkv + hd, qkv + 2 * hd, NULL, NULL, y, aws, 0, why, sizeof why)
                                       : unfused_run(&u, qkv, y, why, sizeof why);
                    if (!rc && (cudaEventRecord(e1, 0) || cudaEventSynchronize(e1)))
                        rc = snprintf(why, sizeof why, "%s", cudaGetErrorString(cudaGetLastError()));
                    if (rc && !why[0])
                        snprintf(why, sizeof why, "run failed");
                    if (!rc && r >= 0 && cudaEventElapsedTime(&tm[path][r], e0, e1))
                        snprintf(why, sizeof why, "cudaEventElapsedTime failed");
                }
        }
    }
    if (why[0]) {
        printf("time attn B256 S197 H12 D64 f16: not measured — %s\n", why);
    } else {
        qsort(tm[0], RUNS, sizeof(float), cmp_float);
        qsort(tm[1], RUNS, sizeof(float), cmp_float);
        float f = (tm[0][RUNS / 2 - 1] + tm[0][RUNS / 2]) / 2, uf = (tm[1][RUNS / 2 - 1] + tm[1][RUNS / 2]) / 2;
        printf("time attn B256 S197 H12 D64 f16 packed: kc_attn (%s) %.3f ms, unfused %.3f ms, speedup x%.2f "
               "(median of %d)\n",
               kc_attn_is_fused(a) ? "fused" : "unfused", f, uf, f > 0 ? uf / f : 0.0, RUNS);
    }
    kc_attn_destroy(a);
    kc_gemm_destroy(u.qk);
    kc_gemm_destroy(u.pv);
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    cudaFree(qkv), cudaFree(y), cudaFree(aws), cudaFree(uws);
}

/* ---- main ------------------------------------------------------------------------------------ */

int main(void)
{
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        printf("test_cuda_dnn: no CUDA device, skipped\n");
        return 77;
    }
    char why[512] = "", ver[128] = "";
    if (kc_dnn_create(&g_dnn, why, sizeof why)) {
        printf("FAIL kc_dnn_create: %s\n", why);
        return 1;
    }
    kc_dnn_versions(ver, sizeof ver);
    printf("test_cuda_dnn: %s (cudnn %zu, cublasLt %zu)\n", ver, kc_dnn_cudnn_version(), kc_dnn_cublaslt_version());

    /* n c h w k r s pt pl pb pr sh sw dh dw g act bias z */
    static const conv_case convs[] = {
        {2, 16, 7, 7, 32, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, true, false, "1x1 bias relu"},
        {3, 17, 5, 9, 24, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, true, true, "1x1 b3 odd bias z relu"},
        {2, 64, 14, 14, 96, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 5, true, false, "1x1 64->96 bias silu"},
        {1, 8, 17, 17, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, true, true, "3x3 p1 s1 bias z"},
        {2, 16, 15, 15, 24, 3, 3, 1, 1, 1, 1, 2, 2, 1, 1, 1, 5, true, false, "3x3 p1 s2 bias silu"},
        {1, 32, 14, 14, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 32, 1, true, false, "depthwise 3x3 relu"},
        {2, 24, 15, 13, 24, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 24, 5, true, false, "depthwise 5x5 s2 silu"},
        {3, 16, 9, 11, 16, 3, 3, 1, 1, 1, 1, 2, 2, 1, 1, 16, 0, false, true, "depthwise 3x3 s2 z"},
        {1, 272, 7, 7, 272, 3, 3, 2, 2, 2, 2, 1, 1, 2, 2, 272, 7, true, false, "depthwise 272ch dil2 hswish"},
        {2, 8, 12, 12, 8, 7, 7, 3, 3, 3, 3, 1, 1, 1, 1, 8, 4, true, true, "depthwise 7x7 bias z sigmoid"},
        {1, 12, 8, 8, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 12, 1, true, false, "depthwise 12ch (cudnn only)"},
        {1, 672, 14, 14, 672, 5, 5, 2, 2, 2, 2, 1, 1, 1, 1, 672, 5, true, false, "depthwise 5x5 672ch silu"},
        {1, 96, 15, 15, 96, 3, 3, 1, 1, 1, 1, 2, 2, 1, 1, 96, 5, true, true, "depthwise 3x3 s2 96ch z silu"},
        /* over 2^18 (pixel, 8-channel) items: kiln's depthwise kernel in its run form */
        {5, 144, 56, 54, 144, 5, 5, 2, 2, 2, 2, 1, 1, 1, 1, 144, 5, true, true, "depthwise 5x5 large z silu"},
        {8, 96, 112, 111, 96, 3, 3, 1, 1, 1, 1, 2, 2, 1, 1, 96, 5, true, false, "depthwise 3x3 s2 large silu"},
        {2, 16, 9, 9, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4, 0, false, false, "grouped g4 plain"},
        {1, 8, 13, 13, 8, 3, 3, 2, 2, 2, 2, 1, 1, 2, 2, 1, 1, false, true, "dilation 2 z relu"},
        {1, 3, 32, 32, 16, 7, 7, 3, 3, 3, 3, 2, 2, 1, 1, 1, 1, true, false, "7x7 s2 stem bias relu"},
        {1, 8, 9, 9, 8, 3, 3, 1, 1, 2, 2, 2, 2, 1, 1, 1, 8, true, true, "asym pad (same size) gelu"},
        {3, 5, 6, 7, 7, 2, 3, 0, 1, 0, 1, 1, 2, 1, 1, 1, 0, true, false, "odd 2x3 bias"},
        {2, 24, 10, 11, 40, 3, 3, 0, 1, 0, 1, 2, 1, 1, 1, 1, 5, true, true, "3x3 s2x1 bias z silu"},
        {1, 2, 9, 9, 16, 2, 4, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1, true, false, "2x4 2ch bias relu"},
        {1, 16, 58, 58, 64, 4, 4, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, true, false, "4x4 16ch stem-like relu"},
        {2, 48, 19, 21, 130, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5, true, true, "3x3 48->130 bias z silu"},
        {1, 256, 7, 7, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, false, "3x3 256ch 7x7 relu"},
        {4, 32, 40, 40, 64, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 5, true, false, "1x1 b4 32->64 silu"},
        /* kiln's few-channel 1x1 kernel: one and two K-steps (24 channels: the second half-empty), 16 pixels a
         * warp with a ragged last group, 48 output channels a chunk with a partial last chunk, residual */
        {2, 16, 13, 11, 96, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 5, true, false, "1x1 16->96 silu"},
        {3, 24, 7, 9, 144, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 5, true, true, "1x1 24->144 bias z silu"},
        {1, 8, 5, 5, 40, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, false, false, "1x1 8->40 plain"},
        {2, 32, 6, 5, 24, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, true, true, "1x1 32->24 bias z relu"},
        {2, 40, 7, 6, 240, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 5, true, false, "1x1 40->240 silu"},
        {1, 64, 9, 7, 72, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 7, true, true, "1x1 64->72 bias z hswish"},
        {1, 8, 23, 23, 18, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 1, 7, false, false, "5x5 s2 8ch hswish"},
        /* YOLOv8n's 20x20 C2f convolution: 26 tiles of 32x32, the split-K tactics' case */
        {1, 128, 20, 20, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5, true, true, "3x3 128->64 20x20 bias z silu"},
        /* 9 K-tiles: split 4 ways as 3 of 3 */
        {1, 32, 9, 9, 34, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5, true, false, "3x3 32->34 9 k-tiles silu"},
        /* float32 implicit GEMM (3xTF32): 4-channel pieces (C % 8 != 0), and YOLOv8n's 80-channel detect
         * head (R*S*C = 720: 45 float32 K-tiles of accumulation) */
        {2, 12, 11, 13, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5, true, true, "3x3 12ch bias z silu"},
        {2, 80, 20, 20, 80, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5, true, false, "3x3 80->80 head silu"},
        {1, 4, 33, 31, 6, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 1, 0, true, false, "5x5 s2 4ch bias"},
        /* R*S*C = 4608 (ResNet-50's layer4): 288 float32 K-tiles, where the tensor cores' own
         * rounding, summed over the whole length, exceeded float32's tolerance */
        {1, 512, 7, 7, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, true, "3x3 512ch long K z relu"},
    };
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
        conv_test(&convs[i], KC_F32, 0);
        conv_test(&convs[i], KC_F32, 1);
        conv_test(&convs[i], KC_F16, 0);
        conv_test(&convs[i], KC_F16, 1);
    }
    conv_asym_refused();
    /* channel slabs: YOLOv8n's C2f shapes (3x3 and 1x1, SiLU, with and without a residual) */
    static const conv_case slabs[] = {
        {2, 16, 12, 10, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5, true, true, "3x3 16 z silu"},
        {2, 32, 9, 11, 24, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 5, true, false, "1x1 32->24 silu"},
        {1, 24, 14, 14, 40, 3, 3, 1, 1, 1, 1, 2, 2, 1, 1, 1, 1, true, false, "3x3 s2 24->40 relu"},
    };
    for (size_t i = 0; i < sizeof slabs / sizeof slabs[0]; i++) {
        conv_slab_test(&slabs[i], KC_F32, 0);
        conv_slab_test(&slabs[i], KC_F32, 1);
        conv_slab_test(&slabs[i], KC_F16, 0);
        conv_slab_test(&slabs[i], KC_F16, 1);
    }

    /* n c h w m r s pt pl oh ow sh sw dh dw g act bias: oh = sh*(h-1) + dh*(r-1) + 1 - pt - pe (+ output padding) */
    static const convt_case convts[] = {
        {1, 16, 8, 8, 8, 2, 2, 0, 0, 16, 16, 2, 2, 1, 1, 1, 0, true, "2x2/2 (U-Net up)"},
        {2, 32, 7, 9, 16, 4, 4, 1, 1, 14, 18, 2, 2, 1, 1, 1, 1, true, "4x4/2 p1 relu"},
        {1, 8, 6, 5, 8, 3, 3, 1, 1, 12, 10, 2, 2, 1, 1, 2, 0, true, "3x3/2 p1 op1 g2"},
        {2, 3, 5, 7, 5, 3, 3, 0, 0, 7, 9, 1, 1, 1, 1, 1, 0, false, "3x3/1 3->5 no bias"},
        {1, 6, 4, 4, 4, 3, 2, 1, 0, 14, 12, 3, 3, 2, 1, 1, 5, true, "3x2 s3 dil2x1 op2,1 silu"},
        {1, 64, 16, 16, 32, 2, 2, 0, 0, 32, 32, 2, 2, 1, 1, 1, 1, true, "2x2/2 64->32 relu"},
    };
    for (size_t i = 0; i < sizeof convts / sizeof convts[0]; i++) {
        convt_test(&convts[i], KC_F32, 0);
        convt_test(&convts[i], KC_F32, 1);
        convt_test(&convts[i], KC_F16, 0);
        convt_test(&convts[i], KC_F16, 1);
    }
    convt_bad_size_refused();

    /* m n k ta tb batch bcast_a bcast_b bias act alpha beta ldy_pad inplace_z expect_refusal */
    static const gemm_case gemms[] = {
        {1, 7, 63, 0, 0, 1, 0, 0, 1, 1, 1.0f, 0.0f, 0, 0, 0, "1x7x63 bias relu"},
        {7, 63, 197, 0, 1, 1, 0, 0, 1, 9, 1.0f, 0.0f, 0, 0, 0, "7x63x197 tb bias gelu-tanh"},
        {197, 64, 7, 1, 0, 1, 0, 0, 0, 8, 1.0f, 0.0f, 0, 0, 0, "197x64x7 ta gelu-erf"},
        {63, 197, 1, 1, 1, 1, 0, 0, 1, 5, 0.5f, 0.0f, 0, 0, 0, "63x197x1 ta tb bias silu a.5"},
        {64, 128, 256, 0, 0, 3, 0, 1, 1, 0, 1.0f, 1.0f, 0, 0, 0, "b3 bcast-B bias z"},
        {17, 33, 64, 0, 1, 4, 1, 0, 0, 1, 1.0f, 0.0f, 5, 0, 0, "b4 bcast-A tb relu ldy+5"},
        {32, 48, 40, 0, 0, 2, 0, 0, 1, 0, 1.0f, 0.5f, 3, 0, 0, "b2 bias .5z ldy+3"},
        {7, 7, 7, 0, 0, 1, 0, 0, 0, 1, 1.0f, 1.0f, 0, 1, 0, "7x7x7 in-place z relu"},
        {197, 197, 64, 0, 1, 6, 0, 0, 0, 0, 0.125f, 0.0f, 0, 0, 0, "b6 197x197x64 tb a.125"},
        {16, 16, 16, 0, 0, 1, 0, 0, 1, 5, 1.0f, 0.0f, 2, 0, 1, "silu with ldy+2 (refused)"},
        /* large enough for the timed choice to weigh the 3xTF32 form in float32 */
        {394, 768, 768, 0, 1, 1, 0, 0, 1, 9, 1.0f, 0.0f, 0, 0, 0, "394x768x768 tb bias gelu-tanh"},
        {300, 1024, 512, 0, 0, 1, 0, 0, 1, 0, 1.0f, 1.0f, 3, 0, 0, "300x1024x512 bias z ldy+3"},
        /* a few rows (kiln's few-row product in float16): ViT-B/16's class-token MLP and head at batch 1, K split
           over blocks or not, every row count, tails of the 256-column tiles, alpha, z, in-place z */
        {1, 3072, 768, 0, 0, 1, 0, 0, 1, 9, 1.0f, 0.0f, 0, 0, 0, "1x3072x768 bias gelu-tanh", 1},
        {1, 768, 3072, 0, 0, 1, 0, 0, 1, 0, 1.0f, 1.0f, 0, 0, 0, "1x768x3072 bias z", 1},
        {1, 1000, 768, 0, 1, 1, 0, 0, 1, 0, 1.0f, 0.0f, 0, 0, 0, "1x1000x768 tb bias", 1},
        {2, 264, 200, 0, 1, 1, 0, 0, 1, 1, 0.5f, 0.0f, 3, 0, 0, "2x264x200 tb bias relu a.5 ldy+3", 1},
        {3, 40, 1000, 0, 0, 1, 0, 0, 0, 1, 1.0f, 0.7f, 0, 0, 0, "3x40x1000 relu .7z", 1},
        {4, 520, 72, 0, 0, 1, 0, 0, 1, 8, 1.0f, 0.0f, 0, 0, 0, "4x520x72 bias gelu-erf", 1},
        {4, 520, 72, 0, 0, 1, 0, 0, 1, 1, 1.0f, 0.0f, 5, 0, 0, "4x520x72 bias relu ldy+5", 1},
        {4, 16, 8, 0, 1, 1, 0, 0, 0, 0, 1.0f, 1.0f, 0, 1, 0, "4x16x8 tb in-place z", 1},
        {5, 64, 64, 0, 0, 1, 0, 0, 1, 0, 1.0f, 0.0f, 0, 0, 0, "5x64x64 bias (no few-row form)", 1},
    };
    for (size_t i = 0; i < sizeof gemms / sizeof gemms[0]; i++) {
        gemm_test(&gemms[i], KC_F32);
        gemm_test(&gemms[i], KC_F16);
    }

    /* b sq sk h d dv seq_first packed mask mask_f32 */
    static const attn_case attns[] = {
        {2, 7, 7, 3, 64, 64, 0, 0, 0, 0, "B2 S7 H3 D64"},
        {2, 7, 7, 3, 64, 64, 0, 0, 1, 1, "S7 key-padding mask f32"},
        {2, 197, 197, 3, 64, 64, 0, 1, 0, 0, "S197 packed QKV"},
        {2, 197, 197, 3, 64, 64, 0, 0, 2, 0, "S197 mask [1,1,Sq,Sk] t"},
        {2, 7, 11, 3, 64, 32, 1, 0, 3, 1, "Sq7 Sk11 Dv32 seq-first [B,1,Sq,Sk]"},
        {2, 7, 7, 3, 64, 64, 0, 0, 4, 0, "S7 permuted mask (per head)"},
        {2, 7, 7, 3, 64, 64, 1, 1, 5, 1, "S7 packed seq-first [B,H,1,Sk]"},
        {2, 7, 7, 3, 64, 64, 0, 0, 6, 0, "S7 -inf rows (NaN row) t"},
        {2, 35, 35, 1, 64, 64, 0, 0, 0, 0, "rel-pos 7x5 (refused in f32)", 5},
    };
    for (size_t i = 0; i < sizeof attns / sizeof attns[0]; i++) {
        attn_test(&attns[i], KC_F32);
        attn_test(&attns[i], KC_F16);
    }
    /* flash-eligible (float16, D == Dv in {64, 128}): every tail of the 64-row / 64-key tiles */
    static const attn_case flash[] = {
        {2, 1, 1, 3, 64, 64, 0, 0, 0, 0, "flash S1 D64"},
        {2, 64, 64, 3, 64, 64, 0, 0, 0, 0, "flash S64 D64"},
        {2, 197, 197, 3, 64, 64, 0, 0, 0, 0, "flash S197 D64"},
        {2, 257, 257, 3, 64, 64, 0, 0, 0, 0, "flash S257 D64"},
        {2, 1, 1, 3, 128, 128, 0, 0, 0, 0, "flash S1 D128"},
        {2, 7, 7, 3, 128, 128, 0, 0, 0, 0, "flash S7 D128"},
        {2, 64, 64, 3, 128, 128, 0, 0, 0, 0, "flash S64 D128"},
        {2, 197, 197, 3, 128, 128, 0, 0, 0, 0, "flash S197 D128"},
        {2, 257, 257, 3, 128, 128, 0, 0, 0, 0, "flash S257 D128"},
        {2, 197, 197, 3, 64, 64, 0, 0, 1, 1, "flash S197 D64 key-pad f32"},
        {2, 257, 257, 3, 64, 64, 0, 0, 2, 0, "flash S257 D64 [1,1,Sq,Sk]"},
        {2, 64, 64, 3, 128, 128, 0, 0, 3, 1, "flash S64 D128 [B,1,Sq,Sk] f32"},
        {2, 197, 197, 3, 128, 128, 0, 0, 4, 0, "flash S197 D128 permuted mask"},
        {2, 7, 7, 3, 128, 128, 0, 0, 5, 1, "flash S7 D128 [B,H,1,Sk] f32"},
        {2, 197, 197, 3, 64, 64, 0, 0, 6, 0, "flash S197 D64 -inf rows"},
        {2, 257, 257, 3, 128, 128, 0, 0, 6, 1, "flash S257 D128 -inf rows f32"},
        {2, 257, 257, 3, 128, 128, 0, 1, 2, 1, "flash S257 D128 packed [1,1,Sq,Sk] f32"},
        {2, 197, 197, 3, 64, 64, 0, 2, 0, 0, "flash S197 D64 packed ld+3 (unaligned)"},
        {2, 64, 64, 3, 128, 128, 1, 2, 3, 0, "flash S64 D128 ld+3 seq-first mask"},
        {2, 197, 197, 3, 64, 64, 1, 0, 1, 0, "flash S197 D64 seq-first key-pad"},
        {2, 257, 257, 3, 128, 128, 1, 1, 5, 0, "flash S257 D128 packed seq-first"},
        {2, 7, 197, 3, 64, 64, 0, 0, 3, 1, "flash Sq7 Sk197 [B,1,Sq,Sk] f32"},
        {2, 257, 1, 3, 128, 128, 0, 0, 0, 0, "flash Sq257 Sk1 D128"},
        {2, 64, 257, 3, 128, 128, 1, 0, 2, 0, "flash Sq64 Sk257 D128 seq-first"},
        {2, 197, 64, 3, 64, 64, 0, 0, 4, 1, "flash Sq197 Sk64 permuted f32"},
        {2, 1, 257, 3, 64, 64, 1, 0, 6, 0, "flash Sq1 Sk257 seq-first -inf"},
        /* SAM's decomposed relative positions: windows of 14x14 (Sk = 196 = 14 * 14), a global 32x32 map
           (kw = 32: a tile spans two kh rows), kw 5 (< 8: several wraps per 8 keys), D128, f32 terms */
        {6, 196, 196, 1, 64, 64, 0, 0, 0, 0, "flash rel-pos 14x14 windows", 14},
        {2, 1024, 1024, 1, 64, 64, 0, 0, 0, 0, "flash rel-pos 32x32 global", 32},
        {2, 35, 35, 3, 64, 64, 0, 0, 0, 0, "flash rel-pos 7x5 H3", 5},
        {2, 77, 77, 2, 128, 128, 0, 0, 0, 1, "flash rel-pos 7x11 D128 f32", 11},
        {2, 40, 130, 1, 64, 64, 0, 0, 0, 0, "flash rel-pos kh 65 kw 2 (not staged)", 2},
        {1, 4096, 4096, 1, 64, 64, 0, 0, 0, 0, "flash rel-pos 64x64 (SAM global)", 64},
        /* kw 64: key tile t is key row t (staged terms read in pairs) unless kh is odd */
        {2, 200, 128, 2, 64, 64, 0, 0, 0, 0, "flash rel-pos 2x64 Sq200", 64},
        {1, 100, 192, 2, 128, 128, 0, 0, 0, 0, "flash rel-pos 3x64 D128 (kh odd)", 64},
        {1, 70, 256, 1, 64, 64, 0, 0, 0, 1, "flash rel-pos 4x64 f32 terms (not staged)", 64},
    };
    for (size_t i = 0; i < sizeof flash / sizeof flash[0]; i++)
        attn_test(&flash[i], KC_F16);
    printf("attn: fused path ran in %d of %d flash-eligible cases%s\n", n_fused, n_fused + n_unfused_eligible,
           n_unfused_eligible ? " (WARN: the flash kernel was refused; kernels built for sm_80+?)" : "");
    attn_timing();

    kc_dnn_destroy(g_dnn);
    printf("test_cuda_dnn: %d passed, %d failed: %s\n", n_pass, n_fail, n_fail ? "FAIL" : "PASS");
    return n_fail ? 1 : 0;
}
