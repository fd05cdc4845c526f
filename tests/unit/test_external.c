/*
 * test_external.c — tensors stored in external data files (TensorProto
 * data_location = EXTERNAL with "location", "offset", "length" entries):
 * values read in place, and every way out of the model's folder or past a
 * file's end refused with a message naming the tensor and the file.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "harness.h"
#include "onnx/onnx.h"
#include "onnxbuild.c" /* not part of kiln_testcommon */

static char root[256]; /* this run's temp folder */

static void make_root(void) {
    snprintf(root, sizeof root, "/tmp/kiln_ext_XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        exit(2);
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static void remove_root(void) { nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* "<root>/<rel>" into buf. */
static const char *at(char *buf, size_t size, const char *rel) {
    snprintf(buf, size, "%s/%s", root, rel);
    return buf;
}

static void write_file(const char *rel, const void *data, size_t n) {
    char path[512];
    FILE *f = fopen(at(path, sizeof path, rel), "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n)) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

static void make_dir(const char *rel) {
    char path[512];
    mkdir(at(path, sizeof path, rel), 0755);
}

static const float W_VALUES[4] = {1.5f, -2.0f, 1e-3f, 42.0f};

/* 16 junk bytes, W's 16 bytes, 8 junk bytes: 40 bytes. */
static void write_weights(const char *rel) {
    uint8_t buf[40];
    memset(buf, 0xab, sizeof buf);
    memcpy(buf + 16, W_VALUES, 16);
    write_file(rel, buf, sizeof buf);
}

/* Model: Y = X + W, W float[4].  W is external when `loc` is non-NULL
 * (offset/length entries only when non-NULL), otherwise inline raw_data. */
static void ext_model(kt_pb *mb, const char *loc, const char *offset, const char *length) {
    kt_pb g = {0}, t = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "X", 1, "4");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "Y", 1, "4");
    const int64_t dims[1] = {4};
    kt_onnx_tensor_head(&t, "W", 1, dims, 1, 1);
    if (loc) {
        kt_pb_varint_field(&t, KT_TENSOR_DATA_LOCATION, 1);
        kt_onnx_tensor_ext(&t, "location", loc);
        if (offset) kt_onnx_tensor_ext(&t, "offset", offset);
        if (length) kt_onnx_tensor_ext(&t, "length", length);
    } else {
        kt_pb_bytes_field(&t, KT_TENSOR_RAW_DATA, W_VALUES, 16);
    }
    kt_pb_take(&g, KT_GRAPH_INITIALIZER, &t);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "add", "X,W", "Y");
    kt_onnx_model(mb, 8, 13, &g);
    kt_pb_free(&g);
}

/* Write the model to <root>/<rel> and load it from there. */
static kiln_status load_model(const char *rel, const char *loc, const char *offset,
                              const char *length, kl_model **m) {
    kt_pb mb = {0};
    ext_model(&mb, loc, offset, length);
    write_file(rel, mb.data, mb.len);
    kt_pb_free(&mb);
    char path[512];
    kl_error_clear();
    *m = NULL;
    return kl_onnx_load_file(at(path, sizeof path, rel), m);
}

static const kl_tensor *w_of(const kl_model *m) {
    const kl_value *v = m ? kl_graph_lookup(m->graph, "W") : NULL;
    return v ? v->init : NULL;
}

static void check_w_values(const kl_tensor *t) {
    KT_CHECK(t != NULL);
    if (!t) return;
    KT_CHECK_EQ_INT(t->dtype, KILN_DTYPE_FLOAT);
    KT_CHECK_EQ_INT(t->count, 4);
    KT_CHECK_EQ_INT(t->nbytes, 16);
    KT_CHECK(t->data != NULL);
    if (t->data) {
        float v[4];
        memcpy(v, t->data, 16);
        for (int i = 0; i < 4; i++) KT_CHECK(v[i] == W_VALUES[i]);
    }
}

/* Refused: the message names tensor W and the file. */
static void check_refused(kiln_status s, kl_model *m, const char *file) {
    KT_CHECK(s != KILN_OK);
    KT_CHECK(m == NULL);
    KT_CHECK_CONTAINS(kl_error_message(), "'W'");
    KT_CHECK_CONTAINS(kl_error_message(), file);
    kl_model_free(m);
}

/* ---- tests -------------------------------------------------------------------- */

static void test_external_values(void) {
    write_weights("weights.bin");
    kl_model *m;
    kiln_status s = load_model("model.onnx", "weights.bin", "16", "16", &m);
    KT_CHECK_EQ_INT(s, KILN_OK);
    if (s) fprintf(stderr, "    %s\n", kl_error_message());
    const kl_tensor *t = w_of(m);
    check_w_values(t);
    if (t) {
        KT_CHECK(t->external);
        KT_CHECK_STR(t->location, "weights.bin");
        KT_CHECK_EQ_INT(t->offset, 16);
        KT_CHECK_EQ_INT(m->n_ext_files, 1);
        /* zero-copy: the data lies in the mapped file */
        if (m->n_ext_files == 1)
            KT_CHECK((const uint8_t *)t->data == m->ext_files[0].data + 16);
        KT_CHECK_EQ_INT(m->n_problems, 0);
    }
    kl_model_free(m);
}

/* Without offset and length: offset 0, the tensor's own size. */
static void test_external_whole_file(void) {
    write_file("w16.bin", W_VALUES, 16);
    kl_model *m;
    KT_CHECK_EQ_INT(load_model("model.onnx", "w16.bin", NULL, NULL, &m), KILN_OK);
    check_w_values(w_of(m));
    if (w_of(m)) KT_CHECK_EQ_INT(w_of(m)->offset, 0);
    kl_model_free(m);
    /* offset only */
    KT_CHECK_EQ_INT(load_model("model.onnx", "weights.bin", "16", NULL, &m), KILN_OK);
    check_w_values(w_of(m));
    kl_model_free(m);
}

static void test_external_subfolder(void) {
    make_dir("data");
    write_weights("data/w.bin");
    kl_model *m;
    KT_CHECK_EQ_INT(load_model("model.onnx", "data/w.bin", "16", "16", &m), KILN_OK);
    check_w_values(w_of(m));
    kl_model_free(m);
}

/* The same model with inline data and with external data gives the same values. */
static void test_inline_equals_external(void) {
    kl_model *a, *b;
    KT_CHECK_EQ_INT(load_model("inline.onnx", NULL, NULL, NULL, &a), KILN_OK);
    KT_CHECK_EQ_INT(load_model("model.onnx", "weights.bin", "16", "16", &b), KILN_OK);
    const kl_tensor *ta = w_of(a), *tb = w_of(b);
    KT_CHECK(ta && tb);
    if (ta && tb) {
        KT_CHECK(!ta->external && tb->external);
        KT_CHECK_EQ_INT(ta->nbytes, tb->nbytes);
        KT_CHECK_EQ_INT(ta->rank, tb->rank);
        KT_CHECK_EQ_INT(ta->dims[0], tb->dims[0]);
        KT_CHECK(memcmp(ta->data, tb->data, ta->nbytes) == 0);
    }
    kl_model_free(a);
    kl_model_free(b);
}

static void test_missing_file(void) {
    kl_model *m;
    kiln_status s = load_model("model.onnx", "nope.bin", NULL, NULL, &m);
    check_refused(s, m, "nope.bin");
}

static void test_file_too_short(void) {
    write_file("short.bin", W_VALUES, 8);
    kl_model *m;
    kiln_status s = load_model("model.onnx", "short.bin", NULL, NULL, &m);
    check_refused(s, m, "short.bin");
    /* offset leaves too few bytes */
    s = load_model("model.onnx", "weights.bin", "32", NULL, &m);
    check_refused(s, m, "weights.bin");
}

static void test_offset_past_end(void) {
    kl_model *m;
    kiln_status s = load_model("model.onnx", "weights.bin", "100", "16", &m);
    check_refused(s, m, "weights.bin");
    KT_CHECK_CONTAINS(kl_error_message(), "100");
    s = load_model("model.onnx", "weights.bin", "18446744073709551615", NULL, &m);
    check_refused(s, m, "18446744073709551615");
}

static void test_length_past_end(void) {
    kl_model *m;
    kiln_status s = load_model("model.onnx", "weights.bin", "16", "32", &m);
    check_refused(s, m, "weights.bin");
    KT_CHECK_CONTAINS(kl_error_message(), "32");
}

/* A length that fits the file but not the tensor (8 bytes for float[4]). */
static void test_length_mismatch(void) {
    kl_model *m;
    kiln_status s = load_model("model.onnx", "weights.bin", "16", "8", &m);
    if (s == KILN_OK) {
        const char *msg = NULL;
        for (size_t i = 0; i < m->n_problems; i++)
            if (strstr(m->problems[i].message, "'W'")) msg = m->problems[i].message;
        KT_CHECK(msg != NULL);
        KT_CHECK_CONTAINS(msg, "weights.bin");
        KT_CHECK_CONTAINS(msg, "8");
        KT_CHECK_CONTAINS(msg, "16");
        kl_model_free(m);
    } else {
        check_refused(s, m, "weights.bin");
    }
}

static void test_absolute_path(void) {
    char abs[512];
    at(abs, sizeof abs, "weights.bin"); /* exists, and is even inside the folder */
    kl_model *m;
    kiln_status s = load_model("model.onnx", abs, "16", "16", &m);
    check_refused(s, m, abs);
    KT_CHECK_CONTAINS(kl_error_message(), "absolute");
}

static void test_dotdot_escape(void) {
    make_dir("sub");
    write_weights("x.bin");
    kl_model *m;
    kiln_status s = load_model("sub/model.onnx", "../x.bin", "16", "16", &m);
    check_refused(s, m, "../x.bin");
    make_dir("sub/d");
    s = load_model("sub/model.onnx", "d/../../x.bin", "16", "16", &m);
    check_refused(s, m, "d/../../x.bin");
}

/* A location that is a symlink to a file outside the folder. */
static void test_symlink_escape(void) {
    make_dir("sub");
    write_weights("outside.bin");
    char target[512], link[512];
    at(target, sizeof target, "outside.bin");
    at(link, sizeof link, "sub/link.bin");
    unlink(link);
    KT_CHECK(symlink(target, link) == 0);
    kl_model *m;
    kiln_status s = load_model("sub/model.onnx", "link.bin", "16", "16", &m);
    check_refused(s, m, "link.bin");
    /* a symlinked folder pointing outside */
    char dlink[512];
    at(dlink, sizeof dlink, "sub/up");
    unlink(dlink);
    KT_CHECK(symlink(root, dlink) == 0);
    s = load_model("sub/model.onnx", "up/outside.bin", "16", "16", &m);
    check_refused(s, m, "up/outside.bin");
}

/* From memory without a base folder, external data is refused. */
static void test_no_base_dir(void) {
    kt_pb mb = {0};
    ext_model(&mb, "weights.bin", "16", "16");
    kl_model *m = NULL;
    kl_error_clear();
    kiln_status s = kl_onnx_parse(mb.data, mb.len, "mem.onnx", NULL, &m);
    check_refused(s, m, "weights.bin");
    kt_pb_free(&mb);
}

static void test_bad_entries(void) {
    kl_model *m;
    kiln_status s = load_model("model.onnx", "weights.bin", "12x", NULL, &m);
    check_refused(s, m, "12x");
    s = load_model("model.onnx", "weights.bin", "-4", NULL, &m);
    check_refused(s, m, "-4");
    s = load_model("model.onnx", "weights.bin", "16", "", &m);
    check_refused(s, m, "length");
    /* data_location EXTERNAL without a location entry */
    kt_pb g = {0}, t = {0}, mb = {0};
    kt_pb_string_field(&g, KT_GRAPH_NAME, "g");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "X", 1, "4");
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "Y", 1, "4");
    const int64_t dims[1] = {4};
    kt_onnx_tensor_head(&t, "W", 1, dims, 1, 1);
    kt_pb_varint_field(&t, KT_TENSOR_DATA_LOCATION, 1);
    kt_onnx_tensor_ext(&t, "offset", "0");
    kt_pb_take(&g, KT_GRAPH_INITIALIZER, &t);
    kt_onnx_node(&g, KT_GRAPH_NODE, "Add", "add", "X,W", "Y");
    kt_onnx_model(&mb, 8, 13, &g);
    char dir[512];
    at(dir, sizeof dir, "");
    kl_error_clear();
    s = kl_onnx_parse(mb.data, mb.len, "noloc.onnx", dir, &m);
    check_refused(s, m, "location");
    kt_pb_free(&g);
    kt_pb_free(&mb);
    /* a folder as location */
    make_dir("adir");
    s = load_model("model.onnx", "adir", NULL, NULL, &m);
    check_refused(s, m, "adir");
}

int main(void) {
    make_root();
    write_weights("weights.bin");
    KT_RUN(test_external_values);
    KT_RUN(test_external_whole_file);
    KT_RUN(test_external_subfolder);
    KT_RUN(test_inline_equals_external);
    KT_RUN(test_missing_file);
    KT_RUN(test_file_too_short);
    KT_RUN(test_offset_past_end);
    KT_RUN(test_length_past_end);
    KT_RUN(test_length_mismatch);
    KT_RUN(test_absolute_path);
    KT_RUN(test_dotdot_escape);
    KT_RUN(test_symlink_escape);
    KT_RUN(test_no_base_dir);
    KT_RUN(test_bad_entries);
    remove_root();
    return kt_summary();
}
