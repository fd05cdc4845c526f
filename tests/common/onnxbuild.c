/* onnxbuild.c — hand-built ONNX protobuf messages for tests (see onnxbuild.h). */
#include "onnxbuild.h"

#include <stdlib.h>
#include <string.h>

void kt_pb_take(kt_pb *parent, uint32_t field, kt_pb *msg) {
    kt_pb_message_field(parent, field, msg);
    kt_pb_free(msg);
}

void kt_pb_names(kt_pb *b, uint32_t field, const char *list) {
    if (!list || !*list) return;
    const char *p = list;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        kt_pb_bytes_field(b, field, p, n);
        if (!c) break;
        p = c + 1;
    }
}

void kt_pb_packed_i64(kt_pb *b, uint32_t field, const int64_t *v, size_t n) {
    kt_pb body = {0};
    for (size_t i = 0; i < n; i++) kt_pb_varint(&body, (uint64_t)v[i]);
    kt_pb_bytes_field(b, field, body.data, body.len);
    kt_pb_free(&body);
}

void kt_pb_packed_i32(kt_pb *b, uint32_t field, const int32_t *v, size_t n) {
    kt_pb body = {0};
    /* protobuf int32: negative values are sign-extended to 64 bits */
    for (size_t i = 0; i < n; i++) kt_pb_varint(&body, (uint64_t)(int64_t)v[i]);
    kt_pb_bytes_field(b, field, body.data, body.len);
    kt_pb_free(&body);
}

void kt_pb_packed_u64(kt_pb *b, uint32_t field, const uint64_t *v, size_t n) {
    kt_pb body = {0};
    for (size_t i = 0; i < n; i++) kt_pb_varint(&body, v[i]);
    kt_pb_bytes_field(b, field, body.data, body.len);
    kt_pb_free(&body);
}

void kt_pb_packed_f32(kt_pb *b, uint32_t field, const float *v, size_t n) {
    kt_pb body = {0};
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        uint8_t le[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
        kt_pb_raw(&body, le, 4);
    }
    kt_pb_bytes_field(b, field, body.data, body.len);
    kt_pb_free(&body);
}

void kt_pb_packed_f64(kt_pb *b, uint32_t field, const double *v, size_t n) {
    kt_pb body = {0};
    for (size_t i = 0; i < n; i++) {
        uint64_t u;
        memcpy(&u, &v[i], 8);
        uint8_t le[8];
        for (int k = 0; k < 8; k++) le[k] = (uint8_t)(u >> (8 * k));
        kt_pb_raw(&body, le, 8);
    }
    kt_pb_bytes_field(b, field, body.data, body.len);
    kt_pb_free(&body);
}

/* Append a TensorShapeProto built from a shape string. */
static void shape_field(kt_pb *b, uint32_t field, const char *shape) {
    kt_pb s = {0};
    const char *p = shape;
    while (*p) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        kt_pb d = {0};
        if (n == 1 && p[0] == '?') {
            /* empty Dimension: unknown */
        } else if (n > 0 && ((p[0] >= '0' && p[0] <= '9') || p[0] == '-')) {
            kt_pb_varint_field(&d, KT_DIM_VALUE, (uint64_t)strtoll(p, NULL, 10));
        } else {
            kt_pb_bytes_field(&d, KT_DIM_PARAM, p, n);
        }
        kt_pb_take(&s, KT_SHAPE_DIM, &d);
        if (!c) break;
        p = c + 1;
    }
    kt_pb_message_field(b, field, &s);
    kt_pb_free(&s);
}

static void tensor_like_type(kt_pb *tp, uint32_t which, int elem, const char *shape) {
    kt_pb t = {0};
    if (elem) kt_pb_varint_field(&t, KT_TTYPE_ELEM, (uint64_t)elem);
    if (shape) shape_field(&t, KT_TTYPE_SHAPE, shape);
    kt_pb_take(tp, which, &t);
}

void kt_onnx_type_tensor(kt_pb *tp, int elem, const char *shape) {
    tensor_like_type(tp, KT_TYPE_TENSOR, elem, shape);
}

void kt_onnx_type_sparse(kt_pb *tp, int elem, const char *shape) {
    tensor_like_type(tp, KT_TYPE_SPARSE_TENSOR, elem, shape);
}

void kt_onnx_type_seq(kt_pb *tp, const kt_pb *elem) {
    kt_pb s = {0};
    kt_pb_message_field(&s, KT_SEQTYPE_ELEM, elem);
    kt_pb_take(tp, KT_TYPE_SEQUENCE, &s);
}

void kt_onnx_type_opt(kt_pb *tp, const kt_pb *elem) {
    kt_pb s = {0};
    kt_pb_message_field(&s, KT_SEQTYPE_ELEM, elem);
    kt_pb_take(tp, KT_TYPE_OPTIONAL, &s);
}

void kt_onnx_type_map(kt_pb *tp, int key, const kt_pb *value) {
    kt_pb s = {0};
    kt_pb_varint_field(&s, KT_MAPTYPE_KEY, (uint64_t)key);
    kt_pb_message_field(&s, KT_MAPTYPE_VALUE, value);
    kt_pb_take(tp, KT_TYPE_MAP, &s);
}

void kt_onnx_value_info(kt_pb *msg, uint32_t field, const char *name, const kt_pb *type) {
    kt_pb vi = {0};
    kt_pb_string_field(&vi, KT_VI_NAME, name);
    if (type) kt_pb_message_field(&vi, KT_VI_TYPE, type);
    kt_pb_take(msg, field, &vi);
}

void kt_onnx_io(kt_pb *graph, uint32_t field, const char *name, int elem, const char *shape) {
    if (elem < 0) {
        kt_onnx_value_info(graph, field, name, NULL);
        return;
    }
    kt_pb tp = {0};
    kt_onnx_type_tensor(&tp, elem, shape);
    kt_onnx_value_info(graph, field, name, &tp);
    kt_pb_free(&tp);
}

void kt_onnx_tensor_head(kt_pb *t, const char *name, int dtype, const int64_t *dims, int rank,
                         int packed) {
    if (name) kt_pb_string_field(t, KT_TENSOR_NAME, name);
    if (dtype) kt_pb_varint_field(t, KT_TENSOR_DATA_TYPE, (uint64_t)dtype);
    if (rank <= 0) return;
    if (packed) {
        kt_pb_packed_i64(t, KT_TENSOR_DIMS, dims, (size_t)rank);
    } else {
        for (int i = 0; i < rank; i++) kt_pb_varint_field(t, KT_TENSOR_DIMS, (uint64_t)dims[i]);
    }
}

void kt_onnx_tensor_f32(kt_pb *t, const char *name, const int64_t *dims, int rank,
                        const float *v, size_t n, int raw) {
    kt_onnx_tensor_head(t, name, 1, dims, rank, 1);
    if (raw) {
        kt_pb_bytes_field(t, KT_TENSOR_RAW_DATA, v, n * sizeof(float)); /* little-endian host */
    } else {
        kt_pb_packed_f32(t, KT_TENSOR_FLOAT_DATA, v, n);
    }
}

void kt_onnx_tensor_ext(kt_pb *t, const char *key, const char *value) {
    kt_pb e = {0};
    kt_pb_string_field(&e, KT_ENTRY_KEY, key);
    kt_pb_string_field(&e, KT_ENTRY_VALUE, value);
    kt_pb_take(t, KT_TENSOR_EXTERNAL_DATA, &e);
}

void kt_onnx_node_head(kt_pb *node, const char *op, const char *domain, const char *name,
                       const char *inputs, const char *outputs) {
    kt_pb_names(node, KT_NODE_INPUT, inputs);
    kt_pb_names(node, KT_NODE_OUTPUT, outputs);
    if (name) kt_pb_string_field(node, KT_NODE_NAME, name);
    if (op) kt_pb_string_field(node, KT_NODE_OP_TYPE, op);
    if (domain) kt_pb_string_field(node, KT_NODE_DOMAIN, domain);
}

void kt_onnx_node(kt_pb *msg, uint32_t field, const char *op, const char *name,
                  const char *inputs, const char *outputs) {
    kt_pb n = {0};
    kt_onnx_node_head(&n, op, NULL, name, inputs, outputs);
    kt_pb_take(msg, field, &n);
}

void kt_onnx_attr_begin(kt_pb *attr, const char *name, int type) {
    kt_pb_string_field(attr, KT_ATTR_NAME, name);
    if (type) kt_pb_varint_field(attr, KT_ATTR_TYPE, (uint64_t)type);
}

void kt_onnx_attr_f(kt_pb *node, const char *name, float v) {
    kt_pb a = {0};
    kt_onnx_attr_begin(&a, name, 1);
    kt_pb_float_field(&a, KT_ATTR_F, v);
    kt_pb_take(node, KT_NODE_ATTRIBUTE, &a);
}

void kt_onnx_attr_i(kt_pb *node, const char *name, int64_t v) {
    kt_pb a = {0};
    kt_onnx_attr_begin(&a, name, 2);
    kt_pb_varint_field(&a, KT_ATTR_I, (uint64_t)v);
    kt_pb_take(node, KT_NODE_ATTRIBUTE, &a);
}

void kt_onnx_attr_s(kt_pb *node, const char *name, const char *v) {
    kt_pb a = {0};
    kt_onnx_attr_begin(&a, name, 3);
    kt_pb_string_field(&a, KT_ATTR_S, v);
    kt_pb_take(node, KT_NODE_ATTRIBUTE, &a);
}

void kt_onnx_attr_t(kt_pb *node, const char *name, const kt_pb *tensor) {
    kt_pb a = {0};
    kt_onnx_attr_begin(&a, name, 4);
    kt_pb_message_field(&a, KT_ATTR_T, tensor);
    kt_pb_take(node, KT_NODE_ATTRIBUTE, &a);
}

void kt_onnx_attr_g(kt_pb *node, const char *name, const kt_pb *graph) {
    kt_pb a = {0};
    kt_onnx_attr_begin(&a, name, 5);
    kt_pb_message_field(&a, KT_ATTR_G, graph);
    kt_pb_take(node, KT_NODE_ATTRIBUTE, &a);
}

void kt_onnx_attr_floats(kt_pb *node, const char *name, const float *v, size_t n) {
    kt_pb a = {0};
    kt_onnx_attr_begin(&a, name, 6);
    kt_pb_packed_f32(&a, KT_ATTR_FLOATS, v, n);
    kt_pb_take(node, KT_NODE_ATTRIBUTE, &a);
}

void kt_onnx_attr_ints(kt_pb *node, const char *name, const int64_t *v, size_t n) {
    kt_pb a = {0};
    kt_onnx_attr_begin(&a, name, 7);
    kt_pb_packed_i64(&a, KT_ATTR_INTS, v, n);
    kt_pb_take(node, KT_NODE_ATTRIBUTE, &a);
}

void kt_onnx_attr_strings(kt_pb *node, const char *name, const char *list) {
    kt_pb a = {0};
    kt_onnx_attr_begin(&a, name, 8);
    kt_pb_names(&a, KT_ATTR_STRINGS, list);
    kt_pb_take(node, KT_NODE_ATTRIBUTE, &a);
}

void kt_onnx_attr_ref(kt_pb *node, const char *name, const char *ref, int type) {
    kt_pb a = {0};
    kt_onnx_attr_begin(&a, name, type);
    kt_pb_string_field(&a, KT_ATTR_REF_ATTR_NAME, ref);
    kt_pb_take(node, KT_NODE_ATTRIBUTE, &a);
}

void kt_onnx_opset(kt_pb *msg, uint32_t field, const char *domain, int64_t version) {
    kt_pb o = {0};
    if (domain) kt_pb_string_field(&o, KT_OPSET_DOMAIN, domain);
    kt_pb_varint_field(&o, KT_OPSET_VERSION, (uint64_t)version);
    kt_pb_take(msg, field, &o);
}

void kt_onnx_model(kt_pb *model, int64_t ir_version, int64_t opset, const kt_pb *graph) {
    kt_pb_varint_field(model, KT_MODEL_IR_VERSION, (uint64_t)ir_version);
    if (opset > 0) kt_onnx_opset(model, KT_MODEL_OPSET_IMPORT, "", opset);
    if (graph) kt_pb_message_field(model, KT_MODEL_GRAPH, graph);
}
