/*
 * kernels.c — micro-benchmark of the fast CPU kernels: FP32 FMA peak per ISA
 * level, SGEMM and the ResNet-50 / MobileNet convolution shapes at 1 and 2
 * threads, for every level this machine supports.  Prints GFLOP/s (best and
 * median of the repetitions) and the fraction of the measured peak
 * (peak of one core x threads).  Built as kiln-bench-kernels by tests/ops.
 *
 *   kiln-bench-kernels [--reps N] [--isa avx2|avx512|ref] [--threads T] [--only sgemm|conv|dw|nchwc]
 *                      (nchwc: the same convolution shapes on the blocked layout, src/cpu/x86/nchwc.h)
 *                      [--silu] (convolutions with SiLU instead of ReLU)
 *                      [--gelu] (products with the GELU epilogue; --batch scales ViT's token rows)
 *                      [--filter NAME] [--gemm MxNxK] [--algo conv.NAME] [--batch N]
 *                      [--cold] (caches evicted before every timed run)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "cpu/threadpool.h"
#include "cpu/x86/conv.h"
#include "cpu/x86/gemm.h"
#include "cpu/x86/isa.h"
#include "cpu/x86/nchwc.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float *rnd(size_t n) {
    /* 64-byte aligned, as kiln's arena and packed weights are: glibc's
     * malloc gives large blocks at 16 mod 64, where every vector load of a
     * packed panel splits a cache line */
    float *p = aligned_alloc(64, (n * sizeof(float) + 127) / 64 * 64);
    for (size_t i = 0; i < n; i++) p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return p;
}

static int g_reps = 7;
static size_t g_batch = 1; /* --batch: images per convolution */
static const char *g_filter; /* --filter: only cases whose name contains it */
static size_t g_gemm[3];      /* --gemm MxNxK: this product (packed B) in place of the list */
static int g_cold;           /* --cold: evict the caches before every timed run */
static const char *g_algo;   /* --algo: only this algorithm (conv.gemm1x1, ...) */

/* Writes and reads 64 MiB (past any L3 here), so that the next run finds
 * its weights and activations in DRAM, as a layer inside a model mostly
 * does (ResNet-50's weights are 100 MB). */
static void evict_caches(void) {
    static volatile float *junk;
    const size_t n = (size_t)16 << 20;
    if (!junk) junk = calloc(n, sizeof(float));
    if (!junk) return;
    for (size_t i = 0; i < n; i += 16) junk[i] += 1.0f;
}

/* Times fn(arg) g_reps times (after one warm-up); *best and *median in s. */
static void timeit(void (*fn)(void *), void *arg, double *best, double *median) {
    static double t[4096];
    int n = g_reps > 4096 ? 4096 : g_reps;
    fn(arg);
    for (int i = 0; i < n; i++) {
        if (g_cold) evict_caches();
        double t0 = now_s();
        fn(arg);
        t[i] = now_s() - t0;
    }
    qsort(t, (size_t)n, sizeof(double), cmp_d);
    *best = t[0];
    *median = t[n / 2];
}

typedef struct gemm_bench {
    kl_pool *pool;
    kl_gemm_args a;
} gemm_bench;
static void run_gemm(void *p) {
    gemm_bench *g = p;
    if (kl_sgemm(g->pool, &g->a) != KILN_OK) {
        fprintf(stderr, "sgemm failed: %s\n", kl_error_message());
        exit(1);
    }
}

static int g_silu; /* --silu: convolutions with SiLU instead of ReLU */
static int g_gelu; /* --gelu: products with the GELU (erf) epilogue (ViT's MLP up) */

typedef struct conv_bench {
    kl_pool *pool;
    kl_conv2d_plan *plan;
    float *X, *Y;
    void *ws;
} conv_bench;
static void run_conv(void *p) {
    conv_bench *c = p;
    if (kl_conv2d_run(c->pool, c->plan, c->X, NULL, c->Y, c->ws) != KILN_OK) {
        fprintf(stderr, "conv failed: %s\n", kl_error_message());
        exit(1);
    }
}

static void report(const char *what, kl_isa isa, int threads, double flops, double best, double median) {
    double peak = kl_cpu_peak_gflops(isa) * threads;
    double gb = flops / best * 1e-9, gm = flops / median * 1e-9;
    printf("%-44s %-7s t=%d  best %7.1f GFLOP/s (%5.1f%% of peak)  median %7.1f  [%.3f ms]\n", what,
           kl_isa_name(isa), threads, gb, 100.0 * gb / peak, gm, best * 1e3);
    fflush(stdout);
}

static void bench_sgemm(kl_isa isa, int threads, kl_pool *pool, size_t M, size_t N, size_t K, bool packed) {
    float *A = rnd(M * K), *B = rnd(K * N), *C = rnd(M * N);
    gemm_bench g = {pool, {0}};
    kl_gemm_args *a = &g.a;
    a->M = M, a->N = N, a->K = K, a->A = A, a->lda = K, a->B = B, a->ldb = N, a->C = C, a->ldc = N;
    a->alpha = 1, a->beta = 0, a->isa = isa;
    if (g_gelu) a->act = (kl_act){KL_ACT_GELU_ERF, 0, 0};
    void *pb = NULL;
    if (packed) {
        pb = aligned_alloc(64, (kl_sgemm_pack_b_size(K, N) + 63) / 64 * 64);
        kl_sgemm_pack_b(B, N, false, K, N, pb);
        a->packed_b = pb;
    }
    size_t wsb = kl_sgemm_workspace_size(a, threads);
    a->workspace = wsb ? malloc(wsb) : NULL;
    a->workspace_bytes = wsb;
    double best, med;
    char what[96];
    snprintf(what, sizeof what, "sgemm M=%zu N=%zu K=%zu %s%s", M, N, K, packed ? "packed-B" : "plain-B",
             g_gelu ? " gelu" : "");
    if (g_filter && !strstr(what, g_filter)) goto done;
    timeit(run_gemm, &g, &best, &med);
    report(what, isa, threads, 2.0 * M * N * K, best, med);
done:
    free(A), free(B), free(C), free(pb), free(a->workspace);
}

typedef struct conv_shape {
    const char *name;
    size_t C, H, W, M, K, S, P, G;
} conv_shape;

static void bench_conv(kl_isa isa, int threads, kl_pool *pool, const conv_shape *s, size_t batch, kl_conv_algo algo) {
    if (g_filter && !strstr(s->name, g_filter)) return;
    kl_conv2d_desc d = {0};
    d.N = batch, d.C = s->C, d.H = s->H, d.W = s->W, d.M = s->M, d.KH = d.KW = s->K;
    d.group = s->G, d.stride_h = d.stride_w = s->S, d.pad_top = d.pad_left = d.pad_bottom = d.pad_right = s->P;
    d.act.kind = g_silu ? KL_ACT_SILU : KL_ACT_RELU;
    d.isa = isa;
    d.threads = threads;
    d.algo = algo;
    if (!kl_conv2d_supports(&d, algo)) return;
    if (g_algo && strcmp(g_algo, kl_conv_algo_name(algo))) return;
    float *W = rnd(s->M * (s->C / s->G) * s->K * s->K), *bias = rnd(s->M);
    kl_conv2d_plan *plan;
    if (kl_conv2d_prepare(&d, W, bias, &plan) != KILN_OK) {
        fprintf(stderr, "prepare failed: %s\n", kl_error_message());
        exit(1);
    }
    size_t OH, OW;
    kl_conv2d_out_hw(plan, &OH, &OW);
    conv_bench c = {pool, plan, rnd(batch * s->C * s->H * s->W), rnd(batch * s->M * OH * OW), NULL};
    c.ws = malloc(kl_conv2d_workspace_bytes(plan) + 64);
    double best, med;
    timeit(run_conv, &c, &best, &med);
    /* GFLOP/s counts the direct convolution's flops for every algorithm */
    double flops = 2.0 * batch * s->M * OH * OW * (s->C / s->G) * s->K * s->K;
    char what[128];
    snprintf(what, sizeof what, "%s N=%zu [%s]", s->name, batch, kl_conv_algo_name(kl_conv2d_algo(plan)));
    report(what, isa, threads, flops, best, med);
    kl_conv2d_destroy(plan);
    free(W), free(bias), free(c.X), free(c.Y), free(c.ws);
}

typedef struct nchwc_bench {
    kl_pool *pool;
    kl_nchwc_plan *plan;
    size_t N;
    float *X, *Z, *Y;
    void *ws;
} nchwc_bench;
static void run_nchwc(void *p) {
    nchwc_bench *c = p;
    if (kl_nchwc_run(c->pool, c->plan, c->N, c->X, c->Z, c->Y, c->ws) != KILN_OK) {
        fprintf(stderr, "nchwc failed: %s\n", kl_error_message());
        exit(1);
    }
}

/* The blocked kernel on a shape (stems, C <= 4, read NCHW); with a residual
 * Z on the 1x1 layers that end a ResNet block (M > C). */
static void bench_nchwc(kl_isa isa, int threads, kl_pool *pool, const conv_shape *s, size_t batch) {
    if (g_filter && !strstr(s->name, g_filter)) return;
    if (s->G != 1 && s->G != s->C) return;
    kl_nchwc_desc d = {0};
    d.C = s->C, d.H = s->H, d.W = s->W, d.M = s->M, d.KH = d.KW = s->K;
    d.stride_h = d.stride_w = s->S, d.pad_top = d.pad_left = d.pad_bottom = d.pad_right = s->P;
    d.depthwise = s->G > 1, d.in_nchw = s->C <= 4 && s->G == 1;
    d.act.kind = g_silu ? KL_ACT_SILU : KL_ACT_RELU;
    d.isa = isa;
    float *W = rnd(s->M * (s->C / s->G) * s->K * s->K), *bias = rnd(s->M);
    kl_nchwc_plan *plan;
    if (kl_nchwc_prepare(&d, W, bias, &plan) != KILN_OK) {
        fprintf(stderr, "nchwc prepare failed: %s\n", kl_error_message());
        exit(1);
    }
    size_t OH, OW, Cb = kl_nchwc_blocks(s->C), Mb = kl_nchwc_blocks(s->M);
    kl_nchwc_out_hw(plan, &OH, &OW);
    bool z = s->K == 1 && s->S == 1 && s->M > s->C && s->G == 1;
    size_t wsb = kl_nchwc_workspace_size(plan, batch);
    nchwc_bench c = {pool, plan, batch, rnd(batch * (d.in_nchw ? s->C : Cb * 16) * s->H * s->W),
                     z ? rnd(batch * Mb * 16 * OH * OW) : NULL, rnd(batch * Mb * 16 * OH * OW),
                     wsb ? aligned_alloc(64, (wsb + 63) / 64 * 64) : NULL};
    double best, med;
    timeit(run_nchwc, &c, &best, &med);
    double flops = 2.0 * batch * s->M * OH * OW * (s->C / s->G) * s->K * s->K;
    char what[128];
    snprintf(what, sizeof what, "%s N=%zu [nchwc%s]", s->name, batch, z ? "+Z" : "");
    report(what, isa, threads, flops, best, med);
    kl_nchwc_destroy(plan);
    free(W), free(bias), free(c.X), free(c.Z), free(c.Y), free(c.ws);
}

int main(int argc, char **argv) {
    int only_threads = 0;
    const char *only = NULL;
    kl_isa only_isa = KL_ISA_AUTO;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            g_reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            only_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            g_batch = (size_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc)
            g_filter = argv[++i];
        else if (!strcmp(argv[i], "--gemm") && i + 1 < argc &&
                 sscanf(argv[i + 1], "%zux%zux%zu", &g_gemm[0], &g_gemm[1], &g_gemm[2]) == 3 && g_gemm[0] &&
                 g_gemm[1] && g_gemm[2])
            i++;
        else if (!strcmp(argv[i], "--algo") && i + 1 < argc)
            g_algo = argv[++i];
        else if (!strcmp(argv[i], "--cold"))
            g_cold = 1;
        else if (!strcmp(argv[i], "--silu"))
            g_silu = 1;
        else if (!strcmp(argv[i], "--gelu"))
            g_gelu = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
            if (!kl_isa_parse(argv[++i], &only_isa)) {
                fprintf(stderr, "unknown isa %s\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "usage: kiln-bench-kernels [--reps N] [--isa L] [--threads T] [--only sgemm|conv|dw|nchwc] [--filter NAME] [--gemm MxNxK] [--algo conv.NAME] [--batch N] [--silu] [--gelu] [--cold]\n");
            return 2;
        }
    }
    const kl_cpu_isa *ci = kl_cpu_isa_get();
    printf("cpu: %s, best level %s\n", ci->brand, kl_isa_name(ci->best));
    for (int i = KL_ISA_REF; i < KL_ISA_COUNT; i++)
        if (kl_isa_supported((kl_isa)i))
            printf("FP32 FMA peak, one core, %-7s %7.1f GFLOP/s\n", kl_isa_name((kl_isa)i),
                   kl_cpu_peak_gflops((kl_isa)i));
    static const conv_shape convs[] = {
        {"resnet50 conv2 3x3 64->64 56x56", 64, 56, 56, 64, 3, 1, 1, 1},
        {"resnet50 conv2 1x1 256->64 56x56", 256, 56, 56, 64, 1, 1, 0, 1},
        {"resnet50 conv2 1x1 64->256 56x56", 64, 56, 56, 256, 1, 1, 0, 1},
        {"resnet50 conv3 3x3 128->128 28x28", 128, 28, 28, 128, 3, 1, 1, 1},
        {"resnet50 conv4 3x3 256->256 14x14", 256, 14, 14, 256, 3, 1, 1, 1},
        {"resnet50 conv5 3x3 512->512 7x7", 512, 7, 7, 512, 3, 1, 1, 1},
        {"resnet50 conv1 7x7/2 3->64 224x224", 3, 224, 224, 64, 7, 2, 3, 1},
        {"resnet50 l2.0 3x3/2 128->128 56x56", 128, 56, 56, 128, 3, 2, 1, 1},
        {"resnet50 l3.0 3x3/2 256->256 28x28", 256, 28, 28, 256, 3, 2, 1, 1},
        {"resnet50 l4.0 3x3/2 512->512 14x14", 512, 14, 14, 512, 3, 2, 1, 1},
        {"resnet50 l2.0 ds 1x1/2 256->512 56x56", 256, 56, 56, 512, 1, 2, 0, 1},
        {"resnet50 l3.0 ds 1x1/2 512->1024 28x28", 512, 28, 28, 1024, 1, 2, 0, 1},
        {"resnet50 l4.0 ds 1x1/2 1024->2048 14x14", 1024, 14, 14, 2048, 1, 2, 0, 1},
        {"resnet50 l2 1x1 128->512 28x28", 128, 28, 28, 512, 1, 1, 0, 1},
        {"resnet50 l3 1x1 1024->256 14x14", 1024, 14, 14, 256, 1, 1, 0, 1},
        {"resnet50 l4 1x1 2048->512 7x7", 2048, 7, 7, 512, 1, 1, 0, 1},
        {"resnet50 l4 1x1 512->2048 7x7", 512, 7, 7, 2048, 1, 1, 0, 1},
        {"effnet 1x1 192->1152 7x7", 192, 7, 7, 1152, 1, 1, 0, 1},
        {"effnet 1x1 1152->192 7x7", 1152, 7, 7, 192, 1, 1, 0, 1},
        {"mobilenet 1x1 160->960 7x7", 160, 7, 7, 960, 1, 1, 0, 1},
        {"mobilenet 1x1 960->160 7x7", 960, 7, 7, 160, 1, 1, 0, 1},
        {"mobilenet 1x1 320->1280 7x7", 320, 7, 7, 1280, 1, 1, 0, 1},
        {"yolov8n b0 3x3/2 3->16 640x640", 3, 640, 640, 16, 3, 2, 1, 1},
        {"mobilenet stem 3x3/2 3->32 224x224", 3, 224, 224, 32, 3, 2, 1, 1},
        {"mobilenet 1x1 16->96 112x112", 16, 112, 112, 96, 1, 1, 0, 1},
        {"mobilenet 1x1 32->16 112x112", 32, 112, 112, 16, 1, 1, 0, 1},
        {"mobilenet 1x1 24->144 56x56", 24, 56, 56, 144, 1, 1, 0, 1},
        {"mnv2 1x1 576->96 14x14", 576, 14, 14, 96, 1, 1, 0, 1},
        {"mnv2 1x1 384->96 14x14", 384, 14, 14, 96, 1, 1, 0, 1},
        {"mnv2 1x1 384->64 14x14", 384, 14, 14, 64, 1, 1, 0, 1},
        {"mnv2 1x1 96->576 14x14", 96, 14, 14, 576, 1, 1, 0, 1},
        {"mnv2 1x1 64->384 14x14", 64, 14, 14, 384, 1, 1, 0, 1},
        {"mnv2 1x1 144->24 56x56", 144, 56, 56, 24, 1, 1, 0, 1},
        {"mnv2 1x1 192->32 28x28", 192, 28, 28, 32, 1, 1, 0, 1},
        {"mnv2 1x1 32->192 28x28", 32, 28, 28, 192, 1, 1, 0, 1},
        {"mnv2 1x1 576->160 7x7", 576, 7, 7, 160, 1, 1, 0, 1},
        {"mnv2 1x1 960->320 7x7", 960, 7, 7, 320, 1, 1, 0, 1},
        {"yolov8n b1 3x3/2 16->32 320x320", 16, 320, 320, 32, 3, 2, 1, 1},
        {"yolov8n b3 3x3/2 32->64 160x160", 32, 160, 160, 64, 3, 2, 1, 1},
        {"yolov8n b5 3x3/2 64->128 80x80", 64, 80, 80, 128, 3, 2, 1, 1},
        {"yolov8n b2.cv2 1x1 48->32 160x160", 48, 160, 160, 32, 1, 1, 0, 1},
    };
    static const conv_shape dws[] = {
        {"mobilenet dw 3x3 32 112x112", 32, 112, 112, 32, 3, 1, 1, 32},
        {"mobilenet dw 3x3/2 144 56x56", 144, 56, 56, 144, 3, 2, 1, 144},
        {"efficientnet dw 5x5 240 28x28", 240, 28, 28, 240, 5, 1, 2, 240},
        {"mobilenet dw 3x3/2 96 112x112", 96, 112, 112, 96, 3, 2, 1, 96},
        {"mobilenet dw 3x3 384 14x14", 384, 14, 14, 384, 3, 1, 1, 384},
        {"mobilenet dw 3x3 960 7x7", 960, 7, 7, 960, 3, 1, 1, 960},
        {"efficientnet dw 5x5/2 144 56x56", 144, 56, 56, 144, 5, 2, 2, 144},
        {"efficientnet dw 5x5 672 14x14", 672, 14, 14, 672, 5, 1, 2, 672},
        {"efficientnet dw 5x5 1152 7x7", 1152, 7, 7, 1152, 5, 1, 2, 1152},
        {"efficientnet dw 5x5/2 672 14x14", 672, 14, 14, 672, 5, 2, 2, 672},
        {"mobilenet dw 3x3/2 576 14x14", 576, 14, 14, 576, 3, 2, 1, 576},
        {"efficientnet dw 3x3 1152 7x7", 1152, 7, 7, 1152, 3, 1, 1, 1152},
        {"mobilenet dw 3x3 192 28x28", 192, 28, 28, 192, 3, 1, 1, 192},
        {"dw 3x3 144 56x56 (mobilenet f3, effnet f2.1)", 144, 56, 56, 144, 3, 1, 1, 144},
    };
    for (int threads = 1; threads <= 2; threads++) {
        if (only_threads && threads != only_threads) continue;
        kl_pool *pool = NULL;
        if (threads > 1 && kl_pool_create(threads, &pool) != KILN_OK) return 1;
        for (int i = KL_ISA_COUNT - 1; i >= KL_ISA_AVX2; i--) {
            kl_isa isa = (kl_isa)i;
            if (!kl_isa_supported(isa) || (only_isa != KL_ISA_AUTO && isa != only_isa)) continue;
            if (g_gemm[0]) {
                bench_sgemm(isa, threads, pool, g_gemm[0], g_gemm[1], g_gemm[2], true);
            } else if (!only || !strcmp(only, "sgemm")) {
                bench_sgemm(isa, threads, pool, 512, 512, 512, true);
                bench_sgemm(isa, threads, pool, 512, 512, 512, false);
                /* ViT-B/16 (197 tokens an image, --batch images): qkv, attention output, MLP up and down */
                size_t tok = 197 * g_batch;
                bench_sgemm(isa, threads, pool, tok, 2304, 768, true);
                bench_sgemm(isa, threads, pool, tok, 768, 768, true);
                bench_sgemm(isa, threads, pool, tok, 3072, 768, true);
                bench_sgemm(isa, threads, pool, tok, 768, 3072, true);
            }
            if (g_gemm[0]) continue;
            if (!only || !strcmp(only, "conv"))
                for (size_t s = 0; s < KL_ARRAY_LEN(convs); s++)
                    for (int al = KL_CONV_GEMM1X1; al < KL_CONV_ALGO_COUNT; al++)
                        if (al != KL_CONV_DEPTHWISE) bench_conv(isa, threads, pool, &convs[s], g_batch, (kl_conv_algo)al);
            if (!only || !strcmp(only, "dw"))
                for (size_t s = 0; s < KL_ARRAY_LEN(dws); s++)
                    bench_conv(isa, threads, pool, &dws[s], g_batch, KL_CONV_DEPTHWISE);
            if (only && !strcmp(only, "nchwc")) {
                for (size_t s = 0; s < KL_ARRAY_LEN(convs); s++) bench_nchwc(isa, threads, pool, &convs[s], g_batch);
                for (size_t s = 0; s < KL_ARRAY_LEN(dws); s++) bench_nchwc(isa, threads, pool, &dws[s], g_batch);
            }
        }
        kl_pool_destroy(pool);
    }
    return 0;
}
