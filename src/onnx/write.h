/*
 * write.h — kiln IR → ONNX ModelProto bytes, for the engine's graph section.
 *
 * The writer serializes a loaded (or optimized) kl_model: IR version, opset
 * imports (plus {"kiln", 1} when a node of the kiln domain needs it), the
 * main graph with its nodes, attributes of every type (subgraphs included),
 * inputs and outputs with element types and symbolic dims, a value_info for
 * every other typed value so inferred shapes survive the round trip, and the
 * initializers.  Local functions are not written: the loader inlined them.
 *
 * Tensor data goes to a separate weights blob: every initializer (except
 * string tensors, which stay inline) is written as external data with
 * location KL_ONNX_BLOB_LOCATION and offset/length into the blob, each
 * tensor starting at a multiple of KL_ONNX_BLOB_ALIGN from the blob start.
 * Tensor attributes of KL_ONNX_INLINE_MAX bytes or less stay inline
 * (raw_data); larger ones go to the blob too.  kl_onnx_parse_with_blob
 * (onnx.h) resolves that location zero-copy.  A node's fused_from is kept
 * in NodeProto.doc_string as KL_ONNX_FUSED_PREFIX "conv1+bn1".
 */
#ifndef KL_ONNX_WRITE_H
#define KL_ONNX_WRITE_H

#include "ir/ir.h"

#define KL_ONNX_BLOB_LOCATION "kiln:weights" /* reserved external-data location */
#define KL_ONNX_BLOB_ALIGN 64u
#define KL_ONNX_INLINE_MAX 1024u              /* attribute tensors up to this stay inline */
#define KL_ONNX_FUSED_PREFIX "kiln.fused_from="

/* What kl_onnx_write_model produced.  Both buffers are owned by the caller
 * (kl_free); blob is NULL when the model has no external tensor. */
typedef struct kl_onnx_written {
    void *model;        /* ModelProto bytes */
    size_t model_size;
    void *blob;         /* weights blob referenced by the model */
    size_t blob_size;   /* a multiple of KL_ONNX_BLOB_ALIGN */
    size_t n_external;  /* tensors placed in the blob */
} kl_onnx_written;

/* Serialize `m` as described above.  Tombstoned nodes (removed) are
 * skipped.  Fails with KILN_ERR_INVALID_ARGUMENT naming the tensor or node
 * when something cannot be written (an initializer without data), or
 * KILN_ERR_NO_MEMORY.  On failure *out is zeroed. */
kiln_status kl_onnx_write_model(const kl_model *m, kl_onnx_written *out);

/* Release both buffers of *w and zero it. */
void kl_onnx_written_free(kl_onnx_written *w);

#endif /* KL_ONNX_WRITE_H */
