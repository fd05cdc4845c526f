/* The CPU kernel registry: the reference family tables, searched in order. */
#include <string.h>

#include "backend/kernel.h"

static const kl_kernel_def *const kl_ref_tables[] = {
    kl_ref_elementwise, kl_ref_reduce, kl_ref_norm, kl_ref_nn,
    kl_ref_tensor, kl_ref_quant, kl_ref_control, kl_ref_misc, kl_ref_rnn,
};

static bool kl_kernel_matches(const kl_kernel_def *k, const char *domain, const char *op, int64_t opset) {
    return strcmp(k->op, op) == 0 && strcmp(k->domain, domain) == 0 && opset >= k->since &&
           (k->until == 0 || opset <= k->until);
}

const kl_kernel_def *kl_kernel_find(const kl_node *n, kiln_dtype t0) {
    const kl_kernel_def *any = NULL;
    for (size_t t = 0; t < KL_ARRAY_LEN(kl_ref_tables); t++)
        for (const kl_kernel_def *k = kl_ref_tables[t]; k->op; k++) {
            if (!kl_kernel_matches(k, n->domain, n->op_type, n->opset)) continue;
            if (!k->types || t0 == KILN_DTYPE_UNDEFINED || (k->types & (1ull << t0))) return k;
            if (!any) any = k;
        }
    /* The input type is not known yet (or no row lists it): let the run
     * path check again with the real type. */
    return t0 == KILN_DTYPE_UNDEFINED ? any : NULL;
}

bool kl_kernel_exists(const char *domain, const char *op, int64_t opset) {
    for (size_t t = 0; t < KL_ARRAY_LEN(kl_ref_tables); t++)
        for (const kl_kernel_def *k = kl_ref_tables[t]; k->op; k++)
            if (kl_kernel_matches(k, domain, op, opset)) return true;
    return false;
}
