/* The pipeline executor (private): walks a rank's schedule (GPipe, 1F1B,
 * interleaved; one stage: micro-batch after micro-batch), moving the
 * boundary activations and their gradients between the stages over the
 * link (pp_link.h) and timing each operation. What an operation computes
 * is the step driver's: the executor calls it back (hs_pp_work), since the
 * model sits above this layer.
 *
 * Per operation: the receive of the next operation is posted before this
 * one runs, so it overlaps it; a forward waits for its input (a chunk with
 * a previous one), runs, and sends its output on; a backward waits for
 * dL/d(output) (a chunk with a next one), runs, and sends dL/d(input)
 * back. A send's buffer is reused only once the send is done. On an NPU
 * each wait advances the stream to the message's simulated arrival: the
 * bubble in simulated time. */
#ifndef HS_PARALLEL_PP_EXEC_H
#define HS_PARALLEL_PP_EXEC_H

#include "parallel/pp_link.h"

/* What the step driver computes (ctx its own). c: the rank's chunk, sl:
 * its activation set for micro-batch k. */
typedef struct hs_pp_work {
    void *ctx;
    /* The input buffer of chunk c's set sl (a chunk with a previous one;
     * the executor receives the previous stage's output into it). */
    hs_status (*input)(void *ctx, int c, int sl, float **buf);
    /* Forward of micro-batch k in chunk c's set sl (its input in place);
     * *out: the output to send on (a chunk with a next one). */
    hs_status (*forward)(void *ctx, int c, int sl, int k, const float **out);
    /* Backward of micro-batch k in chunk c's set sl from dout = dL/d(output)
     * (NULL for the model's last chunk); *dx: dL/d(input) to send back (a
     * chunk with a previous one). */
    hs_status (*backward)(void *ctx, int c, int sl, int k, const float *dout, const float **dx);
} hs_pp_work;

typedef struct hs_pp_exec hs_pp_exec;

/* The schedule of PP stage `stage` of `stages` with m micro-batches and v
 * chunks per rank (model chunk c * stages + stage), and its activation-set
 * plan. Errors: those of hs_pp_schedule_ops, HS_ERR_OUT_OF_MEMORY. */
hs_status hs_pp_exec_new(hs_pp_schedule schedule, int stages, int stage, int m, int v, hs_pp_exec **out);
void hs_pp_exec_free(hs_pp_exec *x);

/* The activation sets chunk c needs, and the micro-batch of its last
 * backward in the schedule. */
int hs_pp_exec_slots(const hs_pp_exec *x, int c);
int hs_pp_exec_last_bwd(const hs_pp_exec *x, int c);

/* Allocates the gradient buffers and messages for boundary activations of
 * n floats on the link's device (host memory, or the link's NPU); after
 * the driver has built its chunks. Errors: HS_ERR_OUT_OF_MEMORY. */
hs_status hs_pp_exec_attach(hs_pp_exec *x, const hs_pp_link *link, int64_t n);

/* Runs the schedule once with w. Allocates nothing. Errors: w's, the
 * link's. */
hs_status hs_pp_exec_run(hs_pp_exec *x, const hs_pp_work *w);

/* Waits for every send still in flight (before the driver touches the
 * buffers they read, or frees them). */
hs_status hs_pp_exec_drain(hs_pp_exec *x);

/* The last run's operations in schedule order (*times: the executor's,
 * valid until the next run); returns their count. *busy, *sim_busy: the
 * wall and simulated seconds spent in the operations (NULL: not wanted). */
int hs_pp_exec_times(const hs_pp_exec *x, const hs_pp_op_time **times, double *busy, double *sim_busy);

#endif
