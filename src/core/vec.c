/* Growable arrays and the string-keyed hash map. */
#include <string.h>

#include "core/core.h"

kiln_status kl_ptrvec_push(kl_ptrvec *v, void *item) {
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        void **items = kl_realloc_array(v->items, cap, sizeof *items);
        if (!items) return KILN_ERR_NO_MEMORY;
        v->items = items;
        v->cap = cap;
    }
    v->items[v->len++] = item;
    return KILN_OK;
}

void kl_ptrvec_free(kl_ptrvec *v) {
    kl_free(v->items);
    v->items = NULL;
    v->len = v->cap = 0;
}

/* FNV-1a. */
static uint64_t kl_hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void *kl_strmap_get(const kl_strmap *m, const char *key) {
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1, i = (size_t)kl_hash_str(key) & mask;
    while (m->keys[i]) {
        if (strcmp(m->keys[i], key) == 0) return m->vals[i];
        i = (i + 1) & mask;
    }
    return NULL;
}

/* Insert without growing; the caller guarantees a free slot. */
static void kl_strmap_insert(kl_strmap *m, const char *key, void *val) {
    size_t mask = m->cap - 1, i = (size_t)kl_hash_str(key) & mask;
    while (m->keys[i]) {
        if (strcmp(m->keys[i], key) == 0) {
            m->vals[i] = val;
            return;
        }
        i = (i + 1) & mask;
    }
    m->keys[i] = key;
    m->vals[i] = val;
    m->len++;
}

kiln_status kl_strmap_put(kl_strmap *m, const char *key, void *val) {
    if ((m->len + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        kl_strmap n = {0};
        n.keys = kl_calloc(cap, sizeof *n.keys);
        n.vals = kl_calloc(cap, sizeof *n.vals);
        if (!n.keys || !n.vals) {
            kl_free(n.keys);
            kl_free(n.vals);
            return KILN_ERR_NO_MEMORY;
        }
        n.cap = cap;
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i]) kl_strmap_insert(&n, m->keys[i], m->vals[i]);
        kl_strmap_free(m);
        *m = n;
    }
    kl_strmap_insert(m, key, val);
    return KILN_OK;
}

void kl_strmap_free(kl_strmap *m) {
    kl_free(m->keys);
    kl_free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->len = 0;
}
