/*
 * control.h — CPU reference kernels of the control family: If, Loop, Scan,
 * SequenceMap (control.c), the sequence and optional operators
 * (control_seq.c), and the element-copy helpers they share.
 */
#ifndef KL_REF_CONTROL_H
#define KL_REF_CONTROL_H

#include "backend/kernel.h"

/* Copy n elements of src starting at element soff into dst at element doff.
 * Both tensors have the same dtype; strings are copied (dst owns them),
 * sub-byte types bit by bit. */
kiln_status kl_ctrl_copy(kl_rt *dst, int64_t doff, const kl_rt *src, int64_t soff, int64_t n);

/* Stack the n tensors items[] (same dtype and shape) along a new axis
 * `axis` (0..rank) into a new tensor; items[i] lands at position
 * reverse ? n-1-i : i.  `what` names the values in errors. */
kiln_status kl_ctrl_stack(kl_rt *const *items, size_t n, int axis, bool reverse, const char *what, kl_rt **out);

/* New tensor holding t's sub-tensor at index `index` of axis `axis`
 * (rank one less than t). */
kiln_status kl_ctrl_slice(const kl_rt *t, int axis, int64_t index, kl_rt **out);

/* Element type of the tensors in a value declared as seq(tensor(T)) or
 * optional(seq(tensor(T))); UNDEFINED when not known. */
kiln_dtype kl_ctrl_seq_elem(const kl_type *t);

/* Sequence and optional kernels (control_seq.c). */
kiln_status kl_ctrl_sequence_empty(kl_kctx *c);
kiln_status kl_ctrl_sequence_construct(kl_kctx *c);
kiln_status kl_ctrl_sequence_insert(kl_kctx *c);
kiln_status kl_ctrl_sequence_at(kl_kctx *c);
kiln_status kl_ctrl_sequence_erase(kl_kctx *c);
kiln_status kl_ctrl_sequence_length(kl_kctx *c);
kiln_status kl_ctrl_split_to_sequence(kl_kctx *c);
kiln_status kl_ctrl_concat_from_sequence(kl_kctx *c);
kiln_status kl_ctrl_optional(kl_kctx *c);
kiln_status kl_ctrl_optional_get_element(kl_kctx *c);
kiln_status kl_ctrl_optional_has_element(kl_kctx *c);

#endif
