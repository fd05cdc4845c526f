/*
 * onnxbuild.h — helpers that build ONNX protobuf messages (ModelProto,
 * GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto,
 * TypeProto, FunctionProto) by hand, with the field numbers of onnx.proto,
 * for tests of the reader and the checker.  Everything appends to a kt_pb
 * (see pbwriter.h); a message is built in its own kt_pb and then appended to
 * its parent with kt_pb_message_field(parent, KT_<PARENT>_<FIELD>, &child).
 *
 * Lists of names are comma-separated strings: "a,b" is two names, "a,,c"
 * has an empty (left-out) second name, "" is no names at all.
 * Shapes are strings too: "2,batch,?" is dim_value 2, dim_param "batch" and
 * an empty Dimension; "" is a rank-0 shape; NULL means no shape field.
 *
 * Tests link this file by including onnxbuild.c (it is not part of the
 * kiln_testcommon library).
 */
#ifndef KT_ONNXBUILD_H
#define KT_ONNXBUILD_H

#include <stddef.h>
#include <stdint.h>

#include "pbwriter.h"

/* ---- field numbers (onnx.proto) ---------------------------------------- */

enum {
    /* ModelProto */
    KT_MODEL_IR_VERSION = 1,
    KT_MODEL_PRODUCER_NAME = 2,
    KT_MODEL_PRODUCER_VERSION = 3,
    KT_MODEL_DOMAIN = 4,
    KT_MODEL_MODEL_VERSION = 5,
    KT_MODEL_DOC = 6,
    KT_MODEL_GRAPH = 7,
    KT_MODEL_OPSET_IMPORT = 8,
    KT_MODEL_METADATA = 14,
    KT_MODEL_FUNCTIONS = 25,
    /* OperatorSetIdProto */
    KT_OPSET_DOMAIN = 1,
    KT_OPSET_VERSION = 2,
    /* GraphProto */
    KT_GRAPH_NODE = 1,
    KT_GRAPH_NAME = 2,
    KT_GRAPH_INITIALIZER = 5,
    KT_GRAPH_DOC = 10,
    KT_GRAPH_INPUT = 11,
    KT_GRAPH_OUTPUT = 12,
    KT_GRAPH_VALUE_INFO = 13,
    KT_GRAPH_SPARSE_INITIALIZER = 15,
    /* NodeProto */
    KT_NODE_INPUT = 1,
    KT_NODE_OUTPUT = 2,
    KT_NODE_NAME = 3,
    KT_NODE_OP_TYPE = 4,
    KT_NODE_ATTRIBUTE = 5,
    KT_NODE_DOC = 6,
    KT_NODE_DOMAIN = 7,
    KT_NODE_OVERLOAD = 8,
    /* AttributeProto */
    KT_ATTR_NAME = 1,
    KT_ATTR_F = 2,
    KT_ATTR_I = 3,
    KT_ATTR_S = 4,
    KT_ATTR_T = 5,
    KT_ATTR_G = 6,
    KT_ATTR_FLOATS = 7,
    KT_ATTR_INTS = 8,
    KT_ATTR_STRINGS = 9,
    KT_ATTR_TENSORS = 10,
    KT_ATTR_GRAPHS = 11,
    KT_ATTR_DOC = 13,
    KT_ATTR_TP = 14,
    KT_ATTR_TYPE_PROTOS = 15,
    KT_ATTR_TYPE = 20,
    KT_ATTR_REF_ATTR_NAME = 21,
    KT_ATTR_SPARSE_TENSOR = 22,
    KT_ATTR_SPARSE_TENSORS = 23,
    /* ValueInfoProto */
    KT_VI_NAME = 1,
    KT_VI_TYPE = 2,
    /* TypeProto */
    KT_TYPE_TENSOR = 1,
    KT_TYPE_SEQUENCE = 4,
    KT_TYPE_MAP = 5,
    KT_TYPE_DENOTATION = 6,
    KT_TYPE_SPARSE_TENSOR = 8,
    KT_TYPE_OPTIONAL = 9,
    /* TypeProto.Tensor / SparseTensor */
    KT_TTYPE_ELEM = 1,
    KT_TTYPE_SHAPE = 2,
    /* TypeProto.Sequence / Optional */
    KT_SEQTYPE_ELEM = 1,
    /* TypeProto.Map */
    KT_MAPTYPE_KEY = 1,
    KT_MAPTYPE_VALUE = 2,
    /* TensorShapeProto and its Dimension */
    KT_SHAPE_DIM = 1,
    KT_DIM_VALUE = 1,
    KT_DIM_PARAM = 2,
    /* TensorProto */
    KT_TENSOR_DIMS = 1,
    KT_TENSOR_DATA_TYPE = 2,
    KT_TENSOR_SEGMENT = 3,
    KT_TENSOR_FLOAT_DATA = 4,
    KT_TENSOR_INT32_DATA = 5,
    KT_TENSOR_STRING_DATA = 6,
    KT_TENSOR_INT64_DATA = 7,
    KT_TENSOR_NAME = 8,
    KT_TENSOR_RAW_DATA = 9,
    KT_TENSOR_DOUBLE_DATA = 10,
    KT_TENSOR_UINT64_DATA = 11,
    KT_TENSOR_DOC = 12,
    KT_TENSOR_EXTERNAL_DATA = 13,
    KT_TENSOR_DATA_LOCATION = 14,
    /* StringStringEntryProto */
    KT_ENTRY_KEY = 1,
    KT_ENTRY_VALUE = 2,
    /* SparseTensorProto */
    KT_SPARSE_VALUES = 1,
    KT_SPARSE_INDICES = 2,
    KT_SPARSE_DIMS = 3,
    /* FunctionProto */
    KT_FUNC_NAME = 1,
    KT_FUNC_INPUT = 4,
    KT_FUNC_OUTPUT = 5,
    KT_FUNC_ATTRIBUTE = 6,
    KT_FUNC_NODE = 7,
    KT_FUNC_DOC = 8,
    KT_FUNC_OPSET_IMPORT = 9,
    KT_FUNC_DOMAIN = 10,
    KT_FUNC_ATTRIBUTE_PROTO = 11,
    KT_FUNC_VALUE_INFO = 12,
    KT_FUNC_OVERLOAD = 13
};

/* ---- generic ------------------------------------------------------------- */

/* Append `msg` as field `field` of `parent` and free `msg`. */
void kt_pb_take(kt_pb *parent, uint32_t field, kt_pb *msg);
/* Append each comma-separated name of `list` as a string field `field`. */
void kt_pb_names(kt_pb *b, uint32_t field, const char *list);
/* Packed repeated fields (wire type 2). */
void kt_pb_packed_i64(kt_pb *b, uint32_t field, const int64_t *v, size_t n);
void kt_pb_packed_i32(kt_pb *b, uint32_t field, const int32_t *v, size_t n);
void kt_pb_packed_u64(kt_pb *b, uint32_t field, const uint64_t *v, size_t n);
void kt_pb_packed_f32(kt_pb *b, uint32_t field, const float *v, size_t n);
void kt_pb_packed_f64(kt_pb *b, uint32_t field, const double *v, size_t n);

/* ---- types and value infos ----------------------------------------------- */

/* Append TypeProto fields to `tp`: a tensor (elem 0: no elem_type field). */
void kt_onnx_type_tensor(kt_pb *tp, int elem, const char *shape);
void kt_onnx_type_sparse(kt_pb *tp, int elem, const char *shape);
/* Sequence/optional of `elem` (a TypeProto), map from `key` to `value`. */
void kt_onnx_type_seq(kt_pb *tp, const kt_pb *elem);
void kt_onnx_type_opt(kt_pb *tp, const kt_pb *elem);
void kt_onnx_type_map(kt_pb *tp, int key, const kt_pb *value);
/* Append a ValueInfoProto as field `field` of `msg`; `type` NULL: no type. */
void kt_onnx_value_info(kt_pb *msg, uint32_t field, const char *name, const kt_pb *type);
/* Shorthand: a tensor ValueInfoProto (elem 0 and shape NULL: empty tensor type;
 * elem < 0: no type field at all). */
void kt_onnx_io(kt_pb *graph, uint32_t field, const char *name, int elem, const char *shape);

/* ---- tensors --------------------------------------------------------------- */

/* Append a TensorProto's name, data_type and dims (non-packed when
 * `packed` is 0) to `t`.  dtype 0: no data_type field. */
void kt_onnx_tensor_head(kt_pb *t, const char *name, int dtype, const int64_t *dims, int rank,
                         int packed);
/* A complete float tensor stored as raw_data (raw != 0) or float_data. */
void kt_onnx_tensor_f32(kt_pb *t, const char *name, const int64_t *dims, int rank,
                        const float *v, size_t n, int raw);
/* Append an external_data key/value entry. */
void kt_onnx_tensor_ext(kt_pb *t, const char *key, const char *value);

/* ---- nodes and attributes -------------------------------------------------- */

/* Append NodeProto fields (op_type, domain (NULL: none), name (NULL: none),
 * inputs, outputs) to `node`. */
void kt_onnx_node_head(kt_pb *node, const char *op, const char *domain, const char *name,
                       const char *inputs, const char *outputs);
/* Append a complete attribute-less node as field `field` (KT_GRAPH_NODE or
 * KT_FUNC_NODE) of `msg`. */
void kt_onnx_node(kt_pb *msg, uint32_t field, const char *op, const char *name,
                  const char *inputs, const char *outputs);

/* Append an AttributeProto as field KT_NODE_ATTRIBUTE of `node`.  `type`
 * is the AttributeType written to the type field (0: no type field). */
void kt_onnx_attr_f(kt_pb *node, const char *name, float v);
void kt_onnx_attr_i(kt_pb *node, const char *name, int64_t v);
void kt_onnx_attr_s(kt_pb *node, const char *name, const char *v);
void kt_onnx_attr_t(kt_pb *node, const char *name, const kt_pb *tensor);
void kt_onnx_attr_g(kt_pb *node, const char *name, const kt_pb *graph);
void kt_onnx_attr_floats(kt_pb *node, const char *name, const float *v, size_t n);
void kt_onnx_attr_ints(kt_pb *node, const char *name, const int64_t *v, size_t n);
void kt_onnx_attr_strings(kt_pb *node, const char *name, const char *list);
/* Reference to the calling function's attribute (function bodies). */
void kt_onnx_attr_ref(kt_pb *node, const char *name, const char *ref, int type);
/* Build an AttributeProto message with the given name and type; the caller
 * appends the value field(s) and then kt_pb_take(node, KT_NODE_ATTRIBUTE, a). */
void kt_onnx_attr_begin(kt_pb *attr, const char *name, int type);

/* ---- graphs, models, functions ------------------------------------------ */

/* Append an OperatorSetIdProto as field `field` (KT_MODEL_OPSET_IMPORT or
 * KT_FUNC_OPSET_IMPORT) of `msg`.  domain NULL: no domain field. */
void kt_onnx_opset(kt_pb *msg, uint32_t field, const char *domain, int64_t version);
/* Append ir_version, one ai.onnx opset import (opset <= 0: none) and the
 * graph to `model`. */
void kt_onnx_model(kt_pb *model, int64_t ir_version, int64_t opset, const kt_pb *graph);

#endif
