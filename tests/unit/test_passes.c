/*
 * test_passes.c — the IR edit API, the pass driver and the CNN-side passes
 * (src/passes/).  Each pass test builds a small ONNX graph, loads it twice,
 * optimizes one copy, checks the node types that remain, and runs both
 * copies through kl_program_create/kl_program_run on the same inputs: the
 * optimized graph's outputs must match the unoptimized graph's (the
 * reference kernels are the oracle) within a tight tolerance.  The zoo
 * check runs resnet50/resnet18/mobilenet_v2/efficientnet_b0 from
 * models/out (when exported) against PyTorch's reference outputs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "onnxbuild.c"
#include "onnx/onnx.h"
#include "ops/kiln.h"
#include "passes/passes_internal.h"
#include "runtime/exec.h"
#include "graphtest.h"

/* ---- helpers ---------------------------------------------------------------------------- */

/* A loaded model and the bytes it points into. */
typedef struct tmodel {
    kt_pb bytes;
    kl_model *m;
} tmodel;

/* First live node of op type (kiln domain when prefixed "kiln."). */
static const kl_node *find_op(const kl_model *m, const char *op) {
    const char *dot = strchr(op, '.');
    for (size_t i = 0; i < m->graph->n_nodes; i++) {
        const kl_node *nd = m->graph->nodes[i];
        if (dot ? (!strncmp(nd->domain, op, (size_t)(dot - op)) && !strcmp(nd->op_type, dot + 1))
                : (!nd->domain[0] && !strcmp(nd->op_type, op)))
            return nd;
    }
    return NULL;
}

static uint64_t g_seed = 12345;
static float rnd(void) {
    g_seed = g_seed * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_seed >> 40) & 0xffffff) / (float)0xffffff * 4.0f - 2.0f;
}

/* Random float inputs for every non-initializer graph input (static shapes,
 * symbolic dims taken as 2). */
static size_t make_inputs(const kl_model *m, kl_rt **in, size_t cap) {
    size_t n = 0;
    const kl_graph *g = m->graph;
    g_seed = 777;
    for (size_t i = 0; i < g->n_inputs && n < cap; i++) {
        const kl_value *v = g->inputs[i];
        if (v->flags & KL_VALUE_INITIALIZER) continue;
        int64_t dims[KILN_MAX_RANK];
        for (int d = 0; d < v->type.shape.rank; d++)
            dims[d] = v->type.shape.dims[d].value >= 0 ? v->type.shape.dims[d].value : 2;
        kl_rt *t = NULL;
        if (kl_rt_tensor(v->type.elem, v->type.shape.rank, dims, &t) != KILN_OK) return n;
        if (t->dtype == KILN_DTYPE_FLOAT)
            for (int64_t k = 0; k < t->count; k++) ((float *)t->data)[k] = rnd();
        in[n++] = t;
    }
    return n;
}

/* Run m on in[0..n_in); outputs into out[] (caller unrefs). */
static kiln_status run_model(const kl_model *m, kl_rt **in, size_t n_in, kl_rt **out, size_t n_out) {
    kl_program *p = NULL;
    kiln_status s = kl_program_create(m, 1, &p);
    if (!s) s = kl_program_run(p, in, n_in, out, n_out);
    if (s) fprintf(stderr, "    run failed: %s\n", kiln_last_error());
    kl_program_free(p);
    return s;
}

/* Max |a-b| / max(1, max|a|) over every float output of the two models. */
static double compare_models(const kl_model *a, const kl_model *b) {
    kl_rt *in[8] = {0}, *oa[8] = {0}, *ob[8] = {0};
    size_t n_in = make_inputs(a, in, 8), n_out = a->graph->n_outputs;
    double worst = 1e30;
    if (n_out > 8 || n_out != b->graph->n_outputs) return worst;
    if (run_model(a, in, n_in, oa, n_out) == KILN_OK && run_model(b, in, n_in, ob, n_out) == KILN_OK) {
        worst = 0;
        for (size_t k = 0; k < n_out; k++) {
            if (oa[k]->count != ob[k]->count || oa[k]->dtype != ob[k]->dtype || oa[k]->rank != ob[k]->rank) {
                worst = 1e30;
                continue;
            }
            double mx = 1, d = 0;
            for (int64_t i = 0; i < oa[k]->count; i++) {
                double x = kl_rt_get_f64(oa[k], i), y = kl_rt_get_f64(ob[k], i);
                mx = fmax(mx, fabs(x));
                d = fmax(d, fabs(x - y));
                if (isnan(x) != isnan(y)) d = 1e30;
            }
            worst = fmax(worst, d / mx);
        }
    }
    for (size_t i = 0; i < 8; i++) {
        kl_rt_unref(in[i]);
        kl_rt_unref(oa[i]);
        kl_rt_unref(ob[i]);
    }
    return worst;
}

/* Log lines collected from the driver. */
typedef struct logbuf {
    char text[8192];
    int lines;
} logbuf;

static void log_fn(void *user, const char *line) {
    logbuf *l = user;
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof l->text - n, "%s\n", line);
    l->lines++;
}

/* The passes of this file (the table also holds the transformer passes,
 * tested in their own file): unit tests disable every other pass. */
static const char *const my_passes[] = {"remove_identity", "fold_shapes", "fold_constants", "remove_dead",
                                        "fuse_bn", "fuse_conv_add", "fuse_activation", "fuse_conv_dw",
                                        "fuse_se_conv"};
static const char *g_others[64];

/* Options with every pass outside my_passes disabled, plus `extra`. */
static kl_pass_options mine(const char *extra) {
    kl_pass_options o;
    memset(&o, 0, sizeof o);
    o.rewrite_limit = -1;
    size_t n = 0;
    for (size_t i = 0; i < kl_pass_count() && n < 63; i++) {
        bool ours = false;
        for (size_t k = 0; k < KL_ARRAY_LEN(my_passes); k++) ours |= !strcmp(kl_pass_name(i), my_passes[k]);
        if (!ours) g_others[n++] = kl_pass_name(i);
    }
    if (extra) g_others[n++] = extra;
    o.disabled = g_others;
    o.n_disabled = n;
    return o;
}

/* Load the model built in mb twice, optimize the second copy with options o,
 * compare outputs; returns the optimized model (the reference in *ref). */
static kl_model *optimize(kt_pb *mb, const kl_pass_options *o, kl_model **ref, double *err, kl_pass_stats *st) {
    *ref = load_bytes(mb);
    kl_model *m = load_bytes(mb);
    *err = 1e30;
    if (!*ref || !m) return m;
    kl_pass_stats local;
    kl_pass_options dflt = mine(NULL);
    kiln_status s = kl_passes_run(m, o ? o : &dflt, st ? st : &local);
    KT_CHECK_EQ_INT(s, KILN_OK);
    if (s) {
        fprintf(stderr, "    passes failed: %s\n", kiln_last_error());
        return m;
    }
    KT_CHECK_EQ_INT(kl_graph_verify(m->graph), KILN_OK);
    *err = compare_models(*ref, m);
    return m;
}

/* ---- graph builders --------------------------------------------------------------------- */

static void add_f32(kt_pb *g, const char *name, const int64_t *dims, int rank, float lo, float hi) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = lo + (hi - lo) * (rnd() + 2.0f) / 4.0f;
    kt_pb t = {0};
    kt_onnx_tensor_f32(&t, name, dims, rank, v, (size_t)n, 1);
    kt_pb_take(g, KT_GRAPH_INITIALIZER, &t);
    free(v);
}

static void add_scalar(kt_pb *g, const char *name, float v) {
    kt_pb t = {0};
    kt_onnx_tensor_f32(&t, name, NULL, 0, &v, 1, 1);
    kt_pb_take(g, KT_GRAPH_INITIALIZER, &t);
}

static void add_i64(kt_pb *g, const char *name, const int64_t *v, int64_t n, int rank) {
    kt_pb t = {0};
    int64_t dims[1] = {n};
    kt_onnx_tensor_head(&t, name, KILN_DTYPE_INT64, dims, rank, 0);
    kt_pb_bytes_field(&t, 9 /* raw_data */, v, (size_t)n * 8);
    kt_pb_take(g, KT_GRAPH_INITIALIZER, &t);
}

/* BatchNormalization params prefix_{s,b,m,v} of C channels. */
static void add_bn_params(kt_pb *g, const char *prefix, int64_t C) {
    char n[64];
    snprintf(n, sizeof n, "%s_s", prefix);
    add_f32(g, n, &C, 1, 0.5f, 1.5f);
    snprintf(n, sizeof n, "%s_b", prefix);
    add_f32(g, n, &C, 1, -0.5f, 0.5f);
    snprintf(n, sizeof n, "%s_m", prefix);
    add_f32(g, n, &C, 1, -0.3f, 0.3f);
    snprintf(n, sizeof n, "%s_v", prefix);
    add_f32(g, n, &C, 1, 0.5f, 2.0f);
}

static void node_bn(kt_pb *g, const char *name, const char *x, const char *prefix, const char *y) {
    char ins[256];
    snprintf(ins, sizeof ins, "%s,%s_s,%s_b,%s_m,%s_v", x, prefix, prefix, prefix, prefix);
    kt_onnx_node(g, KT_GRAPH_NODE, "BatchNormalization", name, ins, y);
}

/* Conv with pads 1 (3x3 kernel). */
static void node_conv(kt_pb *g, const char *name, const char *ins, const char *y, int64_t group) {
    kt_pb n = {0};
    kt_onnx_node_head(&n, "Conv", NULL, name, ins, y);
    int64_t pads[4] = {1, 1, 1, 1};
    kt_onnx_attr_ints(&n, "pads", pads, 4);
    if (group != 1) kt_onnx_attr_i(&n, "group", group);
    kt_pb_take(g, KT_GRAPH_NODE, &n);
}

static void finish(kt_pb *mb, kt_pb *g, int64_t opset) {
    kt_onnx_model(mb, 8, opset, g);
    kt_pb_free(g);
}

/* ---- IR edit API ------------------------------------------------------------------------------- */

/* x -> Relu(r) -> Neg(y); three values, a graph output. */
static void build_small(kt_pb *mb) {
    kt_pb g = {0};
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "2,3");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "relu", "x", "r");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Neg", "neg", "r", "y");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, "2,3");
    finish(mb, &g, 13);
}

static void test_edit_api(void) {
    kt_pb mb = {0};
    build_small(&mb);
    kl_model *m = load_bytes(&mb);
    KT_CHECK(m != NULL);
    if (!m) return;
    kl_graph *g = m->graph;
    KT_CHECK_EQ_INT(kl_graph_build_uses(g), KILN_OK);
    KT_CHECK_EQ_INT(kl_graph_verify(g), KILN_OK);
    kl_value *x = kl_graph_lookup(g, "x"), *r = kl_graph_lookup(g, "r"), *y = kl_graph_lookup(g, "y");
    KT_CHECK_EQ_INT(x->n_uses, 1);
    KT_CHECK(x->uses[0].node == g->nodes[0]);
    KT_CHECK(kl_value_only_use(g, r) == g->nodes[1]);
    KT_CHECK(kl_value_only_use(g, y) == NULL); /* graph output */
    KT_CHECK(kl_value_escapes(g, y));
    /* A new Abs node between relu and neg: neg reads abs(r). */
    kl_value *a;
    KT_CHECK_EQ_INT(kl_value_new(g, "r", &r->type, &a), KILN_OK);
    KT_CHECK_STR(a->name, "r_k1"); /* unique */
    kl_value *in[1] = {r};
    kl_node *abs_node;
    KT_CHECK_EQ_INT(kl_node_new(g, "abs", "Abs", "", in, 1, &a, 1, NULL, 0, NULL, g->nodes[1], &abs_node), KILN_OK);
    KT_CHECK_EQ_INT(kl_node_infer(m, abs_node), KILN_OK);
    KT_CHECK_EQ_INT(abs_node->index, 1);
    KT_CHECK_EQ_INT(kl_node_set_input(g->nodes[2], 0, a), KILN_OK);
    KT_CHECK_EQ_INT(kl_graph_verify(g), KILN_OK);
    KT_CHECK_EQ_INT(r->n_uses, 1);
    KT_CHECK_EQ_INT(a->n_uses, 1);
    /* A type change is refused. */
    kl_type bad = a->type;
    kl_value *b;
    bad.elem = KILN_DTYPE_DOUBLE;
    KT_CHECK_EQ_INT(kl_value_new(g, "b", &bad, &b), KILN_OK);
    KT_CHECK(!kl_value_can_replace(g, a, b));
    KT_CHECK_EQ_INT(kl_value_replace(g, a, b), KILN_ERR_INTERNAL);
    KT_CHECK_CONTAINS(kiln_last_error(), "'r_k1'");
    /* A static shape change is refused too. */
    kl_type bad2;
    KT_CHECK_EQ_INT(kl_type_copy(&m->arena, &a->type, &bad2), KILN_OK);
    bad2.shape.dims[1].value = 4;
    KT_CHECK_EQ_INT(kl_value_new(g, "c", &bad2, &b), KILN_OK);
    KT_CHECK(!kl_value_can_replace(g, a, b));
    /* Replace the graph output y by r (neg removed): the name "y" survives. */
    kl_node *neg = g->nodes[2];
    kl_node_remove(neg);
    KT_CHECK_EQ_INT(kl_value_replace(g, y, a), KILN_OK);
    KT_CHECK_EQ_INT(kl_graph_verify(g), KILN_OK);
    KT_CHECK(y->producer == abs_node);
    KT_CHECK_EQ_INT(kl_graph_compact(g), KILN_OK);
    KT_CHECK_EQ_INT(g->n_nodes, 2);
    KT_CHECK_STR(g->outputs[0]->name, "y");
    KT_CHECK_EQ_INT(kl_graph_verify(g), KILN_OK);
    /* Runs: y = abs(relu(x)). */
    kl_rt *xin = NULL, *out = NULL;
    int64_t dims[2] = {2, 3};
    kl_rt_tensor(KILN_DTYPE_FLOAT, 2, dims, &xin);
    for (int i = 0; i < 6; i++) ((float *)xin->data)[i] = (float)(i - 3);
    KT_CHECK_EQ_INT(run_model(m, &xin, 1, &out, 1), KILN_OK);
    if (out)
        for (int i = 0; i < 6; i++) KT_CHECK(((float *)out->data)[i] == (float)(i > 3 ? i - 3 : 0));
    kl_rt_unref(xin);
    kl_rt_unref(out);
    kl_model_free(m);
    kt_pb_free(&mb);
}

static void test_verify_catches(void) {
    kt_pb mb = {0};
    build_small(&mb);
    kl_model *m = load_bytes(&mb);
    if (!m) return;
    kl_graph *g = m->graph;
    KT_CHECK_EQ_INT(kl_graph_build_uses(g), KILN_OK);
    /* 1. A node removed without rewiring its reader. */
    kl_node_remove(g->nodes[0]);
    KT_CHECK_EQ_INT(kl_graph_verify(g), KILN_ERR_INTERNAL);
    KT_CHECK_CONTAINS(kiln_last_error(), "input 0 'r' is never produced");
    g->nodes[0]->removed = false;
    g->nodes[0]->outputs[0]->producer = g->nodes[0];
    KT_CHECK_EQ_INT(kl_graph_build_uses(g), KILN_OK);
    KT_CHECK_EQ_INT(kl_graph_verify(g), KILN_OK);
    /* 2. Order: neg before relu. */
    kl_node *t = g->nodes[0];
    g->nodes[0] = g->nodes[1];
    g->nodes[1] = t;
    g->nodes[0]->index = 0;
    g->nodes[1]->index = 1;
    KT_CHECK_EQ_INT(kl_graph_verify(g), KILN_ERR_INTERNAL);
    KT_CHECK_CONTAINS(kiln_last_error(), "does not come before");
    /* compaction restores the topological order */
    KT_CHECK_EQ_INT(kl_graph_compact(g), KILN_OK);
    KT_CHECK_EQ_INT(kl_graph_verify(g), KILN_OK);
    KT_CHECK_STR(g->nodes[0]->name, "relu");
    /* 3. An edge changed behind the consumer lists' back. */
    kl_value *x = kl_graph_lookup(g, "x");
    g->nodes[1]->inputs[0] = x;
    KT_CHECK_EQ_INT(kl_graph_verify(g), KILN_ERR_INTERNAL);
    KT_CHECK_CONTAINS(kiln_last_error(), "consumer list");
    g->nodes[1]->inputs[0] = kl_graph_lookup(g, "r");
    KT_CHECK_EQ_INT(kl_graph_verify(g), KILN_OK);
    /* 4. Two producers of one value. */
    kl_value *r = kl_graph_lookup(g, "r");
    g->nodes[1]->outputs[0] = r;
    KT_CHECK_EQ_INT(kl_graph_verify(g), KILN_ERR_INTERNAL);
    g->nodes[1]->outputs[0] = kl_graph_lookup(g, "y");
    /* 5. A graph output nobody produces. */
    kl_node_remove(g->nodes[1]);
    KT_CHECK_EQ_INT(kl_graph_verify(g), KILN_ERR_INTERNAL);
    KT_CHECK_CONTAINS(kiln_last_error(), "graph output 'y'");
    kl_model_free(m);
    kt_pb_free(&mb);
}

/* ---- fuse_bn / fuse_activation / fuse_conv_add -------------------------------------------------------- */

/* x[1,3,8,8] -> conv1 (W, B) -> bn1 -> relu1 -> y */
static void build_conv_bn_relu(kt_pb *mb, bool bias) {
    kt_pb g = {0};
    g_seed = 1;
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "1,3,8,8");
    int64_t wd[4] = {4, 3, 3, 3}, bd[1] = {4};
    add_f32(&g, "w", wd, 4, -0.5f, 0.5f);
    if (bias) add_f32(&g, "b", bd, 1, -0.5f, 0.5f);
    add_bn_params(&g, "bn1", 4);
    node_conv(&g, "conv1", bias ? "x,w,b" : "x,w", "c", 1);
    node_bn(&g, "bn1", "c", "bn1", "n");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "relu1", "n", "y");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, "1,4,8,8");
    finish(mb, &g, 13);
}

static void test_conv_bn_relu(void) {
    for (int bias = 0; bias < 2; bias++) {
        kt_pb mb = {0};
        build_conv_bn_relu(&mb, bias);
        kl_model *ref, *m;
        double err;
        logbuf lb = {{0}, 0};
        kl_pass_options o = mine(NULL);
        o.log = log_fn;
        o.log_user = &lb;
        kl_pass_stats st;
        m = optimize(&mb, &o, &ref, &err, &st);
        if (!m || !ref) continue;
        KT_CHECK_EQ_INT(m->graph->n_nodes, 1);
        KT_CHECK_EQ_INT(count_op(m, "kiln.FusedConv"), 1);
        const kl_node *f = find_op(m, "kiln.FusedConv");
        if (f) {
            KT_CHECK_STR(f->fused_from, "conv1+bn1+relu1");
            KT_CHECK_EQ_INT(kl_node_attr_int(f, "activation", -1), KL_ACT_RELU);
        }
        KT_CHECK(err < 1e-5);
        KT_CHECK_EQ_INT(st.nodes_before, 3);
        KT_CHECK_EQ_INT(st.nodes_after, 1);
        KT_CHECK_CONTAINS(lb.text, "fuse_bn: conv1+bn1\n");
        KT_CHECK_CONTAINS(lb.text, "fuse_activation: conv1+bn1+relu1\n");
        KT_CHECK_EQ_INT(kl_model_opset(m, "kiln"), 1);
        /* Unused BN parameters and the old weights are gone. */
        KT_CHECK(kl_graph_lookup(m->graph, "bn1_s") == NULL || !(kl_graph_lookup(m->graph, "bn1_s")->flags & KL_VALUE_INITIALIZER));
        KT_CHECK_EQ_INT(m->graph->n_initializers, 2);
        if (err >= 1e-5) fprintf(stderr, "    bias %d: err %g\n", bias, err);
        kl_model_free(ref);
        kl_model_free(m);
        kt_pb_free(&mb);
    }
}

/* A ResNet basic block: x[1,4,6,6] -> conva -> bna -> relua -> convb -> bnb ->
 * add(x) -> relu -> y. */
static void build_resblock(kt_pb *mb) {
    kt_pb g = {0};
    g_seed = 2;
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "1,4,6,6");
    int64_t wd[4] = {4, 4, 3, 3};
    add_f32(&g, "wa", wd, 4, -0.4f, 0.4f);
    add_f32(&g, "wb", wd, 4, -0.4f, 0.4f);
    add_bn_params(&g, "bna", 4);
    add_bn_params(&g, "bnb", 4);
    node_conv(&g, "conva", "x,wa", "ca", 1);
    node_bn(&g, "bna", "ca", "bna", "na");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "relua", "na", "ra");
    node_conv(&g, "convb", "ra,wb", "cb", 1);
    node_bn(&g, "bnb", "cb", "bnb", "nb");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "add", "nb,x", "s");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "relu", "s", "y");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, "1,4,6,6");
    finish(mb, &g, 13);
}

static void test_resblock(void) {
    kt_pb mb = {0};
    build_resblock(&mb);
    kl_model *ref, *m;
    double err;
    m = optimize(&mb, NULL, &ref, &err, NULL);
    if (m && ref) {
        KT_CHECK_EQ_INT(m->graph->n_nodes, 2);
        KT_CHECK_EQ_INT(count_op(m, "kiln.FusedConv"), 2);
        KT_CHECK_EQ_INT(count_op(m, "Add") + count_op(m, "Relu") + count_op(m, "BatchNormalization"), 0);
        const kl_node *last = m->graph->nodes[1];
        KT_CHECK_STR(last->fused_from, "convb+bnb+add+relu");
        KT_CHECK_EQ_INT(last->n_inputs, 4);
        KT_CHECK(last->n_inputs == 4 && last->inputs[3] && !strcmp(last->inputs[3]->name, "x"));
        KT_CHECK_EQ_INT(kl_node_attr_int(last, "activation", -1), KL_ACT_RELU);
        KT_CHECK(err < 1e-5);
    }
    kl_model_free(ref);
    kl_model_free(m);
    kt_pb_free(&mb);
}

/* ConvTranspose (group g) -> BN. */
static void test_convtranspose_bn(void) {
    for (int64_t group = 1; group <= 2; group++) {
        kt_pb mb = {0}, g = {0};
        g_seed = 3;
        kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "1,4,5,5");
        int64_t wd[4] = {4, 3, 3, 3}, bd[1] = {3 * group};
        add_f32(&g, "w", wd, 4, -0.5f, 0.5f);
        add_f32(&g, "b", bd, 1, -0.5f, 0.5f);
        add_bn_params(&g, "bn", 3 * group);
        kt_pb n = {0};
        kt_onnx_node_head(&n, "ConvTranspose", NULL, "ct", "x,w,b", "c");
        int64_t strides[2] = {2, 2};
        kt_onnx_attr_ints(&n, "strides", strides, 2);
        kt_onnx_attr_i(&n, "group", group);
        kt_pb_take(&g, KT_GRAPH_NODE, &n);
        node_bn(&g, "bn", "c", "bn", "y");
        kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, NULL);
        finish(&mb, &g, 13);
        kl_model *ref, *m;
        double err;
        m = optimize(&mb, NULL, &ref, &err, NULL);
        if (m && ref) {
            KT_CHECK_EQ_INT(m->graph->n_nodes, 1);
            KT_CHECK_EQ_INT(count_op(m, "ConvTranspose"), 1);
            KT_CHECK(err < 1e-5);
            if (err >= 1e-5) fprintf(stderr, "    group %lld: err %g\n", (long long)group, err);
        }
        kl_model_free(ref);
        kl_model_free(m);
        kt_pb_free(&mb);
    }
}

/* Gemm (transB 0/1, with/without C) -> BN -> Sigmoid. */
static void test_gemm_bn_act(void) {
    for (int v = 0; v < 4; v++) {
        int tb = v & 1, has_c = v >> 1;
        kt_pb mb = {0}, g = {0};
        g_seed = 4 + (uint64_t)v;
        kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "3,5");
        int64_t wd[2] = {tb ? 6 : 5, tb ? 5 : 6}, cd[1] = {6};
        add_f32(&g, "w", wd, 2, -0.5f, 0.5f);
        if (has_c) add_f32(&g, "c", cd, 1, -0.5f, 0.5f);
        add_bn_params(&g, "bn", 6);
        kt_pb n = {0};
        kt_onnx_node_head(&n, "Gemm", NULL, "fc", has_c ? "x,w,c" : "x,w", "h");
        kt_onnx_attr_i(&n, "transB", tb);
        kt_onnx_attr_f(&n, "alpha", 0.75f);
        kt_onnx_attr_f(&n, "beta", 1.5f);
        kt_pb_take(&g, KT_GRAPH_NODE, &n);
        node_bn(&g, "bn", "h", "bn", "hb");
        kt_onnx_node(&g, KT_GRAPH_NODE, "Sigmoid", "sig", "hb", "y");
        kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, "3,6");
        finish(&mb, &g, 13);
        kl_model *ref, *m;
        double err;
        m = optimize(&mb, NULL, &ref, &err, NULL);
        if (m && ref) {
            KT_CHECK_EQ_INT(m->graph->n_nodes, 1);
            KT_CHECK_EQ_INT(count_op(m, "kiln.FusedGemm"), 1);
            const kl_node *f = find_op(m, "kiln.FusedGemm");
            if (f) KT_CHECK_STR(f->fused_from, "fc+bn+sig");
            KT_CHECK(err < 1e-5);
            if (err >= 1e-5) fprintf(stderr, "    gemm variant %d: err %g\n", v, err);
        }
        kl_model_free(ref);
        kl_model_free(m);
        kt_pb_free(&mb);
    }
}

/* Activation spellings after a Conv: each must fuse into one FusedConv with
 * the expected kl_act, giving the same outputs. */
typedef struct act_case {
    const char *name;
    kl_act act;
    int opset;
} act_case;

static void add_act_nodes(kt_pb *g, int which) {
    kt_pb n = {0};
    switch (which) {
    case 0: kt_onnx_node(g, KT_GRAPH_NODE, "Relu", "a", "c", "y"); break;
    case 1: /* Clip(0, 6) as inputs */
        add_scalar(g, "lo", 0.0f);
        add_scalar(g, "hi", 6.0f);
        kt_onnx_node(g, KT_GRAPH_NODE, "Clip", "a", "c,lo,hi", "y");
        break;
    case 2:
        kt_onnx_node_head(&n, "LeakyRelu", NULL, "a", "c", "y");
        kt_onnx_attr_f(&n, "alpha", 0.1f);
        kt_pb_take(g, KT_GRAPH_NODE, &n);
        break;
    case 3: kt_onnx_node(g, KT_GRAPH_NODE, "Sigmoid", "a", "c", "y"); break;
    case 4: /* SiLU */
        kt_onnx_node(g, KT_GRAPH_NODE, "Sigmoid", "s", "c", "sg");
        kt_onnx_node(g, KT_GRAPH_NODE, "Mul", "a", "c,sg", "y");
        break;
    case 5: kt_onnx_node(g, KT_GRAPH_NODE, "HardSigmoid", "a", "c", "y"); break;
    case 6: kt_onnx_node(g, KT_GRAPH_NODE, "HardSwish", "a", "c", "y"); break;
    case 7: /* GELU erf, torch's export order */
        add_scalar(g, "sq2", 1.4142135381698608f);
        add_scalar(g, "one", 1.0f);
        add_scalar(g, "half", 0.5f);
        kt_onnx_node(g, KT_GRAPH_NODE, "Div", "g1", "c,sq2", "t1");
        kt_onnx_node(g, KT_GRAPH_NODE, "Erf", "g2", "t1", "t2");
        kt_onnx_node(g, KT_GRAPH_NODE, "Add", "g3", "t2,one", "t3");
        kt_onnx_node(g, KT_GRAPH_NODE, "Mul", "g4", "c,t3", "t4");
        kt_onnx_node(g, KT_GRAPH_NODE, "Mul", "a", "t4,half", "y");
        break;
    case 8: /* GELU tanh */
        add_scalar(g, "three", 3.0f);
        add_scalar(g, "k1", 0.044715f);
        add_scalar(g, "k2", 0.7978845834732056f);
        add_scalar(g, "one", 1.0f);
        add_scalar(g, "half", 0.5f);
        kt_onnx_node(g, KT_GRAPH_NODE, "Mul", "h0", "c,half", "u0");
        kt_onnx_node(g, KT_GRAPH_NODE, "Pow", "h1", "c,three", "u1");
        kt_onnx_node(g, KT_GRAPH_NODE, "Mul", "h2", "u1,k1", "u2");
        kt_onnx_node(g, KT_GRAPH_NODE, "Add", "h3", "c,u2", "u3");
        kt_onnx_node(g, KT_GRAPH_NODE, "Mul", "h4", "u3,k2", "u4");
        kt_onnx_node(g, KT_GRAPH_NODE, "Tanh", "h5", "u4", "u5");
        kt_onnx_node(g, KT_GRAPH_NODE, "Add", "h6", "u5,one", "u6");
        kt_onnx_node(g, KT_GRAPH_NODE, "Mul", "a", "u0,u6", "y");
        break;
    case 9: /* Mish */
        kt_onnx_node(g, KT_GRAPH_NODE, "Softplus", "m1", "c", "v1");
        kt_onnx_node(g, KT_GRAPH_NODE, "Tanh", "m2", "v1", "v2");
        kt_onnx_node(g, KT_GRAPH_NODE, "Mul", "a", "c,v2", "y");
        break;
    case 10: kt_onnx_node(g, KT_GRAPH_NODE, "Tanh", "a", "c", "y"); break;
    case 11: /* Gelu op (opset 20), tanh form */
        kt_onnx_node_head(&n, "Gelu", NULL, "a", "c", "y");
        kt_onnx_attr_s(&n, "approximate", "tanh");
        kt_pb_take(g, KT_GRAPH_NODE, &n);
        break;
    case 12: /* HardSwish written as x * HardSigmoid(x; 1/6, 0.5) */
        kt_onnx_node_head(&n, "HardSigmoid", NULL, "hs", "c", "w1");
        kt_onnx_attr_f(&n, "alpha", 1.0f / 6.0f);
        kt_pb_take(g, KT_GRAPH_NODE, &n);
        kt_onnx_node(g, KT_GRAPH_NODE, "Mul", "a", "w1,c", "y");
        break;
    }
}

static void test_activations(void) {
    static const act_case cases[] = {
        {"relu", KL_ACT_RELU, 13},        {"clip", KL_ACT_CLIP, 13},          {"leaky_relu", KL_ACT_LEAKY_RELU, 13},
        {"sigmoid", KL_ACT_SIGMOID, 13},  {"silu", KL_ACT_SILU, 13},          {"hard_sigmoid", KL_ACT_HARD_SIGMOID, 13},
        {"hard_swish", KL_ACT_HARD_SWISH, 14}, {"gelu_erf", KL_ACT_GELU_ERF, 13}, {"gelu_tanh", KL_ACT_GELU_TANH, 13},
        {"mish", KL_ACT_MISH, 13},        {"tanh", KL_ACT_TANH, 13},          {"gelu_op", KL_ACT_GELU_TANH, 20},
        {"hard_swish_dec", KL_ACT_HARD_SWISH, 13},
    };
    for (size_t i = 0; i < KL_ARRAY_LEN(cases); i++) {
        kt_pb mb = {0}, g = {0};
        g_seed = 10 + i;
        kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "1,2,5,5");
        int64_t wd[4] = {3, 2, 3, 3}, bd[1] = {3};
        add_f32(&g, "w", wd, 4, -1.0f, 1.0f);
        add_f32(&g, "b", bd, 1, -0.5f, 0.5f);
        node_conv(&g, "conv", "x,w,b", "c", 1);
        add_act_nodes(&g, (int)i);
        kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, "1,3,5,5");
        finish(&mb, &g, cases[i].opset);
        kl_model *ref, *m;
        double err;
        m = optimize(&mb, NULL, &ref, &err, NULL);
        kt_current = cases[i].name;
        if (m && ref) {
            KT_CHECK_EQ_INT(m->graph->n_nodes, 1);
            const kl_node *f = find_op(m, "kiln.FusedConv");
            KT_CHECK(f != NULL);
            if (f) KT_CHECK_EQ_INT(kl_node_attr_int(f, "activation", -1), cases[i].act);
            /* Same formulas as the ONNX kernels: the one-op cases are bit-exact. */
            double tol = (i <= 6 || i == 10 || i == 11) ? 0.0 : 1e-6;
            KT_CHECK(err <= tol);
            if (err > tol) fprintf(stderr, "    %s: err %g\n", cases[i].name, err);
        }
        kl_model_free(ref);
        kl_model_free(m);
        kt_pb_free(&mb);
    }
    kt_current = "test_activations";
}

/* Conv -> Mul(per-channel scale) -> Add(per-channel shift) -> Relu: the
 * scale and shift fold into the weights and bias (decomposed BN exports). */
static void test_affine(void) {
    kt_pb mb = {0}, g = {0};
    g_seed = 70;
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "1,2,5,5");
    int64_t wd[4] = {3, 2, 3, 3}, bd[1] = {3}, sd[4] = {1, 3, 1, 1}, hd[3] = {3, 1, 1};
    add_f32(&g, "w", wd, 4, -1.0f, 1.0f);
    add_f32(&g, "b", bd, 1, -0.5f, 0.5f);
    add_f32(&g, "scale", sd, 4, 0.5f, 1.5f);
    add_f32(&g, "shift", hd, 3, -0.5f, 0.5f);
    node_conv(&g, "conv", "x,w,b", "c", 1);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Mul", "mul", "scale,c", "m");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "add", "m,shift", "a");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "relu", "a", "y");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, "1,3,5,5");
    finish(&mb, &g, 13);
    kl_model *ref, *m;
    double err;
    m = optimize(&mb, NULL, &ref, &err, NULL);
    if (m && ref) {
        KT_CHECK_EQ_INT(m->graph->n_nodes, 1);
        const kl_node *f = find_op(m, "kiln.FusedConv");
        KT_CHECK(f != NULL);
        if (f) KT_CHECK_STR(f->fused_from, "conv+mul+add+relu");
        KT_CHECK(err < 1e-5);
        if (err >= 1e-5) fprintf(stderr, "    affine: err %g\n", err);
    }
    kl_model_free(ref);
    kl_model_free(m);
    kt_pb_free(&mb);
}

/* An activation whose input is read elsewhere too is not fused; a Conv+Add
 * of a broadcast bias is not a residual. */
static void test_no_fusion(void) {
    kt_pb mb = {0}, g = {0};
    g_seed = 40;
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "1,2,5,5");
    int64_t wd[4] = {3, 2, 3, 3}, bd[4] = {1, 3, 1, 1};
    add_f32(&g, "w", wd, 4, -1.0f, 1.0f);
    add_f32(&g, "bias", bd, 4, -1.0f, 1.0f);
    node_conv(&g, "conv", "x,w", "c", 1);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "relu", "c", "y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "add", "c,bias", "z");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, "1,3,5,5");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "z", KILN_DTYPE_FLOAT, "1,3,5,5");
    finish(&mb, &g, 13);
    kl_model *ref, *m;
    double err;
    m = optimize(&mb, NULL, &ref, &err, NULL);
    if (m && ref) {
        KT_CHECK_EQ_INT(m->graph->n_nodes, 3);
        KT_CHECK_EQ_INT(count_op(m, "Conv"), 1);
        KT_CHECK(err == 0.0);
    }
    kl_model_free(ref);
    kl_model_free(m);
    kt_pb_free(&mb);
}

/* ---- remove_identity ---------------------------------------------------------------------------- */

static void test_remove_identity(void) {
    kt_pb mb = {0}, g = {0};
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "2,3,4");
    int64_t shp[3] = {2, 3, 4};
    add_i64(&g, "shape", shp, 3, 1);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Identity", "id1", "x", "a");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Dropout", "drop", "a", "b");
    kt_pb n = {0};
    kt_onnx_node_head(&n, "Cast", NULL, "cast", "b", "c");
    kt_onnx_attr_i(&n, "to", KILN_DTYPE_FLOAT);
    kt_pb_take(&g, KT_GRAPH_NODE, &n);
    kt_pb t1 = {0}, t2 = {0};
    int64_t p1[3] = {2, 0, 1}, p2[3] = {1, 2, 0};
    kt_onnx_node_head(&t1, "Transpose", NULL, "tr1", "c", "d");
    kt_onnx_attr_ints(&t1, "perm", p1, 3);
    kt_pb_take(&g, KT_GRAPH_NODE, &t1);
    kt_onnx_node_head(&t2, "Transpose", NULL, "tr2", "d", "e");
    kt_onnx_attr_ints(&t2, "perm", p2, 3);
    kt_pb_take(&g, KT_GRAPH_NODE, &t2);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Reshape", "rs", "e,shape", "f");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "relu", "f", "r");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Identity", "id2", "r", "y"); /* graph output: name kept */
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, "2,3,4");
    finish(&mb, &g, 13);
    kl_model *ref, *m;
    double err;
    m = optimize(&mb, NULL, &ref, &err, NULL);
    if (m && ref) {
        KT_CHECK_EQ_INT(m->graph->n_nodes, 1);
        KT_CHECK_EQ_INT(count_op(m, "Relu"), 1);
        KT_CHECK_STR(m->graph->outputs[0]->name, "y");
        KT_CHECK(m->graph->nodes[0]->inputs[0] == kl_graph_lookup(m->graph, "x"));
        KT_CHECK(err == 0.0);
    }
    kl_model_free(ref);
    kl_model_free(m);
    kt_pb_free(&mb);
}

/* Identity from a graph input straight to a graph output stays (names). */
static void test_identity_io(void) {
    kt_pb mb = {0}, g = {0};
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "2");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Identity", "id", "x", "y");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, "2");
    finish(&mb, &g, 13);
    kl_model *ref, *m;
    double err;
    m = optimize(&mb, NULL, &ref, &err, NULL);
    if (m && ref) {
        KT_CHECK_EQ_INT(m->graph->n_nodes, 1);
        KT_CHECK(err == 0.0);
    }
    kl_model_free(ref);
    kl_model_free(m);
    kt_pb_free(&mb);
}

/* ---- folding ------------------------------------------------------------------------------------- */

/* y = x * (Constant(2) + c3) -> y = x * const5; a RandomUniform is kept. */
static void build_fold(kt_pb *mb) {
    kt_pb g = {0};
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "2,3");
    int64_t d[2] = {2, 3};
    g_seed = 50;
    add_f32(&g, "c3", d, 2, 1.0f, 3.0f);
    kt_pb n = {0}, t = {0};
    float two = 2.0f;
    kt_onnx_tensor_f32(&t, "", NULL, 0, &two, 1, 1);
    kt_onnx_node_head(&n, "Constant", NULL, "k", "", "k2");
    kt_onnx_attr_t(&n, "value", &t);
    kt_pb_free(&t);
    kt_pb_take(&g, KT_GRAPH_NODE, &n);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "add", "k2,c3", "s");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Mul", "mul", "x,s", "y");
    kt_pb r = {0};
    kt_onnx_node_head(&r, "RandomUniform", NULL, "rnd", "", "ru");
    kt_onnx_attr_ints(&r, "shape", d, 2);
    kt_onnx_attr_f(&r, "seed", 1.0f);
    kt_pb_take(&g, KT_GRAPH_NODE, &r);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Mul", "mul0", "ru,c3", "z");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Neg", "dead", "c3", "unused");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, "2,3");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "z", KILN_DTYPE_FLOAT, "2,3");
    finish(mb, &g, 13);
}

static void test_fold_constants(void) {
    kt_pb mb = {0};
    build_fold(&mb);
    kl_model *ref, *m;
    double err;
    logbuf lb = {{0}, 0};
    kl_pass_options o = mine(NULL);
    o.log = log_fn;
    o.log_user = &lb;
    m = optimize(&mb, &o, &ref, &err, NULL);
    if (m && ref) {
        KT_CHECK_EQ_INT(count_op(m, "Constant") + count_op(m, "Add") + count_op(m, "Neg"), 0);
        KT_CHECK_EQ_INT(count_op(m, "RandomUniform"), 1);
        KT_CHECK_EQ_INT(count_op(m, "Mul"), 2);
        kl_value *s = kl_graph_lookup(m->graph, "s");
        KT_CHECK(s && (s->flags & KL_VALUE_INITIALIZER));
        if (s && s->init) {
            const kl_tensor *c3 = kl_graph_lookup(ref->graph, "c3")->init;
            for (int i = 0; i < 6; i++) KT_CHECK(kl_tensor_get_f64(s->init, i) == (double)(2.0f + (float)kl_tensor_get_f64(c3, i)));
        }
        KT_CHECK_CONTAINS(lb.text, "fold_constants: add (Add), 24 bytes");
        KT_CHECK_CONTAINS(lb.text, "remove_dead: dead (Neg)");
        /* y only: z is random (seeded, so equal too) */
        KT_CHECK(err == 0.0);
    }
    kl_model_free(ref);
    kl_model_free(m);
    /* A budget of 8 bytes folds nothing of 24 bytes. */
    o.fold_budget = 8;
    o.log = NULL;
    m = optimize(&mb, &o, &ref, &err, NULL);
    if (m) KT_CHECK_EQ_INT(count_op(m, "Add"), 1);
    kl_model_free(ref);
    kl_model_free(m);
    kt_pb_free(&mb);
}

/* A graph output computed from constants only becomes an initializer that
 * the program returns; Clip-6 (attributes) and a left-side residual fuse. */
static void test_fold_output_and_variants(void) {
    kt_pb mb = {0}, g = {0};
    int64_t d[1] = {4};
    g_seed = 60;
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "4");
    add_f32(&g, "c1", d, 1, -1.0f, 1.0f);
    add_f32(&g, "c2", d, 1, -1.0f, 1.0f);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "add", "c1,c2", "y");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Neg", "neg", "x", "z");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, "4");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "z", KILN_DTYPE_FLOAT, "4");
    finish(&mb, &g, 13);
    kl_model *ref, *m;
    double err;
    m = optimize(&mb, NULL, &ref, &err, NULL);
    if (m && ref) {
        KT_CHECK_EQ_INT(m->graph->n_nodes, 1);
        KT_CHECK(m->graph->outputs[0]->flags & KL_VALUE_INITIALIZER);
        KT_CHECK_STR(m->graph->outputs[0]->name, "y");
        KT_CHECK(err == 0.0);
    }
    kl_model_free(ref);
    kl_model_free(m);
    kt_pb_free(&mb);
    /* Opset 6: Clip with min/max attributes after a Conv whose output is the
     * right-hand side of a residual Add with the input on the left. */
    mb = (kt_pb){0};
    g = (kt_pb){0};
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "1,3,4,4");
    int64_t wd[4] = {3, 3, 3, 3};
    add_f32(&g, "w", wd, 4, -0.5f, 0.5f);
    node_conv(&g, "conv", "x,w", "c", 1);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "add", "x,c", "s");
    kt_pb n = {0};
    kt_onnx_node_head(&n, "Clip", NULL, "clip", "s", "y");
    kt_onnx_attr_f(&n, "min", -0.25f);
    kt_onnx_attr_f(&n, "max", 0.5f);
    kt_pb_take(&g, KT_GRAPH_NODE, &n);
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, "1,3,4,4");
    finish(&mb, &g, 6);
    m = optimize(&mb, NULL, &ref, &err, NULL);
    if (m && ref) {
        KT_CHECK_EQ_INT(m->graph->n_nodes, 1);
        const kl_node *f = find_op(m, "kiln.FusedConv");
        KT_CHECK(f != NULL);
        if (f) {
            KT_CHECK_EQ_INT(kl_node_attr_int(f, "activation", -1), KL_ACT_CLIP);
            KT_CHECK(kl_node_attr_float(f, "act_alpha", 0) == -0.25f);
            KT_CHECK(kl_node_attr_float(f, "act_beta", 0) == 0.5f);
            KT_CHECK_STR(f->fused_from, "conv+add+clip");
        }
        KT_CHECK(err == 0.0);
    }
    kl_model_free(ref);
    kl_model_free(m);
    kt_pb_free(&mb);
}

/* Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])) with a symbolic
 * batch keeps the Shape of the batch; static dims fold. */
static void build_shapes(kt_pb *mb, const char *xshape, bool swap) {
    kt_pb g = {0};
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, xshape);
    int64_t zero = 0, one = 1, two = 2, three = 3, ax = 0;
    add_i64(&g, "i0", &zero, 1, 0);
    add_i64(&g, "i1", &one, 1, 0);
    add_i64(&g, "i2", &two, 1, 0);
    add_i64(&g, "i3", &three, 1, 0);
    add_i64(&g, "axes", &ax, 1, 1);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Shape", "shape", "x", "s");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Gather", "g0", "s,i0", "d0");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Gather", "g1", "s,i1", "d1");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Gather", "g2", "s,i2", "d2");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Gather", "g3", "s,i3", "d3");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Mul", "m1", "d1,d2", "p1");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Mul", "m2", "p1,d3", "p2");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Unsqueeze", "u0", "d0,axes", "e0");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Unsqueeze", "u1", "p2,axes", "e1");
    kt_pb n = {0};
    kt_onnx_node_head(&n, "Concat", NULL, "cat", swap ? "e1,e0" : "e0,e1", "target");
    kt_onnx_attr_i(&n, "axis", 0);
    kt_pb_take(&g, KT_GRAPH_NODE, &n);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Reshape", "rs", "x,target", "y");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, NULL);
    finish(mb, &g, 13);
}

static void test_fold_shapes(void) {
    /* Static: everything but the Reshape folds. */
    kt_pb mb = {0};
    build_shapes(&mb, "2,3,4,5", false);
    kl_model *ref, *m;
    double err;
    m = optimize(&mb, NULL, &ref, &err, NULL);
    if (m && ref) {
        KT_CHECK_EQ_INT(m->graph->n_nodes, 1);
        KT_CHECK_EQ_INT(count_op(m, "Reshape"), 1);
        const kl_value *t = m->graph->nodes[0]->inputs[1];
        KT_CHECK(t->init && t->init->count == 2);
        if (t->init && t->init->count == 2) {
            KT_CHECK(kl_tensor_get_f64(t->init, 0) == 2.0);
            KT_CHECK(kl_tensor_get_f64(t->init, 1) == 60.0);
        }
        KT_CHECK(err == 0.0);
    }
    kl_model_free(ref);
    kl_model_free(m);
    kt_pb_free(&mb);
    /* Symbolic batch: the target [batch, 60] becomes the constant [0, 60]
     * (0 copies the batch), the whole chain goes, y keeps [batch,60]. */
    mb = (kt_pb){0};
    build_shapes(&mb, "batch,3,4,5", false);
    m = optimize(&mb, NULL, &ref, &err, NULL);
    if (m && ref) {
        KT_CHECK_EQ_INT(m->graph->n_nodes, 1);
        const kl_value *t = m->graph->nodes[0]->inputs[1];
        KT_CHECK(t->init && t->init->count == 2);
        if (t->init && t->init->count == 2) {
            KT_CHECK(kl_tensor_get_f64(t->init, 0) == 0.0);
            KT_CHECK(kl_tensor_get_f64(t->init, 1) == 60.0);
        }
        const kl_value *y = kl_graph_lookup(m->graph, "y");
        char b[64];
        KT_CHECK_STR(kl_type_format(&y->type, b, sizeof b), "float[batch,60]");
        KT_CHECK(err == 0.0);
    }
    kl_model_free(ref);
    kl_model_free(m);
    kt_pb_free(&mb);
    /* [60, batch]: the batch moves, so it becomes -1. */
    mb = (kt_pb){0};
    build_shapes(&mb, "batch,3,4,5", true);
    m = optimize(&mb, NULL, &ref, &err, NULL);
    if (m && ref) {
        KT_CHECK_EQ_INT(m->graph->n_nodes, 1);
        const kl_value *t = m->graph->nodes[0]->inputs[1];
        KT_CHECK(t->init && t->init->count == 2);
        if (t->init && t->init->count == 2) {
            KT_CHECK(kl_tensor_get_f64(t->init, 0) == 60.0);
            KT_CHECK(kl_tensor_get_f64(t->init, 1) == -1.0);
        }
        KT_CHECK(err == 0.0);
    }
    kl_model_free(ref);
    kl_model_free(m);
    kt_pb_free(&mb);
}

/* A value read only inside a subgraph (If branch) is not dead. */
static void test_subgraph_use(void) {
    kt_pb mb = {0}, g = {0}, br = {0};
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "2");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "cond", KILN_DTYPE_BOOL, "");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "relu", "x", "r");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Identity", "id", "r", "r2");
    kt_pb_string_field(&br, KT_GRAPH_NAME, "branch");
    kt_onnx_node(&br, KT_GRAPH_NODE, "Neg", "neg", "r2", "o");
    kt_onnx_io(&br, KT_GRAPH_OUTPUT, "o", KILN_DTYPE_FLOAT, "2");
    kt_pb n = {0};
    kt_onnx_node_head(&n, "If", NULL, "if", "cond", "y");
    kt_onnx_attr_g(&n, "then_branch", &br);
    kt_onnx_attr_g(&n, "else_branch", &br);
    kt_pb_take(&g, KT_GRAPH_NODE, &n);
    kt_pb_free(&br);
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, "2");
    finish(&mb, &g, 13);
    kl_model *ref, *m;
    double err;
    m = optimize(&mb, NULL, &ref, &err, NULL);
    if (m && ref) {
        KT_CHECK_EQ_INT(count_op(m, "Relu"), 1);
        KT_CHECK_EQ_INT(count_op(m, "Identity"), 0); /* the branch reads r now */
        KT_CHECK_EQ_INT(count_op(m, "If"), 1);
        KT_CHECK(err == 0.0);
    }
    kl_model_free(ref);
    kl_model_free(m);
    kt_pb_free(&mb);
}

/* ---- the driver: limit, disabled passes, names ------------------------------------------------------ */

static void test_limit_and_disable(void) {
    kt_pb mb = {0};
    build_resblock(&mb);
    kl_model *ref, *m;
    double err;
    kl_pass_stats st;
    for (int64_t lim = 0; lim <= 6; lim++) {
        kl_pass_options o = mine(NULL);
        o.rewrite_limit = lim;
        m = optimize(&mb, &o, &ref, &err, &st);
        if (m && ref) {
            /* 2 BN folds, 1 dead-initializer sweep, conv+add, 2 activations. */
            KT_CHECK_EQ_INT(st.rewrites, (size_t)lim);
            KT_CHECK(err < 1e-5);
        }
        kl_model_free(ref);
        kl_model_free(m);
    }
    kl_pass_options o = mine(NULL);
    m = optimize(&mb, &o, &ref, &err, &st);
    KT_CHECK_EQ_INT(st.rewrites, 6);
    kl_model_free(ref);
    kl_model_free(m);
    /* KILN_PASS_LIMIT overrides. */
    setenv("KILN_PASS_LIMIT", "1", 1);
    m = optimize(&mb, &o, &ref, &err, &st);
    KT_CHECK_EQ_INT(st.rewrites, 1);
    KT_CHECK_EQ_INT(count_op(m, "BatchNormalization"), 1);
    kl_model_free(ref);
    kl_model_free(m);
    setenv("KILN_PASS_LIMIT", "x", 1);
    m = load_bytes(&mb);
    KT_CHECK_EQ_INT(kl_passes_run(m, &o, NULL), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_CONTAINS(kiln_last_error(), "KILN_PASS_LIMIT");
    kl_model_free(m);
    unsetenv("KILN_PASS_LIMIT");
    /* Disabled fuse_bn: the BNs stay, the rest still fuses what it can. */
    o = mine("fuse_bn");
    m = optimize(&mb, &o, &ref, &err, &st);
    if (m) {
        KT_CHECK_EQ_INT(count_op(m, "BatchNormalization"), 2);
        KT_CHECK_EQ_INT(count_op(m, "Conv"), 2);
        KT_CHECK(err == 0.0);
    }
    kl_model_free(ref);
    kl_model_free(m);
    /* Unknown pass name. */
    const char *bad[1] = {"fuse_everything"};
    o.disabled = bad;
    o.n_disabled = 1;
    m = load_bytes(&mb);
    KT_CHECK_EQ_INT(kl_passes_run(m, &o, NULL), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_CONTAINS(kiln_last_error(), "unknown pass 'fuse_everything'");
    KT_CHECK_CONTAINS(kiln_last_error(), "fuse_bn");
    kl_model_free(m);
    kt_pb_free(&mb);
    /* Table names. */
    KT_CHECK(kl_pass_count() >= 7);
    KT_CHECK_STR(kl_pass_name(0), "remove_identity");
    KT_CHECK(kl_pass_name(kl_pass_count()) == NULL);
}

/* ---- zoo ------------------------------------------------------------------------------------------ */

/* Read a TensorProto file into arena a. */
static kl_tensor *read_pb(kl_arena *a, const char *path, uint8_t **keep) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = malloc((size_t)n);
    kl_tensor *t = NULL;
    if (d && fread(d, 1, (size_t)n, f) == (size_t)n && kl_onnx_parse_tensor(a, d, (size_t)n, &t) == KILN_OK) *keep = d;
    else free(d);
    fclose(f);
    return t;
}

static void zoo_model(const char *src, const char *name) {
    char path[1024], in_path[1024], out_path[1024];
    snprintf(path, sizeof path, "%s/models/out/%s.onnx", src, name);
    snprintf(in_path, sizeof in_path, "%s/models/out/%s_ref/test_data_set_0/input_0.pb", src, name);
    snprintf(out_path, sizeof out_path, "%s/models/out/%s_ref/test_data_set_0/output_0.pb", src, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("  zoo: %s not exported, skipped\n", name);
        return;
    }
    fclose(f);
    kl_model *m = NULL;
    KT_CHECK_EQ_INT(kl_onnx_load_file(path, &m), KILN_OK);
    if (!m) return;
    int bn = count_op(m, "BatchNormalization"), relu = count_op(m, "Relu"), add = count_op(m, "Add");
    int sig = count_op(m, "Sigmoid"), mul = count_op(m, "Mul"), clip = count_op(m, "Clip");
    kl_pass_stats st;
    kiln_status s = kl_passes_run(m, NULL, &st);
    KT_CHECK_EQ_INT(s, KILN_OK);
    if (s) fprintf(stderr, "    %s: %s\n", name, kiln_last_error());
    printf("  zoo: %s: %zu nodes -> %zu (%zu rewrites); BatchNormalization %d -> %d, Relu %d -> %d, Add %d -> %d, "
           "Sigmoid %d -> %d, Mul %d -> %d, Clip %d -> %d, kiln.FusedConv %d, kiln.FusedGemm %d\n",
           name, st.nodes_before, st.nodes_after, st.rewrites, bn, count_op(m, "BatchNormalization"), relu,
           count_op(m, "Relu"), add, count_op(m, "Add"), sig, count_op(m, "Sigmoid"), mul, count_op(m, "Mul"), clip,
           count_op(m, "Clip"), count_op(m, "kiln.FusedConv"), count_op(m, "kiln.FusedGemm"));
    KT_CHECK_EQ_INT(count_op(m, "BatchNormalization"), 0);
    if (!strncmp(name, "resnet", 6)) {
        KT_CHECK_EQ_INT(count_op(m, "Relu"), 0);
        KT_CHECK_EQ_INT(count_op(m, "Add"), 0);
    }
    if (!strcmp(name, "efficientnet_b0")) {
        /* No Sigmoid feeding a Mul with its own input (SiLU) is left. */
        int silu = 0;
        for (size_t i = 0; i < m->graph->n_nodes; i++) {
            const kl_node *n = m->graph->nodes[i];
            if (!kl_pass_is(n, "Sigmoid")) continue;
            const kl_value *x = n->inputs[0], *sgv = n->outputs[0];
            for (size_t u = 0; u < sgv->n_uses; u++) {
                const kl_node *mn = sgv->uses[u].node;
                if (kl_pass_is(mn, "Mul") && (mn->inputs[0] == x || mn->inputs[1] == x)) silu++;
            }
        }
        KT_CHECK_EQ_INT(silu, 0);
    }
    if (!strcmp(name, "mobilenet_v2")) KT_CHECK_EQ_INT(count_op(m, "Clip"), 0);
    /* Outputs against PyTorch's reference: relative L2 <= 1e-5. */
    kl_arena a;
    kl_arena_init(&a);
    uint8_t *k1 = NULL, *k2 = NULL;
    kl_tensor *xi = read_pb(&a, in_path, &k1), *yo = read_pb(&a, out_path, &k2);
    KT_CHECK(xi && yo);
    kl_rt *x = NULL, *y = NULL;
    if (xi && yo && kl_rt_from_tensor(xi, &x) == KILN_OK && run_model(m, &x, 1, &y, 1) == KILN_OK) {
        double num = 0, den = 0;
        KT_CHECK_EQ_INT(y->count, yo->count);
        for (int64_t i = 0; i < y->count && i < yo->count; i++) {
            double r = kl_tensor_get_f64(yo, i), d = kl_rt_get_f64(y, i) - r;
            num += d * d;
            den += r * r;
        }
        double rel = sqrt(num / (den > 0 ? den : 1));
        printf("  zoo: %s: relative L2 vs PyTorch %.3g\n", name, rel);
        KT_CHECK(rel <= 1e-5);
    }
    kl_rt_unref(x);
    kl_rt_unref(y);
    free(k1);
    free(k2);
    kl_arena_free(&a);
    kl_model_free(m);
}

/* ---- fuse_conv_dw ------------------------------------------------------------------------------ */

/* x[1,C,H,H] -> conv e (M channels, bias; 1x1, or EKxEK stride es with
 * pads EK/2 and the top-left ones 0 when tf) -> Clip(0, 6) -> depthwise 3x3
 * conv d (stride s, pads 1, bias) -> Relu -> y. */
static void build_first_dw(kt_pb *mb, int64_t C, int64_t EK, int64_t es, bool tf, int64_t M, int64_t H, int64_t s) {
    kt_pb g = {0};
    g_seed = 5;
    char xs[96], ys[128];
    int64_t ep[4] = {tf ? 0 : EK / 2, tf ? 0 : EK / 2, EK / 2, EK / 2};
    int64_t H1 = (H + ep[0] + ep[2] - EK) / es + 1;
    int64_t OH = (H1 + 2 - 3) / s + 1;
    snprintf(xs, sizeof xs, "1,%lld,%lld,%lld", (long long)C, (long long)H, (long long)H);
    snprintf(ys, sizeof ys, "1,%lld,%lld,%lld", (long long)M, (long long)OH, (long long)OH);
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, xs);
    int64_t w1d[4] = {M, C, EK, EK}, w2d[4] = {M, 1, 3, 3};
    add_f32(&g, "w1", w1d, 4, -0.6f, 0.6f);
    add_f32(&g, "b1", &M, 1, -0.5f, 0.5f);
    add_f32(&g, "w2", w2d, 4, -0.4f, 0.4f);
    add_f32(&g, "b2", &M, 1, -0.5f, 0.5f);
    add_scalar(&g, "lo", 0.0f);
    add_scalar(&g, "hi", 6.0f);
    if (EK == 1) {
        kt_onnx_node(&g, KT_GRAPH_NODE, "Conv", "e", "x,w1,b1", "t");
    } else {
        kt_pb n = {0};
        kt_onnx_node_head(&n, "Conv", NULL, "e", "x,w1,b1", "t");
        int64_t st[2] = {es, es};
        kt_onnx_attr_ints(&n, "pads", ep, 4);
        kt_onnx_attr_ints(&n, "strides", st, 2);
        kt_pb_take(&g, KT_GRAPH_NODE, &n);
    }
    kt_onnx_node(&g, KT_GRAPH_NODE, "Clip", "clip", "t,lo,hi", "tc");
    kt_pb n = {0};
    kt_onnx_node_head(&n, "Conv", NULL, "d", "tc,w2,b2", "u");
    int64_t pads[4] = {1, 1, 1, 1}, st[2] = {s, s};
    kt_onnx_attr_ints(&n, "pads", pads, 4);
    kt_onnx_attr_ints(&n, "strides", st, 2);
    kt_onnx_attr_i(&n, "group", M);
    kt_pb_take(&g, KT_GRAPH_NODE, &n);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "relu", "u", "y");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, ys);
    finish(mb, &g, 13);
}

/* With cpu_fused, the expand + depthwise pair of an expanded tensor of 3 MiB
 * or more, or a stem (at most 4 input channels, up to 7x7, strides 1 or 2)
 * + depthwise pair of a stem output of 1 MiB or more, becomes one
 * kiln.FusedConvDw whose reference kernel gives the unfused graph's
 * numbers; without cpu_fused, with a smaller tensor or a wider first
 * layer, the pair stays two FusedConv nodes. */
static void test_conv_dw(void) {
    static const struct {
        int64_t C, EK, es;
        bool tf;
        int64_t M, H, s;
        bool cpu, fused;
    } cases[] = {{3, 1, 1, false, 64, 112, 2, true, true},   {3, 1, 1, false, 64, 112, 1, true, true},
                 {3, 1, 1, false, 64, 112, 2, false, false}, {3, 1, 1, false, 16, 112, 2, true, false},
                 {3, 3, 2, false, 32, 224, 1, true, true},   {3, 3, 2, true, 32, 224, 2, true, true},
                 {1, 5, 1, false, 24, 112, 1, true, true},   {3, 3, 2, false, 32, 224, 1, false, false},
                 {3, 3, 2, false, 16, 224, 1, true, false},  {8, 3, 2, false, 32, 224, 1, true, false}};
    for (size_t i = 0; i < KL_ARRAY_LEN(cases); i++) {
        kt_pb mb = {0};
        build_first_dw(&mb, cases[i].C, cases[i].EK, cases[i].es, cases[i].tf, cases[i].M, cases[i].H, cases[i].s);
        kl_model *ref, *m;
        double err;
        kl_pass_options o = mine(NULL);
        o.cpu_fused = cases[i].cpu;
        m = optimize(&mb, &o, &ref, &err, NULL);
        if (m && ref) {
            KT_CHECK_EQ_INT(count_op(m, "kiln.FusedConvDw"), cases[i].fused ? 1 : 0);
            KT_CHECK_EQ_INT(count_op(m, "kiln.FusedConv"), cases[i].fused ? 0 : 2);
            const kl_node *f = find_op(m, "kiln.FusedConvDw");
            if (f) {
                KT_CHECK_STR(f->fused_from, "e+clip+d+relu");
                KT_CHECK_EQ_INT(kl_node_attr_int(f, "expand_activation", -1), KL_ACT_CLIP);
                KT_CHECK_EQ_INT(kl_node_attr_int(f, "activation", -1), KL_ACT_RELU);
                const int64_t *v;
                KT_CHECK_EQ_INT(kl_node_attr_ints(f, "expand_strides", &v), cases[i].EK > 1 ? 2 : -1);
                if (cases[i].EK > 1) KT_CHECK_EQ_INT(v[0], cases[i].es);
                KT_CHECK_EQ_INT(kl_node_attr_ints(f, "expand_pads", &v), cases[i].EK > 1 ? 4 : -1);
                if (cases[i].EK > 1) KT_CHECK_EQ_INT(v[0], cases[i].tf ? 0 : cases[i].EK / 2);
            }
            KT_CHECK(err < 1e-5);
            if (err >= 1e-5) fprintf(stderr, "    case %zu: err %g\n", i, err);
        }
        kl_model_free(ref);
        kl_model_free(m);
        kt_pb_free(&mb);
    }
}

/* ---- layout_nchwc ----------------------------------------------------------------------------- */

/* x[2,3,20,20] -> stem 3x3/2 (3->24) -> Relu -> MaxPool 3x3/2 pad 1 = a ->
 * 1x1 (24->40) -> Relu -> 3x3 (40->40) -> 1x1 (40->24) -> Add(a) -> Relu ->
 * depthwise 3x3/2 (24) -> y, and a second output `a`. */
static void build_blocked_chain(kt_pb *mb) {
    kt_pb g = {0};
    g_seed = 17;
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "2,3,20,20");
    int64_t w0[4] = {24, 3, 3, 3}, w1[4] = {40, 24, 1, 1}, w2[4] = {40, 40, 3, 3}, w3[4] = {24, 40, 1, 1},
            w4[4] = {24, 1, 3, 3}, m24 = 24, m40 = 40;
    add_f32(&g, "w0", w0, 4, -0.5f, 0.5f);
    add_f32(&g, "b0", &m24, 1, -0.3f, 0.3f);
    add_f32(&g, "w1", w1, 4, -0.4f, 0.4f);
    add_f32(&g, "w2", w2, 4, -0.2f, 0.2f);
    add_f32(&g, "b2", &m40, 1, -0.3f, 0.3f);
    add_f32(&g, "w3", w3, 4, -0.3f, 0.3f);
    add_f32(&g, "b3", &m24, 1, -0.3f, 0.3f);
    add_f32(&g, "w4", w4, 4, -0.5f, 0.5f);
    int64_t p1[4] = {1, 1, 1, 1}, s2[2] = {2, 2}, k3[2] = {3, 3};
    kt_pb n = {0};
    kt_onnx_node_head(&n, "Conv", NULL, "stem", "x,w0,b0", "t0");
    kt_onnx_attr_ints(&n, "pads", p1, 4);
    kt_onnx_attr_ints(&n, "strides", s2, 2);
    kt_pb_take(&g, KT_GRAPH_NODE, &n);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r0", "t0", "t0r");
    kt_onnx_node_head(&n, "MaxPool", NULL, "pool", "t0r", "a");
    kt_onnx_attr_ints(&n, "kernel_shape", k3, 2);
    kt_onnx_attr_ints(&n, "pads", p1, 4);
    kt_onnx_attr_ints(&n, "strides", s2, 2);
    kt_pb_take(&g, KT_GRAPH_NODE, &n);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Conv", "c1", "a,w1", "t1");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r1", "t1", "t1r");
    kt_onnx_node_head(&n, "Conv", NULL, "c2", "t1r,w2,b2", "t2");
    kt_onnx_attr_ints(&n, "pads", p1, 4);
    kt_pb_take(&g, KT_GRAPH_NODE, &n);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Conv", "c3", "t2,w3,b3", "t3");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "add", "t3,a", "t4");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r4", "t4", "t4r");
    kt_onnx_node_head(&n, "Conv", NULL, "dw", "t4r,w4", "y");
    kt_onnx_attr_ints(&n, "pads", p1, 4);
    kt_onnx_attr_ints(&n, "strides", s2, 2);
    kt_onnx_attr_i(&n, "group", 24);
    kt_pb_take(&g, KT_GRAPH_NODE, &n);
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, "2,24,3,3");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "a", KILN_DTYPE_FLOAT, "2,24,5,5");
    finish(mb, &g, 13);
}

/* With layout_nchwc every convolution becomes kiln.ConvNchwc (the stem
 * reading NCHW, the rest blocked, the residual Add as a blocked Z), the
 * MaxPool kiln.MaxPoolNchwc, and only the two graph outputs are reordered
 * back; the reference kernels of the blocked ops give the NCHW graph's
 * numbers.  Without it (or without cpu_fused) nothing is blocked. */
static void test_layout_nchwc(void) {
    for (int on = 0; on < 3; on++) {
        kt_pb mb = {0};
        build_blocked_chain(&mb);
        kl_model *ref, *m;
        double err;
        kl_pass_options o = mine(NULL);
        o.cpu_fused = on != 2;
        o.layout_nchwc = on != 0;
        m = optimize(&mb, &o, &ref, &err, NULL);
        bool blocked = on == 1;
        if (m && ref) {
            KT_CHECK_EQ_INT(count_op(m, "kiln.ConvNchwc"), blocked ? 5 : 0);
            KT_CHECK_EQ_INT(count_op(m, "kiln.MaxPoolNchwc"), blocked ? 1 : 0);
            KT_CHECK_EQ_INT(count_op(m, "kiln.ReorderNchw"), blocked ? 2 : 0);
            KT_CHECK_EQ_INT(count_op(m, "kiln.ReorderNchwc"), 0);
            const kl_node *stem = find_op(m, "kiln.ConvNchwc");
            if (blocked && stem) KT_CHECK_EQ_INT(kl_node_attr_int(stem, "in_nchw", 0), 1);
            KT_CHECK(err < 1e-5);
            if (err >= 1e-5) fprintf(stderr, "    layout %d: err %g\n", on, err);
        }
        kl_model_free(ref);
        kl_model_free(m);
        kt_pb_free(&mb);
    }
}

/* ---- fuse_se_conv ------------------------------------------------------------------------------ */

/* x[B,C,H,H] -> GlobalAveragePool -> 1x1 conv (C -> 4) -> Relu -> 1x1 conv
 * (4 -> C) -> Sigmoid = s; Mul(x, s) (or Mul(s, x)) -> 1x1 conv p (M
 * channels, bias) [-> + x when M == C] -> y. */
static void build_se(kt_pb *mb, int64_t B, int64_t C, int64_t H, int64_t M, bool swap, bool residual) {
    kt_pb g = {0};
    g_seed = 9;
    char xs[96], ys[96];
    snprintf(xs, sizeof xs, "%lld,%lld,%lld,%lld", (long long)B, (long long)C, (long long)H, (long long)H);
    snprintf(ys, sizeof ys, "%lld,%lld,%lld,%lld", (long long)B, (long long)M, (long long)H, (long long)H);
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, xs);
    int64_t r = 4, f1d[4] = {r, C, 1, 1}, f2d[4] = {C, r, 1, 1}, wd[4] = {M, C, 1, 1};
    add_f32(&g, "f1", f1d, 4, -0.5f, 0.5f);
    add_f32(&g, "c1", &r, 1, -0.2f, 0.2f);
    add_f32(&g, "f2", f2d, 4, -0.5f, 0.5f);
    add_f32(&g, "c2", &C, 1, -0.2f, 0.2f);
    add_f32(&g, "w", wd, 4, -0.4f, 0.4f);
    add_f32(&g, "b", &M, 1, -0.3f, 0.3f);
    kt_onnx_node(&g, KT_GRAPH_NODE, "GlobalAveragePool", "gap", "x", "p");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Conv", "fc1", "p,f1,c1", "h");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "act", "h", "hr");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Conv", "fc2", "hr,f2,c2", "g");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Sigmoid", "gate", "g", "s");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Mul", "scale", swap ? "s,x" : "x,s", "t");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Conv", "proj", "t,w,b", residual ? "u" : "y");
    if (residual) kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "res", "u,x", "y");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, ys);
    finish(mb, &g, 13);
}

/* With cpu_fused, the gate's Mul and the 1x1 convolution after it become
 * one kiln.ScaledConv (the residual Add kept as its Z) whose reference
 * kernel gives the unfused graph's numbers, where M < H x W or on maps of
 * 64 pixels or fewer; without cpu_fused, or where scaling the weights costs
 * more than the tensor (96 channels out of 81 pixels), the Mul stays. */
static void test_se_conv(void) {
    static const struct {
        int64_t B, C, H, M;
        bool swap, residual, cpu, fused;
    } cases[] = {{1, 24, 8, 16, false, false, true, true},  {2, 24, 8, 24, true, true, true, true},
                 {1, 24, 8, 16, false, false, false, false}, {1, 24, 4, 16, false, false, true, true},
                 {3, 7, 5, 3, true, false, true, true},      {1, 24, 9, 96, false, false, true, false}};
    for (size_t i = 0; i < KL_ARRAY_LEN(cases); i++) {
        kt_pb mb = {0};
        build_se(&mb, cases[i].B, cases[i].C, cases[i].H, cases[i].M, cases[i].swap, cases[i].residual);
        kl_model *ref, *m;
        double err;
        kl_pass_options o = mine(NULL);
        o.cpu_fused = cases[i].cpu;
        m = optimize(&mb, &o, &ref, &err, NULL);
        if (m && ref) {
            KT_CHECK_EQ_INT(count_op(m, "kiln.ScaledConv"), cases[i].fused ? 1 : 0);
            KT_CHECK_EQ_INT(count_op(m, "Mul"), cases[i].fused ? 0 : 1);
            const kl_node *f = find_op(m, "kiln.ScaledConv");
            if (f) {
                KT_CHECK_STR(f->fused_from, cases[i].residual ? "scale+proj+res" : "scale+proj");
                KT_CHECK_EQ_INT((int)f->n_inputs, cases[i].residual ? 5 : 4);
            }
            KT_CHECK(err < 1e-5);
            if (err >= 1e-5) fprintf(stderr, "    case %zu: err %g\n", i, err);
        }
        kl_model_free(ref);
        kl_model_free(m);
        kt_pb_free(&mb);
    }
}

static void test_zoo(void) {
    const char *src = getenv("KILN_SOURCE_DIR");
    if (!src) src = "..";
    const char *only = getenv("KILN_ZOO_MODELS");
    static const char *const names[] = {"resnet50", "resnet18", "mobilenet_v2", "efficientnet_b0"};
    for (size_t i = 0; i < KL_ARRAY_LEN(names); i++)
        if (!only || strstr(only, names[i])) zoo_model(src, names[i]);
}

int main(void) {
    KT_RUN(test_edit_api);
    KT_RUN(test_verify_catches);
    KT_RUN(test_conv_bn_relu);
    KT_RUN(test_resblock);
    KT_RUN(test_convtranspose_bn);
    KT_RUN(test_gemm_bn_act);
    KT_RUN(test_activations);
    KT_RUN(test_affine);
    KT_RUN(test_no_fusion);
    KT_RUN(test_remove_identity);
    KT_RUN(test_identity_io);
    KT_RUN(test_fold_constants);
    KT_RUN(test_fold_shapes);
    KT_RUN(test_fold_output_and_variants);
    KT_RUN(test_subgraph_use);
    KT_RUN(test_limit_and_disable);
    KT_RUN(test_conv_dw);
    KT_RUN(test_layout_nchwc);
    KT_RUN(test_se_conv);
    KT_RUN(test_zoo);
    return kt_summary();
}
