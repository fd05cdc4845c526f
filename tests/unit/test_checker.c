/*
 * test_checker.c — unit tests of the model checker (kl_check_model): valid
 * models give no errors; each kind of broken model gives its own error,
 * whose message names the node (index, name, op type) or the value.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "onnx/onnx.h"
#include "backend/kernel.h"
#include "onnxbuild.c" /* not part of kiln_testcommon */

/* ---- helpers ---------------------------------------------------------------- */

/* A parsed and checked model; `bytes` must outlive `m`. */
typedef struct checked {
    kt_pb bytes;
    kl_model *m;
    kl_check_result *r;
} checked;

/* Parse and check the model bytes in c->bytes (taken over from *mb). */
static int run_check(checked *c, kt_pb *mb) {
    c->bytes = *mb;
    *mb = (kt_pb){0};
    c->m = NULL;
    c->r = NULL;
    kl_error_clear();
    kiln_status s = kl_onnx_parse(c->bytes.data, c->bytes.len, "test.onnx", NULL, &c->m);
    KT_CHECK_EQ_INT(s, KILN_OK);
    if (s != KILN_OK) {
        fprintf(stderr, "    parse failed: %s\n", kl_error_message());
        return 0;
    }
    s = kl_check_model(c->m, &c->r);
    KT_CHECK_EQ_INT(s, KILN_OK);
    return s == KILN_OK;
}

static void done(checked *c) {
    kl_check_free(c->r);
    kl_model_free(c->m);
    kt_pb_free(&c->bytes);
}

static const char *sev_name(kiln_check_severity s) {
    return s == KILN_CHECK_ERROR ? "error" : s == KILN_CHECK_WARNING ? "warning" : "unsupported";
}

static void dump(const kl_check_result *r) {
    for (size_t i = 0; r && i < r->n; i++)
        fprintf(stderr, "    [%s node %lld] %s\n", sev_name(r->items[i].severity),
                (long long)r->items[i].node_index, r->items[i].message);
}

/* The first problem of severity `sev` containing needles a and b (b may be NULL). */
static const kl_problem *find(const kl_check_result *r, kiln_check_severity sev, const char *a,
                              const char *b) {
    for (size_t i = 0; r && i < r->n; i++) {
        const kl_problem *p = &r->items[i];
        if (p->severity == sev && strstr(p->message, a) && (!b || strstr(p->message, b)))
            return p;
    }
    return NULL;
}

static size_t count_sev(const kl_check_result *r, kiln_check_severity sev) {
    size_t n = 0;
    for (size_t i = 0; r && i < r->n; i++) n += r->items[i].severity == sev;
    return n;
}

/* Expect an error with both needles; check its node index; dump on failure. */
static void expect_error(const checked *c, const char *a, const char *b, int64_t node_index) {
    const kl_problem *p = find(c->r, KILN_CHECK_ERROR, a, b);
    KT_CHECK(p != NULL);
    if (!p) {
        fprintf(stderr, "    expected an error with \"%s\"%s%s%s, got:\n", a, b ? " and \"" : "",
                b ? b : "", b ? "\"" : "");
        dump(c->r);
        return;
    }
    KT_CHECK_EQ_INT(p->node_index, node_index);
}

static void expect_no_errors(const checked *c) {
    KT_CHECK_EQ_INT(c->r ? c->r->n_errors : 99, 0);
    KT_CHECK_EQ_INT(count_sev(c->r, KILN_CHECK_ERROR), 0);
    if (c->r && c->r->n_errors) dump(c->r);
}

/* Start a graph named "g" with float input X[2,3] and output `out` [2,3]. */
static void graph_begin(kt_pb *g, const char *out) {
    kt_pb_string_field(g, KT_GRAPH_NAME, "g");
    kt_onnx_io(g, KT_GRAPH_INPUT, "X", 1, "2,3");
    kt_onnx_io(g, KT_GRAPH_OUTPUT, out, 1, "2,3");
}

/* IR 8, opset 13 model of graph g (freed). */
static void model_end(kt_pb *mb, kt_pb *g) {
    kt_onnx_model(mb, 8, 13, g);
    kt_pb_free(g);
}

/* ---- valid models ------------------------------------------------------------------ */

static void test_valid_model(void) {
    kt_pb g = {0}, mb = {0}, node = {0}, t = {0};
    graph_begin(&g, "Z");
    const int64_t dims[2] = {2, 3};
    const float w[6] = {1, 2, 3, 4, 5, 6};
    kt_onnx_tensor_f32(&t, "W", dims, 2, w, 6, 1);
    kt_pb_take(&g, KT_GRAPH_INITIALIZER, &t);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "add", "X,W", "A");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "relu1", "A", "B");
    kt_onnx_node_head(&node, "LeakyRelu", NULL, "lrelu", "B", "C");
    kt_onnx_attr_f(&node, "alpha", 0.1f);
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    kt_onnx_node_head(&node, "Cast", NULL, "cast", "C", "D");
    kt_onnx_attr_i(&node, "to", KILN_DTYPE_FLOAT);
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "relu2", "D", "E");
    kt_onnx_node_head(&node, "Concat", NULL, "concat", "E", "Z");
    kt_onnx_attr_i(&node, "axis", 0);
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    model_end(&mb, &g);
    checked c;
    if (run_check(&c, &mb)) {
        expect_no_errors(&c);
        KT_CHECK_EQ_INT(count_sev(c.r, KILN_CHECK_WARNING), 0);
        /* Every op kiln cannot run is listed once, with its first user; an
         * op with a kernel in the registry is not listed. */
        const kl_problem *p = find(c.r, KILN_CHECK_UNSUPPORTED, "op Relu ", NULL);
        size_t relu_entries = 0;
        for (size_t i = 0; i < c.r->n; i++) relu_entries += strstr(c.r->items[i].message, "op Relu ") != NULL;
        if (kl_kernel_exists("", "Relu", 13)) {
            KT_CHECK(p == NULL);
            KT_CHECK_EQ_INT(relu_entries, 0);
        } else {
            KT_CHECK(p != NULL);
            if (p) {
                KT_CHECK_CONTAINS(p->message, "domain 'ai.onnx', opset 13");
                KT_CHECK_CONTAINS(p->message, "cannot run yet");
                KT_CHECK_CONTAINS(p->message, "2 nodes");
                KT_CHECK_CONTAINS(p->message, "node 1 'relu1' (Relu)");
                KT_CHECK_EQ_INT(p->node_index, 1);
            }
            KT_CHECK_EQ_INT(relu_entries, 1);
        }
        static const char *const ops[] = {"Add", "Relu", "LeakyRelu", "Cast", "Concat"};
        int missing = 0;
        for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) missing += !kl_kernel_exists("", ops[i], 13);
        KT_CHECK_EQ_INT(count_sev(c.r, KILN_CHECK_UNSUPPORTED), missing);
    }
    done(&c);
}

/* If whose branches read an outer value; Loop with a body. */
static void build_control_model(kt_pb *mb, const char *body_extra_attr) {
    kt_pb g = {0}, node = {0}, thn = {0}, els = {0}, body = {0};
    kt_pb_string_field(&thn, KT_GRAPH_NAME, "then");
    kt_onnx_node(&thn, KT_GRAPH_NODE, "Identity", "t0", "X", "a");
    kt_onnx_io(&thn, KT_GRAPH_OUTPUT, "a", 1, "2,3");
    kt_pb_string_field(&els, KT_GRAPH_NAME, "else");
    kt_onnx_node(&els, KT_GRAPH_NODE, "Neg", "e0", "X", "b");
    kt_onnx_io(&els, KT_GRAPH_OUTPUT, "b", 1, "2,3");
    kt_pb_string_field(&body, KT_GRAPH_NAME, "body");
    kt_onnx_io(&body, KT_GRAPH_INPUT, "i", 7, "");
    kt_onnx_io(&body, KT_GRAPH_INPUT, "cin", 9, "");
    kt_onnx_io(&body, KT_GRAPH_INPUT, "x", 1, "2,3");
    kt_onnx_io(&body, KT_GRAPH_OUTPUT, "cout", 9, "");
    kt_onnx_io(&body, KT_GRAPH_OUTPUT, "xo", 1, "2,3");
    kt_onnx_node(&body, KT_GRAPH_NODE, "Identity", "b0", "cin", "cout");
    kt_onnx_node(&body, KT_GRAPH_NODE, "Neg", "b1", "x", "xn");
    kt_onnx_node_head(&node, "LeakyRelu", NULL, "lr", "xn", "xo");
    if (body_extra_attr) kt_onnx_attr_f(&node, body_extra_attr, 1.0f);
    kt_pb_take(&body, KT_GRAPH_NODE, &node);

    graph_begin(&g, "Y");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "C", 9, "");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "M", 7, "");
    kt_onnx_node_head(&node, "If", NULL, "if0", "C", "I");
    kt_onnx_attr_g(&node, "then_branch", &thn);
    kt_onnx_attr_g(&node, "else_branch", &els);
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r1", "I", "I2");
    kt_onnx_node_head(&node, "Loop", NULL, "loop", "M,C,I2", "Y");
    kt_onnx_attr_g(&node, "body", &body);
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    model_end(mb, &g);
    kt_pb_free(&thn);
    kt_pb_free(&els);
    kt_pb_free(&body);
}

static void test_valid_control_flow(void) {
    kt_pb mb = {0};
    build_control_model(&mb, NULL);
    checked c;
    if (run_check(&c, &mb)) {
        expect_no_errors(&c);
        /* Ops inside subgraphs are listed too, with the main-graph node (when
         * no kernel exists for them). */
        const kl_problem *p = find(c.r, KILN_CHECK_UNSUPPORTED, "op Identity ", NULL);
        KT_CHECK((p != NULL) == !kl_kernel_exists("", "Identity", 13));
        if (p) {
            KT_CHECK_CONTAINS(p->message, "node 0 'if0' (If) then_branch: node 0 't0' (Identity)");
            KT_CHECK_EQ_INT(p->node_index, 0);
        }
        p = find(c.r, KILN_CHECK_UNSUPPORTED, "op LeakyRelu ", NULL);
        KT_CHECK(kl_kernel_exists("", "LeakyRelu", 13) ? p == NULL : (p && p->node_index == 2));
        /* An op no backend knows (a custom domain) is always listed. */
    }
    done(&c);
}

/* ---- broken models ------------------------------------------------------------------ */

static void test_undefined_input(void) {
    kt_pb g = {0}, mb = {0};
    graph_begin(&g, "Y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r0", "X", "A");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "add1", "A,ghost", "Y");
    model_end(&mb, &g);
    checked c;
    if (run_check(&c, &mb)) {
        expect_error(&c, "node 1 'add1' (Add): input 1 'ghost' is never produced", NULL, 1);
        KT_CHECK(c.r->n_errors >= 1);
    }
    done(&c);
}

static void test_out_of_order(void) {
    kt_pb g = {0}, mb = {0};
    graph_begin(&g, "Y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "late", "T", "Y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Neg", "early", "X", "T");
    model_end(&mb, &g);
    checked c;
    if (run_check(&c, &mb)) {
        expect_error(&c, "node 0 'late' (Relu): input 0 'T' is used before it is produced by node 1 (Neg)",
                     "topological order", 0);
        KT_CHECK(find(c.r, KILN_CHECK_ERROR, "never produced", NULL) == NULL);
    }
    done(&c);
}

static void test_duplicate_output(void) {
    kt_pb g = {0}, mb = {0};
    graph_begin(&g, "Y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "first", "X", "T");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Neg", "second", "X", "T");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "last", "T", "Y");
    model_end(&mb, &g);
    checked c;
    if (run_check(&c, &mb)) {
        expect_error(&c, "'second' (Neg)", "output 'T'", 1);
        /* reported once, not by both the reader and the checker */
        size_t n = 0;
        for (size_t i = 0; i < c.r->n; i++)
            n += c.r->items[i].severity == KILN_CHECK_ERROR && strstr(c.r->items[i].message, "'T'");
        KT_CHECK_EQ_INT(n, 1);
        if (n != 1) dump(c.r);
    }
    done(&c);
    /* a node output named like a graph input */
    graph_begin(&g, "Y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "clobber", "X", "X");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r", "X", "Y");
    model_end(&mb, &g);
    if (run_check(&c, &mb)) expect_error(&c, "'clobber' (Relu)", "output 'X'", 0);
    done(&c);
}

static void test_unknown_attribute(void) {
    kt_pb g = {0}, mb = {0}, node = {0};
    graph_begin(&g, "Y");
    kt_onnx_node_head(&node, "LeakyRelu", NULL, "lr", "X", "Y");
    kt_onnx_attr_f(&node, "alpha", 0.2f);
    kt_onnx_attr_f(&node, "alhpa", 0.2f);
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    model_end(&mb, &g);
    checked c;
    if (run_check(&c, &mb)) {
        expect_error(&c, "node 0 'lr' (LeakyRelu): unknown attribute 'alhpa'", NULL, 0);
        KT_CHECK_EQ_INT(c.r->n_errors, 1);
    }
    done(&c);
}

static void test_wrong_attribute_type(void) {
    kt_pb g = {0}, mb = {0}, node = {0};
    graph_begin(&g, "Y");
    kt_onnx_node_head(&node, "LeakyRelu", NULL, "lr", "X", "Y");
    kt_onnx_attr_i(&node, "alpha", 1);
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    model_end(&mb, &g);
    checked c;
    if (run_check(&c, &mb)) {
        expect_error(&c, "node 0 'lr' (LeakyRelu): attribute 'alpha' has type INT, expected FLOAT",
                     NULL, 0);
        KT_CHECK_EQ_INT(c.r->n_errors, 1);
    }
    done(&c);
}

static void test_missing_required_attribute(void) {
    kt_pb g = {0}, mb = {0};
    graph_begin(&g, "Y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r", "X", "A");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Cast", "cast", "A", "Y");
    model_end(&mb, &g);
    checked c;
    if (run_check(&c, &mb)) expect_error(&c, "node 1 'cast' (Cast): required attribute 'to'", "missing", 1);
    done(&c);
    graph_begin(&g, "Y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Concat", "cat", "X,X", "Y");
    model_end(&mb, &g);
    if (run_check(&c, &mb)) expect_error(&c, "node 0 'cat' (Concat): required attribute 'axis'", "missing", 0);
    done(&c);
}

static void test_wrong_input_count(void) {
    kt_pb g = {0}, mb = {0};
    graph_begin(&g, "Y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r2", "X,X", "Y");
    model_end(&mb, &g);
    checked c;
    if (run_check(&c, &mb)) expect_error(&c, "node 0 'r2' (Relu): has 2 inputs, expected 1", NULL, 0);
    done(&c);
    graph_begin(&g, "Y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "add3", "X,X,X", "Y");
    model_end(&mb, &g);
    if (run_check(&c, &mb)) expect_error(&c, "node 0 'add3' (Add): has 3 inputs, expected 2", NULL, 0);
    done(&c);
    graph_begin(&g, "Y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "add1", "X", "Y");
    model_end(&mb, &g);
    if (run_check(&c, &mb)) expect_error(&c, "node 0 'add1' (Add): has 1 inputs, expected 2", NULL, 0);
    done(&c);
    /* too many outputs; a required input left empty */
    graph_begin(&g, "Y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r", "X", "Y,Y2");
    model_end(&mb, &g);
    if (run_check(&c, &mb)) expect_error(&c, "node 0 'r' (Relu): has 2 outputs, expected 1", NULL, 0);
    done(&c);
    graph_begin(&g, "Y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "addx", ",X", "Y");
    model_end(&mb, &g);
    if (run_check(&c, &mb)) expect_error(&c, "node 0 'addx' (Add): required input 0 is empty", NULL, 0);
    done(&c);
}

static void test_initializer_size_mismatch(void) {
    kt_pb g = {0}, mb = {0}, t = {0};
    graph_begin(&g, "Y");
    const int64_t dims[2] = {2, 3};
    kt_onnx_tensor_head(&t, "W", 1, dims, 2, 1);
    kt_pb_bytes_field(&t, KT_TENSOR_RAW_DATA, "\0\0\0\0\0\0\0\0", 8);
    kt_pb_take(&g, KT_GRAPH_INITIALIZER, &t);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "add", "X,W", "Y");
    model_end(&mb, &g);
    checked c;
    if (run_check(&c, &mb)) {
        expect_error(&c, "'W'", "raw_data", -1);
        const kl_problem *p = find(c.r, KILN_CHECK_ERROR, "'W'", NULL);
        if (p) {
            KT_CHECK_CONTAINS(p->message, "8");
            KT_CHECK_CONTAINS(p->message, "24");
        }
        size_t n = 0;
        for (size_t i = 0; i < c.r->n; i++) n += strstr(c.r->items[i].message, "'W'") != NULL;
        KT_CHECK_EQ_INT(n, 1);
        if (n != 1) dump(c.r);
    }
    done(&c);
}

static void test_output_never_produced(void) {
    kt_pb g = {0}, mb = {0};
    graph_begin(&g, "Y");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "Orphan", 1, "2,3");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r", "X", "Y");
    model_end(&mb, &g);
    checked c;
    if (run_check(&c, &mb)) {
        expect_error(&c, "graph output 'Orphan' is never produced", NULL, -1);
        KT_CHECK_EQ_INT(c.r->n_errors, 1);
    }
    done(&c);
}

static void test_missing_opset_import(void) {
    kt_pb g = {0}, mb = {0};
    graph_begin(&g, "Y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r", "X", "Y");
    kt_onnx_model(&mb, 8, 0, &g);
    kt_pb_free(&g);
    checked c;
    if (run_check(&c, &mb)) {
        expect_error(&c, "opset_import is missing", "IR version 8", -1);
        expect_error(&c, "node 0 'r' (Relu): domain 'ai.onnx' is not imported", NULL, 0);
    }
    done(&c);
    /* IR 2 models had no opset_import: ai.onnx version 1 is implied */
    graph_begin(&g, "Y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r", "X", "Y");
    kt_onnx_model(&mb, 2, 0, &g);
    kt_pb_free(&g);
    if (run_check(&c, &mb)) {
        KT_CHECK(find(c.r, KILN_CHECK_ERROR, "opset_import", NULL) == NULL);
        KT_CHECK(find(c.r, KILN_CHECK_ERROR, "not imported", NULL) == NULL);
    }
    done(&c);
}

static void test_unknown_ir_version(void) {
    kt_pb g = {0}, mb = {0};
    graph_begin(&g, "Y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r", "X", "Y");
    kt_onnx_model(&mb, 99, 13, &g);
    kt_pb_free(&g);
    checked c;
    if (run_check(&c, &mb)) {
        expect_error(&c, "unknown IR version 99", NULL, -1);
        KT_CHECK_EQ_INT(c.r->n_errors, 1);
    }
    done(&c);
    /* IR version 14 (onnx 1.23's default) is known */
    graph_begin(&g, "Y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r", "X", "Y");
    kt_onnx_model(&mb, 14, 13, &g);
    kt_pb_free(&g);
    if (run_check(&c, &mb)) KT_CHECK(find(c.r, KILN_CHECK_ERROR, "IR version", NULL) == NULL);
    done(&c);
    /* no ir_version at all */
    graph_begin(&g, "Y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r", "X", "Y");
    kt_onnx_opset(&mb, KT_MODEL_OPSET_IMPORT, "", 13);
    kt_pb_take(&mb, KT_MODEL_GRAPH, &g);
    if (run_check(&c, &mb)) expect_error(&c, "ir_version is not set", NULL, -1);
    done(&c);
}

static void test_input_without_type(void) {
    kt_pb g = {0}, mb = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "X", -1, NULL); /* no type field */
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "Y", 1, "2");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r", "X", "Y");
    model_end(&mb, &g);
    checked c;
    if (run_check(&c, &mb)) {
        expect_error(&c, "input 'X' has no type", NULL, -1);
        KT_CHECK_EQ_INT(c.r->n_errors, 1);
    }
    done(&c);
    /* a tensor type without elem_type, on an input and an output */
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "X", 0, "2");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "Y", 0, "2");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r", "X", "Y");
    model_end(&mb, &g);
    if (run_check(&c, &mb)) expect_error(&c, "graph input 'X' has no element type", NULL, -1);
    done(&c);
    /* an output without type */
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "X", 1, "2");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "Y", -1, NULL);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r", "X", "Y");
    model_end(&mb, &g);
    if (run_check(&c, &mb)) expect_error(&c, "output 'Y' has no type", NULL, -1);
    done(&c);
}

static void test_opset_versions(void) {
    kt_pb g = {0}, mb = {0};
    graph_begin(&g, "Y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r", "X", "Y");
    kt_onnx_model(&mb, 8, 99, &g);
    kt_pb_free(&g);
    checked c;
    if (run_check(&c, &mb)) expect_error(&c, "unknown opset version 99 of domain 'ai.onnx'", NULL, -1);
    done(&c);
    /* a domain imported twice with different versions */
    graph_begin(&g, "Y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r", "X", "Y");
    kt_onnx_model(&mb, 8, 13, &g);
    kt_onnx_opset(&mb, KT_MODEL_OPSET_IMPORT, "com.x", 1);
    kt_onnx_opset(&mb, KT_MODEL_OPSET_IMPORT, "com.x", 2);
    kt_pb_free(&g);
    if (run_check(&c, &mb)) expect_error(&c, "'com.x'", "twice", -1);
    done(&c);
    /* a node in a domain the model does not import */
    kt_pb node = {0};
    graph_begin(&g, "Y");
    kt_onnx_node_head(&node, "Foo", "com.y", "foo", "X", "Y");
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    model_end(&mb, &g);
    if (run_check(&c, &mb)) expect_error(&c, "node 0 'foo' (com.y:Foo): domain 'com.y' is not imported", NULL, 0);
    done(&c);
}

/* A custom op: listed as unsupported, not an error. */
static void test_custom_op_unsupported(void) {
    kt_pb g = {0}, mb = {0}, node = {0};
    graph_begin(&g, "Y");
    kt_onnx_node_head(&node, "Foo", "com.x", "foo", "X", "Y");
    kt_onnx_attr_i(&node, "anything", 3);
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    kt_onnx_model(&mb, 8, 13, &g);
    kt_onnx_opset(&mb, KT_MODEL_OPSET_IMPORT, "com.x", 4);
    kt_pb_free(&g);
    checked c;
    if (run_check(&c, &mb)) {
        expect_no_errors(&c);
        const kl_problem *p = find(c.r, KILN_CHECK_UNSUPPORTED, "op Foo (domain 'com.x', opset 4)",
                                   "cannot run yet");
        KT_CHECK(p != NULL);
        if (p) {
            KT_CHECK_CONTAINS(p->message, "no schema");
            KT_CHECK_CONTAINS(p->message, "node 0 'foo' (com.x:Foo)");
            KT_CHECK_EQ_INT(p->node_index, 0);
        }
    }
    done(&c);
}

static void test_ir3_initializer_not_input(void) {
    kt_pb g = {0}, mb = {0}, t = {0};
    graph_begin(&g, "Y");
    const int64_t dims[2] = {2, 3};
    const float w[6] = {0};
    kt_onnx_tensor_f32(&t, "W", dims, 2, w, 6, 0);
    kt_pb_take(&g, KT_GRAPH_INITIALIZER, &t);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "add", "X,W", "Y");
    kt_onnx_model(&mb, 3, 7, &g);
    kt_pb_free(&g);
    checked c;
    if (run_check(&c, &mb)) expect_error(&c, "initializer 'W' is not a graph input", "IR version 4", -1);
    done(&c);
}

static void test_graph_without_name(void) {
    kt_pb g = {0}, mb = {0};
    kt_onnx_io(&g, KT_GRAPH_INPUT, "X", 1, "2");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "Y", 1, "2");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r", "X", "Y");
    model_end(&mb, &g);
    checked c;
    if (run_check(&c, &mb)) expect_error(&c, "graph has no name", NULL, -1);
    done(&c);
}

/* Errors inside subgraphs carry the path of nodes that leads to them and
 * the index of the main-graph node. */
static void test_subgraph_errors(void) {
    kt_pb mb = {0};
    build_control_model(&mb, "bogus");
    checked c;
    if (run_check(&c, &mb))
        expect_error(&c, "node 2 'loop' (Loop) body: node 2 'lr' (LeakyRelu): unknown attribute 'bogus'",
                     NULL, 2);
    done(&c);
    /* an undefined value in a then_branch */
    kt_pb g = {0}, node = {0}, thn = {0}, els = {0};
    kt_pb_string_field(&thn, KT_GRAPH_NAME, "then");
    kt_onnx_node(&thn, KT_GRAPH_NODE, "Identity", "t0", "nowhere", "a");
    kt_onnx_io(&thn, KT_GRAPH_OUTPUT, "a", 1, "2,3");
    kt_pb_string_field(&els, KT_GRAPH_NAME, "else");
    kt_onnx_node(&els, KT_GRAPH_NODE, "Identity", "e0", "X", "b");
    kt_onnx_io(&els, KT_GRAPH_OUTPUT, "b", 1, "2,3");
    graph_begin(&g, "Y");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "C", 9, "");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r", "X", "R");
    kt_onnx_node_head(&node, "If", NULL, "if1", "C", "Y");
    kt_onnx_attr_g(&node, "then_branch", &thn);
    kt_onnx_attr_g(&node, "else_branch", &els);
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    model_end(&mb, &g);
    if (run_check(&c, &mb))
        expect_error(&c,
                     "node 1 'if1' (If) then_branch: node 0 't0' (Identity): input 0 'nowhere' is "
                     "never produced",
                     "enclosing graph", 1);
    done(&c);
    kt_pb_free(&thn);
    kt_pb_free(&els);
    /* a subgraph that reads a value its enclosing graph produces only later */
    kt_pb_string_field(&thn, KT_GRAPH_NAME, "then");
    kt_onnx_node(&thn, KT_GRAPH_NODE, "Identity", "t0", "Later", "a");
    kt_onnx_io(&thn, KT_GRAPH_OUTPUT, "a", 1, "2,3");
    kt_pb_string_field(&els, KT_GRAPH_NAME, "else");
    kt_onnx_node(&els, KT_GRAPH_NODE, "Identity", "e0", "X", "b");
    kt_onnx_io(&els, KT_GRAPH_OUTPUT, "b", 1, "2,3");
    graph_begin(&g, "Y");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "C", 9, "");
    kt_onnx_node_head(&node, "If", NULL, "if0", "C", "I");
    kt_onnx_attr_g(&node, "then_branch", &thn);
    kt_onnx_attr_g(&node, "else_branch", &els);
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "mk", "X", "Later");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "add", "I,Later", "Y");
    model_end(&mb, &g);
    if (run_check(&c, &mb))
        expect_error(&c, "node 0 'if0' (If) then_branch: node 0 't0' (Identity): input 0 'Later'",
                     "used before it is produced by node 1 (Relu)", 0);
    done(&c);
    kt_pb_free(&thn);
    kt_pb_free(&els);
}

/* A sparse initializer's indices must be in range and increasing. */
static void sparse_model(kt_pb *mb, const int64_t *idx, size_t n, int rank2) {
    kt_pb g = {0}, sp = {0}, v = {0}, ix = {0};
    graph_begin(&g, "Y");
    const float vals[2] = {1, 2};
    const int64_t vd[1] = {(int64_t)n};
    kt_onnx_tensor_f32(&v, "S", vd, 1, vals, n, 0);
    const int64_t id1[1] = {(int64_t)n}, id2[2] = {(int64_t)n, 2};
    kt_onnx_tensor_head(&ix, NULL, KILN_DTYPE_INT64, rank2 ? id2 : id1, rank2 ? 2 : 1, 1);
    kt_pb_packed_i64(&ix, KT_TENSOR_INT64_DATA, idx, rank2 ? 2 * n : n);
    kt_pb_take(&sp, KT_SPARSE_VALUES, &v);
    kt_pb_take(&sp, KT_SPARSE_INDICES, &ix);
    const int64_t dims[2] = {2, 3};
    kt_pb_packed_i64(&sp, KT_SPARSE_DIMS, dims, 2);
    kt_pb_take(&g, KT_GRAPH_SPARSE_INITIALIZER, &sp);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "add", "X,S", "Y");
    model_end(mb, &g);
}

static void test_sparse_initializer(void) {
    kt_pb mb = {0};
    checked c;
    const int64_t ok1[2] = {1, 5};
    sparse_model(&mb, ok1, 2, 0);
    if (run_check(&c, &mb)) {
        expect_no_errors(&c);
        const kl_value *s = kl_graph_lookup(c.m->graph, "S");
        KT_CHECK(s && s->sparse_init);
    }
    done(&c);
    const int64_t ok2[4] = {0, 2, 1, 0};
    sparse_model(&mb, ok2, 2, 1);
    if (run_check(&c, &mb)) expect_no_errors(&c);
    done(&c);
    const int64_t far[2] = {1, 6};
    sparse_model(&mb, far, 2, 0);
    if (run_check(&c, &mb)) expect_error(&c, "initializer 'S'", "index 6 at position 1 is out of range [0, 6)", -1);
    done(&c);
    const int64_t unsorted[2] = {4, 2};
    sparse_model(&mb, unsorted, 2, 0);
    if (run_check(&c, &mb)) expect_error(&c, "initializer 'S'", "not in increasing order", -1);
    done(&c);
    const int64_t far2[4] = {0, 1, 2, 0};
    sparse_model(&mb, far2, 2, 1);
    if (run_check(&c, &mb)) expect_error(&c, "initializer 'S'", "index 2 of dimension 0", -1);
    done(&c);
}

/* A model-local function with a broken body: checked in its own right. */
static void test_function_body(void) {
    kt_pb fn = {0}, g = {0}, mb = {0}, node = {0};
    kt_pb_string_field(&fn, KT_FUNC_NAME, "Unused");
    kt_pb_string_field(&fn, KT_FUNC_DOMAIN, "local");
    kt_pb_names(&fn, KT_FUNC_INPUT, "x");
    kt_pb_names(&fn, KT_FUNC_OUTPUT, "y");
    kt_onnx_opset(&fn, KT_FUNC_OPSET_IMPORT, "", 13);
    kt_onnx_node(&fn, KT_FUNC_NODE, "Add", "a", "x,undefined_in_fn", "y");
    graph_begin(&g, "Y");
    kt_onnx_node_head(&node, "Relu", NULL, "r", "X", "Y");
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    kt_onnx_model(&mb, 10, 13, &g);
    kt_onnx_opset(&mb, KT_MODEL_OPSET_IMPORT, "local", 1);
    kt_pb_take(&mb, KT_MODEL_FUNCTIONS, &fn);
    kt_pb_free(&g);
    checked c;
    if (run_check(&c, &mb))
        expect_error(&c, "function 'Unused' (domain 'local'): node 0 'a' (Add): input 1 'undefined_in_fn'",
                     "never produced", -1);
    done(&c);
}

/* Load problems come first, then the checker's; n_errors counts both. */
static void test_problem_order(void) {
    kt_pb g = {0}, mb = {0};
    graph_begin(&g, "Y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "first", "X", "T");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Neg", "second", "X", "T");  /* reader: duplicate */
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "third", "T,ghost", "Y"); /* checker: undefined */
    model_end(&mb, &g);
    checked c;
    if (run_check(&c, &mb)) {
        KT_CHECK(c.m->n_problems >= 1);
        KT_CHECK(c.r->n >= c.m->n_problems + 1);
        for (size_t i = 0; i < c.m->n_problems && i < c.r->n; i++) {
            KT_CHECK_STR(c.r->items[i].message, c.m->problems[i].message);
            KT_CHECK_EQ_INT(c.r->items[i].severity, c.m->problems[i].severity);
            KT_CHECK_EQ_INT(c.r->items[i].node_index, c.m->problems[i].node_index);
        }
        const kl_problem *ghost = find(c.r, KILN_CHECK_ERROR, "'ghost'", NULL);
        KT_CHECK(ghost && ghost >= c.r->items + c.m->n_problems);
        KT_CHECK_EQ_INT(c.r->n_errors, count_sev(c.r, KILN_CHECK_ERROR));
    }
    done(&c);
}

static void test_null_arguments(void) {
    kl_check_result *r = NULL;
    KT_CHECK_EQ_INT(kl_check_model(NULL, &r), KILN_ERR_INVALID_ARGUMENT);
    kl_check_free(NULL);
}

/* Out of memory at every allocation of the checker: a clean failure. */
static void test_out_of_memory(void) {
    kt_pb mb = {0};
    build_control_model(&mb, "bogus");
    kl_model *m = NULL;
    KT_CHECK_EQ_INT(kl_onnx_parse(mb.data, mb.len, "test.onnx", NULL, &m), KILN_OK);
    if (m) {
        kl_check_result *r = NULL;
        kl_alloc_fail_at(0);
        KT_CHECK_EQ_INT(kl_check_model(m, &r), KILN_OK);
        long total = kl_alloc_count();
        kl_check_free(r);
        for (long i = 1; i <= total; i++) {
            kl_alloc_fail_at(i);
            r = NULL;
            kiln_status s = kl_check_model(m, &r);
            kl_alloc_fail_at(0);
            KT_CHECK_EQ_INT(s, KILN_ERR_NO_MEMORY);
            KT_CHECK(r == NULL);
        }
        kl_model_free(m);
    }
    kt_pb_free(&mb);
}

int main(void) {
    KT_RUN(test_valid_model);
    KT_RUN(test_valid_control_flow);
    KT_RUN(test_undefined_input);
    KT_RUN(test_out_of_order);
    KT_RUN(test_duplicate_output);
    KT_RUN(test_unknown_attribute);
    KT_RUN(test_wrong_attribute_type);
    KT_RUN(test_missing_required_attribute);
    KT_RUN(test_wrong_input_count);
    KT_RUN(test_initializer_size_mismatch);
    KT_RUN(test_output_never_produced);
    KT_RUN(test_missing_opset_import);
    KT_RUN(test_unknown_ir_version);
    KT_RUN(test_input_without_type);
    KT_RUN(test_opset_versions);
    KT_RUN(test_custom_op_unsupported);
    KT_RUN(test_ir3_initializer_not_input);
    KT_RUN(test_graph_without_name);
    KT_RUN(test_subgraph_errors);
    KT_RUN(test_sparse_initializer);
    KT_RUN(test_function_body);
    KT_RUN(test_problem_order);
    KT_RUN(test_null_arguments);
    KT_RUN(test_out_of_memory);
    return kt_summary();
}
