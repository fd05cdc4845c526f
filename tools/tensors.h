/*
 * tensors.h — tensor helpers shared by `kiln run`, `kiln bench` and
 * `kiln compare`: the model's input/output descriptions, shape strings,
 * element access and conversion, seeded random tensors, statistics,
 * softmax top-k and error metrics.
 */
#ifndef KILN_TOOLS_TENSORS_H
#define KILN_TOOLS_TENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln.h"

/* One graph input or output as the model declares it. */
typedef struct kc_io {
    const char *name; /* borrowed from the model */
    kiln_dtype dtype;
    int rank;                                /* -1 when unknown */
    int64_t dims[KILN_MAX_RANK];             /* -1 when not fixed */
    const char *dim_names[KILN_MAX_RANK];    /* symbolic name or NULL */
} kc_io;

/* The model's inputs (outputs when `outputs`), malloc'ed into *out. */
bool kc_model_io(const kiln_model *m, bool outputs, kc_io **out, size_t *n);
/* "float[batch,3,224,224]" ("float[?]" for an unknown rank). */
char *kc_fmt_io(const kc_io *io, char *buf, size_t size);
/* "[2,3,224,224]" */
char *kc_fmt_shape(const int64_t *dims, int rank, char *buf, size_t size);
/* "float[2,1000]" for a tensor. */
char *kc_fmt_tensor(const kiln_tensor *t, char *buf, size_t size);
/* Comma-separated quoted list of the names: "'input', 'mask'". */
char *kc_fmt_names(const kc_io *io, size_t n, char *buf, size_t size);

/* Parse "1x3x224x224" (rank <= KILN_MAX_RANK, dims >= 0; "" or "scalar" is
 * rank 0).  false with a reason in err. */
bool kc_parse_dims(const char *text, size_t len, int64_t *dims, int *rank, char *err, size_t errsize);

/* Element type from a user's name: float32/float/f4/fp32, float16/half/f2,
 * float64/double/f8, bfloat16, int8..int64, uint8..uint64, bool.  UNDEFINED
 * when unknown. */
kiln_dtype kc_dtype_parse(const char *name);
/* True for element types the helpers below can read and write. */
bool kc_dtype_numeric(kiln_dtype t);

/* Element i of `data` (type t) as a double; NaN for unsupported types. */
double kc_elem_get(const void *data, kiln_dtype t, size_t i);
/* Store v as element i (rounded / saturated to the type). */
void kc_elem_set(void *data, kiln_dtype t, size_t i, double v);

/* Copy of `src` converted to element type `to` (caller owns *out). */
bool kc_tensor_convert(kiln_tensor *src, kiln_dtype to, kiln_tensor **out, char *err, size_t errsize);

/* Seeded random generator (splitmix64). */
typedef struct kc_rng {
    uint64_t state;
} kc_rng;
uint64_t kc_rng_next(kc_rng *r);
/* Uniform in [0, 1). */
double kc_rng_uniform(kc_rng *r);
/* New tensor of dtype/shape with random values: floats uniform in [-1, 1),
 * signed integers in [0, 10), unsigned in [0, 255] (uint8) or [0, 10), bool
 * 50/50. */
bool kc_tensor_random(kiln_dtype dtype, const int64_t *dims, int rank, kc_rng *rng, kiln_tensor **out,
                      char *err, size_t errsize);

/* Value statistics of a numeric tensor. */
typedef struct kc_stats {
    double min, max, mean;
    int64_t count, nan, inf;
} kc_stats;
bool kc_tensor_stats(kiln_tensor *t, kc_stats *s);

/* True when tensor `t` looks like classifier scores: shape [N, C] or [C]
 * with C > 1.  Sets the row count and class count. */
bool kc_is_classifier(const kiln_tensor *t, int64_t *rows, int64_t *classes);
/* Row `row` as probabilities into p (classes entries): softmax of the
 * values, or the values themselves when they already are probabilities
 * (non-negative, summing to 1).  Returns true when softmax was applied. */
bool kc_row_probs(kiln_tensor *t, int64_t row, int64_t classes, double *p);
/* Indices of the k largest entries of p (n entries), largest first. */
void kc_topk(const double *p, int64_t n, int64_t k, int64_t *idx);

/* Error of `got` against `ref` (same shape). */
typedef struct kc_error {
    double max_abs;   /* max |got - ref| */
    double rel_l2;    /* ||got - ref|| / ||ref|| (0 when both are 0) */
    int64_t top1_same, top1_rows; /* classifier outputs only; rows 0 otherwise */
    bool shape_differs;
} kc_error;
void kc_tensor_error(kiln_tensor *got, kiln_tensor *ref, kc_error *e);

#endif
