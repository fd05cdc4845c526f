/* vecops_avx2.c — AVX2+FMA instantiation of vecops_impl.h (elementwise steps,
 * norms, softmax).  Compiled with -mavx2 -mfma -mf16c. */
#define KL_SIMD_AVX2 1
#include "cpu/x86/vecops_impl.h"

KL_VEC_KERNELS_TABLE(kl_vec_kernels_avx2)
