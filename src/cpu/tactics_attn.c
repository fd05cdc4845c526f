/* Fast cpu tactics for kiln.Attention (issue 9): none yet. */
#include "backend/provider.h"

size_t kl_cpu_attn_tactics(const kl_node *n, const kl_tactic **out, size_t max) {
    (void)n, (void)out, (void)max;
    return 0;
}

const kl_tactic *kl_cpu_attn_tactic_named(const kl_node *n, const char *name) {
    (void)n, (void)name;
    return NULL;
}
