/* hyperspeed data: token files, the byte-level tokenizer, the built-in demo
 * corpus and the batch loader. docs/data.md describes the formats.
 *
 * Token file (all fields little-endian), HS_TOKENS_HEADER_BYTES = 32:
 *   offset  size  field
 *        0     8  magic "HSTOKENS"
 *        8     4  u32 version (1)
 *       12     4  u32 bytes per token: 2 (uint16) or 4 (uint32)
 *       16     8  u64 token count N
 *       24     8  u64 reserved, 0
 *       32  N*b   the tokens
 * The file size is exactly 32 + N * b. Tokens are int32 in every API below
 * (the model's convention); a file token above INT32_MAX is a format error.
 */
#ifndef HYPERSPEED_DATA_H
#define HYPERSPEED_DATA_H

#include "hyperspeed/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HS_TOKENS_MAGIC "HSTOKENS"
#define HS_TOKENS_VERSION 1
#define HS_TOKENS_HEADER_BYTES 32

/* ----------------------------------------------------------- token files */

typedef struct hs_token_file hs_token_file;

/* Maps a token file read-only and validates its header: magic, version,
 * bytes per token, reserved field, and size == 32 + count * bytes.
 * Errors: HS_ERR_IO (cannot open/map: path and strerror), HS_ERR_FORMAT
 * (shorter than the header, wrong magic or version, truncated or trailing
 * bytes: expected and actual sizes), HS_ERR_OUT_OF_MEMORY.
 * Release with hs_token_file_free. */
HS_API hs_status hs_token_file_new(const char *path, hs_token_file **out);
/* Unmaps and frees; NULL is fine. */
HS_API void hs_token_file_free(hs_token_file *f);

/* Number of tokens N. */
HS_API uint64_t hs_token_file_count(const hs_token_file *f);
/* Bytes per stored token: 2 or 4. */
HS_API int hs_token_file_token_bytes(const hs_token_file *f);
/* Token i as stored (i < N is the caller's promise; checked by assert). */
HS_API uint32_t hs_token_file_get(const hs_token_file *f, uint64_t i);
/* Copies tokens [start, start + n) into dst[n].
 * Errors: HS_ERR_INVALID_ARGUMENT (range past N, with both numbers),
 * HS_ERR_FORMAT (a token above INT32_MAX). */
HS_API hs_status hs_token_file_read(const hs_token_file *f, uint64_t start, size_t n, int32_t *dst);

typedef struct hs_token_writer hs_token_writer;

/* Starts writing a token file with `token_bytes` (2 or 4) per token. The
 * data goes to a temp file in the same directory; nothing appears at
 * `path` until hs_token_writer_commit.
 * Errors: HS_ERR_INVALID_ARGUMENT (token_bytes), HS_ERR_IO,
 * HS_ERR_OUT_OF_MEMORY. */
HS_API hs_status hs_token_writer_new(const char *path, int token_bytes, hs_token_writer **out);
/* Appends n tokens. Errors: HS_ERR_INVALID_ARGUMENT (a token < 0 or above
 * what token_bytes holds, naming its index and value; nothing of this
 * call is written), HS_ERR_IO. */
HS_API hs_status hs_token_writer_append(hs_token_writer *w, const int32_t *tokens, size_t n);
/* Tokens appended so far. */
HS_API uint64_t hs_token_writer_count(const hs_token_writer *w);
/* Writes the header, fsyncs and renames the file into place (atomically
 * replacing an old one). Frees `w` whatever the outcome.
 * Errors: HS_ERR_IO (the temp file is removed, `path` is untouched). */
HS_API hs_status hs_token_writer_commit(hs_token_writer *w);
/* Drops the temp file and frees `w`; NULL is fine. */
HS_API void hs_token_writer_abort(hs_token_writer *w);

/* One-shot: writes tokens[count] to `path` atomically (open, append,
 * commit). Errors as for the three calls. */
HS_API hs_status hs_token_file_write(const char *path, const int32_t *tokens, uint64_t count, int token_bytes);

/* ------------------------------------------------------------- tokenizer */

/* The byte-level tokenizer: token = byte value, vocabulary of 256. */
#define HS_BYTE_VOCAB_SIZE 256

/* Encodes n bytes of text into tokens[n] (token i = byte i, 0..255). */
HS_API void hs_tokenizer_encode(const void *text, size_t n, int32_t *tokens);
/* Decodes tokens[n] into n bytes of text (not NUL-terminated).
 * Errors: HS_ERR_INVALID_ARGUMENT (a token outside 0..255, naming its
 * index and value; text is unspecified then). */
HS_API hs_status hs_tokenizer_decode(const int32_t *tokens, size_t n, void *text);

/* ---------------------------------------------------------------- corpus */

/* The built-in demo corpus: the license texts every Debian system ships. */
#define HS_CORPUS_SOURCE_DIR "/usr/share/common-licenses"
#define HS_CORPUS_VAL_FRACTION 0.1
#define HS_CORPUS_TRAIN_FILE "train.bin"
#define HS_CORPUS_VAL_FILE "val.bin"

typedef struct hs_corpus_stats {
    int files;             /* source files read */
    uint64_t train_tokens; /* tokens in the training file */
    uint64_t val_tokens;   /* tokens in the validation file */
    int reused;            /* 1: hs_corpus_build found valid files and wrote nothing */
} hs_corpus_stats;

/* Byte-tokenizes `inputs` (each a text file, or a directory whose regular
 * files, symlinks followed, subdirectories skipped, are taken in byte
 * order of their names) in the given order, each file once (a file reached
 * again, e.g. through a symlink, is skipped), and splits every file: of a
 * file of n tokens the last floor(n * val_fraction) go to `val_path`, the
 * rest to `train_path`, both uint16 token files written atomically. val_fraction is in [0, 1); val_path may be NULL when it is 0.
 * stats may be NULL.
 * Errors: HS_ERR_INVALID_ARGUMENT (no inputs, fraction, val_path missing,
 * an input that is neither file nor directory), HS_ERR_IO (unreadable
 * input, file changed while read, write failure), HS_ERR_OUT_OF_MEMORY. */
HS_API hs_status hs_corpus_encode(const char *const *inputs, int n_inputs, double val_fraction, const char *train_path,
                                  const char *val_path, hs_corpus_stats *stats);

/* The built-in corpus: hs_corpus_encode of HS_CORPUS_SOURCE_DIR with
 * HS_CORPUS_VAL_FRACTION into cache_dir/train.bin and cache_dir/val.bin
 * (cache_dir is created with its parents). When both files already exist,
 * are valid token files and hold exactly the split the current source
 * gives, they are reused and nothing is written (stats->reused = 1).
 * Errors: as hs_corpus_encode; HS_ERR_IO when the source directory is
 * missing. */
HS_API hs_status hs_corpus_build(const char *cache_dir, hs_corpus_stats *stats);

/* ---------------------------------------------------------------- loader */

/* Batches of `batch` sequences of `seq` + 1 consecutive tokens, cut into
 * inputs (the first seq) and targets (the last seq).
 *
 * Data position p (u64) = tokens consumed so far by the whole job, i.e.
 * the sum of batch * seq over the batches served. Sequence s (0-based) of
 * the global batch at position p starts at file offset
 *     (p + s * seq) mod (N - seq)
 * (N - seq is the number of offsets that leave room for seq + 1 tokens),
 * and serving a batch advances p by batch * seq. So p alone determines
 * every batch that follows: save it with a checkpoint, set it on resume,
 * and the run sees the same data bit for bit.
 *
 * Rank split: with world w, rank r serves sequences
 * [r * batch / w, (r + 1) * batch / w) of every global batch, so the ranks'
 * batches are disjoint and together are the global batch; every rank
 * advances p by the global batch * seq and keeps the same p. */
typedef struct hs_loader_config {
    size_t size; /* its version: sizeof the struct in the caller's build, set by the *_default() (api.md) */
    int batch; /* global sequences per batch (all ranks together) */
    int seq;   /* tokens per sequence T */
    int rank;  /* this rank, 0..world-1 */
    int world; /* ranks sharing each global batch; must divide batch */
} hs_loader_config;

/* batch 4, seq 64, rank 0, world 1. */
HS_API hs_loader_config hs_loader_config_default(void);

typedef struct hs_loader hs_loader;

/* Opens the token file at `path` for batches of cfg; position 0.
 * Errors: those of hs_token_file_new; HS_ERR_INVALID_ARGUMENT (batch or
 * seq < 1, world < 1, rank outside 0..world-1, world not dividing batch,
 * or a file with fewer than seq + 1 tokens, naming both sizes).
 * Release with hs_loader_free. */
HS_API hs_status hs_loader_new(const char *path, const hs_loader_config *cfg, hs_loader **out);
/* Closes the file and frees; NULL is fine. */
HS_API void hs_loader_free(hs_loader *l);

/* Sequences this rank gets per batch: batch / world. */
HS_API int hs_loader_local_batch(const hs_loader *l);
/* Tokens in the file, N. */
HS_API uint64_t hs_loader_num_tokens(const hs_loader *l);

/* Fills inputs[local_batch * seq] and targets[local_batch * seq]
 * (row-major [local_batch, seq]; targets[i] is the token after inputs[i])
 * with this rank's slice of the batch at the current position, then
 * advances the position. Allocates nothing.
 * Errors: HS_ERR_INVALID_ARGUMENT (NULL buffer), HS_ERR_FORMAT (a token
 * above INT32_MAX); the position does not move on error. */
HS_API hs_status hs_loader_next(hs_loader *l, int32_t *inputs, int32_t *targets);

/* The data position p (tokens consumed by the job so far). */
HS_API uint64_t hs_loader_position(const hs_loader *l);
/* Sets p; any value is valid. 0 restarts from the beginning of the file
 * (how validation passes start). */
HS_API void hs_loader_set_position(hs_loader *l, uint64_t position);

/* Batches that fit in one pass from position 0 without wrapping:
 * floor((N - 1) / (batch * seq)); 0 when the file is shorter than one
 * batch. A validation pass is set_position(0) and that many next() calls. */
HS_API uint64_t hs_loader_pass_batches(const hs_loader *l);

#ifdef __cplusplus
}
#endif
#endif
