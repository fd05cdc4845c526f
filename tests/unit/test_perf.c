/* What bench figures are measured against, without timing anything:
 * kiln_model_macs / kiln_engine_macs on small models whose MAC counts are
 * worked out by hand below (symbolic batch bound from the input shape, the
 * optimized engine counting what its model counts, errors), and
 * kiln_cpu_get / kiln_cpu_peak_gflops (status, a positive finite peak, ISA
 * names consistent with each other and with KILN_ISA capping, checked in
 * child processes started with KILN_ISA=ref and KILN_ISA=avx2). */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "kiln.h"
#include "onnxbuild.c" /* not part of kiln_testcommon */

/* ---- models ------------------------------------------------------------------- */

static void add_f32(kt_pb *g, const char *name, const int64_t *dims, int rank) {
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= (size_t)dims[i];
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = (float)((i * 37) % 11) * 0.05f - 0.25f;
    kt_pb t = {0};
    kt_onnx_tensor_f32(&t, name, dims, rank, v, n, 1);
    kt_pb_take(g, KT_GRAPH_INITIALIZER, &t);
    free(v);
}

/* x [N,3,16,16] -> Conv 8x3x3x3 pad 1 -> BN -> Relu -> Conv 8x8x3x3 stride 2
 * pad 1 -> GlobalAveragePool -> Flatten -> Gemm (10x8, transB) -> MatMul
 * (10x4) -> y [N,4].  MACs per image, by hand:
 *   conv1  8 out ch * 16*16 out px * 3 in ch * 3*3  = 55,296
 *   conv2  8 out ch * 8*8 out px * 8 in ch * 3*3    = 36,864
 *   gemm   10 * 8                                   =     80
 *   matmul 10 * 4                                   =     40
 *   total                                           = 92,280 */
#define CNN_MACS_PER_IMAGE 92280u

static void build_cnn(kt_pb *mb) {
    kt_pb g = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "cnn");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "N,3,16,16");
    int64_t w1[4] = {8, 3, 3, 3}, w2[4] = {8, 8, 3, 3}, c8[1] = {8}, wf[2] = {10, 8}, c10[1] = {10},
            wm[2] = {10, 4};
    add_f32(&g, "w1", w1, 4);
    add_f32(&g, "b1", c8, 1);
    add_f32(&g, "bn_s", c8, 1);
    add_f32(&g, "bn_b", c8, 1);
    add_f32(&g, "bn_m", c8, 1);
    add_f32(&g, "bn_v", c8, 1);
    add_f32(&g, "w2", w2, 4);
    add_f32(&g, "wf", wf, 2);
    add_f32(&g, "bf", c10, 1);
    add_f32(&g, "wm", wm, 2);
    int64_t k[2] = {3, 3}, p[4] = {1, 1, 1, 1}, s2[2] = {2, 2};
    kt_pb n = {0};
    kt_onnx_node_head(&n, "Conv", NULL, "conv1", "x,w1,b1", "c1");
    kt_onnx_attr_ints(&n, "kernel_shape", k, 2);
    kt_onnx_attr_ints(&n, "pads", p, 4);
    kt_pb_take(&g, KT_GRAPH_NODE, &n);
    kt_onnx_node(&g, KT_GRAPH_NODE, "BatchNormalization", "bn1", "c1,bn_s,bn_b,bn_m,bn_v", "n1");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "relu1", "n1", "r1");
    kt_pb n2 = {0};
    kt_onnx_node_head(&n2, "Conv", NULL, "conv2", "r1,w2", "c2");
    kt_onnx_attr_ints(&n2, "kernel_shape", k, 2);
    kt_onnx_attr_ints(&n2, "pads", p, 4);
    kt_onnx_attr_ints(&n2, "strides", s2, 2);
    kt_pb_take(&g, KT_GRAPH_NODE, &n2);
    kt_onnx_node(&g, KT_GRAPH_NODE, "GlobalAveragePool", "gap", "c2", "gp");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Flatten", "flat", "gp", "f");
    kt_pb gm = {0};
    kt_onnx_node_head(&gm, "Gemm", NULL, "fc", "f,wf,bf", "h");
    kt_onnx_attr_i(&gm, "transB", 1);
    kt_pb_take(&g, KT_GRAPH_NODE, &gm);
    kt_onnx_node(&g, KT_GRAPH_NODE, "MatMul", "mm", "h,wm", "y");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, "N,4");
    kt_onnx_model(mb, 8, 17, &g);
    kt_pb_free(&g);
}

/* kiln.Attention on Q, K, V [B=2, S=5, E=8] with 2 heads: Q K^T is
 * B * H * S * S * (E/H) = 2*5*5*8 = 400 MACs, P V as much: 800 in all. */
static void build_attention(kt_pb *mb) {
    kt_pb g = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "attn");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "q", KILN_DTYPE_FLOAT, "2,5,8");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "k", KILN_DTYPE_FLOAT, "2,5,8");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "v", KILN_DTYPE_FLOAT, "2,5,8");
    kt_pb n = {0};
    kt_onnx_node_head(&n, "Attention", "kiln", "attn", "q,k,v", "y");
    kt_onnx_attr_i(&n, "num_heads", 2);
    kt_pb_take(&g, KT_GRAPH_NODE, &n);
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, "2,5,8");
    kt_onnx_model(mb, 8, 17, &g);
    kt_onnx_opset(mb, KT_MODEL_OPSET_IMPORT, "kiln", 1);
    kt_pb_free(&g);
}

/* Model bytes outlive their models (zero-copy): freed at the end of main. */
static void *g_bytes[8];
static size_t g_n_bytes;

static kiln_model *load(void (*build)(kt_pb *)) {
    kt_pb mb = {0};
    build(&mb);
    void *copy = malloc(mb.len);
    memcpy(copy, mb.data, mb.len);
    kiln_model *m = NULL;
    kiln_status s = kiln_model_load_from_memory(copy, mb.len, NULL, &m);
    kt_pb_free(&mb);
    if (s) {
        fprintf(stderr, "    load: %s\n", kiln_last_error());
        free(copy);
        return NULL;
    }
    g_bytes[g_n_bytes++] = copy;
    return m;
}

/* ---- MAC counts ------------------------------------------------------------------- */

static void test_model_macs(void) {
    kiln_model *m = load(build_cnn);
    KT_CHECK(m != NULL);
    if (!m) return;
    uint64_t macs = 0;
    size_t unc = 99;
    /* No shapes: the symbolic batch counts as 1 (kiln info's count). */
    KT_CHECK_EQ_INT(kiln_model_macs(m, NULL, NULL, NULL, 0, &macs, &unc), KILN_OK);
    KT_CHECK_EQ_INT(macs, CNN_MACS_PER_IMAGE);
    KT_CHECK_EQ_INT(unc, 0);
    /* Batch 4 from the input's shape. */
    const char *names[1] = {"x"};
    int ranks[1] = {4};
    int64_t shape[4] = {4, 3, 16, 16};
    const int64_t *shapes[1] = {shape};
    KT_CHECK_EQ_INT(kiln_model_macs(m, names, ranks, shapes, 1, &macs, NULL), KILN_OK);
    KT_CHECK_EQ_INT(macs, 4u * CNN_MACS_PER_IMAGE);
    /* Errors: unknown input, rank, a fixed dim that differs; nothing written. */
    uint64_t keep = 7;
    const char *bad_names[1] = {"nope"};
    KT_CHECK_EQ_INT(kiln_model_macs(m, bad_names, ranks, shapes, 1, &keep, NULL), KILN_ERR_NOT_FOUND);
    int bad_rank[1] = {3};
    KT_CHECK_EQ_INT(kiln_model_macs(m, names, bad_rank, shapes, 1, &keep, NULL), KILN_ERR_SHAPE);
    int64_t bad_shape[4] = {4, 5, 16, 16};
    const int64_t *bad_shapes[1] = {bad_shape};
    KT_CHECK_EQ_INT(kiln_model_macs(m, names, ranks, bad_shapes, 1, &keep, NULL), KILN_ERR_SHAPE);
    KT_CHECK_CONTAINS(kiln_last_error(), "axis 1");
    KT_CHECK_EQ_INT(keep, 7);
    KT_CHECK_EQ_INT(kiln_model_macs(NULL, NULL, NULL, NULL, 0, &macs, NULL), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_model_macs(m, NULL, NULL, NULL, 0, NULL, NULL), KILN_ERR_INVALID_ARGUMENT);

    /* The engine (Conv+BN+Relu fused, Gemm, MatMul) counts the same. */
    kiln_engine *e = NULL;
    KT_CHECK_EQ_INT(kiln_build(m, NULL, &e), KILN_OK);
    if (e) {
        size_t layers = 0;
        kiln_engine_layer_count(e, &layers);
        KT_CHECK_EQ_INT(kiln_engine_macs(e, names, ranks, shapes, 1, &macs, &unc), KILN_OK);
        KT_CHECK_EQ_INT(macs, 4u * CNN_MACS_PER_IMAGE);
        KT_CHECK_EQ_INT(unc, 0);
        bool fused = false;
        for (size_t i = 0; i < layers; i++) {
            const char *name, *op, *prov, *tac, *from;
            if (kiln_engine_layer_info(e, i, &name, &op, &prov, &tac, &from) == KILN_OK && strstr(op, "Fused"))
                fused = true;
        }
        KT_CHECK(fused); /* the count went through fused layers */
        KT_CHECK_EQ_INT(kiln_engine_macs(e, bad_names, ranks, shapes, 1, &keep, NULL), KILN_ERR_NOT_FOUND);
        kiln_engine_destroy(e);
    }
    kiln_model_destroy(m);

    kiln_model *a = load(build_attention);
    KT_CHECK(a != NULL);
    if (a) {
        KT_CHECK_EQ_INT(kiln_model_macs(a, NULL, NULL, NULL, 0, &macs, &unc), KILN_OK);
        KT_CHECK_EQ_INT(macs, 800);
        KT_CHECK_EQ_INT(unc, 0);
        kiln_model_destroy(a);
    }
}

/* ---- the CPU and its peak -------------------------------------------------------------- */

static const char *fact(const char *key) {
    const char *v = NULL;
    kiln_status s = kiln_cpu_get(key, &v);
    KT_CHECK_EQ_INT(s, KILN_OK);
    return s == KILN_OK && v ? v : "";
}

/* Position of level `name` (ref 0, avx2 1, avx512 2), -1 if not a level. */
static int level_rank(const char *name) {
    static const char *const levels[] = {"ref", "avx2", "avx512"};
    for (int i = 0; i < 3; i++)
        if (strcmp(levels[i], name) == 0) return i;
    return -1;
}

/* The facts agree with each other; the peak of every usable level is
 * positive and finite, levels above the one in use are refused. */
static void check_cpu(void) {
    const char *isa = fact("isa"), *best = fact("isa_detected"), *levels = fact("isa_levels");
    int in_use = level_rank(isa), detected = level_rank(best);
    KT_CHECK(in_use >= 0);
    KT_CHECK(detected >= in_use);
    /* isa_levels: exactly ref .. isa, comma-separated. */
    char want[64] = "";
    static const char *const names[] = {"ref", "avx2", "avx512"};
    for (int i = 0; i <= in_use && i < 3; i++) {
        if (i) strcat(want, ",");
        strcat(want, names[i]);
    }
    KT_CHECK_STR(levels, want);
    KT_CHECK(atoi(fact("cores")) >= 1);
    if (detected >= 1) KT_CHECK_CONTAINS(fact("features"), "avx2");
    if (detected >= 2) KT_CHECK_CONTAINS(fact("features"), "avx512f");
    const char *v;
    KT_CHECK_EQ_INT(kiln_cpu_get("no_such_key", &v), KILN_ERR_NOT_FOUND);
    KT_CHECK_EQ_INT(kiln_cpu_get(NULL, &v), KILN_ERR_INVALID_ARGUMENT);

    for (int i = 0; i < 3; i++) {
        double g = -1;
        kiln_status s = kiln_cpu_peak_gflops(names[i], 1, &g);
        if (i <= in_use) {
            KT_CHECK_EQ_INT(s, KILN_OK);
            KT_CHECK(isfinite(g) && g > 0);
        } else {
            KT_CHECK_EQ_INT(s, KILN_ERR_UNSUPPORTED);
            KT_CHECK(g == -1); /* not written */
            KT_CHECK_CONTAINS(kiln_last_error(), names[i]);
        }
    }
    double g = 0, g2 = 0;
    KT_CHECK_EQ_INT(kiln_cpu_peak_gflops(NULL, 1, &g), KILN_OK);
    KT_CHECK(isfinite(g) && g > 0);
    KT_CHECK_EQ_INT(kiln_cpu_peak_gflops("auto", 1, &g2), KILN_OK);
    KT_CHECK(g2 == g); /* the same level, cached */
    KT_CHECK_EQ_INT(kiln_cpu_peak_gflops(NULL, 0, &g2), KILN_OK); /* all cores */
    KT_CHECK(isfinite(g2) && g2 > 0);
    KT_CHECK_EQ_INT(kiln_cpu_peak_gflops(NULL, 2, &g2), KILN_OK);
    KT_CHECK(isfinite(g2) && g2 > 0);
    KT_CHECK_EQ_INT(kiln_cpu_peak_gflops("avx9000", 1, &g2), KILN_ERR_NOT_FOUND);
    KT_CHECK_EQ_INT(kiln_cpu_peak_gflops(NULL, -1, &g2), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_cpu_peak_gflops(NULL, 1, NULL), KILN_ERR_INVALID_ARGUMENT);
}

static void test_cpu(void) { check_cpu(); }

/* Run this program again with KILN_ISA=level (read once per process) and
 * --child LEVEL: the child checks that the level in use is min(level,
 * detected). */
static void test_kiln_isa_cap(void) {
    static const char *const caps[] = {"ref", "avx2"};
    for (int i = 0; i < 2; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            setenv("KILN_ISA", caps[i], 1);
            execl("/proc/self/exe", "test_perf", "--child", caps[i], (char *)NULL);
            _exit(127);
        }
        int status = 0;
        KT_CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
        KT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
}

/* In the child: KILN_ISA=cap caps the level; then every check_cpu rule. */
static int child(const char *cap) {
    kt_current = "child";
    int want = level_rank(cap), detected = level_rank(fact("isa_detected"));
    int expect = want < detected ? want : detected;
    KT_CHECK_EQ_INT(level_rank(fact("isa")), expect);
    check_cpu();
    return kt_summary();
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--child") == 0) return child(argv[2]);
    KT_RUN(test_model_macs);
    KT_RUN(test_cpu);
    KT_RUN(test_kiln_isa_cap);
    for (size_t i = 0; i < g_n_bytes; i++) free(g_bytes[i]);
    return kt_summary();
}
