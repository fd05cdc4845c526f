/* The engine file's container: writer, atomic save, validating reader
 * (layout in format.h, docs/ENGINE.md). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/hash.h"
#include "engine/format.h"

const char *kl_engine_section_name(uint32_t kind) {
    switch (kind) {
    case KL_SEC_META: return "meta";
    case KL_SEC_GRAPH: return "graph";
    case KL_SEC_WEIGHTS: return "weights";
    case KL_SEC_TACTICS: return "tactics";
    case KL_SEC_PLANS: return "plans";
    case KL_SEC_PROFILES: return "profiles";
    case KL_SEC_PACKED: return "packed";
    default: return "unknown";
    }
}

static bool kl_sec_known(uint32_t kind) { return kind >= KL_SEC_META && kind <= KL_SEC_PACKED; }

static inline void kl_put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void kl_put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t kl_get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static inline uint64_t kl_get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Key syntax: 1..KL_ENGINE_MAX_KEY bytes of [a-z0-9_.-]. */
static bool kl_meta_key_ok(const char *k, size_t len) {
    if (len == 0 || len > KL_ENGINE_MAX_KEY) return false;
    for (size_t i = 0; i < len; i++) {
        char c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* ---- writer ------------------------------------------------------------------- */

typedef struct kl_wsec {
    uint32_t kind, flags;
    const void *data;
    size_t size;
    uint64_t offset; /* set by the layout */
} kl_wsec;

struct kl_engine_writer {
    char **keys, **values;
    size_t n_meta, cap_meta;
    kl_wsec *secs; /* secs[0] is META, filled at layout time */
    size_t n_secs, cap_secs;
    uint8_t *meta;  /* encoded META section (rebuilt by each layout) */
    size_t meta_size;
};

kiln_status kl_engine_writer_create(kl_engine_writer **out) {
    *out = NULL;
    kl_engine_writer *w = kl_calloc(1, sizeof *w);
    if (!w) return KILN_ERR_NO_MEMORY;
    w->secs = kl_calloc(8, sizeof *w->secs);
    if (!w->secs) {
        kl_free(w);
        return KILN_ERR_NO_MEMORY;
    }
    w->cap_secs = 8;
    w->n_secs = 1;
    w->secs[0].kind = KL_SEC_META;
    w->secs[0].flags = KL_SEC_FLAG_REQUIRED;
    *out = w;
    return KILN_OK;
}

void kl_engine_writer_destroy(kl_engine_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_meta; i++) {
        kl_free(w->keys[i]);
        kl_free(w->values[i]);
    }
    kl_free(w->keys);
    kl_free(w->values);
    kl_free(w->secs);
    kl_free(w->meta);
    kl_free(w);
}

kiln_status kl_engine_writer_meta(kl_engine_writer *w, const char *key, const char *value) {
    if (!key || !value) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "engine metadata: NULL key or value");
    if (!kl_meta_key_ok(key, strlen(key)))
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT,
                         "engine metadata key '%s' is malformed (1-%u bytes of a-z 0-9 _ . -)", key,
                         KL_ENGINE_MAX_KEY);
    for (size_t i = 0; i < w->n_meta; i++)
        if (strcmp(w->keys[i], key) == 0)
            return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "engine metadata key '%s' is set twice", key);
    if (w->n_meta >= KL_ENGINE_MAX_META)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "engine metadata: more than %u entries", KL_ENGINE_MAX_META);
    if (strlen(value) > UINT32_MAX)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "engine metadata '%s': value too long", key);
    if (w->n_meta == w->cap_meta) {
        size_t cap = w->cap_meta ? 2 * w->cap_meta : 16;
        char **k = kl_realloc_array(w->keys, cap, sizeof *k);
        if (!k) return KILN_ERR_NO_MEMORY;
        w->keys = k;
        char **v = kl_realloc_array(w->values, cap, sizeof *v);
        if (!v) return KILN_ERR_NO_MEMORY;
        w->values = v;
        w->cap_meta = cap;
    }
    char *k = kl_strdup(key), *v = kl_strdup(value);
    if (!k || !v) {
        kl_free(k);
        kl_free(v);
        return KILN_ERR_NO_MEMORY;
    }
    w->keys[w->n_meta] = k;
    w->values[w->n_meta++] = v;
    return KILN_OK;
}

kiln_status kl_engine_writer_section_flags(kl_engine_writer *w, uint32_t kind, uint32_t flags,
                                           const void *data, size_t size) {
    if (kind == 0 || kind == KL_SEC_META)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "engine section kind %u cannot be added (%s)", kind,
                         kind ? "the writer makes the metadata section" : "kind 0 is reserved");
    if (size && !data) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "engine section %s: NULL data", kl_engine_section_name(kind));
    for (size_t i = 0; i < w->n_secs; i++)
        if (w->secs[i].kind == kind)
            return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "engine section kind %u (%s) added twice", kind,
                             kl_engine_section_name(kind));
    if (w->n_secs >= KL_ENGINE_MAX_SECTIONS)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "engine: more than %u sections", KL_ENGINE_MAX_SECTIONS);
    if (w->n_secs == w->cap_secs) {
        kl_wsec *s = kl_realloc_array(w->secs, 2 * w->cap_secs, sizeof *s);
        if (!s) return KILN_ERR_NO_MEMORY;
        w->secs = s;
        w->cap_secs *= 2;
    }
    w->secs[w->n_secs++] = (kl_wsec){kind, flags, data, size, 0};
    return KILN_OK;
}

kiln_status kl_engine_writer_section(kl_engine_writer *w, uint32_t kind, const void *data, size_t size) {
    return kl_engine_writer_section_flags(w, kind, 0, data, size);
}

/* Encode META, assign 64-byte aligned offsets; *total = file size. */
static kiln_status kl_writer_layout(kl_engine_writer *w, uint64_t *total) {
    size_t msize = 4;
    for (size_t i = 0; i < w->n_meta; i++) msize += 4 + strlen(w->keys[i]) + 1 + 4 + strlen(w->values[i]) + 1;
    kl_free(w->meta);
    w->meta = kl_malloc(msize);
    if (!w->meta) return KILN_ERR_NO_MEMORY;
    w->meta_size = msize;
    uint8_t *p = w->meta;
    kl_put32(p, (uint32_t)w->n_meta);
    p += 4;
    for (size_t i = 0; i < w->n_meta; i++)
        for (int kv = 0; kv < 2; kv++) {
            const char *s = kv ? w->values[i] : w->keys[i];
            size_t len = strlen(s);
            kl_put32(p, (uint32_t)len);
            memcpy(p + 4, s, len + 1);
            p += 4 + len + 1;
        }
    w->secs[0].data = w->meta;
    w->secs[0].size = msize;
    uint64_t off = KL_ENGINE_HEADER_SIZE + (uint64_t)KL_ENGINE_ENTRY_SIZE * w->n_secs;
    for (size_t i = 0; i < w->n_secs; i++) {
        off = (off + KL_ENGINE_ALIGN - 1) / KL_ENGINE_ALIGN * KL_ENGINE_ALIGN;
        w->secs[i].offset = off;
        off += w->secs[i].size;
    }
    if (off > KL_MAX_ALLOC) return kl_errorf(KILN_ERR_NO_MEMORY, "engine of %llu bytes is too large", (unsigned long long)off);
    *total = off;
    return KILN_OK;
}

/* Header (checksum field zero) and table into hdr[0..hsize). */
static void kl_writer_header(const kl_engine_writer *w, uint64_t total, uint8_t *hdr) {
    size_t hsize = KL_ENGINE_HEADER_SIZE + KL_ENGINE_ENTRY_SIZE * w->n_secs;
    memset(hdr, 0, hsize);
    memcpy(hdr, KL_ENGINE_MAGIC, 8);
    kl_put32(hdr + 8, KL_ENGINE_FORMAT_VERSION);
    kl_put32(hdr + 12, KL_ENGINE_BOM);
    kl_put64(hdr + 16, total);
    kl_put32(hdr + 24, (uint32_t)w->n_secs);
    kl_put32(hdr + 28, KL_ENGINE_HEADER_SIZE);
    for (size_t i = 0; i < w->n_secs; i++) {
        uint8_t *e = hdr + KL_ENGINE_HEADER_SIZE + KL_ENGINE_ENTRY_SIZE * i;
        kl_put32(e, w->secs[i].kind);
        kl_put32(e + 4, w->secs[i].flags);
        kl_put64(e + 8, w->secs[i].offset);
        kl_put64(e + 16, w->secs[i].size);
    }
}

kiln_status kl_engine_writer_finish(kl_engine_writer *w, void **bytes, size_t *size) {
    *bytes = NULL;
    *size = 0;
    uint64_t total;
    KL_TRY(kl_writer_layout(w, &total));
    uint8_t *buf = kl_calloc(1, (size_t)total);
    if (!buf) return KILN_ERR_NO_MEMORY;
    kl_writer_header(w, total, buf);
    for (size_t i = 0; i < w->n_secs; i++)
        if (w->secs[i].size) memcpy(buf + w->secs[i].offset, w->secs[i].data, w->secs[i].size);
    kl_put64(buf + KL_ENGINE_CHECKSUM_OFFSET,
             kl_kh64c(buf + KL_ENGINE_CHECKED_FROM, (size_t)total - KL_ENGINE_CHECKED_FROM, 0));
    *bytes = buf;
    *size = (size_t)total;
    return KILN_OK;
}

/* write(2) all of it, retrying on EINTR and short writes. */
static int kl_write_all(int fd, const void *data, size_t size) {
    const uint8_t *p = data;
    while (size) {
        ssize_t n = write(fd, p, size > (1u << 30) ? (1u << 30) : size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        size -= (size_t)n;
    }
    return 0;
}

/* Stream the engine to fd (at its offset 0; header, sections, then the
 * checksum patched in): 0, or -1 with errno set. */
static int kl_writer_stream(kl_engine_writer *w, uint64_t total, int fd, uint8_t *hdr, size_t hsize) {
    /* Stream: header, then each section after zero padding, hashing what
     * follows the checksum field; the checksum is patched in at the end. */
    kl_writer_header(w, total, hdr);
    kl_kh64c_state h;
    kl_kh64c_init(&h);
    kl_kh64c_update(&h, hdr + KL_ENGINE_CHECKED_FROM, hsize - KL_ENGINE_CHECKED_FROM);
    static const uint8_t zeros[KL_ENGINE_ALIGN];
    uint64_t pos = hsize;
    int rc = kl_write_all(fd, hdr, hsize);
    for (size_t i = 0; i < w->n_secs && rc == 0; i++) {
        size_t pad = (size_t)(w->secs[i].offset - pos);
        kl_kh64c_update(&h, zeros, pad);
        rc = kl_write_all(fd, zeros, pad);
        if (rc == 0 && w->secs[i].size) {
            kl_kh64c_update(&h, w->secs[i].data, w->secs[i].size);
            rc = kl_write_all(fd, w->secs[i].data, w->secs[i].size);
        }
        pos = w->secs[i].offset + w->secs[i].size;
    }
    if (rc == 0) {
        uint8_t sum[8];
        kl_put64(sum, kl_kh64c_final(&h));
        rc = pwrite(fd, sum, 8, KL_ENGINE_CHECKSUM_OFFSET) == 8 ? 0 : -1;
    }
    return rc;
}

kiln_status kl_engine_writer_write_fd(kl_engine_writer *w, int fd) {
    uint64_t total;
    KL_TRY(kl_writer_layout(w, &total));
    size_t hsize = KL_ENGINE_HEADER_SIZE + KL_ENGINE_ENTRY_SIZE * w->n_secs;
    uint8_t *hdr = kl_malloc(hsize);
    if (!hdr) return KILN_ERR_NO_MEMORY;
    int rc = kl_writer_stream(w, total, fd, hdr, hsize);
    int e = errno;
    kl_free(hdr);
    if (rc != 0) return kl_errorf(KILN_ERR_IO, "cannot write the engine: %s", strerror(e));
    return KILN_OK;
}

kiln_status kl_engine_writer_save(kl_engine_writer *w, const char *path) {
    if (!path || !path[0]) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "engine save: empty path");
    uint64_t total;
    KL_TRY(kl_writer_layout(w, &total));
    size_t plen = strlen(path);
    char *tmp = kl_malloc(plen + 16);
    size_t hsize = KL_ENGINE_HEADER_SIZE + KL_ENGINE_ENTRY_SIZE * w->n_secs;
    uint8_t *hdr = kl_malloc(hsize);
    if (!tmp || !hdr) {
        kl_free(tmp);
        kl_free(hdr);
        return KILN_ERR_NO_MEMORY;
    }
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    kiln_status s = KILN_OK;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        s = kl_errorf(KILN_ERR_IO, "cannot create a temporary file next to '%s': %s", path, strerror(errno));
        goto out_free;
    }
    int rc = kl_writer_stream(w, total, fd, hdr, hsize);
    if (rc == 0) rc = fchmod(fd, 0644);
    if (rc == 0) rc = fsync(fd);
    if (rc != 0) {
        s = kl_errorf(KILN_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out_free;
    }
    if (close(fd) != 0) {
        s = kl_errorf(KILN_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
        unlink(tmp);
        goto out_free;
    }
    if (rename(tmp, path) != 0) {
        s = kl_errorf(KILN_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        unlink(tmp);
        goto out_free;
    }
    /* Make the rename itself durable: fsync the folder (best effort). */
    const char *slash = strrchr(path, '/');
    char *dir = slash ? kl_strdup(path) : NULL;
    if (slash && !dir) kl_error_clear();
    if (dir) dir[slash == path ? 1 : (size_t)(slash - path)] = 0;
    int dfd = open(dir ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    kl_free(dir);
out_free:
    kl_free(tmp);
    kl_free(hdr);
    return s;
}

/* ---- reader ------------------------------------------------------------------------ */

/* Parse the META section into f->meta_keys/values (pointers into the file). */
static kiln_status kl_parse_meta(kl_engine_file *f, const uint8_t *p, uint64_t size) {
    if (size < 4) return kl_errorf(KILN_ERR_PARSE, "malformed engine metadata: %llu bytes, no entry count", (unsigned long long)size);
    uint32_t count = kl_get32(p);
    /* An entry takes at least 4+1+1+4+0+1 = 11 bytes. */
    if (count > KL_ENGINE_MAX_META || (uint64_t)count * 11 > size - 4)
        return kl_errorf(KILN_ERR_PARSE, "malformed engine metadata: %u entries do not fit (at most %u, in %llu bytes)",
                         count, KL_ENGINE_MAX_META, (unsigned long long)size);
    f->meta_keys = kl_calloc(count ? count : 1, sizeof(char *));
    f->meta_values = kl_calloc(count ? count : 1, sizeof(char *));
    if (!f->meta_keys || !f->meta_values) return KILN_ERR_NO_MEMORY;
    uint64_t pos = 4;
    for (uint32_t i = 0; i < count; i++) {
        const char *kv[2];
        for (int j = 0; j < 2; j++) {
            const char *what = j ? "value" : "key";
            if (size - pos < 4)
                return kl_errorf(KILN_ERR_PARSE, "malformed engine metadata: entry %u's %s runs past the section", i, what);
            uint32_t len = kl_get32(p + pos);
            pos += 4;
            if ((uint64_t)len + 1 > size - pos)
                return kl_errorf(KILN_ERR_PARSE, "malformed engine metadata: entry %u's %s (%u bytes) runs past the section", i,
                                 what, len);
            const char *s = (const char *)p + pos;
            if (s[len] != 0 || memchr(s, 0, len))
                return kl_errorf(KILN_ERR_PARSE, "malformed engine metadata: entry %u's %s is not a NUL-terminated string", i, what);
            if (j == 0 && !kl_meta_key_ok(s, len))
                return kl_errorf(KILN_ERR_PARSE, "malformed engine metadata: entry %u's key is not 1-%u bytes of a-z 0-9 _ . -", i,
                                 KL_ENGINE_MAX_KEY);
            kv[j] = s;
            pos += (uint64_t)len + 1;
        }
        for (size_t k = 0; k < f->n_meta; k++)
            if (strcmp(f->meta_keys[k], kv[0]) == 0)
                return kl_errorf(KILN_ERR_PARSE, "malformed engine metadata: key '%s' appears twice", kv[0]);
        f->meta_keys[f->n_meta] = kv[0];
        f->meta_values[f->n_meta++] = kv[1];
    }
    if (pos != size)
        return kl_errorf(KILN_ERR_PARSE, "malformed engine metadata: %llu bytes after the last entry",
                         (unsigned long long)(size - pos));
    return KILN_OK;
}

/* Everything but the zeroing and cleanup of kl_engine_file_open_ex. */
static kiln_status kl_engine_validate(const uint8_t *b, size_t size, unsigned verify, kl_engine_file *f) {
    if (size < 8 || memcmp(b, KL_ENGINE_MAGIC, 8) != 0)
        return kl_errorf(KILN_ERR_PARSE, "not a kiln engine (bad magic)");
    if (size < KL_ENGINE_HEADER_SIZE)
        return kl_errorf(KILN_ERR_PARSE, "truncated engine: %zu bytes, shorter than the %u-byte header", size,
                         KL_ENGINE_HEADER_SIZE);
    uint32_t bom = kl_get32(b + 12);
    if (bom == __builtin_bswap32(KL_ENGINE_BOM))
        return kl_errorf(KILN_ERR_PARSE, "engine written in big-endian byte order; this kiln reads little-endian engines: rebuild the engine");
    if (bom != KL_ENGINE_BOM)
        return kl_errorf(KILN_ERR_PARSE, "bad engine byte-order mark 0x%08x (expected 0x%08x): the header is corrupt", bom,
                         KL_ENGINE_BOM);
    uint32_t version = kl_get32(b + 8);
    if (version != KL_ENGINE_FORMAT_VERSION)
        return kl_errorf(KILN_ERR_ENGINE_MISMATCH, "engine format version %u, this kiln reads version %u: rebuild the engine",
                         version, KL_ENGINE_FORMAT_VERSION);
    uint64_t fsize = kl_get64(b + 16);
    if (fsize > size)
        return kl_errorf(KILN_ERR_PARSE, "truncated engine: %zu bytes, its header says %llu", size, (unsigned long long)fsize);
    if (fsize < size)
        return kl_errorf(KILN_ERR_PARSE, "engine size mismatch: %zu bytes, its header says %llu (trailing data)", size,
                         (unsigned long long)fsize);
    uint32_t hsize = kl_get32(b + 28), count = kl_get32(b + 24);
    if (hsize < KL_ENGINE_HEADER_SIZE || hsize > 4096 || hsize % 8)
        return kl_errorf(KILN_ERR_PARSE, "bad engine header size %u (expected a multiple of 8 from %u to 4096)", hsize,
                         KL_ENGINE_HEADER_SIZE);
    if (count == 0 || count > KL_ENGINE_MAX_SECTIONS)
        return kl_errorf(KILN_ERR_PARSE, "engine section count %u is out of range (1..%u)", count, KL_ENGINE_MAX_SECTIONS);
    uint64_t table_end = hsize + (uint64_t)KL_ENGINE_ENTRY_SIZE * count;
    if (table_end > size)
        return kl_errorf(KILN_ERR_PARSE, "truncated engine: the section table (%u entries) ends at byte %llu, past the end (%zu bytes)",
                         count, (unsigned long long)table_end, size);
    f->checksum = kl_get64(b + KL_ENGINE_CHECKSUM_OFFSET);
    if (!(verify & KL_ENGINE_VERIFY_NO_CHECKSUM)) {
        uint64_t sum = kl_kh64c(b + KL_ENGINE_CHECKED_FROM, size - KL_ENGINE_CHECKED_FROM, 0);
        if (sum != f->checksum)
            return kl_errorf(KILN_ERR_PARSE, "engine checksum mismatch (stored %016llx, computed %016llx): the file is corrupt",
                             (unsigned long long)f->checksum, (unsigned long long)sum);
    }
    f->sections = kl_calloc(count, sizeof *f->sections);
    if (!f->sections) return KILN_ERR_NO_MEMORY;
    const kl_engine_section *meta = NULL;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *e = b + hsize + (size_t)KL_ENGINE_ENTRY_SIZE * i;
        kl_engine_section s = {kl_get32(e), kl_get32(e + 4), kl_get64(e + 8), kl_get64(e + 16), NULL};
        const char *name = kl_engine_section_name(s.kind);
        if (s.kind == 0) return kl_errorf(KILN_ERR_PARSE, "engine section %u has kind 0 (reserved)", i);
        if (s.offset % KL_ENGINE_ALIGN)
            return kl_errorf(KILN_ERR_PARSE, "engine section %u (%s) at offset %llu is not %u-byte aligned", i, name,
                             (unsigned long long)s.offset, KL_ENGINE_ALIGN);
        if (s.offset < table_end || s.offset > size || s.size > size - s.offset)
            return kl_errorf(KILN_ERR_PARSE,
                             "engine section %u (%s) at offset %llu with %llu bytes is out of bounds (data lies in bytes %llu..%zu)",
                             i, name, (unsigned long long)s.offset, (unsigned long long)s.size,
                             (unsigned long long)table_end, size);
        for (uint32_t j = 0; j < i; j++) {
            const kl_engine_section *o = &f->sections[j];
            if (o->kind == s.kind)
                return kl_errorf(KILN_ERR_PARSE, "engine section kind %u (%s) appears twice (sections %u and %u)", s.kind,
                                 name, j, i);
            if (s.size && o->size && s.offset < o->offset + o->size && o->offset < s.offset + s.size)
                return kl_errorf(KILN_ERR_PARSE, "engine sections %u (%s) and %u (%s) overlap", j,
                                 kl_engine_section_name(o->kind), i, name);
        }
        if (!kl_sec_known(s.kind) && (s.flags & KL_SEC_FLAG_REQUIRED))
            return kl_errorf(KILN_ERR_ENGINE_MISMATCH,
                             "engine needs section kind %u, which this kiln does not know: rebuild the engine or update kiln",
                             s.kind);
        s.data = b + s.offset;
        f->sections[i] = s;
        if (s.kind == KL_SEC_META) meta = &f->sections[i];
    }
    f->n_sections = count;
    if (!meta) return kl_errorf(KILN_ERR_PARSE, "engine has no metadata section");
    KL_TRY(kl_parse_meta(f, meta->data, meta->size));
    f->bytes = b;
    f->size = size;
    f->version = version;
    return KILN_OK;
}

kiln_status kl_engine_file_open_ex(const void *bytes, size_t size, unsigned verify, kl_engine_file *out) {
    memset(out, 0, sizeof *out);
    if (!bytes && size) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "engine: NULL bytes");
    kiln_status s = kl_engine_validate(bytes ? bytes : (const void *)"", size, verify, out);
    if (s) kl_engine_file_close(out);
    return s;
}

kiln_status kl_engine_file_open(const void *bytes, size_t size, kl_engine_file *out) {
    return kl_engine_file_open_ex(bytes, size, KL_ENGINE_VERIFY_FULL, out);
}

kiln_status kl_engine_file_map(const char *path, kl_engine_file *out) {
    memset(out, 0, sizeof *out);
    kl_mapfile mf;
    KL_TRY(kl_mapfile_open(path, &mf));
    kiln_status s = kl_engine_file_open(mf.data, mf.size, out);
    if (s) {
        kl_mapfile_close(&mf);
        return kl_error_context(s, "%s: ", path);
    }
    out->map = mf;
    return KILN_OK;
}

void kl_engine_file_close(kl_engine_file *f) {
    if (!f) return;
    kl_free(f->sections);
    kl_free((void *)f->meta_keys);
    kl_free((void *)f->meta_values);
    kl_mapfile_close(&f->map);
    memset(f, 0, sizeof *f);
}

const char *kl_engine_file_meta(const kl_engine_file *f, const char *key) {
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

bool kl_engine_file_section(const kl_engine_file *f, uint32_t kind, const void **data, size_t *size) {
    for (size_t i = 0; i < f->n_sections; i++)
        if (f->sections[i].kind == kind) {
            *data = f->sections[i].data;
            *size = (size_t)f->sections[i].size;
            return true;
        }
    *data = NULL;
    *size = 0;
    return false;
}
