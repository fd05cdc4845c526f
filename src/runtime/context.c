/* kiln_context: per-thread execution state of an engine (arena sized for
 * the largest profile, pooled tensor headers, scratch), input validation
 * against the model and the profile, runs with outputs written in place. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "cpu/threadpool.h"
#include "runtime/engine.h"
#ifdef KILN_HAVE_CUDA
#include "cuda/cuda.h"
#endif

/* Samples per slice of a split batch (the context's chunk) unless
 * kl_graph_batch_chunk says 2: one image of mobilenet_v2 keeps its largest
 * intermediates (4.8 MB) in the L3 cache, eight do not. */
#define KL_BATCH_CHUNK 1
/* A split batch's tail (kl_graph_batch_tail) is where every map takes at
 * most this per sample (mobilenet_v2: the 7x7 stage and the classifier,
 * whose weights are most of the model's): it runs on all the part's
 * samples at once. */
#define KL_BATCH_TAIL_BYTES ((size_t)256 * 1024)

/* ---- validation (shared with sessions) ------------------------------------------------ */

/* A symbolic dimension bound by a caller's tensor during validation. */
struct kl_symbind {
    const char *param;
    int64_t value;
    const char *by; /* name of the input that set it */
};

typedef struct kl_symtab {
    kl_symbind *items;
    size_t n, cap;
} kl_symtab;

/* Write "'a', 'b'" (the names of `vals`, skipping NULL) into buf. */
static const char *kl_name_list(kl_value *const *vals, size_t n, char *buf, size_t size) {
    size_t pos = 0, shown = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (!vals[i]) continue;
        if (pos + strlen(vals[i]->name) + 8 > size - 16) {
            snprintf(buf + pos, size - pos, ", ... (%zu more)", n - shown);
            return buf;
        }
        int w = snprintf(buf + pos, size - pos, "%s'%s'", shown ? ", " : "", vals[i]->name);
        if (w > 0) pos += (size_t)w;
        shown++;
    }
    if (shown == 0) snprintf(buf, size, "none");
    return buf;
}

/* Check tensor `t` against the declared type of value `v` (`what` is
 * "input" or "output"), binding symbolic dims in `tab`.  `bind` allows new
 * bindings (inputs); outputs only check against existing ones. */
static kiln_status kl_validate_tensor(const kl_value *v, const kiln_tensor *t, const char *what, kl_symtab *tab,
                                      bool bind) {
    char tb[256];
    const kl_type *ty = &v->type;
    if (ty->kind == KL_TYPE_UNKNOWN) return KILN_OK;
    if (ty->kind != KL_TYPE_TENSOR)
        return kl_errorf(KILN_ERR_UNSUPPORTED, "%s '%s' is %s; only dense tensors can be passed through the API yet", what,
                         v->name, kl_type_format(ty, tb, sizeof tb));
    if (ty->elem != KILN_DTYPE_UNDEFINED && ty->elem != t->dtype)
        return kl_errorf(KILN_ERR_TYPE, "%s '%s' has element type %s but the model expects %s", what, v->name,
                         kiln_dtype_name(t->dtype), kiln_dtype_name(ty->elem));
    if (ty->shape.rank < 0) return KILN_OK;
    if (ty->shape.rank != t->rank)
        return kl_errorf(KILN_ERR_SHAPE, "%s '%s' has rank %d but the model expects rank %d (%s)", what, v->name, t->rank,
                         ty->shape.rank, kl_type_format(ty, tb, sizeof tb));
    for (int a = 0; a < t->rank; a++) {
        const kl_dim *d = &ty->shape.dims[a];
        int64_t got = t->shape[a];
        if (d->value >= 0) {
            if (got != d->value)
                return kl_errorf(KILN_ERR_SHAPE, "%s '%s' axis %d is %lld but the model expects %lld (%s)", what, v->name,
                                 a, (long long)got, (long long)d->value, kl_type_format(ty, tb, sizeof tb));
            continue;
        }
        if (!d->param || !*d->param) continue;
        size_t k = 0;
        while (k < tab->n && strcmp(tab->items[k].param, d->param) != 0) k++;
        if (k < tab->n) {
            if (tab->items[k].value != got)
                return kl_errorf(KILN_ERR_SHAPE, "%s '%s' axis %d ('%s') is %lld but input '%s' set %s = %lld", what,
                                 v->name, a, d->param, (long long)got, tab->items[k].by, d->param,
                                 (long long)tab->items[k].value);
        } else if (bind && tab->n < tab->cap) {
            tab->items[tab->n++] = (kl_symbind){d->param, got, v->name};
        }
    }
    return KILN_OK;
}

/* Does shape (rank, dims) of input `name` fit profile p?  Error names the
 * input, the axis and the range. */
static kiln_status kl_profile_fits(const kl_profile *p, size_t index, const char *name, int rank, const int64_t *dims) {
    for (size_t i = 0; p && i < p->n_inputs; i++) {
        const kl_profile_input *pi = &p->inputs[i];
        if (strcmp(pi->name, name) != 0) continue;
        if (pi->rank != rank)
            return kl_errorf(KILN_ERR_SHAPE, "input '%s' has rank %d, profile %zu expects rank %d", name, rank, index,
                             pi->rank);
        for (int a = 0; a < rank; a++)
            if (dims[a] < pi->min[a] || dims[a] > pi->max[a])
                return kl_errorf(KILN_ERR_SHAPE,
                                 "input '%s' axis %d is %lld, outside the range %lld..%lld of optimization profile %zu",
                                 name, a, (long long)dims[a], (long long)pi->min[a], (long long)pi->max[a], index);
    }
    return KILN_OK;
}

kiln_status kl_context_bind(kiln_context *ctx, const char *const *names, const kiln_tensor *const *inputs,
                            size_t count, const kiln_tensor **bound) {
    const kiln_engine *e = ctx->engine;
    const kl_graph *g = e->ir->graph;
    char list[512];
    for (size_t i = 0; i < count; i++) {
        if (!names[i]) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "input_names[%zu] is NULL", i);
        if (!inputs[i]) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "inputs[%zu] ('%s') is NULL", i, names[i]);
        size_t j = 0;
        while (j < g->n_inputs && !(g->inputs[j] && strcmp(g->inputs[j]->name, names[i]) == 0)) j++;
        if (j == g->n_inputs) {
            const kl_value *v = kl_strmap_get(&g->by_name, names[i]);
            if (v && (v->flags & KL_VALUE_INITIALIZER))
                return kl_errorf(KILN_ERR_NOT_FOUND,
                                 "unknown input '%s': it is an initializer, not a graph input (the model's inputs are %s)",
                                 names[i], kl_name_list(e->inputs, e->n_inputs, list, sizeof list));
            return kl_errorf(KILN_ERR_NOT_FOUND, "unknown input '%s' (the model's inputs are %s)", names[i],
                             kl_name_list(e->inputs, e->n_inputs, list, sizeof list));
        }
        if (bound[j]) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "input '%s' is given more than once", names[i]);
        bound[j] = inputs[i];
    }
    return KILN_OK;
}

/* ---- context ------------------------------------------------------------------------------- */

KILN_API void kiln_context_destroy(kiln_context *ctx) {
    if (!ctx) return;
#ifdef KILN_HAVE_CUDA
    kl_cuda_ctx_free(ctx->cuda);
#endif
    kl_scratch_free(&ctx->rc.scratch);
    kl_pool_destroy(ctx->rc.pool);
    kl_free(ctx->rc.headers);
    kl_free(ctx->rc.slots);
    kl_free(ctx->rc.bound);
    kl_free(ctx->rc.bound_bytes);
    kl_free(ctx->rc.node_ms);
    kl_free(ctx->rc.node_runs);
    kl_free(ctx->arena_raw);
    kl_mem_plan_free(&ctx->dyn);
    kl_free(ctx->seen_bytes);
    kl_free(ctx->seen_dtype);
    kl_free(ctx->seen_rank);
    kl_free(ctx->seen_dims);
    kl_free(ctx->seen_dimp);
    kl_free(ctx->in_rt);
    kl_free(ctx->in_headers);
    kl_free(ctx->out_rt);
    kl_free(ctx->made);
    kl_free(ctx->shapes);
    kl_free(ctx->shape_rank);
    kl_free(ctx->sym);
    kl_free(ctx->bound_in);
    for (int k = 0; k < ctx->n_kids; k++) kiln_context_destroy(ctx->kids[k]);
    kl_free(ctx->kids);
    kl_free(ctx->sl_in);
    kl_free(ctx->sl_out);
    kl_free(ctx->sl_in_p);
    kl_free(ctx->sl_out_p);
    kl_free(ctx->runs_saved);
    kl_free(ctx->whole);
    kl_free(ctx->sl_stage);
    kl_free(ctx->staged);
    kl_free(ctx->stage_raw);
    kl_free(ctx->tail_raw);
    kl_free(ctx);
}

static void kl_context_use_plan(kiln_context *ctx, size_t profile) {
    const kiln_engine *e = ctx->engine;
    ctx->profile = profile;
    const kl_mem_plan *mp = e->n_plans ? &e->plans[profile < e->n_plans ? profile : 0] : NULL;
    if (ctx->dyn.offset) mp = &ctx->dyn; /* planned at sizes this context has run: holds every profile's */
    if (mp && ctx->rc.arena) {
        ctx->rc.offset = mp->offset;
        ctx->rc.capacity = mp->capacity;
        ctx->rc.inplace = mp->inplace;
    }
}

/* A context running on `threads` threads (0: the engine's setting); with
 * `arena_now` false it has none until its first run (kl_context_replan plans
 * one at the sizes it ran: a kid running a slice of the batch). */
static kiln_status kl_context_create_threads(const kiln_engine *engine, int threads, bool arena_now,
                                             kiln_context **out) {
    const kl_graph *g = engine->ir->graph;
    size_t nv = g->n_values ? g->n_values : 1, nn = g->n_nodes ? g->n_nodes : 1;
    size_t ni = g->n_inputs ? g->n_inputs : 1, no = g->n_outputs ? g->n_outputs : 1;
    kiln_context *c = kl_calloc(1, sizeof *c);
    if (!c) return KILN_ERR_NO_MEMORY;
    c->engine = engine;
    c->rc.headers = kl_calloc(nv, sizeof *c->rc.headers);
    c->rc.slots = kl_calloc(nv, sizeof *c->rc.slots);
    c->rc.bound = kl_calloc(nv, sizeof *c->rc.bound);
    c->rc.bound_bytes = kl_calloc(nv, sizeof *c->rc.bound_bytes);
    c->rc.node_ms = kl_calloc(nn, sizeof *c->rc.node_ms);
    c->rc.node_runs = kl_calloc(nn, sizeof *c->rc.node_runs);
    c->in_rt = kl_calloc(ni, sizeof *c->in_rt);
    c->in_headers = kl_calloc(ni, sizeof *c->in_headers);
    c->out_rt = kl_calloc(no, sizeof *c->out_rt);
    c->made = kl_calloc(no, sizeof *c->made);
    c->shapes = kl_calloc(ni, sizeof *c->shapes);
    c->shape_rank = kl_calloc(ni, sizeof *c->shape_rank);
    size_t n_dims = 0;
    for (size_t j = 0; j < g->n_inputs; j++)
        if (g->inputs[j]->type.shape.rank > 0) n_dims += (size_t)g->inputs[j]->type.shape.rank;
    c->sym_cap = n_dims;
    c->sym = kl_calloc(n_dims ? n_dims : 1, sizeof(kl_symbind));
    c->bound_in = kl_calloc(ni, sizeof *c->bound_in);
    if (!c->rc.headers || !c->rc.slots || !c->rc.bound || !c->rc.bound_bytes || !c->rc.node_ms || !c->rc.node_runs ||
        !c->in_rt || !c->in_headers || !c->out_rt || !c->made || !c->shapes || !c->shape_rank || !c->sym || !c->bound_in) {
        kiln_context_destroy(c);
        return KILN_ERR_NO_MEMORY;
    }
    for (size_t j = 0; j < g->n_inputs; j++) c->shape_rank[j] = -1;
    c->seen_bytes = kl_malloc(nv * sizeof *c->seen_bytes);
    c->seen_dtype = kl_calloc(nv, sizeof *c->seen_dtype);
    c->seen_rank = kl_malloc(nv * sizeof *c->seen_rank);
    c->seen_dims = kl_calloc(nv * KILN_MAX_RANK, sizeof *c->seen_dims);
    c->seen_dimp = kl_malloc(nv * sizeof *c->seen_dimp);
    if (!c->seen_bytes || !c->seen_dtype || !c->seen_rank || !c->seen_dims || !c->seen_dimp) {
        kiln_context_destroy(c);
        return KILN_ERR_NO_MEMORY;
    }
    for (size_t v = 0; v < nv; v++)
        c->seen_bytes[v] = SIZE_MAX, c->seen_rank[v] = -1, c->seen_dimp[v] = c->seen_dims + v * KILN_MAX_RANK;
    c->rc.seen_bytes = c->seen_bytes;
    c->rc.seen_dtype = c->seen_dtype;
    c->rc.seen_rank = c->seen_rank;
    c->rc.seen_dims = c->seen_dims;
    c->rc.seen_grew = &c->seen_grew;
    c->rc.keep_id = c->rc.preset_id = SIZE_MAX;
    /* Threads: the engine's setting; 0 = one per online CPU. */
    if (threads < 1) threads = engine->threads > 0 ? engine->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    /* KILN_BATCH_SPLIT=0 runs every batch whole (for comparisons);
     * KILN_BATCH_CHUNK=N sets the samples per slice */
    const char *sp = getenv("KILN_BATCH_SPLIT"), *ck = getenv("KILN_BATCH_CHUNK"), *tl = getenv("KILN_BATCH_TAIL");
    c->chunk = ck && atoi(ck) > 0 ? (size_t)atoi(ck) : KL_BATCH_CHUNK;
    if (!engine->cuda && !(sp && strcmp(sp, "0") == 0) && kl_graph_batch_separable(g)) {
        c->split_ok = true;
        if (!(ck && atoi(ck) > 0)) c->chunk = kl_graph_batch_chunk(g);
        if (!(tl && strcmp(tl, "0") == 0)) c->tail_k = kl_graph_batch_tail(g, KL_BATCH_TAIL_BYTES, &c->tail_f);
        if (c->tail_k) { /* the crossing value's sample: static (kl_graph_batch_tail) */
            const kl_type *ty = &g->values[c->tail_f]->type;
            c->tail_dtype = ty->elem;
            c->tail_rank = ty->shape.rank;
            int64_t count = 1;
            for (int a = 1; a < ty->shape.rank; a++) {
                c->tail_dims[a] = ty->shape.dims[a].value;
                count *= c->tail_dims[a];
            }
            if (!kl_dtype_nbytes(c->tail_dtype, count, &c->tail_row)) c->tail_k = 0;
        }
        c->sl_in = kl_calloc(ni, sizeof *c->sl_in);
        c->sl_out = kl_calloc(no, sizeof *c->sl_out);
        c->sl_in_p = kl_calloc(ni, sizeof *c->sl_in_p);
        c->sl_out_p = kl_calloc(no, sizeof *c->sl_out_p);
        c->runs_saved = kl_calloc(nn, sizeof *c->runs_saved);
        c->whole = kl_calloc(no, sizeof *c->whole);
        c->sl_stage = kl_calloc(no, sizeof *c->sl_stage);
        c->staged = kl_calloc(no, sizeof *c->staged);
        c->kids = threads > 1 ? kl_calloc((size_t)threads, sizeof *c->kids) : NULL;
        if (!c->sl_in || !c->sl_out || !c->sl_in_p || !c->sl_out_p || !c->runs_saved || !c->whole || !c->sl_stage ||
            !c->staged || (threads > 1 && !c->kids)) {
            kiln_context_destroy(c);
            return KILN_ERR_NO_MEMORY;
        }
    }
    if (threads > 1) {
        kiln_status ps = kl_pool_create(threads, &c->rc.pool);
        if (ps) {
            kiln_context_destroy(c);
            return ps;
        }
    }
    size_t arena = 0;
    for (size_t p = 0; p < engine->n_plans; p++) arena = KL_MAX(arena, engine->plans[p].arena_bytes);
    if (arena && arena_now) {
        c->arena_raw = kl_malloc_big(arena + 64);
        if (!c->arena_raw) {
            kiln_context_destroy(c);
            return kl_errorf(KILN_ERR_NO_MEMORY, "kiln_context_create: no memory for an arena of %zu bytes", arena);
        }
        c->rc.arena = (uint8_t *)c->arena_raw + (64 - ((uintptr_t)c->arena_raw % 64)) % 64;
        c->arena_bytes = arena;
    }
    kl_context_use_plan(c, 0);
#ifdef KILN_HAVE_CUDA
    if (engine->cuda) {
        kiln_status cs = kl_cuda_ctx_create(engine->cuda, &c->cuda);
        if (cs) {
            kiln_context_destroy(c);
            return kl_error_context(cs, "kiln_context_create: ");
        }
    }
#endif
    *out = c;
    return KILN_OK;
}

KILN_API kiln_status kiln_context_create(const kiln_engine *engine, kiln_context **out) {
    if (!engine || !out)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_context_create: %s is NULL", !engine ? "engine" : "out");
    return kl_context_create_threads(engine, 0, true, out);
}

KILN_API kiln_status kiln_context_set_profile(kiln_context *ctx, size_t index) {
    if (!ctx) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_context_set_profile: ctx is NULL");
    size_t n = ctx->engine->n_profiles;
    if (index >= (n ? n : 1))
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_context_set_profile: profile %zu does not exist (the engine has %zu)",
                         index, n);
    kl_context_use_plan(ctx, index);
    return KILN_OK;
}

static const kl_profile *kl_context_profile(const kiln_context *ctx) {
    return ctx->engine->n_profiles ? &ctx->engine->profiles[ctx->profile] : NULL;
}

KILN_API kiln_status kiln_context_set_input_shape(kiln_context *ctx, const char *name, int rank, const int64_t *shape) {
    if (!ctx || !name || (rank > 0 && !shape))
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_context_set_input_shape: an argument is NULL");
    const kl_graph *g = ctx->engine->ir->graph;
    size_t j = 0;
    while (j < g->n_inputs && strcmp(g->inputs[j]->name, name) != 0) j++;
    if (j == g->n_inputs || (g->inputs[j]->flags & KL_VALUE_INITIALIZER))
        return kl_errorf(KILN_ERR_NOT_FOUND, "kiln_context_set_input_shape: the engine has no input '%s'", name);
    if (rank < 0 || rank > KILN_MAX_RANK)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "input '%s': rank %d is outside 0..%d", name, rank, KILN_MAX_RANK);
    const kl_shape *sh = &g->inputs[j]->type.shape;
    if (sh->rank >= 0 && sh->rank != rank)
        return kl_errorf(KILN_ERR_SHAPE, "input '%s' has rank %d, %d given", name, sh->rank, rank);
    for (int a = 0; a < rank && sh->rank >= 0; a++)
        if (sh->dims[a].value >= 0 && sh->dims[a].value != shape[a])
            return kl_errorf(KILN_ERR_SHAPE, "input '%s' axis %d is fixed at %lld, %lld given", name, a,
                             (long long)sh->dims[a].value, (long long)shape[a]);
    KL_TRY(kl_profile_fits(kl_context_profile(ctx), ctx->profile, name, rank, shape));
    memcpy(ctx->shapes[j], shape, (size_t)rank * sizeof *shape);
    ctx->shape_rank[j] = rank;
    return KILN_OK;
}

KILN_API kiln_status kiln_context_set_profiling(kiln_context *ctx, int on) {
    if (!ctx) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_context_set_profiling: ctx is NULL");
    ctx->rc.profiling = on != 0;
    size_t nn = ctx->engine->ir->graph->n_nodes;
    if (on) {
        memset(ctx->rc.node_ms, 0, nn * sizeof *ctx->rc.node_ms);
        memset(ctx->rc.node_runs, 0, nn * sizeof *ctx->rc.node_runs);
    }
#ifdef KILN_HAVE_CUDA
    if (ctx->cuda) kl_cuda_ctx_set_profiling(ctx->cuda, on != 0, ctx->rc.node_ms, ctx->rc.node_runs);
#endif
    return KILN_OK;
}

KILN_API kiln_status kiln_context_layer_time(const kiln_context *ctx, size_t index, double *total_ms, uint64_t *runs) {
    if (!ctx) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_context_layer_time: ctx is NULL");
    if (index >= ctx->engine->n_layers)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_context_layer_time: layer %zu out of range (%zu)", index,
                         ctx->engine->n_layers);
    if (total_ms) *total_ms = ctx->rc.node_ms[index];
    if (runs) *runs = ctx->rc.node_runs[index];
    return KILN_OK;
}

KILN_API kiln_status kiln_context_layer_kernel(const kiln_context *ctx, size_t index, char *buf, size_t size) {
    if (!ctx || !buf || !size) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_context_layer_kernel: an argument is NULL or 0");
    if (index >= ctx->engine->n_layers)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_context_layer_kernel: layer %zu out of range (%zu)", index,
                         ctx->engine->n_layers);
    const kl_layer *L = &ctx->engine->layers[index];
    buf[0] = 0;
#ifdef KILN_HAVE_CUDA
    if (ctx->cuda && strcmp(L->provider->name, "cuda") == 0) kl_cuda_ctx_kernel(ctx->cuda, index, buf, size);
#endif
    if (!buf[0]) snprintf(buf, size, "%s", L->tactic->name);
    return KILN_OK;
}

KILN_API kiln_status kiln_context_arena_bytes(const kiln_context *ctx, size_t *bytes) {
    if (!ctx || !bytes) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_context_arena_bytes: an argument is NULL");
    *bytes = ctx->arena_bytes;
    return KILN_OK;
}

/* After a run that had to put tensors on the heap (the engine's plan did
 * not hold them), plan the arena again at the largest size each
 * intermediate has had in this context and grow the arena to it, so the
 * next runs at these shapes allocate nothing (a page-faulting fresh buffer
 * per tensor per run cost mobilenet_v2 at batch 8 a third of its time).
 * Sizes only grow, so shapes that alternate settle after one plan each.
 * A failure here is not the run's: the context keeps the plan it had. */
static void kl_context_replan(kiln_context *ctx) {
    const kl_graph *g = ctx->engine->ir->graph;
    ctx->seen_grew = false;
    kl_shapes sh = {g->n_values, ctx->seen_rank, ctx->seen_dimp, ctx->seen_bytes, ctx->seen_dtype};
    kl_mem_plan p = {0};
    if (kl_mem_plan_build(g, &sh, &p)) {
        kl_error_clear();
        ctx->dyn_failed = true;
        return;
    }
    if (p.arena_bytes > ctx->arena_bytes) {
        void *raw = kl_malloc_big(p.arena_bytes + 64);
        if (!raw) {
            kl_mem_plan_free(&p);
            ctx->dyn_failed = true;
            return;
        }
        kl_free(ctx->arena_raw);
        ctx->arena_raw = raw;
        ctx->rc.arena = (uint8_t *)raw + (64 - ((uintptr_t)raw % 64)) % 64;
        ctx->arena_bytes = p.arena_bytes;
    }
    kl_mem_plan_free(&ctx->dyn);
    ctx->dyn = p;
    kl_context_use_plan(ctx, ctx->profile);
}

/* Copy runtime value r (graph output `name`) into the caller's tensor *dst,
 * creating it when NULL; nothing to copy when it was written in place. */
static kiln_status kl_output_deliver(const kl_rt *r, const char *name, kiln_tensor **dst) {
    char a[128];
    if (r->kind != KL_RT_TENSOR || r->dtype == KILN_DTYPE_STRING)
        return kl_errorf(KILN_ERR_UNSUPPORTED,
                         "output '%s' is %s; only numeric tensors can be returned through the API yet", name,
                         kl_rt_describe(r, a, sizeof a));
    kiln_tensor *t = *dst;
    if (!t) {
        KL_TRY(kiln_tensor_create(r->dtype, r->dims, r->rank, &t));
    } else if (t->dtype != r->dtype || t->rank != r->rank ||
               memcmp(t->shape, r->dims, (size_t)r->rank * sizeof r->dims[0]) != 0) {
        return kl_errorf(KILN_ERR_SHAPE, "output '%s' is %s but the tensor given for it does not match", name,
                         kl_rt_describe(r, a, sizeof a));
    }
    if (r->nbytes && t->data != r->data) memcpy(t->data, r->data, r->nbytes);
    *dst = t;
    return KILN_OK;
}

/* One run of the whole batch given (see kiln_context_run). */
static kiln_status kl_context_run_once(kiln_context *ctx, const char *const *input_names,
                                       const kiln_tensor *const *inputs, size_t input_count,
                                       const char *const *output_names, kiln_tensor **outputs, size_t output_count) {
    const char *fn = "kiln_context_run";
    if (input_count > 0 && (!input_names || !inputs))
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: %s is NULL with input_count %zu", fn,
                         !input_names ? "input_names" : "inputs", input_count);
    if (output_count > 0 && (!output_names || !outputs))
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: %s is NULL with output_count %zu", fn,
                         !output_names ? "output_names" : "outputs", output_count);
    const kiln_engine *e = ctx->engine;
    const kl_graph *g = e->ir->graph;
    const kiln_tensor **bound = ctx->bound_in;
    memset(bound, 0, (g->n_inputs ? g->n_inputs : 1) * sizeof *bound);
    kl_symtab tab = {ctx->sym, 0, ctx->sym_cap};
    kiln_status s = kl_context_bind(ctx, input_names, inputs, input_count, bound);
    bool replan = false;
    char list[512];
    for (size_t j = 0; !s && j < g->n_inputs; j++) {
        const kl_value *v = g->inputs[j];
        if (!bound[j]) {
            if (v->flags & KL_VALUE_INITIALIZER) continue;
            char tb[256];
            s = kl_errorf(KILN_ERR_INVALID_ARGUMENT, "input '%s' (%s) is not given", v->name,
                          kl_type_format(&v->type, tb, sizeof tb));
            break;
        }
        s = kl_validate_tensor(v, bound[j], "input", &tab, true);
        if (!s) s = kl_profile_fits(kl_context_profile(ctx), ctx->profile, v->name, bound[j]->rank, bound[j]->shape);
    }
    for (size_t i = 0; !s && i < output_count; i++) {
        if (!output_names[i]) {
            s = kl_errorf(KILN_ERR_INVALID_ARGUMENT, "output_names[%zu] is NULL", i);
            break;
        }
        size_t j = 0;
        while (j < g->n_outputs && strcmp(g->outputs[j]->name, output_names[i]) != 0) j++;
        if (j == g->n_outputs) {
            s = kl_errorf(KILN_ERR_NOT_FOUND, "unknown output '%s' (the model's outputs are %s)", output_names[i],
                          kl_name_list(g->outputs, g->n_outputs, list, sizeof list));
            break;
        }
        for (size_t k = 0; !s && k < i; k++)
            if (strcmp(output_names[k], output_names[i]) == 0)
                s = kl_errorf(KILN_ERR_INVALID_ARGUMENT, "output '%s' is requested more than once", output_names[i]);
        if (!s && outputs[i]) s = kl_validate_tensor(g->outputs[j], outputs[i], "output", &tab, false);
        /* A caller buffer of the right type is written in place. */
        if (!s && outputs[i] && g->outputs[j]->graph == g && outputs[i]->dtype != KILN_DTYPE_STRING &&
            ((uintptr_t)outputs[i]->data % 16) == 0) {
            ctx->rc.bound[g->outputs[j]->id] = outputs[i]->data;
            ctx->rc.bound_bytes[g->outputs[j]->id] = outputs[i]->nbytes;
        }
    }
    /* Inputs: views of the caller's memory in pooled headers (copies only
     * when misaligned for the element type). */
    for (size_t j = 0; !s && j < g->n_inputs; j++) {
        ctx->in_rt[j] = NULL;
        const kiln_tensor *t = bound[j];
        if (!t) continue;
        size_t align = kiln_dtype_bits(t->dtype) / 8;
        if ((align > 1 && ((uintptr_t)t->data % align) != 0) || t->dtype == KILN_DTYPE_STRING) {
            s = kl_rt_tensor(t->dtype, t->rank, t->shape, &ctx->in_rt[j]);
            if (!s && t->nbytes) memcpy(ctx->in_rt[j]->data, t->data, t->nbytes);
        } else {
            s = kl_rt_view_init(&ctx->in_headers[j], t->dtype, t->rank, t->shape, t->data, t->nbytes);
            if (!s) ctx->in_rt[j] = &ctx->in_headers[j];
        }
    }
#ifdef KILN_HAVE_CUDA
    if (!s && ctx->cuda) s = kl_cuda_ctx_run(ctx->cuda, ctx->in_rt, g->n_inputs, ctx->out_rt, g->n_outputs);
    else
#endif
    if (!s) {
        s = kl_program_run_ctx(e->prog, &ctx->rc, ctx->in_rt, g->n_inputs, ctx->out_rt, g->n_outputs);
        /* after the outputs are delivered (they may live in the arena) */
        replan = !s && ctx->rc.heap_tensors > 0 && ctx->seen_grew && !ctx->dyn_failed;
    }
    /* Outputs go to ctx->made first (output_count <= n_outputs: names were
     * checked unique), and to the caller only when every one is delivered. */
    for (size_t i = 0; !s && i < output_count; i++) {
        size_t j = 0;
        while (j < g->n_outputs && strcmp(g->outputs[j]->name, output_names[i]) != 0) j++;
        ctx->made[i] = outputs[i];
        s = kl_output_deliver(ctx->out_rt[j], output_names[i], &ctx->made[i]);
        if (s) {
            for (size_t k = 0; k < i; k++)
                if (ctx->made[k] != outputs[k]) kiln_tensor_destroy(ctx->made[k]);
        }
    }
    for (size_t i = 0; !s && i < output_count; i++) outputs[i] = ctx->made[i];
    for (size_t j = 0; j < g->n_outputs; j++) {
        kl_rt_unref(ctx->out_rt[j]);
        ctx->out_rt[j] = NULL;
        if (g->outputs[j]->graph == g) ctx->rc.bound[g->outputs[j]->id] = NULL;
    }
    for (size_t j = 0; j < g->n_inputs; j++) {
        kl_rt_unref(ctx->in_rt[j]); /* a pooled view or a heap copy of a misaligned input */
        ctx->in_rt[j] = NULL;
    }
    if (s) return kl_error_context(s, "%s: ", fn);
    if (replan) kl_context_replan(ctx);
    return KILN_OK;
}

/* ---- batch splitting ------------------------------------------------------------------------- */

/* A view of rows [b, b+n) of t (axis 0 of size N) in *v. */
static void kl_slice_rows(const kiln_tensor *t, size_t N, size_t b, size_t n, kiln_tensor *v) {
    *v = *t;
    size_t row = t->nbytes / N;
    v->shape[0] = (int64_t)n;
    v->count = t->count / (int64_t)N * (int64_t)n;
    v->nbytes = row * n;
    v->data = t->data ? (uint8_t *)t->data + row * b : NULL; /* an empty tensor may have no data */
    v->owned = false;
}

/* Tail buffer of ctx for n samples, 64-byte aligned (grown as needed). */
static uint8_t *kl_context_tail_buf(kiln_context *ctx, size_t n) {
    size_t need = ctx->tail_row * n;
    if (need > ctx->tail_bytes || !ctx->tail_raw) {
        kl_free(ctx->tail_raw);
        ctx->tail_bytes = 0;
        ctx->tail_raw = kl_malloc(need + 64);
        if (!ctx->tail_raw) return NULL;
        ctx->tail_bytes = need;
    }
    return (uint8_t *)ctx->tail_raw + (64 - ((uintptr_t)ctx->tail_raw % 64)) % 64;
}

/* The head of the graph (nodes before ctx->tail_k) on samples [b0, b1)
 * of a batch of N, ctx->chunk at a time, each slice's crossing value
 * copied to dst (sample b0 first). */
static kiln_status kl_context_run_head(kiln_context *ctx, const char *const *input_names,
                                       const kiln_tensor *const *inputs, size_t input_count, size_t N, size_t b0,
                                       size_t b1, uint8_t *dst) {
    kiln_status s = KILN_OK;
    for (size_t b = b0; !s && b < b1; b += ctx->chunk) {
        size_t n = KL_MIN(ctx->chunk, b1 - b);
        for (size_t i = 0; i < input_count; i++) {
            kl_slice_rows(inputs[i], N, b, n, &ctx->sl_in[i]);
            ctx->sl_in_p[i] = &ctx->sl_in[i];
        }
        ctx->rc.node_hi = ctx->tail_k;
        ctx->rc.keep_id = ctx->tail_f;
        s = kl_context_run_once(ctx, input_names, ctx->sl_in_p, input_count, NULL, NULL, 0);
        ctx->rc.node_hi = 0;
        ctx->rc.keep_id = SIZE_MAX;
        kl_rt *f = ctx->rc.kept;
        ctx->rc.kept = NULL;
        if (!s && (!f || f->kind != KL_RT_TENSOR || f->dtype != ctx->tail_dtype || f->nbytes != ctx->tail_row * n))
            s = kl_errorf(KILN_ERR_INTERNAL, "kiln_context_run: the split batch's head did not make its tail's input");
        if (!s && f->nbytes) memcpy(dst + (b - b0) * ctx->tail_row, f->data, f->nbytes);
        kl_rt_unref(f);
    }
    return s;
}

/* Samples [b0, b1) of a batch of N into the whole outputs: ctx->chunk at
 * a time, or (tail) only the tail's nodes on all of them at once from
 * ctx->tail_hdr.  Each layer counts one run when profiling. */
static kiln_status kl_context_run_slices(kiln_context *ctx, const char *const *input_names,
                                         const kiln_tensor *const *inputs, size_t input_count,
                                         const char *const *output_names, kiln_tensor *const *outputs,
                                         size_t output_count, size_t N, size_t b0, size_t b1, bool tail) {
    size_t nl = ctx->engine->ir->graph->n_nodes;
    if (ctx->rc.profiling) memcpy(ctx->runs_saved, ctx->rc.node_runs, nl * sizeof *ctx->runs_saved);
    kiln_status s = KILN_OK;
    size_t step = tail ? b1 - b0 : ctx->chunk;
    if (tail) {
        ctx->rc.node_lo = ctx->tail_k;
        ctx->rc.preset_id = ctx->tail_f;
        ctx->rc.preset = &ctx->tail_hdr;
    }
    for (size_t b = b0; !s && b < b1; b += step) {
        size_t n = KL_MIN(step, b1 - b);
        for (size_t i = 0; i < input_count; i++) {
            kl_slice_rows(inputs[i], N, b, n, &ctx->sl_in[i]);
            ctx->sl_in_p[i] = &ctx->sl_in[i];
        }
        /* a slice not 16-byte aligned would not be written in place
         * (a heap tensor per run): it goes through the staging buffer */
        size_t need = 0;
        for (size_t i = 0; i < output_count; i++) {
            kl_slice_rows(outputs[i], N, b, n, &ctx->sl_out[i]);
            if ((uintptr_t)ctx->sl_out[i].data % 16) need += (ctx->sl_out[i].nbytes + 63) / 64 * 64;
        }
        if (need > ctx->stage_bytes) {
            kl_free(ctx->stage_raw);
            ctx->stage_bytes = 0;
            ctx->stage_raw = kl_malloc(need + 64);
            if (!ctx->stage_raw) {
                s = KILN_ERR_NO_MEMORY;
                break;
            }
            ctx->stage_bytes = need;
        }
        /* no staging yet (need 0): no pointer arithmetic on NULL */
        uint8_t *st = ctx->stage_raw ? (uint8_t *)ctx->stage_raw + (64 - ((uintptr_t)ctx->stage_raw % 64)) % 64 : NULL;
        for (size_t i = 0; i < output_count; i++) {
            ctx->sl_out_p[i] = &ctx->sl_out[i];
            ctx->staged[i] = (uintptr_t)ctx->sl_out[i].data % 16 != 0;
            if (!ctx->staged[i]) continue;
            ctx->sl_stage[i] = ctx->sl_out[i];
            ctx->sl_stage[i].data = st;
            st += (ctx->sl_out[i].nbytes + 63) / 64 * 64;
            ctx->sl_out_p[i] = &ctx->sl_stage[i];
        }
        s = kl_context_run_once(ctx, input_names, ctx->sl_in_p, input_count, output_names, ctx->sl_out_p,
                                output_count);
        for (size_t i = 0; !s && i < output_count; i++)
            if (ctx->staged[i]) memcpy(ctx->sl_out[i].data, ctx->sl_stage[i].data, ctx->sl_out[i].nbytes);
    }
    ctx->rc.node_lo = 0;
    ctx->rc.preset_id = SIZE_MAX;
    ctx->rc.preset = NULL;
    if (ctx->rc.profiling)
        for (size_t i = 0; i < nl; i++)
            if (ctx->rc.node_runs[i] > ctx->runs_saved[i]) ctx->rc.node_runs[i] = ctx->runs_saved[i] + 1;
    return s;
}

/* ctx->tail_hdr over n samples of the crossing value at buf. */
static kiln_status kl_context_tail_view(kiln_context *ctx, uint8_t *buf, size_t n) {
    int64_t dims[KILN_MAX_RANK];
    memcpy(dims, ctx->tail_dims, (size_t)ctx->tail_rank * sizeof *dims);
    dims[0] = (int64_t)n;
    return kl_rt_view_init(&ctx->tail_hdr, ctx->tail_dtype, ctx->tail_rank, dims, buf, ctx->tail_row * n);
}

/* Samples [b0, b1) on ctx alone: a slice at a time, or with a tail the
 * head so and then the tail on all of them at once. */
static kiln_status kl_context_run_rows(kiln_context *ctx, const char *const *input_names,
                                       const kiln_tensor *const *inputs, size_t input_count,
                                       const char *const *output_names, kiln_tensor *const *outputs,
                                       size_t output_count, size_t N, size_t b0, size_t b1) {
    bool tail = ctx->tail_k && b1 - b0 > ctx->chunk;
    if (tail) {
        uint8_t *buf = kl_context_tail_buf(ctx, b1 - b0);
        if (!buf) return KILN_ERR_NO_MEMORY;
        size_t nl = ctx->engine->ir->graph->n_nodes;
        if (ctx->rc.profiling) memcpy(ctx->runs_saved, ctx->rc.node_runs, nl * sizeof *ctx->runs_saved);
        KL_TRY(kl_context_run_head(ctx, input_names, inputs, input_count, N, b0, b1, buf));
        if (ctx->rc.profiling)
            for (size_t i = 0; i < nl; i++)
                if (ctx->rc.node_runs[i] > ctx->runs_saved[i]) ctx->rc.node_runs[i] = ctx->runs_saved[i] + 1;
        KL_TRY(kl_context_tail_view(ctx, buf, b1 - b0));
    }
    return kl_context_run_slices(ctx, input_names, inputs, input_count, output_names, outputs, output_count, N, b0,
                                 b1, tail);
}

typedef struct kl_split_run {
    kiln_context *ctx;
    const char *const *input_names;
    const kiln_tensor *const *inputs;
    size_t input_count;
    const char *const *output_names;
    kiln_tensor *const *outputs;
    size_t output_count, N, parts;
} kl_split_run;

/* Pool task: slices [b, e) of the batch (chunk samples each) on thread
 * tid's kid; errors are kept in the kid (the message is thread-local) and
 * the kid's first error stops it. */
static void kl_split_task(void *arg, size_t b, size_t e, int tid) {
    const kl_split_run *r = arg;
    kiln_context *kid = r->ctx->kids[tid];
    size_t ck = r->ctx->chunk, b0 = b * ck, b1 = KL_MIN(e * ck, r->N);
    if (kid->kid_status) return;
    kid->kid_ran = true;
    kid->kid_status = kl_context_run_rows(kid, r->input_names, r->inputs, r->input_count, r->output_names,
                                          r->outputs, r->output_count, r->N, b0, b1);
    if (kid->kid_status) snprintf(kid->kid_msg, sizeof kid->kid_msg, "%s", kl_error_message());
}

/* Run a batch split (see kl_context_try_split): the slices in parallel on
 * the kids, or on ctx alone (kl_context_run_rows).  The kids claim one
 * sample at a time, so a tail runs only on one thread: measured on two
 * (the kids' heads, then the tail on ctx's threads), it lost 10-16%. */
static kiln_status kl_context_run_split(kiln_context *ctx, const char *const *input_names,
                                        const kiln_tensor *const *inputs, size_t input_count,
                                        const char *const *output_names, kiln_tensor *const *outputs,
                                        size_t output_count, size_t N) {
    int T = kl_pool_threads(ctx->rc.pool);
    size_t parts = KL_MIN((size_t)T, N);
    if (parts < 2)
        return kl_context_run_rows(ctx, input_names, inputs, input_count, output_names, outputs, output_count, N, 0,
                                   N);
    for (size_t k = 0; k < parts; k++) {
        if (!ctx->kids[k]) {
            KL_TRY(kl_context_create_threads(ctx->engine, 1, false, &ctx->kids[k]));
            ctx->n_kids = (int)k + 1;
            ctx->kids[k]->tail_k = 0; /* a sample at a time, the same sizes every run */
        }
        kiln_context *kid = ctx->kids[k];
        if (kid->profile != ctx->profile) kl_context_use_plan(kid, ctx->profile);
        kid->chunk = ctx->chunk;
        kiln_context_set_profiling(kid, ctx->rc.profiling);
    }
    for (size_t k = 0; k < parts; k++) ctx->kids[k]->kid_status = KILN_OK;
    kl_split_run r = {ctx, input_names, inputs, input_count, output_names, outputs, output_count, N, parts};
    /* slices claimed one at a time: a thread that starts late (a core
     * busy with another process) takes fewer instead of holding the run;
     * until every kid has run once (made its arena and scratch), one part
     * each, so that later runs allocate nothing */
    bool warm = true;
    for (size_t k = 0; k < parts; k++) warm = warm && ctx->kids[k]->kid_ran;
    if (warm)
        kl_parallel_for_dyn(ctx->rc.pool, (int)parts, (N + ctx->chunk - 1) / ctx->chunk, 1, kl_split_task, &r);
    else
        kl_parallel_for_n(ctx->rc.pool, (int)parts, (N + ctx->chunk - 1) / ctx->chunk, kl_split_task, &r);
    for (size_t k = 0; k < parts; k++)
        if (ctx->kids[k]->kid_status) return kl_errorf(ctx->kids[k]->kid_status, "%s", ctx->kids[k]->kid_msg);
    /* profiling: a layer's time is its mean over the threads (they ran
     * side by side), one run */
    size_t nl = ctx->engine->ir->graph->n_nodes;
    for (size_t i = 0; ctx->rc.profiling && i < nl; i++) {
        double ms = 0;
        uint64_t runs = 0;
        for (size_t k = 0; k < parts; k++) {
            ms += ctx->kids[k]->rc.node_ms[i];
            runs += ctx->kids[k]->rc.node_runs[i];
        }
        ctx->rc.node_ms[i] += ms / (double)parts;
        ctx->rc.node_runs[i] += runs > 0;
    }
    return KILN_OK;
}

/* Whether this run splits its batch, and then the run: the graph lets
 * samples run on their own, every graph input is given with the same
 * batch N >= 2 on axis 0, the outputs asked for are new or whole, and
 * slices fit the optimization profile.  Anything unusual runs whole, where
 * validation reports it.  *handled false: not split. */
static kiln_status kl_context_try_split(kiln_context *ctx, const char *const *input_names,
                                        const kiln_tensor *const *inputs, size_t input_count,
                                        const char *const *output_names, kiln_tensor **outputs,
                                        size_t output_count, bool *handled) {
    *handled = false;
    const kiln_engine *e = ctx->engine;
    const kl_graph *g = e->ir->graph;
    if (!input_count || !output_count || input_count > g->n_inputs || output_count > g->n_outputs) return KILN_OK;
    const kiln_tensor **bound = ctx->bound_in;
    memset(bound, 0, (g->n_inputs ? g->n_inputs : 1) * sizeof *bound);
    if (kl_context_bind(ctx, input_names, inputs, input_count, bound)) {
        kl_error_clear();
        return KILN_OK;
    }
    size_t N = 0, given = 0;
    for (size_t j = 0; j < g->n_inputs; j++) {
        const kl_value *v = g->inputs[j];
        const kiln_tensor *t = bound[j];
        if (!t) continue;
        if (v->flags & KL_VALUE_INITIALIZER) return KILN_OK;
        if (t->rank != v->type.shape.rank || t->rank < 1 || t->shape[0] < 2 || t->dtype != v->type.elem)
            return KILN_OK;
        if (N && (size_t)t->shape[0] != N) return KILN_OK;
        N = (size_t)t->shape[0];
        int64_t dims[KILN_MAX_RANK];
        memcpy(dims, t->shape, (size_t)t->rank * sizeof *dims);
        for (int k = 0; k < 3; k++) { /* the whole batch, the smallest and the largest slice */
            dims[0] = k == 0 ? (int64_t)N : k == 1 ? 1 : (int64_t)KL_MIN(ctx->chunk, N);
            if (kl_profile_fits(kl_context_profile(ctx), ctx->profile, v->name, t->rank, dims)) {
                kl_error_clear();
                return KILN_OK;
            }
        }
        given++;
    }
    if (given != e->n_inputs || (kl_pool_threads(ctx->rc.pool) < 2 && N <= ctx->chunk)) return KILN_OK;
    /* outputs: known names, each once, whole when given */
    for (size_t i = 0; i < output_count; i++) {
        if (!output_names[i]) return KILN_OK;
        size_t j = 0;
        while (j < g->n_outputs && strcmp(g->outputs[j]->name, output_names[i]) != 0) j++;
        if (j == g->n_outputs) return KILN_OK;
        for (size_t k = 0; k < i; k++)
            if (strcmp(output_names[k], output_names[i]) == 0) return KILN_OK;
        const kl_type *ty = &g->outputs[j]->type;
        const kiln_tensor *t = outputs[i];
        if (!t) continue;
        if (t->dtype != ty->elem || t->rank != ty->shape.rank || (size_t)t->shape[0] != N) return KILN_OK;
        for (int a = 1; a < t->rank; a++)
            if (t->shape[a] != ty->shape.dims[a].value) return KILN_OK;
    }
    *handled = true;
    /* outputs not given are made whole first (their shape is known) */
    for (size_t i = 0; i < output_count; i++) {
        ctx->whole[i] = outputs[i];
        if (outputs[i]) continue;
        size_t j = 0;
        while (strcmp(g->outputs[j]->name, output_names[i]) != 0) j++;
        const kl_type *ty = &g->outputs[j]->type;
        int64_t dims[KILN_MAX_RANK];
        dims[0] = (int64_t)N;
        for (int a = 1; a < ty->shape.rank; a++) dims[a] = ty->shape.dims[a].value;
        kiln_status s = kiln_tensor_create(ty->elem, dims, ty->shape.rank, &ctx->whole[i]);
        if (s) {
            for (size_t k = 0; k < i; k++)
                if (ctx->whole[k] != outputs[k]) kiln_tensor_destroy(ctx->whole[k]);
            return kl_error_context(s, "kiln_context_run: ");
        }
    }
    kiln_status s =
        kl_context_run_split(ctx, input_names, inputs, input_count, output_names, ctx->whole, output_count, N);
    for (size_t i = 0; i < output_count; i++) {
        if (s && ctx->whole[i] != outputs[i]) kiln_tensor_destroy(ctx->whole[i]);
        if (!s) outputs[i] = ctx->whole[i];
    }
    return s;
}

KILN_API kiln_status kiln_context_run(kiln_context *ctx, const char *const *input_names,
                                      const kiln_tensor *const *inputs, size_t input_count,
                                      const char *const *output_names, kiln_tensor **outputs, size_t output_count) {
    if (!ctx) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_context_run: ctx is NULL");
    if (ctx->split_ok && (input_count == 0 || (input_names && inputs)) &&
        (output_count == 0 || (output_names && outputs))) {
        bool handled;
        kiln_status s = kl_context_try_split(ctx, input_names, inputs, input_count, output_names, outputs,
                                             output_count, &handled);
        if (handled) return s;
    }
    return kl_context_run_once(ctx, input_names, inputs, input_count, output_names, outputs, output_count);
}

KILN_API kiln_status kiln_context_device_times(const kiln_context *ctx, double *h2d_ms, double *compute_ms,
                                               double *d2h_ms) {
    if (!ctx) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_context_device_times: ctx is NULL");
#ifdef KILN_HAVE_CUDA
    if (ctx->cuda) {
        kl_cuda_ctx_last_times(ctx->cuda, h2d_ms, compute_ms, d2h_ms);
        return KILN_OK;
    }
#endif
    (void)h2d_ms, (void)compute_ms, (void)d2h_ms;
    return kl_errorf(KILN_ERR_UNSUPPORTED, "kiln_context_device_times: the engine runs on the CPU only");
}

KILN_API kiln_status kiln_context_time_compute(kiln_context *ctx, int iterations, double *ms) {
    if (!ctx || !ms || iterations < 1)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_context_time_compute: ctx or ms is NULL, or iterations < 1");
#ifdef KILN_HAVE_CUDA
    if (ctx->cuda) return kl_cuda_ctx_time_compute(ctx->cuda, iterations, ms);
#endif
    return kl_errorf(KILN_ERR_UNSUPPORTED, "kiln_context_time_compute: the engine runs on the CPU only");
}

KILN_API kiln_status kiln_context_device_info(const kiln_context *ctx, int *graph, size_t *host_layers,
                                              size_t *device_bytes) {
    if (!ctx) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_context_device_info: ctx is NULL");
    if (graph) *graph = 0;
    if (host_layers) *host_layers = 0;
    if (device_bytes) *device_bytes = 0;
#ifdef KILN_HAVE_CUDA
    if (ctx->cuda) {
        bool gr = false;
        kl_cuda_ctx_stats(ctx->cuda, &gr, host_layers, NULL);
        if (graph) *graph = gr;
        if (device_bytes) *device_bytes = kl_cuda_ctx_device_bytes(ctx->cuda);
        return KILN_OK;
    }
#endif
    return kl_errorf(KILN_ERR_UNSUPPORTED, "kiln_context_device_info: the engine runs on the CPU only");
}
