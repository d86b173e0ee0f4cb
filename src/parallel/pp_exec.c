/* The pipeline executor (pp_exec.h). */
#include "parallel/pp_exec.h"

#include "core/try.h"
#include "hyperspeed/kernels.h"

#include <stdio.h>
#include <stdlib.h>

/* A chunk's buffers: per activation set, the received dL/d(output), the
 * dL/d(input) being sent back, and the last sends from the set. */
typedef struct chunk_io {
    float **dout, **dsend;
    hs_pp_msg *fsend, *bsend;
} chunk_io;

struct hs_pp_exec {
    hs_pp_link link;
    int stages, stage, m, v, G;
    hs_pp_op *ops;
    int n_ops;
    int *slot, *slots, *last_bwd; /* [v * m], [v], [v]: the activation-set plan */
    chunk_io *io;                 /* [v] */
    hs_pp_msg *fwd_in, *bwd_in;   /* [v * m]: the receives of a run */
    int64_t n;                    /* floats of a boundary activation */
    hs_pp_op_time *times;         /* [n_ops]: the last run's */
    double busy, sim_busy;
};

hs_status hs_pp_exec_new(hs_pp_schedule schedule, int stages, int stage, int m, int v, hs_pp_exec **out)
{
    *out = NULL;
    hs_pp_exec *x = calloc(1, sizeof *x);
    if (!x)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "pipeline executor: out of host memory");
    *x = (hs_pp_exec){.stages = stages, .stage = stage, .m = m, .v = v, .G = stages * v};
    const int cap = 2 * m * v;
    x->ops = calloc((size_t)cap, sizeof *x->ops);
    x->times = calloc((size_t)cap, sizeof *x->times);
    x->slot = calloc((size_t)(v * m), sizeof *x->slot);
    x->slots = calloc(2 * (size_t)v, sizeof *x->slots);
    x->io = calloc((size_t)v, sizeof *x->io);
    x->fwd_in = calloc((size_t)(v * m), sizeof *x->fwd_in);
    x->bwd_in = calloc((size_t)(v * m), sizeof *x->bwd_in);
    hs_status s = x->ops && x->times && x->slot && x->slots && x->io && x->fwd_in && x->bwd_in
                      ? HS_OK
                      : hs_error(HS_ERR_OUT_OF_MEMORY, "pipeline executor: out of host memory");
    if (!s) /* one stage: accumulation, micro-batch after micro-batch (1F1B of one stage) */
        s = hs_pp_schedule_ops(stages > 1 ? schedule : HS_PP_1F1B, stages, m, v, stage, x->ops, cap, &x->n_ops);
    if (!s) {
        x->last_bwd = x->slots + v;
        s = hs_pp_plan_slots(x->ops, x->n_ops, v, m, stages, x->slot, x->slots, x->last_bwd);
    }
    if (s) {
        hs_pp_exec_free(x);
        return s;
    }
    *out = x;
    return HS_OK;
}

static hs_status dev_alloc(const hs_pp_exec *x, float **p)
{
    const size_t bytes = (size_t)x->n * sizeof(float);
    if (x->link.npu)
        return hs_npu_malloc(x->link.npu, bytes, (void **)p);
    if (!(*p = hs_alloc(bytes)))
        return hs_error(HS_ERR_OUT_OF_MEMORY, "pipeline executor: %zu B of gradient buffers", bytes);
    return HS_OK;
}

static void dev_free(const hs_pp_exec *x, float *p)
{
    if (x->link.npu)
        (void)hs_npu_free_mem(x->link.npu, p); /* an address the executor allocated (or NULL) */
    else
        hs_free(p);
}

void hs_pp_exec_free(hs_pp_exec *x)
{
    if (!x)
        return;
    for (int c = 0; x->io && c < x->v; c++) {
        chunk_io *io = &x->io[c];
        for (int s = 0; x->slots && s < x->slots[c]; s++) {
            if (io->fsend) /* a send still in flight at the end: its error was or will be reported */
                (void)hs_pp_wait(&io->fsend[s]);
            if (io->bsend)
                (void)hs_pp_wait(&io->bsend[s]);
            if (io->dout)
                dev_free(x, io->dout[s]);
            if (io->dsend)
                dev_free(x, io->dsend[s]);
        }
        free(io->dout);
        free(io->dsend);
        free(io->fsend);
        free(io->bsend);
    }
    free(x->io);
    free(x->bwd_in);
    free(x->fwd_in);
    free(x->slots);
    free(x->slot);
    free(x->times);
    free(x->ops);
    free(x);
}

int hs_pp_exec_slots(const hs_pp_exec *x, int c) { return x->slots[c]; }

int hs_pp_exec_last_bwd(const hs_pp_exec *x, int c) { return x->last_bwd[c]; }

hs_status hs_pp_exec_attach(hs_pp_exec *x, const hs_pp_link *link, int64_t n)
{
    x->link = *link;
    x->n = n;
    for (int c = 0; c < x->v; c++) {
        chunk_io *io = &x->io[c];
        const int g = c * x->stages + x->stage, k = x->slots[c];
        io->dout = calloc((size_t)k, sizeof *io->dout);
        io->dsend = calloc((size_t)k, sizeof *io->dsend);
        io->fsend = calloc((size_t)k, sizeof *io->fsend);
        io->bsend = calloc((size_t)k, sizeof *io->bsend);
        if (!io->dout || !io->dsend || !io->fsend || !io->bsend)
            return hs_error(HS_ERR_OUT_OF_MEMORY, "pipeline executor: chunk buffers");
        for (int s = 0; s < k; s++) {
            if (g < x->G - 1)
                HS_TRY(dev_alloc(x, &io->dout[s]));
            if (g > 0)
                HS_TRY(dev_alloc(x, &io->dsend[s]));
        }
    }
    return HS_OK;
}

/* dst[0..n) = src[0..n) on the link's device (a fill and an add, so it
 * takes simulated time on the NPU). */
static hs_status dev_copy(const hs_pp_exec *x, float *dst, const float *src)
{
    hs_tensor d = hs_view1(dst, HS_FP32, x->n), s = hs_view1((void *)src, HS_FP32, x->n);
    d.device = s.device = hs_npu_device(x->link.npu);
    HS_TRY(hs_fill(&d, 0.0f));
    return hs_residual_backward(&d, NULL, &s);
}

/* Posts op i's receive, if it has one. */
static hs_status post_op_recv(hs_pp_exec *x, const hs_pp_work *w, int i)
{
    if (i >= x->n_ops)
        return HS_OK;
    const hs_pp_op *op = &x->ops[i];
    const int c = op->chunk, g = c * x->stages + x->stage, k = op->micro, sl = x->slot[c * x->m + k];
    const hs_pp_link *l = &x->link;
    if (!op->backward && g > 0) {
        float *in;
        HS_TRY(w->input(w->ctx, c, sl, &in));
        return hs_pp_post_recv(l, &x->fwd_in[c * x->m + k], in, x->n, l->prev, hs_pp_fwd_tag(l, g, k));
    }
    if (op->backward && g < x->G - 1)
        return hs_pp_post_recv(l, &x->bwd_in[c * x->m + k], x->io[c].dout[sl], x->n, l->next,
                               hs_pp_bwd_tag(l, g + 1, k));
    return HS_OK;
}

/* One forward or backward of the schedule; t[0..4): its computation's
 * start and end, wall and simulated (the waits and sends around it are
 * not its own time). */
static hs_status run_op(hs_pp_exec *x, const hs_pp_work *w, int i, double *t)
{
    const hs_pp_op *op = &x->ops[i];
    const int c = op->chunk, g = c * x->stages + x->stage, k = op->micro, sl = x->slot[c * x->m + k];
    const hs_pp_link *l = &x->link;
    chunk_io *io = &x->io[c];
    char what[64];
    HS_TRY(post_op_recv(x, w, i));
    HS_TRY(post_op_recv(x, w, i + 1));
    if (!op->backward) {
        snprintf(what, sizeof what, "bubble: waiting for fwd mb %d", k);
        if (g > 0)
            HS_TRY(hs_pp_finish_recv(l, &x->fwd_in[c * x->m + k], what));
        HS_TRY(hs_pp_wait(&io->fsend[sl])); /* the set's output is about to be rewritten */
        t[0] = hs_time_now(), t[2] = hs_pp_now(l);
        const float *out = NULL;
        HS_TRY(w->forward(w->ctx, c, sl, k, &out));
        t[1] = hs_time_now(), t[3] = hs_pp_now(l);
        if (g < x->G - 1)
            HS_TRY(hs_pp_post_send(l, &io->fsend[sl], out, x->n, l->next, hs_pp_fwd_tag(l, g + 1, k)));
        return HS_OK;
    }
    snprintf(what, sizeof what, "bubble: waiting for bwd mb %d", k);
    if (g < x->G - 1)
        HS_TRY(hs_pp_finish_recv(l, &x->bwd_in[c * x->m + k], what));
    t[0] = hs_time_now(), t[2] = hs_pp_now(l);
    const float *dx = NULL;
    HS_TRY(w->backward(w->ctx, c, sl, k, g < x->G - 1 ? io->dout[sl] : NULL, &dx));
    t[1] = hs_time_now(), t[3] = hs_pp_now(l);
    if (g > 0) {
        HS_TRY(hs_pp_wait(&io->bsend[sl]));
        HS_TRY(dev_copy(x, io->dsend[sl], dx));
        HS_TRY(hs_pp_post_send(l, &io->bsend[sl], io->dsend[sl], x->n, l->prev, hs_pp_bwd_tag(l, g, k)));
    }
    return HS_OK;
}

hs_status hs_pp_exec_run(hs_pp_exec *x, const hs_pp_work *w)
{
    const double start = hs_time_now(), sim_start = hs_pp_now(&x->link);
    x->busy = x->sim_busy = 0;
    for (int i = 0; i < x->n_ops; i++) {
        double t[4];
        HS_TRY(run_op(x, w, i, t));
        x->times[i] = (hs_pp_op_time){x->ops[i], t[0] - start, t[1] - start, t[2] - sim_start, t[3] - sim_start};
        x->busy += t[1] - t[0];
        x->sim_busy += t[3] - t[2];
    }
    return HS_OK;
}

hs_status hs_pp_exec_drain(hs_pp_exec *x)
{
    for (int c = 0; c < x->v; c++)
        for (int s = 0; s < x->slots[c]; s++) {
            HS_TRY(hs_pp_wait(&x->io[c].fsend[s]));
            HS_TRY(hs_pp_wait(&x->io[c].bsend[s]));
        }
    return HS_OK;
}

int hs_pp_exec_times(const hs_pp_exec *x, const hs_pp_op_time **times, double *busy, double *sim_busy)
{
    *times = x->times;
    if (busy)
        *busy = x->busy;
    if (sim_busy)
        *sim_busy = x->sim_busy;
    return x->n_ops;
}
