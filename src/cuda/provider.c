/* The cuda provider: which nodes run on an NVIDIA GPU (the executor in
 * exec.c runs them), whether a usable GPU is present, and its tactics. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "backend/provider.h"
#include "cuda/cuda.h"
#include "cuda/dnn.h"
#include "ops/kiln_transformer.h"

static pthread_once_t kl_cuda_once = PTHREAD_ONCE_INIT;
static bool kl_cuda_ok;
static char kl_cuda_reason[600];
static char kl_cuda_desc[512];
static char kl_cuda_key[128];

static void kl_cuda_probe(void) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        snprintf(kl_cuda_reason, sizeof kl_cuda_reason, "no usable NVIDIA GPU: %s (cudaGetDeviceCount: %s)",
                 e == cudaErrorInsufficientDriver ? "no NVIDIA driver, or one older than this CUDA runtime needs"
                 : e == cudaErrorNoDevice         ? "no NVIDIA device"
                                                  : cudaGetErrorString(e),
                 cudaGetErrorName(e));
        cudaGetLastError();
        return;
    }
    if (n == 0) {
        snprintf(kl_cuda_reason, sizeof kl_cuda_reason, "no NVIDIA GPU found (cudaGetDeviceCount: 0)");
        return;
    }
    struct cudaDeviceProp p;
    if ((e = cudaGetDeviceProperties(&p, 0)) != cudaSuccess) {
        snprintf(kl_cuda_reason, sizeof kl_cuda_reason, "cudaGetDeviceProperties: %s", cudaGetErrorString(e));
        return;
    }
    if (p.major < 8) {
        snprintf(kl_cuda_reason, sizeof kl_cuda_reason,
                 "GPU '%.120s' is sm_%d%d; this kiln is built for sm_80 and newer", p.name, p.major, p.minor);
        return;
    }
    char libwhy[400];
    if (kc_dnn_libraries(libwhy, sizeof libwhy)) {
        snprintf(kl_cuda_reason, sizeof kl_cuda_reason, "GPU '%.120s' found, but %.380s", p.name, libwhy);
        return;
    }
    int rt = 0, drv = 0;
    cudaRuntimeGetVersion(&rt);
    cudaDriverGetVersion(&drv);
    char lib[128];
    kc_dnn_versions(lib, sizeof lib);
    snprintf(kl_cuda_desc, sizeof kl_cuda_desc, "%.200s (sm_%d%d, %d SMs, %.1f GiB), CUDA runtime %d.%d, driver %d.%d, %.120s",
             p.name, p.major, p.minor, p.multiProcessorCount, (double)p.totalGlobalMem / (1024.0 * 1024 * 1024),
             rt / 1000, (rt % 1000) / 10, drv / 1000, (drv % 1000) / 10, lib);
    snprintf(kl_cuda_key, sizeof kl_cuda_key, "sm_%d%d/cuda%d/cudnn%zu/cublasLt%zu", p.major, p.minor, rt,
             kc_dnn_cudnn_version(), kc_dnn_cublaslt_version());
    kl_cuda_ok = true;
}

void kl_cuda_describe(char *buf, size_t size) {
    pthread_once(&kl_cuda_once, kl_cuda_probe);
    snprintf(buf, size, "%s", kl_cuda_ok ? kl_cuda_desc : kl_cuda_reason);
}

void kl_cuda_device_key(char *buf, size_t size) {
    pthread_once(&kl_cuda_once, kl_cuda_probe);
    snprintf(buf, size, "%s", kl_cuda_ok ? kl_cuda_key : "none");
}

int kl_cuda_gemm_candidates(void) { return kc_gemm_candidates(); }

static bool cuda_usable(const char **reason) {
    pthread_once(&kl_cuda_once, kl_cuda_probe);
    if (!kl_cuda_ok && reason) *reason = kl_cuda_reason;
    return kl_cuda_ok;
}

/* ---- what runs on the GPU -------------------------------------------------------------- */

static bool kl_is_float(const kl_value *v) {
    return v && v->type.kind == KL_TYPE_TENSOR &&
           (v->type.elem == KILN_DTYPE_FLOAT || v->type.elem == KILN_DTYPE_FLOAT16);
}

static bool kl_no(char *why, size_t size, const kl_node *n, const char *what) {
    if (why && size)
        snprintf(why, size, "no cuda kernel for %s%s%s-%lld: %s", n->domain, n->domain[0] ? "." : "", n->op_type,
                 (long long)n->opset, what);
    return false;
}

static bool kl_in_op(const char *op, const char *const *list) {
    for (size_t i = 0; list[i]; i++)
        if (strcmp(op, list[i]) == 0) return true;
    return false;
}

bool kl_cuda_node_supported(const kl_node *n, char *why, size_t why_size) {
    static const char *const float_ops[] = {
        "Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Pow", "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Erf",
        "Sqrt", "Neg", "Abs", "Reciprocal", "LeakyRelu", "Softplus", "Clip", "HardSigmoid", "HardSwish", "Gelu",
        "Mish", "Softmax", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceSum",
        "ReduceMax", "ReduceMin", "ReduceSumSquare", "ReduceL2", "Resize", "Pad", "Einsum", NULL};
    static const char *const any_ops[] = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Transpose",
                                          "Slice", "Concat", "Split", "Expand", "Gather", "Dropout", NULL};
    static const char *const kiln_ops[] = {"FusedConv", "FusedGemm", "FusedMatMul", "LayerNorm", "RMSNorm",
                                           "Attention", "FusedElementwise", NULL};
    const kl_value *x = n->n_inputs ? n->inputs[0] : NULL;
    if (strcmp(n->domain, KL_KILN_DOMAIN) == 0) {
        if (!kl_in_op(n->op_type, kiln_ops)) return kl_no(why, why_size, n, "not implemented");
        if (!kl_is_float(x)) return kl_no(why, why_size, n, "input is not float32/float16");
    } else if (n->domain[0]) {
        return kl_no(why, why_size, n, "unknown domain");
    } else if (kl_in_op(n->op_type, float_ops)) {
        if (!kl_is_float(x)) return kl_no(why, why_size, n, "input is not float32/float16");
        for (size_t k = 1; k < n->n_outputs; k++)
            if (n->outputs[k]) /* used by a node or a graph output */
                return kl_no(why, why_size, n, "a second output is wanted (e.g. MaxPool indices)");
    } else if (strcmp(n->op_type, "TopK") == 0) { /* values and int64 indices: kc_topk */
        /* first run on a GPU in the seventeenth session (test_cuda_kernels, the node tests);
         * KILN_CUDA_TOPK=0 leaves it on the host */
        const char *on = getenv("KILN_CUDA_TOPK");
        if (on && !strcmp(on, "0")) return kl_no(why, why_size, n, "turned off (KILN_CUDA_TOPK=0)");
        if (!kl_is_float(x)) return kl_no(why, why_size, n, "input is not float32/float16");
    } else if (kl_in_op(n->op_type, any_ops)) {
        if (!x || x->type.kind != KL_TYPE_TENSOR || x->type.elem == KILN_DTYPE_STRING ||
            x->type.elem == KILN_DTYPE_UNDEFINED || kiln_dtype_bits(x->type.elem) < 8)
            return kl_no(why, why_size, n, "needs a numeric tensor of whole bytes");
        if (strcmp(n->op_type, "Dropout") == 0 && n->n_outputs > 1 && n->outputs[1])
            return kl_no(why, why_size, n, "the mask output is used");
    } else {
        return kl_no(why, why_size, n, "not implemented");
    }
    /* Convolutions and pools: 2-D only. */
    bool conv = strcmp(n->op_type, "Conv") == 0 || strcmp(n->op_type, "FusedConv") == 0 ||
                strcmp(n->op_type, "ConvTranspose") == 0;
    bool pool = strcmp(n->op_type, "MaxPool") == 0 || strcmp(n->op_type, "AveragePool") == 0;
    if ((conv || pool) && x->type.shape.rank >= 0 && x->type.shape.rank != 4)
        return kl_no(why, why_size, n, "only 2-D (NCHW) is implemented");
    if (conv && (n->n_inputs < 2 || !n->inputs[1] || !(n->inputs[1]->flags & KL_VALUE_INITIALIZER)))
        return kl_no(why, why_size, n, "weights are not a constant");
    if (strcmp(n->op_type, "Pad") == 0 && strcmp(kl_node_attr_string(n, "mode", "constant"), "constant") != 0)
        return kl_no(why, why_size, n, "only mode 'constant' is implemented");
    if (strcmp(n->op_type, "Resize") == 0) {
        const char *mode = kl_node_attr_string(n, "mode", "nearest");
        if (strcmp(mode, "nearest") != 0 && strcmp(mode, "linear") != 0)
            return kl_no(why, why_size, n, "only modes nearest and linear are implemented");
        if (kl_node_attr_int(n, "antialias", 0) || kl_node_attr_int(n, "exclude_outside", 0))
            return kl_no(why, why_size, n, "antialias/exclude_outside are not implemented");
    }
    return true;
}

static bool cuda_supports(const kl_node *n, char *why, size_t why_size) {
    return kl_cuda_node_supported(n, why, why_size);
}

/* The executor picks the library algorithm per shape set at plan time
 * (timed); the tactic names what family runs the layer. */
static const kl_tactic cuda_cudnn = {.name = "cudnn", .quality = 1, .flags = KL_TACTIC_WRITES_ALL};
static const kl_tactic cuda_lt = {.name = "cublaslt", .quality = 1, .flags = KL_TACTIC_WRITES_ALL};
static const kl_tactic cuda_kernel = {.name = "kernel", .quality = 1, .flags = KL_TACTIC_WRITES_ALL};

static const kl_tactic *cuda_tactic_of(const kl_node *n) {
    if (strcmp(n->op_type, "Conv") == 0 || strcmp(n->op_type, "FusedConv") == 0 ||
        strcmp(n->op_type, "ConvTranspose") == 0)
        return &cuda_cudnn;
    if (strcmp(n->op_type, "Gemm") == 0 || strcmp(n->op_type, "FusedGemm") == 0 || strcmp(n->op_type, "MatMul") == 0 ||
        strcmp(n->op_type, "FusedMatMul") == 0 || strcmp(n->op_type, "Attention") == 0)
        return &cuda_lt;
    return &cuda_kernel;
}

static size_t cuda_tactics(const kl_node *n, const kl_tactic **out, size_t max) {
    if (!max || !kl_cuda_node_supported(n, NULL, 0)) return 0;
    out[0] = cuda_tactic_of(n);
    return 1;
}

static const kl_tactic *cuda_tactic_find(const kl_node *n, const char *name) {
    if (!kl_cuda_node_supported(n, NULL, 0)) return NULL;
    const kl_tactic *t = cuda_tactic_of(n);
    return strcmp(t->name, name) == 0 ? t : NULL;
}

const kl_provider kl_cuda_provider = {
    .api_version = KL_PROVIDER_API_VERSION,
    .name = "cuda",
    .usable = cuda_usable,
    .supports = cuda_supports,
    .tactics = cuda_tactics,
    .tactic_find = cuda_tactic_find,
    .host_memory = false,
};
