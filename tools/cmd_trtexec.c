/* kiln trtexec: TensorRT's trtexec command lines (TensorRT 8 and 10/11
 * spellings, --flag=value) run by kiln: build from --onnx (and save with
 * --saveEngine) or --loadEngine, then time inference on random inputs and
 * print trtexec's report sections. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "bench.h"
#include "cli.h"
#include "inputs.h"
#include "json.h"

static const kc_opt kc_trt_opts[] = {
    {"--onnx", KC_OPT_REQUIRED, "FILE", "ONNX model to build the engine from"},
    {"--saveEngine", KC_OPT_REQUIRED, "FILE", "save the built engine to FILE (a kiln engine file)"},
    {"--loadEngine", KC_OPT_REQUIRED, "FILE", "load an engine file instead of building one"},
    {"--minShapes", KC_OPT_REQUIRED, "SPEC", "build: min shapes of the profile, NAME:1x3x224x224[,NAME2:...]"},
    {"--optShapes", KC_OPT_REQUIRED, "SPEC", "build: opt shapes of the profile (tactics are timed at these)"},
    {"--maxShapes", KC_OPT_REQUIRED, "SPEC", "build: max shapes of the profile"},
    {"--shapes", KC_OPT_REQUIRED, "SPEC", "inference shapes (and the profile when building without min/opt/max)"},
    {"--workspace", KC_OPT_REQUIRED, "N", "workspace limit in MiB (TensorRT 8; = --memPoolSize=workspace:N)"},
    {"--memPoolSize", KC_OPT_REQUIRED, "workspace:N", "memory pool limits; N in MiB or with a B/K/M/G suffix"},
    {"--iterations", KC_OPT_REQUIRED, "N", "run at least N inferences (default 10)"},
    {"--duration", KC_OPT_REQUIRED, "S", "run for at least S seconds (default 3)"},
    {"--warmUp", KC_OPT_REQUIRED, "MS", "warm up for MS milliseconds before timing (default 200)"},
    {"--avgRuns", KC_OPT_REQUIRED, "N", "also report averages over N consecutive inferences (default 10)"},
    {"--threads", KC_OPT_OPTIONAL, "N", "streams run on their own threads (always so in kiln); =N: CPU threads"},
    {"--streams", KC_OPT_REQUIRED, "N", "run N execution contexts in parallel (TensorRT 8 spelling)"},
    {"--infStreams", KC_OPT_REQUIRED, "N", "same as --streams (TensorRT 10 spelling)"},
    {"--useCudaGraph", KC_OPT_NONE, NULL, "use CUDA graphs (the report says when a provider has none)"},
    {"--noCudaGraph", KC_OPT_NONE, NULL, "do not use CUDA graphs (TensorRT 11 default is on)"},
    {"--noDataTransfers", KC_OPT_NONE, NULL, "leave host-device copies out of the timing"},
    {"--includeDataTransfers", KC_OPT_NONE, NULL, "time host-device copies too (TensorRT 11)"},
    {"--separateProfileRun", KC_OPT_NONE, NULL, "profile layers in a run of its own, not in the timed one"},
    {"--dumpProfile", KC_OPT_NONE, NULL, "print per-layer times"},
    {"--exportTimes", KC_OPT_REQUIRED, "FILE", "write the timing of every inference as JSON"},
    {"--exportProfile", KC_OPT_REQUIRED, "FILE", "write per-layer times as JSON"},
    {"--exportOutput", KC_OPT_REQUIRED, "FILE", "write the outputs of the last inference as JSON"},
    {"--timingCacheFile", KC_OPT_REQUIRED, "FILE", "tactic timing cache: read before the build, written after"},
    {"--skipInference", KC_OPT_NONE, NULL, "build (and save) the engine, run no inference"},
    {"--buildOnly", KC_OPT_NONE, NULL, "same as --skipInference"},
    {"--verbose", KC_OPT_NONE, NULL, "print the build log and metric explanations"},
    {"--fp16", KC_OPT_NONE, NULL, "allow FP16 where a provider has FP16 kernels (else FP32, logged)"},
    {"--bf16", KC_OPT_NONE, NULL, "allow BF16 where a provider has BF16 kernels (else FP32, logged)"},
    {"--int8", KC_OPT_NONE, NULL, "allow INT8 (refused until kiln's calibration lands)"},
    {"--best", KC_OPT_NONE, NULL, "allow every precision kiln can build"},
    {"--calib", KC_OPT_REQUIRED, "FILE", "INT8 calibration cache (refused until kiln's calibration lands)"},
    {"--noTF32", KC_OPT_NONE, NULL, "disallow TF32 (kiln's default: FP32 means FP32)"},
    {"--tf32", KC_OPT_NONE, NULL, "allow TF32 tensor-core math for FP32 layers (TensorRT's default; off in kiln)"},
    {"--stronglyTyped", KC_OPT_NONE, NULL, "keep the model's types exactly"},
    {"--fp8", KC_OPT_NONE, NULL, "allow FP8 (refused: kiln has no FP8 kernels)"},
    {"--precisionConstraints", KC_OPT_REQUIRED, "none|prefer|obey",
     "how to treat --layerPrecisions (kiln has none to obey: accepted, nothing changes)"},
    {"--layerPrecisions", KC_OPT_REQUIRED, "SPEC", "per-layer precisions (refused: kiln picks them per provider)"},
    {"--layerOutputTypes", KC_OPT_REQUIRED, "SPEC", "per-layer output types (refused, as --layerPrecisions)"},
    {NULL, KC_OPT_NONE, NULL, NULL}};

void kc_trtexec_help(FILE *f) {
    fputs("usage: kiln trtexec (--onnx=MODEL [--saveEngine=FILE] | --loadEngine=FILE) [FLAGS]\n"
          "\n"
          "TensorRT's trtexec, run by kiln: the same flags (TensorRT 8 and 10/11\n"
          "spellings, --flag=value or --flag value) and the same report sections\n"
          "(Model, Build and Inference Options, Performance summary with Throughput,\n"
          "Latency, Enqueue Time, H2D Latency, GPU Compute Time, D2H Latency, Total\n"
          "Host Walltime and Total GPU Compute Time).  On the cpu provider the\n"
          "compute is host compute and H2D/D2H are 0.  Inputs are random.\n"
          "A flag whose feature kiln does not have yet is refused, never ignored.\n"
          "\n"
          "flags:\n",
          f);
    kc_opts_help(f, kc_trt_opts, true);
    fputs("  --help                         show this help\n"
          "\n"
          "examples:\n"
          "  kiln trtexec --onnx=resnet18.onnx --saveEngine=resnet18.engine --fp16 --workspace=1024\n"
          "  kiln trtexec --loadEngine=resnet18.engine --iterations=1000 --avgRuns=10\n"
          "\n"
          "exit status: 0 passed, 1 the model or engine could not be built, loaded or run\n"
          "(or a feature kiln does not have yet), 2 usage error\n",
          f);
}

/* Everything the command line asked for. */
typedef struct kc_trt {
    const char *onnx, *save, *load, *min, *opt, *max, *shapes, *calib, *timing_cache;
    const char *precision_constraints; /* TensorRT 8.4+ (--layerPrecisions itself is refused) */
    bool fp8;
    const char *export_times, *export_profile, *export_output;
    uint64_t workspace;
    long long iterations, avg_runs, streams, threads;
    double duration_s, warmup_ms;
    bool multithreading, cuda_graph, no_cuda_graph, no_transfers, include_transfers, separate_profile, dump_profile;
    bool skip_inference, verbose, best, no_tf32, tf32;
    unsigned precision;
} kc_trt;

/* One timed inference. */
typedef struct kc_trt_time {
    double start_ms, end_ms; /* from the start of timing */
    double h2d, comp, d2h;   /* device split of a GPU engine's run (ms; CUDA events) */
} kc_trt_time;

/* One stream: a context on its own thread. */
typedef struct kc_stream {
    kc_runner runner;
    kiln_tensor **outs;
    kc_trt_time *times;
    size_t n, cap;
    double warmup_ms;
    size_t warmup_runs;
    bool failed;
    char err[1024];
    struct kc_trt_run *run;
    bool dev;                      /* the engine reports device times */
    double last_h2d, last_comp, last_d2h;
} kc_stream;

/* A timed phase shared by the streams. */
typedef struct kc_trt_run {
    const kc_inputs *in;
    const char **in_names, **out_names;
    size_t n_outs;
    double warmup_ms, duration_s;
    bool no_warmup; /* not even one warm-up run (the profiling run) */
    bool no_transfers; /* GPU engines: time the compute alone after one full run */
    bool profiling;    /* per-layer times: counted from the end of the warm-up */
    long long iterations;
    double t0;            /* start of timing */
    atomic_llong done;    /* inferences finished, all streams */
    atomic_int stop;      /* set on a failure */
    pthread_barrier_t barrier;
} kc_trt_run;

/* Record t in s's list; false on OOM. */
static bool kc_stream_push(kc_stream *s, kc_trt_time t) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        kc_trt_time *nt = realloc(s->times, cap * sizeof *nt);
        if (!nt) return false;
        s->times = nt;
        s->cap = cap;
    }
    s->times[s->n++] = t;
    return true;
}

/* One inference of stream s; false (with s->err) on failure. */
static bool kc_stream_infer(kc_stream *s) {
    kc_trt_run *r = s->run;
    kiln_context *ctx = s->runner.context;
    if (r->no_transfers && s->dev && ctx) {
        double ms = 0;
        if (kiln_context_time_compute(ctx, 1, &ms) != KILN_OK) {
            snprintf(s->err, sizeof s->err, "%s", kiln_last_error());
            s->failed = true;
            atomic_store(&r->stop, 1);
            return false;
        }
        s->last_h2d = s->last_d2h = 0;
        s->last_comp = ms;
        return true;
    }
    if (kc_runner_run(&s->runner, r->in_names, (const kiln_tensor *const *)r->in->tensors, r->in->n, r->out_names,
                      s->outs, r->n_outs) != KILN_OK) {
        snprintf(s->err, sizeof s->err, "%s", kiln_last_error());
        s->failed = true;
        atomic_store(&r->stop, 1);
        return false;
    }
    if (ctx && kiln_context_device_times(ctx, &s->last_h2d, &s->last_comp, &s->last_d2h) == KILN_OK) s->dev = true;
    return true;
}

/* Thread body: warm up, wait for every stream, then time inferences until
 * both the duration and the iteration count are reached. */
static void *kc_stream_main(void *arg) {
    kc_stream *s = arg;
    kc_trt_run *r = s->run;
    double w0 = kc_now();
    if (!r->no_warmup) do {
        if (atomic_load(&r->stop) || !kc_stream_infer(s)) break;
        s->warmup_runs++;
        s->warmup_ms = (kc_now() - w0) * 1e3;
    } while (s->warmup_ms < r->warmup_ms);
    /* --dumpProfile/--exportProfile count the timed inferences only (turning
     * profiling on again clears the warm-up's layer times) */
    if (r->profiling && s->runner.context && kiln_context_set_profiling(s->runner.context, 1) != KILN_OK) {
        snprintf(s->err, sizeof s->err, "profiling: %s", kiln_last_error());
        s->failed = true;
        atomic_store(&r->stop, 1);
    }
    int b = pthread_barrier_wait(&r->barrier);
    if (b == PTHREAD_BARRIER_SERIAL_THREAD) r->t0 = kc_now();
    pthread_barrier_wait(&r->barrier);
    for (;;) {
        if (atomic_load(&r->stop)) break;
        double now = kc_now();
        long long done = atomic_load(&r->done);
        if (done >= r->iterations && now - r->t0 >= r->duration_s && done > 0) break;
        double a = kc_now();
        if (!kc_stream_infer(s)) break;
        double e = kc_now();
        atomic_fetch_add(&r->done, 1);
        if (!kc_stream_push(s, (kc_trt_time){(a - r->t0) * 1e3, (e - r->t0) * 1e3, s->last_h2d, s->last_comp,
                                             s->last_d2h})) {
            snprintf(s->err, sizeof s->err, "out of memory after %zu inferences", s->n);
            s->failed = true;
            atomic_store(&r->stop, 1);
            break;
        }
    }
    return NULL;
}

/* Run a timed phase on every stream; false with the first failure in err. */
static bool kc_trt_phase(kc_stream *st, size_t n, kc_trt_run *r, double *wall_s, char *err, size_t errsize) {
    pthread_t th[64];
    atomic_store(&r->done, 0);
    atomic_store(&r->stop, 0);
    pthread_barrier_init(&r->barrier, NULL, (unsigned)n);
    size_t started = 0;
    for (size_t i = 0; i < n; i++) {
        st[i].run = r;
        st[i].n = 0;
        st[i].warmup_runs = 0;
        st[i].warmup_ms = 0;
    }
    for (; started < n; started++)
        if (pthread_create(&th[started], NULL, kc_stream_main, &st[started]) != 0) break;
    if (started < n) {
        /* Could not start every thread: the barrier would never open.  Run what is left here. */
        snprintf(err, errsize, "cannot start thread %zu: %s", started, strerror(errno));
        atomic_store(&r->stop, 1);
        for (size_t i = started; i < n; i++) kc_stream_main(&st[i]);
    }
    for (size_t i = 0; i < started; i++) pthread_join(th[i], NULL);
    *wall_s = kc_now() - r->t0;
    pthread_barrier_destroy(&r->barrier);
    if (started < n) return false;
    for (size_t i = 0; i < n; i++)
        if (st[i].failed) {
            snprintf(err, errsize, "%s", st[i].err);
            return false;
        }
    return true;
}

/* Print "NAME: min = ..., percentile(99%) = ... ms" for values v (ms). */
static void kc_trt_metric(const char *name, const double *v, size_t n) {
    kc_latency s;
    kc_latency_stats(v, n, &s);
    printf("[I] %s: min = %.5g ms, max = %.5g ms, mean = %.5g ms, median = %.5g ms, percentile(90%%) = %.5g ms, "
           "percentile(95%%) = %.5g ms, percentile(99%%) = %.5g ms\n",
           name, s.min, s.max, s.mean, s.median, s.p90, s.p95, s.p99);
}

/* Parse --memPoolSize: "workspace:1024,..." (MiB by default). */
static bool kc_trt_pools(const char *spec, uint64_t *workspace, int *code) {
    for (const char *p = spec; *p;) {
        size_t len = strcspn(p, ",");
        char item[128];
        snprintf(item, sizeof item, "%.*s", (int)(len < 127 ? len : 127), p);
        char *colon = strchr(item, ':');
        if (!colon) {
            *code = kc_fail(KC_EXIT_USAGE, "trtexec", "--memPoolSize: '%s' is not POOL:SIZE (e.g. workspace:1024)",
                            item);
            return false;
        }
        *colon = 0;
        if (strcmp(item, "workspace") != 0) {
            *code = kc_fail(KC_EXIT_USAGE, "trtexec", "--memPoolSize: pool '%s' does not exist in kiln (only "
                            "'workspace'; the DLA and tactic shared-memory pools are TensorRT's)", item);
            return false;
        }
        if (!kc_parse_size(colon + 1, 1ull << 20, workspace)) {
            *code = kc_fail(KC_EXIT_USAGE, "trtexec", "--memPoolSize: '%s' is not a size (MiB, or with a B/K/M/G "
                            "suffix)", colon + 1);
            return false;
        }
        p += len + (p[len] ? 1 : 0);
    }
    return true;
}

/* Parse argv into t; false with *code set (and a line printed). */
static bool kc_trt_parse(int argc, char **argv, kc_trt *t, int *code) {
    const char *cmd = "trtexec";
    kc_args a;
    const kc_opt *o;
    const char *v;
    char word[256];
    kc_arg_kind kind;
    const char *iters_s = NULL, *dur_s = NULL, *warm_s = NULL, *avg_s = NULL, *streams_s = NULL, *ws_s = NULL,
               *pool_s = NULL, *threads_s = NULL;
    kc_args_init(&a, argc, argv, kc_trt_opts);
    while ((kind = kc_args_next(&a, &o, &v, word, sizeof word)) != KC_ARG_END) {
        switch (kind) {
        case KC_ARG_HELP:
            kc_trtexec_help(stdout);
            *code = kc_finish_stdout(KC_EXIT_OK);
            return false;
        case KC_ARG_UNKNOWN: {
            const char *hint = kc_opts_suggest(kc_trt_opts, word);
            if (hint) *code = kc_fail(KC_EXIT_USAGE, cmd, "unknown option '%s'; did you mean '%s'?", word, hint);
            else *code = kc_fail(KC_EXIT_USAGE, cmd, "unknown option '%s' (see 'kiln trtexec --help')", word);
            return false;
        }
        case KC_ARG_MISSING_VALUE:
            *code = kc_fail(KC_EXIT_USAGE, cmd, "option '%s' needs a value: %s=%s", o->name, o->name, o->arg);
            return false;
        case KC_ARG_UNEXPECTED_VALUE:
            *code = kc_fail(KC_EXIT_USAGE, cmd, "option '%s' takes no value", o->name);
            return false;
        case KC_ARG_POSITIONAL:
            *code = kc_fail(KC_EXIT_USAGE, cmd, "unexpected argument '%s' (trtexec takes only options; the model is "
                            "--onnx=FILE)", v);
            return false;
        default:
            break;
        }
        const char *n = o->name;
        if (!strcmp(n, "--onnx")) t->onnx = v;
        else if (!strcmp(n, "--saveEngine")) t->save = v;
        else if (!strcmp(n, "--loadEngine")) t->load = v;
        else if (!strcmp(n, "--minShapes")) t->min = v;
        else if (!strcmp(n, "--optShapes")) t->opt = v;
        else if (!strcmp(n, "--maxShapes")) t->max = v;
        else if (!strcmp(n, "--shapes")) t->shapes = v;
        else if (!strcmp(n, "--workspace")) ws_s = v;
        else if (!strcmp(n, "--memPoolSize")) pool_s = v;
        else if (!strcmp(n, "--iterations")) iters_s = v;
        else if (!strcmp(n, "--duration")) dur_s = v;
        else if (!strcmp(n, "--warmUp")) warm_s = v;
        else if (!strcmp(n, "--avgRuns")) avg_s = v;
        else if (!strcmp(n, "--threads")) {
            t->multithreading = true;
            if (v) threads_s = v;
        } else if (!strcmp(n, "--streams") || !strcmp(n, "--infStreams")) streams_s = v;
        else if (!strcmp(n, "--useCudaGraph")) t->cuda_graph = true;
        else if (!strcmp(n, "--noCudaGraph")) t->no_cuda_graph = true;
        else if (!strcmp(n, "--noDataTransfers")) t->no_transfers = true;
        else if (!strcmp(n, "--includeDataTransfers")) t->include_transfers = true;
        else if (!strcmp(n, "--separateProfileRun")) t->separate_profile = true;
        else if (!strcmp(n, "--dumpProfile")) t->dump_profile = true;
        else if (!strcmp(n, "--exportTimes")) t->export_times = v;
        else if (!strcmp(n, "--exportProfile")) t->export_profile = v;
        else if (!strcmp(n, "--exportOutput")) t->export_output = v;
        else if (!strcmp(n, "--timingCacheFile")) t->timing_cache = v;
        else if (!strcmp(n, "--skipInference") || !strcmp(n, "--buildOnly")) t->skip_inference = true;
        else if (!strcmp(n, "--verbose")) t->verbose = true;
        else if (!strcmp(n, "--fp16")) t->precision |= KILN_PRECISION_FP16;
        else if (!strcmp(n, "--bf16")) t->precision |= KILN_PRECISION_BF16;
        else if (!strcmp(n, "--int8")) t->precision |= KILN_PRECISION_INT8;
        else if (!strcmp(n, "--best")) t->best = true;
        else if (!strcmp(n, "--calib")) t->calib = v;
        else if (!strcmp(n, "--noTF32")) t->no_tf32 = true;
        else if (!strcmp(n, "--tf32")) t->tf32 = true;
        else if (!strcmp(n, "--stronglyTyped")) t->precision |= KILN_PRECISION_STRONGLY_TYPED;
        else if (!strcmp(n, "--fp8")) t->fp8 = true;
        else if (!strcmp(n, "--precisionConstraints")) t->precision_constraints = v;
        else if (!strcmp(n, "--layerPrecisions") || !strcmp(n, "--layerOutputTypes")) {
            *code = kc_fail(KC_EXIT_MODEL, cmd, "%s: per-layer precisions are not supported: kiln picks each layer's "
                            "precision per provider (LayerNorm, Softmax, reductions and outputs stay FP32 where that "
                            "was measured to matter); drop %s, or keep the model's types with --stronglyTyped", n, n);
            return false;
        }
    }
    if (t->precision_constraints && strcmp(t->precision_constraints, "none") != 0 &&
        strcmp(t->precision_constraints, "prefer") != 0 && strcmp(t->precision_constraints, "obey") != 0) {
        *code = kc_fail(KC_EXIT_USAGE, cmd, "--precisionConstraints: '%s' is not none, prefer or obey",
                        t->precision_constraints);
        return false;
    }
    if (t->fp8) {
        *code = kc_fail(KC_EXIT_MODEL, cmd, "--fp8: FP8 is not supported: kiln has no FP8 kernels; build in FP16 "
                        "(--fp16) or FP32");
        return false;
    }
    if ((iters_s && !kc_parse_int(cmd, "--iterations", iters_s, 1, 1000000000, &t->iterations, code)) ||
        (avg_s && !kc_parse_int(cmd, "--avgRuns", avg_s, 1, 1000000, &t->avg_runs, code)) ||
        (streams_s && !kc_parse_int(cmd, "--streams", streams_s, 1, 64, &t->streams, code)) ||
        (threads_s && !kc_parse_int(cmd, "--threads", threads_s, 0, 4096, &t->threads, code)) ||
        (dur_s && !kc_parse_double(cmd, "--duration", dur_s, 0, &t->duration_s, code)) ||
        (warm_s && !kc_parse_double(cmd, "--warmUp", warm_s, 0, &t->warmup_ms, code)))
        return false;
    if (ws_s && !kc_parse_size(ws_s, 1ull << 20, &t->workspace)) {
        *code = kc_fail(KC_EXIT_USAGE, cmd, "--workspace: '%s' is not a size in MiB", ws_s);
        return false;
    }
    if (pool_s && !kc_trt_pools(pool_s, &t->workspace, code)) return false;
    if (!t->onnx && !t->load) {
        *code = kc_fail(KC_EXIT_USAGE, cmd, "give a model with --onnx=FILE or an engine with --loadEngine=FILE");
        return false;
    }
    if (t->onnx && t->load) {
        *code = kc_fail(KC_EXIT_USAGE, cmd, "--onnx and --loadEngine exclude each other (build, or load)");
        return false;
    }
    if (t->load && t->save) {
        *code = kc_fail(KC_EXIT_USAGE, cmd, "--saveEngine needs --onnx: a loaded engine is saved already");
        return false;
    }
    if (t->cuda_graph && t->no_cuda_graph) {
        *code = kc_fail(KC_EXIT_USAGE, cmd, "--useCudaGraph and --noCudaGraph exclude each other");
        return false;
    }
    if (t->no_transfers && t->include_transfers) {
        *code = kc_fail(KC_EXIT_USAGE, cmd, "--noDataTransfers and --includeDataTransfers exclude each other");
        return false;
    }
    if ((t->min || t->opt || t->max) && !(t->min && t->opt && t->max)) {
        *code = kc_fail(KC_EXIT_USAGE, cmd, "give --minShapes, --optShapes and --maxShapes together");
        return false;
    }
    if (t->load && (t->min || t->opt || t->max)) {
        *code = kc_fail(KC_EXIT_USAGE, cmd, "--minShapes/--optShapes/--maxShapes are build options: a loaded engine "
                        "has its profiles already (use --shapes for the inference shapes)");
        return false;
    }
    if (t->load && t->timing_cache) {
        *code = kc_fail(KC_EXIT_USAGE, cmd, "--timingCacheFile is a build option: nothing is built with --loadEngine");
        return false;
    }
    return true;
}

/* Write --exportTimes: one object per inference, trtexec's keys. */
static bool kc_trt_export_times(const char *path, const kc_stream *st, size_t n_st, int *code) {
    FILE *f = fopen(path, "w");
    if (!f) {
        *code = kc_fail(KC_EXIT_MODEL, "trtexec", "--exportTimes: cannot create '%s': %s", path, strerror(errno));
        return false;
    }
    kj_writer w;
    kj_init(&w, f);
    kj_array_begin(&w);
    for (size_t s = 0; s < n_st; s++)
        for (size_t i = 0; i < st[s].n; i++) {
            const kc_trt_time *x = &st[s].times[i];
            double lat = x->end_ms - x->start_ms;
            /* a GPU engine's copies and compute from its CUDA events (durations:
             * placed back to back from the query's start); on the cpu provider
             * the whole run is compute and there are no copies */
            double h2d = st[s].dev ? x->h2d : 0, comp = st[s].dev ? x->comp : lat, d2h = st[s].dev ? x->d2h : 0;
            static const char *const keys[] = {"startEnqMs", "endEnqMs", "startH2dMs", "endH2dMs",
                                               "startComputeMs", "endComputeMs", "startD2hMs", "endD2hMs"};
            double vals[] = {x->start_ms, x->end_ms, x->start_ms, x->start_ms + h2d,
                             x->start_ms + h2d, x->start_ms + h2d + comp, x->start_ms + h2d + comp,
                             x->start_ms + h2d + comp + d2h};
            kj_object_begin(&w);
            for (size_t k = 0; k < 8; k++) {
                kj_key(&w, keys[k]);
                kj_double(&w, vals[k]);
            }
            kj_key(&w, "h2dMs");
            kj_double(&w, h2d);
            kj_key(&w, "computeMs");
            kj_double(&w, comp);
            kj_key(&w, "d2hMs");
            kj_double(&w, d2h);
            kj_key(&w, "latencyMs");
            kj_double(&w, lat);
            kj_key(&w, "enqMs");
            kj_double(&w, lat);
            kj_key(&w, "stream");
            kj_uint(&w, s);
            kj_object_end(&w);
        }
    kj_array_end(&w);
    kj_finish(&w);
    if (ferror(f) | (fclose(f) != 0)) {
        *code = kc_fail(KC_EXIT_MODEL, "trtexec", "--exportTimes: cannot write '%s': %s", path, strerror(errno));
        return false;
    }
    return true;
}

/* Write --exportOutput: [{name, dimensions "1x1000", values}] of the last run. */
static bool kc_trt_export_output(const char *path, const kc_io *outs, kiln_tensor **res, size_t n, int *code) {
    FILE *f = fopen(path, "w");
    if (!f) {
        *code = kc_fail(KC_EXIT_MODEL, "trtexec", "--exportOutput: cannot create '%s': %s", path, strerror(errno));
        return false;
    }
    kj_writer w;
    kj_init(&w, f);
    kj_array_begin(&w);
    for (size_t i = 0; i < n; i++) {
        int rank = 0;
        const int64_t *shape = NULL;
        kiln_dtype dt = KILN_DTYPE_UNDEFINED;
        void *data = NULL;
        size_t bytes = 0;
        int64_t count = 0;
        kiln_tensor_shape(res[i], &rank, &shape);
        kiln_tensor_dtype(res[i], &dt);
        kiln_tensor_data(res[i], &data, &bytes);
        kiln_tensor_element_count(res[i], &count);
        char dims[512] = "";
        size_t pos = 0;
        for (int a = 0; a < rank && pos < sizeof dims; a++)
            pos += (size_t)snprintf(dims + pos, sizeof dims - pos, "%s%lld", a ? "x" : "", (long long)shape[a]);
        kj_object_begin(&w);
        kj_key(&w, "name");
        kj_string(&w, outs[i].name);
        kj_key(&w, "dimensions");
        kj_string(&w, dims);
        kj_key(&w, "type");
        kj_string(&w, kiln_dtype_name(dt));
        kj_key(&w, "values");
        kj_array_begin(&w);
        if (kc_dtype_numeric(dt))
            for (int64_t k = 0; k < count; k++) kj_double(&w, kc_elem_get(data, dt, (size_t)k));
        kj_array_end(&w);
        kj_object_end(&w);
    }
    kj_array_end(&w);
    kj_finish(&w);
    if (ferror(f) | (fclose(f) != 0)) {
        *code = kc_fail(KC_EXIT_MODEL, "trtexec", "--exportOutput: cannot write '%s': %s", path, strerror(errno));
        return false;
    }
    return true;
}

int kc_cmd_trtexec(int argc, char **argv) {
    const char *cmd = "trtexec";
    kc_trt t = {.iterations = 10, .avg_runs = 10, .streams = 1, .duration_s = 3, .warmup_ms = 200};
    int code = KC_EXIT_OK;
    if (!kc_trt_parse(argc, argv, &t, &code)) return code;

    kc_loaded l;
    kiln_build_options *bo = NULL;
    kiln_engine *built = NULL;
    const kiln_engine *engine = NULL;
    kc_stream st[64];
    size_t n_st = 0;
    kc_inputs in = {.image_input = -1};
    kc_io *outs = NULL;
    size_t n_outs = 0;
    const char **in_names = NULL, **out_names = NULL;
    double *lat = NULL;
    kc_layer_time *lt = NULL;
    char err[4096], buf[1024], b2[64];
    memset(st, 0, sizeof st);
    unsigned precision = t.precision | (t.tf32 && !t.no_tf32 ? KILN_PRECISION_TF32 : 0);
    if (t.best) precision |= KILN_PRECISION_FP16;
    if (t.no_cuda_graph) setenv("KILN_CUDA_GRAPHS", "0", 1); /* read when the engine opens */
    kc_build_log log = {.cmd = cmd, .verbose = t.verbose, .out = stdout, .bar = false,
                        .prefix = {"[E] ", "[W] ", "[I] ", "[V] "}};
    const char *src = t.onnx ? t.onnx : t.load;
    if (!kc_load_model_or_engine(cmd, src, &l, &code)) goto done;
    if (t.onnx && l.engine) {
        code = kc_fail(KC_EXIT_USAGE, cmd, "--onnx: '%s' is a kiln engine file; load it with --loadEngine=%s", src, src);
        goto done;
    }
    if (t.load && !l.engine) {
        code = kc_fail(KC_EXIT_USAGE, cmd, "--loadEngine: '%s' is an ONNX model, not an engine; build it with "
                       "--onnx=%s", src, src);
        goto done;
    }
    const char *profile_min = t.min, *profile_opt = t.opt, *profile_max = t.max;
    if (t.onnx && !t.min && t.shapes) profile_min = profile_opt = profile_max = t.shapes;
    if (t.onnx) {
        kc_build_cfg cfg = {.threads = t.threads, .precision = precision, .best = t.best, .workspace = t.workspace,
                            .timing_cache = t.timing_cache, .log = kc_build_log_fn, .log_user = &log,
                            .log_level = KILN_LOG_DEBUG,
                            .profile_flag = {t.min ? "--minShapes" : "--shapes", t.min ? "--optShapes" : "--shapes",
                                             t.min ? "--maxShapes" : "--shapes"}};
        if (profile_min) {
            cfg.profiles[0] = (kc_profile_spec){profile_min, profile_opt, profile_max};
            cfg.n_profiles = 1;
        }
        if (!kc_build_options_make(cmd, &cfg, l.model, &bo, &code)) goto done;
    }
    if (t.calib) {
        code = kc_fail(KC_EXIT_MODEL, cmd, "--calib: INT8 calibration is not implemented in kiln yet (there is no "
                       "calibrator); build without --int8 and --calib");
        goto done;
    }
    if (t.streams > 1 && !t.multithreading && t.verbose)
        printf("[V] kiln runs every stream on its own thread (as trtexec --threads)\n");

    /* ---- header and options ---- */
    printf("&&&& RUNNING kiln.trtexec [kiln v%s] # kiln trtexec", kiln_version());
    for (int i = 1; i < argc; i++) printf(" %s", kc_fmt_name(argv[i], strlen(argv[i]), buf, sizeof buf));
    printf("\n");
    printf("[I] === Model Options ===\n");
    if (t.onnx) {
        printf("[I] Format: ONNX\n[I] Model: %s\n", kc_fmt_name(t.onnx, strlen(t.onnx), buf, sizeof buf));
    } else {
        printf("[I] Format: *\n[I] Model: (engine) %s\n", kc_fmt_name(t.load, strlen(t.load), buf, sizeof buf));
    }
    printf("[I] Output:\n");
    printf("[I] === Build Options ===\n");
    if (t.onnx) {
        printf("[I] Memory Pools: workspace: %s\n",
               t.workspace ? (snprintf(b2, sizeof b2, "%.6g MiB", (double)t.workspace / (1 << 20)), b2) : "default");
        printf("[I] Precision: %s\n", kc_fmt_precision(precision | (t.best ? KILN_PRECISION_FP16 | KILN_PRECISION_BF16 : 0),
                                                      b2, sizeof b2));
        if (t.precision_constraints)
            printf("[I] Precision constraints: %s (no --layerPrecisions: nothing to %s)\n", t.precision_constraints,
                   strcmp(t.precision_constraints, "none") ? t.precision_constraints : "constrain");
        printf("[I] Build threads: %s\n", t.threads ? (snprintf(buf, sizeof buf, "%lld", t.threads), buf) : "one per core");
        printf("[I] Timing cache: %s\n", t.timing_cache ? t.timing_cache : "none");
        if (profile_min)
            printf("[I] Input build shapes: min %s, opt %s, max %s\n", profile_min, profile_opt, profile_max);
        else
            printf("[I] Input build shapes: model\n");
        printf("[I] Save engine: %s\n", t.save ? t.save : "");
    } else {
        printf("[I] Load engine: %s\n", kc_fmt_name(t.load, strlen(t.load), buf, sizeof buf));
        if (precision & ~(unsigned)KILN_PRECISION_TF32 || t.best || t.no_tf32)
            printf("[W] Precision flags are build options: the loaded engine keeps its precision (%s)\n",
                   kc_engine_str(l.engine, "precision", "?"));
        if (t.workspace)
            printf("[W] --workspace/--memPoolSize are build options: the loaded engine keeps the limit it was built "
                   "with\n");
        if (t.threads)
            printf("[W] --threads=%lld is a build option: the loaded engine runs with the thread count it was built "
                   "with (%s; 0 = one per core)\n", t.threads, kc_engine_str(l.engine, "threads", "?"));
    }

    /* ---- build or load ---- */
    if (t.onnx) {
        double t0 = kc_now();
        kiln_status s = kiln_build(l.model, bo, &built);
        double ms = (kc_now() - t0) * 1e3;
        kc_build_log_done(&log);
        if (s != KILN_OK) {
            code = kc_fail_kiln(KC_EXIT_MODEL, cmd, t.onnx);
            goto failed;
        }
        engine = built;
        printf("[I] Engine built in %.5g sec.\n", ms / 1e3);
        printf("[I] Precision of the engine: %s\n", kc_engine_str(engine, "precision", "?"));
        if (log.fp32_note[0] && !log.fp32_note_shown) printf("[I] %s\n", log.fp32_note);
        if (t.save) {
            t0 = kc_now();
            if (kiln_engine_save(engine, t.save) != KILN_OK) {
                code = kc_fail(KC_EXIT_MODEL, cmd, "--saveEngine: %s", kiln_last_error());
                goto failed;
            }
            struct stat sb;
            printf("[I] Engine saved to %s (%s) in %.4g ms\n", kc_fmt_name(t.save, strlen(t.save), buf, sizeof buf),
                   kc_fmt_bytes(stat(t.save, &sb) == 0 ? (uint64_t)sb.st_size : 0, b2, sizeof b2),
                   (kc_now() - t0) * 1e3);
        }
    } else {
        engine = l.engine;
        printf("[I] Engine loaded in %.5g sec.\n", l.load_ms / 1e3);
    }
    if (t.skip_inference) {
        printf("[I] Skipped inference phase since --%s is added.\n", "skipInference/--buildOnly");
        goto passed;
    }

    /* ---- inference ---- */
    /* Inference shapes: --shapes, else the opt shapes of the profile (trtexec's default). */
    char opt_spec[2048];
    const char *infer_shapes = t.shapes ? t.shapes : profile_opt;
    if (!infer_shapes && kc_engine_opt_spec(engine, 0, opt_spec, sizeof opt_spec)) infer_shapes = opt_spec;
    kc_input_opts io = {.shape_flag = "--shapes", .shape = infer_shapes, .random = true};
    if (!kc_inputs_prepare(cmd, l.engine ? l.io_model : l.model, &io, &in, &code)) goto failed;
    if (!kc_engine_io(engine, true, &outs, &n_outs)) {
        code = kc_fail(KC_EXIT_MODEL, cmd, "cannot read the engine's outputs: %s", kiln_last_error());
        goto failed;
    }
    in_names = calloc(in.n + 1, sizeof *in_names);
    out_names = calloc(n_outs + 1, sizeof *out_names);
    if (!in_names || !out_names) {
        code = kc_fail(KC_EXIT_MODEL, cmd, "out of memory");
        goto failed;
    }
    for (size_t i = 0; i < in.n; i++) in_names[i] = in.io[i].name;
    for (size_t i = 0; i < n_outs; i++) out_names[i] = outs[i].name;
    for (n_st = 0; n_st < (size_t)t.streams; n_st++) {
        kc_stream *s = &st[n_st];
        if (kiln_context_create(engine, &s->runner.context) != KILN_OK ||
            !(s->outs = calloc(n_outs + 1, sizeof *s->outs))) {
            code = kc_fail(KC_EXIT_MODEL, cmd, "cannot create execution context %zu: %s", n_st, kiln_last_error());
            n_st++;
            goto failed;
        }
        s->runner.engine = engine;
    }
    bool profiling = t.dump_profile || t.export_profile;
    const char *prov = kc_engine_str(engine, "providers", "cpu");
    bool host_only = strstr(prov, "cuda") == NULL;
    printf("[I] === Inference Options ===\n");
    printf("[I] Batch: Explicit\n");
    for (size_t i = 0; i < in.n; i++) {
        int rank;
        const int64_t *shape;
        kiln_tensor_shape(in.tensors[i], &rank, &shape);
        char dims[256] = "";
        size_t pos = 0;
        for (int a = 0; a < rank && pos < sizeof dims; a++)
            pos += (size_t)snprintf(dims + pos, sizeof dims - pos, "%s%lld", a ? "x" : "", (long long)shape[a]);
        printf("[I] Input inference shape: %s=%s\n", in.io[i].name, dims);
    }
    printf("[I] Iterations: %lld\n", t.iterations);
    printf("[I] Duration: %.6gs (+ %.6gms warm up)\n", t.duration_s, t.warmup_ms);
    printf("[I] Inference Streams: %lld\n", t.streams);
    printf("[I] Multithreading: %s\n", t.streams > 1 ? "Enabled (one thread per stream)" : t.multithreading ? "Enabled" : "Disabled");
    /* GPU engines replay CUDA graphs unless --noCudaGraph (KILN_CUDA_GRAPHS=0), as TensorRT 11 does */
    const char *graphs_env = getenv("KILN_CUDA_GRAPHS");
    bool graphs_off = t.no_cuda_graph || (graphs_env && strcmp(graphs_env, "0") == 0);
    printf("[I] CUDA Graph: %s\n", host_only ? (t.cuda_graph ? "requested; not applicable (the cpu provider runs no "
                                                               "CUDA graph)" : "Disabled (the cpu provider runs no CUDA graph)")
                                   : graphs_off ? "Disabled" : t.cuda_graph ? "Enabled" : "Enabled (the default)");
    printf("[I] Data transfers: %s\n", t.no_transfers ? "Disabled" : host_only ? "Enabled (none on the cpu provider: "
                                                                               "inputs stay in host memory)" : "Enabled");
    printf("[I] Separate profiling: %s\n", t.separate_profile ? "Enabled" : "Disabled");
    printf("[I] Inputs: random\n");
    printf("[I] === Reporting Options ===\n");
    printf("[I] Verbose: %s\n", t.verbose ? "Enabled" : "Disabled");
    printf("[I] Averages: %lld inferences\n", t.avg_runs);
    printf("[I] Percentiles: 90,95,99\n");
    printf("[I] Profile: %s\n", profiling ? "Enabled" : "Disabled");
    printf("[I] Export timing to JSON file: %s\n", t.export_times ? t.export_times : "");
    printf("[I] Export output to JSON file: %s\n", t.export_output ? t.export_output : "");
    printf("[I] Export profile to JSON file: %s\n", t.export_profile ? t.export_profile : "");
    printf("[I] === Device Information ===\n");
    printf("[I] Providers: %s\n", prov);
    printf("[I] CPU: %s (%d cores online)\n", kc_cpu_model(buf, sizeof buf), kc_cpu_cores());
    fflush(stdout);

    kc_trt_run run = {.in = &in, .in_names = in_names, .out_names = out_names, .n_outs = n_outs,
                      .warmup_ms = t.warmup_ms, .duration_s = t.duration_s, .iterations = t.iterations,
                      .no_transfers = t.no_transfers, .profiling = profiling && !t.separate_profile};
    if (profiling && !t.separate_profile)
        for (size_t i = 0; i < n_st; i++)
            if (kiln_context_set_profiling(st[i].runner.context, 1) != KILN_OK) {
                code = kc_fail(KC_EXIT_MODEL, cmd, "profiling: %s", kiln_last_error());
                goto failed;
            }
    printf("[I] Starting inference\n");
    fflush(stdout);
    double wall_s = 0;
    if (!kc_trt_phase(st, n_st, &run, &wall_s, err, sizeof err)) {
        code = kc_fail(KC_EXIT_MODEL, cmd, "inference failed: %s", err);
        goto failed;
    }
    size_t total = 0;
    for (size_t i = 0; i < n_st; i++) total += st[i].n;
    lat = malloc((total + 1) * sizeof *lat);
    if (!lat) {
        code = kc_fail(KC_EXIT_MODEL, cmd, "out of memory");
        goto failed;
    }
    size_t k = 0;
    double compute_total = 0;
    for (size_t i = 0; i < n_st; i++)
        for (size_t j = 0; j < st[i].n; j++) {
            lat[k] = st[i].times[j].end_ms - st[i].times[j].start_ms;
            compute_total += lat[k++];
        }
    printf("[I] Warmup completed %zu queries over %.6g ms\n", st[0].warmup_runs, st[0].warmup_ms);
    printf("[I] Timing trace has %zu queries over %.6g s\n", total, wall_s);
    size_t host_layers = 0;
    if (kiln_context_device_info(st[0].runner.context, NULL, &host_layers, NULL) == KILN_OK && host_layers)
        printf("[W] %zu layer%s of the GPU plan ran on the host CPU (fallbacks; kiln build --verbose says why)\n",
               host_layers, host_layers == 1 ? "" : "s");
    printf("[I] Trace averages of %lld runs:\n", t.avg_runs);
    /* trtexec's "Average on N runs" lines, over stream 0's consecutive inferences. */
    size_t groups = st[0].n / (size_t)t.avg_runs;
    for (size_t g = 0; g < groups && (t.verbose || g < 10); g++) {
        double sum = 0, gpu = 0, host = 0;
        for (size_t j = 0; j < (size_t)t.avg_runs; j++) {
            const kc_trt_time *x = &st[0].times[g * (size_t)t.avg_runs + j];
            sum += x->end_ms - x->start_ms;
            /* trtexec: GPU latency the compute, host latency H2D + compute + D2H */
            gpu += st[0].dev ? x->comp : x->end_ms - x->start_ms;
            host += st[0].dev ? x->h2d + x->comp + x->d2h : x->end_ms - x->start_ms;
        }
        double n_avg = (double)t.avg_runs;
        printf("[I] Average on %lld runs - GPU latency: %.5g ms - Host latency: %.5g ms (enqueue %.5g ms)\n",
               t.avg_runs, gpu / n_avg, host / n_avg, sum / n_avg);
    }
    if (groups > 10 && !t.verbose) printf("[I] (%zu more averages with --verbose)\n", groups - 10);
    double *zeros = calloc(total + 1, sizeof *zeros);
    if (!zeros) {
        code = kc_fail(KC_EXIT_MODEL, cmd, "out of memory");
        goto failed;
    }
    kc_latency ls;
    kc_latency_stats(lat, total, &ls);
    printf("[I] \n[I] === Performance summary ===\n");
    printf("[I] Throughput: %.6g qps\n", wall_s > 0 ? (double)total / wall_s : 0);
    kc_trt_metric("Latency", lat, total);
    kc_trt_metric("Enqueue Time", lat, total);
    if (st[0].dev) {
        /* GPU engine: trtexec's split from CUDA events around each phase. */
        double *h2d = calloc(total + 1, sizeof *h2d), *comp = calloc(total + 1, sizeof *comp),
               *d2h = calloc(total + 1, sizeof *d2h);
        if (!h2d || !comp || !d2h) {
            free(h2d), free(comp), free(d2h), free(zeros);
            code = kc_fail(KC_EXIT_MODEL, cmd, "out of memory");
            goto failed;
        }
        size_t q = 0;
        compute_total = 0;
        for (size_t i = 0; i < n_st; i++)
            for (size_t j = 0; j < st[i].n; j++, q++) {
                h2d[q] = st[i].times[j].h2d;
                comp[q] = st[i].times[j].comp;
                d2h[q] = st[i].times[j].d2h;
                compute_total += comp[q];
            }
        kc_trt_metric("H2D Latency", h2d, total);
        kc_trt_metric("GPU Compute Time", comp, total);
        kc_trt_metric("D2H Latency", d2h, total);
        free(h2d), free(comp), free(d2h);
    } else {
        kc_trt_metric("H2D Latency", zeros, total);
        kc_trt_metric("GPU Compute Time", lat, total);
        kc_trt_metric("D2H Latency", zeros, total);
    }
    printf("[I] Total Host Walltime: %.6g s\n", wall_s);
    printf("[I] Total GPU Compute Time: %.6g s\n", compute_total / 1e3);
    free(zeros);
    if (host_only)
        printf("[I] Note: on the cpu provider the compute is host compute: GPU Compute Time is the time of the run on "
               "the CPU, Enqueue Time equals it (runs are synchronous), and H2D/D2H are 0 (no copies).\n");
    if (ls.cv > 0.01) {
        printf("[W] * %s compute time is unstable, with coefficient of variance = %.4g%%.\n", host_only ? "Host" : "GPU",
               ls.cv * 100);
        printf("[W]   %s\n", host_only ? "Other load on the machine or CPU frequency scaling may cause this; a quiet "
                                         "machine with a fixed CPU frequency improves the stability."
                                       : "If not already in use, locking GPU clock frequency may improve the stability.");
    }
    if (t.verbose) {
        printf("[V] === Explanations of the performance metrics ===\n");
        printf("[V] Total Host Walltime: the host time from when the first query is run to when the last one ends.\n");
        printf("[V] Throughput: the number of queries divided by the Total Host Walltime.\n");
        printf("[V] Latency: the time of one query, from its start to the availability of its outputs.\n");
        printf("[V] Enqueue Time: the host time to start a query (synchronous on the cpu provider: the whole run).\n");
        printf("[V] H2D/D2H Latency: the time of the input/output copies between host and device (0 on the cpu "
               "provider).\n");
        printf("[V] GPU Compute Time: the compute time of a query (host compute on the cpu provider).\n");
    } else {
        printf("[I] Explanations of the performance metrics are printed in the verbose logs.\n");
    }
    if (profiling) {
        if (t.separate_profile) {
            for (size_t i = 0; i < n_st; i++)
                if (kiln_context_set_profiling(st[i].runner.context, 1) != KILN_OK) {
                    code = kc_fail(KC_EXIT_MODEL, cmd, "profiling: %s", kiln_last_error());
                    goto failed;
                }
            kc_trt_run prun = run;
            prun.warmup_ms = 0;
            prun.no_warmup = true;
            prun.duration_s = 0;
            double pw;
            printf("[I] Profiling run: %lld inferences\n", t.iterations);
            if (!kc_trt_phase(st, n_st, &prun, &pw, err, sizeof err)) {
                code = kc_fail(KC_EXIT_MODEL, cmd, "profiling run failed: %s", err);
                goto failed;
            }
        }
        kiln_context *ctxs[64];
        for (size_t i = 0; i < n_st; i++) ctxs[i] = st[i].runner.context;
        size_t n_layers;
        double sum_ms;
        if (!kc_layer_times(engine, ctxs, n_st, &lt, &n_layers, &sum_ms, err, sizeof err)) {
            code = kc_fail(KC_EXIT_MODEL, cmd, "profile: %s", err);
            goto failed;
        }
        if (t.dump_profile) {
            printf("[I] \n[I] === Profile (%llu iterations ) ===\n",
                   (unsigned long long)(n_layers ? lt[0].runs : 0));
            kc_layer_times_print(stdout, "[I] ", lt, n_layers, sum_ms);
        }
        if (t.export_profile) {
            FILE *f = fopen(t.export_profile, "w");
            if (!f) {
                code = kc_fail(KC_EXIT_MODEL, cmd, "--exportProfile: cannot create '%s': %s", t.export_profile,
                               strerror(errno));
                goto failed;
            }
            kj_writer w;
            kj_init(&w, f);
            kc_layer_times_json(&w, lt, n_layers, sum_ms, true);
            kj_finish(&w);
            if (ferror(f) | (fclose(f) != 0)) {
                code = kc_fail(KC_EXIT_MODEL, cmd, "--exportProfile: cannot write '%s': %s", t.export_profile,
                               strerror(errno));
                goto failed;
            }
        }
    }
    if (t.export_times && !kc_trt_export_times(t.export_times, st, n_st, &code)) goto failed;
    if (t.export_output && !kc_trt_export_output(t.export_output, outs, st[0].outs, n_outs, &code)) goto failed;

passed:
    printf("&&&& PASSED kiln.trtexec [kiln v%s] # kiln trtexec", kiln_version());
    for (int i = 1; i < argc; i++) printf(" %s", kc_fmt_name(argv[i], strlen(argv[i]), buf, sizeof buf));
    printf("\n");
    goto done;
failed:
    printf("&&&& FAILED kiln.trtexec [kiln v%s] # kiln trtexec", kiln_version());
    for (int i = 1; i < argc; i++) printf(" %s", kc_fmt_name(argv[i], strlen(argv[i]), buf, sizeof buf));
    printf("\n");
done:
    kc_build_log_done(&log);
    free(lt);
    free(lat);
    for (size_t i = 0; i < n_st; i++) {
        kc_outputs_free(st[i].outs, n_outs);
        free(st[i].outs);
        free(st[i].times);
        kc_runner_destroy(&st[i].runner);
    }
    free(in_names);
    free(out_names);
    free(outs);
    kc_inputs_free(&in);
    kiln_engine_destroy(built);
    kiln_build_options_destroy(bo);
    kc_loaded_free(&l);
    return kc_finish_stdout(code);
}
