/* The cuda provider's host side, on any machine: which nodes it claims
 * (ONNX conformance models), what it says when no GPU is present, and that
 * a build asking for it either gets cuda layers (GPU) or a clear refusal. */
#include <stdlib.h>
#include <string.h>

#include "backend/provider.h"
#include "cuda/cuda.h"
#include "harness.h"
#include "onnx/onnx.h"

static char g_root[4096];

/* Is node 0 of conformance test `name` claimed by the cuda provider? */
static int claims(const char *name, char *why, size_t size) {
    char path[4300];
    snprintf(path, sizeof path, "%s/%s/model.onnx", g_root, name);
    kl_model *m = NULL;
    if (kl_onnx_load_file(path, &m) != KILN_OK) {
        fprintf(stderr, "    cannot load %s: %s\n", path, kiln_last_error());
        return -1;
    }
    why[0] = 0;
    int r = m->graph->n_nodes ? kl_cuda_node_supported(m->graph->nodes[0], why, size) : -1;
    kl_model_free(m);
    return r;
}

static void test_claims(void) {
    char why[256];
    /* The suite's Conv weights are graph inputs: cuDNN needs them constant. */
    KT_CHECK_EQ_INT(claims("test_conv_with_strides_padding", why, sizeof why), 0);
    KT_CHECK_CONTAINS(why, "weights are not a constant");
    KT_CHECK_EQ_INT(claims("test_gemm_default_no_bias", why, sizeof why), 1);
    KT_CHECK_EQ_INT(claims("test_softmax_axis_1", why, sizeof why), 1);
    KT_CHECK_EQ_INT(claims("test_layer_normalization_2d_axis0", why, sizeof why), 0); /* ONNX LayerNormalization: the passes make kiln.LayerNorm */
    KT_CHECK_EQ_INT(claims("test_maxpool_2d_default", why, sizeof why), 1);
    /* MaxPool's indices output is wanted: stays on the CPU, and says why. */
    KT_CHECK_EQ_INT(claims("test_maxpool_with_argmax_2d_precomputed_pads", why, sizeof why), 0);
    KT_CHECK_CONTAINS(why, "second output");
    /* Cubic resize and 3-D convolution are not implemented on the GPU. */
    KT_CHECK_EQ_INT(claims("test_resize_upsample_scales_cubic", why, sizeof why), 0);
    KT_CHECK_CONTAINS(why, "Resize");
    KT_CHECK_EQ_INT(claims("test_add_bcast", why, sizeof why), 1);
    /* Einsum is claimed for float32/float16 (SAM's relative positions; an
     * ellipsis or a diagonal falls back at plan time); the suite's are float64. */
    KT_CHECK_EQ_INT(claims("test_einsum_batch_matmul", why, sizeof why), 0);
    KT_CHECK_CONTAINS(why, "Einsum");
    KT_CHECK_CONTAINS(why, "not float32/float16");
    KT_CHECK_EQ_INT(claims("test_transpose_default", why, sizeof why), 1);
    KT_CHECK_EQ_INT(claims("test_nonzero_example", why, sizeof why), 0);
    KT_CHECK_CONTAINS(why, "no cuda kernel for NonZero");
}

static void test_availability(void) {
    size_t n = 0;
    KT_CHECK(kiln_providers_available(&n) == KILN_OK && n >= 2);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL, *reason = NULL;
        int usable = -1;
        KT_CHECK(kiln_provider_info(i, &name, &usable, &reason) == KILN_OK);
        if (strcmp(name, "cuda") != 0) continue;
        found = 1;
        char desc[512];
        kl_cuda_describe(desc, sizeof desc);
        printf("    cuda: %s (%s)\n", usable ? "usable" : "not usable", usable ? desc : reason);
        if (!usable) {
            KT_CHECK(reason && strlen(reason) > 10); /* says why */
            KT_CHECK(strstr(reason, "GPU") != NULL || strstr(reason, "cuda") != NULL);
            /* Asking for it explicitly is refused with that reason. */
            kiln_build_options *o = NULL;
            KT_CHECK(kiln_build_options_create(&o) == KILN_OK);
            KT_CHECK(kiln_build_options_append_provider(o, "cuda") != KILN_OK);
            KT_CHECK_CONTAINS(kiln_last_error(), "cannot run on this machine");
            kiln_build_options_destroy(o);
        }
    }
    KT_CHECK(found);
}

int main(void) {
    const char *shared = getenv("KILN_SHARED_DIR");
    snprintf(g_root, sizeof g_root, "%s/onnx-backend-tests/node", shared ? shared : "../shared");
    KT_RUN(test_claims);
    KT_RUN(test_availability);
    return kt_summary();
}
