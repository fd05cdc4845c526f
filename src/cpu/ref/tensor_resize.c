/*
 * CPU reference kernels, tensor family: Resize (opsets 10-19+) and Upsample
 * (opsets 1-9).
 *
 * Resize is separable: each resized axis gets, for every output coordinate,
 * a list of (input index, weight) taps computed from the coordinate
 * transformation (Resize-19 coordinate_transformation_mode) and the
 * interpolation mode; linear/cubic then run one axis at a time over double
 * buffers, nearest gathers whole elements (any dtype, bit-exact).  Taps
 * follow the ONNX definition: the sampling point x_original has a "left"
 * pixel (x_original - 1 when it is an integer, so ratio lies in (0, 1]),
 * neighbours outside the input read the edge pixel, exclude_outside zeroes
 * and renormalizes their weights, and antialias (opset 18) widens the
 * linear/cubic kernel by 1/scale when downscaling.  With scales given, the
 * output size is floor(input * scale); "length_resized" in the align_corners
 * and tf_crop_and_resize formulas is scale * input (as in the ONNX reference
 * implementation, which produced the conformance data).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cpu/ref/tensor.h"

enum { RZ_NEAREST, RZ_LINEAR, RZ_CUBIC };
enum { CT_HALF_PIXEL, CT_HALF_PIXEL_SYM, CT_PYTORCH, CT_ALIGN, CT_ASYM, CT_TF_NN, CT_TF_CROP };
enum { NM_ROUND_FLOOR, NM_ROUND_CEIL, NM_FLOOR, NM_CEIL, NM_SIMPLE };

typedef struct kl_rz {
    int mode, ctm, nearest;
    double cubic_a, extrapolation;
    bool exclude_outside, antialias;
} kl_rz;

/* Taps of one axis: for output coordinate o, n taps idx[o*n+t] / w[o*n+t]
 * (indices already clamped into the input), ext[o] = extrapolate. */
typedef struct kl_rz_axis {
    int64_t L, O;
    int n;
    int64_t *idx;
    double *w;
    bool *ext;
} kl_rz_axis;

/* x_original of output coordinate x (see the file comment). */
static double kl_rz_coord(const kl_rz *p, double x, int64_t L, int64_t O, double s, double owidth, double r0,
                          double r1) {
    switch (p->ctm) {
    case CT_HALF_PIXEL: return (x + 0.5) / s - 0.5;
    case CT_HALF_PIXEL_SYM: {
        double adj = (double)O / owidth, center = (double)L / 2;
        return center * (1 - adj) + (x + 0.5) / s - 0.5;
    }
    case CT_PYTORCH: return owidth > 1 ? (x + 0.5) / s - 0.5 : 0.0;
    case CT_ALIGN: return owidth == 1 ? 0.0 : x * (double)(L - 1) / (owidth - 1);
    case CT_ASYM: return x / s;
    case CT_TF_NN: return (x + 0.5) / s;
    default:
        if (owidth == 1) return (r1 - r0) * (double)(L - 1) / 2 + r0 * (double)(L - 1);
        return x * (r1 - r0) * (double)(L - 1) / (owidth - 1) + r0 * (double)(L - 1);
    }
}

/* Keys cubic kernel with coefficient A at distance x. */
static double kl_rz_cubic_k(double x, double A) {
    x = fabs(x);
    if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
    if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    return 0.0;
}

/* Build the taps of one axis. */
static kiln_status kl_rz_axis_init(kl_kctx *c, const kl_rz *p, kl_rz_axis *a, int64_t L, int64_t O, double s,
                                   double owidth, double r0, double r1) {
    a->L = L;
    a->O = O;
    double sa = s < 1 ? s : 1; /* antialias kernel scale */
    int64_t first = 0;         /* offset of tap 0 from the left pixel */
    if (p->mode == RZ_NEAREST) {
        a->n = 1;
    } else if (!p->antialias) {
        a->n = p->mode == RZ_LINEAR ? 2 : 4;
        first = p->mode == RZ_LINEAR ? 0 : -1;
    } else {
        double f = floor((p->mode == RZ_LINEAR ? -1.0 : -2.0) / sa) + 1;
        if (!(f > -1e6)) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "scale %g is too small for antialiasing", s);
        first = (int64_t)f;
        a->n = (int)(2 - 2 * first);
    }
    size_t cnt = (size_t)(O ? O : 1) * (size_t)a->n;
    a->idx = kl_calloc(cnt, sizeof *a->idx);
    a->w = kl_calloc(cnt, sizeof *a->w);
    a->ext = kl_calloc((size_t)(O ? O : 1), sizeof *a->ext);
    if (!a->idx || !a->w || !a->ext) return KILN_ERR_NO_MEMORY;
    for (int64_t o = 0; o < O; o++) {
        double xo = kl_rz_coord(p, (double)o, L, O, s, owidth, r0, r1);
        int64_t *ix = a->idx + o * a->n;
        double *w = a->w + o * a->n;
        if (p->ctm == CT_TF_CROP && (xo < 0 || xo > (double)(L - 1))) {
            a->ext[o] = true;
            continue;
        }
        if (!isfinite(xo) || fabs(xo) > 4e18)
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "resize coordinate %g is out of range", xo);
        double fl = floor(xo);
        int64_t base = xo == fl ? (int64_t)fl - 1 : (int64_t)fl;
        double ratio = xo - (double)base; /* in (0, 1] */
        if (p->mode == RZ_NEAREST) {
            int64_t k;
            if (p->nearest == NM_SIMPLE) {
                k = s < 1 ? (int64_t)ceil(xo) : (int64_t)fl;
            } else if (ratio == 1) {
                k = base + 1;
            } else {
                bool up = p->nearest == NM_ROUND_FLOOR ? ratio > 0.5 : p->nearest == NM_ROUND_CEIL ? ratio >= 0.5
                          : p->nearest == NM_CEIL;
                k = base + up;
            }
            ix[0] = k < 0 ? 0 : k >= L ? L - 1 : k;
            w[0] = 1;
            continue;
        }
        double sum = 0;
        for (int t = 0; t < a->n; t++) {
            int64_t off = first + t;
            double d = (double)off - ratio;
            if (!p->antialias)
                w[t] = p->mode == RZ_LINEAR ? 1 - fabs(d) : kl_rz_cubic_k(d, p->cubic_a);
            else if (p->mode == RZ_LINEAR)
                w[t] = KL_MAX(0.0, 1 - fabs(d * sa));
            else
                w[t] = kl_rz_cubic_k(d * sa, p->cubic_a);
            int64_t k = base + off;
            if (p->exclude_outside && (k < 0 || k >= L)) w[t] = 0;
            ix[t] = k < 0 ? 0 : k >= L ? L - 1 : k;
            sum += w[t];
        }
        if ((p->antialias || p->exclude_outside) && sum != 0)
            for (int t = 0; t < a->n; t++) w[t] /= sum;
    }
    return KILN_OK;
}

/* Release the taps of one axis (zeroed axes are fine). */
static void kl_rz_axis_free(kl_rz_axis *a) {
    kl_free(a->idx);
    kl_free(a->w);
    kl_free(a->ext);
}

/* Nearest resize without extrapolation (whole elements of es bytes), one
 * output row (last axis) at a time: the row's source offset from the outer
 * axes' taps, its elements through the last axis's taps (a plain copy when
 * that axis is not resized), and a copy of the previous output row when
 * the source row repeats (upsampling along the next-to-last axis).  The
 * same element choice as the per-element loop, at memory speed. */
static kiln_status kl_rz_nearest_rows(const kl_rt *x, kl_rt *y, const bool *active, const kl_rz_axis *ax,
                                      const int64_t *st, size_t es) {
    int r = x->rank;
    int64_t inner = y->dims[r - 1], rows = y->count / inner, idx[KILN_MAX_RANK] = {0}, prev = -1;
    const int64_t *tap = active[r - 1] ? ax[r - 1].idx : NULL;
    const uint8_t *xs = x->data;
    uint8_t *yd = y->data, *prow = NULL;
    size_t rb = (size_t)inner * es;
    for (int64_t row = 0; row < rows; row++) {
        int64_t off = 0;
        for (int i = 0; i + 1 < r; i++) off += (active[i] ? ax[i].idx[idx[i]] : idx[i]) * st[i];
        uint8_t *d = yd + (size_t)row * rb;
        const uint8_t *sr = xs + (size_t)off * es;
        if (off == prev) {
            memcpy(d, prow, rb);
        } else if (!tap) {
            memcpy(d, sr, rb);
        } else if (es == 4 && ((uintptr_t)d | (uintptr_t)sr) % 4 == 0) {
            uint32_t *d4 = (uint32_t *)(void *)d;
            const uint32_t *s4 = (const uint32_t *)(const void *)sr;
            for (int64_t o = 0; o < inner; o++) d4[o] = s4[tap[o]];
        } else {
            for (int64_t o = 0; o < inner; o++) memcpy(d + (size_t)o * es, sr + (size_t)tap[o] * es, es);
        }
        prev = off;
        prow = d;
        for (int i = r - 2; i >= 0; i--) {
            if (++idx[i] < y->dims[i]) break;
            idx[i] = 0;
        }
    }
    return KILN_OK;
}

/* Resize x into output 0 of dims odims; scale[i] and owidth[i] per axis,
 * roi[0..2r) (starts then ends) or NULL. */
/* The float32 form of the separable interpolation (vec.resize): the same
 * taps and weights, float sums, the two innermost axes only (leading axes
 * unchanged), nothing extrapolated.  Returns false when it does not apply. */
static bool kl_rz_float2d(kl_kctx *c, const kl_rt *x, kl_rt *y, const bool *active, const kl_rz_axis *ax,
                          kiln_status *st) {
    int r = x->rank;
    if (x->dtype != KILN_DTYPE_FLOAT || r < 2) return false;
    for (int i = 0; i < r - 2; i++)
        if (active[i]) return false;
    for (int i = r - 2; i < r; i++)
        if (active[i])
            for (int64_t o = 0; o < ax[i].O; o++)
                if (ax[i].ext[o]) return false;
    const int64_t H = x->dims[r - 2], W = x->dims[r - 1], OH = y->dims[r - 2], OW = y->dims[r - 1];
    const int64_t planes = (H * W) != 0 ? x->count / (H * W) : 0;
    const kl_rz_axis *AH = active[r - 2] ? &ax[r - 2] : NULL, *AW = active[r - 1] ? &ax[r - 1] : NULL;
    float *wh = NULL, *ww = NULL, *tmp = NULL;
    size_t nwh = AH ? (size_t)(OH * AH->n) : 0, nww = AW ? (size_t)(OW * AW->n) : 0;
    char *scratch = kl_kctx_scratch(c, (nwh + nww + (size_t)W) * sizeof(float) + 256);
    if (!scratch) {
        *st = KILN_ERR_NO_MEMORY;
        return true;
    }
    wh = (float *)scratch;
    ww = wh + nwh;
    tmp = ww + nww;
    for (size_t i = 0; i < nwh; i++) wh[i] = (float)AH->w[i];
    for (size_t i = 0; i < nww; i++) ww[i] = (float)AW->w[i];
    const float *xf = x->data;
    float *yf = y->data;
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = xf + pl * H * W;
        float *yp = yf + pl * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++) {
            const float *row = xp + oh * W;
            if (AH) {
                for (int64_t i = 0; i < W; i++) tmp[i] = 0.0f;
                for (int t = 0; t < AH->n; t++) {
                    const float w = wh[oh * AH->n + t];
                    if (w == 0.0f) continue;
                    const float *src = xp + AH->idx[oh * AH->n + t] * W;
                    for (int64_t i = 0; i < W; i++) tmp[i] += w * src[i];
                }
                row = tmp;
            }
            float *dst = yp + oh * OW;
            if (!AW) {
                memcpy(dst, row, (size_t)W * sizeof *dst);
                continue;
            }
            for (int64_t o = 0; o < OW; o++) {
                const float *w = ww + o * AW->n;
                const int64_t *ix = AW->idx + o * AW->n;
                float acc = 0.0f;
                for (int t = 0; t < AW->n; t++)
                    if (w[t] != 0.0f) acc += w[t] * row[ix[t]];
                dst[o] = acc;
            }
        }
    }
    return true;
}

static kiln_status kl_rz_run(kl_kctx *c, const kl_rt *x, const kl_rz *p, const int64_t *odims, const double *scale,
                             const double *owidth, const double *roi, bool fast) {
    int r = x->rank;
    kl_rt *y = NULL;
    if (p->mode != RZ_NEAREST && !kl_dtype_is_float(x->dtype) && !kl_dtype_is_integer(x->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "%s interpolation does not apply to %s",
                            p->mode == RZ_LINEAR ? "linear" : "cubic", kiln_dtype_name(x->dtype));
    KL_TRY(kl_kctx_output(c, 0, x->dtype, r, odims, &y));
    if (y->count == 0) return KILN_OK;
    if (x->count == 0) return kl_kctx_fail(c, KILN_ERR_SHAPE, "cannot resize an empty input to a non-empty output");
    kl_rz_axis ax[KILN_MAX_RANK];
    bool active[KILN_MAX_RANK];
    memset(ax, 0, sizeof ax);
    kiln_status s = KILN_OK;
    for (int i = 0; !s && i < r; i++) {
        active[i] = !(odims[i] == x->dims[i] && scale[i] == 1 && p->ctm != CT_TF_CROP);
        if (active[i])
            s = kl_rz_axis_init(c, p, &ax[i], x->dims[i], odims[i], scale[i], owidth[i], roi ? roi[i] : 0,
                                roi ? roi[r + i] : 1);
    }
    double *buf = NULL, *nb = NULL;
    if (s) goto done;
    if (p->mode == RZ_NEAREST) {
        int64_t idx[KILN_MAX_RANK] = {0}, st[KILN_MAX_RANK];
        kl_tz_strides(r, x->dims, st);
        size_t es = kl_tz_esize(x->dtype);
        if (r > 0 && es && p->ctm != CT_TF_CROP) {
            s = kl_rz_nearest_rows(x, y, active, ax, st, es);
            goto done;
        }
        for (int64_t o = 0; !s && o < y->count; o++) {
            int64_t off = 0;
            bool ext = false;
            for (int i = 0; i < r; i++) {
                if (!active[i]) {
                    off += idx[i] * st[i];
                } else {
                    ext |= ax[i].ext[idx[i]];
                    off += ax[i].idx[idx[i]] * st[i];
                }
            }
            if (ext) kl_rt_set_f64(y, o, p->extrapolation);
            else s = kl_tz_move1(y, o, x, off, es);
            for (int i = r - 1; i >= 0; i--) {
                if (++idx[i] < odims[i]) break;
                idx[i] = 0;
            }
        }
        goto done;
    }
    if (fast && kl_rz_float2d(c, x, y, active, ax, &s)) goto done;
    /* linear / cubic: one axis at a time over double buffers */
    int64_t cur[KILN_MAX_RANK], n = x->count;
    memcpy(cur, x->dims, sizeof cur);
    buf = kl_calloc((size_t)n, sizeof *buf);
    if (!buf) {
        s = KILN_ERR_NO_MEMORY;
        goto done;
    }
    if (x->dtype == KILN_DTYPE_FLOAT) {
        const float *xf = x->data;
        for (int64_t i = 0; i < n; i++) buf[i] = xf[i];
    } else {
        for (int64_t i = 0; i < n; i++) buf[i] = kl_rt_get_f64(x, i);
    }
    for (int a = 0; a < r; a++) {
        if (!active[a]) continue;
        int64_t outer = 1, inner = 1, L = cur[a], O = odims[a];
        for (int i = 0; i < a; i++) outer = kl_tz_mulw(outer, cur[i]);
        for (int i = a + 1; i < r; i++) inner = kl_tz_mulw(inner, cur[i]);
        int64_t m = outer * O * inner;
        nb = kl_calloc((size_t)(m ? m : 1), sizeof *nb);
        if (!nb) {
            s = KILN_ERR_NO_MEMORY;
            goto done;
        }
        const kl_rz_axis *A = &ax[a];
        if (inner == 1) {
            /* the innermost axis: one output element per tap list (same sums, in the same order) */
            for (int64_t q = 0; q < outer; q++) {
                const double *src = buf + q * L;
                double *dst = nb + q * O;
                for (int64_t o = 0; o < O; o++) {
                    if (A->ext[o]) continue;
                    const double *w = A->w + o * A->n;
                    const int64_t *ix = A->idx + o * A->n;
                    double acc = 0;
                    for (int t = 0; t < A->n; t++)
                        if (w[t] != 0) acc += w[t] * src[ix[t]];
                    dst[o] = acc;
                }
            }
            kl_free(buf);
            buf = nb;
            nb = NULL;
            cur[a] = O;
            continue;
        }
        for (int64_t q = 0; q < outer; q++)
            for (int64_t o = 0; o < O; o++) {
                double *dst = nb + (q * O + o) * inner;
                if (A->ext[o]) continue;
                for (int t = 0; t < A->n; t++) {
                    double w = A->w[o * A->n + t];
                    if (w == 0) continue;
                    const double *src = buf + (q * L + A->idx[o * A->n + t]) * inner;
                    for (int64_t i = 0; i < inner; i++) dst[i] += w * src[i];
                }
            }
        kl_free(buf);
        buf = nb;
        nb = NULL;
        cur[a] = O;
    }
    bool any_ext = false;
    for (int i = 0; i < r; i++)
        if (active[i])
            for (int64_t o = 0; o < odims[i] && !any_ext; o++) any_ext = ax[i].ext[o];
    if (!any_ext && y->dtype == KILN_DTYPE_FLOAT) {
        float *yf = y->data;
        for (int64_t o = 0; o < y->count; o++) yf[o] = (float)buf[o];
        goto done;
    }
    int64_t idx[KILN_MAX_RANK] = {0};
    for (int64_t o = 0; o < y->count; o++) {
        bool ext = false;
        for (int i = 0; i < r; i++) ext |= active[i] && ax[i].ext[idx[i]];
        double v = ext ? p->extrapolation : buf[o];
        if (y->dtype == KILN_DTYPE_FLOAT) ((float *)y->data)[o] = (float)v;
        else kl_rt_set_f64(y, o, v);
        for (int i = r - 1; i >= 0; i--) {
            if (++idx[i] < odims[i]) break;
            idx[i] = 0;
        }
    }
done:
    kl_free(buf);
    kl_free(nb);
    for (int i = 0; i < r; i++) kl_rz_axis_free(&ax[i]);
    return s;
}

/* Index of `s` in the NULL-terminated list, or -1. */
static int kl_rz_pick(const char *s, const char *const *list) {
    for (int i = 0; list[i]; i++)
        if (!strcmp(s, list[i])) return i;
    return -1;
}

/* Float input i (scales / roi) into v (at most max); *n = -1 if absent or
 * empty. */
static kiln_status kl_rz_floats(kl_kctx *c, size_t i, double *v, int64_t max, const char *what, int64_t *n) {
    *n = -1;
    if (i >= c->n_in || !c->in[i] || c->in[i]->kind != KL_RT_TENSOR || c->in[i]->count == 0) return KILN_OK;
    const kl_rt *t = c->in[i];
    if (!kl_dtype_is_float(t->dtype)) return kl_kctx_fail(c, KILN_ERR_TYPE, "%s must be a float tensor", what);
    if (t->count > max)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "%s has %lld entries, at most %lld expected", what, (long long)t->count,
                            (long long)max);
    for (int64_t k = 0; k < t->count; k++) v[k] = kl_rt_get_f64(t, k);
    *n = t->count;
    return KILN_OK;
}

/* Output dims from per-axis scales (floor(in * scale)). */
static kiln_status kl_rz_from_scales(kl_kctx *c, const kl_rt *x, const double *sc, int64_t *odims, double *owidth) {
    for (int i = 0; i < x->rank; i++) {
        double w = sc[i] * (double)x->dims[i];
        if (!(sc[i] > 0) || !(w < 9e18))
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "scale %g of axis %d is invalid", sc[i], i);
        odims[i] = (int64_t)floor(w);
        owidth[i] = w;
    }
    return KILN_OK;
}

/* Resize: opset 10 (X, scales), 11+ (X, roi, scales, sizes), 18 (axes,
 * antialias, keep_aspect_ratio_policy), 19 (half_pixel_symmetric). */
static kiln_status kl_tz_resize_impl(kl_kctx *c, bool fast) {
    static const char *const modes[] = {"nearest", "linear", "cubic", NULL};
    static const char *const ctms[] = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                                       "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize", NULL};
    static const char *const nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil", NULL};
    static const char *const kars[] = {"stretch", "not_larger", "not_smaller", NULL};
    kl_rt *x = NULL;
    KL_TRY(kl_tz_need(c, 0, "X", &x));
    const kl_node *nd = c->node;
    int64_t op = nd->opset;
    int r = x->rank;
    kl_rz p = {0};
    const char *ms = kl_node_attr_string(nd, "mode", "nearest");
    const char *cs = kl_node_attr_string(nd, "coordinate_transformation_mode", "half_pixel");
    const char *ns = kl_node_attr_string(nd, "nearest_mode", "round_prefer_floor");
    const char *ks = kl_node_attr_string(nd, "keep_aspect_ratio_policy", "stretch");
    p.mode = kl_rz_pick(ms, modes);
    p.ctm = op >= 11 ? kl_rz_pick(cs, ctms) : CT_ASYM;
    p.nearest = op >= 11 ? kl_rz_pick(ns, nms) : NM_SIMPLE;
    int kar = op >= 18 ? kl_rz_pick(ks, kars) : 0;
    if (p.mode < 0 || (op < 11 && p.mode == RZ_CUBIC))
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "mode '%s' is not supported", ms);
    if (p.ctm < 0 || (p.ctm == CT_HALF_PIXEL_SYM && op < 19) || (p.ctm == CT_TF_NN && op >= 13))
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "coordinate_transformation_mode '%s' is not supported", cs);
    if (p.nearest < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "nearest_mode '%s' is not supported", ns);
    if (kar < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "keep_aspect_ratio_policy '%s' is not supported", ks);
    p.cubic_a = kl_node_attr_float(nd, "cubic_coeff_a", -0.75f);
    p.extrapolation = kl_node_attr_float(nd, "extrapolation_value", 0.0f);
    p.exclude_outside = kl_node_attr_int(nd, "exclude_outside", 0) != 0;
    p.antialias = op >= 18 && kl_node_attr_int(nd, "antialias", 0) != 0 && p.mode != RZ_NEAREST;

    int64_t axes[KILN_MAX_RANK], na = r;
    const int64_t *av;
    int64_t nav = op >= 18 ? kl_node_attr_ints(nd, "axes", &av) : -1;
    if (nav > r) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "axes has %lld entries for rank %d", (long long)nav, r);
    if (nav >= 0) {
        na = nav;
        for (int64_t i = 0; i < na; i++) {
            int a;
            KL_TRY(kl_ref_axis(av[i], r, false, "axes entry", &a));
            axes[i] = a;
        }
    } else {
        for (int i = 0; i < r; i++) axes[i] = i;
    }
    double roi_in[2 * KILN_MAX_RANK], sc_in[KILN_MAX_RANK], roi[2 * KILN_MAX_RANK], sc[KILN_MAX_RANK],
        owidth[KILN_MAX_RANK];
    int64_t nroi = -1, nsc = -1, nsz = -1, sz_in[KILN_MAX_RANK], odims[KILN_MAX_RANK];
    if (op < 11) {
        KL_TRY(kl_rz_floats(c, 1, sc_in, KILN_MAX_RANK, "scales", &nsc));
    } else {
        KL_TRY(kl_rz_floats(c, 1, roi_in, 2 * KILN_MAX_RANK, "roi", &nroi));
        KL_TRY(kl_rz_floats(c, 2, sc_in, KILN_MAX_RANK, "scales", &nsc));
        if (c->n_in > 3 && c->in[3] && c->in[3]->count > 0) {
            kiln_status s = kl_ref_input_ints(c, 3, sz_in, KILN_MAX_RANK, &nsz);
            if (s) return kl_error_context(s, "sizes: ");
        }
    }
    if ((nsc >= 0) == (nsz >= 0))
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "exactly one of scales and sizes must be given");
    if ((nsc >= 0 && nsc != na) || (nsz >= 0 && nsz != na))
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "%s has %lld entries, expected %lld", nsc >= 0 ? "scales" : "sizes",
                            (long long)(nsc >= 0 ? nsc : nsz), (long long)na);
    for (int i = 0; i < r; i++) {
        sc[i] = 1;
        roi[i] = 0;
        roi[r + i] = 1;
    }
    if (p.ctm == CT_TF_CROP) {
        if (nroi != 2 * na)
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "tf_crop_and_resize needs roi of %lld entries",
                                (long long)(2 * na));
        for (int64_t i = 0; i < na; i++) {
            roi[axes[i]] = roi_in[i];
            roi[r + axes[i]] = roi_in[na + i];
        }
    }
    memcpy(odims, x->dims, sizeof odims);
    if (nsc >= 0) {
        for (int64_t i = 0; i < na; i++) sc[axes[i]] = sc_in[i];
        KL_TRY(kl_rz_from_scales(c, x, sc, odims, owidth));
    } else {
        for (int i = 0; i < r; i++) owidth[i] = (double)x->dims[i];
        for (int64_t i = 0; i < na; i++) {
            int a = (int)axes[i];
            if (sz_in[i] < 0) return kl_kctx_fail(c, KILN_ERR_SHAPE, "sizes[%lld] is negative", (long long)i);
            if (x->dims[a] == 0 && sz_in[i] > 0)
                return kl_kctx_fail(c, KILN_ERR_SHAPE, "cannot resize the empty axis %d", a);
            odims[a] = sz_in[i];
            sc[a] = x->dims[a] ? (double)sz_in[i] / (double)x->dims[a] : 1;
            owidth[a] = (double)sz_in[i];
        }
        if (kar && na > 0) {
            double s = sc[axes[0]];
            for (int64_t i = 1; i < na; i++) s = kar == 1 ? KL_MIN(s, sc[axes[i]]) : KL_MAX(s, sc[axes[i]]);
            for (int64_t i = 0; i < na; i++) {
                int a = (int)axes[i];
                sc[a] = s;
                owidth[a] = s * (double)x->dims[a];
                odims[a] = (int64_t)(owidth[a] + 0.5);
            }
        }
    }
    return kl_rz_run(c, x, &p, odims, sc, owidth, p.ctm == CT_TF_CROP ? roi : NULL, fast);
}

/* Upsample: nearest (floor of x/scale) or (bi)linear with asymmetric
 * coordinates; scales from attributes (opset 1: height/width_scale; 7:
 * scales) or input 1 (opset 9). */
kiln_status kl_tz_upsample(kl_kctx *c) {
    kl_rt *x = NULL;
    KL_TRY(kl_tz_need(c, 0, "X", &x));
    const kl_node *nd = c->node;
    int r = x->rank;
    double sc[KILN_MAX_RANK], owidth[KILN_MAX_RANK];
    int64_t n = -1, odims[KILN_MAX_RANK];
    if (nd->opset >= 9) {
        KL_TRY(kl_rz_floats(c, 1, sc, KILN_MAX_RANK, "scales", &n));
    } else if (nd->opset >= 7) {
        const kl_attr *a = kl_node_attr(nd, "scales");
        if (a && a->n <= KILN_MAX_RANK) {
            n = (int64_t)a->n;
            for (size_t i = 0; i < a->n; i++) sc[i] = a->floats[i];
        }
    } else if (r == 4) {
        sc[0] = sc[1] = 1;
        sc[2] = kl_node_attr_float(nd, "height_scale", 0);
        sc[3] = kl_node_attr_float(nd, "width_scale", 0);
        n = 4;
    }
    if (n != r) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "scales must have %d entries", r);
    const char *ms = kl_node_attr_string(nd, "mode", "nearest");
    kl_rz p = {0};
    p.ctm = CT_ASYM;
    p.nearest = NM_SIMPLE;
    if (!strcmp(ms, "nearest")) p.mode = RZ_NEAREST;
    else if (!strcmp(ms, "linear") || !strcmp(ms, "bilinear")) p.mode = RZ_LINEAR;
    else return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "mode '%s' is not supported", ms);
    KL_TRY(kl_rz_from_scales(c, x, sc, odims, owidth));
    return kl_rz_run(c, x, &p, odims, sc, owidth, NULL, false);
}

kiln_status kl_tz_resize(kl_kctx *c) { return kl_tz_resize_impl(c, false); }

kiln_status kl_tz_resize_float(kl_kctx *c) { return kl_tz_resize_impl(c, true); }
