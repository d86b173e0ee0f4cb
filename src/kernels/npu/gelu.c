/* Bias + GELU (tanh approximation) on the NPU's vector cores, forward and
 * backward, written against the instruction API (npu_sim/isa.h).
 *
 * With u = x + bias and a = sqrt(2/pi) (u + 0.044715 u^3) the tanh form of
 * kernels.h is evaluated as the CPU body does, through
 * 0.5 (1 + tanh a) = sigmoid(2a) =: s (one exp, no tanh):
 *   gelu(u)  = u s = u / (1 + e^(-2a))
 *   gelu'(u) = s + u * 2 s (1 - s) * sqrt(2/pi) (1 + 3 * 0.044715 u^2)
 *
 * Tiling. A block works on a region of rows x columns in tiles of R rows
 * by W columns (UB row stride padded to 8 floats), column chunk by column
 * chunk: the bias chunk is loaded once per chunk and replicated over the R
 * rows of a UB tile (log2 R vector copies), so every tile is a handful of
 * whole-tile vector ops. The forward splits rows over the blocks; the
 * backward splits columns, so that each block owns its slice of dbias and
 * sums every row into it in row order (in a replicated R x W accumulator,
 * folded at the end of the chunk): deterministic, one launch, no atomics.
 * Tiles ping-pong between two buffer sets with MTE2 -> VECTOR -> MTE3 ->
 * MTE2 flags per set, so loads, compute and stores overlap.
 */
#include "core/try.h"
#include "kernels/npu/npu_kernels.h"
#include "kernels/npu/pingpong.h"
#include "npu_sim/isa.h"

#define GELU_K0 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_K1 0.044715f
#define ROWS_MAX 1024 /* rows per tile */
#define SLACK 1024    /* UB bytes left for alignment */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t round8(int64_t n) { return (n + 7) / 8 * 8; }

/* Elements [lo, hi) of n that block b of nb owns. */
static void split(int64_t n, int b, int nb, int64_t *lo, int64_t *hi)
{
    *lo = n * b / nb;
    *hi = n * (b + 1) / nb;
}

/* ----------------------------------------------------------- geometry */

typedef struct gelu_args {
    float *out, *dx, *dbias;
    const float *x, *dout, *bias;
    int64_t N, C;
    int64_t W, ld, R; /* tile: R rows of W columns, UB row stride ld */
} gelu_args;

/* Tiles for `set` tile buffers per ping-pong set and `single` others:
 * W = min(cols, what fits with one row), R rows. */
static void plan(gelu_args *a, int64_t ub, int64_t cols, int set, int single)
{
    const int64_t avail = (ub - SLACK) / 4, nbuf = 2 * set + single;
    a->W = min64(cols, avail / nbuf / 64 * 64);
    if (a->W < 8)
        a->W = 8; /* a UB this small fails in hs_npu_alloc with the sizes named */
    a->ld = round8(a->W);
    a->R = min64(avail / nbuf / a->ld, ROWS_MAX);
}

/* Replicates row 0 of buf (ld floats) over rows 1 .. R-1 by doubling. */
static void replicate(hs_npu_local buf, int64_t ld, int64_t R)
{
    for (int64_t have = 1; have < R; have *= 2) {
        const int64_t n = min64(have, R - have);
        hs_npu_vunary(HS_V_COPY, hs_npu_sub(buf, have * ld, n * ld), buf, n * ld);
    }
}

/* Loads the bias chunk [c0, c0 + wk) into row 0 of brep and replicates it
 * over R rows; flag id 2 keeps the reload after the previous chunk's use. */
static void load_bias(hs_npu_core *c, hs_npu_local brep, const gelu_args *a, int64_t c0, int64_t wk, int reload)
{
    if (reload)
        hs_npu_wait_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE2, 2);
    hs_npu_copy_in(brep, a->ld, a->bias + c0, a->C, 1, wk);
    hs_npu_set_flag(c, HS_PIPE_MTE2, HS_PIPE_VECTOR, 2);
    hs_npu_wait_flag(c, HS_PIPE_MTE2, HS_PIPE_VECTOR, 2);
    replicate(brep, a->ld, a->R);
}

/* ------------------------------------------------------------- forward */

/* out = gelu(x + bias) = u / (1 + exp(-2 sqrt(2/pi) (u + 0.044715 u^3))) */
static void gelu_tile(hs_npu_local x, hs_npu_local t, int64_t n)
{
    hs_npu_vbin(HS_V_MUL, t, x, x, n);                       /* u^2 */
    hs_npu_vscalar(HS_V_MULS, t, t, GELU_K1, n);             /* k1 u^2 */
    hs_npu_vscalar(HS_V_ADDS, t, t, 1.0f, n);                /* 1 + k1 u^2 */
    hs_npu_vbin(HS_V_MUL, t, t, x, n);                       /* u + k1 u^3 */
    hs_npu_vscalar(HS_V_MULS, t, t, -2.0f * GELU_K0, n);     /* -2a */
    hs_npu_vunary(HS_V_EXP, t, t, n);
    hs_npu_vscalar(HS_V_ADDS, t, t, 1.0f, n);
    hs_npu_vbin(HS_V_DIV, x, x, t, n);
}

/* Rows split over blocks; each block walks column chunks, then row tiles. */
static hs_status fwd_block(hs_npu_kblock *blk, void *p)
{
    const gelu_args *a = p;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    int64_t r0, r1;
    split(a->N, hs_npu_kblock_idx(blk), hs_npu_kblock_dim(blk), &r0, &r1);
    hs_npu_local x[2], t, brep;
    const int64_t T = a->R * a->ld;
    for (int b = 0; b < 2; b++)
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, T, &x[b]));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, T, &t));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, T, &brep));
    pingpong pp = {c, 0, {-1, -1}};
    for (int64_t c0 = 0; c0 < a->C; c0 += a->W) {
        const int64_t wk = min64(a->W, a->C - c0);
        if (a->bias)
            load_bias(c, brep, a, c0, wk, c0 > 0);
        for (int64_t r = r0; r < r1; r += a->R) {
            const int64_t rows = min64(a->R, r1 - r), n = (rows - 1) * a->ld + wk;
            const int b = pp_begin(&pp);
            hs_npu_copy_in(x[b], a->ld, a->x + r * a->C + c0, a->C, rows, wk);
            pp_loaded(&pp, b);
            if (a->bias)
                hs_npu_vbin(HS_V_ADD, x[b], x[b], brep, n);
            gelu_tile(x[b], t, n);
            pp_computed(&pp, b);
            hs_npu_copy_out(a->out + r * a->C + c0, a->C, x[b], a->ld, rows, wk);
            pp_end(&pp, b, HS_PIPE_MTE3);
        }
        if (a->bias && c0 + a->W < a->C)
            hs_npu_set_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE2, 2);
    }
    pp_drain(&pp);
    return hs_npu_core_status(c);
}

/* The timing-cache key of a launch with args a. */
static void gelu_key(hs_npu_key *key, const gelu_args *a)
{
    const int64_t act = 4 * a->N * a->C, row = 4 * a->C;
    const hs_npu_operand ops[] = {{a->out, act}, {a->dx, act}, {a->dbias, row}, {a->x, act}, {a->dout, act}, {a->bias, row}};
    const int64_t dims[] = {a->N, a->C};
    HS_NPU_KEY_OF(key, ops, dims);
    key->independent = 1;
}

hs_status hs_npu_bias_gelu_forward(const hs_device *dev, float *out, const float *x, const float *bias, int64_t N, int64_t C)
{
    hs_npu *d = dev->npu;
    gelu_args a = {.out = out, .x = x, .bias = bias, .N = N, .C = C};
    plan(&a, hs_npu_spec_of(d)->ub_bytes, C, 1, 2); /* x per set; tmp, bias */
    const int nb = (int)min64(N, hs_npu_max_blocks(d, HS_NPU_LAUNCH_VECTOR));
    hs_npu_key key;
    gelu_key(&key, &a);
    return hs_npu_launch_cached(d, dev->stream, "bias_gelu_fwd", HS_NPU_LAUNCH_VECTOR, nb, fwd_block, &a,
                                &key);
}

/* ------------------------------------------------------------ backward */

/* x = g = dout * gelu'(u) for u = x (bias already added); t, t2 scratch.
 *   s = 1 / (1 + exp(-2 sqrt(2/pi) (u + 0.044715 u^3)))
 *   gelu'(u) = s + s (1 - s) * u * 2 sqrt(2/pi) (1 + 3 * 0.044715 u^2) */
static void gelu_grad_tile(hs_npu_local x, hs_npu_local dy, hs_npu_local t, hs_npu_local t2, int64_t n)
{
    hs_npu_vbin(HS_V_MUL, t, x, x, n);                          /* u^2 */
    hs_npu_vscalar(HS_V_MULS, t2, t, GELU_K1, n);
    hs_npu_vscalar(HS_V_ADDS, t2, t2, 1.0f, n);
    hs_npu_vbin(HS_V_MUL, t2, t2, x, n);                        /* u + k1 u^3 */
    hs_npu_vscalar(HS_V_MULS, t2, t2, -2.0f * GELU_K0, n);
    hs_npu_vunary(HS_V_EXP, t2, t2, n);
    hs_npu_vscalar(HS_V_ADDS, t2, t2, 1.0f, n);
    hs_npu_vunary(HS_V_RECIP, t2, t2, n);                       /* s */
    hs_npu_vscalar(HS_V_MULS, t, t, 3.0f * GELU_K1, n);
    hs_npu_vscalar(HS_V_ADDS, t, t, 1.0f, n);
    hs_npu_vscalar(HS_V_MULS, t, t, 2.0f * GELU_K0, n);         /* 2 k0 (1 + 3 k1 u^2) */
    hs_npu_vbin(HS_V_MUL, t, t, x, n);                          /* u * 2 k0 (1 + 3 k1 u^2) */
    hs_npu_vscalar(HS_V_MULS, x, t2, -1.0f, n);
    hs_npu_vscalar(HS_V_ADDS, x, x, 1.0f, n);                   /* 1 - s */
    hs_npu_vbin(HS_V_MUL, x, x, t2, n);                         /* s (1 - s) */
    hs_npu_vbin(HS_V_MUL, x, x, t, n);
    hs_npu_vbin(HS_V_ADD, x, x, t2, n);                         /* gelu'(u) */
    hs_npu_vbin(HS_V_MUL, x, x, dy, n);
}

/* Adds rows [1, R) of acc (stride ld) onto row 0, halving the row count
 * each step: a fixed order for a given R. */
static void fold_rows(hs_npu_local acc, int64_t ld, int64_t R)
{
    for (int64_t h = R; h > 1;) {
        const int64_t m = (h + 1) / 2;
        hs_npu_vbin(HS_V_ADD, acc, acc, hs_npu_sub(acc, m * ld, (h - m) * ld), (h - m) * ld);
        h = m;
    }
}

/* g = dout * gelu'(x + bias);  dx += g;  dbias[c] += sum_n g[n, c].
 * Columns split over blocks (in units of 8); each block walks its column
 * chunks, and every row tile of a chunk. */
static hs_status bwd_block(hs_npu_kblock *blk, void *p)
{
    const gelu_args *a = p;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    int64_t q0, q1;
    split((a->C + 7) / 8, hs_npu_kblock_idx(blk), hs_npu_kblock_dim(blk), &q0, &q1);
    const int64_t cend = min64(8 * q1, a->C), T = a->R * a->ld;
    hs_npu_local x[2], dy[2], dx[2], t, t2, brep, acc;
    for (int b = 0; b < 2; b++) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, T, &x[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, T, &dy[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, T, &dx[b]));
    }
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, T, &t));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, T, &t2));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, T, &brep));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, T, &acc));
    pingpong pp = {c, 0, {-1, -1}};
    for (int64_t c0 = 8 * q0; c0 < cend; c0 += a->W) {
        const int64_t wk = min64(a->W, cend - c0);
        if (a->bias)
            load_bias(c, brep, a, c0, wk, c0 > 8 * q0);
        if (a->dbias)
            hs_npu_vdup(acc, 0.0f, T);
        for (int64_t r = 0; r < a->N; r += a->R) {
            const int64_t rows = min64(a->R, a->N - r), n = (rows - 1) * a->ld + wk, at = r * a->C + c0;
            const int b = pp_begin(&pp);
            hs_npu_copy_in(x[b], a->ld, a->x + at, a->C, rows, wk);
            hs_npu_copy_in(dy[b], a->ld, a->dout + at, a->C, rows, wk);
            if (a->dx)
                hs_npu_copy_in(dx[b], a->ld, a->dx + at, a->C, rows, wk);
            pp_loaded(&pp, b);
            if (a->bias)
                hs_npu_vbin(HS_V_ADD, x[b], x[b], brep, n);
            gelu_grad_tile(x[b], dy[b], t, t2, n);
            if (a->dbias)
                hs_npu_vbin(HS_V_ADD, acc, acc, x[b], n);
            if (a->dx) {
                hs_npu_vbin(HS_V_ADD, dx[b], dx[b], x[b], n);
                pp_computed(&pp, b);
                hs_npu_copy_out(a->dx + at, a->C, dx[b], a->ld, rows, wk);
                pp_end(&pp, b, HS_PIPE_MTE3);
            } else { /* nothing stored: the set is free once VECTOR is done with it */
                pp_end(&pp, b, HS_PIPE_VECTOR);
            }
        }
        if (a->bias && c0 + a->W < cend)
            hs_npu_set_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE2, 2);
        if (a->dbias) { /* dbias chunk += the folded accumulator; blocking, once per chunk */
            fold_rows(acc, a->ld, min64(a->R, a->N));
            hs_npu_set_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE2, 3);
            hs_npu_wait_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE2, 3);
            hs_npu_copy_in(t, a->ld, a->dbias + c0, a->C, 1, wk);
            hs_npu_set_flag(c, HS_PIPE_MTE2, HS_PIPE_VECTOR, 3);
            hs_npu_wait_flag(c, HS_PIPE_MTE2, HS_PIPE_VECTOR, 3);
            hs_npu_vbin(HS_V_ADD, t, t, acc, wk);
            hs_npu_set_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE3, 3);
            hs_npu_wait_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE3, 3);
            hs_npu_copy_out(a->dbias + c0, a->C, t, a->ld, 1, wk);
            hs_npu_set_flag(c, HS_PIPE_MTE3, HS_PIPE_VECTOR, 3);
            hs_npu_wait_flag(c, HS_PIPE_MTE3, HS_PIPE_VECTOR, 3);
        }
    }
    pp_drain(&pp);
    return hs_npu_core_status(c);
}

hs_status hs_npu_bias_gelu_backward(const hs_device *dev, float *dx, float *dbias, const float *dout, const float *x, const float *bias,
                                    int64_t N, int64_t C)
{
    hs_npu *d = dev->npu;
    if (!dx && !dbias)
        return HS_OK;
    gelu_args a = {.dx = dx, .dbias = dbias, .x = x, .dout = dout, .bias = bias, .N = N, .C = C};
    const int64_t units = (C + 7) / 8;
    const int nb = (int)min64(units, hs_npu_max_blocks(d, HS_NPU_LAUNCH_VECTOR));
    /* x, dout, dx per set; tmp, tmp2, bias, dbias accumulator */
    plan(&a, hs_npu_spec_of(d)->ub_bytes, 8 * ((units + nb - 1) / nb), 3, 4);
    hs_npu_key key;
    gelu_key(&key, &a);
    return hs_npu_launch_cached(d, dev->stream, "bias_gelu_bwd", HS_NPU_LAUNCH_VECTOR, nb, bwd_block, &a,
                                &key);
}
