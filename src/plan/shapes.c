/* Concrete shapes of every value at a profile point: the model's shape
 * inference run again with the graph inputs set to concrete dims, then the
 * model's own (symbolic) types restored. */
#include <stdio.h>
#include <string.h>

#include "ops/ops.h"
#include "plan/plan.h"

typedef struct kl_saved_value {
    kl_value *v;
    kl_type type;
    kl_symval *sym;
    uint32_t flags;
} kl_saved_value;

void kl_shapes_free(kl_shapes *s) {
    if (!s) return;
    if (s->dims)
        for (size_t i = 0; i < s->n_values; i++) kl_free(s->dims[i]);
    kl_free(s->dims);
    kl_free(s->rank);
    kl_free(s->bytes);
    kl_free(s->dtype);
    memset(s, 0, sizeof *s);
}

static const kl_profile_input *kl_profile_find(const kl_profile *p, const char *name) {
    for (size_t i = 0; p && i < p->n_inputs; i++)
        if (strcmp(p->inputs[i].name, name) == 0) return &p->inputs[i];
    return NULL;
}

/* Snapshot every value of every graph of m (inference may touch subgraphs). */
static kiln_status kl_snapshot(kl_model *m, kl_saved_value **out, size_t *n_out) {
    size_t n = 0;
    for (size_t gi = 0; gi < m->graphs.len; gi++) n += ((kl_graph *)m->graphs.items[gi])->n_values;
    kl_saved_value *sv = kl_calloc(n ? n : 1, sizeof *sv);
    if (!sv) return KILN_ERR_NO_MEMORY;
    size_t k = 0;
    for (size_t gi = 0; gi < m->graphs.len; gi++) {
        kl_graph *g = m->graphs.items[gi];
        for (size_t i = 0; i < g->n_values; i++) {
            kl_value *v = g->values[i];
            if (!v) continue;
            sv[k].v = v;
            sv[k].type = v->type;
            sv[k].sym = v->sym;
            sv[k].flags = v->flags;
            k++;
        }
    }
    *out = sv;
    *n_out = k;
    return KILN_OK;
}

static void kl_restore(kl_saved_value *sv, size_t n) {
    for (size_t i = 0; i < n; i++) {
        sv[i].v->type = sv[i].type;
        sv[i].v->sym = sv[i].sym;
        sv[i].v->flags = sv[i].flags;
    }
}

kiln_status kl_shapes_eval(kl_model *m, const kl_profile *p, int at, kl_shapes *out) {
    memset(out, 0, sizeof *out);
    kl_graph *g = m->graph;
    kl_saved_value *sv = NULL;
    size_t nsv = 0;
    size_t n_problems = m->n_problems;
    KL_TRY(kl_snapshot(m, &sv, &nsv));
    kiln_status s = KILN_OK;
    for (size_t i = 0; i < g->n_inputs && !s; i++) {
        kl_value *v = g->inputs[i];
        if (v->flags & KL_VALUE_INITIALIZER) continue;
        const kl_profile_input *pi = kl_profile_find(p, v->name);
        if (!pi) {
            if (v->type.kind == KL_TYPE_TENSOR && !kl_shape_is_static(&v->type.shape))
                s = kl_errorf(KILN_ERR_SHAPE, "input '%s' has dynamic axes and no shapes in the profile", v->name);
            continue;
        }
        if (v->type.shape.rank >= 0 && v->type.shape.rank != pi->rank) {
            s = kl_errorf(KILN_ERR_SHAPE, "profile shape of input '%s' has %d dims, the model declares %d", v->name,
                          pi->rank, v->type.shape.rank);
            break;
        }
        kl_dim *d = kl_arena_array(&m->arena, (size_t)(pi->rank ? pi->rank : 1), sizeof *d);
        if (!d) {
            s = KILN_ERR_NO_MEMORY;
            break;
        }
        const int64_t *src = at == KL_AT_MIN ? pi->min : at == KL_AT_OPT ? pi->opt : pi->max;
        for (int k = 0; k < pi->rank; k++) d[k].value = src[k];
        v->type.shape.rank = pi->rank;
        v->type.shape.dims = d;
        v->sym = NULL;
    }
    if (!s) {
        for (size_t i = 0; i < g->n_values; i++)
            if (g->values[i] && g->values[i]->producer) g->values[i]->sym = NULL;
        s = kl_infer_graph(m, g);
    }
    size_t nv = g->n_values;
    if (!s) {
        out->n_values = nv;
        out->rank = kl_calloc(nv ? nv : 1, sizeof *out->rank);
        out->dims = kl_calloc(nv ? nv : 1, sizeof *out->dims);
        out->bytes = kl_calloc(nv ? nv : 1, sizeof *out->bytes);
        out->dtype = kl_calloc(nv ? nv : 1, sizeof *out->dtype);
        if (!out->rank || !out->dims || !out->bytes || !out->dtype) s = KILN_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i < nv && !s; i++) {
        const kl_value *v = g->values[i];
        out->rank[i] = -1;
        out->bytes[i] = SIZE_MAX;
        if (!v || v->type.kind != KL_TYPE_TENSOR || v->type.elem == KILN_DTYPE_STRING ||
            v->type.elem == KILN_DTYPE_UNDEFINED || !kl_shape_is_static(&v->type.shape))
            continue;
        int r = v->type.shape.rank;
        int64_t count = 1;
        out->dims[i] = kl_calloc((size_t)(r ? r : 1), sizeof(int64_t));
        if (!out->dims[i]) {
            s = KILN_ERR_NO_MEMORY;
            break;
        }
        bool ok = true;
        for (int k = 0; k < r; k++) {
            out->dims[i][k] = v->type.shape.dims[k].value;
            ok &= !kl_mul_i64(count, out->dims[i][k], &count);
        }
        size_t nb;
        if (!ok || !kl_dtype_nbytes(v->type.elem, count, &nb)) continue;
        out->rank[i] = r;
        out->bytes[i] = nb;
        out->dtype[i] = v->type.elem;
    }
    kl_restore(sv, nsv);
    kl_free(sv);
    m->n_problems = n_problems;
    if (s) kl_shapes_free(out);
    return s;
}
