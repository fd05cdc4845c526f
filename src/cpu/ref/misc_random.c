/* CPU reference kernels, misc family: random generators (Bernoulli,
 * RandomUniform/Normal and their *Like forms, Multinomial).  xoshiro256**
 * seeded from the `seed` attribute when given (reproducible within kiln;
 * ONNX does not define the sequence), otherwise from a process counter. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "cpu/ref/misc.h"

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng *r) {
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform double in [0, 1). */
static double rng_unif(rng *r) { return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

/* Standard normal (Box-Muller). */
static double rng_normal(rng *r) {
    double u1 = rng_unif(r), u2 = rng_unif(r);
    if (u1 <= 0) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}

static _Atomic uint64_t rng_counter;

/* Seed from the node's `seed` attribute, or a fresh per-call stream. */
static void rng_init(rng *r, const kl_node *n) {
    const kl_attr *a = kl_node_attr(n, "seed");
    uint64_t x;
    if (a && a->type == KL_ATTR_FLOAT) {
        uint32_t bits;
        memcpy(&bits, &a->f, sizeof bits);
        x = 0x5EEDull << 32 | bits;
    } else {
        x = atomic_fetch_add(&rng_counter, 1) * 0x2545F4914F6CDD1Dull ^ (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)r;
    }
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

/* Output dtype from attribute `dtype`, or dflt when absent. */
static kiln_status out_dtype(kl_kctx *c, kiln_dtype dflt, bool floats_only, kiln_dtype *dt) {
    int64_t v = kl_node_attr_int(c->node, "dtype", dflt);
    if (!kl_dtype_valid((int32_t)v) || v == KILN_DTYPE_STRING || v == KILN_DTYPE_COMPLEX64 || v == KILN_DTYPE_COMPLEX128 ||
        (floats_only && !kl_misc_is_float((kiln_dtype)v)))
        return kl_kctx_fail(c, KILN_ERR_TYPE, "dtype %lld is not allowed here", (long long)v);
    *dt = (kiln_dtype)v;
    return KILN_OK;
}

/* Bernoulli: 1 with probability input[i], else 0, in `dtype` (default: the input type). */
kiln_status kl_misc_bernoulli(kl_kctx *c) {
    kl_rt *x, *y;
    KL_TRY(kl_misc_need(c, 0, "input", &x));
    if (!kl_misc_is_float(x->dtype)) return kl_kctx_fail(c, KILN_ERR_TYPE, "input must be a float tensor");
    kiln_dtype dt;
    KL_TRY(out_dtype(c, x->dtype, false, &dt));
    KL_TRY(kl_kctx_output(c, 0, dt, x->rank, x->dims, &y));
    rng r;
    rng_init(&r, c->node);
    for (int64_t i = 0; i < x->count; i++) kl_rt_set_f64(y, i, rng_unif(&r) < kl_rt_get_f64(x, i) ? 1.0 : 0.0);
    return KILN_OK;
}

/* Fill y with uniform [lo, hi) or normal(mean, scale) samples. */
static void fill_random(kl_kctx *c, kl_rt *y, bool normal) {
    rng r;
    rng_init(&r, c->node);
    double a = kl_node_attr_float(c->node, normal ? "mean" : "low", 0.0f);
    double b = kl_node_attr_float(c->node, normal ? "scale" : "high", 1.0f);
    for (int64_t i = 0; i < y->count; i++) kl_rt_set_f64(y, i, normal ? a + b * rng_normal(&r) : a + (b - a) * rng_unif(&r));
}

/* RandomUniform / RandomNormal: attribute `shape`, `dtype` (default float). */
static kiln_status random_shape(kl_kctx *c, bool normal) {
    const int64_t *shape;
    int64_t rank = kl_node_attr_ints(c->node, "shape", &shape);
    if (rank < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute 'shape' is required");
    if (rank > KILN_MAX_RANK) return kl_kctx_fail(c, KILN_ERR_UNSUPPORTED, "shape has too many dimensions");
    kiln_dtype dt;
    KL_TRY(out_dtype(c, KILN_DTYPE_FLOAT, true, &dt));
    kl_rt *y;
    KL_TRY(kl_kctx_output(c, 0, dt, (int)rank, shape, &y));
    fill_random(c, y, normal);
    return KILN_OK;
}

/* RandomUniformLike / RandomNormalLike: the input's shape, `dtype` (default: the input type). */
static kiln_status random_like(kl_kctx *c, bool normal) {
    kl_rt *x, *y;
    KL_TRY(kl_misc_need(c, 0, "input", &x));
    kiln_dtype dt;
    KL_TRY(out_dtype(c, x->dtype, true, &dt));
    KL_TRY(kl_kctx_output(c, 0, dt, x->rank, x->dims, &y));
    fill_random(c, y, normal);
    return KILN_OK;
}

kiln_status kl_misc_random_uniform(kl_kctx *c) { return random_shape(c, false); }
kiln_status kl_misc_random_normal(kl_kctx *c) { return random_shape(c, true); }
kiln_status kl_misc_random_uniform_like(kl_kctx *c) { return random_like(c, false); }
kiln_status kl_misc_random_normal_like(kl_kctx *c) { return random_like(c, true); }

/* Multinomial: sample_size class indices per batch row from softmax(input) (input = log-probabilities). */
kiln_status kl_misc_multinomial(kl_kctx *c) {
    kl_rt *x, *y;
    KL_TRY(kl_misc_need(c, 0, "input", &x));
    if (!kl_misc_is_float(x->dtype) || x->rank != 2)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "input must be a float tensor of shape [batch_size, class_size]");
    int64_t samples = kl_node_attr_int(c->node, "sample_size", 1);
    if (samples < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "sample_size must be >= 0");
    kiln_dtype dt;
    KL_TRY(out_dtype(c, KILN_DTYPE_INT32, false, &dt));
    if (dt != KILN_DTYPE_INT32 && dt != KILN_DTYPE_INT64) return kl_kctx_fail(c, KILN_ERR_TYPE, "dtype must be int32 or int64");
    int64_t B = x->dims[0], C = x->dims[1];
    KL_TRY(kl_kctx_output(c, 0, dt, 2, (int64_t[]){B, samples}, &y));
    if (y->count == 0) return KILN_OK;
    if (C == 0) return kl_kctx_fail(c, KILN_ERR_SHAPE, "class_size must be positive");
    double *cum = kl_misc_calloc(C, sizeof *cum);
    if (!cum) return KILN_ERR_NO_MEMORY;
    rng r;
    rng_init(&r, c->node);
    for (int64_t b = 0; b < B; b++) {
        double mx = -INFINITY, tot = 0;
        for (int64_t k = 0; k < C; k++) mx = fmax(mx, kl_rt_get_f64(x, b * C + k));
        for (int64_t k = 0; k < C; k++) cum[k] = (tot += exp(kl_rt_get_f64(x, b * C + k) - mx));
        for (int64_t s = 0; s < samples; s++) {
            double u = rng_unif(&r) * tot;
            int64_t k = 0;
            while (k < C - 1 && !(u < cum[k])) k++;
            kl_rt_set_i64(y, b * samples + s, k);
        }
    }
    kl_free(cum);
    return KILN_OK;
}
