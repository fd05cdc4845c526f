/* kiln profile MODEL|ENGINE: per-layer (per fused layer) times of a run,
 * sorted by total time, with the share of each, its op, provider, tactic
 * and the model nodes it absorbed; --export writes them as JSON. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "bench.h"
#include "cli.h"
#include "inputs.h"
#include "json.h"

/* qsort: larger total first, then by index. */
static int kc_cmp_layer(const void *a, const void *b) {
    const kc_layer_time *x = a, *y = b;
    if (x->total_ms != y->total_ms) return x->total_ms < y->total_ms ? 1 : -1;
    return x->index < y->index ? -1 : x->index > y->index;
}

bool kc_layer_times(const kiln_engine *e, kiln_context *const *ctx, size_t n_ctx, kc_layer_time **out, size_t *n,
                    double *sum_ms, char *err, size_t errsize) {
    size_t count = 0;
    *sum_ms = 0;
    if (kiln_engine_layer_count(e, &count) != KILN_OK) {
        snprintf(err, errsize, "%s", kiln_last_error());
        return false;
    }
    kc_layer_time *t = calloc(count + 1, sizeof *t);
    if (!t) {
        snprintf(err, errsize, "out of memory");
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        kc_layer_time *x = &t[i];
        x->index = i;
        if (kiln_engine_layer_info(e, i, &x->name, &x->op, &x->provider, &x->tactic, &x->fused_from) != KILN_OK) {
            snprintf(err, errsize, "%s", kiln_last_error());
            free(t);
            return false;
        }
        if (n_ctx && kiln_context_layer_kernel(ctx[0], i, x->kernel, sizeof x->kernel) != KILN_OK) {
            snprintf(err, errsize, "%s", kiln_last_error());
            free(t);
            return false;
        }
        for (size_t c = 0; c < n_ctx; c++) {
            double ms = 0;
            uint64_t runs = 0;
            if (kiln_context_layer_time(ctx[c], i, &ms, &runs) != KILN_OK) {
                snprintf(err, errsize, "%s", kiln_last_error());
                free(t);
                return false;
            }
            x->total_ms += ms;
            x->runs += runs;
        }
        *sum_ms += x->total_ms;
    }
    qsort(t, count, sizeof *t, kc_cmp_layer);
    *out = t;
    *n = count;
    return true;
}

/* s, or "-" for NULL or empty. */
static const char *kc_or_dash(const char *s) { return s && *s ? s : "-"; }

/* The layer's kernel (kiln_context_layer_kernel), else its tactic. */
static const char *kc_kernel_of(const kc_layer_time *x) { return x->kernel[0] ? x->kernel : kc_or_dash(x->tactic); }

void kc_layer_times_print(FILE *f, const char *prefix, const kc_layer_time *t, size_t n, double sum_ms) {
    char name[256], fused[1024];
    int kw = 16; /* the kernel column as wide as its longest entry */
    for (size_t i = 0; i < n; i++) {
        int l = (int)strlen(kc_kernel_of(&t[i]));
        if (l > kw) kw = l < 72 ? l : 72;
    }
    fprintf(f, "%s%5s %11s %10s %7s  %-22s %-8s %-*s %s\n", prefix, "rank", "total ms", "avg ms", "%", "op",
            "provider", kw, "tactic / kernel", "layer (fused from)");
    for (size_t i = 0; i < n; i++) {
        const kc_layer_time *x = &t[i];
        double avg = x->runs ? x->total_ms / (double)x->runs : 0;
        const char *nm = kc_or_dash(x->name), *ff = kc_or_dash(x->fused_from);
        kc_fmt_name(nm, strlen(nm), name, sizeof name);
        kc_fmt_name(ff, strlen(ff), fused, sizeof fused);
        fprintf(f, "%s%5zu %11.4f %10.4f %6.2f%%  %-22s %-8s %-*s %s", prefix, i + 1, x->total_ms, avg,
                sum_ms > 0 ? 100.0 * x->total_ms / sum_ms : 0.0, kc_or_dash(x->op), kc_or_dash(x->provider), kw,
                kc_kernel_of(x), name);
        if (x->fused_from && *x->fused_from && strcmp(x->fused_from, nm) != 0) fprintf(f, " (%s)", fused);
        fputc('\n', f);
    }
    uint64_t runs = n ? t[0].runs : 0;
    fprintf(f, "%s%5s %11.4f %10.4f %6.2f%%  (%zu layers, %llu profiled run%s)\n", prefix, "total", sum_ms,
            runs ? sum_ms / (double)runs : 0.0, 100.0, n, (unsigned long long)runs, runs == 1 ? "" : "s");
}

/* The time per op type (and provider), largest first: where a model's time
 * goes when no single layer stands out. */
void kc_layer_times_by_op(FILE *f, const kc_layer_time *t, size_t n, double sum_ms) {
    typedef struct {
        const char *op, *provider;
        double ms;
        size_t layers;
    } kc_op_sum;
    kc_op_sum *s = calloc(n + 1, sizeof *s);
    size_t ns = 0;
    if (!s) return;
    for (size_t i = 0; i < n; i++) {
        const char *op = kc_or_dash(t[i].op), *pv = kc_or_dash(t[i].provider);
        size_t j = 0;
        while (j < ns && (strcmp(s[j].op, op) != 0 || strcmp(s[j].provider, pv) != 0)) j++;
        if (j == ns) s[ns++] = (kc_op_sum){.op = op, .provider = pv};
        s[j].ms += t[i].total_ms;
        s[j].layers++;
    }
    for (size_t i = 1; i < ns; i++) /* insertion sort, larger first */
        for (size_t j = i; j > 0 && s[j].ms > s[j - 1].ms; j--) {
            kc_op_sum x = s[j];
            s[j] = s[j - 1];
            s[j - 1] = x;
        }
    uint64_t runs = n ? t[0].runs : 0;
    fprintf(f, "\nBy op:\n%-22s %-8s %7s %11s %7s\n", "op", "provider", "layers", "ms per run", "%");
    for (size_t i = 0; i < ns; i++)
        fprintf(f, "%-22s %-8s %7zu %11.4f %6.2f%%\n", s[i].op, s[i].provider, s[i].layers,
                runs ? s[i].ms / (double)runs : 0.0, sum_ms > 0 ? 100.0 * s[i].ms / sum_ms : 0.0);
    free(s);
}

void kc_layer_times_json(struct kj_writer *w, const kc_layer_time *t, size_t n, double sum_ms, bool trtexec) {
    kj_array_begin(w);
    if (trtexec) {
        kj_object_begin(w);
        kj_key(w, "count");
        kj_uint(w, n ? t[0].runs : 0);
        kj_object_end(w);
    }
    for (size_t i = 0; i < n; i++) {
        const kc_layer_time *x = &t[i];
        kj_object_begin(w);
        kj_key(w, "name");
        kj_string(w, x->name);
        kj_key(w, trtexec ? "timeMs" : "total_ms");
        kj_double(w, x->total_ms);
        kj_key(w, trtexec ? "averageMs" : "average_ms");
        kj_double(w, x->runs ? x->total_ms / (double)x->runs : 0);
        kj_key(w, "percentage");
        kj_double(w, sum_ms > 0 ? 100.0 * x->total_ms / sum_ms : 0);
        kj_key(w, "runs");
        kj_uint(w, x->runs);
        kj_key(w, "index");
        kj_uint(w, x->index);
        kj_key(w, "op");
        kj_string(w, x->op);
        kj_key(w, "provider");
        kj_string(w, x->provider);
        kj_key(w, "tactic");
        kj_string(w, x->tactic);
        kj_key(w, "kernel");
        kj_string(w, kc_kernel_of(x));
        kj_key(w, trtexec ? "fusedFrom" : "fused_from");
        kj_string(w, x->fused_from);
        kj_object_end(w);
    }
    kj_array_end(w);
}

static const kc_opt kc_profile_opts[] = {
    {"--iterations", KC_OPT_REQUIRED, "N", "profiled runs (default 10), after one warm-up run"},
    {"--warmup", KC_OPT_REQUIRED, "N", "unprofiled warm-up runs first (default 1)"},
    {"--export", KC_OPT_REQUIRED, "FILE.json", "write the per-layer times as JSON ('-': stdout)"},
    {"--batch", KC_OPT_REQUIRED, "N", "size of the dynamic first axis of the random inputs (default 1)"},
    {"--shapes", KC_OPT_REQUIRED, "SPEC", "shapes of inputs with dynamic axes: NAME:1x3x224x224,..."},
    {"--input", KC_OPT_REQUIRED, "FILE", "an input file or image, as in 'kiln run' (repeatable)"},
    {"--seed", KC_OPT_REQUIRED, "N", "seed of the random inputs (default 0)"},
    {"--threads", KC_OPT_REQUIRED, "N", "CPU threads of the build (MODEL only; default 0: one per core)"},
    {"--top", KC_OPT_REQUIRED, "N", "print only the N slowest layers (the JSON has all)"},
    {"--profile", KC_OPT_REQUIRED, "N", "optimization profile of the engine to run (default 0)"},
    {"--providers", KC_OPT_REQUIRED, "LIST", "MODEL: providers in preference order (default: every usable one, cuda first)"},
    {"--strict-providers", KC_OPT_NONE, NULL, "MODEL: fail when a node falls back to a later provider"},
    {"--fp16", KC_OPT_NONE, NULL, "MODEL: allow FP16 kernels where a provider has them"},
    {"--bf16", KC_OPT_NONE, NULL, "MODEL: allow BF16 kernels where a provider has them"},
    {"--tf32", KC_OPT_NONE, NULL, "MODEL: allow TF32 math where a provider has it"},
    {"--best", KC_OPT_NONE, NULL, "MODEL: allow every precision kiln can build"},
    {NULL, KC_OPT_NONE, NULL, NULL}};

void kc_profile_help(FILE *f) {
    fputs("usage: kiln profile MODEL|ENGINE [--iterations N] [--export FILE.json]\n"
          "                    [--batch N | --shapes SPEC] [FLAGS]\n"
          "\n"
          "Run MODEL (built in memory, with the build flags below, its tactics timed at\n"
          "the inputs' shapes) or an engine file\n"
          "with per-layer timing on, and print each layer (a node after fusion) with\n"
          "its total and average time, its share of the total, its op, provider and\n"
          "tactic, and the model nodes it absorbed, slowest first.  Inputs are seeded\n"
          "random values unless given with --input.\n"
          "\n"
          "flags:\n",
          f);
    kc_opts_help(f, kc_profile_opts, false);
    fputs("  --help                         show this help\n"
          "\n"
          "exit status: 0 ok, 1 the model could not be loaded, built or run, 2 usage error\n",
          f);
}

int kc_cmd_profile(int argc, char **argv) {
    const char *cmd = "profile";
    const char *path = NULL, *iters_s = NULL, *warm_s = NULL, *export_path = NULL, *batch_s = NULL, *shapes = NULL,
               *seed_s = NULL, *threads_s = NULL, *top_s = NULL, *profile_s = NULL;
    kc_build_cfg cfg = {.threads = 0};
    bool build_flags = false; /* a flag that applies to a MODEL only */
    kc_list files = {.n = 0};
    int code = KC_EXIT_OK;
    kc_args a;
    const kc_opt *o;
    const char *v;
    char word[256];
    kc_arg_kind kind;
    kc_args_init(&a, argc, argv, kc_profile_opts);
    while ((kind = kc_args_next(&a, &o, &v, word, sizeof word)) != KC_ARG_END) {
        if (kind == KC_ARG_HELP) {
            kc_profile_help(stdout);
            return kc_finish_stdout(KC_EXIT_OK);
        }
        if (kind == KC_ARG_UNKNOWN || kind == KC_ARG_MISSING_VALUE || kind == KC_ARG_UNEXPECTED_VALUE)
            return kc_args_usage_error(kind, kc_profile_opts, o, word, cmd, "profile");
        if (kind == KC_ARG_POSITIONAL) {
            if (path)
                return kc_fail(KC_EXIT_USAGE, cmd, "unexpected argument '%s' after MODEL '%s' (one model at a time)", v,
                               path);
            path = v;
            continue;
        }
        const char *n = o->name;
        if (!strcmp(n, "--iterations")) iters_s = v;
        else if (!strcmp(n, "--warmup")) warm_s = v;
        else if (!strcmp(n, "--export")) export_path = v;
        else if (!strcmp(n, "--batch")) batch_s = v;
        else if (!strcmp(n, "--shapes")) shapes = v;
        else if (!strcmp(n, "--seed")) seed_s = v;
        else if (!strcmp(n, "--threads")) threads_s = v;
        else if (!strcmp(n, "--top")) top_s = v;
        else if (!strcmp(n, "--profile")) profile_s = v;
        else if (!strcmp(n, "--providers")) cfg.providers = v, build_flags = true;
        else if (!strcmp(n, "--strict-providers")) cfg.strict_providers = build_flags = true;
        else if (!strcmp(n, "--fp16")) cfg.precision |= KILN_PRECISION_FP16, build_flags = true;
        else if (!strcmp(n, "--bf16")) cfg.precision |= KILN_PRECISION_BF16, build_flags = true;
        else if (!strcmp(n, "--tf32")) cfg.precision |= KILN_PRECISION_TF32, build_flags = true;
        else if (!strcmp(n, "--best")) cfg.best = build_flags = true;
        else if (!strcmp(n, "--input")) {
            if (files.n == KC_LIST_MAX) return kc_fail(KC_EXIT_USAGE, cmd, "--input given too many times");
            files.items[files.n++] = v;
        }
    }
    if (!path)
        return kc_fail(KC_EXIT_USAGE, cmd, "missing MODEL argument (usage: kiln profile MODEL|ENGINE; try 'kiln help "
                       "profile')");
    long long iterations = 10, warm = 1, batch = 0, seed = 0, threads = 0, top = 0, profile = 0;
    if ((iters_s && !kc_parse_int(cmd, "--iterations", iters_s, 1, 100000000, &iterations, &code)) ||
        (warm_s && !kc_parse_int(cmd, "--warmup", warm_s, 0, 100000000, &warm, &code)) ||
        (batch_s && !kc_parse_int(cmd, "--batch", batch_s, 1, 1 << 20, &batch, &code)) ||
        (seed_s && !kc_parse_int(cmd, "--seed", seed_s, 0, INT64_MAX, &seed, &code)) ||
        (threads_s && !kc_parse_int(cmd, "--threads", threads_s, 0, 4096, &threads, &code)) ||
        (top_s && !kc_parse_int(cmd, "--top", top_s, 1, 1000000000, &top, &code)) ||
        (profile_s && !kc_parse_int(cmd, "--profile", profile_s, 0, 1 << 20, &profile, &code)))
        return code;

    kc_loaded l;
    kiln_build_options *bo = NULL;
    kiln_engine *built = NULL;
    kc_runner runner = {0};
    kc_inputs in = {.image_input = -1};
    kc_io *outs = NULL;
    size_t n_outs = 0, n_layers = 0;
    kiln_tensor **res = NULL;
    kc_layer_time *lt = NULL;
    char err[4096];
    double build_ms = 0;
    if (!kc_load_model_or_engine(cmd, path, &l, &code)) goto done;
    const kiln_engine *engine = l.engine;
    if (engine && (threads || build_flags)) {
        code = kc_fail(KC_EXIT_USAGE, cmd, "%s applies to a model: an engine runs as it was built (kiln build)",
                       threads ? "--threads" : "a build flag (--providers, --fp16, ...)");
        goto done;
    }
    /* An engine with a profile runs at its opt shapes unless told otherwise (as trtexec does). */
    char opt_spec[2048], profile_spec[2048];
    if (l.engine && !shapes && !batch && kc_engine_opt_spec(l.engine, (size_t)profile, opt_spec, sizeof opt_spec))
        shapes = opt_spec;
    kc_input_opts io = {.files = &files, .shape_flag = "--shapes", .shape = shapes, .batch = batch, .random = true,
                        .seed = (uint64_t)seed};
    if (!kc_inputs_prepare(cmd, kc_loaded_inputs(&l), &io, &in, &code)) goto done;
    if (!engine) {
        cfg.threads = threads;
        /* a model with dynamic axes is built for the shapes it is profiled at (tactics timed there) */
        const char *prof = kc_inputs_profile(&in, profile_spec, sizeof profile_spec);
        if (prof) {
            cfg.profiles[0] = (kc_profile_spec){prof, prof, prof};
            cfg.n_profiles = 1;
        }
        if (!kc_build_options_make(cmd, &cfg, l.model, &bo, &code)) goto done;
        double t0 = kc_now();
        if (kiln_build(l.model, bo, &built) != KILN_OK) {
            code = kc_fail_kiln(KC_EXIT_MODEL, cmd, path);
            goto done;
        }
        build_ms = (kc_now() - t0) * 1e3;
        engine = built;
    }
    if (kiln_context_create(engine, &runner.context) != KILN_OK) {
        code = kc_fail(KC_EXIT_MODEL, cmd, "cannot create an execution context: %s", kiln_last_error());
        goto done;
    }
    runner.engine = engine;
    if (profile_s && !kc_runner_set_profile(cmd, &runner, profile, &code)) goto done;
    if (!kc_engine_io(engine, true, &outs, &n_outs) || !(res = calloc(n_outs + 1, sizeof *res))) {
        code = kc_fail(KC_EXIT_MODEL, cmd, "cannot read the engine's outputs: %s", kiln_last_error());
        goto done;
    }
    const char **in_names = calloc(in.n + 1, sizeof *in_names), **out_names = calloc(n_outs + 1, sizeof *out_names);
    bool ran = in_names && out_names;
    for (size_t i = 0; ran && i < in.n; i++) in_names[i] = in.io[i].name;
    for (size_t i = 0; ran && i < n_outs; i++) out_names[i] = outs[i].name;
    double run_s = 0;
    for (long long i = 0; ran && i < warm + iterations; i++) {
        if (i == warm && kiln_context_set_profiling(runner.context, 1) != KILN_OK) {
            snprintf(err, sizeof err, "%s", kiln_last_error());
            ran = false;
            break;
        }
        double t0 = kc_now();
        if (kc_runner_run(&runner, in_names, (const kiln_tensor *const *)in.tensors, in.n, out_names, res, n_outs) !=
            KILN_OK) {
            snprintf(err, sizeof err, "%s", kiln_last_error());
            ran = false;
        }
        if (i >= warm) run_s += kc_now() - t0;
    }
    if (!in_names || !out_names) snprintf(err, sizeof err, "out of memory");
    free(in_names);
    free(out_names);
    if (!ran) {
        code = kc_fail(KC_EXIT_MODEL, cmd, "%s", err);
        goto done;
    }
    double sum_ms;
    if (!kc_layer_times(engine, &runner.context, 1, &lt, &n_layers, &sum_ms, err, sizeof err)) {
        code = kc_fail(KC_EXIT_MODEL, cmd, "%s", err);
        goto done;
    }
    const char *shown = strcmp(path, "-") == 0 ? "<stdin>" : path;
    if (export_path) {
        bool to_stdout = strcmp(export_path, "-") == 0;
        FILE *jf = to_stdout ? stdout : fopen(export_path, "w");
        if (!jf) {
            code = kc_fail(KC_EXIT_MODEL, cmd, "--export: cannot create '%s': %s", export_path, strerror(errno));
            goto done;
        }
        kj_writer w;
        kj_init(&w, jf);
        kj_object_begin(&w);
        kj_key(&w, l.engine ? "engine" : "model");
        kj_string(&w, shown);
        kj_key(&w, "kiln_version");
        kj_string(&w, kiln_version());
        kj_key(&w, "providers");
        kj_string(&w, kc_engine_str(engine, "providers", NULL));
        kj_key(&w, "inputs");
        kc_inputs_json(&w, &in, false);
        kj_key(&w, "iterations");
        kj_int(&w, iterations);
        kj_key(&w, "run_ms");
        kj_double(&w, run_s * 1e3);
        kj_key(&w, "layers_ms");
        kj_double(&w, sum_ms);
        kj_key(&w, "layers");
        kc_layer_times_json(&w, lt, n_layers, sum_ms, false);
        kj_object_end(&w);
        kj_finish(&w);
        if (!to_stdout && (ferror(jf) | (fclose(jf) != 0))) {
            code = kc_fail(KC_EXIT_MODEL, cmd, "--export: cannot write '%s': %s", export_path, strerror(errno));
            goto done;
        }
        if (to_stdout) goto done;
    }
    char buf[1024];
    printf("%s: %s\n", l.engine ? "Engine" : "Model", kc_fmt_name(shown, strlen(shown), buf, sizeof buf));
    if (!l.engine)
        printf("Built in memory in %.3f s (providers %s, precision %s)\n", build_ms / 1e3,
               kc_engine_str(engine, "providers", "-"), kc_engine_str(engine, "precision", "-"));
    for (size_t i = 0; i < in.n; i++) {
        char type[512];
        printf("Input: '%s' %s, %s\n", kc_fmt_name(in.io[i].name, strlen(in.io[i].name), buf, sizeof buf),
               kc_fmt_tensor(in.tensors[i], type, sizeof type), in.source[i]);
    }
    printf("Profiled %lld run%s (after %lld warm-up run%s): %.3f ms per run, %.3f ms in layers\n\n", iterations,
           iterations == 1 ? "" : "s", warm, warm == 1 ? "" : "s", run_s * 1e3 / (double)iterations,
           sum_ms / (double)iterations);
    kc_layer_times_print(stdout, "", lt, top && (size_t)top < n_layers ? (size_t)top : n_layers, sum_ms);
    if (top && (size_t)top < n_layers) printf("(%zu more layers; --export has them all)\n", n_layers - (size_t)top);
    kc_layer_times_by_op(stdout, lt, n_layers, sum_ms);
    size_t host_layers = 0;
    if (runner.context && kiln_context_device_info(runner.context, NULL, &host_layers, NULL) == KILN_OK && host_layers)
        printf("Warning: %zu layer%s of the GPU plan ran on the host CPU (fallbacks, counted above under their "
               "build provider; kiln build --verbose says why)\n", host_layers, host_layers == 1 ? "" : "s");
    if (export_path) printf("Per-layer times written to %s\n", kc_fmt_name(export_path, strlen(export_path), buf, sizeof buf));
done:
    free(lt);
    kc_outputs_free(res, n_outs);
    free(res);
    free(outs);
    kc_runner_destroy(&runner);
    kc_inputs_free(&in);
    kiln_engine_destroy(built);
    kiln_build_options_destroy(bo);
    kc_loaded_free(&l);
    return kc_finish_stdout(code);
}
