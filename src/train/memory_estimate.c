/* The memory estimator (hyperspeed/memory.h): every rank's bytes of a
 * training run from the plan hs_engine_new allocates from, without a
 * runtime or a device. It sits with the step driver because it reads the
 * driver's plan: which chunks a rank holds (the layout), how many
 * micro-batches each keeps in flight (the pipeline schedule), what each
 * chunk's model, optimizer, data-parallel reducer and pipeline buffers
 * take (their own plan functions: hs_model_memory_plan,
 * hs_model_plan_tensors, hs_dp_plan_buckets with hs_comm_block). Each
 * allocation is rounded as the device's allocator rounds it: 512 bytes
 * for HBM, 64 for the host (hs_alloc). */
#include "comm/scratch.h"
#include "core/try.h"
#include "hyperspeed/memory.h"
#include "model/model_stage.h"
#include "parallel/dp_plan.h"
#include "parallel/pp_exec.h"
#include "npu_sim/device.h"
#include "train/engine_config.h"

#include <stdlib.h>
#include <string.h>

/* What the estimate of one rank needs to know besides its coordinates. */
typedef struct plan {
    const hs_model_config *cfg;
    const hs_engine_config *ec;
    hs_layout_plan lp;
    hs_npu *npu; /* an estimate-mode device of the spec (NPU runs), for the kernels' block counts */
    int tp, pp, dp, v, G;
    size_t align; /* the allocator's unit */
} plan;

/* One allocation of `bytes` as the device holds it. */
static size_t alloc_size(const plan *p, size_t bytes) { return (bytes + p->align - 1) / p->align * p->align; }

/* The model options of chunk c of pipeline stage `stage` on TP rank t
 * (as the engine's build_chunk sets them). */
static hs_status chunk_options(const plan *p, int stage, int t, int c, hs_model_options *mo)
{
    const int g = c * p->pp + stage;
    hs_pp_exec *x;
    HS_TRY(hs_pp_exec_new(p->ec->layout.schedule, p->pp, stage, p->ec->layout.micro_batches, p->v, &x));
    *mo = p->ec->model;
    mo->npu = p->npu;
    mo->shard = hs_model_shard_default();
    mo->shard.tp = p->tp;
    mo->shard.tp_rank = t;
    mo->shard.sequence_parallel = p->ec->layout.sequence_parallel;
    mo->shard.first_layer = p->lp.first_layer[g];
    mo->shard.n_layers = p->lp.first_layer[g + 1] - p->lp.first_layer[g];
    mo->shard.slots = hs_pp_exec_slots(x, c);
    mo->shard.master_sharded = hs_engine_master_sharded(p->ec, p->dp > 1);
    hs_pp_exec_free(x);
    return HS_OK;
}

/* Grows the comm scratch slots to what a reduction of count fp32 over p
 * ranks asks for (one node: the estimator does not know the topology). */
static void grow_scratch(size_t slots[HS_COMM_SCRATCH_SLOTS], int p, size_t count)
{
    size_t s[HS_COMM_SCRATCH_SLOTS];
    hs_comm_reduce_scratch(p, 1, count, HS_FP32, s);
    for (int i = 0; i < HS_COMM_SCRATCH_SLOTS; i++)
        slots[i] = s[i] > slots[i] ? s[i] : slots[i];
}

/* The comm runtime's reduction scratch on the CPU device (host memory the
 * library holds for as long as the runtime lives): the largest of the
 * DP buckets' reductions (largest_bucket elements), the TP all-reduce or
 * reduce-scatter of a micro-batch's activations, the vocabulary-parallel
 * cross-entropy's combination of 2N values. */
static size_t comm_scratch(const plan *p, int64_t largest_bucket)
{
    size_t slots[HS_COMM_SCRATCH_SLOTS] = {0};
    const size_t N = (size_t)p->ec->micro_batch * (size_t)p->ec->seq;
    if (p->dp > 1)
        grow_scratch(slots, p->dp, (size_t)largest_bucket);
    if (p->tp > 1) {
        grow_scratch(slots, p->tp, N * (size_t)p->cfg->d_model);
        grow_scratch(slots, p->tp, 2 * N);
    }
    size_t total = 0;
    for (int i = 0; i < HS_COMM_SCRATCH_SLOTS; i++)
        total += alloc_size(p, slots[i]);
    return total;
}

/* AdamW's two moments for a chunk of n tensors (numel[]) on DP rank d:
 * every element, or under ZeRO-1 the rank's block of each DP bucket; on
 * the device (*bytes) or offloaded with the gradients' host copy on the
 * NPU (*host). */
static hs_status optimizer_bytes(const plan *p, const int64_t *numel, int n, int64_t tied, int d, size_t *bytes,
                                 size_t *host, size_t *elems, int64_t *largest_bucket)
{
    *bytes = *host = 0;
    int64_t count = 0, sharded = 0;
    for (int i = 0; i < n; i++)
        count += numel[i];
    *largest_bucket = 0;
    if (p->dp > 1) {
        hs_dp_bucket *b = malloc((size_t)(n > 0 ? n : 1) * sizeof *b);
        int nb = 0;
        if (!b)
            return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_memory_estimate: %d buckets", n);
        hs_dp_config dc = p->ec->dp;
        dc.first_alone = p->ec->zero && p->pp > 1 && tied; /* as build_chunk sets it */
        hs_status s = hs_dp_plan(&dc, numel, n, b, &nb);
        for (int k = 0; !s && k < nb; k++) {
            size_t off, len;
            hs_comm_block((size_t)b[k].numel, p->dp, d, &off, &len);
            sharded += (int64_t)len;
            *largest_bucket = b[k].numel > *largest_bucket ? b[k].numel : *largest_bucket;
        }
        free(b);
        HS_TRY(s);
        count = p->ec->zero ? sharded : count;
    }
    *elems = (size_t)(count > 0 ? count : 1);
    if (p->ec->model.offload & HS_OFFLOAD_OPTIMIZER) /* the host pool's one block (hs_offload_state_new) */
        *host = (p->npu ? 3 : 2) * *elems * sizeof(float);
    else
        *bytes = 2 * alloc_size(p, *elems * sizeof(float));
    return HS_OK;
}

/* Chunk c of the rank at (t, d, stage) into *r. */
static hs_status add_chunk(const plan *p, int t, int d, int stage, int c, hs_memory_rank *r)
{
    const int g = c * p->pp + stage;
    hs_model_options mo;
    HS_TRY(chunk_options(p, stage, t, c, &mo));
    const hs_engine_config *ec = p->ec;
    hs_model_memory mm, one, two;
    HS_TRY(hs_model_memory_plan(p->cfg, ec->micro_batch, ec->seq, &mo, &mm));
    const int slots = mo.shard.slots;
    mo.shard.slots = 1;
    HS_TRY(hs_model_memory_plan(p->cfg, ec->micro_batch, ec->seq, &mo, &one));
    mo.shard.slots = 2;
    HS_TRY(hs_model_memory_plan(p->cfg, ec->micro_batch, ec->seq, &mo, &two));
    mo.shard.slots = slots;
    const size_t n = (size_t)mm.params, cs = hs_dtype_size(mo.compute);
    r->params += mm.params;
    size_t opt_host = 0; /* hs_model_memory_plan's host figure for the optimizer (whole; the shard is below) */
    const int sharded_master = mo.shard.master_sharded && mo.compute != HS_FP32;
    if ((mo.offload & HS_OFFLOAD_OPTIMIZER) || sharded_master) { /* the compute copy and the mirror here */
        const size_t mirror = mm.weights - n * cs;
        r->weights += alloc_size(p, n * cs) + (mirror ? alloc_size(p, mirror) : 0);
    }
    if (mo.offload & HS_OFFLOAD_OPTIMIZER) { /* the master in the pool */
        r->host += n * sizeof(float);
        opt_host = n * sizeof(float) * (p->npu ? 4 : 3);
    } else if (!sharded_master) {
        r->weights += alloc_size(p, n * sizeof(float)) + (mo.compute != HS_FP32 ? alloc_size(p, n * cs) : 0);
    }
    r->gradients += alloc_size(p, n * sizeof(float));
    r->activations += alloc_size(p, mm.activations);
    r->act_per_micro_batch += two.activations - one.activations;
    r->act_shared += one.activations - (two.activations - one.activations);
    r->host += mm.host - opt_host; /* offloaded activations */
    if (c == 0)
        r->in_flight = slots;
    r->workspace = mm.workspace > r->workspace ? mm.workspace : r->workspace;

    int64_t *numel, tied;
    int nt;
    HS_TRY(hs_model_plan_tensors(p->cfg, ec->micro_batch, ec->seq, &mo, &numel, &nt, &tied));
    size_t opt = 0, host = 0, elems = 0;
    int64_t bucket = 0;
    hs_status s = optimizer_bytes(p, numel, nt, tied, d, &opt, &host, &elems, &bucket);
    free(numel);
    HS_TRY(s);
    r->optimizer += opt;
    r->host += host;
    if (sharded_master) /* the master of the rank's blocks, beside the moments */
        r->weights += alloc_size(p, elems * sizeof(float));
    if (!p->npu) { /* the runtime's scratch is host memory: the CPU device's, not HBM */
        const size_t scratch = comm_scratch(p, bucket);
        r->workspace = scratch > r->workspace ? scratch : r->workspace;
    }
    const size_t boundary = (size_t)ec->micro_batch * (size_t)ec->seq * (size_t)p->cfg->d_model /
                            (ec->layout.sequence_parallel ? (size_t)p->tp : 1);
    const int buffers = (g < p->G - 1) + (g > 0); /* the pipeline's gradient in and out of each slot */
    r->comm += (size_t)(slots * buffers) * alloc_size(p, boundary * sizeof(float));
    if (p->dp > 1 && g == 0) { /* DP's gathered embedding rows and their token ids */
        const size_t rows = (size_t)p->dp * (size_t)ec->micro_batch * (size_t)ec->seq;
        r->comm += alloc_size(p, rows * (size_t)p->cfg->d_model * sizeof(float)) +
                   alloc_size(p, rows * sizeof(int32_t));
    }
    if (tied && p->pp > 1) /* the tied head's exchange buffer */
        r->comm += alloc_size(p, (size_t)tied * sizeof(float));
    return HS_OK;
}

static hs_status estimate(plan *p, hs_memory_rank *ranks)
{
    for (int stage = 0; stage < p->pp; stage++)
        for (int d = 0; d < p->dp; d++)
            for (int t = 0; t < p->tp; t++) {
                hs_memory_rank *r = &ranks[t + p->tp * (d + p->dp * stage)];
                memset(r, 0, sizeof *r);
                r->rank = (int)(r - ranks);
                r->tp_rank = t;
                r->dp_rank = d;
                r->pp_rank = stage;
                for (int c = 0; c < p->v; c++)
                    HS_TRY(add_chunk(p, t, d, stage, c, r));
                r->device = r->weights + r->gradients + r->optimizer + r->activations + r->workspace + r->comm;
            }
    return HS_OK;
}

hs_status hs_memory_estimate(const hs_model_config *cfg, const hs_engine_config *ec, int world,
                             const hs_npu_spec *spec, hs_memory_rank *ranks)
{
    if (!cfg || !ec || !ranks)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_memory_estimate: NULL argument");
    HS_TRY(hs_engine_check_config(ec));
    plan p = {cfg, ec, {0}, NULL, ec->layout.tp, ec->layout.pp, 0, ec->layout.virtual_stages, 0, 64};
    if (p.tp < 1 || p.pp < 1 || world < 1 || world % (p.tp * p.pp) != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_memory_estimate: tp=%d x pp=%d does not divide the world of %d",
                        p.tp, p.pp, world);
    p.dp = world / (p.tp * p.pp);
    hs_layout l = ec->layout;
    l.seq = ec->seq;
    HS_TRY(hs_layout_check(cfg, &l, &p.lp));
    p.G = p.lp.chunks;
    if (ec->model.device == HS_DEVICE_NPU) {
        if (!spec)
            return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_memory_estimate: an NPU run needs the NPU's spec");
        HS_TRY(hs_npu_new(spec, HS_NPU_ESTIMATE, &p.npu));
        p.align = HS_NPU_HBM_ALIGN;
    }
    hs_status s = estimate(&p, ranks);
    hs_npu_free(p.npu);
    return s;
}
