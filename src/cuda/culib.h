/*
 * culib.h — cuBLASLt and cuDNN, opened with dlopen() the first time the CUDA
 * provider needs them.
 *
 * Linked directly, the two libraries' static constructors cost every kiln
 * process about 0.3 s (0.77 s a run under AddressSanitizer) before main(),
 * GPU or not: `kiln check` on a one-node model took 0.43 s, nearly all of it theirs.
 * Opened on demand, a process that never touches the GPU never maps them.
 *
 * Include this after <cublasLt.h> and <cudnn.h>.  Each function kiln calls
 * is a pointer in kc_culib; the macros below send the usual names through
 * it, so call sites read as the vendors' documentation does.  Call
 * kc_culib_load() (thread-safe, once per process) before the first call.
 */
#ifndef KILN_CUDA_CULIB_H
#define KILN_CUDA_CULIB_H

#include <stddef.h>

/* The functions kiln calls; a new call site adds its function here. */
#define KC_CUBLASLT_FNS(X)                                                                                             \
    X(cublasLtCreate)                                                                                                  \
    X(cublasLtDestroy)                                                                                                 \
    X(cublasLtGetVersion)                                                                                              \
    X(cublasLtGetStatusName)                                                                                           \
    X(cublasLtMatmul)                                                                                                  \
    X(cublasLtMatmulAlgoConfigGetAttribute)                                                                            \
    X(cublasLtMatmulAlgoGetHeuristic)                                                                                  \
    X(cublasLtMatmulDescCreate)                                                                                        \
    X(cublasLtMatmulDescDestroy)                                                                                       \
    X(cublasLtMatmulDescSetAttribute)                                                                                  \
    X(cublasLtMatmulPreferenceCreate)                                                                                  \
    X(cublasLtMatmulPreferenceDestroy)                                                                                 \
    X(cublasLtMatmulPreferenceSetAttribute)                                                                            \
    X(cublasLtMatrixLayoutCreate)                                                                                      \
    X(cublasLtMatrixLayoutDestroy)                                                                                     \
    X(cublasLtMatrixLayoutSetAttribute)

#define KC_CUDNN_FNS(X)                                                                                                \
    X(cudnnCreate)                                                                                                     \
    X(cudnnDestroy)                                                                                                    \
    X(cudnnGetVersion)                                                                                                 \
    X(cudnnGetErrorString)                                                                                             \
    X(cudnnSetStream)                                                                                                  \
    X(cudnnCreateTensorDescriptor)                                                                                     \
    X(cudnnDestroyTensorDescriptor)                                                                                    \
    X(cudnnSetTensor4dDescriptor)                                                                                      \
    X(cudnnSetTensor4dDescriptorEx)                                                                                    \
    X(cudnnCreateFilterDescriptor)                                                                                     \
    X(cudnnDestroyFilterDescriptor)                                                                                    \
    X(cudnnSetFilter4dDescriptor)                                                                                      \
    X(cudnnCreateConvolutionDescriptor)                                                                                \
    X(cudnnDestroyConvolutionDescriptor)                                                                               \
    X(cudnnSetConvolution2dDescriptor)                                                                                 \
    X(cudnnGetConvolution2dForwardOutputDim)                                                                           \
    X(cudnnSetConvolutionGroupCount)                                                                                   \
    X(cudnnSetConvolutionMathType)                                                                                     \
    X(cudnnCreateActivationDescriptor)                                                                                 \
    X(cudnnDestroyActivationDescriptor)                                                                                \
    X(cudnnSetActivationDescriptor)                                                                                    \
    X(cudnnGetConvolutionForwardWorkspaceSize)                                                                         \
    X(cudnnConvolutionForward)                                                                                         \
    X(cudnnConvolutionBiasActivationForward)                                                                           \
    X(cudnnGetConvolutionBackwardDataWorkspaceSize)                                                                    \
    X(cudnnConvolutionBackwardData)

#define KC_CULIB_PTR(f) __typeof__(&f) f;
struct kc_culib {
    KC_CUBLASLT_FNS(KC_CULIB_PTR)
    KC_CUDNN_FNS(KC_CULIB_PTR)
};
#undef KC_CULIB_PTR

/* Filled by kc_culib_load(); read-only after. */
extern struct kc_culib kc_culib;

/* Opens both libraries and resolves every function, once per process.
 * Returns 0, or -1 with the reason (the file that could not be opened or
 * the symbol it lacks) in why; a failure is remembered and repeated. */
int kc_culib_load(char *why, size_t why_size);

/* The usual names, through the table (not inside culib.c, which fills it). */
#ifndef KC_CULIB_IMPL
#define KC_CULIB_CALL(f) (kc_culib.f)
#define cublasLtCreate KC_CULIB_CALL(cublasLtCreate)
#define cublasLtDestroy KC_CULIB_CALL(cublasLtDestroy)
#define cublasLtGetVersion KC_CULIB_CALL(cublasLtGetVersion)
#define cublasLtGetStatusName KC_CULIB_CALL(cublasLtGetStatusName)
#define cublasLtMatmul KC_CULIB_CALL(cublasLtMatmul)
#define cublasLtMatmulAlgoConfigGetAttribute KC_CULIB_CALL(cublasLtMatmulAlgoConfigGetAttribute)
#define cublasLtMatmulAlgoGetHeuristic KC_CULIB_CALL(cublasLtMatmulAlgoGetHeuristic)
#define cublasLtMatmulDescCreate KC_CULIB_CALL(cublasLtMatmulDescCreate)
#define cublasLtMatmulDescDestroy KC_CULIB_CALL(cublasLtMatmulDescDestroy)
#define cublasLtMatmulDescSetAttribute KC_CULIB_CALL(cublasLtMatmulDescSetAttribute)
#define cublasLtMatmulPreferenceCreate KC_CULIB_CALL(cublasLtMatmulPreferenceCreate)
#define cublasLtMatmulPreferenceDestroy KC_CULIB_CALL(cublasLtMatmulPreferenceDestroy)
#define cublasLtMatmulPreferenceSetAttribute KC_CULIB_CALL(cublasLtMatmulPreferenceSetAttribute)
#define cublasLtMatrixLayoutCreate KC_CULIB_CALL(cublasLtMatrixLayoutCreate)
#define cublasLtMatrixLayoutDestroy KC_CULIB_CALL(cublasLtMatrixLayoutDestroy)
#define cublasLtMatrixLayoutSetAttribute KC_CULIB_CALL(cublasLtMatrixLayoutSetAttribute)
#define cudnnCreate KC_CULIB_CALL(cudnnCreate)
#define cudnnDestroy KC_CULIB_CALL(cudnnDestroy)
#define cudnnGetVersion KC_CULIB_CALL(cudnnGetVersion)
#define cudnnGetErrorString KC_CULIB_CALL(cudnnGetErrorString)
#define cudnnSetStream KC_CULIB_CALL(cudnnSetStream)
#define cudnnCreateTensorDescriptor KC_CULIB_CALL(cudnnCreateTensorDescriptor)
#define cudnnDestroyTensorDescriptor KC_CULIB_CALL(cudnnDestroyTensorDescriptor)
#define cudnnSetTensor4dDescriptor KC_CULIB_CALL(cudnnSetTensor4dDescriptor)
#define cudnnSetTensor4dDescriptorEx KC_CULIB_CALL(cudnnSetTensor4dDescriptorEx)
#define cudnnCreateFilterDescriptor KC_CULIB_CALL(cudnnCreateFilterDescriptor)
#define cudnnDestroyFilterDescriptor KC_CULIB_CALL(cudnnDestroyFilterDescriptor)
#define cudnnSetFilter4dDescriptor KC_CULIB_CALL(cudnnSetFilter4dDescriptor)
#define cudnnCreateConvolutionDescriptor KC_CULIB_CALL(cudnnCreateConvolutionDescriptor)
#define cudnnDestroyConvolutionDescriptor KC_CULIB_CALL(cudnnDestroyConvolutionDescriptor)
#define cudnnSetConvolution2dDescriptor KC_CULIB_CALL(cudnnSetConvolution2dDescriptor)
#define cudnnGetConvolution2dForwardOutputDim KC_CULIB_CALL(cudnnGetConvolution2dForwardOutputDim)
#define cudnnSetConvolutionGroupCount KC_CULIB_CALL(cudnnSetConvolutionGroupCount)
#define cudnnSetConvolutionMathType KC_CULIB_CALL(cudnnSetConvolutionMathType)
#define cudnnCreateActivationDescriptor KC_CULIB_CALL(cudnnCreateActivationDescriptor)
#define cudnnDestroyActivationDescriptor KC_CULIB_CALL(cudnnDestroyActivationDescriptor)
#define cudnnSetActivationDescriptor KC_CULIB_CALL(cudnnSetActivationDescriptor)
#define cudnnGetConvolutionForwardWorkspaceSize KC_CULIB_CALL(cudnnGetConvolutionForwardWorkspaceSize)
#define cudnnConvolutionForward KC_CULIB_CALL(cudnnConvolutionForward)
#define cudnnConvolutionBiasActivationForward KC_CULIB_CALL(cudnnConvolutionBiasActivationForward)
#define cudnnGetConvolutionBackwardDataWorkspaceSize KC_CULIB_CALL(cudnnGetConvolutionBackwardDataWorkspaceSize)
#define cudnnConvolutionBackwardData KC_CULIB_CALL(cudnnConvolutionBackwardData)
#endif

#endif
