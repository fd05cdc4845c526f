/*
 * smallfloat.h — the one encoder and decoder of ONNX's narrow float formats
 * (float16, bfloat16, float8e4m3fn, float8e4m3fnuz, float8e5m2,
 * float8e5m2fnuz, float8e8m0, float4e2m1), shared by Cast, QuantizeLinear
 * and the generic element setters.  Rounding and saturation are explicit
 * parameters; the rules are the ONNX ones (Cast's saturate and round_mode,
 * checked against the ONNX test data).
 */
#ifndef KL_SMALLFLOAT_H
#define KL_SMALLFLOAT_H

#include "core/core.h"

/* Rounding of float8e8m0 (a power of two: ONNX Cast's round_mode): up
 * (the default of Cast, and of the generic setters), down, or to the
 * nearer power (halfway, 1.5 * 2^k, goes up; onnx.numpy_helper's rule).
 * The other formats always round to nearest, ties to even. */
typedef enum kl_sf_round { KL_SF_ROUND_UP = 0, KL_SF_ROUND_DOWN, KL_SF_ROUND_NEAREST } kl_sf_round;

/* Value of code `c` of an 8- or 4-bit format t (NaN codes give NaN, E5M2
 * inf codes inf, float4's 0x8 is -0). */
float kl_small_to_f32(kiln_dtype t, uint8_t c);

/* Code of x in format t, rounded once from the double (so float32 and
 * exact integer sources round correctly); 16 bits for float16/bfloat16,
 * 8 or 4 (low bits) for the others; 0 for any other t.
 *  - NaN: the quiet NaN with x's sign (float16 0x7e00, bfloat16 0x7fc0,
 *    float8 0x7f/0xff), 0x80 for the fnuz formats, 0xff for e8m0, and
 *    0x8 (-0) for float4e2m1, which has no NaN (the ONNX test data).
 *  - beyond the largest finite value after rounding, and +-inf:
 *    float16/bfloat16 give inf; with `saturate` float8 clamps to +-max,
 *    without it e4m3fn gives NaN, e5m2 inf, the fnuz formats NaN (0x80);
 *    float4e2m1 always clamps.  e8m0 clamps to 2^127 (0xfe) when
 *    `saturate`, else gives NaN (0xff); inf and NaN give 0xff.
 *  - the fnuz formats have no -0: -0 and negative values rounding to 0
 *    give 0; e8m0 has no sign (the exponent of |x| is encoded, per the
 *    ONNX reference): 0 gives 2^-127 (code 0), float32 subnormals code 0
 *    or 1 per `round`.
 *  - `round` applies to e8m0 only, from the float32 value of x. */
uint16_t kl_sf_encode(kiln_dtype t, double x, bool saturate, kl_sf_round round);

/* x rounded to the precision of format t (float16, bfloat16, float8 but
 * e8m0, float4e2m1), ties to even, with no upper range limit and the
 * format's subnormal spacing below its smallest normal; x itself for
 * other types.  For shortest-decimal printing, where clamping would lie. */
double kl_sf_round_value(kiln_dtype t, double x);

#endif
