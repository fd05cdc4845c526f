/*
 * Shape inference of the tensor family (src/ops/tensor.c) on small graphs
 * built by hand: symbolic dims kept through PyTorch-style shape arithmetic,
 * exact dims, and errors that name the node.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/infer_util.h"

/* ---- a tiny graph builder ------------------------------------------------------- */

typedef struct tb {
    kl_model *m;
    kl_graph *g;
    int64_t opset;
    size_t cap_nodes;
} tb;

/* A model with an empty main graph importing ai.onnx `opset`. */
static tb tb_new(int64_t opset) {
    tb t = {0};
    t.m = kl_calloc(1, sizeof *t.m);
    kl_arena_init(&t.m->arena);
    kl_graph_new(t.m, NULL, NULL, &t.g);
    t.m->graph = t.g;
    t.m->opsets = kl_arena_alloc(&t.m->arena, sizeof *t.m->opsets);
    t.m->opsets[0].domain = "";
    t.m->opsets[0].version = opset;
    t.m->n_opsets = 1;
    t.opset = opset;
    return t;
}

static void tb_free(tb *t) { kl_model_free(t->m); }

/* Parse "batch,3,?,224" into dims (NULL spec: unknown rank, "" rank 0). */
static void tb_shape(tb *t, kl_shape *s, const char *spec) {
    s->rank = -1;
    s->dims = NULL;
    if (!spec) return;
    kl_dim tmp[KILN_MAX_RANK];
    int r = 0;
    const char *p = spec;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 1 && p[0] == '?')
            tmp[r].value = -1, tmp[r].param = NULL;
        else if (p[0] >= '0' && p[0] <= '9')
            tmp[r].value = strtoll(p, NULL, 10), tmp[r].param = NULL;
        else
            tmp[r].value = -1, tmp[r].param = kl_arena_strndup(&t->m->arena, p, len);
        r++;
        p += len;
        if (*p == ',') p++;
    }
    s->rank = r;
    s->dims = kl_arena_array(&t->m->arena, (size_t)(r ? r : 1), sizeof *s->dims);
    memcpy(s->dims, tmp, (size_t)r * sizeof *tmp);
}

/* A graph input of dtype and shape spec. */
static kl_value *tb_input(tb *t, const char *name, kiln_dtype dt, const char *spec) {
    kl_value *v;
    kl_graph_value(t->g, name, &v);
    v->type.kind = KL_TYPE_TENSOR;
    v->type.elem = dt;
    tb_shape(t, &v->type.shape, spec);
    v->flags |= KL_VALUE_GRAPH_INPUT | KL_VALUE_DECLARED;
    return v;
}

/* An int64 initializer of rank 0 (n == 1, scalar) or 1. */
static kl_value *tb_ints(tb *t, const char *name, const int64_t *vals, int64_t n, int rank) {
    kl_value *v;
    kl_graph_value(t->g, name, &v);
    kl_tensor *x = kl_arena_alloc(&t->m->arena, sizeof *x);
    x->name = v->name;
    x->dtype = KILN_DTYPE_INT64;
    x->rank = rank;
    x->dims = kl_arena_alloc(&t->m->arena, sizeof *x->dims);
    x->dims[0] = n;
    x->count = n;
    x->nbytes = (size_t)n * 8;
    void *data = kl_arena_alloc(&t->m->arena, x->nbytes + 8);
    memcpy(data, vals, x->nbytes);
    x->data = data;
    v->init = x;
    v->flags |= KL_VALUE_INITIALIZER;
    v->type.kind = KL_TYPE_TENSOR;
    v->type.elem = KILN_DTYPE_INT64;
    v->type.shape.rank = rank;
    v->type.shape.dims = kl_arena_alloc(&t->m->arena, sizeof(kl_dim));
    v->type.shape.dims[0].value = n;
    return v;
}

/* A float initializer of rank 1. */
static kl_value *tb_floats(tb *t, const char *name, const float *vals, int64_t n) {
    kl_value *v;
    kl_graph_value(t->g, name, &v);
    kl_tensor *x = kl_arena_alloc(&t->m->arena, sizeof *x);
    x->name = v->name;
    x->dtype = KILN_DTYPE_FLOAT;
    x->rank = 1;
    x->dims = kl_arena_alloc(&t->m->arena, sizeof *x->dims);
    x->dims[0] = n;
    x->count = n;
    x->nbytes = (size_t)n * 4;
    void *data = kl_arena_alloc(&t->m->arena, x->nbytes + 4);
    memcpy(data, vals, x->nbytes);
    x->data = data;
    v->init = x;
    v->flags |= KL_VALUE_INITIALIZER;
    v->type.kind = KL_TYPE_TENSOR;
    v->type.elem = KILN_DTYPE_FLOAT;
    v->type.shape.rank = 1;
    v->type.shape.dims = kl_arena_alloc(&t->m->arena, sizeof(kl_dim));
    v->type.shape.dims[0].value = n;
    return v;
}

/* Split a comma list of value names ("" entries: omitted) into values. */
static size_t tb_values(tb *t, const char *list, kl_value ***out) {
    size_t n = 1;
    for (const char *p = list; *p; p++) n += *p == ',';
    if (!*list) n = 0;
    kl_value **vs = kl_arena_array(&t->m->arena, n ? n : 1, sizeof *vs);
    const char *p = list;
    for (size_t i = 0; i < n; i++) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        vs[i] = NULL;
        if (len) kl_graph_value(t->g, name, &vs[i]);
        p += len + (e ? 1 : 0);
    }
    *out = vs;
    return n;
}

/* Append node `op` (named `name`) reading `ins` and writing `outs`. */
static kl_node *tb_node(tb *t, const char *name, const char *op, const char *ins,
                        const char *outs) {
    kl_node *n = kl_arena_alloc(&t->m->arena, sizeof *n);
    n->name = name;
    n->op_type = op;
    n->domain = "";
    n->overload = "";
    n->opset = t->opset;
    n->graph = t->g;
    n->n_inputs = tb_values(t, ins, &n->inputs);
    n->n_outputs = tb_values(t, outs, &n->outputs);
    n->attrs = kl_arena_array(&t->m->arena, 8, sizeof *n->attrs);
    for (size_t i = 0; i < n->n_outputs; i++)
        if (n->outputs[i]) n->outputs[i]->producer = n, n->outputs[i]->producer_output = (int)i;
    bool other;
    n->schema = kl_op_find("", op, t->opset, &other);
    if (t->g->n_nodes == t->cap_nodes) {
        size_t cap = t->cap_nodes ? 2 * t->cap_nodes : 16;
        kl_node **nodes = kl_arena_array(&t->m->arena, cap, sizeof *nodes);
        if (t->g->n_nodes) memcpy(nodes, t->g->nodes, t->g->n_nodes * sizeof *nodes);
        t->g->nodes = nodes;
        t->cap_nodes = cap;
    }
    n->index = t->g->n_nodes;
    t->g->nodes[t->g->n_nodes++] = n;
    return n;
}

static kl_attr *tb_attr(kl_node *n, const char *name, kl_attr_type type) {
    kl_attr *a = &n->attrs[n->n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = name;
    a->type = type;
    return a;
}

static void tb_attr_int(kl_node *n, const char *name, int64_t v) {
    tb_attr(n, name, KL_ATTR_INT)->i = v;
}

static void tb_attr_ints(tb *t, kl_node *n, const char *name, const int64_t *v, size_t count) {
    kl_attr *a = tb_attr(n, name, KL_ATTR_INTS);
    a->n = count;
    a->ints = kl_arena_array(&t->m->arena, count ? count : 1, sizeof *a->ints);
    memcpy(a->ints, v, count * sizeof *v);
}

static void tb_attr_str(kl_node *n, const char *name, const char *s) {
    kl_attr *a = tb_attr(n, name, KL_ATTR_STRING);
    a->s.ptr = s;
    a->s.len = strlen(s);
}

/* Run node n's inference directly; returns its status. */
static kiln_status tb_infer(tb *t, kl_node *n) {
    if (!n->schema) return KILN_ERR_UNSUPPORTED;
    kl_infer_ctx c = {t->m, t->g, n, &t->m->arena};
    return n->schema->infer(&c);
}

/* Infer every node in order; returns the first failure. */
static kiln_status tb_infer_all(tb *t) {
    for (size_t i = 0; i < t->g->n_nodes; i++) {
        kiln_status st = tb_infer(t, t->g->nodes[i]);
        if (st != KILN_OK) return st;
    }
    return KILN_OK;
}

/* Formatted type of value `name` ("float[batch,197,12,64]"). */
static const char *tb_type(tb *t, const char *name) {
    static char buf[256];
    kl_value *v = kl_graph_lookup(t->g, name);
    if (!v) return "(no value)";
    return kl_type_format(&v->type, buf, sizeof buf);
}

/* Formatted symval of `name`, e.g. "[batch,?,12,64]" or "" when none. */
static const char *tb_sym(tb *t, const char *name) {
    static char buf[256];
    kl_value *v = kl_graph_lookup(t->g, name);
    if (!v || !v->sym) return "";
    size_t pos = 0;
    pos += (size_t)snprintf(buf + pos, sizeof buf - pos, v->sym->rank == 0 ? "(" : "[");
    for (int64_t k = 0; k < v->sym->count; k++) {
        const kl_dim *d = &v->sym->v[k];
        const char *sep = k ? "," : "";
        if (d->param)
            pos += (size_t)snprintf(buf + pos, sizeof buf - pos, "%s%s", sep, d->param);
        else if (kl_symdim_unknown(d))
            pos += (size_t)snprintf(buf + pos, sizeof buf - pos, "%s?", sep);
        else
            pos +=
                (size_t)snprintf(buf + pos, sizeof buf - pos, "%s%lld", sep, (long long)d->value);
    }
    snprintf(buf + pos, sizeof buf - pos, v->sym->rank == 0 ? ")" : "]");
    return buf;
}

static const int64_t I0[] = {0}, I1[] = {1}, I2[] = {2}, IM1[] = {-1}, I12[] = {12}, I64[] = {64};

/* ---- tests ----------------------------------------------------------------------------- */

/* ViT: Shape -> Gather(0) -> Unsqueeze -> Concat(b, -1, 12, 64) -> Reshape. */
static void test_vit_chain(void) {
    tb t = tb_new(13);
    tb_input(&t, "x", KILN_DTYPE_FLOAT, "batch,197,768");
    tb_ints(&t, "zero", I0, 1, 0);
    tb_ints(&t, "axes0", I0, 1, 1);
    tb_ints(&t, "m1", IM1, 1, 1);
    tb_ints(&t, "c12", I12, 1, 1);
    tb_ints(&t, "c64", I64, 1, 1);
    tb_node(&t, "shape", "Shape", "x", "s");
    tb_node(&t, "gather", "Gather", "s,zero", "b");
    tb_node(&t, "unsq", "Unsqueeze", "b,axes0", "bu");
    tb_attr_int(tb_node(&t, "cat", "Concat", "bu,m1,c12,c64", "target"), "axis", 0);
    tb_node(&t, "reshape", "Reshape", "x,target", "y");
    KT_CHECK_EQ_INT(tb_infer_all(&t), KILN_OK);
    KT_CHECK_STR(tb_type(&t, "s"), "int64[3]");
    KT_CHECK_STR(tb_sym(&t, "s"), "[batch,197,768]");
    KT_CHECK_STR(tb_type(&t, "b"), "int64[]");
    KT_CHECK_STR(tb_sym(&t, "b"), "(batch)");
    KT_CHECK_STR(tb_sym(&t, "bu"), "[batch]");
    KT_CHECK_STR(tb_type(&t, "target"), "int64[4]");
    KT_CHECK_STR(tb_sym(&t, "target"), "[batch,-1,12,64]");
    KT_CHECK_STR(tb_type(&t, "y"), "float[batch,197,12,64]");
    kl_value *y = kl_graph_lookup(t.g, "y");
    KT_CHECK(y && y->type.shape.dims[0].value == -1);
    KT_CHECK_STR(y->type.shape.dims[0].param, "batch");
    tb_free(&t);
}

/* [batch, 50, 768] reshaped by a symval [batch, 50, 12, 64] keeps batch;
 * a constant [0, -1, 12, 64] gives the same. */
static void test_reshape_symbolic(void) {
    tb t = tb_new(14);
    static const int64_t c50[] = {50}, tgt[] = {0, -1, 12, 64};
    tb_input(&t, "x", KILN_DTYPE_FLOAT, "batch,50,768");
    tb_ints(&t, "zero", I0, 1, 1);
    tb_ints(&t, "c50", c50, 1, 1);
    tb_ints(&t, "c12", I12, 1, 1);
    tb_ints(&t, "c64", I64, 1, 1);
    tb_ints(&t, "tgt", tgt, 4, 1);
    tb_node(&t, "shape", "Shape", "x", "s");
    tb_node(&t, "gather", "Gather", "s,zero", "b"); /* 1-D indices: b is [1] */
    tb_attr_int(tb_node(&t, "cat", "Concat", "b,c50,c12,c64", "target"), "axis", 0);
    tb_node(&t, "r1", "Reshape", "x,target", "y1");
    tb_node(&t, "r2", "Reshape", "x,tgt", "y2");
    KT_CHECK_EQ_INT(tb_infer_all(&t), KILN_OK);
    KT_CHECK_STR(tb_sym(&t, "b"), "[batch]");
    KT_CHECK_STR(tb_sym(&t, "target"), "[batch,50,12,64]");
    KT_CHECK_STR(tb_type(&t, "y1"), "float[batch,50,12,64]");
    KT_CHECK_STR(tb_type(&t, "y2"), "float[batch,50,12,64]");
    tb_free(&t);

    /* -1 resolved from known counts, and batch * 197 * 768 / (12 * 64). */
    t = tb_new(14);
    static const int64_t t2[] = {-1, 768}, t3[] = {0, 0, -1}, t4[] = {2, -1, 4, 2};
    tb_input(&t, "x", KILN_DTYPE_FLOAT, "batch,197,768");
    tb_input(&t, "z", KILN_DTYPE_FLOAT, "4,6,8");
    tb_ints(&t, "t2", t2, 2, 1);
    tb_ints(&t, "t3", t3, 3, 1);
    tb_ints(&t, "t4", t4, 4, 1);
    tb_node(&t, "a", "Reshape", "x,t2", "ya");
    tb_node(&t, "b", "Reshape", "x,t3", "yb");
    tb_node(&t, "c", "Reshape", "z,t4", "yc");
    KT_CHECK_EQ_INT(tb_infer_all(&t), KILN_OK);
    KT_CHECK_STR(tb_type(&t, "ya"), "float[?,768]"); /* batch*197 has no name */
    KT_CHECK_STR(tb_type(&t, "yb"), "float[batch,197,768]");
    KT_CHECK_STR(tb_type(&t, "yc"), "float[2,12,4,2]");
    tb_free(&t);
}

/* Reshape errors: 6 elements into [4], two -1, 0 past the input's rank. */
static void test_reshape_errors(void) {
    tb t = tb_new(14);
    static const int64_t four[] = {4}, two_m1[] = {-1, -1}, z3[] = {1, 2, 3, 0};
    tb_input(&t, "x", KILN_DTYPE_FLOAT, "2,3");
    tb_ints(&t, "four", four, 1, 1);
    tb_ints(&t, "mm", two_m1, 2, 1);
    tb_ints(&t, "z", z3, 4, 1);
    kl_node *n = tb_node(&t, "bad_reshape", "Reshape", "x,four", "y");
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_SHAPE);
    KT_CHECK_CONTAINS(kiln_last_error(), "bad_reshape");
    KT_CHECK_CONTAINS(kiln_last_error(), "Reshape");
    KT_CHECK_CONTAINS(kiln_last_error(), "6 elements");
    n = tb_node(&t, "two", "Reshape", "x,mm", "y2");
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_SHAPE);
    KT_CHECK_CONTAINS(kiln_last_error(), "more than one -1");
    n = tb_node(&t, "zero", "Reshape", "x,z", "y3");
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_SHAPE);
    static const int64_t five[] = {5, -1};
    tb_ints(&t, "five", five, 2, 1);
    n = tb_node(&t, "nodiv", "Reshape", "x,five", "y4");
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_SHAPE);
    tb_free(&t);
}

/* Flatten keeps a lone symbol: [batch,512,1,1] -> [batch,512]. */
static void test_flatten(void) {
    tb t = tb_new(13);
    tb_input(&t, "x", KILN_DTYPE_FLOAT, "batch,512,1,1");
    tb_input(&t, "w", KILN_DTYPE_FLOAT, "batch,seq,4");
    tb_node(&t, "f1", "Flatten", "x", "y1");
    tb_attr_int(tb_node(&t, "f2", "Flatten", "x", "y2"), "axis", 0);
    tb_attr_int(tb_node(&t, "f3", "Flatten", "w", "y3"), "axis", -1);
    tb_attr_int(tb_node(&t, "f4", "Flatten", "x", "y4"), "axis", 4);
    KT_CHECK_EQ_INT(tb_infer_all(&t), KILN_OK);
    KT_CHECK_STR(tb_type(&t, "y1"), "float[batch,512]");
    KT_CHECK_STR(tb_type(&t, "y2"), "float[1,?]");
    KT_CHECK_STR(tb_type(&t, "y3"), "float[?,4]");
    KT_CHECK_STR(tb_type(&t, "y4"), "float[?,1]");
    kl_node *n = tb_node(&t, "f5", "Flatten", "x", "y5");
    tb_attr_int(n, "axis", 5);
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_INVALID_MODEL);
    tb_free(&t);
}

/* Transpose with perm, default reversal, and a wrong perm. */
static void test_transpose(void) {
    tb t = tb_new(13);
    static const int64_t nhwc[] = {0, 2, 3, 1}, bad[] = {0, 1};
    tb_input(&t, "x", KILN_DTYPE_FLOAT16, "batch,3,224,w");
    tb_attr_ints(&t, tb_node(&t, "t1", "Transpose", "x", "y1"), "perm", nhwc, 4);
    tb_node(&t, "t2", "Transpose", "x", "y2");
    KT_CHECK_EQ_INT(tb_infer_all(&t), KILN_OK);
    KT_CHECK_STR(tb_type(&t, "y1"), "float16[batch,224,w,3]");
    KT_CHECK_STR(tb_type(&t, "y2"), "float16[w,224,3,batch]");
    kl_node *n = tb_node(&t, "bad_perm", "Transpose", "x", "y3");
    tb_attr_ints(&t, n, "perm", bad, 2);
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_INVALID_MODEL);
    KT_CHECK_CONTAINS(kiln_last_error(), "bad_perm");
    tb_free(&t);
}

/* Slice with negative starts/ends, steps, and symbolic dims to the end. */
static void test_slice(void) {
    tb t = tb_new(13);
    static const int64_t s1[] = {-3}, e1[] = {-1}, a1[] = {2}, s2[] = {0, 1},
                         e2[] = {INT64_MAX, 1000}, a2[] = {0, 1}, st2[] = {1, 2}, s3[] = {-1},
                         e3[] = {INT64_MIN}, st3[] = {-1}, a0[] = {0}, s4[] = {1},
                         e4[] = {INT64_MAX}, s5[] = {-2};
    tb_input(&t, "x", KILN_DTYPE_FLOAT, "batch,10,20");
    tb_ints(&t, "s1", s1, 1, 1);
    tb_ints(&t, "e1", e1, 1, 1);
    tb_ints(&t, "a1", a1, 1, 1);
    tb_ints(&t, "s2", s2, 2, 1);
    tb_ints(&t, "e2", e2, 2, 1);
    tb_ints(&t, "a2", a2, 2, 1);
    tb_ints(&t, "st2", st2, 2, 1);
    tb_ints(&t, "s3", s3, 1, 1);
    tb_ints(&t, "e3", e3, 1, 1);
    tb_ints(&t, "st3", st3, 1, 1);
    tb_ints(&t, "a0", a0, 1, 1);
    tb_ints(&t, "s4", s4, 1, 1);
    tb_ints(&t, "e4", e4, 1, 1);
    tb_ints(&t, "s5", s5, 1, 1);
    tb_node(&t, "sl1", "Slice", "x,s1,e1,a1", "y1");     /* [-3:-1] on 20 -> 2 */
    tb_node(&t, "sl2", "Slice", "x,s2,e2,a2,st2", "y2"); /* batch to the end; 1:1000:2 on 10 -> 5 */
    tb_node(&t, "sl3", "Slice", "x,s3,e3,a1,st3", "y3"); /* reversed 20 */
    tb_node(&t, "sl4", "Slice", "x,s1,e1,a0", "y4");     /* [-3:-1] on batch: unknown */
    tb_node(&t, "shape", "Shape", "x", "s");
    tb_node(&t, "sl5", "Slice", "s,s4,e4", "tail");  /* shape[1:] */
    tb_node(&t, "sl6", "Slice", "s,s5,e4", "last2"); /* shape[-2:] */
    KT_CHECK_EQ_INT(tb_infer_all(&t), KILN_OK);
    KT_CHECK_STR(tb_type(&t, "y1"), "float[batch,10,2]");
    KT_CHECK_STR(tb_type(&t, "y2"), "float[batch,5,20]");
    KT_CHECK_STR(tb_type(&t, "y3"), "float[batch,10,20]");
    KT_CHECK_STR(tb_type(&t, "y4"), "float[?,10,20]");
    KT_CHECK_STR(tb_type(&t, "tail"), "int64[2]");
    KT_CHECK_STR(tb_sym(&t, "tail"), "[10,20]");
    KT_CHECK_STR(tb_sym(&t, "last2"), "[10,20]");
    static const int64_t z[] = {0};
    tb_ints(&t, "zstep", z, 1, 1);
    kl_node *n = tb_node(&t, "step0", "Slice", "x,s1,e1,a1,zstep", "y5");
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_INVALID_MODEL);
    n = tb_node(&t, "axis9", "Slice", "x,s1,e1,e4", "y6"); /* axis INT64_MAX */
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_INVALID_MODEL);
    tb_free(&t);

    /* opset 1: attributes */
    t = tb_new(9);
    static const int64_t st[] = {1, -4}, en[] = {3, 100}, ax[] = {0, 1};
    tb_input(&t, "x", KILN_DTYPE_FLOAT, "5,6");
    n = tb_node(&t, "old", "Slice", "x", "y");
    tb_attr_ints(&t, n, "starts", st, 2);
    tb_attr_ints(&t, n, "ends", en, 2);
    tb_attr_ints(&t, n, "axes", ax, 2);
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_OK);
    KT_CHECK_STR(tb_type(&t, "y"), "float[2,4]");
    tb_free(&t);
}

/* Concat: symbolic dims off the axis kept, known axis dims summed, symbols
 * alone on the axis kept; different ranks is an error. */
static void test_concat(void) {
    tb t = tb_new(13);
    tb_input(&t, "a", KILN_DTYPE_FLOAT, "batch,3");
    tb_input(&t, "b", KILN_DTYPE_FLOAT, "batch,4");
    tb_input(&t, "c", KILN_DTYPE_FLOAT, "?,5");
    tb_input(&t, "d", KILN_DTYPE_FLOAT, "seq,5");
    tb_input(&t, "e", KILN_DTYPE_FLOAT, "0,5");
    tb_input(&t, "r1", KILN_DTYPE_FLOAT, "7");
    tb_input(&t, "i", KILN_DTYPE_INT32, "batch,1");
    tb_attr_int(tb_node(&t, "c1", "Concat", "a,b", "y1"), "axis", 1);
    tb_attr_int(tb_node(&t, "c2", "Concat", "c,b,a", "y2"), "axis", -1);
    tb_attr_int(tb_node(&t, "c3", "Concat", "d,e", "y3"), "axis", 0);
    tb_attr_int(tb_node(&t, "c4", "Concat", "a,a", "y4"), "axis", 0);
    tb_attr_int(tb_node(&t, "c5", "Concat", "c,d", "y5"), "axis", 1);
    KT_CHECK_EQ_INT(tb_infer(&t, t.g->nodes[0]), KILN_OK);
    KT_CHECK_STR(tb_type(&t, "y1"), "float[batch,7]");
    KT_CHECK_EQ_INT(tb_infer(&t, t.g->nodes[1]), KILN_OK);
    KT_CHECK_STR(tb_type(&t, "y2"), "float[batch,12]");
    KT_CHECK_EQ_INT(tb_infer(&t, t.g->nodes[2]), KILN_OK);
    KT_CHECK_STR(tb_type(&t, "y3"), "float[seq,5]");
    KT_CHECK_EQ_INT(tb_infer(&t, t.g->nodes[3]), KILN_OK);
    KT_CHECK_STR(tb_type(&t, "y4"), "float[?,3]");
    KT_CHECK_EQ_INT(tb_infer(&t, t.g->nodes[4]), KILN_OK);
    KT_CHECK_STR(tb_type(&t, "y5"), "float[seq,10]");
    kl_node *n = tb_node(&t, "rank_mismatch", "Concat", "a,r1", "y6");
    tb_attr_int(n, "axis", 0);
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_SHAPE);
    KT_CHECK_CONTAINS(kiln_last_error(), "rank_mismatch");
    KT_CHECK_CONTAINS(kiln_last_error(), "same rank");
    n = tb_node(&t, "types", "Concat", "a,i", "y7");
    tb_attr_int(n, "axis", 1);
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_TYPE);
    n = tb_node(&t, "axis_range", "Concat", "a,b", "y8");
    tb_attr_int(n, "axis", 2);
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_INVALID_MODEL);
    tb_free(&t);
}

/* Split: num_outputs (opset 18, uneven), split input, equal parts. */
static void test_split(void) {
    tb t = tb_new(18);
    static const int64_t sizes[] = {2, 5}, wrong[] = {2, 4};
    tb_input(&t, "x", KILN_DTYPE_FLOAT, "7,batch");
    tb_ints(&t, "sizes", sizes, 2, 1);
    tb_ints(&t, "wrong", wrong, 2, 1);
    tb_attr_int(tb_node(&t, "s1", "Split", "x", "a,b,c"), "num_outputs", 3);
    tb_node(&t, "s2", "Split", "x,sizes", "d,e");
    kl_node *n = tb_node(&t, "s3", "Split", "x", "f,g");
    tb_attr_int(n, "axis", -1);
    tb_attr_int(n, "num_outputs", 2);
    KT_CHECK_EQ_INT(tb_infer_all(&t), KILN_OK);
    KT_CHECK_STR(tb_type(&t, "a"), "float[3,batch]");
    KT_CHECK_STR(tb_type(&t, "b"), "float[3,batch]");
    KT_CHECK_STR(tb_type(&t, "c"), "float[1,batch]");
    KT_CHECK_STR(tb_type(&t, "d"), "float[2,batch]");
    KT_CHECK_STR(tb_type(&t, "e"), "float[5,batch]");
    KT_CHECK_STR(tb_type(&t, "f"), "float[7,?]");
    n = tb_node(&t, "bad_sum", "Split", "x,wrong", "h,i");
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_SHAPE);
    KT_CHECK_CONTAINS(kiln_last_error(), "bad_sum");
    n = tb_node(&t, "bad_num", "Split", "x", "j,k");
    tb_attr_int(n, "num_outputs", 3);
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_INVALID_MODEL);
    tb_free(&t);

    t = tb_new(11); /* attribute split, equal parts */
    static const int64_t sp[] = {1, 3};
    tb_input(&t, "x", KILN_DTYPE_FLOAT, "4,6");
    tb_attr_ints(&t, tb_node(&t, "s1", "Split", "x", "a,b"), "split", sp, 2);
    tb_attr_int(tb_node(&t, "s2", "Split", "x", "c,d,e"), "axis", 1);
    KT_CHECK_EQ_INT(tb_infer_all(&t), KILN_OK);
    KT_CHECK_STR(tb_type(&t, "a"), "float[1,6]");
    KT_CHECK_STR(tb_type(&t, "b"), "float[3,6]");
    KT_CHECK_STR(tb_type(&t, "e"), "float[4,2]");
    n = tb_node(&t, "uneven", "Split", "x", "f,g,h");
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_SHAPE);
    tb_free(&t);
}

/* Gather/Squeeze/Unsqueeze on shapes and symvals, and their errors. */
static void test_gather_squeeze(void) {
    tb t = tb_new(13);
    static const int64_t idx2[] = {2, 0}, big[] = {3};
    tb_input(&t, "x", KILN_DTYPE_FLOAT, "batch,seq,64");
    tb_input(&t, "ids", KILN_DTYPE_INT64, "batch,seq");
    tb_input(&t, "emb", KILN_DTYPE_FLOAT, "30522,768");
    tb_ints(&t, "idx2", idx2, 2, 1);
    tb_ints(&t, "m1", IM1, 1, 0);
    tb_ints(&t, "big", big, 1, 0);
    tb_ints(&t, "ax0", I0, 1, 1);
    tb_ints(&t, "ax1", I1, 1, 1);
    tb_node(&t, "emb", "Gather", "emb,ids", "h");
    tb_node(&t, "shape", "Shape", "x", "s");
    tb_node(&t, "g1", "Gather", "s,idx2", "s20");
    tb_node(&t, "g2", "Gather", "s,m1", "last");
    tb_node(&t, "u", "Unsqueeze", "x,ax1", "xu");
    tb_node(&t, "sq", "Squeeze", "xu,ax1", "xs");
    tb_node(&t, "u2", "Unsqueeze", "last,ax0", "lastu");
    tb_node(&t, "sq2", "Squeeze", "lastu,ax0", "lasts");
    KT_CHECK_EQ_INT(tb_infer_all(&t), KILN_OK);
    KT_CHECK_STR(tb_type(&t, "h"), "float[batch,seq,768]");
    KT_CHECK_STR(tb_sym(&t, "s20"), "[64,batch]");
    KT_CHECK_STR(tb_sym(&t, "last"), "(64)");
    KT_CHECK_STR(tb_type(&t, "xu"), "float[batch,1,seq,64]");
    KT_CHECK_STR(tb_type(&t, "xs"), "float[batch,seq,64]");
    KT_CHECK_STR(tb_sym(&t, "lastu"), "[64]");
    KT_CHECK_STR(tb_sym(&t, "lasts"), "(64)");
    kl_node *n = tb_node(&t, "oob", "Gather", "s,big", "bad");
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_SHAPE);
    KT_CHECK_CONTAINS(kiln_last_error(), "out of range");
    n = tb_node(&t, "sq3", "Squeeze", "x,ax1", "bad2"); /* seq may not be 1: fine */
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_OK);
    n = tb_node(&t, "sq4", "Squeeze", "emb,ax0", "bad3");
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_SHAPE);
    tb_free(&t);

    t = tb_new(11); /* attribute axes, squeeze of every 1 */
    static const int64_t axes[] = {0, -1};
    tb_input(&t, "x", KILN_DTYPE_FLOAT, "1,3,1");
    tb_input(&t, "y", KILN_DTYPE_FLOAT, "batch,1");
    tb_attr_ints(&t, tb_node(&t, "u", "Unsqueeze", "x", "a"), "axes", axes, 2);
    tb_node(&t, "s", "Squeeze", "x", "b");
    tb_node(&t, "s2", "Squeeze", "y", "c");
    KT_CHECK_EQ_INT(tb_infer_all(&t), KILN_OK);
    KT_CHECK_STR(tb_type(&t, "a"), "float[1,1,3,1,1]");
    KT_CHECK_STR(tb_type(&t, "b"), "float[3]");
    KT_CHECK_STR(tb_type(&t, "c"), "float[*]"); /* batch may be 1 */
    tb_free(&t);
}

/* Constant, ConstantOfShape, Range and Expand with symbolic shapes. */
static void test_constants_and_ranges(void) {
    tb t = tb_new(13);
    static const int64_t vals[] = {3, -1, 7}, shp[] = {1, 3, 1};
    tb_input(&t, "x", KILN_DTYPE_FLOAT, "batch,seq,4");
    tb_input(&t, "w", KILN_DTYPE_FLOAT, "batch,1,4");
    kl_node *n = tb_node(&t, "k", "Constant", "", "kv");
    tb_attr_ints(&t, n, "value_ints", vals, 3);
    tb_attr_int(tb_node(&t, "k2", "Constant", "", "kf"), "value_int", 5);
    tb_ints(&t, "shp", shp, 3, 1);
    tb_ints(&t, "zero", I0, 1, 0);
    tb_ints(&t, "one", I1, 1, 0);
    tb_ints(&t, "two", I2, 1, 0);
    tb_ints(&t, "sev", I12, 1, 0);
    tb_node(&t, "shape", "Shape", "x", "s");
    tb_node(&t, "cos", "ConstantOfShape", "s", "filled");
    tb_node(&t, "g", "Gather", "s,one", "seqlen");
    tb_node(&t, "r", "Range", "zero,seqlen,one", "pos");
    tb_node(&t, "r2", "Range", "one,sev,two", "odd");
    tb_node(&t, "e", "Expand", "w,shp", "we");
    tb_node(&t, "e2", "Expand", "w,s", "wx");
    KT_CHECK_EQ_INT(tb_infer_all(&t), KILN_OK);
    KT_CHECK_STR(tb_type(&t, "kv"), "int64[3]");
    KT_CHECK_STR(tb_sym(&t, "kv"), "[3,-1,7]");
    KT_CHECK_STR(tb_type(&t, "kf"), "int64[]");
    KT_CHECK_STR(tb_type(&t, "filled"), "float[batch,seq,4]");
    KT_CHECK_STR(tb_type(&t, "pos"), "int64[seq]");
    KT_CHECK_STR(tb_type(&t, "odd"), "int64[6]");
    KT_CHECK_STR(tb_sym(&t, "odd"), "[1,3,5,7,9,11]");
    KT_CHECK_STR(tb_type(&t, "we"), "float[batch,3,4]");
    KT_CHECK_STR(tb_type(&t, "wx"), "float[batch,seq,4]");
    n = tb_node(&t, "none", "Constant", "", "kn");
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_INVALID_MODEL);
    n = tb_node(&t, "zero_delta", "Range", "one,sev,zero", "bad");
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_INVALID_MODEL);
    tb_free(&t);
}

/* Resize (scales, sizes with axes and keep_aspect_ratio_policy), Pad with
 * axes, Tile, DepthToSpace. */
static void test_resize_pad(void) {
    tb t = tb_new(19);
    static const float sc[] = {1, 1, 2, 2}, sc2[] = {0.5f, 0.5f};
    static const int64_t sizes[] = {7, 8}, pads[] = {1, 0, 2, 3}, pax[] = {1, 3},
                         rep[] = {1, 2, 1, 3};
    tb_input(&t, "x", KILN_DTYPE_FLOAT, "batch,3,10,20");
    tb_floats(&t, "sc", sc, 4);
    tb_floats(&t, "sc2", sc2, 2);
    tb_ints(&t, "sizes", sizes, 2, 1);
    tb_ints(&t, "pads", pads, 4, 1);
    tb_ints(&t, "pax", pax, 2, 1);
    tb_ints(&t, "rep", rep, 4, 1);
    tb_node(&t, "r1", "Resize", "x,,sc", "y1");
    static const int64_t hw[] = {2, 3};
    tb_attr_ints(&t, tb_node(&t, "r2", "Resize", "x,,sc2", "y2"), "axes", hw, 2);
    kl_node *n = tb_node(&t, "r3", "Resize", "x,,,sizes", "y3");
    tb_attr_ints(&t, n, "axes", hw, 2);
    tb_attr_str(n, "keep_aspect_ratio_policy", "not_larger");
    n = tb_node(&t, "r4", "Resize", "x,,,sizes", "y4");
    tb_attr_ints(&t, n, "axes", hw, 2);
    tb_node(&t, "p", "Pad", "x,pads,,pax", "y5");
    tb_node(&t, "tile", "Tile", "x,rep", "y6");
    tb_attr_int(tb_node(&t, "d2s", "DepthToSpace", "y6", "y7"), "blocksize", 1);
    KT_CHECK_EQ_INT(tb_infer_all(&t), KILN_OK);
    KT_CHECK_STR(tb_type(&t, "y1"), "float[batch,3,20,40]");
    KT_CHECK_STR(tb_type(&t, "y2"), "float[batch,3,5,10]");
    KT_CHECK_STR(tb_type(&t, "y3"), "float[batch,3,4,8]"); /* scale min(0.7, 0.4) */
    KT_CHECK_STR(tb_type(&t, "y4"), "float[batch,3,7,8]");
    KT_CHECK_STR(tb_type(&t, "y5"), "float[batch,6,10,23]");
    KT_CHECK_STR(tb_type(&t, "y6"), "float[batch,6,10,60]");
    KT_CHECK_STR(tb_type(&t, "y7"), "float[batch,6,10,60]");
    n = tb_node(&t, "both", "Resize", "x,,sc,sizes", "bad");
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_INVALID_MODEL);
    n = tb_node(&t, "d2s3", "DepthToSpace", "x", "bad2");
    tb_attr_int(n, "blocksize", 2);
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_SHAPE);
    tb_free(&t);
}

/* A shape tensor with one runtime element still lets Reshape solve it:
 * [batch, n, 12, 64] with n unknown reshapes [batch, seq, 768] to
 * [batch, seq, 12, 64]. */
static void test_reshape_unknown_element(void) {
    tb t = tb_new(13);
    tb_input(&t, "x", KILN_DTYPE_FLOAT, "batch,seq,768");
    tb_input(&t, "n", KILN_DTYPE_INT64, "1");
    tb_input(&t, "s4", KILN_DTYPE_INT64, "4");
    tb_ints(&t, "zero", I0, 1, 1);
    tb_ints(&t, "c12", I12, 1, 1);
    tb_ints(&t, "c64", I64, 1, 1);
    tb_node(&t, "shape", "Shape", "x", "s");
    tb_node(&t, "gather", "Gather", "s,zero", "b");
    tb_attr_int(tb_node(&t, "cat", "Concat", "b,n,c12,c64", "target"), "axis", 0);
    tb_node(&t, "r", "Reshape", "x,target", "y");
    tb_node(&t, "r2", "Reshape", "x,s4", "y2");
    KT_CHECK_EQ_INT(tb_infer_all(&t), KILN_OK);
    KT_CHECK_STR(tb_sym(&t, "target"), "[batch,?,12,64]");
    KT_CHECK_STR(tb_type(&t, "y"), "float[batch,seq,12,64]");
    KT_CHECK_STR(tb_type(&t, "y2"), "float[?,?,?,?]");
    tb_free(&t);
}

/* Shape with start/end (opset 15), Size, GatherND, OneHot, Compress with a
 * constant condition, EyeLike, CenterCropPad, Unique, NonZero, Upsample. */
static void test_misc_ops(void) {
    tb t = tb_new(18);
    static const int64_t depth[] = {10}, crop[] = {5, 6}, caxes[] = {1, 2};
    static const float up[] = {1, 1, 2, 3};
    tb_input(&t, "x", KILN_DTYPE_FLOAT, "batch,7,8");
    tb_input(&t, "ind", KILN_DTYPE_INT64, "batch,4,2");
    tb_input(&t, "idx", KILN_DTYPE_INT32, "batch,3");
    tb_input(&t, "vals", KILN_DTYPE_FLOAT16, "2");
    tb_input(&t, "m", KILN_DTYPE_FLOAT, "3,4");
    tb_ints(&t, "depth", depth, 1, 0);
    tb_ints(&t, "crop", crop, 2, 1);
    tb_floats(&t, "up", up, 4);
    kl_node *n = tb_node(&t, "sh", "Shape", "x", "s");
    tb_attr_int(n, "start", -2);
    tb_node(&t, "size", "Size", "x", "count");
    tb_node(&t, "gnd", "GatherND", "x,ind", "g");
    tb_attr_int(tb_node(&t, "oh", "OneHot", "idx,depth,vals", "o"), "axis", 1);
    tb_attr_int(tb_node(&t, "eye", "EyeLike", "m", "e"), "dtype", KILN_DTYPE_INT32);
    tb_attr_ints(&t, tb_node(&t, "ccp", "CenterCropPad", "x,crop", "cc"), "axes", caxes, 2);
    tb_attr_int(tb_node(&t, "uq", "Unique", "m", "u,ui,uinv,ucnt"), "axis", 0);
    tb_node(&t, "nz", "NonZero", "x", "nzo");
    KT_CHECK_EQ_INT(tb_infer_all(&t), KILN_OK);
    KT_CHECK_STR(tb_type(&t, "s"), "int64[2]");
    KT_CHECK_STR(tb_sym(&t, "s"), "[7,8]");
    KT_CHECK_STR(tb_type(&t, "count"), "int64[]");
    KT_CHECK_STR(tb_sym(&t, "count"), "");
    KT_CHECK_STR(tb_type(&t, "g"), "float[batch,4,8]");
    KT_CHECK_STR(tb_type(&t, "o"), "float16[batch,10,3]");
    KT_CHECK_STR(tb_type(&t, "e"), "int32[3,4]");
    KT_CHECK_STR(tb_type(&t, "cc"), "float[batch,5,6]");
    KT_CHECK_STR(tb_type(&t, "u"), "float[?,4]");
    KT_CHECK_STR(tb_type(&t, "uinv"), "int64[3]");
    KT_CHECK_STR(tb_type(&t, "nzo"), "int64[3,?]");
    tb_free(&t);

    t = tb_new(9);
    tb_input(&t, "x", KILN_DTYPE_FLOAT, "batch,3,4,5");
    tb_floats(&t, "up", up, 4);
    tb_node(&t, "ups", "Upsample", "x,up", "y");
    KT_CHECK_EQ_INT(tb_infer_all(&t), KILN_OK);
    KT_CHECK_STR(tb_type(&t, "y"), "float[batch,3,8,15]");
    tb_free(&t);
}

/* Schema rows: the right version ranges and attribute types. */
static void test_schemas(void) {
    bool other = false;
    const kl_op_schema *s = kl_op_find("", "Split", 18, NULL);
    KT_CHECK(s && s->since == 18);
    KT_CHECK(kl_op_find("", "Split", 17, NULL)->since == 13);
    KT_CHECK(kl_op_find("", "Reshape", 14, NULL)->since == 14);
    KT_CHECK(kl_op_find("", "Reshape", 25, NULL)->since == 14);
    KT_CHECK(kl_op_find("", "Pad", 18, NULL)->max_inputs == 4);
    KT_CHECK(kl_op_find("", "Pad", 13, NULL)->max_inputs == 3);
    KT_CHECK(kl_op_find("", "Unsqueeze", 13, NULL)->min_inputs == 2);
    KT_CHECK(kl_op_find("", "Upsample", 10, &other) == NULL && other);
    KT_CHECK(kl_op_find("", "CenterCropPad", 17, &other) == NULL && other);
    KT_CHECK(kl_op_find("", "TensorScatter", 24, NULL) != NULL);
    s = kl_op_find("", "Constant", 13, NULL);
    bool found = false;
    for (const kl_attr_spec *a = s->attrs; a->name; a++)
        if (strcmp(a->name, "value_strings") == 0)
            found = a->type == KL_ATTR_STRINGS && !a->required;
    KT_CHECK(found);
    /* every row of the table has an infer function and sane ranges */
    for (const kl_op_schema *r = kl_ops_tensor; r->name; r++) {
        KT_CHECK(r->infer != NULL);
        KT_CHECK(r->until == 0 || r->until >= r->since);
        KT_CHECK(r->max_inputs == -1 || r->max_inputs >= r->min_inputs);
    }
}

int main(void) {
    KT_RUN(test_vit_chain);
    KT_RUN(test_reshape_symbolic);
    KT_RUN(test_reshape_errors);
    KT_RUN(test_flatten);
    KT_RUN(test_transpose);
    KT_RUN(test_slice);
    KT_RUN(test_concat);
    KT_RUN(test_split);
    KT_RUN(test_gather_squeeze);
    KT_RUN(test_constants_and_ranges);
    KT_RUN(test_resize_pad);
    KT_RUN(test_reshape_unknown_element);
    KT_RUN(test_misc_ops);
    KT_RUN(test_schemas);
    return kt_summary();
}
