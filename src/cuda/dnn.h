/*
 * dnn.h — convolution through cuDNN 9 and matrix products through
 * cuBLASLt, behind a C boundary (src/cuda/dnn.c, host C11).  Each object
 * is made once for one set of shapes (at plan time) and then only run, so a
 * run does no descriptor work and no allocation and can be captured into a
 * CUDA graph.
 *
 * Errors: functions return 0 on success; on failure non-zero, and `why`
 * (may be NULL) receives a message naming the library call and its status
 * ("cudnnConvolutionForward: CUDNN_STATUS_BAD_PARAM").
 */
#ifndef KL_CUDA_DNN_H
#define KL_CUDA_DNN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "cuda/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Library handles for one device (one per engine; not thread safe: one
 * stream at a time, the caller serializes). */
typedef struct kc_dnn kc_dnn;
int kc_dnn_create(kc_dnn **out, char *why, size_t why_size);
void kc_dnn_destroy(kc_dnn *d);
/* Free what tactic timing set up (the L2-flush buffer, twice the L2):
 * the executor calls it once a plan is built; the next timing sets it up
 * again. */
void kc_dnn_release_scratch(kc_dnn *d);
/* "cudnn 9.x.y, cublasLt 13.x.y" into buf. */
void kc_dnn_versions(char *buf, size_t size);
/* Opens cuBLASLt and cuDNN (dlopen, once; culib.h): 0, or -1 with the
 * reason.  kc_dnn_create does it too. */
int kc_dnn_libraries(char *why, size_t why_size);
/* cuDNN's and cuBLASLt's version numbers (for the engine header). */
size_t kc_dnn_cudnn_version(void);
size_t kc_dnn_cublaslt_version(void);

/* ---- convolution ------------------------------------------------------------------------ */

typedef struct kc_conv_desc {
    kc_dtype t;                 /* x, w, bias, z, y dtype (accumulation is float32) */
    int nhwc;                   /* 0: NCHW tensors (x, y, z; w is [K, C/g, R, S]); 1: NHWC (w [K, R, S, C/g]) */
    int64_t n, c, h, w;         /* input */
    int64_t k, r, s;            /* filters: K output channels, R x S kernel */
    int64_t oh, ow;             /* output */
    int pad_t, pad_l, pad_b, pad_r;
    int stride_h, stride_w, dil_h, dil_w;
    int groups;
    int act;                    /* kl_act applied after bias and z (see kernels.h) */
    float act_alpha, act_beta;
    bool has_bias, has_z;       /* bias [K]; z (residual) of y's shape */
    bool allow_tf32;            /* FP32 math may use TF32 tensor cores (off by default) */
    bool no_igemm;              /* leave kiln's implicit GEMM out of the timing (KC_CONV_ALGO_IGEMM) */
    /* ConvTranspose: x [n, c, h, w] -> y [n, k, oh, ow] with w [c, k/groups, r, s] (NHWC: [c, r, s, k/groups]),
     * ONNX's layout; pad_t/pad_l are its begin pads (the end is implied by oh, ow; pad_b/pad_r are not read).
     * Run as cuDNN's backward-data of the forward convolution y -> x, so oh, ow must be sizes that
     * convolution maps back onto h, w (kc_conv_create checks).  Algorithms are cudnnConvolutionBwdDataAlgo_t
     * values (timed, or recorded); bias, z and act run after by kc_bias_act. */
    bool transposed;
    /* Channel slabs: x, y or z holds its c (k) channels as channels [0, c) of
     * a tensor with x_ch (y_ch, z_ch) channels and the same N, H, W, in the
     * layout of `nhwc` (0: dense).  The caller passes the slab's first
     * element.  A Concat's inputs are so written into its output and read
     * from it.  Taken by cuDNN's algorithms (x through a strided descriptor;
     * y written to a dense part of the workspace, then bias, z and act by
     * kc_bias_act_ld into the slab) and kiln's implicit GEMM (pixel strides);
     * the other forms are not timed for them.  Not for ConvTranspose. */
    int64_t x_ch, y_ch, z_ch;
    /* Depthwise (KC_CONV_ALGO_DW): the caller will give the filters
     * tap-major too, [R*S, C] (kc_conv_set_dw_taps), so kiln's kernel is
     * timed and run in the form that reads them there (kc_dwconv_nhwc_taps,
     * where kc_dwconv_taps_ok says). */
    bool dw_taps;
} kc_conv_desc;

typedef struct kc_conv kc_conv;

/* The algorithm number of kiln's own depthwise NHWC kernel
 * (kc_dwconv_nhwc), timed against cuDNN's algorithms for depthwise NHWC
 * convolutions (groups == C == K, C % 8 == 0, at most KC_DW_MAX_TAPS taps;
 * KILN_CUDA_NO_DW=1 leaves it out). */
#define KC_CONV_ALGO_DW 1000
/* kiln's float16 NHWC 1x1 kernel for a few input channels (kc_pw_nhwc:
 * 8-64 channels in, a multiple of 8 out, stride 1, no padding, dense
 * tensors), timed against cuDNN's algorithms, the implicit GEMM and the
 * executor's cuBLASLt product (KILN_CUDA_NO_PW=1 leaves it out). */
#define KC_CONV_ALGO_PW 2000
/* KC_CONV_ALGO_GEMM + i: an NCHW 1x1 convolution (stride 1, no padding,
 * groups 1) as a cuBLASLt product batched over images, y[n] = w[K, C]
 * x[n][C, HW] (i: kc_gemm_create's candidate), then bias, residual and
 * activation by kc_bias_act.  Timed against cuDNN's algorithms (cuDNN's
 * float32 1x1 kernels reach a third of the FMA peak);
 * KILN_CUDA_NO_CONV_GEMM=1 leaves it out. */
#define KC_CONV_ALGO_GEMM 10000
/* KC_CONV_ALGO_IM2COL + i: an NHWC convolution (groups 1, not a plain
 * 1x1) as kc_im2col_nhwc into the workspace then one cuBLASLt product
 * col[N*OH*OW, R*S*C] w[K, R*S*C]^T with bias, residual and activation in
 * its epilogue (i: kc_gemm_create's candidate).  Timed against cuDNN's
 * algorithms where R*S*C keeps the rows 16-byte aligned and the columns
 * fit the workspace (cuDNN's legacy algorithms picked 40-50 us kernels for
 * ResNet-50's stem and a 3x3 stride-2 layer at batch 1);
 * KILN_CUDA_NO_IM2COL=1 leaves it out. */
#define KC_CONV_ALGO_IM2COL 20000

/* KC_CONV_ALGO_IGEMM + cfg (cfg < KC_IGEMM_CFGS, the tile shape): kiln's
 * NHWC implicit-GEMM kernel (kc_igemm_nhwc) with bias, residual and any
 * activation in its epilogue, one launch where cuDNN's legacy API needs a
 * second pass for SiLU and the like.  Timed against cuDNN's algorithms for
 * float16 NHWC convolutions with groups 1, C % 8 == 0, K even and an
 * activation cuDNN does not fuse (all of them with KILN_CUDA_IGEMM_ALL=1),
 * and for every float32 NHWC convolution with groups 1, C % 4 == 0 and K
 * even, where it runs as 3xTF32 (float32's accuracy) and is kept only when
 * 20% faster than cuDNN's float32 kernels (KILN_CUDA_NO_3XTF32=1 leaves it
 * out there; KILN_CUDA_NO_IGEMM=1 everywhere).  algo KC_CONV_TUNE_IGEMM asks
 * kc_conv_create to time only these (the executor compares them with a 1x1
 * convolution's cuBLASLt product; refused where that product's epilogue
 * fuses the activation, GELU included). */
#define KC_CONV_ALGO_IGEMM 30000
#define KC_CONV_TUNE_IGEMM (-2)

/* Describe the convolution and choose its algorithm.  algo < 0: time every
 * algorithm cuDNN offers on scratch buffers (cudnnFindConvolutionForward-
 * AlgorithmEx or per-algorithm timing) and keep the fastest whose workspace
 * is at most max_workspace; algo >= 0: use that cudnnConvolutionFwdAlgo_t
 * (from a timing cache or an engine).  Asymmetric padding cuDNN cannot
 * express is an error.  *out owner: caller (kc_conv_destroy). */
int kc_conv_create(kc_dnn *d, const kc_conv_desc *desc, int algo, size_t max_workspace, kc_conv **out, char *why,
                   size_t why_size);
void kc_conv_destroy(kc_conv *c);
/* The tap-major filters of a desc.dw_taps convolution (device memory the
 * caller keeps alive while c runs; not owned).  Until it is given, the
 * depthwise kernel reads w as usual. */
void kc_conv_set_dw_taps(kc_conv *c, const void *w_taps);
/* The chosen algorithm (cudnnConvolutionFwdAlgo_t), its workspace bytes,
 * and its measured time in ms (0 when not timed). */
int kc_conv_algo(const kc_conv *c);
size_t kc_conv_workspace(const kc_conv *c);
float kc_conv_time_ms(const kc_conv *c);
/* The family of convolution algorithm code `algo` in words ("cuDNN
 * IMPLICIT_PRECOMP_GEMM", "kiln implicit GEMM 128x64 tile, 2x2 warps",
 * "kiln depthwise", ...; transposed: cuDNN's backward-data names) into buf
 * (always terminated).  Pure: no GPU needed. */
void kc_conv_algo_name(int algo, bool transposed, char *buf, size_t size);
/* What a run of c launches, in words (kc_conv_algo_name, the tap-major
 * form, a second pass for bias/residual/activation where the kernel does
 * not fuse them), for `kiln profile`. */
void kc_conv_describe(const kc_conv *c, char *buf, size_t size);
/* y = act(conv(x, w) + bias + z) on stream; workspace holds at least
 * kc_conv_workspace() bytes (NULL if 0).  Uses cudnnConvolutionBiasActivation-
 * Forward where it applies (relu/none), else cudnnConvolutionForward then
 * kc_bias_act. */
int kc_conv_run(kc_conv *c, const void *x, const void *w, const void *bias, const void *z, void *y, void *workspace,
                cudaStream_t stream, char *why, size_t why_size);
/* A depthwise convolution that runs kiln's tap-major kernel can also sum
 * its output over slices of the pixels for a squeeze-excitation pool
 * (kc_dwconv_nhwc_taps_pool): kc_conv_pool_parts gives the slices per image
 * (0: not this convolution), kc_conv_run_pool runs it, writing part
 * [N][parts][C] float32 besides y. */
int64_t kc_conv_pool_parts(const kc_conv *c);
int kc_conv_run_pool(kc_conv *c, const void *x, const void *bias, const void *z, void *y, float *part,
                     cudaStream_t stream, char *why, size_t why_size);

/* ---- matrix products --------------------------------------------------------------------- */

typedef struct kc_gemm_desc {
    kc_dtype t;                 /* A, B, bias, y dtype (float32 accumulation) */
    int64_t m, n, k;
    bool trans_a, trans_b;      /* A is [m,k] (or [k,m] transposed), B [k,n] (or [n,k]) */
    int64_t lda, ldb, ldy;      /* row-major leading dims (elements) */
    int64_t batch;              /* >= 1 */
    int64_t stride_a, stride_b, stride_y; /* batch strides (elements); 0 broadcasts */
    float alpha;                /* y = act(alpha * A B + bias + beta*z) */
    float beta;                 /* beta: weight of z (C of Gemm, or a residual), 0 = none */
    bool has_bias;              /* bias [n] added to every row */
    bool has_z;                 /* z [batch, m, n] with ldz = ldy and stride_y */
    int act;                    /* kl_act: cuBLASLt epilogue when it has one (relu, gelu), else kc_bias_act */
    float act_alpha, act_beta;
    bool allow_tf32;
} kc_gemm_desc;

typedef struct kc_gemm kc_gemm;

/* Candidates from KC_GEMM_ALGO_X3 on compute a float32 product as three
 * TF32 tensor-core products over split operands (kc_split_tf32: float32's
 * accuracy, not TF32's), inner candidate algo - KC_GEMM_ALGO_X3.  Timed
 * against the float32 kernels for float32 products without allow_tf32,
 * batch 1, A not transposed (KILN_CUDA_NO_3XTF32=1 leaves it out); its
 * workspace holds the split operands (up to max(max_workspace, 1 GiB)). */
#define KC_GEMM_ALGO_X3 1000
/* Candidate KC_GEMM_ALGO_GEMV is kiln's float16 product of a few rows (kc_gemv, k_gemv.cu: m <= 4, one
 * product, A not transposed), timed against cuBLASLt's candidates where it applies (KILN_CUDA_NO_GEMV=1 leaves
 * it out). */
#define KC_GEMM_ALGO_GEMV 2000

/* How many of cuBLASLt's candidates a product times (KILN_CUDA_GEMM_CANDIDATES, default 16). */
int kc_gemm_candidates(void);

/* Describe the product and choose the algorithm: algo < 0 asks cuBLASLt's
 * heuristic for candidates and times them (keeps the fastest that fits
 * max_workspace); algo >= 0 takes candidate number `algo` of that list
 * (the index is what a timing cache or engine stores).  Owner: caller. */
int kc_gemm_create(kc_dnn *d, const kc_gemm_desc *desc, int algo, size_t max_workspace, kc_gemm **out, char *why,
                   size_t why_size);
void kc_gemm_destroy(kc_gemm *g);
int kc_gemm_algo(const kc_gemm *g);
/* What a run launches, in words: cuBLASLt's algorithm id, tile and stages
 * ids (cublasLtMatmulTile_t, cublasLtMatmulStages_t), split-K, the
 * epilogue, 3xTF32, a second pass. */
void kc_gemm_describe(const kc_gemm *g, char *buf, size_t size);
size_t kc_gemm_workspace(const kc_gemm *g);
float kc_gemm_time_ms(const kc_gemm *g);
int kc_gemm_run(kc_gemm *g, const void *a, const void *b, const void *bias, const void *z, void *y, void *workspace,
                cudaStream_t stream, char *why, size_t why_size);

/* ---- attention (kiln.Attention) ---------------------------------------------------------- */

typedef struct kc_attn_desc {
    kc_dtype t;
    int64_t b, sq, sk, h, d, dv;   /* batch, query/key lengths, heads, head dims */
    int64_t ldq, ldk, ldv;         /* row strides of Q, K, V (elements): H*D when dense */
    int seq_first;                 /* inputs/outputs are [S, B, ...] */
    float scale;
    /* optional additive mask broadcast to [B, H, Sq, Sk] (float32 or t): */
    bool has_mask;
    kc_dtype mask_t;
    int64_t mask_stride_b, mask_stride_h, mask_stride_q, mask_stride_k; /* 0 on broadcast axes */
    /* rel_kw > 0: SAM's decomposed relative positions instead of one mask
     * (fused kernel only): key k = kh * rel_kw + kq adds mask(b, h, q, kh)
     * (the strides above) + mask2(b, h, q, kq) (these strides, mask_t): */
    int64_t rel_kw;
    int64_t mask2_stride_b, mask2_stride_h, mask2_stride_q, mask2_stride_k;
    bool allow_tf32;
    int flash_variant; /* the fused kernel's tiling (KC_FLASH_*, k_attention.h); 0: its own choice; -1:
                        * each that applies timed at create on scratch tensors, the fastest kept;
                        * KILN_CUDA_FA=1..4 in the environment overrides 0 and -1 */
} kc_attn_desc;

typedef struct kc_attn kc_attn;

/* Attention Y [B, Sq, H*Dv] (dense) = softmax(scale * Q K^T + mask) V per
 * batch and head.  Computed as head split, a batched cuBLASLt product for
 * the scores, kc_softmax, a batched product with V and a head merge, or a
 * fused flash-style kernel when one applies; *workspace is the bytes a run
 * needs (scores and split heads).  Owner: caller. */
int kc_attn_create(kc_dnn *d, const kc_attn_desc *desc, kc_attn **out, char *why, size_t why_size);
void kc_attn_destroy(kc_attn *a);
size_t kc_attn_workspace(const kc_attn *a);
/* 1 when runs take the fused flash kernel (float16, D == Dv in {64, 128}, sm_80+; workspace 0, may be
 * NULL), 0 for the unfused path. */
int kc_attn_is_fused(const kc_attn *a);
/* The fused kernel's tiling a run takes (KC_FLASH_ONE_MTILE .. KC_FLASH_LAST), 0 when unfused. */
int kc_attn_flash_variant(const kc_attn *a);
/* What a run launches, in words ("kiln flash attention, two M tiles", "cuBLASLt products + softmax"). */
void kc_attn_describe(const kc_attn *a, char *buf, size_t size);
/* The chosen tiling's timed median in ms (flash_variant -1 at create), else 0. */
float kc_attn_time_ms(const kc_attn *a);
int kc_attn_run(kc_attn *a, const void *q, const void *k, const void *v, const void *mask, const void *mask2, void *y,
                void *workspace, cudaStream_t stream, char *why, size_t why_size);

#ifdef __cplusplus
}
#endif

#endif /* KL_CUDA_DNN_H */
