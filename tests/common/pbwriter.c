#include "pbwriter.h"

#include <stdlib.h>
#include <string.h>

void kt_pb_free(kt_pb *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void kt_pb_raw(kt_pb *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->len + n) cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d) abort(); /* test helper only */
        b->data = d;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
}

void kt_pb_varint(kt_pb *b, uint64_t v) {
    uint8_t tmp[10];
    size_t n = 0;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        if (v) byte |= 0x80;
        tmp[n++] = byte;
    } while (v);
    kt_pb_raw(b, tmp, n);
}

void kt_pb_tag(kt_pb *b, uint32_t field, uint32_t wire) { kt_pb_varint(b, ((uint64_t)field << 3) | wire); }

void kt_pb_varint_field(kt_pb *b, uint32_t field, uint64_t v) {
    kt_pb_tag(b, field, 0);
    kt_pb_varint(b, v);
}

void kt_pb_fixed32_field(kt_pb *b, uint32_t field, uint32_t v) {
    uint8_t t[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    kt_pb_tag(b, field, 5);
    kt_pb_raw(b, t, 4);
}

void kt_pb_float_field(kt_pb *b, uint32_t field, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    kt_pb_fixed32_field(b, field, u);
}

void kt_pb_bytes_field(kt_pb *b, uint32_t field, const void *p, size_t n) {
    kt_pb_tag(b, field, 2);
    kt_pb_varint(b, n);
    kt_pb_raw(b, p, n);
}

void kt_pb_string_field(kt_pb *b, uint32_t field, const char *s) { kt_pb_bytes_field(b, field, s, strlen(s)); }

void kt_pb_message_field(kt_pb *b, uint32_t field, const kt_pb *msg) {
    kt_pb_bytes_field(b, field, msg->data, msg->len);
}
