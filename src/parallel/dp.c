/* The DP reducer: a round per optimizer step in which each gradient
 * bucket's all-reduce (average over the group) starts as soon as the
 * backward has finished its gradients, and, on a simulated NPU, the comm
 * stream that times those all-reduces beside the compute stream. */
#include "core/try.h"
#include "hyperspeed/parallel.h"

#include <stdlib.h>

struct hs_dp {
    hs_comm *comm;
    float *grads;
    hs_dp_config cfg;
    hs_dp_bucket *buckets;
    int n_buckets;
    hs_comm_request **reqs; /* one per bucket, NULL when not in flight */

    /* simulated NPU: the comm stream and the events ordering it */
    hs_npu_stream *comm_stream;
    hs_npu_event *computed; /* recorded on the compute stream when a bucket's gradients exist */
    hs_npu_event *reduced;  /* recorded on the comm stream at the end of the round */
    int values;             /* 1: reduce the buffer's values (host memory or an execute-mode NPU) */

    /* the open round */
    int open;
    int next; /* buckets [0, next) have started */
    hs_dp_stats stats;
};

hs_dp_config hs_dp_config_default(void)
{
    hs_dp_config c = {HS_DP_BUCKET_BYTES_DEFAULT, 1, NULL};
    return c;
}

hs_status hs_dp_new(hs_comm *comm, float *grads, const int64_t *numel, int n_tensors, const hs_dp_config *cfg,
                    hs_dp **out)
{
    if (!out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_dp_new: out is NULL");
    *out = NULL;
    if (!comm || !grads)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_dp_new: the group and the gradient buffer are required");
    hs_dp *dp = calloc(1, sizeof *dp);
    if (!dp)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_dp_new: out of host memory");
    dp->comm = comm;
    dp->grads = grads;
    dp->cfg = cfg ? *cfg : hs_dp_config_default();
    dp->buckets = calloc((size_t)(n_tensors > 0 ? n_tensors : 1), sizeof *dp->buckets);
    dp->reqs = calloc((size_t)(n_tensors > 0 ? n_tensors : 1), sizeof *dp->reqs);
    hs_status s = dp->buckets && dp->reqs ? HS_OK : hs_error(HS_ERR_OUT_OF_MEMORY, "hs_dp_new: out of host memory");
    if (!s)
        s = hs_dp_plan_buckets(numel, n_tensors, sizeof(float), dp->cfg.bucket_bytes, dp->buckets, &dp->n_buckets);
    hs_npu *npu = dp->cfg.npu;
    dp->values = !npu || hs_npu_mode_of(npu) == HS_NPU_EXECUTE;
    if (!s && npu)
        s = hs_npu_stream_new(npu, &dp->comm_stream);
    if (!s && npu)
        s = hs_npu_event_new(npu, &dp->computed);
    if (!s && npu)
        s = hs_npu_event_new(npu, &dp->reduced);
    if (s) {
        hs_dp_free(dp);
        return s;
    }
    *out = dp;
    return HS_OK;
}

void hs_dp_free(hs_dp *dp)
{
    if (!dp)
        return;
    if (dp->open)
        (void)hs_comm_waitall(dp->reqs, (size_t)dp->n_buckets); /* the buffer must not be freed under a collective */
    hs_npu_event_free(dp->reduced);
    hs_npu_event_free(dp->computed);
    hs_npu_stream_free(dp->comm_stream);
    free(dp->reqs);
    free(dp->buckets);
    free(dp);
}

hs_comm *hs_dp_comm(const hs_dp *dp) { return dp->comm; }

int hs_dp_num_buckets(const hs_dp *dp) { return dp->n_buckets; }

const hs_dp_bucket *hs_dp_bucket_at(const hs_dp *dp, int i)
{
    return i >= 0 && i < dp->n_buckets ? &dp->buckets[i] : NULL;
}

/* The stream the model's kernels run on: the current one when the NPU is
 * current (the model makes it so), else its default stream. */
static hs_npu_stream *compute_stream(const hs_dp *dp)
{
    return hs_npu_current() == dp->cfg.npu ? hs_npu_current_stream() : hs_npu_default_stream(dp->cfg.npu);
}

/* Starts bucket dp->next: on the NPU the comm stream waits for the
 * compute stream's work so far and then takes the all-reduce's simulated
 * time; the values go through hs_comm_iallreduce in place. */
static hs_status start_next(hs_dp *dp)
{
    const hs_dp_bucket *b = &dp->buckets[dp->next];
    const double bytes = (double)b->numel * sizeof(float);
    if (dp->comm_stream) {
        double t;
        hs_npu_event_record(dp->computed, compute_stream(dp));
        hs_npu_stream_wait(dp->comm_stream, dp->computed);
        HS_TRY(hs_comm_advance(dp->comm, dp->comm_stream, HS_COLL_ALLREDUCE, bytes, &t));
        dp->stats.sim_comm_s += t;
    }
    if (dp->values && hs_comm_size(dp->comm) > 1) {
        float *g = dp->grads + b->offset;
        HS_TRY(hs_comm_iallreduce(dp->comm, g, g, (size_t)b->numel, HS_FP32, HS_REDUCE_AVG, &dp->reqs[dp->next]));
    }
    dp->stats.buckets++;
    dp->stats.bytes += bytes;
    dp->next++;
    return HS_OK;
}

hs_status hs_dp_begin(hs_dp *dp)
{
    if (!dp)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_dp_begin: NULL reducer");
    if (dp->open)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_dp_begin: the previous round has not finished (hs_dp_finish)");
    dp->open = 1;
    dp->next = 0;
    dp->stats = (hs_dp_stats){0};
    return HS_OK;
}

hs_status hs_dp_grads_ready(hs_dp *dp, int64_t first)
{
    if (!dp || !dp->open)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_dp_grads_ready outside a round (hs_dp_begin .. hs_dp_finish)");
    if (!dp->cfg.overlap)
        return HS_OK;
    while (dp->next < dp->n_buckets && dp->buckets[dp->next].offset >= first) {
        HS_TRY(start_next(dp));
        dp->stats.early++;
    }
    return HS_OK;
}

hs_status hs_dp_finish(hs_dp *dp, hs_dp_stats *stats)
{
    if (!dp || !dp->open)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_dp_finish without hs_dp_begin");
    hs_status s = HS_OK;
    while (!s && dp->next < dp->n_buckets)
        s = start_next(dp);
    /* Wait even after a failed start: the buffer stays in use until every
     * started all-reduce is done. */
    const double t0 = hs_time_now();
    hs_status w = hs_comm_waitall(dp->reqs, (size_t)dp->n_buckets);
    dp->stats.wait_s = hs_time_now() - t0;
    if (dp->comm_stream) {
        hs_npu_stream *cs = compute_stream(dp);
        const double before = hs_npu_stream_time(cs);
        hs_npu_event_record(dp->reduced, dp->comm_stream);
        hs_npu_stream_wait(cs, dp->reduced);
        dp->stats.sim_exposed_s = hs_npu_stream_time(cs) - before;
    }
    dp->open = 0;
    if (stats)
        *stats = dp->stats;
    return s ? s : w;
}
