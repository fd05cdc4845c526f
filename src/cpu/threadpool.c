/*
 * threadpool.c — persistent workers woken through a generation counter.
 * Dispatch: the caller publishes the job, bumps `gen` and wakes sleepers
 * (futex on Linux); workers spin on `gen` for a while, then sleep.  Each
 * worker with a share of the loop runs it and decrements `pending`; the
 * caller runs share 0 and then waits for `pending` to reach 0.
 */
#include "cpu/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "core/fpenv.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define KL_POOL_SPIN 20000

typedef struct kl_worker {
    kl_pool *pool;
    int tid;
    pthread_t thread;
} kl_worker;

struct kl_pool {
    int threads;
    kl_worker *workers; /* threads-1 of them */
    _Atomic uint32_t gen;
    _Atomic uint32_t pending;
    _Atomic int sleepers; /* threads in (or entering) a futex wait */
    _Atomic int stop;
    /* the published job */
    kl_task_fn fn;
    void *arg;
    size_t n;
    int active; /* threads taking part in this job */
    unsigned fp; /* the submitting thread's subnormal handling (core/fpenv.h), taken by the workers */
    /* a dynamic job (kl_parallel_for_dyn; odd generations, static jobs
     * have even ones): chunks claimed through `claim` (generation, next
     * chunk, chunks), so a worker that wakes late for a job already over
     * claims nothing; the caller waits for the chunks (`done`), not for
     * every worker to show up */
    _Atomic int dyn_active;
    _Atomic uint64_t claim;
    _Atomic uint32_t done;
    size_t chunk;
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

/* Waits until *addr != val: spin, then sleep. */
static void wait_change(kl_pool *p, _Atomic uint32_t *addr, uint32_t val) {
    for (int i = 0; i < KL_POOL_SPIN; i++) {
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

/* Runs this thread's share of the published job. */
static void run_share(kl_pool *p, int tid) {
    if (tid >= p->active) return;
    kl_fp_flush_set(p->fp);
    size_t b, c;
    kl_partition_work(tid, p->active, p->n, &b, &c);
    if (c) p->fn(p->arg, b, b + c, tid);
}

/* The claim word of a dynamic job: generation (32 bits), next chunk (16),
 * chunks in all (16). */
#define CLAIM(gen, next, total) ((uint64_t)(gen) << 32 | (uint64_t)(next) << 16 | (uint64_t)(total))
#define CLAIM_GEN(c) ((uint32_t)((c) >> 32))
#define CLAIM_NEXT(c) ((uint32_t)((c) >> 16) & 0xffffu)
#define CLAIM_TOTAL(c) ((uint32_t)(c) & 0xffffu)
#define DYN_MAX_CHUNKS 0xffffu

/* Claims and runs chunks of dynamic job `gen` until none is left.  Nothing
 * of the job but the claim word is read before a claim succeeds: the caller
 * cannot publish another job while a claimed chunk is unfinished, and a
 * worker late for a job that is over finds its chunks all claimed. */
static void run_chunks(kl_pool *p, uint32_t gen, int tid) {
    uint64_t c = atomic_load_explicit(&p->claim, memory_order_acquire);
    for (;;) {
        if (CLAIM_GEN(c) != gen || CLAIM_NEXT(c) >= CLAIM_TOTAL(c)) return;
        if (!atomic_compare_exchange_weak_explicit(&p->claim, &c, c + ((uint64_t)1 << 16), memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        size_t n = p->n, chunk = p->chunk, b = (size_t)CLAIM_NEXT(c) * chunk;
        kl_fp_flush_set(p->fp);
        p->fn(p->arg, b, b + chunk < n ? b + chunk : n, tid);
        if (atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel) + 1 == CLAIM_TOTAL(c))
            wake_all(p, &p->done);
        c = atomic_load_explicit(&p->claim, memory_order_acquire);
    }
}

static void *worker_main(void *arg) {
    kl_worker *w = arg;
    kl_pool *p = w->pool;
    tl_in_task = 1;
    uint32_t seen = 0; /* gen starts at 0 and cannot move before every worker answers */
    for (;;) {
        wait_change(p, &p->gen, seen);
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        if (seen & 1) {
            if (w->tid < atomic_load_explicit(&p->dyn_active, memory_order_relaxed)) run_chunks(p, seen, w->tid);
            continue;
        }
        run_share(p, w->tid);
        if (atomic_fetch_sub(&p->pending, 1) == 1) wake_all(p, &p->pending);
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
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stop, 0);
    pthread_mutex_init(&p->busy, NULL);
#if !defined(__linux__)
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
#endif
    if (threads > 1) {
        p->workers = kl_calloc((size_t)threads - 1, sizeof *p->workers);
        if (!p->workers) {
            kl_pool_destroy(p);
            return KILN_ERR_NO_MEMORY;
        }
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
    pthread_mutex_destroy(&p->busy);
#if !defined(__linux__)
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_done);
#endif
    kl_free(p);
}

int kl_pool_threads(const kl_pool *pool) { return pool ? pool->threads : 1; }

void kl_parallel_for_n(kl_pool *p, int max_threads, size_t n, kl_task_fn fn, void *arg) {
    if (n == 0) return;
    int t = kl_pool_threads(p);
    if (max_threads < t) t = max_threads;
    if ((size_t)t > n) t = (int)n;
    if (t <= 1 || tl_in_task || pthread_mutex_trylock(&p->busy) != 0) {
        fn(arg, 0, n, 0);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->active = t;
    p->fp = kl_fp_flush_get();
    /* every worker passes through the generation, idle ones return at once */
    atomic_store_explicit(&p->pending, (uint32_t)(p->threads - 1), memory_order_relaxed);
    uint32_t g = atomic_load_explicit(&p->gen, memory_order_relaxed); /* only the holder of `busy` moves it */
    atomic_store(&p->gen, g + ((g & 1) ? 1 : 2)); /* even: a static job */
    wake_all(p, &p->gen);
    tl_in_task = 1;
    run_share(p, 0);
    tl_in_task = 0;
    uint32_t left;
    while ((left = atomic_load_explicit(&p->pending, memory_order_acquire)) != 0) wait_change(p, &p->pending, left);
    pthread_mutex_unlock(&p->busy);
}

void kl_parallel_for_dyn(kl_pool *p, int max_threads, size_t n, size_t chunk, kl_task_fn fn, void *arg) {
    if (n == 0) return;
    if (chunk < 1) chunk = 1;
    if ((n + chunk - 1) / chunk > DYN_MAX_CHUNKS) chunk = (n + DYN_MAX_CHUNKS - 1) / DYN_MAX_CHUNKS;
    size_t chunks = (n + chunk - 1) / chunk;
    int t = kl_pool_threads(p);
    if (max_threads < t) t = max_threads;
    if ((size_t)t > chunks) t = (int)chunks;
    if (t <= 1 || tl_in_task || pthread_mutex_trylock(&p->busy) != 0) {
        fn(arg, 0, n, 0);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->chunk = chunk;
    p->fp = kl_fp_flush_get();
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->dyn_active, t, memory_order_relaxed);
    uint32_t gen = atomic_load_explicit(&p->gen, memory_order_relaxed);
    gen += (gen & 1) ? 2 : 1; /* odd: a dynamic job */
    atomic_store_explicit(&p->claim, CLAIM(gen, 0, chunks), memory_order_release);
    atomic_store(&p->gen, gen);
    wake_all(p, &p->gen);
    tl_in_task = 1;
    run_chunks(p, gen, 0);
    tl_in_task = 0;
    uint32_t d;
    while ((d = atomic_load_explicit(&p->done, memory_order_acquire)) != (uint32_t)chunks) wait_change(p, &p->done, d);
    pthread_mutex_unlock(&p->busy);
}

void kl_parallel_for(kl_pool *pool, size_t n, kl_task_fn fn, void *arg) {
    kl_parallel_for_n(pool, kl_pool_threads(pool), n, fn, arg);
}
