/* Bulk constant upload (upload.h).  The weights of a transformer are
 * hundreds of megabytes: one cudaMalloc, one cudaMemcpy and one float16
 * conversion per tensor, each followed by a synchronization, made engine
 * load + context creation take 115-130 ms for ViT-B/16.  Here the
 * destination is one contiguous byte range, cut into chunks; a team of host
 * threads fills a pinned staging chunk (converting float32 to float16 with
 * F16C) while the DMA engine copies the previous one. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define KL_UP_X86 1
#endif

#include "core/core.h"
#include "cuda/upload.h"

#define KL_UP_CHUNK ((size_t)2 << 20) /* pinned memory is slow to allocate: two small chunks */

#ifdef KL_UP_X86
__attribute__((target("avx,f16c"))) static void kl_f32_to_f16_f16c(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        __m128i b = _mm256_cvtps_ph(_mm256_loadu_ps(src + i + 8), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(dst + i), a);
        _mm_storeu_si128((__m128i *)(dst + i + 8), b);
    }
    for (; i < n; i++) dst[i] = kl_f32_to_f16(src[i]);
}
#endif

void kl_cu_f32_to_f16(uint16_t *dst, const float *src, size_t n) {
#ifdef KL_UP_X86
    static int have = -1;
    if (have < 0) {
        /* CPUID.1:ECX F16C (29), AVX (28), OSXSAVE (27); XCR0 keeps the YMM state (bits 1, 2) */
        unsigned a = 0, b = 0, c = 0, d = 0, lo = 0, hi = 0;
        int ok = __get_cpuid(1, &a, &b, &c, &d) && (c >> 27 & 7u) == 7u;
        if (ok) {
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            ok = (lo & 6u) == 6u;
        }
        have = ok;
    }
    if (have) {
        kl_f32_to_f16_f16c(dst, src, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) dst[i] = kl_f32_to_f16(src[i]);
}

void kl_cu_upload_fill(const kl_cu_up_item *it, size_t n, size_t lo, size_t hi, uint8_t *stage) {
    /* first item ending after lo */
    size_t a = 0, b = n;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (it[m].off + it[m].bytes <= lo) a = m + 1;
        else b = m;
    }
    for (size_t i = a; i < n && it[i].off < hi; i++) {
        size_t s = KL_MAX(lo, it[i].off), e = KL_MIN(hi, it[i].off + it[i].bytes);
        if (s >= e) continue;
        size_t rel = s - it[i].off;
        if (it[i].f32_to_f16)
            kl_cu_f32_to_f16((uint16_t *)(stage + (s - lo)), (const float *)it[i].src + rel / 2, (e - s) / 2);
        else
            memcpy(stage + (s - lo), (const uint8_t *)it[i].src + rel, e - s);
    }
}

/* A barrier whose count the main thread sets once it knows how many
 * workers started (POSIX barriers' counts are fixed at init). */
typedef struct kl_up_bar {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int count, waiting;
    unsigned gen;
} kl_up_bar;

static void kl_up_bar_wait(kl_up_bar *b) {
    pthread_mutex_lock(&b->mu);
    unsigned g = b->gen;
    if (++b->waiting >= b->count) {
        b->waiting = 0;
        b->gen++;
        pthread_cond_broadcast(&b->cv);
    } else {
        while (g == b->gen) pthread_cond_wait(&b->cv, &b->mu);
    }
    pthread_mutex_unlock(&b->mu);
}

typedef struct kl_up_team {
    kl_up_bar start, done;
    const kl_cu_up_item *items;
    size_t n;
    size_t lo, hi; /* the chunk being filled */
    uint8_t *stage;
    int threads;
    bool quit;
} kl_up_team;

typedef struct kl_up_worker {
    kl_up_team *t;
    int index;
} kl_up_worker;

/* Worker w's share of the current chunk, 64-byte aligned. */
static void kl_up_share(kl_up_team *t, int w) {
    size_t len = t->hi - t->lo, per = ((len + (size_t)t->threads - 1) / (size_t)t->threads + 63) & ~(size_t)63;
    size_t s = t->lo + KL_MIN(len, per * (size_t)w), e = t->lo + KL_MIN(len, per * (size_t)(w + 1));
    if (s < e) kl_cu_upload_fill(t->items, t->n, s, e, t->stage + (s - t->lo));
}

static void *kl_up_main(void *arg) {
    kl_up_worker *w = arg;
    kl_up_team *t = w->t;
    for (;;) {
        kl_up_bar_wait(&t->start);
        if (t->quit) break;
        kl_up_share(t, w->index);
        kl_up_bar_wait(&t->done);
    }
    return NULL;
}

static kiln_status kl_up_err(cudaError_t e, const char *call) {
    cudaGetLastError();
    if (e == cudaErrorMemoryAllocation)
        return kl_errorf(KILN_ERR_NO_MEMORY, "%s: out of memory (%s)", call, cudaGetErrorString(e));
    return kl_errorf(KILN_ERR_INTERNAL, "%s: %s (%s)", call, cudaGetErrorName(e), cudaGetErrorString(e));
}

kiln_status kl_cu_upload_items(const kl_cu_up_item *items, size_t n, size_t total, void *dev, cudaStream_t st,
                               int threads) {
    if (!n || !total) return KILN_OK;
    if (threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        threads = c > 0 ? (int)KL_MIN(c, 8L) : 1;
    }
    size_t chunk = KL_MIN(KL_UP_CHUNK, (total + 63) & ~(size_t)63);
    if (total <= chunk) threads = 1; /* one small chunk: not worth a team */
    uint8_t *stage = NULL;
    /* write-combined: the host only writes it, the DMA engine reads it */
    bool pinned = cudaHostAlloc((void **)&stage, 2 * chunk, cudaHostAllocWriteCombined) == cudaSuccess;
    if (!pinned) {
        cudaGetLastError();
        stage = kl_malloc(2 * chunk);
        if (!stage) return KILN_ERR_NO_MEMORY;
    }
    cudaEvent_t ev[2] = {0, 0};
    cudaError_t e = cudaSuccess;
    for (int i = 0; i < 2 && e == cudaSuccess; i++) e = cudaEventCreateWithFlags(&ev[i], cudaEventDisableTiming);
    kl_up_team t;
    memset(&t, 0, sizeof t);
    t.items = items;
    t.n = n;
    t.threads = threads;
    pthread_t tid[8];
    kl_up_worker wk[8];
    int started = 0;
    if (threads > 1) {
        kl_up_bar *bars[2] = {&t.start, &t.done};
        for (int i = 0; i < 2; i++) {
            pthread_mutex_init(&bars[i]->mu, NULL);
            pthread_cond_init(&bars[i]->cv, NULL);
            bars[i]->count = threads;
        }
        for (int w = 1; w < threads; w++) {
            wk[w].t = &t;
            wk[w].index = w;
            if (pthread_create(&tid[w], NULL, kl_up_main, &wk[w]) != 0) break;
            started++;
        }
        /* the shares follow the threads that run (before anyone passes a barrier) */
        for (int i = 0; i < 2; i++) {
            pthread_mutex_lock(&bars[i]->mu);
            bars[i]->count = started + 1;
            pthread_mutex_unlock(&bars[i]->mu);
        }
        t.threads = started + 1;
    }
    const char *call = NULL;
    if (e != cudaSuccess) call = "cudaEventCreate (upload)";
    for (size_t k = 0, lo = 0; !call && lo < total; k++, lo += chunk) {
        int buf = (int)(k & 1);
        uint8_t *sb = stage + (size_t)buf * chunk;
        if (k >= 2) {
            e = pinned ? cudaEventSynchronize(ev[buf]) : cudaSuccess;
            if (e != cudaSuccess) {
                call = "cudaEventSynchronize (upload)";
                break;
            }
        }
        t.lo = lo;
        t.hi = KL_MIN(total, lo + chunk);
        t.stage = sb;
        if (t.threads > 1) {
            kl_up_bar_wait(&t.start);
            kl_up_share(&t, 0);
            kl_up_bar_wait(&t.done);
        } else {
            kl_cu_upload_fill(items, n, t.lo, t.hi, sb);
        }
        if (pinned) {
            e = cudaMemcpyAsync((uint8_t *)dev + lo, sb, t.hi - lo, cudaMemcpyHostToDevice, st);
            if (e == cudaSuccess) e = cudaEventRecord(ev[buf], st);
        } else {
            e = cudaMemcpy((uint8_t *)dev + lo, sb, t.hi - lo, cudaMemcpyHostToDevice);
        }
        if (e != cudaSuccess) call = "cudaMemcpyAsync (upload)";
    }
    if (threads > 1) {
        t.quit = true;
        kl_up_bar_wait(&t.start); /* the workers wake, see quit and return */
        for (int w = 1; w <= started; w++) pthread_join(tid[w], NULL);
        kl_up_bar *bars[2] = {&t.start, &t.done};
        for (int i = 0; i < 2; i++) {
            pthread_mutex_destroy(&bars[i]->mu);
            pthread_cond_destroy(&bars[i]->cv);
        }
    }
    cudaError_t se = cudaStreamSynchronize(st);
    if (!call && se != cudaSuccess) {
        e = se;
        call = "cudaStreamSynchronize (upload)";
    }
    for (int i = 0; i < 2; i++)
        if (ev[i]) cudaEventDestroy(ev[i]);
    if (pinned) cudaFreeHost(stage);
    else kl_free(stage);
    if (call) return kl_up_err(e, call);
    return KILN_OK;
}
