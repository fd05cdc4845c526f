/*
 * test_engine_format.c — the engine container (src/engine/format.c) and the
 * hashes it uses (src/core/hash.c):
 *   - SHA-256 against the FIPS 180-2 test vectors, one-shot and split;
 *   - KH64 against a plain byte-at-a-time implementation of the algorithm
 *     written down in docs/ENGINE.md, on every accumulation path and every
 *     split of the input, plus pinned values (a change would orphan every
 *     engine file written so far);
 *   - writer -> reader round trip, byte layout, unknown sections skipped;
 *   - every refusal class with its exact one-line message, on files built
 *     here by hand (independently of the writer) with a correct checksum,
 *     so each structural check is reached;
 *   - atomic save; replay of fuzz/corpus/engine (inputs that once crashed).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/hash.h"
#include "engine/format.h"
#include "harness.h"
#include "onnx/onnx.h"

/* KH64 values pinned by the format (docs/ENGINE.md). */
#define KH64_PIN_KILN "c4cd05cd4499787c" /* KH64("kiln", seed 0) */
#define KH64_PIN_EMPTY 0xe1b93b424a82e885ull

#define KL_FUZZ_ENGINE_NO_MAIN 1
#include "../../fuzz/fuzz_engine.c" /* the fuzz target's steps, for the corpus replay */

/* ---- SHA-256 ----------------------------------------------------------------------- */

static void sha256_vectors(void);

static void check_sha(const void *data, size_t n, const char *hex) {
    char got[65];
    kl_sha256_hex(data, n, got);
    KT_CHECK_STR(got, hex);
    /* Split at every position up to 130 (or n): same digest. */
    for (size_t cut = 0; cut <= n && cut < 130; cut++) {
        kl_sha256_ctx c;
        uint8_t d[32];
        kl_sha256_init(&c);
        kl_sha256_update(&c, data, cut);
        kl_sha256_update(&c, (const uint8_t *)data + cut, n - cut);
        kl_sha256_final(&c, d);
        kl_hex(d, 32, got);
        if (strcmp(got, hex) != 0) {
            KT_CHECK_STR(got, hex);
            break;
        }
    }
}

static void test_sha256_fips(void) {
    const char *paths[] = {"portable", "shani"};
    for (int pi = 0; pi < 2; pi++) {
        if (!kl_sha256_set_path(paths[pi])) {
            fprintf(stderr, "  (SHA-256 path %s not available here)\n", paths[pi]);
            continue;
        }
        sha256_vectors();
    }
    KT_CHECK(kl_sha256_set_path(NULL));
    /* both paths agree on every length 0..300 of pseudo-random bytes */
    uint8_t buf[300];
    for (int i = 0; i < 300; i++) buf[i] = (uint8_t)(i * 131 + 17);
    if (kl_sha256_set_path("shani")) {
        for (size_t n = 0; n <= 300; n++) {
            uint8_t a[32], b[32];
            kl_sha256_set_path("shani");
            kl_sha256(buf, n, a);
            kl_sha256_set_path("portable");
            kl_sha256(buf, n, b);
            KT_CHECK(memcmp(a, b, 32) == 0);
        }
        kl_sha256_set_path(NULL);
    }
}

static void sha256_vectors(void) {
    check_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_sha(two, strlen(two), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    check_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* FIPS 180-2 appendix B.3: one million 'a'. */
    size_t n = 1000000;
    char *a = malloc(n);
    memset(a, 'a', n);
    char got[65];
    kl_sha256_hex(a, n, got);
    KT_CHECK_STR(got, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    kl_sha256_ctx c; /* in uneven pieces */
    kl_sha256_init(&c);
    for (size_t pos = 0, step = 1; pos < n; pos += step, step = step * 3 % 1000 + 1)
        kl_sha256_update(&c, a + pos, KL_MIN(step, n - pos));
    uint8_t d[32];
    kl_sha256_final(&c, d);
    KT_CHECK_STR(kl_hex(d, 32, got), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

/* ---- KH64: a plain reference written from docs/ENGINE.md --------------------------- */

static const uint64_t ref_key[8] = {0x6a09e667f3bcc908ull, 0xbb67ae8584caa73bull, 0x3c6ef372fe94f82bull,
                                    0xa54ff53a5f1d36f1ull, 0x510e527fade682d1ull, 0x9b05688c2b3e6c1full,
                                    0x1f83d9abfb41bd6bull, 0x5be0cd19137e2179ull};
static const uint64_t ref_scr[8] = {0x428a2f98d728ae22ull, 0x7137449123ef65cdull, 0xb5c0fbcfec4d3b2full,
                                    0xe9b5dba58189dbbcull, 0x3956c25bf348b538ull, 0x59f111f1b605d019ull,
                                    0x923f82a4af194f9bull, 0xab1c5ed5da6d8118ull};

static uint64_t ref_rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t ref_kh64(const uint8_t *p, size_t n, uint64_t seed) {
    const uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full, P3 = 0x165667B19E3779F9ull,
                   P4 = 0x85EBCA77C2B2AE63ull;
    uint64_t acc[8] = {0xC2B2AE3Dull, P1, P2, P3, P4, 0x85EBCA77ull, 0x27D4EB2F165667C5ull, 0x9E3779B1ull};
    for (int i = 0; i < 8; i++) acc[i] += seed;
    size_t stripes = (n + 63) / 64;
    for (size_t s = 0; s < stripes; s++) {
        uint64_t d[8];
        for (int i = 0; i < 8; i++) {
            d[i] = 0;
            for (int b = 7; b >= 0; b--) {
                size_t at = s * 64 + (size_t)i * 8 + (size_t)b;
                d[i] = d[i] << 8 | (at < n ? p[at] : 0);
            }
        }
        uint64_t next[8];
        for (int i = 0; i < 8; i++) {
            uint64_t k = d[i] ^ ref_key[i];
            next[i] = acc[i] + (k & 0xffffffffu) * (k >> 32) + d[i ^ 1];
        }
        memcpy(acc, next, sizeof acc);
        bool full = (s + 1) * 64 <= n;
        if (full && (s + 1) % 16 == 0)
            for (int i = 0; i < 8; i++) acc[i] = ((acc[i] ^ (acc[i] >> 47)) ^ ref_scr[i]) * 0x9E3779B1ull;
    }
    uint64_t x = (uint64_t)n * P1;
    for (int i = 0; i < 8; i++) {
        x ^= ref_rotl(acc[i] * P2, 31) * P1;
        x = ref_rotl(x, 27) * P1 + P4;
    }
    x ^= x >> 33;
    x *= P2;
    x ^= x >> 29;
    x *= P3;
    x ^= x >> 32;
    return x;
}

static void test_kh64_reference(void) {
    size_t n = 70000;
    uint8_t *buf = malloc(n + 2); /* + 2: unaligned starts of the longest size */
    uint64_t r = 88172645463325252ull; /* xorshift, fixed seed */
    for (size_t i = 0; i < n + 2; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        buf[i] = (uint8_t)r;
    }
    static const size_t sizes[] = {0, 1, 7, 8, 63, 64, 65, 127, 128, 1023, 1024, 1025, 2048, 2111, 16384, 69999, 70000};
    const char *paths[] = {"scalar", "avx2", "avx512"};
    for (size_t pi = 0; pi < 3; pi++) {
        if (!kl_kh64_set_path(paths[pi])) {
            fprintf(stderr, "  (KH64 path %s not available here)\n", paths[pi]);
            continue;
        }
        for (size_t si = 0; si < KL_ARRAY_LEN(sizes); si++) {
            size_t len = sizes[si];
            for (size_t off = 0; off < 3; off++) { /* unaligned starts too */
                uint64_t want = ref_kh64(buf + off, len, 0);
                KT_CHECK(kl_kh64(buf + off, len, 0) == want);
            }
            KT_CHECK(kl_kh64(buf, len, 12345) == ref_kh64(buf, len, 12345));
        }
        /* streaming in uneven pieces equals one shot */
        kl_kh64_state st;
        kl_kh64_init(&st, 0);
        for (size_t pos = 0, step = 1; pos < n; pos += step, step = step * 7 % 3001 + 1)
            kl_kh64_update(&st, buf + pos, KL_MIN(step, n - pos));
        KT_CHECK(kl_kh64_final(&st) == ref_kh64(buf, n, 0));
    }
    KT_CHECK(kl_kh64_set_path(NULL));
    /* Pinned: these values are part of the engine format. */
    KT_CHECK(kl_kh64("", 0, 0) == ref_kh64((const uint8_t *)"", 0, 0));
    KT_CHECK(kl_kh64("", 0, 0) == KH64_PIN_EMPTY);
    char pinned[17];
    uint64_t v = kl_kh64("kiln", 4, 0);
    snprintf(pinned, sizeof pinned, "%016llx", (unsigned long long)v);
    KT_CHECK_STR(pinned, KH64_PIN_KILN);
    /* one flipped bit anywhere changes the value */
    uint64_t base = kl_kh64(buf, 5000, 0);
    for (size_t i = 0; i < 5000; i += 97) {
        buf[i] ^= 4;
        KT_CHECK(kl_kh64(buf, 5000, 0) != base);
        buf[i] ^= 4;
    }
    free(buf);
}

/* ---- hand-made engine files ------------------------------------------------------------ */

typedef struct raw_sec {
    uint32_t kind, flags;
    const void *data;
    size_t size;
    uint64_t offset; /* 0: laid out 64-aligned after the previous one */
} raw_sec;

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }

/* The engine checksum (format 2) from the reference KH64: 4 MiB chunks,
 * chunk i with seed i, then the chunk values (8 little-endian bytes each)
 * with seed 0. */
static uint64_t ref_kh64c(const uint8_t *p, size_t n) {
    const size_t chunk = (size_t)4 << 20;
    size_t nc = n ? (n + chunk - 1) / chunk : 1;
    uint8_t *vals = malloc(nc * 8);
    for (size_t i = 0; i < nc; i++) {
        size_t len = n - i * chunk < chunk ? n - i * chunk : chunk;
        uint64_t v = ref_kh64(p + i * chunk, n ? len : 0, i);
        for (int k = 0; k < 8; k++) vals[i * 8 + k] = (uint8_t)(v >> (8 * k));
    }
    uint64_t r = ref_kh64(vals, nc * 8, 0);
    free(vals);
    return r;
}

/* Fix the checksum field after editing bytes. */
static void reseal(uint8_t *b, size_t n) { put64(b + 32, ref_kh64c(b + 40, n - 40)); }

/* The chunked checksum: one shot on 1..8 threads and streaming in uneven
 * pieces equal the reference, across chunk boundaries. */
static void test_kh64_chunked(void) {
    const size_t chunk = (size_t)4 << 20;
    size_t n = 3 * chunk + 4099;
    uint8_t *buf = malloc(n);
    uint64_t r = 0x243F6A8885A308D3ull;
    for (size_t i = 0; i < n; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        buf[i] = (uint8_t)r;
    }
    const size_t sizes[] = {0, 1, 1000, chunk - 1, chunk, chunk + 1, 2 * chunk, 2 * chunk + 77, n};
    for (size_t si = 0; si < KL_ARRAY_LEN(sizes); si++) {
        size_t len = sizes[si];
        uint64_t want = ref_kh64c(buf, len);
        for (int t = 1; t <= 8; t *= 2) KT_CHECK(kl_kh64c(buf, len, t) == want);
        KT_CHECK(kl_kh64c(buf, len, 0) == want);
        kl_kh64c_state st;
        kl_kh64c_init(&st);
        for (size_t pos = 0, step = 1; pos < len; pos += step, step = step * 131 % 1500007 + 1)
            kl_kh64c_update(&st, buf + pos, KL_MIN(step, len - pos));
        KT_CHECK(kl_kh64c_final(&st) == want);
    }
    /* a flipped bit in the last chunk changes it */
    uint64_t base = kl_kh64c(buf, n, 4);
    buf[n - 5] ^= 1;
    KT_CHECK(kl_kh64c(buf, n, 4) != base);
    free(buf);
}

/* Build a file by hand (independent of the writer): header, table, sections. */
static uint8_t *raw_engine(const raw_sec *secs, size_t n, size_t *size) {
    uint64_t off = 64 + 24 * n, end = off;
    uint64_t offs[16];
    for (size_t i = 0; i < n; i++) {
        off = (off + 63) / 64 * 64;
        offs[i] = secs[i].offset ? secs[i].offset : off;
        off = offs[i] + secs[i].size;
        if (off > end) end = off;
    }
    uint8_t *b = calloc(1, end);
    memcpy(b, "KILNENG", 8);
    put32(b + 8, 2);
    put32(b + 12, 0x01020304);
    put64(b + 16, end);
    put32(b + 24, (uint32_t)n);
    put32(b + 28, 64);
    for (size_t i = 0; i < n; i++) {
        uint8_t *e = b + 64 + 24 * i;
        put32(e, secs[i].kind);
        put32(e + 4, secs[i].flags);
        put64(e + 8, offs[i]);
        put64(e + 16, secs[i].size);
        if (secs[i].size) memcpy(b + offs[i], secs[i].data, secs[i].size);
    }
    reseal(b, end);
    *size = end;
    return b;
}

/* META bytes for "k=v" pairs given as a NULL-terminated list of strings. */
static size_t raw_meta(uint8_t *out, const char *const *kv) {
    size_t n = 0;
    while (kv[2 * n]) n++;
    put32(out, (uint32_t)n);
    size_t pos = 4;
    for (size_t i = 0; i < 2 * n; i++) {
        size_t len = strlen(kv[i]);
        put32(out + pos, (uint32_t)len);
        memcpy(out + pos + 4, kv[i], len + 1);
        pos += 4 + len + 1;
    }
    return pos;
}

static uint8_t good_meta[256];
static size_t good_meta_n;
static const char graph_bytes[] = "pretend ONNX";
static uint8_t weights[1000];

/* A valid three-section file: meta, graph, weights. */
static uint8_t *good_engine(size_t *size) {
    const char *kv[] = {"kiln_version", "0.1.0", "model_sha256", "abc", NULL, NULL};
    good_meta_n = raw_meta(good_meta, kv);
    raw_sec secs[] = {{KL_SEC_META, 1, good_meta, good_meta_n, 0},
                      {KL_SEC_GRAPH, 0, graph_bytes, sizeof graph_bytes, 0},
                      {KL_SEC_WEIGHTS, 0, weights, sizeof weights, 0}};
    return raw_engine(secs, 3, size);
}

/* Open b[0..n) and check the status and the exact message. */
static void expect_refusal(const uint8_t *b, size_t n, kiln_status want, const char *msg) {
    kl_engine_file f;
    kl_error_clear();
    kiln_status s = kl_engine_file_open(b, n, &f);
    KT_CHECK_EQ_INT(s, want);
    KT_CHECK_STR(kl_error_message(), msg);
    KT_CHECK(f.sections == NULL && f.n_meta == 0);
}

static void test_hand_made_opens(void) {
    size_t n;
    uint8_t *b = good_engine(&n);
    kl_engine_file f;
    KT_CHECK_EQ_INT(kl_engine_file_open(b, n, &f), KILN_OK);
    KT_CHECK_STR(kl_engine_file_meta(&f, "kiln_version"), "0.1.0");
    KT_CHECK_STR(kl_engine_file_meta(&f, "model_sha256"), "abc");
    KT_CHECK(kl_engine_file_meta(&f, "absent") == NULL);
    const void *d;
    size_t dn;
    KT_CHECK(kl_engine_file_section(&f, KL_SEC_WEIGHTS, &d, &dn));
    KT_CHECK(d == b + 320 && dn == sizeof weights); /* meta at 192, graph at 256 */
    KT_CHECK(!kl_engine_file_section(&f, KL_SEC_TACTICS, &d, &dn) && d == NULL && dn == 0);
    kl_engine_file_close(&f);
    free(b);
}

static void test_refusals_header(void) {
    size_t n;
    uint8_t *b = good_engine(&n);
    uint8_t *c = malloc(n);

    memcpy(c, b, n);
    c[3] = 'X';
    expect_refusal(c, n, KILN_ERR_PARSE, "not a kiln engine (bad magic)");
    expect_refusal((const uint8_t *)"KILN", 4, KILN_ERR_PARSE, "not a kiln engine (bad magic)");
    expect_refusal(c, 0, KILN_ERR_PARSE, "not a kiln engine (bad magic)");

    memcpy(c, b, n);
    put32(c + 8, 7);
    reseal(c, n);
    expect_refusal(c, n, KILN_ERR_ENGINE_MISMATCH, "engine format version 7, this kiln reads version 2: rebuild the engine");

    memcpy(c, b, n);
    put32(c + 12, 0x04030201);
    reseal(c, n);
    expect_refusal(c, n, KILN_ERR_PARSE,
                   "engine written in big-endian byte order; this kiln reads little-endian engines: rebuild the engine");
    put32(c + 12, 0x12345678);
    reseal(c, n);
    expect_refusal(c, n, KILN_ERR_PARSE, "bad engine byte-order mark 0x12345678 (expected 0x01020304): the header is corrupt");

    char msg[200];
    snprintf(msg, sizeof msg, "truncated engine: %zu bytes, its header says %zu", n - 1, n);
    expect_refusal(b, n - 1, KILN_ERR_PARSE, msg);
    expect_refusal(b, 40, KILN_ERR_PARSE, "truncated engine: 40 bytes, shorter than the 64-byte header");

    uint8_t *longer = calloc(1, n + 5);
    memcpy(longer, b, n);
    snprintf(msg, sizeof msg, "engine size mismatch: %zu bytes, its header says %zu (trailing data)", n + 5, n);
    expect_refusal(longer, n + 5, KILN_ERR_PARSE, msg);
    free(longer);

    memcpy(c, b, n); /* one bit flipped in the weights */
    c[n - 10] ^= 1;
    uint64_t stored = ref_kh64c(b + 40, n - 40), computed = ref_kh64c(c + 40, n - 40);
    snprintf(msg, sizeof msg, "engine checksum mismatch (stored %016llx, computed %016llx): the file is corrupt",
             (unsigned long long)stored, (unsigned long long)computed);
    expect_refusal(c, n, KILN_ERR_PARSE, msg);
    /* the checksum covers the section table too */
    memcpy(c, b, n);
    c[64 + 24 + 4] ^= 0x80;
    KT_CHECK_EQ_INT(kl_engine_file_open(c, n, &(kl_engine_file){0}), KILN_ERR_PARSE);
    KT_CHECK_CONTAINS(kl_error_message(), "engine checksum mismatch");

    memcpy(c, b, n);
    put32(c + 28, 60);
    reseal(c, n);
    expect_refusal(c, n, KILN_ERR_PARSE, "bad engine header size 60 (expected a multiple of 8 from 64 to 4096)");

    memcpy(c, b, n);
    put32(c + 24, 0);
    reseal(c, n);
    expect_refusal(c, n, KILN_ERR_PARSE, "engine section count 0 is out of range (1..256)");
    put32(c + 24, 100000);
    reseal(c, n);
    expect_refusal(c, n, KILN_ERR_PARSE, "engine section count 100000 is out of range (1..256)");
    put32(c + 24, 200);
    reseal(c, n);
    snprintf(msg, sizeof msg,
             "truncated engine: the section table (200 entries) ends at byte %d, past the end (%zu bytes)", 64 + 24 * 200, n);
    expect_refusal(c, n, KILN_ERR_PARSE, msg);
    free(c);
    free(b);
}

static void test_refusals_sections(void) {
    const char *kv[] = {"a", "1", NULL, NULL};
    uint8_t meta[64];
    size_t mn = raw_meta(meta, kv), n;
    char msg[256];
    uint8_t data[200] = {1, 2, 3};

    /* out of bounds: size past the end */
    raw_sec s1[] = {{KL_SEC_META, 1, meta, mn, 0}, {KL_SEC_WEIGHTS, 0, data, 100, 0}};
    uint8_t *b = raw_engine(s1, 2, &n);
    put64(b + 64 + 24 + 16, 101);
    reseal(b, n);
    snprintf(msg, sizeof msg,
             "engine section 1 (weights) at offset 192 with 101 bytes is out of bounds (data lies in bytes 112..%zu)", n);
    expect_refusal(b, n, KILN_ERR_PARSE, msg);
    /* offset inside the header/table */
    put64(b + 64 + 24 + 8, 64);
    put64(b + 64 + 24 + 16, 10);
    reseal(b, n);
    snprintf(msg, sizeof msg,
             "engine section 1 (weights) at offset 64 with 10 bytes is out of bounds (data lies in bytes 112..%zu)", n);
    expect_refusal(b, n, KILN_ERR_PARSE, msg);
    /* huge offset: no overflow */
    put64(b + 64 + 24 + 8, 0xffffffffffffffc0ull);
    put64(b + 64 + 24 + 16, 0x80);
    reseal(b, n);
    KT_CHECK_EQ_INT(kl_engine_file_open(b, n, &(kl_engine_file){0}), KILN_ERR_PARSE);
    KT_CHECK_CONTAINS(kl_error_message(), "is out of bounds");
    /* misaligned */
    put64(b + 64 + 24 + 8, 200);
    put64(b + 64 + 24 + 16, 10);
    reseal(b, n);
    expect_refusal(b, n, KILN_ERR_PARSE, "engine section 1 (weights) at offset 200 is not 64-byte aligned");
    free(b);

    /* overlapping */
    raw_sec s2[] = {{KL_SEC_META, 1, meta, mn, 0}, {KL_SEC_GRAPH, 0, data, 100, 256}, {KL_SEC_WEIGHTS, 0, data, 100, 320}};
    b = raw_engine(s2, 3, &n);
    expect_refusal(b, n, KILN_ERR_PARSE, "engine sections 1 (graph) and 2 (weights) overlap");
    free(b);

    /* duplicate kind */
    raw_sec s3[] = {{KL_SEC_META, 1, meta, mn, 0}, {KL_SEC_GRAPH, 0, data, 10, 0}, {KL_SEC_GRAPH, 0, data, 10, 0}};
    b = raw_engine(s3, 3, &n);
    expect_refusal(b, n, KILN_ERR_PARSE, "engine section kind 2 (graph) appears twice (sections 1 and 2)");
    free(b);

    /* kind 0 */
    raw_sec s4[] = {{KL_SEC_META, 1, meta, mn, 0}, {0, 0, data, 10, 0}};
    b = raw_engine(s4, 2, &n);
    expect_refusal(b, n, KILN_ERR_PARSE, "engine section 1 has kind 0 (reserved)");
    free(b);

    /* unknown required kind: a mismatch; unknown optional kind: skipped */
    raw_sec s5[] = {{KL_SEC_META, 1, meta, mn, 0}, {900, KL_SEC_FLAG_REQUIRED, data, 10, 0}};
    b = raw_engine(s5, 2, &n);
    expect_refusal(b, n, KILN_ERR_ENGINE_MISMATCH,
                   "engine needs section kind 900, which this kiln does not know: rebuild the engine or update kiln");
    free(b);
    raw_sec s6[] = {{KL_SEC_META, 1, meta, mn, 0}, {900, 0, data, 10, 0}, {KL_SEC_GRAPH, 0, data, 3, 0}};
    b = raw_engine(s6, 3, &n);
    kl_engine_file f;
    KT_CHECK_EQ_INT(kl_engine_file_open(b, n, &f), KILN_OK);
    const void *d;
    size_t dn;
    KT_CHECK(kl_engine_file_section(&f, KL_SEC_GRAPH, &d, &dn) && dn == 3 && memcmp(d, data, 3) == 0);
    /* ...and still covered by the checksum */
    KT_CHECK_EQ_INT(f.sections[1].kind, 900);
    size_t unknown_at = (size_t)f.sections[1].offset;
    kl_engine_file_close(&f);
    b[unknown_at + 5] ^= 1;
    KT_CHECK_EQ_INT(kl_engine_file_open(b, n, &f), KILN_ERR_PARSE);
    KT_CHECK_CONTAINS(kl_error_message(), "engine checksum mismatch");
    free(b);

    /* no metadata */
    raw_sec s7[] = {{KL_SEC_GRAPH, 0, data, 10, 0}};
    b = raw_engine(s7, 1, &n);
    expect_refusal(b, n, KILN_ERR_PARSE, "engine has no metadata section");
    free(b);
}

/* A file whose META section holds m[0..mn). */
static void expect_meta_refusal(const uint8_t *m, size_t mn, const char *msg) {
    raw_sec s[] = {{KL_SEC_META, 1, m, mn, 0}};
    size_t n;
    uint8_t *b = raw_engine(s, 1, &n);
    expect_refusal(b, n, KILN_ERR_PARSE, msg);
    free(b);
}

static void test_refusals_meta(void) {
    uint8_t m[256];
    const char *dup[] = {"a", "1", "b", "2", "a", "3", NULL, NULL};
    size_t mn = raw_meta(m, dup);
    expect_meta_refusal(m, mn, "malformed engine metadata: key 'a' appears twice");

    const char *one[] = {"key", "value", NULL, NULL};
    mn = raw_meta(m, one);
    expect_meta_refusal(m, 2, "malformed engine metadata: 2 bytes, no entry count");
    put32(m, 1000000);
    expect_meta_refusal(m, mn, "malformed engine metadata: 1000000 entries do not fit (at most 4096, in 22 bytes)");
    put32(m, 1);
    m[4 + 4 + 3] = 'x'; /* key's NUL */
    expect_meta_refusal(m, mn, "malformed engine metadata: entry 0's key is not a NUL-terminated string");
    m[4 + 4 + 3] = 0;
    m[4 + 4 + 4 + 4 + 2] = 0; /* a NUL inside the value */
    expect_meta_refusal(m, mn, "malformed engine metadata: entry 0's value is not a NUL-terminated string");
    mn = raw_meta(m, one);
    put32(m + 4 + 4 + 4, 1000); /* value length past the section */
    expect_meta_refusal(m, mn, "malformed engine metadata: entry 0's value (1000 bytes) runs past the section");
    const char *bad_key[] = {"Key With Spaces", "v", NULL, NULL};
    mn = raw_meta(m, bad_key);
    expect_meta_refusal(m, mn, "malformed engine metadata: entry 0's key is not 1-128 bytes of a-z 0-9 _ . -");
    mn = raw_meta(m, one);
    m[mn] = 0;
    m[mn + 1] = 0;
    expect_meta_refusal(m, mn + 2, "malformed engine metadata: 2 bytes after the last entry");
}

/* ---- writer ------------------------------------------------------------------------ */

static void test_writer_roundtrip(void) {
    kl_engine_writer *w;
    KT_CHECK_EQ_INT(kl_engine_writer_create(&w), KILN_OK);
    KT_CHECK_EQ_INT(kl_engine_writer_meta(w, "kiln_version", "0.1.0"), KILN_OK);
    KT_CHECK_EQ_INT(kl_engine_writer_meta(w, "build_options", "providers=cpu; threads=2\nline two"), KILN_OK);
    KT_CHECK_EQ_INT(kl_engine_writer_meta(w, "empty", ""), KILN_OK);
    KT_CHECK_EQ_INT(kl_engine_writer_meta(w, "kiln_version", "again"), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_STR(kl_error_message(), "engine metadata key 'kiln_version' is set twice");
    KT_CHECK_EQ_INT(kl_engine_writer_meta(w, "Bad Key", "x"), KILN_ERR_INVALID_ARGUMENT);
    uint8_t *big = malloc(300000);
    for (size_t i = 0; i < 300000; i++) big[i] = (uint8_t)(i * 31 + 7);
    KT_CHECK_EQ_INT(kl_engine_writer_section(w, KL_SEC_GRAPH, graph_bytes, sizeof graph_bytes), KILN_OK);
    KT_CHECK_EQ_INT(kl_engine_writer_section(w, KL_SEC_WEIGHTS, big, 300000), KILN_OK);
    KT_CHECK_EQ_INT(kl_engine_writer_section(w, KL_SEC_TACTICS, NULL, 0), KILN_OK);
    KT_CHECK_EQ_INT(kl_engine_writer_section(w, 77, "future", 6), KILN_OK);
    KT_CHECK_EQ_INT(kl_engine_writer_section(w, KL_SEC_GRAPH, "x", 1), KILN_ERR_INVALID_ARGUMENT);
    KT_CHECK_STR(kl_error_message(), "engine section kind 2 (graph) added twice");
    KT_CHECK_EQ_INT(kl_engine_writer_section(w, KL_SEC_META, "x", 1), KILN_ERR_INVALID_ARGUMENT);
    void *bytes;
    size_t n;
    KT_CHECK_EQ_INT(kl_engine_writer_finish(w, &bytes, &n), KILN_OK);
    const uint8_t *b = bytes;
    /* byte layout */
    KT_CHECK(memcmp(b, "KILNENG\0", 8) == 0);
    KT_CHECK(b[8] == 2 && b[9] == 0 && b[10] == 0 && b[11] == 0);
    KT_CHECK(b[12] == 4 && b[13] == 3 && b[14] == 2 && b[15] == 1);
    uint64_t fsize = 0, sum = 0;
    for (int i = 7; i >= 0; i--) fsize = fsize << 8 | b[16 + i], sum = sum << 8 | b[32 + i];
    KT_CHECK(fsize == n);
    KT_CHECK(sum == ref_kh64c(b + 40, n - 40));
    KT_CHECK(b[24] == 5 && b[28] == 64);
    kl_engine_file f;
    KT_CHECK_EQ_INT(kl_engine_file_open(bytes, n, &f), KILN_OK);
    KT_CHECK_EQ_INT(f.n_sections, 5);
    KT_CHECK_EQ_INT(f.sections[0].kind, KL_SEC_META);
    for (size_t i = 0; i < f.n_sections; i++) KT_CHECK(f.sections[i].offset % 64 == 0);
    KT_CHECK_STR(kl_engine_file_meta(&f, "build_options"), "providers=cpu; threads=2\nline two");
    KT_CHECK_STR(kl_engine_file_meta(&f, "empty"), "");
    KT_CHECK_EQ_INT(f.n_meta, 3);
    const void *d;
    size_t dn;
    KT_CHECK(kl_engine_file_section(&f, KL_SEC_WEIGHTS, &d, &dn) && dn == 300000 && memcmp(d, big, dn) == 0);
    KT_CHECK(((const uint8_t *)d - b) % 64 == 0);
    KT_CHECK(kl_engine_file_section(&f, KL_SEC_TACTICS, &d, &dn) && dn == 0);
    KT_CHECK(kl_engine_file_section(&f, 77, &d, &dn) && dn == 6 && memcmp(d, "future", 6) == 0);
    kl_engine_file_close(&f);

    /* atomic save: same bytes on disk, no temporary file left behind */
    char dir[] = "/tmp/kiln_engine_XXXXXX";
    KT_CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/model.kiln", dir);
    FILE *old = fopen(path, "wb"); /* an older file is replaced */
    fputs("old contents", old);
    fclose(old);
    KT_CHECK_EQ_INT(kl_engine_writer_save(w, path), KILN_OK);
    KT_CHECK_EQ_INT(kl_engine_file_map(path, &f), KILN_OK);
    KT_CHECK(f.size == n && memcmp(f.bytes, bytes, n) == 0);
    KT_CHECK(f.map.map_base != NULL);
    KT_CHECK_STR(kl_engine_file_meta(&f, "kiln_version"), "0.1.0");
    kl_engine_file_close(&f);
    DIR *dd = opendir(dir);
    int entries = 0;
    for (struct dirent *e; (e = readdir(dd));)
        if (e->d_name[0] != '.') entries++;
    closedir(dd);
    KT_CHECK_EQ_INT(entries, 1);
    struct stat st;
    KT_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);
    /* a corrupt file on disk: the message names the path */
    FILE *cf = fopen(path, "r+b");
    fseek(cf, (long)n - 1, SEEK_SET);
    fputc(0x5a, cf);
    fclose(cf);
    KT_CHECK_EQ_INT(kl_engine_file_map(path, &f), KILN_ERR_PARSE);
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s: engine checksum mismatch", path);
    KT_CHECK(strncmp(kl_error_message(), prefix, strlen(prefix)) == 0);
    KT_CHECK(f.bytes == NULL && f.map.map_base == NULL);
    unlink(path);
    /* a folder that does not exist */
    snprintf(path, sizeof path, "%s/missing/model.kiln", dir);
    KT_CHECK_EQ_INT(kl_engine_writer_save(w, path), KILN_ERR_IO);
    KT_CHECK_CONTAINS(kl_error_message(), "cannot create a temporary file next to");
    KT_CHECK_CONTAINS(kl_error_message(), path);
    /* a file that is not an engine */
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    FILE *tf = fopen(path, "wb");
    fputs("\x08\x07 not an engine", tf);
    fclose(tf);
    KT_CHECK_EQ_INT(kl_engine_file_map(path, &f), KILN_ERR_PARSE);
    snprintf(prefix, sizeof prefix, "%s: not a kiln engine (bad magic)", path);
    KT_CHECK_STR(kl_error_message(), prefix);
    unlink(path);
    rmdir(dir);

    kl_free(bytes);
    kl_engine_writer_destroy(w);
    free(big);
}

/* Allocation failures in the writer and the reader: clean errors, no leak. */
static void test_alloc_failures(void) {
    size_t n;
    uint8_t *b = good_engine(&n);
    for (long k = 1; k < 20; k++) {
        kl_engine_file f;
        kl_alloc_fail_at(k);
        kiln_status s = kl_engine_file_open(b, n, &f);
        kl_alloc_fail_at(0);
        if (s == KILN_OK) {
            kl_engine_file_close(&f);
            break;
        }
        KT_CHECK_EQ_INT(s, KILN_ERR_NO_MEMORY);
    }
    for (long k = 1; k < 40; k++) {
        kl_engine_writer *w = NULL;
        void *bytes = NULL;
        size_t bn;
        kl_alloc_fail_at(k);
        kiln_status s = kl_engine_writer_create(&w);
        if (!s) s = kl_engine_writer_meta(w, "a", "b");
        if (!s) s = kl_engine_writer_section(w, KL_SEC_GRAPH, "g", 1);
        if (!s) s = kl_engine_writer_finish(w, &bytes, &bn);
        kl_alloc_fail_at(0);
        kl_engine_writer_destroy(w);
        kl_free(bytes);
        if (s == KILN_OK) break;
        KT_CHECK_EQ_INT(s, KILN_ERR_NO_MEMORY);
    }
    free(b);
}

/* Every input that once crashed the engine fuzzer must now be refused or
 * loaded cleanly (a crash or sanitizer report fails the test). */
static void test_fuzz_corpus_replay(void) {
    const char *src = getenv("KILN_SOURCE_DIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/fuzz/corpus/engine", src ? src : "../..");
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "  (no %s)\n", dir);
        return;
    }
    int count = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *fp = fopen(path, "rb");
        if (!fp) continue;
        fseek(fp, 0, SEEK_END);
        long len = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
        size_t got = fread(buf, 1, (size_t)len, fp);
        fclose(fp);
        KT_CHECK(got == (size_t)len);
        kl_fuzz_engine_one(buf, got);
        free(buf);
        count++;
    }
    closedir(d);
    fprintf(stderr, "  replayed %d input(s) of %s\n", count, dir);
}

/* The fuzzer's seed engines: valid containers whose graph loads over the
 * weights section (zero copy), and survive the fuzz steps. */
static void test_fuzz_seeds(void) {
    const char *shared = getenv("KILN_SHARED_DIR");
    int made = 0, with_weights = 0;
    for (size_t i = 0; i < KL_ARRAY_LEN(kl_fuzz_seed_tests); i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/onnx-backend-tests/node/%s", shared ? shared : "../../../shared", kl_fuzz_seed_tests[i]);
        void *bytes = NULL;
        size_t n = 0;
        kiln_status s = kl_fuzz_make_seed(dir, &bytes, &n);
        KT_CHECK_EQ_INT(s, KILN_OK);
        if (s) {
            fprintf(stderr, "  %s: %s\n", kl_fuzz_seed_tests[i], kl_error_message());
            continue;
        }
        made++;
        KT_CHECK(n <= 65536); /* fits the fuzzer's -max_len */
        kl_engine_file f;
        KT_CHECK_EQ_INT(kl_engine_file_open(bytes, n, &f), KILN_OK);
        KT_CHECK_STR(kl_engine_file_meta(&f, "kiln_version"), kiln_version());
        KT_CHECK(kl_engine_file_meta(&f, "model_sha256") && strlen(kl_engine_file_meta(&f, "model_sha256")) == 64);
        const void *g, *w;
        size_t gn, wn;
        KT_CHECK(kl_engine_file_section(&f, KL_SEC_GRAPH, &g, &gn) && gn > 0);
        KT_CHECK(kl_engine_file_section(&f, KL_SEC_WEIGHTS, &w, &wn));
        kl_model *m = NULL;
        KT_CHECK_EQ_INT(kl_onnx_parse_with_blob(g, gn, kl_fuzz_seed_tests[i], w, wn, &m), KILN_OK);
        if (m && m->graph->n_initializers) {
            const kl_tensor *t = m->graph->initializers[0]->init;
            KT_CHECK(t && (const uint8_t *)t->data >= (const uint8_t *)w && (const uint8_t *)t->data < (const uint8_t *)w + wn);
            with_weights++;
        }
        kl_model_free(m);
        kl_engine_file_close(&f);
        kl_fuzz_engine_one(bytes, n);
        kl_free(bytes);
    }
    fprintf(stderr, "  %d seed engines, %d with weights\n", made, with_weights);
    KT_CHECK(with_weights >= 4);
    /* complete engines from the builder: the public loader accepts them */
    int built = 0;
    for (size_t i = 0; i < KL_ARRAY_LEN(kl_fuzz_seed_tests); i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/onnx-backend-tests/node/%s", shared ? shared : "../../../shared", kl_fuzz_seed_tests[i]);
        void *bytes = NULL;
        size_t n = 0;
        if (kl_fuzz_make_built_seed(dir, &bytes, &n) != KILN_OK) {
            fprintf(stderr, "  (no built seed from %s: %s)\n", kl_fuzz_seed_tests[i], kl_error_message());
            continue;
        }
        kiln_engine *e = NULL;
        KT_CHECK_EQ_INT(kiln_engine_load_from_memory(bytes, n, &e), KILN_OK);
        kiln_engine_destroy(e);
        KT_CHECK(n <= 65536);
        kl_fuzz_engine_one(bytes, n);
        kl_free(bytes);
        built++;
    }
    fprintf(stderr, "  %d complete engines from kiln_build\n", built);
    KT_CHECK(built >= 4);
}

/* kl_mapfile_release drops a mapped file's pages, never their contents:
 * the bytes read after it are the file's; on heap memory it does nothing
 * (madvise there would zero anonymous pages). */
static void test_mapfile_release(void) {
    char path[] = "/tmp/kiln-release-XXXXXX";
    int fd = mkstemp(path);
    KT_CHECK(fd >= 0);
    if (fd < 0) return;
    size_t n = (size_t)1 << 20;
    uint8_t *want = malloc(n);
    for (size_t i = 0; i < n; i++) want[i] = (uint8_t)(i * 131 + (i >> 9));
    KT_CHECK(write(fd, want, n) == (ssize_t)n);
    close(fd);
    kl_mapfile mf;
    KT_CHECK_EQ_INT(kl_mapfile_open(path, &mf), KILN_OK);
    KT_CHECK(mf.size == n && memcmp(mf.data, want, n) == 0);
    kl_mapfile_release((const uint8_t *)mf.data + 1000, n - 5000); /* unaligned ends: the whole pages inside */
    KT_CHECK(memcmp(mf.data, want, n) == 0);
    kl_mapfile_release(mf.data, n);
    KT_CHECK(memcmp(mf.data, want, n) == 0);
    kl_mapfile_close(&mf);
    uint8_t *heap = malloc(n);
    memcpy(heap, want, n);
    kl_mapfile_release(heap, n);
    KT_CHECK(memcmp(heap, want, n) == 0);
    free(heap);
    free(want);
    unlink(path);
}

int main(void) {
    for (size_t i = 0; i < sizeof weights; i++) weights[i] = (uint8_t)(i * 7);
    KT_RUN(test_sha256_fips);
    KT_RUN(test_kh64_reference);
    KT_RUN(test_kh64_chunked);
    KT_RUN(test_mapfile_release);
    KT_RUN(test_hand_made_opens);
    KT_RUN(test_refusals_header);
    KT_RUN(test_refusals_sections);
    KT_RUN(test_refusals_meta);
    KT_RUN(test_writer_roundtrip);
    KT_RUN(test_alloc_failures);
    KT_RUN(test_fuzz_seeds);
    KT_RUN(test_fuzz_corpus_replay);
    return kt_summary();
}
