/* Kernel launch over block_dim blocks: runs each block's kernel on the core
 * model (census pass, then timed pass), takes the slowest block as the
 * kernel's time, advances the stream, fills the device's last-launch stats
 * and records the pipes of every core in the trace.
 *
 *   cycles  = max(max_blocks(max_pipes free[p]), ceil(hbm_bytes * freq / hbm_bw))
 *   seconds = launch_overhead_s + cycles / freq
 * The second term is the chip's HBM roofline: the per-block rates share
 * HBM among the active blocks, but writes land in L2 at L2 rates and reach
 * HBM later (write-back), so without it a kernel whose traffic is mostly
 * writes could beat the HBM bandwidth.
 *   cube_utilisation   = sum CUBE busy   / (AICs used * cycles)
 *   vector_utilisation = sum VECTOR busy / (AIVs used * cycles)
 */
#include "core/try.h"
#include "npu_sim/launch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Trace rows of one core of one block. */
typedef struct core_tracks {
    char core[24];
    hs_npu_track pipe[HS_PIPE_COUNT];
} core_tracks;

/* Per-device launch state: the cores of the running block (their local
 * buffers' host arrays are kept between launches), the L2 line table and,
 * while tracing, the pipe intervals of every core of the launch. */
struct hs_npu_launch_state {
    hs_npu_core cores[3]; /* AIC (or unified AI core), AIV 0, AIV 1 */
    hs_npu_l2 l2;
    core_tracks *tracks;
    size_t tracks_cap;
};

/* Releases the per-device launch state (hs_npu_free calls it). */
void hs_npu_launch_state_free(struct hs_npu_launch_state *st)
{
    if (!st)
        return;
    for (int i = 0; i < 3; i++)
        hs_npu_core_mem_free(&st->cores[i]);
    hs_npu_l2_free(&st->l2);
    free(st->tracks);
    free(st);
}

/* The stats of d's last successful launch. */
hs_npu_launch_stats hs_npu_last_launch(const hs_npu *d)
{
    return d->last_launch;
}

/* 1 on a chip whose AI cores hold cube and vector units together (910A). */
static int unified(const hs_npu_spec *s)
{
    return s->vector_cores == 0;
}

/* Vector cores per block of a CUBE launch: vector_cores / cube_cores,
 * between 1 and 2 (1 on a unified-core chip: the AI core itself). */
static int aivs_per_aic(const hs_npu_spec *s)
{
    if (unified(s))
        return 1;
    const int r = s->vector_cores / s->cube_cores;
    return r < 1 ? 1 : r > 2 ? 2 : r;
}

/* Largest block_dim of a launch of this kind on d. */
int hs_npu_max_blocks(const hs_npu *d, hs_npu_launch_kind kind)
{
    const hs_npu_spec *s = &d->spec;
    return kind == HS_NPU_LAUNCH_CUBE || unified(s) ? s->cube_cores : s->vector_cores;
}

/* Index of the block in its launch. */
int hs_npu_kblock_idx(const hs_npu_kblock *b)
{
    return b->idx;
}

/* Blocks in the launch. */
int hs_npu_kblock_dim(const hs_npu_kblock *b)
{
    return b->dim;
}

/* The block's cube core (NULL in a VECTOR launch). */
hs_npu_core *hs_npu_kblock_aic(hs_npu_kblock *b)
{
    return b->aic;
}

/* Vector cores of the block. */
int hs_npu_kblock_aiv_count(const hs_npu_kblock *b)
{
    return b->naiv;
}

/* Vector core i of the block, or NULL. */
hs_npu_core *hs_npu_kblock_aiv(hs_npu_kblock *b, int i)
{
    return i >= 0 && i < b->naiv ? b->aiv[i] : NULL;
}

/* What one timed block contributes to the launch. */
typedef struct block_result {
    uint64_t end;                     /* last pipe free, cycles */
    uint64_t busy[HS_PIPE_COUNT];     /* summed over the block's cores */
    double flops, hbm_bytes, l2_bytes;
} block_result;

/* Prepares core slot `slot` of st for block b: buffers, name, trace rows. */
static hs_status setup_core(struct hs_npu_launch_state *st, hs_npu_kblock *b, int slot, const char *name,
                            int has_cube, int has_vector, core_tracks *tr)
{
    hs_npu_core *c = &st->cores[slot];
    HS_TRY(hs_npu_core_mem(c, &b->dev->spec, has_cube, has_vector, b->executes));
    c->tracks = tr ? tr->pipe : NULL;
    hs_npu_core_reset(c, b, name, has_cube, has_vector);
    if (tr)
        snprintf(tr->core, sizeof tr->core, "%s", name);
    return HS_OK;
}

/* Lays out block b's cores: a CUBE block gets slot 0 as its AIC and slots
 * 1..naiv as AIVs (the AIC itself on a unified chip); a VECTOR block one
 * AIV (slot 1, or the unified slot 0). tr: the block's trace rows or NULL. */
static hs_status setup_block(struct hs_npu_launch_state *st, hs_npu_kblock *b, core_tracks *tr)
{
    const hs_npu_spec *s = &b->dev->spec;
    char name[24];
    if (unified(s)) {
        snprintf(name, sizeof name, "aicore%d", b->idx);
        HS_TRY(setup_core(st, b, 0, name, 1, 1, tr));
        b->aic = b->kind == HS_NPU_LAUNCH_CUBE ? &st->cores[0] : NULL;
        b->aiv[0] = &st->cores[0];
        b->naiv = 1;
        return HS_OK;
    }
    if (b->kind == HS_NPU_LAUNCH_VECTOR) {
        snprintf(name, sizeof name, "aiv%d", b->idx);
        HS_TRY(setup_core(st, b, 1, name, 0, 1, tr));
        b->aic = NULL;
        b->aiv[0] = &st->cores[1];
        b->naiv = 1;
        return HS_OK;
    }
    snprintf(name, sizeof name, "aic%d", b->idx);
    HS_TRY(setup_core(st, b, 0, name, 1, 0, tr));
    b->aic = &st->cores[0];
    b->naiv = aivs_per_aic(s);
    for (int i = 0; i < b->naiv; i++) {
        snprintf(name, sizeof name, "aiv%d", b->idx * b->naiv + i);
        HS_TRY(setup_core(st, b, 1 + i, name, 0, 1, tr ? tr + 1 + i : NULL));
        b->aiv[i] = &st->cores[1 + i];
    }
    return HS_OK;
}

/* Runs block idx of a launch (census or timed) and, when timed, sums its
 * cores into *out. */
static hs_status run_block(hs_npu *d, struct hs_npu_launch_state *st, hs_npu_launch_kind kind, int idx, int dim,
                           int census, const double rates[3], hs_npu_kernel_fn fn, void *args, core_tracks *tr,
                           block_result *out)
{
    hs_npu_kblock b = {
        .dev = d,
        .l2 = &st->l2,
        .kind = kind,
        .idx = idx,
        .dim = dim,
        .census = census,
        .executes = !census && d->mode == HS_NPU_EXECUTE,
        .status = HS_OK,
        .r_hbm = rates[0],
        .r_l2 = rates[1],
        .w_l2 = rates[2],
    };
    HS_TRY(setup_block(st, &b, tr));
    hs_status status = fn(&b, args);
    if (status == HS_OK)
        status = b.status;
    for (int i = 0; i < 3; i++)
        st->cores[i].blk = NULL;
    if (status != HS_OK || census)
        return status;
    *out = (block_result){0};
    hs_npu_core *cores[3];
    int ncores = 0;
    if (b.aic)
        cores[ncores++] = b.aic;
    for (int i = 0; i < b.naiv; i++)
        if (b.aiv[i] != b.aic)
            cores[ncores++] = b.aiv[i];
    for (int i = 0; i < ncores; i++) {
        for (int p = 0; p < HS_PIPE_COUNT; p++) {
            if (cores[i]->free_at[p] > out->end)
                out->end = cores[i]->free_at[p];
            out->busy[p] += cores[i]->busy[p];
        }
        out->flops += cores[i]->flops;
    }
    out->hbm_bytes = b.hbm_bytes;
    out->l2_bytes = b.l2_bytes;
    return HS_OK;
}

/* The launch state of d, made on first use. */
static hs_status state_of(hs_npu *d, struct hs_npu_launch_state **out)
{
    if (!d->launch_state) {
        d->launch_state = calloc(1, sizeof *d->launch_state);
        if (!d->launch_state)
            return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_npu_launch: %zu bytes of core state",
                            sizeof *d->launch_state);
    }
    *out = d->launch_state;
    return HS_OK;
}

/* Trace rows for `n` cores, zeroed (NULL when not tracing). */
static hs_status trace_rows(hs_npu *d, struct hs_npu_launch_state *st, size_t n, core_tracks **out)
{
    *out = NULL;
    if (!hs_npu_tracing(d))
        return HS_OK;
    if (n > st->tracks_cap) {
        core_tracks *t = realloc(st->tracks, n * sizeof *t);
        if (!t)
            return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_npu_launch: trace rows for %zu cores", n);
        st->tracks = t;
        st->tracks_cap = n;
    }
    memset(st->tracks, 0, n * sizeof *st->tracks);
    *out = st->tracks;
    return HS_OK;
}

/* Emits every recorded pipe interval as a "pipe" slice on row
 * "<core>.<PIPE>" of process "npu<i> cores"; t0: when the cores start. */
static void emit_pipes(hs_npu *d, const core_tracks *rows, size_t n, const char *name, double t0)
{
    char process[48], thread[40];
    hs_npu_process_name(d, process, sizeof process - 8);
    strcat(process, " cores");
    const double f = d->spec.freq_hz;
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].core[0])
            continue;
        for (int p = 0; p < HS_PIPE_COUNT; p++) {
            const hs_npu_track *t = &rows[i].pipe[p];
            if (!t->n)
                continue;
            snprintf(thread, sizeof thread, "%s.%s", rows[i].core, hs_npu_pipe_name((hs_npu_pipe)p));
            for (int k = 0; k < t->n; k++)
                hs_npu_trace_slice_args(d, process, thread, name, "pipe", t0 + (double)t->iv[k][0] / f,
                                        (double)(t->iv[k][1] - t->iv[k][0]) / f, NULL, 0);
        }
    }
}

/* Runs a kernel over block_dim blocks (census, then timed), advances the stream, records stats and trace. */
hs_status hs_npu_launch(hs_npu *d, hs_npu_stream *s, const char *name, hs_npu_launch_kind kind, int block_dim,
                        hs_npu_kernel_fn fn, void *args)
{
    if (!d || !name || !fn || (kind != HS_NPU_LAUNCH_CUBE && kind != HS_NPU_LAUNCH_VECTOR))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_npu_launch: NULL device, name or kernel, or a bad kind");
    if (!s)
        s = &d->default_stream;
    if (s->device != d)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_npu_launch %s: the stream belongs to another device", name);
    const hs_npu_spec *sp = &d->spec;
    const int max = hs_npu_max_blocks(d, kind);
    if (block_dim < 1 || block_dim > max)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "hs_npu_launch %s: block_dim %d outside 1..%d (NPU '%s' has %d %s cores)", name, block_dim, max,
                        sp->name, max,
                        kind == HS_NPU_LAUNCH_CUBE || unified(sp) ? "cube (AIC)" : "vector (AIV)");
    struct hs_npu_launch_state *st = NULL;
    HS_TRY(state_of(d, &st));
    /* shared HBM/L2 bandwidth per active block, bytes/cycle */
    const double share = sp->hbm_bw / sp->freq_hz / block_dim;
    const double rates[3] = {sp->ddr_rate < share ? sp->ddr_rate : share,
                             sp->l2_read_rate < 5 * share ? sp->l2_read_rate : 5 * share,
                             sp->l2_write_rate < 5 * share ? sp->l2_write_rate : 5 * share};
    core_tracks *rows;
    HS_TRY(trace_rows(d, st, (size_t)block_dim * 3, &rows));
    HS_TRY(hs_npu_l2_begin(&st->l2));
    for (int b = 0; b < block_dim; b++)
        HS_TRY(run_block(d, st, kind, b, block_dim, 1, rates, fn, args, NULL, NULL));
    HS_TRY(hs_npu_l2_end_census(&st->l2, sp->l2_bytes));
    hs_npu_launch_stats ls = {0};
    double flops = 0, hbm = 0, l2 = 0;
    for (int b = 0; b < block_dim; b++) {
        block_result r;
        HS_TRY(run_block(d, st, kind, b, block_dim, 0, rates, fn, args, rows ? rows + 3 * b : NULL, &r));
        if (r.end > ls.cycles)
            ls.cycles = r.end;
        for (int p = 0; p < HS_PIPE_COUNT; p++)
            ls.pipe_busy[p] += r.busy[p];
        flops += r.flops;
        hbm += r.hbm_bytes;
        l2 += r.l2_bytes;
    }
    const uint64_t hbm_floor = (uint64_t)ceil(hbm * sp->freq_hz / sp->hbm_bw);
    if (hbm_floor > ls.cycles)
        ls.cycles = hbm_floor;
    ls.seconds = sp->launch_overhead_s + (double)ls.cycles / sp->freq_hz;
    ls.hbm_bytes = (uint64_t)llround(hbm);
    ls.l2_bytes = (uint64_t)llround(l2);
    const double aivs = (double)block_dim * (kind == HS_NPU_LAUNCH_CUBE ? aivs_per_aic(sp) : 1);
    const double cyc = ls.cycles ? (double)ls.cycles : 1.0;
    ls.cube_utilisation = kind == HS_NPU_LAUNCH_CUBE ? (double)ls.pipe_busy[HS_PIPE_CUBE] / (block_dim * cyc) : 0.0;
    d->last_launch = ls;
    const double vector_util = (double)ls.pipe_busy[HS_PIPE_VECTOR] / (aivs * cyc);
    const hs_npu_trace_arg targs[5] = {{"vector_util", vector_util},
                                       {"hbm_bytes", (double)ls.hbm_bytes},
                                       {"l2_bytes", (double)ls.l2_bytes},
                                       {"flops", flops},
                                       {"cube_util", ls.cube_utilisation}};
    const double start =
        hs_npu_stream_advance_args(s, name, "kernel", ls.seconds, targs, kind == HS_NPU_LAUNCH_CUBE ? 5 : 4);
    if (rows)
        emit_pipes(d, rows, (size_t)block_dim * 3, name, start + sp->launch_overhead_s);
    return HS_OK;
}
