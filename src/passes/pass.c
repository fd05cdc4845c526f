/*
 * The pass driver: one ordered table of passes, run over the main graph to
 * a fixed point with a step budget; every applied rewrite is logged,
 * counted against the rewrite limit and followed by a graph check.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"
#include "passes/passes_internal.h"
#include "passes/passes_transformer.h"

typedef struct kl_pass_row {
    const char *name;
    kl_pass_fn fn;
} kl_pass_row;

/* In the order they run; the whole table repeats until nothing changes. */
static const kl_pass_row kl_pass_table[] = {
    {"remove_identity", kl_pass_remove_identity},
    {"fold_shapes", kl_pass_fold_shapes},
    {"fold_constants", kl_pass_fold_constants},
    {"remove_dead", kl_pass_remove_dead},
    {"sink_gather", kl_pass_sink_gather},
    {"sink_gather_attention", kl_pass_sink_gather_attention},
    {"fuse_bn", kl_pass_fuse_bn},
    {"fuse_conv_add", kl_pass_fuse_conv_add},
    {"fuse_activation", kl_pass_fuse_activation},
    {"fuse_conv_dw", kl_pass_fuse_conv_dw},
    {"fuse_se_conv", kl_pass_fuse_se_conv},
    /* A2: transformer passes (passes_transformer.h): norms, attention before
     * MatMul fusion, elementwise chains last. */
    {"fuse_norm", kl_pass_fuse_norm},
    {"split_qkv", kl_pass_split_qkv},
    {"fuse_attention", kl_pass_fuse_attention},
    {"fuse_matmul", kl_pass_fuse_matmul},
    {"sink_mha_transposes", kl_pass_sink_mha_transposes},
    {"fuse_elementwise", kl_pass_fuse_elementwise},
};

#define KL_PASS_MAX_ROUNDS 16 /* repeats of the whole table */
#define KL_PASS_MAX_CALLS 64  /* calls of one pass per round */
#define KL_PASS_DEFAULT_FOLD_BUDGET ((size_t)16 << 20)

size_t kl_pass_count(void) { return KL_ARRAY_LEN(kl_pass_table); }

const char *kl_pass_name(size_t i) { return i < KL_ARRAY_LEN(kl_pass_table) ? kl_pass_table[i].name : NULL; }

bool kl_pass_begin(kl_pass_ctx *c) {
    if (c->limit >= 0 && c->rewrites >= (size_t)c->limit) c->stopped = true;
    return !c->stopped;
}

void kl_pass_logf(kl_pass_ctx *c, const char *fmt, ...) {
    if (!c->log) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    c->log(c->log_user, buf);
}

kiln_status kl_pass_commit(kl_pass_ctx *c, const char *label) {
    c->rewrites++;
    c->applied++;
    kl_pass_logf(c, "%s: %s", c->pass, label ? label : "");
    if (!c->verify) return KILN_OK;
    kiln_status s = kl_graph_verify(c->g);
    if (s) return kl_error_context(s, "pass %s broke the graph at rewrite %zu (%s): ", c->pass, c->rewrites,
                                   label ? label : "");
    return KILN_OK;
}

/* Is pass `name` in the disabled list? */
static bool pass_disabled(const kl_pass_options *o, const char *name) {
    for (size_t i = 0; o && i < o->n_disabled; i++)
        if (o->disabled[i] && strcmp(o->disabled[i], name) == 0) return true;
    return false;
}

/* The rewrite limit: KILN_PASS_LIMIT when set (a number >= 0), else o's. */
static kiln_status pass_limit(const kl_pass_options *o, int64_t *limit) {
    *limit = o ? o->rewrite_limit : -1;
    const char *env = getenv("KILN_PASS_LIMIT");
    if (!env || !env[0]) return KILN_OK;
    char *end;
    errno = 0;
    long long v = strtoll(env, &end, 10);
    if (*end || errno || v < 0)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "KILN_PASS_LIMIT='%s' is not a number >= 0", env);
    *limit = v;
    return KILN_OK;
}

/* Infer g's types again after a round of rewrites (kl_infer_graph_refine:
 * symbolic dims kept, only unknowns filled in): folding a constant does not
 * re-infer its readers, so a size computed from it (torch 2.x's unflatten
 * target: Slice(Shape(x), 0, Mod(-1, 3))) becomes known for the next
 * round's fold_shapes.  Problems it meets are dropped, types kept. */
static kiln_status refine_types(kl_model *m) {
    size_t n_problems = m->n_problems;
    kiln_status s = kl_infer_graph_refine(m, m->graph);
    m->n_problems = n_problems;
    return s;
}

/* Live nodes of g. */
static size_t live_nodes(const kl_graph *g) {
    size_t n = 0;
    for (size_t i = 0; i < g->n_nodes; i++) n += !g->nodes[i]->removed;
    return n;
}

kiln_status kl_passes_run(kl_model *m, const kl_pass_options *o, kl_pass_stats *stats) {
    if (!m || !m->graph) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kl_passes_run: no model graph");
    for (size_t i = 0; o && i < o->n_disabled; i++) {
        bool known = false;
        for (size_t k = 0; k < kl_pass_count(); k++)
            known |= o->disabled[i] && strcmp(o->disabled[i], kl_pass_name(k)) == 0;
        if (!known) {
            char list[512];
            size_t pos = 0;
            list[0] = 0;
            for (size_t k = 0; k < kl_pass_count() && pos < sizeof list; k++)
                pos += (size_t)snprintf(list + pos, sizeof list - pos, "%s%s", k ? ", " : "", kl_pass_name(k));
            return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "unknown pass '%s' (passes: %s)",
                             o->disabled[i] ? o->disabled[i] : "(null)", list);
        }
    }
    kl_pass_ctx c;
    memset(&c, 0, sizeof c);
    c.m = m;
    c.g = m->graph;
    c.fold_budget = o && o->fold_budget ? o->fold_budget : KL_PASS_DEFAULT_FOLD_BUDGET;
    c.verify = true;
    c.log = o ? o->log : NULL;
    c.log_user = o ? o->log_user : NULL;
    c.cpu_fused = o && o->cpu_fused;
    KL_TRY(pass_limit(o, &c.limit));
    kl_graph *g = c.g;
    if (stats) memset(stats, 0, sizeof *stats);
    size_t before = live_nodes(g);
    if (stats) stats->nodes_before = stats->nodes_after = before;
    KL_TRY(kl_graph_build_uses(g));
    kiln_status s = kl_graph_verify(g);
    if (s == KILN_ERR_NO_MEMORY) return s;
    if (s) {
        kl_pass_logf(&c, "passes skipped: the graph fails the check before any rewrite: %s", kl_error_message());
        kl_error_clear();
        return KILN_OK;
    }
    KL_TRY(kl_graph_compact(g));
    for (int round = 0; round < KL_PASS_MAX_ROUNDS && !c.stopped; round++) {
        size_t at_start = c.rewrites;
        for (size_t p = 0; p < kl_pass_count() && !c.stopped; p++) {
            if (pass_disabled(o, kl_pass_table[p].name)) continue;
            c.pass = kl_pass_table[p].name;
            for (int call = 0; call < KL_PASS_MAX_CALLS && !c.stopped; call++) {
                c.applied = 0;
                s = kl_pass_table[p].fn(&c);
                if (s) return kl_error_context(s, "pass %s: ", c.pass);
                KL_TRY(kl_graph_compact(g));
                if (!c.applied) break;
            }
        }
        if (c.rewrites == at_start) break;
        KL_TRY(refine_types(m));
    }
    KL_TRY(kl_graph_compact(g));
    if (o && o->layout_nchwc && c.cpu_fused && !c.stopped) {
        c.pass = "layout_nchwc";
        c.applied = 0;
        s = kl_pass_layout_nchwc(&c);
        if (s) return kl_error_context(s, "pass %s: ", c.pass);
        KL_TRY(kl_graph_compact(g));
        KL_TRY(refine_types(m));
    }
    s = kl_graph_verify(g);
    if (s) return kl_error_context(s, "after the passes: ");
    if (c.stopped) kl_pass_logf(&c, "passes stopped at the rewrite limit (%lld)", (long long)c.limit);
    kl_pass_logf(&c, "passes: %zu rewrites, %zu nodes -> %zu", c.rewrites, before, g->n_nodes);
    if (stats) {
        stats->nodes_after = g->n_nodes;
        stats->rewrites = c.rewrites;
    }
    return KILN_OK;
}
