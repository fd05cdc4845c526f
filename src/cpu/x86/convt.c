/*
 * convt.c — 2-D transposed convolution as packed products and col2im (see
 * convt.h).  The product runs at the plan's ISA level through kl_sgemm; the
 * col2im adds are plain loops (memory-bound: one add per product output).
 */
#include <string.h>

#include "core/core.h"
#include "cpu/x86/convt.h"
#include "cpu/x86/gemm.h"

/* Columns of a band of input rows: about this many floats (4 MiB), at least one row. */
#define CT_COL_BUDGET ((size_t)1 << 20)

struct kl_convt2d_plan {
    kl_convt2d_desc d;
    size_t Cg, Mg, Kc;  /* Kc = Mg * KH * KW: rows of col */
    size_t pa_bytes;    /* one group's packed W_g^T */
    unsigned char *pa;  /* group gi's at pa + gi * pa_bytes */
    float *bias;        /* [M] or NULL */
};

static size_t ct_round64(size_t b) { return (b + 63) / 64 * 64; }

kiln_status kl_convt2d_prepare(const kl_convt2d_desc *d, const float *W, const float *bias, kl_convt2d_plan **out) {
    *out = NULL;
    if (!d || !W || d->C == 0 || d->M == 0 || d->group == 0 || d->C % d->group || d->M % d->group || d->KH == 0 ||
        d->KW == 0 || d->SH == 0 || d->SW == 0 || d->DH == 0 || d->DW == 0 || d->KH > 4096 || d->KW > 4096 ||
        d->C > ((size_t)1 << 24) || d->M > ((size_t)1 << 24))
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kl_convt2d_prepare: bad description");
    kl_convt2d_plan *p = kl_calloc(1, sizeof *p);
    if (!p) return KILN_ERR_NO_MEMORY;
    p->d = *d;
    p->Cg = d->C / d->group;
    p->Mg = d->M / d->group;
    p->Kc = p->Mg * d->KH * d->KW;
    p->pa_bytes = ct_round64(kl_sgemm_pack_a_size(p->Kc, p->Cg));
    p->pa = kl_malloc(p->pa_bytes * d->group);
    if (bias) p->bias = kl_malloc(d->M * sizeof *p->bias);
    if (!p->pa || (bias && !p->bias)) {
        kl_convt2d_destroy(p);
        return KILN_ERR_NO_MEMORY;
    }
    /* W_g is [Cg, Kc] row-major: op(A) = W_g^T (Kc x Cg), stored K x M */
    for (size_t g = 0; g < d->group; g++)
        kl_sgemm_pack_a(W + g * p->Cg * p->Kc, p->Kc, true, p->Kc, p->Cg, p->pa + g * p->pa_bytes);
    if (bias) memcpy(p->bias, bias, d->M * sizeof *p->bias);
    *out = p;
    return KILN_OK;
}

void kl_convt2d_destroy(kl_convt2d_plan *p) {
    if (!p) return;
    kl_free(p->pa);
    kl_free(p->bias);
    kl_free(p);
}

size_t kl_convt2d_packed_bytes(const kl_convt2d_plan *p) {
    return p ? p->pa_bytes * p->d.group + (p->bias ? p->d.M * sizeof(float) : 0) : 0;
}

/* Input rows per band. */
static size_t ct_band_rows(const kl_convt2d_plan *p, const kl_convt2d_geom *g) {
    size_t per_row = p->Kc * (g->IW ? g->IW : 1);
    size_t rows = CT_COL_BUDGET / per_row;
    if (rows < 1) rows = 1;
    return rows < g->IH ? rows : (g->IH ? g->IH : 1);
}

static void ct_gemm_args(const kl_convt2d_plan *p, size_t gi, size_t pc, kl_gemm_args *a) {
    memset(a, 0, sizeof *a);
    a->M = p->Kc;
    a->N = pc;
    a->K = p->Cg;
    a->packed_a = p->pa + gi * p->pa_bytes;
    a->ldb = pc; /* set by the run to the image's plane size */
    a->ldc = pc;
    a->alpha = 1.0f;
    a->beta = 0.0f;
    a->act.kind = KL_ACT_NONE;
    a->isa = p->d.isa;
}

size_t kl_convt2d_workspace_size(const kl_convt2d_plan *p, const kl_convt2d_geom *g, int threads) {
    if (!p || !g) return 0;
    size_t rows = ct_band_rows(p, g), pc = rows * g->IW;
    kl_gemm_args a;
    ct_gemm_args(p, 0, pc ? pc : 1, &a);
    a.ldb = g->IH * g->IW > pc ? g->IH * g->IW : pc;
    return ct_round64(p->Kc * (pc ? pc : 1) * sizeof(float)) + ct_round64(kl_sgemm_workspace_size(&a, threads));
}

typedef struct ct_task {
    const kl_convt2d_plan *p;
    const kl_convt2d_geom *g;
    const float *col; /* [Kc, (r1 - r0) * IW] */
    float *yg;        /* the group's first output plane */
    size_t gi, r0, r1;
    bool first;       /* first band: the planes start at the bias */
} ct_task;

/* col2im for output channels [b, e) of the group. */
static void ct_col2im(void *arg, size_t b, size_t e, int tid) {
    (void)tid;
    const ct_task *t = arg;
    const kl_convt2d_plan *p = t->p;
    const kl_convt2d_desc *d = &p->d;
    const kl_convt2d_geom *g = t->g;
    size_t pc = (t->r1 - t->r0) * g->IW, plane = g->OH * g->OW;
    for (size_t m = b; m < e; m++) {
        float *yp = t->yg + m * plane;
        if (t->first) {
            float v = p->bias ? p->bias[t->gi * p->Mg + m] : 0.0f;
            for (size_t i = 0; i < plane; i++) yp[i] = v;
        }
        for (size_t kh = 0; kh < d->KH; kh++)
            for (size_t kw = 0; kw < d->KW; kw++) {
                const float *cr = t->col + ((m * d->KH + kh) * d->KW + kw) * pc;
                int64_t offy = (int64_t)(kh * d->DH) - g->PT, offx = (int64_t)(kw * d->DW) - g->PL;
                int64_t sw = (int64_t)d->SW, ow = (int64_t)g->OW;
                /* 0 <= ix*SW + offx < OW */
                int64_t lo = offx >= 0 ? 0 : (-offx + sw - 1) / sw;
                int64_t hi = ow - 1 - offx >= 0 ? (ow - 1 - offx) / sw + 1 : 0;
                if (hi > (int64_t)g->IW) hi = (int64_t)g->IW;
                if (lo >= hi) continue;
                for (size_t iy = t->r0; iy < t->r1; iy++) {
                    int64_t oy = (int64_t)(iy * d->SH) + offy;
                    if (oy < 0 || oy >= (int64_t)g->OH) continue;
                    const float *src = cr + (iy - t->r0) * g->IW;
                    float *row = yp + (size_t)oy * g->OW;
                    if (sw == 1) {
                        float *dst = row + (offx + lo); /* >= row: lo >= -offx */
                        const float *s = src + lo;
                        for (int64_t i = 0; i < hi - lo; i++) dst[i] += s[i];
                    } else {
                        for (int64_t ix = lo; ix < hi; ix++) row[ix * sw + offx] += src[ix];
                    }
                }
            }
    }
}

kiln_status kl_convt2d_run(kl_pool *pool, const kl_convt2d_plan *p, size_t N, const kl_convt2d_geom *g,
                           const float *X, float *Y, void *workspace) {
    if (!p || !g) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kl_convt2d_run: no plan or geometry");
    const kl_convt2d_desc *d = &p->d;
    size_t plane_in = g->IH * g->IW, plane_out = g->OH * g->OW;
    if (N == 0 || plane_out == 0 || d->M == 0) return KILN_OK;
    if (!Y || (plane_in && (!X || !workspace)))
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kl_convt2d_run: missing input, output or workspace");
    if (plane_in == 0) { /* no input pixels: the output is the bias */
        for (size_t n = 0; n < N; n++)
            for (size_t m = 0; m < d->M; m++) {
                float v = p->bias ? p->bias[m] : 0.0f;
                float *yp = Y + (n * d->M + m) * plane_out;
                for (size_t i = 0; i < plane_out; i++) yp[i] = v;
            }
        return KILN_OK;
    }
    int threads = pool ? kl_pool_threads(pool) : 1;
    size_t rows = ct_band_rows(p, g), pc_max = rows * g->IW;
    float *col = workspace;
    unsigned char *gws = (unsigned char *)workspace + ct_round64(p->Kc * pc_max * sizeof(float));
    size_t gws_bytes = kl_convt2d_workspace_size(p, g, threads) - ct_round64(p->Kc * pc_max * sizeof(float));
    for (size_t n = 0; n < N; n++)
        for (size_t gi = 0; gi < d->group; gi++) {
            const float *xg = X + (n * d->C + gi * p->Cg) * plane_in;
            float *yg = Y + (n * d->M + gi * p->Mg) * plane_out;
            for (size_t r0 = 0; r0 < g->IH; r0 += rows) {
                size_t r1 = r0 + rows < g->IH ? r0 + rows : g->IH, pc = (r1 - r0) * g->IW;
                kl_gemm_args a;
                ct_gemm_args(p, gi, pc, &a);
                a.B = xg + r0 * g->IW;
                a.ldb = plane_in;
                a.C = col;
                a.ldc = pc;
                size_t need = kl_sgemm_workspace_size(&a, threads);
                if (need > gws_bytes)
                    return kl_errorf(KILN_ERR_INTERNAL, "kl_convt2d_run: the product needs %zu workspace bytes, %zu reserved",
                                     need, gws_bytes);
                a.workspace = need ? gws : NULL;
                a.workspace_bytes = need ? gws_bytes : 0;
                KL_TRY(kl_sgemm(pool, &a));
                ct_task t = {p, g, col, yg, gi, r0, r1, r0 == 0};
                kl_parallel_for(pool, p->Mg, ct_col2im, &t);
            }
        }
    return KILN_OK;
}
