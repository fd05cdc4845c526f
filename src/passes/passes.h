/*
 * passes.h — the graph optimizer: an ordered table of match-and-rewrite
 * passes run over a model's main graph to a fixed point, each applied
 * rewrite logged, with a rewrite limit (bisecting numerics) and passes that
 * can be disabled by name.  Subgraphs are left as they are.
 */
#ifndef KL_PASSES_H
#define KL_PASSES_H

#include "ir/ir.h"

/* Receives one line per applied rewrite ("fuse_bn: conv1+bn1"), and a few
 * summary lines; `line` is valid during the call only. */
typedef void (*kl_pass_log_fn)(void *user, const char *line);

typedef struct kl_pass_options {
    const char *const *disabled; /* pass names to skip (see kl_pass_name) */
    size_t n_disabled;
    int64_t rewrite_limit;       /* < 0: none; env KILN_PASS_LIMIT=N overrides when set */
    size_t fold_budget;          /* bytes constant folding may create; 0 = 16 MiB */
    kl_pass_log_fn log;          /* NULL: no log */
    void *log_user;
    bool cpu_fused;              /* the engine runs on the CPU provider alone, with its
                                    vector kernels: make the CPU-only fused ops
                                    (kiln.FusedConvDw) */
    bool layout_nchwc;           /* with cpu_fused, then, once at the end, convolutions on channel-blocked
                                    activations (kiln.ConvNchwc; passes/layout.c) */
} kl_pass_options;

typedef struct kl_pass_stats {
    size_t nodes_before, nodes_after, rewrites;
} kl_pass_stats;

/* Optimize m's main graph in place (m is the builder's private copy; new
 * nodes, values and constants go to m->arena).  o may be NULL (defaults);
 * stats may be NULL.  The graph is checked after every rewrite and compacted
 * at the end, and keeps running on the reference kernels with the same
 * outputs.  A graph that fails the check before any rewrite is left as it is
 * (one log line says why).  Errors: an unknown name in o->disabled
 * (KILN_ERR_INVALID_ARGUMENT naming it), a rewrite that breaks the graph
 * (KILN_ERR_INTERNAL naming the pass and the nodes), out of memory. */
kiln_status kl_passes_run(kl_model *m, const kl_pass_options *o, kl_pass_stats *stats);

/* The passes in the order they run, for --disable-pass validation and help. */
size_t kl_pass_count(void);
const char *kl_pass_name(size_t i); /* NULL when i >= kl_pass_count() */

#endif /* KL_PASSES_H */
