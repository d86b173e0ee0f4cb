/* LayerNorm and RMSNorm on the NPU's vector cores (AIV), forward and
 * backward, written against the instruction API (npu_sim/isa.h).
 *
 * Tiling. Rows are split evenly over the blocks of a VECTOR launch. A row
 * that fits UB next to the kernel's other buffers is processed in tiles of
 * R whole rows (one MTE2 copy per tensor per tile); a wider row is cut
 * into K chunks of W columns and read once per pass. The passes are the
 * CPU's: RMSNorm forward sums x^2, then normalises; LayerNorm forward sums
 * x (mean), then (x - mean)^2 (variance, two-pass as on the CPU), then
 * normalises; the backwards sum dxhat and dxhat * xhat, then update. With
 * whole rows every pass runs on the tile already in UB; with chunks each
 * pass reads the row again (from L2 in the model when it fits there). UB
 * rows are padded to 8 floats (32 B), as the vector unit wants.
 *
 * Pipelining. Tiles ping-pong between two buffer sets: MTE2 fills set b
 * while VECTOR works on set 1-b and MTE3 drains it. Flags, per set b:
 * MTE2 -> VECTOR (tile loaded), VECTOR -> MTE3 (tile computed), and MTE3
 * (or VECTOR for a tile that is not stored) -> MTE2 (set free again).
 * Per-row statistics are summed on the vector unit in pairwise order (the
 * upper half of the row added onto the lower half until one 64-lane repeat
 * is left, then one vreduce_sum: fp32 error ~log2(C) ulp, not the ~C ulp of
 * one long running sum) and read by the scalar unit (get_value, after a
 * VECTOR -> SCALAR flag) as the scalar operands of the per-row vector ops;
 * saved mean/rstd gather in a UB stash stored every STASH rows.
 *
 * Parameter gradients are deterministic: each block sums its rows, in
 * order, into its own partial row of a [blocks, C] GM buffer (from a UB
 * accumulator when rows fit, else by atomic adds onto that partial row,
 * which no other block touches), and a second launch (colsum) adds the
 * partials into dw / db in block order, each of its blocks owning a slice
 * of columns. No result depends on how blocks are scheduled.
 */
#include "core/try.h"
#include "kernels/npu/npu_kernels.h"
#include "kernels/npu/stash.h"
#include "kernels/npu/pingpong.h"
#include "npu_sim/isa.h"

#define ROWS_MAX 256 /* rows per tile */
#define STASH 1024   /* per-row values a block gathers before storing them */
#define SLACK 1024   /* UB bytes left for alignment of the small buffers */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t round8(int64_t n) { return (n + 7) / 8 * 8; }

/* Elements [lo, hi) of n that block b of nb owns. */
static void split(int64_t n, int b, int nb, int64_t *lo, int64_t *hi)
{
    *lo = n * b / nb;
    *hi = n * (b + 1) / nb;
}

/* ------------------------------------------------------------ geometry */

/* How a block walks its rows of C floats. */
typedef struct geom {
    int64_t N, C;
    int64_t K;  /* chunks per row */
    int64_t W;  /* chunk width: C when K == 1 */
    int64_t ld; /* UB row stride: W rounded up to 8 floats */
    int64_t R;  /* rows per tile: 1 when K > 1 */
    int64_t T;  /* floats of a tile buffer: R * ld */
} geom;

/* Splits ub bytes among `tile` buffers per ping-pong set (T floats each),
 * buffers of one row chunk (ld floats: row1 of them with whole rows, rowk
 * with chunks) and `fixed` other bytes: whole rows when 2 tile + row1 rows
 * fit, else chunks of W columns. */
static geom plan(int64_t N, int64_t C, int64_t ub, int tile, int row1, int rowk, int64_t fixed)
{
    geom g = {.N = N, .C = C};
    const int64_t avail = (ub - fixed - SLACK) / 4, ld = round8(C);
    if ((2 * tile + row1) * ld <= avail) {
        g.K = 1;
        g.W = C;
        g.ld = ld;
        g.R = min64((avail - row1 * ld) / (2 * tile * ld), ROWS_MAX);
    } else {
        g.W = avail / (2 * tile + rowk) / 64 * 64;
        if (g.W < 64)
            g.W = 64; /* a UB this small fails in hs_npu_alloc with the sizes named */
        g.K = (C + g.W - 1) / g.W;
        g.ld = g.W;
        g.R = 1;
    }
    g.T = g.R * g.ld;
    return g;
}

/* Set b is loaded: VECTOR (and SCALAR when scalar) may read it. */
static void pp_loaded_for(pingpong *p, int b, int scalar)
{
    pp_loaded(p, b);
    if (scalar)
        pp_pass(p, b, HS_PIPE_MTE2, HS_PIPE_SCALAR);
}

/* dst[0] = sum of src[0..n) in pairwise order: the upper part is added
 * onto the lower one (into tmp, which may be src itself; tmp holds at
 * least n/2 + 8 floats) until at most 64 values are left, which one
 * reduction sums. Halves are cut at multiples of 8 floats (32 B). */
static void row_sum(hs_npu_local dst, hs_npu_local src, hs_npu_local tmp, int64_t n)
{
    hs_npu_local cur = src;
    while (n > 64) {
        const int64_t m = round8((n + 1) / 2), k = n - m; /* cur[m, n) onto cur[0, k); cur[k, m) carried */
        hs_npu_vbin(HS_V_ADD, tmp, cur, hs_npu_sub(cur, m, k), k);
        if (m > k && (cur.alloc != tmp.alloc || cur.offset != tmp.offset))
            hs_npu_vunary(HS_V_COPY, hs_npu_sub(tmp, k, m - k), hs_npu_sub(cur, k, m - k), m - k);
        cur = tmp;
        n = m;
    }
    hs_npu_vreduce_sum(dst, cur, n);
}

/* ------------------------------------------------------------- forward */

typedef struct fwd_args {
    float *out, *mean, *rstd;
    const float *inp, *w, *b;
    float eps;
    int ln; /* 1: LayerNorm, 0: RMSNorm */
    geom g;
} fwd_args;

/* One statistics pass over chunk k (width wk) of `rows` rows of x:
 * part = sum_c f(x) per row, added into acc (acc = part when k == 0), with
 * f(x) = x (LN mean), (x - mu)^2 (LN variance) or x^2 (RMS). */
static void fwd_stats(hs_npu_local x, hs_npu_local tmp, hs_npu_local acc, hs_npu_local part, const geom *g,
                      int64_t rows, int64_t wk, int64_t k, int square, const float *mu)
{
    hs_npu_local dst = k == 0 ? acc : part;
    for (int64_t j = 0; j < rows; j++) {
        hs_npu_local xj = hs_npu_sub(x, j * g->ld, wk), src = xj;
        if (mu) {
            hs_npu_vscalar(HS_V_ADDS, tmp, xj, -mu[j], wk);
            src = tmp;
        }
        if (square) {
            hs_npu_vbin(HS_V_MUL, tmp, src, src, wk);
            src = tmp;
        }
        row_sum(hs_npu_sub(dst, j, 1), src, tmp, wk);
    }
    if (k > 0)
        hs_npu_vbin(HS_V_ADD, acc, acc, part, rows);
}

/* Normalises chunk k of the tile in place:
 * LN: x = ((x - mu) * rs) * w + b;  RMS: x = (x * rs) * w. */
static void fwd_normalise(hs_npu_local x, hs_npu_local w, hs_npu_local b, const geom *g, int64_t rows, int64_t wk,
                          const float *mu, const float *rs)
{
    for (int64_t j = 0; j < rows; j++) {
        hs_npu_local xj = hs_npu_sub(x, j * g->ld, wk);
        if (mu)
            hs_npu_vscalar(HS_V_ADDS, xj, xj, -mu[j], wk);
        hs_npu_vscalar(HS_V_MULS, xj, xj, rs[j], wk);
        hs_npu_vbin(HS_V_MUL, xj, xj, w, wk);
        if (mu)
            hs_npu_vbin(HS_V_ADD, xj, xj, b, wk);
    }
}

/* LN:  pass 0: mean = sum x / C;  pass 1: rstd = 1/sqrt(sum (x - mean)^2 / C + eps);
 *      pass 2: out = (x - mean) * rstd * w + b
 * RMS: pass 0: rstd = 1/sqrt(sum x^2 / C + eps);  pass 1: out = x * rstd * w */
static hs_status fwd_block(hs_npu_kblock *blk, void *p)
{
    const fwd_args *a = p;
    const geom *g = &a->g;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    int64_t r0, r1;
    split(g->N, hs_npu_kblock_idx(blk), hs_npu_kblock_dim(blk), &r0, &r1);
    hs_npu_local x[2], wv[2], bv[2], tmp, acc, part, cnt, smean, srstd;
    for (int b = 0; b < 2; b++) { /* w and b chunks per set only when rows are chunked */
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, g->T, &x[b]));
        if (b == 0 || g->K > 1)
            HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, g->ld, &wv[b]));
        if (a->ln && (b == 0 || g->K > 1))
            HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, g->ld, &bv[b]));
    }
    if (!a->ln)
        bv[0] = wv[0];
    if (g->K == 1) {
        wv[1] = wv[0];
        bv[1] = bv[0];
    }
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, g->ld, &tmp));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, ROWS_MAX, &acc));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, ROWS_MAX, &part));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, ROWS_MAX, &cnt));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, STASH, &smean));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, STASH, &srstd));
    pingpong pp = {c, 0, {-1, -1}};
    stash sm = stash_make(smean, a->mean, STASH), sr = stash_make(srstd, a->rstd, STASH);
    hs_npu_vdup(cnt, (float)g->C, ROWS_MAX);
    if (g->K == 1) { /* whole rows: w and b stay in UB for the whole block */
        hs_npu_copy_in(wv[0], g->ld, a->w, g->C, 1, g->C);
        if (a->ln)
            hs_npu_copy_in(bv[0], g->ld, a->b, g->C, 1, g->C);
    }
    const int npass = a->ln ? 3 : 2;
    float mu[ROWS_MAX], rs[ROWS_MAX];
    for (int64_t r = r0; r < r1; r += g->R) {
        const int64_t rows = min64(g->R, r1 - r);
        hs_npu_local vmean = a->ln ? stash_take(&sm, r, rows) : smean, vrstd = stash_take(&sr, r, rows);
        for (int pass = 0; pass < npass; pass++) {
            const int last = pass == npass - 1;
            int b = (int)(pp.step & 1);
            for (int64_t k = 0; k < g->K; k++) {
                const int64_t c0 = k * g->W, wk = min64(g->W, g->C - c0);
                if (g->K > 1 || pass == 0) {
                    b = pp_begin(&pp);
                    hs_npu_copy_in(x[b], g->ld, a->inp + r * g->C + c0, g->C, rows, wk);
                    if (g->K > 1 && last) {
                        hs_npu_copy_in(wv[b], g->ld, a->w + c0, g->C, 1, wk);
                        if (a->ln)
                            hs_npu_copy_in(bv[b], g->ld, a->b + c0, g->C, 1, wk);
                    }
                    pp_loaded_for(&pp, b, 0);
                }
                const int s = g->K > 1 ? b : 0;
                if (last)
                    fwd_normalise(x[b], wv[s], bv[s], g, rows, wk, a->ln ? mu : NULL, rs);
                else
                    fwd_stats(x[b], tmp, acc, part, g, rows, wk, k, !a->ln || pass == 1,
                              a->ln && pass == 1 ? mu : NULL);
                if (last) {
                    pp_computed(&pp, b);
                    hs_npu_copy_out(a->out + r * g->C + c0, g->C, x[b], g->ld, rows, wk);
                    pp_end(&pp, b, HS_PIPE_MTE3);
                } else if (g->K > 1) {
                    pp_end(&pp, b, HS_PIPE_VECTOR);
                }
            }
            if (last)
                continue;
            if (a->ln && pass == 0) { /* mean = sum / C */
                hs_npu_vbin(HS_V_DIV, vmean, acc, cnt, rows);
                stash_read_rows(c, vmean, rows, mu);
            } else { /* rstd = 1 / sqrt(sum / C + eps) */
                hs_npu_vbin(HS_V_DIV, vrstd, acc, cnt, rows);
                hs_npu_vscalar(HS_V_ADDS, vrstd, vrstd, a->eps, rows);
                hs_npu_vunary(HS_V_RSQRT, vrstd, vrstd, rows);
                stash_read_rows(c, vrstd, rows, rs);
            }
        }
    }
    stash_flush(&sm);
    stash_flush(&sr);
    pp_drain(&pp);
    return hs_npu_core_status(c);
}

static hs_status norm_forward(const hs_device *dev, const char *name, float *out, float *mean, float *rstd, const float *inp,
                              const float *w, const float *b, float eps, int64_t N, int64_t C)
{
    hs_npu *d = dev->npu;
    const int ln = b != NULL;
    fwd_args a = {out, mean, rstd, inp, w, b, eps, ln, {0}};
    /* tile: x; rows: w, b (LN; per set when chunked), tmp; fixed: acc, part, cnt, 2 stashes */
    a.g = plan(N, C, hs_npu_spec_of(d)->ub_bytes, 1, ln ? 3 : 2, ln ? 5 : 3, (3 * ROWS_MAX + 2 * STASH) * 4);
    const int nb = (int)min64(N, hs_npu_max_blocks(d, HS_NPU_LAUNCH_VECTOR));
    const hs_npu_operand ops[] = {{out, 4 * N * C}, {mean, 4 * N}, {rstd, 4 * N}, {inp, 4 * N * C}, {w, 4 * C}, {b, 4 * C}};
    const int64_t dims[] = {N, C};
    hs_npu_key key;
    HS_NPU_KEY_OF(&key, ops, dims);
    key.independent = 1;
    return hs_npu_launch_cached(d, dev->stream, name, HS_NPU_LAUNCH_VECTOR, nb, fwd_block, &a, &key);
}

hs_status hs_npu_layernorm_forward(const hs_device *dev, float *out, float *mean, float *rstd, const float *inp, const float *w,
                                   const float *b, float eps, int64_t N, int64_t C)
{
    return norm_forward(dev, "layernorm_fwd", out, mean, rstd, inp, w, b, eps, N, C);
}

hs_status hs_npu_rmsnorm_forward(const hs_device *dev, float *out, float *rstd, const float *inp, const float *w, float eps, int64_t N,
                                 int64_t C)
{
    return norm_forward(dev, "rmsnorm_fwd", out, NULL, rstd, inp, w, NULL, eps, N, C);
}

/* ------------------------------------------------------------ backward */

typedef struct bwd_args {
    float *dinp, *pw, *pb; /* pw, pb: partial rows [blocks, C] of dw, db (NULL: not wanted) */
    const float *dout, *inp, *w, *mean, *rstd;
    int ln;
    geom g;
} bwd_args;

/* The vector buffers of the backward. */
typedef struct bwd_bufs {
    hs_npu_local x[2], dy[2], di[2], wv[2], mv[2], sv[2];
    hs_npu_local tmp, tmp2, dwacc, dbacc, sa, sb, part, part2;
} bwd_bufs;

/* xhat = (x - mean) * rstd (LN) or x * rstd (RMS), in place, rows of chunk width wk. */
static void bwd_xhat(hs_npu_local x, const geom *g, int64_t rows, int64_t wk, const float *mu, const float *rs)
{
    for (int64_t j = 0; j < rows; j++) {
        hs_npu_local xj = hs_npu_sub(x, j * g->ld, wk);
        if (mu)
            hs_npu_vscalar(HS_V_ADDS, xj, xj, -mu[j], wk);
        hs_npu_vscalar(HS_V_MULS, xj, xj, rs[j], wk);
    }
}

/* sa += sum_c dxhat (LN), sb += sum_c dxhat * xhat per row, dxhat = dy * w
 * (k == 0: sa, sb = the chunk's sums). */
static void bwd_stats(bwd_bufs *u, int s, int b, const geom *g, int ln, int64_t rows, int64_t wk, int64_t k)
{
    for (int64_t j = 0; j < rows; j++) {
        hs_npu_local xj = hs_npu_sub(u->x[b], j * g->ld, wk), dyj = hs_npu_sub(u->dy[b], j * g->ld, wk);
        hs_npu_vbin(HS_V_MUL, u->tmp, dyj, u->wv[s], wk);
        hs_npu_vbin(HS_V_MUL, u->tmp2, u->tmp, xj, wk);
        if (ln)
            row_sum(hs_npu_sub(k == 0 ? u->sa : u->part, j, 1), u->tmp, u->tmp, wk);
        row_sum(hs_npu_sub(k == 0 ? u->sb : u->part2, j, 1), u->tmp2, u->tmp2, wk);
    }
    if (k > 0) {
        if (ln)
            hs_npu_vbin(HS_V_ADD, u->sa, u->sa, u->part, rows);
        hs_npu_vbin(HS_V_ADD, u->sb, u->sb, u->part2, rows);
    }
}

/* dinp += rstd * (dxhat - mean_d - xhat * mean_dx) per row, with
 * mean_d = sa / C (LN; 0 for RMS) and mean_dx = sb / C. */
static void bwd_dinp(bwd_bufs *u, int s, int b, const geom *g, int64_t rows, int64_t wk, const float *rs,
                     const float *md, const float *mdx)
{
    for (int64_t j = 0; j < rows; j++) {
        hs_npu_local xj = hs_npu_sub(u->x[b], j * g->ld, wk), dyj = hs_npu_sub(u->dy[b], j * g->ld, wk);
        hs_npu_local dij = hs_npu_sub(u->di[b], j * g->ld, wk);
        hs_npu_vbin(HS_V_MUL, u->tmp, dyj, u->wv[s], wk);
        if (md)
            hs_npu_vscalar(HS_V_ADDS, u->tmp, u->tmp, -md[j], wk);
        hs_npu_vaxpy(u->tmp, xj, -mdx[j], wk);
        hs_npu_vaxpy(dij, u->tmp, rs[j], wk);
    }
}

/* LN:  xhat = (x - mean) * rstd, dxhat = dout * w,
 *      dinp += rstd * (dxhat - mean_c(dxhat) - xhat * mean_c(dxhat * xhat))
 *      dw += sum_n dout * xhat,  db += sum_n dout
 * RMS: xhat = x * rstd, the same without the mean_c(dxhat) term and db.
 * Pass 0 (only with dinp) reduces the two row sums; pass 1 updates dinp and
 * accumulates the block's dw / db partial rows. */
static hs_status bwd_block(hs_npu_kblock *blk, void *p)
{
    const bwd_args *a = p;
    const geom *g = &a->g;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    const int bi = hs_npu_kblock_idx(blk);
    int64_t r0, r1;
    split(g->N, bi, hs_npu_kblock_dim(blk), &r0, &r1);
    bwd_bufs u;
    for (int b = 0; b < 2; b++) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, g->T, &u.x[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, g->T, &u.dy[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, g->T, &u.di[b]));
        if (b == 0 || g->K > 1)
            HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, g->ld, &u.wv[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, ROWS_MAX, &u.mv[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, ROWS_MAX, &u.sv[b]));
    }
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, g->ld, &u.tmp));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, g->ld, &u.tmp2));
    if (g->K == 1) { /* whole rows: one w for the block, dw / db summed in UB */
        u.wv[1] = u.wv[0];
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, g->ld, &u.dwacc));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, g->ld, &u.dbacc));
    }
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, ROWS_MAX, &u.sa));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, ROWS_MAX, &u.sb));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, ROWS_MAX, &u.part));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, ROWS_MAX, &u.part2));
    pingpong pp = {c, 0, {-1, -1}};
    if (g->K == 1) {
        hs_npu_copy_in(u.wv[0], g->ld, a->w, g->C, 1, g->C);
        if (a->pw)
            hs_npu_vdup(u.dwacc, 0.0f, g->ld);
        if (a->pb)
            hs_npu_vdup(u.dbacc, 0.0f, g->ld);
    }
    float *pw = a->pw ? a->pw + bi * g->C : NULL, *pb = a->pb ? a->pb + bi * g->C : NULL;
    const int first_pass = a->dinp ? 0 : 1;
    float mu[ROWS_MAX], rs[ROWS_MAX], md[ROWS_MAX], mdx[ROWS_MAX];
    for (int64_t r = r0; r < r1; r += g->R) {
        const int64_t rows = min64(g->R, r1 - r);
        int b = (int)(pp.step & 1), first = 1;
        for (int pass = first_pass; pass < 2; pass++) {
            for (int64_t k = 0; k < g->K; k++) {
                const int64_t c0 = k * g->W, wk = min64(g->W, g->C - c0), at = r * g->C + c0;
                if (g->K > 1 || first) {
                    b = pp_begin(&pp);
                    hs_npu_copy_in(u.x[b], g->ld, a->inp + at, g->C, rows, wk);
                    hs_npu_copy_in(u.dy[b], g->ld, a->dout + at, g->C, rows, wk);
                    if (a->dinp && (pass == 1 || g->K == 1))
                        hs_npu_copy_in(u.di[b], g->ld, a->dinp + at, g->C, rows, wk);
                    if (g->K > 1)
                        hs_npu_copy_in(u.wv[b], g->ld, a->w + c0, g->C, 1, wk);
                    if (first) { /* the rows' saved statistics, for the scalar unit */
                        hs_npu_copy_in(u.sv[b], rows, a->rstd + r, rows, 1, rows);
                        if (a->ln)
                            hs_npu_copy_in(u.mv[b], rows, a->mean + r, rows, 1, rows);
                    }
                    pp_loaded_for(&pp, b, first);
                    if (first) {
                        for (int64_t j = 0; j < rows; j++) {
                            rs[j] = hs_npu_get_value(u.sv[b], j);
                            if (a->ln)
                                mu[j] = hs_npu_get_value(u.mv[b], j);
                        }
                        hs_npu_set_flag(c, HS_PIPE_SCALAR, HS_PIPE_VECTOR, 2);
                        hs_npu_wait_flag(c, HS_PIPE_SCALAR, HS_PIPE_VECTOR, 2);
                    }
                    bwd_xhat(u.x[b], g, rows, wk, a->ln ? mu : NULL, rs);
                    first = 0;
                }
                const int s = g->K > 1 ? b : 0;
                if (pass == 0) {
                    bwd_stats(&u, s, b, g, a->ln, rows, wk, k);
                    if (g->K > 1)
                        pp_end(&pp, b, HS_PIPE_VECTOR);
                    continue;
                }
                if (a->dinp)
                    bwd_dinp(&u, s, b, g, rows, wk, rs, a->ln ? md : NULL, mdx);
                if (g->K == 1) { /* parameter gradients into the UB accumulators */
                    for (int64_t j = 0; j < rows; j++) {
                        hs_npu_local dyj = hs_npu_sub(u.dy[b], j * g->ld, wk);
                        if (pw)
                            hs_npu_vmla(u.dwacc, dyj, hs_npu_sub(u.x[b], j * g->ld, wk), wk);
                        if (pb)
                            hs_npu_vbin(HS_V_ADD, u.dbacc, u.dbacc, dyj, wk);
                    }
                } else if (pw) { /* dout * xhat, added onto the partial row by MTE3 */
                    hs_npu_vbin(HS_V_MUL, u.x[b], u.x[b], u.dy[b], wk);
                }
                if (a->dinp || g->K > 1) {
                    pp_computed(&pp, b);
                    if (a->dinp)
                        hs_npu_copy_out(a->dinp + at, g->C, u.di[b], g->ld, rows, wk);
                    if (g->K > 1) { /* the block's first row stores, later rows add */
                        hs_npu_set_atomic_add(c, r > r0);
                        if (pw)
                            hs_npu_copy_out(pw + c0, g->C, u.x[b], g->ld, 1, wk);
                        if (pb)
                            hs_npu_copy_out(pb + c0, g->C, u.dy[b], g->ld, 1, wk);
                        hs_npu_set_atomic_add(c, 0);
                    }
                    pp_end(&pp, b, HS_PIPE_MTE3);
                } else {
                    pp_end(&pp, b, HS_PIPE_VECTOR);
                }
            }
            if (pass == 0) { /* mean_d = sa / C, mean_dx = sb / C on the scalar unit */
                float sa[ROWS_MAX], sb[ROWS_MAX];
                if (a->ln)
                    stash_read_rows(c, u.sa, rows, sa);
                stash_read_rows(c, u.sb, rows, sb);
                for (int64_t j = 0; j < rows; j++) {
                    md[j] = a->ln ? sa[j] / (float)g->C : 0.0f;
                    mdx[j] = sb[j] / (float)g->C;
                }
                hs_npu_scalar(c, 2 * rows);
            }
        }
    }
    if (g->K == 1 && (pw || pb)) {
        hs_npu_set_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE3, 4);
        hs_npu_wait_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE3, 4);
        if (pw)
            hs_npu_copy_out(pw, g->C, u.dwacc, g->ld, 1, g->C);
        if (pb)
            hs_npu_copy_out(pb, g->C, u.dbacc, g->ld, 1, g->C);
    }
    pp_drain(&pp);
    return hs_npu_core_status(c);
}

/* ---------------------------------------------------------------- colsum */

typedef struct colsum_args {
    float *dst;
    const float *part; /* [nb, C] */
    int64_t nb, C, W;
} colsum_args;

/* dst[c] += sum over b = 0 .. nb-1, in order, of part[b, c]; each block
 * owns a slice of the columns, in tiles of W. */
static hs_status colsum_block(hs_npu_kblock *blk, void *p)
{
    const colsum_args *a = p;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    int64_t q0, q1; /* in units of 8 columns */
    split((a->C + 7) / 8, hs_npu_kblock_idx(blk), hs_npu_kblock_dim(blk), &q0, &q1);
    const int64_t c1 = min64(8 * q1, a->C);
    hs_npu_local pt[2], dv[2];
    for (int b = 0; b < 2; b++) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->nb * a->W, &pt[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->W, &dv[b]));
    }
    pingpong pp = {c, 0, {-1, -1}};
    for (int64_t c0 = 8 * q0; c0 < c1; c0 += a->W) {
        const int64_t wk = min64(a->W, c1 - c0);
        const int b = pp_begin(&pp);
        hs_npu_copy_in(pt[b], a->W, a->part + c0, a->C, a->nb, wk);
        hs_npu_copy_in(dv[b], a->W, a->dst + c0, a->C, 1, wk);
        pp_loaded_for(&pp, b, 0);
        for (int64_t i = 1; i < a->nb; i++)
            hs_npu_vbin(HS_V_ADD, pt[b], pt[b], hs_npu_sub(pt[b], i * a->W, wk), wk);
        hs_npu_vbin(HS_V_ADD, dv[b], dv[b], pt[b], wk);
        pp_computed(&pp, b);
        hs_npu_copy_out(a->dst + c0, a->C, dv[b], a->W, 1, wk);
        pp_end(&pp, b, HS_PIPE_MTE3);
    }
    pp_drain(&pp);
    return hs_npu_core_status(c);
}

/* dst[C] += column sums of part[nb, C], in row order. */
static hs_status colsum(const hs_device *dev, float *dst, const float *part, int64_t nb, int64_t C)
{
    hs_npu *d = dev->npu;
    colsum_args a = {dst, part, nb, C, 0};
    a.W = (hs_npu_spec_of(d)->ub_bytes - SLACK) / 4 / (2 * (nb + 1)) / 8 * 8;
    if (a.W > round8(C))
        a.W = round8(C);
    if (a.W < 8)
        a.W = 8;
    const int nblk = (int)min64((C + 63) / 64, hs_npu_max_blocks(d, HS_NPU_LAUNCH_VECTOR));
    const hs_npu_operand ops[] = {{dst, 4 * C}, {part, 4 * nb * C}};
    const int64_t dims[] = {nb, C};
    hs_npu_key key;
    HS_NPU_KEY_OF(&key, ops, dims);
    key.independent = 1;
    return hs_npu_launch_cached(d, dev->stream, "norm_colsum", HS_NPU_LAUNCH_VECTOR, nblk, colsum_block,
                                &a, &key);
}

size_t hs_npu_norm_bwd_workspace(hs_npu *d, int64_t N, int64_t C, int sums)
{
    const int64_t nb = min64(N, hs_npu_max_blocks(d, HS_NPU_LAUNCH_VECTOR));
    return (size_t)(nb * C) * sizeof(float) * (size_t)sums;
}

static hs_status norm_backward(const hs_device *dev, const char *name, float *dinp, float *dw, float *db, const float *dout,
                               const float *inp, const float *w, const float *mean, const float *rstd, int64_t N,
                               int64_t C)
{
    hs_npu *d = dev->npu;
    if (!dinp && !dw && !db)
        return HS_OK;
    const int ln = mean != NULL;
    bwd_args a = {dinp, NULL, NULL, dout, inp, w, mean, rstd, ln, {0}};
    /* tiles: x, dout, dinp; rows: w (per set when chunked), two temporaries,
     * dw and db accumulators (whole rows); fixed: mean/rstd per set, two
     * sums, two partials */
    a.g = plan(N, C, hs_npu_spec_of(d)->ub_bytes, 3, 5, 4, 8 * ROWS_MAX * 4);
    const int nb = (int)min64(N, hs_npu_max_blocks(d, HS_NPU_LAUNCH_VECTOR));
    void *parts = NULL;
    if (dw || db)
        HS_TRY(hs_npu_malloc(d, hs_npu_norm_bwd_workspace(d, N, C, (dw != NULL) + (db != NULL)), &parts));
    a.pw = dw ? parts : NULL;
    a.pb = db ? (float *)parts + (dw ? (size_t)nb * (size_t)C : 0) : NULL;
    const int64_t act = 4 * N * C;
    const hs_npu_operand ops[] = {{a.dinp, act}, {a.pw, 4 * nb * C}, {a.pb, 4 * nb * C}, {dout, act},
                                  {inp, act},    {w, 4 * C},         {mean, 4 * N},      {rstd, 4 * N}};
    const int64_t dims[] = {N, C};
    hs_npu_key key;
    HS_NPU_KEY_OF(&key, ops, dims);
    key.independent = 1;
    hs_status st = hs_npu_launch_cached(d, dev->stream, name, HS_NPU_LAUNCH_VECTOR, nb, bwd_block, &a, &key);
    if (st == HS_OK && dw)
        st = colsum(dev, dw, a.pw, nb, C);
    if (st == HS_OK && db)
        st = colsum(dev, db, a.pb, nb, C);
    hs_npu_free_mem(d, parts);
    return st;
}

hs_status hs_npu_layernorm_backward(const hs_device *dev, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                                    const float *w, const float *mean, const float *rstd, int64_t N, int64_t C)
{
    return norm_backward(dev, "layernorm_bwd", dinp, dw, db, dout, inp, w, mean, rstd, N, C);
}

hs_status hs_npu_rmsnorm_backward(const hs_device *dev, float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                                  const float *rstd, int64_t N, int64_t C)
{
    return norm_backward(dev, "rmsnorm_bwd", dinp, dw, NULL, dout, inp, w, NULL, rstd, N, C);
}
