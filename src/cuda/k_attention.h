/*
 * k_attention.h — fused flash-style attention for float16 (kernels in
 * src/cuda/k_attention.cu, launchers callable from host C).
 *
 *   Y = softmax(scale * Q K^T + mask) V   per batch and head,
 *
 * with Q [B, Sq, H*D] (row stride ldq elements), K [B, Sk, H*D] (ldk),
 * V [B, Sk, H*D] (ldv), Y dense [B, Sq, H*D]; seq_first = 1 means the
 * rows are [S, B] (row index s*B + b).  Optional additive mask (float32 or
 * float16) with element (b, h, q, k) at b*msb + h*msh + q*msq + k*msk.
 * FP16 inputs and outputs, float32 accumulation and online softmax (one
 * pass over K/V in tiles of 64 keys; the tilings below).  A row whose
 * scores are all -inf yields NaN (as the CPU reference and kc_softmax).
 * A run allocates nothing and never synchronizes (graph-capturable).
 */
#ifndef KL_CUDA_K_ATTENTION_H
#define KL_CUDA_K_ATTENTION_H

#include <stdbool.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "cuda/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kc_flash_desc {
    int64_t b, sq, sk, h, d;       /* batch, query/key lengths, heads, head dim (D == Dv) */
    int64_t ldq, ldk, ldv;         /* row strides (elements) */
    int seq_first;
    float scale;
    bool has_mask;
    kc_dtype mask_t;               /* KC_F32 or KC_F16 */
    int64_t msb, msh, msq, msk;    /* mask strides (elements), 0 on broadcast axes */
    /* rel_kw > 0: a decomposed relative-position bias (SAM) instead of one
     * mask: key k = kh * rel_kw + kq gets mask(b, h, q, kh) + mask2(b, h, q,
     * kq), mask with the strides above, mask2 (same type) with these: */
    int64_t rel_kw;
    int64_t m2sb, m2sh, m2sq, m2sk;
    int variant;                   /* kc_flash_variant's choice: KC_FLASH_AUTO (0) or one forced */
} kc_flash_desc;

/* The kernel's tilings (one result, different speeds):
 *   ONE_MTILE   a block of 4 warps per 64 query rows, each warp 16 rows;
 *   TWO_MTILES  a block per 128 query rows, each warp 32 (each K/V fragment
 *               read from shared memory feeds two products; D == 64, no
 *               relative positions);
 *   SPLIT_KEYS  a block per 16 query rows whose 4 warps take every 4th key
 *               tile, merged at the end (for grids too small to fill the
 *               GPU; D == 64, no relative positions, Sk > 64);
 *   H2EXP       ONE_MTILE with the softmax's exponentials taken in float16
 *               pairs (no mask, scale > 0).
 * On an H100 TWO_MTILES, SPLIT_KEYS (seventeenth session) and H2EXP
 * (eighteenth: 0.240 vs 0.229 ms at ViT-B/16 b256; the f16x2 exponential
 * still issues one MUFU.EX2 per half and adds conversions) were correct and
 * no faster than ONE_MTILE on ViT-B/16 (bench/RESULTS.md), so AUTO is
 * ONE_MTILE and the others run when forced or timed at build. */
enum {
    KC_FLASH_AUTO = 0,
    KC_FLASH_ONE_MTILE = 1,
    KC_FLASH_TWO_MTILES = 2,
    KC_FLASH_SPLIT_KEYS = 3,
    KC_FLASH_H2EXP = 4,
    KC_FLASH_LAST = KC_FLASH_H2EXP
};

/* The tiling a launch with desc runs: desc->variant when forced and it
 * applies, else ONE_MTILE. */
int kc_flash_variant(const kc_flash_desc *desc);

/* Whether kc_flash_attn covers this attention: float16 t, D == Dv in
 * {64, 128}, and a grid that fits. */
bool kc_flash_supported(kc_dtype t, int64_t d, int64_t dv, int64_t b, int64_t h, int64_t sq);

/* One-time setup for head dim d (the kernel's dynamic shared memory limit);
 * call at plan time, outside any graph capture. */
cudaError_t kc_flash_prepare(int64_t d);

/* Launch on stream.  q, k, v, y: float16, 2-byte aligned (16-byte aligned
 * pointers and ld % 8 == 0 take the vectorized path); mask: NULL unless
 * desc->has_mask; mask2: NULL unless desc->rel_kw > 0. */
cudaError_t kc_flash_attn(void *y, const void *q, const void *k, const void *v, const void *mask, const void *mask2,
                          const kc_flash_desc *desc, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif /* KL_CUDA_K_ATTENTION_H */
