/*
 * core.h — internal building blocks shared by every kiln module: status and
 * error messages, checked allocation, arenas, memory-mapped files, element
 * types, logging and a string-keyed hash map.  Nothing here knows ONNX.
 */
#ifndef KL_CORE_H
#define KL_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln.h"

#if defined(__GNUC__)
#define KL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define KL_UNUSED __attribute__((unused))
#define KL_LIKELY(x) __builtin_expect(!!(x), 1)
#define KL_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define KL_PRINTF(a, b)
#define KL_UNUSED
#define KL_LIKELY(x) (x)
#define KL_UNLIKELY(x) (x)
#endif

/* SQLite-style invariant checks that survive release builds: KL_ALWAYS(x)
 * is x (KL_NEVER(x) is x too), and in debug builds (no NDEBUG) a false
 * KL_ALWAYS / true KL_NEVER stops at a trap instruction for the debugger. */
#if !defined(NDEBUG) && defined(__GNUC__)
#define KL_ALWAYS(x) ((x) ? 1 : (__builtin_trap(), 0))
#define KL_NEVER(x) ((x) ? (__builtin_trap(), 1) : 0)
#else
#define KL_ALWAYS(x) (x)
#define KL_NEVER(x) (x)
#endif

#define KL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define KL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define KL_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- status / errors (status.c) ---------------------------------------- */

/* Record an error message for this thread and return `status`. */
kiln_status kl_errorf(kiln_status status, const char *fmt, ...) KL_PRINTF(2, 3);
/* Prefix the current thread's error message with context ("file.onnx: ")
 * and return `status` unchanged.  Use on the way up a call chain. */
kiln_status kl_error_context(kiln_status status, const char *fmt, ...) KL_PRINTF(2, 3);
/* Clear this thread's error message. */
void kl_error_clear(void);
/* The current message (never NULL). */
const char *kl_error_message(void);

/* Propagate a non-OK status. */
#define KL_TRY(expr)                          \
    do {                                      \
        kiln_status kl_try_s_ = (expr);       \
        if (kl_try_s_ != KILN_OK) return kl_try_s_; \
    } while (0)

/* ---- checked arithmetic --------------------------------------------------- */

/* These return true on overflow and leave *out unspecified then. */
static inline bool kl_mul_size(size_t a, size_t b, size_t *out) {
    return __builtin_mul_overflow(a, b, out);
}
static inline bool kl_add_size(size_t a, size_t b, size_t *out) {
    return __builtin_add_overflow(a, b, out);
}
static inline bool kl_mul_i64(int64_t a, int64_t b, int64_t *out) {
    return __builtin_mul_overflow(a, b, out);
}
static inline bool kl_add_i64(int64_t a, int64_t b, int64_t *out) {
    return __builtin_add_overflow(a, b, out);
}

/* ---- allocation (alloc.c) ------------------------------------------------ */

/* Largest single allocation the library makes (1 TiB): anything larger is a
 * corrupt size and fails with KILN_ERR_NO_MEMORY before reaching malloc. */
#define KL_MAX_ALLOC ((size_t)1 << 40)

/* Every library allocation goes through these.  On failure they set the
 * thread's error (KILN_ERR_NO_MEMORY, naming the size) and return NULL.
 * kl_calloc and kl_realloc_array check n*size for overflow.  Blocks of
 * 4 KiB or more from kl_malloc and kl_calloc start on a 64-byte cache line
 * (kernels' packed weights and buffers rely on it for speed, not for
 * correctness); kl_calloc then zeroes them itself, so their pages are
 * touched at once rather than on first use (zoo peak RSS unchanged);
 * kl_realloc_array keeps no alignment. */
void *kl_malloc(size_t size);
void *kl_calloc(size_t n, size_t size);
void *kl_realloc_array(void *p, size_t n, size_t size);
char *kl_strdup(const char *s);
void kl_free(void *p);
/* A large buffer (activation arenas): from 2 MiB up, 2 MiB aligned and
 * advised for transparent huge pages where the OS has them (Linux
 * MADV_HUGEPAGE; THP in "madvise" mode gives none otherwise).  A batch's
 * activations are tens to hundreds of MiB that layers sweep with hundreds
 * of concurrent streams (NCHW planes); with 4 KiB pages those walks miss
 * the TLB.  Freed with kl_free. */
void *kl_malloc_big(size_t size);

/* Fault injection for tests: the n-th allocation from now (1-based) and
 * every later one fail; 0 turns it off.  kl_alloc_count() counts
 * allocations since the last call to kl_alloc_fail_at(). */
void kl_alloc_fail_at(long n);
long kl_alloc_count(void);

/* ---- arena (arena.c) ------------------------------------------------------ */

/* A bump allocator: many small allocations, released all at once.  Models
 * and their IR live in one arena, so error paths never leak. */
typedef struct kl_arena_chunk kl_arena_chunk;
typedef struct kl_arena {
    kl_arena_chunk *head;
    size_t total; /* bytes handed out, for statistics */
} kl_arena;

void kl_arena_init(kl_arena *a);
void kl_arena_free(kl_arena *a);
/* 16-byte aligned, zeroed memory, or NULL with the error set. */
void *kl_arena_alloc(kl_arena *a, size_t size);
void *kl_arena_array(kl_arena *a, size_t n, size_t size);
/* Copy `len` bytes of `s` and add a NUL. */
char *kl_arena_strndup(kl_arena *a, const char *s, size_t len);
char *kl_arena_strdup(kl_arena *a, const char *s);
char *kl_arena_printf(kl_arena *a, const char *fmt, ...) KL_PRINTF(2, 3);

/* ---- growable array of pointers (vec.c) ------------------------------------ */

typedef struct kl_ptrvec {
    void **items;
    size_t len, cap;
} kl_ptrvec;
kiln_status kl_ptrvec_push(kl_ptrvec *v, void *item);
void kl_ptrvec_free(kl_ptrvec *v);

/* ---- string map (vec.c) ---------------------------------------------------- */

/* Open-addressing hash map from NUL-terminated strings (borrowed: they must
 * outlive the map) to pointers. */
typedef struct kl_strmap {
    const char **keys;
    void **vals;
    size_t cap, len;
} kl_strmap;
void *kl_strmap_get(const kl_strmap *m, const char *key);
/* Insert or replace. */
kiln_status kl_strmap_put(kl_strmap *m, const char *key, void *val);
void kl_strmap_free(kl_strmap *m);

/* ---- memory-mapped files (mapfile.c) ------------------------------------- */

typedef struct kl_mapfile {
    const uint8_t *data; /* NULL for an empty file */
    size_t size;
    void *map_base; /* what to munmap, NULL if nothing */
    size_t map_size;
} kl_mapfile;

/* Map `path` read-only.  Errors name the file (KILN_ERR_IO). */
kiln_status kl_mapfile_open(const char *path, kl_mapfile *out);
void kl_mapfile_close(kl_mapfile *m);
/* Drop the resident pages wholly inside bytes [p, p+n) when they belong to
 * a file mapped by kl_mapfile_open (a constant whose packed copy is all a
 * kernel reads any more): they are read back from the file if touched
 * again, so the result never changes, only the resident set.  Anything
 * else (heap, caller memory) is left alone. */
void kl_mapfile_release(const void *p, size_t n);

/* ---- element types (dtype.c) --------------------------------------------- */

/* True for the dtype values kiln knows (1..KILN_DTYPE_COUNT-1). */
bool kl_dtype_valid(int32_t dtype);
bool kl_dtype_is_float(kiln_dtype t);   /* any floating type incl. fp8/fp4 */
bool kl_dtype_is_integer(kiln_dtype t); /* signed or unsigned, any width */
bool kl_dtype_is_signed(kiln_dtype t);
/* Bytes needed for `count` elements (sub-byte types packed, rounded up).
 * Returns false on overflow or for strings. */
bool kl_dtype_nbytes(kiln_dtype t, int64_t count, size_t *out);

float kl_f16_to_f32(uint16_t h);
uint16_t kl_f32_to_f16(float f);   /* round to nearest even */
float kl_bf16_to_f32(uint16_t h);
uint16_t kl_f32_to_bf16(float f);  /* round to nearest even */

/* ---- logging (log.c) ------------------------------------------------------ */

void kl_log(kiln_log_level level, const char *fmt, ...) KL_PRINTF(2, 3);
/* Would kl_log pass a message of this level on (a callback is set for it)? */
bool kl_log_enabled(kiln_log_level level);
/* Monotonic clock in milliseconds (for timings reported through kl_log). */
double kl_clock_ms(void);

#endif /* KL_CORE_H */
