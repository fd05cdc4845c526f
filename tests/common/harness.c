#include "harness.h"

int kt_failures = 0;
int kt_checks = 0;
const char *kt_current = "";

int kt_summary(void) {
    fprintf(stderr, "%d checks, %d failed\n", kt_checks, kt_failures);
    return kt_failures ? 1 : 0;
}
