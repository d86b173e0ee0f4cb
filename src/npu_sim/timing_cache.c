/* The kernel timing cache: launch keys (isa.h) and the per-device table
 * of simulated launches they index.
 *
 * A key is the launch's kernel, kind, block_dim, name and the words the
 * kernel put in it. A GM operand enters as its geometry, not its address:
 * its offset inside a 512-byte L2 line, then for every earlier operand
 * whose lines it shares, that operand's index and the distance to it in
 * bytes, then -1. The L2 model (l2.c) tracks lines one by one, so that is
 * all it can see of the addresses: the same layer at another place in HBM,
 * or the next step, hits.
 *
 * The table is open addressing on a 64-bit FNV-1a hash; entries are never
 * removed (a model has a few dozen distinct launches), and past
 * MAX_ENTRIES new launches are simply not stored. */
#include "core/try.h"
#include "npu_sim/launch.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ENTRIES 65536

typedef struct entry {
    uint64_t hash;
    hs_npu_kernel_fn fn;
    hs_npu_launch_kind kind;
    int dim, len;
    char *name;
    int64_t *w;
    hs_npu_timing t; /* t.rows owned */
} entry;

struct hs_npu_tcache {
    entry *slots;
    size_t size, count; /* size: a power of two */
};

void hs_npu_key_init(hs_npu_key *k)
{
    memset(k, 0, sizeof *k);
}

void hs_npu_key_int(hs_npu_key *k, int64_t v)
{
    if (k->len == HS_NPU_KEY_WORDS) {
        k->overflow = 1;
        return;
    }
    k->w[k->len++] = v;
}

void hs_npu_key_gm(hs_npu_key *k, hs_npu_operand op)
{
    if (!op.gm) {
        hs_npu_key_int(k, -2);
        return;
    }
    if (k->nptr == HS_NPU_KEY_PTRS || op.bytes < 1) {
        k->overflow = 1;
        return;
    }
    const uintptr_t a = (uintptr_t)op.gm, lo = a / HS_NPU_L2_LINE, hi = (a + (uintptr_t)op.bytes - 1) / HS_NPU_L2_LINE;
    hs_npu_key_int(k, (int64_t)(a % HS_NPU_L2_LINE));
    for (int j = 0; j < k->nptr; j++)
        if (lo <= k->hi[j] && k->lo[j] <= hi) { /* they share lines: where they are relative to each other matters */
            hs_npu_key_int(k, j);
            hs_npu_key_int(k, (int64_t)(a - k->ptr[j]));
        }
    hs_npu_key_int(k, -1);
    k->ptr[k->nptr] = a;
    k->lo[k->nptr] = lo;
    k->hi[k->nptr++] = hi;
}

void hs_npu_key_of(hs_npu_key *k, const hs_npu_operand *ops, int nops, const int64_t *w, int nw)
{
    hs_npu_key_init(k);
    for (int i = 0; i < nops; i++)
        hs_npu_key_gm(k, ops[i]);
    for (int i = 0; i < nw; i++)
        hs_npu_key_int(k, w[i]);
}

/* FNV-1a over n bytes, continuing from h. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t hash_of(hs_npu_kernel_fn fn, hs_npu_launch_kind kind, int dim, const char *name, const hs_npu_key *k)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv(h, &fn, sizeof fn);
    h = fnv(h, &kind, sizeof kind);
    h = fnv(h, &dim, sizeof dim);
    h = fnv(h, name, strlen(name));
    return fnv(h, k->w, (size_t)k->len * sizeof k->w[0]);
}

static int same(const entry *e, uint64_t h, hs_npu_kernel_fn fn, hs_npu_launch_kind kind, int dim, const char *name,
                const hs_npu_key *k)
{
    return e->hash == h && e->fn == fn && e->kind == kind && e->dim == dim && e->len == k->len &&
           strcmp(e->name, name) == 0 && memcmp(e->w, k->w, (size_t)k->len * sizeof k->w[0]) == 0;
}

/* The slot of the launch: its entry, or the empty slot it would take. */
static entry *slot_of(const struct hs_npu_tcache *tc, uint64_t h, hs_npu_kernel_fn fn, hs_npu_launch_kind kind,
                      int dim, const char *name, const hs_npu_key *k)
{
    for (size_t i = h & (tc->size - 1);; i = (i + 1) & (tc->size - 1)) {
        entry *e = &tc->slots[i];
        if (!e->name || same(e, h, fn, kind, dim, name, k))
            return e;
    }
}

const hs_npu_timing *hs_npu_tcache_get(const struct hs_npu_tcache *tc, hs_npu_kernel_fn fn, hs_npu_launch_kind kind,
                                       int dim, const char *name, const hs_npu_key *k)
{
    if (!tc || !tc->size || k->overflow)
        return NULL;
    const entry *e = slot_of(tc, hash_of(fn, kind, dim, name, k), fn, kind, dim, name, k);
    return e->name ? &e->t : NULL;
}

/* Doubles the table (or makes the first one). */
static hs_status grow(struct hs_npu_tcache *tc)
{
    struct hs_npu_tcache bigger = {calloc(tc->size ? 2 * tc->size : 256, sizeof(entry)),
                                   tc->size ? 2 * tc->size : 256, tc->count};
    if (!bigger.slots)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "NPU timing cache: %zu slots", bigger.size);
    for (size_t i = 0; i < tc->size; i++) {
        const entry *e = &tc->slots[i];
        if (!e->name)
            continue;
        size_t j = e->hash & (bigger.size - 1);
        while (bigger.slots[j].name)
            j = (j + 1) & (bigger.size - 1);
        bigger.slots[j] = *e;
    }
    free(tc->slots);
    *tc = bigger;
    return HS_OK;
}

/* A copy of t's trace rows into *out (NULL when t has none). */
static hs_status copy_rows(const hs_npu_timing *t, void **out)
{
    *out = NULL;
    if (!t->rows)
        return HS_OK;
    if (!(*out = malloc(t->rows_bytes)))
        return hs_error(HS_ERR_OUT_OF_MEMORY, "NPU timing cache: %zu bytes of trace rows", t->rows_bytes);
    memcpy(*out, t->rows, t->rows_bytes);
    return HS_OK;
}

hs_status hs_npu_tcache_put(struct hs_npu_tcache **tcp, hs_npu_kernel_fn fn, hs_npu_launch_kind kind, int dim,
                            const char *name, const hs_npu_key *k, const hs_npu_timing *t)
{
    if (k->overflow)
        return HS_OK;
    if (!*tcp && !(*tcp = calloc(1, sizeof **tcp)))
        return hs_error(HS_ERR_OUT_OF_MEMORY, "NPU timing cache");
    struct hs_npu_tcache *tc = *tcp;
    if (tc->count >= MAX_ENTRIES)
        return HS_OK;
    if (2 * (tc->count + 1) > tc->size)
        HS_TRY(grow(tc));
    const uint64_t h = hash_of(fn, kind, dim, name, k);
    entry *e = slot_of(tc, h, fn, kind, dim, name, k);
    if (e->name) { /* stored by an untraced launch: add the trace rows */
        if (!e->t.rows)
            HS_TRY(copy_rows(t, &e->t.rows));
        e->t.rows_bytes = e->t.rows ? t->rows_bytes : 0;
        return HS_OK;
    }
    void *rows;
    HS_TRY(copy_rows(t, &rows));
    const size_t nw = (size_t)k->len * sizeof k->w[0], nl = strlen(name) + 1;
    int64_t *w = malloc(nw + nl); /* the words, then the name */
    if (!w) {
        free(rows);
        return hs_error(HS_ERR_OUT_OF_MEMORY, "NPU timing cache: an entry for %s", name);
    }
    memcpy(w, k->w, nw);
    char *nm = (char *)w + nw;
    memcpy(nm, name, nl);
    *e = (entry){h, fn, kind, dim, k->len, nm, w, *t};
    e->t.rows = rows;
    tc->count++;
    return HS_OK;
}

void hs_npu_tcache_free(struct hs_npu_tcache *tc)
{
    if (!tc)
        return;
    for (size_t i = 0; i < tc->size; i++)
        if (tc->slots[i].name) {
            free(tc->slots[i].w);
            free(tc->slots[i].t.rows);
        }
    free(tc->slots);
    free(tc);
}
