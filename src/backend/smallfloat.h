/*
 * smallfloat.h — the 8-bit and 4-bit float formats of ONNX (float8e4m3fn,
 * float8e4m3fnuz, float8e5m2, float8e5m2fnuz, float8e8m0, float4e2m1):
 * decoding to float and encoding with round-to-nearest-even.
 */
#ifndef KL_SMALLFLOAT_H
#define KL_SMALLFLOAT_H

#include "core/core.h"

/* Value of code `c` of format `t` (NaN codes give NaN, E5M2 inf codes inf). */
float kl_small_to_f32(kiln_dtype t, uint8_t c);
/* Nearest code (ties to even) for f.  saturate: out-of-range values and
 * infinities clamp to the largest finite value (ONNX Cast saturate=1);
 * otherwise they become inf (E5M2) or NaN (formats without inf). */
uint8_t kl_f32_to_small(kiln_dtype t, float f, bool saturate);

#endif
