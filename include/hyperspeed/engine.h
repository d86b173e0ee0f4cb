/* hyperspeed engine: one rank's part of a tensor x pipeline x data
 * parallel training run (docs/parallelism.md).
 *
 * The runtime's grid says where this rank sits: its TP group shares every
 * layer's weights by shards (hs_model_shard), its pipeline stage holds
 * `virtual_stages` chunks of layers, its DP group holds the same shards
 * and averages their gradients. A training step runs the stage's pipeline
 * schedule (GPipe, 1F1B or interleaved 1F1B) over the micro-batches:
 * forward and backward passes of its chunks, the boundary activations
 * going forward and their gradients back by asynchronous point-to-point
 * messages, each receive posted one operation ahead so it lands while the
 * current micro-batch computes. Then the gradients are summed where they
 * are split (sequence-parallel norms over TP, the tied embedding between
 * the first and the last stage) and reduced over DP, the global gradient
 * norm is taken over every model-parallel rank, and AdamW updates every
 * chunk. Every layout reproduces the single-rank run.
 *
 * On a simulated NPU each rank has its own device: the messages carry the
 * sender's simulated time, a receiver's stream waits for it (an "idle"
 * slice in the trace: the pipeline bubble made visible), the TP
 * collectives advance the stream by their HCCL cost.
 */
#ifndef HYPERSPEED_ENGINE_H
#define HYPERSPEED_ENGINE_H

#include "hyperspeed/comm.h"
#include "hyperspeed/layout.h"
#include "hyperspeed/model.h"
#include "hyperspeed/parallel.h"
#include "hyperspeed/train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hs_engine_config {
    size_t size; /* its version: sizeof the struct in the caller's build, set by the *_default() (api.md) */
    hs_layout layout;          /* tp, pp, sequence_parallel, schedule, virtual_stages, micro_batches;
                                  tp and pp must be the runtime's; layout.seq is taken from `seq` */
    int micro_batch;           /* sequences per micro-batch (>= 1) */
    int seq;                   /* tokens per sequence */
    hs_model_options model;    /* device, npu (this rank's own), compute dtype; the shard is the engine's */
    hs_optimizer_config optim; /* AdamW and clipping */
    hs_dp_config dp;           /* bucket size and overlap of the DP reduction (op, npu, shard: the engine's) */
    int zero;                  /* ZeRO stage over each chunk's DP group: 0 (none, default) or 1 (the
                                  distributed optimizer: AdamW's moments sharded, gradients
                                  reduce-scattered, parameters all-gathered after the step) */
    int overlap_param_gather;  /* ZeRO: 1 starts the parameters' all-gather after the step and lets each
                                  block's forward wait for its own buckets only (Megatron's
                                  --overlap-param-gather); 0 (default): the step waits for all of them */
} hs_engine_config;

/* The default layout (hs_layout_default), micro_batch 1, seq 64, the
 * default model options, optimizer and DP configs. */
HS_API hs_engine_config hs_engine_config_default(void);

typedef struct hs_engine hs_engine;

/* Builds this rank's chunks (hs_model_new_ex with their shards), their
 * optimizers and DP reducers, the schedule and every buffer a step needs,
 * so steps allocate nothing. Every rank of the world calls it with the
 * same arguments. Errors: HS_ERR_INVALID_ARGUMENT (hs_layout_check's
 * rules with their messages, a layout whose tp or pp differ from the
 * runtime's grid, more micro-batches x chunks than point-to-point tags,
 * a bad micro_batch or seq), those of the model, the optimizer and
 * hs_dp_new (HS_ERR_OUT_OF_MEMORY on host or HBM). */
HS_API hs_status hs_engine_new(hs_runtime *rt, const hs_model_config *cfg, const hs_engine_config *ec,
                               hs_engine **out);

/* Frees everything hs_engine_new made (NULL is fine). */
HS_API void hs_engine_free(hs_engine *e);

/* hs_model_init of every chunk: each shard gets its slice of the
 * single-rank model's weights for the same seed. */
HS_API hs_status hs_engine_init(hs_engine *e, uint64_t seed);

/* What one training step did on this rank. */
typedef struct hs_engine_stats {
    float loss;           /* mean over the micro-batches and the DP group (from the last stage) */
    double grad_norm;     /* global, before clipping (NaN on an estimate-mode NPU) */
    float lr;
    double seconds;       /* wall time of the step */
    double busy_s;        /* wall seconds of this rank's forward and backward passes in the schedule */
    double span_s;        /* wall seconds from the schedule's first operation to its last */
    double bubble;        /* measured: (span - busy) / busy, this rank's idle time per unit of work */
    double bubble_theory; /* hs_pp_bubble_theory of the layout */
    double sim_seconds;   /* NPU: simulated step time (the slowest rank's); 0 on the CPU */
    double sim_bubble;    /* NPU: the bubble above in simulated time */
    hs_dp_stats dp;       /* the first chunk's DP reduction */
} hs_engine_stats;

/* One forward or backward of the last step's schedule on this rank
 * (pipeline.h's hs_pp_op_time: seconds from the schedule's start, wall
 * and simulated on an NPU). */
typedef hs_pp_op_time hs_engine_op_time;

/* The last step's operations in schedule order (*times: the engine's,
 * valid until the next step); returns their count (2 x micro-batches x
 * virtual stages). */
HS_API int hs_engine_op_times(const hs_engine *e, const hs_engine_op_time **times);

/* One optimizer step on this DP rank's share of the global batch:
 * tokens, targets [micro_batches * micro_batch, seq] int32 (host; every
 * rank of a pipeline passes the same, only the first and last stage read
 * them), cut into the micro-batches. Errors: the model's, the
 * collectives', HS_ERR_INVALID_ARGUMENT (NULL arguments, lr < 0). */
HS_API hs_status hs_engine_train_step(hs_engine *e, const int32_t *tokens, const int32_t *targets, float lr,
                                      hs_engine_stats *stats);

/* Mean loss of a forward over tokens, targets [B, seq] (B a multiple of
 * micro_batch) through the pipeline, on every rank of the TP and PP
 * groups (not averaged over DP). NaN on an estimate-mode NPU. Errors: as
 * hs_engine_train_step, B not a multiple of micro_batch. */
HS_API hs_status hs_engine_eval(hs_engine *e, const int32_t *tokens, const int32_t *targets, int B, float *loss);

/* hs_model_generate through the layout: n_new tokens sampled after
 * prompt[0 .. n_prompt) (every rank passes the same and receives the same
 * n_prompt + n_new tokens in out), each from one forward of a window of up
 * to seq tokens (under sequence parallelism a multiple of tp) through the
 * pipeline, the last stage's TP ranks gathering the last position's
 * logits of the whole vocabulary (V floats, not [T, V]) and sampling with
 * the counter-based RNG (seed, draw index), the token broadcast to every
 * stage: the same text as hs_model_generate of the whole model with the
 * same weights, up to the rounding of the split matmuls. Overwrites
 * activation set 0. Errors: HS_ERR_INVALID_ARGUMENT (as
 * hs_model_generate; a prompt shorter than tp under sequence
 * parallelism), HS_ERR_DEVICE (an estimate-mode NPU), the collectives'. */
HS_API hs_status hs_engine_generate(hs_engine *e, const int32_t *prompt, int n_prompt, int n_new, int top_k,
                                    float temperature, uint64_t seed, int32_t *out);

/* This rank's chunks (virtual_stages of them) and their optimizers; i out
 * of range: NULL. */
HS_API int hs_engine_num_chunks(const hs_engine *e);
HS_API hs_model *hs_engine_chunk(const hs_engine *e, int i);
HS_API hs_optimizer *hs_engine_optimizer(const hs_engine *e, int i);

/* Parameters this rank holds (its shards of its chunks, the tied copy
 * included) and the device memory of its chunks and optimizers
 * (hs_model_memory_plan summed over the chunks). */
HS_API int64_t hs_engine_num_params(const hs_engine *e);
HS_API hs_status hs_engine_memory(const hs_engine *e, hs_model_memory *out);

/* Completed updates (the optimizers' step count). */
HS_API int64_t hs_engine_steps(const hs_engine *e);

/* The runtime the engine was built on. */
HS_API hs_runtime *hs_engine_runtime(const hs_engine *e);

/* ---- checkpoints of any layout (docs/checkpoints.md) ----
 * The checkpoint holds logical tensors: exactly what hs_train_save writes
 * for the whole model on one rank ("param/NAME", "adam_m/NAME",
 * "adam_v/NAME", step, seed, data position, config), so a checkpoint of
 * one layout loads into any other, or into a single model with
 * hs_train_load, and the other way round. */

/* Saves the run (every rank calls it): the ranks of DP replica 0 send
 * their shards (values and AdamW moments; an NPU's copied to the host) to
 * world rank 0, which assembles each logical tensor (hs_param_shard_copy)
 * and writes the checkpoint atomically (hs_checkpoint_save). Every rank
 * returns rank 0's status. Errors: those of hs_checkpoint_save
 * (HS_ERR_IO leaves an older checkpoint in dir loadable),
 * HS_ERR_OUT_OF_MEMORY (rank 0 holds the whole model's state once),
 * HS_ERR_DEVICE on an estimate-mode NPU, the messages'. */
HS_API hs_status hs_engine_save(hs_engine *e, const char *dir, const hs_train_state *st);

/* Loads a checkpoint into every chunk: each rank reads the logical
 * tensors of its chunks and keeps its shards' slices, restores the step
 * count and refreshes the compute-dtype weights; *st receives the seed and
 * the data position. Errors: those of hs_checkpoint_load (a missing or
 * mis-shaped tensor: the model config differs), HS_ERR_DEVICE on an
 * estimate-mode NPU; on error the chunks may hold part of the checkpoint
 * (the trainer stops). */
HS_API hs_status hs_engine_load(hs_engine *e, const char *dir, hs_train_state *st);

#ifdef __cplusplus
}
#endif
#endif
