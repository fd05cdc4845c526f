/* kiln info MODEL: describe a model (metadata, I/O, operators, parameters,
 * external data, multiply-accumulate count). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "ir/macs.h"
#include "runtime/runtime.h"

/* ---- statistics ------------------------------------------------------------------ */

typedef struct kc_opstat {
    char *name; /* "Conv", or "com.microsoft.FusedConv" outside ai.onnx */
    uint64_t count;
    uint64_t macs;
    uint64_t mac_nodes;
} kc_opstat;

typedef struct kc_extfile {
    const char *location;
    uint64_t bytes, tensors;
} kc_extfile;

typedef struct kc_stats {
    kc_opstat *ops;
    size_t n_ops, cap_ops;
    uint64_t nodes, main_nodes, subgraphs, subgraph_nodes;
    uint64_t params, param_bytes, inits;
    kc_extfile *ext;
    size_t n_ext, cap_ext;
    uint64_t ext_bytes, ext_tensors;
    uint64_t macs, mac_nodes, mac_unknown, mac_subgraph_nodes;
    const char **syms; /* symbolic dims taken as 1 */
    size_t n_syms, cap_syms;
    char **owned; /* the names in syms (freed at the end) */
    size_t n_owned, cap_owned;
    bool oom;
} kc_stats;

/* Grow *items (n used, *cap allocated) to hold one more element of `size`. */
static bool kc_grow(void **items, size_t n, size_t *cap, size_t size) {
    if (n < *cap) return true;
    size_t nc = *cap ? *cap * 2 : 16;
    void *p = realloc(*items, nc * size);
    if (!p) return false;
    *items = p;
    *cap = nc;
    return true;
}

/* The histogram entry for a node's (domain, op), created on first use. */
static kc_opstat *kc_op_entry(kc_stats *st, const kl_node *n) {
    const char *dom = n->domain ? n->domain : "";
    const char *op = n->op_type ? n->op_type : "?";
    size_t len = strlen(dom) + strlen(op) + 2;
    char *key = malloc(len);
    if (!key) return NULL;
    if (*dom) snprintf(key, len, "%s.%s", dom, op);
    else snprintf(key, len, "%s", op);
    for (size_t i = 0; i < st->n_ops; i++)
        if (strcmp(st->ops[i].name, key) == 0) {
            free(key);
            return &st->ops[i];
        }
    if (!kc_grow((void **)&st->ops, st->n_ops, &st->cap_ops, sizeof *st->ops)) {
        free(key);
        return NULL;
    }
    kc_opstat *e = &st->ops[st->n_ops++];
    memset(e, 0, sizeof *e);
    e->name = key;
    return e;
}

/* Remember that the symbolic dim named p[0..len) was taken as 1 (a copy is
 * kept in st->owned). */
static void kc_note_sym_n(kc_stats *st, const char *p, size_t len) {
    for (size_t i = 0; i < st->n_syms; i++)
        if (strlen(st->syms[i]) == len && memcmp(st->syms[i], p, len) == 0) return;
    char *copy = malloc(len + 1);
    if (!copy || !kc_grow((void **)&st->owned, st->n_owned, &st->cap_owned, sizeof *st->owned) ||
        !kc_grow((void **)&st->syms, st->n_syms, &st->cap_syms, sizeof *st->syms)) {
        free(copy);
        st->oom = true;
        return;
    }
    memcpy(copy, p, len);
    copy[len] = 0;
    st->owned[st->n_owned++] = copy;
    st->syms[st->n_syms++] = copy;
}

/* kl_mac_env's note callback. */
static void kc_note_sym_cb(void *user, const char *name, size_t len) { kc_note_sym_n(user, name, len); }

/* MACs of node n (src/ir/macs.c): 1 if counted (in *out), 0 if the op has
 * none, -1 if the op has MACs but the shapes are not known well enough.
 * Symbolic dims count as 1 and are noted. */
static int kc_node_macs(kc_stats *st, const kl_node *n, uint64_t *out) {
    const kl_mac_env env = {.note = kc_note_sym_cb, .user = st};
    return kl_node_macs(n, &env, out);
}

/* Add the initializers of graph g to the parameter and external data totals. */
static void kc_walk_inits(kc_stats *st, const kl_graph *g) {
    for (size_t i = 0; i < g->n_initializers; i++) {
        const kl_value *v = g->initializers[i];
        if (!v) continue;
        const kl_tensor *ts[2] = {v->init, NULL};
        if (!v->init && v->sparse_init) {
            ts[0] = v->sparse_init->values;
            ts[1] = v->sparse_init->indices;
        }
        if (!ts[0]) continue;
        st->inits++;
        st->params += ts[0]->count > 0 ? (uint64_t)ts[0]->count : 0;
        for (int k = 0; k < 2 && ts[k]; k++) {
            const kl_tensor *t = ts[k];
            uint64_t bytes = t->nbytes;
            if (t->dtype == KILN_DTYPE_STRING && t->strings)
                for (int64_t j = 0; j < t->count; j++) bytes += t->strings[j].len;
            st->param_bytes += bytes;
            if (!t->external) continue;
            st->ext_bytes += bytes;
            st->ext_tensors++;
            const char *loc = t->location ? t->location : "?";
            size_t e = 0;
            while (e < st->n_ext && strcmp(st->ext[e].location, loc) != 0) e++;
            if (e == st->n_ext) {
                if (!kc_grow((void **)&st->ext, st->n_ext, &st->cap_ext, sizeof *st->ext)) {
                    st->oom = true;
                    continue;
                }
                st->ext[st->n_ext++] = (kc_extfile){loc, 0, 0};
            }
            st->ext[e].bytes += bytes;
            st->ext[e].tensors++;
        }
    }
}

/* Count the nodes, MACs and initializers of g and its subgraphs. */
static void kc_walk_graph(kc_stats *st, const kl_graph *g, int depth) {
    kc_walk_inits(st, g);
    for (size_t i = 0; i < g->n_nodes; i++) {
        const kl_node *n = g->nodes[i];
        if (!n) continue;
        st->nodes++;
        if (depth == 0) st->main_nodes++;
        else st->subgraph_nodes++;
        kc_opstat *e = kc_op_entry(st, n);
        if (!e) {
            st->oom = true;
            return;
        }
        e->count++;
        uint64_t macs = 0;
        int r = kc_node_macs(st, n, &macs);
        if (r > 0) {
            if (__builtin_add_overflow(st->macs, macs, &st->macs)) st->macs = UINT64_MAX;
            e->macs += macs;
            e->mac_nodes++;
            st->mac_nodes++;
            if (depth > 0) st->mac_subgraph_nodes++;
        } else if (r < 0) {
            st->mac_unknown++;
        }
        for (size_t a = 0; a < n->n_attrs; a++) {
            const kl_attr *at = &n->attrs[a];
            if (at->type == KL_ATTR_GRAPH && at->g) {
                st->subgraphs++;
                kc_walk_graph(st, at->g, depth + 1);
            } else if (at->type == KL_ATTR_GRAPHS) {
                for (size_t k = 0; k < at->n; k++)
                    if (at->graphs && at->graphs[k]) {
                        st->subgraphs++;
                        kc_walk_graph(st, at->graphs[k], depth + 1);
                    }
            }
        }
    }
}

/* Histogram order: most frequent first, then by name. */
static int kc_opstat_cmp(const void *pa, const void *pb) {
    const kc_opstat *a = pa, *b = pb;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* Order of C strings for qsort. */
static int kc_str_cmp(const void *pa, const void *pb) {
    return strcmp(*(const char *const *)pa, *(const char *const *)pb);
}

static void kc_stats_free(kc_stats *st) {
    for (size_t i = 0; i < st->n_ops; i++) free(st->ops[i].name);
    free(st->ops);
    free(st->ext);
    free(st->syms);
    for (size_t i = 0; i < st->n_owned; i++) free(st->owned[i]);
    free(st->owned);
}

/* ---- JSON output -------------------------------------------------------------- */

/* {"name", "type", "dtype", "shape"} of a value. */
static void kc_json_value(kj_writer *w, const kl_value *v) {
    char tb[1024];
    kj_object_begin(w);
    kj_key(w, "name");
    kj_string(w, v->name);
    kj_key(w, "type");
    kj_string(w, kl_type_format(&v->type, tb, sizeof tb));
    bool tensor = v->type.kind == KL_TYPE_TENSOR || v->type.kind == KL_TYPE_SPARSE_TENSOR;
    kj_key(w, "dtype");
    if (tensor && v->type.elem != KILN_DTYPE_UNDEFINED) kj_string(w, kiln_dtype_name(v->type.elem));
    else kj_null(w);
    kj_key(w, "shape");
    if (!tensor || v->type.shape.rank < 0) {
        kj_null(w);
    } else {
        kj_array_begin(w);
        for (int i = 0; i < v->type.shape.rank; i++) {
            const kl_dim *d = &v->type.shape.dims[i];
            if (d->value >= 0) kj_int(w, d->value);
            else if (d->param) kj_string(w, d->param);
            else kj_null(w);
        }
        kj_array_end(w);
    }
    kj_object_end(w);
}

/* Kind of value for --shapes: where its type came from. */
static const char *kc_value_kind(const kl_value *v) {
    if (v->flags & KL_VALUE_GRAPH_INPUT) return (v->flags & KL_VALUE_INITIALIZER) ? "input+initializer" : "input";
    if (v->flags & KL_VALUE_INITIALIZER) return "initializer";
    if (v->flags & KL_VALUE_GRAPH_OUTPUT) return "output";
    if (!v->producer) return "undefined";
    return "";
}

static void kc_info_json(const char *path, const kc_loaded *l, const kc_stats *st, bool shapes) {
    const kiln_model *km = l->model;
    const kl_model *m = km->ir;
    const kl_graph *g = m->graph;
    kj_writer w;
    kj_init(&w, stdout);
    kj_object_begin(&w);
    kj_key(&w, "file");
    kj_string(&w, strcmp(path, "-") == 0 ? "<stdin>" : path);
    kj_key(&w, "file_bytes");
    kj_uint(&w, l->file_size);
    kj_key(&w, "ir_version");
    kj_int(&w, m->ir_version);
    kj_key(&w, "producer_name");
    kj_string(&w, m->producer_name ? m->producer_name : "");
    kj_key(&w, "producer_version");
    kj_string(&w, m->producer_version ? m->producer_version : "");
    kj_key(&w, "domain");
    kj_string(&w, m->domain ? m->domain : "");
    kj_key(&w, "model_version");
    kj_int(&w, m->model_version);
    kj_key(&w, "doc_string");
    kj_string(&w, m->doc ? m->doc : "");
    kj_key(&w, "graph_name");
    kj_string(&w, g && g->name ? g->name : "");
    kj_key(&w, "opsets");
    kj_array_begin(&w);
    for (size_t i = 0; i < m->n_opsets; i++) {
        kj_object_begin(&w);
        kj_key(&w, "domain");
        kj_string(&w, m->opsets[i].domain && *m->opsets[i].domain ? m->opsets[i].domain : "ai.onnx");
        kj_key(&w, "version");
        kj_int(&w, m->opsets[i].version);
        kj_object_end(&w);
    }
    kj_array_end(&w);
    kj_key(&w, "metadata");
    kj_object_begin(&w);
    for (size_t i = 0; i < m->n_meta; i++) {
        kj_key_n(&w, m->meta_keys[i].ptr, m->meta_keys[i].len);
        kj_string_n(&w, m->meta_values[i].ptr ? m->meta_values[i].ptr : "", m->meta_values[i].len);
    }
    kj_object_end(&w);
    kj_key(&w, "inputs");
    kj_array_begin(&w);
    for (size_t i = 0; i < km->n_inputs; i++) kc_json_value(&w, km->inputs[i]);
    kj_array_end(&w);
    kj_key(&w, "outputs");
    kj_array_begin(&w);
    for (size_t i = 0; g && i < g->n_outputs; i++)
        if (g->outputs[i]) kc_json_value(&w, g->outputs[i]);
    kj_array_end(&w);
    kj_key(&w, "nodes");
    kj_uint(&w, st->nodes);
    kj_key(&w, "main_graph_nodes");
    kj_uint(&w, st->main_nodes);
    kj_key(&w, "subgraphs");
    kj_uint(&w, st->subgraphs);
    kj_key(&w, "local_functions");
    kj_uint(&w, m->n_functions);
    kj_key(&w, "function_calls_inlined");
    kj_uint(&w, m->n_inlined);
    kj_key(&w, "operators");
    kj_object_begin(&w);
    for (size_t i = 0; i < st->n_ops; i++) {
        kj_key(&w, st->ops[i].name);
        kj_uint(&w, st->ops[i].count);
    }
    kj_object_end(&w);
    kj_key(&w, "parameters");
    kj_object_begin(&w);
    kj_key(&w, "count");
    kj_uint(&w, st->params);
    kj_key(&w, "bytes");
    kj_uint(&w, st->param_bytes);
    kj_key(&w, "initializers");
    kj_uint(&w, st->inits);
    kj_object_end(&w);
    kj_key(&w, "external_data");
    kj_object_begin(&w);
    kj_key(&w, "bytes");
    kj_uint(&w, st->ext_bytes);
    kj_key(&w, "tensors");
    kj_uint(&w, st->ext_tensors);
    kj_key(&w, "files");
    kj_array_begin(&w);
    for (size_t i = 0; i < st->n_ext; i++) {
        kj_object_begin(&w);
        kj_key(&w, "location");
        kj_string(&w, st->ext[i].location);
        kj_key(&w, "bytes");
        kj_uint(&w, st->ext[i].bytes);
        kj_key(&w, "tensors");
        kj_uint(&w, st->ext[i].tensors);
        kj_object_end(&w);
    }
    kj_array_end(&w);
    kj_object_end(&w);
    kj_key(&w, "macs");
    kj_object_begin(&w);
    kj_key(&w, "total");
    kj_uint(&w, st->macs);
    kj_key(&w, "nodes");
    kj_uint(&w, st->mac_nodes);
    kj_key(&w, "unknown_nodes");
    kj_uint(&w, st->mac_unknown);
    kj_key(&w, "subgraph_nodes");
    kj_uint(&w, st->mac_subgraph_nodes);
    kj_key(&w, "symbolic_dims_as_1");
    kj_array_begin(&w);
    for (size_t i = 0; i < st->n_syms; i++) kj_string(&w, st->syms[i]);
    kj_array_end(&w);
    kj_key(&w, "by_operator");
    kj_object_begin(&w);
    for (size_t i = 0; i < st->n_ops; i++)
        if (st->ops[i].mac_nodes) {
            kj_key(&w, st->ops[i].name);
            kj_uint(&w, st->ops[i].macs);
        }
    kj_object_end(&w);
    kj_object_end(&w);
    if (shapes && g) {
        kj_key(&w, "values");
        kj_array_begin(&w);
        for (size_t i = 0; i < g->n_values; i++)
            if (g->values[i]) kc_json_value(&w, g->values[i]);
        kj_array_end(&w);
    }
    kj_object_end(&w);
    kj_finish(&w);
}

/* ---- human output ---------------------------------------------------------------- */

#define KC_KEY "  %-15s "

/* Print a value row "  name   type" with the name padded to `width`. */
static void kc_print_value(const kl_value *v, int width, const char *suffix) {
    char nb[512], tb[1024];
    kc_fmt_name(v->name, strlen(v->name), nb, sizeof nb);
    printf("  %-*s  %s%s%s\n", width, nb, kl_type_format(&v->type, tb, sizeof tb),
           suffix && *suffix ? "  " : "", suffix ? suffix : "");
}

/* Display width of the longest name among vals (capped). */
static int kc_name_width(kl_value *const *vals, size_t n) {
    size_t w = 4;
    for (size_t i = 0; i < n; i++)
        if (vals[i] && strlen(vals[i]->name) > w) w = strlen(vals[i]->name);
    return (int)(w > 40 ? 40 : w);
}

static void kc_info_human(const char *path, const kc_loaded *l, const kc_stats *st, bool shapes) {
    const kiln_model *km = l->model;
    const kl_model *m = km->ir;
    const kl_graph *g = m->graph;
    char b1[64], b2[64], b3[64], nb[1024], vb[1024];

    const char *shown = strcmp(path, "-") == 0 ? "<stdin>" : path;
    printf("%s\n", kc_fmt_name(shown, strlen(shown), nb, sizeof nb));
    printf(KC_KEY "%s\n", "file size", kc_fmt_bytes(l->file_size, b1, sizeof b1));
    printf(KC_KEY "%lld\n", "ir version", (long long)m->ir_version);
    const char *pn = m->producer_name ? m->producer_name : "", *pv = m->producer_version ? m->producer_version : "";
    if (*pn || *pv) {
        kc_fmt_name(pn, strlen(pn), nb, sizeof nb);
        kc_fmt_name(pv, strlen(pv), vb, sizeof vb);
        printf(KC_KEY "%s%s%s\n", "producer", nb, *pn && *pv ? " " : "", vb);
    } else {
        printf(KC_KEY "(none)\n", "producer");
    }
    if (m->domain && *m->domain) printf(KC_KEY "%s\n", "domain", kc_fmt_name(m->domain, strlen(m->domain), nb, sizeof nb));
    if (m->model_version) printf(KC_KEY "%lld\n", "model version", (long long)m->model_version);
    printf(KC_KEY, "opsets");
    if (m->n_opsets == 0) printf("(none)");
    for (size_t i = 0; i < m->n_opsets; i++) {
        const char *d = m->opsets[i].domain && *m->opsets[i].domain ? m->opsets[i].domain : "ai.onnx";
        printf("%s%s %lld", i ? ", " : "", kc_fmt_name(d, strlen(d), nb, sizeof nb), (long long)m->opsets[i].version);
    }
    printf("\n");
    if (m->doc && *m->doc) {
        size_t len = strcspn(m->doc, "\n");
        bool more = m->doc[len] != 0 || len > 100;
        kc_fmt_name(m->doc, len > 100 ? 100 : len, nb, sizeof nb);
        printf(KC_KEY "%s%s\n", "doc", nb, more ? " ..." : "");
    }
    if (g && g->name && *g->name) printf(KC_KEY "%s\n", "graph", kc_fmt_name(g->name, strlen(g->name), nb, sizeof nb));
    if (m->n_meta) {
        size_t kw = 0;
        for (size_t i = 0; i < m->n_meta; i++) kw = m->meta_keys[i].len > kw ? m->meta_keys[i].len : kw;
        kw = kw > 30 ? 30 : kw;
        for (size_t i = 0; i < m->n_meta; i++) {
            kc_fmt_name(m->meta_keys[i].ptr, m->meta_keys[i].len, nb, sizeof nb);
            kc_fmt_name(m->meta_values[i].ptr, m->meta_values[i].len > 200 ? 200 : m->meta_values[i].len, vb, sizeof vb);
            printf(KC_KEY "%-*s  %s%s\n", i == 0 ? "metadata" : "", (int)kw, nb, vb,
                   m->meta_values[i].len > 200 ? " ..." : "");
        }
    }

    printf("\ninputs (%zu)\n", km->n_inputs);
    int w = kc_name_width(km->inputs, km->n_inputs);
    if (g) w = KL_MAX(w, kc_name_width(g->outputs, g->n_outputs));
    for (size_t i = 0; i < km->n_inputs; i++) kc_print_value(km->inputs[i], w, NULL);
    size_t n_init_inputs = g ? g->n_inputs - km->n_inputs : 0;
    if (n_init_inputs) printf("  (and %zu graph inputs with initializers)\n", n_init_inputs);
    printf("outputs (%zu)\n", g ? g->n_outputs : 0);
    for (size_t i = 0; g && i < g->n_outputs; i++)
        if (g->outputs[i]) kc_print_value(g->outputs[i], w, NULL);

    printf("\noperators (%s node%s, %zu type%s", kc_fmt_int(st->nodes, b1, sizeof b1), st->nodes == 1 ? "" : "s",
           st->n_ops, st->n_ops == 1 ? "" : "s");
    if (st->subgraphs)
        printf("; %s in %s subgraph%s", kc_fmt_int(st->subgraph_nodes, b2, sizeof b2),
               kc_fmt_int(st->subgraphs, b3, sizeof b3), st->subgraphs == 1 ? "" : "s");
    printf(")\n");
    size_t ow = 8;
    for (size_t i = 0; i < st->n_ops; i++) ow = strlen(st->ops[i].name) > ow ? strlen(st->ops[i].name) : ow;
    ow = ow > 40 ? 40 : ow;
    for (size_t i = 0; i < st->n_ops; i++) {
        kc_fmt_name(st->ops[i].name, strlen(st->ops[i].name), nb, sizeof nb);
        printf("  %-*s %8s", (int)ow, nb, kc_fmt_int(st->ops[i].count, b1, sizeof b1));
        if (st->ops[i].mac_nodes) printf("   %s MACs", kc_fmt_count(st->ops[i].macs, b2, sizeof b2));
        printf("\n");
    }
    printf("\n");
    printf(KC_KEY "%s", "functions", m->n_functions ? "" : "none");
    if (m->n_functions || m->n_inlined)
        printf("%zu local, %zu call%s inlined at load", m->n_functions, m->n_inlined, m->n_inlined == 1 ? "" : "s");
    printf("\n");
    if (st->inits == 0)
        printf(KC_KEY "none\n", "parameters");
    else
        printf(KC_KEY "%s parameters (%s) in %s initializer%s\n", "parameters", kc_fmt_count(st->params, b1, sizeof b1),
               kc_fmt_bytes(st->param_bytes, b2, sizeof b2), kc_fmt_int(st->inits, b3, sizeof b3),
               st->inits == 1 ? "" : "s");
    if (st->n_ext == 0) {
        printf(KC_KEY "none\n", "external data");
    } else {
        printf(KC_KEY "%s in %zu file%s (%s tensors)\n", "external data", kc_fmt_bytes(st->ext_bytes, b1, sizeof b1),
               st->n_ext, st->n_ext == 1 ? "" : "s", kc_fmt_int(st->ext_tensors, b2, sizeof b2));
        for (size_t i = 0; i < st->n_ext; i++)
            printf(KC_KEY "  %s  %s\n", "", kc_fmt_name(st->ext[i].location, strlen(st->ext[i].location), nb, sizeof nb),
                   kc_fmt_bytes(st->ext[i].bytes, b1, sizeof b1));
    }
    if (st->mac_nodes == 0 && st->mac_unknown == 0)
        printf(KC_KEY "no MACs (no Conv, ConvTranspose, Gemm or MatMul nodes)\n", "compute");
    else
        printf(KC_KEY "%s MACs in %s Conv/ConvTranspose/Gemm/MatMul node%s\n", "compute",
               kc_fmt_count(st->macs, b1, sizeof b1), kc_fmt_int(st->mac_nodes, b2, sizeof b2),
               st->mac_nodes == 1 ? "" : "s");
    if (st->n_syms) {
        printf(KC_KEY "symbolic dims taken as 1: ", "");
        for (size_t i = 0; i < st->n_syms; i++)
            printf("%s%s", i ? ", " : "", kc_fmt_name(st->syms[i], strlen(st->syms[i]), nb, sizeof nb));
        printf("\n");
    }
    if (st->mac_unknown)
        printf(KC_KEY "MACs unknown for %s node%s (shapes not known)\n", "", kc_fmt_int(st->mac_unknown, b1, sizeof b1),
               st->mac_unknown == 1 ? "" : "s");
    if (st->mac_subgraph_nodes)
        printf(KC_KEY "%s of these nodes are in subgraphs, counted once each\n", "",
               kc_fmt_int(st->mac_subgraph_nodes, b1, sizeof b1));

    if (shapes && g) {
        printf("\nvalues of the main graph (%zu)\n", g->n_values);
        int vw = kc_name_width(g->values, g->n_values);
        for (size_t i = 0; i < g->n_values; i++)
            if (g->values[i]) kc_print_value(g->values[i], vw, kc_value_kind(g->values[i]));
    }
}

/* ---- engine files ------------------------------------------------------------------ */

/* Facts of an engine, in the order they are printed; `number` for counts. */
static const struct {
    const char *key, *label;
    bool number;
} kc_engine_facts[] = {
    {"format_version", "format version", true}, {"kiln_version", "built by kiln", false},
    {"kiln_build", "kiln build id", false},      {"model_sha256", "model SHA-256", false},
    {"providers", "providers", false},
    {"cpu_features", "CPU features used", false}, {"precision", "precision", false},
    {"threads", "threads", true},                {"nodes_before", "nodes before", true},
    {"nodes_after", "nodes after", true},         {"arena_bytes", "arena bytes", true},
    {"intermediate_bytes", "intermediate bytes", true}, {"build_options", "build options", false},
    {"profiles", "profiles", true},             {"partition", "partition", false},
    {"passes", "rewrites", false}};

/* Engine fact `key`, or NULL. */
static const char *kc_efact(const kiln_engine *e, const char *key) {
    const char *v = NULL;
    return kiln_engine_get(e, key, &v) == KILN_OK ? v : NULL;
}

/* Write an engine's inputs or outputs as a JSON array. */
static void kc_engine_io_json(kj_writer *w, const kiln_engine *e, bool outputs) {
    size_t n = 0;
    if (outputs ? kiln_engine_output_count(e, &n) : kiln_engine_input_count(e, &n)) n = 0;
    kj_array_begin(w);
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL;
        kiln_dtype dt = KILN_DTYPE_UNDEFINED;
        int rank = -1;
        if (outputs ? kiln_engine_output_info(e, i, &name, &dt, &rank) : kiln_engine_input_info(e, i, &name, &dt, &rank))
            continue;
        kj_object_begin(w);
        kj_key(w, "name");
        kj_string(w, name);
        kj_key(w, "dtype");
        kj_string(w, kiln_dtype_name(dt));
        kj_key(w, "shape");
        if (rank < 0) kj_null(w);
        else {
            kj_array_begin(w);
            for (int a = 0; a < rank; a++) {
                int64_t d = -1;
                if (outputs) kiln_engine_output_dim(e, i, a, &d);
                else kiln_engine_input_dim(e, i, a, &d);
                if (d >= 0) kj_int(w, d);
                else kj_null(w);
            }
            kj_array_end(w);
        }
        kj_object_end(w);
    }
    kj_array_end(w);
}

/* Print an engine's inputs or outputs, one per line. */
static void kc_engine_io_print(const kiln_engine *e, bool outputs) {
    size_t n = 0;
    if (outputs ? kiln_engine_output_count(e, &n) : kiln_engine_input_count(e, &n)) n = 0;
    printf("%s (%zu)\n", outputs ? "outputs" : "inputs", n);
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL;
        kiln_dtype dt = KILN_DTYPE_UNDEFINED;
        int rank = -1;
        char nb[512];
        if (outputs ? kiln_engine_output_info(e, i, &name, &dt, &rank) : kiln_engine_input_info(e, i, &name, &dt, &rank))
            continue;
        printf("  %s  %s[", kc_fmt_name(name, strlen(name), nb, sizeof nb), kiln_dtype_name(dt));
        for (int a = 0; a < rank; a++) {
            int64_t d = -1;
            if (outputs) kiln_engine_output_dim(e, i, a, &d);
            else kiln_engine_input_dim(e, i, a, &d);
            if (d >= 0) printf("%s%lld", a ? "," : "", (long long)d);
            else printf("%s?", a ? "," : "");
        }
        printf("]%s\n", rank < 0 ? " (rank unknown)" : "");
    }
}

/* kiln info ENGINE [--json] [--layers]. */
static int kc_info_engine(const char *path, const kc_loaded *l, bool json, bool layers) {
    const kiln_engine *e = l->engine;
    size_t n_layers = 0;
    kiln_engine_layer_count(e, &n_layers);
    const char *shown = strcmp(path, "-") == 0 ? "<stdin>" : path;
    if (json) {
        kj_writer w;
        kj_init(&w, stdout);
        kj_object_begin(&w);
        kj_key(&w, "engine");
        kj_string(&w, shown);
        kj_key(&w, "engine_bytes");
        kj_uint(&w, l->file_size);
        kj_key(&w, "load_ms");
        kj_double(&w, l->load_ms);
        for (size_t i = 0; i < sizeof kc_engine_facts / sizeof kc_engine_facts[0]; i++) {
            const char *v = kc_efact(e, kc_engine_facts[i].key);
            char *end = NULL;
            long long num = v ? strtoll(v, &end, 10) : 0;
            kj_key(&w, kc_engine_facts[i].key);
            if (!v) kj_null(&w);
            else if (kc_engine_facts[i].number && end != v && !*end) kj_int(&w, num);
            else kj_string(&w, v);
        }
        kj_key(&w, "inputs");
        kc_engine_io_json(&w, e, false);
        kj_key(&w, "outputs");
        kc_engine_io_json(&w, e, true);
        kj_key(&w, "layer_count");
        kj_uint(&w, n_layers);
        kj_key(&w, "layers");
        kj_array_begin(&w);
        for (size_t i = 0; i < n_layers; i++) {
            const char *name = NULL, *op = NULL, *prov = NULL, *tac = NULL, *from = NULL;
            if (kiln_engine_layer_info(e, i, &name, &op, &prov, &tac, &from) != KILN_OK) continue;
            kj_object_begin(&w);
            kj_key(&w, "name");
            kj_string(&w, name);
            kj_key(&w, "op");
            kj_string(&w, op);
            kj_key(&w, "provider");
            kj_string(&w, prov);
            kj_key(&w, "tactic");
            kj_string(&w, tac);
            kj_key(&w, "fused_from");
            kj_string(&w, from);
            kj_object_end(&w);
        }
        kj_array_end(&w);
        kj_object_end(&w);
        kj_finish(&w);
        return kc_finish_stdout(KC_EXIT_OK);
    }
    char b1[1024], b2[64], b3[64];
    printf("engine             %s (%s, loaded in %.2f ms)\n", kc_fmt_name(shown, strlen(shown), b1, sizeof b1),
           kc_fmt_bytes(l->file_size, b2, sizeof b2), l->load_ms);
    for (size_t i = 0; i < sizeof kc_engine_facts / sizeof kc_engine_facts[0]; i++) {
        const char *key = kc_engine_facts[i].key, *v = kc_efact(e, key);
        if (!strcmp(key, "arena_bytes") || !strcmp(key, "intermediate_bytes")) continue;
        if (!v || !*v) continue;
        if (!strcmp(key, "passes") && !layers) {
            size_t n = 0;
            for (const char *p = v; *p;) {
                size_t len = strcspn(p, "\n");
                if (len && strncmp(p, "passes", 6) == 0) printf("%-18s %.*s\n", "rewrites", (int)len, p);
                else n += len > 0;
                p += len + (p[len] ? 1 : 0);
            }
            printf("%-18s %zu listed with --layers\n", "", n);
            continue;
        }
        if (strchr(v, '\n')) {
            printf("%s\n", kc_engine_facts[i].label);
            for (const char *p = v; *p;) {
                size_t len = strcspn(p, "\n");
                if (len) printf("  %.*s\n", (int)len, p);
                p += len + (p[len] ? 1 : 0);
            }
        } else {
            printf("%-18s %s\n", kc_engine_facts[i].label, v);
        }
        if (!strcmp(key, "nodes_after")) {
            const char *ab = kc_efact(e, "arena_bytes"), *ib = kc_efact(e, "intermediate_bytes");
            unsigned long long a = ab ? strtoull(ab, NULL, 10) : 0, b = ib ? strtoull(ib, NULL, 10) : 0;
            if (ab && ib && b)
                printf("%-18s %s beside %s of intermediate tensors (%.1f%%)\n", "arena", kc_fmt_bytes(a, b2, sizeof b2),
                       kc_fmt_bytes(b, b3, sizeof b3), 100.0 * (double)a / (double)b);
            else if (ab)
                printf("%-18s %s\n", "arena", kc_fmt_bytes(a, b2, sizeof b2));
        }
    }
    kc_engine_io_print(e, false);
    kc_engine_io_print(e, true);
    printf("layers (%zu)%s\n", n_layers, layers ? "" : ": list them with --layers");
    for (size_t i = 0; layers && i < n_layers; i++) {
        const char *name = NULL, *op = NULL, *prov = NULL, *tac = NULL, *from = NULL;
        if (kiln_engine_layer_info(e, i, &name, &op, &prov, &tac, &from) != KILN_OK) continue;
        char nb[512], fb[1024];
        printf("  %4zu  %-22s %-6s %-16s %s", i, op ? op : "?", prov ? prov : "?", tac && *tac ? tac : "-",
               kc_fmt_name(name ? name : "", name ? strlen(name) : 0, nb, sizeof nb));
        if (from && *from && (!name || strcmp(from, name) != 0))
            printf("  <- %s", kc_fmt_name(from, strlen(from), fb, sizeof fb));
        printf("\n");
    }
    return kc_finish_stdout(KC_EXIT_OK);
}

int kc_cmd_info(int argc, char **argv) {
    bool json = false, shapes = false, verbose = false, layers = false;
    const kc_flag flags[] = {{"--json", &json, NULL, NULL},
                             {"--shapes", &shapes, NULL, NULL},
                             {"--verbose", &verbose, NULL, NULL},
                             {"--layers", &layers, NULL, NULL},
                             {NULL, NULL, NULL, NULL}};
    const char *path;
    int code;
    if (!kc_parse_args(argc, argv, flags, &path, &code)) return code;
    kc_loaded l;
    if (!kc_load_model_or_engine("info", path, &l, &code)) return code;
    if (l.engine) {
        if (shapes)
            code = kc_fail(KC_EXIT_USAGE, "info", "--shapes applies to a model; for an engine use --layers");
        else
            code = kc_info_engine(path, &l, json, layers || verbose);
        kc_loaded_free(&l);
        return code;
    }
    if (layers) {
        kc_loaded_free(&l);
        return kc_fail(KC_EXIT_USAGE, "info", "--layers applies to an engine file (kiln build MODEL -o FILE.kiln)");
    }
    kc_stats st;
    memset(&st, 0, sizeof st);
    if (l.model->ir->graph) kc_walk_graph(&st, l.model->ir->graph, 0);
    if (st.oom) {
        kc_stats_free(&st);
        kc_loaded_free(&l);
        return kc_fail(KC_EXIT_MODEL, "info", "out of memory");
    }
    if (st.n_ops > 1) qsort(st.ops, st.n_ops, sizeof *st.ops, kc_opstat_cmp);
    if (st.n_syms > 1) qsort(st.syms, st.n_syms, sizeof *st.syms, kc_str_cmp);
    if (json) kc_info_json(path, &l, &st, shapes || verbose);
    else kc_info_human(path, &l, &st, shapes || verbose);
    kc_stats_free(&st);
    kc_loaded_free(&l);
    return kc_finish_stdout(KC_EXIT_OK);
}
