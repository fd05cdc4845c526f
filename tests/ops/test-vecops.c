/*
 * test-vecops — kernel-level tests of src/cpu/x86/vecops.h (the kernels of
 * the vec.norm / vec.softmax / vec.elementwise tactics), in the style of
 * test-ops: every case runs on a float64 reference written here and on every
 * ISA level this machine runs (ref = the portable C kernels, avx2, avx512),
 * with 1 and 2 threads; outputs sit between sentinel words; sizes cover
 * 1, 3, 7, 17, 63 and every vector tail, plus sizes above the threading
 * threshold.
 *
 *   test-vecops [-o unary|binary|prog|norm|softmax|matvec|plane_mean] [-p PATTERN]... [-v]
 *   test-vecops perf            timings of a few zoo shapes per level
 *
 * Tolerance tiers:
 *  - exact: Add/Sub/Mul/Div/Neg/Abs/Relu/LeakyRelu(1/4) and x*x give the
 *    double result rounded once, bit for bit;
 *  - transcendental (the act tier of test-ops): |err| <= 4e-6 |ref| + 1e-30
 *    + 1.5 c, where c is how far the reference (rounding each step to float,
 *    as the kiln.FusedElementwise reference does) moves when each step's
 *    input is moved by 4e-6 relative (the chain's condition number);
 *  - accumulation (norms, softmax): float sums of n terms,
 *    |err| <= (2 (n+2) 2^-24 + 4e-6) * magnitude, magnitude as stated at
 *    each check.
 * NaN positions must match; infinities must match in sign.
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "cpu/threadpool.h"
#include "cpu/x86/isa.h"
#include "cpu/x86/vecmath.h"
#include "cpu/x86/vecops.h"

static const char *g_op;
static const char *g_pat[16];
static int g_npat;
static bool g_verbose;
static long g_cases, g_failed;
static kl_pool *g_pool2;

static bool selected(const char *op, const char *name) {
    if (g_op && strcmp(g_op, op) != 0) return false;
    for (int i = 0; i < g_npat; i++)
        if (!strstr(name, g_pat[i])) return false;
    return true;
}

static void fail(const char *name, const char *fmt, ...) KL_PRINTF(2, 3);
static void fail(const char *name, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL %s: ", name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    g_failed++;
}

/* ---- random numbers and guarded buffers (test-ops' conventions) ---------------------- */

typedef struct rng {
    uint64_t s;
} rng;
static uint64_t rng_next(rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static float rng_unit(rng *g) { return (float)((double)(rng_next(g) >> 11) * 0x1.0p-53 * 2.0 - 1.0); }

#define GUARD 16
static const uint32_t SENTINEL = 0x7fc0beefu;

typedef struct gbuf {
    float *base, *p;
    size_t n;
} gbuf;

static gbuf gb_alloc(size_t n) {
    gbuf b;
    b.n = n;
    b.base = malloc((n + 2 * GUARD) * sizeof(float));
    if (!b.base) {
        fprintf(stderr, "test-vecops: out of memory\n");
        exit(2);
    }
    b.p = b.base + GUARD;
    for (size_t i = 0; i < GUARD; i++) {
        memcpy(&b.base[i], &SENTINEL, 4);
        memcpy(&b.p[n + i], &SENTINEL, 4);
    }
    for (size_t i = 0; i < n; i++) b.p[i] = NAN; /* every element must be written */
    return b;
}
static bool gb_intact(const gbuf *b) {
    for (size_t i = 0; i < GUARD; i++)
        if (memcmp(&b->base[i], &SENTINEL, 4) || memcmp(&b->p[b->n + i], &SENTINEL, 4)) return false;
    return true;
}

static int isa_list(kl_isa *out) {
    int n = 0;
    for (int i = KL_ISA_REF; i < KL_ISA_COUNT; i++)
        if (kl_isa_supported((kl_isa)i)) out[n++] = (kl_isa)i;
    return n;
}

/* Is got within tol of ref (NaN where ref is NaN, same infinities)? */
static bool close_to(double got, double ref, double tol) {
    if (isnan(ref)) return isnan(got);
    if (isinf(ref)) return got == ref;
    return fabs(got - ref) <= tol;
}

/* ---- the float64 reference of one step (src/cpu/ref semantics) -------------------------- */

static double r_sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}
static double r_clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

static double r_apply(const kl_vstep *s, double x, double o) {
    switch (s->op) {
    case KL_VOP_ADD: return x + o;
    case KL_VOP_SUB: return x - o;
    case KL_VOP_RSUB: return o - x;
    case KL_VOP_MUL: return x * o;
    case KL_VOP_DIV: return x / o;
    case KL_VOP_RDIV: return o / x;
    case KL_VOP_POW: return pow(x, o);
    case KL_VOP_RPOW: return pow(o, x);
    case KL_VOP_RELU: return x < 0 ? 0.0 : x;
    case KL_VOP_SIGMOID: return r_sigmoid(x);
    case KL_VOP_TANH: return tanh(x);
    case KL_VOP_EXP: return exp(x);
    case KL_VOP_LOG: return log(x);
    case KL_VOP_ERF: return erf(x);
    case KL_VOP_SQRT: return sqrt(x);
    case KL_VOP_NEG: return -x;
    case KL_VOP_ABS: return fabs(x);
    case KL_VOP_RECIPROCAL: return 1.0 / x;
    case KL_VOP_LEAKY_RELU: return x < 0 ? (double)s->a * x : x;
    case KL_VOP_SOFTPLUS: return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    /* the reference kernels' 0.5 x (1 + erf / tanh) rewritten without the
     * cancellation for x << 0 (float64 loses every digit there) */
    case KL_VOP_GELU_ERF: return 0.5 * x * erfc(-x * 0.7071067811865476);
    case KL_VOP_GELU_TANH: return x * r_sigmoid(2.0 * 0.7978845608028654 * (x + 0.044715 * x * x * x));
    case KL_VOP_HARD_SWISH: return x * r_clamp01(x / 6.0 + 0.5);
    case KL_VOP_HARD_SIGMOID: return r_clamp01((double)s->a * x + (double)s->b);
    case KL_VOP_SWISH: return x * r_sigmoid((double)s->a * x);
    default: return x;
    }
}

/* Exact steps: one correctly rounded float operation. */
static bool step_exact(const kl_vstep *s) {
    switch (s->op) {
    case KL_VOP_ADD:
    case KL_VOP_SUB:
    case KL_VOP_RSUB:
    case KL_VOP_MUL:
    case KL_VOP_DIV:
    case KL_VOP_RDIV:
    case KL_VOP_RELU:
    case KL_VOP_NEG:
    case KL_VOP_ABS:
    case KL_VOP_RECIPROCAL:
    case KL_VOP_SQRT: return true;
    case KL_VOP_LEAKY_RELU: return s->a == 0.25f;
    default: return false;
    }
}

static const char *vop_name(int op) {
    switch (op) {
    case KL_VOP_ADD: return "add";
    case KL_VOP_SUB: return "sub";
    case KL_VOP_RSUB: return "rsub";
    case KL_VOP_MUL: return "mul";
    case KL_VOP_DIV: return "div";
    case KL_VOP_RDIV: return "rdiv";
    case KL_VOP_POW: return "pow";
    case KL_VOP_RPOW: return "rpow";
    case KL_VOP_RELU: return "relu";
    case KL_VOP_SIGMOID: return "sigmoid";
    case KL_VOP_TANH: return "tanh";
    case KL_VOP_EXP: return "exp";
    case KL_VOP_LOG: return "log";
    case KL_VOP_ERF: return "erf";
    case KL_VOP_SQRT: return "sqrt";
    case KL_VOP_NEG: return "neg";
    case KL_VOP_ABS: return "abs";
    case KL_VOP_RECIPROCAL: return "reciprocal";
    case KL_VOP_LEAKY_RELU: return "leaky_relu";
    case KL_VOP_SOFTPLUS: return "softplus";
    case KL_VOP_GELU_ERF: return "gelu_erf";
    case KL_VOP_GELU_TANH: return "gelu_tanh";
    case KL_VOP_HARD_SWISH: return "hard_swish";
    case KL_VOP_HARD_SIGMOID: return "hard_sigmoid";
    case KL_VOP_SWISH: return "swish";
    default: return "?";
    }
}

/* ---- programs with broadcasting ----------------------------------------------------------- */

typedef struct shp {
    int rank;
    int64_t d[6];
} shp;

static size_t shp_count(const shp *s) {
    size_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= (size_t)s->d[i];
    return n;
}

static void shp_str(const shp *s, char *buf, size_t size) {
    size_t l = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < s->rank && l < size; i++) l += (size_t)snprintf(buf + l, size - l, "%s%" PRId64, i ? "," : "", s->d[i]);
    if (l < size) snprintf(buf + l, size - l, "]");
}

/* Data for input k of a case: mostly in [-3, 3], with specials when asked. */
static void fill(rng *r, float *x, size_t n, float scale, bool specials) {
    static const float sp[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-30f, -1e-30f, 1e-40f, 80.0f, -80.0f,
                               100.0f, -100.0f, 0.5f, -0.5f, 1.0f, -1.0f, 3.0f, -3.0f, 30.0f, -30.0f};
    for (size_t i = 0; i < n; i++) x[i] = rng_unit(r) * scale;
    if (specials)
        for (size_t i = 0; i < n; i++)
            if (rng_next(r) % 7 == 0) x[i] = sp[rng_next(r) % KL_ARRAY_LEN(sp)];
}

/* Runs program p over inputs of shapes in[] (out: their broadcast shape)
 * on every level and thread count; reference: per-step double, rounded
 * to float after each step. */
static void run_prog_case(const char *op, const char *label, const kl_vprog *proto, const shp *ins, int n_in,
                          const shp *out, float scale, bool specials, uint64_t seed) {
    kl_isa isas[KL_ISA_COUNT];
    int nisa = isa_list(isas);
    size_t total = shp_count(out);
    float *data[KL_VPROG_MAX_INPUTS];
    rng r = {seed};
    for (int k = 0; k < n_in; k++) {
        size_t c = shp_count(&ins[k]);
        data[k] = malloc((c ? c : 1) * sizeof(float));
        fill(&r, data[k], c, k == 0 ? scale : 1.5f, specials);
        /* divisors, logs and powers away from 0 / negatives in the operands */
        for (size_t i = 0; i < c && k > 0; i++)
            if (fabsf(data[k][i]) < 0.25f) data[k][i] += 0.5f;
    }
    /* reference: walk the output index, map to each input */
    double *ref = malloc((total ? total : 1) * sizeof(double)), *cond = malloc((total ? total : 1) * sizeof(double));
    bool exact = true;
    for (int s = 0; s < proto->n_steps; s++) exact &= step_exact(&proto->steps[s]);
    for (size_t i = 0; i < total; i++) {
        size_t off[KL_VPROG_MAX_INPUTS] = {0}, rem = i, mul[KL_VPROG_MAX_INPUTS];
        for (int k = 0; k < n_in; k++) mul[k] = 1;
        for (int d = out->rank - 1; d >= 0; d--) {
            size_t idx = rem % (size_t)out->d[d];
            rem /= (size_t)out->d[d];
            for (int k = 0; k < n_in; k++) {
                int id = d - (out->rank - ins[k].rank);
                if (id < 0) continue;
                if (ins[k].d[id] != 1) off[k] += idx * mul[k];
                mul[k] *= (size_t)ins[k].d[id];
            }
        }
        /* the reference, and the same with each step's input moved by
         * -+4e-6 relative: how much the chain amplifies the float kernels'
         * per-step error (the condition-number part of the tier) */
        double res[3];
        for (int pass = 0; pass < 3; pass++) {
            double f = pass == 0 ? 1.0 : pass == 1 ? 1.0 + 4e-6 : 1.0 - 4e-6;
            float v = data[0][off[0]];
            for (int s = 0; s < proto->n_steps; s++) {
                const kl_vstep *st = &proto->steps[s];
                double x = pass ? v * f : v;
                double o = st->arg == KL_VARG_IMM ? st->a : st->arg == KL_VARG_SELF ? x : data[st->arg][off[st->arg]];
                v = (float)r_apply(st, x, o);
            }
            res[pass] = v;
        }
        ref[i] = res[0];
        cond[i] = fmax(fabs(res[1] - res[0]), fabs(res[2] - res[0]));
        if (!(cond[i] < INFINITY)) cond[i] = 0;
    }
    for (int ii = 0; ii < nisa; ii++)
        for (int th = 1; th <= 2; th++) {
            char name[512], sb[64];
            size_t l = (size_t)snprintf(name, sizeof name, "%s(%s", op, label);
            for (int k = 0; k < n_in && l < sizeof name; k++) {
                shp_str(&ins[k], sb, sizeof sb);
                l += (size_t)snprintf(name + l, sizeof name - l, ",x%d=%s", k, sb);
            }
            snprintf(name + l, sizeof name - l, ",specials=%d,isa=%s,threads=%d,seed=%" PRIu64 ")", specials,
                     kl_isa_name(isas[ii]), th, seed);
            if (!selected(op, name)) continue;
            g_cases++;
            kl_vprog p = *proto;
            p.n_in = n_in;
            for (int k = 0; k < n_in; k++) {
                p.in[k] = data[k];
                p.in_rank[k] = ins[k].rank;
                p.in_dims[k] = ins[k].d;
            }
            gbuf y = gb_alloc(total);
            kl_vec_prog_run(isas[ii], th == 2 ? g_pool2 : NULL, &p, y.p, out->rank, out->d);
            double worst = 0;
            for (size_t i = 0; i < total; i++) {
                double tol = exact ? 0 : 4e-6 * fabs(ref[i]) + 1.5 * cond[i] + 1e-30;
                if (exact ? !((float)ref[i] == y.p[i] || (isnan(ref[i]) && isnan(y.p[i])))
                          : !close_to(y.p[i], ref[i], tol)) {
                    fail(name, "at %zu: got %.9g, expected %.9g (%s tier)", i, y.p[i], ref[i],
                         exact ? "exact" : "transcendental");
                    break;
                }
                if (!exact && tol > 0 && isfinite(ref[i]) && fabs(y.p[i] - ref[i]) / tol > worst)
                    worst = fabs(y.p[i] - ref[i]) / tol;
            }
            if (!gb_intact(&y)) fail(name, "sentinel around Y overwritten");
            if (g_verbose) fprintf(stderr, "  %s: worst err/tol %.3f\n", name, worst);
            free(y.base);
        }
    for (int k = 0; k < n_in; k++) free(data[k]);
    free(ref);
    free(cond);
}

static const size_t g_sizes[] = {1, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 100, 513, 1031, 40000};

static void test_unary(void) {
    static const kl_vstep ops[] = {
        {KL_VOP_RELU, KL_VARG_IMM, 0, 0},        {KL_VOP_SIGMOID, KL_VARG_IMM, 0, 0},
        {KL_VOP_TANH, KL_VARG_IMM, 0, 0},        {KL_VOP_EXP, KL_VARG_IMM, 0, 0},
        {KL_VOP_LOG, KL_VARG_IMM, 0, 0},         {KL_VOP_ERF, KL_VARG_IMM, 0, 0},
        {KL_VOP_SQRT, KL_VARG_IMM, 0, 0},        {KL_VOP_NEG, KL_VARG_IMM, 0, 0},
        {KL_VOP_ABS, KL_VARG_IMM, 0, 0},         {KL_VOP_RECIPROCAL, KL_VARG_IMM, 0, 0},
        {KL_VOP_LEAKY_RELU, KL_VARG_IMM, 0.25f, 0}, {KL_VOP_LEAKY_RELU, KL_VARG_IMM, 0.01f, 0},
        {KL_VOP_SOFTPLUS, KL_VARG_IMM, 0, 0},    {KL_VOP_GELU_ERF, KL_VARG_IMM, 0, 0},
        {KL_VOP_GELU_TANH, KL_VARG_IMM, 0, 0},   {KL_VOP_HARD_SWISH, KL_VARG_IMM, 0, 0},
        {KL_VOP_HARD_SIGMOID, KL_VARG_IMM, 0.2f, 0.5f}, {KL_VOP_SWISH, KL_VARG_IMM, 1.0f, 0},
        {KL_VOP_SWISH, KL_VARG_IMM, 1.702f, 0},
    };
    for (size_t o = 0; o < KL_ARRAY_LEN(ops); o++)
        for (size_t s = 0; s < KL_ARRAY_LEN(g_sizes); s++) {
            kl_vprog p;
            memset(&p, 0, sizeof p);
            p.steps[0] = ops[o];
            p.n_steps = 1;
            shp x = {1, {(int64_t)g_sizes[s]}};
            char label[96];
            snprintf(label, sizeof label, "op=%s,a=%g", vop_name(ops[o].op), ops[o].a);
            /* wide range with specials, then the working range */
            run_prog_case("unary", label, &p, &x, 1, &x, 40.0f, true, 100 + o * 31 + s);
            if (g_sizes[s] == 1031) run_prog_case("unary", label, &p, &x, 1, &x, 6.0f, false, 500 + o);
        }
}

static void test_binary(void) {
    static const struct {
        shp a, b, y;
    } cases[] = {
        {{1, {7}}, {1, {7}}, {1, {7}}},
        {{1, {63}}, {0, {0}}, {1, {63}}},
        {{0, {0}}, {1, {17}}, {1, {17}}},
        {{2, {3, 17}}, {1, {17}}, {2, {3, 17}}},
        {{2, {3, 17}}, {2, {3, 1}}, {2, {3, 17}}},
        {{2, {17, 1}}, {2, {1, 63}}, {2, {17, 63}}},
        {{4, {2, 3, 1, 5}}, {3, {3, 4, 1}}, {4, {2, 3, 4, 5}}},
        {{3, {1, 197, 768}}, {3, {1, 197, 768}}, {3, {1, 197, 768}}},
        {{4, {1, 64, 13, 11}}, {3, {64, 1, 1}}, {4, {1, 64, 13, 11}}},
        {{3, {5, 1, 3}}, {2, {7, 1}}, {3, {5, 7, 3}}},
        {{2, {64, 1031}}, {1, {1031}}, {2, {64, 1031}}},
        {{1, {1}}, {1, {1}}, {1, {1}}},
        {{2, {3, 0}}, {1, {1}}, {2, {3, 0}}},
    };
    static const int ops[] = {KL_VOP_ADD, KL_VOP_SUB, KL_VOP_MUL, KL_VOP_DIV};
    for (size_t c = 0; c < KL_ARRAY_LEN(cases); c++)
        for (size_t o = 0; o < KL_ARRAY_LEN(ops); o++) {
            kl_vprog p;
            memset(&p, 0, sizeof p);
            p.steps[0] = (kl_vstep){ops[o], 1, 0, 0};
            p.n_steps = 1;
            shp in[2] = {cases[c].a, cases[c].b};
            char label[64];
            snprintf(label, sizeof label, "op=%s", vop_name(ops[o]));
            run_prog_case("binary", label, &p, in, 2, &cases[c].y, 3.0f, c % 3 == 0, 700 + c * 7 + o);
        }
}

/* Programs as fuse_elementwise makes them. */
static void test_prog(void) {
    static const struct {
        const char *label;
        int n;
        kl_vstep s[6];
    } progs[] = {
        {"gelu_chain", 5,
         {{KL_VOP_DIV, KL_VARG_IMM, 1.41421354f, 0},
          {KL_VOP_ERF, KL_VARG_IMM, 0, 0},
          {KL_VOP_ADD, KL_VARG_IMM, 1.0f, 0},
          {KL_VOP_MUL, 0, 0, 0},
          {KL_VOP_MUL, KL_VARG_IMM, 0.5f, 0}}},
        {"silu_chain", 2, {{KL_VOP_SIGMOID, KL_VARG_IMM, 0, 0}, {KL_VOP_MUL, 0, 0, 0}}},
        {"square_sub", 3, {{KL_VOP_SUB, 1, 0, 0}, {KL_VOP_MUL, KL_VARG_SELF, 0, 0}, {KL_VOP_SQRT, KL_VARG_IMM, 0, 0}}},
        {"pow_chain", 4,
         {{KL_VOP_POW, KL_VARG_IMM, 3.0f, 0},
          {KL_VOP_MUL, KL_VARG_IMM, 0.044715f, 0},
          {KL_VOP_ADD, 0, 0, 0},
          {KL_VOP_TANH, KL_VARG_IMM, 0, 0}}},
        {"pow_general", 3,
         {{KL_VOP_ABS, KL_VARG_IMM, 0, 0}, {KL_VOP_POW, 1, 0, 0}, {KL_VOP_RPOW, KL_VARG_IMM, 1.5f, 0}}},
        {"reverse_ops", 4,
         {{KL_VOP_RSUB, 1, 0, 0}, {KL_VOP_RDIV, KL_VARG_IMM, 2.0f, 0}, {KL_VOP_LEAKY_RELU, KL_VARG_IMM, 0.1f, 0},
          {KL_VOP_SOFTPLUS, KL_VARG_IMM, 0, 0}}},
        {"exp_log", 4,
         {{KL_VOP_EXP, KL_VARG_IMM, 0, 0}, {KL_VOP_ADD, 1, 0, 0}, {KL_VOP_LOG, KL_VARG_IMM, 0, 0},
          {KL_VOP_NEG, KL_VARG_IMM, 0, 0}}},
        {"pow_square", 2, {{KL_VOP_POW, KL_VARG_IMM, 2.0f, 0}, {KL_VOP_RECIPROCAL, KL_VARG_IMM, 0, 0}}},
    };
    static const struct {
        shp x0, x1, y;
    } shapes[] = {
        {{1, {17}}, {1, {17}}, {1, {17}}},
        {{2, {3, 63}}, {1, {63}}, {2, {3, 63}}},
        {{3, {2, 7, 1}}, {2, {1, 33}}, {3, {2, 7, 33}}},
        {{1, {1}}, {2, {5, 9}}, {2, {5, 9}}},
        {{3, {1, 77, 2048}}, {1, {2048}}, {3, {1, 77, 2048}}},
    };
    for (size_t q = 0; q < KL_ARRAY_LEN(progs); q++)
        for (size_t s = 0; s < KL_ARRAY_LEN(shapes); s++) {
            kl_vprog p;
            memset(&p, 0, sizeof p);
            p.n_steps = progs[q].n;
            for (int i = 0; i < progs[q].n; i++) p.steps[i] = progs[q].s[i];
            shp in[2] = {shapes[s].x0, shapes[s].x1};
            bool uses1 = false;
            for (int i = 0; i < p.n_steps; i++) uses1 |= p.steps[i].arg == 1;
            run_prog_case("prog", progs[q].label, &p, in, uses1 ? 2 : 1, uses1 ? &shapes[s].y : &shapes[s].x0, 3.0f,
                          s == 0, 900 + q * 13 + s);
        }
}

/* ---- norms -------------------------------------------------------------------------------------- */

static void test_norm(void) {
    static const size_t ns[] = {1, 3, 7, 16, 17, 63, 64, 100, 768, 1031};
    static const size_t rows_list[] = {1, 3, 50};
    kl_isa isas[KL_ISA_COUNT];
    int nisa = isa_list(isas);
    int v = 0;
    for (size_t a = 0; a < KL_ARRAY_LEN(ns); a++)
        for (size_t b = 0; b < KL_ARRAY_LEN(rows_list) + 1; b++, v++) {
            size_t n = ns[a], rows = b < KL_ARRAY_LEN(rows_list) ? rows_list[b] : 65536 / n + 3;
            bool rms = v % 2, hw = v % 3 != 0, hb = v % 4 != 1 && !rms;
            float offset = v % 5 == 0 ? 100.0f : 0.0f; /* a large mean: the two-pass variance */
            rng r = {3000 + (uint64_t)v};
            float *x = malloc(rows * n * sizeof(float)), *w = malloc(n * sizeof(float)), *bb = malloc(n * sizeof(float));
            for (size_t i = 0; i < rows * n; i++) x[i] = rng_unit(&r) * 2.0f + offset;
            for (size_t i = 0; i < n; i++) w[i] = rng_unit(&r) + 1.0f, bb[i] = rng_unit(&r);
            double *ref = malloc(rows * n * sizeof(double)), *mag = malloc(rows * n * sizeof(double));
            const float eps = 1e-5f;
            for (size_t i = 0; i < rows; i++) {
                const float *px = x + i * n;
                double mean = 0, q = 0;
                if (!rms) {
                    for (size_t k = 0; k < n; k++) mean += px[k];
                    mean /= (double)n;
                }
                for (size_t k = 0; k < n; k++) q += (px[k] - mean) * (px[k] - mean);
                double inv = 1.0 / sqrt(q / (double)n + eps);
                /* magnitude: |x|/sigma (the mean's rounding is relative to |x|) times |w|, plus |b| */
                double amax = 0;
                for (size_t k = 0; k < n; k++) amax = fmax(amax, fabs(px[k]));
                for (size_t k = 0; k < n; k++) {
                    double wk = hw ? w[k] : 1.0, bk = hb ? bb[k] : 0.0;
                    ref[i * n + k] = (px[k] - mean) * inv * wk + bk;
                    mag[i * n + k] = (fabs(px[k] - mean) + amax) * inv * fabs(wk) + fabs(bk);
                }
            }
            for (int ii = 0; ii < nisa; ii++)
                for (int th = 1; th <= 2; th++) {
                    char name[256];
                    snprintf(name, sizeof name, "norm(rows=%zu,n=%zu,rms=%d,scale=%d,bias=%d,mean=%g,isa=%s,threads=%d)",
                             rows, n, rms, hw, hb, offset, kl_isa_name(isas[ii]), th);
                    if (!selected("norm", name)) continue;
                    g_cases++;
                    gbuf y = gb_alloc(rows * n);
                    kl_vec_norm(isas[ii], th == 2 ? g_pool2 : NULL, rms, x, y.p, rows, n, hw ? w : NULL, hb ? bb : NULL,
                                eps);
                    double gam = 2.0 * (double)(n + 2) * 0x1.0p-24 + 4e-6;
                    for (size_t i = 0; i < rows * n; i++)
                        if (!close_to(y.p[i], ref[i], gam * mag[i] + 1e-30)) {
                            fail(name, "at %zu: got %.9g, expected %.9g (accumulation tier)", i, y.p[i], ref[i]);
                            break;
                        }
                    if (!gb_intact(&y)) fail(name, "sentinel around Y overwritten");
                    free(y.base);
                }
            free(x), free(w), free(bb), free(ref), free(mag);
        }
}

/* ---- softmax ------------------------------------------------------------------------------------ */

static void test_softmax(void) {
    static const size_t shapes[][3] = {
        {1, 1, 1},  {3, 7, 1},  {5, 17, 1}, {2, 63, 1}, {4, 1000, 1}, {6, 16, 1},   {2, 5, 3},    {3, 17, 7},
        {1, 7, 65}, {2, 3, 130}, {1, 1, 9},  {7, 2, 16}, {197, 197, 1}, {1, 1000, 40}, {12, 77, 77}, {2, 33, 17},
    };
    kl_isa isas[KL_ISA_COUNT];
    int nisa = isa_list(isas);
    for (size_t s = 0; s < KL_ARRAY_LEN(shapes); s++)
        for (int special = 0; special < 2; special++) {
            size_t outer = shapes[s][0], n = shapes[s][1], inner = shapes[s][2], total = outer * n * inner;
            rng r = {5000 + s * 2 + (uint64_t)special};
            float *x = malloc(total * sizeof(float));
            for (size_t i = 0; i < total; i++) x[i] = rng_unit(&r) * 8.0f;
            if (special) { /* lines of the softmax axis with NaN, +inf, all -inf, some -inf, huge */
                size_t lines = outer * inner;
                for (size_t l = 0; l < lines; l++) {
                    size_t o = l / inner, c = l % inner, kind = l % 6;
                    float *px = x + o * n * inner + c;
                    size_t j = (size_t)(rng_next(&r) % n);
                    if (kind == 0) px[j * inner] = NAN;
                    if (kind == 1) px[j * inner] = INFINITY;
                    if (kind == 2)
                        for (size_t k = 0; k < n; k++) px[k * inner] = -INFINITY;
                    if (kind == 3) px[j * inner] = -INFINITY;
                    if (kind == 4) px[j * inner] = 1e30f;
                }
            }
            double *ref = malloc(total * sizeof(double));
            for (size_t o = 0; o < outer; o++)
                for (size_t c = 0; c < inner; c++) {
                    const float *px = x + o * n * inner + c;
                    double *pr = ref + o * n * inner + c;
                    double m = -INFINITY, sum = 0;
                    for (size_t j = 0; j < n; j++)
                        if (!isnan(m) && (isnan(px[j * inner]) || px[j * inner] > m)) m = px[j * inner];
                    for (size_t j = 0; j < n; j++) sum += pr[j * inner] = exp((double)px[j * inner] - m);
                    for (size_t j = 0; j < n; j++) pr[j * inner] /= sum;
                }
            for (int ii = 0; ii < nisa; ii++)
                for (int th = 1; th <= 2; th++) {
                    char name[256];
                    snprintf(name, sizeof name, "softmax(outer=%zu,n=%zu,inner=%zu,specials=%d,isa=%s,threads=%d)", outer,
                             n, inner, special, kl_isa_name(isas[ii]), th);
                    if (!selected("softmax", name)) continue;
                    g_cases++;
                    gbuf y = gb_alloc(total);
                    kl_vec_softmax(isas[ii], th == 2 ? g_pool2 : NULL, x, y.p, outer, n, inner);
                    /* exp to a few ulp, the row sum to n roundings */
                    double gam = 2.0 * (double)(n + 2) * 0x1.0p-24 + 4e-6;
                    for (size_t i = 0; i < total; i++)
                        if (!close_to(y.p[i], ref[i], gam * fabs(ref[i]) + 1e-37)) {
                            fail(name, "at %zu: got %.9g, expected %.9g (accumulation tier)", i, y.p[i], ref[i]);
                            break;
                        }
                    if (!gb_intact(&y)) fail(name, "sentinel around Y overwritten");
                    free(y.base);
                }
            free(x), free(ref);
        }
}

/* ---- matvec (conv.matvec: 1x1 convolutions of 1x1 maps) and plane means ------------------------- */

/* y = act(W x + bias + z): M, K across the 4-row blocks and the vector tails,
 * W at an odd float offset and at a 1-byte offset (weights inside a
 * protobuf), bias and z present or not, every activation kind; accumulation
 * tier over K terms, then the activation's own 4e-6 relative plus the
 * condition (the activation's slope, bounded by 1.2 for these kinds, times
 * the sum's error). */
static void test_matvec(void) {
    static const size_t Ms[] = {1, 3, 4, 7, 17, 48, 63, 65};
    static const size_t Ks[] = {1, 3, 7, 8, 16, 17, 33, 63, 96, 1152};
    kl_isa isas[KL_ISA_COUNT];
    int nisa = isa_list(isas);
    int v = 0;
    for (size_t mi = 0; mi < KL_ARRAY_LEN(Ms); mi++)
        for (size_t ki = 0; ki < KL_ARRAY_LEN(Ks); ki++, v++) {
            size_t M = Ms[mi], K = Ks[ki];
            kl_act act = {(kl_act_kind)(v % KL_ACT_COUNT), 0.0f, 0.0f};
            if (act.kind == KL_ACT_CLIP) act.alpha = -0.5f, act.beta = 0.75f;
            if (act.kind == KL_ACT_LEAKY_RELU) act.alpha = 0.25f;
            if (act.kind == KL_ACT_HARD_SIGMOID) act.alpha = 0.2f, act.beta = 0.5f;
            bool has_b = v % 3 != 0, has_z = v % 4 == 1;
            int misalign = v % 3; /* 0: aligned, 1: odd float offset, 2: 1-byte offset */
            rng r = {7000 + (uint64_t)v};
            char *wraw = malloc(M * K * sizeof(float) + 2 * sizeof(float));
            float *x = malloc(K * sizeof(float)), *bb = malloc((M + 1) * sizeof(float)), *z = malloc(M * sizeof(float));
            float *wv = malloc(M * K * sizeof(float));
            for (size_t i = 0; i < M * K; i++) wv[i] = rng_unit(&r);
            for (size_t i = 0; i < K; i++) x[i] = rng_unit(&r) * 2.0f;
            for (size_t i = 0; i < M + 1; i++) bb[i] = rng_unit(&r);
            for (size_t i = 0; i < M; i++) z[i] = rng_unit(&r);
            char *wp = wraw + (misalign == 1 ? sizeof(float) : misalign == 2 ? 1 : 0);
            memcpy(wp, wv, M * K * sizeof(float));
            const float *bias = has_b ? bb + (misalign ? 1 : 0) : NULL;
            for (int ii = 0; ii < nisa; ii++) {
                char name[256];
                snprintf(name, sizeof name, "matvec(M=%zu,K=%zu,act=%d,bias=%d,z=%d,misalign=%d,isa=%s)", M, K,
                         (int)act.kind, has_b, has_z, misalign, kl_isa_name(isas[ii]));
                if (!selected("matvec", name)) continue;
                g_cases++;
                gbuf y = gb_alloc(M);
                kl_vec_kernels_get(isas[ii])->matvec((const float *)(void *)wp, M, K, x, bias, has_z ? z : NULL, y.p,
                                                     (int)act.kind, act.alpha, act.beta);
                for (size_t m = 0; m < M; m++) {
                    double s = 0, mag = 0;
                    for (size_t k = 0; k < K; k++) s += (double)wv[m * K + k] * x[k], mag += fabs((double)wv[m * K + k] * x[k]);
                    if (bias) s += bias[m], mag += fabs(bias[m]);
                    if (has_z) s += z[m], mag += fabs(z[m]);
                    double ref = kl_act_scalar(act, (float)s); /* reference activation on the rounded sum */
                    double tol = 1.2 * (2.0 * (double)(K + 3) * 0x1.0p-24 * mag) + 4e-6 * fabs(ref) + 1e-30;
                    if (act.kind == KL_ACT_GELU_ERF || act.kind == KL_ACT_GELU_TANH || act.kind == KL_ACT_MISH)
                        tol += 4e-6 * fabs(s);
                    if (!close_to(y.p[m], ref, tol)) {
                        fail(name, "at %zu: got %.9g, expected %.9g", m, y.p[m], ref);
                        break;
                    }
                }
                if (!gb_intact(&y)) fail(name, "sentinel around Y overwritten");
                free(y.base);
            }
            free(wraw), free(x), free(bb), free(z), free(wv);
        }
}

/* ---- perf: a few zoo shapes, best of N, one thread ---------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void perf(void) {
    kl_isa isas[KL_ISA_COUNT];
    int nisa = isa_list(isas);
    size_t n = 197 * 768;
    float *a = malloc(n * 4 * 4), *b = a + n, *y = b + n, *w = y + n;
    rng r = {1};
    for (size_t i = 0; i < 4 * n; i++) a[i] = rng_unit(&r);
    for (int ii = 0; ii < nisa; ii++) {
        kl_isa isa = isas[ii];
        double best[4] = {1e9, 1e9, 1e9, 1e9};
        for (int rep = 0; rep < 200; rep++) {
            kl_vprog p;
            memset(&p, 0, sizeof p);
            p.steps[0] = (kl_vstep){KL_VOP_ADD, 1, 0, 0};
            p.n_steps = 1, p.n_in = 2, p.in[0] = a, p.in[1] = b;
            int64_t d[3] = {1, 197, 768};
            p.in_rank[0] = p.in_rank[1] = 3, p.in_dims[0] = p.in_dims[1] = d;
            double t0 = now_s();
            kl_vec_prog_run(isa, NULL, &p, y, 3, d);
            double t1 = now_s();
            p.steps[0] = (kl_vstep){KL_VOP_GELU_ERF, KL_VARG_IMM, 0, 0};
            p.n_in = 1;
            kl_vec_prog_run(isa, NULL, &p, y, 3, d);
            double t2 = now_s();
            kl_vec_norm(isa, NULL, false, a, y, 197, 768, w, b, 1e-5f);
            double t3 = now_s();
            kl_vec_softmax(isa, NULL, a, y, 591, 197, 1);
            double t4 = now_s();
            best[0] = fmin(best[0], t1 - t0), best[1] = fmin(best[1], t2 - t1);
            best[2] = fmin(best[2], t3 - t2), best[3] = fmin(best[3], t4 - t3);
        }
        /* channel scale of a squeeze-excite block: [1,C,H,W] * [1,C,1,1] */
        double se[2] = {1e9, 1e9};
        static const int64_t shapes[2][2] = {{96, 112 * 112 / 8}, {1152, 49}};
        for (int q = 0; q < 2; q++)
            for (int rep = 0; rep < 200; rep++) {
                kl_vprog p;
                memset(&p, 0, sizeof p);
                p.steps[0] = (kl_vstep){KL_VOP_MUL, 1, 0, 0};
                int64_t dx[4] = {1, shapes[q][0], shapes[q][1], 1}, ds[4] = {1, shapes[q][0], 1, 1};
                p.n_steps = 1, p.n_in = 2, p.in[0] = a, p.in[1] = b;
                p.in_rank[0] = p.in_rank[1] = 4, p.in_dims[0] = dx, p.in_dims[1] = ds;
                double t0 = now_s();
                kl_vec_prog_run(isa, NULL, &p, y, 4, dx);
                se[q] = fmin(se[q], now_s() - t0);
            }
        printf("%-7s add[1,197,768] %.1f us  gelu %.1f us  layernorm[197,768] %.1f us  softmax[591,197] %.1f us  "
               "se-mul[96,1568]x[96,1] %.1f us  se-mul[1152,49]x[1152,1] %.1f us\n",
               kl_isa_name(isa), best[0] * 1e6, best[1] * 1e6, best[2] * 1e6, best[3] * 1e6, se[0] * 1e6, se[1] * 1e6);
    }
    /* a plain C loop (what the reference kernel's float loop compiles to) for scale */
    double plain = 1e9;
    for (int rep = 0; rep < 200; rep++) {
        double t0 = now_s();
        for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
        plain = fmin(plain, now_s() - t0);
    }
    printf("plain C loop add[1,197,768] %.1f us (y[0] %g)\n", plain * 1e6, y[0]);
    free(a);
}

int main(int argc, char **argv) {
    bool do_perf = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc)
            g_op = argv[++i];
        else if (!strcmp(argv[i], "-p") && i + 1 < argc && g_npat < 16)
            g_pat[g_npat++] = argv[++i];
        else if (!strcmp(argv[i], "-v"))
            g_verbose = true;
        else if (!strcmp(argv[i], "perf"))
            do_perf = true;
        else {
            fprintf(stderr, "usage: test-vecops [perf] [-o unary|binary|prog|norm|softmax|matvec|plane_mean] [-p PATTERN]... [-v]\n");
            return 2;
        }
    }
    if (kl_pool_create(2, &g_pool2) != KILN_OK) {
        fprintf(stderr, "test-vecops: no thread pool: %s\n", kl_error_message());
        return 1;
    }
    if (do_perf) {
        perf();
        kl_pool_destroy(g_pool2);
        return 0;
    }
    test_unary();
    test_binary();
    test_prog();
    test_norm();
    test_softmax();
    test_matvec();
    kl_pool_destroy(g_pool2);
    fprintf(stderr, "test-vecops: %ld cases, %ld failed\n", g_cases, g_failed);
    return g_failed ? 1 : 0;
}
