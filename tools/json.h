/*
 * json.h — a small streaming JSON writer for the kiln command's --json
 * output.  Strings are escaped so that any bytes (control characters,
 * invalid UTF-8) still produce valid JSON: invalid UTF-8 sequences become
 * U+FFFD.  Output is indented with two spaces.
 *
 *   kj_writer w; kj_init(&w, stdout);
 *   kj_object_begin(&w); kj_key(&w, "n"); kj_int(&w, 3); kj_object_end(&w);
 *   kj_finish(&w);   // final newline
 */
#ifndef KILN_TOOLS_JSON_H
#define KILN_TOOLS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KJ_MAX_DEPTH 64

typedef struct kj_writer {
    FILE *f;
    int depth;
    bool first[KJ_MAX_DEPTH]; /* no element written yet at this depth */
    bool after_key;           /* a key was just written: the value follows inline */
} kj_writer;

void kj_init(kj_writer *w, FILE *f);
/* Containers.  Deeper than KJ_MAX_DEPTH is a programming error (ignored). */
void kj_object_begin(kj_writer *w);
void kj_object_end(kj_writer *w);
void kj_array_begin(kj_writer *w);
void kj_array_end(kj_writer *w);
/* Object key (NUL-terminated or with length). */
void kj_key(kj_writer *w, const char *key);
void kj_key_n(kj_writer *w, const char *key, size_t len);
/* Values.  kj_string(NULL) writes null. */
void kj_string(kj_writer *w, const char *s);
void kj_string_n(kj_writer *w, const char *s, size_t len);
void kj_int(kj_writer *w, int64_t v);
void kj_uint(kj_writer *w, uint64_t v);
void kj_double(kj_writer *w, double v); /* non-finite values are written as null */
void kj_bool(kj_writer *w, bool v);
void kj_null(kj_writer *w);
/* End the document with a newline. */
void kj_finish(kj_writer *w);

/* Length of the valid UTF-8 sequence at s (n >= 1 bytes available), or 0
 * if the bytes there are not valid UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). */
size_t kj_utf8_len(const unsigned char *s, size_t n);

/* Write `s` (len bytes) as a quoted JSON string to f. */
void kj_write_escaped(FILE *f, const char *s, size_t len);

#endif
