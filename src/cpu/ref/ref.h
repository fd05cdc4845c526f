/*
 * ref.h — helpers shared by the CPU reference kernels: numpy broadcasting,
 * axis handling, and reading attributes/inputs that moved between opsets.
 * The reference kernels are the oracle: clarity first, but typed loops for
 * float so real models run in seconds, not minutes.
 */
#ifndef KL_REF_H
#define KL_REF_H

#include "backend/kernel.h"

#define KL_BCAST_MAX_IN 8

/* Multidirectional (numpy) broadcast of the shapes of ins[0..n) into
 * rank/dims.  Error (KILN_ERR_SHAPE) names the two shapes that clash. */
kiln_status kl_ref_broadcast_shape(kl_rt *const *ins, size_t n, int *rank, int64_t *dims);

/* Iterates the elements of a broadcast output in row-major order, giving
 * each input's linear element offset: for (...; kl_bcast_next(&it)) use
 * it.off[k].  Inputs must be tensors whose shapes broadcast to dims. */
typedef struct kl_bcast {
    int rank, n;
    int64_t dims[KILN_MAX_RANK];
    int64_t idx[KILN_MAX_RANK];
    int64_t strides[KL_BCAST_MAX_IN][KILN_MAX_RANK]; /* 0 on broadcast axes */
    int64_t off[KL_BCAST_MAX_IN];
} kl_bcast;
void kl_bcast_init(kl_bcast *it, int rank, const int64_t *dims, kl_rt *const *ins, size_t n);
void kl_bcast_next(kl_bcast *it);

/* Row-major strides of dims (in elements).  Products wrap rather than
 * overflow, so an empty tensor with huge other dims is harmless. */
void kl_ref_strides(int rank, const int64_t *dims, int64_t *strides);
/* Normalize axis in [-rank, rank) (or [-rank-1, rank] with `insert`);
 * KILN_ERR_INVALID_MODEL naming `what` otherwise. */
kiln_status kl_ref_axis(int64_t axis, int rank, bool insert, const char *what, int *out);

/* Input i as a small int64 list (axes, shapes, pads...): *n = -1 when the
 * input is omitted, 0 when it is given but empty (callers decide whether an
 * empty optional input means "not given"). */
kiln_status kl_ref_input_ints(const kl_kctx *c, size_t i, int64_t *vals, int64_t max, int64_t *n);
/* Scalar input i as double / int64 (rank 0 or one element). */
kiln_status kl_ref_input_scalar_f64(const kl_kctx *c, size_t i, double *out);
kiln_status kl_ref_input_scalar_i64(const kl_kctx *c, size_t i, int64_t *out);

/* Shape equality helper. */
bool kl_ref_same_shape(const kl_rt *a, const kl_rt *b);

#endif
