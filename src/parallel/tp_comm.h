/* Sequence-parallel regions of tensor parallelism (Megatron-LM's sequence
 * parallelism, Korthikanti et al. 2022). Outside the tensor-parallel
 * regions (norms, dropout, residuals) each rank of the TP group holds a
 * slice of the sequence: of activations [B, T, C], rank r holds
 * [B, T/tp, C], the rows r T/tp .. (r+1) T/tp - 1 of every sequence.
 * Entering a TP region all-gathers the sequence; leaving it
 * reduce-scatters the partial sums of a row-parallel layer back to the
 * slices (instead of one all-reduce, the same bytes in two halves). Our
 * activations are batch-major, so the gathered blocks [tp][B][T/tp][C]
 * are permuted into [B][T][C] (and back) through a scratch buffer. Host
 * memory (CPU device) fp32 buffers. Private to the library: the layers
 * reach them through the TP regions (tp_region.h). */
#ifndef HS_PARALLEL_TP_COMM_H
#define HS_PARALLEL_TP_COMM_H

#include "hyperspeed/comm.h"
#include "hyperspeed/core.h"
#include "hyperspeed/npu.h"

/* full[B, T, C] = the TP group's slices local[B, T/tp, C] in rank order
 * along T, elements of dtype dt (fp32, or a 16-bit compute dtype: the
 * forward gathers what its matmul reads, half the bytes, as Megatron
 * does). scratch: B T C elements. Errors: HS_ERR_INVALID_ARGUMENT (NULL
 * buffer, sizes < 1, T not a multiple of the group size), HS_ERR_DTYPE,
 * the collective's. */
hs_status hs_sp_gather(hs_comm *tp, const void *local, void *full, int64_t B, int64_t T, int64_t C,
                              hs_dtype dt, void *scratch);

/* local[B, T/tp, C] = this rank's slice along T of the sum over the group
 * of full[B, T, C]. scratch: B T C floats (full may be scratch's
 * neighbour, not scratch itself). Errors: as hs_sp_gather. */
hs_status hs_sp_reduce_scatter(hs_comm *tp, const float *full, float *local, int64_t B, int64_t T, int64_t C,
                                      float *scratch);

/* ---- the collectives of the tensor-parallel layers, on either device ----
 * The model's layers call these with their buffers on the model's device:
 * npu NULL for host memory, else the NPU the buffers live in. On an NPU
 * each collective also advances the device's current stream by its HCCL
 * cost on the TP group (hs_comm_advance): TP collectives sit between
 * dependent kernels, so the compute stream waits for them. An
 * estimate-mode NPU has no values: only the time is taken (every rank of
 * the group runs the same mode, so none of them calls MPI). */

/* buf[0 .. n) = op over the group of buf (fp32, in place). Errors: as
 * hs_comm_allreduce, hs_comm_advance. */
hs_status hs_tp_allreduce(hs_comm *tp, hs_npu *npu, float *buf, int64_t n, hs_reduce_op op);

/* hs_sp_gather / hs_sp_reduce_scatter on the model's device. */
hs_status hs_tp_gather(hs_comm *tp, hs_npu *npu, const void *local, void *full, int64_t B, int64_t T,
                              int64_t C, hs_dtype dt, void *scratch);
hs_status hs_tp_reduce_scatter(hs_comm *tp, hs_npu *npu, const float *full, float *local, int64_t B,
                                      int64_t T, int64_t C, float *scratch);


#endif
