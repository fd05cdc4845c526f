/*
 * test-pool — kernel-level tests of src/cpu/x86/pool.h (the vec.pool
 * tactic's kernel), in the style of test-vecops: every case runs against a
 * float64 reference written here (the semantics of src/cpu/ref/nn_pool.c:
 * max skips NaN and gives -inf for an empty or all-NaN window; average
 * divides by the taps inside the input, or with count_include_pad by the
 * taps inside the padded input, end pads included), on 1 and 2 threads,
 * with sentinel words after the output.  Shapes sweep kernels 1..5,
 * strides 1..3, asymmetric pads 0..2, planes of 1, 3, 7 and 17, output
 * sizes from floor to past ceil (windows partly or wholly in the padding).
 *
 * Tolerances: max is exact (bit for bit); average within 8 float ulps of
 * the float64 mean (a float sum of at most 25 terms).
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "cpu/threadpool.h"
#include "cpu/x86/pool.h"

static long g_cases, g_failed;
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static float frand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 11) * 0x1.0p-53 * 4.0 - 2.0);
}

static const uint32_t SENTINEL = 0x7fc0beefu;

static void ref_pool(const float *x, double *y, int64_t planes, const kl_pool2d_geom *g, bool mx, bool cp) {
    for (int64_t p = 0; p < planes; p++)
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                int64_t hs = oy * g->sh - g->pt, ws = ox * g->sw - g->pl, cnt = 0;
                double acc = mx ? -INFINITY : 0.0;
                for (int64_t r = hs; r < hs + g->kh; r++)
                    for (int64_t c = ws; c < ws + g->kw; c++) {
                        if (r < 0 || r >= g->h || c < 0 || c >= g->w) continue;
                        double v = x[(p * g->h + r) * g->w + c];
                        cnt++;
                        if (mx) {
                            if (!isnan(v) && v > acc) acc = v;
                        } else {
                            acc += v;
                        }
                    }
                if (!mx) {
                    int64_t lh = g->h + g->pb - hs, lw = g->w + g->pr - ws;
                    double ph = lh > 0 ? (double)(lh < g->kh ? lh : g->kh) : 0.0;
                    double pw = lw > 0 ? (double)(lw < g->kw ? lw : g->kw) : 0.0;
                    acc /= cp ? ph * pw : (double)cnt;
                }
                y[(p * g->oh + oy) * g->ow + ox] = acc;
            }
}

static bool same(float got, double want, bool mx) {
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == (float)want;
    if (mx) return (double)got == want;
    double tol = 8.0 * 0x1.0p-24 * (fabs(want) + 2.0); /* the sum's magnitude is at most 2 * taps */
    return fabs((double)got - want) <= tol;
}

static kl_isa g_isa = KL_ISA_AUTO; /* the level the 2-D cases run at */

static void run_case(kl_pool *tp, const kl_pool2d_geom *g, int64_t planes, bool mx, bool cp, bool nans) {
    size_t nx = (size_t)(planes * g->h * g->w), ny = (size_t)(planes * g->oh * g->ow);
    float *x = malloc((nx ? nx : 1) * sizeof *x), *y = malloc((ny + 4) * sizeof *y);
    double *r = malloc((ny ? ny : 1) * sizeof *r);
    if (!x || !y || !r) {
        fprintf(stderr, "FAIL out of memory\n");
        g_failed++;
        free(x), free(y), free(r);
        return;
    }
    for (size_t i = 0; i < nx; i++) x[i] = nans && i % 5 == 2 ? NAN : frand();
    for (size_t i = 0; i < ny + 4; i++) memcpy(&y[i], &SENTINEL, 4);
    ref_pool(x, r, planes, g, mx, cp);
    /* a workspace on odd cases, the per-call buffer on even ones */
    size_t nw = kl_pool2d_workspace_floats(g, tp ? kl_pool_threads(tp) : 1);
    float *ws = g_cases % 2 ? malloc(nw * sizeof *ws) : NULL;
    kl_pool2d_f32(g_isa, tp, x, y, planes, g, mx, cp, ws);
    free(ws);
    g_cases++;
    bool ok = true;
    size_t bad = 0;
    for (size_t i = 0; i < ny; i++)
        if (!same(y[i], r[i], mx)) {
            if (ok) bad = i;
            ok = false;
        }
    for (size_t i = ny; i < ny + 4; i++) ok = ok && memcmp(&y[i], &SENTINEL, 4) == 0;
    if (!ok) {
        g_failed++;
        fprintf(stderr,
                "FAIL %s%s%s planes %lld in %lldx%lld out %lldx%lld k %lldx%lld s %lldx%lld pads %lld,%lld,%lld,%lld "
                "threads %d isa %s: at %zu got %.9g want %.9g\n",
                mx ? "max" : "avg", cp ? " count_include_pad" : "", nans ? " nans" : "", (long long)planes,
                (long long)g->h, (long long)g->w, (long long)g->oh, (long long)g->ow, (long long)g->kh,
                (long long)g->kw, (long long)g->sh, (long long)g->sw, (long long)g->pt, (long long)g->pl,
                (long long)g->pb, (long long)g->pr, tp ? kl_pool_threads(tp) : 1, kl_isa_name(g_isa), bad,
                bad < ny ? y[bad] : 0.0f,
                bad < ny ? r[bad] : 0.0);
    }
    free(x), free(y), free(r);
}

/* Global pools: the reference's double sum / NaN-propagating max. */
static void run_global(kl_isa isa, kl_pool *tp, int64_t planes, int64_t size, bool mx, bool nans) {
    size_t nx = (size_t)(planes * size);
    float *x = malloc(nx * sizeof *x), *y = malloc((size_t)(planes + 4) * sizeof *y);
    if (!x || !y) {
        g_failed++;
        free(x), free(y);
        return;
    }
    for (size_t i = 0; i < nx; i++) x[i] = nans && i % 7 == 3 ? NAN : frand();
    for (int64_t i = 0; i < planes + 4; i++) memcpy(&y[i], &SENTINEL, 4);
    kl_global_pool_f32(isa, tp, x, y, planes, size, mx);
    g_cases++;
    bool ok = true;
    int64_t bad = -1;
    double want = 0;
    for (int64_t p = 0; p < planes && ok; p++) {
        double acc = mx ? -INFINITY : 0.0;
        for (int64_t i = 0; i < size; i++) {
            double v = x[p * size + i];
            if (mx) {
                acc = isnan(v) || v > acc ? v : acc;
                if (isnan(acc)) break;
            } else {
                acc += v;
            }
        }
        if (!mx) acc /= (double)size;
        if (!(isnan(acc) ? isnan(y[p]) : (double)y[p] == (double)(float)acc)) ok = false, bad = p, want = acc;
    }
    for (int64_t i = planes; i < planes + 4; i++) ok = ok && memcmp(&y[i], &SENTINEL, 4) == 0;
    if (!ok) {
        g_failed++;
        fprintf(stderr, "FAIL global %s%s isa %s planes %lld size %lld threads %d: plane %lld got %.9g want %.9g\n",
                mx ? "max" : "avg", nans ? " nans" : "", kl_isa_name(isa), (long long)planes, (long long)size,
                tp ? kl_pool_threads(tp) : 1, (long long)bad, bad >= 0 ? y[bad] : 0.0f, want);
    }
    free(x), free(y);
}

int main(void) {
    kl_pool *tp2 = NULL;
    if (kl_pool_create(2, &tp2) != KILN_OK) {
        fprintf(stderr, "cannot create a thread pool\n");
        return 1;
    }
    /* every level this machine runs (max pooling's row kernels are per level;
     * widths 33 and 40 cross the 16-lane vectors' tails at both strides) */
    static const int64_t sizes[] = {1, 3, 7, 17, 33, 40};
    for (int lv = KL_ISA_REF; lv < KL_ISA_COUNT; lv++) {
    if (!kl_isa_supported((kl_isa)lv)) continue;
    g_isa = (kl_isa)lv;
    for (int64_t k = 1; k <= 5; k++)
        for (int64_t s = 1; s <= 3; s++)
            for (size_t hi = 0; hi < 4; hi++)
                for (int pads = 0; pads < 3; pads++) {
                    int64_t h = sizes[hi], w = sizes[(hi + 1) % 6];
                    int64_t pt = pads, pl = pads ? pads - 1 : 0, pb = pads ? 2 - pads : 0, pr = pads;
                    if (pt >= k || pl >= k || pb >= k || pr >= k) continue; /* ONNX: pads < kernel */
                    kl_pool2d_geom g = {h, w, 0, 0, k, k == 1 ? 1 : k - 1, s, s == 3 ? 2 : s, pt, pl, pb, pr};
                    if (g.kw > w + pl + pr) g.kw = 1;
                    int64_t fh = h + pt + pb - g.kh, fw = w + pl + pr - g.kw;
                    if (fh < 0 || fw < 0) continue;
                    for (int extra = 0; extra < 2; extra++) { /* floor, then one more window (ceil-like) */
                        g.oh = fh / g.sh + 1 + extra;
                        g.ow = fw / g.sw + 1 + extra;
                        for (int planes = 1; planes <= 3; planes += 2)
                            for (int mode = 0; mode < 4; mode++) {
                                bool mx = mode < 2;
                                run_case(NULL, &g, planes, mx, !mx && mode == 3, mx && mode == 1);
                                run_case(tp2, &g, planes, mx, !mx && mode == 3, mx && mode == 1);
                            }
                    }
                }
    /* a zoo shape: ResNet's 3x3/2 pad 1 over 112x112, 64 planes, on 2 threads */
    kl_pool2d_geom r50 = {112, 112, 56, 56, 3, 3, 2, 2, 1, 1, 1, 1};
    run_case(tp2, &r50, 64, true, false, false);
    /* YOLO's SPPF 5x5/1 pad 2 */
    kl_pool2d_geom sppf = {20, 20, 20, 20, 5, 5, 1, 1, 2, 2, 2, 2};
    run_case(tp2, &sppf, 8, true, false, true);
    }
    /* every vector tail of the double accumulators (4/8 and 16/32 wide) */
    static const int64_t gsz[] = {1, 3, 7, 9, 15, 17, 31, 33, 49, 63, 196, 3136, 12544};
    for (int lv = KL_ISA_REF; lv < KL_ISA_COUNT; lv++) {
        if (!kl_isa_supported((kl_isa)lv)) continue;
        for (size_t i = 0; i < sizeof gsz / sizeof *gsz; i++)
            for (int64_t planes = 1; planes <= 2048; planes *= 8)
                for (int mode = 0; mode < 3; mode++) {
                    if (gsz[i] * planes > 4000000) continue;
                    run_global((kl_isa)lv, NULL, planes, gsz[i], mode > 0, mode == 2);
                    run_global((kl_isa)lv, tp2, planes, gsz[i], mode > 0, mode == 2);
                }
    }
    kl_pool_destroy(tp2);
    printf("test-pool: %ld cases, %ld failed\n", g_cases, g_failed);
    return g_failed ? 1 : 0;
}
