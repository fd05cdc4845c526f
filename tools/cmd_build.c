/* kiln build MODEL -o FILE.kiln: optimize a model into an engine file
 * (TensorRT's builder): passes, partition over providers, tactics timed on
 * the profile's shapes, memory plan; prints a summary or, with --verbose,
 * the build log. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "json.h"

static const kc_opt kc_build_opts[] = {
    {"-o", KC_OPT_REQUIRED, "FILE", "write the engine to FILE (same as --output)"},
    {"--output", KC_OPT_REQUIRED, "FILE", "write the engine to FILE"},
    {"--providers", KC_OPT_REQUIRED, "LIST", "providers in preference order (default: every usable one, cuda first)"},
    {"--strict-providers", KC_OPT_NONE, NULL, "fail when a node falls back to a later provider"},
    {"--threads", KC_OPT_REQUIRED, "N", "CPU threads to time tactics with and to run with (0: one per core)"},
    {"--fp16", KC_OPT_NONE, NULL, "allow FP16 kernels where a provider has them"},
    {"--bf16", KC_OPT_NONE, NULL, "allow BF16 kernels where a provider has them"},
    {"--int8", KC_OPT_NONE, NULL, "allow INT8 kernels (refused until calibration lands)"},
    {"--tf32", KC_OPT_NONE, NULL, "allow TF32 math where a provider has it"},
    {"--best", KC_OPT_NONE, NULL, "allow every precision kiln can build"},
    {"--strongly-typed", KC_OPT_NONE, NULL, "keep the model's types exactly (no precision change)"},
    {"--minShapes", KC_OPT_REQUIRED, "SPEC", "min shapes of the current profile: NAME:1x3x224x224,..."},
    {"--optShapes", KC_OPT_REQUIRED, "SPEC", "opt shapes (tactics are timed at these)"},
    {"--maxShapes", KC_OPT_REQUIRED, "SPEC", "max shapes (the arena is sized for these)"},
    {"--shapes", KC_OPT_REQUIRED, "SPEC", "min = opt = max for the current profile"},
    {"--profile", KC_OPT_NONE, NULL, "start a new optimization profile"},
    {"--workspace", KC_OPT_REQUIRED, "MB", "most scratch memory a tactic may use, in MiB (suffix K/M/G allowed)"},
    {"--timing-cache", KC_OPT_REQUIRED, "FILE", "read tactic timings from FILE and write them back"},
    {"--disable-pass", KC_OPT_REQUIRED, "NAME", "do not run optimization pass NAME (repeatable)"},
    {"--pass-limit", KC_OPT_REQUIRED, "N", "stop after N rewrites (to bisect a numerical problem)"},
    {"--tactic", KC_OPT_REQUIRED, "OP=NAME", "force a tactic, e.g. conv=NAME (repeatable)"},
    {"--no-optimize", KC_OPT_NONE, NULL, "run no optimization pass"},
    {"--prepack", KC_OPT_NONE, NULL, "store the CPU layers' packed weights in the engine (else packed at their first run)"},
    {"--layout", KC_OPT_REQUIRED, "nchw|nchwc", "CPU activations of convolutions: nchw (default) or nchwc, blocked by 16 channels through chains of layers"},
    {"--keep-denormals", KC_OPT_NONE, NULL, "run without flush-to-zero: subnormal floats kept (slow on x86; default: flushed)"},
    {"--verbose", KC_OPT_NONE, NULL, "print the build log: passes, partition, tactics and times, arena"},
    {"--json", KC_OPT_REQUIRED, "FILE", "write the summary as JSON to FILE ('-': stdout)"},
    {NULL, KC_OPT_NONE, NULL, NULL}};

void kc_build_help(FILE *f) {
    fputs("usage: kiln build MODEL -o FILE.kiln [FLAGS]\n"
          "\n"
          "Optimize MODEL into an engine and save it: optimization passes (constant\n"
          "folding, BatchNormalization folding, Conv/Gemm + bias + activation and\n"
          "residual fusion, LayerNorm and attention fusion, ...), partition of the\n"
          "nodes over the providers, tactics timed on the profile's opt shapes, and\n"
          "one memory arena per context.  Prints a summary: nodes before and after,\n"
          "providers, precision, arena bytes against the sum of intermediate\n"
          "tensors, build time and engine size.\n"
          "\n"
          "Precision flags ALLOW a lower precision where a provider has kernels for\n"
          "it (TensorRT's meaning); a provider without them keeps FP32 and the build\n"
          "log says so.\n"
          "\n"
          "Optimization profiles (for dynamic axes): --minShapes/--optShapes/--maxShapes\n"
          "fill the current profile; --profile starts a new one.  Without --profile,\n"
          "repeating a flag (a second --minShapes) starts a new profile too.\n"
          "\n"
          "flags:\n",
          f);
    kc_opts_help(f, kc_build_opts, false);
    fputs("  --help                         show this help\n"
          "\n"
          "examples:\n"
          "  kiln build resnet50.onnx -o resnet50.kiln --verbose\n"
          "  kiln build model.onnx -o model.kiln --minShapes input:1x3x224x224 \\\n"
          "      --optShapes input:8x3x224x224 --maxShapes input:32x3x224x224\n"
          "\n"
          "exit status: 0 ok, 1 the model could not be loaded or built, 2 usage error\n",
          f);
}

/* Append `v` to the comma-separated list *dst (malloc'ed); false on OOM. */
static bool kc_append(char **dst, const char *v) {
    size_t old = *dst ? strlen(*dst) : 0, add = strlen(v);
    char *n = realloc(*dst, old + add + 2);
    if (!n) return false;
    if (old) n[old++] = ',';
    memcpy(n + old, v, add + 1);
    *dst = n;
    return true;
}

/* Profiles being collected from the command line, in order. */
typedef struct kc_profiles {
    char *spec[KC_MAX_PROFILES][3]; /* malloc'ed */
    size_t n;
    bool explicit_mode; /* --profile was given: only it starts a profile */
} kc_profiles;

/* Release the specs collected in p. */
static void kc_profiles_free(kc_profiles *p) {
    for (size_t i = 0; i < KC_MAX_PROFILES; i++)
        for (int k = 0; k < 3; k++) free(p->spec[i][k]);
}

/* Add spec for field k (0 min, 1 opt, 2 max; 3 all) to the current profile. */
static bool kc_profiles_add(const char *cmd, kc_profiles *p, int k, const char *v, int *code) {
    bool need_new = p->n == 0;
    if (!need_new && !p->explicit_mode) {
        for (int q = 0; q < 3; q++)
            if ((k == 3 || k == q) && p->spec[p->n - 1][q]) need_new = true;
    }
    if (need_new) {
        if (p->n == KC_MAX_PROFILES) {
            *code = kc_fail(KC_EXIT_USAGE, cmd, "at most %d optimization profiles", KC_MAX_PROFILES);
            return false;
        }
        p->n++;
    }
    for (int q = 0; q < 3; q++)
        if ((k == 3 || k == q) && !kc_append(&p->spec[p->n - 1][q], v)) {
            *code = kc_fail(KC_EXIT_MODEL, cmd, "out of memory");
            return false;
        }
    return true;
}

/* A number from an engine fact, formatted as bytes; "?" when absent. */
static const char *kc_fact_bytes(const kiln_engine *e, const char *key, char *buf, size_t size) {
    long long v = kc_engine_num(e, key);
    if (v < 0) return snprintf(buf, size, "?"), buf;
    return kc_fmt_bytes((uint64_t)v, buf, size);
}

/* Write the lines of a multi-line fact as a JSON array. */
static void kc_json_lines(kj_writer *w, const char *text) {
    kj_array_begin(w);
    for (const char *p = text; p && *p;) {
        size_t len = strcspn(p, "\n");
        if (len) kj_string_n(w, p, len);
        p += len + (p[len] ? 1 : 0);
    }
    kj_array_end(w);
}

/* Print the lines of a multi-line fact, each indented. */
static void kc_print_lines(const char *indent, const char *text) {
    for (const char *p = text; p && *p;) {
        size_t len = strcspn(p, "\n");
        if (len) printf("%s%.*s\n", indent, (int)len, p);
        p += len + (p[len] ? 1 : 0);
    }
}

/* Number of rewrites in the "passes" fact: its lines but the driver's own
 * ("passes: 26 rewrites, ...", "passes stopped at ..."). */
static size_t kc_count_rewrites(const char *text) {
    size_t n = 0;
    for (const char *p = text; p && *p;) {
        size_t len = strcspn(p, "\n");
        n += len > 0 && strncmp(p, "passes", 6) != 0;
        p += len + (p[len] ? 1 : 0);
    }
    return n;
}

/* Print the driver's own lines of the "passes" fact, indented. */
static void kc_print_pass_summary(const char *text) {
    for (const char *p = text; p && *p;) {
        size_t len = strcspn(p, "\n");
        if (len && strncmp(p, "passes", 6) == 0) printf("  %.*s\n", (int)len, p);
        p += len + (p[len] ? 1 : 0);
    }
}

/* The summary as JSON. */
static void kc_build_json(FILE *f, const char *model, uint64_t model_bytes, const char *out, uint64_t engine_bytes,
                          const kiln_engine *e, unsigned requested, double load_ms, double build_ms, double save_ms,
                          const kc_build_log *log) {
    char buf[64];
    kj_writer w;
    kj_init(&w, f);
    kj_object_begin(&w);
    kj_key(&w, "model");
    kj_string(&w, model);
    kj_key(&w, "model_bytes");
    kj_uint(&w, model_bytes);
    kj_key(&w, "engine");
    kj_string(&w, out);
    kj_key(&w, "engine_bytes");
    kj_uint(&w, engine_bytes);
    kj_key(&w, "kiln_version");
    kj_string(&w, kiln_version());
    static const char *const facts[] = {"format_version", "model_sha256", "providers", "cpu_features", "precision",
                                        "threads", "profiles"};
    for (size_t i = 0; i < sizeof facts / sizeof facts[0]; i++) {
        /* Whole numbers ("threads", "profiles", "format_version") as JSON numbers. */
        const char *v = kc_engine_str(e, facts[i], NULL);
        char *end = NULL;
        long long num = v ? strtoll(v, &end, 10) : 0;
        kj_key(&w, facts[i]);
        if (v && *v && end != v && !*end && strcmp(facts[i], "model_sha256") != 0) kj_int(&w, num);
        else kj_string(&w, v);
    }
    kj_key(&w, "precision_allowed");
    kj_string(&w, kc_fmt_precision(requested, buf, sizeof buf));
    static const char *const nums[] = {"nodes_before", "nodes_after", "arena_bytes", "intermediate_bytes"};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        long long v = kc_engine_num(e, nums[i]);
        kj_key(&w, nums[i]);
        if (v >= 0) kj_int(&w, v);
        else kj_null(&w);
    }
    size_t layers = 0;
    kj_key(&w, "layers");
    if (kiln_engine_layer_count(e, &layers) == KILN_OK) kj_uint(&w, layers);
    else kj_null(&w);
    kj_key(&w, "model_load_ms");
    kj_double(&w, load_ms);
    kj_key(&w, "build_ms");
    kj_double(&w, build_ms);
    kj_key(&w, "save_ms");
    kj_double(&w, save_ms);
    kj_key(&w, "partition");
    kc_json_lines(&w, kc_engine_str(e, "partition", ""));
    kj_key(&w, "passes");
    kc_json_lines(&w, kc_engine_str(e, "passes", ""));
    kj_key(&w, "warnings");
    kj_uint(&w, log->warnings);
    kj_key(&w, "fp32_note");
    kj_string(&w, log->fp32_note[0] ? log->fp32_note : NULL);
    kj_object_end(&w);
    kj_finish(&w);
}

int kc_cmd_build(int argc, char **argv) {
    const char *cmd = "build";
    kc_build_cfg cfg = {.log_level = KILN_LOG_DEBUG};
    kc_profiles profiles = {.n = 0};
    const char *out = NULL, *json_path = NULL, *model_path = NULL, *threads_s = NULL, *workspace_s = NULL,
               *pass_limit_s = NULL;
    char *tactics = NULL;
    bool verbose = false;
    int code = KC_EXIT_OK;
    kc_args a;
    const kc_opt *o;
    const char *v;
    char word[256];
    kc_arg_kind kind;
    /* --profile anywhere switches to explicit profiles. */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) break;
        else if (strcmp(argv[i], "--profile") == 0) profiles.explicit_mode = true;
    kc_args_init(&a, argc, argv, kc_build_opts);
    while ((kind = kc_args_next(&a, &o, &v, word, sizeof word)) != KC_ARG_END) {
        switch (kind) {
        case KC_ARG_HELP:
            kc_build_help(stdout);
            code = kc_finish_stdout(KC_EXIT_OK);
            goto done;
        case KC_ARG_UNKNOWN:
        case KC_ARG_MISSING_VALUE:
        case KC_ARG_UNEXPECTED_VALUE:
            code = kc_args_usage_error(kind, kc_build_opts, o, word, cmd, "build");
            goto done;
        case KC_ARG_POSITIONAL:
            if (model_path) {
                code = kc_fail(KC_EXIT_USAGE, cmd, "unexpected argument '%s' after MODEL '%s' (one model at a time)",
                               v, model_path);
                goto done;
            }
            model_path = v;
            continue;
        case KC_ARG_FLAG:
        case KC_ARG_END:
            break;
        }
        const char *n = o->name;
        if (!strcmp(n, "-o") || !strcmp(n, "--output")) out = v;
        else if (!strcmp(n, "--providers")) cfg.providers = v;
        else if (!strcmp(n, "--strict-providers")) cfg.strict_providers = true;
        else if (!strcmp(n, "--threads")) threads_s = v;
        else if (!strcmp(n, "--fp16")) cfg.precision |= KILN_PRECISION_FP16;
        else if (!strcmp(n, "--bf16")) cfg.precision |= KILN_PRECISION_BF16;
        else if (!strcmp(n, "--int8")) cfg.precision |= KILN_PRECISION_INT8;
        else if (!strcmp(n, "--tf32")) cfg.precision |= KILN_PRECISION_TF32;
        else if (!strcmp(n, "--strongly-typed")) cfg.precision |= KILN_PRECISION_STRONGLY_TYPED;
        else if (!strcmp(n, "--best")) cfg.best = true;
        else if (!strcmp(n, "--profile")) {
            if (profiles.n == KC_MAX_PROFILES) {
                code = kc_fail(KC_EXIT_USAGE, cmd, "at most %d optimization profiles", KC_MAX_PROFILES);
                goto done;
            }
            profiles.n++;
        } else if (!strcmp(n, "--minShapes") || !strcmp(n, "--optShapes") || !strcmp(n, "--maxShapes") ||
                   !strcmp(n, "--shapes")) {
            int k = n[2] == 'm' && n[3] == 'i' ? 0 : n[2] == 'o' ? 1 : n[2] == 'm' ? 2 : 3;
            if (!kc_profiles_add(cmd, &profiles, k, v, &code)) goto done;
        } else if (!strcmp(n, "--workspace")) workspace_s = v;
        else if (!strcmp(n, "--timing-cache")) cfg.timing_cache = v;
        else if (!strcmp(n, "--disable-pass")) {
            if (cfg.n_disable == sizeof cfg.disable_pass / sizeof cfg.disable_pass[0]) {
                code = kc_fail(KC_EXIT_USAGE, cmd, "--disable-pass given too many times");
                goto done;
            }
            cfg.disable_pass[cfg.n_disable++] = v;
        } else if (!strcmp(n, "--pass-limit")) pass_limit_s = v;
        else if (!strcmp(n, "--tactic")) {
            if (!kc_append(&tactics, v)) {
                code = kc_fail(KC_EXIT_MODEL, cmd, "out of memory");
                goto done;
            }
        } else if (!strcmp(n, "--no-optimize")) cfg.no_optimize = true;
        else if (!strcmp(n, "--prepack")) cfg.prepack = true;
        else if (!strcmp(n, "--keep-denormals")) cfg.keep_denormals = true;
        else if (!strcmp(n, "--layout")) cfg.layout = v;
        else if (!strcmp(n, "--verbose")) verbose = true;
        else if (!strcmp(n, "--json")) json_path = v;
    }
    if (!model_path) {
        code = kc_fail(KC_EXIT_USAGE, cmd, "missing MODEL argument (usage: kiln build MODEL -o FILE.kiln; try 'kiln "
                       "help build')");
        goto done;
    }
    if (!out) {
        code = kc_fail(KC_EXIT_USAGE, cmd, "missing -o FILE.kiln (where to write the engine)");
        goto done;
    }
    long long threads = 0, pass_limit = 0;
    if ((threads_s && !kc_parse_int(cmd, "--threads", threads_s, 0, 4096, &threads, &code)) ||
        (pass_limit_s && !kc_parse_int(cmd, "--pass-limit", pass_limit_s, 0, 1000000000, &pass_limit, &code)))
        goto done;
    cfg.threads = threads;
    cfg.pass_limit = pass_limit_s;
    cfg.tactic = tactics;
    if (workspace_s && !kc_parse_size(workspace_s, 1ull << 20, &cfg.workspace)) {
        code = kc_fail(KC_EXIT_USAGE, cmd, "--workspace: '%s' is not a size in MiB (e.g. 1024, 512M, 2G)", workspace_s);
        goto done;
    }
    for (size_t i = 0; i < profiles.n; i++) {
        cfg.profiles[i] = (kc_profile_spec){profiles.spec[i][0], profiles.spec[i][1], profiles.spec[i][2]};
        if (!profiles.spec[i][0] && !profiles.spec[i][1] && !profiles.spec[i][2]) {
            code = kc_fail(KC_EXIT_USAGE, cmd, "profile %zu is empty: give --minShapes, --optShapes and --maxShapes "
                           "after --profile", i);
            goto done;
        }
    }
    cfg.n_profiles = profiles.n;

    bool json_stdout = json_path && strcmp(json_path, "-") == 0;
    kc_build_log log = {.cmd = cmd, .verbose = verbose, .out = json_stdout ? stderr : stdout,
                        .bar = isatty(STDERR_FILENO) != 0,
                        .prefix = {"error: ", "warning: ", "", ""}};
    cfg.log = kc_build_log_fn;
    cfg.log_user = &log;
    kc_loaded l;
    kiln_build_options *opts = NULL;
    kiln_engine *engine = NULL;
    if (!kc_load_model(cmd, model_path, &l, &code)) goto done;
    if (!kc_build_options_make(cmd, &cfg, l.model, &opts, &code)) goto free_model;
    double t0 = kc_now();
    kiln_status s = kiln_build(l.model, opts, &engine);
    double build_ms = (kc_now() - t0) * 1e3;
    kc_build_log_done(&log);
    if (s != KILN_OK) {
        code = kc_fail_kiln(KC_EXIT_MODEL, cmd, model_path);
        goto free_model;
    }
    t0 = kc_now();
    if (kiln_engine_save(engine, out) != KILN_OK) {
        code = kc_fail(KC_EXIT_MODEL, cmd, "cannot write the engine: %s", kiln_last_error());
        goto free_model;
    }
    double save_ms = (kc_now() - t0) * 1e3;
    struct stat st;
    uint64_t engine_bytes = stat(out, &st) == 0 ? (uint64_t)st.st_size : 0;
    const char *shown = strcmp(model_path, "-") == 0 ? "<stdin>" : model_path;
    unsigned allowed = cfg.precision | (cfg.best ? KILN_PRECISION_FP16 | KILN_PRECISION_BF16 | KILN_PRECISION_TF32 : 0);
    if (json_path) {
        FILE *jf = json_stdout ? stdout : fopen(json_path, "w");
        if (!jf) {
            code = kc_fail(KC_EXIT_MODEL, cmd, "--json: cannot create '%s': %s", json_path, strerror(errno));
            goto free_model;
        }
        kc_build_json(jf, shown, l.file_size, out, engine_bytes, engine, allowed, l.load_ms, build_ms, save_ms, &log);
        if (!json_stdout && (ferror(jf) | (fclose(jf) != 0))) {
            code = kc_fail(KC_EXIT_MODEL, cmd, "--json: cannot write '%s': %s", json_path, strerror(errno));
            goto free_model;
        }
        if (json_stdout) goto free_model;
    }
    char b1[1024], b2[64], b3[64];
    long long before = kc_engine_num(engine, "nodes_before"), after = kc_engine_num(engine, "nodes_after");
    long long arena = kc_engine_num(engine, "arena_bytes"), inter = kc_engine_num(engine, "intermediate_bytes");
    size_t layers = 0;
    kiln_engine_layer_count(engine, &layers);
    printf("Model: %s (%s, loaded in %.1f ms)\n", kc_fmt_name(shown, strlen(shown), b1, sizeof b1),
           kc_fmt_bytes(l.file_size, b2, sizeof b2), l.load_ms);
    printf("Nodes: %lld before, %lld after optimization (%zu layers)\n", before, after, layers);
    printf("Rewrites: %zu%s\n", kc_count_rewrites(kc_engine_str(engine, "passes", "")),
           verbose ? "" : " (listed with --verbose)");
    kc_print_pass_summary(kc_engine_str(engine, "passes", ""));
    printf("Providers: %s\n", kc_engine_str(engine, "providers", "?"));
    kc_print_lines("  ", kc_engine_str(engine, "partition", ""));
    printf("CPU features used: %s\n", kc_engine_str(engine, "cpu_features", "none"));
    printf("Precision: %s (allowed: %s)\n", kc_engine_str(engine, "precision", "?"),
           kc_fmt_precision(allowed, b2, sizeof b2));
    if (log.fp32_note[0]) printf("  %s\n", log.fp32_note);
    const char *prof = kc_engine_str(engine, "profiles", NULL);
    if (prof && strchr(prof, '\n')) {
        printf("Profiles:\n");
        kc_print_lines("  ", prof);
    } else if (prof && *prof) {
        printf("Profiles: %s\n", prof);
    }
    for (size_t i = 0; i < profiles.n; i++)
        printf("  profile %zu: min %s, opt %s, max %s\n", i, profiles.spec[i][0] ? profiles.spec[i][0] : "-",
               profiles.spec[i][1] ? profiles.spec[i][1] : "-", profiles.spec[i][2] ? profiles.spec[i][2] : "-");
    if (arena >= 0 && inter > 0)
        printf("Arena: %s for intermediate tensors totalling %s (%.1f%%)\n", kc_fact_bytes(engine, "arena_bytes", b2, sizeof b2),
               kc_fact_bytes(engine, "intermediate_bytes", b3, sizeof b3), 100.0 * (double)arena / (double)inter);
    else
        printf("Arena: %s (intermediate tensors: %s)\n", kc_fact_bytes(engine, "arena_bytes", b2, sizeof b2),
               kc_fact_bytes(engine, "intermediate_bytes", b3, sizeof b3));
    printf("Build time: %.3f s\n", build_ms / 1e3);
    printf("Engine: %s (%s, written in %.1f ms)\n", kc_fmt_name(out, strlen(out), b1, sizeof b1),
           kc_fmt_bytes(engine_bytes, b2, sizeof b2), save_ms);
free_model:
    kc_build_log_done(&log);
    kiln_engine_destroy(engine);
    kiln_build_options_destroy(opts);
    kc_loaded_free(&l);
done:
    kc_profiles_free(&profiles);
    free(tactics);
    return kc_finish_stdout(code);
}
