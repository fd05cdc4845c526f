/*
 * misc.c — schemas and shape/type inference for the operators no other
 * family takes: random generators, detection (NonMaxSuppression, RoiAlign),
 * signal processing (DFT, STFT, windows, MelWeightMatrix), strings, image
 * decoding, losses, the ai.onnx.ml domain and ai.onnx.preview.training.
 *
 * Inference here is deliberately conservative: a dimension is set only when
 * it follows from known inputs and constant data; the rest stay unknown so
 * that a valid model never gets a spurious conflict.
 */
#include <stdio.h>
#include <string.h>

#include "ops/infer_util.h"

/* Largest constant read from an input or attribute list for shapes. */
#define MISC_MAX_CONST 64

/* ---- helpers --------------------------------------------------------------- */

/* True if output i exists and was not left out (""). */
static bool out_used(const kl_infer_ctx *c, size_t i) {
    return i < c->node->n_outputs && c->node->outputs[i] != NULL;
}

/* Set output i (when used) to a tensor of `dt` and `shape` (NULL: unknown). */
static kiln_status set_out(kl_infer_ctx *c, size_t i, kiln_dtype dt, const kl_shape *shape) {
    return out_used(c, i) ? kl_infer_set_output(c, i, dt, shape) : KILN_OK;
}

/* Set output i to the shape of input `in` with element type `dt`. */
static kiln_status set_like_input(kl_infer_ctx *c, size_t i, size_t in, kiln_dtype dt) {
    return set_out(c, i, dt, kl_infer_input_shape(c, in));
}

/* A scalar (or one-element) integer constant input; false if unknown. */
static bool const_i64(const kl_infer_ctx *c, size_t i, int64_t *out) {
    const kl_tensor *t = kl_infer_input_const(c, i);
    if (t && t->count == 1 && kl_tensor_to_i64(t, out, 1)) return true;
    const kl_symval *s = kl_infer_input_sym(c, i);
    if (s && s->count == 1 && s->v[0].value >= 0) {
        *out = s->v[0].value;
        return true;
    }
    return false;
}

/* A shape of `rank` unknown dims in the arena. */
static kiln_status new_shape(kl_infer_ctx *c, int rank, kl_shape *s) {
    return kl_infer_shape_new(c, rank, s);
}

/* Known dim (value >= 0) or unknown. */
static kl_dim known(int64_t v) {
    kl_dim d = {v >= 0 ? v : -1, NULL};
    return d;
}

/* An INT attribute naming an element type: *out = its value, or `dflt`
 * when absent; an invalid value is an error naming the attribute. */
static kiln_status attr_dtype(kl_infer_ctx *c, const char *name, kiln_dtype dflt,
                              kiln_dtype *out) {
    const kl_attr *a = kl_node_attr(c->node, name);
    *out = dflt;
    if (!a || a->type != KL_ATTR_INT) return KILN_OK;
    if (a->i < INT32_MIN || a->i > INT32_MAX || !kl_dtype_valid((int32_t)a->i))
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "attribute '%s' = %lld is not an element type",
                             name, (long long)a->i);
    *out = (kiln_dtype)a->i;
    return KILN_OK;
}

/* A dtype known for input i that is not `want` is a type error. */
static kiln_status want_dtype(kl_infer_ctx *c, size_t i, kiln_dtype want) {
    kiln_dtype d = kl_infer_input_dtype(c, i);
    if (d == KILN_DTYPE_UNDEFINED || d == want) return KILN_OK;
    return kl_infer_fail(c, KILN_ERR_TYPE, "input %zu must be %s, not %s", i,
                         kiln_dtype_name(want), kiln_dtype_name(d));
}

/* Number of entries of a list attribute, or -1 when absent. */
static int64_t attr_len(const kl_infer_ctx *c, const char *name) {
    const kl_attr *a = kl_node_attr(c->node, name);
    return a ? (int64_t)a->n : -1;
}

/* The batch dim N of an ML op's input of shape [N,C] or [C] (N = 1);
 * false when the rank is unknown.  Rank > 2 is a shape error. */
static kiln_status ml_batch(kl_infer_ctx *c, kl_dim *n, bool *ok) {
    const kl_shape *s = kl_infer_input_shape(c, 0);
    *ok = false;
    if (!s) return KILN_OK;
    if (s->rank > 2)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "input must be [N,C] or [C], got rank %d", s->rank);
    *n = s->rank == 2 ? s->dims[0] : known(1);
    *ok = true;
    return KILN_OK;
}

/* Set output i to [N] (rank 1) or [N, cols] (rank 2) from the ML batch. */
static kiln_status set_ml_rows(kl_infer_ctx *c, size_t i, kiln_dtype dt, int rank, kl_dim cols) {
    kl_dim n;
    bool ok;
    KL_TRY(ml_batch(c, &n, &ok));
    if (!ok) return set_out(c, i, dt, NULL);
    kl_shape s;
    KL_TRY(new_shape(c, rank, &s));
    s.dims[0] = n;
    if (rank == 2) s.dims[1] = cols;
    return set_out(c, i, dt, &s);
}

/* ---- random ------------------------------------------------------------------- */

/* Bernoulli: input's shape; dtype attribute or the input's type. */
static kiln_status infer_bernoulli(kl_infer_ctx *c) {
    kiln_dtype dt;
    KL_TRY(attr_dtype(c, "dtype", kl_infer_input_dtype(c, 0), &dt));
    return set_like_input(c, 0, 0, dt);
}

/* RandomUniform/RandomNormal: the `shape` attribute, dtype default float. */
static kiln_status infer_random(kl_infer_ctx *c) {
    kiln_dtype dt;
    KL_TRY(attr_dtype(c, "dtype", KILN_DTYPE_FLOAT, &dt));
    const int64_t *dims;
    int64_t r = kl_node_attr_ints(c->node, "shape", &dims);
    if (r < 0) return set_out(c, 0, dt, NULL);
    if (r > KILN_MAX_RANK)
        return kl_infer_fail(c, KILN_ERR_UNSUPPORTED, "shape has %lld dims; kiln's limit is %d",
                             (long long)r, KILN_MAX_RANK);
    kl_shape s;
    KL_TRY(new_shape(c, (int)r, &s));
    for (int64_t k = 0; k < r; k++) {
        if (dims[k] < 0)
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "shape[%lld] = %lld is negative",
                                 (long long)k, (long long)dims[k]);
        s.dims[k] = known(dims[k]);
    }
    return set_out(c, 0, dt, &s);
}

/* RandomUniformLike/RandomNormalLike: input's shape; dtype attribute or
 * the input's type. */
static kiln_status infer_random_like(kl_infer_ctx *c) {
    kiln_dtype dt;
    KL_TRY(attr_dtype(c, "dtype", kl_infer_input_dtype(c, 0), &dt));
    return set_like_input(c, 0, 0, dt);
}

/* Multinomial: [batch_size, sample_size] of int32 (default) or int64. */
static kiln_status infer_multinomial(kl_infer_ctx *c) {
    kiln_dtype dt;
    KL_TRY(attr_dtype(c, "dtype", KILN_DTYPE_INT32, &dt));
    if (dt != KILN_DTYPE_INT32 && dt != KILN_DTYPE_INT64)
        return kl_infer_fail(c, KILN_ERR_TYPE, "dtype must be int32 or int64, not %s",
                             kiln_dtype_name(dt));
    const kl_shape *in = kl_infer_input_shape(c, 0);
    if (in && in->rank != 2)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "input must be [batch_size, class_size], got rank %d",
                             in->rank);
    kl_shape s;
    KL_TRY(new_shape(c, 2, &s));
    if (in) s.dims[0] = in->dims[0];
    s.dims[1] = known(kl_node_attr_int(c->node, "sample_size", 1));
    return set_out(c, 0, dt, &s);
}

/* ---- detection ---------------------------------------------------------------- */

/* NonMaxSuppression: int64 [num_selected, 3]. */
static kiln_status infer_nms(kl_infer_ctx *c) {
    kl_shape s;
    KL_TRY(new_shape(c, 2, &s));
    s.dims[1] = known(3);
    return set_out(c, 0, KILN_DTYPE_INT64, &s);
}

/* RoiAlign: [num_rois, C, output_height, output_width] of X's type. */
static kiln_status infer_roi_align(kl_infer_ctx *c) {
    const kl_shape *x = kl_infer_input_shape(c, 0), *rois = kl_infer_input_shape(c, 1),
                   *bi = kl_infer_input_shape(c, 2);
    if (x && x->rank != 4)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "X must be 4-D [N,C,H,W], got rank %d", x->rank);
    if (rois && rois->rank != 2)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "rois must be 2-D [num_rois,4], got rank %d",
                             rois->rank);
    if (bi && bi->rank != 1)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "batch_indices must be 1-D, got rank %d", bi->rank);
    kl_shape s;
    KL_TRY(new_shape(c, 4, &s));
    if (rois && (rois->dims[0].value >= 0 || rois->dims[0].param)) s.dims[0] = rois->dims[0];
    else if (bi) s.dims[0] = bi->dims[0];
    if (x) s.dims[1] = x->dims[1];
    s.dims[2] = known(kl_node_attr_int(c->node, "output_height", 1));
    s.dims[3] = known(kl_node_attr_int(c->node, "output_width", 1));
    return set_out(c, 0, kl_infer_input_dtype(c, 0), &s);
}

/* ---- signal processing -------------------------------------------------------- */

/* DFT (17: axis attribute, default 1; 20: axis input, default -2): the
 * input's shape with the last dim 2 (1 for an inverse one-sided transform)
 * and the transformed axis resized by dft_length / onesided. */
static kiln_status infer_dft(kl_infer_ctx *c) {
    const kl_shape *in = kl_infer_input_shape(c, 0);
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    if (!in) return set_out(c, 0, dt, NULL);
    int r = in->rank, ax = -1;
    if (r < 2)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "input must have rank >= 2 ([..., 1 or 2]), got %d",
                             r);
    bool inverse = kl_node_attr_int(c->node, "inverse", 0) != 0;
    bool onesided = kl_node_attr_int(c->node, "onesided", 0) != 0;
    int64_t axis = -2, len = -1;
    bool axis_known = true;
    if (c->node->opset < 20) axis = kl_node_attr_int(c->node, "axis", 1);
    else if (kl_infer_has_input(c, 2)) axis_known = const_i64(c, 2, &axis);
    bool len_given = kl_infer_has_input(c, 1);
    if (len_given && (!const_i64(c, 1, &len) || len < 0)) len = -1;
    if (axis_known && (!kl_infer_axis(axis, r, &ax) || ax == r - 1))
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "axis %lld is out of range for rank %d",
                             (long long)axis, r);
    kl_shape s;
    KL_TRY(new_shape(c, r, &s));
    for (int d = 0; d < r - 1; d++) s.dims[d] = in->dims[d];
    s.dims[r - 1] = known(inverse && onesided ? 1 : 2);
    if (!onesided && !len_given) return set_out(c, 0, dt, &s);
    if (!axis_known) {
        for (int d = 1; d < r - 1; d++) s.dims[d] = known(-1);
        return set_out(c, 0, dt, &s);
    }
    int64_t n = len_given ? len : in->dims[ax].value;
    kl_dim out = {-1, NULL};
    if (!onesided) out = known(n);
    else if (!inverse && n >= 0) out = known(n / 2 + 1);
    else if (inverse && len_given) out = known(len);
    else if (inverse && n >= 1) out = known(2 * (n - 1));
    s.dims[ax] = out;
    return set_out(c, 0, dt, &s);
}

/* STFT: [batch, frames, bins, 2]; frames and bins need the signal length,
 * frame_step and the frame length (input 3 or the window's length). */
static kiln_status infer_stft(kl_infer_ctx *c) {
    const kl_shape *sig = kl_infer_input_shape(c, 0), *win = kl_infer_input_shape(c, 2);
    if (sig && sig->rank != 3)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "signal must be [batch, length, 1 or 2], got rank %d",
                             sig->rank);
    kl_shape s;
    KL_TRY(new_shape(c, 4, &s));
    s.dims[3] = known(2);
    if (sig) s.dims[0] = sig->dims[0];
    int64_t fl = -1, step = -1;
    if (kl_infer_has_input(c, 3)) {
        if (!const_i64(c, 3, &fl)) fl = -1;
    } else if (win && win->rank == 1) {
        fl = win->dims[0].value;
    }
    bool onesided = kl_node_attr_int(c->node, "onesided", 1) != 0;
    if (fl > 0) s.dims[2] = known(onesided ? fl / 2 + 1 : fl);
    if (sig && sig->dims[1].value >= 0 && fl > 0 && const_i64(c, 1, &step) && step > 0 &&
        sig->dims[1].value >= fl)
        s.dims[1] = known((sig->dims[1].value - fl) / step + 1);
    return set_out(c, 0, kl_infer_input_dtype(c, 0), &s);
}

/* Blackman/Hamming/HannWindow: 1-D [size] of output_datatype (float). */
static kiln_status infer_window(kl_infer_ctx *c) {
    kiln_dtype dt;
    KL_TRY(attr_dtype(c, "output_datatype", KILN_DTYPE_FLOAT, &dt));
    int64_t n;
    kl_shape s;
    KL_TRY(new_shape(c, 1, &s));
    if (const_i64(c, 0, &n) && n >= 0) s.dims[0] = known(n);
    return set_out(c, 0, dt, &s);
}

/* MelWeightMatrix: [floor(dft_length/2)+1, num_mel_bins]. */
static kiln_status infer_mel_weight_matrix(kl_infer_ctx *c) {
    kiln_dtype dt;
    KL_TRY(attr_dtype(c, "output_datatype", KILN_DTYPE_FLOAT, &dt));
    int64_t bins, dft;
    kl_shape s;
    KL_TRY(new_shape(c, 2, &s));
    if (const_i64(c, 1, &dft) && dft >= 0) s.dims[0] = known(dft / 2 + 1);
    if (const_i64(c, 0, &bins) && bins >= 0) s.dims[1] = known(bins);
    return set_out(c, 0, dt, &s);
}

/* ---- strings ------------------------------------------------------------------ */

/* StringConcat: broadcast of the two string inputs. */
static kiln_status infer_string_concat(kl_infer_ctx *c) {
    KL_TRY(want_dtype(c, 0, KILN_DTYPE_STRING));
    KL_TRY(want_dtype(c, 1, KILN_DTYPE_STRING));
    const kl_shape *a = kl_infer_input_shape(c, 0), *b = kl_infer_input_shape(c, 1);
    if (!a || !b) return set_out(c, 0, KILN_DTYPE_STRING, NULL);
    kl_shape s;
    KL_TRY(kl_infer_broadcast(c, a, b, &s));
    return set_out(c, 0, KILN_DTYPE_STRING, &s);
}

/* StringNormalizer: [C] -> [C'], [1,C] -> [1,C'] (stopwords may remove). */
static kiln_status infer_string_normalizer(kl_infer_ctx *c) {
    KL_TRY(want_dtype(c, 0, KILN_DTYPE_STRING));
    const kl_shape *in = kl_infer_input_shape(c, 0);
    if (!in) return set_out(c, 0, KILN_DTYPE_STRING, NULL);
    if (in->rank != 1 && in->rank != 2)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "input must be [C] or [1,C], got rank %d", in->rank);
    kl_shape s;
    KL_TRY(new_shape(c, in->rank, &s));
    if (in->rank == 2) s.dims[0] = in->dims[0];
    return set_out(c, 0, KILN_DTYPE_STRING, &s);
}

/* StringSplit: substrings [..., max_splits] (string), counts [...] (int64). */
static kiln_status infer_string_split(kl_infer_ctx *c) {
    KL_TRY(want_dtype(c, 0, KILN_DTYPE_STRING));
    const kl_shape *in = kl_infer_input_shape(c, 0);
    if (!in) {
        KL_TRY(set_out(c, 0, KILN_DTYPE_STRING, NULL));
        return set_out(c, 1, KILN_DTYPE_INT64, NULL);
    }
    kl_shape s;
    KL_TRY(new_shape(c, in->rank + 1, &s));
    for (int d = 0; d < in->rank; d++) s.dims[d] = in->dims[d];
    KL_TRY(set_out(c, 0, KILN_DTYPE_STRING, &s));
    return set_out(c, 1, KILN_DTYPE_INT64, in);
}

/* RegexFullMatch: bool of the input's shape. */
static kiln_status infer_regex_full_match(kl_infer_ctx *c) {
    KL_TRY(want_dtype(c, 0, KILN_DTYPE_STRING));
    return set_like_input(c, 0, 0, KILN_DTYPE_BOOL);
}

/* TfIdfVectorizer: float [max(ngram_indexes)+1] or [N, that]. */
static kiln_status infer_tfidf(kl_infer_ctx *c) {
    const int64_t *idx;
    int64_t n = kl_node_attr_ints(c->node, "ngram_indexes", &idx), mx = -1;
    for (int64_t k = 0; k < n; k++) {
        if (idx[k] < 0)
            return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "ngram_indexes[%lld] = %lld is negative",
                                 (long long)k, (long long)idx[k]);
        if (idx[k] > mx) mx = idx[k];
    }
    const kl_shape *in = kl_infer_input_shape(c, 0);
    if (!in) return set_out(c, 0, KILN_DTYPE_FLOAT, NULL);
    if (in->rank != 1 && in->rank != 2)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "input must be [C] or [N,C], got rank %d", in->rank);
    kl_shape s;
    KL_TRY(new_shape(c, in->rank, &s));
    if (in->rank == 2) s.dims[0] = in->dims[0];
    if (mx >= 0 && mx < INT64_MAX) s.dims[in->rank - 1] = known(mx + 1);
    return set_out(c, 0, KILN_DTYPE_FLOAT, &s);
}

/* ---- image -------------------------------------------------------------------- */

/* ImageDecoder: uint8 [H, W, 3] (RGB, BGR) or [H, W, 1] (Grayscale). */
static kiln_status infer_image_decoder(kl_infer_ctx *c) {
    KL_TRY(want_dtype(c, 0, KILN_DTYPE_UINT8));
    const char *fmt = kl_node_attr_string(c->node, "pixel_format", "RGB");
    int64_t ch;
    if (!strcmp(fmt, "RGB") || !strcmp(fmt, "BGR")) ch = 3;
    else if (!strcmp(fmt, "Grayscale")) ch = 1;
    else
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "pixel_format '%s' is not RGB, BGR or Grayscale", fmt);
    kl_shape s;
    KL_TRY(new_shape(c, 3, &s));
    s.dims[2] = known(ch);
    return set_out(c, 0, KILN_DTYPE_UINT8, &s);
}

/* ---- losses ------------------------------------------------------------------- */

/* NegativeLogLikelihoodLoss / SoftmaxCrossEntropyLoss: input [N,C,d...],
 * target [N,d...]; loss is the target's shape for reduction 'none', else a
 * scalar; SCE's optional log_prob has the input's shape. */
static kiln_status infer_loss(kl_infer_ctx *c) {
    const kl_shape *in = kl_infer_input_shape(c, 0), *tg = kl_infer_input_shape(c, 1);
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    if (in && in->rank < 2)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "input must be [N, C, ...], got rank %d", in->rank);
    if (in && tg && tg->rank != in->rank - 1)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "target has rank %d; expected input rank - 1 = %d",
                             tg->rank, in->rank - 1);
    const char *red = kl_node_attr_string(c->node, "reduction", "mean");
    if (strcmp(red, "none") && strcmp(red, "sum") && strcmp(red, "mean"))
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "reduction '%s' is not none, sum or mean", red);
    if (!strcmp(red, "none")) {
        if (tg) KL_TRY(set_out(c, 0, dt, tg));
        else if (in) {
            kl_shape s;
            KL_TRY(new_shape(c, in->rank - 1, &s));
            s.dims[0] = in->dims[0];
            for (int d = 2; d < in->rank; d++) s.dims[d - 1] = in->dims[d];
            KL_TRY(set_out(c, 0, dt, &s));
        } else KL_TRY(set_out(c, 0, dt, NULL));
    } else {
        kl_shape scalar = {0, NULL};
        KL_TRY(set_out(c, 0, dt, &scalar));
    }
    return set_out(c, 1, dt, in);
}

/* ---- ai.onnx.ml ------------------------------------------------------------------ */

/* Same shape and type as the input (Binarizer, Imputer). */
static kiln_status infer_same(kl_infer_ctx *c) {
    return set_like_input(c, 0, 0, kl_infer_input_dtype(c, 0));
}

/* Same shape as the input, float (Normalizer, Scaler). */
static kiln_status infer_same_float(kl_infer_ctx *c) {
    return set_like_input(c, 0, 0, KILN_DTYPE_FLOAT);
}

/* ArrayFeatureExtractor: X's dims but the last, then the index count. */
static kiln_status infer_array_feature_extractor(kl_infer_ctx *c) {
    KL_TRY(want_dtype(c, 1, KILN_DTYPE_INT64));
    const kl_shape *x = kl_infer_input_shape(c, 0), *y = kl_infer_input_shape(c, 1);
    kiln_dtype dt = kl_infer_input_dtype(c, 0);
    if (!x || x->rank < 2) return set_out(c, 0, dt, NULL);
    kl_shape s;
    KL_TRY(new_shape(c, x->rank, &s));
    for (int d = 0; d < x->rank - 1; d++) s.dims[d] = x->dims[d];
    int64_t n;
    if (y && y->rank >= 1 && kl_shape_numel(y, &n)) s.dims[x->rank - 1] = known(n);
    return set_out(c, 0, dt, &s);
}

/* CastMap: 1-D of the cast_to type. */
static kiln_status infer_cast_map(kl_infer_ctx *c) {
    const char *to = kl_node_attr_string(c->node, "cast_to", "TO_FLOAT");
    kiln_dtype dt;
    if (!strcmp(to, "TO_FLOAT")) dt = KILN_DTYPE_FLOAT;
    else if (!strcmp(to, "TO_INT64")) dt = KILN_DTYPE_INT64;
    else if (!strcmp(to, "TO_STRING")) dt = KILN_DTYPE_STRING;
    else
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "cast_to '%s' is not TO_FLOAT, TO_INT64 or TO_STRING", to);
    return set_out(c, 0, dt, NULL);
}

/* CategoryMapper and LabelEncoder-1: strings -> int64, int64 -> strings,
 * same shape. */
static kiln_status infer_string_int_map(kl_infer_ctx *c) {
    kiln_dtype in = kl_infer_input_dtype(c, 0), out = KILN_DTYPE_UNDEFINED;
    if (in == KILN_DTYPE_STRING) out = KILN_DTYPE_INT64;
    else if (in == KILN_DTYPE_INT64) out = KILN_DTYPE_STRING;
    else if (in != KILN_DTYPE_UNDEFINED)
        return kl_infer_fail(c, KILN_ERR_TYPE, "input must be string or int64, not %s",
                             kiln_dtype_name(in));
    return set_like_input(c, 0, 0, out);
}

/* DictVectorizer: the map's value type, shape unknown. */
static kiln_status infer_dict_vectorizer(kl_infer_ctx *c) {
    const kl_type *t = kl_infer_input_type(c, 0);
    if (!t || t->kind != KL_TYPE_MAP || !t->inner || t->inner->kind != KL_TYPE_TENSOR)
        return KILN_OK;
    return set_out(c, 0, t->inner->elem, NULL);
}

/* FeatureVectorizer: float [N, sum(inputdimensions)]. */
static kiln_status infer_feature_vectorizer(kl_infer_ctx *c) {
    const int64_t *dims;
    int64_t n = kl_node_attr_ints(c->node, "inputdimensions", &dims), total = 0;
    for (int64_t k = 0; k < n && total >= 0; k++)
        if (dims[k] < 0 || kl_add_i64(total, dims[k], &total)) total = -1;
    kl_shape s;
    KL_TRY(new_shape(c, 2, &s));
    const kl_shape *in = kl_infer_input_shape(c, 0);
    if (in && in->rank == 2) s.dims[0] = in->dims[0];
    else if (in && in->rank == 1) s.dims[0] = known(1);
    if (n >= 0) s.dims[1] = known(total);
    return set_out(c, 0, KILN_DTYPE_FLOAT, &s);
}

/* The element type named by LabelEncoder's values_* / keys_* attributes
 * (prefix "values_" or "keys_"), or UNDEFINED. */
static kiln_status label_encoder_type(kl_infer_ctx *c, const char *prefix, kiln_dtype *out) {
    static const struct { const char *suffix; kiln_dtype dt; } kinds[] = {
        {"strings", KILN_DTYPE_STRING}, {"int64s", KILN_DTYPE_INT64}, {"floats", KILN_DTYPE_FLOAT}};
    char name[32];
    snprintf(name, sizeof name, "%stensor", prefix);
    const kl_attr *t = kl_node_attr(c->node, name);
    *out = KILN_DTYPE_UNDEFINED;
    if (t && t->type == KL_ATTR_TENSOR && t->t) {
        *out = t->t->dtype;
        return KILN_OK;
    }
    for (size_t k = 0; k < KL_ARRAY_LEN(kinds); k++) {
        snprintf(name, sizeof name, "%s%s", prefix, kinds[k].suffix);
        if (kl_node_attr(c->node, name)) {
            *out = kinds[k].dt;
            return KILN_OK;
        }
    }
    return KILN_OK;
}

/* LabelEncoder-2/4: the values_* type, the input's shape; the keys_* type
 * must be the input's type. */
static kiln_status infer_label_encoder(kl_infer_ctx *c) {
    kiln_dtype kt, vt, in = kl_infer_input_dtype(c, 0);
    KL_TRY(label_encoder_type(c, "keys_", &kt));
    KL_TRY(label_encoder_type(c, "values_", &vt));
    if (kt != KILN_DTYPE_UNDEFINED && in != KILN_DTYPE_UNDEFINED && kt != in)
        return kl_infer_fail(c, KILN_ERR_TYPE, "keys are %s but the input is %s",
                             kiln_dtype_name(kt), kiln_dtype_name(in));
    if (vt == KILN_DTYPE_UNDEFINED) return KILN_OK;
    return set_like_input(c, 0, 0, vt);
}

/* LinearClassifier: labels [N] (string or int64), scores float [N, E]. */
static kiln_status infer_linear_classifier(kl_infer_ctx *c) {
    bool strings = attr_len(c, "classlabels_strings") > 0;
    int64_t n_int = attr_len(c, "classlabels_ints"), n_str = attr_len(c, "classlabels_strings");
    int64_t e = attr_len(c, "intercepts");
    if (e == 1 && (strings ? n_str : n_int) == 2) e = 2;
    KL_TRY(set_ml_rows(c, 0, strings ? KILN_DTYPE_STRING : KILN_DTYPE_INT64, 1, known(-1)));
    return set_ml_rows(c, 1, KILN_DTYPE_FLOAT, 2, known(e > 0 ? e : -1));
}

/* LinearRegressor: float [N, targets]. */
static kiln_status infer_linear_regressor(kl_infer_ctx *c) {
    return set_ml_rows(c, 0, KILN_DTYPE_FLOAT, 2, known(kl_node_attr_int(c->node, "targets", 1)));
}

/* OneHotEncoder: float, the input's dims then the category count. */
static kiln_status infer_one_hot_encoder(kl_infer_ctx *c) {
    int64_t ni = attr_len(c, "cats_int64s"), ns = attr_len(c, "cats_strings");
    if ((ni >= 0) == (ns >= 0))
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "exactly one of 'cats_int64s' and 'cats_strings' must be given");
    const kl_shape *in = kl_infer_input_shape(c, 0);
    if (!in) return set_out(c, 0, KILN_DTYPE_FLOAT, NULL);
    kl_shape s;
    KL_TRY(new_shape(c, in->rank + 1, &s));
    for (int d = 0; d < in->rank; d++) s.dims[d] = in->dims[d];
    s.dims[in->rank] = known(ni >= 0 ? ni : ns);
    return set_out(c, 0, KILN_DTYPE_FLOAT, &s);
}

/* SVM/TreeEnsemble classifiers: labels [N], scores float [N, ?]. */
static kiln_status infer_ml_classifier(kl_infer_ctx *c) {
    bool strings = attr_len(c, "classlabels_strings") > 0;
    KL_TRY(set_ml_rows(c, 0, strings ? KILN_DTYPE_STRING : KILN_DTYPE_INT64, 1, known(-1)));
    return set_ml_rows(c, 1, KILN_DTYPE_FLOAT, 2, known(-1));
}

/* SVMRegressor: float [N, ?]. */
static kiln_status infer_svm_regressor(kl_infer_ctx *c) {
    return set_ml_rows(c, 0, KILN_DTYPE_FLOAT, 2, known(-1));
}

/* TreeEnsembleRegressor: float [N, n_targets]. */
static kiln_status infer_tree_regressor(kl_infer_ctx *c) {
    return set_ml_rows(c, 0, KILN_DTYPE_FLOAT, 2, known(kl_node_attr_int(c->node, "n_targets", -1)));
}

/* TreeEnsemble-5: [N, n_targets] of the input's type; input must be 2-D. */
static kiln_status infer_tree_ensemble(kl_infer_ctx *c) {
    const kl_shape *in = kl_infer_input_shape(c, 0);
    if (in && in->rank != 2)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "input must be [N, F], got rank %d", in->rank);
    kl_shape s;
    KL_TRY(new_shape(c, 2, &s));
    if (in) s.dims[0] = in->dims[0];
    s.dims[1] = known(kl_node_attr_int(c->node, "n_targets", -1));
    return set_out(c, 0, kl_infer_input_dtype(c, 0), &s);
}

/* ZipMap: seq(map(string or int64 -> float)). */
static kiln_status infer_zip_map(kl_infer_ctx *c) {
    bool strings = attr_len(c, "classlabels_strings") > 0;
    bool ints = attr_len(c, "classlabels_int64s") > 0;
    if (strings == ints)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "exactly one of 'classlabels_strings' and 'classlabels_int64s' must be given");
    const kl_shape *in = kl_infer_input_shape(c, 0);
    if (in && in->rank != 1 && in->rank != 2)
        return kl_infer_fail(c, KILN_ERR_SHAPE, "input must be 1-D or 2-D, got rank %d", in->rank);
    if (!out_used(c, 0)) return KILN_OK;
    kl_type *seq = kl_arena_alloc(c->arena, sizeof *seq);
    kl_type *map = kl_arena_alloc(c->arena, sizeof *map);
    kl_type *val = kl_arena_alloc(c->arena, sizeof *val);
    if (!seq || !map || !val) return KILN_ERR_NO_MEMORY;
    *val = (kl_type){KL_TYPE_TENSOR, KILN_DTYPE_FLOAT, {0, NULL}, NULL};
    *map = (kl_type){KL_TYPE_MAP, strings ? KILN_DTYPE_STRING : KILN_DTYPE_INT64, {-1, NULL}, val};
    *seq = (kl_type){KL_TYPE_SEQUENCE, KILN_DTYPE_UNDEFINED, {-1, NULL}, map};
    return kl_infer_set_output_type(c, 0, seq);
}

/* ---- ai.onnx.preview.training ------------------------------------------------------ */

/* Adagrad/Adam/Momentum: inputs R, T, then groups of n tensors (X, G, and
 * the optimizer's states); outputs X_new and the new states: output group j
 * has the types of input group j (j = 0) or j + 1 (skipping G). */
static kiln_status infer_optimizer(kl_infer_ctx *c, size_t out_groups) {
    size_t nin = c->node->n_inputs, nout = c->node->n_outputs;
    if (nout == 0 || nout % out_groups != 0) return KILN_OK;
    size_t n = nout / out_groups;
    if (nin != 2 + (out_groups + 1) * n)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL,
                             "%zu outputs need %zu inputs (R, T, then %zu groups of %zu), got %zu",
                             nout, 2 + (out_groups + 1) * n, out_groups + 1, n, nin);
    for (size_t j = 0; j < out_groups; j++)
        for (size_t k = 0; k < n; k++) {
            size_t in = 2 + (j == 0 ? 0 : j + 1) * n + k;
            KL_TRY(set_like_input(c, j * n + k, in, kl_infer_input_dtype(c, in)));
        }
    return KILN_OK;
}

/* Adagrad: X_new, H_new. */
static kiln_status infer_adagrad(kl_infer_ctx *c) { return infer_optimizer(c, 2); }
/* Adam: X_new, V_new, H_new. */
static kiln_status infer_adam(kl_infer_ctx *c) { return infer_optimizer(c, 3); }
/* Momentum: X_new, V_new. */
static kiln_status infer_momentum(kl_infer_ctx *c) { return infer_optimizer(c, 2); }

/* Gradient: output i has the type of the value named xs[i]. */
static kiln_status infer_gradient(kl_infer_ctx *c) {
    const kl_attr *xs = kl_node_attr(c->node, "xs");
    if (!xs || xs->type != KL_ATTR_STRINGS) return KILN_OK;
    if (xs->n != c->node->n_outputs)
        return kl_infer_fail(c, KILN_ERR_INVALID_MODEL, "'xs' names %zu values but the node has %zu outputs",
                             xs->n, c->node->n_outputs);
    for (size_t i = 0; i < xs->n; i++) {
        const char *name = kl_arena_strndup(c->arena, xs->strings[i].ptr, xs->strings[i].len);
        if (!name) return KILN_ERR_NO_MEMORY;
        const kl_value *v = kl_graph_lookup(c->graph, name);
        if (v && v->type.kind == KL_TYPE_TENSOR)
            KL_TRY(set_out(c, i, v->type.elem, v->type.shape.rank >= 0 ? &v->type.shape : NULL));
    }
    return KILN_OK;
}

/* ---- schemas ------------------------------------------------------------------ */

#define A(n, t) {n, KL_ATTR_##t, false}
#define R(n, t) {n, KL_ATTR_##t, true}
#define END {NULL, KL_ATTR_UNDEFINED, false}

static const kl_attr_spec at_none[] = {END};
static const kl_attr_spec at_bernoulli[] = {A("dtype", INT), A("seed", FLOAT), END};
static const kl_attr_spec at_random_uniform[] = {A("dtype", INT), A("high", FLOAT), A("low", FLOAT),
                                                 A("seed", FLOAT), R("shape", INTS), END};
static const kl_attr_spec at_random_normal[] = {A("dtype", INT), A("mean", FLOAT), A("scale", FLOAT),
                                                A("seed", FLOAT), R("shape", INTS), END};
static const kl_attr_spec at_random_uniform_like[] = {A("dtype", INT), A("high", FLOAT), A("low", FLOAT),
                                                      A("seed", FLOAT), END};
static const kl_attr_spec at_random_normal_like[] = {A("dtype", INT), A("mean", FLOAT), A("scale", FLOAT),
                                                     A("seed", FLOAT), END};
static const kl_attr_spec at_multinomial[] = {A("dtype", INT), A("sample_size", INT), A("seed", FLOAT),
                                              END};
static const kl_attr_spec at_nms[] = {A("center_point_box", INT), END};
static const kl_attr_spec at_roi_align10[] = {A("mode", STRING), A("output_height", INT),
                                              A("output_width", INT), A("sampling_ratio", INT),
                                              A("spatial_scale", FLOAT), END};
static const kl_attr_spec at_roi_align16[] = {A("coordinate_transformation_mode", STRING),
                                              A("mode", STRING), A("output_height", INT),
                                              A("output_width", INT), A("sampling_ratio", INT),
                                              A("spatial_scale", FLOAT), END};
static const kl_attr_spec at_dft17[] = {A("axis", INT), A("inverse", INT), A("onesided", INT), END};
static const kl_attr_spec at_dft20[] = {A("inverse", INT), A("onesided", INT), END};
static const kl_attr_spec at_stft[] = {A("onesided", INT), END};
static const kl_attr_spec at_window[] = {A("output_datatype", INT), A("periodic", INT), END};
static const kl_attr_spec at_mel[] = {A("output_datatype", INT), END};
static const kl_attr_spec at_string_normalizer[] = {A("case_change_action", STRING),
                                                    A("is_case_sensitive", INT), A("locale", STRING),
                                                    A("stopwords", STRINGS), END};
static const kl_attr_spec at_string_split[] = {A("delimiter", STRING), A("maxsplit", INT), END};
static const kl_attr_spec at_regex[] = {A("pattern", STRING), END};
static const kl_attr_spec at_tfidf[] = {R("max_gram_length", INT), R("max_skip_count", INT),
                                        R("min_gram_length", INT), R("mode", STRING),
                                        R("ngram_counts", INTS), R("ngram_indexes", INTS),
                                        A("pool_int64s", INTS), A("pool_strings", STRINGS),
                                        A("weights", FLOATS), END};
static const kl_attr_spec at_image_decoder[] = {A("pixel_format", STRING), END};
static const kl_attr_spec at_loss[] = {A("ignore_index", INT), A("reduction", STRING), END};

/* ai.onnx.ml */
static const kl_attr_spec at_binarizer[] = {A("threshold", FLOAT), END};
static const kl_attr_spec at_cast_map[] = {A("cast_to", STRING), A("map_form", STRING),
                                           A("max_map", INT), END};
static const kl_attr_spec at_category_mapper[] = {A("cats_int64s", INTS), A("cats_strings", STRINGS),
                                                  A("default_int64", INT), A("default_string", STRING),
                                                  END};
static const kl_attr_spec at_dict_vectorizer[] = {A("int64_vocabulary", INTS),
                                                  A("string_vocabulary", STRINGS), END};
static const kl_attr_spec at_feature_vectorizer[] = {A("inputdimensions", INTS), END};
static const kl_attr_spec at_imputer[] = {A("imputed_value_floats", FLOATS),
                                          A("imputed_value_int64s", INTS),
                                          A("replaced_value_float", FLOAT),
                                          A("replaced_value_int64", INT), END};
static const kl_attr_spec at_label_encoder1[] = {A("classes_strings", STRINGS), A("default_int64", INT),
                                                 A("default_string", STRING), END};
static const kl_attr_spec at_label_encoder2[] = {
    A("default_float", FLOAT), A("default_int64", INT),    A("default_string", STRING),
    A("keys_floats", FLOATS),  A("keys_int64s", INTS),     A("keys_strings", STRINGS),
    A("values_floats", FLOATS), A("values_int64s", INTS),  A("values_strings", STRINGS), END};
static const kl_attr_spec at_label_encoder4[] = {
    A("default_float", FLOAT), A("default_int64", INT),   A("default_string", STRING),
    A("default_tensor", TENSOR), A("keys_floats", FLOATS), A("keys_int64s", INTS),
    A("keys_strings", STRINGS), A("keys_tensor", TENSOR),  A("values_floats", FLOATS),
    A("values_int64s", INTS),  A("values_strings", STRINGS), A("values_tensor", TENSOR), END};
static const kl_attr_spec at_linear_classifier[] = {
    A("classlabels_ints", INTS), A("classlabels_strings", STRINGS), R("coefficients", FLOATS),
    A("intercepts", FLOATS),     A("multi_class", INT),            A("post_transform", STRING), END};
static const kl_attr_spec at_linear_regressor[] = {A("coefficients", FLOATS), A("intercepts", FLOATS),
                                                   A("post_transform", STRING), A("targets", INT), END};
static const kl_attr_spec at_normalizer[] = {A("norm", STRING), END};
static const kl_attr_spec at_one_hot_encoder[] = {A("cats_int64s", INTS), A("cats_strings", STRINGS),
                                                  A("zeros", INT), END};
static const kl_attr_spec at_svm_classifier[] = {
    A("classlabels_ints", INTS), A("classlabels_strings", STRINGS), A("coefficients", FLOATS),
    A("kernel_params", FLOATS),  A("kernel_type", STRING),          A("post_transform", STRING),
    A("prob_a", FLOATS),         A("prob_b", FLOATS),               A("rho", FLOATS),
    A("support_vectors", FLOATS), A("vectors_per_class", INTS),     END};
static const kl_attr_spec at_svm_regressor[] = {
    A("coefficients", FLOATS), A("kernel_params", FLOATS), A("kernel_type", STRING),
    A("n_supports", INT),      A("one_class", INT),        A("post_transform", STRING),
    A("rho", FLOATS),          A("support_vectors", FLOATS), END};
static const kl_attr_spec at_scaler[] = {A("offset", FLOATS), A("scale", FLOATS), END};
static const kl_attr_spec at_tree_classifier1[] = {
    A("base_values", FLOATS),        A("class_ids", INTS),
    A("class_nodeids", INTS),        A("class_treeids", INTS),
    A("class_weights", FLOATS),      A("classlabels_int64s", INTS),
    A("classlabels_strings", STRINGS), A("nodes_falsenodeids", INTS),
    A("nodes_featureids", INTS),     A("nodes_hitrates", FLOATS),
    A("nodes_missing_value_tracks_true", INTS), A("nodes_modes", STRINGS),
    A("nodes_nodeids", INTS),        A("nodes_treeids", INTS),
    A("nodes_truenodeids", INTS),    A("nodes_values", FLOATS),
    A("post_transform", STRING),     END};
static const kl_attr_spec at_tree_classifier3[] = {
    A("base_values", FLOATS),        A("base_values_as_tensor", TENSOR),
    A("class_ids", INTS),            A("class_nodeids", INTS),
    A("class_treeids", INTS),        A("class_weights", FLOATS),
    A("class_weights_as_tensor", TENSOR), A("classlabels_int64s", INTS),
    A("classlabels_strings", STRINGS), A("nodes_falsenodeids", INTS),
    A("nodes_featureids", INTS),     A("nodes_hitrates", FLOATS),
    A("nodes_hitrates_as_tensor", TENSOR), A("nodes_missing_value_tracks_true", INTS),
    A("nodes_modes", STRINGS),       A("nodes_nodeids", INTS),
    A("nodes_treeids", INTS),        A("nodes_truenodeids", INTS),
    A("nodes_values", FLOATS),       A("nodes_values_as_tensor", TENSOR),
    A("post_transform", STRING),     END};
static const kl_attr_spec at_tree_regressor1[] = {
    A("aggregate_function", STRING), A("base_values", FLOATS),
    A("n_targets", INT),             A("nodes_falsenodeids", INTS),
    A("nodes_featureids", INTS),     A("nodes_hitrates", FLOATS),
    A("nodes_missing_value_tracks_true", INTS), A("nodes_modes", STRINGS),
    A("nodes_nodeids", INTS),        A("nodes_treeids", INTS),
    A("nodes_truenodeids", INTS),    A("nodes_values", FLOATS),
    A("post_transform", STRING),     A("target_ids", INTS),
    A("target_nodeids", INTS),       A("target_treeids", INTS),
    A("target_weights", FLOATS),     END};
static const kl_attr_spec at_tree_regressor3[] = {
    A("aggregate_function", STRING), A("base_values", FLOATS),
    A("base_values_as_tensor", TENSOR), A("n_targets", INT),
    A("nodes_falsenodeids", INTS),   A("nodes_featureids", INTS),
    A("nodes_hitrates", FLOATS),     A("nodes_hitrates_as_tensor", TENSOR),
    A("nodes_missing_value_tracks_true", INTS), A("nodes_modes", STRINGS),
    A("nodes_nodeids", INTS),        A("nodes_treeids", INTS),
    A("nodes_truenodeids", INTS),    A("nodes_values", FLOATS),
    A("nodes_values_as_tensor", TENSOR), A("post_transform", STRING),
    A("target_ids", INTS),           A("target_nodeids", INTS),
    A("target_treeids", INTS),       A("target_weights", FLOATS),
    A("target_weights_as_tensor", TENSOR), END};
static const kl_attr_spec at_tree_ensemble5[] = {
    A("aggregate_function", INT),    R("leaf_targetids", INTS),
    R("leaf_weights", TENSOR),       A("membership_values", TENSOR),
    A("n_targets", INT),             R("nodes_falseleafs", INTS),
    R("nodes_falsenodeids", INTS),   R("nodes_featureids", INTS),
    A("nodes_hitrates", TENSOR),     A("nodes_missing_value_tracks_true", INTS),
    R("nodes_modes", TENSOR),        R("nodes_splits", TENSOR),
    R("nodes_trueleafs", INTS),      R("nodes_truenodeids", INTS),
    A("post_transform", INT),        R("tree_roots", INTS), END};
static const kl_attr_spec at_zip_map[] = {A("classlabels_int64s", INTS),
                                          A("classlabels_strings", STRINGS), END};

/* ai.onnx.preview.training */
static const kl_attr_spec at_adagrad[] = {A("decay_factor", FLOAT), A("epsilon", FLOAT),
                                          A("norm_coefficient", FLOAT), END};
static const kl_attr_spec at_adam[] = {A("alpha", FLOAT), A("beta", FLOAT), A("epsilon", FLOAT),
                                       A("norm_coefficient", FLOAT), A("norm_coefficient_post", FLOAT),
                                       END};
static const kl_attr_spec at_momentum[] = {R("alpha", FLOAT), R("beta", FLOAT), R("mode", STRING),
                                           R("norm_coefficient", FLOAT), END};
static const kl_attr_spec at_gradient[] = {R("xs", STRINGS), R("y", STRING), A("zs", STRINGS), END};

#define ML "ai.onnx.ml"
#define TRAIN "ai.onnx.preview.training"

/* Rows whose later versions only widened the type lists are kept open
 * (until 0): Bernoulli, Random*, Multinomial, RoiAlign, NLL loss (22). */
const kl_op_schema kl_ops_misc[] = {
    {"", "Bernoulli", 15, 0, 1, 1, 1, 1, at_bernoulli, infer_bernoulli},
    {"", "RandomUniform", 1, 0, 0, 0, 1, 1, at_random_uniform, infer_random},
    {"", "RandomNormal", 1, 0, 0, 0, 1, 1, at_random_normal, infer_random},
    {"", "RandomUniformLike", 1, 0, 1, 1, 1, 1, at_random_uniform_like, infer_random_like},
    {"", "RandomNormalLike", 1, 0, 1, 1, 1, 1, at_random_normal_like, infer_random_like},
    {"", "Multinomial", 7, 0, 1, 1, 1, 1, at_multinomial, infer_multinomial},
    {"", "NonMaxSuppression", 10, 0, 2, 5, 1, 1, at_nms, infer_nms},
    {"", "RoiAlign", 10, 15, 3, 3, 1, 1, at_roi_align10, infer_roi_align},
    {"", "RoiAlign", 16, 0, 3, 3, 1, 1, at_roi_align16, infer_roi_align},
    {"", "DFT", 17, 19, 1, 2, 1, 1, at_dft17, infer_dft},
    {"", "DFT", 20, 0, 1, 3, 1, 1, at_dft20, infer_dft},
    {"", "STFT", 17, 0, 2, 4, 1, 1, at_stft, infer_stft},
    {"", "BlackmanWindow", 17, 0, 1, 1, 1, 1, at_window, infer_window},
    {"", "HammingWindow", 17, 0, 1, 1, 1, 1, at_window, infer_window},
    {"", "HannWindow", 17, 0, 1, 1, 1, 1, at_window, infer_window},
    {"", "MelWeightMatrix", 17, 0, 5, 5, 1, 1, at_mel, infer_mel_weight_matrix},
    {"", "StringConcat", 20, 0, 2, 2, 1, 1, at_none, infer_string_concat},
    {"", "StringNormalizer", 10, 0, 1, 1, 1, 1, at_string_normalizer, infer_string_normalizer},
    {"", "StringSplit", 20, 0, 1, 1, 2, 2, at_string_split, infer_string_split},
    {"", "RegexFullMatch", 20, 0, 1, 1, 1, 1, at_regex, infer_regex_full_match},
    {"", "TfIdfVectorizer", 9, 0, 1, 1, 1, 1, at_tfidf, infer_tfidf},
    {"", "ImageDecoder", 20, 0, 1, 1, 1, 1, at_image_decoder, infer_image_decoder},
    {"", "NegativeLogLikelihoodLoss", 12, 0, 2, 3, 1, 1, at_loss, infer_loss},
    {"", "SoftmaxCrossEntropyLoss", 12, 0, 2, 3, 1, 2, at_loss, infer_loss},

    {ML, "ArrayFeatureExtractor", 1, 0, 2, 2, 1, 1, at_none, infer_array_feature_extractor},
    {ML, "Binarizer", 1, 0, 1, 1, 1, 1, at_binarizer, infer_same},
    {ML, "CastMap", 1, 0, 1, 1, 1, 1, at_cast_map, infer_cast_map},
    {ML, "CategoryMapper", 1, 0, 1, 1, 1, 1, at_category_mapper, infer_string_int_map},
    {ML, "DictVectorizer", 1, 0, 1, 1, 1, 1, at_dict_vectorizer, infer_dict_vectorizer},
    {ML, "FeatureVectorizer", 1, 0, 1, -1, 1, 1, at_feature_vectorizer, infer_feature_vectorizer},
    {ML, "Imputer", 1, 0, 1, 1, 1, 1, at_imputer, infer_same},
    {ML, "LabelEncoder", 1, 1, 1, 1, 1, 1, at_label_encoder1, infer_string_int_map},
    {ML, "LabelEncoder", 2, 3, 1, 1, 1, 1, at_label_encoder2, infer_label_encoder},
    {ML, "LabelEncoder", 4, 0, 1, 1, 1, 1, at_label_encoder4, infer_label_encoder},
    {ML, "LinearClassifier", 1, 0, 1, 1, 2, 2, at_linear_classifier, infer_linear_classifier},
    {ML, "LinearRegressor", 1, 0, 1, 1, 1, 1, at_linear_regressor, infer_linear_regressor},
    {ML, "Normalizer", 1, 0, 1, 1, 1, 1, at_normalizer, infer_same_float},
    {ML, "OneHotEncoder", 1, 0, 1, 1, 1, 1, at_one_hot_encoder, infer_one_hot_encoder},
    {ML, "SVMClassifier", 1, 0, 1, 1, 2, 2, at_svm_classifier, infer_ml_classifier},
    {ML, "SVMRegressor", 1, 0, 1, 1, 1, 1, at_svm_regressor, infer_svm_regressor},
    {ML, "Scaler", 1, 0, 1, 1, 1, 1, at_scaler, infer_same_float},
    {ML, "TreeEnsembleClassifier", 1, 2, 1, 1, 2, 2, at_tree_classifier1, infer_ml_classifier},
    {ML, "TreeEnsembleClassifier", 3, 0, 1, 1, 2, 2, at_tree_classifier3, infer_ml_classifier},
    {ML, "TreeEnsembleRegressor", 1, 2, 1, 1, 1, 1, at_tree_regressor1, infer_tree_regressor},
    {ML, "TreeEnsembleRegressor", 3, 0, 1, 1, 1, 1, at_tree_regressor3, infer_tree_regressor},
    {ML, "TreeEnsemble", 5, 0, 1, 1, 1, 1, at_tree_ensemble5, infer_tree_ensemble},
    {ML, "ZipMap", 1, 0, 1, 1, 1, 1, at_zip_map, infer_zip_map},

    {TRAIN, "Adagrad", 1, 0, 3, -1, 1, -1, at_adagrad, infer_adagrad},
    {TRAIN, "Adam", 1, 0, 3, -1, 1, -1, at_adam, infer_adam},
    {TRAIN, "Momentum", 1, 0, 3, -1, 1, -1, at_momentum, infer_momentum},
    {TRAIN, "Gradient", 1, 0, 1, -1, 1, -1, at_gradient, infer_gradient},
    {NULL},
};
