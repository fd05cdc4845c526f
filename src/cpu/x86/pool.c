/*
 * pool.c — 2-D max / average pooling on float32 NCHW planes (pool.h).
 * Per output row: the window rows that fall inside the input are folded
 * into a row accumulator, the interior columns (window wholly inside) with
 * constant-stride loops the compiler vectorizes, the edge columns with
 * bounds.  Portable C: the loops are simple enough for the baseline ISA's
 * vectors.
 */
#include "cpu/x86/pool.h"
#include "core/core.h"
#include "cpu/x86/vecops.h"

#include <math.h>

static inline int64_t p_min(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t p_max(int64_t a, int64_t b) { return a > b ? a : b; }

/* Max pooling's row buffer: every window's (ow-1)*sw + kw columns, and the input row. */
static size_t pool_row_floats(const kl_pool2d_geom *g) {
    return (size_t)KL_MAX((g->ow - 1) * g->sw + g->kw, g->pl + g->w);
}

/* Floats between two threads' row buffers: whole KiBs, so the threads
 * never write the same line nor one the other's prefetchers bring in
 * (SPPF's 24-float rows shared lines: YOLOv8n's MaxPool 5x5 on 128ch 20x20
 * took 0.52 ms on 2 threads against 0.135 on 1; 128-byte blocks side by
 * side still 0.19 ms; a KiB apart 0.064). */
static size_t pool_row_stride(const kl_pool2d_geom *g) { return (pool_row_floats(g) + 255) / 256 * 256; }

size_t kl_pool2d_workspace_floats(const kl_pool2d_geom *g, int threads) {
    /* + 32: the caller's buffer need not start on a line */
    return pool_row_stride(g) * (size_t)(threads > 1 ? threads : 1) + 32;
}

typedef struct pool_task {
    const float *x;
    float *y;
    const kl_pool2d_geom *g;
    bool is_max, count_pad;
    int64_t ox_lo, ox_hi; /* interior output columns [ox_lo, ox_hi) */
    const kl_vec_kernels *k;
    size_t tw;            /* max: floats of the row buffer */
    float *ws;            /* max: a row buffer per thread (kl_pool2d_workspace_floats), or NULL */
} pool_task;

/* Max pooling, an output row at a time: the window's rows that lie in the
 * input are folded into a row buffer t (t[j] is input column j - pl;
 * -inf in the pads, so an empty window gives -inf as the reference does),
 * then each output is the max of kw buffer columns at stride sw.  Returns
 * false (nothing written) when the buffer cannot be allocated. */
static bool max_planes(const pool_task *t, size_t begin, size_t end, int tid) {
    const kl_pool2d_geom *g = t->g;
    int64_t H = g->h, W = g->w, OH = g->oh, OW = g->ow;
    float *own = t->ws ? NULL : kl_malloc(t->tw * sizeof(float));
    float *buf = own;
    if (t->ws) { /* thread tid's lines of the workspace */
        uintptr_t base = ((uintptr_t)t->ws + 127) & ~(uintptr_t)127;
        buf = (float *)base + (size_t)tid * pool_row_stride(g);
    }
    if (!buf) return false;
    size_t pl = (size_t)g->pl, w = (size_t)W, tw = t->tw;
    size_t wi = pl < tw ? KL_MIN(w, tw - pl) : 0; /* input columns the buffer holds */
    /* the pad columns stay -inf; the input's are rewritten per output row,
     * the window's rows folded in one pass (max_rows) */
    for (size_t j = 0; j < tw; j++) buf[j] = -INFINITY;
    const float *rows[16];
    for (size_t pi = begin; pi < end; pi++) {
        const float *x = t->x + (int64_t)pi * H * W;
        float *y = t->y + (int64_t)pi * OH * OW;
        for (int64_t oy = 0; oy < OH; oy++) {
            int64_t hs = oy * g->sh - g->pt;
            int64_t r0 = p_max(hs, 0), r1 = p_min(hs + g->kh, H);
            if (r1 <= r0) { /* a window wholly in the pads */
                for (size_t j = 0; j < wi; j++) buf[pl + j] = -INFINITY;
            } else if (r1 - r0 <= 16) {
                for (int64_t r = r0; r < r1; r++) rows[r - r0] = x + r * W;
                t->k->max_rows(buf + pl, rows, (size_t)(r1 - r0), wi);
            } else {
                for (size_t j = 0; j < wi; j++) buf[pl + j] = -INFINITY;
                for (int64_t r = r0; r < r1; r++) t->k->max_into(buf + pl, x + r * W, wi);
            }
            t->k->max_cols(buf, (size_t)g->sw, (size_t)g->kw, (size_t)OW, y + oy * OW);
        }
    }
    kl_free(own);
    return true;
}


/* acc[ox] (op)= window row r's columns for output columns [a, b), all inside. */
static void row_max_interior(float *acc, const float *xr, int64_t a, int64_t b, int64_t sw, int64_t kw, int64_t pl) {
    for (int64_t k = 0; k < kw; k++) {
        const float *p = xr + k - pl;
        if (sw == 1) {
            for (int64_t ox = a; ox < b; ox++) {
                float v = p[ox];
                acc[ox] = v > acc[ox] ? v : acc[ox];
            }
        } else if (sw == 2) {
            for (int64_t ox = a; ox < b; ox++) {
                float v = p[2 * ox];
                acc[ox] = v > acc[ox] ? v : acc[ox];
            }
        } else {
            for (int64_t ox = a; ox < b; ox++) {
                float v = p[sw * ox];
                acc[ox] = v > acc[ox] ? v : acc[ox];
            }
        }
    }
}

static void row_sum_interior(float *acc, const float *xr, int64_t a, int64_t b, int64_t sw, int64_t kw, int64_t pl) {
    for (int64_t k = 0; k < kw; k++) {
        const float *p = xr + k - pl;
        if (sw == 1) {
            for (int64_t ox = a; ox < b; ox++) acc[ox] += p[ox];
        } else if (sw == 2) {
            for (int64_t ox = a; ox < b; ox++) acc[ox] += p[2 * ox];
        } else {
            for (int64_t ox = a; ox < b; ox++) acc[ox] += p[sw * ox];
        }
    }
}

static void pool_planes(void *arg, size_t begin, size_t end, int tid) {
    const pool_task *t = arg;
    if (t->is_max && t->k && max_planes(t, begin, end, tid)) return;
    const kl_pool2d_geom *g = t->g;
    int64_t H = g->h, W = g->w, OH = g->oh, OW = g->ow;
    for (size_t pl_i = begin; pl_i < end; pl_i++) {
        const float *x = t->x + (int64_t)pl_i * H * W;
        float *y = t->y + (int64_t)pl_i * OH * OW;
        for (int64_t oy = 0; oy < OH; oy++) {
            float *acc = y + oy * OW;
            int64_t hs = oy * g->sh - g->pt;
            int64_t r0 = p_max(hs, 0), r1 = p_min(hs + g->kh, H);
            float init = t->is_max ? -INFINITY : 0.0f;
            for (int64_t ox = 0; ox < OW; ox++) acc[ox] = init;
            for (int64_t r = r0; r < r1; r++) {
                const float *xr = x + r * W;
                /* edges with bounds, interior without */
                for (int64_t ox = 0; ox < OW; ox++) {
                    if (ox == t->ox_lo && t->ox_lo < t->ox_hi) {
                        if (t->is_max) row_max_interior(acc, xr, t->ox_lo, t->ox_hi, g->sw, g->kw, g->pl);
                        else row_sum_interior(acc, xr, t->ox_lo, t->ox_hi, g->sw, g->kw, g->pl);
                        ox = t->ox_hi - 1;
                        continue;
                    }
                    int64_t ws = ox * g->sw - g->pl;
                    int64_t c0 = p_max(ws, 0), c1 = p_min(ws + g->kw, W);
                    float a = acc[ox];
                    for (int64_t c = c0; c < c1; c++) {
                        float v = xr[c];
                        if (t->is_max) a = v > a ? v : a;
                        else a += v;
                    }
                    acc[ox] = a;
                }
            }
            if (!t->is_max) {
                int64_t rows = r1 > r0 ? r1 - r0 : 0;
                int64_t lim_h = H + g->pb - hs;
                int64_t prow = lim_h > 0 ? p_min(g->kh, lim_h) : 0;
                for (int64_t ox = 0; ox < OW; ox++) {
                    int64_t ws = ox * g->sw - g->pl;
                    int64_t cols = p_min(ws + g->kw, W) - p_max(ws, 0);
                    if (cols < 0) cols = 0;
                    double div;
                    if (t->count_pad) {
                        int64_t lim_w = W + g->pr - ws;
                        int64_t pcol = lim_w > 0 ? p_min(g->kw, lim_w) : 0;
                        div = (double)prow * (double)pcol;
                    } else {
                        div = (double)(rows * cols);
                    }
                    acc[ox] = (float)((double)acc[ox] / div);
                }
            }
        }
    }
}

void kl_pool2d_f32(kl_isa isa, kl_pool *pool, const float *x, float *y, int64_t planes, const kl_pool2d_geom *g,
                   bool is_max, bool count_include_pad, float *ws) {
    if (planes <= 0 || g->oh <= 0 || g->ow <= 0) return;
    pool_task t = {x, y, g, is_max, count_include_pad, 0, 0, kl_vec_kernels_get(isa), pool_row_floats(g), ws};
    /* interior: ox*sw - pl >= 0 and ox*sw - pl + kw <= w */
    int64_t lo = (g->pl + g->sw - 1) / g->sw;
    int64_t hi = g->w - g->kw + g->pl >= 0 ? (g->w - g->kw + g->pl) / g->sw + 1 : 0;
    if (hi > g->ow) hi = g->ow;
    if (lo > hi) lo = hi;
    t.ox_lo = lo;
    t.ox_hi = hi;
    if (pool && planes > 1) kl_parallel_for(pool, (size_t)planes, pool_planes, &t);
    else pool_planes(&t, 0, (size_t)planes, 0);
}

typedef struct gpool_task {
    const kl_vec_kernels *k;
    const float *x;
    float *y;
    int64_t size;
    bool is_max;
} gpool_task;

static void gpool_planes(void *arg, size_t begin, size_t end, int tid) {
    (void)tid;
    const gpool_task *t = arg;
    for (size_t p = begin; p < end; p++) {
        const float *x = t->x + (int64_t)p * t->size;
        if (t->is_max) {
            float m = -INFINITY;
            for (int64_t i = 0; i < t->size; i++) {
                float v = x[i];
                if (isnan(v)) {
                    m = v;
                    break;
                }
                m = v > m ? v : m;
            }
            t->y[p] = m;
        } else {
            t->k->plane_mean(x, 1, (size_t)t->size, t->y + p);
        }
    }
}

void kl_global_pool_f32(kl_isa isa, kl_pool *pool, const float *x, float *y, int64_t planes, int64_t size,
                        bool is_max) {
    if (planes <= 0 || size <= 0) return;
    gpool_task t = {kl_vec_kernels_get(isa), x, y, size, is_max};
    if (pool && planes > 1 && planes * size >= 32768) kl_parallel_for(pool, (size_t)planes, gpool_planes, &t);
    else gpool_planes(&t, 0, (size_t)planes, 0);
}
