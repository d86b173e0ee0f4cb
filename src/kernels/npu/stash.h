/* Per-row values of the row-wise vector kernels (norms, cross-entropy).
 * A UB stash of per-row results (a norm's mean and rstd, cross-entropy's
 * losses and lse): a kernel takes the slots of the rows it has computed,
 * and the stash is stored to GM with one MTE3 copy each time it fills and
 * at the end of the block, instead of one tiny store per tile. Event id 3
 * of VECTOR <-> MTE3 is the stash's. And the hand-over of per-row values
 * from the vector unit to the scalar unit (event id 2 of VECTOR <->
 * SCALAR), which turns them into scalar operands. */
#ifndef HS_KERNELS_NPU_STASH_H
#define HS_KERNELS_NPU_STASH_H

#include "npu_sim/isa.h"

typedef struct stash {
    hs_npu_local buf; /* cap floats in UB */
    float *gm;        /* where row r's value goes: gm[r]; NULL: not wanted (nothing stored) */
    int64_t cap, base, n;
} stash;

/* A stash of buf's cap slots for gm. */
static inline stash stash_make(hs_npu_local buf, float *gm, int64_t cap)
{
    return (stash){buf, gm, cap, 0, 0};
}

/* Stores the gathered rows to gm (after the VECTOR writes to them) and empties the stash. */
static inline void stash_flush(stash *s)
{
    if (s->gm && s->n) {
        hs_npu_core *c = s->buf.core;
        hs_npu_set_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE3, 3);
        hs_npu_wait_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE3, 3);
        hs_npu_copy_out(s->gm + s->base, s->n, s->buf, s->n, 1, s->n);
        hs_npu_set_flag(c, HS_PIPE_MTE3, HS_PIPE_VECTOR, 3);
        hs_npu_wait_flag(c, HS_PIPE_MTE3, HS_PIPE_VECTOR, 3);
    }
    s->n = 0;
}

/* The stash slots of rows [row, row + rows) (rows <= cap; the rows taken
 * between two flushes are consecutive). */
static inline hs_npu_local stash_take(stash *s, int64_t row, int64_t rows)
{
    if (s->n + rows > s->cap)
        stash_flush(s);
    if (s->n == 0)
        s->base = row;
    hs_npu_local v = hs_npu_sub(s->buf, s->n, rows);
    s->n += rows;
    return v;
}

/* SCALAR reads vals[0..n) of v after VECTOR wrote them; VECTOR waits for
 * the reads before going on (the values become its scalar operands). */
static inline void stash_read_rows(hs_npu_core *c, hs_npu_local v, int64_t n, float *vals)
{
    hs_npu_set_flag(c, HS_PIPE_VECTOR, HS_PIPE_SCALAR, 2);
    hs_npu_wait_flag(c, HS_PIPE_VECTOR, HS_PIPE_SCALAR, 2);
    for (int64_t j = 0; j < n; j++)
        vals[j] = hs_npu_get_value(v, j);
    hs_npu_set_flag(c, HS_PIPE_SCALAR, HS_PIPE_VECTOR, 2);
    hs_npu_wait_flag(c, HS_PIPE_SCALAR, HS_PIPE_VECTOR, 2);
}

#endif
