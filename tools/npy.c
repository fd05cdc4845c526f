/* NumPy .npy reader and writer (see npy.h). */
#include "npy.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* .npy type codes and their kiln element types. */
static const struct {
    char kind;
    int size;
    kiln_dtype dtype;
} kc_npy_types[] = {
    {'f', 2, KILN_DTYPE_FLOAT16}, {'f', 4, KILN_DTYPE_FLOAT},  {'f', 8, KILN_DTYPE_DOUBLE},
    {'i', 1, KILN_DTYPE_INT8},    {'i', 2, KILN_DTYPE_INT16},  {'i', 4, KILN_DTYPE_INT32},
    {'i', 8, KILN_DTYPE_INT64},   {'u', 1, KILN_DTYPE_UINT8},  {'u', 2, KILN_DTYPE_UINT16},
    {'u', 4, KILN_DTYPE_UINT32},  {'u', 8, KILN_DTYPE_UINT64}, {'b', 1, KILN_DTYPE_BOOL},
};
#define KC_NPY_NTYPES (sizeof kc_npy_types / sizeof kc_npy_types[0])

bool kc_npy_magic(const unsigned char *head, size_t n) {
    return n >= 6 && memcmp(head, "\x93NUMPY", 6) == 0;
}

const char *kc_npy_descr(kiln_dtype dtype) {
    static const char *const codes[] = {"<f2", "<f4", "<f8", "|i1", "<i2", "<i4",
                                        "<i8", "|u1", "<u2", "<u4", "<u8", "|b1"};
    for (size_t i = 0; i < KC_NPY_NTYPES; i++)
        if (kc_npy_types[i].dtype == dtype) return codes[i];
    return NULL;
}

/* Skip spaces at *p (bounded by end). */
static void kc_npy_skip(const char **p, const char *end) {
    while (*p < end && isspace((unsigned char)**p)) (*p)++;
}

/* Position right after the quoted key `key` followed by ':' in the header
 * dict, or NULL. */
static const char *kc_npy_key(const char *h, const char *end, const char *key) {
    size_t klen = strlen(key);
    for (const char *p = h; p + klen + 2 <= end; p++) {
        if ((*p == '\'' || *p == '"') && p[klen + 1] == *p && memcmp(p + 1, key, klen) == 0) {
            const char *q = p + klen + 2;
            kc_npy_skip(&q, end);
            if (q < end && *q == ':') {
                q++;
                kc_npy_skip(&q, end);
                return q;
            }
        }
    }
    return NULL;
}

/* Parse the header dict: type code, Fortran order and shape. */
static bool kc_npy_header(const char *name, const char *h, size_t len, char descr[16], bool *fortran,
                          int *rank, int64_t *dims, char *err, size_t errsize) {
    const char *end = h + len;
    const char *p = kc_npy_key(h, end, "descr");
    if (!p || (*p != '\'' && *p != '"')) {
        snprintf(err, errsize, "%s: .npy header has no 'descr' string (structured arrays are not supported)",
                 name);
        return false;
    }
    char quote = *p++;
    size_t n = 0;
    while (p < end && *p != quote && n + 1 < 16) descr[n++] = *p++;
    descr[n] = 0;
    if (p >= end || *p != quote) {
        snprintf(err, errsize, "%s: .npy header has a malformed 'descr'", name);
        return false;
    }
    p = kc_npy_key(h, end, "fortran_order");
    if (!p || (strncmp(p, "False", 5) != 0 && strncmp(p, "True", 4) != 0)) {
        snprintf(err, errsize, "%s: .npy header has no 'fortran_order' True/False", name);
        return false;
    }
    *fortran = *p == 'T';
    p = kc_npy_key(h, end, "shape");
    if (!p || *p != '(') {
        snprintf(err, errsize, "%s: .npy header has no 'shape' tuple", name);
        return false;
    }
    p++;
    *rank = 0;
    for (;;) {
        kc_npy_skip(&p, end);
        if (p < end && *p == ')') break;
        if (p >= end || !isdigit((unsigned char)*p)) {
            snprintf(err, errsize, "%s: .npy header has a malformed 'shape'", name);
            return false;
        }
        int64_t d = 0;
        while (p < end && isdigit((unsigned char)*p)) {
            if (d > (INT64_MAX - 9) / 10) {
                snprintf(err, errsize, "%s: .npy shape has a dimension too large", name);
                return false;
            }
            d = d * 10 + (*p++ - '0');
        }
        if (p < end && (*p == 'L' || *p == 'l')) p++; /* Python 2 longs */
        if (*rank >= KILN_MAX_RANK) {
            snprintf(err, errsize, "%s: .npy array has more than %d dimensions", name, KILN_MAX_RANK);
            return false;
        }
        dims[(*rank)++] = d;
        kc_npy_skip(&p, end);
        if (p < end && *p == ',') p++;
    }
    return true;
}

bool kc_npy_parse(const char *name, const unsigned char *b, size_t size, kiln_tensor **out, char *err,
                  size_t errsize) {
    if (!kc_npy_magic(b, size)) {
        snprintf(err, errsize, "%s: not a .npy file (no \\x93NUMPY magic)", name);
        return false;
    }
    if (size < 10) {
        snprintf(err, errsize, "%s: truncated .npy header", name);
        return false;
    }
    unsigned major = b[6];
    size_t hlen, hstart;
    if (major == 1) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12) {
            snprintf(err, errsize, "%s: truncated .npy header", name);
            return false;
        }
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        hstart = 12;
    } else {
        snprintf(err, errsize, "%s: .npy format version %u.%u is not supported (1.0, 2.0, 3.0 are)", name,
                 major, (unsigned)b[7]);
        return false;
    }
    if (hlen > size - hstart) {
        snprintf(err, errsize, "%s: truncated .npy header (%zu bytes announced, %zu in the file)", name, hlen,
                 size - hstart);
        return false;
    }
    char descr[16];
    bool fortran;
    int rank;
    int64_t dims[KILN_MAX_RANK];
    if (!kc_npy_header(name, (const char *)b + hstart, hlen, descr, &fortran, &rank, dims, err, errsize))
        return false;
    if (fortran) {
        snprintf(err, errsize,
                 "%s: the array is in Fortran order; save it in C order (numpy.ascontiguousarray)", name);
        return false;
    }
    char order = descr[0], kind = descr[1];
    int esize = atoi(descr + 2);
    kiln_dtype dtype = KILN_DTYPE_UNDEFINED;
    for (size_t i = 0; i < KC_NPY_NTYPES; i++)
        if (kc_npy_types[i].kind == kind && kc_npy_types[i].size == esize) dtype = kc_npy_types[i].dtype;
    if (!strchr("<>|=", order) || dtype == KILN_DTYPE_UNDEFINED) {
        snprintf(err, errsize, "%s: .npy element type '%s' is not supported (f2 f4 f8 i1-i8 u1-u8 b1 are)", name,
                 descr);
        return false;
    }
    uint64_t count = 1;
    for (int i = 0; i < rank; i++)
        if (__builtin_mul_overflow(count, (uint64_t)dims[i], &count) || count > (UINT64_MAX >> 4)) {
            snprintf(err, errsize, "%s: .npy shape is too large", name);
            return false;
        }
    uint64_t nbytes = count * (uint64_t)esize;
    size_t data_off = hstart + hlen;
    if ((uint64_t)(size - data_off) != nbytes) {
        snprintf(err, errsize, "%s: .npy data is %zu bytes but the header's shape and type need %llu", name,
                 size - data_off, (unsigned long long)nbytes);
        return false;
    }
    kiln_tensor *t = NULL;
    if (kiln_tensor_create(dtype, dims, rank, &t) != KILN_OK) {
        snprintf(err, errsize, "%s: %s", name, kiln_last_error());
        return false;
    }
    void *data;
    size_t tbytes;
    kiln_tensor_data(t, &data, &tbytes);
    if (tbytes != nbytes) {
        kiln_tensor_destroy(t);
        snprintf(err, errsize, "%s: internal size mismatch", name);
        return false;
    }
    if (nbytes) memcpy(data, b + data_off, (size_t)nbytes);
    if (order == '>' && esize > 1) {
        unsigned char *d = data;
        for (uint64_t i = 0; i < count; i++, d += esize)
            for (int j = 0; j < esize / 2; j++) {
                unsigned char c = d[j];
                d[j] = d[esize - 1 - j];
                d[esize - 1 - j] = c;
            }
    }
    *out = t;
    return true;
}

bool kc_npy_read(const char *path, kiln_tensor **out, char *err, size_t errsize) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsize, errno == ENOENT ? "no such file '%s'" : "cannot open '%s': %s", path,
                 strerror(errno));
        return false;
    }
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 1 << 16;
            unsigned char *nb = nc < cap ? NULL : realloc(buf, nc);
            if (!nb) {
                free(buf);
                fclose(f);
                snprintf(err, errsize, "%s: out of memory reading the file", path);
                return false;
            }
            buf = nb;
            cap = nc;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    bool read_error = ferror(f);
    fclose(f);
    if (read_error) {
        free(buf);
        snprintf(err, errsize, "cannot read '%s': %s", path, strerror(errno));
        return false;
    }
    bool ok = kc_npy_parse(path, buf, len, out, err, errsize);
    free(buf);
    return ok;
}

bool kc_npy_write(const char *path, kiln_tensor *t, char *err, size_t errsize) {
    kiln_dtype dtype;
    int rank;
    const int64_t *shape;
    void *data;
    size_t nbytes;
    kiln_tensor_dtype(t, &dtype);
    kiln_tensor_shape(t, &rank, &shape);
    kiln_tensor_data(t, &data, &nbytes);
    const char *descr = kc_npy_descr(dtype);
    if (!descr) {
        snprintf(err, errsize, "%s: element type %s has no .npy equivalent", path, kiln_dtype_name(dtype));
        return false;
    }
    char dict[64 + 24 * KILN_MAX_RANK];
    int pos = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < rank; i++)
        pos += snprintf(dict + pos, sizeof dict - (size_t)pos, "%lld%s", (long long)shape[i],
                        rank == 1 ? "," : i + 1 < rank ? ", " : "");
    pos += snprintf(dict + pos, sizeof dict - (size_t)pos, "), }");
    /* Pad with spaces so that the data starts on a 64-byte boundary; end with '\n'. */
    size_t pre = 10, total = pre + (size_t)pos + 1;
    size_t padded = (total + 63) / 64 * 64;
    size_t hlen = padded - pre;
    unsigned char head[16 + sizeof dict + 64];
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    head[8] = (unsigned char)(hlen & 0xff);
    head[9] = (unsigned char)(hlen >> 8);
    memcpy(head + pre, dict, (size_t)pos);
    memset(head + pre + pos, ' ', hlen - (size_t)pos - 1);
    head[padded - 1] = '\n';
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(err, errsize, "cannot create '%s': %s", path, strerror(errno));
        return false;
    }
    bool ok = fwrite(head, 1, padded, f) == padded && (nbytes == 0 || fwrite(data, 1, nbytes, f) == nbytes);
    if (fclose(f) != 0) ok = false;
    if (!ok) {
        snprintf(err, errsize, "cannot write '%s': %s", path, strerror(errno));
        return false;
    }
    return true;
}
