/*
 * format.h — the engine file's container: a fixed header, a section table,
 * a key/value metadata section and the sections' bytes, with one checksum
 * over everything.  This module knows nothing of what a section holds
 * (src/runtime/engine.c decides that); it writes, validates and indexes.
 * The format is written down in docs/ENGINE.md.
 *
 * All integers are little-endian; offsets and sizes are in bytes from the
 * start of the file.
 *
 *   offset  size  field
 *   ------  ----  ---------------------------------------------------------
 *        0     8  magic "KILNENG\0"
 *        8     4  u32 format version (KL_ENGINE_FORMAT_VERSION = 2)
 *       12     4  u32 byte-order mark 0x01020304 (bytes 04 03 02 01)
 *       16     8  u64 file size (the whole file, header included)
 *       24     4  u32 section count N (1..KL_ENGINE_MAX_SECTIONS)
 *       28     4  u32 header size H (64 in version 1; the table starts at H)
 *       32     8  u64 checksum: chunked KH64 (kl_kh64c, src/core/hash.h: 4 MiB
 *                 chunks hashed apart, so a large engine is verified on
 *                 several threads) of every byte from offset 40 to the end
 *                 of the file (version 1: plain KH64, seed 0)
 *       40    24  reserved, zero
 *        H  24*N  section table, N entries of
 *                   u32 kind, u32 flags, u64 offset, u64 size
 *                 offsets are multiples of 64 (KL_ENGINE_ALIGN), sections
 *                 lie after the table, inside the file, and do not overlap
 *      ...        padding (zero) and the sections' bytes
 *
 *   META section (kind 1, exactly one): u32 count, then per entry
 *     u32 key length, key bytes, NUL, u32 value length, value bytes, NUL
 *   keys are 1..KL_ENGINE_MAX_KEY bytes of [a-z0-9_.-], unique; values
 *   hold no NUL (so the reader hands out C strings pointing into the file).
 *
 * Section flags: KL_SEC_FLAG_REQUIRED marks a section a reader must
 * understand; an unknown kind without it is skipped (forward compatibility),
 * an unknown kind with it is refused (KILN_ERR_ENGINE_MISMATCH).  Either way
 * its bytes are covered by the checksum.
 *
 * Versioning: the format version changes when the header, the table or the
 * META encoding changes incompatibly; this kiln reads version 2 only (version 1 differs in the checksum).  New
 * section kinds do not change the version.
 */
#ifndef KL_ENGINE_FORMAT_H
#define KL_ENGINE_FORMAT_H

#include "core/core.h"

#define KL_ENGINE_MAGIC "KILNENG"        /* 8 bytes with the NUL */
#define KL_ENGINE_FORMAT_VERSION 2u
#define KL_ENGINE_BOM 0x01020304u
#define KL_ENGINE_HEADER_SIZE 64u
#define KL_ENGINE_ENTRY_SIZE 24u         /* one section table entry */
#define KL_ENGINE_CHECKSUM_OFFSET 32u    /* the u64 checksum field */
#define KL_ENGINE_CHECKED_FROM 40u       /* first byte covered by the checksum */
#define KL_ENGINE_ALIGN 64u              /* section offsets are multiples of this */
#define KL_ENGINE_MAX_SECTIONS 256u
#define KL_ENGINE_MAX_META 4096u         /* metadata entries */
#define KL_ENGINE_MAX_KEY 128u           /* bytes in a metadata key */

/* Section kinds.  Numbers are part of the format: never reuse one. */
enum {
    KL_SEC_META = 1,     /* key/value strings (kiln_version, model_sha256, ...) */
    KL_SEC_GRAPH = 2,    /* the optimized graph: ONNX ModelProto bytes (src/onnx/write.h) */
    KL_SEC_WEIGHTS = 3,  /* constant blob referenced by the graph, 64-byte aligned tensors */
    KL_SEC_TACTICS = 4,  /* tactic choices per node */
    KL_SEC_PLANS = 5,    /* memory plans */
    KL_SEC_PROFILES = 6, /* optimization profiles */
    KL_SEC_PACKED = 7    /* pre-packed weights */
};

/* Section flags. */
enum { KL_SEC_FLAG_REQUIRED = 1u << 0 };

/* Name of a section kind ("graph", "weights", ...; "unknown" otherwise). */
const char *kl_engine_section_name(uint32_t kind);

/* ---- writer --------------------------------------------------------------------- */

typedef struct kl_engine_writer kl_engine_writer;

/* A new, empty writer.  Owner: caller (kl_engine_writer_destroy). */
kiln_status kl_engine_writer_create(kl_engine_writer **out);
void kl_engine_writer_destroy(kl_engine_writer *w);

/* Add metadata key=value (both copied; a value may hold any byte but NUL).
 * KILN_ERR_INVALID_ARGUMENT for a malformed key (see above) or one already set. */
kiln_status kl_engine_writer_meta(kl_engine_writer *w, const char *key, const char *value);

/* Add a section.  The bytes are REFERENCED, not copied: data[0..size) must
 * stay valid and unchanged until kl_engine_writer_finish/_save returns (so a
 * 100 MB weight blob is copied once, into the output).  kind must not be
 * KL_SEC_META (the writer makes that one) nor repeat an earlier kind
 * (KILN_ERR_INVALID_ARGUMENT).  Sections are laid out in the order added. */
kiln_status kl_engine_writer_section(kl_engine_writer *w, uint32_t kind, const void *data, size_t size);
/* Same with section flags (KL_SEC_FLAG_REQUIRED). */
kiln_status kl_engine_writer_section_flags(kl_engine_writer *w, uint32_t kind, uint32_t flags,
                                           const void *data, size_t size);

/* Lay out and checksum the whole engine into one new buffer.  Owner of
 * *bytes: caller (kl_free).  The writer may be used again afterwards. */
kiln_status kl_engine_writer_finish(kl_engine_writer *w, void **bytes, size_t *size);

/* Write the engine to `path` atomically: a temporary file in the same
 * folder, fsync, rename over `path`, fsync of the folder.  A reader sees
 * the old file or the complete new one, never a partial one; on failure
 * the temporary file is removed.  Errors name the path (KILN_ERR_IO). */
kiln_status kl_engine_writer_save(kl_engine_writer *w, const char *path);
/* Stream the engine image into fd from its current offset 0 (no fsync, no
 * rename: a temporary file the caller maps). */
kiln_status kl_engine_writer_write_fd(kl_engine_writer *w, int fd);

/* ---- reader --------------------------------------------------------------------- */

typedef struct kl_engine_section {
    uint32_t kind, flags;
    uint64_t offset, size;
    const uint8_t *data; /* bytes + offset */
} kl_engine_section;

/* A validated engine file.  Everything points into `bytes` (zero-copy):
 * the bytes must outlive the kl_engine_file (a mapped file is owned). */
typedef struct kl_engine_file {
    const uint8_t *bytes;
    size_t size;
    uint32_t version;
    uint64_t checksum;
    kl_engine_section *sections; /* n_sections, in table order */
    size_t n_sections;
    const char **meta_keys;      /* n_meta NUL-terminated strings in the file */
    const char **meta_values;
    size_t n_meta;
    kl_mapfile map;              /* set by kl_engine_file_map, else empty */
} kl_engine_file;

/* Verification done by kl_engine_file_open_ex. */
enum {
    KL_ENGINE_VERIFY_FULL = 0,         /* structure + checksum of everything (default) */
    KL_ENGINE_VERIFY_NO_CHECKSUM = 1u  /* structure only: for a caller that has just
                                          verified the same bytes (tests, benchmarks) */
};

/* Validate bytes[0..size) as an engine file and index it; nothing is used
 * before everything is checked.  Refusals, one line each (docs/ENGINE.md):
 * KILN_ERR_PARSE for bad magic, byte order, truncation, checksum, section
 * table and metadata problems; KILN_ERR_ENGINE_MISMATCH for another format
 * version or an unknown required section.  *out is zeroed on failure and
 * needs kl_engine_file_close on success. */
kiln_status kl_engine_file_open(const void *bytes, size_t size, kl_engine_file *out);
kiln_status kl_engine_file_open_ex(const void *bytes, size_t size, unsigned verify, kl_engine_file *out);

/* Map `path` read-only (kl_mapfile) and open it; messages start with the
 * path.  The mapping is released by kl_engine_file_close. */
kiln_status kl_engine_file_map(const char *path, kl_engine_file *out);

/* Release what kl_engine_file_open/_map made (the map included). */
void kl_engine_file_close(kl_engine_file *f);

/* Metadata value for `key`, or NULL when absent. */
const char *kl_engine_file_meta(const kl_engine_file *f, const char *key);

/* The section of `kind`: true and data/size set when present, false (and
 * NULL/0) when the file has none.  Sets no error. */
bool kl_engine_file_section(const kl_engine_file *f, uint32_t kind, const void **data, size_t *size);

#endif /* KL_ENGINE_FORMAT_H */
