/*
 * quant.h — the quant family of reference kernels: QuantizeLinear,
 * DequantizeLinear, DynamicQuantizeLinear (quant.c) and the integer
 * products MatMulInteger, ConvInteger, QLinearMatMul, QLinearConv
 * (quant_int.c).
 *
 * Quantization rounds half to even and saturates to the output type's
 * range.  Float8 and float4 outputs are encoded by the shared encoder
 * (kl_quant_f32_to_small -> kl_sf_encode) with round-to-nearest-even, the
 * ONNX saturate rules and NaN codes that keep the sign, as Cast does.
 */
#ifndef KL_REF_QUANT_H
#define KL_REF_QUANT_H

#include "cpu/ref/ref.h"

/* Round v to the precision of float type t (float, float16, bfloat16;
 * double: unchanged; any other type: float). */
double kl_quant_round_to(kiln_dtype t, double v);

/* Nearest float8 / float4e2m1 code of x (ties to even): the shared encoder
 * kl_sf_encode (backend/smallfloat.h) with its rules.  saturate: values
 * beyond the largest finite value and infinities clamp to it; otherwise
 * they become inf (float8e5m2) or NaN.  float4e2m1 always saturates and,
 * having no NaN, maps NaN to -0 (code 8), as ONNX Cast does. */
uint8_t kl_quant_f32_to_small(kiln_dtype t, float x, bool saturate);

/* Integer range of a quantized integer type; false for other types. */
bool kl_quant_int_range(kiln_dtype t, int64_t *lo, int64_t *hi);

/* Input i as a required tensor (NULL input or a non-tensor fails naming `what`). */
kiln_status kl_quant_input(kl_kctx *c, size_t i, const char *what, const kl_rt **out);

/* Integer products (quant_int.c). */
kiln_status kl_quant_matmul_integer(kl_kctx *c);
kiln_status kl_quant_qlinear_matmul(kl_kctx *c);
kiln_status kl_quant_conv_integer(kl_kctx *c);
kiln_status kl_quant_qlinear_conv(kl_kctx *c);

#endif /* KL_REF_QUANT_H */
