/* Token + position embedding on the NPU's vector cores, forward and
 * backward, written against the instruction API (npu_sim/isa.h):
 *   forward   out[b,t,:] = wte[tokens[b,t],:] (+ wpe[t,:])
 *   backward  dwte[tokens[b,t],:] += dout[b,t,:];  dwpe[t,:] += sum_b dout[b,t,:]
 *
 * Token ids are data: each tile's ids come into UB (MTE2), the scalar unit
 * reads them (get_value, after an MTE2 -> SCALAR flag) and computes the
 * addresses of the rows to gather or scatter, which the copies then use
 * (after a SCALAR -> MTE2/MTE3 flag). In estimate mode get_value reads 0,
 * so every gather reads row 0 of wte; the gathers are therefore charged as
 * first reads from HBM whatever the rows (hs_npu_copy_in_gather) and the
 * backward's scatter-adds as writes absorbed by L2 and written back in full
 * (hs_npu_copy_out_scatter), so both directions cost the same for any
 * tokens and in either mode, and their timings cache.
 *
 * Vocab-parallel shards (wte holds the vocabulary's rows [v0, v0 + V)):
 * a token of another shard gathers a clamped row that one vector multiply
 * by 0 (a scalar operand from the id) turns into a zero row; in the
 * backward its dout row is multiplied by 0 before its scatter-add. The
 * instruction stream is the same for any ids.
 *
 * Forward. Tokens are split over the blocks of a VECTOR launch; a tile is
 * R consecutive tokens of one sequence by W columns: one MTE2 copy per
 * token from wte, one 2-D copy of the R consecutive wpe rows, one vector
 * add, one 2-D store. Tiles ping-pong between two buffer sets with
 * MTE2 -> VECTOR -> MTE3 -> MTE2 flags, so gathers, adds and stores overlap.
 *
 * Backward, deterministic without sorting: the columns of C are split over
 * the blocks (in units of 8 floats), and each block walks every token in
 * order, loading dout tiles of R tokens by its columns and adding each
 * token's row into dwte[token] (and the tile's rows into the consecutive
 * dwpe rows) with MTE3 atomic adds. MTE3 runs in program order and no two
 * blocks touch the same column, so every element sums its contributions
 * in token order, exactly as the CPU body does (bit-identical results).
 * The cost is one MTE3 copy per token per block (lat_mte3 each).
 */
#include "core/try.h"
#include "kernels/npu/npu_kernels.h"
#include "npu_sim/isa.h"

#define ROWS_MAX 256 /* tokens per tile */
#define SLACK 1024   /* UB bytes left for alignment */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

typedef struct emb_args {
    float *out, *dwte, *dwpe;
    const float *wte, *wpe, *dout;
    const int32_t *tokens;
    int64_t N, T, C, V;
    int64_t v0; /* wte holds the vocabulary's rows [v0, v0 + V) */
    int shard;  /* tokens outside them give zero rows (forward) and no adds (backward) */
    int64_t W, ld, R; /* tile: R tokens of W columns, UB row stride ld */
} emb_args;

/* Tiles for `set` buffers of R x ld floats per ping-pong set (plus R token
 * ids) over `cols` columns. */
static void plan(emb_args *a, int64_t ub, int64_t cols, int set)
{
    const int64_t avail = (ub - SLACK) / 4 / 2; /* floats per set */
    a->W = min64(cols, (avail - ROWS_MAX) / set / 64 * 64);
    if (a->W < 8)
        a->W = 8; /* a UB this small fails in hs_npu_alloc with the sizes named */
    a->ld = (a->W + 7) / 8 * 8;
    a->R = min64((avail - ROWS_MAX) / set / a->ld, ROWS_MAX);
    if (a->R < 1)
        a->R = 1;
}

/* Loads the ids of tokens [k, k + rows) into tk and reads them on the
 * scalar unit: ids[r] the row of wte (id - v0, clamped to [0, V) as an
 * address; the entry point has checked the ids) and in[r] 1 when the id is
 * one of wte's rows, else 0 (a scalar operand of the shard's masking); the
 * copies that use them wait on SCALAR -> `user`. */
static void read_ids(hs_npu_core *c, hs_npu_local tk, const emb_args *a, int64_t k, int64_t rows, int b,
                     hs_npu_pipe user, int64_t *ids, float *in)
{
    hs_npu_copy_in(tk, rows, a->tokens + k, rows, 1, rows);
    hs_npu_set_flag(c, HS_PIPE_MTE2, HS_PIPE_SCALAR, b);
    hs_npu_wait_flag(c, HS_PIPE_MTE2, HS_PIPE_SCALAR, b);
    for (int64_t r = 0; r < rows; r++) {
        const int64_t id = (int64_t)hs_npu_get_value(tk, r) - a->v0;
        ids[r] = id < 0 ? 0 : id >= a->V ? a->V - 1 : id;
        in[r] = id >= 0 && id < a->V ? 1.0f : 0.0f;
    }
    hs_npu_set_flag(c, HS_PIPE_SCALAR, user, b);
    hs_npu_wait_flag(c, HS_PIPE_SCALAR, user, b);
}

/* The tokens [k, k + rows) of the next tile: at most R, one sequence. */
static int64_t tile_rows(const emb_args *a, int64_t k, int64_t k1)
{
    return min64(min64(a->R, k1 - k), a->T - k % a->T);
}

/* The timing-cache key of a launch with args a (the ids never change the
 * cost, see the top of the file). */
static void emb_key(hs_npu_key *key, const emb_args *a)
{
    const int64_t act = 4 * a->N * a->C, tab = 4 * a->V * a->C, pos = 4 * a->T * a->C;
    const hs_npu_operand ops[] = {{a->out, act}, {a->dwte, tab}, {a->dwpe, pos},       {a->wte, tab},
                                  {a->wpe, pos}, {a->dout, act}, {a->tokens, 4 * a->N}};
    const int64_t dims[] = {a->N, a->T, a->C, a->V, a->shard};
    HS_NPU_KEY_OF(key, ops, dims);
    key->independent = 1;
}

/* ------------------------------------------------------------- forward */

static hs_status fwd_block(hs_npu_kblock *blk, void *p)
{
    const emb_args *a = p;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    const int bi = hs_npu_kblock_idx(blk), nb = hs_npu_kblock_dim(blk);
    const int64_t k0 = a->N * bi / nb, k1 = a->N * (bi + 1) / nb;
    hs_npu_local e[2], pe[2], tk[2];
    for (int b = 0; b < 2; b++) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->R * a->ld, &e[b]));
        if (a->wpe)
            HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->R * a->ld, &pe[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_INT32, a->R, &tk[b]));
    }
    int64_t ids[ROWS_MAX], step = 0;
    float in[ROWS_MAX];
    for (int64_t c0 = 0; c0 < a->C; c0 += a->W) {
        const int64_t wk = min64(a->W, a->C - c0);
        for (int64_t k = k0; k < k1; step++) {
            const int64_t rows = tile_rows(a, k, k1);
            const int b = (int)(step & 1);
            if (step >= 2) /* set b's previous tile is stored */
                hs_npu_wait_flag(c, HS_PIPE_MTE3, HS_PIPE_MTE2, b);
            read_ids(c, tk[b], a, k, rows, b, HS_PIPE_MTE2, ids, in);
            for (int64_t r = 0; r < rows; r++)
                hs_npu_copy_in_gather(hs_npu_sub(e[b], r * a->ld, wk), wk, a->wte + ids[r] * a->C + c0, wk, 1, wk);
            if (a->wpe)
                hs_npu_copy_in(pe[b], a->ld, a->wpe + (k % a->T) * a->C + c0, a->C, rows, wk);
            hs_npu_set_flag(c, HS_PIPE_MTE2, HS_PIPE_VECTOR, b);
            hs_npu_wait_flag(c, HS_PIPE_MTE2, HS_PIPE_VECTOR, b);
            for (int64_t r = 0; a->shard && r < rows; r++) /* another shard's token: a zero row */
                hs_npu_vscalar(HS_V_MULS, hs_npu_sub(e[b], r * a->ld, wk), hs_npu_sub(e[b], r * a->ld, wk), in[r], wk);
            if (a->wpe)
                hs_npu_vbin(HS_V_ADD, e[b], e[b], pe[b], (rows - 1) * a->ld + wk);
            hs_npu_set_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE3, b);
            hs_npu_wait_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE3, b);
            hs_npu_copy_out(a->out + k * a->C + c0, a->C, e[b], a->ld, rows, wk);
            hs_npu_set_flag(c, HS_PIPE_MTE3, HS_PIPE_MTE2, b);
            k += rows;
        }
    }
    for (int64_t s = step < 2 ? 0 : step - 2; s < step; s++)
        hs_npu_wait_flag(c, HS_PIPE_MTE3, HS_PIPE_MTE2, (int)(s & 1));
    return hs_npu_core_status(c);
}

hs_status hs_npu_embedding_forward(const hs_device *dev, float *out, const int32_t *tokens, const float *wte, const float *wpe, int64_t B,
                                   int64_t T, int64_t C, int64_t V, int64_t v0, int shard)
{
    hs_npu *d = dev->npu;
    emb_args a = {.out = out, .wte = wte, .wpe = wpe, .tokens = tokens, .N = B * T, .T = T, .C = C, .V = V,
                  .v0 = v0, .shard = shard};
    plan(&a, hs_npu_spec_of(d)->ub_bytes, C, wpe ? 2 : 1);
    const int nb = (int)min64(a.N, hs_npu_max_blocks(d, HS_NPU_LAUNCH_VECTOR));
    hs_npu_key key;
    emb_key(&key, &a);
    return hs_npu_launch_cached(d, dev->stream, "embedding_fwd", HS_NPU_LAUNCH_VECTOR, nb, fwd_block, &a,
                                &key);
}

/* ------------------------------------------------------------ backward */

static hs_status bwd_block(hs_npu_kblock *blk, void *p)
{
    const emb_args *a = p;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    const int bi = hs_npu_kblock_idx(blk), nb = hs_npu_kblock_dim(blk), units = (int)((a->C + 7) / 8);
    const int64_t cbeg = 8 * ((int64_t)units * bi / nb), cend = min64(8 * ((int64_t)units * (bi + 1) / nb), a->C);
    hs_npu_local g[2], tk[2];
    for (int b = 0; b < 2; b++) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->R * a->ld, &g[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_INT32, a->R, &tk[b]));
    }
    int64_t ids[ROWS_MAX], step = 0;
    float in[ROWS_MAX];
    hs_npu_set_atomic_add(c, 1);
    for (int64_t c0 = cbeg; c0 < cend; c0 += a->W) {
        const int64_t wk = min64(a->W, cend - c0);
        for (int64_t k = 0; k < a->N; step++) {
            const int64_t rows = tile_rows(a, k, a->N);
            const int b = (int)(step & 1);
            if (step >= 2) /* set b's previous adds are done */
                hs_npu_wait_flag(c, HS_PIPE_MTE3, HS_PIPE_MTE2, b);
            if (a->dwte)
                read_ids(c, tk[b], a, k, rows, b, HS_PIPE_MTE3, ids, in);
            hs_npu_copy_in(g[b], a->ld, a->dout + k * a->C + c0, a->C, rows, wk);
            hs_npu_set_flag(c, HS_PIPE_MTE2, HS_PIPE_MTE3, b);
            hs_npu_wait_flag(c, HS_PIPE_MTE2, HS_PIPE_MTE3, b);
            if (a->dwpe)
                hs_npu_copy_out(a->dwpe + (k % a->T) * a->C + c0, a->C, g[b], a->ld, rows, wk);
            if (a->shard && a->dwte) { /* another shard's token adds 0 */
                hs_npu_set_flag(c, HS_PIPE_MTE3, HS_PIPE_VECTOR, b);
                hs_npu_wait_flag(c, HS_PIPE_MTE3, HS_PIPE_VECTOR, b);
                for (int64_t r = 0; r < rows; r++)
                    hs_npu_vscalar(HS_V_MULS, hs_npu_sub(g[b], r * a->ld, wk), hs_npu_sub(g[b], r * a->ld, wk), in[r],
                                   wk);
                hs_npu_set_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE3, b);
                hs_npu_wait_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE3, b);
            }
            for (int64_t r = 0; a->dwte && r < rows; r++)
                hs_npu_copy_out_scatter(a->dwte + ids[r] * a->C + c0, wk, hs_npu_sub(g[b], r * a->ld, wk), wk, 1, wk);
            hs_npu_set_flag(c, HS_PIPE_MTE3, HS_PIPE_MTE2, b);
            k += rows;
        }
    }
    hs_npu_set_atomic_add(c, 0);
    for (int64_t s = step < 2 ? 0 : step - 2; s < step; s++)
        hs_npu_wait_flag(c, HS_PIPE_MTE3, HS_PIPE_MTE2, (int)(s & 1));
    return hs_npu_core_status(c);
}

hs_status hs_npu_embedding_backward(const hs_device *dev, float *dwte, float *dwpe, const float *dout, const int32_t *tokens, int64_t B,
                                    int64_t T, int64_t C, int64_t V, int64_t v0, int shard)
{
    hs_npu *d = dev->npu;
    if (!dwte && !dwpe)
        return HS_OK;
    emb_args a = {.dwte = dwte, .dwpe = dwpe, .dout = dout, .tokens = tokens, .N = B * T, .T = T, .C = C, .V = V,
                  .v0 = v0, .shard = shard};
    const int64_t units = (C + 7) / 8;
    const int nb = (int)min64(units, hs_npu_max_blocks(d, HS_NPU_LAUNCH_VECTOR));
    plan(&a, hs_npu_spec_of(d)->ub_bytes, 8 * ((units + nb - 1) / nb), 1);
    hs_npu_key key;
    emb_key(&key, &a);
    return hs_npu_launch_cached(d, dev->stream, "embedding_bwd", HS_NPU_LAUNCH_VECTOR, nb, bwd_block, &a,
                                &key);
}
