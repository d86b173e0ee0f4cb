/* Residual add on the NPU's vector cores, written against the instruction
 * API (npu_sim/isa.h):
 *   forward   out = a + b        (out may alias a or b)
 *   backward  da += dout;  db += dout
 * The flat buffers are split over the blocks of a VECTOR launch in pieces
 * of 64 floats (256 B, one vector repeat); a block streams its piece in
 * tiles of T floats through two ping-pong buffer sets (MTE2 -> VECTOR ->
 * MTE3 flags per set, MTE3 -> MTE2 before a set is refilled), so loads,
 * adds and stores overlap. Each element is read before it is written and
 * blocks touch disjoint ranges, so aliasing is safe.
 */
#include "core/try.h"
#include "kernels/npu/npu_kernels.h"
#include "kernels/npu/pingpong.h"
#include "npu_sim/isa.h"

#define SLACK 1024 /* UB bytes left for alignment */

typedef struct residual_args {
    float *out, *da, *db;
    const float *a, *b, *dout;
    int64_t n, T;
} residual_args;

static int64_t tile_len(const residual_args *a, int64_t i, int64_t hi)
{
    return hi - i < a->T ? hi - i : a->T;
}

/* out = a + b, tile by tile; the sum lands in a's buffer. */
static hs_status fwd_block(hs_npu_kblock *blk, void *p)
{
    const residual_args *a = p;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    int64_t lo, hi;
    pp_block_range(blk, a->n, &lo, &hi);
    pingpong pp = {c, 0, {-1, -1}};
    hs_npu_local x[2], y[2];
    for (int b = 0; b < 2; b++) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->T, &x[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->T, &y[b]));
    }
    for (int64_t i = lo; i < hi; i += a->T) {
        const int64_t len = tile_len(a, i, hi);
        const int b = pp_begin(&pp);
        hs_npu_copy_in(x[b], len, a->a + i, len, 1, len);
        hs_npu_copy_in(y[b], len, a->b + i, len, 1, len);
        pp_loaded(&pp, b);
        hs_npu_vbin(HS_V_ADD, x[b], x[b], y[b], len);
        pp_computed(&pp, b);
        hs_npu_copy_out(a->out + i, len, x[b], len, 1, len);
        pp_end(&pp, b, HS_PIPE_MTE3);
    }
    pp_drain(&pp);
    return hs_npu_core_status(c);
}

/* da += dout; db += dout, tile by tile (either may be NULL). */
static hs_status bwd_block(hs_npu_kblock *blk, void *p)
{
    const residual_args *a = p;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    int64_t lo, hi;
    pp_block_range(blk, a->n, &lo, &hi);
    pingpong pp = {c, 0, {-1, -1}};
    hs_npu_local g[2], x[2], y[2];
    for (int b = 0; b < 2; b++) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->T, &g[b]));
        if (a->da)
            HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->T, &x[b]));
        if (a->db)
            HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->T, &y[b]));
    }
    for (int64_t i = lo; i < hi; i += a->T) {
        const int64_t len = tile_len(a, i, hi);
        const int b = pp_begin(&pp);
        hs_npu_copy_in(g[b], len, a->dout + i, len, 1, len);
        if (a->da)
            hs_npu_copy_in(x[b], len, a->da + i, len, 1, len);
        if (a->db)
            hs_npu_copy_in(y[b], len, a->db + i, len, 1, len);
        pp_loaded(&pp, b);
        if (a->da)
            hs_npu_vbin(HS_V_ADD, x[b], x[b], g[b], len);
        if (a->db)
            hs_npu_vbin(HS_V_ADD, y[b], y[b], g[b], len);
        pp_computed(&pp, b);
        if (a->da)
            hs_npu_copy_out(a->da + i, len, x[b], len, 1, len);
        if (a->db)
            hs_npu_copy_out(a->db + i, len, y[b], len, 1, len);
        pp_end(&pp, b, HS_PIPE_MTE3);
    }
    pp_drain(&pp);
    return hs_npu_core_status(c);
}

/* Launches fn over n elements with tiles for `bufs` buffers per set. */
static hs_status launch(const hs_device *dev, const char *name, residual_args *a, int bufs, hs_npu_kernel_fn fn)
{
    hs_npu *d = dev->npu;
    a->T = (hs_npu_spec_of(d)->ub_bytes - SLACK) / 4 / (2 * bufs) / 64 * 64;
    if (a->T < 64)
        a->T = 64; /* a UB this small fails in hs_npu_alloc with the sizes named */
    const int64_t units = (a->n + 63) / 64, max = hs_npu_max_blocks(d, HS_NPU_LAUNCH_VECTOR);
    const int64_t n4 = 4 * a->n;
    const hs_npu_operand ops[] = {{a->out, n4}, {a->da, n4}, {a->db, n4}, {a->a, n4}, {a->b, n4}, {a->dout, n4}};
    const int64_t dims[] = {a->n};
    hs_npu_key key;
    HS_NPU_KEY_OF(&key, ops, dims);
    key.independent = 1;
    return hs_npu_launch_cached(d, dev->stream, name, HS_NPU_LAUNCH_VECTOR,
                                (int)(units < max ? units : max), fn, a, &key);
}

hs_status hs_npu_residual_forward(const hs_device *dev, float *out, const float *a, const float *b, int64_t n)
{
    residual_args r = {.out = out, .a = a, .b = b, .n = n};
    return launch(dev, "residual_fwd", &r, 2, fwd_block);
}

hs_status hs_npu_residual_backward(const hs_device *dev, float *da, float *db, const float *dout, int64_t n)
{
    if (!da && !db)
        return HS_OK;
    residual_args r = {.da = da, .db = db, .dout = dout, .n = n};
    return launch(dev, "residual_bwd", &r, 1 + (da != NULL) + (db != NULL), bwd_block);
}
