/*
 * isa.h — x86 instruction-set detection and the per-ISA kernel table of the
 * fast CPU kernels (src/cpu/x86).  Detection runs once (pthread_once): cpuid
 * for the instructions and XGETBV for the OS saving the YMM/ZMM state.
 * KILN_ISA=ref|avx2|avx512 in the environment lowers the level chosen by
 * default and caps every explicit request too, so KILN_ISA=avx2 on an AVX-512
 * machine behaves like an AVX2-only one (a level the CPU lacks is never used).
 */
#ifndef KL_CPU_X86_ISA_H
#define KL_CPU_X86_ISA_H

#include <stdbool.h>
#include <stddef.h>

#include "kiln.h"

/* Levels, lowest first.  KL_ISA_AUTO asks for the active level. */
typedef enum kl_isa {
    KL_ISA_AUTO = 0,
    KL_ISA_REF = 1,    /* portable C, no SIMD flags */
    KL_ISA_AVX2 = 2,   /* AVX2 + FMA + F16C */
    KL_ISA_AVX512 = 3, /* AVX-512 F/BW/DQ/VL */
    KL_ISA_COUNT = 4
} kl_isa;

/* What the CPU and OS support (all false off x86). */
typedef struct kl_cpu_isa {
    bool avx, avx2, fma, f16c;
    bool avx512f, avx512bw, avx512dq, avx512vl, avx512vnni, avx512bf16;
    bool os_ymm, os_zmm;  /* XGETBV: the OS saves YMM / ZMM+opmask state */
    kl_isa best;          /* highest level usable here */
    kl_isa active;        /* best, lowered by KILN_ISA */
    bool env_ignored;     /* KILN_ISA was set to an unknown name (ignored) */
    char vendor[13];
    char brand[49];
    /* gemm.c's order for packed-B products on AVX-512: B's micro-panel in
     * L1 (on for Intel; KILN_GEMM_BL1=0/1 overrides), read once here */
    bool gemm_bl1;
    /* the same order's K block for products of pre-packed A (convolution
     * weights) when gemm_bl1: 128, or KILN_GEMM_BL1P (0: the usual order) */
    unsigned gemm_bl1p_kc;
    /* cpuid family (base + extended), e.g. 0x19 for AMD Zen 3/Zen 4 */
    unsigned family;
    /* conv.depthwise at the AVX-512 level runs the AVX2 (column) kernels
     * on maps 14 to 28 wide (tactics_x86.c): on for AMD family 0x19 (Zen 4,
     * whose 512-bit FMAs are two 256-bit halves; KILN_DW_AVX2=0/1 overrides) */
    bool dw_avx2;
} kl_cpu_isa;

/* The record, filled on first use (thread-safe, never NULL). */
const kl_cpu_isa *kl_cpu_isa_get(void);
/* Level used when a caller passes KL_ISA_AUTO. */
kl_isa kl_isa_active(void);
/* `isa` resolved: AUTO -> active; a level above active -> active. */
kl_isa kl_isa_resolve(kl_isa isa);
/* True when kernels of level `isa` may run here: the CPU and OS support it
 * and KILN_ISA does not exclude it (REF always). */
bool kl_isa_supported(kl_isa isa);
/* "auto", "ref", "avx2", "avx512". */
const char *kl_isa_name(kl_isa isa);
/* Parse a level name ("ref", "avx2", "avx512", "auto"); false if unknown. */
bool kl_isa_parse(const char *name, kl_isa *out);

/* FP32 FMA peak at level `isa` (AUTO: the active level) on `threads`
 * threads at once, in GFLOP/s of all threads together: each thread runs a
 * loop of independent FMAs (12 vectors; the generic level: 8 scalar
 * multiply-adds, what plain C reaches), about 10 ms of warm-up that also
 * sizes a run to about 3 ms, then the best of 5 runs, timed around the
 * whole parallel loop (a temporary kl_pool of `threads`).  Cached per
 * (level, threads) for the process.  KILN_ERR_UNSUPPORTED when the level
 * cannot run here (CPU, OS or KILN_ISA), KILN_ERR_INVALID_ARGUMENT for
 * threads outside 1..1024, or the pool's error. */
kiln_status kl_cpu_peak_measure(kl_isa isa, int threads, double *gflops);
/* kl_cpu_peak_measure on ONE thread; 0 when the level is not supported. */
double kl_cpu_peak_gflops(kl_isa isa);

#endif
