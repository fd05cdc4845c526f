/*
 * convt.h — 2-D transposed convolution (ONNX ConvTranspose) in float32:
 *     Y[n, g*Mg + m, oy, ox] = bias[g*Mg + m]
 *         + sum over c < Cg, kh, kw, iy, ix with oy = iy*SH - PT + kh*DH and
 *           ox = ix*SW - PL + kw*DW of X[n, g*Cg + c, iy, ix] * W[g*Cg + c, m, kh, kw]
 * as one packed product per (image, group, band of input rows),
 *     col[Mg*KH*KW, rows*IW] = W_g^T [Mg*KH*KW, Cg] x X_g [Cg, rows*IW]
 * (kl_sgemm, W_g^T packed once at prepare), then col2im: each output channel's
 * KH*KW rows of col added into its plane, the channels split over threads (a
 * plane is written by one thread only).  The reference kernel (src/cpu/ref)
 * does the same walk in one thread on the portable GEMM.
 */
#ifndef KL_CPU_X86_CONVT_H
#define KL_CPU_X86_CONVT_H

#include <stddef.h>
#include <stdint.h>

#include "cpu/threadpool.h"
#include "cpu/x86/isa.h"
#include "kiln.h"

typedef struct kl_convt2d_desc {
    size_t C, M;     /* input channels; output channels over all groups */
    size_t group;    /* divides C and M */
    size_t KH, KW;   /* kernel */
    size_t SH, SW;   /* strides (>= 1) */
    size_t DH, DW;   /* dilations (>= 1) */
    kl_isa isa;      /* the product's level; KL_ISA_AUTO: the active one */
} kl_convt2d_desc;

/* One run's spatial geometry: input IH x IW, output OH x OW, begin pads
 * PT/PL (negative when output_shape or SAME asks for more than the natural
 * size on that side; the end pads are implied by OH/OW). */
typedef struct kl_convt2d_geom {
    size_t IH, IW, OH, OW;
    int64_t PT, PL;
} kl_convt2d_geom;

typedef struct kl_convt2d_plan kl_convt2d_plan;

/* Checks d and packs W ([C, M/group, KH, KW]) and bias ([M] or NULL) into a
 * new plan (owner: caller, kl_convt2d_destroy).  KILN_ERR_INVALID_ARGUMENT
 * for a bad description, KILN_ERR_NO_MEMORY. */
kiln_status kl_convt2d_prepare(const kl_convt2d_desc *d, const float *W, const float *bias, kl_convt2d_plan **out);
void kl_convt2d_destroy(kl_convt2d_plan *p);
/* Bytes of packed weights and bias the plan holds. */
size_t kl_convt2d_packed_bytes(const kl_convt2d_plan *p);

/* Workspace bytes for a run of geometry g on up to `threads` threads (the
 * columns of a band of input rows, at most about 4 MiB unless one row needs
 * more, and the product's own). */
size_t kl_convt2d_workspace_size(const kl_convt2d_plan *p, const kl_convt2d_geom *g, int threads);

/* Y [N, M, OH, OW] from X [N, C, IH, IW]; Y must not overlap X.  workspace:
 * kl_convt2d_workspace_size(p, g, threads of the pool) bytes.  Never
 * allocates.  KILN_ERR_INVALID_ARGUMENT for an empty geometry or a NULL
 * buffer where data is needed. */
kiln_status kl_convt2d_run(kl_pool *pool, const kl_convt2d_plan *p, size_t N, const kl_convt2d_geom *g,
                           const float *X, float *Y, void *workspace);

#endif
