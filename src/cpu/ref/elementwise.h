/*
 * elementwise.h — the elementwise family of the CPU reference kernels:
 * exact element conversions (the rules of Cast, shared by every kernel that
 * stores a computed double), the broadcast walker, and the kernel entry
 * points that the table in elementwise.c lists.
 */
#ifndef KL_REF_ELEMENTWISE_H
#define KL_REF_ELEMENTWISE_H

#include "cpu/ref/ref.h"

/* ---- conversions (elementwise_cast.c) ---------------------------------------- */

/* Rounding of Cast to float8e8m0 (attribute round_mode, opset 25). */
typedef enum kl_e8m0_round { KL_E8M0_UP = 0, KL_E8M0_DOWN, KL_E8M0_NEAREST } kl_e8m0_round;

/* Options of Cast: saturate (float8 targets) and the float8e8m0 rounding. */
typedef struct kl_cast_opts {
    bool saturate;
    kl_e8m0_round round;
} kl_cast_opts;

/* One element read exactly: a float value (every float type fits a double)
 * or the bits of a signed / unsigned integer (bool reads as signed 0/1). */
typedef enum kl_num_kind { KL_NUM_F = 0, KL_NUM_I, KL_NUM_U } kl_num_kind;
typedef struct kl_num {
    kl_num_kind kind;
    double f;  /* KL_NUM_F */
    int64_t i; /* KL_NUM_I: value; KL_NUM_U: the uint64 bits */
} kl_num;

/* Element i of a numeric or bool tensor, exactly. */
kl_num kl_ew_get(const kl_rt *t, int64_t i);
/* Store v into element i of numeric/bool tensor t with the rules of Cast:
 * floats round to nearest even straight from the exact value (no double
 * rounding), float8 saturates per o (NULL: saturate, round_mode up),
 * float->int truncates toward zero and keeps the low bits (NaN -> 0,
 * beyond int64 saturates), int->int keeps the low bits, bool is x != 0. */
void kl_ew_put(kl_rt *t, int64_t i, kl_num v, const kl_cast_opts *o);
/* kl_ew_put of a double (the result of a float computation). */
void kl_ew_set_f64(kl_rt *t, int64_t i, double v);
/* True for the element types Cast converts between (all but complex). */
bool kl_ew_castable(kiln_dtype t);
/* Convert every element of src into dst (same element count), strings
 * included; errors name the element that could not be parsed. */
kiln_status kl_ew_cast_tensor(const kl_rt *src, kl_rt *dst, const kl_cast_opts *o);

/* ---- broadcast walker (elementwise_binary.c) ----------------------------------- */

/* Called for each contiguous run of a broadcast: output elements
 * [o, o + n), input k's elements off[k] + j * st[k] for j < n (st[k] is 0
 * on a broadcast run, 1 otherwise). */
typedef void (*kl_ew_run_fn)(void *ctx, int64_t o, const int64_t *off, const int64_t *st, int64_t n);
/* Walk the numpy broadcast of ins[0..n) onto out's shape, which must be
 * their broadcast shape; KILN_ERR_UNSUPPORTED beyond KL_BCAST_MAX_IN inputs. */
kiln_status kl_ew_walk(kl_rt *const *ins, int n, const kl_rt *out, kl_ew_run_fn fn, void *ctx);
/* Input i of c as a tensor (KILN_ERR_TYPE when it is absent or not a tensor). */
kiln_status kl_ew_input(kl_kctx *c, size_t i, kl_rt **out);

/* ---- kernels ------------------------------------------------------------------- */

/* elementwise_cast.c */
kiln_status kl_ew_cast(kl_kctx *c);
kiln_status kl_ew_castlike(kl_kctx *c);
kiln_status kl_ew_bitcast(kl_kctx *c);

/* elementwise_binary.c */
kiln_status kl_ew_add(kl_kctx *c);
kiln_status kl_ew_sub(kl_kctx *c);
kiln_status kl_ew_mul(kl_kctx *c);
kiln_status kl_ew_div(kl_kctx *c);
kiln_status kl_ew_mod(kl_kctx *c);
kiln_status kl_ew_pow(kl_kctx *c);
kiln_status kl_ew_equal(kl_kctx *c);
kiln_status kl_ew_greater(kl_kctx *c);
kiln_status kl_ew_greater_equal(kl_kctx *c);
kiln_status kl_ew_less(kl_kctx *c);
kiln_status kl_ew_less_equal(kl_kctx *c);
kiln_status kl_ew_and(kl_kctx *c);
kiln_status kl_ew_or(kl_kctx *c);
kiln_status kl_ew_xor(kl_kctx *c);
kiln_status kl_ew_bitwise_and(kl_kctx *c);
kiln_status kl_ew_bitwise_or(kl_kctx *c);
kiln_status kl_ew_bitwise_xor(kl_kctx *c);
kiln_status kl_ew_bitshift(kl_kctx *c);
kiln_status kl_ew_prelu(kl_kctx *c);
kiln_status kl_ew_max(kl_kctx *c);
kiln_status kl_ew_min(kl_kctx *c);
kiln_status kl_ew_sum(kl_kctx *c);
kiln_status kl_ew_mean(kl_kctx *c);
kiln_status kl_ew_where(kl_kctx *c);
kiln_status kl_ew_clip(kl_kctx *c);

/* elementwise_misc.c */
kiln_status kl_ew_identity(kl_kctx *c);
kiln_status kl_ew_dropout(kl_kctx *c);
kiln_status kl_ew_swiglu(kl_kctx *c);

#endif /* KL_REF_ELEMENTWISE_H */
