/* The step driver's private entry points: the config checks that need no
 * runtime (the engine's and the memory estimator's), and the whole
 * optimizer state of a ZeRO run for its checkpoints (engine_ckpt.c). */
#ifndef HS_TRAIN_ENGINE_CONFIG_H
#define HS_TRAIN_ENGINE_CONFIG_H

#include "hyperspeed/engine.h"

/* The size tags of *ec and the configs it holds, the micro-batch shape,
 * the ZeRO stage and the pipeline's tag budget: what hs_engine_new checks
 * before it looks at the runtime. Errors: HS_ERR_INVALID_ARGUMENT with
 * the message hs_engine_new gives. */
hs_status hs_engine_check_config(const hs_engine_config *ec);

/* Whether ZeRO-1 keeps the fp32 master sharded in the optimizer
 * (hs_model_shard.master_sharded): a 16-bit compute copy to gather, data
 * parallelism (dp: more than one DP rank), no optimizer offload (whose
 * master is the host's). The engine and the estimator ask alike. */
static inline int hs_engine_master_sharded(const hs_engine_config *ec, int dp)
{
    return ec->zero >= 1 && dp && ec->model.compute != HS_FP32 && !(ec->model.offload & HS_OFFLOAD_OPTIMIZER);
}

/* ZeRO-1 checkpoints: every chunk with a sharded optimizer gets its whole
 * AdamW state in host buffers (hs_optimizer_full_state), which
 * hs_optimizer_state then shows; with gather, the DP group's blocks are
 * all-gathered into them (a save; collective over each chunk's DP group).
 * hs_engine_drop_full_state releases them, first (scatter) copying each
 * rank's blocks back into its moments (a load). Nothing without ZeRO.
 * Errors: those of the buffers, the copies, the gathers. */
hs_status hs_engine_full_state(hs_engine *e, int gather);
hs_status hs_engine_drop_full_state(hs_engine *e, int scatter);

#endif
