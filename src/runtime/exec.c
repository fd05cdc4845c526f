/* The CPU run path: plans per graph, frames of values, kernels in order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fpenv.h"
#include "plan/plan.h"
#include "runtime/exec.h"

/* Plan of one graph. */
typedef struct kl_gprogram {
    const kl_graph *g;
    const kl_kernel_def **kernels; /* per node */
    kl_rt **consts;                /* per value id: initializer tensor, or NULL */
    size_t **release;              /* per node: value ids to release after it */
    size_t *n_release;
} kl_gprogram;

struct kl_program {
    const kl_model *m;
    int threads;
    unsigned flags;
    kl_gprogram **graphs;
    size_t n_graphs;
    kl_kernel_fn *tactic_run;    /* per main-graph node: chosen tactic, or NULL */
    const void **tactic_state;
    bool *tactic_writes_all;
};

/* Values of one running graph; parent is the frame of the enclosing graph. */
typedef struct kl_frame {
    const kl_gprogram *gp;
    kl_rt **slots;
    struct kl_frame *parent;
} kl_frame;

/* The scratch of the node running on this thread (kl_scratch_tls_alloc). */
static _Thread_local kl_scratch *kl_tls_scratch;

typedef struct kl_exec {
    kl_program *plan;
    kl_frame *frame;
    kl_run_ctx *rc;       /* context memory for the main frame, or NULL */
    kl_scratch *scratch;  /* scratch of the running node */
} kl_exec;

static kl_gprogram *kl_program_graph(const kl_program *p, const kl_graph *g) {
    for (size_t i = 0; i < p->n_graphs; i++)
        if (p->graphs[i]->g == g) return p->graphs[i];
    return NULL;
}

/* Mark, for every value of g read inside subgraph sg (recursively), a use
 * at g's node `at`. */
static void kl_mark_subgraph_uses(const kl_graph *g, const kl_graph *sg, size_t at, size_t *last) {
    for (size_t k = 0; k < sg->n_outputs; k++) { /* a subgraph may return an outer value directly */
        const kl_value *v = sg->outputs[k];
        if (v && v->graph == g && last[v->id] < at + 1) last[v->id] = at + 1;
    }
    for (size_t i = 0; i < sg->n_nodes; i++) {
        const kl_node *n = sg->nodes[i];
        for (size_t k = 0; k < n->n_inputs; k++) {
            const kl_value *v = n->inputs[k];
            if (v && v->graph == g && last[v->id] < at + 1) last[v->id] = at + 1;
        }
        for (size_t a = 0; a < n->n_attrs; a++) {
            const kl_attr *at2 = &n->attrs[a];
            if (at2->type == KL_ATTR_GRAPH && at2->g) kl_mark_subgraph_uses(g, at2->g, at, last);
            if (at2->type == KL_ATTR_GRAPHS)
                for (size_t j = 0; j < at2->n; j++) kl_mark_subgraph_uses(g, at2->graphs[j], at, last);
        }
    }
}

/* Runtime value of an initializer: a view of the model's data when asked
 * and the data is 64-byte aligned (engine weights), else an aligned copy. */
static kiln_status kl_const_rt(const kl_value *v, unsigned flags, kl_rt **out) {
    const kl_tensor *t = v->init;
    if (!t) return kl_errorf(KILN_ERR_UNSUPPORTED, "initializer '%s': sparse initializers cannot run yet", v->name);
    if ((flags & KL_PROGRAM_CONST_VIEWS) && t->dtype != KILN_DTYPE_STRING && t->data && t->nbytes &&
        ((uintptr_t)t->data % 64) == 0)
        return kl_rt_tensor_view(t->dtype, t->rank, t->dims, (void *)t->data, t->nbytes, out);
    return kl_rt_from_tensor(t, out);
}

static kiln_status kl_program_add_graph(kl_program *p, const kl_graph *g);

static kiln_status kl_program_add_subgraphs(kl_program *p, const kl_node *n) {
    for (size_t a = 0; a < n->n_attrs; a++) {
        const kl_attr *at = &n->attrs[a];
        if (at->type == KL_ATTR_GRAPH && at->g) KL_TRY(kl_program_add_graph(p, at->g));
        if (at->type == KL_ATTR_GRAPHS)
            for (size_t j = 0; j < at->n; j++) KL_TRY(kl_program_add_graph(p, at->graphs[j]));
    }
    return KILN_OK;
}

static kiln_status kl_program_add_graph(kl_program *p, const kl_graph *g) {
    kl_gprogram *gp = kl_calloc(1, sizeof *gp);
    if (!gp) return KILN_ERR_NO_MEMORY;
    kl_gprogram **graphs = kl_realloc_array(p->graphs, p->n_graphs + 1, sizeof *graphs);
    if (!graphs) {
        kl_free(gp);
        return KILN_ERR_NO_MEMORY;
    }
    p->graphs = graphs;
    p->graphs[p->n_graphs++] = gp;
    gp->g = g;
    size_t nn = g->n_nodes ? g->n_nodes : 1, nv = g->n_values ? g->n_values : 1;
    gp->kernels = kl_calloc(nn, sizeof *gp->kernels);
    gp->consts = kl_calloc(nv, sizeof *gp->consts);
    gp->release = kl_calloc(nn, sizeof *gp->release);
    gp->n_release = kl_calloc(nn, sizeof *gp->n_release);
    size_t *last = kl_calloc(nv, sizeof *last); /* node index + 1 of last use; 0 = none */
    if (!gp->kernels || !gp->consts || !gp->release || !gp->n_release || !last) {
        kl_free(last);
        return KILN_ERR_NO_MEMORY;
    }
    kiln_status s = KILN_OK;
    for (size_t i = 0; i < g->n_initializers && !s; i++) {
        const kl_value *v = g->initializers[i];
        s = kl_const_rt(v, p->flags, &gp->consts[v->id]);
    }
    for (size_t i = 0; i < g->n_nodes && !s; i++) {
        const kl_node *n = g->nodes[i];
        kiln_dtype t0 = n->n_inputs && n->inputs[0] ? n->inputs[0]->type.elem : KILN_DTYPE_UNDEFINED;
        gp->kernels[i] = kl_kernel_find(n, t0);
        if (!gp->kernels[i] && !kl_kernel_exists(n->domain, n->op_type, n->opset))
            s = kl_errorf(KILN_ERR_UNSUPPORTED, "node %zu '%s' (%s%s%s, opset %lld): no CPU kernel for this operator yet",
                          n->index, n->name, n->domain, n->domain[0] ? "." : "", n->op_type, (long long)n->opset);
        for (size_t k = 0; k < n->n_inputs; k++) {
            const kl_value *v = n->inputs[k];
            if (v && v->graph == g) last[v->id] = i + 1;
        }
        for (size_t k = 0; k < n->n_outputs; k++) {
            const kl_value *v = n->outputs[k];
            if (v && v->graph == g && last[v->id] < i + 1) last[v->id] = i + 1;
        }
        for (size_t a = 0; a < n->n_attrs; a++) {
            const kl_attr *at = &n->attrs[a];
            if (at->type == KL_ATTR_GRAPH && at->g) kl_mark_subgraph_uses(g, at->g, i, last);
            if (at->type == KL_ATTR_GRAPHS)
                for (size_t j = 0; j < at->n; j++) kl_mark_subgraph_uses(g, at->graphs[j], i, last);
        }
        if (!s) s = kl_program_add_subgraphs(p, n);
    }
    /* Release lists: intermediates (not graph outputs) after their last use. */
    for (size_t id = 0; id < g->n_values && !s; id++) {
        const kl_value *v = g->values[id];
        if (!last[id] || (v->flags & KL_VALUE_GRAPH_OUTPUT)) continue;
        size_t at = last[id] - 1;
        size_t *r = kl_realloc_array(gp->release[at], gp->n_release[at] + 1, sizeof *r);
        if (!r) {
            s = KILN_ERR_NO_MEMORY;
            break;
        }
        gp->release[at] = r;
        r[gp->n_release[at]++] = id;
    }
    kl_free(last);
    return s;
}

static void kl_gprogram_free(kl_gprogram *gp) {
    if (!gp) return;
    for (size_t i = 0; i < gp->g->n_values && gp->consts; i++) kl_rt_unref(gp->consts[i]);
    for (size_t i = 0; i < gp->g->n_nodes && gp->release; i++) kl_free(gp->release[i]);
    kl_free(gp->kernels);
    kl_free(gp->consts);
    kl_free(gp->release);
    kl_free(gp->n_release);
    kl_free(gp);
}

void kl_program_free(kl_program *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_graphs; i++) kl_gprogram_free(p->graphs[i]);
    kl_free(p->graphs);
    kl_free(p->tactic_run);
    kl_free(p->tactic_state);
    kl_free(p->tactic_writes_all);
    kl_free(p);
}

kiln_status kl_program_create(const kl_model *m, int threads, kl_program **out) {
    return kl_program_create_ex(m, threads, 0, out);
}

void kl_program_set_tactic(kl_program *p, size_t index, kl_kernel_fn run, const void *state, bool writes_all) {
    if (index >= p->m->graph->n_nodes) return;
    p->tactic_run[index] = run;
    p->tactic_state[index] = state;
    p->tactic_writes_all[index] = writes_all;
}

kiln_status kl_program_create_ex(const kl_model *m, int threads, unsigned flags, kl_program **out) {
    kl_program *p = kl_calloc(1, sizeof *p);
    if (!p) return KILN_ERR_NO_MEMORY;
    p->m = m;
    p->threads = threads;
    p->flags = flags;
    size_t nn = m->graph->n_nodes ? m->graph->n_nodes : 1;
    p->tactic_run = kl_calloc(nn, sizeof *p->tactic_run);
    p->tactic_state = kl_calloc(nn, sizeof *p->tactic_state);
    p->tactic_writes_all = kl_calloc(nn, sizeof *p->tactic_writes_all);
    kiln_status s = p->tactic_run && p->tactic_state && p->tactic_writes_all ? kl_program_add_graph(p, m->graph) : KILN_ERR_NO_MEMORY;
    if (s) {
        kl_program_free(p);
        return s;
    }
    *out = p;
    return KILN_OK;
}

static void kl_missing_walk(const kl_graph *g, kl_missing_fn fn, void *user) {
    for (size_t i = 0; i < g->n_nodes; i++) {
        const kl_node *n = g->nodes[i];
        if (!kl_kernel_exists(n->domain, n->op_type, n->opset)) fn(n, user);
        for (size_t a = 0; a < n->n_attrs; a++) {
            const kl_attr *at = &n->attrs[a];
            if (at->type == KL_ATTR_GRAPH && at->g) kl_missing_walk(at->g, fn, user);
            if (at->type == KL_ATTR_GRAPHS)
                for (size_t j = 0; j < at->n; j++) kl_missing_walk(at->graphs[j], fn, user);
        }
    }
}

void kl_program_list_missing(const kl_model *m, kl_missing_fn fn, void *user) { kl_missing_walk(m->graph, fn, user); }

/* ---- running ------------------------------------------------------------------------ */

static kl_rt **kl_frame_slot(kl_frame *f, const kl_value *v) {
    for (; f; f = f->parent)
        if (f->gp->g == v->graph) return &f->slots[v->id];
    return NULL;
}


static kiln_status kl_run_node(kl_exec *ex, const kl_gprogram *gp, size_t idx) {
    const kl_node *n = gp->g->nodes[idx];
    kl_rt *in_buf[16], *out_buf[16];
    kl_rt **in = n->n_inputs <= 16 ? in_buf : kl_calloc(n->n_inputs, sizeof *in);
    kl_rt **outs = n->n_outputs <= 16 ? out_buf : kl_calloc(n->n_outputs, sizeof *outs);
    kiln_status s = KILN_OK;
    if (!in || !outs) {
        s = KILN_ERR_NO_MEMORY;
        goto done;
    }
    for (size_t k = 0; k < n->n_outputs; k++) outs[k] = NULL;
    for (size_t k = 0; k < n->n_inputs; k++) {
        in[k] = NULL;
        const kl_value *v = n->inputs[k];
        if (!v) continue;
        kl_rt **slot = kl_frame_slot(ex->frame, v);
        if (!slot || !*slot) {
            s = kl_errorf(KILN_ERR_INVALID_MODEL, "input %zu '%s' has no value (never produced)", k, v->name);
            goto done;
        }
        in[k] = *slot;
    }
    const kl_kernel_def *kd = gp->kernels[idx];
    kiln_dtype t0 = n->n_inputs && in[0] && in[0]->kind == KL_RT_TENSOR ? in[0]->dtype : KILN_DTYPE_UNDEFINED;
    if (!kd || (kd->types && t0 != KILN_DTYPE_UNDEFINED && !(kd->types & (1ull << t0)))) {
        kd = kl_kernel_find(n, t0);
        if (!kd) {
            s = kl_errorf(KILN_ERR_UNSUPPORTED, "no CPU kernel for %s with input type %s", n->op_type,
                          kiln_dtype_name(t0));
            goto done;
        }
    }
    kl_kernel_fn run = kd->run;
    const void *state = NULL;
    bool main_frame = ex->frame->parent == NULL && gp->g == ex->plan->m->graph, writes_all = false;
    if (main_frame && ex->plan->tactic_run[idx]) {
        run = ex->plan->tactic_run[idx];
        state = ex->plan->tactic_state[idx];
        writes_all = ex->plan->tactic_writes_all[idx];
    }
    kl_kctx c = {n, in, n->n_inputs, outs, n->n_outputs, ex, ex->plan->threads, state, ex->rc ? ex->rc->pool : NULL,
                 writes_all};
    struct timespec ts0, ts1;
    bool timing = main_frame && ex->rc && ex->rc->profiling;
    if (timing) clock_gettime(CLOCK_MONOTONIC, &ts0);
    kl_scratch *prev_tls = kl_tls_scratch;
    kl_tls_scratch = ex->scratch;
    s = run(&c);
    kl_tls_scratch = prev_tls;
    if (timing) {
        clock_gettime(CLOCK_MONOTONIC, &ts1);
        ex->rc->node_ms[idx] += (double)(ts1.tv_sec - ts0.tv_sec) * 1e3 + (double)(ts1.tv_nsec - ts0.tv_nsec) * 1e-6;
        ex->rc->node_runs[idx]++;
    }
    for (size_t k = 0; ex->scratch && k < ex->scratch->n; k++) ex->scratch->chunks[k].used = 0;
    if (s) goto done;
    for (size_t k = 0; k < n->n_outputs; k++) {
        const kl_value *v = n->outputs[k];
        if (!v) continue;
        if (!outs[k]) {
            s = kl_errorf(KILN_ERR_INTERNAL, "kernel did not produce output %zu '%s'", k, v->name);
            goto done;
        }
        kl_rt **slot = kl_frame_slot(ex->frame, v);
        if (!slot) {
            s = kl_errorf(KILN_ERR_INTERNAL, "output '%s' has no slot", v->name);
            goto done;
        }
        kl_rt_unref(*slot);
        *slot = outs[k];
        outs[k] = NULL;
    }
done:
    if (outs)
        for (size_t k = 0; k < n->n_outputs; k++) kl_rt_unref(outs[k]);
    if (in != in_buf) kl_free(in);
    if (outs != out_buf) kl_free(outs);
    if (s) {
        const char *g = gp->g->depth ? " in a subgraph" : "";
        return kl_error_context(s, "node %zu '%s' (%s)%s: ", n->index, n->name, n->op_type, g);
    }
    return KILN_OK;
}

/* Run graph program gp in a new frame under `parent`: inputs[i] (NULL = keep
 * the initializer default) binds to value input_vals[i]; outputs[i] gets a
 * reference to g->outputs[i].  With `slots` (the context's, for the main
 * graph) the frame uses them instead of a fresh array. */
static kiln_status kl_run_graph(kl_exec *ex, const kl_gprogram *gp, kl_frame *parent, kl_rt *const *inputs,
                                const kl_value *const *input_vals, size_t n_inputs, kl_rt **outputs, size_t n_outputs,
                                kl_rt **slots) {
    const kl_graph *g = gp->g;
    kl_frame f = {gp, slots ? slots : kl_calloc(g->n_values ? g->n_values : 1, sizeof(kl_rt *)), parent};
    if (!f.slots) return KILN_ERR_NO_MEMORY;
    for (size_t i = 0; i < g->n_values; i++) f.slots[i] = kl_rt_ref(gp->consts[i]);
    for (size_t i = 0; i < n_inputs; i++) {
        if (!inputs[i]) continue;
        kl_rt **slot = &f.slots[input_vals[i]->id];
        kl_rt_unref(*slot);
        *slot = kl_rt_ref(inputs[i]);
    }
    kl_frame *saved = ex->frame;
    ex->frame = &f;
    kiln_status s = KILN_OK;
    /* a part of the main graph (kl_run_ctx's node range) */
    kl_run_ctx *rc = slots && ex->rc && slots == ex->rc->slots ? ex->rc : NULL;
    size_t lo = rc ? rc->node_lo : 0, hi = rc && rc->node_hi ? rc->node_hi : g->n_nodes;
    if (rc && rc->preset_id < g->n_values && rc->preset) {
        kl_rt_unref(f.slots[rc->preset_id]);
        f.slots[rc->preset_id] = kl_rt_ref(rc->preset);
    }
    if (hi < g->n_nodes) { /* no graph output yet */
        for (size_t i = 0; i < n_outputs; i++) outputs[i] = NULL;
        n_outputs = 0;
    }
    for (size_t i = lo; i < hi && !s; i++) {
        s = kl_run_node(ex, gp, i);
        for (size_t k = 0; !s && k < gp->n_release[i]; k++) {
            size_t id = gp->release[i][k];
            kl_rt_unref(f.slots[id]);
            f.slots[id] = NULL;
        }
    }
    ex->frame = saved;
    for (size_t i = 0; i < n_outputs; i++) outputs[i] = NULL;
    for (size_t i = 0; !s && i < n_outputs && i < g->n_outputs; i++) {
        const kl_value *v = g->outputs[i];
        kl_rt **slot = kl_frame_slot(&f, v);
        if (!slot || !*slot) {
            s = kl_errorf(KILN_ERR_INVALID_MODEL, "graph output '%s' was not produced", v->name);
            break;
        }
        outputs[i] = kl_rt_ref(*slot);
    }
    if (s)
        for (size_t i = 0; i < n_outputs; i++) {
            kl_rt_unref(outputs[i]);
            outputs[i] = NULL;
        }
    if (!s && rc && rc->keep_id < g->n_values) rc->kept = kl_rt_ref(f.slots[rc->keep_id]);
    for (size_t i = 0; i < g->n_values; i++) {
        kl_rt_unref(f.slots[i]);
        f.slots[i] = NULL;
    }
    if (!slots) kl_free(f.slots);
    return s;
}

static kiln_status kl_program_check_inputs(const kl_program *p, kl_rt *const *inputs, size_t n_inputs) {
    const kl_graph *g = p->m->graph;
    if (n_inputs != g->n_inputs)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%zu inputs given, the graph declares %zu", n_inputs, g->n_inputs);
    for (size_t i = 0; i < n_inputs; i++)
        if (!inputs[i] && !(g->inputs[i]->flags & KL_VALUE_INITIALIZER))
            return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "input '%s' is not given", g->inputs[i]->name);
    return KILN_OK;
}

kiln_status kl_program_run(kl_program *p, kl_rt *const *inputs, size_t n_inputs, kl_rt **outputs, size_t n_outputs) {
    KL_TRY(kl_program_check_inputs(p, inputs, n_inputs));
    const kl_graph *g = p->m->graph;
    kl_scratch scratch = {0};
    kl_exec ex = {p, NULL, NULL, &scratch};
    kiln_status s = kl_run_graph(&ex, p->graphs[0], NULL, inputs, (const kl_value *const *)g->inputs, n_inputs, outputs,
                                 n_outputs, NULL);
    kl_scratch_free(&scratch);
    return s;
}

kiln_status kl_program_run_ctx(kl_program *p, kl_run_ctx *rc, kl_rt *const *inputs, size_t n_inputs,
                               kl_rt **outputs, size_t n_outputs) {
    KL_TRY(kl_program_check_inputs(p, inputs, n_inputs));
    const kl_graph *g = p->m->graph;
    kl_exec ex = {p, NULL, rc, &rc->scratch};
    rc->heap_tensors = 0;
    unsigned fp = kl_fp_enter((p->flags & KL_PROGRAM_FLUSH_DENORMALS) != 0);
    kiln_status s = kl_run_graph(&ex, p->graphs[0], NULL, inputs, (const kl_value *const *)g->inputs, n_inputs,
                                 outputs, n_outputs, rc->slots);
    kl_fp_leave(fp);
    return s;
}

kiln_status kl_program_run_node(kl_program *p, size_t idx, kl_rt *const *inputs, kl_kernel_fn run, const void *state) {
    return kl_program_run_node_out(p, idx, inputs, run, state, NULL);
}

kiln_status kl_program_run_node_out(kl_program *p, size_t idx, kl_rt *const *inputs, kl_kernel_fn run,
                                    const void *state, kl_rt **outputs) {
    const kl_graph *g = p->m->graph;
    if (idx >= g->n_nodes) return kl_errorf(KILN_ERR_INTERNAL, "node %zu out of range", idx);
    const kl_node *n = g->nodes[idx];
    kl_rt *outs[16] = {0};
    if (n->n_outputs > 16) return kl_errorf(KILN_ERR_UNSUPPORTED, "node '%s' has too many outputs to time", n->name);
    if (!run) {
        const kl_kernel_def *kd = p->graphs[0]->kernels[idx];
        kiln_dtype t0 = n->n_inputs && inputs[0] ? inputs[0]->dtype : KILN_DTYPE_UNDEFINED;
        if (!kd || (kd->types && t0 && !(kd->types & (1ull << t0)))) kd = kl_kernel_find(n, t0);
        if (!kd) return kl_errorf(KILN_ERR_UNSUPPORTED, "no kernel for node '%s'", n->name);
        run = kd->run;
    }
    kl_frame f = {p->graphs[0], NULL, NULL};
    kl_scratch scratch = {0};
    kl_exec ex = {p, &f, NULL, &scratch};
    kl_kctx c = {n, (kl_rt **)inputs, n->n_inputs, outs, n->n_outputs, &ex, p->threads, state, NULL, false};
    kiln_status s = run(&c);
    for (size_t k = 0; k < n->n_outputs; k++) {
        if (outputs && !s) outputs[k] = outs[k];
        else kl_rt_unref(outs[k]);
    }
    kl_scratch_free(&scratch);
    if (s) return kl_error_context(s, "node '%s' (%s): ", kl_node_label(n), n->op_type);
    return KILN_OK;
}

kiln_status kl_exec_subgraph(kl_kctx *c, const kl_graph *g, kl_rt *const *inputs, size_t n_inputs, kl_rt **outputs,
                             size_t n_outputs) {
    kl_exec *ex = c->exec;
    const kl_gprogram *gp = kl_program_graph(ex->plan, g);
    if (!gp) return kl_errorf(KILN_ERR_INTERNAL, "subgraph has no plan");
    if (n_inputs > g->n_inputs)
        return kl_errorf(KILN_ERR_INVALID_MODEL, "subgraph takes %zu inputs, %zu given", g->n_inputs, n_inputs);
    /* The subgraph's nodes get their own scratch: the caller's node may
     * still hold scratch pointers. */
    kl_scratch scratch = {0}, *saved = ex->scratch;
    ex->scratch = &scratch;
    kiln_status s = kl_run_graph(ex, gp, ex->frame, inputs, (const kl_value *const *)g->inputs, n_inputs, outputs,
                                 n_outputs, NULL);
    ex->scratch = saved;
    kl_scratch_free(&scratch);
    return s;
}

/* ---- kernel context helpers ------------------------------------------------------------ */

bool kl_kctx_want(const kl_kctx *c, size_t i) { return i < c->node->n_outputs && c->node->outputs[i] != NULL; }

/* A joined Concat's output (KL_MEM_JOINED) goes to its planned block only
 * if every input was produced into its slab there at this run's sizes
 * (the Concat then copies nothing); else it goes elsewhere and the inputs
 * are copied. */
static bool kl_joined_in_place(const kl_kctx *c, int rank, const int64_t *dims, size_t nbytes) {
    const kl_run_ctx *rc = c->exec->rc;
    const kl_value *o = c->node->outputs[0];
    size_t at = 0;
    if (c->n_in != c->node->n_inputs || rank < 1) return false;
    int64_t ax = kl_node_attr_int(c->node, "axis", 1);
    if (ax < 0) ax += rank;
    if (ax < 0 || ax >= rank) return false;
    for (int64_t k = 0; k < ax; k++) /* the inputs are contiguous slabs only if nothing lies outside the axis */
        if (dims[k] != 1) return false;
    for (size_t k = 0; k < c->n_in; k++) {
        const kl_value *x = c->node->inputs[k];
        const kl_rt *t = c->in[k];
        if (!x || !t || rc->offset[x->id] < 0 || rc->inplace[x->id] != KL_MEM_SLAB ||
            (const uint8_t *)t->data != rc->arena + rc->offset[x->id] ||
            rc->offset[x->id] - rc->offset[o->id] != (int64_t)at)
            return false;
        at += t->nbytes;
    }
    return at == nbytes;
}

/* Place output i of a main-graph node where the context says: the caller's
 * buffer for a graph output, else its planned spot in the arena; NULL when
 * neither fits (the tensor then goes on the heap). */
static kl_rt *kl_kctx_place(kl_kctx *c, size_t i, kiln_dtype dtype, int rank, const int64_t *dims) {
    kl_exec *ex = c->exec;
    kl_run_ctx *rc = ex ? ex->rc : NULL;
    if (!rc || ex->frame->parent || ex->frame->gp->g != ex->plan->m->graph || i >= c->node->n_outputs) return NULL;
    const kl_value *v = c->node->outputs[i];
    if (!v || dtype == KILN_DTYPE_STRING) return NULL;
    int64_t count = 1;
    size_t nbytes;
    for (int k = 0; k < rank; k++)
        if (dims[k] < 0 || kl_mul_i64(count, dims[k], &count)) return NULL;
    if (!kl_dtype_nbytes(dtype, count, &nbytes)) return NULL;
    void *mem = NULL;
    bool zero = true;
    if (rc->bound && rc->bound[v->id] && rc->bound_bytes[v->id] == nbytes) {
        mem = rc->bound[v->id];
    } else if (rc->arena && rc->offset[v->id] >= 0 && nbytes <= rc->capacity[v->id] &&
               (rc->inplace[v->id] != KL_MEM_JOINED || kl_joined_in_place(c, rank, dims, nbytes))) {
        mem = rc->arena + rc->offset[v->id];
        zero = rc->inplace[v->id] == KL_MEM_OWN || rc->inplace[v->id] == KL_MEM_SLAB;
    }
    kl_rt *h = &rc->headers[v->id];
    if (!mem || __atomic_load_n(&h->refs, __ATOMIC_RELAXED) > 0) return NULL;
    if (kl_rt_view_init(h, dtype, rank, dims, mem, nbytes)) {
        kl_error_clear();
        return NULL;
    }
    if (zero && nbytes && !c->writes_all) memset(mem, 0, nbytes);
    return h;
}

kiln_status kl_kctx_output(kl_kctx *c, size_t i, kiln_dtype dtype, int rank, const int64_t *dims, kl_rt **out) {
    if (i >= c->n_out) return kl_errorf(KILN_ERR_INTERNAL, "output %zu out of range", i);
    kl_run_ctx *rc = c->exec ? c->exec->rc : NULL;
    if (rc && rc->seen_bytes && !c->exec->frame->parent && c->exec->frame->gp->g == c->exec->plan->m->graph &&
        i < c->node->n_outputs && c->node->outputs[i] && dtype != KILN_DTYPE_STRING) {
        /* the size this value needs, for the context's own memory plan */
        int64_t count = 1;
        size_t nbytes = 0;
        bool ok = true;
        for (int k = 0; k < rank && ok; k++) ok = dims[k] >= 0 && !kl_mul_i64(count, dims[k], &count);
        if (ok && kl_dtype_nbytes(dtype, count, &nbytes)) {
            size_t id = c->node->outputs[i]->id, *seen = &rc->seen_bytes[id];
            if (*seen == SIZE_MAX || nbytes > *seen || rc->seen_dtype[id] != dtype) {
                *seen = *seen == SIZE_MAX || rc->seen_dtype[id] != dtype ? nbytes : KL_MAX(*seen, nbytes);
                rc->seen_dtype[id] = dtype;
                if (rc->seen_rank && rank <= KILN_MAX_RANK) { /* the shape at that size */
                    rc->seen_rank[id] = rank;
                    memcpy(rc->seen_dims + id * KILN_MAX_RANK, dims, (size_t)rank * sizeof *dims);
                }
                *rc->seen_grew = true;
            }
        }
    }
    kl_rt *v = kl_kctx_place(c, i, dtype, rank, dims);
    if (!v) {
        /* off the arena (no plan: dynamic shapes without a profile): a
         * tactic that writes every element gets its tensor unzeroed, as
         * planned outputs are (kl_kctx_place) */
        KL_TRY(c->writes_all ? kl_rt_tensor_uninit(dtype, rank, dims, &v) : kl_rt_tensor(dtype, rank, dims, &v));
        if (c->exec && c->exec->rc && !c->exec->frame->parent) c->exec->rc->heap_tensors++;
    }
    kl_rt_unref(c->out[i]);
    c->out[i] = v;
    *out = v;
    return KILN_OK;
}

kiln_status kl_kctx_set_output(kl_kctx *c, size_t i, kl_rt *v) {
    if (i >= c->n_out) {
        kl_rt_unref(v);
        return kl_errorf(KILN_ERR_INTERNAL, "output %zu out of range", i);
    }
    kl_rt_unref(c->out[i]);
    c->out[i] = v;
    return KILN_OK;
}

kiln_status kl_kctx_fail(kl_kctx *c, kiln_status status, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return kl_errorf(status, "%s", buf);
}

/* ---- scratch ---------------------------------------------------------------------------- */

void kl_scratch_free(kl_scratch *s) {
    for (size_t i = 0; s && i < s->n; i++) kl_free(s->chunks[i].raw);
    if (s) {
        kl_free(s->chunks);
        memset(s, 0, sizeof *s);
    }
}

static void *kl_scratch_alloc(kl_scratch *s, size_t bytes);

void *kl_kctx_scratch(kl_kctx *c, size_t bytes) {
    kl_scratch *s = c->exec ? c->exec->scratch : NULL;
    if (!s) {
        kl_errorf(KILN_ERR_INTERNAL, "scratch memory asked outside a run");
        return NULL;
    }
    return kl_scratch_alloc(s, bytes);
}

void *kl_scratch_tls_alloc(size_t bytes) {
    if (!kl_tls_scratch) return NULL;
    void *p = kl_scratch_alloc(kl_tls_scratch, bytes);
    if (!p) kl_error_clear();
    return p;
}

bool kl_scratch_tls_owns(const void *p) {
    const kl_scratch *s = kl_tls_scratch;
    for (size_t i = 0; s && p && i < s->n; i++)
        if ((const uint8_t *)p >= s->chunks[i].base && (const uint8_t *)p < s->chunks[i].base + s->chunks[i].size)
            return true;
    return false;
}

static void *kl_scratch_alloc(kl_scratch *s, size_t bytes) {
    size_t need;
    if (kl_add_size(bytes ? bytes : 1, 63, &need)) {
        kl_errorf(KILN_ERR_NO_MEMORY, "scratch of %zu bytes is too large", bytes);
        return NULL;
    }
    need &= ~(size_t)63;
    for (size_t i = 0; i < s->n; i++) {
        kl_scratch_chunk *ch = &s->chunks[i];
        if (ch->size - ch->used >= need) {
            void *p = ch->base + ch->used;
            ch->used += need;
            return p;
        }
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        kl_scratch_chunk *nc = kl_realloc_array(s->chunks, cap, sizeof *nc);
        if (!nc) return NULL;
        s->chunks = nc;
        s->cap = cap;
    }
    size_t size = KL_MAX(need, (size_t)1 << 20);
    /* 64-byte alignment: kl_malloc gives 16, so over-allocate and align. */
    uint8_t *raw = kl_malloc(size + 64);
    if (!raw) return NULL;
    kl_scratch_chunk *ch = &s->chunks[s->n++];
    ch->raw = raw;
    ch->base = raw + (64 - ((uintptr_t)raw % 64)) % 64;
    ch->size = size;
    ch->used = need;
    return ch->base;
}
