/* The pipeline executor's plumbing (private): the point-to-point link
 * between neighbouring stages, with its message tags and, on a simulated
 * NPU, the time stamps that carry each message's arrival time; and the
 * activation-set plan of a rank's schedule. The step driver
 * (src/train/engine.c) walks the schedule with these.
 *
 * Tags: activations into model chunk g for micro-batch k at g*m + k, their
 * gradients at (G + g)*m + k (g the receiving chunk's successor), the
 * time stamps 2*G*m above each, the tied embedding's exchange at 4*G*m
 * and 4*G*m + 1 for its time stamps (G chunks in the model, m micro-batches). */
#ifndef HS_PARALLEL_PP_LINK_H
#define HS_PARALLEL_PP_LINK_H

#include "hyperspeed/comm.h"
#include "hyperspeed/npu.h"
#include "hyperspeed/pipeline.h"

/* A point-to-point message: the data (where there are values) and, on an
 * NPU, the sender's simulated arrival time as the bits of a double. */
typedef struct hs_pp_msg {
    hs_comm_request *data, *time;
    int64_t stamp;
    int posted;
} hs_pp_msg;

/* This rank's link to its pipeline neighbours. */
typedef struct hs_pp_link {
    hs_comm *pp;   /* the PP group */
    hs_npu *npu;   /* NULL on the CPU */
    int values;    /* messages carry values (CPU, execute-mode NPU) */
    int prev, next; /* PP ranks of the previous and the next stage (cyclic, for interleaving) */
    int G, m;      /* model chunks, micro-batches: the tag space */
    double hop_s;  /* NPU: simulated seconds of one boundary activation to a neighbour */
} hs_pp_link;

/* The link of PP stage `stage` of rt's grid for G chunks and m
 * micro-batches, its messages of `bytes`; on an NPU the hop's simulated
 * time from the cluster's cost model (same node or not). Errors:
 * HS_ERR_OUT_OF_MEMORY, those of the grid. */
hs_status hs_pp_link_init(hs_pp_link *l, hs_runtime *rt, hs_npu *npu, int G, int m, double bytes);

int hs_pp_fwd_tag(const hs_pp_link *l, int g, int k);
int hs_pp_bwd_tag(const hs_pp_link *l, int g, int k);
int hs_pp_tied_tag(const hs_pp_link *l);

/* Posts a receive of n floats into buf from PP rank `from` (once: a posted
 * message is left alone). */
hs_status hs_pp_post_recv(const hs_pp_link *l, hs_pp_msg *mm, float *buf, int64_t n, int from, int tag);

/* Waits for a receive; on the NPU the default stream then waits for the
 * sender's arrival time (an "idle" slice named `what`: the bubble). */
hs_status hs_pp_finish_recv(const hs_pp_link *l, hs_pp_msg *mm, const char *what);

/* Sends n floats of buf to PP rank `to`, stamped on the NPU with the
 * arrival time (now + one hop). */
hs_status hs_pp_post_send(const hs_pp_link *l, hs_pp_msg *mm, const float *buf, int64_t n, int to, int tag);

/* Waits for a message's requests (NULL ones are done). */
hs_status hs_pp_wait(hs_pp_msg *mm);

/* The NPU's default-stream time (0 on the CPU). */
double hs_pp_now(const hs_pp_link *l);

/* The activation set of every (chunk, micro-batch) of a rank's schedule
 * ops[0 .. n_ops) over `chunks` chunks and m micro-batches: a forward
 * takes the lowest free set of its chunk, a backward frees it. Under a
 * pipeline (stages > 1), a set freed by the operation just before is not
 * reused, since the receive into it was posted while that operation ran
 * (one stage has no receives: micro-batches share one set). Fills
 * slot[chunk * m + micro], slots[chunk] (the sets the chunk needs: at most
 * m in flight plus one just freed) and last_bwd[chunk] (the micro-batch
 * of its last backward). Errors: HS_ERR_OUT_OF_MEMORY. */
hs_status hs_pp_plan_slots(const hs_pp_op *ops, int n_ops, int chunks, int m, int stages, int *slot, int *slots,
                           int *last_bwd);

#endif
