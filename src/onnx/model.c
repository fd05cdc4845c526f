/*
 * model.c — ONNX ModelProto → kiln IR.  Field numbers are those of
 * onnx/onnx.proto.  Tensor raw_data (and external data) is referenced in
 * place; typed repeated fields are decoded into the model's arena.
 *
 * Order of work: opset imports and local functions first, then the main
 * graph.  In a graph: initializers, inputs, nodes (a call to a local
 * function is inlined right where it stands), outputs, value_info.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx.h"
#include "onnx/wire.h"
#include "onnx/write.h"
#include "ops/ops.h"

/* Per-parse state. */
typedef struct kl_parser {
    kl_model *m;
    kl_arena *a;
    size_t emitted; /* nodes emitted (inlining budget) */
    unsigned inline_seq;
    const kl_mapfile *blob; /* engine weights: the only external data allowed, or NULL */
} kl_parser;

/* Opset context for parsing nodes: the model's, or a function's. */
typedef struct kl_opctx {
    const kl_opset *opsets;
    size_t n;
} kl_opctx;

static kiln_status kl_parse_graph(kl_parser *P, const uint8_t *data, size_t len, kl_graph *g,
                                  const kl_opctx *ops);
static kiln_status kl_parse_type(kl_parser *P, const uint8_t *data, size_t len, kl_type *t,
                                 int depth);
static kiln_status kl_emit_node(kl_parser *P, kl_graph *g, kl_node *n, int depth);

/* ---- small helpers ---------------------------------------------------------- */

static kiln_status kl_str_field(kl_parser *P, const kl_pb_field *f, const char *what,
                                const char **out) {
    KL_TRY(kl_pb_expect(f, KL_WIRE_LEN, what));
    char *s = kl_arena_strndup(P->a, (const char *)f->data, f->len);
    if (!s) return KILN_ERR_NO_MEMORY;
    *out = s;
    return KILN_OK;
}

static const char *kl_norm_domain(const char *d) {
    return strcmp(d, "ai.onnx") == 0 ? "" : d;
}

/* Count occurrences of each field number < 32 in a message. */
static kiln_status kl_count_fields(const uint8_t *data, size_t len, size_t counts[32]) {
    memset(counts, 0, 32 * sizeof counts[0]);
    kl_pb r = kl_pb_init(data, len);
    kl_pb_field f;
    bool more;
    for (;;) {
        KL_TRY(kl_pb_next(&r, &f, &more));
        if (!more) return KILN_OK;
        if (f.num < 32) counts[f.num]++;
    }
}

/* Elements in all occurrences of repeated scalar field `num`. */
static kiln_status kl_count_repeated(const uint8_t *data, size_t len, uint32_t num, int wire,
                                     size_t *out) {
    kl_pb r = kl_pb_init(data, len);
    kl_pb_field f;
    bool more;
    size_t total = 0;
    for (;;) {
        KL_TRY(kl_pb_next(&r, &f, &more));
        if (!more) break;
        if (f.num != num) continue;
        size_t c;
        KL_TRY(kl_pb_count_packed(&f, wire, &c));
        if (kl_add_size(total, c, &total)) return kl_errorf(KILN_ERR_PARSE, "repeated field too long");
    }
    *out = total;
    return KILN_OK;
}

/* Append every element of repeated scalar field f to out[*n] (capacity cap). */
static kiln_status kl_read_repeated(const kl_pb_field *f, int wire, uint64_t *out, size_t *n,
                                    size_t cap) {
    kl_pb_iter it;
    kl_pb_packed_begin(f, wire, &it);
    for (;;) {
        uint64_t v;
        bool more;
        KL_TRY(kl_pb_packed_next(&it, &v, &more));
        if (!more) return KILN_OK;
        if (*n >= cap) return kl_errorf(KILN_ERR_INTERNAL, "repeated field count changed");
        out[(*n)++] = v;
    }
}

/* ---- external data ------------------------------------------------------------ */

/* Map (once per model) the external file `location`, checked to stay
 * inside the model's folder.  `tensor` names the tensor in messages. */
static kiln_status kl_external_file(kl_parser *P, const char *tensor, const char *location,
                                    const kl_mapfile **out) {
    kl_model *m = P->m;
    for (size_t i = 0; i < m->n_ext_files; i++)
        if (strcmp(m->ext_names[i], location) == 0) {
            *out = &m->ext_files[i];
            return KILN_OK;
        }
    if (!m->base_dir)
        return kl_errorf(KILN_ERR_INVALID_MODEL,
                         "tensor '%s': external data '%s' cannot be used by a model loaded from memory without a base folder",
                         tensor, location);
    if (location[0] == 0)
        return kl_errorf(KILN_ERR_INVALID_MODEL, "tensor '%s': external data location is empty", tensor);
    if (location[0] == '/' || location[0] == '\\' || strchr(location, ':'))
        return kl_errorf(KILN_ERR_INVALID_MODEL,
                         "tensor '%s': external data location '%s' is an absolute path; it must be relative to the model's folder",
                         tensor, location);
    /* Reject any ".." component. */
    for (const char *p = location; *p;) {
        const char *q = p;
        while (*q && *q != '/' && *q != '\\') q++;
        if (q - p == 2 && p[0] == '.' && p[1] == '.')
            return kl_errorf(KILN_ERR_INVALID_MODEL,
                             "tensor '%s': external data location '%s' escapes the model's folder with '..'",
                             tensor, location);
        p = *q ? q + 1 : q;
    }
    char *joined = kl_arena_printf(P->a, "%s/%s", m->base_dir, location);
    if (!joined) return KILN_ERR_NO_MEMORY;
    /* Resolve symlinks: the real file must still be inside the real folder. */
    char *real_dir = realpath(m->base_dir, NULL);
    char *real_file = realpath(joined, NULL);
    if (!real_file) {
        int e = errno;
        free(real_dir);
        return kl_errorf(KILN_ERR_IO, "tensor '%s': external data file '%s' cannot be opened: %s", tensor,
                         joined, strerror(e));
    }
    bool inside = real_dir && strncmp(real_file, real_dir, strlen(real_dir)) == 0 &&
                  (real_file[strlen(real_dir)] == '/' || strcmp(real_dir, "/") == 0);
    free(real_dir);
    free(real_file);
    if (!inside)
        return kl_errorf(KILN_ERR_INVALID_MODEL,
                         "tensor '%s': external data file '%s' resolves outside the model's folder", tensor,
                         joined);
    if (m->n_ext_files == m->cap_ext_files) {
        size_t cap = m->cap_ext_files ? m->cap_ext_files * 2 : 4;
        kl_mapfile *files = kl_realloc_array(m->ext_files, cap, sizeof *files);
        if (!files) return KILN_ERR_NO_MEMORY;
        m->ext_files = files;
        const char **names = kl_realloc_array(m->ext_names, cap, sizeof *names);
        if (!names) return KILN_ERR_NO_MEMORY;
        m->ext_names = names;
        m->cap_ext_files = cap;
    }
    kl_mapfile mf;
    kiln_status s = kl_mapfile_open(joined, &mf);
    if (s) return kl_error_context(s, "tensor '%s': external data: ", tensor);
    const char *name = kl_arena_strdup(P->a, location);
    if (!name) {
        kl_mapfile_close(&mf);
        return KILN_ERR_NO_MEMORY;
    }
    m->ext_files[m->n_ext_files] = mf;
    m->ext_names[m->n_ext_files] = name;
    *out = &m->ext_files[m->n_ext_files++];
    return KILN_OK;
}

/* ---- tensors -------------------------------------------------------------------- */

/* Parse a TensorProto.  Size mismatches between data and dims are recorded
 * as model problems (the data is then dropped); malformed bytes and bad
 * external references are errors. */
static kiln_status kl_parse_tensor(kl_parser *P, const uint8_t *data, size_t len, kl_tensor **out) {
    kl_arena *a = P->a;
    kl_tensor *t = kl_arena_alloc(a, sizeof *t);
    if (!t) return KILN_ERR_NO_MEMORY;
    t->name = "";
    {   /* The name first, so every message below can name the tensor. */
        kl_pb nr = kl_pb_init(data, len);
        kl_pb_field nf;
        bool nmore;
        for (;;) {
            KL_TRY(kl_pb_next(&nr, &nf, &nmore));
            if (!nmore) break;
            if (nf.num == 8) KL_TRY(kl_str_field(P, &nf, "TensorProto.name", &t->name));
        }
    }
    size_t ndims;
    KL_TRY(kl_count_repeated(data, len, 1, KL_WIRE_VARINT, &ndims));
    if (ndims > KILN_MAX_RANK)
        return kl_errorf(KILN_ERR_UNSUPPORTED, "tensor '%s' has rank %zu; kiln supports up to %d", t->name, ndims,
                         KILN_MAX_RANK);
    uint64_t dims[KILN_MAX_RANK];
    size_t nd = 0;
    int32_t dtype = 0;
    int64_t location = 0;
    const uint8_t *raw = NULL;
    size_t raw_len = 0;
    bool has_raw = false;
    const char *ext_loc = NULL;
    int64_t ext_off = 0, ext_len = -1;
    size_t typed_counts[16] = {0}; /* elements per typed field number */

    kl_pb r = kl_pb_init(data, len);
    kl_pb_field f;
    bool more;
    for (;;) {
        KL_TRY(kl_pb_next(&r, &f, &more));
        if (!more) break;
        switch (f.num) {
        case 1: KL_TRY(kl_read_repeated(&f, KL_WIRE_VARINT, dims, &nd, ndims)); break;
        case 2:
            KL_TRY(kl_pb_expect(&f, KL_WIRE_VARINT, "TensorProto.data_type"));
            dtype = (int32_t)f.v;
            break;
        case 8: KL_TRY(kl_str_field(P, &f, "TensorProto.name", &t->name)); break;
        case 9:
            KL_TRY(kl_pb_expect(&f, KL_WIRE_LEN, "TensorProto.raw_data"));
            raw = f.data;
            raw_len = f.len;
            has_raw = true;
            break;
        case 14:
            KL_TRY(kl_pb_expect(&f, KL_WIRE_VARINT, "TensorProto.data_location"));
            location = (int64_t)f.v;
            break;
        case 13: { /* external_data: StringStringEntryProto */
            KL_TRY(kl_pb_expect(&f, KL_WIRE_LEN, "TensorProto.external_data"));
            kl_pb er = kl_pb_init(f.data, f.len);
            kl_pb_field ef;
            bool emore;
            const char *key = "", *val = "";
            for (;;) {
                KL_TRY(kl_pb_next(&er, &ef, &emore));
                if (!emore) break;
                if (ef.num == 1) KL_TRY(kl_str_field(P, &ef, "external_data.key", &key));
                if (ef.num == 2) KL_TRY(kl_str_field(P, &ef, "external_data.value", &val));
            }
            if (strcmp(key, "location") == 0) {
                ext_loc = val;
            } else if (strcmp(key, "offset") == 0 || strcmp(key, "length") == 0) {
                char *end;
                errno = 0;
                long long v = strtoll(val, &end, 10);
                if (errno || *end || end == val || v < 0)
                    return kl_errorf(KILN_ERR_INVALID_MODEL, "tensor '%s': external data %s '%s' is not a non-negative integer",
                                     t->name, key, val);
                if (key[0] == 'o') ext_off = v; else ext_len = v;
            }
            break;
        }
        case 4: case 5: case 6: case 7: case 10: case 11: {
            int wire = f.num == 4 ? KL_WIRE_I32 : f.num == 10 ? KL_WIRE_I64
                       : f.num == 6 ? KL_WIRE_LEN : KL_WIRE_VARINT;
            size_t c = 1;
            if (f.num != 6) KL_TRY(kl_pb_count_packed(&f, wire, &c));
            else KL_TRY(kl_pb_expect(&f, KL_WIRE_LEN, "TensorProto.string_data"));
            typed_counts[f.num] += c;
            break;
        }
        default: break;
        }
    }
    if (dtype <= 0 || !kl_dtype_valid(dtype))
        return kl_errorf(dtype == 0 ? KILN_ERR_INVALID_MODEL : KILN_ERR_UNSUPPORTED,
                         "tensor '%s': element type %d is %s", t->name, (int)dtype,
                         dtype == 0 ? "not set" : "not one kiln knows");
    t->dtype = (kiln_dtype)dtype;
    t->rank = (int)nd;
    t->dims = kl_arena_array(a, nd ? nd : 1, sizeof(int64_t));
    if (!t->dims) return KILN_ERR_NO_MEMORY;
    int64_t count = 1;
    for (size_t i = 0; i < nd; i++) {
        if (dims[i] > (uint64_t)INT64_MAX)
            return kl_errorf(KILN_ERR_INVALID_MODEL, "tensor '%s': dimension %zu is negative (%lld)", t->name, i,
                             (long long)(int64_t)dims[i]);
        t->dims[i] = (int64_t)dims[i];
        if (kl_mul_i64(count, t->dims[i], &count))
            return kl_errorf(KILN_ERR_INVALID_MODEL, "tensor '%s': element count overflows", t->name);
    }
    t->count = count;
    *out = t;

    size_t need = 0;
    if (t->dtype != KILN_DTYPE_STRING && !kl_dtype_nbytes(t->dtype, count, &need))
        return kl_errorf(KILN_ERR_INVALID_MODEL, "tensor '%s': byte size overflows", t->name);

    if (location == 1) {
        if (!ext_loc)
            return kl_errorf(KILN_ERR_INVALID_MODEL, "tensor '%s': external data without a location", t->name);
        const kl_mapfile *mf = NULL;
        if (P->blob) { /* an engine's graph: only the weights blob, zero-copy */
            if (strcmp(ext_loc, KL_ONNX_BLOB_LOCATION) != 0)
                return kl_errorf(KILN_ERR_INVALID_MODEL, "tensor '%s': external data '%s' in an engine graph (only '%s' is allowed)",
                                 t->name, ext_loc, KL_ONNX_BLOB_LOCATION);
            mf = P->blob;
        } else {
            KL_TRY(kl_external_file(P, t->name, ext_loc, &mf));
        }
        if ((uint64_t)ext_off > mf->size)
            return kl_errorf(KILN_ERR_INVALID_MODEL,
                             "tensor '%s': external data offset %lld is past the end of '%s' (%zu bytes)", t->name,
                             (long long)ext_off, ext_loc, mf->size);
        size_t avail = mf->size - (size_t)ext_off;
        size_t use = ext_len >= 0 ? (size_t)ext_len : need;
        if ((uint64_t)ext_len != (uint64_t)-1 && (uint64_t)ext_len > avail)
            return kl_errorf(KILN_ERR_INVALID_MODEL,
                             "tensor '%s': external data length %lld at offset %lld runs past the end of '%s' (%zu bytes)",
                             t->name, (long long)ext_len, (long long)ext_off, ext_loc, mf->size);
        if (use > avail)
            return kl_errorf(KILN_ERR_INVALID_MODEL,
                             "tensor '%s': external data needs %zu bytes at offset %lld but '%s' has only %zu bytes",
                             t->name, use, (long long)ext_off, ext_loc, mf->size);
        if (t->dtype == KILN_DTYPE_STRING)
            return kl_errorf(KILN_ERR_INVALID_MODEL, "tensor '%s': string tensors cannot use external data", t->name);
        t->external = true;
        t->location = ext_loc;
        t->offset = ext_off;
        if (use != need) {
            KL_TRY(kl_model_problem(P->m, KILN_CHECK_ERROR, -1,
                                    "tensor '%s': external data in '%s' holds %zu bytes but %s with %lld elements needs %zu",
                                    t->name, ext_loc, use, kiln_dtype_name(t->dtype), (long long)count, need));
            return KILN_OK;
        }
        t->data = need ? mf->data + ext_off : NULL;
        t->nbytes = need;
        return KILN_OK;
    }

    if (t->dtype == KILN_DTYPE_STRING) {
        if (typed_counts[6] != (size_t)count) {
            KL_TRY(kl_model_problem(P->m, KILN_CHECK_ERROR, -1, "tensor '%s': has %zu strings but its dims say %lld",
                                    t->name, typed_counts[6], (long long)count));
            return KILN_OK;
        }
        t->strings = kl_arena_array(a, (size_t)count ? (size_t)count : 1, sizeof(kl_str));
        if (!t->strings) return KILN_ERR_NO_MEMORY;
        size_t k = 0;
        r = kl_pb_init(data, len);
        for (;;) {
            KL_TRY(kl_pb_next(&r, &f, &more));
            if (!more) break;
            if (f.num == 6 && k < (size_t)count) t->strings[k++] = (kl_str){(const char *)f.data, f.len};
        }
        return KILN_OK;
    }

    if (has_raw) {
        if (raw_len != need) {
            KL_TRY(kl_model_problem(P->m, KILN_CHECK_ERROR, -1,
                                    "tensor '%s': raw_data has %zu bytes but %s with %lld elements needs %zu",
                                    t->name, raw_len, kiln_dtype_name(t->dtype), (long long)count, need));
            return KILN_OK;
        }
        t->data = need ? raw : NULL;
        t->nbytes = need;
        return KILN_OK;
    }

    /* Typed fields: which one holds this dtype, and how many units per element. */
    uint32_t field;
    size_t unit; /* bytes stored per decoded value */
    size_t expect = (size_t)count;
    size_t bits = kiln_dtype_bits(t->dtype);
    switch (t->dtype) {
    case KILN_DTYPE_FLOAT: field = 4; unit = 4; break;
    case KILN_DTYPE_COMPLEX64: field = 4; unit = 4; expect *= 2; break;
    case KILN_DTYPE_DOUBLE: field = 10; unit = 8; break;
    case KILN_DTYPE_COMPLEX128: field = 10; unit = 8; expect *= 2; break;
    case KILN_DTYPE_INT64: field = 7; unit = 8; break;
    case KILN_DTYPE_UINT32: field = 11; unit = 4; break;
    case KILN_DTYPE_UINT64: field = 11; unit = 8; break;
    case KILN_DTYPE_INT32: field = 5; unit = 4; break;
    default: /* 8/16-bit and sub-byte types live in int32_data */
        field = 5;
        unit = bits >= 8 ? bits / 8 : 1;
        if (bits < 8) expect = need;
        break;
    }
    size_t have = typed_counts[field];
    if (count == 0 && have == 0) return KILN_OK;
    if (have != expect) {
        KL_TRY(kl_model_problem(P->m, KILN_CHECK_ERROR, -1,
                                "tensor '%s': %s holds %zu values but %s with %lld elements needs %zu", t->name,
                                field == 4 ? "float_data" : field == 5 ? "int32_data" : field == 7 ? "int64_data"
                                : field == 10 ? "double_data" : "uint64_data",
                                have, kiln_dtype_name(t->dtype), (long long)count, expect));
        return KILN_OK;
    }
    size_t bytes;
    if (kl_mul_size(have, unit, &bytes)) return kl_errorf(KILN_ERR_INVALID_MODEL, "tensor '%s': too large", t->name);
    uint8_t *buf = kl_arena_alloc(a, bytes ? bytes : 1);
    if (!buf) return KILN_ERR_NO_MEMORY;
    int wire = field == 4 ? KL_WIRE_I32 : field == 10 ? KL_WIRE_I64 : KL_WIRE_VARINT;
    size_t k = 0;
    r = kl_pb_init(data, len);
    for (;;) {
        KL_TRY(kl_pb_next(&r, &f, &more));
        if (!more) break;
        if (f.num != field) continue;
        kl_pb_iter it;
        kl_pb_packed_begin(&f, wire, &it);
        for (;;) {
            uint64_t v;
            bool m2;
            KL_TRY(kl_pb_packed_next(&it, &v, &m2));
            if (!m2) break;
            if (k >= have) return kl_errorf(KILN_ERR_INTERNAL, "tensor '%s': value count changed", t->name);
            uint8_t *dst = buf + k * unit;
            switch (unit) {
            case 1: dst[0] = (uint8_t)v; break;
            case 2: { uint16_t u = (uint16_t)v; memcpy(dst, &u, 2); break; }
            case 4: { uint32_t u = (uint32_t)v; memcpy(dst, &u, 4); break; }
            default: memcpy(dst, &v, 8); break;
            }
            k++;
        }
    }
    t->data = buf;
    t->nbytes = bytes;
    return KILN_OK;
}

kiln_status kl_onnx_parse_tensor(kl_arena *a, const uint8_t *bytes, size_t size, kl_tensor **out) {
    /* A throwaway model collects problems; external data is refused. */
    kl_model *m = kl_calloc(1, sizeof *m);
    if (!m) return KILN_ERR_NO_MEMORY;
    kl_arena_init(&m->arena);
    kl_parser P = {m, a, 0, 0};
    kiln_status s = kl_parse_tensor(&P, bytes, size, out);
    if (s == KILN_OK && m->n_problems) s = kl_errorf(KILN_ERR_INVALID_MODEL, "%s", m->problems[0].message);
    kl_model_free(m);
    return s;
}

static kiln_status kl_parse_sparse(kl_parser *P, const uint8_t *data, size_t len, kl_sparse **out) {
    kl_sparse *sp = kl_arena_alloc(P->a, sizeof *sp);
    if (!sp) return KILN_ERR_NO_MEMORY;
    size_t ndims;
    KL_TRY(kl_count_repeated(data, len, 3, KL_WIRE_VARINT, &ndims));
    if (ndims > KILN_MAX_RANK)
        return kl_errorf(KILN_ERR_UNSUPPORTED, "sparse tensor has rank %zu; kiln supports up to %d", ndims, KILN_MAX_RANK);
    uint64_t dims[KILN_MAX_RANK];
    size_t nd = 0;
    kl_pb r = kl_pb_init(data, len);
    kl_pb_field f;
    bool more;
    for (;;) {
        KL_TRY(kl_pb_next(&r, &f, &more));
        if (!more) break;
        if (f.num == 1) {
            KL_TRY(kl_pb_expect(&f, KL_WIRE_LEN, "SparseTensorProto.values"));
            KL_TRY(kl_parse_tensor(P, f.data, f.len, &sp->values));
        } else if (f.num == 2) {
            KL_TRY(kl_pb_expect(&f, KL_WIRE_LEN, "SparseTensorProto.indices"));
            KL_TRY(kl_parse_tensor(P, f.data, f.len, &sp->indices));
        } else if (f.num == 3) {
            KL_TRY(kl_read_repeated(&f, KL_WIRE_VARINT, dims, &nd, ndims));
        }
    }
    if (!sp->values || !sp->indices)
        return kl_errorf(KILN_ERR_INVALID_MODEL, "sparse tensor without %s", sp->values ? "indices" : "values");
    sp->rank = (int)nd;
    sp->dims = kl_arena_array(P->a, nd ? nd : 1, sizeof(int64_t));
    if (!sp->dims) return KILN_ERR_NO_MEMORY;
    for (size_t i = 0; i < nd; i++) {
        if (dims[i] > (uint64_t)INT64_MAX)
            return kl_errorf(KILN_ERR_INVALID_MODEL, "sparse tensor '%s': negative dimension", sp->values->name);
        sp->dims[i] = (int64_t)dims[i];
    }
    *out = sp;
    return KILN_OK;
}

/* ---- types ---------------------------------------------------------------------- */

static kiln_status kl_parse_shape(kl_parser *P, const uint8_t *data, size_t len, kl_shape *s) {
    size_t c[32];
    KL_TRY(kl_count_fields(data, len, c));
    if (c[1] > KILN_MAX_RANK)
        return kl_errorf(KILN_ERR_UNSUPPORTED, "shape has rank %zu; kiln supports up to %d", c[1], KILN_MAX_RANK);
    s->rank = (int)c[1];
    s->dims = kl_arena_array(P->a, c[1] ? c[1] : 1, sizeof(kl_dim));
    if (!s->dims) return KILN_ERR_NO_MEMORY;
    kl_pb r = kl_pb_init(data, len);
    kl_pb_field f;
    bool more;
    int k = 0;
    for (;;) {
        KL_TRY(kl_pb_next(&r, &f, &more));
        if (!more) break;
        if (f.num != 1 || k >= s->rank) continue;
        KL_TRY(kl_pb_expect(&f, KL_WIRE_LEN, "TensorShapeProto.dim"));
        kl_dim *d = &s->dims[k++];
        d->value = -1;
        kl_pb dr = kl_pb_init(f.data, f.len);
        kl_pb_field df;
        bool dmore;
        for (;;) {
            KL_TRY(kl_pb_next(&dr, &df, &dmore));
            if (!dmore) break;
            if (df.num == 1) {
                KL_TRY(kl_pb_expect(&df, KL_WIRE_VARINT, "Dimension.dim_value"));
                /* A negative dim_value means "unknown" in practice (onnx tools write -1). */
                d->value = (int64_t)df.v >= 0 ? (int64_t)df.v : -1;
                d->param = NULL;
            } else if (df.num == 2) {
                const char *p;
                KL_TRY(kl_str_field(P, &df, "Dimension.dim_param", &p));
                d->value = -1;
                d->param = p[0] ? p : NULL;
            }
        }
    }
    return KILN_OK;
}

#define KL_MAX_TYPE_DEPTH 16

/* Parse the element-type field of a nested TypeProto (Sequence/Optional/Map value). */
static kiln_status kl_parse_inner(kl_parser *P, const kl_pb_field *f, kl_type *t, int depth) {
    KL_TRY(kl_pb_expect(f, KL_WIRE_LEN, "TypeProto element type"));
    t->inner = kl_arena_alloc(P->a, sizeof(kl_type));
    if (!t->inner) return KILN_ERR_NO_MEMORY;
    t->inner->shape.rank = -1;
    return kl_parse_type(P, f->data, f->len, t->inner, depth + 1);
}

static kiln_status kl_parse_type(kl_parser *P, const uint8_t *data, size_t len, kl_type *t, int depth) {
    if (depth > KL_MAX_TYPE_DEPTH)
        return kl_errorf(KILN_ERR_PARSE, "type nested more than %d deep", KL_MAX_TYPE_DEPTH);
    memset(t, 0, sizeof *t);
    t->shape.rank = -1;
    kl_pb r = kl_pb_init(data, len);
    kl_pb_field f;
    bool more;
    for (;;) {
        KL_TRY(kl_pb_next(&r, &f, &more));
        if (!more) break;
        if (f.num == 7) /* TypeProto.opaque (ONNX-ML; every build from IR version 14) */
            return kl_errorf(KILN_ERR_UNSUPPORTED, "opaque type (TypeProto.opaque): kiln supports tensor, sparse "
                             "tensor, sequence, map and optional types");
        if (f.num != 1 && f.num != 4 && f.num != 5 && f.num != 8 && f.num != 9) continue;
        KL_TRY(kl_pb_expect(&f, KL_WIRE_LEN, "TypeProto.value"));
        kl_pb sr = kl_pb_init(f.data, f.len);
        kl_pb_field sf;
        bool smore;
        t->kind = f.num == 1 ? KL_TYPE_TENSOR : f.num == 8 ? KL_TYPE_SPARSE_TENSOR : f.num == 4 ? KL_TYPE_SEQUENCE
                  : f.num == 5 ? KL_TYPE_MAP : KL_TYPE_OPTIONAL;
        for (;;) {
            KL_TRY(kl_pb_next(&sr, &sf, &smore));
            if (!smore) break;
            if (t->kind == KL_TYPE_TENSOR || t->kind == KL_TYPE_SPARSE_TENSOR) {
                if (sf.num == 1) {
                    KL_TRY(kl_pb_expect(&sf, KL_WIRE_VARINT, "TypeProto.Tensor.elem_type"));
                    t->elem = kl_dtype_valid((int32_t)sf.v) && sf.v < 1000 ? (kiln_dtype)sf.v : KILN_DTYPE_UNDEFINED;
                    if (sf.v != 0 && t->elem == KILN_DTYPE_UNDEFINED)
                        return kl_errorf(KILN_ERR_UNSUPPORTED, "element type %llu is not one kiln knows",
                                         (unsigned long long)sf.v);
                } else if (sf.num == 2) {
                    KL_TRY(kl_pb_expect(&sf, KL_WIRE_LEN, "TypeProto.Tensor.shape"));
                    KL_TRY(kl_parse_shape(P, sf.data, sf.len, &t->shape));
                }
            } else if (t->kind == KL_TYPE_MAP) {
                if (sf.num == 1) {
                    KL_TRY(kl_pb_expect(&sf, KL_WIRE_VARINT, "TypeProto.Map.key_type"));
                    t->elem = kl_dtype_valid((int32_t)sf.v) && sf.v < 1000 ? (kiln_dtype)sf.v : KILN_DTYPE_UNDEFINED;
                } else if (sf.num == 2) {
                    KL_TRY(kl_parse_inner(P, &sf, t, depth));
                }
            } else if (sf.num == 1) {
                KL_TRY(kl_parse_inner(P, &sf, t, depth));
            }
        }
    }
    return KILN_OK;
}

/* ValueInfoProto: name and type. */
static kiln_status kl_parse_value_info(kl_parser *P, const uint8_t *data, size_t len, const char **name,
                                       kl_type *type, bool *has_type) {
    *name = "";
    *has_type = false;
    memset(type, 0, sizeof *type);
    type->shape.rank = -1;
    kl_pb r = kl_pb_init(data, len);
    kl_pb_field f;
    bool more;
    for (;;) {
        KL_TRY(kl_pb_next(&r, &f, &more));
        if (!more) break;
        if (f.num == 1) KL_TRY(kl_str_field(P, &f, "ValueInfoProto.name", name));
        else if (f.num == 2) {
            KL_TRY(kl_pb_expect(&f, KL_WIRE_LEN, "ValueInfoProto.type"));
            kiln_status s = kl_parse_type(P, f.data, f.len, type, 0);
            if (s) return kl_error_context(s, "value '%s': ", *name);
            *has_type = true;
        }
    }
    return KILN_OK;
}

/* ---- attributes ------------------------------------------------------------------ */

static kiln_status kl_parse_attr(kl_parser *P, const uint8_t *data, size_t len, kl_attr *at, kl_graph *g,
                                 kl_node *owner, const kl_opctx *ops) {
    kl_arena *a = P->a;
    at->name = "";
    size_t c[32];
    KL_TRY(kl_count_fields(data, len, c));
    size_t nfloats, nints;
    KL_TRY(kl_count_repeated(data, len, 7, KL_WIRE_I32, &nfloats));
    KL_TRY(kl_count_repeated(data, len, 8, KL_WIRE_VARINT, &nints));
    uint64_t *ints = NULL;
    if (nints) {
        at->ints = kl_arena_array(a, nints, sizeof(int64_t));
        if (!at->ints) return KILN_ERR_NO_MEMORY;
        ints = (uint64_t *)at->ints;
    }
    uint64_t *floats = NULL;
    if (nfloats) {
        floats = kl_arena_array(a, nfloats, sizeof(uint64_t));
        at->floats = kl_arena_array(a, nfloats, sizeof(float));
        if (!floats || !at->floats) return KILN_ERR_NO_MEMORY;
    }
    if (c[9]) at->strings = kl_arena_array(a, c[9], sizeof(kl_str));
    if (c[10]) at->tensors = kl_arena_array(a, c[10], sizeof(kl_tensor *));
    if (c[11]) at->graphs = kl_arena_array(a, c[11], sizeof(kl_graph *));
    if (c[23]) at->sparses = kl_arena_array(a, c[23], sizeof(kl_sparse *));
    if (c[15]) at->tps = kl_arena_array(a, c[15], sizeof(kl_type *));
    if ((c[9] && !at->strings) || (c[10] && !at->tensors) || (c[11] && !at->graphs) ||
        (c[23] && !at->sparses) || (c[15] && !at->tps))
        return KILN_ERR_NO_MEMORY;
    size_t ni = 0, nf = 0, ns = 0, nt = 0, ng = 0, nsp = 0, ntp = 0;
    bool has[24] = {false};
    int64_t type = 0;
    kl_pb r = kl_pb_init(data, len);
    kl_pb_field f;
    bool more;
    /* Name first, so errors below can name the attribute. */
    for (;;) {
        KL_TRY(kl_pb_next(&r, &f, &more));
        if (!more) break;
        if (f.num == 1) KL_TRY(kl_str_field(P, &f, "AttributeProto.name", &at->name));
    }
    r = kl_pb_init(data, len);
    kiln_status s = KILN_OK;
    for (;;) {
        s = kl_pb_next(&r, &f, &more);
        if (s || !more) break;
        if (f.num < 24) has[f.num] = true;
        switch (f.num) {
        case 20: s = kl_pb_expect(&f, KL_WIRE_VARINT, "AttributeProto.type"); type = (int64_t)f.v; break;
        case 21: s = kl_str_field(P, &f, "AttributeProto.ref_attr_name", &at->ref_attr_name); break;
        case 2: {
            s = kl_pb_expect(&f, KL_WIRE_I32, "AttributeProto.f");
            uint32_t u = (uint32_t)f.v;
            memcpy(&at->f, &u, 4);
            break;
        }
        case 3: s = kl_pb_expect(&f, KL_WIRE_VARINT, "AttributeProto.i"); at->i = (int64_t)f.v; break;
        case 4: {
            const char *str;
            s = kl_str_field(P, &f, "AttributeProto.s", &str);
            if (!s) at->s = (kl_str){str, f.len};
            break;
        }
        case 5:
            s = kl_pb_expect(&f, KL_WIRE_LEN, "AttributeProto.t");
            if (!s) s = kl_parse_tensor(P, f.data, f.len, &at->t);
            break;
        case 22:
            s = kl_pb_expect(&f, KL_WIRE_LEN, "AttributeProto.sparse_tensor");
            if (!s) s = kl_parse_sparse(P, f.data, f.len, &at->sparse);
            break;
        case 6:
        case 11: {
            s = kl_pb_expect(&f, KL_WIRE_LEN, "AttributeProto.g");
            if (s) break;
            if (g->depth + 1 > KL_ONNX_MAX_GRAPH_DEPTH) {
                s = kl_errorf(KILN_ERR_UNSUPPORTED, "subgraphs nested more than %d deep", KL_ONNX_MAX_GRAPH_DEPTH);
                break;
            }
            kl_graph *sub;
            s = kl_graph_new(P->m, g, owner, &sub);
            if (!s) s = kl_parse_graph(P, f.data, f.len, sub, ops);
            if (s) break;
            if (f.num == 6) at->g = sub;
            else if (ng < c[11]) at->graphs[ng++] = sub;
            break;
        }
        case 14:
        case 15: {
            s = kl_pb_expect(&f, KL_WIRE_LEN, "AttributeProto.tp");
            if (s) break;
            kl_type *tp = kl_arena_alloc(a, sizeof *tp);
            if (!tp) return KILN_ERR_NO_MEMORY;
            s = kl_parse_type(P, f.data, f.len, tp, 0);
            if (s) break;
            if (f.num == 14) at->tp = tp;
            else if (ntp < c[15]) at->tps[ntp++] = tp;
            break;
        }
        case 7: s = kl_read_repeated(&f, KL_WIRE_I32, floats, &nf, nfloats); break;
        case 8: s = kl_read_repeated(&f, KL_WIRE_VARINT, ints, &ni, nints); break;
        case 9:
            s = kl_pb_expect(&f, KL_WIRE_LEN, "AttributeProto.strings");
            if (!s && ns < c[9]) at->strings[ns++] = (kl_str){(const char *)f.data, f.len};
            break;
        case 10:
            s = kl_pb_expect(&f, KL_WIRE_LEN, "AttributeProto.tensors");
            if (!s && nt < c[10]) s = kl_parse_tensor(P, f.data, f.len, &at->tensors[nt++]);
            break;
        case 23:
            s = kl_pb_expect(&f, KL_WIRE_LEN, "AttributeProto.sparse_tensors");
            if (!s && nsp < c[23]) s = kl_parse_sparse(P, f.data, f.len, &at->sparses[nsp++]);
            break;
        default: break;
        }
        if (s) break;
    }
    if (s) return kl_error_context(s, "attribute '%s': ", at->name);
    for (size_t i = 0; i < nf; i++) {
        uint32_t u = (uint32_t)floats[i];
        memcpy(&at->floats[i], &u, 4);
    }
    if (type == 0) { /* old models: infer the type from the field present */
        static const int order[][2] = {{2, 1}, {3, 2}, {4, 3}, {5, 4}, {6, 5}, {7, 6}, {8, 7}, {9, 8},
                                       {10, 9}, {11, 10}, {22, 11}, {23, 12}, {14, 13}, {15, 14}};
        for (size_t i = 0; i < KL_ARRAY_LEN(order); i++)
            if (has[order[i][0]]) {
                type = order[i][1];
                break;
            }
        if (type == 0 && !at->ref_attr_name) type = KL_ATTR_INTS; /* empty list */
    }
    if (type < 0 || type > KL_ATTR_TYPE_PROTOS)
        return kl_errorf(KILN_ERR_INVALID_MODEL, "attribute '%s': unknown attribute type %lld", at->name,
                         (long long)type);
    at->type = (kl_attr_type)type;
    switch (at->type) {
    case KL_ATTR_FLOATS: at->n = nf; break;
    case KL_ATTR_INTS: at->n = ni; break;
    case KL_ATTR_STRINGS: at->n = ns; break;
    case KL_ATTR_TENSORS: at->n = nt; break;
    case KL_ATTR_GRAPHS: at->n = ng; break;
    case KL_ATTR_SPARSE_TENSORS: at->n = nsp; break;
    case KL_ATTR_TYPE_PROTOS: at->n = ntp; break;
    default: at->n = 0; break;
    }
    if (!at->s.ptr) at->s = (kl_str){"", 0};
    return KILN_OK;
}

/* ---- nodes ------------------------------------------------------------------------ */

static int64_t kl_opctx_version(const kl_opctx *ops, const char *domain) {
    for (size_t i = 0; i < ops->n; i++)
        if (strcmp(ops->opsets[i].domain, domain) == 0) return ops->opsets[i].version;
    return 0;
}

/* Parse a NodeProto into a node of graph g (not yet emitted). */
static kiln_status kl_parse_node(kl_parser *P, const uint8_t *data, size_t len, kl_graph *g, const kl_opctx *ops,
                                 size_t pos, kl_node **out) {
    kl_arena *a = P->a;
    kl_node *n = kl_arena_alloc(a, sizeof *n);
    if (!n) return KILN_ERR_NO_MEMORY;
    n->name = "";
    n->op_type = "";
    n->domain = "";
    n->overload = "";
    n->graph = g;
    n->index = pos;
    size_t c[32];
    KL_TRY(kl_count_fields(data, len, c));
    n->inputs = kl_arena_array(a, c[1] ? c[1] : 1, sizeof(kl_value *));
    n->outputs = kl_arena_array(a, c[2] ? c[2] : 1, sizeof(kl_value *));
    n->attrs = kl_arena_array(a, c[5] ? c[5] : 1, sizeof(kl_attr));
    if (!n->inputs || !n->outputs || !n->attrs) return KILN_ERR_NO_MEMORY;
    const char **out_names = kl_arena_array(a, c[2] ? c[2] : 1, sizeof(char *));
    if (!out_names) return KILN_ERR_NO_MEMORY;
    kl_pb r = kl_pb_init(data, len);
    kl_pb_field f;
    bool more;
    for (;;) { /* identity first, for messages */
        KL_TRY(kl_pb_next(&r, &f, &more));
        if (!more) break;
        if (f.num == 3) KL_TRY(kl_str_field(P, &f, "NodeProto.name", &n->name));
        else if (f.num == 4) KL_TRY(kl_str_field(P, &f, "NodeProto.op_type", &n->op_type));
        else if (f.num == 7) KL_TRY(kl_str_field(P, &f, "NodeProto.domain", &n->domain));
        else if (f.num == 8) KL_TRY(kl_str_field(P, &f, "NodeProto.overload", &n->overload));
        else if (f.num == 6) { /* doc_string: kiln's writer keeps fused_from there */
            KL_TRY(kl_pb_expect(&f, KL_WIRE_LEN, "NodeProto.doc_string"));
            size_t plen = strlen(KL_ONNX_FUSED_PREFIX);
            if (f.len > plen && memcmp(f.data, KL_ONNX_FUSED_PREFIX, plen) == 0) {
                n->fused_from = kl_arena_strndup(a, (const char *)f.data + plen, f.len - plen);
                if (!n->fused_from) return KILN_ERR_NO_MEMORY;
            }
        }
    }
    n->domain = kl_norm_domain(n->domain);
    n->opset = kl_opctx_version(ops, n->domain);
    kiln_status s = KILN_OK;
    r = kl_pb_init(data, len);
    /* Inputs, then attributes (subgraphs see only what is defined before this node). */
    for (int pass = 0; pass < 2 && !s; pass++) {
        r = kl_pb_init(data, len);
        for (;;) {
            s = kl_pb_next(&r, &f, &more);
            if (s || !more) break;
            if (pass == 0 && f.num == 1) {
                const char *name;
                s = kl_str_field(P, &f, "NodeProto.input", &name);
                if (s) break;
                kl_value *v = NULL;
                if (name[0]) {
                    v = kl_graph_lookup(g, name);
                    if (!v) s = kl_graph_value(g, name, &v);
                    if (s) break;
                    v->use_count++;
                }
                n->inputs[n->n_inputs++] = v;
            } else if (pass == 1 && f.num == 5) {
                s = kl_pb_expect(&f, KL_WIRE_LEN, "NodeProto.attribute");
                if (!s) s = kl_parse_attr(P, f.data, f.len, &n->attrs[n->n_attrs], g, n, ops);
                if (!s) n->n_attrs++;
            } else if (pass == 1 && f.num == 2) {
                s = kl_str_field(P, &f, "NodeProto.output", &out_names[n->n_outputs]);
                if (!s) n->n_outputs++;
            }
            if (s) break;
        }
    }
    /* Outputs: values in this graph's own scope. */
    for (size_t i = 0; i < n->n_outputs && !s; i++) {
        if (!out_names[i][0]) continue;
        kl_value *outer = g->parent ? kl_graph_lookup(g->parent, out_names[i]) : NULL;
        if (outer && (outer->producer || outer->flags & (KL_VALUE_GRAPH_INPUT | KL_VALUE_INITIALIZER)))
            s = kl_model_problem(P->m, KILN_CHECK_ERROR, g->depth ? -1 : (int64_t)pos,
                                 "node %zu '%s' (%s): output '%s' shadows a value of an enclosing graph (names must be unique)",
                                 pos, n->name, n->op_type, out_names[i]);
        if (!s) s = kl_graph_value(g, out_names[i], &n->outputs[i]);
    }
    if (s) return kl_error_context(s, "node %zu '%s' (%s): ", pos, n->name, n->op_type);
    /* Attribute names must be unique. */
    for (size_t i = 0; i < n->n_attrs; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(n->attrs[i].name, n->attrs[j].name) == 0)
                KL_TRY(kl_model_problem(P->m, KILN_CHECK_ERROR, g->depth ? -1 : (int64_t)pos,
                                        "node %zu '%s' (%s): attribute '%s' appears twice", pos, n->name,
                                        n->op_type, n->attrs[i].name));
    *out = n;
    return KILN_OK;
}

static kiln_status kl_graph_append(kl_parser *P, kl_graph *g, kl_node *n) {
    if (P->emitted >= KL_ONNX_MAX_INLINED_NODES)
        return kl_errorf(KILN_ERR_UNSUPPORTED, "the model has more than %u nodes after inlining functions",
                         KL_ONNX_MAX_INLINED_NODES);
    if ((g->n_nodes & (g->n_nodes - 1)) == 0) {
        size_t cap = g->n_nodes ? g->n_nodes * 2 : 8;
        kl_node **nodes = kl_arena_array(P->a, cap, sizeof *nodes);
        if (!nodes) return KILN_ERR_NO_MEMORY;
        if (g->n_nodes) memcpy(nodes, g->nodes, g->n_nodes * sizeof *nodes);
        g->nodes = nodes;
    }
    n->index = g->n_nodes;
    n->graph = g;
    g->nodes[g->n_nodes++] = n;
    P->emitted++;
    return KILN_OK;
}

static kl_function *kl_find_function(const kl_model *m, const kl_node *n) {
    for (size_t i = 0; i < m->n_functions; i++) {
        kl_function *fn = m->functions[i];
        if (strcmp(fn->name, n->op_type) == 0 && strcmp(fn->domain, n->domain) == 0 &&
            strcmp(fn->overload, n->overload) == 0)
            return fn;
    }
    return NULL;
}

/* Inline a call of local function fn (node n) into graph g. */
static kiln_status kl_inline_call(kl_parser *P, kl_graph *g, kl_node *call, kl_function *fn, int depth) {
    kl_arena *a = P->a;
    kl_graph *body = fn->body;
    unsigned seq = ++P->inline_seq;
    const char *cname = call->name[0] ? call->name : fn->name;
    /* Map body values to caller values: index by body value position. */
    kl_value **map = kl_arena_array(a, body->n_values ? body->n_values : 1, sizeof *map);
    if (!map) return KILN_ERR_NO_MEMORY;
    for (size_t i = 0; i < body->n_values; i++) {
        kl_value *bv = body->values[i];
        kl_value *mapped = NULL;
        for (size_t k = 0; k < body->n_inputs; k++)
            if (body->inputs[k] == bv) mapped = k < call->n_inputs ? call->inputs[k] : NULL;
        for (size_t k = 0; k < body->n_outputs; k++)
            if (body->outputs[k] == bv && k < call->n_outputs) mapped = call->outputs[k];
        bool is_formal = false;
        for (size_t k = 0; k < body->n_inputs; k++) is_formal |= body->inputs[k] == bv;
        for (size_t k = 0; k < body->n_outputs; k++) is_formal |= body->outputs[k] == bv && k < call->n_outputs && call->outputs[k];
        if (!is_formal) {
            char *nm = kl_arena_printf(a, "%s/%s#%u/%s", cname, fn->name, seq, bv->name);
            if (!nm) return KILN_ERR_NO_MEMORY;
            KL_TRY(kl_graph_value(g, nm, &mapped));
        }
        map[i] = mapped;
    }
    for (size_t i = 0; i < body->n_nodes; i++) {
        const kl_node *b = body->nodes[i];
        kl_node *n = kl_arena_alloc(a, sizeof *n);
        if (!n) return KILN_ERR_NO_MEMORY;
        *n = *b;
        n->name = kl_arena_printf(a, "%s/%s", cname, b->name[0] ? b->name : b->op_type);
        n->inputs = kl_arena_array(a, b->n_inputs ? b->n_inputs : 1, sizeof(kl_value *));
        n->outputs = kl_arena_array(a, b->n_outputs ? b->n_outputs : 1, sizeof(kl_value *));
        n->attrs = kl_arena_array(a, b->n_attrs ? b->n_attrs : 1, sizeof(kl_attr));
        if (!n->name || !n->inputs || !n->outputs || !n->attrs) return KILN_ERR_NO_MEMORY;
        for (size_t k = 0; k < b->n_inputs + b->n_outputs; k++) {
            kl_value *bv = k < b->n_inputs ? b->inputs[k] : b->outputs[k - b->n_inputs];
            kl_value *mv = NULL;
            if (bv)
                for (size_t j = 0; j < body->n_values; j++)
                    if (body->values[j] == bv) mv = map[j];
            if (k < b->n_inputs) {
                n->inputs[k] = mv;
                if (mv) mv->use_count++;
            } else {
                n->outputs[k - b->n_inputs] = mv;
            }
        }
        n->n_attrs = 0;
        for (size_t k = 0; k < b->n_attrs; k++) {
            const kl_attr *ba = &b->attrs[k];
            if (ba->type == KL_ATTR_GRAPH || ba->type == KL_ATTR_GRAPHS)
                return kl_errorf(KILN_ERR_UNSUPPORTED,
                                 "function '%s': node '%s' (%s) has a subgraph attribute; kiln cannot inline that yet",
                                 fn->name, b->name, b->op_type);
            if (!ba->ref_attr_name) {
                n->attrs[n->n_attrs++] = *ba;
                continue;
            }
            const kl_attr *src = kl_node_attr(call, ba->ref_attr_name);
            for (size_t d = 0; !src && d < fn->n_attr_defaults; d++)
                if (strcmp(fn->attr_defaults[d].name, ba->ref_attr_name) == 0) src = &fn->attr_defaults[d];
            if (!src) continue; /* unset reference: the attribute is absent */
            kl_attr copy = *src;
            copy.name = ba->name;
            copy.ref_attr_name = NULL;
            n->attrs[n->n_attrs++] = copy;
        }
        /* Body nodes keep the opsets of the function's imports. */
        kl_opctx fops = {fn->opsets, fn->n_opsets};
        int64_t v = kl_opctx_version(&fops, n->domain);
        if (!v) v = kl_model_opset(P->m, n->domain);
        n->opset = v;
        KL_TRY(kl_emit_node(P, g, n, depth + 1));
    }
    for (size_t k = 0; k < call->n_outputs; k++) {
        kl_value *o = call->outputs[k];
        if (o && !o->producer && k < body->n_outputs)
            KL_TRY(kl_model_problem(P->m, KILN_CHECK_ERROR, -1,
                                    "function '%s' called by node '%s': output %zu '%s' is not produced by its body",
                                    fn->name, call->name, k, o->name));
    }
    P->m->n_inlined++;
    return KILN_OK;
}

/* Add node n to graph g: inline it if it calls a local function; otherwise
 * link its outputs (checking single assignment) and resolve its schema. */
static kiln_status kl_emit_node(kl_parser *P, kl_graph *g, kl_node *n, int depth) {
    kl_function *fn = kl_find_function(P->m, n);
    if (fn && g != fn->body) {
        if (depth >= KL_ONNX_MAX_FUNCTION_DEPTH)
            return kl_errorf(KILN_ERR_UNSUPPORTED, "function '%s': calls nested more than %d deep (recursive?)",
                             fn->name, KL_ONNX_MAX_FUNCTION_DEPTH);
        kiln_status s = kl_inline_call(P, g, n, fn, depth);
        if (s) return kl_error_context(s, "inlining function '%s' at node '%s': ", fn->name, n->name);
        return KILN_OK;
    }
    KL_TRY(kl_graph_append(P, g, n));
    int64_t idx = g->depth == 0 ? (int64_t)n->index : -1;
    for (size_t i = 0; i < n->n_outputs; i++) {
        kl_value *v = n->outputs[i];
        if (!v) continue;
        if (v->producer || (v->flags & (KL_VALUE_GRAPH_INPUT | KL_VALUE_INITIALIZER))) {
            KL_TRY(kl_model_problem(P->m, KILN_CHECK_ERROR, idx,
                                    "node %zu '%s' (%s): output '%s' is already %s (each name must be assigned once)",
                                    n->index, n->name, n->op_type, v->name,
                                    v->producer ? "produced by an earlier node" : "a graph input or initializer"));
            continue;
        }
        v->producer = n;
        v->producer_output = (int)i;
    }
    n->schema = kl_op_find(n->domain, n->op_type, n->opset, NULL);
    return KILN_OK;
}

/* ---- graphs --------------------------------------------------------------------- */

/* Spans of one repeated message field. */
typedef struct kl_spans {
    const uint8_t **data;
    size_t *len;
    size_t n;
} kl_spans;

static kiln_status kl_collect(kl_parser *P, const uint8_t *data, size_t len, const size_t counts[32],
                              uint32_t num, const char *what, kl_spans *out) {
    out->n = 0;
    out->data = kl_arena_array(P->a, counts[num] ? counts[num] : 1, sizeof(uint8_t *));
    out->len = kl_arena_array(P->a, counts[num] ? counts[num] : 1, sizeof(size_t));
    if (!out->data || !out->len) return KILN_ERR_NO_MEMORY;
    kl_pb r = kl_pb_init(data, len);
    kl_pb_field f;
    bool more;
    for (;;) {
        KL_TRY(kl_pb_next(&r, &f, &more));
        if (!more) break;
        if (f.num != num || out->n >= counts[num]) continue;
        KL_TRY(kl_pb_expect(&f, KL_WIRE_LEN, what));
        out->data[out->n] = f.data;
        out->len[out->n++] = f.len;
    }
    return KILN_OK;
}

static kiln_status kl_parse_graph(kl_parser *P, const uint8_t *data, size_t len, kl_graph *g, const kl_opctx *ops) {
    kl_arena *a = P->a;
    kl_model *m = P->m;
    size_t c[32];
    KL_TRY(kl_count_fields(data, len, c));
    kl_spans nodes, inits, sparse, inputs, outputs, vinfo;
    KL_TRY(kl_collect(P, data, len, c, 1, "GraphProto.node", &nodes));
    KL_TRY(kl_collect(P, data, len, c, 5, "GraphProto.initializer", &inits));
    KL_TRY(kl_collect(P, data, len, c, 15, "GraphProto.sparse_initializer", &sparse));
    KL_TRY(kl_collect(P, data, len, c, 11, "GraphProto.input", &inputs));
    KL_TRY(kl_collect(P, data, len, c, 12, "GraphProto.output", &outputs));
    KL_TRY(kl_collect(P, data, len, c, 13, "GraphProto.value_info", &vinfo));
    kl_pb r = kl_pb_init(data, len);
    kl_pb_field f;
    bool more;
    for (;;) {
        KL_TRY(kl_pb_next(&r, &f, &more));
        if (!more) break;
        if (f.num == 2) KL_TRY(kl_str_field(P, &f, "GraphProto.name", &g->name));
    }
    const char *gname = g->name[0] ? g->name : (g->depth ? "subgraph" : "main");
    kiln_status s = KILN_OK;
    const int64_t gidx = -1; /* graph-level problems are not about one node */

    g->initializers = kl_arena_array(a, inits.n + sparse.n + 1, sizeof(kl_value *));
    if (!g->initializers) return KILN_ERR_NO_MEMORY;
    for (size_t i = 0; i < inits.n + sparse.n; i++) {
        kl_tensor *t = NULL;
        kl_sparse *sp = NULL;
        if (i < inits.n) {
            s = kl_parse_tensor(P, inits.data[i], inits.len[i], &t);
        } else {
            s = kl_parse_sparse(P, sparse.data[i - inits.n], sparse.len[i - inits.n], &sp);
            if (!s) t = sp->values;
        }
        if (s) return kl_error_context(s, "graph '%s': initializer %zu: ", gname, i);
        const char *tname = t->name;
        if (!tname[0]) {
            KL_TRY(kl_model_problem(m, KILN_CHECK_ERROR, gidx, "graph '%s': initializer %zu has no name", gname, i));
            continue;
        }
        kl_value *v = kl_strmap_get(&g->by_name, tname);
        if (v && (v->flags & KL_VALUE_INITIALIZER)) {
            KL_TRY(kl_model_problem(m, KILN_CHECK_ERROR, gidx, "graph '%s': initializer '%s' is defined twice", gname,
                                    tname));
            continue;
        }
        KL_TRY(kl_graph_value(g, tname, &v));
        v->flags |= KL_VALUE_INITIALIZER | KL_VALUE_DECLARED;
        v->type.kind = sp ? KL_TYPE_SPARSE_TENSOR : KL_TYPE_TENSOR;
        v->sparse_init = sp;
        int rank = sp ? sp->rank : t->rank;
        const int64_t *dims = sp ? sp->dims : t->dims;
        v->type.elem = t->dtype;
        v->type.shape.rank = rank;
        v->type.shape.dims = kl_arena_array(a, rank ? (size_t)rank : 1, sizeof(kl_dim));
        if (!v->type.shape.dims) return KILN_ERR_NO_MEMORY;
        for (int k = 0; k < rank; k++) v->type.shape.dims[k].value = dims[k];
        if (sp) v->type.kind = KL_TYPE_TENSOR; /* used as a dense tensor */
        v->init = sp ? NULL : t;
        g->initializers[g->n_initializers++] = v;
    }

    g->inputs = kl_arena_array(a, inputs.n + 1, sizeof(kl_value *));
    if (!g->inputs) return KILN_ERR_NO_MEMORY;
    for (size_t i = 0; i < inputs.n; i++) {
        const char *name;
        kl_type type;
        bool has_type;
        s = kl_parse_value_info(P, inputs.data[i], inputs.len[i], &name, &type, &has_type);
        if (s) return kl_error_context(s, "graph '%s': input %zu: ", gname, i);
        kl_value *v = kl_strmap_get(&g->by_name, name);
        if (v && (v->flags & KL_VALUE_GRAPH_INPUT)) {
            KL_TRY(kl_model_problem(m, KILN_CHECK_ERROR, gidx, "graph '%s': input '%s' is declared twice", gname, name));
            continue;
        }
        if (!name[0]) {
            KL_TRY(kl_model_problem(m, KILN_CHECK_ERROR, gidx, "graph '%s': input %zu has no name", gname, i));
            continue;
        }
        KL_TRY(kl_graph_value(g, name, &v));
        v->flags |= KL_VALUE_GRAPH_INPUT;
        if (has_type && !(v->flags & KL_VALUE_INITIALIZER)) {
            v->type = type;
            v->flags |= KL_VALUE_DECLARED;
        } else if (!has_type && g->depth == 0) { /* subgraph inputs may leave types to inference */
            KL_TRY(kl_model_problem(m, KILN_CHECK_ERROR, gidx, "graph '%s': input '%s' has no type", gname, name));
        }
        g->inputs[g->n_inputs++] = v;
    }

    for (size_t i = 0; i < nodes.n; i++) {
        kl_node *n;
        s = kl_parse_node(P, nodes.data[i], nodes.len[i], g, ops, g->n_nodes, &n);
        if (!s) s = kl_emit_node(P, g, n, 0);
        if (s) return g->depth ? kl_error_context(s, "graph '%s': ", gname) : s;
    }

    g->outputs = kl_arena_array(a, outputs.n + 1, sizeof(kl_value *));
    if (!g->outputs) return KILN_ERR_NO_MEMORY;
    for (size_t i = 0; i < outputs.n; i++) {
        const char *name;
        kl_type type;
        bool has_type;
        s = kl_parse_value_info(P, outputs.data[i], outputs.len[i], &name, &type, &has_type);
        if (s) return kl_error_context(s, "graph '%s': output %zu: ", gname, i);
        if (!name[0]) {
            KL_TRY(kl_model_problem(m, KILN_CHECK_ERROR, gidx, "graph '%s': output %zu has no name", gname, i));
            continue;
        }
        kl_value *v = kl_graph_lookup(g, name);
        if (!v) KL_TRY(kl_graph_value(g, name, &v));
        g->outputs[g->n_outputs++] = v;
        if (v->graph != g) continue; /* a subgraph returning an outer value: that value is not ours */
        v->flags |= KL_VALUE_GRAPH_OUTPUT;
        if (has_type && !(v->flags & KL_VALUE_INITIALIZER) && !(v->flags & KL_VALUE_GRAPH_INPUT)) {
            v->type = type;
            v->flags |= KL_VALUE_DECLARED;
        } else if (!has_type && g->depth == 0) {
            KL_TRY(kl_model_problem(m, KILN_CHECK_ERROR, gidx, "graph '%s': output '%s' has no type", gname, name));
        }
    }

    for (size_t i = 0; i < vinfo.n; i++) {
        const char *name;
        kl_type type;
        bool has_type;
        s = kl_parse_value_info(P, vinfo.data[i], vinfo.len[i], &name, &type, &has_type);
        if (s) return kl_error_context(s, "graph '%s': value_info %zu: ", gname, i);
        kl_value *v = kl_strmap_get(&g->by_name, name);
        if (!v || !has_type || (v->flags & (KL_VALUE_DECLARED | KL_VALUE_INITIALIZER))) continue;
        v->type = type;
        v->flags |= KL_VALUE_DECLARED;
    }
    return KILN_OK;
}

/* ---- functions ---------------------------------------------------------------------- */

static kiln_status kl_parse_opsets(kl_parser *P, const uint8_t *data, size_t len, uint32_t num, kl_opset **out,
                                   size_t *n_out, const char *where) {
    size_t c[32];
    KL_TRY(kl_count_fields(data, len, c));
    kl_opset *ops = kl_arena_array(P->a, c[num] ? c[num] : 1, sizeof *ops);
    if (!ops) return KILN_ERR_NO_MEMORY;
    size_t n = 0;
    kl_pb r = kl_pb_init(data, len);
    kl_pb_field f;
    bool more;
    for (;;) {
        KL_TRY(kl_pb_next(&r, &f, &more));
        if (!more) break;
        if (f.num != num || n >= c[num]) continue;
        KL_TRY(kl_pb_expect(&f, KL_WIRE_LEN, "opset_import"));
        kl_opset o = {"", 0};
        kl_pb orr = kl_pb_init(f.data, f.len);
        kl_pb_field of;
        bool omore;
        for (;;) {
            KL_TRY(kl_pb_next(&orr, &of, &omore));
            if (!omore) break;
            if (of.num == 1) KL_TRY(kl_str_field(P, &of, "OperatorSetIdProto.domain", &o.domain));
            if (of.num == 2) {
                KL_TRY(kl_pb_expect(&of, KL_WIRE_VARINT, "OperatorSetIdProto.version"));
                o.version = (int64_t)of.v;
            }
        }
        o.domain = kl_norm_domain(o.domain);
        bool dup = false;
        for (size_t k = 0; k < n; k++)
            if (strcmp(ops[k].domain, o.domain) == 0) {
                dup = true;
                if (ops[k].version != o.version)
                    KL_TRY(kl_model_problem(P->m, KILN_CHECK_ERROR, -1,
                                            "%s imports domain '%s' twice, with versions %lld and %lld", where,
                                            o.domain[0] ? o.domain : "ai.onnx", (long long)ops[k].version,
                                            (long long)o.version));
            }
        if (!dup) ops[n++] = o;
    }
    *out = ops;
    *n_out = n;
    return KILN_OK;
}

static kiln_status kl_parse_function(kl_parser *P, const uint8_t *data, size_t len, kl_function **out) {
    kl_arena *a = P->a;
    kl_function *fn = kl_arena_alloc(a, sizeof *fn);
    if (!fn) return KILN_ERR_NO_MEMORY;
    fn->name = fn->domain = fn->overload = "";
    size_t c[32];
    KL_TRY(kl_count_fields(data, len, c));
    kl_pb r = kl_pb_init(data, len);
    kl_pb_field f;
    bool more;
    for (;;) {
        KL_TRY(kl_pb_next(&r, &f, &more));
        if (!more) break;
        if (f.num == 1) KL_TRY(kl_str_field(P, &f, "FunctionProto.name", &fn->name));
        else if (f.num == 10) KL_TRY(kl_str_field(P, &f, "FunctionProto.domain", &fn->domain));
        else if (f.num == 13) KL_TRY(kl_str_field(P, &f, "FunctionProto.overload", &fn->overload));
    }
    fn->domain = kl_norm_domain(fn->domain);
    KL_TRY(kl_parse_opsets(P, data, len, 9, &fn->opsets, &fn->n_opsets, "a function"));
    KL_TRY(kl_graph_new(P->m, NULL, NULL, &fn->body));
    kl_graph *g = fn->body;
    g->name = fn->name;
    g->depth = 1; /* not the main graph: node indices are not reported */
    g->inputs = kl_arena_array(a, c[4] + 1, sizeof(kl_value *));
    g->outputs = kl_arena_array(a, c[5] + 1, sizeof(kl_value *));
    fn->attr_names = kl_arena_array(a, c[6] + 1, sizeof(char *));
    fn->attr_defaults = kl_arena_array(a, c[11] + 1, sizeof(kl_attr));
    if (!g->inputs || !g->outputs || !fn->attr_names || !fn->attr_defaults) return KILN_ERR_NO_MEMORY;
    kl_opctx ops = {fn->opsets, fn->n_opsets};
    r = kl_pb_init(data, len);
    for (;;) {
        KL_TRY(kl_pb_next(&r, &f, &more));
        if (!more) break;
        const char *s;
        switch (f.num) {
        case 4:
            KL_TRY(kl_str_field(P, &f, "FunctionProto.input", &s));
            KL_TRY(kl_graph_value(g, s, &g->inputs[g->n_inputs]));
            g->inputs[g->n_inputs++]->flags |= KL_VALUE_GRAPH_INPUT;
            break;
        case 6:
            KL_TRY(kl_str_field(P, &f, "FunctionProto.attribute", &fn->attr_names[fn->n_attr_names++]));
            break;
        case 11:
            KL_TRY(kl_pb_expect(&f, KL_WIRE_LEN, "FunctionProto.attribute_proto"));
            KL_TRY(kl_parse_attr(P, f.data, f.len, &fn->attr_defaults[fn->n_attr_defaults++], g, NULL, &ops));
            break;
        default: break;
        }
    }
    r = kl_pb_init(data, len);
    for (;;) {
        KL_TRY(kl_pb_next(&r, &f, &more));
        if (!more) break;
        if (f.num != 7) continue;
        KL_TRY(kl_pb_expect(&f, KL_WIRE_LEN, "FunctionProto.node"));
        kl_node *n;
        KL_TRY(kl_parse_node(P, f.data, f.len, g, &ops, g->n_nodes, &n));
        KL_TRY(kl_graph_append(P, g, n));
        for (size_t i = 0; i < n->n_outputs; i++)
            if (n->outputs[i] && !n->outputs[i]->producer) {
                n->outputs[i]->producer = n;
                n->outputs[i]->producer_output = (int)i;
            }
    }
    r = kl_pb_init(data, len);
    for (;;) {
        KL_TRY(kl_pb_next(&r, &f, &more));
        if (!more) break;
        if (f.num != 5) continue;
        const char *s;
        KL_TRY(kl_str_field(P, &f, "FunctionProto.output", &s));
        KL_TRY(kl_graph_value(g, s, &g->outputs[g->n_outputs]));
        g->outputs[g->n_outputs++]->flags |= KL_VALUE_GRAPH_OUTPUT;
    }
    *out = fn;
    return KILN_OK;
}

/* ---- model ---------------------------------------------------------------------------- */

static kiln_status kl_parse_model(kl_parser *P, const uint8_t *data, size_t len) {
    kl_model *m = P->m;
    size_t c[32];
    kiln_status cs = kl_count_fields(data, len, c);
    if (cs) return kl_error_context(cs, "ModelProto: ");
    const uint8_t *graph = NULL;
    size_t graph_len = 0;
    m->producer_name = m->producer_version = m->domain = m->doc = "";
    m->meta_keys = kl_arena_array(P->a, c[14] + 1, sizeof(kl_str));
    m->meta_values = kl_arena_array(P->a, c[14] + 1, sizeof(kl_str));
    m->functions = kl_arena_array(P->a, c[25] + 1, sizeof(kl_function *));
    if (!m->meta_keys || !m->meta_values || !m->functions) return KILN_ERR_NO_MEMORY;
    kl_pb r = kl_pb_init(data, len);
    kl_pb_field f;
    bool more;
    for (;;) {
        KL_TRY(kl_pb_next(&r, &f, &more));
        if (!more) break;
        switch (f.num) {
        case 1:
            KL_TRY(kl_pb_expect(&f, KL_WIRE_VARINT, "ModelProto.ir_version"));
            m->ir_version = (int64_t)f.v;
            break;
        case 2: KL_TRY(kl_str_field(P, &f, "ModelProto.producer_name", &m->producer_name)); break;
        case 3: KL_TRY(kl_str_field(P, &f, "ModelProto.producer_version", &m->producer_version)); break;
        case 4: KL_TRY(kl_str_field(P, &f, "ModelProto.domain", &m->domain)); break;
        case 5:
            KL_TRY(kl_pb_expect(&f, KL_WIRE_VARINT, "ModelProto.model_version"));
            m->model_version = (int64_t)f.v;
            break;
        case 6: KL_TRY(kl_str_field(P, &f, "ModelProto.doc_string", &m->doc)); break;
        case 7:
            KL_TRY(kl_pb_expect(&f, KL_WIRE_LEN, "ModelProto.graph"));
            graph = f.data;
            graph_len = f.len;
            break;
        case 14: {
            KL_TRY(kl_pb_expect(&f, KL_WIRE_LEN, "ModelProto.metadata_props"));
            kl_pb er = kl_pb_init(f.data, f.len);
            kl_pb_field ef;
            bool emore;
            kl_str k = {"", 0}, v = {"", 0};
            for (;;) {
                KL_TRY(kl_pb_next(&er, &ef, &emore));
                if (!emore) break;
                if (ef.num == 1 || ef.num == 2) {
                    KL_TRY(kl_pb_expect(&ef, KL_WIRE_LEN, "metadata_props entry"));
                    kl_str sv = {(const char *)ef.data, ef.len};
                    if (ef.num == 1) k = sv; else v = sv;
                }
            }
            if (m->n_meta < c[14]) {
                m->meta_keys[m->n_meta] = k;
                m->meta_values[m->n_meta++] = v;
            }
            break;
        }
        default: break;
        }
    }
    KL_TRY(kl_parse_opsets(P, data, len, 8, &m->opsets, &m->n_opsets, "the model"));
    r = kl_pb_init(data, len);
    for (;;) {
        KL_TRY(kl_pb_next(&r, &f, &more));
        if (!more) break;
        if (f.num != 25) continue;
        KL_TRY(kl_pb_expect(&f, KL_WIRE_LEN, "ModelProto.functions"));
        kl_function *fn;
        kiln_status s = kl_parse_function(P, f.data, f.len, &fn);
        if (s) return kl_error_context(s, "function %zu: ", m->n_functions);
        m->functions[m->n_functions++] = fn;
    }
    if (!graph) return kl_errorf(KILN_ERR_INVALID_MODEL, "the model has no graph");
    KL_TRY(kl_graph_new(m, NULL, NULL, &m->graph));
    kl_opctx ops = {m->opsets, m->n_opsets};
    return kl_parse_graph(P, graph, graph_len, m->graph, &ops);
}

/* kl_onnx_parse, with external data resolved into `blob` when it is not NULL. */
static kiln_status kl_onnx_parse_impl(const uint8_t *bytes, size_t size, const char *path, const char *base_dir,
                                      const kl_mapfile *blob, kl_model **out) {
    *out = NULL;
    kl_model *m = kl_calloc(1, sizeof *m);
    if (!m) return KILN_ERR_NO_MEMORY;
    kl_arena_init(&m->arena);
    kiln_status s = KILN_OK;
    m->path = kl_arena_strdup(&m->arena, path ? path : "<memory>");
    m->base_dir = base_dir ? kl_arena_strdup(&m->arena, base_dir) : NULL;
    if (!m->path || (base_dir && !m->base_dir)) {
        s = KILN_ERR_NO_MEMORY;
        goto fail;
    }
    m->bytes = bytes;
    m->size = size;
    if (size == 0) {
        s = kl_errorf(KILN_ERR_PARSE, "%s: the file is empty", m->path);
        goto fail;
    }
    kl_parser P = {m, &m->arena, 0, 0, blob};
    s = kl_parse_model(&P, bytes, size);
    if (s == KILN_OK) s = kl_infer_graph(m, m->graph);
    if (s) {
        kl_error_context(s, "%s: ", m->path);
        goto fail;
    }
    *out = m;
    return KILN_OK;
fail:
    kl_model_free(m);
    return s;
}

kiln_status kl_onnx_parse(const uint8_t *bytes, size_t size, const char *path, const char *base_dir,
                          kl_model **out) {
    return kl_onnx_parse_impl(bytes, size, path, base_dir, NULL, out);
}

kiln_status kl_onnx_parse_with_blob(const uint8_t *bytes, size_t size, const char *path, const uint8_t *blob,
                                    size_t blob_size, kl_model **out) {
    kl_mapfile view = {blob_size ? blob : NULL, blob_size, NULL, 0};
    if (!blob && blob_size) {
        *out = NULL;
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: NULL weights blob", path ? path : "<memory>");
    }
    return kl_onnx_parse_impl(bytes, size, path, NULL, &view, out);
}

kiln_status kl_onnx_load_file(const char *path, kl_model **out) {
    *out = NULL;
    kl_mapfile mf;
    KL_TRY(kl_mapfile_open(path, &mf));
    /* Base folder: the model's directory. */
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, sizeof dir, ".");
    } else if (slash == path) {
        snprintf(dir, sizeof dir, "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir) {
            kl_mapfile_close(&mf);
            return kl_errorf(KILN_ERR_IO, "path too long: '%s'", path);
        }
        memcpy(dir, path, n);
        dir[n] = 0;
    }
    if (mf.size == 0) {
        kl_mapfile_close(&mf);
        return kl_errorf(KILN_ERR_PARSE, "%s: the file is empty", path);
    }
    kl_model *m;
    kiln_status s = kl_onnx_parse(mf.data, mf.size, path, dir, &m);
    if (s) {
        kl_mapfile_close(&mf);
        return s;
    }
    m->file = mf;
    *out = m;
    return KILN_OK;
}
