/*
 * pbwriter.h — builds protobuf bytes by hand for tests of the ONNX reader
 * and the checker, including deliberately malformed ones.
 *
 *   kt_pb m = {0};
 *   kt_pb_varint_field(&m, 1, 8);              // ir_version = 8
 *   kt_pb g = {0}; ... kt_pb_bytes_field(&m, 7, g.data, g.len);  // graph
 */
#ifndef KT_PBWRITER_H
#define KT_PBWRITER_H

#include <stddef.h>
#include <stdint.h>

typedef struct kt_pb {
    uint8_t *data;
    size_t len, cap;
} kt_pb;

void kt_pb_free(kt_pb *b);
void kt_pb_raw(kt_pb *b, const void *p, size_t n);     /* append bytes as they are */
void kt_pb_varint(kt_pb *b, uint64_t v);                /* a bare varint */
void kt_pb_tag(kt_pb *b, uint32_t field, uint32_t wire);
void kt_pb_varint_field(kt_pb *b, uint32_t field, uint64_t v);          /* wire type 0 */
void kt_pb_fixed32_field(kt_pb *b, uint32_t field, uint32_t v);         /* wire type 5 */
void kt_pb_float_field(kt_pb *b, uint32_t field, float v);              /* wire type 5 */
void kt_pb_bytes_field(kt_pb *b, uint32_t field, const void *p, size_t n); /* wire type 2 */
void kt_pb_string_field(kt_pb *b, uint32_t field, const char *s);       /* wire type 2 */
void kt_pb_message_field(kt_pb *b, uint32_t field, const kt_pb *msg);   /* wire type 2 */

#endif
