/* CPU reference kernels, misc family: ai.onnx.preview.training optimizers
 * (Adagrad, Adam, Momentum).  Inputs: R (learning rate), T (step), then
 * `groups` lists of n tensors each (X..., G..., [V...], [H...]); outputs
 * the updated lists in the same order, starting with X. */
#include <math.h>
#include <string.h>

#include "cpu/ref/misc.h"

typedef enum { OPT_ADAGRAD, OPT_ADAM, OPT_MOMENTUM } opt_kind;

/* Shared body of the three optimizers (update rules as in the operator specs). */
static kiln_status optimizer_run(kl_kctx *c, opt_kind kind) {
    size_t groups = kind == OPT_ADAM ? 4 : 3;
    if (c->n_in < 2 + groups || (c->n_in - 2) % groups)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "expected 2 + %zu*n inputs, got %zu", groups, c->n_in);
    size_t n = (c->n_in - 2) / groups;
    if (c->n_out > n * (groups - 1))
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "expected at most %zu outputs, got %zu", n * (groups - 1), c->n_out);
    kl_rt *R, *T;
    KL_TRY(kl_misc_need(c, 0, "R", &R));
    KL_TRY(kl_misc_need(c, 1, "T", &T));
    if (R->count != 1 || !kl_misc_is_float(R->dtype)) return kl_kctx_fail(c, KILN_ERR_SHAPE, "R must be a float scalar");
    if (T->count != 1 || !kl_dtype_is_integer(T->dtype)) return kl_kctx_fail(c, KILN_ERR_SHAPE, "T must be an integer scalar");
    double r = kl_rt_get_f64(R, 0);
    double t = (double)kl_rt_get_i64(T, 0);
    const kl_node *nd = c->node;
    double norm = kl_node_attr_float(nd, "norm_coefficient", 0.0f);
    double eps = kl_node_attr_float(nd, "epsilon", kind == OPT_ADAM ? 1e-6f : 1e-6f);
    double decay = kl_node_attr_float(nd, "decay_factor", 0.0f);
    double alpha = kl_node_attr_float(nd, "alpha", 0.9f), beta = kl_node_attr_float(nd, "beta", 0.999f);
    double post = kl_node_attr_float(nd, "norm_coefficient_post", 0.0f);
    bool nesterov = false;
    if (kind == OPT_MOMENTUM) {
        const char *mode = kl_node_attr_string(nd, "mode", "standard");
        if (strcmp(mode, "standard") != 0 && strcmp(mode, "nesterov") != 0)
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "mode '%s' is not standard or nesterov", mode);
        nesterov = strcmp(mode, "nesterov") == 0;
        if (!kl_node_attr(nd, "alpha") || !kl_node_attr(nd, "beta") || !kl_node_attr(nd, "norm_coefficient"))
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "Momentum needs attributes alpha, beta and norm_coefficient");
    }
    for (size_t i = 0; i < n; i++) {
        kl_rt *in[4] = {0}, *out[3] = {0};
        for (size_t g = 0; g < groups; g++) {
            KL_TRY(kl_misc_need(c, 2 + g * n + i, "optimizer tensor", &in[g]));
            if (!kl_misc_is_float(in[g]->dtype) || !kl_ref_same_shape(in[g], in[0]))
                return kl_kctx_fail(c, KILN_ERR_SHAPE, "input %zu must be a float tensor shaped like input %zu", 2 + g * n + i, 2 + i);
        }
        for (size_t g = 0; g + 1 < groups; g++)
            if (g * n + i < c->n_out) KL_TRY(kl_kctx_output(c, g * n + i, in[0]->dtype, in[0]->rank, in[0]->dims, &out[g]));
        for (int64_t k = 0; k < in[0]->count; k++) {
            double x = kl_rt_get_f64(in[0], k), gr = norm * x + kl_rt_get_f64(in[1], k);
            double xn, a, b = 0;
            if (kind == OPT_ADAGRAD) {
                double h = kl_rt_get_f64(in[2], k) + gr * gr;
                xn = x - r / (1 + t * decay) * gr / (sqrt(h) + eps);
                a = h;
            } else if (kind == OPT_ADAM) {
                double v = alpha * kl_rt_get_f64(in[2], k) + (1 - alpha) * gr;
                double h = beta * kl_rt_get_f64(in[3], k) + (1 - beta) * gr * gr;
                double ra = t > 0 ? r * sqrt(1 - pow(beta, t)) / (1 - pow(alpha, t)) : r;
                xn = (1 - post) * (x - ra * (v / (sqrt(h) + eps)));
                a = v, b = h;
            } else {
                double v = alpha * kl_rt_get_f64(in[2], k) + (t > 0 ? beta : 1.0) * gr;
                xn = nesterov ? x - r * (gr + alpha * v) : x - r * v;
                a = v;
            }
            if (out[0]) kl_rt_set_f64(out[0], k, xn);
            if (out[1]) kl_rt_set_f64(out[1], k, a);
            if (out[2]) kl_rt_set_f64(out[2], k, b);
        }
    }
    return KILN_OK;
}

kiln_status kl_misc_adagrad(kl_kctx *c) { return optimizer_run(c, OPT_ADAGRAD); }
kiln_status kl_misc_adam(kl_kctx *c) { return optimizer_run(c, OPT_ADAM); }
kiln_status kl_misc_momentum(kl_kctx *c) { return optimizer_run(c, OPT_MOMENTUM); }
