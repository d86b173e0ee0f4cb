/* The model's parameter registry, for the library's own layers that walk
 * it (the optimizer, data parallelism, checkpoints, the step drivers).
 * Callers outside the library use hs_model_tensor instead. */
#ifndef HS_MODEL_MODEL_REGISTRY_H
#define HS_MODEL_MODEL_REGISTRY_H

#include "memory/registry.h"

const hs_registry *hs_model_registry(const hs_model *m);

/* hs_model_sync_weights of the registry elements [lo, hi) only (a block's
 * parameters as their gather lands). */
hs_status hs_model_sync_weights_range(hs_model *m, int64_t lo, int64_t hi);

/* Host fp32 values src (NULL: none held, the copies' time only) of the
 * registry elements [lo, hi) into the device's compute copy (cast on the
 * host for a 16-bit one) and its fp32 copies of the entries the kernels
 * read, on stream s of the model's NPU (the CPU device: s NULL). What a
 * model whose master lives elsewhere (offloaded, or ZeRO-1's shards) is
 * refreshed with. Errors: the copies'. */
hs_status hs_model_upload_values(hs_model *m, int64_t lo, int64_t hi, const float *src, hs_npu_stream *s);

/* The initial values hs_model_init gives the registry elements [lo, hi),
 * into host memory dst: what a sharded optimizer starts its master shard
 * from. Errors: HS_ERR_OUT_OF_MEMORY. */
hs_status hs_model_init_range(hs_model *m, uint64_t seed, int64_t lo, int64_t hi, float *dst);

/* Under optimizer offload (registry values in the host pool): the master
 * elements [lo, hi) to the device, on stream s of the model's NPU (the
 * CPU device: s NULL): into the compute copy (cast on the host for a
 * 16-bit one) and the fp32 copies of the entries the kernels read. A no-op
 * without offload. Errors: the copies'. */
hs_status hs_model_upload_weights(hs_model *m, int64_t lo, int64_t hi, hs_npu_stream *s);

#endif
