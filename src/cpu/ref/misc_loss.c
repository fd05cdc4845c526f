/* CPU reference kernels, misc family: NegativeLogLikelihoodLoss and
 * SoftmaxCrossEntropyLoss (opset 12/13/22), computed in double. */
#include <math.h>
#include <string.h>

#include "cpu/ref/misc.h"

/* Shared body.  x: [N, C, d1..dk] (log-probabilities, or scores when
 * `softmax`), target [N, d1..dk], optional weight [C].  Output 0: the loss
 * (reduced per `reduction`); SCE output 1: log_prob, when wanted. */
static kiln_status loss_run(kl_kctx *c, bool softmax) {
    kl_rt *x, *t;
    KL_TRY(kl_misc_need(c, 0, softmax ? "scores" : "input", &x));
    KL_TRY(kl_misc_need(c, 1, softmax ? "labels" : "target", &t));
    const kl_rt *w = c->n_in > 2 && c->in[2] && c->in[2]->kind == KL_RT_TENSOR ? c->in[2] : NULL;
    if (!kl_misc_is_float(x->dtype)) return kl_kctx_fail(c, KILN_ERR_TYPE, "input 0 must be a float tensor");
    if (!kl_dtype_is_integer(t->dtype)) return kl_kctx_fail(c, KILN_ERR_TYPE, "input 1 must be an integer tensor");
    if (x->rank < 2) return kl_kctx_fail(c, KILN_ERR_SHAPE, "input 0 must have shape [N, C, d1, ..., dk]");
    bool same = t->rank == x->rank - 1 && t->dims[0] == x->dims[0];
    for (int i = 2; same && i < x->rank; i++) same = t->dims[i - 1] == x->dims[i];
    if (!same) return kl_kctx_fail(c, KILN_ERR_SHAPE, "input 1 must have shape [N, d1, ..., dk] matching input 0");
    int64_t N = x->dims[0], C = x->dims[1], D = 1;
    for (int i = 2; i < x->rank; i++) D *= x->dims[i];
    if (w && (w->rank != 1 || w->dims[0] != C || !kl_misc_is_float(w->dtype)))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "weight must be a float tensor of shape [C]");
    const char *red = kl_node_attr_string(c->node, "reduction", "mean");
    int mode = !strcmp(red, "none") ? 0 : !strcmp(red, "sum") ? 1 : !strcmp(red, "mean") ? 2 : -1;
    if (mode < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "reduction '%s' is not none, sum or mean", red);
    const kl_attr *ia = kl_node_attr(c->node, "ignore_index");
    bool has_ii = ia && ia->type == KL_ATTR_INT;
    int64_t ii = has_ii ? ia->i : 0;

    double *xd = NULL, *loss = NULL;
    kiln_status s = kl_misc_load_f64(x, "input 0", &xd);
    if (s) return s;
    if (!(loss = kl_misc_calloc(t->count, sizeof *loss))) {
        kl_free(xd);
        return KILN_ERR_NO_MEMORY;
    }
    if (softmax) /* log_softmax over axis 1, in place */
        for (int64_t n = 0; n < N; n++)
            for (int64_t d = 0; d < D; d++) {
                double *p = xd + n * C * D + d, mx = -INFINITY, sum = 0;
                for (int64_t k = 0; k < C; k++) mx = fmax(mx, p[k * D]);
                for (int64_t k = 0; k < C; k++) sum += exp(p[k * D] - mx);
                double lse = mx + log(sum);
                for (int64_t k = 0; k < C; k++) p[k * D] -= lse;
            }
    double total = 0, wsum = 0;
    for (int64_t n = 0; n < N && !s; n++)
        for (int64_t d = 0; d < D; d++) {
            int64_t cls = kl_rt_get_i64(t, n * D + d);
            if (has_ii && cls == ii) continue;
            if (cls < 0 || cls >= C) {
                s = kl_kctx_fail(c, KILN_ERR_SHAPE, "target value %lld is out of range [0, %lld)", (long long)cls, (long long)C);
                break;
            }
            double wt = w ? kl_rt_get_f64(w, cls) : 1.0;
            double l = -xd[(n * C + cls) * D + d] * wt;
            loss[n * D + d] = l;
            total += l;
            wsum += wt;
        }
    kl_rt *y;
    if (!s) {
        if (mode == 0) {
            s = kl_kctx_output(c, 0, x->dtype, t->rank, t->dims, &y);
            if (!s) kl_misc_store_f64(y, loss);
        } else {
            s = kl_kctx_output(c, 0, x->dtype, 0, NULL, &y);
            if (!s) kl_rt_set_f64(y, 0, mode == 1 ? total : total / wsum);
        }
    }
    if (!s && softmax && c->n_out > 1 && kl_kctx_want(c, 1)) {
        kl_rt *lp;
        s = kl_kctx_output(c, 1, x->dtype, x->rank, x->dims, &lp);
        if (!s) kl_misc_store_f64(lp, xd);
    }
    kl_free(xd);
    kl_free(loss);
    return s;
}

kiln_status kl_misc_nll_loss(kl_kctx *c) { return loss_run(c, false); }
kiln_status kl_misc_sce_loss(kl_kctx *c) { return loss_run(c, true); }
