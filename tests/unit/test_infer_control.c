/*
 * test_infer_control.c — shape/type inference of control flow, sequences,
 * optionals and a few misc ops (src/ops/control.c, src/ops/misc.c).
 *
 * Most tests build the IR by hand (a model, its graphs, values with declared
 * types, nodes whose GRAPH attributes hold subgraphs), run kl_infer_graph and
 * check the exact inferred types; one test goes through kl_onnx_parse.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ir/ir.h"
#include "onnx/onnx.h"
#include "ops/ops.h"

#include "onnxbuild.c"

#define U -1 /* unknown dimension in shape lists */
#define NODIMS ((const int64_t *)NULL)

/* ---- building IR by hand ----------------------------------------------------- */

/* An empty model with its main graph. */
static kl_model *mk_model(void) {
    kl_model *m = kl_calloc(1, sizeof *m);
    if (!m) abort();
    kl_arena_init(&m->arena);
    m->path = "<test>";
    if (kl_graph_new(m, NULL, NULL, &m->graph) != KILN_OK) abort();
    return m;
}

/* Release a model built by mk_model. */
static void free_model(kl_model *m) { kl_model_free(m); }

/* Append v to a graph's value list (inputs/outputs), capacity 16. */
static void push(kl_model *m, kl_value ***list, size_t *n, kl_value *v) {
    if (!*list) *list = kl_arena_array(&m->arena, 16, sizeof **list);
    (*list)[(*n)++] = v;
}

/* A value named `name` in g, declared as a tensor of dt and `rank` dims
 * (entries U unknown); rank -1: unknown rank; dt 0: no type. */
static kl_value *val(kl_graph *g, const char *name, kiln_dtype dt, int rank,
                     const int64_t *dims) {
    kl_value *v;
    if (kl_graph_value(g, name, &v) != KILN_OK) abort();
    if (dt == KILN_DTYPE_UNDEFINED) return v;
    v->flags |= KL_VALUE_DECLARED;
    v->type.kind = KL_TYPE_TENSOR;
    v->type.elem = dt;
    v->type.shape.rank = rank;
    v->type.shape.dims = NULL;
    if (rank > 0) {
        v->type.shape.dims = kl_arena_array(&g->model->arena, (size_t)rank, sizeof(kl_dim));
        for (int k = 0; k < rank; k++) v->type.shape.dims[k] = (kl_dim){dims[k], NULL};
    }
    return v;
}

/* A declared graph input (see val). */
static kl_value *input(kl_graph *g, const char *name, kiln_dtype dt, int rank,
                       const int64_t *dims) {
    kl_value *v = val(g, name, dt, rank, dims);
    v->flags |= KL_VALUE_GRAPH_INPUT;
    push(g->model, &g->inputs, &g->n_inputs, v);
    return v;
}

/* Make v a graph output of g. */
static void output(kl_graph *g, kl_value *v) {
    v->flags |= KL_VALUE_GRAPH_OUTPUT;
    push(g->model, &g->outputs, &g->n_outputs, v);
}

/* An int64 scalar initializer. */
static kl_value *const_i64(kl_graph *g, const char *name, int64_t x) {
    kl_value *v = val(g, name, KILN_DTYPE_INT64, 0, NODIMS);
    kl_tensor *t = kl_arena_alloc(&g->model->arena, sizeof *t);
    int64_t *d = kl_arena_alloc(&g->model->arena, sizeof *d);
    *d = x;
    t->name = v->name;
    t->dtype = KILN_DTYPE_INT64;
    t->rank = 0;
    t->count = 1;
    t->data = d;
    t->nbytes = sizeof *d;
    v->init = t;
    v->flags |= KL_VALUE_INITIALIZER;
    return v;
}

/* A node of op (domain "") at `opset`; inputs/outputs by value (NULL =
 * left out), up to 8 attributes added with the attr_* helpers. */
static kl_node *node(kl_graph *g, const char *op, int64_t opset, kl_value *const *ins, size_t nin,
                     kl_value *const *outs, size_t nout) {
    kl_arena *a = &g->model->arena;
    kl_node *n = kl_arena_alloc(a, sizeof *n);
    n->name = op;
    n->op_type = op;
    n->domain = "";
    n->overload = "";
    n->opset = opset;
    n->graph = g;
    n->inputs = kl_arena_array(a, nin + 1, sizeof *n->inputs);
    n->outputs = kl_arena_array(a, nout + 1, sizeof *n->outputs);
    n->attrs = kl_arena_array(a, 8, sizeof *n->attrs);
    for (size_t i = 0; i < nin; i++) n->inputs[i] = ins[i];
    for (size_t i = 0; i < nout; i++) {
        n->outputs[i] = outs[i];
        if (outs[i]) {
            outs[i]->producer = n;
            outs[i]->producer_output = (int)i;
        }
    }
    n->n_inputs = nin;
    n->n_outputs = nout;
    n->schema = kl_op_find("", op, opset, NULL);
    if (!g->nodes) g->nodes = kl_arena_array(a, 16, sizeof *g->nodes);
    n->index = g->n_nodes;
    g->nodes[g->n_nodes++] = n;
    return n;
}

/* Add an empty attribute of `type` to n and return it. */
static kl_attr *attr(kl_node *n, const char *name, kl_attr_type type) {
    kl_attr *at = &n->attrs[n->n_attrs++];
    memset(at, 0, sizeof *at);
    at->name = name;
    at->type = type;
    return at;
}

/* Add an INT attribute. */
static void attr_i(kl_node *n, const char *name, int64_t v) { attr(n, name, KL_ATTR_INT)->i = v; }

/* Add an INTS attribute. */
static void attr_ints(kl_node *n, const char *name, const int64_t *v, size_t count) {
    kl_attr *at = attr(n, name, KL_ATTR_INTS);
    at->ints = kl_arena_array(&n->graph->model->arena, count + 1, sizeof *at->ints);
    memcpy(at->ints, v, count * sizeof *v);
    at->n = count;
}

/* A subgraph attribute of n (returned empty, to be filled). */
static kl_graph *attr_g(kl_node *n, const char *name) {
    kl_graph *sub;
    if (kl_graph_new(n->graph->model, n->graph, n, &sub) != KILN_OK) abort();
    attr(n, name, KL_ATTR_GRAPH)->g = sub;
    return sub;
}

/* ---- checking ------------------------------------------------------------------- */

/* Format a type as kiln prints it, for exact comparisons. */
static const char *fmt(const kl_type *t) {
    static char buf[8][256];
    static int k;
    k = (k + 1) % 8;
    return kl_type_format(t, buf[k], sizeof buf[k]);
}

/* Number of problems whose message contains `needle` (NULL: all). */
static size_t problems(const kl_model *m, const char *needle) {
    size_t n = 0;
    for (size_t i = 0; i < m->n_problems; i++)
        if (!needle || strstr(m->problems[i].message, needle)) n++;
    return n;
}

/* Print the model's problems (shown only when a check fails nearby). */
static void dump_problems(const kl_model *m) {
    for (size_t i = 0; i < m->n_problems; i++)
        fprintf(stderr, "  problem: %s\n", m->problems[i].message);
}

/* Run inference over the main graph. */
static void infer(kl_model *m) { KT_CHECK_EQ_INT(kl_infer_graph(m, m->graph), KILN_OK); }

/* ---- If -------------------------------------------------------------------------- */

/* then: float[2,3], int64[5]; else: float[2,4], int64[5]. */
static void test_if_merge(void) {
    kl_model *m = mk_model();
    kl_graph *g = m->graph;
    kl_value *cond = input(g, "cond", KILN_DTYPE_BOOL, 0, NODIMS);
    kl_value *y = val(g, "y", 0, -1, NODIMS), *z = val(g, "z", 0, -1, NODIMS);
    kl_node *n = node(g, "If", 16, (kl_value *[]){cond}, 1, (kl_value *[]){y, z}, 2);
    kl_graph *tg = attr_g(n, "then_branch"), *eg = attr_g(n, "else_branch");
    output(tg, val(tg, "t0", KILN_DTYPE_FLOAT, 2, (int64_t[]){2, 3}));
    output(tg, val(tg, "t1", KILN_DTYPE_INT64, 1, (int64_t[]){5}));
    output(eg, val(eg, "e0", KILN_DTYPE_FLOAT, 2, (int64_t[]){2, 4}));
    output(eg, val(eg, "e1", KILN_DTYPE_INT64, 1, (int64_t[]){5}));
    output(g, y);
    output(g, z);
    infer(m);
    KT_CHECK_EQ_INT(problems(m, NULL), 0);
    KT_CHECK_STR(fmt(&y->type), "float[2,?]");
    KT_CHECK_STR(fmt(&z->type), "int64[5]");
    KT_CHECK(y->flags & KL_VALUE_INFERRED);
    free_model(m);
}

/* Ranks that differ give an unknown rank; a symbol kept when both agree. */
static void test_if_rank_and_symbols(void) {
    kl_model *m = mk_model();
    kl_graph *g = m->graph;
    kl_value *cond = input(g, "cond", KILN_DTYPE_BOOL, 1, (int64_t[]){1});
    kl_value *y = val(g, "y", 0, -1, NODIMS), *z = val(g, "z", 0, -1, NODIMS);
    kl_node *n = node(g, "If", 13, (kl_value *[]){cond}, 1, (kl_value *[]){y, z}, 2);
    kl_graph *tg = attr_g(n, "then_branch"), *eg = attr_g(n, "else_branch");
    output(tg, val(tg, "t0", KILN_DTYPE_FLOAT, 2, (int64_t[]){2, 3}));
    kl_value *t1 = val(tg, "t1", KILN_DTYPE_INT32, 2, (int64_t[]){U, 7});
    t1->type.shape.dims[0].param = "batch";
    output(tg, t1);
    output(eg, val(eg, "e0", KILN_DTYPE_FLOAT, 1, (int64_t[]){6}));
    kl_value *e1 = val(eg, "e1", KILN_DTYPE_INT32, 2, (int64_t[]){U, 7});
    e1->type.shape.dims[0].param = "batch";
    output(eg, e1);
    infer(m);
    KT_CHECK_EQ_INT(problems(m, NULL), 0);
    KT_CHECK_STR(fmt(&y->type), "float[*]");
    KT_CHECK_STR(fmt(&z->type), "int32[batch,7]");
    free_model(m);
}

/* Element types that differ are a type error naming the node and output. */
static void test_if_type_mismatch(void) {
    kl_model *m = mk_model();
    kl_graph *g = m->graph;
    kl_value *cond = input(g, "cond", KILN_DTYPE_BOOL, 0, NODIMS);
    kl_value *y = val(g, "y", 0, -1, NODIMS);
    kl_node *n = node(g, "If", 16, (kl_value *[]){cond}, 1, (kl_value *[]){y}, 1);
    n->name = "branch";
    kl_graph *tg = attr_g(n, "then_branch"), *eg = attr_g(n, "else_branch");
    output(tg, val(tg, "t0", KILN_DTYPE_FLOAT, 1, (int64_t[]){2}));
    output(eg, val(eg, "e0", KILN_DTYPE_INT64, 1, (int64_t[]){2}));
    output(g, y);
    infer(m);
    KT_CHECK_EQ_INT(problems(m, "node 'branch' (If): then_branch output 0 is float[2] but "
                                "else_branch output 0 is int64[2]"), 1);
    KT_CHECK_EQ_INT(y->type.kind, KL_TYPE_UNKNOWN);
    free_model(m);
}

/* A non-bool condition and a branch with the wrong output count. */
static void test_if_invalid(void) {
    kl_model *m = mk_model();
    kl_graph *g = m->graph;
    kl_value *c1 = input(g, "c1", KILN_DTYPE_FLOAT, 0, NODIMS);
    kl_value *c2 = input(g, "c2", KILN_DTYPE_BOOL, 0, NODIMS);
    kl_value *y = val(g, "y", 0, -1, NODIMS), *z = val(g, "z", 0, -1, NODIMS);
    kl_node *n1 = node(g, "If", 16, (kl_value *[]){c1}, 1, (kl_value *[]){y}, 1);
    kl_graph *tg = attr_g(n1, "then_branch"), *eg = attr_g(n1, "else_branch");
    output(tg, val(tg, "t0", KILN_DTYPE_FLOAT, 0, NODIMS));
    output(eg, val(eg, "e0", KILN_DTYPE_FLOAT, 0, NODIMS));
    kl_node *n2 = node(g, "If", 16, (kl_value *[]){c2}, 1, (kl_value *[]){z}, 1);
    kl_graph *tg2 = attr_g(n2, "then_branch"), *eg2 = attr_g(n2, "else_branch");
    output(tg2, val(tg2, "u0", KILN_DTYPE_FLOAT, 0, NODIMS));
    output(tg2, val(tg2, "u1", KILN_DTYPE_FLOAT, 0, NODIMS));
    output(eg2, val(eg2, "v0", KILN_DTYPE_FLOAT, 0, NODIMS));
    infer(m);
    KT_CHECK_EQ_INT(problems(m, "condition must be bool, not float"), 1);
    KT_CHECK_EQ_INT(problems(m, "node has 1 outputs but then_branch has 2 and else_branch 1"), 1);
    free_model(m);
}

/* ---- Loop ----------------------------------------------------------------------- */

/* A Loop whose body returns (cond, v, v): one loop-carried float[3] and one
 * scan output.  With a constant trip count and no condition input the scan
 * output's leading dim is the trip count. */
static void build_loop(kl_model *m, bool with_cond, const int64_t *vdims_body, kl_value **out_v,
                       kl_value **out_scan) {
    kl_graph *g = m->graph;
    kl_value *mv = const_i64(g, "M", 5);
    kl_value *cond = with_cond ? input(g, "cond", KILN_DTYPE_BOOL, 0, NODIMS) : NULL;
    kl_value *v0 = input(g, "v0", KILN_DTYPE_FLOAT, 1, (int64_t[]){3});
    *out_v = val(g, "v_final", 0, -1, NODIMS);
    *out_scan = val(g, "scan", 0, -1, NODIMS);
    kl_node *n = node(g, "Loop", 16, (kl_value *[]){mv, cond, v0}, 3,
                      (kl_value *[]){*out_v, *out_scan}, 2);
    kl_graph *b = attr_g(n, "body");
    input(b, "i", KILN_DTYPE_INT64, 0, NODIMS);
    kl_value *bc = input(b, "c", KILN_DTYPE_BOOL, 0, NODIMS);
    kl_value *bv = input(b, "v", KILN_DTYPE_FLOAT, 1, vdims_body);
    output(b, bc);
    output(b, bv);
    output(b, bv);
    output(g, *out_v);
    output(g, *out_scan);
}

/* Loop outputs with and without a known trip count, and a resized carry. */
static void test_loop_outputs(void) {
    kl_value *v, *scan;
    kl_model *m = mk_model();
    build_loop(m, false, (int64_t[]){3}, &v, &scan);
    infer(m);
    dump_problems(m);
    KT_CHECK_EQ_INT(problems(m, NULL), 0);
    KT_CHECK_STR(fmt(&v->type), "float[3]");
    KT_CHECK_STR(fmt(&scan->type), "float[5,3]");
    free_model(m);

    m = mk_model();
    build_loop(m, true, (int64_t[]){3}, &v, &scan);
    infer(m);
    KT_CHECK_EQ_INT(problems(m, NULL), 0);
    KT_CHECK_STR(fmt(&v->type), "float[3]");
    KT_CHECK_STR(fmt(&scan->type), "float[?,3]");
    free_model(m);

    /* The carried value changes size in the body: that dim becomes unknown. */
    m = mk_model();
    build_loop(m, true, (int64_t[]){U}, &v, &scan);
    infer(m);
    KT_CHECK_EQ_INT(problems(m, NULL), 0);
    KT_CHECK_STR(fmt(&v->type), "float[?]");
    KT_CHECK_STR(fmt(&scan->type), "float[?,?]");
    free_model(m);
}

/* A body with the wrong number of inputs is an invalid model. */
static void test_loop_bad_body(void) {
    kl_model *m = mk_model();
    kl_graph *g = m->graph;
    kl_value *mv = const_i64(g, "M", 2);
    kl_value *v0 = input(g, "v0", KILN_DTYPE_FLOAT, 0, NODIMS);
    kl_value *y = val(g, "y", 0, -1, NODIMS);
    kl_node *n = node(g, "Loop", 13, (kl_value *[]){mv, NULL, v0}, 3, (kl_value *[]){y}, 1);
    kl_graph *b = attr_g(n, "body");
    kl_value *bc = input(b, "c", KILN_DTYPE_BOOL, 0, NODIMS);
    output(b, bc);
    output(b, bc);
    infer(m);
    KT_CHECK_EQ_INT(problems(m, "body has 1 inputs, expected 3"), 1);
    free_model(m);
}

/* ---- Scan ----------------------------------------------------------------------- */

/* Scan-9+: state float[2], scan input float[7,2]; body (s, x) -> (s, x). */
static void test_scan9(void) {
    for (int variant = 0; variant < 2; variant++) {
        kl_model *m = mk_model();
        kl_graph *g = m->graph;
        kl_value *s0 = input(g, "s0", KILN_DTYPE_FLOAT, 1, (int64_t[]){2});
        kl_value *x = input(g, "x", KILN_DTYPE_FLOAT, 2, (int64_t[]){7, 2});
        kl_value *sf = val(g, "sf", 0, -1, NODIMS), *ys = val(g, "ys", 0, -1, NODIMS);
        kl_node *n = node(g, "Scan", 16, (kl_value *[]){s0, x}, 2, (kl_value *[]){sf, ys}, 2);
        attr_i(n, "num_scan_inputs", 1);
        if (variant == 1) attr_ints(n, "scan_output_axes", (int64_t[]){-1}, 1);
        kl_graph *b = attr_g(n, "body");
        kl_value *bs = input(b, "s", KILN_DTYPE_FLOAT, 1, (int64_t[]){2});
        kl_value *bx = input(b, "xi", KILN_DTYPE_FLOAT, 1, (int64_t[]){2});
        output(b, bs);
        output(b, bx);
        infer(m);
        dump_problems(m);
        KT_CHECK_EQ_INT(problems(m, NULL), 0);
        KT_CHECK_STR(fmt(&sf->type), "float[2]");
        KT_CHECK_STR(fmt(&ys->type), variant == 0 ? "float[7,2]" : "float[2,7]");
        free_model(m);
    }
}

/* Scan-8: batch dim first, sequence second. */
static void test_scan8(void) {
    kl_model *m = mk_model();
    kl_graph *g = m->graph;
    kl_value *s0 = input(g, "s0", KILN_DTYPE_FLOAT, 2, (int64_t[]){1, 2});
    kl_value *x = input(g, "x", KILN_DTYPE_FLOAT, 3, (int64_t[]){1, 3, 2});
    kl_value *sf = val(g, "sf", 0, -1, NODIMS), *ys = val(g, "ys", 0, -1, NODIMS);
    kl_node *n = node(g, "Scan", 8, (kl_value *[]){NULL, s0, x}, 3, (kl_value *[]){sf, ys}, 2);
    attr_i(n, "num_scan_inputs", 1);
    kl_graph *b = attr_g(n, "body");
    kl_value *bs = input(b, "s", KILN_DTYPE_FLOAT, 1, (int64_t[]){2});
    kl_value *bx = input(b, "xi", KILN_DTYPE_FLOAT, 1, (int64_t[]){2});
    output(b, bs);
    output(b, bx);
    infer(m);
    KT_CHECK_EQ_INT(problems(m, NULL), 0);
    KT_CHECK_STR(fmt(&sf->type), "float[1,2]");
    KT_CHECK_STR(fmt(&ys->type), "float[1,3,2]");
    free_model(m);
}

/* ---- sequences -------------------------------------------------------------------- */

/* SequenceConstruct merges its inputs; At/Length/Erase/ConcatFromSequence. */
static void test_sequence_construct_at(void) {
    kl_model *m = mk_model();
    kl_graph *g = m->graph;
    kl_value *a = input(g, "a", KILN_DTYPE_FLOAT, 2, (int64_t[]){2, 3});
    kl_value *b = input(g, "b", KILN_DTYPE_FLOAT, 2, (int64_t[]){4, 3});
    kl_value *pos = const_i64(g, "pos", 1);
    kl_value *seq = val(g, "seq", 0, -1, NODIMS), *at = val(g, "at", 0, -1, NODIMS);
    kl_value *len = val(g, "len", 0, -1, NODIMS), *seq2 = val(g, "seq2", 0, -1, NODIMS);
    kl_value *cat = val(g, "cat", 0, -1, NODIMS), *stk = val(g, "stk", 0, -1, NODIMS);
    node(g, "SequenceConstruct", 11, (kl_value *[]){a, b}, 2, (kl_value *[]){seq}, 1);
    node(g, "SequenceAt", 11, (kl_value *[]){seq, pos}, 2, (kl_value *[]){at}, 1);
    node(g, "SequenceLength", 11, (kl_value *[]){seq}, 1, (kl_value *[]){len}, 1);
    node(g, "SequenceErase", 11, (kl_value *[]){seq, NULL}, 2, (kl_value *[]){seq2}, 1);
    kl_node *c1 = node(g, "ConcatFromSequence", 11, (kl_value *[]){seq}, 1, (kl_value *[]){cat}, 1);
    attr_i(c1, "axis", 0);
    kl_node *c2 = node(g, "ConcatFromSequence", 11, (kl_value *[]){seq}, 1, (kl_value *[]){stk}, 1);
    attr_i(c2, "axis", -1);
    attr_i(c2, "new_axis", 1);
    infer(m);
    dump_problems(m);
    KT_CHECK_EQ_INT(problems(m, NULL), 0);
    KT_CHECK_STR(fmt(&seq->type), "seq(float[?,3])");
    KT_CHECK_STR(fmt(&at->type), "float[?,3]");
    KT_CHECK_STR(fmt(&len->type), "int64[]");
    KT_CHECK_STR(fmt(&seq2->type), "seq(float[?,3])");
    KT_CHECK_STR(fmt(&cat->type), "float[?,3]");
    KT_CHECK_STR(fmt(&stk->type), "float[?,3,?]");
    free_model(m);
}

/* Mixed element types and a non-sequence input are type errors. */
static void test_sequence_errors(void) {
    kl_model *m = mk_model();
    kl_graph *g = m->graph;
    kl_value *a = input(g, "a", KILN_DTYPE_FLOAT, 1, (int64_t[]){2});
    kl_value *b = input(g, "b", KILN_DTYPE_INT32, 1, (int64_t[]){2});
    kl_value *seq = val(g, "seq", 0, -1, NODIMS), *at = val(g, "at", 0, -1, NODIMS);
    kl_value *pos = const_i64(g, "pos", 0);
    node(g, "SequenceConstruct", 11, (kl_value *[]){a, b}, 2, (kl_value *[]){seq}, 1);
    node(g, "SequenceAt", 11, (kl_value *[]){a, pos}, 2, (kl_value *[]){at}, 1);
    infer(m);
    KT_CHECK_EQ_INT(problems(m, "input 1 is int32, input 0 is float"), 1);
    KT_CHECK_EQ_INT(problems(m, "(SequenceAt): input 0 must be a sequence, not float[2]"), 1);
    free_model(m);
}

/* SequenceEmpty(dtype), SequenceInsert, SplitToSequence with and without split. */
static void test_sequence_empty_insert_split(void) {
    kl_model *m = mk_model();
    kl_graph *g = m->graph;
    kl_value *x = input(g, "x", KILN_DTYPE_INT32, 2, (int64_t[]){6, 4});
    kl_value *e = val(g, "e", 0, -1, NODIMS), *ins = val(g, "ins", 0, -1, NODIMS);
    kl_value *s1 = val(g, "s1", 0, -1, NODIMS), *s2 = val(g, "s2", 0, -1, NODIMS);
    kl_value *two = const_i64(g, "two", 2);
    kl_node *ne = node(g, "SequenceEmpty", 11, NULL, 0, (kl_value *[]){e}, 1);
    attr_i(ne, "dtype", KILN_DTYPE_INT32);
    node(g, "SequenceInsert", 11, (kl_value *[]){e, x}, 2, (kl_value *[]){ins}, 1);
    kl_node *n1 = node(g, "SplitToSequence", 11, (kl_value *[]){x}, 1, (kl_value *[]){s1}, 1);
    attr_i(n1, "axis", 1);
    attr_i(n1, "keepdims", 0);
    node(g, "SplitToSequence", 11, (kl_value *[]){x, two}, 2, (kl_value *[]){s2}, 1);
    infer(m);
    dump_problems(m);
    KT_CHECK_EQ_INT(problems(m, NULL), 0);
    KT_CHECK_STR(fmt(&e->type), "seq(int32[*])");
    KT_CHECK_STR(fmt(&ins->type), "seq(int32[*])");
    KT_CHECK_STR(fmt(&s1->type), "seq(int32[6])");
    KT_CHECK_STR(fmt(&s2->type), "seq(int32[2,4])");
    free_model(m);
}

/* ---- optionals -------------------------------------------------------------------- */

/* Optional from an input and from a type attribute; Get/HasElement. */
static void test_optional(void) {
    kl_model *m = mk_model();
    kl_graph *g = m->graph;
    kl_value *x = input(g, "x", KILN_DTYPE_FLOAT, 1, (int64_t[]){2});
    kl_value *o = val(g, "o", 0, -1, NODIMS), *el = val(g, "el", 0, -1, NODIMS);
    kl_value *has = val(g, "has", 0, -1, NODIMS), *none = val(g, "none", 0, -1, NODIMS);
    kl_value *has2 = val(g, "has2", 0, -1, NODIMS), *pass = val(g, "pass", 0, -1, NODIMS);
    node(g, "Optional", 15, (kl_value *[]){x}, 1, (kl_value *[]){o}, 1);
    node(g, "OptionalGetElement", 18, (kl_value *[]){o}, 1, (kl_value *[]){el}, 1);
    node(g, "OptionalHasElement", 18, (kl_value *[]){o}, 1, (kl_value *[]){has}, 1);
    kl_node *nn = node(g, "Optional", 15, NULL, 0, (kl_value *[]){none}, 1);
    kl_type *tp = kl_arena_alloc(&m->arena, sizeof *tp);
    kl_type *inner = kl_arena_alloc(&m->arena, sizeof *inner);
    *inner = (kl_type){KL_TYPE_TENSOR, KILN_DTYPE_INT64, {-1, NULL}, NULL};
    *tp = (kl_type){KL_TYPE_SEQUENCE, KILN_DTYPE_UNDEFINED, {-1, NULL}, inner};
    attr(nn, "type", KL_ATTR_TYPE_PROTO)->tp = tp;
    node(g, "OptionalHasElement", 18, NULL, 0, (kl_value *[]){has2}, 1);
    node(g, "OptionalGetElement", 18, (kl_value *[]){x}, 1, (kl_value *[]){pass}, 1);
    infer(m);
    dump_problems(m);
    KT_CHECK_EQ_INT(problems(m, NULL), 0);
    KT_CHECK_STR(fmt(&o->type), "optional(float[2])");
    KT_CHECK_STR(fmt(&el->type), "float[2]");
    KT_CHECK_STR(fmt(&has->type), "bool[]");
    KT_CHECK_STR(fmt(&none->type), "optional(seq(int64[*]))");
    KT_CHECK_STR(fmt(&has2->type), "bool[]");
    KT_CHECK_STR(fmt(&pass->type), "float[2]");
    free_model(m);

    /* Opset 15 OptionalGetElement wants an optional. */
    m = mk_model();
    x = input(m->graph, "x", KILN_DTYPE_FLOAT, 1, (int64_t[]){2});
    el = val(m->graph, "el", 0, -1, NODIMS);
    node(m->graph, "OptionalGetElement", 15, (kl_value *[]){x}, 1, (kl_value *[]){el}, 1);
    infer(m);
    KT_CHECK_EQ_INT(problems(m, "input must be an optional, not float[2]"), 1);
    free_model(m);
}

/* ---- misc ------------------------------------------------------------------------- */

/* NonMaxSuppression: int64[?,3]. */
static void test_nms(void) {
    kl_model *m = mk_model();
    kl_graph *g = m->graph;
    kl_value *boxes = input(g, "boxes", KILN_DTYPE_FLOAT, 3, (int64_t[]){1, 6, 4});
    kl_value *scores = input(g, "scores", KILN_DTYPE_FLOAT, 3, (int64_t[]){1, 1, 6});
    kl_value *sel = val(g, "sel", 0, -1, NODIMS);
    node(g, "NonMaxSuppression", 11, (kl_value *[]){boxes, scores}, 2, (kl_value *[]){sel}, 1);
    infer(m);
    KT_CHECK_EQ_INT(problems(m, NULL), 0);
    KT_CHECK_STR(fmt(&sel->type), "int64[?,3]");
    free_model(m);
}

/* A declared output type merges with the inferred one (NMS [3,3]). */
static void test_nms_declared(void) {
    kl_model *m = mk_model();
    kl_graph *g = m->graph;
    kl_value *boxes = input(g, "boxes", KILN_DTYPE_FLOAT, 3, (int64_t[]){1, 6, 4});
    kl_value *scores = input(g, "scores", KILN_DTYPE_FLOAT, 3, (int64_t[]){1, 1, 6});
    kl_value *sel = val(g, "sel", KILN_DTYPE_INT64, 2, (int64_t[]){3, U});
    node(g, "NonMaxSuppression", 11, (kl_value *[]){boxes, scores}, 2, (kl_value *[]){sel}, 1);
    output(g, sel);
    infer(m);
    KT_CHECK_EQ_INT(problems(m, NULL), 0);
    KT_CHECK_STR(fmt(&sel->type), "int64[3,3]");
    free_model(m);
}

/* DFT (rfft with a constant axis, full), STFT, HannWindow, StringSplit. */
static void test_signal_and_strings(void) {
    kl_model *m = mk_model();
    kl_graph *g = m->graph;
    kl_value *x = input(g, "x", KILN_DTYPE_FLOAT, 4, (int64_t[]){1, 10, 10, 1});
    kl_value *sig = input(g, "sig", KILN_DTYPE_FLOAT, 3, (int64_t[]){1, 128, 1});
    kl_value *step = const_i64(g, "step", 8), *flen = const_i64(g, "flen", 16);
    kl_value *axis = const_i64(g, "axis", 1), *n10 = const_i64(g, "n10", 10);
    kl_value *s = input(g, "s", KILN_DTYPE_STRING, 2, (int64_t[]){2, 3});
    kl_value *rfft = val(g, "rfft", 0, -1, NODIMS), *stft = val(g, "stft", 0, -1, NODIMS);
    kl_value *win = val(g, "win", 0, -1, NODIMS), *sp = val(g, "sp", 0, -1, NODIMS);
    kl_value *cnt = val(g, "cnt", 0, -1, NODIMS), *dft = val(g, "dft", 0, -1, NODIMS);
    kl_node *d = node(g, "DFT", 20, (kl_value *[]){x, NULL, axis}, 3, (kl_value *[]){rfft}, 1);
    attr_i(d, "onesided", 1);
    node(g, "DFT", 20, (kl_value *[]){x}, 1, (kl_value *[]){dft}, 1);
    node(g, "STFT", 17, (kl_value *[]){sig, step, NULL, flen}, 4, (kl_value *[]){stft}, 1);
    node(g, "HannWindow", 17, (kl_value *[]){n10}, 1, (kl_value *[]){win}, 1);
    node(g, "StringSplit", 20, (kl_value *[]){s}, 1, (kl_value *[]){sp, cnt}, 2);
    infer(m);
    dump_problems(m);
    KT_CHECK_EQ_INT(problems(m, NULL), 0);
    KT_CHECK_STR(fmt(&rfft->type), "float[1,6,10,2]");
    KT_CHECK_STR(fmt(&dft->type), "float[1,10,10,2]");
    KT_CHECK_STR(fmt(&stft->type), "float[1,15,9,2]");
    KT_CHECK_STR(fmt(&win->type), "float[10]");
    KT_CHECK_STR(fmt(&sp->type), "string[2,3,?]");
    KT_CHECK_STR(fmt(&cnt->type), "int64[2,3]");
    free_model(m);
}

/* Every schema row is well formed: names, ranges, NULL-terminated attrs. */
static void test_schema_rows(void) {
    size_t n = kl_op_count();
    KT_CHECK(n > 0);
    for (size_t i = 0; i < n; i++) {
        const kl_op_schema *s = kl_op_at(i);
        KT_CHECK(s && s->name && s->domain);
        KT_CHECK(s->since >= 1 && (s->until == 0 || s->until >= s->since));
        KT_CHECK(s->max_inputs < 0 || s->max_inputs >= s->min_inputs);
        KT_CHECK(s->max_outputs < 0 || s->max_outputs >= s->min_outputs);
        if (s->attrs)
            for (const kl_attr_spec *a = s->attrs; a->name; a++)
                KT_CHECK(a->type >= KL_ATTR_FLOAT && a->type <= KL_ATTR_TYPE_PROTOS);
    }
    const kl_op_schema *loop = kl_op_find("", "Loop", 11, NULL);
    KT_CHECK(loop && loop->min_inputs == 2);
    const kl_op_schema *dft = kl_op_find("", "DFT", 19, NULL);
    KT_CHECK(dft && dft->max_inputs == 2);
    KT_CHECK(kl_op_find("ai.onnx.ml", "TreeEnsemble", 5, NULL) != NULL);
    KT_CHECK(kl_op_find("ai.onnx.preview.training", "Adam", 1, NULL) != NULL);
}

/* ---- through the parser ---------------------------------------------------------- */

/* If with branches RandomNormalLike(x) (float[2,3]) and RandomUniform
 * (shape [2,4]) read from protobuf bytes: the output is float[2,?]. */
static void test_if_parsed(void) {
    kt_pb then_g = {0}, else_g = {0}, node = {0}, graph = {0}, model = {0};
    kt_pb n1 = {0}, n2 = {0};
    kt_onnx_node_head(&n1, "RandomNormalLike", NULL, "rnl", "x", "t");
    kt_pb_take(&then_g, KT_GRAPH_NODE, &n1);
    kt_pb_string_field(&then_g, KT_GRAPH_NAME, "then");
    kt_onnx_io(&then_g, KT_GRAPH_OUTPUT, "t", -1, NULL);
    kt_onnx_node_head(&n2, "RandomUniform", NULL, "ru", "", "e");
    kt_onnx_attr_ints(&n2, "shape", (int64_t[]){2, 4}, 2);
    kt_pb_take(&else_g, KT_GRAPH_NODE, &n2);
    kt_pb_string_field(&else_g, KT_GRAPH_NAME, "else");
    kt_onnx_io(&else_g, KT_GRAPH_OUTPUT, "e", -1, NULL);
    kt_onnx_node_head(&node, "If", NULL, "if", "cond", "y");
    kt_onnx_attr_g(&node, "then_branch", &then_g);
    kt_onnx_attr_g(&node, "else_branch", &else_g);
    kt_pb_take(&graph, KT_GRAPH_NODE, &node);
    kt_pb_string_field(&graph, KT_GRAPH_NAME, "main");
    kt_onnx_io(&graph, KT_GRAPH_INPUT, "cond", 9, "");
    kt_onnx_io(&graph, KT_GRAPH_INPUT, "x", 1, "2,3");
    kt_onnx_io(&graph, KT_GRAPH_OUTPUT, "y", 1, NULL);
    kt_onnx_model(&model, 8, 16, &graph);
    kl_model *m = NULL;
    kiln_status s = kl_onnx_parse(model.data, model.len, "if.onnx", NULL, &m);
    KT_CHECK_EQ_INT(s, KILN_OK);
    if (m) {
        dump_problems(m);
        const kl_value *y = kl_graph_lookup(m->graph, "y");
        KT_CHECK(y != NULL);
        if (y) KT_CHECK_STR(fmt(&y->type), "float[2,?]");
        kl_model_free(m);
    }
    kt_pb_free(&then_g);
    kt_pb_free(&else_g);
    kt_pb_free(&graph);
    kt_pb_free(&model);
}

int main(void) {
    KT_RUN(test_if_merge);
    KT_RUN(test_if_rank_and_symbols);
    KT_RUN(test_if_type_mismatch);
    KT_RUN(test_if_invalid);
    KT_RUN(test_loop_outputs);
    KT_RUN(test_loop_bad_body);
    KT_RUN(test_scan9);
    KT_RUN(test_scan8);
    KT_RUN(test_sequence_construct_at);
    KT_RUN(test_sequence_errors);
    KT_RUN(test_sequence_empty_insert_split);
    KT_RUN(test_optional);
    KT_RUN(test_nms);
    KT_RUN(test_nms_declared);
    KT_RUN(test_signal_and_strings);
    KT_RUN(test_schema_rows);
    KT_RUN(test_if_parsed);
    return kt_summary();
}
