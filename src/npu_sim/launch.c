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
#include <omp.h>
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
/* Host threads the data-only pass of a timing-cache hit may use. */
#define MAX_THREADS 8

struct hs_npu_launch_state {
    hs_npu_core cores[MAX_THREADS][3]; /* per host thread: AIC (or unified AI core), AIV 0, AIV 1 */
    hs_npu_l2 l2;
    core_tracks *tracks;
    size_t tracks_cap;
    unsigned char *packed; /* the last traced launch's pipe rows, packed (see pack_rows) */
    size_t packed_cap;
    struct hs_npu_tcache *cache;
};

/* Passes over a launch's blocks: the L2 census, the timed run, and the
 * data-only run of a timing-cache hit in execute mode. */
typedef enum pass { PASS_CENSUS, PASS_TIMED, PASS_DATA } pass;

/* Releases the per-device launch state (hs_npu_free calls it). */
void hs_npu_launch_state_free(struct hs_npu_launch_state *st)
{
    if (!st)
        return;
    for (int t = 0; t < MAX_THREADS; t++)
        for (int i = 0; i < 3; i++)
            hs_npu_core_mem_free(&st->cores[t][i]);
    hs_npu_l2_free(&st->l2);
    free(st->tracks);
    free(st->packed);
    hs_npu_tcache_free(st->cache);
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

/* Prepares core slot `slot` of the core set for block b: buffers, name, trace rows. */
static hs_status setup_core(hs_npu_core *set, hs_npu_kblock *b, int slot, const char *name, int has_cube,
                            int has_vector, core_tracks *tr)
{
    hs_npu_core *c = &set[slot];
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
static hs_status setup_block(hs_npu_core *set, hs_npu_kblock *b, core_tracks *tr)
{
    const hs_npu_spec *s = &b->dev->spec;
    char name[24];
    if (unified(s)) {
        snprintf(name, sizeof name, "aicore%d", b->idx);
        HS_TRY(setup_core(set, b, 0, name, 1, 1, tr));
        b->aic = b->kind == HS_NPU_LAUNCH_CUBE ? &set[0] : NULL;
        b->aiv[0] = &set[0];
        b->naiv = 1;
        return HS_OK;
    }
    if (b->kind == HS_NPU_LAUNCH_VECTOR) {
        snprintf(name, sizeof name, "aiv%d", b->idx);
        HS_TRY(setup_core(set, b, 1, name, 0, 1, tr));
        b->aic = NULL;
        b->aiv[0] = &set[1];
        b->naiv = 1;
        return HS_OK;
    }
    snprintf(name, sizeof name, "aic%d", b->idx);
    HS_TRY(setup_core(set, b, 0, name, 1, 0, tr));
    b->aic = &set[0];
    b->naiv = aivs_per_aic(s);
    for (int i = 0; i < b->naiv; i++) {
        snprintf(name, sizeof name, "aiv%d", b->idx * b->naiv + i);
        HS_TRY(setup_core(set, b, 1 + i, name, 0, 1, tr ? tr + 1 + i : NULL));
        b->aiv[i] = &set[1 + i];
    }
    return HS_OK;
}

/* Runs block idx of a launch in pass `ps` on core set `set` and, when
 * timed, sums its cores into *out. */
static hs_status run_block(hs_npu *d, struct hs_npu_launch_state *st, hs_npu_core *set, hs_npu_launch_kind kind,
                           int idx, int dim, pass ps, const double rates[3], hs_npu_kernel_fn fn, void *args,
                           core_tracks *tr, block_result *out)
{
    const int census = ps == PASS_CENSUS;
    hs_npu_kblock b = {
        .dev = d,
        .l2 = &st->l2,
        .kind = kind,
        .idx = idx,
        .dim = dim,
        .census = census,
        .executes = !census && d->mode == HS_NPU_EXECUTE,
        .timed = ps == PASS_TIMED,
        .status = HS_OK,
        .r_hbm = rates[0],
        .r_l2 = rates[1],
        .w_l2 = rates[2],
    };
    HS_TRY(setup_block(set, &b, tr));
    hs_status status = fn(&b, args);
    if (status == HS_OK)
        status = b.status;
    for (int i = 0; i < 3; i++)
        set[i].blk = NULL;
    if (status != HS_OK || ps != PASS_TIMED)
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

/* One packed trace row: a core's pipe and its n intervals follow. */
typedef struct packed_row {
    char core[24];
    int32_t pipe, n;
} packed_row;

/* Packs the non-empty pipe rows of n cores into st->packed; *bytes: the
 * packed size. */
static hs_status pack_rows(struct hs_npu_launch_state *st, const core_tracks *rows, size_t n, size_t *bytes)
{
    size_t need = 0;
    for (size_t i = 0; i < n; i++)
        for (int p = 0; p < HS_PIPE_COUNT; p++)
            if (rows[i].core[0] && rows[i].pipe[p].n)
                need += sizeof(packed_row) + (size_t)rows[i].pipe[p].n * 2 * sizeof(uint64_t);
    if (need > st->packed_cap) {
        unsigned char *b = realloc(st->packed, need);
        if (!b)
            return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_npu_launch: %zu bytes of trace rows", need);
        st->packed = b;
        st->packed_cap = need;
    }
    unsigned char *w = st->packed;
    for (size_t i = 0; i < n; i++)
        for (int p = 0; p < HS_PIPE_COUNT; p++) {
            const hs_npu_track *t = &rows[i].pipe[p];
            if (!rows[i].core[0] || !t->n)
                continue;
            packed_row h = {.pipe = p, .n = t->n};
            memcpy(h.core, rows[i].core, sizeof h.core);
            memcpy(w, &h, sizeof h);
            memcpy(w + sizeof h, t->iv, (size_t)t->n * 2 * sizeof(uint64_t));
            w += sizeof h + (size_t)t->n * 2 * sizeof(uint64_t);
        }
    *bytes = need;
    return HS_OK;
}

/* Emits every packed pipe interval as a "pipe" slice on row
 * "<core>.<PIPE>" of process "npu<i> cores"; t0: when the cores start. */
static void emit_pipes(hs_npu *d, const unsigned char *packed, size_t bytes, const char *name, double t0)
{
    char process[48], thread[40];
    hs_npu_process_name(d, process, sizeof process - 8);
    strcat(process, " cores");
    const double f = d->spec.freq_hz;
    for (size_t at = 0; at < bytes;) {
        packed_row h;
        memcpy(&h, packed + at, sizeof h);
        at += sizeof h;
        snprintf(thread, sizeof thread, "%s.%s", h.core, hs_npu_pipe_name((hs_npu_pipe)h.pipe));
        for (int k = 0; k < h.n; k++, at += 2 * sizeof(uint64_t)) {
            uint64_t iv[2];
            memcpy(iv, packed + at, sizeof iv);
            hs_npu_trace_slice_args(d, process, thread, name, "pipe", t0 + (double)iv[0] / f,
                                    (double)(iv[1] - iv[0]) / f, NULL, 0);
        }
    }
}

/* Simulates a launch (census, then the timed pass; execute mode computes
 * the data in the timed pass) into *t; t->rows points into st->packed
 * while tracing. */
static hs_status simulate(hs_npu *d, struct hs_npu_launch_state *st, hs_npu_launch_kind kind, int block_dim,
                          hs_npu_kernel_fn fn, void *args, hs_npu_timing *t)
{
    const hs_npu_spec *sp = &d->spec;
    /* shared HBM/L2 bandwidth per active block, bytes/cycle */
    const double share = sp->hbm_bw / sp->freq_hz / block_dim;
    const double rates[3] = {sp->ddr_rate < share ? sp->ddr_rate : share,
                             sp->l2_read_rate < 5 * share ? sp->l2_read_rate : 5 * share,
                             sp->l2_write_rate < 5 * share ? sp->l2_write_rate : 5 * share};
    core_tracks *rows;
    HS_TRY(trace_rows(d, st, (size_t)block_dim * 3, &rows));
    HS_TRY(hs_npu_l2_begin(&st->l2));
    for (int b = 0; b < block_dim; b++)
        HS_TRY(run_block(d, st, st->cores[0], kind, b, block_dim, PASS_CENSUS, rates, fn, args, NULL, NULL));
    HS_TRY(hs_npu_l2_end_census(&st->l2, sp->l2_bytes, d->mode == HS_NPU_ESTIMATE));
    hs_npu_launch_stats ls = {0};
    double flops = 0, hbm = 0, l2 = 0;
    for (int b = 0; b < block_dim; b++) {
        block_result r;
        HS_TRY(run_block(d, st, st->cores[0], kind, b, block_dim, PASS_TIMED, rates, fn, args, rows ? rows + 3 * b : NULL, &r));
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
    *t = (hs_npu_timing){ls, flops, (double)ls.pipe_busy[HS_PIPE_VECTOR] / (aivs * cyc), NULL, 0};
    if (rows) {
        HS_TRY(pack_rows(st, rows, (size_t)block_dim * 3, &t->rows_bytes));
        t->rows = st->packed;
    }
    return HS_OK;
}

/* The data-only pass of a timing-cache hit in execute mode: every block
 * once, with no census and no L2 model. Blocks that never touch each
 * other's GM (`independent`) run on the host threads side by side, each
 * thread on its own core set; the others in block order, since their
 * atomic adds into shared GM must keep the order that fixes the rounding.
 * A block that fails in a thread is rerun alone to report its error here. */
static hs_status data_pass(hs_npu *d, struct hs_npu_launch_state *st, hs_npu_launch_kind kind, int block_dim,
                           hs_npu_kernel_fn fn, void *args, int independent)
{
    static const double no_rates[3] = {1, 1, 1};
    int nt = independent ? hs_num_threads() : 1;
    nt = nt > MAX_THREADS ? MAX_THREADS : nt < 1 ? 1 : nt;
    if (nt == 1) {
        for (int b = 0; b < block_dim; b++)
            HS_TRY(run_block(d, st, st->cores[0], kind, b, block_dim, PASS_DATA, no_rates, fn, args, NULL, NULL));
        return HS_OK;
    }
    int failed = block_dim;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) reduction(min : failed)
    for (int b = 0; b < block_dim; b++)
        if (run_block(d, st, st->cores[omp_get_thread_num()], kind, b, block_dim, PASS_DATA, no_rates, fn, args,
                      NULL, NULL) != HS_OK && b < failed)
            failed = b;
    if (failed < block_dim)
        return run_block(d, st, st->cores[0], kind, failed, block_dim, PASS_DATA, no_rates, fn, args, NULL, NULL);
    return HS_OK;
}

/* Runs a kernel over block_dim blocks, or replays its cached timing, advances the stream, records stats and trace. */
hs_status hs_npu_launch_cached(hs_npu *d, hs_npu_stream *s, const char *name, hs_npu_launch_kind kind, int block_dim,
                               hs_npu_kernel_fn fn, void *args, const hs_npu_key *key)
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
    const int cached = key && d->timing_cache;
    const hs_npu_timing *hit = cached ? hs_npu_tcache_get(st->cache, fn, kind, block_dim, name, key) : NULL;
    if (hit && hs_npu_tracing(d) && !hit->rows)
        hit = NULL; /* stored by an untraced launch: simulate once more for the pipe rows */
    hs_npu_timing t;
    if (hit) {
        if (d->mode == HS_NPU_EXECUTE)
            HS_TRY(data_pass(d, st, kind, block_dim, fn, args, key->independent));
        t = *hit;
        d->cache_hits++;
    } else {
        HS_TRY(simulate(d, st, kind, block_dim, fn, args, &t));
        if (cached) {
            d->cache_misses++;
            HS_TRY(hs_npu_tcache_put(&st->cache, fn, kind, block_dim, name, key, &t));
        }
    }
    d->last_launch = t.ls;
    const hs_npu_trace_arg targs[5] = {{"vector_util", t.vector_util},
                                       {"hbm_bytes", (double)t.ls.hbm_bytes},
                                       {"l2_bytes", (double)t.ls.l2_bytes},
                                       {"flops", t.flops},
                                       {"cube_util", t.ls.cube_utilisation}};
    const double start =
        hs_npu_stream_advance_args(s, name, "kernel", t.ls.seconds, targs, kind == HS_NPU_LAUNCH_CUBE ? 5 : 4);
    if (t.rows && hs_npu_tracing(d))
        emit_pipes(d, t.rows, t.rows_bytes, name, start + sp->launch_overhead_s);
    return HS_OK;
}

/* hs_npu_launch_cached without a key: always simulated. */
hs_status hs_npu_launch(hs_npu *d, hs_npu_stream *s, const char *name, hs_npu_launch_kind kind, int block_dim,
                        hs_npu_kernel_fn fn, void *args)
{
    return hs_npu_launch_cached(d, s, name, kind, block_dim, fn, args, NULL);
}
