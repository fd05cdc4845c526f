/*
 * nn.h — the nn family of reference kernels (convolutions, pooling, matrix
 * products, Einsum, Det, Col2Im, GridSample, AffineGrid), split over
 * nn.c (table, shared helpers), nn_gemm.c, nn_conv.c, nn_pool.c,
 * nn_einsum.c and nn_grid.c.
 *
 * Floating types are computed in float (float, float16, bfloat16) or in
 * double (double); float32 has cache-blocked fast paths (im2col + packed
 * GEMM), the other types go through converted float/double buffers.
 */
#ifndef KL_REF_NN_H
#define KL_REF_NN_H

#include "cpu/ref/ref.h"

/* ---- element buffers (nn.c) ---------------------------------------------------------- */

/* True for float, double, float16, bfloat16. */
bool kl_nn_is_float(kiln_dtype t);
/* Allocate n elements of `size` bytes (n may be 0), overflow-checked; NULL
 * with the error set on failure. */
void *kl_nn_alloc(int64_t n, size_t size);
/* Release what kl_nn_alloc (or kl_malloc) returned: scratch memory of the
 * running node is left to the context, the rest goes to kl_free. */
void kl_nn_free(void *p);
/* t's elements as float: *out borrows t->data for float32 tensors (*owned
 * = NULL), else points at a converted copy in *owned (kl_free it). */
kiln_status kl_nn_as_f32(const kl_rt *t, const float **out, float **owned);
/* t's elements converted to a new double array (kl_free it). */
kiln_status kl_nn_as_f64(const kl_rt *t, double **out);
/* t's elements as int64 in a new array (kl_free it). */
kiln_status kl_nn_as_i64(const kl_rt *t, int64_t **out);
/* Store t->count values into t (rounded per t's dtype). */
void kl_nn_store_f32(kl_rt *t, const float *v);
void kl_nn_store_f64(kl_rt *t, const double *v);
/* A float32 work buffer for output y: y->data when y is float32 (*owned =
 * NULL), else a new zeroed buffer in *owned that kl_nn_finish_f32 stores
 * into y and frees. */
kiln_status kl_nn_out_f32(kl_rt *y, float **buf, float **owned);
void kl_nn_finish_f32(kl_rt *y, float *owned);

/* Input i, required to be a tensor (name used in messages). */
kiln_status kl_nn_input(kl_kctx *c, size_t i, const char *name, bool required, const kl_rt **out);
/* Input i must have input 0's element type. */
kiln_status kl_nn_same_type(kl_kctx *c, size_t i, const char *name);

/* ---- sliding-window geometry (nn.c) ------------------------------------------------- */

typedef struct kl_nn_geom {
    int ns; /* number of spatial axes */
    int64_t in[KILN_MAX_RANK], out[KILN_MAX_RANK];
    int64_t k[KILN_MAX_RANK], s[KILN_MAX_RANK], d[KILN_MAX_RANK];
    int64_t pb[KILN_MAX_RANK], pe[KILN_MAX_RANK]; /* pads at begin / end, resolved */
} kl_nn_geom;

/* Read INTS attribute `name` of exactly n values >= lo into out (left as
 * is when absent; *present says which). */
kiln_status kl_nn_attr_ints(kl_kctx *c, const char *name, int n, int64_t lo, int64_t *out, bool *present);
/* Fill g for a window of kernel k sliding over spatial sizes in[0..ns):
 * strides, dilations, pads, auto_pad (explicit pads win) and, when
 * `ceil_ok`, ceil_mode (a last window starting in the right padding is
 * dropped).  Output sizes as ONNX shape inference; errors name the
 * attribute. */
kiln_status kl_nn_geom_init(kl_kctx *c, int ns, const int64_t *in, const int64_t *k, bool ceil_ok,
                            kl_nn_geom *g);
/* ConvTranspose's geometry for x [N, C, in...] and w [C, M/group, k...]:
 * the checks of the reference kernel (ranks, channels, group, attributes),
 * then g with image = the output (g->in: its spatial sizes, g->pb: begin
 * pads from pads / auto_pad / output_shape / output_padding) and grid =
 * the input (g->out).  Errors name the attribute or input. */
kiln_status kl_nn_conv_t_geometry(kl_kctx *c, const kl_rt *x, const kl_rt *w, int64_t *group, kl_nn_geom *g);

/* ---- matrix products (nn_gemm.c) ----------------------------------------------------- */

/* C[M,N] += alpha * A[M,K] * B[K,N], element (i,k) of A at A[i*rsa + k*csa],
 * (k,j) of B at B[k*rsb + j*csb], C rows ldc apart (contiguous columns).
 * Float: packed, cache-blocked micro-kernel accumulating in float. */
kiln_status kl_nn_sgemm(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t rsa, int64_t csa,
                        const float *B, int64_t rsb, int64_t csb, float *C, int64_t ldc);
kiln_status kl_nn_dgemm(int64_t M, int64_t N, int64_t K, double alpha, const double *A, int64_t rsa, int64_t csa,
                        const double *B, int64_t rsb, int64_t csb, double *C, int64_t ldc);
/* Integer version, wrapping modulo 2^64 (no signed overflow). */
void kl_nn_igemm(int64_t M, int64_t N, int64_t K, const int64_t *A, int64_t rsa, int64_t csa, const int64_t *B,
                 int64_t rsb, int64_t csb, int64_t *C, int64_t ldc);

/* Gemm: Y = alpha op(A) op(B) + beta C (C broadcast to [M, N], optional
 * from opset 11; skipped when beta is 0). */
kiln_status kl_nn_gemm(kl_kctx *c);
/* MatMul: numpy matmul (1-D operands promoted, batch dims broadcast). */
kiln_status kl_nn_matmul(kl_kctx *c);

/* ---- convolutions (nn_conv.c) ------------------------------------------------------- */

/* Conv: any number of spatial axes, group, strides, dilations, pads or
 * auto_pad, optional bias. */
kiln_status kl_nn_conv(kl_kctx *c);
/* ConvTranspose: output_shape (pads generated as the spec says, a larger
 * output only extends the end), output_padding, auto_pad SAME (output =
 * input x stride), group, dilations. */
kiln_status kl_nn_conv_transpose(kl_kctx *c);
/* DeformConv: bilinear sampling at kernel positions + offsets (zero
 * outside), optional mask and bias, offset_group. */
kiln_status kl_nn_deform_conv(kl_kctx *c);
/* Col2Im: sums the columns [N, C x prod(block), L] into [N, C, image...]. */
kiln_status kl_nn_col2im(kl_kctx *c);

/* ---- pooling (nn_pool.c) ------------------------------------------------------------ */

/* Windowed pools over any number of spatial axes (kernel_shape, strides,
 * pads / auto_pad, dilations, ceil_mode).  AveragePool: count_include_pad;
 * MaxPool: optional int64 Indices over the whole tensor (storage_order 1 =
 * column-major spatial index), NaN never wins; LpPool: p (float in opset 1). */
kiln_status kl_nn_average_pool(kl_kctx *c);
kiln_status kl_nn_max_pool(kl_kctx *c);
kiln_status kl_nn_lp_pool(kl_kctx *c);
/* Global pools: every spatial axis reduced to 1 (GlobalMaxPool propagates NaN). */
kiln_status kl_nn_global_average_pool(kl_kctx *c);
kiln_status kl_nn_global_max_pool(kl_kctx *c);
kiln_status kl_nn_global_lp_pool(kl_kctx *c);
/* MaxUnpool: scatter X at indices I into the inferred shape, placed at the
 * origin of the optional output_shape. */
kiln_status kl_nn_max_unpool(kl_kctx *c);
/* MaxRoiPool: Caffe-style max over rounded ROI bins, empty bins are 0. */
kiln_status kl_nn_max_roi_pool(kl_kctx *c);

/* ---- Einsum, Det (nn_einsum.c) ------------------------------------------------------ */

/* Einsum: numpy semantics, float types in double, integers wrapping. */
kiln_status kl_nn_einsum(kl_kctx *c);
/* Det of [*, M, M] in double (partial pivoting). */
kiln_status kl_nn_det(kl_kctx *c);

/* ---- sampling grids (nn_grid.c) ----------------------------------------------------- */

/* GridSample: opset 16 (4-D; bilinear / nearest / bicubic) and 20 (N-D;
 * linear / nearest / cubic), zeros / border / reflection, align_corners. */
kiln_status kl_nn_grid_sample(kl_kctx *c);
/* AffineGrid: theta [N, 2, 3] or [N, 3, 4] applied to the normalized base grid. */
kiln_status kl_nn_affine_grid(kl_kctx *c);

#endif /* KL_REF_NN_H */
