/* The data-parallel reducer as a model layer hook (the step drivers'
 * shared piece): after each block's backward, its final gradients go to
 * their buckets, so each bucket's all-reduce starts as soon as the
 * backward has finished it. */
#ifndef HS_TRAIN_DP_HOOK_H
#define HS_TRAIN_DP_HOOK_H

#include "hyperspeed/model.h"
#include "hyperspeed/parallel.h"

/* hs_layer_hook_fn with ctx the hs_dp. */
hs_status hs_dp_layer_hook(void *dp, hs_model *m, const hs_layer_info *info);

#endif
