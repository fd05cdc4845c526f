/* kiln bench MODEL: time a model on random (or given) inputs, in the
 * spirit of trtexec and onnxruntime_perf_test. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "args.h"
#include "bench.h"
#include "cli.h"
#include "inputs.h"
#include "json.h"

/* ---- what was measured -------------------------------------------------------------- */

char *kc_cpu_model(char *buf, size_t size) {
    snprintf(buf, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return buf;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0 && strncmp(line, "Processor", 9) != 0) continue;
        char *colon = strchr(line, ':');
        if (!colon) continue;
        colon++;
        while (*colon == ' ' || *colon == '\t') colon++;
        size_t len = strcspn(colon, "\r\n");
        snprintf(buf, size, "%.*s", (int)len, colon);
        break;
    }
    fclose(f);
    return buf;
}

int kc_cpu_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

uint64_t kc_peak_rss(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (uint64_t)ru.ru_maxrss * 1024u;
}

/* ---- statistics --------------------------------------------------------------------- */

/* qsort comparison of doubles. */
static int kc_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v (n >= 1). */
static double kc_percentile(const double *v, size_t n, double pct) {
    double r = ceil(pct / 100.0 * (double)n);
    size_t i = r < 1 ? 0 : (size_t)r - 1;
    return v[i < n ? i : n - 1];
}

void kc_latency_stats(const double *ms, size_t n, kc_latency *s) {
    memset(s, 0, sizeof *s);
    s->n = n;
    if (n == 0) return;
    double *v = malloc(n * sizeof *v);
    if (!v) return;
    memcpy(v, ms, n * sizeof *v);
    qsort(v, n, sizeof *v, kc_cmp_double);
    double sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++) sum += v[i];
    s->mean = sum / (double)n;
    for (size_t i = 0; i < n; i++) sq += (v[i] - s->mean) * (v[i] - s->mean);
    s->stddev = sqrt(sq / (double)n);
    s->cv = s->mean > 0 ? s->stddev / s->mean : 0;
    s->min = v[0];
    s->max = v[n - 1];
    s->median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    s->p90 = kc_percentile(v, n, 90);
    s->p95 = kc_percentile(v, n, 95);
    s->p99 = kc_percentile(v, n, 99);
    free(v);
}

/* ---- timing loop -------------------------------------------------------------------- */

/* Progress shown on a terminal: "\r  measuring: 1.2 s / 3.0 s, 15 runs". */
typedef struct kc_progress {
    bool on;
    double last;
} kc_progress;

static void kc_progress_show(kc_progress *p, const char *phase, double elapsed, double total_s, size_t runs,
                             size_t total_runs) {
    if (!p->on) return;
    double now = kc_now();
    if (now - p->last < 0.1) return;
    p->last = now;
    if (total_runs) fprintf(stderr, "\r\033[K%s: %zu/%zu runs, %.1f s", phase, runs, total_runs, elapsed);
    else fprintf(stderr, "\r\033[K%s: %.1f s / %.1f s, %zu runs", phase, elapsed, total_s, runs);
    fflush(stderr);
}

static void kc_progress_clear(kc_progress *p) {
    if (!p->on) return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
}

/* ---- runners ------------------------------------------------------------------------ */

static kiln_status kc_add_session_provider(void *o, const char *name) {
    return kiln_session_options_append_provider((kiln_session_options *)o, name);
}

bool kc_runner_create(const char *cmd, const kc_loaded *l, long long threads, const char *cache_dir, kc_runner *r,
                      int *exit_code) {
    return kc_runner_create_ex(cmd, l, threads, cache_dir, NULL, false, NULL, r, exit_code);
}

bool kc_runner_create_ex(const char *cmd, const kc_loaded *l, long long threads, const char *cache_dir,
                         const char *providers, bool strict, const char *shapes, kc_runner *r, int *exit_code) {
    memset(r, 0, sizeof *r);
    double t0 = kc_now();
    if (l->engine && (providers || strict)) {
        *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "%s applies to a model: an engine runs on the providers it was built "
                             "for (kiln build --providers)", providers ? "--providers" : "--strict-providers");
        return false;
    }
    if (l->engine) {
        if (threads) {
            *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "--threads does not apply to an engine: it runs with the thread "
                                 "count it was built with (kiln build --threads N)");
            return false;
        }
        if (cache_dir) {
            *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "--cache applies to a model, not to an engine file");
            return false;
        }
        if (kiln_context_create(l->engine, &r->context) != KILN_OK) {
            *exit_code = kc_fail(KC_EXIT_MODEL, cmd, "cannot create an execution context: %s", kiln_last_error());
            return false;
        }
        r->engine = l->engine;
    } else {
        kiln_session_options *o = NULL;
        if (kiln_session_options_create(&o) != KILN_OK) {
            *exit_code = kc_fail(KC_EXIT_MODEL, cmd, "%s", kiln_last_error());
            return false;
        }
        if (providers && !kc_add_providers(cmd, providers, strict, kc_add_session_provider, o, exit_code)) {
            kiln_session_options_destroy(o);
            return false;
        }
        bool ok = kiln_session_options_set_threads(o, (int)threads) == KILN_OK &&
                  (!strict || kiln_session_options_set(o, "strict_providers", "1") == KILN_OK) &&
                  (!shapes || kiln_session_options_set(o, "shapes", shapes) == KILN_OK) &&
                  (!cache_dir || kiln_session_options_set(o, "cache_dir", cache_dir) == KILN_OK) &&
                  kiln_session_create(l->model, o, &r->session) == KILN_OK;
        kiln_session_options_destroy(o);
        if (!ok) {
            *exit_code = kc_fail(KC_EXIT_MODEL, cmd, "%s", kiln_last_error());
            return false;
        }
    }
    r->create_ms = (kc_now() - t0) * 1e3;
    return true;
}

bool kc_runner_set_profile(const char *cmd, kc_runner *r, long long profile, int *exit_code) {
    if (!r->context) {
        *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "--profile applies to an engine file (kiln build MODEL -o FILE.kiln)");
        return false;
    }
    if (kiln_context_set_profile(r->context, (size_t)profile) != KILN_OK) {
        *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "--profile %lld: %s", profile, kiln_last_error());
        return false;
    }
    return true;
}

void kc_runner_destroy(kc_runner *r) {
    kiln_session_destroy(r->session);
    kiln_context_destroy(r->context);
    memset(r, 0, sizeof *r);
}

kiln_status kc_runner_run(kc_runner *r, const char *const *in_names, const kiln_tensor *const *ins, size_t n_in,
                          const char *const *out_names, kiln_tensor **outs, size_t n_out) {
    if (r->context) return kiln_context_run(r->context, in_names, ins, n_in, out_names, outs, n_out);
    return kiln_session_run(r->session, in_names, ins, n_in, out_names, outs, n_out);
}

bool kc_runner_run_all(kc_runner *r, const kc_inputs *in, const kc_io *outs, size_t n_outs, kiln_tensor **results,
                       char *err, size_t errsize) {
    if (r->session) return kc_session_run_all(r->session, in, outs, n_outs, results, err, errsize);
    const char **in_names = calloc(in->n + 1, sizeof *in_names);
    const char **out_names = calloc(n_outs + 1, sizeof *out_names);
    bool ok = false;
    if (!in_names || !out_names) {
        snprintf(err, errsize, "out of memory");
    } else {
        for (size_t i = 0; i < in->n; i++) in_names[i] = in->io[i].name;
        for (size_t i = 0; i < n_outs; i++) {
            out_names[i] = outs[i].name;
            results[i] = NULL;
        }
        ok = kc_runner_run(r, in_names, (const kiln_tensor *const *)in->tensors, in->n, out_names, results, n_outs) ==
             KILN_OK;
        if (!ok) snprintf(err, errsize, "%s", kiln_last_error());
    }
    free(in_names);
    free(out_names);
    return ok;
}

bool kc_engine_io(const kiln_engine *e, bool outputs, kc_io **out, size_t *n) {
    size_t count;
    if ((outputs ? kiln_engine_output_count(e, &count) : kiln_engine_input_count(e, &count)) != KILN_OK) return false;
    kc_io *io = calloc(count + 1, sizeof *io);
    if (!io) return false;
    for (size_t i = 0; i < count; i++) {
        kc_io *x = &io[i];
        kiln_status s = outputs ? kiln_engine_output_info(e, i, &x->name, &x->dtype, &x->rank)
                                : kiln_engine_input_info(e, i, &x->name, &x->dtype, &x->rank);
        if (s != KILN_OK) {
            free(io);
            return false;
        }
        for (int a = 0; a < x->rank && a < KILN_MAX_RANK; a++) {
            x->dims[a] = -1;
            if (outputs) kiln_engine_output_dim(e, i, a, &x->dims[a]);
            else kiln_engine_input_dim(e, i, a, &x->dims[a]);
        }
    }
    *out = io;
    *n = count;
    return true;
}

bool kc_loaded_outputs(const kc_loaded *l, kc_io **out, size_t *n) {
    if (l->engine) return kc_engine_io(l->engine, true, out, n);
    return kc_model_io(l->model, true, out, n);
}

/* ---- timing loop (continued) -------------------------------------------------------- */

bool kc_time_runs(kc_runner *runner, const kc_inputs *in, const kc_io *outs, size_t n_outs, const kc_timing *t,
                  kc_timed *r, char *err, size_t errsize) {
    memset(r, 0, sizeof *r);
    kiln_tensor **res = calloc(n_outs + 1, sizeof *res);
    const char **in_names = calloc(in->n + 1, sizeof *in_names), **out_names = calloc(n_outs + 1, sizeof *out_names);
    size_t cap = 1024;
    r->ms = malloc(cap * sizeof *r->ms);
    bool ok = false;
    kc_progress prog = {.on = t->progress && isatty(STDERR_FILENO), .last = 0};
    if (!res || !in_names || !out_names || !r->ms) {
        snprintf(err, errsize, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < in->n; i++) in_names[i] = in->io[i].name;
    for (size_t i = 0; i < n_outs; i++) out_names[i] = outs[i].name;
    /* Warm-up; the first run creates the output tensors, later runs write into them. */
    double start = kc_now();
    do {
        if (kc_runner_run(runner, in_names, (const kiln_tensor *const *)in->tensors, in->n, out_names, res, n_outs) !=
            KILN_OK) {
            snprintf(err, errsize, "%s", kiln_last_error());
            goto done;
        }
        r->warmup_runs++;
        r->warmup_s = kc_now() - start;
        kc_progress_show(&prog, "warming up", r->warmup_s, t->warmup_ms / 1e3, r->warmup_runs, 0);
    } while (r->warmup_s * 1e3 < t->warmup_ms);
    start = kc_now();
    for (;;) {
        double elapsed = kc_now() - start;
        bool iters_done = !t->iterations || r->n >= (size_t)t->iterations;
        bool time_done = t->duration_s <= 0 || elapsed >= t->duration_s;
        if (r->n > 0 && iters_done && time_done) {
            r->total_s = elapsed;
            break;
        }
        if (r->n == cap) {
            double *nm = cap > SIZE_MAX / 2 / sizeof *nm ? NULL : realloc(r->ms, cap * 2 * sizeof *nm);
            if (!nm) {
                snprintf(err, errsize, "out of memory after %zu runs", r->n);
                goto done;
            }
            r->ms = nm;
            if (r->comp) {
                double **arr[3] = {&r->h2d, &r->comp, &r->d2h};
                for (int k = 0; k < 3; k++) {
                    double *g = realloc(*arr[k], cap * 2 * sizeof *g);
                    if (!g) {
                        snprintf(err, errsize, "out of memory after %zu runs", r->n);
                        goto done;
                    }
                    *arr[k] = g;
                }
            }
            cap *= 2;
        }
        double t0 = kc_now(), dev_ms = 0, h = 0, c = 0, d = 0;
        kiln_status st = t->no_transfers && runner->context
                             ? kiln_context_time_compute(runner->context, 1, &dev_ms)
                             : kc_runner_run(runner, in_names, (const kiln_tensor *const *)in->tensors, in->n,
                                             out_names, res, n_outs);
        double t1 = kc_now();
        if (st != KILN_OK) {
            snprintf(err, errsize, "%s", kiln_last_error());
            goto done;
        }
        if (runner->context && (t->no_transfers || kiln_context_device_times(runner->context, &h, &c, &d) == KILN_OK)) {
            if (t->no_transfers) c = dev_ms, h = d = 0;
            if (!r->comp) {
                r->h2d = malloc(cap * sizeof *r->h2d);
                r->comp = malloc(cap * sizeof *r->comp);
                r->d2h = malloc(cap * sizeof *r->d2h);
                if (!r->h2d || !r->comp || !r->d2h) {
                    snprintf(err, errsize, "out of memory");
                    goto done;
                }
            }
            r->h2d[r->n] = h;
            r->comp[r->n] = c;
            r->d2h[r->n] = d;
        }
        r->ms[r->n++] = (t1 - t0) * 1e3;
        kc_progress_show(&prog, "measuring", t1 - start, t->duration_s, r->n, (size_t)t->iterations);
    }
    ok = true;
done:
    kc_progress_clear(&prog);
    if (ok && t->keep_outputs) r->outputs = res;
    else {
        kc_outputs_free(res, n_outs);
        free(res);
    }
    free(in_names);
    free(out_names);
    if (!ok) {
        free(r->ms);
        free(r->h2d), free(r->comp), free(r->d2h);
        r->ms = r->h2d = r->comp = r->d2h = NULL;
    }
    return ok;
}

/* ---- kiln bench --------------------------------------------------------------------- */

#define KC_JSON_MAX_LATENCIES 100000
#define KC_ENGINE_LOADS 7

/* What bench measured besides the runs. */
typedef struct kc_bench_info {
    const char *path;
    uint64_t file_size;
    bool engine;
    const char *provider;  /* "cpu" or the engine's providers */
    const char *precision; /* the engine's precision, or NULL */
    const char *cache_dir;
    int threads;
    double load_ms;           /* model load, or first engine load */
    double create_ms;         /* session creation (build), or first context creation */
    kc_latency engine_ready;  /* engine load + context creation over several loads */
    int streams;              /* execution contexts run in parallel (--streams) */
} kc_bench_info;

/* Load the engine at `path` and create a context `n` times; ms[i] is the
 * time of load i + context creation.  false with kiln's message. */
static bool kc_engine_ready_times(const char *path, size_t n, double *ms, char *err, size_t errsize) {
    for (size_t i = 0; i < n; i++) {
        kiln_engine *e = NULL;
        kiln_context *c = NULL;
        double t0 = kc_now();
        bool ok = kiln_engine_load(path, &e) == KILN_OK && kiln_context_create(e, &c) == KILN_OK;
        ms[i] = (kc_now() - t0) * 1e3;
        if (!ok) snprintf(err, errsize, "%s", kiln_last_error());
        kiln_context_destroy(c);
        kiln_engine_destroy(e);
        if (!ok) return false;
    }
    return true;
}

/* The compute a run does and what fraction of the machine's peak it reaches. */
typedef struct kc_compute {
    bool have_macs;
    uint64_t macs;      /* per inference, at the inputs' shapes */
    size_t uncounted;   /* nodes with MACs left out (shapes not known) */
    double gflops;      /* 2 x macs / median latency */
    bool have_peak;     /* CPU runs: the measured FMA peak for the level and threads in use */
    const char *isa;
    int threads;
    double peak_gflops, fraction;
} kc_compute;

/* MACs of what `l` loaded at the shapes of `in`, the GFLOP/s at `median_ms`,
 * and on the CPU the fraction of the measured peak for the ISA level in use
 * and `threads` (0: one per core). */
static void kc_bench_compute(const kc_loaded *l, const kc_inputs *in, const char *provider, int threads,
                             double median_ms, kc_compute *c) {
    memset(c, 0, sizeof *c);
    const char *names[KC_LIST_MAX];
    const int64_t *shapes[KC_LIST_MAX];
    int ranks[KC_LIST_MAX];
    size_t n = in->n < KC_LIST_MAX ? in->n : KC_LIST_MAX;
    for (size_t i = 0; i < n; i++) {
        names[i] = in->io[i].name;
        if (kiln_tensor_shape(in->tensors[i], &ranks[i], &shapes[i]) != KILN_OK) return;
    }
    kiln_status st = l->engine ? kiln_engine_macs(l->engine, names, ranks, shapes, n, &c->macs, &c->uncounted)
                               : kiln_model_macs(l->model, names, ranks, shapes, n, &c->macs, &c->uncounted);
    if (st != KILN_OK) c->uncounted = 0;
    if (st != KILN_OK || c->macs == 0) return;
    c->have_macs = true;
    c->gflops = median_ms > 0 ? 2.0 * (double)c->macs / (median_ms * 1e6) : 0;
    if (strstr(provider, "cuda")) return; /* the CPU's peak says nothing about a GPU */
    c->threads = threads > 0 ? threads : kc_cpu_cores();
    if (kiln_cpu_get("isa", &c->isa) != KILN_OK || !kc_peak_for(NULL, c->threads, &c->peak_gflops) ||
        c->peak_gflops <= 0)
        return;
    c->have_peak = true;
    c->fraction = c->gflops / c->peak_gflops;
}

/* Write the JSON report. */
static void kc_bench_json(FILE *f, const kc_bench_info *b, const kc_inputs *in, int64_t batch, const kc_timing *t,
                          const kc_timed *r, const kc_latency *lat, const kc_compute *cm, uint64_t rss) {
    char cpu[256];
    kj_writer w;
    kj_init(&w, f);
    kj_object_begin(&w);
    kj_key(&w, b->engine ? "engine" : "model");
    kj_string(&w, b->path);
    kj_key(&w, b->engine ? "engine_bytes" : "model_bytes");
    kj_uint(&w, b->file_size);
    kj_key(&w, "kiln_version");
    kj_string(&w, kiln_version());
    kj_key(&w, "provider");
    kj_string(&w, b->provider);
    if (b->precision) {
        kj_key(&w, "precision");
        kj_string(&w, b->precision);
    }
    kj_key(&w, "threads");
    kj_int(&w, b->threads);
    kj_key(&w, "streams");
    kj_int(&w, b->streams);
    kj_key(&w, "cores");
    kj_int(&w, kc_cpu_cores());
    kj_key(&w, "cpu");
    kj_string(&w, kc_cpu_model(cpu, sizeof cpu));
    kj_key(&w, "inputs");
    kc_inputs_json(&w, in, false);
    kj_key(&w, "batch");
    kj_int(&w, batch);
    if (b->engine) {
        kj_key(&w, "engine_load_ms");
        kj_double(&w, b->load_ms);
        kj_key(&w, "context_create_ms");
        kj_double(&w, b->create_ms);
        kj_key(&w, "engine_load_context_ms");
        kj_object_begin(&w);
        kj_key(&w, "loads");
        kj_uint(&w, b->engine_ready.n);
        kj_key(&w, "median");
        kj_double(&w, b->engine_ready.median);
        kj_key(&w, "min");
        kj_double(&w, b->engine_ready.min);
        kj_key(&w, "max");
        kj_double(&w, b->engine_ready.max);
        kj_object_end(&w);
    } else {
        kj_key(&w, "model_load_ms");
        kj_double(&w, b->load_ms);
        kj_key(&w, "session_create_ms");
        kj_double(&w, b->create_ms);
        kj_key(&w, "cache_dir");
        kj_string(&w, b->cache_dir);
    }
    kj_key(&w, "warmup");
    kj_object_begin(&w);
    kj_key(&w, "requested_ms");
    kj_double(&w, t->warmup_ms);
    kj_key(&w, "runs");
    kj_uint(&w, r->warmup_runs);
    kj_key(&w, "ms");
    kj_double(&w, r->warmup_s * 1e3);
    kj_object_end(&w);
    kj_key(&w, "iterations");
    kj_uint(&w, r->n);
    kj_key(&w, "duration_s");
    kj_double(&w, r->total_s);
    kj_key(&w, "throughput");
    kj_object_begin(&w);
    kj_key(&w, "inferences_per_s");
    kj_double(&w, r->total_s > 0 ? (double)r->n / r->total_s : 0);
    kj_key(&w, "samples_per_s");
    kj_double(&w, r->total_s > 0 ? (double)r->n * (double)batch / r->total_s : 0);
    kj_object_end(&w);
    kj_key(&w, "latency_ms");
    kj_object_begin(&w);
    const char *names[] = {"min", "max", "mean", "median", "p90", "p95", "p99", "stddev"};
    double vals[] = {lat->min, lat->max, lat->mean, lat->median, lat->p90, lat->p95, lat->p99, lat->stddev};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        kj_key(&w, names[i]);
        kj_double(&w, vals[i]);
    }
    kj_object_end(&w);
    kj_key(&w, "compute");
    kj_object_begin(&w);
    kj_key(&w, "macs");
    if (cm->have_macs) kj_uint(&w, cm->macs);
    else kj_null(&w);
    kj_key(&w, "flops");
    if (cm->have_macs) kj_double(&w, 2.0 * (double)cm->macs);
    else kj_null(&w);
    kj_key(&w, "uncounted_nodes");
    kj_uint(&w, cm->uncounted);
    kj_key(&w, "complete");
    kj_bool(&w, cm->uncounted == 0);
    kj_key(&w, "gflops");
    if (cm->have_macs) kj_double(&w, cm->gflops);
    else kj_null(&w);
    kj_key(&w, "peak_isa");
    kj_string(&w, cm->have_peak ? cm->isa : NULL);
    kj_key(&w, "peak_threads");
    if (cm->have_peak) kj_int(&w, cm->threads);
    else kj_null(&w);
    kj_key(&w, "peak_gflops");
    if (cm->have_peak) kj_double(&w, cm->peak_gflops);
    else kj_null(&w);
    kj_key(&w, "fraction_of_peak");
    if (cm->have_peak) kj_double(&w, cm->fraction);
    else kj_null(&w);
    kj_object_end(&w);
    kj_key(&w, "cv");
    kj_double(&w, lat->cv);
    kj_key(&w, "unstable");
    kj_bool(&w, lat->cv > 0.10);
    kj_key(&w, "peak_rss_bytes");
    kj_uint(&w, rss);
    /* Every latency, up to KC_JSON_MAX_LATENCIES (the first ones). */
    kj_key(&w, "latencies_ms");
    kj_array_begin(&w);
    for (size_t i = 0; i < r->n && i < KC_JSON_MAX_LATENCIES; i++) kj_double(&w, r->ms[i]);
    kj_array_end(&w);
    kj_key(&w, "latencies_truncated");
    kj_bool(&w, r->n > KC_JSON_MAX_LATENCIES);
    kj_object_end(&w);
    kj_finish(&w);
}

/* An engine fact by key, or `fallback`. */
static const char *kc_engine_fact(const kiln_engine *e, const char *key, const char *fallback) {
    const char *v = NULL;
    return e && kiln_engine_get(e, key, &v) == KILN_OK && v ? v : fallback;
}

/* kiln bench --peak [--threads N] [--json]: kiln sysinfo's report. */
static int kc_bench_peak(int argc, char **argv) {
    bool peak = false, json = false;
    const char *threads_s = NULL;
    const kc_flag flags[] = {{"--peak", &peak, NULL, NULL},
                             {"--threads", NULL, &threads_s, NULL},
                             {"--json", &json, NULL, NULL},
                             {NULL, NULL, NULL, NULL}};
    int code = KC_EXIT_OK;
    long long threads = 0;
    if (!kc_parse_flags(argc, argv, flags, &code) ||
        (threads_s && !kc_parse_int("bench", "--threads", threads_s, 0, 1024, &threads, &code)))
        return code;
    return kc_sysinfo_report("bench", json, (int)threads);
}

/* --streams: one execution context per stream, each timed on its own
 * thread (trtexec's --streams); the runs are merged afterwards. */
#define KC_MAX_STREAMS 64
typedef struct kc_bench_stream {
    kc_runner *runner;
    const kc_inputs *in;
    const kc_io *outs;
    size_t n_outs;
    const kc_timing *timing;
    kc_timed res;
    bool ok;
    char err[1024];
} kc_bench_stream;

static void *kc_bench_stream_main(void *arg) {
    kc_bench_stream *s = arg;
    s->ok = kc_time_runs(s->runner, s->in, s->outs, s->n_outs, s->timing, &s->res, s->err, sizeof s->err);
    return NULL;
}

/* Run the streams (st[0] on this thread) and merge their runs into *r:
 * every latency, the longest measuring time (so runs / time is the
 * aggregate throughput).  false with the first error. */
static bool kc_bench_streams(kc_bench_stream *st, size_t n, kc_timed *r, char *err, size_t errsize) {
    pthread_t th[KC_MAX_STREAMS];
    bool started[KC_MAX_STREAMS] = {false};
    for (size_t i = 1; i < n; i++) started[i] = pthread_create(&th[i], NULL, kc_bench_stream_main, &st[i]) == 0;
    kc_bench_stream_main(&st[0]);
    for (size_t i = 1; i < n; i++) {
        if (started[i]) pthread_join(th[i], NULL);
        else kc_bench_stream_main(&st[i]); /* no thread: run it here, after the others */
    }
    bool ok = true;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!st[i].ok && ok) {
            snprintf(err, errsize, "stream %zu: %s", i, st[i].err);
            ok = false;
        }
        total += st[i].res.n;
    }
    bool dev = ok;
    for (size_t i = 0; ok && i < n; i++) dev = dev && st[i].res.comp;
    memset(r, 0, sizeof *r);
    if (ok) {
        r->ms = malloc((total ? total : 1) * sizeof *r->ms);
        if (dev) {
            r->h2d = malloc((total ? total : 1) * sizeof *r->h2d);
            r->comp = malloc((total ? total : 1) * sizeof *r->comp);
            r->d2h = malloc((total ? total : 1) * sizeof *r->d2h);
        }
        if (!r->ms || (dev && (!r->h2d || !r->comp || !r->d2h))) {
            snprintf(err, errsize, "out of memory");
            ok = false;
        }
    }
    for (size_t i = 0; ok && i < n; i++) {
        const kc_timed *q = &st[i].res;
        memcpy(r->ms + r->n, q->ms, q->n * sizeof *r->ms);
        if (dev) {
            memcpy(r->h2d + r->n, q->h2d, q->n * sizeof *r->h2d);
            memcpy(r->comp + r->n, q->comp, q->n * sizeof *r->comp);
            memcpy(r->d2h + r->n, q->d2h, q->n * sizeof *r->d2h);
        }
        r->n += q->n;
        r->warmup_runs += q->warmup_runs;
        if (q->warmup_s > r->warmup_s) r->warmup_s = q->warmup_s;
        if (q->total_s > r->total_s) r->total_s = q->total_s;
    }
    for (size_t i = 0; i < n; i++) {
        free(st[i].res.ms);
        free(st[i].res.h2d), free(st[i].res.comp), free(st[i].res.d2h);
    }
    if (!ok) {
        free(r->ms), free(r->h2d), free(r->comp), free(r->d2h);
        memset(r, 0, sizeof *r);
    }
    return ok;
}

int kc_cmd_bench(int argc, char **argv) {
    const char *cmd = "bench";
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--peak") == 0) return kc_bench_peak(argc, argv);
    kc_list files = {.n = 0};
    bool no_transfers = false;
    const char *batch_s = NULL, *shapes = NULL, *threads_s = NULL, *warmup_s = NULL, *duration_s = NULL,
               *iters_s = NULL, *json_path = NULL, *seed_s = NULL, *cache_dir = NULL, *profile_s = NULL,
               *streams_s = NULL, *providers = NULL;
    bool strict = false;
    const kc_flag flags[] = {
        {"--providers", NULL, &providers, NULL}, {"--strict-providers", &strict, NULL, NULL},
        {"--batch", NULL, &batch_s, NULL},       {"--shapes", NULL, &shapes, NULL},
        {"--threads", NULL, &threads_s, NULL},   {"--warmup", NULL, &warmup_s, NULL},
        {"--duration", NULL, &duration_s, NULL}, {"--iterations", NULL, &iters_s, NULL},
        {"--json", NULL, &json_path, NULL},      {"--seed", NULL, &seed_s, NULL},
        {"--input", NULL, NULL, &files},         {"--cache", NULL, &cache_dir, NULL},
        {"--profile", NULL, &profile_s, NULL},   {"--noDataTransfers", &no_transfers, NULL, NULL},
        {"--streams", NULL, &streams_s, NULL},   {NULL, NULL, NULL, NULL}};
    const char *path;
    int code = KC_EXIT_OK;
    if (!kc_parse_args(argc, argv, flags, &path, &code)) return code;
    if (batch_s && strchr(batch_s, ',')) {
        /* a sweep (--batch 1,4,8,16): one report per batch size, in order */
        if (json_path) return kc_fail(KC_EXIT_USAGE, cmd, "--json takes one --batch value (run one bench per batch size)");
        for (const char *p = batch_s;;) { /* every size checked before the first run */
            size_t len = strcspn(p, ",");
            char one[64];
            long long b = 0;
            snprintf(one, sizeof one, "%.*s", (int)(len < 63 ? len : 63), p);
            if (!kc_parse_int(cmd, "--batch", one, 1, 1 << 20, &b, &code)) return code;
            if (!p[len]) break;
            p += len + 1;
        }
        char **av = calloc((size_t)argc + 1, sizeof *av);
        if (!av) return kc_fail(KC_EXIT_MODEL, cmd, "out of memory");
        int bi = -1;
        for (int i = 0; i < argc; i++) {
            av[i] = argv[i];
            if (bi < 0 && i + 1 < argc && strcmp(argv[i], "--batch") == 0) bi = i + 1;
            else if (bi < 0 && strncmp(argv[i], "--batch=", 8) == 0) bi = i;
        }
        int worst = KC_EXIT_OK;
        char one[64], item[80];
        for (const char *p = batch_s; bi >= 0;) { /* sizes checked above */
            size_t len = strcspn(p, ",");
            snprintf(one, sizeof one, "%.*s", (int)(len < 63 ? len : 63), p);
            snprintf(item, sizeof item, "%s%s", strncmp(av[bi], "--batch=", 8) == 0 ? "--batch=" : "", one);
            char *saved = av[bi];
            av[bi] = item;
            printf("%s=== batch %s ===\n", p == batch_s ? "" : "\n", one);
            fflush(stdout);
            int rc = kc_cmd_bench(argc, av);
            av[bi] = saved;
            if (rc != KC_EXIT_OK) worst = rc;
            if (!p[len]) break;
            p += len + 1;
        }
        free(av);
        return worst;
    }
    long long batch = 0, threads = 0, iterations = 0, seed = 0, profile = 0, streams = 1;
    double warmup = 200, duration = 3;
    if ((batch_s && !kc_parse_int(cmd, "--batch", batch_s, 1, 1 << 20, &batch, &code)) ||
        (profile_s && !kc_parse_int(cmd, "--profile", profile_s, 0, 1 << 20, &profile, &code)) ||
        (streams_s && !kc_parse_int(cmd, "--streams", streams_s, 1, KC_MAX_STREAMS, &streams, &code)) ||
        (threads_s && !kc_parse_int(cmd, "--threads", threads_s, 0, 4096, &threads, &code)) ||
        (iters_s && !kc_parse_int(cmd, "--iterations", iters_s, 1, 100000000, &iterations, &code)) ||
        (seed_s && !kc_parse_int(cmd, "--seed", seed_s, 0, INT64_MAX, &seed, &code)) ||
        (warmup_s && !kc_parse_double(cmd, "--warmup", warmup_s, 0, &warmup, &code)) ||
        (duration_s && !kc_parse_double(cmd, "--duration", duration_s, 0, &duration, &code)))
        return code;
    /* --iterations alone runs exactly N; with --duration, both are minimums (trtexec). */
    if (iters_s && !duration_s) duration = 0;

    kc_loaded l;
    kc_runner runner = {0}, extra[KC_MAX_STREAMS - 1];
    memset(extra, 0, sizeof extra);
    kc_inputs in = {.image_input = -1};
    kc_io *outs = NULL;
    size_t n_outs = 0;
    kc_timed r = {0};
    char err[4096], session_provider[128];
    kc_bench_info b = {.path = strcmp(path, "-") == 0 ? "<stdin>" : path, .cache_dir = cache_dir,
                       .threads = (int)threads, .provider = "cpu", .streams = (int)streams};
    if (!kc_load_model_or_engine(cmd, path, &l, &code)) goto done;
    if (streams > 1 && !l.engine) {
        code = kc_fail(KC_EXIT_USAGE, cmd, "--streams applies to an engine file (kiln build MODEL -o FILE.kiln): "
                       "each stream is an execution context of the engine");
        goto done;
    }
    b.file_size = l.file_size;
    b.load_ms = l.load_ms;
    b.engine = l.engine != NULL;
    /* An engine with a profile runs at its opt shapes unless told otherwise (as trtexec does). */
    char opt_spec[2048], profile_spec[2048];
    if (l.engine && !shapes && !batch && kc_engine_opt_spec(l.engine, (size_t)profile, opt_spec, sizeof opt_spec))
        shapes = opt_spec;
    kc_input_opts io = {.files = &files, .shape_flag = "--shapes", .shape = shapes, .batch = batch, .random = true,
                        .seed = (uint64_t)seed};
    if (!kc_inputs_prepare(cmd, kc_loaded_inputs(&l), &io, &in, &code)) goto done;
    /* a model's session gets a profile at these shapes (dynamic axes) */
    const char *sess_shapes = l.engine ? NULL : kc_inputs_profile(&in, profile_spec, sizeof profile_spec);
    if (!kc_runner_create_ex(cmd, &l, threads, cache_dir, providers, strict, sess_shapes, &runner, &code)) goto done;
    if (profile_s && !kc_runner_set_profile(cmd, &runner, profile, &code)) goto done;
    b.create_ms = runner.create_ms;
    if (runner.session) { /* the providers the session's engine runs on */
        const kiln_engine *se = NULL;
        if (kiln_session_get_engine(runner.session, &se) == KILN_OK && se) {
            snprintf(session_provider, sizeof session_provider, "%s", kc_engine_fact(se, "providers", "cpu"));
            b.provider = session_provider;
        }
    }
    if (l.engine) {
        b.provider = kc_engine_fact(l.engine, "providers", "cpu");
        b.precision = kc_engine_fact(l.engine, "precision", NULL);
        const char *th = kc_engine_fact(l.engine, "threads", "0");
        b.threads = atoi(th);
        /* Engine load + context creation, the median over a few loads (the first one included). */
        double ready[KC_ENGINE_LOADS];
        size_t n_ready = 1;
        ready[0] = l.load_ms + runner.create_ms;
        if (!l.buffer) {
            if (!kc_engine_ready_times(path, KC_ENGINE_LOADS - 1, ready + 1, err, sizeof err)) {
                code = kc_fail(KC_EXIT_MODEL, cmd, "reloading the engine: %s", err);
                goto done;
            }
            n_ready = KC_ENGINE_LOADS;
        }
        kc_latency_stats(ready, n_ready, &b.engine_ready);
    }
    if (!kc_loaded_outputs(&l, &outs, &n_outs)) {
        code = kc_fail(KC_EXIT_MODEL, cmd, "cannot read the model's outputs: %s", kiln_last_error());
        goto done;
    }
    bool json_stdout = json_path && strcmp(json_path, "-") == 0;
    kc_timing timing = {.warmup_ms = warmup, .duration_s = duration, .iterations = iterations,
                        .progress = streams == 1, .no_transfers = no_transfers};
    if (streams == 1) {
        if (!kc_time_runs(&runner, &in, outs, n_outs, &timing, &r, err, sizeof err)) {
            code = kc_fail(KC_EXIT_MODEL, cmd, "%s", err);
            goto done;
        }
    } else {
        kc_bench_stream st[KC_MAX_STREAMS];
        memset(st, 0, sizeof st);
        for (long long i = 0; i < streams; i++) {
            if (i > 0 && !kc_runner_create(cmd, &l, 0, NULL, &extra[i - 1], &code)) goto done;
            if (i > 0 && profile_s && !kc_runner_set_profile(cmd, &extra[i - 1], profile, &code)) goto done;
            st[i] = (kc_bench_stream){i ? &extra[i - 1] : &runner, &in, outs, n_outs, &timing, {0}, false, ""};
        }
        if (!kc_bench_streams(st, (size_t)streams, &r, err, sizeof err)) {
            code = kc_fail(KC_EXIT_MODEL, cmd, "%s", err);
            goto done;
        }
    }
    kc_latency lat;
    kc_latency_stats(r.ms, r.n, &lat);
    int64_t nbatch = kc_inputs_batch(&in);
    uint64_t rss = kc_peak_rss();
    /* Layers the GPU plan could not run there (partition reports nodes, not these) */
    size_t host_layers = 0;
    if (runner.context && kiln_context_device_info(runner.context, NULL, &host_layers, NULL) != KILN_OK) host_layers = 0;
    /* The peak is measured with the session's threads gone (they would take cores from it). */
    kc_runner_destroy(&runner);
    for (size_t i = 0; i < KC_MAX_STREAMS - 1; i++) kc_runner_destroy(&extra[i]);
    kc_compute cm;
    kc_bench_compute(&l, &in, b.provider, b.threads, lat.median, &cm);
    if (json_path) {
        FILE *jf = json_stdout ? stdout : fopen(json_path, "w");
        if (!jf) {
            code = kc_fail(KC_EXIT_MODEL, cmd, "--json: cannot create '%s': %s", json_path, strerror(errno));
            goto done;
        }
        kc_bench_json(jf, &b, &in, nbatch, &timing, &r, &lat, &cm, rss);
        if (!json_stdout && (ferror(jf) | (fclose(jf) != 0))) {
            code = kc_fail(KC_EXIT_MODEL, cmd, "--json: cannot write '%s': %s", json_path, strerror(errno));
            goto done;
        }
        if (json_stdout) goto done;
    }
    char buf[1024], buf2[512], cpu[256];
    printf("=== %s ===\n", l.engine ? "Engine" : "Model");
    printf("%s: %s (%s)\n", l.engine ? "Engine" : "Model", kc_fmt_name(b.path, strlen(b.path), buf, sizeof buf),
           kc_fmt_bytes(l.file_size, buf2, sizeof buf2));
    for (size_t i = 0; i < in.n; i++) {
        char type[512];
        printf("Input: '%s' %s, %s\n", kc_fmt_name(in.io[i].name, strlen(in.io[i].name), buf, sizeof buf),
               kc_fmt_tensor(in.tensors[i], type, sizeof type), in.source[i]);
    }
    printf("=== Setup ===\n");
    printf("kiln: %s\n", kiln_version());
    if (l.engine) {
        printf("Provider: %s (engine; precision %s)\n", b.provider, b.precision ? b.precision : "fp32");
        printf("Model SHA-256: %s\n", kc_engine_fact(l.engine, "model_sha256", "unknown"));
        if (b.threads) printf("Threads: %d (as built; %d cores online)\n", b.threads, kc_cpu_cores());
        else printf("Threads: auto (as built: one per core; %d cores online)\n", kc_cpu_cores());
    } else {
        printf("Provider: %s (session: the model is built in memory%s)\n", b.provider,
               cache_dir ? ", or loaded from the engine cache" : "");
        if (cache_dir) printf("Engine cache: %s\n", kc_fmt_name(cache_dir, strlen(cache_dir), buf, sizeof buf));
        if (threads) printf("Threads: %lld (%d cores online)\n", threads, kc_cpu_cores());
        else printf("Threads: auto (one per core; %d cores online)\n", kc_cpu_cores());
    }
    printf("CPU: %s\n", kc_cpu_model(cpu, sizeof cpu));
    if (streams > 1)
        printf("Streams: %lld (an execution context per stream, each on its own thread; throughput is all "
               "streams' runs over the longest stream's time, latencies are every run's)\n", streams);
    printf("Warmup: %zu run%s in %.1f ms (requested %.0f ms)\n", r.warmup_runs, r.warmup_runs == 1 ? "" : "s",
           r.warmup_s * 1e3, warmup);
    printf("Measured: %zu run%s in %.3f s\n", r.n, r.n == 1 ? "" : "s", r.total_s);
    printf("=== Performance summary ===\n");
    if (l.engine) {
        printf("Engine load + context creation: median = %.3f ms, min = %.3f ms, max = %.3f ms (%zu load%s)\n",
               b.engine_ready.median, b.engine_ready.min, b.engine_ready.max, b.engine_ready.n,
               b.engine_ready.n == 1 ? "" : "s");
        printf("First engine load: %.3f ms, context creation: %.3f ms\n", b.load_ms, b.create_ms);
    } else {
        printf("Model load time: %.3f ms\n", b.load_ms);
        printf("Session creation time: %.3f ms (%s)\n", b.create_ms,
               cache_dir ? "engine cache lookup, build on a miss" : "includes the build of the engine");
    }
    double qps = r.total_s > 0 ? (double)r.n / r.total_s : 0;
    printf("Throughput: %.4g qps (inferences/s), %.4g samples/s (batch %lld)\n", qps, qps * (double)nbatch,
           (long long)nbatch);
    printf("Latency: min = %.4f ms, max = %.4f ms, mean = %.4f ms, median = %.4f ms, percentile(90%%) = %.4f ms, "
           "percentile(95%%) = %.4f ms, percentile(99%%) = %.4f ms\n",
           lat.min, lat.max, lat.mean, lat.median, lat.p90, lat.p95, lat.p99);
    printf("Coefficient of variation: %.2f%% (stddev %.4f ms)\n", lat.cv * 100, lat.stddev);
    if (r.comp) {
        kc_latency hl, cl, dl;
        kc_latency_stats(r.h2d, r.n, &hl);
        kc_latency_stats(r.comp, r.n, &cl);
        kc_latency_stats(r.d2h, r.n, &dl);
        printf("GPU (CUDA events, medians): H2D %.4f ms, compute %.4f ms, D2H %.4f ms%s\n", hl.median, cl.median,
               dl.median, no_transfers ? " (--noDataTransfers: compute only)" : "");
        printf("GPU compute: min = %.4f ms, mean = %.4f ms, median = %.4f ms, percentile(99%%) = %.4f ms; %.4g samples/s\n",
               cl.min, cl.mean, cl.median, cl.p99, cl.median > 0 ? 1e3 * (double)nbatch / cl.median : 0);
    }
    if (host_layers)
        printf("Warning: %zu layer%s of the GPU plan ran on the host CPU (fallbacks; kiln build --verbose says why)\n",
               host_layers, host_layers == 1 ? "" : "s");
    if (cm.have_macs) {
        char mb[64];
        const char *least = cm.uncounted ? "at least " : "";
        printf("Compute: %s%s MACs per inference (%.4g GFLOP", least, kc_fmt_count(cm.macs, mb, sizeof mb),
               2.0 * (double)cm.macs * 1e-9);
        if (cm.uncounted) printf("; %zu node%s of unknown shape not counted", cm.uncounted, cm.uncounted == 1 ? "" : "s");
        printf("); %s%.4g GFLOP/s at the median latency", least, cm.gflops);
        if (cm.have_peak)
            printf(", %s%.1f%% of the measured FP32 FMA peak (%s, %d thread%s: %.1f GFLOP/s)", least, cm.fraction * 100,
                   cm.isa, cm.threads, cm.threads == 1 ? "" : "s", cm.peak_gflops);
        printf("\n");
    } else if (cm.uncounted) {
        printf("Compute: not counted (%zu Conv/Gemm/MatMul node%s whose shapes are not known before the run)\n", cm.uncounted,
               cm.uncounted == 1 ? "" : "s");
    } else {
        printf("Compute: no Conv, Gemm or MatMul nodes\n");
    }
    printf("Peak RSS: %s\n", kc_fmt_bytes(rss, buf2, sizeof buf2));
    if (lat.cv > 0.10)
        printf("Warning: the coefficient of variation is %.1f%% (> 10%%): the machine looks unstable (other load, "
               "frequency scaling); the numbers may not be reliable\n", lat.cv * 100);
    if (r.n < 10 && !iters_s)
        printf("Warning: only %zu runs were measured; use a longer --duration or more --iterations\n", r.n);
done:
    free(r.ms);
    free(r.h2d), free(r.comp), free(r.d2h);
    free(outs);
    kc_runner_destroy(&runner);
    for (size_t i = 0; i < KC_MAX_STREAMS - 1; i++) kc_runner_destroy(&extra[i]);
    kc_inputs_free(&in);
    kc_loaded_free(&l);
    return kc_finish_stdout(code);
}
