/*
 * harness.h — a tiny C test runner.  A test file defines test functions,
 * lists them in main() with KT_RUN, and returns kt_summary().
 *
 *   static void test_varint(void) { KT_CHECK(x == 3); KT_CHECK_EQ_INT(a, b); }
 *   int main(void) { KT_RUN(test_varint); return kt_summary(); }
 */
#ifndef KT_HARNESS_H
#define KT_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

extern int kt_failures;
extern int kt_checks;
extern const char *kt_current;

#define KT_CHECK(cond)                                                              \
    do {                                                                            \
        kt_checks++;                                                                \
        if (!(cond)) {                                                              \
            kt_failures++;                                                          \
            fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__,    \
                    kt_current, #cond);                                             \
        }                                                                           \
    } while (0)

#define KT_CHECK_EQ_INT(a, b)                                                       \
    do {                                                                            \
        long long kt_a_ = (long long)(a), kt_b_ = (long long)(b);                   \
        kt_checks++;                                                                \
        if (kt_a_ != kt_b_) {                                                       \
            kt_failures++;                                                          \
            fprintf(stderr, "%s:%d: %s: %s == %lld, expected %s == %lld\n",         \
                    __FILE__, __LINE__, kt_current, #a, kt_a_, #b, kt_b_);          \
        }                                                                           \
    } while (0)

#define KT_CHECK_STR(a, b)                                                          \
    do {                                                                            \
        const char *kt_a_ = (a), *kt_b_ = (b);                                      \
        kt_checks++;                                                                \
        if (!kt_a_ || !kt_b_ || strcmp(kt_a_, kt_b_) != 0) {                        \
            kt_failures++;                                                          \
            fprintf(stderr, "%s:%d: %s: %s is \"%s\", expected \"%s\"\n", __FILE__, \
                    __LINE__, kt_current, #a, kt_a_ ? kt_a_ : "(null)",             \
                    kt_b_ ? kt_b_ : "(null)");                                      \
        }                                                                           \
    } while (0)

/* Check that `haystack` contains `needle` (error messages). */
#define KT_CHECK_CONTAINS(haystack, needle)                                         \
    do {                                                                            \
        const char *kt_h_ = (haystack), *kt_n_ = (needle);                          \
        kt_checks++;                                                                \
        if (!kt_h_ || !strstr(kt_h_, kt_n_)) {                                      \
            kt_failures++;                                                          \
            fprintf(stderr, "%s:%d: %s: \"%s\" does not contain \"%s\"\n",          \
                    __FILE__, __LINE__, kt_current, kt_h_ ? kt_h_ : "(null)", kt_n_); \
        }                                                                           \
    } while (0)

#define KT_RUN(fn)                                 \
    do {                                           \
        kt_current = #fn;                          \
        int kt_before_ = kt_failures;              \
        fn();                                      \
        fprintf(stderr, "%s %s\n",                 \
                kt_failures == kt_before_ ? "ok  " : "FAIL", #fn); \
    } while (0)

/* Prints the totals; returns the process exit code. */
int kt_summary(void);

#endif
