/*
 * fuzz_engine.c — libFuzzer target for the engine loader.  Each input goes
 * through the public kiln_engine_load_from_memory() and, so that real code
 * is covered whatever that entry point does today, directly through the
 * container reader (kl_engine_file_open) and the graph loader on the graph
 * and weights sections (kl_onnx_parse_with_blob, then kl_check_model).
 *
 * Most mutations break the checksum, so each input starting with the magic
 * is also tried as a "fixed-up" copy: file size and checksum patched to
 * match, which lets mutations reach the section table, the metadata and the
 * graph.  A crash, a sanitizer report or a leak is a bug; a refusal is the
 * normal answer.
 *
 * Seeds: KILN_FUZZ_ENGINE_SEEDS=DIR fuzz_engine writes small valid engines
 * made from conformance models into DIR and exits (scripts/fuzz.sh): a bare
 * container (meta, graph, weights) and a complete engine from kiln_build
 * for each model.
 * tests/unit/test_engine_format.c includes this file (with
 * KL_FUZZ_ENGINE_NO_MAIN) to replay fuzz/corpus/engine/ in every build and
 * to check that every seed is a valid engine whose graph loads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "engine/format.h"
#include "onnx/onnx.h"
#include "onnx/write.h"

/* Open a container, read its metadata, load its graph over its weights. */
static void kl_fuzz_container(const uint8_t *data, size_t size) {
    kl_engine_file f;
    if (kl_engine_file_open(data, size, &f) != KILN_OK) {
        kl_error_clear();
        return;
    }
    size_t total = 0;
    for (size_t i = 0; i < f.n_meta; i++) {
        const char *v = kl_engine_file_meta(&f, f.meta_keys[i]);
        total += v ? strlen(v) : 0;
    }
    const void *graph, *weights;
    size_t gn, wn;
    if (kl_engine_file_section(&f, KL_SEC_GRAPH, &graph, &gn)) {
        kl_engine_file_section(&f, KL_SEC_WEIGHTS, &weights, &wn);
        kl_model *m = NULL;
        if (kl_onnx_parse_with_blob(graph, gn, "fuzz", weights, wn, &m) == KILN_OK) {
            /* Read every initializer's bytes: any pointer outside the blob or
             * the graph shows up under AddressSanitizer. */
            for (size_t i = 0; i < m->graph->n_initializers; i++) {
                const kl_tensor *t = m->graph->initializers[i]->init;
                if (t && t->data && t->nbytes) total += kl_kh64(t->data, t->nbytes, 0) & 1;
            }
            kl_check_result *r = NULL;
            if (kl_check_model(m, &r) == KILN_OK) kl_check_free(r);
            kl_model_free(m);
        }
    }
    kl_engine_file_close(&f);
    kl_error_clear();
    (void)total;
}

/* One input: public API, container as is, container with size and checksum fixed up. */
static int kl_fuzz_engine_one(const uint8_t *data, size_t size) {
    kiln_engine *e = NULL;
    if (kiln_engine_load_from_memory(data, size, &e) == KILN_OK) kiln_engine_destroy(e);
    kl_error_clear();
    kl_fuzz_container(data, size);
    if (size >= KL_ENGINE_HEADER_SIZE && memcmp(data, KL_ENGINE_MAGIC, 8) == 0) {
        uint8_t *c = malloc(size);
        if (!c) return 0;
        memcpy(c, data, size);
        uint64_t v = size;
        for (int i = 0; i < 8; i++) c[16 + i] = (uint8_t)(v >> (8 * i));
        v = kl_kh64(c + KL_ENGINE_CHECKED_FROM, size - KL_ENGINE_CHECKED_FROM, 0);
        for (int i = 0; i < 8; i++) c[KL_ENGINE_CHECKSUM_OFFSET + i] = (uint8_t)(v >> (8 * i));
        e = NULL;
        if (kiln_engine_load_from_memory(c, size, &e) == KILN_OK) kiln_engine_destroy(e);
        kl_error_clear();
        kl_fuzz_container(c, size);
        free(c);
    }
    return 0;
}

/* ---- seeds ------------------------------------------------------------------------ */

/* Conformance tests made into seed engines (small graphs with and without
 * subgraphs; their second input becomes an initializer, so the weights
 * section is not empty). */
static const char *const kl_fuzz_seed_tests[] = {
    "test_add", "test_conv_with_strides_padding", "test_matmul_2d", "test_gemm_default_matrix_bias",
    "test_layer_normalization_2d_axis0", "test_if", "test_loop11", "test_range_float_type_positive_delta_expanded",
};

/* A valid engine container (meta, graph, weights) from the conformance test
 * folder `dir`.  Owner of *bytes: caller (kl_free). */
static kiln_status kl_fuzz_make_seed(const char *dir, void **bytes, size_t *size) {
    char path[4200];
    if (strlen(dir) > 4096) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "seed folder path too long");
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    kl_model *m = NULL;
    KL_TRY(kl_onnx_load_file(path, &m));
    kl_graph *g = m->graph;
    kiln_status s = KILN_OK;
    kl_mapfile in1 = {0};
    snprintf(path, sizeof path, "%s/test_data_set_0/input_1.pb", dir);
    if (g->n_nodes && g->nodes[0]->n_inputs > 1 && g->nodes[0]->inputs[1] &&
        kl_mapfile_open(path, &in1) == KILN_OK && in1.size) {
        kl_tensor *t = NULL;
        kl_value *v = NULL;
        s = kl_onnx_parse_tensor(&m->arena, in1.data, in1.size, &t);
        if (!s && t->dtype != KILN_DTYPE_STRING) {
            s = kl_graph_build_uses(g);
            if (!s) s = kl_value_new_const(g, "seed_weight", t, &v);
            if (!s) s = kl_node_set_input(g->nodes[0], 1, v);
        }
    }
    kl_error_clear();
    kl_onnx_written w = {0};
    kl_engine_writer *ew = NULL;
    if (!s) s = kl_onnx_write_model(m, &w);
    if (!s) s = kl_engine_writer_create(&ew);
    if (!s) {
        char hex[65];
        kl_sha256_hex(m->bytes, m->size, hex);
        s = kl_engine_writer_meta(ew, "kiln_version", kiln_version());
        if (!s) s = kl_engine_writer_meta(ew, "model_sha256", hex);
        if (!s) s = kl_engine_writer_meta(ew, "build_options", "providers=cpu");
        if (!s) s = kl_engine_writer_section(ew, KL_SEC_GRAPH, w.model, w.model_size);
        if (!s) s = kl_engine_writer_section(ew, KL_SEC_WEIGHTS, w.blob, w.blob_size);
        if (!s) s = kl_engine_writer_finish(ew, bytes, size);
    }
    kl_engine_writer_destroy(ew);
    kl_onnx_written_free(&w);
    kl_mapfile_close(&in1);
    kl_model_free(m);
    return s;
}

/* A complete engine of the conformance test folder `dir` through the public
 * builder (kiln_build + kiln_engine_serialize, default options): every
 * section the runtime writes, so mutations reach its loader too.  Owner of
 * *bytes: caller (kl_free). */
static kiln_status kl_fuzz_make_built_seed(const char *dir, void **bytes, size_t *size) {
    char path[4200];
    if (strlen(dir) > 4096) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "seed folder path too long");
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    kiln_model *m = NULL;
    kiln_build_options *o = NULL;
    kiln_engine *e = NULL;
    void *data = NULL;
    size_t n = 0;
    kiln_status s = kiln_model_load(path, &m);
    if (!s) s = kiln_build_options_create(&o);
    if (!s) s = kiln_build(m, o, &e);
    if (!s) s = kiln_engine_serialize(e, &data, &n);
    if (!s) {
        *bytes = kl_malloc(n ? n : 1);
        if (*bytes) {
            memcpy(*bytes, data, n);
            *size = n;
        } else {
            s = KILN_ERR_NO_MEMORY;
        }
    }
    kiln_free(data);
    kiln_engine_destroy(e);
    kiln_build_options_destroy(o);
    kiln_model_destroy(m);
    return s;
}

#ifndef KL_FUZZ_ENGINE_NO_MAIN

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return kl_fuzz_engine_one(data, size); }

/* KILN_FUZZ_ENGINE_SEEDS=DIR (with KILN_SHARED_DIR): write the seed engines
 * into DIR and exit instead of fuzzing (scripts/fuzz.sh does this). */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *out = getenv("KILN_FUZZ_ENGINE_SEEDS");
    if (!out) return 0;
    const char *shared = getenv("KILN_SHARED_DIR");
    int made = 0;
    for (size_t i = 0; i < sizeof kl_fuzz_seed_tests / sizeof *kl_fuzz_seed_tests; i++) {
        char dir[2048], path[4200];
        snprintf(dir, sizeof dir, "%s/onnx-backend-tests/node/%s", shared ? shared : "../shared", kl_fuzz_seed_tests[i]);
        for (int built = 0; built < 2; built++) {
            void *bytes = NULL;
            size_t size = 0;
            kiln_status s = built ? kl_fuzz_make_built_seed(dir, &bytes, &size) : kl_fuzz_make_seed(dir, &bytes, &size);
            if (s != KILN_OK) {
                fprintf(stderr, "fuzz_engine: no %s seed from %s: %s\n", built ? "built" : "container", dir,
                        kl_error_message());
                continue;
            }
            snprintf(path, sizeof path, "%s/%s-%s", out, built ? "built" : "engine", kl_fuzz_seed_tests[i] + 5);
            FILE *f = fopen(path, "wb");
            if (f && fwrite(bytes, 1, size, f) == size) made++;
            if (f) fclose(f);
            kl_free(bytes);
        }
    }
    fprintf(stderr, "fuzz_engine: wrote %d seed engine(s) into %s\n", made, out);
    exit(made ? 0 : 1);
}
#endif
