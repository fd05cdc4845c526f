/* The fast CPU tactics: the x86 kernels of src/cpu/x86 (packed SGEMM,
 * convolution algorithms, each with its fused epilogue) wrapped as tactics
 * of the cpu provider for Conv / kiln.FusedConv, Gemm / kiln.FusedGemm and
 * MatMul / kiln.FusedMatMul with constant weights.
 *
 * Weights are packed (and Winograd-transformed) lazily, once per engine, at
 * the first run of the layer (under a mutex, so contexts on several
 * threads share one packed copy): loading an engine stays a mapping.
 * The activation attribute of kiln ops uses the same numbering as the x86
 * kernels' kl_act_kind (src/ops/kiln.h and src/cpu/x86/vecmath.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/provider.h"
#include "cpu/threadpool.h"
#include "cpu/ref/nn.h"
#include "cpu/x86/conv.h"
#include "cpu/x86/convt.h"
#include "cpu/x86/gemm.h"
#include "cpu/x86/nchwc.h"
#include "cpu/x86/vecops.h"

/* ---- shared helpers ------------------------------------------------------------------ */

static bool is_op(const kl_node *n, const char *onnx, const char *kiln) {
    if (!n->domain[0]) return onnx && strcmp(n->op_type, onnx) == 0;
    return kiln && strcmp(n->domain, "kiln") == 0 && strcmp(n->op_type, kiln) == 0;
}

static const kl_tensor *const_input(const kl_node *n, size_t i) {
    return i < n->n_inputs && n->inputs[i] && n->inputs[i]->init && n->inputs[i]->init->dtype == KILN_DTYPE_FLOAT
               ? n->inputs[i]->init
               : NULL;
}

static bool float_input(const kl_node *n, size_t i) {
    return i < n->n_inputs && n->inputs[i] && n->inputs[i]->type.kind == KL_TYPE_TENSOR &&
           n->inputs[i]->type.elem == KILN_DTYPE_FLOAT;
}

static bool no(char *why, size_t size, const char *msg) {
    if (why && size) snprintf(why, size, "%s", msg);
    return false;
}

/* An aligned float copy of a constant when its data is not 4-byte aligned
 * (raw_data inside a protobuf); *owned must be freed. */
static const float *aligned_data(const kl_tensor *t, float **owned) {
    *owned = NULL;
    if (((uintptr_t)t->data % sizeof(float)) == 0) return t->data;
    *owned = kl_malloc(t->nbytes ? t->nbytes : 1);
    if (*owned) memcpy(*owned, t->data, t->nbytes);
    return *owned;
}

static kl_act node_act(const kl_node *n) {
    kl_act a = {KL_ACT_NONE, 0, 0};
    if (!n->domain[0]) return a;
    int64_t k = kl_node_attr_int(n, "activation", 0);
    a.kind = (k >= 0 && k < KL_ACT_COUNT) ? (kl_act_kind)k : KL_ACT_NONE;
    a.alpha = kl_node_attr_float(n, "act_alpha", 0.0f);
    a.beta = kl_node_attr_float(n, "act_beta", 0.0f);
    return a;
}

static bool act_ok(const kl_node *n) {
    if (!n->domain[0]) return true;
    int64_t k = kl_node_attr_int(n, "activation", 0);
    return k >= 0 && k < KL_ACT_COUNT;
}

/* Lazily prepared state shared by every context of an engine. */
typedef struct kl_lazy {
    pthread_mutex_t mu;
    kl_isa isa;             /* the level the tactic was chosen for */
    int ready;              /* 1: prepared, 2: failed */
    const kl_node *node;
    kl_conv_algo algo;
    /* conv */
    kl_conv2d_desc d;
    kl_conv2d_plan *plan;
    size_t in_img, out_img; /* elements of one image */
    /* gemm */
    size_t K, N;
    bool transA, transB_w;  /* Gemm attributes */
    float alpha;
    void *packed_b;
    float *bias;            /* [N] or NULL (beta folded in) */
    kl_act act;
    size_t wi;              /* conv: the weights' input (1; kiln.ScaledConv 2), the bias's is wi + 1 */
    bool borrowed;          /* gemm: packed_b and bias point into an engine's mapping (gemm_adopt) */
} kl_lazy;

static void lazy_release(void *p) {
    kl_lazy *z = p;
    if (!z) return;
    kl_conv2d_destroy(z->plan);
    if (!z->borrowed) {
        kl_free(z->packed_b);
        kl_free(z->bias);
    }
    pthread_mutex_destroy(&z->mu);
    kl_free(z);
}

static kl_lazy *lazy_new(const kl_node *n) {
    kl_lazy *z = kl_calloc(1, sizeof *z);
    if (!z) return NULL;
    pthread_mutex_init(&z->mu, NULL);
    z->node = n;
    return z;
}

/* ---- convolution ---------------------------------------------------------------------- */

/* Geometry of a 2-D float convolution with constant weights and static
 * C, H, W (the batch may be dynamic: runs loop over images). */
static bool conv_desc(const kl_node *n, kl_conv2d_desc *d, char *why, size_t wsz) {
    memset(d, 0, sizeof *d);
    if (!is_op(n, "Conv", "FusedConv")) return no(why, wsz, "not a convolution");
    if (!float_input(n, 0) || !act_ok(n)) return no(why, wsz, "not float");
    const kl_shape *xs = &n->inputs[0]->type.shape;
    const kl_tensor *w = const_input(n, 1);
    if (xs->rank != 4 || !w || w->rank != 4) return no(why, wsz, "not a 2-D convolution with constant weights");
    for (int a = 1; a < 4; a++)
        if (xs->dims[a].value <= 0) return no(why, wsz, "C, H or W is not static");
    if (n->n_inputs > 2 && n->inputs[2] && (!const_input(n, 2) || const_input(n, 2)->count != w->dims[0]))
        return no(why, wsz, "bias is not a constant of M values");
    if (n->n_inputs > 3 && n->inputs[3] && !float_input(n, 3)) return no(why, wsz, "residual is not float");
    const char *ap = kl_node_attr_string(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") != 0 && strcmp(ap, "VALID") != 0) return no(why, wsz, "auto_pad SAME is left to ref");
    const int64_t *v;
    int64_t cnt;
    d->C = (size_t)xs->dims[1].value;
    d->H = (size_t)xs->dims[2].value;
    d->W = (size_t)xs->dims[3].value;
    d->N = 1;
    d->M = (size_t)w->dims[0];
    d->KH = (size_t)w->dims[2];
    d->KW = (size_t)w->dims[3];
    d->group = (size_t)kl_node_attr_int(n, "group", 1);
    if ((cnt = kl_node_attr_ints(n, "kernel_shape", &v)) >= 0 &&
        (cnt != 2 || v[0] != w->dims[2] || v[1] != w->dims[3]))
        return no(why, wsz, "kernel_shape does not match the weights");
    d->stride_h = d->stride_w = 1;
    if ((cnt = kl_node_attr_ints(n, "strides", &v)) >= 0) {
        if (cnt != 2 || v[0] < 1 || v[1] < 1) return no(why, wsz, "strides");
        d->stride_h = (size_t)v[0];
        d->stride_w = (size_t)v[1];
    }
    d->dil_h = d->dil_w = 1;
    if ((cnt = kl_node_attr_ints(n, "dilations", &v)) >= 0) {
        if (cnt != 2 || v[0] < 1 || v[1] < 1) return no(why, wsz, "dilations");
        d->dil_h = (size_t)v[0];
        d->dil_w = (size_t)v[1];
    }
    if ((cnt = kl_node_attr_ints(n, "pads", &v)) >= 0) {
        if (cnt != 4 || v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0) return no(why, wsz, "pads");
        if (strcmp(ap, "VALID") != 0) {
            d->pad_top = (size_t)v[0];
            d->pad_left = (size_t)v[1];
            d->pad_bottom = (size_t)v[2];
            d->pad_right = (size_t)v[3];
        }
    }
    if (d->group < 1 || d->C % d->group || d->M % d->group || (size_t)w->dims[1] * d->group != d->C)
        return no(why, wsz, "group does not divide the channels");
    d->act = node_act(n);
    return true;
}

static bool conv_applies_algo(const kl_node *n, kl_conv_algo algo, char *why, size_t wsz) {
    kl_conv2d_desc d;
    if (!conv_desc(n, &d, why, wsz)) return false;
    if (!kl_conv2d_supports(&d, algo)) return no(why, wsz, "the algorithm does not fit this geometry");
    return true;
}

static bool conv_gemm1x1_applies(const kl_node *n, char *w, size_t s) { return conv_applies_algo(n, KL_CONV_GEMM1X1, w, s); }
static bool conv_im2col_applies(const kl_node *n, char *w, size_t s) { return conv_applies_algo(n, KL_CONV_IM2COL, w, s); }
static bool conv_dw_applies(const kl_node *n, char *w, size_t s) { return conv_applies_algo(n, KL_CONV_DEPTHWISE, w, s); }
/* conv.igemmk: k x k layers past the stems (conv.igemm and conv.direct take those), ungrouped. */
static bool conv_igemmk_applies(const kl_node *n, char *w, size_t s) {
    kl_conv2d_desc d;
    if (!conv_desc(n, &d, w, s)) return false;
    if (!kl_conv2d_supports(&d, KL_CONV_IGEMMK) || d.KH * d.KW < 2 || d.C <= KL_CONV_DIRECT_MAX_C)
        return no(w, s, "1x1, groups, dilation or at most 4 input channels (a stem)");
    return true;
}
/* conv.direct: the stems (at most 4 input channels, kernels 2x2 to 7x7). */
static bool conv_direct_applies(const kl_node *n, char *w, size_t s) {
    kl_conv2d_desc d;
    if (!conv_desc(n, &d, w, s)) return false;
    if (!kl_conv2d_supports(&d, KL_CONV_DIRECT) || d.KH * d.KW < 2)
        return no(w, s, "not a stem: over 4 input channels, groups, 1x1, stride over 2 or dilation");
    return true;
}
/* Winograd only where it pays (kl_conv2d_winograd_pays, the rule of the
 * kernel's own automatic choice: 8+ channels per group, 16+ output tiles
 * per image), so that a build that does not time tactics (sessions), which
 * takes the best quality tier, cannot run depthwise layers or 7x7 maps as
 * Winograd ahead of conv.depthwise / im2col. */
static bool conv_wino_applies(const kl_node *n, char *w, size_t s) {
    kl_conv2d_desc d;
    if (!conv_desc(n, &d, w, s)) return false;
    if (!kl_conv2d_supports(&d, KL_CONV_WINOGRAD)) return no(w, s, "the algorithm does not fit this geometry");
    if (!kl_conv2d_winograd_pays(&d))
        return no(w, s, "under 8 channels per group or 16 output tiles: Winograd does not pay");
    return true;
}

/* F(2x2) Winograd only where it pays (kl_conv2d_winograd2_pays: F(4x4)
 * does not, 32+ channels per group, 16+ tiles of 2x2), for the same reason. */
static bool conv_wino2_applies(const kl_node *n, char *w, size_t s) {
    kl_conv2d_desc d;
    if (!conv_desc(n, &d, w, s)) return false;
    if (!kl_conv2d_supports(&d, KL_CONV_WINOGRAD2)) return no(w, s, "the algorithm does not fit this geometry");
    if (!kl_conv2d_winograd2_pays(&d))
        return no(w, s, "F(4x4) pays, or under 32 channels per group or 16 tiles of 2x2: F(2x2) does not pay");
    return true;
}

/* Transposed F(4x4) only where it pays (kl_conv2d_winograd4t_pays: 32-127
 * tiles per image, 32+ channels per group): ranked above conv.winograd. */
static bool conv_wino4t_applies(const kl_node *n, char *w, size_t s) {
    kl_conv2d_desc d;
    if (!conv_desc(n, &d, w, s)) return false;
    if (!kl_conv2d_winograd4t_pays(&d))
        return no(w, s, "not 32-127 tiles of 4x4 with 32+ channels per group: transposed F(4x4) does not pay");
    return true;
}

/* im2row only where it pays (kl_conv2d_im2row_pays: maps of 64 pixels or
 * fewer, or 1x1/2 downsamples of 512+ (AVX2: 1024+) channels), so untimed builds take it
 * ahead of gemm1x1 and im2col there. */
static bool conv_im2row_applies(const kl_node *n, char *w, size_t s) {
    kl_conv2d_desc d;
    if (!conv_desc(n, &d, w, s)) return false;
    if (!kl_conv2d_im2row_pays(&d)) return no(w, s, "over 64 output pixels (other than a wide 1x1/2 downsample) or few channels: im2row does not pay");
    return true;
}

/* conv.igemm only where it pays at level isa (kl_conv2d_igemm_pays: stems
 * of 64k or at most 16 output channels; AVX2 also 32k), so untimed builds
 * take it ahead of conv.direct there. */
static bool conv_igemm_applies(const kl_node *n, kl_isa isa, char *w, size_t s) {
    kl_conv2d_desc d;
    if (!conv_desc(n, &d, w, s)) return false;
    d.isa = isa;
    if (!kl_conv2d_igemm_pays(&d))
        return no(w, s, "not a stem of 64k (AVX2: 32k) or at most 16 output channels: the implicit GEMM does not pay");
    return true;
}

static kiln_status conv_prepare_algo(const kl_node *n, kl_conv_algo algo, kl_isa isa, void **state, size_t *workspace) {
    kl_lazy *z = lazy_new(n);
    if (!z) return KILN_ERR_NO_MEMORY;
    if (!conv_desc(n, &z->d, NULL, 0)) {
        lazy_release(z);
        return kl_errorf(KILN_ERR_INTERNAL, "node '%s': not a convolution the x86 kernels take", kl_node_label(n));
    }
    z->algo = algo;
    z->d.algo = algo;
    /* Zen 4 (kl_cpu_isa's dw_avx2): depthwise layers on maps 14 to 28 wide,
     * stride 1 or 3x3 stride 2, without an activation or with ReLU/Clip
     * (which the column kernels apply in their stores), run the AVX2 column
     * kernels.  MobileNet-V2 b1, 1 thread, three alternated profiles, each
     * layer's minimum, AVX-512 -> AVX2 kernels, ms: 3x3 192ch 28x28 0.071 ->
     * 0.054, 3x3 576ch 14x14 0.069 -> 0.051, 3x3/2 576ch 14x14 0.041 ->
     * 0.028, 3x3 384ch 14x14 0.045 -> 0.034; the ten such layers 0.126 ms
     * less.  EfficientNet-B0's SiLU layers on the same maps (a second pass
     * over the plane in the column kernels) ran 0.003-0.020 ms slower each;
     * at 56 or 7 wide the AVX-512 kernels hold or win (twenty-seventh
     * session) */
    kl_act_kind ak = z->d.act.kind;
    if (algo == KL_CONV_DEPTHWISE && isa == KL_ISA_AVX512 && kl_cpu_isa_get()->dw_avx2 && z->d.W >= 14 &&
        z->d.W <= 28 && (z->d.stride_w == 1 || z->d.KW == 3) &&
        (ak == KL_ACT_NONE || ak == KL_ACT_RELU || ak == KL_ACT_CLIP))
        isa = KL_ISA_AVX2;
    z->d.isa = isa;
    z->isa = isa;
    *state = z;
    *workspace = 0; /* known once packed; taken from the context's scratch */
    return KILN_OK;
}

/* Pack the weights (input wi, the bias input wi + 1) once (first run of
 * the layer, any context). */
static kiln_status conv_ready_at(kl_lazy *z, int threads, size_t wi) {
    if (__atomic_load_n(&z->ready, __ATOMIC_ACQUIRE) == 1) return KILN_OK;
    pthread_mutex_lock(&z->mu);
    kiln_status s = KILN_OK;
    if (z->ready == 0) {
        const kl_node *n = z->node;
        float *ow = NULL, *ob = NULL;
        const float *W = aligned_data(n->inputs[wi]->init, &ow);
        const kl_tensor *bt = n->n_inputs > wi + 1 && n->inputs[wi + 1] ? n->inputs[wi + 1]->init : NULL;
        const float *B = bt ? aligned_data(bt, &ob) : NULL;
        z->d.threads = threads > 0 ? threads : 1;
        s = (!W || (bt && !B)) ? KILN_ERR_NO_MEMORY : kl_conv2d_prepare(&z->d, W, B, &z->plan);
        kl_free(ow);
        kl_free(ob);
        /* the plan holds its own (packed, transformed) copy: the mapped weights' pages can go */
        if (!s) kl_mapfile_release(n->inputs[wi]->init->data, n->inputs[wi]->init->nbytes);
        if (!s) {
            size_t OH, OW;
            kl_conv2d_out_hw(z->plan, &OH, &OW);
            z->in_img = z->d.C * z->d.H * z->d.W;
            z->out_img = z->d.M * OH * OW;
        }
        __atomic_store_n(&z->ready, s ? 2 : 1, __ATOMIC_RELEASE);
    } else if (z->ready == 2) {
        s = kl_errorf(KILN_ERR_INTERNAL, "node '%s': the convolution could not be prepared", kl_node_label(z->node));
    }
    pthread_mutex_unlock(&z->mu);
    return s;
}

static kiln_status conv_ready(kl_lazy *z, int threads) { return conv_ready_at(z, threads, 1); }

/* The plan's packed form for the engine file (kl_conv2d_export). */
static kiln_status conv_export(void *state, int threads, void *dst, size_t *size) {
    kl_lazy *z = state;
    KL_TRY(conv_ready_at(z, threads, z->wi ? z->wi : 1));
    size_t need = kl_conv2d_export(z->plan, NULL, 0);
    if (dst && *size >= need) kl_conv2d_export(z->plan, dst, *size);
    *size = need;
    return KILN_OK;
}

/* A plan around the engine's packed bytes instead of packing at the first run. */
static kiln_status conv_adopt(void *state, int threads, const void *src, size_t size) {
    kl_lazy *z = state;
    pthread_mutex_lock(&z->mu);
    kiln_status s = KILN_OK;
    if (z->ready == 0) {
        z->d.threads = threads > 0 ? threads : 1;
        s = kl_conv2d_adopt(&z->d, src, size, &z->plan);
        if (!s) {
            size_t OH, OW;
            kl_conv2d_out_hw(z->plan, &OH, &OW);
            z->in_img = z->d.C * z->d.H * z->d.W;
            z->out_img = z->d.M * OH * OW;
            __atomic_store_n(&z->ready, 1, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&z->mu);
    if (s) return kl_error_context(s, "node '%s': ", kl_node_label(z->node));
    return KILN_OK;
}

static kiln_status conv_run(kl_kctx *c) {
    kl_lazy *z = (kl_lazy *)c->state;
    kl_pool *pool = c->pool;
    int threads = pool ? kl_pool_threads(pool) : 1;
    KL_TRY(conv_ready(z, KL_MAX(threads, z->d.threads)));
    const kl_rt *x = c->in[0];
    const kl_rt *zres = c->n_in > 3 ? c->in[3] : NULL;
    if (!x || x->dtype != KILN_DTYPE_FLOAT || x->rank != 4 || (size_t)x->dims[1] != z->d.C ||
        (size_t)x->dims[2] != z->d.H || (size_t)x->dims[3] != z->d.W)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "input does not have the shape the convolution was prepared for");
    size_t OH, OW;
    kl_conv2d_out_hw(z->plan, &OH, &OW);
    int64_t dims[4] = {x->dims[0], (int64_t)z->d.M, (int64_t)OH, (int64_t)OW};
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 4, dims, &y));
    if (zres && (zres->dtype != KILN_DTYPE_FLOAT || zres->count != y->count))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "residual input does not have the output's shape");
    size_t ws = kl_conv2d_workspace_size_n(z->plan, threads, (size_t)x->dims[0]);
    void *work = ws ? kl_kctx_scratch(c, ws) : NULL;
    if (ws && !work) return KILN_ERR_NO_MEMORY;
    /* the whole batch in one parallel loop (images and tiles split together) */
    return kl_conv2d_run_n(pool, z->plan, (size_t)x->dims[0], (const float *)x->data,
                           zres ? (const float *)zres->data : NULL, (float *)y->data, work);
}

/* ---- conv.matvec: 1x1 convolutions on 1x1 maps (squeeze-excite's FCs) ---------------------- */

/* One output pixel per image from one input pixel: a matrix-vector
 * product per image with the weights as they are ([M, C] row-major), where
 * the GEMM kernels would fill one lane of 16-64. */
static bool conv_matvec_applies(const kl_node *n, char *w, size_t s) {
    kl_conv2d_desc d;
    if (!conv_desc(n, &d, w, s)) return false;
    if (d.KH != 1 || d.KW != 1 || d.H != 1 || d.W != 1 || d.group != 1 || d.pad_top || d.pad_left ||
        d.pad_bottom || d.pad_right)
        return no(w, s, "not a 1x1 convolution of a 1x1 map without pads");
    return true;
}

typedef struct kl_mv {
    kl_isa isa;
    size_t M, C;
    kl_act act;
    const float *w, *bias; /* the constants' data (vector loads need no alignment) */
} kl_mv;

static void mv_release(void *p) { kl_free(p); }

static kiln_status conv_mv_prepare(const kl_node *n, kl_isa isa, void **state, size_t *workspace) {
    kl_conv2d_desc d;
    if (!conv_matvec_applies(n, NULL, 0))
        return kl_errorf(KILN_ERR_INTERNAL, "node '%s': not a 1x1 convolution of a 1x1 map", kl_node_label(n));
    conv_desc(n, &d, NULL, 0);
    kl_mv *z = kl_calloc(1, sizeof *z);
    if (!z) return KILN_ERR_NO_MEMORY;
    z->isa = isa;
    z->M = d.M;
    z->C = d.C;
    z->act = d.act;
    z->w = n->inputs[1]->init->data;
    z->bias = n->n_inputs > 2 && n->inputs[2] ? n->inputs[2]->init->data : NULL;
    *state = z;
    *workspace = 0;
    return KILN_OK;
}

static kiln_status conv_mv_run(kl_kctx *c) {
    const kl_mv *z = c->state;
    const kl_rt *x = c->in[0];
    const kl_rt *zres = c->n_in > 3 ? c->in[3] : NULL;
    if (!x || x->dtype != KILN_DTYPE_FLOAT || x->rank != 4 || (size_t)x->dims[1] != z->C || x->dims[2] != 1 ||
        x->dims[3] != 1)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "input is not [N, %zu, 1, 1]", z->C);
    int64_t dims[4] = {x->dims[0], (int64_t)z->M, 1, 1};
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 4, dims, &y));
    if (zres && (zres->dtype != KILN_DTYPE_FLOAT || zres->count != y->count))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "residual input does not have the output's shape");
    const kl_vec_kernels *k = kl_vec_kernels_get(z->isa);
    for (int64_t i = 0; i < x->dims[0]; i++)
        k->matvec(z->w, z->M, z->C, (const float *)x->data + (size_t)i * z->C, z->bias,
                  zres ? (const float *)zres->data + (size_t)i * z->M : NULL, (float *)y->data + (size_t)i * z->M,
                  (int)z->act.kind, z->act.alpha, z->act.beta);
    return KILN_OK;
}

/* ---- Gemm / MatMul with constant B -------------------------------------------------------- */

/* Gemm(A[M,K] or A'[K,M], B const, C?) / FusedGemm (+Z, activation), or
 * MatMul / FusedMatMul (A[..., M, K] x B const [K, N], bias [N]). */
static bool gemm_shape(const kl_node *n, size_t *K, size_t *N, char *why, size_t wsz) {
    bool gemm = is_op(n, "Gemm", "FusedGemm"), mm = is_op(n, "MatMul", "FusedMatMul");
    if (!gemm && !mm) return no(why, wsz, "not a matrix product");
    if (!float_input(n, 0) || !act_ok(n)) return no(why, wsz, "not float");
    const kl_tensor *b = const_input(n, 1);
    if (!b || b->rank != 2) return no(why, wsz, "B is not a constant matrix");
    const kl_shape *as = &n->inputs[0]->type.shape;
    if (as->rank < 2 || (gemm && as->rank != 2)) return no(why, wsz, "A must be a matrix (or a batch of rows)");
    bool tb = gemm && kl_node_attr_int(n, "transB", 0);
    *K = (size_t)(tb ? b->dims[1] : b->dims[0]);
    *N = (size_t)(tb ? b->dims[0] : b->dims[1]);
    bool ta = gemm && kl_node_attr_int(n, "transA", 0);
    const kl_dim *kd = &as->dims[ta ? as->rank - 2 : as->rank - 1];
    if (kd->value >= 0 && (size_t)kd->value != *K) return no(why, wsz, "inner dimensions differ");
    if (n->n_inputs > 2 && n->inputs[2]) {
        const kl_tensor *c = const_input(n, 2);
        if (!c || (size_t)c->count != *N || (c->rank >= 1 && (size_t)c->dims[c->rank - 1] != *N))
            return no(why, wsz, "bias is not a constant row of N values");
    }
    if (n->n_inputs > 3 && n->inputs[3] && !float_input(n, 3)) return no(why, wsz, "residual is not float");
    return true;
}

static bool gemm_applies(const kl_node *n, char *why, size_t wsz) {
    size_t K, N;
    return gemm_shape(n, &K, &N, why, wsz);
}

static kiln_status gemm_prepare(const kl_node *n, kl_isa isa, void **state, size_t *workspace) {
    kl_lazy *z = lazy_new(n);
    if (!z) return KILN_ERR_NO_MEMORY;
    if (!gemm_shape(n, &z->K, &z->N, NULL, 0)) {
        lazy_release(z);
        return kl_errorf(KILN_ERR_INTERNAL, "node '%s': not a product the x86 kernels take", kl_node_label(n));
    }
    bool gemm = is_op(n, "Gemm", "FusedGemm");
    z->transA = gemm && kl_node_attr_int(n, "transA", 0);
    z->transB_w = gemm && kl_node_attr_int(n, "transB", 0);
    z->alpha = kl_node_attr_float(n, "alpha", 1.0f);
    z->act = node_act(n);
    z->isa = isa;
    *state = z;
    *workspace = 0;
    return KILN_OK;
}

static kiln_status gemm_ready(kl_lazy *z) {
    if (__atomic_load_n(&z->ready, __ATOMIC_ACQUIRE) == 1) return KILN_OK;
    pthread_mutex_lock(&z->mu);
    kiln_status s = KILN_OK;
    if (z->ready == 0) {
        const kl_node *n = z->node;
        float *ow = NULL, *oc = NULL;
        const float *B = aligned_data(n->inputs[1]->init, &ow);
        z->packed_b = kl_malloc(kl_sgemm_pack_b_size(z->K, z->N));
        s = (B && z->packed_b) ? KILN_OK : KILN_ERR_NO_MEMORY;
        if (!s) kl_sgemm_pack_b(B, z->transB_w ? z->K : z->N, z->transB_w, z->K, z->N, z->packed_b);
        /* the packed copy is what the kernel reads: the mapped weights' pages can go */
        if (!s) kl_mapfile_release(n->inputs[1]->init->data, n->inputs[1]->init->nbytes);
        const kl_tensor *ct = n->n_inputs > 2 && n->inputs[2] ? n->inputs[2]->init : NULL;
        if (!s && ct) {
            const float *C = aligned_data(ct, &oc);
            float beta = is_op(n, "Gemm", "FusedGemm") ? kl_node_attr_float(n, "beta", 1.0f) : 1.0f;
            z->bias = kl_malloc(z->N * sizeof *z->bias);
            if (!C || !z->bias) s = KILN_ERR_NO_MEMORY;
            for (size_t j = 0; !s && j < z->N; j++) z->bias[j] = beta * C[j];
        }
        kl_free(ow);
        kl_free(oc);
        __atomic_store_n(&z->ready, s ? 2 : 1, __ATOMIC_RELEASE);
    } else if (z->ready == 2) {
        s = kl_errorf(KILN_ERR_INTERNAL, "node '%s': the product could not be prepared", kl_node_label(z->node));
    }
    pthread_mutex_unlock(&z->mu);
    return s;
}

/* The packed section's form of a product (docs/ENGINE.md 2.1): a 64-byte
 * header ("KLGEMM01", u64 K, N, the packed B's bytes, the bias's floats),
 * the packed B (kl_sgemm_pack_b's buffer, its own header included) and the
 * bias, each at a multiple of 64 bytes and followed by 64 zero bytes. */
#define GP_MAGIC "KLGEMM01"
static size_t gp_round(size_t b) { return (b + 63) / 64 * 64 + 64; }

static kiln_status gemm_export(void *state, int threads, void *dst, size_t *size) {
    (void)threads;
    kl_lazy *z = state;
    KL_TRY(gemm_ready(z));
    uint64_t h[8] = {0};
    size_t pb = kl_sgemm_pack_b_size(z->K, z->N), nb = z->bias ? z->N : 0;
    size_t need = 64 + gp_round(pb) + (nb ? gp_round(nb * sizeof(float)) : 0);
    if (dst && *size >= need) {
        memset(dst, 0, need);
        memcpy(h, GP_MAGIC, 8);
        h[1] = z->K, h[2] = z->N, h[3] = pb, h[4] = nb;
        memcpy(dst, h, 64);
        memcpy((char *)dst + 64, z->packed_b, pb);
        if (nb) memcpy((char *)dst + 64 + gp_round(pb), z->bias, nb * sizeof(float));
    }
    *size = need;
    return KILN_OK;
}

static kiln_status gemm_adopt(void *state, int threads, const void *src, size_t size) {
    (void)threads;
    kl_lazy *z = state;
    uint64_t h[8];
    size_t pb = kl_sgemm_pack_b_size(z->K, z->N);
    if (size < 64) return kl_errorf(KILN_ERR_PARSE, "node '%s': pre-packed weights: no header", kl_node_label(z->node));
    memcpy(h, src, 64);
    bool want_bias = z->node->n_inputs > 2 && z->node->inputs[2] && z->node->inputs[2]->init;
    if (memcmp(h, GP_MAGIC, 8) != 0 || h[1] != z->K || h[2] != z->N || h[3] != pb || h[4] != (want_bias ? z->N : 0) ||
        size < 64 + gp_round(pb) + (h[4] ? gp_round(h[4] * sizeof(float)) : 0))
        return kl_errorf(KILN_ERR_ENGINE_MISMATCH,
                         "node '%s': pre-packed weights do not fit a %zu x %zu product: rebuild the engine",
                         kl_node_label(z->node), z->K, z->N);
    pthread_mutex_lock(&z->mu);
    if (z->ready == 0) {
        z->borrowed = true;
        z->packed_b = (void *)((uintptr_t)src + 64);
        z->bias = h[4] ? (float *)((uintptr_t)src + 64 + gp_round(pb)) : NULL;
        __atomic_store_n(&z->ready, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&z->mu);
    return KILN_OK;
}

static kiln_status gemm_run(kl_kctx *c) {
    kl_lazy *z = (kl_lazy *)c->state;
    KL_TRY(gemm_ready(z));
    const kl_rt *a = c->in[0];
    const kl_rt *zres = c->n_in > 3 ? c->in[3] : NULL;
    if (!a || a->dtype != KILN_DTYPE_FLOAT || a->rank < 2)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "A is not a float matrix");
    size_t K = (size_t)a->dims[z->transA ? a->rank - 2 : a->rank - 1];
    if (K != z->K) return kl_kctx_fail(c, KILN_ERR_SHAPE, "A has %zu columns, B has %zu rows", K, z->K);
    size_t M = (size_t)(a->count / (int64_t)K);
    int64_t dims[KILN_MAX_RANK];
    memcpy(dims, a->dims, sizeof dims);
    if (z->transA) dims[0] = a->dims[1];
    dims[a->rank - 1] = (int64_t)z->N;
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, a->rank, dims, &y));
    if (zres && (zres->dtype != KILN_DTYPE_FLOAT || zres->count != y->count))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "residual input does not have the output's shape");
    kl_gemm_args g;
    memset(&g, 0, sizeof g);
    g.M = M;
    g.N = z->N;
    g.K = z->K;
    g.A = a->data;
    g.lda = z->transA ? M : K;
    g.transA = z->transA;
    g.packed_b = z->packed_b;
    g.C = y->data;
    g.ldc = z->N;
    g.alpha = z->alpha;
    g.beta = 0;
    g.col_bias = z->bias;
    g.Z = zres ? zres->data : NULL;
    g.ldz = z->N;
    g.act = z->act;
    g.isa = z->isa;
    kl_pool *pool = c->pool;
    size_t ws = kl_sgemm_workspace_size(&g, pool ? kl_pool_threads(pool) : 1);
    if (ws) {
        g.workspace = kl_kctx_scratch(c, ws);
        g.workspace_bytes = ws;
        if (!g.workspace) return KILN_ERR_NO_MEMORY;
    }
    return kl_sgemm(pool, &g);
}

/* ---- gemm.matvec: Gemm with a constant B' [N, K] on one or two rows ---------------------- */

/* The classifier of a CNN at batch 1 (1280 -> 1000: 5 MB of weights) is a
 * matrix-vector product: B' read in place, row by row, where the packed
 * GEMM fills one row of its 6-row tiles.  Three or more rows of A (a
 * batch) go to the packed product (prepared lazily), which reads the
 * weights once for all of them. */
static bool gemm_matvec_applies(const kl_node *n, char *why, size_t wsz) {
    size_t K, N;
    if (!gemm_shape(n, &K, &N, why, wsz)) return false;
    if (!is_op(n, "Gemm", "FusedGemm") || !kl_node_attr_int(n, "transB", 0) || kl_node_attr_int(n, "transA", 0) ||
        kl_node_attr_float(n, "alpha", 1.0f) != 1.0f)
        return no(why, wsz, "not a Gemm with transB, no transA, alpha 1");
    return true;
}

typedef struct kl_gmv {
    kl_lazy *g; /* the packed product, for three rows or more */
    size_t N, K;
    float *bias; /* beta * C, or NULL */
    kl_act act;
    kl_isa isa;
} kl_gmv;

static void gmv_release(void *p) {
    kl_gmv *z = p;
    if (!z) return;
    lazy_release(z->g);
    kl_free(z->bias);
    kl_free(z);
}

static kiln_status gemm_mv_prepare(const kl_node *n, kl_isa isa, void **state, size_t *workspace) {
    if (!gemm_matvec_applies(n, NULL, 0))
        return kl_errorf(KILN_ERR_INTERNAL, "node '%s': not a Gemm gemm.matvec takes", kl_node_label(n));
    kl_gmv *z = kl_calloc(1, sizeof *z);
    if (!z) return KILN_ERR_NO_MEMORY;
    void *g = NULL;
    kiln_status s = gemm_prepare(n, isa, &g, workspace);
    z->g = g;
    if (s) {
        gmv_release(z);
        return s;
    }
    z->N = z->g->N, z->K = z->g->K, z->act = z->g->act, z->isa = isa;
    const kl_tensor *ct = n->n_inputs > 2 && n->inputs[2] ? n->inputs[2]->init : NULL;
    if (ct) {
        float *oc = NULL;
        const float *C = aligned_data(ct, &oc);
        float beta = kl_node_attr_float(n, "beta", 1.0f);
        z->bias = kl_malloc(z->N * sizeof *z->bias);
        if (!C || !z->bias) s = KILN_ERR_NO_MEMORY;
        for (size_t j = 0; !s && j < z->N; j++) z->bias[j] = beta * C[j];
        kl_free(oc);
    }
    if (s) {
        gmv_release(z);
        return s;
    }
    *state = z;
    return KILN_OK;
}

typedef struct gmv_job {
    const kl_gmv *z;
    const float *w, *x, *zres;
    float *y;
    size_t chunk;
} gmv_job;

static void gmv_task(void *arg, size_t b, size_t e, int tid) {
    (void)tid;
    const gmv_job *j = arg;
    const kl_gmv *z = j->z;
    const kl_vec_kernels *k = kl_vec_kernels_get(z->isa);
    for (size_t it = b; it < e; it++) {
        size_t n0 = it * j->chunk, nn = KL_MIN(j->chunk, z->N - n0);
        k->matvec(j->w + n0 * z->K, nn, z->K, j->x, z->bias ? z->bias + n0 : NULL, j->zres ? j->zres + n0 : NULL,
                  j->y + n0, (int)z->act.kind, z->act.alpha, z->act.beta);
    }
}

static kiln_status gemm_mv_run(kl_kctx *c) {
    kl_gmv *z = (kl_gmv *)c->state;
    const kl_rt *a = c->in[0];
    const kl_rt *zres = c->n_in > 3 ? c->in[3] : NULL;
    if (!a || a->dtype != KILN_DTYPE_FLOAT || a->rank != 2 || (size_t)a->dims[1] != z->K)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "A is not a float matrix of %zu columns", z->K);
    size_t M = (size_t)a->dims[0];
    if (M > 2) { /* a batch: the packed product reads the weights once */
        const void *self = c->state;
        c->state = z->g;
        kiln_status s = gemm_run(c);
        c->state = self;
        return s;
    }
    int64_t dims[2] = {a->dims[0], (int64_t)z->N};
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 2, dims, &y));
    if (zres && (zres->dtype != KILN_DTYPE_FLOAT || zres->count != y->count))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "residual input does not have the output's shape");
    const kl_node *n = z->g->node;
    gmv_job j = {z, n->inputs[1]->init->data, NULL, NULL, NULL, 64};
    size_t chunks = (z->N + j.chunk - 1) / j.chunk;
    for (size_t r = 0; r < M; r++) {
        j.x = (const float *)a->data + r * z->K;
        j.zres = zres ? (const float *)zres->data + r * z->N : NULL;
        j.y = (float *)y->data + r * z->N;
        kl_parallel_for_n(c->pool, c->pool ? kl_pool_threads(c->pool) : 1, chunks, gmv_task, &j);
    }
    return KILN_OK;
}

/* ---- conv.expand_dw: kiln.FusedConvDw (1x1 expand or stem + depthwise in bands) ------------ */

typedef struct kl_cdw {
    pthread_mutex_t mu;
    int ready; /* 1: prepared, 2: failed */
    const kl_node *node;
    kl_conv2d_desc e, d;
    kl_convdw_plan *plan;
} kl_cdw;

/* Strides (sname: 2 values >= 1, default 1) and pads (pname: 4 values >=
 * 0, default 0) of n into d; false when malformed. */
static bool geometry_attrs(const kl_node *n, const char *sname, const char *pname, kl_conv2d_desc *d) {
    const int64_t *v;
    int64_t cnt;
    d->stride_h = d->stride_w = 1;
    if ((cnt = kl_node_attr_ints(n, sname, &v)) >= 0) {
        if (cnt != 2 || v[0] < 1 || v[1] < 1) return false;
        d->stride_h = (size_t)v[0], d->stride_w = (size_t)v[1];
    }
    if ((cnt = kl_node_attr_ints(n, pname, &v)) >= 0) {
        if (cnt != 4 || v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0) return false;
        d->pad_top = (size_t)v[0], d->pad_left = (size_t)v[1], d->pad_bottom = (size_t)v[2], d->pad_right = (size_t)v[3];
    }
    return true;
}

/* The two layers' descriptors at level isa; false (with the reason) when
 * the kernel cannot run the node. */
static bool cdw_desc(const kl_node *n, kl_isa isa, kl_conv2d_desc *e, kl_conv2d_desc *d, char *why, size_t wsz) {
    memset(e, 0, sizeof *e);
    memset(d, 0, sizeof *d);
    if (!is_op(n, NULL, "FusedConvDw")) return no(why, wsz, "not kiln.FusedConvDw");
    if (n->n_inputs != 5 || !float_input(n, 0) || !act_ok(n)) return no(why, wsz, "not float");
    const kl_shape *xs = &n->inputs[0]->type.shape;
    const kl_tensor *w1 = const_input(n, 1), *b1 = const_input(n, 2), *w2 = const_input(n, 3), *b2 = const_input(n, 4);
    if (xs->rank != 4 || !w1 || !b1 || !w2 || !b2 || w1->rank != 4 || w2->rank != 4)
        return no(why, wsz, "not rank 4 with constant weights and biases");
    for (int a = 1; a < 4; a++)
        if (xs->dims[a].value <= 0) return no(why, wsz, "C, H or W is not static");
    int64_t M = w1->dims[0];
    if (w1->dims[1] != xs->dims[1].value || w1->dims[2] < 1 || w1->dims[3] < 1 || w2->dims[0] != M ||
        w2->dims[1] != 1 || b1->count != M || b2->count != M)
        return no(why, wsz, "weights or biases of other shapes");
    if (!geometry_attrs(n, "strides", "pads", d) || !geometry_attrs(n, "expand_strides", "expand_pads", e))
        return no(why, wsz, "strides or pads");
    int64_t ea = kl_node_attr_int(n, "expand_activation", 0);
    if (ea < 0 || ea >= KL_ACT_COUNT) return no(why, wsz, "expand_activation unknown");
    e->N = d->N = 1;
    e->C = (size_t)xs->dims[1].value, e->H = (size_t)xs->dims[2].value, e->W = (size_t)xs->dims[3].value;
    e->M = d->C = d->M = d->group = (size_t)M;
    e->KH = (size_t)w1->dims[2], e->KW = (size_t)w1->dims[3];
    size_t sh = e->H + e->pad_top + e->pad_bottom, sw = e->W + e->pad_left + e->pad_right;
    if (sh < e->KH || sw < e->KW) return no(why, wsz, "the first kernel is larger than the padded input");
    d->H = (sh - e->KH) / e->stride_h + 1, d->W = (sw - e->KW) / e->stride_w + 1;
    d->KH = (size_t)w2->dims[2], d->KW = (size_t)w2->dims[3];
    e->act.kind = (kl_act_kind)ea;
    e->act.alpha = kl_node_attr_float(n, "expand_act_alpha", 0.0f);
    e->act.beta = kl_node_attr_float(n, "expand_act_beta", 0.0f);
    d->act = node_act(n);
    e->isa = d->isa = isa;
    if (!kl_conv2d_expand_dw_supports(e, d))
        return no(why, wsz, "not a first layer (1x1 or stem) and depthwise geometry the vector kernels run in bands");
    return true;
}

static void cdw_release(void *p) {
    kl_cdw *z = p;
    if (!z) return;
    kl_convdw_destroy(z->plan);
    pthread_mutex_destroy(&z->mu);
    kl_free(z);
}

static kiln_status cdw_prepare(const kl_node *n, kl_isa isa, void **state, size_t *workspace) {
    kl_cdw *z = kl_calloc(1, sizeof *z);
    if (!z) return KILN_ERR_NO_MEMORY;
    pthread_mutex_init(&z->mu, NULL);
    z->node = n;
    if (!cdw_desc(n, isa, &z->e, &z->d, NULL, 0)) {
        cdw_release(z);
        return kl_errorf(KILN_ERR_INTERNAL, "node '%s': not a pair conv.expand_dw takes", kl_node_label(n));
    }
    *state = z;
    *workspace = 0; /* known once packed; taken from the context's scratch */
    return KILN_OK;
}

/* Pack both layers' weights once (first run, any context). */
static kiln_status cdw_ready(kl_cdw *z, int threads) {
    if (__atomic_load_n(&z->ready, __ATOMIC_ACQUIRE) == 1) return KILN_OK;
    pthread_mutex_lock(&z->mu);
    kiln_status s = KILN_OK;
    if (z->ready == 0) {
        const kl_node *n = z->node;
        float *o[4] = {NULL, NULL, NULL, NULL};
        const float *p[4];
        for (int i = 0; i < 4; i++) p[i] = aligned_data(n->inputs[1 + i]->init, &o[i]);
        z->e.threads = z->d.threads = threads > 0 ? threads : 1;
        s = (!p[0] || !p[1] || !p[2] || !p[3]) ? KILN_ERR_NO_MEMORY
                                                : kl_convdw_prepare(&z->e, p[0], p[1], &z->d, p[2], p[3], 0, &z->plan);
        for (int i = 0; i < 4; i++) kl_free(o[i]);
        if (!s) { /* the plan holds packed copies: the mapped weights' pages can go */
            kl_mapfile_release(n->inputs[1]->init->data, n->inputs[1]->init->nbytes);
            kl_mapfile_release(n->inputs[3]->init->data, n->inputs[3]->init->nbytes);
        }
        __atomic_store_n(&z->ready, s ? 2 : 1, __ATOMIC_RELEASE);
    } else if (z->ready == 2) {
        s = kl_errorf(KILN_ERR_INTERNAL, "node '%s': conv.expand_dw could not be prepared", kl_node_label(z->node));
    }
    pthread_mutex_unlock(&z->mu);
    return s;
}

static kiln_status cdw_run(kl_kctx *c) {
    kl_cdw *z = (kl_cdw *)c->state;
    int threads = c->pool ? kl_pool_threads(c->pool) : 1;
    KL_TRY(cdw_ready(z, KL_MAX(threads, z->d.threads)));
    const kl_rt *x = c->in[0];
    if (!x || x->dtype != KILN_DTYPE_FLOAT || x->rank != 4 || (size_t)x->dims[1] != z->e.C ||
        (size_t)x->dims[2] != z->e.H || (size_t)x->dims[3] != z->e.W)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "input does not have the shape the layers were prepared for");
    size_t OH, OW;
    kl_convdw_out_hw(z->plan, &OH, &OW);
    int64_t dims[4] = {x->dims[0], (int64_t)z->d.M, (int64_t)OH, (int64_t)OW};
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 4, dims, &y));
    size_t ws = kl_convdw_workspace_size(z->plan, threads);
    void *work = kl_kctx_scratch(c, ws);
    if (!work) return KILN_ERR_NO_MEMORY;
    return kl_convdw_run_n(c->pool, z->plan, (size_t)x->dims[0], (const float *)x->data, (float *)y->data, work);
}

static bool cdw_applies_isa(const kl_node *n, kl_isa isa, char *why, size_t wsz) {
    kl_conv2d_desc e, d;
    return cdw_desc(n, isa, &e, &d, why, wsz);
}

/* ---- conv.scaled1x1: kiln.ScaledConv (1x1 convolution of X times a per-channel scale) ------- */

/* The 1x1 layer's descriptor: X [N, C, H, W] (C, H, W static), S [N or 1,
 * C, 1, 1], constant W [M, C, 1, 1] and B [M], optional Z. */
static bool scaled_desc(const kl_node *n, kl_conv2d_desc *d, char *why, size_t wsz) {
    memset(d, 0, sizeof *d);
    if (!is_op(n, NULL, "ScaledConv")) return no(why, wsz, "not kiln.ScaledConv");
    if (n->n_inputs < 4 || n->n_inputs > 5 || !float_input(n, 0) || !float_input(n, 1) || !act_ok(n) ||
        (n->n_inputs == 5 && n->inputs[4] && !float_input(n, 4)))
        return no(why, wsz, "not float");
    const kl_shape *xs = &n->inputs[0]->type.shape;
    const kl_tensor *w = const_input(n, 2), *b = const_input(n, 3);
    if (xs->rank != 4 || !w || !b || w->rank != 4) return no(why, wsz, "not rank 4 with constant weights and bias");
    for (int a = 1; a < 4; a++)
        if (xs->dims[a].value <= 0) return no(why, wsz, "C, H or W is not static");
    if (w->dims[1] != xs->dims[1].value || w->dims[2] != 1 || w->dims[3] != 1 || b->count != w->dims[0])
        return no(why, wsz, "weights or bias of other shapes");
    d->N = 1, d->C = (size_t)xs->dims[1].value, d->H = (size_t)xs->dims[2].value, d->W = (size_t)xs->dims[3].value;
    d->M = (size_t)w->dims[0], d->KH = d->KW = 1, d->group = 1;
    d->stride_h = d->stride_w = d->dil_h = d->dil_w = 1;
    d->act = node_act(n);
    /* maps of <= 64 pixels: im2row, whose transposed copy of X takes the scale */
    d->algo = kl_conv2d_im2row_pays(d) ? KL_CONV_IM2ROW : KL_CONV_GEMM1X1;
    return true;
}

static bool scaled_applies(const kl_node *n, char *why, size_t wsz) {
    kl_conv2d_desc d;
    return scaled_desc(n, &d, why, wsz);
}

static kiln_status scaled_prepare(const kl_node *n, kl_isa isa, void **state, size_t *workspace) {
    kl_lazy *z = lazy_new(n);
    if (!z) return KILN_ERR_NO_MEMORY;
    if (!scaled_desc(n, &z->d, NULL, 0)) {
        lazy_release(z);
        return kl_errorf(KILN_ERR_INTERNAL, "node '%s': not a layer conv.scaled1x1 takes", kl_node_label(n));
    }
    z->algo = z->d.algo;
    z->wi = 2;
    z->d.isa = z->isa = isa;
    *state = z;
    *workspace = 0; /* known once packed; taken from the context's scratch */
    return KILN_OK;
}

static kiln_status scaled_run(kl_kctx *c) {
    kl_lazy *z = (kl_lazy *)c->state;
    int threads = c->pool ? kl_pool_threads(c->pool) : 1;
    KL_TRY(conv_ready_at(z, KL_MAX(threads, z->d.threads), 2));
    const kl_rt *x = c->in[0], *sc = c->in[1], *zres = c->n_in > 4 ? c->in[4] : NULL;
    if (!x || x->dtype != KILN_DTYPE_FLOAT || x->rank != 4 || (size_t)x->dims[1] != z->d.C ||
        (size_t)x->dims[2] != z->d.H || (size_t)x->dims[3] != z->d.W)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "input does not have the shape the convolution was prepared for");
    if (!sc || sc->dtype != KILN_DTYPE_FLOAT || sc->rank != 4 || (sc->dims[0] != 1 && sc->dims[0] != x->dims[0]) ||
        (size_t)sc->dims[1] != z->d.C || sc->dims[2] != 1 || sc->dims[3] != 1)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "the scale is not [N or 1, C, 1, 1] for X's %zu channels", z->d.C);
    int64_t dims[4] = {x->dims[0], (int64_t)z->d.M, x->dims[2], x->dims[3]};
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 4, dims, &y));
    if (zres && (zres->dtype != KILN_DTYPE_FLOAT || zres->count != y->count))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "residual input does not have the output's shape");
    if (y->count == 0) return KILN_OK;
    size_t ws = kl_conv2d_scaled_workspace_size(z->plan, threads, (size_t)x->dims[0]);
    void *work = kl_kctx_scratch(c, ws);
    if (!work) return KILN_ERR_NO_MEMORY;
    return kl_conv2d_run_scaled(c->pool, z->plan, (size_t)x->dims[0], (const float *)x->data, (const float *)sc->data,
                                sc->dims[0] == 1 ? 0 : z->d.C, zres ? (const float *)zres->data : NULL,
                                (float *)y->data, work);
}

/* ---- convt.gemm: ConvTranspose 2-D as packed products and col2im ------------------------ */

/* Float 2-D ConvTranspose: kl_convt2d (src/cpu/x86/convt.h).  Constant
 * weights (and bias) are packed once per engine at the first run; weights
 * or a bias that are graph inputs (the ONNX node tests) into a plan made
 * for each run.  The geometry (pads, output_padding, output_shape,
 * auto_pad) is the reference kernel's, computed at each run (the input's
 * H and W may be dynamic). */
static bool convt_applies(const kl_node *n, char *why, size_t wsz) {
    if (!is_op(n, "ConvTranspose", NULL)) return no(why, wsz, "not a ConvTranspose");
    if (!float_input(n, 0) || !float_input(n, 1)) return no(why, wsz, "not float");
    const kl_shape *xs = &n->inputs[0]->type.shape, *ws = &n->inputs[1]->type.shape;
    if (xs->rank != 4 || ws->rank != 4) return no(why, wsz, "not a 2-D ConvTranspose");
    if (n->n_inputs > 2 && n->inputs[2] && !float_input(n, 2)) return no(why, wsz, "bias is not float");
    const kl_tensor *w = const_input(n, 1);
    if (w && xs->dims[1].value >= 0 && xs->dims[1].value != w->dims[0]) return no(why, wsz, "channels differ from W's");
    return true;
}

/* Are the weights (and the bias, if any) constants of the graph? */
static bool convt_const(const kl_node *n) {
    return const_input(n, 1) && (n->n_inputs < 3 || !n->inputs[2] || const_input(n, 2));
}

typedef struct kl_convt_state {
    pthread_mutex_t mu;
    const kl_node *node;
    kl_isa isa;
    int ready; /* 1: plan made, 2: failed */
    kl_convt2d_plan *plan;
} kl_convt_state;

static void convt_release(void *p) {
    kl_convt_state *z = p;
    if (!z) return;
    kl_convt2d_destroy(z->plan);
    pthread_mutex_destroy(&z->mu);
    kl_free(z);
}

static kiln_status convt_prepare(const kl_node *n, kl_isa isa, void **state, size_t *workspace) {
    kl_convt_state *z = kl_calloc(1, sizeof *z);
    if (!z) return KILN_ERR_NO_MEMORY;
    pthread_mutex_init(&z->mu, NULL);
    z->node = n;
    z->isa = isa;
    *state = z;
    *workspace = 0;
    return KILN_OK;
}

static kl_convt2d_desc convt_desc(const kl_nn_geom *g, int64_t C, int64_t Mg, int64_t group, kl_isa isa) {
    kl_convt2d_desc d = {(size_t)C, (size_t)(Mg * group), (size_t)group, (size_t)g->k[0], (size_t)g->k[1],
                         (size_t)g->s[0], (size_t)g->s[1], (size_t)g->d[0], (size_t)g->d[1], isa};
    return d;
}

/* The packed constant weights, made once per engine at the first run (g: that run's geometry). */
static kiln_status convt_ready(kl_convt_state *z, const kl_nn_geom *g, int64_t group) {
    if (__atomic_load_n(&z->ready, __ATOMIC_ACQUIRE) == 1) return KILN_OK;
    pthread_mutex_lock(&z->mu);
    kiln_status s = KILN_OK;
    if (z->ready == 0) {
        const kl_node *n = z->node;
        const kl_tensor *wt = n->inputs[1]->init, *bt = n->n_inputs > 2 && n->inputs[2] ? n->inputs[2]->init : NULL;
        kl_convt2d_desc d = convt_desc(g, wt->dims[0], wt->dims[1], group, z->isa);
        float *ow = NULL, *ob = NULL;
        const float *W = aligned_data(wt, &ow), *B = bt ? aligned_data(bt, &ob) : NULL;
        s = (W && (!bt || B)) ? kl_convt2d_prepare(&d, W, B, &z->plan) : KILN_ERR_NO_MEMORY;
        if (!s) kl_mapfile_release(wt->data, wt->nbytes);
        kl_free(ow);
        kl_free(ob);
        __atomic_store_n(&z->ready, s ? 2 : 1, __ATOMIC_RELEASE);
    } else if (z->ready == 2) {
        s = kl_errorf(KILN_ERR_INTERNAL, "node '%s': the transposed convolution could not be prepared",
                      kl_node_label(z->node));
    }
    pthread_mutex_unlock(&z->mu);
    return s;
}

static kiln_status convt_run(kl_kctx *c) {
    kl_convt_state *z = (kl_convt_state *)c->state;
    const kl_rt *x = c->in[0], *w = c->n_in > 1 ? c->in[1] : NULL, *b = c->n_in > 2 ? c->in[2] : NULL;
    if (!x || !w || x->dtype != KILN_DTYPE_FLOAT || x->rank != 4 || w->dtype != KILN_DTYPE_FLOAT || w->rank != 4)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "X and W are not float 4-D tensors");
    int64_t group;
    kl_nn_geom g;
    KL_TRY(kl_nn_conv_t_geometry(c, x, w, &group, &g));
    int64_t M = w->dims[1] * group;
    if (b && (b->dtype != KILN_DTYPE_FLOAT || b->count != M))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "bias B has %lld elements, expected %lld", (long long)b->count,
                            (long long)M);
    kl_convt2d_plan *own = NULL;
    const kl_convt2d_plan *p;
    if (convt_const(z->node)) {
        KL_TRY(convt_ready(z, &g, group));
        p = z->plan;
    } else { /* weights from the graph's inputs: packed for this run */
        kl_convt2d_desc d = convt_desc(&g, w->dims[0], w->dims[1], group, z->isa);
        KL_TRY(kl_convt2d_prepare(&d, w->data, b ? b->data : NULL, &own));
        p = own;
    }
    int64_t yd[4] = {x->dims[0], M, g.in[0], g.in[1]};
    kl_rt *y;
    kiln_status s = kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 4, yd, &y);
    if (!s && y->count) {
        kl_convt2d_geom gg = {(size_t)g.out[0], (size_t)g.out[1], (size_t)g.in[0], (size_t)g.in[1], g.pb[0], g.pb[1]};
        size_t ws = kl_convt2d_workspace_size(p, &gg, c->pool ? kl_pool_threads(c->pool) : 1);
        void *work = ws ? kl_kctx_scratch(c, ws) : NULL;
        s = ws && !work ? KILN_ERR_NO_MEMORY : kl_convt2d_run(c->pool, p, (size_t)x->dims[0], &gg, x->data, y->data, work);
    }
    kl_convt2d_destroy(own);
    return s;
}

/* ---- the tables: every algorithm at each ISA level ------------------------------------------ */


/* ---- the blocked layout (src/cpu/x86/nchwc.h): kiln.ConvNchwc, the reorders, MaxPoolNchwc --- */

typedef struct kl_nc_state {
    pthread_mutex_t mu;
    const kl_node *node;
    int ready; /* 1: packed, 2: failed */
    kl_nchwc_desc d;
    kl_nchwc_plan *plan;
} kl_nc_state;

/* Geometry of a kiln.ConvNchwc with constant weights (and bias) and static
 * C, H, W. */
static bool nc_desc(const kl_node *n, kl_nchwc_desc *d, char *why, size_t wsz) {
    memset(d, 0, sizeof *d);
    if (!is_op(n, NULL, "ConvNchwc")) return no(why, wsz, "not kiln.ConvNchwc");
    if (!float_input(n, 0) || !act_ok(n) || (n->n_inputs > 3 && n->inputs[3] && !float_input(n, 3)))
        return no(why, wsz, "not float");
    bool nchw = kl_node_attr_int(n, "in_nchw", 0) != 0;
    int64_t group = kl_node_attr_int(n, "group", 1);
    const kl_shape *xs = &n->inputs[0]->type.shape;
    const kl_tensor *w = const_input(n, 1);
    if (xs->rank != (nchw ? 4 : 5) || !w || w->rank != 4) return no(why, wsz, "not a blocked convolution with constant weights");
    for (int a = 1; a < xs->rank; a++)
        if (xs->dims[a].value <= 0) return no(why, wsz, "C, H or W is not static");
    if (n->n_inputs > 2 && n->inputs[2] && (!const_input(n, 2) || const_input(n, 2)->count != w->dims[0]))
        return no(why, wsz, "bias is not a constant of M values");
    d->C = (size_t)(w->dims[1] * group), d->M = (size_t)w->dims[0];
    d->KH = (size_t)w->dims[2], d->KW = (size_t)w->dims[3];
    d->H = (size_t)xs->dims[2].value, d->W = (size_t)xs->dims[3].value;
    d->depthwise = group > 1;
    d->in_nchw = nchw;
    if (group < 1 || (group > 1 && ((size_t)group != d->M || w->dims[1] != 1)))
        return no(why, wsz, "group is neither 1 nor the channel count");
    const int64_t *v;
    int64_t cnt;
    d->stride_h = d->stride_w = 1;
    if ((cnt = kl_node_attr_ints(n, "strides", &v)) >= 0) {
        if (cnt != 2 || v[0] < 1 || v[1] < 1) return no(why, wsz, "strides");
        d->stride_h = (size_t)v[0], d->stride_w = (size_t)v[1];
    }
    if ((cnt = kl_node_attr_ints(n, "pads", &v)) >= 0) {
        if (cnt != 4 || v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0) return no(why, wsz, "pads");
        d->pad_top = (size_t)v[0], d->pad_left = (size_t)v[1], d->pad_bottom = (size_t)v[2], d->pad_right = (size_t)v[3];
    }
    if (d->pad_top >= d->KH || d->pad_bottom >= d->KH || d->pad_left >= d->KW || d->pad_right >= d->KW)
        return no(why, wsz, "pads of a kernel's size or more");
    if (d->H + d->pad_top + d->pad_bottom < d->KH || d->W + d->pad_left + d->pad_right < d->KW)
        return no(why, wsz, "kernel larger than the padded input");
    d->act = node_act(n);
    return true;
}

static bool nc_conv_applies(const kl_node *n, char *why, size_t wsz) {
    kl_nchwc_desc d;
    return nc_desc(n, &d, why, wsz);
}

static void nc_release(void *p) {
    kl_nc_state *z = p;
    if (!z) return;
    kl_nchwc_destroy(z->plan);
    pthread_mutex_destroy(&z->mu);
    kl_free(z);
}

static kiln_status nc_conv_prepare(const kl_node *n, kl_isa isa, void **state, size_t *workspace) {
    kl_nc_state *z = kl_calloc(1, sizeof *z);
    if (!z) return KILN_ERR_NO_MEMORY;
    pthread_mutex_init(&z->mu, NULL);
    z->node = n;
    if (!nc_desc(n, &z->d, NULL, 0)) {
        nc_release(z);
        return kl_errorf(KILN_ERR_INTERNAL, "node '%s': not a convolution the blocked kernels take", kl_node_label(n));
    }
    z->d.isa = isa;
    *state = z;
    *workspace = 0;
    return KILN_OK;
}

/* Pack the weights once (first run of the layer, any context). */
static kiln_status nc_ready(kl_nc_state *z) {
    if (__atomic_load_n(&z->ready, __ATOMIC_ACQUIRE) == 1) return KILN_OK;
    pthread_mutex_lock(&z->mu);
    kiln_status s = KILN_OK;
    if (z->ready == 0) {
        const kl_node *n = z->node;
        float *ow = NULL, *ob = NULL;
        const float *W = aligned_data(n->inputs[1]->init, &ow);
        const kl_tensor *bt = n->n_inputs > 2 && n->inputs[2] ? n->inputs[2]->init : NULL;
        const float *B = bt ? aligned_data(bt, &ob) : NULL;
        s = (!W || (bt && !B)) ? KILN_ERR_NO_MEMORY : kl_nchwc_prepare(&z->d, W, B, &z->plan);
        kl_free(ow);
        kl_free(ob);
        if (!s) kl_mapfile_release(n->inputs[1]->init->data, n->inputs[1]->init->nbytes);
        __atomic_store_n(&z->ready, s ? 2 : 1, __ATOMIC_RELEASE);
    } else if (z->ready == 2) {
        s = kl_errorf(KILN_ERR_INTERNAL, "node '%s': the blocked convolution could not be prepared", kl_node_label(z->node));
    }
    pthread_mutex_unlock(&z->mu);
    return s;
}

static kiln_status nc_conv_run(kl_kctx *c) {
    kl_nc_state *z = (kl_nc_state *)c->state;
    KL_TRY(nc_ready(z));
    const kl_nchwc_desc *d = &z->d;
    const kl_rt *x = c->in[0], *zres = c->n_in > 3 ? c->in[3] : NULL;
    bool ok = x && x->dtype == KILN_DTYPE_FLOAT && x->rank == (d->in_nchw ? 4 : 5) &&
              (size_t)x->dims[1] == (d->in_nchw ? d->C : kl_nchwc_blocks(d->C)) && (size_t)x->dims[2] == d->H &&
              (size_t)x->dims[3] == d->W && (d->in_nchw || x->dims[4] == KL_NCHWC_B);
    if (!ok) return kl_kctx_fail(c, KILN_ERR_SHAPE, "input does not have the shape the convolution was prepared for");
    size_t OH, OW;
    kl_nchwc_out_hw(z->plan, &OH, &OW);
    int64_t dims[5] = {x->dims[0], (int64_t)kl_nchwc_blocks(d->M), (int64_t)OH, (int64_t)OW, KL_NCHWC_B};
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 5, dims, &y));
    if (zres && (zres->dtype != KILN_DTYPE_FLOAT || zres->count != y->count))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "residual input does not have the output's shape");
    size_t wsb = kl_nchwc_workspace_size(z->plan, (size_t)x->dims[0]);
    void *ws = wsb ? kl_kctx_scratch(c, wsb) : NULL;
    if (wsb && !ws) return KILN_ERR_NO_MEMORY;
    return kl_nchwc_run(c->pool, z->plan, (size_t)x->dims[0], (const float *)x->data,
                        zres ? (const float *)zres->data : NULL, (float *)y->data, ws);
}


/* nchwc.nchw: a blocked convolution run as NCHW (the input reordered, the
 * NCHW kernels' automatic algorithm: Winograd for 3x3 stride 1, ...; the
 * output reordered back), for the layers where the blocked direct kernel
 * loses (timed against it at build). */
typedef struct kl_ncv_state {
    kl_lazy *lz;     /* the NCHW convolution, packed once by conv_ready */
    kl_nchwc_desc d; /* the blocked geometry (in_nchw: no input reorder) */
} kl_ncv_state;

static bool ncv_applies(const kl_node *n, char *why, size_t wsz) {
    kl_nchwc_desc d;
    return nc_desc(n, &d, why, wsz);
}

static void ncv_release(void *p) {
    kl_ncv_state *z = p;
    if (!z) return;
    lazy_release(z->lz);
    kl_free(z);
}

static kiln_status ncv_prepare(const kl_node *n, kl_isa isa, void **state, size_t *workspace) {
    kl_ncv_state *z = kl_calloc(1, sizeof *z);
    if (!z) return KILN_ERR_NO_MEMORY;
    if (!(z->lz = lazy_new(n))) {
        ncv_release(z);
        return KILN_ERR_NO_MEMORY;
    }
    if (!nc_desc(n, &z->d, NULL, 0)) {
        ncv_release(z);
        return kl_errorf(KILN_ERR_INTERNAL, "node '%s': not a convolution the blocked kernels take", kl_node_label(n));
    }
    const kl_nchwc_desc *d = &z->d;
    kl_conv2d_desc *c = &z->lz->d;
    c->N = 1, c->C = d->C, c->H = d->H, c->W = d->W, c->M = d->M, c->KH = d->KH, c->KW = d->KW;
    c->group = d->depthwise ? d->C : 1;
    c->stride_h = d->stride_h, c->stride_w = d->stride_w, c->dil_h = c->dil_w = 1;
    c->pad_top = d->pad_top, c->pad_left = d->pad_left, c->pad_bottom = d->pad_bottom, c->pad_right = d->pad_right;
    c->act = d->act;
    c->algo = z->lz->algo = KL_CONV_AUTO;
    c->isa = z->lz->isa = isa;
    *state = z;
    *workspace = 0;
    return KILN_OK;
}

static kiln_status ncv_run(kl_kctx *c) {
    kl_ncv_state *z = (kl_ncv_state *)c->state;
    int threads = c->pool ? kl_pool_threads(c->pool) : 1;
    KL_TRY(conv_ready(z->lz, KL_MAX(threads, z->lz->d.threads)));
    const kl_nchwc_desc *d = &z->d;
    const kl_rt *x = c->in[0], *zres = c->n_in > 3 ? c->in[3] : NULL;
    bool ok = x && x->dtype == KILN_DTYPE_FLOAT && x->rank == (d->in_nchw ? 4 : 5) &&
              (size_t)x->dims[1] == (d->in_nchw ? d->C : kl_nchwc_blocks(d->C)) && (size_t)x->dims[2] == d->H &&
              (size_t)x->dims[3] == d->W && (d->in_nchw || x->dims[4] == KL_NCHWC_B);
    if (!ok) return kl_kctx_fail(c, KILN_ERR_SHAPE, "input does not have the shape the convolution was prepared for");
    size_t OH, OW, N = (size_t)x->dims[0];
    kl_conv2d_out_hw(z->lz->plan, &OH, &OW);
    int64_t dims[5] = {x->dims[0], (int64_t)kl_nchwc_blocks(d->M), (int64_t)OH, (int64_t)OW, KL_NCHWC_B};
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 5, dims, &y));
    if (zres && (zres->dtype != KILN_DTYPE_FLOAT || zres->count != y->count))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "residual input does not have the output's shape");
    size_t xin = d->in_nchw ? 0 : N * d->C * d->H * d->W, yout = N * d->M * OH * OW;
    size_t ws = kl_conv2d_workspace_size_n(z->lz->plan, threads, N);
    size_t a = (xin + yout * (zres ? 2 : 1)) * sizeof(float) + 64;
    char *work = kl_kctx_scratch(c, a + ws + 64);
    if (!work) return KILN_ERR_NO_MEMORY;
    float *xn = (float *)(((uintptr_t)work + 63) & ~(uintptr_t)63), *yn = xn + xin, *zn = zres ? yn + yout : NULL;
    void *cw = ws ? (void *)(((uintptr_t)(work + a) + 63) & ~(uintptr_t)63) : NULL;
    if (d->in_nchw)
        xn = (float *)x->data; /* read only */
    else
        kl_nchwc_reorder_out(c->pool, N, d->C, d->H * d->W, (const float *)x->data, xn);
    if (zres) kl_nchwc_reorder_out(c->pool, N, d->M, OH * OW, (const float *)zres->data, zn);
    KL_TRY(kl_conv2d_run_n(c->pool, z->lz->plan, N, xn, zn, yn, cw));
    kl_nchwc_reorder_in(c->pool, N, d->M, OH * OW, yn, (float *)y->data);
    return KILN_OK;
}

static bool nc_reorder_applies(const kl_node *n, char *why, size_t wsz) {
    bool in = is_op(n, NULL, "ReorderNchwc");
    if (!in && !is_op(n, NULL, "ReorderNchw")) return no(why, wsz, "not a kiln reorder");
    if (!float_input(n, 0)) return no(why, wsz, "not float");
    return true;
}

static kiln_status nc_reorder_run(kl_kctx *c) {
    const kl_rt *x = c->in[0];
    bool in = is_op(c->node, NULL, "ReorderNchwc");
    int64_t C = in ? (x ? x->dims[1] : 0) : kl_node_attr_int(c->node, "channels", -1);
    if (!x || x->dtype != KILN_DTYPE_FLOAT || x->rank != (in ? 4 : 5) || C < 1 ||
        (!in && (x->dims[4] != KL_NCHWC_B || (size_t)x->dims[1] != kl_nchwc_blocks((size_t)C))))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "the input is not %s", in ? "[N, C, H, W]" : "[N, ceil(channels/16), H, W, 16]");
    kl_rt *y;
    if (in) {
        int64_t dims[5] = {x->dims[0], (int64_t)kl_nchwc_blocks((size_t)C), x->dims[2], x->dims[3], KL_NCHWC_B};
        KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 5, dims, &y));
        kl_nchwc_reorder_in(c->pool, (size_t)x->dims[0], (size_t)C, (size_t)(x->dims[2] * x->dims[3]),
                            (const float *)x->data, (float *)y->data);
    } else {
        int64_t dims[4] = {x->dims[0], C, x->dims[2], x->dims[3]};
        KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 4, dims, &y));
        kl_nchwc_reorder_out(c->pool, (size_t)x->dims[0], (size_t)C, (size_t)(x->dims[2] * x->dims[3]),
                             (const float *)x->data, (float *)y->data);
    }
    return KILN_OK;
}

static bool nc_pool_desc(const kl_node *n, const kl_rt *x, kl_nchwc_pool_desc *d) {
    const int64_t *k, *s, *p;
    int64_t nk = kl_node_attr_ints(n, "kernel_shape", &k), ns = kl_node_attr_ints(n, "strides", &s),
            np = kl_node_attr_ints(n, "pads", &p);
    if (nk != 2 || k[0] < 1 || k[1] < 1 || (ns >= 0 && (ns != 2 || s[0] < 1 || s[1] < 1)) ||
        (np >= 0 && (np != 4 || p[0] < 0 || p[1] < 0 || p[2] < 0 || p[3] < 0)))
        return false;
    memset(d, 0, sizeof *d);
    d->KH = (size_t)k[0], d->KW = (size_t)k[1];
    d->stride_h = ns == 2 ? (size_t)s[0] : 1, d->stride_w = ns == 2 ? (size_t)s[1] : 1;
    size_t pb = np == 4 ? (size_t)p[2] : 0, pr = np == 4 ? (size_t)p[3] : 0;
    d->pad_top = np == 4 ? (size_t)p[0] : 0, d->pad_left = np == 4 ? (size_t)p[1] : 0;
    if (!x) return true;
    d->C = (size_t)x->dims[1] * KL_NCHWC_B, d->H = (size_t)x->dims[2], d->W = (size_t)x->dims[3];
    if (d->H + d->pad_top + pb < d->KH || d->W + d->pad_left + pr < d->KW) return false;
    d->OH = (d->H + d->pad_top + pb - d->KH) / d->stride_h + 1;
    d->OW = (d->W + d->pad_left + pr - d->KW) / d->stride_w + 1;
    return true;
}

static bool nc_maxpool_applies(const kl_node *n, char *why, size_t wsz) {
    kl_nchwc_pool_desc d;
    if (!is_op(n, NULL, "MaxPoolNchwc")) return no(why, wsz, "not kiln.MaxPoolNchwc");
    if (!float_input(n, 0) || !nc_pool_desc(n, NULL, &d)) return no(why, wsz, "not float, or bad attributes");
    return true;
}

static kiln_status nc_maxpool_run(kl_kctx *c) {
    const kl_rt *x = c->in[0];
    kl_nchwc_pool_desc d;
    if (!x || x->dtype != KILN_DTYPE_FLOAT || x->rank != 5 || x->dims[4] != KL_NCHWC_B || !nc_pool_desc(c->node, x, &d))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "the input is not [N, Cb, H, W, 16] or the window does not fit it");
    int64_t dims[5] = {x->dims[0], x->dims[1], (int64_t)d.OH, (int64_t)d.OW, KL_NCHWC_B};
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, KILN_DTYPE_FLOAT, 5, dims, &y));
    kl_nchwc_maxpool(c->pool, &d, (size_t)x->dims[0], (const float *)x->data, (float *)y->data);
    return KILN_OK;
}

/* ---- the tactic tables, one per ISA level ---------------------------------------------- */

#define KL_X86_LEVEL(lv, LV, FEAT)                                                                              \
    static kiln_status conv_wino_##lv(const kl_node *n, void **s, size_t *w) {                                 \
        return conv_prepare_algo(n, KL_CONV_WINOGRAD, LV, s, w);                                                \
    }                                                                                                           \
    static kiln_status conv_wino4t_##lv(const kl_node *n, void **s, size_t *w) {                               \
        return conv_prepare_algo(n, KL_CONV_WINOGRAD4T, LV, s, w);                                              \
    }                                                                                                           \
    static kiln_status conv_wino2_##lv(const kl_node *n, void **s, size_t *w) {                                \
        return conv_prepare_algo(n, KL_CONV_WINOGRAD2, LV, s, w);                                               \
    }                                                                                                           \
    static kiln_status conv_dw_##lv(const kl_node *n, void **s, size_t *w) {                                   \
        return conv_prepare_algo(n, KL_CONV_DEPTHWISE, LV, s, w);                                               \
    }                                                                                                           \
    static kiln_status conv_igemm_##lv(const kl_node *n, void **s, size_t *w) {                                \
        return conv_prepare_algo(n, KL_CONV_IGEMM, LV, s, w);                                                   \
    }                                                                                                           \
    static kiln_status conv_igemmk_##lv(const kl_node *n, void **s, size_t *w) {                               \
        return conv_prepare_algo(n, KL_CONV_IGEMMK, LV, s, w);                                                  \
    }                                                                                                           \
    static kiln_status conv_direct_##lv(const kl_node *n, void **s, size_t *w) {                               \
        return conv_prepare_algo(n, KL_CONV_DIRECT, LV, s, w);                                                  \
    }                                                                                                           \
    static kiln_status conv_1x1_##lv(const kl_node *n, void **s, size_t *w) {                                  \
        return conv_prepare_algo(n, KL_CONV_GEMM1X1, LV, s, w);                                                 \
    }                                                                                                           \
    static kiln_status conv_im2col_##lv(const kl_node *n, void **s, size_t *w) {                               \
        return conv_prepare_algo(n, KL_CONV_IM2COL, LV, s, w);                                                  \
    }                                                                                                           \
    static kiln_status conv_im2row_##lv(const kl_node *n, void **s, size_t *w) {                               \
        return conv_prepare_algo(n, KL_CONV_IM2ROW, LV, s, w);                                                  \
    }                                                                                                           \
    static kiln_status gemm_##lv(const kl_node *n, void **s, size_t *w) { return gemm_prepare(n, LV, s, w); } \
    static kiln_status conv_mv_##lv(const kl_node *n, void **s, size_t *w) { return conv_mv_prepare(n, LV, s, w); } \
    static kiln_status gemm_mv_##lv(const kl_node *n, void **s, size_t *w) { return gemm_mv_prepare(n, LV, s, w); } \
    static bool cdw_applies_##lv(const kl_node *n, char *w, size_t s) { return cdw_applies_isa(n, LV, w, s); } \
    static bool conv_igemm_applies_##lv(const kl_node *n, char *w, size_t s) { return conv_igemm_applies(n, LV, w, s); } \
    static kiln_status cdw_##lv(const kl_node *n, void **s, size_t *w) { return cdw_prepare(n, LV, s, w); }    \
    static kiln_status scaled_##lv(const kl_node *n, void **s, size_t *w) { return scaled_prepare(n, LV, s, w); } \
    static kiln_status convt_##lv(const kl_node *n, void **s, size_t *w) { return convt_prepare(n, LV, s, w); } \
    static kiln_status nc_conv_##lv(const kl_node *n, void **s, size_t *w) { return nc_conv_prepare(n, LV, s, w); } \
    static kiln_status ncv_##lv(const kl_node *n, void **s, size_t *w) { return ncv_prepare(n, LV, s, w); } \
    static const kl_tactic x86_##lv[] = {                                                                       \
        {"conv.expand_dw." #lv, FEAT, 30, cdw_applies_##lv, cdw_##lv, cdw_release, cdw_run, KL_TACTIC_WRITES_ALL},                    \
        {"conv.scaled1x1." #lv, FEAT, 30, scaled_applies, scaled_##lv, lazy_release, scaled_run, KL_TACTIC_WRITES_ALL, conv_export, conv_adopt},             \
        {"conv.matvec." #lv, FEAT, 35, conv_matvec_applies, conv_mv_##lv, mv_release, conv_mv_run, KL_TACTIC_WRITES_ALL},          \
        {"conv.winograd." #lv, FEAT, 30, conv_wino_applies, conv_wino_##lv, lazy_release, conv_run, KL_TACTIC_WRITES_ALL, conv_export, conv_adopt},            \
        {"conv.winograd4t." #lv, FEAT, 31, conv_wino4t_applies, conv_wino4t_##lv, lazy_release, conv_run, KL_TACTIC_WRITES_ALL, conv_export, conv_adopt},       \
        {"conv.winograd2." #lv, FEAT, 30, conv_wino2_applies, conv_wino2_##lv, lazy_release, conv_run, KL_TACTIC_WRITES_ALL, conv_export, conv_adopt},         \
        {"conv.igemm." #lv, FEAT, 27, conv_igemm_applies_##lv, conv_igemm_##lv, lazy_release, conv_run, KL_TACTIC_WRITES_ALL, conv_export, conv_adopt},            \
        {"conv.igemmk." #lv, FEAT, 21, conv_igemmk_applies, conv_igemmk_##lv, lazy_release, conv_run, KL_TACTIC_WRITES_ALL, conv_export, conv_adopt},          \
        {"conv.direct." #lv, FEAT, 26, conv_direct_applies, conv_direct_##lv, lazy_release, conv_run, KL_TACTIC_WRITES_ALL, conv_export, conv_adopt},          \
        {"conv.depthwise." #lv, FEAT, 25, conv_dw_applies, conv_dw_##lv, lazy_release, conv_run, KL_TACTIC_WRITES_ALL, conv_export, conv_adopt},               \
        {"conv.gemm1x1." #lv, FEAT, 20, conv_gemm1x1_applies, conv_1x1_##lv, lazy_release, conv_run, KL_TACTIC_WRITES_ALL, conv_export, conv_adopt},           \
        {"conv.im2row." #lv, FEAT, 22, conv_im2row_applies, conv_im2row_##lv, lazy_release, conv_run, KL_TACTIC_WRITES_ALL, conv_export, conv_adopt},          \
        {"conv.im2col." #lv, FEAT, 10, conv_im2col_applies, conv_im2col_##lv, lazy_release, conv_run, KL_TACTIC_WRITES_ALL, conv_export, conv_adopt},          \
        {"gemm.packed." #lv, FEAT, 20, gemm_applies, gemm_##lv, lazy_release, gemm_run, KL_TACTIC_WRITES_ALL, gemm_export, gemm_adopt}, \
        {"gemm.matvec." #lv, FEAT, 19, gemm_matvec_applies, gemm_mv_##lv, gmv_release, gemm_mv_run, KL_TACTIC_WRITES_ALL},            \
        {"convt.gemm." #lv, FEAT, 20, convt_applies, convt_##lv, convt_release, convt_run, KL_TACTIC_WRITES_ALL},                    \
        {"nchwc.conv." #lv, FEAT, 30, nc_conv_applies, nc_conv_##lv, nc_release, nc_conv_run, KL_TACTIC_WRITES_ALL},                 \
        {"nchwc.nchw." #lv, FEAT, 29, ncv_applies, ncv_##lv, ncv_release, ncv_run, KL_TACTIC_WRITES_ALL},                         \
        {"nchwc.reorder." #lv, FEAT, 30, nc_reorder_applies, NULL, NULL, nc_reorder_run, KL_TACTIC_WRITES_ALL},                      \
        {"nchwc.maxpool." #lv, FEAT, 30, nc_maxpool_applies, NULL, NULL, nc_maxpool_run, KL_TACTIC_WRITES_ALL},                      \
    };

KL_X86_LEVEL(generic, KL_ISA_REF, 0)
KL_X86_LEVEL(avx2, KL_ISA_AVX2, KL_FEAT_AVX2)
KL_X86_LEVEL(avx512, KL_ISA_AVX512, KL_FEAT_AVX2 | KL_FEAT_AVX512)

/* Families whose kernels of the level below are offered too at the
 * AVX-512 level, after the level's own (so an untimed build, which takes
 * the first candidate, keeps the level's kernel): a timed build measures
 * both.  Depthwise: on a Zen 4 (512-bit FMAs split in two halves) the AVX2
 * column kernels beat the AVX-512 row kernels on many maps (kernel bench,
 * 1 thread: 3x3 144ch 56x56 66.8 against 53.9 GFLOP/s, 5x5 240ch 28x28
 * 60.9 against 46.3), while the AVX-512 ones win at 112x112 and on Intel
 * cores; which one wins is a property of the machine and the layer. */
static const char *const x86_lower_level_families[] = {"conv.depthwise."};

static bool x86_offered_lower(const char *name) {
    for (size_t f = 0; f < KL_ARRAY_LEN(x86_lower_level_families); f++)
        if (strncmp(name, x86_lower_level_families[f], strlen(x86_lower_level_families[f])) == 0) return true;
    return false;
}

/* Candidates of node n: the algorithms that fit it, at the active ISA
 * level (KILN_ISA lowers it), then the level below's kernels of
 * x86_lower_level_families. */
size_t kl_cpu_x86_tactics(const kl_node *n, const kl_tactic **out, size_t max) {
    kl_isa lv = kl_isa_active();
    const kl_tactic *t = lv >= KL_ISA_AVX512 ? x86_avx512 : lv >= KL_ISA_AVX2 ? x86_avx2 : x86_generic;
    size_t k = 0;
    for (size_t i = 0; i < KL_ARRAY_LEN(x86_generic) && k < max; i++)
        if (t[i].applies(n, NULL, 0)) out[k++] = &t[i];
    if (lv >= KL_ISA_AVX512)
        for (size_t i = 0; i < KL_ARRAY_LEN(x86_avx2) && k < max; i++)
            if (x86_offered_lower(x86_avx2[i].name) && x86_avx2[i].applies(n, NULL, 0)) out[k++] = &x86_avx2[i];
    if (k < max) k += kl_cpu_vec_tactics(n, out + k, max - k);
    if (k < max) k += kl_cpu_attn_tactics(n, out + k, max - k);
    return k;
}

/* Every x86 tactic by name, at any level (engines name the level they were
 * built for; the loader checks the CPU has it). */
const kl_tactic *kl_cpu_x86_tactic_named(const kl_node *n, const char *name) {
    const kl_tactic *const tables[] = {x86_generic, x86_avx2, x86_avx512};
    for (size_t t = 0; t < 3; t++)
        for (size_t i = 0; i < KL_ARRAY_LEN(x86_generic); i++)
            if (strcmp(tables[t][i].name, name) == 0) return tables[t][i].applies(n, NULL, 0) ? &tables[t][i] : NULL;
    const kl_tactic *v = kl_cpu_vec_tactic_named(n, name);
    return v ? v : kl_cpu_attn_tactic_named(n, name);
}
