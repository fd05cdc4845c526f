/*
 * dnn.c — cuDNN convolution, cuBLASLt matrix products and the unfused
 * attention built from them (contract in dnn.h).  Host C11.
 *
 * Row-major products go through cuBLASLt's column-major interface as
 * Y^T = B^T A^T: the column-major view of a row-major [r, c] matrix with
 * leading dimension ld is its transpose [c, r] with the same ld, so Lt's
 * "A" is our B, Lt's "B" is our A and D (n x m, ld = ldy) is Y.
 */
#include "cuda/dnn.h"
#include "cuda/k_attention.h"
#include "core/core.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cublasLt.h declares cublasLtLoggerForceDisable() without a prototype */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <cublasLt.h>
#pragma GCC diagnostic pop
#include <cudnn.h>

#include "cuda/culib.h"

#define KC_ACT_NONE 0
#define KC_ACT_RELU 1
#define KC_ACT_GELU_ERF 8
#define KC_ACT_GELU_TANH 9
#define KC_ACT_COUNT 12

#define KC_TIME_RUNS 5
#define KC_GEMM_CANDIDATES_MAX 64

/* Algorithm codes are stored in engines and timing caches: their ranges
 * must not meet (an im2col + 3xTF32 code, KC_CONV_ALGO_IM2COL +
 * KC_GEMM_ALGO_X3 + i, was once KC_CONV_ALGO_IGEMM + i).  Renumbering them
 * changes KL_CUDA_ALGO_NUMBERING (cuda.h; its bound is asserted in exec.c). */
_Static_assert(KC_GEMM_ALGO_X3 >= KC_GEMM_CANDIDATES_MAX, "cuBLASLt candidates reach the 3xTF32 codes");
_Static_assert(KC_CONV_ALGO_DW >= (int)CUDNN_CONVOLUTION_FWD_ALGO_COUNT, "cuDNN algorithms reach KC_CONV_ALGO_DW");
_Static_assert(KC_CONV_ALGO_DW < KC_CONV_ALGO_GEMM, "KC_CONV_ALGO_DW inside the GEMM codes");
_Static_assert(KC_CONV_ALGO_DW < KC_CONV_ALGO_PW && KC_CONV_ALGO_PW < KC_CONV_ALGO_GEMM, "KC_CONV_ALGO_PW out of place");
_Static_assert(KC_CONV_ALGO_GEMM + KC_GEMM_ALGO_X3 + KC_GEMM_CANDIDATES_MAX <= KC_CONV_ALGO_IM2COL,
               "1x1 GEMM codes reach the im2col codes");
_Static_assert(KC_CONV_ALGO_IM2COL + KC_GEMM_ALGO_X3 + KC_GEMM_CANDIDATES_MAX <= KC_CONV_ALGO_IGEMM,
               "im2col codes reach the implicit-GEMM codes");

/* How many of cuBLASLt's heuristic candidates are timed: 16, or
 * KILN_CUDA_GEMM_CANDIDATES (1-64).  64 measured no faster in the twentieth
 * session (H100, two builds each, bench/gpu/call20c.sh): ResNet-50 FP16 b1
 * 0.313 / 0.318 ms with 16, 0.315 / 0.313 with 64; ViT-B/16 b1 0.476 either
 * way (one call's 0.312 against 0.322 was a build's luck). */
#define KC_GEMM_CANDIDATES_DEFAULT 16
int kc_gemm_candidates(void)
{
    const char *e = getenv("KILN_CUDA_GEMM_CANDIDATES");
    int n = e ? atoi(e) : KC_GEMM_CANDIDATES_DEFAULT;
    return n < 1 ? KC_GEMM_CANDIDATES_DEFAULT : n > KC_GEMM_CANDIDATES_MAX ? KC_GEMM_CANDIDATES_MAX : n;
}
#define KC_ATTN_GEMM_WS ((size_t)4 << 20)
#define KC_ALIGN 256

struct kc_dnn {
    cudnnHandle_t cudnn;
    cublasLtHandle_t lt;
    cudaStream_t stream; /* timing at create */
    cudaEvent_t ev0, ev1;
    /* Timing starts each run with a cold L2: flush_bytes (twice the L2) of
     * this buffer are overwritten first (flush_state 0: not set up yet,
     * 1: on, -1: off, KILN_CUDA_TIME_WARM=1 or no memory). */
    void *flush;
    size_t flush_bytes;
    int flush_state;
};

/* ---- errors ---------------------------------------------------------------------------- */

static int kc_fail(char *why, size_t why_size, const char *fmt, ...)
{
    if (why && why_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int cudnn_fail(char *why, size_t n, const char *call, cudnnStatus_t s)
{
    return kc_fail(why, n, "%s: %s", call, cudnnGetErrorString(s));
}

static int lt_fail(char *why, size_t n, const char *call, cublasStatus_t s)
{
    const char *name = cublasLtGetStatusName(s);
    return kc_fail(why, n, "%s: %s (%d)", call, name ? name : "CUBLAS_STATUS_?", (int)s);
}

static int cuda_fail(char *why, size_t n, const char *call, cudaError_t e)
{
    return kc_fail(why, n, "%s: %s (%s)", call, cudaGetErrorName(e), cudaGetErrorString(e));
}

#define DNN_TRY(name, call)                                                                                            \
    do {                                                                                                               \
        cudnnStatus_t st_ = (call);                                                                                    \
        if (st_ != CUDNN_STATUS_SUCCESS) {                                                                             \
            rc = cudnn_fail(why, why_size, name, st_);                                                                \
            goto out;                                                                                                  \
        }                                                                                                              \
    } while (0)
#define LT_TRY(name, call)                                                                                             \
    do {                                                                                                               \
        cublasStatus_t st_ = (call);                                                                                   \
        if (st_ != CUBLAS_STATUS_SUCCESS) {                                                                            \
            rc = lt_fail(why, why_size, name, st_);                                                                    \
            goto out;                                                                                                  \
        }                                                                                                              \
    } while (0)
#define CU_TRY(name, call)                                                                                             \
    do {                                                                                                               \
        cudaError_t e_ = (call);                                                                                       \
        if (e_ != cudaSuccess) {                                                                                       \
            rc = cuda_fail(why, why_size, name, e_);                                                                   \
            goto out;                                                                                                  \
        }                                                                                                              \
    } while (0)

static size_t align_up(size_t x) { return (x + KC_ALIGN - 1) / KC_ALIGN * KC_ALIGN; }

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* ---- handles and versions ---------------------------------------------------------------- */

int kc_dnn_create(kc_dnn **out, char *why, size_t why_size)
{
    int rc = 0;
    *out = NULL;
    if (kc_culib_load(why, why_size))
        return -1;
    kc_dnn *d = kl_calloc(1, sizeof *d);
    if (!d)
        return kc_fail(why, why_size, "kc_dnn_create: out of host memory");
    DNN_TRY("cudnnCreate", cudnnCreate(&d->cudnn));
    LT_TRY("cublasLtCreate", cublasLtCreate(&d->lt));
    CU_TRY("cudaStreamCreateWithFlags", cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking));
    CU_TRY("cudaEventCreate", cudaEventCreate(&d->ev0));
    CU_TRY("cudaEventCreate", cudaEventCreate(&d->ev1));
    *out = d;
    return 0;
out:
    kc_dnn_destroy(d);
    return rc;
}

void kc_dnn_destroy(kc_dnn *d)
{
    if (!d)
        return;
    if (d->flush)
        cudaFree(d->flush);
    if (d->ev1)
        cudaEventDestroy(d->ev1);
    if (d->ev0)
        cudaEventDestroy(d->ev0);
    if (d->stream)
        cudaStreamDestroy(d->stream);
    if (d->lt)
        cublasLtDestroy(d->lt);
    if (d->cudnn)
        cudnnDestroy(d->cudnn);
    kl_free(d);
}

void kc_dnn_release_scratch(kc_dnn *d)
{
    if (!d || !d->flush)
        return;
    (void)cudaStreamSynchronize(d->stream); /* the flushes of the last timed runs */
    (void)cudaFree(d->flush);
    (void)cudaGetLastError();
    d->flush = NULL;
    d->flush_bytes = 0;
    d->flush_state = 0; /* set up again by the next timing */
}

int kc_dnn_libraries(char *why, size_t why_size) { return kc_culib_load(why, why_size); }

/* 0 where the libraries cannot be loaded. */
size_t kc_dnn_cudnn_version(void) { return kc_culib_load(NULL, 0) ? 0 : cudnnGetVersion(); }
size_t kc_dnn_cublaslt_version(void) { return kc_culib_load(NULL, 0) ? 0 : cublasLtGetVersion(); }

void kc_dnn_versions(char *buf, size_t size)
{
    size_t a = kc_dnn_cudnn_version(), b = kc_dnn_cublaslt_version();
    if (buf && size)
        snprintf(buf, size, "cudnn %zu.%zu.%zu, cublasLt %zu.%zu.%zu", a / 10000, a / 100 % 100, a % 100, b / 10000,
                 b / 100 % 100, b % 100);
}

/* Time `runs` launches of fn on the timing stream: median ms, or < 0 on error. */
typedef int (*kc_timed_fn)(void *ctx, cudaStream_t s, char *why, size_t why_size);

/* In a model a layer's weights come from memory, not from an L2 still
 * holding them from the run before: timed warm, small-tile kernels that
 * re-read the weights from L2 won at build and lost in the model (kiln's
 * implicit GEMM took ResNet-50 FP16 b1 from 0.33 to 0.69 ms).  So each timed
 * run starts with the L2 overwritten. */
static void flush_setup(kc_dnn *d)
{
    const char *e = getenv("KILN_CUDA_TIME_WARM");
    d->flush_state = -1;
    if (e && *e && strcmp(e, "0") != 0)
        return;
    int dev = 0, l2 = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev) != cudaSuccess ||
        l2 <= 0) {
        (void)cudaGetLastError();
        return;
    }
    d->flush_bytes = 2 * (size_t)l2;
    if (cudaMalloc(&d->flush, d->flush_bytes) != cudaSuccess) {
        (void)cudaGetLastError();
        d->flush = NULL;
        return;
    }
    d->flush_state = 1;
}

static float time_median(kc_dnn *d, kc_timed_fn fn, void *ctx, char *why, size_t why_size)
{
    float t[KC_TIME_RUNS];
    if (!d->flush_state)
        flush_setup(d);
    for (int i = 0; i < KC_TIME_RUNS; i++) {
        if (d->flush_state > 0 && cudaMemsetAsync(d->flush, i, d->flush_bytes, d->stream) != cudaSuccess)
            return -1.0f;
        if (cudaEventRecord(d->ev0, d->stream) != cudaSuccess)
            return -1.0f;
        if (fn(ctx, d->stream, why, why_size))
            return -1.0f;
        if (cudaEventRecord(d->ev1, d->stream) != cudaSuccess || cudaEventSynchronize(d->ev1) != cudaSuccess ||
            cudaEventElapsedTime(&t[i], d->ev0, d->ev1) != cudaSuccess)
            return -1.0f;
    }
    qsort(t, KC_TIME_RUNS, sizeof t[0], cmp_float);
    return t[KC_TIME_RUNS / 2];
}

/* Scratch buffers for timing at create (filled with small values). */
static int scratch_alloc(void **p, size_t elems, kc_dtype t, float value, cudaStream_t s, char *why, size_t why_size)
{
    int rc = 0;
    size_t bytes = (elems ? elems : 1) * kc_dtype_size(t);
    *p = NULL;
    CU_TRY("cudaMalloc (timing scratch)", cudaMalloc(p, bytes));
    CU_TRY("kc_fill (timing scratch)", kc_fill(*p, t, value, (int64_t)(elems ? elems : 1), s));
    return 0;
out:
    if (*p)
        cudaFree(*p);
    *p = NULL;
    return rc;
}

/* ---- convolution ------------------------------------------------------------------------ */

struct kc_conv {
    kc_dnn *d;
    kc_conv_desc desc;
    cudnnTensorDescriptor_t xd, yd, bd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    cudnnActivationDescriptor_t ad;
    int algo;
    size_t ws;
    float ms;
    int fused; /* try cudnnConvolutionBiasActivationForward (cleared when cuDNN refuses it) */
    kc_gemm *gm; /* algo >= KC_CONV_ALGO_GEMM: the 1x1 convolution as a product */
    unsigned *cnt; /* kiln's implicit GEMM with K split: its tiles' arrival counters (zero between runs) */
    size_t cnt_n;
    const void *w_taps; /* desc.dw_taps: the filters [R*S, C] (kc_conv_set_dw_taps; the caller's) */
};

/* Does the convolution read or write a channel slab of a wider tensor? */
static bool conv_slab_x(const kc_conv_desc *q) { return q->x_ch && q->x_ch != q->c; }
static bool conv_slab_y(const kc_conv_desc *q) { return q->y_ch && q->y_ch != q->k; }
static bool conv_slab_z(const kc_conv_desc *q) { return q->has_z && q->z_ch && q->z_ch != q->k; }
static bool conv_slab(const kc_conv_desc *q) { return conv_slab_x(q) || conv_slab_y(q) || conv_slab_z(q); }

/* Bytes of the dense output cuDNN writes before kc_bias_act_ld moves it into y's slab (0: y is dense). */
static size_t conv_ytmp(const kc_conv_desc *q)
{
    if (!conv_slab_y(q))
        return 0;
    return align_up((size_t)(q->n * q->k * q->oh * q->ow) * (q->t == KC_F16 ? 2u : 4u));
}

static bool conv_fusable(const kc_conv *c, int algo)
{
    const kc_conv_desc *q = &c->desc;
    if (conv_slab(q))
        return false;
    if (!q->has_bias)
        return false;
    if (q->act == KC_ACT_RELU)
        return true;
    return q->act == KC_ACT_NONE && algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
}

/* Does kiln's depthwise NHWC kernel take this convolution? */
static bool dw_applies(const kc_conv_desc *q)
{
    return q->nhwc && q->groups == q->c && q->k == q->c && q->c % 8 == 0 && q->r * q->s <= KC_DW_MAX_TAPS &&
           !conv_slab(q) && !getenv("KILN_CUDA_NO_DW");
}

/* The depthwise kernels' parameters of an NHWC depthwise convolution. */
static kc_dwconv dw_params(const kc_conv_desc *q)
{
    kc_dwconv p = {.n = q->n, .h = q->h, .w = q->w, .c = q->c, .oh = q->oh, .ow = q->ow, .r = (int)q->r,
                   .s = (int)q->s, .pt = q->pad_t, .pl = q->pad_l, .sh = q->stride_h, .sw = q->stride_w,
                   .dh = q->dil_h, .dw = q->dil_w, .act = q->act, .alpha = q->act_alpha, .beta = q->act_beta};
    return p;
}

static int dw_exec(const kc_conv *c, const void *x, const void *w, const void *bias, const void *z, void *y,
                   cudaStream_t stream, char *why, size_t why_size)
{
    const kc_conv_desc *q = &c->desc;
    kc_dwconv p = dw_params(q);
    const void *b = q->has_bias ? bias : NULL, *zz = q->has_z ? z : NULL;
    if (!kc_dwconv_nhwc_ok(&p, x, y, zz))
        return kc_fail(why, why_size, "kc_dwconv_nhwc: unaligned tensors");
    bool taps = q->dw_taps && c->w_taps && kc_dwconv_taps_ok(&p, q->t);
    cudaError_t e = taps ? kc_dwconv_nhwc_taps(y, x, c->w_taps, b, zz, &p, q->t, stream)
                         : kc_dwconv_nhwc(y, x, w, b, zz, &p, q->t, stream);
    if (e != cudaSuccess)
        return cuda_fail(why, why_size, taps ? "kc_dwconv_nhwc_taps" : "kc_dwconv_nhwc", e);
    return 0;
}

/* Does kiln's few-channel 1x1 kernel (kc_pw_nhwc) take this convolution? */
static bool pw_applies(const kc_conv_desc *q)
{
    return q->t == KC_F16 && q->nhwc && !q->transposed && q->groups == 1 && q->r == 1 && q->s == 1 &&
           q->stride_h == 1 && q->stride_w == 1 && q->dil_h == 1 && q->dil_w == 1 && q->pad_t == 0 && q->pad_l == 0 &&
           q->pad_b == 0 && q->pad_r == 0 && q->oh == q->h && q->ow == q->w && q->c >= 8 && q->c <= 64 &&
           q->c % 8 == 0 && q->k % 8 == 0 && !conv_slab(q) && !getenv("KILN_CUDA_NO_PW");
}

static int pw_exec(const kc_conv *c, const void *x, const void *w, const void *bias, const void *z, void *y,
                   cudaStream_t stream, char *why, size_t why_size)
{
    const kc_conv_desc *q = &c->desc;
    const void *b = q->has_bias ? bias : NULL, *zz = q->has_z ? z : NULL;
    if (!kc_pw_nhwc_ok(q->c, q->k, x, w, b, zz, y))
        return kc_fail(why, why_size, "kc_pw_nhwc: unaligned tensors");
    cudaError_t e = kc_pw_nhwc(y, x, w, b, zz, q->n * q->h * q->w, q->c, q->k, q->act, q->act_alpha, q->act_beta, stream);
    if (e != cudaSuccess)
        return cuda_fail(why, why_size, "kc_pw_nhwc", e);
    return 0;
}

/* Does an NCHW 1x1 convolution run as a batched cuBLASLt product?  (NHWC
 * ones are planned as one product by the executor, src/cuda/exec.c.) */
static bool gemm_applies(const kc_conv_desc *q)
{
    return !q->nhwc && q->r == 1 && q->s == 1 && q->stride_h == 1 && q->stride_w == 1 && q->pad_t == 0 && q->pad_l == 0 &&
           q->pad_b == 0 && q->pad_r == 0 && q->groups == 1 && q->oh == q->h && q->ow == q->w && !conv_slab(q) &&
           !getenv("KILN_CUDA_NO_CONV_GEMM");
}

/* The product of a 1x1 convolution (see KC_CONV_ALGO_GEMM); gemm_algo < 0
 * times cuBLASLt's candidates. */
static int gemm_conv_create(kc_conv *c, int gemm_algo, size_t max_ws, char *why, size_t why_size)
{
    const kc_conv_desc *q = &c->desc;
    int64_t hw = q->h * q->w;
    kc_gemm_desc g = {.t = q->t, .m = q->k, .n = hw, .k = q->c, .lda = q->c, .ldb = hw, .ldy = hw, .batch = q->n,
                      .stride_a = 0 /* the weights serve every image */, .stride_b = q->c * hw,
                      .stride_y = q->k * hw, .alpha = 1.0f, .act = KC_ACT_NONE, .allow_tf32 = q->allow_tf32};
    return kc_gemm_create(c->d, &g, gemm_algo, max_ws, &c->gm, why, why_size);
}

static int gemm_conv_exec(const kc_conv *c, const void *x, const void *w, const void *bias, const void *z, void *y,
                          void *ws, cudaStream_t stream, char *why, size_t why_size)
{
    const kc_conv_desc *q = &c->desc;
    if (kc_gemm_run(c->gm, w, x, NULL, NULL, y, ws, stream, why, why_size))
        return -1;
    const void *b = q->has_bias ? bias : NULL, *zz = q->has_z ? z : NULL;
    if (!b && !zz && q->act == KC_ACT_NONE)
        return 0;
    cudaError_t e = kc_bias_act(y, y, b, zz, q->n, q->k, q->h * q->w, q->act, q->act_alpha, q->act_beta, q->t, stream);
    if (e != cudaSuccess)
        return cuda_fail(why, why_size, "kc_bias_act (1x1 convolution as a product)", e);
    return 0;
}

#define KC_IM2COL_MARGIN 0.8f
/* float16 at batch 1: ResNet-50 ran 0.318 -> 0.327 ms (two of three calls)
 * with every 3x3 layer on im2col at the 0.8 margin, the extra launches
 * outweighing the kernels' gain; only cuDNN's slow picks (its stem, a 3x3
 * stride-2 layer at 40-50 us) are left to it. */
#define KC_IM2COL_MARGIN_F16 0.5f
/* kiln's float32 implicit GEMM (3xTF32) against cuDNN's float32 kernels:
 * kept when 20% faster, as the 3xTF32 products are (kc_gemm). */
#define KC_X3_MARGIN 0.8f

/* Does an NHWC convolution run as im2col + one product (KC_CONV_ALGO_IM2COL)? */
static bool im2col_applies(const kc_conv_desc *q)
{
    size_t esz = q->t == KC_F16 ? 2 : 4;
    bool plain1x1 = q->r == 1 && q->s == 1 && q->stride_h == 1 && q->stride_w == 1 && !q->pad_t && !q->pad_l &&
                    !q->pad_b && !q->pad_r;
    /* float16 only for small outputs (batch 1-8 of a ResNet): at batch 256
     * the columns' round trip through memory cost ResNet-50 1.4% */
    int64_t m = q->n * q->oh * q->ow;
    return q->nhwc && q->groups == 1 && !plain1x1 && ((size_t)(q->r * q->s * q->c) * esz) % 16 == 0 &&
           m <= (q->t == KC_F16 ? (int64_t)1 << 17 : INT32_MAX) && !conv_slab(q) && !getenv("KILN_CUDA_NO_IM2COL");
}

static size_t im2col_bytes(const kc_conv_desc *q)
{
    return align_up((size_t)(q->n * q->oh * q->ow) * (size_t)(q->r * q->s * q->c) * (q->t == KC_F16 ? 2u : 4u));
}

/* The product of an im2col convolution; gemm_algo < 0 times cuBLASLt's candidates. */
static int im2col_create(kc_conv *c, int gemm_algo, size_t max_ws, char *why, size_t why_size)
{
    const kc_conv_desc *q = &c->desc;
    size_t cb = im2col_bytes(q);
    if (cb > max_ws)
        return kc_fail(why, why_size, "kc_conv_create: the im2col columns (%zu bytes) exceed the workspace (%zu)", cb,
                       max_ws);
    int64_t kk = q->r * q->s * q->c;
    kc_gemm_desc g = {.t = q->t, .m = q->n * q->oh * q->ow, .n = q->k, .k = kk, .trans_b = true, .lda = kk, .ldb = kk,
                      .ldy = q->k, .batch = 1, .alpha = 1.0f, .beta = q->has_z ? 1.0f : 0.0f,
                      .has_bias = q->has_bias, .has_z = q->has_z, .act = q->act, .act_alpha = q->act_alpha,
                      .act_beta = q->act_beta, .allow_tf32 = q->allow_tf32};
    return kc_gemm_create(c->d, &g, gemm_algo, max_ws - cb, &c->gm, why, why_size);
}

static int im2col_exec(const kc_conv *c, const void *x, const void *w, const void *bias, const void *z, void *y,
                       void *ws, cudaStream_t stream, char *why, size_t why_size)
{
    const kc_conv_desc *q = &c->desc;
    kc_dwconv p = {.n = q->n, .h = q->h, .w = q->w, .c = q->c, .oh = q->oh, .ow = q->ow, .r = (int)q->r,
                   .s = (int)q->s, .pt = q->pad_t, .pl = q->pad_l, .sh = q->stride_h, .sw = q->stride_w,
                   .dh = q->dil_h, .dw = q->dil_w};
    if (!ws)
        return kc_fail(why, why_size, "kc_conv_run: the im2col convolution needs its workspace");
    cudaError_t e = kc_im2col_nhwc(ws, x, &p, q->t, stream);
    if (e != cudaSuccess)
        return cuda_fail(why, why_size, "kc_im2col_nhwc", e);
    return kc_gemm_run(c->gm, ws, w, q->has_bias ? bias : NULL, q->has_z ? z : NULL, y,
                       (char *)ws + im2col_bytes(q), stream, why, why_size);
}

/* Does kiln's implicit-GEMM kernel take this convolution (KC_CONV_ALGO_IGEMM)?
 * float16, or float32 as 3xTF32.  (KILN_CUDA_NO_IGEMM only keeps it out of
 * the timing: an engine that recorded it still runs it.) */
static bool igemm_applies(const kc_conv_desc *q)
{
    return q->nhwc && !q->transposed && q->groups == 1 && q->k % 2 == 0 &&
           ((q->t == KC_F16 && q->c % 8 == 0) || (q->t == KC_F32 && q->c % 4 == 0));
}

static bool env_on(const char *name)
{
    const char *e = getenv(name);
    return e && *e && strcmp(e, "0") != 0;
}

/* Is it timed against cuDNN's algorithms?  float32: always (3xTF32 on
 * tensor cores against cuDNN's FMA kernels; KILN_CUDA_NO_3XTF32=1 leaves it
 * out), kept only when KC_X3_MARGIN faster.  float16: only where cuDNN's
 * legacy API needs a second pass for the activation (SiLU, clip, ...).
 * With bias + ReLU (+ residual) cuDNN fuses too, and there the implicit
 * GEMM, timed faster alone, lost in the model: ResNet-50 FP16 b1 0.320 ->
 * 0.430 ms (its 3x3 layers at 14x14 and 7x7: a few dozen blocks streaming
 * 2-5 MB of weights).  KILN_CUDA_IGEMM_ALL=1 times it everywhere it
 * applies. */
/* vs_product: against a 1x1 convolution's cuBLASLt product (KC_CONV_TUNE_IGEMM),
 * whose epilogues also fuse GELU. */
static bool igemm_timed(const kc_conv_desc *q, bool vs_product)
{
    if (q->no_igemm || !igemm_applies(q) || env_on("KILN_CUDA_NO_IGEMM"))
        return false;
    if (q->t == KC_F32)
        return !env_on("KILN_CUDA_NO_3XTF32");
    /* channel slabs: cuDNN's NHWC float16 kernels refuse strided tensors */
    if (env_on("KILN_CUDA_IGEMM_ALL") || conv_slab(q))
        return true;
    bool fused = q->act == KC_ACT_NONE || q->act == KC_ACT_RELU ||
                 (vs_product && (q->act == KC_ACT_GELU_ERF || q->act == KC_ACT_GELU_TANH));
    return !fused;
}

static bool is_igemm(int algo) { return algo >= KC_CONV_ALGO_IGEMM && algo < KC_CONV_ALGO_IGEMM + KC_IGEMM_CFGS; }

static kc_igemm_desc igemm_desc(const kc_conv_desc *q)
{
    kc_igemm_desc p = {.t = q->t, .n = q->n, .h = q->h, .w = q->w, .c = q->c, .k = q->k, .oh = q->oh, .ow = q->ow,
                       .r = (int)q->r, .s = (int)q->s, .pt = q->pad_t, .pl = q->pad_l, .sh = q->stride_h,
                       .sw = q->stride_w, .dh = q->dil_h, .dw = q->dil_w, .act = q->act, .alpha = q->act_alpha,
                       .beta = q->act_beta, .ldx = conv_slab_x(q) ? q->x_ch : 0,
                       .ldy = conv_slab_y(q) ? q->y_ch : 0, .ldz = conv_slab_z(q) ? q->z_ch : 0};
    return p;
}

/* c->cnt with at least kc_igemm_nhwc_counters(cfg) zeroed counters. */
static int igemm_counters(kc_conv *c, int algo, char *why, size_t why_size)
{
    kc_igemm_desc p = igemm_desc(&c->desc);
    size_t n = kc_igemm_nhwc_counters(&p, algo - KC_CONV_ALGO_IGEMM);
    if (n <= c->cnt_n)
        return 0;
    cudaFree(c->cnt);
    c->cnt = NULL;
    c->cnt_n = 0;
    cudaError_t e = cudaMalloc((void **)&c->cnt, n * sizeof *c->cnt);
    if (e == cudaSuccess)
        e = cudaMemset(c->cnt, 0, n * sizeof *c->cnt);
    if (e != cudaSuccess) {
        cudaFree(c->cnt);
        c->cnt = NULL;
        return cuda_fail(why, why_size, "cudaMalloc (implicit GEMM split counters)", e);
    }
    c->cnt_n = n;
    return 0;
}

static int igemm_exec(const kc_conv *c, int algo, const void *x, const void *w, const void *bias, const void *z,
                      void *y, void *ws, cudaStream_t stream, char *why, size_t why_size)
{
    const kc_conv_desc *q = &c->desc;
    kc_igemm_desc p = igemm_desc(q);
    const void *b = q->has_bias ? bias : NULL, *zz = q->has_z ? z : NULL;
    if (!kc_igemm_nhwc_ok(&p, x, w, b, zz, y))
        return kc_fail(why, why_size, "kc_igemm_nhwc: unaligned tensors or sizes out of range");
    int cfg = algo - KC_CONV_ALGO_IGEMM;
    if (kc_igemm_nhwc_counters(&p, cfg) > c->cnt_n || (kc_igemm_nhwc_ws(&p, cfg) && !ws))
        return kc_fail(why, why_size, "kc_igemm_nhwc: the split tactic's workspace or counters are missing");
    cudaError_t e = kc_igemm_nhwc(y, x, w, b, zz, &p, cfg, ws, c->cnt, stream);
    if (e != cudaSuccess)
        return cuda_fail(why, why_size, "kc_igemm_nhwc", e);
    return 0;
}

/* A cuDNN status that means "this combination is not available" (fall back)
 * rather than a failure of the device. */
static bool cudnn_refused(cudnnStatus_t s) { return s >= 2000 && s < 4000; }

/* One convolution; fused says which path.  Returns the cuDNN status of the
 * fused call through *refused when cuDNN declined it (nothing launched). */
static int conv_exec(kc_conv *c, int algo, size_t ws_bytes, bool fused, const void *x, const void *w,
                     const void *bias, const void *z, void *y, void *ws, cudaStream_t stream, bool *refused, char *why,
                     size_t why_size)
{
    const kc_conv_desc *q = &c->desc;
    if (refused)
        *refused = false;
    if (algo == KC_CONV_ALGO_DW)
        return dw_exec(c, x, w, bias, z, y, stream, why, why_size);
    if (algo == KC_CONV_ALGO_PW)
        return pw_exec(c, x, w, bias, z, y, stream, why, why_size);
    if (is_igemm(algo))
        return igemm_exec(c, algo, x, w, bias, z, y, ws, stream, why, why_size);
    if (algo >= KC_CONV_ALGO_IM2COL)
        return im2col_exec(c, x, w, bias, z, y, ws, stream, why, why_size);
    if (algo >= KC_CONV_ALGO_GEMM)
        return gemm_conv_exec(c, x, w, bias, z, y, ws, stream, why, why_size);
    cudnnHandle_t h = c->d->cudnn;
    cudnnStatus_t st = cudnnSetStream(h, stream);
    if (st != CUDNN_STATUS_SUCCESS)
        return cudnn_fail(why, why_size, "cudnnSetStream", st);
    float one = 1.0f, zero = 0.0f;
    if (fused) {
        float a2 = (q->has_z && z) ? 1.0f : 0.0f;
        st = cudnnConvolutionBiasActivationForward(h, &one, c->xd, x, c->wd, w, c->cd, (cudnnConvolutionFwdAlgo_t)algo,
                                                   ws_bytes ? ws : NULL, ws_bytes, &a2, c->yd, a2 != 0.0f ? z : y,
                                                   c->bd, bias, c->ad, c->yd, y);
        if (st == CUDNN_STATUS_SUCCESS)
            return 0;
        if (refused && cudnn_refused(st))
            *refused = true;
        return cudnn_fail(why, why_size, "cudnnConvolutionBiasActivationForward", st);
    }
    if (q->transposed) {
        /* y = the data gradient of the forward convolution y -> x, at x */
        st = cudnnConvolutionBackwardData(h, &one, c->wd, w, c->xd, x, c->cd, (cudnnConvolutionBwdDataAlgo_t)algo,
                                          ws_bytes ? ws : NULL, ws_bytes, &zero, c->yd, y);
        if (st != CUDNN_STATUS_SUCCESS)
            return cudnn_fail(why, why_size, "cudnnConvolutionBackwardData", st);
    } else {
        /* a slab output: cuDNN writes a dense copy at the workspace's start */
        size_t tmp = conv_ytmp(q);
        void *yc = y;
        if (tmp) {
            if (!ws || ws_bytes < tmp)
                return kc_fail(why, why_size, "kc_conv_run: the slab output's workspace is missing");
            yc = ws;
            ws = (char *)ws + tmp;
            ws_bytes -= tmp;
        }
        st = cudnnConvolutionForward(h, &one, c->xd, x, c->wd, w, c->cd, (cudnnConvolutionFwdAlgo_t)algo,
                                     ws_bytes ? ws : NULL, ws_bytes, &zero, c->yd, yc);
        if (st != CUDNN_STATUS_SUCCESS)
            return cudnn_fail(why, why_size, "cudnnConvolutionForward", st);
        if (tmp || conv_slab_z(q)) {
            int64_t outer = q->nhwc ? q->n * q->oh * q->ow : q->n, inner = q->nhwc ? 1 : q->oh * q->ow;
            int64_t row = q->k * inner, ychs = conv_slab_y(q) ? q->y_ch : q->k, zchs = conv_slab_z(q) ? q->z_ch : q->k;
            cudaError_t e = kc_bias_act_ld(y, ychs * inner, yc, row, q->has_bias ? bias : NULL,
                                           q->has_z ? z : NULL, zchs * inner, outer, q->k, inner, q->act,
                                           q->act_alpha, q->act_beta, q->t, stream);
            if (e != cudaSuccess)
                return cuda_fail(why, why_size, "kc_bias_act_ld (conv epilogue into a slab)", e);
            return 0;
        }
    }
    const void *b = q->has_bias ? bias : NULL;
    const void *zz = q->has_z ? z : NULL;
    if (!b && !zz && q->act == KC_ACT_NONE)
        return 0;
    int64_t outer, ch = q->k, inner;
    if (q->nhwc) {
        outer = q->n * q->oh * q->ow;
        inner = 1;
    } else {
        outer = q->n;
        inner = q->oh * q->ow;
    }
    cudaError_t e = kc_bias_act(y, y, b, zz, outer, ch, inner, q->act, q->act_alpha, q->act_beta, q->t, stream);
    if (e != cudaSuccess)
        return cuda_fail(why, why_size, "kc_bias_act (conv epilogue)", e);
    return 0;
}

typedef struct conv_timing {
    kc_conv *c;
    int algo;
    size_t ws_bytes;
    bool fused;
    void *x, *w, *b, *y, *ws;
} conv_timing;

static int conv_timed(void *ctx, cudaStream_t s, char *why, size_t why_size)
{
    conv_timing *t = ctx;
    return conv_exec(t->c, t->algo, t->ws_bytes, t->fused, t->x, t->w, t->b, t->c->desc.has_z ? t->y : NULL, t->y,
                     t->ws, s, NULL, why, why_size);
}

void kc_conv_destroy(kc_conv *c)
{
    if (!c)
        return;
    if (c->ad)
        cudnnDestroyActivationDescriptor(c->ad);
    if (c->cd)
        cudnnDestroyConvolutionDescriptor(c->cd);
    if (c->wd)
        cudnnDestroyFilterDescriptor(c->wd);
    if (c->bd)
        cudnnDestroyTensorDescriptor(c->bd);
    if (c->yd)
        cudnnDestroyTensorDescriptor(c->yd);
    if (c->xd)
        cudnnDestroyTensorDescriptor(c->xd);
    kc_gemm_destroy(c->gm);
    cudaFree(c->cnt);
    kl_free(c);
}

static bool fits_int(int64_t v) { return v >= 1 && v <= INT_MAX; }

/* One timed candidate of a convolution into the debug log (KILN_LOG=debug). */
static void conv_log(const kc_conv_desc *q, const char *what, int code, float ms)
{
    if (!kl_log_enabled(KILN_LOG_DEBUG))
        return;
    kl_log(KILN_LOG_DEBUG, "conv %s n %lld c %lld %lldx%lld k %lld %lldx%lld/%d g %d act %d: %s %d %.4f ms",
           q->t == KC_F16 ? "f16" : "f32", (long long)q->n, (long long)q->c, (long long)q->h, (long long)q->w,
           (long long)q->k, (long long)q->r, (long long)q->s, q->stride_h, q->groups, q->act, what, code, ms);
}

/* Time the product form c->gm runs (algo: its KC_CONV_ALGO_* number) with
 * ws_bytes of its own workspace on tm's scratch buffers; it becomes the
 * choice when faster than margin * *best, and c->gm is dropped otherwise. */
static void time_product_form(kc_conv *c, const conv_timing *tm, int algo, size_t ws_bytes, float margin, float *best,
                              char *last, size_t last_size)
{
    kc_dnn *d = c->d;
    conv_timing t = *tm;
    t.algo = algo;
    t.ws_bytes = ws_bytes;
    t.fused = false;
    t.ws = NULL;
    bool keep = false;
    if (!ws_bytes || cudaMalloc(&t.ws, ws_bytes) == cudaSuccess) {
        if (!conv_timed(&t, d->stream, last, last_size) && cudaStreamSynchronize(d->stream) == cudaSuccess) {
            float ms = time_median(d, conv_timed, &t, last, last_size);
            conv_log(&c->desc, algo >= KC_CONV_ALGO_IM2COL ? "im2col + cublasLt" : "cublasLt 1x1", algo, ms);
            if (ms >= 0.0f && (*best < 0.0f || ms < margin * *best)) {
                *best = ms;
                c->algo = algo;
                c->ws = ws_bytes;
                c->fused = false;
                keep = true;
            }
        }
        cudaFree(t.ws);
    }
    if (!keep) {
        kc_gemm_destroy(c->gm);
        c->gm = NULL;
    }
}

/* Time every algorithm that fits max_workspace on scratch buffers (own_only:
 * kiln's implicit-GEMM tile shapes alone). */
/* The workspace of backward-data algorithm a, or false where cuDNN has none for this case. */
static bool convt_ws(const kc_conv *c, int a, size_t *bytes)
{
    return cudnnGetConvolutionBackwardDataWorkspaceSize(c->d->cudnn, c->wd, c->xd, c->cd, c->yd,
                                                        (cudnnConvolutionBwdDataAlgo_t)a, bytes) == CUDNN_STATUS_SUCCESS;
}

/* ConvTranspose: time cuDNN's backward-data algorithms that fit max_ws. */
static int convt_autotune(kc_conv *c, size_t max_ws, char *why, size_t why_size)
{
    const kc_conv_desc *q = &c->desc;
    kc_dnn *d = c->d;
    int rc = 0;
    size_t sizes[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    bool ok[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    size_t ws_max = 0;
    conv_timing tm = {.c = c};
    for (int a = 0; a < CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT; a++) {
        ok[a] = convt_ws(c, a, &sizes[a]) && sizes[a] <= max_ws;
        if (ok[a] && sizes[a] > ws_max)
            ws_max = sizes[a];
    }
    size_t nx = (size_t)(q->n * q->c * q->h * q->w), nw = (size_t)(q->c * (q->k / q->groups) * q->r * q->s);
    size_t ny = (size_t)(q->n * q->k * q->oh * q->ow);
    if ((rc = scratch_alloc(&tm.x, nx, q->t, 0.01f, d->stream, why, why_size)) ||
        (rc = scratch_alloc(&tm.w, nw, q->t, 0.01f, d->stream, why, why_size)) ||
        (rc = scratch_alloc(&tm.b, (size_t)q->k, q->t, 0.0f, d->stream, why, why_size)) ||
        (rc = scratch_alloc(&tm.y, ny, q->t, 0.0f, d->stream, why, why_size)))
        goto out;
    if (ws_max)
        CU_TRY("cudaMalloc (conv timing workspace)", cudaMalloc(&tm.ws, ws_max));
    CU_TRY("cudaStreamSynchronize", cudaStreamSynchronize(d->stream));
    float best = -1.0f;
    char last[256] = "no algorithm fits the workspace";
    for (int a = 0; a < CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT; a++) {
        if (!ok[a])
            continue;
        tm.algo = a;
        tm.ws_bytes = sizes[a];
        tm.fused = false;
        if (conv_timed(&tm, d->stream, last, sizeof last))
            continue;
        cudaError_t e = cudaStreamSynchronize(d->stream);
        if (e != cudaSuccess) {
            rc = cuda_fail(why, why_size, "cudaStreamSynchronize (conv timing)", e);
            goto out;
        }
        float ms = time_median(d, conv_timed, &tm, last, sizeof last);
        if (ms < 0.0f) {
            if ((e = cudaStreamSynchronize(d->stream)) != cudaSuccess) {
                rc = cuda_fail(why, why_size, "cudaStreamSynchronize (conv timing)", e);
                goto out;
            }
            continue;
        }
        if (best < 0.0f || ms < best) {
            best = ms;
            c->algo = a;
            c->ws = sizes[a];
        }
    }
    (void)cudaGetLastError();
    if (best < 0.0f) {
        rc = kc_fail(why, why_size, "kc_conv_create: no cuDNN backward-data algorithm ran (last: %s)", last);
        goto out;
    }
    c->ms = best;
    c->fused = false;
out:
    cudaFree(tm.ws);
    cudaFree(tm.y);
    cudaFree(tm.b);
    cudaFree(tm.w);
    cudaFree(tm.x);
    return rc;
}

/* Does cuDNN's forward algorithm a keep float32's accuracy here?  Its
 * non-fused Winograd on filters larger than 3x3 does not: rel L2 3.3e-4
 * against float64 on a 672-channel depthwise 5x5 (H100, cuDNN 9; 3x3
 * layers stay under 5e-6), where float32 engines must stay within 1e-5. */
static bool cudnn_algo_accurate(const kc_conv_desc *q, int a)
{
    return !(q->t == KC_F32 && a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED && (q->r > 3 || q->s > 3));
}

static int conv_autotune(kc_conv *c, size_t max_ws, bool own_only, char *why, size_t why_size)
{
    const kc_conv_desc *q = &c->desc;
    kc_dnn *d = c->d;
    int rc = 0;
    if (q->transposed)
        return own_only ? kc_fail(why, why_size, "kc_conv_create: kiln has no own ConvTranspose kernel")
                        : convt_autotune(c, max_ws, why, why_size);
    size_t sizes[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    bool ok[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    size_t ws_max = 0;
    conv_timing tm = {.c = c};
    for (int a = 0; a < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; a++) {
        cudnnStatus_t st = cudnnGetConvolutionForwardWorkspaceSize(d->cudnn, c->xd, c->wd, c->cd, c->yd,
                                                                   (cudnnConvolutionFwdAlgo_t)a, &sizes[a]);
        sizes[a] += conv_ytmp(q);
        ok[a] = !own_only && st == CUDNN_STATUS_SUCCESS && sizes[a] <= max_ws && cudnn_algo_accurate(q, a);
        if (ok[a] && sizes[a] > ws_max)
            ws_max = sizes[a];
    }
    int64_t g = q->groups;
    /* slabs: the scratch tensors as wide as the tensors they are part of (z is timed on y's buffer) */
    int64_t xc = conv_slab_x(q) ? q->x_ch : q->c, yc = conv_slab_y(q) ? q->y_ch : q->k;
    if (conv_slab_z(q) && q->z_ch > yc)
        yc = q->z_ch;
    size_t nx = (size_t)(q->n * xc * q->h * q->w), nw = (size_t)(q->k * (q->c / g) * q->r * q->s);
    size_t ny = (size_t)(q->n * yc * q->oh * q->ow);
    if ((rc = scratch_alloc(&tm.x, nx, q->t, 0.01f, d->stream, why, why_size)) ||
        (rc = scratch_alloc(&tm.w, nw, q->t, 0.01f, d->stream, why, why_size)) ||
        (rc = scratch_alloc(&tm.b, (size_t)q->k, q->t, 0.0f, d->stream, why, why_size)) ||
        (rc = scratch_alloc(&tm.y, ny, q->t, 0.0f, d->stream, why, why_size)))
        goto out;
    if (ws_max)
        CU_TRY("cudaMalloc (conv timing workspace)", cudaMalloc(&tm.ws, ws_max));
    CU_TRY("cudaStreamSynchronize", cudaStreamSynchronize(d->stream));
    float best = -1.0f;
    char last[256] = "no algorithm fits the workspace";
    for (int a = 0; a < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; a++) {
        if (!ok[a])
            continue;
        tm.algo = a;
        tm.ws_bytes = sizes[a];
        tm.fused = conv_fusable(c, a);
        bool refused = false;
        /* warm-up; a refused fused call is retried unfused */
        if (conv_exec(c, a, sizes[a], tm.fused, tm.x, tm.w, tm.b, q->has_z ? tm.y : NULL, tm.y, tm.ws, d->stream,
                      &refused, last, sizeof last)) {
            if (!refused)
                continue;
            tm.fused = false;
            if (conv_exec(c, a, sizes[a], false, tm.x, tm.w, tm.b, q->has_z ? tm.y : NULL, tm.y, tm.ws, d->stream,
                          NULL, last, sizeof last))
                continue;
        }
        cudaError_t e = cudaStreamSynchronize(d->stream);
        if (e != cudaSuccess) {
            rc = cuda_fail(why, why_size, "cudaStreamSynchronize (conv timing)", e);
            goto out;
        }
        float ms = time_median(d, conv_timed, &tm, last, sizeof last);
        conv_log(q, tm.fused ? "cudnn fused algo" : "cudnn algo", a, ms);
        if (ms < 0.0f) {
            e = cudaStreamSynchronize(d->stream);
            if (e != cudaSuccess) {
                rc = cuda_fail(why, why_size, "cudaStreamSynchronize (conv timing)", e);
                goto out;
            }
            continue;
        }
        if (best < 0.0f || ms < best) {
            best = ms;
            c->algo = a;
            c->ws = sizes[a];
            c->fused = tm.fused;
        }
    }
    if (igemm_timed(q, own_only)) {
        tm.fused = false;
        kc_igemm_desc ip = igemm_desc(q);
        void *cudnn_ws = tm.ws, *ig_ws = NULL;
        float ig_best = -1.0f;
        int ig_algo = -1;
        size_t ig_bytes = 0;
        for (int cfg = 0; cfg < KC_IGEMM_CFGS; cfg++) {
            tm.algo = KC_CONV_ALGO_IGEMM + cfg;
            tm.ws_bytes = kc_igemm_nhwc_ws(&ip, cfg);
            /* the split tactics' partial sums (KILN_CUDA_NO_IGEMM_SPLIT=1 leaves them out) */
            if (tm.ws_bytes > max_ws || (tm.ws_bytes && getenv("KILN_CUDA_NO_IGEMM_SPLIT")))
                continue;
            tm.ws = NULL;
            if (tm.ws_bytes) {
                if (cudaMalloc(&ig_ws, tm.ws_bytes) != cudaSuccess) {
                    (void)cudaGetLastError();
                    continue;
                }
                tm.ws = ig_ws;
            }
            if (!igemm_counters(c, tm.algo, last, sizeof last) && !conv_timed(&tm, d->stream, last, sizeof last) &&
                cudaStreamSynchronize(d->stream) == cudaSuccess) {
                float ms = time_median(d, conv_timed, &tm, last, sizeof last);
                conv_log(q, "igemm cfg", tm.algo - KC_CONV_ALGO_IGEMM, ms);
                if (ms >= 0.0f && (ig_best < 0.0f || ms < ig_best)) {
                    ig_best = ms;
                    ig_algo = tm.algo;
                    ig_bytes = tm.ws_bytes;
                }
            }
            (void)cudaStreamSynchronize(d->stream);
            cudaFree(ig_ws);
            ig_ws = NULL;
        }
        tm.ws = cudnn_ws;
        /* float32: three TF32 products in place of cuDNN's float32 kernels only when clearly faster */
        float margin = q->t == KC_F32 ? KC_X3_MARGIN : 1.0f;
        if (ig_best >= 0.0f && (best < 0.0f || ig_best < margin * best)) {
            best = ig_best;
            c->algo = ig_algo;
            c->ws = ig_bytes;
            c->fused = false;
        }
    }
    if (pw_applies(q)) {
        tm.algo = KC_CONV_ALGO_PW;
        tm.ws_bytes = 0;
        tm.fused = false;
        if (!conv_timed(&tm, d->stream, last, sizeof last) && cudaStreamSynchronize(d->stream) == cudaSuccess) {
            float ms = time_median(d, conv_timed, &tm, last, sizeof last);
            conv_log(q, "kiln 1x1 few-channel", 0, ms);
            if (ms >= 0.0f && (best < 0.0f || ms < best)) {
                best = ms;
                c->algo = KC_CONV_ALGO_PW;
                c->ws = 0;
                c->fused = false;
            }
        }
        (void)cudaGetLastError();
    }
    if (dw_applies(q) && !own_only) {
        tm.algo = KC_CONV_ALGO_DW;
        tm.ws_bytes = 0;
        tm.fused = false;
        /* the tap-major form on the scratch filters (same size; their layout does not change the time) */
        c->w_taps = q->dw_taps ? tm.w : NULL;
        if (!dw_exec(c, tm.x, tm.w, tm.b, q->has_z ? tm.y : NULL, tm.y, d->stream, last, sizeof last) &&
            cudaStreamSynchronize(d->stream) == cudaSuccess) {
            float ms = time_median(d, conv_timed, &tm, last, sizeof last);
            conv_log(q, c->w_taps ? "kiln depthwise (taps)" : "kiln depthwise", 0, ms);
            if (ms >= 0.0f && (best < 0.0f || ms < best)) {
                best = ms;
                c->algo = KC_CONV_ALGO_DW;
                c->ws = 0;
                c->fused = false;
            }
        }
        c->w_taps = NULL; /* the caller's, from kc_conv_set_dw_taps */
    }
    if (!own_only && gemm_applies(q) && !gemm_conv_create(c, -1, max_ws, last, sizeof last))
        time_product_form(c, &tm, KC_CONV_ALGO_GEMM + kc_gemm_algo(c->gm), kc_gemm_workspace(c->gm), 1.0f, &best,
                          last, sizeof last);
    /* two launches where cuDNN has one: kept only when clearly faster alone */
    if (!own_only && im2col_applies(q) && !c->gm && !im2col_create(c, -1, max_ws, last, sizeof last))
        time_product_form(c, &tm, KC_CONV_ALGO_IM2COL + kc_gemm_algo(c->gm),
                          im2col_bytes(q) + kc_gemm_workspace(c->gm),
                          q->t == KC_F16 ? KC_IM2COL_MARGIN_F16 : KC_IM2COL_MARGIN, &best, last, sizeof last);
    (void)cudaGetLastError(); /* launch-configuration errors of refused algorithms are not sticky */
    if (best < 0.0f) {
        rc = kc_fail(why, why_size, "kc_conv_create: no cuDNN algorithm ran (last: %s)", last);
        goto out;
    }
    c->ms = best;
    conv_log(q, "chose", c->algo, best);
out:
    cudaFree(tm.ws);
    cudaFree(tm.y);
    cudaFree(tm.b);
    cudaFree(tm.w);
    cudaFree(tm.x);
    return rc;
}

int kc_conv_create(kc_dnn *d, const kc_conv_desc *desc, int algo, size_t max_workspace, kc_conv **out, char *why,
                   size_t why_size)
{
    int rc = 0;
    *out = NULL;
    const kc_conv_desc *q = desc;
    if (!d || (q->t != KC_F32 && q->t != KC_F16))
        return kc_fail(why, why_size, "kc_conv_create: bad handle or dtype");
    if (!fits_int(q->n) || !fits_int(q->c) || !fits_int(q->h) || !fits_int(q->w) || !fits_int(q->k) ||
        !fits_int(q->r) || !fits_int(q->s) || !fits_int(q->oh) || !fits_int(q->ow) || q->groups < 1 ||
        q->c % q->groups || q->k % q->groups || q->stride_h < 1 || q->stride_w < 1 || q->dil_h < 1 || q->dil_w < 1 ||
        q->pad_t < 0 || q->pad_l < 0 || q->pad_b < 0 || q->pad_r < 0 || q->act < 0 || q->act >= KC_ACT_COUNT)
        return kc_fail(why, why_size, "kc_conv_create: invalid convolution description");
    if (q->transposed && algo >= CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT)
        return kc_fail(why, why_size, "kc_conv_create: ConvTranspose algorithm %d out of range (cuDNN has %d)", algo,
                       (int)CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
    if (algo == KC_CONV_ALGO_DW && !dw_applies(q))
        return kc_fail(why, why_size, "kc_conv_create: kiln's depthwise kernel does not take this convolution");
    if (algo == KC_CONV_ALGO_PW && !pw_applies(q))
        return kc_fail(why, why_size, "kc_conv_create: kiln's few-channel 1x1 kernel does not take this convolution");
    if (algo >= KC_CONV_ALGO_IGEMM && (!is_igemm(algo) || !igemm_applies(q)))
        return kc_fail(why, why_size, "kc_conv_create: kiln's implicit-GEMM kernel does not take this convolution");
    if (algo == KC_CONV_TUNE_IGEMM && !igemm_timed(q, true) && !pw_applies(q))
        return kc_fail(why, why_size, "kc_conv_create: kiln's implicit-GEMM kernel is not timed for this convolution");
    if (algo >= KC_CONV_ALGO_IM2COL && algo < KC_CONV_ALGO_IGEMM && !im2col_applies(q))
        return kc_fail(why, why_size, "kc_conv_create: this convolution does not run as im2col and a product");
    if (algo >= KC_CONV_ALGO_GEMM && algo < KC_CONV_ALGO_IM2COL && !gemm_applies(q))
        return kc_fail(why, why_size, "kc_conv_create: this convolution is not a 1x1 product");
    if (algo >= CUDNN_CONVOLUTION_FWD_ALGO_COUNT && algo != KC_CONV_ALGO_DW && algo != KC_CONV_ALGO_PW &&
        algo < KC_CONV_ALGO_GEMM)
        return kc_fail(why, why_size, "kc_conv_create: algorithm %d out of range (cuDNN has %d)", algo,
                       (int)CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
    if (algo >= 0 && algo < CUDNN_CONVOLUTION_FWD_ALGO_COUNT && !cudnn_algo_accurate(q, algo))
        return kc_fail(why, why_size, "kc_conv_create: cuDNN's algorithm %d is not accurate enough for float32 %lldx%lld "
                       "filters", algo, (long long)q->r, (long long)q->s);
    kc_conv *c = kl_calloc(1, sizeof *c);
    if (!c)
        return kc_fail(why, why_size, "kc_conv_create: out of host memory");
    c->d = d;
    c->desc = *desc;
    cudnnDataType_t dt = q->t == KC_F16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
    cudnnTensorFormat_t fmt = q->nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    DNN_TRY("cudnnCreateTensorDescriptor", cudnnCreateTensorDescriptor(&c->xd));
    DNN_TRY("cudnnCreateTensorDescriptor", cudnnCreateTensorDescriptor(&c->yd));
    DNN_TRY("cudnnCreateTensorDescriptor", cudnnCreateTensorDescriptor(&c->bd));
    DNN_TRY("cudnnCreateFilterDescriptor", cudnnCreateFilterDescriptor(&c->wd));
    DNN_TRY("cudnnCreateConvolutionDescriptor", cudnnCreateConvolutionDescriptor(&c->cd));
    DNN_TRY("cudnnCreateActivationDescriptor", cudnnCreateActivationDescriptor(&c->ad));
    if (conv_slab(q) && (q->transposed || (conv_slab_x(q) && q->x_ch < q->c) || (conv_slab_y(q) && q->y_ch < q->k) ||
                         (conv_slab_z(q) && q->z_ch < q->k))) {
        rc = kc_fail(why, why_size, "kc_conv_create: a channel slab narrower than its convolution, or a transposed one");
        goto out;
    }
    if (conv_slab_x(q)) { /* channels [0, c) of an x_ch-channel tensor */
        int64_t hw = q->h * q->w, xc = q->x_ch;
        int ns = (int)(xc * hw), cs = q->nhwc ? 1 : (int)hw, hs = (int)(q->nhwc ? q->w * xc : q->w),
            ws_ = q->nhwc ? (int)xc : 1;
        if (xc * hw > INT_MAX) {
            rc = kc_fail(why, why_size, "kc_conv_create: the slab's tensor is too large for cuDNN's strides");
            goto out;
        }
        DNN_TRY("cudnnSetTensor4dDescriptorEx",
                cudnnSetTensor4dDescriptorEx(c->xd, dt, (int)q->n, (int)q->c, (int)q->h, (int)q->w, ns, cs, hs, ws_));
    } else {
        DNN_TRY("cudnnSetTensor4dDescriptor",
                cudnnSetTensor4dDescriptor(c->xd, fmt, dt, (int)q->n, (int)q->c, (int)q->h, (int)q->w));
    }
    DNN_TRY("cudnnSetTensor4dDescriptor",
            cudnnSetTensor4dDescriptor(c->yd, fmt, dt, (int)q->n, (int)q->k, (int)q->oh, (int)q->ow));
    DNN_TRY("cudnnSetTensor4dDescriptor", cudnnSetTensor4dDescriptor(c->bd, fmt, dt, 1, (int)q->k, 1, 1));
    /* ConvTranspose: the filter of the forward convolution y -> x, [c, k/groups, r, s] as ONNX stores it */
    DNN_TRY("cudnnSetFilter4dDescriptor",
            q->transposed ? cudnnSetFilter4dDescriptor(c->wd, dt, fmt, (int)q->c, (int)(q->k / q->groups), (int)q->r,
                                                       (int)q->s)
                          : cudnnSetFilter4dDescriptor(c->wd, dt, fmt, (int)q->k, (int)(q->c / q->groups), (int)q->r,
                                                       (int)q->s));
    /* cuDNN pads symmetrically: pad_t/pad_l serve when the bottom/right padding
     * yields the same output size (rows past the input read zeros either way). */
    DNN_TRY("cudnnSetConvolution2dDescriptor",
            cudnnSetConvolution2dDescriptor(c->cd, q->pad_t, q->pad_l, q->stride_h, q->stride_w, q->dil_h, q->dil_w,
                                            CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    DNN_TRY("cudnnSetConvolutionGroupCount", cudnnSetConvolutionGroupCount(c->cd, q->groups));
    /* FP32 stays FP32 (FMA kernels only) unless TF32 is allowed */
    cudnnMathType_t math = q->t == KC_F16 ? CUDNN_TENSOR_OP_MATH : q->allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
    DNN_TRY("cudnnSetConvolutionMathType", cudnnSetConvolutionMathType(c->cd, math));
    DNN_TRY("cudnnSetActivationDescriptor",
            cudnnSetActivationDescriptor(c->ad,
                                         q->act == KC_ACT_RELU ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY,
                                         CUDNN_PROPAGATE_NAN, 0.0));
    int on, oc, oh, ow;
    if (q->transposed) {
        DNN_TRY("cudnnGetConvolution2dForwardOutputDim",
                cudnnGetConvolution2dForwardOutputDim(c->cd, c->yd, c->wd, &on, &oc, &oh, &ow));
        if (on != q->n || oc != q->c || oh != q->h || ow != q->w) {
            rc = kc_fail(why, why_size,
                         "kc_conv_create: a %lldx%lld ConvTranspose output with begin pads %d,%d does not convolve "
                         "back onto the %lldx%lld input with symmetric padding (cuDNN gives %dx%d)",
                         (long long)q->oh, (long long)q->ow, q->pad_t, q->pad_l, (long long)q->h, (long long)q->w,
                         oh, ow);
            goto out;
        }
        if (algo >= 0) {
            size_t ws = 0;
            if (!convt_ws(c, algo, &ws)) {
                rc = kc_fail(why, why_size, "kc_conv_create: cuDNN has no backward-data algorithm %d for this case",
                             algo);
                goto out;
            }
            c->algo = algo;
            c->ws = ws;
            c->ms = 0.0f;
            c->fused = false;
        } else if ((rc = convt_autotune(c, max_workspace, why, why_size))) {
            goto out;
        }
        *out = c;
        return 0;
    }
    DNN_TRY("cudnnGetConvolution2dForwardOutputDim",
            cudnnGetConvolution2dForwardOutputDim(c->cd, c->xd, c->wd, &on, &oc, &oh, &ow));
    if (on != q->n || oc != q->k || oh != q->oh || ow != q->ow) {
        if (q->pad_t != q->pad_b || q->pad_l != q->pad_r)
            rc = kc_fail(why, why_size,
                         "kc_conv_create: asymmetric padding (t %d, l %d, b %d, r %d) cuDNN cannot express; "
                         "pad the input explicitly and convolve with symmetric padding",
                         q->pad_t, q->pad_l, q->pad_b, q->pad_r);
        else
            rc = kc_fail(why, why_size, "kc_conv_create: output %lldx%lld given, cuDNN computes %dx%d",
                         (long long)q->oh, (long long)q->ow, oh, ow);
        goto out;
    }
    if (algo == KC_CONV_ALGO_DW || algo == KC_CONV_ALGO_PW || is_igemm(algo)) {
        c->algo = algo;
        c->ws = 0;
        c->ms = 0.0f;
        c->fused = false;
        if (is_igemm(algo)) {
            kc_igemm_desc ip = igemm_desc(q);
            c->ws = kc_igemm_nhwc_ws(&ip, algo - KC_CONV_ALGO_IGEMM);
            if ((rc = igemm_counters(c, algo, why, why_size)))
                goto out;
        }
    } else if (algo >= KC_CONV_ALGO_IM2COL) {
        if ((rc = im2col_create(c, algo - KC_CONV_ALGO_IM2COL, max_workspace, why, why_size)))
            goto out;
        c->algo = algo;
        c->ws = im2col_bytes(q) + kc_gemm_workspace(c->gm);
        c->ms = 0.0f;
        c->fused = false;
    } else if (algo >= KC_CONV_ALGO_GEMM) {
        if ((rc = gemm_conv_create(c, algo - KC_CONV_ALGO_GEMM, max_workspace, why, why_size)))
            goto out;
        c->algo = algo;
        c->ws = kc_gemm_workspace(c->gm);
        c->ms = 0.0f;
        c->fused = false;
    } else if (algo >= 0) {
        size_t ws = 0;
        DNN_TRY("cudnnGetConvolutionForwardWorkspaceSize",
                cudnnGetConvolutionForwardWorkspaceSize(d->cudnn, c->xd, c->wd, c->cd, c->yd,
                                                        (cudnnConvolutionFwdAlgo_t)algo, &ws));
        c->algo = algo;
        c->ws = ws + conv_ytmp(q);
        c->ms = 0.0f;
        c->fused = conv_fusable(c, algo);
    } else if ((rc = conv_autotune(c, max_workspace, algo == KC_CONV_TUNE_IGEMM, why, why_size))) {
        goto out;
    }
    *out = c;
    return 0;
out:
    kc_conv_destroy(c);
    return rc;
}

void kc_conv_set_dw_taps(kc_conv *c, const void *w_taps)
{
    if (c)
        c->w_taps = w_taps;
}

void kc_conv_algo_name(int algo, bool transposed, char *buf, size_t size)
{
    static const char *const fwd[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT",
                                      "FFT",           "FFT_TILING",            "WINOGRAD", "WINOGRAD_NONFUSED"};
    static const char *const bwd[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
    int bm, bn, wm, splits;
    if (!buf || !size)
        return;
    if (algo < 0) {
        snprintf(buf, size, "not chosen");
    } else if (algo < KC_CONV_ALGO_DW) {
        const char *const *names = transposed ? bwd : fwd;
        int n = transposed ? (int)(sizeof bwd / sizeof *bwd) : (int)(sizeof fwd / sizeof *fwd);
        if (algo < n)
            snprintf(buf, size, "cuDNN %s%s", transposed ? "backward-data " : "", names[algo]);
        else
            snprintf(buf, size, "cuDNN %salgorithm %d", transposed ? "backward-data " : "", algo);
    } else if (algo == KC_CONV_ALGO_DW) {
        snprintf(buf, size, "kiln depthwise");
    } else if (algo == KC_CONV_ALGO_PW) {
        snprintf(buf, size, "kiln 1x1 few-channel");
    } else if (algo >= KC_CONV_ALGO_GEMM && algo < KC_CONV_ALGO_IGEMM) {
        bool col = algo >= KC_CONV_ALGO_IM2COL;
        int i = algo - (col ? KC_CONV_ALGO_IM2COL : KC_CONV_ALGO_GEMM);
        snprintf(buf, size, "%s cuBLASLt product, %scandidate %d", col ? "im2col +" : "1x1 as",
                 i >= KC_GEMM_ALGO_X3 ? "3xTF32 " : "", i >= KC_GEMM_ALGO_X3 ? i - KC_GEMM_ALGO_X3 : i);
    } else if (kc_igemm_cfg_shape(algo - KC_CONV_ALGO_IGEMM, &bm, &bn, &wm, &splits)) {
        if (splits > 1)
            snprintf(buf, size, "kiln implicit GEMM %dx%d tile, %dx%d warps, K split %d", bm, bn, wm, 4 / wm, splits);
        else
            snprintf(buf, size, "kiln implicit GEMM %dx%d tile, %dx%d warps", bm, bn, wm, 4 / wm);
    } else {
        snprintf(buf, size, "algorithm %d", algo);
    }
}

void kc_conv_describe(const kc_conv *c, char *buf, size_t size)
{
    if (!buf || !size)
        return;
    buf[0] = 0;
    if (!c)
        return;
    const kc_conv_desc *q = &c->desc;
    bool epi = q->has_bias || q->has_z || q->act != KC_ACT_NONE;
    if (c->gm && c->algo >= KC_CONV_ALGO_GEMM && c->algo < KC_CONV_ALGO_IGEMM) {
        char g[160];
        kc_gemm_describe(c->gm, g, sizeof g);
        if (c->algo < KC_CONV_ALGO_IM2COL) /* the product without epilogue, then kc_bias_act */
            snprintf(buf, size, "1x1 as %s%s", g, epi ? " + bias/act pass" : "");
        else
            snprintf(buf, size, "im2col + %s", g);
        return;
    }
    kc_conv_algo_name(c->algo, q->transposed, buf, size);
    size_t len = strlen(buf);
    if (c->algo == KC_CONV_ALGO_DW && c->w_taps && len < size)
        snprintf(buf + len, size - len, " (tap-major)");
    len = strlen(buf);
    /* a cuDNN algorithm runs the epilogue in its own call only when fused (conv_fusable: bias with
     * ReLU or none, no slab); kiln's kernels always fuse it */
    bool lib = c->algo >= 0 && c->algo < KC_CONV_ALGO_DW;
    if (lib && epi && !c->fused && len < size)
        snprintf(buf + len, size - len, " + bias/act pass");
}

int kc_conv_algo(const kc_conv *c) { return c->algo; }
size_t kc_conv_workspace(const kc_conv *c) { return c->ws; }
float kc_conv_time_ms(const kc_conv *c) { return c->ms; }

int kc_conv_run(kc_conv *c, const void *x, const void *w, const void *bias, const void *z, void *y, void *workspace,
                cudaStream_t stream, char *why, size_t why_size)
{
    if ((c->desc.has_bias && !bias) || (c->desc.has_z && !z) || (c->ws && !workspace))
        return kc_fail(why, why_size, "kc_conv_run: missing bias, z or workspace");
    if (c->desc.transposed)
        return conv_exec(c, c->algo, c->ws, false, x, w, bias, z, y, workspace, stream, NULL, why, why_size);
    if (is_igemm(c->algo))
        return igemm_exec(c, c->algo, x, w, bias, z, y, workspace, stream, why, why_size);
    if (c->algo >= KC_CONV_ALGO_IM2COL)
        return im2col_exec(c, x, w, bias, z, y, workspace, stream, why, why_size);
    if (c->algo >= KC_CONV_ALGO_GEMM)
        return gemm_conv_exec(c, x, w, bias, z, y, workspace, stream, why, why_size);
    if (c->fused) {
        bool refused = false;
        if (!conv_exec(c, c->algo, c->ws, true, x, w, bias, z, y, workspace, stream, &refused, why, why_size))
            return 0;
        if (!refused)
            return -1;
        c->fused = 0; /* cuDNN declined the fused form for this shape: use conv + kc_bias_act from now on */
    }
    return conv_exec(c, c->algo, c->ws, false, x, w, bias, z, y, workspace, stream, NULL, why, why_size);
}

int64_t kc_conv_pool_parts(const kc_conv *c)
{
    if (!c || c->algo != KC_CONV_ALGO_DW || !c->desc.dw_taps || !c->w_taps || conv_slab(&c->desc) ||
        c->desc.transposed)
        return 0;
    kc_dwconv p = dw_params(&c->desc);
    return kc_dwconv_pool_parts(&p, c->desc.t);
}

int kc_conv_run_pool(kc_conv *c, const void *x, const void *bias, const void *z, void *y, float *part,
                     cudaStream_t stream, char *why, size_t why_size)
{
    const kc_conv_desc *q = &c->desc;
    if (!kc_conv_pool_parts(c) || !part)
        return kc_fail(why, why_size, "kc_conv_run_pool: not a tap-major depthwise convolution");
    if ((q->has_bias && !bias) || (q->has_z && !z))
        return kc_fail(why, why_size, "kc_conv_run_pool: missing bias or z");
    kc_dwconv p = dw_params(q);
    cudaError_t e = kc_dwconv_nhwc_taps_pool(y, x, c->w_taps, q->has_bias ? bias : NULL, q->has_z ? z : NULL, &p,
                                             part, q->t, stream);
    if (e != cudaSuccess)
        return cuda_fail(why, why_size, "kc_dwconv_nhwc_taps_pool", e);
    return 0;
}

/* ---- matrix products --------------------------------------------------------------------- */

struct kc_gemm {
    kc_dnn *d;
    kc_gemm_desc desc;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc; /* Lt's A (our B), Lt's B (our A), C = D (y) */
    cublasLtMatmulAlgo_t algo;
    int algo_idx;
    size_t ws;
    float ms;
    bool ep_bias;     /* the epilogue adds the bias */
    int post_act;     /* act applied by kc_bias_act after the product (KC_ACT_NONE: none) */
    bool post_bias;   /* kc_bias_act adds the bias */
    const void *bias_set;
    /* FP32 as three TF32 products (algo_idx >= KC_GEMM_ALGO_X3): the inner
     * product over A' = [A_hi A_hi A_lo] (m x 3k) and B' = [B_hi; B_lo; B_hi],
     * both written into the workspace after the inner product's own. */
    kc_gemm *x3;
    size_t x3_off_a, x3_off_b;
    unsigned *gv_cnt; /* algo_idx == KC_GEMM_ALGO_GEMV: kc_gemv's arrival counters (zero between runs) */
};

void kc_gemm_destroy(kc_gemm *g)
{
    if (!g)
        return;
    if (g->gv_cnt)
        cudaFree(g->gv_cnt);
    if (g->lc)
        cublasLtMatrixLayoutDestroy(g->lc);
    if (g->lb)
        cublasLtMatrixLayoutDestroy(g->lb);
    if (g->la)
        cublasLtMatrixLayoutDestroy(g->la);
    if (g->op)
        cublasLtMatmulDescDestroy(g->op);
    kc_gemm_destroy(g->x3);
    kl_free(g);
}

static int gemm_layout(cublasLtMatrixLayout_t *l, cudaDataType_t dt, int64_t rows, int64_t cols, int64_t ld,
                       int64_t batch, int64_t stride, char *why, size_t why_size)
{
    int rc = 0;
    int32_t bc = (int32_t)batch;
    LT_TRY("cublasLtMatrixLayoutCreate", cublasLtMatrixLayoutCreate(l, dt, (uint64_t)rows, (uint64_t)cols, ld));
    if (batch > 1) {
        LT_TRY("cublasLtMatrixLayoutSetAttribute(BATCH_COUNT)",
               cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc));
        LT_TRY("cublasLtMatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET)",
               cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                sizeof stride));
    }
out:
    return rc;
}

/* Elements spanned by a batched row-major operand. */
static size_t gemm_extent(int64_t rows, int64_t cols, int64_t ld, int64_t batch, int64_t stride)
{
    return (size_t)((batch - 1) * stride + (rows - 1) * ld + cols);
}

static int gemm_exec(kc_gemm *g, const cublasLtMatmulAlgo_t *algo, size_t ws_bytes, const void *a, const void *b,
                     const void *bias, const void *z, void *y, void *ws, cudaStream_t stream, char *why,
                     size_t why_size)
{
    const kc_gemm_desc *q = &g->desc;
    int rc = 0;
    if (g->ep_bias && bias != g->bias_set) {
        LT_TRY("cublasLtMatmulDescSetAttribute(BIAS_POINTER)",
               cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
        g->bias_set = bias;
    }
    float alpha = q->alpha;
    bool use_z = q->has_z && q->beta != 0.0f;
    float beta = use_z ? q->beta : 0.0f;
    const void *cptr = use_z ? z : y;
    LT_TRY("cublasLtMatmul", cublasLtMatmul(g->d->lt, g->op, &alpha, b, g->la, a, g->lb, &beta, cptr, g->lc, y,
                                            g->lc, algo, ws_bytes ? ws : NULL, ws_bytes, stream));
    if (g->post_act != KC_ACT_NONE || g->post_bias) {
        cudaError_t e = kc_bias_act(y, y, g->post_bias ? bias : NULL, NULL, q->batch * q->m, q->n, 1, g->post_act,
                                    q->act_alpha, q->act_beta, q->t, stream);
        if (e != cudaSuccess)
            return cuda_fail(why, why_size, "kc_bias_act (gemm epilogue)", e);
    }
out:
    return rc;
}

typedef struct gemm_timing {
    kc_gemm *g;
    const cublasLtMatmulAlgo_t *algo;
    size_t ws_bytes;
    void *a, *b, *bias, *y, *ws;
} gemm_timing;

static int gemm_timed(void *ctx, cudaStream_t s, char *why, size_t why_size)
{
    gemm_timing *t = ctx;
    return gemm_exec(t->g, t->algo, t->ws_bytes, t->a, t->b, t->bias, t->g->desc.has_z ? t->y : NULL, t->y, t->ws,
                     s, why, why_size);
}

/* Set the epilogue for `level` (0: bias and activation in cuBLASLt where it
 * has them, 1: bias only, 2: nothing) and ask the heuristic. */
static int gemm_heuristic(kc_gemm *g, int level, int count, size_t max_ws, cublasLtMatmulHeuristicResult_t *res,
                          int *nres, char *why, size_t why_size)
{
    const kc_gemm_desc *q = &g->desc;
    int rc = 0;
    cublasLtMatmulPreference_t pref = NULL;
    cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_DEFAULT;
    g->ep_bias = false;
    g->post_bias = false;
    g->post_act = q->act;
    if (level == 0 && q->act == KC_ACT_RELU) {
        ep = q->has_bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
        g->ep_bias = q->has_bias;
        g->post_act = KC_ACT_NONE;
    } else if (level == 0 && q->act == KC_ACT_GELU_TANH) {
        /* cuBLASLt's GELU is the tanh approximation: only for gelu (tanh) */
        ep = q->has_bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
        g->ep_bias = q->has_bias;
        g->post_act = KC_ACT_NONE;
    } else if (level <= 1 && q->has_bias) {
        ep = CUBLASLT_EPILOGUE_BIAS;
        g->ep_bias = true;
    } else {
        g->post_bias = q->has_bias;
    }
    g->bias_set = NULL;
    const void *nullp = NULL;
    LT_TRY("cublasLtMatmulDescSetAttribute(EPILOGUE)",
           cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep));
    LT_TRY("cublasLtMatmulDescSetAttribute(BIAS_POINTER)",
           cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &nullp, sizeof nullp));
    LT_TRY("cublasLtMatmulPreferenceCreate", cublasLtMatmulPreferenceCreate(&pref));
    uint64_t wsb = max_ws;
    uint32_t al = 16;
    LT_TRY("cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)",
           cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb));
    LT_TRY("cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_A_BYTES)",
           cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al, sizeof al));
    LT_TRY("cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_B_BYTES)",
           cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al, sizeof al));
    LT_TRY("cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_C_BYTES)",
           cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al, sizeof al));
    LT_TRY("cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_D_BYTES)",
           cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al, sizeof al));
    *nres = 0;
    LT_TRY("cublasLtMatmulAlgoGetHeuristic",
           cublasLtMatmulAlgoGetHeuristic(g->d->lt, g->op, g->la, g->lb, g->lc, g->lc, pref, count, res,
                                          nres));
    int k = 0; /* keep the usable ones, in order */
    for (int i = 0; i < *nres; i++)
        if (res[i].state == CUBLAS_STATUS_SUCCESS && res[i].workspaceSize <= max_ws)
            res[k++] = res[i];
    *nres = k;
out:
    if (pref)
        cublasLtMatmulPreferenceDestroy(pref);
    return rc;
}

/* A candidate's split-K: its number of K slices and whether their sum runs
 * as a second kernel (reduction schemes other than in place).  Timed apart,
 * that kernel's launch is inside the candidate's time; in an engine's CUDA
 * graph the next kernel's blocks wait for it with programmatic dependent
 * launch, which costs more than the timing sees (ResNet-50 b1's layer4:
 * five 3.5 us reductions).  KILN_CUDA_SPLITK_PENALTY_US (default
 * KC_SPLITK_PENALTY_US) is added to such candidates' times at build. */
#ifndef KC_SPLITK_PENALTY_US
#define KC_SPLITK_PENALTY_US 0.0f
#endif
static float splitk_penalty_ms(const cublasLtMatmulAlgo_t *algo, int *splits, int *scheme)
{
    const char *e = getenv("KILN_CUDA_SPLITK_PENALTY_US"); /* (build time only: read per candidate) */
    float v = e ? (float)atof(e) : KC_SPLITK_PENALTY_US;
    const float pen = v > 0.0f && v < 1000.0f ? v * 1e-3f : 0.0f;
    int32_t sk = 1;
    uint32_t red = CUBLASLT_REDUCTION_SCHEME_NONE;
    size_t got = 0;
    if (cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &sk, sizeof sk, &got) !=
        CUBLAS_STATUS_SUCCESS)
        sk = 1;
    if (cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &red, sizeof red, &got) !=
        CUBLAS_STATUS_SUCCESS)
        red = CUBLASLT_REDUCTION_SCHEME_NONE;
    *splits = sk;
    *scheme = (int)red;
    return sk > 1 && red != CUBLASLT_REDUCTION_SCHEME_NONE && red != CUBLASLT_REDUCTION_SCHEME_INPLACE ? pen : 0.0f;
}

static int gemm_autotune(kc_gemm *g, const cublasLtMatmulHeuristicResult_t *res, int nres, char *why,
                         size_t why_size)
{
    const kc_gemm_desc *q = &g->desc;
    kc_dnn *d = g->d;
    int rc = 0;
    gemm_timing tm = {.g = g};
    size_t ws_max = 0;
    for (int i = 0; i < nres; i++)
        if (res[i].workspaceSize > ws_max)
            ws_max = res[i].workspaceSize;
    size_t na = q->trans_a ? gemm_extent(q->k, q->m, q->lda, q->batch, q->stride_a)
                           : gemm_extent(q->m, q->k, q->lda, q->batch, q->stride_a);
    size_t nb = q->trans_b ? gemm_extent(q->n, q->k, q->ldb, q->batch, q->stride_b)
                           : gemm_extent(q->k, q->n, q->ldb, q->batch, q->stride_b);
    size_t ny = gemm_extent(q->m, q->n, q->ldy, q->batch, q->stride_y);
    if ((rc = scratch_alloc(&tm.a, na, q->t, 0.01f, d->stream, why, why_size)) ||
        (rc = scratch_alloc(&tm.b, nb, q->t, 0.01f, d->stream, why, why_size)) ||
        (rc = scratch_alloc(&tm.bias, (size_t)q->n, q->t, 0.0f, d->stream, why, why_size)) ||
        (rc = scratch_alloc(&tm.y, ny, q->t, 0.0f, d->stream, why, why_size)))
        goto out;
    if (ws_max)
        CU_TRY("cudaMalloc (gemm timing workspace)", cudaMalloc(&tm.ws, ws_max));
    CU_TRY("cudaStreamSynchronize", cudaStreamSynchronize(d->stream));
    float best = -1.0f;
    char last[256] = "";
    for (int i = 0; i < nres; i++) {
        tm.algo = &res[i].algo;
        tm.ws_bytes = res[i].workspaceSize;
        if (gemm_timed(&tm, d->stream, last, sizeof last))
            continue;
        cudaError_t e = cudaStreamSynchronize(d->stream);
        if (e != cudaSuccess) {
            rc = cuda_fail(why, why_size, "cudaStreamSynchronize (gemm timing)", e);
            goto out;
        }
        float ms = time_median(d, gemm_timed, &tm, last, sizeof last);
        if (ms < 0.0f) {
            e = cudaStreamSynchronize(d->stream);
            if (e != cudaSuccess) {
                rc = cuda_fail(why, why_size, "cudaStreamSynchronize (gemm timing)", e);
                goto out;
            }
            continue;
        }
        int sk = 1, scheme = 0;
        float pen = splitk_penalty_ms(&res[i].algo, &sk, &scheme);
        if (kl_log_enabled(KILN_LOG_DEBUG))
            kl_log(KILN_LOG_DEBUG, "cublasLt m %lld n %lld k %lld batch %lld: candidate %d %.4f ms, split-K %d scheme %d%s",
                   (long long)q->m, (long long)q->n, (long long)q->k, (long long)q->batch, i, ms, sk, scheme,
                   pen > 0.0f ? " (penalized)" : "");
        ms += pen;
        if (best < 0.0f || ms < best) {
            best = ms;
            g->algo_idx = i;
        }
    }
    (void)cudaGetLastError();
    if (best < 0.0f) {
        rc = kc_fail(why, why_size, "kc_gemm_create: no cuBLASLt candidate ran (last: %s)", last);
        goto out;
    }
    g->ms = best;
out:
    g->bias_set = NULL; /* scratch bias pointer no longer valid */
    cudaFree(tm.ws);
    cudaFree(tm.y);
    cudaFree(tm.bias);
    cudaFree(tm.b);
    cudaFree(tm.a);
    return rc;
}

/* ---- float32 as three TF32 products ---------------------------------------------------------- */

/* Whether the 3xTF32 form applies: float32 without TF32, one product, A not
 * transposed, B dense when not transposed, large enough to gain, its
 * operands' pieces within the scratch bound, and not turned off
 * (KILN_CUDA_NO_3XTF32=1). */
static size_t x3_scratch_max(size_t max_ws) { return max_ws > ((size_t)1 << 30) ? max_ws : (size_t)1 << 30; }

static size_t x3_align(size_t n) { return (n + 255) & ~(size_t)255; }

static bool x3_eligible(const kc_gemm_desc *q, size_t max_ws)
{
    if (env_on("KILN_CUDA_NO_3XTF32"))
        return false;
    if (q->t != KC_F32 || q->allow_tf32 || q->batch != 1 || q->trans_a || (!q->trans_b && q->ldb != q->n) ||
        q->k < 16 || (double)q->m * (double)q->n * (double)q->k < (double)(1 << 22))
        return false;
    size_t bytes = x3_align((size_t)(q->m * 3 * q->k) * 4) + x3_align((size_t)(3 * q->k * q->n) * 4);
    return bytes <= x3_scratch_max(max_ws);
}

/* The inner TF32 product of g (algo: the inner candidate, < 0 times them). */
static int x3_create(kc_gemm *g, int algo, size_t max_ws, char *why, size_t why_size)
{
    const kc_gemm_desc *q = &g->desc;
    kc_gemm_desc in = *q;
    in.k = 3 * q->k;
    in.lda = 3 * q->k;
    in.ldb = q->trans_b ? 3 * q->k : q->n;
    in.stride_a = in.stride_b = 0;
    in.allow_tf32 = true;
    int rc = kc_gemm_create(g->d, &in, algo, max_ws, &g->x3, why, why_size);
    if (rc)
        return rc;
    g->x3_off_a = x3_align(kc_gemm_workspace(g->x3));
    g->x3_off_b = g->x3_off_a + x3_align((size_t)(q->m * 3 * q->k) * 4);
    g->ws = g->x3_off_b + x3_align((size_t)(3 * q->k * q->n) * 4);
    return 0;
}

/* The pieces of A and B into the workspace. */
static int x3_split(kc_gemm *g, const void *a, const void *b, void *ws, cudaStream_t stream, char *why,
                    size_t why_size)
{
    const kc_gemm_desc *q = &g->desc;
    char *w = ws;
    cudaError_t e = kc_split_tf32(w + g->x3_off_a, a, q->m, q->k, q->lda, 4u, stream);
    if (e == cudaSuccess)
        e = q->trans_b ? kc_split_tf32(w + g->x3_off_b, b, q->n, q->k, q->ldb, 2u, stream)
                       : kc_split_tf32(w + g->x3_off_b, b, 1, q->k * q->n, q->k * q->n, 2u, stream);
    return e == cudaSuccess ? 0 : cuda_fail(why, why_size, "kc_split_tf32 (3xTF32 product)", e);
}

typedef struct x3_timing {
    kc_gemm *g;
    void *a, *b, *ws;
} x3_timing;

static int x3_split_timed(void *ctx, cudaStream_t s, char *why, size_t why_size)
{
    x3_timing *t = ctx;
    return x3_split(t->g, t->a, t->b, t->ws, s, why, why_size);
}

/* Time the splits of g's operands (the inner product timed itself). */
static float x3_split_ms(kc_gemm *g, char *why, size_t why_size)
{
    const kc_gemm_desc *q = &g->desc;
    x3_timing tm = {.g = g};
    float ms = -1.0f;
    size_t na = gemm_extent(q->m, q->k, q->lda, 1, 0);
    size_t nb = q->trans_b ? gemm_extent(q->n, q->k, q->ldb, 1, 0) : (size_t)(q->k * q->n);
    if (scratch_alloc(&tm.a, na, KC_F32, 0.01f, g->d->stream, why, why_size) ||
        scratch_alloc(&tm.b, nb, KC_F32, 0.01f, g->d->stream, why, why_size) ||
        cudaMalloc(&tm.ws, g->ws) != cudaSuccess)
        goto out;
    if (x3_split(g, tm.a, tm.b, tm.ws, g->d->stream, why, why_size) ||
        cudaStreamSynchronize(g->d->stream) != cudaSuccess)
        goto out;
    ms = time_median(g->d, x3_split_timed, &tm, why, why_size);
out:
    (void)cudaGetLastError();
    cudaFree(tm.ws);
    cudaFree(tm.b);
    cudaFree(tm.a);
    return ms;
}

/* ---- kiln's product of a few rows (kc_gemv) ------------------------------------------------- */

/* kc_gemv's parameters for g's product on these operands (ws, cnt: g's). */
static kc_gemv_params gemv_params(const kc_gemm *g, const void *a, const void *b, const void *bias, const void *z,
                                  void *y, void *ws)
{
    const kc_gemm_desc *q = &g->desc;
    kc_gemv_params p = {0};
    p.a = a, p.b = b, p.bias = q->has_bias ? bias : NULL, p.z = q->has_z && q->beta != 0.0f ? z : NULL, p.y = y;
    p.m = q->m, p.n = q->n, p.k = q->k, p.lda = q->lda, p.ldb = q->ldb, p.ldy = q->ldy;
    p.trans_b = q->trans_b;
    p.alpha = q->alpha, p.beta = q->beta;
    p.act = q->act, p.act_alpha = q->act_alpha, p.act_beta = q->act_beta;
    p.ws = ws;
    p.cnt = g->gv_cnt;
    return p;
}

/* Does kc_gemv apply to g's product?  (KILN_CUDA_NO_GEMV=1 keeps it out of the timed candidates only: an
 * engine or timing cache that recorded it still runs it.) */
static bool gemv_eligible(const kc_gemm *g)
{
    const kc_gemm_desc *q = &g->desc;
    if (q->t != KC_F16 || q->batch != 1 || q->trans_a)
        return false;
    static _Alignas(16) const uint8_t al[16] = {0}; /* the shapes only: aligned stand-ins */
    kc_gemv_params p = gemv_params(g, al, al, al, al, (void *)al, NULL);
    return kc_gemv_ok(&p);
}

/* Make g run kc_gemv: its counters (zeroed) and workspace. */
static int gemv_setup(kc_gemm *g, char *why, size_t why_size)
{
    int rc = 0;
    static _Alignas(16) const uint8_t al[16] = {0};
    kc_gemv_params p = gemv_params(g, al, al, al, al, (void *)al, NULL);
    size_t nc = kc_gemv_counters(&p);
    if (nc && !g->gv_cnt) {
        CU_TRY("cudaMalloc (gemv counters)", cudaMalloc((void **)&g->gv_cnt, nc * sizeof(unsigned)));
        CU_TRY("cudaMemset (gemv counters)", cudaMemset(g->gv_cnt, 0, nc * sizeof(unsigned)));
    }
    g->ws = kc_gemv_ws(&p);
    g->algo_idx = KC_GEMM_ALGO_GEMV;
    return 0;
out:
    return rc;
}

static int gemv_exec(kc_gemm *g, const void *a, const void *b, const void *bias, const void *z, void *y, void *ws,
                     cudaStream_t s, char *why, size_t why_size)
{
    kc_gemv_params p = gemv_params(g, a, b, bias, z, y, ws);
    cudaError_t e = kc_gemv(&p, s);
    return e == cudaSuccess ? 0 : cuda_fail(why, why_size, "kc_gemv (a product of a few rows)", e);
}

typedef struct gemv_timing {
    kc_gemm *g;
    void *a, *b, *bias, *y, *ws;
} gemv_timing;

static int gemv_timed(void *ctx, cudaStream_t s, char *why, size_t why_size)
{
    gemv_timing *t = ctx;
    return gemv_exec(t->g, t->a, t->b, t->bias, t->y, t->y, t->ws, s, why, why_size);
}

/* kc_gemv's median on g's product (scratch operands; its counters set up), or < 0. */
static float gemv_time_ms(kc_gemm *g, char *why, size_t why_size)
{
    const kc_gemm_desc *q = &g->desc;
    gemv_timing tm = {.g = g};
    float ms = -1.0f;
    size_t ws_prev = g->ws;
    int idx_prev = g->algo_idx;
    if (gemv_setup(g, why, why_size))
        goto out;
    size_t nb = q->trans_b ? (size_t)((q->n - 1) * q->ldb + q->k) : (size_t)((q->k - 1) * q->ldb + q->n);
    if (scratch_alloc(&tm.a, (size_t)((q->m - 1) * q->lda + q->k), q->t, 0.01f, g->d->stream, why, why_size) ||
        scratch_alloc(&tm.b, nb, q->t, 0.01f, g->d->stream, why, why_size) ||
        scratch_alloc(&tm.bias, (size_t)q->n, q->t, 0.0f, g->d->stream, why, why_size) ||
        scratch_alloc(&tm.y, (size_t)((q->m - 1) * q->ldy + q->n), q->t, 0.0f, g->d->stream, why, why_size))
        goto out;
    if (g->ws && cudaMalloc(&tm.ws, g->ws) != cudaSuccess)
        goto out;
    if (gemv_timed(&tm, g->d->stream, why, why_size) || cudaStreamSynchronize(g->d->stream) != cudaSuccess)
        goto out;
    ms = time_median(g->d, gemv_timed, &tm, why, why_size);
out:
    (void)cudaGetLastError();
    cudaFree(tm.ws);
    cudaFree(tm.y);
    cudaFree(tm.bias);
    cudaFree(tm.b);
    cudaFree(tm.a);
    g->ws = ws_prev;
    g->algo_idx = idx_prev;
    return ms;
}

int kc_gemm_create(kc_dnn *d, const kc_gemm_desc *desc, int algo, size_t max_workspace, kc_gemm **out, char *why,
                   size_t why_size)
{
    int rc = 0;
    *out = NULL;
    const kc_gemm_desc *q = desc;
    if (!d || (q->t != KC_F32 && q->t != KC_F16))
        return kc_fail(why, why_size, "kc_gemm_create: bad handle or dtype");
    if (q->m < 1 || q->n < 1 || q->k < 1 || q->batch < 1 || q->batch > INT32_MAX || q->ldy < q->n ||
        q->lda < (q->trans_a ? q->m : q->k) || q->ldb < (q->trans_b ? q->k : q->n) || q->stride_a < 0 ||
        q->stride_b < 0 || q->stride_y < 0 || (q->batch > 1 && q->stride_y < 1) || q->act < 0 ||
        q->act >= KC_ACT_COUNT)
        return kc_fail(why, why_size, "kc_gemm_create: invalid product description (m %lld n %lld k %lld)",
                       (long long)q->m, (long long)q->n, (long long)q->k);
    kc_gemm *g = kl_calloc(1, sizeof *g);
    if (!g)
        return kc_fail(why, why_size, "kc_gemm_create: out of host memory");
    g->d = d;
    g->desc = *desc;
    if (algo == KC_GEMM_ALGO_GEMV) {
        /* from a timing cache or an engine: kiln's product of a few rows */
        if (!gemv_eligible(g)) {
            rc = kc_fail(why, why_size, "kc_gemm_create: candidate %d (kiln's few-row product) does not apply to this "
                         "product (m %lld n %lld k %lld)", algo, (long long)q->m, (long long)q->n, (long long)q->k);
            goto out;
        }
        if ((rc = gemv_setup(g, why, why_size)))
            goto out;
        *out = g;
        return 0;
    }
    if (algo >= KC_GEMM_ALGO_X3) {
        /* from a timing cache or an engine: the 3xTF32 form with inner candidate algo - KC_GEMM_ALGO_X3 */
        if (q->t != KC_F32 || q->allow_tf32 || q->batch != 1 || q->trans_a || (!q->trans_b && q->ldb != q->n)) {
            rc = kc_fail(why, why_size, "kc_gemm_create: candidate %d (3xTF32) does not apply to this product", algo);
            goto out;
        }
        if ((rc = x3_create(g, algo - KC_GEMM_ALGO_X3, max_workspace, why, why_size)))
            goto out;
        g->algo_idx = algo;
        *out = g;
        return 0;
    }
    cudaDataType_t dt = q->t == KC_F16 ? CUDA_R_16F : CUDA_R_32F;
    cublasComputeType_t ct = (q->t == KC_F32 && q->allow_tf32) ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    LT_TRY("cublasLtMatmulDescCreate", cublasLtMatmulDescCreate(&g->op, ct, CUDA_R_32F));
    cublasOperation_t ta = q->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N; /* Lt's A is our B */
    cublasOperation_t tb = q->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    LT_TRY("cublasLtMatmulDescSetAttribute(TRANSA)",
           cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    LT_TRY("cublasLtMatmulDescSetAttribute(TRANSB)",
           cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (q->has_bias) {
        int32_t bt = (int32_t)dt;
        LT_TRY("cublasLtMatmulDescSetAttribute(BIAS_DATA_TYPE)",
               cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
    }
    if ((rc = gemm_layout(&g->la, dt, q->trans_b ? q->k : q->n, q->trans_b ? q->n : q->k, q->ldb, q->batch,
                          q->stride_b, why, why_size)) ||
        (rc = gemm_layout(&g->lb, dt, q->trans_a ? q->m : q->k, q->trans_a ? q->k : q->m, q->lda, q->batch,
                          q->stride_a, why, why_size)) ||
        (rc = gemm_layout(&g->lc, dt, q->n, q->m, q->ldy, q->batch, q->stride_y, why, why_size)))
        goto out;
    cublasLtMatmulHeuristicResult_t res[KC_GEMM_CANDIDATES_MAX];
    int nres = 0;
    bool ep_act = q->act == KC_ACT_RELU || q->act == KC_ACT_GELU_TANH;
    char herr[256] = "";
    for (int level = 0; level < 3 && nres == 0; level++) {
        if ((level == 1 && !ep_act) || (level == 2 && !ep_act && !q->has_bias))
            continue; /* same epilogue as the level before */
        /* a stored candidate number is read from a list at least that long */
        int count = kc_gemm_candidates();
        if (algo >= count && algo < KC_GEMM_CANDIDATES_MAX)
            count = algo + 1;
        if (gemm_heuristic(g, level, count, max_workspace, res, &nres, herr, sizeof herr))
            nres = 0; /* a refused epilogue: try the next level */
    }
    if (nres == 0) {
        rc = kc_fail(why, why_size,
                     "kc_gemm_create: cuBLASLt offers no algorithm for m %lld n %lld k %lld batch %lld%s%s",
                     (long long)q->m, (long long)q->n, (long long)q->k, (long long)q->batch, herr[0] ? ": " : "",
                     herr);
        goto out;
    }
    if ((g->post_act != KC_ACT_NONE || g->post_bias) &&
        (q->ldy != q->n || (q->batch > 1 && q->stride_y != q->m * q->n))) {
        rc = kc_fail(why, why_size, "kc_gemm_create: activation %d after cuBLASLt needs a dense y (ldy %lld, n %lld)",
                     g->post_act, (long long)q->ldy, (long long)q->n);
        goto out;
    }
    if (algo >= 0) {
        if (algo >= nres) {
            rc = kc_fail(why, why_size, "kc_gemm_create: candidate %d not offered (cuBLASLt offers %d)", algo, nres);
            goto out;
        }
        g->algo_idx = algo;
        g->ms = 0.0f;
    } else if ((rc = gemm_autotune(g, res, nres, why, why_size))) {
        goto out;
    }
    g->algo = res[g->algo_idx].algo;
    g->ws = res[g->algo_idx].workspaceSize;
    if (algo < 0 && !env_on("KILN_CUDA_NO_GEMV") && gemv_eligible(g)) {
        /* kiln's few-row product where it beats cuBLASLt's best (timed alike: cold L2, scratch operands) */
        char gwhy[256] = "";
        float tg = gemv_time_ms(g, gwhy, sizeof gwhy);
        if (kl_log_enabled(KILN_LOG_DEBUG))
            kl_log(KILN_LOG_DEBUG, "m %lld n %lld k %lld: kiln's few-row product %.4f ms, cuBLASLt %.4f ms%s%s",
                   (long long)q->m, (long long)q->n, (long long)q->k, tg, g->ms, gwhy[0] ? ": " : "", gwhy);
        if (tg > 0.0f && tg < g->ms) {
            size_t ws_lt = g->ws;
            int idx_lt = g->algo_idx;
            if (gemv_setup(g, gwhy, sizeof gwhy) == 0 && g->ws <= max_workspace) {
                g->ms = tg;
            } else {
                g->ws = ws_lt;
                g->algo_idx = idx_lt;
            }
        }
    }
    if (algo < 0 && x3_eligible(q, max_workspace)) {
        /* the 3xTF32 form, kept when its splits plus its inner product clearly beat the FP32 kernels */
        char xwhy[256] = "";
        size_t ws_fp32 = g->ws;
        if (x3_create(g, -1, max_workspace, xwhy, sizeof xwhy) == 0) {
            float split = x3_split_ms(g, xwhy, sizeof xwhy);
            float t3 = split >= 0.0f ? kc_gemm_time_ms(g->x3) + split : -1.0f;
            /* a margin: timed apart on constant scratch data, the splits and the 3x tensor-core work
               gain less in the network than here (ResNet-50's 1x1 convolutions: slower in the engine) */
            if (t3 > 0.0f && t3 < 0.8f * g->ms) {
                g->algo_idx = KC_GEMM_ALGO_X3 + kc_gemm_algo(g->x3);
                g->ms = t3;
            } else {
                kc_gemm_destroy(g->x3);
                g->x3 = NULL;
                g->ws = ws_fp32;
            }
        } else {
            g->ws = ws_fp32;
        }
        (void)cudaGetLastError();
    }
    *out = g;
    return 0;
out:
    kc_gemm_destroy(g);
    return rc;
}

int kc_gemm_algo(const kc_gemm *g) { return g->algo_idx; }

void kc_gemm_describe(const kc_gemm *g, char *buf, size_t size)
{
    if (!buf || !size)
        return;
    buf[0] = 0;
    if (!g)
        return;
    if (g->algo_idx == KC_GEMM_ALGO_GEMV) {
        snprintf(buf, size, "kiln few-row product (%lld row%s%s)", (long long)g->desc.m, g->desc.m > 1 ? "s" : "",
                 g->ws ? ", K split over blocks" : "");
        return;
    }
    const kc_gemm *in = g->x3 ? g->x3 : g;
    int id = -1, tile = -1, stages = -1, sk = -1;
    size_t got = 0;
    if (cublasLtMatmulAlgoConfigGetAttribute(&in->algo, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof id, &got) !=
        CUBLAS_STATUS_SUCCESS)
        id = -1;
    if (cublasLtMatmulAlgoConfigGetAttribute(&in->algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile, &got) !=
        CUBLAS_STATUS_SUCCESS)
        tile = -1;
    if (cublasLtMatmulAlgoConfigGetAttribute(&in->algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof stages,
                                             &got) != CUBLAS_STATUS_SUCCESS)
        stages = -1;
    if (cublasLtMatmulAlgoConfigGetAttribute(&in->algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &sk, sizeof sk, &got) !=
        CUBLAS_STATUS_SUCCESS)
        sk = -1;
    char skb[24] = "";
    if (sk > 1)
        snprintf(skb, sizeof skb, " split-K %d", sk);
    /* the epilogue: bias and the activation cuBLASLt has (ReLU, GELU); a residual goes in as C */
    bool ep_act = g->desc.act != KC_ACT_NONE && g->post_act == KC_ACT_NONE;
    const char *ep = g->ep_bias && ep_act ? " bias+act epilogue" : g->ep_bias ? " bias epilogue" : ep_act ? " act epilogue" : "";
    snprintf(buf, size, "cuBLASLt%s algo %d tile %d stages %d%s%s%s", g->x3 ? " 3xTF32" : "", id, tile, stages, skb, ep,
             g->post_act != KC_ACT_NONE || g->post_bias ? " + bias/act pass" : "");
}
size_t kc_gemm_workspace(const kc_gemm *g) { return g->ws; }
float kc_gemm_time_ms(const kc_gemm *g) { return g->ms; }

int kc_gemm_run(kc_gemm *g, const void *a, const void *b, const void *bias, const void *z, void *y, void *workspace,
                cudaStream_t stream, char *why, size_t why_size)
{
    const kc_gemm_desc *q = &g->desc;
    bool use_z = q->has_z && q->beta != 0.0f;
    if ((q->has_bias && !bias) || (use_z && !z) || (g->ws && !workspace) || !a || !b || !y)
        return kc_fail(why, why_size, "kc_gemm_run: missing operand, bias, z or workspace");
    uintptr_t all = (uintptr_t)a | (uintptr_t)b | (uintptr_t)y;
    if (use_z)
        all |= (uintptr_t)z;
    if (q->has_bias)
        all |= (uintptr_t)bias;
    if (all % 16)
        return kc_fail(why, why_size, "kc_gemm_run: A, B, bias, z and y must be 16-byte aligned");
    if (g->algo_idx == KC_GEMM_ALGO_GEMV)
        return gemv_exec(g, a, b, bias, z, y, workspace, stream, why, why_size);
    if (g->x3) {
        char *w = workspace;
        int rc = x3_split(g, a, b, workspace, stream, why, why_size);
        return rc ? rc : kc_gemm_run(g->x3, w + g->x3_off_a, w + g->x3_off_b, bias, z, y, workspace, stream, why,
                                     why_size);
    }
    return gemm_exec(g, &g->algo, g->ws, a, b, bias, z, y, workspace, stream, why, why_size);
}

/* ---- attention ----------------------------------------------------------------------------- */

/* One softmax launch per block of rows: the mask offset of row
 * o = (b*H + h)*Sq + q is b*msb + h*msh + q*msq; axes [first, 3) that vary
 * inside a launch must collapse into ((o / div) % mod) * stride. */
struct kc_attn {
    kc_dnn *d;
    kc_attn_desc desc;
    bool fused;       /* kc_flash_attn (float16, D == Dv in {64, 128}): no gemms, no workspace */
    float ms;         /* the chosen tiling's timed median (flash_variant < 0 at create), else 0 */
    kc_gemm *qk, *pv;
    size_t off_q, off_k, off_v, off_s, off_o, off_ws, total;
    int mask_first;   /* 0: one launch; 1: one per batch; 2: one per (batch, head) */
    int64_t m_div, m_mod, m_stride;
};

void kc_attn_destroy(kc_attn *a)
{
    if (!a)
        return;
    kc_gemm_destroy(a->pv);
    kc_gemm_destroy(a->qk);
    kl_free(a);
}

/* Whether axes [first, 3) of (B, H, Sq) collapse into one (div, mod, stride). */
static bool mask_collapse(const int64_t *ext, const int64_t *str, int first, int64_t *div, int64_t *mod,
                          int64_t *stride)
{
    int i0 = -1, i1 = -1;
    for (int i = first; i < 3; i++) {
        if (ext[i] > 1 && str[i] != 0) {
            if (i0 < 0)
                i0 = i;
            else if (i1 != i - 1)
                return false; /* a broadcast axis between two varying ones */
            i1 = i;
        }
    }
    if (i0 < 0) {
        *div = 1;
        *mod = 1;
        *stride = 0;
        return true;
    }
    for (int i = i0; i < i1; i++)
        if (str[i] != str[i + 1] * ext[i + 1])
            return false;
    int64_t dv = 1, md = 1;
    for (int i = i1 + 1; i < 3; i++)
        dv *= ext[i];
    for (int i = i0; i <= i1; i++)
        md *= ext[i];
    *div = dv;
    *mod = md;
    *stride = str[i1];
    return true;
}

static kc_flash_desc attn_flash_desc(const kc_attn_desc *p)
{
    kc_flash_desc f = {.b = p->b, .sq = p->sq, .sk = p->sk, .h = p->h, .d = p->d, .ldq = p->ldq, .ldk = p->ldk,
                       .ldv = p->ldv, .seq_first = p->seq_first, .scale = p->scale, .has_mask = p->has_mask,
                       .mask_t = p->mask_t, .msb = p->mask_stride_b, .msh = p->mask_stride_h,
                       .msq = p->mask_stride_q, .msk = p->mask_stride_k, .rel_kw = p->rel_kw,
                       .m2sb = p->mask2_stride_b, .m2sh = p->mask2_stride_h, .m2sq = p->mask2_stride_q,
                       .m2sk = p->mask2_stride_k, .variant = p->flash_variant};
    return f;
}

/* The fused kernel's tilings timed on scratch tensors of the attention's
 * shapes and strides (Q, K and V in one buffer, as a packed QKV projection
 * writes them); the fastest is kept in a->desc.flash_variant. */
typedef struct attn_timing {
    kc_flash_desc f;
    void *y;
    const void *q, *k, *v, *m, *m2;
} attn_timing;

static int attn_timed(void *ctx, cudaStream_t s, char *why, size_t why_size)
{
    attn_timing *t = ctx;
    int rc = 0;
    CU_TRY("kc_flash_attn", kc_flash_attn(t->y, t->q, t->k, t->v, t->m, t->m2, &t->f, s));
out:
    return rc;
}

/* Elements a tensor with these extents and strides spans. */
static size_t span4(const int64_t *ext, const int64_t *str)
{
    size_t n = 1;
    for (int i = 0; i < 4; i++)
        n += (size_t)((ext[i] - 1) * str[i]);
    return n;
}

static int attn_time_tilings(kc_attn *a, char *why, size_t why_size)
{
    kc_dnn *d = a->d;
    const kc_attn_desc *q = &a->desc;
    int rc = 0;
    void *x = NULL, *y = NULL, *m = NULL, *m2 = NULL;
    attn_timing tm = {.f = attn_flash_desc(q)};
    int64_t rows = q->b * (q->sq > q->sk ? q->sq : q->sk);
    int64_t ld = q->ldq > q->ldk ? q->ldq : q->ldk;
    ld = ld > q->ldv ? ld : q->ldv;
    size_t es = kc_dtype_size(q->t), nx = (size_t)(rows * ld + 2 * q->h * q->d);
    size_t ms_ = kc_dtype_size(q->mask_t);
    if ((rc = scratch_alloc(&x, nx, q->t, 0.01f, d->stream, why, why_size)) ||
        (rc = scratch_alloc(&y, (size_t)(q->b * q->sq * q->h * q->dv), q->t, 0.0f, d->stream, why, why_size)))
        goto out;
    if (q->has_mask) {
        int64_t e1[4] = {q->b, q->h, q->sq, q->rel_kw > 0 ? q->sk / q->rel_kw : q->sk};
        int64_t s1[4] = {q->mask_stride_b, q->mask_stride_h, q->mask_stride_q, q->mask_stride_k};
        if ((rc = scratch_alloc(&m, span4(e1, s1) * ms_ / es + 1, q->t, 0.0f, d->stream, why, why_size)))
            goto out;
        if (q->rel_kw > 0) {
            int64_t e2[4] = {q->b, q->h, q->sq, q->rel_kw};
            int64_t s2[4] = {q->mask2_stride_b, q->mask2_stride_h, q->mask2_stride_q, q->mask2_stride_k};
            if ((rc = scratch_alloc(&m2, span4(e2, s2) * ms_ / es + 1, q->t, 0.0f, d->stream, why, why_size)))
                goto out;
        }
    }
    tm.y = y;
    tm.q = x;
    tm.k = (char *)x + (size_t)(q->h * q->d) * es;
    tm.v = (char *)x + (size_t)(2 * q->h * q->d) * es;
    tm.m = m;
    tm.m2 = m2;
    int best = KC_FLASH_ONE_MTILE;
    float best_ms = -1.0f;
    for (int v = KC_FLASH_ONE_MTILE; v <= KC_FLASH_LAST; v++) {
        tm.f.variant = v;
        if (kc_flash_variant(&tm.f) != v)
            continue; /* does not apply */
        char last[256] = "";
        float ms = time_median(d, attn_timed, &tm, last, sizeof last);
        if (ms < 0.0f) {
            rc = kc_fail(why, why_size, "kc_attn_create: timing the flash tiling %d: %s", v, last);
            goto out;
        }
        if (best_ms < 0.0f || ms < best_ms)
            best = v, best_ms = ms;
    }
    a->desc.flash_variant = best;
    a->ms = best_ms;
out:
    cudaFree(x), cudaFree(y), cudaFree(m), cudaFree(m2);
    return rc;
}

int kc_attn_create(kc_dnn *d, const kc_attn_desc *desc, kc_attn **out, char *why, size_t why_size)
{
    int rc = 0;
    *out = NULL;
    const kc_attn_desc *q = desc;
    if (!d || (q->t != KC_F32 && q->t != KC_F16) || q->b < 1 || q->sq < 1 || q->sk < 1 || q->h < 1 || q->d < 1 ||
        q->dv < 1 || q->ldq < q->h * q->d || q->ldk < q->h * q->d || q->ldv < q->h * q->dv ||
        (q->has_mask && q->mask_t != KC_F32 && q->mask_t != q->t) || q->rel_kw < 0 ||
        (q->rel_kw > 0 && (!q->has_mask || q->sk % q->rel_kw)))
        return kc_fail(why, why_size, "kc_attn_create: invalid attention description");
    kc_attn *a = kl_calloc(1, sizeof *a);
    if (!a)
        return kc_fail(why, why_size, "kc_attn_create: out of host memory");
    a->d = d;
    a->desc = *desc;
    if (a->desc.flash_variant <= 0) {
        const char *env = getenv("KILN_CUDA_FA");
        if (env && env[0] >= '1' && env[0] < '1' + KC_FLASH_LAST && !env[1])
            a->desc.flash_variant = env[0] - '0';
    }
    if (kc_flash_supported(q->t, q->d, q->dv, q->b, q->h, q->sq)) {
        cudaError_t e = kc_flash_prepare(q->d);
        if (e == cudaSuccess) {
            a->fused = true;
            if (a->desc.flash_variant < 0 && (rc = attn_time_tilings(a, why, why_size))) {
                kl_free(a);
                return rc;
            }
            *out = a;
            return 0;
        }
        (void)cudaGetLastError(); /* not sticky: take the unfused path */
    }
    if (q->rel_kw > 0) {
        kl_free(a);
        return kc_fail(why, why_size, "kc_attn_create: a relative-position bias needs the fused kernel (float16, "
                                      "head size 64 or 128)");
    }
    int64_t bh = q->b * q->h;
    kc_gemm_desc g = {.t = q->t, .m = q->sq, .n = q->sk, .k = q->d, .trans_b = true, .lda = q->d, .ldb = q->d,
                      .ldy = q->sk, .batch = bh, .stride_a = q->sq * q->d, .stride_b = q->sk * q->d,
                      .stride_y = q->sq * q->sk, .alpha = q->scale, .allow_tf32 = q->allow_tf32};
    if ((rc = kc_gemm_create(d, &g, 0, KC_ATTN_GEMM_WS, &a->qk, why, why_size)))
        goto out;
    kc_gemm_desc p = {.t = q->t, .m = q->sq, .n = q->dv, .k = q->sk, .lda = q->sk, .ldb = q->dv, .ldy = q->dv,
                      .batch = bh, .stride_a = q->sq * q->sk, .stride_b = q->sk * q->dv, .stride_y = q->sq * q->dv,
                      .alpha = 1.0f, .allow_tf32 = q->allow_tf32};
    if ((rc = kc_gemm_create(d, &p, 0, KC_ATTN_GEMM_WS, &a->pv, why, why_size)))
        goto out;
    size_t es = kc_dtype_size(q->t), off = 0;
    a->off_q = off;
    off += align_up((size_t)(bh * q->sq * q->d) * es);
    a->off_k = off;
    off += align_up((size_t)(bh * q->sk * q->d) * es);
    a->off_v = off;
    off += align_up((size_t)(bh * q->sk * q->dv) * es);
    a->off_s = off;
    off += align_up((size_t)(bh * q->sq * q->sk) * es);
    a->off_o = off;
    off += align_up((size_t)(bh * q->sq * q->dv) * es);
    a->off_ws = off;
    size_t gws = kc_gemm_workspace(a->qk) > kc_gemm_workspace(a->pv) ? kc_gemm_workspace(a->qk)
                                                                     : kc_gemm_workspace(a->pv);
    a->total = off + align_up(gws);
    if (q->has_mask) {
        int64_t ext[3] = {q->b, q->h, q->sq};
        int64_t str[3] = {q->mask_stride_b, q->mask_stride_h, q->mask_stride_q};
        for (a->mask_first = 0; a->mask_first < 3; a->mask_first++)
            if (mask_collapse(ext, str, a->mask_first, &a->m_div, &a->m_mod, &a->m_stride))
                break;
        /* mask_first == 2 always collapses (one axis) */
    }
    *out = a;
    return 0;
out:
    kc_attn_destroy(a);
    return rc;
}

size_t kc_attn_workspace(const kc_attn *a) { return a->total; }
int kc_attn_is_fused(const kc_attn *a) { return a && a->fused; }

float kc_attn_time_ms(const kc_attn *a) { return a ? a->ms : 0.0f; }

void kc_attn_describe(const kc_attn *a, char *buf, size_t size)
{
    static const char *const tilings[] = {"", ", one M tile", ", two M tiles", ", keys split", ", float16 exponentials"};
    if (!buf || !size)
        return;
    buf[0] = 0;
    if (!a)
        return;
    if (a->fused) {
        int v = kc_attn_flash_variant(a);
        snprintf(buf, size, "kiln flash attention%s", v > 0 && v <= KC_FLASH_LAST ? tilings[v] : "");
    } else {
        snprintf(buf, size, "cuBLASLt products + kiln softmax");
    }
}

int kc_attn_flash_variant(const kc_attn *a)
{
    if (!a || !a->fused)
        return 0;
    kc_flash_desc f = attn_flash_desc(&a->desc);
    return kc_flash_variant(&f);
}

int kc_attn_run(kc_attn *a, const void *q, const void *k, const void *v, const void *mask, const void *mask2, void *y,
                void *workspace, cudaStream_t stream, char *why, size_t why_size)
{
    const kc_attn_desc *p = &a->desc;
    int rc = 0;
    if (a->fused) {
        if (!q || !k || !v || !y || (p->has_mask && !mask) || (p->rel_kw > 0 && !mask2))
            return kc_fail(why, why_size, "kc_attn_run: missing Q, K, V, Y or mask");
        kc_flash_desc f = attn_flash_desc(p);
        CU_TRY("kc_flash_attn", kc_flash_attn(y, q, k, v, mask, mask2, &f, stream));
        return 0;
    }
    if (!workspace || ((uintptr_t)workspace % 16) || (p->has_mask && !mask))
        return kc_fail(why, why_size, "kc_attn_run: missing or misaligned workspace, or missing mask");
    char *ws = workspace;
    void *qs = ws + a->off_q, *ks = ws + a->off_k, *vs = ws + a->off_v, *sc = ws + a->off_s, *os = ws + a->off_o;
    void *gw = ws + a->off_ws;
    size_t es = kc_dtype_size(p->t);
    CU_TRY("kc_heads_split (Q)", kc_heads_split(qs, q, p->b, p->sq, p->h, p->d, p->ldq, p->seq_first, p->t, stream));
    CU_TRY("kc_heads_split (K)", kc_heads_split(ks, k, p->b, p->sk, p->h, p->d, p->ldk, p->seq_first, p->t, stream));
    CU_TRY("kc_heads_split (V)", kc_heads_split(vs, v, p->b, p->sk, p->h, p->dv, p->ldv, p->seq_first, p->t, stream));
    if ((rc = kc_gemm_run(a->qk, qs, ks, NULL, NULL, sc, gw, stream, why, why_size)))
        goto out;
    if (!p->has_mask) {
        CU_TRY("kc_softmax", kc_softmax(sc, sc, p->b * p->h * p->sq, p->sk, 1, 1.0f, NULL, KC_F32, 1, 1, 0, 0, 0,
                                        p->t, stream));
    } else {
        size_t ms = kc_dtype_size(p->mask_t);
        int64_t nb = a->mask_first >= 1 ? p->b : 1, nh = a->mask_first >= 2 ? p->h : 1;
        int64_t rows = p->b * p->h * p->sq / (nb * nh);
        for (int64_t ib = 0; ib < nb; ib++)
            for (int64_t ih = 0; ih < nh; ih++) {
                int64_t blk = ib * nh + ih;
                char *s = (char *)sc + (size_t)(blk * rows * p->sk) * es;
                const char *m = (const char *)mask + (size_t)(ib * p->mask_stride_b + ih * p->mask_stride_h) * ms;
                CU_TRY("kc_softmax (masked)",
                       kc_softmax(s, s, rows, p->sk, 1, 1.0f, m, p->mask_t, a->m_div, a->m_mod, a->m_stride,
                                  p->mask_stride_k, 0, p->t, stream));
            }
    }
    if ((rc = kc_gemm_run(a->pv, sc, vs, NULL, NULL, os, gw, stream, why, why_size)))
        goto out;
    CU_TRY("kc_heads_merge", kc_heads_merge(y, os, p->b, p->sq, p->h, p->dv, p->seq_first, p->t, stream));
out:
    return rc;
}
