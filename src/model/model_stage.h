/* A model chunk's interface to the step driver (private: hs_engine's,
 * and the tests'). A chunk without the embedding takes the previous
 * stage's activations instead of tokens; one without the head hands its
 * output to the next stage instead of computing a loss, and its backward
 * starts from the gradient of that output. Boundary activations are fp32
 * [B, T, C], or [B, T/tp, C] (the rank's sequence slice) under sequence
 * parallelism. Also: the deferred embedding gradient (data parallelism
 * gathers its rows) and the shard <-> whole copies of checkpoints. */
#ifndef HS_MODEL_MODEL_STAGE_H
#define HS_MODEL_MODEL_STAGE_H

#include "hyperspeed/model.h"

/* Copies between shard p of TP rank tp_rank (host, p->numel floats) and
 * the whole logical tensor (host, logical_shape[0] x logical_shape[1]
 * floats): to_whole 1 places the shard's elements in the whole tensor, 0
 * takes them from it (vocabulary padding rows of the shard become 0). For
 * an unsplit entry a plain copy. What checkpoints of sharded layouts use.
 * Errors: HS_ERR_INVALID_ARGUMENT (NULL, a TP rank the split has no shard
 * for). */
hs_status hs_param_shard_copy(const hs_param_info *p, int tp_rank, float *shard, float *whole, int to_whole);
/* Rows of row block seg of entry p (0 <= seg < p->segments): in the whole
 * logical tensor (*whole) and in the shard (*held; a vocabulary's one block
 * counts its padding rows). */
void hs_param_segment_rows(const hs_param_info *p, int seg, int64_t *whole, int64_t *held);

/* Selects activation set `slot` (0 .. slots - 1) for the following
 * forwards, backwards and activation queries: each micro-batch in flight
 * keeps its own. Errors: HS_ERR_INVALID_ARGUMENT out of range. */
hs_status hs_model_set_slot(hs_model *m, int slot);

/* Elements of a boundary activation for a micro-batch of B x T:
 * B*T*C, or B*T*C / tp under sequence parallelism. */
int64_t hs_model_boundary_numel(const hs_model *m, int B, int T);

/* The current set's input buffer of a chunk without the embedding (fp32
 * on the model's device, room for the planned micro-batch): receive the
 * previous stage's output into it, then run hs_model_forward_stage with
 * input NULL. Errors: HS_ERR_INVALID_ARGUMENT for a chunk with the
 * embedding. */
hs_status hs_model_stage_input(hs_model *m, float **input);

/* Forward of one micro-batch through the chunk into the current set.
 * A chunk with the embedding takes tokens [B,T] (host; as
 * hs_model_forward), one without takes `input` (a boundary activation on
 * the model's device, copied in) or, with input NULL, what was written
 * into hs_model_stage_input. A chunk with the head takes targets (host,
 * or NULL for logits only) and sets *loss as hs_model_forward; other
 * chunks ignore them. Under sequence parallelism T must be a multiple of
 * tp. Errors: as hs_model_forward; HS_ERR_INVALID_ARGUMENT (tokens
 * missing for the first chunk, T not a multiple of tp under sequence
 * parallelism, no tensor-parallel group with tp > 1); the collectives'. */
hs_status hs_model_forward_stage(hs_model *m, const int32_t *tokens, const float *input, const int32_t *targets, int B,
                                 int T, float *loss);

/* The current set's output of a chunk without the head: the last layer's
 * activations (device; valid until this set's next forward). Errors:
 * HS_ERR_INVALID_ARGUMENT for the chunk with the head or before a
 * forward into this set. */
hs_status hs_model_stage_output(hs_model *m, const float **out);

/* Backward of the current set's forward, accumulating gradients as
 * hs_model_backward: a chunk with the head starts from its loss (scaled
 * by loss_scale; the forward must have had targets), any other from
 * dout = dL/d(output) (a boundary activation on the model's device;
 * loss_scale unused). A chunk without the embedding leaves dL/d(input) for
 * hs_model_stage_input_grad. Errors: HS_ERR_INVALID_ARGUMENT (no forward
 * into this set, dout missing), the kernels' and collectives'. */
hs_status hs_model_backward_stage(hs_model *m, const float *dout, float loss_scale);

/* dL/d(input) of the last backward of a chunk without the embedding
 * (device; valid until the next backward). Errors:
 * HS_ERR_INVALID_ARGUMENT for the chunk with the embedding. */
hs_status hs_model_stage_input_grad(hs_model *m, const float **grad);

/* Sums over the TP group the gradients each TP rank holds in part
 * (tp_partial: the norms' weights and biases under sequence parallelism,
 * each rank's backward seeing only its slice of the positions), so that
 * every replica has the whole gradient. Call once after the last backward
 * of a step. Nothing to do for tp = 1 or without sequence parallelism.
 * Errors: the collective's. */
hs_status hs_model_tp_reduce_grads(hs_model *m);

/* defer = 1: the following backward passes of a chunk with the
 * embedding leave out the embedding's gradient (the token rows of wte and
 * the position rows of wpe, or a TP rank's vocabulary rows): they stop at
 * dL/d(embedding output) (under sequence parallelism gathered to whole
 * sequences) and report the embedding's range to the hooks right after the
 * head (a chunk without the head: first), since nothing else of the
 * backward writes it (for a tied head, once the head's gradient is in); on
 * other chunks it changes nothing. The caller adds the
 * rows later with hs_model_embedding_backward, e.g. every data-parallel
 * rank's rows gathered (a sparse gradient is cheaper to gather than the
 * [V, C] table to all-reduce, and it is known only at the very end of the
 * backward). defer = 0 (the default): the backward does it all. */
void hs_model_defer_embedding_grad(hs_model *m, int defer);

/* The rows a deferred embedding gradient is made of, from the last
 * backward: *grad = dL/d(embedding output) [B*T, C] fp32 (whole sequences) and
 * *tokens = the token ids [B*T] int32, both on the model's device and owned by
 * the model (valid until the next forward), with *B, *T the micro-batch's
 * shape. Errors: HS_ERR_INVALID_ARGUMENT when the last backward did not
 * defer its embedding gradient. */
hs_status hs_model_embedding_grad_rows(hs_model *m, const float **grad, const int32_t **tokens, int *B, int *T);

/* Accumulates the embedding gradient of rows grad [B*T, C] for tokens
 * [B, T] (on the model's device; B may exceed the planned batch, e.g. the
 * rows of a whole data-parallel group) into the gradients of wte and, for
 * GPT-2, of wpe (row t of each sequence to position t). Errors:
 * HS_ERR_INVALID_ARGUMENT (NULL buffers, B < 1, T outside 1..planned seq),
 * the kernel's (a token outside the vocabulary). */
hs_status hs_model_embedding_backward(hs_model *m, const float *grad, const int32_t *tokens, int B, int T);

/* The registry hs_model_new_ex(cfg, batch, seq, opts) would build, without
 * allocating its buffers: *n entries' element counts in registry order
 * into *numel (malloc'd; the caller frees it) and the element count of
 * its entry flagged tied (hs_param_info.tied; 0: none) into *tied. What
 * the memory estimator plans buckets and shards from. Errors: those of
 * hs_model_new_ex's checks, HS_ERR_OUT_OF_MEMORY. */
hs_status hs_model_plan_tensors(const hs_model_config *cfg, int batch, int seq, const hs_model_options *opts,
                                int64_t **numel, int *n, int64_t *tied);

/* The micro-batch shape the model was planned for (hs_model_new's batch
 * and seq). */
void hs_model_planned_shape(const hs_model *m, int *batch, int *seq);

#endif
