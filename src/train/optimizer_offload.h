/* Optimizer offload (docs/memory.md "Host offload"): AdamW's moments, and
 * on the NPU a host copy of the gradients, in the host pool beside the
 * registry's fp32 master; AdamW runs on the host, a tile at a time: on
 * the NPU each tile's gradients come down on a copy stream, its update
 * runs on a host stream (bytes / the host memory bandwidth in the
 * simulated timeline), and its weights go back up on a third stream, so
 * the three overlap. The private half of hs_optimizer (optimizer.c). */
#ifndef HS_TRAIN_OPTIMIZER_OFFLOAD_H
#define HS_TRAIN_OPTIMIZER_OFFLOAD_H

#include "hyperspeed/kernels.h"
#include "hyperspeed/model.h"

typedef struct hs_offload_state hs_offload_state;

/* The host state of an optimizer over n elements of model m's registry
 * (whose values are offloaded). Errors: HS_ERR_OUT_OF_MEMORY (host pool,
 * NPU streams). */
hs_status hs_offload_state_new(hs_model *m, int64_t n, hs_offload_state **out);
void hs_offload_state_free(hs_offload_state *s);
/* Moment 0 (m) or 1 (v): n floats in the pool (NULL when it only counts). */
float *hs_offload_state_moment(hs_offload_state *s, int which);

/* A step's update: begin (the copies wait for the backward's gradients),
 * then AdamW over registry elements [lo, hi) with their moments at
 * `moment` (and, with upload, their weights back to the device), then
 * finish (the device's stream waits for the last upload). */
void hs_offload_begin(hs_offload_state *s);
hs_status hs_offload_adamw(hs_offload_state *s, int64_t lo, int64_t hi, int64_t moment, const hs_adamw_params *ap,
                           int upload);
hs_status hs_offload_finish(hs_offload_state *s);

#endif
