/*
 * onnx.h — reading ONNX files into kiln's IR, and checking them.
 * The only module that knows the protobuf wire format and ONNX's messages.
 */
#ifndef KL_ONNX_H
#define KL_ONNX_H

#include "ir/ir.h"

/* Limits that keep a malformed file from exhausting the stack or memory. */
#define KL_ONNX_MAX_GRAPH_DEPTH 32    /* nested subgraphs / messages of subgraphs */
#define KL_ONNX_MAX_FUNCTION_DEPTH 16 /* nested function calls when inlining */
#define KL_ONNX_MAX_INLINED_NODES (1u << 22)

/* Parse `size` bytes of a ModelProto into a new model.  `bytes` must stay
 * valid as long as the model (zero-copy).  `path` names the model in
 * messages; `base_dir` is where external data is looked up (NULL: external
 * data refused).  Structural problems (bad wire format, sizes past the end,
 * external data outside base_dir or past its file's end) fail with a
 * message; ONNX-rule problems (duplicate names, undefined inputs) are
 * recorded as model problems for the checker.  On success the model has
 * local functions inlined, schemas resolved and shapes inferred. */
kiln_status kl_onnx_parse(const uint8_t *bytes, size_t size, const char *path,
                          const char *base_dir, kl_model **out);

/* Same as kl_onnx_parse for a graph written by kl_onnx_write_model
 * (onnx/write.h): external data whose location is "kiln:weights" resolves
 * into blob[0..blob_size) zero-copy (offset + length checked against
 * blob_size), other external locations are refused.  Both `bytes` and
 * `blob` must stay valid as long as the model. */
kiln_status kl_onnx_parse_with_blob(const uint8_t *bytes, size_t size, const char *path,
                                    const uint8_t *blob, size_t blob_size, kl_model **out);

/* Map and parse the file at `path` (external data relative to its folder). */
kiln_status kl_onnx_load_file(const char *path, kl_model **out);

/* Parse a serialized TensorProto (as in the conformance suite's .pb files)
 * into a tensor allocated in arena `a`.  `bytes` must outlive the tensor. */
kiln_status kl_onnx_parse_tensor(kl_arena *a, const uint8_t *bytes, size_t size,
                                 kl_tensor **out);

/* ---- checker (check.c) ------------------------------------------------------ */

/* Check `m` against the ONNX rules and what kiln can run.  The result holds
 * the model's load-time problems followed by the checker's.  Owner: caller
 * (kl_check_free). */
typedef struct kl_check_result {
    kl_problem *items;
    size_t n, cap;
    size_t n_errors;
    kl_arena arena; /* messages */
} kl_check_result;

/* What the caller can run, for the "cannot run yet" list: can_run returns
 * true when some backend has a kernel for (domain "" = ai.onnx, op, opset).
 * The runtime passes its kernel registry; onnx/ never asks a backend. */
typedef struct kl_check_caps {
    bool (*can_run)(const char *domain, const char *op, int64_t opset, void *user);
    void *user;
} kl_check_caps;

/* kl_check_model_caps with no capabilities: every op with a schema counts as
 * runnable, so only ops without a schema are listed as unsupported. */
kiln_status kl_check_model(const kl_model *m, kl_check_result **out);
/* Check m; ops that have a schema but caps->can_run refuses are listed as
 * KILN_CHECK_UNSUPPORTED.  caps may be NULL. */
kiln_status kl_check_model_caps(const kl_model *m, const kl_check_caps *caps, kl_check_result **out);
void kl_check_free(kl_check_result *r);

#endif /* KL_ONNX_H */
