/* Memory plan: tensor lifetimes in node order -> offsets in one arena
 * (best fit over a free list kept sorted by offset, 64-byte aligned), with
 * elementwise outputs written over a dying input (ggml-alloc's in-place
 * rule, but asked of the op instead of a switch inside the allocator). */
#include <stdint.h>
#include <string.h>

#include "ops/kiln.h"
#include "plan/plan.h"

#define KL_ALIGN 64u

bool kl_op_aliases(const kl_node *n) {
    for (size_t a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].type == KL_ATTR_GRAPH || n->attrs[a].type == KL_ATTR_GRAPHS) return true;
    if (n->domain[0]) return false;
    const char *op = n->op_type;
    return strcmp(op, "Identity") == 0 || strcmp(op, "Dropout") == 0 || strncmp(op, "Sequence", 8) == 0 ||
           strncmp(op, "Optional", 8) == 0;
}

bool kl_op_inplace(const kl_node *n) {
    static const char *const ops[] = {"Relu",  "Sigmoid", "Tanh",      "Exp",         "Neg",      "Abs",  "Sqrt",
                                      "Erf",   "Clip",    "LeakyRelu", "HardSigmoid", "HardSwish", "Elu", "Selu",
                                      "Softplus", "Softsign", "Add",   "Sub",         "Mul",      "Div",  "Reciprocal",
                                      "Floor", "Ceil",    "Log",       "Sin",         "Cos",      "Gelu", "Mish",
                                      /* same bytes in the same order: over its dying input the copy is none */
                                      "Reshape", "Flatten", "Squeeze", "Unsqueeze"};
    if (n->domain[0] || n->n_outputs < 1 || n->n_inputs < 1) return false;
    for (size_t i = 0; i < KL_ARRAY_LEN(ops); i++)
        if (strcmp(n->op_type, ops[i]) == 0) return true;
    return false;
}

size_t kl_op_inplace_host_input(const kl_node *n) {
    if (kl_op_inplace(n)) return 0;
    /* kiln.FusedConv's residual Z: every host convolution kernel reads an
     * element of Z before it writes that element of Y (test-ops covers
     * Z == Y for each tactic; the reference kernel sets Z aside), so Y can
     * take Z's block when Z dies there.  Not when Z is also X or W. */
    if (strcmp(n->domain, KL_KILN_DOMAIN) == 0 && strcmp(n->op_type, "FusedConv") == 0 && n->n_inputs > 3 &&
        n->inputs[3] && n->n_outputs >= 1) {
        for (size_t i = 0; i < 3 && i < n->n_inputs; i++)
            if (n->inputs[i] == n->inputs[3]) return SIZE_MAX;
        return 3;
    }
    return SIZE_MAX;
}

void kl_mem_plan_free(kl_mem_plan *p) {
    if (!p) return;
    kl_free(p->offset);
    kl_free(p->capacity);
    kl_free(p->inplace);
    kl_free(p->slab_ch);
    kl_free(p->slab_of);
    memset(p, 0, sizeof *p);
}

typedef struct kl_block {
    size_t off, size;
} kl_block;

typedef struct kl_freelist {
    kl_block *b;
    size_t n, cap;
    size_t end; /* arena high-water mark */
} kl_freelist;

static size_t kl_round(size_t n) { return (n + KL_ALIGN - 1) & ~(size_t)(KL_ALIGN - 1); }

/* Best fit: the smallest free block that holds size; else the end. */
static size_t kl_fl_alloc(kl_freelist *fl, size_t size) {
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < fl->n; i++)
        if (fl->b[i].size >= size && (best == SIZE_MAX || fl->b[i].size < fl->b[best].size)) best = i;
    if (best != SIZE_MAX) {
        size_t off = fl->b[best].off;
        fl->b[best].off += size;
        fl->b[best].size -= size;
        if (!fl->b[best].size) {
            memmove(&fl->b[best], &fl->b[best + 1], (fl->n - best - 1) * sizeof *fl->b);
            fl->n--;
        }
        return off;
    }
    /* A free block touching the end grows instead of leaving a hole. */
    if (fl->n && fl->b[fl->n - 1].off + fl->b[fl->n - 1].size == fl->end) {
        size_t off = fl->b[fl->n - 1].off;
        fl->n--;
        fl->end = off + size;
        return off;
    }
    size_t off = fl->end;
    fl->end += size;
    return off;
}

static kiln_status kl_fl_free(kl_freelist *fl, size_t off, size_t size) {
    size_t i = 0;
    while (i < fl->n && fl->b[i].off < off) i++;
    if (fl->n == fl->cap) {
        size_t cap = fl->cap ? fl->cap * 2 : 16;
        kl_block *nb = kl_realloc_array(fl->b, cap, sizeof *nb);
        if (!nb) return KILN_ERR_NO_MEMORY;
        fl->b = nb;
        fl->cap = cap;
    }
    memmove(&fl->b[i + 1], &fl->b[i], (fl->n - i) * sizeof *fl->b);
    fl->b[i] = (kl_block){off, size};
    fl->n++;
    if (i + 1 < fl->n && fl->b[i].off + fl->b[i].size == fl->b[i + 1].off) { /* merge right */
        fl->b[i].size += fl->b[i + 1].size;
        memmove(&fl->b[i + 1], &fl->b[i + 2], (fl->n - i - 2) * sizeof *fl->b);
        fl->n--;
    }
    if (i > 0 && fl->b[i - 1].off + fl->b[i - 1].size == fl->b[i].off) { /* merge left */
        fl->b[i - 1].size += fl->b[i].size;
        memmove(&fl->b[i], &fl->b[i + 1], (fl->n - i - 1) * sizeof *fl->b);
        fl->n--;
    }
    return KILN_OK;
}

/* Last use of every value of g read by subgraph sg (recursively) at node at. */
static void kl_mark_captured(const kl_graph *g, const kl_graph *sg, size_t at, size_t *last) {
    for (size_t k = 0; k < sg->n_outputs; k++) {
        const kl_value *v = sg->outputs[k];
        if (v && v->graph == g && last[v->id] < at + 1) last[v->id] = at + 1;
    }
    for (size_t i = 0; i < sg->n_nodes; i++) {
        const kl_node *n = sg->nodes[i];
        if (!n) continue;
        for (size_t k = 0; k < n->n_inputs; k++) {
            const kl_value *v = n->inputs[k];
            if (v && v->graph == g && last[v->id] < at + 1) last[v->id] = at + 1;
        }
        for (size_t a = 0; a < n->n_attrs; a++) {
            const kl_attr *at2 = &n->attrs[a];
            if (at2->type == KL_ATTR_GRAPH && at2->g) kl_mark_captured(g, at2->g, at, last);
            if (at2->type == KL_ATTR_GRAPHS)
                for (size_t j = 0; j < at2->n; j++) kl_mark_captured(g, at2->graphs[j], at, last);
        }
    }
}

/* Values of g that subgraph sg reads (recursively): extend their last use to `until`. */
static void kl_extend_captured(const kl_graph *g, const kl_graph *sg, size_t until, size_t *last) {
    for (size_t k = 0; k < sg->n_outputs; k++) {
        const kl_value *v = sg->outputs[k];
        if (v && v->graph == g && last[v->id] < until) last[v->id] = until;
    }
    for (size_t i = 0; i < sg->n_nodes; i++) {
        const kl_node *n = sg->nodes[i];
        if (!n) continue;
        for (size_t k = 0; k < n->n_inputs; k++) {
            const kl_value *v = n->inputs[k];
            if (v && v->graph == g && last[v->id] < until) last[v->id] = until;
        }
        for (size_t a = 0; a < n->n_attrs; a++) {
            const kl_attr *at2 = &n->attrs[a];
            if (at2->type == KL_ATTR_GRAPH && at2->g) kl_extend_captured(g, at2->g, until, last);
            if (at2->type == KL_ATTR_GRAPHS)
                for (size_t j = 0; j < at2->n; j++) kl_extend_captured(g, at2->graphs[j], until, last);
        }
    }
}

/* Concat node n whose inputs can be produced in place, each into its slab
 * of the output (KL_MEM_SLAB / KL_MEM_JOINED): the output an intermediate
 * of known size, nothing outside the axis (the dims before it all 1), the
 * inputs distinct intermediates of g made by nodes that do not alias,
 * members of no other Concat and no Concat's output themselves, every
 * slab starting on a 64-byte boundary.  Fills prefix (bytes of each
 * input's slab start) and returns true. */
static bool kl_concat_joinable(const kl_graph *g, const kl_shapes *sh, const kl_node *n, const size_t *last,
                               const int64_t *parent, bool (*aliases)(const kl_node *n), size_t *prefix) {
    const size_t NEVER = SIZE_MAX;
    if (n->domain[0] || strcmp(n->op_type, "Concat") != 0 || n->n_outputs != 1 || n->n_inputs < 1) return false;
    const kl_value *o = n->outputs[0];
    if (!o || o->graph != g || last[o->id] == NEVER || sh->bytes[o->id] == SIZE_MAX || !sh->bytes[o->id] ||
        !sh->rank || !sh->dims || !sh->dtype || sh->rank[o->id] < 1 || !sh->dims[o->id] || parent[o->id] >= 0)
        return false;
    int rank = sh->rank[o->id];
    int64_t ax = kl_node_attr_int(n, "axis", 1);
    if (ax < 0) ax += rank;
    if (ax < 0 || ax >= rank) return false;
    for (int64_t k = 0; k < ax; k++)
        if (sh->dims[o->id][k] != 1) return false;
    size_t at = 0;
    for (size_t k = 0; k < n->n_inputs; k++) {
        const kl_value *x = n->inputs[k];
        if (!x || x->graph != g || !x->producer || x->init || last[x->id] == NEVER || sh->bytes[x->id] == SIZE_MAX ||
            sh->dtype[x->id] != sh->dtype[o->id] || parent[x->id] != -1 || aliases(x->producer) || at % 64 != 0)
            return false;
        for (size_t j = 0; j < k; j++)
            if (n->inputs[j] == x) return false;
        prefix[k] = at;
        at += sh->bytes[x->id];
    }
    return at == sh->bytes[o->id];
}

/* Concat n along the channels of 4-D values (kl_mem_plan_build_slabs):
 * fills chan (each input's first channel in the output) and ok (which
 * inputs become slabs); false when none does. */
static bool kl_concat_channels(const kl_graph *g, const kl_shapes *sh, const kl_node *n, const size_t *last,
                               const int64_t *parent, bool (*aliases)(const kl_node *n),
                               bool (*part_ok)(const kl_node *producer), size_t *chan, bool *ok) {
    const size_t NEVER = SIZE_MAX;
    if (n->domain[0] || strcmp(n->op_type, "Concat") != 0 || n->n_outputs != 1 || n->n_inputs < 2) return false;
    const kl_value *o = n->outputs[0];
    if (!o || o->graph != g || last[o->id] == NEVER || sh->bytes[o->id] == SIZE_MAX || !sh->bytes[o->id] ||
        !sh->rank || !sh->dims || !sh->dtype || sh->rank[o->id] != 4 || !sh->dims[o->id] || parent[o->id] != -1)
        return false;
    int64_t ax = kl_node_attr_int(n, "axis", 1);
    if (ax < 0) ax += 4;
    if (ax != 1) return false;
    size_t at = 0;
    bool any = false;
    for (size_t k = 0; k < n->n_inputs; k++) {
        const kl_value *x = n->inputs[k];
        if (!x || x->graph != g || sh->rank[x->id] != 4 || !sh->dims[x->id]) return false;
        chan[k] = at;
        at += (size_t)sh->dims[x->id][1];
        ok[k] = x->producer && !x->init && last[x->id] != NEVER && sh->bytes[x->id] != SIZE_MAX &&
                sh->bytes[x->id] && sh->dtype[x->id] == sh->dtype[o->id] && parent[x->id] == -1 &&
                !aliases(x->producer) && part_ok(x->producer);
        for (size_t j = 0; j < k && ok[k]; j++)
            if (n->inputs[j] == x) ok[k] = ok[j] = false;
        for (size_t j = k + 1; j < n->n_inputs && ok[k]; j++)
            if (n->inputs[j] == x) ok[k] = false;
    }
    for (size_t k = 0; k < n->n_inputs; k++) any |= ok[k];
    return any && (int64_t)at == sh->dims[o->id][1];
}

static kiln_status kl_mem_plan_build_all(const kl_graph *g, const kl_shapes *shapes, bool (*aliases)(const kl_node *n),
                                         const size_t *keep_until, int join, bool (*part_ok)(const kl_node *producer),
                                         kl_mem_plan *out);

kiln_status kl_mem_plan_build_slabs(const kl_graph *g, const kl_shapes *shapes, bool (*aliases)(const kl_node *n),
                                    const size_t *keep_until, bool (*part_ok)(const kl_node *producer),
                                    kl_mem_plan *out) {
    return kl_mem_plan_build_all(g, shapes, aliases, keep_until, 2, part_ok, out);
}

kiln_status kl_mem_plan_build(const kl_graph *g, const kl_shapes *shapes, kl_mem_plan *out) {
    return kl_mem_plan_build_impl(g, shapes, kl_op_aliases, NULL, true, out);
}

kiln_status kl_mem_plan_build_ex(const kl_graph *g, const kl_shapes *shapes, bool (*aliases)(const kl_node *n),
                                 const size_t *keep_until, kl_mem_plan *out) {
    return kl_mem_plan_build_impl(g, shapes, aliases, keep_until, false, out);
}

kiln_status kl_mem_plan_build_impl(const kl_graph *g, const kl_shapes *shapes, bool (*aliases)(const kl_node *n),
                                   const size_t *keep_until, bool join_concat, kl_mem_plan *out) {
    return kl_mem_plan_build_all(g, shapes, aliases, keep_until, join_concat ? 1 : 0, NULL, out);
}

/* join: 0 no Concat joined, 1 contiguous slabs (bytes), 2 channel slabs (part_ok). */
static kiln_status kl_mem_plan_build_all(const kl_graph *g, const kl_shapes *shapes, bool (*aliases)(const kl_node *n),
                                         const size_t *keep_until, int join, bool (*part_ok)(const kl_node *producer),
                                         kl_mem_plan *out) {
    const bool join_concat = join == 1;
    bool *okp = NULL;
    memset(out, 0, sizeof *out);
    size_t nv = g->n_values, nn = g->n_nodes;
    const size_t NEVER = SIZE_MAX; /* never released (graph outputs) */
    size_t *last = kl_calloc(nv ? nv : 1, sizeof *last); /* node index + 1 of last use */
    /* joined Concats: per value, the Concat output it is a slab of (-1:
     * none; -2: it is such an output), and the slab's offset in it */
    int64_t *parent = kl_malloc((nv ? nv : 1) * sizeof *parent);
    size_t *slab = kl_calloc(nv ? nv : 1, sizeof *slab);
    size_t *prefix = NULL;
    out->offset = kl_calloc(nv ? nv : 1, sizeof *out->offset);
    out->capacity = kl_calloc(nv ? nv : 1, sizeof *out->capacity);
    out->inplace = kl_calloc(nv ? nv : 1, sizeof *out->inplace);
    out->n_values = nv;
    if (join == 2) {
        out->slab_ch = kl_malloc((nv ? nv : 1) * sizeof *out->slab_ch);
        out->slab_of = kl_malloc((nv ? nv : 1) * sizeof *out->slab_of);
    }
    kl_freelist fl = {0};
    kiln_status s = (last && parent && slab && out->offset && out->capacity && out->inplace && (join != 2 || (out->slab_ch && out->slab_of)))
                        ? KILN_OK : KILN_ERR_NO_MEMORY;
    if (s) goto done;
    for (size_t i = 0; i < nv; i++) out->offset[i] = -1, parent[i] = -1;
    for (size_t i = 0; i < nv && out->slab_ch; i++) out->slab_ch[i] = out->slab_of[i] = -1;
    for (size_t i = 0; i < nn; i++) {
        const kl_node *n = g->nodes[i];
        for (size_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] && n->inputs[k]->graph == g) last[n->inputs[k]->id] = i + 1;
        for (size_t k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] && last[n->outputs[k]->id] < i + 1) last[n->outputs[k]->id] = i + 1;
        for (size_t a = 0; a < n->n_attrs; a++) {
            const kl_attr *at = &n->attrs[a];
            if (at->type == KL_ATTR_GRAPH && at->g) kl_mark_captured(g, at->g, i, last);
            if (at->type == KL_ATTR_GRAPHS)
                for (size_t j = 0; j < at->n; j++) kl_mark_captured(g, at->graphs[j], i, last);
        }
    }
    for (size_t k = 0; k < g->n_outputs; k++)
        if (g->outputs[k] && g->outputs[k]->graph == g) last[g->outputs[k]->id] = NEVER;
    for (size_t id = 0; keep_until && id < nv; id++)
        if (keep_until[id] > last[id]) last[id] = keep_until[id];
    /* A node that may hand an input (or a captured value) out as its output
     * keeps that input alive as long as the output. */
    for (size_t i = nn; i-- > 0;) {
        const kl_node *n = g->nodes[i];
        if (!aliases(n)) continue;
        size_t until = i + 1;
        for (size_t k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] && last[n->outputs[k]->id] > until) until = last[n->outputs[k]->id];
        for (size_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] && n->inputs[k]->graph == g && last[n->inputs[k]->id] < until) last[n->inputs[k]->id] = until;
        for (size_t a = 0; a < n->n_attrs; a++) {
            const kl_attr *at = &n->attrs[a];
            if (at->type == KL_ATTR_GRAPH && at->g) kl_extend_captured(g, at->g, until, last);
            if (at->type == KL_ATTR_GRAPHS)
                for (size_t j = 0; j < at->n; j++) kl_extend_captured(g, at->graphs[j], until, last);
        }
    }
    /* Concats whose inputs are produced into their slabs of the output (no
     * copy): the output's block is placed with the first input made and
     * lives as long as the output or any input is read. */
    for (size_t i = 0; i < nn && join_concat && !s; i++) {
        const kl_node *n = g->nodes[i];
        if (n->domain[0] || strcmp(n->op_type, "Concat") != 0) continue;
        size_t *pre = kl_realloc_array(prefix, n->n_inputs ? n->n_inputs : 1, sizeof *prefix);
        if (!pre) {
            s = KILN_ERR_NO_MEMORY;
            break;
        }
        prefix = pre;
        if (!kl_concat_joinable(g, shapes, n, last, parent, aliases, prefix)) continue;
        size_t o = n->outputs[0]->id;
        parent[o] = -2;
        for (size_t k = 0; k < n->n_inputs; k++) {
            size_t x = n->inputs[k]->id;
            parent[x] = (int64_t)o;
            slab[x] = prefix[k];
            if (last[x] > last[o]) last[o] = last[x];
        }
    }
    /* Channel slabs (join 2): the inputs part_ok accepts, each at its first channel. */
    for (size_t i = 0; i < nn && join == 2 && !s; i++) {
        const kl_node *n = g->nodes[i];
        if (n->domain[0] || strcmp(n->op_type, "Concat") != 0) continue;
        size_t *pre = kl_realloc_array(prefix, n->n_inputs ? n->n_inputs : 1, sizeof *prefix);
        bool *ok = pre ? kl_realloc_array(okp, n->n_inputs ? n->n_inputs : 1, sizeof *okp) : NULL;
        if (pre) prefix = pre;
        if (ok) okp = ok;
        if (!pre || !ok) {
            s = KILN_ERR_NO_MEMORY;
            break;
        }
        if (!kl_concat_channels(g, shapes, n, last, parent, aliases, part_ok, prefix, okp)) continue;
        size_t o = n->outputs[0]->id;
        parent[o] = -2;
        for (size_t k = 0; k < n->n_inputs; k++) {
            if (!okp[k]) continue;
            size_t x = n->inputs[k]->id;
            parent[x] = (int64_t)o;
            slab[x] = prefix[k];
            out->slab_ch[x] = (int64_t)prefix[k];
            out->slab_of[x] = (int64_t)o;
            if (last[x] > last[o]) last[o] = last[x];
        }
    }
    /* Walk the nodes: place outputs, then release what dies here. */
    for (size_t i = 0; i < nn && !s; i++) {
        const kl_node *n = g->nodes[i];
        bool aliasing = aliases(n);
        for (size_t k = 0; k < n->n_outputs && !aliasing; k++) {
            const kl_value *v = n->outputs[k];
            if (!v || last[v->id] == NEVER || shapes->bytes[v->id] == SIZE_MAX) continue;
            size_t size = kl_round(shapes->bytes[v->id] ? shapes->bytes[v->id] : 1);
            if (parent[v->id] >= 0) { /* a slab of a joined Concat's output: that block, placed with its first slab */
                size_t o = (size_t)parent[v->id];
                if (out->offset[o] < 0) {
                    out->capacity[o] = kl_round(shapes->bytes[o]);
                    out->offset[o] = (int64_t)kl_fl_alloc(&fl, out->capacity[o]);
                }
                out->offset[v->id] = out->offset[o] + (join == 2 ? 0 : (int64_t)slab[v->id]);
                out->capacity[v->id] = 0; /* not its own block: never freed, never written over */
                out->inplace[v->id] = KL_MEM_SLAB;
                out->intermediate_bytes += shapes->bytes[v->id];
                continue;
            }
            if (parent[v->id] == -2 && out->offset[v->id] >= 0) { /* the joined Concat's output: placed already */
                out->inplace[v->id] = KL_MEM_JOINED;
                out->intermediate_bytes += shapes->bytes[v->id];
                continue;
            }
            size_t xi = join == 1 ? kl_op_inplace_host_input(n) : kl_op_inplace(n) ? 0 : SIZE_MAX;
            const kl_value *x = xi < n->n_inputs ? n->inputs[xi] : NULL;
            if (k == 0 && x && x->graph == g && out->offset[x->id] >= 0 && last[x->id] == i + 1 &&
                shapes->bytes[x->id] == shapes->bytes[v->id] && shapes->dtype[x->id] == shapes->dtype[v->id] &&
                out->capacity[x->id] >= size) {
                out->offset[v->id] = out->offset[x->id];
                out->capacity[v->id] = out->capacity[x->id];
                out->inplace[v->id] = 1;
                out->capacity[x->id] = 0; /* ownership of the block moves on */
            } else {
                out->offset[v->id] = (int64_t)kl_fl_alloc(&fl, size);
                out->capacity[v->id] = size;
            }
            out->intermediate_bytes += shapes->bytes[v->id];
        }
        /* Free inputs (and unused outputs) whose last use is this node; a
         * slab read here for the last time may end its joined block. */
        for (size_t k = 0; k < n->n_inputs + n->n_outputs && !s; k++) {
            const kl_value *v = k < n->n_inputs ? n->inputs[k] : n->outputs[k - n->n_inputs];
            if (!v || v->graph != g) continue;
            size_t id = parent[v->id] >= 0 ? (size_t)parent[v->id] : v->id;
            if (out->offset[id] < 0 || last[id] != i + 1 || !out->capacity[id]) continue;
            s = kl_fl_free(&fl, (size_t)out->offset[id], out->capacity[id]);
            out->capacity[id] = 0; /* freed once even if read twice */
        }
        /* Values captured by subgraphs that die here. */
        for (size_t id = 0; id < nv && !s && aliases(n); id++)
            if (out->offset[id] >= 0 && last[id] == i + 1 && out->capacity[id]) {
                s = kl_fl_free(&fl, (size_t)out->offset[id], out->capacity[id]);
                out->capacity[id] = 0;
            }
    }
    /* capacity was zeroed as blocks were released: restore it for the
     * runtime (a slab: its exact size, so a larger tensor goes elsewhere). */
    for (size_t id = 0; id < nv && !s; id++)
        if (out->offset[id] >= 0)
            out->capacity[id] = parent[id] >= 0 ? shapes->bytes[id] : kl_round(shapes->bytes[id] ? shapes->bytes[id] : 1);
    out->arena_bytes = fl.end;
done:
    kl_free(fl.b);
    kl_free(last);
    kl_free(parent);
    kl_free(slab);
    kl_free(prefix);
    kl_free(okp);
    if (s) kl_mem_plan_free(out);
    return s;
}
