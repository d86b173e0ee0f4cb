/* The model's parameter registry, for the library's own layers that walk
 * it (the optimizer, data parallelism, checkpoints, the step drivers).
 * Callers outside the library use hs_model_tensor instead. */
#ifndef HS_MODEL_MODEL_REGISTRY_H
#define HS_MODEL_MODEL_REGISTRY_H

#include "memory/registry.h"

const hs_registry *hs_model_registry(const hs_model *m);

#endif
