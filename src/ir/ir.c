/* IR helpers: model lifetime, graph scopes, attribute getters, shapes. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

void kl_model_free(kl_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->graphs.len; i++) kl_strmap_free(&((kl_graph *)m->graphs.items[i])->by_name);
    kl_ptrvec_free(&m->graphs);
    for (size_t i = 0; i < m->n_ext_files; i++) kl_mapfile_close(&m->ext_files[i]);
    kl_free(m->ext_files);
    kl_free(m->ext_names);
    kl_free(m->problems);
    kl_mapfile_close(&m->file);
    kl_arena_free(&m->arena);
    kl_free(m);
}

kiln_status kl_model_problem(kl_model *m, kiln_check_severity sev, int64_t node_index,
                             const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (m->n_problems == m->cap_problems) {
        size_t cap = m->cap_problems ? m->cap_problems * 2 : 16;
        kl_problem *p = kl_realloc_array(m->problems, cap, sizeof *p);
        if (!p) return KILN_ERR_NO_MEMORY;
        m->problems = p;
        m->cap_problems = cap;
    }
    const char *msg = kl_arena_strdup(&m->arena, buf);
    if (!msg) return KILN_ERR_NO_MEMORY;
    m->problems[m->n_problems++] = (kl_problem){sev, node_index, msg};
    return KILN_OK;
}

int64_t kl_model_opset(const kl_model *m, const char *domain) {
    for (size_t i = 0; i < m->n_opsets; i++)
        if (strcmp(m->opsets[i].domain, domain) == 0) return m->opsets[i].version;
    return 0;
}

kl_value *kl_graph_lookup(const kl_graph *g, const char *name) {
    for (; g; g = g->parent) {
        kl_value *v = kl_strmap_get(&g->by_name, name);
        if (v) return v;
    }
    return NULL;
}

kiln_status kl_graph_value(kl_graph *g, const char *name, kl_value **out) {
    kl_value *v = kl_strmap_get(&g->by_name, name);
    if (v) {
        *out = v;
        return KILN_OK;
    }
    kl_arena *a = &g->model->arena;
    v = kl_arena_alloc(a, sizeof *v);
    if (!v) return KILN_ERR_NO_MEMORY;
    v->name = kl_arena_strdup(a, name);
    if (!v->name) return KILN_ERR_NO_MEMORY;
    v->graph = g;
    v->type.shape.rank = -1;
    KL_TRY(kl_strmap_put(&g->by_name, v->name, v));
    if ((g->n_values & (g->n_values - 1)) == 0) { /* grow at powers of two */
        size_t cap = g->n_values ? g->n_values * 2 : 8;
        kl_value **vals = kl_arena_array(a, cap, sizeof *vals);
        if (!vals) return KILN_ERR_NO_MEMORY;
        if (g->n_values) memcpy(vals, g->values, g->n_values * sizeof *vals);
        g->values = vals;
    }
    v->id = g->n_values;
    g->values[g->n_values++] = v;
    *out = v;
    return KILN_OK;
}

kiln_status kl_graph_new(kl_model *m, kl_graph *parent, kl_node *owner, kl_graph **out) {
    kl_graph *g = kl_arena_alloc(&m->arena, sizeof *g);
    if (!g) return KILN_ERR_NO_MEMORY;
    g->model = m;
    g->parent = parent;
    g->owner = owner;
    g->depth = parent ? parent->depth + 1 : 0;
    g->name = "";
    KL_TRY(kl_ptrvec_push(&m->graphs, g));
    *out = g;
    return KILN_OK;
}

const kl_attr *kl_node_attr(const kl_node *n, const char *name) {
    for (size_t i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
    return NULL;
}

int64_t kl_node_attr_int(const kl_node *n, const char *name, int64_t dflt) {
    const kl_attr *a = kl_node_attr(n, name);
    return a && a->type == KL_ATTR_INT ? a->i : dflt;
}

float kl_node_attr_float(const kl_node *n, const char *name, float dflt) {
    const kl_attr *a = kl_node_attr(n, name);
    return a && a->type == KL_ATTR_FLOAT ? a->f : dflt;
}

const char *kl_node_attr_string(const kl_node *n, const char *name, const char *dflt) {
    const kl_attr *a = kl_node_attr(n, name);
    if (!a || a->type != KL_ATTR_STRING) return dflt;
    /* The parser stores a NUL after every attribute string (arena copy). */
    return a->s.ptr;
}

int64_t kl_node_attr_ints(const kl_node *n, const char *name, const int64_t **vals) {
    const kl_attr *a = kl_node_attr(n, name);
    if (!a || a->type != KL_ATTR_INTS) {
        *vals = NULL;
        return -1;
    }
    *vals = a->ints;
    return (int64_t)a->n;
}

const char *kl_node_label(const kl_node *n) {
    static _Thread_local char buf[32];
    if (n->name && n->name[0]) return n->name;
    snprintf(buf, sizeof buf, "#%zu", n->index);
    return buf;
}

bool kl_shape_is_static(const kl_shape *s) {
    if (s->rank < 0) return false;
    for (int i = 0; i < s->rank; i++)
        if (s->dims[i].value < 0) return false;
    return true;
}

bool kl_shape_numel(const kl_shape *s, int64_t *out) {
    if (!kl_shape_is_static(s)) return false;
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        if (kl_mul_i64(n, s->dims[i].value, &n)) return false;
    *out = n;
    return true;
}

/* Append printf output at *pos, never past size. */
static void kl_buf_add(char *buf, size_t size, size_t *pos, const char *fmt, ...) KL_PRINTF(4, 5);
static void kl_buf_add(char *buf, size_t size, size_t *pos, const char *fmt, ...) {
    if (*pos >= size) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *pos, size - *pos, fmt, ap);
    va_end(ap);
    if (n > 0) *pos = KL_MIN(size - 1, *pos + (size_t)n);
}

static void kl_shape_add(const kl_shape *s, char *buf, size_t size, size_t *pos) {
    if (s->rank < 0) {
        kl_buf_add(buf, size, pos, "[*]");
        return;
    }
    kl_buf_add(buf, size, pos, "[");
    for (int i = 0; i < s->rank; i++) {
        const kl_dim *d = &s->dims[i];
        if (d->value >= 0)
            kl_buf_add(buf, size, pos, "%s%" PRId64, i ? "," : "", d->value);
        else
            kl_buf_add(buf, size, pos, "%s%s", i ? "," : "", d->param ? d->param : "?");
    }
    kl_buf_add(buf, size, pos, "]");
}

char *kl_shape_format(const kl_shape *s, char *buf, size_t size) {
    size_t pos = 0;
    if (size) buf[0] = 0;
    kl_shape_add(s, buf, size, &pos);
    return buf;
}

static void kl_type_add(const kl_type *t, char *buf, size_t size, size_t *pos, int depth) {
    if (!t || depth > 8) {
        kl_buf_add(buf, size, pos, "?");
        return;
    }
    switch (t->kind) {
    case KL_TYPE_UNKNOWN: kl_buf_add(buf, size, pos, "?"); break;
    case KL_TYPE_TENSOR:
    case KL_TYPE_SPARSE_TENSOR:
        kl_buf_add(buf, size, pos, "%s%s", t->kind == KL_TYPE_SPARSE_TENSOR ? "sparse " : "",
                   t->elem ? kiln_dtype_name(t->elem) : "?");
        kl_shape_add(&t->shape, buf, size, pos);
        break;
    case KL_TYPE_SEQUENCE:
        kl_buf_add(buf, size, pos, "seq(");
        kl_type_add(t->inner, buf, size, pos, depth + 1);
        kl_buf_add(buf, size, pos, ")");
        break;
    case KL_TYPE_OPTIONAL:
        kl_buf_add(buf, size, pos, "optional(");
        kl_type_add(t->inner, buf, size, pos, depth + 1);
        kl_buf_add(buf, size, pos, ")");
        break;
    case KL_TYPE_MAP:
        kl_buf_add(buf, size, pos, "map(%s,", kiln_dtype_name(t->elem));
        kl_type_add(t->inner, buf, size, pos, depth + 1);
        kl_buf_add(buf, size, pos, ")");
        break;
    }
}

char *kl_type_format(const kl_type *t, char *buf, size_t size) {
    size_t pos = 0;
    if (size) buf[0] = 0;
    kl_type_add(t, buf, size, &pos, 0);
    return buf;
}

kiln_status kl_type_copy(kl_arena *a, const kl_type *src, kl_type *dst) {
    *dst = *src;
    if (src->shape.rank > 0) {
        dst->shape.dims = kl_arena_array(a, (size_t)src->shape.rank, sizeof(kl_dim));
        if (!dst->shape.dims) return KILN_ERR_NO_MEMORY;
        memcpy(dst->shape.dims, src->shape.dims, (size_t)src->shape.rank * sizeof(kl_dim));
    }
    if (src->inner) {
        dst->inner = kl_arena_alloc(a, sizeof(kl_type));
        if (!dst->inner) return KILN_ERR_NO_MEMORY;
        KL_TRY(kl_type_copy(a, src->inner, dst->inner));
    }
    return KILN_OK;
}

bool kl_tensor_to_i64(const kl_tensor *t, int64_t *out, int64_t max) {
    if (!kl_dtype_is_integer(t->dtype) || t->count > max || t->count < 0) return false;
    size_t bits = kiln_dtype_bits(t->dtype);
    if (bits < 8) return false;
    size_t need;
    if (!kl_dtype_nbytes(t->dtype, t->count, &need) || need > t->nbytes) return false;
    const unsigned char *p = t->data;
    for (int64_t i = 0; i < t->count; i++) {
        const unsigned char *e = p + (size_t)i * (bits / 8);
        switch (t->dtype) {
        case KILN_DTYPE_INT8: { int8_t v; memcpy(&v, e, 1); out[i] = v; break; }
        case KILN_DTYPE_UINT8: out[i] = *e; break;
        case KILN_DTYPE_INT16: { int16_t v; memcpy(&v, e, 2); out[i] = v; break; }
        case KILN_DTYPE_UINT16: { uint16_t v; memcpy(&v, e, 2); out[i] = v; break; }
        case KILN_DTYPE_INT32: { int32_t v; memcpy(&v, e, 4); out[i] = v; break; }
        case KILN_DTYPE_UINT32: { uint32_t v; memcpy(&v, e, 4); out[i] = v; break; }
        case KILN_DTYPE_INT64: { int64_t v; memcpy(&v, e, 8); out[i] = v; break; }
        case KILN_DTYPE_UINT64: { uint64_t v; memcpy(&v, e, 8); out[i] = (int64_t)v; break; }
        default: return false;
        }
    }
    return true;
}

double kl_tensor_get_f64(const kl_tensor *t, int64_t i) {
    size_t bits = kiln_dtype_bits(t->dtype), need;
    if (i < 0 || i >= t->count || bits < 8 || !kl_dtype_nbytes(t->dtype, i + 1, &need) ||
        need > t->nbytes)
        return 0.0;
    const unsigned char *e = (const unsigned char *)t->data + (size_t)i * (bits / 8);
    switch (t->dtype) {
    case KILN_DTYPE_FLOAT: { float v; memcpy(&v, e, 4); return v; }
    case KILN_DTYPE_DOUBLE: { double v; memcpy(&v, e, 8); return v; }
    case KILN_DTYPE_FLOAT16: { uint16_t v; memcpy(&v, e, 2); return kl_f16_to_f32(v); }
    case KILN_DTYPE_BFLOAT16: { uint16_t v; memcpy(&v, e, 2); return kl_bf16_to_f32(v); }
    case KILN_DTYPE_BOOL: return *e ? 1.0 : 0.0;
    default: {
        int64_t v;
        kl_tensor one = *t;
        one.data = e;
        one.count = 1;
        one.nbytes = bits / 8;
        return kl_tensor_to_i64(&one, &v, 1) ? (double)v : 0.0;
    }
    }
}
