/*
 * Shape inference of the nn and quantization families (src/ops/nn.c,
 * src/ops/quant.c): graphs built by hand, one node each, inferred output
 * types compared as "float[batch,64,112,112]".
 */
#include <stdarg.h>
#include <stdlib.h>

#include "harness.h"
#include "ir/ir.h"
#include "ops/ops.h"

/* ---- a tiny graph builder ------------------------------------------------------- */

typedef struct tb {
    kl_model *m;
    kl_graph *g;
} tb;

static tb tb_new(void) {
    tb t = {0};
    t.m = kl_calloc(1, sizeof *t.m);
    if (!t.m) abort();
    kl_arena_init(&t.m->arena);
    t.m->path = "<test>";
    if (kl_graph_new(t.m, NULL, NULL, &t.g) != KILN_OK) abort();
    t.m->graph = t.g;
    return t;
}

static void tb_free(tb *t) { kl_model_free(t->m); }

/* Value `name` with a declared tensor type; dims "batch,3,224,224" (numbers,
 * "?" or symbols), "" for a scalar, NULL for unknown rank. */
static kl_value *tb_tensor(tb *t, const char *name, kiln_dtype dt, const char *dims) {
    kl_value *v;
    if (kl_graph_value(t->g, name, &v) != KILN_OK) abort();
    v->type.kind = KL_TYPE_TENSOR;
    v->type.elem = dt;
    v->type.shape.rank = -1;
    v->flags |= KL_VALUE_DECLARED | KL_VALUE_GRAPH_INPUT;
    if (!dims) return v;
    kl_dim tmp[KILN_MAX_RANK];
    int rank = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", dims);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        kl_dim d = {-1, NULL};
        if (tok[0] >= '0' && tok[0] <= '9') d.value = strtoll(tok, NULL, 10);
        else if (strcmp(tok, "?") != 0) d.param = kl_arena_strdup(&t->m->arena, tok);
        tmp[rank++] = d;
    }
    v->type.shape.rank = rank;
    v->type.shape.dims = kl_arena_array(&t->m->arena, (size_t)(rank ? rank : 1), sizeof(kl_dim));
    memcpy(v->type.shape.dims, tmp, (size_t)rank * sizeof(kl_dim));
    return v;
}

/* Split "a,,b" into value pointers (empty = omitted), creating values. */
static size_t tb_values(tb *t, const char *names, kl_value ***out) {
    char buf[256];
    size_t n = 1;
    snprintf(buf, sizeof buf, "%s", names);
    for (const char *p = buf; *p; p++) n += *p == ',';
    if (!buf[0]) n = 0;
    kl_value **vals = kl_arena_array(&t->m->arena, n ? n : 1, sizeof *vals);
    char *p = buf;
    for (size_t i = 0; i < n; i++) {
        char *comma = strchr(p, ',');
        if (comma) *comma = 0;
        if (*p && kl_graph_value(t->g, p, &vals[i]) != KILN_OK) abort();
        p = comma ? comma + 1 : p + strlen(p);
    }
    *out = vals;
    return n;
}

/* A node of op `op` at `opset` (domain "") reading `ins`, writing `outs`. */
static kl_node *tb_node(tb *t, const char *name, const char *op, int64_t opset, const char *ins,
                        const char *outs) {
    kl_node *n = kl_arena_alloc(&t->m->arena, sizeof *n);
    n->name = name;
    n->op_type = op;
    n->domain = "";
    n->overload = "";
    n->opset = opset;
    n->graph = t->g;
    n->n_inputs = tb_values(t, ins, &n->inputs);
    n->n_outputs = tb_values(t, outs, &n->outputs);
    for (size_t i = 0; i < n->n_outputs; i++)
        if (n->outputs[i]) {
            n->outputs[i]->producer = n;
            n->outputs[i]->producer_output = (int)i;
        }
    n->attrs = kl_arena_array(&t->m->arena, 16, sizeof(kl_attr));
    n->schema = kl_op_find("", op, opset, NULL);
    return n;
}

static kl_attr *tb_attr(kl_node *n, const char *name, kl_attr_type type) {
    kl_attr *a = &n->attrs[n->n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = name;
    a->type = type;
    return a;
}

static void attr_int(kl_node *n, const char *name, int64_t v) {
    tb_attr(n, name, KL_ATTR_INT)->i = v;
}

static void attr_str(kl_node *n, const char *name, const char *s) {
    kl_attr *a = tb_attr(n, name, KL_ATTR_STRING);
    a->s.ptr = s;
    a->s.len = strlen(s);
}

/* INTS attribute with `count` values given as varargs (int). */
static void attr_ints(tb *t, kl_node *n, const char *name, int count, ...) {
    kl_attr *a = tb_attr(n, name, KL_ATTR_INTS);
    va_list ap;
    a->ints = kl_arena_array(&t->m->arena, (size_t)count, sizeof(int64_t));
    a->n = (size_t)count;
    va_start(ap, count);
    for (int i = 0; i < count; i++) a->ints[i] = va_arg(ap, int);
    va_end(ap);
}

/* Run the node's inference; KILN_ERR_NOT_FOUND when it has no schema. */
static kiln_status tb_infer(tb *t, kl_node *n) {
    if (!n->schema || !n->schema->infer) return KILN_ERR_NOT_FOUND;
    kl_infer_ctx c = {t->m, t->g, n, &t->m->arena};
    return n->schema->infer(&c);
}

/* Type of value `name` as "float[batch,64,112,112]". */
static const char *ty(tb *t, const char *name) {
    static char buf[4][256];
    static int k;
    kl_value *v = kl_graph_lookup(t->g, name);
    char *b = buf[k++ % 4];
    if (!v) return "(none)";
    return kl_type_format(&v->type, b, 256);
}

/* ---- convolution and pooling ------------------------------------------------------ */

static void test_resnet_stem(void) {
    tb t = tb_new();
    tb_tensor(&t, "x", KILN_DTYPE_FLOAT, "batch,3,224,224");
    tb_tensor(&t, "w", KILN_DTYPE_FLOAT, "64,3,7,7");
    tb_tensor(&t, "b", KILN_DTYPE_FLOAT, "64");
    kl_node *conv = tb_node(&t, "conv1", "Conv", 22, "x,w,b", "c1");
    attr_ints(&t, conv, "kernel_shape", 2, 7, 7);
    attr_ints(&t, conv, "strides", 2, 2, 2);
    attr_ints(&t, conv, "pads", 4, 3, 3, 3, 3);
    KT_CHECK_EQ_INT(tb_infer(&t, conv), KILN_OK);
    KT_CHECK_STR(ty(&t, "c1"), "float[batch,64,112,112]");

    kl_node *pool = tb_node(&t, "pool1", "MaxPool", 12, "c1", "p1,idx");
    attr_ints(&t, pool, "kernel_shape", 2, 3, 3);
    attr_ints(&t, pool, "strides", 2, 2, 2);
    attr_ints(&t, pool, "pads", 4, 1, 1, 1, 1);
    KT_CHECK_EQ_INT(tb_infer(&t, pool), KILN_OK);
    KT_CHECK_STR(ty(&t, "p1"), "float[batch,64,56,56]");
    KT_CHECK_STR(ty(&t, "idx"), "int64[batch,64,56,56]");

    kl_node *gap = tb_node(&t, "gap", "GlobalAveragePool", 1, "p1", "g");
    KT_CHECK_EQ_INT(tb_infer(&t, gap), KILN_OK);
    KT_CHECK_STR(ty(&t, "g"), "float[batch,64,1,1]");
    tb_free(&t);
}

static void test_conv_kernel_from_weight_and_symbolic(void) {
    tb t = tb_new();
    tb_tensor(&t, "x", KILN_DTYPE_FLOAT16, "N,16,H,W");
    tb_tensor(&t, "w", KILN_DTYPE_FLOAT16, "32,16,3,3");
    kl_node *n = tb_node(&t, "c", "Conv", 11, "x,w", "y");
    attr_ints(&t, n, "pads", 4, 1, 1, 1, 1); /* 3x3, pad 1, stride 1 keeps H and W */
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_OK);
    KT_CHECK_STR(ty(&t, "y"), "float16[N,32,H,W]");

    kl_node *s2 = tb_node(&t, "c2", "Conv", 11, "x,w", "y2");
    attr_ints(&t, s2, "strides", 2, 2, 2);
    KT_CHECK_EQ_INT(tb_infer(&t, s2), KILN_OK);
    KT_CHECK_STR(ty(&t, "y2"), "float16[N,32,?,?]");

    tb_tensor(&t, "xu", KILN_DTYPE_FLOAT16, NULL);
    kl_node *u = tb_node(&t, "cu", "Conv", 11, "xu,w", "yu");
    KT_CHECK_EQ_INT(tb_infer(&t, u), KILN_OK);
    KT_CHECK_STR(ty(&t, "yu"), "float16[?,32,?,?]");
    tb_free(&t);
}

static void test_auto_pad(void) {
    tb t = tb_new();
    tb_tensor(&t, "x", KILN_DTYPE_FLOAT, "1,3,225,224");
    tb_tensor(&t, "w", KILN_DTYPE_FLOAT, "32,3,3,3");
    kl_node *n = tb_node(&t, "c", "Conv", 22, "x,w", "y");
    attr_str(n, "auto_pad", "SAME_UPPER");
    attr_ints(&t, n, "strides", 2, 2, 2);
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_OK);
    KT_CHECK_STR(ty(&t, "y"), "float[1,32,113,112]");

    tb_tensor(&t, "xs", KILN_DTYPE_FLOAT, "B,3,H,W");
    kl_node *s = tb_node(&t, "cs", "Conv", 22, "xs,w", "ys");
    attr_str(s, "auto_pad", "SAME_LOWER");
    KT_CHECK_EQ_INT(tb_infer(&t, s), KILN_OK);
    KT_CHECK_STR(ty(&t, "ys"), "float[B,32,H,W]");

    kl_node *v = tb_node(&t, "cv", "Conv", 22, "x,w", "yv");
    attr_str(v, "auto_pad", "VALID");
    attr_ints(&t, v, "pads", 4, 5, 5, 5, 5); /* pads given: they win, as in ONNX */
    KT_CHECK_EQ_INT(tb_infer(&t, v), KILN_OK);
    KT_CHECK_STR(ty(&t, "yv"), "float[1,32,233,232]");

    kl_node *bad = tb_node(&t, "cb", "Conv", 22, "x,w", "yb");
    attr_str(bad, "auto_pad", "SAME");
    KT_CHECK_EQ_INT(tb_infer(&t, bad), KILN_ERR_INVALID_MODEL);
    KT_CHECK_CONTAINS(kl_error_message(), "node 'cb' (Conv): auto_pad 'SAME'");
    tb_free(&t);
}

static void test_ceil_mode(void) {
    tb t = tb_new();
    tb_tensor(&t, "x", KILN_DTYPE_FLOAT, "1,1,4,4");
    kl_node *f = tb_node(&t, "f", "MaxPool", 12, "x", "yf");
    attr_ints(&t, f, "kernel_shape", 2, 3, 3);
    attr_ints(&t, f, "strides", 2, 2, 2);
    KT_CHECK_EQ_INT(tb_infer(&t, f), KILN_OK);
    KT_CHECK_STR(ty(&t, "yf"), "float[1,1,1,1]");
    kl_node *c = tb_node(&t, "c", "MaxPool", 12, "x", "yc");
    attr_ints(&t, c, "kernel_shape", 2, 3, 3);
    attr_ints(&t, c, "strides", 2, 2, 2);
    attr_int(c, "ceil_mode", 1);
    KT_CHECK_EQ_INT(tb_infer(&t, c), KILN_OK);
    KT_CHECK_STR(ty(&t, "yc"), "float[1,1,2,2]");

    /* the last window may not start in the right padding (ONNX
     * test_maxpool_2d_ceil_output_size_reduce_by_one) */
    tb_tensor(&t, "x2", KILN_DTYPE_FLOAT, "1,1,2,2");
    kl_node *r = tb_node(&t, "r", "MaxPool", 12, "x2", "yr");
    attr_ints(&t, r, "kernel_shape", 2, 1, 1);
    attr_ints(&t, r, "strides", 2, 2, 2);
    attr_int(r, "ceil_mode", 1);
    KT_CHECK_EQ_INT(tb_infer(&t, r), KILN_OK);
    KT_CHECK_STR(ty(&t, "yr"), "float[1,1,1,1]");

    kl_node *a = tb_node(&t, "a", "AveragePool", 19, "x", "ya");
    attr_ints(&t, a, "kernel_shape", 2, 2, 2);
    attr_ints(&t, a, "dilations", 2, 2, 2);
    KT_CHECK_EQ_INT(tb_infer(&t, a), KILN_OK);
    KT_CHECK_STR(ty(&t, "ya"), "float[1,1,2,2]");
    tb_free(&t);
}

static void test_grouped_and_depthwise(void) {
    tb t = tb_new();
    tb_tensor(&t, "x", KILN_DTYPE_FLOAT, "batch,32,56,56");
    tb_tensor(&t, "dw", KILN_DTYPE_FLOAT, "32,1,3,3");
    tb_tensor(&t, "gw", KILN_DTYPE_FLOAT, "64,8,3,3");
    kl_node *d = tb_node(&t, "dw", "Conv", 22, "x,dw", "yd");
    attr_int(d, "group", 32);
    attr_ints(&t, d, "pads", 4, 1, 1, 1, 1);
    attr_ints(&t, d, "strides", 2, 2, 2);
    KT_CHECK_EQ_INT(tb_infer(&t, d), KILN_OK);
    KT_CHECK_STR(ty(&t, "yd"), "float[batch,32,28,28]");
    kl_node *g = tb_node(&t, "gc", "Conv", 22, "x,gw", "yg");
    attr_int(g, "group", 4);
    KT_CHECK_EQ_INT(tb_infer(&t, g), KILN_OK);
    KT_CHECK_STR(ty(&t, "yg"), "float[batch,64,54,54]");
    kl_node *bad = tb_node(&t, "gbad", "Conv", 22, "x,gw", "yb");
    attr_int(bad, "group", 3);
    KT_CHECK_EQ_INT(tb_infer(&t, bad), KILN_ERR_SHAPE);
    KT_CHECK_CONTAINS(kl_error_message(), "node 'gbad' (Conv)");
    tb_free(&t);
}

static void test_channel_mismatch(void) {
    tb t = tb_new();
    tb_tensor(&t, "x", KILN_DTYPE_FLOAT, "1,4,8,8");
    tb_tensor(&t, "w", KILN_DTYPE_FLOAT, "8,3,3,3");
    kl_node *n = tb_node(&t, "conv1", "Conv", 22, "x,w", "y");
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_ERR_SHAPE);
    KT_CHECK_CONTAINS(kl_error_message(), "node 'conv1' (Conv): input X has 4 channels");
    KT_CHECK_CONTAINS(kl_error_message(), "W expects 3");

    tb_tensor(&t, "wd", KILN_DTYPE_DOUBLE, "8,4,3,3");
    kl_node *ty_bad = tb_node(&t, "conv2", "Conv", 22, "x,wd", "y2");
    KT_CHECK_EQ_INT(tb_infer(&t, ty_bad), KILN_ERR_TYPE);
    KT_CHECK_CONTAINS(kl_error_message(), "node 'conv2' (Conv)");

    tb_tensor(&t, "w5", KILN_DTYPE_FLOAT, "8,4,9,9");
    kl_node *big = tb_node(&t, "conv3", "Conv", 22, "x,w5", "y3");
    KT_CHECK_EQ_INT(tb_infer(&t, big), KILN_ERR_SHAPE);
    KT_CHECK_CONTAINS(kl_error_message(), "larger than the input");
    tb_free(&t);
}

static void test_conv_transpose(void) {
    tb t = tb_new();
    tb_tensor(&t, "x", KILN_DTYPE_FLOAT, "N,1,3,3");
    tb_tensor(&t, "w", KILN_DTYPE_FLOAT, "1,2,3,3");
    kl_node *n = tb_node(&t, "ct", "ConvTranspose", 22, "x,w", "y");
    attr_ints(&t, n, "strides", 2, 3, 2);
    attr_ints(&t, n, "output_padding", 2, 1, 1);
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_OK);
    KT_CHECK_STR(ty(&t, "y"), "float[N,2,10,8]");

    kl_node *s = tb_node(&t, "cs", "ConvTranspose", 22, "x,w", "ys");
    attr_ints(&t, s, "strides", 2, 2, 2);
    attr_str(s, "auto_pad", "SAME_UPPER");
    KT_CHECK_EQ_INT(tb_infer(&t, s), KILN_OK);
    KT_CHECK_STR(ty(&t, "ys"), "float[N,2,6,6]");

    kl_node *o = tb_node(&t, "co", "ConvTranspose", 22, "x,w", "yo");
    attr_ints(&t, o, "strides", 2, 3, 2);
    attr_ints(&t, o, "output_shape", 2, 10, 8);
    KT_CHECK_EQ_INT(tb_infer(&t, o), KILN_OK);
    KT_CHECK_STR(ty(&t, "yo"), "float[N,2,10,8]");

    tb_tensor(&t, "xg", KILN_DTYPE_FLOAT, "1,4,5,5");
    tb_tensor(&t, "wg", KILN_DTYPE_FLOAT, "4,3,3,3");
    kl_node *g = tb_node(&t, "cg", "ConvTranspose", 22, "xg,wg", "yg");
    attr_int(g, "group", 2);
    attr_ints(&t, g, "pads", 4, 1, 1, 1, 1);
    KT_CHECK_EQ_INT(tb_infer(&t, g), KILN_OK);
    KT_CHECK_STR(ty(&t, "yg"), "float[1,6,5,5]");
    tb_free(&t);
}

/* ---- matrix products ----------------------------------------------------------------- */

static void test_matmul(void) {
    tb t = tb_new();
    tb_tensor(&t, "a", KILN_DTYPE_FLOAT, "batch,197,768");
    tb_tensor(&t, "w", KILN_DTYPE_FLOAT, "768,3072");
    kl_node *n = tb_node(&t, "fc1", "MatMul", 13, "a,w", "y");
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_OK);
    KT_CHECK_STR(ty(&t, "y"), "float[batch,197,3072]");

    tb_tensor(&t, "v", KILN_DTYPE_FLOAT, "768");
    kl_node *mv = tb_node(&t, "mv", "MatMul", 13, "a,v", "ymv");
    KT_CHECK_EQ_INT(tb_infer(&t, mv), KILN_OK);
    KT_CHECK_STR(ty(&t, "ymv"), "float[batch,197]");
    tb_tensor(&t, "v2", KILN_DTYPE_FLOAT, "768");
    kl_node *vm = tb_node(&t, "vm", "MatMul", 13, "v2,w", "yvm");
    KT_CHECK_EQ_INT(tb_infer(&t, vm), KILN_OK);
    KT_CHECK_STR(ty(&t, "yvm"), "float[3072]");
    kl_node *vv = tb_node(&t, "vv", "MatMul", 13, "v2,v", "yvv");
    KT_CHECK_EQ_INT(tb_infer(&t, vv), KILN_OK);
    KT_CHECK_STR(ty(&t, "yvv"), "float[]");

    tb_tensor(&t, "q", KILN_DTYPE_FLOAT, "batch,1,5,6");
    tb_tensor(&t, "k", KILN_DTYPE_FLOAT, "12,6,7");
    kl_node *b = tb_node(&t, "bc", "MatMul", 13, "q,k", "yb");
    KT_CHECK_EQ_INT(tb_infer(&t, b), KILN_OK);
    KT_CHECK_STR(ty(&t, "yb"), "float[batch,12,5,7]");

    tb_tensor(&t, "m1", KILN_DTYPE_FLOAT, "2,3");
    tb_tensor(&t, "m2", KILN_DTYPE_FLOAT, "4,5");
    kl_node *bad = tb_node(&t, "mm_bad", "MatMul", 13, "m1,m2", "ybad");
    KT_CHECK_EQ_INT(tb_infer(&t, bad), KILN_ERR_SHAPE);
    KT_CHECK_CONTAINS(kl_error_message(), "node 'mm_bad' (MatMul): inner dimensions");
    KT_CHECK_CONTAINS(kl_error_message(), "3 vs 4");

    tb_tensor(&t, "i8", KILN_DTYPE_UINT8, "S,3");
    tb_tensor(&t, "w8", KILN_DTYPE_INT8, "3,4");
    kl_node *mi = tb_node(&t, "mi", "MatMulInteger", 10, "i8,w8", "ymi");
    KT_CHECK_EQ_INT(tb_infer(&t, mi), KILN_OK);
    KT_CHECK_STR(ty(&t, "ymi"), "int32[S,4]");
    tb_free(&t);
}

static void test_gemm(void) {
    tb t = tb_new();
    tb_tensor(&t, "a", KILN_DTYPE_FLOAT, "batch,512");
    tb_tensor(&t, "b", KILN_DTYPE_FLOAT, "1000,512");
    tb_tensor(&t, "c", KILN_DTYPE_FLOAT, "1000");
    kl_node *n = tb_node(&t, "fc", "Gemm", 13, "a,b,c", "y");
    attr_int(n, "transB", 1);
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_OK);
    KT_CHECK_STR(ty(&t, "y"), "float[batch,1000]");

    kl_node *bad = tb_node(&t, "fc_bad", "Gemm", 13, "a,b,c", "y2");
    KT_CHECK_EQ_INT(tb_infer(&t, bad), KILN_ERR_SHAPE);
    KT_CHECK_CONTAINS(kl_error_message(), "node 'fc_bad' (Gemm): inner dimensions");

    tb_tensor(&t, "at", KILN_DTYPE_FLOAT, "7,M");
    tb_tensor(&t, "c2", KILN_DTYPE_FLOAT, "3,1000");
    kl_node *cb = tb_node(&t, "fc_c", "Gemm", 13, "at,b,c2", "y3");
    attr_int(cb, "transA", 1);
    attr_int(cb, "transB", 1);
    KT_CHECK_EQ_INT(tb_infer(&t, cb), KILN_ERR_SHAPE); /* K 7 vs 512 */
    tb_tensor(&t, "at2", KILN_DTYPE_FLOAT, "512,M");
    kl_node *cc = tb_node(&t, "fc_c2", "Gemm", 13, "at2,b,c2", "y4");
    attr_int(cc, "transA", 1);
    attr_int(cc, "transB", 1);
    KT_CHECK_EQ_INT(tb_infer(&t, cc), KILN_OK); /* C [3,1000] vs M: cannot prove */
    KT_CHECK_STR(ty(&t, "y4"), "float[M,1000]");
    tb_free(&t);
}

static void test_einsum(void) {
    tb t = tb_new();
    tb_tensor(&t, "q", KILN_DTYPE_FLOAT, "b,12,197,64");
    tb_tensor(&t, "k", KILN_DTYPE_FLOAT, "b,12,S,64");
    kl_node *n = tb_node(&t, "e", "Einsum", 12, "q,k", "y");
    attr_str(n, "equation", "bhid,bhjd->bhij");
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_OK);
    KT_CHECK_STR(ty(&t, "y"), "float[b,12,197,S]");

    tb_tensor(&t, "m", KILN_DTYPE_FLOAT, "3,4");
    tb_tensor(&t, "p", KILN_DTYPE_FLOAT, "4,5");
    kl_node *imp = tb_node(&t, "imp", "Einsum", 12, "m,p", "yi");
    attr_str(imp, "equation", "ij, jk");
    KT_CHECK_EQ_INT(tb_infer(&t, imp), KILN_OK);
    KT_CHECK_STR(ty(&t, "yi"), "float[3,5]");

    tb_tensor(&t, "x", KILN_DTYPE_FLOAT, "2,1,3,4");
    tb_tensor(&t, "z", KILN_DTYPE_FLOAT, "7,4,5");
    kl_node *ell = tb_node(&t, "ell", "Einsum", 12, "x,z", "ye");
    attr_str(ell, "equation", "...ij,...jk->...ik");
    KT_CHECK_EQ_INT(tb_infer(&t, ell), KILN_OK);
    KT_CHECK_STR(ty(&t, "ye"), "float[2,7,3,5]");

    kl_node *tr = tb_node(&t, "tr", "Einsum", 12, "m", "yt");
    attr_str(tr, "equation", "ij->ji");
    KT_CHECK_EQ_INT(tb_infer(&t, tr), KILN_OK);
    KT_CHECK_STR(ty(&t, "yt"), "float[4,3]");

    kl_node *bad = tb_node(&t, "ebad", "Einsum", 12, "m,m", "yb");
    attr_str(bad, "equation", "ij,jk->ik");
    KT_CHECK_EQ_INT(tb_infer(&t, bad), KILN_ERR_SHAPE);
    KT_CHECK_CONTAINS(kl_error_message(), "node 'ebad' (Einsum): label 'j'");
    kl_node *rank = tb_node(&t, "erank", "Einsum", 12, "m", "yr");
    attr_str(rank, "equation", "ijk->k");
    KT_CHECK_EQ_INT(tb_infer(&t, rank), KILN_ERR_SHAPE);
    tb_free(&t);
}

/* ---- recurrent, attention ---------------------------------------------------------- */

static void test_lstm(void) {
    tb t = tb_new();
    tb_tensor(&t, "x", KILN_DTYPE_FLOAT, "seq,batch,10");
    tb_tensor(&t, "w", KILN_DTYPE_FLOAT, "2,80,10");
    tb_tensor(&t, "r", KILN_DTYPE_FLOAT, "2,80,20");
    kl_node *n = tb_node(&t, "lstm", "LSTM", 22, "x,w,r", "y,yh,yc");
    attr_int(n, "hidden_size", 20);
    attr_str(n, "direction", "bidirectional");
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_OK);
    KT_CHECK_STR(ty(&t, "y"), "float[seq,2,batch,20]");
    KT_CHECK_STR(ty(&t, "yh"), "float[2,batch,20]");
    KT_CHECK_STR(ty(&t, "yc"), "float[2,batch,20]");

    tb_tensor(&t, "xb", KILN_DTYPE_FLOAT, "batch,seq,10");
    tb_tensor(&t, "w1", KILN_DTYPE_FLOAT, "1,60,10");
    tb_tensor(&t, "r1", KILN_DTYPE_FLOAT, "1,60,20");
    kl_node *g = tb_node(&t, "gru", "GRU", 14, "xb,w1,r1", ",gh");
    attr_int(g, "layout", 1);
    KT_CHECK_EQ_INT(tb_infer(&t, g), KILN_OK);
    KT_CHECK_STR(ty(&t, "gh"), "float[batch,1,20]");
    tb_free(&t);
}

static void test_attention(void) {
    tb t = tb_new();
    tb_tensor(&t, "q", KILN_DTYPE_FLOAT, "2,4,24");
    tb_tensor(&t, "k", KILN_DTYPE_FLOAT, "2,6,24");
    tb_tensor(&t, "v", KILN_DTYPE_FLOAT, "2,6,30");
    tb_tensor(&t, "pk", KILN_DTYPE_FLOAT, "2,3,12,8");
    tb_tensor(&t, "pv", KILN_DTYPE_FLOAT, "2,3,12,10");
    kl_node *n = tb_node(&t, "att", "Attention", 23, "q,k,v,,pk,pv", "y,prk,prv,qk");
    attr_int(n, "q_num_heads", 3);
    attr_int(n, "kv_num_heads", 3);
    KT_CHECK_EQ_INT(tb_infer(&t, n), KILN_OK);
    KT_CHECK_STR(ty(&t, "y"), "float[2,4,30]");
    KT_CHECK_STR(ty(&t, "prk"), "float[2,3,18,8]");
    KT_CHECK_STR(ty(&t, "prv"), "float[2,3,18,10]");
    KT_CHECK_STR(ty(&t, "qk"), "float[2,3,4,18]");

    tb_tensor(&t, "q4", KILN_DTYPE_FLOAT, "B,8,S,64");
    tb_tensor(&t, "k4", KILN_DTYPE_FLOAT, "B,2,T,64");
    tb_tensor(&t, "v4", KILN_DTYPE_FLOAT, "B,2,T,32");
    kl_node *g = tb_node(&t, "gqa", "Attention", 24, "q4,k4,v4", "y4");
    KT_CHECK_EQ_INT(tb_infer(&t, g), KILN_OK);
    KT_CHECK_STR(ty(&t, "y4"), "float[B,8,S,32]");

    tb_tensor(&t, "k5", KILN_DTYPE_FLOAT, "B,3,T,64");
    kl_node *bad = tb_node(&t, "gqa_bad", "Attention", 24, "q4,k5,v4", "y5");
    KT_CHECK_EQ_INT(tb_infer(&t, bad), KILN_ERR_SHAPE);
    KT_CHECK_CONTAINS(kl_error_message(), "node 'gqa_bad' (Attention)");
    tb_free(&t);
}

/* ---- quantization ------------------------------------------------------------------- */

static void test_quant(void) {
    tb t = tb_new();
    tb_tensor(&t, "x", KILN_DTYPE_FLOAT, "N,64,56,56");
    tb_tensor(&t, "s", KILN_DTYPE_FLOAT, "");
    tb_tensor(&t, "zp", KILN_DTYPE_INT8, "");
    kl_node *q = tb_node(&t, "q", "QuantizeLinear", 13, "x,s,zp", "xq");
    KT_CHECK_EQ_INT(tb_infer(&t, q), KILN_OK);
    KT_CHECK_STR(ty(&t, "xq"), "int8[N,64,56,56]");
    kl_node *q2 = tb_node(&t, "q2", "QuantizeLinear", 13, "x,s", "xq2");
    KT_CHECK_EQ_INT(tb_infer(&t, q2), KILN_OK);
    KT_CHECK_STR(ty(&t, "xq2"), "uint8[N,64,56,56]");
    kl_node *q3 = tb_node(&t, "q3", "QuantizeLinear", 21, "x,s", "xq3");
    attr_int(q3, "output_dtype", KILN_DTYPE_INT4);
    KT_CHECK_EQ_INT(tb_infer(&t, q3), KILN_OK);
    KT_CHECK_STR(ty(&t, "xq3"), "int4[N,64,56,56]");
    kl_node *q4 = tb_node(&t, "q4", "QuantizeLinear", 21, "x,s,zp", "xq4");
    attr_int(q4, "output_dtype", KILN_DTYPE_UINT8);
    KT_CHECK_EQ_INT(tb_infer(&t, q4), KILN_ERR_TYPE);

    tb_tensor(&t, "s16", KILN_DTYPE_FLOAT16, "64");
    kl_node *dq = tb_node(&t, "dq", "DequantizeLinear", 19, "xq,s16", "xd");
    KT_CHECK_EQ_INT(tb_infer(&t, dq), KILN_OK);
    KT_CHECK_STR(ty(&t, "xd"), "float16[N,64,56,56]");
    kl_node *dq10 = tb_node(&t, "dq10", "DequantizeLinear", 10, "xq,s", "xd10");
    KT_CHECK_EQ_INT(tb_infer(&t, dq10), KILN_OK);
    KT_CHECK_STR(ty(&t, "xd10"), "float[N,64,56,56]");
    tb_tensor(&t, "s3", KILN_DTYPE_FLOAT, "3");
    kl_node *dqb = tb_node(&t, "dq_bad", "DequantizeLinear", 19, "xq,s3", "xdb");
    KT_CHECK_EQ_INT(tb_infer(&t, dqb), KILN_ERR_SHAPE);
    KT_CHECK_CONTAINS(kl_error_message(), "scale has 3 values but x has 64 on axis 1");

    tb_tensor(&t, "wq", KILN_DTYPE_INT8, "128,64,3,3");
    tb_tensor(&t, "yzp", KILN_DTYPE_UINT8, "");
    kl_node *qc = tb_node(&t, "qc", "QLinearConv", 10, "xq,s,zp,wq,s,zp,s,yzp", "yq");
    attr_ints(&t, qc, "pads", 4, 1, 1, 1, 1);
    attr_ints(&t, qc, "strides", 2, 2, 2);
    KT_CHECK_EQ_INT(tb_infer(&t, qc), KILN_OK);
    KT_CHECK_STR(ty(&t, "yq"), "uint8[N,128,28,28]");

    kl_node *dyn = tb_node(&t, "dyn", "DynamicQuantizeLinear", 11, "x", "dy,dys,dyz");
    KT_CHECK_EQ_INT(tb_infer(&t, dyn), KILN_OK);
    KT_CHECK_STR(ty(&t, "dy"), "uint8[N,64,56,56]");
    KT_CHECK_STR(ty(&t, "dys"), "float[]");
    KT_CHECK_STR(ty(&t, "dyz"), "uint8[]");
    tb_free(&t);
}

/* Every schema row of the two tables is well formed. */
static void test_tables(void) {
    const kl_op_schema *tabs[] = {kl_ops_nn, kl_ops_quant};
    for (size_t k = 0; k < 2; k++)
        for (const kl_op_schema *s = tabs[k]; s->name; s++) {
            KT_CHECK(s->infer != NULL);
            KT_CHECK(s->until == 0 || s->until >= s->since);
            KT_CHECK(s->max_inputs == -1 || s->max_inputs >= s->min_inputs);
            KT_CHECK(s->max_outputs == -1 || s->max_outputs >= s->min_outputs);
            const kl_op_schema *f = kl_op_find(s->domain, s->name, s->since, NULL);
            KT_CHECK(f == s); /* no overlapping version ranges */
        }
    KT_CHECK(kl_op_find("", "Conv", 1, NULL) != NULL);
    KT_CHECK(kl_op_find("", "Attention", 28, NULL) != NULL);
    KT_CHECK(kl_op_find("", "QuantizeLinear", 25, NULL) != NULL);
    KT_CHECK(kl_op_find("ai.onnx.preview", "FlexAttention", 1, NULL) != NULL);
}

int main(void) {
    KT_RUN(test_resnet_stem);
    KT_RUN(test_conv_kernel_from_weight_and_symbolic);
    KT_RUN(test_auto_pad);
    KT_RUN(test_ceil_mode);
    KT_RUN(test_grouped_and_depthwise);
    KT_RUN(test_channel_mismatch);
    KT_RUN(test_conv_transpose);
    KT_RUN(test_matmul);
    KT_RUN(test_gemm);
    KT_RUN(test_einsum);
    KT_RUN(test_lstm);
    KT_RUN(test_attention);
    KT_RUN(test_quant);
    KT_RUN(test_tables);
    return kt_summary();
}
