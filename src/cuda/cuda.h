/*
 * cuda.h — the cuda provider's host-side interface to the runtime (no CUDA
 * types here: src/runtime includes it without the CUDA headers).
 *
 * An engine whose layers include cuda ones gets a kl_cuda_engine (device
 * copies of the constants, made on first use and shared by its contexts);
 * each context gets a kl_cuda_ctx: a stream, library handles, and one plan
 * per set of input shapes (shapes of every value, a device arena laid out by
 * the memory planner, each node's launch with its arguments resolved, and
 * the CUDA graph captured from them).  Nodes the cuda provider does not run
 * execute on the CPU reference kernels with copies around them; nodes whose
 * inputs are all known on the host once the input shapes are (shape
 * arithmetic: Shape, Gather of a shape, Concat of dims ...) run once per
 * plan on the host, like TensorRT's shape tensors.
 */
#ifndef KL_CUDA_H
#define KL_CUDA_H

#include "backend/kernel.h"

struct kiln_engine;
struct kl_program;

typedef struct kl_cuda_engine kl_cuda_engine;
typedef struct kl_cuda_ctx kl_cuda_ctx;

/* Options of a cuda engine (from the engine's build options). */
typedef struct kl_cuda_options {
    bool fp16;          /* float tensors stored and computed in float16 (float32 accumulation) */
    bool tf32;          /* FP32 products may use TF32 tensor cores */
    bool graphs;        /* capture and replay CUDA graphs (default on) */
    size_t workspace;   /* largest library workspace per layer (bytes) */
    int layout;         /* 4-D activations of convolution networks: KL_CUDA_LAYOUT_* */
    bool no_own_conv;   /* kiln's implicit-GEMM convolution is not timed (the builder's plan without it) */
} kl_cuda_options;

/* KL_CUDA_LAYOUT_AUTO: NHWC for fp16 engines (tensor-core convolutions),
 * NCHW for fp32; the builder times both for fp32 convolution networks and
 * records the faster in the engine (meta cuda_layout).  KILN_CUDA_NHWC=0|1
 * in the environment overrides all of these (experiments). */
enum { KL_CUDA_LAYOUT_AUTO = 0, KL_CUDA_LAYOUT_NCHW = 1, KL_CUDA_LAYOUT_NHWC = 2 };

/* on_gpu[i]: main-graph node i was assigned to the cuda provider.  `prog`
 * runs the other nodes (the CPU program of the engine).  Owner: caller
 * (kl_cuda_engine_free). */
kiln_status kl_cuda_engine_create(kl_model *ir, struct kl_program *prog, const bool *on_gpu,
                                  const kl_cuda_options *opt, kl_cuda_engine **out);
void kl_cuda_engine_free(kl_cuda_engine *ce);
/* "NVIDIA H200 (sm_90), CUDA runtime 13.0, driver 13.0, cudnn 9.19.0,
 * cublasLt 13.0.0" into buf. */
void kl_cuda_describe(char *buf, size_t size);
/* Short device key for engine headers and timing caches: "sm_90/cudnn91900/cublasLt130000/cuda13000". */
void kl_cuda_device_key(char *buf, size_t size);
/* How many cuBLASLt candidates a product times (timing-cache keys name it when not 16). */
int kl_cuda_gemm_candidates(void);

kiln_status kl_cuda_ctx_create(kl_cuda_engine *ce, kl_cuda_ctx **out);
void kl_cuda_ctx_free(kl_cuda_ctx *c);

/* Run the main graph: inputs[i] bound to graph input i (host tensors),
 * outputs[i] receive new host tensors (caller unrefs). */
kiln_status kl_cuda_ctx_run(kl_cuda_ctx *c, kl_rt *const *inputs, size_t n_inputs, kl_rt **outputs, size_t n_outputs);

/* Timing of the last run, trtexec's split (ms): host-to-device copies,
 * compute (events around the graph launch), device-to-host copies. */
void kl_cuda_ctx_last_times(const kl_cuda_ctx *c, double *h2d, double *compute, double *d2h);
/* Time `iterations` launches of the compute alone (inputs already on the
 * device from the last run, no copies: trtexec's --noDataTransfers) and
 * write each launch's ms into ms[0..iterations). Needs one run first. */
kiln_status kl_cuda_ctx_time_compute(kl_cuda_ctx *c, int iterations, double *ms);
/* Per-layer profiling: when on, runs launch node by node (no graph) with
 * events around each layer; times accumulate into node_ms/node_runs
 * (arrays of the graph's node count, owned by the caller). */
void kl_cuda_ctx_set_profiling(kl_cuda_ctx *c, bool on, double *node_ms, uint64_t *node_runs);
/* Device memory of the current plan (arena + inputs/outputs + statics). */
size_t kl_cuda_ctx_device_bytes(const kl_cuda_ctx *c);
/* Whether the last run replayed a CUDA graph, and how many nodes of the
 * current plan run on the host (fallbacks) / once per plan (shape math). */
void kl_cuda_ctx_stats(const kl_cuda_ctx *c, bool *graph, size_t *host_nodes, size_t *static_nodes);

/* Library algorithms (cuDNN's convolution algorithm, cuBLASLt's heuristic
 * candidate index) chosen at build: algo[i] per main-graph node (-1: none),
 * valid for plans of the input shapes whose key (kl_cuda_plan_key) is
 * given; other shapes time their candidates when planned. */
/* Codes above are what engines (meta cuda_algos) and timing caches store;
 * KL_CUDA_ALGO_NUMBERING changes when their meaning does (engine meta
 * cuda_algo_numbering; the timing cache's tactic name cuda.algo<N>), and
 * an engine of another numbering is refused.  Codes are 0..KL_CUDA_ALGO_MAX. */
#define KL_CUDA_ALGO_NUMBERING 2
#define KL_CUDA_ALGO_NUMBERING_TEXT "2"
#define KL_CUDA_ALGO_TACTIC "cuda.algo2"
#define KL_CUDA_ALGO_MAX 99999
kiln_status kl_cuda_engine_set_algos(kl_cuda_engine *ce, const int *algo, const int64_t *key, size_t key_len);
void kl_cuda_plan_key(kl_rt *const *inputs, size_t n, int64_t *key, size_t *len, size_t cap);
/* Make (or find) the plan for these inputs' shapes without running it:
 * the builder's tactic timing. */
kiln_status kl_cuda_ctx_plan(kl_cuda_ctx *c, kl_rt *const *inputs, size_t n_inputs);
/* Per node of the current plan: the algorithm chosen (-1: none), its
 * workspace bytes and measured ms (0 if not timed).  Arrays of the graph's
 * node count. */
void kl_cuda_ctx_choices(const kl_cuda_ctx *c, int *algo, size_t *workspace, double *ms);
/* What the current plan launches for graph node `node` (the steps charged to it), in words, into buf
 * (always terminated); empty when the context has no plan yet. */
void kl_cuda_ctx_kernel(const kl_cuda_ctx *c, size_t node, char *buf, size_t size);
/* Is algo (a kl_cuda_ctx_choices entry) kiln's own implicit-GEMM convolution? */
bool kl_cuda_algo_is_own_conv(int algo);

/* Can the cuda provider run node n (op, opset, types, attributes known
 * without shapes)?  Used by the provider's supports(). */
bool kl_cuda_node_supported(const kl_node *n, char *why, size_t why_size);

#endif /* KL_CUDA_H */
