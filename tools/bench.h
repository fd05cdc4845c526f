/*
 * bench.h — timing shared by `kiln bench` and `kiln compare`: the timed run
 * loop (warm-up, then a duration and/or an iteration count), latency
 * statistics, and a description of the machine.
 */
#ifndef KILN_TOOLS_BENCH_H
#define KILN_TOOLS_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inputs.h"

/* How long to run. */
typedef struct kc_timing {
    double warmup_ms;    /* warm up for at least this long (at least one run) */
    double duration_s;   /* measure for at least this long (0: no minimum) */
    long long iterations; /* measure at least this many runs (0: no minimum) */
    bool progress;       /* show progress on stderr when it is a terminal */
    bool keep_outputs;   /* keep the last run's outputs in kc_timed.outputs */
    bool no_transfers;   /* GPU engines: time the compute alone (trtexec's --noDataTransfers) */
} kc_timing;

/* What the loop measured. */
typedef struct kc_timed {
    double *ms;          /* latency of each measured run, malloc'ed */
    size_t n;
    double total_s;      /* wall time of the measured runs */
    size_t warmup_runs;
    double warmup_s;
    kiln_tensor **outputs; /* with keep_outputs: n_outs tensors (kc_outputs_free + free) */
    double *h2d, *comp, *d2h; /* GPU engines: each run's device split (ms, CUDA events), else NULL */
} kc_timed;

/* What a command runs: a session over a model (kiln_session, which builds
 * in memory or uses the engine cache), or an execution context over a
 * loaded engine. */
typedef struct kc_runner {
    kiln_session *session;
    kiln_context *context;
    const kiln_engine *engine; /* borrowed, with context */
    double create_ms;          /* time to create the session or the context */
} kc_runner;

/* Create the runner for what `l` loaded: a session with `threads` (and the
 * session option "cache_dir" when cache_dir is non-NULL; "profiling" when
 * asked), or a context of the engine (`threads` must then be 0: the engine
 * runs with the thread count it was built with).  Prints one line and
 * returns false with *exit_code set on failure. */
bool kc_runner_create(const char *cmd, const kc_loaded *l, long long threads, const char *cache_dir, kc_runner *r,
                      int *exit_code);
/* The same with the session's providers: `providers` ("cuda,cpu", or NULL
 * for every usable one; kc_add_providers' fallback), `strict`
 * (--strict-providers), and `shapes` (kc_inputs_profile: the profile of a
 * model with dynamic axes at the shapes it will be fed, so that a GPU plan
 * exists; NULL: none); all apply to a model only. */
bool kc_runner_create_ex(const char *cmd, const kc_loaded *l, long long threads, const char *cache_dir,
                         const char *providers, bool strict, const char *shapes, kc_runner *r, int *exit_code);
void kc_runner_destroy(kc_runner *r);
/* Select optimization profile `profile` (--profile N) of an engine's
 * context; a model's session has none (usage error).  One line printed
 * and false on failure. */
bool kc_runner_set_profile(const char *cmd, kc_runner *r, long long profile, int *exit_code);
/* One run, with kiln_session_run's contract. */
kiln_status kc_runner_run(kc_runner *r, const char *const *in_names, const kiln_tensor *const *ins, size_t n_in,
                          const char *const *out_names, kiln_tensor **outs, size_t n_out);
/* Run on `in`, creating every output (kc_outputs_free).  false with kiln's
 * message in err. */
bool kc_runner_run_all(kc_runner *r, const kc_inputs *in, const kc_io *outs, size_t n_outs, kiln_tensor **results,
                       char *err, size_t errsize);
/* The outputs the command reads: the model's or the engine's (malloc'ed). */
bool kc_loaded_outputs(const kc_loaded *l, kc_io **out, size_t *n);
/* An engine's inputs or outputs as kc_io (dim_names NULL). */
bool kc_engine_io(const kiln_engine *e, bool outputs, kc_io **out, size_t *n);

/* Warm up, then time runs of `r` on `in`.  The first run creates the
 * output tensors; later runs write into them.  false with kiln's message. */
bool kc_time_runs(kc_runner *r, const kc_inputs *in, const kc_io *outs, size_t n_outs, const kc_timing *t,
                  kc_timed *res, char *err, size_t errsize);

/* Latency statistics in milliseconds; percentiles are nearest-rank. */
typedef struct kc_latency {
    size_t n;
    double min, max, mean, median, p90, p95, p99, stddev;
    double cv; /* stddev / mean */
} kc_latency;
void kc_latency_stats(const double *ms, size_t n, kc_latency *s);

/* CPU model from /proc/cpuinfo ("unknown" when absent). */
char *kc_cpu_model(char *buf, size_t size);
/* Cores online. */
int kc_cpu_cores(void);
/* Peak resident set size of this process in bytes (getrusage). */
uint64_t kc_peak_rss(void);

/* The measured FP32 FMA peak of level `isa` ("ref", "avx2", "avx512"; NULL:
 * the level in use) on `threads` threads (kiln_cpu_peak_gflops); false when
 * it cannot be measured here. */
bool kc_peak_for(const char *isa, int threads, double *gflops);
/* kiln sysinfo's report (also kiln bench --peak): the CPU, its ISA levels
 * and the measured peak per level on 1 and `threads` threads (0: one per
 * core), as text or JSON on stdout; returns the exit code. */
int kc_sysinfo_report(const char *cmd, bool json, int threads);

#endif
