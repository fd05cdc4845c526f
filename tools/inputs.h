/*
 * inputs.h — the input tensors of `kiln run`, `kiln bench` and
 * `kiln compare`: files given with --input (NumPy .npy, ONNX TensorProto
 * .pb, raw .bin with --shape/--dtype, JPEG/PNG images with ImageNet
 * preprocessing, several images making a batch) and seeded random values
 * for the inputs not given.
 *
 * --input FILE binds FILE to the next model input not given yet (every
 * image given without a name goes to the same input, as one batch);
 * --input NAME=FILE binds it to the input called NAME.  A .pb file whose
 * TensorProto carries the name of an input is bound to that input.
 */
#ifndef KILN_TOOLS_INPUTS_H
#define KILN_TOOLS_INPUTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "tensors.h"

typedef struct kc_input_opts {
    const kc_list *files; /* --input values (may be NULL) */
    const char *shape;    /* --shape/--shapes: "1x3x224x224" or "name:1x3x224x224,name2:..." */
    const char *shape_flag; /* its flag's name, for messages */
    const char *dtype;    /* --dtype of raw .bin files (default: the input's type) */
    long long batch;      /* --batch: size of a dynamic first dimension (0 = 1) */
    int resize, crop;     /* image preprocessing (0 = defaults from the input's H, W) */
    bool random;          /* random values for inputs not given (otherwise an error) */
    uint64_t seed;        /* random seed */
} kc_input_opts;

typedef struct kc_inputs {
    size_t n;
    kc_io *io;              /* the model's inputs */
    kiln_tensor **tensors;  /* one per model input */
    char **source;          /* how each one was made, for reports (malloc'ed) */
    const char **images;    /* image files of the batch, in order (borrowed), or NULL */
    size_t n_images;
    int image_input;        /* index of the input the images fill, -1 when none */
} kc_inputs;

/* Make every input of `m` for subcommand `cmd`.  On failure prints one line
 * and returns false with *exit_code set (1 for a file that cannot be used,
 * 2 for a usage error). */
bool kc_inputs_prepare(const char *cmd, const kiln_model *m, const kc_input_opts *o, kc_inputs *out,
                       int *exit_code);
void kc_inputs_free(kc_inputs *in);

/* Run the session on `in`, creating every output (caller frees with
 * kc_outputs_free).  false with kiln's message in err. */
bool kc_session_run_all(kiln_session *s, const kc_inputs *in, const kc_io *outs, size_t n_outs,
                        kiln_tensor **results, char *err, size_t errsize);
void kc_outputs_free(kiln_tensor **results, size_t n);

/* Size of the batch (first dimension of the first input with rank >= 1), or 1. */
int64_t kc_inputs_batch(const kc_inputs *in);
/* "NAME:1x3x224x224,..." of the inputs as prepared when the model has a
 * dynamic input axis (a session's profile at the shapes it is fed, as
 * trtexec --shapes: a GPU plan needs one), else NULL; written into buf. */
const char *kc_inputs_profile(const kc_inputs *in, char *buf, size_t size);

/* Image preprocessing of a single IMAGE to a 1 x 3 x crop x crop float
 * tensor (kiln preprocess). */
bool kc_image_tensor(const char *path, int resize, int crop, kiln_tensor **out, char *err, size_t errsize);

/* Write the bound inputs as a JSON array of {name, dtype, shape,
 * [declared,] source} objects (`declared`: the model's declared type). */
struct kj_writer;
void kc_inputs_json(struct kj_writer *w, const kc_inputs *in, bool declared);

#endif
