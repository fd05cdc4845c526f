/*
 * kernels.h — internal contract between the ISA-free drivers (gemm.c, conv.c,
 * vecmath.c) and the per-ISA kernel files.  One kl_x86_ops table per level;
 * the drivers call kernels only through it (MLAS-style dispatch table).
 *
 * Packed formats, the same for every level (so a packed weight never ties an
 * engine to one ISA):
 *  - A: micro-panels of KL_SGEMM_MR rows, each stored k-major ([k][MR]),
 *    rows past M zero-filled;
 *  - B: panels of KL_SGEMM_NP columns, each stored k-major ([k][16]),
 *    columns past N zero-filled.
 */
#ifndef KL_CPU_X86_KERNELS_H
#define KL_CPU_X86_KERNELS_H

#include <stddef.h>

#include "cpu/x86/isa.h"
#include "cpu/x86/vecmath.h"

#define KL_SGEMM_MR 6
#define KL_SGEMM_NP 16

/* Epilogue state of one micro-kernel call; pointers are already offset to
 * the tile's first row/column. */
typedef struct kl_ukargs {
    float alpha, beta;
    int first; /* first K block: C = alpha*AB + beta*C (C unread if beta==0) */
    int last;  /* last K block: add biases and Z, apply the activation */
    const float *col_bias; /* [n] or NULL */
    const float *row_bias; /* [m] or NULL */
    const float *z;        /* [m x n] with row stride ldz, or NULL */
    size_t ldz;
    kl_act act;
    const float *pf; /* kc cache lines (16 floats apart) to prefetch, one per k
                        step (the next call's B, while this one's is in
                        cache), or NULL */
    size_t pf_lines; /* fetch only the first pf_lines of them (0: kc) */
    size_t pf_n, pf_ps; /* streams fetched per k step (0 or 1: one), pf_ps floats apart */
} kl_ukargs;

/* C[m x n] (row stride ldc) <- epilogue(A_panel * B_panels) over kc steps.
 * a: one A micro-panel ([kc][MR]); b: the first B panel, 16 floats per k
 * step and bk floats between k steps (16 when packed; a row stride when B is
 * read in place), the next panels bstride floats apart; m <= MR, n <= nr.
 * Every panel the call covers must hold 16 readable floats per k step. */
typedef void (*kl_sgemm_ukernel_fn)(size_t kc, const float *a, const float *b, size_t bstride, size_t bk, float *c,
                                    size_t ldc, size_t m, size_t n, const kl_ukargs *u);

/* Depthwise 2-D convolution of one channel plane (NCHW, multiplier 1) read
 * from a zero-padded copy of the input plane: padding is already applied, so
 * y[oh][ow] = bias + sum w[kh][kw] * x[(oh*SH + kh*DH) * WP + ow*SW + kw*DW]
 * never leaves the padded plane (HP x WP). */
typedef struct kl_dw_args {
    const float *x; /* padded plane [HP x WP]; direct: the input plane [H x W] */
    const float *w; /* [KH x KW] */
    float bias;
    const float *z; /* residual [OH x OW] or NULL */
    float *y;       /* [OH x OW] */
    size_t HP, WP, OH, OW, KH, KW, SH, SW, DH, DW;
    kl_act act;
    /* direct (kl_x86_dw_direct, AVX2/AVX-512 only): x is unpadded, H x W
     * with PT rows and PL columns of implicit zeros before it */
    int direct;
    size_t H, W, PT, PL;
} kl_dw_args;
/* True when the vector kernels of level isa run this depthwise geometry on
 * the unpadded plane (3x3 or 5x5, strides 1 or 2 equal both ways,
 * dilation 1, pads below the kernel). */
bool kl_x86_dw_direct(kl_isa isa, size_t KH, size_t KW, size_t SH, size_t SW, size_t DH, size_t DW, size_t pt,
                      size_t pl, size_t pb, size_t pr);
typedef void (*kl_dwconv_fn)(const kl_dw_args *d);

/* Depthwise convolution of a block of up to KL_DWCB_C channels with the
 * channels interleaved (conv.depthwise on small maps, where vectors along
 * rows of 7 or 14 outputs leave lanes idle): the block's planes are
 * transposed into a zero-padded [HB][WB][KL_DWCB_C] buffer, each output
 * vector holds one pixel of every channel (taps are FMAs with a weight
 * vector), and the result is transposed back.  K x K (3 or 5), stride S (1
 * or 2) both ways, dilation 1.  y = act(conv(x) + bias + z), z may be NULL
 * or equal y. */
#define KL_DWCB_C 16  /* channels per block (AVX2 runs two halves of 8) */
#define KL_DWCB_OB 8  /* output pixels per register block */
typedef struct kl_dwcb_args {
    const float *x; /* the block's first input plane [H][W]; channel c at x + c*H*W */
    const float *w; /* [K*K][KL_DWCB_C]: tap t of channel c at w[t*KL_DWCB_C + c] */
    const float *bias; /* [KL_DWCB_C] */
    const float *z; /* residual planes [OH][OW] (channel c at z + c*OH*OW) or NULL */
    float *y;       /* output planes [OH][OW], channel c at y + c*OH*OW */
    float *buf;     /* kl_dwcb_buf_floats floats, 64-byte aligned; its input
                       part zero where no input pixel lands (cleared by the
                       caller once: each block rewrites the same positions) */
    size_t nc;      /* channels in the block, 1..KL_DWCB_C */
    size_t H, W, OH, OW, K, S, PT, PL;
    kl_act act;
} kl_dwcb_args;
/* Padded input extents of the interleaved buffer and its float count. */
static inline void kl_dwcb_dims(size_t OH, size_t OW, size_t K, size_t S, size_t *HB, size_t *WB, size_t *OWP) {
    *OWP = (OW + KL_DWCB_OB - 1) / KL_DWCB_OB * KL_DWCB_OB;
    *HB = (OH - 1) * S + K;
    *WB = (*OWP - 1) * S + K;
}
static inline size_t kl_dwcb_buf_floats(size_t OH, size_t OW, size_t K, size_t S) {
    size_t HB, WB, OWP;
    kl_dwcb_dims(OH, OW, K, S, &HB, &WB, &OWP);
    return (HB * WB + OH * OWP) * KL_DWCB_C;
}
typedef void (*kl_dwcb_fn)(const kl_dwcb_args *a);

/* Winograd F(4x4, 3x3) transforms of up to 16 tiles at once (lane l = tile
 * t0+l; tiles are numbered image by image, T per image, row-major inside an
 * image with TW per row; image n's plane is at x + n*xstride).  Input: the
 * 6x6 patches of one channel plane at (4*th - PT, 4*tw - PL), zero outside, become
 * B^T d B, element xi (0..35) at dst + xi*xs + l (lanes >= nt are zero).
 * Output: A^T m A of the 36 GEMM results at m + xi*xs + l, plus bias and
 * z, activation, stored into the 4x4 blocks of y that lie inside OH x OW. */
typedef struct kl_wino_in {
    const float *x;
    size_t xstride, T;
    size_t H, W, PT, PL, TW, t0, nt;
    float *dst;
    size_t xs;
    /* cgp 0: lane l of product k at dst[k*xs + l]; else the transposed
     * Winograd's A panels of 6 tiles: tile q = q0 + l at
     * dst[k*xs + (q/6)*6*cgp + q%6] (dst at the channel's row), lanes
     * l < nw written (those past nt as zeros) */
    size_t cgp, q0, nw;
} kl_wino_in;
typedef struct kl_wino_out {
    const float *m;
    size_t xs;
    float bias;
    const float *z; /* plane [OH x OW] or NULL, image n at z + n*ystride */
    float *y;       /* plane [OH x OW], image n at y + n*ystride */
    size_t ystride, T;
    size_t OH, OW, TW, t0, nt;
    kl_act act;
} kl_wino_out;
/* Output transform of conv.winograd2 (F(2x2)) and conv.winograd4t (F(4x4)),
 * whose products are transposed (tiles are the GEMM's rows, channels its
 * columns): for tiles l < nt (tile t0 + l of one image, TW per row) and
 * channels m < mc, the 16 (36) products at c[xi*xs + l*ldc + m] give the
 * 2x2 (4x4) outputs o[(oh*OW + ow)*ldo + m] = A^T M A + bias[m] (bias may
 * be NULL); outputs outside OH x OW are not written. */
typedef struct kl_wino2_out {
    const float *c;
    size_t xs, ldc;
    const float *bias;
    float *o;
    size_t ldo, OH, OW, TW, t0, nt, mc;
} kl_wino2_out;

/* im2col rows [k0, k0+ks) (k = c*KH*KW + kh*KW + kw) for output pixels
 * [p0, p0+np) (row-major in OH x OW, OW columns) of one image and group,
 * into panels of 16 pixels: element (k, pixel p0+j) at
 * dst + (j/16)*ks*16 + (k-k0)*16 + j%16; lanes past np and taps in the
 * padding are zero.  x: the group's first channel plane [Cg][H][W].  The
 * vector kernels index with int32: the driver calls them only when
 * Cg*H*W < 2^31. */
typedef struct kl_im2col_args {
    const float *x;
    size_t H, W, OW, KH, KW, SH, SW, DH, DW, PT, PL;
    size_t k0, ks, p0, np;
    float *dst;
} kl_im2col_args;

/* im2row's write-back: y[m*ystride + q] = act(ct[q*ldc + m] + z[m*ystride + q])
 * for channels m < mc and pixels q < nq (the product, pixel-major, back to
 * channel-major planes); z may be NULL.  Columns up to ldc (a multiple of
 * 16) of the nq rows of ct are readable. */
typedef struct kl_im2row_out {
    const float *ct;
    size_t ldc, nq, mc;
    const float *z;
    float *y;
    size_t ystride;
    kl_act act;
} kl_im2row_out;

/* Direct convolution (conv.direct) of one image for output rows
 * [oh0, oh1) and every output channel: few input channels (the stems,
 * C*KH*KW small), group 1, dilation 1, stride S (1 or 2) both ways.
 * w: the weights packed in blocks of KL_DIRECT_MB output channels,
 * [M_pad/MB][C*KH*KW][MB] (channels past M zero); bias [M_pad] (zeros when
 * the layer has none).  y = act(conv(x) + bias + z), z may be NULL or y. */
#define KL_DIRECT_MB 8
typedef struct kl_direct_args {
    const float *x; /* [C][H][W] */
    const float *w, *bias;
    const float *z; /* [M][OH][OW] or NULL */
    float *y;       /* [M][OH][OW] */
    size_t C, H, W, M, KH, KW, S, PT, PL, OH, OW;
    size_t oh0, oh1;
    kl_act act;
    /* y and z hold rows yrow0.. of each channel, ystride floats apart (0:
     * OH*OW): conv.expand_dw's stem writes its band buffer */
    size_t ystride, yrow0;
} kl_direct_args;
/* Offset in y and z of output channel m's row oh. */
static inline size_t kl_direct_yoff(const kl_direct_args *a, size_t m, size_t oh) {
    return m * (a->ystride ? a->ystride : a->OH * a->OW) + (oh - a->yrow0) * a->OW;
}

/* conv.igemm: one output row of a convolution with few input channels as
 * an implicit GEMM, C^T[q][m] = bias[m] + sum_k x[q*S + off[k]] * B[k][m]
 * for pixels q < nq and every channel (the im2row product without its
 * matrix: each tap is a broadcast from the padded input rows).  B: the
 * weights transposed in panels of 16 channels ([K][16], bps floats apart,
 * zero past M); bias: round_up(M, 16) floats.  ct: pixel-major, ldc (a
 * multiple of 16) floats per pixel, rows up to round_up(nq, 24) written. */
typedef struct kl_igemm_row {
    const float *x;     /* the padded input at pixel 0's window origin */
    size_t S;           /* floats between two pixels' window origins */
    const int32_t *off; /* [K] tap offsets from a window origin */
    size_t K;
    const float *b;
    size_t bps;
    const float *bias;
    size_t M, nq;
    float *ct;
    size_t ldc;
} kl_igemm_row;
#define KL_IGEMM_ROW_PAD 24 /* pixels per row the kernels may compute past nq, rounded up */

/* conv.igemmk: taps [k0, k1) of a band of output pixels as an implicit
 * GEMM, ct[q][m] (+)= sum_k x[poff[q] + off[k]] * B[k][m] for pixels q < nq
 * and channels m < M (B, bps: as kl_igemm_row's, from the call's first
 * channel).  With bias the sums start from bias[m]; without, from ct (the
 * earlier taps' partial sums).  poff: round_up(nq, KL_IGEMM_ROW_PAD)
 * entries (past nq any valid origin); ct: ldc floats per pixel, rows up to
 * round_up(nq, KL_IGEMM_ROW_PAD) written. */
typedef struct kl_igemm_blk {
    const float *x;      /* the padded band */
    const int32_t *poff; /* pixel window origins in x */
    const int32_t *off;  /* tap offsets from a window origin */
    size_t k0, k1;
    const float *b;
    size_t bps;
    const float *bias; /* NULL: accumulate onto ct */
    size_t M, nq;
    float *ct;
    size_t ldc;
} kl_igemm_blk;

typedef struct kl_x86_ops {
    kl_isa isa;
    size_t nr; /* columns one sgemm micro-kernel call covers (multiple of 16) */
    kl_sgemm_ukernel_fn sgemm;
    void (*vec_act)(kl_act act, float *x, size_t n);
    kl_dwconv_fn dwconv;
    void (*wino_in)(const kl_wino_in *a);
    void (*wino_out)(const kl_wino_out *a);
    void (*wino2_in)(const kl_wino_in *a);   /* F(2x2, 3x3): 4x4 input tiles at stride 2 */
    void (*wino2_out)(const kl_wino2_out *a); /* 16 products -> 2x2 outputs, vectors over channels */
    void (*wino4t_out)(const kl_wino2_out *a); /* 36 products -> 4x4 outputs, vectors over channels */
    double (*fma_loop)(long iters); /* runs iters x (FMA block); returns flops done */
    void (*im2col)(const kl_im2col_args *a);
    void (*im2row_out)(const kl_im2row_out *a);
    void (*conv_direct)(const kl_direct_args *a);
    kl_dwcb_fn dwcb; /* NULL at the generic level (the driver does not use it there) */
    void (*igemm_row)(const kl_igemm_row *a);
    void (*igemm_blk)(const kl_igemm_blk *a);
} kl_x86_ops;

/* The table of level `isa` (resolved: AUTO -> active, capped at best). */
const kl_x86_ops *kl_x86_ops_get(kl_isa isa);

/* Generic (portable C) kernels, defined in gemm.c / vecmath.c / conv.c. */
void kl_x86_generic_sgemm_kernel(size_t kc, const float *a, const float *b, size_t bstride, size_t bk, float *c,
                                 size_t ldc, size_t m, size_t n, const kl_ukargs *u);
void kl_x86_generic_vec_act(kl_act act, float *x, size_t n);
void kl_x86_generic_dwconv(const kl_dw_args *d);
void kl_x86_generic_wino_in(const kl_wino_in *a);
void kl_x86_generic_wino_out(const kl_wino_out *a);
void kl_x86_generic_wino2_in(const kl_wino_in *a);
void kl_x86_generic_wino2_out(const kl_wino2_out *a);
void kl_x86_generic_wino4t_out(const kl_wino2_out *a);
void kl_x86_generic_im2col(const kl_im2col_args *a);
void kl_x86_generic_im2row_out(const kl_im2row_out *a);
void kl_x86_generic_conv_direct(const kl_direct_args *a);
void kl_x86_generic_igemm_row(const kl_igemm_row *a);
void kl_x86_generic_igemm_blk(const kl_igemm_blk *a);

#if defined(__x86_64__) || defined(_M_X64)
#define KL_X86_DECLARE(isa)                                                                              \
    void kl_x86_##isa##_sgemm_kernel(size_t kc, const float *a, const float *b, size_t bstride, size_t bk, \
                                     float *c, size_t ldc, size_t m, size_t n, const kl_ukargs *u);      \
    void kl_x86_##isa##_vec_act(kl_act act, float *x, size_t n);                                        \
    void kl_x86_##isa##_dwconv(const kl_dw_args *d);                                                     \
    void kl_x86_##isa##_wino_in(const kl_wino_in *a);                                                    \
    void kl_x86_##isa##_wino_out(const kl_wino_out *a);                                                  \
    void kl_x86_##isa##_wino2_in(const kl_wino_in *a);                                                   \
    void kl_x86_##isa##_wino2_out(const kl_wino2_out *a);                                                \
    void kl_x86_##isa##_wino4t_out(const kl_wino2_out *a);                                               \
    double kl_x86_##isa##_fma_loop(long iters);                                                          \
    void kl_x86_##isa##_im2col(const kl_im2col_args *a);                                                \
    void kl_x86_##isa##_im2row_out(const kl_im2row_out *a);                                             \
    void kl_x86_##isa##_conv_direct(const kl_direct_args *a);                                           \
    void kl_x86_##isa##_dwcb(const kl_dwcb_args *a);                                                     \
    void kl_x86_##isa##_igemm_row(const kl_igemm_row *a);                                               \
    void kl_x86_##isa##_igemm_blk(const kl_igemm_blk *a);
KL_X86_DECLARE(avx2)
KL_X86_DECLARE(avx512)
#undef KL_X86_DECLARE
#define KL_HAVE_X86 1
#endif

#endif
