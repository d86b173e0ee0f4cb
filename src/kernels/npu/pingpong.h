/* Double buffering for the NPU's streaming vector kernels: two buffer sets
 * that alternate tile by tile, handed from pipe to pipe with flags (flag
 * id = set index), the way Ascend C's TQue with depth 2 does it:
 *
 *     pingpong p = {core, 0, {-1, -1}};
 *     b = pp_begin(&p);            wait until set b is free again
 *     copy_in(set b) ...           MTE2
 *     pp_pass(&p, b, MTE2, VECTOR) compute may read it
 *     vector ops ...               VECTOR
 *     pp_pass(&p, b, VECTOR, MTE3) store may read it
 *     copy_out(set b) ...          MTE3
 *     pp_end(&p, b, MTE3)          set b is free once MTE3 is done
 *     ...
 *     pp_drain(&p)                 consume the frees still queued
 *
 * With two sets, the load of tile t+1 overlaps the compute of tile t and
 * the store of tile t-1. */
#ifndef HS_KERNELS_NPU_PINGPONG_H
#define HS_KERNELS_NPU_PINGPONG_H

#include "npu_sim/isa.h"

typedef struct pingpong {
    hs_npu_core *c;
    int64_t step;
    int rel[2]; /* the pipe that frees set b, -1 while it is free */
} pingpong;

/* Waits until the next set is free; returns its index. */
static inline int pp_begin(pingpong *p)
{
    const int b = (int)(p->step & 1);
    if (p->rel[b] >= 0)
        hs_npu_wait_flag(p->c, (hs_npu_pipe)p->rel[b], HS_PIPE_MTE2, b);
    return b;
}

/* Hands set b from pipe src to pipe dst. */
static inline void pp_pass(pingpong *p, int b, hs_npu_pipe src, hs_npu_pipe dst)
{
    hs_npu_set_flag(p->c, src, dst, b);
    hs_npu_wait_flag(p->c, src, dst, b);
}

/* Set b is loaded: VECTOR may read it. */
static inline void pp_loaded(pingpong *p, int b) { pp_pass(p, b, HS_PIPE_MTE2, HS_PIPE_VECTOR); }

/* Set b is computed: MTE3 may store it. */
static inline void pp_computed(pingpong *p, int b) { pp_pass(p, b, HS_PIPE_VECTOR, HS_PIPE_MTE3); }

/* Set b is done once pipe `last` (VECTOR or MTE3) is. */
static inline void pp_end(pingpong *p, int b, hs_npu_pipe last)
{
    hs_npu_set_flag(p->c, last, HS_PIPE_MTE2, b);
    p->rel[b] = (int)last;
    p->step++;
}

/* Consumes the pending frees at the end of a block. */
static inline void pp_drain(pingpong *p)
{
    for (int b = 0; b < 2; b++)
        if (p->rel[b] >= 0)
            hs_npu_wait_flag(p->c, (hs_npu_pipe)p->rel[b], HS_PIPE_MTE2, b);
}

/* Elements [*lo, *hi) of n for block blk of its launch, cut at multiples
 * of 64 (whole 256-byte repeats of fp32). */
static inline void pp_block_range(hs_npu_kblock *blk, int64_t n, int64_t *lo, int64_t *hi)
{
    const int64_t units = (n + 63) / 64;
    const int b = hs_npu_kblock_idx(blk), nb = hs_npu_kblock_dim(blk);
    *lo = units * b / nb * 64;
    *hi = units * (b + 1) / nb * 64;
    if (*hi > n)
        *hi = n;
}

#endif
