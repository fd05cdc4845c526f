/* Bump allocator in chunks; everything is released at once. */
#include <stdio.h>
#include <string.h>

#include "core/core.h"

struct kl_arena_chunk {
    kl_arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

#define KL_ARENA_CHUNK (64u * 1024u)

void kl_arena_init(kl_arena *a) {
    a->head = NULL;
    a->total = 0;
}

void kl_arena_free(kl_arena *a) {
    kl_arena_chunk *c = a->head;
    while (c) {
        kl_arena_chunk *next = c->next;
        kl_free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

void *kl_arena_alloc(kl_arena *a, size_t size) {
    size_t rounded;
    if (kl_add_size(size, 15, &rounded)) {
        kl_errorf(KILN_ERR_NO_MEMORY, "arena allocation of %zu bytes overflows", size);
        return NULL;
    }
    rounded &= ~(size_t)15;
    kl_arena_chunk *c = a->head;
    if (!c || c->cap - c->used < rounded) {
        size_t cap = rounded > KL_ARENA_CHUNK / 4 ? rounded : KL_ARENA_CHUNK;
        size_t bytes;
        if (kl_add_size(sizeof(kl_arena_chunk), cap, &bytes)) {
            kl_errorf(KILN_ERR_NO_MEMORY, "arena allocation of %zu bytes overflows", size);
            return NULL;
        }
        kl_arena_chunk *n = kl_malloc(bytes);
        if (!n) return NULL;
        n->used = 0;
        n->cap = cap;
        if (c && rounded > KL_ARENA_CHUNK / 4) {
            /* Big block: keep the current chunk on top for small ones. */
            n->next = c->next;
            c->next = n;
        } else {
            n->next = c;
            a->head = n;
        }
        c = n;
    }
    void *p = c->data + c->used;
    c->used += rounded;
    a->total += rounded;
    memset(p, 0, size);
    return p;
}

void *kl_arena_array(kl_arena *a, size_t n, size_t size) {
    size_t total;
    if (kl_mul_size(n, size, &total)) {
        kl_errorf(KILN_ERR_NO_MEMORY, "arena allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    return kl_arena_alloc(a, total);
}

char *kl_arena_strndup(kl_arena *a, const char *s, size_t len) {
    size_t n;
    if (kl_add_size(len, 1, &n)) return NULL;
    char *d = kl_arena_alloc(a, n);
    if (!d) return NULL;
    if (len) memcpy(d, s, len);
    d[len] = 0;
    return d;
}

char *kl_arena_strdup(kl_arena *a, const char *s) { return kl_arena_strndup(a, s, strlen(s)); }

char *kl_arena_printf(kl_arena *a, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(ap2);
        return NULL;
    }
    char *d = kl_arena_alloc(a, (size_t)n + 1);
    if (d) vsnprintf(d, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return d;
}
