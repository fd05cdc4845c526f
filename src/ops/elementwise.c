/*
 * Schemas and shape inference of the elementwise family: unary math and
 * activations, binary arithmetic and comparisons with broadcasting, logic
 * and bitwise ops, Cast/CastLike/BitCast, Identity, Where, Clip, Dropout.
 * Integer ops also carry symbolic values (shape arithmetic), so that a
 * Reshape fed by Shape -> Gather -> Mul -> Concat keeps "batch".
 */
#include <strings.h>

#include "ops/infer_util.h"

/* ---- symbolic value arithmetic ---------------------------------------------------- */

/* Combine two symval elements; false = result unknown. */
typedef bool (*sym_op)(const kl_dim *a, const kl_dim *b, kl_dim *out);

static bool sym_add(const kl_dim *a, const kl_dim *b, kl_dim *out) {
    bool ka = kl_symdim_known(a), kb = kl_symdim_known(b);
    if (ka && kb) return !kl_add_i64(a->value, b->value, &out->value);
    if (ka && a->value == 0) return *out = *b, true;
    if (kb && b->value == 0) return *out = *a, true;
    return false;
}

static bool sym_sub(const kl_dim *a, const kl_dim *b, kl_dim *out) {
    bool ka = kl_symdim_known(a), kb = kl_symdim_known(b);
    if (ka && kb) return !__builtin_sub_overflow(a->value, b->value, &out->value);
    if (kb && b->value == 0) return *out = *a, true;
    if (a->param && b->param && strcmp(a->param, b->param) == 0) return out->value = 0, true;
    return false;
}

static bool sym_mul(const kl_dim *a, const kl_dim *b, kl_dim *out) {
    bool ka = kl_symdim_known(a), kb = kl_symdim_known(b);
    if (ka && kb) return !kl_mul_i64(a->value, b->value, &out->value);
    if ((ka && a->value == 0) || (kb && b->value == 0)) return out->value = 0, true;
    if (ka && a->value == 1) return *out = *b, true;
    if (kb && b->value == 1) return *out = *a, true;
    return false;
}

static bool sym_div(const kl_dim *a, const kl_dim *b, kl_dim *out) {
    bool ka = kl_symdim_known(a), kb = kl_symdim_known(b);
    if (ka && kb && a->value >= 0 && b->value > 0) return out->value = a->value / b->value, true;
    if (kb && b->value == 1) return *out = *a, true;
    if (a->param && b->param && strcmp(a->param, b->param) == 0) return out->value = 1, true;
    return false;
}

static bool sym_max(const kl_dim *a, const kl_dim *b, kl_dim *out) {
    if (kl_symdim_known(a) && kl_symdim_known(b))
        return out->value = KL_MAX(a->value, b->value), true;
    if (a->param && b->param && strcmp(a->param, b->param) == 0) return *out = *a, true;
    return false;
}

static bool sym_min(const kl_dim *a, const kl_dim *b, kl_dim *out) {
    if (kl_symdim_known(a) && kl_symdim_known(b))
        return out->value = KL_MIN(a->value, b->value), true;
    if (a->param && b->param && strcmp(a->param, b->param) == 0) return *out = *a, true;
    return false;
}

static bool sym_equal(const kl_dim *a, const kl_dim *b, kl_dim *out) {
    if (kl_symdim_known(a) && kl_symdim_known(b)) return out->value = a->value == b->value, true;
    if (a->param && b->param && strcmp(a->param, b->param) == 0) return out->value = 1, true;
    return false;
}

/* Element count of a broadcast of symvals of counts a and b, or -1. */
static int64_t sym_bcast_count(int64_t a, int64_t b) {
    if (a == b || b == 1) return a;
    return a == 1 ? b : -1;
}

/* Fold `op` over the symvals of all inputs into output 0's symval, when every
 * input has one and the output is an integer (or bool) tensor. */
static kiln_status sym_fold(kl_infer_ctx *c, sym_op op) {
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    size_t n = kl_infer_n_inputs(c);
    if (n == 0 || (!kl_dtype_is_integer(dt) && dt != KILN_DTYPE_BOOL)) return KILN_OK;
    kl_dim acc[KL_SYMVAL_MAX];
    int rank = 0;
    int64_t count = 1;
    for (size_t i = 0; i < n; i++) {
        const kl_symval *s = kl_infer_input_sym(c, i);
        if (!s || s->count > KL_SYMVAL_MAX) return KILN_OK;
        if (i == 0) {
            rank = s->rank;
            count = s->count;
            if (count) memcpy(acc, s->v, (size_t)count * sizeof *acc);
            continue;
        }
        int64_t m = sym_bcast_count(count, s->count);
        if (m < 0) return KILN_OK;
        kl_dim next[KL_SYMVAL_MAX];
        for (int64_t k = 0; k < m; k++) {
            const kl_dim *a = &acc[count == 1 ? 0 : k], *b = &s->v[s->count == 1 ? 0 : k];
            next[k] = kl_dim_unknown();
            if (!op(a, b, &next[k])) next[k] = kl_dim_unknown();
        }
        if (m) memcpy(acc, next, (size_t)m * sizeof *acc);
        count = m;
        rank = KL_MAX(rank, s->rank);
    }
    kl_symval out = {rank, count, acc};
    return kl_infer_set_output_sym(c, 0, &out);
}

/* ---- infer functions ------------------------------------------------------------------- */

/* Input i's element type, checked equal to the other inputs' in [0, n). */
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

/* Broadcast all inputs; element type: the inputs' common one, or `as`. */
static kiln_status bcast_as(kl_infer_ctx *c, bool to_bool) {
    kl_shape s;
    kiln_dtype dt;
    KL_TRY(same_dtype(c, 0, kl_infer_n_inputs(c), &dt));
    KL_TRY(kl_infer_broadcast_inputs(c, 0, kl_infer_n_inputs(c), &s));
    return kl_infer_set_output(c, 0, to_bool ? KILN_DTYPE_BOOL : dt, &s);
}

static kiln_status infer_bcast(kl_infer_ctx *c) { return bcast_as(c, false); }
static kiln_status infer_compare(kl_infer_ctx *c) { return bcast_as(c, true); }

#define KL_BCAST_SYM(fn, op)                       \
    static kiln_status fn(kl_infer_ctx *c) {       \
        KL_TRY(bcast_as(c, false));                \
        return sym_fold(c, op);                    \
    }
KL_BCAST_SYM(infer_add, sym_add)
KL_BCAST_SYM(infer_sub, sym_sub)
KL_BCAST_SYM(infer_mul, sym_mul)
KL_BCAST_SYM(infer_div, sym_div)
KL_BCAST_SYM(infer_max, sym_max)
KL_BCAST_SYM(infer_min, sym_min)

static kiln_status infer_equal(kl_infer_ctx *c) {
    KL_TRY(bcast_as(c, true));
    return sym_fold(c, sym_equal);
}

/* Broadcast, output typed like input 0 (Pow's exponent may differ). */
static kiln_status infer_bcast_first(kl_infer_ctx *c) {
    kl_shape s;
    KL_TRY(kl_infer_broadcast_inputs(c, 0, kl_infer_n_inputs(c), &s));
    return kl_infer_set_output(c, 0, kl_infer_input_dtype(c, 0), &s);
}

/* Opset < 7 binary ops: B broadcasts onto A, so the output is A. */
static kiln_status infer_legacy_bool(kl_infer_ctx *c) {
    return kl_infer_unary_as(c, KILN_DTYPE_BOOL);
}

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
    const kl_symval *sc = kl_infer_input_sym(c, 0), *sx = kl_infer_input_sym(c, 1),
                    *sy = kl_infer_input_sym(c, 2);
    if (!sc || !sx || !sy || !kl_dtype_is_integer(dt)) return KILN_OK;
    int64_t n = sym_bcast_count(sym_bcast_count(sc->count, sx->count), sy->count);
    if (n < 0 || sym_bcast_count(n, sc->count) != n) return KILN_OK;
    kl_symval out;
    KL_TRY(kl_infer_symval_new(c, KL_MAX(sc->rank, KL_MAX(sx->rank, sy->rank)), n, &out));
    for (int64_t k = 0; k < n; k++) {
        const kl_dim *dc = &sc->v[sc->count == 1 ? 0 : k];
        if (!kl_symdim_known(dc)) continue;
        out.v[k] = dc->value ? sx->v[sx->count == 1 ? 0 : k] : sy->v[sy->count == 1 ? 0 : k];
    }
    return kl_infer_set_output_sym(c, 0, &out);
}

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

static kiln_status infer_cast(kl_infer_ctx *c) {
    int64_t to = kl_node_attr_int(c->node, "to", 0);
    kiln_dtype dt = kl_infer_dtype_from_attr(to);
    if (dt == KILN_DTYPE_UNDEFINED)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "attribute 'to' = %lld is not a valid element type", (long long)to);
    return cast_to(c, dt);
}

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

#define I KL_ATTR_INT
#define F KL_ATTR_FLOAT
#define S KL_ATTR_STRING
#define IS KL_ATTR_INTS

static const kl_attr_spec a_none[] = {{NULL}};
static const kl_attr_spec a_consumed[] = {{"consumed_inputs", IS, false}, {NULL}};
static const kl_attr_spec a_legacy[] = {{"axis", I, false}, {"broadcast", I, false}, {NULL}};
static const kl_attr_spec a_legacy_consumed[] = {
    {"axis", I, false}, {"broadcast", I, false}, {"consumed_inputs", IS, false}, {NULL}};
static const kl_attr_spec a_alpha[] = {{"alpha", F, false}, {NULL}};
static const kl_attr_spec a_alpha_consumed[] = {
    {"alpha", F, false}, {"consumed_inputs", IS, false}, {NULL}};
static const kl_attr_spec a_alpha_beta[] = {{"alpha", F, false}, {"beta", F, false}, {NULL}};
static const kl_attr_spec a_alpha_beta_consumed[] = {
    {"alpha", F, false}, {"beta", F, false}, {"consumed_inputs", IS, false}, {NULL}};
static const kl_attr_spec a_selu[] = {{"alpha", F, false}, {"gamma", F, false}, {NULL}};
static const kl_attr_spec a_selu_consumed[] = {
    {"alpha", F, false}, {"consumed_inputs", IS, false}, {"gamma", F, false}, {NULL}};
static const kl_attr_spec a_shrink[] = {{"bias", F, false}, {"lambd", F, false}, {NULL}};
static const kl_attr_spec a_isinf[] = {
    {"detect_negative", I, false}, {"detect_positive", I, false}, {NULL}};
static const kl_attr_spec a_gelu[] = {{"approximate", S, false}, {NULL}};
static const kl_attr_spec a_bitshift[] = {{"direction", S, true}, {NULL}};
static const kl_attr_spec a_fmod[] = {{"fmod", I, false}, {NULL}};
static const kl_attr_spec a_clip_v1[] = {
    {"consumed_inputs", IS, false}, {"max", F, false}, {"min", F, false}, {NULL}};
static const kl_attr_spec a_clip_v6[] = {{"max", F, false}, {"min", F, false}, {NULL}};
static const kl_attr_spec a_cast_v1[] = {{"to", S, true}, {NULL}};
static const kl_attr_spec a_cast_v6[] = {{"to", I, true}, {NULL}};
static const kl_attr_spec a_cast_v19[] = {{"saturate", I, false}, {"to", I, true}, {NULL}};
static const kl_attr_spec a_cast_v25[] = {
    {"round_mode", S, false}, {"saturate", I, false}, {"to", I, true}, {NULL}};
static const kl_attr_spec a_castlike_v19[] = {{"saturate", I, false}, {NULL}};
static const kl_attr_spec a_castlike_v25[] = {
    {"round_mode", S, false}, {"saturate", I, false}, {NULL}};
static const kl_attr_spec a_dropout_v1[] = {
    {"consumed_inputs", IS, false}, {"is_test", I, false}, {"ratio", F, false}, {NULL}};
static const kl_attr_spec a_dropout_v6[] = {{"is_test", I, false}, {"ratio", F, false}, {NULL}};
static const kl_attr_spec a_ratio[] = {{"ratio", F, false}, {NULL}};
static const kl_attr_spec a_seed[] = {{"seed", I, false}, {NULL}};

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
#define CMP(op, fn) BIN(op, 1, 6, a_legacy, infer_legacy_bool), BIN(op, 7, 0, a_none, fn)
/* Variadic Max/Min/Sum/Mean. */
#define VAR(op, since, until, attrs, fn) ROW(op, since, until, 1, -1, 1, 1, attrs, fn)
#define VARIADIC(op, fn)                                                       \
    VAR(op, 1, 5, a_consumed, fn), VAR(op, 6, 7, a_none, fn), VAR(op, 8, 0, a_none, fn)

const kl_op_schema kl_ops_elementwise[] = {
    /* unary math */
    UN_V1V6("Abs"), UN_V1V6("Ceil"), UN_V1V6("Exp"), UN_V1V6("Floor"), UN_V1V6("Log"),
    UN_V1V6("Neg"), UN_V1V6("Reciprocal"), UN_V1V6("Relu"), UN_V1V6("Sigmoid"),
    UN_V1V6("Sqrt"), UN_V1V6("Tanh"),
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
    {NULL},
};
