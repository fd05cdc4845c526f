/*
 * passes_transformer.h — the transformer-side passes (fused ops in
 * ops/kiln_transformer.h) and the small match helpers they share.
 *
 *   fuse_norm         decomposed LayerNorm / RMSNorm (ReduceMean, Sub, Pow,
 *                     Sqrt, Div... of opset < 17 exports) and the ONNX
 *                     LayerNormalization / RMSNormalization ops
 *                     -> kiln.LayerNorm / kiln.RMSNorm      (fuse_norm.c)
 *   split_qkv         torch 2.x's packed q/k/v split (Reshape, Unsqueeze,
 *                     Transpose, Squeeze, Gather) -> column Slices (fuse_mha.c)
 *   fuse_attention    multi-head attention (torch nn.MultiheadAttention and
 *                     BERT-style exports) -> kiln.Attention (fuse_attention.c)
 *   fuse_matmul       MatMul (+ scalar Mul/Div) (+ bias Add) (+ activation)
 *                     -> kiln.FusedMatMul                  (fuse_matmul.c)
 *   sink_mha_transposes  a seq-first kiln.Attention between linear layers of
 *                     Transpose(1,0,2)(X) and a Transpose(1,0,2) back
 *                     -> the same block batch-first, no Transposes (fuse_mha.c)
 *   fuse_elementwise  chains of float elementwise ops
 *                     -> kiln.FusedElementwise            (fuse_elementwise.c)
 *
 * They run in that order, after the generic passes: attention before
 * fuse_matmul (which would otherwise take the scores' scale), elementwise
 * chains last (they would otherwise take pieces of the other patterns).
 * Every match is exact about semantics (axes, constants, permutations,
 * shapes); anything else leaves the graph alone.  Float32 only.
 */
#ifndef KL_PASSES_TRANSFORMER_H
#define KL_PASSES_TRANSFORMER_H

#include <string.h>

#include "ops/kiln_transformer.h"
#include "passes/passes_internal.h"

kiln_status kl_pass_fuse_norm(kl_pass_ctx *c);
kiln_status kl_pass_split_qkv(kl_pass_ctx *c);
kiln_status kl_pass_fuse_attention(kl_pass_ctx *c);
kiln_status kl_pass_fuse_matmul(kl_pass_ctx *c);
kiln_status kl_pass_sink_mha_transposes(kl_pass_ctx *c);
kiln_status kl_pass_fuse_elementwise(kl_pass_ctx *c);

/* ---- shared helpers --------------------------------------------------------------------- */

/* Is v a float32 tensor value? */
static inline bool kl_tp_is_f32(const kl_value *v) {
    return v && v->type.kind == KL_TYPE_TENSOR && v->type.elem == KILN_DTYPE_FLOAT;
}

/* Is n a live kiln-domain node of op `op`? */
static inline bool kl_tp_is_kiln(const kl_node *n, const char *op) {
    return n && !n->removed && strcmp(n->domain, KL_KILN_DOMAIN) == 0 && strcmp(n->op_type, op) == 0;
}

/* Is n a live ai.onnx node of op `op` with one float32 output? */
static inline bool kl_tp_is_op(const kl_node *n, const char *op) {
    return n && !n->removed && kl_pass_is(n, op) && n->n_outputs >= 1 && kl_tp_is_f32(n->outputs[0]);
}

/* The live producer of v in the main graph, or NULL. */
static inline kl_node *kl_tp_producer(const kl_pass_ctx *c, const kl_value *v) {
    kl_node *p = v ? v->producer : NULL;
    return p && !p->removed && p->graph == c->g ? p : NULL;
}

/* Does v have exactly the one reader `n` (as one or more inputs), with v
 * neither a graph output nor read by a subgraph? */
static inline bool kl_tp_only_reader(const kl_pass_ctx *c, const kl_value *v, const kl_node *n) {
    if (!v || !v->n_uses || kl_value_escapes(c->g, v)) return false;
    for (size_t i = 0; i < v->n_uses; i++)
        if (v->uses[i].node != n) return false;
    return true;
}

/* Same dimension for sure: equal known sizes or the same symbol. */
static inline bool kl_tp_dim_same(const kl_dim *a, const kl_dim *b) {
    if (a->value >= 0 || b->value >= 0) return a->value == b->value;
    return a->param && b->param && strcmp(a->param, b->param) == 0;
}

/* Same rank and dims (kl_tp_dim_same for each). */
static inline bool kl_tp_shape_same(const kl_shape *a, const kl_shape *b) {
    if (a->rank < 0 || a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (!kl_tp_dim_same(&a->dims[i], &b->dims[i])) return false;
    return true;
}

/* Is n a row-wise linear layer of its input 0: kiln.FusedMatMul or MatMul
 * with a constant 2-D weight (bias per column), or a Gemm (transA 0) whose C
 * does not vary by row? */
static inline bool kl_tp_row_linear(kl_pass_ctx *c, const kl_node *n) {
    if (!n || n->removed || n->n_outputs != 1 || !kl_tp_is_f32(n->outputs[0]) || n->n_inputs < 2) return false;
    const kl_value *w = n->inputs[1];
    if (!w || !kl_value_const(c->m, w) || w->type.shape.rank != 2) return false;
    if (kl_tp_is_kiln(n, "FusedMatMul")) return true;
    if (kl_tp_is_op(n, "MatMul")) return n->n_inputs == 2;
    if (!kl_tp_is_op(n, "Gemm") || kl_node_attr_int(n, "transA", 0)) return false;
    const kl_value *b = n->n_inputs > 2 ? n->inputs[2] : NULL;
    return !b || b->type.shape.rank == 0 || b->type.shape.rank == 1 ||
           (b->type.shape.rank == 2 && b->type.shape.dims[0].value == 1);
}

#endif /* KL_PASSES_TRANSFORMER_H */
