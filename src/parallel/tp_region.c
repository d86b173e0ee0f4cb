/* The tensor-parallel regions of a model chunk (tp_region.h). */
#include "parallel/tp_region.h"

#include "core/try.h"
#include "hyperspeed/kernels.h"

/* dst [n] (compute dtype) = src [n] fp32 rounded. */
static hs_status round_to_compute(const hs_tp_region *r, void *dst, float *src, int64_t n)
{
    hs_tensor d = hs_view1(dst, r->compute, n), s = hs_view1(src, HS_FP32, n);
    d.device = s.device = r->dev;
    return hs_cast(&d, &s);
}

hs_status hs_tp_region_enter(const hs_tp_region *r, void *dst, float *x, int B, int T)
{
    const int64_t N = (int64_t)B * T, C = r->width;
    if (!r->sp)
        return r->compute == HS_FP32 ? HS_OK : round_to_compute(r, dst, x, N * C);
    void *slice = x;
    if (r->compute != HS_FP32) { /* full ([N,C] fp32) is free here and holds the [Ns,C] 16-bit slice */
        slice = r->full;
        HS_TRY(round_to_compute(r, slice, x, N / r->tp * C));
    }
    return hs_tp_gather(r->comm, r->npu, slice, dst, B, T, C, r->compute, r->tmp);
}

float *hs_tp_region_col_dinp(const hs_tp_region *r, float *dst) { return r->sp ? r->dfull : dst; }

/* out [Ns,C] = the sum over the group of the ranks' partial [N,C]: out
 * itself all-reduced, or (sequence parallelism) `partial` reduce-scattered. */
static hs_status sum_partials(const hs_tp_region *r, const float *partial, float *out, int B, int T)
{
    const int64_t N = (int64_t)B * T, C = r->width;
    if (r->tp == 1)
        return HS_OK;
    if (!r->sp)
        return hs_tp_allreduce(r->comm, r->npu, out, N * C, HS_REDUCE_SUM);
    return hs_tp_reduce_scatter(r->comm, r->npu, partial, out, B, T, C, r->tmp);
}

hs_status hs_tp_region_enter_backward(const hs_tp_region *r, float *dst, int B, int T)
{
    return sum_partials(r, r->dfull, dst, B, T);
}

float *hs_tp_region_row_out(const hs_tp_region *r, float *out) { return r->sp ? r->full : out; }

hs_status hs_tp_region_exit(const hs_tp_region *r, float *out, int B, int T)
{
    return sum_partials(r, r->full, out, B, T);
}

hs_status hs_tp_region_exit_backward(const hs_tp_region *r, float *dout, int B, int T, float **full)
{
    *full = dout;
    if (!r->sp)
        return HS_OK;
    *full = r->dfull;
    return hs_tp_gather(r->comm, r->npu, dout, r->dfull, B, T, r->width, HS_FP32, r->tmp);
}
