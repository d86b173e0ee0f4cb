/* Token files: the mmap reader and the atomic writer (format in data.h). */
#include "hyperspeed/data.h"
#include "core/fileio.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hs_token_file {
    hs_mapped_file map;
    const unsigned char *tokens; /* map.data + header */
    uint64_t count;
    int token_bytes;
};

static void header_encode(unsigned char h[HS_TOKENS_HEADER_BYTES], int token_bytes, uint64_t count)
{
    memset(h, 0, HS_TOKENS_HEADER_BYTES);
    memcpy(h, HS_TOKENS_MAGIC, 8);
    hs_store_le32(h + 8, HS_TOKENS_VERSION);
    hs_store_le32(h + 12, (uint32_t)token_bytes);
    hs_store_le64(h + 16, count);
}

/* "32 + n * bytes" as decimal text, or a remark when it exceeds 64 bits. */
typedef struct {
    char s[32];
} size_text;

static size_text size_str(uint64_t n, uint32_t bytes)
{
    size_text t;
    if (n > (UINT64_MAX - HS_TOKENS_HEADER_BYTES) / bytes)
        snprintf(t.s, sizeof t.s, "over 2^64");
    else
        snprintf(t.s, sizeof t.s, "%llu", (unsigned long long)(HS_TOKENS_HEADER_BYTES + n * bytes));
    return t;
}

static hs_status header_check(const char *path, const hs_mapped_file *m, int *token_bytes, uint64_t *count)
{
    const unsigned char *h = m->data;
    if (m->size < HS_TOKENS_HEADER_BYTES)
        return hs_error(HS_ERR_FORMAT, "%s: %llu bytes is shorter than the %d-byte token file header", path,
                        (unsigned long long)m->size, HS_TOKENS_HEADER_BYTES);
    if (memcmp(h, HS_TOKENS_MAGIC, 8) != 0)
        return hs_error(HS_ERR_FORMAT, "%s: not a token file (the magic is not \"%s\")", path, HS_TOKENS_MAGIC);
    uint32_t version = hs_load_le32(h + 8), bytes = hs_load_le32(h + 12);
    uint64_t n = hs_load_le64(h + 16), reserved = hs_load_le64(h + 24);
    if (version != HS_TOKENS_VERSION)
        return hs_error(HS_ERR_FORMAT, "%s: token file version %u; this library reads version %d", path, version,
                        HS_TOKENS_VERSION);
    if (bytes != 2 && bytes != 4)
        return hs_error(HS_ERR_FORMAT, "%s: %u bytes per token; must be 2 or 4", path, bytes);
    if (reserved != 0)
        return hs_error(HS_ERR_FORMAT, "%s: reserved header field is %llu; must be 0", path,
                        (unsigned long long)reserved);
    uint64_t payload = m->size - HS_TOKENS_HEADER_BYTES;
    if (n > payload / bytes)
        return hs_error(HS_ERR_FORMAT,
                        "%s: truncated: header says %llu tokens of %u bytes, %s bytes with the header, but the "
                        "file has %llu bytes",
                        path, (unsigned long long)n, bytes, size_str(n, bytes).s, (unsigned long long)m->size);
    if (n * bytes != payload)
        return hs_error(HS_ERR_FORMAT,
                        "%s: trailing bytes: header says %llu tokens of %u bytes, %s bytes with the header, but the "
                        "file has %llu bytes",
                        path, (unsigned long long)n, bytes, size_str(n, bytes).s, (unsigned long long)m->size);
    *token_bytes = (int)bytes;
    *count = n;
    return HS_OK;
}

hs_status hs_token_file_new(const char *path, hs_token_file **out)
{
    *out = NULL;
    hs_token_file *f = calloc(1, sizeof *f);
    if (!f)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    hs_status s = hs_file_map(path, &f->map);
    if (!s)
        s = header_check(path, &f->map, &f->token_bytes, &f->count);
    if (s) {
        hs_token_file_free(f);
        return s;
    }
    f->tokens = f->map.data + HS_TOKENS_HEADER_BYTES;
    *out = f;
    return HS_OK;
}

void hs_token_file_free(hs_token_file *f)
{
    if (!f)
        return;
    hs_file_unmap(&f->map);
    free(f);
}

uint64_t hs_token_file_count(const hs_token_file *f) { return f->count; }
int hs_token_file_token_bytes(const hs_token_file *f) { return f->token_bytes; }

uint32_t hs_token_file_get(const hs_token_file *f, uint64_t i)
{
    assert(i < f->count);
    if (f->token_bytes == 2) {
        uint16_t v;
        memcpy(&v, f->tokens + 2 * i, 2);
        return v;
    }
    return hs_load_le32(f->tokens + 4 * i);
}

hs_status hs_token_file_read(const hs_token_file *f, uint64_t start, size_t n, int32_t *dst)
{
    if (start > f->count || n > f->count - start)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "token range [%llu, %llu) is past the end of a file of %llu tokens",
                        (unsigned long long)start, (unsigned long long)start + n, (unsigned long long)f->count);
    if (f->token_bytes == 2) {
        const uint16_t *src = (const uint16_t *)(const void *)(f->tokens + 2 * start);
        for (size_t i = 0; i < n; i++)
            dst[i] = src[i];
        return HS_OK;
    }
    const uint32_t *src = (const uint32_t *)(const void *)(f->tokens + 4 * start);
    for (size_t i = 0; i < n; i++) {
        if (src[i] > INT32_MAX)
            return hs_error(HS_ERR_FORMAT, "token %u at position %llu does not fit int32", src[i],
                            (unsigned long long)(start + i));
        dst[i] = (int32_t)src[i];
    }
    return HS_OK;
}

/* ---------------------------------------------------------------- writer */

struct hs_token_writer {
    hs_atomic_file af;
    int token_bytes;
    uint64_t count;
};

hs_status hs_token_writer_new(const char *path, int token_bytes, hs_token_writer **out)
{
    *out = NULL;
    if (token_bytes != 2 && token_bytes != 4)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: token_bytes is %d; must be 2 or 4", path, token_bytes);
    hs_token_writer *w = calloc(1, sizeof *w);
    if (!w)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    w->token_bytes = token_bytes;
    hs_status s = hs_atomic_open(&w->af, path);
    if (!s) {
        unsigned char h[HS_TOKENS_HEADER_BYTES];
        header_encode(h, token_bytes, 0);
        s = hs_atomic_write(&w->af, h, sizeof h);
    }
    if (s) {
        hs_token_writer_abort(w);
        return s;
    }
    *out = w;
    return HS_OK;
}

hs_status hs_token_writer_append(hs_token_writer *w, const int32_t *tokens, size_t n)
{
    int64_t max = w->token_bytes == 2 ? UINT16_MAX : INT32_MAX;
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] > max)
            return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: token %d at index %zu does not fit a %d-byte token file",
                            w->af.path, tokens[i], i, w->token_bytes);
    enum { CHUNK = 4096 };
    unsigned char buf[CHUNK * 4];
    for (size_t done = 0; done < n;) {
        size_t k = n - done < CHUNK ? n - done : CHUNK;
        for (size_t i = 0; i < k; i++) {
            uint32_t v = (uint32_t)tokens[done + i];
            if (w->token_bytes == 2) {
                uint16_t v16 = (uint16_t)v;
                memcpy(buf + 2 * i, &v16, 2);
            } else {
                hs_store_le32(buf + 4 * i, v);
            }
        }
        hs_status s = hs_atomic_write(&w->af, buf, k * (size_t)w->token_bytes);
        if (s)
            return s;
        done += k;
        w->count += k;
    }
    return HS_OK;
}

uint64_t hs_token_writer_count(const hs_token_writer *w) { return w->count; }

hs_status hs_token_writer_commit(hs_token_writer *w)
{
    unsigned char h[HS_TOKENS_HEADER_BYTES];
    header_encode(h, w->token_bytes, w->count);
    hs_status s = hs_atomic_rewrite(&w->af, 0, h, sizeof h);
    if (s) {
        hs_token_writer_abort(w);
        return s;
    }
    s = hs_atomic_commit(&w->af);
    free(w);
    return s;
}

void hs_token_writer_abort(hs_token_writer *w)
{
    if (!w)
        return;
    hs_atomic_abort(&w->af);
    free(w);
}

hs_status hs_token_file_write(const char *path, const int32_t *tokens, uint64_t count, int token_bytes)
{
    hs_token_writer *w;
    hs_status s = hs_token_writer_new(path, token_bytes, &w);
    if (s)
        return s;
    s = hs_token_writer_append(w, tokens, (size_t)count);
    if (s) {
        hs_token_writer_abort(w);
        return s;
    }
    return hs_token_writer_commit(w);
}
