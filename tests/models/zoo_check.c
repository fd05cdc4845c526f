/*
 * zoo_check.c — runs one model of the zoo (models/export.py) with kiln and
 * compares its outputs with PyTorch's, and optionally ONNX Runtime's.
 *
 *   zoo_check [--ort DIR] [--top5] [--split AXIS=N1,N2,...] [--threads N] [--name NAME]
 *             MODEL.onnx REF_DIR
 *
 * Uses the public API only.  Feeds REF_DIR/input_K.npy to the K-th graph
 * input, runs the model and compares the K-th output with
 * REF_DIR/output_K.npy (PyTorch) and, with --ort, DIR/output_K.npy (ONNX
 * Runtime on the same input).  In float64: relative L2 error
 * ||y - ref|| / ||ref|| <= 1e-5 and max |y - ref| <= 1e-4 * max |ref| for
 * floating-point outputs, exact equality for integer ones; the same shape
 * for all.  Every floating-point output must be finite and not near zero
 * (max |y| >= 1e-3, not constant).  --top5: outputs of shape [N, C >= 5]
 * (classifier logits) must give, row by row, the same five best classes in
 * the same order.  --split AXIS=N1,N2,...: each output (whose dim AXIS must
 * be N1 + N2 + ...) is also compared part by part along AXIS, each part with
 * the same criteria on its own (a detector's [batch, 4 + classes, anchors]
 * output: box coordinates in pixels would otherwise hide errors in the
 * scores).  Prints one line per output (and part) and reference; a model that
 * fails to load or run prints kiln's message, which names the node.
 * Exit status: 0 all checks pass, 1 a check fails, 2 usage or file errors.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln.h"

#define REL_L2_MAX 1e-5
#define MAX_ABS_REL 1e-4
#define NEAR_ZERO 1e-3

static const char *g_name = "model";

#define MAX_PARTS 16
/* --split: the axis (-1: none) and the part sizes along it. */
static int g_split_axis = -1;
static int g_n_parts;
static int64_t g_parts[MAX_PARTS];

/* A .npy array: element type, shape and data (malloc'ed). */
typedef struct npy {
    kiln_dtype dtype;
    int rank;
    int64_t dims[KILN_MAX_RANK];
    int64_t count;
    size_t nbytes;
    void *data;
} npy;

/* Element type of a numpy descr ("<f4"), or UNDEFINED. */
static kiln_dtype npy_dtype(const char *d) {
    static const struct {
        const char *descr;
        kiln_dtype dtype;
    } map[] = {{"<f4", KILN_DTYPE_FLOAT},  {"<f8", KILN_DTYPE_DOUBLE}, {"<f2", KILN_DTYPE_FLOAT16},
               {"<i8", KILN_DTYPE_INT64},  {"<i4", KILN_DTYPE_INT32},  {"<i2", KILN_DTYPE_INT16},
               {"|i1", KILN_DTYPE_INT8},   {"|u1", KILN_DTYPE_UINT8},  {"<u2", KILN_DTYPE_UINT16},
               {"<u4", KILN_DTYPE_UINT32}, {"<u8", KILN_DTYPE_UINT64}, {"|b1", KILN_DTYPE_BOOL}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i].descr, d)) return map[i].dtype;
    return KILN_DTYPE_UNDEFINED;
}

/* Read a C-order little-endian .npy file (format 1.0 to 3.0) into *a.
 * Returns false with a message on stderr on any error. */
static bool npy_read(const char *path, npy *a) {
    memset(a, 0, sizeof *a);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "zoo_check: %s: %s\n", path, strerror(errno));
        return false;
    }
    unsigned char pre[12];
    char header[4096];
    bool ok = false;
    size_t hlen = 0;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) goto bad;
    if (pre[6] == 1) {
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    } else {
        if (fread(pre + 10, 1, 2, f) != 2) goto bad;
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    if (hlen >= sizeof header || fread(header, 1, hlen, f) != hlen) goto bad;
    header[hlen] = 0;
    const char *d = strstr(header, "'descr':"), *o = strstr(header, "'fortran_order':"),
               *s = strstr(header, "'shape':");
    if (!d || !o || !s) goto bad;
    char descr[8] = {0};
    if (sscanf(d + 8, " '%7[^']'", descr) != 1) goto bad;
    a->dtype = npy_dtype(descr);
    if (a->dtype == KILN_DTYPE_UNDEFINED || strncmp(o + 16, " False", 6) != 0) {
        fprintf(stderr, "zoo_check: %s: unsupported array (%s)\n", path, header);
        fclose(f);
        return false;
    }
    const char *p = strchr(s, '(');
    if (!p) goto bad;
    a->count = 1;
    for (p++; *p && *p != ')';) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p) {
            p++;
            continue;
        }
        if (a->rank >= KILN_MAX_RANK || v < 0 || (v && a->count > INT64_MAX / v)) goto bad;
        a->dims[a->rank++] = v;
        a->count *= v;
        p = end;
    }
    size_t esize = kiln_dtype_bits(a->dtype) / 8;
    if ((uint64_t)a->count > SIZE_MAX / esize) goto bad;
    a->nbytes = (size_t)a->count * esize;
    a->data = malloc(a->nbytes ? a->nbytes : 1);
    if (!a->data || fread(a->data, 1, a->nbytes, f) != a->nbytes) goto bad;
    ok = true;
bad:
    if (!ok) {
        fprintf(stderr, "zoo_check: %s: not a readable .npy file\n", path);
        free(a->data);
        a->data = NULL;
    }
    fclose(f);
    return ok;
}

/* Element i of a tensor's data as a double. */
static double elem(kiln_dtype t, const void *data, int64_t i) {
    switch (t) {
    case KILN_DTYPE_FLOAT: return ((const float *)data)[i];
    case KILN_DTYPE_DOUBLE: return ((const double *)data)[i];
    case KILN_DTYPE_INT64: return (double)((const int64_t *)data)[i];
    case KILN_DTYPE_INT32: return ((const int32_t *)data)[i];
    case KILN_DTYPE_INT16: return ((const int16_t *)data)[i];
    case KILN_DTYPE_INT8: return ((const int8_t *)data)[i];
    case KILN_DTYPE_UINT8:
    case KILN_DTYPE_BOOL: return ((const uint8_t *)data)[i];
    case KILN_DTYPE_UINT16: return ((const uint16_t *)data)[i];
    case KILN_DTYPE_UINT32: return ((const uint32_t *)data)[i];
    case KILN_DTYPE_UINT64: return (double)((const uint64_t *)data)[i];
    default: return NAN;
    }
}

static bool is_float(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT || t == KILN_DTYPE_DOUBLE || t == KILN_DTYPE_FLOAT16;
}

/* "[2,1000]" into buf. */
static const char *shape_str(int rank, const int64_t *dims, char *buf, size_t size) {
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < rank && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? "," : "", (long long)dims[i]);
    if (n < size) snprintf(buf + n, size - n, "]");
    return buf;
}

/* The five largest of row[0..c) (c >= 5), best first, ties by index. */
static void top5(const kiln_dtype t, const void *data, int64_t off, int64_t c, int64_t best[5]) {
    for (int k = 0; k < 5; k++) best[k] = -1;
    for (int64_t j = 0; j < c; j++) {
        double v = elem(t, data, off + j);
        for (int k = 0; k < 5; k++) {
            if (best[k] < 0 || v > elem(t, data, off + best[k])) {
                memmove(best + k + 1, best + k, (size_t)(4 - k) * sizeof best[0]);
                best[k] = j;
                break;
            }
        }
    }
}

/* Compare kiln's output `out` (named `oname`) with `ref` from `who`; print
 * one line; return whether every check passes. */
static bool compare(const char *oname, kiln_tensor *out, const npy *ref, const char *who, bool want_top5) {
    kiln_dtype t;
    int rank;
    const int64_t *dims;
    void *data;
    size_t nbytes;
    int64_t count;
    char s1[128], s2[128];
    if (kiln_tensor_dtype(out, &t) || kiln_tensor_shape(out, &rank, &dims) ||
        kiln_tensor_data(out, &data, &nbytes) || kiln_tensor_element_count(out, &count)) {
        printf("FAIL %s: output '%s': cannot read the tensor: %s\n", g_name, oname, kiln_last_error());
        return false;
    }
    shape_str(rank, dims, s1, sizeof s1);
    shape_str(ref->rank, ref->dims, s2, sizeof s2);
    if (t != ref->dtype || rank != ref->rank || memcmp(dims, ref->dims, (size_t)rank * sizeof *dims)) {
        printf("FAIL %s: output '%s' vs %s: kiln gives %s %s, %s gives %s %s\n", g_name, oname, who,
               kiln_dtype_name(t), s1, who, kiln_dtype_name(ref->dtype), s2);
        return false;
    }
    if (!is_float(t)) {
        int64_t bad = 0, first = -1;
        for (int64_t i = 0; i < count; i++)
            if (elem(t, data, i) != elem(t, ref->data, i) && bad++ == 0) first = i;
        if (bad)
            printf("FAIL %s: output '%s' %s %s vs %s: %lld of %lld elements differ (first at %lld: %g vs %g)\n",
                   g_name, oname, kiln_dtype_name(t), s1, who, (long long)bad, (long long)count,
                   (long long)first, elem(t, data, first), elem(t, ref->data, first));
        else
            printf("ok %s: output '%s' %s %s vs %s: identical\n", g_name, oname, kiln_dtype_name(t), s1, who);
        return bad == 0;
    }
    double d2 = 0, r2 = 0, max_abs = 0, max_ref = 0, max_out = 0, sum = 0, sum2 = 0;
    int64_t nonfinite = 0;
    for (int64_t i = 0; i < count; i++) {
        double y = elem(t, data, i), r = elem(t, ref->data, i);
        if (!isfinite(y)) {
            nonfinite++;
            continue;
        }
        d2 += (y - r) * (y - r);
        r2 += r * r;
        max_abs = fmax(max_abs, fabs(y - r));
        max_ref = fmax(max_ref, fabs(r));
        max_out = fmax(max_out, fabs(y));
        sum += y;
        sum2 += y * y;
    }
    double rel = r2 > 0 ? sqrt(d2 / r2) : (d2 > 0 ? INFINITY : 0);
    double mean = count ? sum / (double)count : 0;
    double var = count ? sum2 / (double)count - mean * mean : 0;
    double limit = MAX_ABS_REL * max_ref;
    bool ok = nonfinite == 0 && rel <= REL_L2_MAX && max_abs <= limit;
    char extra[256] = "";
    size_t n = 0;
    if (nonfinite)
        n += (size_t)snprintf(extra + n, sizeof extra - n, "; %lld non-finite values", (long long)nonfinite);
    if (max_out < NEAR_ZERO || var <= 0) {
        ok = false;
        n += (size_t)snprintf(extra + n, sizeof extra - n, "; output is near zero or constant (max |y| %.3g)",
                              max_out);
    }
    if (want_top5 && rank == 2 && dims[1] >= 5) {
        int64_t rows_bad = 0;
        for (int64_t r = 0; r < dims[0]; r++) {
            int64_t a[5], b[5];
            top5(t, data, r * dims[1], dims[1], a);
            top5(t, ref->data, r * dims[1], dims[1], b);
            if (memcmp(a, b, sizeof a)) rows_bad++;
        }
        if (rows_bad) ok = false;
        n += (size_t)snprintf(extra + n, sizeof extra - n, "; top-5 %s",
                              rows_bad ? "DIFFERS" : "same");
        if (rows_bad && n < sizeof extra)
            snprintf(extra + n, sizeof extra - n, " in %lld of %lld rows", (long long)rows_bad, (long long)dims[0]);
    }
    printf("%s %s: output '%s' %s vs %s: rel_l2 %.3g (max %.0e), max_abs %.3g (max %.3g = 1e-4 x max|ref| %.4g)%s\n",
           ok ? "ok" : "FAIL", g_name, oname, s1, who, rel, REL_L2_MAX, max_abs, limit, max_ref, extra);
    return ok;
}

/* Parse --split's "AXIS=N1,N2,..." into g_split_axis and g_parts; false if
 * malformed. */
static bool parse_split(const char *spec) {
    char *end;
    long axis = strtol(spec, &end, 10);
    if (end == spec || *end != '=' || axis < 0 || axis >= KILN_MAX_RANK) return false;
    g_n_parts = 0;
    const char *p = end + 1;
    for (;;) {
        long long n = strtoll(p, &end, 10);
        if (end == p || n <= 0 || g_n_parts == MAX_PARTS) return false;
        g_parts[g_n_parts++] = n;
        if (*end == 0) break;
        if (*end != ',') return false;
        p = end + 1;
    }
    g_split_axis = (int)axis;
    return true;
}

/* Copy the elements [lo, hi) along `axis` of a C-order array `src` of shape
 * dims[rank] (esize bytes each) to `dst`, in C order. */
static void slice_copy(const void *src, int rank, const int64_t *dims, int axis, int64_t lo, int64_t hi,
                       size_t esize, void *dst) {
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= dims[i];
    for (int i = axis + 1; i < rank; i++) inner *= dims[i];
    size_t row = (size_t)((hi - lo) * inner) * esize;
    for (int64_t o = 0; o < outer; o++)
        memcpy((char *)dst + (size_t)o * row,
               (const char *)src + (size_t)((o * dims[axis] + lo) * inner) * esize, row);
}

/* Compare each --split part of kiln's output `out` with the same part of
 * `ref` (see compare()); an output whose dim g_split_axis is not the sum of
 * the parts fails.  Returns whether every part passes. */
static bool compare_parts(const char *oname, kiln_tensor *out, const npy *ref, const char *who) {
    kiln_dtype t;
    int rank;
    const int64_t *dims;
    void *data;
    size_t nbytes;
    int64_t sum = 0;
    for (int k = 0; k < g_n_parts; k++) sum += g_parts[k];
    if (kiln_tensor_dtype(out, &t) || kiln_tensor_shape(out, &rank, &dims) ||
        kiln_tensor_data(out, &data, &nbytes))
        return false; /* compare() has reported it */
    if (rank != ref->rank || memcmp(dims, ref->dims, (size_t)rank * sizeof *dims) || t != ref->dtype)
        return false; /* so has it */
    if (g_split_axis >= rank || dims[g_split_axis] != sum) {
        printf("FAIL %s: output '%s': --split: dim %d is not %lld\n", g_name, oname, g_split_axis,
               (long long)sum);
        return false;
    }
    size_t esize = kiln_dtype_bits(t) / 8;
    bool ok = true;
    int64_t lo = 0;
    for (int k = 0; k < g_n_parts; k++) {
        int64_t hi = lo + g_parts[k], pd[KILN_MAX_RANK];
        memcpy(pd, dims, (size_t)rank * sizeof *dims);
        pd[g_split_axis] = g_parts[k];
        npy part = *ref;
        part.dims[g_split_axis] = g_parts[k];
        part.count = ref->count / sum * g_parts[k];
        part.nbytes = (size_t)part.count * esize;
        void *mine = malloc(part.nbytes ? part.nbytes : 1);
        part.data = malloc(part.nbytes ? part.nbytes : 1);
        kiln_tensor *pt = NULL;
        char label[256];
        size_t n = (size_t)snprintf(label, sizeof label, "%s[", oname);
        for (int i = 0; i < g_split_axis && n < sizeof label; i++)
            n += (size_t)snprintf(label + n, sizeof label - n, ":,");
        if (n < sizeof label)
            snprintf(label + n, sizeof label - n, "%lld:%lld]", (long long)lo, (long long)hi);
        if (!mine || !part.data) {
            printf("FAIL %s: out of memory\n", g_name);
            ok = false;
        } else {
            slice_copy(data, rank, dims, g_split_axis, lo, hi, esize, mine);
            slice_copy(ref->data, rank, ref->dims, g_split_axis, lo, hi, esize, part.data);
            if (kiln_tensor_create_from_data(t, pd, rank, mine, part.nbytes, &pt)) {
                printf("FAIL %s: output '%s': %s\n", g_name, label, kiln_last_error());
                ok = false;
            } else if (!compare(label, pt, &part, who, false)) {
                ok = false;
            }
        }
        kiln_tensor_destroy(pt);
        free(mine);
        free(part.data);
        lo = hi;
    }
    return ok;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Print kiln's failure of `what` and return 1. */
static int kiln_fail(const char *what, kiln_status s) {
    printf("FAIL %s: %s: %s: %s\n", g_name, what, kiln_status_name(s), kiln_last_error());
    return 1;
}

int main(int argc, char **argv) {
    const char *ort_dir = NULL, *model_path = NULL, *ref_dir = NULL;
    bool want_top5 = false;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ort") && i + 1 < argc) ort_dir = argv[++i];
        else if (!strcmp(argv[i], "--name") && i + 1 < argc) g_name = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--top5")) want_top5 = true;
        else if (!strcmp(argv[i], "--split") && i + 1 < argc && parse_split(argv[i + 1])) i++;
        else if (!model_path && argv[i][0] != '-') model_path = argv[i];
        else if (!ref_dir && argv[i][0] != '-') ref_dir = argv[i];
        else model_path = ref_dir = NULL, i = argc;
    }
    if (!model_path || !ref_dir) {
        fprintf(stderr, "usage: zoo_check [--ort DIR] [--top5] [--split AXIS=N1,N2,...] [--threads N] "
                        "[--name NAME] MODEL.onnx REF_DIR\n");
        return 2;
    }

    int rc = 0;
    kiln_model *model = NULL;
    kiln_session_options *opts = NULL;
    kiln_session *sess = NULL;
    size_t n_in = 0, n_out = 0;
    npy in_arrays[8] = {{0}};
    kiln_tensor *inputs[8] = {0}, *outputs[8] = {0};
    const char *in_names[8] = {0}, *out_names[8] = {0};
    kiln_status s;
    double t0 = now_s();
    if ((s = kiln_model_load(model_path, &model))) return kiln_fail("loading the model", s);
    if ((s = kiln_model_input_count(model, &n_in)) || (s = kiln_model_output_count(model, &n_out))) {
        rc = kiln_fail("reading the model's inputs and outputs", s);
        goto done;
    }
    if (n_in > 8 || n_out > 8) {
        printf("FAIL %s: %zu inputs, %zu outputs: at most 8 each\n", g_name, n_in, n_out);
        rc = 1;
        goto done;
    }
    if ((s = kiln_session_options_create(&opts)) || (s = kiln_session_options_set_threads(opts, threads))) {
        rc = kiln_fail("session options", s);
        goto done;
    }
    if ((s = kiln_session_create(model, opts, &sess))) {
        rc = kiln_fail("creating the session", s);
        goto done;
    }
    double t1 = now_s();
    for (size_t k = 0; k < n_in; k++) {
        char path[4096];
        kiln_dtype dt;
        int rank;
        snprintf(path, sizeof path, "%s/input_%zu.npy", ref_dir, k);
        if (!npy_read(path, &in_arrays[k])) {
            rc = 2;
            goto done;
        }
        if ((s = kiln_model_input_info(model, k, &in_names[k], &dt, &rank))) {
            rc = kiln_fail("reading input info", s);
            goto done;
        }
        if ((s = kiln_tensor_create_from_data(in_arrays[k].dtype, in_arrays[k].dims, in_arrays[k].rank,
                                              in_arrays[k].data, in_arrays[k].nbytes, &inputs[k]))) {
            rc = kiln_fail("creating an input tensor", s);
            goto done;
        }
    }
    for (size_t k = 0; k < n_out; k++) {
        kiln_dtype dt;
        int rank;
        if ((s = kiln_model_output_info(model, k, &out_names[k], &dt, &rank))) {
            rc = kiln_fail("reading output info", s);
            goto done;
        }
    }
    double t2 = now_s();
    s = kiln_session_run(sess, in_names, (const kiln_tensor *const *)inputs, n_in, out_names, outputs, n_out);
    double t3 = now_s();
    if (s) {
        rc = kiln_fail("running", s);
        goto done;
    }
    printf("%s: loaded in %.2f s, ran in %.2f s\n", g_name, t1 - t0, t3 - t2);
    for (int pass = 0; pass < 2; pass++) {
        const char *dir = pass ? ort_dir : ref_dir, *who = pass ? "onnxruntime" : "pytorch";
        if (!dir) continue;
        for (size_t k = 0; k < n_out; k++) {
            char path[4096];
            npy ref;
            snprintf(path, sizeof path, "%s/output_%zu.npy", dir, k);
            if (!npy_read(path, &ref)) {
                rc = 2;
                goto done;
            }
            if (!compare(out_names[k], outputs[k], &ref, who, want_top5)) rc = 1;
            if (g_split_axis >= 0 && !compare_parts(out_names[k], outputs[k], &ref, who)) rc = 1;
            free(ref.data);
        }
    }
done:
    for (size_t k = 0; k < 8; k++) {
        kiln_tensor_destroy(inputs[k]);
        kiln_tensor_destroy(outputs[k]);
        free(in_arrays[k].data);
    }
    kiln_session_destroy(sess);
    kiln_session_options_destroy(opts);
    kiln_model_destroy(model);
    return rc;
}
