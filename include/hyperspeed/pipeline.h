/* Pipeline-parallel schedules: the order in which one pipeline rank runs
 * the forward and backward passes of its micro-batches.
 *
 * A model's layers are cut into `stages` x `virtual_stages` chunks. Rank r
 * holds chunks r, r + stages, r + 2 stages, ... (Megatron's interleaving;
 * one chunk per rank without it). A micro-batch's forward runs through
 * the chunks in order and its backward in reverse. A schedule is each
 * rank's list of operations (forward or backward, micro-batch, which of
 * its chunks); the pipeline executor runs the list, sending activations
 * forward and gradients back, and every rank's list is consistent with the
 * others' so the pipeline never deadlocks (tested by simulating it).
 *
 *   GPipe        all forwards, then all backwards
 *   1F1B         warm-up forwards (stages - rank - 1), then one forward and
 *                one backward in turn, then the remaining backwards
 *                (PipeDream-Flush): at most `stages` micro-batches' activations live
 *   interleaved  1F1B over virtual stages (Narayanan et al. 2021), the
 *                bubble shrunk by the number of virtual stages
 *
 * Bubble, as the fraction of a step's ideal compute time a rank idles,
 * with equal forward (and equal backward) times per chunk:
 *   GPipe, 1F1B:  (stages - 1) / micro_batches
 *   interleaved:  (stages - 1) / (virtual_stages * micro_batches)
 */
#ifndef HYPERSPEED_PIPELINE_H
#define HYPERSPEED_PIPELINE_H

#include "hyperspeed/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hs_pp_schedule {
    HS_PP_GPIPE = 0,
    HS_PP_1F1B = 1,
    HS_PP_INTERLEAVED = 2
} hs_pp_schedule;

/* One operation of a rank's schedule. */
typedef struct hs_pp_op {
    int backward; /* 0: forward, 1: backward */
    int micro;    /* micro-batch, 0 .. micro_batches - 1 */
    int chunk;    /* which of the rank's chunks, 0 .. virtual_stages - 1 (model chunk chunk * stages + rank) */
} hs_pp_op;

/* One operation of a rank's schedule as it ran: seconds from the
 * schedule's start, wall and (on an NPU) simulated. */
typedef struct hs_pp_op_time {
    hs_pp_op op;
    double start_s, end_s;
    double sim_start_s, sim_end_s; /* 0 on the CPU */
} hs_pp_op_time;

/* "gpipe", "1f1b", "interleaved". */
HS_API const char *hs_pp_schedule_name(hs_pp_schedule s);
/* Parses a schedule name. Errors: HS_ERR_INVALID_ARGUMENT naming the known ones. */
HS_API hs_status hs_pp_schedule_parse(const char *name, hs_pp_schedule *out);

/* Checks a pipeline configuration: stages >= 1, micro_batches >= 1,
 * virtual_stages 1 (GPipe, 1F1B) or >= 2 (interleaved); 1F1B needs
 * micro_batches >= stages (else its warm-up never reaches the last stage's
 * first backward), interleaved a multiple of stages (the rounds of its
 * order). Errors: HS_ERR_INVALID_ARGUMENT saying which rule and how to
 * fix it. */
HS_API hs_status hs_pp_schedule_check(hs_pp_schedule s, int stages, int micro_batches, int virtual_stages);

/* Rank `rank`'s operations, 2 * micro_batches * virtual_stages of them,
 * into ops (capacity `cap`); *count gets the number. Errors: as
 * hs_pp_schedule_check, rank outside 0 .. stages - 1, ops too small
 * (HS_ERR_INVALID_ARGUMENT). */
HS_API hs_status hs_pp_schedule_ops(hs_pp_schedule s, int stages, int micro_batches, int virtual_stages, int rank,
                                    hs_pp_op *ops, int cap, int *count);

/* The theoretical bubble fraction above (0 for one stage). */
HS_API double hs_pp_bubble_theory(hs_pp_schedule s, int stages, int micro_batches, int virtual_stages);

#ifdef __cplusplus
}
#endif

#endif
