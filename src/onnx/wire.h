/*
 * wire.h — a bounds-checked reader of the protobuf wire format.  Every read
 * checks against the end of its buffer; nothing is copied.
 */
#ifndef KL_WIRE_H
#define KL_WIRE_H

#include "core/core.h"

typedef struct kl_pb {
    const uint8_t *p, *end;
} kl_pb;

enum { KL_WIRE_VARINT = 0, KL_WIRE_I64 = 1, KL_WIRE_LEN = 2, KL_WIRE_I32 = 5 };

/* One field: its number, wire type and value.  For KL_WIRE_LEN, data/len
 * is the payload; for the others, v holds the raw value. */
typedef struct kl_pb_field {
    uint32_t num;
    int wire;
    uint64_t v;
    const uint8_t *data;
    size_t len;
} kl_pb_field;

static inline kl_pb kl_pb_init(const uint8_t *data, size_t len) {
    kl_pb r = {data, data + len};
    return r;
}

/* Read the next field into *f.  Returns KILN_OK with *more = false at the
 * end of the buffer; KILN_ERR_PARSE for truncated or malformed input. */
kiln_status kl_pb_next(kl_pb *r, kl_pb_field *f, bool *more);

/* Check that field f has wire type `wire`; error names `what`. */
kiln_status kl_pb_expect(const kl_pb_field *f, int wire, const char *what);

/* Repeated scalar fields may be packed (one LEN field) or not.  These
 * count/decode the elements of one field occurrence. */
kiln_status kl_pb_count_packed(const kl_pb_field *f, int elem_wire, size_t *count);
/* Decode element i-th sequentially: call with an iterator initialised by
 * kl_pb_packed_begin. */
typedef struct kl_pb_iter {
    kl_pb r;
    int elem_wire;
    bool single; /* unpacked: one element held in the field itself */
    uint64_t single_v;
    bool done;
} kl_pb_iter;
void kl_pb_packed_begin(const kl_pb_field *f, int elem_wire, kl_pb_iter *it);
/* Next raw element value (varint, or the bits of a fixed32/fixed64). */
kiln_status kl_pb_packed_next(kl_pb_iter *it, uint64_t *v, bool *more);

#endif
