/* NPU matmul: C[M,N] = A[M,K] @ B[K,N] on the cube cores, Ascend C style.
 *
 * Tiling. C is cut into BM x BN = 128 x 256 output tiles, dealt to the
 * cube cores round-robin (block_dim = min(cube cores, tiles)). A tile
 * accumulates in L0C as two 128 x 128 fp32 halves (64 KiB each), so the
 * fixpipe of one half overlaps the next tile's mmads into the other. K is
 * walked in L0 steps of BK = 64: per step one load2d of A (128 x 64) into
 * L0A and one of B per half (64 x 128) into L0B, then one mmad per half.
 * A and B reach L1 by nd2nz copies in stages of KA and KB columns of K
 * (KB = 256; KA as large as L1 allows, up to 512), each with its own
 * ping-pong buffers.
 *
 * Double buffering: two L1 stages per operand and two L0A/L0B buffers,
 * handed between pipes by flags (free: MTE1->MTE2, CUBE->MTE1,
 * FIXPIPE->CUBE; full: MTE2->MTE1, MTE1->CUBE, CUBE->FIXPIPE), so MTE2
 * loads stage s+1 while MTE1/CUBE work on stage s and a tile costs about
 * max(MTE2, CUBE). single_buffer uses one of each: the same flags then
 * serialise the pipes and a tile costs about MTE2 + MTE1 + CUBE.
 *
 * Epilogues. A bias alone goes through the bias table (mmad_bias on the
 * first K step). With gelu, the AIC fixpipes the fp32 tile to C and hands
 * it to its two AIVs (cross-core flag); each takes half the rows in
 * 16-row chunks: copy in, + bias per row, GELU, copy out, ping-ponged.
 * Ragged M, N, K: nd2nz and load2d pad with zeros; mmad and fixpipe take
 * the true sizes.
 */
#include "core/try.h"
#include "kernels/npu/npu_kernels.h"
#include "npu_sim/isa.h"

#include <math.h>
#include <stdio.h>

#define BM 128
#define BN 256
#define HALF 128 /* columns of one L0C accumulator */
#define BK 64
#define KB 256
#define KA_MAX 512
#define EPI_ROWS 16      /* rows per vector epilogue (and zero fill) chunk */
#define SPLIT_MIN_K 512  /* smallest K part of a split tail tile */

/* Event ids on the flag pairs (ping-pong buffers use id + p). */
enum { EV_A = 0, EV_B = 2, EV_BIAS = 4 };

/* The kernel's arguments: the GEMM and its tiling. */
typedef struct mm_kernel {
    hs_npu_gemm g;
    int64_t tiles_m, tiles_n;
    int ka;   /* A stage columns of K */
    int nbuf; /* 2 with double buffering, else 1 */
    int bt;   /* bias through the bias table */
    int64_t full;  /* tiles dealt whole, round-robin: a multiple of block_dim */
    int split;     /* K parts of each remaining (tail) tile, one per block */
    int64_t kpart; /* K columns per part */
} mm_kernel;

/* Local buffers of the AIC. */
typedef struct aic_bufs {
    hs_npu_local l1a[2], l1b[2], l1bias, l0a[2], l0b[2][2], l0c[2], bt;
} aic_bufs;

/* Local buffers of one AIV (gelu epilogue). */
typedef struct aiv_bufs {
    hs_npu_local x[2], y[2], bias;
    int64_t chunk; /* chunks processed, for the ping-pong */
} aiv_bufs;

/* The smaller of a and b. */
static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Byte address of element (r, col) of a row-major GM matrix. */
static const uint8_t *gm_at(const void *base, int64_t ld, int64_t r, int64_t col, size_t es)
{
    return (const uint8_t *)base + ((size_t)r * (size_t)ld + (size_t)col) * es;
}

/* Allocations of the AIC for kernel k. */
static hs_status aic_alloc(hs_npu_core *c, const mm_kernel *k, aic_bufs *b)
{
    const hs_dtype dt = k->g.dtype;
    for (int p = 0; p < k->nbuf; p++) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_L1, dt, (int64_t)BM * k->ka, &b->l1a[p]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_L1, dt, (int64_t)BN * KB, &b->l1b[p]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_L0A, dt, (int64_t)BM * BK, &b->l0a[p]));
        for (int h = 0; h < 2; h++)
            HS_TRY(hs_npu_alloc(c, HS_BUF_L0B, dt, (int64_t)BK * HALF, &b->l0b[p][h]));
    }
    for (int h = 0; h < 2; h++)
        HS_TRY(hs_npu_alloc(c, HS_BUF_L0C, HS_FP32, (int64_t)BM * HALF, &b->l0c[h]));
    if (k->bt) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_L1, HS_FP32, BN, &b->l1bias));
        HS_TRY(hs_npu_alloc(c, HS_BUF_BT, HS_FP32, BN, &b->bt));
    }
    return HS_OK;
}

/* Sets (start) or waits (end) every "buffer free" flag once, so that the
 * first use of each buffer finds its flag and the last one is consumed. */
static void aic_free_flags(hs_npu_core *c, const mm_kernel *k, int set)
{
    hs_status (*f)(hs_npu_core *, hs_npu_pipe, hs_npu_pipe, int) = set ? hs_npu_set_flag : hs_npu_wait_flag;
    for (int p = 0; p < k->nbuf; p++) {
        f(c, HS_PIPE_MTE1, HS_PIPE_MTE2, EV_A + p);
        f(c, HS_PIPE_MTE1, HS_PIPE_MTE2, EV_B + p);
        f(c, HS_PIPE_CUBE, HS_PIPE_MTE1, p);
    }
    for (int h = 0; h < 2; h++)
        f(c, HS_PIPE_FIXPIPE, HS_PIPE_CUBE, h);
    if (k->bt) {
        f(c, HS_PIPE_MTE1, HS_PIPE_MTE2, EV_BIAS);
        f(c, HS_PIPE_CUBE, HS_PIPE_MTE1, EV_BIAS);
    }
}

/* Loads the stage of A (m0, ml rows; K columns from k0, kl of them) into
 * L1 buffer dst as NZ: A itself, or A^T when a_trans. */
static void load_a(const hs_npu_gemm *g, hs_npu_local dst, int64_t m0, int ml, int64_t k0, int kl)
{
    const size_t es = hs_dtype_size(g->dtype);
    if (g->a_trans)
        hs_npu_copy_nd2nz(dst, gm_at(g->a, g->lda, k0, m0, es), g->lda, kl, ml);
    else
        hs_npu_copy_nd2nz(dst, gm_at(g->a, g->lda, m0, k0, es), g->lda, ml, kl);
}

/* The same for B (n0, nl columns of C): B^T rows when b_trans, else B rows. */
static void load_b(const hs_npu_gemm *g, hs_npu_local dst, int64_t n0, int nl, int64_t k0, int kl)
{
    const size_t es = hs_dtype_size(g->dtype);
    if (g->b_trans)
        hs_npu_copy_nd2nz(dst, gm_at(g->b, g->ldb, n0, k0, es), g->ldb, nl, kl);
    else
        hs_npu_copy_nd2nz(dst, gm_at(g->b, g->ldb, k0, n0, es), g->ldb, kl, nl);
}

/* Rounds v up to a multiple of 16. */
static int up16(int64_t v)
{
    return (int)((v + 15) / 16 * 16);
}

/* Per-AIC state across tiles: global stage and step counters. */
typedef struct aic_run {
    int64_t sa, sb, step;
} aic_run;

/* Stages bias[n0 .. n0 + nl) into the bias table: GM -> L1 -> BT. */
static void load_bias_table(hs_npu_core *c, const mm_kernel *k, const aic_bufs *b, int64_t n0, int nl)
{
    hs_npu_wait_flag(c, HS_PIPE_MTE1, HS_PIPE_MTE2, EV_BIAS);
    hs_npu_copy_in(b->l1bias, nl, k->g.bias + n0, nl, 1, nl);
    hs_npu_set_flag(c, HS_PIPE_MTE2, HS_PIPE_MTE1, EV_BIAS);
    hs_npu_wait_flag(c, HS_PIPE_MTE2, HS_PIPE_MTE1, EV_BIAS);
    hs_npu_wait_flag(c, HS_PIPE_CUBE, HS_PIPE_MTE1, EV_BIAS);
    hs_npu_load_bias(b->bt, b->l1bias, nl);
    hs_npu_set_flag(c, HS_PIPE_MTE1, HS_PIPE_MTE2, EV_BIAS);
    hs_npu_set_flag(c, HS_PIPE_MTE1, HS_PIPE_CUBE, EV_BIAS);
    hs_npu_wait_flag(c, HS_PIPE_MTE1, HS_PIPE_CUBE, EV_BIAS);
}

/* One unit of work: K range [kb, ke) of output tile t. */
typedef struct mm_unit {
    int64_t t, kb, ke;
} mm_unit;

/* One K step (from k0) of unit u: stage loads when a stage starts, load2d
 * of A and of B per half, mmads into the halves. */
static void aic_step(hs_npu_core *c, const mm_kernel *k, const aic_bufs *b, aic_run *r, const mm_unit *u, int64_t m0,
                     int ml, int64_t n0, int nl, int64_t k0)
{
    const hs_npu_gemm *g = &k->g;
    const int kl = (int)min64(BK, u->ke - k0), halves = (nl + HALF - 1) / HALF;
    const int pa = (int)(r->sa % k->nbuf), pb = (int)(r->sb % k->nbuf), p = (int)(r->step % k->nbuf);
    const int64_t a0 = u->kb + (k0 - u->kb) / k->ka * k->ka, b0 = u->kb + (k0 - u->kb) / KB * KB;
    const int al = (int)min64(k->ka, u->ke - a0), bl = (int)min64(KB, u->ke - b0);
    if (k0 == a0) {
        hs_npu_wait_flag(c, HS_PIPE_MTE1, HS_PIPE_MTE2, EV_A + pa);
        load_a(g, b->l1a[pa], m0, ml, a0, al);
        hs_npu_set_flag(c, HS_PIPE_MTE2, HS_PIPE_MTE1, EV_A + pa);
        hs_npu_wait_flag(c, HS_PIPE_MTE2, HS_PIPE_MTE1, EV_A + pa);
    }
    if (k0 == b0) {
        hs_npu_wait_flag(c, HS_PIPE_MTE1, HS_PIPE_MTE2, EV_B + pb);
        load_b(g, b->l1b[pb], n0, nl, b0, bl);
        hs_npu_set_flag(c, HS_PIPE_MTE2, HS_PIPE_MTE1, EV_B + pb);
        hs_npu_wait_flag(c, HS_PIPE_MTE2, HS_PIPE_MTE1, EV_B + pb);
    }
    hs_npu_wait_flag(c, HS_PIPE_CUBE, HS_PIPE_MTE1, p);
    if (g->a_trans)
        hs_npu_load_l0a(b->l0a[p], b->l1a[pa], up16(al), (int)(k0 - a0), 0, ml, kl, 1);
    else
        hs_npu_load_l0a(b->l0a[p], b->l1a[pa], up16(ml), 0, (int)(k0 - a0), ml, kl, 0);
    for (int h = 0; h < halves; h++) {
        const int nh = (int)min64(HALF, nl - h * HALF);
        if (g->b_trans)
            hs_npu_load_l0b(b->l0b[p][h], b->l1b[pb], up16(nl), h * HALF, (int)(k0 - b0), kl, nh, 1);
        else
            hs_npu_load_l0b(b->l0b[p][h], b->l1b[pb], up16(bl), (int)(k0 - b0), h * HALF, kl, nh, 0);
    }
    if (k0 + kl == a0 + al) { /* last step of the A stage: its L1 buffer is free */
        hs_npu_set_flag(c, HS_PIPE_MTE1, HS_PIPE_MTE2, EV_A + pa);
        r->sa++;
    }
    if (k0 + kl == b0 + bl) {
        hs_npu_set_flag(c, HS_PIPE_MTE1, HS_PIPE_MTE2, EV_B + pb);
        r->sb++;
    }
    hs_npu_set_flag(c, HS_PIPE_MTE1, HS_PIPE_CUBE, p);
    hs_npu_wait_flag(c, HS_PIPE_MTE1, HS_PIPE_CUBE, p);
    for (int h = 0; h < halves; h++) {
        const int nh = (int)min64(HALF, nl - h * HALF);
        if (k0 > u->kb)
            hs_npu_mmad(b->l0c[h], b->l0a[p], b->l0b[p][h], ml, kl, nh, 1);
        else if (k->bt && u->kb == 0)
            hs_npu_mmad_bias(b->l0c[h], b->l0a[p], b->l0b[p][h], hs_npu_sub(b->bt, h * HALF, nh), ml, kl, nh);
        else
            hs_npu_mmad(b->l0c[h], b->l0a[p], b->l0b[p][h], ml, kl, nh, 0);
    }
    hs_npu_set_flag(c, HS_PIPE_CUBE, HS_PIPE_MTE1, p);
    r->step++;
}

/* GELU tanh approximation of the fp32 values in x into y (n elements):
 * y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
static void vec_gelu(hs_npu_local y, hs_npu_local x, int64_t n)
{
    hs_npu_vbin(HS_V_MUL, y, x, x, n);
    hs_npu_vbin(HS_V_MUL, y, y, x, n);
    hs_npu_vscalar(HS_V_MULS, y, y, 0.044715f, n);
    hs_npu_vbin(HS_V_ADD, y, y, x, n);
    hs_npu_vscalar(HS_V_MULS, y, y, 0.7978845608028654f, n);
    hs_npu_vunary(HS_V_TANH, y, y, n);
    hs_npu_vscalar(HS_V_ADDS, y, y, 1.0f, n);
    hs_npu_vbin(HS_V_MUL, y, y, x, n);
    hs_npu_vscalar(HS_V_MULS, y, y, 0.5f, n);
}

/* Allocations and "free" flags of an AIV for the gelu epilogue. */
static hs_status aiv_alloc(hs_npu_core *v, aiv_bufs *b)
{
    for (int q = 0; q < 2; q++) {
        HS_TRY(hs_npu_alloc(v, HS_BUF_UB, HS_FP32, (int64_t)EPI_ROWS * BN, &b->x[q]));
        HS_TRY(hs_npu_alloc(v, HS_BUF_UB, HS_FP32, (int64_t)EPI_ROWS * BN, &b->y[q]));
    }
    HS_TRY(hs_npu_alloc(v, HS_BUF_UB, HS_FP32, BN, &b->bias));
    b->chunk = 0;
    return HS_OK;
}

/* Sets or waits the AIV's "free" flags (x: VECTOR->MTE2, y: MTE3->VECTOR,
 * bias: VECTOR->MTE2 id 2). */
static void aiv_free_flags(hs_npu_core *v, int set)
{
    hs_status (*f)(hs_npu_core *, hs_npu_pipe, hs_npu_pipe, int) = set ? hs_npu_set_flag : hs_npu_wait_flag;
    for (int q = 0; q < 2; q++) {
        f(v, HS_PIPE_VECTOR, HS_PIPE_MTE2, q);
        f(v, HS_PIPE_MTE3, HS_PIPE_VECTOR, q);
    }
    f(v, HS_PIPE_VECTOR, HS_PIPE_MTE2, 2);
}

/* The gelu epilogue of AIV v on rows [r0, r0 + rows) of the tile at
 * (m0, n0) of width nl, after the AIC's cross-core flag. */
static void aiv_epilogue(hs_npu_core *v, const mm_kernel *k, aiv_bufs *b, int64_t row0, int rows, int64_t n0, int nl)
{
    const hs_npu_gemm *g = &k->g;
    hs_npu_cross_wait_flag(v, HS_PIPE_MTE2, 0);
    if (rows <= 0)
        return;
    if (g->bias) {
        hs_npu_wait_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE2, 2);
        hs_npu_copy_in(b->bias, nl, g->bias + n0, nl, 1, nl);
        hs_npu_set_flag(v, HS_PIPE_MTE2, HS_PIPE_VECTOR, 2);
        hs_npu_wait_flag(v, HS_PIPE_MTE2, HS_PIPE_VECTOR, 2);
    }
    for (int r = 0; r < rows; r += EPI_ROWS) {
        const int q = (int)(b->chunk++ % 2), rq = (int)min64(EPI_ROWS, rows - r);
        float *cg = (float *)g->c + (size_t)(row0 + r) * (size_t)g->ldc + n0;
        hs_npu_wait_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE2, q);
        hs_npu_copy_in(b->x[q], nl, cg, g->ldc, rq, nl);
        hs_npu_set_flag(v, HS_PIPE_MTE2, HS_PIPE_VECTOR, q);
        hs_npu_wait_flag(v, HS_PIPE_MTE2, HS_PIPE_VECTOR, q);
        for (int i = 0; g->bias && i < rq; i++) {
            const hs_npu_local row = hs_npu_sub(b->x[q], (int64_t)i * nl, nl);
            hs_npu_vbin(HS_V_ADD, row, row, b->bias, nl);
        }
        hs_npu_wait_flag(v, HS_PIPE_MTE3, HS_PIPE_VECTOR, q);
        vec_gelu(b->y[q], b->x[q], (int64_t)rq * nl);
        hs_npu_set_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE2, q);
        hs_npu_set_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE3, q);
        hs_npu_wait_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE3, q);
        hs_npu_copy_out(cg, g->ldc, b->y[q], nl, rq, nl);
        hs_npu_set_flag(v, HS_PIPE_MTE3, HS_PIPE_VECTOR, q);
    }
    if (g->bias)
        hs_npu_set_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE2, 2);
}

/* One unit on the AIC: K loop, fixpipe of each half (adding to C when
 * atomic), and the hand-over to the AIVs for the gelu epilogue. */
static void aic_unit(hs_npu_kblock *blk, const mm_kernel *k, const aic_bufs *b, aiv_bufs *vb, aic_run *r,
                     const mm_unit *u, int atomic)
{
    hs_npu_core *c = hs_npu_kblock_aic(blk);
    const hs_npu_gemm *g = &k->g;
    const int64_t m0 = u->t / k->tiles_n * BM, n0 = u->t % k->tiles_n * BN;
    const int ml = (int)min64(BM, g->m - m0), nl = (int)min64(BN, g->n - n0), halves = (nl + HALF - 1) / HALF;
    const int biased = k->bt && u->kb == 0;
    if (biased)
        load_bias_table(c, k, b, n0, nl);
    for (int h = 0; h < halves; h++)
        hs_npu_wait_flag(c, HS_PIPE_FIXPIPE, HS_PIPE_CUBE, h);
    for (int64_t k0 = u->kb; k0 < u->ke; k0 += BK)
        aic_step(c, k, b, r, u, m0, ml, n0, nl, k0);
    if (biased)
        hs_npu_set_flag(c, HS_PIPE_CUBE, HS_PIPE_MTE1, EV_BIAS);
    hs_npu_set_atomic_add(c, atomic);
    const size_t es = hs_dtype_size(g->c_dtype);
    for (int h = 0; h < halves; h++) {
        const int nh = (int)min64(HALF, nl - h * HALF);
        hs_npu_set_flag(c, HS_PIPE_CUBE, HS_PIPE_FIXPIPE, h);
        hs_npu_wait_flag(c, HS_PIPE_CUBE, HS_PIPE_FIXPIPE, h);
        hs_npu_fixpipe((uint8_t *)g->c + ((size_t)m0 * (size_t)g->ldc + (size_t)(n0 + h * HALF)) * es, g->ldc,
                       g->c_dtype, b->l0c[h], ml, nh);
        hs_npu_set_flag(c, HS_PIPE_FIXPIPE, HS_PIPE_CUBE, h);
    }
    if (!g->gelu)
        return;
    const int naiv = hs_npu_kblock_aiv_count(blk), per = (ml + naiv - 1) / naiv;
    for (int i = 0; i < naiv; i++) {
        hs_npu_core *v = hs_npu_kblock_aiv(blk, i);
        hs_npu_cross_set_flag(c, HS_PIPE_FIXPIPE, v, 0);
        aiv_epilogue(v, k, &vb[i], m0 + (int64_t)i * per, (int)min64(per, ml - (int64_t)i * per), n0, nl);
    }
}

/* The kernel: this block's tiles t = idx, idx + dim, ... */
static hs_status mm_block(hs_npu_kblock *blk, void *arg)
{
    const mm_kernel *k = arg;
    hs_npu_core *c = hs_npu_kblock_aic(blk);
    aic_bufs b;
    aiv_bufs vb[2];
    HS_TRY(aic_alloc(c, k, &b));
    const int naiv = k->g.gelu ? hs_npu_kblock_aiv_count(blk) : 0;
    for (int i = 0; i < naiv; i++) {
        HS_TRY(aiv_alloc(hs_npu_kblock_aiv(blk, i), &vb[i]));
        aiv_free_flags(hs_npu_kblock_aiv(blk, i), 1);
    }
    aic_free_flags(c, k, 1);
    aic_run r = {0, 0, 0};
    const int idx = hs_npu_kblock_idx(blk);
    for (int64_t t = idx; t < k->full; t += hs_npu_kblock_dim(blk))
        aic_unit(blk, k, &b, vb, &r, &(mm_unit){t, 0, k->g.k}, k->g.accumulate);
    if (idx < (k->tiles_m * k->tiles_n - k->full) * k->split) { /* a K part of a tail tile */
        const int64_t kb = idx % k->split * k->kpart;
        aic_unit(blk, k, &b, vb, &r, &(mm_unit){k->full + idx / k->split, kb, min64(k->g.k, kb + k->kpart)},
                 k->split > 1 || k->g.accumulate);
    }
    aic_free_flags(c, k, 0);
    for (int i = 0; i < naiv; i++)
        aiv_free_flags(hs_npu_kblock_aiv(blk, i), 0);
    return hs_npu_core_status(c);
}

/* The zero fill of the tail tiles before their K parts add into C: tail
 * tile j's rows in chunks of EPI_ROWS, dealt round-robin to AIVs. */
static hs_status fill_block(hs_npu_kblock *blk, void *arg)
{
    const mm_kernel *k = arg;
    hs_npu_core *v = hs_npu_kblock_aiv(blk, 0);
    const hs_npu_gemm *g = &k->g;
    hs_npu_local z;
    HS_TRY(hs_npu_alloc(v, HS_BUF_UB, HS_FP32, (int64_t)EPI_ROWS * BN, &z));
    hs_npu_vdup(z, 0.0f, (int64_t)EPI_ROWS * BN);
    hs_npu_set_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE3, 0);
    hs_npu_wait_flag(v, HS_PIPE_VECTOR, HS_PIPE_MTE3, 0);
    const int64_t units = (k->tiles_m * k->tiles_n - k->full) * (BM / EPI_ROWS);
    for (int64_t u = hs_npu_kblock_idx(blk); u < units; u += hs_npu_kblock_dim(blk)) {
        const int64_t t = k->full + u / (BM / EPI_ROWS), m0 = t / k->tiles_n * BM + u % (BM / EPI_ROWS) * EPI_ROWS;
        const int64_t n0 = t % k->tiles_n * BN;
        if (m0 < g->m)
            hs_npu_copy_out((float *)g->c + (size_t)m0 * (size_t)g->ldc + n0, g->ldc, z, BN, min64(EPI_ROWS, g->m - m0),
                            min64(BN, g->n - n0));
    }
    return hs_npu_core_status(v);
}

/* The timing-cache key of kernel k (its GEMM and tiling). */
static void gemm_key(hs_npu_key *key, const mm_kernel *k)
{
    const hs_npu_gemm *g = &k->g;
    const int64_t es = (int64_t)hs_dtype_size(g->dtype);
    hs_npu_key_init(key);
    hs_npu_key_gm(key, (hs_npu_operand){g->a, es * (g->a_trans ? (g->k - 1) * g->lda + g->m : (g->m - 1) * g->lda + g->k)});
    hs_npu_key_gm(key, (hs_npu_operand){g->b, es * (g->b_trans ? (g->n - 1) * g->ldb + g->k : (g->k - 1) * g->ldb + g->n)});
    hs_npu_key_gm(key, (hs_npu_operand){g->c, (int64_t)hs_dtype_size(g->c_dtype) * ((g->m - 1) * g->ldc + g->n)});
    hs_npu_key_gm(key, (hs_npu_operand){g->bias, 4 * g->n});
    const int64_t w[] = {g->lda, g->a_trans, g->ldb, g->b_trans, g->ldc, g->c_dtype, g->dtype, g->m, g->n, g->k,
                         g->gelu, g->accumulate, g->single_buffer, k->ka, k->nbuf, k->bt, k->full, k->split,
                         k->kpart};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        hs_npu_key_int(key, w[i]);
    key->independent = k->split == 1; /* split-K parts of a tile add into it from several blocks */
}

/* Launches fill_block over the tail tiles ("<name>_zero"). */
static hs_status zero_tail(hs_npu *d, hs_npu_stream *s, const char *name, const mm_kernel *k)
{
    char fill[64];
    snprintf(fill, sizeof fill, "%s_zero", name);
    const int64_t units = (k->tiles_m * k->tiles_n - k->full) * (BM / EPI_ROWS);
    const int blocks = (int)min64(units, hs_npu_max_blocks(d, HS_NPU_LAUNCH_VECTOR));
    hs_npu_key key;
    gemm_key(&key, k);
    return hs_npu_launch_cached(d, s, fill, HS_NPU_LAUNCH_VECTOR, blocks, fill_block, (void *)k, &key);
}

/* Largest A stage (multiple of BK, at most KA_MAX) that fits L1 next to
 * the B stages and the bias staging: 2 * BM * ka + 2 * BN * KB elements. */
static int a_stage(const hs_npu_spec *s, const hs_npu_gemm *g, int nbuf)
{
    const int64_t es = (int64_t)hs_dtype_size(g->dtype);
    const int64_t left = s->l1_bytes - nbuf * (int64_t)BN * KB * es - (g->bias && !g->gelu ? BN * 4 + 512 : 0);
    int64_t ka = left / (nbuf * (int64_t)BM * es) / BK * BK;
    if (ka > KA_MAX)
        ka = KA_MAX;
    return ka < BK ? BK : (int)ka;
}

/* Checks g, plans its tiling (stages, tail split), zero-fills split tail tiles and launches the kernel. */
hs_status hs_npu_gemm_run(hs_npu *d, hs_npu_stream *s, const char *name, const hs_npu_gemm *g)
{
    if (!d)
        return hs_error(HS_ERR_DEVICE, "%s: no NPU", name);
    if (g->dtype != HS_FP16 && g->dtype != HS_BF16)
        return hs_error(HS_ERR_DTYPE, "%s: the cube takes fp16 or bf16 operands, not %s (cast fp32 first)", name,
                        hs_dtype_name(g->dtype));
    if (g->c_dtype != HS_FP32 && g->c_dtype != HS_FP16 && g->c_dtype != HS_BF16)
        return hs_error(HS_ERR_DTYPE, "%s: output %s (fp32, fp16 or bf16)", name, hs_dtype_name(g->c_dtype));
    if ((g->gelu || g->accumulate) && g->c_dtype != HS_FP32)
        return hs_error(HS_ERR_DTYPE, "%s: the gelu epilogue and accumulation need an fp32 output", name);
    if (g->accumulate && (g->gelu || g->bias))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: accumulate takes no bias or gelu", name);
    if (g->m <= 0 || g->n <= 0 || g->k <= 0 || g->m > INT32_MAX || g->n > INT32_MAX || g->k > INT32_MAX)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: M=%lld N=%lld K=%lld", name, (long long)g->m, (long long)g->n,
                        (long long)g->k);
    mm_kernel k = {.g = *g, .nbuf = g->single_buffer ? 1 : 2, .bt = g->bias && !g->gelu, .split = 1, .kpart = g->k};
    k.tiles_m = (g->m + BM - 1) / BM;
    k.tiles_n = (g->n + BN - 1) / BN;
    k.ka = a_stage(hs_npu_spec_of(d), g, k.nbuf);
    const int64_t tiles = k.tiles_m * k.tiles_n, dim = min64(tiles, hs_npu_spec_of(d)->cube_cores);
    k.full = tiles / dim * dim;
    const int64_t tail = tiles - k.full, parts = tail ? min64(dim / tail, g->k / SPLIT_MIN_K) : 1;
    if (parts >= 2 && g->c_dtype == HS_FP32 && !g->gelu) {
        k.kpart = (g->k + parts - 1) / parts;
        k.kpart = (k.kpart + BK - 1) / BK * BK;
        k.split = (int)((g->k + k.kpart - 1) / k.kpart);
        if (!g->accumulate)
            HS_TRY(zero_tail(d, s, name, &k));
    }
    hs_npu_key key;
    gemm_key(&key, &k);
    return hs_npu_launch_cached(d, s, name, HS_NPU_LAUNCH_CUBE, (int)dim, mm_block, &k, &key);
}

/* out = inp @ w^T (+ bias, through the bias table). */
hs_status hs_npu_matmul_forward(const hs_device *dev, float *out, const void *inp, const void *w, const float *bias, int64_t N, int64_t C,
                                int64_t OC, hs_dtype dt)
{
    const hs_npu_gemm g = {.a = inp, .lda = C, .b = w, .ldb = C, .b_trans = 1, .c = out, .ldc = OC,
                           .c_dtype = HS_FP32, .dtype = dt, .m = N, .n = OC, .k = C, .bias = bias};
    return hs_npu_gemm_run(dev->npu, dev->stream, "matmul", &g);
}

/* out = gelu(inp @ w^T + bias), epilogue on the vector cores. */
hs_status hs_npu_matmul_gelu_forward(const hs_device *dev, float *out, const void *inp, const void *w, const float *bias, int64_t N,
                                     int64_t C, int64_t OC, hs_dtype dt)
{
    const hs_npu_gemm g = {.a = inp, .lda = C, .b = w, .ldb = C, .b_trans = 1, .c = out, .ldc = OC,
                           .c_dtype = HS_FP32, .dtype = dt, .m = N, .n = OC, .k = C, .bias = bias, .gelu = 1};
    return hs_npu_gemm_run(dev->npu, dev->stream, "matmul_gelu", &g);
}
