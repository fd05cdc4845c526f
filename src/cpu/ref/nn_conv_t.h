/*
 * nn_conv_t.h — typed cores of the convolutions, included by nn_conv.c once
 * per element type with NN_T (float or double), NN_(name) (adds the type
 * suffix) and NN_GEMM (kl_nn_sgemm or kl_nn_dgemm) defined.  Not a header
 * of its own: no include guard on purpose.
 *
 * The geometry g maps a "grid" position o (g->out) and kernel offset kk to
 * the "image" coordinate o*s - pb + kk*d (image sizes g->in): for Conv the
 * image is the input and the grid the output; for ConvTranspose and Col2Im
 * the image is the output and the grid the input columns.
 */

/* Walk rows (channel, kernel offset) of Cg image channels and grid positions
 * [p0, p1).  With out_img NULL it is im2col: copy values of in_img into col
 * (zeros where the image coordinate is outside); otherwise col2im: add col
 * into out_img (in_img unused).  Two pointers keep the read-only image const. */
static void NN_(im_col_walk)(const kl_nn_geom *g, int64_t Cg, int64_t p0, int64_t p1, const NN_T *in_img,
                             NN_T *out_img, NN_T *col) {
    bool to_col = out_img == NULL;
    int ns = g->ns, L = ns - 1;
    int64_t prodk = 1, isz = 1, istr[KILN_MAX_RANK], pc = p1 - p0;
    for (int d = ns - 1; d >= 0; d--) {
        istr[d] = isz;
        isz *= g->in[d];
        prodk *= g->k[d];
    }
    for (int64_t r = 0; r < Cg * prodk; r++) {
        int64_t off[KILN_MAX_RANK], o[KILN_MAX_RANK], kr = r % prodk, q = p0, p = p0;
        int64_t ch = (r / prodk) * isz;
        NN_T *dst = col + r * pc;
        for (int d = ns - 1; d >= 0; d--) {
            off[d] = (kr % g->k[d]) * g->d[d] - g->pb[d];
            kr /= g->k[d];
            o[d] = q % g->out[d];
            q /= g->out[d];
        }
        int64_t s = g->s[L], n = g->in[L], offl = off[L];
        int64_t lo0 = offl >= 0 ? 0 : (-offl + s - 1) / s, hi0 = n - offl > 0 ? (n - offl + s - 1) / s : 0;
        while (p < p1) {
            int64_t a = o[L], b = KL_MIN(g->out[L], a + (p1 - p)), base = offl;
            bool ok = true;
            for (int d = 0; d < L; d++) {
                int64_t id = o[d] * g->s[d] + off[d];
                if (id < 0 || id >= g->in[d]) ok = false;
                base += id * istr[d];
            }
            int64_t lo = ok ? KL_MIN(KL_MAX(lo0, a), b) : b, hi = ok ? KL_MIN(KL_MAX(hi0, lo), b) : b;
            if (to_col) {
                const NN_T *src = in_img + ch + base;
                for (int64_t x = a; x < lo; x++) dst[x - a] = 0;
                if (s == 1)
                    for (int64_t x = lo; x < hi; x++) dst[x - a] = src[x];
                else
                    for (int64_t x = lo; x < hi; x++) dst[x - a] = src[x * s];
                for (int64_t x = hi; x < b; x++) dst[x - a] = 0;
            } else {
                NN_T *img = out_img + ch + base;
                for (int64_t x = lo; x < hi; x++) img[x * s] += dst[x - a];
            }
            dst += b - a;
            p += b - a;
            o[L] = b;
            for (int d = L; d > 0 && o[d] == g->out[d]; d--) {
                o[d] = 0;
                o[d - 1]++;
            }
        }
    }
}

/* im2col (to_col) or col2im over img, as NN_(im_col_walk). */
static void NN_(im_col)(const kl_nn_geom *g, int64_t Cg, int64_t p0, int64_t p1, NN_T *img, NN_T *col,
                        bool to_col) {
    NN_(im_col_walk)(g, Cg, p0, p1, img, to_col ? NULL : img, col);
}

/* Conv: y[N, M, out] = w[M, C/group, k] (*) x[N, C, in] + b, by im2col over
 * chunks of output positions and a GEMM per (image, group). */
static kiln_status NN_(conv)(const kl_nn_geom *g, int64_t N, int64_t C, int64_t M, int64_t group, const NN_T *x,
                             const NN_T *w, const NN_T *b, NN_T *y) {
    int64_t Cg = C / group, Mg = M / group, insz = 1, P = 1, prodk = 1;
    bool direct = true;
    for (int d = 0; d < g->ns; d++) {
        insz *= g->in[d];
        P *= g->out[d];
        prodk *= g->k[d];
        if (g->k[d] != 1 || g->s[d] != 1 || g->pb[d] || g->pe[d]) direct = false;
    }
    int64_t K = Cg * prodk, pc = direct ? P : KL_MAX(1, KL_MIN(P, NN_COL_BUDGET / KL_MAX(K, 1)));
    NN_T *col = NULL;
    if (!direct && K > 0 && !(col = kl_nn_alloc(K * pc, sizeof *col))) return KILN_ERR_NO_MEMORY;
    kiln_status s = KILN_OK;
    for (int64_t n = 0; n < N && !s; n++)
        for (int64_t gi = 0; gi < group && !s; gi++) {
            const NN_T *xg = x + (n * C + gi * Cg) * insz, *wg = w + gi * Mg * K;
            NN_T *yg = y + (n * M + gi * Mg) * P;
            for (int64_t m = 0; b && m < Mg; m++)
                for (int64_t p = 0; p < P; p++) yg[m * P + p] = b[gi * Mg + m];
            if (K == 0) continue;
            for (int64_t p0 = 0; p0 < P && !s; p0 += pc) {
                int64_t p1 = KL_MIN(P, p0 + pc);
                if (direct) {
                    s = NN_GEMM(Mg, P, K, 1, wg, K, 1, xg, insz, 1, yg, P);
                    break;
                }
                NN_(im_col_walk)(g, Cg, p0, p1, xg, NULL, col);
                s = NN_GEMM(Mg, p1 - p0, K, 1, wg, K, 1, col, p1 - p0, 1, yg + p0, P);
            }
        }
    kl_nn_free(col);
    return s;
}

/* ConvTranspose: per (image, group) col = w_g^T x_g over chunks of input
 * positions, then col2im adds col into y (g: image = y, grid = x). */
static kiln_status NN_(conv_t)(const kl_nn_geom *g, int64_t N, int64_t C, int64_t M, int64_t group,
                               const NN_T *x, const NN_T *w, const NN_T *b, NN_T *y) {
    int64_t Cg = C / group, Mg = M / group, osz = 1, P = 1, prodk = 1;
    for (int d = 0; d < g->ns; d++) {
        osz *= g->in[d];
        P *= g->out[d];
        prodk *= g->k[d];
    }
    int64_t Kc = Mg * prodk, pc = KL_MAX(1, KL_MIN(P, NN_COL_BUDGET / KL_MAX(Kc, 1)));
    NN_T *col = kl_nn_alloc(Kc * pc, sizeof *col);
    if (!col) return KILN_ERR_NO_MEMORY;
    kiln_status s = KILN_OK;
    for (int64_t n = 0; n < N && !s; n++)
        for (int64_t gi = 0; gi < group && !s; gi++) {
            const NN_T *xg = x + (n * C + gi * Cg) * P, *wg = w + gi * Cg * Kc;
            NN_T *yg = y + (n * M + gi * Mg) * osz;
            for (int64_t m = 0; b && m < Mg; m++)
                for (int64_t p = 0; p < osz; p++) yg[m * osz + p] = b[gi * Mg + m];
            for (int64_t p0 = 0; p0 < P && !s && Kc > 0; p0 += pc) {
                int64_t p1 = KL_MIN(P, p0 + pc);
                memset(col, 0, (size_t)(Kc * (p1 - p0)) * sizeof *col);
                s = NN_GEMM(Kc, p1 - p0, Cg, 1, wg, 1, Kc, xg + p0, P, 1, col, p1 - p0);
                if (!s) NN_(im_col)(g, Mg, p0, p1, yg, col, false);
            }
        }
    kl_nn_free(col);
    return s;
}
