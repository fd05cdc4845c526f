/*
 * perf.c — what performance figures are measured against: facts about this
 * machine's CPU (kiln_cpu_get), its measured FP32 FMA peak
 * (kiln_cpu_peak_gflops), and the multiply-accumulate count of a model or
 * an engine at given input shapes (kiln_model_macs, kiln_engine_macs).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cpu/x86/isa.h"
#include "ir/macs.h"
#include "runtime/engine.h"

/* ---- the CPU ---------------------------------------------------------------- */

static char g_levels[64], g_features[256], g_cores[24];
static pthread_once_t g_cpu_once = PTHREAD_ONCE_INIT;

/* Append " name" (or "name" first) to buf when `on`. */
static void cpu_append(char *buf, size_t size, bool on, const char *sep, const char *name) {
    if (!on) return;
    size_t used = strlen(buf);
    snprintf(buf + used, size - used, "%s%s", used ? sep : "", name);
}

static void cpu_init(void) {
    const kl_cpu_isa *c = kl_cpu_isa_get();
    for (int i = KL_ISA_REF; i < KL_ISA_COUNT; i++)
        cpu_append(g_levels, sizeof g_levels, kl_isa_supported((kl_isa)i), ",", kl_isa_name((kl_isa)i));
    const struct {
        bool on;
        const char *name;
    } f[] = {{c->avx, "avx"},         {c->avx2, "avx2"},         {c->fma, "fma"},
             {c->f16c, "f16c"},       {c->avx512f, "avx512f"},   {c->avx512bw, "avx512bw"},
             {c->avx512dq, "avx512dq"}, {c->avx512vl, "avx512vl"}, {c->avx512vnni, "avx512vnni"},
             {c->avx512bf16, "avx512bf16"}};
    for (size_t i = 0; i < KL_ARRAY_LEN(f); i++) cpu_append(g_features, sizeof g_features, f[i].on, " ", f[i].name);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(g_cores, sizeof g_cores, "%ld", n > 0 ? n : 1);
}

KILN_API kiln_status kiln_cpu_get(const char *key, const char **value) {
    if (!key || !value) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_cpu_get: an argument is NULL");
    const kl_cpu_isa *c = kl_cpu_isa_get();
    pthread_once(&g_cpu_once, cpu_init);
    const char *v = NULL;
    if (strcmp(key, "model") == 0) {
        const char *b = c->brand;
        while (*b == ' ') b++;
        v = b;
    } else if (strcmp(key, "vendor") == 0) {
        v = c->vendor;
    } else if (strcmp(key, "isa") == 0) {
        v = kl_isa_name(c->active);
    } else if (strcmp(key, "isa_detected") == 0) {
        v = kl_isa_name(c->best);
    } else if (strcmp(key, "isa_levels") == 0) {
        v = g_levels;
    } else if (strcmp(key, "features") == 0) {
        v = g_features;
    } else if (strcmp(key, "cores") == 0) {
        v = g_cores;
    } else {
        return kl_errorf(KILN_ERR_NOT_FOUND,
                         "kiln_cpu_get: no key '%s' (keys: model, vendor, isa, isa_detected, isa_levels, features, "
                         "cores)", key);
    }
    *value = v;
    return KILN_OK;
}

KILN_API kiln_status kiln_cpu_peak_gflops(const char *isa, int threads, double *gflops) {
    if (!gflops) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_cpu_peak_gflops: gflops is NULL");
    if (threads < 0 || threads > 1024)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_cpu_peak_gflops: threads is %d, expected 0 to 1024",
                         threads);
    kl_isa level = KL_ISA_AUTO;
    if (isa && !kl_isa_parse(isa, &level))
        return kl_errorf(KILN_ERR_NOT_FOUND, "kiln_cpu_peak_gflops: no ISA level '%s' (levels: ref, avx2, avx512, auto)",
                         isa);
    const kl_cpu_isa *c = kl_cpu_isa_get();
    if (level != KL_ISA_AUTO && level > c->best)
        return kl_errorf(KILN_ERR_UNSUPPORTED, "kiln_cpu_peak_gflops: this CPU (or its OS) cannot run %s (best: %s)",
                         kl_isa_name(level), kl_isa_name(c->best));
    if (level != KL_ISA_AUTO && level > c->active)
        return kl_errorf(KILN_ERR_UNSUPPORTED, "kiln_cpu_peak_gflops: %s is excluded by KILN_ISA (level in use: %s)",
                         kl_isa_name(level), kl_isa_name(c->active));
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)(n > 1024 ? 1024 : n) : 1;
    }
    double g = 0;
    kiln_status st = kl_cpu_peak_measure(level, threads, &g);
    if (st != KILN_OK) return kl_errorf(st, "kiln_cpu_peak_gflops: cannot measure on %d threads", threads);
    *gflops = g;
    return KILN_OK;
}

/* ---- MAC counts ---------------------------------------------------------------- */

/* Bind the symbolic dims of graph inputs `decl` (n_decl) to the shapes
 * given for inputs `names` (count) and count the MACs of graph g. */
static kiln_status macs_count(const char *fn, const kl_graph *g, kl_value *const *decl, size_t n_decl,
                              const char *const *names, const int *ranks, const int64_t *const *shapes, size_t count,
                              uint64_t *macs, size_t *uncounted) {
    if (!macs || (count && (!names || !ranks || !shapes)))
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: an argument is NULL", fn);
    size_t cap = count * KILN_MAX_RANK;
    const char **bn = cap ? kl_calloc(cap, sizeof *bn) : NULL;
    int64_t *bv = cap ? kl_calloc(cap, sizeof *bv) : NULL;
    if (cap && (!bn || !bv)) {
        kl_free(bn);
        kl_free(bv);
        return KILN_ERR_NO_MEMORY;
    }
    size_t nb = 0;
    kiln_status st = KILN_OK;
    for (size_t i = 0; i < count && st == KILN_OK; i++) {
        const kl_value *v = NULL;
        for (size_t k = 0; k < n_decl && !v; k++)
            if (names[i] && decl[k]->name && strcmp(decl[k]->name, names[i]) == 0) v = decl[k];
        if (!v) {
            st = kl_errorf(KILN_ERR_NOT_FOUND, "%s: no input named '%s'", fn, names[i] ? names[i] : "(NULL)");
            break;
        }
        const kl_shape *s = &v->type.shape;
        if (ranks[i] < 0 || ranks[i] > KILN_MAX_RANK || (ranks[i] > 0 && !shapes[i]) ||
            (s->rank >= 0 && s->rank != ranks[i])) {
            st = kl_errorf(KILN_ERR_SHAPE, "%s: input '%s' has rank %d, the shape given has rank %d", fn, names[i],
                           s->rank, ranks[i]);
            break;
        }
        for (int a = 0; a < ranks[i] && s->rank >= 0; a++) {
            const kl_dim *d = &s->dims[a];
            int64_t x = shapes[i][a];
            if (x < 0 || (d->value >= 0 && d->value != x)) {
                st = kl_errorf(KILN_ERR_SHAPE, "%s: input '%s' axis %d is %lld, the shape given has %lld", fn,
                               names[i], a, (long long)d->value, (long long)x);
                break;
            }
            if (d->value >= 0 || !d->param || !*d->param || strchr(d->param, '*')) continue;
            size_t k = 0;
            while (k < nb && strcmp(bn[k], d->param) != 0) k++;
            if (k < nb && bv[k] != x) {
                st = kl_errorf(KILN_ERR_SHAPE, "%s: dimension '%s' is %lld in one input and %lld in input '%s'", fn,
                               d->param, (long long)bv[k], (long long)x, names[i]);
                break;
            }
            if (k == nb) {
                bn[nb] = d->param;
                bv[nb++] = x;
            }
        }
    }
    if (st == KILN_OK) {
        const kl_mac_env env = {.names = bn, .values = bv, .n = nb};
        kl_mac_count c = {0};
        kl_graph_macs(g, &env, &c);
        *macs = c.macs;
        if (uncounted) *uncounted = (size_t)c.unknown;
    }
    kl_free(bn);
    kl_free(bv);
    return st;
}

KILN_API kiln_status kiln_model_macs(const kiln_model *model, const char *const *input_names, const int *ranks,
                                     const int64_t *const *shapes, size_t input_count, uint64_t *macs,
                                     size_t *uncounted) {
    if (!model) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_model_macs: model is NULL");
    return macs_count("kiln_model_macs", model->ir->graph, model->inputs, model->n_inputs, input_names, ranks, shapes,
                      input_count, macs, uncounted);
}

KILN_API kiln_status kiln_engine_macs(const kiln_engine *engine, const char *const *input_names, const int *ranks,
                                      const int64_t *const *shapes, size_t input_count, uint64_t *macs,
                                      size_t *uncounted) {
    if (!engine) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_macs: engine is NULL");
    return macs_count("kiln_engine_macs", engine->ir->graph, engine->inputs, engine->n_inputs, input_names, ranks,
                      shapes, input_count, macs, uncounted);
}
