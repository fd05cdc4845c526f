/* nchwc_avx2.c — AVX2+FMA instantiation of nchwc_impl.h (blocked-layout convolutions). */
#define KL_SIMD_AVX2 1
#include "cpu/x86/simd.h"
#include "cpu/x86/nchwc_impl.h"
