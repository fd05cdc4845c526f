/* The cuda provider's host side, on any machine: which nodes it claims
 * (ONNX conformance models), what it says when no GPU is present, and that
 * a build asking for it either gets cuda layers (GPU) or a clear refusal. */
#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_api.h>
#include <cudnn_version.h>

#include "backend/provider.h"
#include "cuda/cuda.h"
#include "cuda/dnn.h"
#include "cuda/upload.h"
#include "harness.h"
#include "onnx/onnx.h"

static char g_root[4096];

/* Is node 0 of conformance test `name` claimed by the cuda provider? */
static int claims(const char *name, char *why, size_t size) {
    char path[4300];
    snprintf(path, sizeof path, "%s/%s/model.onnx", g_root, name);
    kl_model *m = NULL;
    if (kl_onnx_load_file(path, &m) != KILN_OK) {
        fprintf(stderr, "    cannot load %s: %s\n", path, kiln_last_error());
        return -1;
    }
    why[0] = 0;
    int r = m->graph->n_nodes ? kl_cuda_node_supported(m->graph->nodes[0], why, size) : -1;
    kl_model_free(m);
    return r;
}

static void test_claims(void) {
    char why[256];
    /* The suite's Conv weights are graph inputs: cuDNN needs them constant. */
    KT_CHECK_EQ_INT(claims("test_conv_with_strides_padding", why, sizeof why), 0);
    KT_CHECK_CONTAINS(why, "weights are not a constant");
    KT_CHECK_EQ_INT(claims("test_gemm_default_no_bias", why, sizeof why), 1);
    KT_CHECK_EQ_INT(claims("test_softmax_axis_1", why, sizeof why), 1);
    KT_CHECK_EQ_INT(claims("test_layer_normalization_2d_axis0", why, sizeof why), 0); /* ONNX LayerNormalization: the passes make kiln.LayerNorm */
    KT_CHECK_EQ_INT(claims("test_maxpool_2d_default", why, sizeof why), 1);
    /* MaxPool's indices output is wanted: stays on the CPU, and says why. */
    KT_CHECK_EQ_INT(claims("test_maxpool_with_argmax_2d_precomputed_pads", why, sizeof why), 0);
    KT_CHECK_CONTAINS(why, "second output");
    /* Cubic resize and 3-D convolution are not implemented on the GPU. */
    KT_CHECK_EQ_INT(claims("test_resize_upsample_scales_cubic", why, sizeof why), 0);
    KT_CHECK_CONTAINS(why, "Resize");
    KT_CHECK_EQ_INT(claims("test_add_bcast", why, sizeof why), 1);
    /* Einsum is claimed for float32/float16 (SAM's relative positions; an
     * ellipsis or a diagonal falls back at plan time); the suite's are float64. */
    KT_CHECK_EQ_INT(claims("test_einsum_batch_matmul", why, sizeof why), 0);
    KT_CHECK_CONTAINS(why, "Einsum");
    KT_CHECK_CONTAINS(why, "not float32/float16");
    KT_CHECK_EQ_INT(claims("test_transpose_default", why, sizeof why), 1);
    KT_CHECK_EQ_INT(claims("test_nonzero_example", why, sizeof why), 0);
    KT_CHECK_CONTAINS(why, "no cuda kernel for NonZero");
}

/* The reasoned list of the conformance tests whose nodes the cuda provider
 * leaves to the CPU although it implements their operator (a type, a mode,
 * a second output, weights that are graph inputs...):
 * tests/conformance/cuda_fallbacks.txt, one "test<TAB>reason" line per
 * test, sorted.  Operators cuda does not implement at all are not listed
 * (the partition report names them).  The file must match what the
 * provider says: a new fallback fails here, and so does a fallback that
 * went away until the file shrinks with it.  KILN_WRITE_CUDA_FALLBACKS=1
 * rewrites the file. */
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_fallback_list(void) {
    const char *src = getenv("KILN_SOURCE_DIR");
    char path[4300];
    snprintf(path, sizeof path, "%s/tests/conformance/cuda_fallbacks.txt", src ? src : ".");
    DIR *d = opendir(g_root);
    if (!d) {
        printf("    no node tests at %s: skipped\n", g_root);
        return;
    }
    char **names = NULL, **lines = NULL;
    size_t n_names = 0, cap = 0, n_lines = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "test_", 5) != 0) continue;
        if (n_names == cap) {
            cap = cap ? 2 * cap : 2048;
            char **nn = realloc(names, cap * sizeof *nn);
            KT_CHECK(nn != NULL);
            if (!nn) break;
            names = nn;
        }
        names[n_names++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n_names, sizeof *names, cmp_str);
    lines = calloc(n_names ? n_names : 1, sizeof *lines);
    KT_CHECK(lines != NULL);
    for (size_t i = 0; lines && i < n_names; i++) {
        char mp[4400];
        snprintf(mp, sizeof mp, "%s/%s/model.onnx", g_root, names[i]);
        kl_model *m = NULL;
        if (kl_onnx_load_file(mp, &m) != KILN_OK) continue; /* the loader's own tests cover these */
        for (size_t k = 0; k < m->graph->n_nodes; k++) {
            char why[512] = "";
            if (kl_cuda_node_supported(m->graph->nodes[k], why, sizeof why)) continue;
            if (strstr(why, "not implemented") || strstr(why, "unknown domain")) continue;
            size_t len = strlen(names[i]) + strlen(why) + 2;
            lines[n_lines] = malloc(len + 1);
            if (lines[n_lines]) snprintf(lines[n_lines++], len + 1, "%s\t%s", names[i], why);
            break;
        }
        kl_model_free(m);
    }
    if (getenv("KILN_WRITE_CUDA_FALLBACKS")) {
        FILE *f = fopen(path, "w");
        KT_CHECK(f != NULL);
        if (f) {
            fprintf(f, "# Conformance tests whose nodes the cuda provider leaves to the CPU although it implements\n"
                       "# their operator, with the reason (tests/cuda/test_cuda_support.c checks this list; it only\n"
                       "# shrinks).  Operators cuda does not implement at all are not listed.\n");
            for (size_t i = 0; i < n_lines; i++) fprintf(f, "%s\n", lines[i]);
            fclose(f);
        }
        printf("    wrote %zu lines to %s\n", n_lines, path);
    } else {
        FILE *f = fopen(path, "r");
        KT_CHECK(f != NULL);
        size_t j = 0, mismatches = 0;
        char buf[2048];
        while (f && fgets(buf, sizeof buf, f)) {
            buf[strcspn(buf, "\n")] = 0;
            if (buf[0] == '#' || !buf[0]) continue;
            if (j >= n_lines || strcmp(buf, lines[j]) != 0) {
                if (mismatches++ < 5)
                    fprintf(stderr, "    cuda_fallbacks.txt: '%s', the provider says '%s'\n", buf,
                            j < n_lines ? lines[j] : "(nothing more)");
            }
            j++;
        }
        if (f) fclose(f);
        for (; j < n_lines; j++)
            if (mismatches++ < 5) fprintf(stderr, "    cuda_fallbacks.txt lacks '%s'\n", lines[j]);
        printf("    %zu conformance tests fall back from cuda with a reason\n", n_lines);
        KT_CHECK_EQ_INT((int)mismatches, 0);
        KT_CHECK(n_lines > 0);
    }
    for (size_t i = 0; i < n_lines; i++) free(lines[i]);
    for (size_t i = 0; i < n_names; i++) free(names[i]);
    free(lines);
    free(names);
}

static void test_availability(void) {
    size_t n = 0;
    KT_CHECK(kiln_providers_available(&n) == KILN_OK && n >= 2);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL, *reason = NULL;
        int usable = -1;
        KT_CHECK(kiln_provider_info(i, &name, &usable, &reason) == KILN_OK);
        if (strcmp(name, "cuda") != 0) continue;
        found = 1;
        char desc[512];
        kl_cuda_describe(desc, sizeof desc);
        printf("    cuda: %s (%s)\n", usable ? "usable" : "not usable", usable ? desc : reason);
        if (!usable) {
            KT_CHECK(reason && strlen(reason) > 10); /* says why */
            KT_CHECK(strstr(reason, "GPU") != NULL || strstr(reason, "cuda") != NULL);
            /* Asking for it explicitly is refused with that reason. */
            kiln_build_options *o = NULL;
            KT_CHECK(kiln_build_options_create(&o) == KILN_OK);
            KT_CHECK(kiln_build_options_append_provider(o, "cuda") != KILN_OK);
            KT_CHECK_CONTAINS(kiln_last_error(), "cannot run on this machine");
            kiln_build_options_destroy(o);
        }
    }
    KT_CHECK(found);
}

/* The host half of the constant upload: float32 -> float16 (F16C where the
 * CPU has it) equals the portable conversion bit for bit, specials and
 * ties included; staging chunks cut anywhere (64-byte multiples) hold the
 * items' bytes at their offsets. */
static uint32_t g_rs = 12345;
static uint32_t rnd32(void) {
    g_rs ^= g_rs << 13;
    g_rs ^= g_rs >> 17;
    g_rs ^= g_rs << 5;
    return g_rs;
}

static void test_upload_host(void) {
    enum { N = 4099 };
    static float f[N];
    static uint16_t h[N];
    const float special[] = {0.0f, -0.0f, 1.0f, 65504.0f, 65519.0f, 65520.0f, 1e9f, -1e9f, 6.1e-5f, 5.96e-8f, 2.98e-8f,
                             2.99e-8f, 1e-10f, 1.00048828125f, 1.00146484375f, 3.14159f};
    size_t ns = sizeof special / sizeof special[0];
    for (size_t i = 0; i < N; i++) {
        if (i < ns) f[i] = special[i];
        else {
            uint32_t b = rnd32();
            memcpy(&f[i], &b, 4);
            if (i % 3 == 0) f[i] = (float)((int32_t)rnd32()) / 2147483648.0f * 100.0f;
        }
    }
    f[N - 1] = INFINITY;
    f[N - 2] = -INFINITY;
    f[N - 3] = NAN;
    kl_cu_f32_to_f16(h, f, N);
    int bad = 0;
    for (size_t i = 0; i < N; i++) {
        uint16_t want = kl_f32_to_f16(f[i]);
        bool nan = f[i] != f[i];
        bool ok = nan ? ((h[i] & 0x7c00) == 0x7c00 && (h[i] & 0x3ff)) : h[i] == want;
        if (!ok && bad++ < 5) fprintf(stderr, "    f32 %a: f16 0x%04x, want 0x%04x\n", (double)f[i], h[i], want);
    }
    KT_CHECK_EQ_INT(bad, 0);

    /* items: float16 conversions and raw copies of odd sizes at 256-byte offsets */
    enum { NI = 9 };
    kl_cu_up_item it[NI];
    static uint8_t raw[NI][3000];
    size_t total = 0;
    for (int i = 0; i < NI; i++) {
        for (size_t k = 0; k < sizeof raw[i]; k++) raw[i][k] = (uint8_t)rnd32();
        it[i].f32_to_f16 = i % 2 == 0;
        it[i].src = it[i].f32_to_f16 ? (const void *)(f + i * 37) : (const void *)raw[i];
        it[i].bytes = it[i].f32_to_f16 ? 2 * (size_t)(1 + rnd32() % 1400) : 1 + rnd32() % 2999;
        it[i].off = total;
        total += (it[i].bytes + 255) & ~(size_t)255;
    }
    static uint8_t want[NI * 3072], got[NI * 3072];
    memset(want, 0xAB, sizeof want);
    for (int i = 0; i < NI; i++) {
        if (it[i].f32_to_f16) kl_cu_f32_to_f16((uint16_t *)(want + it[i].off), it[i].src, it[i].bytes / 2);
        else memcpy(want + it[i].off, it[i].src, it[i].bytes);
    }
    for (int trial = 0; trial < 20; trial++) {
        memset(got, 0xAB, sizeof got);
        size_t lo = 0;
        while (lo < total) {
            size_t hi = trial == 0 ? total : KL_MIN(total, lo + 64 * (1 + rnd32() % 40));
            kl_cu_upload_fill(it, NI, lo, hi, got + lo);
            lo = hi;
        }
        int diff = 0;
        for (int i = 0; i < NI; i++) diff += memcmp(got + it[i].off, want + it[i].off, it[i].bytes) != 0;
        KT_CHECK_EQ_INT(diff, 0);
    }
}

/* cuBLASLt and cuDNN are opened with dlopen() on first use (culib.c): on a
 * machine that has them (this one and CI's: the toolkit is installed, no
 * GPU needed) every function kiln calls resolves, and the versions read
 * through the table are the ones the headers were built for. */
static void test_libraries(void) {
    char why[512] = "";
    int rc = kc_dnn_libraries(why, sizeof why);
    if (rc) {
        printf("    (cuBLASLt/cuDNN not loadable here: %s)\n", why);
        KT_CHECK_CONTAINS(why, "cannot load");
        KT_CHECK_EQ_INT(kc_dnn_cudnn_version(), 0);
        return;
    }
    KT_CHECK_EQ_INT(kc_dnn_libraries(why, sizeof why), 0); /* once, then remembered */
    KT_CHECK_EQ_INT(kc_dnn_cudnn_version() / 10000, CUDNN_MAJOR);
    KT_CHECK_EQ_INT(kc_dnn_cublaslt_version() / 10000, CUBLAS_VER_MAJOR);
    char ver[128], want[64];
    kc_dnn_versions(ver, sizeof ver);
    snprintf(want, sizeof want, "cudnn %d.%d.", CUDNN_MAJOR, CUDNN_MINOR);
    KT_CHECK_CONTAINS(ver, want);
    snprintf(want, sizeof want, "cublasLt %d.", CUBLAS_VER_MAJOR);
    KT_CHECK_CONTAINS(ver, want);
}

/* The names `kiln profile` gives the convolution algorithm codes an engine records. */
static void test_algo_names(void) {
    static const struct {
        int algo;
        bool transposed;
        const char *want;
    } cases[] = {{-1, false, "not chosen"},
                 {1, false, "cuDNN IMPLICIT_PRECOMP_GEMM"},
                 {7, false, "cuDNN WINOGRAD_NONFUSED"},
                 {9, false, "cuDNN algorithm 9"},
                 {1, true, "cuDNN backward-data ALGO_1"},
                 {KC_CONV_ALGO_DW, false, "kiln depthwise"},
                 {KC_CONV_ALGO_PW, false, "kiln 1x1 few-channel"},
                 {KC_CONV_ALGO_GEMM + 3, false, "1x1 as cuBLASLt product, candidate 3"},
                 {KC_CONV_ALGO_IM2COL + 1, false, "im2col + cuBLASLt product, candidate 1"},
                 {KC_CONV_ALGO_IM2COL + KC_GEMM_ALGO_X3 + 2, false, "im2col + cuBLASLt product, 3xTF32 candidate 2"},
                 {KC_CONV_ALGO_IGEMM, false, "kiln implicit GEMM 128x128 tile, 2x2 warps"},
                 {KC_CONV_ALGO_IGEMM + 7, false, "kiln implicit GEMM 128x32 tile, 4x1 warps"},
                 {KC_CONV_ALGO_IGEMM + 11, false, "kiln implicit GEMM 32x32 tile, 2x2 warps, K split 4"},
                 {KC_CONV_ALGO_IGEMM + KC_IGEMM_CFGS, false, "algorithm 30014"}};
    char buf[96];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        kc_conv_algo_name(cases[i].algo, cases[i].transposed, buf, sizeof buf);
        if (strcmp(buf, cases[i].want) != 0) fprintf(stderr, "    algo %d: '%s', want '%s'\n", cases[i].algo, buf, cases[i].want);
        KT_CHECK(strcmp(buf, cases[i].want) == 0);
    }
    char small[6];
    kc_conv_algo_name(1, false, small, sizeof small);
    KT_CHECK(strcmp(small, "cuDNN") == 0);
    kc_conv_describe(NULL, buf, sizeof buf);
    KT_CHECK(buf[0] == 0);
}

int main(void) {
    const char *shared = getenv("KILN_SHARED_DIR");
    snprintf(g_root, sizeof g_root, "%s/onnx-backend-tests/node", shared ? shared : "../shared");
    KT_RUN(test_claims);
    KT_RUN(test_fallback_list);
    KT_RUN(test_availability);
    KT_RUN(test_upload_host);
    KT_RUN(test_libraries);
    KT_RUN(test_algo_names);
    return kt_summary();
}
