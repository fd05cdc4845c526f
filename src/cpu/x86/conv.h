/*
 * conv.h — 2-D convolution, NCHW float32, with groups, strides, pads and
 * dilations, and the GEMM epilogue fused (per-channel bias, residual Z of the
 * output's shape, activation):  Y = act(conv(X, W) + bias + Z).
 * Prepare once (choose the algorithm, pack the weights), run many times with
 * a caller-provided workspace (run never allocates).
 *
 * Algorithms (tactics), each forceable through desc.algo:
 *   conv.gemm1x1   1x1 kernels, no padding, stride 1: Y_g = W_g * X_g as GEMM
 *   conv.im2col    any shape: im2col of a tile of output pixels straight into
 *                  packed GEMM panels, then the packed GEMM (bounded workspace)
 *   conv.depthwise group == C == M: direct kernels vectorized over width
 *                  (any kernel size/stride/dilation; 3x3 and 5x5 fast paths)
 *   conv.direct    group 1, at most 4 input channels, kernels up to 7x7,
 *                  stride 1 or 2, dilation 1 (network stems): every tap's
 *                  input vector feeds 8 output channels' accumulators, no
 *                  im2col matrix (K = C*KH*KW of 27 filled GEMM panels poorly)
 *   conv.winograd  3x3, stride 1, dilation 1: F(4x4, 3x3); weights
 *                  transformed at prepare, 36 packed GEMMs per block of
 *                  tiles, input/output transforms vectorized over 16 tiles
 *   conv.winograd2 the same geometry as F(2x2, 3x3): 16 GEMMs on 4x4
 *                  tiles; for small maps (7x7) where F(4x4)'s 4 tiles per
 *                  image leave its 36 GEMMs 4 columns wide; the products
 *                  are transposed (tiles are the GEMM's 6-row side, output
 *                  channels its 16-64 wide vectors)
 *   conv.winograd4t F(4x4, 3x3) with conv.winograd2's transposed products:
 *                  for maps of 32-127 tiles (28x28), where conv.winograd's
 *                  products are only 49 columns wide
 */
#ifndef KL_CPU_X86_CONV_H
#define KL_CPU_X86_CONV_H

#include <stdbool.h>
#include <stddef.h>

#include "cpu/threadpool.h"
#include "cpu/x86/isa.h"
#include "cpu/x86/vecmath.h"
#include "kiln.h"

typedef enum kl_conv_algo {
    KL_CONV_AUTO = 0,
    KL_CONV_GEMM1X1,
    KL_CONV_IM2COL,
    KL_CONV_DEPTHWISE,
    KL_CONV_WINOGRAD,
    KL_CONV_IM2ROW, /* im2col transposed: pixels are the GEMM's rows, channels its vector columns */
    KL_CONV_WINOGRAD2, /* Winograd F(2x2, 3x3), products transposed: for 7x7 maps */
    KL_CONV_WINOGRAD4T, /* Winograd F(4x4, 3x3), products transposed: for 14x14 / 28x28 maps */
    KL_CONV_DIRECT, /* few input channels (stems): direct, vectorized over output columns */
    KL_CONV_IGEMM,  /* few input channels (stems): implicit GEMM per output row, vectors over output channels */
    KL_CONV_IGEMMK, /* implicit GEMM over bands of output pixels in K blocks, vectors over output channels */
    KL_CONV_ALGO_COUNT
} kl_conv_algo;

typedef struct kl_conv2d_desc {
    size_t N, C, H, W;    /* input X [N, C, H, W] */
    size_t M;             /* output channels; W is [M, C/group, KH, KW] */
    size_t KH, KW;
    size_t group;         /* 0 means 1 */
    size_t stride_h, stride_w;             /* 0 means 1 */
    size_t pad_top, pad_left, pad_bottom, pad_right;
    size_t dil_h, dil_w;                   /* 0 means 1 */
    kl_act act;
    kl_conv_algo algo; /* KL_CONV_AUTO: chosen by shape */
    kl_isa isa;        /* KL_ISA_AUTO: the active level */
    int threads;       /* the largest pool the workspace must serve (0 = 1) */
} kl_conv2d_desc;

typedef struct kl_conv2d_plan kl_conv2d_plan;

/* "conv.gemm1x1", ... ("conv.auto" for KL_CONV_AUTO). */
const char *kl_conv_algo_name(kl_conv_algo algo);
/* Parses a tactic name; false if unknown. */
bool kl_conv_algo_parse(const char *name, kl_conv_algo *out);
/* True when `algo` can run `d` (AUTO: always, for a valid desc). */
bool kl_conv2d_supports(const kl_conv2d_desc *d, kl_conv_algo algo);
/* True when Winograd can run d and should beat im2col: its products are
 * GEMMs over the channels of a group, so it needs at least 8 input and
 * output channels per group (never depthwise layers), and its transforms
 * pay only over at least 16 tiles of 4x4 outputs (all N images).  The AUTO
 * choice and the conv.winograd tactic both require it; forcing
 * KL_CONV_WINOGRAD on the kernel runs whatever kl_conv2d_supports takes. */
bool kl_conv2d_winograd_pays(const kl_conv2d_desc *d);
/* True when F(2x2, 3x3) should beat both F(4x4) and im2row/im2col: at the
 * AVX-512 level (d->isa resolved), the
 * shapes Winograd can run with >= 32 channels per group in and out where
 * F(4x4) does not pay (under 16 tiles of 4x4) but there are at least 16
 * tiles of 2x2 over the N images (ResNet's 7x7 stage: 16 tiles). */
bool kl_conv2d_winograd2_pays(const kl_conv2d_desc *d);
/* True when transposed F(4x4) should beat conv.winograd: at the AVX-512
 * level (AVX2's 6x16 tiles made it 1.8x slower), F(4x4) pays and
 * an image has 32 to 127 tiles of 4x4 (28x28 outputs: 49) with >= 32
 * channels per group in and out.  At 14x14 (16 tiles) conv.winograd was
 * faster (1.03-1.25 vs 1.27-1.41 ms, 256 channels, avx512). */
bool kl_conv2d_winograd4t_pays(const kl_conv2d_desc *d);
/* True when im2row should beat im2col/gemm1x1: small maps (at most 64
 * output pixels per image, e.g. ResNet's 7x7 stage) where im2col's and
 * gemm1x1's 16-pixel vectors waste lanes (49 pixels fill 64) and im2row's
 * 6-pixel rows waste fewer (54), with at least 16 output channels per group.
 * 1x1 stride 1 included since its write-back is transposed in registers
 * (ResNet-50 1x1 512->2048 at 7x7: 1.19 ms gemm1x1, 1.04 ms im2row). */
bool kl_conv2d_im2row_pays(const kl_conv2d_desc *d);
/* conv.igemm where it beats conv.direct and im2col: stems (<= 4 input
 * channels, kernels over 1x1) with a multiple of 64 or at most 16 output
 * channels. */
bool kl_conv2d_igemm_pays(const kl_conv2d_desc *d);
/* conv.direct's largest input channel count (AUTO takes it for any such
 * layer it can run with a kernel larger than 1x1). */
#define KL_CONV_DIRECT_MAX_C 4
#define KL_CONV_IGEMM_MAX_C 16   /* conv.igemm: input channels (a band of padded rows per thread) */
#define KL_CONV_IGEMM_MAX_K 1024 /* conv.igemm: C * KH * KW */

/* Checks d, chooses (or takes) the algorithm and packs W (and copies bias,
 * [M] or NULL) into a new plan.  Fails with KILN_ERR_INVALID_ARGUMENT for a
 * bad geometry, KILN_ERR_UNSUPPORTED when a forced algorithm cannot run d,
 * KILN_ERR_NO_MEMORY. */
kiln_status kl_conv2d_prepare(const kl_conv2d_desc *d, const float *W, const float *bias, kl_conv2d_plan **out);
void kl_conv2d_destroy(kl_conv2d_plan *p);

/* Pre-packed plans (an engine's packed section): kl_conv2d_export writes
 * the plan's packed weights, bias and interleaved depthwise weights with a
 * header into dst when cap is enough and returns the bytes the form takes
 * (0 for a plan without packed weights).  kl_conv2d_adopt makes the plan d
 * describes around such bytes (4-byte aligned; 64 in an engine file, alive
 * as long as the plan: an engine's mapping), without copying or packing; the header must match
 * the plan d gives (algorithm, level, sizes), else KILN_ERR_ENGINE_MISMATCH. */
size_t kl_conv2d_export(const kl_conv2d_plan *p, void *dst, size_t cap);
kiln_status kl_conv2d_adopt(const kl_conv2d_desc *d, const void *src, size_t size, kl_conv2d_plan **out);

kl_conv_algo kl_conv2d_algo(const kl_conv2d_plan *p);
/* Output height/width. */
void kl_conv2d_out_hw(const kl_conv2d_plan *p, size_t *OH, size_t *OW);
/* Workspace bytes for a run of desc.N images on up to `threads` threads /
 * on desc.threads; _n: for a run of N images (kl_conv2d_run_n). */
size_t kl_conv2d_workspace_size(const kl_conv2d_plan *p, int threads);
size_t kl_conv2d_workspace_size_n(const kl_conv2d_plan *p, int threads, size_t N);
size_t kl_conv2d_workspace_bytes(const kl_conv2d_plan *p);
/* Bytes of packed weights (and bias) the plan holds. */
size_t kl_conv2d_packed_bytes(const kl_conv2d_plan *p);

/* Y = act(conv(X) + bias + Z).  Z (same shape as Y) may be NULL and may equal
 * Y; X must not overlap Y.  workspace: kl_conv2d_workspace_size(p, threads of
 * the pool, capped at desc.threads) bytes; a pool larger than desc.threads
 * uses only desc.threads threads.  Never allocates. */
kiln_status kl_conv2d_run(kl_pool *pool, const kl_conv2d_plan *p, const float *X, const float *Z, float *Y,
                          void *workspace);
/* The same on N images (any N, whatever desc.N was at prepare): one
 * parallel loop over the whole batch, so threads split images and tiles
 * together and packed weights are shared.  workspace:
 * kl_conv2d_workspace_size_n(p, threads, N) bytes (conv.im2row stacks
 * several images of a 1x1 layer on small maps into one product, so its
 * workspace grows with N up to IM2ROW_ROWS pixels). */
kiln_status kl_conv2d_run_n(kl_pool *pool, const kl_conv2d_plan *p, size_t N, const float *X, const float *Z,
                            float *Y, void *workspace);

/* ---- conv.scaled1x1: a 1x1 convolution of X scaled per (image, channel) -------
 * Y = act(W * (X . S) + bias + Z) for a GEMM1X1 plan (1x1, stride 1, no
 * pads, group 1), S[n * s_stride + c] the scale of image n's channel c (a
 * squeeze-excite gate): the scale goes into a copy of the packed weights,
 * W'[m][c] = W[m][c] * S[n][c] (M x C multiplies per image instead of C x
 * H x W for the unfused Mul), and the GEMM reads X in place.  s_stride 0:
 * one scale vector for every image.  workspace:
 * kl_conv2d_scaled_workspace_size(p, threads, N) bytes.  Fails with
 * KILN_ERR_INVALID_ARGUMENT for another algorithm. */
size_t kl_conv2d_scaled_workspace_size(const kl_conv2d_plan *p, int threads, size_t N);
kiln_status kl_conv2d_run_scaled(kl_pool *pool, const kl_conv2d_plan *p, size_t N, const float *X, const float *S,
                                 size_t s_stride, const float *Z, float *Y, void *workspace);

/* ---- conv.expand_dw: a 1x1 convolution feeding a depthwise one ---------------
 * Y = act2(dw(act1(W1 * X + b1)) + b2), the inverted-residual block's expand
 * and depthwise layers in one pass: for a band of output rows, the 1x1
 * product of the input rows under it (plus the halo) goes into a per-thread
 * buffer the size of L2, the depthwise kernel reads it from there, and the
 * rows the next band shares stay in the buffer (moved to its top), so the
 * expanded tensor (4.8 MB at MobileNet-V2's 112x112 stage) never goes
 * through memory.  e: the 1x1 layer (stride 1, no pads, group 1); dw: the
 * depthwise layer on its output (C = e.M), a geometry the vector kernels
 * run on the unpadded plane (kl_conv2d_expand_dw_supports).  Never
 * allocates at run. */
typedef struct kl_convdw_plan kl_convdw_plan;
/* True when the pair can run fused at dw->isa (AVX2/AVX-512: 3x3 or 5x5,
 * strides 1 or 2 equal both ways, dilation 1, pads below the kernel). */
bool kl_conv2d_expand_dw_supports(const kl_conv2d_desc *e, const kl_conv2d_desc *dw);
/* band_rows: output rows per band, 0 = as many as fit half of L2 (tests
 * force small bands to cover the halo reuse). */
kiln_status kl_convdw_prepare(const kl_conv2d_desc *e, const float *W1, const float *b1, const kl_conv2d_desc *dw,
                              const float *W2, const float *b2, size_t band_rows, kl_convdw_plan **out);
void kl_convdw_destroy(kl_convdw_plan *p);
void kl_convdw_out_hw(const kl_convdw_plan *p, size_t *OH, size_t *OW);
/* Workspace bytes for up to `threads` threads (capped at dw->threads). */
size_t kl_convdw_workspace_size(const kl_convdw_plan *p, int threads);
/* N images of X [N, e.C, e.H, e.W] into Y [N, dw.M, OH, OW]. */
kiln_status kl_convdw_run_n(kl_pool *pool, const kl_convdw_plan *p, size_t N, const float *X, float *Y,
                            void *workspace);

#endif
