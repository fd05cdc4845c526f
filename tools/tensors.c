/* Tensor helpers of the kiln command (see tensors.h). */
#include "tensors.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"

/* ---- model inputs and outputs ----------------------------------------------------- */

bool kc_model_io(const kiln_model *m, bool outputs, kc_io **out, size_t *n) {
    size_t count = 0;
    if ((outputs ? kiln_model_output_count(m, &count) : kiln_model_input_count(m, &count)) != KILN_OK)
        return false;
    kc_io *io = calloc(count ? count : 1, sizeof *io);
    if (!io) return false;
    for (size_t i = 0; i < count; i++) {
        kc_io *e = &io[i];
        kiln_status s = outputs ? kiln_model_output_info(m, i, &e->name, &e->dtype, &e->rank)
                                : kiln_model_input_info(m, i, &e->name, &e->dtype, &e->rank);
        if (s != KILN_OK) {
            free(io);
            return false;
        }
        if (e->rank > KILN_MAX_RANK) e->rank = -1;
        for (int a = 0; a < e->rank; a++) {
            e->dims[a] = -1;
            if (outputs) kiln_model_output_dim(m, i, a, &e->dims[a], &e->dim_names[a]);
            else kiln_model_input_dim(m, i, a, &e->dims[a], &e->dim_names[a]);
        }
    }
    *out = io;
    *n = count;
    return true;
}

char *kc_fmt_io(const kc_io *io, char *buf, size_t size) {
    size_t pos = (size_t)snprintf(buf, size, "%s[", kiln_dtype_name(io->dtype));
    if (io->rank < 0 && pos < size) pos += (size_t)snprintf(buf + pos, size - pos, "?");
    for (int a = 0; a < io->rank && pos < size; a++) {
        const char *sep = a ? "," : "";
        if (io->dims[a] >= 0) pos += (size_t)snprintf(buf + pos, size - pos, "%s%lld", sep, (long long)io->dims[a]);
        else pos += (size_t)snprintf(buf + pos, size - pos, "%s%s", sep, io->dim_names[a] ? io->dim_names[a] : "?");
    }
    if (pos < size) snprintf(buf + pos, size - pos, "]");
    return buf;
}

char *kc_fmt_shape(const int64_t *dims, int rank, char *buf, size_t size) {
    size_t pos = (size_t)snprintf(buf, size, "[");
    for (int a = 0; a < rank && pos < size; a++)
        pos += (size_t)snprintf(buf + pos, size - pos, "%s%lld", a ? "," : "", (long long)dims[a]);
    if (pos < size) snprintf(buf + pos, size - pos, "]");
    return buf;
}

char *kc_fmt_tensor(const kiln_tensor *t, char *buf, size_t size) {
    kiln_dtype dt = KILN_DTYPE_UNDEFINED;
    int rank = 0;
    const int64_t *shape = NULL;
    kiln_tensor_dtype(t, &dt);
    kiln_tensor_shape(t, &rank, &shape);
    int n = snprintf(buf, size, "%s", kiln_dtype_name(dt));
    if (n >= 0 && (size_t)n < size) kc_fmt_shape(shape, rank, buf + n, size - (size_t)n);
    return buf;
}

char *kc_fmt_names(const kc_io *io, size_t n, char *buf, size_t size) {
    size_t pos = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && pos < size; i++)
        pos += (size_t)snprintf(buf + pos, size - pos, "%s'%s'", i ? ", " : "", io[i].name);
    return buf;
}

/* ---- parsing ---------------------------------------------------------------------- */

bool kc_parse_dims(const char *text, size_t len, int64_t *dims, int *rank, char *err, size_t errsize) {
    *rank = 0;
    if (len == 0 || (len == 6 && strncmp(text, "scalar", 6) == 0)) return true;
    const char *p = text, *end = text + len;
    while (p <= end) {
        const char *q = p;
        int64_t v = 0;
        while (q < end && isdigit((unsigned char)*q)) {
            if (v > (INT64_MAX - 9) / 10) break;
            v = v * 10 + (*q++ - '0');
        }
        if (q == p || (q < end && *q != 'x' && *q != 'X')) {
            snprintf(err, errsize, "'%.*s' is not a shape like 1x3x224x224", (int)len, text);
            return false;
        }
        if (*rank >= KILN_MAX_RANK) {
            snprintf(err, errsize, "'%.*s' has more than %d dimensions", (int)len, text, KILN_MAX_RANK);
            return false;
        }
        dims[(*rank)++] = v;
        if (q == end) break;
        p = q + 1;
        if (p == end) {
            snprintf(err, errsize, "'%.*s' is not a shape like 1x3x224x224", (int)len, text);
            return false;
        }
    }
    return true;
}

kiln_dtype kc_dtype_parse(const char *name) {
    static const struct {
        const char *name;
        kiln_dtype dtype;
    } names[] = {
        {"float32", KILN_DTYPE_FLOAT},  {"float", KILN_DTYPE_FLOAT},     {"f4", KILN_DTYPE_FLOAT},
        {"fp32", KILN_DTYPE_FLOAT},     {"float16", KILN_DTYPE_FLOAT16}, {"half", KILN_DTYPE_FLOAT16},
        {"f2", KILN_DTYPE_FLOAT16},     {"fp16", KILN_DTYPE_FLOAT16},    {"float64", KILN_DTYPE_DOUBLE},
        {"double", KILN_DTYPE_DOUBLE},  {"f8", KILN_DTYPE_DOUBLE},       {"fp64", KILN_DTYPE_DOUBLE},
        {"bfloat16", KILN_DTYPE_BFLOAT16}, {"bf16", KILN_DTYPE_BFLOAT16}, {"int8", KILN_DTYPE_INT8},
        {"int16", KILN_DTYPE_INT16},    {"int32", KILN_DTYPE_INT32},     {"int64", KILN_DTYPE_INT64},
        {"uint8", KILN_DTYPE_UINT8},    {"uint16", KILN_DTYPE_UINT16},   {"uint32", KILN_DTYPE_UINT32},
        {"uint64", KILN_DTYPE_UINT64},  {"bool", KILN_DTYPE_BOOL},       {"i1", KILN_DTYPE_INT8},
        {"i2", KILN_DTYPE_INT16},       {"i4", KILN_DTYPE_INT32},        {"i8", KILN_DTYPE_INT64},
        {"u1", KILN_DTYPE_UINT8},       {"u2", KILN_DTYPE_UINT16},       {"u4", KILN_DTYPE_UINT32},
        {"u8", KILN_DTYPE_UINT64},      {"b1", KILN_DTYPE_BOOL},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i].name) == 0) return names[i].dtype;
    return KILN_DTYPE_UNDEFINED;
}

bool kc_dtype_numeric(kiln_dtype t) {
    switch (t) {
    case KILN_DTYPE_FLOAT: case KILN_DTYPE_DOUBLE: case KILN_DTYPE_FLOAT16: case KILN_DTYPE_BFLOAT16:
    case KILN_DTYPE_INT8: case KILN_DTYPE_INT16: case KILN_DTYPE_INT32: case KILN_DTYPE_INT64:
    case KILN_DTYPE_UINT8: case KILN_DTYPE_UINT16: case KILN_DTYPE_UINT32: case KILN_DTYPE_UINT64:
    case KILN_DTYPE_BOOL:
        return true;
    default:
        return false;
    }
}

/* ---- elements --------------------------------------------------------------------- */

double kc_elem_get(const void *data, kiln_dtype t, size_t i) {
    switch (t) {
    case KILN_DTYPE_FLOAT: return ((const float *)data)[i];
    case KILN_DTYPE_DOUBLE: return ((const double *)data)[i];
    case KILN_DTYPE_FLOAT16: return kl_f16_to_f32(((const uint16_t *)data)[i]);
    case KILN_DTYPE_BFLOAT16: return kl_bf16_to_f32(((const uint16_t *)data)[i]);
    case KILN_DTYPE_INT8: return ((const int8_t *)data)[i];
    case KILN_DTYPE_INT16: return ((const int16_t *)data)[i];
    case KILN_DTYPE_INT32: return ((const int32_t *)data)[i];
    case KILN_DTYPE_INT64: return (double)((const int64_t *)data)[i];
    case KILN_DTYPE_UINT8: return ((const uint8_t *)data)[i];
    case KILN_DTYPE_UINT16: return ((const uint16_t *)data)[i];
    case KILN_DTYPE_UINT32: return ((const uint32_t *)data)[i];
    case KILN_DTYPE_UINT64: return (double)((const uint64_t *)data)[i];
    case KILN_DTYPE_BOOL: return ((const uint8_t *)data)[i] != 0;
    default: return NAN;
    }
}

/* v clamped to [lo, hi] and truncated toward zero (NaN -> 0). */
static double kc_clampd(double v, double lo, double hi) {
    if (v != v) return 0;
    v = trunc(v);
    return v < lo ? lo : v > hi ? hi : v;
}

void kc_elem_set(void *data, kiln_dtype t, size_t i, double v) {
    switch (t) {
    case KILN_DTYPE_FLOAT: ((float *)data)[i] = (float)v; break;
    case KILN_DTYPE_DOUBLE: ((double *)data)[i] = v; break;
    case KILN_DTYPE_FLOAT16: ((uint16_t *)data)[i] = kl_f32_to_f16((float)v); break;
    case KILN_DTYPE_BFLOAT16: ((uint16_t *)data)[i] = kl_f32_to_bf16((float)v); break;
    case KILN_DTYPE_INT8: ((int8_t *)data)[i] = (int8_t)kc_clampd(v, INT8_MIN, INT8_MAX); break;
    case KILN_DTYPE_INT16: ((int16_t *)data)[i] = (int16_t)kc_clampd(v, INT16_MIN, INT16_MAX); break;
    case KILN_DTYPE_INT32: ((int32_t *)data)[i] = (int32_t)kc_clampd(v, INT32_MIN, INT32_MAX); break;
    case KILN_DTYPE_INT64:
        ((int64_t *)data)[i] = (int64_t)kc_clampd(v, -9223372036854775808.0, 9223372036854774784.0);
        break;
    case KILN_DTYPE_UINT8: ((uint8_t *)data)[i] = (uint8_t)kc_clampd(v, 0, UINT8_MAX); break;
    case KILN_DTYPE_UINT16: ((uint16_t *)data)[i] = (uint16_t)kc_clampd(v, 0, UINT16_MAX); break;
    case KILN_DTYPE_UINT32: ((uint32_t *)data)[i] = (uint32_t)kc_clampd(v, 0, UINT32_MAX); break;
    case KILN_DTYPE_UINT64: ((uint64_t *)data)[i] = (uint64_t)kc_clampd(v, 0, 18446744073709549568.0); break;
    case KILN_DTYPE_BOOL: ((uint8_t *)data)[i] = v != 0; break;
    default: break;
    }
}

/* Element count of a tensor. */
static size_t kc_count(const kiln_tensor *t) {
    int64_t n = 0;
    kiln_tensor_element_count(t, &n);
    return (size_t)n;
}

bool kc_tensor_convert(kiln_tensor *src, kiln_dtype to, kiln_tensor **out, char *err, size_t errsize) {
    kiln_dtype from;
    int rank;
    const int64_t *shape;
    void *sdata, *ddata;
    size_t sbytes, dbytes;
    kiln_tensor_dtype(src, &from);
    kiln_tensor_shape(src, &rank, &shape);
    if (!kc_dtype_numeric(from) || !kc_dtype_numeric(to)) {
        snprintf(err, errsize, "cannot convert %s to %s", kiln_dtype_name(from), kiln_dtype_name(to));
        return false;
    }
    kiln_tensor *t;
    if (kiln_tensor_create(to, shape, rank, &t) != KILN_OK) {
        snprintf(err, errsize, "%s", kiln_last_error());
        return false;
    }
    kiln_tensor_data(src, &sdata, &sbytes);
    kiln_tensor_data(t, &ddata, &dbytes);
    size_t n = kc_count(src);
    for (size_t i = 0; i < n; i++) kc_elem_set(ddata, to, i, kc_elem_get(sdata, from, i));
    *out = t;
    return true;
}

/* ---- random tensors --------------------------------------------------------------- */

uint64_t kc_rng_next(kc_rng *r) {
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double kc_rng_uniform(kc_rng *r) { return (double)(kc_rng_next(r) >> 11) * 0x1.0p-53; }

bool kc_tensor_random(kiln_dtype dtype, const int64_t *dims, int rank, kc_rng *rng, kiln_tensor **out,
                      char *err, size_t errsize) {
    if (!kc_dtype_numeric(dtype)) {
        snprintf(err, errsize, "random %s values are not supported", kiln_dtype_name(dtype));
        return false;
    }
    kiln_tensor *t;
    if (kiln_tensor_create(dtype, dims, rank, &t) != KILN_OK) {
        snprintf(err, errsize, "%s", kiln_last_error());
        return false;
    }
    void *data;
    size_t nbytes;
    kiln_tensor_data(t, &data, &nbytes);
    size_t n = kc_count(t);
    bool is_float = dtype == KILN_DTYPE_FLOAT || dtype == KILN_DTYPE_DOUBLE || dtype == KILN_DTYPE_FLOAT16 ||
                    dtype == KILN_DTYPE_BFLOAT16;
    for (size_t i = 0; i < n; i++) {
        double v;
        if (is_float) v = kc_rng_uniform(rng) * 2.0 - 1.0;
        else if (dtype == KILN_DTYPE_BOOL) v = (double)(kc_rng_next(rng) >> 63);
        else if (dtype == KILN_DTYPE_UINT8) v = (double)(kc_rng_next(rng) >> 56);
        else v = (double)(kc_rng_next(rng) % 10);
        kc_elem_set(data, dtype, i, v);
    }
    *out = t;
    return true;
}

/* ---- statistics ------------------------------------------------------------------- */

bool kc_tensor_stats(kiln_tensor *t, kc_stats *s) {
    kiln_dtype dt;
    void *data;
    size_t nbytes;
    kiln_tensor_dtype(t, &dt);
    kiln_tensor_data(t, &data, &nbytes);
    memset(s, 0, sizeof *s);
    if (!kc_dtype_numeric(dt)) return false;
    size_t n = kc_count(t);
    double sum = 0;
    int64_t finite = 0;
    s->min = INFINITY;
    s->max = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double v = kc_elem_get(data, dt, i);
        if (isnan(v)) {
            s->nan++;
            continue;
        }
        if (isinf(v)) s->inf++;
        else {
            sum += v;
            finite++;
        }
        if (v < s->min) s->min = v;
        if (v > s->max) s->max = v;
    }
    s->count = (int64_t)n;
    s->mean = finite ? sum / (double)finite : NAN;
    if (s->min > s->max) s->min = s->max = NAN;
    return true;
}

/* ---- classifiers ------------------------------------------------------------------ */

bool kc_is_classifier(const kiln_tensor *t, int64_t *rows, int64_t *classes) {
    kiln_dtype dt;
    int rank;
    const int64_t *shape;
    kiln_tensor_dtype(t, &dt);
    kiln_tensor_shape(t, &rank, &shape);
    if (!kc_dtype_numeric(dt) || dt == KILN_DTYPE_BOOL) return false;
    if (rank == 2 && shape[1] > 1 && shape[0] > 0) {
        *rows = shape[0];
        *classes = shape[1];
        return true;
    }
    if (rank == 1 && shape[0] > 1) {
        *rows = 1;
        *classes = shape[0];
        return true;
    }
    return false;
}

bool kc_row_probs(kiln_tensor *t, int64_t row, int64_t classes, double *p) {
    kiln_dtype dt;
    void *data;
    size_t nbytes;
    kiln_tensor_dtype(t, &dt);
    kiln_tensor_data(t, &data, &nbytes);
    size_t base = (size_t)row * (size_t)classes;
    double mx = -INFINITY, sum = 0;
    bool probs = true;
    for (int64_t c = 0; c < classes; c++) {
        p[c] = kc_elem_get(data, dt, base + (size_t)c);
        if (!(p[c] >= 0 && p[c] <= 1)) probs = false;
        sum += p[c];
        if (p[c] > mx) mx = p[c];
    }
    if (probs && fabs(sum - 1.0) < 1e-3) return false;
    sum = 0;
    for (int64_t c = 0; c < classes; c++) {
        p[c] = isinf(mx) ? (p[c] == mx ? 1.0 : 0.0) : exp(p[c] - mx);
        sum += p[c];
    }
    for (int64_t c = 0; c < classes; c++) p[c] = sum > 0 ? p[c] / sum : NAN;
    return true;
}

/* True when p[a] ranks before p[b]: larger first, NaN last, ties to the lower index. */
static bool kc_ranks_before(const double *p, int64_t a, int64_t b) {
    if (isnan(p[b])) return !isnan(p[a]) || a < b;
    if (isnan(p[a])) return false;
    return p[a] > p[b] || (p[a] == p[b] && a < b);
}

void kc_topk(const double *p, int64_t n, int64_t k, int64_t *idx) {
    if (k > n) k = n;
    int64_t have = 0;
    for (int64_t c = 0; c < n; c++) {
        if (have == k && !kc_ranks_before(p, c, idx[k - 1])) continue;
        int64_t j = have < k ? have++ : k - 1;
        while (j > 0 && kc_ranks_before(p, c, idx[j - 1])) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = c;
    }
}

/* Index of the largest value of row `row` (NaN last). */
static int64_t kc_argmax(const void *data, kiln_dtype dt, size_t base, int64_t classes) {
    int64_t best = 0;
    double bv = kc_elem_get(data, dt, base);
    for (int64_t c = 1; c < classes; c++) {
        double v = kc_elem_get(data, dt, base + (size_t)c);
        if (v > bv || (isnan(bv) && !isnan(v))) {
            bv = v;
            best = c;
        }
    }
    return best;
}

void kc_tensor_error(kiln_tensor *got, kiln_tensor *ref, kc_error *e) {
    memset(e, 0, sizeof *e);
    kiln_dtype gt, rt;
    int gr, rr;
    const int64_t *gs, *rs;
    void *gd, *rd;
    size_t gb, rb;
    kiln_tensor_dtype(got, &gt);
    kiln_tensor_dtype(ref, &rt);
    kiln_tensor_shape(got, &gr, &gs);
    kiln_tensor_shape(ref, &rr, &rs);
    kiln_tensor_data(got, &gd, &gb);
    kiln_tensor_data(ref, &rd, &rb);
    if (gr != rr || memcmp(gs, rs, (size_t)gr * sizeof *gs) != 0 || !kc_dtype_numeric(gt) ||
        !kc_dtype_numeric(rt)) {
        e->shape_differs = true;
        e->max_abs = e->rel_l2 = NAN;
        return;
    }
    size_t n = kc_count(ref);
    double diff2 = 0, ref2 = 0;
    for (size_t i = 0; i < n; i++) {
        double a = kc_elem_get(gd, gt, i), b = kc_elem_get(rd, rt, i);
        double d = fabs(a - b);
        if (a == b) d = 0; /* equal infinities */
        if (isnan(a) != isnan(b)) d = INFINITY;
        else if (isnan(a)) d = 0;
        if (d > e->max_abs || isnan(d)) e->max_abs = d;
        diff2 += d * d;
        if (isfinite(b)) ref2 += b * b;
    }
    e->rel_l2 = diff2 == 0 ? 0 : ref2 > 0 ? sqrt(diff2 / ref2) : INFINITY;
    int64_t rows, classes;
    if (kc_is_classifier(ref, &rows, &classes)) {
        e->top1_rows = rows;
        for (int64_t r = 0; r < rows; r++)
            e->top1_same += kc_argmax(gd, gt, (size_t)r * (size_t)classes, classes) ==
                            kc_argmax(rd, rt, (size_t)r * (size_t)classes, classes);
    }
}
