/*
 * Broadcasting elementwise kernels: arithmetic, comparisons, logic and
 * bitwise operators, PRelu, Pow, the variadic Max/Min/Sum/Mean, Where and
 * Clip.  float32 has typed loops; every other type goes through exact
 * double / int64 / uint64 arithmetic and the rounding rules of Cast.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "cpu/ref/elementwise.h"

/* ---- the broadcast walker ---------------------------------------------------------- */

kiln_status kl_ew_walk(kl_rt *const *ins, int n, const kl_rt *out, kl_ew_run_fn fn, void *ctx) {
    int r = out->rank;
    if (n < 0 || n > KL_BCAST_MAX_IN)
        return kl_errorf(KILN_ERR_UNSUPPORTED, "broadcast of %d inputs: the walker takes at most %d", n,
                         KL_BCAST_MAX_IN);
    if (out->count == 0) return KILN_OK;
    int64_t st[KL_BCAST_MAX_IN][KILN_MAX_RANK], tmp[KILN_MAX_RANK];
    for (int k = 0; k < n; k++) {
        const kl_rt *t = ins[k];
        kl_ref_strides(t->rank, t->dims, tmp);
        for (int d = 0; d < r; d++) {
            int o = d - (r - t->rank);
            st[k][d] = o < 0 || t->dims[o] == 1 ? 0 : tmp[o];
        }
    }
    /* Merge adjacent axes along which every input is contiguous. */
    int64_t cd[KILN_MAX_RANK], cs[KL_BCAST_MAX_IN][KILN_MAX_RANK];
    int nr = 0;
    for (int d = 0; d < r; d++) {
        if (out->dims[d] == 1) continue;
        bool merge = nr > 0;
        for (int k = 0; k < n && merge; k++)
            if (cs[k][nr - 1] != st[k][d] * out->dims[d]) merge = false;
        if (merge) {
            cd[nr - 1] *= out->dims[d];
            for (int k = 0; k < n; k++) cs[k][nr - 1] = st[k][d];
        } else {
            cd[nr] = out->dims[d];
            for (int k = 0; k < n; k++) cs[k][nr] = st[k][d];
            nr++;
        }
    }
    int64_t off[KL_BCAST_MAX_IN] = {0}, ist[KL_BCAST_MAX_IN] = {0}, idx[KILN_MAX_RANK] = {0};
    if (nr == 0) {
        fn(ctx, 0, off, ist, 1);
        return KILN_OK;
    }
    int64_t inner = cd[nr - 1], outer = out->count / inner, o = 0;
    for (int k = 0; k < n; k++) ist[k] = cs[k][nr - 1];
    for (int64_t it = 0; it < outer; it++, o += inner) {
        fn(ctx, o, off, ist, inner);
        for (int d = nr - 2; d >= 0; d--) {
            idx[d]++;
            for (int k = 0; k < n; k++) off[k] += cs[k][d];
            if (idx[d] < cd[d]) break;
            for (int k = 0; k < n; k++) off[k] -= cs[k][d] * cd[d];
            idx[d] = 0;
        }
    }
    return KILN_OK;
}

/* ---- domains and operator tables ----------------------------------------------------- */

/* How elements of a type are computed on: double, int64 or uint64. */
typedef enum kl_dom { KL_DOM_F = 0, KL_DOM_I, KL_DOM_U } kl_dom;

/* The domain elements of type t are computed in. */
static kl_dom kl_dom_of(kiln_dtype t) {
    switch (t) {
    case KILN_DTYPE_UINT8: case KILN_DTYPE_UINT16: case KILN_DTYPE_UINT32: case KILN_DTYPE_UINT64:
    case KILN_DTYPE_UINT4: case KILN_DTYPE_UINT2:
        return KL_DOM_U;
    default:
        return kl_dtype_is_float(t) ? KL_DOM_F : KL_DOM_I;
    }
}

typedef void (*kl_f32_bin)(const float *a, const float *b, void *y, int64_t n, int64_t sa, int64_t sb);

/* A binary operator: a typed float32 loop (optional) and one function per
 * domain (NULL where the operator does not apply).  to_bool: the result
 * is a bool tensor (comparisons, logic). */
typedef struct kl_binop {
    const char *name;
    kl_f32_bin f32;
    double (*f)(double a, double b);
    int64_t (*i)(int64_t a, int64_t b);
    uint64_t (*u)(uint64_t a, uint64_t b);
    bool to_bool;
} kl_binop;

/* float32 loop for `expr` of floats a and b, result type T; the runs of a
 * broadcast have strides 0 or 1. */
#define KL_F32_LOOP(fname, T, expr)                                                           \
    static void fname(const float *A, const float *B, void *Yv, int64_t n, int64_t sa, int64_t sb) { \
        T *Y = Yv;                                                                            \
        if (sa && sb) {                                                                       \
            for (int64_t j = 0; j < n; j++) {                                                 \
                float a = A[j], b = B[j];                                                     \
                Y[j] = (T)(expr);                                                             \
            }                                                                                 \
        } else if (sa) {                                                                      \
            float b = B[0];                                                                   \
            for (int64_t j = 0; j < n; j++) {                                                 \
                float a = A[j];                                                               \
                Y[j] = (T)(expr);                                                             \
            }                                                                                 \
        } else if (sb) {                                                                      \
            float a = A[0];                                                                   \
            for (int64_t j = 0; j < n; j++) {                                                 \
                float b = B[j];                                                               \
                Y[j] = (T)(expr);                                                             \
            }                                                                                 \
        } else {                                                                              \
            float a = A[0], b = B[0];                                                         \
            T v = (T)(expr);                                                                  \
            for (int64_t j = 0; j < n; j++) Y[j] = v;                                         \
        }                                                                                     \
    }

/* NaN-propagating max/min (numpy maximum/minimum). */
#define KL_FMAX(a, b) ((a) != (a) ? (a) : (b) != (b) ? (b) : (a) >= (b) ? (a) : (b))
#define KL_FMIN(a, b) ((a) != (a) ? (a) : (b) != (b) ? (b) : (a) <= (b) ? (a) : (b))

KL_F32_LOOP(kl_l_add, float, a + b)
KL_F32_LOOP(kl_l_sub, float, a - b)
KL_F32_LOOP(kl_l_mul, float, a *b)
KL_F32_LOOP(kl_l_div, float, a / b)
KL_F32_LOOP(kl_l_eq, uint8_t, a == b)
KL_F32_LOOP(kl_l_gt, uint8_t, a > b)
KL_F32_LOOP(kl_l_ge, uint8_t, a >= b)
KL_F32_LOOP(kl_l_lt, uint8_t, a < b)
KL_F32_LOOP(kl_l_le, uint8_t, a <= b)
KL_F32_LOOP(kl_l_prelu, float, a < 0 ? a * b : a)
KL_F32_LOOP(kl_l_pow, float, pow((double)a, (double)b))

static double kl_f_add(double a, double b) { return a + b; }
static double kl_f_sub(double a, double b) { return a - b; }
static double kl_f_mul(double a, double b) { return a * b; }
static double kl_f_div(double a, double b) { return a / b; }
static double kl_f_max(double a, double b) { return KL_FMAX(a, b); }
static double kl_f_min(double a, double b) { return KL_FMIN(a, b); }
static double kl_f_eq(double a, double b) { return a == b; }
static double kl_f_gt(double a, double b) { return a > b; }
static double kl_f_ge(double a, double b) { return a >= b; }
static double kl_f_lt(double a, double b) { return a < b; }
static double kl_f_le(double a, double b) { return a <= b; }
static double kl_f_prelu(double a, double b) { return a < 0 ? a * b : a; }
static double kl_f_fmod(double a, double b) { return fmod(a, b); }
/* Python's %: the result takes the divisor's sign. */
static double kl_f_pymod(double a, double b) {
    double r = fmod(a, b);
    if (r != 0 && (r < 0) != (b < 0)) r += b;
    return r;
}

/* Signed arithmetic wraps like two's complement (numpy), without UB. */
static int64_t kl_wrap(uint64_t u) {
    int64_t r;
    memcpy(&r, &u, sizeof r);
    return r;
}
static int64_t kl_i_add(int64_t a, int64_t b) { return kl_wrap((uint64_t)a + (uint64_t)b); }
static int64_t kl_i_sub(int64_t a, int64_t b) { return kl_wrap((uint64_t)a - (uint64_t)b); }
static int64_t kl_i_mul(int64_t a, int64_t b) { return kl_wrap((uint64_t)a * (uint64_t)b); }
/* Truncating division; x / 0 is 0 (numpy), INT64_MIN / -1 wraps. */
static int64_t kl_i_div(int64_t a, int64_t b) {
    if (b == 0) return 0;
    if (b == -1) return kl_wrap(0 - (uint64_t)a);
    return a / b;
}
static int64_t kl_i_fmod(int64_t a, int64_t b) { return b == 0 || b == -1 ? 0 : a % b; }
/* Integer % with the divisor's sign (Mod fmod=0); x % 0 is 0. */
static int64_t kl_i_pymod(int64_t a, int64_t b) {
    if (b == 0 || b == -1) return 0;
    int64_t r = a % b;
    if (r != 0 && (r < 0) != (b < 0)) r += b;
    return r;
}
static int64_t kl_i_max(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t kl_i_min(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t kl_i_eq(int64_t a, int64_t b) { return a == b; }
static int64_t kl_i_gt(int64_t a, int64_t b) { return a > b; }
static int64_t kl_i_ge(int64_t a, int64_t b) { return a >= b; }
static int64_t kl_i_lt(int64_t a, int64_t b) { return a < b; }
static int64_t kl_i_le(int64_t a, int64_t b) { return a <= b; }
static int64_t kl_i_prelu(int64_t a, int64_t b) { return a < 0 ? kl_i_mul(a, b) : a; }
static int64_t kl_i_and(int64_t a, int64_t b) { return a && b; }
static int64_t kl_i_or(int64_t a, int64_t b) { return a || b; }
static int64_t kl_i_xor(int64_t a, int64_t b) { return (a != 0) != (b != 0); }
static int64_t kl_i_band(int64_t a, int64_t b) { return a & b; }
static int64_t kl_i_bor(int64_t a, int64_t b) { return a | b; }
static int64_t kl_i_bxor(int64_t a, int64_t b) { return a ^ b; }

static uint64_t kl_u_add(uint64_t a, uint64_t b) { return a + b; }
static uint64_t kl_u_sub(uint64_t a, uint64_t b) { return a - b; }
static uint64_t kl_u_mul(uint64_t a, uint64_t b) { return a * b; }
static uint64_t kl_u_div(uint64_t a, uint64_t b) { return b ? a / b : 0; }
static uint64_t kl_u_mod(uint64_t a, uint64_t b) { return b ? a % b : 0; }
static uint64_t kl_u_max(uint64_t a, uint64_t b) { return a > b ? a : b; }
static uint64_t kl_u_min(uint64_t a, uint64_t b) { return a < b ? a : b; }
static uint64_t kl_u_eq(uint64_t a, uint64_t b) { return a == b; }
static uint64_t kl_u_gt(uint64_t a, uint64_t b) { return a > b; }
static uint64_t kl_u_ge(uint64_t a, uint64_t b) { return a >= b; }
static uint64_t kl_u_lt(uint64_t a, uint64_t b) { return a < b; }
static uint64_t kl_u_le(uint64_t a, uint64_t b) { return a <= b; }
static uint64_t kl_u_prelu(uint64_t a, uint64_t b) { return (void)b, a; }
static uint64_t kl_u_band(uint64_t a, uint64_t b) { return a & b; }
static uint64_t kl_u_bor(uint64_t a, uint64_t b) { return a | b; }
static uint64_t kl_u_bxor(uint64_t a, uint64_t b) { return a ^ b; }
/* Shifts by the width or more give 0 (the low bits are kept per type). */
static uint64_t kl_u_shl(uint64_t a, uint64_t b) { return b >= 64 ? 0 : a << b; }
static uint64_t kl_u_shr(uint64_t a, uint64_t b) { return b >= 64 ? 0 : a >> b; }

static const kl_binop kl_op_add = {"Add", kl_l_add, kl_f_add, kl_i_add, kl_u_add, false};
static const kl_binop kl_op_sub = {"Sub", kl_l_sub, kl_f_sub, kl_i_sub, kl_u_sub, false};
static const kl_binop kl_op_mul = {"Mul", kl_l_mul, kl_f_mul, kl_i_mul, kl_u_mul, false};
static const kl_binop kl_op_div = {"Div", kl_l_div, kl_f_div, kl_i_div, kl_u_div, false};
static const kl_binop kl_op_fmod = {"Mod", NULL, kl_f_fmod, kl_i_fmod, kl_u_mod, false};
static const kl_binop kl_op_pymod = {"Mod", NULL, kl_f_pymod, kl_i_pymod, kl_u_mod, false};
static const kl_binop kl_op_max = {"Max", NULL, kl_f_max, kl_i_max, kl_u_max, false};
static const kl_binop kl_op_min = {"Min", NULL, kl_f_min, kl_i_min, kl_u_min, false};
static const kl_binop kl_op_eq = {"Equal", kl_l_eq, kl_f_eq, kl_i_eq, kl_u_eq, true};
static const kl_binop kl_op_gt = {"Greater", kl_l_gt, kl_f_gt, kl_i_gt, kl_u_gt, true};
static const kl_binop kl_op_ge = {"GreaterOrEqual", kl_l_ge, kl_f_ge, kl_i_ge, kl_u_ge, true};
static const kl_binop kl_op_lt = {"Less", kl_l_lt, kl_f_lt, kl_i_lt, kl_u_lt, true};
static const kl_binop kl_op_le = {"LessOrEqual", kl_l_le, kl_f_le, kl_i_le, kl_u_le, true};
static const kl_binop kl_op_prelu = {"PRelu", kl_l_prelu, kl_f_prelu, kl_i_prelu, kl_u_prelu, false};
static const kl_binop kl_op_and = {"And", NULL, NULL, kl_i_and, NULL, true};
static const kl_binop kl_op_or = {"Or", NULL, NULL, kl_i_or, NULL, true};
static const kl_binop kl_op_xor = {"Xor", NULL, NULL, kl_i_xor, NULL, true};
static const kl_binop kl_op_band = {"BitwiseAnd", NULL, NULL, kl_i_band, kl_u_band, false};
static const kl_binop kl_op_bor = {"BitwiseOr", NULL, NULL, kl_i_bor, kl_u_bor, false};
static const kl_binop kl_op_bxor = {"BitwiseXor", NULL, NULL, kl_i_bxor, kl_u_bxor, false};
static const kl_binop kl_op_shl = {"BitShift", NULL, NULL, NULL, kl_u_shl, false};
static const kl_binop kl_op_shr = {"BitShift", NULL, NULL, NULL, kl_u_shr, false};

/* ---- the binary kernel ---------------------------------------------------------------- */

typedef struct kl_binctx {
    kl_rt *a, *b, *y;
    const kl_binop *op;
    kl_dom dom;
    bool fast;
} kl_binctx;

/* One broadcast run of a binary operator (kl_ew_run_fn over a kl_binctx). */
static void kl_bin_run(void *p, int64_t o, const int64_t *off, const int64_t *st, int64_t n) {
    kl_binctx *x = p;
    const kl_binop *op = x->op;
    if (x->fast) {
        void *y = op->to_bool ? (void *)((uint8_t *)x->y->data + o) : (void *)((float *)x->y->data + o);
        op->f32((const float *)x->a->data + off[0], (const float *)x->b->data + off[1], y, n, st[0], st[1]);
        return;
    }
    uint8_t *yb = x->y->data;
    for (int64_t j = 0; j < n; j++) {
        int64_t ia = off[0] + j * st[0], ib = off[1] + j * st[1];
        if (x->dom == KL_DOM_F) {
            double r = op->f(kl_rt_get_f64(x->a, ia), kl_rt_get_f64(x->b, ib));
            if (op->to_bool) yb[o + j] = r != 0;
            else kl_ew_set_f64(x->y, o + j, r);
        } else if (x->dom == KL_DOM_I) {
            int64_t r = op->i(kl_rt_get_i64(x->a, ia), kl_rt_get_i64(x->b, ib));
            if (op->to_bool) yb[o + j] = r != 0;
            else kl_rt_set_i64(x->y, o + j, r);
        } else {
            uint64_t r = op->u((uint64_t)kl_rt_get_i64(x->a, ia), (uint64_t)kl_rt_get_i64(x->b, ib));
            if (op->to_bool) yb[o + j] = r != 0;
            else kl_rt_set_i64(x->y, o + j, (int64_t)r);
        }
    }
}

/* Before opset 7, binary operators broadcast only with broadcast=1: B's
 * shape matches A's axes [axis, axis + rank(B)) (a suffix by default).
 * Sets *view to B reshaped to A's rank (a new reference), or NULL. */
static kiln_status kl_legacy_bcast(kl_kctx *c, const kl_rt *a, kl_rt *b, kl_rt **view) {
    *view = NULL;
    if (c->node->opset >= 7) return KILN_OK;
    if (!kl_node_attr_int(c->node, "broadcast", 0)) {
        char sa[128], sb[128];
        if (!kl_ref_same_shape(a, b))
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "inputs %s and %s differ in shape and broadcast=0 (opset < 7)",
                                kl_rt_describe(a, sa, sizeof sa), kl_rt_describe(b, sb, sizeof sb));
        return KILN_OK;
    }
    int64_t axis = kl_node_attr_int(c->node, "axis", a->rank - b->rank);
    if (axis < 0) axis += a->rank;
    if (axis < 0 || axis + b->rank > a->rank)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "legacy broadcast axis %lld does not fit ranks %d and %d",
                            (long long)axis, a->rank, b->rank);
    int64_t dims[KILN_MAX_RANK];
    for (int d = 0; d < a->rank; d++) dims[d] = 1;
    for (int d = 0; d < b->rank; d++) {
        int64_t bd = b->dims[d], ad = a->dims[axis + d];
        if (bd != ad && bd != 1)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "legacy broadcast: dimension %d of B (%lld) does not match A's %lld",
                                d, (long long)bd, (long long)ad);
        dims[axis + d] = bd;
    }
    return kl_rt_tensor_view(b->dtype, a->rank, dims, b->data, b->nbytes, view);
}

/* Run `op` on inputs 0 and 1 (same element type, numpy broadcast; with
 * `unidir` B must broadcast to A's shape, as PRelu's slope). */
static kiln_status kl_binary(kl_kctx *c, const kl_binop *op, bool unidir) {
    kl_rt *a = NULL, *b = NULL, *view = NULL, *y = NULL;
    KL_TRY(kl_ew_input(c, 0, &a));
    KL_TRY(kl_ew_input(c, 1, &b));
    if (a->dtype != b->dtype)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "inputs are %s and %s; %s needs one element type", kiln_dtype_name(a->dtype),
                            kiln_dtype_name(b->dtype), op->name);
    kl_dom dom = kl_dom_of(a->dtype);
    if (a->dtype == KILN_DTYPE_STRING || (dom == KL_DOM_F && !op->f) || (dom == KL_DOM_I && !op->i) ||
        (dom == KL_DOM_U && !op->u) || (op == &kl_op_and || op == &kl_op_or || op == &kl_op_xor ? a->dtype != KILN_DTYPE_BOOL : 0))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "%s does not apply to %s", op->name, kiln_dtype_name(a->dtype));
    if (!unidir) KL_TRY(kl_legacy_bcast(c, a, b, &view));
    if (view) b = view;
    kl_rt *ins[2] = {a, b};
    int rank;
    int64_t dims[KILN_MAX_RANK];
    kiln_status s = kl_ref_broadcast_shape(ins, 2, &rank, dims);
    if (!s && unidir && (rank != a->rank || memcmp(dims, a->dims, (size_t)rank * sizeof *dims) != 0)) {
        char sa[128], sb[128];
        s = kl_kctx_fail(c, KILN_ERR_SHAPE, "input 1 %s does not broadcast to input 0 %s", kl_rt_describe(b, sb, sizeof sb),
                         kl_rt_describe(a, sa, sizeof sa));
    }
    if (!s) s = kl_kctx_output(c, 0, op->to_bool ? KILN_DTYPE_BOOL : a->dtype, rank, dims, &y);
    if (!s) {
        kl_binctx x = {a, b, y, op, dom, a->dtype == KILN_DTYPE_FLOAT && op->f32 != NULL};
        s = kl_ew_walk(ins, 2, y, kl_bin_run, &x);
    }
    kl_rt_unref(view);
    return s;
}

kiln_status kl_ew_add(kl_kctx *c) { return kl_binary(c, &kl_op_add, false); }
kiln_status kl_ew_sub(kl_kctx *c) { return kl_binary(c, &kl_op_sub, false); }
kiln_status kl_ew_mul(kl_kctx *c) { return kl_binary(c, &kl_op_mul, false); }
kiln_status kl_ew_div(kl_kctx *c) { return kl_binary(c, &kl_op_div, false); }
kiln_status kl_ew_greater(kl_kctx *c) { return kl_binary(c, &kl_op_gt, false); }
kiln_status kl_ew_greater_equal(kl_kctx *c) { return kl_binary(c, &kl_op_ge, false); }
kiln_status kl_ew_less(kl_kctx *c) { return kl_binary(c, &kl_op_lt, false); }
kiln_status kl_ew_less_equal(kl_kctx *c) { return kl_binary(c, &kl_op_le, false); }
kiln_status kl_ew_and(kl_kctx *c) { return kl_binary(c, &kl_op_and, false); }
kiln_status kl_ew_or(kl_kctx *c) { return kl_binary(c, &kl_op_or, false); }
kiln_status kl_ew_xor(kl_kctx *c) { return kl_binary(c, &kl_op_xor, false); }
kiln_status kl_ew_bitwise_and(kl_kctx *c) { return kl_binary(c, &kl_op_band, false); }
kiln_status kl_ew_bitwise_or(kl_kctx *c) { return kl_binary(c, &kl_op_bor, false); }
kiln_status kl_ew_bitwise_xor(kl_kctx *c) { return kl_binary(c, &kl_op_bxor, false); }
/* PRelu: slope broadcasts to X (opset 7+).  Before opset 7 a 1-D slope
 * holds one value per channel (axis 1), so it is viewed as [C, 1, ...]. */
kiln_status kl_ew_prelu(kl_kctx *c) {
    if (c->node->opset >= 7 || c->n_in < 2 || !c->in[0] || !c->in[1] || c->in[0]->kind != KL_RT_TENSOR ||
        c->in[1]->kind != KL_RT_TENSOR)
        return kl_binary(c, &kl_op_prelu, true);
    kl_rt *x = c->in[0], *slope = c->in[1], *view = NULL;
    if (slope->rank == 1 && slope->count > 1 && x->rank >= 2 && slope->dims[0] == x->dims[1]) {
        int64_t dims[KILN_MAX_RANK];
        dims[0] = slope->dims[0];
        for (int d = 1; d < x->rank - 1; d++) dims[d] = 1;
        KL_TRY(kl_rt_tensor_view(slope->dtype, x->rank - 1, dims, slope->data, slope->nbytes, &view));
        c->in[1] = view;
    }
    kiln_status s = kl_binary(c, &kl_op_prelu, true);
    c->in[1] = slope;
    kl_rt_unref(view);
    return s;
}

/* Mod: fmod=1 truncates (C fmod, sign of the dividend); fmod=0 takes the
 * divisor's sign (integers; floats are required to use fmod=1). */
kiln_status kl_ew_mod(kl_kctx *c) {
    return kl_binary(c, kl_node_attr_int(c->node, "fmod", 0) ? &kl_op_fmod : &kl_op_pymod, false);
}

/* BitShift: direction LEFT or RIGHT on unsigned integers. */
kiln_status kl_ew_bitshift(kl_kctx *c) {
    const char *dir = kl_node_attr_string(c->node, "direction", "");
    if (!strcmp(dir, "LEFT")) return kl_binary(c, &kl_op_shl, false);
    if (!strcmp(dir, "RIGHT")) return kl_binary(c, &kl_op_shr, false);
    return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute direction '%s' must be LEFT or RIGHT", dir);
}

/* Equal on strings compares bytes. */
static void kl_streq_run(void *p, int64_t o, const int64_t *off, const int64_t *st, int64_t n) {
    kl_binctx *x = p;
    const kl_str *a = x->a->data, *b = x->b->data;
    uint8_t *y = x->y->data;
    for (int64_t j = 0; j < n; j++) {
        const kl_str *s = &a[off[0] + j * st[0]], *t = &b[off[1] + j * st[1]];
        y[o + j] = s->len == t->len && (s->len == 0 || memcmp(s->ptr, t->ptr, s->len) == 0);
    }
}

/* Equal: numeric and bool through kl_binary, strings byte-wise (opset 19). */
kiln_status kl_ew_equal(kl_kctx *c) {
    kl_rt *a = NULL, *b = NULL, *y = NULL;
    KL_TRY(kl_ew_input(c, 0, &a));
    KL_TRY(kl_ew_input(c, 1, &b));
    if (a->dtype != KILN_DTYPE_STRING || b->dtype != KILN_DTYPE_STRING) return kl_binary(c, &kl_op_eq, false);
    kl_rt *ins[2] = {a, b};
    int rank;
    int64_t dims[KILN_MAX_RANK];
    KL_TRY(kl_ref_broadcast_shape(ins, 2, &rank, dims));
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_BOOL, rank, dims, &y));
    kl_binctx x = {a, b, y, &kl_op_eq, KL_DOM_I, false};
    return kl_ew_walk(ins, 2, y, kl_streq_run, &x);
}

/* ---- Pow ------------------------------------------------------------------------------ */

/* Integer power with wrap-around; negative exponents truncate 1/b^n. */
static int64_t kl_ipow(int64_t base, uint64_t e, bool neg) {
    if (neg) return base == 1 ? 1 : base == -1 ? ((e & 1) ? -1 : 1) : 0;
    uint64_t r = 1, b = (uint64_t)base;
    for (; e; e >>= 1, b *= b)
        if (e & 1) r *= b;
    return kl_wrap(r);
}

/* One broadcast run of Pow: float math when either side is a float, else
 * exact integer powers. */
static void kl_pow_run(void *p, int64_t o, const int64_t *off, const int64_t *st, int64_t n) {
    kl_binctx *x = p;
    if (x->fast) {
        kl_l_pow((const float *)x->a->data + off[0], (const float *)x->b->data + off[1], (float *)x->y->data + o, n, st[0],
                 st[1]);
        return;
    }
    for (int64_t j = 0; j < n; j++) {
        kl_num a = kl_ew_get(x->a, off[0] + j * st[0]), b = kl_ew_get(x->b, off[1] + j * st[1]);
        if (a.kind == KL_NUM_F || b.kind == KL_NUM_F) {
            double da = a.kind == KL_NUM_F ? a.f : a.kind == KL_NUM_U ? (double)(uint64_t)a.i : (double)a.i;
            double db = b.kind == KL_NUM_F ? b.f : b.kind == KL_NUM_U ? (double)(uint64_t)b.i : (double)b.i;
            kl_ew_set_f64(x->y, o + j, pow(da, db));
        } else {
            bool neg = b.kind == KL_NUM_I && b.i < 0;
            uint64_t e = neg ? 0 - (uint64_t)b.i : (uint64_t)b.i;
            kl_rt_set_i64(x->y, o + j, kl_ipow(a.i, e, neg));
        }
    }
}

/* Pow: base and exponent may have different numeric types (opset 12+);
 * the result has the base's type. */
kiln_status kl_ew_pow(kl_kctx *c) {
    kl_rt *a = NULL, *b = NULL, *view = NULL, *y = NULL;
    KL_TRY(kl_ew_input(c, 0, &a));
    KL_TRY(kl_ew_input(c, 1, &b));
    if (a->dtype == KILN_DTYPE_STRING || a->dtype == KILN_DTYPE_BOOL || b->dtype == KILN_DTYPE_STRING ||
        b->dtype == KILN_DTYPE_BOOL)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "Pow does not apply to %s and %s", kiln_dtype_name(a->dtype),
                            kiln_dtype_name(b->dtype));
    KL_TRY(kl_legacy_bcast(c, a, b, &view));
    if (view) b = view;
    kl_rt *ins[2] = {a, b};
    int rank;
    int64_t dims[KILN_MAX_RANK];
    kiln_status s = kl_ref_broadcast_shape(ins, 2, &rank, dims);
    if (!s) s = kl_kctx_output(c, 0, a->dtype, rank, dims, &y);
    if (!s) {
        kl_binctx x = {a, b, y, NULL, KL_DOM_F, a->dtype == KILN_DTYPE_FLOAT && b->dtype == KILN_DTYPE_FLOAT};
        s = kl_ew_walk(ins, 2, y, kl_pow_run, &x);
    }
    kl_rt_unref(view);
    return s;
}

/* ---- variadic: Max, Min, Sum, Mean ---------------------------------------------------- */

typedef struct kl_varctx {
    kl_rt *acc, *in;
    const kl_binop *op; /* NULL: copy */
    kl_dom dom;
} kl_varctx;

/* acc[o+j] = op(acc[o+j], in[...]) — acc is double for floats, else the
 * output itself. */
static void kl_var_run(void *p, int64_t o, const int64_t *off, const int64_t *st, int64_t n) {
    kl_varctx *x = p;
    const kl_binop *op = x->op;
    if (x->dom == KL_DOM_F) {
        double *acc = (double *)x->acc->data + o;
        if (x->in->dtype == KILN_DTYPE_FLOAT) {
            const float *in = (const float *)x->in->data + off[1];
            for (int64_t j = 0; j < n; j++) acc[j] = op ? op->f(acc[j], in[j * st[1]]) : in[j * st[1]];
        } else {
            for (int64_t j = 0; j < n; j++) {
                double v = kl_rt_get_f64(x->in, off[1] + j * st[1]);
                acc[j] = op ? op->f(acc[j], v) : v;
            }
        }
        return;
    }
    for (int64_t j = 0; j < n; j++) {
        int64_t v = kl_rt_get_i64(x->in, off[1] + j * st[1]);
        if (op) {
            int64_t a = kl_rt_get_i64(x->acc, o + j);
            v = x->dom == KL_DOM_I ? op->i(a, v) : (int64_t)op->u((uint64_t)a, (uint64_t)v);
        }
        kl_rt_set_i64(x->acc, o + j, v);
    }
}

/* Fold op over all inputs (numpy broadcast of them all); floats accumulate
 * in double and round once; mean divides the sum by the input count. */
static kiln_status kl_variadic(kl_kctx *c, const kl_binop *op, bool mean) {
    size_t n = c->n_in;
    if (n == 0 || n > 4096) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "%s needs 1 to 4096 inputs, has %zu", op->name, n);
    kl_rt *stack[16], **ins = n <= 16 ? stack : kl_calloc(n, sizeof *ins);
    if (!ins) return KILN_ERR_NO_MEMORY;
    kiln_status s = KILN_OK;
    for (size_t k = 0; k < n && !s; k++) {
        s = kl_ew_input(c, k, &ins[k]);
        if (!s && ins[k]->dtype != ins[0]->dtype)
            s = kl_kctx_fail(c, KILN_ERR_TYPE, "input %zu is %s, input 0 is %s", k, kiln_dtype_name(ins[k]->dtype),
                             kiln_dtype_name(ins[0]->dtype));
    }
    kl_dom dom = KL_DOM_F;
    if (!s) {
        dom = kl_dom_of(ins[0]->dtype);
        if (ins[0]->dtype == KILN_DTYPE_STRING || ins[0]->dtype == KILN_DTYPE_BOOL || (dom != KL_DOM_F && (mean || !op->i)))
            s = kl_kctx_fail(c, KILN_ERR_TYPE, "%s does not apply to %s", op->name, kiln_dtype_name(ins[0]->dtype));
    }
    int rank = 0;
    int64_t dims[KILN_MAX_RANK];
    kl_rt *y = NULL, *acc = NULL;
    if (!s) s = kl_ref_broadcast_shape(ins, n, &rank, dims);
    if (!s) s = kl_kctx_output(c, 0, ins[0]->dtype, rank, dims, &y);
    if (!s && dom == KL_DOM_F) s = kl_rt_tensor(KILN_DTYPE_DOUBLE, rank, dims, &acc);
    if (!s) {
        kl_rt *target = acc ? acc : y;
        for (size_t k = 0; k < n && !s; k++) {
            kl_varctx x = {target, ins[k], k ? op : NULL, dom};
            kl_rt *pair[2] = {target, ins[k]};
            s = kl_ew_walk(pair, 2, target, kl_var_run, &x);
        }
        if (!s && acc) {
            double *v = acc->data;
            if (mean)
                for (int64_t i = 0; i < acc->count; i++) v[i] /= (double)n;
            if (y->dtype == KILN_DTYPE_FLOAT)
                for (int64_t i = 0; i < acc->count; i++) ((float *)y->data)[i] = (float)v[i];
            else
                for (int64_t i = 0; i < acc->count; i++) kl_ew_set_f64(y, i, v[i]);
        }
    }
    kl_rt_unref(acc);
    if (ins != stack) kl_free(ins);
    return s;
}

static const kl_binop kl_op_sum = {"Sum", NULL, kl_f_add, NULL, NULL, false};
static const kl_binop kl_op_mean = {"Mean", NULL, kl_f_add, NULL, NULL, false};

kiln_status kl_ew_max(kl_kctx *c) { return kl_variadic(c, &kl_op_max, false); }
kiln_status kl_ew_min(kl_kctx *c) { return kl_variadic(c, &kl_op_min, false); }
kiln_status kl_ew_sum(kl_kctx *c) { return kl_variadic(c, &kl_op_sum, false); }
kiln_status kl_ew_mean(kl_kctx *c) { return kl_variadic(c, &kl_op_mean, true); }

/* ---- Where ------------------------------------------------------------------------------ */

typedef struct kl_wherectx {
    kl_rt *cond, *x, *y, *out;
    kiln_status status;
} kl_wherectx;

/* Copy element si of src into element di of dst (same type, any width). */
static kiln_status kl_copy_elem(kl_rt *dst, int64_t di, const kl_rt *src, int64_t si) {
    size_t bits = kiln_dtype_bits(src->dtype);
    if (src->dtype == KILN_DTYPE_STRING) {
        const kl_str *s = (const kl_str *)src->data + si;
        return kl_rt_set_string(dst, di, s->ptr ? s->ptr : "", s->len);
    }
    if (bits >= 8) {
        size_t w = bits / 8;
        memcpy((uint8_t *)dst->data + (size_t)di * w, (const uint8_t *)src->data + (size_t)si * w, w);
        return KILN_OK;
    }
    /* Sub-byte: move the raw bits. */
    int per = (int)(8 / bits), mask = (1 << bits) - 1;
    const uint8_t *sp = src->data;
    uint8_t *dp = dst->data;
    int v = (sp[si / per] >> (bits * (size_t)(si % per))) & mask;
    int sh = (int)(bits * (size_t)(di % per));
    dp[di / per] = (uint8_t)((dp[di / per] & ~(mask << sh)) | (v << sh));
    return KILN_OK;
}

/* One broadcast run of Where; the first copy error stops the walk. */
static void kl_where_run(void *p, int64_t o, const int64_t *off, const int64_t *st, int64_t n) {
    kl_wherectx *w = p;
    const uint8_t *cond = (const uint8_t *)w->cond->data + off[0];
    if (w->status) return;
    if (w->out->dtype == KILN_DTYPE_FLOAT) {
        const float *x = (const float *)w->x->data + off[1], *y = (const float *)w->y->data + off[2];
        float *out = (float *)w->out->data + o;
        for (int64_t j = 0; j < n; j++) out[j] = cond[j * st[0]] ? x[j * st[1]] : y[j * st[2]];
        return;
    }
    for (int64_t j = 0; j < n && !w->status; j++)
        w->status = cond[j * st[0]] ? kl_copy_elem(w->out, o + j, w->x, off[1] + j * st[1])
                                    : kl_copy_elem(w->out, o + j, w->y, off[2] + j * st[2]);
}

/* Where: X where the condition holds, else Y, any element type (3-way broadcast). */
kiln_status kl_ew_where(kl_kctx *c) {
    kl_rt *cond = NULL, *x = NULL, *y = NULL, *out = NULL;
    KL_TRY(kl_ew_input(c, 0, &cond));
    KL_TRY(kl_ew_input(c, 1, &x));
    KL_TRY(kl_ew_input(c, 2, &y));
    if (cond->dtype != KILN_DTYPE_BOOL)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "condition must be bool, not %s", kiln_dtype_name(cond->dtype));
    if (x->dtype != y->dtype || (kiln_dtype_bits(x->dtype) == 0 && x->dtype != KILN_DTYPE_STRING))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "inputs X and Y are %s and %s; Where needs one element type",
                            kiln_dtype_name(x->dtype), kiln_dtype_name(y->dtype));
    kl_rt *ins[3] = {cond, x, y};
    int rank;
    int64_t dims[KILN_MAX_RANK];
    KL_TRY(kl_ref_broadcast_shape(ins, 3, &rank, dims));
    KL_TRY(kl_kctx_output(c, 0, x->dtype, rank, dims, &out));
    kl_wherectx w = {cond, x, y, out, KILN_OK};
    KL_TRY(kl_ew_walk(ins, 3, out, kl_where_run, &w));
    return w.status;
}

/* ---- Clip ------------------------------------------------------------------------------- */

/* Clip: y = min(max(x, lo), hi), so lo > hi gives hi everywhere; NaN stays
 * NaN.  Bounds are attributes before opset 11, optional scalar inputs after. */
kiln_status kl_ew_clip(kl_kctx *c) {
    kl_rt *x = NULL, *y = NULL;
    KL_TRY(kl_ew_input(c, 0, &x));
    kl_dom dom = kl_dom_of(x->dtype);
    if (x->dtype == KILN_DTYPE_STRING || x->dtype == KILN_DTYPE_BOOL)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "Clip does not apply to %s", kiln_dtype_name(x->dtype));
    kl_num lo = {KL_NUM_F, -INFINITY, INT64_MIN}, hi = {KL_NUM_F, INFINITY, INT64_MAX};
    bool has_lo = false, has_hi = false;
    if (dom == KL_DOM_U) lo.i = 0, hi.i = -1;
    if (c->node->opset < 11) {
        lo.f = kl_node_attr_float(c->node, "min", -FLT_MAX);
        hi.f = kl_node_attr_float(c->node, "max", FLT_MAX);
        has_lo = has_hi = true;
    } else {
        for (size_t k = 1; k <= 2; k++) {
            if (k >= c->n_in || !c->in[k]) continue;
            kl_rt *b;
            KL_TRY(kl_ew_input(c, k, &b));
            if (b->dtype != x->dtype)
                return kl_kctx_fail(c, KILN_ERR_TYPE, "input %zu is %s, input 0 is %s", k, kiln_dtype_name(b->dtype),
                                    kiln_dtype_name(x->dtype));
            if (b->count != 1)
                return kl_kctx_fail(c, KILN_ERR_SHAPE, "input %zu (%s) must be a scalar, has %lld elements", k,
                                    k == 1 ? "min" : "max", (long long)b->count);
            kl_num v = kl_ew_get(b, 0);
            if (k == 1) lo = v, has_lo = true;
            else hi = v, has_hi = true;
        }
    }
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, x->dims, &y));
    int64_t n = x->count;
    if (x->dtype == KILN_DTYPE_FLOAT) {
        const float *in = x->data;
        float *out = y->data, l = has_lo ? (float)lo.f : -INFINITY, h = has_hi ? (float)hi.f : INFINITY;
        for (int64_t i = 0; i < n; i++) {
            float v = in[i];
            if (v < l) v = l;
            if (v > h) v = h;
            out[i] = v;
        }
    } else if (dom == KL_DOM_F) {
        for (int64_t i = 0; i < n; i++) {
            double v = kl_rt_get_f64(x, i);
            if (v < lo.f) v = lo.f;
            if (v > hi.f) v = hi.f;
            kl_ew_set_f64(y, i, v);
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            int64_t v = kl_rt_get_i64(x, i);
            if (dom == KL_DOM_I) {
                if (v < lo.i) v = lo.i;
                if (v > hi.i) v = hi.i;
            } else {
                if ((uint64_t)v < (uint64_t)lo.i) v = lo.i;
                if ((uint64_t)v > (uint64_t)hi.i) v = hi.i;
            }
            kl_rt_set_i64(y, i, v);
        }
    }
    return KILN_OK;
}
