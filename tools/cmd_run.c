/* kiln run MODEL --input FILE ...: run a model once on given inputs and
 * show (or save) its outputs; kiln preprocess IMAGE (hidden): the ImageNet
 * preprocessing of one image, as .npy. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"
#include "cli.h"
#include "image.h"
#include "inputs.h"
#include "json.h"
#include "npy.h"

/* Labels read from a file, one per line. */
typedef struct kc_labels {
    char *text;
    char **lines;
    size_t n;
} kc_labels;

/* Read `path` into *l (lines without their end-of-line). */
static bool kc_labels_read(const char *path, kc_labels *l, int *code) {
    memset(l, 0, sizeof *l);
    FILE *f = fopen(path, "rb");
    if (!f) {
        *code = kc_fail(KC_EXIT_MODEL, "run",
                        errno == ENOENT ? "--labels: no such file '%s'" : "--labels: cannot open '%s': %s", path,
                        strerror(errno));
        return false;
    }
    size_t cap = 1 << 16, len = 0;
    char *t = malloc(cap + 1);
    while (t) {
        if (len == cap) {
            char *nt = cap > (SIZE_MAX - 1) / 2 ? NULL : realloc(t, cap * 2 + 1);
            if (!nt) {
                free(t);
                t = NULL;
                break;
            }
            t = nt;
            cap *= 2;
        }
        size_t got = fread(t + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    fclose(f);
    if (!t) {
        *code = kc_fail(KC_EXIT_MODEL, "run", "--labels: out of memory reading '%s'", path);
        return false;
    }
    t[len] = 0;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += t[i] == '\n';
    l->lines = calloc(lines, sizeof *l->lines);
    if (!l->lines) {
        free(t);
        *code = kc_fail(KC_EXIT_MODEL, "run", "--labels: out of memory");
        return false;
    }
    l->text = t;
    for (char *s = t; s < t + len;) {
        char *nl = memchr(s, '\n', (size_t)(t + len - s));
        if (nl) *nl = 0;
        size_t sl = strlen(s);
        if (sl && s[sl - 1] == '\r') s[sl - 1] = 0;
        l->lines[l->n++] = s;
        s = nl ? nl + 1 : t + len;
    }
    return true;
}

static void kc_labels_free(kc_labels *l) {
    free(l->text);
    free(l->lines);
}

/* A file name for output `name`: unusual characters become '_'. */
static void kc_safe_name(const char *name, char *buf, size_t size) {
    size_t pos = 0;
    for (const char *c = name; *c && pos + 1 < size; c++)
        buf[pos++] = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' ||
                             *c == '.' || *c == '_'
                         ? *c
                         : '_';
    if (pos == 0 || (pos <= 2 && buf[0] == '.')) buf[pos++] = '_';
    buf[pos] = 0;
}

/* Create folder `dir` unless it exists; false with a message. */
static bool kc_make_dir(const char *cmd, const char *flag, const char *dir, int *code) {
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return true;
        *code = kc_fail(KC_EXIT_USAGE, cmd, "%s: '%s' exists and is not a directory", flag, dir);
        return false;
    }
    if (mkdir(dir, 0777) != 0) {
        *code = kc_fail(KC_EXIT_MODEL, cmd, "%s: cannot create directory '%s': %s", flag, dir, strerror(errno));
        return false;
    }
    return true;
}

/* Write every tensor of `ts` (named by io) to DIR/<name>.npy; paths into files. */
static bool kc_write_all(const char *cmd, const char *flag, const char *dir, const kc_io *io, kiln_tensor **ts,
                         size_t n, char (*files)[4096], int *code) {
    if (!kc_make_dir(cmd, flag, dir, code)) return false;
    for (size_t i = 0; i < n; i++) {
        char safe[256], err[4096];
        kc_safe_name(io[i].name, safe, sizeof safe);
        snprintf(files[i], sizeof files[i], "%s/%s.npy", dir, safe);
        for (size_t j = 0; j < i; j++)
            if (strcmp(files[j], files[i]) == 0) snprintf(files[i], sizeof files[i], "%s/%s_%zu.npy", dir, safe, i);
        if (!kc_npy_write(files[i], ts[i], err, sizeof err)) {
            *code = kc_fail(KC_EXIT_MODEL, cmd, "%s: %s", flag, err);
            return false;
        }
    }
    return true;
}

/* Print up to 8 values of a tensor on one line. */
static void kc_print_values(kiln_tensor *t) {
    kiln_dtype dt;
    void *data;
    size_t nbytes;
    int64_t n;
    kiln_tensor_dtype(t, &dt);
    kiln_tensor_data(t, &data, &nbytes);
    kiln_tensor_element_count(t, &n);
    printf("  values:");
    for (int64_t i = 0; i < n && i < 8; i++) printf(" %.6g", kc_elem_get(data, dt, (size_t)i));
    if (n > 8) printf(" ... (%lld values)", (long long)n);
    printf("\n");
}

/* Top-k of classifier output t: text or JSON. */
static bool kc_print_topk(kiln_tensor *t, long long k, const kc_inputs *in, const kc_labels *labels, kj_writer *w) {
    int64_t rows, classes;
    if (!kc_is_classifier(t, &rows, &classes)) return false;
    double *p = malloc((size_t)classes * sizeof *p);
    int64_t *idx = malloc((size_t)(k < classes ? k : classes) * sizeof *idx);
    if (!p || !idx) {
        free(p);
        free(idx);
        return false;
    }
    int64_t kk = k < classes ? k : classes;
    if (w) {
        kj_key(w, "topk");
        kj_array_begin(w);
    }
    for (int64_t r = 0; r < rows; r++) {
        bool softmax = kc_row_probs(t, r, classes, p);
        kc_topk(p, classes, kk, idx);
        const char *image = in->images && (size_t)r < in->n_images ? in->images[r] : NULL;
        if (w) {
            kj_object_begin(w);
            kj_key(w, "row");
            kj_int(w, r);
            kj_key(w, "image");
            kj_string(w, image);
            kj_key(w, "softmax");
            kj_bool(w, softmax);
            kj_key(w, "classes");
            kj_array_begin(w);
        } else {
            char name[1024];
            printf("  top-%lld of row %lld%s%s%s (%s):\n", (long long)kk, (long long)r, image ? " (" : "",
                   image ? kc_fmt_name(image, strlen(image), name, sizeof name) : "", image ? ")" : "",
                   softmax ? "softmax of the scores" : "the scores are probabilities");
        }
        for (int64_t j = 0; j < kk; j++) {
            const char *label = labels && (size_t)idx[j] < labels->n ? labels->lines[idx[j]] : NULL;
            if (w) {
                kj_object_begin(w);
                kj_key(w, "index");
                kj_int(w, idx[j]);
                kj_key(w, "probability");
                kj_double(w, p[idx[j]]);
                kj_key(w, "label");
                kj_string(w, label);
                kj_object_end(w);
            } else {
                char lab[1024];
                printf("    %3lld. class %5lld  p=%.5f%s%s\n", (long long)j + 1, (long long)idx[j], p[idx[j]],
                       label ? "  " : "", label ? kc_fmt_name(label, strlen(label), lab, sizeof lab) : "");
            }
        }
        if (w) {
            kj_array_end(w);
            kj_object_end(w);
        }
    }
    if (w) kj_array_end(w);
    free(p);
    free(idx);
    return true;
}

/* Open the --json destination ("-" is stdout). */
static FILE *kc_json_open(const char *cmd, const char *path, int *code) {
    if (strcmp(path, "-") == 0) return stdout;
    FILE *f = fopen(path, "w");
    if (!f) *code = kc_fail(KC_EXIT_MODEL, cmd, "--json: cannot create '%s': %s", path, strerror(errno));
    return f;
}

/* Close the --json destination; false (with a message) on a write error. */
static bool kc_json_close(const char *cmd, FILE *f, const char *path, int *code) {
    if (f == stdout) return true;
    if (ferror(f) | (fclose(f) != 0)) {
        *code = kc_fail(KC_EXIT_MODEL, cmd, "--json: cannot write '%s': %s", path, strerror(errno));
        return false;
    }
    return true;
}

/* Write the JSON report of a run. */
static void kc_run_json(FILE *f, const char *path, int threads, double ms, const kc_inputs *in, const kc_io *outs,
                        kiln_tensor **res, size_t n_outs, long long topk, const kc_labels *labels,
                        char (*files)[4096]) {
    kj_writer w;
    kj_init(&w, f);
    kj_object_begin(&w);
    kj_key(&w, "model");
    kj_string(&w, path);
    kj_key(&w, "kiln_version");
    kj_string(&w, kiln_version());
    kj_key(&w, "provider");
    kj_string(&w, "cpu");
    kj_key(&w, "threads");
    kj_int(&w, threads);
    kj_key(&w, "time_ms");
    kj_double(&w, ms);
    kj_key(&w, "inputs");
    kc_inputs_json(&w, in, true);
    kj_key(&w, "outputs");
    kj_array_begin(&w);
    for (size_t i = 0; i < n_outs; i++) {
        int rank;
        const int64_t *dims;
        kiln_dtype dt;
        kiln_tensor_dtype(res[i], &dt);
        kiln_tensor_shape(res[i], &rank, &dims);
        kj_object_begin(&w);
        kj_key(&w, "name");
        kj_string(&w, outs[i].name);
        kj_key(&w, "dtype");
        kj_string(&w, kiln_dtype_name(dt));
        kj_key(&w, "shape");
        kj_array_begin(&w);
        for (int a = 0; a < rank; a++) kj_int(&w, dims[a]);
        kj_array_end(&w);
        kc_stats st;
        if (kc_tensor_stats(res[i], &st)) {
            kj_key(&w, "min");
            kj_double(&w, st.min);
            kj_key(&w, "max");
            kj_double(&w, st.max);
            kj_key(&w, "mean");
            kj_double(&w, st.mean);
            kj_key(&w, "nan");
            kj_int(&w, st.nan);
            kj_key(&w, "inf");
            kj_int(&w, st.inf);
        }
        if (files) {
            kj_key(&w, "file");
            kj_string(&w, files[i]);
        }
        if (topk > 0) kc_print_topk(res[i], topk, in, labels, &w);
        kj_object_end(&w);
    }
    kj_array_end(&w);
    kj_object_end(&w);
    kj_finish(&w);
}

int kc_cmd_run(int argc, char **argv) {
    const char *cmd = "run";
    kc_list files = {.n = 0};
    const char *shape = NULL, *dtype = NULL, *seed_s = NULL, *resize_s = NULL, *crop_s = NULL, *topk_s = NULL,
               *labels_path = NULL, *out_dir = NULL, *dump_dir = NULL, *threads_s = NULL, *json_path = NULL,
               *batch_s = NULL, *cache_dir = NULL, *profile_s = NULL, *providers = NULL;
    bool random = false, strict = false;
    const kc_flag flags[] = {
        {"--providers", NULL, &providers, NULL}, {"--strict-providers", &strict, NULL, NULL},
        {"--input", NULL, NULL, &files},     {"--shape", NULL, &shape, NULL},   {"--dtype", NULL, &dtype, NULL},
        {"--random", &random, NULL, NULL},   {"--seed", NULL, &seed_s, NULL},   {"--batch", NULL, &batch_s, NULL},
        {"--resize", NULL, &resize_s, NULL}, {"--crop", NULL, &crop_s, NULL},   {"--topk", NULL, &topk_s, NULL},
        {"--labels", NULL, &labels_path, NULL}, {"--output", NULL, &out_dir, NULL},
        {"--dump-input", NULL, &dump_dir, NULL}, {"--threads", NULL, &threads_s, NULL},
        {"--json", NULL, &json_path, NULL},  {"--cache", NULL, &cache_dir, NULL},
        {"--profile", NULL, &profile_s, NULL}, {NULL, NULL, NULL, NULL}};
    const char *path;
    int code = KC_EXIT_OK;
    if (!kc_parse_args(argc, argv, flags, &path, &code)) return code;
    long long seed = 0, resize = 0, crop = 0, topk = 0, threads = 0, batch = 0, profile = 0;
    if ((seed_s && !kc_parse_int(cmd, "--seed", seed_s, 0, INT64_MAX, &seed, &code)) ||
        (profile_s && !kc_parse_int(cmd, "--profile", profile_s, 0, 1 << 20, &profile, &code)) ||
        (resize_s && !kc_parse_int(cmd, "--resize", resize_s, 1, 16384, &resize, &code)) ||
        (crop_s && !kc_parse_int(cmd, "--crop", crop_s, 1, 16384, &crop, &code)) ||
        (topk_s && !kc_parse_int(cmd, "--topk", topk_s, 1, 1000000, &topk, &code)) ||
        (threads_s && !kc_parse_int(cmd, "--threads", threads_s, 0, 4096, &threads, &code)) ||
        (batch_s && !kc_parse_int(cmd, "--batch", batch_s, 1, 1 << 20, &batch, &code)))
        return code;
    if (labels_path && !topk) return kc_fail(KC_EXIT_USAGE, cmd, "--labels needs --topk K");
    kc_labels labels = {0};
    if (labels_path && !kc_labels_read(labels_path, &labels, &code)) return code;

    kc_loaded l;
    kc_runner runner = {0};
    kc_inputs in = {.image_input = -1};
    kc_io *outs = NULL;
    size_t n_outs = 0;
    kiln_tensor **res = NULL;
    char (*out_files)[4096] = NULL;
    FILE *jf = NULL;
    char err[4096];
    if (!kc_load_model_or_engine(cmd, path, &l, &code)) goto done;
    kc_input_opts io = {.files = &files, .shape_flag = "--shape", .shape = shape, .dtype = dtype, .batch = batch,
                        .resize = (int)resize, .crop = (int)crop, .random = random, .seed = (uint64_t)seed};
    if (!kc_inputs_prepare(cmd, kc_loaded_inputs(&l), &io, &in, &code)) goto done;
    if (dump_dir) {
        char (*in_files)[4096] = calloc(in.n + 1, sizeof *in_files);
        bool ok = in_files && kc_write_all(cmd, "--dump-input", dump_dir, in.io, in.tensors, in.n, in_files, &code);
        if (!in_files) code = kc_fail(KC_EXIT_MODEL, cmd, "out of memory");
        free(in_files);
        if (!ok) goto done;
    }
    char profile_spec[2048];
    const char *sess_shapes = l.engine ? NULL : kc_inputs_profile(&in, profile_spec, sizeof profile_spec);
    if (!kc_runner_create_ex(cmd, &l, threads, cache_dir, providers, strict, sess_shapes, &runner, &code)) goto done;
    if (profile_s && !kc_runner_set_profile(cmd, &runner, profile, &code)) goto done;
    if (!kc_loaded_outputs(&l, &outs, &n_outs) || !(res = calloc(n_outs + 1, sizeof *res))) {
        code = kc_fail(KC_EXIT_MODEL, cmd, "cannot read the model's outputs: %s", kiln_last_error());
        goto done;
    }
    double t0 = kc_now();
    if (!kc_runner_run_all(&runner, &in, outs, n_outs, res, err, sizeof err)) {
        code = kc_fail(KC_EXIT_MODEL, cmd, "%s", err);
        goto done;
    }
    double ms = (kc_now() - t0) * 1e3;
    if (out_dir) {
        out_files = calloc(n_outs + 1, sizeof *out_files);
        if (!out_files) {
            code = kc_fail(KC_EXIT_MODEL, cmd, "out of memory");
            goto done;
        }
        if (!kc_write_all(cmd, "--output", out_dir, outs, res, n_outs, out_files, &code)) goto done;
    }
    if (json_path) {
        if (!(jf = kc_json_open(cmd, json_path, &code))) goto done;
        kc_run_json(jf, strcmp(path, "-") == 0 ? "<stdin>" : path, (int)threads, ms, &in, outs, res, n_outs, topk,
                    labels_path ? &labels : NULL, out_files);
        bool ok = kc_json_close(cmd, jf, json_path, &code);
        jf = NULL;
        if (!ok) goto done;
        if (strcmp(json_path, "-") == 0) goto done;
    }
    char name[1024], type[512], src[2048];
    for (size_t i = 0; i < in.n; i++)
        printf("input  '%s' %s <- %s\n", kc_fmt_name(in.io[i].name, strlen(in.io[i].name), name, sizeof name),
               kc_fmt_tensor(in.tensors[i], type, sizeof type),
               kc_fmt_name(in.source[i], strlen(in.source[i]), src, sizeof src));
    if (l.engine) {
        const char *prov = NULL;
        if (kiln_engine_get(l.engine, "providers", &prov) != KILN_OK || !prov) prov = "cpu";
        printf("ran in %.2f ms (engine, %s)\n", ms, prov);
    } else {
        printf("ran in %.2f ms (cpu, %s threads)\n", ms, threads ? threads_s : "auto");
    }
    for (size_t i = 0; i < n_outs; i++) {
        kc_stats st;
        printf("output '%s' %s", kc_fmt_name(outs[i].name, strlen(outs[i].name), name, sizeof name),
               kc_fmt_tensor(res[i], type, sizeof type));
        if (kc_tensor_stats(res[i], &st) && st.count > 0) {
            printf("  min %.6g  max %.6g  mean %.6g", st.min, st.max, st.mean);
            if (st.nan) printf("  (%lld NaN)", (long long)st.nan);
        }
        if (out_files) printf("  -> %s", kc_fmt_name(out_files[i], strlen(out_files[i]), src, sizeof src));
        printf("\n");
        if (topk > 0 && kc_print_topk(res[i], topk, &in, labels_path ? &labels : NULL, NULL)) continue;
        if (kc_tensor_stats(res[i], &st) && st.count > 0) kc_print_values(res[i]);
    }
done:
    kc_outputs_free(res, n_outs);
    free(res);
    free(outs);
    free(out_files);
    kc_runner_destroy(&runner);
    kc_inputs_free(&in);
    kc_loaded_free(&l);
    kc_labels_free(&labels);
    return kc_finish_stdout(code);
}

int kc_cmd_preprocess(int argc, char **argv) {
    const char *cmd = "preprocess";
    const char *out = NULL, *resize_s = NULL, *crop_s = NULL;
    const kc_flag flags[] = {{"--output", NULL, &out, NULL},
                             {"--resize", NULL, &resize_s, NULL},
                             {"--crop", NULL, &crop_s, NULL},
                             {NULL, NULL, NULL, NULL}};
    const char *image;
    int code = KC_EXIT_OK;
    if (!kc_parse_args_for(argc, argv, flags, "IMAGE", &image, &code)) return code;
    long long resize = 0, crop = 224;
    if ((resize_s && !kc_parse_int(cmd, "--resize", resize_s, 1, 16384, &resize, &code)) ||
        (crop_s && !kc_parse_int(cmd, "--crop", crop_s, 1, 16384, &crop, &code)))
        return code;
    if (!out) return kc_fail(KC_EXIT_USAGE, cmd, "missing --output FILE.npy");
    kiln_tensor *t;
    char err[4096];
    if (!kc_image_tensor(image, (int)resize, (int)crop, &t, err, sizeof err))
        return kc_fail(KC_EXIT_MODEL, cmd, "%s", err);
    bool ok = kc_npy_write(out, t, err, sizeof err);
    kiln_tensor_destroy(t);
    if (!ok) return kc_fail(KC_EXIT_MODEL, cmd, "%s", err);
    return KC_EXIT_OK;
}
