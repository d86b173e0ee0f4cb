/* The DP reducer: a round per optimizer step in which each gradient
 * bucket's all-reduce (or, sharded, its reduce-scatter) starts as soon as
 * the backward has finished all its gradients, a sparse gradient's rows
 * can be gathered from every rank, and, on a simulated NPU, a comm stream
 * times those collectives beside the compute stream. Sharded, the updated
 * parameters are all-gathered bucket by bucket after the step. */
#include "core/config_size.h"
#include "core/try.h"
#include "hyperspeed/parallel.h"
#include "parallel/dp_plan.h"

#include <stdlib.h>

enum { GATHER_ROWS = 0, GATHER_IDS = 1 }; /* request slots after the buckets' */

struct hs_dp {
    hs_comm *comm;
    float *grads;
    int64_t total; /* elements in the buffer */
    hs_dp_config cfg;
    hs_dp_bucket *buckets;
    int n_buckets;
    int64_t *remaining;     /* per bucket: elements not reported final yet this round */
    char *started;          /* per bucket: its all-reduce has started this round */
    hs_comm_request **reqs; /* n_buckets + 2 (the gather's), NULL when not in flight */

    /* hs_dp_gather_rows: the group's rows and ids, on the gradients' device */
    float *all_rows;
    int32_t *all_ids;
    int gathered; /* this round */

    /* simulated NPU: the comm stream and the events ordering it */
    hs_npu_stream *comm_stream;
    hs_npu_event *computed; /* recorded on the compute stream when a collective's inputs exist */
    hs_npu_event *reduced;  /* recorded on the comm stream at the end of the round */
    int values;             /* 1: move the values (host memory or an execute-mode NPU) */

    int open; /* a round is open */
    hs_dp_stats stats;

    /* the parameters' all-gather (sharded): per bucket in flight, and on
     * the NPU its end on the comm stream */
    char *gathering;
    hs_npu_event **params_in;
    int n_gathering;
};

hs_dp_config hs_dp_config_default(void)
{
    hs_dp_config c = {sizeof c, HS_DP_BUCKET_BYTES_DEFAULT, 1, HS_REDUCE_AVG, 0, 0, NULL, 0, 0};
    return c;
}

/* bytes of the gradients' device memory: host, or the NPU's HBM. */
static hs_status dev_alloc(hs_dp *dp, size_t bytes, void **out)
{
    if (dp->cfg.npu)
        return hs_npu_malloc(dp->cfg.npu, bytes, out);
    *out = hs_alloc(bytes);
    return *out ? HS_OK : hs_error(HS_ERR_OUT_OF_MEMORY, "dp: %zu B of gather buffers", bytes);
}

static void dev_free(hs_dp *dp, void *p)
{
    if (dp->cfg.npu)
        (void)hs_npu_free_mem(dp->cfg.npu, p); /* an address the reducer allocated (or NULL): cannot fail */
    else
        hs_free(p);
}

static hs_status check_config(const hs_dp_config *c)
{
    if (c->op != HS_REDUCE_AVG && c->op != HS_REDUCE_SUM)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "dp: gradients reduce with HS_REDUCE_AVG or HS_REDUCE_SUM, not op %d",
                        (int)c->op);
    if (c->shard != 0 && c->shard != 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "dp: shard=%d must be 0 (all-reduce) or 1 (reduce-scatter)",
                        c->shard);
    if (c->gather_rows < 0 || c->gather_width < 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "dp: gather_rows=%lld and gather_width=%lld must be >= 0",
                        (long long)c->gather_rows, (long long)c->gather_width);
    return HS_OK;
}

/* Everything a round uses: plan, counters, requests, gather buffers, the
 * NPU's comm stream and events. */
static hs_status allocate(hs_dp *dp, const int64_t *numel, int n_tensors)
{
    const size_t n = (size_t)(n_tensors > 0 ? n_tensors : 1);
    dp->buckets = calloc(n, sizeof *dp->buckets);
    dp->remaining = calloc(n, sizeof *dp->remaining);
    dp->started = calloc(n, 1);
    dp->reqs = calloc(n + 2, sizeof *dp->reqs);
    dp->gathering = calloc(n, 1);
    dp->params_in = calloc(n, sizeof *dp->params_in);
    if (!dp->buckets || !dp->remaining || !dp->started || !dp->reqs || !dp->gathering || !dp->params_in)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_dp_new: out of host memory");
    HS_TRY(hs_dp_plan(&dp->cfg, numel, n_tensors, dp->buckets, &dp->n_buckets));
    dp->total = dp->buckets[0].offset + dp->buckets[0].numel;
    const size_t rows = (size_t)hs_comm_size(dp->comm) * (size_t)dp->cfg.gather_rows;
    if (rows > 0) {
        void *p;
        HS_TRY(dev_alloc(dp, rows * (size_t)dp->cfg.gather_width * sizeof(float), &p));
        dp->all_rows = p;
        HS_TRY(dev_alloc(dp, rows * sizeof(int32_t), &p));
        dp->all_ids = p;
    }
    hs_npu *npu = dp->cfg.npu;
    dp->values = !npu || hs_npu_mode_of(npu) == HS_NPU_EXECUTE;
    if (npu) {
        HS_TRY(hs_npu_stream_new(npu, &dp->comm_stream));
        HS_TRY(hs_npu_event_new(npu, &dp->computed));
        HS_TRY(hs_npu_event_new(npu, &dp->reduced));
        for (int b = 0; dp->cfg.shard && b < dp->n_buckets; b++)
            HS_TRY(hs_npu_event_new(npu, &dp->params_in[b]));
    }
    return HS_OK;
}

hs_status hs_dp_new(hs_comm *comm, float *grads, const int64_t *numel, int n_tensors, const hs_dp_config *cfg,
                    hs_dp **out)
{
    if (!out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_dp_new: out is NULL");
    *out = NULL;
    if (!comm || !grads)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_dp_new: the group and the gradient buffer are required");
    if (cfg)
        HS_TRY(HS_CHECK_SIZE(cfg, hs_dp_config));
    const hs_dp_config c = cfg ? *cfg : hs_dp_config_default();
    HS_TRY(check_config(&c));
    hs_dp *dp = calloc(1, sizeof *dp);
    if (!dp)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_dp_new: out of host memory");
    dp->comm = comm;
    dp->grads = grads;
    dp->cfg = c;
    hs_status s = allocate(dp, numel, n_tensors);
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
    if (dp->open || dp->n_gathering) /* the buffers must not be freed under a collective */
        (void)hs_comm_waitall(dp->reqs, (size_t)dp->n_buckets + 2);
    for (int b = 0; dp->params_in && b < dp->n_buckets; b++)
        hs_npu_event_free(dp->params_in[b]);
    free(dp->params_in);
    free(dp->gathering);
    hs_npu_event_free(dp->reduced);
    hs_npu_event_free(dp->computed);
    hs_npu_stream_free(dp->comm_stream);
    dev_free(dp, dp->all_ids);
    dev_free(dp, dp->all_rows);
    free(dp->reqs);
    free(dp->started);
    free(dp->remaining);
    free(dp->buckets);
    free(dp);
}

hs_comm *hs_dp_comm(const hs_dp *dp) { return dp->comm; }

int hs_dp_num_buckets(const hs_dp *dp) { return dp->n_buckets; }

const hs_dp_bucket *hs_dp_bucket_at(const hs_dp *dp, int i)
{
    return i >= 0 && i < dp->n_buckets ? &dp->buckets[i] : NULL;
}

/* The stream the model's kernels run on: its NPU's default stream
 * (hs_model_device). */
static hs_npu_stream *compute_stream(const hs_dp *dp)
{
    return hs_npu_default_stream(dp->cfg.npu);
}

/* On the NPU: the comm stream waits for the compute stream's work so far,
 * then takes collective c's simulated time on `bytes`. */
static hs_status simulate(hs_dp *dp, hs_coll c, double bytes)
{
    if (!dp->comm_stream)
        return HS_OK;
    double t;
    hs_npu_event_record(dp->computed, compute_stream(dp));
    hs_npu_stream_wait(dp->comm_stream, dp->computed);
    HS_TRY(hs_comm_advance(dp->comm, dp->comm_stream, c, bytes, &t));
    dp->stats.sim_comm_s += t;
    return HS_OK;
}

/* This rank's block of bucket k: [*off, *off + *len) relative to the bucket. */
static void block_of(const hs_dp *dp, const hs_dp_bucket *k, size_t *off, size_t *len)
{
    hs_comm_block((size_t)k->numel, hs_comm_size(dp->comm), hs_comm_rank(dp->comm), off, len);
}

/* Starts bucket b's all-reduce, or (sharded) its reduce-scatter into this
 * rank's block, in place. */
static hs_status start(hs_dp *dp, int b)
{
    const hs_dp_bucket *k = &dp->buckets[b];
    const double bytes = (double)k->numel * sizeof(float);
    dp->started[b] = 1;
    HS_TRY(simulate(dp, dp->cfg.shard ? HS_COLL_REDUCE_SCATTER : HS_COLL_ALLREDUCE, bytes));
    if (dp->values && hs_comm_size(dp->comm) > 1) {
        float *g = dp->grads + k->offset;
        size_t off, len;
        block_of(dp, k, &off, &len);
        HS_TRY(dp->cfg.shard
                   ? hs_comm_ireduce_scatter(dp->comm, g, g + off, (size_t)k->numel, HS_FP32, dp->cfg.op, &dp->reqs[b])
                   : hs_comm_iallreduce(dp->comm, g, g, (size_t)k->numel, HS_FP32, dp->cfg.op, &dp->reqs[b]));
    }
    dp->stats.buckets++;
    dp->stats.bytes += bytes;
    return HS_OK;
}

hs_status hs_dp_begin(hs_dp *dp)
{
    if (!dp)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_dp_begin: NULL reducer");
    if (dp->open)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_dp_begin: the previous round has not finished (hs_dp_finish)");
    HS_TRY(hs_dp_gather_finish(dp)); /* the round's buckets reuse the requests */
    dp->open = 1;
    dp->gathered = 0;
    dp->stats = (hs_dp_stats){0};
    for (int b = 0; b < dp->n_buckets; b++) {
        dp->remaining[b] = dp->buckets[b].numel;
        dp->started[b] = 0;
    }
    return HS_OK;
}

hs_status hs_dp_grads_ready(hs_dp *dp, int64_t begin, int64_t end)
{
    if (!dp || !dp->open)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_dp_grads_ready outside a round (hs_dp_begin .. hs_dp_finish)");
    if (begin < 0 || begin > end || end > dp->total)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_dp_grads_ready: [%lld, %lld) is not a range of the %lld gradients",
                        (long long)begin, (long long)end, (long long)dp->total);
    if (!dp->cfg.overlap)
        return HS_OK;
    for (int b = 0; b < dp->n_buckets && end > begin; b++) {
        const hs_dp_bucket *k = &dp->buckets[b];
        const int64_t lo = begin > k->offset ? begin : k->offset;
        const int64_t hi = end < k->offset + k->numel ? end : k->offset + k->numel;
        if (hi <= lo)
            continue;
        if (dp->started[b] || (dp->remaining[b] -= hi - lo) < 0)
            return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_dp_grads_ready: gradients of bucket %d reported twice", b);
        if (dp->remaining[b] == 0) {
            HS_TRY(start(dp, b));
            dp->stats.early++;
        }
    }
    return HS_OK;
}

hs_status hs_dp_gather_rows(hs_dp *dp, const float *rows, const int32_t *ids, int64_t n, float **all_rows,
                            int32_t **all_ids)
{
    if (!dp || !dp->open || dp->gathered)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_dp_gather_rows: once a round, between hs_dp_begin and hs_dp_finish");
    if (!rows || !ids || !all_rows || !all_ids || n < 1 || n > dp->cfg.gather_rows)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_dp_gather_rows: %lld rows (1..%lld, buffers required)",
                        (long long)n, (long long)dp->cfg.gather_rows);
    dp->gathered = 1;
    const int p = hs_comm_size(dp->comm);
    if (p == 1) {
        *all_rows = (float *)rows;
        *all_ids = (int32_t *)ids;
        return HS_OK;
    }
    const size_t w = (size_t)dp->cfg.gather_width, count = (size_t)p * (size_t)n;
    const double bytes = (double)count * (double)(w * sizeof(float) + sizeof(int32_t));
    HS_TRY(simulate(dp, HS_COLL_ALLGATHER, bytes));
    dp->stats.bytes += bytes;
    *all_rows = dp->all_rows;
    *all_ids = dp->all_ids;
    if (!dp->values)
        return HS_OK;
    hs_comm_request **r = dp->reqs + dp->n_buckets;
    HS_TRY(hs_comm_iallgather(dp->comm, rows, dp->all_rows, count * w, HS_FP32, &r[GATHER_ROWS]));
    return hs_comm_iallgather(dp->comm, ids, dp->all_ids, count, HS_INT32, &r[GATHER_IDS]);
}

hs_status hs_dp_finish(hs_dp *dp, hs_dp_stats *stats)
{
    if (!dp || !dp->open)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_dp_finish without hs_dp_begin");
    hs_status s = HS_OK;
    for (int b = 0; b < dp->n_buckets && !s; b++)
        if (!dp->started[b])
            s = start(dp, b);
    /* Wait even after a failed start: the buffers stay in use until every
     * started collective is done. */
    const double t0 = hs_time_now();
    hs_status w = hs_comm_waitall(dp->reqs, (size_t)dp->n_buckets + 2);
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

hs_status hs_dp_shard_of(const hs_dp *dp, int b, int64_t *offset, int64_t *numel)
{
    if (!dp || !offset || !numel || b < 0 || b >= dp->n_buckets)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_dp_shard_of: bucket %d of %d (or a NULL argument)", b,
                        dp ? dp->n_buckets : 0);
    size_t off, len;
    block_of(dp, &dp->buckets[b], &off, &len);
    *offset = dp->buckets[b].offset + (int64_t)off;
    *numel = (int64_t)len;
    return HS_OK;
}

hs_status hs_dp_gather_start(hs_dp *dp, void *params, hs_dtype dt)
{
    if (!dp || (!params && dp->values) || !dp->cfg.shard || dp->open || dp->n_gathering)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_dp_gather_start: a sharded reducer, a buffer, no round open and "
                        "no gather in flight");
    const int p = hs_comm_size(dp->comm);
    hs_status s = HS_OK;
    const size_t es = hs_dtype_size(dt);
    for (int b = dp->n_buckets - 1; b >= 0 && !s; b--) { /* in registry order: the forward's */
        const hs_dp_bucket *k = &dp->buckets[b];
        s = simulate(dp, HS_COLL_ALLGATHER, (double)k->numel * (double)es);
        if (!s && dp->comm_stream)
            hs_npu_event_record(dp->params_in[b], dp->comm_stream);
        if (!s && dp->values && p > 1) {
            size_t off, len;
            block_of(dp, k, &off, &len);
            char *w = (char *)params + (size_t)k->offset * es;
            s = hs_comm_iallgather(dp->comm, w + off * es, w, (size_t)k->numel, dt, &dp->reqs[b]);
        }
        if (!s) {
            dp->gathering[b] = 1;
            dp->n_gathering++;
        }
    }
    if (s) /* the buffer stays in use until every started gather is done */
        (void)hs_dp_gather_finish(dp);
    return s;
}

hs_status hs_dp_gather_wait(hs_dp *dp, int64_t begin, int64_t end)
{
    hs_status s = HS_OK;
    for (int b = 0; dp->n_gathering && b < dp->n_buckets; b++) {
        const hs_dp_bucket *k = &dp->buckets[b];
        if (!dp->gathering[b] || k->offset >= end || k->offset + k->numel <= begin)
            continue;
        const hs_status w = hs_comm_wait(&dp->reqs[b]); /* a no-op for a request never posted (NULL) */
        s = s ? s : w;
        if (dp->comm_stream) /* the forward reads them */
            hs_npu_stream_wait(compute_stream(dp), dp->params_in[b]);
        dp->gathering[b] = 0;
        dp->n_gathering--;
    }
    return s;
}

hs_status hs_dp_gather_finish(hs_dp *dp)
{
    return dp ? hs_dp_gather_wait(dp, 0, dp->total) : HS_OK;
}

int hs_dp_gathering(const hs_dp *dp) { return dp && dp->n_gathering > 0; }

hs_status hs_dp_gather_params(hs_dp *dp, float *params)
{
    HS_TRY(hs_dp_gather_start(dp, params, HS_FP32));
    return hs_dp_gather_finish(dp);
}

hs_status hs_dp_sum(hs_dp *dp, float *buf, int64_t n)
{
    if (!dp || (!buf && dp->values && n > 0) || n < 0 || dp->open)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_dp_sum: a reducer outside a round and a buffer");
    HS_TRY(simulate(dp, HS_COLL_ALLREDUCE, (double)n * sizeof(float)));
    if (dp->values && n > 0 && hs_comm_size(dp->comm) > 1)
        HS_TRY(hs_comm_allreduce(dp->comm, buf, buf, (size_t)n, HS_FP32, HS_REDUCE_SUM));
    if (dp->comm_stream) { /* what follows reads the sum */
        hs_npu_event_record(dp->reduced, dp->comm_stream);
        hs_npu_stream_wait(compute_stream(dp), dp->reduced);
    }
    return HS_OK;
}
