/*
 * fpenv.h — the CPU's handling of subnormal floats while kiln runs.
 *
 * x86 cores take a microcode assist for every subnormal operand or result:
 * a layer whose activations decay into subnormals (SiLU of large negative
 * values, products of tiny weights) ran 5x slower on an Ice Lake Xeon
 * (YOLOv8n, batch 1: 400 ms against 72 ms).  Engines therefore run with
 * flush-to-zero and denormals-are-zero set (the results differ only in
 * values below 1.2e-38), unless built with "denormals" = "keep".  The
 * caller's mode is restored when a run returns; the pool's workers take the
 * mode of the thread that submits each job.  Elsewhere than x86 these are
 * no-ops.
 */
#ifndef KL_FPENV_H
#define KL_FPENV_H

#include <stdbool.h>

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#include <xmmintrin.h>
#define KL_FP_FLUSH_BITS 0x8040u /* MXCSR FTZ (bit 15) | DAZ (bit 6) */

/* This thread's flush bits (0 or KL_FP_FLUSH_BITS, or a mix). */
static inline unsigned kl_fp_flush_get(void) { return _mm_getcsr() & KL_FP_FLUSH_BITS; }

/* Set this thread's flush bits to `bits` (from kl_fp_flush_get). */
static inline void kl_fp_flush_set(unsigned bits) {
    unsigned c = _mm_getcsr();
    if ((c & KL_FP_FLUSH_BITS) != bits) _mm_setcsr((c & ~KL_FP_FLUSH_BITS) | (bits & KL_FP_FLUSH_BITS));
}
#else
#define KL_FP_FLUSH_BITS 0u
static inline unsigned kl_fp_flush_get(void) { return 0; }
static inline void kl_fp_flush_set(unsigned bits) { (void)bits; }
#endif

/* Enter kiln's mode (flush: subnormals to zero; else the caller's mode
 * stays); returns what kl_fp_leave restores. */
static inline unsigned kl_fp_enter(bool flush) {
    unsigned old = kl_fp_flush_get();
    if (flush) kl_fp_flush_set(KL_FP_FLUSH_BITS);
    return old;
}
static inline void kl_fp_leave(unsigned old) { kl_fp_flush_set(old); }

#endif
