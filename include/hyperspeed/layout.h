/* A parallel layout against a model: whether tensor, sequence and
 * pipeline parallelism of the given sizes can run it, and how it is cut.
 * Every rule is checked before anything is built, with a message that says
 * which rule failed and how to fix it, so that every rank of a job fails
 * the same way (no hang). */
#ifndef HYPERSPEED_LAYOUT_H
#define HYPERSPEED_LAYOUT_H

#include "hyperspeed/core.h"
#include "hyperspeed/model.h"
#include "hyperspeed/pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hs_layout {
    size_t size; /* its version: sizeof the struct in the caller's build, set by the *_default() (api.md) */
    int tp, pp;                /* tensor- and pipeline-parallel sizes (>= 1) */
    int sequence_parallel;     /* 1: norms and residuals on sequence slices (needs tp >= 2) */
    hs_pp_schedule schedule;   /* with pp >= 2 */
    int virtual_stages;        /* interleaved schedule: chunks per rank (>= 2), else 1 */
    int micro_batches;         /* per optimizer step and pipeline (>= 1) */
    int seq;                   /* sequence length of a micro-batch (sequence parallelism splits it) */
    int chunk_layers[64];      /* layers of each of the pp * virtual_stages chunks in model order (stage
                                  0's first); all 0: the even split. E.g. {9, 3}: GPT-2 124M's last stage
                                  also holds the head, as heavy as ~5 layers */
} hs_layout;

/* tp = pp = 1, no sequence parallelism, 1F1B, 1 virtual stage, 1 micro-batch, seq 0 (unchecked),
 * the even split of the layers. */
HS_API hs_layout hs_layout_default(void);

/* How the model is cut. */
typedef struct hs_layout_plan {
    int padded_vocab;    /* vocab_size rounded up to a multiple of tp (the extra rows are never a target) */
    int heads_per_rank;  /* n_head / tp */
    int ff_per_rank;     /* d_ff / tp */
    int chunks;          /* pp * virtual_stages model chunks */
    int first_layer[65]; /* chunk k holds layers first_layer[k] .. first_layer[k + 1] - 1; first_layer[chunks] = n_layer */
} hs_layout_plan;

/* Checks layout l against model c and fills *plan:
 *   - tp divides n_head and d_ff (the heads and the MLP width are split);
 *   - the vocabulary is padded to a multiple of tp (plan->padded_vocab; the
 *     engine warns when it is), so the vocab-parallel shards are equal;
 *   - sequence parallelism needs tp >= 2 and seq a multiple of tp;
 *   - pp <= n_layer; layers are dealt to pp stages as evenly as possible,
 *     the first n_layer mod pp stages taking one more (uneven splits are
 *     allowed); with virtual stages every chunk must hold the same number
 *     of layers (n_layer a multiple of pp * virtual_stages). chunk_layers
 *     sets every chunk's count instead: each >= 1, summing to n_layer;
 *   - the schedule's own rules (hs_pp_schedule_check), and at most 64
 *     chunks.
 * Errors: HS_ERR_INVALID_ARGUMENT with the rule, the numbers and the fix. */
HS_API hs_status hs_layout_check(const hs_model_config *c, const hs_layout *l, hs_layout_plan *plan);

#ifdef __cplusplus
}
#endif

#endif
