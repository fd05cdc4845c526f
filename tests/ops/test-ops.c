/*
 * test-ops — kernel-level tests of the fast CPU kernels (src/cpu/x86) and the
 * thread pool.  Every case runs on a float64 reference written here (plus the
 * reference sgemm of src/cpu/ref for GEMM) and on every ISA level this machine
 * supports, every applicable conv tactic, with 1 and 2 threads.  Outputs,
 * packed buffers and workspaces sit between sentinel words that must survive.
 *
 *   test-ops [-o sgemm|batch|act|conv|convdw|convse|convt|attn|pool|misc|copy] [-p PATTERN]... [--quick] [-v]
 *   test-ops support          list ISA levels and tactics
 *
 * Each case has a canonical string, e.g.
 *   sgemm(M=17,N=33,K=63,tA=0,tB=1,pa=0,pb=1,beta=0,bias=col,z=0,act=silu,data=int,isa=avx2,threads=2,seed=42)
 * and -p keeps the cases whose string contains every PATTERN, so a failure line
 * pasted back (-p 'M=17,N=33,K=63' -p isa=avx2) reruns it.  Tolerance tiers:
 * "int" data (small integers, exact sums) must match bit for bit when the
 * activation is exact (none, relu, clip, leaky_relu with alpha 1/4); otherwise
 * |got-ref| <= 1.5*g + 4e-6*|ref| + 1e-30 where g = 2*(K+2)*2^-24*sum|terms|
 * bounds the float summation error (scaled by the reduction length);
 * conv.winograd uses 8 times that bound, norm-wise (the largest sum of the
 * output row), and is never exact.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "cpu/ref/nn.h"
#include "cpu/ref/tensor.h"
#include "cpu/threadpool.h"
#include "cpu/x86/attn.h"
#include "cpu/x86/conv.h"
#include "cpu/x86/convt.h"
#include "cpu/x86/gemm.h"
#include "cpu/x86/isa.h"
#include "cpu/x86/vecmath.h"

/* ---- options, filters, counters ------------------------------------------------ */

static const char *g_op;
static const char *g_pat[16];
static int g_npat;
static bool g_quick, g_verbose;
static long g_cases, g_failed, g_skipped_filter;
static kl_pool *g_pools[3]; /* index = threads */

static bool selected(const char *op, const char *name) {
    if (g_op && strcmp(g_op, op) != 0) return false;
    for (int i = 0; i < g_npat; i++)
        if (!strstr(name, g_pat[i])) return false;
    return true;
}

static void fail(const char *name, const char *fmt, ...) KL_PRINTF(2, 3);
static void fail(const char *name, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL %s: ", name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    g_failed++;
}

/* ---- deterministic random numbers ---------------------------------------------- */

typedef struct rng {
    uint64_t s;
} rng;
static uint64_t rng_next(rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* small integer in [-r, r] */
static float rng_int(rng *g, int r) { return (float)((int)(rng_next(g) % (uint64_t)(2 * r + 1)) - r); }
static float rng_unit(rng *g) { return (float)((double)(rng_next(g) >> 11) * 0x1.0p-53 * 2.0 - 1.0); }

/* ---- buffers with sentinels --------------------------------------------------- */

#define GUARD 16
static const uint32_t SENTINEL = 0x7fc0beefu;

typedef struct gbuf {
    float *base; /* GUARD words | data | GUARD words */
    float *p;
    size_t n;
} gbuf;

static gbuf gb_alloc(size_t n) {
    gbuf b;
    b.n = n;
    b.base = malloc((n + 2 * GUARD) * sizeof(float) + 64);
    if (!b.base) {
        fprintf(stderr, "test-ops: out of memory\n");
        exit(2);
    }
    b.p = b.base + GUARD;
    for (size_t i = 0; i < GUARD; i++) {
        memcpy(&b.base[i], &SENTINEL, 4);
        memcpy(&b.p[n + i], &SENTINEL, 4);
    }
    return b;
}
static bool gb_intact(const gbuf *b) {
    for (size_t i = 0; i < GUARD; i++)
        if (memcmp(&b->base[i], &SENTINEL, 4) || memcmp(&b->p[b->n + i], &SENTINEL, 4)) return false;
    return true;
}
static void gb_free(gbuf *b) { free(b->base); }

/* ---- activations in float64 (the reference definitions) ----------------------- */

static double ref_act(kl_act a, double x) {
    switch (a.kind) {
    case KL_ACT_NONE: return x;
    case KL_ACT_RELU: return x > 0 ? x : (isnan(x) ? x : 0.0);
    case KL_ACT_CLIP: return isnan(x) ? x : fmin(fmax(x, a.alpha), a.beta);
    case KL_ACT_LEAKY_RELU: return x < 0 ? x * a.alpha : x;
    case KL_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case KL_ACT_SILU: return x / (1.0 + exp(-x));
    case KL_ACT_HARD_SIGMOID: return isnan(x) ? x : fmax(0.0, fmin(1.0, (double)a.alpha * x + a.beta));
    case KL_ACT_HARD_SWISH: return isnan(x) ? x : x * fmax(0.0, fmin(1.0, x / 6.0 + 0.5));
    case KL_ACT_GELU_ERF: return 0.5 * x * erfc(-x / sqrt(2.0));
    case KL_ACT_GELU_TANH: {
        double y = sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x);
        return x / (1.0 + exp(-2.0 * y));
    }
    case KL_ACT_MISH: return x * tanh(log1p(exp(x)));
    case KL_ACT_TANH: return tanh(x);
    default: return x;
    }
}
/* Largest |act'| (scales the pre-activation tolerance). */
static double act_slope(kl_act a) {
    switch (a.kind) {
    case KL_ACT_LEAKY_RELU: return fmax(1.0, fabs(a.alpha));
    case KL_ACT_HARD_SIGMOID: return fabs(a.alpha);
    case KL_ACT_HARD_SWISH: return 1.5;
    case KL_ACT_SIGMOID: return 0.25;
    default: return 1.2;
    }
}
static bool act_exact(kl_act a) {
    return a.kind == KL_ACT_NONE || a.kind == KL_ACT_RELU || a.kind == KL_ACT_CLIP ||
           (a.kind == KL_ACT_LEAKY_RELU && a.alpha == 0.25f);
}
static kl_act act_for(int i) {
    kl_act a = {(kl_act_kind)(i % KL_ACT_COUNT), 0, 0};
    if (a.kind == KL_ACT_CLIP) a.alpha = -2.0f, a.beta = 3.0f;
    if (a.kind == KL_ACT_LEAKY_RELU) a.alpha = 0.25f;
    if (a.kind == KL_ACT_HARD_SIGMOID) a.alpha = 0.2f, a.beta = 0.5f;
    return a;
}

/* Compares n values; pre[i] is the pre-activation reference and mag[i] the
 * sum of |terms| (for the tolerance); `red` the reduction length. */
static bool compare(const char *name, const float *got, size_t ldg, const double *pre, const double *mag, size_t rows,
                    size_t cols, size_t red, kl_act act, bool exact, double amp) {
    double worst = 0;
    for (size_t i = 0; i < rows; i++) {
        /* the winograd tier is norm-wise: its transforms mix the whole 6x6
         * input patch, so the bound uses the largest magnitude of the row */
        double row_mag = 0;
        if (amp > 1)
            for (size_t j = 0; j < cols; j++) row_mag = fmax(row_mag, mag[i * cols + j]);
        for (size_t j = 0; j < cols; j++) {
            size_t k = i * cols + j;
            double ref = ref_act(act, pre[k]);
            double g = got[i * ldg + j];
            if (exact) {
                if ((float)ref != (float)g && !(isnan(ref) && isnan(g))) {
                    fail(name, "at [%zu,%zu]: got %.9g, expected %.9g (exact tier)", i, j, g, ref);
                    return false;
                }
                continue;
            }
            double gam = 2.0 * (double)(red + 2) * 0x1.0p-24 * (amp > 1 ? row_mag : mag[k]) * amp;
            double tol = 1.5 * gam * act_slope(act) + 4e-6 * fabs(ref) + 1e-30;
            double err = fabs(g - ref);
            if (!(err <= tol) && !(isnan(ref) && isnan(g))) {
                fail(name, "at [%zu,%zu]: got %.9g, expected %.9g (err %.3g > tol %.3g)", i, j, g, ref, err, tol);
                return false;
            }
            if (tol > 0 && err / tol > worst) worst = err / tol;
        }
    }
    if (g_verbose) fprintf(stderr, "  %s: worst err/tol %.3f\n", name, worst);
    return true;
}

/* Winograd tier: F(4x4,3x3) transforms (coefficients up to 8 and 1/24) add
 * rounding the direct sum does not have; its error bound is this many times
 * the accumulation tier's.  Never exact. */
#define WINOGRAD_AMP 8.0

/* ISA levels this machine runs. */
static int isa_list(kl_isa *out) {
    int n = 0;
    for (int i = KL_ISA_REF; i < KL_ISA_COUNT; i++)
        if (kl_isa_supported((kl_isa)i)) out[n++] = (kl_isa)i;
    return n;
}

/* ---- sgemm -------------------------------------------------------------------- */

typedef struct gemm_case {
    size_t M, N, K;
    bool tA, tB, pa, pb;
    float alpha, beta;
    int bias; /* 0 none, 1 col, 2 row, 3 both */
    bool z;
    kl_act act;
    bool int_data;
    kl_isa isa;
    int threads;
    uint64_t seed;
    size_t batch; /* 1 for kl_sgemm */
    bool shared_b; /* batch: every item uses the same B (stride 0) */
} gemm_case;

static void gemm_name(const gemm_case *c, char *buf, size_t n) {
    static const char *bias[] = {"none", "col", "row", "both"};
    snprintf(buf, n,
             "%s(M=%zu,N=%zu,K=%zu,tA=%d,tB=%d,pa=%d,pb=%d,alpha=%g,beta=%g,bias=%s,z=%d,act=%s,data=%s,isa=%s,"
             "threads=%d,%sseed=%" PRIu64 ")",
             c->batch > 1 ? "sgemm_batch" : "sgemm", c->M, c->N, c->K, c->tA, c->tB, c->pa, c->pb, c->alpha,
             c->beta, bias[c->bias], c->z, kl_act_name(c->act.kind), c->int_data ? "int" : "float",
             kl_isa_name(c->isa), c->threads, "", c->seed);
    if (c->batch > 1) {
        char tmp[64];
        snprintf(tmp, sizeof tmp, ",batch=%zu,shared_b=%d", c->batch, c->shared_b);
        size_t l = strlen(buf);
        if (l + strlen(tmp) < n) {
            buf[l - 1] = 0;
            strcat(buf, tmp);
            strcat(buf, ")");
        }
    }
}

static void run_gemm_case(const gemm_case *c) {
    char name[512];
    gemm_name(c, name, sizeof name);
    if (!selected(c->batch > 1 ? "batch" : "sgemm", name)) {
        g_skipped_filter++;
        return;
    }
    g_cases++;
    rng r = {c->seed};
    size_t M = c->M, N = c->N, K = c->K, B = c->batch;
    size_t lda = (c->tA ? M : K) + 3, ldb = (c->tB ? K : N) + 5, ldc = N + 2, ldz = N + 1;
    size_t arows = c->tA ? K : M, brows = c->tB ? N : K;
    size_t sa = arows * lda, sb = c->shared_b ? 0 : brows * ldb, sc = M * ldc, sz = M * ldz;
    size_t nb = c->shared_b ? brows * ldb : sb * B;
    gbuf A = gb_alloc(sa * B), Bm = gb_alloc(nb), C = gb_alloc(sc * B), Z = gb_alloc(sz * B);
    gbuf cb = gb_alloc(N), rb = gb_alloc(M);
    float rng_r = 3;
#define FILL(buf, cnt)                                                                      \
    for (size_t i_ = 0; i_ < (cnt); i_++) (buf)[i_] = c->int_data ? rng_int(&r, (int)rng_r) : rng_unit(&r);
    FILL(A.p, sa * B);
    FILL(Bm.p, nb);
    FILL(C.p, sc * B);
    FILL(Z.p, sz * B);
    FILL(cb.p, N);
    FILL(rb.p, M);
    if (c->beta == 0.0f) /* C must not be read: poison it */
        for (size_t i = 0; i < sc * B; i++) C.p[i] = NAN;
    float *C0 = malloc(sc * B * sizeof(float) + 4);
    memcpy(C0, C.p, sc * B * sizeof(float));
    /* reference in float64 */
    double *pre = malloc((M * N * B + 1) * sizeof(double)), *mag = malloc((M * N * B + 1) * sizeof(double));
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < M; i++)
            for (size_t j = 0; j < N; j++) {
                double s = 0, m = 0;
                for (size_t k = 0; k < K; k++) {
                    double a = c->tA ? A.p[b * sa + k * lda + i] : A.p[b * sa + i * lda + k];
                    double bb = c->tB ? Bm.p[b * sb + j * ldb + k] : Bm.p[b * sb + k * ldb + j];
                    s += a * bb;
                    m += fabs(a * bb);
                }
                s *= c->alpha;
                m *= fabs(c->alpha);
                if (c->beta != 0.0f) {
                    s += (double)c->beta * C0[b * sc + i * ldc + j];
                    m += fabs((double)c->beta * C0[b * sc + i * ldc + j]);
                }
                if (c->bias & 1) s += cb.p[j], m += fabs(cb.p[j]);
                if (c->bias & 2) s += rb.p[i], m += fabs(rb.p[i]);
                if (c->z) s += Z.p[b * sz + i * ldz + j], m += fabs(Z.p[b * sz + i * ldz + j]);
                pre[(b * M + i) * N + j] = s;
                mag[(b * M + i) * N + j] = m;
            }
    /* the src/cpu/ref sgemm as a second oracle for the plain product */
    if (B == 1 && c->alpha == 1.0f && c->beta == 0.0f && c->bias == 0 && !c->z && c->act.kind == KL_ACT_NONE && M &&
        N) {
        float *R = calloc(M * N, sizeof(float));
        kiln_status st =
            kl_nn_sgemm((int64_t)M, (int64_t)N, (int64_t)K, 1.0f, A.p, c->tA ? 1 : (int64_t)lda, c->tA ? (int64_t)lda : 1,
                        Bm.p, c->tB ? 1 : (int64_t)ldb, c->tB ? (int64_t)ldb : 1, R, (int64_t)N);
        if (st != KILN_OK || !compare(name, R, N, pre, mag, M, N, K, c->act, false, 1.0))
            fail(name, "the src/cpu/ref sgemm disagrees with the float64 reference");
        free(R);
    }
    /* packed operands */
    gbuf PA = {0}, PB = {0};
    kl_gemm_args a = {0};
    a.M = M, a.N = N, a.K = K;
    a.A = A.p, a.lda = lda, a.transA = c->tA;
    a.B = Bm.p, a.ldb = ldb, a.transB = c->tB;
    a.C = C.p, a.ldc = ldc, a.alpha = c->alpha, a.beta = c->beta;
    a.col_bias = (c->bias & 1) ? cb.p : NULL;
    a.row_bias = (c->bias & 2) ? rb.p : NULL;
    a.Z = c->z ? Z.p : NULL, a.ldz = ldz;
    a.act = c->act;
    a.isa = c->isa;
    if (c->pa) {
        PA = gb_alloc((kl_sgemm_pack_a_size(M, K) + 3) / 4);
        kl_sgemm_pack_a(A.p, lda, c->tA, M, K, PA.p);
        a.packed_a = PA.p;
    }
    if (c->pb) {
        PB = gb_alloc((kl_sgemm_pack_b_size(K, N) + 3) / 4);
        kl_sgemm_pack_b(Bm.p, ldb, c->tB, K, N, PB.p);
        a.packed_b = PB.p;
    }
    size_t wsb = kl_sgemm_workspace_size(&a, c->threads);
    gbuf WS = gb_alloc((wsb + 3) / 4 + 1);
    a.workspace = WS.p, a.workspace_bytes = wsb;
    kiln_status st;
    if (B == 1) {
        st = kl_sgemm(g_pools[c->threads], &a);
    } else {
        kl_gemm_batch_strides s = {sa, sb, sc, sz, 0, 0};
        st = kl_sgemm_batch(g_pools[c->threads], &a, B, &s);
    }
    if (st != KILN_OK) {
        fail(name, "status %s: %s", kiln_status_name(st), kl_error_message());
    } else {
        bool exact = c->int_data && act_exact(c->act) && (c->alpha == 1.0f || c->alpha == 2.0f);
        for (size_t b = 0; b < B; b++)
            if (!compare(name, C.p + b * sc, ldc, pre + b * M * N, mag + b * M * N, M, N, K, c->act, exact, 1.0)) break;
        /* padding columns of C between rows are untouched */
        for (size_t b = 0; b < B; b++)
            for (size_t i = 0; i < M; i++)
                for (size_t j = N; j < ldc; j++) {
                    size_t q = b * sc + i * ldc + j;
                    if (memcmp(&C.p[q], &C0[q], 4) != 0) {
                        fail(name, "wrote C[%zu,%zu] past N", i, j);
                        i = M, b = B;
                        break;
                    }
                }
    }
    if (!gb_intact(&C)) fail(name, "sentinel around C overwritten");
    if (!gb_intact(&WS)) fail(name, "sentinel around the workspace overwritten");
    if (c->pa && !gb_intact(&PA)) fail(name, "sentinel around packed A overwritten");
    if (c->pb && !gb_intact(&PB)) fail(name, "sentinel around packed B overwritten");
    free(C0);
    free(pre);
    free(mag);
    gb_free(&A), gb_free(&Bm), gb_free(&C), gb_free(&Z), gb_free(&cb), gb_free(&rb), gb_free(&WS);
    if (c->pa) gb_free(&PA);
    if (c->pb) gb_free(&PB);
}

static void test_sgemm(void) {
    static const size_t Ms[] = {1, 3, 6, 7, 17, 64, 65};
    static const size_t Ns[] = {1, 7, 16, 17, 33, 63, 64, 65, 130};
    static const size_t Ks[] = {1, 3, 17, 63, 64, 65, 257, 321};
    kl_isa isas[KL_ISA_COUNT];
    int nisa = isa_list(isas);
    uint64_t seed = 42;
    int variant = 0;
    for (size_t mi = 0; mi < KL_ARRAY_LEN(Ms); mi++)
        for (size_t ni = 0; ni < KL_ARRAY_LEN(Ns); ni++)
            for (size_t ki = 0; ki < KL_ARRAY_LEN(Ks); ki++) {
                if (g_quick && (mi + ni + ki) % 4) continue;
                for (int ii = 0; ii < nisa; ii++)
                    for (int t = 1; t <= 2; t++) {
                        int v = variant++;
                        gemm_case c = {Ms[mi], Ns[ni], Ks[ki], v & 1, (v >> 1) & 1, (v >> 2) & 1, (v >> 3) & 1};
                        static const float betas[] = {0.0f, 1.0f, -2.0f, 0.5f};
                        c.alpha = (v % 5 == 0) ? 2.0f : 1.0f;
                        c.beta = betas[(v / 3) % 4];
                        c.bias = (v / 2) % 4;
                        c.z = (v / 5) % 2;
                        c.act = act_for(v / 7 + v);
                        c.int_data = (v % 3) != 2;
                        c.isa = isas[ii];
                        c.threads = t;
                        c.seed = seed + (uint64_t)v;
                        c.batch = 1;
                        run_gemm_case(&c);
                    }
            }
    /* larger shapes: several KC/NC/MC blocks, every activation on the best ISA */
    static const size_t big[][3] = {{200, 600, 700}, {130, 1030, 300}, {512, 64, 513}, {7, 2000, 40}, {300, 5, 600}};
    for (size_t bi = 0; bi < KL_ARRAY_LEN(big); bi++)
        for (int ii = 0; ii < nisa; ii++)
            for (int t = 1; t <= 2; t++) {
                if (g_quick && (ii != nisa - 1 || bi > 1)) continue;
                int v = variant++;
                gemm_case c = {big[bi][0], big[bi][1], big[bi][2], v & 1, (v >> 1) & 1, (v >> 2) & 1, (v >> 3) & 1};
                c.alpha = 1.0f;
                c.beta = (v & 4) ? 1.0f : 0.0f;
                c.bias = 3;
                c.z = true;
                c.act = act_for(v);
                c.int_data = (v & 1) != 0;
                c.isa = isas[ii];
                c.threads = t;
                c.seed = seed + (uint64_t)v;
                c.batch = 1;
                run_gemm_case(&c);
            }
    /* a plain A against a packed B wider than one NC block (A packed once
     * per K and M block, then run against every NC block), with several K
     * and M blocks, plain and transposed A, row and column bias, Z */
    for (int ii = 0; ii < nisa; ii++)
        for (int ta = 0; ta < 2; ta++)
            for (int t = 1; t <= 2; t++) {
                if (g_quick && ii != nisa - 1) continue;
                gemm_case c = {250, 1100, 700, ta != 0, ta == 0, false, true, 1.0f, ta ? 1.0f : 0.0f, 3, true,
                               act_for(variant++), false, isas[ii], t, seed + 5000u + (uint64_t)(ta * 2 + t), 1};
                run_gemm_case(&c);
            }
    /* every activation on every level, one mid-size shape, float data */
    for (int ai = 0; ai < KL_ACT_COUNT; ai++)
        for (int ii = 0; ii < nisa; ii++) {
            gemm_case c = {37, 71, 45, false, true, false, true, 1.0f, 0.0f, 1, true, act_for(ai), false, isas[ii], 2,
                           seed + 1000u + (uint64_t)ai, 1};
            run_gemm_case(&c);
        }
}

static void test_sgemm_batch(void) {
    kl_isa isas[KL_ISA_COUNT];
    int nisa = isa_list(isas);
    static const size_t shapes[][4] = {{1, 5, 7, 9}, {3, 17, 33, 20}, {8, 13, 70, 64}, {2, 64, 65, 31}};
    int v = 0;
    for (size_t s = 0; s < KL_ARRAY_LEN(shapes); s++)
        for (int ii = 0; ii < nisa; ii++)
            for (int t = 1; t <= 2; t++, v++) {
                gemm_case c = {shapes[s][1], shapes[s][2], shapes[s][3], v & 1, (v >> 1) & 1, false, false};
                c.alpha = 1.0f, c.beta = (v & 2) ? 1.0f : 0.0f, c.bias = 0, c.z = (v & 1) != 0;
                c.act = act_for(v * 5);
                c.int_data = true;
                c.isa = isas[ii], c.threads = t, c.seed = 7000 + (uint64_t)v, c.batch = shapes[s][0];
                run_gemm_case(&c);
                /* MatMul with shared weights: packed or plain, folded into one product */
                c.shared_b = true, c.tA = false, c.pb = (v & 1) != 0;
                run_gemm_case(&c);
            }
}

/* ---- vector activations ------------------------------------------------------ */

static void test_act(void) {
    kl_isa isas[KL_ISA_COUNT];
    int nisa = isa_list(isas);
    size_t n = 0;
    float *x = malloc(200000 * sizeof(float));
    for (double v = -30.0; v <= 30.0; v += 0.00123) x[n++] = (float)v;
    static const float special[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-7f, -1e-7f, 0.399f, 0.4f, 0.401f, 1.0f,
                                    -1.0f, 0.99999f, -5.6f, -9.5f, -13.0f, 50.0f, -50.0f, 88.0f, -88.0f, 100.0f,
                                    -100.0f, 1e10f, -1e10f, INFINITY, -INFINITY, NAN};
    for (size_t i = 0; i < KL_ARRAY_LEN(special); i++) x[n++] = special[i];
    for (int ai = 0; ai < KL_ACT_COUNT; ai++)
        for (int ii = 0; ii < nisa; ii++) {
            kl_act act = act_for(ai);
            char name[160];
            snprintf(name, sizeof name, "act(act=%s,isa=%s,n=%zu)", kl_act_name(act.kind), kl_isa_name(isas[ii]), n);
            if (!selected("act", name)) {
                g_skipped_filter++;
                continue;
            }
            g_cases++;
            gbuf y = gb_alloc(n);
            memcpy(y.p, x, n * sizeof(float));
            kl_vec_act_isa(isas[ii], act, y.p, n);
            double worst_rel = 0, worst_abs = 0;
            for (size_t i = 0; i < n; i++) {
                double ref = ref_act(act, x[i]);
                double g = y.p[i];
                if (isnan(ref) || isnan(g)) {
                    if (isnan(ref) != isnan(g)) {
                        fail(name, "x=%.9g: got %.9g, expected %.9g (NaN)", x[i], g, ref);
                        break;
                    }
                    continue;
                }
                if (isinf(ref) || isinf(g)) {
                    if (ref != g && fabs(g) < 1e38) {
                        fail(name, "x=%.9g: got %.9g, expected %.9g", x[i], g, ref);
                        break;
                    }
                    continue;
                }
                double err = fabs(g - ref);
                /* tier: 4e-6 relative plus what a 2-ulp perturbation of x costs
                 * (condition number |x f'/f|), or 1e-37 absolute (subnormals) */
                double h = 1e-7, xd = x[i];
                double cond = xd == 0 ? 0
                                      : fabs(xd * (ref_act(act, xd * (1 + h)) - ref_act(act, xd * (1 - h))) / (2 * h * xd));
                double tol = 4e-6 * fabs(ref) + 2 * cond * 0x1.0p-24 + 1e-37;
                if (err > tol) {
                    fail(name, "x=%.9g: got %.9g, expected %.9g (rel err %.3g)", x[i], g, ref, err / fabs(ref));
                    break;
                }
                if (fabs(ref) > 1e-30 && err / fabs(ref) > worst_rel) worst_rel = err / fabs(ref);
                if (err > worst_abs) worst_abs = err;
            }
            if (g_verbose) fprintf(stderr, "  %s: max rel err %.3g, max abs err %.3g\n", name, worst_rel, worst_abs);
            if (!gb_intact(&y)) fail(name, "sentinel overwritten");
            gb_free(&y);
            /* tails: every length below 40 stays inside its buffer */
            for (size_t len = 0; len < 40; len++) {
                gbuf t = gb_alloc(len);
                for (size_t i = 0; i < len; i++) t.p[i] = x[(i * 7919) % n];
                kl_vec_act_isa(isas[ii], act, t.p, len);
                if (!gb_intact(&t)) {
                    fail(name, "length %zu: sentinel overwritten", len);
                    gb_free(&t);
                    break;
                }
                gb_free(&t);
            }
        }
    free(x);
}

/* ---- convolution ------------------------------------------------------------- */

typedef struct conv_case {
    kl_conv2d_desc d;
    bool bias;
    int z; /* 0 none, 1 separate, 2 Z == Y */
    bool int_data;
    int threads;
    bool run_n; /* prepare for one image, run the batch with kl_conv2d_run_n */
    uint64_t seed;
} conv_case;

static void conv_name(const conv_case *c, char *buf, size_t n) {
    const kl_conv2d_desc *d = &c->d;
    snprintf(buf, n,
             "conv(x=[%zu,%zu,%zu,%zu],w=[%zu,%zu,%zu,%zu],g=%zu,s=%zux%zu,p=%zu.%zu.%zu.%zu,d=%zux%zu,bias=%d,z=%d,"
             "act=%s,data=%s,tactic=%s,isa=%s,threads=%d,run_n=%d,seed=%" PRIu64 ")",
             d->N, d->C, d->H, d->W, d->M, d->C / (d->group ? d->group : 1), d->KH, d->KW, d->group, d->stride_h,
             d->stride_w, d->pad_top, d->pad_left, d->pad_bottom, d->pad_right, d->dil_h, d->dil_w, c->bias, c->z,
             kl_act_name(d->act.kind), c->int_data ? "int" : "float", kl_conv_algo_name(d->algo), kl_isa_name(d->isa),
             c->threads, c->run_n, c->seed);
}

/* The Winograd tactics: never exact, the norm-wise tier. */
static bool is_winograd(kl_conv_algo a) {
    return a == KL_CONV_WINOGRAD || a == KL_CONV_WINOGRAD2 || a == KL_CONV_WINOGRAD4T;
}

static void run_conv_case(const conv_case *c) {
    char name[512];
    conv_name(c, name, sizeof name);
    if (!selected("conv", name)) {
        g_skipped_filter++;
        return;
    }
    g_cases++;
    const kl_conv2d_desc *d = &c->d;
    size_t G = d->group, Cg = d->C / G, Mg = d->M / G;
    size_t sh = d->stride_h, sw = d->stride_w, dh = d->dil_h, dw = d->dil_w;
    size_t OH = (d->H + d->pad_top + d->pad_bottom - (d->KH - 1) * dh - 1) / sh + 1;
    size_t OW = (d->W + d->pad_left + d->pad_right - (d->KW - 1) * dw - 1) / sw + 1;
    rng r = {c->seed};
    size_t nx = d->N * d->C * d->H * d->W, nw = d->M * Cg * d->KH * d->KW, ny = d->N * d->M * OH * OW;
    float *X = malloc(nx * 4), *Wt = malloc(nw * 4), *bias = malloc(d->M * 4), *Zs = malloc(ny * 4);
    for (size_t i = 0; i < nx; i++) X[i] = c->int_data ? rng_int(&r, 3) : rng_unit(&r);
    for (size_t i = 0; i < nw; i++) Wt[i] = c->int_data ? rng_int(&r, 2) : rng_unit(&r);
    for (size_t i = 0; i < d->M; i++) bias[i] = c->int_data ? rng_int(&r, 5) : rng_unit(&r);
    for (size_t i = 0; i < ny; i++) Zs[i] = c->int_data ? rng_int(&r, 5) : rng_unit(&r);
    double *pre = malloc(ny * sizeof(double)), *mag = malloc(ny * sizeof(double));
    for (size_t n = 0; n < d->N; n++)
        for (size_t m = 0; m < d->M; m++) {
            size_t g = m / Mg;
            for (size_t oh = 0; oh < OH; oh++)
                for (size_t ow = 0; ow < OW; ow++) {
                    double s = c->bias ? bias[m] : 0, mg = fabs(s);
                    for (size_t ci = 0; ci < Cg; ci++)
                        for (size_t kh = 0; kh < d->KH; kh++)
                            for (size_t kw = 0; kw < d->KW; kw++) {
                                long ih = (long)(oh * sh + kh * dh) - (long)d->pad_top;
                                long iw = (long)(ow * sw + kw * dw) - (long)d->pad_left;
                                if (ih < 0 || iw < 0 || ih >= (long)d->H || iw >= (long)d->W) continue;
                                double t = (double)X[((n * d->C + g * Cg + ci) * d->H + (size_t)ih) * d->W + (size_t)iw] *
                                           Wt[((m * Cg + ci) * d->KH + kh) * d->KW + kw];
                                s += t;
                                mg += fabs(t);
                            }
                    size_t q = ((n * d->M + m) * OH + oh) * OW + ow;
                    if (c->z) s += Zs[q], mg += fabs(Zs[q]);
                    pre[q] = s;
                    mag[q] = mg;
                }
        }
    kl_conv2d_plan *plan = NULL;
    kl_conv2d_desc d1 = *d;
    if (c->run_n) d1.N = 1;
    kiln_status st = kl_conv2d_prepare(&d1, Wt, c->bias ? bias : NULL, &plan);
    if (st != KILN_OK) {
        fail(name, "prepare: %s: %s", kiln_status_name(st), kl_error_message());
        goto out;
    }
    size_t oh2, ow2;
    kl_conv2d_out_hw(plan, &oh2, &ow2);
    if (oh2 != OH || ow2 != OW) {
        fail(name, "output %zux%zu, expected %zux%zu", oh2, ow2, OH, OW);
        goto out;
    }
    size_t wsb = c->run_n ? kl_conv2d_workspace_size_n(plan, c->threads, d->N) : kl_conv2d_workspace_size(plan, c->threads);
    gbuf WS = gb_alloc((wsb + 3) / 4);
    gbuf Y = gb_alloc(ny);
    for (size_t i = 0; i < ny; i++) Y.p[i] = c->z == 2 ? Zs[i] : NAN;
    const float *Zr = c->z == 1 ? Zs : c->z == 2 ? Y.p : NULL;
    st = c->run_n ? kl_conv2d_run_n(g_pools[c->threads], plan, d->N, X, Zr, Y.p, WS.p)
                  : kl_conv2d_run(g_pools[c->threads], plan, X, Zr, Y.p, WS.p);
    if (st != KILN_OK)
        fail(name, "run: %s: %s", kiln_status_name(st), kl_error_message());
    else
        compare(name, Y.p, OH * OW, pre, mag, d->N * d->M, OH * OW, Cg * d->KH * d->KW + 2, d->act,
                c->int_data && act_exact(d->act) && !is_winograd(d->algo), is_winograd(d->algo) ? WINOGRAD_AMP : 1.0);
    if (!gb_intact(&Y)) fail(name, "sentinel around Y overwritten");
    if (!gb_intact(&WS)) fail(name, "sentinel around the workspace overwritten");
    gb_free(&WS);
    gb_free(&Y);
out:
    kl_conv2d_destroy(plan);
    free(X), free(Wt), free(bias), free(Zs), free(pre), free(mag);
}

typedef struct conv_shape {
    size_t N, C, H, W, M, KH, KW, G, S, PT, PL, PB, PR, D;
} conv_shape;

static void conv_shape_cases(const conv_shape *sh, const kl_isa *isas, int nisa, int *vp) {
    int v = *vp;
    for (int algo = KL_CONV_GEMM1X1; algo < KL_CONV_ALGO_COUNT; algo++)
        for (int ii = 0; ii < nisa; ii++)
            for (int t = 1; t <= 2; t++) {
                conv_case c = {0};
                kl_conv2d_desc *d = &c.d;
                d->N = sh->N, d->C = sh->C, d->H = sh->H, d->W = sh->W, d->M = sh->M, d->KH = sh->KH,
                d->KW = sh->KW, d->group = sh->G, d->stride_h = d->stride_w = sh->S, d->pad_top = sh->PT,
                d->pad_left = sh->PL, d->pad_bottom = sh->PB, d->pad_right = sh->PR, d->dil_h = d->dil_w = sh->D;
                d->algo = (kl_conv_algo)algo;
                if (!kl_conv2d_supports(d, d->algo)) continue;
                if (g_quick && (v % 3)) {
                    v++;
                    continue;
                }
                d->isa = isas[ii];
                d->threads = t;
                d->act = act_for(v);
                c.bias = v % 4 != 3;
                c.z = v % 3;
                c.int_data = v % 2 == 0;
                c.threads = t;
                c.run_n = d->N > 1 && (v / 2) % 2 == 0;
                c.seed = 9000 + (uint64_t)v;
                v++;
                run_conv_case(&c);
            }
    *vp = v;
}

static void test_conv(void) {
    static const conv_shape shapes[] = {
        /* N  C   H   W   M  KH KW G  S PT PL PB PR D */
        {1, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1},    {2, 7, 8, 8, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1},
        {1, 16, 14, 14, 16, 1, 1, 1, 1, 0, 0, 0, 0, 1}, {1, 17, 13, 7, 63, 1, 1, 1, 1, 0, 0, 0, 0, 1},
        {1, 8, 15, 15, 12, 1, 1, 1, 2, 0, 0, 0, 0, 1},  {1, 3, 23, 23, 8, 7, 7, 1, 2, 3, 3, 3, 3, 1},
        {1, 6, 10, 10, 6, 3, 3, 2, 1, 1, 1, 1, 1, 1},   {1, 12, 9, 9, 12, 3, 3, 3, 2, 1, 0, 1, 2, 1},
        {1, 5, 12, 12, 7, 3, 3, 1, 1, 2, 2, 2, 2, 2},   {1, 4, 6, 5, 3, 2, 3, 1, 1, 0, 1, 1, 0, 1},
        {1, 1, 5, 5, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1},     {1, 64, 7, 7, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1},
        {1, 300, 5, 6, 9, 1, 1, 1, 1, 0, 0, 0, 0, 1},   {1, 40, 20, 20, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1},
        {1, 300, 10, 9, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1}, {2, 16, 40, 37, 20, 3, 3, 1, 1, 1, 0, 1, 2, 1},
        {1, 130, 30, 30, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1}, {4, 12, 7, 7, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1},
        {3, 9, 9, 11, 8, 3, 3, 1, 1, 0, 1, 2, 1, 1},
        /* the transposed Winograd tactics: 63 channels in, vector tails out
         * (33, 65), several 6-tile panels and 16-tile transform groups, batch 2 */
        {1, 63, 11, 13, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1}, {2, 40, 14, 14, 65, 3, 3, 1, 1, 1, 1, 1, 1, 1},
        /* stride 2 across tiles and K slices, with dilation, a wide stem */
        {1, 40, 60, 61, 24, 3, 3, 1, 2, 1, 1, 1, 1, 1}, {1, 6, 21, 19, 10, 3, 3, 1, 2, 2, 1, 2, 1, 2},
        {1, 3, 50, 70, 16, 7, 7, 1, 2, 3, 3, 3, 3, 1},
        /* conv.igemm's channel groups: 64 (4 vectors), 32, 48, 70 (4 + a tail), 7x7/2 and
         * 3x3/2 stems with odd maps, batch 2, asymmetric pads */
        {1, 3, 29, 31, 64, 7, 7, 1, 2, 3, 3, 3, 3, 1}, {2, 3, 33, 35, 32, 3, 3, 1, 2, 1, 1, 1, 1, 1},
        {1, 4, 20, 20, 48, 3, 3, 1, 2, 0, 0, 1, 1, 1}, {1, 16, 9, 30, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1},
        /* yolov8n's stride-2 downsamples: whole 16-pixel panels in one row (OW 32), rows of 33 */
        {1, 16, 64, 64, 32, 3, 3, 1, 2, 1, 1, 1, 1, 1}, {2, 5, 64, 66, 12, 3, 3, 1, 2, 1, 1, 1, 1, 1},
        /* small maps (conv.im2row's case): channel chunks per thread, batch 2 */
        {2, 24, 14, 14, 40, 3, 3, 1, 2, 1, 1, 1, 1, 1}, {1, 33, 7, 7, 48, 1, 1, 1, 1, 0, 0, 0, 0, 1},
        /* conv.im2row stacking images (a plan prepared for the batch): pixels of 49, 36
         * (whole 6-pixel panels), 25 and 9 per image, K over several slices, groups */
        {5, 33, 7, 7, 40, 1, 1, 1, 1, 0, 0, 0, 0, 1},   {3, 20, 6, 6, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1},
        {3, 350, 5, 5, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1},  {4, 24, 6, 6, 18, 3, 3, 2, 2, 1, 1, 1, 1, 1},
        /* depthwise: 3x3 and 5x5, stride 1 and 2, widths across vector tails */
        {1, 7, 9, 37, 7, 3, 3, 7, 1, 1, 1, 1, 1, 1},    {2, 5, 11, 40, 5, 3, 3, 5, 2, 1, 1, 1, 1, 1},
        {1, 3, 13, 33, 3, 5, 5, 3, 1, 2, 2, 2, 2, 1},   {1, 4, 12, 50, 4, 5, 5, 4, 2, 2, 2, 2, 2, 1},
        {1, 6, 8, 17, 6, 3, 3, 6, 1, 0, 0, 0, 0, 1},    {1, 3, 10, 35, 3, 3, 3, 3, 1, 2, 2, 2, 2, 2},
        {1, 2, 9, 40, 2, 3, 3, 2, 3, 1, 1, 1, 1, 1},    {1, 17, 6, 19, 17, 3, 3, 17, 2, 0, 1, 1, 0, 1},
        {1, 8, 16, 64, 8, 3, 3, 8, 1, 1, 1, 1, 1, 1},   {1, 4, 4, 4, 8, 3, 3, 4, 1, 1, 1, 1, 1, 1},
        /* depthwise on small maps (channel-interleaved blocks of 16): EfficientNet's
         * 5x5/2 14x14 -> 7x7 and 3x3 7x7 with channel tails, batch 2 */
        {2, 40, 14, 14, 40, 5, 5, 40, 2, 2, 2, 2, 2, 1}, {1, 33, 7, 7, 33, 3, 3, 33, 1, 1, 1, 1, 1, 1},
        {1, 16, 9, 12, 16, 5, 5, 16, 1, 2, 2, 2, 2, 1},
        /* 1x1 maps whose last 16-pixel panel is 8 wide (AVX2: one whole vector per
         * row) and 4 wide (one masked vector), K over one block (B prefetched in place) */
        {1, 20, 6, 4, 10, 1, 1, 1, 1, 0, 0, 0, 0, 1},   {1, 330, 10, 10, 13, 1, 1, 1, 1, 0, 0, 0, 0, 1},
        /* Winograd at batch 1 on 2 threads in blocks of tiles a block at a time
         * (input transform by channels, products by output channels):
         * several blocks (400 and 306 tiles), blocks across images */
        {1, 24, 80, 80, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1}, {1, 16, 68, 72, 48, 3, 3, 1, 1, 1, 0, 1, 2, 1},
        {2, 8, 40, 44, 30, 3, 3, 1, 1, 1, 1, 1, 1, 1},
        /* one im2col tile (14x14 out, K over slices) split by pixels on 2 threads */
        {1, 70, 28, 28, 20, 3, 3, 1, 2, 1, 1, 1, 1, 1},
    };
    kl_isa isas[KL_ISA_COUNT];
    int nisa = isa_list(isas);
    int v = 0;
    for (size_t s = 0; s < KL_ARRAY_LEN(shapes); s++) conv_shape_cases(&shapes[s], isas, nisa, &v);
    /* depthwise on the unpadded plane (AVX2/AVX-512 kl_x86_dw_direct): 3x3
     * and 5x5, strides 1 and 2, odd channel counts, widths across the
     * 8/16-lane tails and the border vectors, heights giving every remainder
     * of the 4-row blocks, symmetric, asymmetric, zero and kernel-wide pads */
    static const size_t dw_c[] = {1, 3, 7, 17, 63};
    static const size_t dw_w[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 47, 63, 65};
    static const size_t dw_h[] = {1, 4, 5, 6, 7, 9};
    size_t k = 0;
    for (size_t kk = 3; kk <= 5; kk += 2)
        for (size_t st = 1; st <= 2; st++)
            for (size_t wi = 0; wi < KL_ARRAY_LEN(dw_w); wi++, k++) {
                size_t p = kk / 2, C = dw_c[k % KL_ARRAY_LEN(dw_c)], H = dw_h[k % KL_ARRAY_LEN(dw_h)] * st + k % 2;
                size_t pads[4] = {p, p, p, p};
                if (k % 4 == 1) pads[0] = 0, pads[1] = p - 1 + st - 1, pads[2] = p + 1, pads[3] = 0; /* asymmetric */
                if (k % 4 == 2) pads[0] = pads[1] = pads[2] = pads[3] = 0;
                if (k % 4 == 3) pads[0] = pads[1] = pads[2] = pads[3] = kk - 1;
                size_t W = dw_w[wi];
                if (H + pads[0] + pads[2] < kk || W + pads[1] + pads[3] < kk) continue;
                conv_shape sh = {1 + (k % 5 == 4), C, H, W, C, kk, kk, C, st, pads[0], pads[1], pads[2], pads[3], 1};
                conv_shape_cases(&sh, isas, nisa, &v);
            }
    /* conv.direct (stems): 1-4 input channels, 3x3/5x5/7x7 and 2x3, strides
     * 1 and 2, output channels 1..63 (blocks of 8 and their tails), widths
     * across the vector tails and borders, zero, symmetric, asymmetric pads */
    static const size_t cd_m[] = {1, 3, 7, 17, 63, 32, 8};
    static const size_t cd_w[] = {1, 5, 8, 16, 17, 31, 33, 40, 67};
    static const size_t cd_k[][2] = {{3, 3}, {5, 5}, {7, 7}, {2, 3}};
    k = 0;
    for (size_t ki = 0; ki < KL_ARRAY_LEN(cd_k); ki++)
        for (size_t st = 1; st <= 2; st++)
            for (size_t wi = 0; wi < KL_ARRAY_LEN(cd_w); wi++, k++) {
                size_t KH = cd_k[ki][0], KW = cd_k[ki][1], C = 1 + k % 4, M = cd_m[k % KL_ARRAY_LEN(cd_m)];
                size_t W = cd_w[wi], H = 3 + k % 7;
                size_t pads[4] = {KH / 2, KW / 2, KH / 2, KW / 2};
                if (k % 3 == 1) pads[0] = pads[1] = pads[2] = pads[3] = 0;
                if (k % 3 == 2) pads[0] = 0, pads[1] = KW - 1, pads[2] = KH - 1, pads[3] = 1;
                if (H + pads[0] + pads[2] < KH || W + pads[1] + pads[3] < KW) continue;
                conv_shape sh = {1 + (k % 5 == 4), C, H, W, M, KH, KW, 1, st, pads[0], pads[1], pads[2], pads[3], 1};
                conv_shape_cases(&sh, isas, nisa, &v);
            }
    /* every activation on every tactic and level of shapes whose kernels take
     * some activations as constants (AVX2 depthwise 3x3 and the 3x3/2 stem:
     * Clip, ReLU; SiLU): each tactic's case index runs through all of them */
    static const conv_shape act_shapes[] = {
        {1, 5, 9, 37, 5, 3, 3, 5, 1, 1, 1, 1, 1, 1},   {1, 4, 12, 45, 4, 3, 3, 4, 2, 1, 1, 1, 1, 1},
        {1, 3, 13, 70, 12, 3, 3, 1, 2, 1, 1, 1, 1, 1}, {1, 3, 8, 40, 8, 5, 5, 1, 2, 2, 2, 2, 2, 1},
        /* depthwise planes past KL_DWC_BAND_PLANE (16 KiB): AVX2 runs them in bands of
         * rows (8 KiB of input rows), several bands and a short last one, strides 1 and 2,
         * 3x3 and 5x5 */
        {1, 2, 73, 61, 2, 3, 3, 2, 1, 1, 1, 1, 1, 1},  {1, 2, 75, 70, 2, 3, 3, 2, 2, 1, 1, 1, 1, 1},
        {1, 2, 87, 50, 2, 5, 5, 2, 1, 2, 2, 2, 2, 1},  {1, 2, 91, 48, 2, 5, 5, 2, 2, 2, 1, 2, 1, 1},
    };
    for (size_t si = 0; si < KL_ARRAY_LEN(act_shapes); si++)
        for (int a = 0; a < KL_ACT_COUNT; a++) {
            int va = v - v % KL_ACT_COUNT + KL_ACT_COUNT + a;
            conv_shape_cases(&act_shapes[si], isas, nisa, &va);
            v = va;
        }
}

/* ---- conv.expand_dw: 1x1 expand + depthwise in bands ------------------------- */

typedef struct convdw_case {
    size_t N, C, H, W, M, K, S, pads[4], band; /* M: expanded channels; band 0: the plan's choice */
    size_t EK, ES, epads[4];                   /* the first layer: EK 0 a 1x1 expansion, else an EKxEK stem */
    kl_act act1, act2;
    bool int_data;
    kl_isa isa;
    int threads;
    uint64_t seed;
} convdw_case;

/* Reference: the first layer (a 1x1 expansion or a stem) in float64,
 * rounded to float (what the kernel keeps between the two), then the
 * depthwise layer in float64.  The tolerance's magnitude adds each tap's
 * share of the first layer's error bound (and a relative slack of its
 * approximated activation). */
static void run_convdw_case(const convdw_case *c) {
    char name[512];
    snprintf(name, sizeof name,
             "convdw(x=[%zu,%zu,%zu,%zu],first=%zux%zu/%zu.p%zu.%zu.%zu.%zu,m=%zu,k=%zu,s=%zu,p=%zu.%zu.%zu.%zu,band=%zu,"
             "act1=%s,act2=%s,data=%s,isa=%s,threads=%d,seed=%" PRIu64 ")",
             c->N, c->C, c->H, c->W, c->EK ? c->EK : 1, c->EK ? c->EK : 1, c->ES ? c->ES : 1, c->epads[0],
             c->epads[1], c->epads[2], c->epads[3], c->M, c->K, c->S, c->pads[0], c->pads[1], c->pads[2], c->pads[3],
             c->band, kl_act_name(c->act1.kind), kl_act_name(c->act2.kind), c->int_data ? "int" : "float",
             kl_isa_name(c->isa), c->threads, c->seed);
    if (!selected("convdw", name)) {
        g_skipped_filter++;
        return;
    }
    size_t EK = c->EK ? c->EK : 1, ES = c->ES ? c->ES : 1;
    const size_t *ep = c->epads;
    size_t H = c->H, W = c->W;
    if (H + ep[0] + ep[2] < EK || W + ep[1] + ep[3] < EK) return;
    size_t H1 = (H + ep[0] + ep[2] - EK) / ES + 1, W1d = (W + ep[1] + ep[3] - EK) / ES + 1; /* the first layer's output */
    kl_conv2d_desc e = {0}, d = {0};
    e.N = d.N = 1, e.C = c->C, e.H = H, e.W = W, e.M = c->M, e.KH = e.KW = EK, e.stride_h = e.stride_w = ES;
    e.pad_top = ep[0], e.pad_left = ep[1], e.pad_bottom = ep[2], e.pad_right = ep[3];
    d.H = H1, d.W = W1d;
    e.act = c->act1, e.isa = d.isa = c->isa, e.threads = d.threads = c->threads;
    d.C = d.M = d.group = c->M, d.KH = d.KW = c->K, d.stride_h = d.stride_w = c->S;
    d.pad_top = c->pads[0], d.pad_left = c->pads[1], d.pad_bottom = c->pads[2], d.pad_right = c->pads[3];
    d.act = c->act2;
    if (H1 + c->pads[0] + c->pads[2] < c->K || W1d + c->pads[1] + c->pads[3] < c->K) return;
    if (!kl_conv2d_expand_dw_supports(&e, &d)) return; /* the reference level, or a geometry it leaves alone */
    g_cases++;
    size_t N = c->N, C = c->C, M = c->M, K = c->K, S = c->S, XHW = H * W, HW = H1 * W1d, CK = C * EK * EK;
    size_t OH = (H1 + c->pads[0] + c->pads[2] - K) / S + 1, OW = (W1d + c->pads[1] + c->pads[3] - K) / S + 1;
    rng r = {c->seed};
    size_t nx = N * C * XHW, ny = N * M * OH * OW;
    float *X = malloc(nx * 4), *W1 = malloc(M * CK * 4), *b1 = malloc(M * 4), *W2 = malloc(M * K * K * 4),
          *b2 = malloc(M * 4), *T = malloc(N * M * HW * 4);
    double *tmag = malloc(N * M * HW * sizeof(double)), *pre = malloc(ny * sizeof(double)),
           *mag = malloc(ny * sizeof(double));
    for (size_t i = 0; i < nx; i++) X[i] = c->int_data ? rng_int(&r, 3) : rng_unit(&r);
    for (size_t i = 0; i < M * CK; i++) W1[i] = c->int_data ? rng_int(&r, 2) : rng_unit(&r);
    for (size_t i = 0; i < M; i++) b1[i] = c->int_data ? rng_int(&r, 5) : rng_unit(&r);
    for (size_t i = 0; i < M * K * K; i++) W2[i] = c->int_data ? rng_int(&r, 2) : rng_unit(&r);
    for (size_t i = 0; i < M; i++) b2[i] = c->int_data ? rng_int(&r, 5) : rng_unit(&r);
    double u1 = 1.5 * 2.0 * (double)(CK + 2) * 0x1.0p-24;
    for (size_t n = 0; n < N; n++)
        for (size_t m = 0; m < M; m++)
            for (size_t q = 0; q < HW; q++) {
                double s = b1[m], mg = fabs(s);
                size_t oh = q / W1d, ow = q % W1d;
                for (size_t ci = 0; ci < C; ci++)
                    for (size_t kh = 0; kh < EK; kh++)
                        for (size_t kw = 0; kw < EK; kw++) {
                            long ih = (long)(oh * ES + kh) - (long)ep[0], iw = (long)(ow * ES + kw) - (long)ep[1];
                            if (ih < 0 || iw < 0 || ih >= (long)H || iw >= (long)W) continue;
                            double t = (double)X[(n * C + ci) * XHW + (size_t)ih * W + (size_t)iw] *
                                       W1[((m * C + ci) * EK + kh) * EK + kw];
                            s += t, mg += fabs(t);
                        }
                size_t k = (n * M + m) * HW + q;
                T[k] = (float)ref_act(c->act1, s);
                /* the first layer's error bound and activation slack, in the second's units */
                tmag[k] = (u1 * mg * act_slope(c->act1) + 4e-6 * fabs(T[k])) / (2.0 * 0x1.0p-24) + fabs(T[k]);
            }
    for (size_t n = 0; n < N; n++)
        for (size_t m = 0; m < M; m++)
            for (size_t oh = 0; oh < OH; oh++)
                for (size_t ow = 0; ow < OW; ow++) {
                    double s = b2[m], mg = fabs(s);
                    for (size_t kh = 0; kh < K; kh++)
                        for (size_t kw = 0; kw < K; kw++) {
                            long ih = (long)(oh * S + kh) - (long)c->pads[0], iw = (long)(ow * S + kw) - (long)c->pads[1];
                            if (ih < 0 || iw < 0 || ih >= (long)H1 || iw >= (long)W1d) continue;
                            size_t k = (n * M + m) * HW + (size_t)ih * W1d + (size_t)iw;
                            double w = W2[(m * K + kh) * K + kw];
                            s += w * T[k], mg += fabs(w) * tmag[k];
                        }
                    size_t q = ((n * M + m) * OH + oh) * OW + ow;
                    pre[q] = s, mag[q] = mg;
                }
    kl_convdw_plan *plan = NULL;
    kiln_status st = kl_convdw_prepare(&e, W1, b1, &d, W2, b2, c->band, &plan);
    if (st != KILN_OK) {
        fail(name, "prepare: %s: %s", kiln_status_name(st), kl_error_message());
        goto out;
    }
    size_t oh2, ow2;
    kl_convdw_out_hw(plan, &oh2, &ow2);
    if (oh2 != OH || ow2 != OW) {
        fail(name, "output %zux%zu, expected %zux%zu", oh2, ow2, OH, OW);
        goto out;
    }
    gbuf WS = gb_alloc((kl_convdw_workspace_size(plan, c->threads) + 3) / 4);
    gbuf Y = gb_alloc(ny);
    for (size_t i = 0; i < ny; i++) Y.p[i] = NAN;
    st = kl_convdw_run_n(g_pools[c->threads], plan, N, X, Y.p, WS.p);
    if (st != KILN_OK)
        fail(name, "run: %s: %s", kiln_status_name(st), kl_error_message());
    else
        compare(name, Y.p, OH * OW, pre, mag, N * M, OH * OW, CK + K * K + 4, c->act2,
                c->int_data && act_exact(c->act1) && act_exact(c->act2), 1.0);
    if (!gb_intact(&Y)) fail(name, "sentinel around Y overwritten");
    if (!gb_intact(&WS)) fail(name, "sentinel around the workspace overwritten");
    gb_free(&WS);
    gb_free(&Y);
out:
    kl_convdw_destroy(plan);
    free(X), free(W1), free(b1), free(W2), free(b2), free(T), free(tmag), free(pre), free(mag);
}

/* Odd channel counts in and out (1..63), widths across the vector tails,
 * heights and band sizes that leave every remainder (bands of 1 row up to
 * the whole map, halo rows kept between bands), 3x3/5x5, strides 1 and 2,
 * zero/symmetric/asymmetric/kernel-wide pads, batch 1 and 3, 1 and 2
 * threads, every vector level. */
static void test_convdw(void) {
    static const size_t cs[] = {1, 3, 7, 17, 16};
    static const size_t ms[] = {1, 3, 7, 17, 63, 96};
    static const size_t ws[] = {1, 2, 7, 16, 17, 33, 63};
    static const size_t hs[] = {1, 3, 5, 8, 13, 21};
    static const size_t bands[] = {0, 1, 2, 3, 4, 5};
    kl_isa isas[KL_ISA_COUNT];
    int nisa = isa_list(isas);
    int v = 0;
    for (size_t kk = 3; kk <= 5; kk += 2)
        for (size_t st = 1; st <= 2; st++)
            for (size_t wi = 0; wi < KL_ARRAY_LEN(ws); wi++)
                for (size_t hi = 0; hi < KL_ARRAY_LEN(hs); hi++, v++) {
                    if (g_quick && v % 3) continue;
                    convdw_case c = {0};
                    c.N = v % 5 == 4 ? 3 : 1;
                    c.C = cs[v % KL_ARRAY_LEN(cs)], c.M = ms[(v / 2) % KL_ARRAY_LEN(ms)];
                    c.H = hs[hi], c.W = ws[wi], c.K = kk, c.S = st;
                    size_t p = kk / 2;
                    size_t pads[4] = {p, p, p, p};
                    if (v % 4 == 1) pads[0] = 0, pads[1] = p - 1 + st - 1, pads[2] = p + 1, pads[3] = 0;
                    if (v % 4 == 2) pads[0] = pads[1] = pads[2] = pads[3] = 0;
                    if (v % 4 == 3) pads[0] = pads[1] = pads[2] = pads[3] = kk - 1;
                    if (c.H + pads[0] + pads[2] < kk || c.W + pads[1] + pads[3] < kk) continue;
                    memcpy(c.pads, pads, sizeof pads);
                    c.band = bands[(v / 3) % KL_ARRAY_LEN(bands)];
                    static const kl_act_kind a1[] = {KL_ACT_CLIP, KL_ACT_SILU, KL_ACT_NONE, KL_ACT_RELU};
                    static const kl_act_kind a2[] = {KL_ACT_CLIP, KL_ACT_SILU, KL_ACT_RELU, KL_ACT_NONE, KL_ACT_HARD_SWISH};
                    c.act1 = (kl_act){a1[v % 4], 0, 0}, c.act2 = (kl_act){a2[(v / 4) % 5], 0, 0};
                    if (c.act1.kind == KL_ACT_CLIP) c.act1.alpha = 0.0f, c.act1.beta = 6.0f;
                    if (c.act2.kind == KL_ACT_CLIP) c.act2.alpha = -2.0f, c.act2.beta = 3.0f;
                    c.int_data = v % 2 == 0;
                    for (int ii = 0; ii < nisa; ii++)
                        for (int t = 1; t <= 2; t++) {
                            c.isa = isas[ii], c.threads = t, c.seed = 12000 + (uint64_t)v;
                            run_convdw_case(&c);
                        }
                }
    /* stems (conv.direct or conv.igemm rows into the band): 1-4 input
     * channels, 3x3/5x5/7x7 at strides 1 and 2 with their pads, output
     * channels across the igemm tiles (16, 32, 64) and odd ones, widths
     * across the tails, bands of 1 row to the whole map */
    static const size_t sc[] = {3, 1, 4, 2};
    static const size_t sm[] = {32, 16, 7, 64, 33, 24};
    static const size_t sw[] = {9, 17, 30, 40, 53};
    v = 0;
    for (size_t ek = 3; ek <= 7; ek += 2)
        for (size_t es = 1; es <= 2; es++)
            for (size_t wi = 0; wi < KL_ARRAY_LEN(sw); wi++, v++) {
                if (g_quick && v % 3) continue;
                convdw_case c = {0};
                c.N = v % 4 == 3 ? 2 : 1;
                c.C = sc[v % KL_ARRAY_LEN(sc)], c.M = sm[(v / 2) % KL_ARRAY_LEN(sm)];
                c.W = sw[wi], c.H = 5 + (v * 7) % 19;
                c.EK = ek, c.ES = es;
                size_t p = ek / 2;
                size_t epads[4] = {p, p, p, p};
                if (v % 3 == 1) epads[0] = epads[1] = 0, epads[2] = epads[3] = p ? p - 1 : 0;
                memcpy(c.epads, epads, sizeof epads);
                c.K = v % 5 == 2 ? 5 : 3, c.S = v % 3 == 2 ? 2 : 1;
                size_t pads[4] = {c.K / 2, c.K / 2, c.K / 2, c.K / 2};
                if (v % 4 == 1) pads[0] = pads[1] = 0; /* TF-style stride-2 padding */
                memcpy(c.pads, pads, sizeof pads);
                c.band = bands[v % KL_ARRAY_LEN(bands)];
                static const kl_act_kind a1[] = {KL_ACT_CLIP, KL_ACT_SILU, KL_ACT_RELU, KL_ACT_NONE};
                c.act1 = (kl_act){a1[v % 4], 0, 0}, c.act2 = (kl_act){a1[(v / 4) % 4], 0, 0};
                if (c.act1.kind == KL_ACT_CLIP) c.act1.alpha = 0.0f, c.act1.beta = 6.0f;
                if (c.act2.kind == KL_ACT_CLIP) c.act2.alpha = 0.0f, c.act2.beta = 6.0f;
                c.int_data = v % 2 == 1;
                for (int ii = 0; ii < nisa; ii++)
                    for (int t = 1; t <= 2; t++) {
                        c.isa = isas[ii], c.threads = t, c.seed = 13000 + (uint64_t)v;
                        run_convdw_case(&c);
                    }
            }
    /* MobileNet-V2's and EfficientNet-B0's stems with their depthwise layers, whole maps */
    convdw_case stem = {1, 3, 224, 224, 32, 3, 1, {1, 1, 1, 1}, 0, 3, 2, {1, 1, 1, 1}, {KL_ACT_CLIP, 0, 6},
                        {KL_ACT_CLIP, 0, 6}, false, KL_ISA_AUTO, 2, 12998};
    for (int ii = 0; ii < nisa; ii++) {
        stem.isa = isas[ii];
        stem.act1 = stem.act2 = (kl_act){ii % 2 ? KL_ACT_SILU : KL_ACT_CLIP, 0, 6};
        run_convdw_case(&stem);
    }
    /* MobileNet-V2's 112x112 stride-2 pair at batch 1 with the plan's own bands */
    convdw_case big = {1, 16, 112, 112, 96, 3, 2, {0, 0, 1, 1}, 0, 0, 0, {0}, {KL_ACT_CLIP, 0, 6},
                       {KL_ACT_CLIP, 0, 6}, false, KL_ISA_AUTO, 2, 12999};
    for (int ii = 0; ii < nisa; ii++) {
        big.isa = isas[ii];
        run_convdw_case(&big);
    }
}

/* ---- conv.scaled1x1: a 1x1 convolution of X scaled per (image, channel) ----- */

typedef struct convse_case {
    kl_conv_algo algo; /* KL_CONV_GEMM1X1 (scaled weights) or KL_CONV_IM2ROW (scaled copy of X) */
    size_t N, C, H, W, M;
    bool shared_scale; /* one scale vector for every image (s_stride 0) */
    int z;             /* 0: no residual, 1: Z apart, 2: Z == Y (in place) */
    kl_act act;
    bool int_data;
    kl_isa isa;
    int threads;
    uint64_t seed;
} convse_case;

/* Reference: X * S rounded to float (what the unfused Mul stores), then the
 * 1x1 product in float64.  The kernel scales the weights instead, so the
 * tolerance holds one more rounding per term (the scaled weight's). */
static void run_convse_case(const convse_case *c) {
    char name[384];
    snprintf(name, sizeof name,
             "convse(x=[%zu,%zu,%zu,%zu],m=%zu,algo=%s,scale=%s,z=%d,act=%s,data=%s,isa=%s,threads=%d,seed=%" PRIu64 ")",
             c->N, c->C, c->H, c->W, c->M, kl_conv_algo_name(c->algo), c->shared_scale ? "shared" : "per-image", c->z, kl_act_name(c->act.kind),
             c->int_data ? "int" : "float", kl_isa_name(c->isa), c->threads, c->seed);
    if (!selected("convse", name)) {
        g_skipped_filter++;
        return;
    }
    g_cases++;
    size_t N = c->N, C = c->C, M = c->M, HW = c->H * c->W, nx = N * C * HW, ny = N * M * HW;
    size_t ns = c->shared_scale ? C : N * C;
    rng r = {c->seed};
    float *X = malloc(nx * 4), *S = malloc(ns * 4), *W = malloc(M * C * 4), *b = malloc(M * 4), *Zv = malloc(ny * 4);
    double *pre = malloc(ny * sizeof(double)), *mag = malloc(ny * sizeof(double));
    for (size_t i = 0; i < nx; i++) X[i] = c->int_data ? rng_int(&r, 3) : rng_unit(&r);
    /* int data: scales of a few bits, so X*S and W*S stay exact */
    for (size_t i = 0; i < ns; i++) S[i] = c->int_data ? (float)rng_int(&r, 2) * 0.5f : rng_unit(&r);
    for (size_t i = 0; i < M * C; i++) W[i] = c->int_data ? rng_int(&r, 2) : rng_unit(&r);
    for (size_t i = 0; i < M; i++) b[i] = c->int_data ? rng_int(&r, 5) : rng_unit(&r);
    for (size_t i = 0; i < ny; i++) Zv[i] = c->int_data ? rng_int(&r, 4) : rng_unit(&r);
    for (size_t n = 0; n < N; n++)
        for (size_t m = 0; m < M; m++)
            for (size_t q = 0; q < HW; q++) {
                const float *s = S + (c->shared_scale ? 0 : n * C);
                double acc = b[m], mg = fabs(acc);
                for (size_t ci = 0; ci < C; ci++) {
                    float xs = X[(n * C + ci) * HW + q] * s[ci];
                    double t = (double)xs * W[m * C + ci];
                    acc += t, mg += 2.0 * fabs(t); /* two roundings of the product's factors */
                }
                size_t k = (n * M + m) * HW + q;
                if (c->z) acc += Zv[k], mg += fabs(Zv[k]);
                pre[k] = acc, mag[k] = mg;
            }
    kl_conv2d_desc d = {0};
    d.N = 1, d.C = C, d.H = c->H, d.W = c->W, d.M = M, d.KH = d.KW = 1, d.group = 1;
    d.act = c->act, d.isa = c->isa, d.threads = c->threads, d.algo = c->algo;
    kl_conv2d_plan *plan = NULL;
    kiln_status st = kl_conv2d_prepare(&d, W, b, &plan);
    if (st != KILN_OK) {
        fail(name, "prepare: %s: %s", kiln_status_name(st), kl_error_message());
        goto out;
    }
    gbuf WS = gb_alloc((kl_conv2d_scaled_workspace_size(plan, c->threads, N) + 3) / 4);
    gbuf Y = gb_alloc(ny), Z = gb_alloc(ny);
    memcpy(Z.p, Zv, ny * 4);
    if (c->z == 2) memcpy(Y.p, Zv, ny * 4);
    else
        for (size_t i = 0; i < ny; i++) Y.p[i] = NAN;
    st = kl_conv2d_run_scaled(g_pools[c->threads], plan, N, X, S, c->shared_scale ? 0 : C,
                              c->z == 1 ? Z.p : c->z == 2 ? Y.p : NULL, Y.p, WS.p);
    if (st != KILN_OK)
        fail(name, "run: %s: %s", kiln_status_name(st), kl_error_message());
    else
        compare(name, Y.p, HW, pre, mag, N * M, HW, C + 2, c->act, c->int_data && act_exact(c->act), 1.0);
    if (!gb_intact(&Y)) fail(name, "sentinel around Y overwritten");
    if (!gb_intact(&Z)) fail(name, "sentinel around Z overwritten");
    if (!gb_intact(&WS)) fail(name, "sentinel around the workspace overwritten");
    gb_free(&WS);
    gb_free(&Y);
    gb_free(&Z);
out:
    kl_conv2d_destroy(plan);
    free(X), free(S), free(W), free(b), free(Zv), free(pre), free(mag);
}

/* Odd channel counts in and out (the packed panels' tails of 6 rows and the
 * 16-lane tails of the pixels), maps of 1 to 900 pixels (one tile and
 * several), batch 1 and 3 with per-image and shared scales, residual apart
 * and in place, both algorithms (scaled weights; im2row's scaled copy of
 * X), every vector level, 1 and 2 threads; and a plan of another algorithm
 * refused. */
static void test_convse(void) {
    static const size_t cs[] = {1, 3, 17, 32, 63};
    static const size_t ms[] = {1, 5, 7, 16, 40};
    static const size_t hw[][2] = {{1, 1}, {3, 5}, {4, 4}, {7, 7}, {14, 14}, {30, 30}};
    kl_isa isas[KL_ISA_COUNT];
    int nisa = isa_list(isas);
    int v = 0;
    for (size_t ci = 0; ci < KL_ARRAY_LEN(cs); ci++)
        for (size_t hi = 0; hi < KL_ARRAY_LEN(hw); hi++, v++) {
            if (g_quick && v % 2) continue;
            convse_case c = {0};
            c.N = v % 3 == 1 ? 3 : 1;
            c.C = cs[ci], c.M = ms[(v / 2) % KL_ARRAY_LEN(ms)];
            c.H = hw[hi][0], c.W = hw[hi][1];
            c.shared_scale = v % 4 == 3;
            c.z = v % 3;
            static const kl_act_kind acts[] = {KL_ACT_NONE, KL_ACT_RELU, KL_ACT_SILU, KL_ACT_CLIP};
            c.act = (kl_act){acts[v % 4], 0, 0};
            if (c.act.kind == KL_ACT_CLIP) c.act.alpha = -2.0f, c.act.beta = 3.0f;
            c.int_data = v % 2 == 0;
            for (int al = 0; al < 2; al++)
                for (int ii = 0; ii < nisa; ii++)
                    for (int t = 1; t <= 2; t++) {
                        c.algo = al ? KL_CONV_IM2ROW : KL_CONV_GEMM1X1;
                        c.isa = isas[ii], c.threads = t, c.seed = 13000 + (uint64_t)v;
                        run_convse_case(&c);
                    }
        }
    /* EfficientNet-B0's first project layer: 32 -> 16 at 112x112 */
    convse_case big = {KL_CONV_GEMM1X1, 1, 32, 112, 112, 16, false, 0, {KL_ACT_NONE, 0, 0}, false, KL_ISA_AUTO, 2, 13999};
    /* and its last one at 7x7 (im2row): 1152 -> 320, residual in place */
    convse_case late = {KL_CONV_IM2ROW, 1, 1152, 7, 7, 320, false, 2, {KL_ACT_NONE, 0, 0}, false, KL_ISA_AUTO, 2, 13998};
    for (int ii = 0; ii < nisa; ii++) {
        big.isa = late.isa = isas[ii];
        run_convse_case(&big);
        run_convse_case(&late);
    }
    /* a plan of another algorithm is refused with a status */
    if (selected("convse", "convse(refuse im2col)")) {
        g_cases++;
        kl_conv2d_desc d = {0};
        d.N = 1, d.C = 4, d.H = d.W = 5, d.M = 3, d.KH = d.KW = 1, d.group = 1, d.threads = 1, d.algo = KL_CONV_IM2COL;
        float W[12] = {0}, X[100] = {0}, S[4] = {0}, Y[75];
        kl_conv2d_plan *p = NULL;
        if (kl_conv2d_prepare(&d, W, NULL, &p) != KILN_OK) {
            fail("convse(refuse im2col)", "prepare: %s", kl_error_message());
        } else {
            void *ws = malloc(kl_conv2d_scaled_workspace_size(p, 1, 1));
            if (kl_conv2d_run_scaled(NULL, p, 1, X, S, 4, NULL, Y, ws) != KILN_ERR_INVALID_ARGUMENT)
                fail("convse(refuse im2col)", "an im2col plan was not refused");
            kl_error_clear();
            free(ws);
        }
        kl_conv2d_destroy(p);
    }
}

/* ---- thread pool ------------------------------------------------------------- */

typedef struct pool_probe {
    int *hits;
    int bad_tid;
    int threads;
} pool_probe;
static void probe_fn(void *arg, size_t b, size_t e, int tid) {
    pool_probe *p = arg;
    if (tid < 0 || tid >= p->threads) p->bad_tid = 1;
    for (size_t i = b; i < e; i++) __atomic_fetch_add(&p->hits[i], 1, __ATOMIC_RELAXED);
}
static void nested_fn(void *arg, size_t b, size_t e, int tid) {
    kl_pool *pool = arg;
    (void)tid;
    for (size_t i = b; i < e; i++) {
        int hits[5] = {0};
        pool_probe p = {hits, 0, 64};
        kl_parallel_for(pool, 5, probe_fn, &p); /* runs inline, no deadlock */
    }
}

/* A starved worker (its core taken): share 1 of a static job, when a
 * worker runs it, takes 3 ms (as if descheduled).  The caller, done with
 * share 0 in 0.2 ms, waits for it; the pool must then run its next job on the caller
 * alone (tid 0, this thread), and every item still exactly once. */
typedef struct starve_probe {
    int *hits;
    pthread_t caller;
    int slept, other_thread;
    int64_t share0_end; /* ns, when the caller finished share 0 */
} starve_probe;
static int64_t probe_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}
static void starve_fn(void *arg, size_t b, size_t e, int tid) {
    starve_probe *p = arg;
    bool worker = !pthread_equal(pthread_self(), p->caller);
    if (worker) __atomic_store_n(&p->other_thread, 1, __ATOMIC_RELAXED);
    if (tid == 1 && worker) {
        struct timespec ts = {0, 3000000};
        nanosleep(&ts, NULL);
        __atomic_store_n(&p->slept, 1, __ATOMIC_RELAXED);
    } else if (tid == 0 && !worker) { /* 0.2 ms of work: time for the worker to claim share 1 */
        int64_t t0 = probe_ns();
        while (probe_ns() - t0 < 200000) {
        }
        p->share0_end = probe_ns();
    }
    for (size_t i = b; i < e; i++) __atomic_fetch_add(&p->hits[i], 1, __ATOMIC_RELAXED);
}
static void test_pool_starved(void) {
    g_cases++;
    kl_pool *pool;
    if (kl_pool_create(2, &pool) != KILN_OK) {
        fail("pool(starved)", "create: %s", kl_error_message());
        return;
    }
    int tried = 0, checked = 0;
    for (int rep = 0; rep < 20 && checked < 3; rep++) {
        int h[64] = {0};
        starve_probe warm = {h, pthread_self(), 0, 0, 0}, slow = {h, pthread_self(), 0, 0, 0},
                     next = {h, pthread_self(), 0, 0, 0};
        kl_parallel_for(pool, 64, starve_fn, &warm); /* the worker awake */
        int64_t a = probe_ns();
        kl_parallel_for(pool, 64, starve_fn, &slow);
        int64_t z = probe_ns();
        kl_parallel_for(pool, 64, starve_fn, &next);
        for (int i = 0; i < 64; i++)
            if (h[i] != 3) fail("pool(starved)", "rep %d: item %d ran %d times of 3", rep, i, h[i]);
        tried++;
        /* checked only where the pool's rule surely fired: a worker ran share 1, the caller was done
         * with share 0 early (this thread not descheduled) and then waited well over 1 ms */
        if (!slow.slept || !slow.share0_end || slow.share0_end - a > 400000 || z - slow.share0_end < 2000000) continue;
        checked++;
        if (getenv("KILN_POOL_ADAPT") == NULL && next.other_thread)
            fail("pool(starved)", "rep %d: the job after a 3 ms wait for a worker ran on a worker", rep);
        struct timespec ts = {0, 200000000}; /* past the inline period (20, 40, 80 ms): workers tried again */
        nanosleep(&ts, NULL);
    }
    if (!checked) fprintf(stderr, "  pool(starved): the worker never ran share 1 in %d tries (not checked)\n", tried);
    kl_pool_destroy(pool);
}

static void test_pool(void) {
    if (!selected("pool", "pool()")) return;
    for (int t = 1; t <= 3; t++) {
        char name[64];
        snprintf(name, sizeof name, "pool(threads=%d)", t);
        g_cases++;
        kl_pool *pool;
        if (kl_pool_create(t, &pool) != KILN_OK) {
            fail(name, "create: %s", kl_error_message());
            continue;
        }
        if (kl_pool_threads(pool) != t) fail(name, "kl_pool_threads says %d", kl_pool_threads(pool));
        static const size_t ns[] = {0, 1, 2, 3, 7, 100, 1000};
        for (int rep = 0; rep < 300; rep++)
            for (size_t k = 0; k < KL_ARRAY_LEN(ns); k++) {
                int *hits = calloc(ns[k] + 1, sizeof(int));
                pool_probe p = {hits, 0, t};
                kl_parallel_for(pool, ns[k], probe_fn, &p);
                for (size_t i = 0; i < ns[k]; i++)
                    if (hits[i] != 1) {
                        fail(name, "n=%zu rep=%d: item %zu ran %d times", ns[k], rep, i, hits[i]);
                        rep = 1 << 20;
                        break;
                    }
                if (p.bad_tid) fail(name, "tid out of range");
                free(hits);
            }
        kl_parallel_for(pool, 4, nested_fn, pool);
        /* dynamic jobs interleaved with static ones (a worker late for a
         * dynamic job must never run a chunk of the next job), chunk sizes
         * across the item count, max_threads below the pool, a chunk count
         * above the claim word's 65535 */
        static const size_t chunks[] = {1, 2, 3, 64, 1000};
        for (int rep = 0; rep < 300; rep++)
            for (size_t k = 0; k < KL_ARRAY_LEN(ns); k++) {
                size_t n = ns[k], ch = chunks[(size_t)rep % KL_ARRAY_LEN(chunks)];
                int mt = 1 + rep % t;
                int *hits = calloc(n + 1, sizeof(int));
                pool_probe p = {hits, 0, mt};
                kl_parallel_for_dyn(pool, mt, n, ch, probe_fn, &p);
                if (rep % 3 == 0) {
                    int h2[7] = {0};
                    pool_probe q = {h2, 0, t};
                    kl_parallel_for(pool, 7, probe_fn, &q);
                    for (int i = 0; i < 7; i++)
                        if (h2[i] != 1) fail(name, "static job after a dynamic one: item %d ran %d times", i, h2[i]);
                }
                for (size_t i = 0; i < n; i++)
                    if (hits[i] != 1) {
                        fail(name, "dyn n=%zu chunk=%zu max_threads=%d rep=%d: item %zu ran %d times", n, ch, mt, rep,
                             i, hits[i]);
                        rep = 1 << 20;
                        break;
                    }
                if (p.bad_tid) fail(name, "dyn: tid out of range (max_threads %d)", mt);
                free(hits);
            }
        {
            size_t n = 200000;
            int *hits = calloc(n, sizeof(int));
            pool_probe p = {hits, 0, t};
            kl_parallel_for_dyn(pool, t, n, 1, probe_fn, &p);
            for (size_t i = 0; i < n; i++)
                if (hits[i] != 1) {
                    fail(name, "dyn n=%zu chunk=1: item %zu ran %d times", n, i, hits[i]);
                    break;
                }
            free(hits);
        }
        kl_parallel_for_dyn(pool, t, 4, 1, nested_fn, pool);
        kl_pool_destroy(pool);
    }
    /* partition: contiguous, complete, balanced */
    g_cases++;
    for (int th = 1; th <= 7; th++)
        for (size_t total = 0; total < 30; total++) {
            size_t next = 0;
            for (int tid = 0; tid < th; tid++) {
                size_t b, c;
                kl_partition_work(tid, th, total, &b, &c);
                if (b != next || c > total / (size_t)th + 1 || c < total / (size_t)th) fail("partition", "bad split");
                next = b + c;
            }
            if (next != total) fail("partition", "split does not cover %zu items", total);
        }
    kl_pool *bad;
    g_cases++;
    if (kl_pool_create(0, &bad) != KILN_ERR_INVALID_ARGUMENT) fail("pool(threads=0)", "accepted");
}

/* ---- errors and ISA bookkeeping ------------------------------------------------ */

static void test_misc(void) {
    if (!selected("misc", "misc()")) return;
    g_cases++;
    kl_isa v;
    if (!kl_isa_parse("avx2", &v) || v != KL_ISA_AVX2 || kl_isa_parse("sse9", &v)) fail("misc(isa_parse)", "wrong");
    if (!kl_isa_supported(KL_ISA_REF) || kl_isa_resolve(KL_ISA_COUNT) != kl_isa_active())
        fail("misc(isa_resolve)", "wrong");
    if (kl_isa_resolve(KL_ISA_AVX512) > kl_cpu_isa_get()->active) fail("misc(isa_resolve)", "above KILN_ISA");
    /* a packed B of other dimensions is refused, naming the shapes */
    float Bm[12] = {0}, Cm[12], Am[12] = {0};
    void *pb = malloc(kl_sgemm_pack_b_size(3, 4));
    kl_sgemm_pack_b(Bm, 4, false, 3, 4, pb);
    kl_gemm_args a = {0};
    a.M = 3, a.N = 4, a.K = 2, a.A = Am, a.lda = 2, a.packed_b = pb, a.C = Cm, a.ldc = 4, a.alpha = 1;
    if (kl_sgemm(NULL, &a) != KILN_ERR_INVALID_ARGUMENT || !strstr(kl_error_message(), "packed B"))
        fail("misc(packed_b_mismatch)", "not refused: %s", kl_error_message());
    a.K = 3, a.lda = 3;
    if (kl_sgemm(NULL, &a) != KILN_OK) fail("misc(packed_b_ok)", "%s", kl_error_message());
    char junk[128] = {0};
    a.packed_b = junk;
    if (kl_sgemm(NULL, &a) != KILN_ERR_INVALID_ARGUMENT) fail("misc(packed_b_junk)", "not refused");
    a.packed_b = NULL, a.B = Bm, a.ldb = 4, a.workspace = junk, a.workspace_bytes = 16;
    if (kl_sgemm(NULL, &a) != KILN_ERR_INVALID_ARGUMENT) fail("misc(small_workspace)", "not refused");
    free(pb);
    /* forced tactics that cannot run a shape */
    kl_conv2d_desc d = {1, 4, 5, 5, 8, 3, 3, 1};
    d.algo = KL_CONV_DEPTHWISE;
    kl_conv2d_plan *plan = NULL;
    float w[8 * 4 * 9] = {0};
    if (kl_conv2d_prepare(&d, w, NULL, &plan) != KILN_ERR_UNSUPPORTED) fail("misc(conv_forced)", "accepted");
    d.algo = KL_CONV_GEMM1X1;
    if (kl_conv2d_prepare(&d, w, NULL, &plan) != KILN_ERR_UNSUPPORTED) fail("misc(conv_forced_1x1)", "accepted");
    d.algo = KL_CONV_AUTO, d.group = 3;
    if (kl_conv2d_prepare(&d, w, NULL, &plan) != KILN_ERR_INVALID_ARGUMENT) fail("misc(conv_group)", "accepted");
    for (int i = KL_ISA_REF; i < KL_ISA_COUNT; i++)
        if (kl_isa_supported((kl_isa)i) && !(kl_cpu_peak_gflops((kl_isa)i) > 0.1))
            fail("misc(peak)", "peak of %s not measured", kl_isa_name((kl_isa)i));
}

#include "test_attn.h" /* attn cases (fused attention) */

static void support(void) {
    const kl_cpu_isa *c = kl_cpu_isa_get();
    printf("cpu: %s (%s)\nbest: %s  active: %s%s\n", c->brand, c->vendor, kl_isa_name(c->best), kl_isa_name(c->active),
           c->env_ignored ? "  (KILN_ISA ignored: unknown name)" : "");
    printf("avx2=%d fma=%d f16c=%d avx512f=%d bw=%d dq=%d vl=%d vnni=%d bf16=%d os_ymm=%d os_zmm=%d\n", c->avx2, c->fma,
           c->f16c, c->avx512f, c->avx512bw, c->avx512dq, c->avx512vl, c->avx512vnni, c->avx512bf16, c->os_ymm,
           c->os_zmm);
    for (int i = KL_ISA_REF; i < KL_ISA_COUNT; i++)
        printf("isa %-7s %s\n", kl_isa_name((kl_isa)i), kl_isa_supported((kl_isa)i) ? "supported" : "no");
    printf("tactics: sgemm.packed");
    for (int a = KL_CONV_GEMM1X1; a < KL_CONV_ALGO_COUNT; a++) printf(" %s", kl_conv_algo_name((kl_conv_algo)a));
    printf("\n");
}

/* ---- copy: the tensor family's strided copies over the pool ------------------------ */

/* kl_tz_strided_mt on 2 threads against kl_tz_strided (one thread) for the
 * copies of Transpose, Concat (an input into its slab of the output),
 * Slice with steps and Reshape, at sizes past the 1 MiB threshold and
 * under it, elements of 1, 2, 4 and 8 bytes; bytes outside the copied
 * elements must stay as they were. */
static void copy_case(const char *what, kiln_dtype dt, int rank, const int64_t *dims, const int64_t *sstr,
                      int64_t soff, const int64_t *dstr, int64_t doff, int64_t src_n, int64_t dst_n) {
    char name[160];
    snprintf(name, sizeof name, "copy(%s,dtype=%s,n=%lld)", what, kiln_dtype_name(dt), (long long)dst_n);
    if (!selected("copy", name)) {
        g_skipped_filter++;
        return;
    }
    g_cases++;
    kl_rt *src = NULL, *a = NULL, *b = NULL;
    if (kl_rt_tensor(dt, 1, &src_n, &src) || kl_rt_tensor(dt, 1, &dst_n, &a) || kl_rt_tensor(dt, 1, &dst_n, &b)) {
        fail(name, "no memory");
        goto done;
    }
    uint32_t seed = 7767517;
    for (size_t i = 0; i < src->nbytes; i++) ((uint8_t *)src->data)[i] = (uint8_t)((seed = seed * 1664525u + 1013904223u) >> 24);
    memset(a->data, 0xA5, a->nbytes);
    memset(b->data, 0xA5, b->nbytes);
    if (kl_tz_strided(a, doff, dstr, src, soff, sstr, rank, dims) ||
        kl_tz_strided_mt(g_pools[2], b, doff, dstr, src, soff, sstr, rank, dims)) {
        fail(name, "%s", kl_error_message());
        goto done;
    }
    if (memcmp(a->data, b->data, a->nbytes)) fail(name, "differs from the one-thread copy");
    if (dt == KILN_DTYPE_FLOAT) { /* the one-thread copy itself, element by element */
        int64_t idx[KILN_MAX_RANK] = {0}, bad = 0;
        for (int64_t o = 0;; o++) {
            int64_t so = soff, dof = doff;
            for (int k = 0; k < rank; k++) so += idx[k] * sstr[k], dof += idx[k] * dstr[k];
            bad += memcmp((float *)a->data + dof, (float *)src->data + so, 4) != 0;
            int k = rank - 1;
            for (; k >= 0 && ++idx[k] == dims[k]; k--) idx[k] = 0;
            if (k < 0) break;
        }
        if (bad) fail(name, "%lld elements wrong", (long long)bad);
    }
done:
    kl_rt_unref(src);
    kl_rt_unref(a);
    kl_rt_unref(b);
}

static void test_copy(void) {
    static const kiln_dtype dts[] = {KILN_DTYPE_FLOAT, KILN_DTYPE_UINT8, KILN_DTYPE_FLOAT16, KILN_DTYPE_INT64};
    for (size_t t = 0; t < sizeof dts / sizeof dts[0]; t++) {
        kiln_dtype dt = dts[t];
        /* Concat input [8, 37, 61, 67] into channels [20, 57) of [8, 80, 61, 67] */
        int64_t cd[4] = {8, 37, 61, 67}, cs[4] = {37 * 61 * 67, 61 * 67, 67, 1}, co[4] = {80 * 61 * 67, 61 * 67, 67, 1};
        copy_case("concat_b8", dt, 4, cd, cs, 0, co, 20 * 61 * 67, 8 * 37 * 61 * 67, 8 * 80 * 61 * 67);
        /* the same at batch 1: one contiguous run cut into pieces */
        int64_t cd1[4] = {1, 77, 61, 67};
        copy_case("concat_b1", dt, 4, cd1, cs, 0, co, 3 * 61 * 67, 77 * 61 * 67, 80 * 61 * 67);
        /* Transpose [3, 300, 257] -> (2, 0, 1): source strides permuted */
        int64_t td[3] = {257, 3, 300}, ts[3] = {1, 300 * 257, 257}, to[3] = {3 * 300, 300, 1};
        copy_case("transpose", dt, 3, td, ts, 0, to, 0, 3 * 300 * 257, 3 * 300 * 257);
        /* Slice of a [6, 1000, 130] tensor: rows 1..999 step 2, columns 3.. step 3 */
        int64_t sd[3] = {6, 499, 43}, ss[3] = {1000 * 130, 2 * 130, 3}, so[3] = {499 * 43, 43, 1};
        copy_case("slice_steps", dt, 3, sd, ss, 130 + 3, so, 0, 6 * 1000 * 130, 6 * 499 * 43);
        /* Reshape-like plain copy, 1.5 MiB and more; and a small one (one thread) */
        int64_t n1 = 3 * 131072 + 5, one = 1;
        copy_case("flat", dt, 1, &n1, &one, 0, &one, 0, n1, n1);
        int64_t n2 = 1000;
        copy_case("flat_small", dt, 1, &n2, &one, 0, &one, 0, n2, n2);
    }
}

/* ---- transposed convolution (kl_convt2d) --------------------------------------- */

typedef struct convt_shape {
    size_t N, C, IH, IW, M, KH, KW, G, S, D;
    long PT, PL, PB, PR; /* begin/end pads; negative: output_shape past the natural size */
    size_t OPAD;         /* output_padding, both axes */
} convt_shape;

/* Against a float64 scatter: each input pixel times each tap, added where it lands. */
static void run_convt_case(const convt_shape *sh, kl_isa isa, int threads, bool bias, bool int_data, uint64_t seed) {
    size_t G = sh->G, Cg = sh->C / G, Mg = sh->M / G, S = sh->S, D = sh->D;
    long OHl = (long)((sh->IH - 1) * S + (sh->KH - 1) * D + 1 + sh->OPAD) - sh->PT - sh->PB;
    long OWl = (long)((sh->IW - 1) * S + (sh->KW - 1) * D + 1 + sh->OPAD) - sh->PL - sh->PR;
    char name[512];
    snprintf(name, sizeof name,
             "convt(x=[%zu,%zu,%zu,%zu],w=[%zu,%zu,%zu,%zu],g=%zu,s=%zu,d=%zu,p=%ld.%ld.%ld.%ld,opad=%zu,out=%ldx%ld,"
             "bias=%d,data=%s,isa=%s,threads=%d,seed=%" PRIu64 ")",
             sh->N, sh->C, sh->IH, sh->IW, sh->C, Mg, sh->KH, sh->KW, G, S, D, sh->PT, sh->PL, sh->PB, sh->PR, sh->OPAD,
             OHl, OWl, bias, int_data ? "int" : "float", kl_isa_name(isa), threads, seed);
    if (!selected("convt", name)) {
        g_skipped_filter++;
        return;
    }
    g_cases++;
    if (OHl < 1 || OWl < 1) {
        fail(name, "bad case: empty output");
        return;
    }
    size_t OH = (size_t)OHl, OW = (size_t)OWl;
    rng r = {seed};
    size_t nx = sh->N * sh->C * sh->IH * sh->IW, nw = sh->C * Mg * sh->KH * sh->KW, ny = sh->N * sh->M * OH * OW;
    float *X = malloc(nx * 4), *Wt = malloc(nw * 4), *B = malloc(sh->M * 4);
    double *pre = malloc(ny * sizeof(double)), *mag = malloc(ny * sizeof(double));
    for (size_t i = 0; i < nx; i++) X[i] = int_data ? rng_int(&r, 3) : rng_unit(&r);
    for (size_t i = 0; i < nw; i++) Wt[i] = int_data ? rng_int(&r, 2) : rng_unit(&r);
    for (size_t i = 0; i < sh->M; i++) B[i] = int_data ? rng_int(&r, 5) : rng_unit(&r);
    for (size_t n = 0; n < sh->N; n++)
        for (size_t m = 0; m < sh->M; m++)
            for (size_t q = 0; q < OH * OW; q++) {
                pre[(n * sh->M + m) * OH * OW + q] = bias ? B[m] : 0.0;
                mag[(n * sh->M + m) * OH * OW + q] = bias ? fabs(B[m]) : 0.0;
            }
    for (size_t n = 0; n < sh->N; n++)
        for (size_t ci = 0; ci < sh->C; ci++) {
            size_t g = ci / Cg;
            for (size_t iy = 0; iy < sh->IH; iy++)
                for (size_t ix = 0; ix < sh->IW; ix++) {
                    double xv = X[((n * sh->C + ci) * sh->IH + iy) * sh->IW + ix];
                    for (size_t mg = 0; mg < Mg; mg++)
                        for (size_t kh = 0; kh < sh->KH; kh++)
                            for (size_t kw = 0; kw < sh->KW; kw++) {
                                long oy = (long)(iy * S + kh * D) - sh->PT, ox = (long)(ix * S + kw * D) - sh->PL;
                                if (oy < 0 || ox < 0 || oy >= OHl || ox >= OWl) continue;
                                double t = xv * Wt[((ci * Mg + mg) * sh->KH + kh) * sh->KW + kw];
                                size_t q = ((n * sh->M + g * Mg + mg) * OH + (size_t)oy) * OW + (size_t)ox;
                                pre[q] += t;
                                mag[q] += fabs(t);
                            }
                }
        }
    kl_convt2d_desc d = {sh->C, sh->M, G, sh->KH, sh->KW, S, S, D, D, isa};
    kl_convt2d_plan *plan = NULL;
    kiln_status st = kl_convt2d_prepare(&d, Wt, bias ? B : NULL, &plan);
    if (st != KILN_OK) {
        fail(name, "prepare: %s: %s", kiln_status_name(st), kl_error_message());
    } else {
        kl_convt2d_geom geo = {sh->IH, sh->IW, OH, OW, sh->PT, sh->PL};
        size_t wsb = kl_convt2d_workspace_size(plan, &geo, threads);
        gbuf WS = gb_alloc((wsb + 3) / 4), Y = gb_alloc(ny);
        for (size_t i = 0; i < ny; i++) Y.p[i] = NAN;
        st = kl_convt2d_run(g_pools[threads], plan, sh->N, &geo, X, Y.p, WS.p);
        kl_act none = {KL_ACT_NONE, 0, 0};
        if (st != KILN_OK)
            fail(name, "run: %s: %s", kiln_status_name(st), kl_error_message());
        else
            compare(name, Y.p, OH * OW, pre, mag, sh->N * sh->M, OH * OW, Cg * sh->KH * sh->KW + 2, none, int_data, 1.0);
        if (!gb_intact(&Y)) fail(name, "sentinel around Y overwritten");
        if (!gb_intact(&WS)) fail(name, "sentinel around the workspace overwritten");
        gb_free(&WS);
        gb_free(&Y);
    }
    kl_convt2d_destroy(plan);
    free(X), free(Wt), free(B), free(pre), free(mag);
}

static void test_convt(void) {
    static const convt_shape shapes[] = {
        /* N  C  IH  IW   M  KH KW G  S  D   PT  PL  PB  PR opad */
        {1, 3, 5, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},      /* same-size 3x3 */
        {2, 8, 6, 5, 6, 2, 2, 1, 2, 1, 0, 0, 0, 0, 0},      /* 2x2 stride-2 upsampling, batch 2 */
        {1, 7, 9, 11, 17, 3, 3, 1, 2, 1, 1, 1, 1, 1, 1},    /* 3x3/2 with output_padding */
        {1, 6, 5, 5, 4, 3, 3, 2, 2, 1, 0, 1, 1, 0, 0},      /* groups, asymmetric pads */
        {1, 5, 4, 6, 5, 3, 3, 5, 1, 1, 1, 1, 1, 1, 0},      /* depthwise */
        {1, 4, 6, 6, 3, 3, 3, 1, 1, 2, 2, 2, 2, 2, 0},      /* dilation 2 */
        {1, 3, 4, 5, 2, 5, 5, 1, 3, 1, 2, 1, 0, 3, 0},      /* 5x5 stride 3 (taps apart) */
        {1, 2, 3, 4, 3, 3, 3, 1, 2, 1, -1, -2, 1, 0, 0},    /* output past the natural size (negative pads) */
        {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},      /* 1x1 of 1x1 */
        {1, 17, 7, 1, 63, 3, 1, 1, 2, 1, 1, 0, 1, 0, 0},    /* one column, vector tails */
        {1, 8, 40, 64, 64, 4, 4, 1, 2, 1, 1, 1, 1, 1, 0},   /* 1024 rows of col x 64 columns: several bands */
        {1, 32, 16, 16, 16, 2, 2, 1, 2, 1, 0, 0, 0, 0, 0},  /* a U-Net decoder's upsampling */
    };
    kl_isa isas[KL_ISA_COUNT];
    int nisa = isa_list(isas), v = 0;
    for (size_t i = 0; i < KL_ARRAY_LEN(shapes); i++)
        for (int ii = 0; ii < nisa; ii++)
            for (int t = 1; t <= 2; t++, v++) {
                if (g_quick && (v % 3)) continue;
                run_convt_case(&shapes[i], isas[ii], t, (v % 4) != 3, (v % 2) == 0, 7000 + (uint64_t)v);
            }
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc)
            g_op = argv[++i];
        else if (!strcmp(argv[i], "-p") && i + 1 < argc && g_npat < 16)
            g_pat[g_npat++] = argv[++i];
        else if (!strcmp(argv[i], "--quick"))
            g_quick = true;
        else if (!strcmp(argv[i], "-v"))
            g_verbose = true;
        else if (!strcmp(argv[i], "support")) {
            support();
            return 0;
        } else {
            fprintf(stderr, "usage: test-ops [support] [-o sgemm|batch|act|conv|convdw|convse|convt|attn|pool|misc|copy] [-p PATTERN]... [--quick] [-v]\n");
            return 2;
        }
    }
    if (getenv("KILN_TEST_OPS_QUICK")) g_quick = true;
    g_pools[0] = NULL;
    g_pools[1] = NULL; /* one thread: the NULL pool, inline */
    if (kl_pool_create(2, &g_pools[2]) != KILN_OK) {
        fprintf(stderr, "test-ops: no thread pool: %s\n", kl_error_message());
        return 1;
    }
    kl_isa isas[KL_ISA_COUNT];
    int nisa = isa_list(isas);
    fprintf(stderr, "test-ops: levels:");
    for (int i = 0; i < nisa; i++) fprintf(stderr, " %s", kl_isa_name(isas[i]));
    fprintf(stderr, "%s\n", g_quick ? " (quick sweep)" : "");
    test_misc();
    test_copy();
    test_pool();
    if (selected("pool", "pool(starved)")) test_pool_starved();
    test_act();
    test_sgemm();
    test_sgemm_batch();
    test_conv();
    test_convdw();
    test_convse();
    test_convt();
    test_attn();
    kl_pool_destroy(g_pools[2]);
    fprintf(stderr, "test-ops: %ld cases, %ld failed (%ld filtered out)\n", g_cases, g_failed, g_skipped_filter);
    return g_failed ? 1 : 0;
}
