/*
 * fuzz_load.c — libFuzzer target: parse any bytes as an ONNX model, check it
 * on success, free everything.  A crash, sanitizer report or leak is a bug;
 * a parse error is the expected answer to most inputs.
 */
#include "onnx/onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input: kl_onnx_parse (no base folder, so external data is refused),
 * kl_check_model when it loads, then release both. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    kl_model *m = NULL;
    if (kl_onnx_parse(data, size, "fuzz", NULL, &m) == KILN_OK) {
        kl_check_result *r = NULL;
        if (kl_check_model(m, &r) == KILN_OK)
            kl_check_free(r);
        kl_model_free(m);
    }
    kl_error_clear();
    return 0;
}
