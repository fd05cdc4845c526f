/*
 * ops.h — what each ONNX operator is: its schema (inputs, outputs,
 * attributes with their types, opset range) and its shape/type inference.
 * Kernels (how an op runs) live in the backends; this says what it means.
 *
 * One source file per op family exports a table of schemas terminated by an
 * entry with name == NULL; registry.c joins the tables.  An operator whose
 * behaviour changed across opsets has one row per version range.
 */
#ifndef KL_OPS_H
#define KL_OPS_H

#include "ir/ir.h"

/* Attribute declared by a schema. */
typedef struct kl_attr_spec {
    const char *name;
    kl_attr_type type;
    bool required;
} kl_attr_spec;

typedef struct kl_infer_ctx kl_infer_ctx;

typedef struct kl_op_schema {
    const char *domain; /* "" = ai.onnx, "ai.onnx.ml", ... */
    const char *name;
    int since;          /* first opset version this row describes */
    int until;          /* last opset version (inclusive); 0 = still current */
    int min_inputs, max_inputs;   /* max -1: variadic */
    int min_outputs, max_outputs; /* max -1: variadic */
    const kl_attr_spec *attrs;    /* terminated by {NULL}; NULL = accept any */
    /* Set every output's type from the inputs' types and the attributes.
     * May leave an output unknown when it cannot be known; returns an error
     * (KILN_ERR_SHAPE/TYPE/INVALID_MODEL, message naming the problem) only
     * when the inputs provably violate the op's rules. */
    kiln_status (*infer)(kl_infer_ctx *ctx);
} kl_op_schema;

/* Schema row for (domain, op, opset), or NULL.  If only rows for other
 * opsets exist, *other_versions (may be NULL) is set to true. */
const kl_op_schema *kl_op_find(const char *domain, const char *name, int64_t opset,
                               bool *other_versions);
/* Every schema row, for listing ("kiln info --ops"). */
size_t kl_op_count(void);
const kl_op_schema *kl_op_at(size_t i);

/* ---- shape inference context (infer.c) ------------------------------------- */

struct kl_infer_ctx {
    kl_model *model;
    kl_graph *graph;
    kl_node *node;
    kl_arena *arena; /* the model's arena: output shapes go here */
    /* Re-inference of a graph whose types are already known (after the
     * passes): every output type is merged with the one the value has, as
     * with a declared one, so nothing known is lost. */
    bool refine;
};

/* Number of inputs/outputs of the node (including left-out optional ones). */
size_t kl_infer_n_inputs(const kl_infer_ctx *c);
size_t kl_infer_n_outputs(const kl_infer_ctx *c);
/* True if input i is given (not omitted, i < n_inputs). */
bool kl_infer_has_input(const kl_infer_ctx *c, size_t i);
/* Type of input i, or NULL when the input is omitted.  A known-nothing type
 * has kind KL_TYPE_UNKNOWN. */
const kl_type *kl_infer_input_type(const kl_infer_ctx *c, size_t i);
/* Shape of tensor input i, or NULL if omitted, not a tensor, or rank unknown. */
const kl_shape *kl_infer_input_shape(const kl_infer_ctx *c, size_t i);
/* Element type of tensor input i, or KILN_DTYPE_UNDEFINED. */
kiln_dtype kl_infer_input_dtype(const kl_infer_ctx *c, size_t i);
/* Constant data of input i (initializer or Constant), or NULL. */
const kl_tensor *kl_infer_input_const(const kl_infer_ctx *c, size_t i);
/* Known contents of small integer input i (from constants or shape
 * arithmetic), or NULL. */
const kl_symval *kl_infer_input_sym(const kl_infer_ctx *c, size_t i);

/* Set output i to a tensor of `dtype` and `shape` (shape may be NULL for
 * unknown rank).  The shape is copied.  If the model declared a type for the
 * output, the two are merged: the more specific dimension wins; a conflict
 * (3 vs 4) is an error naming the node and output. */
kiln_status kl_infer_set_output(kl_infer_ctx *c, size_t i, kiln_dtype dtype,
                                const kl_shape *shape);
/* Set output i to an arbitrary type (sequences, optionals, maps). */
kiln_status kl_infer_set_output_type(kl_infer_ctx *c, size_t i, const kl_type *type);
/* Record known contents for output i (copied). */
kiln_status kl_infer_set_output_sym(kl_infer_ctx *c, size_t i, const kl_symval *sym);

/* Allocate a shape of `rank` dims (all unknown) in the context's arena. */
kiln_status kl_infer_shape_new(kl_infer_ctx *c, int rank, kl_shape *out);
/* Numpy-style multidirectional broadcast of a and b into *out (arena).
 * Unknown rank in either gives unknown rank.  Incompatible known dims is an
 * error naming the node. */
kiln_status kl_infer_broadcast(kl_infer_ctx *c, const kl_shape *a, const kl_shape *b,
                               kl_shape *out);
/* Error for this node: "node 'conv1' (Conv): <message>". */
kiln_status kl_infer_fail(kl_infer_ctx *c, kiln_status status, const char *fmt, ...)
    KL_PRINTF(3, 4);
/* Normalize a possibly negative axis against rank; false if out of range. */
bool kl_infer_axis(int64_t axis, int rank, int *out);

/* Run inference over a whole graph in node order (subgraphs included).
 * Problems that do not stop inference are recorded on the model as
 * KILN_CHECK_ERROR problems naming the node; returns KILN_OK unless out of
 * memory. */
kiln_status kl_infer_graph(kl_model *m, kl_graph *g);
/* Infer g again after rewrites (constant folding can make shapes known):
 * each output's new type is merged with the type it already has, as with
 * a declared type, so known and symbolic dims are kept (graph inputs keep
 * theirs: no profile shape is baked in) and unknown ones are filled in
 * where the inference now finds them.  A node whose inference fails or
 * conflicts with its outputs' types keeps them as they were; the problem is
 * recorded on m as with kl_infer_graph.  KILN_OK unless out of memory. */
kiln_status kl_infer_graph_refine(kl_model *m, kl_graph *g);

/* Shared by nn.c and quant.c: Conv-style output shape from input x and
 * weight w (QLinearConv, ConvInteger), and MatMul-style from a and b, with
 * the output element type given. */
kiln_status kl_infer_conv_like(kl_infer_ctx *c, size_t x, size_t w, kiln_dtype dtype);
kiln_status kl_infer_matmul_like(kl_infer_ctx *c, size_t a, size_t b, kiln_dtype dtype);

/* ---- family tables ---------------------------------------------------------- */

extern const kl_op_schema kl_ops_elementwise[]; /* unary/binary math, logic, activations, Cast, Where, Clip... */
extern const kl_op_schema kl_ops_reduce[];      /* Reduce*, ArgMax/ArgMin, TopK, CumSum... */
extern const kl_op_schema kl_ops_norm[];        /* BatchNorm, LayerNorm, Softmax, LRN, ... */
extern const kl_op_schema kl_ops_nn[];          /* Conv*, pools, Gemm, MatMul*, Einsum, RNNs, attention */
extern const kl_op_schema kl_ops_tensor[];      /* shape/layout/indexing: Reshape ... Resize, Pad */
extern const kl_op_schema kl_ops_quant[];       /* Quantize/Dequantize, QLinear*, *Integer */
extern const kl_op_schema kl_ops_control[];     /* If, Loop, Scan, sequences, optionals */
extern const kl_op_schema kl_ops_misc[];        /* random, NMS, RoiAlign, signal, strings, image, training, ml */

#endif /* KL_OPS_H */
