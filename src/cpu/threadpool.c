/*
 * threadpool.c — persistent workers woken through a generation counter.
 * Dispatch: the caller publishes the job, bumps `gen` and wakes sleepers
 * (futex on Linux); workers spin on `gen` for a while, then sleep.
 *
 * Every job is a set of chunks, and every thread taking part owns a home
 * range of them in a claim word of its own (generation, next, end; one
 * cache line each).  A thread claims its home chunks front to back, then
 * takes chunks from the back of the other threads' ranges until none is
 * left, and adds the number it ran to `done` once; the caller waits for
 * `done` to reach the chunk count.  So a worker that wakes late, or is
 * descheduled before it claims, holds nothing back (its chunks are run by
 * the threads that are done), and a worker late for a job that is over
 * finds claim words of another generation and claims nothing: the caller
 * never waits for a worker to show up, only for chunks claimed.  Static
 * jobs (kl_parallel_for_n) have one chunk per thread, run with tid = the
 * chunk's index; dynamic ones (kl_parallel_for_dyn) many, run with the
 * claiming thread's tid.
 */
#include "cpu/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "core/fpenv.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* Spins before a futex sleep (waiting for the next job: layers follow
 * each other within microseconds; or for chunks a worker claimed). */
#define KL_POOL_SPIN 20000

/* Starved workers.  A worker whose core is taken (another process on it, or
 * the hypervisor running another guest on its vCPU) can hold a claimed
 * chunk for a whole time slice, milliseconds, while the caller waits.  When
 * the caller, done with its part, waits longer than KL_POOL_STARVE_NS and
 * longer than twice its own part took, a pool of two threads runs its next
 * jobs on the caller alone for a while (20 ms, doubling while it keeps happening, at
 * most 1 s), then tries its workers again.  Only jobs that follow the last
 * one within KL_POOL_AWAKE_NS count: after a pause the workers sleep, and
 * waking an idle vCPU can itself take milliseconds.  MobileNet-V2 b1 on 2
 * threads with a busy loop on the other core (Zen 4, 150 runs in a row):
 * median 7.4-7.7 ms (its 1-thread time) against 11.5-11.9 with
 * KILN_POOL_ADAPT=0 (which keeps every job parallel) and 27.8 with the
 * pool of the twenty-seventh session (bench/RESULTS.md). */
#define KL_POOL_STARVE_NS 1000000
#define KL_POOL_AWAKE_NS 200000 /* a job this soon after the last one finds its workers still spinning */
#define KL_POOL_BACKOFF_MIN_NS 20000000
#define KL_POOL_BACKOFF_MAX_NS 1000000000

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct kl_worker {
    kl_pool *pool;
    int tid;
    pthread_t thread;
} kl_worker;

/* A claim word on a cache line of its own: generation (32 bits), next
 * chunk (16), end of the range (16). */
typedef struct kl_claim_word {
    _Alignas(64) _Atomic uint64_t w;
} kl_claim_word;

struct kl_pool {
    int threads;
    kl_worker *workers; /* threads-1 of them */
    _Atomic uint32_t gen;
    _Atomic int sleepers; /* threads in (or entering) a futex wait */
    _Atomic int stop;
    /* the published job, read by a thread only once it holds a claim (the
     * caller cannot publish the next job before every claimed chunk ran) */
    kl_task_fn fn;
    void *arg;
    size_t n, chunk, chunks;
    bool per_share;     /* static: chunk i is kl_partition_work's range i, run as tid i */
    unsigned fp;        /* the submitting thread's subnormal handling (core/fpenv.h), taken by the workers */
    _Atomic int active; /* threads taking part (home words 0..active-1) */
    _Atomic uint32_t done;
    void *home_raw;
    kl_claim_word *home; /* per thread, 64-byte aligned inside home_raw */
    /* starved workers (the holder of `busy` only): jobs run inline until
     * inline_until; the next period's length; when it last happened */
    bool adapt;
    int64_t inline_until, backoff, last_starved, last_end; /* last_end: when the last parallel job ended */
    pthread_mutex_t busy;
#if !defined(__linux__)
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
#endif
};

static _Thread_local int tl_in_task;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("pause");
#endif
}

#if defined(__linux__)
static void futex_wait(_Atomic uint32_t *addr, uint32_t val) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}
static void futex_wake(_Atomic uint32_t *addr) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}
#endif

/* Waits until *addr != val: spin `spin` times, then sleep. */
static void wait_change(kl_pool *p, _Atomic uint32_t *addr, uint32_t val, int spin) {
    for (int i = 0; i < spin; i++) {
        if (atomic_load_explicit(addr, memory_order_acquire) != val) return;
        cpu_relax();
    }
#if defined(__linux__)
    /* announce the sleep first: a waker that bumps *addr and then sees
     * sleepers == 0 is sure this thread will see the new value (seq_cst) */
    atomic_fetch_add(&p->sleepers, 1);
    while (atomic_load(addr) == val) futex_wait(addr, val);
    atomic_fetch_sub(&p->sleepers, 1);
#else
    pthread_mutex_lock(&p->mu);
    while (atomic_load_explicit(addr, memory_order_acquire) == val)
        pthread_cond_wait(addr == &p->gen ? &p->cv_work : &p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
#endif
}

/* Wakes every thread sleeping on addr. */
static void wake_all(kl_pool *p, _Atomic uint32_t *addr) {
#if defined(__linux__)
    if (atomic_load(&p->sleepers) > 0) futex_wake(addr);
#else
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(addr == &p->gen ? &p->cv_work : &p->cv_done);
    pthread_mutex_unlock(&p->mu);
#endif
}

void kl_partition_work(int tid, int threads, size_t total, size_t *begin, size_t *count) {
    size_t per = total / (size_t)threads, extra = total % (size_t)threads;
    size_t t = (size_t)tid;
    if (t < extra) {
        *count = per + 1;
        *begin = t * (per + 1);
    } else {
        *count = per;
        *begin = extra * (per + 1) + (t - extra) * per;
    }
}

#define CLAIM(gen, next, end) ((uint64_t)(gen) << 32 | (uint64_t)(next) << 16 | (uint64_t)(end))
#define CLAIM_GEN(c) ((uint32_t)((c) >> 32))
#define CLAIM_NEXT(c) ((uint32_t)((c) >> 16) & 0xffffu)
#define CLAIM_END(c) ((uint32_t)(c) & 0xffffu)
#define MAX_CHUNKS 0xffffu

/* Claims and runs chunks of job `gen` (active threads): the home range of
 * thread tid front to back, then the other ranges from their backs; the
 * chunks run from each range are added to `done` when the range is left
 * (waking the caller at the last one).
 * Nothing of the job but the claim words is read before a claim succeeds. */
static void run_claims(kl_pool *p, uint32_t gen, int tid, int active) {
    for (int k = 0; k < active; k++) {
        uint32_t ran = 0;
        _Atomic uint64_t *w = &p->home[(tid + k) % active].w;
        uint64_t c = atomic_load_explicit(w, memory_order_acquire);
        for (;;) {
            if (CLAIM_GEN(c) != gen || CLAIM_NEXT(c) >= CLAIM_END(c)) break;
            uint64_t want = k == 0 ? c + ((uint64_t)1 << 16) : c - 1; /* home: the front; others: the back */
            if (!atomic_compare_exchange_weak_explicit(w, &c, want, memory_order_acq_rel, memory_order_acquire))
                continue;
            size_t idx = k == 0 ? CLAIM_NEXT(c) : CLAIM_END(c) - 1;
            kl_fp_flush_set(p->fp);
            if (p->per_share) {
                size_t b, cnt;
                kl_partition_work((int)idx, active, p->n, &b, &cnt);
                if (cnt) p->fn(p->arg, b, b + cnt, (int)idx);
            } else {
                size_t b = idx * p->chunk;
                p->fn(p->arg, b, b + p->chunk < p->n ? b + p->chunk : p->n, tid);
            }
            ran++;
            c = atomic_load_explicit(w, memory_order_acquire);
        }
        /* the chunks run from this range, counted before looking at the next
         * (the job cannot end before this add: `chunks` is still this job's) */
        if (ran) {
            uint32_t total = (uint32_t)p->chunks;
            if (atomic_fetch_add_explicit(&p->done, ran, memory_order_acq_rel) + ran == total) wake_all(p, &p->done);
        }
    }
}

static void *worker_main(void *arg) {
    kl_worker *w = arg;
    kl_pool *p = w->pool;
    tl_in_task = 1;
    uint32_t seen = 0; /* gen starts at 0 */
    for (;;) {
        wait_change(p, &p->gen, seen, KL_POOL_SPIN);
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        int active = atomic_load_explicit(&p->active, memory_order_relaxed);
        if (w->tid < active) run_claims(p, seen, w->tid, active);
    }
    return NULL;
}

kiln_status kl_pool_create(int threads, kl_pool **out) {
    *out = NULL;
    if (threads < 1 || threads > 1024)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "thread pool: %d threads (expected 1..1024)", threads);
    kl_pool *p = kl_calloc(1, sizeof *p);
    if (!p) return KILN_ERR_NO_MEMORY;
    p->threads = threads;
    atomic_init(&p->gen, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->active, 0);
    atomic_init(&p->done, 0);
    pthread_mutex_init(&p->busy, NULL);
    {
        const char *e = getenv("KILN_POOL_ADAPT");
        /* two threads only: that is what was measured, and with many threads
         * running every job on the caller would give up far more than one
         * late worker costs */
        p->adapt = threads == 2 && !(e && strcmp(e, "0") == 0);
        p->backoff = KL_POOL_BACKOFF_MIN_NS;
    }
#if !defined(__linux__)
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
#endif
    if (threads > 1) {
        p->workers = kl_calloc((size_t)threads - 1, sizeof *p->workers);
        p->home_raw = kl_calloc((size_t)threads + 1, sizeof *p->home); /* one more: room to align */
        if (!p->workers || !p->home_raw) {
            kl_pool_destroy(p);
            return KILN_ERR_NO_MEMORY;
        }
        p->home = (kl_claim_word *)(((uintptr_t)p->home_raw + 63) & ~(uintptr_t)63);
        for (int i = 0; i < threads; i++) atomic_init(&p->home[i].w, 0);
        for (int i = 0; i < threads - 1; i++) {
            p->workers[i].pool = p;
            p->workers[i].tid = i + 1;
            if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
                p->threads = i + 1; /* join the ones started */
                kl_pool_destroy(p);
                return kl_errorf(KILN_ERR_INTERNAL, "thread pool: cannot start thread %d of %d", i + 2, threads);
            }
        }
    }
    *out = p;
    return KILN_OK;
}

void kl_pool_destroy(kl_pool *p) {
    if (!p) return;
    if (p->workers && p->threads > 1) {
        atomic_store(&p->stop, 1);
        atomic_fetch_add(&p->gen, 1);
        wake_all(p, &p->gen);
        for (int i = 0; i < p->threads - 1; i++) pthread_join(p->workers[i].thread, NULL);
    }
    kl_free(p->workers);
    kl_free(p->home_raw);
    pthread_mutex_destroy(&p->busy);
#if !defined(__linux__)
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_done);
#endif
    kl_free(p);
}

int kl_pool_threads(const kl_pool *pool) { return pool ? pool->threads : 1; }

/* Publishes a job of `chunks` chunks on t threads (home ranges: one chunk
 * each when per_share, else kl_partition_work over the chunks), runs the
 * caller's part and waits for the chunks the workers claimed.  The caller
 * holds `busy`. */
static void run_job(kl_pool *p, int t, size_t n, size_t chunk, size_t chunks, bool per_share, kl_task_fn fn,
                    void *arg) {
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->chunk = chunk;
    p->chunks = chunks;
    p->per_share = per_share;
    p->fp = kl_fp_flush_get();
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->active, t, memory_order_relaxed);
    uint32_t gen = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1; /* only the holder of `busy` moves it */
    for (int i = 0; i < t; i++) {
        size_t b = (size_t)i, c = 1;
        if (!per_share) kl_partition_work(i, t, chunks, &b, &c);
        atomic_store_explicit(&p->home[i].w, CLAIM(gen, b, b + c), memory_order_relaxed);
    }
    int64_t t0 = p->adapt ? now_ns() : 0;
    atomic_store(&p->gen, gen); /* seq_cst: the job and the claim words before it */
    wake_all(p, &p->gen);
    tl_in_task = 1;
    run_claims(p, gen, 0, t);
    tl_in_task = 0;
    uint32_t d = atomic_load_explicit(&p->done, memory_order_acquire);
    int64_t t1 = p->adapt ? now_ns() : 0;
    while (d != (uint32_t)chunks) {
        wait_change(p, &p->done, d, KL_POOL_SPIN);
        d = atomic_load_explicit(&p->done, memory_order_acquire);
    }
    if (p->adapt) {
        int64_t t2 = now_ns(), waited = t2 - t1;
        /* only while the workers were awake: the first job after a pause
         * (workers asleep: on a VM, waking an idle vCPU can take
         * milliseconds) says nothing about their cores */
        bool awake = t0 - p->last_end < KL_POOL_AWAKE_NS;
        p->last_end = t2;
        if (awake && waited > KL_POOL_STARVE_NS && waited > 2 * (t1 - t0)) {
            /* after two quiet seconds, start again from the shortest period */
            if (t2 - p->last_starved > 2 * (int64_t)KL_POOL_BACKOFF_MAX_NS) p->backoff = KL_POOL_BACKOFF_MIN_NS;
            p->inline_until = t2 + p->backoff;
            p->last_starved = t2;
            p->backoff = p->backoff * 2 > KL_POOL_BACKOFF_MAX_NS ? KL_POOL_BACKOFF_MAX_NS : p->backoff * 2;
        }
    }
}

/* Whether the next job runs on the caller alone (workers found starved). */
static bool run_inline(kl_pool *p) { return p->adapt && p->inline_until && now_ns() < p->inline_until; }

void kl_parallel_for_n(kl_pool *p, int max_threads, size_t n, kl_task_fn fn, void *arg) {
    if (n == 0) return;
    int t = kl_pool_threads(p);
    if (max_threads < t) t = max_threads;
    if ((size_t)t > n) t = (int)n;
    if (t <= 1 || tl_in_task || pthread_mutex_trylock(&p->busy) != 0) {
        fn(arg, 0, n, 0);
        return;
    }
    if (run_inline(p)) {
        pthread_mutex_unlock(&p->busy);
        fn(arg, 0, n, 0);
        return;
    }
    run_job(p, t, n, 0, (size_t)t, true, fn, arg);
    pthread_mutex_unlock(&p->busy);
}

void kl_parallel_for_dyn(kl_pool *p, int max_threads, size_t n, size_t chunk, kl_task_fn fn, void *arg) {
    if (n == 0) return;
    if (chunk < 1) chunk = 1;
    if ((n + chunk - 1) / chunk > MAX_CHUNKS) chunk = (n + MAX_CHUNKS - 1) / MAX_CHUNKS;
    size_t chunks = (n + chunk - 1) / chunk;
    int t = kl_pool_threads(p);
    if (max_threads < t) t = max_threads;
    if ((size_t)t > chunks) t = (int)chunks;
    if (t <= 1 || tl_in_task || pthread_mutex_trylock(&p->busy) != 0) {
        fn(arg, 0, n, 0);
        return;
    }
    if (run_inline(p)) {
        pthread_mutex_unlock(&p->busy);
        fn(arg, 0, n, 0);
        return;
    }
    run_job(p, t, n, chunk, chunks, false, fn, arg);
    pthread_mutex_unlock(&p->busy);
}

void kl_parallel_for(kl_pool *pool, size_t n, kl_task_fn fn, void *arg) {
    kl_parallel_for_n(pool, kl_pool_threads(pool), n, fn, arg);
}
