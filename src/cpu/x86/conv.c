/*
 * conv.c — the ISA-free convolution driver: geometry checks, algorithm
 * choice, weight packing at prepare, and the run loops (work items of
 * (image, group, pixel tile, channel chunk) spread over the pool).  The
 * GEMM-based algorithms pack a tile of output pixels, KS rows of the
 * im2col matrix at a time, straight into the packed-B panel format, so the
 * workspace per thread is KS * NT floats whatever the layer.
 */
#include "cpu/x86/conv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "cpu/x86/gemm.h"
#include "cpu/x86/kernels.h"

#define MR KL_SGEMM_MR
#define NP KL_SGEMM_NP
#define KS 320 /* most im2col rows per slice (= the GEMM's KC); slices are evened out */
#define NT 256 /* output pixels per tile (multiple of 16) */
#define IM2ROW_ROWS 256 /* im2row: most pixel rows of a product that stacks images */
/* Winograd: floats added to the stride between the transformed planes of
 * two products (one cache line).  Plain strides were multiples of 4 KiB
 * (64 channels x 208 tiles, 128 x 64, 256 x 16, ...), so the transforms'
 * 36 loads or stores per vector of tiles all fell in one L1 set. */
#define WSKEW 16
/* conv.depthwise runs 5x5 layers channel-interleaved on maps at most this wide (AVX-512) */
#define KL_DWCB_MAX_OW 16

struct kl_conv2d_plan {
    kl_conv2d_desc d; /* normalized: no zero group/stride/dilation */
    size_t OH, OW;
    size_t Cg, Mg, Kg; /* per group: in channels, out channels, C*KH*KW */
    kl_conv_algo algo;
    kl_isa isa;
    float *wpack; /* GEMM: per group round_up(Mg,MR)*Kg packed A; depthwise: [M][KH*KW] */
    size_t wpack_floats;
    size_t a_ps;  /* packed A panel stride (Kg*MR) */
    float *bias;  /* [M] or NULL */
    size_t nt;    /* pixel tile */
    size_t ni;    /* im2row: most images stacked in one product (1x1 on small maps; else 1) */
    size_t TW, TH, tb; /* winograd: tiles per row / column, tiles per block (multiple of 16) */
    size_t wm, wa, nxi; /* winograd: output tile (4 or 2), input tile (wm + 2), wa*wa products */
    size_t ik_rows, ik_kc; /* igemmk: output rows per band, taps per K block */
    float *wcb; /* depthwise, channel-interleaved (dw_cb_pays): [C/16][KH*KW][16] weights, then [C/16*16] bias */
    size_t wcb_floats;
    bool borrowed; /* wpack, bias and wcb point into an engine's mapping (kl_conv2d_adopt): not freed */
};

static bool is_wino(kl_conv_algo a) { return a == KL_CONV_WINOGRAD || a == KL_CONV_WINOGRAD2 || a == KL_CONV_WINOGRAD4T; }

/* F(4x4, 3x3) weight transform G g G^T (Lavin & Gray), in double. */
static const double WG[6][3] = {{1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
/* F(2x2, 3x3): G (Lavin & Gray). */
static const double WG2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

const char *kl_conv_algo_name(kl_conv_algo algo) {
    switch (algo) {
    case KL_CONV_AUTO: return "conv.auto";
    case KL_CONV_GEMM1X1: return "conv.gemm1x1";
    case KL_CONV_IM2COL: return "conv.im2col";
    case KL_CONV_DEPTHWISE: return "conv.depthwise";
    case KL_CONV_WINOGRAD: return "conv.winograd";
    case KL_CONV_IM2ROW: return "conv.im2row";
    case KL_CONV_WINOGRAD2: return "conv.winograd2";
    case KL_CONV_WINOGRAD4T: return "conv.winograd4t";
    case KL_CONV_DIRECT: return "conv.direct";
    case KL_CONV_IGEMM: return "conv.igemm";
    case KL_CONV_IGEMMK: return "conv.igemmk";
    default: return "conv.?";
    }
}

bool kl_conv_algo_parse(const char *name, kl_conv_algo *out) {
    for (int a = 0; a < KL_CONV_ALGO_COUNT; a++)
        if (strcmp(name, kl_conv_algo_name((kl_conv_algo)a)) == 0 ||
            strcmp(name, kl_conv_algo_name((kl_conv_algo)a) + 5) == 0) {
            *out = (kl_conv_algo)a;
            return true;
        }
    return false;
}

/* Copies d with defaults filled in (0 -> 1 for group, strides, dilations). */
static kl_conv2d_desc normalize(const kl_conv2d_desc *d) {
    kl_conv2d_desc n = *d;
    if (!n.group) n.group = 1;
    if (!n.stride_h) n.stride_h = 1;
    if (!n.stride_w) n.stride_w = 1;
    if (!n.dil_h) n.dil_h = 1;
    if (!n.dil_w) n.dil_w = 1;
    if (n.threads < 1) n.threads = 1;
    return n;
}

/* Validates the geometry and computes OH/OW. */
static kiln_status check_desc(const kl_conv2d_desc *d, size_t *OH, size_t *OW) {
    if (!d->N || !d->C || !d->H || !d->W || !d->M || !d->KH || !d->KW)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "conv2d: zero dimension (N=%zu C=%zu H=%zu W=%zu M=%zu k=%zux%zu)",
                         d->N, d->C, d->H, d->W, d->M, d->KH, d->KW);
    if (d->C % d->group || d->M % d->group)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "conv2d: group %zu does not divide C=%zu and M=%zu", d->group,
                         d->C, d->M);
    size_t eh = (d->KH - 1) * d->dil_h + 1, ew = (d->KW - 1) * d->dil_w + 1;
    size_t ph = d->H + d->pad_top + d->pad_bottom, pw = d->W + d->pad_left + d->pad_right;
    if (ph < eh || pw < ew)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "conv2d: kernel extent %zux%zu larger than padded input %zux%zu",
                         eh, ew, ph, pw);
    *OH = (ph - eh) / d->stride_h + 1;
    *OW = (pw - ew) / d->stride_w + 1;
    if ((unsigned)d->act.kind >= KL_ACT_COUNT)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "conv2d: activation %d unknown", (int)d->act.kind);
    return KILN_OK;
}

bool kl_conv2d_supports(const kl_conv2d_desc *din, kl_conv_algo algo) {
    kl_conv2d_desc d = normalize(din);
    size_t OH, OW;
    if (check_desc(&d, &OH, &OW) != KILN_OK) {
        kl_error_clear();
        return false;
    }
    switch (algo) {
    case KL_CONV_AUTO:
    case KL_CONV_IM2COL:
    case KL_CONV_IM2ROW: return true;
    case KL_CONV_GEMM1X1:
        return d.KH == 1 && d.KW == 1 && d.stride_h == 1 && d.stride_w == 1 && !d.pad_top && !d.pad_left &&
               !d.pad_bottom && !d.pad_right;
    case KL_CONV_DEPTHWISE: return d.group == d.C && d.M == d.C;
    case KL_CONV_DIRECT:
        return d.group == 1 && d.C <= KL_CONV_DIRECT_MAX_C && d.KW <= 7 && d.KH <= 7 && d.stride_h == d.stride_w &&
               (d.stride_w == 1 || d.stride_w == 2) && d.dil_h == 1 && d.dil_w == 1;
    case KL_CONV_IGEMM:
        return d.group == 1 && d.C <= KL_CONV_IGEMM_MAX_C && d.C * d.KH * d.KW <= KL_CONV_IGEMM_MAX_K &&
               d.dil_h == 1 && d.dil_w == 1 && d.stride_h <= 8 && d.stride_w <= 8 && d.KH <= 16 && d.KW <= 16;
    case KL_CONV_IGEMMK: {
        /* the band's offsets are int32 */
        size_t rows = (KL_MIN(OH, (size_t)64) - 1) * d.stride_h + d.KH, wpb = (OW - 1) * d.stride_w + d.KW;
        return d.group == 1 && d.dil_h == 1 && d.dil_w == 1 && d.KH <= 16 && d.KW <= 16 && d.stride_h <= 8 &&
               d.stride_w <= 8 && (double)d.C * (double)rows * (double)wpb < 2147483647.0;
    }
    case KL_CONV_WINOGRAD:
    case KL_CONV_WINOGRAD2:
    case KL_CONV_WINOGRAD4T:
        return d.KH == 3 && d.KW == 3 && d.stride_h == 1 && d.stride_w == 1 && d.dil_h == 1 && d.dil_w == 1;
    default: return false;
    }
}

bool kl_conv2d_winograd_pays(const kl_conv2d_desc *din) {
    kl_conv2d_desc d = normalize(din);
    if (!kl_conv2d_supports(&d, KL_CONV_WINOGRAD) || d.C / d.group < 8 || d.M / d.group < 8) return false;
    /* measured: 2.6x im2col at 56x56 and 28x28, 3x at 14x14 (16 tiles),
     * 6x slower at 7x7 batch 1 (4 tiles) */
    size_t OH = d.H + d.pad_top + d.pad_bottom - 2, OW = d.W + d.pad_left + d.pad_right - 2;
    return KL_MAX(d.N, (size_t)1) * ((OH + 3) / 4) * ((OW + 3) / 4) >= 16;
}

bool kl_conv2d_winograd2_pays(const kl_conv2d_desc *din) {
    kl_conv2d_desc d = normalize(din);
    if (!kl_conv2d_supports(&d, KL_CONV_WINOGRAD2) || d.C / d.group < 32 || d.M / d.group < 32) return false;
    /* AVX2's 6x16 tiles lose: 3x3 512->512 7x7 3.08 ms vs im2row 2.63 */
    if (kl_isa_resolve(d.isa) < KL_ISA_AVX512) return false;
    if (kl_conv2d_winograd_pays(&d)) return false;
    size_t OH = d.H + d.pad_top + d.pad_bottom - 2, OW = d.W + d.pad_left + d.pad_right - 2;
    return KL_MAX(d.N, (size_t)1) * ((OH + 1) / 2) * ((OW + 1) / 2) >= 16;
}

bool kl_conv2d_winograd4t_pays(const kl_conv2d_desc *din) {
    kl_conv2d_desc d = normalize(din);
    if (!kl_conv2d_winograd_pays(&d) || d.C / d.group < 32 || d.M / d.group < 32) return false;
    /* AVX2's 6x16 tiles lose: 3x3 128->128 28x28 1.85 ms vs conv.winograd 1.04 */
    if (kl_isa_resolve(d.isa) < KL_ISA_AVX512) return false;
    size_t OH = d.H + d.pad_top + d.pad_bottom - 2, OW = d.W + d.pad_left + d.pad_right - 2;
    size_t T = ((OH + 3) / 4) * ((OW + 3) / 4);
    return T >= 32 && T < 128;
}

bool kl_conv2d_im2row_pays(const kl_conv2d_desc *din) {
    kl_conv2d_desc d = normalize(din);
    size_t OH, OW;
    if (check_desc(&d, &OH, &OW) != KILN_OK) {
        kl_error_clear();
        return false;
    }
    size_t ohw = OH * OW, mg = d.M / d.group;
    if (d.group == d.C && d.M == d.C) return false;
    /* Strided layers at any map size (measured on Zen 5, AVX-512, ms im2col
     * -> im2row; im2col's stride-2 packing is two loads and a permute per
     * 16 pixels with rows split across panels, im2row copies rows of taps):
     * - 1x1/2 downsamples of 512+ channels: 1 thread cold, ResNet-50 512ch
     *   56x56 1.39 -> 1.40, 1024ch 28x28 1.37 -> 1.17, 2048ch 14x14 1.40 ->
     *   1.18; batch 1 on 2 threads 0.65 -> 0.67, 0.72 -> 0.60, 0.76 -> 0.61;
     *   batch 8 on 2 threads 6.67 -> 5.29, 5.60 -> 5.13, 6.41 -> 4.66.
     *   AVX2 from 1024 channels: 512 lose on 2 threads (1.13 -> 1.27 ms;
     *   1024 1.25 -> 1.17, 2048 1.42 -> 1.25; 1 thread cold 2.35 -> 2.24,
     *   2.09 -> 2.09, 2.58 -> 2.27).
     * - k x k of 128+ channels when every thread has an image (batch 8 on 2
     *   threads: 3x3/2 128ch 56x56 8.46 -> 7.74, 256ch 28x28 6.72 -> 6.59,
     *   YOLOv8n 64->128 80x80 8.00 -> 7.51).  At batch 1 each thread packs
     *   all the pixels for its chunk of channels and im2col splits pixels:
     *   on 2 threads 0.91 -> 1.17, 0.88 -> 0.97, 0.87 -> 1.19; on 1 even
     *   (1.73 -> 1.70, 1.49 -> 1.46).  Threads 0 (the tactics'
     *   applicability, batch unknown) count as batch 1. */
    bool strided = d.stride_h > 1 || d.stride_w > 1;
    bool img_per_thread = din->threads > 1 && d.N >= (size_t)din->threads;
    if (strided && d.C / d.group >= 16 && ohw * (KS + round_up(mg, NP)) * sizeof(float) <= ((size_t)4 << 20) &&
        ((d.KH * d.KW == 1 && mg >= (kl_isa_resolve(d.isa) >= KL_ISA_AVX512 ? 512u : 1024u)) ||
         (img_per_thread && mg >= 128))) /* workspace a thread: all pixels */
        return true;
    if (ohw > 64 || mg < 16) return false;
    /* fraction of useful lanes: im2col pads pixels to 16 and channels to 6,
     * im2row pixels to 6 and channels to 16 */
    double col = (double)ohw / (double)round_up(ohw, NP) * (double)mg / (double)round_up(mg, MR);
    double row = (double)ohw / (double)round_up(ohw, MR) * (double)mg / (double)round_up(mg, NP);
    return row > 1.08 * col;
}

bool kl_conv2d_igemm_pays(const kl_conv2d_desc *din) {
    kl_conv2d_desc d = normalize(din);
    if (!kl_conv2d_supports(&d, KL_CONV_IGEMM) || d.C > KL_CONV_DIRECT_MAX_C || d.KH * d.KW < 2) return false;
    /* stems, 1 thread, caches evicted (kiln-bench-kernels --cold), ms for
     * igemm / direct / im2col: 7x7/2 3->64 224x224 AVX-512 2.55 / 2.84 /
     * 2.78, AVX2 3.34 / 4.44 / 3.70; 3x3/2 3->16 640x640 AVX-512 1.80 /
     * 1.96 / 2.47, AVX2 2.74 / 2.88 / 4.05; but 3x3/2 3->32 224x224
     * AVX-512 0.49 / 0.49 / 0.47, AVX2 0.84 / 0.98 / 0.64 (two vectors of
     * channels: fewer taps per store).  AVX2 at 32 channels (four vectors,
     * the full tile) measured again on 2026-12-05 (after the hE kernels),
     * 3x3/2 3->32 224x224 warm / cold: igemm 0.360 / 0.421, direct 0.428 /
     * 0.504, im2col 0.525 / 0.582; AVX-512 direct stays ahead warm (0.271
     * vs 0.303) */
    if (d.M % 32 == 0 && kl_isa_resolve(d.isa) == KL_ISA_AVX2) return true;
    return d.M % 64 == 0 || d.M <= 16;
}

/* True when conv.depthwise runs d channel-interleaved (kl_dwcb_args): the
 * vector levels' 3x3/5x5 stride-1/2 geometries on small maps, where vectors
 * along an output row leave lanes idle (7 of 16 at 7x7). */
static bool dw_cb_pays(const kl_conv2d_desc *d, kl_isa isa, size_t OW) {
    kl_isa lv = kl_isa_resolve(isa);
    if (lv != KL_ISA_AVX2 && lv != KL_ISA_AVX512) return false;
    if (!kl_x86_dw_direct(lv, d->KH, d->KW, d->stride_h, d->stride_w, d->dil_h, d->dil_w, d->pad_top, d->pad_left,
                          d->pad_bottom, d->pad_right))
        return false;
    /* pads up to the kernel extent: the padded buffer holds them */
    if (d->pad_top >= d->KH || d->pad_left >= d->KW) return false;
    /* AVX2: 5x5 on 7x7-sized maps only; the column form (dwc_plane) beats
     * it for 3x3 there (ReLU, 1 thread: 960ch 7x7 0.039 -> 0.031 ms, 576ch
     * 14x14/2 0.038 -> 0.026, 1152ch 7x7 0.043 -> 0.040; SiLU even) and at
     * 14 wide (384ch 3x3 0.036 vs 0.057), not for 5x5 at 7x7 (1152ch ReLU
     * 0.060 vs 0.069, SiLU 0.082 vs 0.088).  AVX-512: 7x7-sized maps for
     * 3x3 (at 14 wide faster alone, 384ch ReLU 0.058-0.061 -> 0.045-0.047
     * ms, but slower inside MobileNet-V2: interleaved profiles, 384ch
     * 0.041-0.045 -> 0.048-0.060, 576ch 0.061-0.077 -> 0.075-0.096) */
    if (lv == KL_ISA_AVX2) return d->KH == 5 && OW <= 8;
    if (d->KH == 3) return OW <= 8;
    /* 5x5 stride 2 was also taken up to 28 wide (144ch 56x56/2: 0.209 ->
     * 0.18 ms) until the row form loaded stride-2 rows once per row
     * (dw_row_s2): now 0.166 (channel-interleaved) vs 0.138 ms, 6
     * interleaved rounds, 1 thread */
    return OW <= KL_DWCB_MAX_OW;
}

/* The shape rule of the AUTO choice. */
static kl_conv_algo choose(const kl_conv2d_desc *d) {
    if (kl_conv2d_supports(d, KL_CONV_DEPTHWISE) && d->C > 1) return KL_CONV_DEPTHWISE;
    if (kl_conv2d_igemm_pays(d)) return KL_CONV_IGEMM;
    if (kl_conv2d_supports(d, KL_CONV_DIRECT) && d->KH * d->KW > 1) return KL_CONV_DIRECT;
    if (kl_conv2d_winograd4t_pays(d)) return KL_CONV_WINOGRAD4T;
    if (kl_conv2d_winograd_pays(d)) return KL_CONV_WINOGRAD;
    if (kl_conv2d_winograd2_pays(d)) return KL_CONV_WINOGRAD2;
    if (kl_conv2d_im2row_pays(d)) return KL_CONV_IM2ROW;
    if (kl_conv2d_supports(d, KL_CONV_GEMM1X1)) return KL_CONV_GEMM1X1;
    return KL_CONV_IM2COL;
}

/* conv.igemmk's geometry: bands of ik_rows output rows (about IK_PIXELS
 * pixels, evened out over the map), K blocks of ik_kc taps; the band's
 * input rows are copied zero-padded, ik_wpb floats wide. */
#define IK_PIXELS 192
#define IK_KC 144
#define IK_MG 64 /* output channels per work item */
static size_t env_size(const char *name, size_t dflt) {
    const char *e = getenv(name);
    long v = e ? atol(e) : 0;
    return v > 0 ? (size_t)v : dflt;
}
static void ik_geometry(kl_conv2d_plan *p) {
    size_t r = KL_MIN(p->OH, KL_MAX((size_t)1, (env_size("KILN_IGK_PIXELS", IK_PIXELS) + p->OW - 1) / p->OW));
    r = KL_MIN(r, (size_t)64);
    size_t bands = (p->OH + r - 1) / r;
    p->ik_rows = (p->OH + bands - 1) / bands;
    p->ik_kc = env_size("KILN_IGK_KC", IK_KC);
}
static size_t ik_rows_in(const kl_conv2d_plan *p) { return (p->ik_rows - 1) * p->d.stride_h + p->d.KH; }
static size_t ik_wpb(const kl_conv2d_plan *p) { return (p->OW - 1) * p->d.stride_w + p->d.KW; }
/* floats per thread: the band (all channels), tap offsets, pixel origins (int32), C^T of a channel group */
static size_t ik_ws_floats(const kl_conv2d_plan *p) {
    size_t P = round_up(p->ik_rows * p->OW, KL_IGEMM_ROW_PAD);
    return round_up(p->d.C * ik_rows_in(p) * ik_wpb(p), 16) + round_up(p->d.C * p->d.KH * p->d.KW, 16) +
           round_up(P, 16) + P * IK_MG;
}

static kiln_status conv_prepare(const kl_conv2d_desc *din, const float *W, const float *bias, kl_conv2d_plan **out) {
    *out = NULL;
    if (!din) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "conv2d: NULL descriptor");
    kl_conv2d_desc d = normalize(din);
    size_t OH, OW;
    KL_TRY(check_desc(&d, &OH, &OW));
    kl_conv_algo algo = d.algo == KL_CONV_AUTO ? choose(&d) : d.algo;
    if ((unsigned)algo >= KL_CONV_ALGO_COUNT)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "conv2d: algorithm %d unknown", (int)algo);
    if (!kl_conv2d_supports(&d, algo))
        return kl_errorf(KILN_ERR_UNSUPPORTED, "conv2d: %s cannot run C=%zu M=%zu k=%zux%zu s=%zux%zu group=%zu",
                         kl_conv_algo_name(algo), d.C, d.M, d.KH, d.KW, d.stride_h, d.stride_w, d.group);
    kl_conv2d_plan *p = kl_calloc(1, sizeof *p);
    if (!p) return KILN_ERR_NO_MEMORY;
    p->d = d;
    p->d.algo = algo;
    p->OH = OH, p->OW = OW;
    p->Cg = d.C / d.group, p->Mg = d.M / d.group, p->Kg = p->Cg * d.KH * d.KW;
    p->algo = algo;
    p->isa = kl_isa_resolve(d.isa);
    p->nt = KL_MIN((size_t)NT, round_up(OH * OW, NP));
    /* im2row on small maps stacks the pixels of up to ni images of a run
     * into one product, so the weights stream once per group of images,
     * not once per image (ResNet-50's 7x7 layers at batch 8 read 4 MiB of
     * weights per image) */
    size_t khw = d.KH * d.KW;
    /* (1x1 only: 3x3 512->512 on 7x7 maps at batch 8 ran 5-10% slower stacked) */
    p->ni = algo == KL_CONV_IM2ROW && khw == 1 ? KL_MAX((size_t)1, IM2ROW_ROWS / (OH * OW)) : 1;
    if (algo == KL_CONV_DIRECT) {
        /* [M_pad/MB][C*KH*KW][MB], then the bias [M_pad]; padded channels zero */
        size_t mp = round_up(d.M, KL_DIRECT_MB), k = d.C * khw;
        p->wpack_floats = mp * k + mp;
        if (W) {
            p->wpack = kl_calloc(p->wpack_floats, sizeof(float));
            if (!p->wpack) goto fail;
            for (size_t m = 0; m < d.M; m++)
                for (size_t i = 0; i < k; i++)
                    p->wpack[(m / KL_DIRECT_MB) * k * KL_DIRECT_MB + i * KL_DIRECT_MB + m % KL_DIRECT_MB] = W[m * k + i];
            if (bias) memcpy(p->wpack + mp * k, bias, d.M * sizeof(float));
        }
    } else if (algo == KL_CONV_IGEMM || algo == KL_CONV_IGEMMK) {
        if (algo == KL_CONV_IGEMMK) ik_geometry(p);
        /* B = W^T (K x M) in 16-column panels (panel stride K*16), then the bias padded to the panels */
        size_t mp = round_up(d.M, NP), k = d.C * khw;
        p->wpack_floats = mp * k + mp;
        p->a_ps = k * NP;
        if (W) {
            p->wpack = kl_calloc(p->wpack_floats + 16, sizeof(float));
            if (!p->wpack) goto fail;
            for (size_t m = 0; m < d.M; m++)
                for (size_t i = 0; i < k; i++) p->wpack[(m / NP) * p->a_ps + i * NP + m % NP] = W[m * k + i];
            if (bias) memcpy(p->wpack + mp * k, bias, d.M * sizeof(float));
        }
    } else if (algo == KL_CONV_DEPTHWISE) {
        p->wpack_floats = d.M * khw;
        if (dw_cb_pays(&d, p->isa, OW)) p->wcb_floats = round_up(d.C, KL_DWCB_C) * (khw + 1);
        if (W) {
        p->wpack = kl_malloc(p->wpack_floats * sizeof(float));
        if (!p->wpack) goto fail;
        memcpy(p->wpack, W, p->wpack_floats * sizeof(float));
        if (p->wcb_floats) {
            size_t cp = round_up(d.C, KL_DWCB_C);
            p->wcb = kl_calloc(cp * khw + cp, sizeof(float));
            if (!p->wcb) goto fail;
            for (size_t c = 0; c < d.C; c++) {
                for (size_t t = 0; t < khw; t++)
                    p->wcb[(c / KL_DWCB_C) * khw * KL_DWCB_C + t * KL_DWCB_C + c % KL_DWCB_C] = W[c * khw + t];
                if (bias) p->wcb[cp * khw + c] = bias[c];
            }
        }
        }
    } else if (is_wino(algo)) {
        size_t wm = algo == KL_CONV_WINOGRAD2 ? 2 : 4, wa = wm + 2, nxi = wa * wa;
        const double *G = algo == KL_CONV_WINOGRAD2 ? &WG2[0][0] : &WG[0][0];
        p->wm = wm, p->wa = wa, p->nxi = nxi;
        p->TH = (OH + wm - 1) / wm, p->TW = (OW + wm - 1) / wm;
        /* tiles per block: one GEMM per xi works on Cg x tb and Mg x tb
         * floats, so the block only needs to be small enough for a bounded
         * workspace (6 MiB); larger blocks stream the transformed weights
         * (4x the direct ones) fewer times */
        size_t T = d.N * p->TH * p->TW;
        if (algo != KL_CONV_WINOGRAD) T = p->TH * p->TW; /* blocks stay within an image */
        size_t budget = (size_t)6 * 1024 * 1024 / (nxi * (p->Cg + p->Mg) * sizeof(float));
        p->tb = KL_MIN(KL_MIN(round_up(T, NP), (size_t)256), KL_MAX((size_t)NP, budget / NP * NP));
        if (algo != KL_CONV_WINOGRAD) /* tiles are the A side: blocks of 6-row panels */
            p->tb = KL_MIN(round_up(T, MR), (size_t)96);
        /* F(4x4): U_xi (Mg x Cg) packed as A; F(2x2): U_xi^T (Cg x Mg) packed as B */
        size_t per_xi = algo == KL_CONV_WINOGRAD ? round_up(p->Mg, MR) * p->Cg : round_up(p->Mg, NP) * p->Cg;
        p->wpack_floats = per_xi * nxi * d.group;
        p->a_ps = algo == KL_CONV_WINOGRAD ? p->Cg * MR : p->Cg * NP;
        if (W) {
            /* U = G g G^T per (output, input) channel pair, in double as before, straight into the
             * packed panels: xi plane at xi * per_xi, then the pair's panel (F(4x4): A panels of MR
             * output rows; F(2x2): B panels of NP output columns), row r of the panel at c * P + r;
             * padded rows zero.  A block of WCB input channels is transformed into `blk` first, so
             * that each plane gets one contiguous run per block instead of a store a pair into 36
             * planes a megabyte apart.  Before, a dense U (37 MB for a 512-channel layer) was made,
             * packed through the gemm packer and copied: ResNet-50's first run (where its layers
             * pack) took 274 ms, now 177 (steady runs 66). */
            enum { WCB = 16 };
            size_t P = algo == KL_CONV_WINOGRAD ? MR : NP;
            p->wpack = kl_malloc(p->wpack_floats * sizeof(float));
            float *blk = kl_malloc(nxi * WCB * P * sizeof(float));
            if (!p->wpack || !blk) {
                kl_free(blk);
                goto fail;
            }
            for (size_t g = 0; g < d.group; g++)
                for (size_t m0 = 0; m0 < p->Mg; m0 += P) {
                    size_t h = KL_MIN(P, p->Mg - m0);
                    float *panel = p->wpack + g * nxi * per_xi + (m0 / P) * p->Cg * P;
                    if (h < P) memset(blk, 0, nxi * WCB * P * sizeof(float));
                    for (size_t c0 = 0; c0 < p->Cg; c0 += WCB) {
                        size_t cn = KL_MIN((size_t)WCB, p->Cg - c0);
                        for (size_t c = 0; c < cn; c++)
                            for (size_t r = 0; r < h; r++) {
                                const float *w = W + ((g * p->Mg + m0 + r) * p->Cg + c0 + c) * 9;
                                double t[6][3];
                                for (size_t i = 0; i < wa; i++)
                                    for (int j = 0; j < 3; j++)
                                        t[i][j] = G[i * 3 + 0] * w[0 * 3 + j] + G[i * 3 + 1] * w[1 * 3 + j] +
                                                  G[i * 3 + 2] * w[2 * 3 + j];
                                float *o = blk + c * P + r;
                                for (size_t i = 0; i < wa; i++)
                                    for (size_t j = 0; j < wa; j++)
                                        o[(i * wa + j) * WCB * P] = (float)(t[i][0] * G[j * 3 + 0] +
                                                                            t[i][1] * G[j * 3 + 1] +
                                                                            t[i][2] * G[j * 3 + 2]);
                            }
                        for (size_t xi = 0; xi < nxi; xi++)
                            memcpy(panel + xi * per_xi + c0 * P, blk + xi * WCB * P, cn * P * sizeof(float));
                    }
                }
            kl_free(blk);
        }
    } else if (algo == KL_CONV_IM2ROW) {
        /* B = W_g^T (Kg x Mg) in 16-column panels, panel stride Kg*16 */
        size_t per_group = round_up(p->Mg, NP) * p->Kg;
        p->wpack_floats = per_group * d.group;
        p->a_ps = p->Kg * NP;
        if (W) {
            p->wpack = kl_malloc(p->wpack_floats * sizeof(float) + 64);
            if (!p->wpack) goto fail;
            for (size_t g = 0; g < d.group; g++)
                kl_sgemm_pack_b_panels(W + g * p->Mg * p->Kg, p->Kg, true, p->Kg, p->Mg, p->wpack + g * per_group);
        }
    } else {
        size_t per_group = round_up(p->Mg, MR) * p->Kg;
        p->wpack_floats = per_group * d.group;
        p->a_ps = p->Kg * MR;
        if (W) {
            p->wpack = kl_malloc(p->wpack_floats * sizeof(float) + 64);
            if (!p->wpack) goto fail;
            /* W_g is Mg x Kg row-major: rows are output channels */
            for (size_t g = 0; g < d.group; g++)
                kl_sgemm_pack_a_panels(W + g * p->Mg * p->Kg, p->Kg, false, p->Mg, p->Kg, p->wpack + g * per_group);
        }
    }
    if (W && bias) {
        p->bias = kl_malloc(d.M * sizeof(float));
        if (!p->bias) goto fail;
        memcpy(p->bias, bias, d.M * sizeof(float));
    }
    *out = p;
    return KILN_OK;
fail:
    kl_conv2d_destroy(p);
    return KILN_ERR_NO_MEMORY;
}

kiln_status kl_conv2d_prepare(const kl_conv2d_desc *din, const float *W, const float *bias, kl_conv2d_plan **out) {
    *out = NULL;
    if (!W) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "conv2d: NULL weights");
    return conv_prepare(din, W, bias, out);
}

/* ---- pre-packed plans (an engine's packed section) ----------------------------- */

/* The exported form: a 64-byte header, then wpack, bias and wcb, each at a
 * multiple of 64 bytes and followed by 64 bytes of zeros (the kernels'
 * reads past a packed array stay inside). */
#define CP_MAGIC "KLCONV01"
typedef struct conv_packed_hdr {
    char magic[8];
    uint32_t algo, isa;
    uint64_t wpack_floats, bias_floats, wcb_floats, M;
    uint8_t reserved[16];
} conv_packed_hdr;

static size_t cp_region(size_t floats) { return round_up(floats * sizeof(float), 64) + 64; }

size_t kl_conv2d_export(const kl_conv2d_plan *p, void *dst, size_t cap) {
    if (!p || !p->wpack) return 0;
    size_t bias_floats = p->bias ? p->d.M : 0;
    size_t need = sizeof(conv_packed_hdr) + cp_region(p->wpack_floats) + (bias_floats ? cp_region(bias_floats) : 0) +
                  (p->wcb ? cp_region(p->wcb_floats) : 0);
    if (!dst || cap < need) return need;
    memset(dst, 0, need);
    conv_packed_hdr h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CP_MAGIC, 8);
    h.algo = (uint32_t)p->algo, h.isa = (uint32_t)p->isa;
    h.wpack_floats = p->wpack_floats, h.bias_floats = bias_floats, h.wcb_floats = p->wcb ? p->wcb_floats : 0;
    h.M = p->d.M;
    memcpy(dst, &h, sizeof h);
    char *q = (char *)dst + sizeof h;
    memcpy(q, p->wpack, p->wpack_floats * sizeof(float));
    q += cp_region(p->wpack_floats);
    if (bias_floats) {
        memcpy(q, p->bias, bias_floats * sizeof(float));
        q += cp_region(bias_floats);
    }
    if (p->wcb) memcpy(q, p->wcb, p->wcb_floats * sizeof(float));
    return need;
}

kiln_status kl_conv2d_adopt(const kl_conv2d_desc *d, const void *src, size_t size, kl_conv2d_plan **out) {
    *out = NULL;
    if (!d || !src || ((uintptr_t)src % 4) != 0 || size < sizeof(conv_packed_hdr))
        return kl_errorf(KILN_ERR_PARSE, "conv2d: pre-packed weights: no header, or not float-aligned");
    conv_packed_hdr h;
    memcpy(&h, src, sizeof h);
    if (memcmp(h.magic, CP_MAGIC, 8) != 0) return kl_errorf(KILN_ERR_PARSE, "conv2d: pre-packed weights: bad magic");
    kl_conv2d_plan *p;
    KL_TRY(conv_prepare(d, NULL, NULL, &p));
    size_t need = sizeof h + cp_region(p->wpack_floats) + (h.bias_floats ? cp_region(h.bias_floats) : 0) +
                  (h.wcb_floats ? cp_region(h.wcb_floats) : 0);
    if (h.algo != (uint32_t)p->algo || h.isa != (uint32_t)p->isa || h.wpack_floats != p->wpack_floats ||
        h.M != p->d.M || (h.bias_floats != 0 && h.bias_floats != p->d.M) || h.wcb_floats != p->wcb_floats ||
        size < need) {
        kl_conv_algo algo = p->algo;
        size_t floats = p->wpack_floats;
        kl_conv2d_destroy(p);
        return kl_errorf(KILN_ERR_ENGINE_MISMATCH,
                         "conv2d: pre-packed weights for %s (%llu floats) do not fit a %s plan of %zu floats: rebuild "
                         "the engine",
                         h.algo < KL_CONV_ALGO_COUNT ? kl_conv_algo_name((kl_conv_algo)h.algo) : "an unknown algorithm",
                         (unsigned long long)h.wpack_floats, kl_conv_algo_name(algo), floats);
    }
    const char *q = (const char *)src + sizeof h;
    p->borrowed = true;
    p->wpack = (float *)(uintptr_t)q;
    q += cp_region(p->wpack_floats);
    if (h.bias_floats) {
        p->bias = (float *)(uintptr_t)q;
        q += cp_region(h.bias_floats);
    }
    if (h.wcb_floats) p->wcb = (float *)(uintptr_t)q;
    *out = p;
    return KILN_OK;
}

void kl_conv2d_destroy(kl_conv2d_plan *p) {
    if (!p) return;
    if (!p->borrowed) {
        kl_free(p->wpack);
        kl_free(p->wcb);
        kl_free(p->bias);
    }
    kl_free(p);
}

kl_conv_algo kl_conv2d_algo(const kl_conv2d_plan *p) { return p->algo; }

void kl_conv2d_out_hw(const kl_conv2d_plan *p, size_t *OH, size_t *OW) {
    *OH = p->OH;
    *OW = p->OW;
}

static void dw_padded_dims(const kl_conv2d_plan *p, size_t *HP, size_t *WP);

/* conv.igemm's band: IG_ROWS output rows; padded input rows of IG_ROWS
 * rows' windows, wide enough for every pixel a kernel call computes
 * (KL_IGEMM_ROW_PAD past the row's end). */
#define IG_ROWS 4
static size_t ig_rows(const kl_conv2d_plan *p) { return (IG_ROWS - 1) * p->d.stride_h + p->d.KH; }
static size_t ig_wpb(const kl_conv2d_plan *p) {
    return (round_up(p->OW, KL_IGEMM_ROW_PAD) - 1) * p->d.stride_w + p->d.KW;
}
/* floats per thread: the padded rows, the tap offsets (int32), C^T of a row */
static size_t ig_ws_floats(const kl_conv2d_plan *p) {
    size_t k = p->d.C * p->d.KH * p->d.KW;
    return round_up(p->d.C * ig_rows(p) * ig_wpb(p), 16) + round_up(k, 16) +
           round_up(p->OW, KL_IGEMM_ROW_PAD) * round_up(p->d.M, NP);
}

/* Bytes per thread for a run of N images (only im2row's depends on N). */
static size_t ws_per_thread_n(const kl_conv2d_plan *p, size_t N) {
    if (p->algo == KL_CONV_DEPTHWISE && p->wcb)
        return kl_dwcb_buf_floats(p->OH, p->OW, p->d.KH, p->d.stride_h) * sizeof(float) + 64;
    if (p->algo == KL_CONV_DEPTHWISE) {
        size_t HP, WP;
        dw_padded_dims(p, &HP, &WP);
        return HP * WP * sizeof(float) + 64;
    }
    if (p->algo == KL_CONV_WINOGRAD) return p->nxi * ((p->Cg + p->Mg) * p->tb + 2 * WSKEW) * sizeof(float) + 128;
    if (is_wino(p->algo)) /* transposed: V^T panels, C^T per product, the pixel-major output */
        return (p->nxi * (p->tb * (p->Cg + round_up(p->Mg, NP)) + 2 * WSKEW) + p->OH * p->OW * round_up(p->Mg, NP)) * sizeof(float) +
               128;
    if (p->algo == KL_CONV_DIRECT) return 64; /* none used */
    if (p->algo == KL_CONV_IGEMM) return ig_ws_floats(p) * sizeof(float) + 128;
    if (p->algo == KL_CONV_IGEMMK) return ik_ws_floats(p) * sizeof(float) + 128;
    if (p->algo == KL_CONV_IM2ROW) { /* A slice of all pixels of its images + the transposed output */
        size_t q = KL_MIN(p->ni, KL_MAX(N, (size_t)1)) * p->OH * p->OW;
        return (round_up(q, MR) * KS + q * round_up(p->Mg, NP)) * sizeof(float) + 128;
    }
    return (size_t)KS * p->nt * sizeof(float) + 64;
}

static size_t ws_per_thread(const kl_conv2d_plan *p) { return ws_per_thread_n(p, 1); }

size_t kl_conv2d_workspace_size_n(const kl_conv2d_plan *p, int threads, size_t N) {
    if (threads < 1) threads = 1;
    if (threads > p->d.threads) threads = p->d.threads;
    return ws_per_thread_n(p, N) * (size_t)threads;
}

size_t kl_conv2d_workspace_size(const kl_conv2d_plan *p, int threads) {
    return kl_conv2d_workspace_size_n(p, threads, p->d.N);
}

size_t kl_conv2d_workspace_bytes(const kl_conv2d_plan *p) { return kl_conv2d_workspace_size(p, p->d.threads); }

size_t kl_conv2d_packed_bytes(const kl_conv2d_plan *p) {
    size_t cb = p->wcb ? p->wcb_floats * sizeof(float) : 0;
    return p->wpack_floats * sizeof(float) + (p->bias ? p->d.M * sizeof(float) : 0) + cb;
}

/* ---- GEMM-based algorithms -------------------------------------------------- */

typedef struct conv_run {
    const kl_conv2d_plan *p;
    const float *X, *Z;
    float *Y;
    char *ws;
    size_t tiles, mchunks, mchunk_rows;
    size_t tb; /* winograd: tiles per block in this run (<= plan's tb) */
    bool z_alias; /* Z == Y: the residual is already in Y */
    size_t N;     /* images in this run */
    const float *wpack; /* GEMM1X1: packed weights in place of the plan's (conv.scaled1x1), or NULL */
    const float *scale; /* IM2ROW (1x1): per-image input-channel scales (conv.scaled1x1), or NULL */
    size_t s_stride;    /* floats between two images' scales (0: shared) */
    size_t nt;          /* GEMM1X1 / IM2COL: output pixels per tile in this run (<= plan's nt) */
    size_t img;         /* WINOGRAD2 / 4T split by steps: the image */
    size_t t0, nblk;    /* WINOGRAD split by steps: the block's tiles */
    size_t ni;          /* IM2ROW: images stacked per item (<= plan's ni; 0 means 1) */
} conv_run;

/* Pixel tiles of n images x g groups on t threads: the plan's width, or
 * where few tiles would leave a thread idle at the end, a multiple of t
 * tiles of even width (28x28 at batch 1 ran as 256 + 256 + 256 + 16
 * pixels: 512 against 272 on 2 threads, 1.53x of 1 thread; now 208 x 3 +
 * 160). */
static size_t run_tiles(const kl_conv2d_plan *p, size_t n, size_t g, int t, size_t *nt) {
    size_t OHW = p->OH * p->OW, w = p->nt, tiles = (OHW + w - 1) / w;
    /* One tile of a k x k im2col layer is split too when there are fewer
     * than 2 images per thread.  Split by output channels instead (what the
     * run does below 2 items per thread), every chunk packs the whole im2col
     * matrix again: ResNet-50's 3x3/2 256->256 to 14x14, batch 1, 2 threads,
     * cold, 137-154 -> 163-200 GFLOP/s.  A 1x1 layer's packing is a plain
     * copy; it keeps the wider products. */
    bool one = tiles == 1 && n * g < 2 * (size_t)t && p->algo == KL_CONV_IM2COL && p->d.KH * p->d.KW > 1 &&
               OHW >= 4 * (size_t)NP * (size_t)t;
    if (t > 1 && (tiles > 1 || one) && n * g * tiles < 8 * (size_t)t) {
        size_t want = round_up(tiles, (size_t)t);
        w = KL_MIN(p->nt, round_up((OHW + want - 1) / want, NP));
        tiles = (OHW + w - 1) / w;
    }
    *nt = w;
    return tiles;
}

/* im2col rows [k0, k0+ks) for output pixels [p0, p0+np) of one image/group
 * into NP-column panels (panel stride ks*NP), zero past np. */
static void im2col_pack(const kl_conv2d_plan *p, const float *x, size_t k0, size_t ks, size_t p0, size_t np,
                        float *dst) {
    const kl_conv2d_desc *d = &p->d;
    size_t OW = p->OW;
    size_t ps = ks * NP;
    if (p->algo == KL_CONV_GEMM1X1) {
        size_t HW = d->H * d->W;
        for (size_t j = 0; j < np; j += NP) {
            size_t w = KL_MIN((size_t)NP, np - j);
            float *o = dst + (j / NP) * ps;
            const float *s = x + k0 * HW + p0 + j;
            for (size_t k = 0; k < ks; k++, s += HW, o += NP) {
                memcpy(o, s, w * sizeof(float));
                if (w < NP) memset(o + w, 0, (NP - w) * sizeof(float));
            }
        }
        return;
    }
    kl_im2col_args a = {x, d->H, d->W, OW, d->KH, d->KW, d->stride_h, d->stride_w, d->dil_h, d->dil_w,
                        d->pad_top, d->pad_left, k0, ks, p0, np, dst};
    /* the vector kernels index a group's planes with int32 */
    if (p->Cg * d->H * d->W < ((size_t)1 << 31))
        kl_x86_ops_get(p->isa)->im2col(&a);
    else
        kl_x86_generic_im2col(&a);
}

/* Portable im2col: one output-row segment at a time. */
void kl_x86_generic_im2col(const kl_im2col_args *a) {
    size_t khw = a->KH * a->KW, OW = a->OW, ks = a->ks, k0 = a->k0, np = a->np, p0 = a->p0;
    size_t ps = ks * NP;
    float *dst = a->dst;
    size_t npad = round_up(np, NP);
    for (size_t k = 0; k < ks; k++) {
        size_t kk = k0 + k;
        size_t c = kk / khw, r = kk % khw, kh = r / a->KW, kw = r % a->KW;
        const float *xc = a->x + c * a->H * a->W;
        ptrdiff_t off_h = (ptrdiff_t)(kh * a->DH) - (ptrdiff_t)a->PT;
        ptrdiff_t off_w = (ptrdiff_t)(kw * a->DW) - (ptrdiff_t)a->PL;
        /* valid output columns: 0 <= ow*sw + off_w < W */
        size_t sw = a->SW;
        size_t ow_lo = off_w >= 0 ? 0 : (size_t)((-off_w + (ptrdiff_t)sw - 1) / (ptrdiff_t)sw);
        ptrdiff_t lim = (ptrdiff_t)a->W - off_w; /* ow*sw < lim */
        size_t ow_hi = lim <= 0 ? 0 : KL_MIN(OW, (size_t)((lim + (ptrdiff_t)sw - 1) / (ptrdiff_t)sw));
        size_t j = 0, oh = p0 / OW, ow = p0 % OW;
        while (j < np) {
            /* one output row segment [ow, ow+len) at dst pixels [j, j+len), within one panel */
            size_t len = KL_MIN(OW - ow, NP - j % NP);
            len = KL_MIN(len, np - j);
            float *o = dst + (j / NP) * ps + k * NP + j % NP;
            ptrdiff_t ih = (ptrdiff_t)(oh * a->SH) + off_h;
            if (ih < 0 || ih >= (ptrdiff_t)a->H) {
                memset(o, 0, len * sizeof(float));
            } else {
                const float *row = xc + ih * (ptrdiff_t)a->W;
                size_t a0 = KL_MAX(ow, KL_MIN(ow_lo, ow + len)), a1 = KL_MIN(ow + len, KL_MAX(ow_hi, a0));
                size_t q = 0;
                for (; ow + q < a0; q++) o[q] = 0.0f;
                if (sw == 1) {
                    memcpy(o + q, row + (ptrdiff_t)a0 + off_w, (a1 - a0) * sizeof(float));
                    q += a1 - a0;
                } else {
                    for (; ow + q < a1; q++) o[q] = row[(ptrdiff_t)((ow + q) * sw) + off_w];
                }
                for (; q < len; q++) o[q] = 0.0f;
            }
            j += len;
            ow += len;
            if (ow == OW) {
                ow = 0;
                oh++;
            }
        }
        for (; j < npad; j++) dst[(j / NP) * ps + k * NP + j % NP] = 0.0f;
    }
}

/* Task: items are (image, group, tile, channel chunk). */
static void conv_gemm_task(void *arg, size_t b, size_t e, int tid) {
    const conv_run *r = arg;
    const kl_conv2d_plan *p = r->p;
    const kl_conv2d_desc *d = &p->d;
    float *ws = (float *)(((uintptr_t)(r->ws + (size_t)tid * ws_per_thread(p)) + 63) & ~(uintptr_t)63);
    size_t OHW = p->OH * p->OW;
    size_t per_group_w = round_up(p->Mg, MR) * p->Kg;
    kl_act none = {KL_ACT_NONE, 0, 0};
    for (size_t it = b; it < e; it++) {
        size_t mc = it % r->mchunks, rest = it / r->mchunks;
        size_t tile = rest % r->tiles;
        rest /= r->tiles;
        size_t g = rest % d->group, n = rest / d->group; /* n < r->N */
        size_t m0 = mc * r->mchunk_rows;
        if (m0 >= p->Mg) continue;
        size_t mrows = KL_MIN(r->mchunk_rows, p->Mg - m0);
        size_t p0 = tile * r->nt, np = KL_MIN(r->nt, OHW - p0);
        const float *x = r->X + (n * d->C + g * p->Cg) * d->H * d->W;
        size_t ch0 = g * p->Mg + m0;
        float *y = r->Y + (n * d->M + ch0) * OHW + p0;
        const float *z = r->Z && !r->z_alias ? r->Z + (n * d->M + ch0) * OHW + p0 : NULL;
        const float *bias = p->bias ? p->bias + ch0 : NULL;
        if (p->algo == KL_CONV_GEMM1X1) {
            /* the kernel reads X in place (row stride H*W; a partial last panel masked) */
            const float *wp = r->wpack ? r->wpack : p->wpack;
            kl_gemm_packed pk = {wp + g * per_group_w + (m0 / MR) * p->a_ps, p->a_ps, x + p0, NP, d->H * d->W};
            kl_sgemm_packed_run(p->isa, mrows, np, p->Kg, &pk, y, OHW, 1.0f, r->z_alias ? 1.0f : 0.0f, NULL, bias, z,
                                OHW, d->act);
            continue;
        }
        size_t nsl = (p->Kg + KS - 1) / KS, kstep = (p->Kg + nsl - 1) / nsl;
        for (size_t k0 = 0; k0 < p->Kg; k0 += kstep) {
            size_t ks = KL_MIN(kstep, p->Kg - k0);
            bool first = k0 == 0, last = k0 + ks >= p->Kg;
            im2col_pack(p, x, k0, ks, p0, np, ws);
            kl_gemm_packed pk = {p->wpack + g * per_group_w + (m0 / MR) * p->a_ps + k0 * MR, p->a_ps, ws, ks * NP, 0};
            float beta = first ? (r->z_alias ? 1.0f : 0.0f) : 1.0f;
            kl_sgemm_packed_run(p->isa, mrows, np, ks, &pk, y, OHW, 1.0f, beta, NULL, last ? bias : NULL,
                                last ? z : NULL, OHW, last ? d->act : none);
        }
    }
}

/* ---- im2row: C^T = im2col(X)^T W^T ---------------------------------------------- */

/* im2col rows [k0, k0+ks) transposed for all OH*OW pixels of one image and
 * group, placed after q0 pixels of earlier images (stacked products):
 * pixel q, row k at dst + ((q0+q)/MR)*ks*MR + (k-k0)*MR + (q0+q)%MR; with
 * pad_end (the last image) the lanes past its pixels, to a multiple of MR,
 * are zero. */
static void im2row_pack(const kl_conv2d_plan *p, const float *x, size_t k0, size_t ks, float *dst,
                        const float *scale, size_t q0, bool pad_end) {
    const kl_conv2d_desc *d = &p->d;
    size_t khw = d->KH * d->KW, OHW = p->OH * p->OW, ps = ks * MR;
    size_t OW = p->OW, sw = d->stride_w;
    dst += (q0 / MR) * ps;
    if (q0 % MR == 0 && (pad_end || OHW % MR == 0) && khw == 1 && sw == 1 && d->stride_h == 1 && !d->pad_top && !d->pad_left &&
        !d->pad_bottom && !d->pad_right) {
        /* 1x1 stride 1: pixels are the plane's floats, six at a time; with
         * `scale` (conv.scaled1x1: [C], the image's), channel k0 + k times
         * scale[k0 + k] */
        size_t full = OHW / MR, rest = OHW % MR;
        for (size_t k = 0; k < ks; k++) {
            const float *xc = x + (k0 + k) * d->H * d->W;
            float *pp = dst + k * MR;
            if (scale) {
                float sc = scale[k0 + k];
                for (size_t q = 0; q < full; q++, pp += ps, xc += MR)
                    for (size_t i = 0; i < MR; i++) pp[i] = xc[i] * sc;
                if (rest)
                    for (size_t i = 0; i < MR; i++) pp[i] = i < rest ? xc[i] * sc : 0.0f;
                continue;
            }
            for (size_t q = 0; q < full; q++, pp += ps, xc += MR) memcpy(pp, xc, MR * sizeof(float));
            if (rest) {
                memcpy(pp, xc, rest * sizeof(float));
                memset(pp + rest, 0, (MR - rest) * sizeof(float));
            }
        }
        return;
    }
    for (size_t k = 0; k < ks; k++) {
        size_t kk = k0 + k, c = kk / khw, r = kk % khw, kh = r / d->KW, kw = r % d->KW;
        const float *xc = x + c * d->H * d->W;
        ptrdiff_t off_h = (ptrdiff_t)(kh * d->dil_h) - (ptrdiff_t)d->pad_top;
        ptrdiff_t off_w = (ptrdiff_t)(kw * d->dil_w) - (ptrdiff_t)d->pad_left;
        /* valid output columns [ow_lo, ow_hi): 0 <= ow*sw + off_w < W */
        size_t ow_lo = off_w >= 0 ? 0 : (size_t)((-off_w + (ptrdiff_t)sw - 1) / (ptrdiff_t)sw);
        ptrdiff_t lim = (ptrdiff_t)d->W - off_w;
        size_t ow_hi = lim <= 0 ? 0 : KL_MIN(OW, (size_t)((lim + (ptrdiff_t)sw - 1) / (ptrdiff_t)sw));
        if (ow_lo > ow_hi) ow_lo = ow_hi;
        /* pixel q goes to panel (q0+q)/MR, lane (q0+q)%MR: walk a panel pointer and a lane */
        float *pp = dst + k * MR;
        size_t lane = q0 % MR;
        float sc = scale ? scale[c] : 1.0f; /* (scale: 1x1 only, c == kk) */
#define KL_IM2ROW_PUT(v)                                                                                        \
    do {                                                                                                        \
        pp[lane] = (v);                                                                                         \
        if (++lane == MR) lane = 0, pp += ps;                                                                   \
    } while (0)
        for (size_t oh = 0; oh < p->OH; oh++) {
            ptrdiff_t ih = (ptrdiff_t)(oh * d->stride_h) + off_h;
            if (ih < 0 || ih >= (ptrdiff_t)d->H) {
                for (size_t ow = 0; ow < OW; ow++) KL_IM2ROW_PUT(0.0f);
                continue;
            }
            const float *row = xc + ih * (ptrdiff_t)d->W + off_w;
            size_t ow = 0;
            for (; ow < ow_lo; ow++) KL_IM2ROW_PUT(0.0f);
            if (scale)
                for (; ow < ow_hi; ow++) KL_IM2ROW_PUT(row[ow * sw] * sc);
            else
                for (; ow < ow_hi; ow++) KL_IM2ROW_PUT(row[ow * sw]);
            for (; ow < OW; ow++) KL_IM2ROW_PUT(0.0f);
        }
        if (pad_end) /* lanes past the last image's pixels */
            while (lane) KL_IM2ROW_PUT(0.0f);
#undef KL_IM2ROW_PUT
    }
}

/* Images per im2row item for N images on t threads: at most the plan's
 * ni, at least as many items as threads while there are images for them,
 * groups evened out (8 images, 5 at most: 4 + 4). */
static size_t im2row_images(const kl_conv2d_plan *p, size_t N, int t) {
    size_t ni = KL_MIN(p->ni, N);
    if (t > 1 && N >= (size_t)t) ni = KL_MIN(ni, (N + (size_t)t - 1) / (size_t)t);
    if (ni <= 1) return 1;
    size_t groups = (N + ni - 1) / ni;
    return (N + groups - 1) / groups;
}

/* Task: items are (group of r->ni images, group, chunk of output
 * channels); each packs its images' A slice by slice (their pixels one
 * after the other), accumulates C^T (pixels x chunk) in the workspace and
 * writes each image's planes of the chunk transposed with Z and the
 * activation. */
static void conv_im2row_task(void *arg, size_t b, size_t e, int tid) {
    const conv_run *r = arg;
    const kl_conv2d_plan *p = r->p;
    const kl_conv2d_desc *d = &p->d;
    const kl_x86_ops *ops = kl_x86_ops_get(p->isa);
    float *A = (float *)(((uintptr_t)(r->ws + (size_t)tid * ws_per_thread_n(p, r->N)) + 63) & ~(uintptr_t)63);
    size_t OHW = p->OH * p->OW, ni = r->ni ? r->ni : 1;
    float *CT = A + round_up(ni * OHW, MR) * KS;
    size_t per_group_w = round_up(p->Mg, NP) * p->Kg;
    kl_act none = {KL_ACT_NONE, 0, 0};
    for (size_t it = b; it < e; it++) {
        size_t mc = it % r->mchunks, rest = it / r->mchunks;
        size_t g = rest % d->group, n0 = rest / d->group * ni;
        size_t nn = KL_MIN(ni, r->N - n0), rows = nn * OHW;
        size_t m0 = mc * r->mchunk_rows;
        if (m0 >= p->Mg) continue;
        size_t mcols = KL_MIN(r->mchunk_rows, p->Mg - m0), ldc = round_up(mcols, NP);
        size_t ch0 = g * p->Mg + m0;
        const float *wg = p->wpack + g * per_group_w + (m0 / NP) * p->a_ps;
        size_t nsl = (p->Kg + KS - 1) / KS, kstep = (p->Kg + nsl - 1) / nsl;
        for (size_t k0 = 0; k0 < p->Kg; k0 += kstep) {
            size_t ks = KL_MIN(kstep, p->Kg - k0);
            bool first = k0 == 0, last = k0 + ks >= p->Kg;
            for (size_t i = 0; i < nn; i++)
                im2row_pack(p, r->X + ((n0 + i) * d->C + g * p->Cg) * d->H * d->W, k0, ks, A,
                            r->scale ? r->scale + (n0 + i) * r->s_stride : NULL, i * OHW, i + 1 == nn);
            /* 64 columns at a time: the weight block stays in cache over the pixel rows */
            for (size_t j = 0; j < mcols; j += 64) {
                size_t nc = KL_MIN((size_t)64, mcols - j);
                kl_gemm_packed pk = {A, ks * MR, wg + (j / NP) * p->a_ps + k0 * NP, p->a_ps, NP, NULL, 0, 0};
                /* the weights stream from memory once per image: fetch the
                 * next block (or the next slice's first) while this one runs
                 * from cache over the pixel panels */
                if (j + 64 < mcols) {
                    pk.pf_b = wg + ((j + 64) / NP) * p->a_ps + k0 * NP;
                    pk.pf_panels = KL_MIN((size_t)4, (mcols - j - 64 + NP - 1) / NP);
                } else if (!last) {
                    pk.pf_b = wg + (k0 + ks) * NP;
                    pk.pf_panels = KL_MIN((size_t)4, (mcols + NP - 1) / NP);
                }
                pk.pf_ps = p->a_ps;
                kl_sgemm_packed_run(p->isa, rows, nc, ks, &pk, CT + j, ldc, 1.0f, first ? 0.0f : 1.0f,
                                    last && p->bias ? p->bias + ch0 + j : NULL, NULL, NULL, 0, none);
            }
        }
        for (size_t i = 0; i < nn; i++) {
            size_t n = n0 + i;
            kl_im2row_out wo = {CT + i * OHW * ldc, ldc, OHW, mcols, r->Z ? r->Z + (n * d->M + ch0) * OHW : NULL,
                                r->Y + (n * d->M + ch0) * OHW, OHW, d->act};
            ops->im2row_out(&wo);
        }
    }
}

void kl_x86_generic_im2row_out(const kl_im2row_out *a) {
    for (size_t m = 0; m < a->mc; m++) {
        float *y = a->y + m * a->ystride;
        const float *z = a->z ? a->z + m * a->ystride : NULL;
        const float *ct = a->ct + m;
        if (z)
            for (size_t q = 0; q < a->nq; q++) y[q] = ct[q * a->ldc] + z[q];
        else
            for (size_t q = 0; q < a->nq; q++) y[q] = ct[q * a->ldc];
        if (a->act.kind != KL_ACT_NONE) kl_x86_generic_vec_act(a->act, y, a->nq);
    }
}

/* ---- Winograd F(4x4, 3x3) ------------------------------------------------------ */

/* Task: items are (image, group, tile block, channel chunk). */
/* Winograd's input transform of tiles [t0, t0+nblk) (of all images), input
 * channels [c0, c1) of group g, into V (16-tile panels, xi-major, row
 * stride r->tb). */
static void wino_input(const conv_run *r, float *V, size_t g, size_t t0, size_t nblk, size_t c0, size_t c1) {
    const kl_conv2d_plan *p = r->p;
    const kl_conv2d_desc *d = &p->d;
    const kl_x86_ops *ops = kl_x86_ops_get(p->isa);
    size_t HW = d->H * d->W, T = p->TH * p->TW, xsv = p->Cg * r->tb + WSKEW;
    const float *x = r->X + g * p->Cg * HW;
    kl_wino_in wi = {NULL, d->C * HW, T, d->H, d->W, d->pad_top, d->pad_left, p->TW, 0, 0, NULL, xsv};
    for (size_t c = c0; c < c1; c++)
        for (size_t t = 0; t < nblk; t += NP) {
            wi.x = x + c * HW;
            wi.t0 = t0 + t;
            wi.nt = KL_MIN((size_t)NP, nblk - t);
            wi.dst = V + (t / NP) * p->Cg * NP + c * NP;
            ops->wino_in(&wi);
        }
}

/* Winograd's products (one per transform position xi) of output channels
 * [m0, m0+mrows) of group g against V, into Cb, then the output transform
 * (bias, residual, activation) of tiles [t0, t0+nblk). */
static void wino_product(const conv_run *r, const float *V, float *Cb, size_t g, size_t m0, size_t mrows, size_t t0,
                         size_t nblk) {
    const kl_conv2d_plan *p = r->p;
    const kl_conv2d_desc *d = &p->d;
    const kl_x86_ops *ops = kl_x86_ops_get(p->isa);
    size_t nxi = p->nxi, tb = r->tb, OHW = p->OH * p->OW, T = p->TH * p->TW;
    size_t per_xi = round_up(p->Mg, MR) * p->Cg;
    size_t xsv = p->Cg * tb + WSKEW, xsc = mrows * tb + WSKEW;
    kl_act none = {KL_ACT_NONE, 0, 0};
    for (size_t xi = 0; xi < nxi; xi++) {
        kl_gemm_packed pk = {p->wpack + (g * nxi + xi) * per_xi + (m0 / MR) * p->a_ps, p->a_ps, V + xi * xsv,
                             p->Cg * NP, 0};
        kl_sgemm_packed_run(p->isa, mrows, nblk, p->Cg, &pk, Cb + xi * xsc, tb, 1.0f, 0.0f, NULL, NULL, NULL, 0, none);
    }
    kl_wino_out wo = {NULL, xsc, 0, NULL, NULL, d->M * OHW, T, p->OH, p->OW, p->TW, 0, 0, d->act};
    for (size_t m = 0; m < mrows; m++) {
        size_t ch = g * p->Mg + m0 + m;
        wo.bias = p->bias ? p->bias[ch] : 0.0f;
        wo.y = r->Y + ch * OHW;
        wo.z = r->Z ? r->Z + ch * OHW : NULL;
        for (size_t t = 0; t < nblk; t += NP) {
            wo.m = Cb + m * tb + t;
            wo.t0 = t0 + t;
            wo.nt = KL_MIN((size_t)NP, nblk - t);
            ops->wino_out(&wo);
        }
    }
}

static float *wino_V(const conv_run *r, int tid) {
    return (float *)(((uintptr_t)(r->ws + (size_t)tid * ws_per_thread(r->p)) + 63) & ~(uintptr_t)63);
}
static float *wino_Cb(const conv_run *r, int tid) { return wino_V(r, tid) + r->p->nxi * (r->p->Cg * r->p->tb + WSKEW); }

static void conv_wino_task(void *arg, size_t b, size_t e, int tid) {
    const conv_run *r = arg;
    const kl_conv2d_plan *p = r->p;
    float *V = wino_V(r, tid), *Cb = wino_Cb(r, tid);
    size_t TT = r->N * p->TH * p->TW; /* tiles of all images, numbered image by image */
    for (size_t it = b; it < e; it++) {
        size_t mc = it % r->mchunks, rest = it / r->mchunks;
        size_t blk = rest % r->tiles, g = rest / r->tiles;
        size_t m0 = mc * r->mchunk_rows;
        if (m0 >= p->Mg) continue;
        size_t mrows = KL_MIN(r->mchunk_rows, p->Mg - m0);
        size_t t0 = blk * r->tb, nblk = KL_MIN(r->tb, TT - t0);
        wino_input(r, V, g, t0, nblk, 0, p->Cg);
        wino_product(r, V, Cb, g, m0, mrows, t0, nblk);
    }
}

/* Few blocks of tiles on several threads (batch 1: fewer blocks than two
 * per thread), a block at a time in two steps instead of a block per
 * chunk of output channels that each transformed the block's input again:
 * the input transform split by channels into the first thread's V, then
 * the products and the output transform split by output channels (each
 * thread its own Cb). */
static void conv_wino_in_task(void *arg, size_t b, size_t e, int tid) {
    (void)tid;
    const conv_run *r = arg;
    size_t Cg = r->p->Cg, per = (Cg + r->tiles - 1) / r->tiles; /* tiles: the channel chunks here */
    for (size_t it = b; it < e; it++)
        if (it * per < Cg) wino_input(r, wino_V(r, 0), 0, r->t0, r->nblk, it * per, KL_MIN(Cg, (it + 1) * per));
}

static void conv_wino_mm_task(void *arg, size_t b, size_t e, int tid) {
    const conv_run *r = arg;
    const kl_conv2d_plan *p = r->p;
    for (size_t it = b; it < e; it++) {
        size_t m0 = it * r->mchunk_rows;
        if (m0 >= p->Mg) continue;
        wino_product(r, wino_V(r, 0), wino_Cb(r, tid), 0, m0, KL_MIN(r->mchunk_rows, p->Mg - m0), r->t0, r->nblk);
    }
}

/* Transposed Winograd (conv.winograd2 F(2x2), conv.winograd4t F(4x4)):
 * the thread's buffers (A panels, C^T per product, the pixel-major output). */
static float *wino2_A(const conv_run *r, int tid) {
    return (float *)(((uintptr_t)(r->ws + (size_t)tid * ws_per_thread(r->p)) + 63) & ~(uintptr_t)63);
}
static float *wino2_CT(const conv_run *r, int tid) { return wino2_A(r, tid) + r->p->nxi * (r->p->tb * r->p->Cg + WSKEW); }
static float *wino2_O(const conv_run *r, int tid) {
    return wino2_CT(r, tid) + r->p->nxi * (r->p->tb * round_up(r->p->Mg, NP) + WSKEW);
}

/* The input transform of tiles [t0, t0+nt) of image n, group g, input
 * channels [c0, c1), repacked into the 6-tile A panels (k-major). */
static void wino2_input(const conv_run *r, float *A, size_t n, size_t g, size_t t0, size_t nt, size_t c0, size_t c1) {
    const kl_conv2d_plan *p = r->p;
    const kl_conv2d_desc *d = &p->d;
    const kl_x86_ops *ops = kl_x86_ops_get(p->isa);
    void (*win)(const kl_wino_in *) = p->wm == 4 ? ops->wino_in : ops->wino2_in;
    size_t HW = d->H * d->W, T = p->TH * p->TW, ntp = round_up(nt, MR), xsa = p->tb * p->Cg + WSKEW;
    const float *x = r->X + (n * d->C + g * p->Cg) * HW;
    kl_wino_in wi = {NULL, 0, T, d->H, d->W, d->pad_top, d->pad_left, p->TW, 0, 0, NULL, xsa, p->Cg, 0, 0};
    for (size_t c = c0; c < c1; c++)
        for (size_t t = 0; t < ntp; t += 16) {
            wi.x = x + c * HW;
            wi.t0 = t0 + t;
            wi.nt = t < nt ? KL_MIN((size_t)16, nt - t) : 0;
            wi.dst = A + c * MR;
            wi.q0 = t;
            wi.nw = KL_MIN((size_t)16, ntp - t);
            win(&wi);
        }
}

/* The products of tiles [t0, t0+nt) (A) for output channels [m0,
 * m0+mcols) of group g into CT, and their output transform into O. */
static void wino2_product(const conv_run *r, const float *A, float *CT, float *O, size_t g, size_t m0, size_t mcols,
                          size_t t0, size_t nt) {
    const kl_conv2d_plan *p = r->p;
    const kl_x86_ops *ops = kl_x86_ops_get(p->isa);
    void (*wout)(const kl_wino2_out *) = p->wm == 4 ? ops->wino4t_out : ops->wino2_out;
    size_t tbp = p->tb, nxi = p->nxi, ldc = round_up(mcols, NP);
    size_t per_xi = round_up(p->Mg, NP) * p->Cg, xsa = tbp * p->Cg + WSKEW;
    kl_act none = {KL_ACT_NONE, 0, 0};
    const float *wg = p->wpack + g * nxi * per_xi + (m0 / NP) * p->a_ps;
    for (size_t xi = 0; xi < nxi; xi++) {
        const float *wx = wg + xi * per_xi;
        for (size_t j = 0; j < mcols; j += 64) {
            size_t nc = KL_MIN((size_t)64, mcols - j);
            kl_gemm_packed pk = {A + xi * xsa, p->Cg * MR, wx + (j / NP) * p->a_ps, p->a_ps, NP, NULL, 0, 0};
            /* the weights stream from memory: fetch the next block's
             * first panels while this one runs from cache */
            size_t pfp = nt > MR ? KL_MIN((size_t)4, (nt - 1) / MR) : 0;
            if (j + 64 < mcols)
                pk.pf_b = wx + ((j + 64) / NP) * p->a_ps;
            else if (xi + 1 < nxi)
                pk.pf_b = wx + per_xi;
            pk.pf_ps = p->a_ps;
            pk.pf_panels = pk.pf_b ? pfp : 0;
            kl_sgemm_packed_run(p->isa, nt, nc, p->Cg, &pk, CT + xi * (tbp * ldc + WSKEW) + j, ldc, 1.0f, 0.0f, NULL,
                                NULL, NULL, 0, none);
        }
    }
    size_t ch0 = g * p->Mg + m0;
    kl_wino2_out wo = {CT, tbp * ldc + WSKEW, ldc, p->bias ? p->bias + ch0 : NULL, O, ldc, p->OH, p->OW, p->TW, t0,
                       nt, mcols};
    wout(&wo);
}

/* O (pixel-major, output channels [m0, m0+mcols) of group g) to image n's
 * planes with Z and the activation. */
static void wino2_write(const conv_run *r, const float *O, size_t n, size_t g, size_t m0, size_t mcols) {
    const kl_conv2d_plan *p = r->p;
    const kl_conv2d_desc *d = &p->d;
    size_t OHW = p->OH * p->OW, ch0 = g * p->Mg + m0;
    kl_im2row_out wo = {O, round_up(mcols, NP), OHW, mcols, r->Z ? r->Z + (n * d->M + ch0) * OHW : NULL,
                        r->Y + (n * d->M + ch0) * OHW, OHW, d->act};
    kl_x86_ops_get(p->isa)->im2row_out(&wo);
}

/* Task: items are (image, group, chunk of output channels), as for
 * im2row.  Per block of tiles of the image: the input transform (16 tiles
 * at a time) is repacked into 6-tile A panels per product, the 16 GEMMs
 * give C^T (tiles x channels) against the weights' B panels, and the
 * output transform writes the pixel-major product that im2row's
 * write-back turns into channel planes with Z and the activation. */
static void conv_wino2_task(void *arg, size_t b, size_t e, int tid) {
    const conv_run *r = arg;
    const kl_conv2d_plan *p = r->p;
    const kl_conv2d_desc *d = &p->d;
    float *A = wino2_A(r, tid), *CT = wino2_CT(r, tid), *O = wino2_O(r, tid);
    size_t T = p->TH * p->TW;
    for (size_t it = b; it < e; it++) {
        size_t mc = it % r->mchunks, rest = it / r->mchunks;
        size_t g = rest % d->group, n = rest / d->group;
        size_t m0 = mc * r->mchunk_rows;
        if (m0 >= p->Mg) continue;
        size_t mcols = KL_MIN(r->mchunk_rows, p->Mg - m0);
        for (size_t t0 = 0; t0 < T; t0 += p->tb) {
            size_t nt = KL_MIN(p->tb, T - t0);
            wino2_input(r, A, n, g, t0, nt, 0, p->Cg);
            wino2_product(r, A, CT, O, g, m0, mcols, t0, nt);
        }
        wino2_write(r, O, n, g, m0, mcols);
    }
}

/* One image of one block on several threads: the input transform split
 * by channels into the first thread's A (each chunk of output channels
 * transformed the whole input again), then the products, output
 * transform and write-back split by output channels. */
static void conv_wino2_in_task(void *arg, size_t b, size_t e, int tid) {
    (void)tid;
    const conv_run *r = arg;
    size_t Cg = r->p->Cg, per = (Cg + r->tiles - 1) / r->tiles, T = r->p->TH * r->p->TW;
    for (size_t it = b; it < e; it++)
        if (it * per < Cg) wino2_input(r, wino2_A(r, 0), r->img, 0, 0, T, it * per, KL_MIN(Cg, (it + 1) * per));
}

static void conv_wino2_mm_task(void *arg, size_t b, size_t e, int tid) {
    const conv_run *r = arg;
    const kl_conv2d_plan *p = r->p;
    for (size_t it = b; it < e; it++) {
        size_t m0 = it * r->mchunk_rows;
        if (m0 >= p->Mg) continue;
        size_t mcols = KL_MIN(r->mchunk_rows, p->Mg - m0);
        wino2_product(r, wino2_A(r, 0), wino2_CT(r, tid), wino2_O(r, tid), 0, m0, mcols, 0, p->TH * p->TW);
        wino2_write(r, wino2_O(r, tid), r->img, 0, m0, mcols);
    }
}

/* B^T d B on 6 values (one row or column). */
static void wino_bt(const float *d, size_t s, float *r, size_t rs) {
    float d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s], d4 = d[4 * s], d5 = d[5 * s];
    r[0] = 4 * d0 - 5 * d2 + d4;
    r[rs] = -4 * (d1 + d2) + d3 + d4;
    r[2 * rs] = 4 * (d1 - d2) + (d4 - d3);
    r[3 * rs] = -2 * (d1 - d3) + (d4 - d2);
    r[4 * rs] = 2 * (d1 - d3) + (d4 - d2);
    r[5 * rs] = 4 * d1 - 5 * d3 + d5;
}

/* A^T m A on 6 values. */
static void wino_at(const float *m, size_t s, float *o, size_t os) {
    float a12 = m[s] + m[2 * s], s12 = m[s] - m[2 * s], a34 = m[3 * s] + m[4 * s], s34 = m[3 * s] - m[4 * s];
    o[0] = m[0] + a12 + a34;
    o[os] = s12 + 2 * s34;
    o[2 * os] = a12 + 4 * a34;
    o[3 * os] = s12 + 8 * s34 + m[5 * s];
}

/* Lane l of product k where kl_wino_in's layout puts it. */
static void wino_put_scalar(const kl_wino_in *a, size_t k, size_t l, float v) {
    if (!a->cgp) {
        a->dst[k * a->xs + l] = v;
        return;
    }
    if (l >= a->nw) return;
    size_t q = a->q0 + l;
    a->dst[k * a->xs + (q / MR) * MR * a->cgp + q % MR] = v;
}

/* Input tile l of a (n x n values from step*tile, zeros outside the image
 * and past the last tile) into dd. */
static void wino_tile(const kl_wino_in *a, size_t l, int n, int step, float *dd) {
    memset(dd, 0, (size_t)(n * n) * sizeof *dd);
    if (l >= a->nt) return;
    size_t tg = a->t0 + l, tt = tg % a->T, th = tt / a->TW, tw = tt % a->TW;
    const float *x = a->x + (tg / a->T) * a->xstride;
    ptrdiff_t r0 = (ptrdiff_t)(th * (size_t)step) - (ptrdiff_t)a->PT, c0 = (ptrdiff_t)(tw * (size_t)step) - (ptrdiff_t)a->PL;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            ptrdiff_t rr = r0 + i, cc = c0 + j;
            if (rr >= 0 && cc >= 0 && rr < (ptrdiff_t)a->H && cc < (ptrdiff_t)a->W) dd[i * n + j] = x[rr * (ptrdiff_t)a->W + cc];
        }
}

void kl_x86_generic_wino_in(const kl_wino_in *a) {
    for (size_t l = 0; l < NP; l++) {
        float dd[36], t[36], v[36];
        wino_tile(a, l, 6, 4, dd);
        for (int j = 0; j < 6; j++) wino_bt(dd + j, 6, t + j, 6);
        for (int i = 0; i < 6; i++) wino_bt(t + i * 6, 1, v + i * 6, 1);
        for (int k = 0; k < 36; k++) wino_put_scalar(a, (size_t)k, l, l < a->nt ? v[k] : 0.0f);
    }
}

void kl_x86_generic_wino_out(const kl_wino_out *a) {
    for (size_t l = 0; l < a->nt; l++) {
        float mm[36], s[24], o[16];
        for (int k = 0; k < 36; k++) mm[k] = a->m[(size_t)k * a->xs + l];
        for (int j = 0; j < 6; j++) wino_at(mm + j, 6, s + j, 6);
        for (int i = 0; i < 4; i++) wino_at(s + i * 6, 1, o + i * 4, 1);
        size_t tg = a->t0 + l, tt = tg % a->T, th = tt / a->TW, tw = tt % a->TW;
        size_t img = (tg / a->T) * a->ystride;
        for (size_t i = 0; i < 4; i++)
            for (size_t j = 0; j < 4; j++) {
                size_t oh = th * 4 + i, ow = tw * 4 + j;
                if (oh >= a->OH || ow >= a->OW) continue;
                float v = o[i * 4 + j] + a->bias;
                if (a->z) v += a->z[img + oh * a->OW + ow];
                a->y[img + oh * a->OW + ow] = kl_act_scalar(a->act, v);
            }
    }
}

/* F(2x2, 3x3): B^T d B and A^T m A on 4 values. */
static void wino2_bt(const float *d, size_t s, float *r, size_t rs) {
    float d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s];
    r[0] = d0 - d2;
    r[rs] = d1 + d2;
    r[2 * rs] = d2 - d1;
    r[3 * rs] = d1 - d3;
}

static void wino2_at(const float *m, size_t s, float *o, size_t os) {
    o[0] = m[0] + m[s] + m[2 * s];
    o[os] = m[s] - m[2 * s] - m[3 * s];
}

void kl_x86_generic_wino2_in(const kl_wino_in *a) {
    for (size_t l = 0; l < NP; l++) {
        float dd[16], t[16], v[16];
        wino_tile(a, l, 4, 2, dd);
        for (int j = 0; j < 4; j++) wino2_bt(dd + j, 4, t + j, 4);
        for (int i = 0; i < 4; i++) wino2_bt(t + i * 4, 1, v + i * 4, 1);
        for (int k = 0; k < 16; k++) wino_put_scalar(a, (size_t)k, l, l < a->nt ? v[k] : 0.0f);
    }
}

void kl_x86_generic_wino4t_out(const kl_wino2_out *a) {
    for (size_t l = 0; l < a->nt; l++) {
        size_t tt = a->t0 + l, th = tt / a->TW, tw = tt % a->TW;
        for (size_t m = 0; m < a->mc; m++) {
            float mm[36], s[24], o[16];
            for (int k = 0; k < 36; k++) mm[k] = a->c[(size_t)k * a->xs + l * a->ldc + m];
            for (int j = 0; j < 6; j++) wino_at(mm + j, 6, s + j, 6);
            for (int i = 0; i < 4; i++) wino_at(s + i * 6, 1, o + i * 4, 1);
            for (size_t i = 0; i < 4; i++)
                for (size_t j = 0; j < 4; j++) {
                    size_t oh = th * 4 + i, ow = tw * 4 + j;
                    if (oh < a->OH && ow < a->OW)
                        a->o[(oh * a->OW + ow) * a->ldo + m] = o[i * 4 + j] + (a->bias ? a->bias[m] : 0.0f);
                }
        }
    }
}

void kl_x86_generic_wino2_out(const kl_wino2_out *a) {
    for (size_t l = 0; l < a->nt; l++) {
        size_t tt = a->t0 + l, th = tt / a->TW, tw = tt % a->TW;
        for (size_t m = 0; m < a->mc; m++) {
            float mm[16], s[8], o[4];
            for (int k = 0; k < 16; k++) mm[k] = a->c[(size_t)k * a->xs + l * a->ldc + m];
            for (int j = 0; j < 4; j++) wino2_at(mm + j, 4, s + j, 4);
            for (int i = 0; i < 2; i++) wino2_at(s + i * 4, 1, o + i * 2, 1);
            for (size_t i = 0; i < 2; i++)
                for (size_t j = 0; j < 2; j++) {
                    size_t oh = th * 2 + i, ow = tw * 2 + j;
                    if (oh < a->OH && ow < a->OW)
                        a->o[(oh * a->OW + ow) * a->ldo + m] = o[i * 2 + j] + (a->bias ? a->bias[m] : 0.0f);
                }
        }
    }
}

/* ---- depthwise ---------------------------------------------------------------- */

typedef struct dw_run {
    const kl_conv2d_plan *p;
    const float *X, *Z;
    float *Y;
    char *ws;
} dw_run;

/* Padded plane extents: every tap of every output pixel lands inside. */
static void dw_padded_dims(const kl_conv2d_plan *p, size_t *HP, size_t *WP) {
    const kl_conv2d_desc *d = &p->d;
    *HP = (p->OH - 1) * d->stride_h + (d->KH - 1) * d->dil_h + 1;
    *WP = (p->OW - 1) * d->stride_w + (d->KW - 1) * d->dil_w + 1;
    *HP = KL_MAX(*HP, d->pad_top + d->H);
    *WP = KL_MAX(*WP, d->pad_left + d->W);
}

static void dw_task(void *arg, size_t b, size_t e, int tid) {
    const dw_run *r = arg;
    const kl_conv2d_plan *p = r->p;
    const kl_conv2d_desc *d = &p->d;
    const kl_x86_ops *ops = kl_x86_ops_get(p->isa);
    size_t khw = d->KH * d->KW, HW = d->H * d->W, OHW = p->OH * p->OW;
    size_t HP, WP;
    dw_padded_dims(p, &HP, &WP);
    float *xp = (float *)(((uintptr_t)(r->ws + (size_t)tid * ws_per_thread(p)) + 63) & ~(uintptr_t)63);
    kl_dw_args a = {0};
    a.x = xp;
    a.HP = HP, a.WP = WP, a.OH = p->OH, a.OW = p->OW, a.KH = d->KH, a.KW = d->KW;
    a.SH = d->stride_h, a.SW = d->stride_w, a.DH = d->dil_h, a.DW = d->dil_w;
    a.act = d->act;
    a.direct = kl_x86_dw_direct(p->isa, d->KH, d->KW, d->stride_h, d->stride_w, d->dil_h, d->dil_w, d->pad_top,
                                d->pad_left, d->pad_bottom, d->pad_right);
    a.H = d->H, a.W = d->W, a.PT = d->pad_top, a.PL = d->pad_left;
    /* the zero border stays zero between planes: clear once, copy rows */
    if (!a.direct) memset(xp, 0, HP * WP * sizeof(float));
    for (size_t it = b; it < e; it++) {
        size_t c = it % d->C;
        const float *x = r->X + it * HW;
        if (a.direct)
            a.x = x;
        else
            for (size_t h = 0; h < d->H; h++)
                memcpy(xp + (d->pad_top + h) * WP + d->pad_left, x + h * d->W, d->W * sizeof(float));
        a.w = p->wpack + c * khw;
        a.bias = p->bias ? p->bias[c] : 0.0f;
        a.z = r->Z ? r->Z + it * OHW : NULL;
        a.y = r->Y + it * OHW;
        ops->dwconv(&a);
    }
}

/* Items are (image, block of KL_DWCB_C channels). */
static void dwcb_task(void *arg, size_t b, size_t e, int tid) {
    const dw_run *r = arg;
    const kl_conv2d_plan *p = r->p;
    const kl_conv2d_desc *d = &p->d;
    const kl_x86_ops *ops = kl_x86_ops_get(p->isa);
    size_t khw = d->KH * d->KW, HW = d->H * d->W, OHW = p->OH * p->OW;
    size_t nb = (d->C + KL_DWCB_C - 1) / KL_DWCB_C, cp = nb * KL_DWCB_C;
    size_t HB, WB, OWP;
    kl_dwcb_dims(p->OH, p->OW, d->KH, d->stride_h, &HB, &WB, &OWP);
    float *buf = (float *)(((uintptr_t)(r->ws + (size_t)tid * ws_per_thread(p)) + 63) & ~(uintptr_t)63);
    memset(buf, 0, HB * WB * KL_DWCB_C * sizeof(float)); /* the padding; pixels are rewritten per block */
    kl_dwcb_args a = {0};
    a.buf = buf;
    a.H = d->H, a.W = d->W, a.OH = p->OH, a.OW = p->OW, a.K = d->KH, a.S = d->stride_h;
    a.PT = d->pad_top, a.PL = d->pad_left, a.act = d->act;
    for (size_t it = b; it < e; it++) {
        size_t n = it / nb, c0 = (it % nb) * KL_DWCB_C;
        a.nc = KL_MIN((size_t)KL_DWCB_C, d->C - c0);
        a.x = r->X + (n * d->C + c0) * HW;
        a.w = p->wcb + (c0 / KL_DWCB_C) * khw * KL_DWCB_C;
        a.bias = p->wcb + cp * khw + c0;
        a.z = r->Z ? r->Z + (n * d->C + c0) * OHW : NULL;
        a.y = r->Y + (n * d->C + c0) * OHW;
        ops->dwcb(&a);
    }
}

bool kl_x86_dw_direct(kl_isa isa, size_t KH, size_t KW, size_t SH, size_t SW, size_t DH, size_t DW, size_t pt,
                      size_t pl, size_t pb, size_t pr) {
    (void)pb, (void)pr; /* any pads: rows and columns outside the input read as zero */
    (void)pt, (void)pl;
    kl_isa lv = kl_isa_resolve(isa);
    return (lv == KL_ISA_AVX2 || lv == KL_ISA_AVX512) && KH == KW && (KH == 3 || KH == 5) && SH == SW &&
           (SW == 1 || SW == 2) && DH == 1 && DW == 1;
}

/* Portable depthwise: one output pixel at a time. */
void kl_x86_generic_dwconv(const kl_dw_args *a) {
    for (size_t oh = 0; oh < a->OH; oh++)
        for (size_t ow = 0; ow < a->OW; ow++) {
            float s = a->bias;
            for (size_t kh = 0; kh < a->KH; kh++) {
                const float *row = a->x + (oh * a->SH + kh * a->DH) * a->WP + ow * a->SW;
                for (size_t kw = 0; kw < a->KW; kw++) s += row[kw * a->DW] * a->w[kh * a->KW + kw];
            }
            if (a->z) s += a->z[oh * a->OW + ow];
            a->y[oh * a->OW + ow] = kl_act_scalar(a->act, s);
        }
}

/* ---- conv.igemm --------------------------------------------------------------- */

/* The zero-padded band of conv.igemm / conv.igemmk: rows input rows from
 * ih0 (may be negative) of every channel, each wpb floats wide with the
 * input's column j - pad_left at column j (zero outside the input). */
static void copy_padded_band(const kl_conv2d_desc *d, const float *x, ptrdiff_t ih0, size_t rows, size_t wpb,
                             float *buf) {
    size_t HW = d->H * d->W, pl = KL_MIN(d->pad_left, wpb), ncopy = pl < wpb ? KL_MIN(d->W, wpb - pl) : 0;
    for (size_t c = 0; c < d->C; c++)
        for (size_t i = 0; i < rows; i++) {
            float *dst = buf + (c * rows + i) * wpb;
            ptrdiff_t ih = ih0 + (ptrdiff_t)i;
            if (ih < 0 || ih >= (ptrdiff_t)d->H) {
                memset(dst, 0, wpb * sizeof(float));
                continue;
            }
            memset(dst, 0, pl * sizeof(float));
            memcpy(dst + pl, x + c * HW + (size_t)ih * d->W, ncopy * sizeof(float));
            memset(dst + pl + ncopy, 0, (wpb - pl - ncopy) * sizeof(float));
        }
}

/* Output rows [oh0, oh1) of one image x, every channel, into y (rows
 * yrow0.. of each channel, ystride floats apart; z alike or NULL), IG_ROWS
 * at a time: the band's input rows are copied zero-padded into buf (the
 * thread's ig_ws_floats), then each output row is one kl_igemm_row (C^T,
 * pixel-major) written back to the planes by im2row's transposing
 * write-back (residual, activation). */
static void igemm_rows(const kl_conv2d_plan *p, float *buf, const float *x, size_t oh0, size_t oh1, float *y,
                       size_t ystride, size_t yrow0, const float *z) {
    const kl_conv2d_desc *d = &p->d;
    const kl_x86_ops *ops = kl_x86_ops_get(p->isa);
    size_t C = d->C, KH = d->KH, KW = d->KW, K = C * KH * KW, SH = d->stride_h, SW = d->stride_w;
    size_t rows = ig_rows(p), wpb = ig_wpb(p), cs = rows * wpb, mp = round_up(d->M, NP);
    int32_t *off = (int32_t *)(buf + round_up(C * cs, 16));
    float *ct = buf + round_up(C * cs, 16) + round_up(K, 16);
    for (size_t c = 0, k = 0; c < C; c++)
        for (size_t kh = 0; kh < KH; kh++)
            for (size_t kw = 0; kw < KW; kw++) off[k++] = (int32_t)(c * cs + kh * wpb + kw);
    kl_igemm_row a = {NULL, SW, off, K, p->wpack, p->a_ps, p->wpack + mp * K, d->M, p->OW, ct, mp};
    for (size_t b0 = oh0; b0 < oh1; b0 += IG_ROWS) {
        size_t b1 = KL_MIN(b0 + IG_ROWS, oh1);
        copy_padded_band(d, x, (ptrdiff_t)(b0 * SH) - (ptrdiff_t)d->pad_top, rows, wpb, buf);
        for (size_t oh = b0; oh < b1; oh++) {
            a.x = buf + (oh - b0) * SH * wpb;
            ops->igemm_row(&a);
            size_t yo = (oh - yrow0) * p->OW;
            kl_im2row_out wo = {ct, mp, p->OW, d->M, z ? z + yo : NULL, y + yo, ystride, d->act};
            ops->im2row_out(&wo);
        }
    }
}

/* Work items (image, band of IG_ROWS output rows), every channel. */
static void igemm_task(void *arg, size_t b, size_t e, int tid) {
    const dw_run *r = arg;
    const kl_conv2d_plan *p = r->p;
    const kl_conv2d_desc *d = &p->d;
    float *buf = (float *)(((uintptr_t)((char *)r->ws + (size_t)tid * ws_per_thread(p)) + 63) & ~(uintptr_t)63);
    size_t bands = (p->OH + IG_ROWS - 1) / IG_ROWS, OHW = p->OH * p->OW;
    for (size_t it = b; it < e; it++) {
        size_t n = it / bands, oh0 = (it % bands) * IG_ROWS, oh1 = KL_MIN(oh0 + IG_ROWS, p->OH);
        igemm_rows(p, buf, r->X + n * d->C * d->H * d->W, oh0, oh1, r->Y + n * d->M * OHW, OHW, 0,
                   r->Z ? r->Z + n * d->M * OHW : NULL);
    }
}

/* ---- conv.igemmk --------------------------------------------------------------- */

/* Work items (image, band of ik_rows output rows, group of IK_MG output
 * channels), the group fastest, split statically so that a thread copies
 * each band it meets once: the band's input rows zero-padded into buf,
 * then per K block of ik_kc taps one kl_igemm_blk over the band's pixels
 * (partial sums in C^T, pixel-major), then im2row's transposing write-back
 * (residual, activation). */
static void igemmk_task(void *arg, size_t b, size_t e, int tid) {
    const dw_run *r = arg;
    const kl_conv2d_plan *p = r->p;
    const kl_conv2d_desc *d = &p->d;
    const kl_x86_ops *ops = kl_x86_ops_get(p->isa);
    float *buf = (float *)(((uintptr_t)((char *)r->ws + (size_t)tid * ws_per_thread(p)) + 63) & ~(uintptr_t)63);
    size_t C = d->C, KH = d->KH, KW = d->KW, K = C * KH * KW, SH = d->stride_h, SW = d->stride_w;
    size_t rows = ik_rows_in(p), wpb = ik_wpb(p), cs = rows * wpb, HW = d->H * d->W, OHW = p->OH * p->OW;
    size_t Pmax = round_up(p->ik_rows * p->OW, KL_IGEMM_ROW_PAD), mp = round_up(d->M, NP);
    int32_t *off = (int32_t *)(buf + round_up(C * cs, 16));
    int32_t *poff = off + round_up(K, 16);
    float *ct = (float *)(poff + round_up(Pmax, 16));
    for (size_t c = 0, k = 0; c < C; c++)
        for (size_t kh = 0; kh < KH; kh++)
            for (size_t kw = 0; kw < KW; kw++) off[k++] = (int32_t)(c * cs + kh * wpb + kw);
    size_t bands = (p->OH + p->ik_rows - 1) / p->ik_rows, groups = (d->M + IK_MG - 1) / IK_MG;
    size_t have = SIZE_MAX, nq = 0, oh0 = 0;
    for (size_t it = b; it < e; it++) {
        size_t g = it % groups, band = (it / groups) % bands, n = it / groups / bands;
        const float *x = r->X + n * C * HW;
        if (it / groups != have) {
            have = it / groups;
            oh0 = band * p->ik_rows;
            size_t oh1 = KL_MIN(oh0 + p->ik_rows, p->OH);
            nq = (oh1 - oh0) * p->OW;
            copy_padded_band(d, x, (ptrdiff_t)(oh0 * SH) - (ptrdiff_t)d->pad_top, rows, wpb, buf);
            for (size_t q = 0; q < Pmax; q++) {
                size_t qq = q < nq ? q : 0;
                poff[q] = (int32_t)((qq / p->OW) * SH * wpb + (qq % p->OW) * SW);
            }
        }
        size_t c0 = g * IK_MG, mc = KL_MIN((size_t)IK_MG, d->M - c0);
        for (size_t k0 = 0; k0 < K; k0 += p->ik_kc) {
            kl_igemm_blk a = {buf, poff, off, k0, KL_MIN(K, k0 + p->ik_kc), p->wpack + (c0 / NP) * p->a_ps, p->a_ps,
                              k0 ? NULL : p->wpack + mp * K + c0, mc, nq, ct, IK_MG};
            ops->igemm_blk(&a);
        }
        size_t yo = (n * d->M + c0) * OHW + oh0 * p->OW;
        kl_im2row_out wo = {ct, IK_MG, nq, mc, r->Z ? r->Z + yo : NULL, r->Y + yo, OHW, d->act};
        ops->im2row_out(&wo);
    }
}

/* Portable conv.igemmk block: one pixel and channel at a time (the same sums). */
void kl_x86_generic_igemm_blk(const kl_igemm_blk *a) {
    for (size_t q = 0; q < a->nq; q++)
        for (size_t m = 0; m < a->M; m++) {
            const float *w = a->b + (m / 16) * a->bps + m % 16;
            float s = a->bias ? a->bias[m] : a->ct[q * a->ldc + m];
            for (size_t k = a->k0; k < a->k1; k++) s += a->x[(size_t)a->poff[q] + (size_t)a->off[k]] * w[k * 16];
            a->ct[q * a->ldc + m] = s;
        }
}

/* Portable conv.igemm row: one pixel and channel at a time (the same sums). */
void kl_x86_generic_igemm_row(const kl_igemm_row *a) {
    for (size_t q = 0; q < a->nq; q++)
        for (size_t m = 0; m < a->M; m++) {
            const float *b = a->b + (m / 16) * a->bps + m % 16;
            float s = a->bias[m];
            for (size_t k = 0; k < a->K; k++) s += a->x[q * a->S + (size_t)a->off[k]] * b[k * 16];
            a->ct[q * a->ldc + m] = s;
        }
}

/* ---- conv.direct ------------------------------------------------------------ */

#define CD_ROWS 4 /* output rows per work item */

/* Work items (image, band of CD_ROWS output rows), every channel. */
static void direct_task(void *arg, size_t b, size_t e, int tid) {
    (void)tid;
    const dw_run *r = arg;
    const kl_conv2d_plan *p = r->p;
    const kl_conv2d_desc *d = &p->d;
    const kl_x86_ops *ops = kl_x86_ops_get(p->isa);
    size_t bands = (p->OH + CD_ROWS - 1) / CD_ROWS, mp = round_up(d->M, KL_DIRECT_MB);
    size_t k = d->C * d->KH * d->KW, OHWM = p->OH * p->OW * d->M;
    kl_direct_args a = {0};
    a.w = p->wpack, a.bias = p->wpack + mp * k;
    a.C = d->C, a.H = d->H, a.W = d->W, a.M = d->M, a.KH = d->KH, a.KW = d->KW, a.S = d->stride_w;
    a.PT = d->pad_top, a.PL = d->pad_left, a.OH = p->OH, a.OW = p->OW;
    a.act = d->act;
    for (size_t it = b; it < e; it++) {
        size_t n = it / bands, band = it % bands;
        a.x = r->X + n * d->C * d->H * d->W;
        a.z = r->Z ? r->Z + n * OHWM : NULL;
        a.y = r->Y + n * OHWM;
        a.oh0 = band * CD_ROWS;
        a.oh1 = KL_MIN(a.oh0 + CD_ROWS, p->OH);
        ops->conv_direct(&a);
    }
}

/* Portable conv.direct: one output pixel at a time, taps outside the input skipped. */
void kl_x86_generic_conv_direct(const kl_direct_args *a) {
    size_t K = a->C * a->KH * a->KW;
    for (size_t m = 0; m < a->M; m++) {
        const float *wb = a->w + (m / KL_DIRECT_MB) * K * KL_DIRECT_MB + m % KL_DIRECT_MB;
        for (size_t oh = a->oh0; oh < a->oh1; oh++)
            for (size_t ow = 0; ow < a->OW; ow++) {
                float s = a->bias[m];
                for (size_t c = 0; c < a->C; c++)
                    for (size_t kh = 0; kh < a->KH; kh++) {
                        ptrdiff_t ih = (ptrdiff_t)(oh * a->S + kh) - (ptrdiff_t)a->PT;
                        if (ih < 0 || ih >= (ptrdiff_t)a->H) continue;
                        for (size_t kw = 0; kw < a->KW; kw++) {
                            ptrdiff_t iw = (ptrdiff_t)(ow * a->S + kw) - (ptrdiff_t)a->PL;
                            if (iw < 0 || iw >= (ptrdiff_t)a->W) continue;
                            s += a->x[(c * a->H + (size_t)ih) * a->W + (size_t)iw] *
                                 wb[((c * a->KH + kh) * a->KW + kw) * KL_DIRECT_MB];
                        }
                    }
                size_t q = kl_direct_yoff(a, m, oh) + ow;
                if (a->z) s += a->z[q];
                a->y[q] = kl_act_scalar(a->act, s);
            }
    }
}

kiln_status kl_conv2d_run(kl_pool *pool, const kl_conv2d_plan *p, const float *X, const float *Z, float *Y,
                          void *workspace) {
    if (!p) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "conv2d: NULL plan");
    return kl_conv2d_run_n(pool, p, p->d.N, X, Z, Y, workspace);
}

kiln_status kl_conv2d_run_n(kl_pool *pool, const kl_conv2d_plan *p, size_t N, const float *X, const float *Z,
                            float *Y, void *workspace) {
    if (!p || !X || !Y) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "conv2d: NULL plan, input or output");
    if (N == 0) return KILN_OK;
    const kl_conv2d_desc *d = &p->d;
    int t = kl_pool_threads(pool);
    if (t > d->threads) t = d->threads;
    if (!workspace) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "conv2d: %s needs a workspace", kl_conv_algo_name(p->algo));
    if (p->algo == KL_CONV_DEPTHWISE && p->wcb) {
        dw_run r = {p, X, Z, Y, workspace};
        kl_parallel_for_n(pool, t, N * ((d->C + KL_DWCB_C - 1) / KL_DWCB_C), dwcb_task, &r);
        return KILN_OK;
    }
    if (p->algo == KL_CONV_DEPTHWISE) {
        dw_run r = {p, X, Z, Y, workspace};
        kl_parallel_for_n(pool, t, N * d->C, dw_task, &r);
        return KILN_OK;
    }
    if (p->algo == KL_CONV_IGEMM) {
        dw_run r = {p, X, Z, Y, workspace};
        size_t bands = (p->OH + IG_ROWS - 1) / IG_ROWS;
        kl_parallel_for_dyn(pool, t, N * bands, 1, igemm_task, &r);
        return KILN_OK;
    }
    if (p->algo == KL_CONV_IGEMMK) {
        dw_run r = {p, X, Z, Y, workspace};
        size_t bands = (p->OH + p->ik_rows - 1) / p->ik_rows, groups = (d->M + IK_MG - 1) / IK_MG;
        kl_parallel_for_n(pool, t, N * bands * groups, igemmk_task, &r);
        return KILN_OK;
    }
    if (p->algo == KL_CONV_DIRECT) {
        dw_run r = {p, X, Z, Y, workspace};
        size_t bands = (p->OH + CD_ROWS - 1) / CD_ROWS;
        kl_parallel_for_dyn(pool, t, N * bands, 1, direct_task, &r);
        return KILN_OK;
    }
    conv_run r = {p, X, Z, Y, workspace, 0, 1, 0, 0, Z != NULL && Z == Y, N};
    if ((p->algo == KL_CONV_WINOGRAD2 || p->algo == KL_CONV_WINOGRAD4T) && t > 1 && d->group == 1 &&
        p->TH * p->TW <= p->tb && N < (size_t)t && p->Mg >= (size_t)t * NP) {
        /* an image's tiles in one block, fewer images than threads: per
         * image, the input transform by channels, then the products by
         * output channels (conv_wino2_in_task) */
        size_t panels = (p->Mg + NP - 1) / NP;
        r.tiles = KL_MIN(p->Cg, (size_t)t * 2);
        r.mchunks = KL_MIN(panels, (size_t)t * 2);
        r.mchunk_rows = ((panels + r.mchunks - 1) / r.mchunks) * NP;
        r.mchunks = (p->Mg + r.mchunk_rows - 1) / r.mchunk_rows;
        for (size_t n = 0; n < N; n++) {
            r.img = n;
            kl_parallel_for_n(pool, t, r.tiles, conv_wino2_in_task, &r);
            kl_parallel_for_dyn(pool, t, r.mchunks, 1, conv_wino2_mm_task, &r);
        }
        return KILN_OK;
    }
    if (p->algo == KL_CONV_IM2ROW || p->algo == KL_CONV_WINOGRAD2 || p->algo == KL_CONV_WINOGRAD4T) {
        /* items (image or group of images, group, chunk of 16-column panels of channels) */
        r.ni = p->algo == KL_CONV_IM2ROW ? im2row_images(p, N, t) : 1;
        size_t base = (N + r.ni - 1) / r.ni * d->group, panels = (p->Mg + NP - 1) / NP;
        if (base < (size_t)t) r.mchunks = KL_MIN(panels, ((size_t)t + base - 1) / base);
        r.mchunk_rows = ((panels + r.mchunks - 1) / r.mchunks) * NP;
        r.mchunks = (p->Mg + r.mchunk_rows - 1) / r.mchunk_rows;
        kl_parallel_for_dyn(pool, t, base * r.mchunks, 1,
                            p->algo == KL_CONV_IM2ROW ? conv_im2row_task : conv_wino2_task, &r);
        return KILN_OK;
    }
    if (p->algo == KL_CONV_WINOGRAD && t > 1 && d->group == 1 && p->Mg >= (size_t)t * 2 * MR &&
        (N * p->TH * p->TW + p->tb - 1) / p->tb < 2 * (size_t)t) {
        /* fewer blocks than two per thread: a block at a time, the input
         * transform by channels, then the products by output channels
         * (conv_wino_in_task); YOLOv8n's 80x80 maps (400 tiles) were two
         * blocks, each transformed twice */
        size_t T = N * p->TH * p->TW, nb = (T + p->tb - 1) / p->tb, mpanels = (p->Mg + MR - 1) / MR;
        r.tb = KL_MIN(p->tb, round_up((T + nb - 1) / nb, NP)); /* V's panels are whole */
        r.tiles = KL_MIN(p->Cg, (size_t)t * 2);
        r.mchunks = KL_MIN(mpanels, (size_t)t * 2);
        r.mchunk_rows = ((mpanels + r.mchunks - 1) / r.mchunks) * MR;
        r.mchunks = (p->Mg + r.mchunk_rows - 1) / r.mchunk_rows;
        for (r.t0 = 0; r.t0 < T; r.t0 += r.tb) {
            r.nblk = KL_MIN(r.tb, T - r.t0);
            kl_parallel_for_n(pool, t, r.tiles, conv_wino_in_task, &r);
            kl_parallel_for_dyn(pool, t, r.mchunks, 1, conv_wino_mm_task, &r);
        }
        return KILN_OK;
    }
    if (p->algo == KL_CONV_WINOGRAD) {
        /* as many blocks as fit the workspace, rounded up to a multiple of
         * the threads when there are few, then evened out */
        size_t T = N * p->TH * p->TW, nb = (T + p->tb - 1) / p->tb;
        if (nb * d->group < (size_t)t * 4) nb = round_up(nb, (size_t)t);
        r.tb = KL_MIN(p->tb, round_up((T + nb - 1) / nb, NP));
        r.tiles = (T + r.tb - 1) / r.tb;
    } else
        r.tiles = run_tiles(p, N, d->group, t, &r.nt);
    /* work items: (image, group, tile) for im2col/gemm1x1; (group, block of
     * tiles of all images) for winograd; times chunks of output channels */
    size_t base = (p->algo == KL_CONV_WINOGRAD ? 1 : N) * d->group * r.tiles;
    size_t mpanels = (p->Mg + MR - 1) / MR;
    /* at least two items per thread (chunks of output channels when there
     * are few tiles), so a late worker can be made up for */
    if (t > 1 && base < 2 * (size_t)t) r.mchunks = KL_MIN(mpanels, (2 * (size_t)t + base - 1) / base);
    r.mchunk_rows = ((mpanels + r.mchunks - 1) / r.mchunks) * MR;
    r.mchunks = (p->Mg + r.mchunk_rows - 1) / r.mchunk_rows;
    kl_parallel_for_dyn(pool, t, base * r.mchunks, 1, p->algo == KL_CONV_WINOGRAD ? conv_wino_task : conv_gemm_task,
                        &r);
    return KILN_OK;
}

/* ---- conv.scaled1x1: the packed weights scaled per image ------------------- */

size_t kl_conv2d_scaled_workspace_size(const kl_conv2d_plan *p, int threads, size_t N) {
    return kl_conv2d_workspace_size_n(p, threads, N) + p->wpack_floats * sizeof(float) + 64;
}

kiln_status kl_conv2d_run_scaled(kl_pool *pool, const kl_conv2d_plan *p, size_t N, const float *X, const float *S,
                                 size_t s_stride, const float *Z, float *Y, void *workspace) {
    if (!p || !X || !S || !Y || !workspace)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "conv.scaled1x1: NULL plan, input, scale, output or workspace");
    const kl_conv2d_desc *d = &p->d;
    bool one = d->KH == 1 && d->KW == 1 && d->stride_h == 1 && d->stride_w == 1 && !d->pad_top && !d->pad_left &&
               !d->pad_bottom && !d->pad_right && d->dil_h == 1 && d->dil_w == 1;
    if ((p->algo != KL_CONV_GEMM1X1 && p->algo != KL_CONV_IM2ROW) || d->group != 1 || !one)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT,
                         "conv.scaled1x1: the plan is %s, not an ungrouped 1x1 conv.gemm1x1 or conv.im2row",
                         kl_conv_algo_name(p->algo));
    int t = kl_pool_threads(pool);
    if (t > d->threads) t = d->threads;
    if (t < 1) t = 1;
    if (p->algo == KL_CONV_IM2ROW) {
        /* the scale goes into the transposed copy of X that im2row packs anyway */
        conv_run r = {p, X, Z, Y, workspace, 0, 1, 0, 0, Z != NULL && Z == Y, N, NULL, S, s_stride};
        r.ni = im2row_images(p, N, t);
        size_t panels = (p->Mg + NP - 1) / NP, base = (N + r.ni - 1) / r.ni;
        if (base < (size_t)t) r.mchunks = KL_MIN(panels, ((size_t)t + base - 1) / base);
        r.mchunk_rows = ((panels + r.mchunks - 1) / r.mchunks) * NP;
        r.mchunks = (p->Mg + r.mchunk_rows - 1) / r.mchunk_rows;
        kl_parallel_for_dyn(pool, t, base * r.mchunks, 1, conv_im2row_task, &r);
        return KILN_OK;
    }
    /* the scaled weights after the GEMM's per-thread workspace */
    float *ws = workspace;
    float *wsc = (float *)(((uintptr_t)((char *)workspace + kl_conv2d_workspace_size_n(p, t, 1)) + 63) & ~(uintptr_t)63);
    size_t K = p->Kg, panels = round_up(p->Mg, MR) / MR, HW = d->H * d->W, OHW = p->OH * p->OW;
    conv_run r = {p, NULL, NULL, NULL, (char *)ws, 0, 1, 0, 0, false, 1, wsc, NULL, 0};
    r.tiles = run_tiles(p, 1, 1, t, &r.nt);
    size_t mpanels = panels;
    if (t > 1 && r.tiles < 2 * (size_t)t) r.mchunks = KL_MIN(mpanels, (2 * (size_t)t + r.tiles - 1) / r.tiles);
    r.mchunk_rows = ((mpanels + r.mchunks - 1) / r.mchunks) * MR;
    r.mchunks = (p->Mg + r.mchunk_rows - 1) / r.mchunk_rows;
    for (size_t n = 0; n < N; n++) {
        const float *s = S + n * s_stride;
        if (n == 0 || s_stride) {
            /* packed A: panels of MR rows, k-major ([k][MR]); column k is input channel k */
            for (size_t pi = 0; pi < panels; pi++) {
                const float *src = p->wpack + pi * p->a_ps;
                float *dst = wsc + pi * p->a_ps;
                for (size_t k = 0; k < K; k++)
                    for (size_t i = 0; i < MR; i++) dst[k * MR + i] = src[k * MR + i] * s[k];
            }
        }
        r.X = X + n * d->C * HW;
        r.Z = Z ? Z + n * d->M * OHW : NULL;
        r.Y = Y + n * d->M * OHW;
        r.z_alias = Z != NULL && Z == Y;
        kl_parallel_for_dyn(pool, t, r.tiles * r.mchunks, 1, conv_gemm_task, &r);
    }
    return KILN_OK;
}

/* ---- conv.expand_dw: 1x1 expand (or a stem) + depthwise, a band of rows at a time ---- */

#define CDW_BUF_BYTES ((size_t)512 * 1024) /* expanded rows per thread: half of Zen 4's L2 */

struct kl_convdw_plan {
    kl_conv2d_plan *e, *dw; /* the first layer's (gemm1x1, direct or igemm) and the depthwise plans */
    size_t R;               /* output rows per band */
    size_t rows_cap;        /* input rows a band needs at most: (R-1)*S + K */
    size_t cs;              /* floats between two channels' rows in the buffer */
    int threads;
};

/* The first layer a band computes rows of: a 1x1 expansion (stride 1, no
 * pads) or a stem (few input channels, kl_conv2d_supports(DIRECT)). */
static bool cdw_first_ok(const kl_conv2d_desc *e, bool *is_1x1) {
    *is_1x1 = kl_conv2d_supports(e, KL_CONV_GEMM1X1) && e->group == 1;
    return *is_1x1 || (e->KH * e->KW > 1 && kl_conv2d_supports(e, KL_CONV_DIRECT));
}

bool kl_conv2d_expand_dw_supports(const kl_conv2d_desc *ein, const kl_conv2d_desc *dwin) {
    kl_conv2d_desc e = normalize(ein), d = normalize(dwin);
    bool is_1x1;
    size_t EH, EW;
    if (!cdw_first_ok(&e, &is_1x1) || check_desc(&e, &EH, &EW) != KILN_OK) {
        kl_error_clear();
        return false;
    }
    if (!kl_conv2d_supports(&d, KL_CONV_DEPTHWISE) || d.C != e.M || d.H != EH || d.W != EW) return false;
    if (d.pad_top >= d.KH || d.pad_left >= d.KW || d.pad_bottom >= d.KH || d.pad_right >= d.KW) return false;
    return kl_x86_dw_direct(d.isa, d.KH, d.KW, d.stride_h, d.stride_w, d.dil_h, d.dil_w, d.pad_top, d.pad_left,
                            d.pad_bottom, d.pad_right);
}

void kl_convdw_destroy(kl_convdw_plan *p) {
    if (!p) return;
    kl_conv2d_destroy(p->e);
    kl_conv2d_destroy(p->dw);
    kl_free(p);
}

kiln_status kl_convdw_prepare(const kl_conv2d_desc *e, const float *W1, const float *b1, const kl_conv2d_desc *dw,
                              const float *W2, const float *b2, size_t band_rows, kl_convdw_plan **out) {
    *out = NULL;
    if (!e || !dw || !W1 || !W2) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "conv.expand_dw: NULL descriptor or weights");
    if (!kl_conv2d_expand_dw_supports(e, dw))
        return kl_errorf(KILN_ERR_UNSUPPORTED,
                         "conv.expand_dw: cannot run %zux%zu/%zu %zu->%zu then depthwise k=%zux%zu s=%zu", e->KH, e->KW,
                         e->stride_h, e->C, e->M, dw->KH, dw->KW, dw->stride_h);
    kl_convdw_plan *p = kl_calloc(1, sizeof *p);
    if (!p) return KILN_ERR_NO_MEMORY;
    kl_conv2d_desc de = normalize(e), dd = normalize(dw);
    bool is_1x1;
    (void)cdw_first_ok(&de, &is_1x1);
    de.isa = dd.isa = kl_isa_resolve(dw->isa);
    /* a stem: the implicit GEMM where it pays on its own, else conv.direct */
    de.algo = is_1x1 ? KL_CONV_GEMM1X1 : kl_conv2d_igemm_pays(&de) ? KL_CONV_IGEMM : KL_CONV_DIRECT;
    dd.algo = KL_CONV_DEPTHWISE;
    p->threads = dd.threads;
    de.threads = dd.threads = 1; /* the workspace is this plan's */
    kiln_status s = kl_conv2d_prepare(&de, W1, b1, &p->e);
    if (!s) s = kl_conv2d_prepare(&dd, W2, b2, &p->dw);
    if (s) {
        kl_convdw_destroy(p);
        return s;
    }
    size_t S = dd.stride_h, K = dd.KH, row_bytes = de.M * dd.W * sizeof(float);
    size_t rows = CDW_BUF_BYTES / row_bytes, R = rows > K ? (rows - K) / S + 1 : 1;
    if (R > 4) R = R / 4 * 4; /* whole row blocks of the depthwise kernel (KL_DW_R) */
    if (band_rows) R = band_rows;
    /* a plane of exactly one 16-pixel panel: B's row stride H*W equals the
     * packed panel width, which the GEMM kernels read as packed (whole
     * vectors, no tail masks), so a band must start at pixel 0 and cover
     * the panel: one band of every row */
    if (is_1x1 && dd.H * dd.W == NP) R = p->dw->OH;
    p->R = KL_MIN(R, p->dw->OH);
    p->rows_cap = KL_MIN((p->R - 1) * S + K, dd.H);
    p->cs = round_up(p->rows_cap * dd.W, 16);
    *out = p;
    return KILN_OK;
}

void kl_convdw_out_hw(const kl_convdw_plan *p, size_t *OH, size_t *OW) { kl_conv2d_out_hw(p->dw, OH, OW); }

/* floats per thread: the band buffer, then the stem's own (conv.igemm's padded rows) */
static size_t cdw_buf_floats(const kl_convdw_plan *p) { return round_up(p->cs * p->e->d.M, 16); }
static size_t cdw_ws_per_thread(const kl_convdw_plan *p) {
    size_t f = cdw_buf_floats(p) + (p->e->algo == KL_CONV_IGEMM ? ig_ws_floats(p->e) : 0);
    return f * sizeof(float) + 64;
}

size_t kl_convdw_workspace_size(const kl_convdw_plan *p, int threads) {
    if (threads < 1) threads = 1;
    if (threads > p->threads) threads = p->threads;
    return cdw_ws_per_thread(p) * (size_t)threads;
}

typedef struct cdw_run {
    const kl_convdw_plan *p;
    const float *X;
    float *Y;
    char *ws;
    size_t bands, chunks; /* bands per image, chunks (runs of bands) per image */
} cdw_run;

/* Items are (image, run of consecutive bands): a band's input rows shared
 * with the previous band of the run are moved to the buffer's top, the
 * others computed by the first layer (the 1x1 product, or the stem's rows);
 * then the depthwise kernel reads the buffer as a plane of those rows
 * (virtual top padding where the band starts above row 0; rows past the
 * plane's end are past the input's). */
static void cdw_task(void *arg, size_t b, size_t e, int tid) {
    const cdw_run *r = arg;
    const kl_convdw_plan *p = r->p;
    const kl_conv2d_plan *pe = p->e, *pd = p->dw;
    const kl_conv2d_desc *de = &pe->d, *dd = &pd->d;
    const kl_x86_ops *ops = kl_x86_ops_get(pd->isa);
    float *buf = (float *)(((uintptr_t)(r->ws + (size_t)tid * cdw_ws_per_thread(p)) + 63) & ~(uintptr_t)63);
    float *ebuf = buf + cdw_buf_floats(p); /* conv.igemm's rows */
    size_t H = dd->H, W = dd->W, XHW = de->H * de->W, S = dd->stride_h, K = dd->KH, P = dd->pad_top, C = dd->C;
    size_t OH = pd->OH, OW = pd->OW, OHW = OH * OW, khw = dd->KH * dd->KW, cs = p->cs;
    size_t per = (r->bands + r->chunks - 1) / r->chunks;
    kl_dw_args a = {0};
    a.OW = OW, a.KH = dd->KH, a.KW = dd->KW, a.SH = S, a.SW = dd->stride_w, a.DH = 1, a.DW = 1;
    a.act = dd->act, a.direct = 1, a.W = W, a.WP = W, a.PL = dd->pad_left;
    kl_direct_args da = {0}; /* a conv.direct stem */
    if (pe->algo == KL_CONV_DIRECT) {
        size_t mp = round_up(de->M, KL_DIRECT_MB), k = de->C * de->KH * de->KW;
        da.w = pe->wpack, da.bias = pe->wpack + mp * k;
        da.C = de->C, da.H = de->H, da.W = de->W, da.M = de->M, da.KH = de->KH, da.KW = de->KW, da.S = de->stride_w;
        da.PT = de->pad_top, da.PL = de->pad_left, da.OH = pe->OH, da.OW = pe->OW;
        da.act = de->act, da.y = buf, da.ystride = cs;
    }
    for (size_t it = b; it < e; it++) {
        size_t n = it / r->chunks, ch = it % r->chunks;
        size_t b0 = ch * per, b1 = KL_MIN(r->bands, b0 + per);
        const float *x = r->X + n * de->C * XHW;
        float *y = r->Y + n * C * OHW;
        size_t r0 = 0, r1 = 0; /* input rows [r0, r1) are in the buffer */
        for (size_t band = b0; band < b1; band++) {
            size_t oh0 = band * p->R, oh1 = KL_MIN(OH, oh0 + p->R);
            size_t ih0 = oh0 * S > P ? oh0 * S - P : 0;
            size_t ih1 = KL_MIN(H, (oh1 - 1) * S + K - P);
            if (ih1 < ih0) ih1 = ih0; /* the band lies in the bottom padding */
            size_t keep = 0;
            if (r1 > r0 && ih0 >= r0 && ih0 < r1) {
                keep = KL_MIN(r1, ih1) - ih0;
                if (ih0 > r0 && keep)
                    for (size_t c = 0; c < de->M; c++)
                        memmove(buf + c * cs, buf + c * cs + (ih0 - r0) * W, keep * W * sizeof(float));
            }
            size_t a0 = ih0 + keep;
            if (pe->algo == KL_CONV_GEMM1X1) {
                /* the new rows' 1x1 product in tiles of NT pixels (conv.gemm1x1's): a
                 * tile of X stays in L1 over the output channels */
                for (size_t q = a0 * W; q < ih1 * W; q += NT) {
                    size_t np = KL_MIN((size_t)NT, ih1 * W - q);
                    kl_gemm_packed pk = {pe->wpack, pe->a_ps, x + q, NP, XHW, NULL, 0, 0};
                    kl_sgemm_packed_run(pe->isa, de->M, np, de->C, &pk, buf + (q - ih0 * W), cs, 1.0f, 0.0f, NULL,
                                        pe->bias, NULL, 0, de->act);
                }
            } else if (a0 < ih1 && pe->algo == KL_CONV_IGEMM) {
                igemm_rows(pe, ebuf, x, a0, ih1, buf, cs, ih0, NULL);
            } else if (a0 < ih1) {
                da.x = x, da.oh0 = a0, da.oh1 = ih1, da.yrow0 = ih0;
                kl_x86_ops_get(pe->isa)->conv_direct(&da);
            }
            r0 = ih0, r1 = ih1;
            a.H = ih1 - ih0;
            a.PT = P + ih0 - oh0 * S;
            a.OH = oh1 - oh0;
            a.HP = a.H;
            for (size_t c = 0; c < C; c++) {
                a.x = buf + c * cs;
                a.w = pd->wpack + c * khw;
                a.bias = pd->bias ? pd->bias[c] : 0.0f;
                a.y = y + c * OHW + oh0 * OW;
                ops->dwconv(&a);
            }
        }
    }
}

kiln_status kl_convdw_run_n(kl_pool *pool, const kl_convdw_plan *p, size_t N, const float *X, float *Y,
                            void *workspace) {
    if (!p || !X || !Y || !workspace)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "conv.expand_dw: NULL plan, input, output or workspace");
    if (N == 0) return KILN_OK;
    int t = kl_pool_threads(pool);
    if (t > p->threads) t = p->threads;
    if (t < 1) t = 1;
    cdw_run r = {p, X, Y, workspace, (p->dw->OH + p->R - 1) / p->R, 1};
    if (N < (size_t)t) r.chunks = KL_MIN(r.bands, ((size_t)t + N - 1) / N);
    kl_parallel_for_n(pool, t, N * r.chunks, cdw_task, &r);
    return KILN_OK;
}
