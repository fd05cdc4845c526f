/* Bulk upload of an engine's constants to one device block: the host
 * threads convert (float32 -> float16) or copy the tensors into pinned
 * staging chunks while the previous chunk is on its way to the device. */
#ifndef KL_CUDA_UPLOAD_H
#define KL_CUDA_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "kiln.h"

/* One tensor: its device bytes go to dev + off.  With f32_to_f16, src holds
 * bytes / 2 float32 values converted to float16 (round to nearest even);
 * else `bytes` bytes copied as they are. */
typedef struct kl_cu_up_item {
    const void *src;
    size_t off, bytes;
    bool f32_to_f16;
} kl_cu_up_item;

/* Write items[0..n) (sorted by off, each off a multiple of 64, ranges not
 * overlapping) into dev[0..total) on stream st with up to `threads` host
 * threads (0: one per online CPU, at most 8), and wait for the copies.
 * Bytes of dev between items are left undefined. */
kiln_status kl_cu_upload_items(const kl_cu_up_item *items, size_t n, size_t total, void *dev, cudaStream_t st,
                               int threads);

/* Fill stage[0..hi-lo) with the destination bytes [lo, hi) of the items
 * (lo and hi multiples of 64; what a staging chunk of the upload holds). */
void kl_cu_upload_fill(const kl_cu_up_item *items, size_t n, size_t lo, size_t hi, uint8_t *stage);

/* float32 -> float16 on the host (round to nearest even; F16C when the CPU
 * has it). */
void kl_cu_f32_to_f16(uint16_t *dst, const float *src, size_t n);

#endif
