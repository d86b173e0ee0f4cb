/* hyperspeed training: AdamW over the model's parameter registry, the
 * learning-rate schedule, gradient clipping and the step driver. */
#ifndef HYPERSPEED_TRAIN_H
#define HYPERSPEED_TRAIN_H

#include "hyperspeed/checkpoint.h"
#include "hyperspeed/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hs_optimizer_config {
    size_t size; /* its version: sizeof the struct in the caller's build, set by the *_default() (api.md) */
    float beta1, beta2, eps;
    float weight_decay; /* applied only to registry entries with decay = 1 */
    float grad_clip;    /* global-norm clip threshold; <= 0 disables */
} hs_optimizer_config;

/* betas (0.9, 0.95), eps 1e-8, weight_decay 0.1, grad_clip 1.0. */
HS_API hs_optimizer_config hs_optimizer_config_default(void);

typedef struct hs_optimizer hs_optimizer;

/* AdamW state (m, v: one flat fp32 buffer each, zeroed) for model m, on
 * the model's device (NPU HBM for a model on the NPU).
 * The optimizer borrows the model; free it before the model.
 * Errors: HS_ERR_INVALID_ARGUMENT (betas outside [0,1), eps <= 0),
 * HS_ERR_OUT_OF_MEMORY. */
HS_API hs_status hs_optimizer_new(hs_model *m, const hs_optimizer_config *cfg, hs_optimizer **out);
HS_API void hs_optimizer_free(hs_optimizer *o);

/* One update from the model's accumulated gradients: global grad norm,
 * clip scale, then AdamW per registry entry (with or without decay) at
 * learning rate lr, then hs_model_sync_weights (the compute-dtype copy).
 * Increments the step count. *grad_norm (may be NULL) receives the norm
 * before clipping (NaN on an estimate-mode NPU, which has no values and
 * runs the update unclipped). Does not zero the gradients. */
HS_API hs_status hs_optimizer_step(hs_optimizer *o, float lr, double *grad_norm);

/* Completed updates so far (0 before the first). */
HS_API int64_t hs_optimizer_steps(const hs_optimizer *o);
/* Restores the step count (checkpoint resume). steps >= 0. */
HS_API hs_status hs_optimizer_set_steps(hs_optimizer *o, int64_t steps);
/* AdamW's moments. */
typedef enum hs_adam_state {
    HS_ADAM_M = 0, /* first moment */
    HS_ADAM_V = 1  /* second moment */
} hs_adam_state;

/* Registry entry i's moment `which` as a tensor of the entry's shape on the
 * model's device, or under optimizer offload in host memory (device NULL;
 * data NULL on an estimate-mode NPU) (a view: the optimizer owns it).
 * Errors: HS_ERR_NOT_FOUND
 * (no entry i), HS_ERR_INVALID_ARGUMENT (NULL, an unknown state). */
HS_API hs_status hs_optimizer_state(const hs_optimizer *o, int i, hs_adam_state which, hs_tensor *out);

/* Learning rate: linear warmup from max_lr/warmup to max_lr over
 * `warmup` steps, then cosine decay to min_lr at `total`, min_lr after. */
typedef struct hs_lr_schedule {
    float max_lr, min_lr;
    int64_t warmup, total;
} hs_lr_schedule;
/* lr for update number `step` (0-based). */
HS_API float hs_lr_at(const hs_lr_schedule *s, int64_t step);

/* What one training step reports. */
typedef struct hs_step_stats {
    float loss;       /* mean over micro-batches */
    double grad_norm; /* before clipping */
    float lr;
    double seconds;   /* wall time of the step */
} hs_step_stats;

/* One optimizer step of a whole model in one process over a batch cut
 * into `micro_batches` equal pieces along the batch dimension: zero grads,
 * for each piece forward + backward (loss scaled 1/micro_batches), then
 * hs_optimizer_step: the plain loop, and the reference the tests hold
 * hs_engine to. hs_engine (engine.h) drives every layout, data
 * parallelism and one process included. tokens and targets are [B,T] int32. Errors: from forward/backward, or
 * HS_ERR_INVALID_ARGUMENT when micro_batches does not divide B. */
HS_API hs_status hs_train_step(hs_model *m, hs_optimizer *o, const int32_t *tokens, const int32_t *targets, int B,
                               int T, int micro_batches, float lr, hs_step_stats *stats);

/* ---- training state checkpoints (see docs/checkpoints.md) ----
 * A run's state: every parameter ("param/NAME"), AdamW's moments
 * ("adam_m/NAME", "adam_v/NAME"), the optimizer step, the seed, the data
 * position and the model config (JSON). */
typedef struct hs_train_state {
    uint64_t seed;
    uint64_t data_position;
} hs_train_state;

/* Saves model, optimizer and *st as a checkpoint in dir, atomically (an
 * NPU model's buffers are copied to the host first).
 * Errors: those of hs_checkpoint_save (HS_ERR_IO leaves an older
 * checkpoint in dir loadable), HS_ERR_OUT_OF_MEMORY, HS_ERR_DEVICE for a
 * model on an estimate-mode NPU (which has no values). */
HS_API hs_status hs_train_save(const char *dir, hs_model *m, hs_optimizer *o, const hs_train_state *st);

/* Loads a checkpoint saved by hs_train_save into model and optimizer
 * (which must have the same shapes, on any device) and *st, restoring the
 * step count and refreshing the compute-dtype weights.
 * Errors: those of hs_checkpoint_load (missing, truncated, mis-shaped
 * tensors...), HS_ERR_DEVICE as for hs_train_save; on error neither
 * model, optimizer nor *st changed. */
HS_API hs_status hs_train_load(const char *dir, hs_model *m, hs_optimizer *o, hs_train_state *st);

#ifdef __cplusplus
}
#endif
#endif
