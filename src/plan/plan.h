/*
 * plan.h — what the builder decides after the passes: which provider and
 * tactic runs each node (partition.c, tactic.c), the concrete shapes of
 * every value at a profile's min/opt/max (shapes.c), and where each
 * intermediate tensor lives in the context's arena (memory.c).
 *
 * Everything here works on the main graph of an optimized kl_model; values
 * are indexed by kl_value.id, nodes by position in g->nodes.
 */
#ifndef KL_PLAN_H
#define KL_PLAN_H

#include "backend/provider.h"

/* ---- profiles ----------------------------------------------------------------- */

/* min/opt/max shapes of one input in one profile. */
typedef struct kl_profile_input {
    char *name;
    int rank;
    int64_t min[KILN_MAX_RANK], opt[KILN_MAX_RANK], max[KILN_MAX_RANK];
} kl_profile_input;

typedef struct kl_profile {
    kl_profile_input *inputs;
    size_t n_inputs;
} kl_profile;

enum { KL_AT_MIN = 0, KL_AT_OPT = 1, KL_AT_MAX = 2 };

/* ---- shapes at a profile point (shapes.c) -------------------------------------- */

/* Concrete shapes of every value of the main graph at a profile point. */
typedef struct kl_shapes {
    size_t n_values;
    int *rank;        /* per value id; -1 unknown (data-dependent or not a tensor) */
    int64_t **dims;   /* per value id: rank entries */
    size_t *bytes;    /* per value id; SIZE_MAX when unknown */
    kiln_dtype *dtype;
} kl_shapes;

/* Evaluate the shapes of every value of m's main graph with the graph
 * inputs set to the profile's shapes at `at` (KL_AT_*); inputs not in the
 * profile must have static shapes.  The model's own (symbolic) types are
 * restored before returning.  Owner of *out: caller (kl_shapes_free). */
kiln_status kl_shapes_eval(kl_model *m, const kl_profile *p, int at, kl_shapes *out);
void kl_shapes_free(kl_shapes *s);

/* ---- partition (partition.c) ------------------------------------------------------ */

typedef struct kl_assign {
    const kl_provider *provider;
    const char *cause; /* "preferred", "fallback: no cuda kernel for ..." (arena string) */
} kl_assign;

/* Assign each main-graph node to the first provider of `order` that
 * supports it.  Fallbacks are errors when `strict`.  The report (one line
 * per provider with its node count, one per fallback with the reason) is
 * appended to *report (kl_malloc'd string, caller frees).  *assign: one
 * entry per node (caller frees). */
kiln_status kl_partition(const kl_graph *g, const kl_provider *const *order, size_t n_order, bool strict,
                         kl_assign **assign, char **report);

/* ---- memory plan (memory.c) ----------------------------------------------------------- */

typedef struct kl_mem_plan {
    size_t arena_bytes;        /* the arena every context allocates */
    size_t intermediate_bytes; /* sum of the planned tensors' sizes, for comparison */
    size_t n_values;
    int64_t *offset;           /* per value id: offset in the arena, -1 if not planned */
    size_t *capacity;          /* per value id: bytes reserved there */
    uint8_t *inplace;          /* per value id: KL_MEM_* */
    /* kl_mem_plan_build_slabs only (NULL otherwise): per value id, the first
     * channel of its slab in the joined Concat's output (-1: not a slab);
     * offset[] of a slab is then the output's offset (its memory layout,
     * NCHW or NHWC, places the channels) */
    int64_t *slab_ch;
    int64_t *slab_of;          /* with slab_ch: the joined output's value id (-1: none) */
} kl_mem_plan;

/* kl_mem_plan.inplace: how a planned value shares memory */
enum {
    KL_MEM_OWN = 0,    /* its own block */
    KL_MEM_INPLACE = 1, /* a dying input's block (input 0; kiln.FusedConv's Z on the host), written over */
    KL_MEM_SLAB = 2,   /* a slab of a joined Concat's output: its producer writes it there, no copy */
    KL_MEM_JOINED = 3, /* a joined Concat's output: its slabs are its inputs, in place already */
};

/* Plan the intermediates of g (values produced by a node that are not graph
 * outputs) at the sizes in `shapes`: lifetimes in node order, best-fit
 * offsets (64-byte aligned), in place over a dying input where the op
 * allows it.  Values of unknown size are left unplanned.  Owner: caller
 * (kl_mem_plan_free). */
kiln_status kl_mem_plan_build(const kl_graph *g, const kl_shapes *shapes, kl_mem_plan *out);
/* The same with the caller's rule for nodes whose outputs are views of
 * their inputs (not placed; their inputs live as long as they do): the
 * cuda executor treats Reshape and its kin as views; and keep_until (NULL,
 * or per value id: node index + 1 it must live to at least), for readers
 * the graph does not show (a fused attention reading Q/K/V past the nodes
 * it replaced). */
kiln_status kl_mem_plan_build_ex(const kl_graph *g, const kl_shapes *shapes, bool (*aliases)(const kl_node *n),
                                 const size_t *keep_until, kl_mem_plan *out);
/* The same, and with join_concat (kl_mem_plan_build: the host executor,
 * whose Concat skips inputs already in their slab) a Concat along its
 * outermost non-unit axis has its inputs placed as slabs of its output
 * (KL_MEM_SLAB / KL_MEM_JOINED): their producers write them there, the
 * output's block lives as long as any of them. */
kiln_status kl_mem_plan_build_impl(const kl_graph *g, const kl_shapes *shapes, bool (*aliases)(const kl_node *n),
                                   const size_t *keep_until, bool join_concat, kl_mem_plan *out);
/* The device executor's form: a Concat along axis 1 of 4-D values (the
 * channels) has those of its inputs whose producer part_ok accepts (and
 * that are intermediates made by no aliasing node, members of no other
 * joined Concat) placed as channel slabs of its output (KL_MEM_SLAB,
 * slab_ch; the output KL_MEM_JOINED): their producers write their channels
 * of the output with its strides, and the Concat copies only the others.
 * The output's block is placed with the first slab made and lives as long
 * as the output or any slab is read. */
kiln_status kl_mem_plan_build_slabs(const kl_graph *g, const kl_shapes *shapes, bool (*aliases)(const kl_node *n),
                                    const size_t *keep_until, bool (*part_ok)(const kl_node *producer),
                                    kl_mem_plan *out);
void kl_mem_plan_free(kl_mem_plan *p);
/* May node n write its output 0 over its input 0 (elementwise, same shape;
 * or Reshape and its kin, whose output is the input's bytes in order)? */
bool kl_op_inplace(const kl_node *n);
/* The input the host executor's plan (kl_mem_plan_build) may write node n's
 * output 0 over when it dies there: 0 where kl_op_inplace, 3 (Z) for
 * kiln.FusedConv with a residual; SIZE_MAX for none. */
size_t kl_op_inplace_host_input(const kl_node *n);
/* Does node n possibly return (a view of) an input or a captured value as
 * an output (Identity, Dropout, control flow, sequences)? */
bool kl_op_aliases(const kl_node *n);

/* ---- timing cache (tactic.c) -------------------------------------------------------------- */

typedef struct kl_timing_cache kl_timing_cache;

/* An empty cache in memory. */
kiln_status kl_timing_cache_create(kl_timing_cache **out);
/* Load `path` (a missing file is an empty cache). */
kiln_status kl_timing_cache_load(const char *path, kl_timing_cache **out);
/* Write it back atomically. */
kiln_status kl_timing_cache_save(const kl_timing_cache *c, const char *path);
void kl_timing_cache_free(kl_timing_cache *c);
/* Cached time of `tactic` for `key`; false if absent. */
bool kl_timing_cache_get(const kl_timing_cache *c, const char *key, const char *tactic, double *ms);
kiln_status kl_timing_cache_put(kl_timing_cache *c, const char *key, const char *tactic, double ms);
size_t kl_timing_cache_hits(const kl_timing_cache *c);

/* Key of node n for the timing cache: provider, op, types, shapes at the
 * profile point and attributes, and this CPU's features.  Into buf. */
const char *kl_tactic_key(const kl_node *n, const kl_shapes *s, const char *provider, char *buf, size_t size);

#endif /* KL_PLAN_H */
