/* The cpu provider: the reference kernels as the fallback tactic of every
 * node, and the fast x86 kernels as further tactics where they apply. */
#include <stdio.h>
#include <string.h>

#include "backend/provider.h"

static bool cpu_usable(const char **reason) {
    (void)reason;
    return true;
}

static kiln_dtype cpu_first_type(const kl_node *n) {
    return n->n_inputs && n->inputs[0] && n->inputs[0]->type.kind == KL_TYPE_TENSOR ? n->inputs[0]->type.elem
                                                                                   : KILN_DTYPE_UNDEFINED;
}

static bool cpu_supports(const kl_node *n, char *why, size_t why_size) {
    kiln_dtype t0 = cpu_first_type(n);
    if (kl_kernel_find(n, t0)) return true;
    if (why && why_size)
        snprintf(why, why_size, "no cpu kernel for %s%s%s-%lld%s%s", n->domain, n->domain[0] ? "." : "", n->op_type,
                 (long long)n->opset, t0 ? " " : "", t0 ? kiln_dtype_name(t0) : "");
    return false;
}

/* The reference kernel of the registry, for every node it supports. */
static const kl_tactic cpu_ref = {.name = "ref", .quality = 0};

/* Fast tactics first (by quality), the reference kernel last. */
static size_t cpu_tactics(const kl_node *n, const kl_tactic **out, size_t max) {
    if (!cpu_supports(n, NULL, 0)) return 0;
    size_t k = max > 1 ? kl_cpu_x86_tactics(n, out, max - 1) : 0;
    for (size_t i = 1; i < k; i++) /* insertion sort by quality, stable */
        for (size_t j = i; j > 0 && out[j]->quality > out[j - 1]->quality; j--) {
            const kl_tactic *t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    if (k < max) out[k++] = &cpu_ref;
    return k;
}

const kl_tactic *kl_cpu_tactic_find(const kl_node *n, const char *name) {
    if (strcmp(name, "ref") == 0) return cpu_supports(n, NULL, 0) ? &cpu_ref : NULL;
    return kl_cpu_x86_tactic_named(n, name);
}

const kl_provider kl_cpu_provider = {
    .api_version = KL_PROVIDER_API_VERSION,
    .name = "cpu",
    .usable = cpu_usable,
    .supports = cpu_supports,
    .tactics = cpu_tactics,
    .host_memory = true,
    .tactic_find = kl_cpu_tactic_find,
};
