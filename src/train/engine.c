/* The step driver of every layout (hyperspeed/engine.h): this rank's
 * chunks, the pipeline schedule run by the executor (parallel/pp_exec.h)
 * with the chunks' forward and backward as its work, the DP reduction from
 * the layer hooks, the gradient sums across the layout, the global norm,
 * AdamW. */
#include "core/config_size.h"
#include "core/try.h"
#include "hyperspeed/engine.h"
#include "hyperspeed/kernels.h"
#include "hyperspeed/memory.h"
#include "memory/host_pool.h"
#include "model/model_registry.h"
#include "parallel/pp_exec.h"
#include "train/engine_config.h"
#include "train/optimizer_norm.h"
#include "model/model_stage.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One chunk of the model on this rank. */
typedef struct chunk {
    hs_model *model;
    hs_optimizer *opt;
    hs_dp *dp;    /* NULL without data parallelism */
    int global;   /* its index in the model: chunk * pp + stage */
    int last_bwd; /* the micro-batch of its last backward in the schedule: the one DP listens to */
    int gathers;  /* with DP, the chunk with the embedding: that backward's embedding rows are gathered */
    float *all_rows;   /* ... from every DP rank (the reducer's buffers) */
    int32_t *all_ids;
    int last_block;    /* hs_layer_info.layer of its last block in a forward (HS_LAYER_HEAD on the last chunk) */
    int stale;         /* overlap_param_gather: the parameters' gather is in flight, the compute copy behind */
} chunk;

/* What a step accumulates while the executor runs its schedule. */
typedef struct step_acc {
    const int32_t *tokens, *targets;
    double loss_sum;
    hs_dp_stats dp;
} step_acc;

struct hs_engine {
    hs_runtime *rt;
    hs_engine_config ec;
    hs_model_config cfg;
    hs_layout_plan plan;
    hs_comm *tp, *pp, *dpc; /* dpc NULL without data parallelism */
    int stage, p, v, m, G, dp;
    hs_pp_link link;         /* to the neighbouring stages */
    hs_pp_exec *exec;        /* the schedule and its messages */
    chunk *chunks;
    step_acc *acc;           /* during a step: what it accumulates */
    float *tied;             /* the other end's tied wte gradient (first / last stage), else NULL */
    int tied_chunk;          /* the chunk holding wte on this rank, -1 none */
    int tied_entry;          /* ... wte's registry entry in it */
    int tied_started;        /* the exchange is in flight (tied_start .. tied_finish) */
    hs_comm_request *tied_req[4];       /* the gradients sent and received, and (NPU) their time stamps */
    hs_npu_stream *tied_stream;         /* NPU: the exchange's simulated time runs here, */
    hs_npu_event *tied_ready, *tied_done; /* after the gradient's kernels, before the add */
    int64_t tied_sent_at, tied_arrives_at; /* NPU: simulated arrival times (bits of doubles) out and in */
    int64_t *gather;         /* [max(tp, pp)] norm shares */
    hs_npu *npu;             /* NULL on the CPU */
    int values;              /* buffers hold values (CPU or execute-mode NPU) */
};

hs_engine_config hs_engine_config_default(void)
{
    hs_engine_config c;
    memset(&c, 0, sizeof c);
    c.size = sizeof c;
    c.layout = hs_layout_default();
    c.micro_batch = 1;
    c.seq = 64;
    c.model = hs_model_options_default();
    c.optim = hs_optimizer_config_default();
    c.dp = hs_dp_config_default();
    return c;
}

/* ------------------------------------------------------------ buffers */

static hs_status dev_alloc(hs_engine *e, size_t bytes, float **out)
{
    void *p;
    if (e->npu) {
        HS_TRY(hs_npu_malloc(e->npu, bytes, &p));
    } else if (!(p = hs_alloc(bytes))) {
        return hs_error(HS_ERR_OUT_OF_MEMORY, "engine: %zu B of buffers", bytes);
    }
    *out = p;
    return HS_OK;
}

static void dev_free(hs_engine *e, float *p)
{
    if (e->npu)
        (void)hs_npu_free_mem(e->npu, p); /* an address the engine allocated (or NULL) */
    else
        hs_free(p);
}

/* The registry entry of m flagged tied (head 0) or head_weight (head 1), or -1. */
static int flagged_entry(const hs_model *m, int head)
{
    for (int i = 0; i < hs_model_num_tensors(m); i++) {
        const hs_param_info *p = hs_model_param(m, i);
        if (head ? p->head_weight : p->tied)
            return i;
    }
    return -1;
}

/* 1 when chunk c's optimizer holds only the rank's blocks. */
static int sharded(const hs_engine *e, int c) { return e->ec.zero && e->chunks[c].dp; }

/* ZeRO-1: the chunk's optimizer over this rank's blocks of the DP
 * reducer's buckets (in ascending offsets: the buckets come from the end). */
static hs_status new_sharded_optimizer(hs_engine *e, chunk *ch)
{
    const int nb = hs_dp_num_buckets(ch->dp);
    int64_t *off = malloc(2 * (size_t)nb * sizeof *off), *len = off ? off + nb : NULL;
    hs_status s = off ? HS_OK : hs_error(HS_ERR_OUT_OF_MEMORY, "engine: %d shard blocks", nb);
    for (int b = 0; !s && b < nb; b++)
        s = hs_dp_shard_of(ch->dp, nb - 1 - b, &off[b], &len[b]);
    if (!s)
        s = hs_optimizer_new_sharded(ch->model, &e->ec.optim, off, len, nb, &ch->opt);
    free(off);
    return s;
}

/* 1 when the chunk's sharded update leaves the compute copy of its blocks
 * (and its pieces of the fp32 copies) on the device, to be gathered there:
 * a sharded master (ZeRO-1, 16-bit compute) or an offloaded optimizer
 * (whose host master then holds the rank's blocks current only, gathered
 * for a checkpoint). Else the fp32 values are gathered and cast. */
static int gathers_compute(const chunk *ch)
{
    const hs_registry *reg = hs_model_registry(ch->model);
    return hs_optimizer_holds_master(ch->opt) || reg->values_on_host;
}

/* ZeRO with overlap_param_gather, as a layer hook (ctx the chunk): before
 * each block's forward, its parameters' buckets are waited for and its
 * compute copy refreshed; after the chunk's last block everything has
 * landed. */
static hs_status gather_hook(void *ctx, hs_model *m, const hs_layer_info *info)
{
    chunk *ch = ctx;
    if (info->event != HS_BEFORE_FORWARD || !ch->stale)
        return HS_OK;
    HS_TRY(hs_dp_gather_wait(ch->dp, info->param_begin, info->param_end));
    if (!gathers_compute(ch)) /* the gathered fp32 values into the block's compute copy */
        HS_TRY(hs_model_sync_weights_range(m, info->param_begin, info->param_end));
    if (info->layer == ch->last_block) {
        ch->stale = 0;
        return hs_dp_gather_finish(ch->dp);
    }
    return HS_OK;
}

/* Every chunk's parameters gathered and its compute copy current (before
 * the parameters are read or written outside a forward). */
static hs_status settle(hs_engine *e)
{
    for (int c = 0; c < e->v; c++) {
        chunk *ch = &e->chunks[c];
        if (!ch->stale)
            continue;
        ch->stale = 0;
        HS_TRY(hs_dp_gather_finish(ch->dp));
        if (!gathers_compute(ch))
            HS_TRY(hs_model_sync_weights(ch->model));
    }
    return HS_OK;
}

static hs_status build_chunk(hs_engine *e, int c)
{
    chunk *ch = &e->chunks[c];
    hs_model_options mo = e->ec.model;
    const int g = c * e->p + e->stage;
    ch->global = g;
    mo.shard = hs_model_shard_default();
    mo.shard.tp = e->ec.layout.tp;
    mo.shard.tp_rank = hs_runtime_rank(e->rt, HS_GROUP_TP);
    mo.shard.tp_comm = e->tp;
    mo.shard.sequence_parallel = e->ec.layout.sequence_parallel;
    mo.shard.first_layer = e->plan.first_layer[g];
    mo.shard.n_layers = e->plan.first_layer[g + 1] - e->plan.first_layer[g];
    ch->last_bwd = hs_pp_exec_last_bwd(e->exec, c);
    mo.shard.slots = hs_pp_exec_slots(e->exec, c);
    mo.shard.master_sharded = hs_engine_master_sharded(&e->ec, e->dpc != NULL);
    HS_TRY(hs_model_new_ex(&e->cfg, e->ec.micro_batch, e->ec.seq, &mo, &ch->model));
    if (e->dpc) {
        const int n = hs_model_num_tensors(ch->model);
        int64_t *numel = malloc(sizeof *numel * (size_t)n);
        if (!numel)
            return hs_error(HS_ERR_OUT_OF_MEMORY, "engine: %d tensor sizes", n);
        for (int i = 0; i < n; i++)
            numel[i] = hs_model_param(ch->model, i)->numel;
        hs_dp_config dc = e->ec.dp;
        dc.op = HS_REDUCE_SUM; /* the loss scale divides by the DP size */
        ch->gathers = g == 0;
        dc.gather_rows = ch->gathers ? (int64_t)e->ec.micro_batch * e->ec.seq : 0;
        dc.gather_width = ch->gathers ? e->cfg.d_model : 0;
        dc.npu = e->npu;
        dc.shard = e->ec.zero >= 1;
        /* a tied wte's two pipeline ends shard it alike: in a bucket of its own (it is entry 0 on both) */
        dc.first_alone = dc.shard && e->p > 1 && flagged_entry(ch->model, 0) == 0;
        hs_status s = hs_dp_new(e->dpc, hs_model_registry(ch->model)->grad, numel, n, &dc, &ch->dp);
        free(numel);
        HS_TRY(s);
    }
    HS_TRY(ch->dp && e->ec.zero ? new_sharded_optimizer(e, ch) : hs_optimizer_new(ch->model, &e->ec.optim, &ch->opt));
    ch->last_block = g == e->G - 1 ? HS_LAYER_HEAD : e->plan.first_layer[g + 1] - 1;
    if (ch->dp && e->ec.zero && e->ec.overlap_param_gather)
        HS_TRY(hs_model_add_hook(ch->model, gather_hook, ch));
    const int tied = flagged_entry(ch->model, 0);
    if (tied >= 0 && e->p > 1) { /* a tied head on another stage than the embedding */
        e->tied_chunk = c;
        e->tied_entry = tied;
        HS_TRY(dev_alloc(e, (size_t)hs_model_param(ch->model, tied)->numel * sizeof(float), &e->tied));
        if (e->npu) {
            HS_TRY(hs_npu_stream_new(e->npu, &e->tied_stream));
            HS_TRY(hs_npu_event_new(e->npu, &e->tied_ready));
            HS_TRY(hs_npu_event_new(e->npu, &e->tied_done));
        }
    }
    return HS_OK;
}

/* Host offload: this rank's host pool (the estimator's figure) must
 * fit what the host has for it (the NPU spec's share in estimate mode,
 * else the NUMA node's free memory), checked before anything is
 * allocated. */
static hs_status check_host_memory(hs_engine *e)
{
    if (!e->ec.model.offload)
        return HS_OK;
    const int world = hs_runtime_size(e->rt, HS_GROUP_WORLD);
    hs_memory_rank *r = malloc((size_t)world * sizeof *r);
    if (!r)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "engine: %d ranks' memory estimates", world);
    hs_status s = hs_memory_estimate(&e->cfg, &e->ec, world, e->npu ? hs_npu_spec_of(e->npu) : NULL, r);
    const int t = hs_runtime_rank(e->rt, HS_GROUP_TP), d = hs_runtime_rank(e->rt, HS_GROUP_DP);
    const size_t need = s ? 0 : r[t + e->ec.layout.tp * (d + e->dp * e->stage)].host;
    free(r);
    HS_TRY(s);
    const int counted = e->npu && hs_npu_mode_of(e->npu) == HS_NPU_ESTIMATE;
    char names[64];
    const size_t avail = counted ? (size_t)hs_npu_spec_of(e->npu)->host_bytes : hs_pool_available();
    if (need > avail)
        return hs_error(HS_ERR_OUT_OF_MEMORY,
                        "engine: host offload (%s) needs %.2f GiB (%zu B) of host memory on this rank but %s %.2f "
                        "GiB (%zu B); nothing was allocated",
                        hs_offload_name(e->ec.model.offload, names, sizeof names), (double)need / 1073741824.0, need,
                        counted ? "the NPU spec gives one NPU's rank" : "its NUMA node has",
                        (double)avail / 1073741824.0, avail);
    return HS_OK;
}

/* The size tags of the config and of the configs it holds. */
static hs_status check_sizes(const hs_engine_config *ec)
{
    HS_TRY(HS_CHECK_SIZE(ec, hs_engine_config));
    HS_TRY(HS_CHECK_SIZE(&ec->layout, hs_layout));
    HS_TRY(HS_CHECK_SIZE(&ec->model, hs_model_options));
    HS_TRY(HS_CHECK_SIZE(&ec->model.shard, hs_model_shard));
    HS_TRY(HS_CHECK_SIZE(&ec->optim, hs_optimizer_config));
    return HS_CHECK_SIZE(&ec->dp, hs_dp_config);
}

hs_status hs_engine_check_config(const hs_engine_config *ec)
{
    HS_TRY(check_sizes(ec));
    const hs_layout *l = &ec->layout;
    if (ec->micro_batch < 1 || ec->seq < 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "engine: micro_batch=%d and seq=%d must be >= 1", ec->micro_batch,
                        ec->seq);
    if (ec->zero != 0 && ec->zero != 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "engine: zero=%d; this build has ZeRO stages 0 (none) and 1 (the distributed optimizer)",
                        ec->zero);
    if (ec->overlap_param_gather && !ec->zero)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "engine: overlap_param_gather overlaps ZeRO's parameter all-gather with the next forward: "
                        "it needs zero >= 1");
    if ((ec->model.offload & HS_OFFLOAD_PARAMS) && ec->zero != 3)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "engine: offload of params moves ZeRO-3's parameter shards to the host: it needs zero=3 "
                        "(this run has zero=%d)",
                        ec->zero);
    const int G = l->pp * l->virtual_stages;
    if (4 * G * l->micro_batches + 2 > 32768 || l->micro_batches > 256)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "engine: %d chunks x %d micro-batches need more point-to-point tags than there are (at most "
                        "256 micro-batches, 4 x chunks x micro-batches <= 32766)",
                        G, l->micro_batches);
    return HS_OK;
}

static hs_status check_layout(hs_runtime *rt, const hs_engine_config *ec)
{
    HS_TRY(hs_engine_check_config(ec));
    const hs_layout *l = &ec->layout;
    if (l->tp != hs_runtime_size(rt, HS_GROUP_TP) || l->pp != hs_runtime_size(rt, HS_GROUP_PP))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "engine: layout tp=%d pp=%d, but the runtime's grid has tp=%d pp=%d",
                        l->tp, l->pp, hs_runtime_size(rt, HS_GROUP_TP), hs_runtime_size(rt, HS_GROUP_PP));
    return HS_OK;
}

hs_status hs_engine_new(hs_runtime *rt, const hs_model_config *cfg, const hs_engine_config *ec, hs_engine **out)
{
    if (!rt || !cfg || !ec || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_engine_new: NULL argument");
    *out = NULL;
    HS_TRY(check_layout(rt, ec));
    hs_engine *e = calloc(1, sizeof *e);
    if (!e)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_engine_new: out of host memory");
    e->rt = rt;
    e->ec = *ec;
    e->ec.layout.seq = ec->seq;
    e->cfg = *cfg;
    e->tied_chunk = -1;
    hs_status s = hs_layout_check(cfg, &e->ec.layout, &e->plan);
    if (s) {
        free(e);
        return s;
    }
    if (e->plan.padded_vocab != cfg->vocab_size)
        hs_log(HS_LOG_WARN, "vocabulary %d padded to %d, a multiple of tp=%d, for equal vocab-parallel shards",
               cfg->vocab_size, e->plan.padded_vocab, ec->layout.tp);
    e->tp = hs_runtime_comm(rt, HS_GROUP_TP);
    e->pp = hs_runtime_comm(rt, HS_GROUP_PP);
    e->dp = hs_runtime_size(rt, HS_GROUP_DP);
    e->dpc = e->dp > 1 ? hs_runtime_comm(rt, HS_GROUP_DP) : NULL;
    e->stage = hs_runtime_rank(rt, HS_GROUP_PP);
    e->p = ec->layout.pp;
    e->v = ec->layout.virtual_stages;
    e->m = ec->layout.micro_batches;
    e->G = e->p * e->v;
    e->npu = ec->model.device == HS_DEVICE_NPU ? ec->model.npu : NULL;
    e->values = !e->npu || hs_npu_mode_of(e->npu) == HS_NPU_EXECUTE;
    e->chunks = calloc((size_t)e->v, sizeof *e->chunks);
    int ng = ec->layout.tp; /* the largest group whose doubles sum_doubles gathers */
    ng = e->p > ng ? e->p : ng;
    ng = e->dp > ng ? e->dp : ng;
    e->gather = calloc((size_t)ng, sizeof *e->gather);
    if (!e->chunks || !e->gather)
        s = hs_error(HS_ERR_OUT_OF_MEMORY, "hs_engine_new: out of host memory");
    if (!s)
        s = check_host_memory(e);
    if (!s)
        s = hs_pp_exec_new(ec->layout.schedule, e->p, e->stage, e->m, e->v, &e->exec);
    for (int c = 0; !s && c < e->v; c++)
        s = build_chunk(e, c);
    if (!s && ec->zero && !e->dpc)
        hs_log(HS_LOG_WARN, "zero=%d with one data-parallel rank: nothing to shard, no effect", ec->zero);
    const int64_t boundary = s ? 0 : hs_model_boundary_numel(e->chunks[0].model, ec->micro_batch, ec->seq);
    if (!s)
        s = hs_pp_link_init(&e->link, rt, e->npu, e->G, e->m, (double)boundary * 4);
    if (!s)
        s = hs_pp_exec_attach(e->exec, &e->link, boundary);
    if (s) {
        hs_engine_free(e);
        return s;
    }
    *out = e;
    return HS_OK;
}

void hs_engine_free(hs_engine *e)
{
    if (!e)
        return;
    hs_pp_exec_free(e->exec); /* waits for its sends first */
    for (int c = 0; e->chunks && c < e->v; c++) {
        chunk *ch = &e->chunks[c];
        hs_dp_free(ch->dp);
        hs_optimizer_free(ch->opt);
        hs_model_free(ch->model);
    }
    if (e->tied_started) /* a failed step's exchange: its buffers stay until it ends */
        (void)hs_comm_waitall(e->tied_req, 4);
    hs_npu_event_free(e->tied_done);
    hs_npu_event_free(e->tied_ready);
    hs_npu_stream_free(e->tied_stream);
    dev_free(e, e->tied);
    free(e->gather);
    free(e->chunks);
    free(e);
}

hs_status hs_engine_init(hs_engine *e, uint64_t seed)
{
    if (!e)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_engine_init: engine is NULL");
    for (int c = 0; c < e->v; c++) {
        HS_TRY(hs_model_init(e->chunks[c].model, seed));
        HS_TRY(hs_optimizer_init_master(e->chunks[c].opt, seed)); /* ZeRO-1's sharded master, if held */
    }
    return HS_OK;
}

/* ------------------------------------------------------------ messages */

/* The stream the chunks' kernels run on: their NPU's default stream (hs_model_device). */
static hs_npu_stream *stream(const hs_engine *e) { return hs_npu_default_stream(e->npu); }

static double now(const hs_engine *e) { return hs_pp_now(&e->link); }

/* ------------------------------------------------------------ the step */

/* The part of the tied wte's gradient the ends exchange: all of it, or
 * under ZeRO this DP rank's block of its bucket (alike on both ends:
 * hs_dp_config.first_alone), elements [*off, *off + *n) of the entry. */
static hs_status tied_part(hs_engine *e, int64_t *off, int64_t *n)
{
    const chunk *ch = &e->chunks[e->tied_chunk];
    *off = 0;
    *n = hs_model_param(ch->model, e->tied_entry)->numel;
    return sharded(e, e->tied_chunk) ? hs_dp_shard_of(ch->dp, hs_dp_num_buckets(ch->dp) - 1, off, n) : HS_OK;
}

/* The tied embedding: the first and the last stage each add the other's
 * wte gradient (a + b on one, b + a on the other: the same bits). The
 * exchange starts as soon as this end's gradient is final (its chunk's
 * last backward; with data parallelism, once the DP sum is in) and runs
 * while the step goes on (the other chunks' reductions, the rest of the
 * norm). On the NPU its simulated time runs on a stream of its own, and
 * each end sends the other the time its gradient arrives (as the pipeline's
 * messages do): the add waits for the later of its own send and the peer's
 * arrival. tied_finish waits for it and adds. */
static hs_status tied_start(hs_engine *e)
{
    hs_model *m = e->chunks[e->tied_chunk].model;
    int64_t off, n;
    HS_TRY(tied_part(e, &off, &n));
    hs_tensor wg;
    HS_TRY(hs_model_tensor(m, e->tied_entry, HS_PARAM_GRAD, &wg));
    wg.data = (float *)wg.data + off;
    const int peer = e->stage == 0 ? e->p - 1 : 0, tag = hs_pp_tied_tag(&e->link);
    e->tied_started = 1;
    if (e->values) {
        HS_TRY(hs_comm_isend(e->pp, wg.data, (size_t)n, HS_FP32, peer, tag, &e->tied_req[0]));
        HS_TRY(hs_comm_irecv(e->pp, e->tied, (size_t)n, HS_FP32, peer, tag, &e->tied_req[1]));
    }
    if (e->npu) {
        hs_npu_event_record(e->tied_ready, stream(e));
        hs_npu_stream_wait(e->tied_stream, e->tied_ready);
        HS_TRY(hs_comm_advance(e->pp, e->tied_stream, HS_COLL_SEND, (double)n * sizeof(float), NULL));
        hs_npu_event_record(e->tied_done, e->tied_stream);
        const double arrival = hs_npu_stream_time(e->tied_stream);
        memcpy(&e->tied_sent_at, &arrival, sizeof arrival);
        HS_TRY(hs_comm_isend(e->pp, &e->tied_sent_at, 1, HS_INT64, peer, tag + 1, &e->tied_req[2]));
        HS_TRY(hs_comm_irecv(e->pp, &e->tied_arrives_at, 1, HS_INT64, peer, tag + 1, &e->tied_req[3]));
    }
    return HS_OK;
}

static hs_status tied_finish(hs_engine *e)
{
    e->tied_started = 0;
    HS_TRY(hs_comm_waitall(e->tied_req, 4));
    if (e->npu) {
        hs_npu_stream_wait(stream(e), e->tied_done);
        double arrival;
        memcpy(&arrival, &e->tied_arrives_at, sizeof arrival);
        if (arrival > now(e))
            hs_npu_stream_advance(stream(e), "waiting for the tied embedding's gradient", "idle", arrival - now(e));
    }
    hs_model *m = e->chunks[e->tied_chunk].model;
    int64_t off, n;
    HS_TRY(tied_part(e, &off, &n));
    hs_tensor wg;
    HS_TRY(hs_model_tensor(m, e->tied_entry, HS_PARAM_GRAD, &wg));
    hs_tensor t = hs_view1(e->tied, HS_FP32, n);
    wg = hs_view1((float *)wg.data + off, HS_FP32, n);
    wg.device = t.device = hs_npu_device(e->npu);
    return hs_residual_backward(&wg, NULL, &t);
}

/* The DP reducer as a layer hook (ctx the hs_dp): after each block's
 * backward its final gradients go to their buckets, so each bucket's
 * all-reduce starts as soon as the backward has finished it. */
static hs_status dp_layer_hook(void *dp, hs_model *m, const hs_layer_info *info)
{
    (void)m;
    return info->event == HS_AFTER_BACKWARD ? hs_dp_grads_ready(dp, info->grad_begin, info->grad_end) : HS_OK;
}

/* The embedding's gradient under data parallelism: its rows, dL/d(its
 * output) for the tokens of the chunk's last backward, gathered from every
 * DP rank (dp x B x T rows of C floats instead of the [V, C] table's
 * all-reduce); wte's dense part (earlier micro-batches, a tied head) is in
 * the buckets, which start right after the head. reduce_and_update adds
 * the group's rows once the round is finished. */
static hs_status gather_embedding_rows(chunk *ch)
{
    const float *rows;
    const int32_t *ids;
    int B, T;
    HS_TRY(hs_model_embedding_grad_rows(ch->model, &rows, &ids, &B, &T));
    return hs_dp_gather_rows(ch->dp, rows, ids, (int64_t)B * T, &ch->all_rows, &ch->all_ids);
}

/* ---- the executor's work (parallel/pp_exec.h): a chunk's passes ---- */

static hs_status work_input(void *ctx, int c, int sl, float **buf)
{
    hs_model *m = ((hs_engine *)ctx)->chunks[c].model;
    HS_TRY(hs_model_set_slot(m, sl));
    return hs_model_stage_input(m, buf);
}

/* Forward of micro-batch k; the last chunk adds its loss to the step's. */
static hs_status work_forward(void *ctx, int c, int sl, int k, const float **out)
{
    hs_engine *e = ctx;
    chunk *ch = &e->chunks[c];
    const int mb = e->ec.micro_batch, T = e->ec.seq;
    const size_t off = (size_t)k * mb * T;
    float loss = 0;
    HS_TRY(hs_model_set_slot(ch->model, sl));
    HS_TRY(hs_model_forward_stage(ch->model, e->acc->tokens + off, NULL, e->acc->targets + off, mb, T, &loss));
    if (ch->global == e->G - 1) {
        e->acc->loss_sum += loss;
        return HS_OK;
    }
    return hs_model_stage_output(ch->model, out);
}

/* Backward of micro-batch k. DP listens to the chunk's last backward: its
 * buckets' all-reduces start as that backward finishes them, overlapping
 * the rest of the backward and of the schedule (other chunks, other
 * stages); the embedding's rows are gathered, and without DP the tied
 * embedding's exchange starts. */
static hs_status work_backward(void *ctx, int c, int sl, int k, const float *dout, const float **dx)
{
    hs_engine *e = ctx;
    chunk *ch = &e->chunks[c];
    HS_TRY(hs_model_set_slot(ch->model, sl));
    const int reduce_here = ch->dp && k == ch->last_bwd;
    if (reduce_here) {
        HS_TRY(hs_model_add_hook(ch->model, dp_layer_hook, ch->dp));
        const hs_status b = hs_dp_begin(ch->dp);
        if (b) {
            (void)hs_model_remove_hook(ch->model, dp_layer_hook, ch->dp); /* added above: always there */
            return b;
        }
        hs_model_defer_embedding_grad(ch->model, ch->gathers);
    }
    const float scale = 1.0f / (float)(e->m * e->dp);
    hs_status s = hs_model_backward_stage(ch->model, dout, scale);
    if (reduce_here) {
        (void)hs_model_remove_hook(ch->model, dp_layer_hook, ch->dp);
        hs_model_defer_embedding_grad(ch->model, 0);
    }
    if (!s && reduce_here && ch->gathers)
        s = gather_embedding_rows(ch);
    if (!s && c == e->tied_chunk && k == ch->last_bwd && !ch->dp)
        s = tied_start(e);
    HS_TRY(s);
    return ch->global > 0 ? hs_model_stage_input_grad(ch->model, dx) : HS_OK;
}

/* *x = the sum over group c of every rank's *x, in rank order (the bits
 * of the doubles all-gathered: every rank adds the same numbers in the
 * same order and gets the same sum). */
static hs_status sum_doubles(hs_engine *e, hs_comm *c, double *x)
{
    const int n = hs_comm_size(c);
    if (n == 1)
        return HS_OK;
    int64_t bits;
    memcpy(&bits, x, sizeof bits);
    HS_TRY(hs_comm_allgather(c, &bits, e->gather, (size_t)n, HS_INT64));
    double sum = 0;
    for (int r = 0; r < n; r++) {
        double v;
        memcpy(&v, &e->gather[r], sizeof v);
        sum += v;
    }
    *x = sum;
    return HS_OK;
}

/* Every rank's NPU stream moves to the latest one's time (in ns), so a
 * step's simulated time is measured from one common start. *t: that time. */
static hs_status sync_clocks(hs_engine *e, double *t)
{
    hs_comm *w = hs_runtime_comm(e->rt, HS_GROUP_WORLD);
    int64_t ns = (int64_t)llround(now(e) * 1e9);
    HS_TRY(hs_comm_allreduce(w, &ns, &ns, 1, HS_INT64, HS_REDUCE_MAX));
    *t = (double)ns * 1e-9;
    if (*t > now(e))
        hs_npu_stream_advance(stream(e), "waiting for the slowest rank", "idle", *t - now(e));
    return HS_OK;
}

/* After the schedule: the DP reductions (started in each chunk's last
 * backward) finished, the gradients summed across the layout (the SP
 * norms' partials, the tied embedding's two ends: sums commute with the DP
 * sum; the exchange overlaps the rest of this), the global norm, AdamW.
 * ZeRO-1: each DP rank reduced, counts and updates its blocks only, and
 * the updated blocks are all-gathered before the compute copy is
 * refreshed. */
static hs_status reduce_and_update(hs_engine *e, float lr, step_acc *acc, double *norm)
{
    HS_TRY(hs_pp_exec_drain(e->exec));
    HS_TRY(settle(e)); /* a chunk with no forward this step (none today) still has its gather in flight */
    for (int c = 0; c < e->v; c++) {
        chunk *ch = &e->chunks[c];
        if (ch->dp) {
            hs_dp_stats ds;
            HS_TRY(hs_dp_finish(ch->dp, &ds));
            if (c == 0)
                acc->dp = ds;
            if (ch->gathers)
                HS_TRY(hs_model_embedding_backward(ch->model, ch->all_rows, ch->all_ids, e->dp * e->ec.micro_batch,
                                                   e->ec.seq));
        }
        if (c == e->tied_chunk && !e->tied_started)
            HS_TRY(tied_start(e));
        HS_TRY(hs_model_tp_reduce_grads(ch->model));
    }
    /* the norm's squares: first all but the tied wte's, while it is exchanged */
    double sumsq = 0, x;
    int64_t tb = 0, te = 0;
    if (e->tied_chunk >= 0) {
        const hs_param_info *w = hs_model_param(e->chunks[e->tied_chunk].model, e->tied_entry);
        tb = w->offset;
        te = w->offset + w->numel;
    }
    for (int c = 0; c < e->v; c++) {
        if (c == e->tied_chunk)
            HS_TRY(hs_optimizer_grad_sumsq_part(e->chunks[c].opt, tb, te, 0, &x));
        else
            HS_TRY(hs_optimizer_grad_sumsq(e->chunks[c].opt, &x));
        sumsq += x;
    }
    if (e->tied_chunk >= 0) {
        HS_TRY(tied_finish(e));
        HS_TRY(hs_optimizer_grad_sumsq_part(e->chunks[e->tied_chunk].opt, tb, te, 1, &x));
        sumsq += x;
    }
    if (e->ec.zero && e->dpc) /* each DP rank holds the squares of its blocks */
        HS_TRY(sum_doubles(e, e->dpc, &sumsq));
    HS_TRY(sum_doubles(e, e->tp, &sumsq));
    HS_TRY(sum_doubles(e, e->pp, &sumsq));
    *norm = sqrt(sumsq);
    for (int c = 0; c < e->v; c++)
        HS_TRY(hs_optimizer_step_norm(e->chunks[c].opt, lr, *norm));
    for (int c = 0; c < e->v; c++) { /* every rank's updated blocks to every rank */
        chunk *ch = &e->chunks[c];
        if (!sharded(e, c))
            continue;
        const hs_registry *reg = hs_model_registry(ch->model);
        void *gathered = reg->value; /* the fp32 values, or the compute copy the optimizer filled */
        hs_dtype dt = HS_FP32;
        if (gathers_compute(ch)) { /* the fp32 copies from every rank's pieces, at once */
            HS_TRY(hs_dp_sum(ch->dp, reg->mirror, reg->mirror ? reg->mirror_numel : 0)); /* none: fp32 compute */
            gathered = reg->compute_buf;
            dt = reg->compute;
        }
        HS_TRY(hs_dp_gather_start(ch->dp, gathered, dt));
        if (e->ec.overlap_param_gather) { /* the next forward's blocks wait for their own */
            ch->stale = 1;
            continue;
        }
        HS_TRY(hs_dp_gather_finish(ch->dp));
        if (!gathers_compute(ch))
            HS_TRY(hs_model_sync_weights(ch->model));
    }
    return HS_OK;
}

hs_status hs_engine_train_step(hs_engine *e, const int32_t *tokens, const int32_t *targets, float lr,
                               hs_engine_stats *stats)
{
    if (!e || !tokens || !targets)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_engine_train_step: engine, tokens and targets are required");
    if (!(lr >= 0))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "learning rate %g must be >= 0", (double)lr);
    const double t0 = hs_time_now();
    double sim0 = 0, sim1 = 0;
    if (e->npu)
        HS_TRY(sync_clocks(e, &sim0));
    step_acc acc = {tokens, targets, 0, {0}};
    for (int c = 0; c < e->v; c++)
        HS_TRY(hs_model_zero_grad(e->chunks[c].model));
    const double span0 = hs_time_now(), sspan0 = now(e);
    const hs_pp_work work = {e, work_input, work_forward, work_backward};
    e->acc = &acc;
    hs_status rs = hs_pp_exec_run(e->exec, &work);
    e->acc = NULL;
    HS_TRY(rs);
    const double span = hs_time_now() - span0, sspan = now(e) - sspan0;
    const hs_pp_op_time *times;
    double busy, sim_busy;
    (void)hs_pp_exec_times(e->exec, &times, &busy, &sim_busy);
    double norm;
    HS_TRY(reduce_and_update(e, lr, &acc, &norm));
    float loss = e->chunks[e->v - 1].global == e->G - 1 ? (float)(acc.loss_sum / e->m) : 0.0f;
    if (e->p > 1)
        HS_TRY(hs_comm_allreduce(e->pp, &loss, &loss, 1, HS_FP32, HS_REDUCE_SUM));
    if (e->dpc)
        HS_TRY(hs_comm_allreduce(e->dpc, &loss, &loss, 1, HS_FP32, HS_REDUCE_AVG));
    if (e->npu)
        HS_TRY(sync_clocks(e, &sim1));
    if (stats) {
        memset(stats, 0, sizeof *stats);
        stats->loss = loss;
        stats->grad_norm = e->values ? norm : NAN;
        stats->lr = lr;
        stats->seconds = hs_time_now() - t0;
        stats->busy_s = busy;
        stats->span_s = span;
        stats->bubble = busy > 0 ? (span - busy) / busy : 0;
        stats->bubble_theory = e->p > 1 ? hs_pp_bubble_theory(e->ec.layout.schedule, e->p, e->m, e->v) : 0;
        stats->sim_seconds = sim1 - sim0;
        stats->sim_bubble = sim_busy > 0 ? (sspan - sim_busy) / sim_busy : 0;
        stats->dp = acc.dp;
    }
    return HS_OK;
}

/* ------------------------------------------------------------ evaluation */

/* One forward of B sequences of T tokens through the chunks in model
 * order (targets NULL: logits only), each message complete before the
 * next, so activation set 0 serves; *loss (the last stage's) may be NULL. */
static hs_status forward_once(hs_engine *e, const int32_t *tokens, const int32_t *targets, int B, int T, float *loss)
{
    for (int c = 0; c < e->v; c++) {
        chunk *ch = &e->chunks[c];
        const int g = ch->global;
        const int64_t n = hs_model_boundary_numel(ch->model, B, T);
        HS_TRY(hs_model_set_slot(ch->model, 0));
        if (g > 0 && e->values) {
            float *in;
            HS_TRY(hs_model_stage_input(ch->model, &in));
            HS_TRY(hs_comm_recv(e->pp, in, (size_t)n, HS_FP32, e->link.prev, g));
        }
        HS_TRY(hs_model_forward_stage(ch->model, tokens, NULL, targets, B, T, loss));
        if (g < e->G - 1 && e->values) {
            const float *out;
            HS_TRY(hs_model_stage_output(ch->model, &out));
            HS_TRY(hs_comm_send(e->pp, out, (size_t)n, HS_FP32, e->link.next, g + 1));
        }
    }
    return HS_OK;
}

/* 1 when this rank holds the model's last chunk (the head). */
static int has_last(const hs_engine *e) { return e->chunks[e->v - 1].global == e->G - 1; }

hs_status hs_engine_eval(hs_engine *e, const int32_t *tokens, const int32_t *targets, int B, float *loss)
{
    if (!e || !tokens || !targets || !loss)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_engine_eval: NULL argument");
    const int mb = e->ec.micro_batch, T = e->ec.seq;
    if (B < mb || B % mb != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_engine_eval: batch %d is not a multiple of the micro-batch %d",
                        B, mb);
    double sum = 0;
    for (int k = 0; k < B / mb; k++) { /* micro-batch after micro-batch */
        const size_t off = (size_t)k * mb * T;
        float l = 0;
        HS_TRY(forward_once(e, tokens + off, targets + off, mb, T, &l));
        sum += l;
    }
    *loss = has_last(e) ? (float)(sum / (B / mb)) : 0.0f;
    if (e->p > 1)
        HS_TRY(hs_comm_allreduce(e->pp, loss, loss, 1, HS_FP32, HS_REDUCE_SUM));
    return HS_OK;
}

/* The last position's logits of the whole vocabulary (row[0 .. V), host)
 * on the ranks of the last stage: each TP rank's columns, gathered in
 * rank order (padding ids at -inf, then dropped). */
static hs_status last_logits(hs_engine *e, int T, float *mine, float *row)
{
    hs_model *m = e->chunks[e->v - 1].model;
    hs_tensor lg;
    HS_TRY(hs_model_logits(m, &lg));
    const int64_t Vh = lg.shape[2], Vl = hs_model_param(m, flagged_entry(m, 1))->shape[0];
    const float *last = (const float *)lg.data + (size_t)(T - 1) * (size_t)Vh;
    if (e->npu)
        HS_TRY(hs_npu_memcpy_d2h(e->npu, NULL, mine, last, (size_t)Vh * sizeof(float)));
    else
        memcpy(mine, last, (size_t)Vh * sizeof(float));
    for (int64_t v = Vh; v < Vl; v++)
        mine[v] = -INFINITY;
    if (e->ec.layout.tp == 1) {
        memcpy(row, mine, (size_t)Vl * sizeof(float));
        return HS_OK;
    }
    return hs_comm_allgather(e->tp, mine, row, (size_t)(Vl * e->ec.layout.tp), HS_FP32);
}

hs_status hs_engine_generate(hs_engine *e, const int32_t *prompt, int n_prompt, int n_new, int top_k,
                             float temperature, uint64_t seed, int32_t *out)
{
    if (!e || !prompt || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_engine_generate: engine, prompt and out must not be NULL");
    const int V = e->cfg.vocab_size, tp = e->ec.layout.tp, sp = e->ec.layout.sequence_parallel;
    if (n_prompt < 1 || n_new < 0 || top_k < 1 || top_k > V || !(temperature > 0))
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "hs_engine_generate: n_prompt=%d >= 1, n_new=%d >= 0, top_k=%d in 1..%d, temperature=%g > 0",
                        n_prompt, n_new, top_k, V, (double)temperature);
    if (sp && n_prompt < tp)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "hs_engine_generate: sequence parallelism needs a prompt of at least tp=%d tokens", tp);
    if (!e->values)
        return hs_error(HS_ERR_DEVICE, "hs_engine_generate: an estimate-mode NPU computes no values to sample from");
    const size_t Vp = (size_t)(V + tp - 1) / (size_t)tp * (size_t)tp;
    float *row = malloc(sizeof *row * (Vp + Vp / (size_t)tp + (size_t)top_k));
    int32_t *idx = malloc(sizeof *idx * (size_t)top_k);
    if (!row || !idx) {
        free(row);
        free(idx);
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_engine_generate: a logits row of %zu floats", Vp);
    }
    float *mine = row + Vp, *prob = mine + Vp / (size_t)tp;
    memcpy(out, prompt, (size_t)n_prompt * sizeof *out);
    hs_status s = HS_OK;
    for (int i = 0; !s && i < n_new; i++) {
        const int len = n_prompt + i;
        int T = len < e->ec.seq ? len : e->ec.seq;
        if (sp)
            T -= T % tp; /* every rank holds T / tp positions */
        s = forward_once(e, out + len - T, NULL, 1, T, NULL);
        int32_t tok = 0;
        if (!s && has_last(e))
            s = last_logits(e, T, mine, row);
        if (!s && has_last(e))
            tok = hs_sample_top_k(row, V, top_k, temperature, hs_rng_uniform(seed, 0, (uint64_t)i), idx, prob);
        if (!s && e->p > 1) /* the last stage's token to every stage */
            s = hs_comm_broadcast(e->pp, &tok, 1, HS_INT32, e->p - 1);
        out[len] = tok;
    }
    free(row);
    free(idx);
    return s;
}

/* ------------------------------------------------------------ ZeRO state */

hs_status hs_engine_full_state(hs_engine *e, int gather)
{
    HS_TRY(settle(e)); /* the values a checkpoint saves or a load overwrites */
    for (int c = 0; c < e->v; c++) {
        if (!sharded(e, c))
            continue;
        float *m, *v, *p;
        hs_status s = hs_optimizer_full_state(e->chunks[c].opt, &m, &v, &p);
        if (!s && gather)
            s = hs_dp_gather_params(e->chunks[c].dp, m);
        if (!s && gather)
            s = hs_dp_gather_params(e->chunks[c].dp, v);
        if (!s && gather && p)
            s = hs_dp_gather_params(e->chunks[c].dp, p);
        /* offloaded: the host master is current in the rank's blocks only; the others' come here */
        if (!s && gather && hs_model_registry(e->chunks[c].model)->values_on_host)
            s = hs_dp_gather_params(e->chunks[c].dp, hs_model_registry(e->chunks[c].model)->value);
        if (s) {
            (void)hs_engine_drop_full_state(e, 0);
            return s;
        }
    }
    return HS_OK;
}

hs_status hs_engine_drop_full_state(hs_engine *e, int scatter)
{
    hs_status s = HS_OK;
    for (int c = 0; c < e->v; c++)
        if (sharded(e, c)) {
            const hs_status d = hs_optimizer_drop_full_state(e->chunks[c].opt, scatter);
            s = s ? s : d;
        }
    return s;
}

/* ------------------------------------------------------------ accessors */

int hs_engine_num_chunks(const hs_engine *e) { return e->v; }

hs_model *hs_engine_chunk(const hs_engine *e, int i) { return i >= 0 && i < e->v ? e->chunks[i].model : NULL; }

hs_optimizer *hs_engine_optimizer(const hs_engine *e, int i) { return i >= 0 && i < e->v ? e->chunks[i].opt : NULL; }

int64_t hs_engine_num_params(const hs_engine *e)
{
    int64_t n = 0;
    for (int c = 0; c < e->v; c++)
        n += hs_model_num_params(e->chunks[c].model);
    return n;
}

hs_status hs_engine_memory(const hs_engine *e, hs_model_memory *out)
{
    if (!e || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_engine_memory: NULL argument");
    memset(out, 0, sizeof *out);
    for (int c = 0; c < e->v; c++) {
        hs_model_options mo = e->ec.model;
        mo.shard = *hs_model_shard_of(e->chunks[c].model);
        hs_model_memory mm;
        HS_TRY(hs_model_memory_plan(&e->cfg, e->ec.micro_batch, e->ec.seq, &mo, &mm));
        out->params += mm.params;
        out->weights += mm.weights;
        out->gradients += mm.gradients;
        out->optimizer += mm.optimizer;
        out->activations += mm.activations;
        out->workspace = mm.workspace > out->workspace ? mm.workspace : out->workspace;
    }
    return HS_OK;
}

int64_t hs_engine_steps(const hs_engine *e) { return hs_optimizer_steps(e->chunks[0].opt); }

hs_runtime *hs_engine_runtime(const hs_engine *e) { return e->rt; }

int hs_engine_op_times(const hs_engine *e, const hs_engine_op_time **times)
{
    return hs_pp_exec_times(e->exec, times, NULL, NULL);
}
