/* safetensors: atomic writer and validating mmap reader. */
#include "core/json.h"
#include "hyperspeed/checkpoint.h"
#include "core/fileio.h"

#include <stdlib.h>
#include <string.h>

#define METADATA_KEY "__metadata__"

static const struct {
    hs_dtype dtype;
    const char *tag;
} dtype_tags[] = {
    {HS_FP32, "F32"}, {HS_BF16, "BF16"}, {HS_FP16, "F16"}, {HS_INT32, "I32"}, {HS_INT64, "I64"}, {HS_INT8, "I8"},
};
enum { N_DTYPES = sizeof dtype_tags / sizeof dtype_tags[0] };

static const char *dtype_tag(hs_dtype dt)
{
    for (int i = 0; i < N_DTYPES; i++)
        if (dtype_tags[i].dtype == dt)
            return dtype_tags[i].tag;
    return NULL;
}

static int dtype_from_tag(const char *tag, hs_dtype *out)
{
    for (int i = 0; i < N_DTYPES; i++)
        if (strcmp(dtype_tags[i].tag, tag) == 0) {
            *out = dtype_tags[i].dtype;
            return 1;
        }
    return 0;
}

/* Bytes of numel(shape) elements of `dt`; 0 when that overflows 63 bits. */
static int tensor_bytes(hs_dtype dt, int ndim, const int64_t *shape, uint64_t *bytes)
{
    uint64_t b = hs_dtype_size(dt);
    for (int i = 0; i < ndim; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (d && b > (uint64_t)INT64_MAX / d)
            return 0;
        b *= d;
    }
    *bytes = b;
    return 1;
}

/* Items are pointers to structs whose first member is their name
 * (hs_st_tensor, hs_st_kv): sorting them by name lets one routine find
 * duplicates for both, and the sorted tensors serve lookups. */
static int by_name(const void *a, const void *b)
{
    return strcmp(**(const char *const *const *)a, **(const char *const *const *)b);
}

static const char *sort_find_duplicate(const void **items, int n)
{
    qsort(items, (size_t)n, sizeof *items, by_name);
    for (int i = 1; i < n; i++)
        if (by_name(&items[i - 1], &items[i]) == 0)
            return *(const char *const *)items[i];
    return NULL;
}

/* ---------------------------------------------------------------- writer */

static hs_status check_tensor(const char *path, const hs_st_tensor *t, uint64_t *bytes)
{
    if (!t->name || !t->name[0])
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: a tensor has a NULL or empty name", path);
    if (strcmp(t->name, METADATA_KEY) == 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: \"%s\" is reserved and cannot name a tensor", path,
                        METADATA_KEY);
    if (!dtype_tag(t->dtype))
        return hs_error(HS_ERR_DTYPE, "%s: tensor %s has invalid dtype %d", path, t->name, (int)t->dtype);
    if (t->ndim < 0 || t->ndim > HS_MAX_DIMS)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: tensor %s has ndim %d, outside 0..%d", path, t->name, t->ndim,
                        HS_MAX_DIMS);
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] < 0)
            return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: tensor %s has size %lld in dim %d", path, t->name,
                            (long long)t->shape[d], d);
    if (!tensor_bytes(t->dtype, t->ndim, t->shape, bytes))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: tensor %s is too large", path, t->name);
    if (*bytes && !t->data)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: tensor %s has NULL data", path, t->name);
    return HS_OK;
}

static hs_status check_names(const char *path, const hs_st_tensor *tensors, int n, const hs_st_kv *meta, int n_meta)
{
    int most = n > n_meta ? n : n_meta;
    const void **items = malloc((size_t)(most ? most : 1) * sizeof *items);
    if (!items)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    hs_status s = HS_OK;
    for (int i = 0; i < n; i++)
        items[i] = &tensors[i];
    const char *dup = sort_find_duplicate(items, n);
    if (dup)
        s = hs_error(HS_ERR_INVALID_ARGUMENT, "%s: two tensors are named %s", path, dup);
    for (int i = 0; i < n_meta && !s; i++) {
        if (!meta[i].key || !meta[i].value)
            s = hs_error(HS_ERR_INVALID_ARGUMENT, "%s: metadata entry %d has a NULL key or value", path, i);
        items[i] = &meta[i];
    }
    if (!s && (dup = sort_find_duplicate(items, n_meta)))
        s = hs_error(HS_ERR_INVALID_ARGUMENT, "%s: two metadata entries have the key %s", path, dup);
    free(items);
    return s;
}

/* Header JSON for tensors in `order` at consecutive offsets. */
static hs_status build_header(const hs_st_tensor *tensors, const int *order, const uint64_t *bytes, int n,
                              const hs_st_kv *meta, int n_meta, char **text, size_t *len)
{
    hs_jw w;
    hs_jw_init(&w, 0);
    hs_jw_object_begin(&w);
    if (n_meta > 0) {
        hs_jw_key(&w, METADATA_KEY);
        hs_jw_object_begin(&w);
        for (int i = 0; i < n_meta; i++) {
            hs_jw_key(&w, meta[i].key);
            hs_jw_string(&w, meta[i].value);
        }
        hs_jw_object_end(&w);
    }
    uint64_t offset = 0;
    for (int k = 0; k < n; k++) {
        const hs_st_tensor *t = &tensors[order[k]];
        hs_jw_key(&w, t->name);
        hs_jw_object_begin(&w);
        hs_jw_key(&w, "dtype");
        hs_jw_string(&w, dtype_tag(t->dtype));
        hs_jw_key(&w, "shape");
        hs_jw_array_begin(&w);
        for (int d = 0; d < t->ndim; d++)
            hs_jw_i64(&w, t->shape[d]);
        hs_jw_array_end(&w);
        hs_jw_key(&w, "data_offsets");
        hs_jw_array_begin(&w);
        hs_jw_u64(&w, offset);
        hs_jw_u64(&w, offset + bytes[order[k]]);
        hs_jw_array_end(&w);
        hs_jw_object_end(&w);
        offset += bytes[order[k]];
    }
    hs_jw_object_end(&w);
    return hs_jw_finish(&w, text, len);
}

static hs_status write_file(const char *path, const char *header, size_t header_len, const hs_st_tensor *tensors,
                            const int *order, const uint64_t *bytes, int n)
{
    hs_atomic_file af;
    hs_status s = hs_atomic_open(&af, path);
    if (s)
        return s;
    /* Spaces after the JSON make the data section start 8-byte aligned. */
    size_t pad = (8 - header_len % 8) % 8;
    unsigned char len_le[8];
    hs_store_le64(len_le, header_len + pad);
    s = hs_atomic_write(&af, len_le, sizeof len_le);
    if (!s)
        s = hs_atomic_write(&af, header, header_len);
    if (!s)
        s = hs_atomic_write(&af, "       ", pad);
    for (int k = 0; k < n && !s; k++)
        s = hs_atomic_write(&af, tensors[order[k]].data, (size_t)bytes[order[k]]);
    if (s) {
        hs_atomic_abort(&af);
        return s;
    }
    return hs_atomic_commit(&af);
}

hs_status hs_safetensors_write(const char *path, const hs_st_tensor *tensors, int n, const hs_st_kv *metadata,
                               int n_meta)
{
    if (!path || n < 0 || n_meta < 0 || (n > 0 && !tensors) || (n_meta > 0 && !metadata))
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "safetensors write: NULL path, tensors or metadata, or a negative count");
    int *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    uint64_t *bytes = malloc((size_t)(n ? n : 1) * sizeof *bytes);
    hs_status s = order && bytes ? HS_OK : hs_error(HS_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    for (int i = 0; i < n && !s; i++)
        s = check_tensor(path, &tensors[i], &bytes[i]);
    if (!s)
        s = check_names(path, tensors, n, metadata, n_meta);
    char *header = NULL;
    size_t header_len = 0;
    if (!s) {
        int k = 0;
        for (size_t size = 8; size >= 1; size /= 2)
            for (int i = 0; i < n; i++)
                if (hs_dtype_size(tensors[i].dtype) == size)
                    order[k++] = i;
        s = build_header(tensors, order, bytes, n, metadata, n_meta, &header, &header_len);
    }
    if (!s)
        s = write_file(path, header, header_len, tensors, order, bytes, n);
    free(header);
    free(order);
    free(bytes);
    return s;
}

/* ---------------------------------------------------------------- reader */

struct hs_safetensors {
    hs_mapped_file map;
    hs_json_doc *doc;
    const hs_json *metadata;
    hs_st_tensor *tensors;
    const hs_st_tensor **sorted; /* by name, for lookups */
    int n;
    char *path;
};

static hs_status bad(const hs_safetensors *st, const char *what, const char *name)
{
    return hs_error(HS_ERR_FORMAT, "%s: tensor %s: %s", st->path, name, what);
}

static hs_status parse_shape(const hs_safetensors *st, const char *name, const hs_json *shape, hs_st_tensor *t)
{
    if (!shape || shape->type != HS_JSON_ARRAY)
        return bad(st, "\"shape\" is missing or not an array", name);
    if (shape->count > HS_MAX_DIMS)
        return hs_error(HS_ERR_FORMAT, "%s: tensor %s has %zu dimensions; hyperspeed reads at most %d", st->path,
                        name, shape->count, HS_MAX_DIMS);
    t->ndim = (int)shape->count;
    int d = 0;
    for (const hs_json *v = shape->child; v; v = v->next, d++) {
        uint64_t size;
        if (!hs_json_u64(v, &size) || size > INT64_MAX)
            return bad(st, "\"shape\" holds something other than a non-negative integer", name);
        t->shape[d] = (int64_t)size;
    }
    for (; d < HS_MAX_DIMS; d++)
        t->shape[d] = 1;
    return HS_OK;
}

/* Fills t from one header entry; returns its [begin, end) in *range. */
static hs_status parse_tensor(const hs_safetensors *st, const hs_json *e, uint64_t data_size, hs_st_tensor *t,
                              uint64_t range[2])
{
    const char *name = e->key;
    t->name = name;
    if (e->type != HS_JSON_OBJECT)
        return bad(st, "entry is not an object", name);
    const char *tag = hs_json_string(hs_json_get(e, "dtype"));
    if (!tag)
        return bad(st, "\"dtype\" is missing or not a string", name);
    if (!dtype_from_tag(tag, &t->dtype))
        return hs_error(HS_ERR_DTYPE, "%s: tensor %s has dtype %s; hyperspeed reads F32, BF16, F16, I32, I64, I8",
                        st->path, name, tag);
    hs_status s = parse_shape(st, name, hs_json_get(e, "shape"), t);
    if (s)
        return s;
    const hs_json *off = hs_json_get(e, "data_offsets");
    if (!off || off->type != HS_JSON_ARRAY || off->count != 2 || !hs_json_u64(off->child, &range[0]) ||
        !hs_json_u64(off->child->next, &range[1]))
        return bad(st, "\"data_offsets\" is not an array of two non-negative integers", name);
    uint64_t want;
    if (!tensor_bytes(t->dtype, t->ndim, t->shape, &want))
        return bad(st, "shape is too large", name);
    if (range[0] > range[1] || range[1] > data_size)
        return hs_error(HS_ERR_FORMAT,
                        "%s: tensor %s: data_offsets [%llu, %llu] are outside the %llu-byte data section",
                        st->path, name, (unsigned long long)range[0], (unsigned long long)range[1],
                        (unsigned long long)data_size);
    if (range[1] - range[0] != want)
        return hs_error(HS_ERR_FORMAT,
                        "%s: tensor %s: data_offsets [%llu, %llu] span %llu bytes, but its dtype and shape need %llu",
                        st->path, name, (unsigned long long)range[0], (unsigned long long)range[1],
                        (unsigned long long)(range[1] - range[0]), (unsigned long long)want);
    return HS_OK;
}

/* The tensors must tile the data section: sorted by offset, each begins
 * where the previous ends, and the last ends at its end. */
typedef struct span {
    uint64_t begin, end;
    const char *name;
} span;

static int by_begin(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static hs_status check_tiling(const hs_safetensors *st, span *spans, int n, uint64_t data_size)
{
    qsort(spans, (size_t)n, sizeof *spans, by_begin);
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        if (spans[i].begin < at)
            return hs_error(HS_ERR_FORMAT, "%s: tensors %s and %s overlap in the data section", st->path,
                            spans[i - 1].name, spans[i].name);
        if (spans[i].begin > at)
            return hs_error(HS_ERR_FORMAT, "%s: data bytes [%llu, %llu) before tensor %s belong to no tensor",
                            st->path, (unsigned long long)at, (unsigned long long)spans[i].begin, spans[i].name);
        at = spans[i].end;
    }
    if (at != data_size)
        return hs_error(HS_ERR_FORMAT, "%s: the tensors cover %llu bytes of a %llu-byte data section", st->path,
                        (unsigned long long)at, (unsigned long long)data_size);
    return HS_OK;
}

static hs_status parse_metadata(const hs_safetensors *st, const hs_json *m)
{
    if (m->type != HS_JSON_OBJECT)
        return hs_error(HS_ERR_FORMAT, "%s: %s is not an object", st->path, METADATA_KEY);
    for (const hs_json *v = m->child; v; v = v->next)
        if (v->type != HS_JSON_STRING)
            return hs_error(HS_ERR_FORMAT, "%s: %s value for key %s is not a string", st->path, METADATA_KEY, v->key);
    return HS_OK;
}

/* Walks the parsed header: tensors, metadata, tiling, unique names. */
static hs_status parse_header(hs_safetensors *st, const unsigned char *data, uint64_t data_size)
{
    const hs_json *root = hs_json_root(st->doc);
    if (root->type != HS_JSON_OBJECT)
        return hs_error(HS_ERR_FORMAT, "%s: the header is not a JSON object", st->path);
    size_t cap = root->count ? root->count : 1;
    st->tensors = calloc(cap, sizeof *st->tensors);
    st->sorted = calloc(cap, sizeof *st->sorted);
    span *spans = calloc(cap, sizeof *spans);
    hs_status s = HS_OK;
    if (!st->tensors || !st->sorted || !spans)
        s = hs_error(HS_ERR_OUT_OF_MEMORY, "%s: out of memory", st->path);
    for (const hs_json *e = root->child; e && !s; e = e->next) {
        if (strcmp(e->key, METADATA_KEY) == 0) {
            s = st->metadata ? hs_error(HS_ERR_FORMAT, "%s: two %s entries", st->path, METADATA_KEY)
                             : parse_metadata(st, e);
            st->metadata = e;
            continue;
        }
        hs_st_tensor *t = &st->tensors[st->n];
        uint64_t range[2];
        if ((s = parse_tensor(st, e, data_size, t, range)))
            break;
        t->data = data + range[0];
        spans[st->n] = (span){range[0], range[1], t->name};
        st->sorted[st->n] = t;
        st->n++;
    }
    if (!s)
        s = check_tiling(st, spans, st->n, data_size);
    free(spans);
    const char *dup;
    if (!s && (dup = sort_find_duplicate((const void **)st->sorted, st->n)))
        s = hs_error(HS_ERR_FORMAT, "%s: two tensors are named %s", st->path, dup);
    return s;
}

hs_status hs_safetensors_new(const char *path, hs_safetensors **out)
{
    *out = NULL;
    hs_safetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        return hs_error(HS_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    hs_status s = hs_file_map(path, &st->map);
    uint64_t header_len = 0;
    if (!s && st->map.size < 8)
        s = hs_error(HS_ERR_FORMAT, "%s: %llu bytes, too short for the 8-byte header length (truncated?)", path,
                     (unsigned long long)st->map.size);
    if (!s) {
        header_len = hs_load_le64(st->map.data);
        if (header_len > st->map.size - 8)
            s = hs_error(HS_ERR_FORMAT, "%s: header length %llu runs past the end of the %llu-byte file (truncated?)",
                         path, (unsigned long long)header_len, (unsigned long long)st->map.size);
    }
    if (!s && (s = hs_json_parse((const char *)st->map.data + 8, (size_t)header_len, &st->doc)))
        s = hs_error_prefix(s, path);
    if (!s)
        s = parse_header(st, st->map.data + 8 + header_len, st->map.size - 8 - header_len);
    if (s) {
        hs_safetensors_free(st);
        return s;
    }
    *out = st;
    return HS_OK;
}

void hs_safetensors_free(hs_safetensors *st)
{
    if (!st)
        return;
    hs_json_free(st->doc);
    hs_file_unmap(&st->map);
    free(st->tensors);
    free(st->sorted);
    free(st->path);
    free(st);
}

int hs_safetensors_count(const hs_safetensors *st) { return st->n; }

const hs_st_tensor *hs_safetensors_tensor(const hs_safetensors *st, int i)
{
    return i >= 0 && i < st->n ? &st->tensors[i] : NULL;
}

hs_status hs_safetensors_find(const hs_safetensors *st, const char *name, const hs_st_tensor **out)
{
    const hs_st_tensor key = {.name = name}, *pkey = &key;
    const hs_st_tensor **hit = bsearch(&pkey, st->sorted, (size_t)st->n, sizeof *st->sorted, by_name);
    if (!hit)
        return hs_error(HS_ERR_NOT_FOUND, "%s has no tensor named %s", st->path, name);
    *out = *hit;
    return HS_OK;
}

const char *hs_safetensors_metadata(const hs_safetensors *st, const char *key)
{
    return hs_json_string(hs_json_get(st->metadata, key));
}

uint64_t hs_safetensors_file_size(const hs_safetensors *st) { return st->map.size; }
