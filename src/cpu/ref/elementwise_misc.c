/*
 * Identity, Dropout and SwiGLU.
 */
#include <math.h>
#include <string.h>

#include "cpu/ref/elementwise.h"

/* Identity: the input value itself (tensor, sequence or optional). */
kiln_status kl_ew_identity(kl_kctx *c) {
    if (c->n_in < 1 || !c->in[0]) return kl_kctx_fail(c, KILN_ERR_TYPE, "input 0 is missing");
    return kl_kctx_set_output(c, 0, kl_rt_ref(c->in[0]));
}

/* ---- numpy's legacy random generator (MT19937, RandomState.seed(int)) ----------------- */

typedef struct kl_mt {
    uint32_t s[624];
    int pos;
} kl_mt;

/* init_genrand: what numpy's RandomState.seed(int) does. */
static void kl_mt_seed(kl_mt *m, uint32_t seed) {
    for (int i = 0; i < 624; i++) {
        m->s[i] = seed;
        seed = 1812433253u * (seed ^ (seed >> 30)) + (uint32_t)i + 1;
    }
    m->pos = 624;
}

/* Next 32-bit output of MT19937. */
static uint32_t kl_mt_next(kl_mt *m) {
    if (m->pos >= 624) {
        for (int i = 0; i < 624; i++) {
            uint32_t y = (m->s[i] & 0x80000000u) | (m->s[(i + 1) % 624] & 0x7fffffffu);
            m->s[i] = m->s[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1) ? 0x9908b0dfu : 0);
        }
        m->pos = 0;
    }
    uint32_t y = m->s[m->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    return y ^ (y >> 18);
}

/* Uniform double in [0, 1) with 53 random bits (numpy random_sample). */
static double kl_mt_double(kl_mt *m) {
    uint32_t a = kl_mt_next(m) >> 5, b = kl_mt_next(m) >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
}

/* Dropout.  Inference (no training_mode input, or false, or opset < 12) and
 * ratio 0 pass the input through with an all-true mask (of the input's
 * type before opset 10).  training_mode true with ratio r in (0, 1) keeps
 * each element with probability 1 - r and scales it by 1 / (1 - r); the
 * draws are numpy's RandomState(seed).uniform (seed attribute, default 0),
 * as the ONNX reference implementation. */
kiln_status kl_ew_dropout(kl_kctx *c) {
    kl_rt *x = NULL, *y = NULL, *mask = NULL;
    KL_TRY(kl_ew_input(c, 0, &x));
    if (!kl_dtype_is_float(x->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "Dropout does not apply to %s", kiln_dtype_name(x->dtype));
    double ratio = kl_node_attr_float(c->node, "ratio", 0.5f);
    bool training = false;
    if (c->node->opset >= 12) {
        ratio = 0.5;
        if (c->n_in > 1 && c->in[1]) KL_TRY(kl_ref_input_scalar_f64(c, 1, &ratio));
        if (c->n_in > 2 && c->in[2]) {
            double t;
            KL_TRY(kl_ref_input_scalar_f64(c, 2, &t));
            training = t != 0;
        }
    }
    bool want_mask = c->n_out > 1 && kl_kctx_want(c, 1);
    kiln_dtype mask_type = c->node->opset >= 10 ? KILN_DTYPE_BOOL : x->dtype;
    if (!training || ratio == 0) {
        KL_TRY(kl_kctx_set_output(c, 0, kl_rt_ref(x)));
        if (want_mask) {
            KL_TRY(kl_kctx_output(c, 1, mask_type, x->rank, x->dims, &mask));
            for (int64_t i = 0; i < mask->count; i++) kl_ew_set_f64(mask, i, 1.0);
        }
        return KILN_OK;
    }
    if (!(ratio > 0 && ratio < 1))
        return kl_kctx_fail(c, KILN_ERR_INVALID_ARGUMENT, "ratio %g is outside [0, 1)", ratio);
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, x->dims, &y));
    if (want_mask) KL_TRY(kl_kctx_output(c, 1, KILN_DTYPE_BOOL, x->rank, x->dims, &mask));
    kl_mt *rng = kl_malloc(sizeof *rng);
    if (!rng) return KILN_ERR_NO_MEMORY;
    kl_mt_seed(rng, (uint32_t)kl_node_attr_int(c->node, "seed", 0));
    double scale = 1.0 / (1.0 - ratio);
    for (int64_t i = 0; i < x->count; i++) {
        bool keep = kl_mt_double(rng) >= ratio;
        if (mask) ((uint8_t *)mask->data)[i] = keep;
        if (x->dtype == KILN_DTYPE_FLOAT) ((float *)y->data)[i] = keep ? (float)(((const float *)x->data)[i] * scale) : 0.0f;
        else kl_ew_set_f64(y, i, keep ? kl_rt_get_f64(x, i) * scale : 0.0);
    }
    kl_free(rng);
    return KILN_OK;
}

/* ---- SwiGLU ---------------------------------------------------------------------------- */

/* Logistic function without overflow for large |x|. */
static double kl_sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* SwiGLU (opset 28): Y = A * Sigmoid(alpha * A) * B, A and B of one shape. */
kiln_status kl_ew_swiglu(kl_kctx *c) {
    kl_rt *a = NULL, *b = NULL, *y = NULL;
    KL_TRY(kl_ew_input(c, 0, &a));
    KL_TRY(kl_ew_input(c, 1, &b));
    if (a->dtype != b->dtype || !kl_dtype_is_float(a->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "inputs are %s and %s; SwiGLU needs one float type", kiln_dtype_name(a->dtype),
                            kiln_dtype_name(b->dtype));
    if (!kl_ref_same_shape(a, b)) {
        char sa[128], sb[128];
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "inputs %s and %s must have the same shape (no broadcasting)",
                            kl_rt_describe(a, sa, sizeof sa), kl_rt_describe(b, sb, sizeof sb));
    }
    double alpha = kl_node_attr_float(c->node, "alpha", 1.0f);
    KL_TRY(kl_kctx_output(c, 0, a->dtype, a->rank, a->dims, &y));
    for (int64_t i = 0; i < a->count; i++) {
        if (a->dtype == KILN_DTYPE_FLOAT) {
            double v = ((const float *)a->data)[i];
            ((float *)y->data)[i] = (float)(v * kl_sigmoid(alpha * v) * ((const float *)b->data)[i]);
        } else {
            double v = kl_rt_get_f64(a, i);
            kl_ew_set_f64(y, i, v * kl_sigmoid(alpha * v) * kl_rt_get_f64(b, i));
        }
    }
    return KILN_OK;
}
