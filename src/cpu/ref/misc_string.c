/* CPU reference kernels, misc family: string operators (StringConcat,
 * StringNormalizer, StringSplit, RegexFullMatch) and TfIdfVectorizer. */
#include <stdlib.h>
#include <string.h>

#include "cpu/ref/misc.h"

/* String element i of t ("" for a NULL pointer). */
static kl_str str_at(const kl_rt *t, int64_t i) {
    kl_str s = ((const kl_str *)t->data)[i];
    if (!s.ptr) s = (kl_str){"", 0};
    return s;
}

/* Input i as a string tensor, else an error naming it. */
static kiln_status need_strings(kl_kctx *c, size_t i, const char *what, kl_rt **out) {
    KL_TRY(kl_misc_need(c, i, what, out));
    if ((*out)->dtype != KILN_DTYPE_STRING) return kl_kctx_fail(c, KILN_ERR_TYPE, "input %zu (%s) must be a string tensor", i, what);
    return KILN_OK;
}

/* ---- StringConcat (opset 20) ------------------------------------------------------------ */

kiln_status kl_misc_string_concat(kl_kctx *c) {
    kl_rt *a, *b;
    KL_TRY(need_strings(c, 0, "X", &a));
    KL_TRY(need_strings(c, 1, "Y", &b));
    kl_rt *ins[2] = {a, b};
    int rank;
    int64_t dims[KILN_MAX_RANK];
    KL_TRY(kl_ref_broadcast_shape(ins, 2, &rank, dims));
    kl_rt *z;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_STRING, rank, dims, &z));
    char *buf = NULL;
    size_t cap = 0;
    kl_bcast it;
    kl_bcast_init(&it, rank, dims, ins, 2);
    for (int64_t i = 0; i < z->count; i++, kl_bcast_next(&it)) {
        kl_str x = str_at(a, it.off[0]), y = str_at(b, it.off[1]);
        size_t n = x.len + y.len;
        if (n + 1 > cap) {
            char *nb = kl_realloc_array(buf, n + 1, 1);
            if (!nb) {
                kl_free(buf);
                return KILN_ERR_NO_MEMORY;
            }
            buf = nb, cap = n + 1;
        }
        if (x.len) memcpy(buf, x.ptr, x.len);
        if (y.len) memcpy(buf + x.len, y.ptr, y.len);
        kiln_status s = kl_rt_set_string(z, i, buf ? buf : "", n);
        if (s) {
            kl_free(buf);
            return s;
        }
    }
    kl_free(buf);
    return KILN_OK;
}

/* ---- StringNormalizer (opset 10) --------------------------------------------------------- */

static char ascii_lower(char ch) { return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch; }
static char ascii_upper(char ch) { return ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch; }

/* String equality, ASCII case-insensitive unless case_sensitive. */
static bool str_eq(kl_str a, kl_str b, bool case_sensitive) {
    if (a.len != b.len) return false;
    if (case_sensitive) return a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0;
    for (size_t i = 0; i < a.len; i++)
        if (ascii_lower(a.ptr[i]) != ascii_lower(b.ptr[i])) return false;
    return true;
}

/* StringNormalizer: drop stopwords, then change case; [C] or [1, C] in, the same rank out
 * (one empty string when everything is dropped). */
kiln_status kl_misc_string_normalizer(kl_kctx *c) {
    kl_rt *x;
    KL_TRY(need_strings(c, 0, "X", &x));
    if (!(x->rank == 1 || (x->rank == 2 && x->dims[0] == 1)))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "X must have shape [C] or [1, C]");
    const char *action = kl_node_attr_string(c->node, "case_change_action", "NONE");
    int act = !strcmp(action, "LOWER") ? 1 : !strcmp(action, "UPPER") ? 2 : !strcmp(action, "NONE") ? 0 : -1;
    if (act < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "case_change_action '%s' is not NONE, LOWER or UPPER", action);
    bool cs = kl_node_attr_int(c->node, "is_case_sensitive", 0) != 0;
    const kl_attr *sw = kl_node_attr(c->node, "stopwords");
    size_t n_sw = sw && sw->type == KL_ATTR_STRINGS ? sw->n : 0;
    const char *locale = kl_node_attr_string(c->node, "locale", "en_US");
    (void)locale; /* ASCII case mapping, as for en_US */

    bool *keep = kl_misc_calloc(x->count, sizeof *keep);
    if (!keep) return KILN_ERR_NO_MEMORY;
    int64_t kept = 0;
    for (int64_t i = 0; i < x->count; i++) {
        kl_str s = str_at(x, i);
        bool stop = false;
        for (size_t k = 0; k < n_sw && !stop; k++) stop = str_eq(s, sw->strings[k], cs);
        keep[i] = !stop;
        kept += !stop;
    }
    kl_rt *y;
    int64_t dims[2] = {1, kept ? kept : 1};
    kiln_status st = x->rank == 1 ? kl_kctx_output(c, 0, KILN_DTYPE_STRING, 1, dims + 1, &y)
                                  : kl_kctx_output(c, 0, KILN_DTYPE_STRING, 2, dims, &y);
    char *buf = NULL;
    for (int64_t i = 0, o = 0; !st && i < x->count; i++) {
        if (!keep[i]) continue;
        kl_str s = str_at(x, i);
        kl_free(buf);
        if (!(buf = kl_malloc(s.len + 1))) {
            st = KILN_ERR_NO_MEMORY;
            break;
        }
        for (size_t k = 0; k < s.len; k++)
            buf[k] = act == 1 ? ascii_lower(s.ptr[k]) : act == 2 ? ascii_upper(s.ptr[k]) : s.ptr[k];
        st = kl_rt_set_string(y, o++, buf, s.len);
    }
    kl_free(buf);
    kl_free(keep);
    return st;
}

/* ---- StringSplit (opset 20) ----------------------------------------------------------------- */

/* Python's str.isspace() for ASCII bytes. */
static bool is_space(char ch) { return ch == ' ' || (ch >= '\t' && ch <= '\r') || (ch >= 0x1c && ch <= 0x1f); }

/* Split s like Python's str.split(delim or None, maxsplit); calls emit for
 * every piece (when pieces != NULL) and returns the number of pieces. */
static int64_t split_one(kl_str s, const char *delim, size_t dlen, int64_t maxsplit, kl_str *pieces) {
    int64_t n = 0;
    size_t i = 0;
    if (dlen == 0) {
        while (true) {
            while (i < s.len && is_space(s.ptr[i])) i++;
            if (i >= s.len) break;
            if (maxsplit >= 0 && n == maxsplit) { /* the rest, trailing whitespace kept (as Python) */
                if (pieces) pieces[n] = (kl_str){s.ptr + i, s.len - i};
                n++;
                break;
            }
            size_t b = i;
            while (i < s.len && !is_space(s.ptr[i])) i++;
            if (pieces) pieces[n] = (kl_str){s.ptr + b, i - b};
            n++;
        }
        return n;
    }
    size_t b = 0;
    while (maxsplit < 0 || n < maxsplit) {
        size_t f = b;
        bool found = false;
        for (; f + dlen <= s.len; f++)
            if (memcmp(s.ptr + f, delim, dlen) == 0) {
                found = true;
                break;
            }
        if (!found) break;
        if (pieces) pieces[n] = (kl_str){s.ptr + b, f - b};
        n++;
        b = f + dlen;
    }
    if (pieces) pieces[n] = (kl_str){s.ptr + b, s.len - b};
    return n + 1;
}

/* StringSplit: substrings padded with "" to the longest split, and the count per element. */
kiln_status kl_misc_string_split(kl_kctx *c) {
    kl_rt *x;
    KL_TRY(need_strings(c, 0, "X", &x));
    if (x->rank >= KILN_MAX_RANK) return kl_kctx_fail(c, KILN_ERR_UNSUPPORTED, "X has too many dimensions");
    const kl_attr *da = kl_node_attr(c->node, "delimiter");
    const char *delim = da && da->type == KL_ATTR_STRING && da->s.ptr ? da->s.ptr : "";
    size_t dlen = da && da->type == KL_ATTR_STRING ? da->s.len : 0;
    const kl_attr *ma = kl_node_attr(c->node, "maxsplit");
    int64_t maxsplit = ma && ma->type == KL_ATTR_INT && ma->i >= 0 ? ma->i : -1;

    int64_t most = 0;
    for (int64_t i = 0; i < x->count; i++) {
        int64_t n = split_one(str_at(x, i), delim, dlen, maxsplit, NULL);
        if (n > most) most = n;
    }
    int64_t dims[KILN_MAX_RANK];
    memcpy(dims, x->dims, (size_t)x->rank * sizeof *dims);
    dims[x->rank] = most;
    kl_rt *y, *z = NULL;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_STRING, x->rank + 1, dims, &y));
    if (c->n_out > 1) KL_TRY(kl_kctx_output(c, 1, KILN_DTYPE_INT64, x->rank, x->dims, &z));
    kl_str *pieces = kl_misc_calloc(most + 1, sizeof *pieces);
    if (!pieces) return KILN_ERR_NO_MEMORY;
    for (int64_t i = 0; i < x->count; i++) {
        int64_t n = split_one(str_at(x, i), delim, dlen, maxsplit, pieces);
        if (z) ((int64_t *)z->data)[i] = n;
        for (int64_t k = 0; k < n; k++) {
            kiln_status s = kl_rt_set_string(y, i * most + k, pieces[k].ptr, pieces[k].len);
            if (s) {
                kl_free(pieces);
                return s;
            }
        }
    }
    kl_free(pieces);
    return KILN_OK;
}

/* ---- RegexFullMatch (opset 20) ----------------------------------------------------------------- */

kiln_status kl_misc_regex_full_match(kl_kctx *c) {
    kl_rt *x;
    KL_TRY(need_strings(c, 0, "X", &x));
    const kl_attr *pa = kl_node_attr(c->node, "pattern");
    if (!pa || pa->type != KL_ATTR_STRING) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'pattern' is required");
    kl_regex *re;
    kiln_status s = kl_regex_compile(pa->s.ptr ? pa->s.ptr : "", pa->s.len, &re);
    if (s) return s;
    kl_rt *y;
    s = kl_kctx_output(c, 0, KILN_DTYPE_BOOL, x->rank, x->dims, &y);
    for (int64_t i = 0; !s && i < x->count; i++) {
        kl_str v = str_at(x, i);
        bool m = false;
        s = kl_regex_full_match(re, v.ptr, v.len, &m);
        ((uint8_t *)y->data)[i] = m;
    }
    kl_regex_free(re);
    return s;
}

/* ---- TfIdfVectorizer (opset 9) ---------------------------------------------------------------------- */

/* The pool's n-grams: gram g has length len[g], its items start at
 * start[g] in the pool, and it counts into output column col[g]. */
typedef struct tfidf {
    bool strings;
    const int64_t *pool_i;
    const kl_str *pool_s;
    int64_t n_grams;
    int64_t *start, *len, *col;
    int64_t *order; /* gram indices sorted by (len, items) for binary search */
} tfidf;

static const tfidf *g_tf; /* qsort context */

static int tf_cmp_items(const tfidf *t, int64_t ga, int64_t gb) {
    if (t->len[ga] != t->len[gb]) return t->len[ga] < t->len[gb] ? -1 : 1;
    for (int64_t k = 0; k < t->len[ga]; k++) {
        if (t->strings) {
            kl_str a = t->pool_s[t->start[ga] + k], b = t->pool_s[t->start[gb] + k];
            size_t m = KL_MIN(a.len, b.len);
            int r = m ? memcmp(a.ptr, b.ptr, m) : 0;
            if (r) return r;
            if (a.len != b.len) return a.len < b.len ? -1 : 1;
        } else {
            int64_t a = t->pool_i[t->start[ga] + k], b = t->pool_i[t->start[gb] + k];
            if (a != b) return a < b ? -1 : 1;
        }
    }
    return ga < gb ? -1 : ga > gb;
}

static int tf_qsort_cmp(const void *a, const void *b) { return tf_cmp_items(g_tf, *(const int64_t *)a, *(const int64_t *)b); }

/* Compare the input window (positions pos[0..n)) with gram g. */
static int tf_cmp_window(const tfidf *t, const kl_rt *x, const int64_t *pos, int64_t n, int64_t g) {
    if (n != t->len[g]) return n < t->len[g] ? -1 : 1;
    for (int64_t k = 0; k < n; k++) {
        if (t->strings) {
            kl_str a = str_at(x, pos[k]), b = t->pool_s[t->start[g] + k];
            size_t m = KL_MIN(a.len, b.len);
            int r = m ? memcmp(a.ptr, b.ptr, m) : 0;
            if (r) return r;
            if (a.len != b.len) return a.len < b.len ? -1 : 1;
        } else {
            int64_t a = kl_rt_get_i64(x, pos[k]), b = t->pool_i[t->start[g] + k];
            if (a != b) return a < b ? -1 : 1;
        }
    }
    return 0;
}

/* The gram (last in pool order, as later definitions win) equal to the window, or -1. */
static int64_t tf_find(const tfidf *t, const kl_rt *x, const int64_t *pos, int64_t n) {
    int64_t lo = 0, hi = t->n_grams, found = -1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int r = tf_cmp_window(t, x, pos, n, t->order[mid]);
        if (r > 0) lo = mid + 1;
        else {
            if (r == 0) found = mid;
            hi = mid;
        }
    }
    if (found < 0) return -1;
    while (found + 1 < t->n_grams && tf_cmp_window(t, x, pos, n, t->order[found + 1]) == 0) found++;
    return t->order[found];
}

/* TfIdfVectorizer: count pool n-grams (with skips) per row, weighted per mode TF / IDF / TFIDF. */
kiln_status kl_misc_tfidf(kl_kctx *c) {
    kl_rt *x;
    KL_TRY(kl_misc_need(c, 0, "X", &x));
    const kl_node *nd = c->node;
    bool strings = x->dtype == KILN_DTYPE_STRING;
    if (!strings && x->dtype != KILN_DTYPE_INT32 && x->dtype != KILN_DTYPE_INT64)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "X must be a string, int32 or int64 tensor");
    if (x->rank > 2) return kl_kctx_fail(c, KILN_ERR_SHAPE, "X must have shape [C] or [N, C]");
    int64_t minl = kl_node_attr_int(nd, "min_gram_length", 0), maxl = kl_node_attr_int(nd, "max_gram_length", 0);
    int64_t skip = kl_node_attr_int(nd, "max_skip_count", 0);
    const char *mode = kl_node_attr_string(nd, "mode", "");
    int wmode = !strcmp(mode, "TF") ? 1 : !strcmp(mode, "IDF") ? 2 : !strcmp(mode, "TFIDF") ? 3 : 0;
    if (!wmode) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "mode '%s' is not TF, IDF or TFIDF", mode);
    if (minl < 1 || maxl < minl || skip < 0)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "need 1 <= min_gram_length <= max_gram_length and max_skip_count >= 0");
    const int64_t *counts, *indexes;
    int64_t n_counts = kl_node_attr_ints(nd, "ngram_counts", &counts);
    int64_t n_idx = kl_node_attr_ints(nd, "ngram_indexes", &indexes);
    const kl_attr *ps = kl_node_attr(nd, "pool_strings"), *pi = kl_node_attr(nd, "pool_int64s");
    const kl_attr *wa = kl_node_attr(nd, "weights");
    int64_t n_w = wa && wa->type == KL_ATTR_FLOATS ? (int64_t)wa->n : 0;
    tfidf t = {.strings = strings};
    int64_t pool_n;
    if (strings) {
        if (!ps || ps->type != KL_ATTR_STRINGS) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "string input needs pool_strings");
        t.pool_s = ps->strings, pool_n = (int64_t)ps->n;
    } else {
        if (!pi || pi->type != KL_ATTR_INTS) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "integer input needs pool_int64s");
        t.pool_i = pi->ints, pool_n = (int64_t)pi->n;
    }
    if (n_counts < 0 || n_idx < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "ngram_counts and ngram_indexes are required");
    int64_t out_size = 0;
    for (int64_t i = 0; i < n_idx; i++) {
        if (indexes[i] < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "ngram_indexes[%lld] is negative", (long long)i);
        if (indexes[i] + 1 > out_size) out_size = indexes[i] + 1;
    }
    if (n_w && n_w < out_size) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "weights has fewer entries than the output size");

    /* Enumerate the pool's n-grams (ngram_counts[i] = start of the (i+1)-grams). */
    int64_t total = 0;
    for (int64_t i = 0; i < n_counts; i++) {
        int64_t b = counts[i], e = i + 1 < n_counts ? counts[i + 1] : pool_n;
        if (b < 0 || e < b || e > pool_n) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "ngram_counts is not a valid partition of the pool");
        total += (e - b) / (i + 1);
    }
    if (total > n_idx) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "ngram_indexes has fewer entries (%lld) than the pool's n-grams (%lld)",
                                           (long long)n_idx, (long long)total);
    t.start = kl_misc_calloc(total, sizeof *t.start);
    t.len = kl_misc_calloc(total, sizeof *t.len);
    t.col = kl_misc_calloc(total, sizeof *t.col);
    t.order = kl_misc_calloc(total, sizeof *t.order);
    int64_t B = x->rank == 2 ? x->dims[0] : 1, C = x->rank == 0 ? 1 : x->dims[x->rank - 1];
    int64_t *freq = kl_misc_calloc(B * out_size, sizeof *freq);
    int64_t *pos = kl_misc_calloc(maxl, sizeof *pos);
    kiln_status s = KILN_OK;
    if (!t.start || !t.len || !t.col || !t.order || !freq || !pos) {
        s = KILN_ERR_NO_MEMORY;
        goto done;
    }
    int64_t g = 0, n_keep = 0;
    for (int64_t i = 0; i < n_counts; i++) {
        int64_t b = counts[i], e = i + 1 < n_counts ? counts[i + 1] : pool_n, n = i + 1;
        for (int64_t k = 0; k + n <= e - b; k += n, g++) {
            if (n < minl || n > maxl) continue;
            t.start[n_keep] = b + k, t.len[n_keep] = n, t.col[n_keep] = indexes[g];
            t.order[n_keep] = n_keep;
            n_keep++;
        }
    }
    t.n_grams = n_keep;
    g_tf = &t;
    qsort(t.order, (size_t)n_keep, sizeof *t.order, tf_qsort_cmp);

    /* Count: for each skip distance and start, grow the window one item at a
     * time; unigrams are counted once (they do not depend on the skip). */
    for (int64_t r = 0; r < B && n_keep; r++) {
        int64_t base = r * C;
        for (int64_t d = 1; d <= skip + 1; d++) {
            int64_t first_n = d == 1 ? minl : KL_MAX(minl, 2);
            if (first_n > maxl) break;
            for (int64_t st = 0; st < C; st++) {
                for (int64_t n = 1; n <= maxl; n++) {
                    int64_t p = st + (n - 1) * d;
                    if (p >= C) break;
                    pos[n - 1] = base + p;
                    if (n < first_n) continue;
                    int64_t hit = tf_find(&t, x, pos, n);
                    if (hit >= 0) freq[r * out_size + t.col[hit]]++;
                }
            }
        }
    }
    kl_rt *y;
    if (x->rank == 2) s = kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 2, (int64_t[]){B, out_size}, &y);
    else s = kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 1, &out_size, &y);
    if (s) goto done;
    float *yo = y->data;
    for (int64_t i = 0; i < B * out_size; i++) {
        int64_t col = i % out_size;
        double f = (double)freq[i];
        double w = n_w ? wa->floats[col] : 1.0;
        yo[i] = (float)(wmode == 1 ? f : wmode == 2 ? (freq[i] > 0 ? w : 0.0) : w * f);
    }
done:
    kl_free(t.start);
    kl_free(t.len);
    kl_free(t.col);
    kl_free(t.order);
    kl_free(freq);
    kl_free(pos);
    return s;
}
