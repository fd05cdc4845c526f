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
    char providers[KL_MAX_PROVIDERS][16];
    int n_providers;
    int threads;
};

struct kl_program;
struct kiln_session {
    const kiln_model *model;
    struct kiln_session_options options;
    struct kl_program *plan; /* kernels, constants and release points for the CPU run path */
};

#endif /* KL_RUNTIME_H */
