/* Logging through a user callback; silent by default. */
#include <stdio.h>

#include "core/core.h"

static kiln_log_fn kl_log_fn;
static void *kl_log_user;
static kiln_log_level kl_log_max = KILN_LOG_WARNING;

KILN_API kiln_status kiln_set_log_callback(kiln_log_fn fn, void *user, kiln_log_level max_level) {
    if ((int)max_level < KILN_LOG_ERROR || max_level > KILN_LOG_DEBUG)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_set_log_callback: bad level %d", (int)max_level);
    kl_log_fn = fn;
    kl_log_user = user;
    kl_log_max = max_level;
    return KILN_OK;
}

void kl_log(kiln_log_level level, const char *fmt, ...) {
    if (!kl_log_fn || level > kl_log_max) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    kl_log_fn(level, buf, kl_log_user);
}
