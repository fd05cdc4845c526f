/*
 * threadpool.h — the CPU kernels' thread pool: persistent workers that spin
 * briefly and then sleep on a futex, no oversubscription (a pool of T threads
 * runs T-1 workers; the calling thread takes part as thread 0).  A NULL pool
 * runs everything inline on the caller.  A pool serves one parallel_for at a
 * time: a call made while the pool is busy (another thread, or from inside a
 * task) runs inline instead of waiting.  Work a worker has not claimed yet is
 * run by the threads that are done with theirs, so a worker that wakes late
 * or is descheduled holds nothing back but what it already runs; when the
 * caller keeps waiting milliseconds for such a worker (its core taken by
 * another process or another guest), a pool of two threads runs the next
 * jobs on the caller alone for a while (threadpool.c; KILN_POOL_ADAPT=0 keeps every job
 * parallel).
 */
#ifndef KL_CPU_THREADPOOL_H
#define KL_CPU_THREADPOOL_H

#include <stddef.h>

#include "kiln.h"

typedef struct kl_pool kl_pool;

/* Task body: items [begin, end) of the loop, on thread `tid` (0 = caller). */
typedef void (*kl_task_fn)(void *arg, size_t begin, size_t end, int tid);

/* A pool of `threads` threads in all (>= 1; 1 starts no worker).  Fails with
 * KILN_ERR_INVALID_ARGUMENT (threads < 1 or > 1024) or KILN_ERR_NO_MEMORY /
 * KILN_ERR_INTERNAL (thread creation). */
kiln_status kl_pool_create(int threads, kl_pool **out);
/* Stops and joins the workers; NULL is a no-op.  Not during a parallel_for. */
void kl_pool_destroy(kl_pool *pool);
/* Threads of the pool including the caller; 1 for NULL. */
int kl_pool_threads(const kl_pool *pool);

/* Runs fn over [0, n) split into one contiguous range per thread
 * (kl_partition_work): range i is run once, as tid i, normally by thread i
 * (by another thread when thread i is late: one thread may then run two
 * ranges, one after the other); returns when all are done.  n == 0 calls
 * nothing. */
void kl_parallel_for(kl_pool *pool, size_t n, kl_task_fn fn, void *arg);
/* The same on at most `max_threads` threads of the pool (tid < max_threads). */
void kl_parallel_for_n(kl_pool *pool, int max_threads, size_t n, kl_task_fn fn, void *arg);

/* Runs fn over [0, n) in chunks of `chunk` items (the last may be
 * shorter) on the caller and up to max_threads-1 workers (tid <
 * max_threads, the running thread's): each thread first claims, one at a
 * time, the chunks of its own contiguous range (kl_partition_work over the
 * chunks, so consecutive calls split alike), then takes the other ranges'
 * chunks from their ends; a worker that wakes late or is descheduled takes
 * fewer chunks instead of holding the loop back, and the caller waits only
 * for chunks claimed, never for a worker to show up.  A thread may get
 * several calls (one after the other).  More than 65535 chunks are made
 * larger. */
void kl_parallel_for_dyn(kl_pool *pool, int max_threads, size_t n, size_t chunk, kl_task_fn fn, void *arg);

/* MlasPartitionWork: thread `tid` of `threads` gets [*begin, *begin+*count)
 * of `total` items; the remainder goes one each to the first threads. */
void kl_partition_work(int tid, int threads, size_t total, size_t *begin, size_t *count);

#endif
