/* conv_avx2.c — AVX2 instantiation of conv_impl.h (depthwise kernel). */
#define KL_SIMD_AVX2 1
#include "cpu/x86/conv_impl.h"
