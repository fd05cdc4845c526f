/*
 * Shape inference tests on IR built by hand: symbolic broadcasting, errors
 * naming the node, reductions, declared-vs-inferred merging, symbolic values
 * through shape arithmetic, and the schema registry's consistency.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/infer_util.h"

/* ---- a tiny IR builder ----------------------------------------------------------- */

static kl_model *tb_model(void) {
    kl_model *m = kl_calloc(1, sizeof *m);
    if (!m) abort();
    kl_arena_init(&m->arena);
    if (kl_graph_new(m, NULL, NULL, &m->graph) != KILN_OK) abort();
    return m;
}

/* Parse "batch,3,?" into a shape ("" = rank 0, NULL = unknown rank). */
static kl_shape tb_shape(kl_model *m, const char *spec) {
    kl_shape s = {-1, NULL};
    if (!spec) return s;
    s.rank = 0;
    s.dims = kl_arena_array(&m->arena, KILN_MAX_RANK, sizeof(kl_dim));
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        kl_dim d = {-1, NULL};
        if (tok[0] >= '0' && tok[0] <= '9') d.value = atoll(tok);
        else if (strcmp(tok, "?") != 0) d.param = kl_arena_strdup(&m->arena, tok);
        s.dims[s.rank++] = d;
    }
    return s;
}

/* Value `name` in graph g (created if needed). */
static kl_value *tb_val(kl_graph *g, const char *name) {
    kl_value *v = kl_graph_lookup(g, name);
    if (!v && kl_graph_value(g, name, &v) != KILN_OK) abort();
    return v;
}

/* A graph input (or declared value) of tensor type dtype[spec]. */
static kl_value *tb_tensor(kl_model *m, kl_graph *g, const char *name, kiln_dtype dt,
                           const char *spec) {
    kl_value *v = tb_val(g, name);
    v->type.kind = KL_TYPE_TENSOR;
    v->type.elem = dt;
    v->type.shape = tb_shape(m, spec);
    v->flags |= KL_VALUE_DECLARED;
    return v;
}

/* An int64 initializer of rank 1 (or 0 when rank0). */
static kl_value *tb_init_i64(kl_model *m, kl_graph *g, const char *name, bool rank0,
                             int64_t n, const int64_t *vals) {
    kl_value *v = tb_val(g, name);
    kl_tensor *t = kl_arena_alloc(&m->arena, sizeof *t);
    t->name = v->name;
    t->dtype = KILN_DTYPE_INT64;
    t->rank = rank0 ? 0 : 1;
    t->dims = kl_arena_alloc(&m->arena, sizeof(int64_t));
    t->dims[0] = n;
    t->count = n;
    t->nbytes = (size_t)n * 8;
    void *data = kl_arena_alloc(&m->arena, t->nbytes + 1);
    memcpy(data, vals, t->nbytes);
    t->data = data;
    v->init = t;
    v->flags |= KL_VALUE_INITIALIZER | KL_VALUE_DECLARED;
    v->type.kind = KL_TYPE_TENSOR;
    v->type.elem = KILN_DTYPE_INT64;
    v->type.shape.rank = t->rank;
    v->type.shape.dims = kl_arena_alloc(&m->arena, sizeof(kl_dim));
    v->type.shape.dims[0] = (kl_dim){n, NULL};
    return v;
}

/* Split "a,,b" into values of g (empty entries: omitted). */
static size_t tb_values(kl_graph *g, const char *list, kl_value ***out) {
    kl_arena *a = &g->model->arena;
    kl_value **vals = kl_arena_array(a, 16, sizeof *vals);
    size_t n = 0;
    const char *p = list;
    while (*list && n < 16) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char *name = kl_arena_strndup(a, p, len);
        vals[n++] = len ? tb_val(g, name) : NULL;
        if (!end) break;
        p = end + 1;
    }
    *out = vals;
    return n;
}

/* Node `op` (opset) named `name` reading `ins` and writing `outs`. */
static kl_node *tb_node(kl_graph *g, const char *op, int64_t opset, const char *name,
                        const char *ins, const char *outs) {
    kl_arena *a = &g->model->arena;
    kl_node *n = kl_arena_alloc(a, sizeof *n);
    n->name = name;
    n->op_type = op;
    n->domain = "";
    n->overload = "";
    n->opset = opset;
    n->graph = g;
    n->index = g->n_nodes;
    n->n_inputs = tb_values(g, ins, &n->inputs);
    n->n_outputs = tb_values(g, outs, &n->outputs);
    n->attrs = kl_arena_array(a, 8, sizeof(kl_attr));
    n->schema = kl_op_find("", op, opset, NULL);
    for (size_t i = 0; i < n->n_outputs; i++)
        if (n->outputs[i]) n->outputs[i]->producer = n, n->outputs[i]->producer_output = (int)i;
    kl_node **nodes = kl_arena_array(a, g->n_nodes + 1, sizeof *nodes);
    if (g->n_nodes) memcpy(nodes, g->nodes, g->n_nodes * sizeof *nodes);
    nodes[g->n_nodes++] = n;
    g->nodes = nodes;
    return n;
}

static kl_attr *tb_attr(kl_node *n, const char *name, kl_attr_type type) {
    kl_attr *at = &n->attrs[n->n_attrs++];
    at->name = name;
    at->type = type;
    return at;
}
static void tb_int(kl_node *n, const char *name, int64_t v) {
    tb_attr(n, name, KL_ATTR_INT)->i = v;
}
static void tb_ints(kl_node *n, const char *name, size_t count, int64_t *v) {
    kl_attr *at = tb_attr(n, name, KL_ATTR_INTS);
    at->n = count;
    at->ints = v;
}

/* Type of value `name` formatted ("float[batch,3]"). */
static const char *tb_type(kl_model *m, const char *name) {
    static char buf[256];
    kl_value *v = kl_graph_lookup(m->graph, name);
    return v ? kl_type_format(&v->type, buf, sizeof buf) : "(none)";
}

/* Symbolic value of `name` formatted "{batch,3}" ("" when none). */
static const char *tb_sym(kl_model *m, const char *name) {
    static char buf[256];
    kl_value *v = kl_graph_lookup(m->graph, name);
    if (!v || !v->sym) return "";
    size_t pos = 0;
    buf[pos++] = '[';
    for (int64_t k = 0; k < v->sym->count && pos < 200; k++) {
        const kl_dim *d = &v->sym->v[k];
        pos += (size_t)snprintf(buf + pos, sizeof buf - pos, "%s", k ? "," : "");
        if (d->param) pos += (size_t)snprintf(buf + pos, sizeof buf - pos, "%s", d->param);
        else if (kl_symdim_unknown(d)) pos += (size_t)snprintf(buf + pos, sizeof buf - pos, "?");
        else pos += (size_t)snprintf(buf + pos, sizeof buf - pos, "%lld", (long long)d->value);
    }
    snprintf(buf + pos, sizeof buf - pos, "]");
    return buf;
}

static void tb_infer(kl_model *m) { KT_CHECK_EQ_INT(kl_infer_graph(m, m->graph), KILN_OK); }

/* ---- tests ---------------------------------------------------------------------------- */

static void test_broadcast_symbolic(void) {
    kl_model *m = tb_model();
    kl_graph *g = m->graph;
    tb_tensor(m, g, "a", KILN_DTYPE_FLOAT, "batch,3,1");
    tb_tensor(m, g, "b", KILN_DTYPE_FLOAT, "1,4");
    tb_tensor(m, g, "c", KILN_DTYPE_FLOAT, "batch,1,1");
    tb_tensor(m, g, "d", KILN_DTYPE_FLOAT, "seq,1,1");
    tb_tensor(m, g, "e", KILN_DTYPE_FLOAT, "?,1,5");
    tb_node(g, "Add", 14, "add", "a,b", "y");
    tb_node(g, "Mul", 14, "mul", "y,c", "y2");
    tb_node(g, "Sub", 14, "sub", "c,d", "y3");
    tb_node(g, "Div", 14, "div", "d,e", "y4");
    tb_tensor(m, g, "f", KILN_DTYPE_FLOAT, "?,1,4");
    tb_node(g, "Max", 13, "max", "a,b,f", "y5");
    tb_infer(m);
    KT_CHECK_STR(tb_type(m, "y"), "float[batch,3,4]");
    KT_CHECK_STR(tb_type(m, "y2"), "float[batch,3,4]");
    KT_CHECK_STR(tb_type(m, "y3"), "float[?,1,1]");  /* two different symbols */
    KT_CHECK_STR(tb_type(m, "y4"), "float[?,1,5]");
    KT_CHECK_STR(tb_type(m, "y5"), "float[?,3,4]"); /* batch vs unknown */
    KT_CHECK_EQ_INT(m->n_problems, 0);
    kl_model_free(m);
}

static void test_broadcast_error(void) {
    kl_model *m = tb_model();
    kl_graph *g = m->graph;
    tb_tensor(m, g, "a", KILN_DTYPE_FLOAT, "3");
    tb_tensor(m, g, "b", KILN_DTYPE_FLOAT, "4");
    tb_tensor(m, g, "i", KILN_DTYPE_INT64, "3");
    tb_node(g, "Relu", 14, "r", "a", "a2");
    tb_node(g, "Add", 14, "add_bad", "a2,b", "y");
    tb_node(g, "Equal", 13, "eq_types", "a,i", "z");
    tb_node(g, "Relu", 14, "after", "y", "w");
    tb_infer(m);
    KT_CHECK_EQ_INT(m->n_problems, 2);
    if (m->n_problems == 2) {
        KT_CHECK_EQ_INT(m->problems[0].severity, KILN_CHECK_ERROR);
        KT_CHECK_EQ_INT(m->problems[0].node_index, 1);
        KT_CHECK_CONTAINS(m->problems[0].message, "node 'add_bad' (Add)");
        KT_CHECK_CONTAINS(m->problems[0].message, "[3] and [4]");
        KT_CHECK_EQ_INT(m->problems[1].node_index, 2);
        KT_CHECK_CONTAINS(m->problems[1].message, "node 'eq_types' (Equal)");
        KT_CHECK_CONTAINS(m->problems[1].message, "float");
    }
    KT_CHECK_STR(tb_type(m, "a2"), "float[3]");
    KT_CHECK_STR(tb_type(m, "y"), "?"); /* inference goes on after the error */
    KT_CHECK_EQ_INT(kl_error_message()[0], 0);
    kl_model_free(m);
}

static void test_reduce(void) {
    kl_model *m = tb_model();
    kl_graph *g = m->graph;
    int64_t last[] = {-1}, mid[] = {-2}, bad[] = {3};
    tb_tensor(m, g, "x", KILN_DTYPE_FLOAT, "batch,3,4");
    tb_tensor(m, g, "x1", KILN_DTYPE_FLOAT, "batch,1,4");
    tb_tensor(m, g, "dyn_axes", KILN_DTYPE_INT64, "1");
    tb_init_i64(m, g, "axes_mid", false, 1, mid);
    tb_ints(tb_node(g, "ReduceMean", 13, "r0", "x", "k0"), "axes", 1, last);
    kl_node *n = tb_node(g, "ReduceMean", 13, "r1", "x", "k1");
    tb_ints(n, "axes", 1, last);
    tb_int(n, "keepdims", 0);
    tb_node(g, "ReduceMean", 13, "r2", "x", "k2"); /* all axes */
    tb_node(g, "ReduceMean", 18, "r3", "x,axes_mid", "k3");
    tb_int(tb_node(g, "ReduceMean", 18, "r4", "x,axes_mid", "k4"), "keepdims", 0);
    tb_node(g, "ReduceMean", 18, "r5", "x,dyn_axes", "k5");
    tb_int(tb_node(g, "ReduceMean", 18, "r6", "x,dyn_axes", "k6"), "keepdims", 0);
    tb_int(tb_node(g, "ReduceSum", 13, "r7", "x", "k7"), "noop_with_empty_axes", 1);
    tb_node(g, "ReduceSum", 13, "r7b", "x1,dyn_axes", "k7b");
    tb_int(tb_node(g, "ReduceMax", 18, "r8", "x", "k8"), "keepdims", 0);
    tb_ints(tb_node(g, "ReduceL2", 11, "r_bad", "x", "k9"), "axes", 1, bad);
    n = tb_node(g, "ArgMax", 13, "am", "x", "k10");
    tb_int(n, "axis", -1);
    tb_int(n, "keepdims", 0);
    tb_infer(m);
    KT_CHECK_STR(tb_type(m, "k0"), "float[batch,3,1]");
    KT_CHECK_STR(tb_type(m, "k1"), "float[batch,3]");
    KT_CHECK_STR(tb_type(m, "k2"), "float[1,1,1]");
    KT_CHECK_STR(tb_type(m, "k3"), "float[batch,1,4]");
    KT_CHECK_STR(tb_type(m, "k4"), "float[batch,4]");
    KT_CHECK_STR(tb_type(m, "k5"), "float[?,?,?]");
    KT_CHECK_STR(tb_type(m, "k6"), "float[*]");
    KT_CHECK_STR(tb_type(m, "k7"), "float[batch,3,4]");
    KT_CHECK_STR(tb_type(m, "k7b"), "float[?,1,?]");
    KT_CHECK_STR(tb_type(m, "k8"), "float[]");
    KT_CHECK_STR(tb_type(m, "k10"), "int64[batch,3]");
    KT_CHECK_EQ_INT(m->n_problems, 1);
    if (m->n_problems) KT_CHECK_CONTAINS(m->problems[0].message, "node 'r_bad' (ReduceL2): axis 3");
    kl_model_free(m);
}

static void test_topk_norm_softmax(void) {
    kl_model *m = tb_model();
    kl_graph *g = m->graph;
    int64_t k5[] = {5};
    tb_tensor(m, g, "x", KILN_DTYPE_FLOAT16, "batch,10");
    tb_tensor(m, g, "img", KILN_DTYPE_FLOAT, "n,8,h,w");
    tb_tensor(m, g, "scale", KILN_DTYPE_FLOAT, "8");
    tb_init_i64(m, g, "k", false, 1, k5);
    tb_node(g, "TopK", 11, "topk", "x,k", "vals,idx");
    tb_node(g, "Softmax", 13, "sm", "x", "p");
    tb_int(tb_node(g, "Softmax", 13, "sm_bad", "x", "p2"), "axis", 2);
    tb_node(g, "LogSoftmax", 11, "lsm", "x", "p3");
    kl_node *ln = tb_node(g, "LayerNormalization", 17, "ln", "x,x", "lny,mean,inv");
    tb_int(ln, "axis", 1);
    tb_node(g, "BatchNormalization", 15, "bn", "img,scale,scale,scale,scale", "bny,rm,rv");
    tb_node(g, "Dropout", 13, "drop", "img", "dy,mask");
    tb_node(g, "Cast", 13, "cast", "x", "xi");
    tb_int(g->nodes[g->n_nodes - 1], "to", KILN_DTYPE_INT64);
    tb_node(g, "IsNaN", 13, "isnan", "x", "nan");
    kl_attr *to = tb_attr(tb_node(g, "Cast", 5, "cast1", "x", "xd"), "to", KL_ATTR_STRING);
    to->s.ptr = "DOUBLE";
    to->s.len = 6;
    tb_infer(m);
    KT_CHECK_STR(tb_type(m, "vals"), "float16[batch,5]");
    KT_CHECK_STR(tb_type(m, "idx"), "int64[batch,5]");
    KT_CHECK_STR(tb_type(m, "p"), "float16[batch,10]");
    KT_CHECK_STR(tb_type(m, "p3"), "float16[batch,10]");
    KT_CHECK_STR(tb_type(m, "lny"), "float16[batch,10]");
    KT_CHECK_STR(tb_type(m, "mean"), "float[batch,1]");
    KT_CHECK_STR(tb_type(m, "bny"), "float[n,8,h,w]");
    KT_CHECK_STR(tb_type(m, "rm"), "float[8]");
    KT_CHECK_STR(tb_type(m, "dy"), "float[n,8,h,w]");
    KT_CHECK_STR(tb_type(m, "mask"), "bool[n,8,h,w]");
    KT_CHECK_STR(tb_type(m, "xi"), "int64[batch,10]");
    KT_CHECK_STR(tb_type(m, "nan"), "bool[batch,10]");
    KT_CHECK_STR(tb_type(m, "xd"), "double[batch,10]");
    KT_CHECK_EQ_INT(m->n_problems, 1);
    if (m->n_problems) KT_CHECK_CONTAINS(m->problems[0].message, "node 'sm_bad' (Softmax)");
    kl_model_free(m);
}

static void test_declared_merge(void) {
    kl_model *m = tb_model();
    kl_graph *g = m->graph;
    tb_tensor(m, g, "a", KILN_DTYPE_FLOAT, "batch,?,4");
    tb_tensor(m, g, "b", KILN_DTYPE_FLOAT, "3,4");
    tb_node(g, "Relu", 14, "r1", "a", "y1");
    tb_tensor(m, g, "y1", KILN_DTYPE_FLOAT, "?,seq,4");
    tb_node(g, "Relu", 14, "r2", "a", "y2");
    tb_tensor(m, g, "y2", KILN_DTYPE_FLOAT, "n,7,4");
    tb_node(g, "Relu", 14, "r3", "b", "y3");
    tb_tensor(m, g, "y3", KILN_DTYPE_FLOAT, "3,5");
    tb_node(g, "Relu", 14, "r4", "b", "y4");
    tb_tensor(m, g, "y4", KILN_DTYPE_INT32, "3,4");
    tb_node(g, "Relu", 14, "r5", "b", "y5");
    tb_tensor(m, g, "y5", KILN_DTYPE_FLOAT, "3,4,1");
    tb_node(g, "Relu", 14, "r6", "a", "y6");
    tb_tensor(m, g, "y6", KILN_DTYPE_UNDEFINED, NULL);
    tb_infer(m);
    KT_CHECK_STR(tb_type(m, "y1"), "float[batch,seq,4]");
    KT_CHECK_STR(tb_type(m, "y2"), "float[n,7,4]");
    KT_CHECK_STR(tb_type(m, "y3"), "float[3,5]");  /* conflict: declared type kept */
    KT_CHECK_STR(tb_type(m, "y6"), "float[batch,?,4]");
    kl_value *y1 = kl_graph_lookup(g, "y1");
    KT_CHECK((y1->flags & (KL_VALUE_INFERRED | KL_VALUE_DECLARED)) ==
             (KL_VALUE_INFERRED | KL_VALUE_DECLARED));
    KT_CHECK_EQ_INT(m->n_problems, 3);
    if (m->n_problems == 3) {
        KT_CHECK_STR(m->problems[0].message,
                     "node 'r3' (Relu): output 0 'y3': inferred shape [3,4] but the model "
                     "declares [3,5]");
        KT_CHECK_STR(m->problems[1].message,
                     "node 'r4' (Relu): output 0 'y4': inferred type float[3,4] but the model "
                     "declares int32[3,4]");
        KT_CHECK_CONTAINS(m->problems[2].message,
                          "inferred shape [3,4] but the model declares [3,4,1]");
    }
    kl_model_free(m);
}

static void test_symbolic_values(void) {
    kl_model *m = tb_model();
    kl_graph *g = m->graph;
    int64_t c23[] = {2, 3}, c4[] = {4}, c12[] = {1, 2}, c1[] = {1}, cm1[] = {-1, 64};
    tb_init_i64(m, g, "c23", false, 2, c23);
    tb_init_i64(m, g, "c4", true, 1, c4);
    tb_init_i64(m, g, "c12", false, 2, c12);
    tb_init_i64(m, g, "c1", false, 1, c1);
    tb_init_i64(m, g, "cm1", false, 2, cm1);
    kl_value *s = tb_tensor(m, g, "shape", KILN_DTYPE_INT64, "2");
    s->sym = kl_arena_alloc(&m->arena, sizeof *s->sym);
    s->sym->rank = 1;
    s->sym->count = 2;
    s->sym->v = tb_shape(m, "batch,128").dims;
    tb_node(g, "Mul", 14, "m1", "c23,c4", "p");
    tb_node(g, "Mul", 14, "m2", "shape,c12", "q");
    tb_node(g, "Div", 14, "d1", "q,c12", "r");
    tb_node(g, "Add", 14, "a1", "shape,c1", "t");
    tb_node(g, "Cast", 13, "cast", "r", "r32");
    tb_int(g->nodes[g->n_nodes - 1], "to", KILN_DTYPE_INT32);
    tb_node(g, "Identity", 14, "id", "r32", "r32b");
    tb_node(g, "Max", 13, "mx", "c23,c4,c1", "mx");
    tb_node(g, "Equal", 13, "eq", "shape,q", "eq");
    tb_node(g, "Where", 16, "wh", "eq,c23,shape", "wh");
    tb_node(g, "Sub", 14, "sub", "q,q", "zero");
    tb_node(g, "Mul", 14, "m3", "cm1,c1", "neg");
    tb_node(g, "Neg", 13, "n1", "cm1", "negated");
    int64_t kv[] = {-3, 5};
    tb_ints(tb_node(g, "Constant", 13, "k", "", "kc"), "value_ints", 2, kv);
    tb_node(g, "Add", 14, "a2", "kc,c4", "kc4");
    tb_attr(tb_node(g, "Constant", 13, "k1", "", "kf"), "value_int", KL_ATTR_INT)->i = 6;
    tb_node(g, "Max", 13, "mx2", "kf,c4", "kf4");
    /* Heads times batch keeps a derived symbol; dividing by heads gives batch
     * back; a symbol (a size) never equals -1 (PyTorch's expand(-1) idiom). */
    int64_t c12h[] = {12, 12}, cneg[] = {-1, -1};
    tb_init_i64(m, g, "c12h", false, 2, c12h);
    tb_init_i64(m, g, "cneg", false, 2, cneg);
    tb_node(g, "Mul", 14, "mh", "shape,c12h", "heads");
    tb_node(g, "Div", 14, "dh", "heads,c12h", "unheads");
    tb_node(g, "Equal", 13, "eqn", "shape,cneg", "isneg");
    tb_infer(m);
    KT_CHECK_EQ_INT(m->n_problems, 0);
    KT_CHECK_STR(tb_sym(m, "heads"), "[12*batch,1536]");
    KT_CHECK_STR(tb_sym(m, "unheads"), "[batch,128]");
    KT_CHECK_STR(tb_sym(m, "isneg"), "[0,0]");
    KT_CHECK_STR(tb_type(m, "p"), "int64[2]");
    KT_CHECK_STR(tb_sym(m, "p"), "[8,12]");
    KT_CHECK_STR(tb_sym(m, "q"), "[batch,256]");
    KT_CHECK_STR(tb_sym(m, "r"), "[batch,128]");
    KT_CHECK_STR(tb_sym(m, "t"), "[?,129]"); /* batch+1: not trivial */
    KT_CHECK_STR(tb_type(m, "r32b"), "int32[2]");
    KT_CHECK_STR(tb_sym(m, "r32b"), "[batch,128]");
    KT_CHECK_STR(tb_sym(m, "mx"), "[4,4]");
    KT_CHECK_STR(tb_type(m, "eq"), "bool[2]");
    KT_CHECK_STR(tb_sym(m, "eq"), "[1,0]");
    KT_CHECK_STR(tb_sym(m, "wh"), "[2,128]");
    KT_CHECK_STR(tb_sym(m, "zero"), "[0,0]");
    KT_CHECK_STR(tb_sym(m, "neg"), "[-1,64]");
    KT_CHECK_STR(tb_sym(m, "negated"), "[1,-64]"); /* constants are read exactly */
    KT_CHECK_STR(tb_sym(m, "kc4"), "[1,9]");
    KT_CHECK_STR(tb_sym(m, "kf4"), "[6]");
    kl_model_free(m);
}

static void test_misc_ops(void) {
    kl_model *m = tb_model();
    kl_graph *g = m->graph;
    tb_tensor(m, g, "a", KILN_DTYPE_FLOAT, "2,3,4");
    tb_tensor(m, g, "b", KILN_DTYPE_FLOAT, "3,1");
    tb_tensor(m, g, "cond", KILN_DTYPE_BOOL, "batch,1,1,1");
    tb_tensor(m, g, "slope", KILN_DTYPE_FLOAT, "4");
    tb_tensor(m, g, "i8", KILN_DTYPE_INT8, "4");
    kl_value *seq = tb_val(g, "seq");
    seq->type.kind = KL_TYPE_SEQUENCE;
    seq->type.inner = kl_arena_alloc(&m->arena, sizeof(kl_type));
    seq->type.inner->kind = KL_TYPE_TENSOR;
    seq->type.inner->elem = KILN_DTYPE_FLOAT;
    seq->type.inner->shape = tb_shape(m, "?");
    tb_node(g, "Add", 6, "legacy", "a,b", "y0");
    tb_node(g, "Where", 16, "where", "cond,a,b", "y1");
    tb_node(g, "PRelu", 16, "prelu", "a,slope", "y2");
    tb_node(g, "Identity", 16, "ids", "seq", "y3");
    tb_node(g, "Pow", 15, "pow", "a,i8", "y4");
    tb_node(g, "Clip", 13, "clip", "a,,", "y5");
    tb_node(g, "BitCast", 26, "bc", "i8", "y6");
    tb_int(g->nodes[g->n_nodes - 1], "to", KILN_DTYPE_UINT8);
    tb_node(g, "BitCast", 26, "bc_bad", "i8", "y7");
    tb_int(g->nodes[g->n_nodes - 1], "to", KILN_DTYPE_FLOAT);
    tb_node(g, "CastLike", 15, "castlike", "a,i8", "y8");
    tb_node(g, "PRelu", 16, "prelu_bad", "slope,a", "y9");
    tb_infer(m);
    KT_CHECK_STR(tb_type(m, "y0"), "float[2,3,4]");
    KT_CHECK_STR(tb_type(m, "y1"), "float[batch,2,3,4]");
    KT_CHECK_STR(tb_type(m, "y2"), "float[2,3,4]");
    KT_CHECK_STR(tb_type(m, "y3"), "seq(float[?])");
    KT_CHECK_STR(tb_type(m, "y4"), "float[2,3,4]");
    KT_CHECK_STR(tb_type(m, "y5"), "float[2,3,4]");
    KT_CHECK_STR(tb_type(m, "y6"), "uint8[4]");
    KT_CHECK_STR(tb_type(m, "y8"), "int8[2,3,4]");
    KT_CHECK_EQ_INT(m->n_problems, 2);
    if (m->n_problems == 2) {
        KT_CHECK_CONTAINS(m->problems[0].message, "node 'bc_bad' (BitCast): cannot bitcast int8");
        KT_CHECK_CONTAINS(m->problems[1].message, "node 'prelu_bad' (PRelu)");
    }
    kl_model_free(m);
}

static void test_subgraph(void) {
    kl_model *m = tb_model();
    kl_graph *g = m->graph;
    tb_tensor(m, g, "x", KILN_DTYPE_FLOAT, "batch,3");
    tb_tensor(m, g, "w", KILN_DTYPE_FLOAT, "4");
    kl_node *outer = tb_node(g, "Wrap", 1, "outer", "x", "y");
    outer->domain = "test.custom";
    outer->schema = NULL;
    kl_graph *body = NULL;
    KT_CHECK_EQ_INT(kl_graph_new(m, g, outer, &body), KILN_OK);
    tb_attr(outer, "body", KL_ATTR_GRAPH)->g = body;
    tb_node(body, "Neg", 13, "inner", "x", "nx");
    tb_node(body, "Add", 14, "inner_bad", "nx,w", "z");
    tb_infer(m);
    kl_value *nx = kl_graph_lookup(body, "nx");
    char buf[64];
    KT_CHECK_STR(kl_type_format(&nx->type, buf, sizeof buf), "float[batch,3]");
    KT_CHECK_EQ_INT(m->n_problems, 1);
    if (m->n_problems) {
        KT_CHECK_EQ_INT(m->problems[0].node_index, -1);
        KT_CHECK_CONTAINS(m->problems[0].message, "node 'inner_bad' (Add)");
    }
    kl_model_free(m);
}

static void test_registry(void) {
    bool other = false;
    const kl_op_schema *s = kl_op_find("", "ReduceSum", 13, &other);
    KT_CHECK(s && s->since == 13 && s->max_inputs == 2);
    s = kl_op_find("", "ReduceSum", 12, NULL);
    KT_CHECK(s && s->since == 11 && s->until == 12);
    s = kl_op_find("", "ReduceMean", 18, NULL);
    KT_CHECK(s && s->since == 18);
    s = kl_op_find(NULL, "Relu", 28, NULL);
    KT_CHECK(s && s->since == 6);
    KT_CHECK(kl_op_find("", "Gelu", 17, &other) == NULL);
    KT_CHECK(other);
    KT_CHECK(kl_op_find("", "NoSuchOp", 17, &other) == NULL);
    KT_CHECK(!other);
    KT_CHECK(kl_op_find("com.example", "Relu", 17, NULL) == NULL);
    /* Every row: sane ranges and attributes; no two rows of an op overlap. */
    size_t n = kl_op_count();
    KT_CHECK(n > 150);
    KT_CHECK(kl_op_at(n) == NULL);
    for (size_t i = 0; i < n; i++) {
        const kl_op_schema *a = kl_op_at(i);
        KT_CHECK(a && a->name && a->domain);
        if (!a || !a->name || !a->domain) continue;
        if (a->since < 1 || (a->until && a->until < a->since) || a->min_inputs < 0 ||
            (a->max_inputs >= 0 && a->max_inputs < a->min_inputs) ||
            (a->max_outputs >= 0 && a->max_outputs < a->min_outputs)) {
            fprintf(stderr, "bad row %s %s %d-%d\n", a->domain, a->name, a->since, a->until);
            KT_CHECK(0);
        }
        for (size_t j = i + 1; j < n; j++) {
            const kl_op_schema *b = kl_op_at(j);
            if (!b || !b->name || strcmp(a->name, b->name) != 0 ||
                strcmp(a->domain, b->domain ? b->domain : "") != 0)
                continue;
            int a_end = a->until ? a->until : 1 << 30, b_end = b->until ? b->until : 1 << 30;
            if (a->since <= b_end && b->since <= a_end) {
                fprintf(stderr, "overlapping rows: %s '%s' %d-%d and %d-%d\n", a->domain, a->name,
                        a->since, a->until, b->since, b->until);
                KT_CHECK(0);
            }
        }
    }
}

int main(void) {
    KT_RUN(test_broadcast_symbolic);
    KT_RUN(test_broadcast_error);
    KT_RUN(test_reduce);
    KT_RUN(test_topk_norm_softmax);
    KT_RUN(test_declared_merge);
    KT_RUN(test_symbolic_values);
    KT_RUN(test_misc_ops);
    KT_RUN(test_subgraph);
    KT_RUN(test_registry);
    return kt_summary();
}
