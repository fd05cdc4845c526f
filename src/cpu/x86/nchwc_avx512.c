/* nchwc_avx512.c — AVX-512 instantiation of nchwc_impl.h (blocked-layout convolutions). */
#define KL_SIMD_AVX512 1
#include "cpu/x86/simd.h"
#include "cpu/x86/nchwc_impl.h"
