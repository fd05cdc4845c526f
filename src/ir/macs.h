/*
 * macs.h — multiply-accumulate (MAC) counts of the nodes that do matrix
 * work: Conv, ConvTranspose, Gemm and MatMul-like nodes of ai.onnx, and the
 * kiln-domain layers the passes make of them (FusedConv, FusedGemm,
 * FusedMatMul, and Attention as its two products), so an optimized graph
 * counts what its model counts.  `kiln info`, `kiln bench` (GFLOP/s =
 * 2 x MACs / time) and kiln_model_macs / kiln_engine_macs use it.
 */
#ifndef KL_IR_MACS_H
#define KL_IR_MACS_H

#include "ir/ir.h"

/* How symbolic dimensions are sized while counting. */
typedef struct kl_mac_env {
    /* Bound names: names[i] has size values[i].  Names not bound count as 1. */
    const char *const *names;
    const int64_t *values;
    size_t n;
    /* Called for each name taken as 1 (len bytes, not NUL-terminated; may
     * repeat); may be NULL. */
    void (*note)(void *user, const char *name, size_t len);
    void *user;
} kl_mac_env;

/* MACs of node `n`: 1 when counted (in *out), 0 when the op does no matrix
 * work, -1 when it does but the shapes are not known well enough.
 * env may be NULL (every symbolic dimension counts as 1). */
int kl_node_macs(const kl_node *n, const kl_mac_env *env, uint64_t *out);

/* Totals over a graph and its subgraphs (each subgraph node once). */
typedef struct kl_mac_count {
    uint64_t macs;     /* saturates at UINT64_MAX */
    uint64_t nodes;    /* nodes counted */
    uint64_t unknown;  /* nodes with MACs whose shapes were not known */
} kl_mac_count;
void kl_graph_macs(const kl_graph *g, const kl_mac_env *env, kl_mac_count *out);

#endif
