/* Fused softmax + cross-entropy on the NPU's vector cores, forward and
 * backward, written against the instruction API (npu_sim/isa.h).
 *
 * Forward, one pass over the logits with an online max/sum (as the CPU
 * body), per row, for each vocabulary chunk c:
 *   m' = max(m, max_c x);  s = s e^(m - m') + sum_c e^(x - m');  m = m'
 *   lse = m + log s;  loss = lse - x[target]   (0 when target = -1)
 * No probability buffer exists: e^(x - m') lives in one UB row chunk. The
 * chunk sums run in pairwise order (halving adds down to one 64-lane
 * repeat, then one reduction). x[target] is one extra 4-byte MTE2 copy per
 * row after the row's chunks (a re-read: the same cost for every target),
 * its address computed by the scalar unit from the target read out of UB
 * (get_value; target -1 reads x[0] and the loss is then masked to 0 by a
 * vector compare and select).
 * Backward, WRITTEN (dlogits may alias logits):
 *   dlogits[v] = scale * e^(x[v] - lse),  scale = dloss (0 when target = -1)
 *   dlogits[target] -= scale  (an MTE3 atomic add of -scale after the row's
 *                              chunks are stored; MTE3 runs in order)
 *
 * Vocab-parallel shards (the logits are the vocabulary's columns
 * [v0, v0 + V)): the forward writes x[target] where the target is one of
 * the columns and 0 elsewhere (two compares and selects on target - v0)
 * instead of the loss; the backward takes the combined lse and adds the
 * -scale fix-up only where the target is one of its columns.
 *
 * Tiling. Rows are split over the blocks of a VECTOR launch. A row that
 * fits UB is processed in tiles of R whole rows; a longer vocabulary in
 * chunks of W (R = 1). Tiles ping-pong between two buffer sets with
 * MTE2 -> VECTOR -> MTE3 flags per set and MTE3 (or VECTOR) -> MTE2 before
 * a set is refilled, so loads, compute and stores overlap. Per-row values
 * (the running max, the row's lse and scale) reach the scalar unit through
 * VECTOR -> SCALAR flags and return as scalar operands; lse and the losses
 * gather in UB and are stored every STASH rows.
 */
#include "core/try.h"
#include "kernels/npu/npu_kernels.h"
#include "kernels/npu/stash.h"
#include "kernels/npu/pingpong.h"
#include "npu_sim/isa.h"

#include <math.h>

#define ROWS_MAX 256 /* rows per tile */
#define STASH 1024   /* per-row results gathered before a store */
#define SLACK 1024   /* UB bytes left for alignment */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t round8(int64_t n) { return (n + 7) / 8 * 8; }

typedef struct ce_args {
    float *losses, *lse_out, *dlogits; /* losses: x[target] for a shard's forward */
    const float *logits, *lse;
    const int32_t *targets;
    float dloss;
    int64_t N, V;
    int64_t v0; /* the logits are the vocabulary's columns [v0, v0 + V) */
    int shard;  /* forward: write x[target] (0 when in another shard) instead of the loss */
    int64_t K, W, ld, R; /* chunks per row, chunk width, UB row stride, rows per tile */
} ce_args;

/* Whole rows when `tile` buffers per set of R x ld and `row` row buffers
 * fit with R >= 1, else chunks of W. */
static void plan(ce_args *a, int64_t ub, int tile, int row, int64_t fixed)
{
    const int64_t avail = (ub - fixed - SLACK) / 4, ld = round8(a->V);
    if ((2 * tile + row) * ld <= avail) {
        a->K = 1;
        a->W = a->V;
        a->ld = ld;
        a->R = min64((avail - row * ld) / (2 * tile * ld), ROWS_MAX);
    } else {
        a->W = avail / (2 * tile + row) / 64 * 64;
        if (a->W < 64)
            a->W = 64; /* a UB this small fails in hs_npu_alloc with the sizes named */
        a->K = (a->V + a->W - 1) / a->W;
        a->ld = a->W;
        a->R = 1;
    }
}

/* Per-group buffers (targets, x[target], lse, fix-ups) alternate between
 * two sets by the parity gp of the row group, apart from the chunk
 * ping-pong (a group may span many chunks): flag id 4 + gp frees a set for
 * MTE2 once the group is done with it. */
static void group_begin(hs_npu_core *c, int64_t g, hs_npu_pipe last)
{
    if (g >= 2)
        hs_npu_wait_flag(c, last, HS_PIPE_MTE2, 4 + (int)(g & 1));
}

static void group_end(hs_npu_core *c, int64_t g, hs_npu_pipe last)
{
    hs_npu_set_flag(c, last, HS_PIPE_MTE2, 4 + (int)(g & 1));
}

static void group_drain(hs_npu_core *c, int64_t groups, hs_npu_pipe last)
{
    for (int64_t g = groups < 2 ? 0 : groups - 2; g < groups; g++)
        hs_npu_wait_flag(c, last, HS_PIPE_MTE2, 4 + (int)(g & 1));
}

/* Loads the targets of rows [r, r + rows) into tg and reads them on the
 * scalar unit: t[j] the target, at[j] its column (t - v0) clamped to
 * [0, V). */
static void read_targets(hs_npu_core *c, hs_npu_local tg, const ce_args *a, int64_t r, int64_t rows, int gp,
                         float *t, int64_t *at)
{
    hs_npu_copy_in(tg, rows, a->targets + r, rows, 1, rows);
    hs_npu_set_flag(c, HS_PIPE_MTE2, HS_PIPE_SCALAR, 4 + gp);
    hs_npu_wait_flag(c, HS_PIPE_MTE2, HS_PIPE_SCALAR, 4 + gp);
    for (int64_t j = 0; j < rows; j++) {
        t[j] = hs_npu_get_value(tg, j);
        const int64_t col = (int64_t)t[j] - a->v0;
        at[j] = col < 0 ? 0 : col >= a->V ? a->V - 1 : col;
    }
}

/* dst[0] = sum of src[0..n) in pairwise order, folding src in place
 * (upper part onto lower, cut at multiples of 8) down to one repeat. */
static void row_sum(hs_npu_local dst, hs_npu_local src, int64_t n)
{
    while (n > 64) {
        const int64_t m = round8((n + 1) / 2);
        hs_npu_vbin(HS_V_ADD, src, src, hs_npu_sub(src, m, n - m), n - m);
        n = m;
    }
    hs_npu_vreduce_sum(dst, src, n);
}

/* dst = src where the row's target (tf: the targets as floats) is one of
 * this call's columns [v0, v0 + V), else 0. */
static void mask_to_shard(hs_npu_local dst, hs_npu_local src, hs_npu_local tf, hs_npu_local mask, hs_npu_local zero,
                          const ce_args *a, int64_t rows)
{
    hs_npu_vscalar(HS_V_ADDS, tf, tf, (float)-a->v0, rows);
    hs_npu_vcmps(HS_CMP_GE, mask, tf, 0.0f, rows);
    hs_npu_vselect(dst, mask, src, zero, rows);
    hs_npu_vcmps(HS_CMP_LT, mask, tf, (float)a->V, rows);
    hs_npu_vselect(dst, mask, dst, zero, rows);
}

/* ------------------------------------------------------------- forward */

/* The vector buffers of the forward. */
typedef struct fwd_bufs {
    hs_npu_local x[2], tg[2], xt[2];
    hs_npu_local e, m, s, cm, cs, mn, tf, zero, sl, sn;
    hs_npu_local mask;
} fwd_bufs;

/* Online max/sum update of rows [0, rows) with chunk x (width wk). */
static void fwd_chunk(hs_npu_core *c, fwd_bufs *u, hs_npu_local x, const ce_args *a, int64_t rows, int64_t wk)
{
    float mx[ROWS_MAX];
    for (int64_t j = 0; j < rows; j++)
        hs_npu_vreduce_max(hs_npu_sub(u->cm, j, 1), hs_npu_sub(x, j * a->ld, wk), wk);
    hs_npu_vbin(HS_V_MAX, u->mn, u->m, u->cm, rows); /* m' */
    stash_read_rows(c, u->mn, rows, mx);
    for (int64_t j = 0; j < rows; j++) {
        hs_npu_vscalar(HS_V_ADDS, u->e, hs_npu_sub(x, j * a->ld, wk), -mx[j], wk);
        hs_npu_vunary(HS_V_EXP, u->e, u->e, wk);
        row_sum(hs_npu_sub(u->cs, j, 1), u->e, wk);
    }
    hs_npu_vbin(HS_V_SUB, u->m, u->m, u->mn, rows); /* s = s e^(m - m') + sum */
    hs_npu_vunary(HS_V_EXP, u->m, u->m, rows);
    hs_npu_vbin(HS_V_MUL, u->s, u->s, u->m, rows);
    hs_npu_vbin(HS_V_ADD, u->s, u->s, u->cs, rows);
    hs_npu_vunary(HS_V_COPY, u->m, u->mn, rows);
}

static hs_status fwd_block(hs_npu_kblock *blk, void *p)
{
    const ce_args *a = p;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    const int bi = hs_npu_kblock_idx(blk), nb = hs_npu_kblock_dim(blk);
    const int64_t r0 = a->N * bi / nb, r1 = a->N * (bi + 1) / nb;
    fwd_bufs u;
    for (int b = 0; b < 2; b++) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->R * a->ld, &u.x[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_INT32, ROWS_MAX, &u.tg[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, ROWS_MAX, &u.xt[b]));
    }
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->ld, &u.e));
    hs_npu_local *small[] = {&u.m, &u.s, &u.cm, &u.cs, &u.mn, &u.tf, &u.zero};
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, ROWS_MAX, small[i]));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_INT8, ROWS_MAX, &u.mask));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, STASH, &u.sl));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, STASH, &u.sn));
    stash lse = stash_make(u.sl, a->lse_out, STASH), loss = stash_make(u.sn, a->losses, STASH);
    pingpong pp = {c, 0, {-1, -1}};
    hs_npu_vdup(u.zero, 0.0f, ROWS_MAX);
    float t[ROWS_MAX];
    int64_t at[ROWS_MAX], g = 0;
    for (int64_t r = r0; r < r1; r += a->R, g++) {
        const int64_t rows = min64(a->R, r1 - r);
        const int gp = (int)(g & 1);
        hs_npu_local vl = stash_take(&lse, r, rows), vn = stash_take(&loss, r, rows);
        /* the targets, for the scalar unit (the addresses of x[target]) */
        group_begin(c, g, HS_PIPE_VECTOR);
        read_targets(c, u.tg[gp], a, r, rows, gp, t, at);
        hs_npu_set_flag(c, HS_PIPE_SCALAR, HS_PIPE_MTE2, 4 + gp);
        hs_npu_vdup(u.m, -INFINITY, rows);
        hs_npu_vdup(u.s, 0.0f, rows);
        for (int64_t k = 0; k < a->K; k++) {
            const int64_t c0 = k * a->W, wk = min64(a->W, a->V - c0);
            const int b = pp_begin(&pp);
            hs_npu_copy_in(u.x[b], a->ld, a->logits + r * a->V + c0, a->V, rows, wk);
            pp_pass(&pp, b, HS_PIPE_MTE2, HS_PIPE_VECTOR);
            fwd_chunk(c, &u, u.x[b], a, rows, wk);
            pp_end(&pp, b, HS_PIPE_VECTOR);
        }
        /* x[target] gathered after the rows' chunks, so that it is a re-read
         * (the same cost for any target, and in estimate mode) */
        hs_npu_wait_flag(c, HS_PIPE_SCALAR, HS_PIPE_MTE2, 4 + gp);
        for (int64_t j = 0; j < rows; j++)
            hs_npu_copy_in(hs_npu_sub(u.xt[gp], j, 1), 1, a->logits + (r + j) * a->V + at[j], 1, 1, 1);
        hs_npu_set_flag(c, HS_PIPE_MTE2, HS_PIPE_VECTOR, 4 + gp);
        hs_npu_wait_flag(c, HS_PIPE_MTE2, HS_PIPE_VECTOR, 4 + gp);
        /* lse = m + log s;  loss = (lse - x[target]) masked to 0 where target < 0;
         * a shard: x[target] masked to 0 where the target is another shard's */
        hs_npu_vunary(HS_V_LN, u.s, u.s, rows);
        hs_npu_vbin(HS_V_ADD, vl, u.m, u.s, rows);
        hs_npu_vcast(u.tf, u.tg[gp], rows);
        if (a->shard) {
            mask_to_shard(vn, u.xt[gp], u.tf, u.mask, u.zero, a, rows);
        } else {
            hs_npu_vbin(HS_V_SUB, vn, vl, u.xt[gp], rows);
            hs_npu_vcmps(HS_CMP_GE, u.mask, u.tf, 0.0f, rows);
            hs_npu_vselect(vn, u.mask, vn, u.zero, rows);
        }
        group_end(c, g, HS_PIPE_VECTOR);
    }
    stash_flush(&lse);
    stash_flush(&loss);
    pp_drain(&pp);
    group_drain(c, g, HS_PIPE_VECTOR);
    return hs_npu_core_status(c);
}

/* The timing-cache key of a launch with args a: the targets' values
 * never change the cost (see the top of the file). */
static void ce_key(hs_npu_key *key, const ce_args *a)
{
    const int64_t row = 4 * a->N, all = row * a->V;
    const hs_npu_operand ops[] = {{a->losses, row}, {a->lse_out, row}, {a->dlogits, all},
                                  {a->logits, all}, {a->lse, row},     {a->targets, row}};
    const int64_t dims[] = {a->N, a->V, a->shard};
    HS_NPU_KEY_OF(key, ops, dims);
    key->independent = 1;
}

hs_status hs_npu_cross_entropy_forward(const hs_device *dev, float *out, float *lse, const float *logits, const int32_t *targets, int64_t N,
                                       int64_t V, int64_t v0, int shard)
{
    hs_npu *d = dev->npu;
    ce_args a = {.losses = out, .lse_out = lse, .logits = logits, .targets = targets, .N = N, .V = V, .v0 = v0,
                 .shard = shard};
    /* tile: x per set; row: e; fixed: targets and x[target] per set, 7 row
     * values, the mask, 2 stashes */
    plan(&a, hs_npu_spec_of(d)->ub_bytes, 1, 1, (4 * ROWS_MAX + 7 * ROWS_MAX + ROWS_MAX / 4 + 2 * STASH) * 4);
    const int nb = (int)min64(N, hs_npu_max_blocks(d, HS_NPU_LAUNCH_VECTOR));
    hs_npu_key key;
    ce_key(&key, &a);
    return hs_npu_launch_cached(d, dev->stream, "cross_entropy_fwd", HS_NPU_LAUNCH_VECTOR, nb, fwd_block,
                                &a, &key);
}

/* ------------------------------------------------------------ backward */

static hs_status bwd_block(hs_npu_kblock *blk, void *p)
{
    const ce_args *a = p;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    const int bi = hs_npu_kblock_idx(blk), nb = hs_npu_kblock_dim(blk);
    const int64_t r0 = a->N * bi / nb, r1 = a->N * (bi + 1) / nb;
    hs_npu_local x[2], tg[2], lv[2], fix[2], tf, mask, neg, zero;
    for (int b = 0; b < 2; b++) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->R * a->ld, &x[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_INT32, ROWS_MAX, &tg[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, ROWS_MAX, &lv[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, ROWS_MAX, &fix[b]));
    }
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, ROWS_MAX, &tf));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_INT8, ROWS_MAX, &mask));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, ROWS_MAX, &neg));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, ROWS_MAX, &zero));
    hs_npu_vdup(neg, -a->dloss, ROWS_MAX);
    hs_npu_vdup(zero, 0.0f, ROWS_MAX);
    pingpong pp = {c, 0, {-1, -1}};
    float t[ROWS_MAX], l[ROWS_MAX], sc[ROWS_MAX];
    int64_t at[ROWS_MAX], g = 0;
    for (int64_t r = r0; r < r1; r += a->R, g++) {
        const int64_t rows = min64(a->R, r1 - r);
        const int gp = (int)(g & 1);
        /* targets and lse, read by the scalar unit; scale = dloss, or 0 for target -1 */
        group_begin(c, g, HS_PIPE_MTE3);
        hs_npu_copy_in(lv[gp], rows, a->lse + r, rows, 1, rows);
        read_targets(c, tg[gp], a, r, rows, gp, t, at);
        for (int64_t j = 0; j < rows; j++) {
            l[j] = hs_npu_get_value(lv[gp], j);
            sc[j] = t[j] >= 0 ? a->dloss : 0.0f;
        }
        hs_npu_scalar(c, rows);
        hs_npu_set_flag(c, HS_PIPE_SCALAR, HS_PIPE_VECTOR, 2);
        hs_npu_wait_flag(c, HS_PIPE_SCALAR, HS_PIPE_VECTOR, 2);
        for (int64_t k = 0; k < a->K; k++) {
            const int64_t c0 = k * a->W, wk = min64(a->W, a->V - c0);
            const int b = pp_begin(&pp);
            hs_npu_copy_in(x[b], a->ld, a->logits + r * a->V + c0, a->V, rows, wk);
            pp_pass(&pp, b, HS_PIPE_MTE2, HS_PIPE_VECTOR);
            for (int64_t j = 0; j < rows; j++) {
                hs_npu_local xj = hs_npu_sub(x[b], j * a->ld, wk);
                hs_npu_vscalar(HS_V_ADDS, xj, xj, -l[j], wk);
                hs_npu_vunary(HS_V_EXP, xj, xj, wk);
                hs_npu_vscalar(HS_V_MULS, xj, xj, sc[j], wk);
            }
            if (k == a->K - 1) { /* fix[j] = -scale_j: -dloss where target >= 0 (a shard: where
                                  * the target is one of its columns), else 0 */
                hs_npu_vcast(tf, tg[gp], rows);
                if (a->shard) {
                    mask_to_shard(fix[gp], neg, tf, mask, zero, a, rows);
                } else {
                    hs_npu_vcmps(HS_CMP_GE, mask, tf, 0.0f, rows);
                    hs_npu_vselect(fix[gp], mask, neg, zero, rows);
                }
            }
            pp_pass(&pp, b, HS_PIPE_VECTOR, HS_PIPE_MTE3);
            hs_npu_copy_out(a->dlogits + r * a->V + c0, a->V, x[b], a->ld, rows, wk);
            pp_end(&pp, b, HS_PIPE_MTE3);
        }
        /* dlogits[target] -= scale, after the row's stores (MTE3 runs in
         * order); a data-dependent address, so a scatter for the cost */
        hs_npu_set_atomic_add(c, 1);
        for (int64_t j = 0; j < rows; j++)
            hs_npu_copy_out_scatter(a->dlogits + (r + j) * a->V + at[j], 1, hs_npu_sub(fix[gp], j, 1), 1, 1, 1);
        hs_npu_set_atomic_add(c, 0);
        group_end(c, g, HS_PIPE_MTE3);
    }
    pp_drain(&pp);
    group_drain(c, g, HS_PIPE_MTE3);
    return hs_npu_core_status(c);
}

hs_status hs_npu_cross_entropy_backward(const hs_device *dev, float *dlogits, const float *logits, const float *lse, const int32_t *targets,
                                        int64_t N, int64_t V, int64_t v0, int shard, float dloss)
{
    hs_npu *d = dev->npu;
    ce_args a = {.dlogits = dlogits, .logits = logits, .lse = lse, .targets = targets, .dloss = dloss, .N = N, .V = V,
                 .v0 = v0, .shard = shard};
    /* tile: x per set; fixed: targets, lse, fix-ups per set, 3 row values, the mask */
    plan(&a, hs_npu_spec_of(d)->ub_bytes, 1, 0, (6 * ROWS_MAX + 3 * ROWS_MAX + ROWS_MAX / 4) * 4);
    const int nb = (int)min64(N, hs_npu_max_blocks(d, HS_NPU_LAUNCH_VECTOR));
    hs_npu_key key;
    ce_key(&key, &a);
    return hs_npu_launch_cached(d, dev->stream, "cross_entropy_bwd", HS_NPU_LAUNCH_VECTOR, nb, bwd_block,
                                &a, &key);
}
