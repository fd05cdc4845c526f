/*
 * CPU reference kernels: GridSample (opset 16: 4-D, bilinear / nearest /
 * bicubic; opset 20: N-D, linear / nearest / cubic) and AffineGrid.
 * GridSample follows the ONNX reference (PyTorch's grid_sampler):
 * coordinates are denormalized (in float for float grids), rounded for
 * nearest (half to even, on every axis), folded into the image
 * by border / reflection padding, and each tap applies the padding mode
 * again.  Cubic uses Keys' kernel with A = -0.75.
 */
#include <math.h>
#include <string.h>

#include "cpu/ref/nn.h"

typedef enum { GS_NEAREST, GS_LINEAR, GS_CUBIC } gs_mode;
typedef enum { GS_ZEROS, GS_BORDER, GS_REFLECTION } gs_pad;

typedef struct gs_ctx {
    int r;                         /* spatial axes */
    gs_mode mode;
    gs_pad pad;
    bool align;
    int64_t dims[KILN_MAX_RANK];   /* image sizes */
    int64_t str[KILN_MAX_RANK];    /* image strides */
    double lo[KILN_MAX_RANK], hi[KILN_MAX_RANK]; /* borders */
} gs_ctx;

/* Reflect x into [lo, hi] by the nearest border, repeatedly. */
static double gs_reflect(double x, double lo, double hi) {
    double rng = hi - lo;
    if (!(rng > 0.0)) return lo;
    if (x < lo) {
        double dx = lo - x, q = floor(dx / rng), r = dx - q * rng;
        return fmod(q, 2.0) == 0.0 ? lo + r : hi - r;
    }
    if (x > hi) {
        double dx = x - hi, q = floor(dx / rng), r = dx - q * rng;
        return fmod(q, 2.0) == 0.0 ? hi - r : lo + r;
    }
    return x;
}

/* Double to int64 without UB (NaN -> a huge negative, out of any image). */
static int64_t gs_to_i64(double v) {
    if (!(v > -4e18)) return (int64_t)-4e18;
    if (v > 4e18) return (int64_t)4e18;
    return (int64_t)v;
}

/* Index i on axis d after the padding mode; -1 when it reads zero. */
static int64_t gs_index(const gs_ctx *g, int d, int64_t i) {
    if (i >= 0 && i < g->dims[d]) return i;
    if (g->pad == GS_ZEROS) return -1;
    if (g->pad == GS_BORDER) return i < 0 ? 0 : g->dims[d] - 1;
    int64_t j = gs_to_i64(gs_reflect((double)i, g->lo[d], g->hi[d]));
    return j < 0 ? 0 : j >= g->dims[d] ? g->dims[d] - 1 : j;
}

/* Keys cubic convolution weights for fractional offset t in [0, 1). */
static void gs_cubic(double t, double w[4]) {
    const double A = -0.75;
    double x;
    x = t + 1.0;
    w[0] = ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    x = t;
    w[1] = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    x = 1.0 - t;
    w[2] = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    x = 2.0 - t;
    w[3] = ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
}

/* Sample image img (double values) at coordinates x[0..r) (image axes). */
static double gs_sample(const gs_ctx *g, const double *img, const double *x) {
    int r = g->r, taps = g->mode == GS_CUBIC ? 4 : 2;
    int64_t base[KILN_MAX_RANK], idx[KILN_MAX_RANK][4];
    double w[KILN_MAX_RANK][4];
    if (g->mode == GS_NEAREST) {
        int64_t off = 0;
        for (int d = 0; d < r; d++) {
            int64_t i = gs_index(g, d, gs_to_i64(x[d]));
            if (i < 0) return 0.0;
            off += i * g->str[d];
        }
        return img[off];
    }
    for (int d = 0; d < r; d++) {
        double f = floor(x[d]), t = x[d] - f;
        base[d] = gs_to_i64(f) - (taps == 4 ? 1 : 0);
        if (taps == 4) {
            gs_cubic(t, w[d]);
        } else {
            w[d][0] = 1.0 - t;
            w[d][1] = t;
        }
        for (int k = 0; k < taps; k++) idx[d][k] = gs_index(g, d, base[d] + k);
    }
    double sum = 0.0;
    int64_t n = 1;
    for (int d = 0; d < r; d++) n *= taps;
    for (int64_t t = 0; t < n; t++) {
        int64_t q = t, off = 0;
        double wt = 1.0;
        bool zero = false;
        for (int d = r - 1; d >= 0; d--) {
            int k = (int)(q % taps);
            q /= taps;
            if (idx[d][k] < 0) zero = true;
            off += idx[d][k] * g->str[d];
            wt *= w[d][k];
        }
        if (!zero) sum += wt * img[off];
    }
    return sum;
}

kiln_status kl_nn_grid_sample(kl_kctx *c) {
    const kl_rt *x, *grid;
    KL_TRY(kl_nn_input(c, 0, "X", true, &x));
    KL_TRY(kl_nn_input(c, 1, "grid", true, &grid));
    if (!kl_nn_is_float(grid->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "grid must be a float tensor, got %s", kiln_dtype_name(grid->dtype));
    bool v20 = c->node->opset >= 20;
    int r = x->rank - 2;
    if (r < 1 || grid->rank != x->rank || grid->dims[0] != x->dims[0] || grid->dims[grid->rank - 1] != r ||
        (!v20 && r != 2)) {
        char b1[96], b2[96];
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "X %s and grid %s do not fit (grid must be [N, out..., %d]%s)",
                            kl_rt_describe(x, b1, sizeof b1), kl_rt_describe(grid, b2, sizeof b2), r,
                            v20 ? "" : ", X 4-D before opset 20");
    }
    gs_ctx g;
    memset(&g, 0, sizeof g);
    g.r = r;
    const char *mode = kl_node_attr_string(c->node, "mode", v20 ? "linear" : "bilinear");
    const char *pad = kl_node_attr_string(c->node, "padding_mode", "zeros");
    if (strcmp(mode, "nearest") == 0) g.mode = GS_NEAREST;
    else if (strcmp(mode, v20 ? "linear" : "bilinear") == 0) g.mode = GS_LINEAR;
    else if (strcmp(mode, v20 ? "cubic" : "bicubic") == 0) g.mode = GS_CUBIC;
    else return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "mode '%s' is not supported in opset %lld", mode,
                             (long long)c->node->opset);
    if (strcmp(pad, "zeros") == 0) g.pad = GS_ZEROS;
    else if (strcmp(pad, "border") == 0) g.pad = GS_BORDER;
    else if (strcmp(pad, "reflection") == 0) g.pad = GS_REFLECTION;
    else return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "padding_mode '%s' is not supported", pad);
    g.align = kl_node_attr_int(c->node, "align_corners", 0) != 0;
    bool numeric = kl_nn_is_float(x->dtype) || kl_dtype_is_integer(x->dtype) || x->dtype == KILN_DTYPE_BOOL;
    if (!numeric && !(x->dtype == KILN_DTYPE_STRING && g.mode == GS_NEAREST))
        return kl_kctx_fail(c, KILN_ERR_UNSUPPORTED, "GridSample of %s in mode '%s' is not supported",
                            kiln_dtype_name(x->dtype), mode);
    int64_t imsz = 1, P = 1, N = x->dims[0], C = x->dims[1];
    for (int d = r - 1; d >= 0; d--) {
        g.dims[d] = x->dims[2 + d];
        g.str[d] = imsz;
        imsz *= g.dims[d];
        g.lo[d] = g.align ? 0.0 : -0.5;
        g.hi[d] = g.align ? (double)g.dims[d] - 1.0 : (double)g.dims[d] - 0.5;
        P *= grid->dims[1 + d];
    }
    int64_t yd[KILN_MAX_RANK] = {N, C};
    for (int d = 0; d < r; d++) yd[2 + d] = grid->dims[1 + d];
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, yd, &y));
    if (y->count == 0) return KILN_OK;
    if (imsz == 0) return kl_kctx_fail(c, KILN_ERR_SHAPE, "X has an empty spatial axis");
    double *xv = NULL, *gv = NULL, *yv = NULL;
    kiln_status s = KILN_ERR_NO_MEMORY;
    if (kl_nn_as_f64(grid, &gv) || (numeric && (kl_nn_as_f64(x, &xv) || !(yv = kl_nn_alloc(y->count, sizeof *yv)))))
        goto done;
    s = KILN_OK;
    bool fgrid = grid->dtype != KILN_DTYPE_DOUBLE;
    for (int64_t n = 0; n < N && !s; n++)
        for (int64_t p = 0; p < P && !s; p++) {
            const double *gp = gv + (n * P + p) * r;
            double co[KILN_MAX_RANK];
            for (int d = 0; d < r; d++) {
                double v = gp[r - 1 - d], len = (double)g.dims[d];
                double u = g.align ? (v + 1.0) / 2.0 * (len - 1.0) : ((v + 1.0) * len - 1.0) / 2.0;
                if (fgrid) u = (double)(float)u;
                if (g.mode == GS_NEAREST) u = nearbyint(u);
                if (u < g.lo[d] || u > g.hi[d]) {
                    if (g.pad == GS_BORDER) u = u < 0.0 ? 0.0 : u > len - 1.0 ? len - 1.0 : u;
                    else if (g.pad == GS_REFLECTION) u = gs_reflect(u, g.lo[d], g.hi[d]);
                }
                co[d] = u;
            }
            for (int64_t ch = 0; ch < C; ch++) {
                int64_t o = (n * C + ch) * P + p;
                if (numeric) {
                    yv[o] = gs_sample(&g, xv + (n * C + ch) * imsz, co);
                    continue;
                }
                int64_t off = 0;
                for (int d = 0; d < r && off >= 0; d++) {
                    int64_t i = gs_index(&g, d, gs_to_i64(co[d]));
                    off = i < 0 ? -1 : off + i * g.str[d];
                }
                if (off >= 0) {
                    const kl_str *src = (const kl_str *)x->data + (n * C + ch) * imsz + off;
                    s = kl_rt_set_string(y, o, src->ptr, src->len);
                }
            }
        }
    if (!s && numeric) kl_nn_store_f64(y, yv);
done:
    kl_nn_free(xv);
    kl_nn_free(gv);
    kl_nn_free(yv);
    return s;
}

/* ---- AffineGrid ------------------------------------------------------------------------ */

kiln_status kl_nn_affine_grid(kl_kctx *c) {
    const kl_rt *th, *sz;
    KL_TRY(kl_nn_input(c, 0, "theta", true, &th));
    KL_TRY(kl_nn_input(c, 1, "size", true, &sz));
    int64_t size[5], n;
    KL_TRY(kl_ref_input_ints(c, 1, size, 5, &n));
    if (n != 4 && n != 5) return kl_kctx_fail(c, KILN_ERR_SHAPE, "size has %lld values, expected 4 or 5", (long long)n);
    int r = (int)n - 2;
    if (th->rank != 3 || th->dims[0] != size[0] || th->dims[1] != r || th->dims[2] != r + 1) {
        char b[96];
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "theta %s does not fit size (expected [%lld,%d,%d])",
                            kl_rt_describe(th, b, sizeof b), (long long)size[0], r, r + 1);
    }
    bool align = kl_node_attr_int(c->node, "align_corners", 0) != 0;
    int64_t yd[5], P = 1;
    yd[0] = size[0];
    for (int i = 0; i < r; i++) {
        if (size[2 + i] < 0) return kl_kctx_fail(c, KILN_ERR_SHAPE, "size has a negative value");
        yd[1 + i] = size[2 + i];
        P *= size[2 + i];
    }
    yd[r + 1] = r;
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, th->dtype, r + 2, yd, &y));
    if (y->count == 0) return KILN_OK;
    double *tv, *yv = kl_nn_alloc(y->count, sizeof *yv);
    if (!yv) return KILN_ERR_NO_MEMORY;
    if (kl_nn_as_f64(th, &tv)) {
        kl_nn_free(yv);
        return KILN_ERR_NO_MEMORY;
    }
    for (int64_t b = 0; b < size[0]; b++)
        for (int64_t p = 0; p < P; p++) {
            double base[4];
            int64_t q = p;
            /* base = (x along the last axis, y, z..., 1) */
            for (int i = r - 1; i >= 0; i--) {
                int64_t len = size[2 + i], idx = q % len;
                q /= len;
                double v = align ? (len > 1 ? -1.0 + 2.0 * (double)idx / (double)(len - 1) : -1.0)
                                 : -1.0 + (2.0 * (double)idx + 1.0) / (double)len;
                base[r - 1 - i] = v;
            }
            base[r] = 1.0;
            const double *t = tv + b * r * (r + 1);
            for (int j = 0; j < r; j++) {
                double acc = 0.0;
                for (int k = 0; k <= r; k++) acc += t[j * (r + 1) + k] * base[k];
                yv[(b * P + p) * r + j] = acc;
            }
        }
    kl_nn_store_f64(y, yv);
    kl_nn_free(tv);
    kl_nn_free(yv);
    return KILN_OK;
}
