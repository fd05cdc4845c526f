/* gemm_avx2.c — AVX2+FMA instantiation of gemm_impl.h (6x16 SGEMM kernel,
 * vector activations, FMA peak loop).  Compiled with -mavx2 -mfma -mf16c. */
#define KL_SIMD_AVX2 1
#include "cpu/x86/gemm_impl.h"
