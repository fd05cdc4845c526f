/*
 * test_nms — NonMaxSuppression through a session (build -> context -> run)
 * against the ONNX reference algorithm written here (onnx/reference's
 * non_max_suppression: per batch and class, candidates above the score
 * threshold by descending score, then index; each kept unless its IoU with
 * an already kept box of the class, suppress_by_iou in float, exceeds the
 * threshold).  Random boxes in clusters (most pairs overlap), with flipped
 * corners, zero-area boxes, coordinates on a grid (IoU ties), center_point_box, NaN scores and, in some cases,
 * NaN coordinates; max_output_boxes_per_class 0, 1, 5 and unbounded; IoU
 * thresholds 0 to 0.9; score thresholds -inf (NaN scores still fail it), 0
 * and 0.25.  The selection
 * must match index for index.  Up to 700 boxes, most kept: the kept-box
 * loop of the kernel runs over many blocks of 16.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kiln.h"
#include "onnxbuild.c" /* not part of kiln_testcommon */

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;
static double urand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) * 0x1.0p-53;
}

/* onnx/reference's suppress_by_iou, in float. */
static bool ref_suppress(const float *b1, const float *b2, bool center, float thr) {
    float x1min, x1max, x2min, x2max, y1min, y1max, y2min, y2max;
    if (!center) {
        x1min = fminf(b1[1], b1[3]), x1max = fmaxf(b1[1], b1[3]);
        x2min = fminf(b2[1], b2[3]), x2max = fmaxf(b2[1], b2[3]);
        y1min = fminf(b1[0], b1[2]), y1max = fmaxf(b1[0], b1[2]);
        y2min = fminf(b2[0], b2[2]), y2max = fmaxf(b2[0], b2[2]);
    } else {
        x1min = b1[0] - b1[2] / 2, x1max = b1[0] + b1[2] / 2;
        x2min = b2[0] - b2[2] / 2, x2max = b2[0] + b2[2] / 2;
        y1min = b1[1] - b1[3] / 2, y1max = b1[1] + b1[3] / 2;
        y2min = b2[1] - b2[3] / 2, y2max = b2[1] + b2[3] / 2;
    }
    float ixmin = fmaxf(x1min, x2min), ixmax = fminf(x1max, x2max);
    float iymin = fmaxf(y1min, y2min), iymax = fminf(y1max, y2max);
    if (!(ixmax > ixmin) || !(iymax > iymin)) return false;
    float inter = (ixmax - ixmin) * (iymax - iymin);
    if (!(inter > 0)) return false;
    float a1 = (x1max - x1min) * (y1max - y1min), a2 = (x2max - x2min) * (y2max - y2min);
    float uni = a1 + a2 - inter;
    if (!(a1 > 0) || !(a2 > 0) || !(uni > 0)) return false;
    return inter / uni > thr;
}

/* The reference selection; returns the number of triples written to out. */
static int64_t ref_nms(const float *boxes, const float *scores, int64_t B, int64_t C, int64_t N, int64_t max_out,
                       float iou, bool has_thr, float thr, bool center, int64_t *out) {
    int64_t n_out = 0, *order = malloc((size_t)(N ? N : 1) * sizeof *order);
    int64_t *kept = malloc((size_t)(N ? N : 1) * sizeof *kept);
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++) {
            const float *s = scores + (b * C + c) * N;
            int64_t nc = 0, nk = 0;
            for (int64_t i = 0; i < N; i++)
                if (!has_thr || s[i] > thr) order[nc++] = i;
            /* insertion sort: score descending, NaN last, ties by index */
            for (int64_t i = 1; i < nc; i++) {
                int64_t v = order[i], j = i;
                while (j > 0) {
                    float a = s[order[j - 1]], x = s[v];
                    bool before = isnan(a) ? !isnan(x) : (!isnan(x) && x > a);
                    if (!before) break;
                    order[j] = order[j - 1];
                    j--;
                }
                order[j] = v;
            }
            for (int64_t k = 0; k < nc && nk < max_out; k++) {
                bool keep = true;
                for (int64_t j = 0; j < nk && keep; j++)
                    keep = !ref_suppress(boxes + (b * N + order[k]) * 4, boxes + (b * N + kept[j]) * 4, center, iou);
                if (!keep) continue;
                kept[nk++] = order[k];
                out[n_out * 3] = b, out[n_out * 3 + 1] = c, out[n_out * 3 + 2] = order[k];
                n_out++;
            }
        }
    free(order);
    free(kept);
    return n_out;
}

static kiln_model *nms_model(int64_t B, int64_t C, int64_t N, bool center, void **bytes) {
    kt_pb g = {0}, mb = {0}, node = {0};
    char s[64];
    kt_pb_string_field(&g, KT_GRAPH_NAME, "nms");
    snprintf(s, sizeof s, "%lld,%lld,4", (long long)B, (long long)N);
    kt_onnx_io(&g, KT_GRAPH_INPUT, "boxes", KILN_DTYPE_FLOAT, s);
    snprintf(s, sizeof s, "%lld,%lld,%lld", (long long)B, (long long)C, (long long)N);
    kt_onnx_io(&g, KT_GRAPH_INPUT, "scores", KILN_DTYPE_FLOAT, s);
    kt_onnx_io(&g, KT_GRAPH_INPUT, "max_out", KILN_DTYPE_INT64, "1");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "iou", KILN_DTYPE_FLOAT, "1");
    kt_onnx_io(&g, KT_GRAPH_INPUT, "thr", KILN_DTYPE_FLOAT, "1");
    kt_onnx_node_head(&node, "NonMaxSuppression", NULL, "nms", "boxes,scores,max_out,iou,thr", "sel");
    if (center) kt_onnx_attr_i(&node, "center_point_box", 1);
    kt_pb_take(&g, KT_GRAPH_NODE, &node);
    kt_onnx_io(&g, KT_GRAPH_OUTPUT, "sel", KILN_DTYPE_INT64, "K,3");
    kt_onnx_model(&mb, 8, 11, &g);
    kt_pb_free(&g);
    kiln_model *m = NULL;
    *bytes = malloc(mb.len);
    memcpy(*bytes, mb.data, mb.len);
    kiln_status st = kiln_model_load_from_memory(*bytes, mb.len, NULL, &m);
    kt_pb_free(&mb);
    if (st) fprintf(stderr, "    load: %s\n", kiln_last_error());
    return m;
}

/* Boxes in a few clusters: corners (y1, x1, y2, x2) in either order, or
 * (cx, cy, w, h); one in 16 of no width. */
static void fill_boxes(float *bx, int64_t count, bool center, bool nan_coord, bool grid) {
    for (int64_t i = 0; i < count; i++) {
        float *b = bx + i * 4;
        double cx = 10.0 * (double)(int)(urand() * 3) + urand() * 4, cy = 10.0 * (double)(int)(urand() * 2) + urand() * 4;
        double w = urand() < 1.0 / 16 ? 0.0 : 0.5 + urand() * 5, h = 0.5 + urand() * 5;
        if (center) {
            b[0] = (float)cx, b[1] = (float)cy, b[2] = (float)w, b[3] = (float)h;
        } else {
            bool flip = urand() < 0.25;
            b[0] = (float)(cy - h / 2), b[2] = (float)(cy + h / 2);
            b[1] = (float)(flip ? cx + w / 2 : cx - w / 2), b[3] = (float)(flip ? cx - w / 2 : cx + w / 2);
        }
    }
    if (grid) /* on a grid of 1/4: IoUs of exactly 0.5 (ties with the threshold) happen */
        for (int64_t i = 0; i < count * 4; i++) bx[i] = roundf(bx[i] * 4.0f) / 4.0f;
    if (nan_coord && count) bx[(int64_t)(urand() * (double)count) * 4 + 1] = NAN;
}

/* Run the model of (B, C, N, center) on boxes bx and scores sc and compare
 * the selection with the reference algorithm's; returns how many boxes the
 * reference selected (-1 if nothing ran).  `what` names the case in a
 * failure. */
static int64_t nms_check(int64_t B, int64_t C, int64_t N, bool center, const float *bx, const float *sc,
                         int64_t max_out, float iou, float thr, const char *what) {
    void *bytes = NULL;
    kiln_model *m = nms_model(B, C, N, center, &bytes);
    KT_CHECK(m != NULL);
    kiln_session *s = NULL;
    if (m) KT_CHECK_EQ_INT(kiln_session_create(m, NULL, &s), KILN_OK);
    int64_t d_b[3] = {B, N, 4}, d_s[3] = {B, C, N}, one = 1;
    kiln_tensor *in[5] = {0}, *out = NULL;
    kiln_tensor_create_from_data(KILN_DTYPE_FLOAT, d_b, 3, (void *)bx, (size_t)(B * N * 4) * sizeof *bx, &in[0]);
    kiln_tensor_create_from_data(KILN_DTYPE_FLOAT, d_s, 3, (void *)sc, (size_t)(B * C * N) * sizeof *sc, &in[1]);
    kiln_tensor_create_from_data(KILN_DTYPE_INT64, &one, 1, &max_out, sizeof max_out, &in[2]);
    kiln_tensor_create_from_data(KILN_DTYPE_FLOAT, &one, 1, &iou, sizeof iou, &in[3]);
    kiln_tensor_create_from_data(KILN_DTYPE_FLOAT, &one, 1, &thr, sizeof thr, &in[4]);
    const char *names[5] = {"boxes", "scores", "max_out", "iou", "thr"}, *oname = "sel";
    if (s)
        KT_CHECK_EQ_INT(kiln_session_run(s, names, (const kiln_tensor *const *)in, 5, &oname, &out, 1), KILN_OK);
    int64_t cap = B * C * N + 1, *want = malloc((size_t)cap * 3 * sizeof *want);
    int64_t nw = ref_nms(bx, sc, B, C, N, max_out, iou, true, thr, center, want);
    if (out) {
        int rank = 0;
        const int64_t *dims = NULL;
        void *data = NULL;
        size_t nbytes = 0;
        kiln_tensor_shape(out, &rank, &dims);
        kiln_tensor_data(out, &data, &nbytes);
        bool same = rank == 2 && dims[0] == nw && dims[1] == 3 &&
                    (nw == 0 || memcmp(data, want, (size_t)nw * 3 * sizeof *want) == 0);
        if (!same)
            fprintf(stderr, "    %s: B=%lld C=%lld N=%lld center=%d max_out=%lld iou=%g thr=%g: %lld selected, "
                            "reference %lld\n", what, (long long)B, (long long)C, (long long)N, center,
                    (long long)max_out, iou, thr, rank == 2 ? (long long)dims[0] : -1LL, (long long)nw);
        KT_CHECK(same);
    }
    kiln_tensor_destroy(out);
    for (int i = 0; i < 5; i++) kiln_tensor_destroy(in[i]);
    free(want);
    kiln_session_destroy(s);
    kiln_model_destroy(m);
    free(bytes);
    return out ? nw : -1;
}

static void nms_case(int64_t B, int64_t C, int64_t N, bool center, int64_t max_out, float iou, float thr,
                     bool nan_coord, int seed) {
    float *bx = malloc((size_t)(B * N * 4 + 1) * sizeof *bx), *sc = malloc((size_t)(B * C * N + 1) * sizeof *sc);
    fill_boxes(bx, B * N, center, nan_coord, seed % 2 == 0);
    for (int64_t i = 0; i < B * C * N; i++) sc[i] = urand() < 0.02 ? NAN : (float)(int)(urand() * 64) / 64.0f;
    char what[48];
    snprintf(what, sizeof what, "seed %d%s", seed, nan_coord ? ", NaN coordinates" : "");
    (void)nms_check(B, C, N, center, bx, sc, max_out, iou, thr, what);
    free(bx);
    free(sc);
}

static void test_nms_random(void) {
    static const int64_t ns[] = {0, 1, 7, 16, 17, 40, 300, 700};
    static const float ious[] = {0.0f, 0.5f, 0.3f, 0.5f, 0.9f};
    static const int64_t maxes[] = {0, 1, 5, INT64_MAX};
    int seed = 0;
    for (size_t in = 0; in < sizeof ns / sizeof ns[0]; in++)
        for (int v = 0; v < 6; v++, seed++) {
            int64_t B = 1 + (v & 1), C = v < 2 ? 1 : 3, N = ns[in];
            bool center = v == 3 || v == 5;
            int64_t max_out = maxes[(v + (int)in) % 4];
            if (N >= 300 && max_out < 5) max_out = INT64_MAX; /* the long kept lists */
            float iou = ious[(v * 3 + (int)in) % 5], thr = v == 4 ? -INFINITY : (v & 2) ? 0.25f : 0.0f;
            nms_case(B, C, N, center, max_out, iou, thr, false, seed);
            if (N >= 7 && v < 2) nms_case(B, C, N, center, max_out, iou, thr, true, seed);
        }
}

/* Boxes far apart (torchvision's batched NMS shifts each class's boxes by
 * its own offset): almost every box is kept, so each candidate runs down the
 * whole kept list. */
static void test_nms_disjoint(void) {
    int64_t N = 1000;
    float *bx = malloc((size_t)N * 4 * sizeof *bx), *sc = malloc((size_t)N * sizeof *sc);
    for (int64_t i = 0; i < N; i++) {
        float o = (float)(i % 100) * 20.0f; /* 100 groups of 10 overlapping boxes */
        bx[i * 4] = o + (float)urand(), bx[i * 4 + 1] = o + (float)urand();
        bx[i * 4 + 2] = bx[i * 4] + 3.0f + (float)urand(), bx[i * 4 + 3] = bx[i * 4 + 1] + 3.0f + (float)urand();
        sc[i] = (float)urand();
    }
    int64_t nw = nms_check(1, 1, N, false, bx, sc, INT64_MAX, 0.5f, 0.01f, "disjoint groups");
    KT_CHECK(nw > 100);
    free(bx);
    free(sc);
}

int main(void) {
    KT_RUN(test_nms_random);
    KT_RUN(test_nms_disjoint);
    return kt_summary();
}
