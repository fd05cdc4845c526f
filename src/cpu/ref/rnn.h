/*
 * rnn.h — the recurrent and attention family of reference kernels:
 * RNN, GRU, LSTM (rnn.c, which holds the table), Attention and
 * RotaryEmbedding (rnn_attention.c), LinearAttention, CausalConvWithState
 * and ai.onnx.preview FlexAttention (rnn_linear.c).
 *
 * Everything is computed in double from converted copies of the inputs;
 * where the ONNX function body rounds intermediates to the input type
 * (float16 attention), the kernels round at the same places
 * (kl_rnn_round) so results match the function body.
 */
#ifndef KL_REF_RNN_H
#define KL_REF_RNN_H

#include "cpu/ref/ref.h"

/* Allocate n doubles (zeroed), overflow-checked; NULL with the error set. */
double *kl_rnn_alloc(int64_t n);
/* Tensor t's elements as a new double array (kl_free it). */
kiln_status kl_rnn_to_f64(const kl_rt *t, double **out);
/* Round v to the precision of float type t (double: unchanged). */
double kl_rnn_round(kiln_dtype t, double v);
/* Input i when present as a tensor, else NULL. */
const kl_rt *kl_rnn_opt(const kl_kctx *c, size_t i);
/* Input i, required; the error names `what`. */
kiln_status kl_rnn_req(kl_kctx *c, size_t i, const char *what, const kl_rt **out);
/* Output i is present in the node and wanted. */
bool kl_rnn_want(const kl_kctx *c, size_t i);
/* True for float, double, float16, bfloat16. */
bool kl_rnn_is_float(kiln_dtype t);

/* Attention (opset 23, 24): 3-D or 4-D Q/K/V, q_num_heads/kv_num_heads
 * (GQA), bool or additive attn_mask (shorter masks padded with -inf),
 * is_causal (bottom-right aligned with past_key or nonpad_kv_seqlen),
 * past_key/past_value with present outputs, scale, softcap,
 * qk_matmul_output_mode 0-3, softmax_precision, nonpad_kv_seqlen (24);
 * fully masked rows give zero probabilities. */
kiln_status kl_rnn_attention(kl_kctx *c);
/* RotaryEmbedding (23): 3-D (num_heads) or 4-D input, position_ids or
 * per-token caches, interleaved, rotary_embedding_dim. */
kiln_status kl_rnn_rotary_embedding(kl_kctx *c);

/* LinearAttention: linear / gated / delta / gated_delta recurrences over
 * 3-D packed heads, GQA, past_state, optional erase_gate. */
kiln_status kl_rnn_linear_attention(kl_kctx *c);
/* CausalConvWithState: depthwise causal conv1d over [past_state, input],
 * optional bias and silu/swish, present_state = last k-1 columns. */
kiln_status kl_rnn_causal_conv(kl_kctx *c);
/* FlexAttention (ai.onnx.preview 1): scaled dot-product attention with
 * score_mod / mask_mod / prob_mod subgraphs (whole-tensor graphs with one
 * input, or per-element graphs taking indices), GQA, softmax_precision. */
kiln_status kl_rnn_flex_attention(kl_kctx *c);

#endif /* KL_REF_RNN_H */
