/*
 * CPU reference kernels, tensor family: shape manipulation and data
 * movement (Reshape, Flatten, Squeeze, Unsqueeze, Expand, Tile, Transpose,
 * Concat, Split, Slice, Pad, CenterCropPad, DepthToSpace, SpaceToDepth,
 * Compress, ReverseSequence).  Everything moves whole elements, so every
 * dtype works, strings and packed sub-byte types included.
 */
#include <string.h>

#include "cpu/ref/tensor.h"

/* An INTS attribute (or input `in` when the node's opset is >= `since`) into
 * vals (at most max); *n = -1 when neither is given. */
static kiln_status kl_tz_ints(kl_kctx *c, const char *attr, size_t in, int64_t since, int64_t *vals, int64_t max,
                              int64_t *n) {
    *n = -1;
    if (c->node->opset >= since) {
        kiln_status s = kl_ref_input_ints(c, in, vals, max, n);
        if (s) return s;
        return KILN_OK;
    }
    const int64_t *v;
    int64_t k = kl_node_attr_ints(c->node, attr, &v);
    if (k < 0) return KILN_OK;
    if (k > max) return kl_kctx_fail(c, KILN_ERR_SHAPE, "attribute '%s' has %lld values, at most %lld allowed", attr,
                                     (long long)k, (long long)max);
    if (k) memcpy(vals, v, (size_t)k * sizeof *v);
    *n = k;
    return KILN_OK;
}

/* Normalize n axes for rank r (each in [-r, r)), rejecting duplicates. */
static kiln_status kl_tz_axes(kl_kctx *c, int64_t *axes, int64_t n, int r, const char *what) {
    for (int64_t i = 0; i < n; i++) {
        if (axes[i] < -r || axes[i] >= r)
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "%s %lld is out of range for rank %d", what,
                                (long long)axes[i], r);
        if (axes[i] < 0) axes[i] += r;
        for (int64_t j = 0; j < i; j++)
            if (axes[j] == axes[i])
                return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "%s %lld appears twice", what, (long long)axes[i]);
    }
    return KILN_OK;
}

/* Dense output i of `dims` filled from src through per-axis strides. */
static kiln_status kl_tz_view_out(kl_kctx *c, size_t i, const kl_rt *src, int64_t soff, const int64_t *sstr, int rank,
                                  const int64_t *dims) {
    kl_rt *y = NULL;
    KL_TRY(kl_kctx_output(c, i, src->dtype, rank, dims, &y));
    int64_t dstr[KILN_MAX_RANK];
    kl_tz_strides(rank, dims, dstr);
    return kl_tz_strided_mt(c->pool, y, 0, dstr, src, soff, sstr, rank, dims);
}

/* ---- Reshape, Flatten, Squeeze, Unsqueeze ---------------------------------------- */

/* Reshape: 0 copies the input dim (unless allowzero), -1 is inferred. */
kiln_status kl_tz_reshape(kl_kctx *c) {
    kl_rt *x = NULL;
    KL_TRY(kl_tz_need(c, 0, "data", &x));
    int64_t shp[KILN_MAX_RANK], n, dims[KILN_MAX_RANK];
    KL_TRY(kl_tz_ints(c, "shape", 1, 5, shp, KILN_MAX_RANK, &n));
    if (n < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "the target shape is missing");
    bool allowzero = kl_node_attr_int(c->node, "allowzero", 0) != 0;
    int neg = -1;
    int64_t known = 1;
    for (int i = 0; i < (int)n; i++) {
        int64_t v = shp[i];
        if (v == 0 && !allowzero) {
            if (i >= x->rank)
                return kl_kctx_fail(c, KILN_ERR_SHAPE, "shape[%d] = 0 copies a dimension the input (rank %d) lacks", i,
                                    x->rank);
            v = x->dims[i];
        } else if (v == -1) {
            if (neg >= 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "shape has more than one -1");
            neg = i;
            dims[i] = 1;
            continue;
        } else if (v < -1) {
            return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "shape[%d] = %lld is invalid", i, (long long)v);
        }
        dims[i] = v;
        if (kl_mul_i64(known, v, &known)) return kl_kctx_fail(c, KILN_ERR_SHAPE, "target shape overflows");
    }
    if (neg >= 0) {
        if (known == 0 || x->count % known)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "cannot infer the -1 dimension: %lld elements into blocks of %lld",
                                (long long)x->count, (long long)known);
        dims[neg] = x->count / known;
    } else if (known != x->count) {
        char a[128];
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "cannot reshape %s (%lld elements) into %lld elements",
                            kl_rt_describe(x, a, sizeof a), (long long)x->count, (long long)known);
    }
    return kl_tz_output_copy(c, 0, x, (int)n, dims);
}

/* Flatten: [prod(d[:axis]), prod(d[axis:])]. */
kiln_status kl_tz_flatten(kl_kctx *c) {
    kl_rt *x = NULL;
    KL_TRY(kl_tz_need(c, 0, "input", &x));
    int64_t axis = kl_node_attr_int(c->node, "axis", 1);
    if (axis < -x->rank || axis > x->rank)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "axis %lld is out of range for rank %d", (long long)axis, x->rank);
    if (axis < 0) axis += x->rank;
    int64_t dims[2] = {1, 1};
    for (int i = 0; i < x->rank; i++)
        if (kl_mul_i64(dims[i >= axis], x->dims[i], &dims[i >= axis]))
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "flattened size overflows");
    return kl_tz_output_copy(c, 0, x, 2, dims);
}

/* Squeeze: drop the given size-1 axes (all size-1 axes by default). */
kiln_status kl_tz_squeeze(kl_kctx *c) {
    kl_rt *x = NULL;
    KL_TRY(kl_tz_need(c, 0, "data", &x));
    int64_t axes[KILN_MAX_RANK], n, dims[KILN_MAX_RANK];
    KL_TRY(kl_tz_ints(c, "axes", 1, 13, axes, KILN_MAX_RANK, &n));
    KL_TRY(kl_tz_axes(c, axes, n, x->rank, "axes entry"));
    bool drop[KILN_MAX_RANK] = {false};
    for (int64_t i = 0; i < n; i++) {
        if (x->dims[axes[i]] != 1)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "cannot squeeze axis %lld of size %lld", (long long)axes[i],
                                (long long)x->dims[axes[i]]);
        drop[axes[i]] = true;
    }
    int r = 0;
    for (int i = 0; i < x->rank; i++) /* no axes (or an empty list): every size-1 axis */
        if (!(n <= 0 ? x->dims[i] == 1 : drop[i])) dims[r++] = x->dims[i];
    return kl_tz_output_copy(c, 0, x, r, dims);
}

/* Unsqueeze: insert size-1 axes at the given positions of the output. */
kiln_status kl_tz_unsqueeze(kl_kctx *c) {
    kl_rt *x = NULL;
    KL_TRY(kl_tz_need(c, 0, "data", &x));
    int64_t axes[KILN_MAX_RANK], n, dims[KILN_MAX_RANK];
    KL_TRY(kl_tz_ints(c, "axes", 1, 13, axes, KILN_MAX_RANK, &n));
    if (n < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "axes are missing");
    int r = x->rank + (int)n;
    if (r > KILN_MAX_RANK) return kl_kctx_fail(c, KILN_ERR_UNSUPPORTED, "output rank %d exceeds %d", r, KILN_MAX_RANK);
    KL_TRY(kl_tz_axes(c, axes, n, r, "axes entry"));
    bool ins[KILN_MAX_RANK] = {false};
    for (int64_t i = 0; i < n; i++) ins[axes[i]] = true;
    for (int i = 0, k = 0; i < r; i++) dims[i] = ins[i] ? 1 : x->dims[k++];
    return kl_tz_output_copy(c, 0, x, r, dims);
}

/* ---- Expand, Tile, Transpose ------------------------------------------------------- */

/* Expand: broadcast the input to (input shape) x (given shape). */
kiln_status kl_tz_expand(kl_kctx *c) {
    kl_rt *x = NULL;
    KL_TRY(kl_tz_need(c, 0, "input", &x));
    int64_t shp[KILN_MAX_RANK], n, dims[KILN_MAX_RANK], st[KILN_MAX_RANK], sstr[KILN_MAX_RANK];
    kiln_status s = kl_ref_input_ints(c, 1, shp, KILN_MAX_RANK, &n);
    if (s) return kl_error_context(s, "shape: ");
    if (n < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "the shape input is missing");
    int r = KL_MAX(x->rank, (int)n);
    kl_tz_strides(x->rank, x->dims, st);
    for (int i = 0; i < r; i++) {
        int xi = i - (r - x->rank), si = i - (r - (int)n);
        int64_t a = xi >= 0 ? x->dims[xi] : 1, b = si >= 0 ? shp[si] : 1;
        if (b < 0) return kl_kctx_fail(c, KILN_ERR_SHAPE, "shape[%d] = %lld is negative", si, (long long)b);
        if (a != b && a != 1 && b != 1)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "input dimension %d (%lld) cannot be expanded to %lld", xi,
                                (long long)a, (long long)b);
        dims[i] = a == 1 ? b : a;
        sstr[i] = xi >= 0 && a != 1 ? st[xi] : 0;
    }
    return kl_tz_view_out(c, 0, x, 0, sstr, r, dims);
}

/* Tile: repeat the input repeats[i] times along each axis (opset 1-5: the
 * `tiles` count along one `axis`). */
kiln_status kl_tz_tile(kl_kctx *c) {
    kl_rt *x = NULL, *y = NULL;
    KL_TRY(kl_tz_need(c, 0, "input", &x));
    int64_t rep[KILN_MAX_RANK], n;
    if (c->node->opset < 6) {
        int64_t tiles, axis;
        int ax;
        KL_TRY(kl_ref_input_scalar_i64(c, 1, &tiles));
        KL_TRY(kl_ref_input_scalar_i64(c, 2, &axis));
        KL_TRY(kl_ref_axis(axis, x->rank, false, "axis", &ax));
        for (int i = 0; i < x->rank; i++) rep[i] = i == ax ? tiles : 1;
        n = x->rank;
    } else {
        kiln_status s = kl_ref_input_ints(c, 1, rep, KILN_MAX_RANK, &n);
        if (s) return kl_error_context(s, "repeats: ");
    }
    if (n != x->rank)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "repeats has %lld entries for an input of rank %d", (long long)n, x->rank);
    int64_t dims[KILN_MAX_RANK], vd[2 * KILN_MAX_RANK], vs[2 * KILN_MAX_RANK], vdst[2 * KILN_MAX_RANK], st[KILN_MAX_RANK];
    kl_tz_strides(x->rank, x->dims, st);
    for (int i = 0; i < x->rank; i++) {
        if (rep[i] < 0) return kl_kctx_fail(c, KILN_ERR_SHAPE, "repeats[%d] = %lld is negative", i, (long long)rep[i]);
        if (kl_mul_i64(x->dims[i], rep[i], &dims[i])) return kl_kctx_fail(c, KILN_ERR_SHAPE, "output shape overflows");
        vd[2 * i] = rep[i];
        vd[2 * i + 1] = x->dims[i];
        vs[2 * i] = 0;
        vs[2 * i + 1] = st[i];
    }
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, dims, &y));
    kl_tz_strides(2 * x->rank, vd, vdst);
    return kl_tz_strided(y, 0, vdst, x, 0, vs, 2 * x->rank, vd);
}

/* Transpose: output axis k is input axis perm[k] (default: reversed). */
kiln_status kl_tz_transpose(kl_kctx *c) {
    kl_rt *x = NULL;
    KL_TRY(kl_tz_need(c, 0, "data", &x));
    const int64_t *p;
    int64_t np = kl_node_attr_ints(c->node, "perm", &p);
    int r = x->rank;
    if (np >= 0 && np != r)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "perm has %lld entries for an input of rank %d", (long long)np, r);
    int64_t perm[KILN_MAX_RANK], dims[KILN_MAX_RANK], st[KILN_MAX_RANK], sstr[KILN_MAX_RANK];
    for (int i = 0; i < r; i++) perm[i] = np >= 0 ? p[i] : r - 1 - i;
    KL_TRY(kl_tz_axes(c, perm, r, r, "perm entry"));
    kl_tz_strides(r, x->dims, st);
    for (int i = 0; i < r; i++) {
        dims[i] = x->dims[perm[i]];
        sstr[i] = st[perm[i]];
    }
    return kl_tz_view_out(c, 0, x, 0, sstr, r, dims);
}

/* ---- Concat, Split, Slice --------------------------------------------------------- */

/* Concat: join the inputs along `axis`. */
kiln_status kl_tz_concat(kl_kctx *c) {
    kl_rt *x0 = NULL, *y = NULL;
    KL_TRY(kl_tz_need(c, 0, "inputs", &x0));
    if (x0->rank == 0) return kl_kctx_fail(c, KILN_ERR_SHAPE, "cannot concatenate scalars");
    int ax;
    KL_TRY(kl_ref_axis(kl_node_attr_int(c->node, "axis", 1), x0->rank, false, "axis", &ax));
    int64_t dims[KILN_MAX_RANK];
    memcpy(dims, x0->dims, sizeof dims);
    dims[ax] = 0;
    for (size_t i = 0; i < c->n_in; i++) {
        kl_rt *x = NULL;
        KL_TRY(kl_tz_need(c, i, "inputs", &x));
        char a[128], b[128];
        bool ok = x->dtype == x0->dtype && x->rank == x0->rank;
        for (int k = 0; ok && k < x->rank; k++) ok = k == ax || x->dims[k] == x0->dims[k];
        if (!ok)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "input %zu %s does not match input 0 %s outside axis %d", i,
                                kl_rt_describe(x, a, sizeof a), kl_rt_describe(x0, b, sizeof b), ax);
        dims[ax] += x->dims[ax];
    }
    KL_TRY(kl_kctx_output(c, 0, x0->dtype, x0->rank, dims, &y));
    int64_t ost[KILN_MAX_RANK], ist[KILN_MAX_RANK], at = 0;
    kl_tz_strides(y->rank, y->dims, ost);
    /* every input one contiguous slab of y when the dims before the axis are 1 */
    bool slabs = y->count > 0;
    for (int k = 0; k < ax && slabs; k++) slabs = y->dims[k] == 1;
    size_t esz = y->count ? y->nbytes / (size_t)y->count : 0;
    for (size_t i = 0; i < c->n_in; i++) {
        const kl_rt *x = c->in[i];
        /* produced into its slab already (a joined Concat, plan/memory.c): nothing to copy */
        if (slabs && x->count && (const char *)x->data == (const char *)y->data + (size_t)(at * ost[ax]) * esz) {
            at += x->dims[ax];
            continue;
        }
        kl_tz_strides(x->rank, x->dims, ist);
        KL_TRY(kl_tz_strided_mt(c->pool, y, at * ost[ax], ost, x, 0, ist, x->rank, x->dims));
        at += x->dims[ax];
    }
    return KILN_OK;
}

/* Split: cut the input along `axis` into the outputs (sizes from `split`,
 * else equal parts; from opset 18 the last part may be smaller). */
kiln_status kl_tz_split(kl_kctx *c) {
    kl_rt *x = NULL;
    KL_TRY(kl_tz_need(c, 0, "input", &x));
    if (x->rank == 0) return kl_kctx_fail(c, KILN_ERR_SHAPE, "cannot split a scalar");
    int ax;
    KL_TRY(kl_ref_axis(kl_node_attr_int(c->node, "axis", 0), x->rank, false, "axis", &ax));
    size_t nout = c->n_out;
    int64_t dim = x->dims[ax], n = -1, *sz = kl_calloc(nout ? nout : 1, sizeof *sz);
    if (!sz) return KILN_ERR_NO_MEMORY;
    kiln_status s = KILN_OK;
    if (c->node->opset >= 13 || (c->node->opset == 1 && c->n_in > 1 && c->in[1])) {
        if (c->n_in > 1 && c->in[1] && c->in[1]->count > 0) { /* an empty split is "not given" */
            s = kl_rt_to_i64(c->in[1], sz, (int64_t)nout, "split");
            if (!s) n = c->in[1]->count;
        }
    } else {
        const int64_t *v;
        n = kl_node_attr_ints(c->node, "split", &v);
        if (n > (int64_t)nout)
            s = kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "split has %lld entries for %zu outputs", (long long)n, nout);
        else if (n > 0)
            memcpy(sz, v, (size_t)n * sizeof *v);
    }
    if (!s && n >= 0) {
        int64_t total = 0;
        for (int64_t i = 0; !s && i < n; i++)
            if (sz[i] < 0 || kl_add_i64(total, sz[i], &total))
                s = kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "split[%lld] = %lld is invalid", (long long)i, (long long)sz[i]);
        if (!s && (n != (int64_t)nout || total != dim))
            s = kl_kctx_fail(c, KILN_ERR_SHAPE, "split has %lld entries summing to %lld; expected %zu summing to %lld",
                             (long long)n, (long long)total, nout, (long long)dim);
    } else if (!s) {
        int64_t parts = kl_node_attr_int(c->node, "num_outputs", (int64_t)nout);
        if (parts != (int64_t)nout || nout == 0)
            s = kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "num_outputs %lld does not match the %zu outputs",
                             (long long)parts, nout);
        else if (c->node->opset < 18 && dim % parts)
            s = kl_kctx_fail(c, KILN_ERR_SHAPE, "dimension %lld cannot be split into %lld equal parts", (long long)dim,
                             (long long)parts);
        int64_t chunk = parts ? (dim + parts - 1) / parts : 0;
        if (!s && dim - chunk * (parts - 1) < 0)
            s = kl_kctx_fail(c, KILN_ERR_SHAPE, "dimension %lld cannot be split into %lld parts of %lld",
                             (long long)dim, (long long)parts, (long long)chunk);
        for (size_t i = 0; !s && i < nout; i++) sz[i] = i + 1 < nout ? chunk : dim - chunk * (parts - 1);
    }
    int64_t st[KILN_MAX_RANK], dims[KILN_MAX_RANK], at = 0;
    kl_tz_strides(x->rank, x->dims, st);
    memcpy(dims, x->dims, sizeof dims);
    for (size_t i = 0; !s && i < nout; i++) {
        dims[ax] = sz[i];
        s = kl_tz_view_out(c, i, x, at * st[ax], st, x->rank, dims);
        at += sz[i];
    }
    kl_free(sz);
    return s;
}

/* Slice: starts/ends/axes/steps (attributes before opset 10), clamped as
 * the spec says: negative values count from the end; for step > 0 start
 * and end clamp to [0, dim], for step < 0 to [0, dim-1] and [-1, dim-1]. */
kiln_status kl_tz_slice(kl_kctx *c) {
    kl_rt *x = NULL;
    KL_TRY(kl_tz_need(c, 0, "data", &x));
    int r = x->rank;
    int64_t starts[KILN_MAX_RANK], ends[KILN_MAX_RANK], axes[KILN_MAX_RANK], steps[KILN_MAX_RANK];
    int64_t ns, ne, na = -1, nst = -1;
    if (c->node->opset < 10) {
        KL_TRY(kl_tz_ints(c, "starts", 0, 1000, starts, KILN_MAX_RANK, &ns));
        KL_TRY(kl_tz_ints(c, "ends", 0, 1000, ends, KILN_MAX_RANK, &ne));
        KL_TRY(kl_tz_ints(c, "axes", 0, 1000, axes, KILN_MAX_RANK, &na));
    } else {
        KL_TRY(kl_tz_ints(c, "", 1, 0, starts, KILN_MAX_RANK, &ns));
        KL_TRY(kl_tz_ints(c, "", 2, 0, ends, KILN_MAX_RANK, &ne));
        KL_TRY(kl_tz_ints(c, "", 3, 0, axes, KILN_MAX_RANK, &na));
        KL_TRY(kl_tz_ints(c, "", 4, 0, steps, KILN_MAX_RANK, &nst));
    }
    if (ns < 0 || ns != ne || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "starts, ends, axes and steps must have the same length");
    if (na < 0)
        for (int64_t i = 0; i < ns; i++) axes[i] = i;
    KL_TRY(kl_tz_axes(c, axes, ns, r, "axes entry"));
    int64_t st[KILN_MAX_RANK], dims[KILN_MAX_RANK], sstr[KILN_MAX_RANK], off = 0;
    kl_tz_strides(r, x->dims, st);
    memcpy(dims, x->dims, sizeof dims);
    memcpy(sstr, st, sizeof sstr);
    for (int64_t i = 0; i < ns; i++) {
        int a = (int)axes[i];
        int64_t d = x->dims[a], step = nst >= 0 ? steps[i] : 1, b = starts[i], e = ends[i], cnt = 0;
        if (step == 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "steps[%lld] is 0", (long long)i);
        if (b < 0) b += d;
        if (e < 0) e += d;
        if (step > 0) {
            b = b < 0 ? 0 : b > d ? d : b;
            e = e < 0 ? 0 : e > d ? d : e;
            if (b < e) cnt = (e - b - 1) / step + 1;
        } else {
            b = b < 0 ? 0 : b > d - 1 ? d - 1 : b;
            e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
            if (b > e) cnt = step == INT64_MIN ? 1 : (b - e - 1) / -step + 1;
        }
        dims[a] = cnt;
        if (cnt > 0) off += b * st[a];
        sstr[a] = cnt > 1 ? st[a] * step : st[a];
    }
    return kl_tz_view_out(c, 0, x, off, sstr, r, dims);
}

/* ---- Pad, CenterCropPad ----------------------------------------------------------- */

/* Source coordinate of output coordinate o along an axis of size d with
 * begin padding pb, or -1 for a padded (constant) position. */
static int64_t kl_tz_pad_src(int mode, int64_t o, int64_t pb, int64_t d) {
    int64_t s = o - pb;
    if (s >= 0 && s < d) return s;
    switch (mode) {
    case 1: { /* reflect */
        if (d == 1) return 0;
        int64_t p = 2 * (d - 1), m = ((s % p) + p) % p;
        return m >= d ? p - m : m;
    }
    case 2: return s < 0 ? 0 : d - 1;          /* edge */
    case 3: return ((s % d) + d) % d;          /* wrap */
    default: return -1;
    }
}

/* Pad: modes constant/reflect/edge/wrap; pads [b1..bn, e1..en] (negative
 * crops); pads and value as attributes before opset 11; axes from 18. */
kiln_status kl_tz_pad(kl_kctx *c) {
    kl_rt *x = NULL, *y = NULL, *val = NULL;
    KL_TRY(kl_tz_need(c, 0, "data", &x));
    int r = x->rank;
    int64_t pads[2 * KILN_MAX_RANK], np, axes[KILN_MAX_RANK], na = -1;
    if (c->node->opset < 11) {
        KL_TRY(kl_tz_ints(c, c->node->opset < 2 ? "paddings" : "pads", 0, 1000, pads, 2 * KILN_MAX_RANK, &np));
    } else {
        kiln_status s = kl_ref_input_ints(c, 1, pads, 2 * KILN_MAX_RANK, &np);
        if (s) return kl_error_context(s, "pads: ");
        if (c->n_in > 3 && c->in[3]) {
            s = kl_ref_input_ints(c, 3, axes, KILN_MAX_RANK, &na);
            if (s) return kl_error_context(s, "axes: ");
        }
    }
    if (na < 0) {
        na = r;
        for (int i = 0; i < r; i++) axes[i] = i;
    }
    KL_TRY(kl_tz_axes(c, axes, na, r, "axes entry"));
    if (np != 2 * na)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "pads has %lld entries; expected %lld", (long long)np,
                            (long long)(2 * na));
    int64_t pb[KILN_MAX_RANK] = {0}, pe[KILN_MAX_RANK] = {0}, dims[KILN_MAX_RANK];
    for (int64_t i = 0; i < na; i++) {
        pb[axes[i]] = pads[i];
        pe[axes[i]] = pads[na + i];
    }
    const char *ms = kl_node_attr_string(c->node, "mode", "constant");
    int mode = !strcmp(ms, "constant") ? 0 : !strcmp(ms, "reflect") ? 1 : !strcmp(ms, "edge") ? 2
               : !strcmp(ms, "wrap") && c->node->opset >= 19 ? 3 : -1;
    if (mode < 0) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "mode '%s' is not supported", ms);
    for (int i = 0; i < r; i++) {
        if (kl_add_i64(x->dims[i], pb[i], &dims[i]) || kl_add_i64(dims[i], pe[i], &dims[i]) || dims[i] < 0)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "padding axis %d of size %lld by (%lld, %lld) is invalid", i,
                                (long long)x->dims[i], (long long)pb[i], (long long)pe[i]);
        if (mode && x->dims[i] == 0 && dims[i] > 0)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "mode '%s' cannot pad the empty axis %d", ms, i);
    }
    KL_TRY(kl_kctx_output(c, 0, x->dtype, r, dims, &y));
    if (y->count == 0) return KILN_OK;
    int64_t ist[KILN_MAX_RANK], ost[KILN_MAX_RANK];
    kl_tz_strides(r, x->dims, ist);
    kl_tz_strides(r, dims, ost);
    if (mode == 0) {
        kiln_status s = KILN_OK;
        if (c->node->opset >= 11 && c->n_in > 2 && c->in[2] && c->in[2]->count > 0) {
            if (c->in[2]->dtype != x->dtype)
                return kl_kctx_fail(c, KILN_ERR_TYPE, "constant_value is %s, data is %s",
                                    kiln_dtype_name(c->in[2]->dtype), kiln_dtype_name(x->dtype));
            s = kl_tz_fill(y, c->in[2], 0);
        } else if (c->node->opset < 11) {
            KL_TRY(kl_rt_tensor(x->dtype, 0, NULL, &val));
            kl_rt_set_f64(val, 0, kl_node_attr_float(c->node, "value", 0.0f));
            s = kl_tz_fill(y, val, 0);
            kl_rt_unref(val);
        }
        KL_TRY(s);
        int64_t doff = 0, soff = 0, len[KILN_MAX_RANK];
        for (int i = 0; i < r; i++) {
            int64_t sb = pb[i] < 0 ? -pb[i] : 0, db = pb[i] > 0 ? pb[i] : 0;
            len[i] = KL_MIN(x->dims[i] - sb, dims[i] - db);
            if (len[i] <= 0) return KILN_OK;
            doff += db * ost[i];
            soff += sb * ist[i];
        }
        return kl_tz_strided(y, doff, ost, x, soff, ist, r, len);
    }
    /* reflect / edge / wrap: per-axis source maps */
    int64_t total = 0;
    for (int i = 0; i < r; i++) total += dims[i];
    int64_t *map = kl_calloc((size_t)(total ? total : 1), sizeof *map), *m[KILN_MAX_RANK], at = 0;
    if (!map) return KILN_ERR_NO_MEMORY;
    for (int i = 0; i < r; i++) {
        m[i] = map + at;
        for (int64_t o = 0; o < dims[i]; o++) m[i][o] = kl_tz_pad_src(mode, o, pb[i], x->dims[i]) * ist[i];
        at += dims[i];
    }
    size_t es = kl_tz_esize(x->dtype);
    int64_t idx[KILN_MAX_RANK] = {0};
    kiln_status s = KILN_OK;
    for (int64_t o = 0; !s && o < y->count; o++) {
        int64_t off = 0;
        for (int i = 0; i < r; i++) off += m[i][idx[i]];
        s = kl_tz_move1(y, o, x, off, es);
        for (int i = r - 1; i >= 0; i--) {
            if (++idx[i] < dims[i]) break;
            idx[i] = 0;
        }
    }
    kl_free(map);
    return s;
}

/* CenterCropPad: crop (window start rounded down) or zero-pad (extra on the
 * end) each listed axis to the target size. */
kiln_status kl_tz_center_crop_pad(kl_kctx *c) {
    kl_rt *x = NULL, *y = NULL;
    KL_TRY(kl_tz_need(c, 0, "input_data", &x));
    int r = x->rank;
    int64_t shp[KILN_MAX_RANK], n, axes[KILN_MAX_RANK], na;
    kiln_status s = kl_ref_input_ints(c, 1, shp, KILN_MAX_RANK, &n);
    if (s) return kl_error_context(s, "shape: ");
    KL_TRY(kl_tz_ints(c, "axes", 99, 1000, axes, KILN_MAX_RANK, &na));
    if (na < 0) {
        na = r;
        for (int i = 0; i < r; i++) axes[i] = i;
    }
    KL_TRY(kl_tz_axes(c, axes, na, r, "axes entry"));
    if (n != na)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "shape has %lld entries for %lld axes", (long long)n, (long long)na);
    int64_t dims[KILN_MAX_RANK], len[KILN_MAX_RANK], ist[KILN_MAX_RANK], ost[KILN_MAX_RANK], doff = 0, soff = 0;
    memcpy(dims, x->dims, sizeof dims);
    for (int64_t i = 0; i < na; i++) {
        if (shp[i] < 0) return kl_kctx_fail(c, KILN_ERR_SHAPE, "shape[%lld] is negative", (long long)i);
        dims[axes[i]] = shp[i];
    }
    KL_TRY(kl_kctx_output(c, 0, x->dtype, r, dims, &y));
    kl_tz_strides(r, x->dims, ist);
    kl_tz_strides(r, dims, ost);
    for (int i = 0; i < r; i++) {
        int64_t d = x->dims[i], t = dims[i];
        len[i] = KL_MIN(d, t);
        if (t < d) soff += (d - t) / 2 * ist[i];
        else doff += (t - d) / 2 * ost[i];
    }
    return kl_tz_strided(y, doff, ost, x, soff, ist, r, len);
}

/* ---- DepthToSpace, SpaceToDepth ---------------------------------------------------- */

/* Blocksize attribute and the rank-4 input. */
static kiln_status kl_tz_block(kl_kctx *c, kl_rt **x, int64_t *b) {
    KL_TRY(kl_tz_need(c, 0, "input", x));
    *b = kl_node_attr_int(c->node, "blocksize", 0);
    if (*b <= 0 || *b > (int64_t)1 << 31)
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "blocksize %lld is invalid", (long long)*b);
    if ((*x)->rank != 4) return kl_kctx_fail(c, KILN_ERR_SHAPE, "input must have rank 4, not %d", (*x)->rank);
    return KILN_OK;
}

/* DepthToSpace: [N,C,H,W] -> [N,C/b²,H*b,W*b], DCR or CRD channel order. */
kiln_status kl_tz_depth_to_space(kl_kctx *c) {
    kl_rt *x = NULL, *y = NULL;
    int64_t b;
    KL_TRY(kl_tz_block(c, &x, &b));
    const char *mode = kl_node_attr_string(c->node, "mode", "DCR");
    bool crd = !strcmp(mode, "CRD");
    if (!crd && strcmp(mode, "DCR")) return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "mode '%s' is invalid", mode);
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    if (C % (b * b)) return kl_kctx_fail(c, KILN_ERR_SHAPE, "channels %lld are not divisible by blocksize² %lld",
                                         (long long)C, (long long)(b * b));
    int64_t Co = C / (b * b), dims[4] = {N, Co, 0, 0};
    if (kl_mul_i64(H, b, &dims[2]) || kl_mul_i64(W, b, &dims[3]))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "output size overflows");
    KL_TRY(kl_kctx_output(c, 0, x->dtype, 4, dims, &y));
    if (y->count == 0) return KILN_OK;
    int64_t vd[6] = {N, Co, H, b, W, b}, vdst[6], hw = H * W;
    int64_t vs[6] = {C * hw, crd ? b * b * hw : hw, W, crd ? b * hw : b * Co * hw, 1, crd ? hw : Co * hw};
    kl_tz_strides(6, vd, vdst);
    return kl_tz_strided(y, 0, vdst, x, 0, vs, 6, vd);
}

/* SpaceToDepth: [N,C,H,W] -> [N,C*b²,H/b,W/b]. */
kiln_status kl_tz_space_to_depth(kl_kctx *c) {
    kl_rt *x = NULL, *y = NULL;
    int64_t b;
    KL_TRY(kl_tz_block(c, &x, &b));
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    if (H % b || W % b)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "height %lld and width %lld must be divisible by blocksize %lld",
                            (long long)H, (long long)W, (long long)b);
    int64_t dims[4] = {N, 0, H / b, W / b};
    if (kl_mul_i64(C, b * b, &dims[1])) return kl_kctx_fail(c, KILN_ERR_SHAPE, "output size overflows");
    KL_TRY(kl_kctx_output(c, 0, x->dtype, 4, dims, &y));
    if (y->count == 0) return KILN_OK;
    int64_t vd[6] = {N, b, b, C, H / b, W / b}, vdst[6];
    int64_t vs[6] = {C * H * W, W, 1, H * W, b * W, b};
    kl_tz_strides(6, vd, vdst);
    return kl_tz_strided(y, 0, vdst, x, 0, vs, 6, vd);
}

/* ---- Compress, ReverseSequence ----------------------------------------------------- */

/* Compress: the slices along `axis` (or elements of the flattened input)
 * whose condition is true; entries past the condition's end are dropped. */
kiln_status kl_tz_compress(kl_kctx *c) {
    kl_rt *x = NULL, *cond = NULL, *y = NULL;
    KL_TRY(kl_tz_need(c, 0, "input", &x));
    KL_TRY(kl_tz_need(c, 1, "condition", &cond));
    if (cond->rank != 1 || cond->dtype == KILN_DTYPE_STRING)
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "condition must be a 1-D bool tensor");
    bool has_axis = kl_node_attr(c->node, "axis") != NULL;
    int ax = 0;
    int64_t outer = 1, d = x->count, inner = 1;
    if (has_axis) {
        KL_TRY(kl_ref_axis(kl_node_attr_int(c->node, "axis", 0), x->rank, false, "axis", &ax));
        d = x->dims[ax];
        for (int i = 0; i < ax; i++) outer = kl_tz_mulw(outer, x->dims[i]);
        for (int i = ax + 1; i < x->rank; i++) inner = kl_tz_mulw(inner, x->dims[i]);
    }
    int64_t kept = 0;
    for (int64_t i = 0; i < cond->count; i++) {
        if (kl_rt_get_f64(cond, i) == 0.0) continue;
        if (i >= d)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "condition entry %lld is true but the axis has only %lld entries",
                                (long long)i, (long long)d);
        kept++;
    }
    int64_t dims[KILN_MAX_RANK];
    if (has_axis) {
        memcpy(dims, x->dims, sizeof dims);
        dims[ax] = kept;
    } else {
        dims[0] = kept;
    }
    KL_TRY(kl_kctx_output(c, 0, x->dtype, has_axis ? x->rank : 1, dims, &y));
    if (y->count == 0) return KILN_OK;
    int64_t o = 0;
    for (int64_t p = 0; p < outer; p++)
        for (int64_t i = 0; i < cond->count && i < d; i++)
            if (kl_rt_get_f64(cond, i) != 0.0) {
                KL_TRY(kl_tz_copy(y, o, x, (p * d + i) * inner, inner));
                o += inner;
            }
    return KILN_OK;
}

/* ReverseSequence: reverse the first seq_lens[b] entries along time_axis of
 * each batch entry b. */
kiln_status kl_tz_reverse_sequence(kl_kctx *c) {
    kl_rt *x = NULL, *lens = NULL, *y = NULL;
    KL_TRY(kl_tz_need(c, 0, "input", &x));
    KL_TRY(kl_tz_need(c, 1, "sequence_lens", &lens));
    int64_t ta = kl_node_attr_int(c->node, "time_axis", 0), ba = kl_node_attr_int(c->node, "batch_axis", 1);
    if (x->rank < 2 || !((ta == 0 && ba == 1) || (ta == 1 && ba == 0)))
        return kl_kctx_fail(c, KILN_ERR_INVALID_MODEL, "time_axis %lld and batch_axis %lld must be 0 and 1 of a rank >= 2 input",
                            (long long)ta, (long long)ba);
    int64_t B = x->dims[ba], T = x->dims[ta], st[KILN_MAX_RANK], inner;
    if (lens->count != B || !kl_dtype_is_integer(lens->dtype))
        return kl_kctx_fail(c, KILN_ERR_SHAPE, "sequence_lens must be an integer tensor of %lld entries", (long long)B);
    kl_tz_strides(x->rank, x->dims, st);
    inner = st[1];
    for (int64_t b = 0; b < B; b++) {
        int64_t L = kl_rt_get_i64(lens, b);
        if (L < 0 || L > T)
            return kl_kctx_fail(c, KILN_ERR_SHAPE, "sequence_lens[%lld] = %lld is outside [0, %lld]", (long long)b,
                                (long long)L, (long long)T);
    }
    KL_TRY(kl_kctx_output(c, 0, x->dtype, x->rank, x->dims, &y));
    if (y->count == 0) return KILN_OK;
    for (int64_t b = 0; b < B; b++) {
        int64_t L = kl_rt_get_i64(lens, b);
        for (int64_t t = 0; t < T; t++) {
            int64_t src = t < L ? L - 1 - t : t;
            KL_TRY(kl_tz_copy(y, b * st[ba] + t * st[ta], x, b * st[ba] + src * st[ta], inner));
        }
    }
    return KILN_OK;
}
