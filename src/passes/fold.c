/*
 * fold_shapes, fold_constants, remove_dead: evaluate what is known at build
 * time, and drop what nothing reads.
 *
 * fold_constants runs a node whose inputs are all constants through the
 * executor (kl_program_create/run on a one-node model over the same
 * constants), so it uses exactly the reference kernels the unoptimized
 * graph would run.
 */
#include <stdio.h>
#include <string.h>

#include "ops/infer_util.h"
#include "passes/passes_internal.h"
#include "runtime/exec.h"

/* ---- fold_shapes ------------------------------------------------------------------------------ */

/* Is every element of v's known contents a known number, and v an int64 or
 * int32 tensor of rank <= 1 matching them? */
static bool sym_static(const kl_value *v) {
    const kl_symval *s = v ? v->sym : NULL;
    if (!s || v->type.kind != KL_TYPE_TENSOR || (v->type.elem != KILN_DTYPE_INT64 && v->type.elem != KILN_DTYPE_INT32))
        return false;
    if (s->rank < 0 || s->rank > 1 || (s->rank == 0 && s->count != 1) || s->count < 0) return false;
    if (v->type.shape.rank >= 0 && v->type.shape.rank != s->rank) return false;
    for (int64_t i = 0; i < s->count; i++)
        if (!kl_symdim_known(&s->v[i])) return false;
    return true;
}

/* Replace output values of node n (all static symbolic contents) by constants. */
static kiln_status sym_fold(kl_pass_ctx *c, kl_node *n) {
    kl_arena *a = &c->m->arena;
    kl_tensor t[8];
    for (size_t k = 0; k < n->n_outputs; k++) {
        const kl_value *v = n->outputs[k];
        if (!v) continue;
        const kl_symval *s = v->sym;
        size_t es = v->type.elem == KILN_DTYPE_INT64 ? 8 : 4;
        int64_t *dims = kl_arena_alloc(a, sizeof *dims);
        char *data = kl_arena_alloc(a, (size_t)(s->count ? s->count : 1) * es);
        if (!dims || !data) return KILN_ERR_NO_MEMORY;
        for (int64_t i = 0; i < s->count; i++) {
            int64_t x = s->v[i].value;
            if (es == 8) {
                memcpy(data + i * 8, &x, 8);
            } else {
                int32_t y = (int32_t)x;
                memcpy(data + i * 4, &y, 4);
            }
        }
        dims[0] = s->count;
        t[k] = (kl_tensor){"", v->type.elem, s->rank, s->rank ? dims : NULL, s->count, data,
                           (size_t)s->count * es, NULL, false, NULL, 0};
    }
    kl_node_remove(n);
    for (size_t k = 0; k < n->n_outputs; k++)
        if (n->outputs[k]) KL_TRY(kl_value_set_const(c->g, n->outputs[k], &t[k]));
    return KILN_OK;
}

/* A Reshape whose target is computed at run time but whose known contents
 * (symbolic dims) pin it down: known numbers stay, a symbolic element equal
 * to the input's dim at the same axis becomes 0 (copy; allowzero 0 only),
 * and at most one other element becomes -1.  Writes the constant target
 * into t[0..rank) and returns true when that works. */
static bool reshape_target(const kl_node *n, int64_t *t, int *rank) {
    if (n->n_inputs < 2 || !n->inputs[0] || !n->inputs[1] || kl_value_const(n->graph->model, n->inputs[1]))
        return false;
    const kl_symval *s = n->inputs[1]->sym;
    const kl_shape *xs = &n->inputs[0]->type.shape;
    if (!s || s->rank != 1 || s->count < 1 || s->count > KILN_MAX_RANK) return false;
    bool allowzero = kl_node_attr_int(n, "allowzero", 0) != 0, minus = false;
    for (int64_t i = 0; i < s->count; i++)
        if (kl_symdim_known(&s->v[i]) && s->v[i].value == -1) minus = true;
    for (int64_t i = 0; i < s->count; i++) {
        const kl_dim *d = &s->v[i];
        if (kl_symdim_known(d)) {
            t[i] = d->value;
        } else if (d->param && !allowzero && i < xs->rank && xs->dims[i].value < 0 && xs->dims[i].param &&
                   strcmp(xs->dims[i].param, d->param) == 0) {
            t[i] = 0;
        } else if (!minus) {
            t[i] = -1;
            minus = true;
        } else {
            return false;
        }
    }
    *rank = (int)s->count;
    return true;
}

kiln_status kl_pass_fold_shapes(kl_pass_ctx *c) {
    for (size_t i = 0; i < c->g->n_nodes; i++) {
        kl_node *n = c->g->nodes[i];
        int64_t tv[KILN_MAX_RANK];
        int tr;
        if (kl_pass_is(n, "Reshape") && n->opset >= 5 && reshape_target(n, tv, &tr)) {
            if (!kl_pass_begin(c)) return KILN_OK;
            int64_t dim = tr;
            kl_tensor t = {"", KILN_DTYPE_INT64, 1, &dim, tr, tv, (size_t)tr * 8, NULL, false, NULL, 0};
            kl_value *k;
            char hint[256];
            snprintf(hint, sizeof hint, "%s_target", n->inputs[1]->name);
            KL_TRY(kl_value_new_const(c->g, hint, &t, &k));
            KL_TRY(kl_node_set_input(n, 1, k));
            snprintf(hint, sizeof hint, "%s (Reshape): constant target", kl_node_label(n));
            KL_TRY(kl_pass_commit(c, hint));
            continue;
        }
        if (n->removed || n->domain[0] || !strcmp(n->op_type, "Constant") || n->n_outputs == 0 || n->n_outputs > 8)
            continue;
        bool ok = true, any = false;
        for (size_t k = 0; k < n->n_outputs && ok; k++) {
            if (!n->outputs[k]) continue;
            ok = sym_static(n->outputs[k]);
            any = true;
        }
        if (!ok || !any) continue;
        if (!kl_pass_begin(c)) return KILN_OK;
        char label[256];
        snprintf(label, sizeof label, "%s (%s) -> constant", kl_node_label(n), n->op_type);
        KL_TRY(sym_fold(c, n));
        KL_TRY(kl_pass_commit(c, label));
    }
    return KILN_OK;
}

/* ---- fold_constants ------------------------------------------------------------------------- */

/* Ops never folded: their results are not a function of their inputs. */
static bool nondeterministic(const kl_node *n) {
    return !strncmp(n->op_type, "Random", 6) || !strcmp(n->op_type, "Multinomial") ||
           !strcmp(n->op_type, "Bernoulli") || !strcmp(n->op_type, "Dropout");
}

/* Has n a subgraph attribute? */
static bool has_subgraph(const kl_node *n) {
    for (size_t a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].type == KL_ATTR_GRAPH || n->attrs[a].type == KL_ATTR_GRAPHS) return true;
    return false;
}

/* Bytes of v's tensor when its type is static, else -1. */
static int64_t static_bytes(const kl_value *v) {
    int64_t numel;
    size_t nb;
    if (v->type.kind != KL_TYPE_TENSOR || !v->type.elem || v->type.elem == KILN_DTYPE_STRING ||
        !kl_shape_numel(&v->type.shape, &numel) || !kl_dtype_nbytes(v->type.elem, numel, &nb))
        return -1;
    return (int64_t)nb;
}

/* Run node n (inputs consts[]) on the reference kernels through a one-node
 * model; outs[k] receive references to the results. */
static kiln_status eval_node(kl_pass_ctx *c, kl_node *n, const kl_tensor *const *consts, kl_rt **outs) {
    kl_model tm;
    memset(&tm, 0, sizeof tm);
    kl_arena_init(&tm.arena);
    tm.path = c->m->path;
    tm.ir_version = c->m->ir_version;
    tm.opsets = c->m->opsets;
    tm.n_opsets = c->m->n_opsets;
    kiln_status s = KILN_OK;
    kl_arena *a = &tm.arena;
    kl_graph *g = kl_arena_alloc(a, sizeof *g);
    kl_node *tn = kl_arena_alloc(a, sizeof *tn);
    size_t nv = n->n_inputs + n->n_outputs;
    kl_value *vals = kl_arena_array(a, nv ? nv : 1, sizeof *vals);
    kl_value **vlist = kl_arena_array(a, nv ? nv : 1, sizeof *vlist);
    kl_value **ins = kl_arena_array(a, n->n_inputs ? n->n_inputs : 1, sizeof *ins);
    kl_value **inits = kl_arena_array(a, n->n_inputs ? n->n_inputs : 1, sizeof *inits);
    kl_value **outv = kl_arena_array(a, n->n_outputs ? n->n_outputs : 1, sizeof *outv);
    kl_value **gouts = kl_arena_array(a, n->n_outputs ? n->n_outputs : 1, sizeof *gouts);
    if (!g || !tn || !vals || !vlist || !ins || !inits || !outv || !gouts) {
        s = KILN_ERR_NO_MEMORY;
        goto done;
    }
    g->model = &tm;
    g->name = "fold";
    *tn = *n;
    tn->graph = g;
    tn->index = 0;
    tn->removed = false;
    size_t id = 0;
    for (size_t k = 0; k < n->n_inputs; k++) {
        ins[k] = NULL;
        if (!n->inputs[k]) continue;
        kl_value *v = &vals[id];
        *v = *n->inputs[k];
        v->graph = g;
        v->id = id;
        v->producer = NULL;
        v->flags = KL_VALUE_INITIALIZER;
        v->init = (kl_tensor *)consts[k];
        v->uses = NULL;
        v->n_uses = v->cap_uses = 0;
        vlist[id++] = v;
        ins[k] = v;
        inits[g->n_initializers++] = v;
    }
    for (size_t k = 0; k < n->n_outputs; k++) {
        outv[k] = NULL;
        if (!n->outputs[k]) continue;
        kl_value *v = &vals[id];
        *v = *n->outputs[k];
        v->graph = g;
        v->id = id;
        v->producer = tn;
        v->flags = KL_VALUE_GRAPH_OUTPUT;
        v->uses = NULL;
        v->n_uses = v->cap_uses = 0;
        vlist[id++] = v;
        outv[k] = v;
        gouts[g->n_outputs++] = v;
    }
    tn->inputs = ins;
    tn->outputs = outv;
    g->nodes = &tn;
    g->n_nodes = 1;
    g->values = vlist;
    g->n_values = id;
    g->initializers = inits;
    g->outputs = gouts;
    tm.graph = g;
    kl_program *p = NULL;
    s = kl_program_create(&tm, 1, &p);
    kl_rt *res[8] = {0};
    if (!s) s = kl_program_run(p, NULL, 0, res, g->n_outputs);
    kl_program_free(p);
    for (size_t k = 0, j = 0; k < n->n_outputs; k++) {
        outs[k] = NULL;
        if (n->outputs[k]) outs[k] = s ? NULL : res[j++];
    }
done:
    kl_arena_free(&tm.arena);
    return s;
}

kiln_status kl_pass_fold_constants(kl_pass_ctx *c) {
    kl_graph *g = c->g;
    for (size_t i = 0; i < g->n_nodes; i++) {
        kl_node *n = g->nodes[i];
        if (n->removed || n->n_outputs == 0 || n->n_outputs > 8) continue;
        if (kl_pass_is(n, "Constant")) {
            /* A Constant node becomes an initializer (numeric tensors only). */
            const kl_tensor *t = kl_value_const(c->m, n->outputs[0]);
            if (!t || t->dtype == KILN_DTYPE_STRING || !n->outputs[0]) continue;
            if (!kl_pass_begin(c)) return KILN_OK;
            kl_value *v = n->outputs[0];
            kl_node_remove(n);
            KL_TRY(kl_value_set_const(g, v, t));
            char label[256];
            snprintf(label, sizeof label, "%s (Constant) -> initializer '%s'", kl_node_label(n), v->name);
            KL_TRY(kl_pass_commit(c, label));
            continue;
        }
        if (n->domain[0] || n->n_inputs == 0 || nondeterministic(n) || has_subgraph(n)) continue;
        bool read = false; /* a dead node is remove_dead's */
        for (size_t k = 0; k < n->n_outputs; k++)
            read |= n->outputs[k] && (n->outputs[k]->n_uses || kl_value_escapes(g, n->outputs[k]));
        if (!read) continue;
        const kl_tensor *consts[16];
        bool ok = n->n_inputs <= 16;
        for (size_t k = 0; k < n->n_inputs && ok; k++) {
            consts[k] = n->inputs[k] ? kl_value_const(c->m, n->inputs[k]) : NULL;
            if (n->inputs[k] && !consts[k]) ok = false;
            if (consts[k] && consts[k]->dtype == KILN_DTYPE_STRING) ok = false;
        }
        int64_t need = 0;
        for (size_t k = 0; k < n->n_outputs && ok; k++) {
            if (!n->outputs[k]) continue;
            int64_t b = static_bytes(n->outputs[k]);
            if (b < 0 && n->outputs[k]->type.kind != KL_TYPE_TENSOR && n->outputs[k]->type.kind != KL_TYPE_UNKNOWN)
                ok = false;
            need += b > 0 ? b : 0;
        }
        if (!ok || need > (int64_t)c->fold_budget) continue;
        kl_rt *outs[8] = {0};
        kiln_status s = eval_node(c, n, consts, outs);
        if (s == KILN_ERR_NO_MEMORY) return s;
        if (s) { /* leave it to run time, where the same error will name the node */
            kl_error_clear();
            continue;
        }
        size_t bytes = 0;
        for (size_t k = 0; k < n->n_outputs; k++) {
            if (!n->outputs[k]) continue;
            if (!outs[k] || outs[k]->kind != KL_RT_TENSOR || outs[k]->dtype == KILN_DTYPE_STRING) ok = false;
            else bytes += outs[k]->nbytes;
        }
        if (ok && bytes > c->fold_budget) ok = false;
        if (ok && !kl_pass_begin(c)) ok = false;
        if (ok) {
            kl_node_remove(n);
            for (size_t k = 0; k < n->n_outputs && !s; k++) {
                if (!n->outputs[k]) continue;
                kl_rt *r = outs[k];
                kl_tensor t = {"", r->dtype, r->rank, r->dims, r->count, r->data, r->nbytes, NULL, false, NULL, 0};
                s = kl_value_set_const(g, n->outputs[k], &t);
            }
            c->fold_budget -= bytes;
        }
        for (size_t k = 0; k < n->n_outputs; k++) kl_rt_unref(outs[k]);
        KL_TRY(s);
        if (c->stopped) return KILN_OK;
        if (!ok) continue;
        char label[256];
        snprintf(label, sizeof label, "%s (%s), %zu bytes", kl_node_label(n), n->op_type, bytes);
        KL_TRY(kl_pass_commit(c, label));
    }
    return KILN_OK;
}

/* ---- remove_dead ------------------------------------------------------------------------------ */

/* Is every output of n unread and internal? */
static bool node_dead(const kl_graph *g, const kl_node *n) {
    for (size_t k = 0; k < n->n_outputs; k++) {
        const kl_value *v = n->outputs[k];
        if (v && (v->n_uses || kl_value_escapes(g, v))) return false;
    }
    return true;
}

kiln_status kl_pass_remove_dead(kl_pass_ctx *c) {
    kl_graph *g = c->g;
    for (size_t i = g->n_nodes; i-- > 0;) { /* backwards: a dead chain goes in one sweep */
        kl_node *n = g->nodes[i];
        if (n->removed || !node_dead(g, n)) continue;
        if (!kl_pass_begin(c)) return KILN_OK;
        char label[256];
        snprintf(label, sizeof label, "%s (%s)", kl_node_label(n), n->op_type);
        kl_node_remove(n);
        KL_TRY(kl_pass_commit(c, label));
    }
    size_t n_dead = 0, bytes = 0;
    for (size_t i = 0; i < g->n_initializers; i++) {
        kl_value *v = g->initializers[i];
        if (v->n_uses || (v->flags & (KL_VALUE_GRAPH_INPUT | KL_VALUE_GRAPH_OUTPUT)) || kl_value_escapes(g, v))
            continue;
        n_dead++;
    }
    if (!n_dead || !kl_pass_begin(c)) return KILN_OK;
    for (size_t i = 0; i < g->n_initializers; i++) {
        kl_value *v = g->initializers[i];
        if (v->n_uses || (v->flags & (KL_VALUE_GRAPH_INPUT | KL_VALUE_GRAPH_OUTPUT)) || kl_value_escapes(g, v))
            continue;
        bytes += v->init ? v->init->nbytes : 0;
        v->flags &= ~(uint32_t)KL_VALUE_INITIALIZER;
        v->init = NULL;
        v->sparse_init = NULL;
    }
    /* The list keeps only flagged initializers. */
    size_t j = 0;
    for (size_t i = 0; i < g->n_initializers; i++)
        if (g->initializers[i]->flags & KL_VALUE_INITIALIZER) g->initializers[j++] = g->initializers[i];
    g->n_initializers = j;
    char label[128];
    snprintf(label, sizeof label, "%zu unused initializers (%zu bytes)", n_dead, bytes);
    return kl_pass_commit(c, label);
}
