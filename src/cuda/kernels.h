/*
 * kernels.h — kiln's own CUDA C kernels (the .cu files of src/cuda), behind a C
 * boundary.  Host code (src/cuda/exec.c, C11) calls these launchers; each
 * launches on `stream`, never synchronizes, and returns cudaGetLastError()
 * after its launch(es) (cudaSuccess when there was nothing to do).
 *
 * Element types: float32 or float16 (kc_dtype); every kernel computes in
 * float32 and rounds to the storage type once per output element.  All
 * sizes and strides are in elements, not bytes.  No launcher allocates.
 * Tensors are dense row-major unless strides are given.  y may alias x
 * (in place) where a launcher says so.
 */
#ifndef KL_CUDA_KERNELS_H
#define KL_CUDA_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kc_dtype { KC_F32 = 0, KC_F16 = 1 } kc_dtype;

#define KC_MAX_RANK 8
#define KC_MAX_INPUTS 8   /* kiln.FusedElementwise inputs */
#define KC_MAX_STEPS 64   /* kiln.FusedElementwise steps */

/* Element size of t in bytes (4 or 2). */
static inline size_t kc_dtype_size(kc_dtype t) { return t == KC_F16 ? 2 : 4; }

/* ---- conversions and fills ------------------------------------------------------- */

/* y[i] = (yt) x[i] for i < n (float32 <-> float16, or a plain copy when
 * xt == yt).  Round to nearest even; float32 beyond float16's range becomes
 * +-inf, NaN stays NaN. */
cudaError_t kc_cast(void *y, kc_dtype yt, const void *x, kc_dtype xt, int64_t n, cudaStream_t stream);

/* y[i] = value for i < n. */
cudaError_t kc_fill(void *y, kc_dtype t, float value, int64_t n, cudaStream_t stream);

/* ---- float32 as TF32 pieces (3xTF32 products) ------------------------------------- */

/* x: outer rows of `inner` float32 (row stride ld); y: outer rows of 3 *
 * inner, segment s of row o = hi(x[o]) or, where bit s of lo_mask is set,
 * lo(x[o]) = x[o] - hi(x[o]), with hi(v) = v rounded to TF32 (10 mantissa
 * bits).  A product over [A_hi A_hi A_lo] (lo_mask 4) and [B_hi; B_lo;
 * B_hi] (lo_mask 2) on TF32 tensor cores is A_hi B_hi + A_hi B_lo + A_lo B_hi:
 * float32's accuracy (the dropped A_lo B_lo and the TF32 rounding of the lo
 * parts are ~2^-21 relative). */
cudaError_t kc_split_tf32(void *y, const void *x, int64_t outer, int64_t inner, int64_t ld, unsigned lo_mask,
                          cudaStream_t stream);

/* ---- strided copy (Transpose, Slice, Concat, Split, Expand, Pad's interior) ------- */

/* For every index (i0..i{rank-1}) < dims:
 *   y[sum i_k * ystride[k]] = x[sum i_k * xstride[k]]
 * Strides may be 0 (broadcast, Expand) or negative (Slice with negative
 * steps; x then points at the first element read).  elem_size is 1, 2, 4
 * or 8 bytes (any dtype: the bytes are moved, not converted).  rank 0..8;
 * rank 0 copies one element.  y must not overlap x.  After merging
 * axes: a contiguous innermost axis moves 16/8/4 bytes per thread where
 * sizes, strides and alignment allow; a transpose (y's innermost axis
 * strided in x, x's innermost axis another one) goes through 32x32
 * (64x64 for 1- and 2-byte elements) shared-memory tiles so reads and
 * writes both coalesce. */
cudaError_t kc_copy_nd(void *y, const int64_t *ystride, const void *x, const int64_t *xstride, const int64_t *dims,
                       int rank, size_t elem_size, cudaStream_t stream);

/* Several copies of elem_size-byte elements, as kc_copy_nd each, in one
 * launch where they allow (the parts of a Concat or a Split: at batch 1
 * each is a launch-bound kernel of its own); up to KC_COPY_MULTI plain
 * copies go together, transposes and any others run one by one.  The
 * copies must not overlap each other's outputs or read another's. */
#define KC_COPY_MULTI 8
typedef struct kc_copy_desc {
    void *y;
    const void *x;
    const int64_t *ys, *xs, *dims;
    int rank;
} kc_copy_desc;
cudaError_t kc_copy_multi(const kc_copy_desc *c, int n, size_t elem_size, cudaStream_t stream);

/* ---- epilogue: bias, residual, activation ------------------------------------------ */

/* For a tensor viewed as [outer, channels, inner] (NCHW: outer = N,
 * channels = C, inner = H*W; a GEMM output [M, N]: outer = M, channels = N,
 * inner = 1):
 *   y[o,c,i] = act(x[o,c,i] + bias[c] + z[o,c,i])
 * bias (channels values, same dtype t) and z (same shape and dtype) may be
 * NULL.  act is a kl_act value (src/ops/kiln.h): 0 none, 1 relu, 2 clip
 * (min(max(x, alpha), beta)), 3 leaky relu (alpha), 4 sigmoid, 5 silu,
 * 6 hard sigmoid (max(0, min(1, alpha*x + beta))), 7 hard swish, 8 gelu
 * (erf), 9 gelu (tanh), 10 mish, 11 tanh.  y may equal x (in place). */
cudaError_t kc_bias_act(void *y, const void *x, const void *bias, const void *z, int64_t outer, int64_t channels,
                        int64_t inner, int act, float alpha, float beta, kc_dtype t, cudaStream_t stream);
/* The same over [outer, channels, inner] views whose outer index has its own
 * stride per tensor (elements; channels * inner when dense): element
 * (o, c, i) of y is y[o * ldy + c * inner + i].  A convolution's epilogue
 * writing its channels of a wider tensor (a Concat's output: NHWC outer =
 * pixels and ld = that tensor's channels, NCHW outer = images and ld = its
 * channels * H * W), reading x from a dense buffer.  y must not overlap x
 * unless both are the same dense tensor. */
cudaError_t kc_bias_act_ld(void *y, int64_t ldy, const void *x, int64_t ldx, const void *bias, const void *z,
                           int64_t ldz, int64_t outer, int64_t channels, int64_t inner, int act, float alpha,
                           float beta, kc_dtype t, cudaStream_t stream);

/* ---- fused elementwise programs (kiln.FusedElementwise, and every plain
 *      unary/binary float op as a one-step program) --------------------------------- */

typedef struct kc_fe_program {
    int n_steps;                 /* 1..KC_MAX_STEPS */
    int op[KC_MAX_STEPS];        /* kl_fe_op values (src/ops/kiln_transformer.h) */
    int arg[KC_MAX_STEPS];       /* input index, -1 = imm[i], -2 = the running value itself */
    float imm[KC_MAX_STEPS];
    int n_inputs;                /* 1..KC_MAX_INPUTS */
    int rank;                    /* of y, 0..KC_MAX_RANK */
    int64_t dims[KC_MAX_RANK];   /* y's dims */
    /* strides of input j over y's dims (0 on broadcast axes), in elements */
    int64_t stride[KC_MAX_INPUTS][KC_MAX_RANK];
    /* y_strided: y's own strides over its dims (a channel slab of a wider
     * tensor; no overlap); else y is dense */
    int y_strided;
    int64_t ystride[KC_MAX_RANK];
} kc_fe_program;

/* y = program(inputs): per element, v = x0, then v = op_i(v, operand_i) for
 * each step, in float32 (the CPU reference computes each step in double
 * and rounds to the storage type; float32 is within the tolerance tiers).
 * Opcodes: 0 add, 1 sub (v - a), 2 rsub (a - v), 3 mul, 4 div (v / a),
 * 5 rdiv (a / v), 6 pow (v^a), 7 rpow (a^v), 16 relu, 17 sigmoid, 18 tanh,
 * 19 exp, 20 log, 21 erf, 22 sqrt, 23 neg, 24 abs, 25 reciprocal,
 * 26 leaky relu (alpha = imm), 27 softplus.  Inputs and y share dtype t.
 * y may alias an input that has y's shape and dense strides. */
cudaError_t kc_fe(void *y, const void *const *inputs, const kc_fe_program *p, kc_dtype t, cudaStream_t stream);

/* ---- normalization and softmax ------------------------------------------------------ */

/* Softmax over the middle axis of x viewed as [outer, axis, inner]:
 *   y[o,:,i] = softmax(scale * x[o,:,i] + mask)
 * mask (may be NULL) is float32 or t (mask_t), broadcast by strides: the
 * mask element for (o, a, i) is mask[o_mask + a*mask_axis_stride + i*mask_inner_stride]
 * where o_mask = (o / mask_outer_div) % mask_outer_mod * mask_outer_stride
 * (pass mask_outer_div = 1, mask_outer_mod = outer for a plain [outer, axis, inner] mask).
 * Max-subtracted, accumulated in float32; rows of -inf give 0 (not NaN)
 * only when the CPU reference does too (it gives NaN: match the reference,
 * i.e. NaN).  inner == 1 is the common, fast case (one warp or block per row).
 * y may equal x. */
cudaError_t kc_softmax(void *y, const void *x, int64_t outer, int64_t axis, int64_t inner, float scale,
                       const void *mask, kc_dtype mask_t, int64_t mask_outer_div, int64_t mask_outer_mod,
                       int64_t mask_outer_stride, int64_t mask_axis_stride, int64_t mask_inner_stride,
                       kc_dtype t, cudaStream_t stream);

/* LayerNorm (rms = 0) or RMSNorm (rms = 1) of each row of x [rows, cols]:
 *   y = (x - mean) / sqrt(var + eps) * scale + bias    (biased variance)
 *   y = x / sqrt(mean(x^2) + eps) * scale                (rms)
 * scale and bias have `cols` values of dtype t, or NULL (1 and 0).
 * Statistics in float32 (two-pass or Welford: not E[x^2]-E[x]^2).
 * y may equal x. */
cudaError_t kc_layernorm(void *y, const void *x, const void *scale, const void *bias, int64_t rows, int64_t cols,
                         float eps, int rms, kc_dtype t, cudaStream_t stream);

/* Squeeze-and-excitation MLP, per row n of p [N, C] (a global pool's
 * output): h = act1(W1 p[n] + b1) (W1 [CR, C]), y[n] = act2(W2 h + b2)
 * (W2 [C, CR]); b1, b2 may be NULL.  act codes and alpha/beta as
 * kc_bias_act.  One block per row, p and h in shared memory, float32
 * accumulation: the two 1x1 convolutions of an SE block in one launch
 * (at batch 1 each was a cuBLASLt GEMM with M = 1).  C <= 8192, CR <= 1024. */
cudaError_t kc_se_mlp(void *y, const void *p, const void *w1, const void *b1, const void *w2, const void *b2, int64_t n,
                      int64_t c, int64_t cr, int act1, float alpha1, float beta1, int act2, float alpha2, float beta2,
                      kc_dtype t, cudaStream_t stream);

/* A global pool (mean, or max when is_max) over NHWC x [N, HW, C] feeding
 * the SE MLP of kc_se_mlp: y [N, C] = act2(w2 act1(w1 pool(x) + b1) + b2),
 * pooled in float32 parts into ws (kc_se_pool_ws bytes, 16-byte aligned)
 * by blocks over the rows, so that batch 1 fills the GPU.  N <= 65535. */
size_t kc_se_pool_ws(int64_t n, int64_t hw, int64_t c, kc_dtype t);
cudaError_t kc_se_pool_mlp(void *y, const void *x, void *ws, int64_t n, int64_t hw, int64_t c, int is_max,
                           const void *w1, const void *b1, const void *w2, const void *b2, int64_t cr, int act1,
                           float alpha1, float beta1, int act2, float alpha2, float beta2, kc_dtype t,
                           cudaStream_t stream);
/* The same, and with wf: the scale folded into the 1x1 convolution that
 * reads x * y next, wf [N][K, C] = wsrc [K, C] * y[n] column by column (y
 * rounded to t first; one copy per image), so that the Mul before that
 * convolution need not run.  wk = K <= 65535. */
cudaError_t kc_se_pool_mlp_fold(void *y, const void *x, void *ws, int64_t n, int64_t hw, int64_t c, int is_max,
                                const void *w1, const void *b1, const void *w2, const void *b2, int64_t cr, int act1,
                                float alpha1, float beta1, int act2, float alpha2, float beta2, void *wf,
                                const void *wsrc, int64_t wk, kc_dtype t, cudaStream_t stream);
/* The same from sums already made over slices of the pixels, part
 * [N][parts][C] float32 (kc_dwconv_nhwc_taps_pool): the mean pool's MLP
 * and fold without a pass over x.  ws: kc_se_pool_ws(n, hw, c, t) bytes. */
cudaError_t kc_se_mlp_fold_parts(void *y, const float *part, int64_t parts, void *ws, int64_t n, int64_t hw,
                                 int64_t c, const void *w1, const void *b1, const void *w2, const void *b2, int64_t cr,
                                 int act1, float alpha1, float beta1, int act2, float alpha2, float beta2, void *wf,
                                 const void *wsrc, int64_t wk, kc_dtype t, cudaStream_t stream);

/* ---- pooling, resize, reductions ------------------------------------------------------ */

typedef struct kc_pool2d {
    int64_t n, c, h, w;          /* input sizes (layout: nhwc) */
    int64_t oh, ow;              /* output H, W */
    int kh, kw, sh, sw, dh, dw;  /* kernel, strides, dilations */
    int pt, pl;                  /* top/left padding (bottom/right implied by oh/ow) */
    int is_max;                  /* 1: MaxPool, 0: AveragePool */
    int count_include_pad;       /* AveragePool: divide by the window inside the padded input (1) or by the valid count (0) */
    /* fields added later: zero keeps the original behaviour */
    int nhwc;                    /* 1: x is [N,H,W,C] and y [N,OH,OW,C] (0: NCHW) */
    int pb, pr;                  /* bottom/right padding, for count_include_pad's divisor (see below) */
} kc_pool2d;

/* MaxPool / AveragePool 2-D on NCHW, or NHWC when p->nhwc (padding never
 * wins a max; a NaN input never wins either; a window with no input tap
 * gives -inf for max, NaN (0/0) for an average with count_include_pad 0).
 * count_include_pad = 1: with pb or pr nonzero, divides by the taps inside
 * the padded input as src/cpu/ref (PyTorch, ONNX Runtime): per axis
 * min(k, ceil((in + pend - start) / dil)), start = o*s - pbegin, so
 * ceil-mode taps beyond the end padding do not count; with pb == pr == 0,
 * by kh*kw (the original behaviour: the same unless ceil mode runs the
 * window past an input that has no end padding).  NHWC: one thread per
 * output pixel and group of
8 (f16) / 4 (f32) channels when C is a multiple of that and x, y are
 * 16-byte aligned, else per channel; reads and writes coalesce over C. */
cudaError_t kc_pool2d_run(void *y, const void *x, const kc_pool2d *p, kc_dtype t, cudaStream_t stream);

/* Space-to-depth of a stride-2 stem's input (src/cuda/exec.c, the
 * space-to-depth convolution): s[n, i, j, q] with q = (r2 * 2 + s2) * 4 + c
 * (r2, s2 in {0, 1}, c < 4) is x[n, c, 2i + r2 - p0, 2j + s2 - p1], zero for
 * c >= c or outside x; x is read through element strides xs over (n, c, h,
 * w), s is dense [n, hs, ws, 16] and 16-byte aligned.  One pass where two
 * copies and a zeroed padded buffer were (ResNet-50's stem at batch 256:
 * 298 us of copies).  elem_size 2 or 4 (bytes are moved, not converted). */
typedef struct kc_s2d {
    int64_t n, c, h, w, hs, ws, p0, p1;
    int64_t xs[4];
} kc_s2d;
cudaError_t kc_s2d_pack(void *s, const void *x, const kc_s2d *p, size_t elem_size, cudaStream_t stream);

/* GlobalAveragePool / GlobalMaxPool: y[r] = mean (or max) of x[r, 0..inner)
 * for r < rows (NCHW: rows = N*C, inner = H*W). */
cudaError_t kc_global_pool(void *y, const void *x, int64_t rows, int64_t inner, int is_max, kc_dtype t,
                           cudaStream_t stream);

/* GlobalAveragePool / GlobalMaxPool on NHWC: x [N, HW, C] (HW = H*W),
 * y [N, C] (the same bytes as [N,C,1,1] or [N,1,1,C]): y[n,c] = mean (or
 * max) over i < hw of x[n,i,c].  float32 accumulation; max propagates NaN
 * (as kc_global_pool and src/cpu/ref); hw == 0 gives NaN (mean) / -inf
 * (max).  Coalesced over C (16-byte vectors when C is a multiple of 8 / 4
 * and x, y are 16-byte aligned), blocks over (n, chunk of C), the threads
 * of a block split HW and combine in shared memory. */
cudaError_t kc_global_pool_nhwc(void *y, const void *x, int64_t n, int64_t hw, int64_t c, int is_max, kc_dtype t,
                                cudaStream_t stream);

/* Reduce the middle axis of x viewed as [outer, red, inner]: y[o, i] =
 * op over r of x[o, r, i].  op: 0 sum, 1 mean, 2 max, 3 min, 4 sum of
 * squares, 5 L2 (sqrt of the sum of squares).  float32 accumulation. */
cudaError_t kc_reduce(void *y, const void *x, int64_t outer, int64_t red, int64_t inner, int op, kc_dtype t,
                      cudaStream_t stream);

typedef struct kc_resize {
    int64_t n, c, h, w, oh, ow;  /* in and out sizes (only H and W are resized; layout: nhwc) */
    float scale_h, scale_w;      /* output/input, as ONNX's scales (used by the coordinate transform) */
    int mode;                    /* 0 nearest, 1 linear (bilinear) */
    int coord;                   /* 0 half_pixel, 1 asymmetric, 2 align_corners, 3 pytorch_half_pixel, 4 tf_half_pixel_for_nearest */
    int nearest;                 /* 0 round_prefer_floor, 1 round_prefer_ceil, 2 floor, 3 ceil */
    /* fields added later: zero keeps the original behaviour */
    int nhwc;                    /* 1: x is [N,H,W,C] and y [N,OH,OW,C] (0: NCHW) */
    int64_t len_h, len_w;        /* > 0: "length_resized" of align_corners / pytorch_half_pixel per axis
                                    (ONNX: the output size when Resize was given sizes); 0: scale * input,
                                    snapped to oh / ow when equal up to float rounding (the original guess) */
} kc_resize;

/* Resize on NCHW (or NHWC when p->nhwc) with ONNX Resize-11..19 semantics
 * for the modes above (linear: exclude_outside 0, no antialias, no
 * extrapolation region).  An axis with O == L and scale 1 is not resized
 * (as src/cpu/ref). */
cudaError_t kc_resize_run(void *y, const void *x, const kc_resize *p, kc_dtype t, cudaStream_t stream);

/* Gather along an axis: x viewed as [outer, axis, inner], indices int64
 * (device memory, n_idx of them, negative counts from the end; out of
 * range is clamped, the host checked them where it could):
 *   y[o, j, i] = x[o, idx[j], i].  elem_size 1, 2, 4 or 8 bytes. */
/* ONNX TopK of x viewed as [outer, n, inner] along n (float32 or float16 t):
 * vals [outer, k, inner] (t) and idx [outer, k, inner] (int64) hold the k
 * largest (largest != 0) or smallest elements of each row, sorted, the
 * lower index first among equal values, NaN above +inf (the CPU
 * reference's order).  Rows of up to KC_TOPK_MAX_N elements (one block's
 * shared memory); cudaErrorInvalidValue beyond. */
#define KC_TOPK_MAX_N 4096
cudaError_t kc_topk(void *vals, int64_t *idx, const void *x, int64_t outer, int64_t n, int64_t inner, int64_t k,
                    int largest, kc_dtype t, cudaStream_t stream);

cudaError_t kc_gather(void *y, const void *x, const int64_t *idx, int64_t outer, int64_t axis, int64_t n_idx,
                      int64_t inner, size_t elem_size, cudaStream_t stream);

/* Depthwise convolution (groups == C == K) in NHWC: y[n,oh,ow,c] =
 * act(sum_{r,s} x[n, oh*sh - pt + r*dh, ow*sw - pl + s*dw, c] w[c,r,s]
 * + bias[c] + z[n,oh,ow,c]).  w is [C, R, S] (ONNX's [C,1,R,S]); bias and z
 * may be NULL.  Needs C % 8 == 0, R*S <= KC_DW_MAX_TAPS and x, y, z
 * aligned to 16 bytes (kc_dwconv_nhwc_ok says). */
#define KC_DW_MAX_TAPS 49
typedef struct kc_dwconv {
    int64_t n, h, w, c, oh, ow;
    int r, s, pt, pl, sh, sw, dh, dw;
    int act;
    float alpha, beta;
} kc_dwconv;
bool kc_dwconv_nhwc_ok(const kc_dwconv *p, const void *x, const void *y, const void *z);
cudaError_t kc_dwconv_nhwc(void *y, const void *x, const void *w, const void *bias, const void *z,
                           const kc_dwconv *p, kc_dtype t, cudaStream_t stream);
/* The same with the filters tap-major, wt[R*S][C] (16-byte aligned), where
 * kc_dwconv_taps_ok says (float16 3x3 and 5x5; KILN_CUDA_DW_TAPS=0 never,
 * 2 at every size, else small layers only). */
bool kc_dwconv_taps_ok(const kc_dwconv *p, kc_dtype t);
/* Layers of at least v (pixel, 8-channel) items run the tap-major forms in
 * 2-D tiles of output pixels (their taps' reads shared in L1), smaller ones
 * in the slices tuned for batch 1; v < 0: KILN_CUDA_DW_TILE or the default
 * (off: not yet measured).  Not thread-safe: for tests, before any launch. */
void kc_dwconv_set_tile_min(int64_t v);
cudaError_t kc_dwconv_nhwc_taps(void *y, const void *x, const void *wt, const void *bias, const void *z,
                                const kc_dwconv *p, kc_dtype t, cudaStream_t stream);
/* The tap-major convolution that also sums its output y (as stored) over
 * slices of the pixels for a squeeze-excitation pool: part [N][parts][C]
 * float32, parts = kc_dwconv_pool_parts(p, t) (0: this form does not
 * apply).  kc_se_mlp_fold_parts reads the parts. */
int64_t kc_dwconv_pool_parts(const kc_dwconv *p, kc_dtype t);
cudaError_t kc_dwconv_nhwc_taps_pool(void *y, const void *x, const void *wt, const void *bias, const void *z,
                                     const kc_dwconv *p, float *part, kc_dtype t, cudaStream_t stream);

/* im2col for an NHWC convolution (groups 1): col[m, (r*S + s)*C + c] =
 * x[n, oy*sh - pt + r*dh, ox*sw - pl + s*dw, c] (0 outside the input),
 * m = (n*OH + oy)*OW + ox, so that y[M, K] = col[M, R*S*C] w[K, R*S*C]^T
 * is the convolution with the NHWC filters [K, R, S, C].  16-byte moves
 * when C*esz is a multiple of 16 and x, col are 16-byte aligned. */
cudaError_t kc_im2col_nhwc(void *col, const void *x, const kc_dwconv *p, kc_dtype t, cudaStream_t stream);

/* kiln's NHWC convolution (groups 1) as an implicit GEMM on tensor cores
 * (k_conv.cu): y[n,oh,ow,k] = act(sum_{r,s,c} x[n, oh*sh - pt + r*dh,
 * ow*sw - pl + s*dw, c] w[k,r,s,c] + bias[k] + z[n,oh,ow,k]), x, w, y, z
 * NHWC / KRSC of type t, bias and z may be NULL, float32 accumulation; the
 * bottom/right padding follows from oh, ow.  float16 runs f16 products;
 * float32 runs 3xTF32 (three TF32 products over hi/lo splits: float32's
 * accuracy order, not TF32's).  cfg picks the tile shape (listed in
 * k_conv.cu).  Needs C % 8 == 0 (float16) or C % 4 == 0 (float32), K even,
 * x and w 16-byte aligned, y and z aligned to a pair of elements, bias to
 * one (kc_igemm_nhwc_ok says), sm_80+.  Tactics 10-13
 * split R*S*C over blocks: they need ws (kc_igemm_nhwc_ws bytes, 16-byte
 * aligned, float32 partial sums) and cnt (kc_igemm_nhwc_counters unsigned
 * ints, zero before the first run; the kernel leaves them zero); for the
 * others both may be NULL.  A cnt array serves one launch at a time. */
#define KC_IGEMM_CFGS 14
typedef struct kc_igemm_desc {
    kc_dtype t; /* KC_F16 or KC_F32 */
    int64_t n, h, w, c, k, oh, ow;
    int r, s, pt, pl, sh, sw, dh, dw;
    int act;
    float alpha, beta;
    /* pixel strides of x, y and z in elements (0: dense, c, k, k): a convolution reading or writing its
     * channels of a wider NHWC tensor (a channel slab of a Concat's output) */
    int64_t ldx, ldy, ldz;
} kc_igemm_desc;
bool kc_igemm_nhwc_ok(const kc_igemm_desc *q, const void *x, const void *w, const void *bias, const void *z,
                      const void *y);
cudaError_t kc_igemm_nhwc(void *y, const void *x, const void *w, const void *bias, const void *z,
                          const kc_igemm_desc *q, int cfg, void *ws, unsigned *cnt, cudaStream_t stream);
size_t kc_igemm_nhwc_ws(const kc_igemm_desc *q, int cfg);
/* Tactic cfg's tile (bm x bn), warps along M and K splits; false for no such cfg.  Host only. */
bool kc_igemm_cfg_shape(int cfg, int *bm, int *bn, int *wm, int *splits);
size_t kc_igemm_nhwc_counters(const kc_igemm_desc *q, int cfg);

/* kiln's float16 NHWC 1x1 convolution of a few input channels (stride 1,
 * no padding, groups 1, dense tensors): y[m, k] = act(sum_c x[m, c] w[k, c]
 * + bias[k] + z[m, k]) for m over N*H*W pixels, c <= 64 and c % 8 == 0,
 * k % 8 == 0; w is [k, c].  A warp streams 16 pixels at a time through
 * mma.m16n8k16 (float32 accumulation) with its 48 output channels' weights
 * held in registers, and writes each pixel's channels as 16-byte pieces: the
 * memory-bound expansions of inverted-residual blocks (EfficientNet-B0's
 * 16->96 at 112x112), where the implicit GEMM's blocks each wait on their
 * one K-tile and cuBLASLt's product needs a second pass for SiLU. */
bool kc_pw_nhwc_ok(int64_t c, int64_t k, const void *x, const void *w, const void *bias, const void *z,
                   const void *y);
cudaError_t kc_pw_nhwc(void *y, const void *x, const void *w, const void *bias, const void *z, int64_t m, int64_t c,
                       int64_t k, int act, float alpha, float beta, cudaStream_t stream);

/* Einsum of one or two float operands (numpy semantics without ellipses or
 * diagonals; the caller maps the equation): labels 0..n_out-1 are y's dims
 * in order (y dense), labels n_out..n_out+n_sum-1 are summed; size[l] is
 * label l's extent and st[j][l] operand j's element stride along it (0: not
 * in operand j). y = sum over the summed labels of x0 * x1 (x0 alone when
 * x1 is NULL), accumulated in float32.  Two operands whose summed labels
 * are in both run as a tiled batched GEMM over label groups; naive = 1
 * forces the one-thread-per-output kernel (tests compare the two). */
#define KC_EINSUM_LABELS (2 * KC_MAX_RANK)
typedef struct kc_einsum_desc {
    int n_out, n_sum;
    int naive;
    int64_t size[KC_EINSUM_LABELS];
    int64_t st[2][KC_EINSUM_LABELS];
} kc_einsum_desc;
cudaError_t kc_einsum(void *y, const void *x0, const void *x1, const kc_einsum_desc *d, kc_dtype t,
                      cudaStream_t stream);

/* ---- attention helpers ---------------------------------------------------------------- */

/* Head split: x [B, S, H*D] (row stride ld, columns from col0) ->
 * y [B, H, S, D] dense; and the inverse merge y [B, S, H*D] <- x [B, H, S, D].
 * With seq_first = 1, x is [S, B, ...] instead (torch's MultiheadAttention). */
cudaError_t kc_heads_split(void *y, const void *x, int64_t b, int64_t s, int64_t h, int64_t d, int64_t ld,
                           int seq_first, kc_dtype t, cudaStream_t stream);
cudaError_t kc_heads_merge(void *y, const void *x, int64_t b, int64_t s, int64_t h, int64_t d, int seq_first,
                           kc_dtype t, cudaStream_t stream);

/* ---- products of a few rows (k_gemv.cu) --------------------------------------------------- */

/* float16 y[r, j] = act(alpha * sum_k a[r, k] b(k, j) + bias[j] + beta * z[r, j]) for r < m <= KC_GEMV_MAX_M,
 * float32 accumulation; b(k, j) = b[k * ldb + j], or b[j * ldb + k] with trans_b.  a, y and z are row-major
 * (lda; ldy for both y and z); bias and z may be NULL.  kc_gemv_ok: b 16-byte aligned and ldb % 8 == 0; without
 * trans_b n % 8 == 0; with it k % 8 == 0, lda % 8 == 0 and a 16-byte aligned.  Without trans_b, k may be split
 * over blocks: then ws (kc_gemv_ws bytes, 16-byte aligned: float32 partial sums) and cnt (kc_gemv_counters
 * unsigned ints, zero before the first run; the kernel leaves them zero) are needed; a cnt array serves one
 * launch at a time. */
#define KC_GEMV_MAX_M 4
#define KC_GEMV_MAX_SPLITS 64
typedef struct kc_gemv_params {
    const void *a, *b, *bias, *z;
    void *y;
    int64_t m, n, k, lda, ldb, ldy;
    int trans_b;
    float alpha, beta;
    int act;
    float act_alpha, act_beta;
    void *ws;
    unsigned *cnt;
    int64_t kslice; /* set by kc_gemv */
} kc_gemv_params;
bool kc_gemv_ok(const kc_gemv_params *p);
size_t kc_gemv_ws(const kc_gemv_params *p);
size_t kc_gemv_counters(const kc_gemv_params *p);
cudaError_t kc_gemv(const kc_gemv_params *p, cudaStream_t stream);

/* Programmatic dependent launch (sm_90): kiln's kernels may start before
 * the kernel ahead of them on the stream has finished.  kc_pdl_hold(1)
 * turns that off for the calling thread's launches until kc_pdl_hold(0)
 * (the executor holds it right after a cuBLASLt or cuDNN kernel when
 * KILN_CUDA_PDL_AFTER_LIB=0). */
void kc_pdl_hold(int on);

#ifdef __cplusplus
}
#endif

#endif /* KL_CUDA_KERNELS_H */
