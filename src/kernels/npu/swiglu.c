/* SwiGLU on the NPU's vector cores, forward and backward, written against
 * the instruction API (npu_sim/isa.h). Row n of inp is [g | u], F each:
 *   out = silu(g) * u,  silu(g) = g s,  s = sigmoid(g) = 1 / (1 + e^-g)
 *   du += dout * silu(g)
 *   dg += dout * u * s (1 + g (1 - s))
 * (e^-g overflowing to inf for g < -88 gives s = 0 and silu = -0, the
 * limits.)
 *
 * Tiling. Rows are split over the blocks of a VECTOR launch; a block walks
 * column chunks of F (W wide), and row tiles of R rows in each: the g and
 * u halves of a tile come in as two strided MTE2 copies (row stride 2F),
 * so every op runs once over the whole tile. Tiles ping-pong between two
 * buffer sets: MTE2 -> VECTOR -> MTE3 flags per set, and MTE3 -> MTE2
 * before a set is refilled, so loads, compute and stores overlap.
 */
#include "core/try.h"
#include "kernels/npu/npu_kernels.h"
#include "kernels/npu/pingpong.h"
#include "npu_sim/isa.h"

#define ROWS_MAX 1024 /* rows per tile */
#define SLACK 1024    /* UB bytes left for alignment */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

typedef struct swiglu_args {
    float *out, *dinp;
    const float *inp, *dout;
    int64_t N, F;
    int64_t W, ld, R; /* tile: R rows of W columns, UB row stride ld */
} swiglu_args;

/* Tiles for `set` buffers per ping-pong set and `single` others. */
static void plan(swiglu_args *a, int64_t ub, int set, int single)
{
    const int64_t avail = (ub - SLACK) / 4, nbuf = 2 * set + single;
    a->W = min64(a->F, avail / nbuf / 64 * 64);
    if (a->W < 8)
        a->W = 8; /* a UB this small fails in hs_npu_alloc with the sizes named */
    a->ld = (a->W + 7) / 8 * 8;
    a->R = min64(avail / nbuf / a->ld, ROWS_MAX);
}


/* Rows [*r0, *r1) of N that this block owns. */
static void block_rows(hs_npu_kblock *blk, int64_t N, int64_t *r0, int64_t *r1)
{
    const int b = hs_npu_kblock_idx(blk), nb = hs_npu_kblock_dim(blk);
    *r0 = N * b / nb;
    *r1 = N * (b + 1) / nb;
}

/* t = s = 1 / (1 + e^-g) */
static void sigmoid_tile(hs_npu_local t, hs_npu_local g, int64_t n)
{
    hs_npu_vscalar(HS_V_MULS, t, g, -1.0f, n);
    hs_npu_vunary(HS_V_EXP, t, t, n);
    hs_npu_vscalar(HS_V_ADDS, t, t, 1.0f, n);
    hs_npu_vunary(HS_V_RECIP, t, t, n);
}

/* out = g s u, per tile: g = g * s; g = g * u; store g. */
static hs_status fwd_block(hs_npu_kblock *blk, void *p)
{
    const swiglu_args *a = p;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    int64_t r0, r1;
    block_rows(blk, a->N, &r0, &r1);
    hs_npu_local g[2], u[2], t;
    const int64_t T = a->R * a->ld;
    for (int b = 0; b < 2; b++) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, T, &g[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, T, &u[b]));
    }
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, T, &t));
    pingpong pp = {c, 0, {-1, -1}};
    for (int64_t c0 = 0; c0 < a->F; c0 += a->W) {
        const int64_t wk = min64(a->W, a->F - c0);
        for (int64_t r = r0; r < r1; r += a->R) {
            const int64_t rows = min64(a->R, r1 - r), n = (rows - 1) * a->ld + wk;
            const float *row = a->inp + r * 2 * a->F + c0;
            const int b = pp_begin(&pp);
            hs_npu_copy_in(g[b], a->ld, row, 2 * a->F, rows, wk);
            hs_npu_copy_in(u[b], a->ld, row + a->F, 2 * a->F, rows, wk);
            pp_loaded(&pp, b);
            sigmoid_tile(t, g[b], n);
            hs_npu_vbin(HS_V_MUL, g[b], g[b], t, n);
            hs_npu_vbin(HS_V_MUL, g[b], g[b], u[b], n);
            pp_computed(&pp, b);
            hs_npu_copy_out(a->out + r * a->F + c0, a->F, g[b], a->ld, rows, wk);
            pp_end(&pp, b, HS_PIPE_MTE3);
        }
    }
    pp_drain(&pp);
    return hs_npu_core_status(c);
}

/* du += dout * (g s);  dg += dout * (u * s (1 + g (1 - s))), per tile. */
static hs_status bwd_block(hs_npu_kblock *blk, void *p)
{
    const swiglu_args *a = p;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    int64_t r0, r1;
    block_rows(blk, a->N, &r0, &r1);
    hs_npu_local g[2], u[2], dy[2], dg[2], du[2], s, t;
    const int64_t T = a->R * a->ld;
    for (int b = 0; b < 2; b++) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, T, &g[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, T, &u[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, T, &dy[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, T, &dg[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, T, &du[b]));
    }
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, T, &s));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, T, &t));
    const int64_t ld2 = 2 * a->F;
    pingpong pp = {c, 0, {-1, -1}};
    for (int64_t c0 = 0; c0 < a->F; c0 += a->W) {
        const int64_t wk = min64(a->W, a->F - c0);
        for (int64_t r = r0; r < r1; r += a->R) {
            const int64_t rows = min64(a->R, r1 - r), n = (rows - 1) * a->ld + wk, at = r * ld2 + c0;
            const int b = pp_begin(&pp);
            hs_npu_copy_in(g[b], a->ld, a->inp + at, ld2, rows, wk);
            hs_npu_copy_in(u[b], a->ld, a->inp + at + a->F, ld2, rows, wk);
            hs_npu_copy_in(dy[b], a->ld, a->dout + r * a->F + c0, a->F, rows, wk);
            hs_npu_copy_in(dg[b], a->ld, a->dinp + at, ld2, rows, wk);
            hs_npu_copy_in(du[b], a->ld, a->dinp + at + a->F, ld2, rows, wk);
            pp_loaded(&pp, b);
            sigmoid_tile(s, g[b], n);
            hs_npu_vbin(HS_V_MUL, t, g[b], s, n);             /* silu */
            hs_npu_vmla(du[b], dy[b], t, n);
            hs_npu_vscalar(HS_V_MULS, t, s, -1.0f, n);
            hs_npu_vscalar(HS_V_ADDS, t, t, 1.0f, n);         /* 1 - s */
            hs_npu_vbin(HS_V_MUL, t, t, g[b], n);
            hs_npu_vscalar(HS_V_ADDS, t, t, 1.0f, n);         /* 1 + g (1 - s) */
            hs_npu_vbin(HS_V_MUL, t, t, s, n);                /* silu'(g) */
            hs_npu_vbin(HS_V_MUL, t, t, u[b], n);
            hs_npu_vmla(dg[b], dy[b], t, n);
            pp_computed(&pp, b);
            hs_npu_copy_out(a->dinp + at, ld2, dg[b], a->ld, rows, wk);
            hs_npu_copy_out(a->dinp + at + a->F, ld2, du[b], a->ld, rows, wk);
            pp_end(&pp, b, HS_PIPE_MTE3);
        }
    }
    pp_drain(&pp);
    return hs_npu_core_status(c);
}

static hs_status launch(const hs_device *dev, const char *name, swiglu_args *a, int set, int single, hs_npu_kernel_fn fn)
{
    hs_npu *d = dev->npu;
    plan(a, hs_npu_spec_of(d)->ub_bytes, set, single);
    const int nb = (int)min64(a->N, hs_npu_max_blocks(d, HS_NPU_LAUNCH_VECTOR));
    const int64_t half = 4 * a->N * a->F;
    const hs_npu_operand ops[] = {{a->out, half}, {a->dinp, 2 * half}, {a->inp, 2 * half}, {a->dout, half}};
    const int64_t dims[] = {a->N, a->F, set, single};
    hs_npu_key key;
    HS_NPU_KEY_OF(&key, ops, dims);
    key.independent = 1;
    return hs_npu_launch_cached(d, dev->stream, name, HS_NPU_LAUNCH_VECTOR, nb, fn, a, &key);
}

hs_status hs_npu_swiglu_forward(const hs_device *dev, float *out, const float *inp, int64_t N, int64_t F)
{
    swiglu_args a = {.out = out, .inp = inp, .N = N, .F = F};
    return launch(dev, "swiglu_fwd", &a, 2, 1, fwd_block); /* g, u per set; s */
}

hs_status hs_npu_swiglu_backward(const hs_device *dev, float *dinp, const float *dout, const float *inp, int64_t N, int64_t F)
{
    swiglu_args a = {.dinp = dinp, .inp = inp, .dout = dout, .N = N, .F = F};
    return launch(dev, "swiglu_bwd", &a, 5, 2, bwd_block); /* g, u, dout, dg, du per set; s, t */
}
