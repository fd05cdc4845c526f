/* kiln_model and kiln_check: loading, input/output introspection, checking. */
#include <string.h>

#include "backend/kernel.h"
#include "runtime/runtime.h"

/* Wrap a loaded IR model into a public handle; takes ownership of `ir`
 * (freed on failure).  Inputs are the graph inputs without initializers. */
static kiln_status kl_model_wrap(kl_model *ir, kiln_model **out) {
    kiln_model *m = kl_calloc(1, sizeof *m);
    if (!m) {
        kl_model_free(ir);
        return KILN_ERR_NO_MEMORY;
    }
    m->ir = ir;
    const kl_graph *g = ir->graph;
    size_t n = 0;
    for (size_t i = 0; g && i < g->n_inputs; i++)
        if (g->inputs[i] && !(g->inputs[i]->flags & KL_VALUE_INITIALIZER)) n++;
    if (n > 0) {
        m->inputs = kl_arena_array(&ir->arena, n, sizeof *m->inputs);
        if (!m->inputs) {
            kiln_model_destroy(m);
            return KILN_ERR_NO_MEMORY;
        }
        for (size_t i = 0; i < g->n_inputs; i++)
            if (g->inputs[i] && !(g->inputs[i]->flags & KL_VALUE_INITIALIZER))
                m->inputs[m->n_inputs++] = g->inputs[i];
    }
    *out = m;
    return KILN_OK;
}

KILN_API kiln_status kiln_model_load(const char *path, kiln_model **out) {
    if (!path || !out)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_model_load: %s is NULL",
                         !path ? "path" : "out");
    if (!*path) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_model_load: path is empty");
    kl_model *ir = NULL;
    KL_TRY(kl_onnx_load_file(path, &ir));
    return kl_model_wrap(ir, out);
}

KILN_API kiln_status kiln_model_load_from_memory(const void *data, size_t size,
                                                 const char *base_dir, kiln_model **out) {
    if (!data || !out)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_model_load_from_memory: %s is NULL",
                         !data ? "data" : "out");
    kl_model *ir = NULL;
    KL_TRY(kl_onnx_parse(data, size, "<memory>", base_dir, &ir));
    return kl_model_wrap(ir, out);
}

KILN_API void kiln_model_destroy(kiln_model *model) {
    if (!model) return;
    kl_model_free(model->ir);
    kl_free(model);
}

KILN_API kiln_status kiln_model_input_count(const kiln_model *model, size_t *count) {
    if (!model || !count)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_model_input_count: %s is NULL",
                         !model ? "model" : "count");
    *count = model->n_inputs;
    return KILN_OK;
}

KILN_API kiln_status kiln_model_output_count(const kiln_model *model, size_t *count) {
    if (!model || !count)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_model_output_count: %s is NULL",
                         !model ? "model" : "count");
    *count = model->ir->graph ? model->ir->graph->n_outputs : 0;
    return KILN_OK;
}

/* Input (is_input) or output `index` of the model, or an error naming `fn`. */
static kiln_status kl_model_io(const kiln_model *model, bool is_input, size_t index,
                               const char *fn, const kl_value **out) {
    if (!model) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: model is NULL", fn);
    const kl_graph *g = model->ir->graph;
    size_t n = is_input ? model->n_inputs : (g ? g->n_outputs : 0);
    if (index >= n)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: index %zu is out of range (the model has %zu %s)",
                         fn, index, n, is_input ? "inputs" : "outputs");
    const kl_value *v = is_input ? model->inputs[index] : g->outputs[index];
    if (!v) return kl_errorf(KILN_ERR_INTERNAL, "%s: %s %zu is missing", fn,
                             is_input ? "input" : "output", index);
    *out = v;
    return KILN_OK;
}

/* Fill name/dtype/rank of a value for the *_info functions. */
static kiln_status kl_model_info(const kiln_model *model, bool is_input, size_t index,
                                 const char *fn, const char **name, kiln_dtype *dtype,
                                 int *rank) {
    const kl_value *v;
    KL_TRY(kl_model_io(model, is_input, index, fn, &v));
    if (!name || !dtype || !rank)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                         !name ? "name" : !dtype ? "dtype" : "rank");
    bool tensor = v->type.kind == KL_TYPE_TENSOR;
    *name = v->name;
    *dtype = tensor ? v->type.elem : KILN_DTYPE_UNDEFINED;
    *rank = tensor ? v->type.shape.rank : -1;
    return KILN_OK;
}

/* Fill one dimension of a value for the *_dim functions. */
static kiln_status kl_model_dim(const kiln_model *model, bool is_input, size_t index, int axis,
                                const char *fn, int64_t *dim, const char **dim_name) {
    const kl_value *v;
    KL_TRY(kl_model_io(model, is_input, index, fn, &v));
    int rank = v->type.kind == KL_TYPE_TENSOR ? v->type.shape.rank : -1;
    if (rank < 0)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: %s '%s' has unknown rank", fn,
                         is_input ? "input" : "output", v->name);
    if (axis < 0 || axis >= rank)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: axis %d is out of range for %s '%s' of rank %d",
                         fn, axis, is_input ? "input" : "output", v->name, rank);
    const kl_dim *d = &v->type.shape.dims[axis];
    if (dim) *dim = d->value >= 0 ? d->value : -1;
    if (dim_name) *dim_name = d->value >= 0 ? NULL : d->param;
    return KILN_OK;
}

KILN_API kiln_status kiln_model_input_info(const kiln_model *model, size_t index,
                                           const char **name, kiln_dtype *dtype, int *rank) {
    return kl_model_info(model, true, index, "kiln_model_input_info", name, dtype, rank);
}

KILN_API kiln_status kiln_model_output_info(const kiln_model *model, size_t index,
                                            const char **name, kiln_dtype *dtype, int *rank) {
    return kl_model_info(model, false, index, "kiln_model_output_info", name, dtype, rank);
}

KILN_API kiln_status kiln_model_input_dim(const kiln_model *model, size_t index, int axis,
                                          int64_t *dim, const char **dim_name) {
    return kl_model_dim(model, true, index, axis, "kiln_model_input_dim", dim, dim_name);
}

KILN_API kiln_status kiln_model_output_dim(const kiln_model *model, size_t index, int axis,
                                           int64_t *dim, const char **dim_name) {
    return kl_model_dim(model, false, index, axis, "kiln_model_output_dim", dim, dim_name);
}

/* ---- checking ------------------------------------------------------------------ */

/* The checker's capability callback: the CPU kernel registry answers. */
static bool kl_model_can_run(const char *domain, const char *op, int64_t opset, void *user) {
    (void)user;
    return kl_kernel_exists(domain, op, opset);
}

KILN_API kiln_status kiln_model_check(const kiln_model *model, kiln_check **out) {
    if (!model || !out)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_model_check: %s is NULL",
                         !model ? "model" : "out");
    kiln_check *c = kl_calloc(1, sizeof *c);
    if (!c) return KILN_ERR_NO_MEMORY;
    const kl_check_caps caps = {kl_model_can_run, NULL};
    kiln_status s = kl_check_model_caps(model->ir, &caps, &c->result);
    if (s != KILN_OK) {
        kl_free(c);
        return s;
    }
    *out = c;
    return KILN_OK;
}

KILN_API void kiln_check_destroy(kiln_check *check) {
    if (!check) return;
    kl_check_free(check->result);
    kl_free(check);
}

KILN_API kiln_status kiln_check_count(const kiln_check *check, size_t *count) {
    if (!check || !count)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_check_count: %s is NULL",
                         !check ? "check" : "count");
    *count = check->result->n;
    return KILN_OK;
}

KILN_API kiln_status kiln_check_problem(const kiln_check *check, size_t index,
                                        kiln_check_severity *severity, int64_t *node_index,
                                        const char **message) {
    if (!check || !severity || !node_index || !message)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_check_problem: %s is NULL",
                         !check ? "check" : !severity ? "severity" : !node_index ? "node_index"
                                                                                 : "message");
    if (index >= check->result->n)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT,
                         "kiln_check_problem: index %zu is out of range (%zu problems)", index,
                         check->result->n);
    const kl_problem *p = &check->result->items[index];
    *severity = p->severity;
    *node_index = p->node_index;
    *message = p->message ? p->message : "";
    return KILN_OK;
}

KILN_API kiln_status kiln_check_error_count(const kiln_check *check, size_t *count) {
    if (!check || !count)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_check_error_count: %s is NULL",
                         !check ? "check" : "count");
    *count = check->result->n_errors;
    return KILN_OK;
}
