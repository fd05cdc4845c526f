/*
 * kiln.h — the public C API of kiln, an inference optimizer and runtime for
 * ONNX models.  This is the only public header.
 *
 * Conventions (read once, they hold for every function below):
 *
 *  - Every function that can fail returns a kiln_status; KILN_OK (0) means
 *    success.  On failure, kiln_last_error() returns a message naming the
 *    file, node or tensor involved.  Output parameters are written only on
 *    success.
 *  - Destructors (kiln_*_destroy) accept NULL, cannot fail and return void.
 *  - kiln_x_create(..., kiln_x **out): the caller owns *out and releases it
 *    with kiln_x_destroy().
 *  - Returned `const char *` strings and arrays are BORROWED: they stay valid
 *    as long as the object they were obtained from, unless stated otherwise.
 *  - Types are opaque; options are objects with setters, so the ABI can grow.
 *  - The library never prints, never calls exit() or abort(); it logs only
 *    through a callback installed with kiln_set_log_callback().
 *  - Thread safety: a kiln_model is immutable after loading and can be read
 *    from several threads at once.  A kiln_session may be used by one thread
 *    at a time.  kiln_last_error() is per thread.
 */
#ifndef KILN_H
#define KILN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define KILN_API
#elif defined(__GNUC__)
#define KILN_API __attribute__((visibility("default")))
#else
#define KILN_API
#endif

#define KILN_VERSION_MAJOR 0
#define KILN_VERSION_MINOR 1
#define KILN_VERSION_PATCH 0
#define KILN_VERSION "0.1.0"
/* Single number for comparisons: major*10000 + minor*100 + patch. */
#define KILN_VERSION_NUMBER \
    (KILN_VERSION_MAJOR * 10000 + KILN_VERSION_MINOR * 100 + KILN_VERSION_PATCH)

/* ------------------------------------------------------------------------ */
/* Status                                                                    */
/* ------------------------------------------------------------------------ */

typedef enum kiln_status {
    KILN_OK = 0,
    KILN_ERR_INVALID_ARGUMENT = 1, /* a NULL pointer, an index out of range */
    KILN_ERR_IO = 2,               /* a file could not be opened, read or mapped */
    KILN_ERR_PARSE = 3,            /* the bytes are not a well-formed ONNX protobuf */
    KILN_ERR_INVALID_MODEL = 4,    /* well-formed, but breaks an ONNX rule */
    KILN_ERR_UNSUPPORTED = 5,      /* valid ONNX that kiln cannot handle yet */
    KILN_ERR_SHAPE = 6,            /* a shape does not fit */
    KILN_ERR_TYPE = 7,             /* an element type does not fit */
    KILN_ERR_NO_MEMORY = 8,        /* allocation failed or exceeded a limit */
    KILN_ERR_NOT_FOUND = 9,        /* a named input/output/provider does not exist */
    KILN_ERR_NOT_IMPLEMENTED = 10, /* the operation exists in the API but not yet in kiln */
    KILN_ERR_INTERNAL = 11,        /* a bug in kiln: please report it */
    KILN_ERR_ENGINE_MISMATCH = 12  /* an engine file was built for another setup */
} kiln_status;

/* Name of a status code ("KILN_ERR_PARSE").  Static string. */
KILN_API const char *kiln_status_name(kiln_status status);

/* Message of the last failing kiln call on this thread, or "" if none.
 * Borrowed: valid until the next kiln call on the same thread. */
KILN_API const char *kiln_last_error(void);

/* Version of the library at run time ("0.1.0").  Static string. */
KILN_API const char *kiln_version(void);

/* Log levels and callback.  By default nothing is logged anywhere. */
typedef enum kiln_log_level {
    KILN_LOG_ERROR = 0,
    KILN_LOG_WARNING = 1,
    KILN_LOG_INFO = 2,
    KILN_LOG_DEBUG = 3
} kiln_log_level;
typedef void (*kiln_log_fn)(kiln_log_level level, const char *message, void *user);
/* Install a process-wide log callback (NULL removes it).  Messages above
 * max_level are dropped.  Not thread-safe with concurrent logging. */
KILN_API kiln_status kiln_set_log_callback(kiln_log_fn fn, void *user, kiln_log_level max_level);

/* ------------------------------------------------------------------------ */
/* Element types (values are ONNX's TensorProto.DataType numbers)            */
/* ------------------------------------------------------------------------ */

typedef enum kiln_dtype {
    KILN_DTYPE_UNDEFINED = 0,
    KILN_DTYPE_FLOAT = 1,
    KILN_DTYPE_UINT8 = 2,
    KILN_DTYPE_INT8 = 3,
    KILN_DTYPE_UINT16 = 4,
    KILN_DTYPE_INT16 = 5,
    KILN_DTYPE_INT32 = 6,
    KILN_DTYPE_INT64 = 7,
    KILN_DTYPE_STRING = 8,
    KILN_DTYPE_BOOL = 9,
    KILN_DTYPE_FLOAT16 = 10,
    KILN_DTYPE_DOUBLE = 11,
    KILN_DTYPE_UINT32 = 12,
    KILN_DTYPE_UINT64 = 13,
    KILN_DTYPE_COMPLEX64 = 14,
    KILN_DTYPE_COMPLEX128 = 15,
    KILN_DTYPE_BFLOAT16 = 16,
    KILN_DTYPE_FLOAT8E4M3FN = 17,
    KILN_DTYPE_FLOAT8E4M3FNUZ = 18,
    KILN_DTYPE_FLOAT8E5M2 = 19,
    KILN_DTYPE_FLOAT8E5M2FNUZ = 20,
    KILN_DTYPE_UINT4 = 21,
    KILN_DTYPE_INT4 = 22,
    KILN_DTYPE_FLOAT4E2M1 = 23,
    KILN_DTYPE_FLOAT8E8M0 = 24,
    KILN_DTYPE_UINT2 = 25,
    KILN_DTYPE_INT2 = 26
} kiln_dtype;
#define KILN_DTYPE_COUNT 27

/* Lower-case ONNX-style name ("float", "bfloat16", "int4"); "undefined" for
 * unknown values.  Static string. */
KILN_API const char *kiln_dtype_name(kiln_dtype dtype);
/* Size of one element in bits (4 for int4, 8 for bool); 0 for string and
 * undefined.  Cannot fail. */
KILN_API size_t kiln_dtype_bits(kiln_dtype dtype);

/* Largest tensor rank kiln accepts anywhere. */
#define KILN_MAX_RANK 16

/* ------------------------------------------------------------------------ */
/* Models                                                                    */
/* ------------------------------------------------------------------------ */

/* A loaded ONNX model: parsed graph, checked structure, inferred shapes.
 * The file is memory-mapped and weights are referenced in place, so the
 * model keeps the file (and its external data files) mapped until destroyed.
 * Immutable once loaded; safe to share between threads. */
typedef struct kiln_model kiln_model;

/* Load the model at `path`.  External data files are resolved relative to
 * the model's folder.  Fails with KILN_ERR_IO (file), KILN_ERR_PARSE
 * (malformed protobuf) or KILN_ERR_INVALID_MODEL (structurally broken
 * graph, external data outside the model's folder or past a file's end).
 * A model that loads may still break ONNX rules: kiln_model_check() lists
 * them, and kiln_session_create() refuses such a model.
 * Owner: caller, release with kiln_model_destroy(). */
KILN_API kiln_status kiln_model_load(const char *path, kiln_model **out);

/* Load a model from memory.  The buffer is BORROWED, not copied: it must
 * stay valid and unchanged until kiln_model_destroy().  `base_dir` (may be
 * NULL: external data is then refused) is where external data files are
 * looked up.  Owner of *out: caller. */
KILN_API kiln_status kiln_model_load_from_memory(const void *data, size_t size,
                                                 const char *base_dir, kiln_model **out);

/* Release a model.  NULL is a no-op.  Sessions created from the model must
 * be destroyed first. */
KILN_API void kiln_model_destroy(kiln_model *model);

/* Number of graph inputs (initializers excluded) and outputs. */
KILN_API kiln_status kiln_model_input_count(const kiln_model *model, size_t *count);
KILN_API kiln_status kiln_model_output_count(const kiln_model *model, size_t *count);

/* Name (borrowed) and element type of input/output `index`.  Inputs whose
 * type is not a tensor report KILN_DTYPE_UNDEFINED. */
KILN_API kiln_status kiln_model_input_info(const kiln_model *model, size_t index,
                                           const char **name, kiln_dtype *dtype, int *rank);
KILN_API kiln_status kiln_model_output_info(const kiln_model *model, size_t index,
                                            const char **name, kiln_dtype *dtype, int *rank);
/* rank is -1 when unknown. */

/* Dimension `axis` of input/output `index`: *dim is its size, or -1 when
 * not fixed; *dim_name (borrowed; may be NULL) is the symbolic name
 * ("batch_size") when the model gives one.  Either pointer may be NULL. */
KILN_API kiln_status kiln_model_input_dim(const kiln_model *model, size_t index, int axis,
                                          int64_t *dim, const char **dim_name);
KILN_API kiln_status kiln_model_output_dim(const kiln_model *model, size_t index, int axis,
                                           int64_t *dim, const char **dim_name);

/* ------------------------------------------------------------------------ */
/* Checking                                                                  */
/* ------------------------------------------------------------------------ */

/* The result of checking a model: every problem found, plus the operators
 * kiln cannot run yet.  Owner: caller, release with kiln_check_destroy(). */
typedef struct kiln_check kiln_check;

typedef enum kiln_check_severity {
    KILN_CHECK_ERROR = 0,      /* the model breaks an ONNX rule */
    KILN_CHECK_WARNING = 1,    /* legal, but suspicious */
    KILN_CHECK_UNSUPPORTED = 2 /* valid, but kiln cannot run it yet */
} kiln_check_severity;

/* Check `model` against the ONNX rules (what onnx.checker checks, and more)
 * and against what kiln can run. */
KILN_API kiln_status kiln_model_check(const kiln_model *model, kiln_check **out);
KILN_API void kiln_check_destroy(kiln_check *check);

/* Number of problems of all severities. */
KILN_API kiln_status kiln_check_count(const kiln_check *check, size_t *count);
/* Problem `index`: severity, the node's index in the main graph (-1 when the
 * problem is not about one node), and a message (borrowed, valid until
 * kiln_check_destroy) that names the node, op type, tensor or file. */
KILN_API kiln_status kiln_check_problem(const kiln_check *check, size_t index,
                                        kiln_check_severity *severity, int64_t *node_index,
                                        const char **message);
/* Number of problems with severity KILN_CHECK_ERROR: 0 means the model is
 * valid ONNX. */
KILN_API kiln_status kiln_check_error_count(const kiln_check *check, size_t *count);

/* ------------------------------------------------------------------------ */
/* Tensors                                                                   */
/* ------------------------------------------------------------------------ */

/* A dense CPU tensor: element type, shape and data.  Data is either owned
 * by the tensor or borrowed from the caller.  String tensors are not
 * supported through this API yet. */
typedef struct kiln_tensor kiln_tensor;

/* Create a tensor that owns zero-initialized memory for `shape`.
 * Owner: caller, release with kiln_tensor_destroy(). */
KILN_API kiln_status kiln_tensor_create(kiln_dtype dtype, const int64_t *shape, int rank,
                                        kiln_tensor **out);

/* Create a tensor over caller memory.  `data` is BORROWED: it must hold
 * `size_bytes` bytes (exactly the tensor's byte size) and outlive the tensor.
 * Owner of *out: caller (the data stays the caller's). */
KILN_API kiln_status kiln_tensor_create_from_data(kiln_dtype dtype, const int64_t *shape,
                                                  int rank, void *data, size_t size_bytes,
                                                  kiln_tensor **out);

/* Release a tensor (and its data, when owned).  NULL is a no-op. */
KILN_API void kiln_tensor_destroy(kiln_tensor *tensor);

KILN_API kiln_status kiln_tensor_dtype(const kiln_tensor *tensor, kiln_dtype *dtype);
/* Rank and shape; *shape is borrowed, valid while the tensor lives. */
KILN_API kiln_status kiln_tensor_shape(const kiln_tensor *tensor, int *rank,
                                       const int64_t **shape);
/* Data pointer (borrowed) and its size in bytes. */
KILN_API kiln_status kiln_tensor_data(kiln_tensor *tensor, void **data, size_t *size_bytes);
/* Number of elements (1 for a rank-0 tensor). */
KILN_API kiln_status kiln_tensor_element_count(const kiln_tensor *tensor, int64_t *count);


/* ------------------------------------------------------------------------ */
/* Providers                                                                 */
/* ------------------------------------------------------------------------ */

/* Number of providers compiled into this library ("cpu", and "cuda" when
 * built with CUDA), usable here or not.  Cannot fail but for a NULL. */
KILN_API kiln_status kiln_providers_available(size_t *count);
/* Provider `index` (< kiln_providers_available()): its name, whether it can
 * run on this machine (1) or not (0), and if not, why ("no NVIDIA GPU
 * found", "built without CUDA").  Strings are static. */
KILN_API kiln_status kiln_provider_info(size_t index, const char **name, int *usable,
                                        const char **reason);

/* ------------------------------------------------------------------------ */
/* This machine: CPU facts and measured FMA peak                             */
/* ------------------------------------------------------------------------ */

/* Facts about this machine's CPU, by key; *value is a static string:
 *   "model"         cpuid's brand string ("" when the CPU gives none)
 *   "vendor"        cpuid's vendor ("AuthenticAMD", "GenuineIntel"; "" off x86)
 *   "isa"           the level the CPU kernels use: "ref" (portable C),
 *                   "avx2" (AVX2 + FMA + F16C) or "avx512" (F/BW/DQ/VL): the
 *                   highest detected, lowered by the environment variable
 *                   KILN_ISA=ref|avx2|avx512 (read once per process)
 *   "isa_detected"  the highest level the CPU and OS support (KILN_ISA aside)
 *   "isa_levels"    the levels kiln may use here, lowest first ("ref,avx2")
 *   "features"      the x86 features detected, space-separated
 *                   ("avx avx2 fma f16c avx512f ...")
 *   "cores"         logical CPUs online ("2")
 * KILN_ERR_NOT_FOUND for other keys. */
KILN_API kiln_status kiln_cpu_get(const char *key, const char **value);

/* Measure this machine's FP32 FMA peak at ISA level `isa` ("ref": portable C
 * multiply-adds; "avx2"; "avx512"; NULL or "auto": the level in use) on
 * `threads` threads at once (0: one per logical CPU online): every thread
 * runs a loop of independent FMAs (warm-up about 10 ms, then the best of 5
 * runs of about 3 ms); *gflops receives the GFLOP/s of all threads together
 * (an FMA is 2 flops per lane).  Blocks the caller for about 30 ms per new
 * (level, threads) pair; results are cached for the process.
 * KILN_ERR_NOT_FOUND for an unknown level name, KILN_ERR_UNSUPPORTED for a
 * level the CPU lacks or KILN_ISA excludes, KILN_ERR_INVALID_ARGUMENT for
 * threads outside 0..1024.  Thread-safe. */
KILN_API kiln_status kiln_cpu_peak_gflops(const char *isa, int threads, double *gflops);

/* Multiply-accumulates (MACs) of a model's Conv, ConvTranspose, Gemm and
 * MatMul-like nodes (subgraph nodes counted once), the count `kiln info`
 * prints; FLOPs are 2 x MACs.  Input `input_names[i]` is given the shape
 * shapes[i] (ranks[i] dims; only the shape matters), which sizes its
 * symbolic dimensions ("batch") wherever they appear; symbolic dimensions
 * no input binds count as 1 (input_count 0: all of them, as `kiln info`).
 * *uncounted (may be NULL) receives the number of nodes left out because
 * their shapes are not known.  KILN_ERR_NOT_FOUND for an unknown input
 * name, KILN_ERR_SHAPE for a rank or fixed dimension that does not match,
 * or one symbolic dimension given two sizes. */
KILN_API kiln_status kiln_model_macs(const kiln_model *model, const char *const *input_names,
                                     const int *ranks, const int64_t *const *shapes,
                                     size_t input_count, uint64_t *macs, size_t *uncounted);

/* ------------------------------------------------------------------------ */
/* Builder: model -> optimized engine (TensorRT's split, in C)               */
/* ------------------------------------------------------------------------ */

/* Precision flags: each ALLOWS a lower precision where a provider has a
 * kernel for it (TensorRT's meaning); FP32 is always allowed. */
typedef enum kiln_precision_flag {
    KILN_PRECISION_FP16 = 1u << 0,
    KILN_PRECISION_BF16 = 1u << 1,
    KILN_PRECISION_INT8 = 1u << 2,
    KILN_PRECISION_TF32 = 1u << 3,
    KILN_PRECISION_STRONGLY_TYPED = 1u << 4
} kiln_precision_flag;

/* Options of a build.  Owner: caller, release with
 * kiln_build_options_destroy(); kiln_build() copies what it needs. */
typedef struct kiln_build_options kiln_build_options;

KILN_API kiln_status kiln_build_options_create(kiln_build_options **out);
KILN_API void kiln_build_options_destroy(kiln_build_options *options);
/* Append a provider to the preference order ("cuda", "cpu").  Default:
 * every usable provider, cuda before cpu.  A provider that is compiled in
 * but not usable here fails with KILN_ERR_UNSUPPORTED and says why; an
 * unknown name fails with KILN_ERR_NOT_FOUND. */
KILN_API kiln_status kiln_build_options_append_provider(kiln_build_options *options,
                                                        const char *provider);
/* CPU threads used to time tactics and recorded as the engine's default
 * (0 = one per physical core). */
KILN_API kiln_status kiln_build_options_set_threads(kiln_build_options *options, int threads);
/* OR of kiln_precision_flag.  KILN_ERR_NOT_IMPLEMENTED for a precision
 * kiln cannot build at all yet (INT8 before calibration lands). */
KILN_API kiln_status kiln_build_options_set_precision(kiln_build_options *options,
                                                      unsigned flags);
/* Add an optimization profile; *index receives its number (0, 1, ...). */
KILN_API kiln_status kiln_build_options_add_profile(kiln_build_options *options, size_t *index);
/* Set the min/opt/max shape of input `name` in profile `profile`; the three
 * shapes have `rank` dims each, min <= opt <= max axis by axis. */
KILN_API kiln_status kiln_build_options_set_profile_shape(kiln_build_options *options,
                                                          size_t profile, const char *name,
                                                          int rank, const int64_t *min,
                                                          const int64_t *opt,
                                                          const int64_t *max);
/* Most scratch memory a tactic may use (bytes; 0 = no limit). */
KILN_API kiln_status kiln_build_options_set_workspace(kiln_build_options *options,
                                                      uint64_t bytes);
/* Timing cache file: read before timing tactics (if it exists) and written
 * back after.  NULL: no timing cache.  The string is copied. */
KILN_API kiln_status kiln_build_options_set_timing_cache(kiln_build_options *options,
                                                         const char *path);
/* Do not run the optimization pass `name` (KILN_ERR_NOT_FOUND if there is
 * no such pass). */
KILN_API kiln_status kiln_build_options_disable_pass(kiln_build_options *options,
                                                     const char *name);
/* Build messages (passes applied, partition, tactics and their times,
 * arena) go to fn at level <= max_level; progress of tactic timing is
 * reported at KILN_LOG_DEBUG as "progress D/N".  NULL: silent. */
KILN_API kiln_status kiln_build_options_set_log(kiln_build_options *options, kiln_log_fn fn,
                                                void *user, kiln_log_level max_level);
/* Generic setting: "strict_providers" ("0"/"1": any fallback is an error),
 * "pass_limit" (stop after N rewrites; also env KILN_PASS_LIMIT),
 * "disable_pass" ("NAME" or "NAME,NAME": kiln_build_options_disable_pass
 * for each), "fold_budget" (bytes of constants folding may create), "tactic"
 * ("conv=NAME,gemm=NAME": force tactics; also env KILN_TACTIC),
 * "optimize" ("0": no passes), "shapes" ("NAME:1x16,NAME2:..."; adds one
 * profile with min = opt = max, as trtexec's --shapes), "tactic_timing"
 * ("0": take the best quality tier untimed), "prepack" ("1": the CPU
 * layers' packed weights go into the engine, so a loaded engine uses them
 * from the mapping instead of packing at each layer's first run; the file
 * grows by their size), "denormals" ("flush", the default: CPU runs and
 * tactic timing set flush-to-zero and denormals-are-zero, restoring the
 * calling thread's mode when they return, so values below 1.2e-38 become
 * zero; "keep": subnormals computed exactly, at up to 5x the time on x86
 * where activations decay into them), "layout" ("nchw", the default, or
 * "nchwc": CPU builds keep convolution activations blocked by 16 channels
 * through chains of Conv and MaxPool layers, reordering at the edges; each
 * blocked layer times the blocked direct kernel against its NCHW algorithm
 * between reorders).  Unknown keys fail with KILN_ERR_NOT_FOUND. */
KILN_API kiln_status kiln_build_options_set(kiln_build_options *options, const char *key,
                                            const char *value);

/* An optimized, immutable engine: the graph after passes, each node's
 * provider and tactic, memory plans and profiles, weights (mapped from the
 * engine file when loaded from one).  Owner: caller, release with
 * kiln_engine_destroy() after every context made from it.  Thread safety:
 * an engine may be read and used to create contexts from any number of
 * threads at once. */
typedef struct kiln_engine kiln_engine;

/* Build an engine for `model` (which may be destroyed afterwards). */
KILN_API kiln_status kiln_build(const kiln_model *model, const kiln_build_options *options,
                                kiln_engine **out);
KILN_API void kiln_engine_destroy(kiln_engine *engine);
/* Write the engine file (atomically: a temporary file, then rename). */
KILN_API kiln_status kiln_engine_save(const kiln_engine *engine, const char *path);
/* Serialize to memory: *data (owner: caller, release with kiln_free()). */
KILN_API kiln_status kiln_engine_serialize(const kiln_engine *engine, void **data, size_t *size);
/* Load an engine file (memory-mapped; weights are not copied).  Refused
 * with a message naming the cause: KILN_ERR_PARSE (bad magic, truncated,
 * checksum, section out of bounds), KILN_ERR_ENGINE_MISMATCH (other format
 * version, CPU lacks an ISA feature a tactic needs, unknown provider). */
KILN_API kiln_status kiln_engine_load(const char *path, kiln_engine **out);
/* Same from memory; the bytes must stay valid until kiln_engine_destroy(). */
KILN_API kiln_status kiln_engine_load_from_memory(const void *data, size_t size,
                                                  kiln_engine **out);
/* Inputs and outputs of the engine (those of the model). */
KILN_API kiln_status kiln_engine_input_count(const kiln_engine *engine, size_t *count);
KILN_API kiln_status kiln_engine_output_count(const kiln_engine *engine, size_t *count);
/* Name, element type and rank of input/output `index`; dim(axis) is the
 * fixed size, or -1 for a dynamic axis. */
KILN_API kiln_status kiln_engine_input_info(const kiln_engine *engine, size_t index,
                                            const char **name, kiln_dtype *dtype, int *rank);
KILN_API kiln_status kiln_engine_output_info(const kiln_engine *engine, size_t index,
                                             const char **name, kiln_dtype *dtype, int *rank);
KILN_API kiln_status kiln_engine_input_dim(const kiln_engine *engine, size_t index, int axis,
                                           int64_t *dim);
KILN_API kiln_status kiln_engine_output_dim(const kiln_engine *engine, size_t index, int axis,
                                            int64_t *dim);
/* Facts about the engine as strings, by key: "format_version",
 * "kiln_version", "model_sha256", "providers", "cpu_features",
 * "precision", "threads", "profiles", "nodes_before", "nodes_after",
 * "arena_bytes" (largest arena over profiles), "intermediate_bytes" (sum of
 * all intermediate tensors at the same shapes), "passes" (rewrites applied,
 * one per line), "partition" (the assignment report, one line per
 * provider/fallback), "build_options".  KILN_ERR_NOT_FOUND for other keys. */
KILN_API kiln_status kiln_engine_get(const kiln_engine *engine, const char *key,
                                     const char **value);
/* Layers (nodes after fusion), in execution order. */
KILN_API kiln_status kiln_engine_layer_count(const kiln_engine *engine, size_t *count);
/* Layer `index`: name, op ("Conv", "kiln.FusedConv"), provider, tactic, and
 * the names of the model nodes it absorbed ("conv1+bn1+relu1"). */
KILN_API kiln_status kiln_engine_layer_info(const kiln_engine *engine, size_t index,
                                            const char **name, const char **op,
                                            const char **provider, const char **tactic,
                                            const char **fused_from);
/* kiln_model_macs() over the engine's optimized graph: a fused layer counts
 * as the nodes it absorbed (kiln.Attention as its two products), so an
 * engine counts what its model counts. */
KILN_API kiln_status kiln_engine_macs(const kiln_engine *engine, const char *const *input_names,
                                      const int *ranks, const int64_t *const *shapes,
                                      size_t input_count, uint64_t *macs, size_t *uncounted);
/* The optimized graph as Graphviz DOT (*dot: owner caller, kiln_free()). */
KILN_API kiln_status kiln_engine_graph_dot(const kiln_engine *engine, char **dot);
/* Release memory returned by kiln (kiln_engine_serialize, ..._dot). */
KILN_API void kiln_free(void *ptr);

/* ------------------------------------------------------------------------ */
/* Execution contexts                                                        */
/* ------------------------------------------------------------------------ */

/* Per-thread (per-stream) execution state of an engine: its memory arena,
 * chosen profile and input shapes.  Owner: caller, release with
 * kiln_context_destroy() before the engine.  One thread at a time per
 * context; many contexts of one engine may run at once. */
typedef struct kiln_context kiln_context;

KILN_API kiln_status kiln_context_create(const kiln_engine *engine, kiln_context **out);
KILN_API void kiln_context_destroy(kiln_context *ctx);
/* Select optimization profile `index` (default 0). */
KILN_API kiln_status kiln_context_set_profile(kiln_context *ctx, size_t index);
/* Set the shape of a dynamic input before a run; a shape outside the
 * profile fails with KILN_ERR_SHAPE naming the input, the axis and the
 * range.  kiln_context_run() also takes the shapes from its inputs. */
KILN_API kiln_status kiln_context_set_input_shape(kiln_context *ctx, const char *name,
                                                  int rank, const int64_t *shape);
/* Run, with kiln_session_run()'s contract: outputs[i] non-NULL is written
 * in place (no copy; type and shape must match), NULL gets a new tensor
 * owned by the caller.  On the CPU, a batch of a graph whose nodes treat
 * samples on their own (CNN classifiers) runs one sample at a time, its
 * parts side by side on the context's threads (a thread each, with its
 * own arena); KILN_BATCH_SPLIT=0 in the environment at context creation
 * runs batches whole. */
KILN_API kiln_status kiln_context_run(kiln_context *ctx, const char *const *input_names,
                                      const kiln_tensor *const *inputs, size_t input_count,
                                      const char *const *output_names, kiln_tensor **outputs,
                                      size_t output_count);
/* Per-layer timing: on (1) records each layer's time on every run. */
KILN_API kiln_status kiln_context_set_profiling(kiln_context *ctx, int on);
/* Times recorded since profiling was switched on, per layer (index as in
 * kiln_engine_layer_info): total milliseconds and the number of runs. */
KILN_API kiln_status kiln_context_layer_time(const kiln_context *ctx, size_t index,
                                             double *total_ms, uint64_t *runs);
/* What runs layer `index` in this context, in words, written to buf (size
 * bytes, always terminated, truncated if short; caller's memory): on the
 * cuda provider the kernels of the plan of the last run's shapes ("cuDNN
 * IMPLICIT_PRECOMP_GEMM + bias/act pass", "kiln implicit GEMM 128x64 tile,
 * 2x2 warps", "cuBLASLt algo 21 tile 20 stages 8 bias epilogue", "kiln
 * flash attention"...; cublasLtMatmulTile_t and cublasLtMatmulStages_t
 * numbers), where the engine's tactic names only the family; elsewhere, and
 * before a first run, the layer's tactic name (kiln_engine_layer_info). */
KILN_API kiln_status kiln_context_layer_kernel(const kiln_context *ctx, size_t index, char *buf, size_t size);
/* Bytes of the context's arena (intermediate tensors and workspace). */
KILN_API kiln_status kiln_context_arena_bytes(const kiln_context *ctx, size_t *bytes);

/* GPU engines (some layers on the cuda provider).  trtexec's split of the
 * last run: host-to-device copies, compute, device-to-host copies (ms,
 * from CUDA events).  KILN_ERR_UNSUPPORTED for CPU-only engines. */
KILN_API kiln_status kiln_context_device_times(const kiln_context *ctx, double *h2d_ms, double *compute_ms,
                                               double *d2h_ms);
/* Time `iterations` launches of the compute alone on the inputs of the last
 * run (trtexec's --noDataTransfers): ms[i] (caller's array of iterations
 * doubles) receives each launch's GPU time.  Needs one kiln_context_run
 * first.  KILN_ERR_UNSUPPORTED for CPU-only engines. */
KILN_API kiln_status kiln_context_time_compute(kiln_context *ctx, int iterations, double *ms);
/* Whether the last run replayed a CUDA graph, how many layers of the
 * current shape plan fall back to the CPU, and the device bytes that plan
 * holds (arena, inputs, outputs, workspace; the engine's weights are
 * separate).  Any pointer may be NULL.  KILN_ERR_UNSUPPORTED for CPU-only
 * engines. */
KILN_API kiln_status kiln_context_device_info(const kiln_context *ctx, int *graph, size_t *host_layers,
                                              size_t *device_bytes);

/* ------------------------------------------------------------------------ */
/* Sessions (ONNX Runtime-style)                                             */
/* ------------------------------------------------------------------------ */

/* Options for a session: providers in preference order, thread count and
 * key/value settings.  Owner: caller, release with
 * kiln_session_options_destroy(). */
typedef struct kiln_session_options kiln_session_options;

KILN_API kiln_status kiln_session_options_create(kiln_session_options **out);
KILN_API void kiln_session_options_destroy(kiln_session_options *options);
/* Append a provider ("cpu", "cuda") to the preference list.  The first
 * provider that can run a node runs it; "cpu" is always the last resort.
 * Unknown names fail with KILN_ERR_NOT_FOUND. */
KILN_API kiln_status kiln_session_options_append_provider(kiln_session_options *options,
                                                          const char *provider);
/* Number of CPU threads (0 = one per core, the default). */
KILN_API kiln_status kiln_session_options_set_threads(kiln_session_options *options,
                                                      int threads);
/* Generic setting, for options without a dedicated setter: "cache_dir"
 * (engine cache folder: the session loads a cached engine or builds and
 * stores one), and every kiln_build_options_set() key.  Unknown keys
 * fail with KILN_ERR_NOT_FOUND naming the key.  Strings are copied. */
KILN_API kiln_status kiln_session_options_set(kiln_session_options *options, const char *key,
                                              const char *value);

/* A model prepared for running.  Owner: caller, release with
 * kiln_session_destroy().  The model must outlive the session.  One thread
 * at a time may call kiln_session_run() on a session. */
typedef struct kiln_session kiln_session;

/* Create a session.  `options` may be NULL (CPU, default threads); it is
 * copied, so it can be destroyed right after.  Fails with
 * KILN_ERR_INVALID_MODEL if kiln_model_check() finds errors. */
KILN_API kiln_status kiln_session_create(const kiln_model *model,
                                         const kiln_session_options *options,
                                         kiln_session **out);
KILN_API void kiln_session_destroy(kiln_session *session);
/* The engine the session built or loaded from its cache, for
 * kiln_engine_get() ("providers", "precision", "partition", ...).  Owner:
 * the session (*out is borrowed: valid until kiln_session_destroy(); do not
 * destroy it). */
KILN_API kiln_status kiln_session_get_engine(const kiln_session *session, const kiln_engine **out);

/* Run the model.  `inputs[i]` is bound to the graph input named
 * `input_names[i]`; every graph input without an initializer must be given.
 * Inputs are validated: element type, rank, fixed dims, and symbolic dims
 * consistent across inputs (an error names the input and the axis).
 * For each requested output name, if outputs[i] is NULL a new tensor is
 * created and the caller owns it (kiln_tensor_destroy); otherwise the
 * caller's tensor is written and must have the right type and shape.
 * Inputs are borrowed for the duration of the call. */
KILN_API kiln_status kiln_session_run(kiln_session *session, const char *const *input_names,
                                      const kiln_tensor *const *inputs, size_t input_count,
                                      const char *const *output_names, kiln_tensor **outputs,
                                      size_t output_count);

#ifdef __cplusplus
}
#endif

#endif /* KILN_H */
