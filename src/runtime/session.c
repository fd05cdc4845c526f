/* kiln_session_options and kiln_session: an ONNX Runtime-style session is a
 * thin wrapper over the builder: build in memory (or load from the engine
 * cache), then one execution context. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/engine.h"

/* ---- options ------------------------------------------------------------------- */

KILN_API kiln_status kiln_session_options_create(kiln_session_options **out) {
    if (!out)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_session_options_create: out is NULL");
    kiln_session_options *o = kl_calloc(1, sizeof *o);
    if (!o) return KILN_ERR_NO_MEMORY;
    kiln_status s = kiln_build_options_create(&o->build);
    if (s) {
        kl_free(o);
        return s;
    }
    /* Sessions pick tactics by quality tier without timing them (quick to
     * create, like ONNX Runtime's sessions); "tactic_timing" = "1" times them. */
    o->build->timing = false;
    *out = o;
    return KILN_OK;
}

KILN_API void kiln_session_options_destroy(kiln_session_options *options) {
    if (!options) return;
    kiln_build_options_destroy(options->build);
    kl_free(options->cache_dir);
    kl_free(options);
}

KILN_API kiln_status kiln_session_options_append_provider(kiln_session_options *options,
                                                          const char *provider) {
    const char *fn = "kiln_session_options_append_provider";
    if (!options || !provider)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                         !options ? "options" : "provider");
    return kiln_build_options_append_provider(options->build, provider);
}

KILN_API kiln_status kiln_session_options_set_threads(kiln_session_options *options,
                                                      int threads) {
    if (!options)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT,
                         "kiln_session_options_set_threads: options is NULL");
    if (threads < 0)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT,
                         "kiln_session_options_set_threads: threads is %d, must be >= 0 "
                         "(0 = one per core)", threads);
    options->threads = threads;
    return kiln_build_options_set_threads(options->build, threads);
}

/* Replace the provider list with the comma-separated `list` (spaces around
 * names ignored); nothing changes unless every name is usable. */
static kiln_status kl_options_set_providers(kiln_session_options *o, const char *list) {
    const char *fn = "kiln_session_options_set";
    kiln_build_options tmp = *o->build;
    tmp.n_providers = 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *s = p;
        while (len > 0 && (*s == ' ' || *s == '\t')) s++, len--;
        while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
        if (len == 0)
            return kl_errorf(KILN_ERR_INVALID_ARGUMENT,
                             "%s: providers: empty name in '%s' (expected e.g. 'cuda,cpu')", fn,
                             list);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)KL_MIN(len, sizeof name - 1), s);
        KL_TRY(kiln_build_options_append_provider(&tmp, name));
        if (!end) break;
        p = end + 1;
    }
    memcpy(o->build->providers, tmp.providers, sizeof tmp.providers);
    o->build->n_providers = tmp.n_providers;
    return KILN_OK;
}

KILN_API kiln_status kiln_session_options_set(kiln_session_options *options, const char *key,
                                              const char *value) {
    const char *fn = "kiln_session_options_set";
    if (!options || !key || !value)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                         !options ? "options" : !key ? "key" : "value");
    if (strcmp(key, "threads") == 0) {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (end == value || *end || errno || v < 0 || v > 1 << 20)
            return kl_errorf(KILN_ERR_INVALID_ARGUMENT,
                             "%s: threads: '%s' is not a thread count (0 = one per core)", fn,
                             value);
        return kiln_session_options_set_threads(options, (int)KL_MIN(v, 1024));
    }
    if (strcmp(key, "providers") == 0) return kl_options_set_providers(options, value);
    if (strcmp(key, "cache_dir") == 0) {
        char *d = *value ? kl_strdup(value) : NULL;
        if (*value && !d) return KILN_ERR_NO_MEMORY;
        kl_free(options->cache_dir);
        options->cache_dir = d;
        return KILN_OK;
    }
    kiln_status s = kiln_build_options_set(options->build, key, value);
    if (s == KILN_ERR_NOT_FOUND)
        return kl_errorf(KILN_ERR_NOT_FOUND,
                         "%s: unknown key '%s' (known keys: threads, providers, cache_dir, strict_providers, "
                         "pass_limit, fold_budget, disable_pass, tactic, optimize, precision, shapes)", fn, key);
    return s;
}

/* ---- sessions ------------------------------------------------------------------ */

KILN_API kiln_status kiln_session_create(const kiln_model *model,
                                         const kiln_session_options *options,
                                         kiln_session **out) {
    if (!model || !out)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_session_create: %s is NULL",
                         !model ? "model" : "out");
    kiln_session *s = kl_calloc(1, sizeof *s);
    if (!s) return KILN_ERR_NO_MEMORY;
    s->model = model;
    kiln_session_options *defaults = NULL;
    kiln_status st = options ? KILN_OK : kiln_session_options_create(&defaults);
    if (!options) options = defaults;
    if (!st && options->cache_dir)
        st = kl_engine_cache_get(model, options->build, options->cache_dir, &s->engine, &s->cache_hit);
    else if (!st)
        st = kiln_build(model, options->build, &s->engine);
    kiln_session_options_destroy(defaults);
    if (!st) {
        /* The engine holds its own copy of the weights now: the model's
         * mapped pages (clean file pages, read back if the caller touches
         * them again) leave this process's resident set. */
        const kl_model *ir = model->ir;
        kl_mapfile_release(ir->file.data, ir->file.size);
        for (size_t i = 0; i < ir->n_ext_files; i++) kl_mapfile_release(ir->ext_files[i].data, ir->ext_files[i].size);
    }
    if (!st) st = kiln_context_create(s->engine, &s->ctx);
    if (st) {
        kiln_session_destroy(s);
        return st;
    }
    *out = s;
    return KILN_OK;
}

KILN_API void kiln_session_destroy(kiln_session *session) {
    if (!session) return;
    kiln_context_destroy(session->ctx);
    kiln_engine_destroy(session->engine);
    kl_free(session);
}

KILN_API kiln_status kiln_session_get_engine(const kiln_session *session, const kiln_engine **out) {
    if (out) *out = NULL;
    if (!session || !out)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_session_get_engine: %s is NULL", !session ? "session" : "out");
    *out = session->engine;
    return KILN_OK;
}

KILN_API kiln_status kiln_session_run(kiln_session *session, const char *const *input_names,
                                      const kiln_tensor *const *inputs, size_t input_count,
                                      const char *const *output_names, kiln_tensor **outputs,
                                      size_t output_count) {
    if (!session) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_session_run: session is NULL");
    kiln_status s = kiln_context_run(session->ctx, input_names, inputs, input_count, output_names,
                                     outputs, output_count);
    if (s) {
        /* Keep the session's historical message shape: no "kiln_context_run: " prefix. */
        const char *m = kl_error_message();
        const char *pfx = "kiln_context_run: ";
        if (strncmp(m, pfx, strlen(pfx)) == 0) {
            char buf[2048];
            snprintf(buf, sizeof buf, "%s", m + strlen(pfx));
            kl_errorf(s, "%s", buf);
        }
    }
    return s;
}
