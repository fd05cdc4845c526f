/* Checked allocation with fault injection for tests. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* Fault injection state.  Process-wide; tests that use it are single-threaded. */
static long kl_fail_at;  /* 0: off */
static long kl_count;

void kl_alloc_fail_at(long n) {
    kl_fail_at = n;
    kl_count = 0;
}

long kl_alloc_count(void) { return kl_count; }

/* True when this allocation must fail (size limit or injected fault). */
static bool kl_alloc_refuse(size_t size) {
    kl_count++;
    if (size > KL_MAX_ALLOC) {
        kl_errorf(KILN_ERR_NO_MEMORY, "allocation of %zu bytes exceeds kiln's limit", size);
        return true;
    }
    if (kl_fail_at > 0 && kl_count >= kl_fail_at) {
        kl_errorf(KILN_ERR_NO_MEMORY, "allocation of %zu bytes failed (injected)", size);
        return true;
    }
    return false;
}

void *kl_malloc(size_t size) {
    if (kl_alloc_refuse(size)) return NULL;
    void *p = malloc(size ? size : 1);
    if (!p) kl_errorf(KILN_ERR_NO_MEMORY, "out of memory allocating %zu bytes", size);
    return p;
}

void *kl_calloc(size_t n, size_t size) {
    size_t total;
    if (kl_mul_size(n, size, &total)) {
        kl_count++;
        kl_errorf(KILN_ERR_NO_MEMORY, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    if (kl_alloc_refuse(total)) return NULL;
    void *p = calloc(total ? total : 1, 1);
    if (!p) kl_errorf(KILN_ERR_NO_MEMORY, "out of memory allocating %zu bytes", total);
    return p;
}

void *kl_realloc_array(void *p, size_t n, size_t size) {
    size_t total;
    if (kl_mul_size(n, size, &total)) {
        kl_count++;
        kl_errorf(KILN_ERR_NO_MEMORY, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    if (kl_alloc_refuse(total)) return NULL;
    void *q = realloc(p, total ? total : 1);
    if (!q) kl_errorf(KILN_ERR_NO_MEMORY, "out of memory allocating %zu bytes", total);
    return q;
}

char *kl_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = kl_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void kl_free(void *p) { free(p); }
