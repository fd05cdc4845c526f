/*
 * runner.c — runs the ONNX backend node tests on kiln's CPU path.
 *
 *   kiln-conformance [--root DIR] [--known FILE] [--table FILE] [--filter SUBSTR[,SUBSTR...]] [--verbose]
 *                    [--engine] [--provider NAME [--precision fp32|fp16]] [--const-weights]
 *
 * For each test folder under DIR (default ../shared/onnx-backend-tests/node):
 * load model.onnx, read test_data_set_N/input_K.pb (TensorProto, or
 * SequenceProto / OptionalProto where the graph input is of that type),
 * run, and compare with output_K.pb the way the ONNX backend runner does:
 * rtol 1e-3, atol 1e-7, NaN equals NaN, exact for integers, bool, strings.
 * Tests of random operators (Bernoulli, Random*, Multinomial) check shape,
 * type and value range only.  Each test runs in a child process with a
 * time limit, so a crash or hang fails that test alone.
 *
 * Exit status: 0 when every failing test is in the known-failures list and
 * no listed test passes; 1 otherwise.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "onnx/onnx.h"
#ifdef KILN_HAVE_CUDA
#include "cuda/cuda.h"
#endif
#include "onnx/wire.h"
#include "runtime/engine.h"
#include "runtime/exec.h"

#define RTOL 1e-3
#define ATOL 1e-7
#define TEST_TIMEOUT_S 30

/* ---- reading .pb values ------------------------------------------------------------ */

static kiln_status parse_value(kl_arena *a, const uint8_t *d, size_t n, kl_type_kind kind, int depth, kl_rt **out);

/* SequenceProto (kind SEQUENCE) or OptionalProto (kind OPTIONAL). */
static kiln_status parse_container(kl_arena *a, const uint8_t *d, size_t n, kl_type_kind kind, int depth,
                                   kl_rt **out) {
    if (depth > 8) return kl_errorf(KILN_ERR_PARSE, "values nested too deep");
    kl_rt *items[4096];
    size_t ni = 0;
    int64_t elem_type = 0;
    kl_pb r = kl_pb_init(d, n);
    kl_pb_field f;
    bool more;
    kiln_status s = KILN_OK;
    kiln_dtype dt = KILN_DTYPE_UNDEFINED;
    for (;;) {
        s = kl_pb_next(&r, &f, &more);
        if (s || !more) break;
        if (f.num == 2) elem_type = (int64_t)f.v;
        else if (f.num == 3 || f.num == 5 || f.num == 7) {
            if (ni >= 4096) {
                s = kl_errorf(KILN_ERR_UNSUPPORTED, "too many sequence items");
                break;
            }
            kl_type_kind k = f.num == 3 ? KL_TYPE_TENSOR : f.num == 5 ? KL_TYPE_SEQUENCE : KL_TYPE_OPTIONAL;
            s = parse_value(a, f.data, f.len, k, depth + 1, &items[ni]);
            if (s) break;
            if (items[ni]->kind == KL_RT_TENSOR) dt = items[ni]->dtype;
            ni++;
        }
    }
    if (!s) {
        if (kind == KL_TYPE_OPTIONAL) {
            if (ni == 0) s = kl_rt_none(elem_type == 2 ? KL_TYPE_SEQUENCE : KL_TYPE_TENSOR, out);
            else *out = kl_rt_ref(items[0]);
        } else {
            s = kl_rt_sequence(dt, items, ni, out);
        }
    }
    for (size_t i = 0; i < ni; i++) kl_rt_unref(items[i]);
    return s;
}

static kiln_status parse_value(kl_arena *a, const uint8_t *d, size_t n, kl_type_kind kind, int depth, kl_rt **out) {
    if (kind == KL_TYPE_SEQUENCE || kind == KL_TYPE_OPTIONAL) return parse_container(a, d, n, kind, depth, out);
    kl_tensor *t;
    KL_TRY(kl_onnx_parse_tensor(a, d, n, &t));
    return kl_rt_from_tensor(t, out);
}

static kiln_status read_value(kl_arena *a, const char *path, const kl_type *type, kl_mapfile *mf, kl_rt **out) {
    KL_TRY(kl_mapfile_open(path, mf));
    kl_type_kind kind = type ? type->kind : KL_TYPE_TENSOR;
    if (kind == KL_TYPE_UNKNOWN) kind = KL_TYPE_TENSOR;
    kiln_status s = parse_value(a, mf->data ? mf->data : (const uint8_t *)"", mf->size, kind, 0, out);
    if (s) kl_error_context(s, "%s: ", path);
    return s;
}

/* ---- comparing ------------------------------------------------------------------------- */

static bool is_float(kiln_dtype t) { return kl_dtype_is_float(t) || t == KILN_DTYPE_COMPLEX64 || t == KILN_DTYPE_COMPLEX128; }

static double elem_f64(const kl_rt *t, int64_t i) {
    if (t->dtype == KILN_DTYPE_COMPLEX64) return ((const float *)t->data)[i];
    if (t->dtype == KILN_DTYPE_COMPLEX128) return ((const double *)t->data)[i];
    return kl_rt_get_f64(t, i);
}

/* Compare got with want; on mismatch write the reason into msg. */
static bool compare(const kl_rt *want, const kl_rt *got, bool random_op, char *msg, size_t size, int depth) {
    if (!got) {
        snprintf(msg, size, "output missing");
        return false;
    }
    if (want->kind != got->kind) {
        snprintf(msg, size, "kind %d, expected %d", got->kind, want->kind);
        return false;
    }
    if (want->kind == KL_RT_NONE) return true;
    if (want->kind == KL_RT_SEQUENCE) {
        if (want->n_items != got->n_items) {
            snprintf(msg, size, "sequence of %zu items, expected %zu", got->n_items, want->n_items);
            return false;
        }
        for (size_t i = 0; i < want->n_items; i++)
            if (!compare(want->items[i], got->items[i], random_op, msg, size, depth + 1)) return false;
        return true;
    }
    char a[128], b[128];
    if (want->dtype != got->dtype || want->rank != got->rank ||
        memcmp(want->dims, got->dims, (size_t)want->rank * sizeof(int64_t)) != 0) {
        snprintf(msg, size, "got %s, expected %s", kl_rt_describe(got, a, sizeof a), kl_rt_describe(want, b, sizeof b));
        return false;
    }
    if (random_op) return true;
    int64_t n = want->count;
    if (want->dtype == KILN_DTYPE_COMPLEX64 || want->dtype == KILN_DTYPE_COMPLEX128) n *= 2;
    if (want->dtype == KILN_DTYPE_STRING) {
        const kl_str *x = want->data, *y = got->data;
        for (int64_t i = 0; i < n; i++)
            if (x[i].len != y[i].len || (x[i].len && memcmp(x[i].ptr, y[i].ptr, x[i].len) != 0)) {
                snprintf(msg, size, "string %lld is \"%.*s\", expected \"%.*s\"", (long long)i, (int)KL_MIN(y[i].len, 40),
                         y[i].ptr ? y[i].ptr : "", (int)KL_MIN(x[i].len, 40), x[i].ptr ? x[i].ptr : "");
                return false;
            }
        return true;
    }
    if (!is_float(want->dtype)) {
        for (int64_t i = 0; i < n; i++)
            if (kl_rt_get_i64(want, i) != kl_rt_get_i64(got, i)) {
                snprintf(msg, size, "element %lld is %lld, expected %lld", (long long)i, (long long)kl_rt_get_i64(got, i),
                         (long long)kl_rt_get_i64(want, i));
                return false;
            }
        return true;
    }
    int64_t bad = 0, first = -1;
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = elem_f64(want, i), y = elem_f64(got, i);
        bool ok;
        if (isnan(x) || isnan(y)) ok = isnan(x) && isnan(y);
        else if (isinf(x) || isinf(y)) ok = x == y;
        else ok = fabs(x - y) <= ATOL + RTOL * fabs(x);
        if (!ok) {
            if (first < 0) first = i;
            bad++;
            double d = fabs(x - y);
            if (d > worst || isnan(d)) worst = d;
        }
    }
    if (bad) {
        snprintf(msg, size, "%lld of %lld values differ (first at %lld: got %.9g, expected %.9g; max abs diff %.3g)",
                 (long long)bad, (long long)n, (long long)first, elem_f64(got, first), elem_f64(want, first), worst);
        return false;
    }
    return true;
}

/* ---- one test --------------------------------------------------------------------------- */

static bool graph_has_random(const kl_graph *g) {
    static const char *const ops[] = {"Bernoulli", "RandomUniform", "RandomUniformLike", "RandomNormal",
                                      "RandomNormalLike", "Multinomial"};
    for (size_t i = 0; i < g->n_nodes; i++)
        for (size_t k = 0; k < KL_ARRAY_LEN(ops); k++)
            if (strcmp(g->nodes[i]->op_type, ops[k]) == 0) return true;
    return false;
}

/* --engine: run every test through kiln_build -> serialize ->
 * kiln_engine_load_from_memory, on the loaded engine's program. */
static bool g_engine_mode = false;
/* --provider cuda [--precision fp16]: engines built for that provider (with
 * the cpu as fallback), run through the cuda executor; tests where some
 * layer runs on cuda are counted apart ("claimed"). */
static const char *g_provider = NULL;
static const char *g_precision = "fp32";

/* --const-weights: the weights and bias of Conv, ConvTranspose and Gemm nodes
 * (and a MatMul's B, a TopK's K) that a test gives as graph inputs become initializers
 * holding the test's values
 * (tests with one data set), so providers that take only constant weights
 * (cuda) run those tests on ONNX's own data, and CPU engines their packed
 * tactics. */
static bool g_const_weights = false;

static void put_varint(uint8_t **p, uint64_t v) {
    while (v >= 0x80) {
        *(*p)++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *(*p)++ = (uint8_t)v;
}

static size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

/* The ModelProto `model` with TensorProtos tp[i] (named name[i]: a name
 * field is appended, which overrides any earlier one) appended to its
 * graph's initializers (GraphProto field 5).  *out: malloc'ed. */
static kiln_status add_initializers(const uint8_t *model, size_t size, const kl_mapfile *tp, const char *const *name,
                                    size_t n, uint8_t **out, size_t *out_size) {
    size_t extra = 0;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(name[i]), tl = tp[i].size + 1 + varint_len(nl) + nl;
        extra += 1 + varint_len(tl) + tl;
    }
    uint8_t *buf = malloc(size + extra + 16), *w = buf;
    if (!buf) return KILN_ERR_NO_MEMORY;
    kl_pb r = kl_pb_init(model, size);
    kl_pb_field f;
    bool more, graph = false;
    const uint8_t *start = model;
    for (;;) {
        kiln_status s = kl_pb_next(&r, &f, &more);
        if (s || !more) {
            if (s) {
                free(buf);
                return s;
            }
            break;
        }
        if (f.num != 7 || f.wire != KL_WIRE_LEN) {
            memcpy(w, start, (size_t)(r.p - start));
            w += r.p - start;
        } else {
            graph = true;
            *w++ = 0x3A; /* field 7, LEN */
            put_varint(&w, f.len + extra);
            memcpy(w, f.data, f.len);
            w += f.len;
            for (size_t i = 0; i < n; i++) {
                size_t nl = strlen(name[i]), tl = tp[i].size + 1 + varint_len(nl) + nl;
                *w++ = 0x2A; /* field 5, LEN */
                put_varint(&w, tl);
                memcpy(w, tp[i].data, tp[i].size);
                w += tp[i].size;
                *w++ = 0x42; /* TensorProto.name (8), LEN */
                put_varint(&w, nl);
                memcpy(w, name[i], nl);
                w += nl;
            }
        }
        start = r.p;
    }
    if (!graph) {
        free(buf);
        return kl_errorf(KILN_ERR_PARSE, "the model has no graph");
    }
    *out = buf;
    *out_size = (size_t)(w - buf);
    return KILN_OK;
}

/* The weights (input 1) and bias (2) of Conv/ConvTranspose/Gemm nodes and a
 * MatMul's B that are graph inputs, frozen from dir's only data set: the new model bytes in
 * *out (NULL when there is nothing to freeze). */
static kiln_status freeze_weights(const kl_model *m, const char *dir, const char *path, uint8_t **out,
                                  size_t *out_size) {
    *out = NULL;
    const kl_graph *g = m->graph;
    char f[4300];
    struct stat st;
    snprintf(f, sizeof f, "%s/test_data_set_1", dir);
    if (stat(f, &st) == 0) return KILN_OK; /* several data sets: their weights may differ */
    const char *name[16];
    kl_mapfile tp[16];
    size_t n = 0;
    kiln_status s = KILN_OK;
    for (size_t i = 0, j = 0; i < g->n_inputs && !s; i++) {
        const kl_value *v = g->inputs[i];
        if (v->flags & KL_VALUE_INITIALIZER) continue;
        bool w = false;
        for (size_t k = 0; k < g->n_nodes; k++) {
            const kl_node *nd = g->nodes[k];
            if (nd->domain[0]) continue;
            if (!strcmp(nd->op_type, "Conv") || !strcmp(nd->op_type, "ConvTranspose") || !strcmp(nd->op_type, "Gemm"))
                for (size_t q = 1; q < 3 && q < nd->n_inputs; q++) w |= nd->inputs[q] == v;
            if (!strcmp(nd->op_type, "MatMul") && nd->n_inputs == 2) w |= nd->inputs[1] == v;
            if (!strcmp(nd->op_type, "TopK") && nd->n_inputs >= 2) w |= nd->inputs[1] == v; /* K */
        }
        if (w && n < 16) {
            snprintf(f, sizeof f, "%s/test_data_set_0/input_%zu.pb", dir, j);
            s = kl_mapfile_open(f, &tp[n]);
            if (!s) name[n++] = v->name;
        }
        j++;
    }
    if (!s && n) {
        kl_mapfile mf;
        s = kl_mapfile_open(path, &mf);
        if (!s) {
            s = add_initializers(mf.data, mf.size, tp, name, n, out, out_size);
            kl_mapfile_close(&mf);
        }
    }
    for (size_t i = 0; i < n; i++) kl_mapfile_close(&tp[i]);
    return s;
}

/* Build, serialize and reload the engine of model file `path` (or of the
 * model bytes `mem`, when not NULL, with external data in `dir`). */
static kiln_status engine_roundtrip(const char *path, const uint8_t *mem, size_t mem_size, const char *dir,
                                    kiln_engine **out) {
    kiln_model *km = NULL;
    kiln_engine *e = NULL;
    void *bytes = NULL;
    size_t size = 0;
    kiln_build_options *bo = NULL;
    kiln_status s = mem ? kiln_model_load_from_memory(mem, mem_size, dir, &km) : kiln_model_load(path, &km);
    if (!s && g_provider) {
        s = kiln_build_options_create(&bo);
        if (!s) s = kiln_build_options_append_provider(bo, g_provider);
        if (!s) s = kiln_build_options_set(bo, "precision", g_precision);
    }
    if (!s) s = kiln_build(km, bo, &e);
    kiln_build_options_destroy(bo);
    if (!s) s = kiln_engine_serialize(e, &bytes, &size);
    kiln_engine_destroy(e);
    kiln_model_destroy(km);
    /* The reloaded engine owns the bytes (kiln_engine_load_from_memory's
     * internal form), so nothing leaks. */
    if (!s) return kl_engine_open(bytes, size, bytes, "<memory>", out);
    kiln_free(bytes);
    return s;
}

/* Run one test folder; returns 0 on pass, writes the reason otherwise. */
static int run_test(const char *dir, char *msg, size_t size) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    kl_model *m = NULL;
    kl_check_result *cr = NULL;
    kl_program *plan = NULL;
    kiln_engine *engine = NULL;
    int rc = 1;
    kiln_status s = kl_onnx_load_file(path, &m);
    if (s) {
        snprintf(msg, size, "load: %s", kiln_last_error());
        return 1;
    }
    s = kl_check_model(m, &cr);
    if (s) {
        snprintf(msg, size, "check: %s", kiln_last_error());
        goto out;
    }
    for (size_t i = 0; i < cr->n; i++)
        if (cr->items[i].severity == KILN_CHECK_ERROR) {
            snprintf(msg, size, "check: %s", cr->items[i].message);
            goto out;
        }
    bool froze = false;
    if (g_engine_mode) {
        uint8_t *frozen = NULL;
        size_t frozen_size = 0;
        s = g_const_weights ? freeze_weights(m, dir, path, &frozen, &frozen_size) : KILN_OK;
        if (!s) s = engine_roundtrip(path, frozen, frozen_size, dir, &engine);
        froze = frozen != NULL;
        free(frozen); /* the engine holds its own serialized copy */
        if (s) {
            snprintf(msg, size, "engine: %s", kiln_last_error());
            goto out;
        }
    } else {
        s = kl_program_create(m, 1, &plan);
    }
    if (s) {
        snprintf(msg, size, "%s", kiln_last_error());
        goto out;
    }
    const kl_graph *g = engine ? engine->ir->graph : m->graph;
    kl_program *prog = engine ? engine->prog : plan;
    bool random_op = graph_has_random(g);
    int sets = 0;
    for (int ds = 0;; ds++) {
        char sdir[4200];
        snprintf(sdir, sizeof sdir, "%s/test_data_set_%d", dir, ds);
        struct stat st;
        if (stat(sdir, &st) != 0) break;
        sets++;
        kl_arena a;
        kl_arena_init(&a);
        size_t nin = 0;
        kl_rt *inputs[64] = {0}, *outputs[64] = {0}, *want[64] = {0};
        kl_mapfile files[128];
        size_t nfiles = 0;
        /* input_K.pb is the K-th graph input of the test's model that is
         * not an initializer; g's input of that name takes it, unless
         * --const-weights made it an initializer. */
        size_t slot[64];
        for (size_t i = 0; i < m->graph->n_inputs && nin < 64; i++) {
            const kl_value *v = m->graph->inputs[i];
            if (v->flags & KL_VALUE_INITIALIZER) continue;
            slot[nin] = SIZE_MAX;
            for (size_t k = 0; k < g->n_inputs && k < 64; k++)
                if (!strcmp(g->inputs[k]->name, v->name) && !(g->inputs[k]->flags & KL_VALUE_INITIALIZER)) slot[nin] = k;
            nin++;
        }
        s = g->n_inputs > 64 ? kl_errorf(KILN_ERR_UNSUPPORTED, "more than 64 inputs") : KILN_OK;
        for (size_t i = 0; i < nin && !s; i++) {
            char f[4300];
            snprintf(f, sizeof f, "%s/input_%zu.pb", sdir, i);
            if (stat(f, &st) != 0) break; /* trailing optional inputs may be absent */
            if (slot[i] == SIZE_MAX) continue; /* frozen into the engine */
            s = read_value(&a, f, &g->inputs[slot[i]]->type, &files[nfiles++], &inputs[slot[i]]);
        }
        size_t nout = g->n_outputs < 64 ? g->n_outputs : 64;
        for (size_t i = 0; i < nout && !s; i++) {
            char f[4300];
            snprintf(f, sizeof f, "%s/output_%zu.pb", sdir, i);
            s = read_value(&a, f, &g->outputs[i]->type, &files[nfiles++], &want[i]);
        }
        if (s) {
            snprintf(msg, size, "reading test data: %s", kiln_last_error());
        } else {
#ifdef KILN_HAVE_CUDA
            if (engine && engine->cuda) {
                kl_cuda_ctx *cc = NULL;
                s = kl_cuda_ctx_create(engine->cuda, &cc);
                if (!s) s = kl_cuda_ctx_run(cc, inputs, g->n_inputs, outputs, nout);
                kl_cuda_ctx_free(cc);
            } else
#endif
            s = kl_program_run(prog, inputs, g->n_inputs, outputs, nout);
            if (s) {
                snprintf(msg, size, "run: %s", kiln_last_error());
            } else {
                for (size_t i = 0; i < nout; i++) {
                    char why[512];
                    if (!compare(want[i], outputs[i], random_op, why, sizeof why, 0)) {
                        snprintf(msg, size, "data set %d output %zu '%s': %s", ds, i, g->outputs[i]->name, why);
                        s = KILN_ERR_INTERNAL;
                        break;
                    }
                }
            }
        }
        for (size_t i = 0; i < 64; i++) {
            kl_rt_unref(inputs[i]);
            kl_rt_unref(outputs[i]);
            kl_rt_unref(want[i]);
        }
        for (size_t i = 0; i < nfiles; i++) kl_mapfile_close(&files[i]);
        kl_arena_free(&a);
        if (s) goto out;
    }
    if (!sets) {
        snprintf(msg, size, "no test data sets");
        goto out;
    }
    rc = 0;
    if (engine && g_provider) {
        size_t on = 0;
        for (size_t i = 0; i < engine->n_layers; i++) on += strcmp(engine->layers[i].provider->name, g_provider) == 0;
        if (on) snprintf(msg, size, "[claimed]");
    }
    if (froze) snprintf(msg + strlen(msg), size - strlen(msg), "[frozen]");
out:
    kiln_engine_destroy(engine);
    kl_program_free(plan);
    kl_check_free(cr);
    kl_model_free(m);
    return rc;
}

/* Run a test in a child process with a time limit. */
static int run_isolated(const char *dir, char *msg, size_t size) {
    int fds[2];
    if (pipe(fds) != 0) return run_test(dir, msg, size);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return run_test(dir, msg, size);
    }
    if (pid == 0) {
        close(fds[0]);
        alarm(TEST_TIMEOUT_S);
        char m2[2048] = "";
        int rc = run_test(dir, m2, sizeof m2);
        ssize_t w = write(fds[1], m2, strlen(m2));
        (void)w;
        close(fds[1]);
        exit(rc); /* not _exit: LeakSanitizer runs at exit */
    }
    close(fds[1]);
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fds[0], msg + got, size - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
        if (got >= size - 1) break;
    }
    msg[got] = 0;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) {
        snprintf(msg, size, WTERMSIG(status) == SIGALRM ? "timed out after %d s" : "crashed (signal %d)",
                 WTERMSIG(status) == SIGALRM ? TEST_TIMEOUT_S : WTERMSIG(status));
        return 1;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

/* ---- driver ------------------------------------------------------------------------------ */

typedef struct known {
    char name[256];
    char reason[512];
    bool seen;
} known;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The test list lives at file scope so LeakSanitizer, which checks every
 * child process at exit, sees it as reachable. */
static char **names;

typedef struct opstat {
    char op[128];
    int pass, total;
} opstat;

/* Operator a test is about: the op of its (non-expanded) model's first node. */
static void test_op(const char *root, const char *name, char *op, size_t size) {
    char base[512], path[4096];
    snprintf(base, sizeof base, "%s", name);
    size_t bl = strlen(base);
    if (bl > 9 && strcmp(base + bl - 9, "_expanded") == 0) base[bl - 9] = 0;
    snprintf(path, sizeof path, "%s/%s/model.onnx", root, base);
    snprintf(op, size, "?");
    kl_model *m;
    if (kl_onnx_load_file(path, &m) != KILN_OK) {
        snprintf(path, sizeof path, "%s/%s/model.onnx", root, name);
        if (kl_onnx_load_file(path, &m) != KILN_OK) return;
    }
    if (m->graph->n_nodes) {
        const kl_node *n = m->graph->nodes[0];
        snprintf(op, size, "%s%s%s", n->domain, n->domain[0] ? "." : "", n->op_type);
    }
    kl_model_free(m);
}

/* --filter A,B,...: names that contain any of the comma-separated substrings. */
static bool name_matches(const char *name, const char *filter) {
    for (const char *p = filter;;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        char sub[256];
        if (n < sizeof sub) {
            memcpy(sub, p, n);
            sub[n] = 0;
            if (strstr(name, sub)) return true;
        }
        if (!c) return false;
        p = c + 1;
    }
}

int main(int argc, char **argv) {
    const char *root = NULL, *known_path = NULL, *table = NULL, *filter = NULL;
    bool verbose = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--root") && i + 1 < argc) root = argv[++i];
        else if (!strcmp(argv[i], "--known") && i + 1 < argc) known_path = argv[++i];
        else if (!strcmp(argv[i], "--table") && i + 1 < argc) table = argv[++i];
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
        else if (!strcmp(argv[i], "--verbose")) verbose = true;
        else if (!strcmp(argv[i], "--engine")) g_engine_mode = true;
        else if (!strcmp(argv[i], "--const-weights")) g_const_weights = g_engine_mode = true;
        else if (!strcmp(argv[i], "--provider") && i + 1 < argc) g_provider = argv[++i], g_engine_mode = true;
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) g_precision = argv[++i];
        else if (argv[i][0] != '-' && !root) root = argv[i];
        else {
            fprintf(stderr, "usage: %s [--root DIR] [--known FILE] [--table FILE] [--filter SUBSTR] [--verbose] [--engine] [--provider NAME [--precision fp32|fp16]] [--const-weights]\n", argv[0]);
            return 2;
        }
    }
    char defroot[4096];
    if (!root) {
        const char *src = getenv("KILN_SHARED_DIR");
        snprintf(defroot, sizeof defroot, "%s/onnx-backend-tests/node", src ? src : "../shared");
        root = defroot;
    }
    static known kn[4096];
    size_t nkn = 0;
    if (known_path) {
        FILE *f = fopen(known_path, "r");
        if (!f) {
            fprintf(stderr, "cannot open known-failures list '%s': %s\n", known_path, strerror(errno));
            return 2;
        }
        char line[1024];
        while (fgets(line, sizeof line, f) && nkn < 4096) {
            char *p = line;
            while (*p == ' ' || *p == '\t') p++;
            if (*p == '#' || *p == '\n' || !*p) continue;
            char *e = p;
            while (*e && *e != ' ' && *e != '\t' && *e != '\n') e++;
            size_t len = (size_t)(e - p);
            if (len >= sizeof kn[0].name) continue;
            memcpy(kn[nkn].name, p, len);
            kn[nkn].name[len] = 0;
            while (*e == ' ' || *e == '\t') e++;
            snprintf(kn[nkn].reason, sizeof kn[nkn].reason, "%s", e);
            char *nl = strchr(kn[nkn].reason, '\n');
            if (nl) *nl = 0;
            nkn++;
        }
        fclose(f);
    }
    DIR *d = opendir(root);
    if (!d) {
        fprintf(stderr, "cannot open test folder '%s': %s\n", root, strerror(errno));
        return 2;
    }
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "test_", 5) != 0) continue;
        if (filter && !name_matches(e->d_name, filter)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) return 2;
            names = grown;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    int passed = 0, failed = 0, skipped = 0, unexpected_pass = 0, claimed = 0, claimed_pass = 0, frozen = 0;
    static opstat *ops;
    ops = calloc(n + 1, sizeof *ops);
    size_t nops = 0;
    time_t t0 = time(NULL);
    for (size_t i = 0; i < n; i++) {
        char dir[4096], msg[2048] = "";
        snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
        int rc = run_isolated(dir, msg, sizeof msg);
        known *k = NULL;
        for (size_t j = 0; j < nkn; j++)
            if (!strcmp(kn[j].name, names[i])) k = &kn[j];
        if (k) k->seen = true;
        frozen += rc == 0 && strstr(msg, "[frozen]") != NULL;
        if (g_provider && strstr(msg, "[claimed]")) {
            claimed++;
            claimed_pass += rc == 0;
        } else if (g_provider && rc != 0 && strstr(msg, g_provider)) {
            claimed++; /* failed on the provider's path */
        }
        if (rc == 0 && !k) {
            passed++;
            if (verbose) printf("ok   %s\n", names[i]);
        } else if (rc == 0 && k) {
            passed++;
            unexpected_pass++;
            printf("PASS %s: listed as a known failure (%s) but passes now: remove it from the list\n", names[i], k->reason);
        } else if (k) {
            skipped++;
            if (verbose) printf("skip %s: %s\n", names[i], msg);
        } else {
            failed++;
            printf("FAIL %s: %s\n", names[i], msg);
        }
        char op[128];
        test_op(root, names[i], op, sizeof op);
        size_t j;
        for (j = 0; j < nops; j++)
            if (!strcmp(ops[j].op, op)) break;
        if (j == nops) snprintf(ops[nops++].op, sizeof ops[0].op, "%s", op);
        ops[j].total++;
        if (rc == 0) ops[j].pass++;
        fflush(stdout);
    }
    FILE *tf = table ? fopen(table, "w") : NULL;
    if (tf) {
        int full = 0;
        fprintf(tf, "%-40s %6s %6s\n", "operator", "passed", "tests");
        for (size_t j = 0; j < nops; j++) {
            fprintf(tf, "%-40s %6d %6d%s\n", ops[j].op, ops[j].pass, ops[j].total,
                    ops[j].pass == ops[j].total ? "" : "  *");
            full += ops[j].pass == ops[j].total;
        }
        fprintf(tf, "\n%d of %zu operators pass all their tests\n", full, nops);
        fclose(tf);
    }
    int total = passed + failed + skipped;
    if (tf) printf("\nper-operator table written to %s", table);
    printf("\n%zu tests in %lds\n", n, (long)(time(NULL) - t0));
    printf("pass rate: %.1f%% (%d of %d)\n", total ? 100.0 * passed / total : 0.0, passed, total);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    if (g_provider)
        printf("provider %s (%s): %d tests have layers on it, %d of them pass\n", g_provider, g_precision, claimed,
               claimed_pass);
    if (g_const_weights)
        printf("const weights: %d passing tests ran with their weights frozen into the engine\n", frozen);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    free(ops);
    if (unexpected_pass) printf("%d listed known failures pass now: shrink the list\n", unexpected_pass);
    if (g_const_weights && n && !frozen) printf("--const-weights froze no test's weights\n");
    return failed || unexpected_pass || (g_const_weights && n && !frozen) ? 1 : 0;
}
