/* Checkpoints: a safetensors file of fp32 tensors plus manifest.json,
 * committed by the atomic rename of the manifest (docs/checkpoints.md). */
#include "core/json.h"
#include "hyperspeed/checkpoint.h"
#include "core/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DATA_PREFIX "model-"
#define DATA_SUFFIX ".safetensors"
#define ID_KEY "checkpoint_id"

/* ------------------------------------------------------------------ save */

/* A fresh 64-bit id per save (time, pid, a counter, mixed by splitmix64):
 * it names the data file and ties it to its manifest. */
static uint64_t new_save_id(void)
{
    static atomic_uint_fast64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    z ^= ((uint64_t)getpid() << 32) ^ (atomic_fetch_add(&counter, 1) * 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static hs_status check_model_config(const char *json)
{
    hs_json_doc *doc;
    hs_status s = hs_json_parse(json, strlen(json), &doc);
    if (s)
        return hs_error_prefix(HS_ERR_INVALID_ARGUMENT, "checkpoint: model_config is not valid JSON");
    int is_object = hs_json_root(doc)->type == HS_JSON_OBJECT;
    hs_json_free(doc);
    return is_object ? HS_OK : hs_error(HS_ERR_INVALID_ARGUMENT, "checkpoint: model_config is not a JSON object");
}

static hs_status build_manifest(const char *id, const char *data_name, uint64_t data_bytes,
                                const hs_ckpt_tensor *tensors, int n, const hs_ckpt_meta *m, char **text, size_t *len)
{
    hs_jw w;
    hs_jw_init(&w, 1);
    hs_jw_object_begin(&w);
    hs_jw_key(&w, "format");
    hs_jw_string(&w, HS_CKPT_FORMAT);
    hs_jw_key(&w, "version");
    hs_jw_u64(&w, HS_CKPT_VERSION);
    hs_jw_key(&w, ID_KEY);
    hs_jw_string(&w, id);
    hs_jw_key(&w, "step");
    hs_jw_i64(&w, m->step);
    hs_jw_key(&w, "seed");
    hs_jw_u64(&w, m->seed);
    hs_jw_key(&w, "rng_state");
    hs_jw_array_begin_flat(&w);
    for (int i = 0; i < HS_CKPT_RNG_WORDS; i++)
        hs_jw_u64(&w, m->rng_state[i]);
    hs_jw_array_end(&w);
    hs_jw_key(&w, "data_position");
    hs_jw_u64(&w, m->data_position);
    hs_jw_key(&w, "model_config");
    if (m->model_config)
        hs_jw_raw(&w, m->model_config);
    else
        hs_jw_null(&w);
    hs_jw_key(&w, "note");
    if (m->note)
        hs_jw_string(&w, m->note);
    else
        hs_jw_null(&w);
    hs_jw_key(&w, "tensors_file");
    hs_jw_string(&w, data_name);
    hs_jw_key(&w, "files");
    hs_jw_array_begin(&w);
    hs_jw_object_begin(&w);
    hs_jw_key(&w, "name");
    hs_jw_string(&w, data_name);
    hs_jw_key(&w, "bytes");
    hs_jw_u64(&w, data_bytes);
    hs_jw_object_end(&w);
    hs_jw_array_end(&w);
    hs_jw_key(&w, "tensors");
    hs_jw_array_begin(&w);
    for (int i = 0; i < n; i++) {
        hs_jw_object_begin(&w);
        hs_jw_key(&w, "name");
        hs_jw_string(&w, tensors[i].name);
        hs_jw_key(&w, "shape");
        hs_jw_array_begin_flat(&w);
        for (int d = 0; d < tensors[i].ndim; d++)
            hs_jw_i64(&w, tensors[i].shape[d]);
        hs_jw_array_end(&w);
        hs_jw_object_end(&w);
    }
    hs_jw_array_end(&w);
    hs_jw_object_end(&w);
    return hs_jw_finish(&w, text, len);
}

static hs_status write_manifest(const char *path, const char *text, size_t len)
{
    hs_atomic_file af;
    hs_status s = hs_atomic_open(&af, path);
    if (s)
        return s;
    s = hs_atomic_write(&af, text, len);
    if (!s)
        s = hs_atomic_write(&af, "\n", 1);
    if (s) {
        hs_atomic_abort(&af);
        return s;
    }
    return hs_atomic_commit(&af);
}

/* 1 for files an earlier save of ours left: data files other than `keep`
 * and temp files of data files or of the manifest. */
static int stale(const char *name, const char *keep)
{
    size_t n = strlen(name), ns = strlen(DATA_SUFFIX);
    int data = strncmp(name, DATA_PREFIX, strlen(DATA_PREFIX)) == 0;
    int ours = data || strncmp(name, HS_CKPT_MANIFEST, strlen(HS_CKPT_MANIFEST)) == 0;
    if (ours && strstr(name, ".tmp."))
        return 1;
    return data && n > ns && strcmp(name + n - ns, DATA_SUFFIX) == 0 && strcmp(name, keep) != 0;
}

/* After the commit: best effort, a failure only leaves a file behind. */
static void remove_stale(const char *dir, const char *keep)
{
    DIR *d = opendir(dir);
    if (!d) {
        hs_log(HS_LOG_WARN, "checkpoint %s: cannot list it to remove old files: %s", dir, strerror(errno));
        return;
    }
    for (struct dirent *e; (e = readdir(d));) {
        if (!stale(e->d_name, keep))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) != 0)
            hs_log(HS_LOG_WARN, "checkpoint %s: cannot remove old file %s: %s", dir, e->d_name, strerror(errno));
    }
    closedir(d);
}

/* Writes the data file then the manifest; on failure removes the data file. */
static hs_status save_files(const char *dir, const hs_st_tensor *st, const hs_ckpt_tensor *tensors, int n,
                            const hs_ckpt_meta *meta, char *data_name)
{
    char id[17], *data_path = NULL, *manifest_path = NULL, *text = NULL;
    size_t len;
    struct stat sb;
    do {
        snprintf(id, sizeof id, "%016llx", (unsigned long long)new_save_id());
        snprintf(data_name, 64, DATA_PREFIX "%s" DATA_SUFFIX, id);
        free(data_path);
        data_path = hs_path_join(dir, data_name);
    } while (data_path && stat(data_path, &sb) == 0);
    manifest_path = hs_path_join(dir, HS_CKPT_MANIFEST);
    if (!data_path || !manifest_path) {
        free(data_path);
        free(manifest_path);
        return HS_ERR_OUT_OF_MEMORY;
    }
    const hs_st_kv kv[] = {{"format", HS_CKPT_FORMAT}, {ID_KEY, id}};
    hs_status s = hs_safetensors_write(data_path, st, n, kv, 2);
    if (!s) {
        if (stat(data_path, &sb) != 0)
            s = hs_error(HS_ERR_IO, "stat %s: %s", data_path, strerror(errno));
        if (!s)
            s = build_manifest(id, data_name, (uint64_t)sb.st_size, tensors, n, meta, &text, &len);
        if (!s)
            s = write_manifest(manifest_path, text, len);
        if (s) /* not committed: the data file is an orphan */
            unlink(data_path);
    }
    free(text);
    free(data_path);
    free(manifest_path);
    return s;
}

hs_status hs_checkpoint_save(const char *dir, const hs_ckpt_tensor *tensors, int n, const hs_ckpt_meta *meta)
{
    static const hs_ckpt_meta zero_meta;
    if (!dir || n < 0 || (n > 0 && !tensors))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "checkpoint save: NULL directory or tensors, or n=%d", n);
    if (!meta)
        meta = &zero_meta;
    hs_status s = meta->model_config ? check_model_config(meta->model_config) : HS_OK;
    if (s)
        return s;
    hs_st_tensor *st = malloc((size_t)(n ? n : 1) * sizeof *st);
    if (!st)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "checkpoint save: out of memory");
    for (int i = 0; i < n; i++) {
        st[i] = (hs_st_tensor){.name = tensors[i].name, .dtype = HS_FP32, .ndim = tensors[i].ndim,
                               .data = tensors[i].data};
        memcpy(st[i].shape, tensors[i].shape, sizeof st[i].shape);
    }
    char data_name[64];
    s = hs_mkdir_p(dir);
    if (!s)
        s = save_files(dir, st, tensors, n, meta, data_name);
    if (!s)
        remove_stale(dir, data_name);
    free(st);
    return s;
}

/* ------------------------------------------------------------------ load */

/* What the manifest says, pointing into its parsed JSON. */
typedef struct manifest {
    const char *id;
    const char *tensors_file;
    const hs_json *files;
    const hs_json *model_config;
    const char *note;
    hs_ckpt_meta meta; /* numbers only */
} manifest;

static hs_status bad_manifest(const char *path, const char *what)
{
    return hs_error(HS_ERR_FORMAT, "%s: %s", path, what);
}

/* A bare file name: no directory part, not "." or "..". */
static int plain_name(const char *s)
{
    return s && s[0] && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static hs_status parse_manifest(const char *path, const hs_json *root, manifest *m)
{
    if (root->type != HS_JSON_OBJECT)
        return bad_manifest(path, "not a JSON object");
    const char *format = hs_json_string(hs_json_get(root, "format"));
    if (!format || strcmp(format, HS_CKPT_FORMAT) != 0)
        return hs_error(HS_ERR_FORMAT, "%s: format is \"%s\", expected \"%s\"", path, format ? format : "(missing)",
                        HS_CKPT_FORMAT);
    uint64_t version;
    if (!hs_json_u64(hs_json_get(root, "version"), &version))
        return bad_manifest(path, "\"version\" is missing or not an integer");
    if (version != HS_CKPT_VERSION)
        return hs_error(HS_ERR_FORMAT, "%s: checkpoint version %llu; this library reads version %d", path,
                        (unsigned long long)version, HS_CKPT_VERSION);
    const hs_json *rng = hs_json_get(root, "rng_state");
    if (!rng || rng->type != HS_JSON_ARRAY || rng->count != HS_CKPT_RNG_WORDS)
        return bad_manifest(path, "\"rng_state\" is not an array of 4 unsigned integers");
    int i = 0;
    for (const hs_json *v = rng->child; v; v = v->next)
        if (!hs_json_u64(v, &m->meta.rng_state[i++]))
            return bad_manifest(path, "\"rng_state\" is not an array of 4 unsigned integers");
    if (!hs_json_i64(hs_json_get(root, "step"), &m->meta.step) ||
        !hs_json_u64(hs_json_get(root, "seed"), &m->meta.seed) ||
        !hs_json_u64(hs_json_get(root, "data_position"), &m->meta.data_position))
        return bad_manifest(path, "\"step\", \"seed\" or \"data_position\" is missing or not an integer");
    m->id = hs_json_string(hs_json_get(root, ID_KEY));
    m->tensors_file = hs_json_string(hs_json_get(root, "tensors_file"));
    if (!m->id || !plain_name(m->tensors_file))
        return bad_manifest(path, "\"" ID_KEY "\" or \"tensors_file\" is missing or not a plain file name");
    m->model_config = hs_json_get(root, "model_config");
    const hs_json *note = hs_json_get(root, "note");
    m->note = hs_json_string(note);
    if (!m->model_config || (m->model_config->type != HS_JSON_OBJECT && m->model_config->type != HS_JSON_NULL) ||
        !note || (!m->note && note->type != HS_JSON_NULL))
        return bad_manifest(path, "\"model_config\" must be an object or null and \"note\" a string or null");
    m->files = hs_json_get(root, "files");
    if (!m->files || m->files->type != HS_JSON_ARRAY)
        return bad_manifest(path, "\"files\" is missing or not an array");
    return HS_OK;
}

/* Every listed file exists with its recorded size; tensors_file is listed. */
static hs_status check_files(const char *dir, const char *path, const manifest *m)
{
    int listed = 0;
    for (const hs_json *f = m->files->child; f; f = f->next) {
        const char *name = hs_json_string(hs_json_get(f, "name"));
        uint64_t bytes;
        if (!plain_name(name) || !hs_json_u64(hs_json_get(f, "bytes"), &bytes))
            return bad_manifest(path, "a \"files\" entry lacks a plain \"name\" or an integer \"bytes\"");
        listed |= strcmp(name, m->tensors_file) == 0;
        char *file = hs_path_join(dir, name);
        if (!file)
            return HS_ERR_OUT_OF_MEMORY;
        struct stat sb;
        hs_status s = HS_OK;
        if (stat(file, &sb) != 0)
            s = hs_error(HS_ERR_IO, "%s (listed in %s): %s", file, path, strerror(errno));
        else if ((uint64_t)sb.st_size != bytes)
            s = hs_error(HS_ERR_FORMAT, "%s is %llu bytes, but the manifest records %llu (truncated or overwritten)",
                         file, (unsigned long long)sb.st_size, (unsigned long long)bytes);
        free(file);
        if (s)
            return s;
    }
    return listed ? HS_OK : bad_manifest(path, "\"tensors_file\" is not among \"files\"");
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t at = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && at < cap; d++)
        at += (size_t)snprintf(buf + at, cap - at, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (at < cap)
        snprintf(buf + at, cap - at, "]");
}

/* Finds and checks each requested tensor; copies nothing. */
static hs_status match_tensors(const hs_safetensors *st, const char *file, const hs_ckpt_tensor *want, int n,
                               const hs_st_tensor **found)
{
    for (int i = 0; i < n; i++) {
        const hs_ckpt_tensor *w = &want[i];
        if (!w->name || w->ndim < 0 || w->ndim > HS_MAX_DIMS)
            return hs_error(HS_ERR_INVALID_ARGUMENT, "checkpoint load: tensor %d has a NULL name or ndim %d", i,
                            w->ndim);
        if (hs_safetensors_find(st, w->name, &found[i]))
            return hs_error(HS_ERR_NOT_FOUND, "checkpoint %s has no tensor %s", file, w->name);
        const hs_st_tensor *f = found[i];
        if (f->dtype != HS_FP32)
            return hs_error(HS_ERR_DTYPE, "checkpoint %s: tensor %s is %s, expected fp32", file, w->name,
                            hs_dtype_name(f->dtype));
        int same = f->ndim == w->ndim;
        for (int d = 0; d < w->ndim && same; d++)
            same = f->shape[d] == w->shape[d];
        if (!same) {
            char a[128], b[128];
            shape_str(a, sizeof a, w->ndim, w->shape);
            shape_str(b, sizeof b, f->ndim, f->shape);
            return hs_error(HS_ERR_SHAPE_MISMATCH, "checkpoint %s: tensor %s has shape %s, expected %s", file,
                            w->name, b, a);
        }
        int64_t numel = 1;
        for (int d = 0; d < w->ndim; d++)
            numel *= w->shape[d];
        if (numel > 0 && !w->data)
            return hs_error(HS_ERR_INVALID_ARGUMENT, "checkpoint load: tensor %s has NULL data", w->name);
    }
    return HS_OK;
}

static size_t fp32_bytes(const hs_st_tensor *t)
{
    size_t n = sizeof(float);
    for (int d = 0; d < t->ndim; d++)
        n *= (size_t)t->shape[d];
    return n;
}

/* Validates the data file against the manifest and the request, then
 * (and only then) fills the caller's buffers and *meta. */
static hs_status load_data(const char *dir, const char *manifest_path, const manifest *m, hs_ckpt_tensor *tensors,
                           int n, hs_ckpt_meta *meta)
{
    hs_status s = check_files(dir, manifest_path, m);
    if (s)
        return s;
    char *file = hs_path_join(dir, m->tensors_file);
    if (!file)
        return HS_ERR_OUT_OF_MEMORY;
    hs_safetensors *st = NULL;
    const hs_st_tensor **found = malloc((size_t)(n ? n : 1) * sizeof *found);
    char *config = NULL, *note = NULL;
    s = found ? hs_safetensors_new(file, &st) : hs_error(HS_ERR_OUT_OF_MEMORY, "checkpoint load: out of memory");
    if (!s) {
        const char *id = hs_safetensors_metadata(st, ID_KEY);
        if (!id || strcmp(id, m->id) != 0)
            s = hs_error(HS_ERR_FORMAT, "%s has checkpoint id %s, but %s expects %s", file, id ? id : "(none)",
                         manifest_path, m->id);
    }
    if (!s)
        s = match_tensors(st, file, tensors, n, found);
    if (!s && meta) {
        if (m->model_config->type == HS_JSON_OBJECT)
            config = strndup(m->model_config->src, m->model_config->src_len);
        if (m->note)
            note = strdup(m->note);
        if ((m->model_config->type == HS_JSON_OBJECT && !config) || (m->note && !note))
            s = hs_error(HS_ERR_OUT_OF_MEMORY, "checkpoint load: out of memory");
    }
    if (!s) {
        for (int i = 0; i < n; i++)
            memcpy(tensors[i].data, found[i]->data, fp32_bytes(found[i]));
        if (meta) {
            *meta = m->meta;
            meta->model_config = config;
            meta->note = note;
            config = note = NULL;
        }
    }
    free(config);
    free(note);
    free(found);
    hs_safetensors_free(st);
    free(file);
    return s;
}

hs_status hs_checkpoint_load(const char *dir, hs_ckpt_tensor *tensors, int n, hs_ckpt_meta *meta)
{
    if (!dir || n < 0 || (n > 0 && !tensors))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "checkpoint load: NULL directory or tensors, or n=%d", n);
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return hs_error(HS_ERR_IO, "checkpoint directory %s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return hs_error(HS_ERR_IO, "checkpoint %s is not a directory", dir);
    char *path = hs_path_join(dir, HS_CKPT_MANIFEST);
    if (!path)
        return HS_ERR_OUT_OF_MEMORY;
    hs_mapped_file text = {0};
    hs_json_doc *doc = NULL;
    manifest m = {0};
    hs_status s = HS_OK;
    if (stat(path, &sb) != 0 && errno == ENOENT)
        s = hs_error(HS_ERR_IO, "%s has no " HS_CKPT_MANIFEST ": not a checkpoint, or its save did not finish", dir);
    if (!s)
        s = hs_file_map(path, &text);
    if (!s && (s = hs_json_parse((const char *)text.data, (size_t)text.size, &doc)))
        s = hs_error_prefix(s, path);
    if (!s)
        s = parse_manifest(path, hs_json_root(doc), &m);
    if (!s)
        s = load_data(dir, path, &m, tensors, n, meta);
    hs_json_free(doc);
    hs_file_unmap(&text);
    free(path);
    return s;
}

void hs_ckpt_meta_free(hs_ckpt_meta *meta)
{
    if (!meta)
        return;
    free((void *)meta->model_config);
    free((void *)meta->note);
    meta->model_config = meta->note = NULL;
}
