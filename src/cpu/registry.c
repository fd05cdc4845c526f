/*
 * The CPU kernel registry: the reference family tables (append a table to
 * kl_ref_tables to register it), looked up through a hash index on
 * (domain, op) built once, on first use, under pthread_once.  The index is
 * static storage; rows of one key stay in table order, so every answer is
 * the one a scan of the tables in order would give.
 */
#include <pthread.h>
#include <string.h>

#include "cpu/ref/tables.h"

static const kl_kernel_def *const kl_ref_tables[] = {
    kl_ref_elementwise, kl_ref_reduce, kl_ref_norm, kl_ref_nn,
    kl_ref_tensor, kl_ref_quant, kl_ref_control, kl_ref_misc, kl_ref_rnn,
    kl_ref_fused, kl_ref_fused_transformer,
};

/* Index capacity: rows and hash slots (a power of two).  A registry that
 * outgrows it is still answered, by the linear scan (kl_kernel_index.full). */
#define KL_KERNEL_INDEX_ROWS 4096
#define KL_KERNEL_INDEX_SLOTS 4096

static struct {
    const kl_kernel_def *rows[KL_KERNEL_INDEX_ROWS]; /* every row, in table order */
    uint32_t hash[KL_KERNEL_INDEX_ROWS];
    uint16_t next[KL_KERNEL_INDEX_ROWS];  /* 1-based chain link, 0 ends */
    uint16_t head[KL_KERNEL_INDEX_SLOTS]; /* 1-based first row of the slot, 0 empty */
    bool full; /* more rows than KL_KERNEL_INDEX_ROWS: lookups scan */
} kl_kernel_index;
static pthread_once_t kl_kernel_index_once = PTHREAD_ONCE_INIT;

/* FNV-1a of domain, a 0x1f separator and op. */
static uint32_t kl_kernel_hash(const char *domain, const char *op) {
    uint32_t h = 2166136261u;
    for (const char *p = domain; *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
    h = (h ^ 0x1fu) * 16777619u;
    for (const char *p = op; *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

/* Fill kl_kernel_index from kl_ref_tables (run once). */
static void kl_kernel_index_build(void) {
    size_t n = 0;
    for (size_t t = 0; t < KL_ARRAY_LEN(kl_ref_tables); t++)
        for (const kl_kernel_def *k = kl_ref_tables[t]; k->op; k++) {
            if (n == KL_KERNEL_INDEX_ROWS) {
                kl_kernel_index.full = true;
                return;
            }
            kl_kernel_index.rows[n] = k;
            kl_kernel_index.hash[n++] = kl_kernel_hash(k->domain, k->op);
        }
    /* Push from the last row to the first, so each chain is in table order. */
    for (size_t i = n; i-- > 0;) {
        uint32_t slot = kl_kernel_index.hash[i] & (KL_KERNEL_INDEX_SLOTS - 1);
        kl_kernel_index.next[i] = kl_kernel_index.head[slot];
        kl_kernel_index.head[slot] = (uint16_t)(i + 1);
    }
}

/* Whether row k serves (domain, op) at opset. */
static bool kl_kernel_matches(const kl_kernel_def *k, const char *domain, const char *op, int64_t opset) {
    return strcmp(k->op, op) == 0 && strcmp(k->domain, domain) == 0 && opset >= k->since &&
           (k->until == 0 || opset <= k->until);
}

/* The rows of (domain, op, opset) in table order, one per call: start with
 * *cursor = 0; NULL after the last.  Builds the index on first use. */
static const kl_kernel_def *kl_kernel_row(const char *domain, const char *op, int64_t opset, size_t *cursor) {
    pthread_once(&kl_kernel_index_once, kl_kernel_index_build);
    if (kl_kernel_index.full) {
        /* Linear: the cursor counts rows across all tables. */
        size_t i = 0;
        for (size_t t = 0; t < KL_ARRAY_LEN(kl_ref_tables); t++)
            for (const kl_kernel_def *k = kl_ref_tables[t]; k->op; k++, i++)
                if (i >= *cursor && kl_kernel_matches(k, domain, op, opset)) {
                    *cursor = i + 1;
                    return k;
                }
        *cursor = SIZE_MAX;
        return NULL;
    }
    uint32_t h = kl_kernel_hash(domain, op);
    size_t i = *cursor ? *cursor : kl_kernel_index.head[h & (KL_KERNEL_INDEX_SLOTS - 1)];
    for (; i && i != SIZE_MAX; i = kl_kernel_index.next[i - 1]) {
        const kl_kernel_def *k = kl_kernel_index.rows[i - 1];
        if (kl_kernel_index.hash[i - 1] != h || !kl_kernel_matches(k, domain, op, opset)) continue;
        *cursor = kl_kernel_index.next[i - 1] ? kl_kernel_index.next[i - 1] : SIZE_MAX;
        return k;
    }
    *cursor = SIZE_MAX;
    return NULL;
}

const kl_kernel_def *kl_kernel_find(const kl_node *n, kiln_dtype t0) {
    const kl_kernel_def *any = NULL;
    size_t cur = 0;
    for (const kl_kernel_def *k; (k = kl_kernel_row(n->domain, n->op_type, n->opset, &cur));) {
        if (!k->types || t0 == KILN_DTYPE_UNDEFINED || (k->types & (1ull << t0))) return k;
        if (!any) any = k;
    }
    /* The input type is not known yet (or no row lists it): let the run
     * path check again with the real type. */
    return t0 == KILN_DTYPE_UNDEFINED ? any : NULL;
}

bool kl_kernel_exists(const char *domain, const char *op, int64_t opset) {
    size_t cur = 0;
    return kl_kernel_row(domain, op, opset, &cur) != NULL;
}
