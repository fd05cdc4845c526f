/*
 * test_passes_transformer.c — the transformer-side passes (fuse_norm,
 * fuse_attention, fuse_matmul, fuse_elementwise) and their kiln ops.
 *
 * Pass tests build a small ONNX graph, load it twice, optimize one copy
 * with kl_passes_run, check which ops remain, and run both copies through
 * kl_program_create/kl_program_run on the same random inputs: the
 * optimized outputs must match the unoptimized graph's (the ONNX reference
 * kernels are the oracle).  Near-misses (wrong axis, exponent, perm, scale
 * after the mask...) must leave the pattern alone.  kiln.Attention is also
 * checked directly against a float64 computation written here.  The zoo
 * test optimizes vit_b_16 and text_encoder from models/out (when exported:
 * /usr/bin/python3 models/export.py --models vit_b_16,text_encoder), counts
 * the fused LayerNorm / Attention nodes and compares every reference data
 * set with PyTorch's outputs (relative L2 <= 1e-5); KILN_DECOMPOSED_DIR
 * adds the same models exported at opset 14 (see test_zoo).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "onnxbuild.c"
#include "onnx/onnx.h"
#include "ops/kiln_transformer.h"
#include "passes/passes.h"
#include "runtime/exec.h"
#include "graphtest.h"

/* ---- helpers ------------------------------------------------------------------------------ */


static const kl_node *find_op(const kl_model *m, const char *op) {
    const char *dot = strchr(op, '.');
    for (size_t i = 0; i < m->graph->n_nodes; i++) {
        const kl_node *nd = m->graph->nodes[i];
        if (!nd->removed && dot && !strncmp(nd->domain, op, (size_t)(dot - op)) && !strcmp(nd->op_type, dot + 1))
            return nd;
    }
    return NULL;
}

static uint64_t g_seed = 12345;
static float rnd(void) { /* uniform in [-2, 2) */
    g_seed = g_seed * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_seed >> 40) & 0xffffff) / (float)0xffffff * 4.0f - 2.0f;
}

/* Random inputs for every non-initializer graph input (symbolic dims = sym). */
static size_t make_inputs(const kl_model *m, kl_rt **in, size_t cap, int64_t sym) {
    size_t n = 0;
    const kl_graph *g = m->graph;
    g_seed = 777;
    for (size_t i = 0; i < g->n_inputs && n < cap; i++) {
        const kl_value *v = g->inputs[i];
        if (v->flags & KL_VALUE_INITIALIZER) continue;
        int64_t dims[KILN_MAX_RANK];
        for (int d = 0; d < v->type.shape.rank; d++)
            dims[d] = v->type.shape.dims[d].value >= 0 ? v->type.shape.dims[d].value : sym;
        kl_rt *t = NULL;
        if (kl_rt_tensor(v->type.elem, v->type.shape.rank, dims, &t) != KILN_OK) return n;
        for (int64_t k = 0; k < t->count; k++) ((float *)t->data)[k] = rnd();
        in[n++] = t;
    }
    return n;
}

static kiln_status run_model(const kl_model *m, kl_rt **in, size_t n_in, kl_rt **out, size_t n_out) {
    kl_program *p = NULL;
    kiln_status s = kl_program_create(m, 1, &p);
    if (!s) s = kl_program_run(p, in, n_in, out, n_out);
    if (s) fprintf(stderr, "    run failed: %s\n", kiln_last_error());
    kl_program_free(p);
    return s;
}

/* Max |a-b| / max(1, max|a|) over the outputs of the two models (1e30 when
 * a run fails or shapes differ). */
static double compare_models(const kl_model *a, const kl_model *b, int64_t sym) {
    kl_rt *in[8] = {0}, *oa[8] = {0}, *ob[8] = {0};
    size_t n_in = make_inputs(a, in, 8, sym), n_out = a->graph->n_outputs;
    double worst = 1e30;
    if (n_out <= 8 && n_out == b->graph->n_outputs && run_model(a, in, n_in, oa, n_out) == KILN_OK &&
        run_model(b, in, n_in, ob, n_out) == KILN_OK) {
        worst = 0;
        for (size_t k = 0; k < n_out; k++) {
            if (oa[k]->count != ob[k]->count || oa[k]->rank != ob[k]->rank ||
                memcmp(oa[k]->dims, ob[k]->dims, (size_t)oa[k]->rank * sizeof oa[k]->dims[0])) {
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

/* Graph outputs' types as one string ("float[batch,5,32];..."). */
static void output_types(const kl_model *m, char *buf, size_t size) {
    size_t pos = 0;
    buf[0] = 0;
    for (size_t i = 0; i < m->graph->n_outputs && pos < size; i++) {
        char t[256];
        pos += (size_t)snprintf(buf + pos, size - pos, "%s;", kl_type_format(&m->graph->outputs[i]->type, t, sizeof t));
    }
}

/* Every value of the optimized graph that the original graph also has
 * (same name) has the same type: element type and shape, symbols included. */
static int changed_types(const kl_model *ref, const kl_model *m) {
    int bad = 0;
    for (size_t i = 0; i < m->graph->n_nodes; i++) {
        const kl_node *n = m->graph->nodes[i];
        for (size_t k = 0; k < n->n_outputs + n->n_inputs; k++) {
            const kl_value *v = k < n->n_outputs ? n->outputs[k] : n->inputs[k - n->n_outputs];
            const kl_value *r = v ? kl_graph_lookup(ref->graph, v->name) : NULL;
            char a[256], b[256];
            if (r && strcmp(kl_type_format(&v->type, a, sizeof a), kl_type_format(&r->type, b, sizeof b)) != 0) {
                fprintf(stderr, "    value '%s' was %s, is %s\n", v->name, b, a);
                bad++;
            }
        }
    }
    return bad;
}

/* Load mb twice, optimize the second copy, compare outputs (symbolic dims
 * = 3) and the values' types; returns the optimized model. */
static kl_model *optimize(kt_pb *mb, kl_model **ref, double *err) {
    *ref = load_bytes(mb);
    kl_model *m = load_bytes(mb);
    *err = 1e30;
    if (!*ref || !m) return m;
    kl_pass_stats st;
    kiln_status s = kl_passes_run(m, NULL, &st);
    KT_CHECK_EQ_INT(s, KILN_OK);
    if (s) {
        fprintf(stderr, "    passes failed: %s\n", kiln_last_error());
        return m;
    }
    KT_CHECK_EQ_INT(kl_graph_verify(m->graph), KILN_OK);
    char t1[512], t2[512];
    output_types(*ref, t1, sizeof t1);
    output_types(m, t2, sizeof t2);
    KT_CHECK_STR(t2, t1);
    KT_CHECK_EQ_INT(changed_types(*ref, m), 0);
    *err = compare_models(*ref, m, 3);
    return m;
}

/* ---- graph builders ---------------------------------------------------------------------- */

static void add_f32(kt_pb *g, const char *name, const int64_t *dims, int rank, float lo, float hi) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    float *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = lo + (hi - lo) * (rnd() + 2.0f) / 4.0f;
    kt_pb t = {0};
    kt_onnx_tensor_f32(&t, name, dims, rank, v, (size_t)n, 1);
    kt_pb_take(g, KT_GRAPH_INITIALIZER, &t);
    free(v);
}

static void add_w(kt_pb *g, const char *name, int64_t r, int64_t c) {
    int64_t d[2] = {r, c};
    add_f32(g, name, d, 2, -0.5f, 0.5f);
}

static void add_vec(kt_pb *g, const char *name, int64_t n, float lo, float hi) { add_f32(g, name, &n, 1, lo, hi); }

static void add_scalar(kt_pb *g, const char *name, float v) {
    kt_pb t = {0};
    kt_onnx_tensor_f32(&t, name, NULL, 0, &v, 1, 1);
    kt_pb_take(g, KT_GRAPH_INITIALIZER, &t);
}

static void add_i64(kt_pb *g, const char *name, const int64_t *v, int64_t n) {
    kt_pb t = {0};
    kt_onnx_tensor_head(&t, name, KILN_DTYPE_INT64, &n, 1, 0);
    kt_pb_bytes_field(&t, KT_TENSOR_RAW_DATA, v, (size_t)n * 8);
    kt_pb_take(g, KT_GRAPH_INITIALIZER, &t);
}

/* A node without attributes, named like its output. */
static void nd(kt_pb *g, const char *op, const char *ins, const char *outs) {
    kt_onnx_node(g, KT_GRAPH_NODE, op, outs, ins, outs);
}

/* A node with one INTS attribute (perm, axes). */
static void nd_ints(kt_pb *g, const char *op, const char *ins, const char *outs, const char *attr, const int64_t *v,
                    size_t n) {
    kt_pb x = {0};
    kt_onnx_node_head(&x, op, NULL, outs, ins, outs);
    kt_onnx_attr_ints(&x, attr, v, n);
    kt_pb_take(g, KT_GRAPH_NODE, &x);
}

/* A node with one INT attribute (axis). */
static void nd_int(kt_pb *g, const char *op, const char *ins, const char *outs, const char *attr, int64_t v) {
    kt_pb x = {0};
    kt_onnx_node_head(&x, op, NULL, outs, ins, outs);
    kt_onnx_attr_i(&x, attr, v);
    kt_pb_take(g, KT_GRAPH_NODE, &x);
}

static void transpose(kt_pb *g, const char *in, const char *out, int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t p[4] = {a, b, c, d};
    nd_ints(g, "Transpose", in, out, "perm", p, d < 0 ? 3 : 4);
}

static void finish(kt_pb *mb, kt_pb *g, int64_t opset) {
    kt_onnx_model(mb, 8, opset, g);
    kt_pb_free(g);
}

/* GELU spelled as torch exports it: y = (x * (Erf(x / sqrt2) + 1)) * 0.5. */
static void gelu_erf(kt_pb *g, const char *x, const char *y) {
    char a[64], b[64], c[64], d[64], in[160];
    snprintf(a, sizeof a, "%s_div", x);
    snprintf(b, sizeof b, "%s_erf", x);
    snprintf(c, sizeof c, "%s_erf1", x);
    snprintf(d, sizeof d, "%s_mulx", x);
    snprintf(in, sizeof in, "%s,c_sqrt2", x);
    nd(g, "Div", in, a);
    nd(g, "Erf", a, b);
    snprintf(in, sizeof in, "%s,c_one", b);
    nd(g, "Add", in, c);
    snprintf(in, sizeof in, "%s,%s", x, c);
    nd(g, "Mul", in, d);
    snprintf(in, sizeof in, "%s,c_half", d);
    nd(g, "Mul", in, y);
}

static void gelu_consts(kt_pb *g) {
    add_scalar(g, "c_sqrt2", 1.4142135381698608f);
    add_scalar(g, "c_one", 1.0f);
    add_scalar(g, "c_half", 0.5f);
}

/* ---- fuse_matmul ------------------------------------------------------------------------------ */

/* x[batch,5,16] @ W[16,32] (+ bias, given as the Add's first operand) then
 * `act` ("gelu", "gelu_tanh", "relu", "none"); `bias_dims` "32", "1,32" or
 * "5,32" (the last is not a bias: per-row values). */
static void build_linear(kt_pb *mb, const char *act, const char *bias_dims, bool scale) {
    kt_pb g = {0};
    g_seed = 1;
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "batch,5,16");
    add_w(&g, "W", 16, 32);
    if (!strcmp(bias_dims, "32")) add_vec(&g, "bias", 32, -1, 1);
    else if (!strcmp(bias_dims, "1,32")) add_w(&g, "bias", 1, 32);
    else add_w(&g, "bias", 5, 32);
    gelu_consts(&g);
    add_scalar(&g, "c_scale", 0.25f);
    nd(&g, "MatMul", "x,W", "mm");
    if (scale) nd(&g, "Mul", "c_scale,mm", "mms");
    nd(&g, "Add", scale ? "bias,mms" : "bias,mm", "lin");
    if (!strcmp(act, "gelu")) {
        gelu_erf(&g, "lin", "y");
    } else if (!strcmp(act, "gelu_tanh")) {
        /* 0.5 * x * (1 + tanh(0.7978845608 * (x + 0.044715 * x^3))) */
        add_scalar(&g, "c_three", 3.0f);
        add_scalar(&g, "c_k", 0.044715f);
        add_scalar(&g, "c_s", 0.7978845834732056f);
        nd(&g, "Pow", "lin,c_three", "t_cube");
        nd(&g, "Mul", "t_cube,c_k", "t_kc");
        nd(&g, "Add", "lin,t_kc", "t_in");
        nd(&g, "Mul", "t_in,c_s", "t_sc");
        nd(&g, "Tanh", "t_sc", "t_th");
        nd(&g, "Add", "t_th,c_one", "t_th1");
        nd(&g, "Mul", "lin,c_half", "t_xh");
        nd(&g, "Mul", "t_xh,t_th1", "y");
    } else if (!strcmp(act, "relu")) {
        nd(&g, "Relu", "lin", "y");
    } else {
        nd(&g, "Identity", "lin", "y");
    }
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, NULL);
    finish(mb, &g, 14);
}

static void test_matmul_bias_act(void) {
    static const struct {
        const char *act, *bias;
        bool scale;
        int want_act;
    } cases[] = {
        {"gelu", "32", false, KL_ACT_GELU_ERF},  {"gelu_tanh", "32", false, KL_ACT_GELU_TANH},
        {"relu", "1,32", true, KL_ACT_RELU},     {"none", "32", false, KL_ACT_NONE},
    };
    for (size_t i = 0; i < KL_ARRAY_LEN(cases); i++) {
        kt_pb mb = {0};
        build_linear(&mb, cases[i].act, cases[i].bias, cases[i].scale);
        kl_model *ref, *m;
        double err;
        m = optimize(&mb, &ref, &err);
        if (!m || !ref) continue;
        KT_CHECK_EQ_INT(count_op(m, "kiln.FusedMatMul"), 1);
        KT_CHECK_EQ_INT(count_op(m, "MatMul"), 0);
        KT_CHECK_EQ_INT(count_op(m, "Add"), 0);
        KT_CHECK_EQ_INT(count_op(m, "Mul"), 0);
        KT_CHECK_EQ_INT(count_op(m, "Erf") + count_op(m, "Tanh") + count_op(m, "Relu"), 0);
        KT_CHECK_EQ_INT(m->graph->n_nodes, 1);
        const kl_node *f = find_op(m, "kiln.FusedMatMul");
        if (f) {
            KT_CHECK_EQ_INT(kl_node_attr_int(f, "activation", -1), cases[i].want_act);
            KT_CHECK(kl_node_attr_float(f, "alpha", 0) == (cases[i].scale ? 0.25f : 1.0f));
            KT_CHECK_EQ_INT(f->n_inputs, 3);
        }
        if (err > 2e-6) fprintf(stderr, "    case %zu: err %g\n", i, err);
        KT_CHECK(err <= 2e-6);
        kl_model_free(ref);
        kl_model_free(m);
        kt_pb_free(&mb);
    }
}

/* Per-row "bias" [5,32] is no bias: the MatMul keeps its Add; the GELU still
 * fuses into nothing (it follows the Add, not the MatMul), the elementwise
 * pass takes Add + GELU. */
static void test_matmul_no_bias(void) {
    kt_pb mb = {0};
    build_linear(&mb, "relu", "5,32", false);
    kl_model *ref, *m;
    double err;
    m = optimize(&mb, &ref, &err);
    if (m && ref) {
        KT_CHECK_EQ_INT(count_op(m, "MatMul"), 1);
        KT_CHECK_EQ_INT(count_op(m, "kiln.FusedMatMul"), 0);
        KT_CHECK_EQ_INT(count_op(m, "kiln.FusedElementwise"), 1); /* Add + Relu */
        KT_CHECK(err <= 1e-6);
    }
    kl_model_free(ref);
    kl_model_free(m);
    kt_pb_free(&mb);
    /* A product of two computed operands is not a linear layer. */
    kt_pb g = {0};
    kt_onnx_io(&g, KT_GRAPH_INPUT, "a", KILN_DTYPE_FLOAT, "4,8");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "b", KILN_DTYPE_FLOAT, "8,6");
    add_vec(&g, "bias", 6, -1, 1);
    nd(&g, "MatMul", "a,b", "mm");
    nd(&g, "Add", "mm,bias", "s");
    nd(&g, "Relu", "s", "y");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, NULL);
    kt_pb mb2 = {0};
    finish(&mb2, &g, 14);
    m = optimize(&mb2, &ref, &err);
    if (m && ref) {
        KT_CHECK_EQ_INT(count_op(m, "MatMul"), 1);
        KT_CHECK_EQ_INT(count_op(m, "kiln.FusedMatMul"), 0);
        KT_CHECK(err <= 1e-6);
    }
    kl_model_free(ref);
    kl_model_free(m);
    kt_pb_free(&mb2);
}

/* ---- fuse_norm -------------------------------------------------------------------------------- */

enum { LN_PLAIN, LN_MULSQ, LN_AXES_INPUT, LN_NO_BETA, LN_BAD_AXIS, LN_BAD_POW, LN_D_ESCAPES, LN_EPS_ON_D };

/* torch's opset-13 LayerNorm export over the last axis of x[batch,7,24]
 * (variants: Mul(d,d), axes as input (opset 18), no beta, and near-misses). */
static void build_layernorm(kt_pb *mb, int variant) {
    kt_pb g = {0};
    g_seed = 2;
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "batch,7,24");
    add_vec(&g, "gamma", 24, 0.5f, 1.5f);
    add_vec(&g, "beta", 24, -0.5f, 0.5f);
    add_scalar(&g, "two", variant == LN_BAD_POW ? 3.0f : 2.0f);
    add_scalar(&g, "eps", 1e-5f);
    int64_t last = variant == LN_BAD_AXIS ? 1 : -1;
    if (variant == LN_AXES_INPUT) {
        add_i64(&g, "axes", &last, 1);
        nd(&g, "ReduceMean", "x,axes", "mean");
    } else {
        nd_ints(&g, "ReduceMean", "x", "mean", "axes", &last, 1);
    }
    nd(&g, "Sub", "x,mean", "d");
    if (variant == LN_MULSQ) nd(&g, "Mul", "d,d", "sq");
    else nd(&g, "Pow", "d,two", "sq");
    if (variant == LN_AXES_INPUT) nd(&g, "ReduceMean", "sq,axes", "var");
    else nd_ints(&g, "ReduceMean", "sq", "var", "axes", &last, 1);
    if (variant == LN_EPS_ON_D) {
        nd(&g, "Sqrt", "var", "s");
        nd(&g, "Add", "s,eps", "se");
        nd(&g, "Div", "d,se", "n");
    } else {
        nd(&g, "Add", "var,eps", "ve");
        nd(&g, "Sqrt", "ve", "s");
        nd(&g, "Div", "d,s", "n");
    }
    nd(&g, "Mul", "n,gamma", variant == LN_NO_BETA ? "y" : "ng");
    if (variant != LN_NO_BETA) nd(&g, "Add", "ng,beta", "y");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, NULL);
    if (variant == LN_D_ESCAPES) kt_onnx_io(&g, KT_GRAPH_OUTPUT, "d", KILN_DTYPE_FLOAT, NULL);
    finish(mb, &g, variant == LN_AXES_INPUT ? 18 : 13);
}

static void test_layernorm(void) {
    for (int v = LN_PLAIN; v <= LN_EPS_ON_D; v++) {
        kt_pb mb = {0};
        build_layernorm(&mb, v);
        kl_model *ref, *m;
        double err;
        m = optimize(&mb, &ref, &err);
        bool fuse = v <= LN_NO_BETA;
        if (m && ref) {
            /* d escaping: the mean stays, and d / sqrt(mean(d^2) + eps) is an RMSNorm of d */
            bool rms = v == LN_D_ESCAPES;
            KT_CHECK_EQ_INT(count_op(m, "kiln.LayerNorm"), fuse ? 1 : 0);
            KT_CHECK_EQ_INT(count_op(m, "ReduceMean"), fuse ? 0 : rms ? 1 : 2);
            KT_CHECK_EQ_INT(count_op(m, "kiln.RMSNorm"), rms ? 1 : 0);
            if (fuse) KT_CHECK_EQ_INT(m->graph->n_nodes, 1);
            const kl_node *ln = find_op(m, "kiln.LayerNorm");
            if (ln) {
                KT_CHECK_EQ_INT(kl_node_attr_int(ln, "axis", 0), 2);
                KT_CHECK(kl_node_attr_float(ln, "epsilon", 0) == 1e-5f);
                KT_CHECK_EQ_INT(ln->n_inputs, v == LN_NO_BETA ? 2 : 3);
            }
            if (err > 1e-5) fprintf(stderr, "    variant %d: err %g\n", v, err);
            KT_CHECK(err <= 1e-5);
        }
        kl_model_free(ref);
        kl_model_free(m);
        kt_pb_free(&mb);
    }
}

/* The ONNX LayerNormalization (opset 17) becomes kiln.LayerNorm too. */
static void test_layernorm_op(void) {
    kt_pb g = {0};
    g_seed = 3;
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "batch,6,10");
    int64_t d[2] = {6, 10};
    add_f32(&g, "gamma", d, 2, 0.5f, 1.5f);
    add_vec(&g, "beta", 10, -0.5f, 0.5f);
    kt_pb n = {0};
    kt_onnx_node_head(&n, "LayerNormalization", NULL, "ln", "x,gamma,beta", "y");
    kt_onnx_attr_i(&n, "axis", 1);
    kt_onnx_attr_f(&n, "epsilon", 1e-3f);
    kt_pb_take(&g, KT_GRAPH_NODE, &n);
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, NULL);
    kt_pb mb = {0};
    finish(&mb, &g, 17);
    kl_model *ref, *m;
    double err;
    m = optimize(&mb, &ref, &err);
    if (m && ref) {
        KT_CHECK_EQ_INT(count_op(m, "LayerNormalization"), 0);
        const kl_node *ln = find_op(m, "kiln.LayerNorm");
        KT_CHECK(ln != NULL);
        if (ln) {
            KT_CHECK_EQ_INT(kl_node_attr_int(ln, "axis", 0), 1);
            KT_CHECK(kl_node_attr_float(ln, "epsilon", 0) == 1e-3f);
        }
        KT_CHECK(err <= 1e-6);
    }
    kl_model_free(ref);
    kl_model_free(m);
    kt_pb_free(&mb);
}

/* The ONNX RMSNormalization (opset 23) becomes kiln.RMSNorm. */
static void test_rmsnorm_op(void) {
    kt_pb g = {0};
    g_seed = 8;
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "batch,seq,12");
    add_vec(&g, "w", 12, 0.5f, 1.5f);
    kt_pb n = {0};
    kt_onnx_node_head(&n, "RMSNormalization", NULL, "rms", "x,w", "y");
    kt_onnx_attr_f(&n, "epsilon", 1e-4f);
    kt_pb_take(&g, KT_GRAPH_NODE, &n);
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, NULL);
    kt_pb mb = {0};
    finish(&mb, &g, 23);
    kl_model *ref, *m;
    double err;
    m = optimize(&mb, &ref, &err);
    if (m && ref) {
        KT_CHECK_EQ_INT(count_op(m, "RMSNormalization"), 0);
        const kl_node *r = find_op(m, "kiln.RMSNorm");
        KT_CHECK(r != NULL);
        if (r) {
            KT_CHECK_EQ_INT(kl_node_attr_int(r, "axis", 0), 2);
            KT_CHECK(kl_node_attr_float(r, "epsilon", 0) == 1e-4f);
        }
        KT_CHECK(err <= 1e-6);
    }
    kl_model_free(ref);
    kl_model_free(m);
    kt_pb_free(&mb);
}

/* LLaMA-style RMSNorm: x * Reciprocal(Sqrt(ReduceMean(Pow(x,2)) + eps)) * w,
 * with x also read by a residual Add; and the Div(1, s) spelling. */
static void test_rmsnorm(void) {
    for (int variant = 0; variant < 3; variant++) {
        kt_pb g = {0};
        g_seed = 4;
        kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "batch,seq,16");
        add_vec(&g, "w", 16, 0.5f, 1.5f);
        add_scalar(&g, "two", 2.0f);
        add_scalar(&g, "one", 1.0f);
        add_scalar(&g, "eps", 1e-6f);
        int64_t last = variant == 2 ? -2 : -1; /* variant 2: not the last axis, no fusion */
        nd(&g, "Pow", "x,two", "sq");
        nd_ints(&g, "ReduceMean", "sq", "ms", "axes", &last, 1);
        nd(&g, "Add", "ms,eps", "mse");
        nd(&g, "Sqrt", "mse", "rms");
        if (variant == 1) nd(&g, "Div", "one,rms", "inv");
        else nd(&g, "Reciprocal", "rms", "inv");
        nd(&g, "Mul", "x,inv", "n");
        nd(&g, "Mul", "w,n", "y");
        nd(&g, "Add", "x,y", "res");
        kt_onnx_io(&g, KT_GRAPH_OUTPUT, "res", KILN_DTYPE_FLOAT, NULL);
        kt_pb mb = {0};
        finish(&mb, &g, 13);
        kl_model *ref, *m;
        double err;
        m = optimize(&mb, &ref, &err);
        if (m && ref) {
            KT_CHECK_EQ_INT(count_op(m, "kiln.RMSNorm"), variant < 2 ? 1 : 0);
            KT_CHECK_EQ_INT(count_op(m, "ReduceMean"), variant < 2 ? 0 : 1);
            if (variant < 2) KT_CHECK_EQ_INT(m->graph->n_nodes, 2); /* RMSNorm, residual Add */
            KT_CHECK(err <= 1e-5);
        }
        kl_model_free(ref);
        kl_model_free(m);
        kt_pb_free(&mb);
    }
}

/* ---- fuse_attention ------------------------------------------------------------------------------ */

enum { AT_BERT, AT_BERT_NOMASK, AT_BERT_HF_SHAPES, AT_BERT_MASK_AFTER_SCALE, AT_BERT_BAD_OUT_PERM, AT_BERT_SOFTMAX_AXIS2 };

/* BERT-style self-attention: x[batch,seq,16], 4 heads of 4; q/k/v
 * projections MatMul+Add, Reshape [0,0,4,4], Transpose (K: 0,2,3,1),
 * scores / 2, + mask[batch,1,1,seq], Softmax, context Transpose (0,2,1,3),
 * Reshape [0,0,16], output projection.  Near-miss variants. */
static void build_bert(kt_pb *mb, int variant) {
    kt_pb g = {0};
    g_seed = 5;
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "batch,seq,16");
    if (variant != AT_BERT_NOMASK) kt_onnx_io(&g, KT_GRAPH_INPUT, "mask", KILN_DTYPE_FLOAT, "batch,1,1,seq");
    const char *p[4] = {"q", "k", "v", "o"};
    char n1[32], n2[32], in[96];
    for (int i = 0; i < 4; i++) {
        snprintf(n1, sizeof n1, "W%s", p[i]);
        add_w(&g, n1, 16, 16);
        snprintf(n1, sizeof n1, "b%s", p[i]);
        add_vec(&g, n1, 16, -0.3f, 0.3f);
    }
    int64_t split[4] = {0, 0, 4, 4}, merge[3] = {0, 0, 16};
    add_i64(&g, "split", split, 4);
    add_i64(&g, "merge", merge, 3);
    add_scalar(&g, "sqrt_d", 2.0f);
    for (int i = 0; i < 3; i++) {
        snprintf(in, sizeof in, "x,W%s", p[i]);
        snprintf(n1, sizeof n1, "%s_mm", p[i]);
        nd(&g, "MatMul", in, n1);
        snprintf(in, sizeof in, "%s,b%s", n1, p[i]);
        snprintf(n2, sizeof n2, "%s_lin", p[i]);
        nd(&g, "Add", in, n2);
        snprintf(in, sizeof in, "%s,split", n2);
        snprintf(n1, sizeof n1, "%s_4d", p[i]);
        nd(&g, "Reshape", in, n1);
        snprintf(n2, sizeof n2, "%s_h", p[i]);
        if (i == 1) transpose(&g, n1, n2, 0, 2, 3, 1);
        else transpose(&g, n1, n2, 0, 2, 1, 3);
    }
    nd(&g, "MatMul", "q_h,k_h", "scores");
    if (variant == AT_BERT_MASK_AFTER_SCALE) {
        nd(&g, "Add", "scores,mask", "masked");
        nd(&g, "Div", "masked,sqrt_d", "scaled");
        nd_int(&g, "Softmax", "scaled", "probs", "axis", -1);
    } else if (variant == AT_BERT_NOMASK) {
        nd(&g, "Div", "scores,sqrt_d", "scaled");
        nd_int(&g, "Softmax", "scaled", "probs", "axis", -1);
    } else {
        nd(&g, "Div", "scores,sqrt_d", "scaled");
        nd(&g, "Add", "scaled,mask", "masked");
        nd_int(&g, "Softmax", "masked", "probs", "axis", variant == AT_BERT_SOFTMAX_AXIS2 ? 2 : -1);
    }
    nd(&g, "MatMul", "probs,v_h", "ctx");
    if (variant == AT_BERT_BAD_OUT_PERM) transpose(&g, "ctx", "ctx_t", 0, 2, 3, 1); /* [B,S,D,H]: not heads-major */
    else transpose(&g, "ctx", "ctx_t", 0, 2, 1, 3);
    if (variant == AT_BERT_HF_SHAPES) {
        /* HF: context.view(context.size()[:-2] + (all_head_size,)) */
        int64_t i0 = 0, i1 = 1, e = 16;
        add_i64(&g, "i0", &i0, 1);
        add_i64(&g, "i1", &i1, 1);
        add_i64(&g, "e", &e, 1);
        nd(&g, "Shape", "ctx_t", "cs0");
        nd(&g, "Gather", "cs0,i0", "d0");
        nd(&g, "Shape", "ctx_t", "cs1");
        nd(&g, "Gather", "cs1,i1", "d1");
        nd_int(&g, "Concat", "d0,d1,e", "merge_hf", "axis", 0);
        nd(&g, "Reshape", "ctx_t,merge_hf", "ctx_m");
    } else {
        nd(&g, "Reshape", "ctx_t,merge", "ctx_m");
    }
    nd(&g, "MatMul", "ctx_m,Wo", "o_mm");
    nd(&g, "Add", "o_mm,bo", "y");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, NULL);
    finish(mb, &g, 13);
}

static void test_attention_bert(void) {
    for (int v = AT_BERT; v <= AT_BERT_SOFTMAX_AXIS2; v++) {
        kt_pb mb = {0};
        build_bert(&mb, v);
        kl_model *ref, *m;
        double err;
        m = optimize(&mb, &ref, &err);
        bool fuse = v <= AT_BERT_HF_SHAPES;
        if (m && ref) {
            KT_CHECK_EQ_INT(count_op(m, "kiln.Attention"), fuse ? 1 : 0);
            KT_CHECK_EQ_INT(count_op(m, "Softmax"), fuse ? 0 : 1);
            KT_CHECK_EQ_INT(count_op(m, "kiln.FusedMatMul"), 4); /* q, k, v, output projections */
            if (fuse) {
                KT_CHECK_EQ_INT(count_op(m, "Transpose"), 0);
                KT_CHECK_EQ_INT(count_op(m, "Reshape"), 1); /* the head merge, now reading the attention */
                const kl_node *a = find_op(m, "kiln.Attention");
                if (a) {
                    KT_CHECK_EQ_INT(kl_node_attr_int(a, "num_heads", 0), 4);
                    KT_CHECK_EQ_INT(kl_node_attr_int(a, "seq_first", -1), 0);
                    KT_CHECK(kl_node_attr_float(a, "scale", 0) == 0.5f);
                    KT_CHECK_EQ_INT(a->n_inputs, v == AT_BERT_NOMASK ? 3 : 4);
                    char t[128];
                    KT_CHECK_STR(kl_type_format(&a->outputs[0]->type, t, sizeof t), "float[batch,seq,16]");
                }
            }
            if (err > 1e-5) fprintf(stderr, "    variant %d: err %g\n", v, err);
            KT_CHECK(err <= 1e-5);
        }
        kl_model_free(ref);
        kl_model_free(m);
        kt_pb_free(&mb);
    }
}

/* --disable-pass: without fuse_attention the block stays (and its score
 * MatMuls, whose operands are both computed, are not linear layers). */
static void test_attention_disabled(void) {
    kt_pb mb = {0};
    build_bert(&mb, AT_BERT);
    kl_model *ref = load_bytes(&mb), *m = load_bytes(&mb);
    static const char *const off[] = {"fuse_attention"};
    kl_pass_options o = {.disabled = off, .n_disabled = 1, .rewrite_limit = -1};
    if (m && ref) {
        KT_CHECK_EQ_INT(kl_passes_run(m, &o, NULL), KILN_OK);
        KT_CHECK_EQ_INT(count_op(m, "kiln.Attention"), 0);
        KT_CHECK_EQ_INT(count_op(m, "Softmax"), 1);
        KT_CHECK_EQ_INT(count_op(m, "MatMul"), 2);
        KT_CHECK_EQ_INT(count_op(m, "kiln.FusedMatMul"), 4);
        KT_CHECK(compare_models(ref, m, 3) <= 1e-6);
    }
    kl_model_free(ref);
    kl_model_free(m);
    kt_pb_free(&mb);
}

/* torch nn.MultiheadAttention (batch_first) as exported by torch 1.13:
 * Transpose to [seq,batch,E], packed in-projection, three Slices, Reshape
 * [seq, batch*H, D] (target [0,-1,D]), Transpose (1,0,2) (K: (1,2,0)),
 * q / sqrt(D), Softmax, context Transpose (1,0,2), Reshape [-1, E]. */
static void build_torch_mha(kt_pb *mb, bool two_k_transposes) {
    kt_pb g = {0};
    g_seed = 6;
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "batch,seq,24");
    add_w(&g, "W_in", 24, 72);
    add_vec(&g, "b_in", 72, -0.3f, 0.3f);
    add_w(&g, "W_out", 24, 24);
    add_vec(&g, "b_out", 24, -0.3f, 0.3f);
    int64_t split[3] = {0, -1, 8}, merge[2] = {-1, 24}, back[3] = {0, -1, 24};
    add_i64(&g, "split", split, 3);
    add_i64(&g, "merge", merge, 2);
    add_i64(&g, "back", back, 3);
    add_scalar(&g, "sqrt_d", 2.8284270763397217f);
    int64_t ax = 2, st[3] = {0, 24, 48}, en[3] = {24, 48, 72};
    add_i64(&g, "ax", &ax, 1);
    char n[32], in[96];
    for (int i = 0; i < 3; i++) {
        snprintf(n, sizeof n, "st%d", i);
        add_i64(&g, n, &st[i], 1);
        snprintf(n, sizeof n, "en%d", i);
        add_i64(&g, n, &en[i], 1);
    }
    transpose(&g, "x", "xt", 1, 0, 2, -1);
    nd(&g, "MatMul", "xt,W_in", "qkv_mm");
    nd(&g, "Add", "b_in,qkv_mm", "qkv");
    const char *p[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++) {
        snprintf(in, sizeof in, "qkv,st%d,en%d,ax", i, i);
        snprintf(n, sizeof n, "%s_s", p[i]);
        nd(&g, "Slice", in, n);
        snprintf(in, sizeof in, "%s_s,split", p[i]);
        snprintf(n, sizeof n, "%s_r", p[i]);
        nd(&g, "Reshape", in, n);
    }
    transpose(&g, "q_r", "q_t", 1, 0, 2, -1);
    nd(&g, "Div", "q_t,sqrt_d", "q_h");
    if (two_k_transposes) {
        transpose(&g, "k_r", "k_t0", 1, 0, 2, -1);
        transpose(&g, "k_t0", "k_h", 0, 2, 1, -1);
    } else {
        transpose(&g, "k_r", "k_h", 1, 2, 0, -1);
    }
    transpose(&g, "v_r", "v_h", 1, 0, 2, -1);
    nd(&g, "MatMul", "q_h,k_h", "scores");
    nd_int(&g, "Softmax", "scores", "probs", "axis", -1);
    nd(&g, "MatMul", "probs,v_h", "ctx");
    transpose(&g, "ctx", "ctx_t", 1, 0, 2, -1);
    nd(&g, "Reshape", "ctx_t,merge", "ctx_m");
    kt_pb gm = {0};
    kt_onnx_node_head(&gm, "Gemm", NULL, "out_proj", "ctx_m,W_out,b_out", "o");
    kt_pb_take(&g, KT_GRAPH_NODE, &gm);
    nd(&g, "Reshape", "o,back", "o3");
    transpose(&g, "o3", "y", 1, 0, 2, -1);
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, NULL);
    finish(mb, &g, 14);
}

static void test_attention_torch(void) {
    for (int v = 0; v < 2; v++) {
        kt_pb mb = {0};
        build_torch_mha(&mb, v == 1);
        kl_model *ref, *m;
        double err;
        m = optimize(&mb, &ref, &err);
        if (m && ref) {
            KT_CHECK_EQ_INT(count_op(m, "kiln.Attention"), 1);
            KT_CHECK_EQ_INT(count_op(m, "Softmax"), 0);
            KT_CHECK_EQ_INT(count_op(m, "Slice"), 3);
            const kl_node *a = find_op(m, "kiln.Attention");
            if (a) {
                KT_CHECK_EQ_INT(kl_node_attr_int(a, "num_heads", 0), 3);
                KT_CHECK_EQ_INT(kl_node_attr_int(a, "seq_first", 0), 1);
                KT_CHECK(fabsf(kl_node_attr_float(a, "scale", 0) - 0.35355339f) < 1e-7f);
            }
            if (err > 1e-5) fprintf(stderr, "    variant %d: err %g\n", v, err);
            KT_CHECK(err <= 1e-5);
        }
        kl_model_free(ref);
        kl_model_free(m);
        kt_pb_free(&mb);
    }
}

/* torch 2.x nn.MultiheadAttention (as torchvision's ViT exports it with
 * torch 2.11): x [batch,5,24], 3 heads of 8.  Transpose to [seq,batch,E],
 * packed in-projection P, the packed split Reshape [seq,batch,3,24] ->
 * Unsqueeze(0) -> Transpose (3,1,2,0,4) -> Squeeze(3) -> Gather 0/1/2, per
 * head tensor Reshape [seq, batch*3, 8] -> Transpose (1,0,2) -> Reshape
 * [batch,3,seq,8] (K then Transpose (0,1,3,2)), q and k^T each * c with c =
 * sqrt(1/sqrt(8)), Softmax, context Transpose (2,0,1,3) -> Reshape [-1,24]
 * -> Gemm -> Reshape [5,-1,24] -> Transpose (1,0,2) -> + x.  Variants
 * break one step each. */
enum {
    T2_OK,
    T2_SPLIT_BAD_PERM,   /* split Transpose (3,2,1,0,4): batch and seq swapped, no column slice */
    T2_SPLIT_ESCAPES,    /* the split [3, seq, batch, E] is also a graph output */
    T2_HEADS_H_FIRST,    /* Reshape [3,batch,seq,8]: heads before batch */
    T2_T_READ_TWICE,     /* the input Transpose is also a graph output: no sinking */
    T2_OUT_PERM,         /* final Transpose missing: output stays seq-first */
    T2_END
};

/* Is n a live ai.onnx node of op `op`? */
static bool is_onnx(const kl_node *n, const char *op) { return !n->removed && !n->domain[0] && !strcmp(n->op_type, op); }

/* cls_index != INT64_MIN: the graph's output is Gather(y, axis 1, cls_index) (a ViT's class token), y not an
 * output. */
static void build_torch2_mha_cls(kt_pb *mb, int variant, int64_t cls_index) {
    kt_pb g = {0};
    g_seed = 8;
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "batch,5,24");
    add_w(&g, "W_in", 24, 72);
    add_vec(&g, "b_in", 72, -0.3f, 0.3f);
    add_w(&g, "W_out", 24, 24);
    add_vec(&g, "b_out", 24, -0.3f, 0.3f);
    /* targets computed from Shape(x) as torch does: symbolic batch kept */
    int64_t merge[2] = {-1, 24}, zero = 0, one = 1, three = 3, five = 5, eight = 8;
    int64_t e24 = 24, idx[3] = {0, 1, 2}, h58[3] = {3, 5, 8}, s58[2] = {5, 8};
    add_i64(&g, "merge", merge, 2);
    add_i64(&g, "ax0", &zero, 1);
    add_i64(&g, "ax3", &three, 1);
    add_i64(&g, "one", &one, 1);
    add_i64(&g, "c3", &three, 1);
    add_i64(&g, "c5", &five, 1);
    add_i64(&g, "c8", &eight, 1);
    add_i64(&g, "c24", &e24, 1);
    add_i64(&g, "h58", h58, 3);
    add_i64(&g, "s58", s58, 2);
    nd(&g, "Shape", "x", "shp");
    nd(&g, "Slice", "shp,ax0,one", "bs");
    nd(&g, "Mul", "bs,c3", "bh");
    nd_int(&g, "Concat", "c5,bh,c8", "heads", "axis", 0);
    if (variant == T2_HEADS_H_FIRST) nd_int(&g, "Concat", "c3,bs,s58", "bhsd", "axis", 0);
    else nd_int(&g, "Concat", "bs,h58", "bhsd", "axis", 0);
    nd_int(&g, "Concat", "c5,bs,c24", "back", "axis", 0);
    char n[32], in[96];
    for (int i = 0; i < 3; i++) { /* scalar indices */
        kt_pb t = {0};
        snprintf(n, sizeof n, "i%d", i);
        kt_onnx_tensor_head(&t, n, KILN_DTYPE_INT64, NULL, 0, 0);
        kt_pb_bytes_field(&t, KT_TENSOR_RAW_DATA, &idx[i], 8);
        kt_pb_take(&g, KT_GRAPH_INITIALIZER, &t);
    }
    add_scalar(&g, "c", 0.59460355750136053f); /* sqrt(1/sqrt(8)) */
    transpose(&g, "x", "xt", 1, 0, 2, -1);
    nd(&g, "MatMul", "xt,W_in", "p_mm");
    nd(&g, "Add", "b_in,p_mm", "p");
    /* torch's unflatten(-1, (3, E)) target: Concat(Shape(p)[0:Mod(-1, 3)], [3, 24]); the Mod
     * folds in the first round, the Slice's size is known only after the types are refined */
    int64_t m1 = -1, k24[2] = {3, 24};
    add_i64(&g, "m1", &m1, 1);
    add_i64(&g, "k24", k24, 2);
    nd(&g, "Shape", "p", "pshp");
    nd(&g, "Mod", "m1,c3", "pend");
    nd(&g, "Slice", "pshp,ax0,pend", "plead");
    nd_int(&g, "Concat", "plead,k24", "unfl", "axis", 0);
    nd(&g, "Reshape", "p,unfl", "p4");
    nd(&g, "Unsqueeze", "p4,ax0", "p5");
    int64_t p5[5] = {3, 1, 2, 0, 4}, p5bad[5] = {3, 2, 1, 0, 4};
    nd_ints(&g, "Transpose", "p5", "p5t", "perm", variant == T2_SPLIT_BAD_PERM ? p5bad : p5, 5);
    nd(&g, "Squeeze", "p5t,ax3", "qkv");
    const char *p[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++) {
        snprintf(in, sizeof in, "qkv,i%d", i);
        nd(&g, "Gather", in, p[i]);
        snprintf(in, sizeof in, "%s,heads", p[i]);
        snprintf(n, sizeof n, "%s_r", p[i]);
        nd(&g, "Reshape", in, n);
        snprintf(in, sizeof in, "%s_r", p[i]);
        snprintf(n, sizeof n, "%s_t", p[i]);
        transpose(&g, in, n, 1, 0, 2, -1);
        snprintf(in, sizeof in, "%s_t,bhsd", p[i]);
        snprintf(n, sizeof n, "%s_4", p[i]);
        nd(&g, "Reshape", in, n);
    }
    transpose(&g, "k_4", "k_4t", 0, 1, 3, 2);
    nd(&g, "Mul", "q_4,c", "q_s");
    nd(&g, "Mul", "k_4t,c", "k_s");
    nd(&g, "MatMul", "q_s,k_s", "scores");
    nd_int(&g, "Softmax", "scores", "probs", "axis", -1);
    nd(&g, "MatMul", "probs,v_4", "ctx");
    transpose(&g, "ctx", "ctx_t", 2, 0, 1, 3);
    nd(&g, "Reshape", "ctx_t,merge", "ctx_m");
    kt_pb gm = {0};
    kt_onnx_node_head(&gm, "Gemm", NULL, "out_proj", "ctx_m,W_out,b_out", "o");
    kt_onnx_attr_i(&gm, "transB", 1);
    kt_pb_take(&g, KT_GRAPH_NODE, &gm);
    nd(&g, "Reshape", "o,back", "o3");
    if (variant == T2_OUT_PERM) {
        nd(&g, "Identity", "o3", "y");
    } else {
        transpose(&g, "o3", "ot", 1, 0, 2, -1);
        nd(&g, "Add", "ot,x", "y");
    }
    if (cls_index != INT64_MIN) {
        kt_pb t = {0};
        kt_onnx_tensor_head(&t, "cls_i", KILN_DTYPE_INT64, NULL, 0, 0);
        kt_pb_bytes_field(&t, KT_TENSOR_RAW_DATA, &cls_index, 8);
        kt_pb_take(&g, KT_GRAPH_INITIALIZER, &t);
        nd_int(&g, "Gather", "y,cls_i", "cls", "axis", 1);
        kt_onnx_io(&g, KT_GRAPH_OUTPUT, "cls", KILN_DTYPE_FLOAT, NULL);
    } else {
        kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, NULL);
    }
    if (variant == T2_T_READ_TWICE) kt_onnx_io(&g, KT_GRAPH_OUTPUT, "xt", KILN_DTYPE_FLOAT, NULL);
    if (variant == T2_SPLIT_ESCAPES) kt_onnx_io(&g, KT_GRAPH_OUTPUT, "qkv", KILN_DTYPE_FLOAT, NULL);
    finish(mb, &g, 17);
}

static void build_torch2_mha(kt_pb *mb, int variant) { build_torch2_mha_cls(mb, variant, INT64_MIN); }

/* Load mb twice and run the passes (less `off`) on the second copy;
 * *err: the outputs' difference on random inputs (symbolic dims = 3). */
static kl_model *optimize_without(kt_pb *mb, const char *off, kl_model **ref, double *err) {
    *ref = load_bytes(mb);
    kl_model *m = load_bytes(mb);
    *err = 1e30;
    if (!*ref || !m) return m;
    const char *const list[1] = {off};
    kl_pass_options o = {.disabled = list, .n_disabled = off ? 1 : 0, .rewrite_limit = -1};
    kiln_status s = kl_passes_run(m, &o, NULL);
    KT_CHECK_EQ_INT(s, KILN_OK);
    if (s) fprintf(stderr, "    passes failed: %s\n", kiln_last_error());
    *err = compare_models(*ref, m, 3);
    return m;
}

/* split_qkv alone (fuse_attention off): the Gathers become three column
 * Slices [0,24) [24,48) [48,72) of P on axis -1, the Unsqueeze/Transpose/
 * Squeeze go, the result is the same; near-misses keep the Gathers. */
static void test_split_qkv(void) {
    for (int v = 0; v < T2_END; v++) {
        kt_pb mb = {0};
        build_torch2_mha(&mb, v);
        kl_model *ref, *m;
        double err;
        m = optimize_without(&mb, "fuse_attention", &ref, &err);
        bool split = v != T2_SPLIT_BAD_PERM && v != T2_SPLIT_ESCAPES;
        if (m && ref) {
            KT_CHECK_EQ_INT(count_op(m, "Gather"), split ? 0 : 3);
            KT_CHECK_EQ_INT(count_op(m, "Squeeze"), split ? 0 : 1);
            KT_CHECK_EQ_INT(count_op(m, "Unsqueeze"), split ? 0 : 1);
            KT_CHECK_EQ_INT(count_op(m, "kiln.Attention"), 0);
            int cols = 0; /* Slices of the in-projection's output */
            for (size_t i = 0; i < m->graph->n_nodes; i++) {
                const kl_node *s = m->graph->nodes[i], *p = s->inputs[0] ? s->inputs[0]->producer : NULL;
                if (!is_onnx(s, "Slice") || !p || strcmp(p->op_type, "FusedMatMul") != 0) continue;
                cols++;
                int64_t st = -1, en = -1, ax = 0;
                KT_CHECK_EQ_INT(s->n_inputs, 4);
                for (size_t k = 1; k < s->n_inputs && k < 4; k++) {
                    const kl_tensor *t = kl_value_const(m, s->inputs[k]);
                    KT_CHECK(t && t->count == 1);
                    if (t) kl_tensor_to_i64(t, k == 1 ? &st : k == 2 ? &en : &ax, 1);
                }
                KT_CHECK(st % 24 == 0 && en == st + 24 && ax == -1);
                char t[128];
                KT_CHECK_STR(kl_type_format(&s->outputs[0]->type, t, sizeof t), "float[5,batch,24]");
            }
            KT_CHECK_EQ_INT(cols, split ? 3 : 0);
            if (err > 1e-6) fprintf(stderr, "    variant %d: err %g\n", v, err);
            KT_CHECK(err <= 1e-6);
        }
        kl_model_free(ref);
        kl_model_free(m);
        kt_pb_free(&mb);
    }
}

/* fuse_attention on torch 2.x's head split (sink_mha_transposes off): one
 * seq-first kiln.Attention of 3 heads with scale c*c = 1/sqrt(8) reading
 * the Slices; the in/out Transposes (1,0,2) stay.  Heads before batch does
 * not fuse. */
static void test_attention_torch2(void) {
    for (int v = 0; v < T2_END; v++) {
        if (v == T2_SPLIT_BAD_PERM || v == T2_SPLIT_ESCAPES) continue;
        kt_pb mb = {0};
        build_torch2_mha(&mb, v);
        kl_model *ref, *m;
        double err;
        m = optimize_without(&mb, "sink_mha_transposes", &ref, &err);
        bool fuse = v != T2_HEADS_H_FIRST;
        if (m && ref) {
            KT_CHECK_EQ_INT(count_op(m, "kiln.Attention"), fuse ? 1 : 0);
            KT_CHECK_EQ_INT(count_op(m, "Softmax"), fuse ? 0 : 1);
            if (fuse) {
                KT_CHECK_EQ_INT(count_op(m, "Transpose"), v == T2_OUT_PERM ? 1 : 2); /* in, out */
                KT_CHECK_EQ_INT(count_op(m, "Mul"), 0);
                const kl_node *a = find_op(m, "kiln.Attention");
                if (a) {
                    KT_CHECK_EQ_INT(kl_node_attr_int(a, "num_heads", 0), 3);
                    KT_CHECK_EQ_INT(kl_node_attr_int(a, "seq_first", 0), 1);
                    KT_CHECK(fabsf(kl_node_attr_float(a, "scale", 0) - 0.35355339f) < 1e-6f);
                    for (int i = 0; i < 3; i++) KT_CHECK(a->inputs[i]->producer && is_onnx(a->inputs[i]->producer, "Slice"));
                    char t[128];
                    KT_CHECK_STR(kl_type_format(&a->outputs[0]->type, t, sizeof t), "float[5,batch,24]");
                }
            }
            if (err > 1e-5) fprintf(stderr, "    variant %d: err %g\n", v, err);
            KT_CHECK(err <= 1e-5);
        }
        kl_model_free(ref);
        kl_model_free(m);
        kt_pb_free(&mb);
    }
}

/* All passes: the block becomes FusedMatMul(x) -> 3 Slices -> batch-first
 * kiln.Attention -> Reshape -> Gemm -> Reshape -> Add, no Transpose; a
 * Transpose read outside the block, or a seq-first output, keeps the
 * block seq-first. */
static void test_sink_mha_transposes(void) {
    for (int v = 0; v < T2_END; v++) {
        if (v == T2_SPLIT_BAD_PERM || v == T2_SPLIT_ESCAPES || v == T2_HEADS_H_FIRST) continue;
        kt_pb mb = {0};
        build_torch2_mha(&mb, v);
        kl_model *ref, *m;
        double err;
        m = optimize_without(&mb, NULL, &ref, &err);
        bool sink = v == T2_OK;
        if (m && ref) {
            KT_CHECK_EQ_INT(count_op(m, "kiln.Attention"), 1);
            KT_CHECK_EQ_INT(count_op(m, "Transpose"), sink ? 0 : v == T2_OUT_PERM ? 1 : 2);
            const kl_node *a = find_op(m, "kiln.Attention");
            if (a) {
                KT_CHECK_EQ_INT(kl_node_attr_int(a, "seq_first", 0), sink ? 0 : 1);
                KT_CHECK(fabsf(kl_node_attr_float(a, "scale", 0) - 0.35355339f) < 1e-6f);
                char t[128];
                KT_CHECK_STR(kl_type_format(&a->outputs[0]->type, t, sizeof t),
                             sink ? "float[batch,5,24]" : "float[5,batch,24]");
                const kl_node *p = a->inputs[0]->producer ? a->inputs[0]->producer->inputs[0]->producer : NULL;
                KT_CHECK(p && !strcmp(p->op_type, "FusedMatMul"));
                if (p && sink) KT_CHECK(p->inputs[0] == kl_graph_lookup(m->graph, "x"));
            }
            if (sink) {
                KT_CHECK_EQ_INT(m->graph->n_nodes, 9); /* FusedMatMul, 3 Slice, Attention, Reshape, Gemm, Reshape, Add */
                KT_CHECK_EQ_INT(count_op(m, "Gemm"), 1);
                KT_CHECK_EQ_INT(count_op(m, "Reshape"), 2);
            }
            if (err > 1e-5) fprintf(stderr, "    variant %d: err %g\n", v, err);
            KT_CHECK(err <= 1e-5);
        }
        kl_model_free(ref);
        kl_model_free(m);
        kt_pb_free(&mb);
    }
}

/* kiln.Attention against a float64 computation written here: batch-first
 * with a [B,1,Sq,Sk] mask, and seq_first without. */
static void test_attention_kernel(void) {
    for (int sf = 0; sf < 2; sf++) {
        const int64_t B = 2, Sq = 3, Sk = 5, H = 2, D = 3, Dv = 4;
        kt_pb g = {0};
        char shp[64];
        snprintf(shp, sizeof shp, sf ? "%d,%d,%d" : "%d,%d,%d", (int)(sf ? Sq : B), (int)(sf ? B : Sq), (int)(H * D));
        kt_onnx_io(&g, KT_GRAPH_INPUT, "q", KILN_DTYPE_FLOAT, shp);
        snprintf(shp, sizeof shp, "%d,%d,%d", (int)(sf ? Sk : B), (int)(sf ? B : Sk), (int)(H * D));
        kt_onnx_io(&g, KT_GRAPH_INPUT, "k", KILN_DTYPE_FLOAT, shp);
        snprintf(shp, sizeof shp, "%d,%d,%d", (int)(sf ? Sk : B), (int)(sf ? B : Sk), (int)(H * Dv));
        kt_onnx_io(&g, KT_GRAPH_INPUT, "v", KILN_DTYPE_FLOAT, shp);
        if (!sf) kt_onnx_io(&g, KT_GRAPH_INPUT, "mask", KILN_DTYPE_FLOAT, "2,1,3,5");
        kt_pb n = {0};
        kt_onnx_node_head(&n, "Attention", "kiln", "att", sf ? "q,k,v" : "q,k,v,mask", "y");
        kt_onnx_attr_i(&n, "num_heads", H);
        kt_onnx_attr_i(&n, "seq_first", sf);
        if (sf) kt_onnx_attr_f(&n, "scale", 0.7f);
        kt_pb_take(&g, KT_GRAPH_NODE, &n);
        kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, NULL);
        kt_pb mb = {0};
        kt_onnx_model(&mb, 8, 14, &g);
        kt_onnx_opset(&mb, KT_MODEL_OPSET_IMPORT, "kiln", 1);
        kt_pb_free(&g);
        kl_model *m = load_bytes(&mb);
        KT_CHECK(m != NULL);
        if (!m) continue;
        char t[128];
        KT_CHECK_STR(kl_type_format(&m->graph->outputs[0]->type, t, sizeof t), sf ? "float[3,2,8]" : "float[2,3,8]");
        kl_rt *in[4] = {0}, *out = NULL;
        size_t n_in = make_inputs(m, in, 4, 1);
        KT_CHECK_EQ_INT(run_model(m, in, n_in, &out, 1), KILN_OK);
        double scale = sf ? 0.7f : 1.0 / sqrt((double)D), worst = 0;
        const float *qv = in[0]->data, *kv = in[1]->data, *vv = in[2]->data, *mv = sf ? NULL : in[3]->data;
        /* element (b, s, col) of a [B,S,C] (or [S,B,C]) tensor */
#define AT(p, b, s, S, C, col) ((p)[sf ? ((s) * B + (b)) * (C) + (col) : ((b) * (S) + (s)) * (C) + (col)])
        for (int64_t b = 0; out && b < B; b++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t i = 0; i < Sq; i++) {
                    double sc[5], mx = -1e300, sum = 0;
                    for (int64_t j = 0; j < Sk; j++) {
                        double dot = 0;
                        for (int64_t d = 0; d < D; d++)
                            dot += (double)AT(qv, b, i, Sq, H * D, h * D + d) * AT(kv, b, j, Sk, H * D, h * D + d);
                        sc[j] = scale * dot + (mv ? mv[(b * Sq + i) * Sk + j] : 0.0);
                        mx = fmax(mx, sc[j]);
                    }
                    for (int64_t j = 0; j < Sk; j++) sum += sc[j] = exp(sc[j] - mx);
                    for (int64_t d = 0; d < Dv; d++) {
                        double y = 0;
                        for (int64_t j = 0; j < Sk; j++) y += sc[j] / sum * AT(vv, b, j, Sk, H * Dv, h * Dv + d);
                        double got = AT((const float *)out->data, b, i, Sq, H * Dv, h * Dv + d);
                        worst = fmax(worst, fabs(got - y));
                    }
                }
#undef AT
        KT_CHECK(out && worst < 2e-6);
        if (worst >= 2e-6) fprintf(stderr, "    seq_first %d: max error %g\n", sf, worst);
        for (int i = 0; i < 4; i++) kl_rt_unref(in[i]);
        kl_rt_unref(out);
        kl_model_free(m);
        kt_pb_free(&mb);
    }
}

/* ---- fuse_elementwise ------------------------------------------------------------------------ */

/* x[batch,8] + y[1,8] -> * 0.5 -> Tanh -> 1 - . -> Exp -> Pow(., .) -> out;
 * a second chain x -> Abs -> Sqrt feeding a graph output and a Neg. */
static void test_elementwise_chain(void) {
    kt_pb g = {0};
    g_seed = 7;
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "batch,8");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "y", KILN_DTYPE_FLOAT, "1,8");
    add_scalar(&g, "half", 0.5f);
    add_scalar(&g, "one", 1.0f);
    nd(&g, "Add", "x,y", "a");
    nd(&g, "Mul", "a,half", "b");
    nd(&g, "Tanh", "b", "c");
    nd(&g, "Sub", "one,c", "d");
    nd(&g, "Exp", "d", "e");
    nd(&g, "Pow", "e,e", "out");
    nd(&g, "Abs", "x", "ab");
    nd(&g, "Sqrt", "ab", "sq"); /* read twice: the chain stops here */
    nd(&g, "Neg", "sq", "ng");
    nd(&g, "Relu", "ng", "out2");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "out", KILN_DTYPE_FLOAT, NULL);
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "sq", KILN_DTYPE_FLOAT, NULL);
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "out2", KILN_DTYPE_FLOAT, NULL);
    kt_pb mb = {0};
    finish(&mb, &g, 14);
    kl_model *ref, *m;
    double err;
    m = optimize(&mb, &ref, &err);
    if (m && ref) {
        KT_CHECK_EQ_INT(count_op(m, "kiln.FusedElementwise"), 3); /* Add..Pow, Abs+Sqrt, Neg+Relu */
        KT_CHECK_EQ_INT(m->graph->n_nodes, 3);
        const kl_node *f = find_op(m, "kiln.FusedElementwise");
        if (f) {
            const int64_t *ops, *args;
            KT_CHECK_EQ_INT(kl_node_attr_ints(f, "ops", &ops), 6);
            KT_CHECK_EQ_INT(kl_node_attr_ints(f, "args", &args), 6);
            static const int64_t want_ops[6] = {KL_FE_ADD, KL_FE_MUL, KL_FE_TANH, KL_FE_RSUB, KL_FE_EXP, KL_FE_POW};
            static const int64_t want_args[6] = {1, KL_FE_ARG_IMM, KL_FE_ARG_IMM, KL_FE_ARG_IMM, KL_FE_ARG_IMM,
                                                 KL_FE_ARG_SELF};
            KT_CHECK(!memcmp(ops, want_ops, sizeof want_ops));
            KT_CHECK(!memcmp(args, want_args, sizeof want_args));
            char t[128];
            KT_CHECK_STR(kl_type_format(&f->outputs[0]->type, t, sizeof t), "float[batch,8]");
        }
        KT_CHECK(err == 0); /* each step rounded like the separate ops: bit-identical */
    }
    kl_model_free(ref);
    kl_model_free(m);
    kt_pb_free(&mb);
}

/* A GELU on a graph input (no MatMul to fuse into) becomes one
 * FusedElementwise reading x twice; bit-identical. */
static void test_elementwise_gelu(void) {
    kt_pb g = {0};
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "3,batch,5");
    gelu_consts(&g);
    gelu_erf(&g, "x", "y");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, NULL);
    kt_pb mb = {0};
    finish(&mb, &g, 14);
    kl_model *ref, *m;
    double err;
    m = optimize(&mb, &ref, &err);
    if (m && ref) {
        KT_CHECK_EQ_INT(m->graph->n_nodes, 1);
        KT_CHECK_EQ_INT(count_op(m, "kiln.FusedElementwise"), 1);
        const kl_node *f = find_op(m, "kiln.FusedElementwise");
        if (f) KT_CHECK_EQ_INT(f->n_inputs, 1);
        KT_CHECK(err == 0);
    }
    kl_model_free(ref);
    kl_model_free(m);
    kt_pb_free(&mb);
}

/* ---- zoo ---------------------------------------------------------------------------------------- */

/* ---- sink_gather ------------------------------------------------------------------------------ */

/* The tail of a ViT: x[batch,5,16] -> LayerNorm -> MatMul+bias -> GELU -> MatMul+bias -> + x (residual)
 * -> LayerNorm -> Gather(axis, index): the class token.  variant 0: Gather axis 1, index 0 (moves up to x);
 * 1: index -1 (the same, from the end); 2: axis 2, the features (stays: LayerNorm mixes them); 3: the final
 * LayerNorm's output is also a graph output (stays); 4: the residual is a [batch,1,16] input broadcast along
 * the rows (the Gather moves to the residual Add and stops there). */
static void build_class_token(kt_pb *mb, int variant) {
    kt_pb g = {0};
    g_seed = 21;
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "batch,5,16");
    if (variant == 4) kt_onnx_io(&g, KT_GRAPH_INPUT, "r", KILN_DTYPE_FLOAT, "batch,1,16");
    add_vec(&g, "g1", 16, 0.5f, 1.5f);
    add_vec(&g, "b1", 16, -0.5f, 0.5f);
    add_vec(&g, "g2", 16, 0.5f, 1.5f);
    add_vec(&g, "b2", 16, -0.5f, 0.5f);
    add_w(&g, "W1", 16, 32);
    add_vec(&g, "c1", 32, -0.5f, 0.5f);
    add_w(&g, "W2", 32, 16);
    add_vec(&g, "c2", 16, -0.5f, 0.5f);
    gelu_consts(&g);
    int64_t idx = variant == 1 ? -1 : 0;
    kt_pb t = {0};
    kt_onnx_tensor_head(&t, "idx", KILN_DTYPE_INT64, NULL, 0, 0);
    kt_pb_bytes_field(&t, KT_TENSOR_RAW_DATA, &idx, 8);
    kt_pb_take(&g, KT_GRAPH_INITIALIZER, &t);
    nd_int(&g, "LayerNormalization", "x,g1,b1", "ln1", "axis", -1);
    nd(&g, "MatMul", "ln1,W1", "mm1");
    nd(&g, "Add", "mm1,c1", "h1");
    gelu_erf(&g, "h1", "act");
    nd(&g, "MatMul", "act,W2", "mm2");
    nd(&g, "Add", "c2,mm2", "h2");
    nd(&g, "Add", variant == 4 ? "r,h2" : "x,h2", "res");
    nd_int(&g, "LayerNormalization", "res,g2,b2", "ln2", "axis", 2);
    nd_int(&g, "Gather", "ln2,idx", "y", "axis", variant == 2 ? 2 : 1);
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, NULL);
    if (variant == 3) kt_onnx_io(&g, KT_GRAPH_OUTPUT, "ln2", KILN_DTYPE_FLOAT, NULL);
    finish(mb, &g, 17);
}

/* The rank of the first input of the first node of `op` (-2: none). */
static int input_rank_of(const kl_model *m, const char *op) {
    const kl_node *n = find_op(m, op);
    return n && n->n_inputs && n->inputs[0] ? n->inputs[0]->type.shape.rank : -2;
}

static void test_sink_gather(void) {
    for (int variant = 0; variant < 5; variant++) {
        int failures = kt_failures;
        kt_pb mb = {0};
        build_class_token(&mb, variant);
        kl_model *ref, *m;
        double err;
        m = optimize(&mb, &ref, &err);
        if (m && ref) {
            KT_CHECK(err < 1e-5);
            const kl_node *gn = NULL;
            for (size_t i = 0; i < m->graph->n_nodes && !gn; i++)
                if (is_onnx(m->graph->nodes[i], "Gather")) gn = m->graph->nodes[i];
            KT_CHECK(gn != NULL);
            const char *from = gn && gn->inputs[0] ? gn->inputs[0]->name : "";
            if (variant <= 1) {
                /* the Gather reads x, and the whole block runs on one row per image */
                KT_CHECK_STR(from, "x");
                KT_CHECK_EQ_INT(count_op(m, "Gather"), 1);
                KT_CHECK_EQ_INT(input_rank_of(m, "kiln.LayerNorm"), 2);
                KT_CHECK_EQ_INT(input_rank_of(m, "kiln.FusedMatMul"), 2);
            } else if (variant == 4) {
                /* moved above the final LayerNorm, stopped at the residual Add (r broadcasts along the rows) */
                KT_CHECK_STR(from, "res");
                KT_CHECK_EQ_INT(input_rank_of(m, "kiln.FusedMatMul"), 3);
            } else {
                KT_CHECK_EQ_INT(input_rank_of(m, "kiln.FusedMatMul"), 3); /* nothing moved */
                KT_CHECK(gn && gn->index == m->graph->n_nodes - 1);
            }
            if (kt_failures != failures) fprintf(stderr, "    sink_gather variant %d: err %g, Gather of '%s'\n", variant, err, from);
        }
        kl_model_free(ref);
        kl_model_free(m);
        kt_pb_free(&mb);
    }
}

/* sink_gather through an attention block: the torch 2.x block above read only at one row (x[:, i] of its
 * output, i = 0, -1, 2).  The Gather moves through the residual Add, the output projection between its two
 * Reshapes and into the attention, whose query is that row: Q [batch,1,24] = Gather(x, axis 1, [i]) W_q + b_q
 * (its own product by the query columns), the packed projection keeps the 48 key and value columns, Reshape
 * [batch,24], Gemm on [batch,24]; same outputs.  With
 * sink_mha_transposes off the block stays seq-first behind its Transpose and nothing moves into it. */
static void test_sink_gather_attention(void) {
    const int64_t idx[3] = {0, -1, 2};
    for (int v = 0; v < 4; v++) {
        kt_pb mb = {0};
        build_torch2_mha_cls(&mb, T2_OK, idx[v % 3]);
        kl_model *ref, *m;
        double err;
        m = optimize_without(&mb, v == 3 ? "sink_mha_transposes" : NULL, &ref, &err);
        if (m && ref) {
            KT_CHECK_EQ_INT(count_op(m, "kiln.Attention"), 1);
            const kl_node *a = find_op(m, "kiln.Attention"), *gm = NULL;
            for (size_t i = 0; i < m->graph->n_nodes && !gm; i++)
                if (is_onnx(m->graph->nodes[i], "Gemm")) gm = m->graph->nodes[i];
            char t[128];
            if (a && v < 3) {
                KT_CHECK_STR(kl_type_format(&a->inputs[0]->type, t, sizeof t), "float[batch,1,24]");
                KT_CHECK_STR(kl_type_format(&a->outputs[0]->type, t, sizeof t), "float[batch,1,24]");
                KT_CHECK_STR(kl_type_format(&a->inputs[1]->type, t, sizeof t), "float[batch,5,24]");
                /* the query row from its own product of Gather(x); keys and values from the 48 columns left */
                const kl_node *pq = a->inputs[0]->producer, *gq = pq && pq->inputs[0] ? pq->inputs[0]->producer : NULL;
                KT_CHECK(pq && !strcmp(pq->op_type, "FusedMatMul"));
                KT_CHECK(gq && is_onnx(gq, "Gather"));
                if (gq) KT_CHECK(gq->inputs[0] == kl_graph_lookup(m->graph, "x"));
                if (pq) KT_CHECK_STR(kl_type_format(&pq->inputs[1]->type, t, sizeof t), "float[24,24]");
                const kl_node *sk = a->inputs[1]->producer, *pkv = sk && sk->inputs[0] ? sk->inputs[0]->producer : NULL;
                KT_CHECK(sk && is_onnx(sk, "Slice"));
                if (pkv) KT_CHECK_STR(kl_type_format(&pkv->outputs[0]->type, t, sizeof t), "float[batch,5,48]");
                KT_CHECK(gm != NULL);
                if (gm) KT_CHECK_STR(kl_type_format(&gm->inputs[0]->type, t, sizeof t), "float[batch,24]");
            } else if (a) {
                KT_CHECK_STR(kl_type_format(&a->inputs[0]->type, t, sizeof t), "float[5,batch,24]");
                KT_CHECK_EQ_INT(kl_node_attr_int(a, "seq_first", 0), 1);
            }
            if (err > 1e-5) fprintf(stderr, "    variant %d: err %g\n", v, err);
            KT_CHECK(err <= 1e-5);
        }
        kl_model_free(ref);
        kl_model_free(m);
        kt_pb_free(&mb);
    }
}

/* sink_gather_attention's Slice and projection rewrites on their own: P = x W (x [batch,5,24], W [24,72]), the
 * query columns q = P[..., 0:24] read at one row (Gather axis 1, index 0), and a second column Slice of P that is
 * also a graph output.  variant 0: the second Slice is [24, 72): the row gets its own product by W[:, 0:24] and P
 * keeps 48 columns (two products, no Gather of P); 1: it is [16, 48), overlapping the query columns: no split, the
 * Gather moves above the query Slice (one product, a Gather reading it); 2: the query Slice takes rows 0..3 of
 * axis 1 (the gathered axis): nothing moves, the Gather reads the Slice.  Same outputs every time. */
static void test_sink_gather_projection(void) {
    for (int v = 0; v < 3; v++) {
        kt_pb g = {0}, mb = {0};
        g_seed = 31;
        kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "batch,5,24");
        add_w(&g, "W", 24, 72);
        int64_t qs = 0, qe = v == 2 ? 3 : 24, qa = v == 2 ? 1 : 2, ks = v == 1 ? 16 : 24, ke = v == 1 ? 48 : 72, ka = 2;
        add_i64(&g, "qs", &qs, 1);
        add_i64(&g, "qe", &qe, 1);
        add_i64(&g, "qa", &qa, 1);
        add_i64(&g, "ks", &ks, 1);
        add_i64(&g, "ke", &ke, 1);
        add_i64(&g, "ka", &ka, 1);
        int64_t zero = 0;
        kt_pb t = {0};
        kt_onnx_tensor_head(&t, "i0", KILN_DTYPE_INT64, NULL, 0, 0);
        kt_pb_bytes_field(&t, KT_TENSOR_RAW_DATA, &zero, 8);
        kt_pb_take(&g, KT_GRAPH_INITIALIZER, &t);
        nd(&g, "MatMul", "x,W", "p");
        nd(&g, "Slice", "p,qs,qe,qa", "q");
        nd(&g, "Slice", "p,ks,ke,ka", "k");
        nd_int(&g, "Gather", "q,i0", "row", "axis", 1);
        kt_onnx_io(&g, KT_GRAPH_OUTPUT, "row", KILN_DTYPE_FLOAT, NULL);
        kt_onnx_io(&g, KT_GRAPH_OUTPUT, "k", KILN_DTYPE_FLOAT, NULL);
        finish(&mb, &g, 17);
        kl_model *ref, *m;
        double err;
        m = optimize_without(&mb, NULL, &ref, &err);
        if (m && ref) {
            int products = count_op(m, "kiln.FusedMatMul"), gathers = 0, gathers_of_p = 0;
            for (size_t i = 0; i < m->graph->n_nodes; i++) {
                const kl_node *n = m->graph->nodes[i];
                if (is_onnx(n, "MatMul")) products++;
                if (!is_onnx(n, "Gather")) continue;
                gathers++;
                const kl_node *pr = n->inputs[0]->producer;
                if (pr && (is_onnx(pr, "MatMul") || !strcmp(pr->op_type, "FusedMatMul"))) gathers_of_p++;
            }
            KT_CHECK_EQ_INT(gathers, 1);
            KT_CHECK_EQ_INT(products, v == 0 ? 2 : 1);
            KT_CHECK_EQ_INT(gathers_of_p, v == 1 ? 1 : 0);
            if (err > 1e-5) fprintf(stderr, "    variant %d: err %g\n", v, err);
            KT_CHECK(err <= 1e-5);
        }
        kl_model_free(ref);
        kl_model_free(m);
        kt_pb_free(&mb);
    }
}

static kl_tensor *read_pb(kl_arena *a, const char *path, uint8_t **keep) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = malloc((size_t)(n > 0 ? n : 1));
    kl_tensor *t = NULL;
    if (d && fread(d, 1, (size_t)n, f) == (size_t)n && kl_onnx_parse_tensor(a, d, (size_t)n, &t) == KILN_OK) *keep = d;
    else free(d);
    fclose(f);
    return t;
}

/* Optimize <dir>/<name>.onnx, check the fused counts, and compare every
 * reference data set in <dir>/<name>_ref (relative L2 <= 1e-5 against
 * PyTorch). */
static void zoo_model(const char *dir, const char *name, int want_ln, int want_att) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.onnx", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("  zoo: %s not found, skipped (/usr/bin/python3 models/export.py --models %s)\n", path, name);
        return;
    }
    fclose(f);
    kl_model *m = NULL;
    KT_CHECK_EQ_INT(kl_onnx_load_file(path, &m), KILN_OK);
    if (!m) return;
    int ln0 = count_op(m, "LayerNormalization"), sm0 = count_op(m, "Softmax"), mm0 = count_op(m, "MatMul");
    kl_pass_stats st;
    kiln_status s = kl_passes_run(m, NULL, &st);
    KT_CHECK_EQ_INT(s, KILN_OK);
    if (s) fprintf(stderr, "    %s: %s\n", name, kiln_last_error());
    int ln = count_op(m, "kiln.LayerNorm"), att = count_op(m, "kiln.Attention");
    printf("  zoo: %s: %zu nodes -> %zu (%zu rewrites); LayerNormalization %d -> %d, kiln.LayerNorm %d; "
           "Softmax %d -> %d, kiln.Attention %d; MatMul %d -> %d, kiln.FusedMatMul %d, kiln.FusedElementwise %d\n",
           name, st.nodes_before, st.nodes_after, st.rewrites, ln0, count_op(m, "LayerNormalization"), ln, sm0,
           count_op(m, "Softmax"), att, mm0, count_op(m, "MatMul"), count_op(m, "kiln.FusedMatMul"),
           count_op(m, "kiln.FusedElementwise"));
    KT_CHECK_EQ_INT(ln, want_ln);
    KT_CHECK_EQ_INT(att, want_att);
    KT_CHECK_EQ_INT(count_op(m, "Softmax"), 0);
    KT_CHECK_EQ_INT(count_op(m, "LayerNormalization"), 0);
    for (int ds = 0; ds < 4; ds++) {
        char p[1024];
        kl_arena a;
        kl_arena_init(&a);
        uint8_t *keep[9] = {0};
        kl_rt *x[8] = {0}, *y = NULL;
        size_t n_in = 0;
        for (; n_in < 8; n_in++) {
            snprintf(p, sizeof p, "%s/%s_ref/test_data_set_%d/input_%zu.pb", dir, name, ds, n_in);
            kl_tensor *t = read_pb(&a, p, &keep[n_in]);
            if (!t) break;
            KT_CHECK_EQ_INT(kl_rt_from_tensor(t, &x[n_in]), KILN_OK);
        }
        snprintf(p, sizeof p, "%s/%s_ref/test_data_set_%d/output_0.pb", dir, name, ds);
        kl_tensor *yo = read_pb(&a, p, &keep[8]);
        if (!n_in || !yo) {
            KT_CHECK(ds > 0); /* data set 0 always exists */
        } else if (run_model(m, x, n_in, &y, 1) == KILN_OK) {
            double num = 0, den = 0;
            KT_CHECK_EQ_INT(y->count, yo->count);
            for (int64_t i = 0; i < y->count && i < yo->count; i++) {
                double r = kl_tensor_get_f64(yo, i), d = kl_rt_get_f64(y, i) - r;
                num += d * d;
                den += r * r;
            }
            double rel = sqrt(num / (den > 0 ? den : 1));
            char b[96];
            printf("  zoo: %s: data set %d %s: relative L2 vs PyTorch %.3g\n", name, ds,
                   kl_rt_describe(x[0], b, sizeof b), rel);
            KT_CHECK(rel <= 1e-5);
        } else {
            KT_CHECK(false);
        }
        for (size_t i = 0; i < 8; i++) kl_rt_unref(x[i]);
        kl_rt_unref(y);
        for (size_t i = 0; i < 9; i++) free(keep[i]);
        kl_arena_free(&a);
        if (!n_in || !yo) break;
    }
    kl_model_free(m);
}

/* The zoo (opset 17: LayerNormalization ops).  KILN_DECOMPOSED_DIR, when
 * set, names a folder with the same models exported by torch at opset 14
 * (LayerNorm decomposed into ReduceMean/Sub/Pow/Sqrt/Div), as
 * <name>_op14.onnx with <name>_op14_ref/ data sets: they must fuse the same;
 * bert_op14.onnx, a BERT layer written like Hugging Face's (x, mask
 * inputs; attention head merge computed from Shape); mhamask_op14.onnx, a
 * torch TransformerEncoderLayer with a float causal src_mask [seq, seq]
 * (torch's baddbmm: scores * 1 + mask * 1).  To make the first two:
 *   sys.path.insert(0, "models"); import export
 *   model, data, ins, outs, dyn = export.build("text_encoder", 0)
 *   torch.onnx.export(model, data[0], "text_encoder_op14.onnx", opset_version=14,
 *                     input_names=ins, output_names=outs, dynamic_axes=dyn)
 * and write each data set's tensors as TensorProtos (onnx.numpy_helper) in
 * text_encoder_op14_ref/test_data_set_N/{input,output}_K.pb. */
static void test_zoo(void) {
    const char *src = getenv("KILN_SOURCE_DIR"), *dec = getenv("KILN_DECOMPOSED_DIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/models/out", src ? src : "..");
    const char *only = getenv("KILN_ZOO_MODELS");
    if (!only || strstr(only, "text_encoder")) zoo_model(dir, "text_encoder", 9, 4);
    if (!only || strstr(only, "vit_b_16")) zoo_model(dir, "vit_b_16", 25, 12);
    if (dec && (!only || strstr(only, "text_encoder"))) zoo_model(dec, "text_encoder_op14", 9, 4);
    if (dec && (!only || strstr(only, "vit_b_16"))) zoo_model(dec, "vit_b_16_op14", 25, 12);
    if (dec && (!only || strstr(only, "bert"))) zoo_model(dec, "bert_op14", 2, 1);
    if (dec && (!only || strstr(only, "mhamask"))) zoo_model(dec, "mhamask_op14", 2, 1);
}

int main(void) {
    KT_RUN(test_matmul_bias_act);
    KT_RUN(test_matmul_no_bias);
    KT_RUN(test_layernorm);
    KT_RUN(test_layernorm_op);
    KT_RUN(test_rmsnorm_op);
    KT_RUN(test_rmsnorm);
    KT_RUN(test_attention_kernel);
    KT_RUN(test_attention_bert);
    KT_RUN(test_attention_disabled);
    KT_RUN(test_attention_torch);
    KT_RUN(test_split_qkv);
    KT_RUN(test_attention_torch2);
    KT_RUN(test_sink_mha_transposes);
    KT_RUN(test_elementwise_chain);
    KT_RUN(test_elementwise_gelu);
    KT_RUN(test_sink_gather);
    KT_RUN(test_sink_gather_attention);
    KT_RUN(test_sink_gather_projection);
    KT_RUN(test_zoo);
    return kt_summary();
}
