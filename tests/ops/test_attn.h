/*
 * test_attn.h — test-ops cases of the fused attention kernel
 * (src/cpu/x86/attn.h, the attn.flash.* tactics), included by test-ops.c.
 *
 * Each case runs kl_attn at every ISA level and 1 and 2 threads against a
 * float64 computation with the reference kernel's semantics
 * (src/cpu/ref/fused_transformer.c): a row whose scores hold a NaN or whose
 * largest score is infinite (a fully -inf masked row) is all NaN, Sk == 0
 * gives zeros.  Y is poisoned with NaN (every element must be written) and
 * sits, like the workspace, between sentinels; in the packed-QKV layout the
 * gaps of Y's rows must stay untouched.  Tolerance (accumulation tier):
 * with e_z the bound on a score's float error,
 * 2(D+2)2^-24 scale sum|q k| + 2^-23 |z|, the output may differ by
 * 1.5 (2 e_z + 2(Sk+4)2^-24 + 2e-6) sum_j p_j |v_j| + 4e-6 |ref|.
 */

/* mask kinds: dims over [B, H, Sq, Sk], 1 = broadcast */
static const char *const attn_mask_names[] = {"none", "k", "b11k", "qk", "bhqk", "bhq1", "1h11"};
#define ATTN_MASKS 7

typedef struct attn_case {
    size_t B, Sq, Sk, H, D, Dv;
    int mask;     /* attn_mask_names index */
    int neginf;   /* 0: finite mask, 1: ~10% -inf entries, 2: also whole -inf rows, 3: every entry -inf */
    bool sf;      /* seq_first */
    bool packed;  /* Q, K, V as column slices of one [B, S, 3E]-style buffer (Sq == Sk, D == Dv) */
    bool nan;     /* a NaN in one Q row */
    float scale;  /* 0: 1/sqrt(D) */
    unsigned seed;
} attn_case;

static void attn_name(const attn_case *c, kl_isa isa, int threads, char *buf, size_t n) {
    snprintf(buf, n,
             "attn(B=%zu,Sq=%zu,Sk=%zu,H=%zu,D=%zu,Dv=%zu,mask=%s,inf=%d,sf=%d,packed=%d,nan=%d,scale=%g,isa=%s,"
             "threads=%d,seed=%u)",
             c->B, c->Sq, c->Sk, c->H, c->D, c->Dv, attn_mask_names[c->mask], c->neginf, c->sf, c->packed, c->nan,
             (double)c->scale, kl_isa_name(isa), threads, c->seed);
}

static void mask_dims(const attn_case *c, size_t md[4]) {
    size_t full[4] = {c->B, c->H, c->Sq, c->Sk};
    static const char keep[ATTN_MASKS][5] = {"0000", "0001", "1001", "0011", "1111", "1110", "0100"};
    for (int i = 0; i < 4; i++) md[i] = keep[c->mask][i] == '1' ? full[i] : 1;
}

static void run_attn_case(const attn_case *c) {
    kl_isa isas[KL_ISA_COUNT];
    int nisa = isa_list(isas);
    char name[320];
    bool any = false;
    for (int ii = 0; ii < nisa; ii++)
        for (int th = 1; th <= 2; th++) {
            attn_name(c, isas[ii], th, name, sizeof name);
            if (selected("attn", name)) any = true;
        }
    if (!any) {
        g_skipped_filter++;
        return;
    }
    const size_t B = c->B, Sq = c->Sq, Sk = c->Sk, H = c->H, D = c->D, Dv = c->Dv, E = H * D, Ev = H * Dv;
    const float scale = c->scale != 0 ? c->scale : (D ? (float)(1.0 / sqrt((double)D)) : 1.0f);
    rng g = {c->seed};
    /* operands: [B,S,W] (or [S,B,W]) with row width W; packed: one buffer */
    size_t qw = c->packed ? E + E + Ev : E, kw = c->packed ? qw : E, vw = c->packed ? qw : Ev;
    size_t qn = B * Sq * qw, kn = c->packed ? 0 : B * Sk * kw, vn = c->packed ? 0 : B * Sk * vw;
    float *qb = malloc((qn + kn + vn + 1) * sizeof(float));
    for (size_t i = 0; i < qn + kn + vn; i++) qb[i] = rng_unit(&g);
    const float *Q = qb, *K = c->packed ? qb + E : qb + qn, *V = c->packed ? qb + 2 * E : qb + qn + kn;
    size_t q_bs = c->sf ? qw : Sq * qw, q_ss = c->sf ? B * qw : qw;
    size_t k_bs = c->sf ? kw : Sk * kw, k_ss = c->sf ? B * kw : kw;
    size_t v_bs = c->sf ? vw : Sk * vw, v_ss = c->sf ? B * vw : vw;
    if (c->nan && Sq > 0) qb[(B - 1) * q_bs + (Sq / 2) * q_ss + (H - 1) * D] = NAN;
    /* mask */
    size_t md[4], ms[4] = {0, 0, 0, 0}, mcount = 1;
    mask_dims(c, md);
    for (int i = 3; i >= 0; i--) {
        if (md[i] != 1) ms[i] = mcount;
        mcount *= md[i];
    }
    float *mask = NULL;
    if (c->mask) {
        mask = malloc((mcount + 1) * sizeof(float));
        for (size_t i = 0; i < mcount; i++) {
            mask[i] = 3.0f * rng_unit(&g);
            if ((c->neginf == 1 || c->neginf == 2) && rng_next(&g) % 10 == 0) mask[i] = -INFINITY;
            if (c->neginf == 3) mask[i] = -INFINITY;
        }
        if (c->neginf == 2) /* whole rows: every (b, h, i) with i % 5 == 2 */
            for (size_t b = 0; b < md[0]; b++)
                for (size_t h = 0; h < md[1]; h++)
                    for (size_t i = 2; i < md[2]; i += 5)
                        for (size_t j = 0; j < md[3]; j++) mask[b * ms[0] + h * ms[1] + i * ms[2] + j * ms[3]] = -INFINITY;
    }
    /* float64 reference, [B][Sq][H][Dv] */
    size_t yn = B * Sq * Ev;
    double *ref = malloc((yn + 1) * sizeof(double)), *tol = malloc((yn + 1) * sizeof(double));
    double *z = malloc((Sk + 1) * sizeof(double)), *ez = malloc((Sk + 1) * sizeof(double));
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < H; h++)
            for (size_t i = 0; i < Sq; i++) {
                const float *qr = Q + b * q_bs + i * q_ss + h * D;
                double mx = -INFINITY;
                bool bad = false;
                for (size_t j = 0; j < Sk; j++) {
                    const float *kr = K + b * k_bs + j * k_ss + h * D;
                    double s = 0, a = 0;
                    for (size_t d = 0; d < D; d++) s += (double)qr[d] * kr[d], a += fabs((double)qr[d] * kr[d]);
                    z[j] = (double)scale * s;
                    if (mask) z[j] += mask[b * ms[0] + h * ms[1] + i * ms[2] + j * ms[3]];
                    ez[j] = 2.0 * (double)(D + 2) * 0x1.0p-24 * fabs((double)scale) * a + 0x1.0p-23 * fabs(z[j]);
                    if (isnan(z[j])) bad = true;
                    else if (z[j] > mx) mx = z[j];
                }
                if (Sk > 0 && isinf(mx)) bad = true;
                double sum = 0, ezmax = 0;
                for (size_t j = 0; j < Sk && !bad; j++) {
                    sum += exp(z[j] - mx);
                    if (z[j] > mx - 30 && ez[j] > ezmax) ezmax = ez[j];
                }
                for (size_t cc = 0; cc < Dv; cc++) {
                    size_t o = ((b * Sq + i) * H + h) * Dv + cc;
                    if (bad) {
                        ref[o] = NAN, tol[o] = 0;
                        continue;
                    }
                    double y = 0, mag = 0;
                    for (size_t j = 0; j < Sk; j++) {
                        double p = exp(z[j] - mx) / sum, vv = V[b * v_bs + j * v_ss + h * Dv + cc];
                        y += p * vv, mag += p * fabs(vv);
                    }
                    ref[o] = y;
                    tol[o] = 1.5 * (2.0 * ezmax + 2.0 * (double)(Sk + 4) * 0x1.0p-24 + 2e-6) * mag + 4e-6 * fabs(y) + 1e-30;
                }
            }
    /* output: [B,Sq,Ev] or [Sq,B,Ev]; packed: rows of width Ev + 5 whose gaps must stay */
    size_t yw = c->packed ? Ev + 5 : Ev, y_bs = c->sf ? yw : Sq * yw, y_ss = c->sf ? B * yw : yw;
    gbuf yb = gb_alloc(B * Sq * yw);
    for (int ii = 0; ii < nisa; ii++)
        for (int th = 1; th <= 2; th++) {
            attn_name(c, isas[ii], th, name, sizeof name);
            if (!selected("attn", name)) continue;
            g_cases++;
            for (size_t i = 0; i < yb.n; i++) yb.p[i] = NAN;
            if (c->packed)
                for (size_t r = 0; r < B * Sq; r++)
                    for (size_t x = Ev; x < yw; x++) memcpy(&yb.p[r * yw + x], &SENTINEL, 4);
            kl_attn_args a;
            memset(&a, 0, sizeof a);
            a.B = B, a.H = H, a.Sq = Sq, a.Sk = Sk, a.D = D, a.Dv = Dv;
            a.q = Q, a.k = K, a.v = V;
            a.q_bs = q_bs, a.q_ss = q_ss, a.k_bs = k_bs, a.k_ss = k_ss, a.v_bs = v_bs, a.v_ss = v_ss;
            a.y = yb.p, a.y_bs = y_bs, a.y_ss = y_ss;
            a.mask = mask, a.m_bs = ms[0], a.m_hs = ms[1], a.m_qs = ms[2], a.m_ks = ms[3];
            a.scale = scale;
            a.isa = isas[ii];
            size_t wsb = kl_attn_workspace_size(&a, th);
            gbuf wb = gb_alloc(wsb / sizeof(float) + 16);
            float *wsp = (float *)(((uintptr_t)wb.p + 63) & ~(uintptr_t)63);
            kiln_status st = kl_attn(g_pools[th], &a, wsb ? wsp : NULL);
            if (st) {
                fail(name, "kl_attn: %s", kl_error_message());
            } else if (!gb_intact(&yb) || !gb_intact(&wb)) {
                fail(name, "sentinel overwritten (output or workspace)");
            } else {
                double worst = 0;
                bool ok = true;
                for (size_t b = 0; b < B && ok; b++)
                    for (size_t i = 0; i < Sq && ok; i++) {
                        const float *yr = yb.p + b * y_bs + i * y_ss;
                        for (size_t x = Ev; x < yw && ok; x++)
                            if (memcmp(&yr[x], &SENTINEL, 4)) ok = false, fail(name, "row gap written at [%zu,%zu]", b, i);
                        for (size_t x = 0; x < Ev && ok; x++) {
                            size_t o = (b * Sq + i) * Ev + x;
                            double gv = yr[x], rv = ref[o];
                            if (isnan(rv) || isnan(gv)) {
                                if (!(isnan(rv) && isnan(gv)))
                                    ok = false, fail(name, "at b=%zu i=%zu col %zu: got %.9g, expected %.9g", b, i, x, gv, rv);
                                continue;
                            }
                            double err = fabs(gv - rv);
                            if (!(err <= tol[o]))
                                ok = false, fail(name, "at b=%zu i=%zu col %zu: got %.9g, expected %.9g (err %.3g > tol %.3g)",
                                                 b, i, x, gv, rv, err, tol[o]);
                            else if (tol[o] > 0 && err / tol[o] > worst)
                                worst = err / tol[o];
                        }
                    }
                if (ok && g_verbose) fprintf(stderr, "  %s: worst err/tol %.3f\n", name, worst);
            }
            gb_free(&wb);
        }
    gb_free(&yb);
    free(qb), free(mask), free(ref), free(tol), free(z), free(ez);
}

static void test_attn(void) {
    static const size_t S[] = {1, 7, 17, 64, 197, 257};
    static const size_t Ds[][2] = {{64, 64}, {24, 24}, {80, 80}, {24, 80}, {64, 17}, {3, 5}};
    unsigned seed = 42;
    int idx = 0;
    for (size_t a = 0; a < 6; a++)
        for (size_t b = 0; b < 6; b++, idx++) {
            if (g_quick && idx % 4) continue;
            attn_case c = {0};
            c.B = 1 + (size_t)(idx % 2);
            c.Sq = S[a], c.Sk = S[b];
            c.H = (size_t[]){1, 2, 3}[idx % 3];
            c.D = Ds[idx % 6][0], c.Dv = Ds[idx % 6][1];
            c.mask = idx % ATTN_MASKS;
            c.neginf = c.mask ? idx % 3 : 0;
            c.sf = (idx / 3) % 2;
            c.seed = seed++;
            run_attn_case(&c);
        }
    /* ViT-B/16 and SAM-window shapes; packed QKV; peaky softmax; NaN; all -inf; D=1; Sk=0 */
    attn_case vit = {1, 197, 197, 12, 64, 64, 0, 0, false, false, false, 0, seed++};
    run_attn_case(&vit);
    attn_case pk = {2, 65, 65, 3, 24, 24, 4, 2, false, true, false, 0, seed++};
    run_attn_case(&pk);
    pk.sf = true, pk.mask = 3, pk.Sq = pk.Sk = 130, pk.seed = seed++;
    run_attn_case(&pk);
    /* the text encoder's heads (seq-first, packed, Dv 32: two vectors of P V in one pass), Dv 48 (three)
     * and 40 (two and a masked tail) */
    attn_case txt = {3, 128, 128, 4, 32, 32, 0, 0, true, true, false, 0, seed++};
    run_attn_case(&txt);
    attn_case d48 = {1, 29, 150, 2, 48, 48, 3, 1, false, false, false, 0, seed++};
    run_attn_case(&d48);
    attn_case d40 = {2, 13, 70, 3, 16, 40, 1, 0, true, false, false, 0, seed++};
    run_attn_case(&d40);
    attn_case peak = {1, 33, 200, 2, 16, 16, 2, 1, false, false, false, 8.0f, seed++};
    run_attn_case(&peak);
    attn_case nan = {2, 17, 70, 2, 8, 8, 0, 0, false, false, true, 0, seed++};
    run_attn_case(&nan);
    attn_case allinf = {2, 9, 70, 2, 8, 8, 2, 3, false, false, false, 0, seed++};
    run_attn_case(&allinf);
    attn_case d1 = {1, 5, 129, 4, 1, 1, 5, 2, true, false, false, 0, seed++};
    run_attn_case(&d1);
    attn_case sk0 = {2, 3, 0, 2, 8, 8, 0, 0, false, false, false, 0, seed++};
    run_attn_case(&sk0);
    if (!g_quick) {
        attn_case big = {1, 300, 1100, 2, 64, 64, 3, 2, false, false, false, 0, seed++};
        run_attn_case(&big);
    }
    /* a mask key stride other than 0/1 is refused */
    if (selected("attn", "attn(bad_mask_stride)")) {
        g_cases++;
        float m1[4] = {0}, qv[4] = {0}, yv[4];
        kl_attn_args a;
        memset(&a, 0, sizeof a);
        a.B = a.H = a.Sq = a.Sk = a.D = a.Dv = 1;
        a.q = a.k = a.v = qv, a.y = yv, a.mask = m1, a.m_ks = 2;
        if (kl_attn(NULL, &a, NULL) != KILN_ERR_INVALID_ARGUMENT) fail("attn(bad_mask_stride)", "accepted");
    }
}
