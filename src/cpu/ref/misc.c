/* CPU reference kernels, misc family: shared helpers, NonMaxSuppression,
 * RoiAlign, and the registry table of every misc*.c kernel. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/ref/misc.h"

/* ---- shared helpers ------------------------------------------------------------ */

bool kl_misc_is_float(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT || t == KILN_DTYPE_DOUBLE || t == KILN_DTYPE_FLOAT16 || t == KILN_DTYPE_BFLOAT16;
}

/* Zeroed array of n elements (at least one byte), NULL with the error set on overflow or OOM. */
void *kl_misc_calloc(int64_t n, size_t size) {
    if (n < 0) return NULL;
    size_t bytes;
    if (kl_mul_size((size_t)n, size, &bytes) || bytes > KL_MAX_ALLOC) {
        kl_errorf(KILN_ERR_NO_MEMORY, "buffer of %lld elements is too large", (long long)n);
        return NULL;
    }
    return kl_calloc(n ? (size_t)n : 1, size);
}

/* Numeric tensor -> new double array (see misc.h). */
kiln_status kl_misc_load_f64(const kl_rt *t, const char *what, double **out) {
    if (!t || t->kind != KL_RT_TENSOR || t->dtype == KILN_DTYPE_STRING)
        return kl_errorf(KILN_ERR_TYPE, "%s must be a numeric tensor", what);
    double *v = kl_misc_calloc(t->count, sizeof *v);
    if (!v) return KILN_ERR_NO_MEMORY;
    if (t->dtype == KILN_DTYPE_FLOAT) {
        const float *f = t->data;
        for (int64_t i = 0; i < t->count; i++) v[i] = f[i];
    } else if (t->dtype == KILN_DTYPE_DOUBLE) {
        if (t->count) memcpy(v, t->data, (size_t)t->count * sizeof *v);
    } else {
        for (int64_t i = 0; i < t->count; i++) v[i] = kl_rt_get_f64(t, i);
    }
    *out = v;
    return KILN_OK;
}

/* Double array -> t, converted to its dtype (see misc.h). */
void kl_misc_store_f64(kl_rt *t, const double *v) {
    if (t->dtype == KILN_DTYPE_FLOAT) {
        float *f = t->data;
        for (int64_t i = 0; i < t->count; i++) f[i] = (float)v[i];
    } else if (t->dtype == KILN_DTYPE_DOUBLE) {
        if (t->count) memcpy(t->data, v, (size_t)t->count * sizeof *v);
    } else {
        for (int64_t i = 0; i < t->count; i++) kl_rt_set_f64(t, i, v[i]);
    }
}

/* Input i as a present tensor, else an error naming `what`. */
kiln_status kl_misc_need(kl_kctx *c, size_t i, const char *what, kl_rt **out) {
    if (i >= c->n_in || !c->in[i]) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "input %zu (%s) is required", i, what);
    if (c->in[i]->kind != KL_RT_TENSOR) return kl_kctx_fail(c, KILN_ERR_TYPE, "input %zu (%s) must be a tensor", i, what);
    *out = c->in[i];
    return KILN_OK;
}

/* ---- NonMaxSuppression (opset 10, 11) ---------------------------------------------- */

typedef struct nms_cand {
    float score;
    int64_t idx;
} nms_cand;

/* Highest score first, then lowest box index; NaN scores last. */
static int nms_cmp(const void *pa, const void *pb) {
    const nms_cand *a = pa, *b = pb;
    bool na = isnan(a->score), nb = isnan(b->score);
    if (na != nb) return na ? 1 : -1;
    if (!na && a->score != b->score) return a->score > b->score ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* The reference's suppress_by_iou: true when box b1 overlaps b2 by more than thr. */
static bool nms_suppress(const float *b1, const float *b2, bool center, float thr) {
    float x1min, x1max, x2min, x2max, y1min, y1max, y2min, y2max;
    if (!center) {
        x1min = fminf(b1[1], b1[3]), x1max = fmaxf(b1[1], b1[3]);
        x2min = fminf(b2[1], b2[3]), x2max = fmaxf(b2[1], b2[3]);
        y1min = fminf(b1[0], b1[2]), y1max = fmaxf(b1[0], b1[2]);
        y2min = fminf(b2[0], b2[2]), y2max = fmaxf(b2[0], b2[2]);
    } else {
        float w1 = b1[2] / 2, h1 = b1[3] / 2, w2 = b2[2] / 2, h2 = b2[3] / 2;
        x1min = b1[0] - w1, x1max = b1[0] + w1, x2min = b2[0] - w2, x2max = b2[0] + w2;
        y1min = b1[1] - h1, y1max = b1[1] + h1, y2min = b2[1] - h2, y2max = b2[1] + h2;
    }
    float ixmin = fmaxf(x1min, x2min), ixmax = fminf(x1max, x2max);
    if (!(ixmax > ixmin)) return false;
    float iymin = fmaxf(y1min, y2min), iymax = fminf(y1max, y2max);
    if (!(iymax > iymin)) return false;
    float inter = (ixmax - ixmin) * (iymax - iymin);
    if (!(inter > 0)) return false;
    float a1 = (x1max - x1min) * (y1max - y1min), a2 = (x2max - x2min) * (y2max - y2min);
    float uni = a1 + a2 - inter;
    if (!(a1 > 0) || !(a2 > 0) || !(uni > 0)) return false;
    return inter / uni > thr;
}

/* True when one of the n kept boxes (corners k0..k3 = xmin, ymin, xmax, ymax; areas ka, all
 * > 0) overlaps the box (x0, y0, x1, y1) of area a > 0 by an IoU above thr: nms_suppress on
 * each pair, the same float operations on the same values, without its early exits (so that a
 * block of 16 pairs compiles to vector code) -- equal decisions unless a coordinate is NaN,
 * where fminf/fmaxf and a comparison disagree (the caller takes nms_suppress then). */
static bool nms_hit(const float *restrict k0, const float *restrict k1, const float *restrict k2,
                    const float *restrict k3, const float *restrict ka, int64_t n, float x0, float y0, float x1,
                    float y1, float a, float thr) {
    for (int64_t j = 0; j < n; j += 16) {
        int64_t e = n - j < 16 ? n - j : 16;
        int any = 0;
        for (int64_t l = 0; l < e; l++) {
            float ix0 = k0[j + l] > x0 ? k0[j + l] : x0, ix1 = k2[j + l] < x1 ? k2[j + l] : x1;
            float iy0 = k1[j + l] > y0 ? k1[j + l] : y0, iy1 = k3[j + l] < y1 ? k3[j + l] : y1;
            float inter = (ix1 - ix0) * (iy1 - iy0);
            float uni = a + ka[j + l] - inter;
            any |= (ix1 > ix0) & (iy1 > iy0) & (inter > 0) & (uni > 0) & (inter / uni > thr);
        }
        if (any) return true;
    }
    return false;
}

/* Box i of bx (4 floats each) as corners xmin, ymin, xmax, ymax and area, as nms_suppress
 * computes them. */
static void nms_corners(const float *b, bool center, float *x0, float *y0, float *x1, float *y1, float *area) {
    if (!center) {
        *x0 = fminf(b[1], b[3]), *x1 = fmaxf(b[1], b[3]);
        *y0 = fminf(b[0], b[2]), *y1 = fmaxf(b[0], b[2]);
    } else {
        float w = b[2] / 2, h = b[3] / 2;
        *x0 = b[0] - w, *x1 = b[0] + w, *y0 = b[1] - h, *y1 = b[1] + h;
    }
    *area = (*x1 - *x0) * (*y1 - *y0);
}

/* NonMaxSuppression: greedy per (batch, class) selection by score, suppressing boxes whose
 * IoU with a kept box exceeds iou_threshold; output [selected, 3] int64 (batch, class, box). */
kiln_status kl_misc_nms(kl_kctx *c) {
    kl_rt *boxes, *scores;
    KL_TRY(kl_misc_need(c, 0, "boxes", &boxes));
    KL_TRY(kl_misc_need(c, 1, "scores", &scores));
    if (boxes->rank != 3 || boxes->dims[2] != 4)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "boxes must have shape [batches, boxes, 4]");
    if (scores->rank != 3 || scores->dims[0] != boxes->dims[0] || scores->dims[2] != boxes->dims[1])
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "scores must have shape [batches, classes, boxes] matching boxes");
    if (!kl_misc_is_float(boxes->dtype) || !kl_misc_is_float(scores->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "boxes and scores must be float tensors");
    int64_t max_out = 0;
    double iou = 0, score_thr = 0;
    bool has_score_thr = false;
    if (c->n_in > 2 && c->in[2] && c->in[2]->kind == KL_RT_TENSOR && c->in[2]->count > 0) {
        if (!kl_dtype_is_integer(c->in[2]->dtype))
            return kl_kctx_fail(c, KILN_ERR_TYPE, "max_output_boxes_per_class must be int64");
        max_out = kl_rt_get_i64(c->in[2], 0);
    }
    if (c->n_in > 3 && c->in[3] && c->in[3]->kind == KL_RT_TENSOR && c->in[3]->count > 0)
        iou = kl_rt_get_f64(c->in[3], 0);
    if (c->n_in > 4 && c->in[4] && c->in[4]->kind == KL_RT_TENSOR && c->in[4]->count > 0) {
        score_thr = kl_rt_get_f64(c->in[4], 0);
        has_score_thr = true;
    }
    if (max_out < 0) max_out = 0;
    bool center = kl_node_attr_int(c->node, "center_point_box", 0) != 0;
    int64_t B = boxes->dims[0], N = boxes->dims[1], C = scores->dims[1];

    kiln_status s = KILN_OK;
    float *bx = kl_misc_calloc(boxes->count, sizeof *bx);
    nms_cand *cand = kl_misc_calloc(N, sizeof *cand);
    int64_t *sel = kl_misc_calloc(N, sizeof *sel); /* selected box indices of one class */
    /* each box's corners and area, then the kept boxes' of one class (area > 0: a box of
     * no area is never suppressed and suppresses none) */
    float *f = kl_misc_calloc(N * 10, sizeof *f);
    int64_t *res = NULL, n_res = 0, cap_res = 0;
    if (!bx || !cand || !sel || !f) {
        s = KILN_ERR_NO_MEMORY;
        goto done;
    }
    bool has_nan = false;
    for (int64_t i = 0; i < boxes->count; i++) {
        bx[i] = (float)kl_rt_get_f64(boxes, i);
        has_nan |= isnan(bx[i]);
    }
    float *cx0 = f, *cy0 = f + N, *cx1 = f + 2 * N, *cy1 = f + 3 * N, *ca = f + 4 * N;
    float *kx0 = f + 5 * N, *ky0 = f + 6 * N, *kx1 = f + 7 * N, *ky1 = f + 8 * N, *ka = f + 9 * N;
    for (int64_t b = 0; b < B && max_out > 0; b++) {
        for (int64_t i = 0; i < N && !has_nan; i++)
            nms_corners(bx + (b * N + i) * 4, center, &cx0[i], &cy0[i], &cx1[i], &cy1[i], &ca[i]);
        for (int64_t cl = 0; cl < C; cl++) {
            int64_t nc = 0, n_sel = 0, nk = 0;
            int64_t base = (b * C + cl) * N;
            for (int64_t i = 0; i < N; i++) {
                float sc = (float)kl_rt_get_f64(scores, base + i);
                if (has_score_thr && !(sc > (float)score_thr)) continue;
                cand[nc++] = (nms_cand){sc, i};
            }
            qsort(cand, (size_t)nc, sizeof *cand, nms_cmp);
            for (int64_t k = 0; k < nc && n_sel < max_out; k++) {
                int64_t i = cand[k].idx;
                bool keep = true;
                if (has_nan) {
                    const float *bk = bx + (b * N + i) * 4;
                    for (int64_t j = 0; j < n_sel && keep; j++)
                        if (nms_suppress(bk, bx + (b * N + sel[j]) * 4, center, (float)iou)) keep = false;
                } else if (ca[i] > 0) {
                    keep = !nms_hit(kx0, ky0, kx1, ky1, ka, nk, cx0[i], cy0[i], cx1[i], cy1[i], ca[i], (float)iou);
                    if (keep) kx0[nk] = cx0[i], ky0[nk] = cy0[i], kx1[nk] = cx1[i], ky1[nk] = cy1[i], ka[nk++] = ca[i];
                }
                if (!keep) continue;
                sel[n_sel++] = cand[k].idx;
                if (n_res == cap_res) {
                    int64_t ncap = cap_res ? cap_res * 2 : 64;
                    int64_t *nr = kl_realloc_array(res, (size_t)ncap * 3, sizeof *nr);
                    if (!nr) {
                        s = KILN_ERR_NO_MEMORY;
                        goto done;
                    }
                    res = nr, cap_res = ncap;
                }
                res[n_res * 3] = b, res[n_res * 3 + 1] = cl, res[n_res * 3 + 2] = cand[k].idx;
                n_res++;
            }
        }
    }
    kl_rt *y;
    s = kl_kctx_output(c, 0, KILN_DTYPE_INT64, 2, (int64_t[]){n_res, 3}, &y);
    if (!s && n_res) memcpy(y->data, res, (size_t)n_res * 3 * sizeof *res);
done:
    kl_free(bx);
    kl_free(cand);
    kl_free(sel);
    kl_free(f);
    kl_free(res);
    return s;
}

/* ---- RoiAlign (opset 10, 16) ----------------------------------------------------------- */

typedef struct roi_pc {
    int64_t pos[4];
    double w[4];
} roi_pc;

/* Bilinear sample positions/weights of one ROI, laid out [ph][pw][iy][ix] (the
 * reference's pre_calc_for_bilinear_interpolate). */
static void roi_precalc(int64_t H, int64_t W, int64_t ph_n, int64_t pw_n, int64_t gh, int64_t gw, double y0,
                        double x0, double bh, double bw, roi_pc *pc) {
    size_t k = 0;
    for (int64_t ph = 0; ph < ph_n; ph++)
        for (int64_t pw = 0; pw < pw_n; pw++)
            for (int64_t iy = 0; iy < gh; iy++) {
                double yy = y0 + (double)ph * bh + ((double)iy + 0.5) * bh / (double)gh;
                for (int64_t ix = 0; ix < gw; ix++, k++) {
                    double y = yy, x = x0 + (double)pw * bw + ((double)ix + 0.5) * bw / (double)gw;
                    memset(&pc[k], 0, sizeof pc[k]);
                    if (!(y >= -1.0 && y <= (double)H && x >= -1.0 && x <= (double)W)) continue;
                    if (y < 0) y = 0;
                    if (x < 0) x = 0;
                    int64_t yl = (int64_t)y, xl = (int64_t)x, yh, xh;
                    if (yl >= H - 1) yh = yl = H - 1, y = (double)yl;
                    else yh = yl + 1;
                    if (xl >= W - 1) xh = xl = W - 1, x = (double)xl;
                    else xh = xl + 1;
                    double ly = y - (double)yl, lx = x - (double)xl, hy = 1.0 - ly, hx = 1.0 - lx;
                    pc[k] = (roi_pc){{yl * W + xl, yl * W + xh, yh * W + xl, yh * W + xh},
                                     {hy * hx, hy * lx, ly * hx, ly * lx}};
                }
            }
}

/* RoiAlign: average/max of bilinear samples per output bin, following the spec's reference
 * (opset 16 adds coordinate_transformation_mode, default half_pixel; opset 10 behaves as output_half_pixel). */
kiln_status kl_misc_roi_align(kl_kctx *c) {
    kl_rt *X, *rois, *bi;
    KL_TRY(kl_misc_need(c, 0, "X", &X));
    KL_TRY(kl_misc_need(c, 1, "rois", &rois));
    KL_TRY(kl_misc_need(c, 2, "batch_indices", &bi));
    if (X->rank != 4) return kl_kctx_fail(c, KILN_ERR_SHAPE, "X must be 4-D [N, C, H, W]");
    if (rois->rank != 2 || rois->dims[1] != 4) return kl_kctx_fail(c, KILN_ERR_SHAPE, "rois must have shape [num_rois, 4]");
    if (bi->rank != 1 || bi->dims[0] != rois->dims[0])
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "batch_indices must have shape [num_rois]");
    if (!kl_misc_is_float(X->dtype) || !kl_misc_is_float(rois->dtype) || !kl_dtype_is_integer(bi->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "X and rois must be float tensors, batch_indices an integer tensor");
    const char *mode = kl_node_attr_string(c->node, "mode", "avg");
    bool is_max = strcmp(mode, "max") == 0;
    if (!is_max && strcmp(mode, "avg") != 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "mode '%s' is not avg or max", mode);
    const char *ctm = kl_node_attr_string(c->node, "coordinate_transformation_mode",
                                          c->node->opset >= 16 ? "half_pixel" : "output_half_pixel");
    bool half = strcmp(ctm, "half_pixel") == 0;
    if (!half && strcmp(ctm, "output_half_pixel") != 0)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "coordinate_transformation_mode '%s' is not supported", ctm);
    int64_t oh = kl_node_attr_int(c->node, "output_height", 1), ow = kl_node_attr_int(c->node, "output_width", 1);
    int64_t sr = kl_node_attr_int(c->node, "sampling_ratio", 0);
    double scale = kl_node_attr_float(c->node, "spatial_scale", 1.0f);
    if (oh <= 0 || ow <= 0 || sr < 0)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "output_height/output_width must be positive and sampling_ratio >= 0");
    int64_t R = rois->dims[0], N = X->dims[0], C = X->dims[1], H = X->dims[2], W = X->dims[3];
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, X->dtype, 4, (int64_t[]){R, C, oh, ow}, &y));
    if (y->count == 0) return KILN_OK;
    if (H == 0 || W == 0) return kl_kctx_fail(c, KILN_ERR_SHAPE, "X has an empty spatial size");

    double *xd = NULL, *rd = NULL, *yd = NULL;
    const float *xf = X->dtype == KILN_DTYPE_FLOAT ? X->data : NULL; /* float32: read in place */
    roi_pc *pc = NULL;
    kiln_status s = xf ? KILN_OK : kl_misc_load_f64(X, "X", &xd);
    if (!s) s = kl_misc_load_f64(rois, "rois", &rd);
    if (!s && !(yd = kl_misc_calloc(y->count, sizeof *yd))) s = KILN_ERR_NO_MEMORY;
    for (int64_t n = 0; !s && n < R; n++) {
        int64_t b = kl_rt_get_i64(bi, n);
        if (b < 0 || b >= N) {
            s = kl_kctx_fail(c, KILN_ERR_SHAPE, "batch_indices[%lld] = %lld is out of range [0, %lld)", (long long)n,
                             (long long)b, (long long)N);
            break;
        }
        double off = half ? 0.5 : 0.0;
        double x0 = rd[n * 4] * scale - off, y0 = rd[n * 4 + 1] * scale - off;
        double x1 = rd[n * 4 + 2] * scale - off, y1 = rd[n * 4 + 3] * scale - off;
        double rw = x1 - x0, rh = y1 - y0;
        if (!half) rw = fmax(rw, 1.0), rh = fmax(rh, 1.0);
        double bh = rh / (double)oh, bw = rw / (double)ow;
        double gh_d = sr > 0 ? (double)sr : ceil(rh / (double)oh), gw_d = sr > 0 ? (double)sr : ceil(rw / (double)ow);
        if (!(gh_d > 0)) gh_d = 0;
        if (!(gw_d > 0)) gw_d = 0;
        if (gh_d > 1e8 || gw_d > 1e8 || gh_d * gw_d * (double)oh * (double)ow > 1e8) {
            s = kl_kctx_fail(c, KILN_ERR_UNSUPPORTED, "roi %lld needs too many sampling points", (long long)n);
            break;
        }
        int64_t gh = (int64_t)gh_d, gw = (int64_t)gw_d, count = KL_MAX(gh * gw, 1);
        int64_t npc = oh * ow * gh * gw;
        kl_free(pc);
        if (!(pc = kl_misc_calloc(npc, sizeof *pc))) {
            s = KILN_ERR_NO_MEMORY;
            break;
        }
        roi_precalc(H, W, oh, ow, gh, gw, y0, x0, bh, bw, pc);
        for (int64_t ch = 0; ch < C; ch++) {
            int64_t base = (b * C + ch) * H * W;
            double *dst = yd + ((n * C + ch) * oh) * ow;
            const roi_pc *p = pc;
#define ROI_SRC(k) (xf ? (double)xf[base + p->pos[k]] : xd[base + p->pos[k]])
            for (int64_t o = 0; o < oh * ow; o++) {
                double v = 0;
                bool first = true;
                for (int64_t g = 0; g < gh * gw; g++, p++) {
                    if (!is_max) {
                        v += p->w[0] * ROI_SRC(0) + p->w[1] * ROI_SRC(1) + p->w[2] * ROI_SRC(2) + p->w[3] * ROI_SRC(3);
                        continue;
                    }
                    double m = fmax(fmax(p->w[0] * ROI_SRC(0), p->w[1] * ROI_SRC(1)), fmax(p->w[2] * ROI_SRC(2), p->w[3] * ROI_SRC(3)));
                    v = first ? m : fmax(v, m);
                    first = false;
                }
                dst[o] = is_max ? v : v / (double)count;
            }
#undef ROI_SRC
        }
    }
    if (!s) kl_misc_store_f64(y, yd);
    kl_free(xd);
    kl_free(rd);
    kl_free(yd);
    kl_free(pc);
    return s;
}

/* ---- registry ----------------------------------------------------------------------- */

#define ML "ai.onnx.ml"
#define TRAIN "ai.onnx.preview.training"

const kl_kernel_def kl_ref_misc[] = {
    {"", "NonMaxSuppression", 10, 0, 0, kl_misc_nms},
    {"", "RoiAlign", 10, 0, KL_T_FLOATS, kl_misc_roi_align},

    {"", "StringConcat", 20, 0, KL_T(STRING), kl_misc_string_concat},
    {"", "StringNormalizer", 10, 0, KL_T(STRING), kl_misc_string_normalizer},
    {"", "StringSplit", 20, 0, KL_T(STRING), kl_misc_string_split},
    {"", "RegexFullMatch", 20, 0, KL_T(STRING), kl_misc_regex_full_match},
    {"", "TfIdfVectorizer", 9, 0, KL_T(STRING) | KL_T(INT32) | KL_T(INT64), kl_misc_tfidf},

    {"", "DFT", 17, 0, KL_T_FLOATS, kl_misc_dft},
    {"", "STFT", 17, 0, KL_T_FLOATS, kl_misc_stft},
    {"", "HannWindow", 17, 0, KL_T(INT32) | KL_T(INT64), kl_misc_hann},
    {"", "HammingWindow", 17, 0, KL_T(INT32) | KL_T(INT64), kl_misc_hamming},
    {"", "BlackmanWindow", 17, 0, KL_T(INT32) | KL_T(INT64), kl_misc_blackman},
    {"", "MelWeightMatrix", 17, 0, KL_T(INT32) | KL_T(INT64), kl_misc_mel},

    {"", "NegativeLogLikelihoodLoss", 12, 0, KL_T_FLOATS, kl_misc_nll_loss},
    {"", "SoftmaxCrossEntropyLoss", 12, 0, KL_T_FLOATS, kl_misc_sce_loss},

    {"", "Bernoulli", 15, 0, KL_T_FLOATS, kl_misc_bernoulli},
    {"", "RandomUniform", 1, 0, 0, kl_misc_random_uniform},
    {"", "RandomNormal", 1, 0, 0, kl_misc_random_normal},
    {"", "RandomUniformLike", 1, 0, 0, kl_misc_random_uniform_like},
    {"", "RandomNormalLike", 1, 0, 0, kl_misc_random_normal_like},
    {"", "Multinomial", 7, 0, KL_T_FLOATS, kl_misc_multinomial},

    {ML, "ArrayFeatureExtractor", 1, 0, 0, kl_misc_array_feature_extractor},
    {ML, "Binarizer", 1, 0, 0, kl_misc_binarizer},
    {ML, "LabelEncoder", 1, 0, 0, kl_misc_label_encoder},
    {ML, "TreeEnsemble", 5, 0, 0, kl_misc_tree_ensemble},
    {ML, "TreeEnsembleClassifier", 1, 0, 0, kl_misc_tree_ensemble_classifier},
    {ML, "TreeEnsembleRegressor", 1, 0, 0, kl_misc_tree_ensemble_regressor},
    {ML, "Scaler", 1, 0, 0, kl_misc_scaler},
    {ML, "Normalizer", 1, 0, 0, kl_misc_normalizer},
    {ML, "LinearRegressor", 1, 0, 0, kl_misc_linear_regressor},
    {ML, "LinearClassifier", 1, 0, 0, kl_misc_linear_classifier},
    {ML, "Imputer", 1, 0, 0, kl_misc_imputer},
    {ML, "CategoryMapper", 1, 0, 0, kl_misc_category_mapper},
    {ML, "OneHotEncoder", 1, 0, 0, kl_misc_one_hot_encoder},
    {ML, "FeatureVectorizer", 1, 0, 0, kl_misc_feature_vectorizer},
    {ML, "SVMRegressor", 1, 0, 0, kl_misc_svm_regressor},
    {ML, "SVMClassifier", 1, 0, 0, kl_misc_svm_classifier},

    {TRAIN, "Adagrad", 1, 0, 0, kl_misc_adagrad},
    {TRAIN, "Adam", 1, 0, 0, kl_misc_adam},
    {TRAIN, "Momentum", 1, 0, 0, kl_misc_momentum},
    {0},
};
