/*
 * CPU reference kernels: Einsum (numpy semantics: ellipsis broadcasting,
 * repeated labels take diagonals, implicit output = ellipsis dims then the
 * labels used once, in ASCII order; size-1 dims broadcast) and Det (LU with
 * partial pivoting in double).
 */
#include <math.h>
#include <string.h>

#include "cpu/ref/nn.h"

#define ES_LETTERS 52
#define ES_MAX_LABELS (ES_LETTERS + KILN_MAX_RANK)
#define ES_MAX_OPS 64

/* Label id of a letter: 'A'..'Z' = 0..25, 'a'..'z' = 26..51; -1 otherwise. */
static int es_label(char ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return 26 + (ch - 'a');
    return -1;
}

typedef struct es_term {
    int n;                   /* entries in lab */
    int lab[KILN_MAX_RANK];  /* label per entry; -1 marks the ellipsis */
    bool ell;
} es_term;

/* Parse [p, end) as one term: letters and at most one "...". */
static kiln_status es_term_parse(kl_kctx *c, const char *p, const char *end, es_term *t) {
    memset(t, 0, sizeof *t);
    while (p < end) {
        if (*p == ' ') {
            p++;
            continue;
        }
        if (t->n >= KILN_MAX_RANK)
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "equation term has more than %d subscripts", KILN_MAX_RANK);
        if (*p == '.') {
            if (t->ell || end - p < 3 || p[1] != '.' || p[2] != '.')
                return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "equation has a malformed or repeated ellipsis");
            t->ell = true;
            t->lab[t->n++] = -1;
            p += 3;
            continue;
        }
        int l = es_label(*p);
        if (l < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "equation has an invalid character '%c'", *p);
        t->lab[t->n++] = l;
        p++;
    }
    return KILN_OK;
}

typedef struct es_plan {
    int n_ops, n_out, n_sum, E;
    int out[ES_MAX_LABELS], sum[ES_MAX_LABELS];
    int64_t size[ES_MAX_LABELS];
    int64_t *st; /* [n_ops][ES_MAX_LABELS] element strides per label */
} es_plan;

/* Map the operands' dims onto labels, checking sizes, and fill st. */
static kiln_status es_bind(kl_kctx *c, es_plan *pl, const es_term *terms) {
    for (int l = 0; l < ES_MAX_LABELS; l++) pl->size[l] = -1;
    for (int k = 0; k < pl->n_ops; k++) {
        const kl_rt *t = c->in[k];
        const es_term *tm = &terms[k];
        int ne = t->rank - (tm->n - (tm->ell ? 1 : 0)), d = 0;
        int64_t strides[KILN_MAX_RANK];
        if (ne < 0 || (!tm->ell && ne != 0))
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "input %d has rank %d, which does not match its %d subscripts", k,
                                t->rank, tm->n - (tm->ell ? 1 : 0));
        kl_ref_strides(t->rank, t->dims, strides);
        for (int e = 0; e < tm->n; e++) {
            int cnt = tm->lab[e] < 0 ? ne : 1;
            for (int j = 0; j < cnt; j++, d++) {
                int l = tm->lab[e] < 0 ? ES_LETTERS + (pl->E - ne) + j : tm->lab[e];
                int64_t sz = t->dims[d];
                if (pl->size[l] < 0 || pl->size[l] == 1) {
                    if (pl->size[l] != 1 || sz != 1) pl->size[l] = sz;
                } else if (sz != pl->size[l] && sz != 1) {
                    return kl_kctx_fail(c, KILN_ERR_SHAPE,
                                        "input %d dimension %d has size %lld but the same subscript has size %lld", k,
                                        d, (long long)sz, (long long)pl->size[l]);
                }
            }
        }
    }
    for (int k = 0; k < pl->n_ops; k++) {
        const kl_rt *t = c->in[k];
        const es_term *tm = &terms[k];
        int ne = t->rank - (tm->n - (tm->ell ? 1 : 0)), d = 0;
        int64_t strides[KILN_MAX_RANK], *st = pl->st + (size_t)k * ES_MAX_LABELS;
        kl_ref_strides(t->rank, t->dims, strides);
        for (int e = 0; e < tm->n; e++) {
            int cnt = tm->lab[e] < 0 ? ne : 1;
            for (int j = 0; j < cnt; j++, d++) {
                int l = tm->lab[e] < 0 ? ES_LETTERS + (pl->E - ne) + j : tm->lab[e];
                if (t->dims[d] != 1 || pl->size[l] == 1) st[l] += strides[d];
            }
        }
    }
    return KILN_OK;
}

/* Output labels from the explicit right-hand side (or implicitly), and the
 * summed labels (used in inputs, absent from the output). */
static kiln_status es_outputs(kl_kctx *c, es_plan *pl, const es_term *terms, const char *rhs, const char *end) {
    int uses[ES_MAX_LABELS] = {0};
    bool in_out[ES_MAX_LABELS] = {0};
    for (int k = 0; k < pl->n_ops; k++)
        for (int e = 0; e < terms[k].n; e++)
            if (terms[k].lab[e] >= 0) uses[terms[k].lab[e]]++;
    for (int j = 0; j < pl->E; j++) uses[ES_LETTERS + j] = 1;
    pl->n_out = 0;
    if (rhs) {
        es_term o;
        KL_TRY(es_term_parse(c, rhs, end, &o));
        if (pl->E > 0 && !o.ell)
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL,
                                "the output subscripts need '...' for the inputs' broadcast dimensions");
        for (int e = 0; e < o.n; e++) {
            int cnt = o.lab[e] < 0 ? pl->E : 1;
            for (int j = 0; j < cnt; j++) {
                int l = o.lab[e] < 0 ? ES_LETTERS + j : o.lab[e];
                if (!uses[l] || in_out[l])
                    return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL,
                                        "output subscript '%c' is repeated or absent from the inputs",
                                        l < 26 ? 'A' + l : l < ES_LETTERS ? 'a' + l - 26 : '.');
                in_out[l] = true;
                pl->out[pl->n_out++] = l;
            }
        }
    } else {
        for (int j = 0; j < pl->E; j++) {
            in_out[ES_LETTERS + j] = true;
            pl->out[pl->n_out++] = ES_LETTERS + j;
        }
        for (int l = 0; l < ES_LETTERS; l++)
            if (uses[l] == 1) {
                in_out[l] = true;
                pl->out[pl->n_out++] = l;
            }
    }
    if (pl->n_out > KILN_MAX_RANK)
        return kl_kctx_fail(c, KILN_ERR_UNSUPPORTED, "output has more than %d dimensions", KILN_MAX_RANK);
    pl->n_sum = 0;
    for (int l = 0; l < ES_MAX_LABELS; l++)
        if (uses[l] && !in_out[l]) pl->sum[pl->n_sum++] = l;
    return KILN_OK;
}

/* out[o] = sum over the summed labels of the product of the operands, in
 * double (vf) or wrapping int64 (vi); the last summed label is the tight
 * inner loop. */
static void es_compute(const es_plan *pl, double *const *vf, int64_t *const *vi, int64_t count, double *of,
                       int64_t *oi) {
    int no = pl->n_out, nsu = pl->n_sum, K = pl->n_ops;
    int64_t oidx[KILN_MAX_RANK] = {0}, sidx[ES_MAX_LABELS], base[ES_MAX_OPS], off[ES_MAX_OPS], in_st[ES_MAX_OPS];
    int64_t nouter = 1, inner = nsu > 0 ? pl->size[pl->sum[nsu - 1]] : 1;
    for (int j = 0; j < nsu - 1; j++) nouter *= pl->size[pl->sum[j]];
    for (int k = 0; k < K; k++) {
        base[k] = 0;
        in_st[k] = nsu > 0 ? pl->st[(size_t)k * ES_MAX_LABELS + pl->sum[nsu - 1]] : 0;
    }
    for (int64_t o = 0; o < count; o++) {
        double accf = 0.0;
        uint64_t acci = 0;
        for (int k = 0; k < K; k++) off[k] = base[k];
        for (int j = 0; j < nsu; j++) sidx[j] = 0;
        for (int64_t s = 0; s < nouter && inner > 0; s++) {
            if (vf && K == 2) {
                const double *a = vf[0] + off[0], *b = vf[1] + off[1];
                int64_t sa = in_st[0], sb = in_st[1];
                for (int64_t i = 0; i < inner; i++) accf += a[i * sa] * b[i * sb];
            } else if (vf) {
                for (int64_t i = 0; i < inner; i++) {
                    double p = 1.0;
                    for (int k = 0; k < K; k++) p *= vf[k][off[k] + i * in_st[k]];
                    accf += p;
                }
            } else {
                for (int64_t i = 0; i < inner; i++) {
                    uint64_t p = 1;
                    for (int k = 0; k < K; k++) p *= (uint64_t)vi[k][off[k] + i * in_st[k]];
                    acci += p;
                }
            }
            for (int j = nsu - 2; j >= 0; j--) {
                int l = pl->sum[j];
                for (int k = 0; k < K; k++) off[k] += pl->st[(size_t)k * ES_MAX_LABELS + l];
                if (++sidx[j] < pl->size[l]) break;
                for (int k = 0; k < K; k++) off[k] -= pl->st[(size_t)k * ES_MAX_LABELS + l] * pl->size[l];
                sidx[j] = 0;
            }
        }
        if (of) of[o] = accf;
        else oi[o] = (int64_t)acci;
        for (int j = no - 1; j >= 0; j--) {
            int l = pl->out[j];
            for (int k = 0; k < K; k++) base[k] += pl->st[(size_t)k * ES_MAX_LABELS + l];
            if (++oidx[j] < pl->size[l]) break;
            for (int k = 0; k < K; k++) base[k] -= pl->st[(size_t)k * ES_MAX_LABELS + l] * pl->size[l];
            oidx[j] = 0;
        }
    }
}

kiln_status kl_nn_einsum(kl_kctx *c) {
    const char *eq = kl_node_attr_string(c->node, "equation", NULL);
    if (!eq) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'equation' is required");
    if (c->n_in < 1 || c->n_in > ES_MAX_OPS)
        return kl_kctx_fail(c, KILN_ERR_UNSUPPORTED, "Einsum takes 1 to %d inputs, got %zu", ES_MAX_OPS, c->n_in);
    es_term terms[ES_MAX_OPS];
    es_plan pl;
    memset(&pl, 0, sizeof pl);
    pl.n_ops = (int)c->n_in;
    const char *arrow = strstr(eq, "->"), *lend = arrow ? arrow : eq + strlen(eq), *p = eq;
    for (int k = 0; k < pl.n_ops; k++) {
        const kl_rt *t;
        KL_TRY(kl_nn_input(c, (size_t)k, "Inputs", true, &t));
        if (k > 0) KL_TRY(kl_nn_same_type(c, (size_t)k, "Inputs"));
        const char *q = memchr(p, ',', (size_t)(lend - p));
        if (!q) q = lend;
        if ((q == lend) != (k == pl.n_ops - 1))
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "equation '%s' does not have one term per input (%d)", eq,
                                pl.n_ops);
        KL_TRY(es_term_parse(c, p, q, &terms[k]));
        int ne = t->rank - (terms[k].n - (terms[k].ell ? 1 : 0));
        if (terms[k].ell && ne > pl.E) pl.E = ne;
        p = q + 1;
    }
    if (!kl_dtype_is_integer(c->in[0]->dtype) && !kl_nn_is_float(c->in[0]->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "Einsum does not take %s", kiln_dtype_name(c->in[0]->dtype));
    pl.st = kl_calloc((size_t)pl.n_ops * ES_MAX_LABELS, sizeof *pl.st);
    if (!pl.st) return KILN_ERR_NO_MEMORY;
    kiln_status s = es_bind(c, &pl, terms);
    if (!s) s = es_outputs(c, &pl, terms, arrow ? arrow + 2 : NULL, arrow ? eq + strlen(eq) : NULL);
    kl_rt *y = NULL;
    int64_t yd[KILN_MAX_RANK];
    for (int j = 0; !s && j < pl.n_out; j++) yd[j] = pl.size[pl.out[j]];
    if (!s) s = kl_kctx_output(c, 0, c->in[0]->dtype, pl.n_out, yd, &y);
    if (s || y->count == 0) {
        kl_nn_free(pl.st);
        return s;
    }
    bool isint = kl_dtype_is_integer(y->dtype);
    void *vals[ES_MAX_OPS] = {0};
    void *out = kl_nn_alloc(y->count, 8);
    s = out ? KILN_OK : KILN_ERR_NO_MEMORY;
    for (int k = 0; k < pl.n_ops && !s; k++)
        s = isint ? kl_nn_as_i64(c->in[k], (int64_t **)&vals[k]) : kl_nn_as_f64(c->in[k], (double **)&vals[k]);
    if (!s) {
        if (isint) {
            es_compute(&pl, NULL, (int64_t *const *)vals, y->count, NULL, out);
            for (int64_t i = 0; i < y->count; i++) kl_rt_set_i64(y, i, ((int64_t *)out)[i]);
        } else {
            es_compute(&pl, (double *const *)vals, NULL, y->count, out, NULL);
            kl_nn_store_f64(y, out);
        }
    }
    for (int k = 0; k < pl.n_ops; k++) kl_nn_free(vals[k]);
    kl_nn_free(out);
    kl_nn_free(pl.st);
    return s;
}

/* ---- Det ----------------------------------------------------------------------------------- */

kiln_status kl_nn_det(kl_kctx *c) {
    const kl_rt *x;
    KL_TRY(kl_nn_input(c, 0, "X", true, &x));
    if (x->rank < 2 || x->dims[x->rank - 1] != x->dims[x->rank - 2]) {
        char b[96];
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "X %s must be [*, M, M]", kl_rt_describe(x, b, sizeof b));
    }
    int64_t n = x->dims[x->rank - 1];
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank - 2, x->dims, &y));
    if (y->count == 0) return KILN_OK;
    double *a = kl_nn_alloc(n * n, sizeof *a);
    if (!a) return KILN_ERR_NO_MEMORY;
    for (int64_t b = 0; b < y->count; b++) {
        for (int64_t i = 0; i < n * n; i++) a[i] = kl_rt_get_f64(x, b * n * n + i);
        double det = 1.0;
        for (int64_t col = 0; col < n; col++) {
            int64_t piv = col;
            for (int64_t r = col + 1; r < n; r++)
                if (fabs(a[r * n + col]) > fabs(a[piv * n + col])) piv = r;
            if (a[piv * n + col] == 0.0) {
                det = 0.0;
                break;
            }
            if (piv != col) {
                for (int64_t j = 0; j < n; j++) {
                    double t = a[col * n + j];
                    a[col * n + j] = a[piv * n + j];
                    a[piv * n + j] = t;
                }
                det = -det;
            }
            double d = a[col * n + col];
            det *= d;
            for (int64_t r = col + 1; r < n; r++) {
                double f = a[r * n + col] / d;
                if (f == 0.0) continue;
                for (int64_t j = col; j < n; j++) a[r * n + j] -= f * a[col * n + j];
            }
        }
        kl_rt_set_f64(y, b, det);
    }
    kl_nn_free(a);
    return KILN_OK;
}
