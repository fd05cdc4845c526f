/*
 * gemm.c — the ISA-free SGEMM driver: packing, cache blocking (NC over N, KC
 * over K, MC over M), the thread split, the generic C micro-kernel, and the
 * batched form.  Every ISA kernel is reached through kl_x86_ops (kernels.h).
 */
#include "cpu/x86/gemm.h"

#include <stdint.h>
#include <string.h>

#include "core/core.h"
#include "cpu/x86/isa.h"
#include "cpu/x86/kernels.h"

#define MR KL_SGEMM_MR
#define NP KL_SGEMM_NP
#define KC 320 /* largest K block; blocks are evened out (576 -> 2 x 288) */
#define NC 512
#define MC 120
#define PACK_HDR 64
#define MAGIC_A 0x41504c4bu /* "KLPA" */
#define MAGIC_B 0x42504c4bu /* "KLPB" */
/* Products below this many multiply-adds per thread stay on one thread. */
#define THREAD_MIN_MACS ((size_t)1 << 17)

/* Header in front of packed panels; the format id names MR/NP so a future
 * layout is refused instead of misread. */
typedef struct pack_hdr {
    uint32_t magic, format;
    uint64_t k, mn;
} pack_hdr;
#define FORMAT_ID ((uint32_t)(MR << 8 | NP))

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

size_t kl_sgemm_pack_b_size(size_t K, size_t N) { return PACK_HDR + round_up(N, NP) * K * sizeof(float); }
size_t kl_sgemm_pack_a_size(size_t M, size_t K) { return PACK_HDR + round_up(M, MR) * K * sizeof(float); }

/* op(B)[k0..k0+kc) x [n0..n0+nc) into 16-column panels, panel stride ps floats. */
static void pack_b_block(const float *B, size_t ldb, bool transB, size_t k0, size_t kc, size_t n0, size_t nc,
                         float *dst, size_t ps) {
    for (size_t j = 0; j < nc; j += NP) {
        size_t w = KL_MIN((size_t)NP, nc - j);
        float *d = dst + (j / NP) * ps;
        if (!transB) {
            const float *s = B + k0 * ldb + n0 + j;
            for (size_t k = 0; k < kc; k++, s += ldb, d += NP) {
                if (w == NP) {
                    memcpy(d, s, NP * sizeof(float));
                } else {
                    memcpy(d, s, w * sizeof(float));
                    memset(d + w, 0, (NP - w) * sizeof(float));
                }
            }
        } else {
            /* a 16 x 16 block transpose at a time: the block's 16 panel rows (1 KiB) are
             * written whole while in L1 (column by column over all of K, a K-long run of
             * panel rows could leave L1 before its next column came).  ViT-B/16's first run
             * packs 344 MB this way: perf put this function at 6.0% of a one-run bench
             * before and 5.0% after, so it is bound by the copy itself */
            const float *rows[NP];
            for (size_t c = 0; c < NP; c++) rows[c] = c < w ? B + (n0 + j + c) * ldb + k0 : NULL;
            for (size_t k = 0; k < kc; k += 16) {
                size_t kn = KL_MIN((size_t)16, kc - k);
                for (size_t c = 0; c < NP; c++) {
                    float *dd = d + k * NP + c;
                    if (rows[c]) {
                        for (size_t q = 0; q < kn; q++) dd[q * NP] = rows[c][k + q];
                    } else {
                        for (size_t q = 0; q < kn; q++) dd[q * NP] = 0.0f;
                    }
                }
            }
        }
    }
}

/* op(A)[m0..m0+mc) x [k0..k0+kc) into MR-row micro-panels, panel stride ps. */
static void pack_a_block(const float *A, size_t lda, bool transA, size_t m0, size_t mc, size_t k0, size_t kc,
                         float *dst, size_t ps) {
    for (size_t i = 0; i < mc; i += MR) {
        size_t h = KL_MIN((size_t)MR, mc - i);
        float *d = dst + (i / MR) * ps;
        if (!transA && h == MR) {
            /* a whole micro-panel: six row pointers, no per-element test */
            const float *r0 = A + (m0 + i) * lda + k0, *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda,
                        *r4 = r3 + lda, *r5 = r4 + lda;
            for (size_t k = 0; k < kc; k++, d += MR) {
                d[0] = r0[k], d[1] = r1[k], d[2] = r2[k];
                d[3] = r3[k], d[4] = r4[k], d[5] = r5[k];
            }
        } else if (!transA) {
            const float *rows[MR];
            for (size_t r = 0; r < MR; r++) rows[r] = r < h ? A + (m0 + i + r) * lda + k0 : NULL;
            for (size_t k = 0; k < kc; k++, d += MR)
                for (size_t r = 0; r < MR; r++) d[r] = r < h ? rows[r][k] : 0.0f;
        } else {
            const float *s = A + k0 * lda + m0 + i;
            for (size_t k = 0; k < kc; k++, s += lda, d += MR)
                for (size_t r = 0; r < MR; r++) d[r] = r < h ? s[r] : 0.0f;
        }
    }
}

void kl_sgemm_pack_a_panels(const float *A, size_t lda, bool transA, size_t M, size_t K, float *dst) {
    pack_a_block(A, lda, transA, 0, M, 0, K, dst, K * MR);
}
void kl_sgemm_pack_b_panels(const float *B, size_t ldb, bool transB, size_t K, size_t N, float *dst) {
    pack_b_block(B, ldb, transB, 0, K, 0, N, dst, K * NP);
}
void kl_sgemm_pack_b(const float *B, size_t ldb, bool transB, size_t K, size_t N, void *packed) {
    pack_hdr h = {MAGIC_B, FORMAT_ID, K, N};
    memset(packed, 0, PACK_HDR);
    memcpy(packed, &h, sizeof h);
    pack_b_block(B, ldb, transB, 0, K, 0, N, (float *)((char *)packed + PACK_HDR), K * NP);
}

void kl_sgemm_pack_a(const float *A, size_t lda, bool transA, size_t M, size_t K, void *packed) {
    pack_hdr h = {MAGIC_A, FORMAT_ID, K, M};
    memset(packed, 0, PACK_HDR);
    memcpy(packed, &h, sizeof h);
    pack_a_block(A, lda, transA, 0, M, 0, K, (float *)((char *)packed + PACK_HDR), K * MR);
}

const float *kl_sgemm_packed_a_data(const void *packed, size_t *panel_stride) {
    pack_hdr h;
    memcpy(&h, packed, sizeof h);
    *panel_stride = (size_t)h.k * MR;
    return (const float *)((const char *)packed + PACK_HDR);
}

const float *kl_sgemm_packed_b_data(const void *packed, size_t *panel_stride) {
    pack_hdr h;
    memcpy(&h, packed, sizeof h);
    *panel_stride = (size_t)h.k * NP;
    return (const float *)((const char *)packed + PACK_HDR);
}

/* Checks a packed header against the expected magic and dimensions. */
static kiln_status check_packed(const void *packed, uint32_t magic, size_t k, size_t mn, const char *what) {
    pack_hdr h;
    memcpy(&h, packed, sizeof h);
    if (h.magic != magic || h.format != FORMAT_ID)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "sgemm: packed %s is not in this kernel's format", what);
    if (h.k != k || h.mn != mn)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "sgemm: packed %s is %llu x %llu, the call needs %zu x %zu",
                         what, (unsigned long long)(magic == MAGIC_B ? h.k : h.mn),
                         (unsigned long long)(magic == MAGIC_B ? h.mn : h.k), magic == MAGIC_B ? k : mn,
                         magic == MAGIC_B ? mn : k);
    return KILN_OK;
}

/* ---- the generic micro-kernel (6 x 16, portable C) ------------------------ */

void kl_x86_generic_sgemm_kernel(size_t kc, const float *a, const float *b, size_t bstride, size_t bk, float *c,
                                 size_t ldc, size_t m, size_t n, const kl_ukargs *u) {
    (void)bstride;
    float acc[MR][NP];
    memset(acc, 0, sizeof acc);
    size_t nb = bk != NP && n < NP ? n : NP; /* B in place: no column past n is read */
    for (size_t k = 0; k < kc; k++, a += MR, b += bk)
        for (size_t i = 0; i < MR; i++)
            for (size_t j = 0; j < nb; j++) acc[i][j] += a[i] * b[j];
    for (size_t i = 0; i < m; i++) {
        float *cr = c + i * ldc;
        for (size_t j = 0; j < n; j++) {
            float v = u->alpha * acc[i][j];
            if (u->first) {
                if (u->beta != 0.0f) v += u->beta * cr[j];
            } else {
                v += cr[j];
            }
            if (u->last) {
                if (u->col_bias) v += u->col_bias[j];
                if (u->row_bias) v += u->row_bias[i];
                if (u->z) v += u->z[i * u->ldz + j];
                v = kl_act_scalar(u->act, v);
            }
            cr[j] = v;
        }
    }
}

/* ---- the blocked single-thread core ---------------------------------------- */

typedef struct gemm_job {
    const kl_x86_ops *ops;
    size_t M, N, K;
    const float *A;
    size_t lda;
    bool transA;
    const float *pa; /* packed A panels (no header) or NULL */
    size_t pa_ps;
    const float *B;
    size_t ldb;
    bool transB;
    const float *pb;
    size_t pb_ps, pb_k; /* panel stride; floats between k steps (NP when packed) */
    float *C;
    size_t ldc;
    float alpha, beta;
    const float *col_bias, *row_bias, *Z;
    size_t ldz;
    kl_act act;
    const float *pf_b; /* see kl_gemm_packed */
    size_t pf_ps, pf_panels;
} gemm_job;

/* The micro-kernel calls of one packed A block (rows [ic, ic+mc), panels
 * at ap, stride aps) against one B block (columns [jc, jc+nc), panels at
 * bp, stride bps, bk floats between k steps) over kc steps of K. */
static void gemm_block(const gemm_job *j, kl_ukargs *u, size_t m0, size_t ic, size_t mc, const float *ap, size_t aps,
                       size_t jc, size_t nc, const float *bp, size_t bps, size_t bk, size_t pc, size_t kc) {
    const kl_x86_ops *ops = j->ops;
    size_t nr = ops->nr;
    for (size_t ir = 0; ir < mc; ir += MR) {
        size_t m = KL_MIN((size_t)MR, mc - ir);
        size_t row = ic + ir;
        size_t pi = (row - m0) / MR;
        u->row_bias = j->row_bias ? j->row_bias + row : NULL;
        for (size_t jr = 0; jr < nc; jr += nr) {
            /* row panels 1..pf_panels (panel 0 is the one that
             * brings this call's B in) */
            u->pf = j->pf_b && jr == 0 && pi >= 1 && pi <= j->pf_panels ? j->pf_b + (pi - 1) * j->pf_ps + pc * NP
                                                                          : NULL;
            u->pf_lines = 0;
            u->pf_n = 1;
            /* Operands packed before the run (weights) come from memory
             * once per run, each block of them a new stream the hardware
             * prefetcher finds late.  The first row panel fetches the next
             * tile's B panels while it runs one (a pre-packed B); every
             * row panel fetches the next one's A block during its first
             * tile (the first row panel: during its last). */
            bool last_tile = jr + nr >= nc;
            if (!u->pf && ir == 0 && !last_tile && bk == NP && j->pb) {
                u->pf = bp + ((jr + nr) / NP) * bps;
                u->pf_n = (KL_MIN(nr, nc - jr - nr) + NP - 1) / NP;
                u->pf_ps = bps;
            } else if (!u->pf && (ir == 0 ? last_tile : jr == 0) && ir + MR < mc) {
                u->pf = ap + (ir / MR + 1) * aps;
                u->pf_lines = (kc * MR + 2 * KL_SGEMM_NP - 1) / KL_SGEMM_NP;
            }
            size_t n = KL_MIN(nr, nc - jr);
            size_t col = jc + jr;
            u->col_bias = j->col_bias ? j->col_bias + col : NULL;
            u->z = j->Z ? j->Z + row * j->ldz + col : NULL;
            ops->sgemm(kc, ap + (ir / MR) * aps, bp + (jr / NP) * bps, bps, bk, j->C + row * j->ldc + col, j->ldc, m,
                       n, u);
        }
    }
}

/* gemm_block with the loops the other way round (jr outer, ir inner): one
 * B micro-panel (kc x nr, 32 KiB at kc = 128 and nr = 64) stays in L1
 * while every row panel of the A block runs against it, and the A panels
 * (MR x kc) stream from L2, instead of each row panel streaming the whole
 * B block from L2 (MR = 6 rows of A per 4 vectors of B: 256 bytes of B
 * per k step and 24 FMAs).  For a packed B against a plain A (weights
 * read from DRAM each run: ViT, text encoders), on AVX-512 (nr = 64). */
static void gemm_block_bl1(const gemm_job *j, kl_ukargs *u, size_t ic, size_t mc, const float *ap, size_t aps,
                           size_t jc, size_t nc, const float *bp, size_t bps, size_t bk, size_t kc) {
    const kl_x86_ops *ops = j->ops;
    size_t nr = ops->nr;
    for (size_t jr = 0; jr < nc; jr += nr) {
        size_t n = KL_MIN(nr, nc - jr);
        size_t col = jc + jr;
        u->col_bias = j->col_bias ? j->col_bias + col : NULL;
        for (size_t ir = 0; ir < mc; ir += MR) {
            size_t m = KL_MIN((size_t)MR, mc - ir);
            size_t row = ic + ir;
            u->row_bias = j->row_bias ? j->row_bias + row : NULL;
            /* the next row panel's A block during this call */
            u->pf = ir + MR < mc ? ap + (ir / MR + 1) * aps : NULL;
            u->pf_lines = u->pf ? (kc * MR + 2 * KL_SGEMM_NP - 1) / KL_SGEMM_NP : 0;
            u->pf_n = 1;
            u->z = j->Z ? j->Z + row * j->ldz + col : NULL;
            ops->sgemm(kc, ap + (ir / MR) * aps, bp + (jr / NP) * bps, bps, bk, j->C + row * j->ldc + col, j->ldc, m,
                       n, u);
        }
    }
}

/* K block of gemm_block_bl1, or 0 for the usual order.  Measured on an
 * Intel Ice Lake (Xeon, AVX-512, 48 KiB L1): ViT-B/16 batch 1, 1 thread,
 * 357 -> 311 ms (best of 5 rounds, alternating); kc = 192 (48 KiB of B)
 * 336 ms.  With AVX2's 6x16 kernel it lost (423 -> 486 ms), and it is
 * unmeasured on AMD's Zen 4/5, whose L2 feeds the usual order well (kiln
 * matched ONNX Runtime there on ViT): so AVX-512 on Intel only, unless
 * KILN_GEMM_BL1=1 (any AVX-512 CPU) or 0 (never). */
#define KC_BL1 128
static size_t gemm_bl1_kc(const kl_x86_ops *ops) { return kl_cpu_isa_get()->gemm_bl1 && ops->nr >= 64 ? KC_BL1 : 0; }

/* K block of the B-in-L1 order for products whose A was packed before the
 * run (convolution weights: 1x1 layers reading X in place, im2col panels,
 * Winograd) and that span more than one micro-panel of columns, or 0 for
 * the usual order.  With the usual order each 6-row panel of A streams
 * the block's B (kc x 64 columns, 73 KiB at kc = 288) from L2 again.
 * KILN_GEMM_BL1P=0 turns it off, =KC sets the K block (default 128; isa.c).
 * Ice Lake, kiln-bench-kernels conv.gemm1x1, 1 thread, best of 30-40,
 * three alternating rounds: MobileNet-V2's 14x14 layers +8-15%, ResNet-50's
 * 56x56/28x28 layers +5%; on 7x7 maps (one panel of columns) it lost. */
static size_t gemm_bl1p_kc(const kl_x86_ops *ops) {
    const kl_cpu_isa *c = kl_cpu_isa_get();
    return c->gemm_bl1 && ops->nr >= 64 ? c->gemm_bl1p_kc : 0;
}

/* Rows [m0,m1) x columns [n0,n1) of the job; m0 is a multiple of MR and n0
 * of NP.  wsA/wsB: MC*KC and KC*NC floats (used only for plain operands). */
static void gemm_rect(const gemm_job *j, size_t m0, size_t m1, size_t n0, size_t n1, float *wsA, float *wsB) {
    size_t mc_max = j->pa ? round_up(m1 - m0, MR) : MC;
    size_t nk = (j->K + KC - 1) / KC, kstep = nk ? (j->K + nk - 1) / nk : 0;
    kl_ukargs u;
    u.pf = NULL;
    u.pf_lines = 0;
    u.pf_n = 1;
    u.pf_ps = 0;
    u.alpha = j->alpha;
    u.beta = j->beta;
    u.ldz = j->ldz;
    u.act = j->act;
    /* gemm_block_bl1: N blocks outer, so that C's block stays in L2 over
     * the K blocks; a plain A packed per block (ViT's products), or
     * pre-packed weights spanning more than one micro-panel of columns */
    size_t kc1 = !j->pb ? 0 : !j->pa ? gemm_bl1_kc(j->ops) : n1 - n0 > j->ops->nr ? gemm_bl1p_kc(j->ops) : 0;
    if (kc1) {
        size_t nk1 = (j->K + kc1 - 1) / kc1, ks1 = nk1 ? (j->K + nk1 - 1) / nk1 : 0;
        for (size_t jc = n0; jc < n1; jc += NC) {
            size_t nc = KL_MIN((size_t)NC, n1 - jc);
            size_t pc = 0;
            do {
                size_t kc = KL_MIN(ks1, j->K - pc);
                u.first = pc == 0;
                u.last = pc + kc >= j->K;
                for (size_t ic = m0; ic < m1; ic += mc_max) {
                    size_t mc = KL_MIN(mc_max, m1 - ic);
                    const float *ap = wsA;
                    size_t aps = kc * MR;
                    if (j->pa) {
                        ap = j->pa + (ic / MR) * j->pa_ps + pc * MR;
                        aps = j->pa_ps;
                    } else {
                        pack_a_block(j->A, j->lda, j->transA, ic, mc, pc, kc, wsA, kc * MR);
                    }
                    gemm_block_bl1(j, &u, ic, mc, ap, aps, jc, nc, j->pb + (jc / NP) * j->pb_ps + pc * j->pb_k,
                                   j->pb_ps, j->pb_k, kc);
                }
                pc += kc;
            } while (pc < j->K);
        }
        return;
    }
    if (!j->pa && j->pb && n1 - n0 > NC) {
        /* a plain A against a packed B wider than one NC block: each A
         * block is packed once per K block and runs against every NC block
         * of B (packing it per NC block cost ViT-B/16 3% of its time) */
        size_t pc = 0;
        do {
            size_t kc = KL_MIN(kstep, j->K - pc);
            u.first = pc == 0;
            u.last = pc + kc >= j->K;
            for (size_t ic = m0; ic < m1; ic += mc_max) {
                size_t mc = KL_MIN(mc_max, m1 - ic);
                pack_a_block(j->A, j->lda, j->transA, ic, mc, pc, kc, wsA, kc * MR);
                for (size_t jc = n0; jc < n1; jc += NC) {
                    size_t nc = KL_MIN((size_t)NC, n1 - jc);
                    gemm_block(j, &u, m0, ic, mc, wsA, kc * MR, jc, nc, j->pb + (jc / NP) * j->pb_ps + pc * j->pb_k,
                               j->pb_ps, j->pb_k, pc, kc);
                }
            }
            pc += kc;
        } while (pc < j->K);
        return;
    }
    for (size_t jc = n0; jc < n1; jc += NC) {
        size_t nc = KL_MIN((size_t)NC, n1 - jc);
        size_t pc = 0;
        do {
            size_t kc = KL_MIN(kstep, j->K - pc);
            u.first = pc == 0;
            u.last = pc + kc >= j->K;
            const float *bp;
            size_t bps;
            size_t bk = NP;
            if (j->pb) {
                bp = j->pb + (jc / NP) * j->pb_ps + pc * j->pb_k;
                bps = j->pb_ps;
                bk = j->pb_k;
            } else {
                pack_b_block(j->B, j->ldb, j->transB, pc, kc, jc, nc, wsB, kc * NP);
                bp = wsB;
                bps = kc * NP;
            }
            for (size_t ic = m0; ic < m1; ic += mc_max) {
                size_t mc = KL_MIN(mc_max, m1 - ic);
                const float *ap;
                size_t aps;
                if (j->pa) {
                    ap = j->pa + (ic / MR) * j->pa_ps + pc * MR;
                    aps = j->pa_ps;
                } else {
                    pack_a_block(j->A, j->lda, j->transA, ic, mc, pc, kc, wsA, kc * MR);
                    ap = wsA;
                    aps = kc * MR;
                }
                gemm_block(j, &u, m0, ic, mc, ap, aps, jc, nc, bp, bps, bk, pc, kc);
            }
            pc += kc;
        } while (pc < j->K);
    }
}

void kl_sgemm_packed_run(kl_isa isa, size_t M, size_t N, size_t K, const kl_gemm_packed *p, float *C, size_t ldc,
                         float alpha, float beta, const float *col_bias, const float *row_bias, const float *Z,
                         size_t ldz, kl_act act) {
    gemm_job j = {0};
    j.ops = kl_x86_ops_get(isa);
    j.M = M, j.N = N, j.K = K;
    j.pa = p->a, j.pa_ps = p->a_ps, j.pb = p->b, j.pb_ps = p->b_ps, j.pb_k = p->b_k ? p->b_k : NP;
    j.C = C, j.ldc = ldc, j.alpha = alpha, j.beta = beta;
    j.col_bias = col_bias, j.row_bias = row_bias, j.Z = Z, j.ldz = ldz, j.act = act;
    j.pf_b = p->pf_b, j.pf_ps = p->pf_ps, j.pf_panels = p->pf_panels;
    if (M && N) gemm_rect(&j, 0, M, 0, N, NULL, NULL);
}

/* ---- threading ----------------------------------------------------------- */

static size_t per_thread_ws(bool a_packed, bool b_packed) {
    size_t f = (a_packed ? 0 : (size_t)MC * KC) + (b_packed ? 0 : (size_t)KC * NC);
    return f ? f * sizeof(float) + 128 : 0;
}

/* Threads worth using for M x N x K multiply-adds. */
static int pick_threads(kl_pool *pool, int max_threads, size_t M, size_t N, size_t K) {
    int t = kl_pool_threads(pool);
    if (max_threads > 0 && max_threads < t) t = max_threads;
    double macs = (double)M * (double)N * (double)(K ? K : 1);
    double want = macs / (double)THREAD_MIN_MACS;
    if (want < t) t = want < 1 ? 1 : (int)want;
    return t;
}

size_t kl_sgemm_workspace_size(const kl_gemm_args *a, int threads) {
    if (threads < 1) threads = 1;
    return per_thread_ws(a->packed_a != NULL, a->packed_b != NULL) * (size_t)threads;
}

typedef struct gemm_split {
    const gemm_job *job;
    size_t items;      /* batch items (1 for a single product) */
    const kl_gemm_batch_strides *s;
    bool split_m;      /* units are `unit` rows (a multiple of MR), else `unit` columns */
    size_t unit, units_per_item;
    char *ws;
    size_t ws_per_thread;
} gemm_split;

static float *align64(char *p) { return (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }

/* Task: units [b, e) of the flattened (item, unit) space. */
static void gemm_task(void *arg, size_t b, size_t e, int tid) {
    const gemm_split *s = arg;
    float *wsA = NULL, *wsB = NULL;
    if (s->ws) {
        char *base = s->ws + (size_t)tid * s->ws_per_thread;
        wsA = align64(base);
        wsB = wsA + (s->job->pa ? 0 : (size_t)MC * KC);
    }
    while (b < e) {
        size_t item = b / s->units_per_item, u0 = b % s->units_per_item;
        size_t u1 = KL_MIN(s->units_per_item, u0 + (e - b));
        gemm_job j = *s->job;
        if (s->items > 1 || item) {
            j.A = j.A ? j.A + item * s->s->a : NULL;
            j.B = j.B ? j.B + item * s->s->b : NULL;
            j.C += item * s->s->c;
            j.Z = j.Z ? j.Z + item * s->s->z : NULL;
            j.col_bias = j.col_bias ? j.col_bias + item * s->s->col_bias : NULL;
            j.row_bias = j.row_bias ? j.row_bias + item * s->s->row_bias : NULL;
        }
        if (s->split_m)
            gemm_rect(&j, u0 * s->unit, KL_MIN(j.M, u1 * s->unit), 0, j.N, wsA, wsB);
        else
            gemm_rect(&j, 0, j.M, u0 * s->unit, KL_MIN(j.N, u1 * s->unit), wsA, wsB);
        b += u1 - u0;
    }
}

/* Validates `a` and fills a job for it. */
static kiln_status make_job(const kl_gemm_args *a, gemm_job *j) {
    memset(j, 0, sizeof *j);
    if (!a->C && a->M && a->N) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "sgemm: C is NULL");
    if (a->ldc < a->N && a->M > 1) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "sgemm: ldc %zu < N %zu", a->ldc, a->N);
    if (a->Z && a->ldz < a->N && a->M > 1)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "sgemm: ldz %zu < N %zu", a->ldz, a->N);
    j->ops = kl_x86_ops_get(a->isa);
    j->M = a->M, j->N = a->N, j->K = a->K;
    if (a->packed_a) {
        KL_TRY(check_packed(a->packed_a, MAGIC_A, a->K, a->M, "A"));
        j->pa = kl_sgemm_packed_a_data(a->packed_a, &j->pa_ps);
    } else if (a->M && a->K) {
        if (!a->A) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "sgemm: A is NULL");
        size_t need = a->transA ? a->M : a->K;
        if (a->lda < need) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "sgemm: lda %zu < %zu", a->lda, need);
    }
    if (a->packed_b) {
        KL_TRY(check_packed(a->packed_b, MAGIC_B, a->K, a->N, "B"));
        j->pb = kl_sgemm_packed_b_data(a->packed_b, &j->pb_ps);
        j->pb_k = NP;
    } else if (a->N && a->K) {
        if (!a->B) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "sgemm: B is NULL");
        size_t need = a->transB ? a->K : a->N;
        if (a->ldb < need) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "sgemm: ldb %zu < %zu", a->ldb, need);
    }
    if ((unsigned)a->act.kind >= KL_ACT_COUNT)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "sgemm: activation %d unknown", (int)a->act.kind);
    j->A = a->A, j->lda = a->lda, j->transA = a->transA;
    j->B = a->B, j->ldb = a->ldb, j->transB = a->transB;
    j->C = a->C, j->ldc = a->ldc, j->alpha = a->alpha, j->beta = a->beta;
    j->col_bias = a->col_bias, j->row_bias = a->row_bias, j->Z = a->Z, j->ldz = a->ldz, j->act = a->act;
    return KILN_OK;
}

kiln_status kl_sgemm_batch(kl_pool *pool, const kl_gemm_args *a, size_t batch, const kl_gemm_batch_strides *st) {
    static const kl_gemm_batch_strides zero;
    if (!a) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "sgemm: NULL arguments");
    if (!st) st = &zero;
    gemm_job j;
    KL_TRY(make_job(a, &j));
    if (batch == 0 || a->M == 0 || a->N == 0) return KILN_OK;
    /* MatMul [batch, M, K] x [K, N] with contiguous A/C/Z rows and a shared B:
     * one product with batch*M rows */
    if (batch > 1 && !a->transA && !a->packed_a && (st->b == 0 || a->packed_b) && st->a == a->M * a->lda &&
        st->c == a->M * a->ldc && (!a->Z || st->z == a->M * a->ldz) && !a->row_bias && st->col_bias == 0) {
        kl_gemm_args one = *a;
        one.M = a->M * batch;
        return kl_sgemm_batch(pool, &one, 1, NULL);
    }
    int t = pick_threads(pool, a->max_threads, a->M * batch, a->N, a->K);
    gemm_split s = {&j, batch, st, true, MR, 1, NULL, 0};
    if (batch >= (size_t)t * 2 || t == 1) {
        s.unit = round_up(a->M, MR); /* whole items per thread */
        s.units_per_item = 1;
    } else if (a->M >= a->N || (a->N + NP - 1) / NP < (size_t)t) {
        s.units_per_item = (a->M + MR - 1) / MR;
    } else {
        s.split_m = false;
        size_t nr = j.ops->nr;
        s.unit = (a->N + nr - 1) / nr >= (size_t)t * 2 ? nr : NP;
        s.units_per_item = (a->N + s.unit - 1) / s.unit;
    }
    s.ws_per_thread = per_thread_ws(j.pa != NULL, j.pb != NULL);
    void *owned = NULL;
    if (s.ws_per_thread) {
        size_t need = s.ws_per_thread * (size_t)t;
        if (a->workspace) {
            if (a->workspace_bytes < need)
                return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "sgemm: workspace of %zu bytes, %zu needed",
                                 a->workspace_bytes, need);
            s.ws = a->workspace;
        } else {
            owned = kl_malloc(need);
            if (!owned) return KILN_ERR_NO_MEMORY;
            s.ws = owned;
        }
    }
    /* about 3 chunks per thread, so a late worker is made up for by the
     * others, unless that packs an operand more often: split over N, every
     * chunk packs its rows of A once per NC columns, so chunks are at least
     * NC wide; split over M with a B not packed, one chunk per thread */
    size_t units = batch * s.units_per_item, chunk = (units + (size_t)t * 3 - 1) / ((size_t)t * 3);
    if (s.units_per_item > 1 && !s.split_m) {
        /* at least NC wide, in a multiple of t chunks of even width: NC-wide
         * chunks left ViT-B/16's N = 768 products at 512 + 256 columns on 2
         * threads (1.45x of 1 thread; now 384 + 384) */
        size_t nc_units = (NC + s.unit - 1) / s.unit, n = units / nc_units;
        n = n < (size_t)t ? (size_t)t : n / (size_t)t * (size_t)t;
        chunk = KL_MAX(chunk, (units + n - 1) / n);
    }
    if (s.units_per_item > 1 && s.split_m && !j.pb) chunk = (units + (size_t)t - 1) / (size_t)t;
    kl_parallel_for_dyn(pool, t, units, chunk, gemm_task, &s);
    kl_free(owned);
    return KILN_OK;
}

kiln_status kl_sgemm(kl_pool *pool, const kl_gemm_args *a) { return kl_sgemm_batch(pool, a, 1, NULL); }
