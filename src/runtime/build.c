/* kiln_build_options and kiln_build: model -> private copy -> passes ->
 * partition -> tactics (timed where several apply, timing cache) -> shapes
 * at each profile -> memory plans -> engine bytes -> loaded engine. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/vfs.h>
#endif

#include "core/fpenv.h"
#include "core/hash.h"
#include "cpu/x86/isa.h"
#include "onnx/onnx.h"
#include "onnx/write.h"
#include "ops/ops.h"
#include "passes/passes.h"
#include "runtime/engine.h"
#ifdef KILN_HAVE_CUDA
#include "cuda/cuda.h"
#endif

/* ---- options ------------------------------------------------------------------------ */

KILN_API kiln_status kiln_build_options_create(kiln_build_options **out) {
    if (!out) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_build_options_create: out is NULL");
    kiln_build_options *o = kl_calloc(1, sizeof *o);
    if (!o) return KILN_ERR_NO_MEMORY;
    o->pass_limit = -1;
    o->log_level = KILN_LOG_INFO;
    o->timing = true;
    *out = o;
    return KILN_OK;
}

static void kl_profiles_free(kl_profile *p, size_t n) {
    for (size_t i = 0; p && i < n; i++) {
        for (size_t k = 0; k < p[i].n_inputs; k++) kl_free(p[i].inputs[k].name);
        kl_free(p[i].inputs);
    }
    kl_free(p);
}

void kl_build_options_clear(kiln_build_options *o) {
    if (!o) return;
    kl_profiles_free(o->profiles, o->n_profiles);
    kl_free(o->timing_cache);
    for (size_t i = 0; i < o->n_disabled; i++) kl_free(o->disabled[i]);
    kl_free(o->disabled);
    kl_free(o->tactic);
    memset(o, 0, sizeof *o);
}

KILN_API void kiln_build_options_destroy(kiln_build_options *options) {
    if (!options) return;
    kl_build_options_clear(options);
    kl_free(options);
}

kiln_status kl_build_options_copy(kiln_build_options *dst, const kiln_build_options *src) {
    *dst = *src;
    dst->profiles = NULL;
    dst->n_profiles = 0;
    dst->timing_cache = NULL;
    dst->disabled = NULL;
    dst->n_disabled = 0;
    dst->tactic = NULL;
    kiln_status s = KILN_OK;
    if (src->timing_cache && !(dst->timing_cache = kl_strdup(src->timing_cache))) s = KILN_ERR_NO_MEMORY;
    if (!s && src->tactic && !(dst->tactic = kl_strdup(src->tactic))) s = KILN_ERR_NO_MEMORY;
    if (!s && src->n_disabled) {
        dst->disabled = kl_calloc(src->n_disabled, sizeof *dst->disabled);
        if (!dst->disabled) s = KILN_ERR_NO_MEMORY;
        for (size_t i = 0; !s && i < src->n_disabled; i++, dst->n_disabled++)
            if (!(dst->disabled[i] = kl_strdup(src->disabled[i]))) s = KILN_ERR_NO_MEMORY;
    }
    if (!s && src->n_profiles) {
        dst->profiles = kl_calloc(src->n_profiles, sizeof *dst->profiles);
        if (!dst->profiles) s = KILN_ERR_NO_MEMORY;
        for (size_t i = 0; !s && i < src->n_profiles; i++, dst->n_profiles++) {
            const kl_profile *sp = &src->profiles[i];
            kl_profile *dp = &dst->profiles[i];
            dp->inputs = kl_calloc(sp->n_inputs ? sp->n_inputs : 1, sizeof *dp->inputs);
            if (!dp->inputs) {
                s = KILN_ERR_NO_MEMORY;
                break;
            }
            for (size_t k = 0; k < sp->n_inputs; k++, dp->n_inputs++) {
                dp->inputs[k] = sp->inputs[k];
                if (!(dp->inputs[k].name = kl_strdup(sp->inputs[k].name))) {
                    s = KILN_ERR_NO_MEMORY;
                    break;
                }
            }
        }
    }
    if (s) kl_build_options_clear(dst);
    return s;
}

KILN_API kiln_status kiln_build_options_append_provider(kiln_build_options *o, const char *provider) {
    const char *fn = "kiln_build_options_append_provider";
    if (!o || !provider) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !o ? "options" : "provider");
    const kl_provider *p = kl_provider_find(provider);
    if (!p) {
        const char *why = kl_provider_missing_reason(provider);
        if (why) return kl_errorf(KILN_ERR_UNSUPPORTED, "provider '%s' is not available: %s", provider, why);
        return kl_errorf(KILN_ERR_NOT_FOUND, "%s: unknown provider '%s' (known: cuda, cpu)", fn, provider);
    }
    const char *why = NULL;
    if (!p->usable(&why))
        return kl_errorf(KILN_ERR_UNSUPPORTED, "provider '%s' cannot run on this machine: %s", provider,
                         why ? why : "not usable");
    for (int i = 0; i < o->n_providers; i++)
        if (strcmp(o->providers[i], provider) == 0) return KILN_OK;
    if (o->n_providers >= KL_MAX_PROVIDERS) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: too many providers", fn);
    snprintf(o->providers[o->n_providers++], sizeof o->providers[0], "%s", provider);
    return KILN_OK;
}

KILN_API kiln_status kiln_build_options_set_threads(kiln_build_options *o, int threads) {
    if (!o) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_build_options_set_threads: options is NULL");
    if (threads < 0 || threads > 1024)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_build_options_set_threads: %d threads (0 = one per core)",
                         threads);
    o->threads = threads;
    return KILN_OK;
}

KILN_API kiln_status kiln_build_options_set_precision(kiln_build_options *o, unsigned flags) {
    if (!o) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_build_options_set_precision: options is NULL");
    unsigned known = KILN_PRECISION_FP16 | KILN_PRECISION_BF16 | KILN_PRECISION_INT8 | KILN_PRECISION_TF32 |
                     KILN_PRECISION_STRONGLY_TYPED;
    if (flags & ~known)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_build_options_set_precision: unknown flags 0x%x",
                         flags & ~known);
    if (flags & KILN_PRECISION_INT8)
        return kl_errorf(KILN_ERR_NOT_IMPLEMENTED,
                         "INT8 is not supported yet: kiln has no INT8 calibration or kernels (reduced precision lands "
                         "with a later issue); build in FP32 or FP16");
    o->precision = flags;
    return KILN_OK;
}

KILN_API kiln_status kiln_build_options_add_profile(kiln_build_options *o, size_t *index) {
    if (!o) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_build_options_add_profile: options is NULL");
    if (o->n_profiles >= 64) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_build_options_add_profile: 64 profiles at most");
    kl_profile *p = kl_realloc_array(o->profiles, o->n_profiles + 1, sizeof *p);
    if (!p) return KILN_ERR_NO_MEMORY;
    o->profiles = p;
    memset(&p[o->n_profiles], 0, sizeof *p);
    if (index) *index = o->n_profiles;
    o->n_profiles++;
    return KILN_OK;
}

KILN_API kiln_status kiln_build_options_set_profile_shape(kiln_build_options *o, size_t profile, const char *name,
                                                          int rank, const int64_t *min, const int64_t *opt,
                                                          const int64_t *max) {
    const char *fn = "kiln_build_options_set_profile_shape";
    if (!o || !name || (rank > 0 && (!min || !opt || !max)))
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: a required argument is NULL", fn);
    if (profile >= o->n_profiles)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: profile %zu does not exist (%zu profiles; add one first)", fn,
                         profile, o->n_profiles);
    if (rank < 0 || rank > KILN_MAX_RANK)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: input '%s': rank %d is outside 0..%d", fn, name, rank,
                         KILN_MAX_RANK);
    for (int k = 0; k < rank; k++)
        if (min[k] < 0 || min[k] > opt[k] || opt[k] > max[k])
            return kl_errorf(KILN_ERR_INVALID_ARGUMENT,
                             "input '%s' axis %d: min %lld, opt %lld, max %lld must satisfy 0 <= min <= opt <= max",
                             name, k, (long long)min[k], (long long)opt[k], (long long)max[k]);
    kl_profile *p = &o->profiles[profile];
    kl_profile_input *pi = NULL;
    for (size_t i = 0; i < p->n_inputs; i++)
        if (strcmp(p->inputs[i].name, name) == 0) pi = &p->inputs[i];
    if (!pi) {
        kl_profile_input *ni = kl_realloc_array(p->inputs, p->n_inputs + 1, sizeof *ni);
        if (!ni) return KILN_ERR_NO_MEMORY;
        p->inputs = ni;
        pi = &ni[p->n_inputs];
        memset(pi, 0, sizeof *pi);
        if (!(pi->name = kl_strdup(name))) return KILN_ERR_NO_MEMORY;
        p->n_inputs++;
    }
    pi->rank = rank;
    for (int k = 0; k < rank; k++) {
        pi->min[k] = min[k];
        pi->opt[k] = opt[k];
        pi->max[k] = max[k];
    }
    return KILN_OK;
}

KILN_API kiln_status kiln_build_options_set_workspace(kiln_build_options *o, uint64_t bytes) {
    if (!o) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_build_options_set_workspace: options is NULL");
    o->workspace = bytes;
    return KILN_OK;
}

KILN_API kiln_status kiln_build_options_set_timing_cache(kiln_build_options *o, const char *path) {
    if (!o) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_build_options_set_timing_cache: options is NULL");
    char *c = NULL;
    if (path && !(c = kl_strdup(path))) return KILN_ERR_NO_MEMORY;
    kl_free(o->timing_cache);
    o->timing_cache = c;
    return KILN_OK;
}

KILN_API kiln_status kiln_build_options_disable_pass(kiln_build_options *o, const char *name) {
    if (!o || !name) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_build_options_disable_pass: %s is NULL", !o ? "options" : "name");
    size_t n = kl_pass_count(), i;
    for (i = 0; i < n; i++)
        if (strcmp(kl_pass_name(i), name) == 0) break;
    if (i == n) {
        char list[1024];
        size_t u = 0;
        list[0] = 0;
        for (size_t k = 0; k < n && u < sizeof list - 64; k++) {
            int w = snprintf(list + u, sizeof list - u, "%s%s", k ? ", " : "", kl_pass_name(k));
            if (w > 0) u += (size_t)w;
        }
        return kl_errorf(KILN_ERR_NOT_FOUND, "unknown pass '%s' (passes: %s)", name, list);
    }
    char **d = kl_realloc_array(o->disabled, o->n_disabled + 1, sizeof *d);
    if (!d) return KILN_ERR_NO_MEMORY;
    o->disabled = d;
    if (!(d[o->n_disabled] = kl_strdup(name))) return KILN_ERR_NO_MEMORY;
    o->n_disabled++;
    return KILN_OK;
}

KILN_API kiln_status kiln_build_options_set_log(kiln_build_options *o, kiln_log_fn fn, void *user,
                                                kiln_log_level max_level) {
    if (!o) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_build_options_set_log: options is NULL");
    o->log = fn;
    o->log_user = user;
    o->log_level = max_level;
    return KILN_OK;
}

/* Parse a non-negative integer option value. */
static kiln_status kl_opt_int(const char *key, const char *value, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (end == value || *end || errno || v < 0)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "option %s: '%s' is not a non-negative integer", key, value);
    *out = v;
    return KILN_OK;
}

KILN_API kiln_status kiln_build_options_set(kiln_build_options *o, const char *key, const char *value) {
    if (!o || !key || !value)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_build_options_set: %s is NULL",
                         !o ? "options" : !key ? "key" : "value");
    int64_t v;
    if (strcmp(key, "strict_providers") == 0 || strcmp(key, "optimize") == 0 || strcmp(key, "tactic_timing") == 0 ||
        strcmp(key, "prepack") == 0) {
        if (strcmp(value, "0") && strcmp(value, "1"))
            return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "option %s: '%s' must be 0 or 1", key, value);
        if (key[0] == 's') o->strict = value[0] == '1';
        else if (key[0] == 'o') o->no_optimize = value[0] == '0';
        else if (key[0] == 'p') o->prepack = value[0] == '1';
        else o->timing = value[0] == '1';
        return KILN_OK;
    }
    if (strcmp(key, "layout") == 0) {
        if (strcmp(value, "nchwc") && strcmp(value, "nchw"))
            return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "option layout: '%s' must be nchwc or nchw", value);
        o->layout_nchwc = strcmp(value, "nchwc") == 0;
        o->layout_set = true;
        return KILN_OK;
    }
    if (strcmp(key, "denormals") == 0) {
        if (strcmp(value, "flush") && strcmp(value, "keep"))
            return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "option denormals: '%s' must be flush or keep", value);
        o->keep_denormals = value[0] == 'k';
        return KILN_OK;
    }
    if (strcmp(key, "pass_limit") == 0) {
        KL_TRY(kl_opt_int(key, value, &v));
        o->pass_limit = v;
        return KILN_OK;
    }
    if (strcmp(key, "fold_budget") == 0) {
        KL_TRY(kl_opt_int(key, value, &v));
        o->fold_budget = (size_t)v;
        return KILN_OK;
    }
    if (strcmp(key, "threads") == 0) {
        KL_TRY(kl_opt_int(key, value, &v));
        return kiln_build_options_set_threads(o, v > 1024 ? -1 : (int)v);
    }
    if (strcmp(key, "disable_pass") == 0) {
        /* "NAME" or "NAME,NAME": kiln_build_options_disable_pass for each, once every name is known (an
         * unknown one is refused, naming it and the passes, before any is disabled) */
        char buf[512], chk[512];
        if (snprintf(buf, sizeof buf, "%s", value) >= (int)sizeof buf)
            return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "option disable_pass: the list is longer than %zu bytes",
                             sizeof buf - 1);
        memcpy(chk, buf, sizeof buf);
        for (char *save = NULL, *tok = strtok_r(chk, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
            size_t i = 0;
            while (i < kl_pass_count() && strcmp(kl_pass_name(i), tok) != 0) i++;
            if (i == kl_pass_count()) return kiln_build_options_disable_pass(o, tok); /* (fails, naming it) */
        }
        for (char *save = NULL, *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
            KL_TRY(kiln_build_options_disable_pass(o, tok));
        return KILN_OK;
    }
    if (strcmp(key, "tactic") == 0) {
        char *t = kl_strdup(value);
        if (!t) return KILN_ERR_NO_MEMORY;
        kl_free(o->tactic);
        o->tactic = t;
        return KILN_OK;
    }
    if (strcmp(key, "providers") == 0) {
        kiln_build_options tmp = *o;
        tmp.n_providers = 0;
        char buf[256];
        snprintf(buf, sizeof buf, "%s", value);
        for (char *save = NULL, *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
            KL_TRY(kiln_build_options_append_provider(&tmp, tok));
        memcpy(o->providers, tmp.providers, sizeof o->providers);
        o->n_providers = tmp.n_providers;
        return KILN_OK;
    }
    if (strcmp(key, "precision") == 0) {
        /* "fp32", "fp16", "fp16,tf32", "best" (fp16): trtexec's flags as words. */
        unsigned flags = 0;
        char buf[128];
        snprintf(buf, sizeof buf, "%s", value);
        for (char *save = NULL, *tok = strtok_r(buf, ",+ ", &save); tok; tok = strtok_r(NULL, ",+ ", &save)) {
            if (strcmp(tok, "fp32") == 0) continue;
            if (strcmp(tok, "fp16") == 0 || strcmp(tok, "best") == 0) flags |= KILN_PRECISION_FP16;
            else if (strcmp(tok, "bf16") == 0) flags |= KILN_PRECISION_BF16;
            else if (strcmp(tok, "tf32") == 0) flags |= KILN_PRECISION_TF32;
            else if (strcmp(tok, "int8") == 0) flags |= KILN_PRECISION_INT8;
            else
                return kl_errorf(KILN_ERR_INVALID_ARGUMENT,
                                 "option precision: unknown '%s' in '%s' (known: fp32, fp16, bf16, tf32, int8, best)", tok,
                                 value);
        }
        return kiln_build_options_set_precision(o, flags);
    }
    if (strcmp(key, "shapes") == 0) {
        /* "NAME:1x16,NAME2:2x3x224x224": one more profile, min = opt = max
         * (trtexec's --shapes) */
        size_t idx = 0;
        KL_TRY(kiln_build_options_add_profile(o, &idx));
        for (const char *p = value; *p;) {
            size_t len = strcspn(p, ",");
            char item[512];
            if (len >= sizeof item)
                return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "option shapes: entry longer than %zu characters",
                                 sizeof item - 1);
            memcpy(item, p, len);
            item[len] = 0;
            char *colon = strrchr(item, ':');
            if (!colon || colon == item || !colon[1])
                return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "option shapes: '%s' is not NAME:D0xD1x...", item);
            *colon = 0;
            int64_t dims[KILN_MAX_RANK];
            int rank = 0;
            for (char *d = colon + 1;;) {
                char *end;
                errno = 0;
                long long dv = strtoll(d, &end, 10);
                if (end == d || errno || dv < 0 || rank == KILN_MAX_RANK || (*end && *end != 'x'))
                    return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "option shapes: input '%s': bad dims '%s'", item,
                                     colon + 1);
                dims[rank++] = dv;
                if (!*end) break;
                d = end + 1;
            }
            KL_TRY(kiln_build_options_set_profile_shape(o, idx, item, rank, dims, dims, dims));
            p += len + (p[len] ? 1 : 0);
        }
        return KILN_OK;
    }
    return kl_errorf(KILN_ERR_NOT_FOUND,
                     "kiln_build_options_set: unknown key '%s' (known: strict_providers, pass_limit, fold_budget, "
                     "disable_pass, tactic, tactic_timing, prepack, optimize, threads, providers, precision, shapes)",
                     key);
}

kiln_status kl_build_options_describe(const kiln_build_options *o, char **out) {
    char buf[4096];
    size_t u = 0;
#define KL_ADD(...)                                                                   \
    do {                                                                              \
        int w_ = snprintf(buf + u, u < sizeof buf ? sizeof buf - u : 0, __VA_ARGS__); \
        if (w_ > 0) u += (size_t)w_;                                                  \
        if (u >= sizeof buf) u = sizeof buf - 1;                                      \
    } while (0)
    KL_ADD("providers=");
    for (int i = 0; i < o->n_providers; i++) KL_ADD("%s%s", i ? "," : "", o->providers[i]);
    if (!o->n_providers) KL_ADD("default");
    KL_ADD(" precision=fp32%s%s%s", (o->precision & KILN_PRECISION_FP16) ? "+fp16" : "",
           (o->precision & KILN_PRECISION_BF16) ? "+bf16" : "", (o->precision & KILN_PRECISION_TF32) ? "+tf32" : "");
    KL_ADD(" threads=%d optimize=%d strict=%d timing=%d prepack=%d", o->threads, !o->no_optimize, o->strict, o->timing,
           o->prepack);
    if (o->keep_denormals) KL_ADD(" denormals=keep");
    if (o->layout_nchwc) KL_ADD(" layout=nchwc");
    if (o->pass_limit >= 0) KL_ADD(" pass_limit=%lld", (long long)o->pass_limit);
    if (o->fold_budget) KL_ADD(" fold_budget=%zu", o->fold_budget);
    if (o->workspace) KL_ADD(" workspace=%llu", (unsigned long long)o->workspace);
    if (o->tactic) KL_ADD(" tactic=%s", o->tactic);
    for (size_t i = 0; i < o->n_disabled; i++) KL_ADD(" disable=%s", o->disabled[i]);
    for (size_t p = 0; p < o->n_profiles; p++) {
        KL_ADD(" profile%zu=", p);
        for (size_t k = 0; k < o->profiles[p].n_inputs; k++) {
            const kl_profile_input *pi = &o->profiles[p].inputs[k];
            KL_ADD("%s%s:", k ? ";" : "", pi->name);
            for (int w = 0; w < 3; w++) {
                const int64_t *d = w == 0 ? pi->min : w == 1 ? pi->opt : pi->max;
                for (int a = 0; a < pi->rank; a++) KL_ADD("%s%lld", a ? "x" : (w ? "/" : ""), (long long)d[a]);
            }
        }
    }
#undef KL_ADD
    *out = kl_strdup(buf);
    return *out ? KILN_OK : KILN_ERR_NO_MEMORY;
}

/* ---- build log ------------------------------------------------------------------------- */

typedef struct kl_blog {
    const kiln_build_options *o;
    char *passes;      /* every applied rewrite, one per line */
    size_t passes_len;
} kl_blog;

static void kl_blog_msg(const kl_blog *b, kiln_log_level lvl, const char *fmt, ...) KL_PRINTF(3, 4);
static void kl_blog_msg(const kl_blog *b, kiln_log_level lvl, const char *fmt, ...) {
    if (!b->o->log || lvl > b->o->log_level) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    b->o->log(lvl, line, b->o->log_user);
}

static void kl_blog_pass(void *user, const char *line) {
    kl_blog *b = user;
    kl_blog_msg(b, KILN_LOG_INFO, "pass %s", line);
    size_t add = strlen(line);
    char *r = kl_realloc_array(b->passes, b->passes_len + add + 2, 1);
    if (!r) return; /* the log is best effort; the build goes on */
    memcpy(r + b->passes_len, line, add);
    r[b->passes_len + add] = '\n';
    r[b->passes_len + add + 1] = 0;
    b->passes = r;
    b->passes_len += add + 1;
}

/* ---- growable text (sections) ------------------------------------------------------------- */

typedef struct kl_text {
    char *s;
    size_t len, cap;
    kiln_status err;
} kl_text;

static void kl_textf(kl_text *t, const char *fmt, ...) KL_PRINTF(2, 3);
static void kl_textf(kl_text *t, const char *fmt, ...) {
    if (t->err) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->err = KILN_ERR_INTERNAL;
            return;
        }
        if (t->s && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = KL_MAX(t->cap * 2, t->len + (size_t)n + 256);
        char *r = kl_realloc_array(t->s, cap, 1);
        if (!r) {
            t->err = KILN_ERR_NO_MEMORY;
            return;
        }
        t->s = r;
        t->cap = cap;
    }
}

static void kl_text_dims(kl_text *t, const int64_t *d, int rank) {
    if (!rank) kl_textf(t, "-");
    for (int a = 0; a < rank; a++) kl_textf(t, "%s%lld", a ? "x" : "", (long long)d[a]);
}

/* ---- tactics ------------------------------------------------------------------------------------ */

/* Is tactic `name` forced for node n by the "name,op=name" list? */
static bool kl_tactic_forced(const char *list, const kl_node *n, const char *name) {
    if (!list) return false;
    const char *p = list;
    size_t nl = strlen(name);
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        const char *tn = eq ? eq + 1 : p;
        size_t tl = eq ? len - (size_t)(eq + 1 - p) : len;
        bool op_ok = true;
        if (eq) {
            size_t ol = (size_t)(eq - p);
            op_ok = strlen(n->op_type) == ol && strncasecmp(n->op_type, p, ol) == 0;
            if (!op_ok && strncmp(n->op_type, "Fused", 5) == 0)
                op_ok = strlen(n->op_type + 5) == ol && strncasecmp(n->op_type + 5, p, ol) == 0;
        }
        if (op_ok && tl == nl && memcmp(tn, name, nl) == 0) return true;
        p += len + (e ? 1 : 0);
    }
    return false;
}

/* Random inputs of node n at the shapes of s (constants from the graph). */
static kiln_status kl_node_inputs(const kl_node *n, const kl_shapes *s, kl_rt **in) {
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (size_t k = 0; k < n->n_inputs; k++) in[k] = NULL; /* all of them: a failure leaves the rest to release */
    for (size_t k = 0; k < n->n_inputs; k++) {
        const kl_value *v = n->inputs[k];
        if (!v) continue;
        if (v->init) {
            KL_TRY(kl_rt_from_tensor(v->init, &in[k]));
            continue;
        }
        if (v->id >= s->n_values || s->rank[v->id] < 0)
            return kl_errorf(KILN_ERR_SHAPE, "input '%s' has no concrete shape at the profile's opt point", v->name);
        KL_TRY(kl_rt_tensor(s->dtype[v->id], s->rank[v->id], s->dims[v->id], &in[k]));
        if (s->dtype[v->id] == KILN_DTYPE_FLOAT) {
            float *f = in[k]->data;
            for (int64_t i = 0; i < in[k]->count; i++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                f[i] = (float)((double)(seed >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
            }
        }
    }
    return KILN_OK;
}

static double kl_now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int kl_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median time of tactic t on node n over a few runs (ms), or a status. */
static kiln_status kl_time_tactic(kl_program *prog, const kl_graph *g, size_t idx, const kl_tactic *t,
                                  const kl_shapes *s, double *ms) {
    const kl_node *n = g->nodes[idx];
    kl_rt *inb[16] = {0};
    if (n->n_inputs > 16) return kl_errorf(KILN_ERR_UNSUPPORTED, "too many inputs to time");
    void *state = NULL;
    size_t ws = 0;
    kiln_status st = t->prepare ? t->prepare(n, &state, &ws) : KILN_OK;
    if (st) return st;
    st = kl_node_inputs(n, s, inb);
    double times[7];
    int reps = 0;
    for (int r = 0; !st && r < 8; r++) {
        double t0 = kl_now_ms();
        st = kl_program_run_node(prog, idx, inb, t->run, state);
        double dt = kl_now_ms() - t0;
        if (r > 0) times[reps++] = dt; /* the first run warms caches */
        if (r >= 2 && times[0] * reps > 300) break; /* slow nodes: a few runs are enough */
    }
    for (size_t k = 0; k < n->n_inputs; k++) kl_rt_unref(inb[k]);
    if (t->release) t->release(state);
    if (st) return st;
    qsort(times, (size_t)reps, sizeof times[0], kl_cmp_double);
    *ms = times[reps / 2];
    return KILN_OK;
}

/* The candidates t[j] with todo[j] of node idx timed in interleaved rounds
 * (A B C, A B C, ...), so that a burst of load from the host's other
 * tenants falls on every candidate alike instead of on the one being timed,
 * and each runs after the others have used the caches, as a layer runs
 * after other layers in a model.  ms[j]: the median of its timed runs (the
 * first round warms), or NAN with err[j] saying why it failed.
 * KILN_TIME_SEQUENTIAL=1 times them one after the other (kl_time_tactic). */
#define KL_TIME_ROUNDS 8
static kiln_status kl_time_tactics(kl_program *prog, const kl_graph *g, size_t idx, const kl_tactic *const *t,
                                   size_t nt, const bool *todo, const kl_shapes *s, double *ms, char (*err)[192]) {
    const kl_node *n = g->nodes[idx];
    if (n->n_inputs > 16 || nt > 16) return kl_errorf(KILN_ERR_UNSUPPORTED, "too many inputs or tactics to time");
    const char *seq = getenv("KILN_TIME_SEQUENTIAL");
    if (seq && *seq && strcmp(seq, "0") != 0) {
        for (size_t j = 0; j < nt; j++) {
            ms[j] = NAN;
            err[j][0] = 0;
            if (!todo[j]) continue;
            kiln_status ts = kl_time_tactic(prog, g, idx, t[j], s, &ms[j]);
            if (ts) {
                snprintf(err[j], sizeof err[j], "%s", kl_error_message());
                kl_error_clear();
                ms[j] = NAN;
            }
        }
        return KILN_OK;
    }
    kl_rt *inb[16] = {0};
    void *state[16] = {0};
    bool live[16] = {0};
    double times[16][KL_TIME_ROUNDS];
    int reps[16] = {0};
    kiln_status st = kl_node_inputs(n, s, inb);
    size_t nlive = 0;
    for (size_t j = 0; j < nt; j++) {
        ms[j] = NAN;
        err[j][0] = 0;
        if (st && todo[j]) /* as kl_time_tactic: every candidate is skipped, the build goes on */
            snprintf(err[j], sizeof err[j], "%s", kl_error_message());
        if (st || !todo[j]) continue;
        size_t ws = 0;
        kiln_status ps = t[j]->prepare ? t[j]->prepare(n, &state[j], &ws) : KILN_OK;
        if (ps) {
            snprintf(err[j], sizeof err[j], "%s", kl_error_message());
            kl_error_clear();
            continue;
        }
        live[j] = true;
        nlive++;
    }
    double spent = 0;
    for (int r = 0; !st && nlive && r < KL_TIME_ROUNDS; r++) {
        for (size_t j = 0; j < nt; j++) {
            if (!live[j]) continue;
            double t0 = kl_now_ms();
            kiln_status rs = kl_program_run_node(prog, idx, inb, t[j]->run, state[j]);
            double dt = kl_now_ms() - t0;
            if (rs) { /* a tactic that fails on random data is skipped, not fatal */
                snprintf(err[j], sizeof err[j], "%s", kl_error_message());
                kl_error_clear();
                live[j] = false;
                nlive--;
                continue;
            }
            if (r > 0) {
                times[j][reps[j]++] = dt;
                spent += dt;
            }
        }
        if (r >= 2 && nlive && spent > 300.0 * (double)nlive) break; /* slow nodes: a few rounds are enough */
    }
    if (st) kl_error_clear();
    for (size_t k = 0; k < n->n_inputs; k++) kl_rt_unref(inb[k]);
    for (size_t j = 0; j < nt; j++) {
        if (state[j] && t[j]->release) t[j]->release(state[j]);
        if (live[j] && reps[j] > 0) {
            qsort(times[j], (size_t)reps[j], sizeof times[j][0], kl_cmp_double);
            ms[j] = times[j][reps[j] / 2];
        } else if (live[j]) {
            snprintf(err[j], sizeof err[j], "no timed run");
        }
    }
    return KILN_OK;
}

/* ---- profiles -------------------------------------------------------------------------------------- */

/* Check the user's profiles against the model's inputs. */
static kiln_status kl_profiles_check(const kl_graph *g, const kiln_build_options *o) {
    for (size_t p = 0; p < o->n_profiles; p++)
        for (size_t k = 0; k < o->profiles[p].n_inputs; k++) {
            const kl_profile_input *pi = &o->profiles[p].inputs[k];
            const kl_value *v = NULL;
            for (size_t i = 0; i < g->n_inputs; i++)
                if (!(g->inputs[i]->flags & KL_VALUE_INITIALIZER) && strcmp(g->inputs[i]->name, pi->name) == 0)
                    v = g->inputs[i];
            if (!v) return kl_errorf(KILN_ERR_NOT_FOUND, "profile %zu: the model has no input '%s'", p, pi->name);
            const kl_shape *sh = &v->type.shape;
            if (sh->rank >= 0 && sh->rank != pi->rank)
                return kl_errorf(KILN_ERR_SHAPE, "profile %zu: input '%s' has rank %d in the model, %d in the profile", p,
                                 pi->name, sh->rank, pi->rank);
            for (int a = 0; a < pi->rank && sh->rank >= 0; a++) {
                int64_t fixed = sh->dims[a].value;
                if (fixed >= 0 && (pi->min[a] != fixed || pi->max[a] != fixed))
                    return kl_errorf(KILN_ERR_SHAPE,
                                     "profile %zu: input '%s' axis %d is fixed at %lld in the model, the profile "
                                     "gives %lld..%lld",
                                     p, pi->name, a, (long long)fixed, (long long)pi->min[a], (long long)pi->max[a]);
            }
        }
    return KILN_OK;
}

static bool kl_graph_has_dynamic_inputs(const kl_graph *g) {
    for (size_t i = 0; i < g->n_inputs; i++) {
        const kl_value *v = g->inputs[i];
        if (!(v->flags & KL_VALUE_INITIALIZER) && v->type.kind == KL_TYPE_TENSOR && !kl_shape_is_static(&v->type.shape))
            return true;
    }
    return false;
}

/* SHA-256 of the model file and its external data files. */
static void kl_model_sha256(const kl_model *m, char hex[65]) {
    kl_sha256_ctx c;
    uint8_t d[32];
    kl_sha256_init(&c);
    kl_sha256_update(&c, m->bytes, m->size);
    for (size_t i = 0; i < m->n_ext_files; i++) kl_sha256_update(&c, m->ext_files[i].data, m->ext_files[i].size);
    kl_sha256_final(&c, d);
    kl_hex(d, 32, hex);
}

static size_t kl_count_nodes(const kl_graph *g) { return g->n_nodes; }

/* ---- the build -------------------------------------------------------------------------------------- */

typedef struct kl_build {
    kiln_build_options o;
    const kl_provider *order[KL_MAX_PROVIDERS];
    size_t n_order;
    kl_model *m;
    kl_blog log;
    kl_assign *assign;
    char *partition;
    const kl_tactic **tactic;
    double *tactic_ms;
    size_t *workspace;
    kl_shapes *opt_shapes;   /* per profile (or the static one) */
    kl_shapes time_shapes;   /* no profile, dynamic inputs: dynamic dims at 1, for timing */
    bool have_time_shapes;
    kl_profile time_profile;
    kl_mem_plan *plans;
    size_t n_points;         /* profiles, or 1 for a static model without profile, or 0 */
    kl_profile static_profile;
    kl_timing_cache *tc;
    kl_onnx_written w;
    char *opts_desc;
    size_t nodes_before;
    kl_pass_stats stats;
    char *cuda_algos;        /* "node:algo,..." chosen on the GPU at build (meta cuda_algos) */
    char *cuda_algo_key;     /* the input shapes they were chosen at (meta cuda_algo_key) */
    size_t cuda_timed, cuda_hits;
    int cuda_layout;         /* KL_CUDA_LAYOUT_* the layers run in (meta cuda_layout) */
} kl_build;

static void kl_build_free(kl_build *b) {
    kl_free(b->cuda_algos);
    kl_free(b->cuda_algo_key);
    kl_model_free(b->m);
    kl_free(b->log.passes);
    kl_free(b->assign);
    kl_free(b->partition);
    kl_free(b->tactic);
    kl_free(b->tactic_ms);
    kl_free(b->workspace);
    for (size_t i = 0; i < b->n_points; i++) {
        if (b->opt_shapes) kl_shapes_free(&b->opt_shapes[i]);
        if (b->plans) kl_mem_plan_free(&b->plans[i]);
    }
    kl_free(b->opt_shapes);
    kl_free(b->plans);
    if (b->have_time_shapes) kl_shapes_free(&b->time_shapes);
    for (size_t i = 0; i < b->time_profile.n_inputs; i++) kl_free(b->time_profile.inputs[i].name);
    kl_free(b->time_profile.inputs);
    kl_timing_cache_free(b->tc);
    kl_onnx_written_free(&b->w);
    kl_free(b->opts_desc);
    kl_build_options_clear(&b->o);
}

static const kl_profile *kl_build_point(const kl_build *b, size_t i) {
    return b->o.n_profiles ? &b->o.profiles[i] : &b->static_profile;
}

/* Pick each node's tactic: forced, else the only one, else the fastest
 * timed at the first profile's opt shapes (timing cache first). */
static kiln_status kl_build_tactics(kl_build *b) {
    const kl_graph *g = b->m->graph;
    size_t nn = g->n_nodes;
    b->tactic = kl_calloc(nn ? nn : 1, sizeof *b->tactic);
    b->tactic_ms = kl_calloc(nn ? nn : 1, sizeof *b->tactic_ms);
    b->workspace = kl_calloc(nn ? nn : 1, sizeof *b->workspace);
    if (!b->tactic || !b->tactic_ms || !b->workspace) return KILN_ERR_NO_MEMORY;
    const char *forced = b->o.tactic ? b->o.tactic : getenv("KILN_TACTIC");
    uint32_t cpu = kl_cpu_features();
    kl_program *prog = NULL;
    size_t to_time = 0, timed = 0, hits = 0;
    const kl_tactic *cand[16];
    for (size_t i = 0; i < nn; i++) {
        size_t k = b->assign[i].provider->tactics(g->nodes[i], cand, KL_ARRAY_LEN(cand));
        size_t usable = 0;
        for (size_t j = 0; j < k; j++) usable += (cand[j]->isa & ~cpu) == 0 && cand[j]->quality > 0;
        if (usable > 1 && b->o.timing) to_time++;
    }
    kiln_status s = KILN_OK;
    for (size_t i = 0; i < nn && !s; i++) {
        const kl_node *n = g->nodes[i];
        const kl_provider *pv = b->assign[i].provider;
        size_t k = pv->tactics(n, cand, KL_ARRAY_LEN(cand));
        const kl_tactic *ok[16];
        size_t nok = 0;
        for (size_t j = 0; j < k; j++) {
            char why[128] = "";
            if ((cand[j]->isa & ~cpu) != 0) continue;
            if (cand[j]->applies && !cand[j]->applies(n, why, sizeof why)) continue;
            ok[nok++] = cand[j];
        }
        if (!nok) {
            s = kl_errorf(KILN_ERR_UNSUPPORTED, "node '%s' (%s): provider %s has no tactic for it", kl_node_label(n),
                          n->op_type, pv->name);
            break;
        }
        const kl_tactic *pick = NULL;
        for (size_t j = 0; j < nok && !pick; j++)
            if (kl_tactic_forced(forced, n, ok[j]->name)) pick = ok[j];
        /* Keep the best quality tier (tract's rule): the reference kernel
         * is only a candidate when nothing faster applies. */
        size_t tier = 0;
        while (tier < nok && ok[tier]->quality > 0) tier++;
        if (tier > 0) nok = tier;
        if (!pick && (nok == 1 || !b->o.timing)) pick = ok[0];
        if (!pick) {
            /* Time the candidates. */
            timed++;
            kl_blog_msg(&b->log, KILN_LOG_DEBUG, "progress %zu/%zu", timed, to_time);
            char key[2048];
            const kl_shapes *ts0 = b->n_points ? &b->opt_shapes[0] : b->have_time_shapes ? &b->time_shapes : NULL;
            kl_tactic_key(n, ts0, pv->name, key, sizeof key);
            double best = INFINITY, tms[16];
            bool todo[16] = {0}, any = false;
            char terr[16][192];
            for (size_t j = 0; j < nok; j++) {
                if (kl_timing_cache_get(b->tc, key, ok[j]->name, &tms[j])) {
                    hits++;
                } else if (!ts0) { /* no concrete shapes: no timing, quality decides */
                    tms[j] = -ok[j]->quality;
                } else {
                    todo[j] = any = true;
                }
            }
            if (any) {
                if (!prog) {
                    s = kl_program_create(b->m, 1, &prog);
                    if (!s) {
                        /* The build's first timing ran 3-4x slow (MobileNet-V2's
                         * first timed 1x1, 1 thread: 0.55-0.60 ms against 0.14
                         * when timed later; the core's clock, the program's
                         * first pages): one untimed round first */
                        double warm;
                        for (size_t j = 0; j < nok; j++)
                            if (todo[j]) {
                                (void)kl_time_tactic(prog, g, i, ok[j], ts0, &warm);
                                kl_error_clear();
                                break;
                            }
                    }
                }
                double tt[16];
                char (*te)[192] = terr;
                if (!s) s = kl_time_tactics(prog, g, i, ok, nok, todo, ts0, tt, te);
                for (size_t j = 0; j < nok && !s; j++) {
                    if (!todo[j]) continue;
                    tms[j] = tt[j];
                    if (isnan(tt[j])) {
                        kl_blog_msg(&b->log, KILN_LOG_WARNING, "tactic %s on node '%s': %s (skipped)", ok[j]->name,
                                    kl_node_label(n), terr[j]);
                    } else if (b->tc) {
                        s = kl_timing_cache_put(b->tc, key, ok[j]->name, tt[j]);
                    }
                }
            }
            for (size_t j = 0; j < nok && !s; j++) {
                double ms = tms[j];
                if (todo[j] && isnan(ms)) continue;
                kl_blog_msg(&b->log, KILN_LOG_DEBUG, "  node '%s' (%s): tactic %s %.4f ms", kl_node_label(n), n->op_type,
                            ok[j]->name, ms);
                if (ms < best) {
                    best = ms;
                    pick = ok[j];
                    b->tactic_ms[i] = ms;
                }
            }
            if (!pick) pick = ok[0];
        }
        b->tactic[i] = pick;
        if (pick->prepare && !s) {
            void *state = NULL;
            s = pick->prepare(n, &state, &b->workspace[i]);
            if (pick->release) pick->release(state);
        }
        if (k > 1) {
            char how[64];
            if (b->tactic_ms[i] > 0) snprintf(how, sizeof how, "%.3f ms, fastest of %zu", b->tactic_ms[i], nok);
            else if (kl_tactic_forced(forced, n, pick->name)) snprintf(how, sizeof how, "forced");
            else if (nok == 1) snprintf(how, sizeof how, "the only one of its quality tier");
            else snprintf(how, sizeof how, "best quality tier, not timed");
            kl_blog_msg(&b->log, KILN_LOG_INFO, "tactic: node '%s' (%s) -> %s/%s (%s)", kl_node_label(n), n->op_type,
                        pv->name, pick->name, how);
        }
    }
    kl_program_free(prog);
    /* A forced tactic that no layer took is a mistake to report, not to
     * ignore: an error for the build option, a warning for KILN_TACTIC
     * (which tests set for many models at once). */
    for (const char *p = forced; !s && p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        const char *tn = eq ? eq + 1 : p;
        size_t tl = eq ? len - (size_t)(eq + 1 - p) : len;
        bool used = false;
        for (size_t i = 0; i < nn && !used; i++)
            used = strlen(b->tactic[i]->name) == tl && memcmp(b->tactic[i]->name, tn, tl) == 0;
        if (!used && tl) {
            if (b->o.tactic)
                s = kl_errorf(KILN_ERR_NOT_FOUND, "forced tactic '%.*s' runs no layer of this model (no layer of that "
                              "op has it among its candidates)", (int)KL_MIN(len, 200), p);
            else
                kl_blog_msg(&b->log, KILN_LOG_WARNING, "KILN_TACTIC: '%.*s' runs no layer of this model",
                            (int)KL_MIN(len, 200), p);
        }
        p += len + (e ? 1 : 0);
    }
    if (!s && to_time)
        kl_blog_msg(&b->log, KILN_LOG_INFO, "tactics: %zu node(s) timed, %zu timing-cache hit(s)", timed, hits);
    return s;
}

/* The cuda executor plans each input-shape set from the input shapes
 * alone: a graph whose shapes depend on data (NonZero, NMS ...) runs on the
 * CPU instead, said in the log (an error with strict providers). */
static kiln_status kl_build_cuda_shapes(kl_build *b) {
    const kl_graph *g = b->m->graph;
    const kl_shapes *sh = b->n_points ? &b->opt_shapes[0] : b->have_time_shapes ? &b->time_shapes : NULL;
    const kl_node *bad = NULL;
    const kl_value *bv = NULL;
    for (size_t i = 0; i < g->n_nodes && !bad; i++)
        for (size_t k = 0; k < g->nodes[i]->n_outputs && !bad; k++) {
            const kl_value *v = g->nodes[i]->outputs[k];
            if (v && (!sh || sh->rank[v->id] < 0)) {
                bad = g->nodes[i];
                bv = v;
            }
        }
    if (!bad) return KILN_OK;
    if (!sh) {
        /* no profile, and the shapes could not be evaluated at dynamic dims of 1 */
        if (b->o.strict)
            return kl_errorf(KILN_ERR_UNSUPPORTED,
                             "cuda: the model's shapes could not be evaluated without an optimization profile, and "
                             "strict providers forbid the fallback to the cpu: give --shapes or a profile");
        size_t moved = 0;
        for (size_t i = 0; i < g->n_nodes; i++)
            if (strcmp(b->assign[i].provider->name, "cuda") == 0) {
                b->assign[i].provider = &kl_cpu_provider;
                b->assign[i].cause = "fallback: no shapes without a profile";
                moved++;
            }
        kl_blog_msg(&b->log, KILN_LOG_WARNING,
                    "cuda: the model's shapes could not be evaluated without an optimization profile (dynamic dims "
                    "at 1), so all %zu cuda layers run on the cpu provider instead: give --shapes or a profile",
                    moved);
        return KILN_OK;
    }
    if (b->o.strict)
        return kl_errorf(KILN_ERR_UNSUPPORTED,
                         "cuda: the shape of '%s' (node '%s', %s) depends on the data, which the cuda provider cannot "
                         "plan, and strict providers forbid the fallback to the cpu",
                         bv->name, kl_node_label(bad), bad->op_type);
    size_t moved = 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        if (strcmp(b->assign[i].provider->name, "cuda") == 0) {
            b->assign[i].provider = &kl_cpu_provider;
            b->assign[i].cause = "fallback: data-dependent shapes";
            moved++;
        }
    kl_blog_msg(&b->log, KILN_LOG_WARNING,
                "cuda: the shape of '%s' (node '%s', %s) depends on the data; the cuda provider plans every shape from "
                "the input shapes, so all %zu of its layers run on the cpu provider instead",
                bv->name, kl_node_label(bad), bad->op_type, moved);
    return KILN_OK;
}

#ifdef KILN_HAVE_CUDA
/* The cuda layers' library algorithms, timed on the GPU at the first
 * profile's opt shapes (TensorRT's tactic selection): cuDNN's convolution
 * algorithm and cuBLASLt's candidate per layer, taken from the timing cache
 * when it has them (key: the layer, its shapes, the GPU and library
 * versions, the precision), recorded in the engine. */
/* One layout's pass: per cuda layer the library algorithm (from the timing
 * cache or timed now), its workspace and ms; with time_ms, the median of the
 * whole plan's compute (20 graph launches) at these shapes. */
typedef struct kl_cuda_pick {
    int *algo;
    size_t *ws;
    double *ms;
    char (*keys)[768];
    int *pre;         /* algo before timing: -1 where it was timed now */
    size_t hits;
    double compute_ms; /* < 0: not timed */
    char *key_text;    /* the input-shape key, as text */
} kl_cuda_pick;

static void kl_cuda_pick_free(kl_cuda_pick *pk) {
    kl_free(pk->algo);
    kl_free(pk->ws);
    kl_free(pk->ms);
    kl_free(pk->keys);
    kl_free(pk->pre);
    kl_free(pk->key_text);
    memset(pk, 0, sizeof *pk);
}

static kiln_status kl_cuda_pick_layout(kl_build *b, kl_rt **in, int layout, bool no_own, bool time_ms,
                                       kl_cuda_pick *pk) {
    const kl_graph *g = b->m->graph;
    size_t nn = g->n_nodes, nq = nn ? nn : 1;
    const kl_shapes *sh = b->n_points ? &b->opt_shapes[0] : &b->time_shapes;
    memset(pk, 0, sizeof *pk);
    pk->compute_ms = -1.0;
    pk->algo = kl_calloc(nq, sizeof *pk->algo);
    pk->ws = kl_calloc(nq, sizeof *pk->ws);
    pk->ms = kl_calloc(nq, sizeof *pk->ms);
    pk->keys = kl_calloc(nq, sizeof *pk->keys);
    pk->pre = kl_calloc(nq, sizeof *pk->pre);
    bool *on = kl_calloc(nq, sizeof *on);
    kl_program *prog = NULL;
    kl_cuda_engine *ce = NULL;
    kl_cuda_ctx *cc = NULL;
    kl_rt *outs[64] = {0};
    kiln_status s = (pk->algo && pk->ws && pk->ms && pk->keys && pk->pre && on) ? KILN_OK : KILN_ERR_NO_MEMORY;
    char dev[128], prec[64];
    kl_cuda_device_key(dev, sizeof dev);
    /* NHWC float32 layers time other algorithms (kiln's implicit GEMM among
     * them since "+nhwc2"; "+nhwc" entries were timed without it): their own
     * cache entries, also when KILN_CUDA_NHWC forces the layout (before, such
     * entries shared NCHW's key and an NCHW build could read a code that
     * exists in NHWC only) */
    bool fp16b = (b->o.precision & KILN_PRECISION_FP16) != 0;
    const char *nhe = getenv("KILN_CUDA_NHWC");
    bool nhwc_eff = layout == KL_CUDA_LAYOUT_NHWC ||
                    (layout == KL_CUDA_LAYOUT_AUTO && (nhe && *nhe ? strcmp(nhe, "0") != 0 : fp16b));
    /* fp16 keys name the layout only when it is not the default NHWC; NHWC
     * fp16 entries were "+c2" from the twenty-ninth session's candidates
     * (kiln's few-channel 1x1 kernel, the depthwise taps form at every size)
     * and are "+c3" (NCHW "+nchw2") since kiln's few-row product joined the
     * products' candidates (thirty-second session): entries timed without
     * them are timed again */
    /* a workspace limit (--workspace) other than the default: its own entries
     * (a library algorithm timed under a larger limit may not fit) */
    char wsk[40] = "";
    if (b->o.workspace) snprintf(wsk, sizeof wsk, "+ws%llu", (unsigned long long)b->o.workspace);
    /* cuBLASLt candidate numbers index a list of this length (16 before the
       twentieth session: those entries keep their unsuffixed keys) */
    int nlt = kl_cuda_gemm_candidates();
    if (nlt != 16) snprintf(wsk + strlen(wsk), sizeof wsk - strlen(wsk), "+lt%d", nlt);
    snprintf(prec, sizeof prec, "%s%s%s%s%s", fp16b ? "fp16" : "fp32", (b->o.precision & KILN_PRECISION_TF32) ? "+tf32" : "",
             fp16b ? (nhwc_eff ? "+c3" : "+nchw2") : (nhwc_eff ? "+nhwc2" : ""), no_own ? "+noig" : "", wsk);
    for (size_t i = 0; i < nn && !s; i++) {
        pk->algo[i] = -1;
        on[i] = strcmp(b->assign[i].provider->name, "cuda") == 0;
        if (!on[i] || strcmp(b->tactic[i]->name, "kernel") == 0) continue;
        char k[512];
        kl_tactic_key(g->nodes[i], sh, "cuda", k, sizeof k);
        snprintf(pk->keys[i], sizeof pk->keys[i], "%s|%s|%s", k, dev, prec);
        double v;
        if (b->tc && kl_timing_cache_get(b->tc, pk->keys[i], KL_CUDA_ALGO_TACTIC, &v)) {
            pk->algo[i] = (int)v;
            pk->hits++;
        }
    }
    if (!s) memcpy(pk->pre, pk->algo, nn * sizeof *pk->pre);
    if (!s) s = kl_program_create_ex(b->m, 1, 0, &prog);
    /* the library workspace a layer may take: --workspace, else the provider's default */
    kl_cuda_options opt = {(b->o.precision & KILN_PRECISION_FP16) != 0,
                           (b->o.precision & KILN_PRECISION_TF32) != 0, time_ms, (size_t)b->o.workspace, layout, no_own};
    if (!s) s = kl_cuda_engine_create(b->m, prog, on, &opt, &ce);
    int64_t key[KILN_MAX_RANK * 8 + 8];
    size_t key_len = 0;
    kl_cuda_plan_key(in, g->n_inputs, key, &key_len, KL_ARRAY_LEN(key));
    if (!s) s = kl_cuda_engine_set_algos(ce, pk->algo, key, key_len);
    if (!s) s = kl_cuda_ctx_create(ce, &cc);
    if (!s) s = kl_cuda_ctx_plan(cc, in, g->n_inputs);
    if (!s) kl_cuda_ctx_choices(cc, pk->algo, pk->ws, pk->ms);
    if (!s) {
        size_t host = 0;
        kl_cuda_ctx_stats(cc, NULL, &host, NULL);
        if (host)
            kl_blog_msg(&b->log, KILN_LOG_WARNING, "cuda plan (%s): %zu layer(s) the GPU cannot run fall back to the host CPU",
                        layout == KL_CUDA_LAYOUT_NHWC ? "NHWC" : layout == KL_CUDA_LAYOUT_NCHW ? "NCHW" : "auto layout", host);
    }
    if (!s && time_ms) {
        /* one run puts the inputs on the device, then the compute alone */
        double t[20];
        size_t no = g->n_outputs < 64 ? g->n_outputs : 64;
        s = kl_cuda_ctx_run(cc, in, g->n_inputs, outs, no);
        if (!s) s = kl_cuda_ctx_time_compute(cc, 20, t);
        if (!s) {
            qsort(t, 20, sizeof t[0], kl_cmp_double);
            pk->compute_ms = 0.5 * (t[9] + t[10]);
        }
    }
    if (!s) {
        kl_text kt = {0};
        for (size_t k = 0; k < key_len; k++) kl_textf(&kt, "%s%lld", k ? " " : "", (long long)key[k]);
        s = kt.err;
        if (!s) pk->key_text = kt.s ? kt.s : kl_strdup("");
        else kl_free(kt.s);
        if (!s && !pk->key_text) s = KILN_ERR_NO_MEMORY;
    }
    for (size_t j = 0; j < 64; j++) kl_rt_unref(outs[j]);
    kl_cuda_ctx_free(cc);
    kl_cuda_engine_free(ce);
    kl_program_free(prog);
    kl_free(on);
    if (s) kl_cuda_pick_free(pk);
    return s;
}

static kiln_status kl_build_cuda_tactics(kl_build *b) {
    const kl_graph *g = b->m->graph;
    size_t nn = g->n_nodes;
    const kl_shapes *sh = b->n_points ? &b->opt_shapes[0] : b->have_time_shapes ? &b->time_shapes : NULL;
    bool any = false, conv = false;
    for (size_t i = 0; i < nn; i++) {
        bool on = strcmp(b->assign[i].provider->name, "cuda") == 0;
        any |= on;
        conv |= on && (strcmp(g->nodes[i]->op_type, "Conv") == 0 || strcmp(g->nodes[i]->op_type, "FusedConv") == 0);
    }
    if (!any || !sh || g->n_inputs > 64) return KILN_OK; /* chosen when a context plans its shapes */
    kl_rt *in[64] = {0};
    kiln_status s = KILN_OK;
    for (size_t j = 0; j < g->n_inputs && !s; j++) {
        const kl_value *v = g->inputs[j];
        if (v->flags & KL_VALUE_INITIALIZER) continue;
        if (sh->rank[v->id] < 0) goto done; /* not plannable: leave it to run time */
        s = kl_rt_tensor(sh->dtype[v->id], sh->rank[v->id], sh->dims[v->id], &in[j]);
    }
    /* fp32 convolution networks: NCHW suits cuDNN's FMA kernels on dense
     * convolutions, NHWC kiln's depthwise kernel; the whole plan is timed in
     * both and the faster kept (KILN_CUDA_NHWC in the environment decides
     * instead). */
    bool fp16 = (b->o.precision & KILN_PRECISION_FP16) != 0;
    const char *nh = getenv("KILN_CUDA_NHWC");
    bool both = !fp16 && conv && !(nh && *nh);
    kl_cuda_pick pick[2] = {{0}};
    int layouts[2] = {KL_CUDA_LAYOUT_AUTO, KL_CUDA_LAYOUT_NHWC};
    if (both) layouts[0] = KL_CUDA_LAYOUT_NCHW;
    size_t best = 0;
    /* fp16: where kiln's implicit-GEMM convolution won layers (timed alone,
     * each against cuDNN plus its separate activation pass), the plan
     * without it is timed too and the faster kept: alone, the second
     * launch costs more than inside a CUDA graph (YOLOv8n FP16 b1 ran
     * 0.761 ms without, 0.777 ms with the 53 layers it won alone). */
    bool own_ab = false;
    if (!s) s = kl_cuda_pick_layout(b, in, layouts[0], false, both || fp16, &pick[0]);
    if (!s && fp16 && conv && !getenv("KILN_CUDA_NO_IGEMM")) {
        size_t n_own = 0;
        for (size_t i = 0; i < nn; i++) n_own += kl_cuda_algo_is_own_conv(pick[0].algo[i]);
        if (n_own) {
            kiln_status s1 = kl_cuda_pick_layout(b, in, layouts[0], true, true, &pick[1]);
            if (s1) {
                kl_blog_msg(&b->log, KILN_LOG_INFO, "cuda own convolutions: the plan without them not timed (%s)", kiln_last_error());
                kl_error_clear();
            } else {
                own_ab = true;
                if (pick[1].compute_ms >= 0 && pick[0].compute_ms >= 0 && pick[1].compute_ms < pick[0].compute_ms) best = 1;
                kl_blog_msg(&b->log, KILN_LOG_INFO,
                            "cuda own convolutions: %zu layer(s) with them %.3f ms, without %.3f ms per run: %s kept", n_own,
                            pick[0].compute_ms, pick[1].compute_ms, best ? "without" : "with");
            }
        }
    }
    if (!s && both) {
        kiln_status s1 = kl_cuda_pick_layout(b, in, layouts[1], false, true, &pick[1]);
        if (s1) { /* NHWC could not be planned or run: NCHW stays, said in the log */
            kl_blog_msg(&b->log, KILN_LOG_INFO, "cuda layout: NHWC not timed (%s): NCHW kept", kiln_last_error());
            kl_error_clear();
            both = false;
        } else {
            if (pick[1].compute_ms >= 0 && pick[0].compute_ms >= 0 && pick[1].compute_ms < pick[0].compute_ms) best = 1;
            kl_blog_msg(&b->log, KILN_LOG_INFO, "cuda layout: NCHW %.3f ms, NHWC %.3f ms per run: %s kept",
                        pick[0].compute_ms, pick[1].compute_ms, best ? "NHWC" : "NCHW");
        }
    }
    if (!s) {
        kl_cuda_pick *pk = &pick[best];
        /* the layout the plan was timed in; one forced by KILN_CUDA_NHWC at build is recorded
         * too, so the engine runs its layers' recorded algorithms in that layout without it
         * (kiln's NHWC-only convolution kernels failed to set up in an NCHW context) */
        b->cuda_layout = both ? layouts[best]
                         : nh && *nh ? (strcmp(nh, "0") != 0 ? KL_CUDA_LAYOUT_NHWC : KL_CUDA_LAYOUT_NCHW)
                                     : KL_CUDA_LAYOUT_AUTO;
        kl_text al = {0};
        for (size_t k = 0; k < (both || own_ab ? 2u : 1u) && !s; k++) {
            b->cuda_hits += pick[k].hits;
            for (size_t i = 0; i < nn && !s; i++) {
                if (pick[k].algo[i] < 0) continue;
                if (pick[k].pre[i] < 0) b->cuda_timed++;
                if (b->tc && pick[k].keys[i][0]) s = kl_timing_cache_put(b->tc, pick[k].keys[i], KL_CUDA_ALGO_TACTIC, pick[k].algo[i]);
            }
        }
        for (size_t i = 0; i < nn && !s; i++) {
            if (pk->algo[i] < 0) continue;
            kl_textf(&al, "%s%zu:%d", al.len ? "," : "", i, pk->algo[i]);
            b->workspace[i] = pk->ws[i];
            if (pk->ms[i] > 0) b->tactic_ms[i] = pk->ms[i];
        }
        if (!s) s = al.err;
        if (!s) {
            b->cuda_algos = al.s ? al.s : kl_strdup("");
            b->cuda_algo_key = pk->key_text;
            pk->key_text = NULL;
        } else {
            kl_free(al.s);
        }
    }
    kl_cuda_pick_free(&pick[0]);
    kl_cuda_pick_free(&pick[1]);
done:
    for (size_t j = 0; j < 64; j++) kl_rt_unref(in[j]);
    if (s) return kl_error_context(s, "cuda tactics: ");
    kl_blog_msg(&b->log, KILN_LOG_INFO, "cuda tactics: %zu layer(s) timed on the GPU, %zu timing-cache hit(s)", b->cuda_timed,
                b->cuda_hits);
    return KILN_OK;
}
#endif

/* The packed section: each layer whose tactic exports packed weights
 * (kl_tactic.export_packed), packed now on the build's thread count.
 * Layout (docs/ENGINE.md): "KLPACK01", u32 count, u32 0, count entries of
 * {u32 layer, u32 0, u64 offset, u64 size} (offsets from the section's
 * start, multiples of 64), then the data.  One state at a time is alive. */
#define KL_PACK_MAGIC "KLPACK01"
static size_t kl_round64(size_t x) { return (x + 63) / 64 * 64; }

static kiln_status kl_build_packed(kl_build *b, const kl_graph *g, void **out, size_t *out_size) {
    *out = NULL;
    *out_size = 0;
    size_t n = g->n_nodes, count = 0;
    for (size_t i = 0; i < n; i++) count += b->tactic[i]->export_packed && b->tactic[i]->prepare;
    if (!count) return KILN_OK;
    size_t head = kl_round64(16 + count * 24), cap = head + ((size_t)1 << 20), used = head;
    uint8_t *buf = kl_calloc(cap, 1);
    if (!buf) return KILN_ERR_NO_MEMORY;
    memcpy(buf, KL_PACK_MAGIC, 8);
    int threads = b->o.threads > 0 ? b->o.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    kiln_status s = KILN_OK;
    uint32_t k = 0;
    for (size_t i = 0; i < n && !s; i++) {
        const kl_tactic *t = b->tactic[i];
        if (!t->export_packed || !t->prepare) continue;
        void *state = NULL;
        size_t ws = 0, need = 0;
        s = t->prepare(g->nodes[i], &state, &ws);
        if (!s) s = t->export_packed(state, threads, NULL, &need);
        if (!s && need) {
            if (used + kl_round64(need) > cap) {
                size_t nc = KL_MAX(cap * 2, used + kl_round64(need));
                uint8_t *nb = kl_realloc_array(buf, nc, 1);
                if (!nb) s = KILN_ERR_NO_MEMORY;
                else {
                    memset(nb + cap, 0, nc - cap);
                    buf = nb, cap = nc;
                }
            }
            size_t got = need;
            if (!s) s = t->export_packed(state, threads, buf + used, &got);
            if (!s) {
                uint8_t *e = buf + 16 + (size_t)k * 24;
                uint32_t layer = (uint32_t)i;
                uint64_t off = used, sz = need;
                memcpy(e, &layer, 4), memcpy(e + 8, &off, 8), memcpy(e + 16, &sz, 8);
                k++;
                used += kl_round64(need);
            }
        }
        if (t->release) t->release(state);
        if (s) s = kl_error_context(s, "layer '%s' tactic '%s': packing weights for the engine: ",
                                    kl_node_label(g->nodes[i]), t->name);
    }
    if (s) {
        kl_free(buf);
        return s;
    }
    memcpy(buf + 8, &k, 4);
    *out = buf;
    *out_size = used;
    return KILN_OK;
}

/* Write the engine bytes of build b into *bytes (kl_malloc'd). */
/* Write the engine of build b into fd when fd >= 0 (*to_file true), else
 * (or when writing the file fails) into *bytes (kl_malloc'd). */
static kiln_status kl_build_write(kl_build *b, const char *sha, int fd, bool *to_file, void **bytes, size_t *size) {
    const kl_graph *g = b->m->graph;
    kl_text tac = {0}, prof = {0}, plans = {0};
    for (size_t i = 0; i < g->n_nodes; i++)
        kl_textf(&tac, "N\t%zu\t%s\t%s\t%zu\t%.6f\n", i, b->assign[i].provider->name, b->tactic[i]->name,
                 b->workspace[i], b->tactic_ms[i]);
    for (size_t p = 0; p < b->o.n_profiles; p++) {
        kl_textf(&prof, "P\t%zu\n", p);
        for (size_t k = 0; k < b->o.profiles[p].n_inputs; k++) {
            const kl_profile_input *pi = &b->o.profiles[p].inputs[k];
            kl_textf(&prof, "I\t%s\t%d\t", pi->name, pi->rank);
            kl_text_dims(&prof, pi->min, pi->rank);
            kl_textf(&prof, "\t");
            kl_text_dims(&prof, pi->opt, pi->rank);
            kl_textf(&prof, "\t");
            kl_text_dims(&prof, pi->max, pi->rank);
            kl_textf(&prof, "\n");
        }
    }
    size_t arena_max = 0, inter_max = 0;
    for (size_t p = 0; p < b->n_points; p++) {
        const kl_mem_plan *mp = &b->plans[p];
        arena_max = KL_MAX(arena_max, mp->arena_bytes);
        inter_max = KL_MAX(inter_max, mp->intermediate_bytes);
        kl_textf(&plans, "P\t%zu\t%zu\t%zu\n", p, mp->arena_bytes, mp->intermediate_bytes);
        for (size_t id = 0; id < mp->n_values; id++) {
            const kl_value *v = g->values[id];
            if (mp->offset[id] < 0 || !v || strpbrk(v->name, "\t\n\r")) continue;
            kl_textf(&plans, "V\t%s\t%lld\t%zu\t%d\n", v->name, (long long)mp->offset[id], mp->capacity[id],
                     mp->inplace[id]);
        }
    }
    kiln_status s = tac.err ? tac.err : prof.err ? prof.err : plans.err;
    kl_engine_writer *w = NULL;
    if (!s) s = kl_engine_writer_create(&w);
    char num[64], feat[64], prov[128] = "";
    for (size_t i = 0; i < b->n_order; i++) {
        strncat(prov, i ? "," : "", sizeof prov - strlen(prov) - 1);
        strncat(prov, b->order[i]->name, sizeof prov - strlen(prov) - 1);
    }
    unsigned cpu_used = 0;
    for (size_t i = 0; i < g->n_nodes; i++) cpu_used |= b->tactic[i]->isa;
    char precision[128];
    bool gpu_layers = false;
    for (size_t i = 0; i < g->n_nodes; i++) gpu_layers |= strcmp(b->assign[i].provider->name, "cuda") == 0;
    bool reduced = (b->o.precision & (KILN_PRECISION_FP16 | KILN_PRECISION_BF16)) != 0;
    bool gpu_fp16 = (b->o.precision & KILN_PRECISION_FP16) != 0; /* cuda has no bf16 kernels */
    snprintf(precision, sizeof precision, "%s", gpu_layers && gpu_fp16 ? "fp16 (cuda layers; cpu layers keep fp32)"
                                                : gpu_layers && reduced ? "fp32 (bf16 allowed; no provider has bf16 kernels)"
                                                : reduced ? "fp32 (fp16/bf16 allowed; cpu keeps fp32: no reduced-precision kernels)"
                                                          : "fp32");
#define KL_META(k, v) \
    if (!s) s = kl_engine_writer_meta(w, k, v)
    KL_META("kiln_version", KILN_VERSION);
    KL_META("kiln_build", kl_build_id());
    KL_META("model_sha256", sha);
    KL_META("model_path", b->m->path ? b->m->path : "<memory>");
    KL_META("build_options", b->opts_desc);
    KL_META("providers", prov);
    KL_META("cpu_features", kl_features_format(cpu_used, feat, sizeof feat));
    KL_META("cpu_features_build_machine", kl_features_format(kl_cpu_features(), feat, sizeof feat));
    KL_META("precision", precision);
    KL_META("denormals", b->o.keep_denormals ? "keep" : "flush");
    snprintf(num, sizeof num, "%d", b->o.threads);
    KL_META("threads", num);
    snprintf(num, sizeof num, "%zu", b->o.n_profiles);
    KL_META("profiles", num);
    snprintf(num, sizeof num, "%zu", b->nodes_before);
    KL_META("nodes_before", num);
    snprintf(num, sizeof num, "%zu", kl_count_nodes(g));
    KL_META("nodes_after", num);
    snprintf(num, sizeof num, "%zu", arena_max);
    KL_META("arena_bytes", num);
    snprintf(num, sizeof num, "%zu", inter_max);
    KL_META("intermediate_bytes", num);
    KL_META("passes", b->log.passes ? b->log.passes : "");
    KL_META("partition", b->partition ? b->partition : "");
#ifdef KILN_HAVE_CUDA
    if (gpu_layers) {
        char dev[256];
        kl_cuda_device_key(dev, sizeof dev);
        KL_META("cuda_device", dev);
        kl_cuda_describe(dev, sizeof dev);
        KL_META("cuda_device_name", dev);
        KL_META("cuda_precision", (b->o.precision & KILN_PRECISION_FP16) ? "fp16" : "fp32");
        KL_META("cuda_tf32", (b->o.precision & KILN_PRECISION_TF32) ? "1" : "0");
        char wsb[32];
        snprintf(wsb, sizeof wsb, "%llu", (unsigned long long)b->o.workspace);
        if (b->o.workspace) KL_META("cuda_workspace", wsb); /* the limit the layers' algorithms were chosen under */
        if (b->cuda_layout != KL_CUDA_LAYOUT_AUTO)
            KL_META("cuda_layout", b->cuda_layout == KL_CUDA_LAYOUT_NHWC ? "nhwc" : "nchw");
        if (b->cuda_algos) {
            KL_META("cuda_algos", b->cuda_algos);
            KL_META("cuda_algo_numbering", KL_CUDA_ALGO_NUMBERING_TEXT);
            KL_META("cuda_algo_key", b->cuda_algo_key);
        }
    }
#endif
#undef KL_META
    if (!s) s = kl_engine_writer_section_flags(w, KL_SEC_GRAPH, KL_SEC_FLAG_REQUIRED, b->w.model, b->w.model_size);
    if (!s) s = kl_engine_writer_section_flags(w, KL_SEC_WEIGHTS, KL_SEC_FLAG_REQUIRED, b->w.blob ? b->w.blob : "",
                                               b->w.blob_size);
    if (!s) s = kl_engine_writer_section_flags(w, KL_SEC_TACTICS, KL_SEC_FLAG_REQUIRED, tac.s ? tac.s : "", tac.len);
    if (!s) s = kl_engine_writer_section_flags(w, KL_SEC_PROFILES, KL_SEC_FLAG_REQUIRED, prof.s ? prof.s : "", prof.len);
    if (!s) s = kl_engine_writer_section_flags(w, KL_SEC_PLANS, 0, plans.s ? plans.s : "", plans.len);
    void *packed = NULL;
    size_t packed_size = 0;
    if (!s && b->o.prepack) s = kl_build_packed(b, g, &packed, &packed_size);
    if (!s && packed) s = kl_engine_writer_section_flags(w, KL_SEC_PACKED, 0, packed, packed_size);
    /* The optimized model (its folded weights included) is in b->w now:
     * released before the engine image is made, so the two never coexist. */
    kl_model_free(b->m);
    b->m = NULL;
    *to_file = false;
    if (!s && fd >= 0) {
        if (kl_engine_writer_write_fd(w, fd) == KILN_OK) *to_file = true;
        else kl_error_clear(); /* the file could not be written: the image goes to memory */
    }
    if (!s && !*to_file) s = kl_engine_writer_finish(w, bytes, size);
    kl_engine_writer_destroy(w);
    kl_free(packed);
    kl_free(tac.s);
    kl_free(prof.s);
    kl_free(plans.s);
    return s;
}

static void kl_pass_log_adapter(void *user, const char *line) { kl_blog_pass(user, line); }

/* Tensors of g (subgraphs not counted) whose shape is fully known. */
static size_t kl_count_static(const kl_graph *g) {
    size_t k = 0;
    for (size_t i = 0; i < g->n_values; i++) {
        const kl_value *v = g->values[i];
        k += v && v->type.kind == KL_TYPE_TENSOR && kl_shape_is_static(&v->type.shape);
    }
    return k;
}

/* Shapes again after the passes: folding can turn a computed size (an
 * input transform's ReduceMax/Ceil/Pad) into constants, and the tactics and
 * the partition look at the graph's types.  The re-inference merges with
 * the types the values have (kl_infer_graph_refine): symbolic input dims
 * stay symbolic, so a dynamic model is not specialized to a profile.  A
 * node it cannot infer keeps its types; that is a warning in the build
 * log, not a build error, and leaves no problem on the model. */
static kiln_status kl_build_reinfer(kl_build *b) {
    kl_model *m = b->m;
    size_t n_problems = m->n_problems, before = kl_count_static(m->graph);
    kiln_status s = kl_infer_graph_refine(m, m->graph);
    for (size_t i = n_problems; i < m->n_problems; i++)
        kl_blog_msg(&b->log, KILN_LOG_WARNING, "shapes: re-inference after the passes: %s (types kept)",
                    m->problems[i].message);
    m->n_problems = n_problems;
    if (s) return s;
    size_t after = kl_count_static(m->graph);
    if (after > before)
        kl_blog_msg(&b->log, KILN_LOG_INFO, "shapes: re-inferred after the passes: %zu more tensor(s) with static shapes",
                    after - before);
    return KILN_OK;
}

/* An unlinked temporary file on a disk-backed file system ($TMPDIR, else
 * /tmp) for the engine image, or -1 (none, a RAM file system, or
 * KILN_BUILD_IN_MEMORY set).  Mapped from there, the engine's weights are
 * clean file pages: a context drops them from the resident set once it has
 * packed them, as with an engine file, instead of holding a heap copy
 * beside the packed one.  On tmpfs the pages would stay in RAM anyway, so
 * the image stays on the heap there. */
static int kl_build_tmpfile(void) {
#ifdef __linux__
    if (getenv("KILN_BUILD_IN_MEMORY")) return -1;
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    struct statfs sf;
    unsigned long fs = 0;
    if (statfs(dir, &sf) == 0) fs = (unsigned long)sf.f_type;
    if (!fs || fs == 0x01021994ul /* tmpfs */ || fs == 0x858458f6ul /* ramfs */)
        return -1;
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s/kiln-engine-XXXXXX", dir) >= (int)sizeof path) return -1;
        fd = mkostemp(path, O_CLOEXEC);
        if (fd >= 0) unlink(path);
    }
    return fd;
#else
    return -1;
#endif
}

/* Open the engine image written to fd: mapped (through /proc/self/fd), or
 * read back into memory where it cannot be mapped that way. */
static kiln_status kl_build_open_file(int fd, kiln_engine **out) {
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    if (kl_engine_load_named(p, "<built engine>", out) == KILN_OK) return KILN_OK;
    kl_error_clear();
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0) return kl_errorf(KILN_ERR_IO, "built engine: cannot read it back");
    size_t size = (size_t)st.st_size;
    uint8_t *bytes = kl_malloc(size);
    if (!bytes) return KILN_ERR_NO_MEMORY;
    for (size_t got = 0; got < size;) {
        ssize_t r = pread(fd, bytes + got, size - got, (off_t)got);
        if (r <= 0) {
            kl_free(bytes);
            return kl_errorf(KILN_ERR_IO, "built engine: cannot read it back: %s", r < 0 ? strerror(errno) : "short file");
        }
        got += (size_t)r;
    }
    return kl_engine_open(bytes, size, bytes, "<built engine>", out);
}

KILN_API kiln_status kiln_build(const kiln_model *model, const kiln_build_options *options, kiln_engine **out) {
    if (!model || !out) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_build: %s is NULL", !model ? "model" : "out");
    const kl_model *src = model->ir;
    const char *path = src->path ? src->path : "<model>";
    kl_build b;
    memset(&b, 0, sizeof b);
    kiln_build_options defaults;
    memset(&defaults, 0, sizeof defaults);
    defaults.pass_limit = -1;
    defaults.timing = true;
    KL_TRY(kl_build_options_copy(&b.o, options ? options : &defaults));
    b.log.o = &b.o;
    double t_start = kl_now_ms();
    kiln_status s = KILN_OK;
    /* Refuse models that break ONNX rules, as sessions do. */
    kl_check_result *cr = NULL;
    s = kl_check_model(src, &cr);
    if (!s && cr->n_errors) {
        const char *first = "";
        for (size_t i = 0; i < cr->n; i++)
            if (cr->items[i].severity == KILN_CHECK_ERROR) {
                first = cr->items[i].message ? cr->items[i].message : "";
                break;
            }
        s = kl_errorf(KILN_ERR_INVALID_MODEL, "the model breaks ONNX rules (%zu error%s; first: %s)", cr->n_errors,
                      cr->n_errors == 1 ? "" : "s", first);
    }
    kl_check_free(cr);
    if (s) goto fail;
    /* Providers in preference order. */
    if (b.o.n_providers == 0) {
        for (size_t i = 0; i < kl_provider_count(); i++) {
            const char *why = NULL;
            if (kl_provider_at(i)->usable(&why)) b.order[b.n_order++] = kl_provider_at(i);
        }
    } else {
        for (int i = 0; i < b.o.n_providers; i++) b.order[b.n_order++] = kl_provider_find(b.o.providers[i]);
        bool has_cpu = false;
        for (size_t i = 0; i < b.n_order; i++) has_cpu |= b.order[i] == &kl_cpu_provider;
        if (!has_cpu && !b.o.strict) b.order[b.n_order++] = &kl_cpu_provider; /* cpu is the last resort */
    }
    bool has_cuda_order = false;
    for (size_t i = 0; i < b.n_order; i++) has_cuda_order |= strcmp(b.order[i]->name, "cuda") == 0;
    /* BF16 is not FP16: a provider without bf16 kernels (all of them, for
     * now) keeps fp32 where only bf16 is allowed, as TensorRT does for a
     * precision it has no tactic for; it used to run cuda layers in fp16 */
    if ((b.o.precision & KILN_PRECISION_BF16) && !(b.o.precision & KILN_PRECISION_FP16) && has_cuda_order)
        kl_blog_msg(&b.log, KILN_LOG_WARNING,
                    "precision: bf16 allowed, but the cuda provider has no bf16 kernels: its layers keep fp32 (--fp16 allows fp16)");
    if ((b.o.precision & (KILN_PRECISION_FP16 | KILN_PRECISION_BF16)) && !has_cuda_order)
        kl_blog_msg(&b.log, KILN_LOG_WARNING, "precision: %s allowed, but the cpu provider has no %s kernels: every layer keeps fp32",
                    (b.o.precision & KILN_PRECISION_FP16) ? "fp16" : "bf16",
                    (b.o.precision & KILN_PRECISION_FP16) ? "fp16" : "bf16");
    if ((s = kl_build_options_describe(&b.o, &b.opts_desc))) goto fail;
    /* A private copy of the model to optimize (zero-copy over the caller's bytes). */
    if ((s = kl_onnx_parse(src->bytes, src->size, path, src->base_dir, &b.m))) goto fail;
    b.nodes_before = kl_count_nodes(b.m->graph);
    if (!b.o.no_optimize) {
        kl_pass_options po = {(const char *const *)b.o.disabled, b.o.n_disabled, b.o.pass_limit, b.o.fold_budget,
                              kl_pass_log_adapter, &b.log, false};
        /* CPU-only fused ops (their kernels need the vector levels) when no GPU provider is asked for */
        po.cpu_fused = !has_cuda_order && kl_isa_active() >= KL_ISA_AVX2;
        /* convolutions on channel-blocked activations (passes/layout.c) with layout=nchwc */
        const char *lay = getenv("KILN_LAYOUT");
        po.layout_nchwc = po.cpu_fused && (b.o.layout_set ? b.o.layout_nchwc : lay && strcmp(lay, "nchwc") == 0);
        if ((s = kl_passes_run(b.m, &po, &b.stats))) goto fail;
        if ((s = kl_build_reinfer(&b))) goto fail;
    }
    kl_blog_msg(&b.log, KILN_LOG_INFO, "graph: %zu nodes before optimization, %zu after", b.nodes_before,
                kl_count_nodes(b.m->graph));
    if ((s = kl_partition(b.m->graph, b.order, b.n_order, b.o.strict, &b.assign, &b.partition))) goto fail;
    for (char *line = b.partition, *e; line && *line; line = e + 1) {
        e = strchr(line, '\n');
        if (!e) break;
        kl_blog_msg(&b.log, KILN_LOG_INFO, "partition: %.*s", (int)(e - line), line);
    }
    /* Profiles and concrete shapes. */
    if ((s = kl_profiles_check(b.m->graph, &b.o))) goto fail;
    bool dynamic = kl_graph_has_dynamic_inputs(b.m->graph);
    b.n_points = b.o.n_profiles ? b.o.n_profiles : dynamic ? 0 : 1;
    if (!b.n_points)
        kl_blog_msg(&b.log, KILN_LOG_WARNING,
                    "the model has dynamic input axes and no optimization profile: the engine accepts any shape, "
                    "and intermediate tensors are allocated at run time (give --minShapes/--optShapes/--maxShapes "
                    "for a planned arena)");
    b.opt_shapes = kl_calloc(b.n_points ? b.n_points : 1, sizeof *b.opt_shapes);
    b.plans = kl_calloc(b.n_points ? b.n_points : 1, sizeof *b.plans);
    if (!b.opt_shapes || !b.plans) {
        s = KILN_ERR_NO_MEMORY;
        goto fail;
    }
    for (size_t p = 0; p < b.n_points && !s; p++) {
        kl_shapes mx;
        s = kl_shapes_eval(b.m, kl_build_point(&b, p), KL_AT_OPT, &b.opt_shapes[p]);
        if (!s) s = kl_shapes_eval(b.m, kl_build_point(&b, p), KL_AT_MAX, &mx);
        if (!s) {
            s = kl_mem_plan_build(b.m->graph, &mx, &b.plans[p]);
            kl_shapes_free(&mx);
        }
        if (s) kl_error_context(s, "profile %zu: ", p);
    }
    if (s) goto fail;
    bool any_cuda = false;
    for (size_t i = 0; i < b.m->graph->n_nodes; i++) any_cuda |= strcmp(b.assign[i].provider->name, "cuda") == 0;
    if (!b.n_points && (b.o.timing || any_cuda)) {
        /* Time tactics at dynamic dims = 1 (trtexec's default shapes); if
         * even that cannot be evaluated, quality tiers decide. */
        const kl_graph *mg = b.m->graph;
        b.time_profile.inputs = kl_calloc(mg->n_inputs ? mg->n_inputs : 1, sizeof *b.time_profile.inputs);
        if (!b.time_profile.inputs) {
            s = KILN_ERR_NO_MEMORY;
            goto fail;
        }
        for (size_t i = 0; i < mg->n_inputs; i++) {
            const kl_value *v = mg->inputs[i];
            if ((v->flags & KL_VALUE_INITIALIZER) || v->type.kind != KL_TYPE_TENSOR || v->type.shape.rank < 0 ||
                v->type.shape.rank > KILN_MAX_RANK)
                continue;
            kl_profile_input *pi = &b.time_profile.inputs[b.time_profile.n_inputs];
            if (!(pi->name = kl_strdup(v->name))) {
                s = KILN_ERR_NO_MEMORY;
                goto fail;
            }
            b.time_profile.n_inputs++;
            pi->rank = v->type.shape.rank;
            for (int a = 0; a < pi->rank; a++) {
                int64_t d = v->type.shape.dims[a].value;
                pi->min[a] = pi->opt[a] = pi->max[a] = d >= 0 ? d : 1;
            }
        }
        if (kl_shapes_eval(b.m, &b.time_profile, KL_AT_OPT, &b.time_shapes) == KILN_OK) {
            b.have_time_shapes = true;
        } else {
            kl_blog_msg(&b.log, KILN_LOG_INFO, "shapes: not evaluable with the dynamic dims at 1 (%s): no shapes to "
                        "time tactics at", kiln_last_error());
            kl_error_clear();
        }
    }
    if (any_cuda && (s = kl_build_cuda_shapes(&b))) goto fail;
    if (b.o.timing_cache && (s = kl_timing_cache_load(b.o.timing_cache, &b.tc))) goto fail;
    if (!b.tc && (s = kl_timing_cache_create(&b.tc))) goto fail; /* in-memory: repeated shapes time once */
    /* tactics timed as the engine will run: subnormals flushed unless kept */
    unsigned fp = kl_fp_enter(!b.o.keep_denormals);
    s = kl_build_tactics(&b);
    kl_fp_leave(fp);
    if (s) goto fail;
#ifdef KILN_HAVE_CUDA
    if ((s = kl_build_cuda_tactics(&b))) goto fail;
#endif
    if (b.o.timing_cache && (s = kl_timing_cache_save(b.tc, b.o.timing_cache))) goto fail;
    for (size_t p = 0; p < b.n_points; p++)
        kl_blog_msg(&b.log, KILN_LOG_INFO, "memory: profile %zu arena %.2f MB for %.2f MB of intermediate tensors (%.0f%%)",
                    p, b.plans[p].arena_bytes / 1e6, b.plans[p].intermediate_bytes / 1e6,
                    b.plans[p].intermediate_bytes ? 100.0 * (double)b.plans[p].arena_bytes /
                                                        (double)b.plans[p].intermediate_bytes
                                                  : 0.0);
    /* Serialize and load.  The source model's mapped pages were read by the
     * passes; dropped now (clean file pages: read back if touched again), the
     * blob re-reads only the weights the passes left as they were. */
    char sha[65];
    kl_model_sha256(src, sha); /* reads every byte of the file: before the pages are dropped */
    kl_mapfile_release(src->file.data, src->file.size);
    for (size_t i = 0; i < src->n_ext_files; i++) kl_mapfile_release(src->ext_files[i].data, src->ext_files[i].size);
    if ((s = kl_onnx_write_model(b.m, &b.w))) goto fail;
    void *bytes = NULL;
    size_t size = 0;
    bool to_file = false;
    int fd = kl_build_tmpfile();
    if ((s = kl_build_write(&b, sha, fd, &to_file, &bytes, &size))) {
        if (fd >= 0) close(fd);
        goto fail;
    }
    kl_build_free(&b);
    kiln_engine *e = NULL;
    if (to_file) {
        struct stat st;
        size = fstat(fd, &st) == 0 ? (size_t)st.st_size : 0;
        s = kl_build_open_file(fd, &e);
    } else {
        s = kl_engine_open(bytes, size, bytes, "<built engine>", &e);
    }
    if (fd >= 0) close(fd); /* a mapping keeps the unlinked file */
    if (s) return kl_error_context(s, "%s: ", path);
    e->threads = options ? options->threads : 0;
    if (options && options->log && KILN_LOG_INFO <= options->log_level) {
        char line[256];
        snprintf(line, sizeof line, "built in %.1f ms: %zu layers, engine %.2f MB", kl_now_ms() - t_start, e->n_layers,
                 (double)size / 1e6);
        options->log(KILN_LOG_INFO, line, options->log_user);
    }
    *out = e;
    return KILN_OK;
fail:
    kl_build_free(&b);
    return kl_error_context(s, "%s: ", path);
}
