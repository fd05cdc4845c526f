/*
 * infer_util.h — helpers shared by the op families' shape inference, on top
 * of the context API in ops.h (implemented in infer.c).
 *
 * Symbolic values (kl_symval): an element is a known number (any value, -1
 * included) when param == NULL and value != KL_SYM_UNKNOWN, a symbolic
 * dimension when param != NULL, and unknown when {KL_SYM_UNKNOWN, NULL}.
 * This differs from shape dims (kl_dim in a kl_shape), where -1 is unknown:
 * a Reshape target may hold a literal -1.  Use the kl_symdim_* helpers
 * rather than testing fields.
 */
#ifndef KL_INFER_UTIL_H
#define KL_INFER_UTIL_H

#include <string.h>

#include "ops/ops.h"

/* Most elements a kl_symval may hold (larger integer tensors get none). */
#define KL_SYMVAL_MAX 64

/* ---- dimensions ------------------------------------------------------------- */

static inline bool kl_dim_is_known(const kl_dim *d) { return d->value >= 0; }
/* Same dimension for sure: equal known sizes, or the same symbol. */
static inline bool kl_dim_same(const kl_dim *a, const kl_dim *b) {
    if (a->value >= 0 || b->value >= 0) return a->value == b->value;
    return a->param && b->param && strcmp(a->param, b->param) == 0;
}
static inline kl_dim kl_dim_known(int64_t v) { kl_dim d = {v, NULL}; return d; }
static inline kl_dim kl_dim_unknown(void) { kl_dim d = {-1, NULL}; return d; }

/* Symval elements (see the convention above). */
#define KL_SYM_UNKNOWN INT64_MIN
static inline bool kl_symdim_known(const kl_dim *d) { return !d->param && d->value != KL_SYM_UNKNOWN; }
static inline bool kl_symdim_unknown(const kl_dim *d) { return !d->param && d->value == KL_SYM_UNKNOWN; }
static inline kl_dim kl_symdim_none(void) { kl_dim d = {KL_SYM_UNKNOWN, NULL}; return d; }

/* ---- inference helpers (infer.c) ------------------------------------------------ */

/* Copy `src` (rank -1 allowed) into the context's arena. */
kiln_status kl_infer_shape_copy(kl_infer_ctx *c, const kl_shape *src, kl_shape *dst);
/* Merge two shapes that must be equal (no broadcasting): per dimension the
 * more specific wins; different known sizes or ranks is an error naming the
 * node and `what` ("inputs 'A' and 'B'"). */
kiln_status kl_infer_shape_merge(kl_infer_ctx *c, const kl_shape *a, const kl_shape *b,
                                 const char *what, kl_shape *out);
/* Output `out` gets input `in`'s whole type (any kind: tensor, sequence,
 * optional...).  No-op when the input is omitted. */
kiln_status kl_infer_copy_type(kl_infer_ctx *c, size_t out, size_t in);
/* Output 0 = input 0's element type and shape: an infer function for every
 * shape-preserving op (Relu, Softmax, LRN...). */
kiln_status kl_infer_unary(kl_infer_ctx *c);
/* Output 0 = input 0's shape with element type `dtype`. */
kiln_status kl_infer_unary_as(kl_infer_ctx *c, kiln_dtype dtype);
/* Multidirectional broadcast of the given inputs [first, first+count) (omitted
 * ones skipped) into *out (arena). */
kiln_status kl_infer_broadcast_inputs(kl_infer_ctx *c, size_t first, size_t count,
                                      kl_shape *out);
/* Integer attribute `name` (default dflt) as an axis normalized against rank;
 * out of range is an error naming the node and attribute.  rank < 0: the axis
 * is returned unnormalized. */
kiln_status kl_infer_attr_axis(kl_infer_ctx *c, const char *name, int64_t dflt, int rank,
                               int *out);
/* Contents of constant integer input i (at most max elements) into vals;
 * *count gets the element count.  False if not a known constant integer
 * tensor or larger than max. */
bool kl_infer_input_ints(const kl_infer_ctx *c, size_t i, int64_t *vals, int64_t max,
                         int64_t *count);
/* Allocate a symval of `count` unknown elements in the context's arena. */
kiln_status kl_infer_symval_new(kl_infer_ctx *c, int rank, int64_t count, kl_symval *out);
/* Element type of a Cast-style `to` attribute value; UNDEFINED if invalid. */
kiln_dtype kl_infer_dtype_from_attr(int64_t to);

#endif /* KL_INFER_UTIL_H */
