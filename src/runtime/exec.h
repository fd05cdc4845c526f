/*
 * exec.h — the CPU run path: a program (kernel or tactic per node,
 * constants, when each intermediate is released) built once per engine and
 * shared by its contexts, and its execution.  A run either allocates every
 * tensor on the heap (kl_program_run) or places them as the context's
 * memory plan says (kl_program_run_ctx), with no heap allocation once the
 * context's scratch has grown to the largest node's need.
 */
#ifndef KL_EXEC_H
#define KL_EXEC_H

#include "backend/kernel.h"

typedef struct kl_program kl_program;

enum {
    /* Constants are views of the model's (64-byte aligned) tensor data
     * instead of aligned copies: the engine's mapped weights, zero-copy. */
    KL_PROGRAM_CONST_VIEWS = 1u << 0,
    /* Runs set flush-to-zero / denormals-are-zero (core/fpenv.h) and
     * restore the caller's mode after. */
    KL_PROGRAM_FLUSH_DENORMALS = 1u << 1
};

/* Build the program for every graph of `m` (main graph and subgraphs): pick a
 * kernel for each node (KILN_ERR_UNSUPPORTED naming the first node without
 * one), materialize initializers as aligned runtime tensors, and compute
 * each intermediate's last use.  Owner: caller (kl_program_free). */
kiln_status kl_program_create(const kl_model *m, int threads, kl_program **out);
kiln_status kl_program_create_ex(const kl_model *m, int threads, unsigned flags, kl_program **out);
void kl_program_free(kl_program *p);

/* Run main-graph node `index` with `run` instead of the registry's kernel,
 * giving it `state` (ctx->state).  For tactics chosen by the builder. */
void kl_program_set_tactic(kl_program *p, size_t index, kl_kernel_fn run, const void *state, bool writes_all);

/* Run the main graph.  inputs[i] is bound to graph input i (g->inputs, in
 * declaration order; NULL keeps an initializer's default and is an error
 * for other inputs).  On success outputs[i] holds a reference to graph
 * output i (caller unrefs). */
kiln_status kl_program_run(kl_program *p, kl_rt *const *inputs, size_t n_inputs, kl_rt **outputs,
                           size_t n_outputs);

/* Scratch memory chunks of a context (or of one heap run). */
typedef struct kl_scratch_chunk {
    void *raw;      /* what to free */
    uint8_t *base;  /* 64-byte aligned */
    size_t size, used;
} kl_scratch_chunk;
typedef struct kl_scratch {
    kl_scratch_chunk *chunks;
    size_t n, cap;
} kl_scratch;
void kl_scratch_free(kl_scratch *s);

/* Per-context execution state for the main graph (all arrays per value id
 * of the main graph, owned by the context). */
typedef struct kl_run_ctx {
    struct kl_pool *pool;     /* the context's threads, or NULL */
    uint8_t *arena;           /* memory plan's arena (NULL: none) */
    const int64_t *offset;    /* per value: offset in the arena or -1 */
    const size_t *capacity;   /* per value: bytes reserved */
    const uint8_t *inplace;   /* per value: KL_MEM_* (plan/plan.h) */
    kl_rt *headers;           /* per value: pooled headers for placed tensors */
    kl_rt **slots;            /* per value: the main frame's slots */
    void **bound;             /* per value: caller buffer of a graph output, or NULL */
    size_t *bound_bytes;
    kl_scratch scratch;       /* grows on the first runs, then reused */
    bool profiling;
    double *node_ms;          /* per main-graph node: total time when profiling */
    uint64_t *node_runs;
    size_t heap_tensors;      /* tensors of the last run that did not fit the plan */
    size_t *seen_bytes;       /* per value: largest size a kernel asked for, or NULL (not kept) */
    kiln_dtype *seen_dtype;
    int *seen_rank;           /* per value: rank and dims (KILN_MAX_RANK each) at that size */
    int64_t *seen_dims;
    bool *seen_grew;          /* set when an entry of seen_bytes grows */
    /* A part of the graph (a split batch's head or tail, context.c):
     * nodes [node_lo, node_hi) run (node_hi 0: to the end; before the end
     * no graph output is collected); value keep_id's tensor is handed
     * back in *kept (a reference) and value preset_id starts as preset
     * (SIZE_MAX: none). */
    size_t node_lo, node_hi;
    size_t keep_id, preset_id;
    kl_rt *kept, *preset;
} kl_run_ctx;

/* Run the main graph with the context's memory (see kl_program_run). */
kiln_status kl_program_run_ctx(kl_program *p, kl_run_ctx *rc, kl_rt *const *inputs, size_t n_inputs,
                               kl_rt **outputs, size_t n_outputs);

/* Run main-graph node idx once on `inputs` (one per node input, NULL for
 * omitted ones) with kernel `run` (NULL: the registry's) and `state`;
 * outputs are discarded.  For timing tactics at build. */
kiln_status kl_program_run_node(kl_program *p, size_t idx, kl_rt *const *inputs, kl_kernel_fn run, const void *state);
/* The same, keeping the outputs: outputs[k] (n_outputs of the node) receive
 * references (NULL for outputs the kernel did not set); caller unrefs. */
kiln_status kl_program_run_node_out(kl_program *p, size_t idx, kl_rt *const *inputs, kl_kernel_fn run,
                                    const void *state, kl_rt **outputs);

/* Nodes of the model without a kernel, for `kiln check`; calls fn for each. */
typedef void (*kl_missing_fn)(const kl_node *n, void *user);
void kl_program_list_missing(const kl_model *m, kl_missing_fn fn, void *user);

#endif
