/*
 * test_cuda_kernels.c — every launcher of src/cuda/kernels.h against a
 * float64 CPU reference written here (independent of the kernels and of
 * src/cpu/ref): fresh random inputs (seed printed), outputs poisoned with
 * NaN bytes and followed by guard elements that must stay untouched, odd
 * sizes and tails, float32 and float16.  Tolerance tiers: exact (data
 * movement, casts, fills), f32 (relative L2 <= 1e-5, each element within
 * 1e-4 of max(1, max |ref|)), f16 (2e-3 and 1e-2).  NaN and infinity
 * positions must match.  One line per case, then a PASS/FAIL count; exits
 * 77 (CTest skip) when no CUDA device is present.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda_runtime_api.h>

#include "cuda/kernels.h"

#define GUARD 32 /* poisoned elements after every output */

static int g_pass, g_fail;
static uint64_t g_rng;
static cudaStream_t g_stream;

/* ---- helpers --------------------------------------------------------------------------- */

static uint64_t rng_next(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}
static double urand(double lo, double hi) { return lo + (hi - lo) * (double)(rng_next() >> 11) * 0x1p-53; }
static int64_t irand(int64_t lo, int64_t hi) { return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo + 1)); }

/* float32 -> float16 bits, round to nearest even, overflow to inf, NaN kept. */
static uint16_t f2h(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00u;
    if (ax >= 0x477ff000u) return sign | 0x7c00u; /* >= 65520 */
    if (ax < 0x38800000u) {                       /* below 2^-14: subnormal or zero */
        float a;
        memcpy(&a, &ax, 4);
        return sign | (uint16_t)nearbyint((double)a * 16777216.0);
    }
    uint32_t h = ((((ax >> 23) - 127 + 15) << 10) | ((ax & 0x7fffffu) >> 13)), rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}

static double h2d(uint16_t h) {
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

/* v rounded to storage type t. */
static double rnd(kc_dtype t, double v) { return t == KC_F16 ? h2d(f2h((float)v)) : (double)(float)v; }

static const char *tname(kc_dtype t) { return t == KC_F16 ? "f16" : "f32"; }

static void cuda_fatal(cudaError_t e, const char *what, int line) {
    fprintf(stderr, "line %d: %s: %s\n", line, what, cudaGetErrorString(e));
    exit(1);
}
#define CK(call)                                                                                                       \
    do {                                                                                                               \
        cudaError_t ck_e_ = (call);                                                                                    \
        if (ck_e_ != cudaSuccess) cuda_fatal(ck_e_, #call, __LINE__);                                                  \
    } while (0)

/* Launcher return code, then the stream's. */
static bool launched(cudaError_t e, const char *name) {
    if (e == cudaSuccess) e = cudaStreamSynchronize(g_stream);
    if (e != cudaSuccess) {
        printf("FAIL %s: %s\n", name, cudaGetErrorString(e));
        g_fail++;
        return false;
    }
    return true;
}

/* A device tensor of n elements of t (plus GUARD poisoned ones) and its
 * host values h (as stored). */
typedef struct tbuf {
    kc_dtype t;
    size_t n;
    void *d;
    double *h;
} tbuf;

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* Upload h[0..n) (rounded in place to t). */
static void tb_upload(tbuf *b) {
    size_t es = kc_dtype_size(b->t);
    unsigned char *raw = xmalloc(b->n * es);
    for (size_t i = 0; i < b->n; i++) {
        if (b->t == KC_F16) {
            uint16_t hv = f2h((float)b->h[i]);
            memcpy(raw + 2 * i, &hv, 2);
            b->h[i] = h2d(hv);
        } else {
            float f = (float)b->h[i];
            memcpy(raw + 4 * i, &f, 4);
            b->h[i] = f;
        }
    }
    CK(cudaMemcpy(b->d, raw, b->n * es, cudaMemcpyHostToDevice));
    free(raw);
}

/* n poisoned elements (NaN bytes) plus the guard. */
static tbuf tb_alloc(kc_dtype t, size_t n) {
    tbuf b = {t, n, NULL, xmalloc((n ? n : 1) * sizeof(double))};
    CK(cudaMalloc(&b.d, (n + GUARD) * kc_dtype_size(t)));
    CK(cudaMemset(b.d, 0xff, (n + GUARD) * kc_dtype_size(t)));
    return b;
}

/* n random values in [lo, hi), uploaded. */
static tbuf tb_rand(kc_dtype t, size_t n, double lo, double hi) {
    tbuf b = tb_alloc(t, n);
    for (size_t i = 0; i < n; i++) b.h[i] = urand(lo, hi);
    tb_upload(&b);
    return b;
}

/* Download into h; false if a guard element changed. */
static bool tb_download(tbuf *b) {
    size_t es = kc_dtype_size(b->t), tot = (b->n + GUARD) * es;
    unsigned char *raw = xmalloc(tot);
    CK(cudaMemcpy(raw, b->d, tot, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < b->n; i++) {
        if (b->t == KC_F16) {
            uint16_t hv;
            memcpy(&hv, raw + 2 * i, 2);
            b->h[i] = h2d(hv);
        } else {
            float f;
            memcpy(&f, raw + 4 * i, 4);
            b->h[i] = f;
        }
    }
    bool ok = true;
    for (size_t i = b->n * es; i < tot; i++) ok &= raw[i] == 0xff;
    free(raw);
    return ok;
}

static void tb_free(tbuf *b) {
    CK(cudaFree(b->d));
    free(b->h);
    b->d = NULL;
    b->h = NULL;
}

/* Compare y (downloaded here) with ref under t's tier (tolerances * mult).
 * mag (optional), for outputs that are sums of products: per output, the
 * sum of the terms' magnitudes.  A sum's rounding error is bounded by that
 * (not by the result, which can cancel to near zero: a scalar einsum of
 * random terms), so with mag every output must be within rtol * mag of the
 * reference instead of the relative L2 test. */
static void check_mag(const char *name, tbuf *y, const double *ref, const double *mag, double mult) {
    bool guard = tb_download(y);
    double num = 0, den = 0, maxabs = 0, maxref = 0;
    size_t bad = 0, first = (size_t)-1;
    for (size_t i = 0; i < y->n; i++)
        if (isfinite(ref[i]) && fabs(ref[i]) > maxref) maxref = fabs(ref[i]);
    double rtol = (y->t == KC_F16 ? 2e-3 : 1e-5) * mult, atol = (y->t == KC_F16 ? 1e-2 : 1e-4) * mult;
    double lim = atol * (maxref > 1 ? maxref : 1);
    for (size_t i = 0; i < y->n; i++) {
        double g = y->h[i], r = ref[i];
        bool ok;
        if (isnan(r) || isnan(g)) ok = isnan(r) && isnan(g);
        else if (isinf(r) || isinf(g)) ok = g == r;
        else {
            double d = fabs(g - r);
            num += d * d;
            den += r * r;
            if (d > maxabs) maxabs = d;
            ok = mag ? d <= rtol * mag[i] + (y->t == KC_F16 ? 0x1p-11 * fabs(r) : 0.0) : d <= lim;
        }
        if (!ok && bad++ == 0) first = i;
    }
    double rl2 = den > 0 ? sqrt(num / den) : sqrt(num);
    bool pass = guard && bad == 0 && (mag || rl2 <= rtol);
    printf("%s %-58s %s n=%zu rl2=%.2e maxabs=%.2e", pass ? "ok  " : "FAIL", name, tname(y->t), y->n, rl2, maxabs);
    if (!guard) printf(" [guard overwritten]");
    if (bad) printf(" [%zu bad, first at %zu: got %.9g, want %.9g]", bad, first, y->h[first], ref[first]);
    printf("\n");
    if (pass) g_pass++;
    else g_fail++;
}

static void check(const char *name, tbuf *y, const double *ref, double mult) { check_mag(name, y, ref, NULL, mult); }

/* Byte-exact comparison of a device buffer of nb bytes with want. */
static void check_bytes(const char *name, const void *d, const unsigned char *want, size_t nb) {
    unsigned char *got = xmalloc(nb);
    CK(cudaMemcpy(got, d, nb, cudaMemcpyDeviceToHost));
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < nb; i++)
        if (got[i] != want[i] && bad++ == 0) first = i;
    printf("%s %-58s bytes=%zu", bad ? "FAIL" : "ok  ", name, nb);
    if (bad) printf(" [%zu bad bytes, first at %zu: got 0x%02x, want 0x%02x]", bad, first, got[first], want[first]);
    printf("\n");
    if (bad) g_fail++;
    else g_pass++;
    free(got);
}

static const kc_dtype DTS[2] = {KC_F32, KC_F16};

/* ---- cast, fill --------------------------------------------------------------------------- */

static void test_cast(void) {
    static const size_t ns[] = {1, 7, 17, 1000, 4099};
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
        for (int off = 0; off < 2; off++) { /* off = 1: unaligned pointers (scalar path) */
            size_t n = ns[k], tot = n + off;
            float *xf = xmalloc(tot * 4);
            uint16_t *xh = xmalloc(tot * 2), *wh = xmalloc(tot * 2);
            float *wf = xmalloc(tot * 4);
            static const float sp[] = {INFINITY, -INFINITY, NAN, 1e6f, 65519.0f, 65520.0f, -65504.0f, 1e-8f,
                                       3e-5f,    -6.1e-5f,  0.0f, -0.0f, 2.9802322e-8f};
            for (size_t i = 0; i < tot; i++) {
                xf[i] = (float)urand(-3, 3);
                xh[i] = (uint16_t)(rng_next() & 0xffff);
            }
            if (n >= 17)
                for (size_t i = 0; i < sizeof sp / sizeof *sp; i++) xf[off + i] = sp[i];
            for (size_t i = 0; i < tot; i++) {
                wh[i] = f2h(xf[i]);
                wf[i] = (float)h2d(xh[i]);
            }
            void *dx, *dy;
            CK(cudaMalloc(&dx, tot * 4 + 64));
            CK(cudaMalloc(&dy, tot * 4 + 64));
            char name[96];
            /* f32 -> f16 */
            CK(cudaMemcpy(dx, xf, tot * 4, cudaMemcpyHostToDevice));
            CK(cudaMemset(dy, 0xff, tot * 4 + 64));
            snprintf(name, sizeof name, "cast f32->f16 n=%zu off=%d", n, off);
            if (launched(kc_cast((uint16_t *)dy + off, KC_F16, (float *)dx + off, KC_F32, (int64_t)n, g_stream), name)) {
                uint16_t *got = xmalloc(tot * 2 + 64);
                CK(cudaMemcpy(got, dy, tot * 2 + 64, cudaMemcpyDeviceToHost));
                size_t bad = 0;
                for (size_t i = 0; i < tot + 32; i++) {
                    bool want_poison = i < (size_t)off || i >= tot;
                    uint16_t w = want_poison ? 0xffff : wh[i];
                    bool nan_ok = !want_poison && (w & 0x7c00) == 0x7c00 && (w & 0x3ff) && (got[i] & 0x7c00) == 0x7c00 &&
                                  (got[i] & 0x3ff);
                    if (got[i] != w && !nan_ok) bad++;
                }
                printf("%s %-58s [%zu bad]\n", bad ? "FAIL" : "ok  ", name, bad);
                bad ? g_fail++ : g_pass++;
                free(got);
            }
            /* f16 -> f32 */
            CK(cudaMemcpy(dx, xh, tot * 2, cudaMemcpyHostToDevice));
            CK(cudaMemset(dy, 0xff, tot * 4 + 64));
            snprintf(name, sizeof name, "cast f16->f32 n=%zu off=%d", n, off);
            if (launched(kc_cast((float *)dy + off, KC_F32, (uint16_t *)dx + off, KC_F16, (int64_t)n, g_stream), name)) {
                float *got = xmalloc(tot * 4 + 64);
                CK(cudaMemcpy(got, dy, tot * 4 + 64, cudaMemcpyDeviceToHost));
                size_t bad = 0;
                for (size_t i = 0; i < tot + 16; i++) {
                    uint32_t g, w = 0xffffffffu;
                    memcpy(&g, &got[i], 4);
                    if (i >= (size_t)off && i < tot) memcpy(&w, &wf[i], 4);
                    bool nan_ok = i >= (size_t)off && i < tot && isnan(wf[i]) && isnan(got[i]);
                    if (g != w && !nan_ok) bad++;
                }
                printf("%s %-58s [%zu bad]\n", bad ? "FAIL" : "ok  ", name, bad);
                bad ? g_fail++ : g_pass++;
                free(got);
            }
            /* same type: a copy */
            for (int t = 0; t < 2; t++) {
                size_t es = kc_dtype_size(DTS[t]);
                unsigned char *want = xmalloc(tot * es + 64);
                memset(want, 0xff, tot * es + 64);
                memcpy(want + off * es, (t ? (const char *)xh : (const char *)xf) + off * es, n * es);
                CK(cudaMemcpy(dx, t ? (void *)xh : (void *)xf, tot * es, cudaMemcpyHostToDevice));
                CK(cudaMemset(dy, 0xff, tot * 4 + 64));
                snprintf(name, sizeof name, "cast %s->%s n=%zu off=%d", tname(DTS[t]), tname(DTS[t]), n, off);
                if (launched(kc_cast((char *)dy + off * es, DTS[t], (char *)dx + off * es, DTS[t], (int64_t)n, g_stream),
                             name))
                    check_bytes(name, dy, want, tot * es + 64);
                free(want);
            }
            CK(cudaFree(dx));
            CK(cudaFree(dy));
            free(xf);
            free(xh);
            free(wh);
            free(wf);
        }
    }
}

static void test_fill(void) {
    static const size_t ns[] = {1, 3, 8, 63, 1000, 4097};
    for (int t = 0; t < 2; t++)
        for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
            size_t n = ns[k];
            float v = (float)urand(-2, 2);
            tbuf y = tb_alloc(DTS[t], n + 1);
            y.n = n; /* one element after the output must stay poisoned too: check() sees n elements + guard */
            double *ref = xmalloc(n * sizeof *ref);
            for (size_t i = 0; i < n; i++) ref[i] = rnd(DTS[t], v);
            char name[96];
            snprintf(name, sizeof name, "fill n=%zu v=%g", n, v);
            if (launched(kc_fill(y.d, DTS[t], v, (int64_t)n, g_stream), name)) check(name, &y, ref, 0);
            free(ref);
            tb_free(&y);
        }
}

/* ---- strided copy, gather, heads ------------------------------------------------------- */

/* Copy case: rank, dims, strides; x_off / y_off: element offset of the
 * first element; nx / ny: buffer sizes in elements. */
static void copy_case(const char *label, int rank, const int64_t *dims, const int64_t *xs, const int64_t *ys,
                      int64_t x_off, int64_t y_off, size_t nx, size_t ny, size_t es) {
    unsigned char *hx = xmalloc(nx * es), *want = xmalloc(ny * es + 64);
    for (size_t i = 0; i < nx * es; i++) hx[i] = (unsigned char)rng_next();
    memset(want, 0xab, ny * es + 64);
    int64_t n = 1, idx[KC_MAX_RANK] = {0};
    for (int k = 0; k < rank; k++) n *= dims[k];
    for (int64_t i = 0; i < n; i++) {
        int64_t xo = x_off, yo = y_off;
        for (int k = 0; k < rank; k++) xo += idx[k] * xs[k], yo += idx[k] * ys[k];
        memcpy(want + yo * es, hx + xo * es, es);
        for (int k = rank - 1; k >= 0; k--) {
            if (++idx[k] < dims[k]) break;
            idx[k] = 0;
        }
    }
    void *dx, *dy;
    CK(cudaMalloc(&dx, nx * es + 16));
    CK(cudaMalloc(&dy, ny * es + 64));
    CK(cudaMemcpy(dx, hx, nx * es, cudaMemcpyHostToDevice));
    CK(cudaMemset(dy, 0xab, ny * es + 64));
    char name[128];
    snprintf(name, sizeof name, "copy_nd %s es=%zu", label, es);
    if (launched(kc_copy_nd((char *)dy + y_off * es, ys, (char *)dx + x_off * es, xs, dims, rank, es, g_stream), name))
        check_bytes(name, dy, want, ny * es + 64);
    CK(cudaFree(dx));
    CK(cudaFree(dy));
    free(hx);
    free(want);
}

/* kc_copy_multi: the parts of an NHWC channel concat (and a split of it
 * back, a transpose and an empty copy among them), all in one call, against
 * the same moves done on the host; with more parts than KC_COPY_MULTI, with
 * channel counts that do not widen (odd) and ones that do. */
static void test_copy_multi(void) {
    static const size_t ess[] = {2, 4, 1};
    static const int64_t chans[][12] = {{16, 32, 16, 8, 0}, {3, 5, 8, 1, 0}, {8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 16, 0}};
    for (size_t e = 0; e < 3; e++)
        for (size_t v = 0; v < 3; v++) {
            size_t es = ess[e];
            int64_t N = 2, H = 5, W = 7, C = 0;
            int np = 0;
            while (chans[v][np]) C += chans[v][np++];
            int64_t np_all = np + 2; /* + a transposed part and an empty one */
            size_t nx = 0;
            for (int k = 0; k < np; k++) nx += (size_t)(N * H * W * chans[v][k]);
            size_t ny = (size_t)(N * H * W * C) + (size_t)(N * H * W * 8) /* the transpose's output */;
            unsigned char *hx = xmalloc(nx * es + 16), *want = xmalloc(ny * es + 64);
            for (size_t i = 0; i < nx * es; i++) hx[i] = (unsigned char)rng_next();
            memset(want, 0xab, ny * es + 64);
            int64_t dims[16][4], xs[16][4], ys[16][4];
            size_t xoff[16], yoff[16];
            int rank[16];
            size_t xo = 0;
            int64_t at = 0;
            for (int k = 0; k < np; k++) { /* part k [N,H,W,ck] dense into y [N,H,W,C] at channel `at` */
                int64_t ck = chans[v][k];
                int64_t d[4] = {N, H, W, ck}, x_s[4] = {H * W * ck, W * ck, ck, 1}, y_s[4] = {H * W * C, W * C, C, 1};
                memcpy(dims[k], d, sizeof d), memcpy(xs[k], x_s, sizeof x_s), memcpy(ys[k], y_s, sizeof y_s);
                xoff[k] = xo, yoff[k] = (size_t)at, rank[k] = 4;
                xo += (size_t)(N * H * W * ck);
                at += ck;
            }
            { /* the first part's first 8 elements of each pixel as [8, N*H*W] (a transpose), after y */
                int k = np;
                int64_t P = N * H * W, c0 = chans[v][0];
                int64_t d[2] = {8 < c0 ? 8 : c0, P}, x_s[2] = {1, c0}, y_s[2] = {P, 1};
                memcpy(dims[k], d, sizeof d), memcpy(xs[k], x_s, sizeof x_s), memcpy(ys[k], y_s, sizeof y_s);
                xoff[k] = 0, yoff[k] = (size_t)(N * H * W * C), rank[k] = 2;
            }
            { /* an empty copy */
                int k = np + 1;
                dims[k][0] = 0, xs[k][0] = 1, ys[k][0] = 1;
                xoff[k] = 0, yoff[k] = 0, rank[k] = 1;
            }
            for (int k = 0; k < np_all; k++) {
                int64_t n = 1, idx[4] = {0};
                for (int a = 0; a < rank[k]; a++) n *= dims[k][a];
                for (int64_t i = 0; i < n; i++) {
                    int64_t o_x = (int64_t)xoff[k], o_y = (int64_t)yoff[k];
                    for (int a = 0; a < rank[k]; a++) o_x += idx[a] * xs[k][a], o_y += idx[a] * ys[k][a];
                    memcpy(want + o_y * es, hx + o_x * es, es);
                    for (int a = rank[k] - 1; a >= 0; a--) {
                        if (++idx[a] < dims[k][a]) break;
                        idx[a] = 0;
                    }
                }
            }
            void *dx, *dy;
            CK(cudaMalloc(&dx, nx * es + 16));
            CK(cudaMalloc(&dy, ny * es + 64));
            CK(cudaMemcpy(dx, hx, nx * es, cudaMemcpyHostToDevice));
            CK(cudaMemset(dy, 0xab, ny * es + 64));
            kc_copy_desc cd[16];
            for (int k = 0; k < np_all; k++)
                cd[k] = (kc_copy_desc){(char *)dy + yoff[k] * es, (char *)dx + xoff[k] * es, ys[k], xs[k], dims[k], rank[k]};
            char name[128];
            snprintf(name, sizeof name, "copy_multi %d parts C=%lld es=%zu", (int)np_all, (long long)C, es);
            if (launched(kc_copy_multi(cd, (int)np_all, es, g_stream), name)) check_bytes(name, dy, want, ny * es + 64);
            CK(cudaFree(dx));
            CK(cudaFree(dy));
            free(hx);
            free(want);
        }
}

/* kc_s2d_pack against a host gather, byte for byte: the ResNet stem's 7x7/2 pads (3 -> P 4), YOLO's 3x3/2
 * (1 -> 2), odd sizes, a 1-channel input, and x read through NHWC strides; the bytes past s stay untouched. */
static void test_s2d_pack(void) {
    /* n, c, h, w, hs, ws, p0, p1, nhwc */
    static const int64_t cases[][9] = {{2, 3, 17, 13, 11, 9, 4, 4, 0}, {1, 3, 10, 10, 6, 6, 2, 2, 0},
                                       {3, 1, 7, 9, 5, 6, 0, 2, 0},   {2, 4, 9, 6, 5, 4, 2, 0, 1},
                                       {1, 3, 224, 224, 115, 115, 4, 4, 0}};
    static const size_t ess[] = {2, 4};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (size_t e = 0; e < 2; e++) {
            const int64_t *q = cases[ci];
            size_t es = ess[e];
            kc_s2d p = {q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7], {0, 0, 0, 0}};
            if (q[8]) { /* NHWC */
                p.xs[0] = p.h * p.w * p.c, p.xs[1] = 1, p.xs[2] = p.w * p.c, p.xs[3] = p.c;
            } else {
                p.xs[0] = p.c * p.h * p.w, p.xs[1] = p.h * p.w, p.xs[2] = p.w, p.xs[3] = 1;
            }
            size_t nx = (size_t)(p.n * p.c * p.h * p.w), ns = (size_t)(p.n * p.hs * p.ws * 16);
            unsigned char *hx = xmalloc(nx * es), *want = xmalloc(ns * es + 64);
            for (size_t i = 0; i < nx * es; i++) hx[i] = (unsigned char)rng_next();
            memset(want, 0xab, ns * es + 64);
            for (int64_t n = 0; n < p.n; n++)
                for (int64_t i = 0; i < p.hs; i++)
                    for (int64_t j = 0; j < p.ws; j++)
                        for (int qq = 0; qq < 16; qq++) {
                            int64_t r2 = qq / 8, s2 = qq / 4 % 2, c = qq % 4, h = 2 * i + r2 - p.p0, w = 2 * j + s2 - p.p1;
                            unsigned char *o = want + ((size_t)((n * p.hs + i) * p.ws + j) * 16 + (size_t)qq) * es;
                            if (c < p.c && h >= 0 && h < p.h && w >= 0 && w < p.w)
                                memcpy(o, hx + (size_t)(n * p.xs[0] + c * p.xs[1] + h * p.xs[2] + w * p.xs[3]) * es, es);
                            else
                                memset(o, 0, es);
                        }
            void *dx, *ds;
            CK(cudaMalloc(&dx, nx * es));
            CK(cudaMalloc(&ds, ns * es + 64));
            CK(cudaMemcpy(dx, hx, nx * es, cudaMemcpyHostToDevice));
            CK(cudaMemset(ds, 0xab, ns * es + 64));
            char name[128];
            snprintf(name, sizeof name, "s2d_pack n%lld c%lld %lldx%lld -> %lldx%lld pad %lld,%lld %s es=%zu",
                     (long long)p.n, (long long)p.c, (long long)p.h, (long long)p.w, (long long)p.hs, (long long)p.ws,
                     (long long)p.p0, (long long)p.p1, q[8] ? "nhwc" : "nchw", es);
            if (launched(kc_s2d_pack(ds, dx, &p, es, g_stream), name)) check_bytes(name, ds, want, ns * es + 64);
            CK(cudaFree(dx));
            CK(cudaFree(ds));
            free(hx);
            free(want);
        }
}

static void test_copy_nd(void) {
    static const size_t ess[] = {1, 2, 4, 8};
    for (size_t e = 0; e < 4; e++) {
        size_t es = ess[e];
        { /* transpose [3,5,7] -> perm (2,0,1) */
            int64_t d[3] = {7, 3, 5}, xs[3] = {1, 35, 7}, ys[3] = {15, 5, 1};
            copy_case("transpose[3,5,7]->(2,0,1)", 3, d, xs, ys, 0, 0, 105, 105, es);
        }
        { /* slice x[4:0:-1, 8:2:-1] of x [5, 9] (negative steps) */
            int64_t d[2] = {4, 6}, xs[2] = {-9, -1}, ys[2] = {6, 1};
            copy_case("slice neg steps", 2, d, xs, ys, 4 * 9 + 8, 0, 45, 24, es);
        }
        { /* expand [1,4,1] -> [3,4,5] */
            int64_t d[3] = {3, 4, 5}, xs[3] = {0, 1, 0}, ys[3] = {20, 5, 1};
            copy_case("expand [1,4,1]->[3,4,5]", 3, d, xs, ys, 0, 0, 4, 60, es);
        }
        { /* concat part: x [2,4,6] into y [2,10,6] at axis-1 offset 3 */
            int64_t d[3] = {2, 4, 6}, xs[3] = {24, 6, 1}, ys[3] = {60, 6, 1};
            copy_case("concat part [2,4,6] into [2,10,6]@3", 3, d, xs, ys, 0, 18, 48, 120, es);
        }
        { /* channels 8..23 of an NHWC [2,5,7,32] tensor, in logical NCHW order (YOLOv8's C2f Slice):
           * the unit-stride channel axis is not the innermost logical one */
            int64_t d[4] = {2, 16, 5, 7}, xs[4] = {5 * 7 * 32, 1, 7 * 32, 32}, ys[4] = {5 * 7 * 16, 1, 7 * 16, 16};
            copy_case("NHWC channel slice [2,16,5,7] of C=32 @8", 4, d, xs, ys, 8, 0, 2 * 5 * 7 * 32, 2 * 5 * 7 * 16, es);
        }
        { /* row-padded y (widening path) */
            int64_t d[2] = {3, 32}, xs[2] = {32, 1}, ys[2] = {64, 1};
            copy_case("rows [3,32] into stride 64", 2, d, xs, ys, 0, 0, 96, 192, es);
        }
        { /* dense 1-D and rank 0 and all ones */
            int64_t d[1] = {1001}, s1[1] = {1};
            copy_case("dense [1001]", 1, d, s1, s1, 0, 0, 1001, 1001, es);
            copy_case("rank 0", 0, NULL, NULL, NULL, 0, 0, 1, 1, es);
            int64_t d1[3] = {1, 1, 1}, z3[3] = {0, 0, 0};
            copy_case("dims [1,1,1]", 3, d1, z3, z3, 0, 0, 1, 1, es);
        }
        { /* rank 8, reversed axes */
            int64_t xd[8] = {2, 1, 3, 2, 1, 2, 3, 2}, xst[8], d[8], xs[8], ys[8], acc = 1;
            for (int k = 7; k >= 0; k--) xst[k] = acc, acc *= xd[k];
            for (int k = 0; k < 8; k++) d[k] = xd[7 - k], xs[k] = xst[7 - k];
            acc = 1;
            for (int k = 7; k >= 0; k--) ys[k] = acc, acc *= d[k];
            copy_case("rank 8 reversed", 8, d, xs, ys, 0, 0, (size_t)acc, (size_t)acc, es);
        }
        { /* odd strided: every other column of [17, 63] */
            int64_t d[2] = {17, 32}, xs[2] = {63, 2}, ys[2] = {32, 1};
            copy_case("step 2 columns of [17,63]", 2, d, xs, ys, 0, 0, 17 * 63, 17 * 32, es);
        }
    }
    /* transposes (the tiled path when both axes have >= 8 elements, the general one below) */
    static const int64_t sz[] = {1, 3, 17, 33, 63, 65};
    for (size_t e = 0; e < 4; e++) {
        size_t es = ess[e];
        for (size_t i = 0; i < 6; i++)
            for (size_t j = 0; j < 6; j++) {
                if ((es == 1 || es == 8) && (i + j) % 3 != 0) continue; /* a sample for 1- and 8-byte elements */
                int64_t C = sz[i], HW = sz[j], N = (i + j) % 2 ? 3 : 1;
                char label[96];
                /* NCHW -> NHWC: y [N, HW, C] <- x [N, C, HW] */
                int64_t d[3] = {N, HW, C}, ys[3] = {HW * C, C, 1}, xs[3] = {C * HW, 1, HW};
                snprintf(label, sizeof label, "NCHW->NHWC N=%lld C=%lld HW=%lld", (long long)N, (long long)C,
                         (long long)HW);
                copy_case(label, 3, d, xs, ys, 0, 0, (size_t)(N * C * HW), (size_t)(N * C * HW), es);
                /* NHWC -> NCHW: y [N, C, HW] <- x [N, HW, C] */
                int64_t d2[3] = {N, C, HW}, ys2[3] = {C * HW, HW, 1}, xs2[3] = {HW * C, 1, C};
                snprintf(label, sizeof label, "NHWC->NCHW N=%lld C=%lld HW=%lld", (long long)N, (long long)C,
                         (long long)HW);
                copy_case(label, 3, d2, xs2, ys2, 0, 0, (size_t)(N * C * HW), (size_t)(N * C * HW), es);
            }
        { /* 4-D: y [B, D, H, S] <- x [B, S, H, D] (perm 0,3,2,1): tiles over S and D, H and B index them */
            int64_t B = 2, S = 17, H = 9, D = 33;
            int64_t d[4] = {B, D, H, S}, ys[4] = {D * H * S, H * S, S, 1}, xs[4] = {S * H * D, 1, D, H * D};
            copy_case("[2,17,9,33] perm (0,3,2,1)", 4, d, xs, ys, 0, 0, (size_t)(B * S * H * D),
                      (size_t)(B * S * H * D), es);
        }
        { /* from row-padded x (rows of 70) into y at an offset: y [3, 33, 65] <- x [3, 65, 33 of 70] */
            int64_t d[3] = {3, 33, 65}, ys[3] = {33 * 65, 65, 1}, xs[3] = {65 * 70, 1, 70};
            copy_case("NCHW->NHWC padded x rows, y offset 5", 3, d, xs, ys, 0, 5, 3 * 65 * 70, 3 * 33 * 65 + 5, es);
        }
        { /* x's A axis reversed (negative stride): y [2, 40, 19] <- x [2, 19 reversed, 40] */
            int64_t d[3] = {2, 40, 19}, ys[3] = {40 * 19, 19, 1}, xs[3] = {19 * 40, 1, -40};
            copy_case("transpose with reversed channels", 3, d, xs, ys, 18 * 40, 0, 2 * 19 * 40, 2 * 40 * 19, es);
        }
        { /* [S, B, E] <-> [B, S, E]: innermost contiguous in both (widened copies) */
            int64_t S = 17, B = 3, E = 64;
            int64_t d[3] = {B, S, E}, ys[3] = {S * E, E, 1}, xs[3] = {E, B * E, 1};
            copy_case("[S,B,E]->[B,S,E] S=17 B=3 E=64", 3, d, xs, ys, 0, 0, (size_t)(S * B * E), (size_t)(S * B * E), es);
        }
    }
}

static void test_gather(void) {
    static const int64_t cs[][5] = {{1, 5, 3, 1, 4}, {2, 7, 4, 3, 2}, {3, 4, 5, 8, 4}, {2, 3, 2, 16, 1},
                                    {1, 10, 6, 5, 8}, {4, 6, 7, 4, 2}, {2, 9, 1, 1, 1}};
    for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
        int64_t outer = cs[c][0], axis = cs[c][1], ni = cs[c][2], inner = cs[c][3];
        size_t es = (size_t)cs[c][4], nx = (size_t)(outer * axis * inner), ny = (size_t)(outer * ni * inner);
        int64_t *idx = xmalloc((size_t)ni * sizeof *idx);
        for (int64_t j = 0; j < ni; j++) idx[j] = irand(-axis, axis - 1);
        if (ni > 2) idx[0] = axis + 2, idx[1] = -axis - 3; /* out of range: clamped */
        unsigned char *hx = xmalloc(nx * es), *want = xmalloc(ny * es + 64);
        for (size_t i = 0; i < nx * es; i++) hx[i] = (unsigned char)rng_next();
        memset(want, 0xab, ny * es + 64);
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = 0; j < ni; j++) {
                int64_t k = idx[j] < 0 ? idx[j] + axis : idx[j];
                k = k < 0 ? 0 : k >= axis ? axis - 1 : k;
                memcpy(want + (size_t)((o * ni + j) * inner) * es, hx + (size_t)((o * axis + k) * inner) * es,
                       (size_t)inner * es);
            }
        void *dx, *dy, *di;
        CK(cudaMalloc(&dx, nx * es));
        CK(cudaMalloc(&dy, ny * es + 64));
        CK(cudaMalloc(&di, (size_t)ni * sizeof *idx));
        CK(cudaMemcpy(dx, hx, nx * es, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(di, idx, (size_t)ni * sizeof *idx, cudaMemcpyHostToDevice));
        CK(cudaMemset(dy, 0xab, ny * es + 64));
        char name[96];
        snprintf(name, sizeof name, "gather outer=%lld axis=%lld n_idx=%lld inner=%lld es=%zu", (long long)outer,
                 (long long)axis, (long long)ni, (long long)inner, es);
        if (launched(kc_gather(dy, dx, di, outer, axis, ni, inner, es, g_stream), name))
            check_bytes(name, dy, want, ny * es + 64);
        CK(cudaFree(dx));
        CK(cudaFree(dy));
        CK(cudaFree(di));
        free(idx);
        free(hx);
        free(want);
    }
}

static void test_heads(void) {
    static const int64_t cs[][4] = {{2, 3, 4, 5}, {1, 7, 2, 8}, {3, 1, 1, 1}, {2, 17, 3, 16}};
    for (int t = 0; t < 2; t++)
        for (size_t c = 0; c < sizeof cs / sizeof *cs; c++)
            for (int sf = 0; sf < 2; sf++) {
                int64_t B = cs[c][0], S = cs[c][1], H = cs[c][2], D = cs[c][3], hd = H * D, ld = 3 * hd;
                size_t es = kc_dtype_size(DTS[t]), nx = (size_t)(B * S * ld), ny = (size_t)(B * H * S * D);
                /* split from the K part (columns hd..2hd) of a packed QKV [B*S, 3*hd] */
                unsigned char *hx = xmalloc(nx * es), *want = xmalloc(ny * es + 64);
                for (size_t i = 0; i < nx * es; i++) hx[i] = (unsigned char)rng_next();
                memset(want, 0xab, ny * es + 64);
                for (int64_t b = 0; b < B; b++)
                    for (int64_t h = 0; h < H; h++)
                        for (int64_t s = 0; s < S; s++) {
                            int64_t row = sf ? s * B + b : b * S + s;
                            memcpy(want + (size_t)(((b * H + h) * S + s) * D) * es,
                                   hx + (size_t)(row * ld + hd + h * D) * es, (size_t)D * es);
                        }
                void *dx, *dy;
                CK(cudaMalloc(&dx, nx * es));
                CK(cudaMalloc(&dy, (nx > ny ? nx : ny) * es + 64));
                CK(cudaMemcpy(dx, hx, nx * es, cudaMemcpyHostToDevice));
                CK(cudaMemset(dy, 0xab, ny * es + 64));
                char name[96];
                snprintf(name, sizeof name, "heads_split B=%lld S=%lld H=%lld D=%lld seq_first=%d %s", (long long)B,
                         (long long)S, (long long)H, (long long)D, sf, tname(DTS[t]));
                if (launched(kc_heads_split(dy, (char *)dx + hd * es, B, S, H, D, ld, sf, DTS[t], g_stream), name))
                    check_bytes(name, dy, want, ny * es + 64);
                /* merge: x [B,H,S,D] = hx's first ny elements -> y [B,S,hd] / [S,B,hd] */
                memset(want, 0xab, ny * es + 64);
                for (int64_t b = 0; b < B; b++)
                    for (int64_t h = 0; h < H; h++)
                        for (int64_t s = 0; s < S; s++) {
                            int64_t row = sf ? s * B + b : b * S + s;
                            memcpy(want + (size_t)(row * hd + h * D) * es, hx + (size_t)(((b * H + h) * S + s) * D) * es,
                                   (size_t)D * es);
                        }
                CK(cudaMemset(dy, 0xab, ny * es + 64));
                snprintf(name, sizeof name, "heads_merge B=%lld S=%lld H=%lld D=%lld seq_first=%d %s", (long long)B,
                         (long long)S, (long long)H, (long long)D, sf, tname(DTS[t]));
                if (launched(kc_heads_merge(dy, dx, B, S, H, D, sf, DTS[t], g_stream), name))
                    check_bytes(name, dy, want, ny * es + 64);
                CK(cudaFree(dx));
                CK(cudaFree(dy));
                free(hx);
                free(want);
            }
}

/* ---- bias + activation --------------------------------------------------------------------- */

static double sig(double x) { return 1.0 / (1.0 + exp(-x)); }
static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

static double act_ref(int act, double v, double a, double b) {
    switch (act) {
    case 1: return v < 0 ? 0 : v;
    case 2: return v < a ? a : v > b ? b : v;
    case 3: return v < 0 ? a * v : v;
    case 4: return sig(v);
    case 5: return v * sig(v);
    case 6: return clamp01(a * v + b);
    case 7: return v * clamp01(v / 6 + 0.5);
    case 8: return 0.5 * v * (1 + erf(v / sqrt(2.0)));
    case 9: return 0.5 * v * (1 + tanh(0.79788456080286535588 * (v + 0.044715 * v * v * v)));
    case 10: return v * tanh(softplus(v));
    case 11: return tanh(v);
    default: return v;
    }
}

static void test_bias_act(void) {
    static const int64_t shapes[][3] = {{1, 1, 1}, {2, 3, 7}, {3, 16, 1}, {2, 8, 8}, {2, 17, 63}, {4, 64, 1}, {1, 5, 4099}};
    static const float alphas[12] = {0, 0, -0.5f, 0.1f, 0, 0, 0.2f, 0, 0, 0, 0, 0};
    static const float betas[12] = {0, 0, 0.7f, 0, 0, 0, 0.5f, 0, 0, 0, 0, 0};
    for (int t = 0; t < 2; t++)
        for (int act = 0; act < 12; act++)
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
                int64_t O = shapes[s][0], C = shapes[s][1], I = shapes[s][2];
                size_t n = (size_t)(O * C * I);
                int mode = (int)((act + s) % 4); /* bit 0: bias, bit 1: z */
                bool inplace = act == 5 && s == 4;
                tbuf x = tb_rand(DTS[t], n, -4, 4), b = tb_rand(DTS[t], (size_t)C, -1, 1), z = tb_rand(DTS[t], n, -1, 1);
                tbuf y = inplace ? x : tb_alloc(DTS[t], n);
                double *ref = xmalloc(n * sizeof *ref);
                for (size_t i = 0; i < n; i++) {
                    /* the sums are the graph's float32 tensors (Conv's bias, the residual Add) before the
                       activation: rounded as such, else an input near an ill-conditioned point (HardSwish at
                       -3) compares against a value no float32 graph computes */
                    float vf = (float)x.h[i];
                    if (mode & 1) vf += (float)b.h[(i / (size_t)I) % (size_t)C];
                    if (mode & 2) vf += (float)z.h[i];
                    ref[i] = act_ref(act, (double)vf, alphas[act], betas[act]);
                }
                char name[96];
                snprintf(name, sizeof name, "bias_act act=%d [%lld,%lld,%lld] bias=%d z=%d%s", act, (long long)O,
                         (long long)C, (long long)I, mode & 1, mode >> 1, inplace ? " in-place" : "");
                if (launched(kc_bias_act(y.d, x.d, (mode & 1) ? b.d : NULL, (mode & 2) ? z.d : NULL, O, C, I, act,
                                         alphas[act], betas[act], DTS[t], g_stream),
                             name))
                    check(name, &y, ref, 1);
                free(ref);
                if (!inplace) tb_free(&y);
                tb_free(&x);
                tb_free(&b);
                tb_free(&z);
            }
}

/* kc_bias_act_ld: the outer index strided per tensor (a convolution's
 * epilogue into its channel slab of a Concat's output): y's rows ldy apart
 * inside a poisoned buffer whose gaps must stay untouched. */
static void test_bias_act_ld(void) {
    /* outer, channels, inner, extra y/x/z row elements */
    static const int64_t cs[][6] = {{6, 16, 1, 16, 0, 8},  {3, 8, 40, 80, 0, 40}, {2, 5, 7, 3, 2, 1},
                                    {4, 24, 1, 8, 8, 0},   {2, 3, 9, 18, 0, 9}};
    for (int t = 0; t < 2; t++)
        for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
            int64_t O = cs[c][0], C = cs[c][1], I = cs[c][2], row = C * I;
            int64_t ldy = row + cs[c][3], ldx = row + cs[c][4], ldz = row + cs[c][5];
            int act = (int)(c % 2 ? 5 : 1);
            tbuf x = tb_rand(DTS[t], (size_t)(O * ldx), -3, 3), b = tb_rand(DTS[t], (size_t)C, -1, 1);
            tbuf z = tb_rand(DTS[t], (size_t)(O * ldz), -1, 1), y = tb_alloc(DTS[t], (size_t)(O * ldy));
            double *ref = xmalloc((size_t)(O * ldy) * sizeof *ref);
            for (int64_t i = 0; i < O * ldy; i++) ref[i] = NAN; /* the gaps keep their poison (NaN bytes) */
            for (int64_t o = 0; o < O; o++)
                for (int64_t r = 0; r < row; r++) {
                    float vf = (float)x.h[o * ldx + r] + (float)b.h[r / I] + (float)z.h[o * ldz + r];
                    ref[o * ldy + r] = act_ref(act, (double)vf, 0, 0);
                }
            char name[96];
            snprintf(name, sizeof name, "bias_act_ld act=%d [%lld,%lld,%lld] ld y/x/z %lld/%lld/%lld", act,
                     (long long)O, (long long)C, (long long)I, (long long)ldy, (long long)ldx, (long long)ldz);
            if (launched(kc_bias_act_ld(y.d, ldy, x.d, ldx, b.d, z.d, ldz, O, C, I, act, 0, 0, DTS[t], g_stream), name))
                check(name, &y, ref, 1);
            free(ref);
            tb_free(&x), tb_free(&b), tb_free(&z), tb_free(&y);
        }
}

/* kc_topk against the CPU reference's order (NaN above +inf, -0 == +0,
 * the lower index first among equals), values and indices exact. */
static uint32_t topk_key_h(double v) {
    if (isnan(v)) return 0xffffffffu;
    float f = (float)v;
    if (f == 0.0f) f = 0.0f;
    uint32_t b;
    memcpy(&b, &f, 4);
    return (b >> 31) ? ~b : (b | 0x80000000u);
}
typedef struct topk_it { uint64_t key; } topk_it;
static int topk_cmp_h(const void *a, const void *b) {
    uint64_t x = ((const topk_it *)a)->key, y = ((const topk_it *)b)->key;
    return x < y ? -1 : x > y;
}
static void test_topk(void) {
    /* outer, n, inner, k, largest, ties (values from a small set with NaN, +-0, +-inf) */
    static const int64_t cs[][6] = {{3, 100, 1, 5, 1, 0},  {2, 7, 3, 7, 0, 1},      {1, 3234, 1, 300, 1, 0},
                                    {4, 1, 2, 1, 1, 0},    {2, 4096, 1, 17, 0, 1},  {3, 33, 5, 33, 1, 1},
                                    {1, 1000, 4, 100, 0, 0}, {5, 64, 1, 0, 1, 0}};
    static const double small[] = {-2, -1, -0.0, 0, 1, 2, INFINITY, -INFINITY, NAN, 1};
    for (int t = 0; t < 2; t++)
        for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
            int64_t O = cs[c][0], N = cs[c][1], I = cs[c][2], K = cs[c][3];
            int largest = (int)cs[c][4];
            size_t nx = (size_t)(O * N * I), ny = (size_t)(O * K * I);
            tbuf x = tb_alloc(DTS[t], nx);
            for (size_t i = 0; i < nx; i++) x.h[i] = cs[c][5] ? small[rng_next() % 10] : urand(-100, 100);
            tb_upload(&x); /* rounds x.h to the device values */
            unsigned char *want_v = xmalloc(ny * 4 + 1), *want_i = xmalloc(ny * 8 + 1);
            topk_it *it = xmalloc((size_t)N * sizeof *it);
            size_t es = kc_dtype_size(DTS[t]);
            unsigned char *raw = xmalloc(nx * es + 1);
            CK(cudaMemcpy(raw, x.d, nx * es, cudaMemcpyDeviceToHost));
            for (int64_t o = 0; o < O; o++)
                for (int64_t in = 0; in < I; in++) {
                    for (int64_t j = 0; j < N; j++) {
                        uint32_t key = topk_key_h(x.h[(o * N + j) * I + in]);
                        if (largest) key = ~key;
                        it[j].key = ((uint64_t)key << 32) | (uint64_t)j;
                    }
                    qsort(it, (size_t)N, sizeof *it, topk_cmp_h);
                    for (int64_t j = 0; j < K; j++) {
                        int64_t src = (int64_t)(it[j].key & 0xffffffffu), dst = (o * K + j) * I + in;
                        memcpy(want_v + (size_t)dst * es, raw + (size_t)((o * N + src) * I + in) * es, es);
                        memcpy(want_i + (size_t)dst * 8, &src, 8);
                    }
                }
            void *dv, *di;
            CK(cudaMalloc(&dv, ny * es + 1));
            CK(cudaMalloc(&di, ny * 8 + 1));
            char name[96];
            snprintf(name, sizeof name, "topk [%lld,%lld,%lld] k=%lld %s%s %s", (long long)O, (long long)N,
                     (long long)I, (long long)K, largest ? "largest" : "smallest", cs[c][5] ? " ties/nan" : "",
                     tname(DTS[t]));
            if (launched(kc_topk(dv, di, x.d, O, N, I, K, largest, DTS[t], g_stream), name)) {
                char nv[120], ni[120];
                snprintf(nv, sizeof nv, "%s values", name);
                snprintf(ni, sizeof ni, "%s indices", name);
                check_bytes(nv, dv, want_v, ny * es);
                check_bytes(ni, di, want_i, ny * 8);
            }
            /* past the kernel's row limit: refused, nothing launched */
            if (c == 0) {
                cudaError_t e = kc_topk(dv, di, x.d, 1, KC_TOPK_MAX_N + 1, 1, 1, 1, DTS[t], g_stream);
                (void)cudaGetLastError();
                printf("%s topk refuses rows past %d %s\n", e == cudaErrorInvalidValue ? "ok  " : "FAIL", KC_TOPK_MAX_N,
                       tname(DTS[t]));
                e == cudaErrorInvalidValue ? g_pass++ : g_fail++;
            }
            CK(cudaFree(dv));
            CK(cudaFree(di));
            free(want_v), free(want_i), free(it), free(raw);
            tb_free(&x);
        }
}

/* kc_fe with a strided y (a channel slab of a Concat's output, NHWC): the
 * program writes its channels, the other channels keep their poison. */
static void test_fe_strided_y(void) {
    for (int t = 0; t < 2; t++)
        for (int v = 0; v < 2; v++) {
            /* y logical [N,H,W,C] = [2,5,6,C] inside rows of CT channels at channel offset c0 */
            const int64_t N = 2, H = 5, W = 6, C = v ? 16 : 5, CT = v ? 48 : 13, c0 = v ? 16 : 3;
            size_t n = (size_t)(N * H * W * C), nt = (size_t)(N * H * W * CT);
            tbuf a = tb_rand(DTS[t], n, -2, 2), bb = tb_rand(DTS[t], (size_t)C, -1, 1), y = tb_alloc(DTS[t], nt);
            kc_fe_program p;
            memset(&p, 0, sizeof p);
            p.n_steps = 2;
            p.n_inputs = 2;
            p.rank = 4;
            int64_t dims[4] = {N, H, W, C};
            for (int k = 0; k < 4; k++) p.dims[k] = dims[k];
            int64_t sa[4] = {H * W * C, W * C, C, 1}, sb[4] = {0, 0, 0, 1}, sy[4] = {H * W * CT, W * CT, CT, 1};
            for (int k = 0; k < 4; k++) p.stride[0][k] = sa[k], p.stride[1][k] = sb[k], p.ystride[k] = sy[k];
            p.y_strided = 1;
            p.op[0] = 0, p.arg[0] = 1;  /* + b[c] */
            p.op[1] = 17, p.arg[1] = -1; /* sigmoid */
            double *ref = xmalloc(nt * sizeof *ref);
            for (size_t i = 0; i < nt; i++) ref[i] = NAN;
            for (size_t i = 0; i < n; i++) {
                size_t c = i % (size_t)C, pix = i / (size_t)C;
                ref[pix * (size_t)CT + (size_t)c0 + c] = 1.0 / (1.0 + exp(-(a.h[i] + bb.h[c])));
            }
            const void *ins[2] = {a.d, bb.d};
            char name[96];
            snprintf(name, sizeof name, "fe strided y [2,5,6,%lld] in %lld channels at %lld", (long long)C,
                     (long long)CT, (long long)c0);
            if (launched(kc_fe((char *)y.d + (size_t)c0 * kc_dtype_size(DTS[t]), ins, &p, DTS[t], g_stream), name))
                check(name, &y, ref, 1);
            free(ref);
            tb_free(&a), tb_free(&bb), tb_free(&y);
        }
}

/* ---- squeeze-and-excitation MLP ------------------------------------------------------------------ */

static void test_se_mlp(void) {
    static const int64_t shapes[][3] = {{1, 16, 4}, {2, 96, 4}, {1, 37, 5}, {3, 1152, 48}, {1, 8192, 1}, {256, 480, 20},
                                        {2, 33, 1024}};
    static const int acts[][2] = {{5, 4}, {1, 6}, {0, 0}, {10, 7}};
    for (int t = 0; t < 2; t++)
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
            for (size_t ai = 0; ai < sizeof acts / sizeof *acts; ai++) {
                int64_t N = shapes[si][0], C = shapes[si][1], CR = shapes[si][2];
                int a1 = acts[ai][0], a2 = acts[ai][1];
                float al2 = a2 == 6 ? 0.2f : 0.0f, be2 = a2 == 6 ? 0.5f : 0.0f;
                bool bias = (si + ai) % 2 == 0;
                double sc = 1.0 / sqrt((double)C);
                tbuf p = tb_rand(DTS[t], (size_t)(N * C), 0, 2), w1 = tb_rand(DTS[t], (size_t)(CR * C), -sc, sc);
                tbuf b1 = tb_rand(DTS[t], (size_t)CR, -0.5, 0.5), w2 = tb_rand(DTS[t], (size_t)(C * CR), -1, 1);
                tbuf b2 = tb_rand(DTS[t], (size_t)C, -0.5, 0.5), y = tb_alloc(DTS[t], (size_t)(N * C));
                double *ref = xmalloc((size_t)(N * C) * sizeof *ref), *h = xmalloc((size_t)CR * sizeof *h);
                for (int64_t r = 0; r < N; r++) {
                    for (int64_t j = 0; j < CR; j++) {
                        double acc = bias ? b1.h[j] : 0;
                        for (int64_t i = 0; i < C; i++) acc += w1.h[j * C + i] * p.h[r * C + i];
                        h[j] = act_ref(a1, acc, 0, 0);
                    }
                    for (int64_t i = 0; i < C; i++) {
                        double acc = bias ? b2.h[i] : 0;
                        for (int64_t j = 0; j < CR; j++) acc += w2.h[i * CR + j] * h[j];
                        ref[r * C + i] = act_ref(a2, acc, al2, be2);
                    }
                }
                char name[96];
                snprintf(name, sizeof name, "se_mlp [%lld,%lld] cr=%lld act=%d,%d bias=%d", (long long)N, (long long)C,
                         (long long)CR, a1, a2, bias);
                if (launched(kc_se_mlp(y.d, p.d, w1.d, bias ? b1.d : NULL, w2.d, bias ? b2.d : NULL, N, C, CR, a1, 0, 0,
                                       a2, al2, be2, DTS[t], g_stream),
                             name))
                    check(name, &y, ref, DTS[t] == KC_F16 ? 2 : 1);
                free(ref);
                free(h);
                tb_free(&p);
                tb_free(&w1);
                tb_free(&b1);
                tb_free(&w2);
                tb_free(&b2);
                tb_free(&y);
            }
    /* refused: sizes past the shared-memory plan */
    float dummy = 0;
    bool refused = kc_se_mlp(&dummy, &dummy, &dummy, NULL, &dummy, NULL, 1, 8193, 4, 0, 0, 0, 0, 0, 0, KC_F32, g_stream) ==
                   cudaErrorInvalidValue;
    printf("%s se_mlp C = 8193 refused\n", refused ? "ok  " : "FAIL");
    if (refused) g_pass++;
    else g_fail++;
}

/* kc_se_pool_mlp: the global pool (mean or max over HW of NHWC x) and the
 * SE MLP, against float64; odd channel counts take the scalar path. */
static void test_se_pool_mlp(void) {
    static const int64_t shapes[][4] = {{1, 12544, 32, 8},  {1, 3136, 144, 6}, {2, 49, 1152, 48}, {1, 196, 37, 5},
                                        {3, 7, 96, 4},      {1, 1, 16, 4},     {8, 784, 240, 10}, {1, 200, 8192, 1}};
    for (int t = 0; t < 2; t++)
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
            int64_t N = shapes[si][0], HW = shapes[si][1], C = shapes[si][2], CR = shapes[si][3];
            int is_max = si == 3 || si == 4, a1 = si % 2 ? 1 : 5, a2 = 4; /* relu/silu, sigmoid */
            bool bias = si % 3 != 1;
            double sc = 1.0 / sqrt((double)C);
            tbuf x = tb_rand(DTS[t], (size_t)(N * HW * C), -1, 2), w1 = tb_rand(DTS[t], (size_t)(CR * C), -sc, sc);
            tbuf b1 = tb_rand(DTS[t], (size_t)CR, -0.5, 0.5), w2 = tb_rand(DTS[t], (size_t)(C * CR), -1, 1);
            tbuf b2 = tb_rand(DTS[t], (size_t)C, -0.5, 0.5), y = tb_alloc(DTS[t], (size_t)(N * C));
            double *ref = xmalloc((size_t)(N * C) * sizeof *ref), *h = xmalloc((size_t)CR * sizeof *h);
            double *pl = xmalloc((size_t)C * sizeof *pl);
            for (int64_t r = 0; r < N; r++) {
                for (int64_t i = 0; i < C; i++) {
                    double a = is_max ? -INFINITY : 0;
                    for (int64_t k = 0; k < HW; k++) {
                        double v = x.h[(r * HW + k) * C + i];
                        a = is_max ? (v > a ? v : a) : a + v;
                    }
                    pl[i] = is_max ? a : a / (double)HW;
                }
                for (int64_t j = 0; j < CR; j++) {
                    double acc = bias ? b1.h[j] : 0;
                    for (int64_t i = 0; i < C; i++) acc += w1.h[j * C + i] * pl[i];
                    h[j] = act_ref(a1, acc, 0, 0);
                }
                for (int64_t i = 0; i < C; i++) {
                    double acc = bias ? b2.h[i] : 0;
                    for (int64_t j = 0; j < CR; j++) acc += w2.h[i * CR + j] * h[j];
                    ref[r * C + i] = act_ref(a2, acc, 0, 0);
                }
            }
            size_t wsb = kc_se_pool_ws(N, HW, C, DTS[t]);
            void *ws = NULL;
            char name[112];
            snprintf(name, sizeof name, "se_pool_mlp [%lld,%lld,%lld] cr=%lld %s act=%d bias=%d", (long long)N,
                     (long long)HW, (long long)C, (long long)CR, is_max ? "max" : "mean", a1, bias);
            if (cudaMalloc(&ws, wsb ? wsb : 16) != cudaSuccess) {
                printf("FAIL %s: cudaMalloc %zu\n", name, wsb);
                g_fail++;
            } else {
                /* the workspace holds stale values between runs of a plan */
                cudaMemset(ws, 0x7f, wsb ? wsb : 16);
                if (launched(kc_se_pool_mlp(y.d, x.d, ws, N, HW, C, is_max, w1.d, bias ? b1.d : NULL, w2.d,
                                            bias ? b2.d : NULL, CR, a1, 0, 0, a2, 0, 0, DTS[t], g_stream),
                             name))
                    check(name, &y, ref, DTS[t] == KC_F16 ? 2 : 1);
                if (N == 1 || C <= 2048) { /* and folded into the next 1x1 convolution's weights [K, C], a copy per image */
                    int64_t K = si % 2 ? 7 : 40;
                    tbuf wsrc = tb_rand(DTS[t], (size_t)(K * C), -1, 1), wf = tb_alloc(DTS[t], (size_t)(N * K * C));
                    double *rw = xmalloc((size_t)(N * K * C) * sizeof *rw);
                    for (int64_t r = 0; r < N; r++)
                        for (int64_t o = 0; o < K; o++)
                            for (int64_t i = 0; i < C; i++) rw[(r * K + o) * C + i] = wsrc.h[o * C + i] * ref[r * C + i];
                    tbuf y2 = tb_alloc(DTS[t], (size_t)(N * C));
                    char fname[140];
                    snprintf(fname, sizeof fname, "%s fold K=%lld", name, (long long)K);
                    cudaMemset(ws, 0x7f, wsb ? wsb : 16);
                    if (launched(kc_se_pool_mlp_fold(y2.d, x.d, ws, N, HW, C, is_max, w1.d, bias ? b1.d : NULL, w2.d,
                                                     bias ? b2.d : NULL, CR, a1, 0, 0, a2, 0, 0, wf.d, wsrc.d, K,
                                                     DTS[t], g_stream),
                                 fname)) {
                        check(fname, &wf, rw, DTS[t] == KC_F16 ? 2 : 1);
                        check(fname, &y2, ref, DTS[t] == KC_F16 ? 2 : 1);
                    }
                    free(rw);
                    tb_free(&wsrc);
                    tb_free(&wf);
                    tb_free(&y2);
                }
                cudaFree(ws);
            }
            free(ref);
            free(h);
            free(pl);
            tb_free(&x);
            tb_free(&w1);
            tb_free(&b1);
            tb_free(&w2);
            tb_free(&b2);
            tb_free(&y);
        }
}

/* Host comparison of n values under t's tier (as check), for buffers that are not tbufs. */
static void check_vals(const char *name, kc_dtype t, const double *got, const double *ref, size_t n, double mult) {
    double num = 0, den = 0, maxabs = 0, maxref = 0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(ref[i]) > maxref) maxref = fabs(ref[i]);
    double rtol = (t == KC_F16 ? 2e-3 : 1e-5) * mult, lim = (t == KC_F16 ? 1e-2 : 1e-4) * mult * (maxref > 1 ? maxref : 1);
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - ref[i]);
        if (!(d <= lim)) bad++;
        if (d > maxabs || d != d) maxabs = d;
        num += d * d;
        den += ref[i] * ref[i];
    }
    double rl2 = den > 0 ? sqrt(num / den) : sqrt(num);
    bool pass = bad == 0 && rl2 <= rtol;
    printf("%s %-58s %s n=%zu rl2=%.2e maxabs=%.2e%s\n", pass ? "ok  " : "FAIL", name, tname(t), n, rl2, maxabs,
           bad ? " [values out of tolerance]" : "");
    if (pass) g_pass++;
    else g_fail++;
}

/* kc_dwconv_nhwc_taps_pool (float16 depthwise 3x3/5x5 with SiLU, summing
 * y over slices of pixels) and kc_se_mlp_fold_parts on its parts, against
 * float64: y, the pooled means, the SE scales and the folded weights.  A
 * float32 case feeds kc_se_mlp_fold_parts parts made on the host. */
static void test_dw_pool_se_form(int tiles) {
    /* n, h, w, c, k (3 or 5), stride, z, cr */
    static const int dws[][8] = {{1, 112, 112, 32, 3, 1, 0, 8},  {1, 112, 112, 96, 3, 2, 0, 4},
                                 {1, 56, 56, 144, 3, 1, 1, 6},   {1, 14, 14, 672, 5, 1, 0, 28},
                                 {2, 7, 7, 1152, 3, 1, 0, 48},   {3, 5, 9, 40, 5, 2, 1, 10},
                                 {1, 28, 28, 240, 5, 1, 0, 10},
                                 /* over 2^18 (pixel, 8-channel) items: the run form, each kernel size and
                                  * stride, rows whose last run is short (OW 54, 27, 111, 55) */
                                 {5, 56, 54, 144, 5, 1, 1, 6},   {20, 56, 53, 144, 5, 2, 0, 6},
                                 {6, 112, 111, 32, 3, 1, 0, 8},  {8, 112, 110, 96, 3, 2, 1, 4}};
    kc_dwconv_set_tile_min(tiles ? 0 : INT64_MAX);
    for (size_t si = 0; si < sizeof dws / sizeof *dws + !tiles; si++) {
        const bool host_parts = si == sizeof dws / sizeof *dws; /* float32, C = 36, 300 parts made here */
        const int *d = host_parts ? NULL : dws[si];
        const kc_dtype t = host_parts ? KC_F32 : KC_F16;
        const int64_t N = host_parts ? 2 : d[0], H = host_parts ? 1 : d[1], W = host_parts ? 900 : d[2];
        const int64_t C = host_parts ? 36 : d[3], R = host_parts ? 1 : d[4], ST = host_parts ? 1 : d[5];
        const int64_t CR = host_parts ? 9 : d[7], K = si % 2 ? 24 : 40, pad = R / 2;
        const int64_t OH = (H + 2 * pad - R) / ST + 1, OW = (W + 2 * pad - R) / ST + 1, HW = OH * OW;
        const bool hz = !host_parts && d[6];
        char name[128];
        snprintf(name, sizeof name, "dw pool %s [%lld,%lld,%lld,%lld] %lldx%lld s%lld%s cr=%lld", tiles ? "tiles" : "slices",
                 (long long)N, (long long)H, (long long)W, (long long)C, (long long)R, (long long)R, (long long)ST,
                 hz ? " z" : "", (long long)CR);
        double *yref = xmalloc((size_t)(N * HW * C) * sizeof *yref), *pm = xmalloc((size_t)(N * C) * sizeof *pm);
        tbuf y = {0}, x = {0}, wt = {0}, bias = {0}, z = {0};
        float *part = NULL;
        int64_t parts = 0;
        bool ok = true;
        if (!host_parts) {
            x = tb_rand(t, (size_t)(N * H * W * C), -1, 1);
            wt = tb_rand(t, (size_t)(R * R * C), -0.5, 0.5);
            bias = tb_rand(t, (size_t)C, -0.5, 0.5);
            z = tb_rand(t, (size_t)(N * HW * C), -1, 1);
            y = tb_alloc(t, (size_t)(N * HW * C));
            for (int64_t n = 0; n < N; n++)
                for (int64_t oy = 0; oy < OH; oy++)
                    for (int64_t ox = 0; ox < OW; ox++)
                        for (int64_t c = 0; c < C; c++) {
                            double acc = bias.h[c];
                            for (int64_t r = 0; r < R; r++)
                                for (int64_t q = 0; q < R; q++) {
                                    int64_t iy = oy * ST - pad + r, ix = ox * ST - pad + q;
                                    if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                                        acc += x.h[((n * H + iy) * W + ix) * C + c] * wt.h[(r * R + q) * C + c];
                                }
                            size_t yi = (size_t)(((n * OH + oy) * OW + ox) * C + c);
                            if (hz) acc += z.h[yi];
                            yref[yi] = act_ref(5, acc, 0, 0);
                        }
            kc_dwconv p = {.n = N, .h = H, .w = W, .c = C, .oh = OH, .ow = OW, .r = (int)R, .s = (int)R,
                           .pt = (int)pad, .pl = (int)pad, .sh = (int)ST, .sw = (int)ST, .dh = 1, .dw = 1,
                           .act = 5};
            parts = kc_dwconv_pool_parts(&p, t);
            if (parts <= 0) {
                printf("FAIL %s: kc_dwconv_pool_parts %lld\n", name, (long long)parts);
                g_fail++;
                ok = false;
            } else {
                CK(cudaMalloc((void **)&part, (size_t)(N * parts * C) * sizeof(float)));
                CK(cudaMemset(part, 0x7f, (size_t)(N * parts * C) * sizeof(float)));
                ok = launched(kc_dwconv_nhwc_taps_pool(y.d, x.d, wt.d, bias.d, hz ? z.d : NULL, &p, part, t, g_stream),
                              name);
                if (ok) check(name, &y, yref, 1);
            }
        } else { /* x [N, HW, C] and its parts: sums over 3-pixel slices */
            x = tb_rand(t, (size_t)(N * HW * C), -1, 2);
            for (size_t i = 0; i < (size_t)(N * HW * C); i++) yref[i] = x.h[i];
            parts = HW / 3;
            float *hp = xmalloc((size_t)(N * parts * C) * sizeof *hp);
            for (int64_t n = 0; n < N; n++)
                for (int64_t k = 0; k < parts; k++)
                    for (int64_t c = 0; c < C; c++) {
                        double a = 0;
                        for (int64_t q = 3 * k; q < 3 * k + 3; q++) a += x.h[(n * HW + q) * C + c];
                        hp[(n * parts + k) * C + c] = (float)a;
                    }
            CK(cudaMalloc((void **)&part, (size_t)(N * parts * C) * sizeof(float)));
            CK(cudaMemcpy(part, hp, (size_t)(N * parts * C) * sizeof(float), cudaMemcpyHostToDevice));
            free(hp);
        }
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++) {
                double a = 0;
                for (int64_t q = 0; q < HW; q++) a += yref[(n * HW + q) * C + c];
                pm[n * C + c] = a / (double)HW;
            }
        if (ok) { /* the parts' means */
            float *hp = xmalloc((size_t)(N * parts * C) * sizeof *hp);
            double *got = xmalloc((size_t)(N * C) * sizeof *got);
            CK(cudaMemcpy(hp, part, (size_t)(N * parts * C) * sizeof(float), cudaMemcpyDeviceToHost));
            for (int64_t n = 0; n < N; n++)
                for (int64_t c = 0; c < C; c++) {
                    double a = 0;
                    for (int64_t k = 0; k < parts; k++) a += hp[(n * parts + k) * C + c];
                    got[n * C + c] = a / (double)HW;
                }
            char pname[176];
            snprintf(pname, sizeof pname, "%s means of %lld parts", name, (long long)parts);
            check_vals(pname, t, got, pm, (size_t)(N * C), 1);
            free(hp);
            free(got);
        }
        if (ok) { /* the SE MLP (SiLU, sigmoid) and its fold into [K, C] weights from the parts */
            double sc = 1.0 / sqrt((double)C);
            tbuf w1 = tb_rand(t, (size_t)(CR * C), -sc, sc), b1 = tb_rand(t, (size_t)CR, -0.5, 0.5);
            tbuf w2 = tb_rand(t, (size_t)(C * CR), -1, 1), b2 = tb_rand(t, (size_t)C, -0.5, 0.5);
            tbuf wsrc = tb_rand(t, (size_t)(K * C), -1, 1), wf = tb_alloc(t, (size_t)(N * K * C));
            tbuf s2 = tb_alloc(t, (size_t)(N * C));
            double *sref = xmalloc((size_t)(N * C) * sizeof *sref), *h = xmalloc((size_t)CR * sizeof *h);
            double *rw = xmalloc((size_t)(N * K * C) * sizeof *rw);
            for (int64_t n = 0; n < N; n++) {
                for (int64_t j = 0; j < CR; j++) {
                    double acc = b1.h[j];
                    for (int64_t i = 0; i < C; i++) acc += w1.h[j * C + i] * pm[n * C + i];
                    h[j] = act_ref(5, acc, 0, 0);
                }
                for (int64_t i = 0; i < C; i++) {
                    double acc = b2.h[i];
                    for (int64_t j = 0; j < CR; j++) acc += w2.h[i * CR + j] * h[j];
                    sref[n * C + i] = act_ref(4, acc, 0, 0);
                }
                for (int64_t o = 0; o < K; o++)
                    for (int64_t i = 0; i < C; i++) rw[(n * K + o) * C + i] = wsrc.h[o * C + i] * sref[n * C + i];
            }
            size_t wsb = kc_se_pool_ws(N, HW, C, t);
            void *ws = NULL;
            CK(cudaMalloc(&ws, wsb));
            CK(cudaMemset(ws, 0x7f, wsb));
            char fname[176];
            snprintf(fname, sizeof fname, "%s se fold K=%lld", name, (long long)K);
            if (launched(kc_se_mlp_fold_parts(s2.d, part, parts, ws, N, HW, C, w1.d, b1.d, w2.d, b2.d, CR, 5, 0, 0, 4, 0,
                                              0, wf.d, wsrc.d, K, t, g_stream),
                         fname)) {
                check(fname, &s2, sref, 2);
                check(fname, &wf, rw, 2);
            }
            cudaFree(ws);
            free(sref);
            free(h);
            free(rw);
            tb_free(&w1);
            tb_free(&b1);
            tb_free(&w2);
            tb_free(&b2);
            tb_free(&wsrc);
            tb_free(&wf);
            tb_free(&s2);
        }
        cudaFree(part);
        free(yref);
        free(pm);
        if (x.d) tb_free(&x);
        if (wt.d) tb_free(&wt);
        if (bias.d) tb_free(&bias);
        if (z.d) tb_free(&z);
        if (y.d) tb_free(&y);
    }
    kc_dwconv_set_tile_min(-1);
}

/* every case in the slices of small layers and in the tiles of large ones */
static void test_dw_pool_se(void) {
    test_dw_pool_se_form(0);
    test_dw_pool_se_form(1);
}

/* ---- fused elementwise ------------------------------------------------------------------------ */

static double fe_ref(int op, double v, double o) {
    switch (op) {
    case 0: return v + o;
    case 1: return v - o;
    case 2: return o - v;
    case 3: return v * o;
    case 4: return v / o;
    case 5: return o / v;
    case 6: return pow(v, o);
    case 7: return pow(o, v);
    case 16: return v < 0 ? 0 : v;
    case 17: return sig(v);
    case 18: return tanh(v);
    case 19: return exp(v);
    case 20: return log(v);
    case 21: return erf(v);
    case 22: return sqrt(v);
    case 23: return -v;
    case 24: return fabs(v);
    case 25: return 1 / v;
    case 26: return v < 0 ? o * v : v;
    case 27: return softplus(v);
    default: return v;
    }
}

/* One program: y dims, per-input shape (right-aligned, numpy broadcast),
 * value range per input, steps. */
typedef struct fe_case {
    const char *label;
    int rank;
    int64_t dims[KC_MAX_RANK];
    int n_in;
    int in_rank[KC_MAX_INPUTS];
    int64_t in_dims[KC_MAX_INPUTS][KC_MAX_RANK];
    double lo, hi;
    int n_steps;
    int op[KC_MAX_STEPS], arg[KC_MAX_STEPS];
    float imm[KC_MAX_STEPS];
    int inplace; /* y = input 0 (same shape) */
    int unaligned;
} fe_case;

static void fe_run(const fe_case *c, kc_dtype t) {
    kc_fe_program p;
    memset(&p, 0, sizeof p);
    p.n_steps = c->n_steps;
    p.n_inputs = c->n_in;
    p.rank = c->rank;
    size_t n = 1;
    for (int k = 0; k < c->rank; k++) p.dims[k] = c->dims[k], n *= (size_t)c->dims[k];
    for (int s = 0; s < c->n_steps; s++) p.op[s] = c->op[s], p.arg[s] = c->arg[s], p.imm[s] = c->imm[s];
    tbuf in[KC_MAX_INPUTS];
    const void *ptrs[KC_MAX_INPUTS];
    int64_t ist[KC_MAX_INPUTS][KC_MAX_RANK];
    for (int j = 0; j < c->n_in; j++) {
        size_t cnt = 1;
        int64_t acc = 1, own[KC_MAX_RANK];
        for (int k = c->in_rank[j] - 1; k >= 0; k--) own[k] = acc, acc *= c->in_dims[j][k], cnt *= (size_t)c->in_dims[j][k];
        for (int k = 0; k < c->rank; k++) {
            int q = k - (c->rank - c->in_rank[j]);
            ist[j][k] = p.stride[j][k] = q < 0 || c->in_dims[j][q] == 1 ? 0 : own[q];
        }
        size_t extra = c->unaligned ? 1 : 0;
        in[j] = tb_alloc(t, cnt + extra);
        for (size_t i = 0; i < cnt + extra; i++) in[j].h[i] = urand(c->lo, c->hi);
        tb_upload(&in[j]);
        ptrs[j] = (const char *)in[j].d + extra * kc_dtype_size(t);
    }
    double *ref = xmalloc(n * sizeof *ref);
    int64_t idx[KC_MAX_RANK] = {0};
    for (size_t i = 0; i < n; i++) {
        size_t off[KC_MAX_INPUTS] = {0};
        for (int j = 0; j < c->n_in; j++) {
            for (int k = 0; k < c->rank; k++) off[j] += (size_t)(idx[k] * ist[j][k]);
            off[j] += c->unaligned ? 1 : 0;
        }
        double v = in[0].h[off[0]];
        for (int s = 0; s < c->n_steps; s++) {
            int a = c->arg[s];
            double o = a >= 0 ? in[a].h[off[a]] : a == -1 ? (double)c->imm[s] : v;
            v = fe_ref(c->op[s], v, o);
        }
        ref[i] = v;
        for (int k = c->rank - 1; k >= 0; k--) {
            if (++idx[k] < c->dims[k]) break;
            idx[k] = 0;
        }
    }
    tbuf y = c->inplace ? in[0] : tb_alloc(t, n);
    char name[96];
    snprintf(name, sizeof name, "fe %s", c->label);
    if (launched(kc_fe(y.d, ptrs, &p, t, g_stream), name)) {
        y.n = n;
        check(name, &y, ref, c->n_steps > 8 ? 10 : 1);
    }
    free(ref);
    if (!c->inplace) tb_free(&y);
    for (int j = 0; j < c->n_in; j++) tb_free(&in[j]);
}

static void test_fe(void) {
    static fe_case cs[] = {
        {"dense [3,5,7]: +x1, *0.5, tanh, -x1", 3, {3, 5, 7}, 2, {3, 3}, {{3, 5, 7}, {3, 5, 7}}, -2, 2, 4,
         {0, 3, 18, 1}, {1, -1, -1, 1}, {0, 0.5f, 0, 0}, 0, 0},
        {"bcast [2,3,4,5] [3,1,1] [1]: *x1 +x2 sigmoid 1/v leaky", 4, {2, 3, 4, 5}, 3, {4, 3, 1},
         {{2, 3, 4, 5}, {3, 1, 1}, {1}}, -2, 2, 5, {3, 0, 17, 5, 26}, {1, 2, -1, -1, -1}, {0, 0, 0, 1, 0.2f}, 0, 0},
        {"[17,63] with [63]: rsub, div, abs, sqrt", 2, {17, 63}, 2, {2, 1}, {{17, 63}, {63}}, 0.5, 2, 4,
         {2, 4, 24, 22}, {1, 1, -1, -1}, {0, 0, 0, 0}, 0, 0},
        {"[7] dense tail: exp, log, neg, relu", 1, {7}, 1, {1}, {{7}}, -2, 2, 4, {19, 20, 23, 16}, {-1, -1, -1, -1},
         {0, 0, 0, 0}, 0, 0},
        {"[1]: erf softplus", 1, {1}, 1, {1}, {{1}}, -2, 2, 2, {21, 27}, {-1, -1}, {0, 0}, 0, 0},
        {"rank 0: *2 +1 reciprocal", 0, {0}, 1, {0}, {{0}}, 0.5, 2, 3, {3, 0, 25}, {-1, -1, -1}, {2, 1, 0}, 0, 0},
        {"pow: v^3 on negatives, v^2, *1/16, 2^v", 2, {9, 33}, 1, {2}, {{9, 33}}, -2, 2, 4, {6, 6, 3, 7},
         {-1, -1, -1, -1}, {3, 2, 0.0625f, 2}, 0, 0},
        {"pow: v^0.5, v^x1, x1^v (positive)", 2, {9, 33}, 2, {2, 2}, {{9, 33}, {9, 33}}, 0.3, 2, 3, {6, 6, 7},
         {-1, 1, 1}, {0.5f, 0, 0}, 0, 0},
        {"self: v*v, +v, sigmoid, rdiv x1", 3, {4, 1, 129}, 2, {3, 1}, {{4, 1, 129}, {1}}, 0.2, 2, 4, {3, 0, 17, 5},
         {-2, -2, -1, 1}, {0, 0, 0, 0}, 0, 0},
        {"in-place [1000]: tanh, *x1, +1", 1, {1000}, 2, {1, 1}, {{1000}, {1000}}, -3, 3, 3, {18, 3, 0},
         {-1, 1, -1}, {0, 0, 1}, 1, 0},
        {"unaligned [1001]: +x1, softplus, log", 1, {1001}, 2, {1, 1}, {{1001}, {1001}}, -1, 1, 3, {0, 27, 20},
         {1, -1, -1}, {0, 0, 0}, 0, 1},
        {"x0 broadcast [5,1]->[5,8] with x1 [5,8]: sub", 2, {5, 8}, 2, {2, 2}, {{5, 1}, {5, 8}}, -1, 1, 2, {1, 18},
         {1, -1}, {0, 0}, 0, 0},
        {"[1,7,1,9] mixed: leaky(.3) tanh exp", 4, {1, 7, 1, 9}, 1, {4}, {{1, 7, 1, 9}}, -2, 2, 3, {26, 18, 19},
         {-1, -1, -1}, {0.3f, 0, 0}, 0, 0},
        /* broadcast over outer dims with the inner dim a multiple of 8 (k_fe_bvec) */
        {"SE NHWC [2,5,3,24] * sigmoid([2,1,1,24])", 4, {2, 5, 3, 24}, 2, {4, 4}, {{2, 5, 3, 24}, {2, 1, 1, 24}}, -2,
         2, 3, {0, 17, 3}, {-1, -1, 1}, {0, 0, 0}, 0, 0},
        {"pos add [3,7,16] + [1,7,16]", 3, {3, 7, 16}, 2, {3, 3}, {{3, 7, 16}, {1, 7, 16}}, -2, 2, 1, {0}, {1}, {0},
         0, 0},
        {"[4,3,8] * [4,1,8] + [8], tanh", 3, {4, 3, 8}, 3, {3, 3, 1}, {{4, 3, 8}, {4, 1, 8}, {8}}, -2, 2, 3,
         {3, 0, 18}, {1, 2, -1}, {0, 0, 0}, 0, 0},
        {"constant along the inner dim: [2,3,16] - [2,3,1]", 3, {2, 3, 16}, 2, {3, 3}, {{2, 3, 16}, {2, 3, 1}}, -2,
         2, 1, {1}, {1}, {0}, 0, 0},
        {"inner dim from the broadcast input: [1,16] + [5,1]", 2, {5, 16}, 2, {2, 2}, {{1, 16}, {5, 1}}, -2, 2, 2,
         {0, 16}, {1, -1}, {0, 0}, 0, 0},
        {"SE NHWC unaligned [2,5,3,24] * [2,1,1,24]", 4, {2, 5, 3, 24}, 2, {4, 4}, {{2, 5, 3, 24}, {2, 1, 1, 24}},
         -2, 2, 1, {3}, {1}, {0}, 0, 1},
        {"SE NHWC in place [2,4,4,32] * [2,1,1,32]", 4, {2, 4, 4, 32}, 2, {4, 4}, {{2, 4, 4, 32}, {2, 1, 1, 32}}, -2,
         2, 1, {3}, {1}, {0}, 1, 0},
    };
    for (int t = 0; t < 2; t++)
        for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) fe_run(&cs[i], DTS[t]);
    /* every unary op alone, on its domain */
    for (int op = 16; op <= 27; op++) {
        bool pos = op == 20 || op == 22 || op == 25;
        fe_case c = {"", 2, {3, 67}, 1, {2}, {{3, 67}}, pos ? 0.1 : -3, 3, 1, {op}, {-1}, {0.15f}, 0, 0};
        char label[32];
        snprintf(label, sizeof label, "unary op %d [3,67]", op);
        c.label = label;
        for (int t = 0; t < 2; t++) fe_run(&c, DTS[t]);
    }
    /* 8 inputs, 64 steps, broadcast over rank 8 (y [2,1,3,2,2,1,3,5]) */
    fe_case big = {"8 inputs, 64 steps, rank 8", 8, {2, 1, 3, 2, 2, 1, 3, 5}, 8, {8, 1, 2, 3, 8, 4, 5, 8},
                   {{2, 1, 3, 2, 2, 1, 3, 5},
                    {5},
                    {3, 1},
                    {1, 3, 1},
                    {2, 1, 3, 2, 2, 1, 3, 5},
                    {2, 1, 1, 5},
                    {2, 1, 1, 3, 1},
                    {1, 1, 3, 2, 2, 1, 3, 5}}};
    big.lo = 0.5, big.hi = 1.5;
    big.n_steps = 64;
    static const int cyc[4] = {0, 3, 1, 4}; /* add, mul, sub, div: keeps values moderate */
    for (int s = 0; s < 64; s++) {
        big.op[s] = s % 16 == 15 ? 17 : cyc[s % 4];
        big.arg[s] = s % 16 == 15 ? -1 : (s % 4 == 3 ? (s / 4) % 8 : (s * 5) % 8);
        big.imm[s] = 0;
    }
    for (int t = 0; t < 2; t++) fe_run(&big, DTS[t]);
}

/* ---- einsum -------------------------------------------------------------------------------------------- */

/* terms "x0,x1->y" of letters; sizes per letter in sz['a'..'z']. The
 * reference runs over every combination of all labels, in double. */
static void einsum_run(const char *label, const char *t0, const char *t1, const char *ty, const int *sz, kc_dtype t) {
    const char *terms[2] = {t0, t1};
    int n_in = t1 ? 2 : 1;
    char all[KC_EINSUM_LABELS];
    int na = 0;
    for (const char *p = ty; *p; p++) all[na++] = *p;
    int n_out = na;
    for (int k = 0; k < n_in; k++)
        for (const char *p = terms[k]; *p; p++)
            if (!memchr(all, *p, (size_t)na)) all[na++] = *p;
    kc_einsum_desc d;
    memset(&d, 0, sizeof d);
    d.n_out = n_out;
    d.n_sum = na - n_out;
    for (int l = 0; l < na; l++) d.size[l] = sz[all[l] - 'a'];
    tbuf x[2];
    for (int k = 0; k < n_in; k++) {
        size_t cnt = 1;
        int r = (int)strlen(terms[k]);
        for (int i = r - 1; i >= 0; i--) {
            int l = (int)((const char *)memchr(all, terms[k][i], (size_t)na) - all);
            d.st[k][l] = (int64_t)cnt;
            cnt *= (size_t)sz[terms[k][i] - 'a'];
        }
        x[k] = tb_rand(t, cnt, -1, 1);
    }
    size_t ny = 1, ntot = 1;
    for (int l = 0; l < na; l++) ntot *= (size_t)d.size[l];
    for (int l = 0; l < n_out; l++) ny *= (size_t)d.size[l];
    double *ref = xmalloc(ny * sizeof *ref), *mag = xmalloc(ny * sizeof *mag);
    memset(ref, 0, ny * sizeof *ref);
    memset(mag, 0, ny * sizeof *mag);
    int64_t c[KC_EINSUM_LABELS] = {0};
    for (size_t it = 0; it < ntot; it++) {
        size_t yi = 0, o[2] = {0, 0};
        for (int l = 0; l < n_out; l++) yi = yi * (size_t)d.size[l] + (size_t)c[l];
        for (int l = 0; l < na; l++) o[0] += (size_t)(c[l] * d.st[0][l]), o[1] += (size_t)(c[l] * d.st[1][l]);
        double term = x[0].h[o[0]] * (n_in == 2 ? x[1].h[o[1]] : 1.0);
        ref[yi] += term;
        mag[yi] += fabs(term);
        for (int l = na - 1; l >= 0; l--) {
            if (++c[l] < d.size[l]) break;
            c[l] = 0;
        }
    }
    /* the tiled GEMM form where it applies, then the one-thread-per-output kernel */
    for (int naive = 0; naive < 2; naive++) {
        tbuf y = tb_alloc(t, ny);
        char name[128];
        snprintf(name, sizeof name, "einsum %s%s", label, naive ? " (naive kernel)" : "");
        d.naive = naive;
        if (launched(kc_einsum(y.d, x[0].d, n_in == 2 ? x[1].d : NULL, &d, t, g_stream), name))
            check_mag(name, &y, ref, mag, 2);
        tb_free(&y);
    }
    free(ref);
    free(mag);
    for (int k = 0; k < n_in; k++) tb_free(&x[k]);
}

static void test_einsum(void) {
    int sz[26] = {0};
    for (int t = 0; t < 2; t++) {
        kc_dtype dt = DTS[t];
        /* SAM's decomposed relative positions: q [B,h,w,c] with Rh [h,k,c] / Rw [w,k,c] */
        sz['b' - 'a'] = 3, sz['h' - 'a'] = 5, sz['w' - 'a'] = 4, sz['c' - 'a'] = 7, sz['k' - 'a'] = 6;
        einsum_run("bhwc,hkc->bhwk", "bhwc", "hkc", "bhwk", sz, dt);
        einsum_run("bhwc,wkc->bhwk", "bhwc", "wkc", "bhwk", sz, dt);
        /* tile edges: M, N and K not multiples of 64/16; SAM's windowed (14x14, 64 channels) and
           global (64x64) blocks */
        sz['b' - 'a'] = 2, sz['h' - 'a'] = 3, sz['w' - 'a'] = 37, sz['c' - 'a'] = 19, sz['k' - 'a'] = 70;
        einsum_run("bhwc,hkc->bhwk (tile edges)", "bhwc", "hkc", "bhwk", sz, dt);
        sz['b' - 'a'] = 24, sz['h' - 'a'] = 14, sz['w' - 'a'] = 14, sz['c' - 'a'] = 64, sz['k' - 'a'] = 14;
        einsum_run("bhwc,wkc->bhwk (SAM window)", "bhwc", "wkc", "bhwk", sz, dt);
        sz['b' - 'a'] = 2, sz['h' - 'a'] = 64, sz['w' - 'a'] = 64, sz['c' - 'a'] = 64, sz['k' - 'a'] = 64;
        einsum_run("bhwc,hkc->bhwk (SAM global)", "bhwc", "hkc", "bhwk", sz, dt);
        sz['i' - 'a'] = 17, sz['j' - 'a'] = 33, sz['k' - 'a'] = 9;
        einsum_run("ij,jk->ik", "ij", "jk", "ik", sz, dt);
        einsum_run("ij,ij->ji (no sum)", "ij", "ij", "ji", sz, dt);
        einsum_run("ij->i", "ij", NULL, "i", sz, dt);
        einsum_run("ij,ij-> (scalar)", "ij", "ij", "", sz, dt);
        sz['a' - 'a'] = 3, sz['b' - 'a'] = 1, sz['c' - 'a'] = 5, sz['d' - 'a'] = 65;
        einsum_run("abc,cd->ad (two summed labels)", "abc", "cd", "ad", sz, dt);
        einsum_run("abd->dba", "abd", NULL, "dba", sz, dt);
        sz['c' - 'a'] = 0;
        einsum_run("abc,cd->ad (empty sum)", "abc", "cd", "ad", sz, dt);
    }
}

/* ---- softmax -------------------------------------------------------------------------------------------- */

typedef struct sm_case {
    int64_t outer, axis, inner;
    float scale;
    int mask; /* 0 none, 1 float32 plain [outer, axis, inner], 2 float16 [B, axis] broadcast over div rows */
    int64_t div;
} sm_case;

static void test_softmax(void) {
    static const sm_case cs[] = {
        {1, 1, 1, 1, 0, 1},     {3, 7, 1, 1, 0, 1},    {5, 100, 1, 0.5f, 1, 1}, {4, 129, 1, 1, 2, 2},
        {6, 1000, 1, 1, 2, 3},  {4, 1024, 1, 1, 1, 1}, {2, 1025, 1, 1, 0, 1},   {3, 3000, 1, 0.125f, 2, 1},
        {2, 17, 5, 1, 0, 1},    {3, 9, 63, 1, 1, 1},   {2, 600, 3, 1, 0, 1},    {300, 33, 1, 1, 0, 1},
    };
    for (int t = 0; t < 2; t++)
        for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
            const sm_case *k = &cs[c];
            size_t n = (size_t)(k->outer * k->axis * k->inner);
            tbuf x = tb_rand(DTS[t], n, -5, 5);
            int64_t mb = k->outer / k->div > 0 ? (k->outer + k->div - 1) / k->div : 1, mod = 1, mos = 0, mas = 0, mis = 0;
            size_t mn = 0;
            if (k->mask == 1) mn = n, mod = k->outer, mos = k->axis * k->inner, mas = k->inner, mis = 1;
            if (k->mask == 2) mn = (size_t)(mb * k->axis), mod = mb, mos = k->axis, mas = 1, mis = 0;
            kc_dtype mt = k->mask == 2 ? KC_F16 : KC_F32;
            tbuf m = tb_alloc(mt, mn ? mn : 1);
            for (size_t i = 0; i < mn; i++) m.h[i] = urand(0, 1) < 0.2 ? -INFINITY : urand(-2, 2);
            if (k->mask && k->axis > 1) m.h[0] = 0; /* at least one unmasked entry in the first row */
            if (mn) tb_upload(&m);
            bool inplace = c == 3;
            tbuf y = inplace ? x : tb_alloc(DTS[t], n);
            double *ref = xmalloc(n * sizeof *ref), *e = xmalloc((size_t)k->axis * sizeof *e);
            for (int64_t o = 0; o < k->outer; o++)
                for (int64_t i = 0; i < k->inner; i++) {
                    double mx = -INFINITY, sum = 0;
                    for (int64_t a = 0; a < k->axis; a++) {
                        double v = (double)k->scale * x.h[(o * k->axis + a) * k->inner + i];
                        if (k->mask) v += m.h[(o / k->div) % mod * mos + a * mas + i * mis];
                        e[a] = v;
                        if (!isnan(mx) && (isnan(v) || v > mx)) mx = v;
                    }
                    for (int64_t a = 0; a < k->axis; a++) sum += e[a] = exp(e[a] - mx);
                    for (int64_t a = 0; a < k->axis; a++) ref[(o * k->axis + a) * k->inner + i] = e[a] / sum;
                }
            char name[96];
            snprintf(name, sizeof name, "softmax [%lld,%lld,%lld] scale=%g mask=%d%s", (long long)k->outer,
                     (long long)k->axis, (long long)k->inner, k->scale, k->mask, inplace ? " in-place" : "");
            if (launched(kc_softmax(y.d, x.d, k->outer, k->axis, k->inner, k->scale, k->mask ? m.d : NULL, mt,
                                    k->div, mod, mos, mas, mis, DTS[t], g_stream),
                         name))
                check(name, &y, ref, 1);
            free(ref);
            free(e);
            if (!inplace) tb_free(&y);
            tb_free(&x);
            tb_free(&m);
        }
    /* a fully masked row gives NaN, as the CPU reference */
    for (int t = 0; t < 2; t++) {
        tbuf x = tb_rand(DTS[t], 2 * 40, -1, 1), m = tb_alloc(KC_F32, 2 * 40), y = tb_alloc(DTS[t], 2 * 40);
        double ref[80];
        for (int i = 0; i < 80; i++) m.h[i] = i < 40 ? -INFINITY : 0;
        tb_upload(&m);
        for (int r = 0; r < 2; r++) {
            double mx = -INFINITY, sum = 0;
            for (int a = 0; a < 40; a++) mx = fmax(mx, x.h[r * 40 + a] + m.h[r * 40 + a]);
            for (int a = 0; a < 40; a++) sum += exp(x.h[r * 40 + a] + m.h[r * 40 + a] - mx);
            for (int a = 0; a < 40; a++) ref[r * 40 + a] = exp(x.h[r * 40 + a] + m.h[r * 40 + a] - mx) / sum;
        }
        for (int a = 0; a < 40; a++) ref[a] = NAN;
        if (launched(kc_softmax(y.d, x.d, 2, 40, 1, 1, m.d, KC_F32, 1, 2, 40, 1, 0, DTS[t], g_stream), "softmax masked row"))
            check("softmax fully masked row -> NaN", &y, ref, 1);
        tb_free(&x);
        tb_free(&m);
        tb_free(&y);
    }
}

/* ---- layernorm ------------------------------------------------------------------------------------------ */

static void test_layernorm(void) {
    /* cols % 8 == 0 (64, 520, 768, 776, 1000, 1024) take the 16-byte warp kernels (float16 by default:
       the device-filling grid, k_layernorm_h8p, where 12000 x 768 and 9000 x 264 have more rows than that grid
       has warps, so warps loop over rows with the next row prefetched; KILN_CUDA_LN_PERSIST=0: one row per
       warp, k_layernorm_warp8: bench/gpu scripts run this test both ways), the others the scalar ones */
    static const int64_t cs[][2] = {{1, 1},  {3, 7},    {5, 100}, {4, 1000},  {2, 1024}, {3, 1025},
                                    {2, 4097}, {130, 64}, {3, 520}, {257, 768}, {2, 776}, {12000, 768}, {9000, 264}};
    for (int t = 0; t < 2; t++)
        for (size_t c = 0; c < sizeof cs / sizeof *cs; c++)
            for (int rms = 0; rms < 2; rms++) {
                int64_t R = cs[c][0], C = cs[c][1];
                size_t n = (size_t)(R * C);
                int have = (int)((c + (size_t)rms) % 3); /* 0: scale and bias, 1: scale only, 2: neither */
                bool inplace = c == 4 && !rms;
                tbuf x = tb_rand(DTS[t], n, -3, 5), sc = tb_rand(DTS[t], (size_t)C, 0.5, 1.5),
                     bi = tb_rand(DTS[t], (size_t)C, -1, 1);
                tbuf y = inplace ? x : tb_alloc(DTS[t], n);
                double *ref = xmalloc(n * sizeof *ref);
                float eps = 1e-5f;
                for (int64_t r = 0; r < R; r++) {
                    const double *xr = x.h + r * C;
                    double mean = 0, q = 0;
                    if (!rms) {
                        for (int64_t k = 0; k < C; k++) mean += xr[k];
                        mean /= (double)C;
                    }
                    for (int64_t k = 0; k < C; k++) q += (xr[k] - mean) * (xr[k] - mean);
                    double inv = 1 / sqrt(q / (double)C + eps);
                    for (int64_t k = 0; k < C; k++)
                        ref[r * C + k] = (xr[k] - mean) * inv * (have < 2 ? sc.h[k] : 1) + (have == 0 && !rms ? bi.h[k] : 0);
                }
                char name[96];
                snprintf(name, sizeof name, "%s [%lld,%lld] scale=%d bias=%d%s", rms ? "rmsnorm" : "layernorm",
                         (long long)R, (long long)C, have < 2, have == 0 && !rms, inplace ? " in-place" : "");
                if (launched(kc_layernorm(y.d, x.d, have < 2 ? sc.d : NULL, have == 0 ? bi.d : NULL, R, C, eps, rms,
                                          DTS[t], g_stream),
                             name))
                    check(name, &y, ref, 1);
                free(ref);
                if (!inplace) tb_free(&y);
                tb_free(&x);
                tb_free(&sc);
                tb_free(&bi);
            }
}

/* ---- pooling and reductions ------------------------------------------------------------------------------ */

static void test_pool2d(void) {
    /* n c h w oh ow kh kw sh sw dh dw pt pl is_max cip */
    static const int cs[][16] = {
        {1, 1, 7, 7, 4, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0},   {2, 3, 7, 7, 4, 4, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0},
        {2, 3, 7, 7, 4, 4, 3, 3, 2, 2, 1, 1, 1, 1, 0, 1},   {1, 5, 17, 13, 9, 5, 2, 3, 2, 3, 1, 1, 0, 1, 0, 0},
        {1, 2, 9, 11, 5, 7, 3, 3, 2, 2, 2, 2, 2, 2, 1, 0},  {1, 2, 9, 11, 5, 7, 3, 3, 2, 2, 2, 2, 2, 2, 0, 0},
        {3, 4, 8, 8, 4, 4, 2, 2, 2, 2, 1, 1, 0, 0, 1, 0},   {1, 1, 6, 6, 3, 3, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0},
        {2, 3, 32, 31, 16, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
        {1, 3, 5, 5, 3, 3, 3, 3, 2, 2, 1, 1, 1, 1, 0, 1},
    };
    for (int t = 0; t < 2; t++)
        for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
            const int *q = cs[c];
            kc_pool2d p = {q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7], q[8], q[9], q[10], q[11], q[12], q[13], q[14], q[15]};
            size_t nx = (size_t)(p.n * p.c * p.h * p.w), ny = (size_t)(p.n * p.c * p.oh * p.ow);
            tbuf x = tb_rand(DTS[t], nx, -3, 3), y = tb_alloc(DTS[t], ny);
            if (nx > 5) {
                x.h[3] = NAN; /* never wins a max */
                tb_upload(&x);
            }
            double *ref = xmalloc(ny * sizeof *ref);
            for (int64_t pl = 0; pl < p.n * p.c; pl++)
                for (int64_t oy = 0; oy < p.oh; oy++)
                    for (int64_t ox = 0; ox < p.ow; ox++) {
                        double acc = p.is_max ? -INFINITY : 0;
                        int cnt = 0;
                        for (int ky = 0; ky < p.kh; ky++)
                            for (int kx = 0; kx < p.kw; kx++) {
                                int64_t iy = oy * p.sh - p.pt + ky * p.dh, ix = ox * p.sw - p.pl + kx * p.dw;
                                if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) continue;
                                double v = x.h[(pl * p.h + iy) * p.w + ix];
                                cnt++;
                                if (!p.is_max) acc += v;
                                else if (!isnan(v) && v > acc) acc = v;
                            }
                        if (!p.is_max) acc /= p.count_include_pad ? p.kh * p.kw : cnt;
                        ref[(pl * p.oh + oy) * p.ow + ox] = acc;
                    }
            /* the NaN input makes averages that include it NaN: the reference has them too */
            char name[128];
            snprintf(name, sizeof name, "pool2d %s [%d,%d,%d,%d]->[%d,%d] k=%dx%d s=%d,%d d=%d,%d p=%d,%d cip=%d",
                     p.is_max ? "max" : "avg", q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7], q[8], q[9], q[10], q[11],
                     q[12], q[13], q[15]);
            if (launched(kc_pool2d_run(y.d, x.d, &p, DTS[t], g_stream), name)) check(name, &y, ref, 1);
            free(ref);
            tb_free(&x);
            tb_free(&y);
        }
}

/* Pooling with end pads (count_include_pad's divisor clipped to the padded
 * input, as src/cpu/ref: ceil-mode taps beyond the end pads do not count;
 * no clipping when pb == pr == 0), ceil mode, dilation, in NCHW and NHWC
 * (vectorized when C is a multiple of 8 / 4, scalar otherwise or with a
 * misaligned x). */
static void test_pool2d_pads(void) {
    /* n c h w kh kw sh sw dh dw pt pl pb pr ceil is_max cip */
    static const int cs[][17] = {
        {2, 8, 7, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 1, 0},  {2, 8, 7, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0, 1},
        {1, 16, 8, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 1}, {1, 16, 8, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 3, 9, 11, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 0, 1, 0}, {1, 17, 9, 11, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 0, 1},
        {2, 4, 6, 6, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 1, 0, 1},  {1, 64, 17, 13, 2, 3, 2, 3, 1, 1, 0, 1, 0, 1, 0, 0, 0},
        {3, 24, 8, 8, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0, 1, 0}, {1, 8, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
        {2, 16, 5, 5, 3, 3, 2, 2, 1, 1, 1, 1, 0, 1, 1, 0, 1}, {1, 12, 10, 7, 3, 2, 3, 2, 1, 2, 1, 0, 2, 1, 1, 0, 1},
        {1, 7, 13, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0},
    };
    for (int t = 0; t < 2; t++)
        for (size_t k = 0; k < sizeof cs / sizeof *cs; k++)
            for (int lay = 0; lay < 3; lay++) { /* 0 NCHW, 1 NHWC, 2 NHWC with x misaligned by one element */
                const int *q = cs[k];
                if (lay == 2 && q[1] % 4 != 0) continue;
                kc_pool2d p;
                memset(&p, 0, sizeof p);
                p.n = q[0], p.c = q[1], p.h = q[2], p.w = q[3], p.kh = q[4], p.kw = q[5], p.sh = q[6], p.sw = q[7];
                p.dh = q[8], p.dw = q[9], p.pt = q[10], p.pl = q[11], p.pb = q[12], p.pr = q[13];
                p.is_max = q[15], p.count_include_pad = q[16], p.nhwc = lay > 0;
                int ceil_mode = q[14];
                /* output size as ONNX / PyTorch: the last window starts inside the input or the begin padding */
                int64_t ext_h = (int64_t)(p.kh - 1) * p.dh + 1, ext_w = (int64_t)(p.kw - 1) * p.dw + 1;
                int64_t nh = p.h + p.pt + p.pb - ext_h, nw = p.w + p.pl + p.pr - ext_w;
                p.oh = (ceil_mode ? (nh + p.sh - 1) / p.sh : nh / p.sh) + 1;
                p.ow = (ceil_mode ? (nw + p.sw - 1) / p.sw : nw / p.sw) + 1;
                if (ceil_mode && (p.oh - 1) * p.sh >= p.h + p.pt) p.oh--;
                if (ceil_mode && (p.ow - 1) * p.sw >= p.w + p.pl) p.ow--;
                int64_t xoff = lay == 2;
                size_t nx = (size_t)(p.n * p.c * p.h * p.w), ny = (size_t)(p.n * p.c * p.oh * p.ow);
                tbuf x = tb_rand(DTS[t], nx + (size_t)xoff, -3, 3), y = tb_alloc(DTS[t], ny);
                if (nx > 5) {
                    x.h[xoff + 3] = NAN; /* never wins a max; averages over it are NaN in the reference too */
                    tb_upload(&x);
                }
                double *ref = xmalloc(ny * sizeof *ref);
                for (int64_t n = 0; n < p.n; n++)
                    for (int64_t c = 0; c < p.c; c++)
                        for (int64_t oy = 0; oy < p.oh; oy++)
                            for (int64_t ox = 0; ox < p.ow; ox++) {
                                double acc = p.is_max ? -INFINITY : 0;
                                int cnt = 0, hs = (int)(oy * p.sh - p.pt), ws = (int)(ox * p.sw - p.pl), ch = 0, cw = 0;
                                for (int ky = 0; ky < p.kh; ky++) {
                                    int64_t iy = hs + ky * p.dh;
                                    ch += iy < p.h + p.pb; /* inside the padded input (iy >= -pt always) */
                                    for (int kx = 0; kx < p.kw; kx++) {
                                        int64_t ix = ws + kx * p.dw;
                                        if (ky == 0) cw += ix < p.w + p.pr;
                                        if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) continue;
                                        double v = x.h[xoff + (p.nhwc ? ((n * p.h + iy) * p.w + ix) * p.c + c
                                                                       : ((n * p.c + c) * p.h + iy) * p.w + ix)];
                                        cnt++;
                                        if (!p.is_max) acc += v;
                                        else if (!isnan(v) && v > acc) acc = v;
                                    }
                                }
                                double div = p.pb == 0 && p.pr == 0 ? p.kh * p.kw : (double)ch * cw;
                                if (!p.is_max) acc /= p.count_include_pad ? div : cnt;
                                ref[p.nhwc ? ((n * p.oh + oy) * p.ow + ox) * p.c + c : ((n * p.c + c) * p.oh + oy) * p.ow + ox] =
                                    acc;
                            }
                char name[160];
                snprintf(name, sizeof name, "pool2d %s %s [%d,%d,%d,%d]->[%lld,%lld] k=%dx%d s=%d,%d d=%d,%d p=%d,%d,%d,%d%s%s",
                         p.is_max ? "max" : "avg", lay == 0 ? "nchw" : lay == 1 ? "nhwc" : "nhwc+1", q[0], q[1], q[2], q[3],
                         (long long)p.oh, (long long)p.ow, q[4], q[5], q[6], q[7], q[8], q[9], q[10], q[11], q[12], q[13],
                         ceil_mode ? " ceil" : "", p.count_include_pad ? " cip" : "");
                if (launched(kc_pool2d_run(y.d, (char *)x.d + xoff * (int64_t)kc_dtype_size(DTS[t]), &p, DTS[t], g_stream),
                             name))
                    check(name, &y, ref, 1);
                free(ref);
                tb_free(&x);
                tb_free(&y);
            }
}

static void test_reduce(void) {
    static const int64_t cs[][3] = {{1, 1, 1}, {3, 7, 1}, {2, 2000, 1}, {4, 5, 3}, {2, 3, 1000},
                                    {1, 1000, 2}, {3, 0, 2}, {5, 1024, 1}, {2, 9, 300}, {1, 20000, 1}};
    static const char *ops[] = {"sum", "mean", "max", "min", "sumsq", "l2"};
    for (int t = 0; t < 2; t++)
        for (size_t c = 0; c < sizeof cs / sizeof *cs; c++)
            for (int op = 0; op < 6; op++) {
                int64_t O = cs[c][0], Rd = cs[c][1], I = cs[c][2];
                size_t nx = (size_t)(O * Rd * I), ny = (size_t)(O * I);
                tbuf x = tb_rand(DTS[t], nx ? nx : 1, 0.5, 1.5), y = tb_alloc(DTS[t], ny);
                if (op == 2 && nx > 40) {
                    x.h[17] = NAN; /* max propagates NaN */
                    tb_upload(&x);
                }
                double *ref = xmalloc(ny * sizeof *ref);
                for (int64_t o = 0; o < O; o++)
                    for (int64_t i = 0; i < I; i++) {
                        double acc = op == 2 ? -INFINITY : op == 3 ? INFINITY : 0;
                        for (int64_t r = 0; r < Rd; r++) {
                            double v = x.h[(o * Rd + r) * I + i];
                            if (op == 2) acc = (isnan(acc) || isnan(v)) ? NAN : fmax(acc, v);
                            else if (op == 3) acc = (isnan(acc) || isnan(v)) ? NAN : fmin(acc, v);
                            else acc += op >= 4 ? v * v : v;
                        }
                        ref[o * I + i] = op == 1 ? acc / (double)Rd : op == 5 ? sqrt(acc) : acc;
                    }
                char name[96];
                snprintf(name, sizeof name, "reduce %s [%lld,%lld,%lld]", ops[op], (long long)O, (long long)Rd,
                         (long long)I);
                if (launched(kc_reduce(y.d, x.d, O, Rd, I, op, DTS[t], g_stream), name))
                    check(name, &y, ref, Rd > 1000 ? 4 : 1);
                free(ref);
                tb_free(&x);
                tb_free(&y);
            }
}

static void test_global_pool(void) {
    static const int64_t cs[][2] = {{1, 1}, {6, 7}, {8, 49}, {3, 3000}, {200, 9}};
    for (int t = 0; t < 2; t++)
        for (size_t c = 0; c < sizeof cs / sizeof *cs; c++)
            for (int mx = 0; mx < 2; mx++) {
                int64_t R = cs[c][0], I = cs[c][1];
                tbuf x = tb_rand(DTS[t], (size_t)(R * I), -2, 2), y = tb_alloc(DTS[t], (size_t)R);
                double *ref = xmalloc((size_t)R * sizeof *ref);
                for (int64_t r = 0; r < R; r++) {
                    double acc = mx ? -INFINITY : 0;
                    for (int64_t i = 0; i < I; i++) acc = mx ? fmax(acc, x.h[r * I + i]) : acc + x.h[r * I + i];
                    ref[r] = mx ? acc : acc / (double)I;
                }
                char name[96];
                snprintf(name, sizeof name, "global_pool %s [%lld,%lld]", mx ? "max" : "avg", (long long)R, (long long)I);
                if (launched(kc_global_pool(y.d, x.d, R, I, mx, DTS[t], g_stream), name)) check(name, &y, ref, 4);
                free(ref);
                tb_free(&x);
                tb_free(&y);
            }
}

/* ---- resize ----------------------------------------------------------------------------------------------- */

/* ONNX Resize: x_original of output coordinate o. */
static double rz_coord(int coord, double o, int64_t L, double s, double owidth) {
    switch (coord) {
    case 1: return o / s;
    case 2: return owidth == 1 ? 0 : o * (double)(L - 1) / (owidth - 1);
    case 3: return owidth > 1 ? (o + 0.5) / s - 0.5 : 0;
    case 4: return (o + 0.5) / s;
    default: return (o + 0.5) / s - 0.5;
    }
}

static int64_t rz_clamp(int64_t k, int64_t L) { return k < 0 ? 0 : k >= L ? L - 1 : k; }

/* ONNX nearest_mode of xo (round_prefer_floor / ceil, floor, ceil), clamped. */
static int64_t rz_nearest(int nm, double xo, int64_t L) {
    double f = floor(xo), k;
    if (nm == 2) k = f;
    else if (nm == 3) k = ceil(xo);
    else if (xo - f == 0.5) k = nm == 0 ? f : f + 1;
    else k = round(xo);
    return rz_clamp((int64_t)k, L);
}

static void test_resize(void) {
    /* n c h w, scale_h scale_w, sizes (1: O from sizes, owidth = O; 2: scales
     * as given with O and length_resized = O passed as len_h / len_w) oh ow */
    typedef struct {
        int n, c, h, w;
        float sh, sw;
        int sizes, oh, ow;
    } rz_shape;
    static const rz_shape shp[] = {
        {1, 3, 4, 5, 2, 2, 0, 0, 0},      {2, 2, 7, 9, 0.5f, 0.5f, 0, 0, 0},  {1, 1, 5, 6, 1.5f, 1.75f, 0, 0, 0},
        {1, 2, 5, 5, 0, 0, 1, 3, 8},      {1, 1, 1, 3, 3, 1, 0, 0, 0},        {2, 3, 17, 13, 0, 0, 1, 17, 1},
        {1, 4, 6, 10, 0.6f, 2.5f, 0, 0, 0}, {2, 8, 4, 5, 2, 2, 0, 0, 0},      {1, 16, 7, 9, 0, 0, 1, 13, 4},
        {1, 8, 6, 5, 1.5f, 1.5f, 2, 8, 7}, {2, 12, 5, 3, 0.5f, 3, 0, 0, 0},
    };
    static const int modes[][3] = {/* mode coord nearest */
                                   {0, 0, 0}, {0, 1, 2}, {0, 2, 1}, {0, 3, 3}, {0, 4, 0}, {0, 0, 1}, {0, 1, 0},
                                   {1, 0, 0}, {1, 1, 0}, {1, 2, 0}, {1, 3, 0}, {1, 4, 0}};
    for (int t = 0; t < 2; t++)
        for (size_t s = 0; s < sizeof shp / sizeof *shp; s++)
            for (int nhwc = 0; nhwc < 2; nhwc++)
                for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
                    const rz_shape *z = &shp[s];
                    kc_resize p;
                    memset(&p, 0, sizeof p);
                    p.n = z->n, p.c = z->c, p.h = z->h, p.w = z->w, p.nhwc = nhwc;
                    double owh, oww;
                    if (z->sizes == 1) {
                        p.oh = z->oh, p.ow = z->ow;
                        p.scale_h = (float)((double)z->oh / z->h), p.scale_w = (float)((double)z->ow / z->w);
                        owh = z->oh, oww = z->ow;
                        if (nhwc) p.len_h = p.oh, p.len_w = p.ow; /* the same as the guess */
                    } else if (z->sizes == 2) {
                        p.oh = z->oh, p.ow = z->ow, p.len_h = z->oh, p.len_w = z->ow;
                        p.scale_h = z->sh, p.scale_w = z->sw;
                        owh = z->oh, oww = z->ow;
                    } else {
                        p.scale_h = z->sh, p.scale_w = z->sw;
                        owh = (double)z->sh * z->h, oww = (double)z->sw * z->w;
                        p.oh = (int64_t)floor(owh), p.ow = (int64_t)floor(oww);
                    }
                    p.mode = modes[m][0], p.coord = modes[m][1], p.nearest = modes[m][2];
                    size_t nx = (size_t)(p.n * p.c * p.h * p.w), ny = (size_t)(p.n * p.c * p.oh * p.ow);
                    tbuf x = tb_rand(DTS[t], nx, -3, 3), y = tb_alloc(DTS[t], ny);
                    double *ref = xmalloc(ny * sizeof *ref);
                    for (int64_t n = 0; n < p.n; n++)
                        for (int64_t c = 0; c < p.c; c++)
                            for (int64_t oy = 0; oy < p.oh; oy++)
                                for (int64_t ox = 0; ox < p.ow; ox++) {
                                    /* an axis with O == L and scale 1 is not resized (as src/cpu/ref) */
                                    double cy = p.oh == p.h && p.scale_h == 1
                                                    ? (double)oy
                                                    : rz_coord(p.coord, (double)oy, p.h, p.scale_h, owh);
                                    double cx = p.ow == p.w && p.scale_w == 1
                                                    ? (double)ox
                                                    : rz_coord(p.coord, (double)ox, p.w, p.scale_w, oww);
                                    /* element (iy, ix) of plane (n, c) */
#define RZ_X(iy, ix) x.h[nhwc ? ((n * p.h + (iy)) * p.w + (ix)) * p.c + c : ((n * p.c + c) * p.h + (iy)) * p.w + (ix)]
                                    double v;
                                    if (p.mode == 0) {
                                        v = RZ_X(rz_nearest(p.nearest, cy, p.h), rz_nearest(p.nearest, cx, p.w));
                                    } else {
                                        double fy = floor(cy), fx = floor(cx), wy = cy - fy, wx = cx - fx;
                                        int64_t y0 = rz_clamp((int64_t)fy, p.h), y1 = rz_clamp((int64_t)fy + 1, p.h);
                                        int64_t x0 = rz_clamp((int64_t)fx, p.w), x1 = rz_clamp((int64_t)fx + 1, p.w);
                                        v = (1 - wy) * ((1 - wx) * RZ_X(y0, x0) + wx * RZ_X(y0, x1)) +
                                            wy * ((1 - wx) * RZ_X(y1, x0) + wx * RZ_X(y1, x1));
                                    }
#undef RZ_X
                                    ref[nhwc ? ((n * p.oh + oy) * p.ow + ox) * p.c + c
                                             : ((n * p.c + c) * p.oh + oy) * p.ow + ox] = v;
                                }
                    char name[160];
                    snprintf(name, sizeof name, "resize %s %s coord=%d nearest=%d [%d,%d,%d,%d]->[%lld,%lld]%s",
                             nhwc ? "nhwc" : "nchw", p.mode ? "linear" : "nearest", p.coord, p.nearest, z->n, z->c, z->h,
                             z->w, (long long)p.oh, (long long)p.ow,
                             z->sizes == 1 ? " (sizes)" : z->sizes == 2 ? " (len given)" : "");
                    if (launched(kc_resize_run(y.d, x.d, &p, DTS[t], g_stream), name)) check(name, &y, ref, 1);
                    free(ref);
                    tb_free(&x);
                    tb_free(&y);
                }
}

/* GlobalAveragePool / GlobalMaxPool on NHWC: x [N, HW, C] -> y [N, C]. */
static void test_global_pool_nhwc(void) {
    static const int64_t cs[][3] = {{1, 1, 1},  {1, 49, 2048}, {2, 7, 3},   {3, 9, 8},  {4, 49, 17}, {2, 3000, 16},
                                    {5, 1, 64}, {1, 5, 2},     {300, 4, 8}, {2, 0, 8},  {3, 17, 63}, {1, 2, 4096}};
    for (int t = 0; t < 2; t++)
        for (size_t k = 0; k < sizeof cs / sizeof *cs; k++)
            for (int mx = 0; mx < 2; mx++) {
                int64_t N = cs[k][0], HW = cs[k][1], C = cs[k][2];
                size_t nx = (size_t)(N * HW * C);
                tbuf x = tb_rand(DTS[t], nx, -2, 2), y = tb_alloc(DTS[t], (size_t)(N * C));
                if (mx && nx > 100) {
                    x.h[nx / 2 + 1] = NAN; /* max propagates NaN (as src/cpu/ref) */
                    tb_upload(&x);
                }
                double *ref = xmalloc((size_t)(N * C) * sizeof *ref);
                for (int64_t n = 0; n < N; n++)
                    for (int64_t c = 0; c < C; c++) {
                        double acc = mx ? -INFINITY : 0;
                        for (int64_t i = 0; i < HW; i++) {
                            double v = x.h[(n * HW + i) * C + c];
                            acc = !mx ? acc + v : (isnan(acc) || isnan(v)) ? NAN : fmax(acc, v);
                        }
                        ref[n * C + c] = mx ? acc : acc / (double)HW; /* HW = 0: NaN */
                    }
                char name[96];
                snprintf(name, sizeof name, "global_pool_nhwc %s [%lld,%lld,%lld]", mx ? "max" : "avg", (long long)N,
                         (long long)HW, (long long)C);
                if (launched(kc_global_pool_nhwc(y.d, x.d, N, HW, C, mx, DTS[t], g_stream), name))
                    check(name, &y, ref, HW > 1000 ? 4 : 2);
                free(ref);
                tb_free(&x);
                tb_free(&y);
            }
}

/* ---- timings (printed, not asserted) ----------------------------------------------------------------- */

/* Mean time of `reps` launches of what `run` launches, after a warm-up; prints GB/s for `bytes` moved. */
typedef cudaError_t (*timed_fn)(void *ctx);
static void timing(const char *name, timed_fn run, void *ctx, double bytes) {
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    cudaError_t e = run(ctx);
    CK(e);
    CK(cudaStreamSynchronize(g_stream));
    int reps = 20;
    CK(cudaEventRecord(a, g_stream));
    for (int i = 0; i < reps; i++) CK(run(ctx));
    CK(cudaEventRecord(b, g_stream));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    double s = ms / 1e3 / reps;
    printf("time %-60s %9.1f us %8.1f GB/s\n", name, s * 1e6, bytes / s / 1e9);
    CK(cudaEventDestroy(a));
    CK(cudaEventDestroy(b));
}

typedef struct copy_ctx {
    void *y, *x;
    int64_t d[3], ys[3], xs[3];
    size_t es;
} copy_ctx;
static cudaError_t run_copy(void *ctx) {
    copy_ctx *c = ctx;
    return kc_copy_nd(c->y, c->ys, c->x, c->xs, c->d, 3, c->es, g_stream);
}

typedef struct gp_ctx {
    void *y, *x;
    int64_t n, hw, c;
} gp_ctx;
static cudaError_t run_gpool(void *ctx) {
    gp_ctx *c = ctx;
    return kc_global_pool_nhwc(c->y, c->x, c->n, c->hw, c->c, 0, KC_F16, g_stream);
}

typedef struct fe_ctx {
    void *y;
    const void *in[2];
    kc_fe_program p;
} fe_ctx;
static cudaError_t run_fe(void *ctx) {
    fe_ctx *c = ctx;
    return kc_fe(c->y, c->in, &c->p, KC_F16, g_stream);
}

static void test_timings(void) {
    /* SE channel scale in NHWC, f16 [256,56,56,144] * [256,1,1,144] (EfficientNet-B0, batch 256) */
    {
        fe_ctx c;
        memset(&c, 0, sizeof c);
        int64_t d[4] = {256, 56, 56, 144};
        size_t nx = (size_t)(d[0] * d[1] * d[2] * d[3]) * 2, ns = (size_t)(d[0] * d[3]) * 2;
        void *x, *sc;
        CK(cudaMalloc(&x, nx));
        CK(cudaMalloc(&sc, ns));
        CK(cudaMalloc(&c.y, nx));
        CK(cudaMemset(x, 0, nx));
        CK(cudaMemset(sc, 0, ns));
        c.in[0] = x, c.in[1] = sc;
        c.p.n_steps = 1, c.p.n_inputs = 2, c.p.rank = 4;
        c.p.op[0] = 3, c.p.arg[0] = 1;
        for (int k = 0; k < 4; k++) c.p.dims[k] = d[k];
        int64_t xs[4] = {d[1] * d[2] * d[3], d[2] * d[3], d[3], 1}, ss[4] = {d[3], 0, 0, 1};
        for (int k = 0; k < 4; k++) c.p.stride[0][k] = xs[k], c.p.stride[1][k] = ss[k];
        timing("fe x * s[N,1,1,C] NHWC f16 [256,56,56,144]", run_fe, &c, 2.0 * (double)nx);
        CK(cudaFree(x));
        CK(cudaFree(sc));
        CK(cudaFree(c.y));
    }
    /* NCHW <-> NHWC (f16): [256,64,112,112] and [1,2048,7,7]; [S,B,E] -> [B,S,E] */
    static const int64_t tr[][3] = {{256, 64, 112 * 112}, {1, 2048, 49}, {32, 256, 56 * 56}};
    for (size_t k = 0; k < sizeof tr / sizeof *tr; k++) {
        int64_t N = tr[k][0], C = tr[k][1], HW = tr[k][2];
        size_t nb = (size_t)(N * C * HW) * 2;
        copy_ctx c = {NULL, NULL, {N, HW, C}, {HW * C, C, 1}, {C * HW, 1, HW}, 2};
        CK(cudaMalloc(&c.x, nb));
        CK(cudaMalloc(&c.y, nb));
        CK(cudaMemset(c.x, 0, nb));
        char name[128];
        snprintf(name, sizeof name, "copy_nd NCHW->NHWC f16 [%lld,%lld,%lld]", (long long)N, (long long)C, (long long)HW);
        timing(name, run_copy, &c, 2.0 * (double)nb);
        copy_ctx r = {c.y, c.x, {N, C, HW}, {C * HW, HW, 1}, {HW * C, 1, C}, 2};
        snprintf(name, sizeof name, "copy_nd NHWC->NCHW f16 [%lld,%lld,%lld]", (long long)N, (long long)HW, (long long)C);
        timing(name, run_copy, &r, 2.0 * (double)nb);
        CK(cudaFree(c.x));
        CK(cudaFree(c.y));
    }
    {
        int64_t S = 512, B = 32, E = 768;
        size_t nb = (size_t)(S * B * E) * 2;
        copy_ctx c = {NULL, NULL, {B, S, E}, {S * E, E, 1}, {E, B * E, 1}, 2};
        CK(cudaMalloc(&c.x, nb));
        CK(cudaMalloc(&c.y, nb));
        CK(cudaMemset(c.x, 0, nb));
        timing("copy_nd [S,B,E]->[B,S,E] f16 [512,32,768]", run_copy, &c, 2.0 * (double)nb);
        CK(cudaFree(c.x));
        CK(cudaFree(c.y));
    }
    static const int64_t gp[][3] = {{256, 49, 2048}, {1, 49, 2048}};
    for (size_t k = 0; k < sizeof gp / sizeof *gp; k++) {
        gp_ctx c = {NULL, NULL, gp[k][0], gp[k][1], gp[k][2]};
        size_t nx = (size_t)(c.n * c.hw * c.c) * 2, ny = (size_t)(c.n * c.c) * 2;
        CK(cudaMalloc(&c.x, nx));
        CK(cudaMalloc(&c.y, ny));
        CK(cudaMemset(c.x, 0, nx));
        char name[128];
        snprintf(name, sizeof name, "global_pool_nhwc avg f16 [%lld,7,7,%lld]", (long long)c.n, (long long)c.c);
        timing(name, run_gpool, &c, (double)(nx + ny));
        CK(cudaFree(c.x));
        CK(cudaFree(c.y));
    }
}

int main(int argc, char **argv) {
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        printf("no CUDA device: skipped\n");
        return 77;
    }
    g_rng = argc > 1 ? strtoull(argv[1], NULL, 0) : (uint64_t)time(NULL) * 2654435761u + 1;
    if (!g_rng) g_rng = 1;
    printf("seed %llu (pass it as the first argument to repeat)\n", (unsigned long long)g_rng);
    CK(cudaStreamCreate(&g_stream));
    test_cast();
    test_fill();
    test_copy_nd();
    test_s2d_pack();
    test_copy_multi();
    test_gather();
    test_heads();
    test_bias_act();
    test_bias_act_ld();
    test_topk();
    test_fe_strided_y();
    test_se_mlp();
    test_se_pool_mlp();
    test_dw_pool_se();
    test_fe();
    test_einsum();
    test_softmax();
    test_layernorm();
    test_pool2d();
    test_reduce();
    test_pool2d_pads();
    test_global_pool();
    test_global_pool_nhwc();
    test_resize();
    test_timings();
    CK(cudaStreamDestroy(g_stream));
    printf("%s: %d passed, %d failed\n", g_fail ? "FAIL" : "PASS", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
