/*
 * engine.h — the objects behind kiln_build_options, kiln_engine and
 * kiln_context.
 *
 * Every engine is a loaded engine file: kiln_build() writes the optimized
 * graph, tactics, plans and profiles into the engine format
 * (src/engine/format.h) in memory and loads that, so a built engine and a
 * saved-then-loaded one run the very same code on the very same bytes.
 *
 * Sections (beyond the container's META; text sections are UTF-8 lines,
 * fields separated by TAB, parsed with bounds checks):
 *   GRAPH    ONNX ModelProto of the optimized graph (src/onnx/write.h)
 *   WEIGHTS  the constant blob the graph's initializers point into
 *   TACTICS  "N\t<node index>\t<provider>\t<tactic>\t<workspace bytes>\t<ms>"
 *   PROFILES "P\t<index>" then "I\t<input>\t<rank>\t<min>\t<opt>\t<max>"
 *            (dims "1x3x224x224")
 *   PLANS    "P\t<profile>\t<arena bytes>\t<intermediate bytes>" then
 *            "V\t<value name>\t<offset>\t<capacity>\t<kind 0-3>"
 *            (kind: KL_MEM_OWN, _INPLACE, _SLAB, _JOINED; plan/plan.h)
 */
#ifndef KL_RUNTIME_ENGINE_H
#define KL_RUNTIME_ENGINE_H

#include "engine/format.h"
#include "plan/plan.h"
#include "runtime/exec.h"
#include "runtime/runtime.h"

typedef struct kl_symbind kl_symbind;

struct kiln_build_options {
    char providers[KL_MAX_PROVIDERS][16];
    int n_providers;
    int threads;
    unsigned precision;
    kl_profile *profiles;
    size_t n_profiles;
    uint64_t workspace;
    char *timing_cache;
    char **disabled;
    size_t n_disabled;
    kiln_log_fn log;
    void *log_user;
    kiln_log_level log_level;
    bool strict;
    int64_t pass_limit; /* -1: none */
    size_t fold_budget;
    char *tactic;       /* forced tactics "name,op=name" */
    bool no_optimize;
    bool timing;        /* time tactics (else: the best quality tier's first) */
    bool prepack;       /* a packed section: CPU layers' weights packed at build (else at their first run) */
    bool layout_nchwc;   /* "layout" = "nchwc": CPU builds run the blocked-layout pass (passes/layout.c) */
    bool layout_set;     /* "layout" given (else env KILN_LAYOUT=nchwc|nchw decides) */
    bool keep_denormals; /* "denormals" = "keep": runs and timing leave subnormals to the CPU (slow on x86) */
};

/* Copy options (deep).  dst is zeroed first; free with kl_build_options_clear. */
kiln_status kl_build_options_copy(kiln_build_options *dst, const kiln_build_options *src);
void kl_build_options_clear(kiln_build_options *o);
/* Canonical one-line description of the options that change the engine
 * (for the engine header and the engine cache key). */
kiln_status kl_build_options_describe(const kiln_build_options *o, char **out);

/* One layer: a node of the optimized graph with its provider and tactic. */
typedef struct kl_layer {
    const kl_node *node;
    const kl_provider *provider;
    const kl_tactic *tactic;
    void *state;        /* tactic state (released with the engine) */
    size_t workspace;
    double build_ms;    /* time measured at build (0 if not timed) */
    const char *op;     /* "Conv", "kiln.FusedConv" (engine arena) */
} kl_layer;

struct kiln_engine {
    void *owned;           /* bytes owned by the engine (built or serialized), or NULL */
    kl_engine_file file;   /* the validated container (mapped or over `owned`/caller bytes) */
    kl_model *ir;          /* the optimized graph (weights point into the WEIGHTS section) */
    kl_program *prog;
    kl_layer *layers;
    size_t n_layers;
    kl_profile *profiles;
    size_t n_profiles;
    kl_mem_plan *plans;    /* one per profile (or one for a static model), may be 0 */
    size_t n_plans;
    kl_value **inputs;     /* graph inputs that are not initializers */
    size_t n_inputs;
    int threads;
    size_t max_workspace;
    kl_arena arena;        /* strings made at load */
    struct kl_cuda_engine *cuda; /* device state when some layers run on the cuda provider */
    char version_str[16];  /* format version as text */
};

struct kiln_context {
    const kiln_engine *engine;
    size_t profile;
    kl_run_ctx rc;
    void *arena_raw;       /* what to free */
    size_t arena_bytes;
    kl_rt **in_rt;         /* per graph input: view of the caller's tensor (pooled headers) */
    kl_rt *in_headers;
    kl_rt **out_rt;        /* per graph output: the run's result */
    kiln_tensor **made;    /* per requested output, while a run delivers them */
    int64_t (*shapes)[KILN_MAX_RANK]; /* per graph input: shape set by set_input_shape */
    int *shape_rank;       /* -1: not set */
    struct kl_symbind *sym; /* symbolic dims bound while validating a run */
    size_t sym_cap;
    const kiln_tensor **bound_in; /* per graph input, during a run */
    struct kl_cuda_ctx *cuda;     /* stream, plans and graphs of a cuda engine */
    /* Memory plan made by the context itself when runs produced tensors
     * that the engine's plan does not hold (a dynamic axis without a
     * profile, or shapes past the profile's opt): planned at the largest
     * size each intermediate has had, so repeated runs stop allocating.
     * Owned; dyn.offset NULL while there is none. */
    kl_mem_plan dyn;
    size_t *seen_bytes;    /* per value id: largest size written (SIZE_MAX: never) */
    kiln_dtype *seen_dtype;
    int *seen_rank;        /* per value id: the rank and dims at that size (-1: never) */
    int64_t *seen_dims;    /* per value id: KILN_MAX_RANK entries */
    int64_t **seen_dimp;   /* per value id: its row of seen_dims (kl_shapes.dims) */
    bool seen_grew;        /* a size grew since the last plan */
    bool dyn_failed;       /* planning failed once: keep running off the heap */
    /* Batch splitting (batch.c): the graph treats samples independently,
     * so a batch runs `chunk` samples at a time (intermediates stay in
     * cache), its parts in parallel on `kids` (one single-threaded context
     * per thread, made at the first such run). */
    bool split_ok;
    size_t chunk;
    struct kiln_context **kids;
    int n_kids;
    kiln_tensor *sl_in, *sl_out;   /* per graph input / output: slice views during a split run */
    const kiln_tensor **sl_in_p;
    kiln_tensor **sl_out_p;
    kiln_tensor **whole;           /* per requested output: the whole batch's tensor */
    kiln_tensor *sl_stage;         /* per output: a misaligned slice's stand-in in stage_raw */
    bool *staged;
    void *stage_raw;               /* staging buffer (64-byte aligned parts), stage_bytes usable */
    size_t stage_bytes;
    uint64_t *runs_saved;          /* per layer: node_runs before a split run (profiling) */
    size_t tail_k, tail_f;         /* the tail's first node and the value crossing into it (0: no tail) */
    kiln_dtype tail_dtype;         /* the crossing value: type, rank, dims (axis 0 set per run), bytes per sample */
    int tail_rank;
    int64_t tail_dims[KILN_MAX_RANK];
    size_t tail_row;
    void *tail_raw;                /* the crossing value of a part's samples, tail_bytes usable */
    size_t tail_bytes;
    kl_rt tail_hdr;                /* view of it for the tail's run */
    bool kid_ran;                  /* a kid that has run a part */
    kiln_status kid_status;        /* a kid's run, and its message */
    char kid_msg[512];
};

/* The main graph lets every sample of a batch run on its own: the graph
 * inputs and outputs have one symbolic batch axis first (the outputs'
 * other axes known), and each node that reads the batch is an op known
 * not to mix samples (batch.c). */
bool kl_graph_batch_separable(const kl_graph *g);
/* For a separable graph: the first node k of its tail, the nodes after
 * which every value takes at most max_sample_bytes per sample and one
 * value (*frontier, made before k, read from k on, not a graph output)
 * crosses from the head; 0 when there is none.  A split run takes the
 * head a slice at a time and the tail on all its samples at once (the
 * tail's weights, large next to its maps, then stream once). */
size_t kl_graph_batch_tail(const kl_graph *g, size_t max_sample_bytes, size_t *frontier);
/* Samples per slice of a split batch of a separable graph: 2 when its
 * weights (constants) take at least 32 MB and 16 times its largest map of
 * one sample, else 1.  One sample at a time keeps a sample's maps in cache
 * (MobileNet, EfficientNet: maps of 4.8 MB, weights of 14-21 MB); where the
 * weights dwarf the maps (ResNet-50: 102 MB against 3.2 MB, ViT-B/16),
 * each pass over them serves two samples. */
size_t kl_graph_batch_chunk(const kl_graph *g);

/* Open an engine over bytes[0..size): validate, parse the graph, resolve
 * providers and tactics, read profiles and plans.  `owned` (may be NULL)
 * is freed with the engine; `map` (may be NULL) is a mapping it takes over.
 * `name` is used in messages (the path, or "<memory>"). */
kiln_status kl_engine_open(const void *bytes, size_t size, void *owned, const char *path, kiln_engine **out);
/* Map the engine file at map_path (e.g. /proc/self/fd/N of an unlinked
 * temporary file) and open it, naming it `name` in messages. */
kiln_status kl_engine_load_named(const char *map_path, const char *name, kiln_engine **out);

/* Check input tensors against the engine (types, ranks, fixed dims,
 * symbolic dims consistent, and the profile's ranges).  bound[] is
 * indexed like the graph's inputs. */
kiln_status kl_context_bind(kiln_context *ctx, const char *const *names, const kiln_tensor *const *inputs,
                            size_t count, const kiln_tensor **bound);

#endif /* KL_RUNTIME_ENGINE_H */
