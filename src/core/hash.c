/* SHA-256 (FIPS 180-4) and the KH64 checksum (hash.h, docs/ENGINE.md). */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "core/hash.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define KL_HASH_X86 1
#endif

/* ---- SHA-256 ------------------------------------------------------------------ */

static const uint32_t kl_sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static inline uint32_t kl_ror32(uint32_t x, unsigned n) { return (x >> n) | (x << (32 - n)); }

/* One 64-byte block into the state. */
static void kl_sha256_block(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
               (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = kl_ror32(w[i - 15], 7) ^ kl_ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = kl_ror32(w[i - 2], 17) ^ kl_ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (kl_ror32(e, 6) ^ kl_ror32(e, 11) ^ kl_ror32(e, 25)) + ((e & f) ^ (~e & g)) +
                      kl_sha_k[i] + w[i];
        uint32_t t2 = (kl_ror32(a, 2) ^ kl_ror32(a, 13) ^ kl_ror32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
    h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

#ifdef KL_HASH_X86
/* The same compression with the SHA extensions (Intel SHA-NI / AMD Zen):
 * message schedule by sha256msg1/msg2, two rounds per sha256rnds2. */
__attribute__((target("sha,sse4.1,ssse3"))) static void kl_sha256_blocks_ni(uint32_t h[8], const uint8_t *p,
                                                                           size_t nblocks) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bll, 0x0405060700010203ll);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&h[0]);
    __m128i s1 = _mm_loadu_si128((const __m128i *)&h[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);    /* CDAB */
    s1 = _mm_shuffle_epi32(s1, 0x1B);      /* EFGH */
    __m128i s0 = _mm_alignr_epi8(tmp, s1, 8); /* ABEF */
    s1 = _mm_blend_epi16(s1, tmp, 0xF0);   /* CDGH */
    for (size_t b = 0; b < nblocks; b++, p += 64) {
        __m128i abef = s0, cdgh = s1, w[4], msg;
        for (int g = 0; g < 16; g++) {
            if (g < 4) w[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)), mask);
            __m128i wg = w[g & 3];
            msg = _mm_add_epi32(wg, _mm_loadu_si128((const __m128i *)&kl_sha_k[4 * g]));
            s1 = _mm_sha256rnds2_epu32(s1, s0, msg);
            if (g >= 3 && g <= 14) {
                __m128i t = _mm_alignr_epi8(wg, w[(g + 3) & 3], 4);
                w[(g + 1) & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(w[(g + 1) & 3], t), wg);
            }
            msg = _mm_shuffle_epi32(msg, 0x0E);
            s0 = _mm_sha256rnds2_epu32(s0, s1, msg);
            if (g >= 1 && g <= 12) w[(g + 3) & 3] = _mm_sha256msg1_epu32(w[(g + 3) & 3], wg);
        }
        s0 = _mm_add_epi32(s0, abef);
        s1 = _mm_add_epi32(s1, cdgh);
    }
    tmp = _mm_shuffle_epi32(s0, 0x1B);     /* FEBA */
    s1 = _mm_shuffle_epi32(s1, 0xB1);      /* DCHG */
    s0 = _mm_blend_epi16(tmp, s1, 0xF0);   /* DCBA */
    s1 = _mm_alignr_epi8(s1, tmp, 8);      /* ABEF */
    _mm_storeu_si128((__m128i *)&h[0], s0);
    _mm_storeu_si128((__m128i *)&h[4], s1);
}
#endif

#ifdef KL_HASH_X86
/* SHA extensions and SSE4.1, from cpuid (clang 14 lacks __builtin_cpu_supports("sha")). */
static bool kl_cpu_has_sha(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 19))) return false; /* SSE4.1 */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return (b >> 29) & 1; /* SHA */
}
#endif

/* 0: not chosen yet, 1: portable, 2: SHA extensions. */
static int kl_sha_impl;

static int kl_sha_pick(void) {
    int impl = __atomic_load_n(&kl_sha_impl, __ATOMIC_RELAXED);
    if (!impl) {
        impl = 1;
#ifdef KL_HASH_X86
        if (kl_cpu_has_sha()) impl = 2;
#endif
        __atomic_store_n(&kl_sha_impl, impl, __ATOMIC_RELAXED);
    }
    return impl;
}

/* nblocks 64-byte blocks into the state, with the best implementation. */
static void kl_sha256_blocks(uint32_t h[8], const uint8_t *p, size_t nblocks) {
#ifdef KL_HASH_X86
    if (kl_sha_pick() == 2) {
        kl_sha256_blocks_ni(h, p, nblocks);
        return;
    }
#endif
    for (size_t i = 0; i < nblocks; i++) kl_sha256_block(h, p + 64 * i);
}

const char *kl_sha256_path(void) { return kl_sha_pick() == 2 ? "shani" : "portable"; }

bool kl_sha256_set_path(const char *name) {
    if (!name) {
        __atomic_store_n(&kl_sha_impl, 0, __ATOMIC_RELAXED);
        kl_sha_pick();
        return true;
    }
    if (strcmp(name, "portable") == 0) {
        __atomic_store_n(&kl_sha_impl, 1, __ATOMIC_RELAXED);
        return true;
    }
#ifdef KL_HASH_X86
    if (strcmp(name, "shani") == 0 && kl_cpu_has_sha()) {
        __atomic_store_n(&kl_sha_impl, 2, __ATOMIC_RELAXED);
        return true;
    }
#endif
    return false;
}

void kl_sha256_init(kl_sha256_ctx *c) {
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, h0, sizeof h0);
    c->bytes = 0;
    c->n = 0;
}

void kl_sha256_update(kl_sha256_ctx *c, const void *data, size_t size) {
    const uint8_t *p = data;
    c->bytes += size;
    if (c->n) {
        size_t take = KL_MIN(size, 64 - c->n);
        memcpy(c->buf + c->n, p, take);
        c->n += take;
        p += take;
        size -= take;
        if (c->n < 64) return;
        kl_sha256_blocks(c->h, c->buf, 1);
        c->n = 0;
    }
    if (size >= 64) {
        kl_sha256_blocks(c->h, p, size / 64);
        p += size / 64 * 64;
        size %= 64;
    }
    if (size) memcpy(c->buf, p, size);
    c->n = size;
}

void kl_sha256_final(kl_sha256_ctx *c, uint8_t out[32]) {
    uint64_t bits = c->bytes * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = (c->n < 56 ? 56 : 120) - c->n;
    for (int i = 0; i < 8; i++) pad[padlen + (size_t)i] = (uint8_t)(bits >> (56 - 8 * i));
    uint64_t keep = c->bytes;
    kl_sha256_update(c, pad, padlen + 8);
    c->bytes = keep;
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

void kl_sha256(const void *data, size_t size, uint8_t out[32]) {
    kl_sha256_ctx c;
    kl_sha256_init(&c);
    kl_sha256_update(&c, data, size);
    kl_sha256_final(&c, out);
}

char *kl_hex(const uint8_t *bytes, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = 0;
    return out;
}

void kl_sha256_hex(const void *data, size_t size, char out[65]) {
    uint8_t d[32];
    kl_sha256(data, size, d);
    kl_hex(d, 32, out);
}

/* ---- KH64 ------------------------------------------------------------------------ */

#define KH_P32_1 0x9E3779B1u
#define KH_P64_1 0x9E3779B185EBCA87ull
#define KH_P64_2 0xC2B2AE3D27D4EB4Full
#define KH_P64_3 0x165667B19E3779F9ull
#define KH_P64_4 0x85EBCA77C2B2AE63ull

/* Lane keys (the first 64 fractional bits of the square roots of the primes
 * 2..19) and scramble keys (cube roots of the same primes). */
static const uint64_t kh_key[8] = {0x6a09e667f3bcc908ull, 0xbb67ae8584caa73bull, 0x3c6ef372fe94f82bull,
                                   0xa54ff53a5f1d36f1ull, 0x510e527fade682d1ull, 0x9b05688c2b3e6c1full,
                                   0x1f83d9abfb41bd6bull, 0x5be0cd19137e2179ull};
static const uint64_t kh_scr[8] = {0x428a2f98d728ae22ull, 0x7137449123ef65cdull, 0xb5c0fbcfec4d3b2full,
                                   0xe9b5dba58189dbbcull, 0x3956c25bf348b538ull, 0x59f111f1b605d019ull,
                                   0x923f82a4af194f9bull, 0xab1c5ed5da6d8118ull};

static inline uint64_t kh_le64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* Accumulate one 64-byte stripe. */
static inline void kh_stripe(uint64_t acc[8], const uint8_t *p) {
    uint64_t d[8];
    for (int i = 0; i < 8; i++) d[i] = kh_le64(p + 8 * i);
    for (int i = 0; i < 8; i++) {
        uint64_t k = d[i] ^ kh_key[i];
        acc[i] += (k & 0xffffffffu) * (k >> 32) + d[i ^ 1];
    }
}

static inline void kh_scramble(uint64_t acc[8]) {
    for (int i = 0; i < 8; i++) {
        uint64_t a = acc[i];
        a ^= a >> 47;
        a ^= kh_scr[i];
        acc[i] = a * KH_P32_1;
    }
}

/* Whole blocks of 16 stripes (1024 bytes) each followed by a scramble:
 * the hot loop.  Scalar form; vector forms below compute the same. */
static void kh_blocks_scalar(uint64_t acc[8], const uint8_t *p, size_t nblocks) {
    for (size_t b = 0; b < nblocks; b++, p += 1024) {
        for (int s = 0; s < 16; s++) kh_stripe(acc, p + 64 * s);
        kh_scramble(acc);
    }
}

#ifdef KL_HASH_X86
__attribute__((target("avx2"))) static void kh_blocks_avx2(uint64_t acc[8], const uint8_t *p, size_t nblocks) {
    __m256i a0 = _mm256_loadu_si256((const __m256i *)acc);
    __m256i a1 = _mm256_loadu_si256((const __m256i *)(acc + 4));
    const __m256i k0 = _mm256_loadu_si256((const __m256i *)kh_key);
    const __m256i k1 = _mm256_loadu_si256((const __m256i *)(kh_key + 4));
    const __m256i s0 = _mm256_loadu_si256((const __m256i *)kh_scr);
    const __m256i s1 = _mm256_loadu_si256((const __m256i *)(kh_scr + 4));
    const __m256i prime = _mm256_set1_epi32((int)KH_P32_1);
    for (size_t b = 0; b < nblocks; b++, p += 1024) {
        for (int s = 0; s < 16; s++) {
            const uint8_t *q = p + 64 * s;
            __m256i d0 = _mm256_loadu_si256((const __m256i *)q);
            __m256i d1 = _mm256_loadu_si256((const __m256i *)(q + 32));
            __m256i x0 = _mm256_xor_si256(d0, k0), x1 = _mm256_xor_si256(d1, k1);
            __m256i m0 = _mm256_mul_epu32(x0, _mm256_srli_epi64(x0, 32));
            __m256i m1 = _mm256_mul_epu32(x1, _mm256_srli_epi64(x1, 32));
            /* d[i^1]: swap the 64-bit halves of each 128-bit pair */
            a0 = _mm256_add_epi64(a0, _mm256_add_epi64(m0, _mm256_shuffle_epi32(d0, 0x4E)));
            a1 = _mm256_add_epi64(a1, _mm256_add_epi64(m1, _mm256_shuffle_epi32(d1, 0x4E)));
        }
        a0 = _mm256_xor_si256(_mm256_xor_si256(a0, _mm256_srli_epi64(a0, 47)), s0);
        a1 = _mm256_xor_si256(_mm256_xor_si256(a1, _mm256_srli_epi64(a1, 47)), s1);
        /* a * P32_1 (64x32 bits): lo32*P + (hi32*P << 32) */
        __m256i lo0 = _mm256_mul_epu32(a0, prime), hi0 = _mm256_mul_epu32(_mm256_srli_epi64(a0, 32), prime);
        __m256i lo1 = _mm256_mul_epu32(a1, prime), hi1 = _mm256_mul_epu32(_mm256_srli_epi64(a1, 32), prime);
        a0 = _mm256_add_epi64(lo0, _mm256_slli_epi64(hi0, 32));
        a1 = _mm256_add_epi64(lo1, _mm256_slli_epi64(hi1, 32));
    }
    _mm256_storeu_si256((__m256i *)acc, a0);
    _mm256_storeu_si256((__m256i *)(acc + 4), a1);
}

__attribute__((target("avx512f"))) static void kh_blocks_avx512(uint64_t acc[8], const uint8_t *p,
                                                                 size_t nblocks) {
    __m512i a = _mm512_loadu_si512((const void *)acc);
    const __m512i k = _mm512_loadu_si512((const void *)kh_key);
    const __m512i sc = _mm512_loadu_si512((const void *)kh_scr);
    const __m512i prime = _mm512_set1_epi32((int)KH_P32_1);
    for (size_t b = 0; b < nblocks; b++, p += 1024) {
        for (int s = 0; s < 16; s++) {
            __m512i d = _mm512_loadu_si512((const void *)(p + 64 * s));
            __m512i x = _mm512_xor_si512(d, k);
            __m512i m = _mm512_mul_epu32(x, _mm512_srli_epi64(x, 32));
            a = _mm512_add_epi64(a, _mm512_add_epi64(m, _mm512_shuffle_epi32(d, (_MM_PERM_ENUM)0x4E)));
        }
        a = _mm512_xor_si512(_mm512_xor_si512(a, _mm512_srli_epi64(a, 47)), sc);
        __m512i lo = _mm512_mul_epu32(a, prime), hi = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), prime);
        a = _mm512_add_epi64(lo, _mm512_slli_epi64(hi, 32));
    }
    _mm512_storeu_si512((void *)acc, a);
}
#endif

typedef void (*kh_blocks_fn)(uint64_t acc[8], const uint8_t *p, size_t nblocks);

/* The fastest block routine this CPU runs (chosen once; a benign race:
 * every thread computes the same answer). */
static kh_blocks_fn kh_pick(const char **name) {
#ifdef KL_HASH_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        if (name) *name = "avx512";
        return kh_blocks_avx512;
    }
    if (__builtin_cpu_supports("avx2")) {
        if (name) *name = "avx2";
        return kh_blocks_avx2;
    }
#endif
    if (name) *name = "scalar";
    return kh_blocks_scalar;
}

static kh_blocks_fn kh_fn;          /* the routine in use (NULL: not chosen yet) */
static const char *kh_fn_name = "scalar";

static kh_blocks_fn kh_blocks(void) {
    kh_blocks_fn f = __atomic_load_n(&kh_fn, __ATOMIC_RELAXED);
    if (!f) {
        const char *name = "scalar";
        f = kh_pick(&name);
        kh_fn_name = name;
        __atomic_store_n(&kh_fn, f, __ATOMIC_RELAXED);
    }
    return f;
}

const char *kl_kh64_path(void) {
    kh_blocks();
    return kh_fn_name;
}

bool kl_kh64_set_path(const char *name) {
    const char *best = "scalar";
    kh_blocks_fn auto_fn = kh_pick(&best);
    kh_blocks_fn f = NULL;
    if (!name) {
        f = auto_fn;
        name = best;
    } else if (strcmp(name, "scalar") == 0) {
        f = kh_blocks_scalar;
    }
#ifdef KL_HASH_X86
    else if (strcmp(name, "avx2") == 0 && __builtin_cpu_supports("avx2")) {
        f = kh_blocks_avx2;
    } else if (strcmp(name, "avx512") == 0 && __builtin_cpu_supports("avx512f")) {
        f = kh_blocks_avx512;
    }
#endif
    if (!f) return false;
    kh_fn_name = f == kh_blocks_scalar ? "scalar" : name;
    __atomic_store_n(&kh_fn, f, __ATOMIC_RELAXED);
    return true;
}

void kl_kh64_init(kl_kh64_state *h, uint64_t seed) {
    static const uint64_t init[8] = {0x00000000C2B2AE3Dull, KH_P64_1, KH_P64_2, KH_P64_3,
                                     KH_P64_4, 0x0000000085EBCA77ull, 0x27D4EB2F165667C5ull,
                                     0x000000009E3779B1ull};
    for (int i = 0; i < 8; i++) h->acc[i] = init[i] + seed;
    h->total = 0;
    h->stripes = 0;
    h->n = 0;
}

/* Accumulate full stripes from p (count of them), scrambling after every
 * 16th stripe counted from the start of the input. */
static void kh_consume(kl_kh64_state *h, const uint8_t *p, size_t stripes) {
    while (stripes && h->stripes) { /* finish a partly filled block */
        kh_stripe(h->acc, p);
        p += 64;
        stripes--;
        if (++h->stripes == 16) {
            kh_scramble(h->acc);
            h->stripes = 0;
        }
    }
    size_t blocks = stripes / 16;
    if (blocks) {
        kh_blocks()(h->acc, p, blocks);
        p += blocks * 1024;
        stripes -= blocks * 16;
    }
    for (; stripes; stripes--, p += 64) {
        kh_stripe(h->acc, p);
        h->stripes++;
    }
}

void kl_kh64_update(kl_kh64_state *h, const void *data, size_t size) {
    const uint8_t *p = data;
    h->total += size;
    if (h->n) {
        size_t take = KL_MIN(size, 64 - h->n);
        memcpy(h->buf + h->n, p, take);
        h->n += take;
        p += take;
        size -= take;
        if (h->n < 64) return;
        kh_consume(h, h->buf, 1);
        h->n = 0;
    }
    kh_consume(h, p, size / 64);
    p += size / 64 * 64;
    size %= 64;
    if (size) memcpy(h->buf, p, size);
    h->n = size;
}

static inline uint64_t kh_rotl(uint64_t x, unsigned r) { return (x << r) | (x >> (64 - r)); }

uint64_t kl_kh64_final(const kl_kh64_state *h) {
    uint64_t acc[8];
    memcpy(acc, h->acc, sizeof acc);
    if (h->n) { /* the tail, zero-padded into one last stripe */
        uint8_t last[64] = {0};
        memcpy(last, h->buf, h->n);
        kh_stripe(acc, last);
    }
    uint64_t x = h->total * KH_P64_1;
    for (int i = 0; i < 8; i++) {
        uint64_t a = acc[i] * KH_P64_2;
        a = kh_rotl(a, 31) * KH_P64_1;
        x ^= a;
        x = kh_rotl(x, 27) * KH_P64_1 + KH_P64_4;
    }
    x ^= x >> 33;
    x *= KH_P64_2;
    x ^= x >> 29;
    x *= KH_P64_3;
    x ^= x >> 32;
    return x;
}

uint64_t kl_kh64(const void *data, size_t size, uint64_t seed) {
    kl_kh64_state h;
    kl_kh64_init(&h, seed);
    kl_kh64_update(&h, data, size);
    return kl_kh64_final(&h);
}

/* ---- chunked KH64 ---------------------------------------------------------------- */

static void kl_kh64c_put(kl_kh64_state *outer, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    kl_kh64_update(outer, b, 8);
}

void kl_kh64c_init(kl_kh64c_state *h) {
    kl_kh64_init(&h->chunk, 0);
    kl_kh64_init(&h->outer, 0);
    h->index = 0;
    h->in_chunk = 0;
}

void kl_kh64c_update(kl_kh64c_state *h, const void *data, size_t size) {
    const uint8_t *p = data;
    while (size) {
        size_t take = KL_KH64C_CHUNK - h->in_chunk;
        if (take > size) take = size;
        kl_kh64_update(&h->chunk, p, take);
        h->in_chunk += take;
        p += take;
        size -= take;
        if (h->in_chunk == KL_KH64C_CHUNK) {
            kl_kh64c_put(&h->outer, kl_kh64_final(&h->chunk));
            kl_kh64_init(&h->chunk, ++h->index);
            h->in_chunk = 0;
        }
    }
}

uint64_t kl_kh64c_final(const kl_kh64c_state *h) {
    kl_kh64_state outer = h->outer;
    if (h->in_chunk || h->index == 0) kl_kh64c_put(&outer, kl_kh64_final(&h->chunk)); /* the last, partial chunk */
    return kl_kh64_final(&outer);
}

typedef struct kl_kh64c_job {
    const uint8_t *data;
    size_t size, first, end; /* chunks [first, end) */
    uint64_t *out;
} kl_kh64c_job;

static void *kl_kh64c_work(void *arg) {
    kl_kh64c_job *j = arg;
    for (size_t i = j->first; i < j->end; i++) {
        size_t off = i * KL_KH64C_CHUNK, len = j->size - off < KL_KH64C_CHUNK ? j->size - off : KL_KH64C_CHUNK;
        j->out[i] = kl_kh64(j->data + off, len, i);
    }
    return NULL;
}

uint64_t kl_kh64c(const void *data, size_t size, int threads) {
    size_t n = size ? (size + KL_KH64C_CHUNK - 1) / KL_KH64C_CHUNK : 1;
    if (threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        threads = c > 8 ? 8 : c > 0 ? (int)c : 1;
    }
    if ((size_t)threads > n / 2) threads = (int)(n / 2); /* two chunks a thread at least */
    uint64_t small[64], *h = n <= 64 ? small : kl_malloc(n * sizeof *h);
    if (threads <= 1 || !h) {
        if (h && h != small) kl_free(h);
        kl_kh64c_state st;
        kl_kh64c_init(&st);
        kl_kh64c_update(&st, data, size);
        return kl_kh64c_final(&st);
    }
    pthread_t tid[8];
    kl_kh64c_job job[8];
    bool run[8] = {false};
    size_t per = (n + (size_t)threads - 1) / (size_t)threads;
    for (int t = 0; t < threads; t++)
        job[t] = (kl_kh64c_job){data, size, KL_MIN(n, per * (size_t)t), KL_MIN(n, per * (size_t)(t + 1)), h};
    for (int t = 1; t < threads; t++) run[t] = pthread_create(&tid[t], NULL, kl_kh64c_work, &job[t]) == 0;
    kl_kh64c_work(&job[0]);
    for (int t = 1; t < threads; t++) {
        if (run[t]) pthread_join(tid[t], NULL);
        else kl_kh64c_work(&job[t]); /* a thread that could not start: its chunks here */
    }
    kl_kh64_state outer;
    kl_kh64_init(&outer, 0);
    for (size_t i = 0; i < n; i++) kl_kh64c_put(&outer, h[i]);
    if (h != small) kl_free(h);
    return kl_kh64_final(&outer);
}
