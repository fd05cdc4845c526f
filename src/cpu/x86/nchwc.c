/* nchwc.c — the driver of the blocked-layout convolutions (nchwc.h):
 * weight packing, the split of a run into row segments over the pool, the
 * portable kernel (KL_ISA_REF), the reorders and max pooling. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/x86/kernels.h"
#include "cpu/x86/nchwc_impl.h"


/* Portable kernel: one output pixel at a time, every output block of the
 * segment's group. */
static void generic_seg(const kl_nchwc_seg *a) {
    const struct kl_nchwc_plan *p = a->p;
    const kl_nchwc_desc *d = &p->d;
    size_t ys = p->OH * p->OW * 16;
    size_t g0 = d->depthwise ? a->g : a->g * p->ob, nb = d->depthwise ? 1 : KL_MIN(p->ob, p->Mb - g0);
    size_t Wr = p->flat ? d->H * d->W : d->W, sw = p->flat ? 1 : d->stride_w;
    ptrdiff_t ih0 = p->flat ? 0 : (ptrdiff_t)(a->oh * d->stride_h) - (ptrdiff_t)d->pad_top;
    size_t orow = (p->flat ? 0 : a->oh * p->OW) * 16;
    float acc[4 * 16];
    for (size_t ow = a->ow0; ow < a->ow1; ow++) {
        ptrdiff_t iw0 = (ptrdiff_t)(ow * sw) - (ptrdiff_t)d->pad_left;
        for (size_t k = 0; k < nb * 16; k++) acc[k] = p->bias[g0 * 16 + k];
        for (size_t kh = 0; kh < d->KH; kh++) {
            ptrdiff_t ih = ih0 + (ptrdiff_t)kh;
            if (!p->flat && (ih < 0 || ih >= (ptrdiff_t)d->H)) continue;
            for (size_t kw = 0; kw < d->KW; kw++) {
                ptrdiff_t iw = iw0 + (ptrdiff_t)kw;
                if (iw < 0 || iw >= (ptrdiff_t)Wr) continue;
                size_t xo = (p->flat ? 0 : (size_t)ih * p->xh) + (size_t)iw * p->xw;
                if (d->depthwise) {
                    const float *x = a->x + a->g * p->xcb + xo, *w = p->w + ((a->g * d->KH + kh) * d->KW + kw) * 16;
                    for (size_t l = 0; l < 16; l++) acc[l] += x[l] * w[l];
                    continue;
                }
                const float *wg = p->w + a->g * p->Cb * d->KH * d->KW * 16 * p->ob * 16;
                for (size_t cb = 0; cb < p->Cb; cb++) {
                    size_t cn = KL_MIN((size_t)16, d->C - cb * 16);
                    const float *wp = wg + ((cb * d->KH + kh) * d->KW + kw) * 16 * nb * 16;
                    for (size_t c = 0; c < cn; c++) {
                        float xv = a->x[cb * p->xcb + xo + c * p->xc];
                        for (size_t k = 0; k < nb * 16; k++) acc[k] += xv * wp[c * nb * 16 + k];
                    }
                }
            }
        }
        for (size_t b = 0; b < nb; b++) {
            size_t o = (g0 + b) * ys + orow + ow * 16;
            float *y = a->y + o;
            for (size_t l = 0; l < 16; l++) y[l] = acc[b * 16 + l] + (a->z ? a->z[o + l] : 0.0f);
            kl_x86_generic_vec_act(d->act, y, 16);
        }
    }
}

typedef void (*seg_fn)(const kl_nchwc_seg *a);

static seg_fn seg_kernel(kl_isa isa) {
#if KL_HAVE_X86
    if (isa == KL_ISA_AVX512) return kl_x86_avx512_nchwc_seg;
    if (isa == KL_ISA_AVX2) return kl_x86_avx2_nchwc_seg;
#endif
    (void)isa;
    return generic_seg;
}

kiln_status kl_nchwc_prepare(const kl_nchwc_desc *din, const float *W, const float *bias, kl_nchwc_plan **out) {
    *out = NULL;
    kl_nchwc_desc d = *din;
    if (!d.C || !d.H || !d.W || !d.M || !d.KH || !d.KW || !d.stride_h || !d.stride_w)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "nchwc: empty geometry");
    if (d.depthwise && (d.C != d.M || d.in_nchw))
        return kl_errorf(KILN_ERR_UNSUPPORTED, "nchwc: depthwise needs C == M and a blocked input");
    if (d.H + d.pad_top + d.pad_bottom < d.KH || d.W + d.pad_left + d.pad_right < d.KW)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "nchwc: kernel larger than the padded input");
    if (d.pad_top >= d.KH || d.pad_bottom >= d.KH || d.pad_left >= d.KW || d.pad_right >= d.KW)
        return kl_errorf(KILN_ERR_UNSUPPORTED, "nchwc: pads of a kernel's size or more");
    d.isa = kl_isa_resolve(d.isa);
    if (!kl_isa_supported(d.isa)) return kl_errorf(KILN_ERR_UNSUPPORTED, "nchwc: ISA level not available here");
    struct kl_nchwc_plan *p = kl_calloc(1, sizeof *p);
    if (!p) return KILN_ERR_NO_MEMORY;
    p->d = d;
    p->isa = d.isa;
    p->OH = (d.H + d.pad_top + d.pad_bottom - d.KH) / d.stride_h + 1;
    p->OW = (d.W + d.pad_left + d.pad_right - d.KW) / d.stride_w + 1;
    p->Cb = kl_nchwc_blocks(d.C);
    p->Mb = kl_nchwc_blocks(d.M);
    p->ob = d.depthwise ? 1 : d.isa == KL_ISA_AVX512 ? 4 : d.isa == KL_ISA_AVX2 ? 2 : 4;
    p->ngroups = d.depthwise ? p->Mb : (p->Mb + p->ob - 1) / p->ob;
    p->flat = d.KH == 1 && d.KW == 1 && d.stride_h == 1 && d.stride_w == 1 && !d.pad_top && !d.pad_left &&
              !d.pad_bottom && !d.pad_right;
    /* gflat on maps narrow enough that the border pixels (one at a time)
     * and short rows cost more than the padded copy, and on any unpadded
     * strided layer (KILN_NCHWC_GFLAT=0|1 overrides) */
    p->Hp = d.H + d.pad_top + d.pad_bottom, p->Wp = d.W + d.pad_left + d.pad_right;
    bool pads = d.pad_top || d.pad_left || d.pad_bottom || d.pad_right;
    bool gf_ok = !d.depthwise && !d.in_nchw && d.isa != KL_ISA_REF;
    p->gflat = gf_ok && (!pads || p->OW <= 32);
    const char *gf = getenv("KILN_NCHWC_GFLAT");
    if (gf && (gf[0] == '0' || gf[0] == '1') && gf_ok) p->gflat = gf[0] == '1';
    p->padded = p->gflat && pads;
    /* input blocks per pass: the pass's packed weights about 32 KiB */
    {
        size_t per_block = d.KH * d.KW * 16 * p->ob * 16 * sizeof(float);
        p->cchunk = KL_MAX((size_t)1, (size_t)32768 / per_block);
        const char *cc = getenv("KILN_NCHWC_CCHUNK");
        if (cc && atoi(cc) > 0) p->cchunk = (size_t)atoi(cc);
        if (d.depthwise || p->cchunk > p->Cb) p->cchunk = p->Cb;
    }
    /* image-wide layers: a group's weights held over its segments when they
     * outweigh the image's input by 4x or more (ResNet-50's 3x3 256->256 at
     * 14x14: 2.3 MiB against 196 KiB; measured 3-18% faster), else a
     * segment's input over the groups (its 1x1/2 512->1024, 2 MiB against
     * 1.6 MiB: 7% faster so); KILN_NCHWC_SEG_INNER=0|1 overrides */
    if ((p->flat || p->gflat) && !d.depthwise) {
        size_t wbytes = p->Mb * 16 * p->Cb * 16 * d.KH * d.KW * sizeof(float);
        p->seg_inner = wbytes > 4 * p->Cb * 16 * d.H * d.W * sizeof(float);
        const char *si = getenv("KILN_NCHWC_SEG_INNER");
        if (si && (si[0] == '0' || si[0] == '1')) p->seg_inner = si[0] == '1';
    }
    if (d.in_nchw) {
        p->xc = d.H * d.W, p->xw = 1, p->xh = d.W, p->xcb = 16 * d.H * d.W, p->ximg = d.C * d.H * d.W;
    } else {
        p->xc = 1, p->xw = 16, p->xh = d.W * 16, p->xcb = d.H * d.W * 16, p->ximg = p->Cb * d.H * d.W * 16;
    }
    size_t taps = d.KH * d.KW;
    size_t wfloats = d.depthwise ? p->Mb * taps * 16 : p->ngroups * p->Cb * taps * 16 * p->ob * 16;
    p->w = kl_calloc(wfloats, sizeof(float));
    p->bias = kl_calloc(p->Mb * 16, sizeof(float));
    if (!p->w || !p->bias) {
        kl_nchwc_destroy(p);
        return KILN_ERR_NO_MEMORY;
    }
    for (size_t m = 0; m < d.M && bias; m++) p->bias[m] = bias[m];
    if (d.depthwise) {
        for (size_t m = 0; m < d.M; m++)
            for (size_t t = 0; t < taps; t++) p->w[((m / 16) * taps + t) * 16 + m % 16] = W[m * taps + t];
    } else {
        for (size_t m = 0; m < d.M; m++) {
            size_t mb = m / 16, g = mb / p->ob, nb = KL_MIN(p->ob, p->Mb - g * p->ob), col = (mb - g * p->ob) * 16 + m % 16;
            float *wg = p->w + g * p->Cb * taps * 16 * p->ob * 16;
            for (size_t c = 0; c < d.C; c++)
                for (size_t t = 0; t < taps; t++)
                    wg[(((c / 16) * taps + t) * 16 + c % 16) * nb * 16 + col] = W[(m * d.C + c) * taps + t];
        }
    }
    *out = p;
    return KILN_OK;
}

void kl_nchwc_destroy(kl_nchwc_plan *p) {
    if (!p) return;
    kl_free(p->w);
    kl_free(p->bias);
    kl_free(p);
}

void kl_nchwc_out_hw(const kl_nchwc_plan *p, size_t *OH, size_t *OW) {
    *OH = p->OH;
    *OW = p->OW;
}

const kl_nchwc_desc *kl_nchwc_plan_desc(const kl_nchwc_plan *p) { return &p->d; }

typedef struct nc_run {
    const struct kl_nchwc_plan *p;
    const float *X, *Z;
    float *Y;
    size_t segs;    /* segments per row */
    size_t seg_w;   /* pixels per segment */
    size_t rows;    /* rows per image (flat, gflat: 1) */
    size_t ximg;    /* floats between images of X */
    seg_fn fn;
} nc_run;

/* Items: (image, row, segment, group), groups innermost so that the
 * threads share one row of input while each runs its output groups; with
 * the plan's seg_inner (image, group, segment), a group's weights held. */
static void nc_task(void *arg, size_t b, size_t e, int tid) {
    (void)tid;
    const nc_run *r = arg;
    const struct kl_nchwc_plan *p = r->p;
    size_t ys = p->Mb * p->OH * p->OW * 16;
    size_t row_w = p->flat || p->gflat ? p->OH * p->OW : p->OW;
    for (size_t it = b; it < e; it++) {
        size_t g, s, oh, n, rest;
        if (p->seg_inner) { /* (image, group, segment) */
            s = it % r->segs, rest = it / r->segs;
            g = rest % p->ngroups, rest /= p->ngroups;
        } else {
            g = it % p->ngroups, rest = it / p->ngroups;
            s = rest % r->segs, rest /= r->segs;
        }
        oh = rest % r->rows, n = rest / r->rows;
        kl_nchwc_seg a = {p, r->X + n * r->ximg, r->Z ? r->Z + n * ys : NULL, r->Y + n * ys, g, oh, s * r->seg_w,
                          KL_MIN(row_w, (s + 1) * r->seg_w)};
        r->fn(&a);
    }
}

/* The zero-padded copy of gflat: items (image, block). */
typedef struct nc_pad {
    const struct kl_nchwc_plan *p;
    const float *X;
    float *P;
} nc_pad;

static void pad_task(void *arg, size_t b, size_t e, int tid) {
    (void)tid;
    const nc_pad *r = arg;
    const struct kl_nchwc_plan *p = r->p;
    const kl_nchwc_desc *d = &p->d;
    const size_t Hp = p->Hp, Wp = p->Wp, H = d->H, W = d->W, pl = d->pad_left, pt = d->pad_top;
    for (size_t it = b; it < e; it++) {
        const float *x = r->X + it * H * W * 16; /* images of Cb blocks are consecutive blocks */
        float *y = r->P + it * Hp * Wp * 16;
        memset(y, 0, pt * Wp * 16 * sizeof(float));
        for (size_t h = 0; h < H; h++) {
            float *yr = y + (pt + h) * Wp * 16;
            memset(yr, 0, pl * 16 * sizeof(float));
            memcpy(yr + pl * 16, x + h * W * 16, W * 16 * sizeof(float));
            memset(yr + (pl + W) * 16, 0, (Wp - pl - W) * 16 * sizeof(float));
        }
        memset(y + (pt + H) * Wp * 16, 0, (Hp - pt - H) * Wp * 16 * sizeof(float));
    }
}

size_t kl_nchwc_workspace_size(const kl_nchwc_plan *p, size_t N) {
    return p->padded ? N * p->Cb * p->Hp * p->Wp * 16 * sizeof(float) : 0;
}

kiln_status kl_nchwc_run(kl_pool *pool, const kl_nchwc_plan *p, size_t N, const float *X, const float *Z, float *Y,
                         void *workspace) {
    if (!N) return KILN_OK;
    nc_run r = {p, X, Z, Y, 1, 0, p->flat || p->gflat ? 1 : p->OH, p->ximg, seg_kernel(p->isa)};
    size_t row_w = p->flat || p->gflat ? p->OH * p->OW : p->OW;
    if (p->padded) {
        if (!workspace) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "nchwc: this plan needs a workspace");
        nc_pad pr = {p, X, workspace};
        kl_parallel_for(pool, N * p->Cb, pad_task, &pr);
        r.X = workspace;
        r.ximg = p->Cb * p->Hp * p->Wp * 16;
    }
    /* flat rows (a whole image) in segments of about 96 pixels; other rows whole */
    if (p->flat || p->gflat) r.segs = KL_MAX((size_t)1, row_w / 96);
    r.seg_w = (row_w + r.segs - 1) / r.segs;
    size_t items = N * r.rows * r.segs * p->ngroups;
    kl_parallel_for(pool, items, nc_task, &r);
    return KILN_OK;
}

/* ---- reorders ------------------------------------------------------------------------- */

typedef struct nc_reorder {
    size_t C, HW, Cb;
    const float *x;
    float *y;
    bool in;
} nc_reorder;

/* Items: (image, block). */
static void reorder_task(void *arg, size_t b, size_t e, int tid) {
    (void)tid;
    const nc_reorder *r = arg;
    for (size_t it = b; it < e; it++) {
        size_t cb = it % r->Cb, n = it / r->Cb, cn = KL_MIN((size_t)16, r->C - cb * 16);
        const size_t HW = r->HW;
        if (r->in) {
            const float *x = r->x + (n * r->C + cb * 16) * HW;
            float *y = r->y + (n * r->Cb + cb) * HW * 16;
            for (size_t q0 = 0; q0 < HW; q0 += 16) {
                size_t qn = KL_MIN((size_t)16, HW - q0);
                float t[16][16];
                for (size_t c = 0; c < 16; c++)
                    for (size_t q = 0; q < 16; q++) t[q][c] = c < cn && q < qn ? x[c * HW + q0 + q] : 0.0f;
                memcpy(y + q0 * 16, t, qn * 16 * sizeof(float));
            }
        } else {
            const float *x = r->x + (n * r->Cb + cb) * HW * 16;
            float *y = r->y + (n * r->C + cb * 16) * HW;
            for (size_t q0 = 0; q0 < HW; q0 += 16) {
                size_t qn = KL_MIN((size_t)16, HW - q0);
                float t[16][16];
                memcpy(t, x + q0 * 16, qn * 16 * sizeof(float));
                for (size_t c = 0; c < cn; c++)
                    for (size_t q = 0; q < qn; q++) y[c * HW + q0 + q] = t[q][c];
            }
        }
    }
}

static void reorder(kl_pool *pool, size_t N, size_t C, size_t HW, const float *x, float *y, bool in) {
    nc_reorder r = {C, HW, kl_nchwc_blocks(C), x, y, in};
    kl_parallel_for(pool, N * r.Cb, reorder_task, &r);
}

void kl_nchwc_reorder_in(kl_pool *pool, size_t N, size_t C, size_t HW, const float *x, float *y) {
    reorder(pool, N, C, HW, x, y, true);
}

void kl_nchwc_reorder_out(kl_pool *pool, size_t N, size_t C, size_t HW, const float *x, float *y) {
    reorder(pool, N, C, HW, x, y, false);
}

/* ---- max pooling ---------------------------------------------------------------------- */

typedef struct nc_pool {
    const kl_nchwc_pool_desc *d;
    const float *x;
    float *y;
    size_t Cb;
    kl_isa isa;
} nc_pool;

/* Items: (image, block, output row). */
static void maxpool_task(void *arg, size_t b, size_t e, int tid) {
    (void)tid;
    const nc_pool *r = arg;
    const kl_nchwc_pool_desc *d = r->d;
    for (size_t it = b; it < e; it++) {
        size_t oh = it % d->OH, nb = it / d->OH; /* nb: image * Cb + block */
        const float *x = r->x + nb * d->H * d->W * 16;
#if KL_HAVE_X86
        if (r->isa == KL_ISA_AVX512 || r->isa == KL_ISA_AVX2) {
            (r->isa == KL_ISA_AVX512 ? kl_x86_avx512_nchwc_maxpool_row : kl_x86_avx2_nchwc_maxpool_row)(
                d, x, r->y + nb * d->OH * d->OW * 16, oh);
            continue;
        }
#endif
        float *y = r->y + (nb * d->OH + oh) * d->OW * 16;
        ptrdiff_t ih0 = (ptrdiff_t)(oh * d->stride_h) - (ptrdiff_t)d->pad_top;
        size_t kh0 = ih0 < 0 ? (size_t)-ih0 : 0;
        size_t kh1 = (size_t)KL_MAX((ptrdiff_t)0, KL_MIN((ptrdiff_t)d->KH, (ptrdiff_t)d->H - ih0));
        for (size_t ow = 0; ow < d->OW; ow++) {
            ptrdiff_t iw0 = (ptrdiff_t)(ow * d->stride_w) - (ptrdiff_t)d->pad_left;
            size_t kw0 = iw0 < 0 ? (size_t)-iw0 : 0;
            size_t kw1 = (size_t)KL_MAX((ptrdiff_t)0, KL_MIN((ptrdiff_t)d->KW, (ptrdiff_t)d->W - iw0));
            float m[16];
            for (size_t l = 0; l < 16; l++) m[l] = -INFINITY;
            for (size_t kh = kh0; kh < kh1; kh++)
                for (size_t kw = kw0; kw < kw1; kw++) {
                    const float *v = x + ((size_t)(ih0 + (ptrdiff_t)kh) * d->W + (size_t)(iw0 + (ptrdiff_t)kw)) * 16;
                    for (size_t l = 0; l < 16; l++) m[l] = v[l] > m[l] || isnan(v[l]) ? v[l] : m[l];
                }
            memcpy(y + ow * 16, m, sizeof m);
        }
    }
}

void kl_nchwc_maxpool(kl_pool *pool, const kl_nchwc_pool_desc *d, size_t N, const float *x, float *y) {
    nc_pool r = {d, x, y, kl_nchwc_blocks(d->C), kl_isa_resolve(KL_ISA_AUTO)};
    kl_parallel_for(pool, N * r.Cb * d->OH, maxpool_task, &r);
}
