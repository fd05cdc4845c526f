/*
 * attn.c — the fused attention driver (attn.h): work split over (batch,
 * head, tile of query rows), K of each head packed once per thread into
 * KL_ATTN_NK-key panels, the tile kernel of the chosen ISA level; and the
 * portable tile kernel (the generic level, also the one off x86).
 */
#include <math.h>
#include <string.h>

#include "core/core.h"
#include "cpu/x86/attn.h"

#define RUP(x, m) (((x) + (m) - 1) / (m) * (m))

/* Portable tile: the algorithm of attn_impl.h in scalar C, same order of
 * the online softmax steps. */
void kl_attn_generic_tile(const kl_attn_tile *t) {
    const size_t MR = KL_ATTN_MR, NK = KL_ATTN_NK, lofs = KL_ATTN_MR * KL_ATTN_GROUPS;
    const size_t ng = (t->rows + MR - 1) / MR, nkb = (t->Sk + NK - 1) / NK, D = t->D, Dv = t->Dv, dvp = t->dvp;
    memset(t->o, 0, ng * MR * dvp * sizeof(float));
    for (size_t i = 0; i < ng * MR; i++) {
        t->ml[i] = -INFINITY;
        t->ml[lofs + i] = 0.0f;
    }
    for (size_t kb = 0; kb < nkb; kb++) {
        const size_t k0 = kb * NK, nk = t->Sk - k0 < NK ? t->Sk - k0 : NK;
        const float *ktb = t->kt + k0 * D;
        for (size_t r = 0; r < t->rows; r++) {
            const float *q = t->q + r * t->q_ss;
            const float *mr = t->mask ? t->mask + r * t->m_qs + k0 * t->m_ks : NULL;
            float *s = t->s;
            for (size_t j = 0; j < nk; j++) s[j] = 0.0f;
            for (size_t d = 0; d < D; d++) {
                float qd = q[d];
                const float *kd = ktb + d * NK;
                for (size_t j = 0; j < nk; j++) s[j] += qd * kd[j];
            }
            float bm = -INFINITY;
            for (size_t j = 0; j < nk; j++) {
                s[j] = s[j] * t->scale + (mr ? mr[j * t->m_ks] : 0.0f);
                if (s[j] > bm) bm = s[j];
            }
            float mo = t->ml[r], mn = bm > mo ? bm : mo;
            float shift = mn == -INFINITY ? 0.0f : mn;
            float alpha = expf(mo - shift), sum = 0.0f;
            for (size_t j = 0; j < nk; j++) sum += s[j] = expf(s[j] - shift);
            t->ml[r] = mn;
            t->ml[lofs + r] = t->ml[lofs + r] * alpha + sum;
            float *o = t->o + r * dvp;
            for (size_t c = 0; c < Dv; c++) o[c] *= alpha;
            for (size_t j = 0; j < nk; j++) {
                const float *v = t->v + (k0 + j) * t->v_ss;
                float p = s[j];
                for (size_t c = 0; c < Dv; c++) o[c] += p * v[c];
            }
        }
    }
    for (size_t r = 0; r < t->rows; r++) {
        float inv = t->ml[r] == -INFINITY ? NAN : 1.0f / t->ml[lofs + r];
        for (size_t c = 0; c < Dv; c++) t->y[r * t->y_ss + c] = t->o[r * dvp + c] * inv;
    }
}

/* Per-thread workspace layout, in floats (each part a multiple of 16, so
 * every part stays 64-byte aligned). */
typedef struct attn_ws {
    size_t kt, s, o, ml, total;
} attn_ws;

static attn_ws ws_layout(const kl_attn_args *a) {
    attn_ws w;
    w.kt = RUP(a->Sk, KL_ATTN_NK) * a->D;
    w.s = KL_ATTN_MR * KL_ATTN_NK;
    w.o = KL_ATTN_GROUPS * KL_ATTN_MR * RUP(a->Dv, 16);
    w.ml = RUP(2 * KL_ATTN_GROUPS * KL_ATTN_MR, 16);
    w.total = RUP(w.kt, 16) + w.s + w.o + w.ml;
    return w;
}

size_t kl_attn_workspace_size(const kl_attn_args *a, int threads) {
    if (!a->B || !a->H || !a->Sq || !a->Sk || !a->Dv) return 0;
    return ws_layout(a).total * sizeof(float) * (size_t)(threads > 0 ? threads : 1);
}

typedef struct attn_job {
    const kl_attn_args *a;
    kl_attn_tile_fn fn;
    attn_ws w;
    float *ws;
    size_t tiles, tile_rows;
} attn_job;

/* K^T of head (b, h): kt[blk][d][j] = K[blk*NK + j][d], zero past Sk. */
static void pack_kt(const kl_attn_args *a, size_t b, size_t h, float *kt) {
    const size_t NK = KL_ATTN_NK, D = a->D, n = RUP(a->Sk, NK);
    const float *k = a->k + b * a->k_bs + h * D;
    for (size_t j = 0; j < n; j++) {
        float *dst = kt + (j / NK) * NK * D + j % NK;
        if (j < a->Sk) {
            const float *src = k + j * a->k_ss;
            for (size_t d = 0; d < D; d++) dst[d * NK] = src[d];
        } else {
            for (size_t d = 0; d < D; d++) dst[d * NK] = 0.0f;
        }
    }
}

static void attn_task(void *arg, size_t begin, size_t end, int tid) {
    const attn_job *j = arg;
    const kl_attn_args *a = j->a;
    float *base = j->ws + (size_t)tid * j->w.total;
    kl_attn_tile t;
    memset(&t, 0, sizeof t);
    t.kt = base;
    t.s = base + RUP(j->w.kt, 16);
    t.o = t.s + j->w.s;
    t.ml = t.o + j->w.o;
    t.Sk = a->Sk;
    t.D = a->D;
    t.Dv = a->Dv;
    t.dvp = RUP(a->Dv, 16);
    t.scale = a->scale;
    t.q_ss = a->q_ss;
    t.v_ss = a->v_ss;
    t.y_ss = a->y_ss;
    t.m_qs = a->m_qs;
    t.m_ks = a->m_ks;
    size_t packed = (size_t)-1;
    for (size_t it = begin; it < end; it++) {
        size_t bh = it / j->tiles, tile = it % j->tiles, b = bh / a->H, h = bh % a->H;
        if (bh != packed) {
            pack_kt(a, b, h, (float *)t.kt);
            packed = bh;
        }
        size_t r0 = tile * j->tile_rows;
        t.rows = a->Sq - r0 < j->tile_rows ? a->Sq - r0 : j->tile_rows;
        t.q = a->q + b * a->q_bs + r0 * a->q_ss + h * a->D;
        t.v = a->v + b * a->v_bs + h * a->Dv;
        t.y = a->y + b * a->y_bs + r0 * a->y_ss + h * a->Dv;
        t.mask = a->mask ? a->mask + b * a->m_bs + h * a->m_hs + r0 * a->m_qs : NULL;
        j->fn(&t);
    }
}

static kl_attn_tile_fn tile_fn(kl_isa isa) {
#if defined(__x86_64__) || defined(_M_X64)
    if (isa >= KL_ISA_AVX512) return kl_x86_avx512_attn_tile;
    if (isa >= KL_ISA_AVX2) return kl_x86_avx2_attn_tile;
#endif
    (void)isa;
    return kl_attn_generic_tile;
}

kiln_status kl_attn(kl_pool *pool, const kl_attn_args *a, void *workspace) {
    if (a->mask && a->m_ks > 1) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "attention: mask key stride must be 0 or 1");
    if (!a->B || !a->H || !a->Sq || !a->Dv) return KILN_OK;
    if (!a->Sk) { /* softmax over nothing: the reference leaves Y zero */
        for (size_t b = 0; b < a->B; b++)
            for (size_t s = 0; s < a->Sq; s++) memset(a->y + b * a->y_bs + s * a->y_ss, 0, a->H * a->Dv * sizeof(float));
        return KILN_OK;
    }
    if (!workspace) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "attention: no workspace");
    int threads = kl_pool_threads(pool);
    attn_job j;
    j.a = a;
    j.fn = tile_fn(kl_isa_resolve(a->isa));
    j.w = ws_layout(a);
    j.ws = workspace;
    /* Tiles of up to MR*GROUPS rows (one key block then serves them all
     * from L1), smaller while there are fewer than 4 tiles per thread. */
    const size_t MR = KL_ATTN_MR, bh = a->B * a->H, max_tiles = (a->Sq + MR - 1) / MR;
    size_t tiles = (a->Sq + MR * KL_ATTN_GROUPS - 1) / (MR * KL_ATTN_GROUPS);
    while (tiles < max_tiles && bh * tiles < 4 * (size_t)threads) tiles++;
    j.tile_rows = RUP((a->Sq + tiles - 1) / tiles, MR);
    j.tiles = (a->Sq + j.tile_rows - 1) / j.tile_rows;
    /* claimed a head at a time (its K^T packed once per claim) while there
     * are two heads per thread or more, else a tile at a time: a worker
     * that starts late or is descheduled takes fewer, instead of holding
     * the layer back for its fixed share */
    kl_parallel_for_dyn(pool, threads, bh * j.tiles, bh >= 2 * (size_t)threads ? j.tiles : 1, attn_task, &j);
    return KILN_OK;
}
