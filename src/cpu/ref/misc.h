/*
 * misc.h — the "misc" family of CPU reference kernels, split over
 * src/cpu/ref/misc*.c: detection (NonMaxSuppression, RoiAlign), strings
 * (StringConcat/Normalizer/Split, RegexFullMatch, TfIdfVectorizer), signal
 * (DFT, STFT, windows, MelWeightMatrix), losses, random generators,
 * ai.onnx.ml operators and ai.onnx.preview.training optimizers.
 * The registry rows live in misc.c (kl_ref_misc).
 */
#ifndef KL_REF_MISC_H
#define KL_REF_MISC_H

#include "cpu/ref/ref.h"

/* ---- shared helpers (misc.c) ------------------------------------------------ */

/* True for float, double, float16, bfloat16. */
bool kl_misc_is_float(kiln_dtype t);
/* Copy numeric tensor t into a new array of t->count doubles (freed with
 * kl_free; never NULL on success, even for empty tensors).  `what` names the
 * input in errors. */
kiln_status kl_misc_load_f64(const kl_rt *t, const char *what, double **out);
/* Store v[0..t->count) into t, converting to its dtype. */
void kl_misc_store_f64(kl_rt *t, const double *v);
/* Input i as a tensor, or an error naming it when absent / not a tensor. */
kiln_status kl_misc_need(kl_kctx *c, size_t i, const char *what, kl_rt **out);
/* Allocate n elements of `size` bytes (zeroed), checking for overflow. */
void *kl_misc_calloc(int64_t n, size_t size);

/* ---- regex (misc_regex.c) ---------------------------------------------------- */

typedef struct kl_regex kl_regex;
/* Compile an RE2-syntax pattern; errors (KILN_ERR_INVALID_MODEL) say why. */
kiln_status kl_regex_compile(const char *pattern, size_t len, kl_regex **out);
/* Does the whole of s[0..len) match?  (*out; errors only on allocation.) */
kiln_status kl_regex_full_match(const kl_regex *re, const char *s, size_t len, bool *out);
void kl_regex_free(kl_regex *re);

/* ---- kernels ------------------------------------------------------------------ */

kiln_status kl_misc_nms(kl_kctx *c);
kiln_status kl_misc_roi_align(kl_kctx *c);

kiln_status kl_misc_string_concat(kl_kctx *c);
kiln_status kl_misc_string_normalizer(kl_kctx *c);
kiln_status kl_misc_string_split(kl_kctx *c);
kiln_status kl_misc_regex_full_match(kl_kctx *c);
kiln_status kl_misc_tfidf(kl_kctx *c);

kiln_status kl_misc_dft(kl_kctx *c);
kiln_status kl_misc_stft(kl_kctx *c);
kiln_status kl_misc_hann(kl_kctx *c);
kiln_status kl_misc_hamming(kl_kctx *c);
kiln_status kl_misc_blackman(kl_kctx *c);
kiln_status kl_misc_mel(kl_kctx *c);

kiln_status kl_misc_nll_loss(kl_kctx *c);
kiln_status kl_misc_sce_loss(kl_kctx *c);

kiln_status kl_misc_bernoulli(kl_kctx *c);
kiln_status kl_misc_random_uniform(kl_kctx *c);
kiln_status kl_misc_random_normal(kl_kctx *c);
kiln_status kl_misc_random_uniform_like(kl_kctx *c);
kiln_status kl_misc_random_normal_like(kl_kctx *c);
kiln_status kl_misc_multinomial(kl_kctx *c);

kiln_status kl_misc_array_feature_extractor(kl_kctx *c);
kiln_status kl_misc_binarizer(kl_kctx *c);
kiln_status kl_misc_label_encoder(kl_kctx *c);
kiln_status kl_misc_tree_ensemble(kl_kctx *c);
kiln_status kl_misc_tree_ensemble_classifier(kl_kctx *c);
kiln_status kl_misc_tree_ensemble_regressor(kl_kctx *c);
kiln_status kl_misc_scaler(kl_kctx *c);
kiln_status kl_misc_normalizer(kl_kctx *c);
kiln_status kl_misc_linear_regressor(kl_kctx *c);
kiln_status kl_misc_linear_classifier(kl_kctx *c);
kiln_status kl_misc_imputer(kl_kctx *c);
kiln_status kl_misc_category_mapper(kl_kctx *c);
kiln_status kl_misc_one_hot_encoder(kl_kctx *c);
kiln_status kl_misc_feature_vectorizer(kl_kctx *c);
kiln_status kl_misc_svm_regressor(kl_kctx *c);
kiln_status kl_misc_svm_classifier(kl_kctx *c);

kiln_status kl_misc_adagrad(kl_kctx *c);
kiln_status kl_misc_adam(kl_kctx *c);
kiln_status kl_misc_momentum(kl_kctx *c);

#endif /* KL_REF_MISC_H */
