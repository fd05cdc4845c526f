/*
 * CPU reference kernels: RNN, GRU and LSTM (every opset: layout 14+,
 * direction forward / reverse / bidirectional, sequence_lens, initial
 * states, clip, activations with alpha / beta, GRU linear_before_reset,
 * LSTM peepholes and input_forget), shared helpers of the family, and the
 * family table.
 *
 * Weights and inputs are converted to double; each direction walks its
 * sequence per batch entry (reverse walks the valid part of each sequence
 * backwards).  Past a batch entry's sequence length Y is 0 and the state
 * is kept, so Y_h / Y_c hold the last valid state.
 */
#include <ctype.h>
#include <math.h>
#include <string.h>

#include "cpu/ref/rnn.h"

/* ---- shared helpers ------------------------------------------------------------------ */

double *kl_rnn_alloc(int64_t n) {
    size_t bytes;
    if (n < 0 || kl_mul_size((size_t)KL_MAX(n, 1), sizeof(double), &bytes) || bytes > KL_MAX_ALLOC) {
        kl_errorf(KILN_ERR_NO_MEMORY, "work buffer of %lld elements is too large", (long long)n);
        return NULL;
    }
    double *p = kl_calloc((size_t)KL_MAX(n, 1), sizeof(double));
    if (!p) kl_errorf(KILN_ERR_NO_MEMORY, "out of memory (%zu bytes)", bytes);
    return p;
}

kiln_status kl_rnn_to_f64(const kl_rt *t, double **out) {
    double *v = kl_rnn_alloc(t->count);
    if (!v) return KILN_ERR_NO_MEMORY;
    if (t->dtype == KILN_DTYPE_FLOAT) {
        const float *f = t->data;
        for (int64_t i = 0; i < t->count; i++) v[i] = f[i];
    } else if (t->dtype == KILN_DTYPE_DOUBLE) {
        memcpy(v, t->data, (size_t)t->count * sizeof *v);
    } else {
        for (int64_t i = 0; i < t->count; i++) v[i] = kl_rt_get_f64(t, i);
    }
    *out = v;
    return KILN_OK;
}

double kl_rnn_round(kiln_dtype t, double v) {
    switch (t) {
    case KILN_DTYPE_DOUBLE: return v;
    case KILN_DTYPE_FLOAT16: return kl_f16_to_f32(kl_f32_to_f16((float)v));
    case KILN_DTYPE_BFLOAT16: return kl_bf16_to_f32(kl_f32_to_bf16((float)v));
    default: return (double)(float)v;
    }
}

const kl_rt *kl_rnn_opt(const kl_kctx *c, size_t i) {
    return i < c->n_in && c->in[i] && c->in[i]->kind == KL_RT_TENSOR ? c->in[i] : NULL;
}

kiln_status kl_rnn_req(kl_kctx *c, size_t i, const char *what, const kl_rt **out) {
    if (i >= c->n_in || !c->in[i]) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "input '%s' is required", what);
    if (c->in[i]->kind != KL_RT_TENSOR) return kl_kctx_fail(c, KILN_ERR_TYPE, "input '%s' must be a tensor", what);
    *out = c->in[i];
    return KILN_OK;
}

bool kl_rnn_want(const kl_kctx *c, size_t i) {
    return i < c->n_out && kl_kctx_want(c, i);
}

bool kl_rnn_is_float(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT || t == KILN_DTYPE_DOUBLE || t == KILN_DTYPE_FLOAT16 || t == KILN_DTYPE_BFLOAT16;
}

/* ---- activations --------------------------------------------------------------------- */

typedef enum rnn_fn {
    RF_RELU, RF_TANH, RF_SIGMOID, RF_AFFINE, RF_LEAKY_RELU, RF_THRESHOLDED_RELU, RF_SCALED_TANH,
    RF_HARD_SIGMOID, RF_ELU, RF_SOFTSIGN, RF_SOFTPLUS
} rnn_fn;

typedef struct rnn_act {
    rnn_fn fn;
    double alpha, beta;
} rnn_act;

static const struct {
    const char *name;
    rnn_fn fn;
    int needs; /* 1 alpha, 2 alpha and beta */
    double alpha, beta;
} rnn_fns[] = {
    {"relu", RF_RELU, 0, 0, 0},
    {"tanh", RF_TANH, 0, 0, 0},
    {"sigmoid", RF_SIGMOID, 0, 0, 0},
    {"affine", RF_AFFINE, 2, 1.0, 0.0},
    {"leakyrelu", RF_LEAKY_RELU, 1, 0.01, 0},
    {"thresholdedrelu", RF_THRESHOLDED_RELU, 1, 1.0, 0},
    {"scaledtanh", RF_SCALED_TANH, 2, 1.0, 1.0},
    {"hardsigmoid", RF_HARD_SIGMOID, 2, 0.2, 0.5},
    {"elu", RF_ELU, 1, 1.0, 0},
    {"softsign", RF_SOFTSIGN, 0, 0, 0},
    {"softplus", RF_SOFTPLUS, 0, 0, 0},
};

/* Activation a at x, as the RNN operator docs define them. */
static double rnn_apply(const rnn_act *a, double x) {
    switch (a->fn) {
    case RF_RELU: return x > 0 ? x : 0.0;
    case RF_TANH: return tanh(x);
    case RF_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case RF_AFFINE: return a->alpha * x + a->beta;
    case RF_LEAKY_RELU: return x >= 0 ? x : a->alpha * x;
    case RF_THRESHOLDED_RELU: return x >= a->alpha ? x : 0.0;
    case RF_SCALED_TANH: return a->alpha * tanh(a->beta * x);
    case RF_HARD_SIGMOID: return fmin(fmax(a->alpha * x + a->beta, 0.0), 1.0);
    case RF_ELU: return x >= 0 ? x : a->alpha * (exp(x) - 1.0);
    case RF_SOFTSIGN: return x / (1.0 + fabs(x));
    case RF_SOFTPLUS: return x > 30 ? x + log1p(exp(-x)) : log1p(exp(x));
    }
    return x;
}

/* Parse `activations` (nfun per direction; one set is reused for both
 * directions) with activation_alpha / activation_beta consumed in order by
 * the functions that take them; defaults `dflt` when absent. */
static kiln_status rnn_activations(kl_kctx *c, int nfun, int ndir, const rnn_fn *dflt, rnn_act *acts) {
    const kl_attr *a = kl_node_attr(c->node, "activations");
    const kl_attr *al = kl_node_attr(c->node, "activation_alpha");
    const kl_attr *be = kl_node_attr(c->node, "activation_beta");
    size_t ia = 0, ib = 0, na = al ? al->n : 0, nb = be ? be->n : 0;
    size_t n = a ? a->n : 0;
    if (n && n != (size_t)nfun && n != (size_t)(nfun * ndir))
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'activations' has %zu names, expected %d", n,
                            nfun * ndir);
    for (int k = 0; k < nfun * ndir; k++) {
        if (!n) {
            acts[k] = (rnn_act){dflt[k % nfun], 0, 0};
            continue;
        }
        const kl_str *s = &a->strings[(size_t)k % n];
        char name[32];
        size_t len = s->len < sizeof name - 1 ? s->len : sizeof name - 1;
        for (size_t i = 0; i < len; i++) name[i] = (char)tolower((unsigned char)s->ptr[i]);
        name[len] = '\0';
        size_t f = 0;
        while (f < KL_ARRAY_LEN(rnn_fns) && strcmp(rnn_fns[f].name, name) != 0) f++;
        if (f == KL_ARRAY_LEN(rnn_fns))
            return kl_kctx_fail(c, KILN_ERR_UNSUPPORTED, "unknown activation '%.*s'", (int)s->len, s->ptr);
        acts[k] = (rnn_act){rnn_fns[f].fn, rnn_fns[f].alpha, rnn_fns[f].beta};
        if (rnn_fns[f].needs >= 1 && ia < na) acts[k].alpha = al->floats[ia++];
        if (rnn_fns[f].needs >= 2 && ib < nb) acts[k].beta = be->floats[ib++];
    }
    return KILN_OK;
}

/* ---- RNN / GRU / LSTM ------------------------------------------------------------------ */

typedef enum rnn_kind { RK_RNN, RK_GRU, RK_LSTM } rnn_kind;

typedef struct rnn_ctx {
    rnn_kind kind;
    int G, ndir, layout;
    int64_t S, B, I, H;
    bool clip_on, lbr, input_forget, reverse;
    double clip;
    rnn_act acts[6];
    int nfun;
    double *X, *W, *R, *Bias, *P, *h0, *c0, *Y, *Yh, *Yc;
    int64_t *lens;
} rnn_ctx;

/* The `clip` attribute applied to an activation input. */
static inline double rnn_clip(const rnn_ctx *r, double v) {
    return r->clip_on ? fmin(fmax(v, -r->clip), r->clip) : v;
}

/* One time step of one batch entry in direction d: x (I values), h / cs
 * (H values) updated in place; g and hr are 4H scratch. */
static void rnn_step(const rnn_ctx *r, int d, const double *x, double *h, double *cs, double *g, double *hr) {
    int64_t H = r->H, I = r->I, G = r->G;
    const double *W = r->W + (int64_t)d * G * H * I, *R = r->R + (int64_t)d * G * H * H;
    const double *Wb = r->Bias + (int64_t)d * 2 * G * H, *Rb = Wb + G * H;
    const rnn_act *f = &r->acts[d * r->nfun];
    for (int64_t q = 0; q < G * H; q++) {
        double s = Wb[q];
        const double *w = W + q * I;
        for (int64_t i = 0; i < I; i++) s += w[i] * x[i];
        g[q] = s;
    }
    if (r->kind == RK_RNN) {
        for (int64_t j = 0; j < H; j++) {
            double s = g[j] + Rb[j];
            const double *rw = R + j * H;
            for (int64_t k = 0; k < H; k++) s += rw[k] * h[k];
            hr[j] = rnn_apply(&f[0], rnn_clip(r, s));
        }
        memcpy(h, hr, (size_t)H * sizeof *h);
        return;
    }
    if (r->kind == RK_GRU) {
        /* gates z, r, h */
        double *z = hr, *rg = hr + H, *hh = hr + 2 * H, *rh = hr + 3 * H;
        for (int64_t j = 0; j < 2 * H; j++) { /* z then r, contiguous in hr */
            double s = g[j] + Rb[j];
            const double *rw = R + j * H;
            for (int64_t k = 0; k < H; k++) s += rw[k] * h[k];
            hr[j] = rnn_apply(&f[0], rnn_clip(r, s));
        }
        for (int64_t j = 0; j < H; j++) rh[j] = rg[j] * h[j];
        for (int64_t j = 0; j < H; j++) {
            const double *rw = R + (2 * H + j) * H;
            double s;
            if (r->lbr) {
                double t = Rb[2 * H + j];
                for (int64_t k = 0; k < H; k++) t += rw[k] * h[k];
                s = g[2 * H + j] + rg[j] * t;
            } else {
                s = g[2 * H + j] + Rb[2 * H + j];
                for (int64_t k = 0; k < H; k++) s += rw[k] * rh[k];
            }
            hh[j] = rnn_apply(&f[1], rnn_clip(r, s));
        }
        for (int64_t j = 0; j < H; j++) h[j] = (1.0 - z[j]) * hh[j] + z[j] * h[j];
        return;
    }
    /* LSTM: gates i, o, f, c; peepholes i, o, f */
    const double *P = r->P ? r->P + (int64_t)d * 3 * H : NULL;
    for (int64_t q = 0; q < 4 * H; q++) {
        double s = g[q] + Rb[q];
        const double *rw = R + q * H;
        for (int64_t k = 0; k < H; k++) s += rw[k] * h[k];
        g[q] = s;
    }
    for (int64_t j = 0; j < H; j++) {
        double ig = g[j] + (P ? P[j] * cs[j] : 0.0);
        ig = rnn_apply(&f[0], rnn_clip(r, ig));
        double fg;
        if (r->input_forget) {
            fg = 1.0 - ig;
        } else {
            fg = g[2 * H + j] + (P ? P[2 * H + j] * cs[j] : 0.0);
            fg = rnn_apply(&f[0], rnn_clip(r, fg));
        }
        double cg = rnn_apply(&f[1], rnn_clip(r, g[3 * H + j]));
        double cn = fg * cs[j] + ig * cg;
        double og = g[H + j] + (P ? P[H + j] * cn : 0.0);
        og = rnn_apply(&f[0], rnn_clip(r, og));
        cs[j] = cn;
        hr[j] = og * rnn_apply(&f[2], cn);
    }
    memcpy(h, hr, (size_t)H * sizeof *h);
}

/* Run every direction over the whole batch. */
static kiln_status rnn_run(rnn_ctx *r) {
    int64_t H = r->H, B = r->B, I = r->I;
    double *g = kl_rnn_alloc(4 * H), *tmp = kl_rnn_alloc(4 * H);
    if (!g || !tmp) {
        kl_free(g);
        kl_free(tmp);
        return KILN_ERR_NO_MEMORY;
    }
    for (int d = 0; d < r->ndir; d++) {
        bool rev = d == 1 || r->reverse;
        for (int64_t b = 0; b < B; b++) {
            double *h = r->Yh + (d * B + b) * H, *cs = r->Yc + (d * B + b) * H;
            memcpy(h, r->h0 + (d * B + b) * H, (size_t)H * sizeof *h);
            memcpy(cs, r->c0 + (d * B + b) * H, (size_t)H * sizeof *cs);
            int64_t L = r->lens[b];
            for (int64_t s = 0; s < L; s++) {
                int64_t t = rev ? L - 1 - s : s;
                rnn_step(r, d, r->X + (t * B + b) * I, h, cs, g, tmp);
                memcpy(r->Y + ((t * r->ndir + d) * B + b) * H, h, (size_t)H * sizeof *h);
            }
        }
    }
    kl_free(g);
    kl_free(tmp);
    return KILN_OK;
}

/* Read a [ndir, G*H, cols] weight into a double array. */
static kiln_status rnn_weight(kl_kctx *c, const kl_rt *t, const char *what, int ndir, int64_t rows, int64_t cols,
                              double **out) {
    char s[128];
    if (t->rank != 3 || t->dims[0] != ndir || t->dims[1] != rows || t->dims[2] != cols)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "%s %s must have shape [%d,%lld,%lld]", what,
                            kl_rt_describe(t, s, sizeof s), ndir, (long long)rows, (long long)cols);
    return kl_rnn_to_f64(t, out);
}

/* Initial state [ndir, B, H] (layout 1: [B, ndir, H]) into h (zeros when absent). */
static kiln_status rnn_state_in(kl_kctx *c, const kl_rt *t, const char *what, const rnn_ctx *r, double *h) {
    if (!t) return KILN_OK;
    char s[128];
    int64_t a0 = r->layout ? r->B : r->ndir, a1 = r->layout ? r->ndir : r->B;
    if (t->rank != 3 || t->dims[0] != a0 || t->dims[1] != a1 || t->dims[2] != r->H)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "%s %s must have shape [%lld,%lld,%lld]", what,
                            kl_rt_describe(t, s, sizeof s), (long long)a0, (long long)a1, (long long)r->H);
    for (int d = 0; d < r->ndir; d++)
        for (int64_t b = 0; b < r->B; b++)
            for (int64_t j = 0; j < r->H; j++) {
                int64_t src = r->layout ? (b * r->ndir + d) * r->H + j : (d * r->B + b) * r->H + j;
                h[(d * r->B + b) * r->H + j] = kl_rt_get_f64(t, src);
            }
    return KILN_OK;
}

/* Store a [ndir, B, H] state as output i (layout 1: [B, ndir, H]). */
static kiln_status rnn_state_out(kl_kctx *c, size_t i, kiln_dtype dt, const rnn_ctx *r, const double *h) {
    if (!kl_rnn_want(c, i)) return KILN_OK;
    int64_t dims[3] = {r->layout ? r->B : r->ndir, r->layout ? r->ndir : r->B, r->H};
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, i, dt, 3, dims, &y));
    for (int d = 0; d < r->ndir; d++)
        for (int64_t b = 0; b < r->B; b++)
            for (int64_t j = 0; j < r->H; j++) {
                int64_t dst = r->layout ? (b * r->ndir + d) * r->H + j : (d * r->B + b) * r->H + j;
                kl_rt_set_f64(y, dst, h[(d * r->B + b) * r->H + j]);
            }
    return KILN_OK;
}

/* Release r's buffers. */
static void rnn_free(rnn_ctx *r) {
    kl_free(r->X);
    kl_free(r->W);
    kl_free(r->R);
    kl_free(r->Bias);
    kl_free(r->P);
    kl_free(r->h0);
    kl_free(r->c0);
    kl_free(r->Y);
    kl_free(r->Yh);
    kl_free(r->Yc);
    kl_free(r->lens);
}

/* Read inputs and attributes into r (double buffers, X as [S, B, I]);
 * errors name the input or attribute. */
static kiln_status rnn_prepare(kl_kctx *c, rnn_ctx *r) {
    const kl_node *n = c->node;
    const kl_rt *x, *w, *rr;
    KL_TRY(kl_rnn_req(c, 0, "X", &x));
    KL_TRY(kl_rnn_req(c, 1, "W", &w));
    KL_TRY(kl_rnn_req(c, 2, "R", &rr));
    const kl_rt *bias = kl_rnn_opt(c, 3), *sl = kl_rnn_opt(c, 4), *ih = kl_rnn_opt(c, 5);
    const kl_rt *ic = r->kind == RK_LSTM ? kl_rnn_opt(c, 6) : NULL, *pp = r->kind == RK_LSTM ? kl_rnn_opt(c, 7) : NULL;
    if (!kl_rnn_is_float(x->dtype))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "X must be a float tensor, got %s", kiln_dtype_name(x->dtype));
    char s[128];
    if (x->rank != 3) return kl_kctx_fail(c, KILN_ERR_SHAPE, "X %s must have rank 3", kl_rt_describe(x, s, sizeof s));
    const char *dir = kl_node_attr_string(n, "direction", "forward");
    bool reverse = strcmp(dir, "reverse") == 0;
    if (strcmp(dir, "bidirectional") == 0)
        r->ndir = 2;
    else if (reverse || strcmp(dir, "forward") == 0)
        r->ndir = 1;
    else
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "unknown direction '%s'", dir);
    r->layout = n->opset >= 14 ? (int)kl_node_attr_int(n, "layout", 0) : 0;
    if (r->layout != 0 && r->layout != 1)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'layout' must be 0 or 1, got %d", r->layout);
    r->S = r->layout ? x->dims[1] : x->dims[0];
    r->B = r->layout ? x->dims[0] : x->dims[1];
    r->I = x->dims[2];
    r->G = r->kind == RK_RNN ? 1 : r->kind == RK_GRU ? 3 : 4;
    r->nfun = r->kind == RK_RNN ? 1 : r->kind == RK_GRU ? 2 : 3;
    r->H = kl_node_attr_int(n, "hidden_size", rr->rank == 3 ? rr->dims[2] : -1);
    if (r->H < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'hidden_size' must be >= 0");
    const kl_attr *clip = kl_node_attr(n, "clip");
    r->clip_on = clip != NULL;
    r->clip = clip ? clip->f : 0.0;
    r->lbr = r->kind == RK_GRU && kl_node_attr_int(n, "linear_before_reset", 0) != 0;
    r->input_forget = r->kind == RK_LSTM && kl_node_attr_int(n, "input_forget", 0) != 0;
    static const rnn_fn d_rnn[] = {RF_TANH}, d_gru[] = {RF_SIGMOID, RF_TANH},
                        d_lstm[] = {RF_SIGMOID, RF_TANH, RF_TANH};
    KL_TRY(rnn_activations(c, r->nfun, r->ndir,
                           r->kind == RK_RNN ? d_rnn : r->kind == RK_GRU ? d_gru : d_lstm, r->acts));
    int64_t GH = r->G * r->H;
    KL_TRY(rnn_weight(c, w, "W", r->ndir, GH, r->I, &r->W));
    KL_TRY(rnn_weight(c, rr, "R", r->ndir, GH, r->H, &r->R));
    if (!(r->Bias = kl_rnn_alloc(r->ndir * 2 * GH))) return KILN_ERR_NO_MEMORY;
    if (bias) {
        if (bias->rank != 2 || bias->dims[0] != r->ndir || bias->dims[1] != 2 * GH)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "B %s must have shape [%d,%lld]",
                                kl_rt_describe(bias, s, sizeof s), r->ndir, (long long)(2 * GH));
        for (int64_t i = 0; i < bias->count; i++) r->Bias[i] = kl_rt_get_f64(bias, i);
    }
    if (pp) {
        if (pp->rank != 2 || pp->dims[0] != r->ndir || pp->dims[1] != 3 * r->H)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "P %s must have shape [%d,%lld]", kl_rt_describe(pp, s, sizeof s),
                                r->ndir, (long long)(3 * r->H));
        KL_TRY(kl_rnn_to_f64(pp, &r->P));
    }
    int64_t st = r->ndir * r->B * r->H;
    if (!(r->h0 = kl_rnn_alloc(st)) || !(r->c0 = kl_rnn_alloc(st)) || !(r->Yh = kl_rnn_alloc(st)) ||
        !(r->Yc = kl_rnn_alloc(st)) || !(r->Y = kl_rnn_alloc(r->S * st)) || !(r->X = kl_rnn_alloc(x->count)))
        return KILN_ERR_NO_MEMORY;
    KL_TRY(rnn_state_in(c, ih, "initial_h", r, r->h0));
    KL_TRY(rnn_state_in(c, ic, "initial_c", r, r->c0));
    /* X as [S, B, I] */
    for (int64_t t = 0; t < r->S; t++)
        for (int64_t b = 0; b < r->B; b++)
            for (int64_t i = 0; i < r->I; i++) {
                int64_t src = r->layout ? (b * r->S + t) * r->I + i : (t * r->B + b) * r->I + i;
                r->X[(t * r->B + b) * r->I + i] = kl_rt_get_f64(x, src);
            }
    r->lens = kl_calloc((size_t)KL_MAX(r->B, 1), sizeof *r->lens);
    if (!r->lens) return kl_errorf(KILN_ERR_NO_MEMORY, "out of memory");
    for (int64_t b = 0; b < r->B; b++) r->lens[b] = r->S;
    if (sl) {
        if (sl->count != r->B || !kl_dtype_is_integer(sl->dtype))
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "sequence_lens %s must hold %lld integers",
                                kl_rt_describe(sl, s, sizeof s), (long long)r->B);
        for (int64_t b = 0; b < r->B; b++) {
            int64_t L = kl_rt_get_i64(sl, b);
            if (L < 0 || L > r->S)
                return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "sequence_lens[%lld] = %lld is outside [0, %lld]",
                                    (long long)b, (long long)L, (long long)r->S);
            r->lens[b] = L;
        }
    }
    r->reverse = reverse;
    return KILN_OK;
}

/* RNN / GRU / LSTM: run and store Y, Y_h (and Y_c) in X's type and layout. */
static kiln_status rnn_kernel(kl_kctx *c, rnn_kind kind) {
    rnn_ctx r;
    memset(&r, 0, sizeof r);
    r.kind = kind;
    kiln_status s = rnn_prepare(c, &r);
    if (s == KILN_OK) s = rnn_run(&r);
    kiln_dtype dt = c->in[0] ? c->in[0]->dtype : KILN_DTYPE_FLOAT;
    if (s == KILN_OK && kl_rnn_want(c, 0)) {
        int64_t dims[4] = {r.S, r.ndir, r.B, r.H};
        if (r.layout) dims[0] = r.B, dims[1] = r.S, dims[2] = r.ndir;
        kl_rt *y;
        s = kl_kctx_output(c, 0, dt, 4, dims, &y);
        for (int64_t t = 0; s == KILN_OK && t < r.S; t++)
            for (int d = 0; d < r.ndir; d++)
                for (int64_t b = 0; b < r.B; b++)
                    for (int64_t j = 0; j < r.H; j++) {
                        int64_t dst = r.layout ? ((b * r.S + t) * r.ndir + d) * r.H + j
                                               : ((t * r.ndir + d) * r.B + b) * r.H + j;
                        kl_rt_set_f64(y, dst, r.Y[((t * r.ndir + d) * r.B + b) * r.H + j]);
                    }
    }
    if (s == KILN_OK) s = rnn_state_out(c, 1, dt, &r, r.Yh);
    if (s == KILN_OK && kind == RK_LSTM) s = rnn_state_out(c, 2, dt, &r, r.Yc);
    rnn_free(&r);
    return s;
}

/* Table entry points. */
static kiln_status rnn_rnn(kl_kctx *c) {
    return rnn_kernel(c, RK_RNN);
}

static kiln_status rnn_gru(kl_kctx *c) {
    return rnn_kernel(c, RK_GRU);
}

static kiln_status rnn_lstm(kl_kctx *c) {
    return rnn_kernel(c, RK_LSTM);
}

/* ---- table --------------------------------------------------------------------------- */

const kl_kernel_def kl_ref_rnn[] = {
    {"", "RNN", 1, 0, KL_T_FLOATS, rnn_rnn},
    {"", "GRU", 1, 0, KL_T_FLOATS, rnn_gru},
    {"", "LSTM", 1, 0, KL_T_FLOATS, rnn_lstm},
    {"", "Attention", 23, 0, KL_T_FLOATS, kl_rnn_attention},
    {"", "RotaryEmbedding", 23, 0, KL_T_FLOATS, kl_rnn_rotary_embedding},
    {"", "LinearAttention", 27, 0, KL_T_FLOATS, kl_rnn_linear_attention},
    {"", "CausalConvWithState", 27, 0, KL_T_FLOATS, kl_rnn_causal_conv},
    {"ai.onnx.preview", "FlexAttention", 1, 0, KL_T_FLOATS, kl_rnn_flex_attention},
    {0},
};
