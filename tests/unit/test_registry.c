/*
 * test_registry.c — the hash-indexed op-schema registry answers as a scan of
 * its rows in order would: for every row and opsets around its range,
 * kl_op_find returns the first row (in kl_op_at order) whose name, domain
 * and opset range fit, and sets other_versions exactly when only other
 * versions exist.  Also from 8 threads at once on a fresh process (the
 * index is built under pthread_once on first use).
 */
#include <pthread.h>
#include <string.h>

#include "harness.h"
#include "ops/ops.h"

/* The scan: first row for (domain, name, opset), and whether any row of
 * that name and domain exists. */
static const kl_op_schema *scan(const char *domain, const char *name, int64_t opset, bool *other) {
    *other = false;
    for (size_t i = 0; i < kl_op_count(); i++) {
        const kl_op_schema *s = kl_op_at(i);
        if (strcmp(s->name, name) != 0 || strcmp(s->domain ? s->domain : "", domain) != 0) continue;
        if (s->since <= opset && (s->until == 0 || opset <= s->until)) {
            *other = false;
            return s;
        }
        *other = true;
    }
    return NULL;
}

/* Compare kl_op_find with the scan on every row's range ends and
 * neighbours; returns the number of disagreements. */
static size_t compare_all(void) {
    size_t bad = 0, n = kl_op_count();
    for (size_t i = 0; i < n; i++) {
        const kl_op_schema *s = kl_op_at(i);
        const char *dom = s->domain ? s->domain : "";
        int64_t probes[5] = {s->since - 1, s->since, s->since + 1, s->until ? s->until : 30, s->until ? s->until + 1 : 99};
        for (int k = 0; k < 5; k++) {
            bool o1 = false, o2 = false;
            const kl_op_schema *a = kl_op_find(dom, s->name, probes[k], &o1), *b = scan(dom, s->name, probes[k], &o2);
            if (a != b || o1 != o2) bad++;
        }
    }
    /* Names and domains that do not exist. */
    bool other = true;
    bad += kl_op_find("", "NoSuchOp", 17, &other) != NULL || other;
    bad += kl_op_find("com.example", "Relu", 17, &other) != NULL || other;
    bad += kl_op_find(NULL, "Relu", 14, NULL) != kl_op_find("", "Relu", 14, NULL);
    bad += kl_op_find("", NULL, 14, NULL) != NULL;
    return bad;
}

static size_t g_thread_bad[8];

static void *worker(void *arg) {
    size_t *bad = arg;
    *bad = compare_all();
    return NULL;
}

/* First use from 8 threads at once. */
static void test_concurrent_first_use(void) {
    pthread_t th[8];
    for (int i = 0; i < 8; i++) KT_CHECK_EQ_INT(pthread_create(&th[i], NULL, worker, &g_thread_bad[i]), 0);
    for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 8; i++) KT_CHECK_EQ_INT(g_thread_bad[i], 0);
}

static void test_matches_scan(void) {
    size_t n = kl_op_count();
    KT_CHECK(n > 300);
    KT_CHECK_EQ_INT(compare_all(), 0);
    KT_CHECK(kl_op_at(n) == NULL);
    /* Known rows: versioned lookups pick the row covering the opset. */
    KT_CHECK(kl_op_find("", "Reshape", 25, NULL) && kl_op_find("", "Reshape", 25, NULL)->since == 14);
    fprintf(stderr, "    %zu schema rows, 5 opsets each\n", n);
}

int main(void) {
    KT_RUN(test_concurrent_first_use);
    KT_RUN(test_matches_scan);
    return kt_summary();
}
