/* Optimizer kernels on the NPU's vector cores, written against the
 * instruction API (npu_sim/isa.h): AdamW in PyTorch's order of operations,
 * the sum of squares for the global gradient norm, and in-place scaling.
 *
 * The flat buffers are split over the blocks of a VECTOR launch in pieces
 * of 64 floats (256 B); a block streams its piece in tiles of T floats
 * through two ping-pong buffer sets (MTE2 -> VECTOR -> MTE3 flags per set,
 * and MTE3 -> MTE2, or VECTOR -> MTE2 when nothing is stored, before a set
 * is refilled), so loads, compute and stores overlap.
 *
 * Sum of squares: the vector unit has no double, so each lane of a UB
 * accumulator sums x^2 of its position in every tile in fp32 (one vmla
 * per tile), the accumulator is folded pairwise (upper half onto lower)
 * down to one repeat of 64 lanes and reduced to the block's partial, and
 * the host adds the blocks' partials in double, in block order: relative
 * error ~1e-6 where the CPU's double sum has ~1e-16. Deterministic for a
 * given spec and size.
 */
#include "core/try.h"
#include "hyperspeed/kernels.h"
#include "kernels/npu/npu_kernels.h"
#include "kernels/npu/pingpong.h"
#include "npu_sim/isa.h"

#include <math.h>
#include <stdlib.h>

#define SLACK 1024 /* UB bytes left for alignment */

typedef struct optim_args {
    float *p, *m, *v, *part;
    const float *g;
    int64_t n, T;
    /* AdamW scalars, rounded to fp32 as the CPU body rounds them */
    float grad_scale, decay, beta1, one_minus_beta1, beta2, one_minus_beta2, inv_bc2_sqrt, eps, step_size;
} optim_args;

static int64_t tile_len(const optim_args *a, int64_t i, int64_t hi)
{
    return hi - i < a->T ? hi - i : a->T;
}

/* ------------------------------------------------------------------ AdamW */

/* Per element, with g = grad * grad_scale:
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
 *   p = p * decay - step_size * m / (sqrt(v) * (1 / sqrt(bc2)) + eps)
 * (decay = 1 - lr wd on the old p, step_size = lr / bc1). */
static hs_status adamw_block(hs_npu_kblock *blk, void *args)
{
    const optim_args *a = args;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    int64_t lo, hi;
    pp_block_range(blk, a->n, &lo, &hi);
    pingpong pp = {c, 0, {-1, -1}};
    hs_npu_local p[2], g[2], m[2], v[2];
    for (int b = 0; b < 2; b++) {
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->T, &p[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->T, &g[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->T, &m[b]));
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->T, &v[b]));
    }
    for (int64_t i = lo; i < hi; i += a->T) {
        const int64_t len = tile_len(a, i, hi);
        const int b = pp_begin(&pp);
        hs_npu_copy_in(p[b], len, a->p + i, len, 1, len);
        hs_npu_copy_in(g[b], len, a->g + i, len, 1, len);
        hs_npu_copy_in(m[b], len, a->m + i, len, 1, len);
        hs_npu_copy_in(v[b], len, a->v + i, len, 1, len);
        pp_loaded(&pp, b);
        hs_npu_vscalar(HS_V_MULS, g[b], g[b], a->grad_scale, len);
        hs_npu_vscalar(HS_V_MULS, m[b], m[b], a->beta1, len);
        hs_npu_vaxpy(m[b], g[b], a->one_minus_beta1, len);
        hs_npu_vbin(HS_V_MUL, g[b], g[b], g[b], len);
        hs_npu_vscalar(HS_V_MULS, v[b], v[b], a->beta2, len);
        hs_npu_vaxpy(v[b], g[b], a->one_minus_beta2, len);
        hs_npu_vunary(HS_V_SQRT, g[b], v[b], len);
        hs_npu_vscalar(HS_V_MULS, g[b], g[b], a->inv_bc2_sqrt, len);
        hs_npu_vscalar(HS_V_ADDS, g[b], g[b], a->eps, len);
        hs_npu_vbin(HS_V_DIV, g[b], m[b], g[b], len);
        hs_npu_vscalar(HS_V_MULS, p[b], p[b], a->decay, len);
        hs_npu_vaxpy(p[b], g[b], -a->step_size, len);
        pp_computed(&pp, b);
        hs_npu_copy_out(a->p + i, len, p[b], len, 1, len);
        hs_npu_copy_out(a->m + i, len, m[b], len, 1, len);
        hs_npu_copy_out(a->v + i, len, v[b], len, 1, len);
        pp_end(&pp, b, HS_PIPE_MTE3);
    }
    pp_drain(&pp);
    return hs_npu_core_status(c);
}

/* Blocks for n elements: one per 64-float piece, at most the vector cores. */
static int blocks_for(const hs_npu *d, int64_t n)
{
    const int64_t units = (n + 63) / 64, max = hs_npu_max_blocks(d, HS_NPU_LAUNCH_VECTOR);
    return (int)(units < max ? units : max);
}

/* Tile floats for `bufs` buffers per ping-pong set and `single` others. */
static int64_t tile_for(const hs_npu *d, int bufs, int single, int64_t fixed)
{
    const int64_t T = (hs_npu_spec_of(d)->ub_bytes - SLACK - fixed) / 4 / (2 * bufs + single) / 64 * 64;
    return T < 64 ? 64 : T; /* a UB this small fails in hs_npu_alloc with the sizes named */
}

/* Launches fn over a->n elements. The key holds the operands and n, not
 * the scalars (the learning rate changes every step, the cost never). */
static hs_status launch(const hs_device *dev, const char *name, hs_npu_kernel_fn fn, optim_args *a)
{
    hs_npu *d = dev->npu;
    const int64_t n4 = 4 * a->n;
    const hs_npu_operand ops[] = {{a->p, n4}, {a->m, n4}, {a->v, n4}, {a->part, 4 * (int64_t)blocks_for(d, a->n)}, {a->g, n4}};
    const int64_t dims[] = {a->n, a->T};
    hs_npu_key key;
    HS_NPU_KEY_OF(&key, ops, dims);
    key.independent = 1;
    return hs_npu_launch_cached(d, dev->stream, name, HS_NPU_LAUNCH_VECTOR, blocks_for(d, a->n), fn, a,
                                &key);
}

hs_status hs_npu_adamw_update(const hs_device *dev, float *param, const float *grad, float *m, float *v, int64_t n,
                              const hs_adamw_params *hp)
{
    hs_npu *d = dev->npu;
    const double step = (double)hp->step, lr = hp->lr;
    const double bc1 = 1.0 - pow(hp->beta1, step), bc2 = 1.0 - pow(hp->beta2, step);
    optim_args a = {
        .p = param,
        .m = m,
        .v = v,
        .g = grad,
        .n = n,
        .T = tile_for(d, 4, 0, 0),
        .grad_scale = hp->grad_scale,
        .decay = (float)(1.0 - lr * hp->weight_decay),
        .beta1 = hp->beta1,
        .one_minus_beta1 = (float)(1.0 - hp->beta1),
        .beta2 = hp->beta2,
        .one_minus_beta2 = (float)(1.0 - hp->beta2),
        .inv_bc2_sqrt = (float)(1.0 / sqrt(bc2)),
        .eps = hp->eps,
        .step_size = (float)(lr / bc1),
    };
    return launch(dev, "adamw", adamw_block, &a);
}

/* ------------------------------------------------------- sum of squares */

/* part[block] = sum over the block's elements of x^2 (see the top). */
static hs_status sumsq_block(hs_npu_kblock *blk, void *args)
{
    const optim_args *a = args;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    int64_t lo, hi;
    pp_block_range(blk, a->n, &lo, &hi);
    pingpong pp = {c, 0, {-1, -1}};
    hs_npu_local x[2], acc;
    for (int b = 0; b < 2; b++)
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->T, &x[b]));
    HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->T, &acc));
    hs_npu_vdup(acc, 0.0f, a->T);
    for (int64_t i = lo; i < hi; i += a->T) {
        const int64_t len = tile_len(a, i, hi);
        const int b = pp_begin(&pp);
        hs_npu_copy_in(x[b], len, a->g + i, len, 1, len);
        pp_loaded(&pp, b);
        hs_npu_vmla(acc, x[b], x[b], len);
        pp_end(&pp, b, HS_PIPE_VECTOR);
    }
    pp_drain(&pp);
    for (int64_t len = a->T; len > 64;) { /* pairwise: fold the upper half onto the lower */
        const int64_t m = (len / 2 + 63) / 64 * 64;
        hs_npu_vbin(HS_V_ADD, acc, acc, hs_npu_sub(acc, m, len - m), len - m);
        len = m;
    }
    hs_npu_vreduce_sum(acc, acc, 64);
    hs_npu_set_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE3, 2);
    hs_npu_wait_flag(c, HS_PIPE_VECTOR, HS_PIPE_MTE3, 2);
    hs_npu_copy_out(a->part + hs_npu_kblock_idx(blk), 1, acc, 1, 1, 1);
    return hs_npu_core_status(c);
}

hs_status hs_npu_sum_squares(const hs_device *dev, const hs_tensor *x, int count, double *sum)
{
    hs_npu *d = dev->npu;
    const int max = hs_npu_max_blocks(d, HS_NPU_LAUNCH_VECTOR);
    const size_t slots = (size_t)count * (size_t)max;
    float *part = NULL, *host = calloc(slots ? slots : 1, sizeof *host);
    if (!host)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_grad_norm: %zu partial sums", slots);
    hs_status st = slots ? hs_npu_malloc(d, slots * sizeof(float), (void **)&part) : HS_OK;
    for (int i = 0; i < count && st == HS_OK; i++) {
        const int64_t n = hs_tensor_numel(&x[i]);
        optim_args a = {.part = part + (size_t)i * (size_t)max, .g = x[i].data, .n = n, .T = tile_for(d, 1, 1, 0)};
        st = launch(dev, "sum_squares", sumsq_block, &a);
    }
    if (st == HS_OK && slots)
        st = hs_npu_memcpy_d2h(d, dev->stream, host, part, slots * sizeof(float));
    double s = 0.0;
    for (int i = 0; i < count; i++)
        for (int b = 0; b < blocks_for(d, hs_tensor_numel(&x[i])); b++)
            s += host[(size_t)i * (size_t)max + (size_t)b];
    hs_npu_free_mem(d, part);
    free(host);
    *sum = s;
    return st;
}

/* ------------------------------------------------------------------ scale */

/* x *= scale, tile by tile. */
static hs_status scale_block(hs_npu_kblock *blk, void *args)
{
    const optim_args *a = args;
    hs_npu_core *c = hs_npu_kblock_aiv(blk, 0);
    int64_t lo, hi;
    pp_block_range(blk, a->n, &lo, &hi);
    pingpong pp = {c, 0, {-1, -1}};
    hs_npu_local x[2];
    for (int b = 0; b < 2; b++)
        HS_TRY(hs_npu_alloc(c, HS_BUF_UB, HS_FP32, a->T, &x[b]));
    for (int64_t i = lo; i < hi; i += a->T) {
        const int64_t len = tile_len(a, i, hi);
        const int b = pp_begin(&pp);
        hs_npu_copy_in(x[b], len, a->p + i, len, 1, len);
        pp_loaded(&pp, b);
        hs_npu_vscalar(HS_V_MULS, x[b], x[b], a->grad_scale, len);
        pp_computed(&pp, b);
        hs_npu_copy_out(a->p + i, len, x[b], len, 1, len);
        pp_end(&pp, b, HS_PIPE_MTE3);
    }
    pp_drain(&pp);
    return hs_npu_core_status(c);
}

hs_status hs_npu_scale(const hs_device *dev, float *x, int64_t n, float scale)
{
    hs_npu *d = dev->npu;
    optim_args a = {.p = x, .n = n, .T = tile_for(d, 1, 0, 0), .grad_scale = scale};
    return launch(dev, "scale", scale_block, &a);
}
