/* Model object: parameter registry, flat buffers (host memory or NPU HBM),
 * activation arena, init, the compute-dtype copy of the weights. */
#include "core/config_size.h"
#include "core/try.h"
#include "hyperspeed/kernels.h"
#include "kernels/npu/npu_kernels.h"
#include "memory/registry.h"
#include "model/model_internal.h"
#include "model/act_offload.h"
#include "model/model_registry.h"
#include "model/sublayer.h"
#include "parallel/tp_rules.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_LEN 48

/* ------------------------------------------------------------ registry */

/* Registers the shard of logical tensor `logical_id` (present: held by
 * this chunk) and returns its index, or -1 when absent. */
static int reg_add(hs_model *m, int logical_id, int present, const reg_spec *r)
{
    if (!present)
        return -1;
    hs_param_info e = {0}, *p = &e;
    p->name = r->name;
    p->ndim = r->ndim;
    p->logical_id = logical_id;
    p->logical_shape[0] = r->rows;
    p->logical_shape[1] = r->ndim > 1 ? r->cols : 1;
    p->logical_shape[2] = p->logical_shape[3] = 1;
    p->split_group = HS_SPLIT_TP;
    p->value_at = p->grad_at = p->state_at = HS_RESIDENT_DEVICE;
    p->split = m->tp > 1 ? r->split : HS_SPLIT_NONE;
    p->segments = p->split == HS_SPLIT_ROWS ? r->segments : 1;
    for (int k = 0; k < p->segments; k++)
        p->segment_rows[k] = p->segments == 1 ? r->rows : r->seg_rows[0] ? r->seg_rows[k] : r->rows / r->segments;
    p->shape[0] = r->rows;
    p->shape[1] = p->logical_shape[1];
    if (p->split == HS_SPLIT_ROWS)
        p->shape[0] = r->vocab ? m->vocab_rows : r->rows / m->tp;
    else if (p->split == HS_SPLIT_COLS)
        p->shape[1] = p->logical_shape[1] / m->tp;
    p->shape[2] = p->shape[3] = 1;
    p->numel = p->shape[0] * p->shape[1];
    p->decay = r->ndim >= 2; /* matrices and embeddings decay; biases and norm weights do not */
    p->tp_partial = m->sp && r->replicated_norm;
    p->norm_owner = p->split != HS_SPLIT_NONE || m->tp_rank == 0;
    return hs_registry_add(&m->reg, p);
}

/* The sublayers of every transformer layer, in order. */
static const sublayer_kind *const layer_kinds[HS_LAYER_SUBLAYERS] = {&hs_sublayer_attention, &hs_sublayer_mlp};

/* The registry in the whole model's order; the chunk registers what it
 * holds, every tensor keeping its logical id. */
static void build_registry(hs_model *m)
{
    const hs_model_config *c = &m->cfg;
    const int64_t C = c->d_model, V = c->vocab_size;
    const int gpt2 = c->arch == HS_ARCH_GPT2, emb = m->has_embedding, head = m->has_head;
    int id = 0;
    const reg_spec wte = {"wte", 2, V, C, HS_SPLIT_ROWS, 1, 0, 1, {0}};
    m->wte = reg_add(m, id++, emb || (head && gpt2), &wte);
    if (m->wte >= 0 && !emb) { /* the tied head's copy on the last stage */
        m->reg.entries[m->wte].tied_copy = 1;
        m->reg.entries[m->wte].norm_owner = 0;
    }
    const reg_spec wpe = {"wpe", 2, c->max_seq, C, HS_SPLIT_NONE, 1, 0, 0, {0}};
    if (m->wte >= 0 && gpt2) {
        m->reg.entries[m->wte].tied = 1;
        m->reg.entries[m->wte].head_weight = head;
    }
    m->wpe = gpt2 ? reg_add(m, id++, emb, &wpe) : -1;
    for (int l = 0; l < c->n_layer; l++) {
        const int here = l >= m->first_layer && l < m->first_layer + m->n_layer;
        layer *ly = here ? &m->layers[l - m->first_layer] : NULL;
        for (int k = 0; k < HS_LAYER_SUBLAYERS; k++) {
            const sublayer_kind *kind = layer_kinds[k];
            reg_spec spec[SUB_PARAMS];
            int has[SUB_PARAMS], idx[SUB_PARAMS];
            char n[SUB_PARAMS][NAME_LEN];
            kind->specs(c, spec, has);
            for (int q = 0; q < SUB_PARAMS; q++) {
                const char wb = q % 2 ? 'b' : 'w';
                if (q < SUB_IN_W)
                    snprintf(n[q], NAME_LEN, "h.%d.ln%d.%c", l, k + 1, wb);
                else
                    snprintf(n[q], NAME_LEN, "h.%d.%s.%s.%c", l, kind->group, q < SUB_OUT_W ? kind->in : kind->out,
                             wb);
                spec[q].name = n[q];
                idx[q] = has[q] ? reg_add(m, id++, here, &spec[q]) : -1;
            }
            if (ly)
                ly->sub[k] = (sublayer){kind, {idx[SUB_NORM_W], idx[SUB_NORM_B], idx[SUB_IN_W], idx[SUB_IN_B],
                                               idx[SUB_OUT_W], idx[SUB_OUT_B]}};
        }
        if (ly)
            ly->n_sub = HS_LAYER_SUBLAYERS;
    }
    const reg_spec lnf_w = {"lnf.w", 1, C, 1, HS_SPLIT_NONE, 1, 1, 0, {0}};
    const reg_spec lnf_b = {"lnf.b", 1, C, 1, HS_SPLIT_NONE, 1, 1, 0, {0}};
    const reg_spec lm = {"lm_head.w", 2, V, C, HS_SPLIT_ROWS, 1, 0, 1, {0}};
    m->lnf_w = reg_add(m, id++, head, &lnf_w);
    m->lnf_b = gpt2 ? reg_add(m, id++, head, &lnf_b) : -1;
    m->lm_head = gpt2 ? -1 : reg_add(m, id++, head, &lm);
    if (m->lm_head >= 0)
        m->reg.entries[m->lm_head].head_weight = 1;
}

/* ---------------------------------------------------------------- arena */

/* Hands out 64-byte-aligned slices of one allocation. With base == NULL it
 * only counts, so the same code sizes the arena and then lays it out. */
typedef struct arena_cursor {
    char *base;
    size_t used; /* bytes */
} arena_cursor;

static void *take(arena_cursor *a, size_t bytes)
{
    void *p = a->base ? a->base + a->used : NULL;
    a->used += (bytes + 63) & ~(size_t)63;
    return p;
}

static float *takef(arena_cursor *a, size_t n) { return take(a, n * sizeof(float)); }

/* Sizes of the arena's buffers (see sublayer_acts). */
typedef struct arena_dims {
    size_t N, Ns, C, Cl, Fl, FCl, Vh, cs;
    size_t QKVl; /* the rank's qkv row: Cl + 2 KV / tp */
    int lp;      /* 16-bit compute */
    int own_c;   /* the norms' matmul inputs need buffers of their own (16-bit or gathered) */
} arena_dims;

static arena_dims dims_of(const hs_model *m)
{
    const hs_model_config *c = &m->cfg;
    arena_dims d;
    d.N = (size_t)m->max_B * m->max_T;
    d.Ns = (size_t)hs_model_stream_rows(m, (int64_t)d.N);
    d.C = (size_t)c->d_model;
    d.Cl = d.C / (size_t)m->tp;
    d.Fl = (size_t)c->d_ff / (size_t)m->tp;
    d.FCl = c->arch == HS_ARCH_GPT2 ? d.Fl : 2 * d.Fl;
    d.QKVl = d.Cl + 2 * (size_t)hs_model_config_kv_heads(c) * (d.C / (size_t)c->n_head) / (size_t)m->tp;
    d.Vh = (size_t)m->head_vocab;
    d.cs = hs_dtype_size(m->compute);
    d.lp = m->compute != HS_FP32;
    d.own_c = d.lp || m->sp;
    return d;
}

/* Which buffers of a layer plan_layer takes from the arena; the others it
 * points at the recompute scratch's. */
enum {
    PLAN_CORE = 1, /* the cores' outputs, log-sum-exp values and 16-bit twins */
    PLAN_REST = 2, /* the norms' outputs and statistics, the projections' outputs, inner residuals */
    PLAN_OUT = 4,  /* the layer's output (the last sublayer's residual): the next layer's input */
    PLAN_ALL = 7
};

/* The buffers of layer l into b[] (one per sublayer): those in `own` from
 * the cursor (fp32 ones sublayer by sublayer, then their twins), the
 * others shared with rc (NULL: left NULL). x32: the scratch of the fp32 outputs that a cast
 * or a gather consumes at once (NULL when every output keeps its own). */
static void plan_layer(const hs_model *m, int l, sublayer_acts *b, const sublayer_acts *rc, int own,
                       const arena_dims *d, float *x32, arena_cursor *a)
{
    static const sublayer_acts none[HS_LAYER_SUBLAYERS];
    const int n = m->layers[l].n_sub;
    int64_t core[HS_LAYER_SUBLAYERS];
    rc = rc ? rc : none;
    for (int k = 0; k < n; k++) {
        int64_t in, lse;
        int keep;
        m->layers[l].sub[k].kind->widths(m, &in, &core[k], &lse, &keep);
        if (own & PLAN_REST) {
            b[k].ln = d->own_c ? x32 : takef(a, d->Ns * d->C);
            b[k].ln_mean = takef(a, d->Ns);
            b[k].ln_rstd = takef(a, d->Ns);
            b[k].in = takef(a, d->N * (size_t)in);
        } else {
            b[k].ln = rc[k].ln;
            b[k].ln_mean = rc[k].ln_mean;
            b[k].ln_rstd = rc[k].ln_rstd;
            b[k].in = rc[k].in;
        }
        if (own & PLAN_CORE) {
            b[k].core = keep || !d->lp ? takef(a, d->N * (size_t)core[k]) : x32;
            b[k].lse = lse ? takef(a, d->N * (size_t)lse) : NULL;
        } else {
            b[k].core = rc[k].core;
            b[k].lse = rc[k].lse;
        }
        b[k].res = own & (k == n - 1 ? PLAN_OUT : PLAN_REST) ? takef(a, d->Ns * d->C) : rc[k].res;
    }
    for (int k = 0; k < n; k++) {
        if (own & PLAN_REST)
            b[k].ln_c = d->own_c ? take(a, d->N * d->C * d->cs) : b[k].ln;
        else
            b[k].ln_c = rc[k].ln_c;
        if (own & PLAN_CORE)
            b[k].core_c = d->lp ? take(a, d->N * (size_t)core[k] * d->cs) : b[k].core;
        else
            b[k].core_c = rc[k].core_c;
    }
}

/* What a layer that recomputes in mode r takes from the arena. */
static int kept(hs_recompute r)
{
    return r == HS_RECOMPUTE_FULL ? PLAN_OUT : r == HS_RECOMPUTE_SELECTIVE ? PLAN_REST | PLAN_OUT : PLAN_ALL;
}

/* One activation set. Under activation offload its layers take the
 * ring's HS_ACT_RING regions in turn (every layer's region is alike). */
static void plan_set(hs_model *m, act_set *s, const arena_dims *d, float *x32, arena_cursor *a)
{
    s->encoded = takef(a, d->Ns * d->C);
    for (int l = 0; l < m->n_layer; l++) {
        const int own = kept(hs_model_layer_recompute(m, l));
        if (m->act_offload && l >= HS_ACT_RING) {
            arena_cursor region = {a->base, s->ring.at[l % HS_ACT_RING]};
            plan_layer(m, l, s->acts[l].sub, m->rc.sub, own, d, x32, &region);
            continue;
        }
        const size_t at = a->used;
        plan_layer(m, l, s->acts[l].sub, m->rc.sub, own, d, x32, a);
        if (m->act_offload) {
            s->ring.at[l] = at;
            m->layer_bytes = a->used - at;
        }
    }
    if (m->has_head) {
        s->lnf = d->own_c ? x32 : takef(a, d->Ns * d->C);
        s->lnf_mean = takef(a, d->Ns);
        s->lnf_rstd = takef(a, d->Ns);
        s->lnf_c = d->own_c ? take(a, d->N * d->C * d->cs) : s->lnf;
        s->logits = takef(a, d->N * d->Vh);
        s->losses = takef(a, d->N);
        s->ce_lse = takef(a, d->N);
        s->targets = take(a, d->N * sizeof(int32_t));
    }
    s->tok_dev = m->device == HS_DEVICE_NPU && m->has_embedding ? take(a, d->N * sizeof(int32_t)) : NULL;
}

static void plan_arena(hs_model *m, arena_cursor *a)
{
    const arena_dims d = dims_of(m);
    const size_t x32n = d.lp ? (d.Ns * d.C > d.N * d.Fl ? d.Ns * d.C : d.N * d.Fl) : d.Ns * d.C;
    m->x32 = d.own_c ? takef(a, x32n) : NULL;
    if (m->recompute_layers > 0) /* the scratch holds what a recomputing layer does not keep, and under FULL
                                    the rebuilt output (a kept output may still be in a send); every layer has
                                    the same sublayer kinds, so one layer's worth serves them all */
        plan_layer(m, 0, m->rc.sub, NULL, m->recompute == HS_RECOMPUTE_FULL ? PLAN_ALL : PLAN_CORE, &d, m->x32, a);
    for (int k = 0; k < m->n_slots; k++)
        plan_set(m, &m->sets[k], &d, m->x32, a);
    const int tp = m->tp > 1;
    m->tpr.full = tp ? takef(a, d.N * d.C) : NULL;
    m->tpr.tmp = m->sp ? takef(a, d.N * d.C) : NULL;
    m->ce_comb = tp && m->has_head ? takef(a, 2 * d.N) : NULL;
    m->g.dres = takef(a, d.Ns * d.C);
    m->g.dln = takef(a, d.Ns * d.C);
    m->tpr.dfull = tp ? takef(a, d.N * d.C) : NULL;
    m->g.datt = takef(a, d.N * d.Cl);
    m->g.dqkv = takef(a, d.N * d.QKVl);
    m->g.dfc = takef(a, d.N * d.FCl);
    m->g.dfc_act = takef(a, d.N * d.Fl);
}

/* ------------------------------------------------------------ lifecycle */

/* Host staging of an NPU model, in floats: an init chunk, the losses of a
 * micro-batch, or a logits row with the sampler's two top-k lists. */
#define STAGE_FLOATS ((size_t)1 << 18)

hs_model_shard hs_model_shard_default(void)
{
    return (hs_model_shard){.size = sizeof(hs_model_shard), .tp = 1, .tp_rank = 0, .tp_comm = NULL,
                            .sequence_parallel = 0, .first_layer = 0, .n_layers = 0, .slots = 1};
}

hs_model_options hs_model_options_default(void)
{
    hs_model_options o = {sizeof o, HS_DEVICE_CPU, NULL, HS_FP32, hs_model_shard_default(), HS_RECOMPUTE_NONE, 0,
                          HS_OFFLOAD_NONE};
    return o;
}

/* The shard against the config and the planned sequence length; fills in
 * n_layers. The tensor-parallel rules are hs_layout_check's. */
static hs_status check_shard(const hs_model_config *c, hs_model_shard *s, int seq)
{
    if (s->tp < 1 || s->tp_rank < 0 || s->tp_rank >= s->tp)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "shard: tp=%d must be >= 1 and tp_rank=%d in 0..tp-1", s->tp,
                        s->tp_rank);
    HS_TRY(hs_tp_check_heads(c, s->tp));
    if (s->tp_comm && hs_comm_size(s->tp_comm) != s->tp)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "shard: tp=%d but the TP group has %d ranks", s->tp,
                        hs_comm_size(s->tp_comm));
    if (s->sequence_parallel && (s->tp < 2 || seq % s->tp != 0))
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "sequence parallelism needs tp >= 2 (tp=%d) and seq a "
                        "multiple of tp (seq=%d)",
                        s->tp, seq);
    const int64_t padded = ((int64_t)c->vocab_size + s->tp - 1) / s->tp * s->tp;
    if ((int64_t)c->vocab_size <= padded - padded / s->tp)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "vocab_size=%d is too small for tp=%d: every shard needs a real id",
                        c->vocab_size, s->tp);
    if (s->n_layers == 0)
        s->n_layers = c->n_layer - s->first_layer;
    if (s->first_layer < 0 || s->n_layers < 1 || s->first_layer + s->n_layers > c->n_layer)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "shard: layers %d .. %d are not a range of the model's %d",
                        s->first_layer, s->first_layer + s->n_layers - 1, c->n_layer);
    if (s->slots < 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "shard: slots=%d must be >= 1", s->slots);
    return HS_OK;
}

static hs_status check_options(const hs_model_options *o)
{
    HS_TRY(HS_CHECK_SIZE(o, hs_model_options));
    HS_TRY(HS_CHECK_SIZE(&o->shard, hs_model_shard));
    if (o->device != HS_DEVICE_CPU && o->device != HS_DEVICE_NPU)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "unknown model device %d (HS_DEVICE_CPU or HS_DEVICE_NPU)",
                        (int)o->device);
    if (o->device == HS_DEVICE_NPU && !o->npu)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "a model on HS_DEVICE_NPU needs the device: options.npu is NULL");
    if (o->compute != HS_FP32 && o->compute != HS_BF16 && o->compute != HS_FP16)
        return hs_error(HS_ERR_DTYPE, "compute dtype %s: models compute in fp32, bf16 or fp16",
                        hs_dtype_name(o->compute));
    if (o->device == HS_DEVICE_NPU && o->compute == HS_FP32)
        return hs_error(HS_ERR_DTYPE, "compute dtype fp32 on the NPU: the cube takes fp16/bf16: use --dtype bf16 "
                        "(hs_model_options.compute = HS_BF16)");
    if (o->device == HS_DEVICE_CPU && o->compute == HS_FP16)
        return hs_error(HS_ERR_DTYPE, "compute dtype fp16 on the CPU: its matmul takes fp32 or bf16");
    if (o->offload & ~(unsigned)(HS_OFFLOAD_OPTIMIZER | HS_OFFLOAD_ACTIVATIONS)) {
        char names[64];
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "offload '%s': a model offloads its optimizer state and its activations; parameter offload "
                        "(ZeRO-3's shards) is not in this build",
                        hs_offload_name(o->offload, names, sizeof names));
    }
    if ((o->offload & HS_OFFLOAD_ACTIVATIONS) && o->recompute != HS_RECOMPUTE_NONE)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "offload of activations with recompute %s: activation offload keeps every activation on the "
                        "host, recompute rebuilds them; choose one",
                        hs_recompute_name(o->recompute));
    return HS_OK;
}

/* The recompute mode and layer count against the chunk's n layers (the
 * shard checked). */
static hs_status check_recompute(const hs_model_options *o, int n)
{
    if (!strcmp(hs_recompute_name(o->recompute), "?"))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "unknown recompute mode %d (HS_RECOMPUTE_NONE, _SELECTIVE, _FULL)",
                        (int)o->recompute);
    if (o->recompute_layers < 0 || o->recompute_layers > n)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "recompute_layers=%d: the chunk has %d layers (layers %d .. %d); use 1 .. %d, or 0 for all",
                        o->recompute_layers, n, o->shard.first_layer, o->shard.first_layer + n - 1, n);
    return HS_OK;
}

/* bytes of the model's device memory (host memory on the CPU, HBM on the
 * NPU) for `what`; the error names it and the planned shape. */
static hs_status alloc_on_device(void *ctx, const char *what, size_t bytes, void **out)
{
    hs_model *m = ctx;
    hs_status s = HS_OK;
    if (m->npu) {
        s = hs_npu_malloc(m->npu, bytes, out);
    } else {
        *out = hs_alloc(bytes);
        s = *out ? HS_OK : HS_ERR_OUT_OF_MEMORY;
    }
    if (!s)
        return HS_OK;
    char why[512];
    snprintf(why, sizeof why, "%s", hs_last_error());
    return hs_error(s, "model %s: %.1f MiB for batch=%d seq=%d do not fit: %s", what, (double)bytes / 1048576.0,
                    m->max_B, m->max_T, why);
}

static void free_on_device(void *ctx, void *p)
{
    hs_model *m = ctx;
    if (m->npu)
        (void)hs_npu_free_mem(m->npu, p); /* an address this model allocated: cannot fail */
    else
        hs_free(p);
}

/* Host offload of the optimizer: the fp32 master weights go to the host
 * pool (counted only on an estimate-mode NPU); ZeRO-1 with a 16-bit
 * compute copy: they are the sharded optimizer's. Either way the tensors
 * the kernels read in fp32 keep a device copy: the 1-D ones (norm weights,
 * biases) and the embedding tables, whose rows the lookup reads. */
static void plan_master(hs_model *m)
{
    const int off = (m->offload & HS_OFFLOAD_OPTIMIZER) != 0;
    if (!off && !(m->shard.master_sharded && m->compute != HS_FP32))
        return;
    for (int i = 0; i < m->reg.n; i++) {
        m->reg.entries[i].value_at = m->reg.entries[i].state_at = off ? HS_RESIDENT_HOST : HS_RESIDENT_SHARD;
        if (m->reg.entries[i].ndim < 2 || i == m->wte || i == m->wpe)
            hs_registry_keep_fp32(&m->reg, i);
    }
    if (off)
        hs_registry_offload_values(&m->reg, m->npu && hs_npu_mode_of(m->npu) == HS_NPU_ESTIMATE);
    else
        hs_registry_shard_values(&m->reg);
}

/* Allocates the flat buffers, the compute-dtype weights, the arena and
 * (NPU) the host staging, and lays the arena out. */
static hs_status allocate(hs_model *m)
{
    arena_cursor count = {NULL, 0};
    plan_arena(m, &count);
    plan_master(m);
    HS_TRY(hs_registry_alloc(&m->reg, alloc_on_device, m));
    HS_TRY(alloc_on_device(m, "activations", count.used, &m->arena));
    if (m->npu) {
        const size_t N = (size_t)m->max_B * m->max_T, V3 = 3 * (size_t)m->head_vocab;
        m->stage_n = STAGE_FLOATS > N ? STAGE_FLOATS : N;
        m->stage_n = m->stage_n > V3 ? m->stage_n : V3;
        m->stage = hs_alloc(m->stage_n * sizeof(float));
        if (!m->stage)
            return hs_error(HS_ERR_OUT_OF_MEMORY, "model: %zu floats of host staging", m->stage_n);
    }
    if (!m->npu) { /* touch the host pages now, not in the first step */
        if (m->reg.value && !m->reg.values_on_host) /* (the pool's are zeroed; sharded: none) */
            memset(m->reg.value, 0, (size_t)m->reg.numel * sizeof(float));
        memset(m->arena, 0, count.used);
    }
    arena_cursor lay = {m->arena, 0};
    plan_arena(m, &lay);
    return hs_act_offload_alloc(m);
}

hs_status hs_model_new(const hs_model_config *cfg, int batch, int seq, hs_model **out)
{
    return hs_model_new_ex(cfg, batch, seq, NULL, out);
}

/* The checked options and a model with its registry but no buffers (free
 * with hs_model_free). */
static hs_status skeleton(const hs_model_config *cfg, int batch, int seq, const hs_model_options *opts,
                          hs_model **out)
{
    hs_model_options o = opts ? *opts : hs_model_options_default();
    HS_TRY(hs_model_config_validate(cfg));
    HS_TRY(check_options(&o));
    if (batch < 1 || seq < 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "batch=%d and seq=%d must be positive", batch, seq);
    if (seq > cfg->max_seq)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "seq=%d is longer than the model's context max_seq=%d", seq,
                        cfg->max_seq);
    HS_TRY(check_shard(cfg, &o.shard, seq));
    HS_TRY(check_recompute(&o, o.shard.n_layers));
    hs_model *m = calloc(1, sizeof *m);
    if (!m)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_model_new: out of host memory");
    m->cfg = *cfg;
    m->max_B = batch;
    m->max_T = seq;
    m->device = o.device;
    m->dev = o.device == HS_DEVICE_NPU ? hs_npu_device(o.npu) : NULL;
    m->npu = o.device == HS_DEVICE_NPU ? o.npu : NULL;
    m->compute = o.compute;
    m->shard = o.shard;
    m->tp = o.shard.tp;
    m->tp_rank = o.shard.tp_rank;
    m->sp = o.shard.sequence_parallel;
    m->tpr = (hs_tp_region){o.shard.tp_comm, m->npu, m->dev, m->tp, m->sp, cfg->d_model, m->compute, NULL, NULL, NULL};
    m->first_layer = o.shard.first_layer;
    m->n_layer = o.shard.n_layers;
    m->has_embedding = m->first_layer == 0;
    m->has_head = m->first_layer + m->n_layer == cfg->n_layer;
    const int64_t padded = ((int64_t)cfg->vocab_size + m->tp - 1) / m->tp * m->tp;
    m->vocab_rows = padded / m->tp;
    m->vocab_start = m->tp_rank * m->vocab_rows;
    m->head_vocab = cfg->vocab_size - m->vocab_start < m->vocab_rows ? cfg->vocab_size - m->vocab_start
                                                                      : m->vocab_rows;
    m->n_slots = o.shard.slots;
    m->recompute = o.recompute;
    m->offload = o.offload;
    m->act_offload = (o.offload & HS_OFFLOAD_ACTIVATIONS) && m->n_layer > HS_ACT_RING;
    m->recompute_layers = o.recompute == HS_RECOMPUTE_NONE ? 0 : o.recompute_layers ? o.recompute_layers : m->n_layer;
    const int max_tensors = 6 + 12 * cfg->n_layer;
    m->layers = calloc((size_t)m->n_layer, sizeof *m->layers);
    m->sets = calloc((size_t)m->n_slots, sizeof *m->sets);
    int ok = hs_registry_init(&m->reg, max_tensors, m->compute) == HS_OK && m->layers && m->sets;
    for (int k = 0; ok && k < m->n_slots; k++)
        ok = (m->sets[k].acts = calloc((size_t)m->n_layer, sizeof *m->sets[k].acts)) != NULL;
    if (!ok) {
        hs_model_free(m);
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_model_new: out of host memory");
    }
    m->cur = &m->sets[0];
    build_registry(m);
    *out = m;
    return HS_OK;
}

hs_status hs_model_new_ex(const hs_model_config *cfg, int batch, int seq, const hs_model_options *opts,
                          hs_model **out)
{
    if (!out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_new: out is NULL");
    *out = NULL;
    hs_model *m;
    HS_TRY(skeleton(cfg, batch, seq, opts, &m));
    hs_status s = allocate(m);
    if (!s)
        s = hs_model_zero_grad(m);
    if (s) {
        hs_model_free(m);
        return s;
    }
    *out = m;
    return HS_OK;
}

/* The largest workspace an NPU kernel of this model's training step
 * allocates (kernels/npu/npu_kernels.h); the CPU's kernels keep per-thread
 * scratch instead. */
static hs_status npu_workspace(const hs_model *m, size_t *bytes)
{
    const arena_dims d = dims_of(m);
    const hs_model_config *c = &m->cfg;
    int64_t oc = (int64_t)d.QKVl > (int64_t)d.FCl ? (int64_t)d.QKVl : (int64_t)d.FCl;
    oc = oc > (int64_t)d.C ? oc : (int64_t)d.C;
    oc = m->has_head && (int64_t)d.Vh > oc ? (int64_t)d.Vh : oc;
    const hs_npu_step_shapes sh = {m->max_B, m->max_T, (int64_t)d.Ns, (int64_t)d.C, c->n_head / m->tp,
                                   hs_model_config_kv_heads(c) / m->tp, c->d_model / c->n_head, oc, m->compute,
                                   c->arch == HS_ARCH_GPT2 ? 2 : 1, c->arch != HS_ARCH_GPT2};
    return hs_npu_step_workspace(m->npu, &sh, bytes);
}

hs_status hs_model_memory_plan(const hs_model_config *cfg, int batch, int seq, const hs_model_options *opts,
                               hs_model_memory *out)
{
    if (!out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_memory_plan: out is NULL");
    hs_model *m;
    HS_TRY(skeleton(cfg, batch, seq, opts, &m));
    arena_cursor count = {NULL, 0};
    plan_arena(m, &count);
    const size_t n = (size_t)m->reg.numel, cs = hs_dtype_size(m->compute);
    out->params = m->reg.numel;
    out->weights = n * sizeof(float) + (m->compute != HS_FP32 ? n * cs : 0);
    out->gradients = n * sizeof(float);
    out->optimizer = 2 * n * sizeof(float);
    out->activations = count.used;
    out->workspace = 0;
    out->host = 0;
    plan_master(m);
    if (m->reg.values_on_host || m->reg.values_sharded) /* device: the compute copy and the fp32 mirror */
        out->weights = n * cs + (m->compute != HS_FP32 ? (size_t)m->reg.mirror_numel * sizeof(float) : 0);
    if (m->offload & HS_OFFLOAD_OPTIMIZER) {
        out->optimizer = 0;
        out->host = n * sizeof(float) * (m->npu ? 4 : 3);
    }
    out->host += hs_act_offload_host_bytes(m); /* the count pass measured a layer's region */
    hs_status s = m->npu ? npu_workspace(m, &out->workspace) : HS_OK;
    hs_model_free(m);
    return s;
}

hs_status hs_model_plan_tensors(const hs_model_config *cfg, int batch, int seq, const hs_model_options *opts,
                                int64_t **numel, int *n, int64_t *tied)
{
    hs_model *m;
    HS_TRY(skeleton(cfg, batch, seq, opts, &m));
    *n = m->reg.n;
    *tied = 0;
    *numel = malloc((size_t)(m->reg.n > 0 ? m->reg.n : 1) * sizeof **numel);
    for (int i = 0; *numel && i < m->reg.n; i++) {
        (*numel)[i] = m->reg.entries[i].numel;
        *tied = m->reg.entries[i].tied ? m->reg.entries[i].numel : *tied;
    }
    hs_model_free(m);
    return *numel ? HS_OK : hs_error(HS_ERR_OUT_OF_MEMORY, "hs_model_plan_tensors: %d sizes", *n);
}

void hs_model_free(hs_model *m)
{
    if (!m)
        return;
    hs_free(m->stage);
    free_on_device(m, m->arena);
    hs_act_offload_free(m);
    hs_registry_free(&m->reg, free_on_device, m);
    for (int k = 0; m->sets && k < m->n_slots; k++)
        free(m->sets[k].acts);
    free(m->sets);
    free(m->layers);
    free(m->hooks);
    free(m);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* w[0..n) = elements [first, first + n) of the N(0, std^2) stream of
 * tensor `id`. An NPU model generates them on the host a staging chunk at
 * a time and copies them; estimate mode generates nothing but takes the
 * same copies' time. */
static hs_status init_run(hs_model *m, float *w, int64_t n, uint64_t seed, uint64_t id, int64_t first, float std,
                          int host)
{
    if (!m->npu || host) { /* host memory (none when nothing is held) */
        if (w)
            hs_rng_normal(w, (size_t)n, seed, id, (uint64_t)first, 0.0f, std);
        return HS_OK;
    }
    const int values = hs_npu_mode_of(m->npu) == HS_NPU_EXECUTE;
    for (int64_t at = 0; at < n; at += (int64_t)m->stage_n) {
        const size_t len = (size_t)(n - at) < m->stage_n ? (size_t)(n - at) : m->stage_n;
        if (values)
            hs_rng_normal(m->stage, len, seed, id, (uint64_t)(first + at), 0.0f, std);
        HS_TRY(hs_npu_memcpy_h2d(m->npu, hs_device_stream(m->dev), w + at, values ? m->stage : NULL,
                                 len * sizeof(float)));
    }
    return HS_OK;
}

/* w[0..n) = v: on the model's device, or (host) in host memory (none when w is NULL). */
static hs_status fill(hs_model *m, float *w, int64_t n, float v, int host)
{
    if (host) {
        for (int64_t i = 0; w && i < n; i++)
            w[i] = v;
        return HS_OK;
    }
    hs_tensor t = hs_model_on_device(m, hs_view1(w, HS_FP32, n));
    return n > 0 ? hs_fill(&t, v) : HS_OK;
}

/* Calls fn(ctx, local, logical, n) for each contiguous run of shard p (of
 * TP rank tp_rank): its n elements from offset `local` are the logical
 * tensor's from offset `logical` (a row's columns for a column split, each
 * segment's rows for a row split, everything unsplit); logical -1 marks
 * vocabulary padding rows, which have no logical elements. Stops at the
 * first failure. */
typedef hs_status (*run_fn)(void *ctx, int64_t local, int64_t logical, int64_t n);

static hs_status shard_runs(const hs_param_info *p, int tp_rank, run_fn fn, void *ctx)
{
    const int64_t cols = p->logical_shape[1];
    if (p->split == HS_SPLIT_NONE)
        return fn(ctx, 0, 0, p->numel);
    if (p->split == HS_SPLIT_COLS) {
        const int64_t cl = p->shape[1];
        for (int64_t i = 0; i < p->shape[0]; i++)
            HS_TRY(fn(ctx, i * cl, i * cols + tp_rank * cl, cl));
        return HS_OK;
    }
    int64_t whole0 = 0, held0 = 0; /* the segment's first row: logical, in the shard */
    for (int seg = 0; seg < p->segments; seg++) {
        int64_t R, Rl;
        hs_param_segment_rows(p, seg, &R, &Rl);
        const int64_t start = tp_rank * Rl, valid = R - start < Rl ? R - start : Rl;
        HS_TRY(fn(ctx, held0 * cols, (whole0 + start) * cols, valid * cols));
        if (valid < Rl)
            HS_TRY(fn(ctx, (held0 + valid) * cols, -1, (Rl - valid) * cols));
        whole0 += R;
        held0 += Rl;
    }
    return HS_OK;
}

void hs_param_segment_rows(const hs_param_info *p, int seg, int64_t *whole, int64_t *held)
{
    *whole = p->segment_rows[seg];
    /* one segment: the shard's rows, padding included (the vocabulary);
     * several: each divides over TP as the whole does */
    *held = p->segments == 1 ? p->shape[0] : p->segment_rows[seg] / (p->logical_shape[0] / p->shape[0]);
}

/* hs_model_init's run: N(0, std^2) values of the logical elements, zero
 * padding. */
typedef struct init_ctx {
    hs_model *m;
    float *w; /* NULL: nothing held (an estimate-mode NPU's host memory) */
    uint64_t seed, id;
    float std;
    int host;
} init_ctx;

static hs_status init_one_run(void *ctx, int64_t local, int64_t logical, int64_t n)
{
    init_ctx *c = ctx;
    float *w = c->w ? c->w + local : NULL;
    if (logical < 0)
        return fill(c->m, w, n, 0.0f, c->host);
    return init_run(c->m, w, n, c->seed, c->id, logical, c->std, c->host);
}

/* hs_param_shard_copy's run. */
typedef struct copy_ctx {
    float *shard, *whole;
    int to_whole;
} copy_ctx;

static hs_status copy_one_run(void *ctx, int64_t local, int64_t logical, int64_t n)
{
    copy_ctx *c = ctx;
    if (logical < 0) {
        if (!c->to_whole)
            memset(c->shard + local, 0, (size_t)n * sizeof(float));
    } else if (c->to_whole) {
        memcpy(c->whole + logical, c->shard + local, (size_t)n * sizeof(float));
    } else {
        memcpy(c->shard + local, c->whole + logical, (size_t)n * sizeof(float));
    }
    return HS_OK;
}

hs_status hs_param_shard_copy(const hs_param_info *p, int tp_rank, float *shard, float *whole, int to_whole)
{
    if (!p || !shard || !whole)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_param_shard_copy: NULL argument");
    int64_t per = p->shape[1], whole_n = p->logical_shape[1];
    if (p->split == HS_SPLIT_ROWS)
        hs_param_segment_rows(p, 0, &whole_n, &per);
    if (tp_rank < 0 || (p->split != HS_SPLIT_NONE && tp_rank * per >= whole_n))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_param_shard_copy: %s has no shard of TP rank %d", p->name,
                        tp_rank);
    copy_ctx c = {shard, whole, to_whole};
    return shard_runs(p, tp_rank, copy_one_run, &c);
}

/* Entry i's initial values into w: on the model's device, or (host) in
 * host memory (w NULL: nothing held, copies' time only). */
static hs_status init_entry(hs_model *m, int i, uint64_t seed, float *w, int host)
{
    const hs_param_info *p = &m->reg.entries[i];
    if (p->ndim >= 2) {
        const float resid_std = m->cfg.init_std / sqrtf(2.0f * (float)m->cfg.n_layer);
        init_ctx c = {m, w, seed, (uint64_t)p->logical_id,
                      ends_with(p->name, ".proj.w") ? resid_std : m->cfg.init_std, host};
        return shard_runs(p, m->tp_rank, init_one_run, &c);
    }
    const float v = (ends_with(p->name, "ln1.w") || ends_with(p->name, "ln2.w") || ends_with(p->name, "lnf.w"))
                        ? 1.0f : 0.0f;
    return fill(m, w, p->numel, v, host);
}

/* 1 when the model's host-side values exist (not an estimate-mode NPU). */
static int has_values(const hs_model *m) { return !m->npu || hs_npu_mode_of(m->npu) == HS_NPU_EXECUTE; }

/* The largest entry's element count. */
static int64_t largest_entry(const hs_model *m)
{
    int64_t n = 1;
    for (int i = 0; i < m->reg.n; i++)
        n = m->reg.entries[i].numel > n ? m->reg.entries[i].numel : n;
    return n;
}

hs_status hs_model_init(hs_model *m, uint64_t seed)
{
    if (!m)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_init: model is NULL");
    if (!m->reg.values_sharded) {
        for (int i = 0; i < m->reg.n; i++)
            HS_TRY(init_entry(m, i, seed, hs_registry_view(&m->reg, i, HS_PARAM_VALUE, NULL).data,
                              m->reg.values_on_host));
        return hs_model_sync_weights(m);
    }
    /* sharded master: each entry generated on the host, then its compute copy and fp32 copy uploaded (the
       optimizer initialises its shard of the master from the same values, hs_model_init_range) */
    float *tmp = has_values(m) ? hs_alloc((size_t)largest_entry(m) * sizeof(float)) : NULL;
    if (has_values(m) && !tmp)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_model_init: a host staging of %lld floats",
                        (long long)largest_entry(m));
    hs_status s = HS_OK;
    for (int i = 0; !s && i < m->reg.n; i++) {
        const hs_param_info *p = &m->reg.entries[i];
        s = init_entry(m, i, seed, tmp, 1);
        if (!s)
            s = hs_model_upload_values(m, p->offset, p->offset + p->numel, tmp,
                                       m->npu ? hs_npu_default_stream(m->npu) : NULL);
    }
    hs_free(tmp);
    return s;
}

hs_status hs_model_init_range(hs_model *m, uint64_t seed, int64_t lo, int64_t hi, float *dst)
{
    float *tmp = hs_alloc((size_t)largest_entry(m) * sizeof(float));
    if (!tmp)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_model_init_range: a host staging of %lld floats",
                        (long long)largest_entry(m));
    hs_status s = HS_OK;
    for (int i = 0; !s && i < m->reg.n; i++) {
        const hs_param_info *p = &m->reg.entries[i];
        const int64_t b = lo > p->offset ? lo : p->offset, e = hi < p->offset + p->numel ? hi : p->offset + p->numel;
        if (e <= b)
            continue;
        s = init_entry(m, i, seed, tmp, 1);
        if (!s)
            memcpy(dst + (b - lo), tmp + (b - p->offset), (size_t)(e - b) * sizeof(float));
    }
    hs_free(tmp);
    return s;
}

hs_status hs_model_sync_weights(hs_model *m)
{
    if (!m)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_sync_weights: model is NULL");
    return hs_model_sync_weights_range(m, 0, m->reg.numel);
}

hs_status hs_model_sync_weights_range(hs_model *m, int64_t lo, int64_t hi)
{
    if (m->reg.values_sharded) /* no whole master here: the optimizer uploads (hs_model_upload_values) */
        return HS_OK;
    if (m->reg.values_on_host)
        return hs_model_upload_weights(m, lo, hi, m->npu ? hs_npu_default_stream(m->npu) : NULL);
    if (m->compute == HS_FP32 || hi <= lo)
        return HS_OK;
    hs_tensor src = hs_registry_span(&m->reg, HS_PARAM_VALUE, lo, hi, m->dev);
    hs_tensor dst = hs_registry_span(&m->reg, HS_PARAM_COMPUTE, lo, hi, m->dev);
    return hs_cast(&dst, &src);
}

/* host[0 .. n) (NULL when the pool only counts) to the device at dst on
 * stream s: a copy over the host link on the NPU, memcpy on the CPU. */
static hs_status to_device(hs_model *m, hs_npu_stream *s, void *dst, const void *host, size_t bytes)
{
    if (m->npu)
        return hs_npu_memcpy_h2d(m->npu, s, dst, host, bytes);
    memcpy(dst, host, bytes);
    return HS_OK;
}

/* Host fp32 values src of elements [lo, hi) (NULL: none held) into the
 * compute copy: cast on the host into the staging buffer, a piece at a
 * time, and copied up (the CPU device casts straight into its compute
 * copy). */
static hs_status upload_compute(hs_model *m, int64_t lo, int64_t hi, const float *src, hs_npu_stream *s)
{
    const size_t cs = hs_dtype_size(m->compute);
    char *dst = (char *)m->reg.compute_buf;
    if (!m->npu && m->compute != HS_FP32) {
        hs_tensor from = hs_view1((float *)src, HS_FP32, hi - lo);
        hs_tensor to = hs_view1(dst + lo * (int64_t)cs, m->compute, hi - lo);
        return hs_cast(&to, &from);
    }
    if (m->compute == HS_FP32)
        return to_device(m, s, dst + lo * (int64_t)cs, src, (size_t)(hi - lo) * cs);
    const int64_t step = (int64_t)(m->stage_n * sizeof(float) / cs);
    for (int64_t at = lo; at < hi; at += step) {
        const int64_t n = hi - at < step ? hi - at : step;
        if (src) {
            hs_tensor from = hs_view1((float *)src + (at - lo), HS_FP32, n);
            hs_tensor to = hs_view1(m->stage, m->compute, n);
            HS_TRY(hs_cast(&to, &from));
        }
        HS_TRY(to_device(m, s, dst + at * (int64_t)cs, src ? m->stage : NULL, (size_t)n * cs));
    }
    return HS_OK;
}

hs_status hs_model_upload_values(hs_model *m, int64_t lo, int64_t hi, const float *src, hs_npu_stream *s)
{
    const hs_registry *r = &m->reg;
    if (hi <= lo)
        return HS_OK;
    HS_TRY(upload_compute(m, lo, hi, src, s));
    for (int i = 0; r->mirror && i < r->n; i++) { /* the fp32 copies of the entries in [lo, hi) */
        const hs_param_info *p = &r->entries[i];
        const int64_t b = lo > p->offset ? lo : p->offset, e = hi < p->offset + p->numel ? hi : p->offset + p->numel;
        if (r->mirror_at[i] < 0 || e <= b)
            continue;
        HS_TRY(to_device(m, s, r->mirror + r->mirror_at[i] + (b - p->offset), src ? src + (b - lo) : NULL,
                         (size_t)(e - b) * sizeof(float)));
    }
    return HS_OK;
}

hs_status hs_model_upload_weights(hs_model *m, int64_t lo, int64_t hi, hs_npu_stream *s)
{
    const hs_registry *r = &m->reg;
    if (!r->values_on_host)
        return HS_OK;
    return hs_model_upload_values(m, lo, hi, r->value ? r->value + lo : NULL, s);
}

/* ------------------------------------------------------------ accessors */

const hs_model_config *hs_model_config_of(const hs_model *m) { return &m->cfg; }

int64_t hs_model_num_params(const hs_model *m) { return m->reg.numel; }

int hs_model_num_tensors(const hs_model *m) { return m->reg.n; }

const hs_param_info *hs_model_param(const hs_model *m, int i)
{
    return (i >= 0 && i < m->reg.n) ? &m->reg.entries[i] : NULL;
}

const hs_param_info *hs_model_param_by_name(const hs_model *m, const char *name)
{
    const int i = hs_registry_find(&m->reg, name);
    return i >= 0 ? &m->reg.entries[i] : NULL;
}

hs_status hs_model_tensor(const hs_model *m, int i, hs_param_part part, hs_tensor *out)
{
    if (!m || !out || part < HS_PARAM_VALUE || part > HS_PARAM_COMPUTE)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_tensor: NULL model or output, or unknown part %d",
                        (int)part);
    if (i < 0 || i >= m->reg.n)
        return hs_error(HS_ERR_NOT_FOUND, "hs_model_tensor: no registry entry %d (the model has %d)", i, m->reg.n);
    *out = hs_registry_view(&m->reg, i, part, m->dev);
    return HS_OK;
}

hs_status hs_model_tensor_by_name(const hs_model *m, const char *name, hs_param_part part, hs_tensor *out)
{
    if (!m || !name)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_tensor_by_name: NULL model or name");
    const int i = hs_registry_find(&m->reg, name);
    if (i < 0)
        return hs_error(HS_ERR_NOT_FOUND, "no parameter '%s' in this model's registry (%d entries, e.g. '%s')",
                        name, m->reg.n, m->reg.n ? m->reg.entries[0].name : "none");
    return hs_model_tensor(m, i, part, out);
}

const hs_registry *hs_model_registry(const hs_model *m) { return &m->reg; }

hs_device *hs_model_device(const hs_model *m) { return m->dev; }

hs_npu *hs_model_npu(const hs_model *m) { return m->npu; }

hs_dtype hs_model_compute_dtype(const hs_model *m) { return m->compute; }

hs_status hs_model_add_hook(hs_model *m, hs_layer_hook_fn fn, void *ctx)
{
    if (!m || !fn)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_add_hook: NULL model or hook");
    struct model_hook *h = realloc(m->hooks, (size_t)(m->n_hooks + 1) * sizeof *h);
    if (!h)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_model_add_hook: %d hooks", m->n_hooks + 1);
    m->hooks = h;
    m->hooks[m->n_hooks++] = (struct model_hook){fn, ctx};
    return HS_OK;
}

hs_status hs_model_remove_hook(hs_model *m, hs_layer_hook_fn fn, void *ctx)
{
    for (int i = 0; m && i < m->n_hooks; i++)
        if (m->hooks[i].fn == fn && m->hooks[i].ctx == ctx) {
            memmove(&m->hooks[i], &m->hooks[i + 1], (size_t)(m->n_hooks - i - 1) * sizeof *m->hooks);
            m->n_hooks--;
            return HS_OK;
        }
    return hs_error(HS_ERR_NOT_FOUND, "hs_model_remove_hook: no such hook on this model");
}

void hs_model_defer_embedding_grad(hs_model *m, int defer) { m->defer_embedding = defer != 0; }

void hs_model_planned_shape(const hs_model *m, int *batch, int *seq)
{
    if (batch)
        *batch = m->max_B;
    if (seq)
        *seq = m->max_T;
}

hs_status hs_model_zero_grad(hs_model *m)
{
    if (!m)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_zero_grad: model is NULL");
    hs_tensor g = hs_registry_span(&m->reg, HS_PARAM_GRAD, 0, m->reg.numel, m->dev);
    return hs_fill(&g, 0.0f);
}

double hs_model_flops_per_step(const hs_model *m, int B, int T)
{
    const hs_model_config *c = &m->cfg;
    const double C = c->d_model, F = c->d_ff, L = m->n_layer, tp = m->tp;
    const double fc_out = c->arch == HS_ARCH_GPT2 ? F : 2 * F;
    const double head = m->has_head ? (double)m->head_vocab * C : 0;
    const double qkv_rows = C + 2.0 * hs_model_config_kv_heads(c) * (C / c->n_head);
    double matmul_params = L * (qkv_rows * C + C * C + fc_out * C + F * C) / tp + head;
    double tokens = (double)B * T;
    return 6.0 * matmul_params * tokens + 6.0 * L * (double)B * T * T * C / tp;
}

hs_status hs_model_set_slot(hs_model *m, int slot)
{
    if (!m || slot < 0 || slot >= m->n_slots)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_set_slot: slot %d outside 0..%d", slot,
                        m ? m->n_slots - 1 : -1);
    m->cur = &m->sets[slot];
    return HS_OK;
}

const hs_model_shard *hs_model_shard_of(const hs_model *m) { return &m->shard; }

int hs_model_has_embedding(const hs_model *m) { return m->has_embedding; }

int hs_model_has_head(const hs_model *m) { return m->has_head; }

int64_t hs_model_boundary_numel(const hs_model *m, int B, int T)
{
    return hs_model_stream_rows(m, (int64_t)B * T) * m->cfg.d_model;
}
