/*
 * test_threads.c — kiln used from 8 threads at once: each thread creates
 * its own session and runs it while the others do the same; every output
 * must be bit-identical to a single-threaded run.
 *
 *  1. cold start: the threads each load the same small model from memory at
 *     the same moment (the op and kernel indexes are built on that first
 *     use), create a session and run 4 inputs several times;
 *  2. one shared kiln_model, a session per thread;
 *  3. models/out/resnet18.onnx, when exported (KILN_SOURCE_DIR), a session
 *     per thread on one shared model.
 * The single-threaded output of the small model is itself checked against
 * a float64 reference computed here.  Run under ThreadSanitizer to check
 * for data races (build with clang -fsanitize=thread).
 * Env: KILN_THREADS_RUNS (runs per thread and input, default 3),
 *      KILN_THREADS_BIG_RUNS (resnet18 runs per thread, default 1).
 */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kiln.h"
#include "onnxbuild.c" /* not part of kiln_testcommon */

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define NTHREADS 8
#define NINPUTS 4
/* Small model: X[1,3,8,8] -> Conv(4x3x3x3, pads 1) -> Relu (output R) ->
 * GlobalAveragePool -> Flatten -> Gemm(4x5) -> Softmax (output Y). */
#define C_IN 3
#define C_OUT 4
#define HW 8
#define N_CLS 5
#define X_COUNT (C_IN * HW * HW)
#define R_COUNT (C_OUT * HW * HW)

static float g_w[C_OUT * C_IN * 9], g_b[C_OUT], g_w2[C_OUT * N_CLS], g_b2[N_CLS];
static float g_x[NINPUTS][X_COUNT];
static int g_runs = 3, g_big_runs = 1;

/* Deterministic values in [-1, 1). */
static float lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static void make_data(void) {
    uint32_t s = 12345;
    for (size_t i = 0; i < ARRAY_LEN(g_w); i++) g_w[i] = lcg(&s) * 0.5f;
    for (size_t i = 0; i < ARRAY_LEN(g_b); i++) g_b[i] = lcg(&s) * 0.1f;
    for (size_t i = 0; i < ARRAY_LEN(g_w2); i++) g_w2[i] = lcg(&s);
    for (size_t i = 0; i < ARRAY_LEN(g_b2); i++) g_b2[i] = lcg(&s) * 0.1f;
    for (int k = 0; k < NINPUTS; k++)
        for (int i = 0; i < X_COUNT; i++) g_x[k][i] = lcg(&s);
}

/* The small model's bytes (opset 13). */
static void build_small(kt_pb *mb) {
    kt_pb g = {0}, t = {0}, node = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "small");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "X", KILN_DTYPE_FLOAT, "1,3,8,8");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "Y", KILN_DTYPE_FLOAT, "1,5");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "R", KILN_DTYPE_FLOAT, "1,4,8,8");
    const int64_t dw[4] = {C_OUT, C_IN, 3, 3}, db[1] = {C_OUT}, dw2[2] = {C_OUT, N_CLS}, db2[1] = {N_CLS};
    kt_onnx_tensor_f32(&t, "W", dw, 4, g_w, ARRAY_LEN(g_w), 1);
    kt_pb_take(&g, KT_GRAPH_INITIALIZER, &t);
    kt_onnx_tensor_f32(&t, "B", db, 1, g_b, ARRAY_LEN(g_b), 1);
    kt_pb_take(&g, KT_GRAPH_INITIALIZER, &t);
    kt_onnx_tensor_f32(&t, "W2", dw2, 2, g_w2, ARRAY_LEN(g_w2), 1);
    kt_pb_take(&g, KT_GRAPH_INITIALIZER, &t);
    kt_onnx_tensor_f32(&t, "B2", db2, 1, g_b2, ARRAY_LEN(g_b2), 1);
    kt_pb_take(&g, KT_GRAPH_INITIALIZER, &t);
    kt_onnx_node_head(&node, "Conv", NULL, "conv", "X,W,B", "C");
    const int64_t pads[4] = {1, 1, 1, 1}, ks[2] = {3, 3};
    kt_onnx_attr_ints(&node, "pads", pads, 4);
    kt_onnx_attr_ints(&node, "kernel_shape", ks, 2);
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "relu", "C", "R");
    kt_onnx_node(&g, KT_GRAPH_NODE, "GlobalAveragePool", "gap", "R", "P");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Flatten", "flat", "P", "F");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Gemm", "gemm", "F,W2,B2", "G");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Softmax", "softmax", "G", "Y");
    kt_onnx_model(mb, 8, 13, &g);
    kt_pb_free(&g);
}

/* float64 reference of the small model on input k: r[R_COUNT], y[N_CLS]. */
static void reference(int k, double *r, double *y) {
    const float *x = g_x[k];
    double pool[C_OUT], g[N_CLS], mx = -INFINITY, sum = 0;
    for (int m = 0; m < C_OUT; m++) {
        pool[m] = 0;
        for (int i = 0; i < HW; i++)
            for (int j = 0; j < HW; j++) {
                double v = g_b[m];
                for (int c = 0; c < C_IN; c++)
                    for (int di = 0; di < 3; di++)
                        for (int dj = 0; dj < 3; dj++) {
                            int ii = i + di - 1, jj = j + dj - 1;
                            if (ii < 0 || jj < 0 || ii >= HW || jj >= HW) continue;
                            v += (double)g_w[((m * C_IN + c) * 3 + di) * 3 + dj] * x[(c * HW + ii) * HW + jj];
                        }
                v = v > 0 ? v : 0;
                r[(m * HW + i) * HW + j] = v;
                pool[m] += v / (HW * HW);
            }
    }
    for (int n = 0; n < N_CLS; n++) {
        g[n] = g_b2[n];
        for (int m = 0; m < C_OUT; m++) g[n] += pool[m] * g_w2[m * N_CLS + n];
        if (g[n] > mx) mx = g[n];
    }
    for (int n = 0; n < N_CLS; n++) sum += exp(g[n] - mx);
    for (int n = 0; n < N_CLS; n++) y[n] = exp(g[n] - mx) / sum;
}

/* Outputs of one run of the small model. */
typedef struct small_out {
    float y[N_CLS], r[R_COUNT];
} small_out;

/* Run session se on input k into *o; returns the status (message in
 * *err, a thread-local copy, on failure). */
static kiln_status run_small(kiln_session *se, int k, small_out *o, char *err, size_t errsize) {
    const int64_t xs[4] = {1, C_IN, HW, HW};
    kiln_tensor *x = NULL, *outs[2] = {NULL, NULL};
    kiln_status s = kiln_tensor_create_from_data(KILN_DTYPE_FLOAT, xs, 4, g_x[k], sizeof g_x[k], &x);
    const char *in_names[1] = {"X"}, *out_names[2] = {"Y", "R"};
    const kiln_tensor *ins[1] = {x};
    if (!s) s = kiln_session_run(se, in_names, ins, 1, out_names, outs, 2);
    void *d;
    size_t n;
    if (!s && !kiln_tensor_data(outs[0], &d, &n) && n == sizeof o->y) memcpy(o->y, d, n);
    else if (!s) s = KILN_ERR_SHAPE;
    if (!s && !kiln_tensor_data(outs[1], &d, &n) && n == sizeof o->r) memcpy(o->r, d, n);
    else if (!s) s = KILN_ERR_SHAPE;
    if (s && err) snprintf(err, errsize, "%s", kiln_last_error());
    kiln_tensor_destroy(x);
    kiln_tensor_destroy(outs[0]);
    kiln_tensor_destroy(outs[1]);
    return s;
}

/* ---- threads ------------------------------------------------------------------ */

typedef struct worker {
    pthread_barrier_t *start;
    const kt_pb *bytes;       /* phase 1: load these */
    const kiln_model *shared; /* phase 2/3: or use this model */
    const void *big_in;
    size_t big_in_bytes, big_out_bytes;
    const char *big_in_name, *big_out_name;
    int64_t big_shape[4];
    /* results */
    kiln_status status;
    char err[256];
    small_out first[NINPUTS]; /* first output per input */
    int mismatches;           /* later runs that differ from the first */
    int runs;
    void *big_out;            /* phase 3: first output (malloc) */
} worker;

static void *small_worker(void *arg) {
    worker *w = arg;
    kiln_model *own = NULL;
    kiln_session *se = NULL;
    pthread_barrier_wait(w->start);
    const kiln_model *m = w->shared;
    if (!m) {
        w->status = kiln_model_load_from_memory(w->bytes->data, w->bytes->len, NULL, &own);
        m = own;
    }
    if (!w->status) w->status = kiln_session_create(m, NULL, &se);
    for (int it = 0; it < g_runs && !w->status; it++)
        for (int k = 0; k < NINPUTS && !w->status; k++) {
            small_out o;
            w->status = run_small(se, k, it ? &o : &w->first[k], w->err, sizeof w->err);
            w->runs++;
            if (!w->status && it && memcmp(&o, &w->first[k], sizeof o) != 0) w->mismatches++;
        }
    if (w->status && !w->err[0]) snprintf(w->err, sizeof w->err, "%s", kiln_last_error());
    kiln_session_destroy(se);
    kiln_model_destroy(own);
    return NULL;
}

static void *big_worker(void *arg) {
    worker *w = arg;
    kiln_session *se = NULL;
    pthread_barrier_wait(w->start);
    w->status = kiln_session_create(w->shared, NULL, &se);
    for (int it = 0; it < g_big_runs && !w->status; it++) {
        kiln_tensor *x = NULL, *y = NULL;
        w->status = kiln_tensor_create_from_data(KILN_DTYPE_FLOAT, w->big_shape, 4, (void *)w->big_in,
                                                 w->big_in_bytes, &x);
        const kiln_tensor *ins[1] = {x};
        if (!w->status) w->status = kiln_session_run(se, &w->big_in_name, ins, 1, &w->big_out_name, &y, 1);
        void *d;
        size_t n = 0;
        if (!w->status) w->status = kiln_tensor_data(y, &d, &n);
        if (!w->status && n != w->big_out_bytes) w->status = KILN_ERR_SHAPE;
        if (!w->status) {
            if (!w->big_out) {
                w->big_out = malloc(n);
                if (w->big_out) memcpy(w->big_out, d, n);
            } else if (memcmp(w->big_out, d, n) != 0) {
                w->mismatches++;
            }
            w->runs++;
        }
        kiln_tensor_destroy(x);
        kiln_tensor_destroy(y);
    }
    if (w->status) snprintf(w->err, sizeof w->err, "%s", kiln_last_error());
    kiln_session_destroy(se);
    return NULL;
}

/* Start NTHREADS workers on fn, released together, and join them. */
static void run_workers(worker *ws, void *(*fn)(void *)) {
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NTHREADS);
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        ws[i].start = &start;
        KT_CHECK_EQ_INT(pthread_create(&th[i], NULL, fn, &ws[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
}

/* Compare each worker's outputs with the single-threaded ones. */
static void expect_small_identical(const worker *ws, const small_out *ref) {
    int diff = 0, runs = 0;
    for (int i = 0; i < NTHREADS; i++) {
        KT_CHECK_EQ_INT(ws[i].status, KILN_OK);
        if (ws[i].status) fprintf(stderr, "    thread %d: %s\n", i, ws[i].err);
        KT_CHECK_EQ_INT(ws[i].mismatches, 0);
        runs += ws[i].runs;
        for (int k = 0; k < NINPUTS && !ws[i].status; k++) diff += memcmp(&ws[i].first[k], &ref[k], sizeof *ref) != 0;
    }
    KT_CHECK_EQ_INT(diff, 0);
    KT_CHECK_EQ_INT(runs, NTHREADS * NINPUTS * g_runs);
    fprintf(stderr, "    %d threads, %d runs, %d outputs differ from the single-threaded run\n", NTHREADS, runs, diff);
}

static kt_pb g_bytes;
static small_out g_ref[NINPUTS];

/* Phase 1, first in the process: the registries' indexes are built while
 * 8 threads load models at once.  Compared after the single-threaded run. */
static worker g_cold[NTHREADS];

static void test_cold_start(void) {
    for (int i = 0; i < NTHREADS; i++) g_cold[i] = (worker){.bytes = &g_bytes};
    run_workers(g_cold, small_worker);
}

static void test_single_thread_reference(void) {
    kiln_model *m = NULL;
    kiln_session *se = NULL;
    KT_CHECK_EQ_INT(kiln_model_load_from_memory(g_bytes.data, g_bytes.len, NULL, &m), KILN_OK);
    if (m) KT_CHECK_EQ_INT(kiln_session_create(m, NULL, &se), KILN_OK);
    double worst = 0;
    for (int k = 0; k < NINPUTS && se; k++) {
        char err[256] = "";
        KT_CHECK_EQ_INT(run_small(se, k, &g_ref[k], err, sizeof err), KILN_OK);
        double r[R_COUNT], y[N_CLS];
        reference(k, r, y);
        for (int i = 0; i < R_COUNT; i++) {
            double e = fabs(g_ref[k].r[i] - r[i]) / (1 + fabs(r[i]));
            if (e > worst) worst = e;
        }
        for (int i = 0; i < N_CLS; i++) {
            double e = fabs(g_ref[k].y[i] - y[i]) / (1 + fabs(y[i]));
            if (e > worst) worst = e;
        }
    }
    /* |kiln - ref| / (1 + |ref|): float32 arithmetic on O(1) values, with
     * whichever convolution tactic the CPU provider picks (Winograd tactics
     * give about 6e-6 here, direct ones 2e-7). */
    fprintf(stderr, "    single thread vs float64 reference: worst error %.2e\n", worst);
    KT_CHECK(worst < 2e-5);
    kiln_session_destroy(se);
    kiln_model_destroy(m);
    expect_small_identical(g_cold, g_ref);
}

static void test_shared_model(void) {
    kiln_model *m = NULL;
    KT_CHECK_EQ_INT(kiln_model_load_from_memory(g_bytes.data, g_bytes.len, NULL, &m), KILN_OK);
    if (!m) return;
    static worker ws[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) ws[i] = (worker){.shared = m};
    run_workers(ws, small_worker);
    expect_small_identical(ws, g_ref);
    kiln_model_destroy(m);
}

static void test_resnet18(void) {
    const char *root = getenv("KILN_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/models/out/resnet18.onnx", root ? root : ".");
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "    %s not exported: skipped (models/export.py --models resnet18)\n", path);
        return;
    }
    fclose(f);
    kiln_model *m = NULL;
    KT_CHECK_EQ_INT(kiln_model_load(path, &m), KILN_OK);
    if (!m) return;
    static float x[1 * 3 * 224 * 224];
    uint32_t s = 777;
    for (size_t i = 0; i < ARRAY_LEN(x); i++) x[i] = lcg(&s);
    const char *in_name = NULL, *out_name = NULL;
    kiln_dtype dt;
    int rank;
    KT_CHECK_EQ_INT(kiln_model_input_info(m, 0, &in_name, &dt, &rank), KILN_OK);
    KT_CHECK_EQ_INT(kiln_model_output_info(m, 0, &out_name, &dt, &rank), KILN_OK);
    /* Single-threaded reference. */
    worker ref = {.shared = m, .big_in = x, .big_in_bytes = sizeof x, .big_out_bytes = 1000 * sizeof(float),
                  .big_in_name = in_name, .big_out_name = out_name, .big_shape = {1, 3, 224, 224}};
    pthread_barrier_t one;
    pthread_barrier_init(&one, NULL, 1);
    ref.start = &one;
    int saved = g_big_runs;
    g_big_runs = 1;
    big_worker(&ref);
    g_big_runs = saved;
    pthread_barrier_destroy(&one);
    KT_CHECK_EQ_INT(ref.status, KILN_OK);
    if (ref.status) fprintf(stderr, "    %s\n", ref.err);
    static worker ws[NTHREADS];
    for (int i = 0; i < NTHREADS && !ref.status; i++) {
        ws[i] = ref;
        ws[i].big_out = NULL;
        ws[i].runs = 0;
    }
    if (!ref.status) run_workers(ws, big_worker);
    int diff = 0, runs = 0;
    for (int i = 0; i < NTHREADS && !ref.status; i++) {
        KT_CHECK_EQ_INT(ws[i].status, KILN_OK);
        if (ws[i].status) fprintf(stderr, "    thread %d: %s\n", i, ws[i].err);
        KT_CHECK_EQ_INT(ws[i].mismatches, 0);
        runs += ws[i].runs;
        if (ws[i].big_out) diff += memcmp(ws[i].big_out, ref.big_out, ref.big_out_bytes) != 0;
        free(ws[i].big_out);
    }
    if (!ref.status) {
        KT_CHECK_EQ_INT(runs, NTHREADS * g_big_runs);
        KT_CHECK_EQ_INT(diff, 0);
        fprintf(stderr, "    resnet18: %d threads, %d runs, %d outputs differ from the single-threaded run\n",
                NTHREADS, runs, diff);
    }
    free(ref.big_out);
    kiln_model_destroy(m);
}

int main(void) {
    const char *e = getenv("KILN_THREADS_RUNS");
    if (e && atoi(e) > 0) g_runs = atoi(e);
    e = getenv("KILN_THREADS_BIG_RUNS");
    if (e && atoi(e) > 0) g_big_runs = atoi(e);
    make_data();
    build_small(&g_bytes);
    KT_RUN(test_cold_start);
    KT_RUN(test_single_thread_reference);
    KT_RUN(test_shared_model);
    KT_RUN(test_resnet18);
    kt_pb_free(&g_bytes);
    return kt_summary();
}
