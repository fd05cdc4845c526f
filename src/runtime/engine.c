/* kiln_engine: open (validate the container, parse the graph zero-copy over
 * the WEIGHTS section, resolve providers and tactics, read profiles and
 * plans), save, serialize, introspection, DOT. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx/onnx.h"
#include "runtime/engine.h"
#ifdef KILN_HAVE_CUDA
#include "cuda/cuda.h"
#endif

/* ---- text sections ------------------------------------------------------------------ */

/* Next line of [*p, end): NUL-free line without its '\n' into (line, len);
 * false at the end. */
static bool kl_next_line(const char **p, const char *end, const char **line, size_t *len) {
    if (*p >= end) return false;
    const char *e = memchr(*p, '\n', (size_t)(end - *p));
    *line = *p;
    *len = e ? (size_t)(e - *p) : (size_t)(end - *p);
    *p = e ? e + 1 : end;
    return true;
}

/* Split a line at TABs into at most max fields (copied into buf). */
static size_t kl_fields(const char *line, size_t len, char *buf, size_t bufsize, char **f, size_t max) {
    if (len >= bufsize) return 0;
    memcpy(buf, line, len);
    buf[len] = 0;
    size_t n = 0;
    char *p = buf;
    while (n < max) {
        f[n++] = p;
        char *t = strchr(p, '\t');
        if (!t) break;
        *t = 0;
        p = t + 1;
    }
    return n;
}

static bool kl_parse_u64(const char *s, uint64_t *out) {
    if (!*s || *s == '-') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno) return false;
    *out = v;
    return true;
}

static bool kl_parse_dims(const char *s, int rank, int64_t *d) {
    if (rank == 0) return strcmp(s, "-") == 0;
    for (int a = 0; a < rank; a++) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (end == s || errno || v < 0) return false;
        d[a] = v;
        if (a + 1 < rank) {
            if (*end != 'x') return false;
            s = end + 1;
        } else if (*end) {
            return false;
        }
    }
    return true;
}

static kiln_status kl_sec_bad(const char *path, const char *sec, size_t lineno, const char *what) {
    return kl_errorf(KILN_ERR_PARSE, "%s: engine section '%s' line %zu: %s", path, sec, lineno, what);
}

/* ---- open -------------------------------------------------------------------------------- */

static void kl_engine_free(kiln_engine *e) {
    if (!e) return;
#ifdef KILN_HAVE_CUDA
    kl_cuda_engine_free(e->cuda);
#endif
    for (size_t i = 0; e->layers && i < e->n_layers; i++)
        if (e->layers[i].tactic && e->layers[i].tactic->release) e->layers[i].tactic->release(e->layers[i].state);
    kl_free(e->layers);
    kl_program_free(e->prog);
    for (size_t i = 0; i < e->n_plans; i++) kl_mem_plan_free(&e->plans[i]);
    kl_free(e->plans);
    for (size_t i = 0; e->profiles && i < e->n_profiles; i++) {
        for (size_t k = 0; k < e->profiles[i].n_inputs; k++) kl_free(e->profiles[i].inputs[k].name);
        kl_free(e->profiles[i].inputs);
    }
    kl_free(e->profiles);
    kl_free(e->inputs);
    kl_model_free(e->ir);
    kl_engine_file_close(&e->file);
    kl_arena_free(&e->arena);
    kl_free(e->owned);
    kl_free(e);
}

KILN_API void kiln_engine_destroy(kiln_engine *engine) { kl_engine_free(engine); }

static kiln_status kl_engine_tactics(kiln_engine *e, const char *path, const uint8_t *data, size_t size) {
    const kl_graph *g = e->ir->graph;
    e->n_layers = g->n_nodes;
    e->layers = kl_calloc(g->n_nodes ? g->n_nodes : 1, sizeof *e->layers);
    if (!e->layers) return KILN_ERR_NO_MEMORY;
    const char *p = (const char *)data, *end = p + size, *line;
    size_t len, lineno = 0, seen = 0;
    uint32_t cpu = kl_cpu_features();
    while (kl_next_line(&p, end, &line, &len)) {
        lineno++;
        char buf[512], *f[8];
        size_t nf = kl_fields(line, len, buf, sizeof buf, f, 8);
        uint64_t idx, ws;
        if (nf != 6 || strcmp(f[0], "N") || !kl_parse_u64(f[1], &idx) || !kl_parse_u64(f[4], &ws))
            return kl_sec_bad(path, "tactics", lineno, "malformed");
        if (idx >= g->n_nodes || e->layers[idx].provider)
            return kl_sec_bad(path, "tactics", lineno, "node index out of range or repeated");
        const kl_node *n = g->nodes[idx];
        kl_layer *L = &e->layers[idx];
        L->node = n;
        L->provider = kl_provider_find(f[2]);
        if (!L->provider) {
            const char *why = kl_provider_missing_reason(f[2]);
            return kl_errorf(KILN_ERR_ENGINE_MISMATCH, "%s: layer '%s' was built for provider '%s', which %s: rebuild the engine",
                             path, kl_node_label(n), f[2], why ? "this kiln does not have" : "kiln does not know");
        }
        const char *why = NULL;
        if (!L->provider->usable(&why))
            return kl_errorf(KILN_ERR_ENGINE_MISMATCH, "%s: layer '%s' needs provider '%s', which cannot run here: %s", path,
                             kl_node_label(n), f[2], why ? why : "not usable");
        L->tactic = L->provider->tactic_find ? L->provider->tactic_find(n, f[3]) : NULL;
        if (!L->tactic)
            return kl_errorf(KILN_ERR_ENGINE_MISMATCH,
                             "%s: layer '%s' (%s) uses tactic '%s', which this kiln's %s provider does not have: rebuild "
                             "the engine",
                             path, kl_node_label(n), n->op_type, f[3], f[2]);
        if (L->tactic->isa & ~cpu) {
            char need[64], have[64];
            return kl_errorf(KILN_ERR_ENGINE_MISMATCH,
                             "%s: layer '%s' uses tactic '%s', which needs %s, and this CPU has %s: rebuild the engine on "
                             "this machine",
                             path, kl_node_label(n), f[3], kl_features_format(L->tactic->isa & ~cpu, need, sizeof need),
                             kl_features_format(cpu, have, sizeof have));
        }
        L->workspace = (size_t)ws;
        L->build_ms = strtod(f[5], NULL);
        seen++;
    }
    if (seen != g->n_nodes)
        return kl_errorf(KILN_ERR_PARSE, "%s: engine section 'tactics' names %zu of the graph's %zu layers", path, seen,
                         g->n_nodes);
    for (size_t i = 0; i < g->n_nodes; i++) {
        kl_layer *L = &e->layers[i];
        const kl_node *n = L->node;
        L->op = n->domain[0] ? kl_arena_printf(&e->arena, "%s.%s", n->domain, n->op_type) : n->op_type;
        if (!L->op) return KILN_ERR_NO_MEMORY;
        if (L->tactic->prepare) {
            size_t ws = 0;
            kiln_status s = L->tactic->prepare(n, &L->state, &ws);
            if (s) return kl_error_context(s, "%s: layer '%s' tactic '%s': ", path, kl_node_label(n), L->tactic->name);
        }
        if (L->tactic->run)
            kl_program_set_tactic(e->prog, i, L->tactic->run, L->state, (L->tactic->flags & KL_TACTIC_WRITES_ALL) != 0);
        e->max_workspace = KL_MAX(e->max_workspace, L->workspace);
    }
    return KILN_OK;
}

/* The packed section (docs/ENGINE.md): each entry's bytes become its
 * layer's packed weights (kl_tactic.adopt_packed), used in place from the
 * mapping, so the layer does not pack at its first run. */
static kiln_status kl_engine_packed(kiln_engine *e, const char *path, const uint8_t *data, size_t size) {
    const kl_graph *g = e->ir->graph;
    uint32_t count;
    if (size < 16 || memcmp(data, "KLPACK01", 8) != 0)
        return kl_errorf(KILN_ERR_PARSE, "%s: engine section 'packed' has no KLPACK01 header", path);
    memcpy(&count, data + 8, 4);
    if (count > g->n_nodes || 16 + (size_t)count * 24 > size)
        return kl_errorf(KILN_ERR_PARSE, "%s: engine section 'packed' lists %u layers in %zu bytes", path, count, size);
    /* sections lie at multiples of 64 in the file; in a caller's buffer of
     * another alignment the kernels' unaligned loads still read them, but
     * floats must lie at multiples of 4: otherwise the layers pack as usual */
    if ((uintptr_t)data % 4) return KILN_OK;
    int threads = e->threads > 0 ? e->threads : 0;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online > threads) threads = (int)online; /* a context may run on every core */
    if (threads < 1) threads = 1;
    size_t end_dir = 16 + (size_t)count * 24;
    for (uint32_t k = 0; k < count; k++) {
        const uint8_t *ent = data + 16 + (size_t)k * 24;
        uint32_t layer;
        uint64_t off, sz;
        memcpy(&layer, ent, 4), memcpy(&off, ent + 8, 8), memcpy(&sz, ent + 16, 8);
        if (layer >= g->n_nodes || off % 64 || off < end_dir || off > size || sz > size - off)
            return kl_errorf(KILN_ERR_PARSE, "%s: engine section 'packed': entry %u (layer %u, %llu bytes at %llu) lies "
                                             "outside the section",
                             path, k, layer, (unsigned long long)sz, (unsigned long long)off);
        kl_layer *L = &e->layers[layer];
        if (!L->tactic || !L->tactic->adopt_packed || !L->state)
            return kl_errorf(KILN_ERR_ENGINE_MISMATCH,
                             "%s: engine section 'packed' has weights for layer '%s', whose tactic '%s' takes none: "
                             "rebuild the engine",
                             path, kl_node_label(L->node), L->tactic ? L->tactic->name : "?");
        kiln_status st = L->tactic->adopt_packed(L->state, threads, data + off, (size_t)sz);
        if (st) return kl_error_context(st, "%s: layer '%s' tactic '%s': ", path, kl_node_label(L->node), L->tactic->name);
    }
    return KILN_OK;
}

static kiln_status kl_engine_profiles(kiln_engine *e, const char *path, const uint8_t *data, size_t size) {
    const char *p = (const char *)data, *end = p + size, *line;
    size_t len, lineno = 0;
    while (kl_next_line(&p, end, &line, &len)) {
        lineno++;
        char buf[1024], *f[8];
        size_t nf = kl_fields(line, len, buf, sizeof buf, f, 8);
        uint64_t v;
        if (nf == 2 && strcmp(f[0], "P") == 0 && kl_parse_u64(f[1], &v) && v == e->n_profiles && v < 64) {
            kl_profile *np = kl_realloc_array(e->profiles, e->n_profiles + 1, sizeof *np);
            if (!np) return KILN_ERR_NO_MEMORY;
            e->profiles = np;
            memset(&np[e->n_profiles++], 0, sizeof *np);
            continue;
        }
        if (nf != 6 || strcmp(f[0], "I") || !e->n_profiles || !kl_parse_u64(f[2], &v) || v > KILN_MAX_RANK)
            return kl_sec_bad(path, "profiles", lineno, "malformed");
        kl_profile *pr = &e->profiles[e->n_profiles - 1];
        if (pr->n_inputs >= 1024) return kl_sec_bad(path, "profiles", lineno, "too many inputs");
        kl_profile_input *ni = kl_realloc_array(pr->inputs, pr->n_inputs + 1, sizeof *ni);
        if (!ni) return KILN_ERR_NO_MEMORY;
        pr->inputs = ni;
        kl_profile_input *pi = &ni[pr->n_inputs];
        memset(pi, 0, sizeof *pi);
        pi->rank = (int)v;
        if (!kl_parse_dims(f[3], pi->rank, pi->min) || !kl_parse_dims(f[4], pi->rank, pi->opt) ||
            !kl_parse_dims(f[5], pi->rank, pi->max))
            return kl_sec_bad(path, "profiles", lineno, "malformed dims");
        for (int a = 0; a < pi->rank; a++)
            if (pi->min[a] > pi->opt[a] || pi->opt[a] > pi->max[a]) return kl_sec_bad(path, "profiles", lineno, "min > max");
        if (!(pi->name = kl_strdup(f[1]))) return KILN_ERR_NO_MEMORY;
        pr->n_inputs++;
        bool found = false;
        for (size_t i = 0; i < e->n_inputs; i++) found |= strcmp(e->inputs[i]->name, pi->name) == 0;
        if (!found) return kl_sec_bad(path, "profiles", lineno, "names an input the graph does not have");
    }
    return KILN_OK;
}

static kiln_status kl_engine_plans(kiln_engine *e, const char *path, const uint8_t *data, size_t size) {
    const kl_graph *g = e->ir->graph;
    const char *p = (const char *)data, *end = p + size, *line;
    size_t len, lineno = 0;
    size_t want = e->n_profiles ? e->n_profiles : 1;
    kl_mem_plan *cur = NULL;
    while (kl_next_line(&p, end, &line, &len)) {
        lineno++;
        char buf[2048], *f[8];
        size_t nf = kl_fields(line, len, buf, sizeof buf, f, 8);
        uint64_t a, b, c, d;
        if (nf == 4 && strcmp(f[0], "P") == 0 && kl_parse_u64(f[1], &a) && kl_parse_u64(f[2], &b) &&
            kl_parse_u64(f[3], &c)) {
            if (a != e->n_plans || a >= want || b > ((uint64_t)1 << 40))
                return kl_sec_bad(path, "plans", lineno, "plan out of order or too large");
            if (!e->plans && !(e->plans = kl_calloc(want, sizeof *e->plans))) return KILN_ERR_NO_MEMORY;
            cur = &e->plans[e->n_plans++];
            cur->arena_bytes = (size_t)b;
            cur->intermediate_bytes = (size_t)c;
            cur->n_values = g->n_values;
            cur->offset = kl_calloc(g->n_values ? g->n_values : 1, sizeof *cur->offset);
            cur->capacity = kl_calloc(g->n_values ? g->n_values : 1, sizeof *cur->capacity);
            cur->inplace = kl_calloc(g->n_values ? g->n_values : 1, sizeof *cur->inplace);
            if (!cur->offset || !cur->capacity || !cur->inplace) return KILN_ERR_NO_MEMORY;
            for (size_t i = 0; i < g->n_values; i++) cur->offset[i] = -1;
            continue;
        }
        if (nf != 5 || strcmp(f[0], "V") || !cur || !kl_parse_u64(f[2], &b) || !kl_parse_u64(f[3], &c) ||
            !kl_parse_u64(f[4], &d) || d > KL_MEM_JOINED)
            return kl_sec_bad(path, "plans", lineno, "malformed");
        kl_value *v = kl_strmap_get(&g->by_name, f[1]);
        if (!v || v->graph != g || !v->producer) return kl_sec_bad(path, "plans", lineno, "names no intermediate tensor");
        if (c == 0 || b > cur->arena_bytes || c > cur->arena_bytes - b)
            return kl_sec_bad(path, "plans", lineno, "tensor outside the arena");
        cur->offset[v->id] = (int64_t)b;
        cur->capacity[v->id] = (size_t)c;
        cur->inplace[v->id] = (uint8_t)d;
    }
    if (e->n_plans && e->n_plans != want)
        return kl_errorf(KILN_ERR_PARSE, "%s: engine section 'plans' has %zu plans for %zu profiles", path, e->n_plans, want);
    return KILN_OK;
}

static kiln_status kl_engine_finish_open(kiln_engine *e, const char *path, kiln_engine **out);

/* Write size bytes to path atomically: a temporary file beside it, fsync,
 * rename.  Readers see the old file or the new one, never half of it. */
static kiln_status kl_write_file_atomic(const char *path, const void *data, size_t size) {
    size_t plen = strlen(path);
    char *tmp = kl_malloc(plen + 32);
    if (!tmp) return KILN_ERR_NO_MEMORY;
    snprintf(tmp, plen + 32, "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        kiln_status s = kl_errorf(KILN_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        kl_free(tmp);
        return s;
    }
    const uint8_t *p = data;
    size_t left = size;
    bool ok = true;
    while (left && ok) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        ok = w > 0;
        if (ok) {
            p += w;
            left -= (size_t)w;
        }
    }
    ok = ok && fchmod(fd, 0644) == 0 && fsync(fd) == 0;
    ok = (close(fd) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        kiln_status s = kl_errorf(KILN_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        unlink(tmp);
        kl_free(tmp);
        return s;
    }
    kl_free(tmp);
    return KILN_OK;
}

kiln_status kl_engine_open(const void *bytes, size_t size, void *owned, const char *path, kiln_engine **out) {
    kiln_engine *e = kl_calloc(1, sizeof *e);
    if (!e) {
        kl_free(owned);
        return KILN_ERR_NO_MEMORY;
    }
    kl_arena_init(&e->arena);
    e->owned = owned;
    kiln_status s = kl_engine_file_open(bytes, size, &e->file);
    if (s) {
        kl_engine_free(e);
        return kl_error_context(s, "%s: ", path);
    }
    return kl_engine_finish_open(e, path, out);
}

/* Layers on the cuda provider: the engine must have been built for this
 * GPU and these library versions (TensorRT's rule); then its device state. */
static kiln_status kl_engine_open_cuda(kiln_engine *e, const char *path) {
    bool any = false;
    for (size_t i = 0; i < e->n_layers; i++) any |= strcmp(e->layers[i].provider->name, "cuda") == 0;
    if (!any) return KILN_OK;
#ifdef KILN_HAVE_CUDA
    const char *built = kl_engine_file_meta(&e->file, "cuda_device");
    char here[128];
    kl_cuda_device_key(here, sizeof here);
    if (!built || strcmp(built, here) != 0)
        return kl_errorf(KILN_ERR_ENGINE_MISMATCH,
                         "%s: the engine was built for %s and this machine has %s (GPU architecture and CUDA/cuDNN/"
                         "cuBLASLt versions must match): rebuild the engine here",
                         path, built ? built : "an unknown GPU", here);
    const char *prec = kl_engine_file_meta(&e->file, "cuda_precision");
    const char *tf32 = kl_engine_file_meta(&e->file, "cuda_tf32");
    const char *graphs = getenv("KILN_CUDA_GRAPHS");
    const char *lay = kl_engine_file_meta(&e->file, "cuda_layout");
    const char *wsm = kl_engine_file_meta(&e->file, "cuda_workspace"); /* --workspace at build; absent: default */
    unsigned long long ws = wsm ? strtoull(wsm, NULL, 10) : 0;
    kl_cuda_options opt = {prec && strcmp(prec, "fp16") == 0, tf32 && strcmp(tf32, "1") == 0,
                           !(graphs && strcmp(graphs, "0") == 0), (size_t)ws,
                           !lay ? KL_CUDA_LAYOUT_AUTO
                           : strcmp(lay, "nhwc") == 0 ? KL_CUDA_LAYOUT_NHWC
                                                      : KL_CUDA_LAYOUT_NCHW};
    bool *on = kl_calloc(e->n_layers ? e->n_layers : 1, sizeof *on);
    if (!on) return KILN_ERR_NO_MEMORY;
    for (size_t i = 0; i < e->n_layers; i++) on[i] = strcmp(e->layers[i].provider->name, "cuda") == 0;
    kiln_status s = kl_cuda_engine_create(e->ir, e->prog, on, &opt, &e->cuda);
    kl_free(on);
    if (s) return kl_error_context(s, "%s: ", path);
    /* Library algorithms chosen at build, for the shapes they were timed at. */
    const char *al = kl_engine_file_meta(&e->file, "cuda_algos"), *ak = kl_engine_file_meta(&e->file, "cuda_algo_key");
    const char *anum = kl_engine_file_meta(&e->file, "cuda_algo_numbering");
    if (al && (!anum || strcmp(anum, KL_CUDA_ALGO_NUMBERING_TEXT) != 0))
        return kl_errorf(KILN_ERR_ENGINE_MISMATCH,
                         "%s: the engine's cuda algorithm codes are numbered as in version %s, this kiln reads version %s "
                         "(codes of the older numbering ran some layers on the host): rebuild the engine",
                         path, anum ? anum : "1", KL_CUDA_ALGO_NUMBERING_TEXT);
    if (al && ak) {
        size_t nn = e->n_layers;
        int *algo = kl_malloc((nn ? nn : 1) * sizeof *algo);
        if (!algo) return KILN_ERR_NO_MEMORY;
        for (size_t i = 0; i < nn; i++) algo[i] = -1;
        int64_t key[KILN_MAX_RANK * 8 + 8];
        size_t kl = 0;
        bool ok = true;
        for (const char *q = al; *q && ok;) {
            char *end;
            unsigned long long i = strtoull(q, &end, 10);
            if (end == q || *end != ':' || i >= nn) {
                ok = false;
                break;
            }
            q = end + 1;
            long a = strtol(q, &end, 10);
            if (end == q || a < 0 || a > KL_CUDA_ALGO_MAX) { /* cuda/dnn.h's codes */
                ok = false;
                break;
            }
            algo[i] = (int)a;
            q = *end == ',' ? end + 1 : end;
            if (*end && *end != ',') ok = false;
        }
        for (const char *q = ak; *q && ok;) {
            char *end;
            long long v = strtoll(q, &end, 10);
            if (end == q || kl >= KL_ARRAY_LEN(key)) {
                ok = false;
                break;
            }
            key[kl++] = v;
            q = end;
            while (*q == ' ') q++;
        }
        if (!ok) {
            kl_free(algo);
            return kl_errorf(KILN_ERR_PARSE, "%s: engine metadata cuda_algos/cuda_algo_key is malformed", path);
        }
        s = kl_cuda_engine_set_algos(e->cuda, algo, key, kl);
        kl_free(algo);
        if (s) return kl_error_context(s, "%s: ", path);
    }
    return KILN_OK;
#else
    return kl_errorf(KILN_ERR_ENGINE_MISMATCH, "%s: the engine has cuda layers and this kiln has no cuda provider", path);
#endif
}

/* Everything after the container is validated: graph, tactics, profiles, plans. */
static kiln_status kl_engine_finish_open_impl(kiln_engine *e, const char *path) {
    const void *gbytes, *wbytes, *tbytes, *pbytes, *lbytes;
    size_t gsize, wsize, tsize, psize, lsize;
    if (!kl_engine_file_section(&e->file, KL_SEC_GRAPH, &gbytes, &gsize) ||
        !kl_engine_file_section(&e->file, KL_SEC_WEIGHTS, &wbytes, &wsize) ||
        !kl_engine_file_section(&e->file, KL_SEC_TACTICS, &tbytes, &tsize) ||
        !kl_engine_file_section(&e->file, KL_SEC_PROFILES, &pbytes, &psize))
        return kl_errorf(KILN_ERR_PARSE, "%s: not a complete engine (a graph, weights, tactics or profiles section is missing)",
                         path);
    const char *kv = kl_engine_file_meta(&e->file, "kiln_version");
    if (!kv) return kl_errorf(KILN_ERR_PARSE, "%s: engine metadata lacks kiln_version", path);
    kiln_status s = kl_onnx_parse_with_blob(gbytes, gsize, path, wbytes, wsize, &e->ir);
    if (s) return kl_error_context(s, "%s: engine graph: ", path);
    if (e->ir->n_problems) {
        for (size_t i = 0; i < e->ir->n_problems; i++)
            if (e->ir->problems[i].severity == KILN_CHECK_ERROR)
                return kl_errorf(KILN_ERR_PARSE, "%s: engine graph is invalid: %s", path, e->ir->problems[i].message);
    }
    const kl_graph *g = e->ir->graph;
    for (size_t i = 0; i < g->n_inputs; i++)
        if (!(g->inputs[i]->flags & KL_VALUE_INITIALIZER)) e->n_inputs++;
    e->inputs = kl_calloc(e->n_inputs ? e->n_inputs : 1, sizeof *e->inputs);
    if (!e->inputs) return KILN_ERR_NO_MEMORY;
    e->n_inputs = 0;
    for (size_t i = 0; i < g->n_inputs; i++)
        if (!(g->inputs[i]->flags & KL_VALUE_INITIALIZER)) e->inputs[e->n_inputs++] = g->inputs[i];
    snprintf(e->version_str, sizeof e->version_str, "%u", e->file.version);
    const char *th = kl_engine_file_meta(&e->file, "threads");
    e->threads = th ? atoi(th) : 0;
    /* subnormals flushed unless the engine was built with denormals=keep (older engines: flushed) */
    const char *dn = kl_engine_file_meta(&e->file, "denormals");
    unsigned pflags = KL_PROGRAM_CONST_VIEWS | (dn && strcmp(dn, "keep") == 0 ? 0u : KL_PROGRAM_FLUSH_DENORMALS);
    s = kl_program_create_ex(e->ir, e->threads, pflags, &e->prog);
    if (s) return kl_error_context(s, "%s: ", path);
    KL_TRY(kl_engine_tactics(e, path, tbytes, tsize));
    const void *kbytes;
    size_t ksize;
    if (kl_engine_file_section(&e->file, KL_SEC_PACKED, &kbytes, &ksize)) {
        /* the packed layout is the kernels' business: adopted only from an
         * engine this very build made; otherwise the layers pack the raw
         * weights (also in the engine) at their first run, as usual */
        const char *kb = kl_engine_file_meta(&e->file, "kiln_build");
        if (kb && strcmp(kb, kl_build_id()) == 0)
            KL_TRY(kl_engine_packed(e, path, kbytes, ksize));
        else
            kl_log(KILN_LOG_INFO, "%s: pre-packed weights from kiln build %s, this is %s: the layers pack their weights again",
                   path, kb ? kb : "(unrecorded)", kl_build_id());
    }
    KL_TRY(kl_engine_profiles(e, path, pbytes, psize));
    if (kl_engine_file_section(&e->file, KL_SEC_PLANS, &lbytes, &lsize)) KL_TRY(kl_engine_plans(e, path, lbytes, lsize));
    return kl_engine_open_cuda(e, path);
}

static kiln_status kl_engine_finish_open(kiln_engine *e, const char *path, kiln_engine **out) {
    kiln_status s = kl_engine_finish_open_impl(e, path);
    if (s) {
        kl_engine_free(e);
        return s;
    }
    *out = e;
    return KILN_OK;
}

kiln_status kl_engine_load_named(const char *map_path, const char *name, kiln_engine **out) {
    kiln_engine *e = kl_calloc(1, sizeof *e);
    if (!e) return KILN_ERR_NO_MEMORY;
    kl_arena_init(&e->arena);
    kiln_status s = kl_engine_file_map(map_path, &e->file);
    if (s) {
        kl_engine_free(e);
        return s;
    }
    return kl_engine_finish_open(e, name, out);
}

KILN_API kiln_status kiln_engine_load(const char *path, kiln_engine **out) {
    if (!path || !out) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_load: %s is NULL", !path ? "path" : "out");
    kiln_engine *e = kl_calloc(1, sizeof *e);
    if (!e) return KILN_ERR_NO_MEMORY;
    kl_arena_init(&e->arena);
    double t0 = kl_clock_ms();
    kiln_status s = kl_engine_file_map(path, &e->file);
    if (s) {
        kl_engine_free(e);
        return s;
    }
    double t1 = kl_clock_ms();
    s = kl_engine_finish_open(e, path, out);
    if (!s)
        kl_log(KILN_LOG_DEBUG, "engine load %s: map and checksum %.2f ms, graph, tactics, plans and device state %.2f ms",
               path, t1 - t0, kl_clock_ms() - t1);
    return s;
}

KILN_API kiln_status kiln_engine_load_from_memory(const void *data, size_t size, kiln_engine **out) {
    if (!data || !out)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_load_from_memory: %s is NULL", !data ? "data" : "out");
    return kl_engine_open(data, size, NULL, "<memory>", out);
}

KILN_API kiln_status kiln_engine_serialize(const kiln_engine *engine, void **data, size_t *size) {
    if (!engine || !data || !size) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_serialize: an argument is NULL");
    void *p = kl_malloc(engine->file.size ? engine->file.size : 1);
    if (!p) return KILN_ERR_NO_MEMORY;
    memcpy(p, engine->file.bytes, engine->file.size);
    *data = p;
    *size = engine->file.size;
    return KILN_OK;
}

KILN_API void kiln_free(void *ptr) { kl_free(ptr); }

KILN_API kiln_status kiln_engine_save(const kiln_engine *engine, const char *path) {
    if (!engine || !path) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_save: %s is NULL", !engine ? "engine" : "path");
    return kl_write_file_atomic(path, engine->file.bytes, engine->file.size);
}

/* ---- introspection ------------------------------------------------------------------------------- */

static kiln_status kl_engine_io(const kiln_engine *e, bool input, size_t index, const char *fn, const kl_value **v) {
    if (!e) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: engine is NULL", fn);
    size_t n = input ? e->n_inputs : e->ir->graph->n_outputs;
    if (index >= n) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: index %zu out of range (%zu)", fn, index, n);
    *v = input ? e->inputs[index] : e->ir->graph->outputs[index];
    return KILN_OK;
}

KILN_API kiln_status kiln_engine_input_count(const kiln_engine *e, size_t *count) {
    if (!e || !count) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_input_count: an argument is NULL");
    *count = e->n_inputs;
    return KILN_OK;
}

KILN_API kiln_status kiln_engine_output_count(const kiln_engine *e, size_t *count) {
    if (!e || !count) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_output_count: an argument is NULL");
    *count = e->ir->graph->n_outputs;
    return KILN_OK;
}

static kiln_status kl_engine_info(const kiln_engine *e, bool input, size_t index, const char *fn, const char **name,
                                  kiln_dtype *dtype, int *rank) {
    const kl_value *v;
    KL_TRY(kl_engine_io(e, input, index, fn, &v));
    if (name) *name = v->name;
    if (dtype) *dtype = v->type.elem;
    if (rank) *rank = v->type.kind == KL_TYPE_TENSOR ? v->type.shape.rank : -1;
    return KILN_OK;
}

KILN_API kiln_status kiln_engine_input_info(const kiln_engine *e, size_t index, const char **name, kiln_dtype *dtype,
                                            int *rank) {
    return kl_engine_info(e, true, index, "kiln_engine_input_info", name, dtype, rank);
}

KILN_API kiln_status kiln_engine_output_info(const kiln_engine *e, size_t index, const char **name, kiln_dtype *dtype,
                                             int *rank) {
    return kl_engine_info(e, false, index, "kiln_engine_output_info", name, dtype, rank);
}

static kiln_status kl_engine_dim(const kiln_engine *e, bool input, size_t index, int axis, int64_t *dim, const char *fn) {
    const kl_value *v;
    KL_TRY(kl_engine_io(e, input, index, fn, &v));
    if (!dim || axis < 0 || axis >= v->type.shape.rank)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: axis %d out of range for '%s'", fn, axis, v->name);
    *dim = v->type.shape.dims[axis].value;
    return KILN_OK;
}

KILN_API kiln_status kiln_engine_input_dim(const kiln_engine *e, size_t index, int axis, int64_t *dim) {
    return kl_engine_dim(e, true, index, axis, dim, "kiln_engine_input_dim");
}

KILN_API kiln_status kiln_engine_output_dim(const kiln_engine *e, size_t index, int axis, int64_t *dim) {
    return kl_engine_dim(e, false, index, axis, dim, "kiln_engine_output_dim");
}

KILN_API kiln_status kiln_engine_get(const kiln_engine *e, const char *key, const char **value) {
    if (!e || !key || !value) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_get: an argument is NULL");
    if (strcmp(key, "format_version") == 0) {
        *value = e->version_str; /* made at load: the engine is read by many threads */
        return KILN_OK;
    }
    const char *v = kl_engine_file_meta(&e->file, key);
    if (!v) return kl_errorf(KILN_ERR_NOT_FOUND, "kiln_engine_get: the engine has no '%s'", key);
    *value = v;
    return KILN_OK;
}

KILN_API kiln_status kiln_engine_layer_count(const kiln_engine *e, size_t *count) {
    if (!e || !count) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_layer_count: an argument is NULL");
    *count = e->n_layers;
    return KILN_OK;
}

KILN_API kiln_status kiln_engine_layer_info(const kiln_engine *e, size_t index, const char **name, const char **op,
                                            const char **provider, const char **tactic, const char **fused_from) {
    if (!e) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_layer_info: engine is NULL");
    if (index >= e->n_layers)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_layer_info: index %zu out of range (%zu layers)", index,
                         e->n_layers);
    const kl_layer *L = &e->layers[index];
    if (name) *name = kl_node_label(L->node);
    if (op) *op = L->op;
    if (provider) *provider = L->provider->name;
    if (tactic) *tactic = L->tactic->name;
    if (fused_from) *fused_from = L->node->fused_from ? L->node->fused_from : "";
    return KILN_OK;
}

/* Append DOT-escaped s to the text. */
static void kl_dot_str(char **buf, size_t *len, size_t *cap, const char *s, kiln_status *err);

static void kl_dot_printf(char **buf, size_t *len, size_t *cap, kiln_status *err, const char *fmt, ...) KL_PRINTF(5, 6);
static void kl_dot_printf(char **buf, size_t *len, size_t *cap, kiln_status *err, const char *fmt, ...) {
    if (*err) return;
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    size_t add = strlen(tmp);
    if (*len + add + 1 > *cap) {
        size_t nc = KL_MAX(*cap * 2, *len + add + 4096);
        char *r = kl_realloc_array(*buf, nc, 1);
        if (!r) {
            *err = KILN_ERR_NO_MEMORY;
            return;
        }
        *buf = r;
        *cap = nc;
    }
    memcpy(*buf + *len, tmp, add + 1);
    *len += add;
}

static void kl_dot_str(char **buf, size_t *len, size_t *cap, const char *s, kiln_status *err) {
    char tmp[512];
    size_t k = 0;
    for (; *s && k < sizeof tmp - 3; s++) {
        if (*s == '"' || *s == '\\') tmp[k++] = '\\';
        tmp[k++] = (*s == '\n') ? ' ' : *s;
    }
    tmp[k] = 0;
    kl_dot_printf(buf, len, cap, err, "%s", tmp);
}

KILN_API kiln_status kiln_engine_graph_dot(const kiln_engine *e, char **dot) {
    if (!e || !dot) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_engine_graph_dot: an argument is NULL");
    const kl_graph *g = e->ir->graph;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    kiln_status err = KILN_OK;
    kl_dot_printf(&buf, &len, &cap, &err, "digraph kiln {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\"];\n");
    for (size_t i = 0; i < g->n_inputs; i++) {
        if (g->inputs[i]->flags & KL_VALUE_INITIALIZER) continue;
        char t[256];
        kl_dot_printf(&buf, &len, &cap, &err, "  \"in_%zu\" [shape=ellipse, label=\"", i);
        kl_dot_str(&buf, &len, &cap, g->inputs[i]->name, &err);
        kl_dot_printf(&buf, &len, &cap, &err, "\\n%s\"];\n", kl_type_format(&g->inputs[i]->type, t, sizeof t));
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        const kl_layer *L = &e->layers[i];
        const kl_node *n = L->node;
        kl_dot_printf(&buf, &len, &cap, &err, "  \"n%zu\" [label=\"", i);
        kl_dot_str(&buf, &len, &cap, L->op, &err);
        kl_dot_printf(&buf, &len, &cap, &err, "\\n");
        kl_dot_str(&buf, &len, &cap, kl_node_label(n), &err);
        kl_dot_printf(&buf, &len, &cap, &err, "\\n[%s/%s]", L->provider->name, L->tactic->name);
        if (n->fused_from && strchr(n->fused_from, '+')) {
            kl_dot_printf(&buf, &len, &cap, &err, "\\nabsorbed: ");
            kl_dot_str(&buf, &len, &cap, n->fused_from, &err);
        }
        kl_dot_printf(&buf, &len, &cap, &err, "\"%s];\n", n->domain[0] ? ", style=filled, fillcolor=\"#dbe9f6\"" : "");
        for (size_t k = 0; k < n->n_inputs; k++) {
            const kl_value *v = n->inputs[k];
            if (!v || (v->flags & KL_VALUE_INITIALIZER)) continue;
            if (v->producer) {
                size_t j = v->producer->index;
                kl_dot_printf(&buf, &len, &cap, &err, "  \"n%zu\" -> \"n%zu\";\n", j, i);
            } else {
                for (size_t q = 0; q < g->n_inputs; q++)
                    if (g->inputs[q] == v) kl_dot_printf(&buf, &len, &cap, &err, "  \"in_%zu\" -> \"n%zu\";\n", q, i);
            }
        }
    }
    for (size_t i = 0; i < g->n_outputs; i++) {
        const kl_value *v = g->outputs[i];
        kl_dot_printf(&buf, &len, &cap, &err, "  \"out_%zu\" [shape=ellipse, label=\"", i);
        kl_dot_str(&buf, &len, &cap, v->name, &err);
        kl_dot_printf(&buf, &len, &cap, &err, "\"];\n");
        if (v->producer) kl_dot_printf(&buf, &len, &cap, &err, "  \"n%zu\" -> \"out_%zu\";\n", v->producer->index, i);
    }
    kl_dot_printf(&buf, &len, &cap, &err, "}\n");
    if (err) {
        kl_free(buf);
        return err;
    }
    *dot = buf;
    return KILN_OK;
}
