/* The global gradient norm of model parallelism (private to the step
 * driver): it spans every tensor- and pipeline-parallel rank's shard, each
 * tensor counted once; each rank gives its share, the driver sums the
 * shares over the layout and hands the norm back for the clip scale. The
 * share of a registry range: the pipeline's tied embedding is exchanged
 * between the first and the last stage while the rest of the norm is
 * computed, so the step sums the squares outside the range first and
 * those inside it once the exchange has landed. */
#ifndef HS_TRAIN_OPTIMIZER_NORM_H
#define HS_TRAIN_OPTIMIZER_NORM_H

#include "hyperspeed/train.h"

/* This rank's share: *sumsq = the sum of squares (in double) of the
 * gradients of the registry entries it owns for the norm
 * (hs_param_info.norm_owner). Errors: HS_ERR_INVALID_ARGUMENT, the kernel's. */
hs_status hs_optimizer_grad_sumsq(hs_optimizer *o, double *sumsq);

/* ZeRO-1 (the distributed optimizer): an optimizer of model m whose
 * moments, update and norm share cover this DP rank's blocks
 * [offset[i], offset[i] + numel[i]) of the flat buffer only (ascending and
 * disjoint: the DP reducer's shard, hs_dp_shard_of), about 1/dp of the
 * state. It steps with hs_optimizer_step_norm and the group's norm (its
 * hs_optimizer_grad_sumsq is the rank's share, to be summed over the DP
 * group too), updates the values of its blocks only and leaves the
 * compute-dtype copy to the caller, who gathers the blocks
 * (hs_dp_gather_params) and then calls hs_model_sync_weights.
 * hs_optimizer_step and hs_optimizer_state refuse it. Errors: those of
 * hs_optimizer_new, HS_ERR_INVALID_ARGUMENT for blocks that are not
 * ascending, disjoint and inside the buffer. */
hs_status hs_optimizer_new_sharded(hs_model *m, const hs_optimizer_config *cfg, const int64_t *offset,
                                   const int64_t *numel, int n_blocks, hs_optimizer **out);

/* Checkpoints of a sharded optimizer: hs_optimizer_full_state allocates
 * host buffers of the model's every parameter (*m, *v, and with the
 * master *p) holding this rank's blocks at their registry offsets (the rest zero:
 * the caller gathers the group's blocks into them, hs_dp_gather_params);
 * until hs_optimizer_drop_full_state, hs_optimizer_state returns views of
 * them (host memory). drop with scatter = 1 first copies the rank's blocks
 * back into the moments (a load). Errors: HS_ERR_INVALID_ARGUMENT (not
 * sharded, or already full), HS_ERR_OUT_OF_MEMORY, the copies'. */
hs_status hs_optimizer_full_state(hs_optimizer *o, float **m, float **v, float **p);
hs_status hs_optimizer_drop_full_state(hs_optimizer *o, int scatter);

/* The fp32 master of a sharded optimizer whose model keeps no whole
 * values (hs_model_shard.master_sharded: ZeRO-1 with a 16-bit compute
 * copy): it holds the master of its blocks beside the moments, starts it
 * from the model's initial values (hs_optimizer_init_master, after
 * hs_model_init), and after each step casts its blocks into the model's
 * compute copy and writes its pieces of the fp32 copies the kernels read
 * into them, zeroed elsewhere: the caller all-gathers the compute copy
 * and sums those copies over the DP group. During a checkpoint (full
 * state, *p above: NULL for an optimizer without the master) entry i's
 * whole master is hs_optimizer_master_view's (host); dropping the full
 * state with scatter refreshes the model's copies from it. */
int hs_optimizer_holds_master(const hs_optimizer *o);
hs_status hs_optimizer_init_master(hs_optimizer *o, uint64_t seed);
hs_status hs_optimizer_master_view(const hs_optimizer *o, int i, hs_tensor *out);

/* hs_optimizer_step with the global gradient norm given (the square root
 * of the sum of every model-parallel rank's hs_optimizer_grad_sumsq) for
 * the clip scale. Errors: as hs_optimizer_step, a negative or NaN norm. */
hs_status hs_optimizer_step_norm(hs_optimizer *o, float lr, double norm);

/* *sumsq = the sum of squares (in double) of the gradients o's rank owns
 * for the norm (hs_param_info.norm_owner) inside [begin, end) of the
 * registry's offsets (inside = 1), or outside it (inside = 0); the two add
 * up to hs_optimizer_grad_sumsq. Allocates nothing. Errors: the kernel's. */
hs_status hs_optimizer_grad_sumsq_part(hs_optimizer *o, int64_t begin, int64_t end, int inside, double *sumsq);

#endif
