/* Text corpora to token files: input listing, byte tokenization, the
 * train/validation split, and the built-in demo corpus with its cache. */
#include "hyperspeed/data.h"
#include "core/try.h"
#include "core/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The files to read, in order, with the sizes and identities stat gave. */
typedef struct source {
    char **paths;
    uint64_t *sizes;
    dev_t *devs;
    ino_t *inos;
    int n, cap;
    uint64_t total;
} source;

static void source_free(source *src)
{
    for (int i = 0; i < src->n; i++)
        free(src->paths[i]);
    free(src->paths);
    free(src->sizes);
    free(src->devs);
    free(src->inos);
    memset(src, 0, sizeof *src);
}

static int grow(void **array, size_t elem, int cap)
{
    void *p = realloc(*array, (size_t)cap * elem);
    if (p)
        *array = p;
    return p != NULL;
}

/* Takes ownership of `path`. A file already listed (the same file reached
 * through a symlink, as GPL -> GPL-3 in the demo corpus) is skipped, so no
 * text is counted twice and none lands in both train and validation. */
static hs_status source_add(source *src, char *path, const struct stat *st)
{
    for (int i = 0; i < src->n; i++) {
        if (src->devs[i] == st->st_dev && src->inos[i] == st->st_ino) {
            free(path);
            return HS_OK;
        }
    }
    if (src->n == src->cap) {
        int cap = src->cap ? 2 * src->cap : 32;
        if (!grow((void **)&src->paths, sizeof *src->paths, cap) || !grow((void **)&src->sizes, sizeof *src->sizes, cap) ||
            !grow((void **)&src->devs, sizeof *src->devs, cap) || !grow((void **)&src->inos, sizeof *src->inos, cap)) {
            free(path);
            return hs_error(HS_ERR_OUT_OF_MEMORY, "corpus: out of memory listing inputs");
        }
        src->cap = cap;
    }
    src->paths[src->n] = path;
    src->sizes[src->n] = (uint64_t)st->st_size;
    src->devs[src->n] = st->st_dev;
    src->inos[src->n] = st->st_ino;
    src->n++;
    src->total += (uint64_t)st->st_size;
    return HS_OK;
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

static int not_dots(const struct dirent *e) { return strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0; }

/* The regular files directly in `dir` (symlinks followed), by byte order of name. */
static hs_status source_add_dir(source *src, const char *dir)
{
    struct dirent **list;
    int n = scandir(dir, &list, not_dots, by_name);
    if (n < 0)
        return hs_error(HS_ERR_IO, "list directory %s: %s", dir, strerror(errno));
    hs_status s = HS_OK;
    for (int i = 0; i < n; i++) {
        struct stat st;
        char *path = s ? NULL : hs_path_join(dir, list[i]->d_name);
        if (!s && !path)
            s = HS_ERR_OUT_OF_MEMORY;
        else if (!s && stat(path, &st) == 0 && S_ISREG(st.st_mode))
            s = source_add(src, path, &st);
        else
            free(path);
        free(list[i]);
    }
    free(list);
    return s;
}

static hs_status source_collect(source *src, const char *const *inputs, int n_inputs)
{
    memset(src, 0, sizeof *src);
    hs_status s = HS_OK;
    for (int i = 0; i < n_inputs && !s; i++) {
        struct stat st;
        if (stat(inputs[i], &st) != 0) {
            s = hs_error(HS_ERR_IO, "corpus input %s: %s", inputs[i], strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            s = source_add_dir(src, inputs[i]);
        } else if (S_ISREG(st.st_mode)) {
            char *path = strdup(inputs[i]);
            s = path ? source_add(src, path, &st)
                     : hs_error(HS_ERR_OUT_OF_MEMORY, "corpus: out of memory listing inputs");
        } else {
            s = hs_error(HS_ERR_INVALID_ARGUMENT, "corpus input %s is neither a regular file nor a directory",
                         inputs[i]);
        }
    }
    if (s)
        source_free(src);
    return s;
}

/* Training tokens of a file of `size` tokens: all but its last
 * floor(size * val_fraction). Every file is split, so validation text
 * comes from every source, not only the last one. */
static uint64_t train_tokens(uint64_t size, double val_fraction)
{
    return size - (uint64_t)floor((double)size * val_fraction);
}

static uint64_t train_total(const source *src, double val_fraction)
{
    uint64_t n = 0;
    for (int i = 0; i < src->n; i++)
        n += train_tokens(src->sizes[i], val_fraction);
    return n;
}

static void fill_stats(hs_corpus_stats *stats, const source *src, double val_fraction, int reused)
{
    if (!stats)
        return;
    stats->files = src->n;
    stats->train_tokens = train_total(src, val_fraction);
    stats->val_tokens = src->total - stats->train_tokens;
    stats->reused = reused;
}

enum { CHUNK = 65536 };

/* Reads one file in chunks, sending its first `n_train` tokens to train
 * and the rest to val. */
static hs_status stream_file(const char *path, uint64_t size, uint64_t n_train, unsigned char *bytes,
                             int32_t *tokens, hs_token_writer *train, hs_token_writer *val)
{
    uint64_t pos = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return hs_error(HS_ERR_IO, "open %s: %s", path, strerror(errno));
    hs_status s = HS_OK;
    uint64_t got = 0;
    size_t k;
    while (!s && (k = fread(bytes, 1, CHUNK, fp)) > 0) {
        hs_tokenizer_encode(bytes, k, tokens);
        size_t to_train = pos >= n_train ? 0 : (n_train - pos < k ? (size_t)(n_train - pos) : k);
        s = hs_token_writer_append(train, tokens, to_train);
        if (!s && k > to_train)
            s = val ? hs_token_writer_append(val, tokens + to_train, k - to_train)
                    : hs_error(HS_ERR_INTERNAL, "corpus: validation tokens without a validation file");
        pos += k;
        got += k;
    }
    if (!s && ferror(fp))
        s = hs_error(HS_ERR_IO, "read %s: %s", path, strerror(errno));
    if (!s && got != size)
        s = hs_error(HS_ERR_IO, "%s changed while being read: %llu bytes, expected %llu", path,
                     (unsigned long long)got, (unsigned long long)size);
    fclose(fp);
    return s;
}

static hs_status encode_source(const source *src, double val_fraction, const char *train_path, const char *val_path,
                               hs_corpus_stats *stats)
{
    hs_token_writer *train = NULL, *val = NULL;
    unsigned char *bytes = malloc(CHUNK);
    int32_t *tokens = malloc(CHUNK * sizeof *tokens);
    hs_status s = bytes && tokens ? HS_OK : hs_error(HS_ERR_OUT_OF_MEMORY, "corpus: out of memory");
    if (!s)
        s = hs_token_writer_new(train_path, 2, &train);
    if (!s && val_path)
        s = hs_token_writer_new(val_path, 2, &val);
    for (int i = 0; i < src->n && !s; i++)
        s = stream_file(src->paths[i], src->sizes[i], train_tokens(src->sizes[i], val_fraction), bytes, tokens, train,
                        val);
    free(bytes);
    free(tokens);
    if (s) {
        hs_token_writer_abort(train);
        hs_token_writer_abort(val);
        return s;
    }
    s = hs_token_writer_commit(train);
    if (s) {
        hs_token_writer_abort(val);
        return s;
    }
    s = val ? hs_token_writer_commit(val) : HS_OK;
    if (!s)
        fill_stats(stats, src, val_fraction, 0);
    return s;
}

hs_status hs_corpus_encode(const char *const *inputs, int n_inputs, double val_fraction, const char *train_path,
                           const char *val_path, hs_corpus_stats *stats)
{
    if (!inputs || n_inputs < 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "corpus: no inputs");
    for (int i = 0; i < n_inputs; i++)
        if (!inputs[i])
            return hs_error(HS_ERR_INVALID_ARGUMENT, "corpus: input %d is NULL", i);
    if (!(val_fraction >= 0.0 && val_fraction < 1.0))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "corpus: validation fraction %g is outside [0, 1)", val_fraction);
    if (!train_path)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "corpus: no training output path");
    if (val_fraction > 0.0 && !val_path)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "corpus: validation fraction %g needs a validation output path",
                        val_fraction);
    source src;
    hs_status s = source_collect(&src, inputs, n_inputs);
    if (s)
        return s;
    s = encode_source(&src, val_fraction, train_path, val_path, stats);
    source_free(&src);
    return s;
}

/* 1 when both files open and hold exactly the split of `src`. */
static int cache_valid(const source *src, const char *train_path, const char *val_path)
{
    hs_token_file *train = NULL, *val = NULL;
    uint64_t n_train = train_total(src, HS_CORPUS_VAL_FRACTION);
    int ok = hs_token_file_new(train_path, &train) == HS_OK && hs_token_file_new(val_path, &val) == HS_OK &&
             hs_token_file_count(train) == n_train && hs_token_file_count(val) == src->total - n_train;
    hs_token_file_free(train);
    hs_token_file_free(val);
    return ok;
}

hs_status hs_corpus_build(const char *cache_dir, hs_corpus_stats *stats)
{
    if (!cache_dir)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "corpus: cache directory is NULL");
    const char *dir = HS_CORPUS_SOURCE_DIR;
    source src;
    HS_TRY(source_collect(&src, &dir, 1));
    char *train_path = hs_path_join(cache_dir, HS_CORPUS_TRAIN_FILE);
    char *val_path = hs_path_join(cache_dir, HS_CORPUS_VAL_FILE);
    hs_status s = train_path && val_path ? HS_OK : HS_ERR_OUT_OF_MEMORY;
    if (!s && cache_valid(&src, train_path, val_path)) {
        fill_stats(stats, &src, HS_CORPUS_VAL_FRACTION, 1);
    } else if (!s) {
        s = hs_mkdir_p(cache_dir);
        if (!s)
            s = encode_source(&src, HS_CORPUS_VAL_FRACTION, train_path, val_path, stats);
    }
    free(train_path);
    free(val_path);
    source_free(&src);
    return s;
}
