/*
 * write.c — kiln IR → ONNX ModelProto bytes plus a weights blob (write.h).
 * Field numbers are those of onnx/onnx.proto.  Nested messages are written
 * in place: a 5-byte hole for the length, the body, then the length in its
 * canonical (shortest) varint form and the body moved back.
 */
#include <stdio.h>
#include <string.h>

#include "onnx/write.h"

/* Output buffer with a sticky error: after the first failure every write is
 * a no-op and the status is reported once at the end. */
typedef struct kl_pbw {
    uint8_t *p;
    size_t n, cap;
    kiln_status err;
} kl_pbw;

typedef struct kl_writer {
    kl_pbw out;
    uint8_t *blob;
    size_t blob_n, blob_cap;
    size_t n_external;
    const kl_model *m;
} kl_writer;

static bool kl_pbw_reserve(kl_pbw *w, size_t extra) {
    if (w->err) return false;
    if (w->cap - w->n >= extra) return true;
    size_t cap = w->cap ? w->cap : 256;
    while (cap - w->n < extra) {
        if (cap > KL_MAX_ALLOC / 2) {
            w->err = kl_errorf(KILN_ERR_NO_MEMORY, "ONNX writer: the model is too large");
            return false;
        }
        cap *= 2;
    }
    uint8_t *p = kl_realloc_array(w->p, cap, 1);
    if (!p) {
        w->err = KILN_ERR_NO_MEMORY;
        return false;
    }
    w->p = p;
    w->cap = cap;
    return true;
}

static void kl_pbw_bytes(kl_pbw *w, const void *data, size_t n) {
    if (!kl_pbw_reserve(w, n)) return;
    if (n) memcpy(w->p + w->n, data, n);
    w->n += n;
}

static size_t kl_varint_len(uint64_t v) {
    size_t k = 1;
    while (v >= 0x80) v >>= 7, k++;
    return k;
}

static void kl_put_varint(uint8_t *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p = (uint8_t)v;
}

static void kl_pbw_varint(kl_pbw *w, uint64_t v) {
    if (!kl_pbw_reserve(w, 10)) return;
    kl_put_varint(w->p + w->n, v);
    w->n += kl_varint_len(v);
}

static void kl_pbw_tag(kl_pbw *w, uint32_t field, int wire) { kl_pbw_varint(w, (uint64_t)field << 3 | (uint64_t)wire); }

/* Scalar fields. */
static void kl_pbw_uint(kl_pbw *w, uint32_t field, uint64_t v) {
    kl_pbw_tag(w, field, 0);
    kl_pbw_varint(w, v);
}
static void kl_pbw_len(kl_pbw *w, uint32_t field, const void *data, size_t n) {
    kl_pbw_tag(w, field, 2);
    kl_pbw_varint(w, n);
    kl_pbw_bytes(w, data, n);
}
static void kl_pbw_str(kl_pbw *w, uint32_t field, const char *s) { kl_pbw_len(w, field, s, strlen(s)); }
/* A string field only when s is set and not empty (proto3 default). */
static void kl_pbw_str_opt(kl_pbw *w, uint32_t field, const char *s) {
    if (s && s[0]) kl_pbw_str(w, field, s);
}

/* Nested message: begin returns the hole's position, end fills it. */
static size_t kl_pbw_begin(kl_pbw *w, uint32_t field) {
    kl_pbw_tag(w, field, 2);
    if (!kl_pbw_reserve(w, 5)) return 0;
    size_t at = w->n;
    w->n += 5;
    return at;
}

static void kl_pbw_end(kl_pbw *w, size_t at) {
    if (w->err) return;
    size_t body = w->n - (at + 5);
    if (body >= (1ull << 35)) {
        w->err = kl_errorf(KILN_ERR_NO_MEMORY, "ONNX writer: a message of %zu bytes is too large", body);
        return;
    }
    size_t k = kl_varint_len(body);
    kl_put_varint(w->p + at, body);
    if (k < 5) memmove(w->p + at + k, w->p + at + 5, body);
    w->n -= 5 - k;
}

/* ---- weights blob ---------------------------------------------------------------- */

/* Append data to the blob at the next aligned offset; *offset receives it. */
static void kl_blob_add(kl_writer *W, const void *data, size_t n, size_t *offset) {
    *offset = 0;
    if (W->out.err) return;
    size_t at = (W->blob_n + KL_ONNX_BLOB_ALIGN - 1) / KL_ONNX_BLOB_ALIGN * KL_ONNX_BLOB_ALIGN;
    size_t end = (at + n + KL_ONNX_BLOB_ALIGN - 1) / KL_ONNX_BLOB_ALIGN * KL_ONNX_BLOB_ALIGN;
    if (end < at || end > KL_MAX_ALLOC) {
        W->out.err = kl_errorf(KILN_ERR_NO_MEMORY, "ONNX writer: the weights blob is too large");
        return;
    }
    if (end > W->blob_cap) {
        size_t cap = W->blob_cap ? W->blob_cap : 4096;
        while (cap < end) cap *= 2;
        uint8_t *p = kl_realloc_array(W->blob, cap, 1);
        if (!p) {
            W->out.err = KILN_ERR_NO_MEMORY;
            return;
        }
        W->blob = p;
        W->blob_cap = cap;
    }
    memset(W->blob + W->blob_n, 0, at - W->blob_n); /* padding is zero */
    memcpy(W->blob + at, data, n);
    /* a weight read from a mapped model file: its pages leave the resident
     * set once copied (read back from the file if touched again), so the
     * blob and the mapped weights are not both resident */
    kl_mapfile_release(data, n);
    memset(W->blob + at + n, 0, end - at - n);
    W->blob_n = end;
    *offset = at;
}

/* ---- messages ------------------------------------------------------------------- */

static void kl_write_graph(kl_writer *W, uint32_t field, const kl_graph *g);

/* TensorProto.  `external`: place the data in the blob (non-string, non-empty). */
static void kl_write_tensor(kl_writer *W, uint32_t field, const kl_tensor *t, const char *name, bool external) {
    kl_pbw *w = &W->out;
    if (w->err) return;
    if (t->dtype != KILN_DTYPE_STRING && t->count > 0 && !t->data) {
        w->err = kl_errorf(KILN_ERR_INVALID_ARGUMENT, "ONNX writer: tensor '%s' has no data (it failed to load)",
                           name && name[0] ? name : t->name);
        return;
    }
    size_t at = kl_pbw_begin(w, field);
    if (t->rank > 0) { /* dims, packed */
        size_t len = 0;
        for (int i = 0; i < t->rank; i++) len += kl_varint_len((uint64_t)t->dims[i]);
        kl_pbw_tag(w, 1, 2);
        kl_pbw_varint(w, len);
        for (int i = 0; i < t->rank; i++) kl_pbw_varint(w, (uint64_t)t->dims[i]);
    }
    kl_pbw_uint(w, 2, (uint64_t)t->dtype);
    kl_pbw_str_opt(w, 8, name ? name : t->name);
    if (t->dtype == KILN_DTYPE_STRING) {
        for (int64_t i = 0; t->strings && i < t->count; i++) kl_pbw_len(w, 6, t->strings[i].ptr, t->strings[i].len);
    } else if (external && t->nbytes > 0) {
        size_t off;
        kl_blob_add(W, t->data, t->nbytes, &off);
        char num[32];
        size_t e = kl_pbw_begin(w, 13);
        kl_pbw_str(w, 1, "location");
        kl_pbw_str(w, 2, KL_ONNX_BLOB_LOCATION);
        kl_pbw_end(w, e);
        snprintf(num, sizeof num, "%zu", off);
        e = kl_pbw_begin(w, 13);
        kl_pbw_str(w, 1, "offset");
        kl_pbw_str(w, 2, num);
        kl_pbw_end(w, e);
        snprintf(num, sizeof num, "%zu", t->nbytes);
        e = kl_pbw_begin(w, 13);
        kl_pbw_str(w, 1, "length");
        kl_pbw_str(w, 2, num);
        kl_pbw_end(w, e);
        kl_pbw_uint(w, 14, 1); /* data_location = EXTERNAL */
        W->n_external++;
    } else {
        kl_pbw_len(w, 9, t->data, t->nbytes);
    }
    kl_pbw_end(w, at);
}

static void kl_write_sparse(kl_writer *W, uint32_t field, const kl_sparse *sp, bool external) {
    kl_pbw *w = &W->out;
    size_t at = kl_pbw_begin(w, field);
    kl_write_tensor(W, 1, sp->values, NULL, external);
    kl_write_tensor(W, 2, sp->indices, NULL, external);
    if (sp->rank > 0) {
        size_t len = 0;
        for (int i = 0; i < sp->rank; i++) len += kl_varint_len((uint64_t)sp->dims[i]);
        kl_pbw_tag(w, 3, 2);
        kl_pbw_varint(w, len);
        for (int i = 0; i < sp->rank; i++) kl_pbw_varint(w, (uint64_t)sp->dims[i]);
    }
    kl_pbw_end(w, at);
}

/* TypeProto (field `field` of the enclosing message). */
static void kl_write_type(kl_pbw *w, uint32_t field, const kl_type *t) {
    size_t at = kl_pbw_begin(w, field);
    switch (t->kind) {
    case KL_TYPE_TENSOR:
    case KL_TYPE_SPARSE_TENSOR: {
        size_t tt = kl_pbw_begin(w, t->kind == KL_TYPE_TENSOR ? 1 : 8);
        if (t->elem != KILN_DTYPE_UNDEFINED) kl_pbw_uint(w, 1, (uint64_t)t->elem);
        if (t->shape.rank >= 0) {
            size_t sh = kl_pbw_begin(w, 2);
            for (int i = 0; i < t->shape.rank; i++) {
                const kl_dim *d = &t->shape.dims[i];
                size_t dm = kl_pbw_begin(w, 1);
                if (d->value >= 0) kl_pbw_uint(w, 1, (uint64_t)d->value);
                else if (d->param) kl_pbw_str(w, 2, d->param);
                kl_pbw_end(w, dm);
            }
            kl_pbw_end(w, sh);
        }
        kl_pbw_end(w, tt);
        break;
    }
    case KL_TYPE_SEQUENCE:
    case KL_TYPE_OPTIONAL: {
        size_t st = kl_pbw_begin(w, t->kind == KL_TYPE_SEQUENCE ? 4 : 9);
        if (t->inner) kl_write_type(w, 1, t->inner);
        kl_pbw_end(w, st);
        break;
    }
    case KL_TYPE_MAP: {
        size_t mt = kl_pbw_begin(w, 5);
        if (t->elem != KILN_DTYPE_UNDEFINED) kl_pbw_uint(w, 1, (uint64_t)t->elem);
        if (t->inner) kl_write_type(w, 2, t->inner);
        kl_pbw_end(w, mt);
        break;
    }
    default: break;
    }
    kl_pbw_end(w, at);
}

/* ValueInfoProto: name, and the type when anything is known. */
static void kl_write_value_info(kl_pbw *w, uint32_t field, const kl_value *v) {
    size_t at = kl_pbw_begin(w, field);
    kl_pbw_str(w, 1, v->name);
    if (v->type.kind != KL_TYPE_UNKNOWN) kl_write_type(w, 2, &v->type);
    kl_pbw_end(w, at);
}

static void kl_write_attr(kl_writer *W, const kl_attr *a) {
    kl_pbw *w = &W->out;
    size_t at = kl_pbw_begin(w, 5);
    kl_pbw_str(w, 1, a->name);
    if (a->ref_attr_name) kl_pbw_str(w, 21, a->ref_attr_name);
    kl_pbw_uint(w, 20, (uint64_t)a->type);
    switch (a->type) {
    case KL_ATTR_FLOAT: {
        uint32_t u;
        memcpy(&u, &a->f, 4);
        uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
        kl_pbw_tag(w, 2, 5);
        kl_pbw_bytes(w, b, 4);
        break;
    }
    case KL_ATTR_INT: kl_pbw_uint(w, 3, (uint64_t)a->i); break;
    case KL_ATTR_STRING: kl_pbw_len(w, 4, a->s.ptr, a->s.len); break;
    case KL_ATTR_TENSOR:
        if (a->t) kl_write_tensor(W, 5, a->t, NULL, a->t->nbytes > KL_ONNX_INLINE_MAX);
        break;
    case KL_ATTR_GRAPH:
        if (a->g) kl_write_graph(W, 6, a->g);
        break;
    case KL_ATTR_SPARSE_TENSOR:
        if (a->sparse) kl_write_sparse(W, 22, a->sparse, a->sparse->values->nbytes > KL_ONNX_INLINE_MAX);
        break;
    case KL_ATTR_TYPE_PROTO:
        if (a->tp) kl_write_type(w, 14, a->tp);
        break;
    case KL_ATTR_FLOATS:
        if (a->n) {
            kl_pbw_tag(w, 7, 2);
            kl_pbw_varint(w, 4 * a->n);
            for (size_t i = 0; i < a->n; i++) {
                uint32_t u;
                memcpy(&u, &a->floats[i], 4);
                uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
                kl_pbw_bytes(w, b, 4);
            }
        }
        break;
    case KL_ATTR_INTS:
        if (a->n) {
            size_t len = 0;
            for (size_t i = 0; i < a->n; i++) len += kl_varint_len((uint64_t)a->ints[i]);
            kl_pbw_tag(w, 8, 2);
            kl_pbw_varint(w, len);
            for (size_t i = 0; i < a->n; i++) kl_pbw_varint(w, (uint64_t)a->ints[i]);
        }
        break;
    case KL_ATTR_STRINGS:
        for (size_t i = 0; i < a->n; i++) kl_pbw_len(w, 9, a->strings[i].ptr, a->strings[i].len);
        break;
    case KL_ATTR_TENSORS:
        for (size_t i = 0; i < a->n; i++)
            kl_write_tensor(W, 10, a->tensors[i], NULL, a->tensors[i]->nbytes > KL_ONNX_INLINE_MAX);
        break;
    case KL_ATTR_GRAPHS:
        for (size_t i = 0; i < a->n; i++) kl_write_graph(W, 11, a->graphs[i]);
        break;
    case KL_ATTR_SPARSE_TENSORS:
        for (size_t i = 0; i < a->n; i++)
            kl_write_sparse(W, 23, a->sparses[i], a->sparses[i]->values->nbytes > KL_ONNX_INLINE_MAX);
        break;
    case KL_ATTR_TYPE_PROTOS:
        for (size_t i = 0; i < a->n; i++) kl_write_type(w, 15, a->tps[i]);
        break;
    default: break;
    }
    kl_pbw_end(w, at);
}

static void kl_write_node(kl_writer *W, const kl_node *n) {
    kl_pbw *w = &W->out;
    size_t at = kl_pbw_begin(w, 1);
    for (size_t i = 0; i < n->n_inputs; i++) kl_pbw_str(w, 1, n->inputs[i] ? n->inputs[i]->name : "");
    for (size_t i = 0; i < n->n_outputs; i++) kl_pbw_str(w, 2, n->outputs[i] ? n->outputs[i]->name : "");
    kl_pbw_str_opt(w, 3, n->name);
    kl_pbw_str(w, 4, n->op_type);
    for (size_t i = 0; i < n->n_attrs; i++) kl_write_attr(W, &n->attrs[i]);
    if (n->fused_from) {
        size_t plen = strlen(KL_ONNX_FUSED_PREFIX), flen = strlen(n->fused_from);
        kl_pbw_tag(w, 6, 2);
        kl_pbw_varint(w, plen + flen);
        kl_pbw_bytes(w, KL_ONNX_FUSED_PREFIX, plen);
        kl_pbw_bytes(w, n->fused_from, flen);
    }
    kl_pbw_str_opt(w, 7, n->domain);
    kl_pbw_str_opt(w, 8, n->overload);
    kl_pbw_end(w, at);
}

static void kl_write_graph(kl_writer *W, uint32_t field, const kl_graph *g) {
    kl_pbw *w = &W->out;
    size_t at = kl_pbw_begin(w, field);
    for (size_t i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i]->removed) kl_write_node(W, g->nodes[i]);
    kl_pbw_str_opt(w, 2, g->name);
    for (size_t i = 0; i < g->n_initializers; i++) {
        const kl_value *v = g->initializers[i];
        if (v->sparse_init) kl_write_sparse(W, 15, v->sparse_init, true);
        else if (v->init) kl_write_tensor(W, 5, v->init, v->name, true);
    }
    for (size_t i = 0; i < g->n_inputs; i++) kl_write_value_info(w, 11, g->inputs[i]);
    for (size_t i = 0; i < g->n_outputs; i++) kl_write_value_info(w, 12, g->outputs[i]);
    /* value_info: every other typed value of this scope, so inferred shapes survive */
    for (size_t i = 0; i < g->n_values; i++) {
        const kl_value *v = g->values[i];
        if (v->type.kind == KL_TYPE_UNKNOWN || !v->name[0]) continue;
        if (v->flags & (KL_VALUE_GRAPH_INPUT | KL_VALUE_GRAPH_OUTPUT | KL_VALUE_INITIALIZER)) continue;
        if (v->producer && v->producer->removed) continue;
        if (!v->producer && v->use_count == 0) continue; /* orphan */
        kl_write_value_info(w, 13, v);
    }
    kl_pbw_end(w, at);
}

static void kl_write_opset(kl_pbw *w, const char *domain, int64_t version) {
    size_t at = kl_pbw_begin(w, 8);
    kl_pbw_str_opt(w, 1, domain);
    kl_pbw_uint(w, 2, (uint64_t)version);
    kl_pbw_end(w, at);
}

/* True when a live node of g (or of its subgraphs) is in `domain`. */
/* Bytes the blob will need for one tensor placed in it (a capacity hint). */
static size_t kl_blob_need(const kl_tensor *t) {
    if (!t || t->dtype == KILN_DTYPE_STRING || t->nbytes == 0) return 0;
    return (t->nbytes + KL_ONNX_BLOB_ALIGN - 1) / KL_ONNX_BLOB_ALIGN * KL_ONNX_BLOB_ALIGN;
}

/* Blob bytes g and its subgraphs will need, so the blob is allocated once. */
static size_t kl_graph_blob_need(const kl_graph *g) {
    size_t total = 0;
    for (size_t i = 0; i < g->n_initializers; i++) {
        const kl_value *v = g->initializers[i];
        if (v->sparse_init) total += kl_blob_need(v->sparse_init->values) + kl_blob_need(v->sparse_init->indices);
        else total += kl_blob_need(v->init);
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        const kl_node *n = g->nodes[i];
        if (n->removed) continue;
        for (size_t k = 0; k < n->n_attrs; k++) {
            const kl_attr *a = &n->attrs[k];
            if (a->type == KL_ATTR_TENSOR && a->t && a->t->nbytes > KL_ONNX_INLINE_MAX) total += kl_blob_need(a->t);
            if (a->type == KL_ATTR_GRAPH && a->g) total += kl_graph_blob_need(a->g);
            for (size_t j = 0; a->type == KL_ATTR_GRAPHS && j < a->n; j++) total += kl_graph_blob_need(a->graphs[j]);
        }
    }
    return total;
}

static bool kl_graph_uses_domain(const kl_graph *g, const char *domain) {
    for (size_t i = 0; i < g->n_nodes; i++) {
        const kl_node *n = g->nodes[i];
        if (n->removed) continue;
        if (strcmp(n->domain, domain) == 0) return true;
        for (size_t k = 0; k < n->n_attrs; k++) {
            const kl_attr *a = &n->attrs[k];
            if (a->type == KL_ATTR_GRAPH && a->g && kl_graph_uses_domain(a->g, domain)) return true;
            if (a->type == KL_ATTR_GRAPHS)
                for (size_t j = 0; j < a->n; j++)
                    if (kl_graph_uses_domain(a->graphs[j], domain)) return true;
        }
    }
    return false;
}

kiln_status kl_onnx_write_model(const kl_model *m, kl_onnx_written *out) {
    memset(out, 0, sizeof *out);
    if (!m || !m->graph) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "ONNX writer: no model or no graph");
    kl_writer W = {.m = m};
    kl_pbw *w = &W.out;
    size_t need = kl_graph_blob_need(m->graph);
    if (need) { /* one allocation for the weights: no growth copies of 100 MB */
        W.blob = kl_malloc(need);
        if (!W.blob) return KILN_ERR_NO_MEMORY;
        W.blob_cap = need;
    }
    kl_pbw_uint(w, 1, (uint64_t)m->ir_version);
    kl_pbw_str_opt(w, 2, m->producer_name);
    kl_pbw_str_opt(w, 3, m->producer_version);
    kl_pbw_str_opt(w, 4, m->domain);
    if (m->model_version) kl_pbw_uint(w, 5, (uint64_t)m->model_version);
    kl_pbw_str_opt(w, 6, m->doc);
    kl_write_graph(&W, 7, m->graph);
    bool has_kiln = false;
    for (size_t i = 0; i < m->n_opsets; i++) {
        kl_write_opset(w, m->opsets[i].domain, m->opsets[i].version);
        has_kiln |= strcmp(m->opsets[i].domain, "kiln") == 0;
    }
    if (!has_kiln && kl_graph_uses_domain(m->graph, "kiln")) kl_write_opset(w, "kiln", 1);
    for (size_t i = 0; i < m->n_meta; i++) {
        size_t at = kl_pbw_begin(w, 14);
        kl_pbw_len(w, 1, m->meta_keys[i].ptr, m->meta_keys[i].len);
        kl_pbw_len(w, 2, m->meta_values[i].ptr, m->meta_values[i].len);
        kl_pbw_end(w, at);
    }
    if (w->err) {
        kiln_status s = w->err;
        kl_free(w->p);
        kl_free(W.blob);
        return s;
    }
    out->model = w->p;
    out->model_size = w->n;
    out->blob = W.blob;
    out->blob_size = W.blob_n;
    out->n_external = W.n_external;
    return KILN_OK;
}

void kl_onnx_written_free(kl_onnx_written *w) {
    if (!w) return;
    kl_free(w->model);
    kl_free(w->blob);
    memset(w, 0, sizeof *w);
}
