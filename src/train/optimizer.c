/* AdamW over the model's parameter registry, with global-norm clipping.
 * The moments live on the model's device (host memory, or NPU HBM), or
 * under optimizer offload in the host pool beside the fp32 master; then
 * AdamW runs on the host (optimizer_offload.c).
 * Sharded (ZeRO-1, optimizer_norm.h): the moments, the update and the
 * norm's share cover this DP rank's blocks of the flat buffer only. */
#include "core/config_size.h"
#include "core/try.h"
#include "hyperspeed/kernels.h"
#include "hyperspeed/train.h"
#include "model/model_registry.h"
#include "train/optimizer_norm.h"
#include "train/optimizer_offload.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hs_optimizer {
    hs_model *model;
    hs_optimizer_config cfg;
    float *m, *v;
    hs_offload_state *off; /* optimizer offload: the moments are the pool's (NULL: on the device) */
    int64_t steps;
    hs_tensor *owned; /* spans of the gradients this rank counts in a global norm (norm_owner) */
    int n_owned;
    int64_t *owned_at; /* [n_owned]: the registry offset each span starts at */
    hs_tensor *part;  /* [n_owned + 1]: hs_optimizer_grad_sumsq_part's views */
    /* sharded: this rank's blocks [blk_off, blk_off + blk_len) of the flat
     * buffer, their moments at m + blk_base (n_blocks 0: the whole buffer) */
    int64_t *blk_off, *blk_len, *blk_base;
    int n_blocks;
    float *full_m, *full_v; /* sharded, during a checkpoint: every parameter's moments on the host */
    float *master;          /* sharded with the model's values sharded (ZeRO-1, 16-bit compute): the fp32
                               master of the rank's blocks, indexed as the moments, on the device */
    float *full_p;          /* ... during a checkpoint: every parameter's master on the host */
};

/* The moments' elements: the rank's blocks, or every parameter. */
static int64_t moment_numel(const hs_optimizer *o)
{
    if (!o->n_blocks)
        return hs_model_num_params(o->model);
    return o->blk_base[o->n_blocks - 1] + o->blk_len[o->n_blocks - 1];
}

/* A view placed on the model's device. */
static hs_tensor on_device(const hs_optimizer *o, hs_tensor t)
{
    t.device = hs_model_device(o->model);
    return t;
}

/* One moment buffer (moment_numel floats) on the model's device. */
static hs_status alloc_moment(hs_optimizer *o, float **out)
{
    const size_t bytes = (size_t)(moment_numel(o) > 0 ? moment_numel(o) : 1) * sizeof(float);
    hs_npu *d = hs_model_npu(o->model);
    if (d) {
        void *p;
        hs_status s = hs_npu_malloc(d, bytes, &p);
        if (s) {
            char why[512];
            snprintf(why, sizeof why, "%s", hs_last_error());
            return hs_error(s, "AdamW moment of %.1f MiB: %s", (double)bytes / 1048576.0, why);
        }
        *out = p;
        return HS_OK;
    }
    *out = hs_alloc(bytes);
    if (!*out)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "AdamW state of %zu bytes does not fit in host memory", 2 * bytes);
    return HS_OK;
}

/* Calls fn for each piece of [begin, end) the optimizer covers: the
 * range itself, or (sharded) its intersections with the rank's blocks,
 * with the moments' index of the piece's first element. */
typedef hs_status piece_fn(hs_optimizer *o, int64_t lo, int64_t hi, int64_t moment, void *ctx);

static hs_status for_each_piece(hs_optimizer *o, int64_t begin, int64_t end, piece_fn *fn, void *ctx)
{
    if (!o->n_blocks)
        return fn(o, begin, end, begin, ctx);
    for (int b = 0; b < o->n_blocks; b++) {
        const int64_t lo = begin > o->blk_off[b] ? begin : o->blk_off[b];
        const int64_t hi = end < o->blk_off[b] + o->blk_len[b] ? end : o->blk_off[b] + o->blk_len[b];
        if (hi > lo)
            HS_TRY(fn(o, lo, hi, o->blk_base[b] + (lo - o->blk_off[b]), ctx));
    }
    return HS_OK;
}

static hs_status add_owned(hs_optimizer *o, int64_t lo, int64_t hi, int64_t moment, void *ctx)
{
    (void)moment, (void)ctx;
    o->owned_at[o->n_owned] = lo;
    o->owned[o->n_owned++] = hs_registry_span(hs_model_registry(o->model), HS_PARAM_GRAD, lo, hi,
                                              hs_model_device(o->model));
    return HS_OK;
}

/* The spans of consecutive registry entries with norm_owner set (sharded:
 * their pieces in the rank's blocks), as views of the gradient buffer for
 * hs_grad_norm. */
static hs_status plan_owned(hs_optimizer *o)
{
    const int nt = hs_model_num_tensors(o->model), cap = nt + o->n_blocks + 1;
    o->owned = calloc((size_t)cap, sizeof *o->owned);
    o->owned_at = calloc((size_t)cap, sizeof *o->owned_at);
    o->part = calloc((size_t)cap + 1, sizeof *o->part);
    if (!o->owned || !o->owned_at || !o->part)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_optimizer_new: %d views", cap);
    for (int i = 0; i < nt;) {
        const hs_param_info *p = hs_model_param(o->model, i);
        int j = i + 1;
        int64_t end = p->offset + p->numel;
        for (; j < nt && hs_model_param(o->model, j)->norm_owner == p->norm_owner; j++)
            end = hs_model_param(o->model, j)->offset + hs_model_param(o->model, j)->numel;
        if (p->norm_owner)
            HS_TRY(for_each_piece(o, p->offset, end, add_owned, NULL));
        i = j;
    }
    return HS_OK;
}

hs_optimizer_config hs_optimizer_config_default(void)
{
    hs_optimizer_config c = {sizeof c, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    return c;
}

/* The rank's blocks, checked (ascending, disjoint, inside the buffer), and
 * where each one's moments start. */
static hs_status copy_blocks(hs_optimizer *o, const int64_t *offset, const int64_t *numel, int n)
{
    const int64_t total = hs_model_num_params(o->model);
    for (int b = 0; b < n; b++)
        if (numel[b] < 0 || offset[b] < (b ? offset[b - 1] + numel[b - 1] : 0) || offset[b] + numel[b] > total)
            return hs_error(HS_ERR_INVALID_ARGUMENT,
                            "sharded optimizer: block %d [%lld, +%lld) is not ascending, disjoint and inside the %lld "
                            "parameters",
                            b, (long long)offset[b], (long long)numel[b], (long long)total);
    if (n < 1 || !(o->blk_off = malloc(3 * (size_t)n * sizeof *o->blk_off)))
        return hs_error(HS_ERR_OUT_OF_MEMORY, "sharded optimizer: %d blocks", n);
    o->blk_len = o->blk_off + n;
    o->blk_base = o->blk_len + n;
    int64_t base = 0;
    for (int b = 0; b < n; b++) {
        o->blk_off[b] = offset[b];
        o->blk_len[b] = numel[b];
        o->blk_base[b] = base;
        base += numel[b];
    }
    o->n_blocks = n;
    return HS_OK;
}

/* hs_optimizer_new over the whole buffer (n_blocks 0) or this rank's blocks. */
static hs_status optimizer_new(hs_model *model, const hs_optimizer_config *cfg, const int64_t *offset,
                               const int64_t *numel, int n_blocks, hs_optimizer **out)
{
    if (!model || !cfg || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_optimizer_new: arguments must not be NULL");
    *out = NULL;
    HS_TRY(HS_CHECK_SIZE(cfg, hs_optimizer_config));
    if (!(cfg->beta1 >= 0 && cfg->beta1 < 1) || !(cfg->beta2 >= 0 && cfg->beta2 < 1))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "AdamW betas (%g, %g) must lie in [0, 1)", (double)cfg->beta1,
                        (double)cfg->beta2);
    if (!(cfg->eps > 0))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "AdamW eps=%g must be positive", (double)cfg->eps);
    if (!(cfg->weight_decay >= 0))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "weight_decay=%g must be >= 0", (double)cfg->weight_decay);
    hs_optimizer *o = calloc(1, sizeof *o);
    if (!o)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_optimizer_new: out of host memory");
    o->model = model;
    o->cfg = *cfg;
    hs_status s = n_blocks ? copy_blocks(o, offset, numel, n_blocks) : HS_OK;
    const int64_t n = moment_numel(o);
    const int offloaded = hs_model_registry(model)->values_on_host;
    if (!s && offloaded)
        s = hs_offload_state_new(model, n, &o->off);
    if (!s && offloaded) {
        o->m = hs_offload_state_moment(o->off, 0);
        o->v = hs_offload_state_moment(o->off, 1);
    }
    if (!s && !offloaded)
        s = alloc_moment(o, &o->m);
    if (!s && !offloaded)
        s = alloc_moment(o, &o->v);
    if (!s && n_blocks && hs_model_registry(model)->values_sharded)
        s = alloc_moment(o, &o->master);
    if (!s)
        s = plan_owned(o);
    if (s) {
        hs_optimizer_free(o);
        return s;
    }
    if (offloaded) { /* the pool's pages are zero */
        *out = o;
        return HS_OK;
    }
    hs_tensor mt = on_device(o, hs_view1(o->m, HS_FP32, n > 0 ? n : 1));
    hs_tensor vt = on_device(o, hs_view1(o->v, HS_FP32, n > 0 ? n : 1));
    if ((s = hs_fill(&mt, 0.0f)) || (s = hs_fill(&vt, 0.0f))) {
        hs_optimizer_free(o);
        return s;
    }
    *out = o;
    return HS_OK;
}

hs_status hs_optimizer_new(hs_model *model, const hs_optimizer_config *cfg, hs_optimizer **out)
{
    return optimizer_new(model, cfg, NULL, NULL, 0, out);
}

hs_status hs_optimizer_new_sharded(hs_model *model, const hs_optimizer_config *cfg, const int64_t *offset,
                                   const int64_t *numel, int n_blocks, hs_optimizer **out)
{
    if (n_blocks < 1 || !offset || !numel)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_optimizer_new_sharded: %d blocks (>= 1, with their offsets and "
                        "sizes)", n_blocks);
    return optimizer_new(model, cfg, offset, numel, n_blocks, out);
}

void hs_optimizer_free(hs_optimizer *o)
{
    if (!o)
        return;
    hs_npu *d = hs_model_npu(o->model);
    if (o->off) {
        hs_offload_state_free(o->off);
    } else if (d) {
        (void)hs_npu_free_mem(d, o->m); /* addresses this optimizer allocated (or NULL): cannot fail */
        (void)hs_npu_free_mem(d, o->v);
    } else {
        hs_free(o->m);
        hs_free(o->v);
    }
    if (d)
        (void)hs_npu_free_mem(d, o->master);
    else
        hs_free(o->master);
    hs_free(o->full_p);
    hs_free(o->full_m);
    hs_free(o->full_v);
    free(o->owned);
    free(o->owned_at);
    free(o->part);
    free(o->blk_off);
    free(o);
}

/* One AdamW pass over parameters [lo, hi) with their moments at `moment`. */
static hs_status adamw_piece(hs_optimizer *o, int64_t lo, int64_t hi, int64_t moment, void *ctx)
{
    if (o->off) /* on the host; each piece's weights go back up as soon as it is done (sharded: the rank's
                   blocks, the caller gathers them on the device) */
        return hs_offload_adamw(o->off, lo, hi, moment, ctx, 1);
    const hs_registry *reg = hs_model_registry(o->model);
    hs_device *dev = hs_model_device(o->model);
    hs_tensor p = o->master ? on_device(o, hs_view1(o->master + moment, HS_FP32, hi - lo))
                            : hs_registry_span(reg, HS_PARAM_VALUE, lo, hi, dev);
    hs_tensor g = hs_registry_span(reg, HS_PARAM_GRAD, lo, hi, dev);
    hs_tensor mt = on_device(o, hs_view1(o->m + moment, HS_FP32, hi - lo));
    hs_tensor vt = on_device(o, hs_view1(o->v + moment, HS_FP32, hi - lo));
    return hs_adamw_update(&p, &g, &mt, &vt, ctx);
}

/* The model's fp32 copies of what its kernels read, zeroed (before a
 * sharded update writes its pieces of them). */
static hs_status zero_mirror(hs_optimizer *o)
{
    const hs_registry *reg = hs_model_registry(o->model);
    if (!reg->mirror)
        return HS_OK;
    hs_tensor all = on_device(o, hs_view1(reg->mirror, HS_FP32, reg->mirror_numel));
    return hs_fill(&all, 0.0f);
}

/* The sharded master's blocks into the model's copies for the caller's
 * gathers: each block cast into the compute copy at its place, and the
 * fp32 copies of the entries the kernels read zeroed but for the rank's
 * pieces of them (so that a sum over the DP group rebuilds them exactly). */
static hs_status publish_master(hs_optimizer *o)
{
    const hs_registry *reg = hs_model_registry(o->model);
    hs_device *dev = hs_model_device(o->model);
    const size_t cs = hs_dtype_size(reg->compute);
    HS_TRY(zero_mirror(o));
    for (int b = 0; b < o->n_blocks; b++) {
        const int64_t lo = o->blk_off[b], hi = lo + o->blk_len[b];
        if (hi <= lo)
            continue;
        hs_tensor src = on_device(o, hs_view1(o->master + o->blk_base[b], HS_FP32, hi - lo));
        hs_tensor dst = hs_on(hs_view1((char *)reg->compute_buf + lo * (int64_t)cs, reg->compute, hi - lo), dev);
        HS_TRY(hs_cast(&dst, &src));
        for (int i = 0; reg->mirror && i < reg->n; i++) {
            const hs_param_info *p = &reg->entries[i];
            const int64_t pb = lo > p->offset ? lo : p->offset, pe = hi < p->offset + p->numel ? hi : p->offset + p->numel;
            if (reg->mirror_at[i] < 0 || pe <= pb)
                continue;
            hs_tensor mine = on_device(o, hs_view1(o->master + o->blk_base[b] + (pb - lo), HS_FP32, pe - pb));
            hs_tensor into = on_device(o, hs_view1(reg->mirror + reg->mirror_at[i] + (pb - p->offset), HS_FP32, pe - pb));
            HS_TRY(hs_residual_backward(&into, NULL, &mine));
        }
    }
    return HS_OK;
}

/* AdamW over the registry (sharded: the rank's blocks) with the clip
 * scale of `norm`, then the compute-dtype weights (sharded: the caller's,
 * once the blocks are gathered). */
static hs_status update(hs_optimizer *o, float lr, double norm)
{
    hs_model *model = o->model;
    hs_adamw_params ap = hs_adamw_params_default();
    ap.lr = lr;
    ap.beta1 = o->cfg.beta1;
    ap.beta2 = o->cfg.beta2;
    ap.eps = o->cfg.eps;
    ap.grad_scale = hs_clip_scale(norm, o->cfg.grad_clip);
    ap.step = o->steps + 1;
    if (o->off && o->n_blocks) /* the uploads write the rank's pieces of the fp32 copies; the caller sums them */
        HS_TRY(zero_mirror(o));
    if (o->off)
        hs_offload_begin(o->off);
    /* Consecutive registry entries with the same decay flag form one span,
     * so the update runs over a few long ranges instead of ~150 short ones. */
    const int nt = hs_model_num_tensors(model);
    for (int i = 0; i < nt;) {
        const hs_param_info *first = hs_model_param(model, i);
        int64_t begin = first->offset, end = first->offset + first->numel;
        int j = i + 1;
        for (; j < nt && hs_model_param(model, j)->decay == first->decay; j++)
            end = hs_model_param(model, j)->offset + hs_model_param(model, j)->numel;
        ap.weight_decay = first->decay ? o->cfg.weight_decay : 0.0f;
        HS_TRY(for_each_piece(o, begin, end, adamw_piece, &ap));
        i = j;
    }
    o->steps++;
    if (o->off)
        return hs_offload_finish(o->off);
    if (o->master)
        return publish_master(o);
    return o->n_blocks ? HS_OK : hs_model_sync_weights(model);
}

static hs_status check_lr(const hs_optimizer *o, float lr)
{
    if (!o)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_optimizer_step: optimizer is NULL");
    if (!(lr >= 0))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "learning rate %g must be >= 0", (double)lr);
    return HS_OK;
}

hs_status hs_optimizer_step(hs_optimizer *o, float lr, double *grad_norm)
{
    HS_TRY(check_lr(o, lr));
    if (o->n_blocks)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_optimizer_step: a sharded optimizer takes the DP group's norm "
                        "(hs_optimizer_step_norm)");
    hs_model *model = o->model;
    hs_tensor all = hs_registry_span(hs_model_registry(model), HS_PARAM_GRAD, 0, hs_model_num_params(model),
                                     hs_model_device(model));
    double norm;
    HS_TRY(hs_grad_norm(&all, 1, &norm));
    /* An estimate-mode NPU has no gradient values: its norm reads 0, so the
     * update runs unclipped (same kernels, same time) and reports NaN. */
    const hs_npu *d = hs_model_npu(model);
    if (grad_norm)
        *grad_norm = d && hs_npu_mode_of(d) == HS_NPU_ESTIMATE ? NAN : norm;
    return update(o, lr, norm);
}

hs_status hs_optimizer_grad_sumsq(hs_optimizer *o, double *sumsq)
{
    if (!o || !sumsq)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_optimizer_grad_sumsq: NULL argument");
    double norm = 0;
    if (o->n_owned)
        HS_TRY(hs_grad_norm(o->owned, o->n_owned, &norm));
    *sumsq = norm * norm;
    return HS_OK;
}

/* Appends to o->part the piece of owned span i in [lo, hi), if any. */
static void add_piece(hs_optimizer *o, int i, int64_t lo, int64_t hi, int *n)
{
    const int64_t at = o->owned_at[i], len = o->owned[i].shape[0];
    const int64_t b = lo > at ? lo : at, e = hi < at + len ? hi : at + len;
    if (e <= b)
        return;
    hs_tensor v = o->owned[i];
    v.data = (float *)v.data + (b - at);
    v.shape[0] = e - b;
    o->part[(*n)++] = v;
}

hs_status hs_optimizer_grad_sumsq_part(hs_optimizer *o, int64_t begin, int64_t end, int inside, double *sumsq)
{
    int n = 0;
    for (int i = 0; i < o->n_owned; i++) {
        if (inside) {
            add_piece(o, i, begin, end, &n);
        } else {
            add_piece(o, i, INT64_MIN, begin, &n);
            add_piece(o, i, end, INT64_MAX, &n);
        }
    }
    double norm = 0;
    if (n)
        HS_TRY(hs_grad_norm(o->part, n, &norm));
    *sumsq = norm * norm;
    return HS_OK;
}

hs_status hs_optimizer_step_norm(hs_optimizer *o, float lr, double norm)
{
    HS_TRY(check_lr(o, lr));
    if (!(norm >= 0))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_optimizer_step_norm: gradient norm %g must be >= 0", norm);
    return update(o, lr, norm);
}

int64_t hs_optimizer_steps(const hs_optimizer *o) { return o->steps; }

hs_status hs_optimizer_set_steps(hs_optimizer *o, int64_t steps)
{
    if (!o || steps < 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_optimizer_set_steps: steps=%lld must be >= 0",
                        (long long)steps);
    o->steps = steps;
    return HS_OK;
}

hs_status hs_optimizer_state(const hs_optimizer *o, int i, hs_adam_state which, hs_tensor *out)
{
    if (!o || !out || (which != HS_ADAM_M && which != HS_ADAM_V))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_optimizer_state: NULL optimizer or output, or state %d",
                        (int)which);
    const hs_param_info *p = hs_model_param(o->model, i);
    if (!p)
        return hs_error(HS_ERR_NOT_FOUND, "hs_optimizer_state: no registry entry %d (the model has %d)", i,
                        hs_model_num_tensors(o->model));
    if (o->n_blocks && !o->full_m)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "hs_optimizer_state: a sharded (ZeRO-1) optimizer holds only this DP rank's blocks of entry "
                        "%d's moments (hs_engine_save gathers them)",
                        i);
    float *base = o->full_m ? (which == HS_ADAM_M ? o->full_m : o->full_v) : which == HS_ADAM_M ? o->m : o->v;
    hs_tensor t = {base ? base + p->offset : NULL, {p->shape[0], p->shape[1], p->shape[2], p->shape[3]}, p->ndim,
                   HS_FP32, o->off || o->full_m ? NULL : hs_model_device(o->model), 0};
    *out = t;
    return HS_OK;
}

/* The rank's blocks between the device state (the moments, and the
 * master when the optimizer holds it) and the full host buffers: down
 * (device -> full) or up. */
static hs_status copy_blocks_full(hs_optimizer *o, int down)
{
    hs_npu *d = o->off ? NULL : hs_model_npu(o->model); /* offloaded moments are host memory */
    const int parts = o->master ? 3 : 2;
    for (int b = 0; b < o->n_blocks; b++)
        for (int k = 0; k < parts; k++) {
            float *dev = (k == 0 ? o->m : k == 1 ? o->v : o->master) + o->blk_base[b];
            float *host = (k == 0 ? o->full_m : k == 1 ? o->full_v : o->full_p) + o->blk_off[b];
            const size_t bytes = (size_t)o->blk_len[b] * sizeof(float);
            if (d)
                HS_TRY(down ? hs_npu_memcpy_d2h(d, NULL, host, dev, bytes) : hs_npu_memcpy_h2d(d, NULL, dev, host, bytes));
            else
                memcpy(down ? host : dev, down ? dev : host, bytes);
        }
    return HS_OK;
}

hs_status hs_optimizer_full_state(hs_optimizer *o, float **m, float **v, float **p)
{
    if (!o || !o->n_blocks || o->full_m)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_optimizer_full_state: a sharded optimizer without its full state");
    const size_t bytes = (size_t)hs_model_num_params(o->model) * sizeof(float);
    o->full_m = hs_alloc(bytes);
    o->full_v = hs_alloc(bytes);
    o->full_p = o->master ? hs_alloc(bytes) : NULL;
    if (!o->full_m || !o->full_v || (o->master && !o->full_p)) {
        (void)hs_optimizer_drop_full_state(o, 0);
        return hs_error(HS_ERR_OUT_OF_MEMORY, "checkpoint: %d x %zu bytes of the optimizer's full state",
                        o->master ? 3 : 2, bytes);
    }
    memset(o->full_m, 0, bytes);
    memset(o->full_v, 0, bytes);
    if (o->full_p)
        memset(o->full_p, 0, bytes);
    hs_status s = copy_blocks_full(o, 1);
    if (s) {
        (void)hs_optimizer_drop_full_state(o, 0);
        return s;
    }
    *m = o->full_m;
    *v = o->full_v;
    *p = o->full_p;
    return HS_OK;
}

hs_status hs_optimizer_drop_full_state(hs_optimizer *o, int scatter)
{
    hs_status s = scatter && o->full_m && o->full_v ? copy_blocks_full(o, 0) : HS_OK;
    if (!s && scatter && o->full_p) /* the model's copies of the whole master read */
        s = hs_model_upload_values(o->model, 0, hs_model_num_params(o->model), o->full_p,
                                   hs_model_npu(o->model) ? hs_npu_default_stream(hs_model_npu(o->model)) : NULL);
    hs_free(o->full_m);
    hs_free(o->full_v);
    hs_free(o->full_p);
    o->full_m = o->full_v = o->full_p = NULL;
    return s;
}

hs_status hs_optimizer_master_view(const hs_optimizer *o, int i, hs_tensor *out)
{
    const hs_param_info *p = hs_model_param(o->model, i);
    if (!p || !o->full_p)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_optimizer_master_view: entry %d of a sharded master outside a "
                        "checkpoint", i);
    hs_tensor t = {o->full_p + p->offset, {p->shape[0], p->shape[1], p->shape[2], p->shape[3]}, p->ndim, HS_FP32,
                   NULL, 0};
    *out = t;
    return HS_OK;
}

int hs_optimizer_holds_master(const hs_optimizer *o) { return o && o->master != NULL; }

hs_status hs_optimizer_init_master(hs_optimizer *o, uint64_t seed)
{
    if (!o->master)
        return HS_OK;
    hs_npu *d = hs_model_npu(o->model);
    const int values = !d || hs_npu_mode_of(d) == HS_NPU_EXECUTE;
    int64_t most = 1;
    for (int b = 0; b < o->n_blocks; b++)
        most = o->blk_len[b] > most ? o->blk_len[b] : most;
    float *h = values ? hs_alloc((size_t)most * sizeof(float)) : NULL;
    if (values && !h)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "sharded master: a host staging of %lld floats", (long long)most);
    hs_status s = HS_OK;
    for (int b = 0; !s && b < o->n_blocks; b++) {
        const size_t bytes = (size_t)o->blk_len[b] * sizeof(float);
        if (values)
            s = hs_model_init_range(o->model, seed, o->blk_off[b], o->blk_off[b] + o->blk_len[b], h);
        if (!s && d)
            s = hs_npu_memcpy_h2d(d, NULL, o->master + o->blk_base[b], h, bytes);
        else if (!s)
            memcpy(o->master + o->blk_base[b], h, bytes);
    }
    hs_free(h);
    return s;
}
