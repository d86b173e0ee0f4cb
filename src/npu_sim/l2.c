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
 *       at HBM rate (all of it is written back, see the stats).
 * So a kernel whose footprint fits L2 reads each line from HBM once in all,
 * and every re-read, by any block, comes at the L2 rate.
 *
 * Lines live in an open-addressing hash table keyed by line number; each
 * launch bumps a generation instead of clearing it.
 */
#include "npu_sim/launch.h"

#include <stdlib.h>

struct hs_npu_l2_line {
    uint64_t line;
    uint64_t first, last; /* census cycles of the first and last access */
    uint32_t gen;
    uint32_t readers;    /* distinct blocks reading it (census) */
    int32_t census_last; /* last block seen reading it in the census */
    int32_t run_last;    /* last block seen reading it in the timed pass */
    int32_t written;     /* written in the timed pass so far */
};

/* Slot of `line` in l2 (a free one when absent). */
static struct hs_npu_l2_line *slot(hs_npu_l2 *l2, uint64_t line)
{
    uint64_t mask = l2->size - 1, i = (line * 0x9E3779B97F4A7C15ULL) >> 20 & mask;
    for (;;) {
        struct hs_npu_l2_line *e = &l2->lines[i];
        if (e->gen != l2->gen || e->line == line)
            return e;
        i = (i + 1) & mask;
    }
}

/* Doubles the table, keeping the current generation's lines. */
static hs_status grow(hs_npu_l2 *l2)
{
    hs_npu_l2 bigger = *l2;
    bigger.size = l2->size ? 2 * l2->size : 4096;
    bigger.lines = calloc(bigger.size, sizeof *bigger.lines);
    if (!bigger.lines)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "NPU L2 model: %llu lines", (unsigned long long)bigger.size);
    for (uint64_t i = 0; i < l2->size; i++)
        if (l2->lines[i].gen == l2->gen)
            *slot(&bigger, l2->lines[i].line) = l2->lines[i];
    free(l2->lines);
    *l2 = bigger;
    return HS_OK;
}

/* An empty table for a new launch (generation 0 marks never-used slots). */
hs_status hs_npu_l2_begin(hs_npu_l2 *l2)
{
    l2->count = 0;
    l2->t_max = 0;
    l2->fit = 1.0;
    if (++l2->gen == 0) { /* wrapped: clear stale generations for real */
        free(l2->lines);
        l2->lines = NULL;
        l2->size = 0;
        l2->gen = 1;
    }
    return l2->lines ? HS_OK : grow(l2);
}

/* Time buckets of the live-footprint profile. */
#define L2_BUCKETS 4096

/* fit = min(1, l2_bytes / peak live footprint): a difference array of
 * live lines over L2_BUCKETS slices of [0, last census cycle]; a line
 * counts in every slice its [first, last] touches (so the peak errs high
 * by at most one slice's turnover). */
hs_status hs_npu_l2_end_census(hs_npu_l2 *l2, int64_t l2_bytes)
{
    l2->fit = 1.0;
    if ((double)l2->count * HS_NPU_L2_LINE <= (double)l2_bytes)
        return HS_OK;
    int64_t *live = calloc(L2_BUCKETS + 1, sizeof *live);
    if (!live)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "NPU L2 model: %d buckets", L2_BUCKETS);
    const double scale = (double)L2_BUCKETS / ((double)l2->t_max + 1.0);
    for (uint64_t i = 0; i < l2->size; i++) {
        const struct hs_npu_l2_line *e = &l2->lines[i];
        if (e->gen != l2->gen || e->last == e->first)
            continue;
        live[(int64_t)((double)e->first * scale)]++;
        live[(int64_t)((double)e->last * scale) + 1]--;
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

/* Releases the line table. */
void hs_npu_l2_free(hs_npu_l2 *l2)
{
    free(l2->lines);
    *l2 = (hs_npu_l2){0};
}

/* The entry of `line`, inserted when new. */
static hs_status find(hs_npu_l2 *l2, uint64_t line, struct hs_npu_l2_line **out)
{
    struct hs_npu_l2_line *e = slot(l2, line);
    if (e->gen != l2->gen) {
        if (2 * (l2->count + 1) > l2->size) {
            hs_status st = grow(l2);
            if (st != HS_OK)
                return st;
            e = slot(l2, line);
        }
        *e = (struct hs_npu_l2_line){line, UINT64_MAX, 0, l2->gen, 0, -1, -1, 0};
        l2->count++;
    }
    *out = e;
    return HS_OK;
}

/* Accounts `bytes` of one line for block blk at cycle t (see the top of
 * the file). */
static void account(hs_npu_l2 *l2, struct hs_npu_l2_line *e, int blk, int census, int write, uint64_t t, double bytes,
                    hs_npu_gm_split *out)
{
    if (census) {
        e->first = t < e->first ? t : e->first;
        e->last = t > e->last ? t : e->last;
        l2->t_max = t > l2->t_max ? t : l2->t_max;
        if (!write && e->census_last != blk) {
            e->census_last = blk;
            e->readers++;
        }
        return;
    }
    double reread = bytes;
    if (write)
        e->written = 1;
    else if (!e->written && e->run_last != blk) {
        e->run_last = blk;
        const double first = bytes / (e->readers ? e->readers : 1);
        out->hbm += first;
        reread -= first;
    }
    out->l2 += reread * l2->fit;
    out->hbm += reread * (1.0 - l2->fit);
}

/* Splits one GM access into HBM and L2 bytes, line by line (census: records the lines). */
hs_status hs_npu_l2_access(hs_npu_l2 *l2, int blk, int census, int write, uint64_t t, uintptr_t addr, int64_t rows,
                           int64_t row_bytes, int64_t ld, hs_npu_gm_split *out)
{
    *out = (hs_npu_gm_split){0, 0};
    if (ld == row_bytes) { /* contiguous: one range */
        row_bytes *= rows;
        rows = 1;
    }
    for (int64_t r = 0; r < rows; r++) {
        const uint64_t a = (uint64_t)addr + (uint64_t)(r * ld), end = a + (uint64_t)row_bytes;
        for (uint64_t line = a / HS_NPU_L2_LINE; line * HS_NPU_L2_LINE < end; line++) {
            const uint64_t lo = line * HS_NPU_L2_LINE > a ? line * HS_NPU_L2_LINE : a;
            const uint64_t hi = (line + 1) * HS_NPU_L2_LINE < end ? (line + 1) * HS_NPU_L2_LINE : end;
            struct hs_npu_l2_line *e;
            hs_status st = find(l2, line, &e);
            if (st != HS_OK)
                return st;
            account(l2, e, blk, census, write, t, (double)(hi - lo), out);
        }
    }
    return HS_OK;
}
