/*
 * nchwc_impl.h — the blocked-layout convolution kernels (nchwc.h) written
 * once over simd.h, included by nchwc_avx2.c / nchwc_avx512.c; the plan
 * struct shared with the driver (nchwc.c), which includes this header
 * without a SIMD level for the struct only.
 *
 * Dense tile: PX output pixels of one row x NB blocks of 16 output
 * channels in PX*NB*(16/VL) accumulators.  For each input block, tap and
 * input channel c: NB*(16/VL) weight vectors are loaded (packed
 * [c][NB*16], contiguous) and each pixel's input value is broadcast into
 * them.  Depthwise tile: PX pixels of one block, one vector load per
 * pixel and tap.  Bias, residual Z and the activation are applied before
 * the store.
 */
#ifndef KL_CPU_X86_NCHWC_IMPL_H
#define KL_CPU_X86_NCHWC_IMPL_H

#include <math.h>

#include "core/core.h"
#include "cpu/x86/nchwc.h"

struct kl_nchwc_plan {
    kl_nchwc_desc d;
    size_t OH, OW, Cb, Mb;
    size_t ob;      /* output blocks per group of a dense tile (the last group may have fewer) */
    size_t ngroups; /* dense: ceil(Mb / ob); depthwise: Mb */
    bool flat;      /* 1x1, stride 1, no pads: an image is one row of H*W pixels */
    /* gflat (dense, blocked input, no pads or a map at most 32 wide): an
     * image's output is one row of OH*OW pixels, each tile's pixels with
     * their own window origins; with pads each run first copies the input
     * into a zero-padded [Cb][Hp][Wp][16] workspace, so no pixel has its
     * taps clipped: no border pixels one at a time, no short rows, and the
     * weights stay in L1 over a segment of about 96 pixels. */
    bool gflat, padded;
    size_t Hp, Wp;
    size_t cchunk;  /* dense: input blocks per pass over a segment (weights of a pass about L1's size) */
    bool seg_inner; /* image-wide: a run's items are (image, group, segment), else (image, segment, group) */
    /* input strides in floats: channel within a block, column, row, block, image */
    size_t xc, xw, xh, xcb, ximg;
    float *w;       /* dense: group g at g * Cb*KH*KW*16*ob*16: [cb][kh][kw][16][nb*16]; depthwise: [cb][kh][kw][16] */
    float *bias;    /* [Mb*16], zero past M */
    kl_isa isa;
};

/* One row segment of output: pixels [ow0, ow1) of row oh (flat: of the
 * image's single row), output group g, image n. */
typedef struct kl_nchwc_seg {
    const struct kl_nchwc_plan *p;
    const float *x; /* the image's input (gflat with pads: its padded copy) */
    const float *z; /* the image's residual, or NULL */
    float *y;       /* the image's output */
    size_t g, oh, ow0, ow1;
} kl_nchwc_seg;

#if defined(__x86_64__) || defined(_M_X64)
void kl_x86_avx2_nchwc_seg(const kl_nchwc_seg *a);
void kl_x86_avx512_nchwc_seg(const kl_nchwc_seg *a);
void kl_x86_avx2_nchwc_maxpool_row(const kl_nchwc_pool_desc *d, const float *x, float *y, size_t oh);
void kl_x86_avx512_nchwc_maxpool_row(const kl_nchwc_pool_desc *d, const float *x, float *y, size_t oh);
#endif

#ifdef KL_SIMD_NAME /* ---- the kernels, at one SIMD level ---- */

#include "cpu/x86/kernels.h"
#include "cpu/x86/simd.h"
#include "cpu/x86/vecmath_impl.h"

#if defined(__clang__)
#define KL_NC_UNROLL
#else
#define KL_NC_UNROLL _Pragma("GCC unroll 16")
#endif

#define NC_VPB (16 / VL) /* vectors per block */

/* Epilogue of one vector: bias already in the accumulator; + Z, act, store. */
KL_INL void nc_store(V v, float *y, const float *z, kl_act_kind kind, V va, V vb) {
    if (z) v = v_add(v, v_load(z));
    v_store(y, vm_act_cheap(v, kind, va, vb));
}

/* Dense tile: PX pixels (npx of them computed; the rest on pixel 0's
 * input and not stored) x NB blocks, input blocks [cb0, cb1).  x + xq[q]:
 * input at the window origin of pixel q for tap (kh0, kw0) of block 0; xh, xcb: floats between input rows and
 * blocks; w: the group's packed weights; wnb: blocks of the group (the
 * packed row width / 16); y, z: block 0 of the output / Z; yo[q]: pixel
 * q's offset from y (and z), SIZE_MAX: not stored; ys: floats between
 * output blocks.  first: the accumulators start from the bias, else from
 * y (the partial sums of the blocks before cb0); last: Z and the
 * activation are applied (else the partial sums are stored as they are). */
KL_INL void nc_dense_tile(const struct kl_nchwc_plan *p, const float *x, const size_t *xqo, size_t npx, size_t kh0, size_t kh1,
                          size_t kw0, size_t kw1, size_t xh, size_t xcb, size_t cb0, size_t cb1, const float *w,
                          size_t wnb, const float *bias, float *y, const float *z, const size_t *yo, size_t ys,
                          bool first, bool last, const int NB, const int PX) {
    V acc[8][4 * NC_VPB];
    KL_NC_UNROLL for (int q = 0; q < PX; q++) {
        const float *init = first || (size_t)q >= npx || yo[q] == SIZE_MAX ? NULL : y + yo[q];
        KL_NC_UNROLL for (int b = 0; b < NB; b++) KL_NC_UNROLL for (int h = 0; h < NC_VPB; h++) acc[q][b * NC_VPB + h] =
            init ? v_load(init + (size_t)b * ys + (size_t)h * VL) : v_load(bias + (b * NC_VPB + h) * VL);
    }
    const size_t xc = p->xc, xw = p->xw, KH = p->d.KH, KW = p->d.KW, ws = wnb * 16;
    const float *xq[8];
    KL_NC_UNROLL for (int q = 0; q < PX; q++) xq[q] = x + ((size_t)q < npx ? xqo[q] : 0);
    for (size_t cb = cb0; cb < cb1; cb++) {
        size_t cn = KL_MIN((size_t)16, p->d.C - cb * 16);
        for (size_t kh = kh0; kh < kh1; kh++)
            for (size_t kw = kw0; kw < kw1; kw++) {
                size_t xo = cb * xcb + (kh - kh0) * xh + (kw - kw0) * xw;
                const float *wp = w + ((cb * KH + kh) * KW + kw) * 16 * ws;
                if (cn == 16 && xc == 1) {
                    KL_NC_UNROLL for (int c = 0; c < 16; c++) {
                        V wv[4 * NC_VPB];
                        KL_NC_UNROLL for (int v = 0; v < NB * NC_VPB; v++) wv[v] = v_load(wp + c * ws + v * VL);
                        KL_NC_UNROLL for (int q = 0; q < PX; q++) {
                            V xb = v_bcast(xq[q] + xo + c);
                            KL_NC_UNROLL for (int v = 0; v < NB * NC_VPB; v++) acc[q][v] = v_fma(xb, wv[v], acc[q][v]);
                        }
                    }
                } else {
                    for (size_t c = 0; c < cn; c++) {
                        V wv[4 * NC_VPB];
                        KL_NC_UNROLL for (int v = 0; v < NB * NC_VPB; v++) wv[v] = v_load(wp + c * ws + v * VL);
                        KL_NC_UNROLL for (int q = 0; q < PX; q++) {
                            V xb = v_bcast(xq[q] + xo + c * xc);
                            KL_NC_UNROLL for (int v = 0; v < NB * NC_VPB; v++) acc[q][v] = v_fma(xb, wv[v], acc[q][v]);
                        }
                    }
                }
            }
    }
    kl_act_kind kind = p->d.act.kind;
    V va = v_set1(p->d.act.alpha), vb = v_set1(p->d.act.beta);
    KL_NC_UNROLL for (int q = 0; q < PX; q++) {
        if ((size_t)q >= npx) break;
        if (yo[q] == SIZE_MAX) continue;
        KL_NC_UNROLL for (int b = 0; b < NB; b++) KL_NC_UNROLL for (int h = 0; h < NC_VPB; h++) {
            size_t o = yo[q] + (size_t)b * ys + (size_t)h * VL;
            if (last)
                nc_store(acc[q][b * NC_VPB + h], y + o, z ? z + o : NULL, kind, va, vb);
            else
                v_store(y + o, acc[q][b * NC_VPB + h]);
        }
    }
    if (last && !vm_act_is_cheap(kind))
        for (int q = 0; q < PX && (size_t)q < npx; q++)
            if (yo[q] != SIZE_MAX)
                for (int b = 0; b < NB; b++) KL_SIMD_FN(vec_act)(p->d.act, y + yo[q] + (size_t)b * ys, 16);
}

/* Depthwise tile: PX pixels of one block (the group g is the block). */
KL_INL void nc_dw_tile(const struct kl_nchwc_plan *p, const float *x, size_t xpx, size_t npx, size_t kh0, size_t kh1,
                       size_t kw0, size_t kw1, const float *w, const float *bias, float *y, const float *z,
                       const int PX) {
    V acc[8][NC_VPB];
    KL_NC_UNROLL for (int q = 0; q < PX; q++) KL_NC_UNROLL for (int h = 0; h < NC_VPB; h++) acc[q][h] =
        v_load(bias + h * VL);
    const float *xq[8];
    KL_NC_UNROLL for (int q = 0; q < PX; q++) xq[q] = x + ((size_t)q < npx ? (size_t)q * xpx : 0);
    const size_t KW = p->d.KW, xh = p->xh;
    for (size_t kh = kh0; kh < kh1; kh++)
        for (size_t kw = kw0; kw < kw1; kw++) {
            size_t xo = (kh - kh0) * xh + (kw - kw0) * 16;
            const float *wp = w + (kh * KW + kw) * 16;
            KL_NC_UNROLL for (int h = 0; h < NC_VPB; h++) {
                V wv = v_load(wp + h * VL);
                KL_NC_UNROLL for (int q = 0; q < PX; q++) acc[q][h] = v_fma(v_load(xq[q] + xo + h * VL), wv, acc[q][h]);
            }
        }
    kl_act_kind kind = p->d.act.kind;
    V va = v_set1(p->d.act.alpha), vb = v_set1(p->d.act.beta);
    KL_NC_UNROLL for (int q = 0; q < PX; q++) {
        if ((size_t)q >= npx) break;
        KL_NC_UNROLL for (int h = 0; h < NC_VPB; h++) {
            size_t o = (size_t)q * 16 + (size_t)h * VL;
            nc_store(acc[q][h], y + o, z ? z + o : NULL, kind, va, vb);
        }
    }
    if (!vm_act_is_cheap(kind)) KL_SIMD_FN(vec_act)(p->d.act, y, npx * 16);
}

/* Tile widths: dense, by blocks in the tile; depthwise. */
#if VL == 16
#define NC_PX(NB) ((NB) >= 3 ? 6 : 8)
#define NC_DW_PX 8
#define NC_MAX_NB 4
#else
#define NC_PX(NB) ((NB) >= 2 ? 3 : 6)
#define NC_DW_PX 4
#define NC_MAX_NB 2
#endif

/* A row segment [ow0, ow1) of row oh: the columns whose windows are inside
 * the input in tiles of NC_PX pixels, the border columns one at a time with
 * their taps clipped. */
#define NC_SEG_LOOP(TILE1, TILEN, PXN)                                                                          \
    do {                                                                                                        \
        size_t ow = a->ow0;                                                                                     \
        while (ow < a->ow1) {                                                                                   \
            ptrdiff_t iw = (ptrdiff_t)(ow * sw) - (ptrdiff_t)pl;                                                \
            size_t kw0 = iw < 0 ? (size_t)(-iw) : 0;                                                            \
            size_t kw1 = iw + (ptrdiff_t)KWr > (ptrdiff_t)Wr ? (size_t)KL_MAX((ptrdiff_t)Wr - iw, (ptrdiff_t)0) : KWr; \
            size_t xoff = 0, n = 1;                                                                             \
            if (kw0 >= kw1) { /* no tap inside: bias (and Z, act) only */                                       \
                kw0 = kw1 = 0;                                                                                  \
            } else {                                                                                            \
                xoff = xrow + (size_t)(iw + (ptrdiff_t)kw0) * p->xw;                                            \
                if (kw0 == 0 && kw1 == KWr) { /* interior columns from ow on */                                 \
                    size_t lastc = (Wr + pl - KWr) / sw + 1;                                                    \
                    n = KL_MIN(KL_MIN(lastc, a->ow1) - ow, (size_t)(PXN));                                      \
                }                                                                                               \
            }                                                                                                   \
            if (n > 1) TILEN(n); else TILE1();                                                                  \
            ow += n;                                                                                            \
        }                                                                                                       \
    } while (0)

void KL_SIMD_FN(nchwc_seg)(const kl_nchwc_seg *a) {
    const struct kl_nchwc_plan *p = a->p;
    const kl_nchwc_desc *d = &p->d;
    size_t sw = p->flat ? 1 : d->stride_w, ys = p->OH * p->OW * 16;
    size_t Wr = p->flat ? d->H * d->W : d->W, KWr = d->KW, pl = d->pad_left;
    size_t kh0 = 0, kh1 = d->KH, xrow = 0;
    if (!p->flat) {
        ptrdiff_t ih = (ptrdiff_t)(a->oh * d->stride_h) - (ptrdiff_t)d->pad_top;
        kh0 = ih < 0 ? (size_t)(-ih) : 0;
        kh1 = ih + (ptrdiff_t)d->KH > (ptrdiff_t)d->H ? (size_t)KL_MAX((ptrdiff_t)d->H - ih, (ptrdiff_t)0) : d->KH;
        if (kh1 < kh0) kh1 = kh0;
        xrow = kh0 < kh1 ? (size_t)(ih + (ptrdiff_t)kh0) * p->xh : 0;
    }
    size_t orow = (p->flat ? 0 : a->oh * p->OW) * 16;
    if (d->depthwise) {
        const float *w = p->w + a->g * d->KH * d->KW * 16, *bias = p->bias + a->g * 16;
        const float *x = a->x + a->g * p->xcb;
        float *y = a->y + a->g * ys + orow;
        const float *z = a->z ? a->z + a->g * ys + orow : NULL;
#define DW_T1() nc_dw_tile(p, x + xoff, sw * 16, 1, kh0, kh1, kw0, kw1, w, bias, y + ow * 16, z ? z + ow * 16 : NULL, 1)
#define DW_TN(n) nc_dw_tile(p, x + xoff, sw * 16, n, kh0, kh1, kw0, kw1, w, bias, y + ow * 16, z ? z + ow * 16 : NULL, NC_DW_PX)
        NC_SEG_LOOP(DW_T1, DW_TN, NC_DW_PX);
#undef DW_T1
#undef DW_TN
        return;
    }
    size_t g0 = a->g * p->ob, nb = KL_MIN(p->ob, p->Mb - g0);
    const float *w = p->w + a->g * p->Cb * d->KH * d->KW * 16 * p->ob * 16, *bias = p->bias + g0 * 16;
    const float *x = a->x;
    float *y = a->y + g0 * ys;
    const float *z = a->z ? a->z + g0 * ys : NULL;
    size_t xpx = sw * p->xw;
    static const size_t yo_row[8] = {0, 16, 32, 48, 64, 80, 96, 112};
    if (p->gflat) { /* pixels [ow0, ow1) of the image's single row of OH*OW */
        const size_t OW = p->OW, sh = d->stride_h, xh = p->padded ? p->Wp * 16 : p->xh;
        const size_t xcb = p->padded ? p->Hp * p->Wp * 16 : p->xcb;
        const size_t bfl = d->KH * d->KW * 16 * nb * 16; /* weight floats of one input block */
        const size_t tiles = (a->ow1 - a->ow0 + NC_PX(nb) - 1) / NC_PX(nb);
        for (size_t cb0 = 0; cb0 < p->Cb; cb0 += p->cchunk) {
            size_t cb1 = KL_MIN(p->Cb, cb0 + p->cchunk);
            bool first = cb0 == 0, last = cb1 == p->Cb;
            /* the next pass's weights (after the last, the next group's
             * first pass, when the next item is that group's) into L2,
             * spread over this pass's tiles: in a model they come from
             * memory, and the first tile would wait for them */
            const char *nx = NULL;
            size_t nbytes = 0;
            if (!last) {
                nx = (const char *)(w + cb1 * bfl);
                nbytes = (KL_MIN(p->Cb, cb1 + p->cchunk) - cb1) * bfl * sizeof(float);
            } else if (!p->seg_inner && a->g + 1 < p->ngroups) {
                size_t nb2 = KL_MIN(p->ob, p->Mb - (a->g + 1) * p->ob);
                nx = (const char *)(w + p->Cb * d->KH * d->KW * 16 * p->ob * 16);
                nbytes = KL_MIN(p->cchunk, p->Cb) * d->KH * d->KW * 16 * nb2 * 16 * sizeof(float);
            }
            size_t span = tiles ? (nbytes / tiles + 63) / 64 * 64 : 0, pf = 0;
            for (size_t q0 = a->ow0; q0 < a->ow1;) {
                for (size_t e = KL_MIN(nbytes, pf + span); pf < e; pf += 64) _mm_prefetch(nx + pf, _MM_HINT_T1);
                size_t xo[8], n = KL_MIN(a->ow1 - q0, (size_t)NC_PX(nb));
                for (size_t q = 0; q < n; q++) {
                    size_t oh = (q0 + q) / OW, ow = (q0 + q) % OW;
                    xo[q] = oh * sh * xh + ow * sw * 16;
                }
#define NC_GF(NB) nc_dense_tile(p, x, xo, n, 0, d->KH, 0, d->KW, xh, xcb, cb0, cb1, w, nb, bias, y + q0 * 16, z ? z + q0 * 16 : NULL, yo_row, ys, first, last, NB, NC_PX(NB))
                switch (nb) {
                case 1: NC_GF(1); break;
                case 2: NC_GF(2); break;
#if NC_MAX_NB > 2
                case 3: NC_GF(3); break;
                case 4: NC_GF(4); break;
#endif
                default: break;
                }
#undef NC_GF
                q0 += n;
            }
        }
        return;
    }
    size_t xo_row[8];
    for (int q = 0; q < 8; q++) xo_row[q] = (size_t)q * xpx;
    y += orow;
    if (z) z += orow;
    const size_t xh = p->xh, xcb = p->xcb;
#define NC_CASE(NB)                                                                                                   \
    case NB: {                                                                                                        \
        NC_SEG_LOOP(NC_T1_##NB, NC_TN_##NB, NC_PX(NB));                                                              \
        break;                                                                                                        \
    }
#define NC_T1(NB) nc_dense_tile(p, x + xoff, xo_row, 1, kh0, kh1, kw0, kw1, xh, xcb, cb0, cb1, w, nb, bias, y + ow * 16, z ? z + ow * 16 : NULL, yo_row, ys, first, last, NB, 1)
#define NC_TN(NB, n) nc_dense_tile(p, x + xoff, xo_row, n, kh0, kh1, kw0, kw1, xh, xcb, cb0, cb1, w, nb, bias, y + ow * 16, z ? z + ow * 16 : NULL, yo_row, ys, first, last, NB, NC_PX(NB))
#define NC_T1_1() NC_T1(1)
#define NC_TN_1(n) NC_TN(1, n)
#define NC_T1_2() NC_T1(2)
#define NC_TN_2(n) NC_TN(2, n)
#define NC_T1_3() NC_T1(3)
#define NC_TN_3(n) NC_TN(3, n)
#define NC_T1_4() NC_T1(4)
#define NC_TN_4(n) NC_TN(4, n)
    for (size_t cb0 = 0; cb0 < p->Cb; cb0 += p->cchunk) {
        size_t cb1 = KL_MIN(p->Cb, cb0 + p->cchunk);
        bool first = cb0 == 0, last = cb1 == p->Cb;
        switch (nb) {
            NC_CASE(1)
            NC_CASE(2)
#if NC_MAX_NB > 2
            NC_CASE(3)
            NC_CASE(4)
#endif
        default: break;
        }
    }
}

/* Row oh of a blocked max pooling: x one block of the input, y of the
 * output.  NaN as the reference: a NaN tap becomes the maximum and stays. */
void KL_SIMD_FN(nchwc_maxpool_row)(const kl_nchwc_pool_desc *d, const float *x, float *y, size_t oh) {
    ptrdiff_t ih0 = (ptrdiff_t)(oh * d->stride_h) - (ptrdiff_t)d->pad_top;
    size_t kh0 = ih0 < 0 ? (size_t)-ih0 : 0;
    size_t kh1 = (size_t)KL_MAX((ptrdiff_t)0, KL_MIN((ptrdiff_t)d->KH, (ptrdiff_t)d->H - ih0));
    y += oh * d->OW * 16;
    for (size_t ow = 0; ow < d->OW; ow++) {
        ptrdiff_t iw0 = (ptrdiff_t)(ow * d->stride_w) - (ptrdiff_t)d->pad_left;
        size_t kw0 = iw0 < 0 ? (size_t)-iw0 : 0;
        size_t kw1 = (size_t)KL_MAX((ptrdiff_t)0, KL_MIN((ptrdiff_t)d->KW, (ptrdiff_t)d->W - iw0));
        V m[NC_VPB];
        for (int h = 0; h < NC_VPB; h++) m[h] = v_set1(-INFINITY);
        for (size_t kh = kh0; kh < kh1; kh++)
            for (size_t kw = kw0; kw < kw1; kw++) {
                const float *v = x + ((size_t)(ih0 + (ptrdiff_t)kh) * d->W + (size_t)(iw0 + (ptrdiff_t)kw)) * 16;
                for (int h = 0; h < NC_VPB; h++) {
                    V t = v_load(v + h * VL);
#if VL == 16
                    __mmask16 nan_m = _mm512_cmp_ps_mask(m[h], m[h], _CMP_UNORD_Q);
                    m[h] = _mm512_mask_blend_ps(nan_m, _mm512_max_ps(m[h], t), m[h]);
#else
                    __m256 nan_m = _mm256_cmp_ps(m[h], m[h], _CMP_UNORD_Q);
                    m[h] = _mm256_blendv_ps(_mm256_max_ps(m[h], t), m[h], nan_m);
#endif
                }
            }
        for (int h = 0; h < NC_VPB; h++) v_store(y + ow * 16 + h * VL, m[h]);
    }
}

#endif /* KL_SIMD_NAME */
#endif
