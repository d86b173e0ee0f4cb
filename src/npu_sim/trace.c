/* Chrome trace recorder: slices and counters buffered in fixed-size chunks
 * (allocated once, never moved), names interned with their JSON text
 * escaped once, the file written atomically (temporary + rename) when the
 * trace stops. */
#include "core/json.h"
#include "core/fileio.h"
#include "npu_sim/device.h"
#include "npu_sim/trace.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_ITEMS 4096

/* One buffered event. X: a slice on thread row `track`; C: a counter
 * sample (value in `dur`) on process `track`. */
typedef struct trace_event {
    double ts, dur;
    int32_t name, cat, track;
    int32_t args; /* index of the first arg, -1 for none */
    uint8_t ph, nargs;
} trace_event;

typedef struct trace_argrec {
    int32_t key;
    double value;
} trace_argrec;

/* An append-only array stored in CHUNK_ITEMS-element blocks. */
typedef struct chunked {
    char **blocks;
    size_t nblocks, len, elem;
} chunked;

/* Interned strings: their escaped JSON text ("\"name\"") by id, found
 * through an open-addressing table of id + 1 (0: empty). */
typedef struct strtab {
    char **raw, **json;
    size_t n, cap;
    int32_t *slots;
    size_t nslots;
} strtab;

/* uint64 key -> index: rows (process index << 32 | thread name id) and
 * processes (1 << 63 | name id). */
typedef struct keymap {
    uint64_t *keys;
    int32_t *vals; /* value + 1; 0: empty */
    size_t n, nslots;
} keymap;

typedef struct trace_row {
    int32_t process, name;
} trace_row;

struct hs_npu_trace {
    hs_atomic_file file; /* opened at start, committed at stop */
    chunked events, args;
    strtab strs;
    keymap map;
    int32_t *processes; /* name id per process index */
    size_t nprocesses, cap_processes;
    trace_row *rows;
    size_t nrows, cap_rows;
    int failed; /* out of memory while recording: the trace is incomplete */
};

/* Pointer to a new zeroed element at the end, NULL when out of memory. */
static void *chunked_push(chunked *c)
{
    size_t b = c->len / CHUNK_ITEMS;
    if (b == c->nblocks) {
        char **nb = realloc(c->blocks, (c->nblocks + 1) * sizeof *nb);
        if (!nb)
            return NULL;
        c->blocks = nb;
        if (!(nb[b] = malloc(CHUNK_ITEMS * c->elem)))
            return NULL;
        c->nblocks++;
    }
    void *p = c->blocks[b] + (c->len % CHUNK_ITEMS) * c->elem;
    c->len++;
    return p;
}

/* Element i. */
static void *chunked_at(const chunked *c, size_t i)
{
    return c->blocks[i / CHUNK_ITEMS] + (i % CHUNK_ITEMS) * c->elem;
}

/* Frees every block. */
static void chunked_free(chunked *c)
{
    for (size_t i = 0; i < c->nblocks; i++)
        free(c->blocks[i]);
    free(c->blocks);
}

/* FNV-1a. */
static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Mixes a 64-bit key (splitmix64 finaliser). */
static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* `s` as a quoted JSON string; bytes of invalid UTF-8 become '?'. */
static char *json_quote(const char *s)
{
    size_t n = strlen(s);
    int utf8 = hs_json_utf8_valid(s, n);
    char *out = malloc(6 * n + 3), *o = out;
    if (!out)
        return NULL;
    *o++ = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            *o++ = '\\';
            *o++ = (char)*p;
        } else if (*p < 0x20) {
            o += sprintf(o, "\\u%04x", *p);
        } else {
            *o++ = (char)(*p >= 0x80 && !utf8 ? '?' : *p);
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

/* Doubles the string table's slots and reinserts every id. */
static int strtab_rehash(strtab *t)
{
    size_t nslots = t->nslots ? 2 * t->nslots : 256;
    int32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t id = 0; id < t->n; id++) {
        size_t i = hash_str(t->raw[id]) & (nslots - 1);
        while (slots[i])
            i = (i + 1) & (nslots - 1);
        slots[i] = (int32_t)id + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    return 0;
}

/* The id of string s, adding it when new; -1 when out of memory. */
static int32_t intern(strtab *t, const char *s)
{
    if (2 * (t->n + 1) > t->nslots && strtab_rehash(t))
        return -1;
    size_t i = hash_str(s) & (t->nslots - 1);
    for (; t->slots[i]; i = (i + 1) & (t->nslots - 1))
        if (!strcmp(t->raw[t->slots[i] - 1], s))
            return t->slots[i] - 1;
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        char **raw = realloc(t->raw, cap * sizeof *raw);
        if (!raw)
            return -1;
        t->raw = raw;
        char **json = realloc(t->json, cap * sizeof *json);
        if (!json)
            return -1;
        t->json = json;
        t->cap = cap;
    }
    char *r = strdup(s), *j = json_quote(s);
    if (!r || !j) {
        free(r);
        free(j);
        return -1;
    }
    t->raw[t->n] = r;
    t->json[t->n] = j;
    t->slots[i] = (int32_t)t->n + 1;
    return (int32_t)t->n++;
}

/* Doubles the key map's slots and reinserts every key. */
static int keymap_rehash(keymap *m)
{
    size_t nslots = m->nslots ? 2 * m->nslots : 256;
    uint64_t *keys = calloc(nslots, sizeof *keys);
    int32_t *vals = calloc(nslots, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -1;
    }
    for (size_t j = 0; j < m->nslots; j++) {
        if (!m->vals[j])
            continue;
        size_t i = hash_u64(m->keys[j]) & (nslots - 1);
        while (vals[i])
            i = (i + 1) & (nslots - 1);
        keys[i] = m->keys[j];
        vals[i] = m->vals[j];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->nslots = nslots;
    return 0;
}

/* Slot of `key`: holds it, or is the empty slot where it belongs. NULL
 * when out of memory. */
static int32_t *keymap_slot(keymap *m, uint64_t key)
{
    if (2 * (m->n + 1) > m->nslots && keymap_rehash(m))
        return NULL;
    size_t i = hash_u64(key) & (m->nslots - 1);
    while (m->vals[i] && m->keys[i] != key)
        i = (i + 1) & (m->nslots - 1);
    m->keys[i] = key;
    return &m->vals[i];
}

/* Index of the process called `name`, adding it when new; -1 on OOM. */
static int32_t process_index(struct hs_npu_trace *t, const char *name)
{
    int32_t id = intern(&t->strs, name);
    int32_t *slot = id < 0 ? NULL : keymap_slot(&t->map, (1ULL << 63) | (uint64_t)id);
    if (!slot)
        return -1;
    if (*slot)
        return *slot - 1;
    if (t->nprocesses == t->cap_processes) {
        size_t cap = t->cap_processes ? 2 * t->cap_processes : 16;
        int32_t *np = realloc(t->processes, cap * sizeof *np);
        if (!np)
            return -1;
        t->processes = np;
        t->cap_processes = cap;
    }
    t->processes[t->nprocesses] = id;
    t->map.n++;
    *slot = (int32_t)++t->nprocesses;
    return *slot - 1;
}

/* Index of the row (process, thread), adding it when new; -1 on OOM. */
static int32_t row_index(struct hs_npu_trace *t, const char *process, const char *thread)
{
    int32_t p = process_index(t, process);
    int32_t id = p < 0 ? -1 : intern(&t->strs, thread);
    int32_t *slot = id < 0 ? NULL : keymap_slot(&t->map, (uint64_t)p << 32 | (uint64_t)id);
    if (!slot)
        return -1;
    if (*slot)
        return *slot - 1;
    if (t->nrows == t->cap_rows) {
        size_t cap = t->cap_rows ? 2 * t->cap_rows : 64;
        trace_row *nr = realloc(t->rows, cap * sizeof *nr);
        if (!nr)
            return -1;
        t->rows = nr;
        t->cap_rows = cap;
    }
    t->rows[t->nrows] = (trace_row){p, id};
    t->map.n++;
    *slot = (int32_t)++t->nrows;
    return *slot - 1;
}

/* Frees the recorder (its file must be committed or aborted already). */
static void recorder_free(struct hs_npu_trace *t)
{
    chunked_free(&t->events);
    chunked_free(&t->args);
    for (size_t i = 0; i < t->strs.n; i++) {
        free(t->strs.raw[i]);
        free(t->strs.json[i]);
    }
    free(t->strs.raw);
    free(t->strs.json);
    free(t->strs.slots);
    free(t->map.keys);
    free(t->map.vals);
    free(t->processes);
    free(t->rows);
    free(t);
}

/* 1 while d records a trace. */
int hs_npu_tracing(const hs_npu *d)
{
    return d->trace != NULL;
}

/* Records a slice with a category and args. */
void hs_npu_trace_slice_args(hs_npu *d, const char *process, const char *thread, const char *name,
                             const char *category, double start_s, double dur_s, const hs_npu_trace_arg *args,
                             int nargs)
{
    struct hs_npu_trace *t = d->trace;
    if (!t || t->failed)
        return;
    if (nargs > HS_NPU_TRACE_MAX_ARGS)
        nargs = HS_NPU_TRACE_MAX_ARGS;
    int32_t row = row_index(t, process, thread);
    int32_t nm = row < 0 ? -1 : intern(&t->strs, name);
    int32_t cat = nm < 0 ? -1 : intern(&t->strs, category);
    trace_event *e = cat < 0 ? NULL : chunked_push(&t->events);
    if (!e) {
        t->failed = 1;
        return;
    }
    *e = (trace_event){start_s, dur_s, nm, cat, row, -1, 'X', 0};
    for (int i = 0; i < nargs; i++) {
        int32_t key = intern(&t->strs, args[i].key);
        trace_argrec *a = key < 0 ? NULL : chunked_push(&t->args);
        if (!a) {
            t->failed = 1;
            return;
        }
        *a = (trace_argrec){key, args[i].value};
        if (i == 0)
            e->args = (int32_t)(t->args.len - 1);
        e->nargs++;
    }
}

/* Records a slice in category "npu" without args. */
void hs_npu_trace_slice(hs_npu *d, const char *process, const char *thread, const char *name, double start_s,
                        double dur_s)
{
    hs_npu_trace_slice_args(d, process, thread, name, "npu", start_s, dur_s, NULL, 0);
}

/* Records a counter sample on the device's process. */
void hs_npu_trace_counter(hs_npu *d, const char *name, double t_s, double value)
{
    struct hs_npu_trace *t = d->trace;
    if (!t || t->failed)
        return;
    char process[32];
    hs_npu_process_name(d, process, sizeof process);
    int32_t p = process_index(t, process);
    int32_t nm = p < 0 ? -1 : intern(&t->strs, name);
    trace_event *e = nm < 0 ? NULL : chunked_push(&t->events);
    if (!e) {
        t->failed = 1;
        return;
    }
    *e = (trace_event){t_s, value, nm, -1, p, -1, 'C', 0};
}

/* Starts recording; the temporary file is opened now so a bad path fails
 * here rather than at the end of a long run. */
hs_status hs_npu_trace_start(hs_npu *d, const char *path)
{
    if (!d || !path)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_npu_trace_start: NULL argument");
    if (d->trace)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_npu_trace_start: NPU %s is already writing a trace to %s",
                        d->spec.name, d->trace->file.path);
    struct hs_npu_trace *t = calloc(1, sizeof *t);
    if (!t)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_npu_trace_start: %zu bytes", sizeof *t);
    t->events.elem = sizeof(trace_event);
    t->args.elem = sizeof(trace_argrec);
    hs_status st = hs_atomic_open(&t->file, path);
    if (st != HS_OK) {
        recorder_free(t);
        return st;
    }
    d->trace = t;
    hs_npu_trace_counter(d, "HBM in use", d->default_stream.clock, (double)d->hbm.used);
    return HS_OK;
}

/* A finite double as JSON (non-finite values are written as 0). */
static void put_number(FILE *f, double v)
{
    fprintf(f, "%.17g", isfinite(v) ? v : 0.0);
}

/* Appends v in decimal at o, zero-padded to `width` digits; returns the end. */
static char *put_u64(char *o, uint64_t v, int width)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < width)
        tmp[n++] = '0';
    while (n)
        *o++ = tmp[--n];
    return o;
}

/* Writes `seconds` as microseconds with six decimals (picoseconds):
 * the "%.6f" format by integer arithmetic, about twice as fast. */
static void put_us(FILE *f, double seconds)
{
    if (!isfinite(seconds) || fabs(seconds) >= 9e6) {
        fprintf(f, "%.6f", isfinite(seconds) ? seconds * 1e6 : 0.0);
        return;
    }
    char buf[48], *o = buf;
    if (seconds < 0) {
        *o++ = '-';
        seconds = -seconds;
    }
    uint64_t ps = (uint64_t)llround(seconds * 1e12);
    o = put_u64(o, ps / 1000000, 1);
    *o++ = '.';
    o = put_u64(o, ps % 1000000, 6);
    fwrite(buf, 1, (size_t)(o - buf), f);
}

/* Writes the process and thread name metadata events, each line ending
 * in ",\n" (an event always follows: at least the first HBM sample). */
static void write_metadata(const struct hs_npu_trace *t, FILE *f)
{
    for (size_t p = 0; p < t->nprocesses; p++)
        fprintf(f, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%zu,\"tid\":0,\"args\":{\"name\":%s}},\n", p + 1,
                t->strs.json[t->processes[p]]);
    for (size_t r = 0; r < t->nrows; r++) {
        fprintf(f, "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%d,\"tid\":%zu,\"args\":{\"name\":%s}},\n",
                t->rows[r].process + 1, r + 1, t->strs.json[t->rows[r].name]);
        fprintf(f, "{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":%d,\"tid\":%zu,\"args\":{\"sort_index\":%zu}},\n",
                t->rows[r].process + 1, r + 1, r + 1);
    }
}

/* Writes one buffered event, preceded by ",\n" unless it is the first. */
static void write_event(const struct hs_npu_trace *t, FILE *f, const trace_event *e, int first)
{
    const char *const *js = (const char *const *)t->strs.json;
    char ids[64];
    if (!first)
        fputs(",\n", f);
    if (e->ph == 'C') {
        fputs("{\"ph\":\"C\",\"name\":", f);
        fputs(js[e->name], f);
        *put_u64(ids, (uint64_t)e->track + 1, 1) = '\0';
        fputs(",\"pid\":", f);
        fputs(ids, f);
        fputs(",\"tid\":0,\"ts\":", f);
        put_us(f, e->ts);
        fputs(",\"args\":{\"value\":", f);
        put_number(f, e->dur);
        fputs("}}", f);
        return;
    }
    char *o = ids;
    memcpy(o, ",\"pid\":", 7);
    o = put_u64(o + 7, (uint64_t)t->rows[e->track].process + 1, 1);
    memcpy(o, ",\"tid\":", 7);
    o = put_u64(o + 7, (uint64_t)e->track + 1, 1);
    memcpy(o, ",\"ts\":", 7); /* with its NUL */
    fputs("{\"ph\":\"X\",\"name\":", f);
    fputs(js[e->name], f);
    fputs(",\"cat\":", f);
    fputs(js[e->cat], f);
    fputs(ids, f);
    put_us(f, e->ts);
    fputs(",\"dur\":", f);
    put_us(f, e->dur);
    if (e->nargs) {
        fputs(",\"args\":{", f);
        for (int i = 0; i < e->nargs; i++) {
            const trace_argrec *a = chunked_at(&t->args, (size_t)e->args + (size_t)i);
            if (i)
                fputc(',', f);
            fputs(js[a->key], f);
            fputc(':', f);
            put_number(f, a->value);
        }
        fputc('}', f);
    }
    fputc('}', f);
}

/* Writes the buffered trace to its file (temporary + rename) and stops
 * recording. No trace active: nothing to do. */
hs_status hs_npu_trace_stop(hs_npu *d)
{
    if (!d || !d->trace)
        return HS_OK;
    struct hs_npu_trace *t = d->trace;
    d->trace = NULL;
    FILE *f = t->file.fp;
    fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n", f);
    write_metadata(t, f);
    for (size_t i = 0; i < t->events.len; i++)
        write_event(t, f, chunked_at(&t->events, i), i == 0);
    fputs("\n]}\n", f);
    hs_status st;
    if (t->failed)
        st = hs_error(HS_ERR_OUT_OF_MEMORY, "trace %s: ran out of memory while recording", t->file.path);
    else if (ferror(f))
        st = hs_error(HS_ERR_IO, "write %s: an error occurred while writing", t->file.tmp_path);
    else
        st = hs_atomic_commit(&t->file);
    if (st != HS_OK)
        hs_atomic_abort(&t->file);
    recorder_free(t);
    return st;
}
