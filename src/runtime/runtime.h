/*
 * runtime.h — the objects behind the public API's opaque handles.
 */
#ifndef KL_RUNTIME_H
#define KL_RUNTIME_H

#include "ir/ir.h"
#include "onnx/onnx.h"

struct kiln_model {
    kl_model *ir;
    /* Graph inputs that are not initializers, in declaration order. */
    kl_value **inputs;
    size_t n_inputs;
};

struct kiln_check {
    kl_check_result *result;
};

struct kiln_tensor {
    kiln_dtype dtype;
    int rank;
    int64_t shape[KILN_MAX_RANK];
    int64_t count;
    void *data;
    size_t nbytes;
    bool owned;
};

#define KL_MAX_PROVIDERS 8
struct kiln_session_options {
    int threads;
    char *cache_dir;            /* engine cache folder, or NULL */
    kiln_build_options *build;  /* providers, threads and build settings */
};

struct kiln_session {
    const kiln_model *model;
    kiln_engine *engine;
    kiln_context *ctx;
    bool cache_hit;            /* the engine came from the cache */
};

/* The engine cache (cache.c): load the engine for (model, options, this
 * machine) from `dir`, or build it and store it there atomically; a stale
 * or refused entry is rebuilt.  *hit says whether it was loaded. */
kiln_status kl_engine_cache_get(const kiln_model *model, const kiln_build_options *options, const char *dir,
                                kiln_engine **out, bool *hit);

/* This library's build id (build_id.c): 16 hex digits of a hash over its
 * sources.  Engines record it (metadata "kiln_build"); pre-packed weights
 * are adopted only from an engine of the same id. */
const char *kl_build_id(void);

#endif /* KL_RUNTIME_H */
