/* Activation offload (hs_offload ACTIVATIONS, docs/memory.md): a set's
 * layers take HS_ACT_RING device regions in turn; a layer's region goes to
 * the host pool after its forward and comes back before its backward (on
 * the NPU on a copy stream of its own, the compute stream waiting only
 * where it must: before a forward overwrites a region still going out,
 * before a backward reads a region still coming in). Private to the model. */
#ifndef HS_MODEL_ACT_OFFLOAD_H
#define HS_MODEL_ACT_OFFLOAD_H

#include "model/model_internal.h"

/* The host pool's bytes of the model's sets (0 without activation offload). */
size_t hs_act_offload_host_bytes(const hs_model *m);
/* The sets' host regions, the copy stream and events (after the arena is
 * laid out); released by hs_act_offload_free. Errors: HS_ERR_OUT_OF_MEMORY. */
hs_status hs_act_offload_alloc(hs_model *m);
void hs_act_offload_free(hs_model *m);

/* Around the current set's layer l: before its forward (its region's
 * previous layer has left), after it (the region goes out), before its
 * backward (layers l and l - 1 in, l - 2 prefetched). No-ops without
 * activation offload. Errors: the copies'. */
hs_status hs_act_before_forward(hs_model *m, int l);
hs_status hs_act_after_forward(hs_model *m, int l);
hs_status hs_act_before_backward(hs_model *m, int l);

#endif
