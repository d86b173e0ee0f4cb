/* The step driver's config checks that need no runtime (private: the
 * engine's and the memory estimator's). */
#ifndef HS_TRAIN_ENGINE_CONFIG_H
#define HS_TRAIN_ENGINE_CONFIG_H

#include "hyperspeed/engine.h"

/* The size tags of *ec and the configs it holds, the micro-batch shape,
 * the ZeRO stage and the pipeline's tag budget: what hs_engine_new checks
 * before it looks at the runtime. Errors: HS_ERR_INVALID_ARGUMENT with
 * the message hs_engine_new gives. */
hs_status hs_engine_check_config(const hs_engine_config *ec);

#endif
