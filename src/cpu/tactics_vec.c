/* Fast cpu tactics for normalization, softmax and elementwise ops (issue 9,
 * item 3), float32, over the kernels of src/cpu/x86/vecops.h at each ISA
 * level:
 *   vec.norm.<level>         kiln.LayerNorm, kiln.RMSNorm
 *   vec.softmax.<level>      Softmax (every opset, any axis)
 *   vec.pool                 MaxPool / AveragePool, 2-D, float32, dilation
 *                            1, without MaxPool's indices (src/cpu/x86/pool.h;
 *                            portable C, one level)
 *   vec.global_pool          GlobalAveragePool / GlobalMaxPool, float32
 *   vec.resize               Resize, linear or cubic, float32: float sums
 *                            over the two innermost axes (the reference's
 *                            taps and weights; portable C, one level)
 *   vec.elementwise.<level>  kiln.FusedElementwise; Add, Sub, Mul, Div with
 *                            numpy broadcasting; Relu, LeakyRelu, Sigmoid,
 *                            Tanh, Erf, Exp, Log, Sqrt, Neg, Abs, Reciprocal,
 *                            Softplus, Gelu, HardSwish, HardSigmoid, Swish
 * A run whose inputs the fast path does not take (a scale that broadcasts
 * inside the normalized shape, a malformed program, a non-float input)
 * goes to the reference kernel, which also gives the error messages. */
#include <stdio.h>
#include <string.h>

#include "backend/provider.h"
#include "cpu/ref/nn.h"
#include "cpu/ref/ref.h"
#include "cpu/ref/tensor.h"
#include "cpu/threadpool.h"
#include "cpu/x86/pool.h"
#include "cpu/x86/vecops.h"
#include "ops/kiln_transformer.h"

_Static_assert((int)KL_VOP_ADD == (int)KL_FE_ADD && (int)KL_VOP_RPOW == (int)KL_FE_RPOW &&
                   (int)KL_VOP_RELU == (int)KL_FE_RELU && (int)KL_VOP_SOFTPLUS == (int)KL_FE_SOFTPLUS &&
                   (int)KL_VOP_LEAKY_RELU == (int)KL_FE_LEAKY_RELU &&
                   (int)KL_VOP_RECIPROCAL == (int)KL_FE_RECIPROCAL && (int)KL_VOP_GELU_ERF >= (int)KL_FE_OP_END,
               "kl_vop must extend kl_fe_op");
_Static_assert(KL_VPROG_MAX_STEPS >= KL_FE_MAX_STEPS && KL_VPROG_MAX_INPUTS >= KL_FE_MAX_INPUTS,
               "program limits");

/* ---- shared helpers ------------------------------------------------------------------ */

static bool vt_is(const kl_node *n, const char *domain, const char *op) {
    return strcmp(n->domain, domain) == 0 && strcmp(n->op_type, op) == 0;
}

static bool vt_float_in(const kl_node *n, size_t i) {
    return i < n->n_inputs && n->inputs[i] && n->inputs[i]->type.kind == KL_TYPE_TENSOR &&
           n->inputs[i]->type.elem == KILN_DTYPE_FLOAT;
}

static bool vt_no(char *why, size_t size, const char *msg) {
    if (why && size) snprintf(why, size, "%s", msg);
    return false;
}

static bool vt_float_rt(const kl_rt *t) { return t && t->kind == KL_RT_TENSOR && t->dtype == KILN_DTYPE_FLOAT; }

/* The reference kernel of the node (outputs zeroed as it expects). */
static kiln_status vt_ref(kl_kctx *c) {
    const kl_kernel_def *d = kl_kernel_find(c->node, KILN_DTYPE_FLOAT);
    if (!d) return kl_kctx_fail(c, KILN_ERR_UNSUPPORTED, "no reference kernel");
    c->writes_all = false;
    return d->run(c);
}

/* ---- LayerNorm / RMSNorm ---------------------------------------------------------------- */

static bool norm_applies(const kl_node *n, char *why, size_t wsz) {
    bool ln = vt_is(n, KL_KILN_DOMAIN, "LayerNorm"), rms = vt_is(n, KL_KILN_DOMAIN, "RMSNorm");
    if (!ln && !rms) return vt_no(why, wsz, "not a kiln norm");
    for (size_t i = 0; i < n->n_inputs && i < (size_t)(ln ? 3 : 2); i++)
        if (n->inputs[i] && !vt_float_in(n, i)) return vt_no(why, wsz, "not float");
    return vt_float_in(n, 0) || vt_no(why, wsz, "not float");
}

/* Is parameter t exactly the normalized shape x.shape[axis:] (leading 1s
 * allowed)?  Then it is read as a plain [cols] row. */
static bool norm_param_ok(const kl_rt *t, const kl_rt *x, int axis, int64_t cols) {
    if (!vt_float_rt(t) || t->count != cols) return false;
    int nr = x->rank - axis;
    for (int j = 0; j < t->rank; j++) {
        int64_t td = t->dims[t->rank - 1 - j];
        if (j < nr ? td != x->dims[x->rank - 1 - j] : td != 1) return false;
    }
    return true;
}

static kiln_status norm_run(kl_kctx *c, kl_isa isa) {
    bool rms = strcmp(c->node->op_type, "RMSNorm") == 0;
    const kl_rt *x = c->n_in ? c->in[0] : NULL;
    const kl_rt *sc = c->n_in > 1 ? c->in[1] : NULL, *bi = !rms && c->n_in > 2 ? c->in[2] : NULL;
    if (!vt_float_rt(x)) return vt_ref(c);
    int64_t a = kl_node_attr_int(c->node, "axis", -1);
    if (a < -x->rank || a >= x->rank) return vt_ref(c);
    int axis = (int)(a < 0 ? a + x->rank : a);
    int64_t rows = 1, cols = 1;
    for (int i = 0; i < x->rank; i++) *(i < axis ? &rows : &cols) *= x->dims[i];
    if ((sc && !norm_param_ok(sc, x, axis, cols)) || (bi && !norm_param_ok(bi, x, axis, cols))) return vt_ref(c);
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, x->rank, x->dims, &y));
    kl_vec_norm(isa, c->pool, rms, x->data, y->data, (size_t)rows, (size_t)cols, sc ? sc->data : NULL,
                bi ? bi->data : NULL, kl_node_attr_float(c->node, "epsilon", 1e-5f));
    return KILN_OK;
}

/* ---- Softmax -------------------------------------------------------------------------------- */

static bool softmax_applies(const kl_node *n, char *why, size_t wsz) {
    if (!vt_is(n, "", "Softmax")) return vt_no(why, wsz, "not Softmax");
    return vt_float_in(n, 0) || vt_no(why, wsz, "not float");
}

static kiln_status softmax_run(kl_kctx *c, kl_isa isa) {
    const kl_rt *x = c->n_in ? c->in[0] : NULL;
    if (!vt_float_rt(x)) return vt_ref(c);
    int64_t outer = 1, n = 1, inner = 1;
    if (c->node->opset >= 13) {
        int64_t a = kl_node_attr_int(c->node, "axis", -1);
        if (x->rank > 0 || (a != 0 && a != -1)) {
            if (a < -x->rank || a >= x->rank) return vt_ref(c);
            int axis = (int)(a < 0 ? a + x->rank : a);
            for (int i = 0; i < x->rank; i++) *(i < axis ? &outer : i == axis ? &n : &inner) *= x->dims[i];
        }
    } else { /* opset < 13: coerced to 2-D at axis (default 1) */
        int64_t a = kl_node_attr_int(c->node, "axis", 1);
        if (a < -x->rank || a > x->rank) return vt_ref(c);
        int axis = (int)(a < 0 ? a + x->rank : a);
        for (int i = 0; i < x->rank; i++) *(i < axis ? &outer : &n) *= x->dims[i];
    }
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, x->rank, x->dims, &y));
    kl_vec_softmax(isa, c->pool, x->data, y->data, (size_t)outer, (size_t)n, (size_t)inner);
    return KILN_OK;
}

/* ---- elementwise ------------------------------------------------------------------------------ */

/* The one-step program of a plain unary op (false if it is none). */
static bool unary_step(const kl_node *n, kl_vstep *s) {
    static const struct {
        const char *op;
        int code;
    } t[] = {{"Relu", KL_VOP_RELU},       {"Sigmoid", KL_VOP_SIGMOID}, {"Tanh", KL_VOP_TANH},
             {"Erf", KL_VOP_ERF},         {"Exp", KL_VOP_EXP},         {"Log", KL_VOP_LOG},
             {"Sqrt", KL_VOP_SQRT},       {"Neg", KL_VOP_NEG},         {"Abs", KL_VOP_ABS},
             {"Reciprocal", KL_VOP_RECIPROCAL}, {"Softplus", KL_VOP_SOFTPLUS}, {"HardSwish", KL_VOP_HARD_SWISH}};
    if (n->domain[0]) return false;
    s->arg = KL_VARG_IMM;
    s->a = s->b = 0;
    for (size_t i = 0; i < KL_ARRAY_LEN(t); i++)
        if (strcmp(n->op_type, t[i].op) == 0) {
            s->op = t[i].code;
            return true;
        }
    if (strcmp(n->op_type, "LeakyRelu") == 0) {
        s->op = KL_VOP_LEAKY_RELU;
        s->a = kl_node_attr_float(n, "alpha", 0.01f);
        return true;
    }
    if (strcmp(n->op_type, "HardSigmoid") == 0) {
        s->op = KL_VOP_HARD_SIGMOID;
        s->a = kl_node_attr_float(n, "alpha", 0.2f);
        s->b = kl_node_attr_float(n, "beta", 0.5f);
        return true;
    }
    if (strcmp(n->op_type, "Swish") == 0) {
        s->op = KL_VOP_SWISH;
        s->a = kl_node_attr_float(n, "alpha", 1.0f);
        return true;
    }
    if (strcmp(n->op_type, "Gelu") == 0) {
        const char *m = kl_node_attr_string(n, "approximate", "none");
        if (strcmp(m, "none") != 0 && strcmp(m, "tanh") != 0) return false;
        s->op = strcmp(m, "tanh") == 0 ? KL_VOP_GELU_TANH : KL_VOP_GELU_ERF;
        return true;
    }
    return false;
}

static int binary_code(const kl_node *n) {
    static const char *const ops[] = {"Add", "Sub", "Mul", "Div"};
    static const int codes[] = {KL_VOP_ADD, KL_VOP_SUB, KL_VOP_MUL, KL_VOP_DIV};
    if (n->domain[0] || n->opset < 7) return -1; /* before opset 7: legacy broadcast/axis attributes */
    for (size_t i = 0; i < KL_ARRAY_LEN(ops); i++)
        if (strcmp(n->op_type, ops[i]) == 0) return codes[i];
    return -1;
}

/* The node's program (steps only; inputs bound at run). */
static bool ew_program(const kl_node *n, kl_vprog *p) {
    memset(p, 0, sizeof *p);
    if (vt_is(n, KL_KILN_DOMAIN, "FusedElementwise")) {
        const int64_t *ops, *args;
        int64_t ns = kl_node_attr_ints(n, "ops", &ops), na = kl_node_attr_ints(n, "args", &args);
        const kl_attr *imms = kl_node_attr(n, "imms");
        if (ns < 1 || ns > KL_VPROG_MAX_STEPS || na != ns || !imms || imms->type != KL_ATTR_FLOATS ||
            imms->n != (size_t)ns || n->n_inputs < 1 || n->n_inputs > KL_VPROG_MAX_INPUTS)
            return false;
        for (int64_t i = 0; i < ns; i++) {
            bool bin = kl_fe_is_binary(ops[i]);
            bool ok = (bin || kl_fe_is_unary(ops[i])) &&
                      (args[i] == KL_FE_ARG_IMM || (bin && args[i] == KL_FE_ARG_SELF) ||
                       (bin && args[i] >= 0 && (size_t)args[i] < n->n_inputs));
            if (!ok) return false;
            p->steps[i].op = (int)ops[i];
            p->steps[i].arg = args[i] == KL_FE_ARG_IMM ? KL_VARG_IMM : args[i] == KL_FE_ARG_SELF ? KL_VARG_SELF
                                                                                               : (int)args[i];
            p->steps[i].a = imms->floats[i];
        }
        p->n_steps = (int)ns;
        p->n_in = (int)n->n_inputs;
        return true;
    }
    int b = binary_code(n);
    if (b >= 0) {
        if (n->n_inputs != 2) return false;
        p->steps[0] = (kl_vstep){b, 1, 0, 0};
        p->n_steps = 1;
        p->n_in = 2;
        return true;
    }
    if (n->n_inputs != 1 || !unary_step(n, &p->steps[0])) return false;
    p->n_steps = 1;
    p->n_in = 1;
    return true;
}

static bool ew_applies(const kl_node *n, char *why, size_t wsz) {
    kl_vprog p;
    if (!ew_program(n, &p)) return vt_no(why, wsz, "not an elementwise op of the vector kernels");
    for (size_t i = 0; i < n->n_inputs; i++)
        if (!vt_float_in(n, i)) return vt_no(why, wsz, "not float");
    return true;
}

static kiln_status ew_run(kl_kctx *c, kl_isa isa) {
    kl_vprog p;
    if (!ew_program(c->node, &p) || c->n_in != (size_t)p.n_in) return vt_ref(c);
    for (int k = 0; k < p.n_in; k++) {
        if (!vt_float_rt(c->in[k])) return vt_ref(c);
        p.in[k] = c->in[k]->data;
        p.in_rank[k] = c->in[k]->rank;
        p.in_dims[k] = c->in[k]->dims;
    }
    int rank;
    int64_t dims[KILN_MAX_RANK];
    KL_TRY(kl_ref_broadcast_shape(c->in, c->n_in, &rank, dims));
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, rank, dims, &y));
    if (y->count == 0) return KILN_OK;
    kl_vec_prog_run(isa, c->pool, &p, y->data, rank, dims);
    return KILN_OK;
}

/* ---- MaxPool / AveragePool ------------------------------------------------------------------ */

static bool pool_applies(const kl_node *n, char *why, size_t wsz) {
    bool mx = vt_is(n, "", "MaxPool"), av = vt_is(n, "", "AveragePool");
    if (!mx && !av) return vt_no(why, wsz, "not MaxPool/AveragePool");
    if (!vt_float_in(n, 0)) return vt_no(why, wsz, "not float");
    if (n->inputs[0]->type.shape.rank >= 0 && n->inputs[0]->type.shape.rank != 4) return vt_no(why, wsz, "not 2-D");
    if (mx && n->n_outputs > 1 && n->outputs[1]) return vt_no(why, wsz, "the indices output is wanted");
    const int64_t *d = NULL;
    int64_t nd = kl_node_attr_ints(n, "dilations", &d);
    for (int64_t i = 0; i < nd; i++)
        if (d[i] != 1) return vt_no(why, wsz, "dilated");
    return true;
}

static kiln_status pool_run(kl_kctx *c) {
    const kl_rt *x = c->n_in ? c->in[0] : NULL;
    bool mx = strcmp(c->node->op_type, "MaxPool") == 0;
    if (!vt_float_rt(x) || x->rank != 4 || (mx && c->n_out > 1 && kl_kctx_want(c, 1))) return vt_ref(c);
    int64_t k[2];
    bool have_k;
    KL_TRY(kl_nn_attr_ints(c, "kernel_shape", 2, 1, k, &have_k));
    if (!have_k) return vt_ref(c); /* the reference says what is wrong */
    kl_nn_geom g;
    KL_TRY(kl_nn_geom_init(c, 2, x->dims + 2, k, true, &g));
    if (g.d[0] != 1 || g.d[1] != 1) return vt_ref(c);
    int64_t yd[4] = {x->dims[0], x->dims[1], g.out[0], g.out[1]};
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 4, yd, &y));
    if (y->count == 0) return KILN_OK;
    kl_pool2d_geom pg = {x->dims[2], x->dims[3], g.out[0], g.out[1], g.k[0], g.k[1], g.s[0], g.s[1],
                         g.pb[0], g.pb[1], g.pe[0], g.pe[1]};
    /* max pooling's row buffers from the context's scratch: no allocation per run */
    float *ws = mx ? kl_kctx_scratch(c, kl_pool2d_workspace_floats(&pg, c->pool ? kl_pool_threads(c->pool) : 1) *
                                            sizeof(float))
                   : NULL;
    kl_pool2d_f32(KL_ISA_AUTO, c->pool, x->data, y->data, x->dims[0] * x->dims[1], &pg, mx,
                  !mx && kl_node_attr_int(c->node, "count_include_pad", 0) != 0, ws);
    return KILN_OK;
}

static bool gpool_applies(const kl_node *n, char *why, size_t wsz) {
    if (!vt_is(n, "", "GlobalAveragePool") && !vt_is(n, "", "GlobalMaxPool"))
        return vt_no(why, wsz, "not GlobalAveragePool/GlobalMaxPool");
    return vt_float_in(n, 0) || vt_no(why, wsz, "not float");
}

static kiln_status gpool_run(kl_kctx *c) {
    const kl_rt *x = c->n_in ? c->in[0] : NULL;
    if (!vt_float_rt(x) || x->rank < 3 || x->count == 0) return vt_ref(c); /* rank 2, empty planes, errors */
    int64_t yd[KILN_MAX_RANK] = {x->dims[0], x->dims[1]};
    for (int i = 2; i < x->rank; i++) yd[i] = 1;
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, x->rank, yd, &y));
    if (y->count == 0) return KILN_OK;
    kl_global_pool_f32(KL_ISA_AUTO, c->pool, x->data, y->data, y->count, x->count / y->count,
                       strcmp(c->node->op_type, "GlobalMaxPool") == 0);
    return KILN_OK;
}

/* ---- Resize (linear / cubic, float32) ---------------------------------------------------- */

static bool resize_applies(const kl_node *n, char *why, size_t wsz) {
    if (!vt_is(n, "", "Resize")) return vt_no(why, wsz, "not Resize");
    if (!vt_float_in(n, 0)) return vt_no(why, wsz, "not float");
    const char *mode = kl_node_attr_string(n, "mode", "nearest");
    if (strcmp(mode, "linear") != 0 && strcmp(mode, "cubic") != 0) return vt_no(why, wsz, "nearest");
    return true;
}

/* The reference's parsing, taps and weights with float32 sums over the two
 * innermost axes (other cases: the reference's float64 path). */
static kiln_status resize_run(kl_kctx *c) { return kl_tz_resize_float(c); }

static const kl_tactic vec_pool[] = {
    {"vec.pool", 0, 20, pool_applies, NULL, NULL, pool_run, KL_TACTIC_WRITES_ALL},
    {"vec.global_pool", 0, 20, gpool_applies, NULL, NULL, gpool_run, KL_TACTIC_WRITES_ALL},
    {"vec.resize", 0, 20, resize_applies, NULL, NULL, resize_run, 0},
};

/* ---- the tables: each family at each ISA level -------------------------------------------------- */

#define KL_VEC_LEVEL(lv, LV, FEAT)                                                                     \
    static kiln_status norm_run_##lv(kl_kctx *c) { return norm_run(c, LV); }                          \
    static kiln_status softmax_run_##lv(kl_kctx *c) { return softmax_run(c, LV); }                    \
    static kiln_status ew_run_##lv(kl_kctx *c) { return ew_run(c, LV); }                              \
    static const kl_tactic vec_##lv[] = {                                                              \
        {"vec.norm." #lv, FEAT, 20, norm_applies, NULL, NULL, norm_run_##lv, KL_TACTIC_WRITES_ALL},     \
        {"vec.softmax." #lv, FEAT, 20, softmax_applies, NULL, NULL, softmax_run_##lv, KL_TACTIC_WRITES_ALL}, \
        {"vec.elementwise." #lv, FEAT, 20, ew_applies, NULL, NULL, ew_run_##lv, KL_TACTIC_WRITES_ALL},  \
    };

KL_VEC_LEVEL(generic, KL_ISA_REF, 0)
KL_VEC_LEVEL(avx2, KL_ISA_AVX2, KL_FEAT_AVX2)
KL_VEC_LEVEL(avx512, KL_ISA_AVX512, KL_FEAT_AVX2 | KL_FEAT_AVX512)

size_t kl_cpu_vec_tactics(const kl_node *n, const kl_tactic **out, size_t max) {
    kl_isa lv = kl_isa_active();
    const kl_tactic *t = lv >= KL_ISA_AVX512 ? vec_avx512 : lv >= KL_ISA_AVX2 ? vec_avx2 : vec_generic;
    size_t k = 0;
    for (size_t i = 0; i < KL_ARRAY_LEN(vec_generic) && k < max; i++)
        if (t[i].applies(n, NULL, 0)) out[k++] = &t[i];
    for (size_t i = 0; i < KL_ARRAY_LEN(vec_pool) && k < max; i++)
        if (vec_pool[i].applies(n, NULL, 0)) out[k++] = &vec_pool[i];
    return k;
}

const kl_tactic *kl_cpu_vec_tactic_named(const kl_node *n, const char *name) {
    const kl_tactic *const tables[] = {vec_generic, vec_avx2, vec_avx512};
    for (size_t t = 0; t < 3; t++)
        for (size_t i = 0; i < KL_ARRAY_LEN(vec_generic); i++)
            if (strcmp(tables[t][i].name, name) == 0) return tables[t][i].applies(n, NULL, 0) ? &tables[t][i] : NULL;
    for (size_t i = 0; i < KL_ARRAY_LEN(vec_pool); i++)
        if (strcmp(vec_pool[i].name, name) == 0) return vec_pool[i].applies(n, NULL, 0) ? &vec_pool[i] : NULL;
    return NULL;
}
