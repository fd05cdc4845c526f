/* Status codes and the per-thread error message. */
#include <stdio.h>
#include <string.h>

#include "core/core.h"

#define KL_ERRMSG_SIZE 2048
static _Thread_local char kl_errmsg[KL_ERRMSG_SIZE];

kiln_status kl_errorf(kiln_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(kl_errmsg, sizeof kl_errmsg, fmt, ap);
    va_end(ap);
    return status;
}

kiln_status kl_error_context(kiln_status status, const char *fmt, ...) {
    char prefix[512], old[KL_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, kl_errmsg, sizeof old);
    size_t np = strlen(prefix), no = strnlen(old, sizeof old - 1);
    if (np > sizeof kl_errmsg - 1) np = sizeof kl_errmsg - 1;
    if (no > sizeof kl_errmsg - 1 - np) no = sizeof kl_errmsg - 1 - np;
    memcpy(kl_errmsg, prefix, np);
    memcpy(kl_errmsg + np, old, no);
    kl_errmsg[np + no] = 0;
    return status;
}

void kl_error_clear(void) { kl_errmsg[0] = 0; }

const char *kl_error_message(void) { return kl_errmsg; }

KILN_API const char *kiln_last_error(void) { return kl_errmsg; }

KILN_API const char *kiln_status_name(kiln_status status) {
    switch (status) {
    case KILN_OK: return "KILN_OK";
    case KILN_ERR_INVALID_ARGUMENT: return "KILN_ERR_INVALID_ARGUMENT";
    case KILN_ERR_IO: return "KILN_ERR_IO";
    case KILN_ERR_PARSE: return "KILN_ERR_PARSE";
    case KILN_ERR_INVALID_MODEL: return "KILN_ERR_INVALID_MODEL";
    case KILN_ERR_UNSUPPORTED: return "KILN_ERR_UNSUPPORTED";
    case KILN_ERR_SHAPE: return "KILN_ERR_SHAPE";
    case KILN_ERR_TYPE: return "KILN_ERR_TYPE";
    case KILN_ERR_NO_MEMORY: return "KILN_ERR_NO_MEMORY";
    case KILN_ERR_NOT_FOUND: return "KILN_ERR_NOT_FOUND";
    case KILN_ERR_NOT_IMPLEMENTED: return "KILN_ERR_NOT_IMPLEMENTED";
    case KILN_ERR_INTERNAL: return "KILN_ERR_INTERNAL";
    case KILN_ERR_ENGINE_MISMATCH: return "KILN_ERR_ENGINE_MISMATCH";
    }
    return "KILN_ERR_UNKNOWN";
}

KILN_API const char *kiln_version(void) { return KILN_VERSION; }
