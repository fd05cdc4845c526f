/* The engine cache: engines stored under a key made of everything that
 * changes them (the model's bytes and external data, the build options,
 * the kiln version, this CPU's features), written atomically so racing
 * processes never see half an engine, rebuilt when an entry is stale or
 * refused (ORT's TensorRT cache keyed on too little: STYLE pitfall 6). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/hash.h"
#include "runtime/engine.h"

/* mkdir -p for the cache folder. */
static kiln_status kl_mkdirs(const char *dir) {
    char buf[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof buf) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "engine cache folder '%s' is not usable", dir);
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return kl_errorf(KILN_ERR_IO, "engine cache folder '%s': %s", buf, strerror(errno));
        buf[i] = c;
    }
    return KILN_OK;
}

kiln_status kl_engine_cache_get(const kiln_model *model, const kiln_build_options *options, const char *dir,
                                kiln_engine **out, bool *hit) {
    *hit = false;
    const kl_model *m = model->ir;
    kiln_build_options defaults;
    memset(&defaults, 0, sizeof defaults);
    defaults.pass_limit = -1;
    defaults.timing = true;
    char *desc = NULL;
    KL_TRY(kl_build_options_describe(options ? options : &defaults, &desc));
    /* Model identity: its bytes and every external data file. */
    uint8_t d[32];
    char model_hex[65], key_hex[65], feat[64];
    kl_sha256_ctx c;
    kl_sha256_init(&c);
    kl_sha256_update(&c, m->bytes, m->size);
    for (size_t i = 0; i < m->n_ext_files; i++) kl_sha256_update(&c, m->ext_files[i].data, m->ext_files[i].size);
    kl_sha256_final(&c, d);
    kl_hex(d, 32, model_hex);
    kl_sha256_init(&c);
    kl_sha256_update(&c, model_hex, 64);
    kl_sha256_update(&c, "|", 1);
    kl_sha256_update(&c, desc, strlen(desc));
    kl_sha256_update(&c, "|" KILN_VERSION "|", strlen(KILN_VERSION) + 2);
    kl_features_format(kl_cpu_features(), feat, sizeof feat);
    kl_sha256_update(&c, feat, strlen(feat));
    kl_sha256_final(&c, d);
    kl_hex(d, 32, key_hex);
    kl_free(desc);
    KL_TRY(kl_mkdirs(dir));
    char path[4200];
    snprintf(path, sizeof path, "%s/%.32s.kiln", dir, key_hex);
    kiln_engine *e = NULL;
    struct stat st;
    if (stat(path, &st) == 0) {
        kiln_status s = kiln_engine_load(path, &e);
        const char *sha = NULL;
        if (!s && (kiln_engine_get(e, "model_sha256", &sha) || strcmp(sha, model_hex) != 0)) {
            kiln_engine_destroy(e); /* another model under this key: rebuild */
            e = NULL;
            s = KILN_ERR_ENGINE_MISMATCH;
        }
        if (!s) {
            kl_log(KILN_LOG_INFO, "engine cache: loaded %s", path);
            *hit = true;
            *out = e;
            return KILN_OK;
        }
        kl_log(KILN_LOG_WARNING, "engine cache: %s is stale or refused (%s): rebuilding", path, kl_error_message());
        kl_error_clear();
    }
    KL_TRY(kiln_build(model, options, &e));
    kiln_status s = kiln_engine_save(e, path);
    if (s) {
        kiln_engine_destroy(e);
        return kl_error_context(s, "engine cache: ");
    }
    kl_log(KILN_LOG_INFO, "engine cache: stored %s", path);
    *out = e;
    return KILN_OK;
}
