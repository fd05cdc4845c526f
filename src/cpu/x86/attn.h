/*
 * attn.h — fused multi-head attention for the fast CPU kernels (float32):
 * the computation of kiln.Attention (src/ops/kiln_transformer.h) without a
 * score matrix beyond one tile.  For every batch b, head h and tile of
 * query rows, the kernel walks the keys in blocks of KL_ATTN_NK:
 *
 *     S = scale * Q_blk K_blk^T + mask_blk        (KL_ATTN_MR rows x NK keys)
 *     m' = max(m, rowmax S);  P = exp(S - m');  l = l e^(m-m') + rowsum P
 *     O  = O e^(m-m') + P V_blk
 *
 * and writes Y = O / l (online softmax, float32 statistics).  Q, K, V and Y
 * are read and written in place with strides from the head-packed layout
 * ([B, S, H*D] or seq-first [S, B, H*D]); only K of the head being worked
 * on is repacked (transposed into KL_ATTN_NK-key panels) in the caller's
 * workspace, once per thread and head.
 *
 * NaN/Inf behaviour is that of the reference kernel
 * (src/cpu/ref/fused_transformer.c): a row whose scores hold a NaN, or whose
 * largest score is +inf or -inf (e.g. a fully -inf masked row), comes out
 * all NaN; Sk == 0 gives zeros.
 */
#ifndef KL_CPU_X86_ATTN_H
#define KL_CPU_X86_ATTN_H

#include <stddef.h>

#include "cpu/threadpool.h"
#include "cpu/x86/isa.h"
#include "kiln.h"

#define KL_ATTN_MR 6     /* query rows one kernel pass holds in registers */
#define KL_ATTN_NK 128   /* keys per block (packed K panel width) */
#define KL_ATTN_GROUPS 8 /* row groups of MR per tile: a key block serves MR*GROUPS rows */

/* One attention problem.  Element (b, s, h, d) of Q is at
 * q[b*q_bs + s*q_ss + h*D + d] (likewise K with D, V and Y with Dv); the
 * mask (optional) is element (b, h, i, j) at
 * mask[b*m_bs + h*m_hs + i*m_qs + j*m_ks], strides 0 on broadcast axes and
 * m_ks 0 or 1. */
typedef struct kl_attn_args {
    size_t B, H, Sq, Sk, D, Dv;
    const float *q, *k, *v;
    size_t q_bs, q_ss, k_bs, k_ss, v_bs, v_ss;
    float *y;
    size_t y_bs, y_ss;
    const float *mask;
    size_t m_bs, m_hs, m_qs, m_ks;
    float scale;
    kl_isa isa; /* KL_ISA_AUTO: the active level; capped at it */
} kl_attn_args;

/* Workspace bytes kl_attn needs for `threads` threads (0 when none). */
size_t kl_attn_workspace_size(const kl_attn_args *a, int threads);
/* Y = attention(Q, K, V, mask) over the pool (NULL: inline), with a
 * workspace of at least kl_attn_workspace_size(a, pool threads) bytes,
 * 64-byte aligned.  Writes every element of Y; never allocates.  Fails with
 * KILN_ERR_INVALID_ARGUMENT on a missing workspace or m_ks > 1. */
kiln_status kl_attn(kl_pool *pool, const kl_attn_args *a, void *workspace);

/* ---- internal: one tile, the contract between attn.c and the per-ISA files ---- */

/* rows (<= MR*GROUPS) query rows of one (b, h): q/mask/y point at the
 * tile's first row; kt is K^T of the head packed by attn.c ([Sk/NK
 * blocks][D][NK], zero padded); v points at key 0 of the head.  Scratch:
 * s (MR*NK floats), o (GROUPS*MR*dvp floats, dvp = Dv rounded up to 16),
 * ml (2*GROUPS*MR floats).  Sk >= 1. */
typedef struct kl_attn_tile {
    const float *q;
    size_t q_ss;
    const float *kt;
    const float *v;
    size_t v_ss;
    const float *mask; /* NULL: none */
    size_t m_qs, m_ks;
    float *y;
    size_t y_ss;
    size_t rows, Sk, D, Dv, dvp;
    float scale;
    float *s, *o, *ml;
} kl_attn_tile;

typedef void (*kl_attn_tile_fn)(const kl_attn_tile *t);

void kl_attn_generic_tile(const kl_attn_tile *t);
#if defined(__x86_64__) || defined(_M_X64)
void kl_x86_avx2_attn_tile(const kl_attn_tile *t);
void kl_x86_avx512_attn_tile(const kl_attn_tile *t);
#endif

#endif
