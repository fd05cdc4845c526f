/* attn_avx2.c — AVX2 instantiation of attn_impl.h (fused attention tile). */
#define KL_SIMD_AVX2 1
#include "cpu/x86/attn_impl.h"
