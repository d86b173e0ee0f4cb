/* The reducer's bucket plan as hs_dp_new makes it from its config
 * (private: the reducer's and the memory estimator's, which must agree). */
#ifndef HS_PARALLEL_DP_PLAN_H
#define HS_PARALLEL_DP_PLAN_H

#include "hyperspeed/parallel.h"

/* hs_dp_plan_buckets of fp32 tensors with cfg's bucket size; with
 * cfg->first_alone, tensor 0 in a bucket of its own (the last, at offset
 * 0) and the others planned without it. out has room for n_tensors. */
hs_status hs_dp_plan(const hs_dp_config *cfg, const int64_t *numel, int n_tensors, hs_dp_bucket *out,
                     int *n_buckets);

#endif
