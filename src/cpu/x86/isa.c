/*
 * isa.c — cpuid/XGETBV detection (once, pthread_once), the KILN_ISA override,
 * the per-level kernel tables and the FMA peak measurement.
 */
#include "cpu/x86/isa.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "cpu/threadpool.h"
#include "cpu/x86/kernels.h"

#if defined(KL_HAVE_X86)
#include <cpuid.h>
#endif

static kl_cpu_isa g_isa;
static pthread_once_t g_isa_once = PTHREAD_ONCE_INIT;

#if defined(KL_HAVE_X86)
/* XCR0 through the xgetbv instruction (needs no -mxsave). */
static unsigned long long read_xcr0(void) {
    unsigned int lo, hi;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

/* Fill g_isa's feature bits from cpuid and XGETBV. */
static void detect_x86(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    unsigned int max_leaf = a;
    memcpy(g_isa.vendor, &b, 4);
    memcpy(g_isa.vendor + 4, &d, 4);
    memcpy(g_isa.vendor + 8, &c, 4);
    g_isa.vendor[12] = 0;
    if (__get_cpuid(0x80000000u, &a, &b, &c, &d) && a >= 0x80000004u) {
        unsigned int r[12];
        for (unsigned int i = 0; i < 3; i++)
            __get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
        memcpy(g_isa.brand, r, 48);
        g_isa.brand[48] = 0;
    }
    if (max_leaf < 1) return;
    __cpuid_count(1, 0, a, b, c, d);
    g_isa.family = (a >> 8) & 0xf;
    if (g_isa.family == 0xf) g_isa.family += (a >> 20) & 0xff;
    bool osxsave = (c >> 27) & 1;
    g_isa.avx = (c >> 28) & 1;
    g_isa.fma = (c >> 12) & 1;
    g_isa.f16c = (c >> 29) & 1;
    if (osxsave) {
        unsigned long long xcr0 = read_xcr0();
        g_isa.os_ymm = (xcr0 & 0x6) == 0x6;
        g_isa.os_zmm = (xcr0 & 0xE6) == 0xE6;
    }
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        unsigned int max_sub = a;
        g_isa.avx2 = (b >> 5) & 1;
        g_isa.avx512f = (b >> 16) & 1;
        g_isa.avx512dq = (b >> 17) & 1;
        g_isa.avx512bw = (b >> 30) & 1;
        g_isa.avx512vl = (b >> 31) & 1;
        g_isa.avx512vnni = (c >> 11) & 1;
        if (max_sub >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            g_isa.avx512bf16 = (a >> 5) & 1;
        }
    }
}
#endif

/* pthread_once body: detection, then the KILN_ISA override. */
static void isa_init(void) {
    g_isa.best = KL_ISA_REF;
#if defined(KL_HAVE_X86)
    detect_x86();
    if (g_isa.avx && g_isa.avx2 && g_isa.fma && g_isa.f16c && g_isa.os_ymm) {
        g_isa.best = KL_ISA_AVX2;
        if (g_isa.avx512f && g_isa.avx512bw && g_isa.avx512dq && g_isa.avx512vl && g_isa.os_zmm)
            g_isa.best = KL_ISA_AVX512;
    }
#endif
    g_isa.active = g_isa.best;
    const char *bl1 = getenv("KILN_GEMM_BL1");
    g_isa.gemm_bl1 = bl1 && *bl1 ? strcmp(bl1, "0") != 0 : strcmp(g_isa.vendor, "GenuineIntel") == 0;
    const char *dwa = getenv("KILN_DW_AVX2");
    g_isa.dw_avx2 = dwa && *dwa ? strcmp(dwa, "0") != 0
                                : strcmp(g_isa.vendor, "AuthenticAMD") == 0 && g_isa.family == 0x19;
    const char *bl1p = getenv("KILN_GEMM_BL1P");
    long kc = bl1p && *bl1p ? strtol(bl1p, NULL, 10) : 128;
    g_isa.gemm_bl1p_kc = kc >= 16 && kc <= 4096 ? (unsigned)kc : 0;
    const char *env = getenv("KILN_ISA");
    if (env && *env) {
        kl_isa want;
        if (kl_isa_parse(env, &want)) {
            if (want != KL_ISA_AUTO && want < g_isa.best) g_isa.active = want;
        } else {
            g_isa.env_ignored = true;
        }
    }
}

const kl_cpu_isa *kl_cpu_isa_get(void) {
    pthread_once(&g_isa_once, isa_init);
    return &g_isa;
}

kl_isa kl_isa_active(void) { return kl_cpu_isa_get()->active; }

kl_isa kl_isa_resolve(kl_isa isa) {
    const kl_cpu_isa *c = kl_cpu_isa_get();
    if (isa == KL_ISA_AUTO || isa >= KL_ISA_COUNT) return c->active;
    return isa > c->active ? c->active : isa;
}

bool kl_isa_supported(kl_isa isa) {
    return isa >= KL_ISA_REF && isa < KL_ISA_COUNT && isa <= kl_cpu_isa_get()->active;
}

const char *kl_isa_name(kl_isa isa) {
    switch (isa) {
    case KL_ISA_AUTO: return "auto";
    case KL_ISA_REF: return "ref";
    case KL_ISA_AVX2: return "avx2";
    case KL_ISA_AVX512: return "avx512";
    default: return "?";
    }
}

bool kl_isa_parse(const char *name, kl_isa *out) {
    static const char *names[] = {"auto", "ref", "avx2", "avx512"};
    for (int i = 0; i < KL_ISA_COUNT; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (kl_isa)i;
            return true;
        }
    if (strcmp(name, "generic") == 0) {
        *out = KL_ISA_REF;
        return true;
    }
    return false;
}

static const kl_x86_ops g_generic_ops = {KL_ISA_REF, 16, kl_x86_generic_sgemm_kernel, kl_x86_generic_vec_act,
                                         kl_x86_generic_dwconv, kl_x86_generic_wino_in, kl_x86_generic_wino_out,
                                         kl_x86_generic_wino2_in, kl_x86_generic_wino2_out,
                                         kl_x86_generic_wino4t_out, NULL,
                                         kl_x86_generic_im2col, kl_x86_generic_im2row_out,
                                         kl_x86_generic_conv_direct, NULL, kl_x86_generic_igemm_row,
                                        kl_x86_generic_igemm_blk};
#if defined(KL_HAVE_X86)
static const kl_x86_ops g_avx2_ops = {KL_ISA_AVX2, 16, kl_x86_avx2_sgemm_kernel, kl_x86_avx2_vec_act,
                                      kl_x86_avx2_dwconv, kl_x86_avx2_wino_in, kl_x86_avx2_wino_out,
                                      kl_x86_avx2_wino2_in, kl_x86_avx2_wino2_out, kl_x86_avx2_wino4t_out,
                                      kl_x86_avx2_fma_loop, kl_x86_avx2_im2col, kl_x86_avx2_im2row_out,
                                      kl_x86_avx2_conv_direct, kl_x86_avx2_dwcb, kl_x86_avx2_igemm_row,
                                        kl_x86_avx2_igemm_blk};
static const kl_x86_ops g_avx512_ops = {KL_ISA_AVX512, 64, kl_x86_avx512_sgemm_kernel, kl_x86_avx512_vec_act,
                                        kl_x86_avx512_dwconv, kl_x86_avx512_wino_in,
                                        kl_x86_avx512_wino_out, kl_x86_avx512_wino2_in,
                                        kl_x86_avx512_wino2_out, kl_x86_avx512_wino4t_out, kl_x86_avx512_fma_loop,
                                        kl_x86_avx512_im2col, kl_x86_avx512_im2row_out,
                                        kl_x86_avx512_conv_direct, kl_x86_avx512_dwcb, kl_x86_avx512_igemm_row,
                                        kl_x86_avx512_igemm_blk};
#endif

const kl_x86_ops *kl_x86_ops_get(kl_isa isa) {
    switch (kl_isa_resolve(isa)) {
#if defined(KL_HAVE_X86)
    case KL_ISA_AVX512: return &g_avx512_ops;
    case KL_ISA_AVX2: return &g_avx2_ops;
#endif
    default: return &g_generic_ops;
    }
}

/* Seconds on the monotonic clock. */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Scalar FMA chains for the generic level (what plain C reaches). */
static double generic_fma_loop(long iters) {
    float acc[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    volatile float m = 0.999999f, k = 1e-7f;
    float mm = m, kk = k;
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < 8; j++) acc[j] = acc[j] * mm + kk;
    volatile float sink = acc[0] + acc[1] + acc[2] + acc[3] + acc[4] + acc[5] + acc[6] + acc[7];
    (void)sink;
    return 2.0 * 8.0 * (double)iters;
}

/* One timed run on `threads` threads: each runs `iters` x the loop once
 * all have arrived (a spin barrier, so the time it takes the pool to wake
 * a worker is not counted), and records when it started and ended. */
typedef struct peak_task {
    double (*loop)(long);
    long iters;
    int threads;
    _Atomic int arrived;
    bool split;   /* some thread got more than one item (the pool ran inline) */
    double *t0, *t1; /* per thread (index = item) */
} peak_task;

static void peak_task_run(void *arg, size_t begin, size_t end, int tid) {
    peak_task *t = arg;
    (void)tid;
    if (end - begin == 1) {
        atomic_fetch_add(&t->arrived, 1);
        /* yield now and then: more threads than cores must all get to arrive */
        for (unsigned spin = 1; atomic_load(&t->arrived) < t->threads; spin++)
            if (spin % 4096 == 0) sched_yield();
    } else {
        t->split = true;
    }
    for (size_t i = begin; i < end; i++) {
        t->t0[i] = now_s();
        t->loop(t->iters);
        t->t1[i] = now_s();
    }
}

/* GFLOP/s of one run of `t` (fresh barrier) on `pool`. */
static double peak_run(kl_pool *pool, peak_task *t, double flops_per_iter) {
    atomic_store(&t->arrived, 0);
    t->split = false;
    double w0 = now_s();
    kl_parallel_for(pool, (size_t)t->threads, peak_task_run, t);
    double w1 = now_s();
    double a = t->t0[0], b = t->t1[0];
    for (int i = 1; i < t->threads; i++) {
        if (t->t0[i] < a) a = t->t0[i];
        if (t->t1[i] > b) b = t->t1[i];
    }
    if (t->split) a = w0, b = w1; /* no barrier: the whole call */
    double flops = flops_per_iter * (double)t->iters * (double)t->threads;
    return b > a ? flops / (b - a) * 1e-9 : 0;
}

/* Measured peaks, per level and thread count (threads 0: free slot). */
#define PEAK_CACHE 16
static struct {
    kl_isa isa;
    int threads;
    double gflops;
} g_peak[PEAK_CACHE];
static pthread_mutex_t g_peak_lock = PTHREAD_MUTEX_INITIALIZER;

kiln_status kl_cpu_peak_measure(kl_isa isa, int threads, double *gflops) {
    if (isa == KL_ISA_AUTO) isa = kl_isa_active();
    if (threads < 1 || threads > 1024 || !gflops) return KILN_ERR_INVALID_ARGUMENT;
    if (!kl_isa_supported(isa)) return KILN_ERR_UNSUPPORTED;
    pthread_mutex_lock(&g_peak_lock);
    double cached = 0;
    for (int i = 0; i < PEAK_CACHE; i++)
        if (g_peak[i].threads == threads && g_peak[i].isa == isa) cached = g_peak[i].gflops;
    pthread_mutex_unlock(&g_peak_lock);
    if (cached > 0) {
        *gflops = cached;
        return KILN_OK;
    }
    const kl_x86_ops *ops = kl_x86_ops_get(isa);
    peak_task task = {.loop = ops->fma_loop ? ops->fma_loop : generic_fma_loop, .iters = 1000, .threads = threads};
    task.t0 = kl_calloc((size_t)threads * 2, sizeof *task.t0);
    if (!task.t0) return KILN_ERR_NO_MEMORY;
    task.t1 = task.t0 + threads;
    kl_pool *pool = NULL;
    if (threads > 1) {
        kiln_status st = kl_pool_create(threads, &pool);
        if (st != KILN_OK) {
            kl_free(task.t0);
            return st;
        }
    }
    /* Warm up on this thread for about 10 ms (clocks, the upper halves of
     * the vector units), which also sizes a run to about 3 ms. */
    double flops_per_iter = task.loop(1), start = now_s(), last = 0;
    long used = task.iters;
    while (now_s() - start < 0.010) {
        double a = now_s();
        used = task.iters;
        task.loop(used);
        last = now_s() - a;
        if (last < 0.001) task.iters *= 2;
    }
    if (last > 0) task.iters = (long)((double)used * 0.003 / last) + 1;
    double best = 0;
    if (pool) peak_run(pool, &task, flops_per_iter); /* the workers' turn to warm up */
    for (int rep = 0; rep < 5; rep++) {
        double g = peak_run(pool, &task, flops_per_iter);
        if (g > best) best = g;
    }
    kl_pool_destroy(pool);
    kl_free(task.t0);
    pthread_mutex_lock(&g_peak_lock);
    int slot = 0;
    for (int i = 0; i < PEAK_CACHE; i++)
        if (g_peak[i].threads == 0 || (g_peak[i].threads == threads && g_peak[i].isa == isa)) {
            slot = i;
            break;
        }
    g_peak[slot].isa = isa;
    g_peak[slot].threads = threads;
    g_peak[slot].gflops = best;
    pthread_mutex_unlock(&g_peak_lock);
    *gflops = best;
    return KILN_OK;
}

double kl_cpu_peak_gflops(kl_isa isa) {
    double g = 0;
    return kl_cpu_peak_measure(isa, 1, &g) == KILN_OK ? g : 0.0;
}
