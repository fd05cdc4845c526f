/*
 * The op-schema registry: the family tables of ops.h joined (append a table
 * to kl_op_tables to register it), looked up through a hash index on
 * (domain, op) that is built once, on first use, under pthread_once.  The
 * index is static storage (no allocation, nothing to free); rows of one key
 * stay in table order, so the first row whose opset range fits wins, as a
 * scan of the tables in order would answer.
 */
#include <pthread.h>
#include <string.h>

#include "ops/ops.h"
#include "ops/kiln.h" /* kl_ops_kiln: the passes' fused ops */
#include "ops/kiln_transformer.h" /* kl_ops_kiln_transformer */

static const kl_op_schema *const kl_op_tables[] = {
    kl_ops_elementwise, kl_ops_reduce, kl_ops_norm,    kl_ops_nn,
    kl_ops_tensor,      kl_ops_quant,  kl_ops_control, kl_ops_misc,
    kl_ops_kiln, kl_ops_kiln_transformer,
};

/* Index capacity: rows and hash slots (a power of two).  A registry that
 * outgrows it is still answered, by the linear scan (kl_op_index.full). */
#define KL_OP_INDEX_ROWS 4096
#define KL_OP_INDEX_SLOTS 4096

static struct {
    const kl_op_schema *rows[KL_OP_INDEX_ROWS]; /* every row, in table order */
    uint32_t hash[KL_OP_INDEX_ROWS];
    uint16_t next[KL_OP_INDEX_ROWS];  /* 1-based chain link, 0 ends */
    uint16_t head[KL_OP_INDEX_SLOTS]; /* 1-based first row of the slot, 0 empty */
    size_t n;
    bool full; /* more rows than KL_OP_INDEX_ROWS: lookups scan */
} kl_op_index;
static pthread_once_t kl_op_index_once = PTHREAD_ONCE_INIT;

/* FNV-1a of domain, a 0x1f separator and op ("" for a NULL domain). */
static uint32_t kl_op_hash(const char *domain, const char *op) {
    uint32_t h = 2166136261u;
    for (const char *p = domain ? domain : ""; *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
    h = (h ^ 0x1fu) * 16777619u;
    for (const char *p = op; *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

/* Fill kl_op_index from kl_op_tables (run once). */
static void kl_op_index_build(void) {
    size_t n = 0;
    for (size_t t = 0; t < KL_ARRAY_LEN(kl_op_tables); t++)
        for (const kl_op_schema *s = kl_op_tables[t]; s->name; s++) {
            if (n == KL_OP_INDEX_ROWS) {
                kl_op_index.full = true;
                return;
            }
            kl_op_index.rows[n] = s;
            kl_op_index.hash[n++] = kl_op_hash(s->domain, s->name);
        }
    kl_op_index.n = n;
    /* Push from the last row to the first, so each chain is in table order. */
    for (size_t i = n; i-- > 0;) {
        uint32_t slot = kl_op_index.hash[i] & (KL_OP_INDEX_SLOTS - 1);
        kl_op_index.next[i] = kl_op_index.head[slot];
        kl_op_index.head[slot] = (uint16_t)(i + 1);
    }
}

/* The index, built on first use (thread-safe). */
static void kl_op_index_ready(void) { pthread_once(&kl_op_index_once, kl_op_index_build); }

/* Whether row s describes (domain, name): the caller has matched the hash. */
static bool kl_op_row_is(const kl_op_schema *s, const char *domain, const char *name) {
    return strcmp(s->name, name) == 0 && strcmp(s->domain ? s->domain : "", domain) == 0;
}

/* kl_op_find by scanning every table: only when the index is full. */
static const kl_op_schema *kl_op_scan(const char *domain, const char *name, int64_t opset, bool *other) {
    for (size_t t = 0; t < KL_ARRAY_LEN(kl_op_tables); t++)
        for (const kl_op_schema *s = kl_op_tables[t]; s->name; s++) {
            if (!kl_op_row_is(s, domain, name)) continue;
            if (s->since <= opset && (s->until == 0 || opset <= s->until)) return s;
            *other = true;
        }
    return NULL;
}

const kl_op_schema *kl_op_find(const char *domain, const char *name, int64_t opset,
                               bool *other_versions) {
    bool other = false;
    if (!domain) domain = "";
    if (other_versions) *other_versions = false;
    if (!name) return NULL;
    kl_op_index_ready();
    if (kl_op_index.full) {
        const kl_op_schema *s = kl_op_scan(domain, name, opset, &other);
        if (!s && other_versions) *other_versions = other;
        return s;
    }
    uint32_t h = kl_op_hash(domain, name);
    for (uint16_t i = kl_op_index.head[h & (KL_OP_INDEX_SLOTS - 1)]; i; i = kl_op_index.next[i - 1]) {
        const kl_op_schema *s = kl_op_index.rows[i - 1];
        if (kl_op_index.hash[i - 1] != h || !kl_op_row_is(s, domain, name)) continue;
        if (s->since <= opset && (s->until == 0 || opset <= s->until)) return s;
        other = true;
    }
    if (other_versions) *other_versions = other;
    return NULL;
}

size_t kl_op_count(void) {
    kl_op_index_ready();
    if (!kl_op_index.full) return kl_op_index.n;
    size_t n = 0;
    for (size_t t = 0; t < KL_ARRAY_LEN(kl_op_tables); t++)
        for (const kl_op_schema *s = kl_op_tables[t]; s->name; s++) n++;
    return n;
}

const kl_op_schema *kl_op_at(size_t i) {
    kl_op_index_ready();
    if (!kl_op_index.full) return i < kl_op_index.n ? kl_op_index.rows[i] : NULL;
    for (size_t t = 0; t < KL_ARRAY_LEN(kl_op_tables); t++)
        for (const kl_op_schema *s = kl_op_tables[t]; s->name; s++)
            if (i-- == 0) return s;
    return NULL;
}
