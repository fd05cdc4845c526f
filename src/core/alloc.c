/* Checked allocation with fault injection for tests. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "core/core.h"

/* Fault injection state, process-wide and atomic: any number of threads may
 * allocate at once.  The counter is exact under concurrency; which thread's
 * allocation is the n-th one is then up to the scheduler. */
static atomic_long kl_fail_at; /* 0: off */
static atomic_long kl_count;

void kl_alloc_fail_at(long n) {
    atomic_store_explicit(&kl_count, 0, memory_order_relaxed);
    atomic_store_explicit(&kl_fail_at, n, memory_order_relaxed);
}

long kl_alloc_count(void) { return atomic_load_explicit(&kl_count, memory_order_relaxed); }

/* Count one allocation; returns the new count. */
static long kl_alloc_tick(void) { return atomic_fetch_add_explicit(&kl_count, 1, memory_order_relaxed) + 1; }

/* True when this allocation must fail (size limit or injected fault). */
static bool kl_alloc_refuse(size_t size) {
    long n = kl_alloc_tick(), fail_at = atomic_load_explicit(&kl_fail_at, memory_order_relaxed);
    if (size > KL_MAX_ALLOC) {
        kl_errorf(KILN_ERR_NO_MEMORY, "allocation of %zu bytes exceeds kiln's limit", size);
        return true;
    }
    if (fail_at > 0 && n >= fail_at) {
        kl_errorf(KILN_ERR_NO_MEMORY, "allocation of %zu bytes failed (injected)", size);
        return true;
    }
    return false;
}

void *kl_malloc(size_t size) {
    if (kl_alloc_refuse(size)) return NULL;
    void *p = NULL;
    /* Blocks of a page or more start on a cache line: glibc's malloc puts
     * large blocks at 16 mod 64, where every 64-byte vector load of a
     * packed weight panel or an activation row splits two cache lines.
     * (Freed with free(), as every other block.) */
    if (size >= 4096) {
        if (posix_memalign(&p, 64, size) != 0) p = NULL;
    } else {
        p = malloc(size ? size : 1);
    }
    if (!p) kl_errorf(KILN_ERR_NO_MEMORY, "out of memory allocating %zu bytes", size);
    return p;
}

void *kl_calloc(size_t n, size_t size) {
    size_t total;
    if (kl_mul_size(n, size, &total)) {
        kl_alloc_tick();
        kl_errorf(KILN_ERR_NO_MEMORY, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    if (kl_alloc_refuse(total)) return NULL;
    void *p = NULL;
    if (total >= 4096) { /* on a cache line, as kl_malloc */
        if (posix_memalign(&p, 64, total) != 0) p = NULL;
        if (p) memset(p, 0, total);
    } else {
        p = calloc(total ? total : 1, 1);
    }
    if (!p) kl_errorf(KILN_ERR_NO_MEMORY, "out of memory allocating %zu bytes", total);
    return p;
}

void *kl_realloc_array(void *p, size_t n, size_t size) {
    size_t total;
    if (kl_mul_size(n, size, &total)) {
        kl_alloc_tick();
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

void *kl_malloc_big(size_t size) {
    const size_t huge = (size_t)2 << 20;
    if (size < huge) return kl_malloc(size);
    if (kl_alloc_refuse(size)) return NULL;
    size_t rounded = (size + huge - 1) / huge * huge;
    void *p = NULL;
    if (posix_memalign(&p, huge, rounded) != 0 || !p) {
        kl_errorf(KILN_ERR_NO_MEMORY, "out of memory allocating %zu bytes", size);
        return NULL;
    }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (getenv("KILN_NO_HUGEPAGES") == NULL) (void)madvise(p, rounded, MADV_HUGEPAGE); /* advice only */
#endif
    return p;
}
