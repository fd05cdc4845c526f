/* vecops_avx512.c — AVX-512 instantiation of vecops_impl.h (elementwise
 * steps, norms, softmax).  Compiled with AVX-512 F/BW/DQ/VL. */
#define KL_SIMD_AVX512 1
#include "cpu/x86/vecops_impl.h"

KL_VEC_KERNELS_TABLE(kl_vec_kernels_avx512)
