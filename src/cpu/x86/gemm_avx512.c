/* gemm_avx512.c — AVX-512 instantiation of gemm_impl.h (6x16..6x64 SGEMM
 * kernels, vector activations, FMA peak loop).  Compiled with AVX-512 F/BW/DQ/VL. */
#define KL_SIMD_AVX512 1
#include "cpu/x86/gemm_impl.h"
