/*
 * The blocked-layout convolution kernels (src/cpu/x86/nchwc.h) at every ISA
 * level this CPU runs, against a float64 direct convolution of the NCHW
 * data: dense (1x1, 3x3, 7x7 stems reading NCHW, strides 1 and 2, pads),
 * depthwise (3x3, 5x5), channel counts that are not multiples of 16 (the
 * padding lanes and the partial output groups), residual Z and ReLU, two
 * images on a pool of 2 threads, each in the plan's own mode, on the
 * image-wide pixel order with one input block per pass, and by rows; the
 * reorders (padding lanes zero) and
 * max pooling against direct loops.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/threadpool.h"
#include "cpu/x86/nchwc.h"
#include "harness.h"

static unsigned g_seed = 1;
static float frand(void) {
    g_seed = g_seed * 1103515245u + 12345u;
    return (float)((g_seed >> 8) & 0xffff) / 32768.0f - 1.0f;
}

typedef struct {
    int C, M, H, W, K, S, P, dw, nchw, z, act;
} conv_case;

static void check_conv(kl_pool *pool, kl_isa isa, const conv_case *t) {
    const int N = 2, Cg = t->dw ? 1 : t->C, K = t->K, S = t->S, P = t->P;
    const int OH = (t->H + 2 * P - K) / S + 1, OW = (t->W + 2 * P - K) / S + 1;
    size_t taps = (size_t)K * K, Cb = kl_nchwc_blocks((size_t)t->C), Mb = kl_nchwc_blocks((size_t)t->M);
    size_t nx = (size_t)N * t->C * t->H * t->W, ny = (size_t)N * t->M * OH * OW;
    float *x = malloc(nx * 4), *w = malloc((size_t)t->M * Cg * taps * 4), *b = malloc((size_t)t->M * 4);
    float *z = malloc(ny * 4), *y = malloc(ny * 4);
    float *xb = malloc((size_t)N * Cb * 16 * t->H * t->W * 4), *zb = malloc((size_t)N * Mb * 16 * OH * OW * 4);
    float *yb = malloc((size_t)N * Mb * 16 * OH * OW * 4);
    for (size_t i = 0; i < nx; i++) x[i] = frand();
    for (size_t i = 0; i < (size_t)t->M * Cg * taps; i++) w[i] = 0.3f * frand();
    for (int i = 0; i < t->M; i++) b[i] = frand();
    for (size_t i = 0; i < ny; i++) z[i] = frand();
    kl_nchwc_desc d = {.C = (size_t)t->C, .H = (size_t)t->H, .W = (size_t)t->W, .M = (size_t)t->M, .KH = (size_t)K,
                       .KW = (size_t)K, .stride_h = (size_t)S, .stride_w = (size_t)S, .pad_top = (size_t)P,
                       .pad_left = (size_t)P, .pad_bottom = (size_t)P, .pad_right = (size_t)P, .depthwise = t->dw != 0,
                       .in_nchw = t->nchw != 0, .isa = isa};
    d.act.kind = t->act ? KL_ACT_RELU : KL_ACT_NONE;
    kl_nchwc_plan *p = NULL;
    KT_CHECK_EQ_INT(kl_nchwc_prepare(&d, w, b, &p), KILN_OK);
    if (p) {
        kl_nchwc_reorder_in(pool, N, (size_t)t->C, (size_t)t->H * t->W, x, xb);
        kl_nchwc_reorder_in(pool, N, (size_t)t->M, (size_t)OH * OW, z, zb);
        size_t wsb = kl_nchwc_workspace_size(p, N);
        void *ws = wsb ? aligned_alloc(64, (wsb + 63) / 64 * 64) : NULL;
        KT_CHECK_EQ_INT(kl_nchwc_run(pool, p, N, t->nchw ? x : xb, t->z ? zb : NULL, yb, ws), KILN_OK);
        free(ws);
        kl_nchwc_reorder_out(pool, N, (size_t)t->M, (size_t)OH * OW, yb, y);
        double worst = 0;
        for (int n = 0; n < N; n++)
            for (int m = 0; m < t->M; m++)
                for (int oh = 0; oh < OH; oh++)
                    for (int ow = 0; ow < OW; ow++) {
                        double a = b[m];
                        for (int c = 0; c < Cg; c++)
                            for (int kh = 0; kh < K; kh++)
                                for (int kw = 0; kw < K; kw++) {
                                    int ih = oh * S - P + kh, iw = ow * S - P + kw, ci = t->dw ? m : c;
                                    if (ih < 0 || iw < 0 || ih >= t->H || iw >= t->W) continue;
                                    a += (double)x[((size_t)(n * t->C + ci) * t->H + ih) * t->W + iw] *
                                         w[((size_t)(m * Cg + c) * K + kh) * K + kw];
                                }
                        size_t o = ((size_t)(n * t->M + m) * OH + oh) * OW + ow;
                        if (t->z) a += z[o];
                        if (t->act && a < 0) a = 0;
                        double e = fabs(a - y[o]) / (1.0 + fabs(a));
                        if (e > worst) worst = e;
                    }
        KT_CHECK(worst < 1e-5);
        if (worst >= 1e-5)
            fprintf(stderr, "    isa %d C%d M%d %dx%d k%d s%d p%d dw%d nchw%d: worst %g\n", (int)isa, t->C, t->M, t->H,
                    t->W, K, S, P, t->dw, t->nchw, worst);
        kl_nchwc_destroy(p);
    }
    free(x), free(w), free(b), free(z), free(y), free(xb), free(zb), free(yb);
}

static kl_pool *g_pool;

static void test_conv(void) {
    static const conv_case cases[] = {
        {64, 256, 12, 11, 1, 1, 0, 0, 0, 1, 1}, {40, 24, 13, 11, 3, 1, 1, 0, 0, 1, 1}, {24, 40, 9, 7, 1, 2, 0, 0, 0, 1, 0},
        {3, 64, 30, 30, 7, 2, 3, 0, 1, 0, 1},   {3, 20, 17, 15, 3, 2, 1, 0, 1, 1, 0},  {20, 36, 7, 7, 3, 1, 1, 0, 0, 1, 1},
        {32, 72, 19, 23, 3, 2, 1, 0, 0, 0, 1},  {17, 5, 6, 9, 2, 1, 1, 0, 0, 0, 0},    {144, 144, 14, 14, 3, 1, 1, 1, 0, 0, 1},
        {40, 40, 13, 9, 3, 2, 1, 1, 0, 1, 1},   {24, 24, 5, 5, 5, 1, 2, 1, 0, 0, 0},   {33, 33, 11, 20, 5, 2, 2, 1, 0, 1, 1},
        {7, 7, 3, 3, 3, 1, 1, 1, 0, 0, 0},      {128, 64, 4, 4, 1, 1, 0, 0, 0, 0, 1},
        {80, 72, 7, 7, 3, 1, 1, 0, 0, 1, 1},    {48, 40, 9, 8, 3, 2, 1, 0, 0, 0, 1},   {40, 36, 40, 35, 1, 2, 0, 0, 0, 0, 1},
    };
    /* the plan's own choice of mode and input blocks per pass; then every
     * dense layer on the image-wide pixel order (gflat: padded copy for
     * the padded ones) one input block per pass; then every one by rows */
    static const char *const modes[][2] = {{NULL, NULL}, {"1", "1"}, {"0", "2"}};
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        if (modes[m][0]) {
            setenv("KILN_NCHWC_GFLAT", modes[m][0], 1);
            setenv("KILN_NCHWC_CCHUNK", modes[m][1], 1);
        }
        for (int isa = KL_ISA_REF; isa <= KL_ISA_AVX512; isa++) {
            if (!kl_isa_supported((kl_isa)isa)) continue;
            for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_conv(g_pool, (kl_isa)isa, &cases[i]);
        }
    }
    unsetenv("KILN_NCHWC_GFLAT");
    unsetenv("KILN_NCHWC_CCHUNK");
}

/* Reorders: NCHW -> blocked -> NCHW is the identity, padding lanes zero. */
static void test_reorder(void) {
    const size_t N = 2, C = 37, HW = 29, Cb = kl_nchwc_blocks(C);
    float *x = malloc(N * C * HW * 4), *b = malloc(N * Cb * 16 * HW * 4), *y = malloc(N * C * HW * 4);
    for (size_t i = 0; i < N * C * HW; i++) x[i] = frand();
    kl_nchwc_reorder_in(g_pool, N, C, HW, x, b);
    kl_nchwc_reorder_out(g_pool, N, C, HW, b, y);
    KT_CHECK(memcmp(x, y, N * C * HW * 4) == 0);
    size_t nz = 0;
    for (size_t n = 0; n < N; n++)
        for (size_t q = 0; q < HW; q++)
            for (size_t l = C % 16; l < 16; l++) nz += b[((n * Cb + Cb - 1) * HW + q) * 16 + l] != 0.0f;
    KT_CHECK_EQ_INT((int)nz, 0);
    KT_CHECK(b[(1 * Cb + 1) * HW * 16 + 5 * 16 + 3] == x[(1 * C + 19) * HW + 5]);
    free(x), free(b), free(y);
}

/* Max pooling 3x3/2 pad 1 against direct loops, a NaN kept. */
static void test_maxpool(void) {
    const size_t N = 2, Cb = 3, H = 13, W = 10;
    kl_nchwc_pool_desc d = {Cb * 16, H, W, 3, 3, 2, 2, 1, 1, (H + 2 - 3) / 2 + 1, (W + 2 - 3) / 2 + 1};
    float *x = malloc(N * Cb * H * W * 16 * 4), *y = malloc(N * Cb * d.OH * d.OW * 16 * 4);
    for (size_t i = 0; i < N * Cb * H * W * 16; i++) x[i] = frand();
    x[(1 * H * W + 4 * W + 5) * 16 + 7] = NAN; /* block 1, pixel (4, 5), lane 7 */
    kl_nchwc_maxpool(g_pool, &d, N, x, y);
    size_t bad = 0, nans = 0;
    for (size_t nb = 0; nb < N * Cb; nb++)
        for (size_t oh = 0; oh < d.OH; oh++)
            for (size_t ow = 0; ow < d.OW; ow++)
                for (size_t l = 0; l < 16; l++) {
                    float m = -INFINITY;
                    for (int kh = 0; kh < 3; kh++)
                        for (int kw = 0; kw < 3; kw++) {
                            long ih = (long)(oh * 2) - 1 + kh, iw = (long)(ow * 2) - 1 + kw;
                            if (ih < 0 || iw < 0 || ih >= (long)H || iw >= (long)W) continue;
                            float v = x[((nb * H + (size_t)ih) * W + (size_t)iw) * 16 + l];
                            if (v > m || isnan(v)) m = v;
                        }
                    float got = y[((nb * d.OH + oh) * d.OW + ow) * 16 + l];
                    nans += isnan(got);
                    bad += isnan(m) ? !isnan(got) : got != m;
                }
    KT_CHECK_EQ_INT((int)bad, 0);
    KT_CHECK_EQ_INT((int)nans, 2); /* input (4, 5) lies in the windows of outputs (2, 2) and (2, 3) */
    free(x), free(y);
}

int main(void) {
    if (kl_pool_create(2, &g_pool) != KILN_OK) return 1;
    KT_RUN(test_conv);
    KT_RUN(test_reorder);
    KT_RUN(test_maxpool);
    kl_pool_destroy(g_pool);
    return kt_summary();
}
