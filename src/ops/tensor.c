/*
 * tensor.c — schemas and shape inference of the tensor-manipulation family:
 * shape arithmetic (Shape, Size, Gather, Concat, Slice, Squeeze, Unsqueeze,
 * Reshape, Range, ConstantOfShape, Constant), layout (Transpose, Flatten,
 * Split, Expand, Tile, Pad, Resize, DepthToSpace...) and indexing (Gather*,
 * Scatter*, NonZero, Compress, Unique...).
 *
 * Symbolic sizes are kept wherever they can be proved: a dim named "batch"
 * stays "batch" through Shape -> Gather -> Unsqueeze -> Concat -> Reshape.
 * Known contents of small integer tensors travel as kl_symval, with the
 * element convention of infer_util.h ({-1, NULL} = unknown).  Integer lists
 * an op needs exactly (axes, pads, starts, a Reshape target) are read from
 * the constant first, so a constant -1 keeps its meaning.
 */
#include <math.h>
#include <string.h>

#include "ops/infer_util.h"

#define LIST_MAX KL_SYMVAL_MAX /* longest integer list read from an input */

/* ---- small helpers ------------------------------------------------------------ */

/* The node's opset version for its domain. */
static int64_t opset(const kl_infer_ctx *c) { return c->node->opset; }

/* True if output i exists and was not left out. */
static bool out_used(const kl_infer_ctx *c, size_t i) {
    return i < c->node->n_outputs && c->node->outputs[i] != NULL;
}

/* Shape of tensor input i, or NULL when unknown (or, defensively, when
 * larger than the fixed-size arrays used here allow). */
static const kl_shape *ishape(const kl_infer_ctx *c, size_t i) {
    const kl_shape *s = kl_infer_input_shape(c, i);
    return s && s->rank <= KILN_MAX_RANK && (s->rank == 0 || s->dims) ? s : NULL;
}

/* A dimension that is a symbol (named, size unknown). */
static bool dim_named(const kl_dim *d) { return d->value < 0 && d->param && d->param[0]; }

/* One element of a small integer tensor's known contents: a number (any
 * value, -1 included), a symbolic size, or unknown.  Only el_from_sym() and
 * el_to_sym() know how kl_symval encodes these (infer_util.h). */
typedef enum el_kind { EL_UNKNOWN = 0, EL_NUM, EL_NAME } el_kind;
typedef struct el {
    el_kind kind;
    int64_t v;        /* EL_NUM */
    const char *name; /* EL_NAME */
} el;

static el el_num(int64_t v) {
    el e = {EL_NUM, v, NULL};
    return e;
}

static el el_unknown(void) {
    el e = {EL_UNKNOWN, -1, NULL};
    return e;
}

/* A symval element as an el. */
static el el_from_sym(const kl_dim *d) {
    el e = el_unknown();
    if (d->param && d->param[0])
        e.kind = EL_NAME, e.name = d->param;
    else if (kl_symdim_known(d))
        e = el_num(d->value);
    return e;
}

/* An el as a symval element. */
static kl_dim el_to_sym(const el *e) {
    kl_dim d = kl_symdim_none();
    if (e->kind == EL_NUM)
        d = kl_dim_known(e->v);
    else if (e->kind == EL_NAME)
        d.param = e->name;
    return d;
}

/* A shape dimension as an el (the value of Shape's output element). */
static el el_from_dim(const kl_dim *d) {
    el e = el_unknown();
    if (d->value >= 0)
        e = el_num(d->value);
    else if (dim_named(d))
        e.kind = EL_NAME, e.name = d->param;
    return e;
}

/* An el used as a size: numbers >= 0 and names; anything else unknown. */
static kl_dim el_to_dim(const el *e) {
    kl_dim d = kl_dim_unknown();
    if (e->kind == EL_NUM && e->v >= 0)
        d = kl_dim_known(e->v);
    else if (e->kind == EL_NAME)
        d.param = e->name;
    return d;
}

/* Format helper for messages. */
static const char *fmt_shape(const kl_shape *s, char *buf, size_t n) {
    return kl_shape_format(s, buf, n);
}

/* Set output i (if used) to dtype and dims[0..rank) (rank < 0: unknown). */
static kiln_status set_out(kl_infer_ctx *c, size_t i, kiln_dtype dt, const kl_dim *dims, int rank) {
    if (!out_used(c, i)) return KILN_OK;
    if (rank < 0) return kl_infer_set_output(c, i, dt, NULL);
    if (rank > KILN_MAX_RANK)
        return kl_infer_fail(c, KILN_ERR_UNSUPPORTED,
                             "output %zu would have rank %d, more than kiln's limit of %d", i, rank,
                             KILN_MAX_RANK);
    kl_shape s = {rank, (kl_dim *)dims};
    return kl_infer_set_output(c, i, dt, &s);
}

/* Set output i to dtype with `rank` unknown dims (rank < 0: unknown rank). */
static kiln_status set_out_rank(kl_infer_ctx *c, size_t i, kiln_dtype dt, int rank) {
    kl_dim d[KILN_MAX_RANK];
    if (rank > KILN_MAX_RANK) return set_out(c, i, dt, NULL, rank);
    for (int k = 0; k < rank; k++) d[k] = kl_dim_unknown();
    return set_out(c, i, dt, d, rank);
}

/* Record contents v[0..n) of `rank` on output i, when they say anything. */
static kiln_status set_sym(kl_infer_ctx *c, size_t i, int rank, const el *v, int64_t n) {
    if (!out_used(c, i) || rank < 0 || rank > 1 || n < 0 || n > KL_SYMVAL_MAX ||
        (rank == 0 && n != 1))
        return KILN_OK;
    bool any = n == 0;
    kl_dim d[KL_SYMVAL_MAX];
    for (int64_t k = 0; k < n; k++) {
        any = any || v[k].kind != EL_UNKNOWN;
        d[k] = el_to_sym(&v[k]);
    }
    if (!any) return KILN_OK;
    kl_symval s = {rank, n, d};
    return kl_infer_set_output_sym(c, i, &s);
}

/* Contents of integer input i (at most max elements): exact numbers from a
 * constant, else the input's symval, else (fill_unknown) as many unknown
 * elements as its static 1-D shape says.  *rank (may be NULL) gets the
 * tensor's rank.  Returns the count, or -1 if not known. */
static int64_t in_elems_ex(kl_infer_ctx *c, size_t i, el *out, int64_t max, int *rank,
                           bool fill_unknown) {
    if (!kl_infer_has_input(c, i)) return -1;
    const kl_tensor *t = kl_infer_input_const(c, i);
    int64_t vals[LIST_MAX], n = 0;
    if (max > LIST_MAX) max = LIST_MAX;
    if (t) {
        if (!kl_dtype_is_integer(t->dtype) || !kl_infer_input_ints(c, i, vals, max, &n)) return -1;
        for (int64_t k = 0; k < n; k++) out[k] = el_num(vals[k]);
        if (rank) *rank = t->rank;
        return n;
    }
    const kl_symval *s = kl_infer_input_sym(c, i);
    if (s && s->count <= max) {
        for (int64_t k = 0; k < s->count; k++) out[k] = el_from_sym(&s->v[k]);
        if (rank) *rank = s->rank;
        return s->count;
    }
    const kl_shape *sh = fill_unknown ? ishape(c, i) : NULL;
    if (s || !sh || sh->rank > 1) return -1;
    n = sh->rank == 0 ? 1 : sh->dims[0].value;
    if (n < 0 || n > max) return -1;
    for (int64_t k = 0; k < n; k++) out[k] = el_unknown();
    if (rank) *rank = sh->rank;
    return n;
}

/* Known contents of integer input i (see in_elems_ex), or -1. */
static int64_t in_elems(kl_infer_ctx *c, size_t i, el *out, int64_t max, int *rank) {
    return in_elems_ex(c, i, out, max, rank, false);
}

/* Exact integer contents of input i (at most max): -1 if any is not known. */
static int64_t in_ints(kl_infer_ctx *c, size_t i, int64_t *out, int64_t max) {
    el e[LIST_MAX];
    int64_t n = in_elems(c, i, e, max, NULL);
    for (int64_t k = 0; k < n; k++) {
        if (e[k].kind != EL_NUM) return -1;
        out[k] = e[k].v;
    }
    return n;
}

/* Float contents of constant input i (at most max): -1 if not known. */
static int64_t in_floats(kl_infer_ctx *c, size_t i, double *out, int64_t max) {
    const kl_tensor *t = kl_infer_input_const(c, i);
    if (!t || !kl_dtype_is_float(t->dtype) || t->count > max) return -1;
    for (int64_t k = 0; k < t->count; k++) out[k] = kl_tensor_get_f64(t, k);
    return t->count;
}

/* Number of elements of list input i (1-D), from its contents or its
 * static shape; -1 if not known. */
static int64_t in_len(kl_infer_ctx *c, size_t i) {
    if (!kl_infer_has_input(c, i)) return -1;
    const kl_tensor *t = kl_infer_input_const(c, i);
    if (t) return t->count;
    const kl_symval *s = kl_infer_input_sym(c, i);
    if (s) return s->count;
    const kl_shape *sh = ishape(c, i);
    if (sh && sh->rank == 0) return 1;
    if (sh && sh->rank == 1 && kl_dim_is_known(&sh->dims[0])) return sh->dims[0].value;
    return -1;
}

/* Input i must be int64 (or int32 when allow32) if its type is known. */
static kiln_status want_index(kl_infer_ctx *c, size_t i, bool allow32, const char *what) {
    kiln_dtype t = kl_infer_input_dtype(c, i);
    if (t == KILN_DTYPE_UNDEFINED || t == KILN_DTYPE_INT64 || (allow32 && t == KILN_DTYPE_INT32))
        return KILN_OK;
    return kl_infer_fail(c, KILN_ERR_TYPE, "input %zu '%s' must be %s, not %s", i, what,
                         allow32 ? "int32 or int64" : "int64", kiln_dtype_name(t));
}

/* Inputs a and b must have the same element type when both are known. */
static kiln_status want_same_type(kl_infer_ctx *c, size_t a, size_t b) {
    kiln_dtype ta = kl_infer_input_dtype(c, a), tb = kl_infer_input_dtype(c, b);
    if (ta == KILN_DTYPE_UNDEFINED || tb == KILN_DTYPE_UNDEFINED || ta == tb) return KILN_OK;
    return kl_infer_fail(c, KILN_ERR_TYPE,
                         "inputs %zu and %zu must have the same type, not %s and %s", a, b,
                         kiln_dtype_name(ta), kiln_dtype_name(tb));
}

/* Normalize `axis` against rank; out of range is an error naming `what`
 * ("attribute 'axis'"). */
static kiln_status norm_axis(kl_infer_ctx *c, int64_t axis, int rank, const char *what, int *out) {
    if (kl_infer_axis(axis, rank, out)) return KILN_OK;
    return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "%s = %lld is out of range for rank %d", what,
                         (long long)axis, rank);
}

/* Normalize the n axes listed in `what` ("'axes'") against rank into out;
 * out of range or repeated axes are errors. */
static kiln_status norm_axes(kl_infer_ctx *c, const int64_t *axes, int64_t n, int rank,
                             const char *what, int *out) {
    bool seen[KILN_MAX_RANK] = {false};
    if (n > rank)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "%s lists %lld axes for rank %d", what,
                             (long long)n, rank);
    for (int64_t k = 0; k < n; k++) {
        if (!kl_infer_axis(axes[k], rank, &out[k]))
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                                 "%s entry %lld is %lld, out of range for rank %d", what,
                                 (long long)k, (long long)axes[k], rank);
        if (seen[out[k]])
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "%s lists axis %d twice", what, out[k]);
        seen[out[k]] = true;
    }
    return KILN_OK;
}

/* String attribute `name` must be one of the NULL-terminated `allowed`. */
static kiln_status want_string(kl_infer_ctx *c, const char *name, const char *const *allowed) {
    const kl_attr *a = kl_node_attr(c->node, name);
    if (!a || a->type != KL_ATTR_STRING) return KILN_OK;
    for (const char *const *s = allowed; *s; s++)
        if (a->s.len == strlen(*s) && memcmp(a->s.ptr, *s, a->s.len) == 0) return KILN_OK;
    return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "attribute '%s' has invalid value '%.*s'", name,
                         (int)KL_MIN(a->s.len, 64), a->s.ptr ? a->s.ptr : "");
}

/* ---- symbolic products ---------------------------------------------------------- */

/* A product of dimensions: a known coefficient times named symbols. */
typedef struct symprod {
    int64_t coef;
    int n;
    const char *sym[2 * KILN_MAX_RANK + 2];
    bool ok; /* false: an unknown factor or an overflow */
} symprod;

/* The empty product (1). */
static void prod_init(symprod *p) {
    p->coef = 1;
    p->n = 0;
    p->ok = true;
}

/* Multiply p by dimension d. */
static void prod_mul(symprod *p, const kl_dim *d) {
    if (!p->ok) return;
    if (d->value >= 0) {
        if (kl_mul_i64(p->coef, d->value, &p->coef)) p->ok = false;
    } else if (dim_named(d) && p->n < (int)KL_ARRAY_LEN(p->sym)) {
        p->sym[p->n++] = d->param;
    } else {
        p->ok = false;
    }
}

/* Product of dims[from..to) of s. */
static symprod prod_range(const kl_shape *s, int from, int to) {
    symprod p;
    prod_init(&p);
    for (int k = from; k < to; k++) prod_mul(&p, &s->dims[k]);
    return p;
}

/* p as one dimension: a known size, a lone symbol, or unknown. */
static kl_dim prod_dim(const symprod *p) {
    if (!p->ok) return kl_dim_unknown();
    if (p->coef == 0 || p->n == 0) return kl_dim_known(p->coef);
    if (p->n == 1 && p->coef == 1) {
        kl_dim d = {-1, p->sym[0]};
        return d;
    }
    return kl_dim_unknown();
}

/* The dimension x with x * b == a, when provable; *bad is set when it
 * provably does not exist (known sizes that do not divide). */
static kl_dim prod_div(symprod a, const symprod *b, bool *bad) {
    *bad = false;
    if (!a.ok || !b->ok || b->coef == 0) return kl_dim_unknown();
    for (int k = 0; k < b->n; k++) {
        int j = 0;
        while (j < a.n && strcmp(a.sym[j], b->sym[k]) != 0) j++;
        if (j == a.n) return kl_dim_unknown();
        a.sym[j] = a.sym[--a.n];
    }
    if (a.coef % b->coef != 0) {
        *bad = a.n == 0;
        return kl_dim_unknown();
    }
    a.coef /= b->coef;
    return prod_dim(&a);
}

/* True when p is a fully known number. */
static bool prod_known(const symprod *p) { return p->ok && p->n == 0; }

/* ---- Shape, Size ------------------------------------------------------------------ */

/* Shape: int64 [end-start]; the symval holds the input's dims. */
static kiln_status infer_shape(kl_infer_ctx *c) {
    const kl_shape *s = ishape(c, 0);
    if (!s) return set_out_rank(c, 0, KILN_DTYPE_INT64, 1);
    int64_t r = s->rank, start = 0, end = r;
    if (opset(c) >= 15) {
        start = kl_node_attr_int(c->node, "start", 0);
        end = kl_node_attr_int(c->node, "end", r);
    }
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = KL_MAX(0, KL_MIN(start, r));
    end = KL_MAX(0, KL_MIN(end, r));
    int64_t n = end > start ? end - start : 0;
    kl_dim d = kl_dim_known(n);
    KL_TRY(set_out(c, 0, KILN_DTYPE_INT64, &d, 1));
    el v[KILN_MAX_RANK];
    for (int64_t k = 0; k < n; k++) v[k] = el_from_dim(&s->dims[start + k]);
    return set_sym(c, 0, 1, v, n);
}

/* Size: int64 scalar; the symval holds the element count when provable. */
static kiln_status infer_size(kl_infer_ctx *c) {
    KL_TRY(set_out(c, 0, KILN_DTYPE_INT64, NULL, 0));
    const kl_shape *s = ishape(c, 0);
    if (!s) return KILN_OK;
    symprod p = prod_range(s, 0, s->rank);
    kl_dim d = prod_dim(&p);
    el v = el_from_dim(&d);
    return set_sym(c, 0, 0, &v, 1);
}

/* ---- Reshape, Flatten ------------------------------------------------------------- */

/* Reshape: target from input 1 (attribute `shape` before opset 5); 0 copies
 * the input dim (unless allowzero), -1 is the rest of the element count.
 * A lone unknown target element (no -1) is solved the same way: whatever
 * its value (-1, 0 or a size), the element counts must match. */
static kiln_status infer_reshape(kl_infer_ctx *c) {
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    const kl_shape *in = ishape(c, 0);
    bool allowzero = opset(c) >= 14 && kl_node_attr_int(c->node, "allowzero", 0) != 0;
    el t[LIST_MAX];
    int64_t n;
    if (opset(c) < 5) {
        const int64_t *v;
        n = kl_node_attr_ints(c->node, "shape", &v);
        if (n > LIST_MAX) return set_out(c, 0, dt, NULL, (int)KL_MIN(n, KILN_MAX_RANK + 1));
        for (int64_t k = 0; k < n; k++) t[k] = el_num(v[k]);
    } else {
        KL_TRY(want_index(c, 1, false, "shape"));
        n = in_elems_ex(c, 1, t, LIST_MAX, NULL, true);
        if (n < 0) {
            int64_t len = in_len(c, 1);
            return set_out_rank(c, 0, dt, len < 0 ? -1 : (int)KL_MIN(len, KILN_MAX_RANK + 1));
        }
    }
    if (n < 0) return set_out(c, 0, dt, NULL, -1);
    if (n > KILN_MAX_RANK) return set_out(c, 0, dt, NULL, (int)n);
    kl_dim out[KILN_MAX_RANK];
    int minus = -1, unknown = -1, n_unknown = 0;
    bool has_zero = false;
    symprod po;
    prod_init(&po);
    for (int k = 0; k < (int)n; k++) {
        const el *e = &t[k];
        out[k] = el_to_dim(e);
        if (e->kind == EL_UNKNOWN) {
            unknown = k, n_unknown++;
            continue;
        }
        if (e->kind == EL_NUM && e->v == -1) {
            if (minus >= 0)
                return kl_infer_fail(c, KILN_ERR_SHAPE, "target shape has more than one -1");
            minus = k;
            continue;
        }
        if (e->kind == EL_NUM && e->v < -1)
            return kl_infer_fail(c, KILN_ERR_SHAPE, "target shape has invalid size %lld",
                                 (long long)e->v);
        if (e->kind == EL_NUM && e->v == 0 && !allowzero) {
            if (in && k >= in->rank)
                return kl_infer_fail(c, KILN_ERR_SHAPE,
                                     "target dim %d is 0 (copy) but the input has rank %d", k,
                                     in->rank);
            out[k] = in ? in->dims[k] : kl_dim_unknown();
        }
        has_zero = has_zero || (e->kind == EL_NUM && e->v == 0);
        prod_mul(&po, &out[k]);
    }
    if (allowzero && has_zero && minus >= 0)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "target shape has both 0 and -1 with allowzero=1");
    int solve = minus >= 0 ? (n_unknown == 0 ? minus : -1) : (n_unknown == 1 ? unknown : -1);
    symprod pi;
    prod_init(&pi);
    if (in) pi = prod_range(in, 0, in->rank);
    char b1[256], b2[256];
    if (in && solve >= 0 && po.ok) {
        bool bad = false;
        out[solve] = prod_div(pi, &po, &bad);
        if (bad)
            return kl_infer_fail(
                c, KILN_ERR_SHAPE, "cannot reshape %s (%lld elements) into a multiple of %lld",
                fmt_shape(in, b1, sizeof b1), (long long)pi.coef, (long long)po.coef);
    } else if (in && minus < 0 && n_unknown == 0 && prod_known(&pi) && prod_known(&po) &&
               pi.coef != po.coef) {
        kl_shape os = {(int)n, out};
        return kl_infer_fail(c, KILN_ERR_SHAPE,
                             "cannot reshape %s (%lld elements) to %s (%lld elements)",
                             fmt_shape(in, b1, sizeof b1), (long long)pi.coef,
                             fmt_shape(&os, b2, sizeof b2), (long long)po.coef);
    }
    KL_TRY(set_out(c, 0, dt, out, (int)n));
    /* contents of a small integer tensor survive a reshape to rank <= 1 */
    el v[KL_SYMVAL_MAX];
    int64_t nv = n <= 1 ? in_elems(c, 0, v, KL_SYMVAL_MAX, NULL) : -1;
    if (nv >= 0 && (n == 1 || nv == 1)) return set_sym(c, 0, (int)n, v, nv);
    return KILN_OK;
}

/* Flatten: [prod(dims[:axis]), prod(dims[axis:])], symbols kept when alone. */
static kiln_status infer_flatten(kl_infer_ctx *c) {
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    const kl_shape *in = ishape(c, 0);
    int64_t axis = kl_node_attr_int(c->node, "axis", 1);
    if (!in) return set_out_rank(c, 0, dt, 2);
    int r = in->rank;
    if (axis < 0 && opset(c) >= 11) axis += r;
    if (axis < 0 || axis > r)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "axis %lld is out of range for rank %d",
                             (long long)kl_node_attr_int(c->node, "axis", 1), r);
    symprod a = prod_range(in, 0, (int)axis), b = prod_range(in, (int)axis, r);
    kl_dim out[2] = {prod_dim(&a), prod_dim(&b)};
    return set_out(c, 0, dt, out, 2);
}

/* ---- Transpose ------------------------------------------------------------------- */

/* Transpose: dims permuted by `perm` (default: reversed). */
static kiln_status infer_transpose(kl_infer_ctx *c) {
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    const kl_shape *in = ishape(c, 0);
    const int64_t *perm;
    int64_t np = kl_node_attr_ints(c->node, "perm", &perm);
    if (!in) return set_out_rank(c, 0, dt, np >= 0 ? (int)KL_MIN(np, KILN_MAX_RANK + 1) : -1);
    int r = in->rank;
    kl_dim out[KILN_MAX_RANK];
    bool seen[KILN_MAX_RANK] = {false};
    if (np >= 0 && np != r)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "perm has %lld entries but the input has rank %d", (long long)np, r);
    for (int k = 0; k < r; k++) {
        int64_t p = np >= 0 ? perm[k] : r - 1 - k;
        if (p < 0 || p >= r || seen[p])
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                                 "perm is not a permutation of 0..%d (entry %d is %lld)", r - 1, k,
                                 (long long)p);
        seen[p] = true;
        out[k] = in->dims[p];
    }
    return set_out(c, 0, dt, out, r);
}

/* ---- Concat, Split -------------------------------------------------------------- */

/* Concat: same rank, equal dims off the axis, axis dims summed.  Small
 * integer contents are concatenated into the output's symval. */
static kiln_status infer_concat(kl_infer_ctx *c) {
    size_t n = kl_infer_n_inputs(c);
    kiln_dtype dt = KILN_DTYPE_UNDEFINED;
    const kl_shape *first = NULL;
    bool all_ranks = true;
    for (size_t i = 0; i < n; i++) {
        kiln_dtype t = kl_infer_input_dtype(c, i);
        if (t != KILN_DTYPE_UNDEFINED && dt != KILN_DTYPE_UNDEFINED && t != dt)
            return kl_infer_fail(c, KILN_ERR_TYPE, "input %zu is %s but an earlier input is %s", i,
                                 kiln_dtype_name(t), kiln_dtype_name(dt));
        if (t != KILN_DTYPE_UNDEFINED) dt = t;
        const kl_shape *s = ishape(c, i);
        if (!s) {
            all_ranks = false;
            continue;
        }
        if (!first)
            first = s;
        else if (s->rank != first->rank) {
            char a[256], b[256];
            return kl_infer_fail(
                c, KILN_ERR_SHAPE,
                "inputs must have the same rank: input %zu is %s, an earlier one %s", i,
                fmt_shape(s, a, sizeof a), fmt_shape(first, b, sizeof b));
        }
    }
    int64_t axis_attr = kl_node_attr_int(c->node, "axis", 1);
    if (!first) return set_out(c, 0, dt, NULL, -1);
    int r = first->rank, axis;
    if (r == 0) return kl_infer_fail(c, KILN_ERR_SHAPE, "inputs must have rank >= 1");
    KL_TRY(norm_axis(c, axis_attr, r, "attribute 'axis'", &axis));
    kl_dim out[KILN_MAX_RANK];
    for (int k = 0; k < r; k++) out[k] = kl_dim_unknown();
    int64_t sum = 0;
    const char *sym = NULL;
    int n_sym = 0;
    bool sum_ok = all_ranks;
    for (size_t i = 0; i < n; i++) {
        const kl_shape *s = ishape(c, i);
        if (!s) continue;
        for (int k = 0; k < r; k++) {
            const kl_dim *d = &s->dims[k];
            if (k == axis) {
                if (d->value >= 0)
                    sum_ok = sum_ok && !kl_add_i64(sum, d->value, &sum);
                else if (dim_named(d))
                    sym = d->param, n_sym++;
                else
                    sum_ok = false;
                continue;
            }
            if (d->value >= 0 && out[k].value >= 0 && d->value != out[k].value) {
                char a[256], b[256];
                return kl_infer_fail(c, KILN_ERR_SHAPE,
                                     "input %zu has shape %s, incompatible with input 0's %s off "
                                     "axis %d (dim %d)",
                                     i, fmt_shape(s, a, sizeof a), fmt_shape(first, b, sizeof b),
                                     axis, k);
            }
            if (d->value >= 0 || (out[k].value < 0 && !out[k].param)) out[k] = *d;
        }
    }
    if (sum_ok && n_sym == 0)
        out[axis] = kl_dim_known(sum);
    else if (sum_ok && n_sym == 1 && sum == 0)
        out[axis].param = sym, out[axis].value = -1;
    KL_TRY(set_out(c, 0, dt, out, r));
    if (r != 1 || (dt != KILN_DTYPE_UNDEFINED && !kl_dtype_is_integer(dt))) return KILN_OK;
    el v[KL_SYMVAL_MAX];
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t m = in_elems_ex(c, i, v + total, KL_SYMVAL_MAX - total, NULL, true);
        if (m < 0) return KILN_OK;
        total += m;
    }
    return set_sym(c, 0, 1, v, total);
}

/* Split: parts along `axis` from `split` (attribute before 13, input from
 * 13), `num_outputs` (18) or equal parts. */
static kiln_status infer_split(kl_infer_ctx *c) {
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    const kl_shape *in = ishape(c, 0);
    size_t nout = kl_infer_n_outputs(c);
    int64_t sp[LIST_MAX], ns = -1;
    const kl_attr *num = opset(c) >= 18 ? kl_node_attr(c->node, "num_outputs") : NULL;
    bool split_in = (opset(c) >= 13 || opset(c) < 2) && kl_infer_has_input(c, 1);
    bool sizes_unknown = false; /* a split input whose contents are not known */
    if (split_in) {
        KL_TRY(want_index(c, 1, false, "split"));
        ns = in_ints(c, 1, sp, LIST_MAX);
        if (ns < 0) sizes_unknown = in_len(c, 1) != 0;
        if (ns == 0) ns = -1; /* an empty split input means equal parts */
    } else if (opset(c) < 13) {
        const int64_t *v;
        ns = kl_node_attr_ints(c->node, "split", &v);
        if (ns > LIST_MAX) ns = -1, sizes_unknown = true;
        for (int64_t k = 0; k < ns; k++) sp[k] = v[k];
    }
    if (num && split_in)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "input 'split' and attribute 'num_outputs' are both given");
    if (num && (num->i < 1 || (uint64_t)num->i != nout))
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "num_outputs is %lld but the node has %zu outputs", (long long)num->i,
                             nout);
    if (ns >= 0 && (size_t)ns != nout)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "split has %lld entries but the node has %zu outputs", (long long)ns,
                             nout);
    if (!in) {
        for (size_t i = 0; i < nout; i++) KL_TRY(set_out(c, i, dt, NULL, -1));
        return KILN_OK;
    }
    int r = in->rank, axis;
    KL_TRY(norm_axis(c, kl_node_attr_int(c->node, "axis", 0), r, "attribute 'axis'", &axis));
    const kl_dim *d = &in->dims[axis];
    int64_t chunk = -1, last = -1, sum = 0, n = (int64_t)nout;
    if (ns >= 0) {
        for (int64_t k = 0; k < ns; k++) {
            if (sp[k] < 0)
                return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "split entry %lld is negative",
                                     (long long)k);
            if (kl_add_i64(sum, sp[k], &sum)) sum = INT64_MAX;
        }
        if (d->value >= 0 && sum != d->value)
            return kl_infer_fail(c, KILN_ERR_SHAPE,
                                 "split sizes add up to %lld but axis %d has size %lld",
                                 (long long)sum, axis, (long long)d->value);
    } else if (!sizes_unknown && d->value >= 0 && n > 0) {
        chunk = num ? (d->value + n - 1) / n : d->value / n;
        last = d->value - chunk * (n - 1);
        if (last < 0 || (!num && last != chunk))
            return kl_infer_fail(c, KILN_ERR_SHAPE, "cannot split size %lld into %lld %sparts",
                                 (long long)d->value, (long long)n, num ? "" : "equal ");
    }
    kl_dim out[KILN_MAX_RANK];
    memcpy(out, in->dims, (size_t)r * sizeof *out);
    for (size_t i = 0; i < nout; i++) {
        if (ns >= 0)
            out[axis] = kl_dim_known(sp[i]);
        else if (chunk >= 0)
            out[axis] = kl_dim_known(i + 1 < nout ? chunk : last);
        else if (nout == 1 && !sizes_unknown)
            out[axis] = *d;
        else
            out[axis] = kl_dim_unknown();
        KL_TRY(set_out(c, i, dt, out, r));
    }
    return KILN_OK;
}

/* ---- Slice ------------------------------------------------------------------------ */

/* Length of dims[start:end:step] (ONNX clamping rules, opset 10+) for a
 * dimension of known size d; also the normalized first index. */
static int64_t slice_len(int64_t d, int64_t start, int64_t end, int64_t step, int64_t *first) {
    if (start < 0) start += d;
    if (end < 0) end += d;
    if (step > 0) {
        start = KL_MAX(0, KL_MIN(start, d));
        end = KL_MAX(0, KL_MIN(end, d));
        *first = start;
        return end > start ? (end - start - 1) / step + 1 : 0;
    }
    if (d == 0) return *first = 0, 0;
    start = KL_MAX(0, KL_MIN(start, d - 1));
    end = KL_MAX(-1, KL_MIN(end, d - 1));
    *first = start;
    uint64_t ns = (uint64_t)0 - (uint64_t)step;
    return start > end ? (int64_t)((uint64_t)(start - end - 1) / ns) + 1 : 0;
}

/* True when [start:end:step] provably covers a whole dimension of any size. */
static bool slice_whole(int64_t start, int64_t end, int64_t step) {
    const int64_t big = INT32_MAX;
    if (step == 1) return (start == 0 || start <= -big - 1) && end >= big;
    if (step == -1) return (start == -1 || start >= big) && end <= -big - 1;
    return false;
}

/* Slice: per listed axis, dims[start:end:step]; symbols survive whole-axis
 * slices.  A slice of a small integer tensor slices its symval. */
static kiln_status infer_slice(kl_infer_ctx *c) {
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    const kl_shape *in = ishape(c, 0);
    int64_t st[LIST_MAX], en[LIST_MAX], ax[LIST_MAX], sp[LIST_MAX];
    int64_t nst, nen, nax = -1, nsp = -1;
    bool axes_given;
    if (opset(c) < 10) {
        const int64_t *v;
        nst = kl_node_attr_ints(c->node, "starts", &v);
        for (int64_t k = 0; k < nst && k < LIST_MAX; k++) st[k] = v[k];
        nen = kl_node_attr_ints(c->node, "ends", &v);
        for (int64_t k = 0; k < nen && k < LIST_MAX; k++) en[k] = v[k];
        nax = kl_node_attr_ints(c->node, "axes", &v);
        for (int64_t k = 0; k < nax && k < LIST_MAX; k++) ax[k] = v[k];
        axes_given = nax >= 0;
        if (nst > LIST_MAX || nen > LIST_MAX || nax > LIST_MAX)
            return set_out_rank(c, 0, dt, in ? in->rank : -1);
    } else {
        static const char *const names[] = {"data", "starts", "ends", "axes", "steps"};
        for (size_t i = 1; i <= 4; i++) KL_TRY(want_index(c, i, true, names[i]));
        nst = in_ints(c, 1, st, LIST_MAX);
        nen = in_ints(c, 2, en, LIST_MAX);
        axes_given = kl_infer_has_input(c, 3);
        if (axes_given) nax = in_ints(c, 3, ax, LIST_MAX);
        if (kl_infer_has_input(c, 4)) {
            nsp = in_ints(c, 4, sp, LIST_MAX);
            if (nsp < 0) nsp = -2; /* given but unknown */
        }
    }
    if (!in) return set_out(c, 0, dt, NULL, -1);
    int r = in->rank;
    int64_t count = nst >= 0 ? nst : nen >= 0 ? nen : in_len(c, 1);
    if (nst >= 0 && nen >= 0 && nst != nen)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "starts has %lld entries but ends has %lld",
                             (long long)nst, (long long)nen);
    if (axes_given && nax >= 0 && count >= 0 && nax != count)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "axes has %lld entries but starts has %lld",
                             (long long)nax, (long long)count);
    if (nsp >= 0 && count >= 0 && nsp != count)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "steps has %lld entries but starts has %lld", (long long)nsp,
                             (long long)count);
    if (!axes_given && count >= 0) {
        if (count > r)
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "%lld starts for an input of rank %d",
                                 (long long)count, r);
        nax = count;
        for (int64_t k = 0; k < nax; k++) ax[k] = k;
    }
    if (nax < 0) return set_out_rank(c, 0, dt, r);
    int axn[KILN_MAX_RANK];
    KL_TRY(norm_axes(c, ax, nax, r, "'axes'", axn));
    for (int64_t k = 0; nsp >= 0 && k < nsp; k++)
        if (sp[k] == 0) return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "steps must not be 0");
    kl_dim out[KILN_MAX_RANK];
    memcpy(out, in->dims, (size_t)r * sizeof *out);
    bool known = nst >= 0 && nen >= 0 && nsp != -2;
    for (int64_t k = 0; k < nax; k++) {
        int a = axn[k];
        int64_t step = nsp >= 0 ? sp[k] : 1, first;
        if (!known)
            out[a] = kl_dim_unknown();
        else if (in->dims[a].value >= 0)
            out[a] = kl_dim_known(slice_len(in->dims[a].value, st[k], en[k], step, &first));
        else if (!slice_whole(st[k], en[k], step))
            out[a] = kl_dim_unknown();
    }
    KL_TRY(set_out(c, 0, dt, out, r));
    el v[KL_SYMVAL_MAX], w[KL_SYMVAL_MAX];
    int64_t nv = r == 1 && known ? in_elems(c, 0, v, KL_SYMVAL_MAX, NULL) : -1;
    if (nv < 0 || nax != 1) return KILN_OK;
    int64_t step = nsp >= 0 ? sp[0] : 1, first;
    int64_t len = slice_len(nv, st[0], en[0], step, &first);
    for (int64_t k = 0; k < len; k++) w[k] = v[first + k * step];
    return set_sym(c, 0, 1, w, len);
}

/* ---- Gather family ----------------------------------------------------------------- */

/* Gather: data[:axis] + indices.shape + data[axis+1:]; constant indices into
 * a small integer tensor pick its symval elements. */
static kiln_status infer_gather(kl_infer_ctx *c) {
    KL_TRY(want_index(c, 1, true, "indices"));
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    const kl_shape *ds = ishape(c, 0), *is = ishape(c, 1);
    int axis = 0;
    if (ds) {
        if (ds->rank == 0) return kl_infer_fail(c, KILN_ERR_SHAPE, "data must have rank >= 1");
        KL_TRY(norm_axis(c, kl_node_attr_int(c->node, "axis", 0), ds->rank, "attribute 'axis'",
                         &axis));
    }
    int64_t idx[LIST_MAX];
    int64_t ni = in_ints(c, 1, idx, LIST_MAX);
    if (ds && ni >= 0 && ds->dims[axis].value >= 0) {
        int64_t d = ds->dims[axis].value;
        for (int64_t k = 0; k < ni; k++)
            if (idx[k] < -d || idx[k] >= d)
                return kl_infer_fail(c, KILN_ERR_SHAPE,
                                     "index %lld is out of range for axis %d of size %lld",
                                     (long long)idx[k], axis, (long long)d);
    }
    if (!ds || !is) return set_out(c, 0, dt, NULL, -1);
    int r = ds->rank - 1 + is->rank;
    if (r > KILN_MAX_RANK) return set_out(c, 0, dt, NULL, r);
    kl_dim out[KILN_MAX_RANK];
    int o = 0;
    for (int k = 0; k < axis; k++) out[o++] = ds->dims[k];
    for (int k = 0; k < is->rank; k++) out[o++] = is->dims[k];
    for (int k = axis + 1; k < ds->rank; k++) out[o++] = ds->dims[k];
    KL_TRY(set_out(c, 0, dt, out, r));
    el v[KL_SYMVAL_MAX], w[KL_SYMVAL_MAX];
    int64_t nv =
        ds->rank == 1 && ni >= 0 && is->rank <= 1 ? in_elems(c, 0, v, KL_SYMVAL_MAX, NULL) : -1;
    if (nv < 0) return KILN_OK;
    for (int64_t k = 0; k < ni; k++) {
        int64_t j = idx[k] < 0 ? idx[k] + nv : idx[k];
        if (j < 0 || j >= nv) return KILN_OK;
        w[k] = v[j];
    }
    return set_sym(c, 0, is->rank, w, ni);
}

/* GatherElements: output has the indices' shape. */
static kiln_status infer_gather_elements(kl_infer_ctx *c) {
    KL_TRY(want_index(c, 1, true, "indices"));
    const kl_shape *ds = ishape(c, 0), *is = ishape(c, 1);
    if (ds && is && ds->rank != is->rank)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "data has rank %d but indices rank %d", ds->rank,
                             is->rank);
    int axis;
    if (ds || is)
        KL_TRY(norm_axis(c, kl_node_attr_int(c->node, "axis", 0), ds ? ds->rank : is->rank,
                         "attribute 'axis'", &axis));
    return kl_infer_set_output(c, 0, kl_infer_input_dtype(c, 0), is);
}

/* GatherND: indices.shape[:-1] + data.shape[batch_dims + k:]. */
static kiln_status infer_gather_nd(kl_infer_ctx *c) {
    KL_TRY(want_index(c, 1, false, "indices"));
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    const kl_shape *ds = ishape(c, 0), *is = ishape(c, 1);
    int64_t b = kl_node_attr_int(c->node, "batch_dims", 0);
    if (!ds || !is) return set_out(c, 0, dt, NULL, -1);
    int r = ds->rank, q = is->rank;
    if (r < 1 || q < 1)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "data and indices must have rank >= 1");
    if (b < 0 || b >= KL_MIN(r, q))
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "batch_dims %lld must be less than the ranks (%d, %d)", (long long)b,
                             r, q);
    const kl_dim *kd = &is->dims[q - 1];
    if (kd->value < 0) return set_out(c, 0, dt, NULL, -1);
    int64_t k = kd->value;
    if (k < 1 || k > r - b)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "indices' last dim %lld must be in 1..%lld",
                             (long long)k, (long long)(r - b));
    int orank = q - 1 + (int)(r - b - k);
    if (orank > KILN_MAX_RANK) return set_out(c, 0, dt, NULL, orank);
    kl_dim out[KILN_MAX_RANK];
    int o = 0;
    for (int j = 0; j < q - 1; j++) out[o++] = is->dims[j];
    for (int j = (int)(b + k); j < r; j++) out[o++] = ds->dims[j];
    return set_out(c, 0, dt, out, orank);
}

/* ---- Scatter family ---------------------------------------------------------------- */

/* The reduction attribute of ScatterND/ScatterElements for this opset. */
static kiln_status check_reduction(kl_infer_ctx *c) {
    static const char *const r16[] = {"none", "add", "mul", NULL};
    static const char *const r18[] = {"none", "add", "mul", "max", "min", NULL};
    return want_string(c, "reduction", opset(c) >= 18 ? r18 : r16);
}

/* ScatterElements / Scatter: output = data; indices and updates match. */
static kiln_status infer_scatter_elements(kl_infer_ctx *c) {
    KL_TRY(want_index(c, 1, true, "indices"));
    KL_TRY(want_same_type(c, 0, 2));
    KL_TRY(check_reduction(c));
    const kl_shape *ds = ishape(c, 0), *is = ishape(c, 1), *us = ishape(c, 2);
    if (ds && is && ds->rank != is->rank)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "data has rank %d but indices rank %d", ds->rank,
                             is->rank);
    kl_shape m;
    KL_TRY(kl_infer_shape_merge(c, is, us, "indices and updates", &m));
    int axis;
    if (ds)
        KL_TRY(norm_axis(c, kl_node_attr_int(c->node, "axis", 0), ds->rank, "attribute 'axis'",
                         &axis));
    return kl_infer_set_output(c, 0, kl_infer_input_dtype(c, 0), ds);
}

/* ScatterND: output = data; updates = indices.shape[:-1] + data.shape[k:]. */
static kiln_status infer_scatter_nd(kl_infer_ctx *c) {
    KL_TRY(want_index(c, 1, false, "indices"));
    KL_TRY(want_same_type(c, 0, 2));
    KL_TRY(check_reduction(c));
    const kl_shape *ds = ishape(c, 0), *is = ishape(c, 1), *us = ishape(c, 2);
    if (ds && is && is->rank >= 1 && is->dims[is->rank - 1].value >= 0) {
        int64_t k = is->dims[is->rank - 1].value;
        if (k > ds->rank)
            return kl_infer_fail(c, KILN_ERR_SHAPE, "indices' last dim %lld exceeds data rank %d",
                                 (long long)k, ds->rank);
        int64_t want = is->rank - 1 + ds->rank - k;
        if (us && us->rank != want)
            return kl_infer_fail(c, KILN_ERR_SHAPE, "updates has rank %d, expected %lld", us->rank,
                                 (long long)want);
    }
    return kl_infer_set_output(c, 0, kl_infer_input_dtype(c, 0), ds);
}

/* TensorScatter: present_cache = past_cache; update matches it off `axis`. */
static kiln_status infer_tensor_scatter(kl_infer_ctx *c) {
    static const char *const modes[] = {"linear", "circular", NULL};
    KL_TRY(want_string(c, "mode", modes));
    KL_TRY(want_same_type(c, 0, 1));
    const kl_shape *ps = ishape(c, 0), *us = ishape(c, 1);
    if (ps) {
        int axis;
        KL_TRY(norm_axis(c, kl_node_attr_int(c->node, "axis", -2), ps->rank, "attribute 'axis'",
                         &axis));
        if (us && us->rank != ps->rank)
            return kl_infer_fail(c, KILN_ERR_SHAPE, "update has rank %d but past_cache rank %d",
                                 us->rank, ps->rank);
    }
    return kl_infer_set_output(c, 0, kl_infer_input_dtype(c, 0), ps ? ps : NULL);
}

/* ---- Squeeze, Unsqueeze ------------------------------------------------------------ */

/* Axes of Squeeze/Unsqueeze: attribute before 13, input 1 from 13.  Returns
 * the count (-1 absent, -2 given but unknown with *len its length or -1). */
static int64_t squeeze_axes(kl_infer_ctx *c, int64_t *axes, int64_t *len) {
    *len = -1;
    if (opset(c) < 13) {
        const int64_t *v;
        int64_t n = kl_node_attr_ints(c->node, "axes", &v);
        if (n > LIST_MAX) return *len = n, -2;
        for (int64_t k = 0; k < n; k++) axes[k] = v[k];
        return n;
    }
    if (!kl_infer_has_input(c, 1)) return -1;
    int64_t n = in_ints(c, 1, axes, LIST_MAX);
    if (n >= 0) return n;
    *len = in_len(c, 1);
    return -2;
}

/* Squeeze: listed axes (must be 1) removed, or every known 1 when none
 * listed (unknown rank if some dim is unknown then). */
static kiln_status infer_squeeze(kl_infer_ctx *c) {
    if (opset(c) >= 13) KL_TRY(want_index(c, 1, false, "axes"));
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    const kl_shape *in = ishape(c, 0);
    int64_t axes[LIST_MAX], len;
    int64_t n = squeeze_axes(c, axes, &len);
    if (!in) return set_out(c, 0, dt, NULL, -1);
    int r = in->rank;
    bool drop[KILN_MAX_RANK] = {false};
    if (n == -2) return set_out_rank(c, 0, dt, len >= 0 && len <= r ? r - (int)len : -1);
    if (n >= 0) {
        int an[KILN_MAX_RANK];
        KL_TRY(norm_axes(c, axes, n, r, "'axes'", an));
        for (int64_t k = 0; k < n; k++) {
            const kl_dim *d = &in->dims[an[k]];
            if (d->value >= 0 && d->value != 1)
                return kl_infer_fail(c, KILN_ERR_SHAPE, "cannot squeeze axis %d of size %lld",
                                     an[k], (long long)d->value);
            drop[an[k]] = true;
        }
    } else {
        for (int k = 0; k < r; k++) {
            if (in->dims[k].value < 0) return set_out(c, 0, dt, NULL, -1);
            drop[k] = in->dims[k].value == 1;
        }
    }
    kl_dim out[KILN_MAX_RANK];
    int o = 0;
    for (int k = 0; k < r; k++)
        if (!drop[k]) out[o++] = in->dims[k];
    KL_TRY(set_out(c, 0, dt, out, o));
    el v[1];
    if (o == 0 && r == 1 && in_elems(c, 0, v, 1, NULL) == 1) return set_sym(c, 0, 0, v, 1);
    return KILN_OK;
}

/* Unsqueeze: a 1 inserted at each listed axis of the output. */
static kiln_status infer_unsqueeze(kl_infer_ctx *c) {
    if (opset(c) >= 13) KL_TRY(want_index(c, 1, false, "axes"));
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    const kl_shape *in = ishape(c, 0);
    int64_t axes[LIST_MAX], len;
    int64_t n = squeeze_axes(c, axes, &len);
    if (n == -1 && opset(c) >= 13)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "input 'axes' is required");
    if (!in) return set_out(c, 0, dt, NULL, -1);
    if (n == -2)
        return set_out_rank(c, 0, dt, len >= 0 ? in->rank + (int)KL_MIN(len, KILN_MAX_RANK) : -1);
    if (n < 0) n = 0;
    int64_t r = in->rank + n;
    if (r > KILN_MAX_RANK) return set_out(c, 0, dt, NULL, (int)r);
    int an[KILN_MAX_RANK];
    bool ins[KILN_MAX_RANK] = {false};
    KL_TRY(norm_axes(c, axes, n, (int)r, "'axes'", an));
    for (int64_t k = 0; k < n; k++) ins[an[k]] = true;
    kl_dim out[KILN_MAX_RANK];
    for (int k = 0, i = 0; k < r; k++) out[k] = ins[k] ? kl_dim_known(1) : in->dims[i++];
    KL_TRY(set_out(c, 0, dt, out, (int)r));
    el v[1];
    if (in->rank == 0 && r == 1 && in_elems(c, 0, v, 1, NULL) == 1) return set_sym(c, 0, 1, v, 1);
    return KILN_OK;
}

/* ---- Expand, Tile ------------------------------------------------------------------- */

/* Expand: input broadcast against the shape given by input 1. */
static kiln_status infer_expand(kl_infer_ctx *c) {
    KL_TRY(want_index(c, 1, false, "shape"));
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    const kl_shape *in = ishape(c, 0);
    el t[LIST_MAX];
    int64_t n = in_elems(c, 1, t, LIST_MAX, NULL);
    if (n < 0) {
        int64_t len = in_len(c, 1);
        if (len < 0 || !in) return set_out(c, 0, dt, NULL, -1);
        return set_out_rank(c, 0, dt,
                            (int)KL_MIN(KL_MAX(len, (int64_t)in->rank), KILN_MAX_RANK + 1));
    }
    if (n > KILN_MAX_RANK) return set_out(c, 0, dt, NULL, (int)n);
    kl_dim dims[KILN_MAX_RANK];
    for (int64_t k = 0; k < n; k++) dims[k] = el_to_dim(&t[k]);
    kl_shape ts = {(int)n, dims}, out;
    if (!in) return set_out(c, 0, dt, NULL, -1);
    KL_TRY(kl_infer_broadcast(c, in, &ts, &out));
    return kl_infer_set_output(c, 0, dt, &out);
}

/* Tile: dims multiplied by `repeats` (opset 1: `tiles` along `axis`). */
static kiln_status infer_tile(kl_infer_ctx *c) {
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    const kl_shape *in = ishape(c, 0);
    if (!in) return set_out(c, 0, dt, NULL, -1);
    int r = in->rank;
    int64_t rep[LIST_MAX];
    for (int k = 0; k < r; k++) rep[k] = 1;
    bool known = true;
    if (opset(c) < 6) {
        int64_t tiles, axis;
        if (in_ints(c, 1, &tiles, 1) == 1 && in_ints(c, 2, &axis, 1) == 1) {
            int a;
            KL_TRY(norm_axis(c, axis, r, "input 'axis'", &a));
            rep[a] = tiles;
        } else {
            known = false;
        }
    } else {
        KL_TRY(want_index(c, 1, false, "repeats"));
        int64_t n = in_ints(c, 1, rep, LIST_MAX);
        if (n < 0) {
            int64_t len = in_len(c, 1);
            if (len >= 0 && len != r)
                return kl_infer_fail(c, KILN_ERR_SHAPE, "repeats has %lld entries for rank %d",
                                     (long long)len, r);
            known = false;
        } else if (n != r) {
            return kl_infer_fail(c, KILN_ERR_SHAPE, "repeats has %lld entries for rank %d",
                                 (long long)n, r);
        }
    }
    kl_dim out[KILN_MAX_RANK];
    for (int k = 0; k < r; k++) {
        const kl_dim *d = &in->dims[k];
        int64_t v;
        if (!known)
            out[k] = kl_dim_unknown();
        else if (rep[k] < 0)
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "repeats entry %d is negative", k);
        else if (rep[k] == 1 || rep[k] == 0)
            out[k] = rep[k] == 1 ? *d : kl_dim_known(0);
        else if (d->value >= 0 && !kl_mul_i64(d->value, rep[k], &v))
            out[k] = kl_dim_known(v);
        else
            out[k] = kl_dim_unknown();
    }
    return set_out(c, 0, dt, out, r);
}

/* ---- Pad, CenterCropPad ------------------------------------------------------------ */

/* Pad: each listed axis grows by its begin and end pads (may be negative). */
static kiln_status infer_pad(kl_infer_ctx *c) {
    static const char *const m11[] = {"constant", "reflect", "edge", NULL};
    static const char *const m19[] = {"constant", "reflect", "edge", "wrap", NULL};
    KL_TRY(want_string(c, "mode", opset(c) >= 19 ? m19 : m11));
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    const kl_shape *in = ishape(c, 0);
    int64_t pads[LIST_MAX], np = -1, axes[LIST_MAX], na = -1;
    if (opset(c) < 11) {
        const int64_t *v;
        np = kl_node_attr_ints(c->node, opset(c) < 2 ? "paddings" : "pads", &v);
        if (np > LIST_MAX) np = -1;
        for (int64_t k = 0; k < np; k++) pads[k] = v[k];
    } else {
        KL_TRY(want_index(c, 1, false, "pads"));
        np = in_ints(c, 1, pads, LIST_MAX);
        if (opset(c) >= 18 && kl_infer_has_input(c, 3)) {
            KL_TRY(want_index(c, 3, true, "axes"));
            na = in_ints(c, 3, axes, LIST_MAX);
            if (na < 0) return set_out_rank(c, 0, dt, in ? in->rank : -1);
        }
    }
    if (!in) return set_out(c, 0, dt, NULL, -1);
    int r = in->rank, an[KILN_MAX_RANK];
    if (na < 0) {
        na = r;
        for (int k = 0; k < r; k++) axes[k] = k;
    }
    KL_TRY(norm_axes(c, axes, na, r, "'axes'", an));
    int64_t plen = np >= 0 ? np : in_len(c, 1);
    if (plen >= 0 && plen != 2 * na)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "pads has %lld entries, expected %lld",
                             (long long)plen, (long long)(2 * na));
    kl_dim out[KILN_MAX_RANK];
    memcpy(out, in->dims, (size_t)r * sizeof *out);
    for (int64_t k = 0; k < na; k++) {
        int a = an[k];
        const kl_dim *d = &in->dims[a];
        int64_t v;
        if (np < 0)
            out[a] = kl_dim_unknown();
        else if (pads[k] == 0 && pads[k + na] == 0)
            out[a] = *d;
        else if (d->value < 0 || kl_add_i64(d->value, pads[k], &v) ||
                 kl_add_i64(v, pads[k + na], &v))
            out[a] = kl_dim_unknown();
        else if (v < 0)
            return kl_infer_fail(c, KILN_ERR_SHAPE,
                                 "pads make axis %d of size %lld negative (%lld)", a,
                                 (long long)d->value, (long long)v);
        else
            out[a] = kl_dim_known(v);
    }
    return set_out(c, 0, dt, out, r);
}

/* CenterCropPad: the listed axes take the sizes given by input 1. */
static kiln_status infer_center_crop_pad(kl_infer_ctx *c) {
    KL_TRY(want_index(c, 1, true, "shape"));
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    const kl_shape *in = ishape(c, 0);
    if (!in) return set_out(c, 0, dt, NULL, -1);
    int r = in->rank, an[KILN_MAX_RANK];
    int64_t axes[KILN_MAX_RANK], na;
    const int64_t *v;
    na = kl_node_attr_ints(c->node, "axes", &v);
    if (na > r)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "%lld axes for rank %d", (long long)na, r);
    if (na < 0) {
        na = r;
        for (int k = 0; k < r; k++) axes[k] = k;
    } else {
        for (int64_t k = 0; k < na; k++) axes[k] = v[k];
    }
    KL_TRY(norm_axes(c, axes, na, r, "'axes'", an));
    el t[LIST_MAX];
    int64_t n = in_elems(c, 1, t, LIST_MAX, NULL), len = n >= 0 ? n : in_len(c, 1);
    if (len >= 0 && len != na)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "shape has %lld entries for %lld axes",
                             (long long)len, (long long)na);
    kl_dim out[KILN_MAX_RANK];
    memcpy(out, in->dims, (size_t)r * sizeof *out);
    for (int64_t k = 0; k < na; k++) out[an[k]] = n >= 0 ? el_to_dim(&t[k]) : kl_dim_unknown();
    return set_out(c, 0, dt, out, r);
}

/* ---- Resize, Upsample ------------------------------------------------------------ */

/* Output size of a dimension scaled by s: floor(d * s), symbols kept at 1. */
static kl_dim scale_dim(const kl_dim *d, double s) {
    if (s == 1.0) return *d;
    if (d->value < 0) return kl_dim_unknown();
    double v = floor((double)d->value * s);
    return v >= 0 && v < 9.0e18 ? kl_dim_known((int64_t)v) : kl_dim_unknown();
}

/* Resize: sizes or scales (constant) over all axes or `axes` (opset 18),
 * with keep_aspect_ratio_policy; same rank, unknown dims otherwise. */
static kiln_status infer_resize(kl_infer_ctx *c) {
    static const char *const modes10[] = {"nearest", "linear", NULL};
    static const char *const modes[] = {"nearest", "linear", "cubic", NULL};
    static const char *const ctm[] = {
        "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
        "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize", NULL};
    static const char *const nm[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil",
                                     NULL};
    static const char *const kar[] = {"stretch", "not_larger", "not_smaller", NULL};
    KL_TRY(want_string(c, "mode", opset(c) >= 11 ? modes : modes10));
    KL_TRY(want_string(c, "coordinate_transformation_mode", ctm));
    KL_TRY(want_string(c, "nearest_mode", nm));
    KL_TRY(want_string(c, "keep_aspect_ratio_policy", kar));
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    const kl_shape *in = ishape(c, 0);
    size_t si = opset(c) >= 11 ? 2 : 1, zi = 3;
    double sc[LIST_MAX];
    int64_t sz[LIST_MAX];
    int64_t nsc = in_floats(c, si, sc, LIST_MAX), nsz = -1;
    if (opset(c) >= 11 && kl_infer_has_input(c, zi)) {
        KL_TRY(want_index(c, zi, false, "sizes"));
        nsz = in_ints(c, zi, sz, LIST_MAX);
    }
    int64_t lsc = kl_infer_has_input(c, si) ? (nsc >= 0 ? nsc : in_len(c, si)) : 0;
    int64_t lsz =
        kl_infer_has_input(c, zi) && opset(c) >= 11 ? (nsz >= 0 ? nsz : in_len(c, zi)) : 0;
    if (lsc > 0 && lsz > 0)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "only one of 'scales' and 'sizes' may be given");
    if (lsc == 0 && lsz == 0)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "one of 'scales' and 'sizes' must be given");
    if (!in) return set_out(c, 0, dt, NULL, -1);
    int r = in->rank, an[KILN_MAX_RANK];
    int64_t axes[KILN_MAX_RANK], na = -1;
    const int64_t *av;
    if (opset(c) >= 18) na = kl_node_attr_ints(c->node, "axes", &av);
    if (na > r)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "%lld axes for rank %d", (long long)na, r);
    if (na < 0) {
        na = r;
        for (int k = 0; k < r; k++) axes[k] = k;
    } else {
        for (int64_t k = 0; k < na; k++) axes[k] = av[k];
    }
    KL_TRY(norm_axes(c, axes, na, r, "'axes'", an));
    int64_t given = lsc > 0 ? lsc : lsz;
    if (given > 0 && given != na)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "%s has %lld entries, expected %lld",
                             lsc > 0 ? "scales" : "sizes", (long long)given, (long long)na);
    kl_dim out[KILN_MAX_RANK];
    memcpy(out, in->dims, (size_t)r * sizeof *out);
    if (lsc > 0 && nsc > 0) {
        for (int64_t k = 0; k < na; k++) {
            if (!(sc[k] > 0))
                return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "scales must be positive");
            out[an[k]] = scale_dim(&in->dims[an[k]], sc[k]);
        }
    } else if (lsz > 0 && nsz > 0) {
        const char *pol = kl_node_attr_string(c->node, "keep_aspect_ratio_policy", "stretch");
        bool stretch = opset(c) < 18 || strcmp(pol, "stretch") == 0;
        double s = strcmp(pol, "not_larger") == 0 ? INFINITY : 0.0;
        for (int64_t k = 0; k < na; k++) {
            if (sz[k] < 0)
                return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "sizes must not be negative");
            const kl_dim *d = &in->dims[an[k]];
            if (stretch) {
                out[an[k]] = kl_dim_known(sz[k]);
                continue;
            }
            if (d->value <= 0) {
                s = NAN;
                break;
            }
            double q = (double)sz[k] / (double)d->value;
            s = strcmp(pol, "not_larger") == 0 ? fmin(s, q) : fmax(s, q);
        }
        for (int64_t k = 0; !stretch && k < na; k++) {
            const kl_dim *d = &in->dims[an[k]];
            double v = round(s * (double)d->value);
            out[an[k]] = v >= 0 && v < 9.0e18 ? kl_dim_known((int64_t)v) : kl_dim_unknown();
        }
    } else {
        for (int64_t k = 0; k < na; k++) out[an[k]] = kl_dim_unknown();
    }
    return set_out(c, 0, dt, out, r);
}

/* Upsample: dims scaled by `scales` (input from 9, attribute 7-8, height and
 * width scales of an NCHW input at opset 1). */
static kiln_status infer_upsample(kl_infer_ctx *c) {
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    const kl_shape *in = ishape(c, 0);
    if (!in) return set_out(c, 0, dt, NULL, -1);
    int r = in->rank;
    double sc[LIST_MAX];
    int64_t n = -1;
    if (opset(c) < 7) {
        if (r != 4) return kl_infer_fail(c, KILN_ERR_SHAPE, "input must have rank 4, not %d", r);
        sc[0] = sc[1] = 1.0;
        sc[2] = kl_node_attr_float(c->node, "height_scale", 1.0f);
        sc[3] = kl_node_attr_float(c->node, "width_scale", 1.0f);
        n = 4;
    } else if (opset(c) < 9) {
        const kl_attr *a = kl_node_attr(c->node, "scales");
        if (a && a->type == KL_ATTR_FLOATS && a->n <= LIST_MAX) {
            n = (int64_t)a->n;
            for (int64_t k = 0; k < n; k++) sc[k] = a->floats[k];
        }
    } else {
        n = in_floats(c, 1, sc, LIST_MAX);
        if (n < 0 && in_len(c, 1) >= 0 && in_len(c, 1) != r)
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "scales has %lld entries for rank %d",
                                 (long long)in_len(c, 1), r);
    }
    if (n >= 0 && n != r)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "scales has %lld entries for rank %d",
                             (long long)n, r);
    kl_dim out[KILN_MAX_RANK];
    for (int k = 0; k < r; k++) {
        if (n >= 0 && !(sc[k] > 0))
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "scales must be positive");
        out[k] = n < 0 ? kl_dim_unknown() : scale_dim(&in->dims[k], sc[k]);
    }
    return set_out(c, 0, dt, out, r);
}

/* ---- DepthToSpace, SpaceToDepth ------------------------------------------------------ */

/* The blocksize attribute (> 0) and a rank-4 input. */
static kiln_status block_args(kl_infer_ctx *c, const kl_shape *in, int64_t *b) {
    int64_t bb;
    *b = kl_node_attr_int(c->node, "blocksize", 0);
    if (*b <= 0 || kl_mul_i64(*b, *b, &bb))
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "blocksize must be positive and small, not %lld", (long long)*b);
    if (in && in->rank != 4)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "input must have rank 4, not %d", in->rank);
    return KILN_OK;
}

/* d * m (m > 0) as a dim: symbols kept when m is 1. */
static kl_dim dim_mul(const kl_dim *d, int64_t m) {
    int64_t v;
    if (m == 1) return *d;
    if (d->value < 0 || kl_mul_i64(d->value, m, &v)) return kl_dim_unknown();
    return kl_dim_known(v);
}

/* d / m (m > 0) as a dim; *bad when a known size is not divisible. */
static kl_dim dim_div(const kl_dim *d, int64_t m, bool *bad) {
    if (m == 1) return *d;
    if (d->value < 0) return kl_dim_unknown();
    if (d->value % m) *bad = true;
    return kl_dim_known(d->value / m);
}

/* DepthToSpace: [N, C/b^2, H*b, W*b]. */
static kiln_status infer_depth_to_space(kl_infer_ctx *c) {
    static const char *const modes[] = {"DCR", "CRD", NULL};
    KL_TRY(want_string(c, "mode", modes));
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    const kl_shape *in = ishape(c, 0);
    int64_t b;
    KL_TRY(block_args(c, in, &b));
    if (!in) return set_out_rank(c, 0, dt, 4);
    bool bad = false;
    kl_dim out[4] = {in->dims[0], dim_div(&in->dims[1], b * b, &bad), dim_mul(&in->dims[2], b),
                     dim_mul(&in->dims[3], b)};
    if (bad)
        return kl_infer_fail(c, KILN_ERR_SHAPE,
                             "channels %lld are not divisible by blocksize^2 = %lld",
                             (long long)in->dims[1].value, (long long)(b * b));
    return set_out(c, 0, dt, out, 4);
}

/* SpaceToDepth: [N, C*b^2, H/b, W/b]. */
static kiln_status infer_space_to_depth(kl_infer_ctx *c) {
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    const kl_shape *in = ishape(c, 0);
    int64_t b;
    KL_TRY(block_args(c, in, &b));
    if (!in) return set_out_rank(c, 0, dt, 4);
    bool bad = false;
    kl_dim out[4] = {in->dims[0], dim_mul(&in->dims[1], b * b), dim_div(&in->dims[2], b, &bad),
                     dim_div(&in->dims[3], b, &bad)};
    if (bad)
        return kl_infer_fail(c, KILN_ERR_SHAPE,
                             "height and width must be divisible by blocksize %lld", (long long)b);
    return set_out(c, 0, dt, out, 4);
}

/* ---- constants ---------------------------------------------------------------------- */

/* ConstantOfShape: shape from input 0 (symbols kept), type from `value`. */
static kiln_status infer_constant_of_shape(kl_infer_ctx *c) {
    KL_TRY(want_index(c, 0, false, "input"));
    const kl_attr *va = kl_node_attr(c->node, "value");
    const kl_tensor *val = va && va->type == KL_ATTR_TENSOR ? va->t : NULL;
    if (val && val->count != 1)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "attribute 'value' must have one element, not %lld",
                             (long long)val->count);
    kiln_dtype dt = val ? val->dtype : KILN_DTYPE_FLOAT;
    el t[LIST_MAX];
    int64_t n = in_elems_ex(c, 0, t, LIST_MAX, NULL, true);
    if (n < 0) {
        int64_t len = in_len(c, 0);
        return set_out_rank(c, 0, dt, len < 0 ? -1 : (int)KL_MIN(len, KILN_MAX_RANK + 1));
    }
    if (n > KILN_MAX_RANK) return set_out(c, 0, dt, NULL, (int)n);
    kl_dim out[KILN_MAX_RANK];
    for (int64_t k = 0; k < n; k++) {
        if (t[k].kind == EL_NUM && t[k].v < 0)
            return kl_infer_fail(c, KILN_ERR_SHAPE, "shape entry %lld is negative (%lld)",
                                 (long long)k, (long long)t[k].v);
        out[k] = el_to_dim(&t[k]);
    }
    KL_TRY(set_out(c, 0, dt, out, (int)n));
    int64_t fill = 0, count = n == 0 ? 1 : out[0].value;
    if (n > 1 || count < 0 || count > KL_SYMVAL_MAX || !kl_dtype_is_integer(dt)) return KILN_OK;
    if (val && !kl_tensor_to_i64(val, &fill, 1)) return KILN_OK;
    el v[KL_SYMVAL_MAX];
    for (int64_t k = 0; k < count; k++) v[k] = el_num(fill);
    return set_sym(c, 0, (int)n, v, count);
}

/* Constant: type from whichever value attribute is set (exactly one);
 * small integer values also become the output's symval. */
static kiln_status infer_constant(kl_infer_ctx *c) {
    const kl_attr *set = NULL;
    static const char *const names[] = {"value",        "sparse_value", "value_float",
                                        "value_floats", "value_int",    "value_ints",
                                        "value_string", "value_strings"};
    for (size_t k = 0; k < KL_ARRAY_LEN(names); k++) {
        const kl_attr *a = kl_node_attr(c->node, names[k]);
        if (!a) continue;
        if (set)
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                                 "attributes '%s' and '%s' are both set; exactly one must be",
                                 set->name, a->name);
        set = a;
    }
    if (!set)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "no value attribute is set; exactly one must be");
    kl_dim dims[KILN_MAX_RANK];
    el v[KL_SYMVAL_MAX];
    int64_t vals[KL_SYMVAL_MAX];
    const kl_tensor *t = NULL;
    kiln_dtype dt = KILN_DTYPE_UNDEFINED;
    int rank = 0;
    switch (set->type) {
    case KL_ATTR_TENSOR:
        t = set->t;
        if (!t || (t->rank > 0 && !t->dims)) return KILN_OK;
        if (t->rank > KILN_MAX_RANK) return set_out(c, 0, t->dtype, NULL, t->rank);
        rank = t->rank;
        dt = t->dtype;
        for (int k = 0; k < rank; k++) dims[k] = kl_dim_known(t->dims[k]);
        break;
    case KL_ATTR_SPARSE_TENSOR:
        if (!set->sparse || !set->sparse->values || (set->sparse->rank > 0 && !set->sparse->dims))
            return KILN_OK;
        if (set->sparse->rank > KILN_MAX_RANK)
            return set_out(c, 0, set->sparse->values->dtype, NULL, set->sparse->rank);
        rank = set->sparse->rank;
        dt = set->sparse->values->dtype;
        for (int k = 0; k < rank; k++) dims[k] = kl_dim_known(set->sparse->dims[k]);
        return set_out(c, 0, dt, dims, rank);
    case KL_ATTR_FLOAT: dt = KILN_DTYPE_FLOAT; break;
    case KL_ATTR_INT: dt = KILN_DTYPE_INT64; break;
    case KL_ATTR_STRING: dt = KILN_DTYPE_STRING; break;
    case KL_ATTR_FLOATS:
        dt = KILN_DTYPE_FLOAT;
        rank = 1;
        break;
    case KL_ATTR_INTS:
        dt = KILN_DTYPE_INT64;
        rank = 1;
        break;
    case KL_ATTR_STRINGS:
        dt = KILN_DTYPE_STRING;
        rank = 1;
        break;
    default:
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "attribute '%s' has the wrong type",
                             set->name);
    }
    if (set->type != KL_ATTR_TENSOR && rank == 1) dims[0] = kl_dim_known((int64_t)set->n);
    KL_TRY(set_out(c, 0, dt, dims, rank));
    int64_t n = 0;
    if (set->type == KL_ATTR_INT) {
        v[0] = el_num(set->i);
        return set_sym(c, 0, 0, v, 1);
    }
    if (set->type == KL_ATTR_INTS && set->n <= KL_SYMVAL_MAX) {
        for (size_t k = 0; k < set->n; k++) v[k] = el_num(set->ints[k]);
        return set_sym(c, 0, 1, v, (int64_t)set->n);
    }
    if (t && rank <= 1 && kl_dtype_is_integer(dt) && t->count <= KL_SYMVAL_MAX &&
        kl_tensor_to_i64(t, vals, KL_SYMVAL_MAX)) {
        n = t->count;
        for (int64_t k = 0; k < n; k++) v[k] = el_num(vals[k]);
        return set_sym(c, 0, rank, v, n);
    }
    return KILN_OK;
}

/* Scalar input i as a number *x (true) or, failing that, its symval
 * element *e (false). */
static bool range_arg(kl_infer_ctx *c, size_t i, double *x, el *e) {
    const kl_tensor *t = kl_infer_input_const(c, i);
    *e = el_unknown();
    if (t) {
        if (t->count != 1) return false;
        *x = kl_tensor_get_f64(t, 0);
        if (kl_dtype_is_integer(t->dtype) && !kl_infer_input_ints(c, i, &e->v, 1, &(int64_t){0}))
            return false;
        e->kind = kl_dtype_is_integer(t->dtype) ? EL_NUM : EL_UNKNOWN;
        return true;
    }
    el v[1];
    if (in_elems(c, i, v, 1, NULL) != 1) return false;
    *e = v[0];
    *x = (double)v[0].v;
    return v[0].kind == EL_NUM;
}

/* Range: [max(ceil((limit - start) / delta), 0)]; Range(0, n, 1) has n's
 * symbol; small integer ranges become symvals. */
static kiln_status infer_range(kl_infer_ctx *c) {
    KL_TRY(want_same_type(c, 0, 1));
    KL_TRY(want_same_type(c, 0, 2));
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    if (dt == KILN_DTYPE_UNDEFINED) dt = kl_infer_input_dtype(c, 1);
    if (dt == KILN_DTYPE_UNDEFINED) dt = kl_infer_input_dtype(c, 2);
    double s = 0, l = 0, d = 0;
    el es, el_lim, ed;
    bool ks = range_arg(c, 0, &s, &es), kl = range_arg(c, 1, &l, &el_lim),
         kd = range_arg(c, 2, &d, &ed);
    kl_dim out = kl_dim_unknown();
    if (kd && d == 0) return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "delta must not be 0");
    if (ks && kl && kd) {
        double n;
        if (dt == KILN_DTYPE_FLOAT)
            n = ceil((double)(((float)l - (float)s) / (float)d));
        else
            n = ceil((l - s) / d);
        if (n < 0) n = 0;
        if (n < 9.0e18) out = kl_dim_known((int64_t)n);
    } else if (ks && kd && s == 0 && d == 1 && el_lim.kind == EL_NAME) {
        out = el_to_dim(&el_lim);
    }
    KL_TRY(set_out(c, 0, dt, &out, 1));
    if (!kl_dtype_is_integer(dt) || out.value < 0 || out.value > KL_SYMVAL_MAX) return KILN_OK;
    el v[KL_SYMVAL_MAX];
    for (int64_t k = 0, x = es.v; k < out.value; k++) {
        v[k] = el_num(x);
        if (k + 1 < out.value && kl_add_i64(x, ed.v, &x)) return KILN_OK;
    }
    return set_sym(c, 0, 1, v, out.value);
}

/* EyeLike: the 2-D input's shape, type from `dtype` or the input. */
static kiln_status infer_eye_like(kl_infer_ctx *c) {
    const kl_shape *in = ishape(c, 0);
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    const kl_attr *a = kl_node_attr(c->node, "dtype");
    if (a) {
        dt = kl_infer_dtype_from_attr(a->i);
        if (dt == KILN_DTYPE_UNDEFINED)
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                                 "attribute 'dtype' = %lld is not a type", (long long)a->i);
    }
    if (in && in->rank != 2)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "input must have rank 2, not %d", in->rank);
    return in ? set_out(c, 0, dt, in->dims, 2) : set_out_rank(c, 0, dt, 2);
}

/* ---- data-dependent shapes ------------------------------------------------------------ */

/* NonZero: int64 [rank, ?]. */
static kiln_status infer_non_zero(kl_infer_ctx *c) {
    const kl_shape *in = ishape(c, 0);
    kl_dim out[2] = {in ? kl_dim_known(in->rank) : kl_dim_unknown(), kl_dim_unknown()};
    return set_out(c, 0, KILN_DTYPE_INT64, out, 2);
}

/* Compress: the selected slices along `axis`, or a 1-D result without one;
 * the length is known when the condition is a constant. */
static kiln_status infer_compress(kl_infer_ctx *c) {
    kiln_dtype dt = kl_infer_input_dtype(c, 0), ct = kl_infer_input_dtype(c, 1);
    if (ct != KILN_DTYPE_UNDEFINED && ct != KILN_DTYPE_BOOL)
        return kl_infer_fail(c, KILN_ERR_TYPE, "condition must be bool, not %s",
                             kiln_dtype_name(ct));
    const kl_shape *in = ishape(c, 0), *cs = ishape(c, 1);
    if (cs && cs->rank != 1)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "condition must have rank 1, not %d", cs->rank);
    const kl_attr *axis_attr = kl_node_attr(c->node, "axis");
    int axis = -1;
    if (in && axis_attr) KL_TRY(norm_axis(c, axis_attr->i, in->rank, "attribute 'axis'", &axis));
    const kl_tensor *cond = kl_infer_input_const(c, 1);
    int64_t limit = -1;
    if (in && axis >= 0)
        limit = in->dims[axis].value;
    else if (in) {
        symprod p = prod_range(in, 0, in->rank);
        if (prod_known(&p)) limit = p.coef;
    }
    kl_dim len = kl_dim_unknown();
    if (cond && limit >= 0) {
        int64_t n = 0;
        for (int64_t k = 0; k < cond->count && k < limit; k++) n += kl_tensor_get_f64(cond, k) != 0;
        len = kl_dim_known(n);
    }
    if (!axis_attr) return set_out(c, 0, dt, &len, 1);
    if (!in) return set_out(c, 0, dt, NULL, -1);
    kl_dim out[KILN_MAX_RANK];
    memcpy(out, in->dims, (size_t)in->rank * sizeof *out);
    out[axis] = len;
    return set_out(c, 0, dt, out, in->rank);
}

/* Unique: Y (1-D, or the input with an unknown `axis` dim), indices and
 * counts [?], inverse_indices [input size or axis dim]. */
static kiln_status infer_unique(kl_infer_ctx *c) {
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    const kl_shape *in = ishape(c, 0);
    const kl_attr *axis_attr = kl_node_attr(c->node, "axis");
    kl_dim u = kl_dim_unknown(), inv = kl_dim_unknown();
    if (!axis_attr) {
        KL_TRY(set_out(c, 0, dt, &u, 1));
        if (in) {
            symprod p = prod_range(in, 0, in->rank);
            inv = prod_dim(&p);
        }
    } else if (in) {
        int axis;
        KL_TRY(norm_axis(c, axis_attr->i, in->rank, "attribute 'axis'", &axis));
        kl_dim out[KILN_MAX_RANK];
        memcpy(out, in->dims, (size_t)in->rank * sizeof *out);
        out[axis] = u;
        inv = in->dims[axis];
        KL_TRY(set_out(c, 0, dt, out, in->rank));
    } else {
        KL_TRY(set_out(c, 0, dt, NULL, -1));
    }
    KL_TRY(set_out(c, 1, KILN_DTYPE_INT64, &u, 1));
    KL_TRY(set_out(c, 2, KILN_DTYPE_INT64, &inv, 1));
    return set_out(c, 3, KILN_DTYPE_INT64, &u, 1);
}

/* ---- shape-preserving ops ----------------------------------------------------------------- */

/* Trilu: same as the input (rank >= 2); k must be int64. */
static kiln_status infer_trilu(kl_infer_ctx *c) {
    KL_TRY(want_index(c, 1, false, "k"));
    const kl_shape *in = ishape(c, 0);
    if (in && in->rank < 2)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "input must have rank >= 2, not %d", in->rank);
    return kl_infer_unary(c);
}

/* ReverseSequence: same as the input; batch_axis and time_axis are 0 and 1. */
static kiln_status infer_reverse_sequence(kl_infer_ctx *c) {
    int64_t b = kl_node_attr_int(c->node, "batch_axis", 1),
            t = kl_node_attr_int(c->node, "time_axis", 0);
    if ((b != 0 && b != 1) || (t != 0 && t != 1) || b == t)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "batch_axis (%lld) and time_axis (%lld) must be 0 and 1", (long long)b,
                             (long long)t);
    const kl_shape *in = ishape(c, 0);
    if (in && in->rank < 2)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "input must have rank >= 2, not %d", in->rank);
    return kl_infer_unary(c);
}

/* OneHot: the indices' shape with `depth` inserted at `axis`; the values'
 * element type. */
static kiln_status infer_one_hot(kl_infer_ctx *c) {
    kiln_dtype dt = kl_infer_input_dtype(c, 2);
    const kl_shape *in = ishape(c, 0), *vs = ishape(c, 2);
    if (vs && (vs->rank != 1 || (vs->dims[0].value >= 0 && vs->dims[0].value != 2)))
        return kl_infer_fail(c, KILN_ERR_SHAPE, "values must have shape [2]");
    const kl_tensor *dep = kl_infer_input_const(c, 1);
    kl_dim depth = kl_dim_unknown();
    if (dep && dep->count == 1) {
        double v = kl_tensor_get_f64(dep, 0);
        if (!(v >= 1) || v > 9.0e18)
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "depth must be >= 1, not %g", v);
        depth = kl_dim_known((int64_t)v);
    }
    if (!in) return set_out(c, 0, dt, NULL, -1);
    int r = in->rank + 1, axis;
    if (r > KILN_MAX_RANK) return set_out(c, 0, dt, NULL, r);
    KL_TRY(norm_axis(c, kl_node_attr_int(c->node, "axis", -1), r, "attribute 'axis'", &axis));
    kl_dim out[KILN_MAX_RANK];
    for (int k = 0, i = 0; k < r; k++) out[k] = k == axis ? depth : in->dims[i++];
    return set_out(c, 0, dt, out, r);
}

/* ---- schemas ---------------------------------------------------------------------------- */

#define A_INT(n)                                                                                   \
    { n, KL_ATTR_INT, false }
#define A_INTS(n)                                                                                  \
    { n, KL_ATTR_INTS, false }
#define A_FLOAT(n)                                                                                 \
    { n, KL_ATTR_FLOAT, false }
#define A_STR(n)                                                                                   \
    { n, KL_ATTR_STRING, false }
#define A_END                                                                                      \
    { NULL, KL_ATTR_UNDEFINED, false }

static const kl_attr_spec attrs_none[] = {A_END};
static const kl_attr_spec attrs_axis[] = {A_INT("axis"), A_END};
static const kl_attr_spec attrs_axis_req[] = {{"axis", KL_ATTR_INT, true}, A_END};
static const kl_attr_spec attrs_axes[] = {A_INTS("axes"), A_END};
static const kl_attr_spec attrs_axes_req[] = {{"axes", KL_ATTR_INTS, true}, A_END};
static const kl_attr_spec attrs_perm[] = {A_INTS("perm"), A_END};
static const kl_attr_spec attrs_reshape1[] = {A_INTS("consumed_inputs"), A_INTS("shape"), A_END};
static const kl_attr_spec attrs_reshape14[] = {A_INT("allowzero"), A_END};
static const kl_attr_spec attrs_split1[] = {A_INT("axis"), A_INTS("split"), A_END};
static const kl_attr_spec attrs_split18[] = {A_INT("axis"), A_INT("num_outputs"), A_END};
static const kl_attr_spec attrs_slice1[] = {
    A_INTS("axes"), {"ends", KL_ATTR_INTS, true}, {"starts", KL_ATTR_INTS, true}, A_END};
static const kl_attr_spec attrs_batch_dims[] = {A_INT("batch_dims"), A_END};
static const kl_attr_spec attrs_reduction[] = {A_STR("reduction"), A_END};
static const kl_attr_spec attrs_axis_reduction[] = {A_INT("axis"), A_STR("reduction"), A_END};
static const kl_attr_spec attrs_tensor_scatter[] = {A_INT("axis"), A_STR("mode"), A_END};
static const kl_attr_spec attrs_shape15[] = {A_INT("end"), A_INT("start"), A_END};
static const kl_attr_spec attrs_pad1[] = {
    A_STR("mode"), {"paddings", KL_ATTR_INTS, true}, A_FLOAT("value"), A_END};
static const kl_attr_spec attrs_pad2[] = {
    A_STR("mode"), {"pads", KL_ATTR_INTS, true}, A_FLOAT("value"), A_END};
static const kl_attr_spec attrs_mode[] = {A_STR("mode"), A_END};
static const kl_attr_spec attrs_resize11[] = {A_STR("coordinate_transformation_mode"),
                                              A_FLOAT("cubic_coeff_a"),
                                              A_INT("exclude_outside"),
                                              A_FLOAT("extrapolation_value"),
                                              A_STR("mode"),
                                              A_STR("nearest_mode"),
                                              A_END};
static const kl_attr_spec attrs_resize18[] = {A_INT("antialias"),
                                              A_INTS("axes"),
                                              A_STR("coordinate_transformation_mode"),
                                              A_FLOAT("cubic_coeff_a"),
                                              A_INT("exclude_outside"),
                                              A_FLOAT("extrapolation_value"),
                                              A_STR("keep_aspect_ratio_policy"),
                                              A_STR("mode"),
                                              A_STR("nearest_mode"),
                                              A_END};
static const kl_attr_spec attrs_upsample1[] = {{"height_scale", KL_ATTR_FLOAT, true},
                                               A_STR("mode"),
                                               {"width_scale", KL_ATTR_FLOAT, true},
                                               A_END};
static const kl_attr_spec attrs_upsample7[] = {
    A_STR("mode"), {"scales", KL_ATTR_FLOATS, true}, A_END};
static const kl_attr_spec attrs_blocksize[] = {{"blocksize", KL_ATTR_INT, true}, A_END};
static const kl_attr_spec attrs_d2s11[] = {{"blocksize", KL_ATTR_INT, true}, A_STR("mode"), A_END};
static const kl_attr_spec attrs_value[] = {{"value", KL_ATTR_TENSOR, false}, A_END};
static const kl_attr_spec attrs_const1[] = {{"value", KL_ATTR_TENSOR, true}, A_END};
static const kl_attr_spec attrs_const11[] = {
    {"sparse_value", KL_ATTR_SPARSE_TENSOR, false}, {"value", KL_ATTR_TENSOR, false}, A_END};
static const kl_attr_spec attrs_const12[] = {{"sparse_value", KL_ATTR_SPARSE_TENSOR, false},
                                             {"value", KL_ATTR_TENSOR, false},
                                             A_FLOAT("value_float"),
                                             {"value_floats", KL_ATTR_FLOATS, false},
                                             A_INT("value_int"),
                                             A_INTS("value_ints"),
                                             A_STR("value_string"),
                                             {"value_strings", KL_ATTR_STRINGS, false},
                                             A_END};
static const kl_attr_spec attrs_upper[] = {A_INT("upper"), A_END};
static const kl_attr_spec attrs_reverse_seq[] = {A_INT("batch_axis"), A_INT("time_axis"), A_END};
static const kl_attr_spec attrs_eye_like[] = {A_INT("dtype"), A_INT("k"), A_END};
static const kl_attr_spec attrs_unique[] = {A_INT("axis"), A_INT("sorted"), A_END};

/* Rows: domain, name, since, until, inputs min/max, outputs min/max, attrs,
 * infer.  A new row wherever inputs, attributes or their meaning changed;
 * versions that only added element types share a row. */
const kl_op_schema kl_ops_tensor[] = {
    {"", "Shape", 1, 14, 1, 1, 1, 1, attrs_none, infer_shape},
    {"", "Shape", 15, 0, 1, 1, 1, 1, attrs_shape15, infer_shape},
    {"", "Size", 1, 0, 1, 1, 1, 1, attrs_none, infer_size},
    {"", "Reshape", 1, 4, 1, 1, 1, 1, attrs_reshape1, infer_reshape},
    {"", "Reshape", 5, 13, 2, 2, 1, 1, attrs_none, infer_reshape},
    {"", "Reshape", 14, 0, 2, 2, 1, 1, attrs_reshape14, infer_reshape},
    {"", "Flatten", 1, 10, 1, 1, 1, 1, attrs_axis, infer_flatten},
    {"", "Flatten", 11, 0, 1, 1, 1, 1, attrs_axis, infer_flatten},
    {"", "Transpose", 1, 0, 1, 1, 1, 1, attrs_perm, infer_transpose},
    {"", "Concat", 1, 3, 1, -1, 1, 1, attrs_axis, infer_concat},
    {"", "Concat", 4, 10, 1, -1, 1, 1, attrs_axis_req, infer_concat},
    {"", "Concat", 11, 0, 1, -1, 1, 1, attrs_axis_req, infer_concat},
    {"", "Split", 1, 1, 1, 2, 1, -1, attrs_split1, infer_split},
    {"", "Split", 2, 10, 1, 1, 1, -1, attrs_split1, infer_split},
    {"", "Split", 11, 12, 1, 1, 1, -1, attrs_split1, infer_split},
    {"", "Split", 13, 17, 1, 2, 1, -1, attrs_axis, infer_split},
    {"", "Split", 18, 0, 1, 2, 1, -1, attrs_split18, infer_split},
    {"", "Slice", 1, 9, 1, 1, 1, 1, attrs_slice1, infer_slice},
    {"", "Slice", 10, 10, 3, 5, 1, 1, attrs_none, infer_slice},
    {"", "Slice", 11, 0, 3, 5, 1, 1, attrs_none, infer_slice},
    {"", "Squeeze", 1, 10, 1, 1, 1, 1, attrs_axes, infer_squeeze},
    {"", "Squeeze", 11, 12, 1, 1, 1, 1, attrs_axes, infer_squeeze},
    {"", "Squeeze", 13, 0, 1, 2, 1, 1, attrs_none, infer_squeeze},
    {"", "Unsqueeze", 1, 10, 1, 1, 1, 1, attrs_axes_req, infer_unsqueeze},
    {"", "Unsqueeze", 11, 12, 1, 1, 1, 1, attrs_axes_req, infer_unsqueeze},
    {"", "Unsqueeze", 13, 0, 2, 2, 1, 1, attrs_none, infer_unsqueeze},
    {"", "Gather", 1, 10, 2, 2, 1, 1, attrs_axis, infer_gather},
    {"", "Gather", 11, 0, 2, 2, 1, 1, attrs_axis, infer_gather},
    {"", "GatherElements", 11, 0, 2, 2, 1, 1, attrs_axis, infer_gather_elements},
    {"", "GatherND", 11, 11, 2, 2, 1, 1, attrs_none, infer_gather_nd},
    {"", "GatherND", 12, 0, 2, 2, 1, 1, attrs_batch_dims, infer_gather_nd},
    {"", "Scatter", 9, 10, 3, 3, 1, 1, attrs_axis, infer_scatter_elements},
    {"", "ScatterElements", 11, 15, 3, 3, 1, 1, attrs_axis, infer_scatter_elements},
    {"", "ScatterElements", 16, 17, 3, 3, 1, 1, attrs_axis_reduction, infer_scatter_elements},
    {"", "ScatterElements", 18, 0, 3, 3, 1, 1, attrs_axis_reduction, infer_scatter_elements},
    {"", "ScatterND", 11, 15, 3, 3, 1, 1, attrs_none, infer_scatter_nd},
    {"", "ScatterND", 16, 17, 3, 3, 1, 1, attrs_reduction, infer_scatter_nd},
    {"", "ScatterND", 18, 0, 3, 3, 1, 1, attrs_reduction, infer_scatter_nd},
    {"", "TensorScatter", 24, 0, 2, 3, 1, 1, attrs_tensor_scatter, infer_tensor_scatter},
    {"", "Expand", 8, 0, 2, 2, 1, 1, attrs_none, infer_expand},
    {"", "Tile", 1, 5, 3, 3, 1, 1, attrs_none, infer_tile},
    {"", "Tile", 6, 0, 2, 2, 1, 1, attrs_none, infer_tile},
    {"", "Pad", 1, 1, 1, 1, 1, 1, attrs_pad1, infer_pad},
    {"", "Pad", 2, 10, 1, 1, 1, 1, attrs_pad2, infer_pad},
    {"", "Pad", 11, 17, 2, 3, 1, 1, attrs_mode, infer_pad},
    {"", "Pad", 18, 18, 2, 4, 1, 1, attrs_mode, infer_pad},
    {"", "Pad", 19, 0, 2, 4, 1, 1, attrs_mode, infer_pad},
    {"", "CenterCropPad", 18, 0, 2, 2, 1, 1, attrs_axes, infer_center_crop_pad},
    {"", "Resize", 10, 10, 2, 2, 1, 1, attrs_mode, infer_resize},
    {"", "Resize", 11, 12, 3, 4, 1, 1, attrs_resize11, infer_resize},
    {"", "Resize", 13, 17, 1, 4, 1, 1, attrs_resize11, infer_resize},
    {"", "Resize", 18, 18, 1, 4, 1, 1, attrs_resize18, infer_resize},
    {"", "Resize", 19, 0, 1, 4, 1, 1, attrs_resize18, infer_resize},
    {"", "Upsample", 1, 6, 1, 1, 1, 1, attrs_upsample1, infer_upsample},
    {"", "Upsample", 7, 8, 1, 1, 1, 1, attrs_upsample7, infer_upsample},
    {"", "Upsample", 9, 9, 2, 2, 1, 1, attrs_mode, infer_upsample},
    {"", "DepthToSpace", 1, 10, 1, 1, 1, 1, attrs_blocksize, infer_depth_to_space},
    {"", "DepthToSpace", 11, 0, 1, 1, 1, 1, attrs_d2s11, infer_depth_to_space},
    {"", "SpaceToDepth", 1, 0, 1, 1, 1, 1, attrs_blocksize, infer_space_to_depth},
    {"", "ConstantOfShape", 9, 0, 1, 1, 1, 1, attrs_value, infer_constant_of_shape},
    {"", "Constant", 1, 10, 0, 0, 1, 1, attrs_const1, infer_constant},
    {"", "Constant", 11, 11, 0, 0, 1, 1, attrs_const11, infer_constant},
    {"", "Constant", 12, 0, 0, 0, 1, 1, attrs_const12, infer_constant},
    {"", "Range", 11, 0, 3, 3, 1, 1, attrs_none, infer_range},
    {"", "EyeLike", 9, 0, 1, 1, 1, 1, attrs_eye_like, infer_eye_like},
    {"", "NonZero", 9, 0, 1, 1, 1, 1, attrs_none, infer_non_zero},
    {"", "Compress", 9, 10, 2, 2, 1, 1, attrs_axis, infer_compress},
    {"", "Compress", 11, 0, 2, 2, 1, 1, attrs_axis, infer_compress},
    {"", "Unique", 11, 0, 1, 1, 1, 4, attrs_unique, infer_unique},
    {"", "OneHot", 9, 10, 3, 3, 1, 1, attrs_axis, infer_one_hot},
    {"", "OneHot", 11, 0, 3, 3, 1, 1, attrs_axis, infer_one_hot},
    {"", "Trilu", 14, 0, 1, 2, 1, 1, attrs_upper, infer_trilu},
    {"", "ReverseSequence", 10, 0, 2, 2, 1, 1, attrs_reverse_seq, infer_reverse_sequence},
    {NULL, NULL, 0, 0, 0, 0, 0, 0, NULL, NULL},
};
