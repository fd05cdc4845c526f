/* The provider registry: every provider compiled in, in default order. */
#include <stdio.h>
#include <string.h>

#include "backend/provider.h"

static const kl_provider *const kl_providers[] = {
#ifdef KILN_HAVE_CUDA
    &kl_cuda_provider,
#endif
    &kl_cpu_provider,
};

size_t kl_provider_count(void) { return KL_ARRAY_LEN(kl_providers); }

const kl_provider *kl_provider_at(size_t i) {
    return i < KL_ARRAY_LEN(kl_providers) ? kl_providers[i] : NULL;
}

const kl_provider *kl_provider_find(const char *name) {
    for (size_t i = 0; name && i < KL_ARRAY_LEN(kl_providers); i++)
        if (strcmp(kl_providers[i]->name, name) == 0) return kl_providers[i];
    return NULL;
}

const char *kl_provider_missing_reason(const char *name) {
    if (!name) return NULL;
#ifndef KILN_HAVE_CUDA
    if (strcmp(name, "cuda") == 0)
        return "this kiln was built without the CUDA provider (configure with -DKILN_CUDA=ON where nvcc, cuDNN 9 "
               "and cuBLASLt are installed)";
#endif
    return NULL;
}

/* ---- public API ----------------------------------------------------------------- */

/* Names kiln knows, compiled in or not, for kiln_provider_info(). */
static const char *const kl_provider_names[] = {"cuda", "cpu"};

KILN_API kiln_status kiln_providers_available(size_t *count) {
    if (!count) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_providers_available: count is NULL");
    *count = KL_ARRAY_LEN(kl_provider_names);
    return KILN_OK;
}

KILN_API kiln_status kiln_provider_info(size_t index, const char **name, int *usable,
                                        const char **reason) {
    if (index >= KL_ARRAY_LEN(kl_provider_names))
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_provider_info: index %zu out of range (%zu providers)",
                         index, KL_ARRAY_LEN(kl_provider_names));
    const char *n = kl_provider_names[index];
    const kl_provider *p = kl_provider_find(n);
    const char *why = NULL;
    int ok = p ? p->usable(&why) : 0;
    if (!p) why = kl_provider_missing_reason(n);
    if (name) *name = n;
    if (usable) *usable = ok;
    if (reason) *reason = ok ? "" : (why ? why : "not usable");
    return KILN_OK;
}
