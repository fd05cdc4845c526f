/*
 * passes_internal.h — what a pass sees: the pass context, the rewrite
 * protocol, shared matchers (activations), and every pass function.
 *
 * A pass is kiln_status fn(kl_pass_ctx *c): scan c->g->nodes (skip
 * n->removed), and for each match call kl_pass_begin(c) first (false: the
 * rewrite limit is reached, return KILN_OK at once), edit the graph with the
 * ir.h edit calls, then kl_pass_commit(c, label) which logs
 * "<pass>: <label>", counts the rewrite and verifies the graph.  A pass may
 * apply many rewrites per call; the driver calls it again until it applies
 * none, then moves on, and repeats the whole table until nothing changes.
 * New nodes must be placed (kl_node_new `at`) so the order stays topological.
 */
#ifndef KL_PASSES_INTERNAL_H
#define KL_PASSES_INTERNAL_H

#include "ops/kiln.h"
#include "passes/passes.h"

typedef struct kl_pass_ctx {
    kl_model *m;
    kl_graph *g;              /* the main graph */
    const char *pass;         /* name of the running pass */
    size_t fold_budget;       /* bytes constant folding may still create */
    int64_t limit;            /* rewrites allowed in all; < 0: none */
    size_t rewrites;          /* applied so far (all passes) */
    size_t applied;           /* applied by the current call of the pass */
    bool stopped;             /* the limit was reached */
    bool verify;              /* check the graph after each rewrite */
    bool cpu_fused;           /* kl_pass_options.cpu_fused */
    kl_pass_log_fn log;
    void *log_user;
} kl_pass_ctx;

typedef kiln_status (*kl_pass_fn)(kl_pass_ctx *c);

/* May one more rewrite be applied?  False once the limit is reached. */
bool kl_pass_begin(kl_pass_ctx *c);
/* Record one applied rewrite: log "<pass>: <label>", count it, verify the
 * graph (error KILN_ERR_INTERNAL naming the pass and label on failure). */
kiln_status kl_pass_commit(kl_pass_ctx *c, const char *label);
/* Log a free-form line (printf-style) when a log callback is set. */
void kl_pass_logf(kl_pass_ctx *c, const char *fmt, ...) KL_PRINTF(2, 3);

/* ---- shared match helpers (fuse_conv.c) ------------------------------------------ */

/* An activation applied to a value x, found among x's readers. */
typedef struct kl_act_match {
    kl_act act;
    float alpha, beta;   /* act_alpha / act_beta (see ops/kiln.h) */
    kl_node *nodes[16];  /* the nodes computing act(x), in graph order */
    size_t n_nodes;
    kl_value *out;       /* the value holding act(x) */
} kl_act_match;

/* Does act(x) start at x's readers?  Matches Relu, Clip (constant or absent
 * min/max), LeakyRelu, Sigmoid, Tanh, x*Sigmoid(x) (SiLU), HardSigmoid,
 * HardSwish, Gelu (opset 20 op, erf and tanh spellings of the decomposed
 * exports), Softplus/Tanh/Mul (Mish).  Only when every reader of x and every
 * intermediate value is inside the match and no intermediate escapes (graph
 * output, subgraph).  Float32 x only.  Returns the largest match. */
bool kl_pass_match_activation(kl_pass_ctx *c, kl_value *x, kl_act_match *out);

/* Scalar float value of a constant v (any float dtype, one element after
 * broadcasting: every element equal), false otherwise. */
bool kl_pass_const_scalar(kl_pass_ctx *c, const kl_value *v, double *out);

/* True when the op of n is (domain "", op). */
bool kl_pass_is(const kl_node *n, const char *op);

/* ---- the passes (in table order, pass.c) ------------------------------------------ */

kiln_status kl_pass_remove_identity(kl_pass_ctx *c); /* simplify.c */
kiln_status kl_pass_fold_shapes(kl_pass_ctx *c);     /* fold.c */
kiln_status kl_pass_fold_constants(kl_pass_ctx *c);  /* fold.c */
kiln_status kl_pass_remove_dead(kl_pass_ctx *c);     /* fold.c */
kiln_status kl_pass_sink_gather(kl_pass_ctx *c);     /* sink_gather.c */
kiln_status kl_pass_sink_gather_attention(kl_pass_ctx *c); /* sink_gather.c */
kiln_status kl_pass_fuse_bn(kl_pass_ctx *c);         /* fuse_conv.c */
kiln_status kl_pass_fuse_conv_add(kl_pass_ctx *c);   /* fuse_conv.c */
kiln_status kl_pass_fuse_activation(kl_pass_ctx *c); /* fuse_conv.c */
kiln_status kl_pass_fuse_conv_dw(kl_pass_ctx *c);
/* Once, after the fixed point (kl_pass_options.layout_nchwc): layout.c. */
kiln_status kl_pass_layout_nchwc(kl_pass_ctx *c);    /* fuse_conv.c */
kiln_status kl_pass_fuse_se_conv(kl_pass_ctx *c);    /* fuse_conv.c */
/* A2 (transformer passes): declare your pass functions here, below this line,
 * and add their rows in pass.c's table at the marked spot. */

#endif /* KL_PASSES_INTERNAL_H */
