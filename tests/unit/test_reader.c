/*
 * test_reader.c — unit tests of the ONNX reader (kl_onnx_parse,
 * kl_onnx_parse_tensor) on hand-built protobuf bytes, well-formed and
 * malformed.  Each test checks the exact values parsed, or the status and
 * that the message names the field, tensor or node involved.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "onnx/onnx.h"
#include "onnxbuild.c" /* not part of kiln_testcommon */

/* ---- helpers ---------------------------------------------------------------- */

/* Parse `b` (which must outlive the model) as "test.onnx" without base dir. */
static kiln_status parse(const kt_pb *b, kl_model **m) {
    kl_error_clear();
    return kl_onnx_parse(b->data, b->len, "test.onnx", NULL, m);
}

static kl_model *parse_ok(const kt_pb *b) {
    kl_model *m = NULL;
    kiln_status s = parse(b, &m);
    KT_CHECK_EQ_INT(s, KILN_OK);
    if (s != KILN_OK) fprintf(stderr, "    parse failed: %s\n", kl_error_message());
    return m;
}

/* True if `s` contains any of the (NULL-terminated) needles. */
static int contains_any(const char *s, const char *const *needles) {
    for (; *needles; needles++)
        if (s && strstr(s, *needles)) return 1;
    return 0;
}
#define KT_CHECK_CONTAINS_ANY(s, ...)                                                    \
    do {                                                                                 \
        const char *const kt_n_[] = {__VA_ARGS__, NULL};                                 \
        kt_checks++;                                                                     \
        if (!contains_any((s), kt_n_)) {                                                 \
            kt_failures++;                                                               \
            fprintf(stderr, "%s:%d: %s: \"%s\" contains none of: %s\n", __FILE__, __LINE__, \
                    kt_current, (s) ? (s) : "(null)", #__VA_ARGS__);                      \
        }                                                                                \
    } while (0)

/* First model problem containing both needles (b may be NULL), or NULL. */
static const char *find_problem(const kl_model *m, const char *a, const char *b) {
    for (size_t i = 0; m && i < m->n_problems; i++) {
        const char *msg = m->problems[i].message;
        if (strstr(msg, a) && (!b || strstr(msg, b))) return msg;
    }
    return NULL;
}

static void dump_problems(const kl_model *m) {
    for (size_t i = 0; m && i < m->n_problems; i++)
        fprintf(stderr, "    problem: %s\n", m->problems[i].message);
}

/* A graph named "g" with float input X[2,3], output Y[2,3] and Relu X->Y. */
static void relu_graph(kt_pb *g) {
    kt_pb_string_field(g, KT_GRAPH_NAME, "g");
    kt_onnx_io(g, KT_GRAPH_INPUT, "X", 1, "2,3");
    kt_onnx_io(g, KT_GRAPH_OUTPUT, "Y", 1, "2,3");
    kt_onnx_node(g, KT_GRAPH_NODE, "Relu", "relu0", "X", "Y");
}

/* A model (IR 8, opset 13) whose graph is relu_graph plus `extra` bytes
 * (already-encoded GraphProto fields, may be NULL). */
static void relu_model(kt_pb *mb, const kt_pb *extra) {
    kt_pb g = {0};
    relu_graph(&g);
    if (extra) kt_pb_raw(&g, extra->data, extra->len);
    kt_onnx_model(mb, 8, 13, &g);
    kt_pb_free(&g);
}

/* Parse a standalone TensorProto into arena `a`. */
static kiln_status ptensor(kl_arena *a, const kt_pb *t, kl_tensor **out) {
    kl_error_clear();
    return kl_onnx_parse_tensor(a, t->data, t->len, out);
}

static float f32_at(const kl_tensor *t, size_t i) {
    float v;
    memcpy(&v, (const uint8_t *)t->data + i * 4, 4);
    return v;
}

/* ---- well-formed models ------------------------------------------------------------ */

static void test_minimal_model(void) {
    kt_pb g = {0}, mb = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "X", 1, "N,3");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "Y", 1, "N,3");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "relu0", "X", "Y");
    kt_pb_string_field(&mb, KT_MODEL_PRODUCER_NAME, "kt");
    kt_pb_string_field(&mb, KT_MODEL_PRODUCER_VERSION, "1.2");
    kt_pb_varint_field(&mb, KT_MODEL_MODEL_VERSION, 42);
    kt_onnx_model(&mb, 8, 13, &g);
    kl_model *m = parse_ok(&mb);
    if (m) {
        KT_CHECK_EQ_INT(m->ir_version, 8);
        KT_CHECK_EQ_INT(m->n_opsets, 1);
        KT_CHECK_STR(m->opsets[0].domain, "");
        KT_CHECK_EQ_INT(m->opsets[0].version, 13);
        KT_CHECK_STR(m->producer_name, "kt");
        KT_CHECK_STR(m->producer_version, "1.2");
        KT_CHECK_EQ_INT(m->model_version, 42);
        KT_CHECK_EQ_INT(m->n_problems, 0);
        dump_problems(m);
        const kl_graph *gr = m->graph;
        KT_CHECK_STR(gr->name, "g");
        KT_CHECK(gr->parent == NULL && gr->depth == 0 && gr->model == m);
        KT_CHECK_EQ_INT(gr->n_inputs, 1);
        KT_CHECK_EQ_INT(gr->n_outputs, 1);
        KT_CHECK_EQ_INT(gr->n_nodes, 1);
        KT_CHECK_EQ_INT(gr->n_initializers, 0);
        const kl_value *x = gr->inputs[0], *y = gr->outputs[0];
        KT_CHECK_STR(x->name, "X");
        KT_CHECK(x->flags & KL_VALUE_GRAPH_INPUT);
        KT_CHECK(x->flags & KL_VALUE_DECLARED);
        KT_CHECK(!(x->flags & KL_VALUE_INITIALIZER));
        KT_CHECK_EQ_INT(x->type.kind, KL_TYPE_TENSOR);
        KT_CHECK_EQ_INT(x->type.elem, KILN_DTYPE_FLOAT);
        KT_CHECK_EQ_INT(x->type.shape.rank, 2);
        KT_CHECK_EQ_INT(x->type.shape.dims[0].value, -1);
        KT_CHECK_STR(x->type.shape.dims[0].param, "N");
        KT_CHECK_EQ_INT(x->type.shape.dims[1].value, 3);
        KT_CHECK(x->type.shape.dims[1].param == NULL);
        KT_CHECK(x->producer == NULL);
        KT_CHECK_EQ_INT(x->use_count, 1);
        const kl_node *n = gr->nodes[0];
        KT_CHECK_STR(n->op_type, "Relu");
        KT_CHECK_STR(n->name, "relu0");
        KT_CHECK_STR(n->domain, "");
        KT_CHECK_EQ_INT(n->opset, 13);
        KT_CHECK_EQ_INT(n->index, 0);
        KT_CHECK(n->graph == gr);
        KT_CHECK_EQ_INT(n->n_inputs, 1);
        KT_CHECK_EQ_INT(n->n_outputs, 1);
        KT_CHECK_EQ_INT(n->n_attrs, 0);
        KT_CHECK(n->inputs[0] == x);
        KT_CHECK(n->outputs[0] == y);
        KT_CHECK_STR(y->name, "Y");
        KT_CHECK(y->producer == n);
        KT_CHECK_EQ_INT(y->producer_output, 0);
        KT_CHECK(y->flags & KL_VALUE_GRAPH_OUTPUT);
        KT_CHECK(kl_graph_lookup(gr, "X") == x);
        KT_CHECK(kl_graph_lookup(gr, "nope") == NULL);
    }
    kl_model_free(m);
    kt_pb_free(&g);
    kt_pb_free(&mb);
}

/* Unknown fields of every wire type are skipped (forward compatibility). */
static void test_unknown_fields_skipped(void) {
    kt_pb g = {0}, mb = {0}, node = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "X", 1, "2");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "Y", 1, "2");
    kt_onnx_node_head(&node, "Relu", NULL, "r", "X", "Y");
    kt_pb_varint_field(&node, 99, 7);
    kt_pb_string_field(&node, 98, "future");
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    kt_pb_varint_field(&g, 97, 1);
    kt_pb_fixed32_field(&g, 96, 0xdeadbeef);
    kt_pb_tag(&g, 95, 1); /* fixed64 */
    kt_pb_raw(&g, "\1\2\3\4\5\6\7\x08", 8);
    kt_onnx_model(&mb, 8, 13, &g);
    kt_pb_string_field(&mb, 1000, "unknown model field");
    kt_pb_fixed32_field(&mb, 99, 1);
    kl_model *m = parse_ok(&mb);
    if (m) {
        KT_CHECK_EQ_INT(m->graph->n_nodes, 1);
        KT_CHECK_STR(m->graph->nodes[0]->name, "r");
        KT_CHECK_EQ_INT(m->n_problems, 0);
    }
    kl_model_free(m);
    kt_pb_free(&g);
    kt_pb_free(&mb);
}

/* "ai.onnx" is the default domain, written or not. */
static void test_ai_onnx_domain_normalized(void) {
    kt_pb g = {0}, mb = {0}, node = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "X", 1, "2");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "Y", 1, "2");
    kt_onnx_node_head(&node, "Relu", "ai.onnx", "r", "X", "Y");
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    kt_pb_varint_field(&mb, KT_MODEL_IR_VERSION, 8);
    kt_onnx_opset(&mb, KT_MODEL_OPSET_IMPORT, "ai.onnx", 14);
    kt_pb_message_field(&mb, KT_MODEL_GRAPH, &g);
    kl_model *m = parse_ok(&mb);
    if (m) {
        KT_CHECK_EQ_INT(m->n_opsets, 1);
        KT_CHECK_STR(m->opsets[0].domain, "");
        KT_CHECK_EQ_INT(kl_model_opset(m, ""), 14);
        KT_CHECK_STR(m->graph->nodes[0]->domain, "");
        KT_CHECK_EQ_INT(m->graph->nodes[0]->opset, 14);
    }
    kl_model_free(m);
    kt_pb_free(&g);
    kt_pb_free(&mb);
}

/* Negative int64 values are 10-byte varints; dims may be packed or not. */
static void test_ten_byte_varint_and_unpacked_dims(void) {
    kt_pb g = {0}, mb = {0}, node = {0}, t = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "X", 1, "2,3");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "Y", 1, "2,3");
    kt_onnx_node_head(&node, "Flatten", NULL, "f", "X", "Y");
    kt_onnx_attr_i(&node, "axis", -1); /* encodes as 10 bytes */
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    /* initializer W [2,3] with unpacked dims */
    const float w[6] = {1, 2, 3, 4, 5, 6};
    const int64_t dims[2] = {2, 3};
    kt_onnx_tensor_head(&t, "W", 1, dims, 2, 0);
    kt_pb_packed_f32(&t, KT_TENSOR_FLOAT_DATA, w, 6);
    kt_pb_take(&g, KT_GRAPH_INITIALIZER, &t);
    kt_onnx_model(&mb, 8, 13, &g);
    kt_pb_varint_field(&mb, KT_MODEL_MODEL_VERSION, (uint64_t)-5);
    kl_model *m = parse_ok(&mb);
    if (m) {
        KT_CHECK_EQ_INT(m->model_version, -5);
        const kl_node *n = m->graph->nodes[0];
        KT_CHECK_EQ_INT(kl_node_attr_int(n, "axis", 99), -1);
        const kl_attr *a = kl_node_attr(n, "axis");
        KT_CHECK(a && a->type == KL_ATTR_INT);
        const kl_value *wv = kl_graph_lookup(m->graph, "W");
        KT_CHECK(wv && wv->init);
        if (wv && wv->init) {
            KT_CHECK_EQ_INT(wv->init->rank, 2);
            KT_CHECK_EQ_INT(wv->init->dims[0], 2);
            KT_CHECK_EQ_INT(wv->init->dims[1], 3);
            KT_CHECK_EQ_INT(wv->init->count, 6);
            KT_CHECK(f32_at(wv->init, 5) == 6.0f);
        }
    }
    kl_model_free(m);
    kt_pb_free(&g);
    kt_pb_free(&mb);
}

/* An initializer that is not a graph input (IR >= 4) and an empty input name. */
static void test_initializer_and_optional_input(void) {
    kt_pb g = {0}, mb = {0}, t = {0}, node = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "X", 1, "4");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "Y", 1, "4");
    const float lo[1] = {-1.5f};
    kt_onnx_tensor_f32(&t, "lo", NULL, 0, lo, 1, 1);
    kt_pb_take(&g, KT_GRAPH_INITIALIZER, &t);
    kt_onnx_node_head(&node, "Clip", NULL, "clip", "X,,lo", "Y"); /* min left out */
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    kt_onnx_model(&mb, 8, 13, &g);
    kl_model *m = parse_ok(&mb);
    if (m) {
        const kl_graph *gr = m->graph;
        KT_CHECK_EQ_INT(gr->n_initializers, 1);
        KT_CHECK_EQ_INT(gr->n_inputs, 1);
        const kl_value *lv = gr->initializers[0];
        KT_CHECK_STR(lv->name, "lo");
        KT_CHECK(lv->flags & KL_VALUE_INITIALIZER);
        KT_CHECK(!(lv->flags & KL_VALUE_GRAPH_INPUT));
        KT_CHECK(lv->init && lv->init->rank == 0 && lv->init->count == 1);
        if (lv->init) KT_CHECK(f32_at(lv->init, 0) == -1.5f);
        const kl_node *n = gr->nodes[0];
        KT_CHECK_EQ_INT(n->n_inputs, 3);
        KT_CHECK(n->inputs[0] == gr->inputs[0]);
        KT_CHECK(n->inputs[1] == NULL);
        KT_CHECK(n->inputs[2] == lv);
    }
    kl_model_free(m);
    kt_pb_free(&g);
    kt_pb_free(&mb);
}

/* Symbolic, unknown and fixed dims; a rank-0 shape; a type without shape. */
static void test_symbolic_dims(void) {
    kt_pb g = {0}, mb = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "A", 1, "batch,?,7");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "S", 7, "");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "U", 1, NULL);
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "B", 1, "batch,?,7");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Identity", "id", "A", "B");
    kt_onnx_model(&mb, 8, 13, &g);
    kl_model *m = parse_ok(&mb);
    if (m) {
        const kl_value *a = kl_graph_lookup(m->graph, "A");
        const kl_value *s = kl_graph_lookup(m->graph, "S");
        const kl_value *u = kl_graph_lookup(m->graph, "U");
        KT_CHECK_EQ_INT(a->type.shape.rank, 3);
        KT_CHECK_EQ_INT(a->type.shape.dims[0].value, -1);
        KT_CHECK_STR(a->type.shape.dims[0].param, "batch");
        KT_CHECK_EQ_INT(a->type.shape.dims[1].value, -1);
        KT_CHECK(a->type.shape.dims[1].param == NULL);
        KT_CHECK_EQ_INT(a->type.shape.dims[2].value, 7);
        KT_CHECK_EQ_INT(s->type.kind, KL_TYPE_TENSOR);
        KT_CHECK_EQ_INT(s->type.elem, KILN_DTYPE_INT64);
        KT_CHECK_EQ_INT(s->type.shape.rank, 0);
        KT_CHECK_EQ_INT(u->type.kind, KL_TYPE_TENSOR);
        KT_CHECK_EQ_INT(u->type.shape.rank, -1);
        char buf[64];
        KT_CHECK_STR(kl_shape_format(&a->type.shape, buf, sizeof buf), "[batch,?,7]");
    }
    kl_model_free(m);
    kt_pb_free(&g);
    kt_pb_free(&mb);
}

/* Sequence, map, optional and sparse tensor TypeProtos. */
static void test_type_protos(void) {
    kt_pb g = {0}, mb = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_pb f2 = {0}, seq = {0}, ft = {0}, map = {0}, i64 = {0}, seqi = {0}, opt = {0}, sp = {0};
    kt_onnx_type_tensor(&f2, 1, "2");
    kt_onnx_type_seq(&seq, &f2);
    kt_onnx_value_info(&g, KT_GRAPH_INPUT, "Sq", &seq);
    kt_onnx_type_tensor(&ft, 1, NULL);
    kt_onnx_type_map(&map, 7, &ft);
    kt_onnx_value_info(&g, KT_GRAPH_INPUT, "Mp", &map);
    kt_onnx_type_tensor(&i64, 7, "");
    kt_onnx_type_seq(&seqi, &i64);
    kt_onnx_type_opt(&opt, &seqi);
    kt_onnx_value_info(&g, KT_GRAPH_INPUT, "Op", &opt);
    kt_onnx_type_sparse(&sp, 1, "3,4");
    kt_onnx_value_info(&g, KT_GRAPH_INPUT, "Sp", &sp);
    kt_onnx_value_info(&g, KT_GRAPH_OUTPUT, "Out", &seq);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Identity", "id", "Sq", "Out");
    kt_onnx_model(&mb, 8, 16, &g);
    kl_model *m = parse_ok(&mb);
    if (m) {
        const kl_type *t = &kl_graph_lookup(m->graph, "Sq")->type;
        KT_CHECK_EQ_INT(t->kind, KL_TYPE_SEQUENCE);
        KT_CHECK(t->inner && t->inner->kind == KL_TYPE_TENSOR);
        if (t->inner) {
            KT_CHECK_EQ_INT(t->inner->elem, KILN_DTYPE_FLOAT);
            KT_CHECK_EQ_INT(t->inner->shape.rank, 1);
            KT_CHECK_EQ_INT(t->inner->shape.dims[0].value, 2);
        }
        t = &kl_graph_lookup(m->graph, "Mp")->type;
        KT_CHECK_EQ_INT(t->kind, KL_TYPE_MAP);
        KT_CHECK_EQ_INT(t->elem, KILN_DTYPE_INT64);
        KT_CHECK(t->inner && t->inner->kind == KL_TYPE_TENSOR && t->inner->elem == KILN_DTYPE_FLOAT);
        t = &kl_graph_lookup(m->graph, "Op")->type;
        KT_CHECK_EQ_INT(t->kind, KL_TYPE_OPTIONAL);
        KT_CHECK(t->inner && t->inner->kind == KL_TYPE_SEQUENCE);
        if (t->inner) {
            KT_CHECK(t->inner->inner && t->inner->inner->elem == KILN_DTYPE_INT64 &&
                     t->inner->inner->shape.rank == 0);
        }
        t = &kl_graph_lookup(m->graph, "Sp")->type;
        KT_CHECK_EQ_INT(t->kind, KL_TYPE_SPARSE_TENSOR);
        KT_CHECK_EQ_INT(t->elem, KILN_DTYPE_FLOAT);
        KT_CHECK_EQ_INT(t->shape.rank, 2);
        KT_CHECK_EQ_INT(t->shape.dims[1].value, 4);
        char buf[64];
        KT_CHECK_STR(kl_type_format(&kl_graph_lookup(m->graph, "Sq")->type, buf, sizeof buf),
                     "seq(float[2])");
    }
    kl_model_free(m);
    kt_pb_free(&f2); kt_pb_free(&seq); kt_pb_free(&ft); kt_pb_free(&map);
    kt_pb_free(&i64); kt_pb_free(&seqi); kt_pb_free(&opt); kt_pb_free(&sp);
    kt_pb_free(&g);
    kt_pb_free(&mb);
}

/* A node of a custom domain with one attribute of every type. */
static void test_attributes_all_types(void) {
    kt_pb g = {0}, mb = {0}, node = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "X", 1, "2");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "Y", 1, "2");
    kt_onnx_node_head(&node, "AllAttrs", "kt.test", "all", "X", "Y");
    kt_onnx_attr_f(&node, "f", 2.5f);
    kt_onnx_attr_i(&node, "i", -7);
    kt_onnx_attr_s(&node, "s", "hello");
    const float tv[2] = {0.25f, -8.0f};
    const int64_t tdims[1] = {2};
    kt_pb t = {0};
    kt_onnx_tensor_f32(&t, "tval", tdims, 1, tv, 2, 0);
    kt_onnx_attr_t(&node, "t", &t);
    kt_pb sub = {0};
    kt_pb_string_field(&sub, KT_GRAPH_NAME, "body");
    kt_onnx_io(&sub, KT_GRAPH_OUTPUT, "sy", 1, "2");
    kt_onnx_node(&sub, KT_GRAPH_NODE, "Neg", "neg", "X", "sy"); /* reads the outer X */
    kt_onnx_attr_g(&node, "g", &sub);
    const float fl[3] = {1.0f, 0.5f, -2.0f};
    kt_onnx_attr_floats(&node, "floats", fl, 3);
    const int64_t il[4] = {1, -2, 3000000000LL, 0};
    kt_onnx_attr_ints(&node, "ints", il, 4);
    kt_onnx_attr_strings(&node, "strings", "a,bc,");
    kt_pb a = {0};
    kt_onnx_attr_begin(&a, "tensors", 9);
    kt_pb_message_field(&a, KT_ATTR_TENSORS, &t);
    kt_pb_message_field(&a, KT_ATTR_TENSORS, &t);
    kt_pb_take(&node, KT_NODE_ATTRIBUTE, &a);
    kt_onnx_attr_begin(&a, "graphs", 10);
    kt_pb_message_field(&a, KT_ATTR_GRAPHS, &sub);
    kt_pb_take(&node, KT_NODE_ATTRIBUTE, &a);
    /* sparse: values [5,6] at linear indices 1 and 5 of a [2,3] tensor */
    kt_pb sp = {0}, spv = {0}, spi = {0};
    const float sv[2] = {5, 6};
    kt_onnx_tensor_f32(&spv, "sp", tdims, 1, sv, 2, 0);
    const int64_t si[2] = {1, 5};
    kt_onnx_tensor_head(&spi, NULL, 7, tdims, 1, 1);
    kt_pb_packed_i64(&spi, KT_TENSOR_INT64_DATA, si, 2);
    kt_pb_take(&sp, KT_SPARSE_VALUES, &spv);
    kt_pb_take(&sp, KT_SPARSE_INDICES, &spi);
    const int64_t sd[2] = {2, 3};
    kt_pb_packed_i64(&sp, KT_SPARSE_DIMS, sd, 2);
    kt_onnx_attr_begin(&a, "sparse", 11);
    kt_pb_message_field(&a, KT_ATTR_SPARSE_TENSOR, &sp);
    kt_pb_take(&node, KT_NODE_ATTRIBUTE, &a);
    kt_onnx_attr_begin(&a, "sparses", 12);
    kt_pb_message_field(&a, KT_ATTR_SPARSE_TENSORS, &sp);
    kt_pb_take(&node, KT_NODE_ATTRIBUTE, &a);
    kt_pb tp = {0}, tp2 = {0};
    kt_onnx_type_tensor(&tp, 10, "3");
    kt_onnx_type_seq(&tp2, &tp);
    kt_onnx_attr_begin(&a, "tp", 13);
    kt_pb_message_field(&a, KT_ATTR_TP, &tp);
    kt_pb_take(&node, KT_NODE_ATTRIBUTE, &a);
    kt_onnx_attr_begin(&a, "tps", 14);
    kt_pb_message_field(&a, KT_ATTR_TYPE_PROTOS, &tp);
    kt_pb_message_field(&a, KT_ATTR_TYPE_PROTOS, &tp2);
    kt_pb_take(&node, KT_NODE_ATTRIBUTE, &a);
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    kt_onnx_model(&mb, 8, 13, &g);
    kt_onnx_opset(&mb, KT_MODEL_OPSET_IMPORT, "kt.test", 1);

    kl_model *m = parse_ok(&mb);
    if (m) {
        const kl_node *n = m->graph->nodes[0];
        KT_CHECK_STR(n->domain, "kt.test");
        KT_CHECK_EQ_INT(n->opset, 1);
        KT_CHECK(n->schema == NULL);
        KT_CHECK_EQ_INT(n->n_attrs, 14);
        const kl_attr *at;
        at = kl_node_attr(n, "f");
        KT_CHECK(at && at->type == KL_ATTR_FLOAT && at->f == 2.5f);
        at = kl_node_attr(n, "i");
        KT_CHECK(at && at->type == KL_ATTR_INT && at->i == -7);
        at = kl_node_attr(n, "s");
        KT_CHECK(at && at->type == KL_ATTR_STRING && at->s.len == 5 &&
                 memcmp(at->s.ptr, "hello", 5) == 0);
        KT_CHECK_STR(kl_node_attr_string(n, "s", NULL), "hello");
        at = kl_node_attr(n, "t");
        KT_CHECK(at && at->type == KL_ATTR_TENSOR && at->t);
        if (at && at->t) {
            KT_CHECK_STR(at->t->name, "tval");
            KT_CHECK_EQ_INT(at->t->dtype, KILN_DTYPE_FLOAT);
            KT_CHECK_EQ_INT(at->t->count, 2);
            KT_CHECK(f32_at(at->t, 0) == 0.25f && f32_at(at->t, 1) == -8.0f);
        }
        at = kl_node_attr(n, "g");
        KT_CHECK(at && at->type == KL_ATTR_GRAPH && at->g);
        if (at && at->g) {
            const kl_graph *sg = at->g;
            KT_CHECK_STR(sg->name, "body");
            KT_CHECK(sg->parent == m->graph);
            KT_CHECK(sg->owner == n);
            KT_CHECK_EQ_INT(sg->depth, 1);
            KT_CHECK_EQ_INT(sg->n_nodes, 1);
            KT_CHECK_EQ_INT(sg->n_outputs, 1);
            /* the body's Neg reads X of the main graph */
            KT_CHECK(sg->n_nodes == 1 && sg->nodes[0]->inputs[0] == m->graph->inputs[0]);
            KT_CHECK(sg->outputs[0]->producer == sg->nodes[0]);
            KT_CHECK(sg->outputs[0]->graph == sg);
        }
        at = kl_node_attr(n, "floats");
        KT_CHECK(at && at->type == KL_ATTR_FLOATS && at->n == 3);
        if (at && at->n == 3)
            KT_CHECK(at->floats[0] == 1.0f && at->floats[1] == 0.5f && at->floats[2] == -2.0f);
        const int64_t *iv = NULL;
        KT_CHECK_EQ_INT(kl_node_attr_ints(n, "ints", &iv), 4);
        if (iv) {
            KT_CHECK_EQ_INT(iv[1], -2);
            KT_CHECK_EQ_INT(iv[2], 3000000000LL);
        }
        at = kl_node_attr(n, "strings");
        KT_CHECK(at && at->type == KL_ATTR_STRINGS && at->n == 3);
        if (at && at->n == 3) {
            KT_CHECK(at->strings[1].len == 2 && memcmp(at->strings[1].ptr, "bc", 2) == 0);
            KT_CHECK_EQ_INT(at->strings[2].len, 0);
        }
        at = kl_node_attr(n, "tensors");
        KT_CHECK(at && at->type == KL_ATTR_TENSORS && at->n == 2);
        if (at && at->n == 2) KT_CHECK(f32_at(at->tensors[1], 1) == -8.0f);
        at = kl_node_attr(n, "graphs");
        KT_CHECK(at && at->type == KL_ATTR_GRAPHS && at->n == 1);
        if (at && at->n == 1) KT_CHECK(at->graphs[0]->parent == m->graph && at->graphs[0]->owner == n);
        at = kl_node_attr(n, "sparse");
        KT_CHECK(at && at->type == KL_ATTR_SPARSE_TENSOR && at->sparse);
        if (at && at->sparse) {
            const kl_sparse *s = at->sparse;
            KT_CHECK_EQ_INT(s->rank, 2);
            KT_CHECK_EQ_INT(s->dims[0], 2);
            KT_CHECK_EQ_INT(s->dims[1], 3);
            KT_CHECK_EQ_INT(s->values->count, 2);
            KT_CHECK(f32_at(s->values, 1) == 6.0f);
            KT_CHECK_EQ_INT(s->indices->dtype, KILN_DTYPE_INT64);
            int64_t i1;
            memcpy(&i1, (const uint8_t *)s->indices->data + 8, 8);
            KT_CHECK_EQ_INT(i1, 5);
        }
        at = kl_node_attr(n, "sparses");
        KT_CHECK(at && at->type == KL_ATTR_SPARSE_TENSORS && at->n == 1);
        at = kl_node_attr(n, "tp");
        KT_CHECK(at && at->type == KL_ATTR_TYPE_PROTO && at->tp);
        if (at && at->tp) {
            KT_CHECK_EQ_INT(at->tp->kind, KL_TYPE_TENSOR);
            KT_CHECK_EQ_INT(at->tp->elem, KILN_DTYPE_FLOAT16);
            KT_CHECK_EQ_INT(at->tp->shape.dims[0].value, 3);
        }
        at = kl_node_attr(n, "tps");
        KT_CHECK(at && at->type == KL_ATTR_TYPE_PROTOS && at->n == 2);
        if (at && at->n == 2) KT_CHECK(at->tps[1]->kind == KL_TYPE_SEQUENCE);
    }
    kl_model_free(m);
    kt_pb_free(&t); kt_pb_free(&sub); kt_pb_free(&sp); kt_pb_free(&tp); kt_pb_free(&tp2);
    kt_pb_free(&g);
    kt_pb_free(&mb);
}

/* If with both branches reading an outer value: parents, owners, scopes. */
static void test_if_subgraphs(void) {
    kt_pb g = {0}, mb = {0}, node = {0}, thn = {0}, els = {0};
    kt_pb_string_field(&thn, KT_GRAPH_NAME, "then");
    kt_onnx_node(&thn, KT_GRAPH_NODE, "Identity", "tid", "X", "a");
    kt_onnx_io(&thn, KT_GRAPH_OUTPUT, "a", 1, "2");
    kt_pb_string_field(&els, KT_GRAPH_NAME, "else");
    kt_onnx_node(&els, KT_GRAPH_NODE, "Neg", "eneg", "X", "b");
    kt_onnx_io(&els, KT_GRAPH_OUTPUT, "b", 1, "2");
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "C", 9, "");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "X", 1, "2");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "Y", 1, "2");
    kt_onnx_node_head(&node, "If", NULL, "if0", "C", "Y");
    kt_onnx_attr_g(&node, "then_branch", &thn);
    kt_onnx_attr_g(&node, "else_branch", &els);
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    kt_onnx_model(&mb, 8, 13, &g);
    kl_model *m = parse_ok(&mb);
    if (m) {
        const kl_node *n = m->graph->nodes[0];
        const kl_attr *t = kl_node_attr(n, "then_branch"), *e = kl_node_attr(n, "else_branch");
        KT_CHECK(t && t->g && e && e->g);
        if (t && t->g && e && e->g) {
            KT_CHECK(t->g->parent == m->graph && t->g->owner == n && t->g->depth == 1);
            const kl_value *x = kl_graph_lookup(m->graph, "X");
            KT_CHECK(t->g->nodes[0]->inputs[0] == x);
            KT_CHECK(e->g->nodes[0]->inputs[0] == x);
            KT_CHECK_EQ_INT(x->use_count, 2);
            KT_CHECK(kl_graph_lookup(t->g, "a") != NULL);
            KT_CHECK(kl_graph_lookup(m->graph, "a") == NULL); /* not visible outside */
            KT_CHECK(kl_graph_lookup(e->g, "a") == NULL);
        }
        KT_CHECK_EQ_INT(m->n_problems, 0);
        dump_problems(m);
    }
    kl_model_free(m);
    kt_pb_free(&thn); kt_pb_free(&els);
    kt_pb_free(&g);
    kt_pb_free(&mb);
}

/* ---- tensor encodings (kl_onnx_parse_tensor) ---------------------------------------- */

static void test_tensor_raw_and_float_data(void) {
    kl_arena a;
    kl_arena_init(&a);
    const int64_t dims[2] = {2, 2};
    const float v[4] = {1.0f, -2.5f, 3.25f, 1e-3f};
    for (int raw = 0; raw < 2; raw++) {
        kt_pb t = {0};
        kt_onnx_tensor_f32(&t, "w", dims, 2, v, 4, raw);
        kl_tensor *x = NULL;
        KT_CHECK_EQ_INT(ptensor(&a, &t, &x), KILN_OK);
        if (x) {
            KT_CHECK_STR(x->name, "w");
            KT_CHECK_EQ_INT(x->dtype, KILN_DTYPE_FLOAT);
            KT_CHECK_EQ_INT(x->rank, 2);
            KT_CHECK_EQ_INT(x->dims[0], 2);
            KT_CHECK_EQ_INT(x->dims[1], 2);
            KT_CHECK_EQ_INT(x->count, 4);
            KT_CHECK_EQ_INT(x->nbytes, 16);
            KT_CHECK(!x->external);
            for (size_t i = 0; i < 4; i++) KT_CHECK(f32_at(x, i) == v[i]);
            if (raw) KT_CHECK((const uint8_t *)x->data >= t.data && (const uint8_t *)x->data < t.data + t.len);
        }
        kt_pb_free(&t);
    }
    kl_arena_free(&a);
}

/* Small integer types, bool and 16-bit floats stored in int32_data. */
static void test_tensor_int32_data_types(void) {
    kl_arena a;
    kl_arena_init(&a);
    static const struct {
        int dtype;
        int32_t v[4];
        size_t n, size;
        uint8_t expect[8];
    } cases[] = {
        {KILN_DTYPE_INT8, {-1, 2, -128, 127}, 4, 1, {0xff, 2, 0x80, 0x7f}},
        {KILN_DTYPE_UINT8, {0, 255, 7, 128}, 4, 1, {0, 255, 7, 128}},
        {KILN_DTYPE_INT16, {-32768, 5}, 2, 2, {0x00, 0x80, 5, 0}},
        {KILN_DTYPE_UINT16, {65535, 1}, 2, 2, {0xff, 0xff, 1, 0}},
        {KILN_DTYPE_BOOL, {1, 0, 1}, 3, 1, {1, 0, 1}},
        {KILN_DTYPE_FLOAT16, {0x3c00, 0xc000}, 2, 2, {0x00, 0x3c, 0x00, 0xc0}},
        {KILN_DTYPE_BFLOAT16, {0x3f80, 0x4040}, 2, 2, {0x80, 0x3f, 0x40, 0x40}},
        {KILN_DTYPE_INT32, {-7, 1 << 30}, 2, 4, {0xf9, 0xff, 0xff, 0xff, 0, 0, 0, 0x40}},
        {KILN_DTYPE_FLOAT8E4M3FN, {0x38, 0xc0}, 2, 1, {0x38, 0xc0}}, /* 1.0, -2.0 */
    };
    for (size_t c = 0; c < KL_ARRAY_LEN(cases); c++) {
        kt_pb t = {0};
        int64_t dims[1] = {(int64_t)cases[c].n};
        kt_onnx_tensor_head(&t, "q", cases[c].dtype, dims, 1, 1);
        kt_pb_packed_i32(&t, KT_TENSOR_INT32_DATA, cases[c].v, cases[c].n);
        kl_tensor *x = NULL;
        kiln_status s = ptensor(&a, &t, &x);
        KT_CHECK_EQ_INT(s, KILN_OK);
        if (s != KILN_OK) fprintf(stderr, "    dtype %d: %s\n", cases[c].dtype, kl_error_message());
        if (x) {
            KT_CHECK_EQ_INT(x->dtype, cases[c].dtype);
            KT_CHECK_EQ_INT(x->count, (int64_t)cases[c].n);
            KT_CHECK_EQ_INT(x->nbytes, cases[c].n * cases[c].size);
            KT_CHECK(x->data && memcmp(x->data, cases[c].expect, cases[c].n * cases[c].size) == 0);
        }
        kt_pb_free(&t);
    }
    /* int4 [1, -2, 7]: two values per int32_data entry, low nibble first */
    {
        kt_pb t4 = {0};
        int64_t d3[1] = {3};
        kt_onnx_tensor_head(&t4, "i4", KILN_DTYPE_INT4, d3, 1, 1);
        const int32_t packed[2] = {0xe1, 0x07};
        kt_pb_packed_i32(&t4, KT_TENSOR_INT32_DATA, packed, 2);
        kl_tensor *x4 = NULL;
        KT_CHECK_EQ_INT(ptensor(&a, &t4, &x4), KILN_OK);
        if (x4) {
            KT_CHECK_EQ_INT(x4->count, 3);
            KT_CHECK_EQ_INT(x4->nbytes, 2);
            KT_CHECK(x4->data && ((const uint8_t *)x4->data)[0] == 0xe1 &&
                     ((const uint8_t *)x4->data)[1] == 0x07);
        }
        kt_pb_free(&t4);
    }
    /* float16/bfloat16 values read back as floats */
    kt_pb t = {0};
    int64_t d2[1] = {2};
    kt_onnx_tensor_head(&t, "h", KILN_DTYPE_FLOAT16, d2, 1, 1);
    const int32_t h[2] = {0x3c00, 0xc000};
    kt_pb_packed_i32(&t, KT_TENSOR_INT32_DATA, h, 2);
    kl_tensor *x = NULL;
    KT_CHECK_EQ_INT(ptensor(&a, &t, &x), KILN_OK);
    if (x) {
        KT_CHECK(kl_tensor_get_f64(x, 0) == 1.0);
        KT_CHECK(kl_tensor_get_f64(x, 1) == -2.0);
    }
    kt_pb_free(&t);
    kl_arena_free(&a);
}

static void test_tensor_wide_types(void) {
    kl_arena a;
    kl_arena_init(&a);
    kl_tensor *x;
    int64_t d2[1] = {2};
    /* int64_data */
    kt_pb t = {0};
    const int64_t iv[2] = {-1, (int64_t)1 << 40};
    kt_onnx_tensor_head(&t, "i64", KILN_DTYPE_INT64, d2, 1, 1);
    kt_pb_packed_i64(&t, KT_TENSOR_INT64_DATA, iv, 2);
    x = NULL;
    KT_CHECK_EQ_INT(ptensor(&a, &t, &x), KILN_OK);
    if (x) {
        int64_t got[2];
        KT_CHECK_EQ_INT(x->nbytes, 16);
        memcpy(got, x->data, 16);
        KT_CHECK_EQ_INT(got[0], -1);
        KT_CHECK_EQ_INT(got[1], (int64_t)1 << 40);
        int64_t out[2] = {0, 0};
        KT_CHECK(kl_tensor_to_i64(x, out, 2));
        KT_CHECK_EQ_INT(out[1], (int64_t)1 << 40);
    }
    kt_pb_free(&t);
    /* double_data */
    const double dv[2] = {0.5, -1e300};
    kt_onnx_tensor_head(&t, "f64", KILN_DTYPE_DOUBLE, d2, 1, 1);
    kt_pb_packed_f64(&t, KT_TENSOR_DOUBLE_DATA, dv, 2);
    x = NULL;
    KT_CHECK_EQ_INT(ptensor(&a, &t, &x), KILN_OK);
    if (x) {
        double got[2];
        KT_CHECK_EQ_INT(x->nbytes, 16);
        memcpy(got, x->data, 16);
        KT_CHECK(got[0] == 0.5 && got[1] == -1e300);
    }
    kt_pb_free(&t);
    /* uint64_data for uint64 and uint32 */
    const uint64_t uv[2] = {((uint64_t)1 << 63) + 5, 1};
    kt_onnx_tensor_head(&t, "u64", KILN_DTYPE_UINT64, d2, 1, 1);
    kt_pb_packed_u64(&t, KT_TENSOR_UINT64_DATA, uv, 2);
    x = NULL;
    KT_CHECK_EQ_INT(ptensor(&a, &t, &x), KILN_OK);
    if (x) {
        uint64_t got[2];
        memcpy(got, x->data, 16);
        KT_CHECK(got[0] == ((uint64_t)1 << 63) + 5 && got[1] == 1);
    }
    kt_pb_free(&t);
    const uint64_t u32v[2] = {4294967295u, 0};
    kt_onnx_tensor_head(&t, "u32", KILN_DTYPE_UINT32, d2, 1, 1);
    kt_pb_packed_u64(&t, KT_TENSOR_UINT64_DATA, u32v, 2);
    x = NULL;
    KT_CHECK_EQ_INT(ptensor(&a, &t, &x), KILN_OK);
    if (x) {
        uint32_t got[2];
        KT_CHECK_EQ_INT(x->nbytes, 8);
        memcpy(got, x->data, 8);
        KT_CHECK(got[0] == 4294967295u && got[1] == 0);
    }
    kt_pb_free(&t);
    /* raw_data int64, rank 0 */
    const int64_t scalar = -42;
    kt_onnx_tensor_head(&t, "s", KILN_DTYPE_INT64, NULL, 0, 1);
    kt_pb_bytes_field(&t, KT_TENSOR_RAW_DATA, &scalar, 8);
    x = NULL;
    KT_CHECK_EQ_INT(ptensor(&a, &t, &x), KILN_OK);
    if (x) {
        KT_CHECK_EQ_INT(x->rank, 0);
        KT_CHECK_EQ_INT(x->count, 1);
        int64_t got;
        memcpy(&got, x->data, 8);
        KT_CHECK_EQ_INT(got, -42);
    }
    kt_pb_free(&t);
    /* an empty tensor: dims [0], no data */
    int64_t d0[2] = {3, 0};
    kt_onnx_tensor_head(&t, "e", KILN_DTYPE_FLOAT, d0, 2, 1);
    x = NULL;
    KT_CHECK_EQ_INT(ptensor(&a, &t, &x), KILN_OK);
    if (x) {
        KT_CHECK_EQ_INT(x->count, 0);
        KT_CHECK_EQ_INT(x->nbytes, 0);
    }
    kt_pb_free(&t);
    kl_arena_free(&a);
}

static void test_tensor_strings(void) {
    kl_arena a;
    kl_arena_init(&a);
    kt_pb t = {0};
    int64_t d3[1] = {3};
    kt_onnx_tensor_head(&t, "names", KILN_DTYPE_STRING, d3, 1, 1);
    kt_pb_names(&t, KT_TENSOR_STRING_DATA, "ab,,xyz");
    kl_tensor *x = NULL;
    KT_CHECK_EQ_INT(ptensor(&a, &t, &x), KILN_OK);
    if (x) {
        KT_CHECK_EQ_INT(x->dtype, KILN_DTYPE_STRING);
        KT_CHECK_EQ_INT(x->count, 3);
        KT_CHECK(x->strings != NULL);
        if (x->strings) {
            KT_CHECK(x->strings[0].len == 2 && memcmp(x->strings[0].ptr, "ab", 2) == 0);
            KT_CHECK_EQ_INT(x->strings[1].len, 0);
            KT_CHECK(x->strings[2].len == 3 && memcmp(x->strings[2].ptr, "xyz", 3) == 0);
        }
    }
    kt_pb_free(&t);
    /* 2 strings for dims [3] */
    kt_onnx_tensor_head(&t, "few", KILN_DTYPE_STRING, d3, 1, 1);
    kt_pb_names(&t, KT_TENSOR_STRING_DATA, "a,b");
    x = NULL;
    kiln_status s = ptensor(&a, &t, &x);
    KT_CHECK_EQ_INT(s, KILN_ERR_INVALID_MODEL);
    KT_CHECK_CONTAINS(kl_error_message(), "'few'");
    kt_pb_free(&t);
    kl_arena_free(&a);
}

/* Typed data whose count does not fit the dims; malformed tensor bytes. */
static void test_tensor_bad(void) {
    kl_arena a;
    kl_arena_init(&a);
    kt_pb t = {0};
    kl_tensor *x = NULL;
    const int64_t dims[2] = {2, 2};
    const float v[3] = {1, 2, 3};
    kt_onnx_tensor_f32(&t, "short_fd", dims, 2, v, 3, 0);
    KT_CHECK_EQ_INT(ptensor(&a, &t, &x), KILN_ERR_INVALID_MODEL);
    KT_CHECK_CONTAINS(kl_error_message(), "'short_fd'");
    KT_CHECK_CONTAINS(kl_error_message(), "float_data");
    kt_pb_free(&t);
    /* no data_type */
    kt_onnx_tensor_head(&t, "notype", 0, dims, 2, 1);
    KT_CHECK(ptensor(&a, &t, &x) != KILN_OK);
    KT_CHECK_CONTAINS(kl_error_message(), "'notype'");
    kt_pb_free(&t);
    /* unknown data_type */
    kt_onnx_tensor_head(&t, "badtype", 99, dims, 2, 1);
    KT_CHECK(ptensor(&a, &t, &x) != KILN_OK);
    KT_CHECK_CONTAINS(kl_error_message(), "'badtype'");
    KT_CHECK_CONTAINS(kl_error_message(), "99");
    kt_pb_free(&t);
    /* a rank above KILN_MAX_RANK */
    int64_t ones[KILN_MAX_RANK + 1];
    for (int i = 0; i <= KILN_MAX_RANK; i++) ones[i] = 1;
    kt_onnx_tensor_head(&t, "deep", 1, ones, KILN_MAX_RANK + 1, 1);
    KT_CHECK(ptensor(&a, &t, &x) != KILN_OK);
    KT_CHECK_CONTAINS(kl_error_message(), "rank");
    KT_CHECK_CONTAINS(kl_error_message(), "'deep'");
    kt_pb_free(&t);
    /* garbage: a tag with wire type 7 */
    const uint8_t junk[3] = {0x0f, 0x01, 0x02};
    KT_CHECK_EQ_INT(kl_onnx_parse_tensor(&a, junk, sizeof junk, &x), KILN_ERR_PARSE);
    /* packed float_data whose length is not a multiple of 4 */
    kt_onnx_tensor_head(&t, "odd", 1, dims, 1, 1);
    kt_pb_bytes_field(&t, KT_TENSOR_FLOAT_DATA, "\0\0\x80\x3f\0", 5);
    KT_CHECK_EQ_INT(ptensor(&a, &t, &x), KILN_ERR_PARSE);
    KT_CHECK_CONTAINS_ANY(kl_error_message(), "float_data", "field 4", "'odd'");
    kt_pb_free(&t);
    kl_arena_free(&a);
}

/* ---- malformed models ---------------------------------------------------------------- */

static void test_truncated_varint(void) {
    static const uint8_t b1[] = {0x08, 0xff};             /* ir_version, value cut */
    static const uint8_t b2[] = {0x08, 0x08, 0xb8};       /* a tag cut in the middle */
    kl_model *m = NULL;
    kl_error_clear();
    KT_CHECK_EQ_INT(kl_onnx_parse(b1, sizeof b1, "test.onnx", NULL, &m), KILN_ERR_PARSE);
    KT_CHECK(m == NULL);
    KT_CHECK_CONTAINS(kl_error_message(), "varint");
    KT_CHECK_CONTAINS_ANY(kl_error_message(), "ir_version", "field 1");
    KT_CHECK_CONTAINS(kl_error_message(), "test.onnx");
    kl_error_clear();
    KT_CHECK_EQ_INT(kl_onnx_parse(b2, sizeof b2, "test.onnx", NULL, &m), KILN_ERR_PARSE);
    KT_CHECK_CONTAINS(kl_error_message(), "varint");
    /* fixed32 and fixed64 fields of an unknown number (100), cut short */
    static const uint8_t b3[] = {0x08, 0x08, 0xa5, 0x06, 0x01, 0x02};
    static const uint8_t b4[] = {0x08, 0x08, 0xa1, 0x06, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};
    kl_error_clear();
    KT_CHECK_EQ_INT(kl_onnx_parse(b3, sizeof b3, "test.onnx", NULL, &m), KILN_ERR_PARSE);
    KT_CHECK_CONTAINS(kl_error_message(), "100");
    kl_error_clear();
    KT_CHECK_EQ_INT(kl_onnx_parse(b4, sizeof b4, "test.onnx", NULL, &m), KILN_ERR_PARSE);
    KT_CHECK_CONTAINS(kl_error_message(), "100");
}

static void test_overlong_varint(void) {
    /* ir_version with an 11-byte varint */
    static const uint8_t b1[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                 0xff, 0xff, 0xff, 0xff, 0x01};
    /* 10 bytes, but the last one carries bits above 2^64 */
    static const uint8_t b2[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    kl_model *m = NULL;
    kl_error_clear();
    KT_CHECK_EQ_INT(kl_onnx_parse(b1, sizeof b1, "test.onnx", NULL, &m), KILN_ERR_PARSE);
    KT_CHECK_CONTAINS(kl_error_message(), "varint");
    KT_CHECK_CONTAINS_ANY(kl_error_message(), "ir_version", "field 1");
    kl_error_clear();
    KT_CHECK_EQ_INT(kl_onnx_parse(b2, sizeof b2, "test.onnx", NULL, &m), KILN_ERR_PARSE);
    KT_CHECK_CONTAINS(kl_error_message(), "varint");
    KT_CHECK_CONTAINS_ANY(kl_error_message(), "ir_version", "field 1");
}

static void test_length_past_end(void) {
    kt_pb mb = {0};
    kt_pb_varint_field(&mb, KT_MODEL_IR_VERSION, 8);
    kt_pb_tag(&mb, KT_MODEL_GRAPH, 2);
    kt_pb_varint(&mb, 100);
    kt_pb_raw(&mb, "\x12\x01g", 3);
    kl_model *m = NULL;
    KT_CHECK_EQ_INT(parse(&mb, &m), KILN_ERR_PARSE);
    KT_CHECK_CONTAINS(kl_error_message(), "100");
    KT_CHECK_CONTAINS_ANY(kl_error_message(), "graph", "field 7");
    kt_pb_free(&mb);
    /* inside the graph: a node whose length runs past the graph's end */
    kt_pb g = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_pb_tag(&g, KT_GRAPH_NODE, 2);
    kt_pb_varint(&g, 50);
    kt_pb_raw(&g, "\x22\x04Relu", 6);
    kt_onnx_model(&mb, 8, 13, &g);
    KT_CHECK_EQ_INT(parse(&mb, &m), KILN_ERR_PARSE);
    KT_CHECK_CONTAINS(kl_error_message(), "50");
    KT_CHECK_CONTAINS_ANY(kl_error_message(), "node", "field 1");
    kt_pb_free(&g);
    kt_pb_free(&mb);
}

static void test_wrong_wire_type(void) {
    kt_pb mb = {0};
    kt_pb_varint_field(&mb, KT_MODEL_IR_VERSION, 8);
    kt_pb_varint_field(&mb, KT_MODEL_GRAPH, 1); /* graph as a varint */
    kl_model *m = NULL;
    KT_CHECK_EQ_INT(parse(&mb, &m), KILN_ERR_PARSE);
    KT_CHECK_CONTAINS(kl_error_message(), "graph");
    KT_CHECK_CONTAINS(kl_error_message(), "wire type");
    kt_pb_free(&mb);
    /* ir_version as a string */
    kt_pb_string_field(&mb, KT_MODEL_IR_VERSION, "8");
    KT_CHECK_EQ_INT(parse(&mb, &m), KILN_ERR_PARSE);
    KT_CHECK_CONTAINS(kl_error_message(), "ir_version");
    kt_pb_free(&mb);
    /* a node's op_type as a varint */
    kt_pb g = {0}, node = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_pb_names(&node, KT_NODE_OUTPUT, "y");
    kt_pb_varint_field(&node, KT_NODE_OP_TYPE, 3);
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    kt_onnx_model(&mb, 8, 13, &g);
    KT_CHECK_EQ_INT(parse(&mb, &m), KILN_ERR_PARSE);
    KT_CHECK_CONTAINS(kl_error_message(), "op_type");
    kt_pb_free(&g);
    kt_pb_free(&mb);
    /* a deprecated group (wire type 3) where graph.input should be */
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_pb_tag(&g, KT_GRAPH_INPUT, 3);
    kt_onnx_model(&mb, 8, 13, &g);
    KT_CHECK_EQ_INT(parse(&mb, &m), KILN_ERR_PARSE);
    KT_CHECK_CONTAINS(kl_error_message(), "wire type");
    kt_pb_free(&g);
    kt_pb_free(&mb);
}

/* A model whose graph has one initializer: the TensorProto `t`. */
static kiln_status parse_with_init(kt_pb *t, kt_pb *mb, kl_model **m) {
    kt_pb extra = {0};
    kt_pb_message_field(&extra, KT_GRAPH_INITIALIZER, t);
    relu_model(mb, &extra);
    kt_pb_free(&extra);
    return parse(mb, m);
}

static void test_negative_dim(void) {
    kt_pb t = {0}, mb = {0};
    const int64_t dims[2] = {2, -1};
    kt_onnx_tensor_head(&t, "Wneg", 1, dims, 2, 1);
    kl_model *m = NULL;
    kiln_status s = parse_with_init(&t, &mb, &m);
    KT_CHECK(s == KILN_ERR_INVALID_MODEL || s == KILN_ERR_PARSE);
    KT_CHECK(m == NULL);
    KT_CHECK_CONTAINS(kl_error_message(), "'Wneg'");
    KT_CHECK_CONTAINS(kl_error_message(), "negative");
    kl_model_free(m);
    kt_pb_free(&t);
    kt_pb_free(&mb);
}

static void test_dim_product_overflow(void) {
    kt_pb t = {0}, mb = {0};
    const int64_t dims[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
    kt_onnx_tensor_head(&t, "Whuge", 1, dims, 2, 1);
    kt_pb_bytes_field(&t, KT_TENSOR_RAW_DATA, "\0\0\0\0", 4);
    kl_model *m = NULL;
    kiln_status s = parse_with_init(&t, &mb, &m);
    KT_CHECK(s == KILN_ERR_INVALID_MODEL || s == KILN_ERR_PARSE);
    KT_CHECK_CONTAINS(kl_error_message(), "'Whuge'");
    KT_CHECK_CONTAINS(kl_error_message(), "overflow");
    kl_model_free(m);
    kt_pb_free(&t);
    kt_pb_free(&mb);
    /* 2^31 x 2^31 floats: the count fits in int64, its byte size overflows */
    const int64_t d3[3] = {(int64_t)1 << 31, (int64_t)1 << 31, 1};
    kt_onnx_tensor_head(&t, "Wbytes", 1, d3, 3, 1);
    s = parse_with_init(&t, &mb, &m);
    KT_CHECK(s == KILN_ERR_INVALID_MODEL || s == KILN_ERR_PARSE);
    KT_CHECK_CONTAINS(kl_error_message(), "'Wbytes'");
    kl_model_free(m);
    kt_pb_free(&t);
    kt_pb_free(&mb);
}

/* raw_data shorter than the dims say: a load problem naming the tensor
 * (the model is well-formed protobuf but breaks an ONNX rule). */
static void test_raw_data_short(void) {
    kt_pb t = {0}, mb = {0};
    const int64_t dims[1] = {4};
    kt_onnx_tensor_head(&t, "Wshort", 1, dims, 1, 1);
    kt_pb_bytes_field(&t, KT_TENSOR_RAW_DATA, "\0\0\x80\x3f\0\0\0\x40", 8);
    kl_model *m = NULL;
    kiln_status s = parse_with_init(&t, &mb, &m);
    if (s == KILN_OK) {
        const char *p = find_problem(m, "'Wshort'", "raw_data");
        KT_CHECK(p != NULL);
        if (p) {
            KT_CHECK_CONTAINS(p, "8");
            KT_CHECK_CONTAINS(p, "16");
        }
        dump_problems(m);
        /* the bad data is not exposed */
        const kl_value *w = kl_graph_lookup(m->graph, "Wshort");
        KT_CHECK(w && w->init && w->init->nbytes == 0 && w->init->data == NULL);
    } else {
        KT_CHECK_EQ_INT(s, KILN_ERR_INVALID_MODEL);
        KT_CHECK_CONTAINS(kl_error_message(), "'Wshort'");
    }
    kl_model_free(m);
    kt_pb_free(&t);
    kt_pb_free(&mb);
}

/* A huge declared count: a packed field claiming 2^62 bytes, and dims of
 * 2^30 floats backed by two values.  Neither may allocate for the claim. */
static void test_huge_declared_count(void) {
    kt_pb t = {0}, mb = {0};
    const int64_t dims[1] = {(int64_t)1 << 30};
    kt_onnx_tensor_head(&t, "Wclaim", 1, dims, 1, 1);
    kt_pb_tag(&t, KT_TENSOR_FLOAT_DATA, 2);
    kt_pb_varint(&t, (uint64_t)1 << 62);
    kt_pb_raw(&t, "\0\0\0\0\0\0\0\0", 8);
    kl_model *m = NULL;
    KT_CHECK_EQ_INT(parse_with_init(&t, &mb, &m), KILN_ERR_PARSE);
    KT_CHECK_CONTAINS(kl_error_message(), "past the end");
    kl_model_free(m);
    kt_pb_free(&t);
    kt_pb_free(&mb);
    kt_onnx_tensor_head(&t, "Wfew", 1, dims, 1, 1);
    const float two[2] = {1, 2};
    kt_pb_packed_f32(&t, KT_TENSOR_FLOAT_DATA, two, 2);
    m = NULL;
    kiln_status s = parse_with_init(&t, &mb, &m);
    if (s == KILN_OK) {
        KT_CHECK(find_problem(m, "'Wfew'", "float_data") != NULL);
        dump_problems(m);
    } else {
        KT_CHECK_CONTAINS(kl_error_message(), "'Wfew'");
    }
    kl_model_free(m);
    kt_pb_free(&t);
    kt_pb_free(&mb);
    /* many small repeated messages: 100000 empty nodes parse (with
     * problems for the checker) without trouble */
    kt_pb g = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    for (int i = 0; i < 100000; i++) kt_pb_raw(&g, "\x0a\x00", 2);
    kt_onnx_model(&mb, 8, 13, &g);
    m = NULL;
    s = parse(&mb, &m);
    KT_CHECK(s == KILN_OK || s == KILN_ERR_INVALID_MODEL);
    kl_model_free(m);
    kt_pb_free(&g);
    kt_pb_free(&mb);
}

/* Nested messages built without quadratic copying: `depth` levels, each
 * written by `level` as a prefix around the inner `inner_len` bytes. */
typedef void (*kt_level_fn)(kt_pb *prefix, size_t level, size_t depth, size_t inner_len);

static void build_nested(kt_pb *out, size_t depth, const kt_pb *inner, kt_level_fn level) {
    kt_pb *prefixes = calloc(depth, sizeof *prefixes);
    size_t len = inner->len;
    for (size_t k = 1; k <= depth; k++) {
        level(&prefixes[k - 1], k, depth, len);
        len += prefixes[k - 1].len;
    }
    for (size_t k = depth; k >= 1; k--) {
        kt_pb_raw(out, prefixes[k - 1].data, prefixes[k - 1].len);
        kt_pb_free(&prefixes[k - 1]);
    }
    kt_pb_raw(out, inner->data, inner->len);
    free(prefixes);
}

/* Level k of nested Ifs: GraphProto { [inputs] node { If(C) -> o<k>,
 * then_branch = <inner graph> } }; the outermost level declares C. */
static void if_level(kt_pb *prefix, size_t k, size_t depth, size_t inner_len) {
    char out[32];
    snprintf(out, sizeof out, "o%zu", k);
    kt_pb attr = {0}, node = {0};
    kt_onnx_attr_begin(&attr, "then_branch", 5);
    kt_pb_tag(&attr, KT_ATTR_G, 2);
    kt_pb_varint(&attr, inner_len);
    size_t attr_len = attr.len + inner_len;
    kt_onnx_node_head(&node, "If", NULL, NULL, "C", out);
    kt_pb_tag(&node, KT_NODE_ATTRIBUTE, 2);
    kt_pb_varint(&node, attr_len);
    kt_pb_raw(&node, attr.data, attr.len);
    size_t node_len = node.len + inner_len;
    char name[32];
    snprintf(name, sizeof name, "g%zu", k);
    kt_pb_string_field(prefix, KT_GRAPH_NAME, name);
    if (k == depth) kt_onnx_io(prefix, KT_GRAPH_INPUT, "C", 9, "");
    kt_pb_tag(prefix, KT_GRAPH_NODE, 2);
    kt_pb_varint(prefix, node_len);
    kt_pb_raw(prefix, node.data, node.len);
    kt_pb_free(&attr);
    kt_pb_free(&node);
}

static void nested_if_model(kt_pb *mb, size_t depth) {
    kt_pb leaf = {0}, g = {0};
    kt_pb_string_field(&leaf, KT_GRAPH_NAME, "leaf");
    build_nested(&g, depth, &leaf, if_level);
    kt_onnx_model(mb, 8, 13, &g);
    kt_pb_free(&leaf);
    kt_pb_free(&g);
}

static void test_deep_graph_nesting(void) {
    kt_pb mb = {0};
    kl_model *m = NULL;
    /* a few levels are fine */
    nested_if_model(&mb, 4);
    m = parse_ok(&mb);
    if (m) {
        const kl_graph *g = m->graph;
        for (int d = 1; d < 4 && g; d++) {
            const kl_attr *a = kl_node_attr(g->nodes[0], "then_branch");
            KT_CHECK(a && a->g && a->g->depth == d && a->g->parent == g);
            g = a ? a->g : NULL;
        }
    }
    kl_model_free(m);
    kt_pb_free(&mb);
    /* 1000 levels: an error, not a stack overflow */
    nested_if_model(&mb, 1000);
    m = NULL;
    kiln_status s = parse(&mb, &m);
    KT_CHECK(s != KILN_OK);
    KT_CHECK(m == NULL);
    KT_CHECK_CONTAINS_ANY(kl_error_message(), "nested", "deep", "depth");
    KT_CHECK_CONTAINS(kl_error_message(), "then_branch");
    kt_pb_free(&mb);
    /* 100000 levels */
    nested_if_model(&mb, 100000);
    s = parse(&mb, &m);
    KT_CHECK(s != KILN_OK);
    KT_CHECK_CONTAINS_ANY(kl_error_message(), "nested", "deep", "depth");
    kt_pb_free(&mb);
}

/* TypeProto { sequence_type { elem_type = <inner> } } levels. */
static void seq_level(kt_pb *prefix, size_t k, size_t depth, size_t inner_len) {
    kt_pb seq = {0};
    kt_pb_tag(&seq, KT_SEQTYPE_ELEM, 2);
    kt_pb_varint(&seq, inner_len);
    kt_pb_tag(prefix, KT_TYPE_SEQUENCE, 2);
    kt_pb_varint(prefix, seq.len + inner_len);
    kt_pb_raw(prefix, seq.data, seq.len);
    kt_pb_free(&seq);
}

static void test_deep_type_nesting(void) {
    kt_pb leaf = {0}, tp = {0}, g = {0}, mb = {0};
    kt_onnx_type_tensor(&leaf, 1, "1");
    build_nested(&tp, 200000, &leaf, seq_level);
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_onnx_value_info(&g, KT_GRAPH_INPUT, "deep_in", &tp);
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "Y", 1, "1");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Identity", "id", "deep_in", "Y");
    kt_onnx_model(&mb, 8, 13, &g);
    kl_model *m = NULL;
    kiln_status s = parse(&mb, &m);
    KT_CHECK(s != KILN_OK);
    KT_CHECK_CONTAINS_ANY(kl_error_message(), "nested", "deep", "depth");
    KT_CHECK_CONTAINS(kl_error_message(), "deep_in");
    kl_model_free(m);
    kt_pb_free(&leaf); kt_pb_free(&tp); kt_pb_free(&g); kt_pb_free(&mb);
}

/* TypeProto.opaque (field 7; ONNX-ML, and every build from IR version 14):
 * refused with an error naming the value. */
static void test_opaque_type(void) {
    kt_pb op = {0}, tp = {0}, g = {0}, mb = {0};
    kt_pb_string_field(&op, 1, "com.example"); /* Opaque.domain */
    kt_pb_string_field(&op, 2, "Handle");      /* Opaque.name */
    kt_pb_message_field(&tp, 7, &op);
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_onnx_value_info(&g, KT_GRAPH_INPUT, "h", &tp);
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "Y", 1, "1");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Identity", "id", "h", "Y");
    kt_onnx_model(&mb, 14, 13, &g);
    kl_model *m = NULL;
    kiln_status s = parse(&mb, &m);
    KT_CHECK_EQ_INT(s, KILN_ERR_UNSUPPORTED);
    KT_CHECK_CONTAINS(kl_error_message(), "opaque");
    KT_CHECK_CONTAINS(kl_error_message(), "'h'");
    kl_model_free(m);
    kt_pb_free(&op); kt_pb_free(&tp); kt_pb_free(&g); kt_pb_free(&mb);
}

static void test_empty_and_graphless(void) {
    kl_model *m = NULL;
    kl_error_clear();
    KT_CHECK_EQ_INT(kl_onnx_parse((const uint8_t *)"", 0, "empty.onnx", NULL, &m), KILN_ERR_PARSE);
    KT_CHECK_CONTAINS(kl_error_message(), "empty.onnx");
    kt_pb mb = {0};
    kt_onnx_model(&mb, 8, 13, NULL);
    KT_CHECK_EQ_INT(parse(&mb, &m), KILN_ERR_INVALID_MODEL);
    KT_CHECK_CONTAINS(kl_error_message(), "graph");
    kt_pb_free(&mb);
}

/* ---- functions ------------------------------------------------------------------- */

/* MyFn(x) = Neg(HardSigmoid(x, alpha=@alpha, beta=@beta)), beta defaults
 * to 0.25; called three times: alpha given, alpha+beta given, none. */
static void test_function_inlining(void) {
    kt_pb fn = {0}, node = {0}, a = {0};
    kt_pb_string_field(&fn, KT_FUNC_NAME, "MyFn");
    kt_pb_string_field(&fn, KT_FUNC_DOMAIN, "local");
    kt_pb_names(&fn, KT_FUNC_INPUT, "x");
    kt_pb_names(&fn, KT_FUNC_OUTPUT, "y");
    kt_pb_names(&fn, KT_FUNC_ATTRIBUTE, "alpha");
    kt_onnx_attr_begin(&a, "beta", 1);
    kt_pb_float_field(&a, KT_ATTR_F, 0.25f);
    kt_pb_take(&fn, KT_FUNC_ATTRIBUTE_PROTO, &a);
    kt_onnx_opset(&fn, KT_FUNC_OPSET_IMPORT, "", 13);
    kt_onnx_node_head(&node, "HardSigmoid", NULL, "hs", "x", "t");
    kt_onnx_attr_ref(&node, "alpha", "alpha", 1);
    kt_onnx_attr_ref(&node, "beta", "beta", 1);
    kt_pb_take(&fn, KT_FUNC_NODE, &node);
    kt_onnx_node(&fn, KT_FUNC_NODE, "Neg", "neg", "t", "y");

    kt_pb g = {0}, mb = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "X", 1, "4");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "C", 1, "4");
    kt_onnx_node_head(&node, "MyFn", "local", "call1", "X", "A");
    kt_onnx_attr_f(&node, "alpha", 0.1f);
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    kt_onnx_node_head(&node, "MyFn", "local", "call2", "A", "B");
    kt_onnx_attr_f(&node, "alpha", 0.3f);
    kt_onnx_attr_f(&node, "beta", 0.7f);
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    kt_onnx_node_head(&node, "MyFn", "local", "call3", "B", "C");
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    kt_onnx_model(&mb, 10, 13, &g);
    kt_onnx_opset(&mb, KT_MODEL_OPSET_IMPORT, "local", 1);
    kt_pb_take(&mb, KT_MODEL_FUNCTIONS, &fn);

    kl_model *m = parse_ok(&mb);
    if (m) {
        const kl_graph *gr = m->graph;
        KT_CHECK_EQ_INT(m->n_functions, 1);
        KT_CHECK_EQ_INT(m->n_inlined, 3);
        KT_CHECK_EQ_INT(gr->n_nodes, 6);
        KT_CHECK_EQ_INT(m->n_problems, 0);
        dump_problems(m);
        if (gr->n_nodes == 6) {
            const kl_value *x = kl_graph_lookup(gr, "X"), *av = kl_graph_lookup(gr, "A"),
                           *bv = kl_graph_lookup(gr, "B"), *cv = kl_graph_lookup(gr, "C");
            for (size_t i = 0; i < 6; i++) {
                const kl_node *n = gr->nodes[i];
                KT_CHECK_STR(n->op_type, i % 2 ? "Neg" : "HardSigmoid");
                KT_CHECK_STR(n->domain, "");
                KT_CHECK_EQ_INT(n->opset, 13);
                KT_CHECK_EQ_INT(n->index, i);
                KT_CHECK(n->graph == gr);
                for (size_t k = 0; k < n->n_attrs; k++) KT_CHECK(n->attrs[k].ref_attr_name == NULL);
            }
            /* wiring: X -> hs -> t1 -> neg -> A -> hs -> t2 -> neg -> B -> ... -> C */
            KT_CHECK(gr->nodes[0]->inputs[0] == x);
            KT_CHECK(gr->nodes[1]->inputs[0] == gr->nodes[0]->outputs[0]);
            KT_CHECK(gr->nodes[1]->outputs[0] == av);
            KT_CHECK(gr->nodes[2]->inputs[0] == av);
            KT_CHECK(gr->nodes[3]->outputs[0] == bv);
            KT_CHECK(gr->nodes[4]->inputs[0] == bv);
            KT_CHECK(gr->nodes[5]->outputs[0] == cv);
            KT_CHECK(cv == gr->outputs[0] && cv->producer == gr->nodes[5]);
            const kl_value *t1 = gr->nodes[0]->outputs[0], *t2 = gr->nodes[2]->outputs[0];
            KT_CHECK(t1 != t2 && t1 && t2);
            if (t1 && t2) {
                KT_CHECK(strcmp(t1->name, t2->name) != 0);
                KT_CHECK(strcmp(t1->name, "t") != 0);
                KT_CHECK(t1->producer == gr->nodes[0]);
            }
            /* attributes: referenced, defaulted, absent */
            KT_CHECK(kl_node_attr_float(gr->nodes[0], "alpha", -1) == 0.1f);
            KT_CHECK(kl_node_attr_float(gr->nodes[0], "beta", -1) == 0.25f);
            KT_CHECK(kl_node_attr_float(gr->nodes[2], "alpha", -1) == 0.3f);
            KT_CHECK(kl_node_attr_float(gr->nodes[2], "beta", -1) == 0.7f);
            KT_CHECK(kl_node_attr(gr->nodes[4], "alpha") == NULL);
            KT_CHECK(kl_node_attr_float(gr->nodes[4], "beta", -1) == 0.25f);
            const kl_attr *at = kl_node_attr(gr->nodes[0], "alpha");
            KT_CHECK(at && at->type == KL_ATTR_FLOAT);
        }
    }
    kl_model_free(m);
    kt_pb_free(&g);
    kt_pb_free(&mb);
}

/* A function that calls itself: refused, not a stack overflow. */
static void test_function_recursion(void) {
    kt_pb fn = {0}, node = {0}, g = {0}, mb = {0};
    kt_pb_string_field(&fn, KT_FUNC_NAME, "Loopy");
    kt_pb_string_field(&fn, KT_FUNC_DOMAIN, "local");
    kt_pb_names(&fn, KT_FUNC_INPUT, "x");
    kt_pb_names(&fn, KT_FUNC_OUTPUT, "y");
    kt_onnx_opset(&fn, KT_FUNC_OPSET_IMPORT, "local", 1);
    kt_onnx_node_head(&node, "Loopy", "local", "self", "x", "y");
    kt_pb_take(&fn, KT_FUNC_NODE, &node);
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "X", 1, "4");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "Y", 1, "4");
    kt_onnx_node_head(&node, "Loopy", "local", "call", "X", "Y");
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    kt_onnx_model(&mb, 10, 13, &g);
    kt_onnx_opset(&mb, KT_MODEL_OPSET_IMPORT, "local", 1);
    kt_pb_take(&mb, KT_MODEL_FUNCTIONS, &fn);
    kl_model *m = NULL;
    kiln_status s = parse(&mb, &m);
    KT_CHECK(s != KILN_OK);
    KT_CHECK_CONTAINS(kl_error_message(), "Loopy");
    kl_model_free(m);
    kt_pb_free(&g);
    kt_pb_free(&mb);
}

int main(void) {
    KT_RUN(test_minimal_model);
    KT_RUN(test_unknown_fields_skipped);
    KT_RUN(test_ai_onnx_domain_normalized);
    KT_RUN(test_ten_byte_varint_and_unpacked_dims);
    KT_RUN(test_initializer_and_optional_input);
    KT_RUN(test_symbolic_dims);
    KT_RUN(test_type_protos);
    KT_RUN(test_attributes_all_types);
    KT_RUN(test_if_subgraphs);
    KT_RUN(test_tensor_raw_and_float_data);
    KT_RUN(test_tensor_int32_data_types);
    KT_RUN(test_tensor_wide_types);
    KT_RUN(test_tensor_strings);
    KT_RUN(test_tensor_bad);
    KT_RUN(test_truncated_varint);
    KT_RUN(test_overlong_varint);
    KT_RUN(test_length_past_end);
    KT_RUN(test_wrong_wire_type);
    KT_RUN(test_negative_dim);
    KT_RUN(test_dim_product_overflow);
    KT_RUN(test_raw_data_short);
    KT_RUN(test_huge_declared_count);
    KT_RUN(test_deep_graph_nesting);
    KT_RUN(test_deep_type_nesting);
    KT_RUN(test_opaque_type);
    KT_RUN(test_empty_and_graphless);
    KT_RUN(test_function_inlining);
    KT_RUN(test_function_recursion);
    return kt_summary();
}
