/* hyperspeed checkpoints and the safetensors files they are made of.
 * docs/checkpoints.md describes the layout on disk and the guarantees.
 *
 * safetensors (https://huggingface.co/docs/safetensors): an 8-byte
 * little-endian header length n, n bytes of JSON
 *   {"NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
 *    ..., "__metadata__": {"key": "value", ...}}
 * then the data section; offsets are relative to its start, and the
 * tensors cover it exactly, without gaps or overlaps.
 */
#ifndef HYPERSPEED_CHECKPOINT_H
#define HYPERSPEED_CHECKPOINT_H

#include "hyperspeed/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------- safetensors */

/* One named tensor. dtype is one of hs_dtype (F32, BF16, F16, I32, I64,
 * I8 in the file); ndim 0..HS_MAX_DIMS (0 is a scalar); sizes may be 0.
 * Data is dense, row-major, little-endian. */
typedef struct hs_st_tensor {
    const char *name;
    hs_dtype dtype;
    int ndim;
    int64_t shape[HS_MAX_DIMS];
    const void *data;
} hs_st_tensor;

/* A __metadata__ entry (both strings UTF-8). */
typedef struct hs_st_kv {
    const char *key;
    const char *value;
} hs_st_kv;

/* Writes tensors[n] and metadata[n_meta] (may be NULL when 0) to `path`
 * atomically: temp file in the same directory, fwrite, fflush, fsync,
 * rename, fsync of the directory; a failure leaves `path` as it was. The
 * data section holds the tensors by element size, largest first (caller
 * order within a size), so each is aligned to its element size in a file
 * mapped at a page boundary; the header is padded with spaces to a
 * multiple of 8 bytes as the format recommends. The caller keeps ownership
 * of everything.
 * Errors: HS_ERR_INVALID_ARGUMENT (NULL or empty or duplicate name, the
 * name "__metadata__", ndim, negative size, NULL data with bytes, non-UTF-8
 * string, duplicate metadata key), HS_ERR_DTYPE, HS_ERR_IO,
 * HS_ERR_OUT_OF_MEMORY. */
HS_API hs_status hs_safetensors_write(const char *path, const hs_st_tensor *tensors, int n, const hs_st_kv *metadata,
                                      int n_meta);

typedef struct hs_safetensors hs_safetensors;

/* Maps `path` read-only and validates it completely: header length within
 * the file, strict JSON of the right shape, known dtypes, shapes of
 * non-negative integers, data_offsets consistent with dtype * shape and
 * covering the data section exactly with no overlap or gap, unique names.
 * Errors: HS_ERR_IO (open/map, with strerror), HS_ERR_FORMAT (truncated
 * file, bad JSON, bad offsets, ...: the tensor and the numbers),
 * HS_ERR_DTYPE (a dtype hyperspeed does not have, e.g. F64),
 * HS_ERR_OUT_OF_MEMORY. Release with hs_safetensors_free. */
HS_API hs_status hs_safetensors_new(const char *path, hs_safetensors **out);
/* Unmaps and frees; every pointer it handed out dies with it. */
HS_API void hs_safetensors_free(hs_safetensors *st);

/* Number of tensors. */
HS_API int hs_safetensors_count(const hs_safetensors *st);
/* Tensor i (0 <= i < count, in header order); NULL when out of range.
 * data points into the read-only mapping. */
HS_API const hs_st_tensor *hs_safetensors_tensor(const hs_safetensors *st, int i);
/* Tensor by name. Errors: HS_ERR_NOT_FOUND naming it and the file. */
HS_API hs_status hs_safetensors_find(const hs_safetensors *st, const char *name, const hs_st_tensor **out);
/* __metadata__ value for `key`, or NULL when absent. */
HS_API const char *hs_safetensors_metadata(const hs_safetensors *st, const char *key);
/* The size of the file in bytes. */
HS_API uint64_t hs_safetensors_file_size(const hs_safetensors *st);

/* ----------------------------------------------------------- checkpoints */

/* A checkpoint is a directory:
 *   model-<id>.safetensors  every tensor, fp32
 *   manifest.json           format, version, step, files with sizes,
 *                           tensor names and shapes, the metadata below
 * The manifest is written last, atomically, and names the safetensors
 * file; a directory without a valid manifest is not a checkpoint. Saving
 * over a checkpoint keeps the old one loadable until the new manifest is
 * renamed into place, then deletes the old data file. */

#define HS_CKPT_FORMAT "hyperspeed-checkpoint"
#define HS_CKPT_VERSION 1
#define HS_CKPT_MANIFEST "manifest.json"
#define HS_CKPT_RNG_WORDS 4

/* One fp32 tensor of a checkpoint, named by the caller:
 * "param/h.0.attn.qkv.w", "adam_m/h.0.attn.qkv.w", ... ndim 0..4. */
typedef struct hs_ckpt_tensor {
    const char *name;
    int ndim;
    int64_t shape[HS_MAX_DIMS];
    float *data; /* numel floats; read by save, written by load */
} hs_ckpt_tensor;

/* What a run needs besides tensors to continue exactly. */
typedef struct hs_ckpt_meta {
    int64_t step;                          /* optimizer steps taken */
    uint64_t seed;                         /* the run's seed */
    uint64_t rng_state[HS_CKPT_RNG_WORDS]; /* RNG state (e.g. Philox counter and key) */
    uint64_t data_position;                /* hs_loader_position() of the training loader */
    const char *model_config;              /* JSON text (an object), or NULL */
    const char *note;                      /* free-form UTF-8 text (run name, commit...), or NULL */
} hs_ckpt_meta;

/* Saves tensors[n] and *meta (NULL: all zero) as a checkpoint in `dir`,
 * creating it (and its parents) when missing, replacing a checkpoint
 * there atomically. The caller keeps ownership of everything.
 * Errors: HS_ERR_INVALID_ARGUMENT (names as for hs_safetensors_write, a
 * shape, NULL data, model_config that is not a JSON object), HS_ERR_IO
 * (the previous checkpoint in dir, if any, still loads), HS_ERR_OUT_OF_MEMORY. */
HS_API hs_status hs_checkpoint_save(const char *dir, const hs_ckpt_tensor *tensors, int n, const hs_ckpt_meta *meta);

/* Loads a checkpoint from `dir`: reads and checks the manifest (format,
 * version, the recorded size of every file against the file), then finds
 * each of tensors[n] by name, checks that its shape equals the requested
 * shape exactly and copies it into tensors[i].data. The checkpoint may hold
 * more tensors than requested. With meta non-NULL it is filled; its
 * model_config and note are malloc'd (or NULL): release them with
 * hs_ckpt_meta_free. Everything is validated before anything is
 * written: on error no tensor buffer and no field of *meta is touched.
 * Errors: HS_ERR_IO (dir or manifest.json missing or unreadable),
 * HS_ERR_FORMAT (bad manifest, wrong format name or version, a file whose
 * size differs from the manifest, a bad safetensors file),
 * HS_ERR_NOT_FOUND (a requested tensor absent), HS_ERR_SHAPE_MISMATCH
 * (naming the tensor, the expected and the stored shape), HS_ERR_DTYPE
 * (a stored tensor that is not F32), HS_ERR_INVALID_ARGUMENT (NULL data),
 * HS_ERR_OUT_OF_MEMORY. */
HS_API hs_status hs_checkpoint_load(const char *dir, hs_ckpt_tensor *tensors, int n, hs_ckpt_meta *meta);

/* Frees the strings hs_checkpoint_load put in *meta and sets them NULL.
 * Only for a meta filled by hs_checkpoint_load. */
HS_API void hs_ckpt_meta_free(hs_ckpt_meta *meta);

#ifdef __cplusplus
}
#endif
#endif
