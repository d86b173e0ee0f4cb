/* Dtype casts and fills on the NPU's vector cores, written against the
 * instruction API (npu_sim/isa.h):
 *   cast   dst[i] = (dst dtype) src[i]   fp32 <-> bf16 / fp16, round to nearest even
 *   fill   t[i] = value                  (rounded once to t's dtype)
 * The flat buffers are split over the blocks of a VECTOR launch in pieces
 * of 64 elements. A cast streams its piece in tiles of T elements through
 * two ping-pong sets (src tile, dst tile; kernels/npu/pingpong.h), so
 * loads, casts and stores overlap. A fill duplicates the value into one UB tile once and stores
 * that tile over the whole piece: MTE3 only reads it, so nothing races.
 */
#include "core/try.h"
#include "kernels/npu/npu_kernels.h"
#include "kernels/npu/pingpong.h"
#include "npu_sim/isa.h"

#define SLACK 1024 /* UB bytes left for alignment */

typedef struct convert_args {
    void *dst;
    const void *src;
    hs_dtype dst_dt, src_dt;
    float value;
    int64_t n, T;
} convert_args;

/* GM address of element i of a buffer of dtype dt. */
static const char *gm_at(const void *base, hs_dtype dt, int64_t i)
{
    return (const char *)base + i * (int64_t)hs_dtype_size(dt);
}

/* dst = cast(src), tile by tile. */
static hs_status cast_block(hs_npu_kblock *blk, void *p)
{
    const convert_args *a = p;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    int64_t lo, hi;
    pp_block_range(blk, a->n, &lo, &hi);
    hs_npu_local x[2], y[2];
    for (int b = 0; b < 2; b++) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, a->src_dt, a->T, &x[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, a->dst_dt, a->T, &y[b]));
    }
    pingpong pp = {c, 0, {-1, -1}};
    for (int64_t i = lo; i < hi; i += a->T) {
        const int64_t len = hi - i < a->T ? hi - i : a->T;
        const int b = pp_begin(&pp);
        hs_npu_copy_in(x[b], len, gm_at(a->src, a->src_dt, i), len, 1, len);
        pp_loaded(&pp, b);
        hs_npu_vcast(y[b], x[b], len);
        pp_computed(&pp, b);
        hs_npu_copy_out((void *)gm_at(a->dst, a->dst_dt, i), len, y[b], len, 1, len);
        pp_end(&pp, b, HS_PIPE_MTE3);
    }
    pp_drain(&pp);
    return hs_npu_core_status(c);
}

/* t = value over the block's piece, from one duplicated tile. */
static hs_status fill_block(hs_npu_kblock *blk, void *p)
{
    const convert_args *a = p;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    int64_t lo, hi;
    pp_block_range(blk, a->n, &lo, &hi);
    const int64_t len = hi - lo < a->T ? hi - lo : a->T;
    hs_npu_local x;
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, a->dst_dt, len, &x));
    hs_npu_vdup(x, a->value, len);
    hs_npu_set_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE3, 0);
    hs_npu_wait_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE3, 0);
    for (int64_t i = lo; i < hi; i += len) {
        const int64_t k = hi - i < len ? hi - i : len;
        hs_npu_copy_out((void *)gm_at(a->dst, a->dst_dt, i), k, x, k, 1, k);
    }
    return hs_npu_core_status(c);
}

/* Launches fn over a->n elements with tiles of T elements, T chosen so
 * that `bytes_per_elem` bytes per element of tile fit the UB. */
static hs_status launch(const hs_device *dev, const char *name, convert_args *a, int64_t bytes_per_elem,
                        hs_npu_kernel_fn fn)
{
    hs_npu *d = dev->npu;
    a->T = (hs_npu_spec_of(d)->ub_bytes - SLACK) / bytes_per_elem / 64 * 64;
    if (a->T < 64)
        a->T = 64; /* a UB this small fails in hs_npu_alloc with the sizes named */
    const int64_t units = (a->n + 63) / 64, max = hs_npu_max_blocks(d, HS_NPU_LAUNCH_VECTOR);
    const hs_npu_operand ops[] = {{a->dst, a->n * (int64_t)hs_dtype_size(a->dst_dt)},
                                  {a->src, a->n * (int64_t)hs_dtype_size(a->src_dt)}};
    const int64_t dims[] = {a->dst_dt, a->src_dt, a->n};
    hs_npu_key key;
    HS_NPU_KEY_OF(&key, ops, dims);
    key.independent = 1;
    return hs_npu_launch_cached(d, dev->stream, name, HS_NPU_LAUNCH_VECTOR,
                                (int)(units < max ? units : max), fn, a, &key);
}

hs_status hs_npu_cast(const hs_device *dev, void *dst, hs_dtype dst_dt, const void *src, hs_dtype src_dt, int64_t n)
{
    convert_args a = {.dst = dst, .src = src, .dst_dt = dst_dt, .src_dt = src_dt, .n = n};
    const int64_t per_elem = 2 * (int64_t)(hs_dtype_size(dst_dt) + hs_dtype_size(src_dt)); /* two sets */
    return launch(dev, "cast", &a, per_elem, cast_block);
}

hs_status hs_npu_fill(const hs_device *dev, void *dst, hs_dtype dt, float value, int64_t n)
{
    convert_args a = {.dst = dst, .dst_dt = dt, .value = value, .n = n};
    return launch(dev, "fill", &a, (int64_t)hs_dtype_size(dt), fill_block);
}
