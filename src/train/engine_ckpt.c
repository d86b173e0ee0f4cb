/* Checkpoints of a sharded layout (hyperspeed/engine.h): world rank 0
 * assembles the logical tensors from the shards of DP replica 0 and writes
 * the checkpoint hs_train_save would write for the whole model; every rank
 * loads its slices of the logical tensors. Under ZeRO-1 the DP group first
 * gathers the optimizer's blocks whole (hs_engine_full_state), and a load
 * keeps each rank's blocks of what it read. */
#include "core/try.h"
#include "hyperspeed/engine.h"
#include "train/engine_config.h"
#include "train/state_tensors.h"
#include "model/model_stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* A shard's description as int64s, sent to rank 0 ahead of its values. */
enum {
    D_ID,
    D_NDIM,
    D_LROWS,
    D_LCOLS,
    D_SPLIT,
    D_SEGMENTS,
    D_SEG_ROWS,
    D_ROWS = D_SEG_ROWS + HS_MAX_SEGMENTS,
    D_COLS,
    D_TP_RANK,
    D_NAME,
    D_LEN = D_NAME + 6
};
#define NAME_BYTES (6 * (int)sizeof(int64_t))

static void describe(const hs_param_info *p, int tp_rank, int64_t *d)
{
    memset(d, 0, D_LEN * sizeof *d);
    d[D_ID] = p->logical_id;
    d[D_NDIM] = p->ndim;
    d[D_LROWS] = p->logical_shape[0];
    d[D_LCOLS] = p->logical_shape[1];
    d[D_SPLIT] = p->split;
    d[D_SEGMENTS] = p->segments;
    for (int k = 0; k < p->segments; k++)
        d[D_SEG_ROWS + k] = p->segment_rows[k];
    d[D_ROWS] = p->shape[0];
    d[D_COLS] = p->shape[1];
    d[D_TP_RANK] = tp_rank;
    snprintf((char *)&d[D_NAME], NAME_BYTES, "%s", p->name);
}

/* The registry entry a description stands for (its name inside d). */
static hs_param_info info_of(const int64_t *d)
{
    hs_param_info p;
    memset(&p, 0, sizeof p);
    p.name = (const char *)&d[D_NAME];
    p.ndim = (int)d[D_NDIM];
    p.logical_id = (int)d[D_ID];
    p.logical_shape[0] = d[D_LROWS];
    p.logical_shape[1] = d[D_LCOLS];
    p.logical_shape[2] = p.logical_shape[3] = 1;
    p.split = (hs_split)d[D_SPLIT];
    p.segments = (int)d[D_SEGMENTS];
    for (int k = 0; k < p.segments && k < HS_MAX_SEGMENTS; k++)
        p.segment_rows[k] = d[D_SEG_ROWS + k];
    p.shape[0] = d[D_ROWS];
    p.shape[1] = d[D_COLS];
    p.numel = d[D_ROWS] * d[D_COLS];
    return p;
}

/* Whether this rank saves entry p: DP replica 0 does, except the tied
 * head's copy of wte (the first stage saves wte). */
static int saves(const hs_engine *e, const hs_param_info *p)
{
    return hs_runtime_rank(hs_engine_runtime(e), HS_GROUP_DP) == 0 && !p->tied_copy;
}

/* h[0 .. 3 numel) = entry i's values, first and second moments (host;
 * an NPU's copied down). */
static hs_status shard_down(hs_model *m, hs_optimizer *o, int i, float *h)
{
    const size_t numel = (size_t)hs_model_param(m, i)->numel;
    for (int k = 0; k < HS_STATE_KINDS; k++)
        HS_TRY(hs_state_copy(m, o, k, i, h + (size_t)k * numel, 1));
    return HS_OK;
}

/* The whole model's tensors as rank 0 assembles them, by logical id. */
typedef struct whole {
    int n;                  /* logical tensors */
    hs_ckpt_tensor *t;      /* [3 n]: kind-major, as hs_train_save */
    char (*names)[64];      /* [3 n] */
} whole;

/* Places a shard's three buffers h into the whole tensors. */
static hs_status place(whole *w, const int64_t *d, const float *h)
{
    hs_param_info p = info_of(d);
    if (p.logical_id < 0 || p.logical_id >= w->n)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "checkpoint: tensor %s has logical id %d of %d", p.name,
                        p.logical_id, w->n);
    const int64_t numel = p.logical_shape[0] * p.logical_shape[1];
    for (int k = 0; k < 3; k++) {
        hs_ckpt_tensor *t = &w->t[k * w->n + p.logical_id];
        if (!t->data) {
            if (!(t->data = hs_alloc((size_t)numel * sizeof(float))))
                return hs_error(HS_ERR_OUT_OF_MEMORY, "checkpoint: %s of %lld floats", p.name, (long long)numel);
            snprintf(w->names[k * w->n + p.logical_id], 64, "%s/%s", hs_state_kind_names[k], p.name);
            t->name = w->names[k * w->n + p.logical_id];
            t->ndim = p.ndim;
            t->shape[0] = p.logical_shape[0];
            t->shape[1] = p.ndim > 1 ? p.logical_shape[1] : 1;
        }
        HS_TRY(hs_param_shard_copy(&p, (int)d[D_TP_RANK], (float *)h + (size_t)k * (size_t)p.numel, t->data, 1));
    }
    return HS_OK;
}

enum { TAG_DESC = 101, TAG_DATA = 102 };

/* Calls fn(ctx, description, h) for every shard this rank saves, h its
 * three buffers staged on the host (freed after the call). */
typedef hs_status (*shard_fn)(void *ctx, const int64_t *d, const float *h);

static hs_status for_each_shard(hs_engine *e, shard_fn fn, void *ctx)
{
    const int tpr = hs_runtime_rank(hs_engine_runtime(e), HS_GROUP_TP);
    int64_t d[D_LEN];
    for (int c = 0; c < hs_engine_num_chunks(e); c++) {
        hs_model *m = hs_engine_chunk(e, c);
        for (int i = 0; i < hs_model_num_tensors(m); i++) {
            const hs_param_info *p = hs_model_param(m, i);
            if (!saves(e, p))
                continue;
            float *h = hs_alloc(3 * (size_t)p->numel * sizeof(float));
            if (!h)
                return hs_error(HS_ERR_OUT_OF_MEMORY, "checkpoint staging of %s", p->name);
            describe(p, tpr, d);
            hs_status s = shard_down(m, hs_engine_optimizer(e, c), i, h);
            if (!s)
                s = fn(ctx, d, h);
            hs_free(h);
            HS_TRY(s);
        }
    }
    return HS_OK;
}

/* Rank r != 0: each shard's description, then its buffers, to rank 0. */
static hs_status send_one(void *ctx, const int64_t *d, const float *h)
{
    hs_comm *world = ctx;
    HS_TRY(hs_comm_send(world, d, D_LEN, HS_INT64, 0, TAG_DESC));
    return hs_comm_send(world, h, 3 * (size_t)(d[D_ROWS] * d[D_COLS]), HS_FP32, 0, TAG_DATA);
}

static hs_status place_one(void *ctx, const int64_t *d, const float *h) { return place(ctx, d, h); }

/* Rank 0: its own shards, then every other rank's (counts[r] of them), into w. */
static hs_status gather_shards(hs_engine *e, hs_comm *world, const int64_t *counts, whole *w)
{
    HS_TRY(for_each_shard(e, place_one, w));
    int64_t d[D_LEN];
    for (int r = 1; r < hs_comm_size(world); r++)
        for (int64_t k = 0; k < counts[r]; k++) {
            HS_TRY(hs_comm_recv(world, d, D_LEN, HS_INT64, r, TAG_DESC));
            const int64_t numel = d[D_ROWS] * d[D_COLS];
            float *h = hs_alloc(3 * (size_t)numel * sizeof(float));
            if (!h)
                return hs_error(HS_ERR_OUT_OF_MEMORY, "checkpoint staging of rank %d's %s", r, (char *)&d[D_NAME]);
            hs_status s = hs_comm_recv(world, h, 3 * (size_t)numel, HS_FP32, r, TAG_DATA);
            if (!s)
                s = place(w, d, h);
            hs_free(h);
            HS_TRY(s);
        }
    return HS_OK;
}

static hs_status write_whole(hs_engine *e, const char *dir, const hs_train_state *st, const int64_t *counts)
{
    hs_comm *world = hs_runtime_comm(hs_engine_runtime(e), HS_GROUP_WORLD);
    const hs_model_config *cfg = hs_model_config_of(hs_engine_chunk(e, 0));
    whole w = {0, NULL, NULL};
    for (int r = 0; r < hs_comm_size(world); r++) /* at least as many shards as logical tensors */
        w.n += (int)counts[r];
    w.t = calloc((size_t)(3 * w.n), sizeof *w.t);
    w.names = calloc((size_t)(3 * w.n), sizeof *w.names);
    hs_status s = w.t && w.names ? HS_OK : hs_error(HS_ERR_OUT_OF_MEMORY, "checkpoint tensor table");
    char config[512];
    if (!s)
        s = hs_model_config_to_json(cfg, config, sizeof config);
    if (!s)
        s = gather_shards(e, world, counts, &w);
    int n = 0; /* the whole registry's tensors: ids 0 .. n-1, every one of them gathered */
    for (int i = 0; i < w.n; i++)
        n = w.t && w.t[i].data ? i + 1 : n;
    for (int i = 0; !s && i < n; i++)
        if (!w.t[i].data)
            s = hs_error(HS_ERR_INVALID_ARGUMENT, "checkpoint: no rank saved logical tensor %d", i);
    if (!s) { /* compact the kind-major table from w.n to n tensors a kind: every buffer then lies in [0, 3n) */
        for (int k = 1; k < 3; k++)
            memmove(&w.t[k * n], &w.t[k * w.n], (size_t)n * sizeof *w.t);
        w.n = n;
        hs_ckpt_meta meta = {0};
        meta.step = hs_engine_steps(e);
        meta.seed = st->seed;
        meta.data_position = st->data_position;
        meta.model_config = config;
        s = hs_checkpoint_save(dir, w.t, 3 * n, &meta);
    }
    for (int i = 0; w.t && i < 3 * w.n; i++)
        hs_free(w.t[i].data);
    free(w.t);
    free(w.names);
    return s;
}

hs_status hs_engine_save(hs_engine *e, const char *dir, const hs_train_state *st)
{
    if (!e || !dir || !st)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_engine_save: NULL argument");
    hs_comm *world = hs_runtime_comm(hs_engine_runtime(e), HS_GROUP_WORLD);
    const int rank = hs_comm_rank(world), size = hs_comm_size(world);
    hs_model *m0 = hs_engine_chunk(e, 0);
    if (hs_model_npu(m0) && hs_npu_mode_of(hs_model_npu(m0)) != HS_NPU_EXECUTE)
        return hs_error(HS_ERR_DEVICE, "checkpoints need values: an estimate-mode NPU has none");
    int64_t mine = 0, *counts = calloc((size_t)size, sizeof *counts);
    if (!counts)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_engine_save: %d counts", size);
    for (int c = 0; c < hs_engine_num_chunks(e); c++)
        for (int i = 0; i < hs_model_num_tensors(hs_engine_chunk(e, c)); i++)
            mine += saves(e, hs_model_param(hs_engine_chunk(e, c), i));
    hs_status s = hs_comm_allgather(world, &mine, counts, (size_t)size, HS_INT64);
    const hs_status g = s ? s : hs_engine_full_state(e, 1);
    if (!s && !g)
        s = rank == 0 ? write_whole(e, dir, st, counts) : for_each_shard(e, send_one, world);
    s = s ? s : g;
    if (!g)
        (void)hs_engine_drop_full_state(e, 0); /* nothing to copy back: cannot fail */
    free(counts);
    int32_t status = (int32_t)s; /* rank 0's verdict for everyone */
    hs_status b = hs_comm_broadcast(world, &status, 1, HS_INT32, 0);
    if (b)
        return b;
    if (rank != 0 && status != HS_OK && !s)
        return hs_error((hs_status)status, "rank 0 could not save the checkpoint in %s (its message says why)",
                        dir);
    return s ? s : (hs_status)status;
}

/* Loads chunk c's entries: their logical tensors read whole, each rank's
 * slices kept. */
static hs_status load_chunk(hs_engine *e, int c, const char *dir, hs_ckpt_meta *meta)
{
    hs_model *m = hs_engine_chunk(e, c);
    hs_optimizer *o = hs_engine_optimizer(e, c);
    const int n = hs_model_num_tensors(m), tpr = hs_model_shard_of(m)->tp_rank;
    hs_ckpt_tensor *t = calloc((size_t)(3 * n), sizeof *t);
    char (*names)[64] = calloc((size_t)(3 * n), sizeof *names);
    hs_status s = t && names ? HS_OK : hs_error(HS_ERR_OUT_OF_MEMORY, "checkpoint tensor table");
    for (int k = 0; !s && k < 3; k++)
        for (int i = 0; !s && i < n; i++) {
            const hs_param_info *p = hs_model_param(m, i);
            hs_ckpt_tensor *ti = &t[k * n + i];
            snprintf(names[k * n + i], 64, "%s/%s", hs_state_kind_names[k], p->name);
            ti->name = names[k * n + i];
            ti->ndim = p->ndim;
            ti->shape[0] = p->logical_shape[0];
            ti->shape[1] = p->ndim > 1 ? p->logical_shape[1] : 1;
            ti->data = hs_alloc((size_t)(p->logical_shape[0] * p->logical_shape[1]) * sizeof(float));
            if (!ti->data)
                s = hs_error(HS_ERR_OUT_OF_MEMORY, "checkpoint: logical %s", p->name);
        }
    if (!s)
        s = hs_checkpoint_load(dir, t, 3 * n, meta);
    for (int k = 0; !s && k < HS_STATE_KINDS; k++)
        for (int i = 0; !s && i < n; i++) {
            const hs_param_info *p = hs_model_param(m, i);
            float *h = hs_alloc((size_t)p->numel * sizeof(float)); /* the shard, then up to its tensor */
            if (!h) {
                s = hs_error(HS_ERR_OUT_OF_MEMORY, "checkpoint staging of %s", p->name);
                break;
            }
            s = hs_param_shard_copy(p, tpr, h, t[k * n + i].data, 0);
            if (!s)
                s = hs_state_copy(m, o, k, i, h, 0);
            hs_free(h);
        }
    for (int i = 0; t && i < 3 * n; i++)
        hs_free(t[i].data);
    free(t);
    free(names);
    return s;
}

hs_status hs_engine_load(hs_engine *e, const char *dir, hs_train_state *st)
{
    if (!e || !dir || !st)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_engine_load: NULL argument");
    hs_model *m0 = hs_engine_chunk(e, 0);
    if (hs_model_npu(m0) && hs_npu_mode_of(hs_model_npu(m0)) != HS_NPU_EXECUTE)
        return hs_error(HS_ERR_DEVICE, "checkpoints need values: an estimate-mode NPU has none");
    HS_TRY(hs_engine_full_state(e, 0)); /* ZeRO-1: the moments are read whole, each rank keeps its blocks */
    hs_status s = HS_OK;
    for (int c = 0; !s && c < hs_engine_num_chunks(e); c++) {
        hs_ckpt_meta meta = {0};
        s = load_chunk(e, c, dir, &meta);
        if (s)
            break;
        hs_ckpt_meta_free(&meta);
        s = hs_optimizer_set_steps(hs_engine_optimizer(e, c), meta.step);
        st->seed = meta.seed;
        st->data_position = meta.data_position;
    }
    const hs_status d = hs_engine_drop_full_state(e, !s);
    s = s ? s : d;
    for (int c = 0; !s && c < hs_engine_num_chunks(e); c++)
        s = hs_model_sync_weights(hs_engine_chunk(e, c));
    return s;
}
