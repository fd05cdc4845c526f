/*
 * gemm.h — packed single-precision GEMM with a fused epilogue:
 *     C = act(alpha * op(A) * op(B) + beta * C + col_bias + row_bias + Z)
 * op(A) is M x K, op(B) is K x N, C is M x N (row-major, leading dimensions
 * in elements).  Constant operands can be packed once (kl_sgemm_pack_a/_b);
 * the packed formats are the same for every ISA level (see kernels.h) and
 * carry a header the run checks (magic, K, and M or N).
 * Blocking: K blocks of at most 320 (evened out), NC=512 over N, micro-kernels 6x16 (generic, AVX2)
 * and 6x64 (AVX-512); threads split M or N by shape.
 */
#ifndef KL_CPU_X86_GEMM_H
#define KL_CPU_X86_GEMM_H

#include <stdbool.h>
#include <stddef.h>

#include "cpu/threadpool.h"
#include "cpu/x86/isa.h"
#include "cpu/x86/vecmath.h"
#include "kiln.h"

typedef struct kl_gemm_args {
    size_t M, N, K;
    const float *A; /* plain op(A) source, ignored when packed_a is set */
    size_t lda;
    bool transA;         /* A stored K x M */
    const void *packed_a; /* from kl_sgemm_pack_a, or NULL */
    const float *B;      /* plain op(B) source, ignored when packed_b is set */
    size_t ldb;
    bool transB;          /* B stored N x K */
    const void *packed_b; /* from kl_sgemm_pack_b, or NULL */
    float *C;
    size_t ldc;
    float alpha, beta; /* beta == 0: C is not read (may hold NaN) */
    const float *col_bias; /* [N] added to every row, or NULL */
    const float *row_bias; /* [M] added to every column, or NULL */
    const float *Z;        /* [M x N] residual with leading dimension ldz, or NULL */
    size_t ldz;
    kl_act act;
    kl_isa isa;       /* KL_ISA_AUTO: the active level */
    int max_threads;  /* 0: as many as the pool has */
    void *workspace;  /* kl_sgemm_workspace_size bytes, or NULL: allocated per call */
    size_t workspace_bytes;
} kl_gemm_args;

/* Bytes of a packed B (K x N) / packed A (M x K) buffer. */
size_t kl_sgemm_pack_b_size(size_t K, size_t N);
size_t kl_sgemm_pack_a_size(size_t M, size_t K);
/* Packs op(B) (K x N; transB: B is stored N x K) into `packed`
 * (kl_sgemm_pack_b_size bytes, any alignment >= 4). */
void kl_sgemm_pack_b(const float *B, size_t ldb, bool transB, size_t K, size_t N, void *packed);
/* Packs op(A) (M x K; transA: A is stored K x M). */
void kl_sgemm_pack_a(const float *A, size_t lda, bool transA, size_t M, size_t K, void *packed);
/* The panel data alone, as kl_sgemm_packed_a_data / _b_data give it, into
 * dst: round_up(M, MR) * K floats, panel stride K * MR (A); round_up(N,
 * NP) * K floats, panel stride K * NP (B).  For callers that keep panels in
 * buffers of their own (conv weights): no header, no staging copy. */
void kl_sgemm_pack_a_panels(const float *A, size_t lda, bool transA, size_t M, size_t K, float *dst);
void kl_sgemm_pack_b_panels(const float *B, size_t ldb, bool transB, size_t K, size_t N, float *dst);

/* Workspace bytes kl_sgemm needs for this shape with `threads` threads
 * (0 if both operands are packed). */
size_t kl_sgemm_workspace_size(const kl_gemm_args *a, int threads);

/* C = epilogue(...), see above.  Fails with KILN_ERR_INVALID_ARGUMENT for a
 * NULL operand, a leading dimension too small, a packed buffer of other
 * dimensions or format, or a workspace too small; KILN_ERR_NO_MEMORY if a
 * workspace must be allocated and cannot.  M, N or K == 0 is fine (K == 0
 * gives the epilogue of alpha*0). */
kiln_status kl_sgemm(kl_pool *pool, const kl_gemm_args *a);

/* `batch` independent products; the stride_* (elements; 0 = shared) step
 * A, B, C, Z and the biases between items.  A packed B is shared by every
 * item.  Threads split items first, then M/N. */
typedef struct kl_gemm_batch_strides {
    size_t a, b, c, z, col_bias, row_bias;
} kl_gemm_batch_strides;
kiln_status kl_sgemm_batch(kl_pool *pool, const kl_gemm_args *a, size_t batch, const kl_gemm_batch_strides *s);

/* The single-threaded core, for drivers (conv) that split work themselves:
 * a and b point at packed panel data (no header) with panel strides
 * a_ps = K*MR... as produced by the pack routines; rows [0,M) of C. */
typedef struct kl_gemm_packed {
    const float *a; size_t a_ps; /* A micro-panel i at a + i*a_ps, k at +k*MR */
    const float *b; size_t b_ps; /* B panel j at b + j*b_ps, k at +k*b_k */
    size_t b_k;                  /* 0 means 16 (packed); a row stride reads a
                                    row-major B in place (b_ps 16): a partial
                                    last panel is loaded masked, so nothing
                                    past column N of a row is read */
    const float *pf_b; size_t pf_ps, pf_panels; /* B panels of the next call
                                    (panel stride pf_ps; NULL: none): row
                                    panels 1..pf_panels of this call
                                    prefetch one each, K lines of 16 floats */
} kl_gemm_packed;
void kl_sgemm_packed_run(kl_isa isa, size_t M, size_t N, size_t K, const kl_gemm_packed *p, float *C, size_t ldc,
                         float alpha, float beta, const float *col_bias, const float *row_bias, const float *Z,
                         size_t ldz, kl_act act);
/* Packed A/B panel data (after the header) and its panel stride in floats. */
const float *kl_sgemm_packed_a_data(const void *packed, size_t *panel_stride);
const float *kl_sgemm_packed_b_data(const void *packed, size_t *panel_stride);

#endif
