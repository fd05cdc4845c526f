/* conv_avx512.c — AVX-512 instantiation of conv_impl.h (depthwise kernel). */
#define KL_SIMD_AVX512 1
#include "cpu/x86/conv_impl.h"
