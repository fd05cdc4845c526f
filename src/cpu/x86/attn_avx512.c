/* attn_avx512.c — AVX-512 instantiation of attn_impl.h (fused attention tile). */
#define KL_SIMD_AVX512 1
#include "cpu/x86/attn_impl.h"
