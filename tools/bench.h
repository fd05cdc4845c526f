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
} kc_timing;

/* What the loop measured. */
typedef struct kc_timed {
    double *ms;          /* latency of each measured run, malloc'ed */
    size_t n;
    double total_s;      /* wall time of the measured runs */
    size_t warmup_runs;
    double warmup_s;
    kiln_tensor **outputs; /* with keep_outputs: n_outs tensors (kc_outputs_free + free) */
} kc_timed;

/* Warm up, then time runs of `s` on `in`.  The first run creates the
 * output tensors; later runs write into them.  false with kiln's message. */
bool kc_time_runs(kiln_session *s, const kc_inputs *in, const kc_io *outs, size_t n_outs, const kc_timing *t,
                  kc_timed *r, char *err, size_t errsize);

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

#endif
