/*
 * tables.h — the family tables of the cpu provider's reference kernels
 * (src/cpu/ref/), behind the provider boundary: only the cpu registry
 * (src/cpu/registry.c) reads them; everything else asks kl_kernel_find or
 * the provider.  Each table is terminated by a row with op == NULL.
 */
#ifndef KL_CPU_REF_TABLES_H
#define KL_CPU_REF_TABLES_H

#include "backend/kernel.h"

extern const kl_kernel_def kl_ref_elementwise[];
extern const kl_kernel_def kl_ref_reduce[];
extern const kl_kernel_def kl_ref_norm[];
extern const kl_kernel_def kl_ref_nn[];
extern const kl_kernel_def kl_ref_tensor[];
extern const kl_kernel_def kl_ref_quant[];
extern const kl_kernel_def kl_ref_control[];
extern const kl_kernel_def kl_ref_misc[];
extern const kl_kernel_def kl_ref_rnn[]; /* RNN, GRU, LSTM, attention ops */
extern const kl_kernel_def kl_ref_fused[]; /* kiln-domain fused ops (src/cpu/ref/fused.c) */
extern const kl_kernel_def kl_ref_fused_transformer[]; /* kiln.FusedMatMul, LayerNorm, Attention... (fused_transformer.c) */

#endif
