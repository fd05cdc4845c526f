/* The cuda executor: plans per input-shape set (shapes, device arena, each
 * node's launch resolved), host-side shape arithmetic, CPU fallbacks with
 * copies, CUDA graph capture and replay, and trtexec's timing split.
 * See cuda.h for the model. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "cuda/cuda.h"
#include "cuda/dnn.h"
#include "cuda/k_attention.h"
#include "cuda/kernels.h"
#include "cuda/upload.h"
#include "ops/kiln_transformer.h"
#include "plan/plan.h"
#include "runtime/exec.h"

#define KL_CU_MAX_PLANS 4
#define KL_CU_SIDE_MAX 4 /* side streams for branches (KILN_CUDA_SIDE_STREAMS) */

/* ---- small helpers ------------------------------------------------------------------------- */

static kiln_status kl_cu_err(cudaError_t e, const char *call) {
    cudaGetLastError(); /* clear a sticky launch error so later calls report their own */
    if (e == cudaErrorMemoryAllocation)
        return kl_errorf(KILN_ERR_NO_MEMORY, "%s: out of GPU memory (%s)", call, cudaGetErrorString(e));
    return kl_errorf(KILN_ERR_INTERNAL, "%s: %s (%s)", call, cudaGetErrorName(e), cudaGetErrorString(e));
}
#define KL_CU(call)                                                    \
    do {                                                               \
        cudaError_t kl_e_ = (call);                                    \
        if (kl_e_ != cudaSuccess) return kl_cu_err(kl_e_, #call);      \
    } while (0)

/* ---- engine ------------------------------------------------------------------------------- */

struct kl_cuda_engine {
    kl_model *ir;
    kl_program *prog;
    bool *on_gpu;
    kl_cuda_options opt;
    pthread_mutex_t mu;  /* constants below, and kl_shapes_eval (it edits the model's types) */
    void **cdev;         /* per value id: device copy of a constant in its device type */
    void **cdev_krsc;    /* per value id: conv weights [K,C,R,S] as [K,R,S,C] (NHWC convolutions) */
    void **cdev_krsc8;   /* the same with C zero-padded to a multiple of 8 (the 3-channel stems) */
    void **cdev_s2d;     /* stride-2 stem weights rearranged for the space-to-depth convolution */
    void **cdev_rsc;     /* depthwise filters [C,1,R,S] as [R,S,C] (kiln's tap-major depthwise kernel) */
    int *algo;           /* per node: library algorithm chosen at build for the shapes in algo_key (-1: time it) */
    int64_t algo_key[KILN_MAX_RANK * 8 + 8];
    size_t algo_key_len;
    bool preloaded;      /* constants uploaded (by the first context) */
    size_t const_bytes;
    uint8_t *block;      /* one allocation holding the preloaded constants (cdev, cdev_krsc point into it) */
    size_t block_bytes;
};

/* Is p one of the pointers into ce->block (freed with it)? */
static bool kl_ce_in_block(const kl_cuda_engine *ce, const void *p) {
    return ce->block && (const uint8_t *)p >= ce->block && (const uint8_t *)p < ce->block + ce->block_bytes;
}

kiln_status kl_cuda_engine_create(kl_model *ir, struct kl_program *prog, const bool *on_gpu,
                                  const kl_cuda_options *opt, kl_cuda_engine **out) {
    const char *why = NULL;
    if (!kl_cuda_provider.usable(&why)) return kl_errorf(KILN_ERR_UNSUPPORTED, "cuda provider: %s", why);
    const kl_graph *g = ir->graph;
    if (!g->uses_built) KL_TRY(kl_graph_build_uses(ir->graph)); /* readers of each value (slice views) */
    kl_cuda_engine *ce = kl_calloc(1, sizeof *ce);
    if (!ce) return KILN_ERR_NO_MEMORY;
    ce->ir = ir;
    ce->prog = prog;
    ce->opt = *opt;
    if (!ce->opt.workspace) ce->opt.workspace = (size_t)64 << 20;
    ce->on_gpu = kl_calloc(g->n_nodes ? g->n_nodes : 1, sizeof *ce->on_gpu);
    ce->cdev = kl_calloc(g->n_values ? g->n_values : 1, sizeof *ce->cdev);
    ce->cdev_krsc = kl_calloc(g->n_values ? g->n_values : 1, sizeof *ce->cdev_krsc);
    ce->cdev_krsc8 = kl_calloc(g->n_values ? g->n_values : 1, sizeof *ce->cdev_krsc8);
    ce->cdev_s2d = kl_calloc(g->n_values ? g->n_values : 1, sizeof *ce->cdev_s2d);
    ce->cdev_rsc = kl_calloc(g->n_values ? g->n_values : 1, sizeof *ce->cdev_rsc);
    if (!ce->on_gpu || !ce->cdev || !ce->cdev_krsc || !ce->cdev_krsc8 || !ce->cdev_s2d || !ce->cdev_rsc) {
        kl_free(ce->cdev_rsc);
        kl_free(ce->cdev_krsc8);
        kl_free(ce->cdev_s2d);
        kl_free(ce->on_gpu);
        kl_free(ce->cdev);
        kl_free(ce->cdev_krsc);
        kl_free(ce);
        return KILN_ERR_NO_MEMORY;
    }
    memcpy(ce->on_gpu, on_gpu, g->n_nodes * sizeof *on_gpu);
    pthread_mutex_init(&ce->mu, NULL);
    *out = ce;
    return KILN_OK;
}

void kl_cuda_engine_free(kl_cuda_engine *ce) {
    if (!ce) return;
    for (size_t i = 0; i < ce->ir->graph->n_values; i++) {
        if (ce->cdev[i] && !kl_ce_in_block(ce, ce->cdev[i])) cudaFree(ce->cdev[i]);
        if (ce->cdev_krsc[i] && !kl_ce_in_block(ce, ce->cdev_krsc[i])) cudaFree(ce->cdev_krsc[i]);
        if (ce->cdev_krsc8[i]) cudaFree(ce->cdev_krsc8[i]);
        if (ce->cdev_s2d[i]) cudaFree(ce->cdev_s2d[i]);
        if (ce->cdev_rsc[i]) cudaFree(ce->cdev_rsc[i]);
    }
    if (ce->block) cudaFree(ce->block);
    kl_free(ce->cdev_krsc8);
    kl_free(ce->cdev_s2d);
    kl_free(ce->cdev_rsc);
    pthread_mutex_destroy(&ce->mu);
    kl_free(ce->cdev);
    kl_free(ce->cdev_krsc);
    kl_free(ce->algo);
    kl_free(ce->on_gpu);
    kl_free(ce);
}

/* ---- plans ------------------------------------------------------------------------------------ */

/* A value as the plan sees it. */
typedef struct kl_cval {
    void *d;          /* device memory (NULL: not on the device) */
    bool isf;         /* float tensor stored as t */
    kc_dtype t;
    size_t esz;       /* device element size */
    kl_rt *host;      /* known on the host (constant view, or computed once per plan) */
    bool known;       /* shape known */
    int rank;
    int64_t dims[KILN_MAX_RANK];
    int64_t count;
    bool nhwc;        /* 4-D value stored [N,H,W,C] (dims stay logical [N,C,H,W]) */
    int64_t ld;       /* > 0: a column slice of a wider tensor, rows ld elements apart (read by Attention only) */
    void *padc;       /* NHWC copy with the channels zero-padded to a multiple of 8 (tensor-core convolutions) */
    void *alt;        /* the same value in the other layout (made by the first reader that needs it) */
    /* A channel slab of a joined Concat's output (kl_mem_plan_build_slabs):
     * cs > 0 is that output's channel count, d points at this value's first
     * channel, and the strides are the output's (kl_value_strides); dn is a
     * dense copy for readers that take only dense tensors. */
    int64_t cs;
    void *dn;
    /* A Reshape [N, C, H*W] of an NHWC value read only by a Transpose (0, 2, 1) (kl_cu_tview_reshape): d is
     * the NHWC buffer, which holds the Transpose's [N, H*W, C] as it is, so neither runs a copy. */
    bool tview;
} kl_cval;

enum {
    K_FE, K_ACT, K_COPY, K_FILLCOPY, K_CONV, K_GEMM, K_ATTN, K_LN, K_SOFTMAX, K_POOL, K_GPOOL, K_REDUCE, K_RESIZE,
    K_GATHER, K_EINSUM, K_HOST, K_SE, K_TOPK
};

typedef struct kl_ccopy {
    void *y;
    const void *x;
    int64_t ys[KC_MAX_RANK], xs[KC_MAX_RANK], dims[KC_MAX_RANK];
    int rank;
    size_t esz;
    bool s2d;       /* a step's pre-conversion only: kc_s2d_pack(y, x, &sd) in place of the copy */
    kc_s2d sd;
} kl_ccopy;

typedef struct kl_cstep {
    int kind;
    size_t node;
    size_t charge1; /* 1 + the node `kiln profile` charges the step's time to (0: node): a residual
                       Add's step runs its MatMul/Gemm with the Add in the epilogue, so the product's node */
    struct kl_ccopy *pre; /* layout conversions run before the step */
    size_t n_pre;
    kc_dtype t;
    void *y;
    const void *x[5];
    kc_fe_program *fe;
    const void *fe_in[KC_MAX_INPUTS];
    kl_ccopy *cp;
    size_t n_cp;
    float fill;
    int64_t n;
    int act, op, flag;
    float a, b, eps;
    int act2;   /* K_SE: the second activation and its alpha, beta */
    float a2, b2;
    int64_t outer, mid, inner;
    /* softmax mask */
    kc_dtype mask_t;
    int64_t m_div, m_mod, m_os, m_as, m_is;
    kc_conv *conv;
    kc_gemm *gemm;
    kc_attn *attn;
    kc_pool2d pool;
    kc_resize rs;
    kc_einsum_desc *es;
    size_t ws_need; /* bytes of the plan's workspace the step uses (K_SE with its pool) */
    void *wf;       /* K_SE folded into the next convolution: its scaled weights [wk, C], from wsrc */
    const void *wsrc;
    int64_t wk;
    bool unslab;    /* K_CONV: timed faster on dense copies than on its channel slabs (KL_CU_ALGO_DENSE) */
    float *pool_part; /* K_CONV: its output's sums over slices of pixels written for the K_SE
                         step that pools it (kc_conv_run_pool); K_SE: those sums, read instead of x */
    int64_t pool_parts;
    void *y2;       /* K_TOPK: the indices */
    /* Branch concurrency (kl_cu_find_side, kl_cu_side_steps): side = this step runs on the context's second
     * stream, launched with its branch before an earlier step (fork1 there) and joined before the step that
     * reads the branch's output (join1 there); the main stream runs the steps in between. */
    bool side;
    size_t fork1;      /* 1 + the index of the first step of the branch launched before this step (0: none) */
    size_t join1;      /* 1 + the number of the branch this step waits for (0: none) */
    size_t side_next1; /* a branch's step: 1 + the index of its next step (0: the last) */
    size_t br;         /* a branch's first step: the branch's number (its join event) */
} kl_cstep;

typedef struct kl_cplan {
    int64_t key[KILN_MAX_RANK * 8 + 8];
    size_t key_len;
    kl_shapes sh;
    kl_mem_plan mp;
    bool have_sh, have_mp;
    kl_cval *v;             /* per value id */
    uint8_t *arena;
    void **allocs;          /* device buffers of this plan (arena included) */
    size_t n_allocs, cap_allocs;
    size_t dev_bytes;
    kl_cstep *steps;
    size_t n_steps, cap_steps;
    void *ws;
    size_t ws_bytes;
    size_t n_host, n_static;
    void **in_stage;        /* per graph input: device buffer of the caller's bytes (or NULL: the value itself) */
    void **in_pin;          /* per graph input: pinned host copy */
    size_t *in_bytes;
    void **out_stage;       /* per graph output: float32 device copy of a float16 value (or NULL) */
    void **out_pin;
    size_t *out_bytes;
    cudaGraphExec_t gexec;
    bool graph_tried;
    int runs;
    bool nhwc;              /* convolution networks in NHWC (fp16 engines) */
    bool empty;             /* some value has no elements at these shapes: every node runs on the host */
    /* Attention written out as MatMul -> Softmax -> MatMul on [B,H,S,D]
     * (newer PyTorch exporters): per node, 1 = replaced, 2 = the final
     * MatMul that runs the fused attention; and its Q, K, V and scale. */
    uint8_t *sdpa;
    const kl_value **sdpa_q, **sdpa_k;
    float *sdpa_scale;
    /* SAM's decomposed relative positions between the scores and the
     * Softmax (scores [N,qh,qw,kh,kw] + rel_h [N,qh,qw,kh,1] + rel_w
     * [N,qh,qw,1,kw]): per final MatMul, rel_h, rel_w (or NULL) */
    const kl_value **sdpa_rh, **sdpa_rw;
    /* A residual Add of a MatMul's output (Add(z, MatMul(A, B) + bias),
     * possibly through a Reshape): per node, 1 = the MatMul (and Reshape),
     * which run nothing, 2 = the Add, which runs the product with z in the
     * GEMM's epilogue; and the MatMul of each such Add. */
    uint8_t *resid;
    const kl_node **resid_mm;
    uint8_t *se;            /* per node: 1 the SE block's first 1x1 convolution, 2 its second (runs both) */
    const kl_node **se_fc1; /* per node (2): the first */
    const kl_node **se_pool; /* per node (2): the global pool that feeds the first (3 there: runs nothing), or NULL */
    /* At batch 1, an SE block's scale folded into the weights of the 1x1
     * convolution that reads Mul(x, scale) (kc_se_pool_mlp_fold): per node,
     * 1 = that Mul, 2 = the convolution, as planned; 3 and 4 once the SE
     * step writes the scaled weights (the Mul then runs nothing and the
     * convolution reads x).  Per SE node its convolution; per convolution
     * its Mul and the scaled weights. */
    uint8_t *sefold;
    const kl_node **sefold_conv, **sefold_mul;
    const kl_value **sefold_x;
    void **sefold_w;
    /* Branch concurrency: per node, 1 = a convolution that may run beside the nodes between its inputs and its
     * only reader (kl_cu_find_side), its output in a buffer of its own; side_from: the first node it may run
     * beside, side_join: its reader.  n_side steps were kept (kl_cu_side_steps), with ws_side their workspace. */
    uint8_t *side;
    size_t *side_from, *side_join, *side_head, *side_len; /* head: the branch's first node; len (at the head): its nodes */
    size_t n_side;
    void *ws_side[KL_CU_SIDE_MAX]; /* one per side stream */
    size_t ws_side_bytes;
} kl_cplan;

struct kl_cuda_ctx {
    kl_cuda_engine *ce;
    cudaStream_t st;
    kc_dnn *dnn;
    kl_cplan *plans[KL_CU_MAX_PLANS];
    size_t n_plans;
    kl_cplan *cur;
    cudaEvent_t ev[4];
    double t_h2d, t_comp, t_d2h;
    bool last_graph;
    bool profiling;
    double *node_ms;
    uint64_t *node_runs;
    cudaEvent_t *lev;       /* per step pair, profiling */
    size_t n_lev;
    cudaStream_t st2[KL_CU_SIDE_MAX]; /* branch concurrency: the side streams (branch b on b % n), the fork event, a join event per branch */
    cudaEvent_t ev_fork, *ev_join;
    size_t n_ev_join;
};

static void kl_cplan_free(kl_cplan *p, const kl_graph *g) {
    if (!p) return;
    if (p->gexec) cudaGraphExecDestroy(p->gexec);
    for (size_t i = 0; i < p->n_steps; i++) {
        kl_cstep *s = &p->steps[i];
        kl_free(s->pre);
        kl_free(s->fe);
        kl_free(s->cp);
        if (s->conv) kc_conv_destroy(s->conv);
        if (s->gemm) kc_gemm_destroy(s->gemm);
        if (s->attn) kc_attn_destroy(s->attn);
    }
    kl_free(p->steps);
    kl_free(p->sdpa);
    kl_free(p->sdpa_q);
    kl_free(p->sdpa_k);
    kl_free(p->sdpa_scale);
    kl_free(p->sdpa_rh);
    kl_free(p->sdpa_rw);
    kl_free(p->resid);
    kl_free(p->resid_mm);
    kl_free(p->se);
    kl_free(p->se_fc1);
    kl_free(p->se_pool);
    kl_free(p->sefold);
    kl_free(p->sefold_conv);
    kl_free(p->sefold_mul);
    kl_free(p->sefold_x);
    kl_free(p->sefold_w);
    kl_free(p->side);
    kl_free(p->side_from);
    kl_free(p->side_join);
    kl_free(p->side_head);
    kl_free(p->side_len);
    for (size_t i = 0; i < p->n_allocs; i++) cudaFree(p->allocs[i]);
    kl_free(p->allocs);
    for (size_t i = 0; p->v && i < g->n_values; i++) kl_rt_unref(p->v[i].host);
    kl_free(p->v);
    for (size_t j = 0; j < g->n_inputs; j++)
        if (p->in_pin && p->in_pin[j]) cudaFreeHost(p->in_pin[j]);
    for (size_t j = 0; j < g->n_outputs; j++)
        if (p->out_pin && p->out_pin[j]) cudaFreeHost(p->out_pin[j]);
    kl_free(p->in_stage);
    kl_free(p->in_pin);
    kl_free(p->in_bytes);
    kl_free(p->out_stage);
    kl_free(p->out_pin);
    kl_free(p->out_bytes);
    if (p->have_sh) kl_shapes_free(&p->sh);
    if (p->have_mp) kl_mem_plan_free(&p->mp);
    kl_free(p);
}

static kiln_status kl_cp_alloc(kl_cplan *p, size_t bytes, void **out) {
    if (p->n_allocs == p->cap_allocs) {
        size_t cap = p->cap_allocs ? 2 * p->cap_allocs : 32;
        void **a = kl_realloc_array(p->allocs, cap, sizeof *a);
        if (!a) return KILN_ERR_NO_MEMORY;
        p->allocs = a;
        p->cap_allocs = cap;
    }
    void *d = NULL;
    KL_CU(cudaMalloc(&d, bytes ? bytes : 16));
    p->allocs[p->n_allocs++] = d;
    p->dev_bytes += bytes;
    *out = d;
    return KILN_OK;
}

static kiln_status kl_cp_step(kl_cplan *p, kl_cstep **out) {
    if (p->n_steps == p->cap_steps) {
        size_t cap = p->cap_steps ? 2 * p->cap_steps : 64;
        kl_cstep *a = kl_realloc_array(p->steps, cap, sizeof *a);
        if (!a) return KILN_ERR_NO_MEMORY;
        p->steps = a;
        p->cap_steps = cap;
    }
    kl_cstep *s = &p->steps[p->n_steps++];
    memset(s, 0, sizeof *s);
    *out = s;
    return KILN_OK;
}

/* ---- values --------------------------------------------------------------------------------- */

/* Device representation of dtype dt: float tensors as t (float16 when the
 * engine is fp16), other numeric types as their bytes.  False for what
 * cannot live on the device (strings, sub-byte types, bool is a byte: ok). */
static bool kl_cu_devtype(kiln_dtype dt, bool fp16, bool *isf, kc_dtype *t, size_t *esz) {
    *isf = false;
    *t = KC_F32;
    if (dt == KILN_DTYPE_FLOAT || dt == KILN_DTYPE_FLOAT16) {
        *isf = true;
        *t = (fp16 || dt == KILN_DTYPE_FLOAT16) ? KC_F16 : KC_F32;
        *esz = kc_dtype_size(*t);
        return true;
    }
    if (dt == KILN_DTYPE_STRING || dt == KILN_DTYPE_UNDEFINED) return false;
    size_t bits = kiln_dtype_bits(dt);
    if (bits < 8) return false;
    *esz = bits / 8;
    return true;
}

static void kl_cv_set_shape(kl_cval *cv, int rank, const int64_t *dims) {
    cv->known = rank >= 0;
    cv->rank = rank;
    cv->count = 1;
    for (int a = 0; a < rank; a++) {
        cv->dims[a] = dims[a];
        cv->count *= dims[a];
    }
}

/* Upload host tensor h (graph dtype) into device buffer d of value cv's
 * device type (float32 -> float16 on the device when needed). */
static kiln_status kl_cu_upload(kl_cuda_ctx *c, kl_cplan *p, const kl_rt *h, const kl_cval *cv, void *d) {
    if (!h->count) return KILN_OK;
    if (cv->isf && cv->t == KC_F16 && h->dtype == KILN_DTYPE_FLOAT) {
        void *tmp = NULL;
        KL_CU(cudaMalloc(&tmp, h->nbytes));
        cudaError_t e = cudaMemcpyAsync(tmp, h->data, h->nbytes, cudaMemcpyHostToDevice, c->st);
        if (e == cudaSuccess) e = kc_cast(d, KC_F16, tmp, KC_F32, h->count, c->st);
        if (e == cudaSuccess) e = cudaStreamSynchronize(c->st);
        cudaFree(tmp);
        if (e != cudaSuccess) return kl_cu_err(e, "upload (float32 -> float16)");
        return KILN_OK;
    }
    (void)p;
    KL_CU(cudaMemcpyAsync(d, h->data, h->nbytes, cudaMemcpyHostToDevice, c->st));
    KL_CU(cudaStreamSynchronize(c->st));
    return KILN_OK;
}

/* Device pointer of value id for a GPU step: its device memory, the
 * engine's copy of a constant (made on first use), or a per-plan upload of
 * a value computed on the host.  NULL with *why set when it has none. */
static kiln_status kl_cu_dev(kl_cuda_ctx *c, kl_cplan *p, const kl_value *v, const void **out) {
    kl_cval *cv = &p->v[v->id];
    if (cv->d) {
        *out = cv->d;
        return KILN_OK;
    }
    if (!cv->host) return kl_errorf(KILN_ERR_INTERNAL, "value '%s' is neither on the device nor on the host", v->name);
    if (!kl_cu_devtype(cv->host->dtype, c->ce->opt.fp16, &cv->isf, &cv->t, &cv->esz))
        return kl_errorf(KILN_ERR_UNSUPPORTED, "value '%s' has a type the device cannot hold", v->name);
    size_t bytes = (size_t)cv->host->count * cv->esz;
    if (v->flags & KL_VALUE_INITIALIZER) {
        kl_cuda_engine *ce = c->ce;
        pthread_mutex_lock(&ce->mu);
        kiln_status s = KILN_OK;
        if (!ce->cdev[v->id]) {
            void *d = NULL;
            cudaError_t e = cudaMalloc(&d, bytes ? bytes : 16);
            if (e != cudaSuccess) s = kl_cu_err(e, "cudaMalloc (constant)");
            if (!s) s = kl_cu_upload(c, p, cv->host, cv, d);
            if (s) cudaFree(d);
            else {
                ce->cdev[v->id] = d;
                ce->const_bytes += bytes;
            }
        }
        cv->d = ce->cdev[v->id];
        pthread_mutex_unlock(&ce->mu);
        if (s) return kl_error_context(s, "constant '%s': ", v->name);
    } else {
        void *d = NULL;
        KL_TRY(kl_cp_alloc(p, bytes, &d));
        KL_TRY(kl_cu_upload(c, p, cv->host, cv, d));
        cv->d = d;
    }
    *out = cv->d;
    return KILN_OK;
}

/* Dense row-major strides of dims. */
static void kl_dense_strides(int rank, const int64_t *dims, int64_t *st) {
    int64_t s = 1;
    for (int a = rank - 1; a >= 0; a--) {
        st[a] = s;
        s *= dims[a];
    }
}

/* Strides of value cv's memory over its logical dims (NHWC-aware). */
static void kl_value_strides(const kl_cval *cv, int64_t *st) {
    if (cv->cs && cv->rank == 4 && !cv->nhwc) { /* NCHW slab: the images are cs channels apart */
        int64_t h = cv->dims[2], w = cv->dims[3];
        st[0] = cv->cs * h * w;
        st[1] = h * w;
        st[2] = w;
        st[3] = 1;
        return;
    }
    if (cv->nhwc && cv->rank == 4) {
        int64_t c = cv->cs ? cv->cs : cv->dims[1], h = cv->dims[2], w = cv->dims[3];
        st[0] = h * w * c;
        st[1] = 1;
        st[2] = w * c;
        st[3] = c;
        return;
    }
    kl_dense_strides(cv->rank, cv->dims, st);
}

/* Strides of x broadcast (numpy) over y's dims; false if x does not
 * broadcast to y. */
static bool kl_bcast_strides(const kl_cval *x, int yrank, const int64_t *ydims, int64_t *st) {
    int64_t xs[KILN_MAX_RANK];
    if (x->rank > yrank) return false;
    kl_value_strides(x, xs);
    for (int a = 0; a < yrank; a++) {
        int xa = a - (yrank - x->rank);
        if (xa < 0) {
            st[a] = 0;
            continue;
        }
        if (x->dims[xa] == ydims[a]) st[a] = x->dims[xa] == 1 ? 0 : xs[xa];
        else if (x->dims[xa] == 1) st[a] = 0;
        else return false;
    }
    return true;
}

/* Read a host-known integer input (axes, pads, starts ...) of at most max values. */
static bool kl_host_ints(const kl_cplan *p, const kl_value *v, int64_t *out, int64_t max, int64_t *n) {
    if (!v) return false;
    const kl_cval *cv = &p->v[v->id];
    if (!cv->host || cv->host->count > max) return false;
    if (kl_rt_to_i64(cv->host, out, max, "ints") != KILN_OK) {
        kl_error_clear();
        return false;
    }
    *n = cv->host->count;
    return true;
}

static bool kl_host_float(const kl_cplan *p, const kl_value *v, float *out) {
    if (!v) return false;
    const kl_cval *cv = &p->v[v->id];
    if (!cv->host || cv->host->count != 1) return false;
    *out = (float)kl_rt_get_f64(cv->host, 0);
    return true;
}

/* ---- steps: one launch (or a few) per node ----------------------------------------------------- */

#define KL_FALLBACK(...)                          \
    do {                                          \
        snprintf(why, why_size, __VA_ARGS__);     \
        return KILN_ERR_UNSUPPORTED;              \
    } while (0)

/* A library algorithm recorded at build (engine or timing cache: algo >= 0)
 * that cannot be set up here is an error, not a silent run on the host CPU
 * (an im2col + 3xTF32 code read as kiln's implicit GEMM once ran ResNet-50
 * FP32 b32's 3x3 layers on the host: 6.4 ms -> 5.4 s per inference). */
#define KL_FALLBACK_OR_RECORDED(algo, what, msg)                                                                 \
    do {                                                                                                       \
        if ((algo) >= 0)                                                                                       \
            return kl_errorf(KILN_ERR_ENGINE_MISMATCH,                                                         \
                             "%s: algorithm %d recorded at build does not apply here (%s): rebuild the engine " \
                             "(and drop its timing cache)",                                                    \
                             what, (algo), msg);                                                               \
        KL_FALLBACK("%s: %s", what, msg);                                                                      \
    } while (0)

static bool kl_op_is(const kl_node *n, const char *op) { return strcmp(n->op_type, op) == 0; }

/* Nodes whose output is a view of input 0 on the device. */
static bool kl_cu_view_op(const kl_node *n) {
    if (n->domain[0]) return false;
    return kl_op_is(n, "Reshape") || kl_op_is(n, "Flatten") || kl_op_is(n, "Squeeze") || kl_op_is(n, "Unsqueeze") ||
           kl_op_is(n, "Identity") || kl_op_is(n, "Dropout");
}
/* A Slice of the last axis (step 1, constant bounds) read only by
 * kiln.Attention: the attention reads the columns in place (row stride =
 * the full width), as packed QKV projections are. */
static bool kl_const_i64(const kl_value *v, int64_t *out, int64_t max, int64_t *n) {
    if (!v || !(v->flags & KL_VALUE_INITIALIZER) || !v->init || v->init->count > max) return false;
    if (v->init->dtype != KILN_DTYPE_INT64 && v->init->dtype != KILN_DTYPE_INT32) return false;
    for (int64_t i = 0; i < v->init->count; i++)
        out[i] = v->init->dtype == KILN_DTYPE_INT64 ? ((const int64_t *)v->init->data)[i]
                                                   : ((const int32_t *)v->init->data)[i];
    *n = v->init->count;
    return true;
}

static bool kl_slice_view(const kl_node *n, int64_t *start) {
    if (n->domain[0] || strcmp(n->op_type, "Slice") != 0 || n->opset < 10 || n->n_outputs != 1 || !n->outputs[0])
        return false;
    const kl_value *x = n->inputs[0], *y = n->outputs[0];
    if (!x || x->type.shape.rank < 1 || !y->n_uses) return false;
    for (size_t u = 0; u < y->n_uses; u++) {
        const kl_node *c = y->uses[u].node;
        if (strcmp(c->domain, KL_KILN_DOMAIN) != 0 || strcmp(c->op_type, "Attention") != 0 || y->uses[u].input > 2)
            return false;
    }
    for (size_t k = 0; k < y->graph->n_outputs; k++)
        if (y->graph->outputs[k] == y) return false;
    int64_t st[1], en[1], ax[1] = {-1}, sp[1] = {1}, ns, ne, na = 1, nsp = 1;
    if (!kl_const_i64(n->n_inputs > 1 ? n->inputs[1] : NULL, st, 1, &ns) ||
        !kl_const_i64(n->n_inputs > 2 ? n->inputs[2] : NULL, en, 1, &ne) || ns != 1 || ne != 1)
        return false;
    if (n->n_inputs > 3 && n->inputs[3] && (!kl_const_i64(n->inputs[3], ax, 1, &na) || na != 1)) return false;
    if (n->n_inputs > 4 && n->inputs[4] && (!kl_const_i64(n->inputs[4], sp, 1, &nsp) || nsp != 1)) return false;
    int r = x->type.shape.rank;
    if (sp[0] != 1 || (ax[0] != -1 && ax[0] != r - 1) || st[0] < 0) return false;
    *start = st[0];
    return true;
}

/* Transposes (0, 2, 1) of a Reshape [N, C, H*W] of a 4-D value, the Reshape's only reader (a ViT's patch
 * embedding: Conv -> flatten(2) -> transpose(1, 2)).  In NHWC plans (kl_cu_tview_on, set for the memory
 * plan and read again by the node loop) they alias the 4-D value: its buffer already holds [N, H*W, C]
 * (two copies of the activations at batch 256 saved).  On by default since the twenty-eighth session
 * (KILN_CUDA_TVIEW=0 turns it off): H100, ViT-B/16 FP16, three alternating rounds, b256 19.38 against
 * 19.58 ms, b1 0.4605 against 0.4740; with the persistent LayerNorm too 19.03 and 0.4537
 * (bench/gpu/session28.md). */
static __thread bool kl_cu_tview_on;
static bool kl_cu_tview_transpose(const kl_node *n) {
    if (n->domain[0] || !kl_op_is(n, "Transpose") || n->n_inputs != 1 || n->n_outputs != 1 || !n->inputs[0] ||
        !n->outputs[0])
        return false;
    const int64_t *perm = NULL;
    if (kl_node_attr_ints(n, "perm", &perm) != 3 || perm[0] != 0 || perm[1] != 2 || perm[2] != 1) return false;
    const kl_value *r = n->inputs[0], *x;
    const kl_node *rs = r->producer;
    if (!rs || rs->domain[0] || !kl_op_is(rs, "Reshape") || rs->n_inputs < 1 || !(x = rs->inputs[0]) ||
        r->n_uses != 1)
        return false; /* (the ranks and dims are checked on the plan's shapes: kl_cu_tview_reshape) */
    for (size_t k = 0; k < r->graph->n_outputs; k++)
        if (r->graph->outputs[k] == r) return false;
    return true;
}

/* A Gather of one constant index (a scalar or a 1-element list) that is not a graph output: where the axes before
 * its axis have size 1 in a plan (a ViT's class token, x[:, 0], at batch 1, and the Gathers sink_gather moves up
 * from there), its output is the slice of a dense input at index * (the axes after it) elements, read in place
 * (kl_cplan_build); elsewhere it runs its kernel into a buffer of its own.  *index: the index as written
 * (negative counts from the end).  KILN_CUDA_GATHER_VIEW=0 turns the view off. */
static bool kl_gather_view(const kl_node *n, int64_t *index) {
    if (n->domain[0] || strcmp(n->op_type, "Gather") != 0 || n->n_inputs != 2 || n->n_outputs != 1 || !n->outputs[0] ||
        !n->inputs[0])
        return false;
    static int on = -1;
    if (on < 0) on = !(getenv("KILN_CUDA_GATHER_VIEW") && atoi(getenv("KILN_CUDA_GATHER_VIEW")) == 0);
    if (!on) return false;
    const kl_value *y = n->outputs[0];
    int64_t cnt = 0;
    if (!kl_const_i64(n->inputs[1], index, 1, &cnt) || cnt != 1 || n->inputs[1]->type.shape.rank > 1) return false;
    for (size_t k = 0; k < y->graph->n_outputs; k++)
        if (y->graph->outputs[k] == y) return false;
    return true;
}

static bool kl_cu_aliases(const kl_node *n) {
    int64_t st;
    return kl_cu_view_op(n) || kl_op_aliases(n) || kl_slice_view(n, &st) || kl_gather_view(n, &st) ||
           (kl_cu_tview_on && kl_cu_tview_transpose(n));
}

/* The Reshape r (output rv) of NHWC value xv read only by such a Transpose, on the GPU, all shapes as
 * the pattern says: rv becomes a tview of xv's buffer. */
static bool kl_cu_tview_reshape(const kl_cuda_engine *ce, const kl_node *r, const kl_cval *xv, const kl_cval *rv) {
    if (!kl_cu_tview_on || !r->outputs[0] || r->outputs[0]->n_uses != 1) return false;
    const kl_node *t = r->outputs[0]->uses[0].node;
    if (!kl_cu_tview_transpose(t) || !ce->on_gpu[t->index] || !t->outputs[0]) return false;
    return xv->rank == 4 && xv->nhwc && !xv->cs && !xv->ld && xv->d && rv->known && rv->rank == 3 &&
           rv->dims[0] == xv->dims[0] && rv->dims[1] == xv->dims[1] && rv->dims[2] == xv->dims[2] * xv->dims[3];
}

typedef struct kl_bctx {
    kl_cuda_ctx *c;
    kl_cplan *p;
    const kl_node *n;
    size_t idx;
    char *why;
    size_t why_size;
    kl_cstep *s;      /* the step being built (layout conversions attach to it) */
    kl_cval view[64]; /* inputs as the step reads them (after a layout conversion) */
    const kl_value *in0; /* read in place of input 0 (a folded SE block's convolution reads the Mul's x) */
} kl_bctx;

static kiln_status kl_pre_add(kl_cstep *s, kl_ccopy **out) {
    kl_ccopy *a = kl_realloc_array(s->pre, s->n_pre + 1, sizeof *a);
    if (!a) return KILN_ERR_NO_MEMORY;
    s->pre = a;
    *out = &a[s->n_pre++];
    memset(*out, 0, sizeof **out);
    return KILN_OK;
}

/* Value cv in layout `nhwc` for a reader: itself, or its copy in the other
 * layout (made once per plan, by the first step that needs it: a
 * conversion attached to step s).  4-D values with H*W == 1 are the same in
 * both layouts. */
static kiln_status kl_layout(kl_cplan *p, kl_cstep *s, kl_cval *cv, bool nhwc, const void **ptr) {
    if (cv->nhwc == nhwc || cv->rank != 4 || cv->dims[2] * cv->dims[3] == 1) {
        *ptr = cv->d;
        return KILN_OK;
    }
    if (!cv->alt) {
        KL_TRY(kl_cp_alloc(p, (size_t)cv->count * cv->esz, &cv->alt));
        kl_ccopy *c;
        KL_TRY(kl_pre_add(s, &c));
        c->rank = 4;
        memcpy(c->dims, cv->dims, 4 * sizeof cv->dims[0]);
        kl_value_strides(cv, c->xs);
        kl_cval other = *cv;
        other.nhwc = !cv->nhwc;
        other.cs = 0; /* the copy is dense */
        kl_value_strides(&other, c->ys);
        c->x = cv->d;
        c->y = cv->alt;
        c->esz = cv->esz;
    }
    *ptr = cv->alt;
    return KILN_OK;
}

/* Input k as a device float tensor of the step's type. */
/* Input k on the device.  layout: 0 = NCHW wanted (converted if stored
 * NHWC), 1 = NHWC wanted, -1 = as stored (the caller reads cv->nhwc). */
static kiln_status kl_in_lay(kl_bctx *b, size_t k, const void **ptr, const kl_cval **cv, int layout) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_value *v = k == 0 && b->in0 ? b->in0 : k < b->n->n_inputs ? b->n->inputs[k] : NULL;
    if (!v) KL_FALLBACK("input %zu is missing", k);
    KL_TRY(kl_cu_dev(b->c, b->p, v, ptr));
    kl_cval *x = &b->p->v[v->id];
    *cv = x;
    if (!x->known) KL_FALLBACK("input %zu ('%s') has an unknown shape", k, v->name);
    if (layout >= 0 && x->rank == 4 && x->nhwc != (layout == 1)) {
        if (k >= KL_ARRAY_LEN(b->view)) KL_FALLBACK("too many inputs in another layout");
        KL_TRY(kl_layout(b->p, b->s, x, layout == 1, ptr));
        b->view[k] = *x;
        b->view[k].nhwc = layout == 1;
        b->view[k].d = (void *)*ptr;
        b->view[k].cs = 0; /* the converted copy is dense */
        *cv = &b->view[k];
    }
    return KILN_OK;
}

static kiln_status kl_in_f_lay(kl_bctx *b, size_t k, const void **ptr, const kl_cval **cv, kc_dtype t, int layout) {
    char *why = b->why;
    size_t why_size = b->why_size;
    KL_TRY(kl_in_lay(b, k, ptr, cv, layout));
    if (!(*cv)->isf || (*cv)->t != t) KL_FALLBACK("input %zu is not of the layer's float type", k);
    return KILN_OK;
}

static kiln_status kl_in_f(kl_bctx *b, size_t k, const void **ptr, const kl_cval **cv, kc_dtype t) {
    return kl_in_f_lay(b, k, ptr, cv, t, 0);
}

static kiln_status kl_in_any(kl_bctx *b, size_t k, const void **ptr, const kl_cval **cv) {
    return kl_in_lay(b, k, ptr, cv, 0);
}

static const kl_value *kl_in(const kl_node *n, size_t k) { return k < n->n_inputs ? n->inputs[k] : NULL; }

static int kl_act_attr(const kl_node *n, float *a, float *b) {
    *a = kl_node_attr_float(n, "act_alpha", 0.f);
    *b = kl_node_attr_float(n, "act_beta", 0.f);
    return (int)kl_node_attr_int(n, "activation", 0);
}

/* Spatial padding of a conv/pool node: pads attribute or auto_pad. */
static void kl_spatial_pads(const kl_node *n, const kl_cval *x, const kl_cval *y, const int64_t *k, const int64_t *st,
                            const int64_t *dl, int64_t *pb, int64_t *pe) {
    const int64_t *pads = NULL;
    int64_t np = kl_node_attr_ints(n, "pads", &pads);
    const char *ap = kl_node_attr_string(n, "auto_pad", "NOTSET");
    for (int a = 0; a < 2; a++) {
        pb[a] = np == 4 ? pads[a] : 0;
        pe[a] = np == 4 ? pads[a + 2] : 0;
        if (strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0) {
            int64_t total = (y->dims[2 + a] - 1) * st[a] + (k[a] - 1) * dl[a] + 1 - x->dims[2 + a];
            if (total < 0) total = 0;
            pb[a] = strcmp(ap, "SAME_UPPER") == 0 ? total / 2 : total - total / 2;
            pe[a] = total - pb[a];
        } else if (strcmp(ap, "VALID") == 0) {
            pb[a] = pe[a] = 0;
        }
    }
}

static void kl_attr2(const kl_node *n, const char *name, int64_t dflt, int64_t *out) {
    const int64_t *v = NULL;
    int64_t k = kl_node_attr_ints(n, name, &v);
    out[0] = k >= 1 ? v[0] : dflt;
    out[1] = k >= 2 ? v[1] : out[0];
}

/* The algorithm the build chose for this node, when the plan is for the
 * shapes it was chosen at; -1: time the candidates now. */
static int kl_cu_algo(const kl_bctx *b) {
    const kl_cuda_engine *ce = b->c->ce;
    if (!ce->algo || ce->algo_key_len != b->p->key_len ||
        memcmp(ce->algo_key, b->p->key, b->p->key_len * sizeof b->p->key[0]) != 0)
        return -1;
    return ce->algo[b->idx];
}

/* The flash-attention tiling of an attention step (kc_attn_desc.flash_variant):
 * the engine's record, else timed at create (-1) when KILN_CUDA_FA_TIME=1,
 * else the kernel's default (timing is opt-in: on an H100 the other tilings
 * did not beat it, and a timed engine ran ViT-B/16 b1 0.494 ms against 0.487). */
static int kl_cu_flash_variant(const kl_bctx *b) {
    const int algo = kl_cu_algo(b);
    if (algo >= KC_FLASH_ONE_MTILE && algo <= KC_FLASH_LAST) return algo;
    const char *e = getenv("KILN_CUDA_FA_TIME");
    return e && e[0] == '1' && !e[1] ? -1 : 0;
}

/* A rearranged copy of constant weights, the engine's, made on first use
 * into *slot (under the engine's lock): `bytes` on the device (zeroed first
 * when `zero`), then src copied by kc_copy_nd (dims, source and destination
 * strides); `what` names it in an error. */
static kiln_status kl_cu_weights_copy(kl_cuda_ctx *c, void **slot, size_t bytes, bool zero, const void *src,
                                      const int64_t *xs, const int64_t *ys, const int64_t *dims, int rank, size_t esz,
                                      const char *what, const void **out) {
    kl_cuda_engine *ce = c->ce;
    pthread_mutex_lock(&ce->mu);
    kiln_status s = KILN_OK;
    if (!*slot) {
        void *d = NULL;
        cudaError_t e = cudaMalloc(&d, bytes ? bytes : 16);
        if (e == cudaSuccess && zero) e = cudaMemsetAsync(d, 0, bytes, c->st);
        if (e == cudaSuccess) e = kc_copy_nd(d, ys, src, xs, dims, rank, esz, c->st);
        if (e == cudaSuccess) e = cudaStreamSynchronize(c->st);
        if (e != cudaSuccess) {
            s = kl_cu_err(e, what);
            cudaFree(d);
        } else {
            *slot = d;
            ce->const_bytes += bytes;
        }
    }
    *out = *slot;
    pthread_mutex_unlock(&ce->mu);
    return s;
}

/* Conv weights [K,C,R,S] as [K,R,S,C] for NHWC convolutions (channels
 * zero-padded to cpad when it is not 0): the engine's copy. */
static kiln_status kl_cu_weights_krsc_pad(kl_cuda_ctx *c, const kl_value *v, const kl_cval *w, const void *kcrs,
                                          int64_t cpad, const void **out) {
    kl_cuda_engine *ce = c->ce;
    int64_t cc = cpad ? cpad : w->dims[1];
    size_t bytes = (size_t)(w->dims[0] * w->dims[2] * w->dims[3] * cc) * w->esz;
    int64_t dims[4] = {w->dims[0], w->dims[2], w->dims[3], w->dims[1]}; /* K R S C */
    int64_t xs[4] = {w->dims[1] * w->dims[2] * w->dims[3], w->dims[3], 1, w->dims[2] * w->dims[3]};
    int64_t ys[4] = {w->dims[2] * w->dims[3] * cc, w->dims[3] * cc, cc, 1};
    return kl_cu_weights_copy(c, cpad ? &ce->cdev_krsc8[v->id] : &ce->cdev_krsc[v->id], bytes, cpad != 0, kcrs, xs,
                              ys, dims, 4, w->esz, "conv weights to [K,R,S,C]", out);
}

/* Depthwise filters [C,1,R,S] as [R,S,C] (tap-major): the engine's copy. */
static kiln_status kl_cu_weights_rsc(kl_cuda_ctx *c, const kl_value *v, const kl_cval *w, const void *kcrs,
                                     const void **out) {
    int64_t cc = w->dims[0], r = w->dims[2], sz = w->dims[3];
    int64_t dims[3] = {r, sz, cc};
    int64_t xs[3] = {sz, 1, r * sz};
    int64_t ys[3] = {sz * cc, cc, 1};
    return kl_cu_weights_copy(c, &c->ce->cdev_rsc[v->id], (size_t)(cc * r * sz) * w->esz, false, kcrs, xs, ys, dims,
                              3, w->esz, "depthwise weights to [R,S,C]", out);
}

/* Value cv as NHWC with its channels zero-padded to cpad (made once per
 * plan by a conversion attached to step s; the padding is zeroed once). */
static kiln_status kl_layout_padc(kl_cuda_ctx *c, kl_cplan *p, kl_cstep *s, kl_cval *cv, int64_t cpad, const void **ptr) {
    if (!cv->padc) {
        size_t bytes = (size_t)(cv->dims[0] * cv->dims[2] * cv->dims[3] * cpad) * cv->esz;
        KL_TRY(kl_cp_alloc(p, bytes, &cv->padc));
        KL_CU(cudaMemsetAsync(cv->padc, 0, bytes, c->st));
        kl_ccopy *cp;
        KL_TRY(kl_pre_add(s, &cp));
        cp->rank = 4;
        memcpy(cp->dims, cv->dims, 4 * sizeof cv->dims[0]);
        kl_value_strides(cv, cp->xs);
        int64_t h = cv->dims[2], w = cv->dims[3];
        cp->ys[0] = h * w * cpad;
        cp->ys[1] = 1;
        cp->ys[2] = w * cpad;
        cp->ys[3] = cpad;
        cp->x = cv->d;
        cp->y = cv->padc;
        cp->esz = cv->esz;
    }
    *ptr = cv->padc;
    return KILN_OK;
}

static kiln_status kl_gemm_step(kl_bctx *b, kl_cstep *s, kc_gemm_desc *d, const void *a, const void *bm,
                                const void *bias, const void *z);

/* Conv with kernel == stride and no padding as patches x weights^T: one
 * pre-copy gathers X (either layout) into P [N, OH, OW, C, R, S], then
 * Y[N*OH*OW, K] = P W[K, C*R*S]^T + bias (+ residual), stored NHWC. */
static kiln_status kl_b_patch_gemm(kl_bctx *b, kl_cstep *s, kl_cval *y, kc_dtype t, const int64_t *k) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    const kl_cval *x, *w, *bias = NULL, *z = NULL;
    const void *xp, *wp, *bp = NULL, *zp = NULL;
    KL_TRY(kl_in_f_lay(b, 0, &xp, &x, t, -1));
    KL_TRY(kl_in_f(b, 1, &wp, &w, t));
    if (kl_in(n, 2)) KL_TRY(kl_in_f(b, 2, &bp, &bias, t));
    if (kl_in(n, 3)) KL_TRY(kl_in_f_lay(b, 3, &zp, &z, t, 1));
    int64_t N = x->dims[0], C = x->dims[1], OH = y->dims[2], OW = y->dims[3], K = w->dims[0];
    if (bias && bias->count != K) KL_FALLBACK("bias has %lld values for %lld channels", (long long)bias->count, (long long)K);
    if (z && z->count != y->count) KL_FALLBACK("residual input does not have the output's shape");
    int64_t xs[4];
    kl_value_strides(x, xs);
    void *pbuf = NULL;
    size_t bytes = (size_t)(N * OH * OW * C * k[0] * k[1]) * x->esz;
    KL_TRY(kl_cp_alloc(b->p, bytes, &pbuf));
    kl_ccopy *c;
    KL_TRY(kl_pre_add(s, &c));
    c->rank = 6;
    int64_t pd[6] = {N, OH, OW, C, k[0], k[1]};
    int64_t ps[6] = {xs[0], k[0] * xs[2], k[1] * xs[3], xs[1], xs[2], xs[3]};
    memcpy(c->dims, pd, sizeof pd);
    memcpy(c->xs, ps, sizeof ps);
    kl_dense_strides(6, pd, c->ys);
    c->x = xp;
    c->y = pbuf;
    c->esz = x->esz;
    kc_gemm_desc gd = {0};
    gd.t = t;
    gd.m = N * OH * OW;
    gd.n = K;
    gd.k = C * k[0] * k[1];
    gd.trans_b = true;
    gd.lda = gd.k;
    gd.ldb = gd.k;
    gd.ldy = K;
    gd.batch = 1;
    gd.alpha = 1.f;
    gd.beta = zp ? 1.f : 0.f;
    gd.has_bias = bp != NULL;
    gd.has_z = zp != NULL;
    gd.act = strcmp(n->domain, KL_KILN_DOMAIN) == 0 ? kl_act_attr(n, &gd.act_alpha, &gd.act_beta) : 0;
    KL_TRY(kl_gemm_step(b, s, &gd, pbuf, wp, bp, zp));
    y->nhwc = true;
    return KILN_OK;
}

/* A stride-2 convolution of a <= 4-channel input (the stems: ResNet's 7x7,
 * YOLO's 3x3) as space-to-depth: with P = the begin pad rounded up to even
 * and sh = P - pad, S[n,i,j,(r2,s2,c)] = Xp[n, 2i+r2, 2j+s2, c] where Xp is
 * x zero-padded by P (channels to 4), and W'[k,a,b,(r2,s2,c)] =
 * w[k,c,2a+r2-sh,2b+s2-sw]; then y = conv(S, W') with stride 1 and no
 * padding over 16 channels, a shape tensor cores run well (cuDNN took 1.5
 * ms for ResNet-50's stem at batch 256 with 8 padded channels).  S is made
 * in one pass per run (kc_s2d_pack; two copies through a zeroed Xp took
 * 298 us at batch 256). */
static kiln_status kl_b_s2d_conv(kl_bctx *b, kl_cstep *s, kl_cval *y, kc_dtype t, const int64_t *pb) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    const kl_cval *x, *w, *bias = NULL, *z = NULL;
    const void *xp, *wp, *bp = NULL, *zp = NULL;
    KL_TRY(kl_in_f_lay(b, 0, &xp, &x, t, -1));
    KL_TRY(kl_in_f(b, 1, &wp, &w, t));
    if (kl_in(n, 2)) KL_TRY(kl_in_f(b, 2, &bp, &bias, t));
    if (kl_in(n, 3)) KL_TRY(kl_in_f_lay(b, 3, &zp, &z, t, 1));
    const kl_value *wv = kl_in(n, 1);
    const kl_rt *wh = b->p->v[wv->id].host;
    if (!wh || wh->dtype != KILN_DTYPE_FLOAT) KL_FALLBACK("weights are not float32 on the host");
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    int64_t K = w->dims[0], R[2] = {w->dims[2], w->dims[3]}, O[2] = {y->dims[2], y->dims[3]};
    int64_t P[2], sh[2], Rp[2], Hs[2];
    for (int a = 0; a < 2; a++) {
        P[a] = pb[a] + (pb[a] & 1);
        sh[a] = P[a] - pb[a];
        Rp[a] = (R[a] + sh[a] + 1) / 2;
        Hs[a] = O[a] + Rp[a] - 1;
    }
    if (bias && bias->count != K) KL_FALLBACK("bias has %lld values for %lld channels", (long long)bias->count, (long long)K);
    if (z && z->count != y->count) KL_FALLBACK("residual input does not have the output's shape");
    size_t esz = x->esz;
    void *sbuf = NULL;
    KL_TRY(kl_cp_alloc(b->p, (size_t)(N * Hs[0] * Hs[1] * 16) * esz, &sbuf));
    if (H <= 0 || W <= 0 || P[0] >= 2 * Hs[0] || P[1] >= 2 * Hs[1])
        KL_FALLBACK("the output reads none of the input");
    kl_ccopy *c1;
    KL_TRY(kl_pre_add(s, &c1));
    c1->s2d = true;
    c1->x = xp;
    c1->y = sbuf;
    c1->esz = esz;
    kc_s2d sd = {N, C, H, W, Hs[0], Hs[1], P[0], P[1], {0, 0, 0, 0}};
    kl_value_strides(x, sd.xs); /* over n, c, h, w */
    c1->sd = sd;
    /* the rearranged weights, once per engine */
    kl_cuda_engine *ce = b->c->ce;
    pthread_mutex_lock(&ce->mu);
    kiln_status st = KILN_OK;
    if (!ce->cdev_s2d[wv->id]) {
        size_t cnt = (size_t)(K * Rp[0] * Rp[1] * 16);
        float *f = kl_calloc(cnt ? cnt : 1, sizeof *f);
        uint16_t *hbuf = kl_malloc((cnt ? cnt : 1) * 2);
        void *d = NULL;
        const float *src = wh->data;
        if (!f || !hbuf) st = KILN_ERR_NO_MEMORY;
        for (int64_t k = 0; !st && k < K; k++)
            for (int64_t a0 = 0; a0 < Rp[0]; a0++)
                for (int64_t a1 = 0; a1 < Rp[1]; a1++)
                    for (int r2 = 0; r2 < 2; r2++)
                        for (int s2 = 0; s2 < 2; s2++)
                            for (int64_t c = 0; c < C; c++) {
                                int64_t kr = 2 * a0 + r2 - sh[0], ks = 2 * a1 + s2 - sh[1];
                                if (kr < 0 || kr >= R[0] || ks < 0 || ks >= R[1]) continue;
                                f[((k * Rp[0] + a0) * Rp[1] + a1) * 16 + (r2 * 2 + s2) * 4 + c] =
                                    src[((k * C + c) * R[0] + kr) * R[1] + ks];
                            }
        size_t bytes = cnt * esz;
        if (!st) {
            const void *up = f;
            if (esz == 2) {
                for (size_t i = 0; i < cnt; i++) hbuf[i] = kl_f32_to_f16(f[i]);
                up = hbuf;
            }
            cudaError_t e = cudaMalloc(&d, bytes ? bytes : 16);
            if (e == cudaSuccess) e = cudaMemcpy(d, up, bytes, cudaMemcpyHostToDevice);
            if (e != cudaSuccess) {
                st = kl_cu_err(e, "stem weights for space-to-depth");
                cudaFree(d);
            } else {
                ce->cdev_s2d[wv->id] = d;
                ce->const_bytes += bytes;
            }
        }
        kl_free(f);
        kl_free(hbuf);
    }
    const void *wt = ce->cdev_s2d[wv->id];
    pthread_mutex_unlock(&ce->mu);
    KL_TRY(st);
    (void)wp;
    kc_conv_desc d = {0};
    d.t = t;
    d.n = N;
    d.c = 16;
    d.h = Hs[0];
    d.w = Hs[1];
    d.k = K;
    d.r = Rp[0];
    d.s = Rp[1];
    d.oh = O[0];
    d.ow = O[1];
    d.stride_h = d.stride_w = d.dil_h = d.dil_w = 1;
    d.groups = 1;
    d.act = strcmp(n->domain, KL_KILN_DOMAIN) == 0 ? kl_act_attr(n, &d.act_alpha, &d.act_beta) : 0;
    d.has_bias = bp != NULL;
    d.has_z = zp != NULL;
    d.allow_tf32 = ce->opt.tf32;
    d.nhwc = 1;
    char msg[256] = "";
    const int algo = kl_cu_algo(b);
    if (kc_conv_create(b->c->dnn, &d, algo, ce->opt.workspace, &s->conv, msg, sizeof msg))
        KL_FALLBACK_OR_RECORDED(algo, "cudnn (space-to-depth stem)", msg);
    y->nhwc = true;
    s->kind = K_CONV;
    s->x[0] = sbuf;
    s->x[1] = wt;
    s->x[2] = bp;
    s->x[3] = zp;
    return KILN_OK;
}

static kiln_status kl_cu_densify(kl_cplan *p, size_t i, kl_cval *cv, kl_cstep *pre);

/* A convolution's recorded algorithm plus this ran on dense copies of its
 * channel slabs (timed faster so, copies included).  Within the engine's
 * algorithm codes (0..KL_CUDA_ALGO_MAX, checked at load). */
#define KL_CU_ALGO_DENSE 50000
_Static_assert(KC_CONV_ALGO_IGEMM + KC_IGEMM_CFGS <= KL_CU_ALGO_DENSE &&
                   2 * KL_CU_ALGO_DENSE - 1 <= KL_CUDA_ALGO_MAX,
               "dense-slab algorithm codes overlap or pass KL_CUDA_ALGO_MAX");

/* Node b->n's convolution off its channel slabs: x and z read from dense
 * copies (conversions on step s), y to a buffer of its own (its Concat
 * copies it); *x and *z become dense views. */
static kiln_status kl_conv_unslab(kl_bctx *b, kl_cstep *s, kl_cval *y, const kl_cval **x, const void **xp,
                                  const kl_cval **z, const void **zp) {
    kl_cplan *p = b->p;
    const kl_node *n = b->n;
    if (y->cs) {
        y->cs = 0;
        KL_TRY(kl_cp_alloc(p, (size_t)y->count * y->esz, &y->d));
        s->y = y->d;
    }
    if ((*x)->cs) {
        kl_cval *xv = &p->v[(b->in0 ? b->in0 : n->inputs[0])->id];
        KL_TRY(kl_cu_densify(p, b->idx, xv, s));
        b->view[0] = **x;
        b->view[0].cs = 0;
        b->view[0].d = xv->dn;
        *x = &b->view[0];
        *xp = xv->dn;
    }
    if (*z && (*z)->cs) {
        kl_cval *zv = &p->v[n->inputs[3]->id];
        KL_TRY(kl_cu_densify(p, b->idx, zv, s));
        b->view[3] = **z;
        b->view[3].cs = 0;
        b->view[3].d = zv->dn;
        *z = &b->view[3];
        *zp = zv->dn;
    }
    return KILN_OK;
}

static kiln_status kl_b_conv(kl_bctx *b, kl_cstep *s, kl_cval *y, kc_dtype t) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    const kl_cval *x, *w, *bias = NULL, *z = NULL;
    const void *xp, *wp, *bp = NULL, *zp = NULL;
    int lay = b->p->nhwc ? 1 : 0;
    /* Tensor cores want NHWC channels in multiples of 8 (float16) or 4
     * (float32: kiln's 3xTF32 implicit GEMM, cuDNN's NHWC float32 kernels
     * being slow): a 3-channel stem reads a zero-padded copy of its input
     * with zero-padded weights. */
    const kl_cval *x0 = kl_in(n, 0) ? &b->p->v[n->inputs[0]->id] : NULL;
    int64_t cpad = 0;
    const int64_t cq = t == KC_F16 ? 8 : 4;
    if (lay && x0 && x0->known && x0->rank == 4 && x0->dims[1] % cq != 0 && x0->dims[1] < 64 &&
        kl_node_attr_int(n, "group", 1) == 1 && (t == KC_F16 || x0->dims[1] < 4))
        cpad = (x0->dims[1] + cq - 1) / cq * cq;
    /* A patch embedding (kernel == stride, no padding or dilation: ViT's
     * and SAM's 16x16/16) is a permutation of the input into patches
     * [N*OH*OW, C*R*S] and one GEMM with the plain [K, C*R*S] weights
     * (cuDNN took 1.9 ms for ViT-B/16's at batch 256, 6.6% of the model). */
    const kl_cval *w0 = kl_in(n, 1) ? &b->p->v[n->inputs[1]->id] : NULL;
    if (lay && t == KC_F16 && x0 && x0->known && x0->rank == 4 && !x0->cs && !y->cs && x0->dims[1] <= 4 && w0 && w0->known &&
        w0->rank == 4 && w0->dims[1] == x0->dims[1] && w0->host && w0->dims[2] >= 2 && w0->dims[3] >= 2 && y->known &&
        y->rank == 4 && kl_node_attr_int(n, "group", 1) == 1 && !getenv("KILN_CUDA_NO_S2D")) {
        int64_t sst[2], sdl[2], spb[2], spe[2], sk[2] = {w0->dims[2], w0->dims[3]};
        kl_attr2(n, "strides", 1, sst);
        kl_attr2(n, "dilations", 1, sdl);
        kl_spatial_pads(n, x0, y, sk, sst, sdl, spb, spe);
        if (sst[0] == 2 && sst[1] == 2 && sdl[0] == 1 && sdl[1] == 1 && spb[0] >= 0 && spb[1] >= 0)
            return kl_b_s2d_conv(b, s, y, t, spb);
    }
    if (lay && x0 && x0->known && x0->rank == 4 && !x0->cs && !y->cs && w0 && w0->known && w0->rank == 4 && y->known &&
        y->rank == 4 && kl_node_attr_int(n, "group", 1) == 1 && !getenv("KILN_CUDA_NO_PATCH_GEMM")) {
        int64_t pst[2], pdl[2], ppb[2], ppe[2], pk[2] = {w0->dims[2], w0->dims[3]};
        kl_attr2(n, "strides", 1, pst);
        kl_attr2(n, "dilations", 1, pdl);
        kl_spatial_pads(n, x0, y, pk, pst, pdl, ppb, ppe);
        if (pk[0] == pst[0] && pk[1] == pst[1] && pk[0] * pk[1] > 1 && pdl[0] == 1 && pdl[1] == 1 && !ppb[0] &&
            !ppb[1] && !ppe[0] && !ppe[1] && y->dims[2] == x0->dims[2] / pk[0] && y->dims[3] == x0->dims[3] / pk[1] &&
            w0->dims[1] == x0->dims[1])
            return kl_b_patch_gemm(b, s, y, t, pk);
    }
    KL_TRY(kl_in_f_lay(b, 0, &xp, &x, t, cpad ? -1 : lay));
    /* channel slabs (a joined Concat's inputs and readers): the planner
     * hands them only to convolutions this path runs (kl_cu_conv_slab) */
    if (cpad && (x->cs || y->cs)) KL_FALLBACK("a channel slab on a padded-channel convolution");
    if (cpad) KL_TRY(kl_layout_padc(b->c, b->p, b->s, (kl_cval *)&b->p->v[n->inputs[0]->id], cpad, &xp));
    KL_TRY(kl_in_f(b, 1, &wp, &w, t));
    if (kl_in(n, 2)) KL_TRY(kl_in_f(b, 2, &bp, &bias, t));
    if (kl_in(n, 3)) KL_TRY(kl_in_f_lay(b, 3, &zp, &z, t, lay));
    if (x->rank != 4 || w->rank != 4 || y->rank != 4) KL_FALLBACK("not a 2-D convolution");
    const void *w_kcrs = wp;
    if (lay) KL_TRY(kl_cu_weights_krsc_pad(b->c, kl_in(n, 1), w, wp, cpad, &wp));
    /* a folded SE block's scale: the weights it scales (1x1: [K, C] in either layout) */
    void *wfold = b->p->sefold && b->p->sefold[b->idx] == 4 ? b->p->sefold_w[b->idx] : NULL;
    if (wfold) wp = wfold;
    /* past batch 1 the folded weights are per image: only the batched product takes them */
    const bool fold_batch = wfold && x->dims[0] > 1;
    if (wfold && (x->cs || y->cs || (z && z->cs))) KL_FALLBACK("a channel slab on a convolution with folded weights");
    int64_t ks[2] = {w->dims[2], w->dims[3]}, st[2], dl[2], pb[2], pe[2];
    kl_attr2(n, "strides", 1, st);
    kl_attr2(n, "dilations", 1, dl);
    kl_spatial_pads(n, x, y, ks, st, dl, pb, pe);
    kc_conv_desc d = {0};
    d.t = t;
    d.n = x->dims[0];
    d.c = x->dims[1];
    d.h = x->dims[2];
    d.w = x->dims[3];
    d.k = w->dims[0];
    d.r = ks[0];
    d.s = ks[1];
    d.oh = y->dims[2];
    d.ow = y->dims[3];
    d.pad_t = (int)pb[0];
    d.pad_l = (int)pb[1];
    d.pad_b = (int)pe[0];
    d.pad_r = (int)pe[1];
    d.stride_h = (int)st[0];
    d.stride_w = (int)st[1];
    d.dil_h = (int)dl[0];
    d.dil_w = (int)dl[1];
    d.groups = (int)kl_node_attr_int(n, "group", 1);
    d.act = strcmp(n->domain, KL_KILN_DOMAIN) == 0 ? kl_act_attr(n, &d.act_alpha, &d.act_beta) : 0;
    d.has_bias = bp != NULL;
    d.has_z = zp != NULL;
    if (bias && bias->count != d.k) KL_FALLBACK("bias has %lld values for %lld channels", (long long)bias->count, (long long)d.k);
    if (z && z->count != y->count) KL_FALLBACK("residual input does not have the output's shape");
    d.allow_tf32 = b->c->ce->opt.tf32;
    d.no_igemm = b->c->ce->opt.no_own_conv;
    d.nhwc = lay;
    if (cpad) d.c = cpad;
    /* depthwise float16 NHWC: the filters tap-major too, for kiln's kernel that reads them there */
    const void *w_taps = NULL;
    if (lay && t == KC_F16 && d.groups == d.c && d.k == d.c && w->dims[1] == 1 && !x->cs && !y->cs &&
        !(z && z->cs)) {
        kc_dwconv pq = {.n = d.n, .h = d.h, .w = d.w, .c = d.c, .oh = d.oh, .ow = d.ow, .r = (int)d.r, .s = (int)d.s};
        if (kc_dwconv_taps_ok(&pq, t)) {
            KL_TRY(kl_cu_weights_rsc(b->c, kl_in(n, 1), w, w_kcrs, &w_taps));
            d.dw_taps = true;
        }
    }
    const int algo_rec = kl_cu_algo(b);
    if ((x->cs || y->cs || (z && z->cs)) && algo_rec >= KL_CU_ALGO_DENSE) {
        KL_TRY(kl_conv_unslab(b, s, y, &x, &xp, &z, &zp));
        s->unslab = true;
    }
    d.x_ch = x->cs;
    d.y_ch = y->cs;
    d.z_ch = z ? z->cs : 0;
    if ((x->cs && x->nhwc != (lay == 1)) || (y->cs && y->nhwc != (lay == 1)) || (z && z->cs && z->nhwc != (lay == 1)))
        KL_FALLBACK("a channel slab in the other layout");
    const bool slab = x->cs || y->cs || (z && z->cs);
    /* bytes the copies of the slabs would move (read and write), were the convolution run on dense copies */
    double slab_bytes = 2.0 * (double)y->esz *
                        (double)((x->cs ? x->count : 0) + (y->cs ? y->count : 0) + (z && z->cs ? z->count : 0));
    char msg[256] = "";
    bool gemm_failed = false;
    const int algo = algo_rec >= KL_CU_ALGO_DENSE ? algo_rec - KL_CU_ALGO_DENSE : algo_rec;
    const bool own = (algo >= KC_CONV_ALGO_IGEMM && algo < KC_CONV_ALGO_IGEMM + KC_IGEMM_CFGS) || algo == KC_CONV_ALGO_PW;
    /* A 1x1, stride-1, unpadded NHWC convolution is a GEMM: Y[NHW, K] =
     * X[NHW, C] W[K, C]^T + bias (+ residual), activation in cuBLASLt's
     * epilogue (cuDNN picked slow kernels for these at batch 1).  In
     * float16 kiln's implicit-GEMM kernel is timed against that product: it
     * fuses activations cuBLASLt has no epilogue for (SiLU). */
    /* (a slab: rows x->cs / y->cs apart; the residual must share y's row stride) */
    const int64_t g_lda = x->cs ? x->cs : d.c, g_ldy = y->cs ? y->cs : d.k;
    if (lay && !cpad && !own && d.r == 1 && d.s == 1 && d.stride_h == 1 && d.stride_w == 1 && !d.pad_t &&
        !d.pad_l && !d.pad_b && !d.pad_r && d.groups == 1 && d.oh == d.h && d.ow == d.w &&
        (!z || (z->cs ? z->cs : d.k) == g_ldy) && !getenv("KILN_CUDA_NO_GEMM_CONV")) {
        kc_gemm_desc gd = {0};
        gd.t = t;
        gd.m = d.n * d.h * d.w;
        gd.n = d.k;
        gd.k = d.c;
        gd.trans_b = true;
        gd.lda = g_lda;
        gd.ldb = d.c;
        gd.ldy = g_ldy;
        gd.batch = 1;
        if (fold_batch) { /* image i: its pixels [H*W, C] x its weights [K, C]^T */
            gd.m = d.h * d.w;
            gd.batch = d.n;
            gd.stride_a = d.h * d.w * d.c;
            gd.stride_b = d.k * d.c;
            gd.stride_y = d.h * d.w * d.k;
        }
        gd.alpha = 1.f;
        gd.beta = zp ? 1.f : 0.f;
        gd.has_bias = bp != NULL;
        gd.has_z = zp != NULL;
        gd.act = d.act;
        gd.act_alpha = d.act_alpha;
        gd.act_beta = d.act_beta;
        gd.allow_tf32 = d.allow_tf32;
        const void *w_kc = NULL; /* [K,C,1,1] is [K,C]: the plain weights */
        KL_TRY(kl_in_f(b, 1, &w_kc, &w, t));
        if (wfold) w_kc = wfold;
        if (kc_gemm_create(b->c->dnn, &gd, algo, b->c->ce->opt.workspace, &s->gemm, msg, sizeof msg) == 0) {
            /* timed only where cuBLASLt has no epilogue for the activation
             * (SiLU, clip, ...: kc_conv_create refuses the others); when it
             * wins, the conv step below runs it (wp, [K,1,1,C], holds w_kc's values) */
            kc_conv *ig = NULL;
            char igmsg[256] = "";
            bool ig_ok = algo < 0 && t == KC_F16 && !fold_batch &&
                         kc_conv_create(b->c->dnn, &d, KC_CONV_TUNE_IGEMM, 0, &ig, igmsg, sizeof igmsg) == 0;
            if (algo < 0 && t == KC_F16 && !fold_batch) {
                if (ig_ok)
                    kl_log(KILN_LOG_DEBUG, "node '%s': 1x1 as a cuBLASLt product %.4f ms, implicit GEMM %.4f ms",
                           kl_node_label(n), kc_gemm_time_ms(s->gemm), kc_conv_time_ms(ig));
                else
                    kl_log(KILN_LOG_DEBUG, "node '%s': 1x1 as a cuBLASLt product %.4f ms, implicit GEMM not timed (%s)",
                           kl_node_label(n), kc_gemm_time_ms(s->gemm), igmsg);
            }
            if (ig_ok && kc_conv_time_ms(ig) < kc_gemm_time_ms(s->gemm)) {
                kc_gemm_destroy(s->gemm);
                s->gemm = NULL;
                s->conv = ig;
            } else {
                kc_conv_destroy(ig);
                y->nhwc = true;
                s->kind = K_GEMM;
                s->x[0] = xp;
                s->x[1] = w_kc;
                s->x[2] = bp;
                s->x[3] = zp;
                return KILN_OK;
            }
        } else {
            s->gemm = NULL;
            msg[0] = 0;
            gemm_failed = true;
        }
    }
    if (fold_batch)
        return kl_errorf(KILN_ERR_INTERNAL,
                         "the SE scale folded into per-image weights needs the batched product (%s; "
                         "KILN_CUDA_NO_SE_FOLD_BATCH=1 turns the fold off past batch 1)",
                         msg[0] ? msg : "a 1x1 NHWC convolution as a cuBLASLt product was not set up");
    const int calgo = gemm_failed ? -1 : algo;
    if (!s->conv && slab && calgo < 0 && !getenv("KILN_CUDA_SLABS_UNTIMED")) {
        /* time it on the slabs and on dense copies (the copies' traffic at 2.5 TB/s and 2 us a copy added):
         * slabs rule out cuDNN's NHWC float16 kernels and im2col, and may cost more than the copies save */
        kc_conv_desc dd = d;
        dd.x_ch = dd.y_ch = dd.z_ch = 0;
        kc_conv *cs_ = NULL, *cd_ = NULL;
        char m2[256] = "";
        int rs = kc_conv_create(b->c->dnn, &d, -1, b->c->ce->opt.workspace, &cs_, msg, sizeof msg);
        int rd = kc_conv_create(b->c->dnn, &dd, -1, b->c->ce->opt.workspace, &cd_, m2, sizeof m2);
        int n_copies = (x->cs != 0) + (y->cs != 0) + (z && z->cs);
        double copies_ms = slab_bytes / 2.5e12 * 1e3 + 0.002 * n_copies;
        if (!rs && (rd || kc_conv_time_ms(cs_) <= kc_conv_time_ms(cd_) + copies_ms)) {
            s->conv = cs_;
            kc_conv_destroy(cd_);
        } else if (!rd) {
            kc_conv_destroy(cs_);
            KL_TRY(kl_conv_unslab(b, s, y, &x, &xp, &z, &zp));
            s->conv = cd_;
            s->unslab = true;
        } else {
            KL_FALLBACK("cudnn: %s", msg);
        }
    }
    if (!s->conv && kc_conv_create(b->c->dnn, &d, calgo, b->c->ce->opt.workspace, &s->conv, msg, sizeof msg)) {
        /* slabs the recorded algorithm does not take (a timing cache's code, timed on this shape without
         * them): dense copies in, a buffer of its own out */
        bool ok = false;
        if (slab) {
            KL_TRY(kl_conv_unslab(b, s, y, &x, &xp, &z, &zp));
            s->unslab = true;
            d.x_ch = d.y_ch = d.z_ch = 0;
            ok = !kc_conv_create(b->c->dnn, &d, calgo, b->c->ce->opt.workspace, &s->conv, msg, sizeof msg);
        }
        if (!ok) KL_FALLBACK_OR_RECORDED(calgo, "cudnn", msg);
    }
    if (d.dw_taps) kc_conv_set_dw_taps(s->conv, w_taps);
    y->nhwc = lay == 1;
    s->kind = K_CONV;
    s->x[0] = xp;
    s->x[1] = wp;
    s->x[2] = bp;
    s->x[3] = zp;
    return KILN_OK;
}

/* Floor division by 2 (Python's //), for negative total paddings. */
static int64_t kl_floor_half(int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

/* ConvTranspose 2-D as cuDNN's backward-data (kc_conv_desc.transposed):
 * the begin pads are the reference kernel's (kl_nn_conv_t_geometry: from
 * output_shape, auto_pad SAME_* or pads); the output size is the inferred
 * one, and kc_conv_create refuses sizes the forward convolution does not
 * map back onto the input (the layer then runs on the CPU).  Bias by
 * kc_bias_act after the product. */
static kiln_status kl_b_convt(kl_bctx *b, kl_cstep *s, kl_cval *y, kc_dtype t) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    const kl_cval *x, *w, *bias = NULL;
    const void *xp, *wp, *bp = NULL;
    int lay = b->p->nhwc ? 1 : 0;
    KL_TRY(kl_in_f_lay(b, 0, &xp, &x, t, lay));
    KL_TRY(kl_in_f(b, 1, &wp, &w, t));
    if (kl_in(n, 2)) KL_TRY(kl_in_f(b, 2, &bp, &bias, t));
    if (x->rank != 4 || w->rank != 4 || y->rank != 4 || !y->known) KL_FALLBACK("not a 2-D ConvTranspose");
    int64_t group = kl_node_attr_int(n, "group", 1);
    if (group < 1 || group > INT32_MAX || x->dims[1] != w->dims[0] || x->dims[1] % group ||
        y->dims[1] != w->dims[1] * group)
        KL_FALLBACK("channels do not match the weights and group");
    if (bias && bias->count != y->dims[1]) KL_FALLBACK("bias has %lld values for %lld channels", (long long)bias->count,
                                                       (long long)y->dims[1]);
    int64_t st[2], dl[2], op[2], pb[2];
    kl_attr2(n, "strides", 1, st);
    kl_attr2(n, "dilations", 1, dl);
    const int64_t *v = NULL, *os = NULL;
    int64_t np = kl_node_attr_ints(n, "pads", &v);
    int64_t nop = kl_node_attr_ints(n, "output_padding", &os);
    op[0] = nop == 2 ? os[0] : 0;
    op[1] = nop == 2 ? os[1] : 0;
    int64_t n_os = kl_node_attr_ints(n, "output_shape", &os);
    const char *ap = kl_node_attr_string(n, "auto_pad", "NOTSET");
    bool upper = !strcmp(ap, "SAME_UPPER"), same = np < 0 && (upper || !strcmp(ap, "SAME_LOWER"));
    if ((np >= 0 && np != 4) || (nop >= 0 && nop != 2) || (n_os >= 0 && n_os != 2 && n_os != 4))
        KL_FALLBACK("pads, output_padding or output_shape of the wrong length");
    for (int a = 0; a < 2; a++) {
        int64_t in = x->dims[2 + a], ek = (w->dims[2 + a] - 1) * dl[a] + 1;
        int64_t natural = st[a] * (in - 1) + op[a] + ek, total;
        if (n_os >= 0) {
            total = natural - os[n_os - 2 + a];
            if (total < 0) total = 0;
            pb[a] = upper ? total / 2 : total - total / 2;
        } else if (same) {
            total = natural - in * st[a];
            pb[a] = upper ? kl_floor_half(total) : total - kl_floor_half(total);
        } else {
            pb[a] = np < 0 ? 0 : v[a]; /* NOTSET and VALID without pads: none */
        }
        if (pb[a] < 0 || pb[a] > INT32_MAX || st[a] < 1 || st[a] > INT32_MAX || dl[a] < 1 || dl[a] > INT32_MAX)
            KL_FALLBACK("negative or oversized pads, strides or dilations");
    }
    if (lay) KL_TRY(kl_cu_weights_krsc_pad(b->c, kl_in(n, 1), w, wp, 0, &wp));
    kc_conv_desc d = {0};
    d.t = t;
    d.transposed = true;
    d.nhwc = lay;
    d.n = x->dims[0];
    d.c = x->dims[1];
    d.h = x->dims[2];
    d.w = x->dims[3];
    d.k = y->dims[1];
    d.r = w->dims[2];
    d.s = w->dims[3];
    d.oh = y->dims[2];
    d.ow = y->dims[3];
    d.pad_t = d.pad_b = (int)pb[0];
    d.pad_l = d.pad_r = (int)pb[1];
    d.stride_h = (int)st[0];
    d.stride_w = (int)st[1];
    d.dil_h = (int)dl[0];
    d.dil_w = (int)dl[1];
    d.groups = (int)group;
    d.has_bias = bp != NULL;
    d.allow_tf32 = b->c->ce->opt.tf32;
    char msg[256] = "";
    const int algo = kl_cu_algo(b);
    if (kc_conv_create(b->c->dnn, &d, algo, b->c->ce->opt.workspace, &s->conv, msg, sizeof msg))
        KL_FALLBACK_OR_RECORDED(algo, "cudnn (ConvTranspose)", msg);
    y->nhwc = lay == 1;
    s->kind = K_CONV;
    s->x[0] = xp;
    s->x[1] = wp;
    s->x[2] = bp;
    s->x[3] = NULL;
    return KILN_OK;
}

/* Create the cuBLASLt product of desc d for node b and make s run it on
 * a, bm, bias, z; on failure the layer falls back with cuBLASLt's message.
 * In float16, erf-GELU and tanh-GELU differ by < 3e-4 (under half an fp16
 * ulp where they differ most): cuBLASLt's fused GELU epilogue serves both. */
static kiln_status kl_gemm_step(kl_bctx *b, kl_cstep *s, kc_gemm_desc *d, const void *a, const void *bm,
                                const void *bias, const void *z) {
    char *why = b->why;
    size_t why_size = b->why_size;
    if (d->t == KC_F16 && d->act == KL_ACT_GELU_ERF) d->act = KL_ACT_GELU_TANH;
    d->allow_tf32 = b->c->ce->opt.tf32;
    char msg[256] = "";
    const int algo = kl_cu_algo(b);
    if (kc_gemm_create(b->c->dnn, d, algo, b->c->ce->opt.workspace, &s->gemm, msg, sizeof msg)) {
        s->gemm = NULL;
        KL_FALLBACK_OR_RECORDED(algo, "cublasLt", msg);
    }
    s->kind = K_GEMM;
    s->x[0] = a;
    s->x[1] = bm;
    s->x[2] = bias;
    s->x[3] = z;
    return KILN_OK;
}

/* Gemm / kiln.FusedGemm b->n into y; rz (or NULL) a residual added in the
 * epilogue (then y is the residual Add's output: [M, N] in any shape). */
static kiln_status kl_b_gemm_z(kl_bctx *b, kl_cstep *s, const kl_cval *y, kc_dtype t, const void *rz) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    const kl_cval *A, *B, *C = NULL, *Z = NULL;
    const void *ap, *bp, *cp = NULL, *zp = NULL;
    KL_TRY(kl_in_f(b, 0, &ap, &A, t));
    KL_TRY(kl_in_f(b, 1, &bp, &B, t));
    if (kl_in(n, 2)) KL_TRY(kl_in_f(b, 2, &cp, &C, t));
    if (kl_in(n, 3)) KL_TRY(kl_in_f(b, 3, &zp, &Z, t));
    if (A->rank != 2 || B->rank != 2 || (y->rank != 2 && !rz)) KL_FALLBACK("Gemm operands are not 2-D");
    kc_gemm_desc d = {0};
    d.t = t;
    d.trans_a = kl_node_attr_int(n, "transA", 0) != 0;
    d.trans_b = kl_node_attr_int(n, "transB", 0) != 0;
    d.m = d.trans_a ? A->dims[1] : A->dims[0];
    d.n = d.trans_b ? B->dims[0] : B->dims[1];
    if (d.m * d.n != y->count) KL_FALLBACK("output size differs from the product's");
    d.k = d.trans_a ? A->dims[0] : A->dims[1];
    d.lda = A->dims[1];
    d.ldb = B->dims[1];
    d.ldy = d.n;
    d.batch = 1;
    d.alpha = kl_node_attr_float(n, "alpha", 1.f);
    float beta = kl_node_attr_float(n, "beta", 1.f);
    const void *bias = NULL, *z = NULL;
    if (C) {
        if (C->count == d.n && (C->rank == 1 || (C->rank == 2 && C->dims[0] == 1)) && beta == 1.f) {
            bias = cp;
        } else if (C->rank == 2 && C->dims[0] == d.m && C->dims[1] == d.n && !Z) {
            z = cp;
            d.beta = beta;
        } else {
            KL_FALLBACK("Gemm's C of this shape/beta is not implemented");
        }
    }
    if (Z) {
        if (Z->count != y->count) KL_FALLBACK("residual input does not have the output's shape");
        z = zp;
        d.beta = 1.f;
    }
    if (rz) {
        if (z) KL_FALLBACK("the Gemm already adds a matrix");
        z = rz;
        d.beta = 1.f;
    }
    d.has_bias = bias != NULL;
    d.has_z = z != NULL;
    if (strcmp(n->domain, KL_KILN_DOMAIN) == 0) d.act = kl_act_attr(n, &d.act_alpha, &d.act_beta);
    if (rz && d.act != KL_ACT_NONE) KL_FALLBACK("a residual after an activation is not fused");
    return kl_gemm_step(b, s, &d, ap, bp, bias, z);
}

static kiln_status kl_b_gemm(kl_bctx *b, kl_cstep *s, const kl_cval *y, kc_dtype t) {
    return kl_b_gemm_z(b, s, y, t, NULL);
}

/* MatMul / kiln.FusedMatMul b->n into y; z (or NULL) a residual of y's
 * shape added in the epilogue. */
static kiln_status kl_b_matmul_z(kl_bctx *b, kl_cstep *s, const kl_cval *y, kc_dtype t, const void *z) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    const kl_cval *A, *B, *bias = NULL;
    const void *ap, *bp, *biasp = NULL;
    KL_TRY(kl_in_f(b, 0, &ap, &A, t));
    KL_TRY(kl_in_f(b, 1, &bp, &B, t));
    bool fused = strcmp(n->domain, KL_KILN_DOMAIN) == 0;
    if (fused && kl_in(n, 2)) KL_TRY(kl_in_f(b, 2, &biasp, &bias, t));
    if (A->rank < 2 || B->rank < 2 || y->rank < 2) KL_FALLBACK("1-D MatMul operands are not implemented");
    kc_gemm_desc d = {0};
    d.t = t;
    d.m = A->dims[A->rank - 2];
    d.k = A->dims[A->rank - 1];
    d.n = B->dims[B->rank - 1];
    if (B->dims[B->rank - 2] != d.k) KL_FALLBACK("inner dimensions differ");
    int64_t mk = d.m * d.k, kn = d.k * d.n, mn = d.m * d.n;
    int64_t ba = A->count / (mk > 0 ? mk : 1), bb = B->count / (kn > 0 ? kn : 1), by = y->count / (mn > 0 ? mn : 1);
    d.lda = d.k;
    d.ldb = d.n;
    d.ldy = d.n;
    d.batch = 1;
    if (bb == 1) {
        d.m *= ba; /* one product over every row of A */
    } else if (ba == bb && A->rank == B->rank && memcmp(A->dims, B->dims, (size_t)(A->rank - 2) * sizeof A->dims[0]) == 0) {
        d.batch = ba;
        d.stride_a = d.m * d.k;
        d.stride_b = d.k * d.n;
        d.stride_y = d.m * d.n;
    } else if (ba == 1 && by == bb) {
        d.batch = bb;
        d.stride_a = 0;
        d.stride_b = d.k * d.n;
        d.stride_y = d.m * d.n;
    } else {
        KL_FALLBACK("this batch broadcast of MatMul is not implemented");
    }
    d.alpha = fused ? kl_node_attr_float(n, "alpha", 1.f) : 1.f;
    if (bias && bias->count != d.n) KL_FALLBACK("bias is not one value per column");
    d.has_bias = biasp != NULL;
    if (fused) d.act = kl_act_attr(n, &d.act_alpha, &d.act_beta);
    if (z) {
        if (d.act != KL_ACT_NONE) KL_FALLBACK("a residual after an activation is not fused");
        d.has_z = true;
        d.beta = 1.f;
    }
    return kl_gemm_step(b, s, &d, ap, bp, biasp, z);
}

static kiln_status kl_b_matmul(kl_bctx *b, kl_cstep *s, const kl_cval *y, kc_dtype t) {
    return kl_b_matmul_z(b, s, y, t, NULL);
}

/* The Add that runs its MatMul with the residual in the epilogue. */
static kiln_status kl_b_resid(kl_bctx *b, kl_cstep *s, const kl_cval *y, kc_dtype t) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *add = b->n, *mm = b->p->resid_mm[b->idx];
    const kl_value *zv = NULL;
    size_t zk = 0;
    for (size_t k = 0; k < 2; k++) {
        const kl_value *v = add->inputs[k];
        const kl_node *pr = v->producer;
        if (pr == mm || (pr && pr->n_inputs && pr->inputs[0]->producer == mm && !strcmp(pr->op_type, "Reshape"))) continue;
        zv = v, zk = k;
    }
    if (!zv) KL_FALLBACK("no residual input");
    const void *zp;
    const kl_cval *z;
    KL_TRY(kl_in_f(b, zk, &zp, &z, t));
    if (z->count != y->count || z->ld || z->nhwc) KL_FALLBACK("the residual is not a dense tensor of the output's size");
    kl_bctx b2 = *b;
    b2.n = mm;
    s->charge1 = mm->index + 1;
    return strcmp(mm->op_type, "Gemm") == 0 ? kl_b_gemm_z(&b2, s, y, t, zp) : kl_b_matmul_z(&b2, s, y, t, zp);
}

/* The SE block's two 1x1 convolutions over [N, C, 1, 1] (kl_cu_find_se)
 * as one kc_se_mlp: b->n is the second, p->se_fc1 the first. */
static kiln_status kl_b_se(kl_bctx *b, kl_cstep *s, kl_cval *y, kc_dtype t) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n2 = b->n, *n1 = b->p->se_fc1[b->idx], *gp = b->p->se_pool ? b->p->se_pool[b->idx] : NULL;
    kl_bctx b1 = *b;
    b1.n = n1;
    const kl_cval *pv, *w1, *bv1 = NULL, *w2, *bv2 = NULL;
    const void *pp, *w1p, *b1p = NULL, *w2p, *b2p = NULL;
    if (gp) { /* the pool runs here too: its input, [N, C, H, W] in either layout */
        kl_bctx bg = *b;
        bg.n = gp;
        KL_TRY(kl_in_f_lay(&bg, 0, &pp, &pv, t, -1));
        if (pv->rank != 4 || pv->ld) KL_FALLBACK("the pooled tensor is not a dense 4-D tensor");
    } else {
        KL_TRY(kl_in_f_lay(&b1, 0, &pp, &pv, t, -1)); /* [N, C, 1, 1]: the same bytes in either layout */
    }
    KL_TRY(kl_in_f(&b1, 1, &w1p, &w1, t));
    if (kl_in(n1, 2)) KL_TRY(kl_in_f(&b1, 2, &b1p, &bv1, t));
    KL_TRY(kl_in_f(b, 1, &w2p, &w2, t));
    if (kl_in(n2, 2)) KL_TRY(kl_in_f(b, 2, &b2p, &bv2, t));
    if (!y->known || y->rank != 4 || pv->rank != 4 || w1->rank != 4 || w2->rank != 4) KL_FALLBACK("not 4-D");
    int64_t n = y->dims[0], c = y->dims[1], cr = w2->dims[1];
    int64_t hw = gp ? pv->dims[2] * pv->dims[3] : 1;
    if (pv->count != n * c * hw || (gp && (pv->dims[0] != n || pv->dims[1] != c || hw < 1)) || w1->dims[0] != cr ||
        w1->dims[1] != c || w2->dims[0] != c || (bv1 && bv1->count != cr) || (bv2 && bv2->count != c))
        KL_FALLBACK("shapes do not chain");
    s->flag = 0;
    s->ws_need = 0;
    if (gp) {
        s->n = hw;
        s->op = strcmp(gp->op_type, "GlobalMaxPool") == 0;
        if (pv->nhwc) {
            if (n > 65535) KL_FALLBACK("batch above 65535");
            s->flag = 1; /* kc_se_pool_mlp */
            s->ws_need = kc_se_pool_ws(n, hw, c, t);
        } else {
            s->flag = 2; /* kc_global_pool into the workspace, then kc_se_mlp */
            s->ws_need = (size_t)(n * c) * pv->esz;
        }
    }
    s->kind = K_SE;
    s->x[0] = pp;
    s->x[1] = w1p;
    s->x[2] = b1p;
    s->x[3] = w2p;
    s->x[4] = b2p;
    s->outer = n;
    s->inner = c;
    s->mid = cr;
    s->act = strcmp(n1->domain, KL_KILN_DOMAIN) == 0 ? kl_act_attr(n1, &s->a, &s->b) : 0;
    s->act2 = strcmp(n2->domain, KL_KILN_DOMAIN) == 0 ? kl_act_attr(n2, &s->a2, &s->b2) : 0;
    y->nhwc = b->p->nhwc;
    /* the scale into the next 1x1 convolution's weights ([K, C] in either
     * layout; one copy per image past batch 1), which then reads the Mul's
     * x; the Mul runs nothing */
    kl_cplan *p = b->p;
    const kl_node *pc = p->sefold_conv ? p->sefold_conv[b->idx] : NULL;
    if (pc && s->flag == 1 && n >= 1) {
        const kl_node *m = p->sefold_mul[pc->index];
        const void *wsrc = NULL;
        const kl_cval *wv = NULL;
        kl_bctx bc = *b;
        bc.n = pc;
        if (kl_in_f(&bc, 1, &wsrc, &wv, t) == KILN_OK && wv->rank == 4 && wv->dims[1] == c && wv->count == wv->dims[0] * c) {
            void *wf = NULL;
            size_t wbytes = (size_t)n * (size_t)wv->count * wv->esz;
            KL_TRY(kl_cp_alloc(p, wbytes, &wf));
            KL_CU(cudaMemsetAsync(wf, 0, wbytes, b->c->st)); /* defined values for tactic timing */
            s->wf = wf;
            s->wsrc = wsrc;
            s->wk = wv->dims[0];
            p->sefold_w[pc->index] = wf;
            p->sefold[m->index] = 3;
            p->sefold[pc->index] = 4;
        } else {
            kl_error_clear();
        }
    }
    /* The mean pool made by the depthwise convolution that writes x, when
     * it runs kiln's tap-major kernel (kc_conv_run_pool): sums over slices
     * of pixels into a buffer of this plan, one launch fewer per block
     * (EfficientNet-B0: 16).  KILN_CUDA_NO_DW_POOL=1 leaves it out. */
    if (s->flag == 1 && !s->op && !getenv("KILN_CUDA_NO_DW_POOL")) {
        for (size_t i = p->n_steps - 1; i-- > 0;) {
            kl_cstep *cs = &p->steps[i];
            if (cs->y != pp) continue;
            /* (one SE step per convolution: a second pool of the same output runs its own) */
            int64_t np = cs->kind == K_CONV && !cs->unslab && !cs->n_pre && !cs->pool_part ? kc_conv_pool_parts(cs->conv)
                                                                                           : 0;
            if (np > 0) {
                void *buf = NULL;
                KL_TRY(kl_cp_alloc(p, (size_t)(n * np * c) * sizeof(float), &buf));
                cs->pool_part = buf;
                cs->pool_parts = np;
                s->pool_part = buf;
                s->pool_parts = np;
            }
            break;
        }
    }
    return KILN_OK;
}

static kiln_status kl_b_attention(kl_bctx *b, kl_cstep *s, const kl_cval *y, kc_dtype t) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    const kl_cval *q, *k, *v, *m = NULL;
    const void *qp, *kp, *vp, *mp = NULL;
    KL_TRY(kl_in_f(b, 0, &qp, &q, t));
    KL_TRY(kl_in_f(b, 1, &kp, &k, t));
    KL_TRY(kl_in_f(b, 2, &vp, &v, t));
    if (kl_in(n, 3)) {
        KL_TRY(kl_in_any(b, 3, &mp, &m));
        if (!m->isf) KL_FALLBACK("mask is not float");
    }
    if (q->rank != 3 || k->rank != 3 || v->rank != 3) KL_FALLBACK("Q/K/V are not 3-D");
    kc_attn_desc d = {0};
    d.t = t;
    d.seq_first = (int)kl_node_attr_int(n, "seq_first", 0);
    int sa = d.seq_first ? 1 : 0, ssa = d.seq_first ? 0 : 1;
    d.b = q->dims[sa];
    d.sq = q->dims[ssa];
    d.sk = k->dims[ssa];
    d.h = kl_node_attr_int(n, "num_heads", 0);
    if (d.h <= 0 || q->dims[2] % d.h || v->dims[2] % d.h) KL_FALLBACK("num_heads does not divide the widths");
    d.d = q->dims[2] / d.h;
    d.dv = v->dims[2] / d.h;
    d.ldq = q->ld ? q->ld : q->dims[2];
    d.ldk = k->ld ? k->ld : k->dims[2];
    d.ldv = v->ld ? v->ld : v->dims[2];
    d.scale = kl_node_attr_float(n, "scale", 1.f / sqrtf((float)d.d));
    if (m) {
        int64_t yd[4] = {d.b, d.h, d.sq, d.sk}, ms[4];
        if (!kl_bcast_strides(m, 4, yd, ms)) KL_FALLBACK("mask does not broadcast to [B, H, Sq, Sk]");
        d.has_mask = true;
        d.mask_t = m->t;
        d.mask_stride_b = ms[0];
        d.mask_stride_h = ms[1];
        d.mask_stride_q = ms[2];
        d.mask_stride_k = ms[3];
    }
    d.allow_tf32 = b->c->ce->opt.tf32;
    d.flash_variant = kl_cu_flash_variant(b);
    (void)y;
    char msg[256] = "";
    if (kc_attn_create(b->c->dnn, &d, &s->attn, msg, sizeof msg)) KL_FALLBACK("attention: %s", msg);
    s->kind = K_ATTN;
    s->x[0] = qp;
    s->x[1] = kp;
    s->x[2] = vp;
    s->x[3] = mp;
    s->x[4] = NULL;
    return KILN_OK;
}

static kiln_status kl_b_norm(kl_bctx *b, kl_cstep *s, const kl_cval *y, kc_dtype t, bool rms) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    const kl_cval *x, *sc = NULL, *bi = NULL;
    const void *xp, *sp = NULL, *bp = NULL;
    KL_TRY(kl_in_f(b, 0, &xp, &x, t));
    if (kl_in(n, 1)) KL_TRY(kl_in_f(b, 1, &sp, &sc, t));
    if (!rms && kl_in(n, 2)) KL_TRY(kl_in_f(b, 2, &bp, &bi, t));
    int64_t axis = kl_node_attr_int(n, "axis", -1);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis >= x->rank) KL_FALLBACK("axis out of range");
    int64_t cols = 1;
    for (int a = (int)axis; a < x->rank; a++) cols *= x->dims[a];
    if ((sc && sc->count != cols) || (bi && bi->count != cols)) KL_FALLBACK("scale/bias do not cover the normalized axes");
    s->kind = K_LN;
    s->x[0] = xp;
    s->x[1] = sp;
    s->x[2] = bp;
    s->outer = cols ? x->count / cols : 0;
    s->inner = cols;
    s->eps = kl_node_attr_float(n, "epsilon", 1e-5f);
    s->flag = rms;
    (void)y;
    return KILN_OK;
}

static kiln_status kl_b_softmax(kl_bctx *b, kl_cstep *s, kc_dtype t) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    const kl_cval *x;
    const void *xp;
    KL_TRY(kl_in_f(b, 0, &xp, &x, t));
    int64_t axis = kl_node_attr_int(n, "axis", n->opset >= 13 ? -1 : 1);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis >= x->rank) KL_FALLBACK("axis out of range");
    int64_t outer = 1, mid = 1, inner = 1;
    for (int a = 0; a < axis; a++) outer *= x->dims[a];
    if (n->opset >= 13) {
        mid = x->dims[axis];
        for (int a = (int)axis + 1; a < x->rank; a++) inner *= x->dims[a];
    } else {
        for (int a = (int)axis; a < x->rank; a++) mid *= x->dims[a];
    }
    s->kind = K_SOFTMAX;
    s->x[0] = xp;
    s->outer = outer;
    s->mid = mid;
    s->inner = inner;
    s->a = 1.f;
    return KILN_OK;
}

static kiln_status kl_b_pool(kl_bctx *b, kl_cstep *s, kl_cval *y, kc_dtype t, bool is_max) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    const kl_cval *x;
    const void *xp;
    KL_TRY(kl_in_f_lay(b, 0, &xp, &x, t, -1));
    if (x->rank != 4 || y->rank != 4) KL_FALLBACK("not a 2-D pool");
    if (kl_node_attr_int(n, "storage_order", 0)) KL_FALLBACK("storage_order 1 is not implemented");
    int64_t ks[2], st[2], dl[2], pb[2], pe[2];
    kl_attr2(n, "kernel_shape", 1, ks);
    kl_attr2(n, "strides", 1, st);
    kl_attr2(n, "dilations", 1, dl);
    kl_spatial_pads(n, x, y, ks, st, dl, pb, pe);
    kc_pool2d p = {x->dims[0], x->dims[1], x->dims[2], x->dims[3], y->dims[2], y->dims[3], (int)ks[0], (int)ks[1],
                   (int)st[0], (int)st[1], (int)dl[0], (int)dl[1], (int)pb[0], (int)pb[1], is_max,
                   (int)kl_node_attr_int(n, "count_include_pad", 0)};
    p.nhwc = x->nhwc && x->rank == 4;
    p.pb = (int)pe[0];
    p.pr = (int)pe[1];
    y->nhwc = p.nhwc;
    s->kind = K_POOL;
    s->pool = p;
    s->x[0] = xp;
    return KILN_OK;
}

static kiln_status kl_b_reduce(kl_bctx *b, kl_cstep *s, const kl_cval *y, kc_dtype t, int op) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    const kl_cval *x;
    const void *xp;
    KL_TRY(kl_in_f(b, 0, &xp, &x, t));
    int64_t axes[KILN_MAX_RANK], na = 0;
    const int64_t *av = NULL;
    bool axes_input = (kl_op_is(n, "ReduceSum") && n->opset >= 13) || n->opset >= 18;
    if (axes_input) {
        if (kl_in(n, 1) && !kl_host_ints(b->p, kl_in(n, 1), axes, KILN_MAX_RANK, &na))
            KL_FALLBACK("axes are not known before the run");
    } else {
        na = kl_node_attr_ints(n, "axes", &av);
        if (na > KILN_MAX_RANK) KL_FALLBACK("too many axes");
        for (int64_t i = 0; i < na; i++) axes[i] = av[i];
    }
    if (na == 0) {
        if (kl_node_attr_int(n, "noop_with_empty_axes", 0)) KL_FALLBACK("noop_with_empty_axes");
        for (int a = 0; a < x->rank; a++) axes[a] = a;
        na = x->rank;
    }
    bool red[KILN_MAX_RANK] = {0};
    for (int64_t i = 0; i < na; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + x->rank : axes[i];
        if (a < 0 || a >= x->rank) KL_FALLBACK("axis out of range");
        red[a] = true;
    }
    int lo = 0, hi = x->rank - 1;
    while (lo < x->rank && !red[lo]) lo++;
    while (hi >= 0 && !red[hi]) hi--;
    for (int a = lo; a <= hi; a++)
        if (!red[a] && x->dims[a] != 1) KL_FALLBACK("reduced axes are not contiguous");
    int64_t outer = 1, mid = 1, inner = 1;
    for (int a = 0; a < lo; a++) outer *= x->dims[a];
    for (int a = lo; a <= hi; a++) mid *= x->dims[a];
    for (int a = hi + 1; a < x->rank; a++) inner *= x->dims[a];
    (void)y;
    s->kind = K_REDUCE;
    s->x[0] = xp;
    s->outer = outer;
    s->mid = mid;
    s->inner = inner;
    s->op = op;
    return KILN_OK;
}

static int kl_str_index(const char *s, const char *const *list) {
    for (int i = 0; list[i]; i++)
        if (strcmp(s, list[i]) == 0) return i;
    return -1;
}

static kiln_status kl_b_resize(kl_bctx *b, kl_cstep *s, kl_cval *y, kc_dtype t) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    const kl_cval *x;
    const void *xp;
    KL_TRY(kl_in_f_lay(b, 0, &xp, &x, t, -1));
    if (x->rank != 4 || y->rank != 4 || x->dims[0] != y->dims[0] || x->dims[1] != y->dims[1])
        KL_FALLBACK("only resizing H and W of NCHW is implemented");
    static const char *const coords[] = {"half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel",
                                         "tf_half_pixel_for_nearest", NULL};
    static const char *const nearest[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil", NULL};
    kc_resize r = {x->dims[0], x->dims[1], x->dims[2], x->dims[3], y->dims[2], y->dims[3],
                   (float)y->dims[2] / (float)x->dims[2], (float)y->dims[3] / (float)x->dims[3], 0, 0, 0};
    r.mode = strcmp(kl_node_attr_string(n, "mode", "nearest"), "linear") == 0;
    r.coord = kl_str_index(kl_node_attr_string(n, "coordinate_transformation_mode", n->opset >= 11 ? "half_pixel" : "asymmetric"), coords);
    r.nearest = kl_str_index(kl_node_attr_string(n, "nearest_mode", "round_prefer_floor"), nearest);
    if (r.coord < 0 || r.nearest < 0) KL_FALLBACK("coordinate transformation or nearest mode not implemented");
    if (r.mode == 1 && (y->dims[2] < x->dims[2] || y->dims[3] < x->dims[3]))
        KL_FALLBACK("linear downsampling disagrees with the ONNX tests on the GPU kernel (conformance): runs on the CPU");
    const kl_value *sv = kl_in(n, n->opset >= 11 ? 2 : 1);
    if (sv && b->p->v[sv->id].host && b->p->v[sv->id].host->count == 4) {
        r.scale_h = (float)kl_rt_get_f64(b->p->v[sv->id].host, 2);
        r.scale_w = (float)kl_rt_get_f64(b->p->v[sv->id].host, 3);
    } else if (n->opset >= 11 && kl_in(n, 3)) { /* sizes given: ONNX's length_resized is the output size */
        r.len_h = y->dims[2];
        r.len_w = y->dims[3];
    }
    r.nhwc = x->nhwc;
    y->nhwc = x->nhwc;
    s->kind = K_RESIZE;
    s->rs = r;
    s->x[0] = xp;
    return KILN_OK;
}

static kiln_status kl_b_gather(kl_bctx *b, kl_cstep *s, const kl_cval *y) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    const kl_cval *x, *iv;
    const void *xp, *ip;
    KL_TRY(kl_in_any(b, 0, &xp, &x));
    const kl_value *idx = kl_in(n, 1);
    if (!idx) KL_FALLBACK("no indices");
    kl_cval *icv = &b->p->v[idx->id];
    if (icv->host && icv->host->dtype != KILN_DTYPE_INT64) KL_FALLBACK("indices are not int64");
    KL_TRY(kl_in_any(b, 1, &ip, &iv));
    if (iv->isf || iv->esz != 8) KL_FALLBACK("indices are not int64");
    int64_t axis = kl_node_attr_int(n, "axis", 0);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis >= x->rank) KL_FALLBACK("axis out of range");
    int64_t outer = 1, inner = 1;
    for (int a = 0; a < axis; a++) outer *= x->dims[a];
    for (int a = (int)axis + 1; a < x->rank; a++) inner *= x->dims[a];
    (void)y;
    s->kind = K_GATHER;
    s->x[0] = xp;
    s->x[1] = ip;
    s->outer = outer;
    s->mid = x->dims[axis];
    s->n = iv->count;
    s->inner = inner;
    s->flag = (int)x->esz;
    return KILN_OK;
}

/* Einsum with an explicit output ("ab,bc->ac"): letters only, one or two
 * operands, no label repeated within a term, equal sizes per label (no
 * ellipsis, diagonal or size-1 broadcast: those stay on the CPU). */
static kiln_status kl_b_einsum(kl_bctx *b, kl_cstep *s, const kl_cval *y, kc_dtype t) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    const char *eq = kl_node_attr_string(n, "equation", NULL);
    if (!eq) KL_FALLBACK("no equation");
    if (n->n_inputs < 1 || n->n_inputs > 2) KL_FALLBACK("%zu operands (1 or 2 are implemented)", n->n_inputs);
    const kl_cval *x[2] = {NULL, NULL};
    const void *xp[2] = {NULL, NULL};
    for (size_t k = 0; k < n->n_inputs; k++) KL_TRY(kl_in_f(b, k, &xp[k], &x[k], t));
    /* terms: operand k's labels, then the output's */
    char lab[3][KILN_MAX_RANK];
    int nl[3] = {0, 0, 0}, term = 0;
    bool arrow = false;
    for (const char *p = eq; *p; p++) {
        if (*p == ' ') continue;
        if (*p == ',') {
            if (arrow || ++term >= (int)n->n_inputs) KL_FALLBACK("equation '%s' does not match its operands", eq);
            continue;
        }
        if (*p == '-' && p[1] == '>') {
            if (arrow || term != (int)n->n_inputs - 1) KL_FALLBACK("equation '%s' does not match its operands", eq);
            arrow = true, term = 2, p++;
            continue;
        }
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            KL_FALLBACK("equation '%s': only letters are implemented (no ellipsis)", eq);
        if (nl[term] >= KILN_MAX_RANK) KL_FALLBACK("equation '%s' has too many labels in a term", eq);
        for (int i = 0; i < nl[term]; i++)
            if (lab[term][i] == *p) KL_FALLBACK("equation '%s' repeats a label in a term (diagonal)", eq);
        lab[term][nl[term]++] = *p;
    }
    if (!arrow) KL_FALLBACK("equation '%s' has no explicit output", eq);
    kc_einsum_desc d;
    memset(&d, 0, sizeof d);
    char order[KC_EINSUM_LABELS];
    int nord = 0;
    for (int i = 0; i < nl[2]; i++) order[nord++] = lab[2][i];
    d.n_out = nl[2];
    for (size_t k = 0; k < n->n_inputs; k++)
        for (int i = 0; i < nl[k]; i++) {
            bool seen = false;
            for (int j = 0; j < nord; j++) seen = seen || order[j] == lab[k][i];
            if (!seen) {
                if (nord >= KC_EINSUM_LABELS) KL_FALLBACK("equation '%s' has too many labels", eq);
                order[nord++] = lab[k][i];
            }
        }
    d.n_sum = nord - d.n_out;
    if (y->rank != nl[2]) KL_FALLBACK("output rank %d does not match '%s'", y->rank, eq);
    for (int l = 0; l < nord; l++) d.size[l] = -1;
    for (size_t k = 0; k < n->n_inputs; k++) {
        if (x[k]->rank != nl[k]) KL_FALLBACK("operand %zu has rank %d, '%s' gives it %d labels", k, x[k]->rank, eq, nl[k]);
        int64_t st[KILN_MAX_RANK];
        kl_dense_strides(x[k]->rank, x[k]->dims, st);
        for (int i = 0; i < nl[k]; i++) {
            int l = 0;
            while (order[l] != lab[k][i]) l++;
            if (d.size[l] >= 0 && d.size[l] != x[k]->dims[i])
                KL_FALLBACK("label '%c' has sizes %lld and %lld (broadcasting is not implemented)", lab[k][i],
                            (long long)d.size[l], (long long)x[k]->dims[i]);
            d.size[l] = x[k]->dims[i];
            d.st[k][l] = st[i];
        }
    }
    for (int l = 0; l < d.n_out; l++)
        if (d.size[l] < 0 || d.size[l] != y->dims[l])
            KL_FALLBACK("output label '%c' is not in an operand or has the wrong size", order[l]);
    s->es = kl_malloc(sizeof *s->es);
    if (!s->es) return KILN_ERR_NO_MEMORY;
    *s->es = d;
    s->kind = K_EINSUM;
    s->x[0] = xp[0];
    s->x[1] = xp[1];
    return KILN_OK;
}

/* kc_fe programs for plain ops. */
static int kl_fe_unary(const kl_node *n) {
    static const struct { const char *op; int code; } t[] = {
        {"Relu", KL_FE_RELU}, {"Sigmoid", KL_FE_SIGMOID}, {"Tanh", KL_FE_TANH}, {"Exp", KL_FE_EXP},
        {"Log", KL_FE_LOG}, {"Erf", KL_FE_ERF}, {"Sqrt", KL_FE_SQRT}, {"Neg", KL_FE_NEG}, {"Abs", KL_FE_ABS},
        {"Reciprocal", KL_FE_RECIPROCAL}, {"LeakyRelu", KL_FE_LEAKY_RELU}, {"Softplus", KL_FE_SOFTPLUS}};
    for (size_t i = 0; i < KL_ARRAY_LEN(t); i++)
        if (kl_op_is(n, t[i].op)) return t[i].code;
    return -1;
}
static int kl_fe_binary(const kl_node *n) {
    static const struct { const char *op; int code; } t[] = {
        {"Add", KL_FE_ADD}, {"Sub", KL_FE_SUB}, {"Mul", KL_FE_MUL}, {"Div", KL_FE_DIV}, {"Pow", KL_FE_POW}};
    for (size_t i = 0; i < KL_ARRAY_LEN(t); i++)
        if (kl_op_is(n, t[i].op)) return t[i].code;
    return -1;
}

static kiln_status kl_b_fe(kl_bctx *b, kl_cstep *s, kl_cval *y, kc_dtype t) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    kc_fe_program *pr = kl_calloc(1, sizeof *pr);
    if (!pr) return KILN_ERR_NO_MEMORY;
    s->fe = pr; /* freed with the plan (or the step on fallback) */
    if (y->rank > KC_MAX_RANK) KL_FALLBACK("rank above %d", KC_MAX_RANK);
    pr->rank = y->rank;
    memcpy(pr->dims, y->dims, (size_t)y->rank * sizeof y->dims[0]);
    size_t nin = 1;
    if (strcmp(n->domain, KL_KILN_DOMAIN) == 0) {
        const int64_t *ops = NULL, *args = NULL;
        const kl_attr *im = kl_node_attr(n, "imms");
        int64_t k = kl_node_attr_ints(n, "ops", &ops), ka = kl_node_attr_ints(n, "args", &args);
        if (k < 1 || k > KC_MAX_STEPS || ka != k || !im || (int64_t)im->n != k) KL_FALLBACK("malformed program");
        if (n->n_inputs > KC_MAX_INPUTS) KL_FALLBACK("more than %d inputs", KC_MAX_INPUTS);
        pr->n_steps = (int)k;
        for (int64_t i = 0; i < k; i++) {
            pr->op[i] = (int)ops[i];
            pr->arg[i] = (int)args[i];
            pr->imm[i] = im->floats[i];
        }
        nin = n->n_inputs;
    } else {
        int u = kl_fe_unary(n), bi = kl_fe_binary(n);
        pr->n_steps = 1;
        if (u >= 0) {
            pr->op[0] = u;
            pr->arg[0] = -1;
            pr->imm[0] = u == KL_FE_LEAKY_RELU ? kl_node_attr_float(n, "alpha", 0.01f) : 0.f;
        } else {
            pr->op[0] = bi;
            pr->arg[0] = 1;
            nin = 2;
        }
    }
    pr->n_inputs = (int)nin;
    /* Inputs are read as stored (strides say the layout); the output takes
     * the layout of the first input that has the output's shape (it may be
     * written in place over it; an SE block's Mul(scale[N,C,1,1], x) takes
     * x's), and the program then walks NHWC order. */
    const kl_cval *xf = NULL;
    for (size_t k = 0; k < nin; k++) {
        const kl_cval *x;
        KL_TRY(kl_in_lay(b, k, &s->fe_in[k], &x, -1));
        if (!x->isf || x->t != t) KL_FALLBACK("input %zu is not of the layer's float type", k);
        if (!xf && x->rank == y->rank && memcmp(x->dims, y->dims, (size_t)y->rank * sizeof y->dims[0]) == 0) xf = x;
        if (!kl_bcast_strides(x, y->rank, y->dims, pr->stride[k])) KL_FALLBACK("input %zu does not broadcast", k);
    }
    bool ynhwc = y->rank == 4 && xf && xf->nhwc && xf->rank == 4;
    if (y->cs && ynhwc != y->nhwc) KL_FALLBACK("a channel slab output in the other layout");
    y->nhwc = ynhwc;
    if (y->cs) { /* a channel slab: y's own strides */
        pr->y_strided = 1;
        kl_value_strides(y, pr->ystride);
    }
    if (y->nhwc) {
        static const int perm[4] = {0, 2, 3, 1};
        int64_t d[4], ys[4];
        for (int a = 0; a < 4; a++) d[a] = y->dims[perm[a]], ys[a] = pr->ystride[perm[a]];
        memcpy(pr->dims, d, sizeof d);
        if (pr->y_strided) memcpy(pr->ystride, ys, sizeof ys);
        for (size_t k = 0; k < nin; k++) {
            int64_t st[4];
            for (int a = 0; a < 4; a++) st[a] = pr->stride[k][perm[a]];
            memcpy(pr->stride[k], st, sizeof st);
        }
    }
    s->kind = K_FE;
    return KILN_OK;
}

static kiln_status kl_b_act(kl_bctx *b, kl_cstep *s, kc_dtype t) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    const kl_cval *x;
    const void *xp;
    KL_TRY(kl_in_f_lay(b, 0, &xp, &x, t, -1));
    s->kind = K_ACT;
    s->x[0] = xp;
    s->n = x->count;
    b->p->v[n->outputs[0]->id].nhwc = x->nhwc;
    if (kl_op_is(n, "Clip")) {
        s->act = KL_ACT_CLIP;
        s->a = -INFINITY;
        s->b = INFINITY;
        if (n->opset < 11) {
            s->a = kl_node_attr_float(n, "min", -INFINITY);
            s->b = kl_node_attr_float(n, "max", INFINITY);
        } else {
            if (kl_in(n, 1) && !kl_host_float(b->p, kl_in(n, 1), &s->a)) KL_FALLBACK("min is not known before the run");
            if (kl_in(n, 2) && !kl_host_float(b->p, kl_in(n, 2), &s->b)) KL_FALLBACK("max is not known before the run");
        }
    } else if (kl_op_is(n, "HardSigmoid")) {
        s->act = KL_ACT_HARD_SIGMOID;
        s->a = kl_node_attr_float(n, "alpha", 0.2f);
        s->b = kl_node_attr_float(n, "beta", 0.5f);
    } else if (kl_op_is(n, "HardSwish")) {
        s->act = KL_ACT_HARD_SWISH;
    } else if (kl_op_is(n, "Gelu")) {
        s->act = strcmp(kl_node_attr_string(n, "approximate", "none"), "tanh") == 0 ? KL_ACT_GELU_TANH : KL_ACT_GELU_ERF;
    } else if (kl_op_is(n, "Mish")) {
        s->act = KL_ACT_MISH;
    } else {
        KL_FALLBACK("not an activation");
    }
    return KILN_OK;
}

/* ---- copies ------------------------------------------------------------------------------------ */

static kiln_status kl_cp_add(kl_cstep *s, kl_ccopy **out) {
    kl_ccopy *a = kl_realloc_array(s->cp, s->n_cp + 1, sizeof *a);
    if (!a) return KILN_ERR_NO_MEMORY;
    s->cp = a;
    *out = &a[s->n_cp++];
    memset(*out, 0, sizeof **out);
    return KILN_OK;
}

/* Logical NCHW axis -> physical NHWC axis. */
static int kl_phys_axis(int a) { return a == 0 ? 0 : a == 1 ? 3 : a - 1; }
static void kl_phys_dims(const kl_cval *v, int64_t *d) {
    d[0] = v->dims[0];
    d[1] = v->dims[2];
    d[2] = v->dims[3];
    d[3] = v->dims[1];
}

/* Concat / Split of NHWC values, kept NHWC (channel concatenation in
 * YOLO-style blocks): copies in physical order. */
static kiln_status kl_b_copy_nhwc(kl_bctx *b, kl_cstep *s, kl_cval *y, bool concat) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    kl_cplan *p = b->p;
    int64_t axis = kl_node_attr_int(n, "axis", concat ? 1 : 0);
    if (axis < 0) axis += 4;
    if (axis < 0 || axis > 3) KL_FALLBACK("axis out of range");
    int pa = kl_phys_axis((int)axis);
    s->kind = K_COPY;
    int64_t at = 0;
    size_t count = concat ? n->n_inputs : n->n_outputs;
    const kl_cval *x = concat ? NULL : &p->v[n->inputs[0]->id];
    for (size_t k = 0; k < count; k++) {
        const kl_value *pv = concat ? n->inputs[k] : n->outputs[k];
        if (!pv) KL_FALLBACK("an input or output is omitted");
        kl_cval *part = &p->v[pv->id];
        const void *pp = part->d;
        if (concat) KL_TRY(kl_cu_dev(b->c, p, pv, &pp));
        if (!part->d || part->rank != 4 || part->esz != y->esz) KL_FALLBACK("part %zu is not a 4-D device tensor", k);
        int64_t pd[4], full[4], ps[4], fs[4];
        kl_phys_dims(part, pd);
        kl_phys_dims(concat ? y : x, full);
        kl_dense_strides(4, pd, ps);
        kl_dense_strides(4, full, fs);
        if (part->count) {
            kl_ccopy *c;
            KL_TRY(kl_cp_add(s, &c));
            c->rank = 4;
            memcpy(c->dims, pd, sizeof pd);
            c->esz = y->esz;
            if (concat) {
                memcpy(c->xs, ps, sizeof ps);
                memcpy(c->ys, fs, sizeof fs);
                c->x = pp;
                c->y = (uint8_t *)y->d + at * fs[pa] * (int64_t)y->esz;
            } else {
                memcpy(c->xs, fs, sizeof fs);
                memcpy(c->ys, ps, sizeof ps);
                c->x = (const uint8_t *)x->d + at * fs[pa] * (int64_t)x->esz;
                c->y = part->d;
                part->nhwc = true;
            }
        }
        at += pd[pa];
    }
    if (concat) y->nhwc = true;
    return KILN_OK;
}

static bool kl_is_nhwc4(const kl_cval *v) { return v->nhwc && v->rank == 4 && v->dims[2] * v->dims[3] > 1; }

static kiln_status kl_b_copy(kl_bctx *b, kl_cstep *s, kl_cval *y, void *yp) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    kl_cplan *p = b->p;
    const kl_cval *x;
    const void *xp;
    if (kl_op_is(n, "Concat") || kl_op_is(n, "Split")) {
        bool concat = kl_op_is(n, "Concat"), all = y->rank == 4;
        for (size_t k = 0; k < n->n_inputs && all && concat; k++)
            all = n->inputs[k] && kl_is_nhwc4(&p->v[n->inputs[k]->id]);
        if (!concat) all = n->inputs[0] && kl_is_nhwc4(&p->v[n->inputs[0]->id]);
        if (all && (!concat || !kl_in(n, 1) || n->n_inputs > 1) && (concat || !kl_in(n, 1) || p->v[n->inputs[1]->id].host))
            return kl_b_copy_nhwc(b, s, y, concat);
    }
    /* A Slice of an NHWC tensor (YOLOv8's C2f splits its channels so)
     * stays in NHWC: the same slice over the physical strides, instead of
     * two transposes around it (34 of YOLOv8n's 236 kernels at batch 1). */
    bool nhwc_slice = kl_op_is(n, "Slice") && y->rank == 4 && n->inputs[0] &&
                      kl_is_nhwc4(&p->v[n->inputs[0]->id]) && !getenv("KILN_CUDA_NO_NHWC_SLICE");
    KL_TRY(kl_in_lay(b, 0, &xp, &x, nhwc_slice ? -1 : 0));
    if (x->esz != y->esz || x->isf != y->isf || (x->isf && x->t != y->t)) KL_FALLBACK("input and output types differ");
    if (y->rank > KC_MAX_RANK || x->rank > KC_MAX_RANK) KL_FALLBACK("rank above %d", KC_MAX_RANK);
    int64_t xs[KC_MAX_RANK], ys[KC_MAX_RANK];
    kl_dense_strides(x->rank, x->dims, xs);
    kl_dense_strides(y->rank, y->dims, ys);
    if (nhwc_slice) { /* the logical (NCHW) axes' strides in the NHWC buffers */
        int64_t pd[4], ps[4];
        kl_phys_dims(x, pd);
        kl_dense_strides(4, pd, ps);
        for (int a = 0; a < 4; a++) xs[a] = ps[kl_phys_axis(a)];
        kl_phys_dims(y, pd);
        kl_dense_strides(4, pd, ps);
        for (int a = 0; a < 4; a++) ys[a] = ps[kl_phys_axis(a)];
    }
    if (y->cs) { /* a channel slab (Slice only: kl_cu_slab_out) */
        if (!kl_op_is(n, "Slice") || y->rank != 4 || y->nhwc != nhwc_slice) KL_FALLBACK("a channel slab output here");
        kl_value_strides(y, ys);
    }
    s->kind = K_COPY;
    kl_ccopy *c;
    if (kl_op_is(n, "Transpose")) {
        const int64_t *perm = NULL;
        int64_t np = kl_node_attr_ints(n, "perm", &perm);
        if (np && np != x->rank) KL_FALLBACK("perm has the wrong length");
        KL_TRY(kl_cp_add(s, &c));
        c->rank = y->rank;
        for (int a = 0; a < y->rank; a++) {
            int64_t src = np ? perm[a] : y->rank - 1 - a;
            if (src < 0 || src >= x->rank) KL_FALLBACK("perm out of range");
            c->xs[a] = xs[src];
            c->ys[a] = ys[a];
            c->dims[a] = y->dims[a];
        }
        c->x = xp;
        c->y = yp;
        c->esz = y->esz;
        return KILN_OK;
    }
    if (kl_op_is(n, "Expand")) {
        KL_TRY(kl_cp_add(s, &c));
        c->rank = y->rank;
        if (!kl_bcast_strides(x, y->rank, y->dims, c->xs)) KL_FALLBACK("input does not broadcast");
        memcpy(c->ys, ys, sizeof ys);
        memcpy(c->dims, y->dims, (size_t)y->rank * sizeof y->dims[0]);
        c->x = xp;
        c->y = yp;
        c->esz = y->esz;
        return KILN_OK;
    }
    if (kl_op_is(n, "Slice")) {
        int64_t st[KILN_MAX_RANK], en[KILN_MAX_RANK], ax[KILN_MAX_RANK], sp[KILN_MAX_RANK], ns = 0, ne = 0, na = 0, nsp = 0;
        if (n->opset >= 10) {
            if (!kl_host_ints(p, kl_in(n, 1), st, KILN_MAX_RANK, &ns) || !kl_host_ints(p, kl_in(n, 2), en, KILN_MAX_RANK, &ne))
                KL_FALLBACK("starts/ends are not known before the run");
            if (kl_in(n, 3) && !kl_host_ints(p, kl_in(n, 3), ax, KILN_MAX_RANK, &na)) KL_FALLBACK("axes are not known");
            if (kl_in(n, 4) && !kl_host_ints(p, kl_in(n, 4), sp, KILN_MAX_RANK, &nsp)) KL_FALLBACK("steps are not known");
        } else {
            const int64_t *v;
            ns = kl_node_attr_ints(n, "starts", &v);
            if (ns > KILN_MAX_RANK) KL_FALLBACK("too many axes");
            for (int64_t i = 0; i < ns; i++) st[i] = v[i];
            ne = kl_node_attr_ints(n, "ends", &v);
            if (ne > KILN_MAX_RANK) KL_FALLBACK("too many axes");
            for (int64_t i = 0; i < ne; i++) en[i] = v[i];
            na = kl_node_attr_ints(n, "axes", &v);
            if (na > KILN_MAX_RANK) KL_FALLBACK("too many axes");
            for (int64_t i = 0; i < na; i++) ax[i] = v[i];
        }
        if (ns != ne || (na && na != ns) || (nsp && nsp != ns)) KL_FALLBACK("malformed slice");
        KL_TRY(kl_cp_add(s, &c));
        c->rank = x->rank;
        memcpy(c->xs, xs, sizeof xs);
        memcpy(c->ys, ys, sizeof ys);
        memcpy(c->dims, y->dims, (size_t)y->rank * sizeof y->dims[0]);
        int64_t off = 0;
        for (int64_t i = 0; i < ns; i++) {
            int64_t a = na ? ax[i] : i;
            if (a < 0) a += x->rank;
            if (a < 0 || a >= x->rank) KL_FALLBACK("axis out of range");
            int64_t step = nsp ? sp[i] : 1, d = x->dims[a], s0 = st[i];
            if (step == 0) KL_FALLBACK("step 0");
            if (s0 < 0) s0 += d;
            if (step > 0) s0 = s0 < 0 ? 0 : s0 > d ? d : s0;
            else s0 = s0 < 0 ? 0 : s0 > d - 1 ? d - 1 : s0;
            if (y->dims[a] > 0) off += s0 * xs[a];
            c->xs[a] = xs[a] * step;
        }
        c->x = (const uint8_t *)xp + off * (int64_t)x->esz;
        c->y = yp;
        c->esz = y->esz;
        if (nhwc_slice) y->nhwc = true;
        return KILN_OK;
    }
    if (kl_op_is(n, "Concat")) {
        int64_t axis = kl_node_attr_int(n, "axis", 0);
        if (axis < 0) axis += y->rank;
        if (axis < 0 || axis >= y->rank) KL_FALLBACK("axis out of range");
        int64_t at = 0;
        for (size_t k = 0; k < n->n_inputs; k++) {
            const kl_cval *xk;
            const void *xkp;
            KL_TRY(kl_in_any(b, k, &xkp, &xk));
            if (xk->esz != y->esz || xk->rank != y->rank) KL_FALLBACK("inputs differ in type or rank");
            if (xk->count == 0) continue;
            KL_TRY(kl_cp_add(s, &c));
            c->rank = y->rank;
            kl_dense_strides(xk->rank, xk->dims, c->xs);
            memcpy(c->ys, ys, sizeof ys);
            memcpy(c->dims, xk->dims, (size_t)xk->rank * sizeof xk->dims[0]);
            c->x = xkp;
            c->y = (uint8_t *)yp + at * ys[axis] * (int64_t)y->esz;
            c->esz = y->esz;
            at += xk->dims[axis];
        }
        return KILN_OK;
    }
    if (kl_op_is(n, "Split")) {
        int64_t axis = kl_node_attr_int(n, "axis", 0);
        if (axis < 0) axis += x->rank;
        if (axis < 0 || axis >= x->rank) KL_FALLBACK("axis out of range");
        int64_t at = 0;
        for (size_t k = 0; k < n->n_outputs; k++) {
            const kl_value *ov = n->outputs[k];
            if (!ov) KL_FALLBACK("an output is omitted");
            kl_cval *o = &p->v[ov->id];
            if (!o->d || !o->known) KL_FALLBACK("output %zu has no device memory", k);
            if (o->count) {
                KL_TRY(kl_cp_add(s, &c));
                c->rank = o->rank;
                kl_dense_strides(o->rank, o->dims, c->ys);
                memcpy(c->xs, xs, sizeof xs);
                memcpy(c->dims, o->dims, (size_t)o->rank * sizeof o->dims[0]);
                c->x = (const uint8_t *)xp + at * xs[axis] * (int64_t)x->esz;
                c->y = o->d;
                c->esz = o->esz;
            }
            at += o->dims[axis];
        }
        return KILN_OK;
    }
    if (kl_op_is(n, "Pad")) {
        if (!x->isf) KL_FALLBACK("Pad of a non-float tensor");
        int64_t pads[2 * KILN_MAX_RANK], np = 0;
        float value = 0.f;
        if (n->opset >= 11) {
            if (!kl_host_ints(p, kl_in(n, 1), pads, 2 * KILN_MAX_RANK, &np)) KL_FALLBACK("pads are not known before the run");
            if (kl_in(n, 2) && !kl_host_float(p, kl_in(n, 2), &value)) KL_FALLBACK("constant_value is not known");
            if (kl_in(n, 3)) KL_FALLBACK("axes input is not implemented");
        } else {
            const int64_t *v;
            np = kl_node_attr_ints(n, "pads", &v);
            if (np > 2 * KILN_MAX_RANK) KL_FALLBACK("too many pads");
            for (int64_t i = 0; i < np; i++) pads[i] = v[i];
            value = kl_node_attr_float(n, "value", 0.f);
        }
        if (np != 2 * x->rank) KL_FALLBACK("pads do not match the rank");
        int64_t off = 0;
        for (int a = 0; a < x->rank; a++) {
            if (pads[a] < 0 || pads[a + x->rank] < 0) KL_FALLBACK("negative pads are not implemented");
            off += pads[a] * ys[a];
        }
        s->kind = K_FILLCOPY;
        s->fill = value;
        s->n = y->count;
        s->t = y->t;
        s->y = yp;
        KL_TRY(kl_cp_add(s, &c));
        c->rank = x->rank;
        memcpy(c->xs, xs, sizeof xs);
        memcpy(c->ys, ys, sizeof ys);
        memcpy(c->dims, x->dims, (size_t)x->rank * sizeof x->dims[0]);
        c->x = xp;
        c->y = (uint8_t *)yp + off * (int64_t)y->esz;
        c->esz = y->esz;
        return KILN_OK;
    }
    KL_FALLBACK("not a copy");
}

/* ---- one node ------------------------------------------------------------------------------------ */

static kiln_status kl_b_sdpa(kl_bctx *b, kl_cstep *s, kl_cval *y, kc_dtype t);

static kiln_status kl_b_concat_slabs(kl_bctx *b, kl_cstep *s, kl_cval *y);

/* TopK of a float tensor (kc_topk): K known before the run, rows of at
 * most KC_TOPK_MAX_N along the axis; values in the device type, indices
 * int64. */
static kiln_status kl_b_topk(kl_bctx *b, kl_cstep *s, kl_cval *y) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    kl_cplan *p = b->p;
    if (!y->isf) KL_FALLBACK("values are not float");
    if (n->n_outputs < 2 || !n->outputs[1]) KL_FALLBACK("the indices output is omitted");
    kl_cval *iy = &p->v[n->outputs[1]->id];
    if (!iy->d || iy->isf || iy->esz != 8) KL_FALLBACK("indices are not int64 on the device");
    const kl_cval *x;
    const void *xp;
    KL_TRY(kl_in_f(b, 0, &xp, &x, y->t));
    if (x->rank < 1) KL_FALLBACK("a scalar input");
    int64_t axis = kl_node_attr_int(n, "axis", -1), k;
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis >= x->rank) KL_FALLBACK("axis out of range");
    if (n->opset < 10) {
        if (!kl_node_attr(n, "k")) KL_FALLBACK("attribute k is missing");
        k = kl_node_attr_int(n, "k", 0);
    } else {
        int64_t nk = 0;
        if (!kl_host_ints(p, kl_in(n, 1), &k, 1, &nk) || nk != 1) KL_FALLBACK("K is not known before the run");
    }
    int64_t outer = 1, inner = 1, len = x->dims[axis];
    for (int64_t a = 0; a < axis; a++) outer *= x->dims[a];
    for (int64_t a = axis + 1; a < x->rank; a++) inner *= x->dims[a];
    if (k < 0 || k > len) KL_FALLBACK("K = %lld outside [0, %lld]", (long long)k, (long long)len);
    if (len > KC_TOPK_MAX_N)
        KL_FALLBACK("%lld elements along the axis (the kernel sorts up to %d)", (long long)len, KC_TOPK_MAX_N);
    if (outer * inner > INT32_MAX) KL_FALLBACK("too many rows");
    if (y->count != outer * k * inner || iy->count != y->count) KL_FALLBACK("outputs do not have the shape planned");
    s->kind = K_TOPK;
    s->x[0] = xp;
    s->y2 = iy->d;
    s->outer = outer;
    s->mid = len;
    s->inner = inner;
    s->n = k;
    s->flag = n->opset < 11 || kl_node_attr_int(n, "largest", 1) != 0;
    return KILN_OK;
}

static kiln_status kl_cu_build_node(kl_bctx *b, kl_cstep *s) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    const kl_value *yv = n->n_outputs ? n->outputs[0] : NULL;
    if (!yv) KL_FALLBACK("no output");
    kl_cval *y = &b->p->v[yv->id];
    s->node = b->idx;
    s->y = y->d;
    s->t = y->t;
    kc_dtype t = y->t;
    const char *op = n->op_type;
    if (b->p->resid && b->p->resid[b->idx] == 2) {
        kiln_status st = kl_b_resid(b, s, y, t);
        if (st == KILN_ERR_UNSUPPORTED)
            return kl_errorf(KILN_ERR_INTERNAL, "residual GEMM: %s (KILN_CUDA_NO_RESID=1 runs it unfused)", why);
        return st;
    }
    if (b->p->se && b->p->se[b->idx] == 2) {
        kiln_status st = kl_b_se(b, s, y, t);
        if (st == KILN_ERR_UNSUPPORTED)
            return kl_errorf(KILN_ERR_INTERNAL, "squeeze-excitation MLP: %s (KILN_CUDA_NO_SE=1 runs it unfused)", why);
        return st;
    }
    if (b->p->sdpa && b->p->sdpa[b->idx] == 2) {
        /* The nodes it replaced ran nothing: no fallback is possible. */
        kiln_status st = kl_b_sdpa(b, s, y, t);
        if (st == KILN_ERR_UNSUPPORTED)
            return kl_errorf(KILN_ERR_INTERNAL, "fused attention: %s (KILN_CUDA_NO_SDPA=1 runs it unfused)", why);
        return st;
    }
    if (strcmp(n->domain, KL_KILN_DOMAIN) == 0) {
        if (!y->isf) KL_FALLBACK("output is not float");
        if (!strcmp(op, "FusedConv")) return kl_b_conv(b, s, y, t);
        if (!strcmp(op, "FusedGemm")) return kl_b_gemm(b, s, y, t);
        if (!strcmp(op, "FusedMatMul")) return kl_b_matmul(b, s, y, t);
        if (!strcmp(op, "LayerNorm")) return kl_b_norm(b, s, y, t, false);
        if (!strcmp(op, "RMSNorm")) return kl_b_norm(b, s, y, t, true);
        if (!strcmp(op, "Attention")) return kl_b_attention(b, s, y, t);
        if (!strcmp(op, "FusedElementwise")) return kl_b_fe(b, s, y, t);
        KL_FALLBACK("no cuda kernel for kiln.%s", op);
    }
    if (!strcmp(op, "Concat") && b->p->mp.slab_of && b->p->mp.inplace[yv->id] == KL_MEM_JOINED)
        return kl_b_concat_slabs(b, s, y);
    static const char *const copies[] = {"Transpose", "Slice", "Concat", "Split", "Expand", "Pad", NULL};
    if (kl_str_index(op, copies) >= 0) return kl_b_copy(b, s, y, y->d);
    if (!strcmp(op, "Gather")) return kl_b_gather(b, s, y);
    if (!strcmp(op, "TopK")) return kl_b_topk(b, s, y);
    if (!strcmp(op, "Einsum")) {
        if (!y->isf) KL_FALLBACK("output is not float");
        return kl_b_einsum(b, s, y, t);
    }
    if (!y->isf) KL_FALLBACK("output is not float");
    if (!strcmp(op, "Conv")) return kl_b_conv(b, s, y, t);
    if (!strcmp(op, "ConvTranspose")) return kl_b_convt(b, s, y, t);
    if (!strcmp(op, "Gemm")) return kl_b_gemm(b, s, y, t);
    if (!strcmp(op, "MatMul")) return kl_b_matmul(b, s, y, t);
    if (!strcmp(op, "Softmax")) return kl_b_softmax(b, s, t);
    if (!strcmp(op, "MaxPool")) return kl_b_pool(b, s, y, t, true);
    if (!strcmp(op, "AveragePool")) return kl_b_pool(b, s, y, t, false);
    if (!strcmp(op, "GlobalAveragePool") || !strcmp(op, "GlobalMaxPool")) {
        const kl_cval *x;
        const void *xp;
        KL_TRY(kl_in_f_lay(b, 0, &xp, &x, t, -1));
        if (x->rank < 3) KL_FALLBACK("rank below 3");
        if (x->nhwc) { /* [N, HW, C] -> [N, C] */
            s->kind = K_GPOOL;
            s->x[0] = xp;
            s->outer = x->dims[0];
            s->mid = x->dims[2] * x->dims[3];
            s->inner = x->dims[1];
            s->flag = !strcmp(op, "GlobalMaxPool");
            s->op = 1; /* NHWC */
            return KILN_OK;
        }
        s->kind = K_GPOOL;
        s->x[0] = xp;
        s->outer = x->dims[0] * x->dims[1];
        s->inner = s->outer ? x->count / s->outer : 0;
        s->flag = !strcmp(op, "GlobalMaxPool");
        return KILN_OK;
    }
    static const char *const reds[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSumSquare", "ReduceL2", NULL};
    int r = kl_str_index(op, reds);
    if (r >= 0) return kl_b_reduce(b, s, y, t, r);
    if (!strcmp(op, "Resize")) return kl_b_resize(b, s, y, t);
    if (kl_fe_unary(n) >= 0 || kl_fe_binary(n) >= 0) return kl_b_fe(b, s, y, t);
    static const char *const acts[] = {"Clip", "HardSigmoid", "HardSwish", "Gelu", "Mish", NULL};
    if (kl_str_index(op, acts) >= 0) return kl_b_act(b, s, t);
    KL_FALLBACK("no cuda kernel for %s", op);
}

static void kl_cstep_release(kl_cstep *s) {
    kl_free(s->pre);
    kl_free(s->fe);
    kl_free(s->cp);
    kl_free(s->es);
    if (s->conv) kc_conv_destroy(s->conv);
    if (s->gemm) kc_gemm_destroy(s->gemm);
    if (s->attn) kc_attn_destroy(s->attn);
    size_t node = s->node;
    memset(s, 0, sizeof *s);
    s->node = node;
}

/* ---- host steps ----------------------------------------------------------------------------------- */

static kiln_status kl_cu_download(kl_cuda_ctx *c, const kl_cval *cv, kiln_dtype dt, kl_rt **out) {
    kl_rt *r = NULL;
    KL_TRY(kl_rt_tensor(dt, cv->rank, cv->dims, &r));
    cudaError_t e = cudaSuccess;
    if (cv->count && cv->isf && cv->t == KC_F16 && dt == KILN_DTYPE_FLOAT) {
        uint16_t *tmp = kl_malloc((size_t)cv->count * 2);
        if (!tmp) {
            kl_rt_unref(r);
            return KILN_ERR_NO_MEMORY;
        }
        e = cudaMemcpyAsync(tmp, cv->d, (size_t)cv->count * 2, cudaMemcpyDeviceToHost, c->st);
        if (e == cudaSuccess) e = cudaStreamSynchronize(c->st);
        float *f = r->data;
        for (int64_t i = 0; e == cudaSuccess && i < cv->count; i++) f[i] = kl_f16_to_f32(tmp[i]);
        kl_free(tmp);
    } else if (cv->count) {
        e = cudaMemcpyAsync(r->data, cv->d, r->nbytes, cudaMemcpyDeviceToHost, c->st);
        if (e == cudaSuccess) e = cudaStreamSynchronize(c->st);
    }
    if (e != cudaSuccess) {
        kl_rt_unref(r);
        return kl_cu_err(e, "cudaMemcpyAsync (device to host)");
    }
    *out = r;
    return KILN_OK;
}

static kiln_status kl_cu_put(kl_cuda_ctx *c, const kl_cval *cv, const kl_rt *h) {
    if (!h->count) return KILN_OK;
    cudaError_t e;
    if (cv->isf && cv->t == KC_F16 && h->dtype == KILN_DTYPE_FLOAT) {
        uint16_t *tmp = kl_malloc((size_t)h->count * 2);
        if (!tmp) return KILN_ERR_NO_MEMORY;
        const float *f = h->data;
        for (int64_t i = 0; i < h->count; i++) tmp[i] = kl_f32_to_f16(f[i]);
        e = cudaMemcpyAsync(cv->d, tmp, (size_t)h->count * 2, cudaMemcpyHostToDevice, c->st);
        if (e == cudaSuccess) e = cudaStreamSynchronize(c->st);
        kl_free(tmp);
    } else {
        e = cudaMemcpyAsync(cv->d, h->data, h->nbytes, cudaMemcpyHostToDevice, c->st);
        if (e == cudaSuccess) e = cudaStreamSynchronize(c->st);
    }
    if (e != cudaSuccess) return kl_cu_err(e, "cudaMemcpyAsync (host to device)");
    return KILN_OK;
}

static kiln_status kl_cu_host_step(kl_cuda_ctx *c, kl_cplan *p, const kl_cstep *s) {
    const kl_graph *g = c->ce->ir->graph;
    const kl_node *n = g->nodes[s->node];
    kl_rt *ins[64] = {0}, *outs[64] = {0};
    if (n->n_inputs > 64 || n->n_outputs > 64) return kl_errorf(KILN_ERR_UNSUPPORTED, "too many inputs/outputs");
    KL_CU(cudaStreamSynchronize(c->st));
    kiln_status st = KILN_OK;
    for (size_t k = 0; k < n->n_inputs && !st; k++) {
        const kl_value *v = n->inputs[k];
        if (!v) continue;
        kl_cval *cv = &p->v[v->id];
        kl_cval nchw = *cv;
        if (kl_is_nhwc4(cv)) { /* converted by this step's pre-copies */
            nchw.d = cv->alt;
            nchw.nhwc = false;
        } else if (cv->cs) { /* a slab: its dense copy */
            nchw.d = cv->dn;
            nchw.cs = 0;
        }
        if (cv->host) ins[k] = kl_rt_ref(cv->host);
        else if (cv->d) st = kl_cu_download(c, &nchw, p->sh.dtype[v->id], &ins[k]);
        else st = kl_errorf(KILN_ERR_INTERNAL, "input '%s' has no value", v->name);
    }
    if (!st) st = kl_program_run_node_out(c->ce->prog, s->node, ins, NULL, NULL, outs);
    for (size_t k = 0; k < n->n_outputs && !st; k++) {
        const kl_value *v = n->outputs[k];
        if (!v || !outs[k]) continue;
        kl_cval *cv = &p->v[v->id];
        if (!cv->d) continue;
        if (outs[k]->kind != KL_RT_TENSOR || outs[k]->rank != cv->rank ||
            memcmp(outs[k]->dims, cv->dims, (size_t)cv->rank * sizeof cv->dims[0]) != 0) {
            char a[128];
            st = kl_errorf(KILN_ERR_SHAPE, "output '%s' is %s, not the shape planned from the input shapes", v->name,
                           kl_rt_describe(outs[k], a, sizeof a));
            break;
        }
        st = kl_cu_put(c, cv, outs[k]);
    }
    for (size_t k = 0; k < n->n_inputs; k++) kl_rt_unref(ins[k]);
    for (size_t k = 0; k < n->n_outputs; k++) kl_rt_unref(outs[k]);
    if (st) return kl_error_context(st, "node '%s' (%s, on the CPU): ", kl_node_label(n), n->op_type);
    return KILN_OK;
}

/* ---- launching ---------------------------------------------------------------------------------------- */

/* A step's several copies in one launch (kc_copy_multi) unless
 * KILN_CUDA_NO_MULTICOPY is set; read once (launches are on the run path). */
static bool kl_cu_multicopy(void) {
    static int on = -1;
    if (on < 0) on = getenv("KILN_CUDA_NO_MULTICOPY") == NULL;
    return on == 1;
}

static kiln_status kl_cu_step_run(kl_cuda_ctx *c, kl_cplan *p, kl_cstep *s) {
    cudaError_t e = cudaSuccess;
    char msg[256] = "";
    const char *call = NULL;
    int rc = 0;
    for (size_t i = 0; i < s->n_pre; i++) {
        const kl_ccopy *cp = &s->pre[i];
        e = cp->s2d ? kc_s2d_pack(cp->y, cp->x, &cp->sd, cp->esz, c->st)
                    : kc_copy_nd(cp->y, cp->ys, cp->x, cp->xs, cp->dims, cp->rank, cp->esz, c->st);
        if (e != cudaSuccess) {
            const kl_node *n = c->ce->ir->graph->nodes[s->node];
            cudaGetLastError();
            return kl_errorf(KILN_ERR_INTERNAL, "node '%s' (%s): layout conversion: %s", kl_node_label(n), n->op_type,
                             cudaGetErrorString(e));
        }
    }
    switch (s->kind) {
    case K_FE:
        e = kc_fe(s->y, s->fe_in, s->fe, s->t, c->st);
        call = "kc_fe";
        break;
    case K_ACT:
        e = kc_bias_act(s->y, s->x[0], NULL, NULL, 1, 1, s->n, s->act, s->a, s->b, s->t, c->st);
        call = "kc_bias_act";
        break;
    case K_FILLCOPY:
        e = kc_fill(s->y, s->t, s->fill, s->n, c->st);
        call = "kc_fill";
        /* fall through to the copies */
        if (e != cudaSuccess) break;
        /* FALLTHROUGH */
    case K_COPY:
        if (s->n_cp > 1 && kl_cu_multicopy()) { /* a Concat's or Split's parts in one launch */
            kc_copy_desc d[KC_COPY_MULTI];
            size_t i = 0;
            while (i < s->n_cp && e == cudaSuccess) {
                int m = 0;
                size_t esz = s->cp[i].esz;
                for (; i < s->n_cp && m < KC_COPY_MULTI && s->cp[i].esz == esz; i++, m++) {
                    const kl_ccopy *cp = &s->cp[i];
                    d[m] = (kc_copy_desc){cp->y, cp->x, cp->ys, cp->xs, cp->dims, cp->rank};
                }
                e = kc_copy_multi(d, m, esz, c->st);
                call = "kc_copy_multi";
            }
            break;
        }
        for (size_t i = 0; i < s->n_cp && e == cudaSuccess; i++) {
            const kl_ccopy *cp = &s->cp[i];
            e = kc_copy_nd(cp->y, cp->ys, cp->x, cp->xs, cp->dims, cp->rank, cp->esz, c->st);
            call = "kc_copy_nd";
        }
        break;
    case K_CONV:
        if (s->pool_part)
            rc = kc_conv_run_pool(s->conv, s->x[0], s->x[2], s->x[3], s->y, s->pool_part, c->st, msg, sizeof msg);
        else
            rc = kc_conv_run(s->conv, s->x[0], s->x[1], s->x[2], s->x[3], s->y, p->ws, c->st, msg, sizeof msg);
        break;
    case K_GEMM:
        rc = kc_gemm_run(s->gemm, s->x[0], s->x[1], s->x[2], s->x[3], s->y, p->ws, c->st, msg, sizeof msg);
        break;
    case K_ATTN:
        rc = kc_attn_run(s->attn, s->x[0], s->x[1], s->x[2], s->x[3], s->x[4], s->y, p->ws, c->st, msg, sizeof msg);
        break;
    case K_LN:
        e = kc_layernorm(s->y, s->x[0], s->x[1], s->x[2], s->outer, s->inner, s->eps, s->flag, s->t, c->st);
        call = "kc_layernorm";
        break;
    case K_SOFTMAX:
        e = kc_softmax(s->y, s->x[0], s->outer, s->mid, s->inner, s->a, NULL, KC_F32, 1, 1, 0, 0, 0, s->t, c->st);
        call = "kc_softmax";
        break;
    case K_POOL:
        e = kc_pool2d_run(s->y, s->x[0], &s->pool, s->t, c->st);
        call = "kc_pool2d_run";
        break;
    case K_GPOOL:
        if (s->op == 1) e = kc_global_pool_nhwc(s->y, s->x[0], s->outer, s->mid, s->inner, s->flag, s->t, c->st);
        else e = kc_global_pool(s->y, s->x[0], s->outer, s->inner, s->flag, s->t, c->st);
        call = "kc_global_pool";
        break;
    case K_REDUCE:
        e = kc_reduce(s->y, s->x[0], s->outer, s->mid, s->inner, s->op, s->t, c->st);
        call = "kc_reduce";
        break;
    case K_RESIZE:
        e = kc_resize_run(s->y, s->x[0], &s->rs, s->t, c->st);
        call = "kc_resize_run";
        break;
    case K_TOPK:
        e = kc_topk(s->y, s->y2, s->x[0], s->outer, s->mid, s->inner, s->n, s->flag, s->t, c->st);
        call = "kc_topk";
        break;
    case K_GATHER:
        e = kc_gather(s->y, s->x[0], s->x[1], s->outer, s->mid, s->n, s->inner, (size_t)s->flag, c->st);
        call = "kc_gather";
        break;
    case K_EINSUM:
        e = kc_einsum(s->y, s->x[0], s->x[1], s->es, s->t, c->st);
        call = "kc_einsum";
        break;
    case K_SE:
        if (s->flag == 1 && s->pool_part) {
            e = kc_se_mlp_fold_parts(s->y, s->pool_part, s->pool_parts, p->ws, s->outer, s->n, s->inner, s->x[1],
                                     s->x[2], s->x[3], s->x[4], s->mid, s->act, s->a, s->b, s->act2, s->a2, s->b2,
                                     s->wf, s->wsrc, s->wk, s->t, c->st);
            call = "kc_se_mlp_fold_parts";
            break;
        }
        if (s->flag == 1) {
            e = kc_se_pool_mlp_fold(s->y, s->x[0], p->ws, s->outer, s->n, s->inner, s->op, s->x[1], s->x[2], s->x[3],
                                    s->x[4], s->mid, s->act, s->a, s->b, s->act2, s->a2, s->b2, s->wf, s->wsrc, s->wk,
                                    s->t, c->st);
            call = "kc_se_pool_mlp";
            break;
        }
        const void *pooled = s->x[0];
        if (s->flag == 2) {
            e = kc_global_pool(p->ws, s->x[0], s->outer * s->inner, s->n, s->op, s->t, c->st);
            if (e != cudaSuccess) {
                call = "kc_global_pool (squeeze-excitation)";
                break;
            }
            pooled = p->ws;
        }
        e = kc_se_mlp(s->y, pooled, s->x[1], s->x[2], s->x[3], s->x[4], s->outer, s->inner, s->mid, s->act, s->a, s->b,
                      s->act2, s->a2, s->b2, s->t, c->st);
        call = "kc_se_mlp";
        break;
    case K_HOST:
        return kl_cu_host_step(c, p, s);
    default:
        return kl_errorf(KILN_ERR_INTERNAL, "unknown step kind %d", s->kind);
    }
    const kl_node *n = c->ce->ir->graph->nodes[s->node];
    if (rc) return kl_errorf(KILN_ERR_INTERNAL, "node '%s' (%s): %s", kl_node_label(n), n->op_type, msg);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return kl_errorf(e == cudaErrorMemoryAllocation ? KILN_ERR_NO_MEMORY : KILN_ERR_INTERNAL, "node '%s' (%s): %s: %s",
                         kl_node_label(n), n->op_type, call ? call : "launch", cudaGetErrorString(e));
    }
    return KILN_OK;
}

/* Run a branch's step on the side stream with the side workspace, with no early launch (its stream
 * waits on an event). */
static kiln_status kl_cu_side_run(kl_cuda_ctx *c, kl_cplan *p, kl_cstep *s, int k, bool hold) {
    cudaStream_t st = c->st;
    void *ws = p->ws;
    c->st = c->st2[k];
    p->ws = p->ws_side[k];
    kc_pdl_hold(hold);
    kiln_status r = kl_cu_step_run(c, p, s);
    kc_pdl_hold(0);
    c->st = st;
    p->ws = ws;
    return r;
}

/* Side streams for branches: KILN_CUDA_SIDE_STREAMS (1..KL_CU_SIDE_MAX, default 1); read once. */
static int kl_cu_side_streams(void) {
    static int n = 0;
    if (!n) {
        const char *e = getenv("KILN_CUDA_SIDE_STREAMS");
        int v = e ? atoi(e) : 1;
        n = v < 1 ? 1 : v > KL_CU_SIDE_MAX ? KL_CU_SIDE_MAX : v;
    }
    return n;
}

/* KILN_CUDA_SIDE_PDL=1: a branch's later kernels launch early after its first (PDL); default 0: each waits
 * for the one before.  Read once. */
static bool kl_cu_side_pdl(void) {
    static int on = -1;
    if (on < 0) on = getenv("KILN_CUDA_SIDE_PDL") && atoi(getenv("KILN_CUDA_SIDE_PDL")) == 1;
    return on == 1;
}

/* Does step s end with a library kernel (cuBLASLt, cuDNN)? */
static bool kl_cu_lib_step(const kl_cstep *s) {
    if (s->kind == K_GEMM) return true;
    if (s->kind != K_CONV || !s->conv) return false;
    int a = kc_conv_algo(s->conv);
    return !((a >= KC_CONV_ALGO_DW && a < KC_CONV_ALGO_GEMM) || kl_cuda_algo_is_own_conv(a));
}

static kiln_status kl_cu_launch(kl_cuda_ctx *c, kl_cplan *p) {
    bool prof = c->profiling && c->node_ms;
    if (prof && c->n_lev < 2 * p->n_steps + 2) {
        for (size_t i = 0; i < c->n_lev; i++) cudaEventDestroy(c->lev[i]);
        kl_free(c->lev);
        c->n_lev = 0;
        c->lev = kl_calloc(2 * p->n_steps + 2, sizeof *c->lev);
        if (!c->lev) return KILN_ERR_NO_MEMORY;
        for (size_t i = 0; i < 2 * p->n_steps + 2; i++) {
            KL_CU(cudaEventCreate(&c->lev[i]));
            c->n_lev++;
        }
    }
    /* KILN_CUDA_PDL_AFTER_LIB=0: no early launch right after a library
     * kernel (cuBLASLt, cuDNN; see kl_cu_lib_step).  An experiment: with
     * early launch everywhere ResNet-50 and ViT-B/16 FP16 batch 1 were about
     * 1% slower on the H200; not measured yet with this hold. */
    static int after_lib = -1;
    if (after_lib < 0) after_lib = !(getenv("KILN_CUDA_PDL_AFTER_LIB") && atoi(getenv("KILN_CUDA_PDL_AFTER_LIB")) == 0);
    bool prev_lib = false;
    /* branches on the side stream (kl_cu_side_steps); in order when profiling, so that each layer's time is its own */
    bool branches = !prof && p->n_side && c->st2[0] && c->n_ev_join >= p->n_side;
    int n_st = kl_cu_side_streams();
    for (size_t i = 0; i < p->n_steps; i++) {
        const kl_cstep *st = &p->steps[i];
        if (branches && st->side) continue;
        if (branches && st->join1) KL_CU(cudaStreamWaitEvent(c->st, c->ev_join[st->join1 - 1], 0));
        if (branches && st->fork1) {
            KL_CU(cudaEventRecord(c->ev_fork, c->st));
            size_t br = p->steps[st->fork1 - 1].br;
            int q = (int)(br % (size_t)n_st);
            KL_CU(cudaStreamWaitEvent(c->st2[q], c->ev_fork, 0));
            /* the branch's first kernel waits on the event; with KILN_CUDA_SIDE_PDL=1 the next ones may launch
             * early after it */
            bool lib = false;
            for (size_t k = st->fork1; k; k = p->steps[k - 1].side_next1) {
                KL_TRY(kl_cu_side_run(c, p, &p->steps[k - 1], q,
                                      !kl_cu_side_pdl() || k == st->fork1 || (lib && !after_lib)));
                lib = kl_cu_lib_step(&p->steps[k - 1]);
            }
            KL_CU(cudaEventRecord(c->ev_join[br], c->st2[q]));
        }
        if (prof) KL_CU(cudaEventRecord(c->lev[2 * i], c->st));
        kc_pdl_hold((prev_lib && !after_lib) || (branches && st->join1));
        kiln_status s = kl_cu_step_run(c, p, &p->steps[i]);
        kc_pdl_hold(0);
        KL_TRY(s);
        prev_lib = kl_cu_lib_step(&p->steps[i]);
        if (prof) KL_CU(cudaEventRecord(c->lev[2 * i + 1], c->st));
    }
    if (prof) {
        KL_CU(cudaStreamSynchronize(c->st));
        for (size_t i = 0; i < p->n_steps; i++) {
            float ms = 0;
            KL_CU(cudaEventElapsedTime(&ms, c->lev[2 * i], c->lev[2 * i + 1]));
            const kl_cstep *st = &p->steps[i];
            size_t at = st->charge1 ? st->charge1 - 1 : st->node;
            c->node_ms[at] += ms;
            c->node_runs[at]++;
        }
    }
    return KILN_OK;
}

/* Capture the plan's launches into a CUDA graph (no host steps). */
static void kl_cu_capture(kl_cuda_ctx *c, kl_cplan *p) {
    p->graph_tried = true;
    if (p->n_host || !c->ce->opt.graphs) return;
    cudaGraph_t graph = NULL;
    if (cudaStreamBeginCapture(c->st, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        cudaGetLastError();
        return;
    }
    bool prof = c->profiling;
    c->profiling = false;
    kiln_status s = kl_cu_launch(c, p);
    c->profiling = prof;
    cudaError_t e = cudaStreamEndCapture(c->st, &graph);
    if (s || e != cudaSuccess || !graph) {
        kl_error_clear();
        cudaGetLastError();
        if (graph) cudaGraphDestroy(graph);
        return;
    }
    if (cudaGraphInstantiate(&p->gexec, graph, 0) != cudaSuccess) {
        cudaGetLastError();
        p->gexec = NULL;
    }
    cudaGraphDestroy(graph);
}

/* ---- plan creation ------------------------------------------------------------------------------------ */

static bool kl_nondeterministic(const kl_node *n) {
    return strncmp(n->op_type, "Random", 6) == 0 || !strcmp(n->op_type, "Multinomial") || !strcmp(n->op_type, "Bernoulli");
}

/* Shape and Size from the planned shape of their input. */
static kiln_status kl_cu_shape_node(const kl_node *n, const kl_cval *x, kl_rt **out) {
    if (!strcmp(n->op_type, "Size")) {
        KL_TRY(kl_rt_tensor(KILN_DTYPE_INT64, 0, NULL, out));
        ((int64_t *)(*out)->data)[0] = x->count;
        return KILN_OK;
    }
    int64_t r = x->rank, st = kl_node_attr_int(n, "start", 0), en = kl_node_attr_int(n, "end", r);
    if (st < 0) st += r;
    if (en < 0) en += r;
    st = st < 0 ? 0 : st > r ? r : st;
    en = en < 0 ? 0 : en > r ? r : en;
    int64_t len = en > st ? en - st : 0;
    KL_TRY(kl_rt_tensor(KILN_DTYPE_INT64, 1, &len, out));
    for (int64_t i = 0; i < len; i++) ((int64_t *)(*out)->data)[i] = x->dims[st + i];
    return KILN_OK;
}

/* The only reader of value v is node n (and v is not a graph output). */
static bool kl_only_reader(const kl_value *v, const kl_node *n) {
    if (!v || v->n_uses != 1 || v->uses[0].node != n) return false;
    for (size_t k = 0; k < v->graph->n_outputs; k++)
        if (v->graph->outputs[k] == v) return false;
    return true;
}

static const kl_node *kl_producer_op(const kl_value *v, const char *op) {
    const kl_node *n = v ? v->producer : NULL;
    return n && !n->domain[0] && !strcmp(n->op_type, op) && !n->removed ? n : NULL;
}

/* x = y * c or y / c with c a one-element float constant: *base = y and
 * the factor (1/c for Div); else *base = x, factor 1. */
static void kl_scaled(const kl_value *x, const kl_node *reader, const kl_value **base, float *factor,
                      const kl_node **scaler) {
    *base = x;
    *factor = 1.f;
    *scaler = NULL;
    const kl_node *m = kl_producer_op(x, "Mul");
    if (!m) m = kl_producer_op(x, "Div");
    if (!m || !kl_only_reader(x, reader) || m->n_inputs != 2) return;
    bool div = !strcmp(m->op_type, "Div");
    for (int k = div ? 1 : 0; k < 2; k++) {
        const kl_value *c = m->inputs[k];
        if (!c || !(c->flags & KL_VALUE_INITIALIZER) || !c->init || c->init->count != 1) continue;
        if (c->init->dtype != KILN_DTYPE_FLOAT && c->init->dtype != KILN_DTYPE_FLOAT16) continue;
        float f = c->init->dtype == KILN_DTYPE_FLOAT ? *(const float *)c->init->data : kl_f16_to_f32(*(const uint16_t *)c->init->data);
        *base = m->inputs[1 - k];
        *factor = div ? 1.f / f : f;
        *scaler = m;
        return;
    }
}

static const kl_node *kl_producer_kiln(const kl_value *v, const char *op) {
    const kl_node *n = v ? v->producer : NULL;
    return n && !strcmp(n->domain, KL_KILN_DOMAIN) && !strcmp(n->op_type, op) && !n->removed ? n : NULL;
}

/* SAM's add_decomposed_rel_pos between the scores S [N, Sq, Sk] and the
 * Softmax: sv = Reshape(X [N, qh, qw, kh, kw] = Reshape(S) + Rh [N, qh, qw,
 * kh, 1] + Rw [N, qh, qw, 1, kw]) with the adds one kiln.FusedElementwise
 * (two ADD steps) or two Adds, each value read only by the next.  Sets the
 * scores' producer, the nodes to skip (gone[0..3]) and Rh, Rw. */
/* SAM's add_decomposed_rel_pos between the scores S [L..., Sq, Sk] and the
 * Softmax (L: one or two leading batch dims): sv = Reshape(X [L..., qh, qw,
 * kh, kw] = Reshape(S) + Rh [L..., qh, qw, kh, 1] + Rw [L..., qh, qw, 1,
 * kw]), the adds one kiln.FusedElementwise (two ADD steps) or two Adds,
 * each value read only by the next.  Sets the scores' producer, the nodes
 * to skip (gone[0..3]) and Rh, Rw. */
static bool kl_cu_relpos(const kl_cplan *p, const kl_value *sv, const kl_node *sm, const kl_node **m1,
                         const kl_node *gone[4], const kl_value **rh, const kl_value **rw) {
    const kl_node *r2 = kl_producer_op(sv, "Reshape");
    if (!r2 || !kl_only_reader(sv, sm)) return false;
    const kl_value *x = r2->inputs[0], *terms[3];
    if (!x) return false;
    const kl_node *fe = kl_producer_kiln(x, "FusedElementwise"), *a1 = NULL, *a2 = NULL;
    if (fe) {
        const int64_t *ops = NULL, *args = NULL;
        if (!kl_only_reader(x, r2) || fe->n_inputs != 3 || kl_node_attr_ints(fe, "ops", &ops) != 2 ||
            kl_node_attr_ints(fe, "args", &args) != 2 || ops[0] != KL_FE_ADD || ops[1] != KL_FE_ADD || args[0] != 1 ||
            args[1] != 2)
            return false;
        for (int k = 0; k < 3; k++) terms[k] = fe->inputs[k];
    } else {
        a2 = kl_producer_op(x, "Add");
        if (!a2 || !kl_only_reader(x, r2) || a2->n_inputs != 2) return false;
        int j = kl_producer_op(a2->inputs[0], "Add") && kl_only_reader(a2->inputs[0], a2) ? 0 : 1;
        a1 = kl_producer_op(a2->inputs[j], "Add");
        if (!a1 || !kl_only_reader(a2->inputs[j], a2) || a1->n_inputs != 2 || !kl_only_reader(a1->outputs[0], a2))
            return false;
        terms[0] = a1->inputs[0], terms[1] = a1->inputs[1], terms[2] = a2->inputs[1 - j];
    }
    /* the scores: the term a Reshape of a MatMul gives (read only by the adds) */
    const kl_node *r1 = NULL;
    int ks = -1;
    for (int k = 0; k < 3 && !r1; k++) {
        const kl_node *r = terms[k] ? kl_producer_op(terms[k], "Reshape") : NULL;
        if (r && kl_only_reader(terms[k], fe ? fe : (k < 2 || !a1) ? (a1 ? a1 : a2) : a2) &&
            kl_producer_op(r->inputs[0], "MatMul"))
            r1 = r, ks = k;
    }
    if (!r1) return false;
    int r5 = p->sh.rank[terms[ks]->id], nb = r5 - 4;
    if (nb < 1 || nb > 2) return false;
    const int64_t *dx = p->sh.dims[terms[ks]->id];
    *rh = *rw = NULL;
    for (int k = 0; k < 3; k++) {
        if (k == ks) continue;
        const kl_value *t = terms[k];
        if (!t || p->sh.rank[t->id] != r5) return false;
        const int64_t *dt = p->sh.dims[t->id];
        for (int a = 0; a < nb + 2; a++)
            if (dt[a] != dx[a]) return false;
        if (dt[nb + 2] == dx[nb + 2] && dt[nb + 3] == 1 && !*rh) *rh = t;
        else if (dt[nb + 2] == 1 && dt[nb + 3] == dx[nb + 3] && !*rw) *rw = t;
        else return false;
    }
    if (!*rh || !*rw) return false;
    const kl_value *sc = r1->inputs[0];
    *m1 = kl_producer_op(sc, "MatMul");
    if (!*m1 || !kl_only_reader(sc, r1) || p->sh.rank[sc->id] != nb + 2) return false;
    const int64_t *ds = p->sh.dims[sc->id];
    for (int a = 0; a < nb; a++)
        if (ds[a] != dx[a]) return false;
    if (ds[nb] != dx[nb] * dx[nb + 1] || ds[nb + 1] != dx[nb + 2] * dx[nb + 3]) return false;
    gone[0] = r1, gone[1] = fe ? fe : a1, gone[2] = fe ? NULL : a2, gone[3] = r2;
    return true;
}

/* Find MatMul(Q*a, Transpose(K)*b) -> Softmax(last axis) -> MatMul(., V)
 * on 4-D [B,H,S,D] or 3-D [N,S,D] tensors, every intermediate read only by
 * the next, optionally with SAM's decomposed relative positions added to
 * the scores (kl_cu_relpos): the cuda attention runs it as batch B*H with
 * one head (no score matrix in memory).  keep[] extends Q, K, V (and the
 * relative-position terms) to the final MatMul for the planner. */
static kiln_status kl_cu_find_sdpa(const kl_cuda_engine *ce, kl_cplan *p, size_t *keep) {
    const kl_graph *g = ce->ir->graph;
    size_t nn = g->n_nodes;
    if (getenv("KILN_CUDA_NO_SDPA")) return KILN_OK;
    for (size_t i = 0; i < nn; i++) {
        const kl_node *m2 = g->nodes[i];
        if (!ce->on_gpu[i] || m2->domain[0] || strcmp(m2->op_type, "MatMul") || m2->n_inputs != 2) continue;
        const kl_value *pv = m2->inputs[0], *v = m2->inputs[1];
        const kl_node *sm = kl_producer_op(pv, "Softmax");
        if (!sm || !kl_only_reader(pv, m2) || !ce->on_gpu[sm->index]) continue;
        const kl_value *sv = sm->inputs[0], *rh = NULL, *rw = NULL;
        const kl_node *m1 = kl_producer_op(sv, "MatMul"), *rgone[4] = {NULL, NULL, NULL, NULL};
        if (m1 && !kl_only_reader(sv, sm)) continue;
        if (!m1 && (!ce->opt.fp16 || !kl_cu_relpos(p, sv, sm, &m1, rgone, &rh, &rw))) continue;
        if (!ce->on_gpu[m1->index]) continue;
        bool on = true;
        for (int j = 0; j < 4; j++) on = on && (!rgone[j] || ce->on_gpu[rgone[j]->index]);
        if (!on) continue;
        int rank = p->sh.rank[sv->id];
        int64_t axis = kl_node_attr_int(sm, "axis", sm->opset >= 13 ? -1 : 1);
        if ((rank != 4 && rank != 3) || (axis != -1 && axis != rank - 1)) continue;
        const kl_value *q, *kt, *k;
        float fq, fk;
        const kl_node *sq, *sk;
        kl_scaled(m1->inputs[0], m1, &q, &fq, &sq);
        kl_scaled(m1->inputs[1], m1, &kt, &fk, &sk);
        const kl_node *tr = kl_producer_op(kt, "Transpose");
        if (!tr || !kl_only_reader(kt, sk ? sk : m1)) continue;
        const int64_t *perm = NULL;
        if (kl_node_attr_ints(tr, "perm", &perm) != rank) continue;
        bool swap_last = perm[rank - 2] == rank - 1 && perm[rank - 1] == rank - 2;
        for (int a = 0; a < rank - 2; a++) swap_last = swap_last && perm[a] == a;
        if (!swap_last) continue;
        k = tr->inputs[0];
        if (!q || !k || !v || p->sh.rank[q->id] != rank || p->sh.rank[k->id] != rank || p->sh.rank[v->id] != rank)
            continue;
        const int64_t *dq = p->sh.dims[q->id], *dk = p->sh.dims[k->id], *dv = p->sh.dims[v->id];
        /* as [B, H, S, D] with H = 1 for 3-D */
        int o = rank - 4;
        int64_t qb = dq[0], qh = o ? 1 : dq[1], kb = dk[0], kh = o ? 1 : dk[1], vb = dv[0], vh = o ? 1 : dv[1];
        if (qb != kb || qh != kh || dq[3 + o] != dk[3 + o] || vb != qb || vh != qh || dv[2 + o] != dk[2 + o]) continue;
        if (rh) {
            /* the relative-position terms index the batch (the leading dims), the query row and kh / kw;
               only the fused kernel adds them (the unfused attention has no such mask) */
            int nb = p->sh.rank[rh->id] - 4;
            const int64_t *dx = p->sh.dims[rh->id], *dw = p->sh.dims[rw->id];
            int64_t n = 1;
            for (int a = 0; a < nb; a++) n *= dx[a];
            if (n != qb * qh || dx[nb] * dx[nb + 1] != dq[2 + o] || dx[nb + 2] * dw[nb + 3] != dk[2 + o]) continue;
            if (!kc_flash_supported(KC_F16, dq[3 + o], dv[3 + o], n, 1, dq[2 + o]) ||
                kc_flash_prepare(dq[3 + o]) != cudaSuccess) {
                cudaGetLastError();
                continue;
            }
        }
        if (!p->sdpa) {
            p->sdpa = kl_calloc(nn ? nn : 1, 1);
            p->sdpa_q = kl_calloc(nn ? nn : 1, sizeof *p->sdpa_q);
            p->sdpa_k = kl_calloc(nn ? nn : 1, sizeof *p->sdpa_k);
            p->sdpa_scale = kl_calloc(nn ? nn : 1, sizeof *p->sdpa_scale);
            p->sdpa_rh = kl_calloc(nn ? nn : 1, sizeof *p->sdpa_rh);
            p->sdpa_rw = kl_calloc(nn ? nn : 1, sizeof *p->sdpa_rw);
            if (!p->sdpa || !p->sdpa_q || !p->sdpa_k || !p->sdpa_scale || !p->sdpa_rh || !p->sdpa_rw)
                return KILN_ERR_NO_MEMORY;
        }
        const kl_node *gone[9] = {sq, sk, tr, m1, sm, rgone[0], rgone[1], rgone[2], rgone[3]};
        for (int j = 0; j < 9; j++)
            if (gone[j]) p->sdpa[gone[j]->index] = 1;
        p->sdpa[i] = 2;
        p->sdpa_q[i] = q;
        p->sdpa_k[i] = k;
        p->sdpa_scale[i] = fq * fk;
        p->sdpa_rh[i] = rh;
        p->sdpa_rw[i] = rw;
        keep[q->id] = KL_MAX(keep[q->id], i + 1);
        keep[k->id] = KL_MAX(keep[k->id], i + 1);
        if (rh) {
            keep[rh->id] = KL_MAX(keep[rh->id], i + 1);
            keep[rw->id] = KL_MAX(keep[rw->id], i + 1);
        }
    }
    return KILN_OK;
}

/* Add(z, MatMul(A, W) [+ bias]) with W 2-D, no activation, the product
 * (or a Reshape of it) read only by the Add, nothing else between them,
 * z of the Add's shape made before the MatMul: the GEMM adds z in its
 * epilogue at the Add (ViT's and SAM's residual connections).  keep[]
 * extends the MatMul's inputs to the Add. */
static kiln_status kl_cu_find_resid(const kl_cuda_engine *ce, kl_cplan *p, size_t *keep) {
    const kl_graph *g = ce->ir->graph;
    size_t nn = g->n_nodes;
    if (getenv("KILN_CUDA_NO_RESID")) return KILN_OK;
    for (size_t i = 0; i < nn; i++) {
        const kl_node *add = g->nodes[i];
        if (!ce->on_gpu[i] || add->domain[0] || strcmp(add->op_type, "Add") || add->n_inputs != 2 ||
            add->n_outputs != 1 || (p->sdpa && p->sdpa[i]))
            continue;
        const kl_value *y = add->outputs[0];
        int ry = p->sh.rank[y->id];
        if (ry < 2 || ry == 4) continue; /* 4-D: convolution activations (their own residual fusion) */
        for (int k = 0; k < 2; k++) {
            const kl_value *mv = add->inputs[k], *z = add->inputs[1 - k];
            if (!mv || !z || mv == z || p->sh.rank[z->id] != ry) continue;
            bool same = true;
            for (int a = 0; a < ry; a++) same = same && p->sh.dims[z->id][a] == p->sh.dims[y->id][a];
            if (!same || !kl_only_reader(mv, add)) continue;
            const kl_node *rs = kl_producer_op(mv, "Reshape"), *mm;
            const kl_value *pv = mv;
            if (rs) {
                pv = rs->inputs[0];
                if (!kl_only_reader(pv, rs) || !ce->on_gpu[rs->index] || (p->sdpa && p->sdpa[rs->index])) continue;
            }
            mm = kl_producer_op(pv, "MatMul");
            if (!mm) mm = kl_producer_kiln(pv, "FusedMatMul");
            bool gemm = false;
            if (!mm && (mm = kl_producer_op(pv, "Gemm")) != NULL) {
                /* C a bias row (not a matrix that would take the epilogue's z) */
                const kl_value *cv = mm->n_inputs > 2 ? mm->inputs[2] : NULL;
                gemm = !cv || (p->sh.rank[cv->id] == 1 && kl_node_attr_float(mm, "beta", 1.f) == 1.f);
                if (!gemm) continue;
            }
            if (!mm || !ce->on_gpu[mm->index] || (p->sdpa && p->sdpa[mm->index]) || mm->n_inputs < 2) continue;
            if (kl_node_attr_int(mm, "activation", 0) != KL_ACT_NONE) continue;
            const kl_value *a = mm->inputs[0], *w = mm->inputs[1];
            if (!a || !w || p->sh.rank[w->id] != 2 || p->sh.rank[a->id] < 2 || (gemm && p->sh.rank[a->id] != 2))
                continue;
            /* nothing but the Reshape between the MatMul and the Add; z made before the MatMul */
            size_t between = i - mm->index - 1;
            if (between != (rs ? 1u : 0u) || (rs && rs->index != mm->index + 1)) continue;
            if (z->producer && z->producer->index > mm->index) continue;
            /* z must be dense: a column slice read in place (a strided view, maybe under reshapes) is not */
            const kl_value *u = z;
            while (u && u->producer && kl_cu_view_op(u->producer) && u->producer->n_inputs) u = u->producer->inputs[0];
            if (u && u->producer && !u->producer->domain[0] && !strcmp(u->producer->op_type, "Slice")) continue;
            if (!p->resid) {
                p->resid = kl_calloc(nn ? nn : 1, 1);
                p->resid_mm = kl_calloc(nn ? nn : 1, sizeof *p->resid_mm);
                if (!p->resid || !p->resid_mm) return KILN_ERR_NO_MEMORY;
            }
            p->resid[mm->index] = 1;
            if (rs) p->resid[rs->index] = 1;
            p->resid[i] = 2;
            p->resid_mm[i] = mm;
            for (size_t j = 0; j < mm->n_inputs; j++)
                if (mm->inputs[j]) keep[mm->inputs[j]->id] = KL_MAX(keep[mm->inputs[j]->id], i + 1);
            break;
        }
    }
    return KILN_OK;
}

/* A 1x1 convolution (Conv, or kiln.FusedConv without a residual input)
 * of a float [N, C, 1, 1] to [N, K, 1, 1] with constant weights. */
static bool kl_cu_fc1x1(const kl_cplan *p, const kl_node *n) {
    bool fused = !strcmp(n->domain, KL_KILN_DOMAIN) && !strcmp(n->op_type, "FusedConv");
    if (!fused && (n->domain[0] || strcmp(n->op_type, "Conv"))) return false;
    if (n->n_inputs < 2 || n->n_outputs != 1 || (n->n_inputs > 3 && n->inputs[3]) || kl_node_attr_int(n, "group", 1) != 1)
        return false;
    const kl_value *x = n->inputs[0], *w = n->inputs[1], *y = n->outputs[0], *bv = n->n_inputs > 2 ? n->inputs[2] : NULL;
    if (!x || !w || !y || !(w->flags & KL_VALUE_INITIALIZER) || (bv && !(bv->flags & KL_VALUE_INITIALIZER))) return false;
    if (p->sh.rank[x->id] != 4 || p->sh.rank[w->id] != 4 || p->sh.rank[y->id] != 4) return false;
    const int64_t *xd = p->sh.dims[x->id], *wd = p->sh.dims[w->id], *yd = p->sh.dims[y->id];
    kiln_dtype dt = p->sh.dtype[x->id];
    return (dt == KILN_DTYPE_FLOAT || dt == KILN_DTYPE_FLOAT16) && xd[2] == 1 && xd[3] == 1 && wd[2] == 1 &&
           wd[3] == 1 && yd[2] == 1 && yd[3] == 1 && wd[1] == xd[1] && yd[1] == wd[0] && yd[0] == xd[0];
}

/* Squeeze-and-excitation MLPs: a 1x1 convolution over [N, C, 1, 1] whose
 * only reader is another, back to C channels (EfficientNet's and
 * MobileNet-V3's fc1 -> act -> fc2 -> sigmoid after a global pool) run as
 * one kc_se_mlp at the second; the first runs nothing.  At batch 1 each
 * was a cuBLASLt GEMM with M = 1 (15-24 us per SE block in the per-layer
 * profile, 32 of EfficientNet-B0's layers). */
static kiln_status kl_cu_find_se(const kl_cuda_engine *ce, kl_cplan *p, size_t *keep) {
    const kl_graph *g = ce->ir->graph;
    size_t nn = g->n_nodes;
    if (getenv("KILN_CUDA_NO_SE")) return KILN_OK;
    for (size_t i = 0; i < nn; i++) {
        const kl_node *n2 = g->nodes[i];
        if (!ce->on_gpu[i] || (p->sdpa && p->sdpa[i]) || (p->resid && p->resid[i]) || !kl_cu_fc1x1(p, n2)) continue;
        const kl_value *h = n2->inputs[0];
        const kl_node *n1 = h->producer;
        if (!n1 || n1->removed || !ce->on_gpu[n1->index] || (p->sdpa && p->sdpa[n1->index]) ||
            (p->resid && p->resid[n1->index]) || (p->se && p->se[n1->index]) || !kl_cu_fc1x1(p, n1) ||
            !kl_only_reader(h, n2))
            continue;
        const int64_t *pd = p->sh.dims[n1->inputs[0]->id], *yd = p->sh.dims[n2->outputs[0]->id];
        int64_t c = pd[1], cr = p->sh.dims[h->id][1];
        if (yd[1] != c || c > 8192 || cr > 1024 || pd[0] > 0x7fffffff) continue;
        if (!p->se) {
            p->se = kl_calloc(nn ? nn : 1, 1);
            p->se_fc1 = kl_calloc(nn ? nn : 1, sizeof *p->se_fc1);
            if (!p->se || !p->se_fc1) return KILN_ERR_NO_MEMORY;
        }
        p->se[n1->index] = 1;
        p->se[i] = 2;
        p->se_fc1[i] = n1;
        for (size_t j = 0; j < n1->n_inputs; j++)
            if (n1->inputs[j]) keep[n1->inputs[j]->id] = KL_MAX(keep[n1->inputs[j]->id], i + 1);
        /* The global pool whose only reader is the first runs in the same
         * step (kc_se_pool_mlp: at batch 1 a pool over one block per image
         * took 20-28 us); KILN_CUDA_NO_SE_POOL=1 keeps it apart. */
        const kl_value *h0 = n1->inputs[0];
        const kl_node *gp = h0 ? h0->producer : NULL;
        if (gp && !gp->removed && !gp->domain[0] &&
            (!strcmp(gp->op_type, "GlobalAveragePool") || !strcmp(gp->op_type, "GlobalMaxPool")) &&
            ce->on_gpu[gp->index] && !(p->sdpa && p->sdpa[gp->index]) && !(p->resid && p->resid[gp->index]) &&
            !p->se[gp->index] && kl_only_reader(h0, n1) && gp->inputs[0] && p->sh.rank[gp->inputs[0]->id] == 4 &&
            !getenv("KILN_CUDA_NO_SE_POOL")) {
            if (!p->se_pool) {
                p->se_pool = kl_calloc(nn ? nn : 1, sizeof *p->se_pool);
                if (!p->se_pool) return KILN_ERR_NO_MEMORY;
            }
            p->se[gp->index] = 3;
            p->se_pool[i] = gp;
            keep[gp->inputs[0]->id] = KL_MAX(keep[gp->inputs[0]->id], i + 1);
        }
    }
    return KILN_OK;
}

/* An SE block (kl_cu_find_se, with its pool) whose scale
 * only feeds Mul(x, scale), read only by a 1x1 stride-1 convolution with
 * constant weights and C % 8 == 0 channels: the SE step scales that
 * convolution's weights instead (kc_se_pool_mlp_fold; EfficientNet-B0's
 * 16 project convolutions), one pass over x fewer.  The SE step arms it
 * (3 and 4) when it runs kc_se_pool_mlp; x lives until the convolution.
 * KILN_CUDA_NO_SE_FOLD=1 leaves it out. */
static bool kl_cu_nhwc(const kl_cuda_engine *ce);
static kiln_status kl_cu_find_sefold(const kl_cuda_engine *ce, kl_cplan *p, size_t *keep) {
    const kl_graph *g = ce->ir->graph;
    size_t nn = g->n_nodes;
    if (!p->se || !p->se_pool || getenv("KILN_CUDA_NO_SE_FOLD")) return KILN_OK;
    for (size_t i = 0; i < nn; i++) {
        if (p->se[i] != 2 || !p->se_pool[i]) continue;
        const kl_node *n2 = g->nodes[i];
        const kl_value *sv = n2->outputs[0];
        if (!sv || sv->n_uses != 1) continue;
        const kl_node *m = sv->uses[0].node;
        if (m->domain[0] || strcmp(m->op_type, "Mul") || m->n_inputs != 2 || m->n_outputs != 1 || !m->outputs[0] ||
            !ce->on_gpu[m->index] || (p->sdpa && p->sdpa[m->index]) || (p->resid && p->resid[m->index]) || p->se[m->index])
            continue;
        const kl_value *x = m->inputs[0] == sv ? m->inputs[1] : m->inputs[0], *u = m->outputs[0];
        if (!x || x == sv || u->n_uses != 1) continue;
        bool out = false;
        for (size_t k = 0; k < g->n_outputs; k++) out |= g->outputs[k] == u || g->outputs[k] == sv;
        if (out) continue;
        const kl_node *pc = u->uses[0].node;
        bool fused = !strcmp(pc->domain, KL_KILN_DOMAIN) && !strcmp(pc->op_type, "FusedConv");
        if ((!fused && (pc->domain[0] || strcmp(pc->op_type, "Conv"))) || u->uses[0].input != 0 || pc->n_inputs < 2 ||
            !ce->on_gpu[pc->index] || (p->sdpa && p->sdpa[pc->index]) || (p->resid && p->resid[pc->index]) ||
            p->se[pc->index] || kl_node_attr_int(pc, "group", 1) != 1)
            continue;
        const kl_value *w = pc->inputs[1];
        if (!w || !(w->flags & KL_VALUE_INITIALIZER) || p->sh.rank[w->id] != 4 || p->sh.rank[x->id] != 4 ||
            p->sh.rank[u->id] != 4)
            continue;
        const int64_t *xd = p->sh.dims[x->id], *ud = p->sh.dims[u->id], *wd = p->sh.dims[w->id];
        /* Past batch 1 each image gets its own folded weights [K, C] and the
         * convolution runs as a batched product (NHWC plans): that pays where
         * the weights are smaller than an image's activations (K < H*W:
         * EfficientNet-B0's stages up to 14x14), whose pass the Mul costs. */
        bool batched = xd[0] > 1 && xd[0] <= 65535 && kl_cu_nhwc(ce) && wd[0] < xd[2] * xd[3] &&
                       !getenv("KILN_CUDA_NO_GEMM_CONV") && !getenv("KILN_CUDA_NO_SE_FOLD_BATCH");
        if ((xd[0] != 1 && !batched) || memcmp(xd, ud, 4 * sizeof *xd) || wd[1] != xd[1] || wd[2] != 1 || wd[3] != 1 ||
            xd[1] % 8 || wd[0] > 65535 || p->sh.dtype[x->id] != p->sh.dtype[u->id])
            continue;
        int64_t st[2], dl[2];
        kl_attr2(pc, "strides", 1, st);
        kl_attr2(pc, "dilations", 1, dl);
        const int64_t *pads = NULL;
        int64_t np = kl_node_attr_ints(pc, "pads", &pads), nz = 0;
        for (int64_t k = 0; k < np; k++) nz += pads[k] != 0;
        if (st[0] != 1 || st[1] != 1 || dl[0] != 1 || dl[1] != 1 || nz) continue;
        if (!p->sefold) {
            p->sefold = kl_calloc(nn ? nn : 1, 1);
            p->sefold_conv = kl_calloc(nn ? nn : 1, sizeof *p->sefold_conv);
            p->sefold_mul = kl_calloc(nn ? nn : 1, sizeof *p->sefold_mul);
            p->sefold_x = kl_calloc(nn ? nn : 1, sizeof *p->sefold_x);
            p->sefold_w = kl_calloc(nn ? nn : 1, sizeof *p->sefold_w);
            if (!p->sefold || !p->sefold_conv || !p->sefold_mul || !p->sefold_x || !p->sefold_w) return KILN_ERR_NO_MEMORY;
        }
        p->sefold[m->index] = 1;
        p->sefold[pc->index] = 2;
        p->sefold_conv[i] = pc;
        p->sefold_mul[pc->index] = m;
        p->sefold_x[pc->index] = x;
        if (x->graph == g) keep[x->id] = KL_MAX(keep[x->id], pc->index + 1);
    }
    return KILN_OK;
}

/* Branch concurrency.  A convolution whose inputs are ready some nodes before
 * it and whose output has one reader after it (ResNet's downsample
 * convolution beside conv1 and conv2 of its block) may run on a second
 * stream beside those nodes: at batch 1 each kernel fills a fraction of the
 * GPU and waits on launch latency, so two run in the time of one.  Here the
 * plan marks the candidates, keeps their inputs alive until the reader (so
 * the nodes between cannot reuse that memory) and gives their outputs a
 * buffer of their own; kl_cu_side_steps keeps those whose steps turn out
 * independent.  KILN_CUDA_BRANCHES=0 turns it off; outputs larger than
 * KILN_CUDA_BRANCH_MAX bytes (default 16 MiB: large batches fill the GPU
 * anyway) are left in order. */
static bool kl_cu_side_node(const kl_cuda_engine *ce, const kl_cplan *p, const kl_node *n, size_t cap) {
    size_t i = n->index;
    bool conv = (!n->domain[0] && !strcmp(n->op_type, "Conv")) ||
                (!strcmp(n->domain, KL_KILN_DOMAIN) && !strcmp(n->op_type, "FusedConv"));
    if (!conv || !ce->on_gpu[i] || n->n_outputs != 1 || !n->outputs[0] || n->n_inputs < 1 || !n->inputs[0]) return false;
    if ((p->sdpa && p->sdpa[i]) || (p->resid && p->resid[i]) || (p->se && p->se[i]) || (p->sefold && p->sefold[i]))
        return false;
    const kl_value *ov = n->outputs[0];
    if (ov->n_uses != 1 || !kl_only_reader(ov, ov->uses[0].node) || p->sh.bytes[ov->id] == SIZE_MAX ||
        p->sh.bytes[ov->id] > cap)
        return false;
    const kl_node *r = ov->uses[0].node;
    /* (a Concat's input may be planned as a slab of its output, placed when the first slab is made) */
    return r->index > i && ce->on_gpu[r->index] && !kl_cu_view_op(r) && !(!r->domain[0] && !strcmp(r->op_type, "Concat"));
}

static kiln_status kl_cu_find_side(const kl_cuda_engine *ce, kl_cplan *p, size_t *keep) {
    const kl_graph *g = ce->ir->graph;
    size_t nn = g->n_nodes;
    const char *on = getenv("KILN_CUDA_BRANCHES"), *mx = getenv("KILN_CUDA_BRANCH_MAX");
    if (on && strcmp(on, "0") == 0) return KILN_OK;
    size_t cap = mx ? (size_t)strtoull(mx, NULL, 10) : ((size_t)16 << 20);
    for (size_t i = 0; i < nn; i++) {
        const kl_node *n = g->nodes[i];
        if (!kl_cu_side_node(ce, p, n, cap)) continue;
        size_t from = 0;
        for (size_t k = 0; k < n->n_inputs; k++) {
            const kl_value *iv = n->inputs[k];
            if (iv && iv->producer) from = KL_MAX(from, iv->producer->index + 1);
        }
        if (from >= i) continue; /* nothing to run beside */
        /* a chain: the reader is another such convolution whose other inputs are constants (YOLOv8's
         * box and class heads, three convolutions each) */
        const kl_node *chain[8] = {n}, *r = n->outputs[0]->uses[0].node;
        size_t len = 1;
        while (len < 8 && kl_cu_side_node(ce, p, r, cap)) {
            bool consts = true;
            for (size_t k = 0; k < r->n_inputs; k++)
                if (r->inputs[k] && r->inputs[k] != chain[len - 1]->outputs[0] &&
                    !(r->inputs[k]->flags & KL_VALUE_INITIALIZER))
                    consts = false;
            if (!consts) break;
            chain[len++] = r;
            r = r->outputs[0]->uses[0].node;
        }
        if (!p->side) {
            p->side = kl_calloc(nn ? nn : 1, 1);
            p->side_from = kl_calloc(nn ? nn : 1, sizeof *p->side_from);
            p->side_join = kl_calloc(nn ? nn : 1, sizeof *p->side_join);
            p->side_head = kl_calloc(nn ? nn : 1, sizeof *p->side_head);
            p->side_len = kl_calloc(nn ? nn : 1, sizeof *p->side_len);
            if (!p->side || !p->side_from || !p->side_join || !p->side_head || !p->side_len) return KILN_ERR_NO_MEMORY;
        }
        for (size_t m = 0; m < len; m++) {
            size_t x = chain[m]->index;
            p->side[x] = 1;
            p->side_from[x] = from;
            p->side_join[x] = r->index;
            p->side_head[x] = i;
        }
        p->side_len[i] = len;
        for (size_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k]) keep[n->inputs[k]->id] = KL_MAX(keep[n->inputs[k]->id], r->index + 1);
        i = chain[len - 1]->index; /* (the members are not heads of their own) */
    }
    return KILN_OK;
}

/* Does [a, a+an) overlap [b, b+bn)? */
static bool kl_overlap(const void *a, size_t an, const void *b, size_t bn) {
    const uint8_t *x = a, *y = b;
    return a && b && x < y + bn && y < x + an;
}

/* Bytes a copy `cp` may write from cp->y (its strided extent). */
static size_t kl_ccopy_extent(const kl_ccopy *cp) {
    int64_t last = 0;
    for (int a = 0; a < cp->rank; a++) {
        if (cp->dims[a] <= 0) return 0;
        last += (cp->dims[a] - 1) * (cp->ys[a] < 0 ? -cp->ys[a] : cp->ys[a]);
    }
    return (size_t)(last + 1) * cp->esz;
}

/* Does step t write where a pointer of step s (x[]) reads: t's outputs, its copies and conversions? */
static bool kl_step_writes_into(const kl_cplan *p, const kl_graph *g, const kl_cstep *t, const kl_cstep *s) {
    const kl_node *n = g->nodes[t->node];
    for (size_t k = 0; k < KL_ARRAY_LEN(s->x); k++) {
        const void *x = s->x[k];
        if (!x) continue;
        for (size_t o = 0; o < n->n_outputs; o++) {
            const kl_value *ov = n->outputs[o];
            if (!ov) continue;
            const kl_cval *cv = &p->v[ov->id];
            if (kl_overlap(cv->d, (size_t)cv->count * cv->esz, x, 1)) return true;
        }
        for (size_t j = 0; j < t->n_pre; j++)
            if (kl_overlap(t->pre[j].y, kl_ccopy_extent(&t->pre[j]), x, 1)) return true;
        for (size_t j = 0; j < t->n_cp; j++)
            if (kl_overlap(t->cp[j].y, kl_ccopy_extent(&t->cp[j]), x, 1)) return true;
        if (x == t->y || (t->y2 && x == t->y2) || (t->wf && x == t->wf)) return true;
    }
    return false;
}

/* A step that may run as part of a branch: a convolution (or its 1x1 product) with no conversions of its own. */
static bool kl_side_kind(const kl_cstep *s) {
    return ((s->kind == K_CONV && s->conv) || (s->kind == K_GEMM && s->gemm)) && !s->n_pre && !s->pool_part &&
           !s->wf && !s->charge1;
}

/* Keep the branches whose steps are independent of the steps they run beside (kl_cu_find_side): each node
 * one convolution step with no conversions, the main-stream steps beside them (from the fork, the first
 * step at or after the branch's inputs, to its reader's first step) writing nothing the branch reads, none
 * of them a host step.  Branches may overlap: the side stream runs them one after another, and each writes
 * only buffers of its own.  Sets the steps' side/side_next1/br/fork1/join1 and sizes the side workspace. */
static void kl_cu_side_steps(const kl_cuda_engine *ce, kl_cplan *p) {
    const kl_graph *g = ce->ir->graph;
    p->n_side = 0;
    p->ws_side_bytes = 0;
    if (!p->side || p->empty) return;
    for (size_t si = 0; si < p->n_steps; si++) {
        kl_cstep *s = &p->steps[si];
        if (!p->side[s->node] || p->side_head[s->node] != s->node) continue;
        size_t head = s->node, from = p->side_from[head], jn = p->side_join[head], f = si, j = p->n_steps;
        for (size_t t = 0; t < si; t++)
            if (p->steps[t].node >= from) {
                f = t;
                break;
            }
        while (f < si && (p->steps[f].fork1 || p->steps[f].side)) f++; /* one fork per step, on the main stream */
        size_t mem[8], nm = 0;
        bool ok = f < si;
        for (size_t t = si; ok && t < p->n_steps; t++) {
            const kl_cstep *m = &p->steps[t];
            if (m->node == jn) {
                j = t;
                break;
            }
            if (!p->side[m->node] || p->side_head[m->node] != head) continue;
            if (nm == 8 || !kl_side_kind(m) || m->fork1 || m->join1 || (nm && p->steps[mem[nm - 1]].node == m->node))
                ok = false;
            else mem[nm++] = t;
        }
        ok = ok && j < p->n_steps && nm == p->side_len[head] && !p->steps[j].join1 && !p->steps[j].side;
        for (size_t t = f; ok && t < j; t++) {
            const kl_cstep *m = &p->steps[t];
            bool member = false;
            for (size_t k = 0; k < nm; k++) member |= mem[k] == t;
            if (member || m->side) continue; /* (another branch's steps write only buffers of their own) */
            for (size_t k = 0; ok && k < nm; k++) ok = m->node != p->steps[mem[k]].node; /* one step per node */
            ok = ok && m->kind != K_HOST;
            for (size_t k = 0; ok && k < nm; k++) ok = !kl_step_writes_into(p, g, m, &p->steps[mem[k]]);
        }
        if (!ok) {
            kl_log(KILN_LOG_DEBUG, "cuda plan: node '%s' stays in order (its branch's steps are not independent)",
                   kl_node_label(g->nodes[head]));
            continue;
        }
        for (size_t k = 0; k < nm; k++) {
            kl_cstep *m = &p->steps[mem[k]];
            m->side = true;
            m->side_next1 = k + 1 < nm ? mem[k + 1] + 1 : 0;
            p->ws_side_bytes = KL_MAX(p->ws_side_bytes, m->conv ? kc_conv_workspace(m->conv) : kc_gemm_workspace(m->gemm));
        }
        s->br = p->n_side++;
        p->steps[f].fork1 = si + 1;
        p->steps[j].join1 = s->br + 1;
    }
}

static kiln_status kl_b_sdpa(kl_bctx *b, kl_cstep *s, kl_cval *y, kc_dtype t) {
    char *why = b->why;
    size_t why_size = b->why_size;
    kl_cplan *p = b->p;
    const kl_value *qv = p->sdpa_q[b->idx], *kv = p->sdpa_k[b->idx], *vv = b->n->inputs[1];
    const void *qp, *kp, *vp;
    KL_TRY(kl_cu_dev(b->c, p, qv, &qp));
    KL_TRY(kl_cu_dev(b->c, p, kv, &kp));
    KL_TRY(kl_cu_dev(b->c, p, vv, &vp));
    const kl_cval *q = &p->v[qv->id], *k = &p->v[kv->id], *v = &p->v[vv->id];
    if (!q->isf || !k->isf || !v->isf || q->t != t || k->t != t || v->t != t || q->nhwc || k->nhwc || v->nhwc ||
        q->ld || k->ld || v->ld)
        KL_FALLBACK("Q/K/V are not dense float tensors of the layer's type");
    kc_attn_desc d = {0};
    d.t = t;
    int o = q->rank - 4; /* 3-D [N, S, D]: -1 */
    d.b = o ? q->dims[0] : q->dims[0] * q->dims[1];
    d.h = 1;
    d.sq = q->dims[2 + o];
    d.sk = k->dims[2 + o];
    d.d = q->dims[3 + o];
    d.dv = v->dims[3 + o];
    const void *rhp = NULL, *rwp = NULL;
    if (p->sdpa_rh && p->sdpa_rh[b->idx]) {
        const kl_value *hv = p->sdpa_rh[b->idx], *wv = p->sdpa_rw[b->idx];
        KL_TRY(kl_cu_dev(b->c, p, hv, &rhp));
        KL_TRY(kl_cu_dev(b->c, p, wv, &rwp));
        const kl_cval *rh = &p->v[hv->id], *rw = &p->v[wv->id];
        if (!rh->isf || !rw->isf || rh->t != rw->t || rh->nhwc || rw->nhwc || rh->ld || rw->ld || rh->rank < 5 ||
            rw->rank != rh->rank)
            KL_FALLBACK("relative-position terms are not dense float tensors of one type");
        /* Rh [L..., qh, qw, kh, 1]: (n, q, kh) at n*Sq*kh + q*kh + kh (n: the flattened leading dims L,
           = B*H); Rw [L..., qh, qw, 1, kw] likewise */
        int64_t kh = rh->dims[rh->rank - 2], kw = rw->dims[rw->rank - 1];
        d.has_mask = true;
        d.mask_t = rh->t;
        d.rel_kw = kw;
        d.mask_stride_b = d.sq * kh, d.mask_stride_h = 0, d.mask_stride_q = kh, d.mask_stride_k = 1;
        d.mask2_stride_b = d.sq * kw, d.mask2_stride_h = 0, d.mask2_stride_q = kw, d.mask2_stride_k = 1;
    }
    d.ldq = d.d;
    d.ldk = d.d;
    d.ldv = d.dv;
    d.scale = p->sdpa_scale[b->idx];
    d.allow_tf32 = b->c->ce->opt.tf32;
    d.flash_variant = kl_cu_flash_variant(b);
    (void)y;
    char msg[256] = "";
    if (kc_attn_create(b->c->dnn, &d, &s->attn, msg, sizeof msg)) KL_FALLBACK("attention: %s", msg);
    s->kind = K_ATTN;
    s->x[0] = qp;
    s->x[1] = kp;
    s->x[2] = vp;
    s->x[3] = rhp;
    s->x[4] = rwp;
    return KILN_OK;
}

/* Whether 4-D activations of convolution networks live as NHWC (the weights
 * are uploaded for that layout too): the environment, then the engine's
 * recorded layout, then by precision. */
static bool kl_cu_nhwc(const kl_cuda_engine *ce) {
    const char *nh = getenv("KILN_CUDA_NHWC");
    if (nh && *nh) return strcmp(nh, "0") != 0;
    if (ce->opt.layout == KL_CUDA_LAYOUT_NHWC) return true;
    if (ce->opt.layout == KL_CUDA_LAYOUT_NCHW) return false;
    return ce->opt.fp16;
}

/* ---- channel slabs (Concat inputs written in place) -------------------------------------------- */

/* Producers whose outputs may be planned as channel slabs of a Concat's
 * output (KILN_CUDA_SLABS, kl_cu_slab_mode): convolutions (cuDNN and the
 * implicit GEMM write strided outputs, kc_conv_desc.y_ch; not in mode 3),
 * Slices (strided copies) and elementwise programs (kc_fe_program.ystride). */
static int kl_cu_slab_mode(void);
static bool kl_cu_fe_node(const kl_node *n) {
    return (!n->domain[0] && (kl_fe_unary(n) >= 0 || kl_fe_binary(n) >= 0)) ||
           (!strcmp(n->domain, KL_KILN_DOMAIN) && kl_op_is(n, "FusedElementwise"));
}
static bool kl_cu_slab_producer(const kl_node *n) {
    bool conv = (!n->domain[0] && kl_op_is(n, "Conv")) || (!strcmp(n->domain, KL_KILN_DOMAIN) && kl_op_is(n, "FusedConv"));
    return (conv && kl_cu_slab_mode() != 3) || (!n->domain[0] && kl_op_is(n, "Slice")) || kl_cu_fe_node(n);
}

/* KILN_CUDA_SLABS: unset or 0 = none (the default: see docs/CUDA.md), 1 = all
 * (convolutions write and read them too), 2 = convolutions write them but
 * read dense copies, 3 = Slices and elementwise ops only. */
static int kl_cu_slab_mode(void) {
    static int mode = -1;
    if (mode < 0) {
        const char *e = getenv("KILN_CUDA_SLABS");
        mode = e && *e >= '0' && *e <= '3' ? *e - '0' : 0;
        if (getenv("KILN_CUDA_NO_SLABS")) mode = 0;
    }
    return mode;
}
static bool kl_cu_slabs_on(void) { return kl_cu_slab_mode() != 0; }

/* Does node i run a convolution that reads x (input 0) and z (input 3) and
 * writes y as channel slabs?  kl_b_conv's general path does; a stem with
 * padded channels, an SE block's convolutions and folded weights do not. */
static bool kl_cu_conv_slab(const kl_cuda_engine *ce, const kl_cplan *p, size_t i, const kl_node *n) {
    if (!ce->on_gpu[i] || p->empty || !kl_cu_slab_producer(n) || n->n_inputs < 2 || !n->inputs[0]) return false;
    if ((p->se && p->se[i]) || (p->sefold && p->sefold[i]) || (p->resid && p->resid[i]) || (p->sdpa && p->sdpa[i]))
        return false;
    const kl_cval *x = &p->v[n->inputs[0]->id];
    if (!x->known || x->rank != 4 || !x->isf) return false;
    int64_t cq = x->t == KC_F16 ? 8 : 4;
    return !p->nhwc || x->dims[1] % cq == 0;
}

/* Does node i (a Slice or an elementwise op) write its output in the
 * plan's layout, so it can write a channel slab?  A Slice of an NHWC
 * tensor stays NHWC, else NCHW; an elementwise op takes the layout of its
 * first input of the output's shape. */
static bool kl_cu_copy_fe_slab(const kl_cuda_engine *ce, const kl_cplan *p, size_t i, const kl_node *n,
                               const kl_cval *y) {
    if (!ce->on_gpu[i] || p->empty || n->n_outputs != 1 || !n->n_inputs || !n->inputs[0]) return false;
    if ((p->se && p->se[i]) || (p->sefold && p->sefold[i]) || (p->resid && p->resid[i]) || (p->sdpa && p->sdpa[i]))
        return false;
    if (!n->domain[0] && kl_op_is(n, "Slice")) {
        const kl_cval *x = &p->v[n->inputs[0]->id];
        if (!x->known || x->rank != 4 || x->host || x->esz != y->esz) return false;
        bool nh = kl_is_nhwc4(x) && !getenv("KILN_CUDA_NO_NHWC_SLICE");
        return nh == p->nhwc;
    }
    if (!kl_cu_fe_node(n) || !y->isf) return false;
    for (size_t k = 0; k < n->n_inputs; k++) {
        const kl_value *iv = n->inputs[k];
        if (!iv) continue;
        const kl_cval *x = &p->v[iv->id];
        if (!x->isf || x->t != y->t) return false;
        if (x->rank == 4 && !memcmp(x->dims, y->dims, 4 * sizeof y->dims[0]))
            return (x->nhwc && x->rank == 4) == p->nhwc;
    }
    return !p->nhwc;
}

/* Place output ov of node i (a planned slab) in its Concat's output, or,
 * where the producer cannot write there or the slab is not 16-byte
 * aligned, in a buffer of its own (the Concat then copies it). */
static kiln_status kl_cu_slab_out(kl_cuda_ctx *c, kl_cplan *p, size_t i, const kl_node *n, const kl_value *ov,
                                  kl_cval *cv) {
    int64_t o = p->mp.slab_of[ov->id], c0 = p->mp.slab_ch[ov->id];
    bool ok = o >= 0 && p->mp.offset[o] >= 0 && cv->rank == 4 && p->sh.rank[o] == 4 &&
              (kl_cu_conv_slab(c->ce, p, i, n) || kl_cu_copy_fe_slab(c->ce, p, i, n, cv));
    if (ok) {
        int64_t hw = cv->dims[2] * cv->dims[3], ct = p->sh.dims[o][1];
        int64_t off = (p->nhwc ? c0 : c0 * hw) * (int64_t)cv->esz, row = (p->nhwc ? ct : ct * hw) * (int64_t)cv->esz;
        ok = off % 16 == 0 && row % 16 == 0 && ct > cv->dims[1];
        if (ok) {
            cv->d = p->arena + p->mp.offset[o] + off;
            cv->cs = ct;
            cv->nhwc = p->nhwc;
            return KILN_OK;
        }
    }
    return kl_cp_alloc(p, (size_t)cv->count * cv->esz, &cv->d);
}

/* cv (a slab) copied densely, in its layout, into cv->dn: by a step of its
 * own before node i's (reader that takes only dense tensors), or by a
 * conversion attached to step `pre` when given. */
static kiln_status kl_cu_densify(kl_cplan *p, size_t i, kl_cval *cv, kl_cstep *pre) {
    if (cv->dn) return KILN_OK;
    void *dn = NULL;
    KL_TRY(kl_cp_alloc(p, (size_t)cv->count * cv->esz, &dn));
    kl_ccopy *cp;
    if (pre) {
        KL_TRY(kl_pre_add(pre, &cp));
    } else {
        kl_cstep *st;
        KL_TRY(kl_cp_step(p, &st));
        st->node = i;
        st->kind = K_COPY;
        KL_TRY(kl_cp_add(st, &cp));
    }
    cp->rank = 4;
    memcpy(cp->dims, cv->dims, 4 * sizeof cv->dims[0]);
    kl_value_strides(cv, cp->xs);
    kl_cval dense = *cv;
    dense.cs = 0;
    kl_value_strides(&dense, cp->ys);
    cp->x = cv->d;
    cp->y = dn;
    cp->esz = cv->esz;
    cv->dn = dn;
    return KILN_OK;
}

/* A joined Concat (KL_MEM_JOINED): its inputs already in their slabs are
 * skipped; the others are copied into theirs. */
static kiln_status kl_b_concat_slabs(kl_bctx *b, kl_cstep *s, kl_cval *y) {
    char *why = b->why;
    size_t why_size = b->why_size;
    const kl_node *n = b->n;
    kl_cplan *p = b->p;
    if (y->rank != 4 || !y->d) KL_FALLBACK("a joined Concat's output is not a 4-D device tensor");
    y->nhwc = p->nhwc;
    y->cs = 0;
    int64_t ys[4], at = 0;
    kl_value_strides(y, ys);
    s->kind = K_COPY;
    for (size_t k = 0; k < n->n_inputs; k++) {
        const kl_value *pv = n->inputs[k];
        if (!pv) KL_FALLBACK("an input is omitted");
        kl_cval *x = &p->v[pv->id];
        uint8_t *slab = (uint8_t *)y->d + at * ys[1] * (int64_t)y->esz;
        at += x->dims[1];
        if (x->d == slab && x->cs == y->dims[1] && (x->nhwc == y->nhwc || x->dims[2] * x->dims[3] == 1)) continue;
        const void *xp;
        KL_TRY(kl_cu_dev(b->c, p, pv, &xp));
        if (x->rank != 4 || x->esz != y->esz || x->isf != y->isf || (x->isf && x->t != y->t))
            KL_FALLBACK("input %zu differs in type or rank", k);
        if (!x->count) continue;
        kl_ccopy *c;
        KL_TRY(kl_cp_add(s, &c));
        c->rank = 4;
        memcpy(c->dims, x->dims, sizeof c->dims[0] * 4);
        kl_value_strides(x, c->xs);
        memcpy(c->ys, ys, sizeof ys);
        c->x = xp;
        c->y = slab;
        c->esz = y->esz;
    }
    if (at != y->dims[1]) KL_FALLBACK("the inputs' channels do not add up to the output's");
    return KILN_OK;
}

static kiln_status kl_cplan_build(kl_cuda_ctx *c, kl_cplan *p, kl_rt *const *inputs, size_t n_inputs) {
    kl_cuda_engine *ce = c->ce;
    const kl_graph *g = ce->ir->graph;
    size_t nv = g->n_values;
    bool fp16 = ce->opt.fp16;
    /* Shapes of every value at these input shapes. */
    kl_profile prof = {0};
    kl_profile_input pin[64];
    if (n_inputs > 64) return kl_errorf(KILN_ERR_UNSUPPORTED, "cuda: more than 64 graph inputs");
    for (size_t j = 0; j < n_inputs; j++) {
        if (!inputs[j] || inputs[j]->kind != KL_RT_TENSOR) continue;
        kl_profile_input *pi = &pin[prof.n_inputs++];
        memset(pi, 0, sizeof *pi);
        pi->name = (char *)g->inputs[j]->name;
        pi->rank = inputs[j]->rank;
        for (int a = 0; a < pi->rank; a++) pi->min[a] = pi->opt[a] = pi->max[a] = inputs[j]->dims[a];
    }
    prof.inputs = pin;
    pthread_mutex_lock(&ce->mu);
    kiln_status s = kl_shapes_eval(ce->ir, &prof, KL_AT_OPT, &p->sh);
    pthread_mutex_unlock(&ce->mu);
    KL_TRY(s);
    p->have_sh = true;
    /* Zero-size tensors (an empty sequence) are no work; the library calls
     * and kernels are not made for them, so such a plan runs on the host. */
    for (size_t id = 0; id < nv && !p->empty; id++)
        for (int a = 0; a < p->sh.rank[id]; a++) p->empty |= p->sh.dims[id][a] == 0;
    size_t *keep = kl_calloc(g->n_values ? g->n_values : 1, sizeof *keep);
    if (!keep) return KILN_ERR_NO_MEMORY;
    s = KILN_OK;
    if (!p->empty) s = kl_cu_find_sdpa(ce, p, keep);
    if (!s && !p->empty) s = kl_cu_find_resid(ce, p, keep);
    if (!s && !p->empty) s = kl_cu_find_se(ce, p, keep);
    if (!s && !p->empty) s = kl_cu_find_sefold(ce, p, keep);
    if (!s && !p->empty) s = kl_cu_find_side(ce, p, keep);
    { /* KILN_CUDA_TVIEW=0: the Transpose copies its input */
        const char *tv = getenv("KILN_CUDA_TVIEW");
        kl_cu_tview_on = kl_cu_nhwc(ce) && !(tv && strcmp(tv, "0") == 0);
    }
    if (!s)
        s = !p->empty && kl_cu_slabs_on()
                ? kl_mem_plan_build_slabs(g, &p->sh, kl_cu_aliases, keep, kl_cu_slab_producer, &p->mp)
                : kl_mem_plan_build_ex(g, &p->sh, kl_cu_aliases, keep, &p->mp);
    kl_free(keep);
    KL_TRY(s);
    p->have_mp = true;
    p->nhwc = kl_cu_nhwc(ce);
    if (p->mp.arena_bytes) {
        void *a = NULL;
        KL_TRY(kl_cp_alloc(p, p->mp.arena_bytes, &a));
        p->arena = a;
    }
    p->v = kl_calloc(nv ? nv : 1, sizeof *p->v);
    p->in_stage = kl_calloc(g->n_inputs + 1, sizeof *p->in_stage);
    p->in_pin = kl_calloc(g->n_inputs + 1, sizeof *p->in_pin);
    p->in_bytes = kl_calloc(g->n_inputs + 1, sizeof *p->in_bytes);
    p->out_stage = kl_calloc(g->n_outputs + 1, sizeof *p->out_stage);
    p->out_pin = kl_calloc(g->n_outputs + 1, sizeof *p->out_pin);
    p->out_bytes = kl_calloc(g->n_outputs + 1, sizeof *p->out_bytes);
    if (!p->v || !p->in_stage || !p->in_pin || !p->in_bytes || !p->out_stage || !p->out_pin || !p->out_bytes)
        return KILN_ERR_NO_MEMORY;
    for (size_t id = 0; id < nv; id++) {
        kl_cval *cv = &p->v[id];
        if (p->sh.rank[id] >= 0) kl_cv_set_shape(cv, p->sh.rank[id], p->sh.dims[id]);
        else cv->rank = -1;
        if (!kl_cu_devtype(p->sh.dtype[id], fp16, &cv->isf, &cv->t, &cv->esz)) cv->esz = 0;
        const kl_value *v = g->values[id];
        if (v && (v->flags & KL_VALUE_INITIALIZER) && v->init && v->init->dtype != KILN_DTYPE_STRING) {
            KL_TRY(kl_rt_tensor_view(v->init->dtype, v->init->rank, v->init->dims, (void *)v->init->data,
                                     v->init->nbytes, &cv->host));
            kl_cv_set_shape(cv, v->init->rank, v->init->dims);
        }
    }
    /* Graph inputs: device memory, a float32 staging buffer when stored as
     * float16, and a pinned host buffer for the copy. */
    for (size_t j = 0; j < g->n_inputs && j < n_inputs; j++) {
        const kl_value *v = g->inputs[j];
        kl_cval *cv = &p->v[v->id];
        if (!inputs[j] || cv->host) continue;
        if (!cv->known || !cv->esz)
            return kl_errorf(KILN_ERR_UNSUPPORTED, "cuda: input '%s' has a type the device cannot hold", v->name);
        size_t bytes = (size_t)cv->count * cv->esz;
        KL_TRY(kl_cp_alloc(p, bytes, &cv->d));
        p->in_bytes[j] = inputs[j]->nbytes;
        if (cv->isf && cv->t == KC_F16 && inputs[j]->dtype == KILN_DTYPE_FLOAT)
            KL_TRY(kl_cp_alloc(p, inputs[j]->nbytes, &p->in_stage[j]));
        KL_CU(cudaMallocHost(&p->in_pin[j], inputs[j]->nbytes ? inputs[j]->nbytes : 16));
    }
    /* Nodes in order. */
    char why[512];
    for (size_t i = 0; i < g->n_nodes; i++) {
        const kl_node *n = g->nodes[i];
        bool host_known = n->n_inputs > 0 && !kl_nondeterministic(n);
        for (size_t k = 0; k < n->n_inputs && host_known; k++)
            if (n->inputs[k] && !p->v[n->inputs[k]->id].host) host_known = false;
        bool shape_op = !n->domain[0] && (!strcmp(n->op_type, "Shape") || !strcmp(n->op_type, "Size")) &&
                        n->n_inputs == 1 && n->inputs[0] && p->v[n->inputs[0]->id].known;
        size_t out_bytes = 0;
        for (size_t k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] && p->sh.bytes[n->outputs[k]->id] != SIZE_MAX) out_bytes += p->sh.bytes[n->outputs[k]->id];
        if (shape_op || (host_known && out_bytes <= ((size_t)64 << 20))) {
            /* Runs once per plan on the host (shape arithmetic, constants). */
            kl_rt *ins[64] = {0}, *outs[64] = {0};
            if (n->n_inputs > 64 || n->n_outputs > 64) return kl_errorf(KILN_ERR_UNSUPPORTED, "node '%s': too many inputs", kl_node_label(n));
            if (shape_op) {
                s = kl_cu_shape_node(n, &p->v[n->inputs[0]->id], &outs[0]);
            } else {
                for (size_t k = 0; k < n->n_inputs; k++) ins[k] = n->inputs[k] ? p->v[n->inputs[k]->id].host : NULL;
                s = kl_program_run_node_out(ce->prog, i, ins, NULL, NULL, outs);
            }
            for (size_t k = 0; k < n->n_outputs; k++) {
                const kl_value *ov = n->outputs[k];
                if (!s && ov && outs[k]) {
                    kl_cval *cv = &p->v[ov->id];
                    cv->host = outs[k];
                    outs[k] = NULL;
                    if (cv->host->kind == KL_RT_TENSOR) kl_cv_set_shape(cv, cv->host->rank, cv->host->dims);
                }
                kl_rt_unref(outs[k]);
            }
            if (s) return kl_error_context(s, "cuda plan: ");
            p->n_static++;
            continue;
        }
        /* Nodes a fused attention replaced run nothing (the planner kept
         * Q, K and V alive for it). */
        if (p->sdpa && p->sdpa[i] == 1) continue;
        if (p->resid && p->resid[i] == 1) continue;
        if (p->se && (p->se[i] == 1 || p->se[i] == 3)) continue;
        if (p->sefold && p->sefold[i] == 3) continue; /* folded into the next convolution's weights */
        /* A column slice read in place by attention. */
        int64_t slice_start = 0;
        if (ce->on_gpu[i] && kl_slice_view(n, &slice_start)) {
            kl_cval *xv = &p->v[n->inputs[0]->id], *yv = &p->v[n->outputs[0]->id];
            const void *xp = NULL;
            if (xv->known && yv->known && xv->rank >= 1 && !kl_is_nhwc4(xv) && xv->ld == 0 && !xv->cs &&
                slice_start + yv->dims[yv->rank - 1] <= xv->dims[xv->rank - 1] && kl_cu_dev(c, p, n->inputs[0], &xp) == KILN_OK) {
                yv->d = (uint8_t *)xp + slice_start * (int64_t)xv->esz;
                yv->ld = xv->dims[xv->rank - 1];
                yv->isf = xv->isf;
                yv->t = xv->t;
                continue;
            }
            kl_error_clear();
        }
        /* A Gather of one index where the axes before it have size 1: a view. */
        int64_t gather_index = 0;
        if (ce->on_gpu[i] && kl_gather_view(n, &gather_index)) {
            kl_cval *xv = &p->v[n->inputs[0]->id], *yv = &p->v[n->outputs[0]->id];
            int64_t axis = kl_node_attr_int(n, "axis", 0), outer = 1, inner = 1;
            if (xv->known && yv->known && xv->rank >= 1 && axis < 0) axis += xv->rank;
            bool ok = xv->known && yv->known && axis >= 0 && axis < xv->rank && !kl_is_nhwc4(xv) && xv->ld == 0 &&
                      !xv->cs && !xv->tview;
            for (int a = 0; ok && a < xv->rank; a++) {
                if (a < axis) outer *= xv->dims[a];
                if (a > axis) inner *= xv->dims[a];
            }
            if (ok && gather_index < 0) gather_index += xv->dims[axis];
            const void *xp = NULL;
            /* the slice must start on 16 bytes, as the Gather kernel's own buffer does: readers such as cuBLASLt
               products and kiln's vector loads take only such pointers */
            if (ok && outer == 1 && gather_index >= 0 && gather_index < xv->dims[axis] && yv->count == inner &&
                (gather_index * inner * (int64_t)xv->esz) % 16 == 0 && kl_cu_dev(c, p, n->inputs[0], &xp) == KILN_OK) {
                yv->d = (uint8_t *)xp + gather_index * inner * (int64_t)xv->esz;
                yv->isf = xv->isf;
                yv->t = xv->t;
                yv->esz = xv->esz;
                continue;
            }
            kl_error_clear();
        }
        /* The Transpose of a tview: its output is that buffer. */
        if (n->n_inputs == 1 && n->inputs[0] && p->v[n->inputs[0]->id].tview && n->n_outputs == 1 && n->outputs[0]) {
            const kl_cval *xv = &p->v[n->inputs[0]->id];
            kl_cval *yv = &p->v[n->outputs[0]->id];
            if (!kl_cu_tview_transpose(n) || !yv->known || yv->rank != 3 || yv->dims[0] != xv->dims[0] ||
                yv->dims[1] != xv->dims[2] || yv->dims[2] != xv->dims[1] || yv->esz != xv->esz)
                return kl_errorf(KILN_ERR_INTERNAL, "cuda plan: node '%s': the Transpose of an NHWC view does not match",
                                 kl_node_label(n));
            yv->d = xv->d;
            yv->isf = xv->isf;
            yv->t = xv->t;
            continue;
        }
        /* Slab inputs of a reader that takes only dense tensors: a dense
         * copy (its own step), seen by the reader's build in their place. */
        const bool slab_conv = kl_cu_slab_mode() == 1 && kl_cu_conv_slab(ce, p, i, n);
        const bool joined = p->mp.slab_of && kl_op_is(n, "Concat") && !n->domain[0] && n->n_outputs == 1 &&
                            n->outputs[0] && p->mp.inplace[n->outputs[0]->id] == KL_MEM_JOINED;
        const bool fe_read = kl_cu_fe_node(n); /* elementwise programs read any strides */
        size_t swapped[64], n_swapped = 0;
        void *swap_d[64];
        int64_t swap_cs[64];
        for (size_t k = 0; k < n->n_inputs && k < 64; k++) {
            const kl_value *iv = n->inputs[k];
            if (!iv) continue;
            kl_cval *cv = &p->v[iv->id];
            if (!cv->cs || !cv->d || joined || (slab_conv && (k == 0 || k == 3)) || (fe_read && ce->on_gpu[i])) continue;
            bool seen = false;
            for (size_t j = 0; j < n_swapped; j++) seen |= swapped[j] == iv->id;
            if (seen) continue;
            KL_TRY(kl_cu_densify(p, i, cv, NULL));
            swapped[n_swapped] = iv->id;
            swap_cs[n_swapped] = cv->cs;
            swap_d[n_swapped++] = cv->d;
            cv->d = cv->dn;
            cv->cs = 0;
        }
        /* Device memory of the outputs. */
        bool view = kl_cu_view_op(n);
        for (size_t k = 0; k < n->n_outputs; k++) {
            const kl_value *ov = n->outputs[k];
            if (!ov) continue;
            kl_cval *cv = &p->v[ov->id];
            if (!cv->known)
                return kl_errorf(KILN_ERR_UNSUPPORTED,
                                 "cuda: the shape of '%s' (output of node '%s', %s) depends on the data; the cuda "
                                 "provider needs every shape to follow from the input shapes (build with --providers cpu)",
                                 ov->name, kl_node_label(n), n->op_type);
            if (!cv->esz)
                return kl_errorf(KILN_ERR_UNSUPPORTED, "cuda: '%s' (output of node '%s') has a type the device cannot hold",
                                 ov->name, kl_node_label(n));
            if (view && k == 0) {
                const void *xp = NULL;
                KL_TRY(kl_cu_dev(c, p, n->inputs[0], &xp));
                kl_cval *xv = &p->v[n->inputs[0]->id];
                if (kl_op_is(n, "Reshape") && kl_cu_tview_reshape(ce, n, xv, cv)) {
                    cv->tview = true; /* xp: the NHWC buffer, read by the Transpose as it is */
                } else if (kl_is_nhwc4(xv)) { /* a view needs NCHW order: convert once */
                    kl_cstep *cs;
                    KL_TRY(kl_cp_step(p, &cs));
                    cs->node = i;
                    cs->kind = K_COPY;
                    KL_TRY(kl_layout(p, cs, xv, false, &xp));
                }
                cv->d = (void *)xp;
                cv->isf = xv->isf;
                cv->t = xv->t;
            } else if (p->mp.slab_ch && p->mp.slab_ch[ov->id] >= 0) {
                if (p->side) p->side[i] = 0;
                KL_TRY(kl_cu_slab_out(c, p, i, n, ov, cv));
            } else if (p->side && p->side[i]) { /* a branch: written while the steps beside it run */
                KL_TRY(kl_cp_alloc(p, (size_t)cv->count * cv->esz, &cv->d));
            } else if (p->mp.offset[ov->id] >= 0) {
                cv->d = p->arena + p->mp.offset[ov->id];
            } else {
                KL_TRY(kl_cp_alloc(p, (size_t)cv->count * cv->esz, &cv->d));
            }
        }
        if (view) { /* it points at the dense copy */
            for (size_t j = 0; j < n_swapped; j++) p->v[swapped[j]].d = swap_d[j], p->v[swapped[j]].cs = swap_cs[j];
            continue;
        }
        kl_cstep *st;
        KL_TRY(kl_cp_step(p, &st));
        st->node = i;
        if (ce->on_gpu[i] && !p->empty) {
            static __thread kl_bctx b;
            memset(&b, 0, sizeof b);
            b.c = c, b.p = p, b.n = n, b.idx = i, b.why = why, b.why_size = sizeof why, b.s = st;
            if (p->sefold && p->sefold[i] == 4) b.in0 = p->sefold_x[i]; /* the Mul's x */
            why[0] = 0;
            /* Layout marks a failed attempt may have set are undone. */
            bool was_nhwc[64] = {0};
            void *was_alt[64] = {0}, *was_padc[64] = {0}, *was_dn[64] = {0};
            for (size_t k = 0; k < n->n_inputs && k < 64; k++)
                if (n->inputs[k]) {
                    was_alt[k] = p->v[n->inputs[k]->id].alt;
                    was_padc[k] = p->v[n->inputs[k]->id].padc;
                    was_dn[k] = p->v[n->inputs[k]->id].dn;
                }
            for (size_t k = 0; k < n->n_outputs && k < 64; k++)
                if (n->outputs[k]) was_nhwc[k] = p->v[n->outputs[k]->id].nhwc;
            s = kl_cu_build_node(&b, st);
            if (s == KILN_ERR_UNSUPPORTED) {
                kl_error_clear();
                kl_cstep_release(st);
                for (size_t k = 0; k < n->n_inputs && k < 64; k++)
                    if (n->inputs[k]) {
                        p->v[n->inputs[k]->id].alt = was_alt[k];
                        p->v[n->inputs[k]->id].padc = was_padc[k];
                        /* (a swapped input's dn was made by a step of its own: kept) */
                        bool swapped_in = false;
                        for (size_t j = 0; j < n_swapped; j++) swapped_in |= swapped[j] == n->inputs[k]->id;
                        if (!swapped_in) p->v[n->inputs[k]->id].dn = was_dn[k];
                    }
                for (size_t k = 0; k < n->n_outputs && k < 64; k++)
                    if (n->outputs[k]) p->v[n->outputs[k]->id].nhwc = was_nhwc[k];
                st->kind = K_HOST;
                s = KILN_OK;
            }
            if (s) return kl_error_context(s, "cuda plan: node '%s' (%s): ", kl_node_label(n), n->op_type);
        } else {
            st->kind = K_HOST;
        }
        if (st->kind == K_HOST) {
            /* the host reads dense NCHW and writes dense outputs: slab outputs get buffers of their own (the
             * Concat copies them), slab inputs of a slab-reading node a dense copy */
            for (size_t k = 0; k < n->n_outputs; k++) {
                const kl_value *ov = n->outputs[k];
                if (!ov || !p->v[ov->id].cs) continue;
                kl_cval *cv = &p->v[ov->id];
                cv->cs = 0;
                cv->nhwc = false;
                KL_TRY(kl_cp_alloc(p, (size_t)cv->count * cv->esz, &cv->d));
            }
            for (size_t k = 0; k < n->n_inputs; k++) {
                const kl_value *iv = n->inputs[k];
                if (iv && p->v[iv->id].cs && !kl_is_nhwc4(&p->v[iv->id])) KL_TRY(kl_cu_densify(p, i, &p->v[iv->id], st));
            }
        }
        for (size_t j = 0; j < n_swapped; j++) p->v[swapped[j]].d = swap_d[j], p->v[swapped[j]].cs = swap_cs[j];
        if (st->kind == K_HOST && p->sefold && p->sefold[i] == 4)
            return kl_errorf(KILN_ERR_INTERNAL,
                             "cuda plan: node '%s' (%s): the SE scale folded into its weights, but it does not run on "
                             "the GPU (KILN_CUDA_NO_SE_FOLD=1 turns the fold off)", kl_node_label(n), n->op_type);
        if (st->kind == K_HOST) /* the CPU reads NCHW */
            for (size_t k = 0; k < n->n_inputs; k++) {
                const kl_value *iv = n->inputs[k];
                if (!iv || !kl_is_nhwc4(&p->v[iv->id])) continue;
                const void *ip;
                KL_TRY(kl_layout(p, st, &p->v[iv->id], false, &ip));
            }
        if (st->kind == K_HOST) p->n_host++;
        else {
            size_t ws = st->conv ? kc_conv_workspace(st->conv) : st->gemm ? kc_gemm_workspace(st->gemm)
                      : st->attn ? kc_attn_workspace(st->attn) : st->ws_need;
            p->ws_bytes = KL_MAX(p->ws_bytes, ws);
        }
    }
    if (p->ws_bytes) KL_TRY(kl_cp_alloc(p, p->ws_bytes, &p->ws));
    kl_cu_side_steps(ce, p);
    for (int k = 0; p->ws_side_bytes && k < kl_cu_side_streams(); k++) KL_TRY(kl_cp_alloc(p, p->ws_side_bytes, &p->ws_side[k]));
    if (p->n_side) kl_log(KILN_LOG_DEBUG, "cuda plan: %zu branch(es) of convolutions run beside the steps before their reader", p->n_side);
    /* Graph outputs, in NCHW order. */
    for (size_t j = 0; j < g->n_outputs; j++) {
        const kl_value *v = g->outputs[j];
        if (!v) continue;
        kl_cval *cv = &p->v[v->id];
        if (!cv->d) continue; /* known on the host */
        if (kl_is_nhwc4(cv)) {
            kl_cstep *cs;
            KL_TRY(kl_cp_step(p, &cs));
            cs->node = v->producer ? v->producer->index : 0;
            cs->kind = K_COPY;
            const void *ip;
            KL_TRY(kl_layout(p, cs, cv, false, &ip));
            cv->d = (void *)ip; /* delivered from the NCHW copy */
            cv->nhwc = false;
        }
        size_t hb = 0;
        if (!kl_dtype_nbytes(p->sh.dtype[v->id], cv->count, &hb)) return KILN_ERR_INTERNAL;
        p->out_bytes[j] = hb;
        if (cv->isf && cv->t == KC_F16 && p->sh.dtype[v->id] == KILN_DTYPE_FLOAT)
            KL_TRY(kl_cp_alloc(p, hb, &p->out_stage[j]));
        KL_CU(cudaMallocHost(&p->out_pin[j], hb ? hb : 16));
    }
    KL_CU(cudaStreamSynchronize(c->st));
    return KILN_OK;
}

static void kl_cplan_key(kl_rt *const *inputs, size_t n, int64_t *key, size_t *len, size_t cap) {
    size_t k = 0;
    for (size_t j = 0; j < n && k + KILN_MAX_RANK + 1 < cap; j++) {
        if (!inputs[j]) {
            key[k++] = -2;
            continue;
        }
        key[k++] = inputs[j]->rank;
        for (int a = 0; a < inputs[j]->rank; a++) key[k++] = inputs[j]->dims[a];
    }
    *len = k;
}

/* ---- contexts -------------------------------------------------------------------------------------------- */

static kiln_status kl_cu_preload(kl_cuda_ctx *c);

kiln_status kl_cuda_ctx_create(kl_cuda_engine *ce, kl_cuda_ctx **out) {
    kl_cuda_ctx *c = kl_calloc(1, sizeof *c);
    if (!c) return KILN_ERR_NO_MEMORY;
    c->ce = ce;
    double t0 = kl_clock_ms();
    cudaError_t e = cudaStreamCreateWithFlags(&c->st, cudaStreamNonBlocking);
    for (int i = 0; i < 4 && e == cudaSuccess; i++) e = cudaEventCreate(&c->ev[i]);
    if (e != cudaSuccess) {
        kl_cuda_ctx_free(c);
        return kl_cu_err(e, "cudaStreamCreate/cudaEventCreate");
    }
    char why[256] = "";
    double t1 = kl_clock_ms();
    if (kc_dnn_create(&c->dnn, why, sizeof why)) {
        kl_cuda_ctx_free(c);
        return kl_errorf(KILN_ERR_INTERNAL, "cuda: %s", why);
    }
    double t2 = kl_clock_ms();
    kiln_status s = kl_cu_preload(c);
    if (s) {
        kl_cuda_ctx_free(c);
        return kl_error_context(s, "cuda: uploading the weights: ");
    }
    kl_log(KILN_LOG_DEBUG, "cuda context: stream and events %.2f ms, cuDNN and cuBLASLt handles %.2f ms, weights %.2f ms",
           t1 - t0, t2 - t1, kl_clock_ms() - t2);
    *out = c;
    return KILN_OK;
}

void kl_cuda_ctx_free(kl_cuda_ctx *c) {
    if (!c) return;
    if (c->st) cudaStreamSynchronize(c->st);
    for (size_t i = 0; i < c->n_plans; i++) kl_cplan_free(c->plans[i], c->ce->ir->graph);
    for (size_t i = 0; i < c->n_lev; i++) cudaEventDestroy(c->lev[i]);
    kl_free(c->lev);
    if (c->dnn) kc_dnn_destroy(c->dnn);
    for (int i = 0; i < 4; i++)
        if (c->ev[i]) cudaEventDestroy(c->ev[i]);
    for (int k = 0; k < KL_CU_SIDE_MAX; k++)
        if (c->st2[k]) cudaStreamSynchronize(c->st2[k]);
    if (c->ev_fork) cudaEventDestroy(c->ev_fork);
    for (size_t i = 0; i < c->n_ev_join; i++) cudaEventDestroy(c->ev_join[i]);
    kl_free(c->ev_join);
    for (int k = 0; k < KL_CU_SIDE_MAX; k++)
        if (c->st2[k]) cudaStreamDestroy(c->st2[k]);
    if (c->st) cudaStreamDestroy(c->st);
    cudaGetLastError();
    kl_free(c);
}


/* Upload the constants the GPU layers read (converted to the engine's
 * float type; convolution weights also as [K,R,S,C] for NHWC) once per
 * engine, when its first context is made: engine load + context creation
 * then include the weight upload, as TensorRT's deserialization does. */
static kiln_status kl_cu_preload(kl_cuda_ctx *c) {
    kl_cuda_engine *ce = c->ce;
    const kl_graph *g = ce->ir->graph;
    pthread_mutex_lock(&ce->mu);
    bool done = ce->preloaded;
    ce->preloaded = true;
    pthread_mutex_unlock(&ce->mu);
    if (done) return KILN_OK;
    bool nhwc = kl_cu_nhwc(ce);
    size_t nv = g->n_values ? g->n_values : 1;
    /* per value id: 1 uploaded, 2 uploaded and wanted as [K,R,S,C] too */
    uint8_t *want = kl_calloc(nv, 1);
    kl_cu_up_item *items = kl_calloc(nv, sizeof *items);
    size_t *ids = kl_calloc(nv, sizeof *ids);
    if (!want || !items || !ids) {
        kl_free(want);
        kl_free(items);
        kl_free(ids);
        return KILN_ERR_NO_MEMORY;
    }
    size_t n = 0, total = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const kl_node *nd = g->nodes[i];
        if (!ce->on_gpu[i]) continue;
        bool conv = !strcmp(nd->op_type, "Conv") || !strcmp(nd->op_type, "FusedConv") ||
                    !strcmp(nd->op_type, "ConvTranspose");
        for (size_t k = 0; k < nd->n_inputs; k++) {
            const kl_value *v = nd->inputs[k];
            if (!v || !(v->flags & KL_VALUE_INITIALIZER) || !v->init || !v->init->count ||
                v->init->dtype == KILN_DTYPE_STRING || kiln_dtype_bits(v->init->dtype) < 8 || ce->cdev[v->id])
                continue;
            bool isf;
            kc_dtype t;
            size_t esz;
            if (!kl_cu_devtype(v->init->dtype, ce->opt.fp16, &isf, &t, &esz)) continue;
            if (!want[v->id]) {
                want[v->id] = 1;
                kl_cu_up_item *it = &items[n];
                ids[n++] = v->id;
                it->src = v->init->data;
                it->bytes = (size_t)v->init->count * esz;
                it->f32_to_f16 = isf && t == KC_F16 && v->init->dtype == KILN_DTYPE_FLOAT;
                it->off = total;
                total += (it->bytes + 255) & ~(size_t)255;
            }
            if (nhwc && conv && k == 1 && v->init->rank == 4 && isf) want[v->id] = 2;
        }
    }
    /* the [K,R,S,C] copies after the tensors, in the same block */
    size_t all = total;
    for (size_t j = 0; j < n; j++)
        if (want[ids[j]] == 2) all += (items[j].bytes + 255) & ~(size_t)255;
    kiln_status s = KILN_OK;
    uint8_t *block = NULL;
    double t0 = kl_clock_ms();
    if (all) {
        cudaError_t e = cudaMalloc((void **)&block, all);
        if (e != cudaSuccess) s = kl_cu_err(e, "cudaMalloc (constants)");
    }
    double t1 = kl_clock_ms();
    if (!s && total) s = kl_cu_upload_items(items, n, total, block, c->st, 0);
    double t2 = kl_clock_ms();
    size_t koff = total;
    for (size_t j = 0; j < n && !s; j++) {
        const kl_value *v = g->values[ids[j]];
        void *d = block + items[j].off;
        if (want[v->id] == 2) {
            const int64_t *wd = v->init->dims;
            size_t esz = items[j].bytes / (size_t)v->init->count;
            int64_t dims[4] = {wd[0], wd[2], wd[3], wd[1]}; /* K R S C */
            int64_t xs[4] = {wd[1] * wd[2] * wd[3], wd[3], 1, wd[2] * wd[3]};
            int64_t ys[4] = {wd[2] * wd[3] * wd[1], wd[3] * wd[1], wd[1], 1};
            void *k = block + koff;
            cudaError_t e = kc_copy_nd(k, ys, d, xs, dims, 4, esz, c->st);
            if (e != cudaSuccess) {
                s = kl_cu_err(e, "conv weights to [K,R,S,C]");
                break;
            }
            koff += (items[j].bytes + 255) & ~(size_t)255;
        }
    }
    if (!s && all) {
        cudaError_t e = cudaStreamSynchronize(c->st);
        if (e != cudaSuccess) s = kl_cu_err(e, "cudaStreamSynchronize (constants)");
    }
    if (!s)
        kl_log(KILN_LOG_DEBUG,
               "cuda weights: %zu tensors, %.1f MB on the device: cudaMalloc %.2f ms, convert and copy %.2f ms "
               "(%.1f GB/s), [K,R,S,C] copies %.2f ms",
               n, (double)all / 1e6, t1 - t0, t2 - t1, (double)total / 1e6 / (t2 - t1 > 0 ? t2 - t1 : 1e-3),
               kl_clock_ms() - t2);
    if (s) {
        if (block) cudaFree(block);
    } else if (block) {
        pthread_mutex_lock(&ce->mu);
        ce->block = block;
        ce->block_bytes = all;
        koff = total;
        for (size_t j = 0; j < n; j++) {
            ce->cdev[ids[j]] = block + items[j].off;
            ce->const_bytes += items[j].bytes;
            if (want[ids[j]] == 2) {
                ce->cdev_krsc[ids[j]] = block + koff;
                ce->const_bytes += items[j].bytes;
                koff += (items[j].bytes + 255) & ~(size_t)255;
            }
        }
        pthread_mutex_unlock(&ce->mu);
    }
    kl_free(want);
    kl_free(items);
    kl_free(ids);
    return s;
}

static kiln_status kl_cu_plan_for(kl_cuda_ctx *c, kl_rt *const *inputs, size_t n_inputs, kl_cplan **out) {
    int64_t key[KILN_MAX_RANK * 8 + 8];
    size_t len = 0;
    kl_cplan_key(inputs, n_inputs, key, &len, KL_ARRAY_LEN(key));
    for (size_t i = 0; i < c->n_plans; i++)
        if (c->plans[i]->key_len == len && memcmp(c->plans[i]->key, key, len * sizeof key[0]) == 0) {
            *out = c->plans[i];
            return KILN_OK;
        }
    const kl_graph *g = c->ce->ir->graph;
    if (c->n_plans == KL_CU_MAX_PLANS) { /* drop the oldest */
        kl_cplan_free(c->plans[0], g);
        memmove(c->plans, c->plans + 1, (KL_CU_MAX_PLANS - 1) * sizeof c->plans[0]);
        c->n_plans--;
        c->cur = NULL;
    }
    kl_cplan *p = kl_calloc(1, sizeof *p);
    if (!p) return KILN_ERR_NO_MEMORY;
    memcpy(p->key, key, len * sizeof key[0]);
    p->key_len = len;
    kiln_status s = kl_cplan_build(c, p, inputs, n_inputs);
    kc_dnn_release_scratch(c->dnn); /* the timing's L2-flush buffer (about 120 MB on an H200) */
    if (!s && p->n_side) { /* the side stream and its events, made here, outside any capture */
        cudaError_t e = cudaSuccess;
        for (int k = 0; k < kl_cu_side_streams() && e == cudaSuccess; k++)
            if (!c->st2[k]) e = cudaStreamCreateWithFlags(&c->st2[k], cudaStreamNonBlocking);
        if (e == cudaSuccess && !c->ev_fork) e = cudaEventCreateWithFlags(&c->ev_fork, cudaEventDisableTiming);
        if (e == cudaSuccess && c->n_ev_join < p->n_side) {
            cudaEvent_t *ev = kl_realloc_array(c->ev_join, p->n_side, sizeof *ev);
            if (!ev) s = KILN_ERR_NO_MEMORY;
            else c->ev_join = ev;
            while (!s && e == cudaSuccess && c->n_ev_join < p->n_side) {
                e = cudaEventCreateWithFlags(&c->ev_join[c->n_ev_join], cudaEventDisableTiming);
                if (e == cudaSuccess) c->n_ev_join++;
            }
        }
        if (!s && e != cudaSuccess) s = kl_cu_err(e, "cudaStreamCreate / cudaEventCreate (side stream)");
    }
    if (s) {
        kl_cplan_free(p, g);
        return s;
    }
    c->plans[c->n_plans++] = p;
    *out = p;
    return KILN_OK;
}

static kiln_status kl_cu_compute(kl_cuda_ctx *c, kl_cplan *p) {
    if (p->gexec && !c->profiling) {
        KL_CU(cudaGraphLaunch(p->gexec, c->st));
        c->last_graph = true;
        return KILN_OK;
    }
    c->last_graph = false;
    return kl_cu_launch(c, p);
}

kiln_status kl_cuda_ctx_run(kl_cuda_ctx *c, kl_rt *const *inputs, size_t n_inputs, kl_rt **outputs, size_t n_outputs) {
    const kl_graph *g = c->ce->ir->graph;
    kl_cplan *p = NULL;
    KL_TRY(kl_cu_plan_for(c, inputs, n_inputs, &p));
    c->cur = p;
    /* Host to device. */
    KL_CU(cudaEventRecord(c->ev[0], c->st));
    for (size_t j = 0; j < g->n_inputs && j < n_inputs; j++) {
        const kl_value *v = g->inputs[j];
        kl_cval *cv = &p->v[v->id];
        if (!inputs[j] || !cv->d || !p->in_pin[j]) continue;
        if (inputs[j]->nbytes != p->in_bytes[j])
            return kl_errorf(KILN_ERR_SHAPE, "input '%s': %zu bytes, the plan expects %zu", v->name, inputs[j]->nbytes,
                             p->in_bytes[j]);
        memcpy(p->in_pin[j], inputs[j]->data, p->in_bytes[j]);
        void *dst = p->in_stage[j] ? p->in_stage[j] : cv->d;
        KL_CU(cudaMemcpyAsync(dst, p->in_pin[j], p->in_bytes[j], cudaMemcpyHostToDevice, c->st));
        if (p->in_stage[j]) KL_CU(kc_cast(cv->d, KC_F16, p->in_stage[j], KC_F32, cv->count, c->st));
    }
    KL_CU(cudaEventRecord(c->ev[1], c->st));
    kiln_status s = kl_cu_compute(c, p);
    if (s) {
        cudaStreamSynchronize(c->st);
        return s;
    }
    KL_CU(cudaEventRecord(c->ev[2], c->st));
    /* Device to host. */
    for (size_t j = 0; j < g->n_outputs && j < n_outputs; j++) {
        const kl_value *v = g->outputs[j];
        kl_cval *cv = v ? &p->v[v->id] : NULL;
        if (!cv || !cv->d) continue;
        const void *src = cv->d;
        if (p->out_stage[j]) {
            KL_CU(kc_cast(p->out_stage[j], KC_F32, cv->d, KC_F16, cv->count, c->st));
            src = p->out_stage[j];
        }
        KL_CU(cudaMemcpyAsync(p->out_pin[j], src, p->out_bytes[j], cudaMemcpyDeviceToHost, c->st));
    }
    KL_CU(cudaEventRecord(c->ev[3], c->st));
    KL_CU(cudaStreamSynchronize(c->st));
    float t0 = 0, t1 = 0, t2 = 0;
    cudaEventElapsedTime(&t0, c->ev[0], c->ev[1]);
    cudaEventElapsedTime(&t1, c->ev[1], c->ev[2]);
    cudaEventElapsedTime(&t2, c->ev[2], c->ev[3]);
    c->t_h2d = t0;
    c->t_comp = t1;
    c->t_d2h = t2;
    for (size_t j = 0; j < g->n_outputs && j < n_outputs; j++) {
        const kl_value *v = g->outputs[j];
        outputs[j] = NULL;
        if (!v) continue;
        kl_cval *cv = &p->v[v->id];
        kiln_status os;
        if (cv->d) {
            os = kl_rt_tensor(p->sh.dtype[v->id], cv->rank, cv->dims, &outputs[j]);
            if (!os && p->out_bytes[j]) memcpy(outputs[j]->data, p->out_pin[j], p->out_bytes[j]);
        } else if (cv->host) {
            os = kl_rt_clone(cv->host, &outputs[j]);
        } else {
            os = kl_errorf(KILN_ERR_INTERNAL, "output '%s' was not computed", v->name);
        }
        if (os) {
            for (size_t k = 0; k <= j; k++) {
                kl_rt_unref(outputs[k]);
                outputs[k] = NULL;
            }
            return os;
        }
    }
    p->runs++;
    if (!p->graph_tried && !c->profiling) kl_cu_capture(c, p);
    return KILN_OK;
}

void kl_cuda_ctx_last_times(const kl_cuda_ctx *c, double *h2d, double *compute, double *d2h) {
    if (h2d) *h2d = c->t_h2d;
    if (compute) *compute = c->t_comp;
    if (d2h) *d2h = c->t_d2h;
}

kiln_status kl_cuda_ctx_time_compute(kl_cuda_ctx *c, int iterations, double *ms) {
    kl_cplan *p = c->cur;
    if (!p) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "cuda: time the compute after one run");
    for (int i = 0; i < iterations; i++) {
        KL_CU(cudaEventRecord(c->ev[1], c->st));
        KL_TRY(kl_cu_compute(c, p));
        KL_CU(cudaEventRecord(c->ev[2], c->st));
        KL_CU(cudaEventSynchronize(c->ev[2]));
        float t = 0;
        KL_CU(cudaEventElapsedTime(&t, c->ev[1], c->ev[2]));
        ms[i] = t;
    }
    return KILN_OK;
}

void kl_cuda_ctx_set_profiling(kl_cuda_ctx *c, bool on, double *node_ms, uint64_t *node_runs) {
    c->profiling = on;
    c->node_ms = node_ms;
    c->node_runs = node_runs;
}

size_t kl_cuda_ctx_device_bytes(const kl_cuda_ctx *c) { return c->cur ? c->cur->dev_bytes : 0; }

void kl_cuda_ctx_stats(const kl_cuda_ctx *c, bool *graph, size_t *host_nodes, size_t *static_nodes) {
    if (graph) *graph = c->last_graph;
    if (host_nodes) *host_nodes = c->cur ? c->cur->n_host : 0;
    if (static_nodes) *static_nodes = c->cur ? c->cur->n_static : 0;
}

/* ---- tactics chosen at build ------------------------------------------------------------------ */

kiln_status kl_cuda_engine_set_algos(kl_cuda_engine *ce, const int *algo, const int64_t *key, size_t key_len) {
    size_t nn = ce->ir->graph->n_nodes;
    if (key_len > KL_ARRAY_LEN(ce->algo_key)) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "cuda: algorithm key too long");
    int *a = kl_malloc((nn ? nn : 1) * sizeof *a);
    if (!a) return KILN_ERR_NO_MEMORY;
    memcpy(a, algo, nn * sizeof *a);
    kl_free(ce->algo);
    ce->algo = a;
    memcpy(ce->algo_key, key, key_len * sizeof key[0]);
    ce->algo_key_len = key_len;
    return KILN_OK;
}

void kl_cuda_plan_key(kl_rt *const *inputs, size_t n, int64_t *key, size_t *len, size_t cap) {
    kl_cplan_key(inputs, n, key, len, cap);
}

kiln_status kl_cuda_ctx_plan(kl_cuda_ctx *c, kl_rt *const *inputs, size_t n_inputs) {
    kl_cplan *p = NULL;
    KL_TRY(kl_cu_plan_for(c, inputs, n_inputs, &p));
    c->cur = p;
    return KILN_OK;
}

_Static_assert(KC_CONV_ALGO_IGEMM + KC_IGEMM_CFGS <= KL_CUDA_ALGO_MAX, "algorithm codes past KL_CUDA_ALGO_MAX");

bool kl_cuda_algo_is_own_conv(int algo) {
    if (algo >= KL_CU_ALGO_DENSE) algo -= KL_CU_ALGO_DENSE;
    return algo >= KC_CONV_ALGO_IGEMM && algo < KC_CONV_ALGO_IGEMM + KC_IGEMM_CFGS;
}

/* One step in words (kl_cuda_ctx_kernel). */
static void kl_cu_step_describe(const kl_cstep *s, char *buf, size_t size) {
    static const struct {
        int kind;
        const char *name;
    } names[] = {{K_FE, "kiln fused elementwise"}, {K_ACT, "kiln activation"},   {K_COPY, "kiln copy"},
                 {K_FILLCOPY, "kiln padded copy"},  {K_LN, "kiln layer norm"},    {K_SOFTMAX, "kiln softmax"},
                 {K_POOL, "kiln pool"},             {K_GPOOL, "kiln global pool"}, {K_REDUCE, "kiln reduce"},
                 {K_RESIZE, "kiln resize"},         {K_GATHER, "kiln gather"},     {K_EINSUM, "kiln einsum"},
                 {K_HOST, "host (shapes)"},         {K_TOPK, "kiln top-k"}};
    buf[0] = 0;
    bool s2d = false;
    for (size_t i = 0; i < s->n_pre; i++) s2d |= s->pre[i].s2d;
    if (s->kind == K_CONV && s->conv) {
        char c[200];
        kc_conv_describe(s->conv, c, sizeof c);
        snprintf(buf, size, "%s%s%s%s%s", s2d ? "space-to-depth + " : "", c, s->pool_part ? " + SE pool" : "",
                 s->unslab ? " (dense copies)" : "", s->side ? " [side stream]" : "");
    } else if (s->kind == K_GEMM && s->gemm) {
        kc_gemm_describe(s->gemm, buf, size);
    } else if (s->kind == K_ATTN && s->attn) {
        kc_attn_describe(s->attn, buf, size);
    } else if (s->kind == K_SE) {
        snprintf(buf, size, "kiln SE MLP%s", s->wf ? " + weight fold" : "");
    } else {
        for (size_t i = 0; i < sizeof names / sizeof *names; i++)
            if (names[i].kind == s->kind) snprintf(buf, size, "%s", names[i].name);
        if (!buf[0]) snprintf(buf, size, "step kind %d", s->kind);
    }
}

void kl_cuda_ctx_kernel(const kl_cuda_ctx *c, size_t node, char *buf, size_t size) {
    if (!buf || !size) return;
    buf[0] = 0;
    const kl_cplan *p = c ? c->cur : NULL;
    if (!p) return;
    size_t steps = 0, copies = 0, len = 0;
    for (size_t i = 0; i < p->n_steps; i++) {
        const kl_cstep *s = &p->steps[i];
        if ((s->charge1 ? s->charge1 - 1 : s->node) != node) continue;
        char one[256];
        kl_cu_step_describe(s, one, sizeof one);
        if (len + 1 < size) snprintf(buf + len, size - len, "%s%s", steps ? " + " : "", one);
        len = strlen(buf);
        steps++;
        for (size_t j = 0; j < s->n_pre; j++) copies += !s->pre[j].s2d;
    }
    if (!steps)
        snprintf(buf, size, "no launch of its own");
    else if (copies && len + 1 < size)
        snprintf(buf + len, size - len, " (+%zu layout cop%s)", copies, copies == 1 ? "y" : "ies");
}

void kl_cuda_ctx_choices(const kl_cuda_ctx *c, int *algo, size_t *workspace, double *ms) {
    size_t nn = c->ce->ir->graph->n_nodes;
    for (size_t i = 0; i < nn; i++) {
        algo[i] = -1;
        workspace[i] = 0;
        ms[i] = 0;
    }
    const kl_cplan *p = c->cur;
    for (size_t i = 0; p && i < p->n_steps; i++) {
        const kl_cstep *s = &p->steps[i];
        if (s->node >= nn) continue;
        if (s->conv) {
            algo[s->node] = kc_conv_algo(s->conv) + (s->unslab ? KL_CU_ALGO_DENSE : 0);
            workspace[s->node] = kc_conv_workspace(s->conv);
            ms[s->node] = kc_conv_time_ms(s->conv);
        } else if (s->gemm) {
            algo[s->node] = kc_gemm_algo(s->gemm);
            workspace[s->node] = kc_gemm_workspace(s->gemm);
            ms[s->node] = kc_gemm_time_ms(s->gemm);
        } else if (s->attn) {
            /* the flash tiling (KC_FLASH_*) when timed; an untimed one stays the kernel's own choice */
            if (kc_attn_time_ms(s->attn) > 0) algo[s->node] = kc_attn_flash_variant(s->attn);
            workspace[s->node] = kc_attn_workspace(s->attn);
            ms[s->node] = kc_attn_time_ms(s->attn);
        }
    }
}
