/*
 * nchwc.h — convolutions on channel-blocked activations (NCHWc, c = 16):
 * a tensor of C channels is [N, ceil(C/16), H, W, 16], channel k of pixel
 * (h, w) at block k/16, lane k%16; lanes past C are padding (zeros when
 * kiln wrote them with kl_nchwc_reorder_in, finite values otherwise; the
 * kernels never let them reach a real channel: packed weights are zero
 * there).
 *
 * Why: a k x k or 1x1 convolution on NCHW reads K rows of X and writes M
 * rows of Y, each a separate stream (ResNet-50's 64->256 1x1 at 56x56:
 * 256 output streams of 12.5 KiB strides).  Blocked, a tile of 6 output
 * pixels x 64 output channels reads one contiguous run of input per block
 * and tap and writes 4 runs of 384 bytes, and no operand is packed per
 * run: the same layer ran at 150 GFLOP/s from cold caches against 99 for
 * conv.gemm1x1 (Ice Lake, one thread).  The layout pass
 * (src/passes/layout.c) keeps activations blocked through chains of these
 * layers and reorders at the edges.
 *
 * How a run walks the output (the plan picks; KILN_NCHWC_GFLAT=0|1 and
 * KILN_NCHWC_CCHUNK=N override, for tests and benchmarks):
 * - rows: tiles of 6-8 pixels along each output row, the border pixels
 *   (taps clipped by the pads) one at a time; maps wider than 32 with pads,
 *   depthwise layers and stems;
 * - flat (1x1, stride 1, no pads) and gflat (other dense layers: no pads,
 *   or at most 32 wide): an image's OH*OW output pixels are one row, each
 *   tile's pixels with their own window origins, in segments of about 96
 *   pixels; padded layers first copy the input into a zero-padded
 *   workspace, so no tap is ever clipped.  On ResNet-50's 7x7 and 14x14
 *   layers this took the 3x3 from 55 to 93-125 GFLOP/s and the strided
 *   1x1 downsamples from 67 to 127 (Ice Lake, one thread).
 * Dense layers pass over the input channels in chunks whose packed
 * weights fit L1 (about 32 KiB), the partial sums kept in Y, the next
 * chunk's weights prefetched into L2 while the current one runs.
 *
 * Dense convolutions (group 1) with dilation 1, any kernel, stride and
 * pads; depthwise ones (group == C == M).  The input may also be plain
 * NCHW (in_nchw: a stem's few channels), the output is always blocked.
 * Y = act(conv(X, W) + bias + Z), Z blocked like Y.
 */
#ifndef KL_CPU_X86_NCHWC_H
#define KL_CPU_X86_NCHWC_H

#include <stdbool.h>
#include <stddef.h>

#include "cpu/threadpool.h"
#include "cpu/x86/isa.h"
#include "cpu/x86/vecmath.h"
#include "kiln.h"

#define KL_NCHWC_B 16

typedef struct kl_nchwc_desc {
    size_t C, H, W;       /* input channels and map */
    size_t M;             /* output channels; W is [M, C/group, KH, KW] */
    size_t KH, KW;
    size_t stride_h, stride_w;
    size_t pad_top, pad_left, pad_bottom, pad_right;
    bool depthwise;       /* group == C == M (else group 1) */
    bool in_nchw;         /* X is [N, C, H, W] (dense only) */
    kl_act act;
    kl_isa isa;           /* KL_ISA_AUTO: the active level */
} kl_nchwc_desc;

typedef struct kl_nchwc_plan kl_nchwc_plan;

/* Blocks of C channels. */
static inline size_t kl_nchwc_blocks(size_t C) { return (C + KL_NCHWC_B - 1) / KL_NCHWC_B; }

/* Checks the geometry and packs W ([M, C/group, KH, KW]) and bias ([M] or
 * NULL); *out is freed with kl_nchwc_destroy. */
kiln_status kl_nchwc_prepare(const kl_nchwc_desc *d, const float *W, const float *bias, kl_nchwc_plan **out);
void kl_nchwc_destroy(kl_nchwc_plan *p);
void kl_nchwc_out_hw(const kl_nchwc_plan *p, size_t *OH, size_t *OW);
const kl_nchwc_desc *kl_nchwc_plan_desc(const kl_nchwc_plan *p);

/* N images: X (blocked, or NCHW with in_nchw), Z (blocked like Y, or
 * NULL; not Y's memory), Y [N, ceil(M/16), OH, OW, 16].  workspace: at
 * least kl_nchwc_workspace_size(p, N) bytes, 64-byte aligned (NULL when
 * that is 0). */
size_t kl_nchwc_workspace_size(const kl_nchwc_plan *p, size_t N);
kiln_status kl_nchwc_run(kl_pool *pool, const kl_nchwc_plan *p, size_t N, const float *X, const float *Z, float *Y,
                         void *workspace);

/* NCHW [N, C, HW] -> blocked [N, ceil(C/16), HW, 16], padding lanes zero. */
void kl_nchwc_reorder_in(kl_pool *pool, size_t N, size_t C, size_t HW, const float *x, float *y);
/* Blocked -> NCHW, the padding lanes dropped. */
void kl_nchwc_reorder_out(kl_pool *pool, size_t N, size_t C, size_t HW, const float *x, float *y);

/* Max pooling of a blocked tensor, dilation 1; padded taps ignored (a
 * window entirely in the padding gives -inf, as the reference). */
typedef struct kl_nchwc_pool_desc {
    size_t C, H, W, KH, KW, stride_h, stride_w, pad_top, pad_left, OH, OW;
} kl_nchwc_pool_desc;
void kl_nchwc_maxpool(kl_pool *pool, const kl_nchwc_pool_desc *d, size_t N, const float *x, float *y);

#endif
