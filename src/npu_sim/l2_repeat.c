/* The L2 model's memo of a block's repeated reads.
 *
 * A kernel re-reads the same tile many times (a matmul block reads its A
 * tile once per column tile of B). When block b reads exactly the lines it
 * has already read in the same pass (same allocation, address, rows, row
 * length and stride), the line-by-line walk of l2.c changes nothing a later
 * result depends on, except the census cycles:
 *   census: readers stay (the line's last reader is already b), the line
 *           is already touched; only first = min(first, t) and
 *           last = max(last, t) move, and min/max commute, so the memo
 *           keeps the smallest and largest t of the repeats and applies
 *           them once when the block ends (hs_npu_l2_flush_repeats), before
 *           anything reads them;
 *   timed:  every line takes the re-read branch (b already read it, or it
 *           was written, and neither ever reverts), so the access is
 *           rows * row_bytes bytes of re-read, the same integer sum the
 *           walk makes.
 * So a repeat costs a hash lookup instead of a walk, and the results are
 * the same bits. The table is open addressing keyed by the access, emptied
 * when the block or the pass changes (by a generation number). */
#include "core/try.h"
#include "npu_sim/launch.h"

#include <stdlib.h>

typedef struct hs_npu_l2_repeat {
    uintptr_t base, addr;
    int64_t rows, row_bytes, ld;
    uint64_t gen;          /* the table's generation it belongs to (older: empty slot) */
    uint64_t t_min, t_max; /* census cycles of its repeats */
    int pending;           /* census repeats not yet applied */
} repeat;

static uint64_t key_hash(uintptr_t addr, int64_t rows, int64_t row_bytes, int64_t ld)
{
    uint64_t h = (uint64_t)addr * 0x9e3779b97f4a7c15ULL;
    h ^= ((uint64_t)rows * 0xc2b2ae3d27d4eb4fULL) ^ ((uint64_t)row_bytes << 17) ^ ((uint64_t)ld << 33);
    return h ^ (h >> 29);
}

static int same(const repeat *e, uintptr_t base, uintptr_t addr, int64_t rows, int64_t row_bytes, int64_t ld)
{
    return e->addr == addr && e->base == base && e->rows == rows && e->row_bytes == row_bytes && e->ld == ld;
}

/* Starts an empty table for block blk of the current pass. */
static void reset(hs_npu_l2 *l2, int blk)
{
    l2->rep_gen++;
    l2->rep_count = 0;
    l2->rep_blk = blk;
}

static hs_status grow(hs_npu_l2 *l2)
{
    const size_t old_cap = l2->rep_cap, cap = old_cap ? 2 * old_cap : 1024;
    repeat *old = l2->rep, *t = calloc(cap, sizeof *t);
    if (!t)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "NPU L2 model: %zu repeat slots", cap);
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].gen != l2->rep_gen)
            continue;
        size_t j = key_hash(old[i].addr, old[i].rows, old[i].row_bytes, old[i].ld) & (cap - 1);
        while (t[j].gen == l2->rep_gen)
            j = (j + 1) & (cap - 1);
        t[j] = old[i];
    }
    free(old);
    l2->rep = t;
    l2->rep_cap = cap;
    return HS_OK;
}

hs_status hs_npu_l2_repeat_seen(hs_npu_l2 *l2, int blk, int census, uint64_t t, uintptr_t base, uintptr_t addr,
                                int64_t rows, int64_t row_bytes, int64_t ld, int *repeat_out)
{
    *repeat_out = 0;
    if (blk != l2->rep_blk || census != l2->rep_census) {
        HS_TRY(hs_npu_l2_flush_repeats(l2));
        reset(l2, blk);
        l2->rep_census = census;
    }
    if (2 * (l2->rep_count + 1) > l2->rep_cap)
        HS_TRY(grow(l2));
    size_t i = key_hash(addr, rows, row_bytes, ld) & (l2->rep_cap - 1);
    for (; l2->rep[i].gen == l2->rep_gen; i = (i + 1) & (l2->rep_cap - 1)) {
        repeat *e = &l2->rep[i];
        if (!same(e, base, addr, rows, row_bytes, ld))
            continue;
        *repeat_out = 1;
        if (census) {
            e->t_min = t < e->t_min ? t : e->t_min;
            e->t_max = t > e->t_max ? t : e->t_max;
            e->pending = 1;
        }
        return HS_OK;
    }
    l2->rep[i] = (repeat){base, addr, rows, row_bytes, ld, l2->rep_gen, t, t, 0};
    l2->rep_count++;
    return HS_OK;
}

hs_status hs_npu_l2_flush_repeats(hs_npu_l2 *l2)
{
    if (!l2->rep_census)
        return HS_OK;
    for (size_t i = 0; i < l2->rep_cap; i++) {
        repeat *e = &l2->rep[i];
        if (e->gen != l2->rep_gen || !e->pending)
            continue;
        HS_TRY(hs_npu_l2_census_span(l2, e->base, e->addr, e->rows, e->row_bytes, e->ld, e->t_min, e->t_max));
        e->pending = 0;
    }
    return HS_OK;
}

void hs_npu_l2_repeats_forget(hs_npu_l2 *l2)
{
    reset(l2, -1);
    l2->rep_census = -1;
}

void hs_npu_l2_repeats_free(hs_npu_l2 *l2)
{
    free(l2->rep);
    l2->rep = NULL;
    l2->rep_cap = l2->rep_count = 0;
}
