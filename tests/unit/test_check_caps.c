/*
 * test_check_caps.c — the checker asks its caller which ops can run
 * (kl_check_caps) instead of a backend registry: ops the callback refuses
 * are listed once as "cannot run yet" with their node count and first user;
 * without a callback only schema-less ops are listed; kiln_model_check (the
 * runtime) answers from the CPU kernel registry.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "onnx/onnx.h"
#include "onnxbuild.c" /* not part of kiln_testcommon */

/* What the callback saw and what it refuses. */
typedef struct probe {
    const char *refuse; /* op name refused, NULL: none */
    int calls, relu_calls;
    int64_t relu_opset;
    const char *relu_domain;
} probe;

static bool probe_can_run(const char *domain, const char *op, int64_t opset, void *user) {
    probe *p = user;
    p->calls++;
    if (strcmp(op, "Relu") == 0) {
        p->relu_calls++;
        p->relu_opset = opset;
        p->relu_domain = domain;
    }
    return !(p->refuse && strcmp(op, p->refuse) == 0);
}

/* X -> Relu -> Add(X) -> Relu -> custom op "Frob" (domain com.example) -> Z. */
static void build(kt_pb *mb) {
    kt_pb g = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "X", 1, "2,3");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "Z", 1, "2,3");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r1", "X", "A");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "add", "A,X", "B");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r2", "B", "C");
    kt_pb node = {0};
    kt_onnx_node_head(&node, "Frob", "com.example", "frob", "C", "Z");
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    kt_onnx_model(mb, 8, 14, &g);
    kt_onnx_opset(mb, KT_MODEL_OPSET_IMPORT, "com.example", 1);
    kt_pb_free(&g);
}

static size_t count_unsupported(const kl_check_result *r, const char *needle) {
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += r->items[i].severity == KILN_CHECK_UNSUPPORTED && strstr(r->items[i].message, needle);
    return n;
}

static const kl_problem *find_unsupported(const kl_check_result *r, const char *needle) {
    for (size_t i = 0; i < r->n; i++)
        if (r->items[i].severity == KILN_CHECK_UNSUPPORTED && strstr(r->items[i].message, needle))
            return &r->items[i];
    return NULL;
}

static void test_callback(void) {
    kt_pb mb = {0};
    build(&mb);
    kl_model *m = NULL;
    KT_CHECK_EQ_INT(kl_onnx_parse(mb.data, mb.len, "caps.onnx", NULL, &m), KILN_OK);
    if (!m) {
        kt_pb_free(&mb);
        return;
    }
    /* A callback refusing Relu: one entry for Relu (2 nodes, first r1), one
     * for the schema-less custom op, none for Add. */
    probe p = {.refuse = "Relu"};
    kl_check_caps caps = {probe_can_run, &p};
    kl_check_result *r = NULL;
    KT_CHECK_EQ_INT(kl_check_model_caps(m, &caps, &r), KILN_OK);
    if (r) {
        KT_CHECK_EQ_INT(r->n_errors, 0);
        KT_CHECK_EQ_INT(count_unsupported(r, "op Relu "), 1);
        const kl_problem *q = find_unsupported(r, "op Relu ");
        if (q) {
            KT_CHECK_CONTAINS(q->message, "no kernel for it yet");
            KT_CHECK_CONTAINS(q->message, "2 nodes");
            KT_CHECK_CONTAINS(q->message, "node 0 'r1' (Relu)");
            KT_CHECK_EQ_INT(q->node_index, 0);
        }
        KT_CHECK_EQ_INT(count_unsupported(r, "op Add "), 0);
        KT_CHECK_EQ_INT(count_unsupported(r, "op Frob "), 1);
        KT_CHECK_CONTAINS(find_unsupported(r, "op Frob ") ? find_unsupported(r, "op Frob ")->message : "",
                          "no schema");
        /* Asked once per (domain, op, opset) that has a schema: Relu, Add. */
        KT_CHECK_EQ_INT(p.calls, 2);
        KT_CHECK_EQ_INT(p.relu_calls, 1);
        KT_CHECK_EQ_INT(p.relu_opset, 14);
        KT_CHECK_STR(p.relu_domain ? p.relu_domain : "(null)", "");
    }
    kl_check_free(r);

    /* A callback accepting everything: only the custom op is listed. */
    probe all = {0};
    caps.user = &all;
    r = NULL;
    KT_CHECK_EQ_INT(kl_check_model_caps(m, &caps, &r), KILN_OK);
    if (r) {
        KT_CHECK_EQ_INT(count_unsupported(r, "op Relu "), 0);
        KT_CHECK_EQ_INT(count_unsupported(r, "op Frob "), 1);
        KT_CHECK_EQ_INT(all.calls, 2);
    }
    kl_check_free(r);

    /* No callback (kl_check_model, and NULL caps): same as accepting all. */
    r = NULL;
    KT_CHECK_EQ_INT(kl_check_model(m, &r), KILN_OK);
    if (r) {
        KT_CHECK_EQ_INT(count_unsupported(r, "op Relu "), 0);
        KT_CHECK_EQ_INT(count_unsupported(r, "op Frob "), 1);
    }
    kl_check_free(r);
    r = NULL;
    KT_CHECK_EQ_INT(kl_check_model_caps(m, NULL, &r), KILN_OK);
    if (r) KT_CHECK_EQ_INT(count_unsupported(r, "op "), 1);
    kl_check_free(r);
    kl_model_free(m);
    kt_pb_free(&mb);
}

/* The public checker goes through the runtime, whose callback is the CPU
 * kernel registry: Relu and Add have kernels, the custom op has nothing. */
static void test_runtime_registry(void) {
    kt_pb mb = {0};
    build(&mb);
    kiln_model *model = NULL;
    KT_CHECK_EQ_INT(kiln_model_load_from_memory(mb.data, mb.len, NULL, &model), KILN_OK);
    kiln_check *chk = NULL;
    if (model) KT_CHECK_EQ_INT(kiln_model_check(model, &chk), KILN_OK);
    if (chk) {
        size_t n = 0, unsupported = 0, relu = 0;
        KT_CHECK_EQ_INT(kiln_check_count(chk, &n), KILN_OK);
        for (size_t i = 0; i < n; i++) {
            kiln_check_severity sev;
            const char *msg = NULL;
            int64_t node = -1;
            KT_CHECK_EQ_INT(kiln_check_problem(chk, i, &sev, &node, &msg), KILN_OK);
            if (sev == KILN_CHECK_UNSUPPORTED) unsupported++;
            if (msg && strstr(msg, "op Relu ")) relu++;
        }
        KT_CHECK_EQ_INT(unsupported, 1);
        KT_CHECK_EQ_INT(relu, 0);
    }
    kiln_check_destroy(chk);
    kiln_model_destroy(model);
    kt_pb_free(&mb);
}

int main(void) {
    KT_RUN(test_callback);
    KT_RUN(test_runtime_registry);
    return kt_summary();
}
