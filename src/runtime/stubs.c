/* Temporary stubs of the builder/engine/context API (replaced as the spine lands). */
#include "runtime/runtime.h"

KILN_API kiln_status kiln_providers_available(size_t *count) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_providers_available: not implemented yet"); }
KILN_API kiln_status kiln_provider_info(size_t index, const char **name, int *usable, const char **reason) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_provider_info: not implemented yet"); }
KILN_API kiln_status kiln_build_options_create(kiln_build_options **out) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_build_options_create: not implemented yet"); }
KILN_API void kiln_build_options_destroy(kiln_build_options *options) { (void)0; }
KILN_API kiln_status kiln_build_options_append_provider(kiln_build_options *options, const char *provider) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_build_options_append_provider: not implemented yet"); }
KILN_API kiln_status kiln_build_options_set_threads(kiln_build_options *options, int threads) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_build_options_set_threads: not implemented yet"); }
KILN_API kiln_status kiln_build_options_set_precision(kiln_build_options *options, unsigned flags) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_build_options_set_precision: not implemented yet"); }
KILN_API kiln_status kiln_build_options_add_profile(kiln_build_options *options, size_t *index) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_build_options_add_profile: not implemented yet"); }
KILN_API kiln_status kiln_build_options_set_profile_shape(kiln_build_options *options, size_t profile, const char *name, int rank, const int64_t *min, const int64_t *opt, const int64_t *max) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_build_options_set_profile_shape: not implemented yet"); }
KILN_API kiln_status kiln_build_options_set_workspace(kiln_build_options *options, uint64_t bytes) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_build_options_set_workspace: not implemented yet"); }
KILN_API kiln_status kiln_build_options_set_timing_cache(kiln_build_options *options, const char *path) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_build_options_set_timing_cache: not implemented yet"); }
KILN_API kiln_status kiln_build_options_disable_pass(kiln_build_options *options, const char *name) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_build_options_disable_pass: not implemented yet"); }
KILN_API kiln_status kiln_build_options_set_log(kiln_build_options *options, kiln_log_fn fn, void *user, kiln_log_level max_level) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_build_options_set_log: not implemented yet"); }
KILN_API kiln_status kiln_build_options_set(kiln_build_options *options, const char *key, const char *value) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_build_options_set: not implemented yet"); }
KILN_API kiln_status kiln_build(const kiln_model *model, const kiln_build_options *options, kiln_engine **out) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_build: not implemented yet"); }
KILN_API void kiln_engine_destroy(kiln_engine *engine) { (void)0; }
KILN_API kiln_status kiln_engine_save(const kiln_engine *engine, const char *path) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_engine_save: not implemented yet"); }
KILN_API kiln_status kiln_engine_serialize(const kiln_engine *engine, void **data, size_t *size) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_engine_serialize: not implemented yet"); }
KILN_API kiln_status kiln_engine_load(const char *path, kiln_engine **out) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_engine_load: not implemented yet"); }
KILN_API kiln_status kiln_engine_load_from_memory(const void *data, size_t size, kiln_engine **out) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_engine_load_from_memory: not implemented yet"); }
KILN_API kiln_status kiln_engine_input_count(const kiln_engine *engine, size_t *count) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_engine_input_count: not implemented yet"); }
KILN_API kiln_status kiln_engine_output_count(const kiln_engine *engine, size_t *count) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_engine_output_count: not implemented yet"); }
KILN_API kiln_status kiln_engine_input_info(const kiln_engine *engine, size_t index, const char **name, kiln_dtype *dtype, int *rank) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_engine_input_info: not implemented yet"); }
KILN_API kiln_status kiln_engine_output_info(const kiln_engine *engine, size_t index, const char **name, kiln_dtype *dtype, int *rank) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_engine_output_info: not implemented yet"); }
KILN_API kiln_status kiln_engine_input_dim(const kiln_engine *engine, size_t index, int axis, int64_t *dim) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_engine_input_dim: not implemented yet"); }
KILN_API kiln_status kiln_engine_output_dim(const kiln_engine *engine, size_t index, int axis, int64_t *dim) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_engine_output_dim: not implemented yet"); }
KILN_API kiln_status kiln_engine_get(const kiln_engine *engine, const char *key, const char **value) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_engine_get: not implemented yet"); }
KILN_API kiln_status kiln_engine_layer_count(const kiln_engine *engine, size_t *count) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_engine_layer_count: not implemented yet"); }
KILN_API kiln_status kiln_engine_layer_info(const kiln_engine *engine, size_t index, const char **name, const char **op, const char **provider, const char **tactic, const char **fused_from) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_engine_layer_info: not implemented yet"); }
KILN_API kiln_status kiln_engine_graph_dot(const kiln_engine *engine, char **dot) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_engine_graph_dot: not implemented yet"); }
KILN_API void kiln_free(void *ptr) { (void)0; }
KILN_API kiln_status kiln_context_create(const kiln_engine *engine, kiln_context **out) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_context_create: not implemented yet"); }
KILN_API void kiln_context_destroy(kiln_context *ctx) { (void)0; }
KILN_API kiln_status kiln_context_set_profile(kiln_context *ctx, size_t index) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_context_set_profile: not implemented yet"); }
KILN_API kiln_status kiln_context_set_input_shape(kiln_context *ctx, const char *name, int rank, const int64_t *shape) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_context_set_input_shape: not implemented yet"); }
KILN_API kiln_status kiln_context_run(kiln_context *ctx, const char *const *input_names, const kiln_tensor *const *inputs, size_t input_count, const char *const *output_names, kiln_tensor **outputs, size_t output_count) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_context_run: not implemented yet"); }
KILN_API kiln_status kiln_context_set_profiling(kiln_context *ctx, int on) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_context_set_profiling: not implemented yet"); }
KILN_API kiln_status kiln_context_layer_time(const kiln_context *ctx, size_t index, double *total_ms, uint64_t *runs) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_context_layer_time: not implemented yet"); }
KILN_API kiln_status kiln_context_arena_bytes(const kiln_context *ctx, size_t *bytes) { return kl_errorf(KILN_ERR_NOT_IMPLEMENTED, "kiln_context_arena_bytes: not implemented yet"); }
