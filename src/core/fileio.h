/* Private file primitives shared by the token, safetensors, checkpoint and
 * NPU trace code: read-only mappings, atomic replacement (temp file in the
 * same directory, fsync, rename, fsync of the directory) and mkdir -p. */
#ifndef HS_CORE_FILEIO_H
#define HS_CORE_FILEIO_H

#include "hyperspeed/core.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The on-disk formats are little-endian, as is every host we build for;
 * these loads and stores are where a big-endian port would swap. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "hyperspeed file formats assume a little-endian host");

static inline uint32_t hs_load_le32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline uint64_t hs_load_le64(const void *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void hs_store_le32(void *p, uint32_t v) { memcpy(p, &v, sizeof v); }
static inline void hs_store_le64(void *p, uint64_t v) { memcpy(p, &v, sizeof v); }

/* A whole file mapped read-only. An empty file maps to data == NULL. */
typedef struct hs_mapped_file {
    const unsigned char *data;
    uint64_t size;
} hs_mapped_file;

/* Errors: HS_ERR_IO "open PATH: strerror" (also for directories). */
hs_status hs_file_map(const char *path, hs_mapped_file *m);
void hs_file_unmap(hs_mapped_file *m);

/* A file being written under a temporary name next to its final path.
 * Nothing is visible at `path` until hs_atomic_commit renames it there. */
typedef struct hs_atomic_file {
    FILE *fp;
    char *path;
    char *tmp_path;
} hs_atomic_file;

/* Creates PATH.tmp.XXXXXX (mode 0644) in PATH's directory.
 * Errors: HS_ERR_IO naming the temp path and strerror, HS_ERR_OUT_OF_MEMORY. */
hs_status hs_atomic_open(hs_atomic_file *af, const char *path);
/* Appends n bytes. Errors: HS_ERR_IO naming the final path. */
hs_status hs_atomic_write(hs_atomic_file *af, const void *p, size_t n);
/* Overwrites n bytes at `offset` (already written) and returns to the end. */
hs_status hs_atomic_rewrite(hs_atomic_file *af, uint64_t offset, const void *p, size_t n);
/* fflush, fsync, close, rename onto the final path, fsync the directory.
 * On failure the temp file is removed. Either way `af` is spent. */
hs_status hs_atomic_commit(hs_atomic_file *af);
/* Closes and removes the temp file; `af` is spent. No-op on a spent one. */
void hs_atomic_abort(hs_atomic_file *af);

/* Creates `dir` and its missing parents (mode 0755); fine if it exists.
 * Errors: HS_ERR_IO naming the component that failed,
 * HS_ERR_INVALID_ARGUMENT for "". */
hs_status hs_mkdir_p(const char *dir);

/* Re-records the current error message as "what: message" with status s
 * and returns s, for adding a file name to a lower layer's message. */
hs_status hs_error_prefix(hs_status s, const char *what);

/* malloc'd "dir/name"; NULL with HS_ERR_OUT_OF_MEMORY recorded. */
char *hs_path_join(const char *dir, const char *name);

#endif
