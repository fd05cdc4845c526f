/*
 * test_api.c — the public C API, used only through include/kiln.h: argument
 * checks, tensors, session options, model loading and introspection, the
 * checker, and kiln_session_run's input validation.  Models are built by
 * hand with tests/common/onnxbuild.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kiln.h"
#include "onnxbuild.c" /* not part of kiln_testcommon */

#define F32 KILN_DTYPE_FLOAT

/* ---- basics -------------------------------------------------------------------- */

static void test_version_and_names(void) {
    KT_CHECK_STR(kiln_version(), KILN_VERSION);
    KT_CHECK_STR(kiln_version(), "0.1.0");
    KT_CHECK_EQ_INT(KILN_VERSION_NUMBER, 100);
    KT_CHECK_STR(kiln_status_name(KILN_OK), "KILN_OK");
    KT_CHECK_STR(kiln_status_name(KILN_ERR_PARSE), "KILN_ERR_PARSE");
    KT_CHECK_STR(kiln_status_name(KILN_ERR_NOT_IMPLEMENTED), "KILN_ERR_NOT_IMPLEMENTED");
    KT_CHECK(kiln_status_name((kiln_status)999) != NULL);
    KT_CHECK_STR(kiln_dtype_name(KILN_DTYPE_FLOAT), "float");
    KT_CHECK_STR(kiln_dtype_name(KILN_DTYPE_BFLOAT16), "bfloat16");
    KT_CHECK_STR(kiln_dtype_name(KILN_DTYPE_INT4), "int4");
    KT_CHECK_STR(kiln_dtype_name((kiln_dtype)999), "undefined");
    KT_CHECK_STR(kiln_dtype_name((kiln_dtype)-1), "undefined");
    KT_CHECK_EQ_INT(kiln_dtype_bits(KILN_DTYPE_FLOAT), 32);
    KT_CHECK_EQ_INT(kiln_dtype_bits(KILN_DTYPE_INT4), 4);
    KT_CHECK_EQ_INT(kiln_dtype_bits(KILN_DTYPE_BOOL), 8);
    KT_CHECK_EQ_INT(kiln_dtype_bits(KILN_DTYPE_COMPLEX128), 128);
    KT_CHECK_EQ_INT(kiln_dtype_bits(KILN_DTYPE_STRING), 0);
    KT_CHECK_EQ_INT(kiln_dtype_bits(KILN_DTYPE_UNDEFINED), 0);
    KT_CHECK_EQ_INT(kiln_dtype_bits((kiln_dtype)999), 0);
}

static int log_calls;
static void log_fn(kiln_log_level level, const char *message, void *user) {
    (void)level;
    (void)message;
    (void)user;
    log_calls++;
}

static void test_log_callback(void) {
    KT_CHECK_EQ_INT(kiln_set_log_callback(log_fn, NULL, KILN_LOG_DEBUG), KILN_OK);
    KT_CHECK_EQ_INT(kiln_set_log_callback(NULL, NULL, KILN_LOG_ERROR), KILN_OK);
    KT_CHECK_EQ_INT(kiln_set_log_callback(log_fn, NULL, (kiln_log_level)42), KILN_ERR_INVALID_ARGUMENT);
    kiln_set_log_callback(NULL, NULL, KILN_LOG_ERROR);
}

/* Every function refuses NULL where it needs a pointer, with a message. */
static void test_null_args(void) {
    size_t n;
    const char *s;
    kiln_dtype dt;
    int r;
    int64_t d;
    kiln_model *m = NULL;
    kiln_check *c = NULL;
    kiln_tensor *t = NULL;
    kiln_session_options *o = NULL;
    kiln_session *se = NULL;
    KT_CHECK_EQ_INT(kiln_model_load(NULL, &m), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK(kiln_last_error()[0] != 0);
    KT_CHECK_EQ_INT(kiln_model_load("x.onnx", NULL), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_model_load("", &m), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_model_load_from_memory(NULL, 4, NULL, &m), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_model_load_from_memory("abcd", 4, NULL, NULL), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK(m == NULL);
    KT_CHECK_EQ_INT(kiln_model_input_count(NULL, &n), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_model_output_count(NULL, &n), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_model_input_info(NULL, 0, &s, &dt, &r), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_model_output_info(NULL, 0, &s, &dt, &r), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_model_input_dim(NULL, 0, 0, &d, &s), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_model_output_dim(NULL, 0, 0, &d, &s), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_model_check(NULL, &c), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_check_count(NULL, &n), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_check_error_count(NULL, &n), KILN_ERR_INVALID_ARGUMENT);
    kiln_check_severity sev;
    KT_CHECK_EQ_INT(kiln_check_problem(NULL, 0, &sev, &d, &s), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_tensor_create(F32, NULL, 0, NULL), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_tensor_create(F32, NULL, 2, &t), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_CONTAINS(kiln_last_error(), "shape is NULL");
    KT_CHECK_EQ_INT(kiln_tensor_create_from_data(F32, NULL, 0, NULL, 4, &t), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_tensor_dtype(NULL, &dt), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_tensor_shape(NULL, &r, NULL), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_tensor_data(NULL, NULL, &n), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_tensor_element_count(NULL, &d), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_session_options_create(NULL), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_session_options_append_provider(NULL, "cpu"), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_session_options_set_threads(NULL, 1), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_session_options_set(NULL, "threads", "1"), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_session_create(NULL, NULL, &se), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_session_run(NULL, NULL, NULL, 0, NULL, NULL, 0), KILN_ERR_INVALID_ARGUMENT);
    const kiln_engine *se_engine = (const kiln_engine *)&n;
    KT_CHECK_EQ_INT(kiln_session_get_engine(NULL, &se_engine), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK(se_engine == NULL);
    KT_CHECK(se == NULL && t == NULL && c == NULL);
    /* Destructors accept NULL. */
    kiln_model_destroy(NULL);
    kiln_check_destroy(NULL);
    kiln_tensor_destroy(NULL);
    kiln_session_options_destroy(NULL);
    kiln_session_destroy(NULL);
    (void)o;
}

/* ---- tensors ------------------------------------------------------------------ */

static void test_tensor_create(void) {
    int64_t shape[3] = {2, 3, 4};
    kiln_tensor *t = NULL;
    KT_CHECK_EQ_INT(kiln_tensor_create(F32, shape, 3, &t), KILN_OK);
    if (!t) return;
    shape[0] = 99; /* the shape was copied */
    kiln_dtype dt;
    int rank;
    const int64_t *sh;
    int64_t count;
    void *data;
    size_t bytes;
    KT_CHECK_EQ_INT(kiln_tensor_dtype(t, &dt), KILN_OK);
    KT_CHECK_EQ_INT(dt, F32);
    KT_CHECK_EQ_INT(kiln_tensor_shape(t, &rank, &sh), KILN_OK);
    KT_CHECK_EQ_INT(rank, 3);
    KT_CHECK(sh[0] == 2 && sh[1] == 3 && sh[2] == 4);
    KT_CHECK_EQ_INT(kiln_tensor_element_count(t, &count), KILN_OK);
    KT_CHECK_EQ_INT(count, 24);
    KT_CHECK_EQ_INT(kiln_tensor_data(t, &data, &bytes), KILN_OK);
    KT_CHECK_EQ_INT(bytes, 96);
    int zero = 1;
    for (size_t i = 0; i < bytes; i++) zero &= ((unsigned char *)data)[i] == 0;
    KT_CHECK(zero);
    kiln_tensor_destroy(t);

    /* Rank 0: one element.  A zero dim: no elements, no bytes. */
    KT_CHECK_EQ_INT(kiln_tensor_create(KILN_DTYPE_INT64, NULL, 0, &t), KILN_OK);
    kiln_tensor_element_count(t, &count);
    kiln_tensor_data(t, &data, &bytes);
    KT_CHECK_EQ_INT(count, 1);
    KT_CHECK_EQ_INT(bytes, 8);
    kiln_tensor_destroy(t);
    int64_t z[2] = {0, 5};
    KT_CHECK_EQ_INT(kiln_tensor_create(F32, z, 2, &t), KILN_OK);
    kiln_tensor_element_count(t, &count);
    kiln_tensor_data(t, &data, &bytes);
    KT_CHECK_EQ_INT(count, 0);
    KT_CHECK_EQ_INT(bytes, 0);
    kiln_tensor_destroy(t);

    /* Sub-byte types are packed and rounded up. */
    int64_t five = 5;
    KT_CHECK_EQ_INT(kiln_tensor_create(KILN_DTYPE_INT4, &five, 1, &t), KILN_OK);
    kiln_tensor_data(t, &data, &bytes);
    KT_CHECK_EQ_INT(bytes, 3);
    kiln_tensor_destroy(t);
}

static void test_tensor_invalid(void) {
    kiln_tensor *t = NULL;
    int64_t neg[2] = {2, -1};
    KT_CHECK_EQ_INT(kiln_tensor_create(F32, neg, 2, &t), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_CONTAINS(kiln_last_error(), "dim 1 is -1");
    int64_t dims[KILN_MAX_RANK + 1];
    for (int i = 0; i <= KILN_MAX_RANK; i++) dims[i] = 1;
    KT_CHECK_EQ_INT(kiln_tensor_create(F32, dims, KILN_MAX_RANK + 1, &t), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_CONTAINS(kiln_last_error(), "rank 17");
    KT_CHECK_EQ_INT(kiln_tensor_create(F32, dims, -1, &t), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_tensor_create(F32, dims, KILN_MAX_RANK, &t), KILN_OK);
    kiln_tensor_destroy(t);
    t = NULL;
    int64_t huge[2] = {INT64_MAX, 3};
    KT_CHECK_EQ_INT(kiln_tensor_create(F32, huge, 2, &t), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_CONTAINS(kiln_last_error(), "overflow");
    int64_t big[1] = {INT64_MAX / 2};
    KT_CHECK(kiln_tensor_create(F32, big, 1, &t) != KILN_OK); /* byte size overflows */
    int64_t tib[2] = {1 << 20, 1 << 20};                      /* 4 TiB of floats */
    KT_CHECK_EQ_INT(kiln_tensor_create(F32, tib, 2, &t), KILN_ERR_NO_MEMORY);
    int64_t one = 1;
    KT_CHECK_EQ_INT(kiln_tensor_create(KILN_DTYPE_UNDEFINED, &one, 1, &t), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_tensor_create((kiln_dtype)77, &one, 1, &t), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_tensor_create(KILN_DTYPE_STRING, &one, 1, &t), KILN_ERR_UNSUPPORTED);
    KT_CHECK(t == NULL);
}

static void test_tensor_from_data(void) {
    float buf[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {2, 3};
    kiln_tensor *t = NULL;
    KT_CHECK_EQ_INT(kiln_tensor_create_from_data(F32, shape, 2, buf, sizeof buf, &t), KILN_OK);
    void *data;
    size_t bytes;
    kiln_tensor_data(t, &data, &bytes);
    KT_CHECK(data == (void *)buf);
    KT_CHECK_EQ_INT(bytes, 24);
    kiln_tensor_destroy(t); /* must not free buf */
    t = NULL;
    KT_CHECK_EQ_INT(kiln_tensor_create_from_data(F32, shape, 2, buf, 20, &t), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_CONTAINS(kiln_last_error(), "size_bytes is 20");
    KT_CHECK_CONTAINS(kiln_last_error(), "24 bytes");
    KT_CHECK_EQ_INT(kiln_tensor_create_from_data(F32, shape, 2, buf, 28, &t), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_tensor_create_from_data(F32, shape, 2, NULL, 24, &t), KILN_ERR_INVALID_ARGUMENT);
    int64_t empty[1] = {0};
    KT_CHECK_EQ_INT(kiln_tensor_create_from_data(F32, empty, 1, NULL, 0, &t), KILN_OK);
    kiln_tensor_destroy(t);
}

/* ---- session options ------------------------------------------------------------ */

static void test_options(void) {
    kiln_session_options *o = NULL;
    KT_CHECK_EQ_INT(kiln_session_options_create(&o), KILN_OK);
    if (!o) return;
    KT_CHECK_EQ_INT(kiln_session_options_append_provider(o, "cuda"), KILN_ERR_UNSUPPORTED); /* not built in: refused, never a silent CPU run */
    KT_CHECK_CONTAINS(kiln_last_error(), "cuda");
    KT_CHECK_EQ_INT(kiln_session_options_append_provider(o, "cpu"), KILN_OK);
    KT_CHECK_EQ_INT(kiln_session_options_append_provider(o, "cpu"), KILN_OK);
    KT_CHECK_EQ_INT(kiln_session_options_append_provider(o, "tpu"), KILN_ERR_NOT_FOUND);
    KT_CHECK_CONTAINS(kiln_last_error(), "'tpu'");
    KT_CHECK_EQ_INT(kiln_session_options_append_provider(o, NULL), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_session_options_set_threads(o, 4), KILN_OK);
    KT_CHECK_EQ_INT(kiln_session_options_set_threads(o, 0), KILN_OK);
    KT_CHECK_EQ_INT(kiln_session_options_set_threads(o, -1), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_session_options_set(o, "threads", "8"), KILN_OK);
    KT_CHECK_EQ_INT(kiln_session_options_set(o, "threads", "-2"), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_session_options_set(o, "threads", "abc"), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_CONTAINS(kiln_last_error(), "'abc'");
    KT_CHECK_EQ_INT(kiln_session_options_set(o, "threads", ""), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_session_options_set(o, "threads", "4x"), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_session_options_set(o, "providers", "cuda, cpu"), KILN_ERR_UNSUPPORTED);
    KT_CHECK_EQ_INT(kiln_session_options_set(o, "providers", " cpu "), KILN_OK);
    KT_CHECK_EQ_INT(kiln_session_options_set(o, "providers", "cpu,npu"), KILN_ERR_NOT_FOUND);
    KT_CHECK_CONTAINS(kiln_last_error(), "'npu'");
    KT_CHECK_EQ_INT(kiln_session_options_set(o, "providers", "cpu,,cpu"), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_session_options_set(o, "providers", ""), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_session_options_set(o, "fast_math", "1"), KILN_ERR_NOT_FOUND);
    KT_CHECK_CONTAINS(kiln_last_error(), "'fast_math'");
    KT_CHECK_EQ_INT(kiln_session_options_set(o, NULL, "1"), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_session_options_set(o, "threads", NULL), KILN_ERR_INVALID_ARGUMENT);
    kiln_session_options_destroy(o);
}

/* ---- loading --------------------------------------------------------------------- */

static void test_load_missing_file(void) {
    kiln_model *m = NULL;
    const char *path = "/nonexistent-kiln-dir/missing-model.onnx";
    kiln_status s = kiln_model_load(path, &m);
    KT_CHECK_EQ_INT(s, KILN_ERR_IO);
    KT_CHECK_CONTAINS(kiln_last_error(), "missing-model.onnx");
    KT_CHECK(m == NULL);
}

static void test_load_garbage(void) {
    /* Bytes that cannot be a protobuf message: reserved wire types,
     * truncated varints, lengths past the end. */
    static const unsigned char g1[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const unsigned char g2[] = {0x0f, 0x01, 0x02};      /* field 1, wire type 7 */
    static const unsigned char g3[] = {0x3a, 0x7f, 0x00};      /* graph: length 127 past the end */
    static const unsigned char g4[] = {0x08, 0x80};            /* truncated varint */
    static const unsigned char g5[] = "this is not an onnx model";
    const unsigned char *all[] = {g1, g2, g3, g4, g5};
    size_t sizes[] = {sizeof g1, sizeof g2, sizeof g3, sizeof g4, sizeof g5 - 1};
    for (size_t i = 0; i < 5; i++) {
        kiln_model *m = NULL;
        kiln_status s = kiln_model_load_from_memory(all[i], sizes[i], NULL, &m);
        KT_CHECK_EQ_INT(s, KILN_ERR_PARSE);
        KT_CHECK(kiln_last_error()[0] != 0);
        KT_CHECK(m == NULL);
        kiln_model_destroy(m);
    }
}

/* A model: inputs a, b float[batch,3] and c int64[2] (unused by nodes but
 * declared), initializer w float[3] also listed as a graph input, and
 * y = (a + b) + w, output y float[batch,3]. */
static void build_model(kt_pb *mb) {
    kt_pb g = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "a", KILN_DTYPE_FLOAT, "batch,3");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "b", KILN_DTYPE_FLOAT, "batch,3");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "c", KILN_DTYPE_INT64, "2");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "w", KILN_DTYPE_FLOAT, "3");
    kt_pb w = {0};
    int64_t dims[1] = {3};
    float wv[3] = {1, 2, 3};
    kt_onnx_tensor_f32(&w, "w", dims, 1, wv, 3, 1);
    kt_pb_take(&g, KT_GRAPH_INITIALIZER, &w);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "add0", "a,b", "t");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "add1", "t,w", "y");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, "batch,3");
    kt_onnx_model(mb, 8, 13, &g);
    kt_pb_free(&g);
}

static void test_model_io(void) {
    kt_pb mb = {0};
    build_model(&mb);
    kiln_model *m = NULL;
    kiln_status s = kiln_model_load_from_memory(mb.data, mb.len, NULL, &m);
    KT_CHECK_EQ_INT(s, KILN_OK);
    if (s != KILN_OK) {
        fprintf(stderr, "    load failed: %s\n", kiln_last_error());
        kt_pb_free(&mb);
        return;
    }
    size_t n = 0;
    KT_CHECK_EQ_INT(kiln_model_input_count(m, &n), KILN_OK);
    KT_CHECK_EQ_INT(n, 3); /* w has an initializer */
    KT_CHECK_EQ_INT(kiln_model_output_count(m, &n), KILN_OK);
    KT_CHECK_EQ_INT(n, 1);
    const char *name = NULL, *dim_name = NULL;
    kiln_dtype dt;
    int rank;
    int64_t dim;
    KT_CHECK_EQ_INT(kiln_model_input_info(m, 0, &name, &dt, &rank), KILN_OK);
    KT_CHECK_STR(name, "a");
    KT_CHECK_EQ_INT(dt, KILN_DTYPE_FLOAT);
    KT_CHECK_EQ_INT(rank, 2);
    KT_CHECK_EQ_INT(kiln_model_input_info(m, 2, &name, &dt, &rank), KILN_OK);
    KT_CHECK_STR(name, "c");
    KT_CHECK_EQ_INT(dt, KILN_DTYPE_INT64);
    KT_CHECK_EQ_INT(kiln_model_input_info(m, 3, &name, &dt, &rank), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_CONTAINS(kiln_last_error(), "index 3");
    KT_CHECK_EQ_INT(kiln_model_input_info(m, 0, NULL, &dt, &rank), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_model_input_dim(m, 0, 0, &dim, &dim_name), KILN_OK);
    KT_CHECK_EQ_INT(dim, -1);
    KT_CHECK_STR(dim_name, "batch");
    KT_CHECK_EQ_INT(kiln_model_input_dim(m, 0, 1, &dim, &dim_name), KILN_OK);
    KT_CHECK_EQ_INT(dim, 3);
    KT_CHECK(dim_name == NULL);
    KT_CHECK_EQ_INT(kiln_model_input_dim(m, 0, 1, NULL, NULL), KILN_OK);
    KT_CHECK_EQ_INT(kiln_model_input_dim(m, 0, 2, &dim, &dim_name), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_model_input_dim(m, 0, -1, &dim, &dim_name), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_model_output_info(m, 0, &name, &dt, &rank), KILN_OK);
    KT_CHECK_STR(name, "y");
    KT_CHECK_EQ_INT(rank, 2);
    KT_CHECK_EQ_INT(kiln_model_output_dim(m, 0, 0, &dim, &dim_name), KILN_OK);
    KT_CHECK_STR(dim_name, "batch");
    KT_CHECK_EQ_INT(kiln_model_output_info(m, 1, &name, &dt, &rank), KILN_ERR_INVALID_ARGUMENT);

    kiln_check *c = NULL;
    KT_CHECK_EQ_INT(kiln_model_check(m, &c), KILN_OK);
    size_t errors = 99, total = 0;
    KT_CHECK_EQ_INT(kiln_check_error_count(c, &errors), KILN_OK);
    KT_CHECK_EQ_INT(errors, 0);
    KT_CHECK_EQ_INT(kiln_check_count(c, &total), KILN_OK);
    for (size_t i = 0; i < total; i++) {
        kiln_check_severity sev;
        int64_t node;
        const char *msg = NULL;
        KT_CHECK_EQ_INT(kiln_check_problem(c, i, &sev, &node, &msg), KILN_OK);
        KT_CHECK(msg != NULL && sev != KILN_CHECK_ERROR);
    }
    kiln_check_severity sev;
    int64_t node;
    const char *msg;
    KT_CHECK_EQ_INT(kiln_check_problem(c, total, &sev, &node, &msg), KILN_ERR_INVALID_ARGUMENT);
    kiln_check_destroy(c);
    kiln_model_destroy(m);
    kt_pb_free(&mb);
}

/* ---- sessions --------------------------------------------------------------------- */

/* Run with the given inputs; returns the status. */
static kiln_status run(kiln_session *se, const char *const *names, const kiln_tensor *const *ts,
                       size_t n, const char *out_name) {
    kiln_tensor *outs[1] = {NULL};
    const char *on[1] = {out_name};
    kiln_status s = kiln_session_run(se, names, ts, n, on, outs, out_name ? 1 : 0);
    kiln_tensor_destroy(outs[0]);
    return s;
}

static void test_session_run_validation(void) {
    kt_pb mb = {0};
    build_model(&mb);
    kiln_model *m = NULL;
    if (kiln_model_load_from_memory(mb.data, mb.len, NULL, &m) != KILN_OK) {
        KT_CHECK(!"model loads");
        kt_pb_free(&mb);
        return;
    }
    kiln_session_options *o = NULL;
    kiln_session_options_create(&o);
    kiln_session_options_set(o, "providers", "cpu");
    kiln_session *se = NULL;
    kiln_status s = kiln_session_create(m, o, &se);
    kiln_session_options_destroy(o); /* the session keeps a copy */
    KT_CHECK_EQ_INT(s, KILN_OK);
    if (s != KILN_OK) {
        fprintf(stderr, "    session failed: %s\n", kiln_last_error());
        kiln_model_destroy(m);
        kt_pb_free(&mb);
        return;
    }
    /* The session lends its engine: the providers it was asked for. */
    const kiln_engine *se_engine = NULL;
    const char *se_prov = NULL;
    KT_CHECK_EQ_INT(kiln_session_get_engine(se, &se_engine), KILN_OK);
    KT_CHECK(se_engine && kiln_engine_get(se_engine, "providers", &se_prov) == KILN_OK && se_prov &&
             strcmp(se_prov, "cpu") == 0);
    KT_CHECK_EQ_INT(kiln_session_get_engine(se, NULL), KILN_ERR_INVALID_ARGUMENT);
    int64_t s23[2] = {2, 3}, s33[2] = {3, 3}, s24[2] = {2, 4}, s3[1] = {3}, s2[1] = {2};
    kiln_tensor *a = NULL, *b = NULL, *b3 = NULL, *b24 = NULL, *c = NULL, *ci = NULL, *w = NULL, *r1 = NULL;
    kiln_tensor_create(F32, s23, 2, &a);
    kiln_tensor_create(F32, s23, 2, &b);
    kiln_tensor_create(F32, s33, 2, &b3);
    kiln_tensor_create(F32, s24, 2, &b24);
    kiln_tensor_create(KILN_DTYPE_INT64, s2, 1, &c);
    kiln_tensor_create(KILN_DTYPE_INT32, s2, 1, &ci);
    kiln_tensor_create(F32, s3, 1, &w);
    kiln_tensor_create(F32, s3, 1, &r1);

    /* Everything valid: y = a + b + w, computed by the CPU run path. */
    float *pa, *pb, *pw;
    size_t nb;
    kiln_tensor_data(a, (void **)&pa, &nb);
    kiln_tensor_data(b, (void **)&pb, &nb);
    kiln_tensor_data(w, (void **)&pw, &nb);
    for (int i = 0; i < 6; i++) {
        pa[i] = 0.5f * (float)i;
        pb[i] = -3.0f + (float)(i * i);
    }
    for (int i = 0; i < 3; i++) pw[i] = 100.0f * (float)(i + 1);
    const char *n3[] = {"a", "b", "c"};
    const kiln_tensor *t3[] = {a, b, c};
    const char *yn[1] = {"y"};
    kiln_tensor *y = NULL;
    KT_CHECK_EQ_INT(kiln_session_run(se, n3, t3, 3, yn, &y, 1), KILN_OK);
    if (y) {
        float *py;
        int yr;
        const int64_t *ys;
        KT_CHECK_EQ_INT(kiln_tensor_shape(y, &yr, &ys), KILN_OK);
        KT_CHECK(yr == 2 && ys[0] == 2 && ys[1] == 3);
        kiln_tensor_data(y, (void **)&py, &nb);
        KT_CHECK_EQ_INT(nb, 24);
        for (int i = 0; i < 6; i++) /* the initializer w = {1, 2, 3} */
            KT_CHECK((double)py[i] == 0.5 * i + (-3.0 + i * i) + (double)(i % 3 + 1));
    }
    /* Inputs in another order, initializer input overridden: the caller's
     * w (100, 200, 300) replaces the model's; y is written in place. */
    const char *n4[] = {"c", "w", "b", "a"};
    const kiln_tensor *t4[] = {c, w, b, a};
    kiln_tensor *y_in = y;
    KT_CHECK_EQ_INT(kiln_session_run(se, n4, t4, 4, yn, &y, 1), KILN_OK);
    KT_CHECK(y == y_in);
    if (y) {
        float *py;
        kiln_tensor_data(y, (void **)&py, &nb);
        for (int i = 0; i < 6; i++)
            KT_CHECK((double)py[i] == 0.5 * i + (-3.0 + i * i) + 100.0 * (i % 3 + 1));
    }
    /* A caller tensor of the wrong shape for the output is refused. */
    kiln_tensor *bad_out = b24;
    KT_CHECK_EQ_INT(kiln_session_run(se, n3, t3, 3, yn, &bad_out, 1), KILN_ERR_SHAPE);
    KT_CHECK_CONTAINS(kiln_last_error(), "output 'y'");
    kiln_tensor_destroy(y);

    /* Missing input. */
    const char *n2[] = {"a", "c"};
    const kiln_tensor *t2[] = {a, c};
    KT_CHECK_EQ_INT(run(se, n2, t2, 2, "y"), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_CONTAINS(kiln_last_error(), "input 'b'");
    KT_CHECK_CONTAINS(kiln_last_error(), "not given");
    /* Unknown input name. */
    const char *nx[] = {"a", "b", "c", "bogus"};
    const kiln_tensor *tx[] = {a, b, c, a};
    KT_CHECK_EQ_INT(run(se, nx, tx, 4, "y"), KILN_ERR_NOT_FOUND);
    KT_CHECK_CONTAINS(kiln_last_error(), "'bogus'");
    KT_CHECK_CONTAINS(kiln_last_error(), "'a', 'b', 'c'");
    /* Duplicate input. */
    const char *nd[] = {"a", "b", "c", "a"};
    KT_CHECK_EQ_INT(run(se, nd, tx, 4, "y"), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_CONTAINS(kiln_last_error(), "'a' is given more than once");
    /* Wrong element type. */
    const kiln_tensor *tt[] = {a, b, ci};
    KT_CHECK_EQ_INT(run(se, n3, tt, 3, "y"), KILN_ERR_TYPE);
    KT_CHECK_CONTAINS(kiln_last_error(), "input 'c'");
    KT_CHECK_CONTAINS(kiln_last_error(), "int32");
    /* Wrong rank. */
    const kiln_tensor *tr[] = {a, r1, c};
    KT_CHECK_EQ_INT(run(se, n3, tr, 3, "y"), KILN_ERR_SHAPE);
    KT_CHECK_CONTAINS(kiln_last_error(), "input 'b' has rank 1");
    /* Wrong fixed dim. */
    const kiln_tensor *tf[] = {a, b24, c};
    KT_CHECK_EQ_INT(run(se, n3, tf, 3, "y"), KILN_ERR_SHAPE);
    KT_CHECK_CONTAINS(kiln_last_error(), "input 'b' axis 1 is 4");
    /* Symbolic dim inconsistent across inputs. */
    const kiln_tensor *ts[] = {a, b3, c};
    KT_CHECK_EQ_INT(run(se, n3, ts, 3, "y"), KILN_ERR_SHAPE);
    KT_CHECK_STR(kiln_last_error(), "input 'b' axis 0 ('batch') is 3 but input 'a' set batch = 2");
    /* Unknown output. */
    KT_CHECK_EQ_INT(run(se, n3, t3, 3, "t"), KILN_ERR_NOT_FOUND);
    KT_CHECK_CONTAINS(kiln_last_error(), "unknown output 't'");
    KT_CHECK_CONTAINS(kiln_last_error(), "'y'");
    /* Caller-provided output with the wrong shape. */
    {
        const char *on[1] = {"y"};
        kiln_tensor *outs[1] = {b3};
        KT_CHECK_EQ_INT(kiln_session_run(se, n3, t3, 3, on, outs, 1), KILN_ERR_SHAPE);
        KT_CHECK_CONTAINS(kiln_last_error(), "output 'y' axis 0 ('batch') is 3");
        outs[0] = c;
        KT_CHECK_EQ_INT(kiln_session_run(se, n3, t3, 3, on, outs, 1), KILN_ERR_TYPE);
        const char *dup[2] = {"y", "y"};
        kiln_tensor *outs2[2] = {NULL, NULL};
        KT_CHECK_EQ_INT(kiln_session_run(se, n3, t3, 3, dup, outs2, 2), KILN_ERR_INVALID_ARGUMENT);
    }
    /* NULL entries and arrays. */
    const kiln_tensor *tn[] = {a, NULL, c};
    KT_CHECK_EQ_INT(run(se, n3, tn, 3, "y"), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_CONTAINS(kiln_last_error(), "inputs[1]");
    KT_CHECK_EQ_INT(kiln_session_run(se, NULL, t3, 3, NULL, NULL, 0), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_EQ_INT(kiln_session_run(se, n3, t3, 3, NULL, NULL, 1), KILN_ERR_INVALID_ARGUMENT);

    kiln_tensor *all[] = {a, b, b3, b24, c, ci, w, r1};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) kiln_tensor_destroy(all[i]);
    kiln_session_destroy(se);
    kiln_model_destroy(m);
    kt_pb_free(&mb);
}

/* kiln_session_create refuses a model that breaks ONNX rules. */
static void test_session_refuses_invalid_model(void) {
    kt_pb g = {0}, mb = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "x", KILN_DTYPE_FLOAT, "2");
    kt_onnx_node(&g, KT_GRAPH_NODE, "Relu", "r0", "undefined_value", "y");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "y", KILN_DTYPE_FLOAT, "2");
    kt_onnx_model(&mb, 8, 13, &g);
    kt_pb_free(&g);
    kiln_model *m = NULL;
    kiln_status s = kiln_model_load_from_memory(mb.data, mb.len, NULL, &m);
    if (s == KILN_OK) {
        kiln_check *c = NULL;
        size_t errors = 0;
        KT_CHECK_EQ_INT(kiln_model_check(m, &c), KILN_OK);
        kiln_check_error_count(c, &errors);
        KT_CHECK(errors > 0);
        kiln_check_destroy(c);
        kiln_session *se = NULL;
        KT_CHECK_EQ_INT(kiln_session_create(m, NULL, &se), KILN_ERR_INVALID_MODEL);
        KT_CHECK_CONTAINS(kiln_last_error(), "error");
        KT_CHECK(se == NULL);
        kiln_model_destroy(m);
    } else {
        /* Rejected at load is acceptable too, as long as it says why. */
        KT_CHECK_EQ_INT(s, KILN_ERR_INVALID_MODEL);
        KT_CHECK_CONTAINS(kiln_last_error(), "undefined_value");
    }
    kt_pb_free(&mb);
}

int main(void) {
    KT_RUN(test_version_and_names);
    KT_RUN(test_log_callback);
    KT_RUN(test_null_args);
    KT_RUN(test_tensor_create);
    KT_RUN(test_tensor_invalid);
    KT_RUN(test_tensor_from_data);
    KT_RUN(test_options);
    KT_RUN(test_load_missing_file);
    KT_RUN(test_load_garbage);
    KT_RUN(test_model_io);
    KT_RUN(test_session_run_validation);
    KT_RUN(test_session_refuses_invalid_model);
    return kt_summary();
}
