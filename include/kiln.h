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
/* Generic setting, for options without a dedicated setter.  Unknown keys
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
