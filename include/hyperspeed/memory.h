/* hyperspeed memory: the memory estimator (docs/memory.md).
 *
 * hs_memory_estimate gives every rank's bytes for a training run before
 * anything is allocated: the same plan the engine allocates from (the
 * model's registry and activation arena, AdamW's moments or their ZeRO
 * shard, the data-parallel reducer's and the pipeline's buffers, the
 * largest kernel workspace), added up as the device's allocator rounds
 * them. hs_zero_state_bytes is the ZeRO paper's model of the training
 * state alone (Rajbhandari et al., SC20, Table 1). */
#ifndef HYPERSPEED_MEMORY_H
#define HYPERSPEED_MEMORY_H

#include "hyperspeed/engine.h"
#include "hyperspeed/npu.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes per parameter of each part of the training state, as the ZeRO
 * paper counts them: mixed-precision Adam keeps 2 (fp16 parameters), 2
 * (fp16 gradients) and K = 12 (fp32 master copy, momentum, variance). */
typedef struct hs_zero_state {
    double params;    /* what the forward reads */
    double grads;     /* what the backward writes */
    double optimizer; /* K: everything only the optimizer reads */
} hs_zero_state;

/* Per-rank bytes of the state of psi parameters over n data-parallel ranks
 * under ZeRO stage `zero`: stage 1 shards the optimizer's part, 2 the
 * gradients too, 3 the parameters too (p, g, K bytes per parameter):
 *   0: (p + g + K) psi          1: (p + g) psi + K psi / n
 *   2: p psi + (g + K) psi / n  3: (p + g + K) psi / n
 * Returns -1 for zero outside 0..3, n < 1 or s NULL. */
HS_API double hs_zero_state_bytes(double psi, int n, int zero, const hs_zero_state *s);

/* One rank's memory in a training run, bytes. The device fields are HBM
 * on the NPU and the library's host allocations on the CPU device. */
typedef struct hs_memory_rank {
    int rank, tp_rank, dp_rank, pp_rank; /* world rank and grid coordinates (TP innermost, then DP, then PP) */
    int64_t params;     /* parameters of the rank's chunks (its TP shard) */
    size_t weights;     /* fp32 values + the 16-bit compute copy (16-bit compute); offloaded, or ZeRO-1 with
                           16-bit compute: the compute copy + fp32 copies of norm weights, biases and
                           embeddings (+ ZeRO-1: the fp32 master of the rank's blocks) */
    size_t gradients;   /* fp32 */
    size_t optimizer;   /* AdamW's m and v: every parameter's, or (ZeRO-1) the rank's blocks'; 0 offloaded */
    size_t activations; /* the activation arenas: in_flight sets of act_per_micro_batch, plus act_shared */
    size_t act_per_micro_batch; /* one micro-batch's activations, summed over the rank's chunks */
    size_t act_shared;  /* the arenas' scratch shared by the sets (gradient scratch, recompute scratch) */
    int in_flight;      /* activation sets of the rank's first chunk (the schedule's micro-batches in flight) */
    size_t workspace;   /* the largest transient kernel workspace (NPU; 0 on the CPU) */
    size_t comm;        /* pipeline boundary buffers, DP's gathered embedding rows, the tied head's exchange */
    size_t device;      /* the sum of the fields above: the peak of a step */
    size_t host;        /* host offload: the pool (fp32 master, AdamW moments, on the NPU the gradients'
                           copy; offloaded activations); 0 without offload */
} hs_memory_rank;

/* Fills ranks[0 .. world) for training cfg with engine config *ec on a
 * world of `world` ranks (tp x pp x dp: dp = world / (tp * pp)), as
 * hs_engine_new on each rank would allocate (ec->model.npu is not used;
 * for ec->model.device == HS_DEVICE_NPU, spec is the NPU's, whose kernels'
 * block counts size their workspace). Nothing is allocated on a device.
 * Errors: HS_ERR_INVALID_ARGUMENT (NULL arguments; world not a multiple
 * of tp x pp; an NPU run without spec; what hs_engine_new would refuse:
 * the layout, ZeRO stage, recompute), HS_ERR_OUT_OF_MEMORY (host). */
HS_API hs_status hs_memory_estimate(const hs_model_config *cfg, const hs_engine_config *ec, int world,
                                    const hs_npu_spec *spec, hs_memory_rank *ranks);

/* The host offload pool's bytes in use and their peak since the process
 * started or the last hs_offload_mem_reset_peak (which sets the peak to
 * what is in use): the state an offloading run holds on the host, NUMA-
 * local. An estimate-mode NPU run counts its pool without allocating it. */
HS_API size_t hs_offload_mem_used(void);
HS_API size_t hs_offload_mem_peak(void);
HS_API void hs_offload_mem_reset_peak(void);

#ifdef __cplusplus
}
#endif

#endif
