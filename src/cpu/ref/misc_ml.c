/* CPU reference kernels, misc family: ai.onnx.ml operators on tensors
 * (ArrayFeatureExtractor, Binarizer, LabelEncoder 1/2/4, TreeEnsemble 5,
 * TreeEnsembleClassifier/Regressor 1/3, Scaler, Normalizer, Linear*,
 * Imputer, CategoryMapper, OneHotEncoder, FeatureVectorizer, SVM*). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/ref/misc.h"

/* ---- attribute helpers ---------------------------------------------------------------- */

static const kl_attr *attr_of(const kl_node *n, const char *name, kl_attr_type type) {
    const kl_attr *a = kl_node_attr(n, name);
    return a && a->type == type ? a : NULL;
}

/* FLOATS attribute `name`, or TENSOR attribute `name`_as_tensor, as a new
 * double array; *n = -1 (and *out NULL) when neither is present. */
static kiln_status attr_values(const kl_node *nd, const char *name, double **out, int64_t *n) {
    *out = NULL, *n = -1;
    const kl_attr *a = attr_of(nd, name, KL_ATTR_FLOATS);
    char tname[96];
    snprintf(tname, sizeof tname, "%s_as_tensor", name);
    const kl_attr *t = attr_of(nd, tname, KL_ATTR_TENSOR);
    if (!t && !a) t = attr_of(nd, name, KL_ATTR_TENSOR); /* TreeEnsemble 5 style */
    if (!a && !(t && t->t)) return KILN_OK;
    int64_t cnt = a ? (int64_t)a->n : t->t->count;
    double *v = kl_misc_calloc(cnt, sizeof *v);
    if (!v) return KILN_ERR_NO_MEMORY;
    for (int64_t i = 0; i < cnt; i++) v[i] = a ? a->floats[i] : kl_tensor_get_f64(t->t, i);
    *out = v, *n = cnt;
    return KILN_OK;
}

static int64_t attr_ints(const kl_node *nd, const char *name, const int64_t **v) { return kl_node_attr_ints(nd, name, v); }

/* STRINGS attribute (count in *n, -1 when absent). */
static const kl_str *attr_strings(const kl_node *nd, const char *name, int64_t *n) {
    const kl_attr *a = attr_of(nd, name, KL_ATTR_STRINGS);
    *n = a ? (int64_t)a->n : -1;
    return a ? a->strings : NULL;
}

/* String element i of t ("" for a NULL pointer). */
static kl_str str_at(const kl_rt *t, int64_t i) {
    kl_str s = ((const kl_str *)t->data)[i];
    if (!s.ptr) s = (kl_str){"", 0};
    return s;
}

/* Byte-wise comparison of two strings (shorter first on a common prefix). */
static int str_cmp(kl_str a, kl_str b) {
    size_t m = KL_MIN(a.len, b.len);
    int r = m ? memcmp(a.ptr, b.ptr, m) : 0;
    return r ? r : a.len < b.len ? -1 : a.len > b.len;
}

/* X as [N, F] doubles (a 1-D X is one row). */
static kiln_status load_rows(kl_kctx *c, kl_rt *x, double **xd, int64_t *N, int64_t *F) {
    if (x->dtype == KILN_DTYPE_STRING || x->rank > 2) return kl_kctx_fail(c, KILN_ERR_SHAPE, "X must be a numeric tensor of shape [N, F] or [F]");
    *N = x->rank == 2 ? x->dims[0] : 1;
    *F = x->rank == 0 ? 1 : x->dims[x->rank - 1];
    return kl_misc_load_f64(x, "X", xd);
}

/* ---- post transforms ------------------------------------------------------------------------ */

enum { PT_NONE, PT_SOFTMAX, PT_LOGISTIC, PT_SOFTMAX_ZERO, PT_PROBIT };

/* post_transform name -> PT_* code, -1 if unknown. */
static int pt_code(const char *s) {
    static const char *const names[] = {"NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

/* The approximation of erf^-1 used by the ONNX reference and ONNX Runtime. */
static double erf_inv(double x) {
    double sgn = x < 0 ? -1.0 : 1.0;
    x = (1.0 - x) * (1.0 + x);
    if (x == 0) return 0;
    double lg = log(x), v = 2.0 / (3.14159265358979323846 * 0.147) + 0.5 * lg, v2 = 1.0 / 0.147 * lg;
    return sgn * sqrt(-v + sqrt(v * v - v2));
}

/* Apply post transform pt to v[0..n) in place (the ai.onnx.ml definitions). */
static void post_transform(int pt, double *v, int64_t n) {
    if (pt == PT_SOFTMAX && n > 0) {
        double mx = v[0], s = 0;
        for (int64_t i = 1; i < n; i++) mx = fmax(mx, v[i]);
        for (int64_t i = 0; i < n; i++) s += (v[i] = exp(v[i] - mx));
        for (int64_t i = 0; i < n; i++) v[i] /= s;
    } else if (pt == PT_LOGISTIC) {
        for (int64_t i = 0; i < n; i++) {
            double e = 1.0 / (1.0 + exp(-fabs(v[i])));
            v[i] = v[i] < 0 ? 1.0 - e : e;
        }
    } else if (pt == PT_SOFTMAX_ZERO && n > 0) {
        double mx = v[0], s = 0;
        for (int64_t i = 1; i < n; i++) mx = fmax(mx, v[i]);
        for (int64_t i = 0; i < n; i++) {
            v[i] = v[i] > 1e-7 || v[i] < -1e-7 ? exp(v[i] - mx) : v[i] * exp(-mx);
            s += v[i];
        }
        for (int64_t i = 0; i < n; i++) v[i] = s == 0 ? 0.5 : v[i] / s;
    } else if (pt == PT_PROBIT) {
        for (int64_t i = 0; i < n; i++) v[i] = 1.41421356 * erf_inv(v[i] * 2 - 1);
    }
}

/* ---- ArrayFeatureExtractor, Binarizer ---------------------------------------------------------- */

kiln_status kl_misc_array_feature_extractor(kl_kctx *c) {
    kl_rt *x, *ix, *y;
    KL_TRY(kl_misc_need(c, 0, "X", &x));
    KL_TRY(kl_misc_need(c, 1, "Y", &ix));
    if (!kl_dtype_is_integer(ix->dtype)) return kl_kctx_fail(c, KILN_ERR_TYPE, "Y must be an int64 tensor");
    if (x->rank < 1) return kl_kctx_fail(c, KILN_ERR_SHAPE, "X must have rank >= 1");
    int64_t D = x->dims[x->rank - 1], K = ix->count, dims[KILN_MAX_RANK];
    int rank = x->rank == 1 ? 2 : x->rank;
    if (x->rank == 1) dims[0] = 1;
    else memcpy(dims, x->dims, (size_t)(x->rank - 1) * sizeof *dims);
    dims[rank - 1] = K;
    for (int64_t k = 0; k < K; k++) {
        int64_t v = kl_rt_get_i64(ix, k);
        if (v < 0 || v >= D)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "index %lld is out of range [0, %lld)", (long long)v, (long long)D);
    }
    KL_TRY(kl_kctx_output(c, 0, x->dtype, rank, dims, &y));
    int64_t rows = D ? x->count / D : 0;
    size_t es = x->dtype == KILN_DTYPE_STRING ? 0 : x->nbytes / (size_t)(x->count ? x->count : 1);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < K; k++) {
            int64_t src = r * D + kl_rt_get_i64(ix, k), dst = r * K + k;
            if (x->dtype == KILN_DTYPE_STRING) {
                kl_str s = str_at(x, src);
                KL_TRY(kl_rt_set_string(y, dst, s.ptr, s.len));
            } else if (es) {
                memcpy((char *)y->data + (size_t)dst * es, (const char *)x->data + (size_t)src * es, es);
            } else {
                kl_rt_set_f64(y, dst, kl_rt_get_f64(x, src));
            }
        }
    return KILN_OK;
}

/* Binarizer: 1 where X > threshold, else 0 (NaN gives 0), same type as X. */
kiln_status kl_misc_binarizer(kl_kctx *c) {
    kl_rt *x, *y;
    KL_TRY(kl_misc_need(c, 0, "X", &x));
    if (x->dtype == KILN_DTYPE_STRING) return kl_kctx_fail(c, KILN_ERR_TYPE, "X must be numeric");
    double thr = kl_node_attr_float(c->node, "threshold", 0.0f);
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, x->dims, &y));
    for (int64_t i = 0; i < x->count; i++) kl_rt_set_f64(y, i, kl_rt_get_f64(x, i) > thr ? 1.0 : 0.0);
    return KILN_OK;
}

/* ---- LabelEncoder (opset 1, 2, 4) and CategoryMapper ------------------------------------------------- */

/* A mapping table: keys of one kind (string / int / float), values of one
 * output dtype, and the default. */
typedef struct lmap {
    int kkind; /* 0 string, 1 int, 2 float */
    int64_t n;
    const kl_str *ks;
    int64_t *ki;
    double *kf;
    kiln_dtype vt;
    const kl_str *vs;
    int64_t *vi;
    double *vf;
    kl_str ds;
    int64_t di;
    double df;
    int64_t *order;
    /* owned temporaries */
    int64_t *own_ki, *own_vi;
    double *own_kf, *own_vf;
    kl_str *own_vs;
} lmap;

/* Release the arrays a mapping owns. */
static void lmap_free(lmap *m) {
    kl_free(m->own_ki);
    kl_free(m->own_vi);
    kl_free(m->own_kf);
    kl_free(m->own_vf);
    kl_free(m->own_vs);
    kl_free(m->order);
}

static const lmap *g_lmap;

/* Order of keys a and b (NaN sorts last). */
static int lmap_key_cmp(const lmap *m, int64_t a, int64_t b) {
    if (m->kkind == 0) return str_cmp(m->ks[a], m->ks[b]);
    if (m->kkind == 1) return m->ki[a] < m->ki[b] ? -1 : m->ki[a] > m->ki[b];
    double x = m->kf[a], y = m->kf[b];
    if (isnan(x) || isnan(y)) return isnan(x) - isnan(y);
    return x < y ? -1 : x > y;
}

/* qsort adapter over g_lmap, stable by index. */
static int lmap_qcmp(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    int r = lmap_key_cmp(g_lmap, x, y);
    return r ? r : (x < y ? -1 : x > y);
}

/* Build the sorted key order used by lmap_find. */
static kiln_status lmap_sort(lmap *m) {
    m->order = kl_misc_calloc(m->n, sizeof *m->order);
    if (!m->order) return KILN_ERR_NO_MEMORY;
    for (int64_t i = 0; i < m->n; i++) m->order[i] = i;
    g_lmap = m;
    qsort(m->order, (size_t)m->n, sizeof *m->order, lmap_qcmp);
    return KILN_OK;
}

/* Index of the (first) key equal to element i of x, or -1. */
static int64_t lmap_find(const lmap *m, const kl_rt *x, int64_t i) {
    kl_str s = {0};
    int64_t iv = 0;
    double fv = 0;
    if (m->kkind == 0) s = str_at(x, i);
    else if (m->kkind == 1) iv = kl_rt_get_i64(x, i);
    else fv = kl_rt_get_f64(x, i);
    int64_t lo = 0, hi = m->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2, k = m->order[mid];
        int r;
        if (m->kkind == 0) r = str_cmp(m->ks[k], s);
        else if (m->kkind == 1) r = m->ki[k] < iv ? -1 : m->ki[k] > iv;
        else if (isnan(m->kf[k]) || isnan(fv)) r = isnan(m->kf[k]) - isnan(fv);
        else r = m->kf[k] < fv ? -1 : m->kf[k] > fv;
        if (r < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo >= m->n) return -1;
    int64_t k = m->order[lo];
    bool eq = m->kkind == 0   ? str_cmp(m->ks[k], s) == 0
              : m->kkind == 1 ? m->ki[k] == iv
                              : (m->kf[k] == fv || (isnan(m->kf[k]) && isnan(fv)));
    return eq ? k : -1;
}

/* Map every element of x through m into output 0 (shape of x). */
static kiln_status lmap_apply(kl_kctx *c, const lmap *m, kl_rt *x) {
    bool xs = x->dtype == KILN_DTYPE_STRING;
    if ((m->kkind == 0) != xs) return kl_kctx_fail(c, KILN_ERR_TYPE, "input type %s does not match the keys", kiln_dtype_name(x->dtype));
    if (m->kkind == 1 && !kl_dtype_is_integer(x->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "integer keys need an integer input, not %s", kiln_dtype_name(x->dtype));
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, m->vt, x->rank, x->dims, &y));
    for (int64_t i = 0; i < x->count; i++) {
        int64_t k = lmap_find(m, x, i);
        if (m->vt == KILN_DTYPE_STRING) {
            kl_str v = k >= 0 ? m->vs[k] : m->ds;
            KL_TRY(kl_rt_set_string(y, i, v.ptr ? v.ptr : "", v.len));
        } else if (kl_dtype_is_integer(m->vt)) {
            kl_rt_set_i64(y, i, k >= 0 ? m->vi[k] : m->di);
        } else {
            kl_rt_set_f64(y, i, k >= 0 ? m->vf[k] : m->df);
        }
    }
    return KILN_OK;
}

static kl_str cstr(const char *s) { return (kl_str){s, strlen(s)}; }

/* Opset 1 (and CategoryMapper): string <-> index in a list of strings
 * (CategoryMapper: cats_strings[i] <-> cats_int64s[i]). */
static kiln_status lmap_string_int(kl_kctx *c, kl_rt *x, const kl_str *strs, int64_t ns, const int64_t *ints, int64_t ni,
                                   int64_t dflt_i, kl_str dflt_s) {
    lmap m = {0};
    kiln_status s = KILN_OK;
    int64_t n = ints ? KL_MIN(ns, ni) : ns;
    m.n = n < 0 ? 0 : n, m.di = dflt_i, m.ds = dflt_s;
    int64_t *idx = kl_misc_calloc(m.n, sizeof *idx);
    if (!idx) return KILN_ERR_NO_MEMORY;
    for (int64_t i = 0; i < m.n; i++) idx[i] = ints ? ints[i] : i;
    if (x->dtype == KILN_DTYPE_STRING) {
        m.kkind = 0, m.ks = strs, m.vt = KILN_DTYPE_INT64, m.vi = idx, m.own_vi = idx;
    } else {
        m.kkind = 1, m.ki = idx, m.own_ki = idx, m.vt = KILN_DTYPE_STRING, m.vs = strs;
    }
    s = lmap_sort(&m);
    if (!s) s = lmap_apply(c, &m, x);
    lmap_free(&m);
    return s;
}

/* CategoryMapper: cats_strings[i] <-> cats_int64s[i], defaults for misses. */
kiln_status kl_misc_category_mapper(kl_kctx *c) {
    kl_rt *x;
    KL_TRY(kl_misc_need(c, 0, "X", &x));
    int64_t ns, ni;
    const kl_str *strs = attr_strings(c->node, "cats_strings", &ns);
    const int64_t *ints;
    ni = attr_ints(c->node, "cats_int64s", &ints);
    if (!strs || !ints || ns != ni) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "cats_strings and cats_int64s must have the same length");
    return lmap_string_int(c, x, strs, ns, ints, ni, kl_node_attr_int(c->node, "default_int64", -1),
                           cstr(kl_node_attr_string(c->node, "default_string", "_Unused")));
}

/* LabelEncoder: opset 1 (classes_strings), opset 2 (keys_* and values_*), opset 4 (adds the *_tensor forms). */
kiln_status kl_misc_label_encoder(kl_kctx *c) {
    kl_rt *x;
    KL_TRY(kl_misc_need(c, 0, "X", &x));
    const kl_node *nd = c->node;
    if (nd->opset < 2) {
        int64_t ns;
        const kl_str *strs = attr_strings(nd, "classes_strings", &ns);
        if (!strs) ns = 0;
        return lmap_string_int(c, x, strs, ns, NULL, 0, kl_node_attr_int(nd, "default_int64", -1),
                               cstr(kl_node_attr_string(nd, "default_string", "_Unused")));
    }
    lmap m = {0};
    kiln_status s = KILN_OK;
    int64_t nk = -1, nv = -1;
    /* keys */
    const kl_attr *kt = attr_of(nd, "keys_tensor", KL_ATTR_TENSOR);
    const kl_attr *a;
    if ((a = attr_of(nd, "keys_strings", KL_ATTR_STRINGS))) m.kkind = 0, m.ks = a->strings, nk = (int64_t)a->n;
    else if ((a = attr_of(nd, "keys_int64s", KL_ATTR_INTS))) m.kkind = 1, m.ki = a->ints, nk = (int64_t)a->n;
    else if ((a = attr_of(nd, "keys_floats", KL_ATTR_FLOATS))) {
        m.kkind = 2, nk = (int64_t)a->n;
        if (!(m.kf = m.own_kf = kl_misc_calloc(nk, sizeof *m.kf))) return KILN_ERR_NO_MEMORY;
        for (int64_t i = 0; i < nk; i++) m.kf[i] = a->floats[i];
    } else if (kt && kt->t) {
        const kl_tensor *t = kt->t;
        nk = t->count;
        if (t->dtype == KILN_DTYPE_STRING) m.kkind = 0, m.ks = t->strings;
        else if (kl_dtype_is_integer(t->dtype)) {
            m.kkind = 1;
            if (!(m.ki = m.own_ki = kl_misc_calloc(nk, sizeof *m.ki))) return KILN_ERR_NO_MEMORY;
            if (!kl_tensor_to_i64(t, m.ki, nk)) s = kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "keys_tensor is unreadable");
        } else {
            m.kkind = 2;
            if (!(m.kf = m.own_kf = kl_misc_calloc(nk, sizeof *m.kf))) return KILN_ERR_NO_MEMORY;
            for (int64_t i = 0; i < nk; i++) m.kf[i] = kl_tensor_get_f64(t, i);
        }
    }
    /* values */
    const kl_attr *vt = attr_of(nd, "values_tensor", KL_ATTR_TENSOR);
    if ((a = attr_of(nd, "values_strings", KL_ATTR_STRINGS))) m.vt = KILN_DTYPE_STRING, m.vs = a->strings, nv = (int64_t)a->n;
    else if ((a = attr_of(nd, "values_int64s", KL_ATTR_INTS))) m.vt = KILN_DTYPE_INT64, m.vi = a->ints, nv = (int64_t)a->n;
    else if ((a = attr_of(nd, "values_floats", KL_ATTR_FLOATS))) {
        m.vt = KILN_DTYPE_FLOAT, nv = (int64_t)a->n;
        if (!(m.vf = m.own_vf = kl_misc_calloc(nv, sizeof *m.vf))) s = KILN_ERR_NO_MEMORY;
        for (int64_t i = 0; !s && i < nv; i++) m.vf[i] = a->floats[i];
    } else if (vt && vt->t) {
        const kl_tensor *t = vt->t;
        nv = t->count, m.vt = t->dtype;
        if (t->dtype == KILN_DTYPE_STRING) m.vs = t->strings;
        else if (kl_dtype_is_integer(t->dtype)) {
            if (!(m.vi = m.own_vi = kl_misc_calloc(nv, sizeof *m.vi))) s = KILN_ERR_NO_MEMORY;
            else if (!kl_tensor_to_i64(t, m.vi, nv)) s = kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "values_tensor is unreadable");
        } else {
            if (!(m.vf = m.own_vf = kl_misc_calloc(nv, sizeof *m.vf))) s = KILN_ERR_NO_MEMORY;
            for (int64_t i = 0; !s && i < nv; i++) m.vf[i] = kl_tensor_get_f64(t, i);
        }
    }
    if (!s && (nk < 0 || nv < 0)) s = kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "LabelEncoder needs keys_* and values_* attributes");
    if (!s && nk != nv) s = kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "keys (%lld) and values (%lld) differ in length", (long long)nk, (long long)nv);
    if (!s && ((m.kkind == 0 && nk && !m.ks) || (m.vt == KILN_DTYPE_STRING && nv && !m.vs)))
        s = kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "string keys/values are missing");
    if (s) {
        lmap_free(&m);
        return s;
    }
    m.n = nk;
    /* default */
    const kl_attr *dt = attr_of(nd, "default_tensor", KL_ATTR_TENSOR);
    m.ds = cstr(kl_node_attr_string(nd, "default_string", "_Unused"));
    m.di = kl_node_attr_int(nd, "default_int64", -1);
    m.df = kl_node_attr_float(nd, "default_float", -0.0f);
    if (dt && dt->t && dt->t->count >= 1) {
        if (dt->t->dtype == KILN_DTYPE_STRING && dt->t->strings) m.ds = dt->t->strings[0];
        else if (kl_dtype_is_integer(dt->t->dtype)) {
            kl_tensor first = *dt->t;
            first.count = 1;
            if (kl_tensor_to_i64(&first, &m.di, 1)) m.df = (double)m.di;
        }
        else m.df = kl_tensor_get_f64(dt->t, 0);
    }
    s = lmap_sort(&m);
    if (!s) s = lmap_apply(c, &m, x);
    lmap_free(&m);
    return s;
}

/* ---- TreeEnsemble (opset 5) ------------------------------------------------------------------------------------ */

enum { TM_LEQ, TM_LT, TM_GTE, TM_GT, TM_EQ, TM_NEQ, TM_MEMBER, TM_LEAF };

/* Does x satisfy node mode `mode` against split v (or the set for MEMBER)? */
static bool tree_cond(int mode, double x, double v, const double *set, int64_t nset) {
    switch (mode) {
    case TM_LEQ: return x <= v;
    case TM_LT: return x < v;
    case TM_GTE: return x >= v;
    case TM_GT: return x > v;
    case TM_EQ: return x == v;
    case TM_NEQ: return x != v;
    case TM_MEMBER:
        for (int64_t k = 0; k < nset; k++)
            if (set[k] == x) return true;
        return false;
    default: return false;
    }
}

/* Per-target aggregation of leaf values (SUM/AVERAGE/MIN/MAX = 1/0/2/3). */
static void agg_add(int agg, double *acc, bool *has, int64_t t, double v) {
    if (agg == 2) acc[t] = has[t] ? fmin(acc[t], v) : v;
    else if (agg == 3) acc[t] = has[t] ? fmax(acc[t], v) : v;
    else acc[t] += v;
    has[t] = true;
}

/* TreeEnsemble (ai.onnx.ml 5): walk every tree per row, aggregate leaf weights per target,
 * then apply post_transform; targets never reached stay 0. */
kiln_status kl_misc_tree_ensemble(kl_kctx *c) {
    kl_rt *x;
    KL_TRY(kl_misc_need(c, 0, "X", &x));
    if (!kl_misc_is_float(x->dtype)) return kl_kctx_fail(c, KILN_ERR_TYPE, "X must be a float tensor");
    const kl_node *nd = c->node;
    const int64_t *feat, *tids, *fids, *tleaf, *fleaf, *ltid, *roots, *mvt;
    int64_t nn = attr_ints(nd, "nodes_featureids", &feat);
    bool ok = attr_ints(nd, "nodes_truenodeids", &tids) == nn && attr_ints(nd, "nodes_falsenodeids", &fids) == nn &&
              attr_ints(nd, "nodes_trueleafs", &tleaf) == nn && attr_ints(nd, "nodes_falseleafs", &fleaf) == nn;
    int64_t nl = attr_ints(nd, "leaf_targetids", &ltid), nr = attr_ints(nd, "tree_roots", &roots);
    int64_t nmvt = attr_ints(nd, "nodes_missing_value_tracks_true", &mvt);
    int64_t n_targets = kl_node_attr_int(nd, "n_targets", -1);
    int agg = (int)kl_node_attr_int(nd, "aggregate_function", 1), pt = (int)kl_node_attr_int(nd, "post_transform", 0);
    if (nn < 0 || !ok || nl < 0 || nr < 0 || n_targets < 0 || (nmvt >= 0 && nmvt != nn))
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "TreeEnsemble attributes are missing or differ in length");
    if (agg < 0 || agg > 3 || pt < 0 || pt > 4)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "aggregate_function/post_transform out of range");
    double *splits = NULL, *lw = NULL, *mem = NULL, *modes = NULL, *xd = NULL, *acc = NULL, *out = NULL;
    int64_t *mem_off = NULL, *mem_n = NULL;
    bool *has = NULL;
    int64_t ns, nw, nm, nmode, N, F;
    kiln_status s = attr_values(nd, "nodes_splits", &splits, &ns);
    if (!s) s = attr_values(nd, "leaf_weights", &lw, &nw);
    if (!s) s = attr_values(nd, "membership_values", &mem, &nm);
    if (!s) s = attr_values(nd, "nodes_modes", &modes, &nmode);
    if (!s && (ns != nn || nw != nl || nmode != nn))
        s = kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "nodes_splits/nodes_modes/leaf_weights lengths do not match");
    if (!s) s = load_rows(c, x, &xd, &N, &F);
    if (!s && (!(mem_off = kl_misc_calloc(nn, sizeof *mem_off)) || !(mem_n = kl_misc_calloc(nn, sizeof *mem_n)) ||
               !(acc = kl_misc_calloc(n_targets, sizeof *acc)) || !(has = kl_misc_calloc(n_targets, sizeof *has)) ||
               !(out = kl_misc_calloc(N * n_targets, sizeof *out))))
        s = KILN_ERR_NO_MEMORY;
    for (int64_t i = 0; !s && i < nn; i++)
        if (!(modes[i] >= TM_LEQ && modes[i] <= TM_MEMBER) || modes[i] != floor(modes[i]))
            s = kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "nodes_modes[%lld] is not a valid mode", (long long)i);
    /* Set-membership nodes take consecutive NaN-terminated runs of membership_values. */
    for (int64_t i = 0, p = 0; !s && i < nn; i++) {
        if ((int)modes[i] != TM_MEMBER) continue;
        if (nm < 0 || p >= nm) {
            s = kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "membership_values has no set for node %lld", (long long)i);
            break;
        }
        mem_off[i] = p;
        while (p < nm && !isnan(mem[p])) p++;
        mem_n[i] = p - mem_off[i];
        p++;
    }
    for (int64_t r = 0; !s && r < N; r++) {
        const double *row = xd + r * F;
        memset(acc, 0, (size_t)n_targets * sizeof *acc);
        memset(has, 0, (size_t)n_targets * sizeof *has);
        for (int64_t t = 0; !s && t < nr; t++) {
            int64_t idx = roots[t], steps = 0;
            bool leaf = false;
            while (!leaf) {
                if (idx < 0 || idx >= nn || steps++ > nn) {
                    s = kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "tree %lld has a bad node reference or a cycle", (long long)t);
                    break;
                }
                int64_t f = feat[idx];
                if (f < 0 || f >= F) {
                    s = kl_kctx_fail(c, KILN_ERR_SHAPE, "feature id %lld is out of range for X with %lld features", (long long)f, (long long)F);
                    break;
                }
                double xv = row[f];
                int mode = (int)modes[idx];
                bool cond = tree_cond(mode, xv, splits[idx], mem ? mem + mem_off[idx] : NULL, mem_n[idx]) ||
                            (nmvt > 0 && mvt[idx] && isnan(xv));
                leaf = cond ? tleaf[idx] != 0 : fleaf[idx] != 0;
                idx = cond ? tids[idx] : fids[idx];
            }
            if (s) break;
            if (idx < 0 || idx >= nl || ltid[idx] < 0 || ltid[idx] >= n_targets) {
                s = kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "leaf %lld or its target id is out of range", (long long)idx);
                break;
            }
            agg_add(agg, acc, has, ltid[idx], agg == 0 ? lw[idx] / (double)nr : lw[idx]);
        }
        post_transform(pt, acc, n_targets);
        memcpy(out + r * n_targets, acc, (size_t)n_targets * sizeof *acc);
    }
    kl_rt *y;
    if (!s) s = kl_kctx_output(c, 0, x->dtype, 2, (int64_t[]){N, n_targets}, &y);
    if (!s) kl_misc_store_f64(y, out);
    kl_free(splits), kl_free(lw), kl_free(mem), kl_free(modes), kl_free(xd), kl_free(acc), kl_free(out);
    kl_free(mem_off), kl_free(mem_n), kl_free(has);
    return s;
}

/* ---- TreeEnsembleClassifier / TreeEnsembleRegressor (opset 1, 3) ------------------------------------------------- */

typedef struct tree_ids {
    const int64_t *tid, *nid;
    int64_t n;
    int64_t *order; /* indices sorted by (tid, nid, index) */
} tree_ids;

static const tree_ids *g_tree_ids;

/* qsort adapter: order by (tree id, node id, index). */
static int tree_ids_cmp(const void *pa, const void *pb) {
    const tree_ids *t = g_tree_ids;
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    if (t->tid[a] != t->tid[b]) return t->tid[a] < t->tid[b] ? -1 : 1;
    if (t->nid[a] != t->nid[b]) return t->nid[a] < t->nid[b] ? -1 : 1;
    return a < b ? -1 : a > b;
}

/* Sort indices of (tid, nid) pairs for binary search. */
static kiln_status tree_ids_init(tree_ids *t, const int64_t *tid, const int64_t *nid, int64_t n) {
    t->tid = tid, t->nid = nid, t->n = n;
    if (!(t->order = kl_misc_calloc(n, sizeof *t->order))) return KILN_ERR_NO_MEMORY;
    for (int64_t i = 0; i < n; i++) t->order[i] = i;
    g_tree_ids = t;
    qsort(t->order, (size_t)n, sizeof *t->order, tree_ids_cmp);
    return KILN_OK;
}

/* First position in order[] with (tid, nid) >= the key. */
static int64_t tree_ids_lower(const tree_ids *t, int64_t tid, int64_t nid) {
    int64_t lo = 0, hi = t->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2, k = t->order[mid];
        if (t->tid[k] < tid || (t->tid[k] == tid && t->nid[k] < nid)) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

typedef struct classic_trees {
    int64_t nn;
    const int64_t *tid, *nid, *feat, *tnode, *fnode, *mvt;
    int64_t nmvt;
    int *mode;
    double *vals;
    tree_ids nodes, leaves;
    int64_t *roots; /* node index of each tree's root (first node of the tree) */
    int64_t n_trees;
    const int64_t *w_ids; /* class_ids / target_ids */
    double *w;
    int64_t nw;
} classic_trees;

/* Release what classic_init allocated. */
static void classic_free(classic_trees *t) {
    kl_free(t->mode);
    kl_free(t->vals);
    kl_free(t->nodes.order);
    kl_free(t->leaves.order);
    kl_free(t->roots);
    kl_free(t->w);
}

/* Read the shared node attributes and the leaf weights (prefix "class" or "target"). */
static kiln_status classic_init(kl_kctx *c, classic_trees *t, const char *prefix) {
    const kl_node *nd = c->node;
    char nm[64];
    t->nn = attr_ints(nd, "nodes_treeids", &t->tid);
    int64_t nv;
    bool ok = t->nn >= 0 && attr_ints(nd, "nodes_nodeids", &t->nid) == t->nn &&
              attr_ints(nd, "nodes_featureids", &t->feat) == t->nn && attr_ints(nd, "nodes_truenodeids", &t->tnode) == t->nn &&
              attr_ints(nd, "nodes_falsenodeids", &t->fnode) == t->nn;
    t->nmvt = attr_ints(nd, "nodes_missing_value_tracks_true", &t->mvt);
    int64_t nmodes;
    const kl_str *modes = attr_strings(nd, "nodes_modes", &nmodes);
    if (!ok || nmodes != t->nn || (t->nmvt >= 0 && t->nmvt != t->nn))
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "nodes_* attributes are missing or differ in length");
    KL_TRY(attr_values(nd, "nodes_values", &t->vals, &nv));
    if (nv != t->nn) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "nodes_values must have one entry per node");
    if (!(t->mode = kl_misc_calloc(t->nn, sizeof *t->mode))) return KILN_ERR_NO_MEMORY;
    static const char *const names[] = {"BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ", "BRANCH_MEMBER", "LEAF"};
    for (int64_t i = 0; i < t->nn; i++) {
        int m = -1;
        for (int k = 0; k < 8; k++)
            if (modes[i].len == strlen(names[k]) && memcmp(modes[i].ptr, names[k], modes[i].len) == 0) m = k;
        if (m < 0 || m == TM_MEMBER) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "node %lld has an unsupported mode", (long long)i);
        t->mode[i] = m;
    }
    KL_TRY(tree_ids_init(&t->nodes, t->tid, t->nid, t->nn));
    const int64_t *ltid, *lnid;
    snprintf(nm, sizeof nm, "%s_treeids", prefix);
    int64_t nl = attr_ints(nd, nm, &ltid);
    snprintf(nm, sizeof nm, "%s_nodeids", prefix);
    bool lok = attr_ints(nd, nm, &lnid) == nl;
    snprintf(nm, sizeof nm, "%s_ids", prefix);
    lok = lok && attr_ints(nd, nm, &t->w_ids) == nl;
    snprintf(nm, sizeof nm, "%s_weights", prefix);
    KL_TRY(attr_values(nd, nm, &t->w, &t->nw));
    if (nl < 0 || !lok || t->nw != nl) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "%s_* attributes are missing or differ in length", prefix);
    KL_TRY(tree_ids_init(&t->leaves, ltid, lnid, nl));
    /* Trees in increasing id order; root = first node of each tree. */
    if (!(t->roots = kl_misc_calloc(t->nn, sizeof *t->roots))) return KILN_ERR_NO_MEMORY;
    for (int64_t i = 0; i < t->nn; i++) {
        int64_t k = t->nodes.order[i];
        if (i == 0 || t->tid[k] != t->tid[t->nodes.order[i - 1]]) {
            int64_t first = k;
            for (int64_t j = i; j < t->nn && t->tid[t->nodes.order[j]] == t->tid[k]; j++)
                if (t->nodes.order[j] < first) first = t->nodes.order[j];
            t->roots[t->n_trees++] = first;
        }
    }
    return KILN_OK;
}

/* Leaf node index reached by row in tree `tree`, or -1 with an error set. */
static int64_t classic_leaf(kl_kctx *c, const classic_trees *t, int64_t tree, const double *row, int64_t F) {
    int64_t idx = t->roots[tree], steps = 0;
    while (t->mode[idx] != TM_LEAF) {
        if (steps++ > t->nn) {
            kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "tree %lld has a cycle", (long long)t->tid[idx]);
            return -1;
        }
        int64_t f = t->feat[idx];
        if (f < 0 || f >= F) {
            kl_kctx_fail(c, KILN_ERR_SHAPE, "feature id %lld is out of range for X with %lld features", (long long)f, (long long)F);
            return -1;
        }
        double xv = row[f];
        bool cond = isnan(xv) ? (t->nmvt > 0 && t->mvt[idx] >= 1) : tree_cond(t->mode[idx], xv, t->vals[idx], NULL, 0);
        int64_t next = cond ? t->tnode[idx] : t->fnode[idx];
        int64_t p = tree_ids_lower(&t->nodes, t->tid[idx], next);
        if (p >= t->nn || t->tid[t->nodes.order[p]] != t->tid[idx] || t->nid[t->nodes.order[p]] != next) {
            kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "tree %lld refers to missing node %lld", (long long)t->tid[idx], (long long)next);
            return -1;
        }
        idx = t->nodes.order[p];
    }
    return idx;
}

/* Add every weight attached to leaf node `leaf` into acc (aggregated). */
static kiln_status classic_collect(kl_kctx *c, const classic_trees *t, int64_t leaf, int agg, double *acc, bool *has, int64_t n_out,
                                   double scale) {
    const tree_ids *L = &t->leaves;
    for (int64_t p = tree_ids_lower(L, t->tid[leaf], t->nid[leaf]); p < L->n; p++) {
        int64_t k = L->order[p];
        if (L->tid[k] != t->tid[leaf] || L->nid[k] != t->nid[leaf]) break;
        int64_t id = t->w_ids[k];
        if (id < 0 || id >= n_out) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "class/target id %lld is out of range", (long long)id);
        agg_add(agg, acc, has, id, t->w[k] * scale);
    }
    return KILN_OK;
}

/* TreeEnsembleRegressor (1, 3): aggregate target weights of the reached leaves, add base_values,
 * apply post_transform. */
kiln_status kl_misc_tree_ensemble_regressor(kl_kctx *c) {
    kl_rt *x;
    KL_TRY(kl_misc_need(c, 0, "X", &x));
    const kl_node *nd = c->node;
    int64_t n_targets = kl_node_attr_int(nd, "n_targets", 1);
    const char *aggs = kl_node_attr_string(nd, "aggregate_function", "SUM");
    int agg = !strcmp(aggs, "AVERAGE") ? 0 : !strcmp(aggs, "SUM") ? 1 : !strcmp(aggs, "MIN") ? 2 : !strcmp(aggs, "MAX") ? 3 : -1;
    int pt = pt_code(kl_node_attr_string(nd, "post_transform", "NONE"));
    if (agg < 0 || pt < 0 || n_targets < 0)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "bad aggregate_function, post_transform or n_targets");
    classic_trees t = {0};
    double *xd = NULL, *acc = NULL, *out = NULL, *base = NULL;
    bool *has = NULL;
    int64_t N, F, nb;
    kiln_status s = classic_init(c, &t, "target");
    if (!s) s = attr_values(nd, "base_values", &base, &nb);
    if (!s && nb >= 0 && nb != n_targets) s = kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "base_values must have n_targets entries");
    if (!s) s = load_rows(c, x, &xd, &N, &F);
    if (!s && (!(acc = kl_misc_calloc(n_targets, sizeof *acc)) || !(has = kl_misc_calloc(n_targets, sizeof *has)) ||
               !(out = kl_misc_calloc(N * n_targets, sizeof *out))))
        s = KILN_ERR_NO_MEMORY;
    for (int64_t r = 0; !s && r < N; r++) {
        memset(acc, 0, (size_t)n_targets * sizeof *acc);
        memset(has, 0, (size_t)n_targets * sizeof *has);
        for (int64_t k = 0; !s && k < t.n_trees; k++) {
            int64_t leaf = classic_leaf(c, &t, k, xd + r * F, F);
            s = leaf < 0 ? KILN_ERR_INVALID_MODEL : classic_collect(c, &t, leaf, agg, acc, has, n_targets, agg == 0 ? 1.0 / (double)t.n_trees : 1.0);
        }
        for (int64_t j = 0; j < n_targets; j++) acc[j] += base ? base[j] : 0.0;
        post_transform(pt, acc, n_targets);
        memcpy(out + r * n_targets, acc, (size_t)n_targets * sizeof *acc);
    }
    kl_rt *y;
    if (!s) s = kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 2, (int64_t[]){N, n_targets}, &y);
    if (!s) kl_misc_store_f64(y, out);
    classic_free(&t);
    kl_free(xd), kl_free(acc), kl_free(out), kl_free(base), kl_free(has);
    return s;
}

/* Write label outputs: int labels or string labels chosen by index. */
static kiln_status write_labels(kl_kctx *c, int64_t N, const int64_t *best, const int64_t *ilab, int64_t nil, const kl_str *slab,
                                int64_t nsl) {
    kl_rt *y;
    if (slab) {
        KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_STRING, 1, &N, &y));
        for (int64_t r = 0; r < N; r++) {
            kl_str v = best[r] >= 0 && best[r] < nsl ? slab[best[r]] : (kl_str){"", 0};
            KL_TRY(kl_rt_set_string(y, r, v.ptr ? v.ptr : "", v.len));
        }
    } else {
        KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_INT64, 1, &N, &y));
        for (int64_t r = 0; r < N; r++) ((int64_t *)y->data)[r] = ilab && best[r] >= 0 && best[r] < nil ? ilab[best[r]] : best[r];
    }
    return KILN_OK;
}

/* TreeEnsembleClassifier (1, 3): per-class sums of the reached leaves' weights plus base_values, with
 * the reference's binary-case handling; outputs labels [N] and scores [N, classes]. */
kiln_status kl_misc_tree_ensemble_classifier(kl_kctx *c) {
    kl_rt *x;
    KL_TRY(kl_misc_need(c, 0, "X", &x));
    const kl_node *nd = c->node;
    const int64_t *ilab;
    int64_t nil = attr_ints(nd, "classlabels_int64s", &ilab), nsl;
    const kl_str *slab = attr_strings(nd, "classlabels_strings", &nsl);
    int64_t ncls = KL_MAX(nil, nsl);
    int pt = pt_code(kl_node_attr_string(nd, "post_transform", "NONE"));
    if (ncls <= 0 || pt < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "need classlabels_* and a known post_transform");
    if (nsl == 1) return kl_kctx_fail(c, KILN_ERR_UNSUPPORTED, "a single string class label is not supported");
    if (nil == 1 && ilab[0] != 1) return kl_kctx_fail(c, KILN_ERR_UNSUPPORTED, "a single int class label other than 1 is not supported");
    classic_trees t = {0};
    double *xd = NULL, *acc = NULL, *out = NULL, *base = NULL;
    int64_t *best = NULL;
    bool *has = NULL;
    int64_t N, F, nb;
    kiln_status s = classic_init(c, &t, "class");
    if (!s) s = attr_values(nd, "base_values", &base, &nb);
    bool binary = !s && t.leaves.n > 0;
    for (int64_t k = 1; binary && k < t.leaves.n; k++) binary = t.w_ids[k] == t.w_ids[0];
    int64_t ncol = binary && ncls == 1 ? 2 : ncls;
    if (!s) s = load_rows(c, x, &xd, &N, &F);
    if (!s && (!(acc = kl_misc_calloc(ncol, sizeof *acc)) || !(has = kl_misc_calloc(ncol, sizeof *has)) ||
               !(out = kl_misc_calloc(N * ncol, sizeof *out)) || !(best = kl_misc_calloc(N, sizeof *best))))
        s = KILN_ERR_NO_MEMORY;
    for (int64_t r = 0; !s && r < N; r++) {
        memset(acc, 0, (size_t)ncol * sizeof *acc);
        for (int64_t j = 0; j < ncls && base; j++) acc[j] = j < nb ? base[j] : 0.0;
        for (int64_t k = 0; !s && k < t.n_trees; k++) {
            int64_t leaf = classic_leaf(c, &t, k, xd + r * F, F);
            s = leaf < 0 ? KILN_ERR_INVALID_MODEL : classic_collect(c, &t, leaf, 1, acc, has, ncls, 1.0);
        }
        if (binary) {
            acc[1] = acc[0];
            acc[0] = pt == PT_NONE || pt == PT_PROBIT ? 1 - acc[1] : -acc[1];
        }
        post_transform(pt, acc, ncol);
        best[r] = 0;
        for (int64_t j = 1; j < ncol; j++)
            if (acc[j] > acc[best[r]]) best[r] = j;
        memcpy(out + r * ncol, acc, (size_t)ncol * sizeof *acc);
    }
    if (!s) {
        if (nil == 1) { /* classlabels_int64s = [1]: label 1 when column 1 wins, else 0 */
            kl_rt *y;
            s = kl_kctx_output(c, 0, KILN_DTYPE_INT64, 1, &N, &y);
            for (int64_t r = 0; !s && r < N; r++) ((int64_t *)y->data)[r] = best[r] == 1 ? 1 : 0;
        } else {
            s = write_labels(c, N, best, nil > 0 ? ilab : NULL, nil, nsl > 0 ? slab : NULL, nsl);
        }
    }
    kl_rt *z;
    if (!s && c->n_out > 1) {
        s = kl_kctx_output(c, 1, KILN_DTYPE_FLOAT, 2, (int64_t[]){N, ncol}, &z);
        if (!s) kl_misc_store_f64(z, out);
    }
    classic_free(&t);
    kl_free(xd), kl_free(acc), kl_free(out), kl_free(base), kl_free(has), kl_free(best);
    return s;
}

/* ---- Scaler, Normalizer, Imputer, LinearRegressor, LinearClassifier ------------------------------------------------ */

kiln_status kl_misc_scaler(kl_kctx *c) {
    kl_rt *x, *y;
    KL_TRY(kl_misc_need(c, 0, "X", &x));
    if (x->dtype == KILN_DTYPE_STRING) return kl_kctx_fail(c, KILN_ERR_TYPE, "X must be numeric");
    const kl_attr *off = attr_of(c->node, "offset", KL_ATTR_FLOATS), *sc = attr_of(c->node, "scale", KL_ATTR_FLOATS);
    int64_t C = x->rank ? x->dims[x->rank - 1] : 1;
    int64_t no = off ? (int64_t)off->n : 0, nsc = sc ? (int64_t)sc->n : 0;
    if ((no > 1 && no != C) || (nsc > 1 && nsc != C))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "offset/scale must have 1 or %lld entries", (long long)C);
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, x->rank, x->dims, &y));
    for (int64_t i = 0; i < x->count; i++) {
        int64_t j = C ? i % C : 0;
        double o = no ? off->floats[no > 1 ? j : 0] : 0.0, s = nsc ? sc->floats[nsc > 1 ? j : 0] : 1.0;
        ((float *)y->data)[i] = (float)((kl_rt_get_f64(x, i) - o) * s);
    }
    return KILN_OK;
}

/* Normalizer: per row, MAX / L1 / L2 normalization (rows of zeros stay zero), float output. */
kiln_status kl_misc_normalizer(kl_kctx *c) {
    kl_rt *x, *y;
    KL_TRY(kl_misc_need(c, 0, "X", &x));
    const char *norm = kl_node_attr_string(c->node, "norm", "MAX");
    int kind = !strcmp(norm, "MAX") ? 0 : !strcmp(norm, "L1") ? 1 : !strcmp(norm, "L2") ? 2 : -1;
    if (kind < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "norm '%s' is not MAX, L1 or L2", norm);
    double *xd;
    int64_t N, F;
    KL_TRY(load_rows(c, x, &xd, &N, &F));
    kiln_status s = kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, x->rank, x->dims, &y);
    for (int64_t r = 0; !s && r < N; r++) {
        double *v = xd + r * F, m = 0, nv = 0;
        for (int64_t j = 0; j < F; j++) m = fmax(m, fabs(v[j]));
        if (m != 0)
            for (int64_t j = 0; j < F; j++) v[j] /= m;
        for (int64_t j = 0; j < F; j++) nv += kind == 1 ? fabs(v[j]) : v[j] * v[j];
        if (kind == 2) nv = sqrt(nv);
        if (kind && nv != 0)
            for (int64_t j = 0; j < F; j++) v[j] /= nv;
    }
    if (!s) kl_misc_store_f64(y, xd);
    kl_free(xd);
    return s;
}

/* Imputer: replace replaced_value_* (or NaN) by the per-column imputed value. */
kiln_status kl_misc_imputer(kl_kctx *c) {
    kl_rt *x, *y;
    KL_TRY(kl_misc_need(c, 0, "X", &x));
    if (x->dtype == KILN_DTYPE_STRING) return kl_kctx_fail(c, KILN_ERR_TYPE, "X must be numeric");
    const kl_attr *vf = attr_of(c->node, "imputed_value_floats", KL_ATTR_FLOATS);
    const kl_attr *vi = attr_of(c->node, "imputed_value_int64s", KL_ATTR_INTS);
    bool fl = vf && vf->n > 0;
    int64_t nv = fl ? (int64_t)vf->n : vi ? (int64_t)vi->n : 0;
    if (!nv) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "imputed_value_floats or imputed_value_int64s is required");
    double rep = fl ? kl_node_attr_float(c->node, "replaced_value_float", 0.0f) : (double)kl_node_attr_int(c->node, "replaced_value_int64", 0);
    int64_t C = x->rank ? x->dims[x->rank - 1] : 1;
    if (nv != 1 && nv != C) return kl_kctx_fail(c, KILN_ERR_SHAPE, "imputed values must have 1 or %lld entries", (long long)C);
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, x->dims, &y));
    for (int64_t i = 0; i < x->count; i++) {
        double v = kl_rt_get_f64(x, i);
        int64_t j = nv == 1 ? 0 : i % C;
        bool hit = isnan(rep) ? isnan(v) : v == rep;
        if (!hit) {
            if (kl_dtype_is_integer(x->dtype)) kl_rt_set_i64(y, i, kl_rt_get_i64(x, i));
            else kl_rt_set_f64(y, i, v);
        } else if (fl) {
            kl_rt_set_f64(y, i, vf->floats[j]);
        } else {
            kl_rt_set_i64(y, i, vi->ints[j]);
        }
    }
    return KILN_OK;
}

/* scores[N, T] = X[N, F] * coef[T, F]^T + intercepts. */
static kiln_status linear_scores(kl_kctx *c, kl_rt *x, int64_t T, double **scores, int64_t *N_out) {
    const kl_attr *co = attr_of(c->node, "coefficients", KL_ATTR_FLOATS), *ic = attr_of(c->node, "intercepts", KL_ATTR_FLOATS);
    double *xd;
    int64_t N, F;
    KL_TRY(load_rows(c, x, &xd, &N, &F));
    if (!co || (int64_t)co->n != T * F || (ic && ic->n != 0 && (int64_t)ic->n != T)) {
        kl_free(xd);
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "coefficients must have %lld x %lld entries and intercepts %lld", (long long)T,
                            (long long)F, (long long)T);
    }
    double *s = kl_misc_calloc(N * T, sizeof *s);
    if (!s) {
        kl_free(xd);
        return KILN_ERR_NO_MEMORY;
    }
    for (int64_t r = 0; r < N; r++)
        for (int64_t t = 0; t < T; t++) {
            double v = ic && ic->n ? ic->floats[t] : 0.0;
            for (int64_t j = 0; j < F; j++) v += xd[r * F + j] * co->floats[t * F + j];
            s[r * T + t] = v;
        }
    kl_free(xd);
    *scores = s, *N_out = N;
    return KILN_OK;
}

/* LinearRegressor: Y[N, targets] = X * coefficients^T + intercepts, then post_transform. */
kiln_status kl_misc_linear_regressor(kl_kctx *c) {
    kl_rt *x, *y;
    KL_TRY(kl_misc_need(c, 0, "X", &x));
    int64_t T = kl_node_attr_int(c->node, "targets", 1), N;
    int pt = pt_code(kl_node_attr_string(c->node, "post_transform", "NONE"));
    if (T < 1 || pt < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "bad targets or post_transform");
    double *s;
    KL_TRY(linear_scores(c, x, T, &s, &N));
    for (int64_t r = 0; r < N; r++) post_transform(pt, s + r * T, T);
    kiln_status st = kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 2, (int64_t[]){N, T}, &y);
    if (!st) kl_misc_store_f64(y, s);
    kl_free(s);
    return st;
}

/* LinearClassifier: scores = X * coefficients^T + intercepts (binary: [-s, s]), post_transform,
 * label = argmax (one score column: threshold 0, or 0.5 after a transform). */
kiln_status kl_misc_linear_classifier(kl_kctx *c) {
    kl_rt *x;
    KL_TRY(kl_misc_need(c, 0, "X", &x));
    const kl_node *nd = c->node;
    const int64_t *ilab;
    int64_t nil = attr_ints(nd, "classlabels_ints", &ilab), nsl, N;
    const kl_str *slab = attr_strings(nd, "classlabels_strings", &nsl);
    int64_t ncls = KL_MAX(nil, nsl);
    int pt = pt_code(kl_node_attr_string(nd, "post_transform", "NONE"));
    const kl_attr *co = attr_of(nd, "coefficients", KL_ATTR_FLOATS);
    int64_t F = x->rank ? x->dims[x->rank - 1] : 1;
    if (pt < 0 || !co || F <= 0 || co->n % (size_t)F) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "bad coefficients or post_transform");
    int64_t T = (int64_t)co->n / F;
    double *s;
    KL_TRY(linear_scores(c, x, T, &s, &N));
    int64_t ncol = T;
    double *sc = s;
    if (T == 1 && ncls == 2) {
        ncol = 2;
        if (!(sc = kl_misc_calloc(N * 2, sizeof *sc))) {
            kl_free(s);
            return KILN_ERR_NO_MEMORY;
        }
        for (int64_t r = 0; r < N; r++) sc[2 * r] = -s[r], sc[2 * r + 1] = s[r];
    }
    int64_t *best = kl_misc_calloc(N, sizeof *best);
    kiln_status st = best ? KILN_OK : KILN_ERR_NO_MEMORY;
    for (int64_t r = 0; !st && r < N; r++) {
        double *v = sc + r * ncol;
        if (pt == PT_LOGISTIC)
            for (int64_t j = 0; j < ncol; j++) v[j] = 1.0 / (1.0 + exp(-v[j]));
        else post_transform(pt, v, ncol);
        if (ncol > 1) {
            for (int64_t j = 1; j < ncol; j++)
                if (v[j] > v[best[r]]) best[r] = j;
        } else {
            best[r] = v[0] >= (pt == PT_NONE ? 0.0 : 0.5) ? 0 : -1; /* -1: the "negative" label */
        }
    }
    kl_rt *y, *z;
    if (!st && ncol == 1) {
        if (nsl > 0) {
            st = kl_kctx_output(c, 0, KILN_DTYPE_STRING, 1, &N, &y);
            for (int64_t r = 0; !st && r < N; r++) {
                kl_str v = best[r] == 0 ? slab[0] : (kl_str){"", 0};
                st = kl_rt_set_string(y, r, v.ptr ? v.ptr : "", v.len);
            }
        } else {
            st = kl_kctx_output(c, 0, KILN_DTYPE_INT64, 1, &N, &y);
            for (int64_t r = 0; !st && r < N; r++) ((int64_t *)y->data)[r] = best[r] == 0 ? (nil > 0 ? ilab[0] : 1) : 0;
        }
    } else if (!st) {
        st = write_labels(c, N, best, nil > 0 ? ilab : NULL, nil, nsl > 0 ? slab : NULL, nsl);
    }
    if (!st && c->n_out > 1) {
        st = kl_kctx_output(c, 1, KILN_DTYPE_FLOAT, 2, (int64_t[]){N, ncol}, &z);
        if (!st) kl_misc_store_f64(z, sc);
    }
    if (sc != s) kl_free(sc);
    kl_free(s);
    kl_free(best);
    return st;
}

/* ---- OneHotEncoder, FeatureVectorizer ----------------------------------------------------------------------------------- */

kiln_status kl_misc_one_hot_encoder(kl_kctx *c) {
    kl_rt *x, *y;
    KL_TRY(kl_misc_need(c, 0, "X", &x));
    const int64_t *ci;
    int64_t nci = attr_ints(c->node, "cats_int64s", &ci), ncs;
    const kl_str *cs = attr_strings(c->node, "cats_strings", &ncs);
    bool strings = x->dtype == KILN_DTYPE_STRING;
    int64_t K = strings ? ncs : nci;
    if (K <= 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "%s is required for this input type", strings ? "cats_strings" : "cats_int64s");
    if (x->rank >= KILN_MAX_RANK) return kl_kctx_fail(c, KILN_ERR_UNSUPPORTED, "X has too many dimensions");
    bool zeros = kl_node_attr_int(c->node, "zeros", 1) != 0;
    int64_t dims[KILN_MAX_RANK];
    memcpy(dims, x->dims, (size_t)x->rank * sizeof *dims);
    dims[x->rank] = K;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, x->rank + 1, dims, &y));
    float *o = y->data;
    for (int64_t i = 0; i < x->count; i++) {
        int64_t hit = -1;
        if (strings) {
            kl_str s = str_at(x, i);
            for (int64_t k = 0; k < K && hit < 0; k++)
                if (str_cmp(s, cs[k]) == 0) hit = k;
        } else {
            double v = kl_rt_get_f64(x, i);
            for (int64_t k = 0; k < K && hit < 0; k++)
                if ((double)ci[k] == v) hit = k;
        }
        if (hit >= 0) o[i * K + hit] = 1.0f;
        else if (!zeros) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "element %lld is not a known category (zeros=0)", (long long)i);
    }
    return KILN_OK;
}

/* FeatureVectorizer: concatenate the inputs' columns, each cut or zero-padded to inputdimensions[i]. */
kiln_status kl_misc_feature_vectorizer(kl_kctx *c) {
    const int64_t *dimsz;
    int64_t nd = attr_ints(c->node, "inputdimensions", &dimsz);
    if (nd < 0 || (size_t)nd != c->n_in) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "inputdimensions must have one entry per input");
    int64_t total = 0, N = -1;
    for (size_t i = 0; i < c->n_in; i++) {
        kl_rt *t;
        KL_TRY(kl_misc_need(c, i, "X", &t));
        if (dimsz[i] < 0 || t->dtype == KILN_DTYPE_STRING || t->rank > 2)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "input %zu must be numeric with rank <= 2", i);
        int64_t n = t->rank == 2 ? t->dims[0] : 1;
        if (N >= 0 && n != N) return kl_kctx_fail(c, KILN_ERR_SHAPE, "inputs differ in their number of rows");
        N = n;
        total += dimsz[i];
    }
    if (N < 0) N = 1;
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 2, (int64_t[]){N, total}, &y));
    float *o = y->data;
    int64_t col = 0;
    for (size_t i = 0; i < c->n_in; i++) {
        const kl_rt *t = c->in[i];
        int64_t C = t->rank ? t->dims[t->rank - 1] : 1;
        for (int64_t r = 0; r < N; r++)
            for (int64_t j = 0; j < dimsz[i] && j < C; j++) o[r * total + col + j] = (float)kl_rt_get_f64(t, r * C + j);
        col += dimsz[i];
    }
    return KILN_OK;
}

/* ---- SVMRegressor, SVMClassifier ----------------------------------------------------------------------------------------- */

typedef struct svm_kernel {
    int kind; /* 0 LINEAR, 1 POLY, 2 RBF, 3 SIGMOID */
    double gamma, coef0, degree;
} svm_kernel;

/* kernel_type and kernel_params (gamma, coef0, degree). */
static kiln_status svm_kernel_init(kl_kctx *c, svm_kernel *k) {
    const char *kt = kl_node_attr_string(c->node, "kernel_type", "LINEAR");
    k->kind = !strcmp(kt, "LINEAR") ? 0 : !strcmp(kt, "POLY") ? 1 : !strcmp(kt, "RBF") ? 2 : !strcmp(kt, "SIGMOID") ? 3 : -1;
    if (k->kind < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "kernel_type '%s' is unknown", kt);
    const kl_attr *p = attr_of(c->node, "kernel_params", KL_ATTR_FLOATS);
    k->gamma = p && p->n > 0 ? p->floats[0] : 0.0;
    k->coef0 = p && p->n > 1 ? p->floats[1] : 0.0;
    k->degree = p && p->n > 2 ? p->floats[2] : 0.0;
    return KILN_OK;
}

/* Kernel value k(a, b) over F features. */
static double svm_eval(const svm_kernel *k, const double *a, const float *b, int64_t F) {
    double s = 0;
    if (k->kind == 2) {
        for (int64_t j = 0; j < F; j++) s += (a[j] - b[j]) * (a[j] - b[j]);
        return exp(-k->gamma * s);
    }
    for (int64_t j = 0; j < F; j++) s += a[j] * b[j];
    if (k->kind == 1) return pow(k->gamma * s + k->coef0, k->degree);
    if (k->kind == 3) return tanh(k->gamma * s + k->coef0);
    return s;
}

/* SVMRegressor: sum_j coef[j] k(x, sv[j]) + rho (linear when n_supports is 0); one_class gives +-1. */
kiln_status kl_misc_svm_regressor(kl_kctx *c) {
    kl_rt *x, *y;
    KL_TRY(kl_misc_need(c, 0, "X", &x));
    const kl_node *nd = c->node;
    svm_kernel k;
    KL_TRY(svm_kernel_init(c, &k));
    int64_t nsv = kl_node_attr_int(nd, "n_supports", 0);
    bool one_class = kl_node_attr_int(nd, "one_class", 0) != 0;
    int pt = pt_code(kl_node_attr_string(nd, "post_transform", "NONE"));
    const kl_attr *sv = attr_of(nd, "support_vectors", KL_ATTR_FLOATS), *co = attr_of(nd, "coefficients", KL_ATTR_FLOATS);
    const kl_attr *rho = attr_of(nd, "rho", KL_ATTR_FLOATS);
    double *xd;
    int64_t N, F;
    KL_TRY(load_rows(c, x, &xd, &N, &F));
    kiln_status s = KILN_OK;
    if (pt < 0 || !co || (nsv > 0 && (!sv || (int64_t)sv->n != nsv * F || (int64_t)co->n < nsv)) || (nsv == 0 && (int64_t)co->n < F))
        s = kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "support_vectors/coefficients do not match n_supports and X");
    if (!s) s = kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 2, (int64_t[]){N, 1}, &y);
    for (int64_t r = 0; !s && r < N; r++) {
        const double *row = xd + r * F;
        double v = 0;
        if (nsv > 0)
            for (int64_t i = 0; i < nsv; i++) v += co->floats[i] * svm_eval(&k, row, sv->floats + i * F, F);
        else
            v = svm_eval(&(svm_kernel){0, 0, 0, 0}, row, co->floats, F);
        v += rho && rho->n ? rho->floats[0] : 0.0;
        if (one_class) v = v > 0 ? 1.0 : -1.0;
        post_transform(pt, &v, 1);
        ((float *)y->data)[r] = (float)v;
    }
    kl_free(xd);
    return s;
}

/* The reference's write_scores: n raw scores -> output scores (out has room
 * for 2); returns the number written. */
static int64_t svm_write_scores(int pt, const double *sc, int64_t n, int add, double *out) {
    if (n >= 2 || (n == 1 && pt == PT_PROBIT) || (n == 1 && add < 0)) {
        memcpy(out, sc, (size_t)n * sizeof *out);
        if (n >= 2 || pt == PT_PROBIT) post_transform(pt, out, n);
        return n;
    }
    if (n != 1) return 0;
    if (add == 0 || add == 1) {
        out[0] = 1 - sc[0], out[1] = sc[0];
        return 2;
    }
    out[0] = -sc[0], out[1] = sc[0];
    if (pt == PT_LOGISTIC || pt == PT_SOFTMAX || pt == PT_SOFTMAX_ZERO) post_transform(pt, out, 2);
    return 2;
}

/* SVMClassifier: linear (scores per class) or one-vs-one SVC voting, with the reference's
 * binary conventions; probability estimates (prob_a/prob_b) are not supported yet. */
kiln_status kl_misc_svm_classifier(kl_kctx *c) {
    kl_rt *x;
    KL_TRY(kl_misc_need(c, 0, "X", &x));
    const kl_node *nd = c->node;
    svm_kernel k;
    KL_TRY(svm_kernel_init(c, &k));
    const int64_t *ilab, *vpc;
    int64_t nil = attr_ints(nd, "classlabels_ints", &ilab), nsl;
    const kl_str *slab = attr_strings(nd, "classlabels_strings", &nsl);
    int64_t nlab = KL_MAX(KL_MAX(nil, nsl), 0), ncls = KL_MAX(nlab, 1);
    int64_t nvpc = attr_ints(nd, "vectors_per_class", &vpc);
    int pt = pt_code(kl_node_attr_string(nd, "post_transform", "NONE"));
    const kl_attr *sv = attr_of(nd, "support_vectors", KL_ATTR_FLOATS), *co = attr_of(nd, "coefficients", KL_ATTR_FLOATS);
    const kl_attr *rho = attr_of(nd, "rho", KL_ATTR_FLOATS);
    const kl_attr *pa = attr_of(nd, "prob_a", KL_ATTR_FLOATS);
    int64_t nrho = rho ? (int64_t)rho->n : 0;
    int64_t nsv = 0;
    for (int64_t i = 0; i < nvpc; i++) {
        if (vpc[i] < 0 || vpc[i] > (int64_t)1 << 40)
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "vectors_per_class[%lld] is invalid", (long long)i);
        nsv += vpc[i];
    }
    bool linear = nsv == 0;
    if (pa && pa->n && !linear)
        return kl_kctx_fail(c, KILN_ERR_UNSUPPORTED, "SVMClassifier with probability estimates (prob_a) is not supported yet");
    double *xd;
    int64_t N, F;
    KL_TRY(load_rows(c, x, &xd, &N, &F));
    kiln_status s = KILN_OK;
    int64_t ncol = linear ? ncls : ncls * (ncls - 1) / 2;
    if (pt < 0 || !co || nrho < 1 || (!linear && (nvpc != ncls || !sv || (int64_t)sv->n != nsv * F)) ||
        (linear && (int64_t)co->n != ncls * F) || (!linear && (int64_t)co->n != (ncls - 1) * nsv) ||
        (!linear && nrho < ncol))
        s = kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "SVMClassifier attributes do not match the classes, support vectors and X");
    bool allpos = true;
    for (size_t i = 0; !s && i < co->n; i++) allpos = allpos && co->floats[i] >= 0;
    double *scores = NULL, *kv = NULL, *outs = NULL;
    int64_t *lab = NULL, *start = NULL, *votes = NULL, width = 0;
    if (!s && (!(scores = kl_misc_calloc(ncol + 2, sizeof *scores)) || !(lab = kl_misc_calloc(N, sizeof *lab)) ||
               !(kv = kl_misc_calloc(nsv, sizeof *kv)) || !(start = kl_misc_calloc(ncls + 1, sizeof *start)) ||
               !(votes = kl_misc_calloc(ncls, sizeof *votes)) || !(outs = kl_misc_calloc(N * (ncol + 2), sizeof *outs))))
        s = KILN_ERR_NO_MEMORY;
    for (int64_t i = 0; !s && !linear && i < ncls; i++) start[i + 1] = start[i] + vpc[i];
    bool raw_label = nrho == 1 && nlab != 2; /* labels are 1/0 values, not class indices */
    int add = nrho == 1 && nlab == 2 ? 2 : -1;
    if (!s) width = svm_write_scores(pt, scores, ncol, add, outs); /* the same for every row */
    for (int64_t r = 0; !s && r < N; r++) {
        const double *row = xd + r * F;
        int64_t best = 0;
        double maxw;
        if (linear) {
            svm_kernel lin = {0, 0, 0, 0};
            for (int64_t j = 0; j < ncls; j++) scores[j] = rho->floats[0] + svm_eval(&lin, row, co->floats + j * F, F);
            for (int64_t j = 1; j < ncls; j++)
                if (scores[j] > scores[best]) best = j;
            maxw = scores[best];
        } else {
            for (int64_t i = 0; i < nsv; i++) kv[i] = svm_eval(&k, row, sv->floats + i * F, F);
            memset(votes, 0, (size_t)ncls * sizeof *votes);
            int64_t p = 0;
            for (int64_t i = 0; i < ncls; i++)
                for (int64_t j = i + 1; j < ncls; j++, p++) {
                    double v = rho->floats[p];
                    for (int64_t m = start[i]; m < start[i + 1]; m++) v += co->floats[(j - 1) * nsv + m] * kv[m];
                    for (int64_t m = start[j]; m < start[j + 1]; m++) v += co->floats[i * nsv + m] * kv[m];
                    scores[p] = v;
                    votes[v > 0 ? i : j]++;
                }
            for (int64_t j = 1; j < ncls; j++)
                if (votes[j] > votes[best]) best = j;
            maxw = (double)votes[best];
        }
        if (add == 2) lab[r] = allpos && maxw >= 0.5 ? 1 : best; /* the reference's set_score_svm */
        else if (raw_label) lab[r] = maxw > 0 ? 1 : 0;
        else lab[r] = best;
        svm_write_scores(pt, scores, ncol, add, outs + r * (ncol + 2));
    }
    kl_rt *y, *z;
    if (!s && nsl > 0) {
        s = kl_kctx_output(c, 0, KILN_DTYPE_STRING, 1, &N, &y);
        for (int64_t r = 0; !s && r < N; r++) {
            kl_str v = lab[r] >= 0 && lab[r] < nsl ? slab[lab[r]] : (kl_str){"", 0};
            s = kl_rt_set_string(y, r, v.ptr ? v.ptr : "", v.len);
        }
    } else if (!s) {
        s = kl_kctx_output(c, 0, KILN_DTYPE_INT64, 1, &N, &y);
        for (int64_t r = 0; !s && r < N; r++)
            ((int64_t *)y->data)[r] = !raw_label && nil > 0 && lab[r] < nil ? ilab[lab[r]] : lab[r];
    }
    if (!s && c->n_out > 1) s = kl_kctx_output(c, 1, KILN_DTYPE_FLOAT, 2, (int64_t[]){N, width}, &z);
    for (int64_t r = 0; !s && c->n_out > 1 && r < N; r++)
        for (int64_t j = 0; j < width; j++) ((float *)z->data)[r * width + j] = (float)outs[r * (ncol + 2) + j];
    kl_free(xd), kl_free(scores), kl_free(lab), kl_free(kv), kl_free(start), kl_free(votes), kl_free(outs);
    return s;
}
