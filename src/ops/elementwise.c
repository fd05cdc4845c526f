/*
 * Schemas and shape inference of the elementwise family: unary math and
 * activations, binary arithmetic and comparisons with broadcasting, logic
 * and bitwise ops, Cast/CastLike/BitCast, Identity, Where, Clip, Dropout.
 * Integer ops also carry symbolic values (shape arithmetic), so that a
 * Reshape fed by Shape -> Gather -> Mul -> Concat keeps "batch".
 */
#include <stdlib.h>
#include <strings.h>

#include "ops/infer_util.h"

/* ---- symbolic value arithmetic ---------------------------------------------------- */

/* One element of known contents while computing: a number (exact, -1
 * included, when read from a constant), a symbol, or unknown.  Results are
 * stored back as kl_symval elements (a computed -1 then reads as unknown). */
typedef struct sv {
    int64_t v;
    const char *sym;
    bool known;
} sv;

/* Combine two elements; false = result unknown. */
typedef bool (*sv_op)(const sv *a, const sv *b, sv *out);

static bool sv_same_sym(const sv *a, const sv *b) {
    return a->sym && b->sym && strcmp(a->sym, b->sym) == 0;
}
static bool sv_num(sv *out, int64_t v) { return *out = (sv){v, NULL, true}, true; }
static bool sv_copy(sv *out, const sv *a) { return *out = *a, true; }

static bool sv_add(const sv *a, const sv *b, sv *out) {
    int64_t r;
    if (a->known && b->known) return !kl_add_i64(a->v, b->v, &r) && sv_num(out, r);
    if (a->known && a->v == 0) return sv_copy(out, b);
    if (b->known && b->v == 0) return sv_copy(out, a);
    return false;
}

static bool sv_sub(const sv *a, const sv *b, sv *out) {
    int64_t r;
    if (a->known && b->known) return !__builtin_sub_overflow(a->v, b->v, &r) && sv_num(out, r);
    if (b->known && b->v == 0) return sv_copy(out, a);
    return sv_same_sym(a, b) && sv_num(out, 0);
}

/* Arena for derived symbol names ("12*batch") during one sv_fold call. */
static _Thread_local kl_arena *sv_arena;

/* Split a derived symbol "k*name" into k and name; plain names give k = 1. */
static int64_t sv_sym_coef(const char *sym, const char **base) {
    char *end;
    long long k = strtoll(sym, &end, 10);
    if (end != sym && *end == '*' && k > 1) {
        *base = end + 1;
        return k;
    }
    *base = sym;
    return 1;
}

static bool sv_mul(const sv *a, const sv *b, sv *out) {
    int64_t r;
    if (a->known && b->known) return !kl_mul_i64(a->v, b->v, &r) && sv_num(out, r);
    if ((a->known && a->v == 0) || (b->known && b->v == 0)) return sv_num(out, 0);
    if (a->known && a->v == 1) return sv_copy(out, b);
    if (b->known && b->v == 1) return sv_copy(out, a);
    /* A size symbol times a positive constant: a derived symbol "k*name",
     * so heads*batch survives the Reshape of multi-head attention. */
    const sv *sym = a->sym ? a : b, *num = a->sym ? b : a;
    if (sym->sym && num->known && num->v > 1 && sv_arena) {
        const char *base;
        int64_t k = sv_sym_coef(sym->sym, &base), kk;
        if (kl_mul_i64(k, num->v, &kk)) return false;
        const char *name = kl_arena_printf(sv_arena, "%lld*%s", (long long)kk, base);
        if (!name) {
            kl_error_clear();
            return false;
        }
        *out = (sv){-1, name, false};
        return true;
    }
    return false;
}

/* Integer division of non-negative numbers (sizes); others stay unknown. */
static bool sv_div(const sv *a, const sv *b, sv *out) {
    if (a->known && b->known && a->v >= 0 && b->v > 0) return sv_num(out, a->v / b->v);
    if (b->known && b->v == 1) return sv_copy(out, a);
    if (a->sym && b->known && b->v > 1) { /* "12*batch" / 12 = batch */
        const char *base;
        int64_t k = sv_sym_coef(a->sym, &base);
        if (k == b->v) {
            *out = (sv){-1, base, false};
            return true;
        }
        return false;
    }
    return sv_same_sym(a, b) && sv_num(out, 1);
}

static bool sv_max(const sv *a, const sv *b, sv *out) {
    if (a->known && b->known) return sv_num(out, KL_MAX(a->v, b->v));
    return sv_same_sym(a, b) && sv_copy(out, a);
}

static bool sv_min(const sv *a, const sv *b, sv *out) {
    if (a->known && b->known) return sv_num(out, KL_MIN(a->v, b->v));
    return sv_same_sym(a, b) && sv_copy(out, a);
}

static bool sv_equal(const sv *a, const sv *b, sv *out) {
    if (a->known && b->known) return sv_num(out, a->v == b->v);
    /* A symbolic element is a dimension, never negative: it differs from
     * a negative constant (PyTorch's expand(-1) idiom compares with -1). */
    if ((a->sym && b->known && b->v < 0) || (b->sym && a->known && a->v < 0)) return sv_num(out, 0);
    return sv_same_sym(a, b) && sv_num(out, 1);
}

/* Known contents of input i into out[KL_SYMVAL_MAX]: exact numbers from an
 * integer or bool constant, else its symval.  Returns the count, or -1. */
static int64_t sv_load(kl_infer_ctx *c, size_t i, sv *out, int *rank) {
    const kl_tensor *t = kl_infer_input_const(c, i);
    int64_t vals[KL_SYMVAL_MAX], n;
    if (t && t->rank <= 1 && t->count <= KL_SYMVAL_MAX) {
        if (t->dtype == KILN_DTYPE_BOOL && t->nbytes >= (size_t)t->count) {
            for (int64_t k = 0; k < t->count; k++)
                out[k] = (sv){((const unsigned char *)t->data)[k] != 0, NULL, true};
            *rank = t->rank;
            return t->count;
        }
        if (kl_infer_input_ints(c, i, vals, KL_SYMVAL_MAX, &n)) {
            for (int64_t k = 0; k < n; k++) out[k] = (sv){vals[k], NULL, true};
            *rank = t->rank;
            return n;
        }
    }
    const kl_symval *s = kl_infer_input_sym(c, i);
    if (!s || s->count > KL_SYMVAL_MAX || s->rank > 1) return -1;
    for (int64_t k = 0; k < s->count; k++)
        out[k] = (sv){s->v[k].value, s->v[k].param, kl_symdim_known(&s->v[k])};
    *rank = s->rank;
    return s->count;
}

/* Store n elements as output 0's symval. */
static kiln_status sv_store(kl_infer_ctx *c, int rank, int64_t n, const sv *vals) {
    kl_symval out;
    KL_TRY(kl_infer_symval_new(c, rank, n, &out));
    for (int64_t k = 0; k < n; k++) {
        if (vals[k].known) out.v[k] = kl_dim_known(vals[k].v);
        else if (vals[k].sym) out.v[k] = (kl_dim){-1, vals[k].sym};
    }
    return kl_infer_set_output_sym(c, 0, &out);
}

/* Element count of a broadcast of counts a and b, or -1. */
static int64_t sv_bcast_count(int64_t a, int64_t b) {
    if (a == b || b == 1) return a;
    return a == 1 ? b : -1;
}

/* True when known contents are worth tracking for output 0 (integer or
 * bool results of integer/bool inputs). */
static bool sv_wanted(kl_infer_ctx *c) {
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    return kl_dtype_is_integer(dt) || dt == KILN_DTYPE_BOOL;
}

/* Fold `op` over the known contents of all inputs into output 0's. */
static kiln_status sv_fold(kl_infer_ctx *c, sv_op op) {
    size_t n = kl_infer_n_inputs(c);
    if (n == 0 || !sv_wanted(c)) return KILN_OK;
    sv acc[KL_SYMVAL_MAX], cur[KL_SYMVAL_MAX];
    int rank = 0, r;
    int64_t count = sv_load(c, 0, acc, &rank);
    if (count < 0) return KILN_OK;
    sv_arena = c->arena;
    for (size_t i = 1; i < n; i++) {
        int64_t m, cn = sv_load(c, i, cur, &r);
        if (cn < 0 || (m = sv_bcast_count(count, cn)) < 0) return KILN_OK;
        for (int64_t k = m - 1; k >= 0; k--) { /* backwards: acc[0] may be broadcast */
            sv res = {-1, NULL, false};
            if (!op(&acc[count == 1 ? 0 : k], &cur[cn == 1 ? 0 : k], &res))
                res = (sv){-1, NULL, false};
            acc[k] = res;
        }
        count = m;
        rank = KL_MAX(rank, r);
    }
    return sv_store(c, rank, count, acc);
}

/* Neg, Abs: element by element on known numbers (Abs keeps symbols). */
static kiln_status sv_unary(kl_infer_ctx *c, bool neg) {
    sv vals[KL_SYMVAL_MAX];
    int rank;
    int64_t n = sv_wanted(c) ? sv_load(c, 0, vals, &rank) : -1;
    if (n < 0) return KILN_OK;
    for (int64_t k = 0; k < n; k++) {
        sv *e = &vals[k];
        if (e->known && e->v != INT64_MIN) e->v = neg || e->v < 0 ? -e->v : e->v;
        else if (neg || !e->sym) *e = (sv){-1, NULL, false};
    }
    return sv_store(c, rank, n, vals);
}

/* Neg/Abs: like the input; known contents negated / made absolute. */
static kiln_status infer_neg(kl_infer_ctx *c) {
    KL_TRY(kl_infer_unary(c));
    return sv_unary(c, true);
}

static kiln_status infer_abs(kl_infer_ctx *c) {
    KL_TRY(kl_infer_unary(c));
    return sv_unary(c, false);
}

/* ---- infer functions ------------------------------------------------------------------- */

/* The common element type of inputs [first, first+n) (UNDEFINED if none is
 * known); two different known types is an error. */
static kiln_status same_dtype(kl_infer_ctx *c, size_t first, size_t n, kiln_dtype *out) {
    kiln_dtype dt = KILN_DTYPE_UNDEFINED;
    size_t from = 0;
    for (size_t i = first; i < first + n && i < kl_infer_n_inputs(c); i++) {
        kiln_dtype d = kl_infer_input_dtype(c, i);
        if (d == KILN_DTYPE_UNDEFINED) continue;
        if (dt != KILN_DTYPE_UNDEFINED && d != dt)
            return kl_infer_fail(c, KILN_ERR_TYPE, "input %zu is %s but input %zu is %s", from,
                                 kiln_dtype_name(dt), i, kiln_dtype_name(d));
        if (dt == KILN_DTYPE_UNDEFINED) dt = d, from = i;
    }
    *out = dt;
    return KILN_OK;
}

/* Broadcast all inputs; element type: the inputs' common one, or bool. */
static kiln_status bcast_as(kl_infer_ctx *c, bool to_bool) {
    kl_shape s;
    kiln_dtype dt;
    KL_TRY(same_dtype(c, 0, kl_infer_n_inputs(c), &dt));
    KL_TRY(kl_infer_broadcast_inputs(c, 0, kl_infer_n_inputs(c), &s));
    return kl_infer_set_output(c, 0, to_bool ? KILN_DTYPE_BOOL : dt, &s);
}

/* Broadcasting ops without known contents (Mod, Bitwise*, Mean...) and
 * comparisons (bool output). */
static kiln_status infer_bcast(kl_infer_ctx *c) { return bcast_as(c, false); }
static kiln_status infer_compare(kl_infer_ctx *c) { return bcast_as(c, true); }

/* Broadcasting arithmetic that also computes known contents with `op`. */
#define KL_BCAST_SYM(fn, op)                 \
    static kiln_status fn(kl_infer_ctx *c) { \
        KL_TRY(bcast_as(c, false));          \
        return sv_fold(c, op);               \
    }
KL_BCAST_SYM(infer_add, sv_add)
KL_BCAST_SYM(infer_sub, sv_sub)
KL_BCAST_SYM(infer_mul, sv_mul)
KL_BCAST_SYM(infer_div, sv_div)
KL_BCAST_SYM(infer_max, sv_max)
KL_BCAST_SYM(infer_min, sv_min)

/* Equal: bool output; known contents compared (1/0). */
static kiln_status infer_equal(kl_infer_ctx *c) {
    KL_TRY(bcast_as(c, true));
    return sv_fold(c, sv_equal);
}

/* Broadcast, output typed like input 0 (Pow's exponent may differ). */
static kiln_status infer_bcast_first(kl_infer_ctx *c) {
    kl_shape s;
    KL_TRY(kl_infer_broadcast_inputs(c, 0, kl_infer_n_inputs(c), &s));
    return kl_infer_set_output(c, 0, kl_infer_input_dtype(c, 0), &s);
}

/* Output 0 = input 0's shape as bool (IsNaN, Not; opset < 7 comparisons,
 * where B broadcasts onto A so the output is A's shape). */
static kiln_status infer_bool(kl_infer_ctx *c) { return kl_infer_unary_as(c, KILN_DTYPE_BOOL); }

/* PRelu (opset 7+): slope broadcasts onto X (unidirectional). */
static kiln_status infer_prelu(kl_infer_ctx *c) {
    const kl_shape *x = kl_infer_input_shape(c, 0), *slope = kl_infer_input_shape(c, 1);
    kiln_dtype dt;
    KL_TRY(same_dtype(c, 0, 2, &dt));
    if (x && slope) {
        kl_shape b;
        char sx[256], ss[256];
        KL_TRY(kl_infer_broadcast(c, x, slope, &b));
        bool grows = b.rank != x->rank;
        for (int k = 0; !grows && k < b.rank; k++)
            grows = x->dims[k].value >= 0 && b.dims[k].value != x->dims[k].value;
        if (grows)
            return kl_infer_fail(c, KILN_ERR_SHAPE, "slope %s does not broadcast to X %s",
                                 kl_shape_format(slope, ss, sizeof ss),
                                 kl_shape_format(x, sx, sizeof sx));
    }
    return kl_infer_set_output(c, 0, dt, x);
}

/* Where: bool condition, X and Y of one type, all three broadcast. */
static kiln_status infer_where(kl_infer_ctx *c) {
    kl_shape s;
    kiln_dtype dt;
    kiln_dtype cond = kl_infer_input_dtype(c, 0);
    if (cond != KILN_DTYPE_UNDEFINED && cond != KILN_DTYPE_BOOL)
        return kl_infer_fail(c, KILN_ERR_TYPE, "condition is %s, expected bool",
                             kiln_dtype_name(cond));
    KL_TRY(same_dtype(c, 1, 2, &dt));
    KL_TRY(kl_infer_broadcast_inputs(c, 0, 3, &s));
    KL_TRY(kl_infer_set_output(c, 0, dt, &s));
    /* Known contents: pick X or Y element by element where the condition is known. */
    sv vc[KL_SYMVAL_MAX], vx[KL_SYMVAL_MAX], vy[KL_SYMVAL_MAX];
    int rc, rx, ry;
    int64_t nc = sv_load(c, 0, vc, &rc), nx = sv_load(c, 1, vx, &rx), ny = sv_load(c, 2, vy, &ry);
    if (nc < 0 || nx < 0 || ny < 0 || !kl_dtype_is_integer(dt)) return KILN_OK;
    int64_t n = sv_bcast_count(sv_bcast_count(nc, nx), ny);
    if (n < 0 || sv_bcast_count(n, nc) != n) return KILN_OK;
    sv out[KL_SYMVAL_MAX];
    for (int64_t k = 0; k < n; k++) {
        const sv *e = &vc[nc == 1 ? 0 : k];
        if (!e->known) out[k] = (sv){-1, NULL, false};
        else out[k] = e->v ? vx[nx == 1 ? 0 : k] : vy[ny == 1 ? 0 : k];
    }
    return sv_store(c, KL_MAX(rc, KL_MAX(rx, ry)), n, out);
}

/* Identity: any type (sequences, optionals too) and known contents. */
static kiln_status infer_identity(kl_infer_ctx *c) {
    KL_TRY(kl_infer_copy_type(c, 0, 0));
    return kl_infer_set_output_sym(c, 0, kl_infer_input_sym(c, 0));
}

/* Cast to `to`; integer contents carry over to integer targets. */
static kiln_status cast_to(kl_infer_ctx *c, kiln_dtype to) {
    KL_TRY(kl_infer_unary_as(c, to));
    kiln_dtype from = kl_infer_input_dtype(c, 0);
    if ((kl_dtype_is_integer(from) || from == KILN_DTYPE_BOOL) && kl_dtype_is_integer(to) &&
        kiln_dtype_bits(to) >= 32)
        return kl_infer_set_output_sym(c, 0, kl_infer_input_sym(c, 0));
    return KILN_OK;
}

/* Cast-1: `to` is the name of a TensorProto.DataType ("FLOAT"). */
static kiln_status infer_cast_v1(kl_infer_ctx *c) {
    const char *to = kl_node_attr_string(c->node, "to", NULL);
    if (!to) return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'to' is missing");
    for (int d = 1; d < KILN_DTYPE_COUNT; d++)
        if (strcasecmp(to, kiln_dtype_name((kiln_dtype)d)) == 0) return cast_to(c, (kiln_dtype)d);
    return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'to' = '%s' is not an element type",
                         to);
}

/* Cast-6+: `to` is a TensorProto.DataType number. */
static kiln_status infer_cast(kl_infer_ctx *c) {
    int64_t to = kl_node_attr_int(c->node, "to", 0);
    kiln_dtype dt = kl_infer_dtype_from_attr(to);
    if (dt == KILN_DTYPE_UNDEFINED)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "attribute 'to' = %lld is not a valid element type", (long long)to);
    return cast_to(c, dt);
}

/* CastLike: input 0's shape in input 1's element type. */
static kiln_status infer_castlike(kl_infer_ctx *c) {
    return cast_to(c, kl_infer_input_dtype(c, 1));
}

/* BitCast: same shape, a `to` type of the same bit width. */
static kiln_status infer_bitcast(kl_infer_ctx *c) {
    int64_t to = kl_node_attr_int(c->node, "to", 0);
    kiln_dtype dt = kl_infer_dtype_from_attr(to), from = kl_infer_input_dtype(c, 0);
    if (dt == KILN_DTYPE_UNDEFINED || dt == KILN_DTYPE_STRING)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "attribute 'to' = %lld is not a valid non-string element type",
                             (long long)to);
    if (from == KILN_DTYPE_STRING)
        return kl_infer_fail(c, KILN_ERR_TYPE, "cannot bitcast a string tensor");
    if (from != KILN_DTYPE_UNDEFINED && kiln_dtype_bits(from) != kiln_dtype_bits(dt))
        return kl_infer_fail(c, KILN_ERR_TYPE, "cannot bitcast %s (%zu bits) to %s (%zu bits)",
                             kiln_dtype_name(from), kiln_dtype_bits(from), kiln_dtype_name(dt),
                             kiln_dtype_bits(dt));
    return kl_infer_unary_as(c, dt);
}

/* Dropout: output 0 like the data; optional mask of the data's shape, bool
 * from opset 10 (typed like the data before). */
static kiln_status infer_dropout(kl_infer_ctx *c, kiln_dtype mask) {
    KL_TRY(kl_infer_unary(c));
    return kl_infer_set_output(c, 1, mask, kl_infer_input_shape(c, 0));
}
/* Dropout 1-9 (mask typed like the data) and 10+ (bool mask). */
static kiln_status infer_dropout_old(kl_infer_ctx *c) {
    return infer_dropout(c, kl_infer_input_dtype(c, 0));
}
static kiln_status infer_dropout_bool(kl_infer_ctx *c) {
    return infer_dropout(c, KILN_DTYPE_BOOL);
}

/* SwiGLU: A and B have identical shapes (no broadcasting). */
static kiln_status infer_swiglu(kl_infer_ctx *c) {
    kl_shape s;
    kiln_dtype dt;
    KL_TRY(same_dtype(c, 0, 2, &dt));
    KL_TRY(kl_infer_shape_merge(c, kl_infer_input_shape(c, 0), kl_infer_input_shape(c, 1),
                                "inputs 'A' and 'B'", &s));
    return kl_infer_set_output(c, 0, dt, &s);
}

/* ---- attribute lists ------------------------------------------------------------------ */

#define A_I KL_ATTR_INT
#define A_F KL_ATTR_FLOAT
#define A_S KL_ATTR_STRING
#define A_IS KL_ATTR_INTS

static const kl_attr_spec a_none[] = {{0}};
static const kl_attr_spec a_consumed[] = {{"consumed_inputs", A_IS, false}, {0}};
static const kl_attr_spec a_legacy[] = {{"axis", A_I, false}, {"broadcast", A_I, false}, {0}};
static const kl_attr_spec a_legacy_consumed[] = {
    {"axis", A_I, false}, {"broadcast", A_I, false}, {"consumed_inputs", A_IS, false}, {0}};
static const kl_attr_spec a_alpha[] = {{"alpha", A_F, false}, {0}};
static const kl_attr_spec a_alpha_consumed[] = {
    {"alpha", A_F, false}, {"consumed_inputs", A_IS, false}, {0}};
static const kl_attr_spec a_alpha_beta[] = {{"alpha", A_F, false}, {"beta", A_F, false}, {0}};
static const kl_attr_spec a_alpha_beta_consumed[] = {
    {"alpha", A_F, false}, {"beta", A_F, false}, {"consumed_inputs", A_IS, false}, {0}};
static const kl_attr_spec a_selu[] = {{"alpha", A_F, false}, {"gamma", A_F, false}, {0}};
static const kl_attr_spec a_selu_consumed[] = {
    {"alpha", A_F, false}, {"consumed_inputs", A_IS, false}, {"gamma", A_F, false}, {0}};
static const kl_attr_spec a_shrink[] = {{"bias", A_F, false}, {"lambd", A_F, false}, {0}};
static const kl_attr_spec a_isinf[] = {
    {"detect_negative", A_I, false}, {"detect_positive", A_I, false}, {0}};
static const kl_attr_spec a_gelu[] = {{"approximate", A_S, false}, {0}};
static const kl_attr_spec a_bitshift[] = {{"direction", A_S, true}, {0}};
static const kl_attr_spec a_fmod[] = {{"fmod", A_I, false}, {0}};
static const kl_attr_spec a_clip_v1[] = {
    {"consumed_inputs", A_IS, false}, {"max", A_F, false}, {"min", A_F, false}, {0}};
static const kl_attr_spec a_clip_v6[] = {{"max", A_F, false}, {"min", A_F, false}, {0}};
static const kl_attr_spec a_cast_v1[] = {{"to", A_S, true}, {0}};
static const kl_attr_spec a_cast_v6[] = {{"to", A_I, true}, {0}};
static const kl_attr_spec a_cast_v19[] = {{"saturate", A_I, false}, {"to", A_I, true}, {0}};
static const kl_attr_spec a_cast_v25[] = {
    {"round_mode", A_S, false}, {"saturate", A_I, false}, {"to", A_I, true}, {0}};
static const kl_attr_spec a_castlike_v19[] = {{"saturate", A_I, false}, {0}};
static const kl_attr_spec a_castlike_v25[] = {
    {"round_mode", A_S, false}, {"saturate", A_I, false}, {0}};
static const kl_attr_spec a_dropout_v1[] = {
    {"consumed_inputs", A_IS, false}, {"is_test", A_I, false}, {"ratio", A_F, false}, {0}};
static const kl_attr_spec a_dropout_v6[] = {{"is_test", A_I, false}, {"ratio", A_F, false}, {0}};
static const kl_attr_spec a_ratio[] = {{"ratio", A_F, false}, {0}};
static const kl_attr_spec a_seed[] = {{"seed", A_I, false}, {0}};

/* ---- the table ------------------------------------------------------------------------- */

/* Row helpers: op, opset range, inputs, outputs, attributes, inference. */
#define ROW(op, since, until, imin, imax, omin, omax, attrs, fn) \
    {"", op, since, until, imin, imax, omin, omax, attrs, fn}
/* Unary op (1 in, 1 out), typed like its input. */
#define UN(op, since, until, attrs) ROW(op, since, until, 1, 1, 1, 1, attrs, kl_infer_unary)
/* Unary op whose opset 1 row had consumed_inputs, then none from 6. */
#define UN_V1V6(op) UN(op, 1, 5, a_consumed), UN(op, 6, 0, a_none)
/* Binary op (2 in, 1 out). */
#define BIN(op, since, until, attrs, fn) ROW(op, since, until, 2, 2, 1, 1, attrs, fn)
/* Add/Sub/Mul/Div: legacy broadcast attributes up to opset 6. */
#define ARITH(op, fn)                                                        \
    BIN(op, 1, 5, a_legacy_consumed, kl_infer_unary), BIN(op, 6, 6, a_legacy, kl_infer_unary), \
        BIN(op, 7, 0, a_none, fn)
/* Comparisons and logic: legacy broadcast up to opset 6, bool output. */
#define CMP(op, fn) BIN(op, 1, 6, a_legacy, infer_bool), BIN(op, 7, 0, a_none, fn)
/* Variadic Max/Min/Sum/Mean. */
#define VAR(op, since, until, attrs, fn) ROW(op, since, until, 1, -1, 1, 1, attrs, fn)
#define VARIADIC(op, fn)                                                       \
    VAR(op, 1, 5, a_consumed, fn), VAR(op, 6, 7, a_none, fn), VAR(op, 8, 0, a_none, fn)

const kl_op_schema kl_ops_elementwise[] = {
    /* unary math */
    UN("Abs", 1, 5, a_consumed), ROW("Abs", 6, 0, 1, 1, 1, 1, a_none, infer_abs),
    UN("Neg", 1, 5, a_consumed), ROW("Neg", 6, 0, 1, 1, 1, 1, a_none, infer_neg),
    UN_V1V6("Ceil"), UN_V1V6("Exp"), UN_V1V6("Floor"), UN_V1V6("Log"), UN_V1V6("Reciprocal"),
    UN_V1V6("Relu"), UN_V1V6("Sigmoid"), UN_V1V6("Sqrt"), UN_V1V6("Tanh"),
    UN("Acos", 7, 0, a_none), UN("Asin", 7, 0, a_none), UN("Atan", 7, 0, a_none),
    UN("Cos", 7, 0, a_none), UN("Sin", 7, 0, a_none), UN("Tan", 7, 0, a_none),
    UN("Acosh", 9, 0, a_none), UN("Asinh", 9, 0, a_none), UN("Atanh", 9, 0, a_none),
    UN("Cosh", 9, 0, a_none), UN("Sinh", 9, 0, a_none),
    UN("Erf", 9, 0, a_none), UN("Sign", 9, 0, a_none), UN("Round", 11, 0, a_none),
    UN("Softplus", 1, 0, a_none), UN("Softsign", 1, 0, a_none),
    UN("BitwiseNot", 18, 0, a_none),
    ROW("IsNaN", 9, 0, 1, 1, 1, 1, a_none, infer_bool),
    ROW("IsInf", 10, 0, 1, 1, 1, 1, a_isinf, infer_bool),
    ROW("Not", 1, 0, 1, 1, 1, 1, a_none, infer_bool),
    /* activations */
    UN("Elu", 1, 5, a_alpha_consumed), UN("Elu", 6, 0, a_alpha),
    UN("LeakyRelu", 1, 5, a_alpha_consumed), UN("LeakyRelu", 6, 0, a_alpha),
    UN("HardSigmoid", 1, 5, a_alpha_beta_consumed), UN("HardSigmoid", 6, 0, a_alpha_beta),
    UN("Selu", 1, 5, a_selu_consumed), UN("Selu", 6, 0, a_selu),
    UN("Celu", 12, 0, a_alpha), UN("ThresholdedRelu", 10, 0, a_alpha),
    UN("Shrink", 9, 0, a_shrink), UN("HardSwish", 14, 0, a_none), UN("Mish", 18, 0, a_none),
    UN("Gelu", 20, 0, a_gelu), UN("Swish", 24, 0, a_alpha),
    ROW("SwiGLU", 28, 0, 2, 2, 1, 1, a_alpha, infer_swiglu),
    ROW("PRelu", 1, 5, 2, 2, 1, 1, a_consumed, kl_infer_unary),
    ROW("PRelu", 6, 6, 2, 2, 1, 1, a_none, kl_infer_unary),
    ROW("PRelu", 7, 0, 2, 2, 1, 1, a_none, infer_prelu),
    ROW("Clip", 1, 5, 1, 1, 1, 1, a_clip_v1, kl_infer_unary),
    ROW("Clip", 6, 10, 1, 1, 1, 1, a_clip_v6, kl_infer_unary),
    ROW("Clip", 11, 0, 1, 3, 1, 1, a_none, kl_infer_unary),
    /* binary arithmetic */
    ARITH("Add", infer_add), ARITH("Sub", infer_sub), ARITH("Mul", infer_mul),
    ARITH("Div", infer_div),
    BIN("Pow", 1, 6, a_legacy, kl_infer_unary), BIN("Pow", 7, 0, a_none, infer_bcast_first),
    BIN("Mod", 10, 0, a_fmod, infer_bcast),
    BIN("BitShift", 11, 0, a_bitshift, infer_bcast),
    BIN("BitwiseAnd", 18, 0, a_none, infer_bcast), BIN("BitwiseOr", 18, 0, a_none, infer_bcast),
    BIN("BitwiseXor", 18, 0, a_none, infer_bcast),
    VARIADIC("Max", infer_max), VARIADIC("Min", infer_min), VARIADIC("Sum", infer_add),
    VARIADIC("Mean", infer_bcast),
    /* comparisons and logic */
    CMP("Equal", infer_equal), CMP("Greater", infer_compare), CMP("Less", infer_compare),
    CMP("And", infer_compare), CMP("Or", infer_compare), CMP("Xor", infer_compare),
    BIN("GreaterOrEqual", 12, 0, a_none, infer_compare),
    BIN("LessOrEqual", 12, 0, a_none, infer_compare),
    ROW("Where", 9, 0, 3, 3, 1, 1, a_none, infer_where),
    /* types */
    ROW("Cast", 1, 5, 1, 1, 1, 1, a_cast_v1, infer_cast_v1),
    ROW("Cast", 6, 18, 1, 1, 1, 1, a_cast_v6, infer_cast),
    ROW("Cast", 19, 24, 1, 1, 1, 1, a_cast_v19, infer_cast),
    ROW("Cast", 25, 0, 1, 1, 1, 1, a_cast_v25, infer_cast),
    BIN("CastLike", 15, 18, a_none, infer_castlike),
    BIN("CastLike", 19, 24, a_castlike_v19, infer_castlike),
    BIN("CastLike", 25, 0, a_castlike_v25, infer_castlike),
    ROW("BitCast", 26, 0, 1, 1, 1, 1, a_cast_v6, infer_bitcast),
    ROW("Identity", 1, 0, 1, 1, 1, 1, a_none, infer_identity),
    /* Dropout: optional mask output */
    ROW("Dropout", 1, 5, 1, 1, 1, 2, a_dropout_v1, infer_dropout_old),
    ROW("Dropout", 6, 6, 1, 1, 1, 2, a_dropout_v6, infer_dropout_old),
    ROW("Dropout", 7, 9, 1, 1, 1, 2, a_ratio, infer_dropout_old),
    ROW("Dropout", 10, 11, 1, 1, 1, 2, a_ratio, infer_dropout_bool),
    ROW("Dropout", 12, 0, 1, 3, 1, 2, a_seed, infer_dropout_bool),
    {0},
};
