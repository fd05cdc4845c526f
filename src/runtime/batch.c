/* Batch splitting: can the main graph run a few samples at a time?
 * A graph qualifies when every sample of the batch goes through it on its
 * own (no node mixes samples), which the runtime then uses to run a large
 * batch as slices that keep their intermediates in cache, or in parallel
 * on the context's threads (context.c). */
#include <string.h>

#include "ops/kiln.h"
#include "runtime/engine.h"

/* Shape s has the batch symbol `param` at axis 0 and nowhere else. */
static bool kl_batch_leading(const kl_type *t, const char *param) {
    if (t->kind != KL_TYPE_TENSOR || t->shape.rank < 1) return false;
    const kl_dim *d = t->shape.dims;
    if (d[0].value >= 0 || !d[0].param || strcmp(d[0].param, param) != 0) return false;
    for (int a = 1; a < t->shape.rank; a++)
        if (d[a].value < 0 && (!d[a].param || strcmp(d[a].param, param) == 0)) return false;
    return true;
}

/* Normalized axis attribute `name` of a node whose input 0 has rank r. */
static int64_t kl_batch_axis(const kl_node *n, const char *name, int64_t dflt, int r) {
    int64_t a = kl_node_attr_int(n, name, dflt);
    return a < 0 ? a + r : a;
}

static bool kl_in_list(const char *op, const char *const *list) {
    for (; *list; list++)
        if (strcmp(op, *list) == 0) return true;
    return false;
}

/* Constant integer input i of n (an initializer, at most max values):
 * its count, or -1. */
static int64_t kl_batch_const_ints(const kl_node *n, size_t i, int64_t *out, int64_t max) {
    const kl_value *v = i < n->n_inputs ? n->inputs[i] : NULL;
    if (!v || !v->init || v->init->count > max || !kl_tensor_to_i64(v->init, out, max)) return -1;
    return v->init->count;
}

/* Slice on axes that all leave axis 0 alone (given explicitly: the default
 * axes start at 0), input 0 of rank r. */
static bool kl_batch_slice_ok(const kl_node *n, int r) {
    int64_t ax[KILN_MAX_RANK], na;
    if (n->opset < 10) {
        const int64_t *v;
        na = kl_node_attr_ints(n, "axes", &v);
        if (na < 1 || na > KILN_MAX_RANK) return false;
        memcpy(ax, v, (size_t)na * sizeof *ax);
    } else {
        na = kl_batch_const_ints(n, 3, ax, KILN_MAX_RANK);
    }
    if (na < 1 || r < 1) return false;
    for (int64_t k = 0; k < na; k++) {
        int64_t a = ax[k] < 0 ? ax[k] + r : ax[k];
        if (a <= 0 || a >= r) return false;
    }
    return true;
}

/* Resize (opset 11+) by constant scales whose axis-0 scale is 1, no sizes,
 * no axes attribute and no crop (the batch axis is then copied as is). */
static bool kl_batch_resize_ok(const kl_node *n, int r) {
    const int64_t *axes;
    if (n->opset < 11 || r < 1 || n->n_inputs < 3 || kl_node_attr_ints(n, "axes", &axes) >= 0 ||
        strcmp(kl_node_attr_string(n, "coordinate_transformation_mode", "half_pixel"), "tf_crop_and_resize") == 0)
        return false;
    const kl_value *sc = n->inputs[2], *sz = n->n_inputs > 3 ? n->inputs[3] : NULL;
    if (sz && (!sz->init || sz->init->count > 0)) return false;
    return sc && sc->init && sc->init->count == r && kl_tensor_get_f64(sc->init, 0) == 1.0;
}

/* Does node n (whose batch-carrying inputs are flagged in dep[]) treat
 * samples independently?  Conservative: a list of ops known to, with the
 * attributes that keep axis 0 out of their computation. */
static bool kl_batch_node_ok(const kl_node *n, const bool *dep) {
    static const char *const unary[] = {
        "Relu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "LeakyRelu", "Elu", "Selu", "Exp", "Log",
        "Neg", "Abs", "Sqrt", "Reciprocal", "Erf", "Gelu", "Softplus", "Softsign", "Mish", "Identity", "Floor",
        "Ceil", "Round", "Sign", "Cast", "PRelu", NULL};
    static const char *const binary[] = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Where", NULL};
    static const char *const spatial[] = {"Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
                                          "BatchNormalization", NULL};
    const char *op = n->op_type;
    bool kiln = strcmp(n->domain, KL_KILN_DOMAIN) == 0;
    if (!kiln && n->domain[0]) return false;
    for (size_t a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].type == KL_ATTR_GRAPH || n->attrs[a].type == KL_ATTR_GRAPHS) return false;
    const kl_value *x = n->n_inputs ? n->inputs[0] : NULL;
    int r = x ? x->type.shape.rank : -1;
    if (!kiln && (kl_in_list(op, unary) || kl_in_list(op, binary))) goto broadcast;
    if (kiln && strcmp(op, "FusedElementwise") == 0) goto broadcast;
    /* X, the scale and Z carry the batch at the output's rank; W and B are constants */
    if (kiln && strcmp(op, "ScaledConv") == 0) goto broadcast;
    /* input 0 carries the batch, the others (weights) must not */
    if (kiln ? strcmp(op, "FusedConv") == 0 || strcmp(op, "FusedConvDw") == 0 : kl_in_list(op, spatial)) {
        if (strcmp(op, "BatchNormalization") == 0 && (n->n_outputs > 1 || kl_node_attr_int(n, "training_mode", 0)))
            return false;
        goto first_only;
    }
    if (!kiln && strcmp(op, "Flatten") == 0) {
        if (r < 1 || kl_batch_axis(n, "axis", 1, r) < 1) return false;
        goto first_only;
    }
    if (strcmp(op, "Gemm") == 0 || (kiln && strcmp(op, "FusedGemm") == 0)) {
        if (kl_node_attr_int(n, "transA", 0)) return false;
        goto first_only;
    }
    if (strcmp(op, "MatMul") == 0 || (kiln && strcmp(op, "FusedMatMul") == 0)) {
        if (r < 2) return false;
        goto first_only;
    }
    if (!kiln && (strcmp(op, "Softmax") == 0 || strcmp(op, "LogSoftmax") == 0)) {
        if (r < 1 || kl_batch_axis(n, "axis", n->opset >= 13 ? -1 : 1, r) < 1) return false;
        goto first_only;
    }
    if (kiln && (strcmp(op, "LayerNorm") == 0 || strcmp(op, "RMSNorm") == 0)) {
        if (r < 1 || kl_batch_axis(n, "axis", -1, r) < 1) return false;
        goto first_only;
    }
    if (!kiln && strcmp(op, "Concat") == 0) {
        if (r < 1 || kl_batch_axis(n, "axis", 0, r) < 1) return false;
        goto broadcast; /* every batch-carrying input has the output's rank */
    }
    if (!kiln && strcmp(op, "Transpose") == 0) {
        const int64_t *perm;
        if (kl_node_attr_ints(n, "perm", &perm) < 1 || perm[0] != 0) return false;
        goto first_only;
    }
    if (!kiln && strcmp(op, "Reshape") == 0) goto first_only; /* output checked to keep axis 0 as the batch */
    if (!kiln && strcmp(op, "Split") == 0) {
        if (r < 1 || kl_batch_axis(n, "axis", 0, r) < 1) return false;
        goto first_only; /* the split sizes are not per sample */
    }
    if (!kiln && strcmp(op, "Slice") == 0) {
        if (!kl_batch_slice_ok(n, r)) return false;
        goto first_only; /* starts, ends, steps not per sample */
    }
    if (!kiln && strcmp(op, "Resize") == 0) {
        if (!kl_batch_resize_ok(n, r)) return false;
        goto first_only;
    }
    return false;
first_only:
    /* a fused op's residual (input 3) has the output's shape */
    for (size_t i = 1; i < n->n_inputs; i++)
        if (n->inputs[i] && dep[n->inputs[i]->id] &&
            !(kiln && i == 3 && n->outputs[0] && n->inputs[i]->type.shape.rank == n->outputs[0]->type.shape.rank))
            return false;
    return true;
broadcast:
    /* numpy broadcasting aligns trailing axes: an input that carries the
     * batch must have the output's rank, so its axis 0 is the output's */
    for (size_t i = 0; i < n->n_inputs; i++) {
        const kl_value *v = n->inputs[i];
        if (v && dep[v->id] && (!n->outputs[0] || v->type.shape.rank != n->outputs[0]->type.shape.rank))
            return false;
    }
    return true;
}

bool kl_graph_batch_separable(const kl_graph *g) {
    const char *param = NULL;
    size_t nv = g->n_values, n_in = 0;
    if (!nv) return false;
    bool *dep = kl_calloc(nv, sizeof *dep);
    if (!dep) return false;
    bool ok = true;
    for (size_t j = 0; ok && j < g->n_inputs; j++) {
        const kl_value *v = g->inputs[j];
        if (v->flags & KL_VALUE_INITIALIZER) continue;
        if (!param && v->type.kind == KL_TYPE_TENSOR && v->type.shape.rank >= 1) param = v->type.shape.dims[0].param;
        ok = param && kl_batch_leading(&v->type, param);
        dep[v->id] = true;
        n_in++;
    }
    ok = ok && n_in > 0;
    for (size_t i = 0; ok && i < g->n_nodes; i++) {
        const kl_node *n = g->nodes[i];
        bool any = false;
        for (size_t k = 0; k < n->n_inputs; k++) any = any || (n->inputs[k] && dep[n->inputs[k]->id]);
        if (!any) continue; /* computes on constants only */
        ok = kl_batch_node_ok(n, dep);
        for (size_t k = 0; ok && k < n->n_outputs; k++) {
            const kl_value *v = n->outputs[k];
            if (!v) continue;
            ok = kl_batch_leading(&v->type, param);
            dep[v->id] = true;
        }
    }
    /* outputs are made whole before the parts run: their other axes and
     * element type must be known */
    for (size_t j = 0; ok && j < g->n_outputs; j++) {
        const kl_value *v = g->outputs[j];
        ok = v->producer && dep[v->id] && kl_batch_leading(&v->type, param) && v->type.elem != KILN_DTYPE_UNDEFINED &&
             v->type.elem != KILN_DTYPE_STRING;
        for (int a = 1; ok && a < v->type.shape.rank; a++) ok = v->type.shape.dims[a].value >= 0;
    }
    kl_free(dep);
    return ok;
}

/* Weights from which a split batch runs two samples per slice (see
 * kl_graph_batch_chunk). */
#define KL_BATCH_CHUNK_WEIGHTS ((size_t)32 << 20)

/* Bytes of one sample of v (axes after the first known), or SIZE_MAX. */
static size_t kl_batch_sample_bytes(const kl_value *v) {
    const kl_type *t = &v->type;
    if (t->kind != KL_TYPE_TENSOR || t->shape.rank < 1 || t->elem == KILN_DTYPE_UNDEFINED ||
        t->elem == KILN_DTYPE_STRING)
        return SIZE_MAX;
    int64_t count = 1;
    for (int a = 1; a < t->shape.rank; a++)
        if (t->shape.dims[a].value < 0 || kl_mul_i64(count, t->shape.dims[a].value, &count)) return SIZE_MAX;
    size_t nb;
    return kl_dtype_nbytes(t->elem, count, &nb) ? nb : SIZE_MAX;
}

size_t kl_graph_batch_tail(const kl_graph *g, size_t max_sample_bytes, size_t *frontier) {
    size_t nv = g->n_values, nn = g->n_nodes, k_best = 0;
    if (!nv || nn < 2) return 0;
    /* per value: producing node + 1 (0: an input or constant), last reader + 1 (nn + 1: a graph output) */
    size_t *made = kl_calloc(nv, sizeof *made), *last = kl_calloc(nv, sizeof *last);
    if (!made || !last) goto done;
    for (size_t i = 0; i < nn; i++) {
        const kl_node *n = g->nodes[i];
        for (size_t k = 0; k < n->n_outputs; k++)
            if (n->outputs[k]) made[n->outputs[k]->id] = i + 1;
        for (size_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k]) last[n->inputs[k]->id] = KL_MAX(last[n->inputs[k]->id], i + 1);
    }
    for (size_t j = 0; j < g->n_outputs; j++) last[g->outputs[j]->id] = nn + 1;
    /* the smallest cut k (nodes [k, nn) run on the whole batch) after
     * which every value is small and one value crosses it */
    size_t small_from = nn; /* the nodes from here on make only small values */
    for (size_t i = nn; i-- > 0;) {
        const kl_node *n = g->nodes[i];
        bool ok = true;
        for (size_t k = 0; ok && k < n->n_outputs; k++)
            ok = !n->outputs[k] || kl_batch_sample_bytes(n->outputs[k]) <= max_sample_bytes;
        if (!ok) break;
        small_from = i;
    }
    for (size_t k = KL_MAX(small_from, (size_t)1); k < nn && !k_best; k++) {
        size_t crossing = 0, id = 0;
        for (size_t v = 0; v < nv && crossing < 2; v++) {
            /* made by a node before k (inputs cross only if read at or after k) */
            bool before = made[v] ? made[v] <= k : (g->values[v]->flags & KL_VALUE_GRAPH_INPUT) &&
                                                       !(g->values[v]->flags & KL_VALUE_INITIALIZER);
            if (before && last[v] > k) {
                crossing++;
                id = v;
            }
        }
        if (crossing == 1 && made[id] && last[id] <= nn && kl_batch_sample_bytes(g->values[id]) <= max_sample_bytes) {
            k_best = k;
            *frontier = id;
        }
    }
done:
    kl_free(made);
    kl_free(last);
    return k_best;
}

size_t kl_graph_batch_chunk(const kl_graph *g) {
    size_t weights = 0, map = 0;
    for (size_t v = 0; v < g->n_values; v++) {
        const kl_value *val = g->values[v];
        if (val->init) {
            weights += val->init->nbytes;
        } else if (!(val->flags & KL_VALUE_INITIALIZER)) {
            size_t b = kl_batch_sample_bytes(val);
            if (b != SIZE_MAX) map = KL_MAX(map, b);
        }
    }
    return weights >= KL_BATCH_CHUNK_WEIGHTS && weights / 16 >= map ? 2 : 1;
}
