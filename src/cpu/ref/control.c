/* CPU reference kernels: control family (If, Loop, Scan, SequenceMap, and
 * the sequence / optional operators of control_seq.c). */
#include <stdio.h>
#include <string.h>

#include "cpu/ref/control.h"
#include "cpu/ref/ref.h"

/* ---- helpers ------------------------------------------------------------------ */

/* Graph attribute `name` of the node. */
static kiln_status kl_graph_attr(kl_kctx *c, const char *name, const kl_graph **out) {
    const kl_attr *a = kl_node_attr(c->node, name);
    if (!a || a->type != KL_ATTR_GRAPH || !a->g)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "graph attribute '%s' is missing", name);
    *out = a->g;
    return KILN_OK;
}

/* A single-element tensor read as a boolean (`what` names it in errors). */
static kiln_status kl_cond_value(kl_kctx *c, const kl_rt *v, const char *what, bool *out) {
    char a[128];
    if (!v || v->kind != KL_RT_TENSOR || v->count != 1 || v->dtype == KILN_DTYPE_STRING)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "%s must be a bool tensor with one element, got %s", what,
                            kl_rt_describe(v, a, sizeof a));
    *out = kl_rt_get_f64(v, 0) != 0.0;
    return KILN_OK;
}

/* Unref and clear n values. */
static void kl_drop(kl_rt **v, size_t n) {
    for (size_t i = 0; v && i < n; i++) {
        kl_rt_unref(v[i]);
        v[i] = NULL;
    }
}

/* Empty tensor for a scan output that got no elements: shape from the
 * body's declared output type with a 0 inserted at `axis` (unknown dims
 * read as 0; unknown rank: rank 1). */
static kiln_status kl_empty_scan_output(kl_kctx *c, size_t i, const kl_value *body_out, int64_t axis, int64_t lead,
                                        int lead_dims) {
    const kl_type *t = body_out ? &body_out->type : NULL;
    kiln_dtype dt = t && t->kind == KL_TYPE_TENSOR ? t->elem : KILN_DTYPE_UNDEFINED;
    if (dt == KILN_DTYPE_UNDEFINED && i < c->node->n_outputs && c->node->outputs[i])
        dt = c->node->outputs[i]->type.elem;
    if (dt == KILN_DTYPE_UNDEFINED) dt = KILN_DTYPE_FLOAT;
    int r = t && t->kind == KL_TYPE_TENSOR && t->shape.rank >= 0 ? t->shape.rank : 0;
    if (r + 1 + lead_dims > KILN_MAX_RANK) r = 0;
    int64_t elem[KILN_MAX_RANK], dims[KILN_MAX_RANK];
    for (int k = 0; k < r; k++) elem[k] = t->shape.dims[k].value >= 0 ? t->shape.dims[k].value : 0;
    int ax;
    KL_TRY(kl_ref_axis(axis, r, true, "scan output axis", &ax));
    int n = 0;
    if (lead_dims) dims[n++] = lead;
    for (int k = 0; k <= r; k++) {
        if (k == ax) dims[n++] = 0;
        if (k < r) dims[n++] = elem[k];
    }
    kl_rt *o;
    return kl_kctx_output(c, i, dt, n, dims, &o);
}

/* Growable list of values (scan output elements). */
typedef struct kl_vlist {
    kl_rt **v;
    size_t n, cap;
} kl_vlist;

/* Append v (takes the reference; unrefs it on failure). */
static kiln_status kl_vlist_push(kl_vlist *l, kl_rt *v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        kl_rt **p = kl_realloc_array(l->v, cap, sizeof *p);
        if (!p) {
            kl_rt_unref(v);
            return KILN_ERR_NO_MEMORY;
        }
        l->v = p;
        l->cap = cap;
    }
    l->v[l->n++] = v;
    return KILN_OK;
}

/* ---- If ------------------------------------------------------------------------- */

/* If-1/11/13/16/19/21: run then_branch or else_branch; their outputs (tensors,
 * sequences or optionals) become the node's outputs. */
static kiln_status kl_ctrl_if(kl_kctx *c) {
    bool cond;
    KL_TRY(kl_cond_value(c, c->n_in ? c->in[0] : NULL, "input 0 'cond'", &cond));
    const kl_graph *g = NULL;
    KL_TRY(kl_graph_attr(c, cond ? "then_branch" : "else_branch", &g));
    if (g->n_outputs < c->n_out)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "%s has %zu outputs but the node has %zu",
                            cond ? "then_branch" : "else_branch", g->n_outputs, c->n_out);
    kl_rt **outs = kl_calloc(g->n_outputs ? g->n_outputs : 1, sizeof *outs);
    if (!outs) return KILN_ERR_NO_MEMORY;
    kiln_status s = kl_exec_subgraph(c, g, NULL, 0, outs, g->n_outputs);
    if (s) s = kl_error_context(s, "%s: ", cond ? "then_branch" : "else_branch");
    for (size_t i = 0; !s && i < c->n_out; i++) {
        s = kl_kctx_set_output(c, i, outs[i]);
        outs[i] = NULL;
    }
    kl_drop(outs, g->n_outputs);
    kl_free(outs);
    return s;
}

/* ---- Loop ------------------------------------------------------------------------ */

/* Loop-1/11/13/16/19/21: body(iteration, cond, v...) -> (cond, v..., scan...),
 * while iteration < M (if given) and cond; scan outputs are stacked along a
 * new axis 0.  The body's cond output ends the loop even when input cond is
 * omitted (the spec's table calls it "ignored"; ONNX Runtime and the ONNX
 * reference evaluator honor it, and ("", "") loops then terminate). */
static kiln_status kl_ctrl_loop(kl_kctx *c) {
    const kl_graph *g = NULL;
    KL_TRY(kl_graph_attr(c, "body", &g));
    size_t nv = c->n_in > 2 ? c->n_in - 2 : 0;
    if (g->n_inputs != nv + 2)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "body takes %zu inputs; with %zu loop-carried values it must take %zu",
                            g->n_inputs, nv, nv + 2);
    if (g->n_outputs < nv + 1)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "body has %zu outputs; it must have at least %zu", g->n_outputs,
                            nv + 1);
    size_t nk = g->n_outputs - 1 - nv;
    if (c->n_out > nv + nk)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "node has %zu outputs but the body yields only %zu", c->n_out,
                            nv + nk);
    kl_rt *m = c->n_in > 0 ? c->in[0] : NULL, *cin = c->n_in > 1 ? c->in[1] : NULL;
    int64_t max_trip = INT64_MAX;
    if (m) {
        if (m->kind != KL_RT_TENSOR || !kl_dtype_is_integer(m->dtype) || m->count != 1)
            return kl_kctx_fail(c, KILN_ERR_TYPE, "input 0 'M' must be an int64 scalar");
        max_trip = kl_rt_get_i64(m, 0);
    }
    bool cond = true;
    if (cin) KL_TRY(kl_cond_value(c, cin, "input 1 'cond'", &cond));

    size_t nb = nv + 2, no = g->n_outputs;
    kl_rt **bin = kl_calloc(nb, sizeof *bin), **bout = kl_calloc(no, sizeof *bout);
    kl_vlist *scans = kl_calloc(nk ? nk : 1, sizeof *scans);
    kiln_status s = bin && bout && scans ? KILN_OK : KILN_ERR_NO_MEMORY;
    /* bin[1] = current cond, bin[2..] = loop-carried values (references held) */
    if (!s) {
        if (cin) bin[1] = kl_rt_ref(cin);
        else if (!(s = kl_rt_tensor(KILN_DTYPE_BOOL, 0, NULL, &bin[1]))) *(uint8_t *)bin[1]->data = 1;
    }
    for (size_t i = 0; !s && i < nv; i++) bin[2 + i] = c->in[2 + i] ? kl_rt_ref(c->in[2 + i]) : NULL;
    for (size_t i = 0; !s && i < nv; i++)
        if (!bin[2 + i]) s = kl_rt_none(KL_TYPE_TENSOR, &bin[2 + i]);
    for (int64_t it = 0; !s && it < max_trip && cond; it++) {
        s = kl_rt_tensor(KILN_DTYPE_INT64, 0, NULL, &bin[0]);
        if (s) break;
        *(int64_t *)bin[0]->data = it;
        s = kl_exec_subgraph(c, g, bin, nb, bout, no);
        kl_rt_unref(bin[0]);
        bin[0] = NULL;
        if (s) {
            s = kl_error_context(s, "body iteration %lld: ", (long long)it);
            break;
        }
        kl_rt_unref(bin[1]);
        bin[1] = bout[0];
        bout[0] = NULL;
        s = kl_cond_value(c, bin[1], "body output 0 'cond'", &cond);
        for (size_t i = 0; i < nv; i++) {
            kl_rt_unref(bin[2 + i]);
            bin[2 + i] = bout[1 + i];
            bout[1 + i] = NULL;
        }
        for (size_t k = 0; !s && k < nk; k++) {
            kl_rt *v = bout[1 + nv + k];
            bout[1 + nv + k] = NULL;
            if (v->kind != KL_RT_TENSOR) {
                kl_rt_unref(v);
                s = kl_kctx_fail(c, KILN_ERR_TYPE, "body output %zu (a scan output) must be a tensor", 1 + nv + k);
            } else {
                s = kl_vlist_push(&scans[k], v);
            }
        }
        kl_drop(bout, no);
    }
    for (size_t i = 0; !s && i < nv && i < c->n_out; i++) {
        s = kl_kctx_set_output(c, i, bin[2 + i]);
        bin[2 + i] = NULL;
    }
    for (size_t k = 0; !s && k < nk && nv + k < c->n_out; k++) {
        if (!scans[k].n) {
            s = kl_empty_scan_output(c, nv + k, g->outputs[1 + nv + k], 0, 0, 0);
            continue;
        }
        kl_rt *r;
        char what[64];
        snprintf(what, sizeof what, "scan output %zu of iteration", k);
        s = kl_ctrl_stack(scans[k].v, scans[k].n, 0, false, what, &r);
        if (!s) s = kl_kctx_set_output(c, nv + k, r);
    }
    for (size_t k = 0; scans && k < nk; k++) {
        kl_drop(scans[k].v, scans[k].n);
        kl_free(scans[k].v);
    }
    kl_drop(bin, bin ? nb : 0);
    kl_drop(bout, bout ? no : 0);
    kl_free(scans);
    kl_free(bin);
    kl_free(bout);
    return s;
}

/* ---- Scan ------------------------------------------------------------------------ */

/* Attribute `name` (ints) with exactly n entries, or all zeros when absent. */
static kiln_status kl_scan_ints(kl_kctx *c, const char *name, size_t n, int64_t *out) {
    const int64_t *v;
    int64_t k = kl_node_attr_ints(c->node, name, &v);
    for (size_t i = 0; i < n; i++) out[i] = k >= 0 ? v[i < (size_t)k ? i : 0] : 0;
    if (k >= 0 && (size_t)k != n)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute '%s' has %lld entries, expected %zu", name, (long long)k, n);
    return KILN_OK;
}

/* Scan-9/11/16/19/21: iterate the scan inputs along their axes, carrying the
 * state variables; scan outputs are stacked along scan_output_axes. */
static kiln_status kl_ctrl_scan(kl_kctx *c) {
    const kl_graph *g = NULL;
    KL_TRY(kl_graph_attr(c, "body", &g));
    int64_t m64 = kl_node_attr_int(c->node, "num_scan_inputs", -1);
    if (m64 < 1 || (uint64_t)m64 > c->n_in)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'num_scan_inputs' %lld does not fit %zu inputs",
                            (long long)m64, c->n_in);
    size_t nm = (size_t)m64, ns = c->n_in - nm;
    if (g->n_inputs != ns + nm || g->n_outputs < ns)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "body takes %zu inputs and yields %zu outputs; expected %zu inputs and at least %zu outputs",
                            g->n_inputs, g->n_outputs, ns + nm, ns);
    size_t nk = g->n_outputs - ns;
    if (c->n_out > ns + nk)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "node has %zu outputs but the body yields only %zu", c->n_out, ns + nk);
    for (size_t i = 0; i < c->n_in; i++)
        if (!c->in[i] || (i >= ns && c->in[i]->kind != KL_RT_TENSOR))
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "input %zu must be %s", i, i >= ns ? "a tensor" : "given");

    size_t na = nm + nk;
    int64_t *attr = kl_calloc(2 * na, sizeof *attr);
    int *in_axis = kl_calloc(nm, sizeof *in_axis);
    kl_rt **bin = kl_calloc(ns + nm, sizeof *bin), **bout = kl_calloc(g->n_outputs ? g->n_outputs : 1, sizeof *bout);
    kl_rt **so = NULL;
    kiln_status s = attr && in_axis && bin && bout ? KILN_OK : KILN_ERR_NO_MEMORY;
    int64_t *in_dir = attr ? attr + nm : NULL, *out_axis = attr ? attr + 2 * nm : NULL,
            *out_dir = attr ? attr + 2 * nm + nk : NULL;
    if (!s) s = kl_scan_ints(c, "scan_input_axes", nm, attr);
    if (!s) s = kl_scan_ints(c, "scan_input_directions", nm, in_dir);
    if (!s) s = kl_scan_ints(c, "scan_output_axes", nk, out_axis);
    if (!s) s = kl_scan_ints(c, "scan_output_directions", nk, out_dir);
    int64_t len = -1;
    for (size_t j = 0; !s && j < nm; j++) {
        const kl_rt *t = c->in[ns + j];
        char what[64];
        snprintf(what, sizeof what, "scan_input_axes[%zu]", j);
        s = kl_ref_axis(attr[j], t->rank, false, what, &in_axis[j]);
        if (s) break;
        int64_t d = t->dims[in_axis[j]];
        if (len >= 0 && d != len)
            s = kl_kctx_fail(c, KILN_ERR_SHAPE, "scan input %zu has %lld steps but scan input 0 has %lld", j, (long long)d,
                             (long long)len);
        len = d;
    }
    size_t nso = 0;
    if (!s && (kl_mul_size((size_t)len, nk, &nso) || !(so = kl_calloc(nso ? nso : 1, sizeof *so))))
        s = KILN_ERR_NO_MEMORY;
    for (size_t i = 0; !s && i < ns; i++) bin[i] = kl_rt_ref(c->in[i]);
    for (int64_t t = 0; !s && t < len; t++) {
        for (size_t j = 0; !s && j < nm; j++)
            s = kl_ctrl_slice(c->in[ns + j], in_axis[j], in_dir[j] ? len - 1 - t : t, &bin[ns + j]);
        if (!s) s = kl_exec_subgraph(c, g, bin, ns + nm, bout, g->n_outputs);
        if (s) s = kl_error_context(s, "body iteration %lld: ", (long long)t);
        kl_drop(bin + ns, nm);
        for (size_t i = 0; !s && i < ns; i++) {
            kl_rt_unref(bin[i]);
            bin[i] = bout[i];
            bout[i] = NULL;
        }
        for (size_t k = 0; !s && k < nk; k++) {
            so[k * (size_t)len + (size_t)t] = bout[ns + k];
            bout[ns + k] = NULL;
        }
        kl_drop(bout, g->n_outputs);
    }
    for (size_t i = 0; !s && i < ns && i < c->n_out; i++) {
        s = kl_kctx_set_output(c, i, bin[i]);
        bin[i] = NULL;
    }
    for (size_t k = 0; !s && k < nk && ns + k < c->n_out; k++) {
        if (len == 0) {
            s = kl_empty_scan_output(c, ns + k, g->outputs[ns + k], out_axis[k], 0, 0);
            continue;
        }
        kl_rt **items = so + k * (size_t)len, *r;
        int ax;
        char what[64];
        snprintf(what, sizeof what, "scan_output_axes[%zu]", k);
        s = items[0]->kind == KL_RT_TENSOR ? kl_ref_axis(out_axis[k], items[0]->rank, true, what, &ax)
                                           : kl_kctx_fail(c, KILN_ERR_TYPE, "body output %zu must be a tensor", ns + k);
        if (!s) {
            snprintf(what, sizeof what, "scan output %zu of iteration", k);
            s = kl_ctrl_stack(items, (size_t)len, ax, out_dir[k] != 0, what, &r);
        }
        if (!s) s = kl_kctx_set_output(c, ns + k, r);
    }
    if (so) kl_drop(so, (size_t)len * nk);
    kl_drop(bin, bin ? ns + nm : 0);
    kl_drop(bout, bout ? g->n_outputs : 0);
    kl_free(so);
    kl_free(attr);
    kl_free(in_axis);
    kl_free(bin);
    kl_free(bout);
    return s;
}

/* Scan-8: like Scan-9 but with a batch axis 0 on every state and scan input
 * (scanned along axis 1) and optional per-batch sequence_lens (input 0);
 * scan output steps past a batch's length stay zero. */
static kiln_status kl_ctrl_scan8(kl_kctx *c) {
    const kl_graph *g = NULL;
    KL_TRY(kl_graph_attr(c, "body", &g));
    int64_t m64 = kl_node_attr_int(c->node, "num_scan_inputs", -1);
    if (m64 < 1 || c->n_in < 1 || (uint64_t)m64 > c->n_in - 1)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'num_scan_inputs' %lld does not fit %zu inputs",
                            (long long)m64, c->n_in);
    size_t nm = (size_t)m64, ns = c->n_in - 1 - nm;
    if (g->n_inputs != ns + nm || g->n_outputs < ns)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "body takes %zu inputs and yields %zu outputs; expected %zu inputs and at least %zu outputs",
                            g->n_inputs, g->n_outputs, ns + nm, ns);
    size_t nk = g->n_outputs - ns, no = g->n_outputs;
    if (c->n_out > ns + nk)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "node has %zu outputs but the body yields only %zu", c->n_out, ns + nk);
    int64_t batch = -1, maxlen = -1;
    for (size_t i = 1; i < c->n_in; i++) {
        const kl_rt *t = c->in[i];
        bool scan = i > ns;
        if (!t || t->kind != KL_RT_TENSOR || t->rank < (scan ? 2 : 1))
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "input %zu must be a tensor of rank >= %d (batch%s)", i, scan ? 2 : 1,
                                scan ? ", sequence" : "");
        if (batch >= 0 && t->dims[0] != batch)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "input %zu has batch size %lld, expected %lld", i, (long long)t->dims[0],
                                (long long)batch);
        batch = t->dims[0];
        if (scan && maxlen >= 0 && t->dims[1] != maxlen)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "scan input %zu has %lld steps, expected %lld", i, (long long)t->dims[1],
                                (long long)maxlen);
        if (scan) maxlen = t->dims[1];
    }
    const kl_rt *lens = c->in[0];
    if (lens && (lens->kind != KL_RT_TENSOR || !kl_dtype_is_integer(lens->dtype) || lens->count != batch))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "input 0 'sequence_lens' must be an integer tensor of %lld elements",
                            (long long)batch);
    for (int64_t b = 0; lens && b < batch; b++) {
        int64_t v = kl_rt_get_i64(lens, b);
        if (v < 0 || v > maxlen)
            return kl_kctx_fail(c, KILN_ERR_INVALID_ARGUMENT, "sequence_lens[%lld] = %lld is outside [0, %lld]", (long long)b,
                                (long long)v, (long long)maxlen);
    }
    int64_t *dir = kl_calloc(nm, sizeof *dir);
    kl_rt **bin = kl_calloc(ns + nm, sizeof *bin), **bout = kl_calloc(no ? no : 1, sizeof *bout);
    kl_rt **xb = kl_calloc(nm, sizeof *xb); /* this batch's slice of each scan input */
    size_t nst = 0, nso = 0;
    kl_rt **st = NULL, **so = NULL; /* [batch][ns] final states; [batch][maxlen][nk] scan elements */
    kiln_status s = dir && bin && bout && xb ? KILN_OK : KILN_ERR_NO_MEMORY;
    if (!s && (kl_mul_size((size_t)batch, ns, &nst) || kl_mul_size((size_t)batch, (size_t)maxlen, &nso) ||
               kl_mul_size(nso, nk, &nso)))
        s = kl_kctx_fail(c, KILN_ERR_SHAPE, "scan is too large");
    if (!s && (!(st = kl_calloc(nst ? nst : 1, sizeof *st)) || !(so = kl_calloc(nso ? nso : 1, sizeof *so))))
        s = KILN_ERR_NO_MEMORY;
    if (!s) s = kl_scan_ints(c, "directions", nm, dir);
    for (int64_t b = 0; !s && b < batch; b++) {
        int64_t n = lens ? kl_rt_get_i64(lens, b) : maxlen;
        for (size_t i = 0; !s && i < ns; i++) s = kl_ctrl_slice(c->in[1 + i], 0, b, &bin[i]);
        for (size_t j = 0; !s && j < nm; j++) s = kl_ctrl_slice(c->in[1 + ns + j], 0, b, &xb[j]);
        for (int64_t t = 0; !s && t < n; t++) {
            for (size_t j = 0; !s && j < nm; j++) s = kl_ctrl_slice(xb[j], 0, dir[j] ? n - 1 - t : t, &bin[ns + j]);
            if (!s) s = kl_exec_subgraph(c, g, bin, ns + nm, bout, no);
            if (s) s = kl_error_context(s, "batch %lld, body iteration %lld: ", (long long)b, (long long)t);
            kl_drop(bin + ns, nm);
            for (size_t i = 0; !s && i < ns; i++) {
                kl_rt_unref(bin[i]);
                bin[i] = bout[i];
                bout[i] = NULL;
            }
            for (size_t k = 0; !s && k < nk; k++) {
                so[((size_t)b * (size_t)maxlen + (size_t)t) * nk + k] = bout[ns + k];
                bout[ns + k] = NULL;
            }
            kl_drop(bout, no);
        }
        for (size_t i = 0; !s && i < ns; i++) {
            st[(size_t)b * ns + i] = bin[i];
            bin[i] = NULL;
        }
        kl_drop(xb, nm);
    }
    /* final states, stacked over the batch */
    kl_rt **col = kl_calloc(batch > 0 ? (size_t)batch : 1, sizeof *col);
    if (!s && !col) s = KILN_ERR_NO_MEMORY;
    for (size_t i = 0; !s && i < ns && i < c->n_out; i++) {
        kl_rt *r;
        for (int64_t b = 0; b < batch; b++) col[b] = st[(size_t)b * ns + i];
        if (batch == 0) s = kl_rt_tensor(c->in[1 + i]->dtype, c->in[1 + i]->rank, c->in[1 + i]->dims, &r);
        else s = kl_ctrl_stack(col, (size_t)batch, 0, false, "final state of batch", &r);
        if (!s) s = kl_kctx_set_output(c, i, r);
    }
    kl_free(col);
    /* scan outputs [batch, maxlen, ...], zero past each batch's length */
    for (size_t k = 0; !s && k < nk && ns + k < c->n_out; k++) {
        const kl_rt *e = NULL;
        for (size_t q = k; q < nso && !e; q += nk) e = so[q];
        if (!e) {
            s = kl_empty_scan_output(c, ns + k, g->outputs[ns + k], 0, batch, 1);
            if (!s && maxlen != 0) { /* no step ran: [batch, maxlen, ...] of zeros */
                kl_rt *o = c->out[ns + k];
                int64_t dims[KILN_MAX_RANK];
                memcpy(dims, o->dims, sizeof dims);
                dims[1] = maxlen;
                s = kl_kctx_output(c, ns + k, o->dtype, o->rank, dims, &o);
            }
            continue;
        }
        char a[128], b2[128];
        if (e->kind != KL_RT_TENSOR || e->rank + 2 > KILN_MAX_RANK) {
            s = kl_kctx_fail(c, KILN_ERR_TYPE, "body output %zu must be a tensor of rank <= %d", ns + k, KILN_MAX_RANK - 2);
            break;
        }
        int64_t dims[KILN_MAX_RANK];
        dims[0] = batch;
        dims[1] = maxlen;
        memcpy(dims + 2, e->dims, (size_t)e->rank * sizeof dims[0]);
        kl_rt *r;
        s = kl_kctx_output(c, ns + k, e->dtype, e->rank + 2, dims, &r);
        for (size_t q = 0; !s && q < (size_t)batch * (size_t)maxlen; q++) {
            const kl_rt *v = so[q * nk + k];
            if (!v) continue;
            if (v->kind != KL_RT_TENSOR || v->dtype != e->dtype || !kl_ref_same_shape(v, e))
                s = kl_kctx_fail(c, KILN_ERR_SHAPE, "scan output %zu is %s in one iteration and %s in another", k,
                                 kl_rt_describe(v, a, sizeof a), kl_rt_describe(e, b2, sizeof b2));
            else
                s = kl_ctrl_copy(r, (int64_t)q * e->count, v, 0, e->count);
        }
    }
    if (so) kl_drop(so, nso);
    if (st) kl_drop(st, nst);
    kl_drop(bin, bin ? ns + nm : 0);
    kl_drop(bout, bout ? no : 0);
    kl_drop(xb, xb ? nm : 0);
    kl_free(so);
    kl_free(st);
    kl_free(dir);
    kl_free(bin);
    kl_free(bout);
    kl_free(xb);
    return s;
}

/* ---- SequenceMap ------------------------------------------------------------------ */

/* SequenceMap-17: run body once per element of input 0; additional inputs
 * that are sequences (same length) contribute their i-th element, tensors
 * are passed whole.  Each body output is gathered into a sequence. */
static kiln_status kl_ctrl_sequence_map(kl_kctx *c) {
    const kl_graph *g = NULL;
    KL_TRY(kl_graph_attr(c, "body", &g));
    char a[128];
    if (!c->n_in || !c->in[0] || c->in[0]->kind != KL_RT_SEQUENCE)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "input 0 must be a sequence, got %s",
                            kl_rt_describe(c->n_in ? c->in[0] : NULL, a, sizeof a));
    size_t n = c->in[0]->n_items, ni = c->n_in, no = g->n_outputs;
    for (size_t j = 1; j < ni; j++) {
        const kl_rt *v = c->in[j];
        if (!v || v->kind == KL_RT_NONE)
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "input %zu must be a sequence or a tensor", j);
        if (v->kind == KL_RT_SEQUENCE && v->n_items != n)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "input %zu is a sequence of %zu items but input 0 has %zu", j,
                                v->n_items, n);
    }
    if (g->n_inputs != ni || no < c->n_out)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "body takes %zu inputs and yields %zu outputs; the node has %zu and %zu",
                            g->n_inputs, no, ni, c->n_out);
    size_t nres;
    if (kl_mul_size(n, no, &nres)) return KILN_ERR_NO_MEMORY;
    kl_rt **bin = kl_calloc(ni, sizeof *bin), **bout = kl_calloc(no ? no : 1, sizeof *bout);
    kl_rt **res = kl_calloc(nres ? nres : 1, sizeof *res); /* [output][item] */
    kiln_status s = bin && bout && res ? KILN_OK : KILN_ERR_NO_MEMORY;
    for (size_t i = 0; !s && i < n; i++) {
        for (size_t j = 0; j < ni; j++) bin[j] = c->in[j]->kind == KL_RT_SEQUENCE ? c->in[j]->items[i] : c->in[j];
        s = kl_exec_subgraph(c, g, bin, ni, bout, no);
        if (s) {
            s = kl_error_context(s, "body on item %zu: ", i);
            break;
        }
        for (size_t k = 0; k < no; k++) {
            if (!s && bout[k]->kind != KL_RT_TENSOR)
                s = kl_kctx_fail(c, KILN_ERR_TYPE, "body output %zu is %s, expected a tensor", k,
                                 kl_rt_describe(bout[k], a, sizeof a));
            res[k * n + i] = bout[k];
            bout[k] = NULL;
        }
    }
    for (size_t k = 0; !s && k < c->n_out; k++) {
        kiln_dtype dt = n ? res[k * n]->dtype : KILN_DTYPE_UNDEFINED;
        if (!n && c->node->outputs[k]) dt = kl_ctrl_seq_elem(&c->node->outputs[k]->type);
        if (!n && dt == KILN_DTYPE_UNDEFINED && g->outputs[k]->type.kind == KL_TYPE_TENSOR) dt = g->outputs[k]->type.elem;
        kl_rt *r;
        s = kl_rt_sequence(dt, res + k * n, n, &r);
        if (!s) s = kl_kctx_set_output(c, k, r);
    }
    if (res) kl_drop(res, nres);
    kl_drop(bout, bout ? no : 0);
    kl_free(res);
    kl_free(bin);
    kl_free(bout);
    return s;
}

/* ---- table ------------------------------------------------------------------------ */

const kl_kernel_def kl_ref_control[] = {
    {"", "If", 1, 0, 0, kl_ctrl_if},
    {"", "Loop", 1, 0, 0, kl_ctrl_loop},
    {"", "Scan", 8, 8, 0, kl_ctrl_scan8},
    {"", "Scan", 9, 0, 0, kl_ctrl_scan},
    {"", "SequenceMap", 17, 0, 0, kl_ctrl_sequence_map},
    {"", "SequenceEmpty", 11, 0, 0, kl_ctrl_sequence_empty},
    {"", "SequenceConstruct", 11, 0, 0, kl_ctrl_sequence_construct},
    {"", "SequenceInsert", 11, 0, 0, kl_ctrl_sequence_insert},
    {"", "SequenceAt", 11, 0, 0, kl_ctrl_sequence_at},
    {"", "SequenceErase", 11, 0, 0, kl_ctrl_sequence_erase},
    {"", "SequenceLength", 11, 0, 0, kl_ctrl_sequence_length},
    {"", "SplitToSequence", 11, 0, 0, kl_ctrl_split_to_sequence},
    {"", "ConcatFromSequence", 11, 0, 0, kl_ctrl_concat_from_sequence},
    {"", "Optional", 15, 0, 0, kl_ctrl_optional},
    {"", "OptionalGetElement", 15, 0, 0, kl_ctrl_optional_get_element},
    {"", "OptionalHasElement", 15, 0, 0, kl_ctrl_optional_has_element},
    {0},
};
