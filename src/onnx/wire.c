/* Protobuf wire-format reading, bounds-checked. */
#include <string.h>

#include "onnx/wire.h"

/* Read a varint of at most 10 bytes. */
static kiln_status kl_pb_varint(kl_pb *r, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end) return kl_errorf(KILN_ERR_PARSE, "truncated varint");
        uint8_t b = *r->p++;
        if (shift == 63 && (b & 0x7e)) return kl_errorf(KILN_ERR_PARSE, "varint overflows 64 bits");
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return KILN_OK;
        }
    }
    return kl_errorf(KILN_ERR_PARSE, "varint longer than 10 bytes");
}

kiln_status kl_pb_next(kl_pb *r, kl_pb_field *f, bool *more) {
    if (r->p >= r->end) {
        *more = false;
        return KILN_OK;
    }
    uint64_t tag;
    KL_TRY(kl_pb_varint(r, &tag));
    uint64_t num = tag >> 3;
    if (num == 0 || num > 536870911u) return kl_errorf(KILN_ERR_PARSE, "invalid field number %llu", (unsigned long long)num);
    f->num = (uint32_t)num;
    f->wire = (int)(tag & 7);
    f->data = NULL;
    f->len = 0;
    f->v = 0;
    switch (f->wire) {
    case KL_WIRE_VARINT: {
        kiln_status s = kl_pb_varint(r, &f->v);
        if (s) return kl_error_context(s, "field %u: ", f->num);
        break;
    }
    case KL_WIRE_I64:
        if (r->end - r->p < 8) return kl_errorf(KILN_ERR_PARSE, "truncated 64-bit field %u", f->num);
        memcpy(&f->v, r->p, 8);
        r->p += 8;
        break;
    case KL_WIRE_I32: {
        uint32_t v;
        if (r->end - r->p < 4) return kl_errorf(KILN_ERR_PARSE, "truncated 32-bit field %u", f->num);
        memcpy(&v, r->p, 4);
        f->v = v;
        r->p += 4;
        break;
    }
    case KL_WIRE_LEN: {
        uint64_t len;
        kiln_status s = kl_pb_varint(r, &len);
        if (s) return kl_error_context(s, "field %u length: ", f->num);
        if (len > (uint64_t)(r->end - r->p))
            return kl_errorf(KILN_ERR_PARSE, "field %u: length %llu runs past the end of its message (%zu bytes left)",
                             f->num, (unsigned long long)len, (size_t)(r->end - r->p));
        f->data = r->p;
        f->len = (size_t)len;
        r->p += len;
        break;
    }
    default:
        return kl_errorf(KILN_ERR_PARSE, "field %u: unsupported wire type %d", f->num, f->wire);
    }
    *more = true;
    return KILN_OK;
}

kiln_status kl_pb_expect(const kl_pb_field *f, int wire, const char *what) {
    static const char *const names[] = {"varint", "fixed64", "length-delimited", "group", "group end", "fixed32"};
    if (f->wire != wire)
        return kl_errorf(KILN_ERR_PARSE, "%s (field %u) has wire type %s, expected %s", what, f->num,
                         names[f->wire < 6 ? f->wire : 3], names[wire]);
    return KILN_OK;
}

kiln_status kl_pb_count_packed(const kl_pb_field *f, int elem_wire, size_t *count) {
    if (f->wire == elem_wire) {
        *count = 1;
        return KILN_OK;
    }
    if (f->wire != KL_WIRE_LEN) return kl_errorf(KILN_ERR_PARSE, "repeated field %u has wire type %d", f->num, f->wire);
    if (elem_wire == KL_WIRE_I32 || elem_wire == KL_WIRE_I64) {
        size_t sz = elem_wire == KL_WIRE_I32 ? 4 : 8;
        if (f->len % sz) return kl_errorf(KILN_ERR_PARSE, "packed field %u: %zu bytes is not a multiple of %zu", f->num, f->len, sz);
        *count = f->len / sz;
        return KILN_OK;
    }
    size_t n = 0;
    for (size_t i = 0; i < f->len; i++)
        if (!(f->data[i] & 0x80)) n++;
    if (f->len && (f->data[f->len - 1] & 0x80)) return kl_errorf(KILN_ERR_PARSE, "packed field %u: truncated varint", f->num);
    *count = n;
    return KILN_OK;
}

void kl_pb_packed_begin(const kl_pb_field *f, int elem_wire, kl_pb_iter *it) {
    memset(it, 0, sizeof *it);
    it->elem_wire = elem_wire;
    if (f->wire != KL_WIRE_LEN) {
        it->single = true;
        it->single_v = f->v;
    } else {
        it->r = kl_pb_init(f->data, f->len);
    }
}

kiln_status kl_pb_packed_next(kl_pb_iter *it, uint64_t *v, bool *more) {
    if (it->single) {
        *more = !it->done;
        *v = it->single_v;
        it->done = true;
        return KILN_OK;
    }
    if (it->r.p >= it->r.end) {
        *more = false;
        return KILN_OK;
    }
    *more = true;
    switch (it->elem_wire) {
    case KL_WIRE_VARINT: return kl_pb_varint(&it->r, v);
    case KL_WIRE_I32: {
        uint32_t u;
        if (it->r.end - it->r.p < 4) return kl_errorf(KILN_ERR_PARSE, "truncated packed fixed32");
        memcpy(&u, it->r.p, 4);
        it->r.p += 4;
        *v = u;
        return KILN_OK;
    }
    default:
        if (it->r.end - it->r.p < 8) return kl_errorf(KILN_ERR_PARSE, "truncated packed fixed64");
        memcpy(v, it->r.p, 8);
        it->r.p += 8;
        return KILN_OK;
    }
}
