/* The data-parallel reducer as a layer hook (dp_hook.h). */
#include "train/dp_hook.h"

hs_status hs_dp_layer_hook(void *dp, hs_model *m, const hs_layer_info *info)
{
    (void)m;
    return info->event == HS_AFTER_BACKWARD ? hs_dp_grads_ready(dp, info->grad_begin, info->grad_end) : HS_OK;
}
