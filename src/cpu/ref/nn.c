/*
 * CPU reference kernels: the nn family table, element-buffer helpers and
 * the sliding-window geometry shared by convolutions and pooling.
 */
#include <string.h>

#include "cpu/ref/nn.h"

/* ---- element buffers ------------------------------------------------------------------ */

bool kl_nn_is_float(kiln_dtype t) {
    return t == KILN_DTYPE_FLOAT || t == KILN_DTYPE_DOUBLE || t == KILN_DTYPE_FLOAT16 || t == KILN_DTYPE_BFLOAT16;
}

void *kl_nn_alloc(int64_t n, size_t size) {
    if (n < 0) n = 0;
    size_t bytes;
    if (!kl_mul_size((size_t)(n ? n : 1), size, &bytes)) {
        void *p = kl_scratch_tls_alloc(bytes); /* the running context's scratch, if any */
        if (p) return p;
    }
    return kl_realloc_array(NULL, (size_t)(n ? n : 1), size);
}

void kl_nn_free(void *p) {
    if (!kl_scratch_tls_owns(p)) kl_free(p);
}

kiln_status kl_nn_as_f32(const kl_rt *t, const float **out, float **owned) {
    *owned = NULL;
    if (t->dtype == KILN_DTYPE_FLOAT) {
        *out = t->data;
        return KILN_OK;
    }
    float *v = kl_nn_alloc(t->count, sizeof *v);
    if (!v) return KILN_ERR_NO_MEMORY;
    if (t->dtype == KILN_DTYPE_FLOAT16) {
        const uint16_t *h = t->data;
        for (int64_t i = 0; i < t->count; i++) v[i] = kl_f16_to_f32(h[i]);
    } else if (t->dtype == KILN_DTYPE_BFLOAT16) {
        const uint16_t *h = t->data;
        for (int64_t i = 0; i < t->count; i++) v[i] = kl_bf16_to_f32(h[i]);
    } else {
        for (int64_t i = 0; i < t->count; i++) v[i] = (float)kl_rt_get_f64(t, i);
    }
    *out = *owned = v;
    return KILN_OK;
}

kiln_status kl_nn_as_f64(const kl_rt *t, double **out) {
    double *v = kl_nn_alloc(t->count, sizeof *v);
    *out = v;
    if (!v) return KILN_ERR_NO_MEMORY;
    if (t->dtype == KILN_DTYPE_FLOAT) {
        const float *f = t->data;
        for (int64_t i = 0; i < t->count; i++) v[i] = f[i];
    } else if (t->dtype == KILN_DTYPE_DOUBLE) {
        if (t->count) memcpy(v, t->data, (size_t)t->count * sizeof *v);
    } else {
        for (int64_t i = 0; i < t->count; i++) v[i] = kl_rt_get_f64(t, i);
    }
    return KILN_OK;
}

kiln_status kl_nn_as_i64(const kl_rt *t, int64_t **out) {
    int64_t *v = kl_nn_alloc(t->count, sizeof *v);
    *out = v;
    if (!v) return KILN_ERR_NO_MEMORY;
    for (int64_t i = 0; i < t->count; i++) v[i] = kl_rt_get_i64(t, i);
    return KILN_OK;
}

void kl_nn_store_f32(kl_rt *t, const float *v) {
    if (t->dtype == KILN_DTYPE_FLOAT) {
        if (t->count && (const void *)v != t->data) memcpy(t->data, v, (size_t)t->count * sizeof *v);
    } else if (t->dtype == KILN_DTYPE_FLOAT16) {
        uint16_t *h = t->data;
        for (int64_t i = 0; i < t->count; i++) h[i] = kl_f32_to_f16(v[i]);
    } else if (t->dtype == KILN_DTYPE_BFLOAT16) {
        uint16_t *h = t->data;
        for (int64_t i = 0; i < t->count; i++) h[i] = kl_f32_to_bf16(v[i]);
    } else {
        for (int64_t i = 0; i < t->count; i++) kl_rt_set_f64(t, i, v[i]);
    }
}

void kl_nn_store_f64(kl_rt *t, const double *v) {
    if (t->dtype == KILN_DTYPE_DOUBLE) {
        if (t->count && (const void *)v != t->data) memcpy(t->data, v, (size_t)t->count * sizeof *v);
    } else if (t->dtype == KILN_DTYPE_FLOAT) {
        float *f = t->data;
        for (int64_t i = 0; i < t->count; i++) f[i] = (float)v[i];
    } else {
        for (int64_t i = 0; i < t->count; i++) kl_rt_set_f64(t, i, v[i]);
    }
}

kiln_status kl_nn_out_f32(kl_rt *y, float **buf, float **owned) {
    *owned = NULL;
    if (y->dtype == KILN_DTYPE_FLOAT) {
        *buf = y->data;
        return KILN_OK;
    }
    *buf = *owned = kl_calloc((size_t)(y->count ? y->count : 1), sizeof(float));
    return *owned ? KILN_OK : KILN_ERR_NO_MEMORY;
}

void kl_nn_finish_f32(kl_rt *y, float *owned) {
    if (!owned) return;
    kl_nn_store_f32(y, owned);
    kl_nn_free(owned);
}

kiln_status kl_nn_input(kl_kctx *c, size_t i, const char *name, bool required, const kl_rt **out) {
    *out = i < c->n_in ? c->in[i] : NULL;
    if (!*out) {
        if (required) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "input %zu '%s' is missing", i, name);
        return KILN_OK;
    }
    if ((*out)->kind != KL_RT_TENSOR)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "input %zu '%s' must be a tensor", i, name);
    return KILN_OK;
}

kiln_status kl_nn_same_type(kl_kctx *c, size_t i, const char *name) {
    const kl_rt *a = c->in[0], *b = i < c->n_in ? c->in[i] : NULL;
    if (b && a && b->dtype != a->dtype)
        return kl_kctx_fail(c, KILN_ERR_TYPE, "input %zu '%s' has type %s but input 0 has %s", i, name,
                            kiln_dtype_name(b->dtype), kiln_dtype_name(a->dtype));
    return KILN_OK;
}

/* ---- sliding-window geometry ------------------------------------------------------------- */

kiln_status kl_nn_attr_ints(kl_kctx *c, const char *name, int n, int64_t lo, int64_t *out, bool *present) {
    const int64_t *v;
    int64_t cnt = kl_node_attr_ints(c->node, name, &v);
    if (present) *present = cnt >= 0;
    if (cnt < 0) return KILN_OK;
    if (cnt != n)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute '%s' has %lld values, expected %d", name,
                            (long long)cnt, n);
    for (int i = 0; i < n; i++) {
        if (v[i] < lo || v[i] > ((int64_t)1 << 40))
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "attribute '%s' value %lld is out of range", name,
                                (long long)v[i]);
        out[i] = v[i];
    }
    return KILN_OK;
}

kiln_status kl_nn_geom_init(kl_kctx *c, int ns, const int64_t *in, const int64_t *k, bool ceil_ok,
                            kl_nn_geom *g) {
    int64_t pads[2 * KILN_MAX_RANK] = {0};
    bool has_pads;
    memset(g, 0, sizeof *g);
    g->ns = ns;
    for (int i = 0; i < ns; i++) {
        g->in[i] = in[i];
        g->k[i] = k[i];
        g->s[i] = g->d[i] = 1;
    }
    KL_TRY(kl_nn_attr_ints(c, "strides", ns, 1, g->s, NULL));
    KL_TRY(kl_nn_attr_ints(c, "dilations", ns, 1, g->d, NULL));
    KL_TRY(kl_nn_attr_ints(c, "pads", 2 * ns, 0, pads, &has_pads));
    const char *ap = kl_node_attr_string(c->node, "auto_pad", "NOTSET");
    bool same = strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0;
    if (!same && strcmp(ap, "NOTSET") != 0 && strcmp(ap, "VALID") != 0 && ap[0])
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL,
                            "auto_pad '%s' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID", ap);
    if (has_pads) same = false;
    bool valid = !has_pads && strcmp(ap, "VALID") == 0;
    bool ceil = ceil_ok && kl_node_attr_int(c->node, "ceil_mode", 0) != 0;
    for (int i = 0; i < ns; i++) {
        int64_t s = g->s[i], ek, pb = 0, pe = 0;
        if (g->k[i] < 1 || g->k[i] > ((int64_t)1 << 40) || kl_mul_i64(g->k[i] - 1, g->d[i], &ek) ||
            ek > ((int64_t)1 << 50))
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL,
                                "kernel size %lld with dilation %lld on spatial axis %d is invalid",
                                (long long)g->k[i], (long long)g->d[i], i);
        ek += 1;
        if (same) {
            int64_t r = in[i] % s, total = KL_MAX(r == 0 ? ek - s : ek - r, 0);
            pb = strcmp(ap, "SAME_UPPER") == 0 ? total / 2 : total - total / 2;
            pe = total - pb;
        } else if (!valid) {
            pb = pads[i];
            pe = pads[ns + i];
        }
        int64_t ein = in[i] + pb + pe;
        if (ein < ek)
            return kl_kctx_fail(c, KILN_ERR_SHAPE,
                                "spatial axis %d: the window (%lld with dilation) is larger than the input "
                                "(%lld with padding)",
                                i, (long long)ek, (long long)ein);
        int64_t o = (ceil ? (ein - ek + s - 1) / s : (ein - ek) / s) + 1;
        if (ceil && (o - 1) * s >= in[i] + pb) o--;
        g->pb[i] = pb;
        g->pe[i] = pe;
        g->out[i] = o;
    }
    return KILN_OK;
}

/* ---- table ------------------------------------------------------------------------------ */

#define NN_FLOAT_INT (KL_T_FLOATS | KL_T(INT32) | KL_T(INT64) | KL_T(UINT32) | KL_T(UINT64))

const kl_kernel_def kl_ref_nn[] = {
    {"", "Conv", 1, 0, KL_T_FLOATS, kl_nn_conv},
    {"", "ConvTranspose", 1, 0, KL_T_FLOATS, kl_nn_conv_transpose},
    {"", "DeformConv", 19, 0, KL_T_FLOATS, kl_nn_deform_conv},
    {"", "AveragePool", 1, 0, KL_T_FLOATS, kl_nn_average_pool},
    {"", "MaxPool", 1, 0, KL_T_FLOATS | KL_T(INT8) | KL_T(UINT8), kl_nn_max_pool},
    {"", "LpPool", 1, 0, KL_T_FLOATS, kl_nn_lp_pool},
    {"", "GlobalAveragePool", 1, 0, KL_T_FLOATS, kl_nn_global_average_pool},
    {"", "GlobalMaxPool", 1, 0, KL_T_FLOATS, kl_nn_global_max_pool},
    {"", "GlobalLpPool", 1, 0, KL_T_FLOATS, kl_nn_global_lp_pool},
    {"", "MaxUnpool", 9, 0, KL_T_FLOATS, kl_nn_max_unpool},
    {"", "MaxRoiPool", 1, 0, KL_T_FLOATS, kl_nn_max_roi_pool},
    {"", "Gemm", 1, 0, NN_FLOAT_INT, kl_nn_gemm},
    {"", "MatMul", 1, 0, NN_FLOAT_INT, kl_nn_matmul},
    {"", "Einsum", 12, 0, KL_T_NUMERIC, kl_nn_einsum},
    {"", "Det", 11, 0, KL_T_FLOATS, kl_nn_det},
    {"", "Col2Im", 18, 0, KL_T_NUMERIC | KL_T(BOOL), kl_nn_col2im},
    {"", "GridSample", 16, 0, 0, kl_nn_grid_sample},
    {"", "AffineGrid", 20, 0, KL_T_FLOATS, kl_nn_affine_grid},
    {0},
};
