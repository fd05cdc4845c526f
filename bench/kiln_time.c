/*
 * kiln_time.c — kiln's worker for bench/bench.py: loads one model, creates
 * one session with a given thread count, then answers commands on stdin:
 *
 *   kiln_time MODEL THREADS NAME:DTYPE:D0xD1x...:RAWFILE [...]
 *   kiln_time --peak THREADS   print "peak ISA GFLOPS" (kiln_cpu_peak_gflops
 *                              at the level in use) and exit
 *
 *   run N      run the model N times; print "ok T1 T2 ... TN" (ms per run)
 *   dump DIR   run once; write output K as DIR/out_K.bin (raw bytes) and
 *              print "ok DTYPE:D0xD1 ..." (one shape per output)
 *   quit       exit
 *
 * KILN_TIME_OPTS="key=value;..." sets more session options (kiln_session_options_set).
 * Startup prints "ready LOAD_MS SESSION_MS MACS UNCOUNTED" (MACS: kiln_model_macs
 * at the inputs' shapes, UNCOUNTED: nodes of unknown shape it left out), or
 * "error MESSAGE" and exits 1.
 * DTYPE is float or int64.  Each RAWFILE holds the input's bytes (native
 * order).  Outputs are created by kiln on each run and released after it,
 * as ONNX Runtime and PyTorch allocate theirs on each run.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln.h"

#define MAX_IO 64

static const char *in_names[MAX_IO], *out_names[MAX_IO];
static kiln_tensor *in_tensors[MAX_IO];
static size_t n_in, n_out;

/* Milliseconds on the monotonic clock. */
static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Print "error MSG" (with kiln's last error when st != KILN_OK) and exit 1. */
static void die(kiln_status st, const char *what) {
    if (st != KILN_OK)
        printf("error %s: %s: %s\n", what, kiln_status_name(st), kiln_last_error());
    else
        printf("error %s\n", what);
    fflush(stdout);
    exit(1);
}

/* Parse NAME:DTYPE:D0xD1x...:RAWFILE into input slot n_in. */
static void add_input(char *spec) {
    char *name = spec, *dt = strchr(name, ':'), *dims, *path;
    if (!dt || !(dims = strchr(dt + 1, ':')) || !(path = strchr(dims + 1, ':')))
        die(KILN_OK, "bad input spec (want NAME:DTYPE:DIMS:FILE)");
    *dt++ = 0, *dims++ = 0, *path++ = 0;
    kiln_dtype dtype = strcmp(dt, "float") == 0 ? KILN_DTYPE_FLOAT
                       : strcmp(dt, "int64") == 0 ? KILN_DTYPE_INT64 : KILN_DTYPE_UNDEFINED;
    if (dtype == KILN_DTYPE_UNDEFINED) die(KILN_OK, "input dtype must be float or int64");
    int64_t shape[KILN_MAX_RANK], count = 1;
    int rank = 0;
    for (char *p = dims; *p;) {
        if (rank == KILN_MAX_RANK) die(KILN_OK, "input rank too large");
        char *end;
        shape[rank] = strtoll(p, &end, 10);
        if (end == p || shape[rank] < 0) die(KILN_OK, "bad input dims");
        count *= shape[rank++];
        p = *end == 'x' ? end + 1 : end;
        if (*end && *end != 'x') die(KILN_OK, "bad input dims");
    }
    size_t bytes = (size_t)count * (kiln_dtype_bits(dtype) / 8);
    void *data = malloc(bytes ? bytes : 1);
    FILE *f = fopen(path, "rb");
    if (!data || !f || fread(data, 1, bytes, f) != bytes) die(KILN_OK, "cannot read input file");
    fclose(f);
    kiln_status st = kiln_tensor_create_from_data(dtype, shape, rank, data, bytes, &in_tensors[n_in]);
    if (st != KILN_OK) die(st, "kiln_tensor_create_from_data");
    in_names[n_in++] = name;
}

/* One run; outputs are returned in outs (caller destroys). */
static void run_once(kiln_session *s, kiln_tensor **outs) {
    for (size_t i = 0; i < n_out; i++) outs[i] = NULL;
    kiln_status st = kiln_session_run(s, in_names, (const kiln_tensor *const *)in_tensors, n_in,
                                      out_names, outs, n_out);
    if (st != KILN_OK) die(st, "kiln_session_run");
}

/* Write each output's bytes to DIR/out_K.bin and print its shape. */
static void dump(kiln_session *s, const char *dir) {
    kiln_tensor *outs[MAX_IO];
    run_once(s, outs);
    printf("ok");
    for (size_t i = 0; i < n_out; i++) {
        char path[4200];
        void *data;
        size_t bytes;
        int rank;
        const int64_t *shape;
        kiln_dtype dt;
        kiln_tensor_data(outs[i], &data, &bytes);
        kiln_tensor_shape(outs[i], &rank, &shape);
        kiln_tensor_dtype(outs[i], &dt);
        if (snprintf(path, sizeof path, "%.4000s/out_%zu.bin", dir, i) >= (int)sizeof path)
            die(KILN_OK, "dump: folder name too long");
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(data, 1, bytes, f) != bytes || fclose(f) != 0) die(KILN_OK, "cannot write output");
        printf(" %s:", kiln_dtype_name(dt));
        for (int d = 0; d < rank; d++) printf("%s%lld", d ? "x" : "", (long long)shape[d]);
        kiln_tensor_destroy(outs[i]);
    }
    printf("\n");
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--peak") == 0) {
        const char *isa = "?";
        double g = 0;
        kiln_status st = kiln_cpu_peak_gflops(NULL, atoi(argv[2]), &g);
        if (st != KILN_OK) die(st, "kiln_cpu_peak_gflops");
        kiln_cpu_get("isa", &isa);
        printf("peak %s %.3f\n", isa, g);
        return 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: kiln_time MODEL THREADS NAME:DTYPE:DIMS:RAWFILE...\n");
        return 2;
    }
    for (int i = 3; i < argc && n_in < MAX_IO; i++) add_input(argv[i]);
    double t0 = now_ms();
    kiln_model *m;
    kiln_status st = kiln_model_load(argv[1], &m);
    if (st != KILN_OK) die(st, "kiln_model_load");
    double t1 = now_ms();
    st = kiln_model_output_count(m, &n_out);
    if (st != KILN_OK || n_out > MAX_IO) die(st, "kiln_model_output_count");
    for (size_t i = 0; i < n_out; i++) {
        kiln_dtype dt;
        int rank;
        if ((st = kiln_model_output_info(m, i, &out_names[i], &dt, &rank)) != KILN_OK)
            die(st, "kiln_model_output_info");
    }
    kiln_session_options *o;
    if ((st = kiln_session_options_create(&o)) != KILN_OK) die(st, "kiln_session_options_create");
    if ((st = kiln_session_options_set_threads(o, atoi(argv[2]))) != KILN_OK)
        die(st, "kiln_session_options_set_threads");
    /* KILN_TIME_OPTS="key=value;key=value": more session options (e.g.
     * tactic_timing=1), for bench/ab.py's comparisons */
    const char *opts = getenv("KILN_TIME_OPTS");
    if (opts && *opts) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", opts);
        for (char *kv = strtok(buf, ";"); kv; kv = strtok(NULL, ";")) {
            char *eq = strchr(kv, '=');
            if (!eq) die(KILN_ERR_INVALID_ARGUMENT, "KILN_TIME_OPTS: expected key=value");
            *eq = 0;
            if ((st = kiln_session_options_set(o, kv, eq + 1)) != KILN_OK) die(st, "kiln_session_options_set");
        }
    }
    kiln_session *s;
    if ((st = kiln_session_create(m, o, &s)) != KILN_OK) die(st, "kiln_session_create");
    kiln_session_options_destroy(o);
    double t2 = now_ms();
    int ranks[MAX_IO];
    const int64_t *shapes[MAX_IO];
    for (size_t i = 0; i < n_in; i++)
        if ((st = kiln_tensor_shape(in_tensors[i], &ranks[i], &shapes[i])) != KILN_OK) die(st, "kiln_tensor_shape");
    uint64_t macs = 0;
    size_t uncounted = 0;
    if ((st = kiln_model_macs(m, in_names, ranks, shapes, n_in, &macs, &uncounted)) != KILN_OK)
        die(st, "kiln_model_macs");
    printf("ready %.3f %.3f %llu %zu\n", t1 - t0, t2 - t1, (unsigned long long)macs, uncounted);
    fflush(stdout);

    char line[4096];
    static double ms[100000];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = 0;
        if (strncmp(line, "run ", 4) == 0) {
            long n = atol(line + 4);
            if (n < 1 || n > 100000) die(KILN_OK, "run: N out of range");
            kiln_tensor *outs[MAX_IO];
            for (long k = 0; k < n; k++) {
                double a = now_ms();
                run_once(s, outs);
                ms[k] = now_ms() - a;
                for (size_t i = 0; i < n_out; i++) kiln_tensor_destroy(outs[i]);
            }
            printf("ok");
            for (long k = 0; k < n; k++) printf(" %.4f", ms[k]);
            printf("\n");
        } else if (strncmp(line, "dump ", 5) == 0) {
            dump(s, line + 5);
        } else if (strcmp(line, "quit") == 0) {
            break;
        } else {
            die(KILN_OK, "unknown command");
        }
        fflush(stdout);
    }
    kiln_session_destroy(s);
    kiln_model_destroy(m);
    for (size_t i = 0; i < n_in; i++) {
        void *data;
        size_t bytes;
        kiln_tensor_data(in_tensors[i], &data, &bytes);
        kiln_tensor_destroy(in_tensors[i]);
        free(data);
    }
    return 0;
}
