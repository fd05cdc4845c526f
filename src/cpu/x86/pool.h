/*
 * pool.h — 2-D max and average pooling on float32 NCHW planes (the
 * vec.pool tactic, src/cpu/tactics_vec.c), with the reference kernel's
 * semantics (src/cpu/ref/nn_pool.c): NaN inputs are skipped by max (a
 * window of only NaNs, or an empty one, gives -inf), average divides by the
 * taps inside the input, or with count_include_pad by the taps inside the
 * padded input (end pads included).  Dilation 1 only.  Windows wholly
 * inside the input run without bounds checks; planes are split over the
 * thread pool.
 */
#ifndef KL_CPU_X86_POOL_H
#define KL_CPU_X86_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu/threadpool.h"
#include "cpu/x86/isa.h"

typedef struct kl_pool2d_geom {
    int64_t h, w;           /* input plane */
    int64_t oh, ow;         /* output plane */
    int64_t kh, kw;         /* window */
    int64_t sh, sw;         /* strides >= 1 */
    int64_t pt, pl, pb, pr; /* pads: top, left (begin), bottom, right (end), >= 0 */
} kl_pool2d_geom;

/* y[p] = pool of x[p] for each of the `planes` planes (x planes h*w, y
 * planes oh*ow, dense).  pool may be NULL (one thread). */
void kl_pool2d_f32(kl_isa isa, kl_pool *pool, const float *x, float *y, int64_t planes, const kl_pool2d_geom *g,
                   bool is_max, bool count_include_pad, float *ws);
/* Floats of kl_pool2d_f32's workspace for a pool of `threads` threads (max
 * pooling's row buffers; ws NULL: allocated per call) */
size_t kl_pool2d_workspace_floats(const kl_pool2d_geom *g, int threads);

/* GlobalAveragePool / GlobalMaxPool: y[p] = mean (a double sum, as the
 * reference) or max of the `size` values of plane p; max propagates NaN
 * (the reference's GlobalMaxPool does).  The mean runs on the vecops
 * kernels of level isa (KL_ISA_AUTO: the active one; double accumulators
 * in vectors, so the sum's order is not the reference's). */
void kl_global_pool_f32(kl_isa isa, kl_pool *pool, const float *x, float *y, int64_t planes, int64_t size, bool is_max);

#endif /* KL_CPU_X86_POOL_H */
