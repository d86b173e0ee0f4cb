/* The L2 reuse model of one launch.
 *
 * GM is read and written through L2 in 512-byte lines. Blocks of a launch
 * run one after another on the host but side by side on the chip, so which
 * block reads a shared line "first" must not depend on the host order. The
 * launch therefore runs every block twice:
 *   census:    each line records how many distinct blocks read it (readers)
 *              and the first and last cycle any block touched it (all
 *              blocks start at cycle 0 together). A line is live from its
 *              first to its last access; the live footprint at a cycle is
 *              the lines live then, and its peak over the kernel decides
 *              how much of the re-read data L2 can keep:
 *                  fit = min(1, l2_bytes / peak live footprint)
 *              (lines touched once never count; written data that is
 *              read back later does).
 *   timed:     each access is split, line by line, into bytes from HBM and
 *              bytes from L2:
 *     - a line written earlier in this launch:     fit from L2, rest HBM;
 *     - a block's first read of a line:            1/readers from HBM (the
 *       blocks sharing the line share its fetch), the rest as a re-read;
 *     - a re-read:                                 fit from L2, rest HBM;
 *     - a write:                                   fit absorbed by L2, rest
 *       at HBM rate; in the stats each line writes back to HBM once per
 *       launch, however often it is rewritten (at most 512 bytes a line:
 *       dirty lines stay in L2 until evicted).
 * So a kernel whose footprint fits L2 reads each line from HBM once in all,
 * and every re-read, by any block, comes at the L2 rate.
 *
 * Lines are kept per HBM allocation (GM accesses never cross one, and
 * allocations are 512-byte aligned, so a line belongs to exactly one) in
 * pages of PAGE_LINES consecutive lines, found by (allocation, line index)
 * with no hashing per line; the pages of a launch go back to a pool when
 * the next launch begins, so memory follows the largest launch footprint.
 */
#include "core/try.h"
#include "npu_sim/launch.h"

#include <stdlib.h>

/* Lines per page: 2 MiB of GM. */
#define PAGE_LINES 4096

/* How many rows ahead of the current one an access prefetches its line
 * records: a tile's rows are usually a line or more apart, so every row
 * is a new cache line of records, and without this the walk waits on
 * each of them in turn. */
#define PREFETCH_ROWS 8

/* One line's record, 16 bytes, all zero = not touched in this launch. The
 * census fills it; the timed pass, which no longer needs the census
 * cycles, reuses their bits for its own state the first time it visits
 * the line (the TIMED bit says which), keeping the reader count:
 *   w0, census: bits 0-47 first cycle + 1 (0: untouched), 48-62 1 + last
 *               block seen reading it, 63 clear;
 *   w0, timed:  bits 0-14 1 + last block seen reading it, 15 written so
 *               far, 16-25 bytes charged as write-back so far (at most a
 *               line), 63 set;
 *   w1:         bits 0-47 last census cycle, 48-63 distinct blocks
 *               reading it (census).
 * Census cycles are 48 bits (1.7 days of simulated kernel at 1.8 GHz;
 * a longer one is refused), blocks 15 bits (hs_npu_launch allows fewer). */
typedef struct line_rec {
    uint64_t w0, w1;
} line_rec;

#define CYC_MASK ((UINT64_C(1) << 48) - 1)
#define CBLK_SHIFT 48
#define TIMED_BIT (UINT64_C(1) << 63)
#define TBLK_MASK UINT64_C(0x7fff)
#define WRITTEN_BIT (UINT64_C(1) << 15)
#define WBYTES_SHIFT 16
#define READERS_SHIFT 48

typedef struct l2_page {
    line_rec rec[PAGE_LINES];
} l2_page;

/* The touched lines of one allocation in this launch. */
typedef struct hs_npu_l2_region {
    uintptr_t base;
    l2_page **pages; /* by line / PAGE_LINES; NULL: untouched */
    size_t npages;
} hs_npu_l2_region;

/* Region of allocation `base`, made on first use in this launch. */
static hs_status region_of(hs_npu_l2 *l2, uintptr_t base, hs_npu_l2_region **out)
{
    if (l2->last && l2->last->base == base) {
        *out = l2->last;
        return HS_OK;
    }
    for (size_t i = 0; i < l2->nregions; i++)
        if (l2->regions[i].base == base) {
            *out = l2->last = &l2->regions[i];
            return HS_OK;
        }
    if (l2->nregions == l2->cap_regions) {
        const size_t cap = l2->cap_regions ? 2 * l2->cap_regions : 16;
        hs_npu_l2_region *r = realloc(l2->regions, cap * sizeof *r);
        if (!r)
            return hs_error(HS_ERR_OUT_OF_MEMORY, "NPU L2 model: %zu regions", cap);
        l2->regions = r;
        l2->cap_regions = cap;
    }
    hs_npu_l2_region *r = &l2->regions[l2->nregions++];
    *r = (hs_npu_l2_region){base, NULL, 0};
    *out = l2->last = r;
    return HS_OK;
}

/* A zeroed page, from the pool when it has one. */
static hs_status page_new(hs_npu_l2 *l2, l2_page **out)
{
    l2_page *p = l2->npool ? l2->pool[--l2->npool] : malloc(sizeof *p);
    if (!p)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "NPU L2 model: a page of %d lines", PAGE_LINES);
    memset(p, 0, sizeof *p);
    *out = p;
    return HS_OK;
}

/* The page holding line `i` of region r (made on first use). */
static hs_status page_of(hs_npu_l2 *l2, hs_npu_l2_region *r, uint64_t i, l2_page **out)
{
    const size_t pg = (size_t)(i / PAGE_LINES);
    if (pg >= r->npages) {
        size_t n = r->npages ? r->npages : 1;
        while (n <= pg)
            n *= 2;
        l2_page **p = realloc(r->pages, n * sizeof *p);
        if (!p)
            return hs_error(HS_ERR_OUT_OF_MEMORY, "NPU L2 model: %zu page slots", n);
        memset(p + r->npages, 0, (n - r->npages) * sizeof *p);
        r->pages = p;
        r->npages = n;
    }
    if (!r->pages[pg]) {
        if (l2->npool == 0 && l2->cap_pool == l2->nused) { /* room to return every page to the pool later */
            const size_t cap = l2->cap_pool ? 2 * l2->cap_pool : 64;
            l2_page **pool = realloc(l2->pool, cap * sizeof *pool);
            if (!pool)
                return hs_error(HS_ERR_OUT_OF_MEMORY, "NPU L2 model: a pool of %zu pages", cap);
            l2->pool = pool;
            l2->cap_pool = cap;
        }
        HS_TRY(page_new(l2, &r->pages[pg]));
        l2->nused++;
    }
    *out = r->pages[pg];
    return HS_OK;
}

/* Returns every page of the last launch to the pool and forgets its regions. */
static void release(hs_npu_l2 *l2)
{
    for (size_t i = 0; i < l2->nregions; i++) {
        hs_npu_l2_region *r = &l2->regions[i];
        for (size_t p = 0; p < r->npages; p++)
            if (r->pages[p])
                l2->pool[l2->npool++] = r->pages[p];
        free(r->pages);
    }
    l2->nregions = 0;
    l2->nused = 0;
    l2->last = NULL;
}

/* An empty line set for a new launch. */
hs_status hs_npu_l2_lines_begin(hs_npu_l2 *l2)
{
    release(l2);
    hs_npu_l2_repeats_forget(l2);
    l2->count = 0;
    l2->t_max = 0;
    l2->fit = 1.0;
    return HS_OK;
}

/* Time buckets of the live-footprint profile. */
#define L2_BUCKETS 4096

/* fit = min(1, l2_bytes / peak live footprint): a difference array of
 * live lines over L2_BUCKETS slices of [0, last census cycle]; a line
 * counts in every slice its [first, last] touches (so the peak errs high
 * by at most one slice's turnover). */
hs_status hs_npu_l2_lines_end_census(hs_npu_l2 *l2, int64_t l2_bytes)
{
    HS_TRY(hs_npu_l2_flush_repeats(l2));
    hs_npu_l2_repeats_forget(l2);
    l2->fit = 1.0;
    if ((double)l2->count * HS_NPU_L2_LINE <= (double)l2_bytes)
        return HS_OK;
    int64_t *live = calloc(L2_BUCKETS + 1, sizeof *live);
    if (!live)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "NPU L2 model: %d buckets", L2_BUCKETS);
    const double scale = (double)L2_BUCKETS / ((double)l2->t_max + 1.0);
    for (size_t i = 0; i < l2->nregions; i++)
        for (size_t p = 0; p < l2->regions[i].npages; p++) {
            const l2_page *pg = l2->regions[i].pages[p];
            for (int k = 0; pg && k < PAGE_LINES; k++) {
                const uint64_t first1 = pg->rec[k].w0 & CYC_MASK, last = pg->rec[k].w1 & CYC_MASK;
                if (!first1 || last == first1 - 1)
                    continue;
                live[(int64_t)((double)(first1 - 1) * scale)]++;
                live[(int64_t)((double)last * scale) + 1]--;
            }
        }
    int64_t now = 0, peak = 0;
    for (int b = 0; b < L2_BUCKETS; b++) {
        now += live[b];
        peak = now > peak ? now : peak;
    }
    free(live);
    const double footprint = (double)peak * HS_NPU_L2_LINE;
    if (footprint > (double)l2_bytes)
        l2->fit = (double)l2_bytes / footprint;
    return HS_OK;
}

/* Releases the line set and its pool. */
void hs_npu_l2_lines_free(hs_npu_l2 *l2)
{
    release(l2);
    hs_npu_l2_repeats_free(l2);
    for (size_t i = 0; i < l2->npool; i++)
        free(l2->pool[i]);
    free(l2->pool);
    free(l2->regions);
    *l2 = (hs_npu_l2){0};
}

/* Census: line e touched by block blk at cycle t (t < 2^48 - 1). */
static inline void census_line(hs_npu_l2 *l2, line_rec *e, int blk, int write, uint64_t t)
{
    const uint64_t first1 = e->w0 & CYC_MASK;
    if (!first1) {
        e->w0 = t + 1;
        e->w1 = t;
        l2->count++;
    } else {
        if (t + 1 < first1)
            e->w0 = (e->w0 & ~CYC_MASK) | (t + 1);
        if (t > (e->w1 & CYC_MASK))
            e->w1 = (e->w1 & ~CYC_MASK) | t;
    }
    const uint64_t tag = (uint64_t)(blk + 1) << CBLK_SHIFT;
    if (!write && (e->w0 & ~CYC_MASK) != tag) {
        e->w0 = (e->w0 & CYC_MASK) | tag;
        e->w1 += UINT64_C(1) << READERS_SHIFT;
    }
}

/* Timed pass: `bytes` of line e read or written by block blk; adds the
 * bytes that are a first read (HBM) to *first, the rest to *reread, and
 * for a write the bytes the line will write back to *wb (see the top of
 * the file). */
static inline void timed_line(line_rec *e, int blk, int write, uint64_t bytes, double *first, double *reread,
                              double *wb)
{
    if (!(e->w0 & TIMED_BIT))
        e->w0 = TIMED_BIT; /* the census cycles are spent: start the timed state */
    if (write) {
        const uint64_t done = (e->w0 >> WBYTES_SHIFT) & 0x3ff, room = HS_NPU_L2_LINE - done;
        const uint64_t add = bytes < room ? bytes : room;
        e->w0 = (e->w0 & ~(UINT64_C(0x3ff) << WBYTES_SHIFT)) | ((done + add) << WBYTES_SHIFT) | WRITTEN_BIT;
        *wb += (double)add;
        *reread += (double)bytes;
    } else if (!(e->w0 & WRITTEN_BIT) && (e->w0 & TBLK_MASK) != (uint64_t)blk + 1) {
        e->w0 = (e->w0 & ~TBLK_MASK) | ((uint64_t)blk + 1);
        const uint64_t readers = e->w1 >> READERS_SHIFT;
        const double f = (double)bytes / (double)(readers ? readers : 1);
        *first += f;
        *reread += (double)bytes - f;
    } else
        *reread += (double)bytes;
}

/* What a walk over an access's lines does to each. */
enum walk_mode { WALK_CENSUS, WALK_TIMED, WALK_SPAN };

/* Visits the lines of `rows` rows of `row_bytes` bytes, `ld` apart, from
 * offset `off` of region r (census, timed or span: see the callers); a
 * page's records are looked up once per run of lines in it. mode is a
 * constant at every call, so each caller gets its own loop. */
static inline __attribute__((always_inline)) hs_status walk(hs_npu_l2 *l2, hs_npu_l2_region *r, enum walk_mode mode,
                                                            int blk, int write, uint64_t t, uint64_t t_max,
                                                            uint64_t off, int64_t rows, int64_t row_bytes, int64_t ld,
                                                            double sums[3])
{
    l2_page *pg = NULL;
    uint64_t pg_first = 1, pg_last = 0; /* lines of pg: none yet */
    for (int64_t k = 0; k < rows; k++) {
        const uint64_t a = off + (uint64_t)(k * ld), end = a + (uint64_t)row_bytes;
        const uint64_t l0 = a / HS_NPU_L2_LINE, l1 = (end - 1) / HS_NPU_L2_LINE; /* inclusive */
        for (uint64_t line = l0; line <= l1; line++) {
            if (line < pg_first || line > pg_last) {
                HS_TRY(page_of(l2, r, line, &pg));
                pg_first = line / PAGE_LINES * PAGE_LINES;
                pg_last = pg_first + PAGE_LINES - 1;
            }
            line_rec *e = &pg->rec[line - pg_first];
            /* rows are ld apart: fetch the record PREFETCH rows ahead while this one waits */
            const uint64_t ahead = line + (uint64_t)(PREFETCH_ROWS * ld) / HS_NPU_L2_LINE;
            if (ahead <= pg_last)
                __builtin_prefetch(&pg->rec[ahead - pg_first], 1);
            if (mode == WALK_CENSUS) {
                census_line(l2, e, blk, write, t);
            } else if (mode == WALK_SPAN) {
                if (t + 1 < (e->w0 & CYC_MASK))
                    e->w0 = (e->w0 & ~CYC_MASK) | (t + 1);
                if (t_max > (e->w1 & CYC_MASK))
                    e->w1 = (e->w1 & ~CYC_MASK) | t_max;
            } else {
                const uint64_t lo = line == l0 ? a : line * HS_NPU_L2_LINE;
                const uint64_t hi = line == l1 ? end : (line + 1) * HS_NPU_L2_LINE;
                timed_line(e, blk, write, hi - lo, &sums[0], &sums[1], &sums[2]);
            }
        }
    }
    return HS_OK;
}

/* Accesses below this many bytes are walked even when repeated: the walk
 * is as cheap as the memo lookup. */
#define REPEAT_MIN_BYTES 4096

/* One GM access through the line table: the census records its lines;
 * the timed pass adds its first reads, re-reads and write-back bytes to
 * sums[0..2]. A read the block has already made in this pass is answered
 * by the memo (l2_repeat.c). */
hs_status hs_npu_l2_apply(hs_npu_l2 *l2, const hs_npu_l2_op *op, int census, double sums[3])
{
    hs_npu_l2_region *r = NULL;
    HS_TRY(region_of(l2, op->base, &r));
    int64_t rows = op->rows, row_bytes = op->row_bytes;
    if (op->ld == row_bytes) { /* contiguous: one range */
        row_bytes *= rows;
        rows = 1;
    }
    int repeat = 0;
    if (!op->write && rows * row_bytes >= REPEAT_MIN_BYTES)
        HS_TRY(hs_npu_l2_repeat_seen(l2, op->blk, census, op->t, op->base, op->addr, rows, row_bytes, op->ld,
                                     &repeat));
    if (repeat)
        sums[1] += (double)(rows * row_bytes);
    else if (census)
        HS_TRY(walk(l2, r, WALK_CENSUS, op->blk, op->write, op->t, op->t, op->addr - op->base, rows, row_bytes,
                    op->ld, sums));
    else
        HS_TRY(walk(l2, r, WALK_TIMED, op->blk, op->write, op->t, op->t, op->addr - op->base, rows, row_bytes,
                    op->ld, sums));
    return HS_OK;
}

hs_status hs_npu_l2_census_span(hs_npu_l2 *l2, uintptr_t base, uintptr_t addr, int64_t rows, int64_t row_bytes,
                                int64_t ld, uint64_t t_min, uint64_t t_max)
{
    hs_npu_l2_region *r = NULL;
    HS_TRY(region_of(l2, base, &r));
    return walk(l2, r, WALK_SPAN, 0, 0, t_min, t_max, addr - base, rows, row_bytes, ld, NULL);
}
