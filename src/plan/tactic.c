/* The timing cache: measured tactic times keyed by node signature, so a
 * second build skips timing.  A text file, one "key<TAB>tactic<TAB>ms"
 * line per measurement after a "kiln-timing-cache 1" header; the key holds
 * the provider, op, types, shapes, attributes and CPU features, so a cache
 * from another machine simply misses. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plan/plan.h"

#define KL_TC_HEADER "kiln-timing-cache 1"

typedef struct kl_tc_entry {
    char *key, *tactic;
    double ms;
} kl_tc_entry;

struct kl_timing_cache {
    kl_tc_entry *e;
    size_t n, cap;
    size_t hits;
};

void kl_timing_cache_free(kl_timing_cache *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) {
        kl_free(c->e[i].key);
        kl_free(c->e[i].tactic);
    }
    kl_free(c->e);
    kl_free(c);
}

kiln_status kl_timing_cache_put(kl_timing_cache *c, const char *key, const char *tactic, double ms) {
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->e[i].key, key) == 0 && strcmp(c->e[i].tactic, tactic) == 0) {
            c->e[i].ms = ms;
            return KILN_OK;
        }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        kl_tc_entry *ne = kl_realloc_array(c->e, cap, sizeof *ne);
        if (!ne) return KILN_ERR_NO_MEMORY;
        c->e = ne;
        c->cap = cap;
    }
    char *k = kl_strdup(key), *t = kl_strdup(tactic);
    if (!k || !t) {
        kl_free(k);
        kl_free(t);
        return KILN_ERR_NO_MEMORY;
    }
    c->e[c->n++] = (kl_tc_entry){k, t, ms};
    return KILN_OK;
}

bool kl_timing_cache_get(const kl_timing_cache *c, const char *key, const char *tactic, double *ms) {
    for (size_t i = 0; c && i < c->n; i++)
        if (strcmp(c->e[i].key, key) == 0 && strcmp(c->e[i].tactic, tactic) == 0) {
            *ms = c->e[i].ms;
            ((kl_timing_cache *)c)->hits++;
            return true;
        }
    return false;
}

size_t kl_timing_cache_hits(const kl_timing_cache *c) { return c ? c->hits : 0; }

kiln_status kl_timing_cache_create(kl_timing_cache **out) {
    *out = kl_calloc(1, sizeof **out);
    return *out ? KILN_OK : KILN_ERR_NO_MEMORY;
}

kiln_status kl_timing_cache_load(const char *path, kl_timing_cache **out) {
    kl_timing_cache *c = kl_calloc(1, sizeof *c);
    if (!c) return KILN_ERR_NO_MEMORY;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) {
            *out = c;
            return KILN_OK;
        }
        kl_timing_cache_free(c);
        return kl_errorf(KILN_ERR_IO, "timing cache '%s': %s", path, strerror(errno));
    }
    char line[4096];
    kiln_status s = KILN_OK;
    size_t lineno = 0;
    while (!s && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n') line[--len] = 0;
        if (lineno == 1) {
            if (strcmp(line, KL_TC_HEADER) != 0)
                s = kl_errorf(KILN_ERR_PARSE, "timing cache '%s' is not a kiln timing cache (first line '%.40s')", path,
                              line);
            continue;
        }
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        char *end = NULL;
        double ms = t2 ? strtod(t2 + 1, &end) : -1;
        if (!t1 || !t2 || !end || *end || !(ms >= 0)) {
            s = kl_errorf(KILN_ERR_PARSE, "timing cache '%s' line %zu is malformed", path, lineno);
            break;
        }
        *t1 = *t2 = 0;
        s = kl_timing_cache_put(c, line, t1 + 1, ms);
    }
    fclose(f);
    if (s) {
        kl_timing_cache_free(c);
        return s;
    }
    *out = c;
    return KILN_OK;
}

kiln_status kl_timing_cache_save(const kl_timing_cache *c, const char *path) {
    size_t plen = strlen(path);
    char *tmp = kl_malloc(plen + 32);
    if (!tmp) return KILN_ERR_NO_MEMORY;
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        kiln_status s = kl_errorf(KILN_ERR_IO, "timing cache '%s': %s", path, strerror(errno));
        kl_free(tmp);
        return s;
    }
    fprintf(f, "%s\n", KL_TC_HEADER);
    for (size_t i = 0; i < c->n; i++) fprintf(f, "%s\t%s\t%.6f\n", c->e[i].key, c->e[i].tactic, c->e[i].ms);
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        kiln_status s = kl_errorf(KILN_ERR_IO, "timing cache '%s': %s", path, strerror(errno));
        remove(tmp);
        kl_free(tmp);
        return s;
    }
    kl_free(tmp);
    return KILN_OK;
}

/* Append printf output to buf at *used (truncating safely). */
static void kl_keyf(char *buf, size_t size, size_t *used, const char *fmt, ...) KL_PRINTF(4, 5);
static void kl_keyf(char *buf, size_t size, size_t *used, const char *fmt, ...) {
    if (*used >= size) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *used, size - *used, fmt, ap);
    va_end(ap);
    if (n > 0) *used += (size_t)n;
    if (*used >= size) *used = size - 1;
}

const char *kl_tactic_key(const kl_node *n, const kl_shapes *s, const char *provider, char *buf, size_t size) {
    size_t u = 0;
    char isa[64];
    kl_keyf(buf, size, &u, "%s|%s|%s%s%s|", provider, kl_features_format(kl_cpu_features(), isa, sizeof isa), n->domain,
            n->domain[0] ? "." : "", n->op_type);
    for (size_t k = 0; k < n->n_inputs; k++) {
        const kl_value *v = n->inputs[k];
        if (!v) {
            kl_keyf(buf, size, &u, "-;");
            continue;
        }
        kl_keyf(buf, size, &u, "%s[", kiln_dtype_name(v->type.elem));
        if (s && v->id < s->n_values && s->rank[v->id] >= 0)
            for (int d = 0; d < s->rank[v->id]; d++) kl_keyf(buf, size, &u, "%s%lld", d ? "x" : "", (long long)s->dims[v->id][d]);
        else
            kl_keyf(buf, size, &u, "?");
        kl_keyf(buf, size, &u, "]%s;", (v->flags & KL_VALUE_INITIALIZER) ? "c" : "");
    }
    for (size_t a = 0; a < n->n_attrs; a++) {
        const kl_attr *at = &n->attrs[a];
        kl_keyf(buf, size, &u, "|%s=", at->name);
        if (at->type == KL_ATTR_INT) kl_keyf(buf, size, &u, "%lld", (long long)at->i);
        else if (at->type == KL_ATTR_FLOAT) kl_keyf(buf, size, &u, "%.9g", at->f);
        else if (at->type == KL_ATTR_STRING) kl_keyf(buf, size, &u, "%.*s", (int)KL_MIN(at->s.len, 64), at->s.ptr);
        else if (at->type == KL_ATTR_INTS)
            for (size_t j = 0; j < at->n; j++) kl_keyf(buf, size, &u, "%s%lld", j ? "," : "", (long long)at->ints[j]);
        else if (at->type == KL_ATTR_FLOATS)
            for (size_t j = 0; j < at->n; j++) kl_keyf(buf, size, &u, "%s%.9g", j ? "," : "", at->floats[j]);
    }
    for (size_t i = 0; i < u; i++)
        if (buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r') buf[i] = ' ';
    return buf;
}
