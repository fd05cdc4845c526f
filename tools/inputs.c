/* Input tensors of the kiln command: files, images and random values (see inputs.h). */
#include "inputs.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/core.h"
#include "image.h"
#include "json.h"
#include "npy.h"
#include "onnx/onnx.h"

typedef enum kc_fmt { KC_FMT_NPY, KC_FMT_PB, KC_FMT_BIN, KC_FMT_IMAGE } kc_fmt;

/* What the command line gives for one model input. */
typedef struct kc_slot {
    const char *path;      /* a tensor file, or NULL */
    kc_fmt fmt;
    kiln_tensor *tensor;   /* .pb files are read while binding (their name may pick the input) */
    const char **images;   /* image files (borrowed), n_images of them */
    size_t n_images;
} kc_slot;

/* A symbolic dimension whose size is known from a given tensor or --shape. */
typedef struct kc_sym {
    const char *name;
    int64_t value;
} kc_sym;

/* State of one kc_inputs_prepare call. */
typedef struct kc_prep {
    const char *cmd;
    const kc_input_opts *o;
    kc_inputs *in;
    kc_slot *slots;
    const char **image_store; /* room for every --input value; images of the image input */
    kc_sym syms[64];
    size_t n_syms;
    int *exit_code;
    char err[4096];
} kc_prep;

/* Print err-style message for the command and set the exit code; returns false. */
static bool kc_prep_fail(kc_prep *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool kc_prep_fail(kc_prep *p, int code, const char *fmt, ...) {
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    *p->exit_code = kc_fail(code, p->cmd, "%s", msg);
    return false;
}

/* Index of the model input called `name` (len bytes), or -1. */
static int kc_input_index(const kc_inputs *in, const char *name, size_t len) {
    for (size_t i = 0; i < in->n; i++)
        if (strlen(in->io[i].name) == len && strncmp(in->io[i].name, name, len) == 0) return (int)i;
    return -1;
}

/* "unknown input 'x' (the model's inputs are 'a', 'b'; did you mean 'a'?)" */
static bool kc_unknown_input(kc_prep *p, const char *what, const char *name, size_t len) {
    const char *cands[64];
    size_t n = 0;
    for (size_t i = 0; i < p->in->n && n < 64; i++) cands[n++] = p->in->io[i].name;
    char word[256], names[1024];
    snprintf(word, sizeof word, "%.*s", (int)(len < 200 ? len : 200), name);
    kc_fmt_names(p->in->io, p->in->n, names, sizeof names);
    const char *hint = kc_suggest(word, cands, n);
    if (hint)
        return kc_prep_fail(p, KC_EXIT_USAGE, "%sunknown input '%s' (did you mean '%s'? the model's inputs are %s)",
                            what, word, hint, names);
    return kc_prep_fail(p, KC_EXIT_USAGE, "%sunknown input '%s' (the model's inputs are %s)", what, word, names);
}

/* True when `path` ends with `ext` (case-insensitive). */
static bool kc_has_ext(const char *path, const char *ext) {
    size_t l = strlen(path), e = strlen(ext);
    return l > e && strcasecmp(path + l - e, ext) == 0;
}

/* Decide the format of the file at `path` from its first bytes and name. */
static bool kc_detect(kc_prep *p, const char *path, kc_fmt *fmt) {
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) return kc_prep_fail(p, KC_EXIT_MODEL, "no such file '%s'", path);
        return kc_prep_fail(p, KC_EXIT_MODEL, "cannot open '%s': %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) return kc_prep_fail(p, KC_EXIT_MODEL, "'%s' is a directory, not an input file", path);
    unsigned char head[16];
    size_t n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return kc_prep_fail(p, KC_EXIT_MODEL, "cannot open '%s': %s", path, strerror(errno));
    n = fread(head, 1, sizeof head, f);
    fclose(f);
    if (kc_npy_magic(head, n)) *fmt = KC_FMT_NPY;
    else if (kc_image_sniff(head, n) != KC_IMAGE_NONE || kc_image_extension(path)) *fmt = KC_FMT_IMAGE;
    else if (kc_has_ext(path, ".npy"))
        return kc_prep_fail(p, KC_EXIT_MODEL, "'%s' is not a .npy file (it lacks the \\x93NUMPY header)", path);
    else if (kc_has_ext(path, ".pb") || kc_has_ext(path, ".tensor")) *fmt = KC_FMT_PB;
    else if (kc_has_ext(path, ".bin") || kc_has_ext(path, ".raw") || kc_has_ext(path, ".dat")) *fmt = KC_FMT_BIN;
    else
        return kc_prep_fail(p, KC_EXIT_USAGE,
                            "cannot tell the format of '%s' (expected .npy, an ONNX TensorProto .pb, raw .bin "
                            "with --shape, or a JPEG/PNG image)", path);
    return true;
}

/* Read the whole file at `path` (malloc'ed into *buf). */
static bool kc_slurp(kc_prep *p, const char *path, unsigned char **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return kc_prep_fail(p, KC_EXIT_MODEL, "cannot open '%s': %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    while (b) {
        if (n == cap) {
            unsigned char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(b, cap * 2);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (!b) return kc_prep_fail(p, KC_EXIT_MODEL, "%s: out of memory reading the file", path);
    if (bad) {
        free(b);
        return kc_prep_fail(p, KC_EXIT_MODEL, "cannot read '%s'", path);
    }
    *buf = b;
    *len = n;
    return true;
}

/* Read an ONNX TensorProto file into a new tensor; *name gets its name
 * (malloc'ed, may be empty). */
static bool kc_read_pb(kc_prep *p, const char *path, kiln_tensor **out, char **name) {
    unsigned char *buf;
    size_t len;
    if (!kc_slurp(p, path, &buf, &len)) return false;
    kl_arena a;
    kl_arena_init(&a);
    kl_tensor *t = NULL;
    kiln_status s = kl_onnx_parse_tensor(&a, buf, len, &t);
    bool ok = false;
    if (s != KILN_OK) {
        kc_prep_fail(p, KC_EXIT_MODEL, "%s: not an ONNX TensorProto: %s", path, kiln_last_error());
    } else if (t->dtype == KILN_DTYPE_STRING || t->external) {
        kc_prep_fail(p, KC_EXIT_MODEL, "%s: %s tensors are not supported as inputs", path,
                     t->external ? "external-data" : "string");
    } else if (kiln_tensor_create(t->dtype, t->dims, t->rank, out) != KILN_OK) {
        kc_prep_fail(p, KC_EXIT_MODEL, "%s: %s", path, kiln_last_error());
    } else {
        void *data;
        size_t nbytes;
        kiln_tensor_data(*out, &data, &nbytes);
        if (nbytes != t->nbytes) {
            kiln_tensor_destroy(*out);
            kc_prep_fail(p, KC_EXIT_MODEL, "%s: the tensor's data has %zu bytes, its shape needs %zu", path,
                         t->nbytes, nbytes);
        } else {
            if (nbytes) memcpy(data, t->data, nbytes);
            *name = strdup(t->name ? t->name : "");
            ok = *name != NULL;
            if (!ok) {
                kiln_tensor_destroy(*out);
                kc_prep_fail(p, KC_EXIT_MODEL, "out of memory");
            }
        }
    }
    kl_arena_free(&a);
    free(buf);
    return ok;
}

/* First model input with nothing bound to it, or -1. */
static int kc_next_free(const kc_prep *p) {
    for (size_t i = 0; i < p->in->n; i++)
        if (!p->slots[i].path && !p->slots[i].n_images) return (int)i;
    return -1;
}

/* Bind one --input value to a model input. */
static bool kc_bind(kc_prep *p, const char *spec) {
    const char *path = spec;
    int target = -1;
    const char *eq = strchr(spec, '=');
    if (eq) {
        int idx = kc_input_index(p->in, spec, (size_t)(eq - spec));
        struct stat st;
        if (idx >= 0) {
            target = idx;
            path = eq + 1;
            if (!*path) return kc_prep_fail(p, KC_EXIT_USAGE, "--input %s: missing FILE after '='", spec);
        } else if (stat(spec, &st) != 0) {
            return kc_unknown_input(p, "--input: ", spec, (size_t)(eq - spec));
        }
    }
    kc_fmt fmt = KC_FMT_BIN;
    if (!kc_detect(p, path, &fmt)) return false;
    if (fmt == KC_FMT_IMAGE) {
        if (target < 0) target = p->in->image_input;
        if (target < 0) target = kc_next_free(p);
        if (target < 0)
            return kc_prep_fail(p, KC_EXIT_USAGE, "--input %s: every model input is already given", spec);
        if (p->in->image_input >= 0 && p->in->image_input != target)
            return kc_prep_fail(p, KC_EXIT_USAGE, "images are given for two inputs ('%s' and '%s'); one image input "
                                "is supported", p->in->io[p->in->image_input].name, p->in->io[target].name);
        kc_slot *s = &p->slots[target];
        if (s->path)
            return kc_prep_fail(p, KC_EXIT_USAGE, "input '%s' is given twice ('%s' and '%s')", p->in->io[target].name,
                                s->path, path);
        s->images = p->image_store;
        s->images[s->n_images++] = path;
        p->in->image_input = target;
        return true;
    }
    kiln_tensor *t = NULL;
    if (fmt == KC_FMT_PB) {
        char *name = NULL;
        if (!kc_read_pb(p, path, &t, &name)) return false;
        if (target < 0 && *name) {
            int idx = kc_input_index(p->in, name, strlen(name));
            if (idx >= 0 && !p->slots[idx].path && !p->slots[idx].n_images) target = idx;
        }
        free(name);
    }
    if (target < 0) target = kc_next_free(p);
    if (target < 0) {
        kiln_tensor_destroy(t);
        char names[1024];
        return kc_prep_fail(p, KC_EXIT_USAGE, "--input %s: more inputs given than the model has (%zu: %s)", spec,
                            p->in->n, kc_fmt_names(p->in->io, p->in->n, names, sizeof names));
    }
    kc_slot *s = &p->slots[target];
    if (s->path || s->n_images) {
        kiln_tensor_destroy(t);
        return kc_prep_fail(p, KC_EXIT_USAGE, "input '%s' is given twice ('%s' and '%s')", p->in->io[target].name,
                            s->path ? s->path : s->images[0], path);
    }
    s->path = path;
    s->fmt = fmt;
    s->tensor = t;
    return true;
}

/* Look up the shape --shape gives for input `name`: a "name:dims" item, or
 * a lone "dims" item (for any input).  *found is false when none applies. */
static bool kc_spec_shape(kc_prep *p, const char *name, int64_t *dims, int *rank, bool *found) {
    *found = false;
    const char *spec = p->o->shape;
    if (!spec) return true;
    const char *item = spec, *plain = NULL;
    size_t plain_len = 0;
    while (*item) {
        const char *end = strchr(item, ',');
        size_t len = end ? (size_t)(end - item) : strlen(item);
        const char *colon = NULL;
        for (const char *c = item; c < item + len; c++)
            if (*c == ':') colon = c;
        if (!colon) {
            plain = item;
            plain_len = len;
        } else if (kc_input_index(p->in, item, (size_t)(colon - item)) < 0) {
            {
            char what[64];
            snprintf(what, sizeof what, "%s: ", p->o->shape_flag);
            return kc_unknown_input(p, what, item, (size_t)(colon - item));
        }
        } else if ((size_t)(colon - item) == strlen(name) && strncmp(item, name, strlen(name)) == 0) {
            if (!kc_parse_dims(colon + 1, len - (size_t)(colon - item) - 1, dims, rank, p->err, sizeof p->err))
                return kc_prep_fail(p, KC_EXIT_USAGE, "%s: %s", p->o->shape_flag, p->err);
            *found = true;
            return true;
        }
        item += len + (end ? 1 : 0);
    }
    if (plain) {
        if (!kc_parse_dims(plain, plain_len, dims, rank, p->err, sizeof p->err))
            return kc_prep_fail(p, KC_EXIT_USAGE, "%s: %s", p->o->shape_flag, p->err);
        *found = true;
    }
    return true;
}

/* Remember that symbolic dims of `io` have the sizes in dims. */
static void kc_note_syms(kc_prep *p, const kc_io *io, const int64_t *dims, int rank) {
    for (int a = 0; a < rank && a < io->rank; a++) {
        if (io->dims[a] >= 0 || !io->dim_names[a]) continue;
        bool known = false;
        for (size_t i = 0; i < p->n_syms && !known; i++) known = strcmp(p->syms[i].name, io->dim_names[a]) == 0;
        if (!known && p->n_syms < sizeof p->syms / sizeof p->syms[0])
            p->syms[p->n_syms++] = (kc_sym){io->dim_names[a], dims[a]};
    }
}

/* Size of symbolic dim `name` when known, else -1. */
static int64_t kc_sym_value(const kc_prep *p, const char *name) {
    for (size_t i = 0; name && i < p->n_syms; i++)
        if (strcmp(p->syms[i].name, name) == 0) return p->syms[i].value;
    return -1;
}

/* Set in->source[i] (printf-style). */
static void kc_set_source(kc_prep *p, size_t i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void kc_set_source(kc_prep *p, size_t i, const char *fmt, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(p->in->source[i]);
    p->in->source[i] = strdup(buf);
}

/* Convert tensor *t to the input's element type when they differ;
 * `what` names the file.  Appends " (converted from X)" to note. */
static bool kc_fit_dtype(kc_prep *p, size_t i, kiln_tensor **t, const char *what, char *note, size_t size) {
    kiln_dtype have, want = p->in->io[i].dtype;
    kiln_tensor_dtype(*t, &have);
    note[0] = 0;
    if (want == KILN_DTYPE_UNDEFINED || have == want) return true;
    if (!kc_dtype_numeric(have) || !kc_dtype_numeric(want))
        return kc_prep_fail(p, KC_EXIT_MODEL, "%s: input '%s' expects %s, the file holds %s", what,
                            p->in->io[i].name, kiln_dtype_name(want), kiln_dtype_name(have));
    kiln_tensor *c;
    if (!kc_tensor_convert(*t, want, &c, p->err, sizeof p->err))
        return kc_prep_fail(p, KC_EXIT_MODEL, "%s: %s", what, p->err);
    kiln_tensor_destroy(*t);
    *t = c;
    snprintf(note, size, " (converted from %s)", kiln_dtype_name(have));
    return true;
}

/* Read raw .bin data for input i. */
static bool kc_read_bin(kc_prep *p, size_t i, const char *path, kiln_tensor **out) {
    const kc_io *io = &p->in->io[i];
    int64_t dims[KILN_MAX_RANK];
    int rank = 0;
    bool found;
    if (!kc_spec_shape(p, io->name, dims, &rank, &found)) return false;
    if (!found) {
        bool fixed = io->rank >= 0;
        for (int a = 0; a < io->rank; a++) fixed = fixed && io->dims[a] >= 0;
        if (!fixed) {
            char type[512];
            return kc_prep_fail(p, KC_EXIT_USAGE, "'%s' is raw data and input '%s' is %s: give its shape with %s "
                                "(e.g. %s %s:1x3x224x224)", path, io->name, kc_fmt_io(io, type, sizeof type),
                                p->o->shape_flag, p->o->shape_flag, io->name);
        }
        rank = io->rank;
        memcpy(dims, io->dims, (size_t)rank * sizeof *dims);
    }
    kiln_dtype dt = io->dtype == KILN_DTYPE_UNDEFINED ? KILN_DTYPE_FLOAT : io->dtype;
    if (p->o->dtype) dt = kc_dtype_parse(p->o->dtype);
    kiln_tensor *t;
    if (kiln_tensor_create(dt, dims, rank, &t) != KILN_OK)
        return kc_prep_fail(p, KC_EXIT_USAGE, "%s: %s", path, kiln_last_error());
    void *data;
    size_t nbytes;
    kiln_tensor_data(t, &data, &nbytes);
    unsigned char *buf;
    size_t len;
    if (!kc_slurp(p, path, &buf, &len)) {
        kiln_tensor_destroy(t);
        return false;
    }
    if (len != nbytes) {
        char shape[512];
        kc_fmt_tensor(t, shape, sizeof shape);
        kiln_tensor_destroy(t);
        free(buf);
        return kc_prep_fail(p, KC_EXIT_MODEL, "'%s' has %zu bytes but %s needs %zu (set --shape and --dtype)", path,
                            len, shape, nbytes);
    }
    if (nbytes) memcpy(data, buf, nbytes);
    free(buf);
    *out = t;
    return true;
}

static bool kc_read_images_into(kc_prep *p, size_t i, kc_image *first, const char *type);

/* Preprocess the images of input i into one batch tensor. */
static bool kc_read_images(kc_prep *p, size_t i) {
    const kc_io *io = &p->in->io[i];
    kc_slot *s = &p->slots[i];
    char type[512];
    kc_fmt_io(io, type, sizeof type);
    /* Decode the first image before judging the input, so that a file that
     * is not an image is reported as such. */
    kc_image img;
    if (!kc_image_load(s->images[0], &img, p->err, sizeof p->err))
        return kc_prep_fail(p, KC_EXIT_MODEL, "%s", p->err);
    bool ok = kc_read_images_into(p, i, &img, type);
    kc_image_free(&img);
    return ok;
}

/* kc_read_images once the first image (img) is decoded. */
static bool kc_read_images_into(kc_prep *p, size_t i, kc_image *first, const char *type) {
    const kc_io *io = &p->in->io[i];
    kc_slot *s = &p->slots[i];
    if (io->rank >= 0 && io->rank != 4)
        return kc_prep_fail(p, KC_EXIT_MODEL, "input '%s' is %s: images need a 4-D input (N,3,H,W or N,H,W,3)",
                            io->name, type);
    kiln_dtype dt = io->dtype == KILN_DTYPE_UNDEFINED ? KILN_DTYPE_FLOAT : io->dtype;
    if (dt != KILN_DTYPE_FLOAT && dt != KILN_DTYPE_FLOAT16 && dt != KILN_DTYPE_DOUBLE && dt != KILN_DTYPE_BFLOAT16)
        return kc_prep_fail(p, KC_EXIT_MODEL, "input '%s' is %s: images are fed as normalized floats", io->name, type);
    bool nhwc = io->rank == 4 && io->dims[1] != 3 && io->dims[3] == 3;
    if (io->rank == 4 && !nhwc && io->dims[1] >= 0 && io->dims[1] != 3)
        return kc_prep_fail(p, KC_EXIT_MODEL, "input '%s' is %s: images give 3 channels (RGB)", io->name, type);
    int ha = nhwc ? 1 : 2, wa = nhwc ? 2 : 3;
    int64_t h = io->rank == 4 ? io->dims[ha] : -1, w = io->rank == 4 ? io->dims[wa] : -1;
    if (p->o->crop) h = w = p->o->crop;
    if (h < 0) h = w >= 0 ? w : 224;
    if (w < 0) w = h;
    if (h < 1 || w < 1 || h > 16384 || w > 16384)
        return kc_prep_fail(p, KC_EXIT_MODEL, "input '%s' is %s: no image size fits it", io->name, type);
    int64_t n = (int64_t)s->n_images;
    if (io->rank == 4 && io->dims[0] >= 0 && io->dims[0] != n)
        return kc_prep_fail(p, KC_EXIT_MODEL, "input '%s' is %s: its batch is fixed to %lld but %lld image%s given",
                            io->name, type, (long long)io->dims[0], (long long)n, n == 1 ? " is" : "s are");
    kc_preprocess pp;
    kc_preprocess_defaults(&pp, (int)h, (int)w);
    if (p->o->resize) pp.resize = p->o->resize;
    pp.nhwc = nhwc;
    int64_t dims[4] = {n, nhwc ? h : 3, nhwc ? w : h, nhwc ? 3 : w};
    kiln_tensor *t;
    if (kiln_tensor_create(KILN_DTYPE_FLOAT, dims, 4, &t) != KILN_OK)
        return kc_prep_fail(p, KC_EXIT_MODEL, "input '%s': %s", io->name, kiln_last_error());
    void *data;
    size_t nbytes;
    kiln_tensor_data(t, &data, &nbytes);
    size_t per = (size_t)(3 * h * w);
    for (size_t k = 0; k < s->n_images; k++) {
        kc_image img = {0};
        if (k > 0 && !kc_image_load(s->images[k], &img, p->err, sizeof p->err)) {
            kiln_tensor_destroy(t);
            return kc_prep_fail(p, KC_EXIT_MODEL, "%s", p->err);
        }
        bool ok = kc_preprocess_image(k ? &img : first, &pp, (float *)data + k * per);
        kc_image_free(&img);
        if (!ok) {
            kiln_tensor_destroy(t);
            return kc_prep_fail(p, KC_EXIT_MODEL, "%s: out of memory while resizing", s->images[k]);
        }
    }
    char note[128];
    if (!kc_fit_dtype(p, i, &t, s->images[0], note, sizeof note)) {
        kiln_tensor_destroy(t);
        return false;
    }
    p->in->tensors[i] = t;
    char list[1024];
    size_t pos = 0;
    list[0] = 0;
    for (size_t k = 0; k < s->n_images && pos < sizeof list; k++)
        pos += (size_t)snprintf(list + pos, sizeof list - pos, "%s%s", k ? ", " : "", s->images[k]);
    kc_set_source(p, i, "%s (image%s: resize %d, center crop %lldx%lld, ImageNet mean/std%s)", list,
                  n == 1 ? "" : "s", pp.resize, (long long)h, (long long)w, nhwc ? ", NHWC" : "");
    p->in->images = s->images;
    p->in->n_images = s->n_images;
    return true;
}

/* Load the tensor file bound to input i. */
static bool kc_read_file(kc_prep *p, size_t i) {
    kc_slot *s = &p->slots[i];
    kiln_tensor *t = s->tensor;
    s->tensor = NULL;
    if (s->fmt == KC_FMT_NPY && !kc_npy_read(s->path, &t, p->err, sizeof p->err))
        return kc_prep_fail(p, KC_EXIT_MODEL, "%s", p->err);
    if (s->fmt == KC_FMT_BIN && !kc_read_bin(p, i, s->path, &t)) return false;
    char note[128];
    if (!kc_fit_dtype(p, i, &t, s->path, note, sizeof note)) {
        kiln_tensor_destroy(t);
        return false;
    }
    const kc_io *io = &p->in->io[i];
    int rank;
    const int64_t *shape;
    kiln_tensor_shape(t, &rank, &shape);
    bool fits = io->rank < 0 || rank == io->rank;
    for (int a = 0; fits && a < rank; a++) fits = io->dims[a] < 0 || io->dims[a] == shape[a];
    if (!fits) {
        char want[512], have[512];
        kc_fmt_tensor(t, have, sizeof have);
        kiln_tensor_destroy(t);
        return kc_prep_fail(p, KC_EXIT_MODEL, "%s holds %s, which does not fit input '%s' %s", s->path, have, io->name,
                            kc_fmt_io(io, want, sizeof want));
    }
    p->in->tensors[i] = t;
    kc_set_source(p, i, "%s%s", s->path, note);
    return true;
}

/* Make a random tensor for input i. */
static bool kc_make_random(kc_prep *p, size_t i, kc_rng *rng) {
    const kc_io *io = &p->in->io[i];
    char type[512];
    kc_fmt_io(io, type, sizeof type);
    int64_t dims[KILN_MAX_RANK];
    int rank;
    bool found;
    if (!kc_spec_shape(p, io->name, dims, &rank, &found)) return false;
    if (found && io->rank >= 0 && rank != io->rank)
        return kc_prep_fail(p, KC_EXIT_USAGE, "%s gives %d dimension%s for input '%s', which is %s", p->o->shape_flag,
                            rank, rank == 1 ? "" : "s", io->name, type);
    if (!found) {
        if (io->rank < 0)
            return kc_prep_fail(p, KC_EXIT_USAGE, "input '%s' has an unknown rank: give its shape with %s %s:DIMS",
                                io->name, p->o->shape_flag, io->name);
        rank = io->rank;
        for (int a = 0; a < rank; a++) {
            dims[a] = io->dims[a];
            if (dims[a] >= 0) {
                if (a == 0 && p->o->batch && dims[a] != p->o->batch)
                    return kc_prep_fail(p, KC_EXIT_USAGE, "input '%s' is %s: its batch is fixed to %lld, --batch %lld "
                                        "does not fit", io->name, type, (long long)dims[a], p->o->batch);
                continue;
            }
            dims[a] = kc_sym_value(p, io->dim_names[a]);
            if (a == 0 && p->o->batch) dims[a] = p->o->batch;
            if (dims[a] < 0 && a == 0) dims[a] = 1;
            if (dims[a] < 0)
                return kc_prep_fail(p, KC_EXIT_USAGE, "input '%s' is %s: give the size of its dynamic axis %d%s%s%s "
                                    "with %s %s:DIMS", io->name, type, a, io->dim_names[a] ? " ('" : "",
                                    io->dim_names[a] ? io->dim_names[a] : "", io->dim_names[a] ? "')" : "",
                                    p->o->shape_flag, io->name);
        }
    }
    kiln_dtype dt = io->dtype == KILN_DTYPE_UNDEFINED ? KILN_DTYPE_FLOAT : io->dtype;
    if (!kc_tensor_random(dt, dims, rank, rng, &p->in->tensors[i], p->err, sizeof p->err))
        return kc_prep_fail(p, KC_EXIT_MODEL, "input '%s': %s", io->name, p->err);
    kc_note_syms(p, io, dims, rank);
    kc_set_source(p, i, "random (seed %llu)", (unsigned long long)p->o->seed);
    return true;
}

bool kc_inputs_prepare(const char *cmd, const kiln_model *m, const kc_input_opts *o, kc_inputs *in,
                       int *exit_code) {
    memset(in, 0, sizeof *in);
    in->image_input = -1;
    kc_prep *p = calloc(1, sizeof *p);
    if (!p) {
        *exit_code = kc_fail(KC_EXIT_MODEL, cmd, "out of memory");
        return false;
    }
    p->cmd = cmd;
    p->o = o;
    p->in = in;
    p->exit_code = exit_code;
    size_t nfiles = o->files ? o->files->n : 0;
    const char **image_store = calloc(nfiles + 1, sizeof *image_store);
    p->image_store = image_store;
    bool ok = false;
    if (!kc_model_io(m, false, &in->io, &in->n)) {
        kc_prep_fail(p, KC_EXIT_MODEL, "cannot read the model's inputs: %s", kiln_last_error());
        goto done;
    }
    in->tensors = calloc(in->n + 1, sizeof *in->tensors);
    in->source = calloc(in->n + 1, sizeof *in->source);
    p->slots = calloc(in->n + 1, sizeof *p->slots);
    if (!in->tensors || !in->source || !p->slots || !image_store) {
        kc_prep_fail(p, KC_EXIT_MODEL, "out of memory");
        goto done;
    }
    if (o->dtype && kc_dtype_parse(o->dtype) == KILN_DTYPE_UNDEFINED) {
        kc_prep_fail(p, KC_EXIT_USAGE, "--dtype: unknown element type '%s' (e.g. float32, float16, int64, uint8)",
                     o->dtype);
        goto done;
    }
    /* Check --shape names up front, so a typo is reported even when unused. */
    int64_t dims[KILN_MAX_RANK];
    int rank;
    bool found;
    if (!kc_spec_shape(p, "", dims, &rank, &found)) goto done;
    for (size_t f = 0; f < nfiles; f++)
        if (!kc_bind(p, o->files->items[f])) goto done;
    /* Files first (their shapes fix symbolic dims), then random values. */
    for (size_t i = 0; i < in->n; i++) {
        if (p->slots[i].n_images ? !kc_read_images(p, i) : p->slots[i].path ? !kc_read_file(p, i) : false)
            goto done;
        if (in->tensors[i]) {
            int r;
            const int64_t *shape;
            kiln_tensor_shape(in->tensors[i], &r, &shape);
            kc_note_syms(p, &in->io[i], shape, r);
        }
    }
    kc_rng rng = {o->seed};
    for (size_t i = 0; i < in->n; i++) {
        if (in->tensors[i]) continue;
        if (!o->random) {
            char type[512];
            kc_fmt_io(&in->io[i], type, sizeof type);
            if (nfiles == 0)
                kc_prep_fail(p, KC_EXIT_USAGE, "no --input given: the model needs input '%s' (%s); use --input FILE "
                             "(or --random)", in->io[i].name, type);
            else
                kc_prep_fail(p, KC_EXIT_USAGE, "input '%s' (%s) is not given: add --input %s=FILE (or --random)",
                             in->io[i].name, type, in->io[i].name);
            goto done;
        }
        if (!kc_make_random(p, i, &rng)) goto done;
    }
    for (size_t i = 0; i < in->n; i++)
        if (!in->source[i]) {
            kc_prep_fail(p, KC_EXIT_MODEL, "out of memory");
            goto done;
        }
    ok = true;
done:
    for (size_t i = 0; p->slots && i < in->n; i++) kiln_tensor_destroy(p->slots[i].tensor);
    free(p->slots);
    free(p);
    /* When images are used, in->images is image_store, freed by kc_inputs_free. */
    if (!ok || !in->images) {
        in->images = NULL;
        free(image_store);
    }
    if (!ok) kc_inputs_free(in);
    return ok;
}

void kc_inputs_free(kc_inputs *in) {
    for (size_t i = 0; in->tensors && i < in->n; i++) kiln_tensor_destroy(in->tensors[i]);
    for (size_t i = 0; in->source && i < in->n; i++) free(in->source[i]);
    free(in->tensors);
    free(in->source);
    free(in->io);
    free((void *)in->images);
    memset(in, 0, sizeof *in);
    in->image_input = -1;
}

bool kc_session_run_all(kiln_session *s, const kc_inputs *in, const kc_io *outs, size_t n_outs,
                        kiln_tensor **results, char *err, size_t errsize) {
    const char **in_names = calloc(in->n + 1, sizeof *in_names);
    const char **out_names = calloc(n_outs + 1, sizeof *out_names);
    bool ok = false;
    if (!in_names || !out_names) {
        snprintf(err, errsize, "out of memory");
    } else {
        for (size_t i = 0; i < in->n; i++) in_names[i] = in->io[i].name;
        for (size_t i = 0; i < n_outs; i++) {
            out_names[i] = outs[i].name;
            results[i] = NULL;
        }
        ok = kiln_session_run(s, in_names, (const kiln_tensor *const *)in->tensors, in->n, out_names, results,
                              n_outs) == KILN_OK;
        if (!ok) snprintf(err, errsize, "%s", kiln_last_error());
    }
    free(in_names);
    free(out_names);
    return ok;
}

void kc_outputs_free(kiln_tensor **results, size_t n) {
    for (size_t i = 0; results && i < n; i++) {
        kiln_tensor_destroy(results[i]);
        results[i] = NULL;
    }
}

int64_t kc_inputs_batch(const kc_inputs *in) {
    for (size_t i = 0; i < in->n; i++) {
        int rank;
        const int64_t *shape;
        if (in->tensors[i] && kiln_tensor_shape(in->tensors[i], &rank, &shape) == KILN_OK && rank >= 1)
            return shape[0];
    }
    return 1;
}

bool kc_image_tensor(const char *path, int resize, int crop, kiln_tensor **out, char *err, size_t errsize) {
    kc_image img;
    if (!kc_image_load(path, &img, err, errsize)) return false;
    kc_preprocess pp;
    kc_preprocess_defaults(&pp, crop, crop);
    if (resize) pp.resize = resize;
    int64_t dims[4] = {1, 3, crop, crop};
    kiln_tensor *t;
    if (kiln_tensor_create(KILN_DTYPE_FLOAT, dims, 4, &t) != KILN_OK) {
        kc_image_free(&img);
        snprintf(err, errsize, "%s", kiln_last_error());
        return false;
    }
    void *data;
    size_t nbytes;
    kiln_tensor_data(t, &data, &nbytes);
    bool ok = kc_preprocess_image(&img, &pp, data);
    kc_image_free(&img);
    if (!ok) {
        kiln_tensor_destroy(t);
        snprintf(err, errsize, "%s: out of memory while resizing", path);
        return false;
    }
    *out = t;
    return true;
}

void kc_inputs_json(struct kj_writer *w, const kc_inputs *in, bool declared) {
    kj_array_begin(w);
    for (size_t i = 0; i < in->n; i++) {
        char shape[512];
        int rank;
        const int64_t *dims;
        kiln_dtype dt;
        kiln_tensor_dtype(in->tensors[i], &dt);
        kiln_tensor_shape(in->tensors[i], &rank, &dims);
        kj_object_begin(w);
        kj_key(w, "name");
        kj_string(w, in->io[i].name);
        kj_key(w, "dtype");
        kj_string(w, kiln_dtype_name(dt));
        kj_key(w, "shape");
        kj_array_begin(w);
        for (int a = 0; a < rank; a++) kj_int(w, dims[a]);
        kj_array_end(w);
        if (declared) {
            kj_key(w, "declared");
            kj_string(w, kc_fmt_io(&in->io[i], shape, sizeof shape));
        }
        kj_key(w, "source");
        kj_string(w, in->source[i]);
        kj_object_end(w);
    }
    kj_array_end(w);
}

/* A model with dynamic input axes gets a profile at the shapes it is fed
 * (as trtexec --shapes): a GPU engine plans its layers at those shapes. */
const char *kc_inputs_profile(const kc_inputs *in, char *buf, size_t size) {
    bool dynamic = false;
    size_t u = 0;
    buf[0] = 0;
    for (size_t i = 0; i < in->n; i++) {
        const kc_io *io = &in->io[i];
        dynamic |= io->rank < 0;
        for (int a = 0; a < io->rank; a++) dynamic |= io->dims[a] < 0;
        int rank = 0;
        const int64_t *dims = NULL;
        if (kiln_tensor_shape(in->tensors[i], &rank, &dims) != KILN_OK) return NULL;
        u += (size_t)snprintf(buf + u, u < size ? size - u : 0, "%s%s:", i ? "," : "", io->name);
        for (int a = 0; a < rank; a++)
            u += (size_t)snprintf(buf + u, u < size ? size - u : 0, "%s%lld", a ? "x" : "", (long long)dims[a]);
        if (rank == 0) return NULL; /* a scalar input: no dims to write */
    }
    return dynamic && u < size ? buf : NULL;
}
