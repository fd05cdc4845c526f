/* Backend assignment: each node goes to the first provider in the user's
 * order that supports it; the report says how many nodes each provider got
 * and why each fallback happened (ggml's SET_CAUSE, printed). */
#include <stdio.h>
#include <string.h>

#include "plan/plan.h"

/* Append a formatted line to a growing string. */
static kiln_status kl_str_appendf(char **s, size_t *len, const char *fmt, ...) KL_PRINTF(3, 4);
static kiln_status kl_str_appendf(char **s, size_t *len, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return KILN_ERR_INTERNAL;
    size_t add = strlen(line);
    char *r = kl_realloc_array(*s, *len + add + 1, 1);
    if (!r) return KILN_ERR_NO_MEMORY;
    memcpy(r + *len, line, add + 1);
    *s = r;
    *len += add;
    return KILN_OK;
}

kiln_status kl_partition(const kl_graph *g, const kl_provider *const *order, size_t n_order, bool strict,
                         kl_assign **assign_out, char **report_out) {
    kl_assign *as = kl_calloc(g->n_nodes ? g->n_nodes : 1, sizeof *as);
    size_t *counts = kl_calloc(n_order ? n_order : 1, sizeof *counts);
    char *rep = NULL;
    size_t len = 0, fallbacks = 0;
    kiln_status s = (as && counts) ? KILN_OK : KILN_ERR_NO_MEMORY;
    for (size_t i = 0; i < g->n_nodes && !s; i++) {
        const kl_node *n = g->nodes[i];
        char why[256] = "", first_why[256] = "";
        size_t k;
        for (k = 0; k < n_order; k++) {
            if (order[k]->supports(n, why, sizeof why)) break;
            if (!first_why[0]) snprintf(first_why, sizeof first_why, "%s", why);
        }
        if (k == n_order) {
            s = kl_errorf(KILN_ERR_UNSUPPORTED, "node %zu '%s' (%s): no provider can run it: %s", i, kl_node_label(n),
                          n->op_type, first_why);
            break;
        }
        as[i].provider = order[k];
        counts[k]++;
        if (k > 0) {
            fallbacks++;
            if (strict) {
                s = kl_errorf(KILN_ERR_UNSUPPORTED,
                              "node '%s' (%s) would fall back from %s to %s (%s), and strict providers forbid it",
                              kl_node_label(n), n->op_type, order[0]->name, order[k]->name, first_why);
                break;
            }
            s = kl_str_appendf(&rep, &len, "fallback: node '%s' (%s) %s -> %s: %s\n", kl_node_label(n), n->op_type,
                               order[0]->name, order[k]->name, first_why);
        }
    }
    for (size_t k = 0; k < n_order && !s; k++)
        s = kl_str_appendf(&rep, &len, "%s: %zu node%s%s\n", order[k]->name, counts[k], counts[k] == 1 ? "" : "s",
                           k == 0 ? " (preferred)" : "");
    /* Edges between a host-memory provider and a device one: a copy each. */
    size_t copies = 0;
    for (size_t i = 0; i < g->n_nodes && !s; i++)
        for (size_t k = 0; k < g->nodes[i]->n_inputs; k++) {
            const kl_value *v = g->nodes[i]->inputs[k];
            if (!v || !v->producer || v->graph != g || v->producer->removed) continue;
            size_t pi = v->producer->index;
            if (pi < g->n_nodes && as[pi].provider && as[i].provider &&
                as[pi].provider->host_memory != as[i].provider->host_memory)
                copies++;
        }
    if (!s) s = kl_str_appendf(&rep, &len, "copies inserted: %zu%s\n", copies,
                               copies ? " (tensors crossing between host and device memory)" : "");
    if (!s && fallbacks) s = kl_str_appendf(&rep, &len, "fallbacks: %zu\n", fallbacks);
    kl_free(counts);
    if (s) {
        kl_free(as);
        kl_free(rep);
        return s;
    }
    *assign_out = as;
    *report_out = rep;
    return KILN_OK;
}
