/*
 * hash.h — SHA-256 (FIPS 180-4) for model and cache identities, and
 * KH64, kiln's fast 64-bit checksum for engine files (not cryptographic:
 * it detects corruption and truncation, not tampering).
 *
 * KH64 (the exact algorithm is written down in docs/ENGINE.md): the input
 * is cut into 64-byte stripes; each of 8 little-endian 64-bit lanes
 * accumulates acc[i] += lo32(d^k[i]) * hi32(d^k[i]) and acc[i^1] += d (the
 * XXH3 accumulation, with kiln's own constants); every 16 stripes the
 * accumulators are scrambled; the tail is zero-padded into one last stripe;
 * the 8 lanes and the length are folded and avalanched into 64 bits.  The
 * lanes are independent, so compilers vectorize the loop (SSE2 baseline;
 * an AVX2 or AVX-512 path is chosen at run time where the CPU has it), and
 * every path gives the same value.
 */
#ifndef KL_HASH_H
#define KL_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- SHA-256 --------------------------------------------------------------- */

typedef struct kl_sha256_ctx {
    uint32_t h[8];
    uint64_t bytes;    /* total length so far */
    uint8_t buf[64];
    size_t n;          /* bytes waiting in buf */
} kl_sha256_ctx;

/* Incremental SHA-256: init, update any number of times, final (which
 * leaves the context unusable until the next init). */
void kl_sha256_init(kl_sha256_ctx *c);
void kl_sha256_update(kl_sha256_ctx *c, const void *data, size_t size);
void kl_sha256_final(kl_sha256_ctx *c, uint8_t out[32]);
/* One-shot SHA-256 of data[0..size). */
void kl_sha256(const void *data, size_t size, uint8_t out[32]);

/* The compression in use ("shani" with the SHA extensions, else
 * "portable"), and a switch for tests ("portable", "shani", NULL =
 * automatic; false when unavailable).  Both give the same digests. */
const char *kl_sha256_path(void);
bool kl_sha256_set_path(const char *name);

/* Lower-case hex of bytes[0..n) into out (2n+1 chars with the NUL); returns out. */
char *kl_hex(const uint8_t *bytes, size_t n, char *out);
/* SHA-256 as 64 lower-case hex digits + NUL. */
void kl_sha256_hex(const void *data, size_t size, char out[65]);

/* ---- KH64 checksum ------------------------------------------------------------ */

/* Streaming state; the one-shot and streaming forms give the same value for
 * the same bytes, however the input is split. */
typedef struct kl_kh64 {
    uint64_t acc[8];
    uint64_t total;     /* bytes consumed */
    unsigned stripes;   /* stripes since the last scramble (0..15) */
    uint8_t buf[64];
    size_t n;           /* bytes waiting in buf */
} kl_kh64_state;

void kl_kh64_init(kl_kh64_state *h, uint64_t seed);
void kl_kh64_update(kl_kh64_state *h, const void *data, size_t size);
uint64_t kl_kh64_final(const kl_kh64_state *h);
/* One-shot KH64 of data[0..size) with `seed` (engine files use seed 0). */
uint64_t kl_kh64(const void *data, size_t size, uint64_t seed);

/* Chunked KH64 (engine files from format version 2): the data cut into
 * KL_KH64C_CHUNK-byte chunks, chunk i hashed with seed i, and the chunk
 * values (8 bytes each, little-endian) hashed with seed 0.  The chunks are
 * independent, so verifying a large engine uses several threads. */
#define KL_KH64C_CHUNK ((size_t)4 << 20)
typedef struct kl_kh64c_state {
    kl_kh64_state chunk, outer;
    uint64_t index;     /* of the chunk being hashed */
    size_t in_chunk;    /* its bytes so far */
} kl_kh64c_state;
void kl_kh64c_init(kl_kh64c_state *h);
void kl_kh64c_update(kl_kh64c_state *h, const void *data, size_t size);
uint64_t kl_kh64c_final(const kl_kh64c_state *h);
/* One-shot, on up to `threads` threads (0: one per online CPU, at most 8;
 * small inputs use one). */
uint64_t kl_kh64c(const void *data, size_t size, int threads);

/* Which accumulation path kl_kh64 uses on this CPU ("avx512", "avx2",
 * "scalar"); for reports. */
const char *kl_kh64_path(void);
/* Force a path by name ("scalar", "avx2", "avx512"; NULL = automatic) so
 * tests check that every path gives the same value.  Process-wide, for
 * tests and benchmarks only.  False when this CPU or build lacks it. */
bool kl_kh64_set_path(const char *name);

#endif /* KL_HASH_H */
