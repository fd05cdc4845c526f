/* Helpers of the kiln command that need no files: PIL-exact bilinear
 * resizing and torchvision's ImageNet preprocessing (expected values
 * computed with Pillow 9.4 and torchvision 0.14), .npy round trips, shape
 * parsing, top-k and error metrics.  The command's sources are compiled in
 * directly (tools/ is not a library); image decoding is left out. */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"

#include "../../tools/image.c"
#include "../../tools/npy.c"
#include "../../tools/tensors.c"

/* The 7x5 (or w x h) test picture: a deterministic pattern. */
static void make_pattern(kc_image *img, int w, int h) {
    img->width = w;
    img->height = h;
    img->rgb = malloc((size_t)w * (size_t)h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                img->rgb[((size_t)y * (size_t)w + (size_t)x) * 3 + (size_t)c] =
                    (uint8_t)((x * 37 + y * 11 + c * 5 + x * y * 13) % 256);
}

/* Resize the 7x5 pattern to w x h and compare with Pillow's bytes. */
static void check_resize(int w, int h, const uint8_t *want) {
    kc_image in, out;
    make_pattern(&in, 7, 5);
    KT_CHECK(kc_image_resize(&in, w, h, &out));
    int bad = 0;
    for (int i = 0; i < w * h * 3; i++) bad += out.rgb[i] != want[i];
    KT_CHECK_EQ_INT(bad, 0);
    kc_image_free(&in);
    kc_image_free(&out);
}

static void test_resize_matches_pil(void) {
    static const uint8_t down[] = {38,  43,  48,  120, 125, 130, 159, 164, 169, 63,  68,  73,
                                   142, 147, 152, 77,  82,  87,  89,  94,  99,  103, 108, 113,
                                   135, 140, 145, 115, 120, 125, 118, 123, 128, 158, 163, 168};
    static const uint8_t wide[] = {11,  16,  21,  61,  66,  71,  111, 116, 121, 149, 154, 159, 141, 146,
                                   151, 86,  91,  96,  136, 141, 146, 33,  38,  43,  109, 114, 119, 185,
                                   190, 195, 75,  80,  85,  93,  98,  103, 157, 162, 167, 152, 157, 162};
    static const uint8_t tall[] = {59,  64,  69,  163, 168, 173, 90,  95,  100, 101, 106, 111, 104, 109, 114,
                                   104, 109, 114, 94,  99,  104, 131, 136, 141, 125, 130, 135, 146, 151, 156};
    check_resize(3, 4, down);
    check_resize(7, 2, wide);  /* vertical pass only */
    check_resize(2, 5, tall);  /* horizontal pass only */
}

static void test_resize_upscale(void) {
    /* First and last rows of Pillow's 10x9 upscale of the pattern. */
    static const uint8_t first[] = {0,   5,   10,  20,  25,  30,  46,  51,  56,  72,  77,  82,  98,  103, 108,
                                    124, 129, 134, 150, 155, 160, 176, 181, 186, 202, 207, 212, 222, 227, 232};
    static const uint8_t last[] = {44,  49,  54,  93,  98,  103, 155, 160, 165, 218, 223, 228, 113, 118, 123,
                                   86,  91,  96,  148, 153, 158, 211, 216, 221, 158, 163, 168, 66,  71,  76};
    kc_image in, out;
    make_pattern(&in, 7, 5);
    KT_CHECK(kc_image_resize(&in, 10, 9, &out));
    KT_CHECK(memcmp(out.rgb, first, sizeof first) == 0);
    KT_CHECK(memcmp(out.rgb + 8 * 30, last, sizeof last) == 0);
    kc_image_free(&in);
    kc_image_free(&out);
}

/* torchvision Resize(resize), CenterCrop(crop), ToTensor, Normalize on the
 * 40x30 pattern: checksum and four values. */
static void check_preprocess(int resize, int crop, double sum, const float *vals) {
    kc_image img;
    make_pattern(&img, 40, 30);
    kc_preprocess p;
    kc_preprocess_defaults(&p, crop, crop);
    p.resize = resize;
    float *out = malloc((size_t)(3 * crop * crop) * sizeof *out);
    KT_CHECK(kc_preprocess_image(&img, &p, out));
    double s = 0;
    for (int i = 0; i < 3 * crop * crop; i++) s += out[i];
    KT_CHECK(fabs(s - sum) < 1e-3);
    size_t plane = (size_t)crop * (size_t)crop;
    KT_CHECK(out[0] == vals[0]);
    KT_CHECK(out[plane + 5 * (size_t)crop + 7] == vals[1]);
    KT_CHECK(out[2 * plane + (size_t)(crop - 1) * (size_t)crop + (size_t)(crop - 1)] == vals[2]);
    KT_CHECK(out[(size_t)(crop / 2) * (size_t)crop + 1] == vals[3]);
    free(out);
    kc_image_free(&img);
}

static void test_preprocess_matches_torchvision(void) {
    static const float crop16[] = {0.31381115317344666f, 0.5378152132034302f, 0.3742048442363739f,
                                   0.2453121542930603f};
    static const float pad24[] = {-2.1179039478302f, -0.4075629711151123f, -1.804444432258606f,
                                  -0.4396780729293823f};
    static const float imagenet[] = {-0.16568204760551453f, 1.0280112028121948f, 0.7227888703346252f,
                                     0.43368443846702576f};
    check_preprocess(20, 16, 217.5799521850422, crop16);
    check_preprocess(20, 24, -213.82120843231678, pad24); /* crop larger than the image: zero padding */
    check_preprocess(256, 224, 40627.345076973084, imagenet);
    kc_preprocess p;
    kc_preprocess_defaults(&p, 224, 224);
    KT_CHECK_EQ_INT(p.resize, 256);
    kc_preprocess_defaults(&p, 384, 384);
    KT_CHECK_EQ_INT(p.resize, 439);
}

static void test_npy_round_trip(void) {
    int64_t dims[3] = {2, 3, 4};
    kiln_tensor *t, *back = NULL;
    KT_CHECK(kiln_tensor_create(KILN_DTYPE_INT16, dims, 3, &t) == KILN_OK);
    void *data;
    size_t nbytes;
    kiln_tensor_data(t, &data, &nbytes);
    for (int i = 0; i < 24; i++) ((int16_t *)data)[i] = (int16_t)(i * 1000 - 7000);
    char path[] = "/tmp/kiln-test-npy-XXXXXX", err[512];
    int fd = mkstemp(path);
    KT_CHECK(fd >= 0);
    close(fd);
    KT_CHECK(kc_npy_write(path, t, err, sizeof err));
    KT_CHECK(kc_npy_read(path, &back, err, sizeof err));
    if (back) {
        kiln_dtype dt;
        int rank;
        const int64_t *shape;
        void *bd;
        size_t bn;
        kiln_tensor_dtype(back, &dt);
        kiln_tensor_shape(back, &rank, &shape);
        kiln_tensor_data(back, &bd, &bn);
        KT_CHECK_EQ_INT(dt, KILN_DTYPE_INT16);
        KT_CHECK_EQ_INT(rank, 3);
        KT_CHECK_EQ_INT(shape[2], 4);
        KT_CHECK(bn == nbytes && memcmp(bd, data, nbytes) == 0);
    }
    kiln_tensor_destroy(back);
    kiln_tensor_destroy(t);
    unlink(path);
}

static void test_npy_parse(void) {
    /* Version 2 header, big-endian float32, shape (2,), Python 2 long. */
    unsigned char b[128] = "\x93NUMPY\x02\x00";
    const char *h = "{'descr': '>f4', 'fortran_order': False, 'shape': (2L,), }\n";
    size_t hl = strlen(h);
    b[8] = (unsigned char)hl;
    b[9] = b[10] = b[11] = 0;
    memcpy(b + 12, h, hl);
    unsigned char *d = b + 12 + hl;
    const unsigned char one[4] = {0x3f, 0x80, 0, 0}, two[4] = {0x40, 0, 0, 0};
    memcpy(d, one, 4);
    memcpy(d + 4, two, 4);
    kiln_tensor *t = NULL;
    char err[512];
    KT_CHECK(kc_npy_parse("x.npy", b, 12 + hl + 8, &t, err, sizeof err));
    if (t) {
        void *data;
        size_t n;
        kiln_tensor_data(t, &data, &n);
        KT_CHECK(((float *)data)[0] == 1.0f && ((float *)data)[1] == 2.0f);
    }
    kiln_tensor_destroy(t);
    t = NULL;
    KT_CHECK(!kc_npy_parse("x.npy", b, 12 + hl + 4, &t, err, sizeof err));
    KT_CHECK_CONTAINS(err, "4 bytes but the header's shape and type need 8");
    KT_CHECK(!kc_npy_parse("x.npy", (const unsigned char *)"hello", 5, &t, err, sizeof err));
    KT_CHECK_CONTAINS(err, "not a .npy file");
}

static void test_parse_dims(void) {
    int64_t d[KILN_MAX_RANK];
    int r;
    char err[256];
    KT_CHECK(kc_parse_dims("1x3x224x224", 11, d, &r, err, sizeof err));
    KT_CHECK_EQ_INT(r, 4);
    KT_CHECK_EQ_INT(d[3], 224);
    KT_CHECK(kc_parse_dims("scalar", 6, d, &r, err, sizeof err) && r == 0);
    KT_CHECK(!kc_parse_dims("1x", 2, d, &r, err, sizeof err));
    KT_CHECK(!kc_parse_dims("1,3", 3, d, &r, err, sizeof err));
    KT_CHECK(!kc_parse_dims("x3", 2, d, &r, err, sizeof err));
    KT_CHECK_EQ_INT(kc_dtype_parse("fp16"), KILN_DTYPE_FLOAT16);
    KT_CHECK_EQ_INT(kc_dtype_parse("float128"), KILN_DTYPE_UNDEFINED);
}

static void test_topk_and_error(void) {
    const double p[6] = {0.1, 0.5, NAN, 0.5, 0.9, -1};
    int64_t idx[4];
    kc_topk(p, 6, 4, idx);
    KT_CHECK(idx[0] == 4 && idx[1] == 1 && idx[2] == 3 && idx[3] == 0);
    int64_t dims[2] = {2, 3};
    float a[6] = {1, 2, 3, 3, 2, 1}, b[6] = {1, 2, 3.5f, 3, 4, 1};
    kiln_tensor *ta, *tb;
    kiln_tensor_create_from_data(KILN_DTYPE_FLOAT, dims, 2, a, sizeof a, &ta);
    kiln_tensor_create_from_data(KILN_DTYPE_FLOAT, dims, 2, b, sizeof b, &tb);
    kc_error e;
    kc_tensor_error(tb, ta, &e);
    KT_CHECK(fabs(e.max_abs - 2.0) < 1e-12);
    KT_CHECK(fabs(e.rel_l2 - sqrt(4.25 / 28.0)) < 1e-9);
    KT_CHECK_EQ_INT(e.top1_rows, 2);
    KT_CHECK_EQ_INT(e.top1_same, 1);
    double probs[3];
    KT_CHECK(kc_row_probs(ta, 0, 3, probs));
    KT_CHECK(fabs(probs[0] + probs[1] + probs[2] - 1) < 1e-12 && probs[2] > probs[1]);
    kiln_tensor_destroy(ta);
    kiln_tensor_destroy(tb);
}

int main(void) {
    KT_RUN(test_resize_matches_pil);
    KT_RUN(test_resize_upscale);
    KT_RUN(test_preprocess_matches_torchvision);
    KT_RUN(test_npy_round_trip);
    KT_RUN(test_npy_parse);
    KT_RUN(test_parse_dims);
    KT_RUN(test_topk_and_error);
    return kt_summary();
}
