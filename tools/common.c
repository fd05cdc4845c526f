/* Shared helpers of the kiln command: one-line errors, argument parsing,
 * model loading with friendly file errors, number formatting. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "json.h"

static char kc_failure[2048];

const char *kc_last_failure(void) { return kc_failure; }

int kc_fail(int code, const char *cmd, const char *fmt, ...) {
    char *msg = kc_failure;
    size_t size = sizeof kc_failure;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
    fflush(stdout);
    if (cmd) fprintf(stderr, "kiln: %s: %s\n", cmd, msg);
    else fprintf(stderr, "kiln: %s\n", msg);
    return code;
}

/* ---- arguments ------------------------------------------------------------------ */

/* Levenshtein distance of a and b, capped at 3 for long strings. */
static size_t kc_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40) return 99;
    size_t row[41];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *kc_suggest(const char *word, const char *const *candidates, size_t n) {
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < n; i++) {
        size_t d = kc_distance(word, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    return best;
}

/* Flag in `flags` whose name is `a` (or the part of `a` before '=' when
 * `eq` is set), or NULL. */
static const kc_flag *kc_flag_find(const kc_flag *flags, const char *a, const char *eq) {
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    for (const kc_flag *f = flags; f->name; f++)
        if (strlen(f->name) == len && strncmp(a, f->name, len) == 0) return f;
    return NULL;
}

bool kc_parse_args_for(int argc, char **argv, const kc_flag *flags, const char *what,
                       const char **positional, int *exit_code) {
    const char *cmd = argv[0];
    bool flags_done = false;
    *positional = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!flags_done && strcmp(a, "--") == 0) {
            flags_done = true;
            continue;
        }
        if (!flags_done && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            kc_help(stdout, cmd);
            *exit_code = kc_finish_stdout(KC_EXIT_OK);
            return false;
        }
        if (!flags_done && a[0] == '-' && a[1] != 0) {
            const char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
            const kc_flag *f = kc_flag_find(flags, a, NULL);
            if (!f && eq) f = kc_flag_find(flags, a, eq);
            else eq = NULL;
            if (f && f->set) {
                if (eq) {
                    *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "flag '%s' takes no value (try 'kiln help %s')",
                                         f->name, cmd);
                    return false;
                }
                *f->set = true;
                continue;
            }
            if (f) {
                const char *v = eq ? eq + 1 : NULL;
                if (!v && i + 1 < argc) v = argv[++i];
                if (!v || !*v) {
                    *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "flag '%s' needs a value (try 'kiln help %s')",
                                         f->name, cmd);
                    return false;
                }
                if (f->value) *f->value = v;
                else if (f->list->n < KC_LIST_MAX) f->list->items[f->list->n++] = v;
                else {
                    *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "flag '%s' given more than %d times", f->name,
                                         KC_LIST_MAX);
                    return false;
                }
                continue;
            }
            const char *names[64];
            size_t n = 0;
            for (const kc_flag *g = flags; g->name && n < 63; g++) names[n++] = g->name;
            names[n++] = "--help";
            char word[256];
            snprintf(word, sizeof word, "%.*s", (int)(eq ? (size_t)(eq - a) : strlen(a)), a);
            const char *hint = kc_suggest(word, names, n);
            if (hint)
                *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "unknown flag '%s' (did you mean '%s'?)", word, hint);
            else
                *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "unknown flag '%s' (try 'kiln help %s')", word, cmd);
            return false;
        }
        if (!what) {
            *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "unexpected argument '%s' (kiln %s takes flags only)", a, cmd);
            return false;
        }
        if (*positional) {
            *exit_code = kc_fail(KC_EXIT_USAGE, cmd,
                                 "unexpected argument '%s' after %s '%s' (one %s at a time)", a, what,
                                 *positional, strcmp(what, "MODEL") == 0 ? "model" : "file");
            return false;
        }
        *positional = a;
    }
    if (!*positional && what) {
        *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "missing %s argument (usage: kiln %s %s; try 'kiln help %s')",
                             what, cmd, what, cmd);
        return false;
    }
    return true;
}

bool kc_parse_flags(int argc, char **argv, const kc_flag *flags, int *exit_code) {
    const char *none;
    return kc_parse_args_for(argc, argv, flags, NULL, &none, exit_code);
}

bool kc_parse_args(int argc, char **argv, const kc_flag *flags, const char **model,
                   int *exit_code) {
    return kc_parse_args_for(argc, argv, flags, "MODEL", model, exit_code);
}

bool kc_parse_int(const char *cmd, const char *flag, const char *text, long long lo, long long hi,
                  long long *out, int *exit_code) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end || errno || v < lo || v > hi) {
        *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "%s: '%s' is not a whole number from %lld to %lld", flag, text,
                             lo, hi);
        return false;
    }
    *out = v;
    return true;
}

bool kc_parse_double(const char *cmd, const char *flag, const char *text, double lo, double *out,
                     int *exit_code) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || errno || !isfinite(v) || v < lo) {
        *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "%s: '%s' is not a number >= %g", flag, text, lo);
        return false;
    }
    *out = v;
    return true;
}

double kc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- loading ------------------------------------------------------------------- */

/* Read all of `f` into a malloc'ed buffer; false on a read error. */
static bool kc_read_all(FILE *f, void **out, size_t *size) {
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) return false;
    for (;;) {
        if (len == cap) {
            unsigned char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                errno = ENOMEM;
                return false;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        free(buf);
        return false;
    }
    *out = buf;
    *size = len;
    return true;
}

/* Folder of `path` (for external data) into buf. */
static const char *kc_dirname(const char *path, char *buf, size_t size) {
    const char *slash = strrchr(path, '/');
    if (!slash) return ".";
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    if (len >= size) len = size - 1;
    memcpy(buf, path, len);
    buf[len] = 0;
    return buf;
}

/* Record a load failure on `l` (the message was just printed). */
static bool kc_load_failed(kc_loaded *l, kiln_status status, int code, int *exit_code) {
    l->status = status;
    snprintf(l->error, sizeof l->error, "%s", kc_last_failure());
    free(l->buffer);
    l->buffer = NULL;
    *exit_code = code;
    return false;
}

/* Load a model, or an engine when `engine_ok` and the bytes start with the
 * engine magic (kc_load_model / kc_load_model_or_engine). */
static bool kc_load(const char *cmd, const char *path, kc_loaded *l, int *exit_code, bool engine_ok);

bool kc_load_model(const char *cmd, const char *path, kc_loaded *l, int *exit_code) {
    return kc_load(cmd, path, l, exit_code, false);
}

bool kc_load_model_or_engine(const char *cmd, const char *path, kc_loaded *l, int *exit_code) {
    return kc_load(cmd, path, l, exit_code, true);
}

bool kc_file_is_engine(const char *path) {
    unsigned char magic[KC_ENGINE_MAGIC_LEN];
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    bool yes = fread(magic, 1, sizeof magic, f) == sizeof magic && memcmp(magic, KC_ENGINE_MAGIC, sizeof magic) == 0;
    fclose(f);
    return yes;
}

const kiln_model *kc_loaded_inputs(const kc_loaded *l) { return l->model ? l->model : l->io_model; }

int kc_fail_kiln(int code, const char *cmd, const char *path) {
    const char *msg = kiln_last_error();
    size_t plen = path ? strlen(path) : 0;
    if (plen && strncmp(msg, path, plen) == 0 && strncmp(msg + plen, ": ", 2) == 0) msg += plen + 2;
    if (!path || strstr(msg, path)) return kc_fail(code, cmd, "%s", msg);
    return kc_fail(code, cmd, "%s: %s", path, msg);
}

/* ---- a node-less ONNX model declaring an engine's inputs ---------------------------- */

/* Growing protobuf buffer; `oom` set once an allocation failed. */
typedef struct kc_pb {
    unsigned char *p;
    size_t n, cap;
    bool oom;
} kc_pb;

/* Append len bytes. */
static void kc_pb_raw(kc_pb *b, const void *data, size_t len) {
    if (b->oom) return;
    if (b->n + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + len) cap *= 2;
        unsigned char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, len);
    b->n += len;
}

/* Append a base-128 varint. */
static void kc_pb_varint(kc_pb *b, uint64_t v) {
    unsigned char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    kc_pb_raw(b, tmp, n);
}

/* Field `field` as a varint (wire type 0). */
static void kc_pb_int(kc_pb *b, unsigned field, uint64_t v) {
    kc_pb_varint(b, (uint64_t)field << 3);
    kc_pb_varint(b, v);
}

/* Field `field` as length-delimited bytes (wire type 2). */
static void kc_pb_bytes(kc_pb *b, unsigned field, const void *data, size_t len) {
    kc_pb_varint(b, (uint64_t)field << 3 | 2);
    kc_pb_varint(b, len);
    kc_pb_raw(b, data, len);
}

/* Field `field` holding the finished message `m` (freed). */
static void kc_pb_message(kc_pb *b, unsigned field, kc_pb *m) {
    if (m->oom) b->oom = true;
    else kc_pb_bytes(b, field, m->p ? (const void *)m->p : (const void *)"", m->n);
    free(m->p);
    memset(m, 0, sizeof *m);
}

bool kc_engine_io_model_bytes(const kiln_engine *e, unsigned char **out, size_t *size) {
    size_t n;
    if (kiln_engine_input_count(e, &n) != KILN_OK) return false;
    kc_pb graph = {0}, model = {0}, opset = {0};
    kc_pb_bytes(&graph, 2, "engine_inputs", 13);
    for (size_t i = 0; i < n; i++) {
        const char *name;
        kiln_dtype dt;
        int rank;
        if (kiln_engine_input_info(e, i, &name, &dt, &rank) != KILN_OK) goto fail;
        kc_pb shape = {0}, tensor = {0}, type = {0}, vi = {0};
        for (int a = 0; a < rank; a++) {
            int64_t d = -1;
            kc_pb dim = {0};
            if (kiln_engine_input_dim(e, i, a, &d) != KILN_OK) d = -1;
            if (d >= 0) kc_pb_int(&dim, 1, (uint64_t)d);
            else {
                char sym[32];
                if (a == 0) snprintf(sym, sizeof sym, "batch");
                else snprintf(sym, sizeof sym, "dim%d", a);
                kc_pb_bytes(&dim, 2, sym, strlen(sym));
            }
            kc_pb_message(&shape, 1, &dim);
        }
        kc_pb_int(&tensor, 1, (uint64_t)dt);
        if (rank >= 0) kc_pb_message(&tensor, 2, &shape);
        else free(shape.p);
        kc_pb_message(&type, 1, &tensor);
        kc_pb_bytes(&vi, 1, name, strlen(name));
        kc_pb_message(&vi, 2, &type);
        kc_pb_message(&graph, 11, &vi);
    }
    kc_pb_int(&model, 1, 8);
    kc_pb_bytes(&model, 2, "kiln", 4);
    kc_pb_message(&model, 7, &graph);
    kc_pb_bytes(&opset, 1, "", 0);
    kc_pb_int(&opset, 2, 17);
    kc_pb_message(&model, 8, &opset);
    if (model.oom) {
        free(model.p);
        return false;
    }
    *out = model.p;
    *size = model.n;
    return true;
fail:
    free(graph.p);
    return false;
}

/* Load the engine in l->buffer (size bytes) or at `path`, and its io_model. */
static bool kc_load_engine(const char *cmd, const char *path, size_t size, kc_loaded *l, int *exit_code) {
    const char *shown = l->buffer ? (strcmp(path, "-") == 0 ? "<stdin>" : path) : path;
    double t0 = kc_now();
    kiln_status s = l->buffer ? kiln_engine_load_from_memory(l->buffer, size, &l->engine)
                              : kiln_engine_load(path, &l->engine);
    l->load_ms = (kc_now() - t0) * 1e3;
    if (s != KILN_OK) {
        kc_fail_kiln(KC_EXIT_MODEL, cmd, shown);
        return kc_load_failed(l, s, KC_EXIT_MODEL, exit_code);
    }
    size_t io_size = 0;
    unsigned char *io = NULL;
    if (!kc_engine_io_model_bytes(l->engine, &io, &io_size) ||
        kiln_model_load_from_memory(io, io_size, NULL, &l->io_model) != KILN_OK) {
        kc_fail(KC_EXIT_MODEL, cmd, "%s: cannot describe the engine's inputs: %s", shown, kiln_last_error());
        free(io);
        kiln_engine_destroy(l->engine);
        l->engine = NULL;
        return kc_load_failed(l, KILN_ERR_INTERNAL, KC_EXIT_MODEL, exit_code);
    }
    l->io_buffer = io;
    return true;
}

static bool kc_load(const char *cmd, const char *path, kc_loaded *l, int *exit_code, bool engine_ok) {
    memset(l, 0, sizeof *l);
    kiln_status s;
    bool from_stdin = strcmp(path, "-") == 0;
    const char *shown = from_stdin ? "<stdin>" : path;
    struct stat st;
    if (!from_stdin) {
        if (stat(path, &st) != 0) {
            if (errno == ENOENT) kc_fail(KC_EXIT_MODEL, cmd, "no such file '%s'", path);
            else kc_fail(KC_EXIT_MODEL, cmd, "cannot open '%s': %s", path, strerror(errno));
            return kc_load_failed(l, KILN_ERR_IO, KC_EXIT_MODEL, exit_code);
        }
        if (S_ISDIR(st.st_mode)) {
            kc_fail(KC_EXIT_MODEL, cmd, "'%s' is a directory, not an ONNX model file", path);
            return kc_load_failed(l, KILN_ERR_IO, KC_EXIT_MODEL, exit_code);
        }
    }
    if (!from_stdin && S_ISREG(st.st_mode)) {
        if (st.st_size == 0) {
            kc_fail(KC_EXIT_MODEL, cmd, "'%s' is empty (0 bytes), not an ONNX model", path);
            return kc_load_failed(l, KILN_ERR_PARSE, KC_EXIT_MODEL, exit_code);
        }
        l->file_size = (uint64_t)st.st_size;
        if (kc_file_is_engine(path)) {
            if (engine_ok) return kc_load_engine(cmd, path, 0, l, exit_code);
            kc_fail(KC_EXIT_MODEL, cmd, "'%s' is a kiln engine file, not an ONNX model ('kiln %s' needs the model)",
                    path, cmd);
            return kc_load_failed(l, KILN_ERR_PARSE, KC_EXIT_MODEL, exit_code);
        }
        double t0 = kc_now();
        s = kiln_model_load(path, &l->model);
        l->load_ms = (kc_now() - t0) * 1e3;
    } else {
        FILE *f = from_stdin ? stdin : fopen(path, "rb");
        size_t size = 0;
        if (!f || !kc_read_all(f, &l->buffer, &size)) {
            kc_fail(KC_EXIT_MODEL, cmd, "cannot read '%s': %s", shown, strerror(errno));
            if (f && f != stdin) fclose(f);
            return kc_load_failed(l, KILN_ERR_IO, KC_EXIT_MODEL, exit_code);
        }
        if (f != stdin) fclose(f);
        if (size == 0) {
            kc_fail(KC_EXIT_MODEL, cmd, "'%s' is empty (0 bytes), not an ONNX model", shown);
            return kc_load_failed(l, KILN_ERR_PARSE, KC_EXIT_MODEL, exit_code);
        }
        l->file_size = size;
        if (size >= KC_ENGINE_MAGIC_LEN && memcmp(l->buffer, KC_ENGINE_MAGIC, KC_ENGINE_MAGIC_LEN) == 0) {
            if (engine_ok) return kc_load_engine(cmd, path, size, l, exit_code);
            kc_fail(KC_EXIT_MODEL, cmd, "'%s' is a kiln engine file, not an ONNX model ('kiln %s' needs the model)",
                    shown, cmd);
            return kc_load_failed(l, KILN_ERR_PARSE, KC_EXIT_MODEL, exit_code);
        }
        char dir[4096];
        s = kiln_model_load_from_memory(l->buffer, size,
                                        from_stdin ? NULL : kc_dirname(path, dir, sizeof dir),
                                        &l->model);
    }
    if (s != KILN_OK) {
        const char *msg = kiln_last_error();
        size_t plen = strlen(path);
        /* Strip the library's "path: " prefix, then say what kind of failure it is. */
        if (!from_stdin && strncmp(msg, path, plen) == 0 && strncmp(msg + plen, ": ", 2) == 0) msg += plen + 2;
        if (strncmp(msg, "<memory>: ", 10) == 0) msg += 10;
        if (s == KILN_ERR_PARSE)
            kc_fail(KC_EXIT_MODEL, cmd, "%s: not a valid ONNX model: %s", shown, msg);
        else if (strstr(msg, path) && !from_stdin)
            kc_fail(KC_EXIT_MODEL, cmd, "%s", msg);
        else
            kc_fail(KC_EXIT_MODEL, cmd, "%s: %s", shown, msg);
        return kc_load_failed(l, s, KC_EXIT_MODEL, exit_code);
    }
    return true;
}

void kc_loaded_free(kc_loaded *l) {
    kiln_model_destroy(l->model);
    kiln_model_destroy(l->io_model);
    kiln_engine_destroy(l->engine);
    free(l->io_buffer);
    free(l->buffer);
    l->model = NULL;
    l->io_model = NULL;
    l->engine = NULL;
    l->io_buffer = NULL;
    l->buffer = NULL;
}

/* ---- formatting ------------------------------------------------------------------ */

char *kc_fmt_int(uint64_t v, char *buf, size_t size) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    size_t pos = 0;
    for (int i = 0; i < n && pos + 1 < size; i++) {
        if (i > 0 && (n - i) % 3 == 0 && pos + 2 < size) buf[pos++] = ',';
        buf[pos++] = tmp[i];
    }
    buf[pos] = 0;
    return buf;
}

char *kc_fmt_count(uint64_t v, char *buf, size_t size) {
    static const char *const units[] = {"M", "G", "T", "P", "E"};
    if (v < 1000000) return kc_fmt_int(v, buf, size);
    double d = (double)v / 1e6;
    size_t u = 0;
    while (d >= 999.995 && u + 1 < sizeof units / sizeof units[0]) d /= 1000, u++;
    snprintf(buf, size, "%.2f %s", d, units[u]);
    return buf;
}

char *kc_fmt_bytes(uint64_t v, char *buf, size_t size) {
    static const char *const units[] = {"kB", "MB", "GB", "TB", "PB", "EB"};
    if (v < 1000) {
        snprintf(buf, size, "%llu B", (unsigned long long)v);
        return buf;
    }
    double d = (double)v / 1e3;
    size_t u = 0;
    while (d >= 999.95 && u + 1 < sizeof units / sizeof units[0]) d /= 1000, u++;
    snprintf(buf, size, "%.1f %s", d, units[u]);
    return buf;
}

char *kc_fmt_name(const char *s, size_t len, char *buf, size_t size) {
    static const char hex[] = "0123456789abcdef";
    size_t pos = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len && pos + 5 < size;) {
        unsigned c = p[i];
        if (c >= 0x80) {
            /* Keep well-formed UTF-8 sequences as they are. */
            size_t n = kj_utf8_len(p + i, len - i);
            if (n && pos + n + 5 < size) {
                memcpy(buf + pos, p + i, n);
                pos += n;
                i += n;
                continue;
            }
        }
        if (c < 0x20 || c == 0x7f || c >= 0x80) {
            buf[pos++] = '\\';
            buf[pos++] = 'x';
            buf[pos++] = hex[c >> 4];
            buf[pos++] = hex[c & 15];
        } else {
            buf[pos++] = (char)c;
        }
        i++;
    }
    buf[pos] = 0;
    return buf;
}

int kc_finish_stdout(int code) {
    if (fflush(stdout) != 0 || ferror(stdout)) {
        int e = errno;
        if (e == EPIPE) return code;
        fprintf(stderr, "kiln: error writing output: %s\n", strerror(e));
        return code ? code : KC_EXIT_MODEL;
    }
    return code;
}
