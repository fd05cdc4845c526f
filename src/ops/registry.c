/*
 * The op-schema registry: the family tables of ops.h joined, searched
 * linearly (a few hundred rows; no shared state, so thread-safe).
 */
#include <string.h>

#include "ops/ops.h"

static const kl_op_schema *const kl_op_tables[] = {
    kl_ops_elementwise, kl_ops_reduce, kl_ops_norm,    kl_ops_nn,
    kl_ops_tensor,      kl_ops_quant,  kl_ops_control, kl_ops_misc,
};

const kl_op_schema *kl_op_find(const char *domain, const char *name, int64_t opset,
                               bool *other_versions) {
    bool other = false;
    if (!domain) domain = "";
    if (other_versions) *other_versions = false;
    if (!name) return NULL;
    for (size_t t = 0; t < KL_ARRAY_LEN(kl_op_tables); t++) {
        for (const kl_op_schema *s = kl_op_tables[t]; s->name; s++) {
            if (strcmp(s->name, name) != 0 || strcmp(s->domain ? s->domain : "", domain) != 0)
                continue;
            if (s->since <= opset && (s->until == 0 || opset <= s->until)) return s;
            other = true;
        }
    }
    if (other_versions) *other_versions = other;
    return NULL;
}

size_t kl_op_count(void) {
    size_t n = 0;
    for (size_t t = 0; t < KL_ARRAY_LEN(kl_op_tables); t++)
        for (const kl_op_schema *s = kl_op_tables[t]; s->name; s++) n++;
    return n;
}

const kl_op_schema *kl_op_at(size_t i) {
    for (size_t t = 0; t < KL_ARRAY_LEN(kl_op_tables); t++)
        for (const kl_op_schema *s = kl_op_tables[t]; s->name; s++)
            if (i-- == 0) return s;
    return NULL;
}
