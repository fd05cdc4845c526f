/*
 * tensor.h — the "tensor" family of CPU reference kernels (data movement,
 * indexing, shape manipulation, resizing), split over src/cpu/ref/tensor*.c:
 *   tensor.c         shared helpers, Constant, Shape, Size + the registry rows
 *   tensor_gen.c     ConstantOfShape, Range, EyeLike, OneHot, Trilu, NonZero,
 *                    Unique
 *   tensor_move.c    Reshape, Flatten, Squeeze, Unsqueeze, Expand, Tile,
 *                    Transpose, Concat, Split, Slice, Pad, CenterCropPad,
 *                    DepthToSpace, SpaceToDepth, Compress, ReverseSequence
 *   tensor_index.c   Gather, GatherElements, GatherND, ScatterND,
 *                    ScatterElements/Scatter, TensorScatter
 *   tensor_resize.c  Resize, Upsample
 * Data movement is dtype-agnostic: byte-sized types move by element size,
 * sub-byte types bit by bit, strings by copying their bytes.
 */
#ifndef KL_REF_TENSOR_H
#define KL_REF_TENSOR_H

#include <string.h>

#include "cpu/ref/ref.h"

/* ---- shared helpers (tensor.c) ------------------------------------------------ */

/* Bytes per element of a byte-addressable dtype; 0 for strings and sub-byte
 * types (those go through kl_tz_copy element by element). */
size_t kl_tz_esize(kiln_dtype t);
/* Copy n consecutive elements src[si..si+n) to dst[di..di+n) (same dtype;
 * strings are duplicated, sub-byte types copied as raw bits). */
kiln_status kl_tz_copy(kl_rt *dst, int64_t di, const kl_rt *src, int64_t si, int64_t n);
/* Input i as a tensor, or an error naming `what` when absent / not a tensor. */
kiln_status kl_tz_need(kl_kctx *c, size_t i, const char *what, kl_rt **out);
/* New output i shaped like dims, copying all of src's elements (row-major
 * order is kept: Reshape, Flatten, Squeeze, Unsqueeze). */
kiln_status kl_tz_output_copy(kl_kctx *c, size_t i, const kl_rt *src, int rank, const int64_t *dims);
/* An index read from a tensor, checked against [-dim, dim) and wrapped;
 * `what` names it in the error. */
kiln_status kl_tz_index(kl_kctx *c, int64_t v, int64_t dim, const char *what, int64_t *out);

/* Row-major strides of dims (in elements), computed with wrapping
 * arithmetic: a tensor with a zero dim may have huge other dims, and its
 * strides are then meaningless but harmless. */
void kl_tz_strides(int rank, const int64_t *dims, int64_t *strides);
/* Strided copy: for every index i of dims (rank at most 2*KILN_MAX_RANK),
 * dst[doff + i.dstr] = src[soff + i.sstr] (same dtype).  Adjacent axes are
 * merged and contiguous runs moved with memcpy. */
kiln_status kl_tz_strided(kl_rt *dst, int64_t doff, const int64_t *dstr, const kl_rt *src, int64_t soff,
                          const int64_t *sstr, int rank, const int64_t *dims);
/* The same two copies over the context's pool when they are large (1 MiB
 * and more, elements of 1, 2, 4 or 8 bytes): rows (or pieces of long rows)
 * spread over the threads; otherwise, and with a NULL pool, as above.
 * kl_tz_copy_mt's ranges must not overlap to be split (else kl_tz_copy). */
struct kl_pool;
kiln_status kl_tz_strided_mt(struct kl_pool *pool, kl_rt *dst, int64_t doff, const int64_t *dstr, const kl_rt *src,
                             int64_t soff, const int64_t *sstr, int rank, const int64_t *dims);
kiln_status kl_tz_copy_mt(struct kl_pool *pool, kl_rt *dst, int64_t di, const kl_rt *src, int64_t si, int64_t n);
/* Set every element of dst to element vi of val (same dtype). */
kiln_status kl_tz_fill(kl_rt *dst, const kl_rt *val, int64_t vi);

/* a * b with wrapping arithmetic, for products of dims that are exact
 * whenever the tensor is not empty (and never used when it is). */
static inline int64_t kl_tz_mulw(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }

/* Copy one element (es = kl_tz_esize of the dtype; 0 takes the slow path). */
static inline kiln_status kl_tz_move1(kl_rt *dst, int64_t di, const kl_rt *src, int64_t si, size_t es) {
    uint8_t *d = dst->data;
    const uint8_t *s = src->data;
    switch (es) {
    case 1: d[di] = s[si]; return KILN_OK;
    case 2: memcpy(d + di * 2, s + si * 2, 2); return KILN_OK;
    case 4: memcpy(d + di * 4, s + si * 4, 4); return KILN_OK;
    case 8: memcpy(d + di * 8, s + si * 8, 8); return KILN_OK;
    case 0: return kl_tz_copy(dst, di, src, si, 1);
    default: memcpy(d + (size_t)di * es, s + (size_t)si * es, es); return KILN_OK;
    }
}

/* ---- kernels ------------------------------------------------------------------ */

kiln_status kl_tz_reshape(kl_kctx *c);
kiln_status kl_tz_flatten(kl_kctx *c);
kiln_status kl_tz_squeeze(kl_kctx *c);
kiln_status kl_tz_unsqueeze(kl_kctx *c);
kiln_status kl_tz_expand(kl_kctx *c);
kiln_status kl_tz_tile(kl_kctx *c);
kiln_status kl_tz_transpose(kl_kctx *c);
kiln_status kl_tz_concat(kl_kctx *c);
kiln_status kl_tz_split(kl_kctx *c);
kiln_status kl_tz_slice(kl_kctx *c);
kiln_status kl_tz_pad(kl_kctx *c);
kiln_status kl_tz_center_crop_pad(kl_kctx *c);
kiln_status kl_tz_depth_to_space(kl_kctx *c);
kiln_status kl_tz_space_to_depth(kl_kctx *c);
kiln_status kl_tz_compress(kl_kctx *c);
kiln_status kl_tz_reverse_sequence(kl_kctx *c);

kiln_status kl_tz_gather(kl_kctx *c);
kiln_status kl_tz_gather_elements(kl_kctx *c);
kiln_status kl_tz_gather_nd(kl_kctx *c);
kiln_status kl_tz_scatter_nd(kl_kctx *c);
kiln_status kl_tz_scatter_elements(kl_kctx *c);
kiln_status kl_tz_tensor_scatter(kl_kctx *c);

kiln_status kl_tz_constant_of_shape(kl_kctx *c);
kiln_status kl_tz_range(kl_kctx *c);
kiln_status kl_tz_eye_like(kl_kctx *c);
kiln_status kl_tz_one_hot(kl_kctx *c);
kiln_status kl_tz_trilu(kl_kctx *c);
kiln_status kl_tz_non_zero(kl_kctx *c);
kiln_status kl_tz_unique(kl_kctx *c);

kiln_status kl_tz_resize(kl_kctx *c);
/* Resize with float32 sums where the two innermost axes alone change and
 * nothing extrapolates (the vec.resize tactic; the same taps and weights as
 * kl_tz_resize, whose float64 sums stay the oracle); otherwise as
 * kl_tz_resize. */
kiln_status kl_tz_resize_float(kl_kctx *c);
kiln_status kl_tz_upsample(kl_kctx *c);

#endif /* KL_REF_TENSOR_H */
