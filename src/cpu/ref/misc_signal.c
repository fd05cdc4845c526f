/* CPU reference kernels, misc family: signal processing (DFT, STFT, the
 * Hann/Hamming/Blackman windows, MelWeightMatrix).  Transforms are computed
 * in double: radix-2 FFT for power-of-two lengths, a direct DFT with an
 * exact twiddle table otherwise. */
#include <math.h>
#include <string.h>

#include "cpu/ref/misc.h"

#define KL_PI 3.14159265358979323846

/* A length-n transform: twiddles cos/sin(2 pi m / n) and scratch.  Lengths
 * that are not powers of two and above DFT_DIRECT_MAX use Bluestein's
 * algorithm over a power-of-two plan `sub` of length m >= 2n - 1. */
#define DFT_DIRECT_MAX 64

typedef struct dft_plan {
    int64_t n;
    double *cs, *sn;
    double *tre, *tim;            /* scratch of n (direct) or m (Bluestein) entries */
    struct dft_plan *sub;         /* Bluestein: power-of-two plan of length m */
    double *wr, *wi;              /* Bluestein chirp exp(-i pi k^2 / n), k < n */
    double *bre, *bim;            /* Bluestein: FFT of the conjugate chirp, length m */
} dft_plan;

static void dft_plan_free(dft_plan *p) {
    if (p->sub) {
        dft_plan_free(p->sub);
        kl_free(p->sub);
    }
    kl_free(p->cs), kl_free(p->sn), kl_free(p->tre), kl_free(p->tim);
    kl_free(p->wr), kl_free(p->wi), kl_free(p->bre), kl_free(p->bim);
    memset(p, 0, sizeof *p);
}

static bool is_pow2(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

static void dft_run(dft_plan *p, double *re, double *im, bool inverse);

/* Twiddle table and scratch for length-n transforms. */
static kiln_status dft_plan_init(dft_plan *p, int64_t n) {
    memset(p, 0, sizeof *p);
    p->n = n;
    bool blue = !is_pow2(n) && n > DFT_DIRECT_MAX;
    int64_t m = 1;
    while (blue && m < 2 * n - 1) m *= 2;
    int64_t tw = blue ? 0 : n, scratch = blue ? m : n;
    p->cs = kl_misc_calloc(tw, sizeof(double));
    p->sn = kl_misc_calloc(tw, sizeof(double));
    p->tre = kl_misc_calloc(scratch, sizeof(double));
    p->tim = kl_misc_calloc(scratch, sizeof(double));
    if (!p->cs || !p->sn || !p->tre || !p->tim) goto oom;
    for (int64_t k = 0; k < tw; k++) {
        double a = 2.0 * KL_PI * (double)k / (double)n;
        p->cs[k] = cos(a), p->sn[k] = sin(a);
    }
    if (!blue) return KILN_OK;
    p->sub = kl_calloc(1, sizeof *p->sub);
    p->wr = kl_misc_calloc(n, sizeof(double)), p->wi = kl_misc_calloc(n, sizeof(double));
    p->bre = kl_misc_calloc(m, sizeof(double)), p->bim = kl_misc_calloc(m, sizeof(double));
    if (!p->sub || !p->wr || !p->wi || !p->bre || !p->bim) goto oom;
    kiln_status s = dft_plan_init(p->sub, m);
    if (s) {
        dft_plan_free(p);
        return s;
    }
    for (int64_t k = 0, q = 0; k < n; k++) {
        /* q = k^2 mod 2n, kept exact: (k+1)^2 = k^2 + 2k + 1 */
        double a = KL_PI * (double)q / (double)n;
        p->wr[k] = cos(a), p->wi[k] = -sin(a);
        q = (q + 2 * k + 1) % (2 * n);
    }
    for (int64_t k = 0; k < n; k++) {
        p->bre[k] = p->wr[k], p->bim[k] = -p->wi[k];
        if (k) p->bre[m - k] = p->wr[k], p->bim[m - k] = -p->wi[k];
    }
    dft_run(p->sub, p->bre, p->bim, false);
    return KILN_OK;
oom:
    dft_plan_free(p);
    return KILN_ERR_NO_MEMORY;
}

/* In place: (re, im) of length n becomes its DFT (inverse: conjugate
 * kernel, not scaled). */
static void dft_run(dft_plan *p, double *re, double *im, bool inverse) {
    int64_t n = p->n;
    double sign = inverse ? 1.0 : -1.0;
    if (n <= 1) return;
    if (p->sub) {
        /* Bluestein: X[k] = w[k] * sum_j (x[j] w[j]) conj(w[k - j]); the inverse
         * transform is the conjugate of the forward one of the conjugate. */
        int64_t m = p->sub->n;
        double *ar = p->tre, *ai = p->tim;
        for (int64_t k = 0; k < m; k++) ar[k] = ai[k] = 0;
        for (int64_t k = 0; k < n; k++) {
            double xr = re[k], xi = inverse ? -im[k] : im[k];
            ar[k] = xr * p->wr[k] - xi * p->wi[k];
            ai[k] = xr * p->wi[k] + xi * p->wr[k];
        }
        dft_run(p->sub, ar, ai, false);
        for (int64_t k = 0; k < m; k++) {
            double xr = ar[k] * p->bre[k] - ai[k] * p->bim[k], xi = ar[k] * p->bim[k] + ai[k] * p->bre[k];
            ar[k] = xr, ai[k] = xi;
        }
        dft_run(p->sub, ar, ai, true);
        for (int64_t k = 0; k < n; k++) {
            double cr = ar[k] / (double)m, ci = ai[k] / (double)m;
            re[k] = cr * p->wr[k] - ci * p->wi[k];
            im[k] = cr * p->wi[k] + ci * p->wr[k];
            if (inverse) im[k] = -im[k];
        }
        return;
    }
    if (is_pow2(n)) {
        for (int64_t i = 1, j = 0; i < n; i++) {
            int64_t bit = n >> 1;
            for (; j & bit; bit >>= 1) j ^= bit;
            j ^= bit;
            if (i < j) {
                double t = re[i];
                re[i] = re[j], re[j] = t;
                t = im[i], im[i] = im[j], im[j] = t;
            }
        }
        for (int64_t len = 2; len <= n; len <<= 1) {
            int64_t step = n / len, half = len / 2;
            for (int64_t i = 0; i < n; i += len)
                for (int64_t k = 0; k < half; k++) {
                    double wr = p->cs[k * step], wi = sign * p->sn[k * step];
                    double ar = re[i + k + half], ai = im[i + k + half];
                    double xr = ar * wr - ai * wi, xi = ar * wi + ai * wr;
                    re[i + k + half] = re[i + k] - xr, im[i + k + half] = im[i + k] - xi;
                    re[i + k] += xr, im[i + k] += xi;
                }
        }
        return;
    }
    for (int64_t k = 0; k < n; k++) {
        double sr = 0, si = 0;
        int64_t m = 0;
        for (int64_t j = 0; j < n; j++) {
            double wr = p->cs[m], wi = sign * p->sn[m];
            sr += re[j] * wr - im[j] * wi;
            si += re[j] * wi + im[j] * wr;
            m += k;
            if (m >= n) m -= n;
        }
        p->tre[k] = sr, p->tim[k] = si;
    }
    memcpy(re, p->tre, (size_t)n * sizeof *re);
    memcpy(im, p->tim, (size_t)n * sizeof *im);
}

/* Optional scalar integer input i (dft_length, frame_length...); *has false when omitted. */
static kiln_status opt_scalar_int(kl_kctx *c, size_t i, const char *what, int64_t *v, bool *has) {
    *has = false;
    if (i >= c->n_in || !c->in[i]) return KILN_OK;
    const kl_rt *t = c->in[i];
    if (t->kind != KL_RT_TENSOR || !kl_dtype_is_integer(t->dtype) || t->count != 1)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "%s must be an integer scalar", what);
    *v = kl_rt_get_i64(t, 0);
    *has = true;
    return KILN_OK;
}

/* ---- DFT (opset 17: axis attribute; opset 20: axis input) ----------------------------------- */

kiln_status kl_misc_dft(kl_kctx *c) {
    kl_rt *x;
    KL_TRY(kl_misc_need(c, 0, "input", &x));
    if (!kl_misc_is_float(x->dtype)) return kl_kctx_fail(c, KILN_ERR_TYPE, "input must be a float tensor");
    int r = x->rank;
    if (r < 2 || (x->dims[r - 1] != 1 && x->dims[r - 1] != 2))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "input must have rank >= 2 and a last dimension of 1 (real) or 2 (complex)");
    int64_t axis;
    bool has;
    if (c->node->opset >= 20) {
        KL_TRY(opt_scalar_int(c, 2, "axis", &axis, &has));
        if (!has) axis = -2;
    } else {
        axis = kl_node_attr_int(c->node, "axis", 1);
    }
    if (axis < 0) axis += r;
    if (axis < 0 || axis > r - 2)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "axis is out of range for input rank %d (the last dimension holds real/imag)", r);
    bool inverse = kl_node_attr_int(c->node, "inverse", 0) != 0;
    bool onesided = kl_node_attr_int(c->node, "onesided", 0) != 0;
    int64_t L = x->dims[axis], n;
    KL_TRY(opt_scalar_int(c, 1, "dft_length", &n, &has));
    bool irfft = inverse && onesided;
    if (!has) n = irfft ? 2 * (L - 1) : L;
    if (n < 1) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "dft_length must be positive (got %lld)", (long long)n);
    int64_t cin = x->dims[r - 1];
    int64_t n_out = irfft ? n : onesided ? n / 2 + 1 : n, cout = irfft ? 1 : 2;
    int64_t dims[KILN_MAX_RANK];
    memcpy(dims, x->dims, (size_t)r * sizeof *dims);
    dims[axis] = n_out, dims[r - 1] = cout;
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, x->dtype, r, dims, &y));
    if (y->count == 0) return KILN_OK;

    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= x->dims[i];
    for (int i = axis + 1; i < r - 1; i++) inner *= x->dims[i];
    double *xd = NULL, *yd = NULL, *re = NULL, *im = NULL;
    dft_plan plan = {0};
    kiln_status s = kl_misc_load_f64(x, "input", &xd);
    if (!s) s = dft_plan_init(&plan, n);
    if (!s && (!(yd = kl_misc_calloc(y->count, sizeof *yd)) || !(re = kl_misc_calloc(n, sizeof *re)) ||
               !(im = kl_misc_calloc(n, sizeof *im))))
        s = KILN_ERR_NO_MEMORY;
    for (int64_t o = 0; !s && o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            memset(re, 0, (size_t)n * sizeof *re);
            memset(im, 0, (size_t)n * sizeof *im);
            if (irfft) {
                /* Hermitian extension of the n/2+1 given bins. */
                for (int64_t k = 0; k <= n / 2 && k < L; k++) {
                    const double *e = xd + ((o * L + k) * inner + i) * cin;
                    re[k] = e[0], im[k] = cin == 2 ? e[1] : 0.0;
                }
                for (int64_t k = n / 2 + 1; k < n; k++) re[k] = re[n - k], im[k] = -im[n - k];
            } else {
                for (int64_t k = 0; k < n && k < L; k++) {
                    const double *e = xd + ((o * L + k) * inner + i) * cin;
                    re[k] = e[0], im[k] = cin == 2 ? e[1] : 0.0;
                }
            }
            dft_run(&plan, re, im, inverse);
            double scale = inverse ? 1.0 / (double)n : 1.0;
            for (int64_t k = 0; k < n_out; k++) {
                double *e = yd + ((o * n_out + k) * inner + i) * cout;
                e[0] = re[k] * scale;
                if (cout == 2) e[1] = im[k] * scale;
            }
        }
    if (!s) kl_misc_store_f64(y, yd);
    kl_free(xd);
    kl_free(yd);
    kl_free(re);
    kl_free(im);
    dft_plan_free(&plan);
    return s;
}

/* ---- STFT (opset 17) ----------------------------------------------------------------------------- */

kiln_status kl_misc_stft(kl_kctx *c) {
    kl_rt *x;
    KL_TRY(kl_misc_need(c, 0, "signal", &x));
    if (!kl_misc_is_float(x->dtype)) return kl_kctx_fail(c, KILN_ERR_TYPE, "signal must be a float tensor");
    if (x->rank != 3 || (x->dims[2] != 1 && x->dims[2] != 2))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "signal must have shape [batch, signal_length, 1 or 2]");
    int64_t step, flen;
    bool has, has_len;
    KL_TRY(opt_scalar_int(c, 1, "frame_step", &step, &has));
    if (!has) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "frame_step is required");
    const kl_rt *win = c->n_in > 2 && c->in[2] && c->in[2]->kind == KL_RT_TENSOR ? c->in[2] : NULL;
    KL_TRY(opt_scalar_int(c, 3, "frame_length", &flen, &has_len));
    if (win && win->rank != 1) return kl_kctx_fail(c, KILN_ERR_SHAPE, "window must be 1-D");
    if (win && !kl_misc_is_float(win->dtype)) return kl_kctx_fail(c, KILN_ERR_TYPE, "window must be a float tensor");
    if (win && has_len && win->dims[0] != flen)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "window length %lld differs from frame_length %lld", (long long)win->dims[0],
                            (long long)flen);
    if (!has_len) flen = win ? win->dims[0] : x->dims[1];
    int64_t B = x->dims[0], L = x->dims[1], cin = x->dims[2];
    if (step < 1 || flen < 1 || flen > L)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "need frame_step >= 1 and 1 <= frame_length (%lld) <= signal length (%lld)",
                            (long long)flen, (long long)L);
    bool onesided = kl_node_attr_int(c->node, "onesided", 1) != 0;
    int64_t frames = 1 + (L - flen) / step, bins = onesided ? flen / 2 + 1 : flen;
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, x->dtype, 4, (int64_t[]){B, frames, bins, 2}, &y));
    if (y->count == 0) return KILN_OK;
    double *xd = NULL, *wd = NULL, *yd = NULL, *re = NULL, *im = NULL;
    dft_plan plan = {0};
    kiln_status s = kl_misc_load_f64(x, "signal", &xd);
    if (!s && win) s = kl_misc_load_f64(win, "window", &wd);
    if (!s) s = dft_plan_init(&plan, flen);
    if (!s && (!(yd = kl_misc_calloc(y->count, sizeof *yd)) || !(re = kl_misc_calloc(flen, sizeof *re)) ||
               !(im = kl_misc_calloc(flen, sizeof *im))))
        s = KILN_ERR_NO_MEMORY;
    for (int64_t b = 0; !s && b < B; b++)
        for (int64_t f = 0; f < frames; f++) {
            for (int64_t j = 0; j < flen; j++) {
                const double *e = xd + (b * L + f * step + j) * cin;
                double w = wd ? wd[j] : 1.0;
                re[j] = e[0] * w, im[j] = cin == 2 ? e[1] * w : 0.0;
            }
            dft_run(&plan, re, im, false);
            double *o = yd + (b * frames + f) * bins * 2;
            for (int64_t k = 0; k < bins; k++) o[2 * k] = re[k], o[2 * k + 1] = im[k];
        }
    if (!s) kl_misc_store_f64(y, yd);
    kl_free(xd);
    kl_free(wd);
    kl_free(yd);
    kl_free(re);
    kl_free(im);
    dft_plan_free(&plan);
    return s;
}

/* ---- windows (opset 17) ------------------------------------------------------------------------------ */

static bool numeric_out_type(int64_t dt) {
    return kl_dtype_valid((int32_t)dt) && dt != KILN_DTYPE_STRING && dt != KILN_DTYPE_COMPLEX64 &&
           dt != KILN_DTYPE_COMPLEX128 && dt != KILN_DTYPE_UNDEFINED;
}

/* Shared body: w[n] = a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N), N = size
 * (periodic) or size - 1 (symmetric). */
static kiln_status window_run(kl_kctx *c, double a0, double a1, double a2) {
    kl_rt *sz;
    KL_TRY(kl_misc_need(c, 0, "size", &sz));
    if (!kl_dtype_is_integer(sz->dtype) || sz->count != 1) return kl_kctx_fail(c, KILN_ERR_SHAPE, "size must be an integer scalar");
    int64_t size = kl_rt_get_i64(sz, 0);
    if (size < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "size must be >= 0 (got %lld)", (long long)size);
    int64_t dt = kl_node_attr_int(c->node, "output_datatype", KILN_DTYPE_FLOAT);
    if (!numeric_out_type(dt)) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "output_datatype %lld is not a numeric type", (long long)dt);
    bool periodic = kl_node_attr_int(c->node, "periodic", 1) != 0;
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, (kiln_dtype)dt, 1, &size, &y));
    double N = (double)(periodic ? size : size - 1);
    for (int64_t i = 0; i < size; i++) {
        double v = N > 0 ? a0 - a1 * cos(2.0 * KL_PI * (double)i / N) + a2 * cos(4.0 * KL_PI * (double)i / N) : 1.0;
        kl_rt_set_f64(y, i, v);
    }
    return KILN_OK;
}

kiln_status kl_misc_hann(kl_kctx *c) { return window_run(c, 0.5, 0.5, 0.0); }
kiln_status kl_misc_hamming(kl_kctx *c) { return window_run(c, 25.0 / 46.0, 21.0 / 46.0, 0.0); }
kiln_status kl_misc_blackman(kl_kctx *c) { return window_run(c, 0.42, 0.5, 0.08); }

/* ---- MelWeightMatrix (opset 17) ------------------------------------------------------------------------ */

/* Python's float floor division a // b (CPython float_floor_div). */
static double py_floordiv(double a, double b) {
    double mod = fmod(a, b);
    double div = (a - mod) / b;
    if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1.0;
    if (div == 0) return copysign(0.0, a / b);
    double f = floor(div);
    if (div - f > 0.5) f += 1.0;
    return f;
}

/* MelWeightMatrix: triangular filters [dft_length/2+1, num_mel_bins], as the spec's reference computes
 * them (bin edges by Python floor division). */
kiln_status kl_misc_mel(kl_kctx *c) {
    int64_t bins, dft_len, rate;
    double lo, hi;
    const char *names[5] = {"num_mel_bins", "dft_length", "sample_rate", "lower_edge_hertz", "upper_edge_hertz"};
    for (size_t i = 0; i < 5; i++) {
        kl_rt *t;
        KL_TRY(kl_misc_need(c, i, names[i], &t));
        if (t->count != 1) return kl_kctx_fail(c, KILN_ERR_SHAPE, "%s must be a scalar", names[i]);
        if (i < 3 && !kl_dtype_is_integer(t->dtype)) return kl_kctx_fail(c, KILN_ERR_TYPE, "%s must be an integer", names[i]);
        if (i >= 3 && !kl_misc_is_float(t->dtype)) return kl_kctx_fail(c, KILN_ERR_TYPE, "%s must be a float", names[i]);
    }
    bins = kl_rt_get_i64(c->in[0], 0), dft_len = kl_rt_get_i64(c->in[1], 0), rate = kl_rt_get_i64(c->in[2], 0);
    lo = kl_rt_get_f64(c->in[3], 0), hi = kl_rt_get_f64(c->in[4], 0);
    if (bins < 0 || dft_len < 0 || rate <= 0)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "need num_mel_bins >= 0, dft_length >= 0 and sample_rate > 0");
    int64_t dt = kl_node_attr_int(c->node, "output_datatype", KILN_DTYPE_FLOAT);
    if (!numeric_out_type(dt)) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "output_datatype %lld is not a numeric type", (long long)dt);
    int64_t spec = dft_len / 2 + 1;
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, (kiln_dtype)dt, 2, (int64_t[]){spec, bins}, &y));
    int64_t *fb = kl_misc_calloc(bins + 2, sizeof *fb);
    double *w = kl_misc_calloc(y->count, sizeof *w);
    if (!fb || !w) {
        kl_free(fb);
        kl_free(w);
        return KILN_ERR_NO_MEMORY;
    }
    double lmel = 2595.0 * log10(1.0 + lo / 700.0), hmel = 2595.0 * log10(1.0 + hi / 700.0);
    double step = (hmel - lmel) / (double)(bins + 2);
    for (int64_t i = 0; i < bins + 2; i++) {
        double hz = 700.0 * (pow(10.0, ((double)i * step + lmel) / 2595.0) - 1.0);
        double v = py_floordiv((double)(dft_len + 1) * hz, (double)rate);
        fb[i] = isfinite(v) && fabs(v) < 9e18 ? (int64_t)v : -1;
    }
    for (int64_t i = 0; i < bins; i++) {
        int64_t l = fb[i], ctr = fb[i + 1], r = fb[i + 2];
        if (ctr - l == 0) {
            if (ctr >= 0 && ctr < spec) w[ctr * bins + i] = 1.0;
        } else {
            for (int64_t j = KL_MAX(l, 0); j <= ctr && j < spec; j++) w[j * bins + i] = (double)(j - l) / (double)(ctr - l);
        }
        if (r - ctr > 0)
            for (int64_t j = KL_MAX(ctr, 0); j < r && j < spec; j++) w[j * bins + i] = (double)(r - j) / (double)(r - ctr);
    }
    kl_misc_store_f64(y, w);
    kl_free(fb);
    kl_free(w);
    return KILN_OK;
}
