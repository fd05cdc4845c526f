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
 * tests/unit/test_engine_format.c includes this file (with
 * KL_FUZZ_ENGINE_NO_MAIN) to replay fuzz/corpus/engine/ in every build.
 */
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "engine/format.h"
#include "onnx/onnx.h"

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

#ifndef KL_FUZZ_ENGINE_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return kl_fuzz_engine_one(data, size); }
#endif
