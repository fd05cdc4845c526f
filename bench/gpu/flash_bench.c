/*
 * flash_bench.c — times kiln's fused flash-attention kernel (kc_flash_attn,
 * src/cuda/k_attention.cu) alone on the zoo's attention shapes, float16,
 * q/k/v packed as the QKV projection writes them ([B*S, 3*H*D]):
 *
 *   build-cu/bench_flash [runs [case-name-part]]
 *
 * Prints the median of `runs` (default 50) launches timed with CUDA events
 * and the useful rate, 4*B*H*Sq*Sk*D flops per run (the work a kernel
 * without padding would do: tile padding is the kernel's own cost).
 * A benchmark, not a test: correctness is test_cuda_dnn's.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "cuda/k_attention.h"

typedef struct fb_case {
    const char *name;
    int64_t b, s, h, d, rel_kw;
} fb_case;

static int cmp_f(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Deterministic float16 values in [-1, 1) * amp (bit patterns built on the host). */
static unsigned short f16_bits(float f) {
    /* round-to-nearest-even float -> half for |f| < 65504, normal or zero */
    unsigned u;
    memcpy(&u, &f, 4);
    unsigned sign = (u >> 16) & 0x8000u;
    int e = (int)((u >> 23) & 0xff) - 127 + 15;
    unsigned m = u & 0x7fffffu;
    if (e <= 0) return (unsigned short)sign;
    unsigned h = sign | ((unsigned)e << 10) | (m >> 13);
    unsigned rest = m & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
    return (unsigned short)h;
}

/* float16 bits -> float (normal, subnormal, zero, inf/NaN). */
static float f16_val(unsigned short h) {
    unsigned sign = (h >> 15) & 1u, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m | 0x400u), (int)e - 25);
    return sign ? -v : v;
}

static int fill(void *dev, size_t n, float amp, unsigned seed) {
    unsigned short *h = malloc(n * 2);
    if (!h) return 1;
    unsigned x = seed * 2654435761u + 1u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        h[i] = f16_bits(amp * ((float)(x >> 8) / 8388608.0f - 1.0f));
    }
    int rc = cudaMemcpy(dev, h, n * 2, cudaMemcpyHostToDevice) != cudaSuccess;
    free(h);
    return rc;
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 50;
    if (runs < 3 || runs > 10000) runs = 50;
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev < 1) {
        printf("bench_flash: no CUDA device\n");
        return 77;
    }
    static const fb_case cases[] = {
        {"vit_b_16 b1 (S197 H12 D64)", 1, 197, 12, 64, 0},
        {"vit_b_16 b256 (S197 H12 D64)", 256, 197, 12, 64, 0},
        {"sam global (S4096 H12 D64, rel 64x64)", 1, 4096, 12, 64, 64},
        {"sam windows (25 x S196 H12 D64, rel 14x14)", 25, 196, 12, 64, 14},
        {"text S77 H8 D64 (b32)", 32, 77, 8, 64, 0},
        {"text S77 H8 D64 (b1)", 1, 77, 8, 64, 0},
        {"S1024 H16 D128 (b4)", 4, 1024, 16, 128, 0},
    };
    if (kc_flash_prepare(64) != cudaSuccess || kc_flash_prepare(128) != cudaSuccess) {
        printf("bench_flash: kc_flash_prepare failed (kernels built for sm_80+?)\n");
        return 1;
    }
    cudaEvent_t e0, e1;
    if (cudaEventCreate(&e0) || cudaEventCreate(&e1)) return 1;
    printf("%-52s %10s %10s %12s\n", "case and tiling", "median ms", "TFLOP/s", "max |d| 1x16");
    int bad = 0;
    const char *only = argc > 2 ? argv[2] : NULL; /* run only the cases whose name holds this */
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const fb_case *k = &cases[c];
        if (only && !strstr(k->name, only)) continue;
        const int64_t hd = k->h * k->d, ld = 3 * hd, rows = k->b * k->s;
        const int64_t kh = k->rel_kw ? k->s / k->rel_kw : 0;
        void *qkv = NULL, *y = NULL, *m1 = NULL, *m2 = NULL;
        size_t nm1 = k->rel_kw ? (size_t)(k->b * k->h * k->s * kh) : 0;
        size_t nm2 = k->rel_kw ? (size_t)(k->b * k->h * k->s * k->rel_kw) : 0;
        if (cudaMalloc(&qkv, (size_t)(rows * ld) * 2) || cudaMalloc(&y, (size_t)(rows * hd) * 2) ||
            (nm1 && (cudaMalloc(&m1, nm1 * 2) || cudaMalloc(&m2, nm2 * 2))) ||
            fill(qkv, (size_t)(rows * ld), 1.0f, 1) || (nm1 && (fill(m1, nm1, 2.0f, 2) || fill(m2, nm2, 2.0f, 3)))) {
            printf("%-46s allocation failed\n", k->name);
            bad = 1;
        } else {
            kc_flash_desc d;
            memset(&d, 0, sizeof d);
            d.b = k->b, d.sq = d.sk = k->s, d.h = k->h, d.d = k->d;
            d.ldq = d.ldk = d.ldv = ld;
            d.scale = 1.0f / (k->d == 64 ? 8.0f : 11.3137085f);
            if (k->rel_kw) {
                d.has_mask = true, d.mask_t = KC_F16;
                d.msb = k->h * k->s * kh, d.msh = k->s * kh, d.msq = kh, d.msk = 1;
                d.rel_kw = k->rel_kw;
                d.m2sb = k->h * k->s * k->rel_kw, d.m2sh = k->s * k->rel_kw, d.m2sq = k->rel_kw, d.m2sk = 1;
            }
            const char *q = qkv;
            float *t = malloc(sizeof(float) * (size_t)runs);
            size_t ny = (size_t)(rows * hd);
            unsigned short *y1 = malloc(ny * 2), *yv = malloc(ny * 2);
            int err = !t || !y1 || !yv;
            /* each tiling in turn (KC_FLASH_ONE_MTILE first: the others are checked against its output),
               then the kernel's own choice */
            for (int var = KC_FLASH_ONE_MTILE; var <= KC_FLASH_LAST + 1 && !err; var++) {
                d.variant = var <= KC_FLASH_LAST ? var : KC_FLASH_AUTO;
                int ran = kc_flash_variant(&d);
                if (var <= KC_FLASH_LAST && ran != var) continue; /* does not apply */
                for (int r = -5; r < runs && !err; r++) {
                    err |= cudaEventRecord(e0, 0) != cudaSuccess;
                    err |= kc_flash_attn(y, q, q + hd * 2, q + 2 * hd * 2, m1, m2, &d, 0) != cudaSuccess;
                    err |= cudaEventRecord(e1, 0) != cudaSuccess;
                    err |= cudaEventSynchronize(e1) != cudaSuccess;
                    if (!err && r >= 0) err |= cudaEventElapsedTime(&t[r], e0, e1) != cudaSuccess;
                }
                if (!err) err |= cudaMemcpy(var == KC_FLASH_ONE_MTILE ? y1 : yv, y, ny * 2, cudaMemcpyDeviceToHost) !=
                                 cudaSuccess;
                if (err) break;
                double maxd = 0;
                if (var != KC_FLASH_ONE_MTILE)
                    for (size_t i = 0; i < ny; i++) {
                        double dd = fabs((double)f16_val(yv[i]) - f16_val(y1[i]));
                        if (dd > maxd || dd != dd) maxd = dd != dd ? INFINITY : dd;
                    }
                qsort(t, (size_t)runs, sizeof(float), cmp_f);
                double ms = t[runs / 2], fl = 4.0 * k->b * k->h * (double)k->s * k->s * k->d;
                static const char *const vn[] = {"", "1x16", "2x16", "split", "h2exp"};
                char label[96];
                snprintf(label, sizeof label, "%s %s%s", k->name, var <= KC_FLASH_LAST ? vn[var] : "auto=",
                         var <= KC_FLASH_LAST ? "" : vn[ran]);
                printf("%-52s %10.4f %10.1f %12.2e\n", label, ms, fl / (ms * 1e-3) / 1e12, maxd);
                if (maxd > 2e-2) bad = 1; /* the tilings must agree (float16 output, float32 sums in other orders) */
            }
            if (err) {
                printf("%-46s run failed: %s\n", k->name, cudaGetErrorString(cudaGetLastError()));
                bad = 1;
            }
            free(y1), free(yv);
            free(t);
        }
        cudaFree(qkv), cudaFree(y), cudaFree(m1), cudaFree(m2);
    }
    return bad;
}
