/* Whole-model views for the tests: a model's values and gradients as the
 * flat buffers the registry stores them in (src/memory/registry.h), so a
 * test can compare or perturb every parameter at once. The public API
 * gives per-entry tensors (hs_model_tensor); these are the library's
 * private layout. */
#ifndef HS_TEST_MODEL_FLAT_H
#define HS_TEST_MODEL_FLAT_H

#include "model/model_registry.h"

static inline float *flat_params(hs_model *m) { return hs_model_registry(m)->value; }
static inline float *flat_grads(hs_model *m) { return hs_model_registry(m)->grad; }

#endif
