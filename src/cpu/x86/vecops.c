/*
 * vecops.c — the drivers of vecops.h (broadcast collapsing, blocking and the
 * thread split) and the portable C kernels of the generic level.
 */
#include "cpu/x86/vecops.h"

#include <math.h>
#include <string.h>

#include "core/core.h"
#include "cpu/threadpool.h"
#include "cpu/x86/vecmath.h"

/* ---- generic kernels --------------------------------------------------------------------- */

static float g_sigmoid(float x) {
    float e = expf(-fabsf(x));
    float r = 1.0f / (1.0f + e);
    return x < 0 ? e * r : r;
}

static float g_softplus(float x) { return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x)); }

static float g_clamp01(float v) { return v < 0 ? 0.0f : v > 1 ? 1.0f : v; }

static float g_apply(const kl_vstep *s, float x, float o) {
    switch (s->op) {
    case KL_VOP_ADD: return x + o;
    case KL_VOP_SUB: return x - o;
    case KL_VOP_RSUB: return o - x;
    case KL_VOP_MUL: return x * o;
    case KL_VOP_DIV: return x / o;
    case KL_VOP_RDIV: return o / x;
    case KL_VOP_POW: return powf(x, o);
    case KL_VOP_RPOW: return powf(o, x);
    case KL_VOP_RELU: return x < 0 ? 0.0f : x;
    case KL_VOP_SIGMOID: return g_sigmoid(x);
    case KL_VOP_TANH: return tanhf(x);
    case KL_VOP_EXP: return expf(x);
    case KL_VOP_LOG: return logf(x);
    case KL_VOP_ERF: return erff(x);
    case KL_VOP_SQRT: return sqrtf(x);
    case KL_VOP_NEG: return -x;
    case KL_VOP_ABS: return fabsf(x);
    case KL_VOP_RECIPROCAL: return 1.0f / x;
    case KL_VOP_LEAKY_RELU: return x < 0 ? s->a * x : x;
    case KL_VOP_SOFTPLUS: return g_softplus(x);
    case KL_VOP_GELU_ERF: return 0.5f * x * erfcf(-x * 0.70710678118654752f);
    case KL_VOP_GELU_TANH: return x * g_sigmoid(2.0f * 0.79788456080286536f * (x + 0.044715f * x * x * x));
    case KL_VOP_HARD_SWISH: return x * g_clamp01(x / 6.0f + 0.5f);
    case KL_VOP_HARD_SIGMOID: return g_clamp01(s->a * x + s->b);
    case KL_VOP_SWISH: return x * g_sigmoid(s->a * x);
    default: return x;
    }
}

/* y = v op o over n elements, the opcode hoisted out of the loop. */
#define G_BIN_LOOP(EXPR)                                              \
    do {                                                              \
        if (!o)                                                       \
            for (size_t i = 0; i < n; i++) {                          \
                float x = v[i], q = s->a;                             \
                y[i] = (EXPR);                                        \
            }                                                         \
        else if (os)                                                  \
            for (size_t i = 0; i < n; i++) {                          \
                float x = v[i], q = o[i];                             \
                y[i] = (EXPR);                                        \
            }                                                         \
        else                                                          \
            for (size_t i = 0; i < n; i++) {                          \
                float x = v[i], q = o[0];                             \
                y[i] = (EXPR);                                        \
            }                                                         \
    } while (0)

static void g_step(const kl_vstep *s, float *y, const float *v, const float *o, size_t os, size_t n) {
    switch (s->op) {
    case KL_VOP_ADD: G_BIN_LOOP(x + q); return;
    case KL_VOP_SUB: G_BIN_LOOP(x - q); return;
    case KL_VOP_MUL: G_BIN_LOOP(x * q); return;
    case KL_VOP_DIV: G_BIN_LOOP(x / q); return;
    default: break;
    }
    if (!o) {
        for (size_t i = 0; i < n; i++) y[i] = g_apply(s, v[i], s->a);
    } else {
        for (size_t i = 0; i < n; i++) y[i] = g_apply(s, v[i], o[i * os]);
    }
}

static void g_norm(bool rms, const float *x, float *y, size_t r0, size_t r1, size_t n, const float *w,
                   const float *b, float eps) {
    for (size_t r = r0; r < r1; r++) {
        const float *px = x + r * n;
        float *py = y + r * n;
        float mean = 0, q = 0;
        if (!rms) {
            for (size_t i = 0; i < n; i++) mean += px[i];
            mean /= (float)n;
        }
        for (size_t i = 0; i < n; i++) q += (px[i] - mean) * (px[i] - mean);
        float inv = (float)(1.0 / sqrt((double)q / (double)n + (double)eps));
        for (size_t i = 0; i < n; i++) py[i] = (px[i] - mean) * inv * (w ? w[i] : 1.0f) + (b ? b[i] : 0.0f);
    }
}

/* Softmax of n values x[j*st] into y (same layout). */
static void g_softmax_one(const float *x, float *y, size_t n, size_t st) {
    float m = -INFINITY;
    bool nan = false;
    for (size_t j = 0; j < n; j++) {
        float v = x[j * st];
        nan |= v != v;
        m = v > m ? v : m;
    }
    if (nan || isinf(m)) {
        for (size_t j = 0; j < n; j++) y[j * st] = NAN;
        return;
    }
    float s = 0;
    for (size_t j = 0; j < n; j++) s += y[j * st] = expf(x[j * st] - m);
    float inv = 1.0f / s;
    for (size_t j = 0; j < n; j++) y[j * st] *= inv;
}

static void g_softmax_rows(const float *x, float *y, size_t r0, size_t r1, size_t n) {
    for (size_t r = r0; r < r1; r++) g_softmax_one(x + r * n, y + r * n, n, 1);
}

static void g_softmax_cols(const float *x, float *y, size_t n, size_t inner, size_t i0, size_t i1) {
    for (size_t c = i0; c < i1; c++) g_softmax_one(x + c, y + c, n, inner);
}

static void g_plane_mean(const float *x, size_t planes, size_t n, float *y) {
    for (size_t p = 0; p < planes; p++, x += n) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++) s += x[i];
        y[p] = (float)(s / (double)n);
    }
}

static float g_ldf(const float *p) { /* p may be misaligned (weights inside a protobuf) */
    float v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void g_matvec(const float *w, size_t M, size_t K, const float *x, const float *bias, const float *z, float *y,
                     int act_kind, float alpha, float beta) {
    kl_act act = {(kl_act_kind)act_kind, alpha, beta};
    for (size_t m = 0; m < M; m++) {
        float s = 0.0f;
        for (size_t k = 0; k < K; k++) s += g_ldf(w + m * K + k) * x[k];
        if (bias) s += g_ldf(bias + m);
        if (z) s += g_ldf(z + m);
        y[m] = kl_act_scalar(act, s);
    }
}

static void g_max_into(float *t, const float *r, size_t n) {
    for (size_t i = 0; i < n; i++) t[i] = r[i] > t[i] ? r[i] : t[i];
}

static void g_max_cols(const float *t, size_t s, size_t kw, size_t n, float *y) {
    for (size_t o = 0; o < n; o++) {
        float m = t[o * s];
        for (size_t k = 1; k < kw; k++) m = t[o * s + k] > m ? t[o * s + k] : m;
        y[o] = m;
    }
}

static void g_max_rows(float *t, const float *const *r, size_t nr, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float m = -INFINITY;
        for (size_t k = 0; k < nr; k++) m = r[k][i] > m ? r[k][i] : m;
        t[i] = m;
    }
}

static const kl_vec_kernels g_generic = {g_step,       g_norm,   g_softmax_rows, g_softmax_cols,
                                         g_plane_mean, g_matvec, g_max_into,     g_max_cols,
                                         g_max_rows};

const kl_vec_kernels *kl_vec_kernels_get(kl_isa isa) {
    switch (kl_isa_resolve(isa)) {
#if defined(__x86_64__) || defined(_M_X64)
    case KL_ISA_AVX512: return &kl_vec_kernels_avx512;
    case KL_ISA_AVX2: return &kl_vec_kernels_avx2;
#endif
    default: return &g_generic;
    }
}

/* ---- elementwise programs ------------------------------------------------------------------- */

#define VP_BLOCK 512  /* elements per step pass (stays in L1) */
#define VP_CHUNK 4096 /* elements per unit of the thread split */

typedef struct vp_task {
    const kl_vec_kernels *k;
    const kl_vprog *p;
    float *y;
    int R;                                    /* collapsed rank (>= 1) */
    int64_t d[KILN_MAX_RANK];                 /* collapsed dims */
    int64_t st[KL_VPROG_MAX_INPUTS][KILN_MAX_RANK]; /* input strides, 0 on broadcast axes */
    size_t total;
} vp_task;

/* Elements [beg, end) of the output: runs of the innermost collapsed dim,
 * the input offsets of each run stepped like an odometer. */
static void vp_range(const vp_task *t, size_t beg, size_t end) {
    const kl_vprog *p = t->p;
    int R = t->R;
    size_t inner = (size_t)t->d[R - 1];
    size_t i = beg, col = beg % inner, rr = beg / inner;
    size_t off[KL_VPROG_MAX_INPUTS] = {0}, idx[KILN_MAX_RANK] = {0};
    for (int d = R - 2; d >= 0; d--) {
        idx[d] = rr % (size_t)t->d[d];
        rr /= (size_t)t->d[d];
        for (int k = 0; k < p->n_in; k++) off[k] += idx[d] * (size_t)t->st[k][d];
    }
    while (i < end) {
        size_t len = KL_MIN(inner - col, end - i);
        for (size_t b0 = 0; b0 < len; b0 += VP_BLOCK) {
            size_t bl = KL_MIN((size_t)VP_BLOCK, len - b0), c0 = col + b0;
            float *yb = t->y + i + b0;
            size_t s0 = (size_t)t->st[0][R - 1];
            /* the first step reads input 0 in place (a broadcast input 0
             * is expanded into y first); the others run on y */
            const float *src = p->in[0] + off[0] + c0 * s0;
            if (!s0) {
                for (size_t j = 0; j < bl; j++) yb[j] = src[0];
                src = yb;
            }
            for (int s = 0; s < p->n_steps; s++, src = yb) {
                const kl_vstep *st = &p->steps[s];
                if (st->arg == KL_VARG_IMM) {
                    t->k->step(st, yb, src, NULL, 0, bl);
                } else if (st->arg == KL_VARG_SELF) {
                    t->k->step(st, yb, src, src, 1, bl);
                } else {
                    size_t so = (size_t)t->st[st->arg][R - 1];
                    t->k->step(st, yb, src, p->in[st->arg] + off[st->arg] + c0 * so, so, bl);
                }
            }
        }
        i += len;
        col = 0;
        for (int d = R - 2; d >= 0; d--) {
            idx[d]++;
            for (int k = 0; k < p->n_in; k++) off[k] += (size_t)t->st[k][d];
            if (idx[d] < (size_t)t->d[d]) break;
            for (int k = 0; k < p->n_in; k++) off[k] -= (size_t)t->st[k][d] * (size_t)t->d[d];
            idx[d] = 0;
        }
    }
}

static void vp_task_fn(void *arg, size_t b, size_t e, int tid) {
    const vp_task *t = arg;
    (void)tid;
    vp_range(t, b * VP_CHUNK, KL_MIN(e * VP_CHUNK, t->total));
}

void kl_vec_prog_run(kl_isa isa, kl_pool *pool, const kl_vprog *p, float *y, int rank, const int64_t *dims) {
    vp_task t;
    memset(&t, 0, sizeof t);
    t.k = kl_vec_kernels_get(isa);
    t.p = p;
    t.y = y;
    size_t total = 1;
    for (int d = 0; d < rank; d++) total *= (size_t)dims[d];
    if (total == 0) return;
    t.total = total;
    /* per-dimension strides of every input (right-aligned, numpy rules) */
    int64_t st[KL_VPROG_MAX_INPUTS][KILN_MAX_RANK];
    for (int k = 0; k < p->n_in; k++) {
        int64_t s = 1;
        for (int d = rank - 1; d >= 0; d--) {
            int id = d - (rank - p->in_rank[k]);
            int64_t n = id >= 0 ? p->in_dims[k][id] : 1;
            st[k][d] = n == 1 ? 0 : s;
            s *= n;
        }
    }
    /* drop size-1 dims, merge dims that every input walks contiguously */
    int R = 0;
    for (int d = rank - 1; d >= 0; d--) {
        if (dims[d] == 1) continue;
        bool merge = R > 0;
        for (int k = 0; k < p->n_in && merge; k++)
            merge = st[k][d] == t.st[k][R - 1] * t.d[R - 1];
        if (merge) {
            t.d[R - 1] *= dims[d];
        } else {
            t.d[R] = dims[d];
            for (int k = 0; k < p->n_in; k++) t.st[k][R] = st[k][d];
            R++;
        }
    }
    if (R == 0) { /* one element */
        t.d[0] = 1;
        R = 1;
    }
    /* built innermost first: reverse into row-major order */
    for (int a = 0, b = R - 1; a < b; a++, b--) {
        int64_t tmp = t.d[a];
        t.d[a] = t.d[b];
        t.d[b] = tmp;
        for (int k = 0; k < p->n_in; k++) {
            tmp = t.st[k][a];
            t.st[k][a] = t.st[k][b];
            t.st[k][b] = tmp;
        }
    }
    t.R = R;
    if (!pool || total <= KL_VEC_PAR_MIN) {
        vp_range(&t, 0, total);
        return;
    }
    kl_parallel_for(pool, (total + VP_CHUNK - 1) / VP_CHUNK, vp_task_fn, &t);
}

/* ---- norms and softmax -------------------------------------------------------------------- */

typedef struct vn_task {
    const kl_vec_kernels *k;
    bool rms;
    const float *x, *w, *b;
    float *y;
    size_t n, inner, tiles;
    float eps;
} vn_task;

#define SM_TILE 64 /* columns per unit of the thread split (softmax over a middle axis) */

static void vn_norm_fn(void *arg, size_t r0, size_t r1, int tid) {
    const vn_task *t = arg;
    (void)tid;
    t->k->norm(t->rms, t->x, t->y, r0, r1, t->n, t->w, t->b, t->eps);
}

void kl_vec_norm(kl_isa isa, kl_pool *pool, bool rms, const float *x, float *y, size_t rows, size_t n,
                 const float *w, const float *b, float eps) {
    if (!rows || !n) return;
    vn_task t = {kl_vec_kernels_get(isa), rms, x, w, b, y, n, 1, 0, eps};
    if (!pool || rows < 2 || rows * n <= KL_VEC_PAR_MIN) {
        vn_norm_fn(&t, 0, rows, 0);
        return;
    }
    kl_parallel_for(pool, rows, vn_norm_fn, &t);
}

static void vn_softmax_rows_fn(void *arg, size_t r0, size_t r1, int tid) {
    const vn_task *t = arg;
    (void)tid;
    t->k->softmax_rows(t->x, t->y, r0, r1, t->n);
}

static void vn_softmax_cols_fn(void *arg, size_t b, size_t e, int tid) {
    const vn_task *t = arg;
    (void)tid;
    size_t slab = t->n * t->inner;
    for (size_t it = b; it < e; it++) {
        size_t o = it / t->tiles, c0 = (it % t->tiles) * SM_TILE;
        t->k->softmax_cols(t->x + o * slab, t->y + o * slab, t->n, t->inner, c0, KL_MIN(c0 + SM_TILE, t->inner));
    }
}

void kl_vec_softmax(kl_isa isa, kl_pool *pool, const float *x, float *y, size_t outer, size_t n, size_t inner) {
    if (!outer || !n || !inner) return;
    vn_task t = {kl_vec_kernels_get(isa), false, x, NULL, NULL, y, n, inner, (inner + SM_TILE - 1) / SM_TILE, 0};
    bool par = pool && outer * n * inner > KL_VEC_PAR_MIN;
    if (inner == 1) {
        if (!par || outer < 2) vn_softmax_rows_fn(&t, 0, outer, 0);
        else kl_parallel_for(pool, outer, vn_softmax_rows_fn, &t);
    } else {
        size_t items = outer * t.tiles;
        if (!par || items < 2) vn_softmax_cols_fn(&t, 0, items, 0);
        else kl_parallel_for(pool, items, vn_softmax_cols_fn, &t);
    }
}
