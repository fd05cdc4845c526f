/* kiln compare MODEL --providers cpu[,cuda] --precisions fp32[,fp16]: for
 * each provider and precision, the median latency and the error against
 * the FP32 CPU reference, as one table (like ONNX Runtime's
 * compare_providers tutorial). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "inputs.h"
#include "json.h"

/* Providers and precisions kiln knows, and why one is not available yet. */
static const char *const kc_providers[] = {"cpu", "cuda"};
static const char *const kc_precisions[] = {"fp32", "fp16", "bf16", "int8"};

/* Why provider/precision cannot run in this build, or NULL when it can. */
static const char *kc_unavailable(const char *provider, const char *precision) {
    if (strcmp(provider, "cuda") == 0) {
        size_t n = 0;
        kiln_providers_available(&n);
        for (size_t i = 0; i < n; i++) {
            const char *name = NULL, *reason = NULL;
            int usable = 0;
            if (kiln_provider_info(i, &name, &usable, &reason) == KILN_OK && strcmp(name, "cuda") == 0 && !usable) {
                static char why[320];
                snprintf(why, sizeof why, "unavailable: %s", reason ? reason : "no GPU");
                return why;
            }
        }
        if (strcmp(precision, "fp32") != 0 && strcmp(precision, "fp16") != 0)
            return "unavailable: the cuda provider has fp32 and fp16 kernels only";
        return NULL;
    }
    if (strcmp(precision, "fp32") != 0) return "unavailable: the cpu provider has no reduced-precision kernels yet";
    return NULL;
}

/* One row of the table. */
typedef struct kc_row {
    const char *provider, *precision;
    const char *reason; /* NULL when it ran */
    bool reference;
    bool engine; /* the row of an engine file */
    kc_latency lat;
    double max_abs, rel_l2;
    int64_t top1_same, top1_rows;
    kc_error *per_output;
} kc_row;

/* Split comma-separated `list` into words checked against `known`; false
 * with a message on an unknown or empty word. */
static bool kc_split(const char *flag, const char *list, const char *const *known, size_t n_known,
                     const char **out, size_t *n, int *code) {
    *n = 0;
    for (const char *p = list;;) {
        size_t len = strcspn(p, ",");
        char word[64];
        snprintf(word, sizeof word, "%.*s", (int)(len < 63 ? len : 63), p);
        const char *hit = NULL;
        for (size_t i = 0; i < n_known; i++)
            if (strcmp(word, known[i]) == 0) hit = known[i];
        if (!hit) {
            char all[256];
            size_t pos = 0;
            for (size_t i = 0; i < n_known; i++)
                pos += (size_t)snprintf(all + pos, sizeof all - pos, "%s%s", i ? ", " : "", known[i]);
            const char *hint = *word ? kc_suggest(word, known, n_known) : NULL;
            if (hint)
                *code = kc_fail(KC_EXIT_USAGE, "compare", "%s: unknown name '%s' (did you mean '%s'? known: %s)", flag,
                                word, hint, all);
            else
                *code = kc_fail(KC_EXIT_USAGE, "compare", "%s: unknown name '%s' (known: %s)", flag, word, all);
            return false;
        }
        bool dup = false;
        for (size_t i = 0; i < *n; i++) dup = dup || out[i] == hit;
        if (!dup) out[(*n)++] = hit;
        if (!p[len]) break;
        p += len + 1;
    }
    return true;
}

/* Write the JSON report. */
static void kc_compare_json(FILE *f, const char *path, const kc_inputs *in, const kc_io *outs, size_t n_outs,
                            const kc_row *rows, size_t n_rows, long long threads) {
    kj_writer w;
    kj_init(&w, f);
    kj_object_begin(&w);
    kj_key(&w, "model");
    kj_string(&w, path);
    kj_key(&w, "kiln_version");
    kj_string(&w, kiln_version());
    kj_key(&w, "threads");
    kj_int(&w, threads);
    kj_key(&w, "reference");
    kj_string(&w, "cpu fp32");
    kj_key(&w, "inputs");
    kj_array_begin(&w);
    for (size_t i = 0; i < in->n; i++) {
        char type[512];
        kj_object_begin(&w);
        kj_key(&w, "name");
        kj_string(&w, in->io[i].name);
        kj_key(&w, "type");
        kj_string(&w, kc_fmt_tensor(in->tensors[i], type, sizeof type));
        kj_key(&w, "source");
        kj_string(&w, in->source[i]);
        kj_object_end(&w);
    }
    kj_array_end(&w);
    kj_key(&w, "rows");
    kj_array_begin(&w);
    for (size_t i = 0; i < n_rows; i++) {
        const kc_row *r = &rows[i];
        kj_object_begin(&w);
        kj_key(&w, "provider");
        kj_string(&w, r->provider);
        kj_key(&w, "precision");
        kj_string(&w, r->precision);
        kj_key(&w, "available");
        kj_bool(&w, r->reason == NULL);
        kj_key(&w, "reference");
        kj_bool(&w, r->reference);
        kj_key(&w, "engine");
        kj_bool(&w, r->engine);
        if (r->reason) {
            kj_key(&w, "reason");
            kj_string(&w, r->reason);
            kj_object_end(&w);
            continue;
        }
        kj_key(&w, "runs");
        kj_uint(&w, r->lat.n);
        kj_key(&w, "median_ms");
        kj_double(&w, r->lat.median);
        kj_key(&w, "mean_ms");
        kj_double(&w, r->lat.mean);
        if (r->reference) {
            kj_object_end(&w);
            continue;
        }
        kj_key(&w, "max_abs_error");
        kj_double(&w, r->max_abs);
        kj_key(&w, "rel_l2_error");
        kj_double(&w, r->rel_l2);
        kj_key(&w, "top1_agreement");
        if (r->top1_rows) kj_double(&w, (double)r->top1_same / (double)r->top1_rows);
        else kj_null(&w);
        kj_key(&w, "outputs");
        kj_array_begin(&w);
        for (size_t o = 0; o < n_outs && r->per_output; o++) {
            const kc_error *e = &r->per_output[o];
            kj_object_begin(&w);
            kj_key(&w, "name");
            kj_string(&w, outs[o].name);
            kj_key(&w, "max_abs_error");
            kj_double(&w, e->max_abs);
            kj_key(&w, "rel_l2_error");
            kj_double(&w, e->rel_l2);
            kj_key(&w, "top1_same");
            if (e->top1_rows) kj_int(&w, e->top1_same);
            else kj_null(&w);
            kj_key(&w, "top1_rows");
            if (e->top1_rows) kj_int(&w, e->top1_rows);
            else kj_null(&w);
            kj_object_end(&w);
        }
        kj_array_end(&w);
        kj_object_end(&w);
    }
    kj_array_end(&w);
    kj_object_end(&w);
    kj_finish(&w);
}

/* Time `runner` on `in` and fill row `r` with its latency and its error
 * against the reference outputs `ref`.  false with the message in err. */
static bool kc_compare_row(kc_runner *runner, const kc_inputs *in, const kc_io *outs, size_t n_outs,
                           const kc_timing *timing, kiln_tensor **ref, kc_row *r, char *err, size_t errsize) {
    kc_timed t = {0};
    if (!kc_time_runs(runner, in, outs, n_outs, timing, &t, err, errsize)) return false;
    kc_latency_stats(t.ms, t.n, &r->lat);
    r->per_output = calloc(n_outs + 1, sizeof *r->per_output);
    for (size_t o = 0; o < n_outs && r->per_output; o++) {
        kc_error *e = &r->per_output[o];
        kc_tensor_error(t.outputs[o], ref[o], e);
        if (e->max_abs > r->max_abs || isnan(e->max_abs)) r->max_abs = e->max_abs;
        if (e->rel_l2 > r->rel_l2 || isnan(e->rel_l2)) r->rel_l2 = e->rel_l2;
        r->top1_same += e->top1_same;
        r->top1_rows += e->top1_rows;
    }
    kc_outputs_free(t.outputs, n_outs);
    free(t.outputs);
    free(t.ms);
    return true;
}

/* Create a session for provider/precision on `model`. */
static bool kc_compare_session(const kiln_model *model, const char *provider, const char *precision,
                               long long threads, const char *shapes, kiln_session **out) {
    kiln_session_options *o = NULL;
    bool ok = kiln_session_options_create(&o) == KILN_OK &&
              kiln_session_options_append_provider(o, provider) == KILN_OK &&
              kiln_session_options_set(o, "precision", precision) == KILN_OK &&
              kiln_session_options_set_threads(o, (int)threads) == KILN_OK &&
              (!shapes || kiln_session_options_set(o, "shapes", shapes) == KILN_OK) &&
              kiln_session_create(model, o, out) == KILN_OK;
    kiln_session_options_destroy(o);
    return ok;
}

int kc_cmd_compare(int argc, char **argv) {
    const char *cmd = "compare";
    kc_list files = {.n = 0};
    const char *providers_s = "cpu", *precisions_s = "fp32", *iters_s = NULL, *warmup_s = NULL, *threads_s = NULL,
               *json_path = NULL, *seed_s = NULL, *shapes = NULL, *batch_s = NULL, *model_path = NULL,
               *engine_path = NULL;
    const kc_flag flags[] = {
        {"--providers", NULL, &providers_s, NULL}, {"--precisions", NULL, &precisions_s, NULL},
        {"--input", NULL, NULL, &files},           {"--shapes", NULL, &shapes, NULL},
        {"--batch", NULL, &batch_s, NULL},         {"--iterations", NULL, &iters_s, NULL},
        {"--warmup", NULL, &warmup_s, NULL},       {"--threads", NULL, &threads_s, NULL},
        {"--seed", NULL, &seed_s, NULL},           {"--json", NULL, &json_path, NULL},
        {"--model", NULL, &model_path, NULL},      {"--engine", NULL, &engine_path, NULL},
        {NULL, NULL, NULL, NULL}};
    const char *path;
    int code = KC_EXIT_OK;
    if (!kc_parse_args(argc, argv, flags, &path, &code)) return code;
    long long iterations = 10, threads = 0, seed = 0, batch = 0;
    double warmup = 200;
    if ((iters_s && !kc_parse_int(cmd, "--iterations", iters_s, 1, 100000000, &iterations, &code)) ||
        (threads_s && !kc_parse_int(cmd, "--threads", threads_s, 0, 4096, &threads, &code)) ||
        (seed_s && !kc_parse_int(cmd, "--seed", seed_s, 0, INT64_MAX, &seed, &code)) ||
        (batch_s && !kc_parse_int(cmd, "--batch", batch_s, 1, 1 << 20, &batch, &code)) ||
        (warmup_s && !kc_parse_double(cmd, "--warmup", warmup_s, 0, &warmup, &code)))
        return code;
    const char *provs[8], *precs[8];
    size_t n_provs, n_precs;
    if (!kc_split("--providers", providers_s, kc_providers, 2, provs, &n_provs, &code) ||
        !kc_split("--precisions", precisions_s, kc_precisions, 4, precs, &n_precs, &code))
        return code;

    kc_loaded l, le = {0};
    kc_runner ref_runner = {0}, engine_runner = {0};
    kiln_session *ref_session = NULL;
    kc_inputs in = {.image_input = -1};
    kc_io *outs = NULL;
    size_t n_outs = 0;
    kc_row rows[1 + 8 * 8];
    size_t n_rows = 0;
    kc_timed ref = {0};
    char err[4096];
    memset(rows, 0, sizeof rows);
    /* MODEL [--engine FILE], or ENGINE --model MODEL: the engine gets a row of its own. */
    if (!kc_load_model_or_engine(cmd, path, &l, &code)) goto done;
    if (l.engine) {
        if (!model_path) {
            code = kc_fail(KC_EXIT_USAGE, cmd, "'%s' is an engine: give its model with --model MODEL.onnx for the "
                           "FP32 reference", path);
            goto done;
        }
        if (engine_path) {
            code = kc_fail(KC_EXIT_USAGE, cmd, "--engine: '%s' is already an engine", path);
            goto done;
        }
        le = l;
        engine_path = path;
        path = model_path;
        if (!kc_load_model(cmd, path, &l, &code)) goto done;
    } else if (model_path) {
        code = kc_fail(KC_EXIT_USAGE, cmd, "--model is for an engine given as the positional argument; '%s' is a "
                       "model", path);
        goto done;
    } else if (engine_path) {
        if (!kc_load_model_or_engine(cmd, engine_path, &le, &code)) goto done;
        if (!le.engine) {
            code = kc_fail(KC_EXIT_USAGE, cmd, "--engine: '%s' is not a kiln engine file", engine_path);
            goto done;
        }
    }
    kc_input_opts io = {.files = &files, .shape_flag = "--shapes", .shape = shapes, .batch = batch, .random = true,
                        .seed = (uint64_t)seed};
    if (!kc_inputs_prepare(cmd, l.model, &io, &in, &code)) goto done;
    if (!kc_model_io(l.model, true, &outs, &n_outs)) {
        code = kc_fail(KC_EXIT_MODEL, cmd, "cannot read the model's outputs: %s", kiln_last_error());
        goto done;
    }
    kc_timing timing = {.warmup_ms = warmup, .iterations = iterations, .progress = true, .keep_outputs = true};
    /* The reference: FP32 on the CPU. */
    char shape_buf[2048];
    const char *profile = kc_inputs_profile(&in, shape_buf, sizeof shape_buf);
    if (!kc_compare_session(l.model, "cpu", "fp32", threads, profile, &ref_session)) {
        code = kc_fail(KC_EXIT_MODEL, cmd, "%s", kiln_last_error());
        goto done;
    }
    ref_runner.session = ref_session;
    if (!kc_time_runs(&ref_runner, &in, outs, n_outs, &timing, &ref, err, sizeof err)) {
        code = kc_fail(KC_EXIT_MODEL, cmd, "%s", err);
        goto done;
    }
    rows[n_rows] = (kc_row){.provider = "cpu", .precision = "fp32", .reference = true};
    kc_latency_stats(ref.ms, ref.n, &rows[n_rows].lat);
    n_rows++;
    for (size_t a = 0; a < n_provs; a++)
        for (size_t b = 0; b < n_precs; b++) {
            if (strcmp(provs[a], "cpu") == 0 && strcmp(precs[b], "fp32") == 0) continue;
            kc_row *r = &rows[n_rows++];
            *r = (kc_row){.provider = provs[a], .precision = precs[b], .reason = kc_unavailable(provs[a], precs[b])};
            if (r->reason) continue;
            /* A provider that can run: time it and measure its error against the reference. */
            kiln_session *s = NULL;
            kc_runner sr = {0};
            if (!kc_compare_session(l.model, provs[a], precs[b], threads, profile, &s)) {
                r->reason = "failed";
                code = kc_fail(KC_EXIT_MODEL, cmd, "%s %s: %s", provs[a], precs[b], kiln_last_error());
                goto done;
            }
            sr.session = s;
            bool ok = kc_compare_row(&sr, &in, outs, n_outs, &timing, ref.outputs, r, err, sizeof err);
            kiln_session_destroy(s);
            if (!ok) {
                r->reason = "failed";
                code = kc_fail(KC_EXIT_MODEL, cmd, "%s %s: %s", provs[a], precs[b], err);
                goto done;
            }
        }
    if (le.engine) {
        kc_row *r = &rows[n_rows++];
        const char *v = NULL;
        *r = (kc_row){.engine = true, .provider = "engine", .precision = "fp32"};
        if (kiln_engine_get(le.engine, "providers", &v) == KILN_OK && v) r->provider = v;
        if (kiln_engine_get(le.engine, "precision", &v) == KILN_OK && v) r->precision = v;
        if (!kc_runner_create(cmd, &le, 0, NULL, &engine_runner, &code)) goto done;
        if (!kc_compare_row(&engine_runner, &in, outs, n_outs, &timing, ref.outputs, r, err, sizeof err)) {
            code = kc_fail(KC_EXIT_MODEL, cmd, "engine '%s': %s", engine_path, err);
            goto done;
        }
    }
    const char *shown = strcmp(path, "-") == 0 ? "<stdin>" : path;
    bool json_stdout = json_path && strcmp(json_path, "-") == 0;
    if (json_path) {
        FILE *jf = json_stdout ? stdout : fopen(json_path, "w");
        if (!jf) {
            code = kc_fail(KC_EXIT_MODEL, cmd, "--json: cannot create '%s': %s", json_path, strerror(errno));
            goto done;
        }
        kc_compare_json(jf, shown, &in, outs, n_outs, rows, n_rows, threads);
        if (!json_stdout && (ferror(jf) | (fclose(jf) != 0))) {
            code = kc_fail(KC_EXIT_MODEL, cmd, "--json: cannot write '%s': %s", json_path, strerror(errno));
            goto done;
        }
        if (json_stdout) goto done;
    }
    char buf[1024];
    printf("Model: %s\n", kc_fmt_name(shown, strlen(shown), buf, sizeof buf));
    if (le.engine) printf("Engine: %s (last row)\n", kc_fmt_name(engine_path, strlen(engine_path), buf, sizeof buf));
    for (size_t i = 0; i < in.n; i++) {
        char type[512];
        printf("Input: '%s' %s, %s\n", kc_fmt_name(in.io[i].name, strlen(in.io[i].name), buf, sizeof buf),
               kc_fmt_tensor(in.tensors[i], type, sizeof type), in.source[i]);
    }
    printf("Reference: cpu fp32; median of %lld runs after %.0f ms of warm-up; threads %s\n\n", iterations, warmup,
           threads ? threads_s : "auto");
    printf("%-9s %-9s %-12s %10s %12s %12s %s\n", "provider", "precision", "status", "median ms", "max abs err",
           "rel L2 err", "top-1 agree");
    for (size_t i = 0; i < n_rows; i++) {
        const kc_row *r = &rows[i];
        if (r->reason) {
            printf("%-9s %-9s %s\n", r->provider, r->precision, r->reason);
            continue;
        }
        if (r->reference) {
            printf("%-9s %-9s %-12s %10.3f %12s %12s %s\n", r->provider, r->precision, "reference", r->lat.median, "-",
                   "-", "-");
            continue;
        }
        char top1[64] = "n/a";
        if (r->top1_rows)
            snprintf(top1, sizeof top1, "%.1f%% (%lld/%lld)", 100.0 * (double)r->top1_same / (double)r->top1_rows,
                     (long long)r->top1_same, (long long)r->top1_rows);
        printf("%-9s %-9s %-12s %10.3f %12.4g %12.4g %s\n", r->provider, r->precision, r->engine ? "ok (engine)" : "ok", r->lat.median, r->max_abs,
               r->rel_l2, top1);
    }
done:
    for (size_t i = 0; i < n_rows; i++) free(rows[i].per_output);
    kc_outputs_free(ref.outputs, n_outs);
    free(ref.outputs);
    free(ref.ms);
    free(outs);
    kiln_session_destroy(ref_session);
    kc_runner_destroy(&engine_runner);
    kc_inputs_free(&in);
    kc_loaded_free(&l);
    kc_loaded_free(&le);
    return kc_finish_stdout(code);
}
