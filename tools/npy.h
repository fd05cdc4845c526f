/*
 * npy.h — NumPy .npy files for the kiln command: read into a kiln_tensor,
 * write a kiln_tensor.
 *
 * Format versions 1.0, 2.0 and 3.0 are read; C order only.  Element types:
 * f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1, little-endian ('<', '|' or '=');
 * big-endian ('>') data is byte-swapped on reading.  Writing uses version
 * 1.0 (a header of at most KILN_MAX_RANK dims always fits), little-endian,
 * C order, the data aligned to 64 bytes as NumPy writes it.
 */
#ifndef KILN_TOOLS_NPY_H
#define KILN_TOOLS_NPY_H

#include <stdbool.h>
#include <stddef.h>

#include "kiln.h"

/* True when the first bytes (n of them) are the .npy magic "\x93NUMPY". */
bool kc_npy_magic(const unsigned char *head, size_t n);

/* Read the .npy file at `path` into a new tensor (caller owns *out).  On
 * failure writes a one-line reason naming the file into err and returns
 * false. */
bool kc_npy_read(const char *path, kiln_tensor **out, char *err, size_t errsize);

/* Parse .npy bytes (`name` is used in messages). */
bool kc_npy_parse(const char *name, const unsigned char *bytes, size_t size, kiln_tensor **out,
                  char *err, size_t errsize);

/* Write tensor `t` to `path` as .npy.  Element types without a .npy code
 * (bfloat16, float8, 4-bit, complex, string) fail with a reason in err. */
bool kc_npy_write(const char *path, kiln_tensor *t, char *err, size_t errsize);

/* The .npy type code of `dtype` ("<f4", "|b1"), or NULL when there is none. */
const char *kc_npy_descr(kiln_dtype dtype);

#endif
