/* A streaming JSON writer with strict string escaping (see json.h). */
#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

void kj_init(kj_writer *w, FILE *f) {
    memset(w, 0, sizeof *w);
    w->f = f;
    w->first[0] = true;
}

size_t kj_utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (n < len) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return len;
}

void kj_write_escaped(FILE *f, const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', f);
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c >= 0x80) {
            size_t n = kj_utf8_len(s + i, len - i);
            if (n == 0) {
                fputs("\\ufffd", f);
                i++;
            } else {
                fwrite(s + i, 1, n, f);
                i += n;
            }
            continue;
        }
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        default:
            if (c < 0x20 || c == 0x7f) fprintf(f, "\\u%04x", c);
            else fputc((int)c, f);
        }
        i++;
    }
    fputc('"', f);
}

/* Separator and indentation before a new element (value or key). */
static void kj_sep(kj_writer *w) {
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth == 0) return;
    if (!w->first[w->depth]) fputc(',', w->f);
    w->first[w->depth] = false;
    fputc('\n', w->f);
    for (int i = 0; i < w->depth; i++) fputs("  ", w->f);
}

static void kj_open(kj_writer *w, char c) {
    kj_sep(w);
    fputc(c, w->f);
    if (w->depth + 1 < KJ_MAX_DEPTH) w->depth++;
    w->first[w->depth] = true;
}

static void kj_close(kj_writer *w, char c) {
    bool empty = w->first[w->depth];
    if (w->depth > 0) w->depth--;
    if (!empty) {
        fputc('\n', w->f);
        for (int i = 0; i < w->depth; i++) fputs("  ", w->f);
    }
    fputc(c, w->f);
}

void kj_object_begin(kj_writer *w) { kj_open(w, '{'); }
void kj_object_end(kj_writer *w) { kj_close(w, '}'); }
void kj_array_begin(kj_writer *w) { kj_open(w, '['); }
void kj_array_end(kj_writer *w) { kj_close(w, ']'); }

void kj_key_n(kj_writer *w, const char *key, size_t len) {
    kj_sep(w);
    kj_write_escaped(w->f, key ? key : "", key ? len : 0);
    fputs(": ", w->f);
    w->after_key = true;
}

void kj_key(kj_writer *w, const char *key) { kj_key_n(w, key, key ? strlen(key) : 0); }

void kj_string_n(kj_writer *w, const char *s, size_t len) {
    kj_sep(w);
    if (!s) fputs("null", w->f);
    else kj_write_escaped(w->f, s, len);
}

void kj_string(kj_writer *w, const char *s) { kj_string_n(w, s, s ? strlen(s) : 0); }

void kj_int(kj_writer *w, int64_t v) {
    kj_sep(w);
    fprintf(w->f, "%" PRId64, v);
}

void kj_uint(kj_writer *w, uint64_t v) {
    kj_sep(w);
    fprintf(w->f, "%" PRIu64, v);
}

void kj_double(kj_writer *w, double v) {
    kj_sep(w);
    if (!isfinite(v)) fputs("null", w->f);
    else fprintf(w->f, "%.17g", v);
}

void kj_bool(kj_writer *w, bool v) {
    kj_sep(w);
    fputs(v ? "true" : "false", w->f);
}

void kj_null(kj_writer *w) {
    kj_sep(w);
    fputs("null", w->f);
}

void kj_finish(kj_writer *w) { fputc('\n', w->f); }
