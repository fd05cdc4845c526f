/*
 * provider.h — the boundary between the builder and the backends.
 *
 * A provider (ggml's "device") says which nodes it can run and with which
 * tactics (kernel variants).  The builder asks every provider in the user's
 * preference order (src/plan/partition.c), times the tactics that apply
 * (src/plan/tactic.c), and records each node's provider and tactic in the
 * engine.  Loading an engine resolves tactics by name again, so a tactic
 * that needs an ISA feature the CPU lacks is refused with the reason.
 *
 * Members marked (optional) may be NULL; the stated default applies.
 * Backends include this header, core/ and ir/, never src/onnx/.
 */
#ifndef KL_PROVIDER_H
#define KL_PROVIDER_H

#include "backend/kernel.h"

#define KL_PROVIDER_API_VERSION 1

/* CPU features a tactic may need (bits of kl_cpu_features()). */
enum {
    KL_FEAT_AVX2 = 1u << 0,   /* AVX2 + FMA + F16C, OS saves YMM */
    KL_FEAT_AVX512 = 1u << 1, /* AVX-512 F/BW/DQ/VL, OS saves ZMM */
    KL_FEAT_VNNI = 1u << 2,   /* AVX-512 VNNI */
    KL_FEAT_BF16 = 1u << 3    /* AVX-512 BF16 */
};

/* Features of this CPU (cpuid + XGETBV), lowered by KILN_ISA=ref|avx2|avx512. */
uint32_t kl_cpu_features(void);
/* "avx2,avx512" style list of the bits in `isa` into buf ("none" if 0). */
const char *kl_features_format(uint32_t isa, char *buf, size_t size);
/* Parse the list back; false on an unknown name. */
bool kl_features_parse(const char *s, uint32_t *isa);

/* One way to run a node.  A tactic's `run` has the kernel contract of
 * kernel.h; ctx->state holds what `prepare` made (NULL without prepare). */
typedef struct kl_tactic {
    const char *name;  /* unique within its provider: "ref", "conv.im2col" */
    uint32_t isa;      /* KL_FEAT_* bits the CPU must have; 0 = any */
    int quality;       /* higher is preferred when not timed (ref = 0) */
    /* (optional) Can it run node n, whose input types and shapes are those
     * of the graph?  Default: yes.  On no, may write the reason to why. */
    bool (*applies)(const kl_node *n, char *why, size_t why_size);
    /* (optional) Prepare for node n: *state (owner: the tactic, released
     * with release()) e.g. packed weights, and the scratch bytes a run
     * needs at the node's largest shapes.  Default: no state, no scratch. */
    kiln_status (*prepare)(const kl_node *n, void **state, size_t *workspace);
    void (*release)(void *state); /* (optional) */
    /* Run the node.  NULL: the reference kernel from the registry. */
    kl_kernel_fn run;
    unsigned flags;    /* KL_TACTIC_* */
    /* (optional) Pre-packed weights for an engine file.  export_packed:
     * the state's packed form for a run on `threads` threads (packing now
     * if it has not), written to dst when dst is not NULL and *size (in:
     * dst's capacity) is enough; *size gets the bytes it takes (0: none).
     * adopt_packed: at load, take `size` bytes at src (the engine's mapping:
     * 4-byte aligned, 64 in a file; alive as long as the state) as the packed form
     * instead of packing at the first run; a form that does not fit the
     * node fails (KILN_ERR_ENGINE_MISMATCH). */
    kiln_status (*export_packed)(void *state, int threads, void *dst, size_t *size);
    kiln_status (*adopt_packed)(void *state, int threads, const void *src, size_t size);
} kl_tactic;

enum {
    /* run writes every element of its outputs: the executor need not
     * zero them first (the reference kernels get zeroed outputs). */
    KL_TACTIC_WRITES_ALL = 1u << 0
};

typedef struct kl_provider {
    int api_version;   /* KL_PROVIDER_API_VERSION */
    const char *name;  /* "cpu", "cuda" */
    /* Can it run on this machine?  If not, a static reason. */
    bool (*usable)(const char **reason);
    /* Can it run node n at all (op, opset, types)?  If not, the reason
     * ("no cpu kernel for Foo-3 float16") goes to why. */
    bool (*supports)(const kl_node *n, char *why, size_t why_size);
    /* The tactics of node n that apply, best quality first; returns how
     * many (at most max). */
    size_t (*tactics)(const kl_node *n, const kl_tactic **out, size_t max);
    /* Where its memory lives: true if tensors are host memory. */
    bool host_memory;
    /* (optional) Wait for queued work (no-op for the CPU). */
    kiln_status (*sync)(void);
    /* (optional) A tactic of node n by name, for loading engines (NULL if
     * it has none by that name or it does not apply). */
    const kl_tactic *(*tactic_find)(const kl_node *n, const char *name);
} kl_provider;

/* Every provider compiled in, in default preference order (cuda first when
 * built with it, cpu last). */
size_t kl_provider_count(void);
const kl_provider *kl_provider_at(size_t i);
/* By name; NULL if not compiled in. */
const kl_provider *kl_provider_find(const char *name);
/* Names known to kiln even when not compiled in ("cuda"), with the reason
 * it is missing; NULL for names kiln does not know. */
const char *kl_provider_missing_reason(const char *name);

/* The CUDA provider (src/cuda/provider.c), when built with KILN_CUDA. */
extern const kl_provider kl_cuda_provider;

/* The CPU provider (src/cpu/provider.c). */
extern const kl_provider kl_cpu_provider;
/* A tactic of the cpu provider by name for node n (NULL if none or it does
 * not apply to n). */
const kl_tactic *kl_cpu_tactic_find(const kl_node *n, const char *name);
/* The fast x86 tactics (src/cpu/tactics_x86.c): candidates of node n at the
 * active ISA level, and any of them by name (any level). */
size_t kl_cpu_x86_tactics(const kl_node *n, const kl_tactic **out, size_t max);
const kl_tactic *kl_cpu_x86_tactic_named(const kl_node *n, const char *name);
/* Vectorized tactics for normalization, softmax and elementwise ops
 * (src/cpu/tactics_vec.c) and for kiln.Attention (src/cpu/tactics_attn.c):
 * candidates at the active ISA level, and any of them by name. */
size_t kl_cpu_vec_tactics(const kl_node *n, const kl_tactic **out, size_t max);
const kl_tactic *kl_cpu_vec_tactic_named(const kl_node *n, const char *name);
size_t kl_cpu_attn_tactics(const kl_node *n, const kl_tactic **out, size_t max);
const kl_tactic *kl_cpu_attn_tactic_named(const kl_node *n, const char *name);

#endif /* KL_PROVIDER_H */
