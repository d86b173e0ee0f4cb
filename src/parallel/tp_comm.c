/* The tensor-parallel layers' collectives on host memory or an NPU's HBM
 * (parallel/tp_comm.h): the values move through MPI where there
 * are values (host, execute-mode NPU, whose HBM is host memory), and the
 * NPU's current stream is advanced by the HCCL cost of the same
 * collective. */
#include "core/try.h"
#include "parallel/tp_comm.h"

/* 1 when the buffers hold values (host memory or an execute-mode NPU). */
static int has_values(const hs_npu *npu) { return !npu || hs_npu_mode_of(npu) == HS_NPU_EXECUTE; }

/* The simulated time of collective c of `bytes` (per rank, as HCCL counts
 * it) on the stream the model's kernels run on, the NPU's default stream. */
static hs_status simulate(hs_comm *tp, hs_npu *npu, hs_coll c, double bytes)
{
    if (!npu)
        return HS_OK;
    return hs_comm_advance(tp, hs_npu_default_stream(npu), c, bytes, NULL);
}

hs_status hs_tp_allreduce(hs_comm *tp, hs_npu *npu, float *buf, int64_t n, hs_reduce_op op)
{
    if (!tp || !buf || n < 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_tp_allreduce: NULL group or buffer, or n=%lld < 1",
                        (long long)n);
    if (has_values(npu))
        HS_TRY(hs_comm_allreduce(tp, buf, buf, (size_t)n, HS_FP32, op));
    return simulate(tp, npu, HS_COLL_ALLREDUCE, (double)n * sizeof(float));
}

hs_status hs_tp_gather(hs_comm *tp, hs_npu *npu, const void *local, void *full, int64_t B, int64_t T, int64_t C,
                       hs_dtype dt, void *scratch)
{
    if (has_values(npu))
        HS_TRY(hs_sp_gather(tp, local, full, B, T, C, dt, scratch));
    else if (!tp || T % hs_comm_size(tp) != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_tp_gather: no group, or T=%lld not a multiple of it",
                        (long long)T);
    return simulate(tp, npu, HS_COLL_ALLGATHER, (double)(B * T * C) * (double)hs_dtype_size(dt));
}

hs_status hs_tp_reduce_scatter(hs_comm *tp, hs_npu *npu, const float *full, float *local, int64_t B, int64_t T,
                               int64_t C, float *scratch)
{
    if (has_values(npu))
        HS_TRY(hs_sp_reduce_scatter(tp, full, local, B, T, C, scratch));
    else if (!tp || T % hs_comm_size(tp) != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_tp_reduce_scatter: no group, or T=%lld not a multiple of it",
                        (long long)T);
    return simulate(tp, npu, HS_COLL_REDUCE_SCATTER, (double)(B * T * C) * sizeof(float));
}
