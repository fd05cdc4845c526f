/* Logging through a user callback; silent by default.  The callback is
 * process-wide and may be set while other threads log: the callback and its
 * user pointer change together under a mutex, and the level test on the
 * hot path is one atomic load. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "core/core.h"

static pthread_mutex_t kl_log_lock = PTHREAD_MUTEX_INITIALIZER;
static kiln_log_fn kl_log_fn;   /* guarded by kl_log_lock */
static void *kl_log_user;       /* guarded by kl_log_lock */
/* Highest level passed on; below KILN_LOG_ERROR when no callback is set. */
static atomic_int kl_log_max = KILN_LOG_ERROR - 1;

KILN_API kiln_status kiln_set_log_callback(kiln_log_fn fn, void *user, kiln_log_level max_level) {
    if ((int)max_level < KILN_LOG_ERROR || max_level > KILN_LOG_DEBUG)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_set_log_callback: bad level %d", (int)max_level);
    pthread_mutex_lock(&kl_log_lock);
    kl_log_fn = fn;
    kl_log_user = user;
    atomic_store_explicit(&kl_log_max, fn ? (int)max_level : KILN_LOG_ERROR - 1, memory_order_relaxed);
    pthread_mutex_unlock(&kl_log_lock);
    return KILN_OK;
}

void kl_log(kiln_log_level level, const char *fmt, ...) {
    if ((int)level > atomic_load_explicit(&kl_log_max, memory_order_relaxed)) return;
    pthread_mutex_lock(&kl_log_lock);
    kiln_log_fn fn = kl_log_fn;
    void *user = kl_log_user;
    pthread_mutex_unlock(&kl_log_lock);
    if (!fn) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fn(level, buf, user);
}

bool kl_log_enabled(kiln_log_level level) {
    return (int)level <= atomic_load_explicit(&kl_log_max, memory_order_relaxed);
}

double kl_clock_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}
